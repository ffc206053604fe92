/* The node's peer store: records, growth, bounds, eviction order, the
 * index, the footprint of a record and allocation failures. */
#include "golemnet/golemnet.h"

#include "gn_failalloc.h"
#include "gn_alloc_count.h"
#include "gn_test.h"
#include "gni.h"
#include "gni_htab.h"
#include "peerstore.h"

#include <malloc.h>

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

/* A synthetic peer ID (identity multihash of 4 bytes), distinct per @i. */
static gn_peer_id pid_n(uint32_t i)
{
    gn_peer_id p;
    memset(&p, 0, sizeof p);
    p.len = 6;
    p.bytes[0] = 0x00;
    p.bytes[1] = 4;
    memcpy(p.bytes + 2, &i, 4);
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
    CHECK_EQ(gni_peerstore_add_addr(ps, &a, NULL), GN_EINVAL);
    char longest[GNI_PS_STR_MAX + 1];
    memset(longest, 'x', sizeof longest - 1);
    longest[GNI_PS_STR_MAX] = '\0';
    CHECK_EQ(gni_peerstore_add_addr(ps, &a, longest), GN_ETOOBIG);
    longest[GNI_PS_STR_MAX - 1] = '\0'; /* 255 bytes: fits */
    CHECK_OK(gni_peerstore_add_addr(ps, &b, longest));
    CHECK_STR(gni_peerstore_get(ps, &b)->addrs[0].text, longest);

    const gni_peer_info *pi = gni_peerstore_get(ps, &a);
    CHECK(pi != NULL);
    CHECK(gn_peer_id_equal(&pi->id, &a));
    /* nothing but an address: no extension block, the accessors say "unknown" */
    CHECK(pi->ext == NULL);
    CHECK(gni_peer_pubkey(pi) == NULL);
    CHECK_EQ(gni_peer_latency(pi), 0);
    CHECK_STR(gni_peer_agent(pi), "");
    CHECK_STR(gni_peer_observed(pi), "");
    CHECK_EQ(gni_peer_nprotocols(pi), 0);
    CHECK(!pi->identified);

    uint8_t pk[GN_ED25519_PUBLICKEYBYTES] = {7};
    CHECK_OK(gni_peerstore_set_pubkey(ps, &a, pk));
    const char *protos[] = {"/ipfs/ping/1.0.0", "/golem/msg/1.0.0"};
    CHECK_OK(gni_peerstore_set_protocols(ps, &a, protos, 2));
    CHECK_OK(gni_peerstore_set_identify(ps, &a, "/ip4/1.2.3.4/tcp/5", "agent/1"));
    pi = gni_peerstore_get(ps, &a);
    CHECK(pi != NULL);
    CHECK_EQ(pi->naddrs, 1);
    CHECK_STR(pi->addrs[0].text, "/ip4/127.0.0.1/tcp/1");
    CHECK(gni_peer_pubkey(pi) != NULL);
    CHECK_EQ(gni_peer_pubkey(pi)[0], 7);
    CHECK(pi->identified);
    CHECK_STR(gni_peer_observed(pi), "/ip4/1.2.3.4/tcp/5");
    CHECK_STR(gni_peer_agent(pi), "agent/1");
    CHECK_EQ(gni_peer_nprotocols(pi), 2);
    CHECK_STR(gni_peer_protocol(pi, 1), "/golem/msg/1.0.0");
    CHECK(gni_peerstore_supports(ps, &a, "/golem/msg/1.0.0"));
    CHECK(!gni_peerstore_supports(ps, &a, "/echo/1.0.0"));
    CHECK(!gni_peerstore_supports(ps, &b, "/golem/msg/1.0.0"));
    /* NULL leaves a field as it was; the key and the protocols survive */
    CHECK_OK(gni_peerstore_set_identify(ps, &a, NULL, "agent/2"));
    pi = gni_peerstore_get(ps, &a);
    CHECK_STR(gni_peer_agent(pi), "agent/2");
    CHECK_STR(gni_peer_observed(pi), "/ip4/1.2.3.4/tcp/5");
    CHECK_EQ(gni_peer_pubkey(pi)[0], 7);
    CHECK(gni_peerstore_supports(ps, &a, "/golem/msg/1.0.0"));
    /* a new list replaces the old one and keeps the identify strings */
    CHECK_OK(gni_peerstore_set_protocols(ps, &a, protos, 1));
    CHECK(!gni_peerstore_supports(ps, &a, "/golem/msg/1.0.0"));
    CHECK(gni_peerstore_supports(ps, &a, "/ipfs/ping/1.0.0"));
    pi = gni_peerstore_get(ps, &a);
    CHECK_STR(gni_peer_agent(pi), "agent/2");
    CHECK_OK(gni_peerstore_set_protocols(ps, &a, NULL, 0));
    CHECK_EQ(gni_peer_nprotocols(gni_peerstore_get(ps, &a)), 0);
    CHECK_EQ(gni_peerstore_count(ps), 2);
    gni_peerstore_free(ps);
}

