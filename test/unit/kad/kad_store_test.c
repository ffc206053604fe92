/*
 * Kademlia record and provider stores (layers/routing/kad/kad_store.c):
 * namespace validators (the built-in "pk" with real identities), selectors,
 * bounds and refusals, expiry under a fake clock, local records in a full
 * store, provider order, replacement and refresh, local provided keys, and
 * every allocation failing in turn.
 */
#include "kad_store.h"

#include "gn_failalloc.h"
#include "gn_test.h"
#include "golemnet/err.h"
#include "golemnet/identity.h"

#include <string.h>

/* A C string as (bytes, length) */
#define S(s) (const uint8_t *)(s), strlen(s)

/* Namespace "t": values "v<seq>..." are valid, the highest seq byte wins. */
typedef struct t_calls {
    int validated, selected;
} t_calls;

static int t_validate(void *arg, const uint8_t *key, size_t klen, const uint8_t *value,
                      size_t vlen)
{
    (void)key, (void)klen;
    t_calls *c = arg;
    if (c) {
        c->validated++;
    }
    return vlen >= 2 && value[0] == 'v' ? 0 : GN_EPARSE;
}

static int t_select(void *arg, const uint8_t *key, size_t klen, const uint8_t *const *values,
                    const size_t *lens, size_t n)
{
    (void)key, (void)klen, (void)lens;
    t_calls *c = arg;
    if (c) {
        c->selected++;
    }
    size_t best = 0;
    for (size_t i = 1; i < n; i++) {
        if (values[i][1] > values[best][1]) {
            best = i;
        }
    }
    return (int)best;
}

static int bad_select(void *arg, const uint8_t *key, size_t klen, const uint8_t *const *values,
                      const size_t *lens, size_t n)
{
    (void)arg, (void)key, (void)klen, (void)values, (void)lens;
    return (int)n; /* out of range */
}

static int reject_all(void *arg, const uint8_t *key, size_t klen, const uint8_t *value,
                      size_t vlen)
{
    (void)arg, (void)key, (void)klen, (void)value, (void)vlen;
    return GN_EBADSIG;
}

static gni_kad_validators *new_validators(t_calls *calls)
{
    gni_kad_validators *v = NULL;
    CHECK_OK(gni_kad_validators_new(&v));
    CHECK_OK(gni_kad_validators_register(v, "t", t_validate, t_select, calls));
    return v;
}

static gni_kad_records *new_records(const gni_kad_validators *v, size_t max_records,
                                    size_t max_bytes, gn_time ttl)
{
    gni_kad_records_config cfg;
    gni_kad_records_config_default(&cfg);
    cfg.max_records = max_records;
    cfg.max_bytes = max_bytes;
    cfg.ttl = ttl;
    gni_kad_records *rs = NULL;
    CHECK_OK(gni_kad_records_new(&cfg, v, &rs));
    return rs;
}

/* The stored value of @key equals @want (a C string). */
static bool has_value(const gni_kad_records *rs, const char *key, gn_time now, const char *want)
{
    gn_slice v;
    if (gni_kad_records_get(rs, S(key), now, &v, NULL) != 0) {
        return false;
    }
    return v.len == strlen(want) && memcmp(v.base, want, v.len) == 0;
}

GN_TEST(validators_registry)
{
    t_calls calls = {0, 0};
    gni_kad_validators *v = NULL;
    CHECK_EQ(gni_kad_validators_new(NULL), GN_EINVAL);
    CHECK_OK(gni_kad_validators_new(&v));
    /* names: 1..64 bytes, no slash; validate is required */
    CHECK_EQ(gni_kad_validators_register(v, "", t_validate, NULL, NULL), GN_EINVAL);
    CHECK_EQ(gni_kad_validators_register(v, "a/b", t_validate, NULL, NULL), GN_EINVAL);
    CHECK_EQ(gni_kad_validators_register(v, "t", NULL, NULL, NULL), GN_EINVAL);
    char name[80];
    memset(name, 'n', sizeof name);
    name[GNI_KAD_NS_NAME_MAX + 1] = '\0';
    CHECK_EQ(gni_kad_validators_register(v, name, t_validate, NULL, NULL), GN_EINVAL);
    name[GNI_KAD_NS_NAME_MAX] = '\0';
    CHECK_OK(gni_kad_validators_register(v, name, t_validate, NULL, NULL));
    /* keys without a registered namespace are not supported */
    CHECK_EQ(gni_kad_validators_validate(v, S("/t/a"), S("v1")), GN_ENOTSUP);
    CHECK_OK(gni_kad_validators_register(v, "t", reject_all, NULL, NULL));
    CHECK_EQ(gni_kad_validators_validate(v, S("/t/a"), S("v1")), GN_EBADSIG);
    /* re-registering replaces */
    CHECK_OK(gni_kad_validators_register(v, "t", t_validate, t_select, &calls));
    CHECK_EQ(gni_kad_validators_validate(v, S("/t/a"), S("v1")), 0);
    CHECK_EQ(gni_kad_validators_validate(v, S("/t/a"), S("x1")), GN_EPARSE);
    CHECK_EQ(calls.validated, 2);
    /* an empty rest is the validator's call */
    CHECK_EQ(gni_kad_validators_validate(v, S("/t/"), S("v1")), 0);
    CHECK_EQ(gni_kad_validators_validate(v, S("t/a"), S("v1")), GN_ENOTSUP);
    CHECK_EQ(gni_kad_validators_validate(v, S("/t"), S("v1")), GN_ENOTSUP);
    CHECK_EQ(gni_kad_validators_validate(v, S("//t/a"), S("v1")), GN_ENOTSUP);
    CHECK_EQ(gni_kad_validators_validate(v, S("/tt/a"), S("v1")), GN_ENOTSUP);
    CHECK_EQ(gni_kad_validators_validate(v, S("/ipns/a"), S("v1")), GN_ENOTSUP);
    CHECK_EQ(gni_kad_validators_validate(v, NULL, 0, S("v1")), GN_ENOTSUP);
    CHECK_EQ(calls.validated, 3);
    /* selector: index of the best, n == 1 short-cut, contract breaches */
    const uint8_t *vals[3] = {(const uint8_t *)"v1", (const uint8_t *)"v3", (const uint8_t *)"v2"};
    size_t lens[3] = {2, 2, 2}, best = 9;
    CHECK_OK(gni_kad_validators_select(v, S("/t/a"), vals, lens, 3, &best));
    CHECK_EQ(best, 1);
    CHECK_EQ(calls.selected, 1);
    CHECK_OK(gni_kad_validators_select(v, S("/t/a"), vals, lens, 1, &best));
    CHECK_EQ(best, 0);
    CHECK_EQ(calls.selected, 1);
    CHECK_EQ(gni_kad_validators_select(v, S("/t/a"), vals, lens, 0, &best), GN_EINVAL);
    CHECK_EQ(gni_kad_validators_select(v, S("/u/a"), vals, lens, 2, &best), GN_ENOTSUP);
    CHECK_OK(gni_kad_validators_register(v, "b", t_validate, bad_select, NULL));
    CHECK_EQ(gni_kad_validators_select(v, S("/b/a"), vals, lens, 2, &best), GN_ECALLBACK);
    CHECK_OK(gni_kad_validators_register(v, "n", t_validate, NULL, NULL));
    best = 9;
    CHECK_OK(gni_kad_validators_select(v, S("/n/a"), vals, lens, 3, &best));
    CHECK_EQ(best, 0); /* no selector: the first (stored) value wins */
    /* bounded: "pk", the long name, t, b, n registered; fill to GNI_KAD_NS_MAX */
    for (unsigned i = 5; i < GNI_KAD_NS_MAX; i++) {
        char ns[8];
        snprintf(ns, sizeof ns, "x%u", i);
        CHECK_OK(gni_kad_validators_register(v, ns, t_validate, NULL, NULL));
    }
    CHECK_EQ(gni_kad_validators_register(v, "one-too-many", t_validate, NULL, NULL), GN_ELIMIT);
    /* replacing still works when full */
    CHECK_OK(gni_kad_validators_register(v, "x5", t_validate, t_select, NULL));
    gni_kad_validators_free(v);
    gni_kad_validators_free(NULL);
}

