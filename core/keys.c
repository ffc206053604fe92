/*
 * Key material of every libp2p key type: Ed25519 (libsodium), RSA and ECDSA
 * (OpenSSL 3 libcrypto), secp256k1 (libsecp256k1). See keys.h for the
 * encodings; no primitive is implemented here, only the libraries' calls.
 *
 * Spec: libp2p/specs peer-ids/peer-ids.md "Key Types".
 */
#include "keys.h"

#include "gni.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <secp256k1.h>
#include <sodium.h>
#include <string.h>

#define K_ED_SK 64
#define K_ED_PK 32
#define K_SECP_SK 32
#define K_SECP_PK 33
#define K_SHA256 32

/* ---- helpers ------------------------------------------------------------------ */

static int k_sodium_ready(void)
{
    return sodium_init() < 0 ? GN_ECRYPTO : 0;
}

static int k_set_pub(gni_privkey *k, const uint8_t *d, size_t len)
{
    k->pub = gn_malloc(len ? len : 1);
    if (!k->pub) {
        return GN_ENOMEM;
    }
    memcpy(k->pub, d, len);
    k->pub_len = len;
    return 0;
}

/* DER SubjectPublicKeyInfo of an OpenSSL key into k->pub. */
static int k_set_pub_spki(gni_privkey *k, EVP_PKEY *pkey)
{
    int n = i2d_PUBKEY(pkey, NULL);
    if (n <= 0 || n > GN_PUBKEY_MAX_BYTES) {
        return GN_ECRYPTO;
    }
    k->pub = gn_malloc((size_t)n);
    if (!k->pub) {
        return GN_ENOMEM;
    }
    unsigned char *p = k->pub;
    if (i2d_PUBKEY(pkey, &p) != n) {
        return GN_ECRYPTO;
    }
    k->pub_len = (size_t)n;
    return 0;
}

/* Is the group of an EC key one we accept (P-256, P-384, P-521)? */
static bool k_ec_curve_ok(EVP_PKEY *pkey)
{
    char name[64];
    size_t nl = 0;
    if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof name,
                                       &nl) != 1) {
        return false;
    }
    return strcmp(name, "prime256v1") == 0 || strcmp(name, "P-256") == 0 ||
           strcmp(name, "secp384r1") == 0 || strcmp(name, "P-384") == 0 ||
           strcmp(name, "secp521r1") == 0 || strcmp(name, "P-521") == 0;
}

/*
 * The RSA public exponent: odd and 3 <= e <= 2^31 - 1 (go-libp2p's bound). A
 * huge e would make every verification cost about a private-key operation.
 */
static int k_rsa_e_ok(EVP_PKEY *pkey)
{
    BIGNUM *e = NULL;
    if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e) != 1) {
        return GN_EBADKEY;
    }
    int rc = BN_is_odd(e) && BN_num_bits(e) <= 31 && !BN_is_one(e) ? 0 : GN_EBADKEY;
    BN_free(e);
    return rc;
}

/* Type, size and curve checks shared by public and private OpenSSL keys. */
static int k_openssl_key_ok(gn_key_type type, EVP_PKEY *pkey)
{
    if (type == GN_KEY_RSA) {
        if (!EVP_PKEY_is_a(pkey, "RSA")) {
            return GN_EBADKEY;
        }
        int bits = EVP_PKEY_get_bits(pkey);
        if (bits < GNI_RSA_MIN_BITS || bits > GNI_RSA_MAX_BITS) {
            return GN_EBADKEY;
        }
        return k_rsa_e_ok(pkey);
    }
    if (!EVP_PKEY_is_a(pkey, "EC") || !k_ec_curve_ok(pkey)) {
        return GN_EBADKEY;
    }
    return 0;
}

/* Does a UTF-8 string parameter of @pkey equal @want? */
static bool k_param_is(EVP_PKEY *pkey, const char *name, const char *want)
{
    char v[32];
    size_t vl = 0;
    return EVP_PKEY_get_utf8_string_param(pkey, name, v, sizeof v, &vl) == 1 &&
           strcmp(v, want) == 0;
}

/*
 * EC keys: a named curve and an uncompressed point, the one encoding go and
 * js accept; compressed points or explicit parameters would give the same key
 * several peer IDs.
 */
static bool k_ec_encoding_ok(EVP_PKEY *pkey)
{
    return k_param_is(pkey, OSSL_PKEY_PARAM_EC_ENCODING, OSSL_PKEY_EC_ENCODING_GROUP) &&
           k_param_is(pkey, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                      OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_UNCOMPRESSED);
}