GN_TEST(long_strings_are_cut)
{
    gni_peerstore *ps;
    CHECK_OK(gni_peerstore_new(&ps));
    gn_peer_id a = pid_of(1);
    char agent[GNI_PS_STR_MAX + 40];
    memset(agent, 'a', sizeof agent - 1);
    agent[sizeof agent - 1] = '\0';
    CHECK_OK(gni_peerstore_set_identify(ps, &a, agent, agent));
    const gni_peer_info *pi = gni_peerstore_get(ps, &a);
    CHECK_EQ(strlen(gni_peer_agent(pi)), GNI_PS_STR_MAX - 1);
    CHECK_EQ(strlen(gni_peer_observed(pi)), GNI_PS_STR_MAX - 1);
    /* identify with "" clears what was known */
    CHECK_OK(gni_peerstore_set_identify(ps, &a, "", ""));
    pi = gni_peerstore_get(ps, &a);
    CHECK_STR(gni_peer_agent(pi), "");
    CHECK_STR(gni_peer_observed(pi), "");
    gni_peerstore_free(ps);
}

GN_TEST(protocol_bound)
{
    gni_peerstore *ps;
    CHECK_OK(gni_peerstore_new(&ps));
    gn_peer_id a = pid_of(1);
    static char names[GNI_PS_MAX_PROTOCOLS + 10][24];
    const char *list[GNI_PS_MAX_PROTOCOLS + 10];
    for (size_t i = 0; i < GNI_PS_MAX_PROTOCOLS + 10; i++) {
        snprintf(names[i], sizeof names[i], "/p/%zu", i);
        list[i] = names[i];
    }
    CHECK_OK(gni_peerstore_set_protocols(ps, &a, list, GNI_PS_MAX_PROTOCOLS + 10));
    const gni_peer_info *pi = gni_peerstore_get(ps, &a);
    CHECK_EQ(gni_peer_nprotocols(pi), GNI_PS_MAX_PROTOCOLS);
    CHECK_STR(gni_peer_protocol(pi, GNI_PS_MAX_PROTOCOLS - 1), names[GNI_PS_MAX_PROTOCOLS - 1]);
    CHECK(gni_peerstore_supports(ps, &a, "/p/0"));
    CHECK(!gni_peerstore_supports(ps, &a, names[GNI_PS_MAX_PROTOCOLS]));
    gni_peerstore_free(ps);
}

