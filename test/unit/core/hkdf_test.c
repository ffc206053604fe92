/*
 * HKDF-SHA256 (core/hkdf.c) against RFC 5869 appendix A: test case 1
 * (A.1, basic), test case 3 (A.3, empty salt and info) and the length
 * bound; plus the X25519 secret of an identity (core/identity.c).
 */
#include "gni.h"

#include "gn_test.h"
#include "golemnet/err.h"
#include "golemnet/identity.h"

#include <sodium.h>

/* RFC 5869 A.1: IKM = 22 x 0x0b, salt = 0x00..0x0c, info = 0xf0..0xf9, L = 42. */
GN_TEST(rfc5869_case1)
{
    uint8_t ikm[22], salt[13], info[10], prk[32], okm[42], exp[42];
    memset(ikm, 0x0b, sizeof ikm);
    for (int i = 0; i < 13; i++) {
        salt[i] = (uint8_t)i;
    }
    for (int i = 0; i < 10; i++) {
        info[i] = (uint8_t)(0xf0 + i);
    }
    gni_hkdf_sha256_extract(prk, salt, sizeof salt, ikm, sizeof ikm);
    CHECK_EQ(gn_test_unhex("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
                           exp, 32),
             32);
    CHECK_MEM(prk, exp, 32);
    CHECK_OK(gni_hkdf_sha256_expand(okm, 42, prk, 32, info, sizeof info));
    CHECK_EQ(gn_test_unhex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
                           "34007208d5b887185865",
                           exp, 42),
             42);
    CHECK_MEM(okm, exp, 42);
    /* a shorter output is a prefix of the longer one */
    uint8_t okm7[7];
    CHECK_OK(gni_hkdf_sha256_expand(okm7, 7, prk, 32, info, sizeof info));
    CHECK_MEM(okm7, exp, 7);
}

/* RFC 5869 A.3: IKM = 22 x 0x0b, salt and info empty, L = 42. */
GN_TEST(rfc5869_case3_and_bounds)
{
    uint8_t ikm[22], prk[32], okm[42], exp[42];
    memset(ikm, 0x0b, sizeof ikm);
    gni_hkdf_sha256_extract(prk, NULL, 0, ikm, sizeof ikm);
    CHECK_EQ(gn_test_unhex("19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
                           exp, 32),
             32);
    CHECK_MEM(prk, exp, 32);
    CHECK_OK(gni_hkdf_sha256_expand(okm, 42, prk, 32, NULL, 0));
    CHECK_EQ(gn_test_unhex("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
                           "9d201395faa4b61a96c8",
                           exp, 42),
             42);
    CHECK_MEM(okm, exp, 42);
    /* L <= 255 * HashLen (section 2.3) */
    static uint8_t big[255 * 32 + 1];
    CHECK_OK(gni_hkdf_sha256_expand(big, 255 * 32, prk, 32, NULL, 0));
    CHECK_EQ(gni_hkdf_sha256_expand(big, 255 * 32 + 1, prk, 32, NULL, 0), GN_EINVAL);
    CHECK_EQ(gni_hkdf_sha256_expand(okm, 42, prk, 32, NULL, 3), GN_EINVAL);
}

/* The identity's X25519 secret matches the public key map of its Ed25519 key. */
GN_TEST(identity_x25519_secret)
{
    gn_identity *id;
    CHECK_OK(gn_identity_from_int_seed(1, &id));
    uint8_t xsk[32], xpk[32], edpk[32], xpk_from_ed[32];
    CHECK_OK(gni_identity_x25519_secret(id, xsk));
    CHECK_EQ(crypto_scalarmult_curve25519_base(xpk, xsk), 0);
    gn_identity_public_key(id, edpk);
    CHECK_EQ(crypto_sign_ed25519_pk_to_curve25519(xpk_from_ed, edpk), 0);
    CHECK_MEM(xpk, xpk_from_ed, 32);
    CHECK_EQ(gni_identity_x25519_secret(NULL, xsk), GN_EINVAL);
    sodium_memzero(xsk, sizeof xsk);
    gn_identity_free(id);
}

GN_TEST_MAIN(GN_T(rfc5869_case1), GN_T(rfc5869_case3_and_bounds), GN_T(identity_x25519_secret))