/* Makes our own EC key encode as k_ec_encoding_ok wants. */
static int k_ec_set_encoding(EVP_PKEY *pkey)
{
    if (EVP_PKEY_set_utf8_string_param(pkey, OSSL_PKEY_PARAM_EC_ENCODING,
                                       OSSL_PKEY_EC_ENCODING_GROUP) != 1 ||
        EVP_PKEY_set_utf8_string_param(pkey, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                       OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_UNCOMPRESSED) != 1) {
        return GN_ECRYPTO;
    }
    return 0;
}

/* Parses and checks a DER SubjectPublicKeyInfo; canonical DER only. */
static int k_spki_parse(gn_key_type type, const uint8_t *d, size_t len, EVP_PKEY **out)
{
    if (len == 0 || len > GN_PUBKEY_MAX_BYTES) {
        return GN_EBADKEY;
    }
    const unsigned char *p = d;
    EVP_PKEY *pkey = d2i_PUBKEY(NULL, &p, (long)len);
    if (!pkey) {
        return GN_EBADKEY;
    }
    int rc = GN_EBADKEY;
    uint8_t *again = NULL;
    if (p != d + len || k_openssl_key_ok(type, pkey) != 0 ||
        (type == GN_KEY_ECDSA && !k_ec_encoding_ok(pkey))) {
        goto out;
    }
    /* One key, one encoding, one peer ID: re-encoding must give the input. */
    int n = i2d_PUBKEY(pkey, &again);
    if (n != (int)len || memcmp(again, d, len) != 0) {
        goto out;
    }
    /*
     * EC: the point must be on the curve and not at infinity. The quick
     * check skips the full one's multiplication by the group order, which
     * proves nothing more on our cofactor-1 curves and cost a scalar
     * multiplication per check (callers check, then verify: twice per
     * signature). RSA gets no more than the size and exponent checks (as
     * go-libp2p): OpenSSL's RSA public check runs a primality test on the
     * modulus, far too slow for every signature of an 8192-bit key.
     */
    if (type == GN_KEY_ECDSA) {
        EVP_PKEY_CTX *cx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
        if (!cx) {
            rc = GN_ENOMEM;
            goto out;
        }
        int ok = EVP_PKEY_public_check_quick(cx);
        EVP_PKEY_CTX_free(cx);
        if (ok != 1) {
            goto out;
        }
    }
    *out = pkey;
    pkey = NULL;
    rc = 0;
out:
    OPENSSL_free(again);
    EVP_PKEY_free(pkey);
    return rc;
}

/* ---- secp256k1 ---------------------------------------------------------------- */

/* A signing context, randomised against side channels (libsecp256k1's advice). */
static secp256k1_context *k_secp_ctx(void)
{
    secp256k1_context *ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    if (!ctx) {
        return NULL;
    }
    unsigned char seed[32];
    randombytes_buf(seed, sizeof seed);
    int ok = secp256k1_context_randomize(ctx, seed);
    sodium_memzero(seed, sizeof seed);
    if (!ok) {
        secp256k1_context_destroy(ctx);
        return NULL;
    }
    return ctx;
}

/* k->secret holds a valid scalar: derive the compressed public key. */
static int k_secp_finish(gni_privkey *k)
{
    secp256k1_context *ctx = k_secp_ctx();
    if (!ctx) {
        return GN_ENOMEM;
    }
    secp256k1_pubkey pk;
    uint8_t out[K_SECP_PK];
    size_t ol = sizeof out;
    int rc = GN_EBADKEY;
    if (secp256k1_ec_pubkey_create(ctx, &pk, k->secret) == 1 &&
        secp256k1_ec_pubkey_serialize(ctx, out, &ol, &pk, SECP256K1_EC_COMPRESSED) == 1) {
        rc = k_set_pub(k, out, ol);
    }
    secp256k1_context_destroy(ctx);
    return rc;
}

/* ---- private keys ------------------------------------------------------------- */

static int k_alloc_secret(gni_privkey *k, size_t len)
{
    k->secret = sodium_malloc(len);
    return k->secret ? 0 : GN_ENOMEM;
}