GN_TEST(address_bound_drops_oldest)
{
    gni_peerstore *ps;
    CHECK_OK(gni_peerstore_new(&ps));
    gn_peer_id a = pid_of(1);
    /* the array starts empty and doubles up to the bound, never beyond */
    const gni_peer_info *pi = NULL;
    unsigned caps[] = {1, 2, 4, 4, 8, 8, 8, 8, 16};
    for (unsigned i = 0; i < 3 * GNI_PS_MAX_ADDRS; i++) {
        char addr[64];
        snprintf(addr, sizeof addr, "/ip4/10.0.0.1/tcp/%u", 1000 + i);
        CHECK_OK(gni_peerstore_add_addr(ps, &a, addr));
        pi = gni_peerstore_get(ps, &a);
        CHECK_EQ(pi->naddrs, GNI_MIN(i + 1, GNI_PS_MAX_ADDRS));
        CHECK(pi->addr_cap >= pi->naddrs && pi->addr_cap <= GNI_PS_MAX_ADDRS);
        if (i < GNI_ARRAY_LEN(caps)) {
            CHECK_EQ(pi->addr_cap, caps[i]);
        }
    }
    CHECK_EQ(pi->naddrs, GNI_PS_MAX_ADDRS);
    CHECK_EQ(pi->addr_cap, GNI_PS_MAX_ADDRS);
    /* oldest first: the last GNI_PS_MAX_ADDRS added, in order */
    for (unsigned i = 0; i < GNI_PS_MAX_ADDRS; i++) {
        char addr[64];
        snprintf(addr, sizeof addr, "/ip4/10.0.0.1/tcp/%u", 1000 + 2 * GNI_PS_MAX_ADDRS + i);
        CHECK_STR(pi->addrs[i].text, addr);
    }
    gni_peerstore_free(ps);
}

GN_TEST(known_address_moves_and_keeps_later_expiry)
{
    gni_peerstore *ps;
    CHECK_OK(gni_peerstore_new(&ps));
    gn_peer_id a = pid_of(1);
    CHECK_OK(gni_peerstore_add_addr_ttl(ps, &a, "/ip4/10.0.0.1/tcp/1", 100, GN_ADDR_SRC_ROUTER));
    CHECK_OK(gni_peerstore_add_addr_ttl(ps, &a, "/ip4/10.0.0.1/tcp/2", 500, GN_ADDR_SRC_DIAL));
    CHECK_OK(gni_peerstore_add_addr_ttl(ps, &a, "/ip4/10.0.0.1/tcp/3", 300, GN_ADDR_SRC_DIAL));
    const gni_peer_info *pi = gni_peerstore_get(ps, &a);
    CHECK_EQ(pi->naddrs, 3);
    CHECK_EQ(pi->addrs[0].expiry, 100);
    CHECK_EQ(pi->addrs[0].src, GN_ADDR_SRC_ROUTER);
    /* an earlier expiry does not shorten a known address; it moves to the newest place */
    CHECK_OK(gni_peerstore_add_addr_ttl(ps, &a, "/ip4/10.0.0.1/tcp/2", 50, GN_ADDR_SRC_ROUTER));
    pi = gni_peerstore_get(ps, &a);
    CHECK_EQ(pi->naddrs, 3);
    CHECK_STR(pi->addrs[0].text, "/ip4/10.0.0.1/tcp/1");
    CHECK_STR(pi->addrs[1].text, "/ip4/10.0.0.1/tcp/3");
    CHECK_STR(pi->addrs[2].text, "/ip4/10.0.0.1/tcp/2");
    CHECK_EQ(pi->addrs[2].expiry, 500);
    CHECK_EQ(pi->addrs[2].src, GN_ADDR_SRC_ROUTER);
    /* a later one extends it */
    CHECK_OK(gni_peerstore_add_addr_ttl(ps, &a, "/ip4/10.0.0.1/tcp/1", GN_TIME_INFINITY,
                                        GN_ADDR_SRC_DIAL));
    pi = gni_peerstore_get(ps, &a);
    CHECK_STR(pi->addrs[2].text, "/ip4/10.0.0.1/tcp/1");
    CHECK_EQ(pi->addrs[2].expiry, GN_TIME_INFINITY);
    CHECK_EQ(pi->addrs[0].expiry, 300);
    /* re-adding a known address at the bound drops nothing */
    for (unsigned i = 4; pi->naddrs < GNI_PS_MAX_ADDRS; i++) {
        char addr[64];
        snprintf(addr, sizeof addr, "/ip4/10.0.0.1/tcp/%u", i);
        CHECK_OK(gni_peerstore_add_addr_ttl(ps, &a, addr, 1000, GN_ADDR_SRC_DIAL));
        pi = gni_peerstore_get(ps, &a);
    }
    CHECK_STR(pi->addrs[0].text, "/ip4/10.0.0.1/tcp/3");
    CHECK_OK(gni_peerstore_add_addr(ps, &a, "/ip4/10.0.0.1/tcp/3"));
    pi = gni_peerstore_get(ps, &a);
    CHECK_EQ(pi->naddrs, GNI_PS_MAX_ADDRS);
    CHECK_STR(pi->addrs[GNI_PS_MAX_ADDRS - 1].text, "/ip4/10.0.0.1/tcp/3");
    CHECK_EQ(pi->addrs[GNI_PS_MAX_ADDRS - 1].expiry, GN_TIME_INFINITY);
    gni_peerstore_free(ps);
}

