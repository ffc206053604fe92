/*
 * Kademlia key space (protocols/kad/kad_key.c): SHA-256 keys of peer IDs and
 * record keys against digests computed independently (Python hashlib),
 * XOR distance, distance ordering and common-prefix length.
 */
#include "kad_key.h"

#include "gn_test.h"
#include "golemnet/err.h"
#include "golemnet/identity.h"

#include <sodium.h>

/* Identity-multihash peer ID of an Ed25519 key whose 32 bytes are 00..1f:
 * 00 24 (identity, 36 bytes) 08 01 (KeyType Ed25519) 12 20 (Data, 32 bytes). */
static const char *PID_HEX = "002408011220000102030405060708090a0b0c0d0e0f"
                             "101112131415161718191a1b1c1d1e1f";

GN_TEST(key_of_peer_known_sha256)
{
    uint8_t raw[64], exp[32];
    long n = gn_test_unhex(PID_HEX, raw, sizeof raw);
    CHECK_EQ(n, 38);
    gn_peer_id pid;
    CHECK_OK(gn_peer_id_from_bytes(raw, (size_t)n, &pid));
    gni_kad_key k, k2;
    gni_kad_key_from_peer(&pid, &k);
    CHECK_EQ(gn_test_unhex("3850f1dedc79dcb027d80793d2a732dbb2cbd4d149ea0e4be5ceb97b1596ce75",
                           exp, 32),
             32);
    CHECK_MEM(k.b, exp, 32);
    /* the same bytes as a record key give the same point */
    gni_kad_key_from_bytes(raw, (size_t)n, &k2);
    CHECK_MEM(k2.b, exp, 32);
}

GN_TEST(key_of_bytes_known_sha256)
{
    uint8_t exp[32];
    gni_kad_key k;
    gni_kad_key_from_bytes((const uint8_t *)"/v/hello", 8, &k);
    CHECK_EQ(gn_test_unhex("ec404978872dbe3cf0dc4016e16600d62dd4b815d0277765afd9db098e145f5c",
                           exp, 32),
             32);
    CHECK_MEM(k.b, exp, 32);
    gni_kad_key_from_bytes(NULL, 0, &k);
    CHECK_EQ(gn_test_unhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                           exp, 32),
             32);
    CHECK_MEM(k.b, exp, 32);
}

GN_TEST(distance_xor_and_symmetry)
{
    gni_kad_key a, b, d1, d2, zero;
    memset(&zero, 0, sizeof zero);
    gni_kad_key_from_bytes((const uint8_t *)"a", 1, &a);
    gni_kad_key_from_bytes((const uint8_t *)"b", 1, &b);
    gni_kad_distance(&a, &b, &d1);
    gni_kad_distance(&b, &a, &d2);
    CHECK_MEM(d1.b, d2.b, 32);
    for (int i = 0; i < 32; i++)
        CHECK_EQ(d1.b[i], (uint8_t)(a.b[i] ^ b.b[i]));
    gni_kad_distance(&a, &a, &d1);
    CHECK_MEM(d1.b, zero.b, 32);
    /* aliasing output and input */
    gni_kad_key c = a;
    gni_kad_distance(&c, &b, &c);
    gni_kad_distance(&a, &b, &d2);
    CHECK_MEM(c.b, d2.b, 32);
}

GN_TEST(cmp_distance_orders_by_xor)
{
    gni_kad_key t, a, b;
    memset(&t, 0, sizeof t);
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    a.b[31] = 1;    /* distance 1 */
    b.b[0] = 0x01;  /* distance 2^248 */
    CHECK(gni_kad_cmp_distance(&t, &a, &b) < 0);
    CHECK(gni_kad_cmp_distance(&t, &b, &a) > 0);
    CHECK_EQ(gni_kad_cmp_distance(&t, &a, &a), 0);
    /* relative to a target with the top bit set, a key with the top bit set
     * is closer than one without, whatever the lower bits */
    t.b[0] = 0x80;
    a.b[0] = 0x80;
    a.b[31] = 0xff;
    memset(&b, 0, sizeof b);
    CHECK(gni_kad_cmp_distance(&t, &a, &b) < 0);
    CHECK(gni_kad_cmp_distance(&t, &b, &a) > 0);
}

GN_TEST(cpl_counts_leading_equal_bits)
{
    gni_kad_key a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    CHECK_EQ(gni_kad_cpl(&a, &b), 256u);
    b.b[0] = 0x80;
    CHECK_EQ(gni_kad_cpl(&a, &b), 0u);
    b.b[0] = 0x01;
    CHECK_EQ(gni_kad_cpl(&a, &b), 7u);
    b.b[0] = 0;
    b.b[1] = 0x20;
    CHECK_EQ(gni_kad_cpl(&a, &b), 10u);
    CHECK_EQ(gni_kad_cpl(&b, &a), 10u);
    memset(&b, 0, sizeof b);
    b.b[31] = 1;
    CHECK_EQ(gni_kad_cpl(&a, &b), 255u);
    /* cpl(a, b) equals the leading zero bits of the distance */
    gni_kad_key x, y, d;
    gni_kad_key_from_bytes((const uint8_t *)"x", 1, &x);
    gni_kad_key_from_bytes((const uint8_t *)"y", 1, &y);
    gni_kad_distance(&x, &y, &d);
    memset(&a, 0, sizeof a);
    CHECK_EQ(gni_kad_cpl(&x, &y), gni_kad_cpl(&d, &a));
}

GN_TEST_MAIN(GN_T(key_of_peer_known_sha256), GN_T(key_of_bytes_known_sha256),
             GN_T(distance_xor_and_symmetry), GN_T(cmp_distance_orders_by_xor),
             GN_T(cpl_counts_leading_equal_bits))