int gni_privkey_generate(gn_key_type type, unsigned bits, gni_privkey *k)
{
    memset(k, 0, sizeof *k);
    k->type = type;
    int rc = k_sodium_ready();
    if (rc < 0) {
        return rc;
    }
    if (type != GN_KEY_RSA && bits != 0) {
        return GN_EINVAL;
    }
    switch (type) {
    case GN_KEY_ED25519: {
        uint8_t pk[K_ED_PK];
        if ((rc = k_alloc_secret(k, K_ED_SK)) < 0) {
            break;
        }
        crypto_sign_keypair(pk, k->secret);
        rc = k_set_pub(k, pk, sizeof pk);
        break;
    }
    case GN_KEY_SECP256K1: {
        if ((rc = k_alloc_secret(k, K_SECP_SK)) < 0) {
            break;
        }
        /* Rejection sampling: a uniform scalar in [1, n-1]; bounded (p < 2^-128 per try). */
        rc = GN_ECRYPTO;
        for (int i = 0; i < 64; i++) {
            randombytes_buf(k->secret, K_SECP_SK);
            if (secp256k1_ec_seckey_verify(secp256k1_context_static, k->secret) == 1) {
                rc = k_secp_finish(k);
                break;
            }
        }
        break;
    }
    case GN_KEY_RSA:
    case GN_KEY_ECDSA: {
        if (type == GN_KEY_RSA) {
            if (bits == 0) {
                bits = GNI_RSA_MIN_BITS;
            }
            if (bits < GNI_RSA_MIN_BITS || bits > GNI_RSA_MAX_BITS) {
                return GN_EINVAL;
            }
        }
        ERR_set_mark();
        EVP_PKEY *pkey = type == GN_KEY_RSA ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits)
                                            : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        k->pkey = pkey;
        rc = !pkey ? GN_ECRYPTO : type == GN_KEY_ECDSA ? k_ec_set_encoding(pkey) : 0;
        if (rc == 0) {
            rc = k_set_pub_spki(k, pkey);
        }
        ERR_pop_to_mark();
        break;
    }
    default:
        rc = GN_ENOTSUP;
        break;
    }
    if (rc < 0) {
        gni_privkey_fini(k);
        k->type = type;
    }
    return rc;
}

static int k_from_data(gn_key_type type, const uint8_t *d, size_t len, gni_privkey *k)
{
    int rc;
    switch (type) {
    case GN_KEY_ED25519: {
        /* 32: bare seed; 64: seed || pk; 96: legacy seed || pk || pk (spec "Ed25519"). */
        if (len != 32 && len != 64 && len != 96) {
            return GN_EBADKEY;
        }
        if (len == 96 && sodium_memcmp(d + 32, d + 64, K_ED_PK) != 0) {
            return GN_EBADKEY;
        }
        uint8_t pk[K_ED_PK];
        if ((rc = k_alloc_secret(k, K_ED_SK)) < 0) {
            return rc;
        }
        crypto_sign_seed_keypair(pk, k->secret, d);
        if (len > 32 && sodium_memcmp(pk, d + 32, K_ED_PK) != 0) {
            return GN_EBADKEY;
        }
        return k_set_pub(k, pk, sizeof pk);
    }
    case GN_KEY_SECP256K1:
        if (len != K_SECP_SK || secp256k1_ec_seckey_verify(secp256k1_context_static, d) != 1) {
            return GN_EBADKEY;
        }
        if ((rc = k_alloc_secret(k, K_SECP_SK)) < 0) {
            return rc;
        }
        memcpy(k->secret, d, K_SECP_SK);
        return k_secp_finish(k);
    case GN_KEY_RSA:
    case GN_KEY_ECDSA: {
        if (len == 0 || len > GNI_PRIVKEY_DATA_MAX) {
            return GN_EBADKEY;
        }
        const unsigned char *p = d;
        /* Type-specific DER: PKCS#1 RSAPrivateKey, SEC1 ECPrivateKey. */
        EVP_PKEY *pkey = d2i_PrivateKey(type == GN_KEY_RSA ? EVP_PKEY_RSA : EVP_PKEY_EC, NULL,
                                        &p, (long)len);
        if (!pkey) {
            return GN_EBADKEY;
        }
        k->pkey = pkey;
        if (p != d + len || k_openssl_key_ok(type, pkey) != 0) {
            return GN_EBADKEY;
        }
        EVP_PKEY_CTX *cx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
        if (!cx) {
            return GN_ENOMEM;
        }
        /* The public half must belong to the private half (EC: the embedded point). */
        int ok = EVP_PKEY_pairwise_check(cx);
        EVP_PKEY_CTX_free(cx);
        if (ok != 1) {
            return GN_EBADKEY;
        }
        if (type == GN_KEY_ECDSA && (rc = k_ec_set_encoding(pkey)) < 0) {
            return rc;
        }
        return k_set_pub_spki(k, pkey);
    }
    default:
        return GN_EBADKEY;
    }
}