GN_TEST(latency_average)
{
    gni_peerstore *ps;
    CHECK_OK(gni_peerstore_new(&ps));
    gn_peer_id a = pid_of(1);
    CHECK_OK(gni_peerstore_record_latency(ps, &a, 800));
    CHECK_EQ(gni_peer_latency(gni_peerstore_get(ps, &a)), 800);
    CHECK_OK(gni_peerstore_record_latency(ps, &a, 1600));
    CHECK_EQ(gni_peer_latency(gni_peerstore_get(ps, &a)), 800 - 100 + 200);
    /* identify rebuilds the extension block: the average survives */
    CHECK_OK(gni_peerstore_set_identify(ps, &a, "/ip4/1.2.3.4/tcp/5", "x"));
    CHECK_EQ(gni_peer_latency(gni_peerstore_get(ps, &a)), 900);
    gni_peerstore_free(ps);
}

GN_TEST(peer_bound_evicts_least_recent)
{
    gni_peerstore *ps;
    CHECK_OK(gni_peerstore_new(&ps));
    uint8_t pk[GN_ED25519_PUBLICKEYBYTES] = {0};
    gn_peer_id first = pid_of(1);
    CHECK_OK(gni_peerstore_set_pubkey(ps, &first, pk));
    for (uint32_t i = 0; i < GNI_PS_MAX_PEERS; i++) {
        gn_peer_id p = pid_n(i);
        CHECK_OK(gni_peerstore_set_pubkey(ps, &p, pk));
    }
    CHECK_EQ(gni_peerstore_count(ps), GNI_PS_MAX_PEERS);
    CHECK(gni_peerstore_get(ps, &first) == NULL); /* the oldest went */
    gni_peerstore_free(ps);
}

/* Every peer in [lo, hi) is found under its own ID. */
static void check_present(gni_peerstore *ps, uint32_t lo, uint32_t hi)
{
    for (uint32_t i = lo; i < hi; i++) {
        gn_peer_id p = pid_n(i);
        const gni_peer_info *pi = gni_peerstore_get(ps, &p);
        CHECK(pi != NULL);
        CHECK(gn_peer_id_equal(&pi->id, &p));
    }
}