/* "/pk/" + peer ID bytes of @id into @key; the encoded public key into @pb. */
static void pk_record(const gn_identity *id, uint8_t *key, size_t *klen, uint8_t *pb, size_t *pblen)
{
    uint8_t raw[GN_ED25519_PUBLICKEYBYTES];
    gn_peer_id pid;
    gn_identity_public_key(id, raw);
    int n = gn_pubkey_encode_ed25519(raw, pb, 64);
    CHECK(n > 0);
    *pblen = (size_t)n;
    gn_identity_peer_id(id, &pid);
    memcpy(key, "/pk/", 4);
    memcpy(key + 4, pid.bytes, pid.len);
    *klen = 4u + pid.len;
}

/* "/pk/" + the peer ID derived from @pb (any bytes). */
static size_t pk_key_for(const uint8_t *pb, size_t len, uint8_t *key)
{
    gn_peer_id pid;
    CHECK_OK(gn_peer_id_from_pubkey(pb, len, &pid));
    memcpy(key, "/pk/", 4);
    memcpy(key + 4, pid.bytes, pid.len);
    return 4u + pid.len;
}

GN_TEST(pk_namespace)
{
    gn_identity *a = NULL, *b = NULL;
    CHECK_OK(gn_identity_generate(&a));
    CHECK_OK(gn_identity_generate(&b));
    gni_kad_validators *v = NULL;
    CHECK_OK(gni_kad_validators_new(&v));
    uint8_t ka[80], kb[80], pa[64], pbk[64];
    size_t kalen, kblen, palen, pblen;
    pk_record(a, ka, &kalen, pa, &palen);
    pk_record(b, kb, &kblen, pbk, &pblen);
    CHECK_EQ(palen, 36);
    CHECK_EQ(gni_kad_validators_validate(v, ka, kalen, pa, palen), 0);
    CHECK_EQ(gni_kad_validators_validate(v, kb, kblen, pbk, pblen), 0);
    /* a key that is not the one the peer ID names */
    CHECK_EQ(gni_kad_validators_validate(v, ka, kalen, pbk, pblen), GN_EPEERID);
    CHECK_EQ(gni_kad_validators_validate(v, kb, kblen, pa, palen), GN_EPEERID);
    uint8_t flipped[64];
    memcpy(flipped, pa, palen);
    flipped[palen - 1] ^= 1;
    CHECK_EQ(gni_kad_validators_validate(v, ka, kalen, flipped, palen), GN_EPEERID);
    CHECK_EQ(gni_kad_validators_validate(v, ka, kalen, NULL, 0), GN_EPARSE);
    /* the rest of the key must be a peer ID */
    CHECK_EQ(gni_kad_validators_validate(v, S("/pk/"), pa, palen), GN_EPARSE);
    CHECK_EQ(gni_kad_validators_validate(v, S("/pk/not-a-multihash"), pa, palen), GN_EPARSE);
    uint8_t truncated[80];
    memcpy(truncated, ka, kalen - 1);
    CHECK_EQ(gni_kad_validators_validate(v, truncated, kalen - 1, pa, palen), GN_EPARSE);
    /* bytes that are not a PublicKey protobuf, bound to their own peer ID */
    uint8_t junk[10] = {0xff, 0xff, 0xff, 1, 2, 3, 4, 5, 6, 7}, kj[80];
    size_t kjlen = pk_key_for(junk, sizeof junk, kj);
    CHECK_EQ(gni_kad_validators_validate(v, kj, kjlen, junk, sizeof junk), GN_EPARSE);
    /* Ed25519 with 31 bytes of key data */
    uint8_t short_ed[4 + 31] = {0x08, 0x01, 0x12, 31};
    memset(short_ed + 4, 7, 31);
    kjlen = pk_key_for(short_ed, sizeof short_ed, kj);
    CHECK_EQ(gni_kad_validators_validate(v, kj, kjlen, short_ed, sizeof short_ed), GN_EBADKEY);
    /* secp256k1 (identity peer ID) and RSA-sized (sha2-256 peer ID) keys: since
       issue 17 the key material is checked too, so bytes that are no key fail */
    uint8_t secp[4 + 33] = {0x08, 0x02, 0x12, 33};
    memset(secp + 4, 2, 33);
    secp[4] = 0x05; /* no point encoding starts so */
    kjlen = pk_key_for(secp, sizeof secp, kj);
    CHECK_EQ(kj[4], 0x00); /* identity multihash */
    CHECK_EQ(gni_kad_validators_validate(v, kj, kjlen, secp, sizeof secp), GN_EBADKEY);
    /* the spec's secp256k1 public key (peer-ids.md "Test vectors") passes */
    static const uint8_t secp_ok[37] = {
        0x08, 0x02, 0x12, 0x21, 0x03, 0x77, 0x77, 0xe9, 0x94, 0xe4, 0x52, 0xc2, 0x16,
        0x04, 0xf9, 0x1d, 0xe0, 0x93, 0xce, 0x41, 0x5f, 0x54, 0x32, 0xf7, 0x01, 0xdd,
        0x8c, 0xd1, 0xa7, 0xa6, 0xfe, 0xa0, 0xe6, 0x30, 0xbf, 0xca, 0x99};
    kjlen = pk_key_for(secp_ok, sizeof secp_ok, kj);
    CHECK_EQ(gni_kad_validators_validate(v, kj, kjlen, secp_ok, sizeof secp_ok), 0);
    uint8_t rsa[5 + 200] = {0x08, 0x00, 0x12, 0xc8, 0x01};
    memset(rsa + 5, 9, 200);
    kjlen = pk_key_for(rsa, sizeof rsa, kj);
    CHECK_EQ(kj[4], 0x12); /* sha2-256 multihash */
    CHECK_EQ(gni_kad_validators_validate(v, kj, kjlen, rsa, sizeof rsa), GN_EBADKEY);
    rsa[100] ^= 1;
    CHECK_EQ(gni_kad_validators_validate(v, kj, kjlen, rsa, sizeof rsa), GN_EPEERID);
    /* pk selector: any valid value is as good as another, the first wins */
    const uint8_t *vals[2] = {pa, pa};
    size_t lens[2] = {palen, palen}, best = 9;
    CHECK_OK(gni_kad_validators_select(v, ka, kalen, vals, lens, 2, &best));
    CHECK_EQ(best, 0);
    /* through the record store */
    gni_kad_records *rs = new_records(v, 16, 4096, GN_S);
    CHECK_EQ(gni_kad_records_put(rs, ka, kalen, pa, palen, 1, false), GNI_KAD_PUT_STORED);
    CHECK_EQ(gni_kad_records_put(rs, ka, kalen, pbk, pblen, 2, false), GN_EPEERID);
    CHECK_EQ(gni_kad_records_put(rs, ka, kalen, pa, palen, 3, false), GNI_KAD_PUT_SAME);
    gn_slice got;
    gn_time at = 0;
    CHECK_OK(gni_kad_records_get(rs, ka, kalen, 4, &got, &at));
    CHECK_EQ(got.len, palen);
    CHECK_MEM(got.base, pa, palen);
    CHECK_EQ(at, 3);
    CHECK_EQ(gni_kad_records_count(rs), 1);
    CHECK_EQ(gni_kad_records_bytes(rs), kalen + palen);
    gni_kad_records_free(rs);
    gni_kad_validators_free(v);
    gn_identity_free(a);
    gn_identity_free(b);
}

