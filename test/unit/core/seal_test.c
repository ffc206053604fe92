/*
 * Tests for include/golemnet/seal.h (core/seal.c).
 * Spec: docs/protocols/ecies.md sections 15 and 16.
 *
 * Known-answer vectors were computed once with an independent implementation
 * written from the spec (Python 3, `cryptography` 48.0: X25519, Ed25519,
 * ChaCha20Poly1305, HKDFExpand; the Ed25519 -> X25519 public key map
 * u = (1 + y) / (1 - y) mod 2^255 - 19 computed by hand) and frozen here.
 * Inputs: recipient/signer = gn_identity_from_int_seed(1); ephemeral secret
 * from test_rng = bytes 0x10, 0x11, ..., 0x2f.
 */
#include "golemnet/seal.h"

#include "gn_test.h"
#include "golemnet/err.h"
#include "golemnet/identity.h"

static void test_rng_fill(void *ud, uint8_t *out, size_t len)
{
    (void)ud;
    for (size_t i = 0; i < len; i++) {
        out[i] = (uint8_t)(0x10 + i);
    }
}
static const gn_rng test_rng = {test_rng_fill, NULL};

static const char kat_msg[] = "golemnet sealed message KAT";
static const char kat_sealed[] =
    "0101d89e3bad79437dbed9f843418304f460ff05c7fe81fe4a9577a804cb9367ff66bd46dfcc1cd8235c4cc0"
    "70b023a3d5fda6c75ff57988f2b17d11fac533ba5145096df8892e63388d85431f";
static const char kat_sealed_aad[] = /* aad = "aad-1" */
    "0101d89e3bad79437dbed9f843418304f460ff05c7fe81fe4a9577a804cb9367ff66bd46dfcc1cd8235c4cc0"
    "70b023a3d5fda6c75ff57988f2b17d11fae0ead9ef8a295bb5079d60d6c609ceca";
static const char kat_sealed_empty[] =
    "0101d89e3bad79437dbed9f843418304f460ff05c7fe81fe4a9577a804cb9367ff66d7189896bddf149a1a0b"
    "1808e8b02bd0";
/* gn_sign(seed 1, "golem/test", "hello golemnet") and gn_sign(seed 1, NULL, "") */
static const char kat_sig[] =
    "01c34e2b39d17689c78b9243d330c43e4f233e95dc1d9a949b5f85302c951aefaadb98146fc8e6688213795b"
    "ed01a541fecf675d54bfb47e15b05f75527070480b";
static const char kat_sig_empty[] =
    "019cb7760b0da42815a5c9bd00dd5a4382329a71f5c8d978e3764ee048da9726f014c2b8ebfe70633a878922"
    "649d073eb2d4d3e6e1922b54783a2e1838ce3c9607";

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    long n = gn_test_unhex(hex, out, cap);
    CHECK(n >= 0);
    return (size_t)n;
}

GN_TEST(sizes)
{
    CHECK_EQ(gn_seal_overhead(), GN_SEAL_OVERHEAD);
    CHECK_EQ(GN_SEAL_OVERHEAD, 50);
    CHECK_EQ(gn_sign_bytes(), GN_SIGN_BYTES);
    CHECK_EQ(GN_SIGN_BYTES, 65);
    CHECK_EQ(gn_sign_context_max(), 255);
}

GN_TEST(seal_kat)
{
    gn_identity *id;
    CHECK_OK(gn_identity_from_int_seed(1, &id));
    uint8_t pub[32], out[256], exp[256], plain[256];
    gn_identity_public_key(id, pub);
    size_t mlen = strlen(kat_msg), n = 0, pn = 0;

    CHECK_OK(gn_seal(pub, (const uint8_t *)kat_msg, mlen, NULL, 0, &test_rng, out, sizeof out,
                     &n));
    CHECK_EQ(n, mlen + GN_SEAL_OVERHEAD);
    CHECK_EQ(n, unhex(kat_sealed, exp, sizeof exp));
    CHECK_MEM(out, exp, n);
    CHECK_OK(gn_seal_open(id, out, n, NULL, 0, plain, sizeof plain, &pn));
    CHECK_EQ(pn, mlen);
    CHECK_MEM(plain, kat_msg, mlen);

    CHECK_OK(gn_seal(pub, (const uint8_t *)kat_msg, mlen, (const uint8_t *)"aad-1", 5,
                     &test_rng, out, sizeof out, &n));
    CHECK_EQ(n, unhex(kat_sealed_aad, exp, sizeof exp));
    CHECK_MEM(out, exp, n);
    CHECK_OK(gn_seal_open(id, out, n, (const uint8_t *)"aad-1", 5, plain, sizeof plain, &pn));
    CHECK_EQ(gn_seal_open(id, out, n, NULL, 0, plain, sizeof plain, &pn), GN_EDECRYPT);
    CHECK_EQ(gn_seal_open(id, out, n, (const uint8_t *)"aad-2", 5, plain, sizeof plain, &pn),
             GN_EDECRYPT);

    CHECK_OK(gn_seal(pub, NULL, 0, NULL, 0, &test_rng, out, sizeof out, &n));
    CHECK_EQ(n, unhex(kat_sealed_empty, exp, sizeof exp));
    CHECK_MEM(out, exp, n);
    pn = 99;
    CHECK_OK(gn_seal_open(id, out, n, NULL, 0, NULL, 0, &pn));
    CHECK_EQ(pn, 0);
    gn_identity_free(id);
}