GN_TEST(eviction_follows_updates)
{
    gni_peerstore *ps;
    CHECK_OK(gni_peerstore_new(&ps));
    for (uint32_t i = 0; i < GNI_PS_MAX_PEERS; i++) {
        gn_peer_id p = pid_n(i);
        CHECK_OK(gni_peerstore_add_addr(ps, &p, "/ip4/10.0.0.1/tcp/1"));
    }
    check_present(ps, 0, GNI_PS_MAX_PEERS);
    gn_peer_id p0 = pid_n(0), p1 = pid_n(1), p2 = pid_n(2), p3 = pid_n(3), p4 = pid_n(4);
    /* every kind of update makes a peer the newest; a lookup does not */
    CHECK_OK(gni_peerstore_record_latency(ps, &p0, 5));
    CHECK(gni_peerstore_get(ps, &p1) != NULL);
    gn_peer_id n0 = pid_n(GNI_PS_MAX_PEERS);
    CHECK_OK(gni_peerstore_add_addr(ps, &n0, "/ip4/10.0.0.2/tcp/1"));
    CHECK(gni_peerstore_get(ps, &p1) == NULL); /* p1 was the least recently updated */
    CHECK(gni_peerstore_get(ps, &p0) != NULL);
    CHECK_OK(gni_peerstore_set_identify(ps, &p2, NULL, "a"));
    const char *protos[] = {"/x"};
    CHECK_OK(gni_peerstore_set_protocols(ps, &p3, protos, 1));
    gn_peer_id n1 = pid_n(GNI_PS_MAX_PEERS + 1);
    CHECK_OK(gni_peerstore_add_addr(ps, &n1, "/ip4/10.0.0.2/tcp/1"));
    CHECK(gni_peerstore_get(ps, &p4) == NULL); /* p2, p3 were updated: p4 went */
    CHECK(gni_peerstore_get(ps, &p2) != NULL);
    CHECK(gni_peerstore_get(ps, &p3) != NULL);
    CHECK_EQ(gni_peerstore_count(ps), GNI_PS_MAX_PEERS);
    /* an evicted peer comes back as a new record, evicting the next oldest (p5) */
    CHECK_OK(gni_peerstore_add_addr(ps, &p1, "/ip4/10.0.0.3/tcp/1"));
    const gni_peer_info *pi = gni_peerstore_get(ps, &p1);
    CHECK_EQ(pi->naddrs, 1);
    CHECK_STR(pi->addrs[0].text, "/ip4/10.0.0.3/tcp/1");
    gn_peer_id p5 = pid_n(5);
    CHECK(gni_peerstore_get(ps, &p5) == NULL);
    check_present(ps, 6, GNI_PS_MAX_PEERS + 2);
    check_present(ps, 0, 1);
    check_present(ps, 1, 4);
    CHECK_EQ(gni_peerstore_count(ps), GNI_PS_MAX_PEERS);
    /* many rounds through the bound keep the index and the list in step */
    for (uint32_t i = 0; i < 3 * GNI_PS_MAX_PEERS; i++) {
        gn_peer_id p = pid_n(10 * GNI_PS_MAX_PEERS + i);
        CHECK_OK(gni_peerstore_set_identify(ps, &p, NULL, NULL));
    }
    CHECK_EQ(gni_peerstore_count(ps), GNI_PS_MAX_PEERS);
    check_present(ps, 12 * GNI_PS_MAX_PEERS, 13 * GNI_PS_MAX_PEERS);
    CHECK(gni_peerstore_get(ps, &p0) == NULL);
    gni_peerstore_free(ps);
}

/* Live bytes through the allocator hooks: gn_alloc_count.h (g_live, cnt_allocator). */

/*
 * What a record costs (docs/performance.md, "Simulation"), the index's
 * buckets included: a peer known by one address (what a DHT lookup
 * teaches), and a peer we connected to (key, dial address, identify's
 * agent, observed address and protocols, an RTT). The layout before
 * (256-byte agent and observed strings and 16 address slots inline) took
 * about 1 KiB for either.
 */