GN_TEST(records_selector_and_same)
{
    t_calls calls = {0, 0};
    gni_kad_validators *v = new_validators(&calls);
    gni_kad_records *rs = new_records(v, 16, 4096, 1000);
    CHECK_EQ(gni_kad_records_put(rs, S("/t/a"), S("v1"), 10, false), GNI_KAD_PUT_STORED);
    CHECK_EQ(calls.selected, 0);
    /* identical bytes: the receive time moves, no selector call */
    CHECK_EQ(gni_kad_records_put(rs, S("/t/a"), S("v1"), 20, false), GNI_KAD_PUT_SAME);
    CHECK_EQ(calls.selected, 0);
    gn_time at = 0;
    CHECK_OK(gni_kad_records_get(rs, S("/t/a"), 21, NULL, &at));
    CHECK_EQ(at, 20);
    /* worse: not stored */
    CHECK_EQ(gni_kad_records_put(rs, S("/t/a"), S("v0"), 30, false), GNI_KAD_PUT_KEPT);
    CHECK_EQ(calls.selected, 1);
    CHECK(has_value(rs, "/t/a", 31, "v1"));
    CHECK_OK(gni_kad_records_get(rs, S("/t/a"), 31, NULL, &at));
    CHECK_EQ(at, 20);
    /* better: replaces */
    CHECK_EQ(gni_kad_records_put(rs, S("/t/a"), S("v2-longer"), 40, false), GNI_KAD_PUT_STORED);
    CHECK(has_value(rs, "/t/a", 41, "v2-longer"));
    CHECK_EQ(gni_kad_records_bytes(rs), 4 + 9);
    /* as good (a tie): the stored value stays */
    CHECK_EQ(gni_kad_records_put(rs, S("/t/a"), S("v2"), 50, false), GNI_KAD_PUT_KEPT);
    CHECK(has_value(rs, "/t/a", 51, "v2-longer"));
    /* invalid: the validator's error, store unchanged */
    CHECK_EQ(gni_kad_records_put(rs, S("/t/a"), S("x9"), 60, false), GN_EPARSE);
    CHECK(has_value(rs, "/t/a", 61, "v2-longer"));
    /* a selector breaking its contract refuses the put */
    CHECK_OK(gni_kad_validators_register(v, "t", t_validate, bad_select, NULL));
    CHECK_EQ(gni_kad_records_put(rs, S("/t/a"), S("v5"), 70, false), GN_ECALLBACK);
    CHECK(has_value(rs, "/t/a", 71, "v2-longer"));
    /* separate keys are independent; an empty value is valid when the validator says so */
    CHECK_OK(gni_kad_validators_register(v, "e", t_validate, NULL, NULL));
    CHECK_EQ(gni_kad_records_put(rs, S("/e/x"), NULL, 0, 80, false), GN_EPARSE);
    CHECK_EQ(gni_kad_records_count(rs), 1);
    CHECK_EQ(gni_kad_records_remove(rs, S("/t/a")), 0);
    CHECK_EQ(gni_kad_records_remove(rs, S("/t/a")), GN_ENOTFOUND);
    CHECK_EQ(gni_kad_records_get(rs, S("/t/a"), 90, NULL, NULL), GN_ENOTFOUND);
    CHECK_EQ(gni_kad_records_count(rs), 0);
    CHECK_EQ(gni_kad_records_bytes(rs), 0);
    gni_kad_records_free(rs);
    gni_kad_records_free(NULL);
    gni_kad_validators_free(v);
}