int gni_privkey_from_data(gn_key_type type, const uint8_t *d, size_t len, gni_privkey *k)
{
    memset(k, 0, sizeof *k);
    k->type = type;
    int rc = k_sodium_ready();
    if (rc < 0) {
        return rc;
    }
    if (!d) {
        return GN_EBADKEY;
    }
    ERR_set_mark();
    rc = k_from_data(type, d, len, k);
    ERR_pop_to_mark(); /* a bad key file leaves nothing on the error queue */
    if (rc < 0) {
        gni_privkey_fini(k);
        k->type = type;
    }
    return rc;
}

int gni_privkey_to_data(const gni_privkey *k, uint8_t *out, size_t cap)
{
    switch (k->type) {
    case GN_KEY_ED25519:
    case GN_KEY_SECP256K1: {
        size_t n = k->type == GN_KEY_ED25519 ? K_ED_SK : K_SECP_SK;
        if (!out || cap < n) {
            return GN_ENOSPC;
        }
        memcpy(out, k->secret, n);
        return (int)n;
    }
    case GN_KEY_RSA:
    case GN_KEY_ECDSA: {
        unsigned char *der = NULL;
        ERR_set_mark();
        int n = i2d_PrivateKey(k->pkey, &der);
        ERR_pop_to_mark();
        if (n <= 0) {
            return GN_ECRYPTO;
        }
        int rc = n;
        if (!out || cap < (size_t)n) {
            rc = GN_ENOSPC;
        } else {
            memcpy(out, der, (size_t)n);
        }
        OPENSSL_clear_free(der, (size_t)n);
        return rc;
    }
    default:
        return GN_EINVAL;
    }
}

int gni_privkey_sign(const gni_privkey *k, const uint8_t *msg, size_t len, uint8_t *sig,
                     size_t cap)
{
    static const uint8_t empty[1] = {0};
    if (!msg) {
        msg = empty;
        len = 0;
    }
    switch (k->type) {
    case GN_KEY_ED25519:
        if (!sig || cap < crypto_sign_BYTES) {
            return GN_ENOSPC;
        }
        crypto_sign_detached(sig, NULL, msg, len, k->secret);
        return crypto_sign_BYTES;
    case GN_KEY_SECP256K1: {
        uint8_t h[K_SHA256], der[80];
        size_t dl = sizeof der;
        crypto_hash_sha256(h, msg, len);
        secp256k1_context *ctx = k_secp_ctx();
        if (!ctx) {
            return GN_ENOMEM;
        }
        secp256k1_ecdsa_signature s;
        int rc = GN_ECRYPTO;
        /* NULL nonce function: RFC 6979; the result is low-S. */
        if (secp256k1_ecdsa_sign(ctx, &s, h, k->secret, NULL, NULL) == 1 &&
            secp256k1_ecdsa_signature_serialize_der(ctx, der, &dl, &s) == 1) {
            if (!sig || cap < dl) {
                rc = GN_ENOSPC;
            } else {
                memcpy(sig, der, dl);
                rc = (int)dl;
            }
        }
        secp256k1_context_destroy(ctx);
        return rc;
    }
    case GN_KEY_RSA:
    case GN_KEY_ECDSA: {
        EVP_MD_CTX *mc = EVP_MD_CTX_new();
        if (!mc) {
            return GN_ENOMEM;
        }
        int rc = GN_ECRYPTO;
        size_t sl = 0;
        ERR_set_mark();
        /* RSA's default padding is PKCS#1 v1.5; ECDSA output is DER. */
        if (EVP_DigestSignInit(mc, NULL, EVP_sha256(), NULL, (EVP_PKEY *)k->pkey) == 1 &&
            EVP_DigestSign(mc, NULL, &sl, msg, len) == 1) {
            if (!sig || cap < sl) {
                rc = GN_ENOSPC;
            } else if (EVP_DigestSign(mc, sig, &sl, msg, len) == 1) {
                rc = (int)sl;
            }
        }
        EVP_MD_CTX_free(mc);
        ERR_pop_to_mark();
        return rc;
    }
    default:
        return GN_EINVAL;
    }
}

void gni_privkey_fini(gni_privkey *k)
{
    if (!k) {
        return;
    }
    sodium_free(k->secret); /* wipes; NULL is fine */
    EVP_PKEY_free(k->pkey);
    gn_free(k->pub);
    memset(k, 0, sizeof *k);
}

/* ---- public keys -------------------------------------------------------------- */