GN_TEST(record_footprint)
{
    enum { PEERS = 1024 };
    gn_set_allocator(&cnt_allocator);
    gni_peerstore *ps;
    CHECK_OK(gni_peerstore_new(&ps));
    long long base = g_live;
    for (uint32_t i = 0; i < PEERS; i++) {
        gn_peer_id p = pid_n(i);
        char addr[64];
        snprintf(addr, sizeof addr, "/ip4/10.0.%u.%u/tcp/4001", i / 256, i % 256);
        CHECK_OK(gni_peerstore_add_addr_ttl(ps, &p, addr, GN_S, GN_ADDR_SRC_ROUTER));
    }
    long long addr_only = (g_live - base) / PEERS;
    const char *protos[] = {"/ipfs/id/1.0.0", "/ipfs/id/push/1.0.0", "/ipfs/ping/1.0.0",
                            "/golem/msg/1.0.0"};
    uint8_t pk[GN_ED25519_PUBLICKEYBYTES] = {1};
    long long mid = g_live;
    for (uint32_t i = 0; i < PEERS; i++) {
        gn_peer_id p = pid_n(PEERS + i);
        char addr[64];
        snprintf(addr, sizeof addr, "/ip4/10.1.%u.%u/tcp/4001", i / 256, i % 256);
        CHECK_OK(gni_peerstore_set_pubkey(ps, &p, pk));
        CHECK_OK(gni_peerstore_add_addr_ttl(ps, &p, addr, GN_TIME_INFINITY, GN_ADDR_SRC_DIAL));
        CHECK_OK(gni_peerstore_set_protocols(ps, &p, protos, GNI_ARRAY_LEN(protos)));
        CHECK_OK(gni_peerstore_set_identify(ps, &p, addr, "golemnet/0.1.0"));
        CHECK_OK(gni_peerstore_record_latency(ps, &p, GN_MS));
    }
    long long connected = (g_live - mid) / PEERS;
    printf("# bytes a record: %lld (one address), %lld (connected, identified)\n", addr_only,
           connected);
    gni_peerstore_free(ps);
    gn_set_allocator(NULL);
    CHECK(addr_only < 200);
    CHECK(connected < 448);
}

/* Everything a test can see of @ids' records, written to @out. */
static void ps_describe(const gni_peerstore *ps, const gn_peer_id *ids, size_t n, char *out,
                        size_t len)
{
    size_t at = 0;
    at += (size_t)snprintf(out + at, len - at, "count %zu;", gni_peerstore_count(ps));
    for (size_t i = 0; i < n && at < len; i++) {
        const gni_peer_info *p = gni_peerstore_get(ps, &ids[i]);
        if (!p) {
            at += (size_t)snprintf(out + at, len - at, " -;");
            continue;
        }
        const uint8_t *pk = gni_peer_pubkey(p);
        at += (size_t)snprintf(out + at, len - at, " %d %d %lld [%s] [%s]", p->identified,
                               pk ? pk[0] : -1, (long long)gni_peer_latency(p),
                               gni_peer_agent(p), gni_peer_observed(p));
        for (size_t k = 0; k < p->naddrs && at < len; k++) {
            at += (size_t)snprintf(out + at, len - at, " %s@%lld/%u", p->addrs[k].text,
                                   (long long)p->addrs[k].expiry, p->addrs[k].src);
        }
        for (size_t k = 0; k < gni_peer_nprotocols(p) && at < len; k++) {
            at += (size_t)snprintf(out + at, len - at, " %s", gni_peer_protocol(p, k));
        }
        at += (size_t)snprintf(out + at, len - at, ";");
    }
}

enum { FA_PEERS = 12 };

/*
 * A store through every kind of update, with enough peers that the index
 * grows. The update that meets the failing allocation must leave what
 * ps_describe() sees unchanged; the store is then freed.
 */