GN_TEST(records_bounds_and_refusals)
{
    gni_kad_validators *v = new_validators(NULL);
    gni_kad_records_config cfg;
    gni_kad_records_config_default(&cfg);
    CHECK_EQ(cfg.max_records, 1024);
    CHECK_EQ(cfg.max_bytes, 16u * 1024u * 1024u);
    CHECK_EQ(cfg.max_value_len, 64u * 1024u);
    CHECK_EQ(cfg.ttl, 36ull * 3600ull * GN_S);
    gni_kad_records *rs = NULL;
    CHECK_EQ(gni_kad_records_new(NULL, NULL, &rs), GN_EINVAL);
    cfg.max_records = 0;
    CHECK_EQ(gni_kad_records_new(&cfg, v, &rs), GN_EINVAL);
    gni_kad_records_config_default(&cfg);
    cfg.ttl = 0;
    CHECK_EQ(gni_kad_records_new(&cfg, v, &rs), GN_EINVAL);
    CHECK(rs == NULL);
    gni_kad_records_config_default(&cfg);
    cfg.max_records = 3;
    cfg.max_bytes = 30;
    cfg.max_value_len = 8;
    cfg.max_key_len = 6;
    CHECK_OK(gni_kad_records_new(&cfg, v, &rs));
    /* arguments, lengths, namespaces */
    CHECK_EQ(gni_kad_records_put(rs, NULL, 0, S("v1"), 1, false), GN_EINVAL);
    CHECK_EQ(gni_kad_records_put(rs, S("/t/a"), NULL, 2, 1, false), GN_EINVAL);
    CHECK_EQ(gni_kad_records_put(rs, S("/t/abcd"), S("v1"), 1, false), GN_ETOOBIG);
    CHECK_EQ(gni_kad_records_put(rs, S("/t/a"), S("v12345678"), 1, false), GN_ETOOBIG);
    CHECK_EQ(gni_kad_records_put(rs, S("/u/a"), S("v1"), 1, false), GN_ENOTSUP);
    CHECK_EQ(gni_kad_records_put(rs, S("plain"), S("v1"), 1, false), GN_ENOTSUP);
    CHECK_EQ(gni_kad_records_count(rs), 0);
    /* the count bound: a remote put into a full store is refused, nothing evicted */
    CHECK_EQ(gni_kad_records_put(rs, S("/t/a"), S("v1"), 1, false), GNI_KAD_PUT_STORED);
    CHECK_EQ(gni_kad_records_put(rs, S("/t/b"), S("v1"), 2, false), GNI_KAD_PUT_STORED);
    CHECK_EQ(gni_kad_records_put(rs, S("/t/c"), S("v1"), 3, false), GNI_KAD_PUT_STORED);
    CHECK_EQ(gni_kad_records_put(rs, S("/t/d"), S("v1"), 4, false), GN_ELIMIT);
    CHECK_EQ(gni_kad_records_count(rs), 3);
    CHECK(has_value(rs, "/t/a", 5, "v1") && has_value(rs, "/t/b", 5, "v1") &&
          has_value(rs, "/t/c", 5, "v1"));
    CHECK_EQ(gni_kad_records_get(rs, S("/t/d"), 5, NULL, NULL), GN_ENOTFOUND);
    /* replacing in place needs no new slot; the byte bound still applies */
    CHECK_EQ(gni_kad_records_bytes(rs), 3 * 6);
    CHECK_EQ(gni_kad_records_put(rs, S("/t/a"), S("v2xxxx"), 6, false), GNI_KAD_PUT_STORED);
    CHECK_EQ(gni_kad_records_bytes(rs), 22);
    CHECK_EQ(gni_kad_records_put(rs, S("/t/b"), S("v2xxxxxx"), 7, false), GNI_KAD_PUT_STORED);
    CHECK_EQ(gni_kad_records_bytes(rs), 28);
    CHECK_EQ(gni_kad_records_put(rs, S("/t/c"), S("v2xxx"), 8, false), GN_ELIMIT); /* 31 > 30 */
    CHECK(has_value(rs, "/t/c", 9, "v1"));
    CHECK_EQ(gni_kad_records_put(rs, S("/t/c"), S("v2xx"), 8, false), GNI_KAD_PUT_STORED);
    CHECK_EQ(gni_kad_records_bytes(rs), 30);
    /* a smaller better value frees bytes */
    CHECK_EQ(gni_kad_records_put(rs, S("/t/b"), S("v3"), 9, false), GNI_KAD_PUT_STORED);
    CHECK_EQ(gni_kad_records_bytes(rs), 24);
    CHECK_EQ(gni_kad_records_remove(rs, S("/t/a")), 0);
    CHECK_EQ(gni_kad_records_put(rs, S("/t/d"), S("v1"), 10, false), GNI_KAD_PUT_STORED);
    CHECK_EQ(gni_kad_records_count(rs), 3);
    gni_kad_records_free(rs);
    gni_kad_validators_free(v);
}

GN_TEST(records_expiry_fake_clock)
{
    gni_kad_validators *v = new_validators(NULL);
    gni_kad_records *rs = new_records(v, 16, 4096, 100);
    CHECK_EQ(gni_kad_records_next_expiry(rs), GN_TIME_INFINITY);
    CHECK_EQ(gni_kad_records_put(rs, S("/t/own"), S("v1"), 0, true), GNI_KAD_PUT_STORED);
    CHECK_EQ(gni_kad_records_next_expiry(rs), GN_TIME_INFINITY); /* local: never expires */
    CHECK_EQ(gni_kad_records_put(rs, S("/t/a"), S("v1"), 10, false), GNI_KAD_PUT_STORED);
    CHECK_EQ(gni_kad_records_put(rs, S("/t/b"), S("v1"), 20, false), GNI_KAD_PUT_STORED);
    CHECK_EQ(gni_kad_records_put(rs, S("/t/c"), S("v1"), 30, false), GNI_KAD_PUT_STORED);
    CHECK_EQ(gni_kad_records_next_expiry(rs), 110);
    CHECK(has_value(rs, "/t/a", 109, "v1"));
    CHECK(!has_value(rs, "/t/a", 110, "v1")); /* get ignores it before expire() runs */
    CHECK_EQ(gni_kad_records_count(rs), 4);
    CHECK_EQ(gni_kad_records_expire(rs, 109), 0);
    CHECK_EQ(gni_kad_records_expire(rs, 110), 1);
    CHECK_EQ(gni_kad_records_count(rs), 3);
    CHECK_EQ(gni_kad_records_next_expiry(rs), 120);
    /* a re-put refreshes: b now expires after c */
    CHECK_EQ(gni_kad_records_put(rs, S("/t/b"), S("v1"), 50, false), GNI_KAD_PUT_SAME);
    CHECK_EQ(gni_kad_records_next_expiry(rs), 130);
    CHECK_EQ(gni_kad_records_expire(rs, 130), 1);
    CHECK(!has_value(rs, "/t/c", 130, "v1"));
    CHECK(has_value(rs, "/t/b", 130, "v1"));
    CHECK_EQ(gni_kad_records_next_expiry(rs), 150);
    /* a better value also restarts the clock */
    CHECK_EQ(gni_kad_records_put(rs, S("/t/b"), S("v2"), 140, false), GNI_KAD_PUT_STORED);
    CHECK_EQ(gni_kad_records_next_expiry(rs), 240);
    /* a clock that goes back is held at the largest time seen */
    CHECK_EQ(gni_kad_records_put(rs, S("/t/d"), S("v1"), 60, false), GNI_KAD_PUT_STORED);
    gn_time at = 0;
    CHECK_OK(gni_kad_records_get(rs, S("/t/d"), 140, NULL, &at));
    CHECK_EQ(at, 140);
    CHECK_EQ(gni_kad_records_expire(rs, 239), 0);
    CHECK_EQ(gni_kad_records_expire(rs, 240), 2);
    CHECK_EQ(gni_kad_records_next_expiry(rs), GN_TIME_INFINITY);
    /* the local record outlives everything */
    CHECK_EQ(gni_kad_records_expire(rs, GN_TIME_INFINITY), 0);
    CHECK(has_value(rs, "/t/own", GN_TIME_INFINITY - 1, "v1"));
    CHECK_EQ(gni_kad_records_count(rs), 1);
    CHECK_EQ(gni_kad_records_bytes(rs), 6 + 2);
    /* a full store of dead records takes new remote puts: put expires first */
    gni_kad_records *small = new_records(v, 2, 100, 100);
    CHECK_EQ(gni_kad_records_put(small, S("/t/a"), S("v9"), 10, false), GNI_KAD_PUT_STORED);
    CHECK_EQ(gni_kad_records_put(small, S("/t/b"), S("v1"), 20, false), GNI_KAD_PUT_STORED);
    CHECK_EQ(gni_kad_records_put(small, S("/t/c"), S("v1"), 109, false), GN_ELIMIT);
    CHECK_EQ(gni_kad_records_put(small, S("/t/c"), S("v1"), 110, false), GNI_KAD_PUT_STORED);
    /* and a dead value does not compete: a worse value is stored over an expired one */
    CHECK_EQ(gni_kad_records_put(small, S("/t/b"), S("v0"), 120, false), GNI_KAD_PUT_STORED);
    CHECK(has_value(small, "/t/b", 121, "v0"));
    CHECK_EQ(gni_kad_records_count(small), 2);
    gni_kad_records_free(small);
    /* a TTL past the end of time saturates */
    gni_kad_records *far = new_records(v, 4, 100, GN_TIME_INFINITY - 5);
    CHECK_EQ(gni_kad_records_put(far, S("/t/a"), S("v1"), 10, false), GNI_KAD_PUT_STORED);
    CHECK_EQ(gni_kad_records_next_expiry(far), GN_TIME_INFINITY);
    CHECK_EQ(gni_kad_records_expire(far, GN_TIME_INFINITY - 1), 0);
    gni_kad_records_free(far);
    gni_kad_records_free(rs);
    gni_kad_validators_free(v);
}

