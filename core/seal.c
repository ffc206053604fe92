/*
 * seal.c - sealed messages to an Ed25519 identity and context-bound
 * signatures. Spec: docs/protocols/ecies.md sections 15 and 16.
 */
#include "golemnet/seal.h"

#include "golemnet/err.h"
#include "golemnet/log.h"
#include "gni.h"

#include <sodium.h>
#include <string.h>

#define SEAL_HDR 34 /* version || suite || E */
#define SEAL_SALT "golem-seal/1"
#define SEAL_INFO "golem-seal/1 key"
#define SIGN_PREFIX "golem-sign/1"

size_t gn_seal_overhead(void)
{
    return GN_SEAL_OVERHEAD;
}

size_t gn_sign_bytes(void)
{
    return GN_SIGN_BYTES;
}

size_t gn_sign_context_max(void)
{
    return GN_SIGN_CONTEXT_MAX;
}

/* k = HKDF-Expand(HKDF-Extract("golem-seal/1", dh), "golem-seal/1 key" || E || R, 32)
 * (section 15). */
static void seal_kdf(uint8_t k[32], const uint8_t dh[32], const uint8_t epk[32],
                     const uint8_t recipient[32])
{
    uint8_t prk[32];
    uint8_t info[sizeof SEAL_INFO - 1 + 64];
    gni_hkdf_sha256_extract(prk, (const uint8_t *)SEAL_SALT, sizeof SEAL_SALT - 1, dh, 32);
    memcpy(info, SEAL_INFO, sizeof SEAL_INFO - 1);
    memcpy(info + sizeof SEAL_INFO - 1, epk, 32);
    memcpy(info + sizeof SEAL_INFO - 1 + 32, recipient, 32);
    int rc = gni_hkdf_sha256_expand(k, 32, prk, sizeof prk, info, sizeof info);
    assert(rc == 0); /* 32 bytes, valid pointers: cannot fail */
    (void)rc;
    sodium_memzero(prk, sizeof prk);
}

/* AEAD associated data: header || aad. Returns a buffer to gn_free, or @hdr itself
 * when @aad_len is 0 (*@owned false). NULL on allocation failure. */
static const uint8_t *seal_ad(const uint8_t *hdr, const uint8_t *aad, size_t aad_len,
                              size_t *ad_len, bool *owned)
{
    *owned = false;
    *ad_len = SEAL_HDR;
    if (aad_len == 0) {
        return hdr;
    }
    if (aad_len > SIZE_MAX - SEAL_HDR) {
        return NULL;
    }
    uint8_t *ad = gn_malloc(SEAL_HDR + aad_len);
    if (!ad) {
        return NULL;
    }
    memcpy(ad, hdr, SEAL_HDR);
    memcpy(ad + SEAL_HDR, aad, aad_len);
    *ad_len = SEAL_HDR + aad_len;
    *owned = true;
    return ad;
}

int gn_seal(const uint8_t recipient[GN_ED25519_PUBLICKEYBYTES], const uint8_t *msg,
            size_t msg_len, const uint8_t *aad, size_t aad_len, const gn_rng *rng, uint8_t *out,
            size_t out_cap, size_t *out_len)
{
    if (!recipient || !out || (!msg && msg_len) || (!aad && aad_len)) {
        return GN_EINVAL;
    }
    if (msg_len > crypto_aead_chacha20poly1305_ietf_MESSAGEBYTES_MAX ||
        msg_len > SIZE_MAX - GN_SEAL_OVERHEAD) {
        return GN_ETOOBIG;
    }
    if (out_cap < msg_len + GN_SEAL_OVERHEAD) {
        return GN_ENOSPC;
    }
    if (sodium_init() < 0) {
        return GN_ECRYPTO;
    }
    if (!rng) {
        rng = gn_rng_system();
    }
    uint8_t rx[32];
    if (crypto_sign_ed25519_pk_to_curve25519(rx, recipient) != 0) {
        return GN_EBADKEY;
    }
    /* e_sk, dh, k */
    uint8_t *sec = sodium_malloc(96);
    if (!sec) {
        return GN_ENOMEM;
    }
    int rc = 0;
    uint8_t *e_sk = sec, *dh = sec + 32, *k = sec + 64;
    out[0] = GN_SEAL_VERSION;
    out[1] = GN_SEAL_SUITE_X25519_CHACHAPOLY;
    gn_rng_fill(rng, e_sk, 32);
    crypto_scalarmult_curve25519_base(out + 2, e_sk);
    if (crypto_scalarmult_curve25519(dh, e_sk, rx) != 0) {
        rc = GN_EBADKEY; /* recipient maps to a low-order point */
        goto out;
    }
    seal_kdf(k, dh, out + 2, recipient);
    size_t ad_len;
    bool owned;
    const uint8_t *ad = seal_ad(out, aad, aad_len, &ad_len, &owned);
    if (!ad) {
        rc = GN_ENOMEM;
        goto out;
    }
    static const uint8_t zero_nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
    unsigned long long clen = 0;
    crypto_aead_chacha20poly1305_ietf_encrypt(out + SEAL_HDR, &clen, msg, msg_len, ad, ad_len,
                                              NULL, zero_nonce, k);
    if (owned) {
        gn_free((void *)ad);
    }
    if (out_len) {
        *out_len = SEAL_HDR + (size_t)clen;
    }
out:
    sodium_free(sec);
    return rc;
}