static int fa_scenario(void)
{
    gni_peerstore *ps;
    int rc = gni_peerstore_new(&ps);
    if (rc < 0) {
        return rc;
    }
    gn_peer_id ids[FA_PEERS];
    for (uint32_t i = 0; i < FA_PEERS; i++) {
        ids[i] = pid_n(i);
    }
    static char before[8192], after[8192];
    const char *protos[] = {"/a/1", "/b/1", "/c/1"};
    uint8_t pk[GN_ED25519_PUBLICKEYBYTES] = {9};
    for (int step = 0; rc == 0; step++) {
        ps_describe(ps, ids, FA_PEERS, before, sizeof before);
        gn_peer_id *a = &ids[step % FA_PEERS];
        if (step < FA_PEERS) {
            rc = gni_peerstore_add_addr(ps, a, "/ip4/10.0.0.1/tcp/1");
        } else if (step < FA_PEERS + 5) {
            char addr[32];
            snprintf(addr, sizeof addr, "/ip4/10.0.0.2/tcp/%d", step);
            rc = gni_peerstore_add_addr_ttl(ps, &ids[0], addr, 7, GN_ADDR_SRC_ROUTER);
        } else if (step == FA_PEERS + 5) {
            rc = gni_peerstore_add_addr_ttl(ps, &ids[0], "/ip4/10.0.0.1/tcp/1", 3, 2);
        } else if (step == FA_PEERS + 6) {
            rc = gni_peerstore_set_pubkey(ps, &ids[1], pk);
        } else if (step == FA_PEERS + 7) {
            rc = gni_peerstore_record_latency(ps, &ids[2], 64);
        } else if (step == FA_PEERS + 8) {
            rc = gni_peerstore_set_protocols(ps, &ids[1], protos, 3);
        } else if (step == FA_PEERS + 9) {
            rc = gni_peerstore_set_identify(ps, &ids[1], "/ip4/1.1.1.1/tcp/1", "ag");
        } else if (step == FA_PEERS + 10) {
            rc = gni_peerstore_set_protocols(ps, &ids[1], protos, 1);
        } else if (step == FA_PEERS + 11) {
            rc = gni_peerstore_set_identify(ps, &ids[1], NULL, "ag2");
        } else if (step == FA_PEERS + 12) {
            gn_peer_id fresh = pid_n(100); /* each update on a new peer */
            rc = gni_peerstore_set_pubkey(ps, &fresh, pk);
        } else if (step == FA_PEERS + 13) {
            gn_peer_id fresh = pid_n(101);
            rc = gni_peerstore_record_latency(ps, &fresh, 1);
        } else if (step == FA_PEERS + 14) {
            gn_peer_id fresh = pid_n(102);
            rc = gni_peerstore_set_protocols(ps, &fresh, protos, 2);
        } else if (step == FA_PEERS + 15) {
            gn_peer_id fresh = pid_n(103);
            rc = gni_peerstore_set_identify(ps, &fresh, "/ip4/1.1.1.1/tcp/2", NULL);
        } else {
            break;
        }
        if (rc < 0) {
            CHECK_EQ(rc, GN_ENOMEM);
            ps_describe(ps, ids, FA_PEERS, after, sizeof after);
            CHECK_STR(after, before);
        }
    }
    if (rc == 0) {
        const gni_peer_info *p = gni_peerstore_get(ps, &ids[1]);
        CHECK_STR(gni_peer_agent(p), "ag2");
        CHECK_EQ(gni_peer_nprotocols(p), 1);
        CHECK_EQ(gni_peerstore_count(ps), FA_PEERS + 4);
        CHECK_EQ(gni_peerstore_get(ps, &ids[0])->naddrs, 6);
    }
    gni_peerstore_free(ps);
    return rc;
}

GN_TEST(allocation_failures_leave_the_store_as_it_was)
{
    size_t failures = fa_every_k(fa_scenario, 200);
    CHECK(failures >= FA_PEERS * 2); /* a record and its address string each */
}

/* At the bound, a new peer whose record cannot be made evicts nobody, and
 * a failed update of the oldest peer leaves it the oldest. */