GN_TEST(seal_roundtrip_system_rng)
{
    gn_identity *id;
    CHECK_OK(gn_identity_generate(&id));
    uint8_t pub[32];
    gn_identity_public_key(id, pub);
    static uint8_t msg[70000], sealed[70000 + GN_SEAL_OVERHEAD], plain[70000];
    for (size_t k = 0; k < sizeof msg; k++) {
        msg[k] = (uint8_t)(k ^ (k >> 8));
    }
    size_t lens[] = {0, 1, 15, 16, 17, 1000, sizeof msg};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        size_t n = 0, pn = 0;
        CHECK_OK(gn_seal(pub, msg, lens[k], NULL, 0, NULL, sealed, sizeof sealed, &n));
        CHECK_EQ(n, lens[k] + GN_SEAL_OVERHEAD);
        CHECK_OK(gn_seal_open(id, sealed, n, NULL, 0, plain, sizeof plain, &pn));
        CHECK_EQ(pn, lens[k]);
        CHECK_MEM(plain, msg, lens[k]);
    }
    /* Two seals of the same message differ (fresh ephemeral key). */
    uint8_t s1[64], s2[64];
    size_t n1, n2;
    CHECK_OK(gn_seal(pub, msg, 8, NULL, 0, NULL, s1, sizeof s1, &n1));
    CHECK_OK(gn_seal(pub, msg, 8, NULL, 0, NULL, s2, sizeof s2, &n2));
    CHECK(memcmp(s1, s2, n1) != 0);
    gn_identity_free(id);
}

GN_TEST(seal_tamper_truncate_wrong_recipient)
{
    gn_identity *id, *other;
    CHECK_OK(gn_identity_from_int_seed(1, &id));
    CHECK_OK(gn_identity_from_int_seed(2, &other));
    uint8_t pub[32], sealed[128], plain[128];
    gn_identity_public_key(id, pub);
    size_t n, pn = 1234;
    CHECK_OK(gn_seal(pub, (const uint8_t *)kat_msg, strlen(kat_msg), NULL, 0, NULL, sealed,
                     sizeof sealed, &n));
    /* Every byte, every bit. */
    for (size_t pos = 0; pos < n; pos++) {
        for (int bit = 0; bit < 8; bit++) {
            sealed[pos] ^= (uint8_t)(1u << bit);
            int rc = gn_seal_open(id, sealed, n, NULL, 0, plain, sizeof plain, &pn);
            if (pos < 2) {
                CHECK_EQ(rc, GN_EVERSION);
            } else {
                CHECK_EQ(rc, GN_EDECRYPT);
            }
            sealed[pos] ^= (uint8_t)(1u << bit);
        }
    }
    CHECK_EQ(pn, 1234); /* untouched on failure */
    /* Every truncation. */
    for (size_t cut = 1; cut <= n; cut++) {
        int rc = gn_seal_open(id, sealed, n - cut, NULL, 0, plain, sizeof plain, &pn);
        CHECK(rc == (n - cut < GN_SEAL_OVERHEAD ? GN_EPARSE : GN_EDECRYPT));
    }
    /* Appended byte. */
    sealed[n] = 0;
    CHECK_EQ(gn_seal_open(id, sealed, n + 1, NULL, 0, plain, sizeof plain, &pn), GN_EDECRYPT);
    /* Wrong recipient. */
    CHECK_EQ(gn_seal_open(other, sealed, n, NULL, 0, plain, sizeof plain, &pn), GN_EDECRYPT);
    /* Output too small; then it opens. */
    CHECK_EQ(gn_seal_open(id, sealed, n, NULL, 0, plain, n - GN_SEAL_OVERHEAD - 1, &pn),
             GN_ENOSPC);
    CHECK_OK(gn_seal_open(id, sealed, n, NULL, 0, plain, n - GN_SEAL_OVERHEAD, &pn));
    CHECK_EQ(pn, strlen(kat_msg));
    /* Low-order ephemeral key (all zero). */
    memset(sealed + 2, 0, 32);
    CHECK_EQ(gn_seal_open(id, sealed, n, NULL, 0, plain, sizeof plain, &pn), GN_EDECRYPT);
    gn_identity_free(id);
    gn_identity_free(other);
}