GN_TEST(records_local_survive_full_store)
{
    gni_kad_validators *v = new_validators(NULL);
    gni_kad_records *rs = new_records(v, 4, 4096, 1000);
    CHECK_EQ(gni_kad_records_put(rs, S("/t/L1"), S("v1"), 1, true), GNI_KAD_PUT_STORED);
    CHECK_EQ(gni_kad_records_put(rs, S("/t/r1"), S("v1"), 2, false), GNI_KAD_PUT_STORED);
    CHECK_EQ(gni_kad_records_put(rs, S("/t/r2"), S("v1"), 3, false), GNI_KAD_PUT_STORED);
    CHECK_EQ(gni_kad_records_put(rs, S("/t/r3"), S("v1"), 4, false), GNI_KAD_PUT_STORED);
    CHECK_EQ(gni_kad_records_local_count(rs), 1);
    /* full: remote puts are refused, whatever they are */
    CHECK_EQ(gni_kad_records_put(rs, S("/t/r4"), S("v1"), 5, false), GN_ELIMIT);
    /* a remote re-put of r1 refreshes it: r2 becomes the oldest remote */
    CHECK_EQ(gni_kad_records_put(rs, S("/t/r1"), S("v1"), 6, false), GNI_KAD_PUT_SAME);
    /* a local put evicts the least recently put remote record */
    CHECK_EQ(gni_kad_records_put(rs, S("/t/L2"), S("v1"), 7, true), GNI_KAD_PUT_STORED);
    CHECK_EQ(gni_kad_records_count(rs), 4);
    CHECK(!has_value(rs, "/t/r2", 8, "v1"));
    CHECK(has_value(rs, "/t/r1", 8, "v1") && has_value(rs, "/t/r3", 8, "v1"));
    CHECK(has_value(rs, "/t/L1", 8, "v1") && has_value(rs, "/t/L2", 8, "v1"));
    CHECK_EQ(gni_kad_records_local_count(rs), 2);
    /* a local put of a key held remotely makes it local, no eviction */
    CHECK_EQ(gni_kad_records_put(rs, S("/t/r3"), S("v1"), 9, true), GNI_KAD_PUT_SAME);
    CHECK_EQ(gni_kad_records_local_count(rs), 3);
    CHECK_EQ(gni_kad_records_count(rs), 4);
    /* local puts take the last remote slot, then are refused too */
    CHECK_EQ(gni_kad_records_put(rs, S("/t/L4"), S("v1"), 10, true), GNI_KAD_PUT_STORED);
    CHECK(!has_value(rs, "/t/r1", 11, "v1"));
    CHECK_EQ(gni_kad_records_put(rs, S("/t/L5"), S("v1"), 12, true), GN_ELIMIT);
    CHECK_EQ(gni_kad_records_put(rs, S("/t/r5"), S("v1"), 12, false), GN_ELIMIT);
    CHECK_EQ(gni_kad_records_local_count(rs), 4);
    /* listed in the order they became local */
    const char *want[4] = {"/t/L1", "/t/L2", "/t/r3", "/t/L4"};
    for (size_t i = 0; i < 4; i++) {
        gn_slice k, val;
        gn_time at = 0;
        CHECK_OK(gni_kad_records_local_at(rs, i, &k, &val, &at));
        CHECK_EQ(k.len, strlen(want[i]));
        CHECK_MEM(k.base, want[i], k.len);
        CHECK_EQ(val.len, 2);
    }
    CHECK_EQ(gni_kad_records_local_at(rs, 4, NULL, NULL, NULL), GN_ENOTFOUND);
    /* a better remote value replaces a local one, which stays local */
    CHECK_EQ(gni_kad_records_put(rs, S("/t/L2"), S("v7"), 13, false), GNI_KAD_PUT_STORED);
    gn_slice k, val;
    CHECK_OK(gni_kad_records_local_at(rs, 1, &k, &val, NULL));
    CHECK_MEM(val.base, "v7", 2);
    /* a local value that loses leaves the stored one */
    CHECK_EQ(gni_kad_records_put(rs, S("/t/L2"), S("v3"), 14, true), GNI_KAD_PUT_KEPT);
    CHECK(has_value(rs, "/t/L2", 15, "v7"));
    /* nothing expires, even far later */
    CHECK_EQ(gni_kad_records_expire(rs, 1000000), 0);
    CHECK_EQ(gni_kad_records_count(rs), 4);
    /* removal ends publishing; order of the rest kept */
    CHECK_EQ(gni_kad_records_remove(rs, S("/t/L1")), 0);
    CHECK_EQ(gni_kad_records_local_count(rs), 3);
    CHECK_OK(gni_kad_records_local_at(rs, 0, &k, NULL, NULL));
    CHECK_MEM(k.base, "/t/L2", 5);
    gni_kad_records_free(rs);

    /* the byte bound: a big local value evicts as many remote records as needed */
    rs = new_records(v, 100, 40, 1000);
    CHECK_EQ(gni_kad_records_put(rs, S("/t/a"), S("v1xxxx"), 1, false), GNI_KAD_PUT_STORED);
    CHECK_EQ(gni_kad_records_put(rs, S("/t/b"), S("v1xxxx"), 2, false), GNI_KAD_PUT_STORED);
    CHECK_EQ(gni_kad_records_put(rs, S("/t/c"), S("v1xxxx"), 3, false), GNI_KAD_PUT_STORED);
    CHECK_EQ(gni_kad_records_put(rs, S("/t/d"), S("v1xxxx"), 4, false), GNI_KAD_PUT_STORED);
    CHECK_EQ(gni_kad_records_bytes(rs), 40);
    CHECK_EQ(gni_kad_records_put(rs, S("/t/big"), S("v1xxxxxxxxxxxx"), 5, true),
             GNI_KAD_PUT_STORED); /* 20 bytes: a and b go */
    CHECK_EQ(gni_kad_records_count(rs), 3);
    CHECK_EQ(gni_kad_records_bytes(rs), 40);
    CHECK(!has_value(rs, "/t/a", 6, "v1xxxx") && !has_value(rs, "/t/b", 6, "v1xxxx"));
    CHECK(has_value(rs, "/t/c", 6, "v1xxxx") && has_value(rs, "/t/d", 6, "v1xxxx"));
    /* growing a remote record into a local one evicts others, never itself */
    CHECK_EQ(gni_kad_records_put(rs, S("/t/d"), S("v2xxxxxxxx"), 7, true), GNI_KAD_PUT_STORED);
    CHECK(!has_value(rs, "/t/c", 8, "v1xxxx"));
    CHECK(has_value(rs, "/t/d", 8, "v2xxxxxxxx"));
    CHECK_EQ(gni_kad_records_local_count(rs), 2);
    CHECK_EQ(gni_kad_records_bytes(rs), 20 + 14);
    /* more than the remote records can free: refused, nothing evicted */
    CHECK_EQ(gni_kad_records_put(rs, S("/t/e"), S("v1"), 9, false), GNI_KAD_PUT_STORED);
    CHECK_EQ(gni_kad_records_put(rs, S("/t/f"), S("v1xxxxxx"), 10, true), GN_ELIMIT);
    CHECK(has_value(rs, "/t/e", 11, "v1"));
    gni_kad_records_free(rs);
    gni_kad_validators_free(v);
}