int gn_seal_open(const gn_identity *id, const uint8_t *sealed, size_t sealed_len,
                 const uint8_t *aad, size_t aad_len, uint8_t *out, size_t out_cap,
                 size_t *out_len)
{
    if (!id || !sealed || (!out && out_cap) || (!aad && aad_len)) {
        return GN_EINVAL;
    }
    if (sealed_len < 2) {
        return GN_EPARSE;
    }
    if (sealed[0] != GN_SEAL_VERSION || sealed[1] != GN_SEAL_SUITE_X25519_CHACHAPOLY) {
        return GN_EVERSION;
    }
    if (sealed_len < GN_SEAL_OVERHEAD) {
        return GN_EPARSE;
    }
    size_t mlen = sealed_len - GN_SEAL_OVERHEAD;
    if (out_cap < mlen) {
        return GN_ENOSPC;
    }
    uint8_t dummy[1];
    if (!out) {
        out = dummy; /* empty plaintext, @out_cap 0 */
    }
    if (sodium_init() < 0) {
        return GN_ECRYPTO;
    }
    uint8_t *sec = sodium_malloc(96); /* xsk, dh, k */
    if (!sec) {
        return GN_ENOMEM;
    }
    uint8_t *xsk = sec, *dh = sec + 32, *k = sec + 64;
    uint8_t ed_pk[32];
    int rc = gni_identity_x25519_secret(id, xsk);
    if (rc < 0) {
        goto out;
    }
    gn_identity_public_key(id, ed_pk);
    if (crypto_scalarmult_curve25519(dh, xsk, sealed + 2) != 0) {
        rc = GN_EDECRYPT; /* low-order ephemeral key */
        goto out;
    }
    seal_kdf(k, dh, sealed + 2, ed_pk);
    size_t ad_len;
    bool owned;
    const uint8_t *ad = seal_ad(sealed, aad, aad_len, &ad_len, &owned);
    if (!ad) {
        rc = GN_ENOMEM;
        goto out;
    }
    static const uint8_t zero_nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
    unsigned long long plen = 0;
    if (crypto_aead_chacha20poly1305_ietf_decrypt(out, &plen, NULL, sealed + SEAL_HDR,
                                                  sealed_len - SEAL_HDR, ad, ad_len, zero_nonce,
                                                  k) != 0) {
        rc = GN_EDECRYPT;
        sodium_memzero(out, mlen);
    } else if (out_len) {
        *out_len = (size_t)plen;
    }
    if (owned) {
        gn_free((void *)ad);
    }
out:
    sodium_free(sec);
    return rc;
}

/* Builds "golem-sign/1" || u8(clen) || context || msg in a gn_malloc'd buffer. */
static uint8_t *sign_tbs(const char *context, const uint8_t *msg, size_t msg_len,
                         size_t *tbs_len, int *err)
{
    size_t clen = context ? strlen(context) : 0;
    size_t plen = sizeof SIGN_PREFIX - 1;
    *err = GN_EINVAL;
    if (clen > GN_SIGN_CONTEXT_MAX || (!msg && msg_len) ||
        msg_len > SIZE_MAX - (plen + 1 + clen)) {
        return NULL;
    }
    size_t n = plen + 1 + clen + msg_len;
    uint8_t *b = gn_malloc(n ? n : 1);
    if (!b) {
        *err = GN_ENOMEM;
        return NULL;
    }
    memcpy(b, SIGN_PREFIX, plen);
    b[plen] = (uint8_t)clen;
    if (clen) {
        memcpy(b + plen + 1, context, clen);
    }
    if (msg_len) {
        memcpy(b + plen + 1 + clen, msg, msg_len);
    }
    *tbs_len = n;
    return b;
}

int gn_sign(const gn_identity *id, const char *context, const uint8_t *msg, size_t msg_len,
            uint8_t sig[GN_SIGN_BYTES])
{
    if (!id || !sig) {
        return GN_EINVAL;
    }
    if (gn_identity_key_type(id) != GN_KEY_ED25519) {
        return GN_EBADKEY; /* the format is Ed25519's (ecies.md section 16) */
    }
    size_t n;
    int err;
    uint8_t *tbs = sign_tbs(context, msg, msg_len, &n, &err);
    if (!tbs) {
        return err;
    }
    sig[0] = GN_SIGN_VERSION;
    gn_identity_sign(id, tbs, n, sig + 1);
    gn_free(tbs);
    return 0;
}

int gn_verify(const uint8_t pub[GN_ED25519_PUBLICKEYBYTES], const char *context,
              const uint8_t *msg, size_t msg_len, const uint8_t sig[GN_SIGN_BYTES])
{
    if (!pub || !sig) {
        return GN_EINVAL;
    }
    if (sig[0] != GN_SIGN_VERSION) {
        return GN_EVERSION;
    }
    size_t n;
    int err;
    uint8_t *tbs = sign_tbs(context, msg, msg_len, &n, &err);
    if (!tbs) {
        return err;
    }
    int rc = gn_ed25519_verify(pub, tbs, n, sig + 1);
    gn_free(tbs);
    return rc == 0 ? 0 : GN_EBADSIG;
}
