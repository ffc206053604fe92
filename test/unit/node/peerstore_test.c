/* The node's peer store: records, bounds, eviction. */
#include "golemnet/golemnet.h"

#include "gn_test.h"
#include "peerstore.h"

static gn_peer_id pid_of(uint32_t seed)
{
    gn_identity *id;
    gn_peer_id p;
    memset(&p, 0, sizeof p);
    if (gn_identity_from_int_seed(seed, &id) == 0) {
        gn_identity_peer_id(id, &p);
        gn_identity_free(id);
    }
    return p;
}

GN_TEST(records)
{
    gni_peerstore *ps;
    CHECK_OK(gni_peerstore_new(&ps));
    gn_peer_id a = pid_of(1), b = pid_of(2);
    CHECK(gni_peerstore_get(ps, &a) == NULL);
    CHECK_OK(gni_peerstore_add_addr(ps, &a, "/ip4/127.0.0.1/tcp/1"));
    CHECK_OK(gni_peerstore_add_addr(ps, &a, "/ip4/127.0.0.1/tcp/1")); /* duplicate: kept once */
    CHECK_EQ(gni_peerstore_add_addr(ps, &a, ""), GN_EINVAL);
    uint8_t pk[GN_ED25519_PUBLICKEYBYTES] = {7};
    CHECK_OK(gni_peerstore_set_pubkey(ps, &a, pk));
    const char *protos[] = {"/ipfs/ping/1.0.0", "/golem/msg/1.0.0"};
    CHECK_OK(gni_peerstore_set_protocols(ps, &a, protos, 2));
    CHECK_OK(gni_peerstore_set_identify(ps, &a, "/ip4/1.2.3.4/tcp/5", "agent/1"));
    const gni_peer_info *pi = gni_peerstore_get(ps, &a);
    CHECK(pi != NULL);
    CHECK_EQ(pi->naddrs, 1);
    CHECK_STR(pi->addrs[0], "/ip4/127.0.0.1/tcp/1");
    CHECK(pi->has_pubkey);
    CHECK_EQ(pi->pubkey[0], 7);
    CHECK(pi->identified);
    CHECK_STR(pi->observed, "/ip4/1.2.3.4/tcp/5");
    CHECK_STR(pi->agent, "agent/1");
    CHECK(gni_peerstore_supports(ps, &a, "/golem/msg/1.0.0"));
    CHECK(!gni_peerstore_supports(ps, &a, "/echo/1.0.0"));
    CHECK(!gni_peerstore_supports(ps, &b, "/golem/msg/1.0.0"));
    /* a new list replaces the old one */
    CHECK_OK(gni_peerstore_set_protocols(ps, &a, protos, 1));
    CHECK(!gni_peerstore_supports(ps, &a, "/golem/msg/1.0.0"));
    CHECK_EQ(gni_peerstore_count(ps), 1);
    gni_peerstore_free(ps);
}

GN_TEST(address_bound_drops_oldest)
{
    gni_peerstore *ps;
    CHECK_OK(gni_peerstore_new(&ps));
    gn_peer_id a = pid_of(1);
    for (unsigned i = 0; i < GNI_PS_MAX_ADDRS + 3; i++) {
        char addr[64];
        snprintf(addr, sizeof addr, "/ip4/10.0.0.1/tcp/%u", 1000 + i);
        CHECK_OK(gni_peerstore_add_addr(ps, &a, addr));
    }
    const gni_peer_info *pi = gni_peerstore_get(ps, &a);
    CHECK_EQ(pi->naddrs, GNI_PS_MAX_ADDRS);
    CHECK_STR(pi->addrs[0], "/ip4/10.0.0.1/tcp/1003");
    CHECK_STR(pi->addrs[GNI_PS_MAX_ADDRS - 1], "/ip4/10.0.0.1/tcp/1018");
    gni_peerstore_free(ps);
}

GN_TEST(peer_bound_evicts_least_recent)
{
    gni_peerstore *ps;
    CHECK_OK(gni_peerstore_new(&ps));
    uint8_t pk[GN_ED25519_PUBLICKEYBYTES] = {0};
    gn_peer_id first = pid_of(1);
    CHECK_OK(gni_peerstore_set_pubkey(ps, &first, pk));
    /* synthetic peer IDs: identity multihash bytes, distinct per i */
    for (uint32_t i = 0; i < GNI_PS_MAX_PEERS; i++) {
        gn_peer_id p;
        memset(&p, 0, sizeof p);
        p.len = 6;
        p.bytes[0] = 0x00;
        p.bytes[1] = 4;
        memcpy(p.bytes + 2, &i, 4);
        CHECK_OK(gni_peerstore_set_pubkey(ps, &p, pk));
    }
    CHECK_EQ(gni_peerstore_count(ps), GNI_PS_MAX_PEERS);
    CHECK(gni_peerstore_get(ps, &first) == NULL); /* the oldest went */
    gni_peerstore_free(ps);
}

GN_TEST_MAIN(GN_T(records), GN_T(address_bound_drops_oldest), GN_T(peer_bound_evicts_least_recent))