/* ---- providers ---- */

static void pid_of(unsigned i, gn_peer_id *out)
{
    memset(out, 0, sizeof *out);
    out->len = 34;
    out->bytes[0] = 0x12;
    out->bytes[1] = 0x20;
    out->bytes[2] = (uint8_t)i;
    out->bytes[3] = (uint8_t)(i >> 8);
}

static gni_kad_providers *new_providers(size_t per_key, size_t keys, size_t total, gn_time ttl)
{
    gni_kad_providers_config cfg;
    gni_kad_providers_config_default(&cfg);
    cfg.max_per_key = per_key;
    cfg.max_keys = keys;
    cfg.max_total = total;
    cfg.ttl = ttl;
    gni_kad_providers *ps = NULL;
    CHECK_OK(gni_kad_providers_new(&cfg, &ps));
    return ps;
}

/* get(@key) at @now returns exactly the peers @want (pid_of numbers), in order. */
static void expect_providers(const gni_kad_providers *ps, const char *key, gn_time now,
                             const unsigned *want, size_t n)
{
    const gni_kad_provider *out[16];
    size_t got = gni_kad_providers_get(ps, S(key), now, out, 16);
    CHECK_EQ(got, n);
    for (size_t i = 0; i < n; i++) {
        gn_peer_id p;
        pid_of(want[i], &p);
        CHECK(gn_peer_id_equal(&out[i]->id, &p));
    }
}

GN_TEST(providers_order_and_replacement)
{
    gni_kad_providers_config cfg;
    gni_kad_providers_config_default(&cfg);
    CHECK_EQ(cfg.max_per_key, 64);
    CHECK_EQ(cfg.max_keys, 4096);
    CHECK_EQ(cfg.max_total, 16384);
    CHECK_EQ(cfg.max_addrs, 4);
    CHECK_EQ(cfg.ttl, 48ull * 3600ull * GN_S);
    gni_kad_providers *ps = NULL;
    cfg.max_addrs = GNI_KAD_PROV_ADDRS_MAX + 1;
    CHECK_EQ(gni_kad_providers_new(&cfg, &ps), GN_EINVAL);
    CHECK(ps == NULL);
    ps = new_providers(3, 8, 100, 1000);
    gn_peer_id p[5], empty;
    memset(&empty, 0, sizeof empty);
    for (unsigned i = 0; i < 5; i++) {
        pid_of(i, &p[i]);
    }
    CHECK_EQ(gni_kad_providers_add(ps, S("k"), &empty, NULL, 0, 1), GN_EINVAL);
    CHECK_EQ(gni_kad_providers_add(ps, NULL, 0, &p[0], NULL, 0, 1), GN_EINVAL);
    CHECK_EQ(gni_kad_providers_add(ps, S("k"), &p[0], NULL, 0, 1), GNI_KAD_PROV_ADDED);
    CHECK_EQ(gni_kad_providers_add(ps, S("k"), &p[1], NULL, 0, 2), GNI_KAD_PROV_ADDED);
    CHECK_EQ(gni_kad_providers_add(ps, S("k"), &p[2], NULL, 0, 3), GNI_KAD_PROV_ADDED);
    const unsigned o1[] = {2, 1, 0};
    expect_providers(ps, "k", 4, o1, 3);
    /* refresh: p0 becomes the newest */
    CHECK_EQ(gni_kad_providers_add(ps, S("k"), &p[0], NULL, 0, 5), GNI_KAD_PROV_REFRESHED);
    const unsigned o2[] = {0, 2, 1};
    expect_providers(ps, "k", 6, o2, 3);
    CHECK_EQ(gni_kad_providers_count(ps), 3);
    /* full key: the oldest announcement (p1) gives way */
    CHECK_EQ(gni_kad_providers_add(ps, S("k"), &p[3], NULL, 0, 7), GNI_KAD_PROV_REPLACED);
    const unsigned o3[] = {3, 0, 2};
    expect_providers(ps, "k", 8, o3, 3);
    CHECK_EQ(gni_kad_providers_add(ps, S("k"), &p[4], NULL, 0, 9), GNI_KAD_PROV_REPLACED);
    const unsigned o4[] = {4, 3, 0};
    expect_providers(ps, "k", 10, o4, 3);
    CHECK_EQ(gni_kad_providers_count(ps), 3);
    CHECK_EQ(gni_kad_providers_key_count(ps), 1);
    /* get honours max */
    const gni_kad_provider *one[1];
    CHECK_EQ(gni_kad_providers_get(ps, S("k"), 10, one, 1), 1);
    CHECK(gn_peer_id_equal(&one[0]->id, &p[4]));
    CHECK_EQ(one[0]->added, 9);
    CHECK_EQ(gni_kad_providers_get(ps, S("other"), 10, one, 1), 0);
    gni_kad_providers_free(ps);
    gni_kad_providers_free(NULL);
}