static int k_secp_parse(const uint8_t *d, size_t len, secp256k1_pubkey *pk)
{
    /*
     * Only the spec's 33-byte compressed form (0x02/0x03): peer IDs hash the
     * bytes as sent, so also taking the 65-byte form would give one key two
     * IDs (go-libp2p re-encodes compressed and would disagree with us).
     */
    if (len != K_SECP_PK || (d[0] != 0x02 && d[0] != 0x03)) {
        return GN_EBADKEY;
    }
    return secp256k1_ec_pubkey_parse(secp256k1_context_static, pk, d, len) == 1 ? 0 : GN_EBADKEY;
}

int gni_pubkey_check_data(gn_key_type type, const uint8_t *d, size_t len)
{
    if (!d) {
        return GN_EBADKEY;
    }
    switch (type) {
    case GN_KEY_ED25519:
        /* Only length is checked here; crypto_sign_verify_detached rejects small-order keys. */
        return len == K_ED_PK ? 0 : GN_EBADKEY;
    case GN_KEY_SECP256K1: {
        secp256k1_pubkey pk;
        return k_secp_parse(d, len, &pk);
    }
    case GN_KEY_RSA:
    case GN_KEY_ECDSA: {
        EVP_PKEY *pkey = NULL;
        ERR_set_mark();
        int rc = k_spki_parse(type, d, len, &pkey);
        EVP_PKEY_free(pkey);
        ERR_pop_to_mark(); /* a peer's bad key leaves nothing on the thread's error queue */
        return rc;
    }
    default:
        return GN_EBADKEY;
    }
}

int gni_pubkey_verify_data(gn_key_type type, const uint8_t *d, size_t len, const uint8_t *msg,
                           size_t mlen, const uint8_t *sig, size_t slen)
{
    static const uint8_t empty[1] = {0};
    if (!d) {
        return GN_EBADKEY;
    }
    if (!sig || slen == 0 || slen > GN_SIG_MAX_BYTES || (!msg && mlen)) {
        return GN_EBADSIG;
    }
    if (!msg) {
        msg = empty;
    }
    if (k_sodium_ready() < 0) {
        return GN_EBADSIG;
    }
    switch (type) {
    case GN_KEY_ED25519:
        if (len != K_ED_PK) {
            return GN_EBADKEY;
        }
        if (slen != crypto_sign_BYTES) {
            return GN_EBADSIG;
        }
        return crypto_sign_verify_detached(sig, msg, mlen, d) == 0 ? 0 : GN_EBADSIG;
    case GN_KEY_SECP256K1: {
        secp256k1_pubkey pk;
        if (k_secp_parse(d, len, &pk) != 0) {
            return GN_EBADKEY;
        }
        secp256k1_ecdsa_signature s;
        if (secp256k1_ecdsa_signature_parse_der(secp256k1_context_static, &s, sig, slen) != 1) {
            return GN_EBADSIG;
        }
        /* Strict DER only: the parser tolerates some BER, so re-serialise and compare. */
        uint8_t der[80];
        size_t dl = sizeof der;
        if (secp256k1_ecdsa_signature_serialize_der(secp256k1_context_static, der, &dl, &s) != 1 ||
            dl != slen || memcmp(der, sig, slen) != 0) {
            return GN_EBADSIG;
        }
        /* go-libp2p accepts high-S signatures; libsecp256k1 wants low-S: normalise first. */
        secp256k1_ecdsa_signature_normalize(secp256k1_context_static, &s, &s);
        uint8_t h[K_SHA256];
        crypto_hash_sha256(h, msg, mlen);
        return secp256k1_ecdsa_verify(secp256k1_context_static, &s, h, &pk) == 1 ? 0 : GN_EBADSIG;
    }
    case GN_KEY_RSA:
    case GN_KEY_ECDSA: {
        EVP_PKEY *pkey = NULL;
        ERR_set_mark();
        int rc = k_spki_parse(type, d, len, &pkey);
        if (rc < 0) {
            ERR_pop_to_mark();
            return rc == GN_ENOMEM ? GN_EBADSIG : rc;
        }
        EVP_MD_CTX *mc = EVP_MD_CTX_new();
        rc = GN_EBADSIG;
        if (mc && EVP_DigestVerifyInit(mc, NULL, EVP_sha256(), NULL, pkey) == 1 &&
            EVP_DigestVerify(mc, sig, slen, msg, mlen) == 1) {
            rc = 0;
        }
        EVP_MD_CTX_free(mc);
        EVP_PKEY_free(pkey);
        ERR_pop_to_mark(); /* a bad signature leaves nothing on the error queue */
        return rc;
    }
    default:
        return GN_EBADKEY;
    }
}