GN_TEST(failure_at_the_bound_evicts_nobody)
{
    gni_peerstore *ps;
    CHECK_OK(gni_peerstore_new(&ps));
    for (uint32_t i = 0; i < GNI_PS_MAX_PEERS; i++) {
        gn_peer_id p = pid_n(i);
        CHECK_OK(gni_peerstore_add_addr(ps, &p, "/ip4/10.0.0.1/tcp/1"));
    }
    gn_peer_id p0 = pid_n(0), p1 = pid_n(1), p2 = pid_n(2);
    gn_peer_id fresh = pid_n(GNI_PS_MAX_PEERS), fresh2 = pid_n(GNI_PS_MAX_PEERS + 1);
    /* the record, the index's growth, the address string: each may fail */
    size_t k = 0;
    for (; k < 10; k++) {
        gn_set_allocator(&fa_allocator);
        fa_reset(k);
        int rc = gni_peerstore_add_addr(ps, &fresh, "/ip4/10.0.0.2/tcp/1");
        gn_set_allocator(NULL);
        if (rc == 0) {
            break;
        }
        CHECK_EQ(rc, GN_ENOMEM);
        CHECK_EQ(gni_peerstore_count(ps), GNI_PS_MAX_PEERS);
        CHECK(gni_peerstore_get(ps, &fresh) == NULL);
        CHECK(gni_peerstore_get(ps, &p0) != NULL);
    }
    CHECK(k >= 2 && k < 10);
    CHECK(gni_peerstore_get(ps, &fresh) != NULL);
    CHECK(gni_peerstore_get(ps, &p0) == NULL); /* the success evicted the oldest */
    CHECK_EQ(gni_peerstore_count(ps), GNI_PS_MAX_PEERS);
    const char *protos[] = {"/x"};
    gn_set_allocator(&fa_allocator);
    fa_reset(0);
    int rc = gni_peerstore_set_protocols(ps, &p1, protos, 1);
    gn_set_allocator(NULL);
    CHECK_EQ(rc, GN_ENOMEM);
    CHECK_OK(gni_peerstore_add_addr(ps, &fresh2, "/ip4/10.0.0.2/tcp/1"));
    CHECK(gni_peerstore_get(ps, &p1) == NULL); /* still the oldest: it went */
    CHECK(gni_peerstore_get(ps, &p2) != NULL);
    CHECK(gni_peerstore_get(ps, &fresh2) != NULL);
    gni_peerstore_free(ps);
}

/* The index's lookup of colliding keys (gni_htab_find_next). */
GN_TEST(htab_find_next_visits_equal_keys)
{
    gni_htab t;
    CHECK_OK(gni_htab_init(&t, 2));
    gni_hnode e[6];
    for (size_t i = 0; i < GNI_ARRAY_LEN(e); i++) {
        e[i].key = i % 2 ? 7 : i; /* 1, 3, 5 share key 7; 0, 2, 4 are their own */
        CHECK_OK(gni_htab_insert(&t, &e[i]));
    }
    unsigned seen = 0, n = 0;
    for (gni_hnode *h = gni_htab_find(&t, 7); h && n < 10; h = gni_htab_find_next(&t, h), n++) {
        CHECK_EQ(h->key, 7);
        seen |= 1u << (h - e);
    }
    CHECK_EQ(n, 3);
    CHECK_EQ(seen, (1u << 1) | (1u << 3) | (1u << 5));
    CHECK(gni_htab_find_next(&t, gni_htab_find(&t, 2)) == NULL);
    gni_htab_remove(&t, &e[3]);
    n = 0;
    for (gni_hnode *h = gni_htab_find(&t, 7); h && n < 10; h = gni_htab_find_next(&t, h)) {
        n++;
    }
    CHECK_EQ(n, 2);
    gni_htab_fini(&t);
}

GN_TEST_MAIN(GN_T(records), GN_T(long_strings_are_cut), GN_T(protocol_bound),
             GN_T(address_bound_drops_oldest), GN_T(known_address_moves_and_keeps_later_expiry),
             GN_T(latency_average), GN_T(peer_bound_evicts_least_recent),
             GN_T(eviction_follows_updates), GN_T(record_footprint),
             GN_T(allocation_failures_leave_the_store_as_it_was),
             GN_T(failure_at_the_bound_evicts_nobody), GN_T(htab_find_next_visits_equal_keys))