GN_TEST(providers_refresh_addresses)
{
    gni_kad_providers *ps = new_providers(8, 8, 100, 1000);
    gn_peer_id p;
    pid_of(1, &p);
    uint8_t big[GNI_KAD_PROV_ADDR_BYTES + 1];
    memset(big, 4, sizeof big);
    gn_slice a[7] = {gn_slice_of("A1", 2), gn_slice_of("B22", 3), gn_slice_of("A1", 2),
                     gn_slice_of(big, sizeof big), gn_slice_of("", 0), gn_slice_of("C", 1),
                     gn_slice_of("D", 1)};
    const gni_kad_provider *out[2];
    /* duplicates, oversize and empty addresses skipped; the first 4 kept */
    CHECK_EQ(gni_kad_providers_add(ps, S("k"), &p, a, 7, 1), GNI_KAD_PROV_ADDED);
    CHECK_EQ(gni_kad_providers_get(ps, S("k"), 1, out, 2), 1);
    CHECK_EQ(out[0]->naddrs, 4);
    CHECK_EQ(out[0]->addrs[0].len, 2);
    CHECK_MEM(out[0]->addrs[0].base, "A1", 2);
    CHECK_MEM(out[0]->addrs[1].base, "B22", 3);
    CHECK_MEM(out[0]->addrs[2].base, "C", 1);
    CHECK_MEM(out[0]->addrs[3].base, "D", 1);
    CHECK(out[0]->addrs[0].base != a[0].base); /* copied */
    /* a refresh replaces the addresses and the time, not the count */
    gn_slice b[1] = {gn_slice_of("E", 1)};
    CHECK_EQ(gni_kad_providers_add(ps, S("k"), &p, b, 1, 2), GNI_KAD_PROV_REFRESHED);
    CHECK_EQ(gni_kad_providers_get(ps, S("k"), 2, out, 2), 1);
    CHECK_EQ(out[0]->naddrs, 1);
    CHECK_MEM(out[0]->addrs[0].base, "E", 1);
    CHECK_EQ(out[0]->added, 2);
    /* a refresh without storable addresses keeps them */
    CHECK_EQ(gni_kad_providers_add(ps, S("k"), &p, a + 3, 2, 3), GNI_KAD_PROV_REFRESHED);
    CHECK_EQ(gni_kad_providers_get(ps, S("k"), 3, out, 2), 1);
    CHECK_EQ(out[0]->naddrs, 1);
    CHECK_MEM(out[0]->addrs[0].base, "E", 1);
    CHECK_EQ(out[0]->added, 3);
    CHECK_EQ(gni_kad_providers_count(ps), 1);
    gni_kad_providers_free(ps);
    /* max_addrs 0 stores none */
    gni_kad_providers_config cfg;
    gni_kad_providers_config_default(&cfg);
    cfg.max_addrs = 0;
    CHECK_OK(gni_kad_providers_new(&cfg, &ps));
    CHECK_EQ(gni_kad_providers_add(ps, S("k"), &p, a, 7, 1), GNI_KAD_PROV_ADDED);
    CHECK_EQ(gni_kad_providers_get(ps, S("k"), 1, out, 2), 1);
    CHECK_EQ(out[0]->naddrs, 0);
    gni_kad_providers_free(ps);
}

GN_TEST(providers_bounds)
{
    gni_kad_providers_config cfg;
    gni_kad_providers_config_default(&cfg);
    cfg.max_per_key = 2;
    cfg.max_keys = 2;
    cfg.max_total = 3;
    cfg.max_key_len = 4;
    gni_kad_providers *ps = NULL;
    CHECK_OK(gni_kad_providers_new(&cfg, &ps));
    gn_peer_id p[4];
    for (unsigned i = 0; i < 4; i++) {
        pid_of(i, &p[i]);
    }
    CHECK_EQ(gni_kad_providers_add(ps, S("12345"), &p[0], NULL, 0, 1), GN_ETOOBIG);
    CHECK_EQ(gni_kad_providers_add(ps, S("k1"), &p[0], NULL, 0, 1), GNI_KAD_PROV_ADDED);
    CHECK_EQ(gni_kad_providers_add(ps, S("k2"), &p[0], NULL, 0, 2), GNI_KAD_PROV_ADDED);
    CHECK_EQ(gni_kad_providers_add(ps, S("k3"), &p[0], NULL, 0, 3), GN_ELIMIT); /* keys */
    CHECK_EQ(gni_kad_providers_add(ps, S("k1"), &p[1], NULL, 0, 4), GNI_KAD_PROV_ADDED);
    CHECK_EQ(gni_kad_providers_count(ps), 3);
    CHECK_EQ(gni_kad_providers_add(ps, S("k2"), &p[1], NULL, 0, 5), GN_ELIMIT); /* total */
    /* a full key still takes a newer provider in place of its oldest */
    CHECK_EQ(gni_kad_providers_add(ps, S("k1"), &p[2], NULL, 0, 6), GNI_KAD_PROV_REPLACED);
    const unsigned o[] = {2, 1};
    expect_providers(ps, "k1", 7, o, 2);
    /* refreshes are never refused by the bounds */
    CHECK_EQ(gni_kad_providers_add(ps, S("k2"), &p[0], NULL, 0, 8), GNI_KAD_PROV_REFRESHED);
    CHECK_EQ(gni_kad_providers_count(ps), 3);
    CHECK_EQ(gni_kad_providers_key_count(ps), 2);
    gni_kad_providers_free(ps);
}

GN_TEST(providers_expiry_fake_clock)
{
    gni_kad_providers *ps = new_providers(8, 8, 100, 100);
    gn_peer_id p[3];
    for (unsigned i = 0; i < 3; i++) {
        pid_of(i, &p[i]);
    }
    CHECK_EQ(gni_kad_providers_next_expiry(ps), GN_TIME_INFINITY);
    CHECK_OK(gni_kad_providers_add(ps, S("k1"), &p[0], NULL, 0, 10));
    CHECK_OK(gni_kad_providers_add(ps, S("k2"), &p[1], NULL, 0, 20));
    CHECK_OK(gni_kad_providers_add(ps, S("k1"), &p[2], NULL, 0, 30));
    CHECK_EQ(gni_kad_providers_next_expiry(ps), 110);
    const unsigned both[] = {2, 0}, newest[] = {2};
    expect_providers(ps, "k1", 109, both, 2);
    expect_providers(ps, "k1", 110, newest, 1); /* skipped before expire() runs */
    CHECK_EQ(gni_kad_providers_count(ps), 3);
    CHECK_EQ(gni_kad_providers_expire(ps, 110), 1);
    CHECK_EQ(gni_kad_providers_count(ps), 2);
    CHECK_EQ(gni_kad_providers_key_count(ps), 2);
    CHECK_EQ(gni_kad_providers_next_expiry(ps), 120);
    /* a refresh moves the deadline */
    CHECK_EQ(gni_kad_providers_add(ps, S("k2"), &p[1], NULL, 0, 60), GNI_KAD_PROV_REFRESHED);
    CHECK_EQ(gni_kad_providers_next_expiry(ps), 130);
    CHECK_EQ(gni_kad_providers_expire(ps, 130), 1); /* k1 empties and goes */
    CHECK_EQ(gni_kad_providers_key_count(ps), 1);
    CHECK_EQ(gni_kad_providers_get(ps, S("k1"), 130, NULL, 0), 0);
    /* a clock that goes back is held */
    CHECK_EQ(gni_kad_providers_add(ps, S("k3"), &p[0], NULL, 0, 5), GNI_KAD_PROV_ADDED);
    const gni_kad_provider *out[1];
    CHECK_EQ(gni_kad_providers_get(ps, S("k3"), 131, out, 1), 1);
    CHECK_EQ(out[0]->added, 60);
    CHECK_EQ(gni_kad_providers_expire(ps, 160), 2);
    CHECK_EQ(gni_kad_providers_count(ps), 0);
    gni_kad_providers_free(ps);
    /* a full store of dead entries takes new announcements: add expires first */
    ps = new_providers(8, 1, 1, 100);
    CHECK_EQ(gni_kad_providers_add(ps, S("k1"), &p[0], NULL, 0, 10), GNI_KAD_PROV_ADDED);
    CHECK_EQ(gni_kad_providers_add(ps, S("k2"), &p[1], NULL, 0, 109), GN_ELIMIT);
    CHECK_EQ(gni_kad_providers_add(ps, S("k2"), &p[1], NULL, 0, 110), GNI_KAD_PROV_ADDED);
    CHECK_EQ(gni_kad_providers_get(ps, S("k1"), 110, out, 1), 0);
    CHECK_EQ(gni_kad_providers_expire(ps, 210), 1);
    CHECK_EQ(gni_kad_providers_count(ps), 0);
    CHECK_EQ(gni_kad_providers_key_count(ps), 0);
    CHECK_EQ(gni_kad_providers_next_expiry(ps), GN_TIME_INFINITY);
    gni_kad_providers_free(ps);
}