GN_TEST(seal_bad_args)
{
    gn_identity *id;
    CHECK_OK(gn_identity_from_int_seed(1, &id));
    uint8_t pub[32], out[128], plain[8];
    gn_identity_public_key(id, pub);
    size_t n = 77;
    CHECK_EQ(gn_seal(pub, (const uint8_t *)"x", 1, NULL, 0, NULL, out, GN_SEAL_OVERHEAD, &n),
             GN_ENOSPC);
    CHECK_EQ(n, 77);
    CHECK_EQ(gn_seal(NULL, NULL, 0, NULL, 0, NULL, out, sizeof out, &n), GN_EINVAL);
    CHECK_EQ(gn_seal(pub, NULL, 1, NULL, 0, NULL, out, sizeof out, &n), GN_EINVAL);
    /* Not a point on the curve: y = 2 has no x (libsodium rejects it). */
    uint8_t bad[32] = {2};
    CHECK_EQ(gn_seal(bad, NULL, 0, NULL, 0, NULL, out, sizeof out, &n), GN_EBADKEY);
    /* Small-order point (the identity element, y = 1). */
    uint8_t small[32] = {1};
    CHECK_EQ(gn_seal(small, NULL, 0, NULL, 0, NULL, out, sizeof out, &n), GN_EBADKEY);
    CHECK_EQ(gn_seal_open(id, (const uint8_t *)"\x01", 1, NULL, 0, plain, 8, &n), GN_EPARSE);
    CHECK_EQ(gn_seal_open(id, (const uint8_t *)"\x02\x01", 2, NULL, 0, plain, 8, &n),
             GN_EVERSION);
    CHECK_EQ(gn_seal_open(id, (const uint8_t *)"\x01\x02", 2, NULL, 0, plain, 8, &n),
             GN_EVERSION);
    CHECK_EQ(gn_seal_open(id, (const uint8_t *)"\x01\x01", 2, NULL, 0, plain, 8, &n), GN_EPARSE);
    CHECK_EQ(gn_seal_open(NULL, out, 60, NULL, 0, plain, 8, &n), GN_EINVAL);
    gn_identity_free(id);
}

GN_TEST(sign_kat_and_verify)
{
    gn_identity *id, *other;
    CHECK_OK(gn_identity_from_int_seed(1, &id));
    CHECK_OK(gn_identity_from_int_seed(2, &other));
    uint8_t pub[32], pub2[32], sig[GN_SIGN_BYTES], exp[GN_SIGN_BYTES];
    gn_identity_public_key(id, pub);
    gn_identity_public_key(other, pub2);
    const uint8_t *m = (const uint8_t *)"hello golemnet";
    size_t ml = 14;

    CHECK_OK(gn_sign(id, "golem/test", m, ml, sig));
    CHECK_EQ(unhex(kat_sig, exp, sizeof exp), GN_SIGN_BYTES);
    CHECK_MEM(sig, exp, GN_SIGN_BYTES);
    CHECK_OK(gn_verify(pub, "golem/test", m, ml, sig));
    CHECK_EQ(gn_verify(pub2, "golem/test", m, ml, sig), GN_EBADSIG);
    CHECK_EQ(gn_verify(pub, "golem/test2", m, ml, sig), GN_EBADSIG);
    CHECK_EQ(gn_verify(pub, NULL, m, ml, sig), GN_EBADSIG);
    CHECK_EQ(gn_verify(pub, "golem/test", m, ml - 1, sig), GN_EBADSIG);
    for (size_t pos = 0; pos < GN_SIGN_BYTES; pos++) {
        sig[pos] ^= 0x04;
        CHECK_EQ(gn_verify(pub, "golem/test", m, ml, sig), pos == 0 ? GN_EVERSION : GN_EBADSIG);
        sig[pos] ^= 0x04;
    }

    CHECK_OK(gn_sign(id, NULL, NULL, 0, sig));
    unhex(kat_sig_empty, exp, sizeof exp);
    CHECK_MEM(sig, exp, GN_SIGN_BYTES);
    CHECK_OK(gn_verify(pub, "", NULL, 0, sig)); /* NULL context == "" */

    /* Context limit: 255 bytes is fine, 256 is not. */
    char ctx[257];
    memset(ctx, 'c', 256);
    ctx[256] = 0;
    CHECK_EQ(gn_sign(id, ctx, m, ml, sig), GN_EINVAL);
    CHECK_EQ(gn_verify(pub, ctx, m, ml, sig), GN_EINVAL);
    ctx[255] = 0;
    CHECK_OK(gn_sign(id, ctx, m, ml, sig));
    CHECK_OK(gn_verify(pub, ctx, m, ml, sig));
    CHECK_EQ(gn_sign(NULL, NULL, m, ml, sig), GN_EINVAL);
    CHECK_EQ(gn_sign(id, NULL, NULL, 1, sig), GN_EINVAL);
    gn_identity_free(id);
    gn_identity_free(other);
}

GN_TEST_MAIN(GN_T(sizes), GN_T(seal_kat), GN_T(seal_roundtrip_system_rng),
             GN_T(seal_tamper_truncate_wrong_recipient), GN_T(seal_bad_args),
             GN_T(sign_kat_and_verify))
