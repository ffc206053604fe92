/*
 * hkdf.c - HKDF-SHA256 (RFC 5869) over libsodium's HMAC-SHA256, shared by
 * the ECIES channel and sealed messages (docs/protocols/ecies.md section 1).
 * libsodium 1.0.18 has no HKDF; this is RFC 5869 sections 2.2 and 2.3
 * exactly, tested with the RFC's appendix A vectors (test/unit/core/hkdf_test.c).
 */
#include "gni.h"

#include <sodium.h>
#include <string.h>

#define HKDF_HASHLEN crypto_auth_hmacsha256_BYTES /* 32 */

void gni_hkdf_sha256_extract(uint8_t prk[32], const uint8_t *salt, size_t salt_len,
                             const uint8_t *ikm, size_t ikm_len)
{
    static const uint8_t zero[HKDF_HASHLEN];
    crypto_auth_hmacsha256_state st;
    /* An absent salt is HashLen zero bytes (section 2.2). */
    if (!salt || !salt_len) {
        salt = zero;
        salt_len = sizeof zero;
    }
    crypto_auth_hmacsha256_init(&st, salt, salt_len);
    crypto_auth_hmacsha256_update(&st, ikm_len ? ikm : zero, ikm_len);
    crypto_auth_hmacsha256_final(&st, prk);
    sodium_memzero(&st, sizeof st);
}

int gni_hkdf_sha256_expand(uint8_t *out, size_t out_len, const uint8_t *prk, size_t prk_len,
                           const uint8_t *info, size_t info_len)
{
    if ((!out && out_len) || !prk || (!info && info_len) || out_len > 255u * HKDF_HASHLEN) {
        return GN_EINVAL;
    }
    crypto_auth_hmacsha256_state st;
    uint8_t t[HKDF_HASHLEN];
    size_t done = 0;
    /* T(i) = HMAC(prk, T(i-1) || info || u8(i)), T(0) empty (section 2.3). */
    for (unsigned i = 1; done < out_len; i++) {
        uint8_t ctr = (uint8_t)i;
        crypto_auth_hmacsha256_init(&st, prk, prk_len);
        if (i > 1) {
            crypto_auth_hmacsha256_update(&st, t, sizeof t);
        }
        if (info_len) {
            crypto_auth_hmacsha256_update(&st, info, info_len);
        }
        crypto_auth_hmacsha256_update(&st, &ctr, 1);
        crypto_auth_hmacsha256_final(&st, t);
        size_t n = GNI_MIN(sizeof t, out_len - done);
        memcpy(out + done, t, n);
        done += n;
    }
    sodium_memzero(&st, sizeof st);
    sodium_memzero(t, sizeof t);
    return 0;
}