GN_TEST(providers_local_keys)
{
    gni_kad_providers *ps = new_providers(8, 3, 100, 100);
    CHECK_EQ(gni_kad_providers_local_add(ps, NULL, 0, 1), GN_EINVAL);
    CHECK_EQ(gni_kad_providers_local_add(ps, S("k1"), 1), GNI_KAD_PROV_ADDED);
    CHECK_EQ(gni_kad_providers_local_add(ps, S("k2"), 2), GNI_KAD_PROV_ADDED);
    CHECK_EQ(gni_kad_providers_local_add(ps, S("k3"), 3), GNI_KAD_PROV_ADDED);
    CHECK_EQ(gni_kad_providers_local_add(ps, S("k4"), 4), GN_ELIMIT);
    /* republished: k1 becomes the most recently announced */
    CHECK_EQ(gni_kad_providers_local_add(ps, S("k1"), 5), GNI_KAD_PROV_REFRESHED);
    const char *order[] = {"k2", "k3", "k1"};
    const gn_time times[] = {2, 3, 5};
    for (size_t i = 0; i < 3; i++) {
        gn_slice k;
        gn_time at = 0;
        CHECK_OK(gni_kad_providers_local_at(ps, i, &k, &at));
        CHECK_EQ(k.len, 2);
        CHECK_MEM(k.base, order[i], 2);
        CHECK_EQ(at, times[i]);
    }
    CHECK_EQ(gni_kad_providers_local_at(ps, 3, NULL, NULL), GN_ENOTFOUND);
    /* they never expire and are no provider entries */
    CHECK_EQ(gni_kad_providers_expire(ps, GN_TIME_INFINITY), 0);
    CHECK_EQ(gni_kad_providers_local_count(ps), 3);
    CHECK_EQ(gni_kad_providers_count(ps), 0);
    CHECK_EQ(gni_kad_providers_local_remove(ps, S("k3")), 0);
    CHECK_EQ(gni_kad_providers_local_remove(ps, S("k3")), GN_ENOTFOUND);
    CHECK_EQ(gni_kad_providers_local_count(ps), 2);
    gn_slice k;
    CHECK_OK(gni_kad_providers_local_at(ps, 1, &k, NULL));
    CHECK_MEM(k.base, "k1", 2);
    CHECK_EQ(gni_kad_providers_local_add(ps, S("k4"), 6), GNI_KAD_PROV_ADDED);
    gni_kad_providers_free(ps); /* frees the local keys too (ASan checks) */
}

/* ---- allocation failure ---- */

/* Runs @expr; on GN_ENOMEM checks @cnt_expr is unchanged and ends the scenario. */
#define FA_STEP(cnt_expr, expr)                                                             \
    do {                                                                                     \
        size_t before_ = (cnt_expr);                                                         \
        int rc_ = (expr);                                                                    \
        if (rc_ == GN_ENOMEM) {                                                              \
            CHECK_EQ((cnt_expr), before_);                                                   \
            err = rc_;                                                                       \
            goto out;                                                                        \
        }                                                                                    \
        CHECK_OK(rc_);                                                                       \
    } while (0)

static int fa_scenario(void)
{
    int err = 0;
    gni_kad_validators *v = NULL;
    gni_kad_records *rs = NULL;
    gni_kad_providers *ps = NULL;
    FA_STEP(0, gni_kad_validators_new(&v));
    CHECK_OK(gni_kad_validators_register(v, "t", t_validate, t_select, NULL));
    gni_kad_records_config rc;
    gni_kad_records_config_default(&rc);
    rc.max_records = 20;
    FA_STEP(0, gni_kad_records_new(&rc, v, &rs));
    char key[16];
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof key, "/t/r%d", i);
        FA_STEP(gni_kad_records_count(rs) * 1000 + gni_kad_records_bytes(rs),
                gni_kad_records_put(rs, S(key), S("v1"), (gn_time)i, i % 5 == 0));
    }
    /* replace, same, local eviction */
    FA_STEP(gni_kad_records_bytes(rs), gni_kad_records_put(rs, S("/t/r1"), S("v2yy"), 30, false));
    FA_STEP(gni_kad_records_local_count(rs),
            gni_kad_records_put(rs, S("/t/r2"), S("v1"), 31, true));
    FA_STEP(gni_kad_records_local_count(rs),
            gni_kad_records_put(rs, S("/t/new"), S("v1"), 32, true));
    CHECK_EQ(gni_kad_records_count(rs), 20);
    gni_kad_providers_config pc;
    gni_kad_providers_config_default(&pc);
    pc.max_per_key = 3;
    FA_STEP(0, gni_kad_providers_new(&pc, &ps));
    gn_slice addrs[2] = {gn_slice_of("/a", 2), gn_slice_of("/bb", 3)};
    for (unsigned i = 0; i < 12; i++) {
        gn_peer_id p;
        pid_of(i % 5, &p);
        snprintf(key, sizeof key, "k%u", i % 4);
        FA_STEP(gni_kad_providers_count(ps) * 1000 + gni_kad_providers_key_count(ps),
                gni_kad_providers_add(ps, S(key), &p, addrs + (i % 2), 1 + (i % 2 == 0),
                                      (gn_time)i));
        FA_STEP(gni_kad_providers_local_count(ps),
                gni_kad_providers_local_add(ps, S(key), (gn_time)i));
    }
    CHECK_EQ(gni_kad_providers_local_count(ps), 4);
out:
    gni_kad_providers_free(ps);
    gni_kad_records_free(rs);
    gni_kad_validators_free(v);
    return err;
}

GN_TEST(allocation_failures)
{
    size_t failures = fa_every_k(fa_scenario, 1000);
    CHECK(failures > 10);
}

GN_TEST_MAIN(GN_T(validators_registry), GN_T(pk_namespace), GN_T(records_selector_and_same),
             GN_T(records_bounds_and_refusals), GN_T(records_expiry_fake_clock),
             GN_T(records_local_survive_full_store), GN_T(providers_order_and_replacement),
             GN_T(providers_refresh_addresses), GN_T(providers_bounds),
             GN_T(providers_expiry_fake_clock), GN_T(providers_local_keys),
             GN_T(allocation_failures))
