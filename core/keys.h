/*
 * Private key material of every libp2p key type and signature checks on
 * public keys of every type. Internal to core/ (identity.c is the only
 * user); never installed.
 *
 * Spec: libp2p/specs peer-ids/peer-ids.md "Key Types" (the Data field of the
 * PublicKey and PrivateKey protobufs, and how each type signs):
 *   Ed25519    public: 32 raw bytes; private: seed || public (64 bytes), the
 *              legacy seed || public || public (96 bytes) and a bare seed
 *              (32 bytes) are accepted on input. libsodium.
 *   RSA        public: DER PKIX SubjectPublicKeyInfo; private: DER PKCS#1
 *              RSAPrivateKey; RSASSA-PKCS1-v1_5 over SHA-256; 2048 to 8192
 *              bits. OpenSSL 3 libcrypto.
 *   Secp256k1  public: 33-byte compressed point (the 65-byte uncompressed
 *              form is refused: it would give a second peer ID); private: the 32-byte
 *              scalar; ECDSA over SHA-256, DER signature. libsecp256k1.
 *   ECDSA      public: DER PKIX SubjectPublicKeyInfo (named curve P-256,
 *              P-384 or P-521 accepted; P-256 generated); private: DER SEC1
 *              ECPrivateKey (what go-libp2p writes and the spec's test vector
 *              holds); ECDSA over SHA-256, DER signature. OpenSSL 3.
 *
 * Thread context: any thread; distinct objects need no locking. Secrets live
 * in sodium_malloc() memory (Ed25519, secp256k1) or in OpenSSL's key objects
 * (RSA, ECDSA, freed with EVP_PKEY_free(), which clears them).
 */
#ifndef GNI_KEYS_H
#define GNI_KEYS_H

#include "golemnet/identity.h"

#include <stddef.h>
#include <stdint.h>

/** RSA sizes accepted from peers and generated (go-libp2p's bounds). */
#define GNI_RSA_MIN_BITS GN_RSA_MIN_BITS
#define GNI_RSA_MAX_BITS GN_RSA_MAX_BITS
/** Largest PrivateKey Data accepted (a PKCS#1 RSA-8192 key is about 4.7 kB). */
#define GNI_PRIVKEY_DATA_MAX 6144

/** A private key of any type. Zero-initialise, then fill with one of the calls below. */
typedef struct gni_privkey {
    gn_key_type type;
    unsigned char *secret; /* sodium_malloc: Ed25519 64 (seed||pk), secp256k1 32 */
    void *pkey;            /* EVP_PKEY * for RSA and ECDSA */
    uint8_t *pub;          /* public key Data (gn_malloc) */
    size_t pub_len;
} gni_privkey;

/**
 * Generates a key of @type. @bits is the RSA modulus size (0: 2048) and
 * must be 0 for the other types. Errors: GN_EINVAL (bits out of range or set
 * for a non-RSA type), GN_ENOTSUP (unknown type), GN_ENOMEM, GN_ECRYPTO.
 */
int gni_privkey_generate(gn_key_type type, unsigned bits, gni_privkey *k);

/**
 * Reads a PrivateKey Data field of @type. Errors: GN_EBADKEY (malformed,
 * wrong size, RSA outside 2048..8192 bits, unsupported curve, embedded public
 * key not matching), GN_ENOMEM.
 */
int gni_privkey_from_data(gn_key_type type, const uint8_t *d, size_t len, gni_privkey *k);

/** Writes the PrivateKey Data (secret: wipe it). Returns the length, GN_ENOSPC or GN_ECRYPTO. */
int gni_privkey_to_data(const gni_privkey *k, uint8_t *out, size_t cap);

/**
 * Signs @len bytes at @msg as the type prescribes. Returns the signature
 * length, GN_ENOSPC (@cap too small; GN_SIG_MAX_BYTES always fits) or
 * GN_ECRYPTO.
 */
int gni_privkey_sign(const gni_privkey *k, const uint8_t *msg, size_t len, uint8_t *sig,
                     size_t cap);

/** Frees and wipes everything @k holds and zeroes it; safe on a zeroed or partly filled key. */
void gni_privkey_fini(gni_privkey *k);

/**
 * Checks a PublicKey Data field of @type: well-formed, canonical (re-encoding
 * gives the same bytes; secp256k1 only compressed), a point on
 * the curve or an RSA key of 2048..8192 bits. Returns 0 or GN_EBADKEY.
 */
int gni_pubkey_check_data(gn_key_type type, const uint8_t *d, size_t len);

/**
 * Verifies @sig over @msg with the public key Data @d of @type. Returns 0,
 * GN_EBADKEY (the key fails gni_pubkey_check_data()) or GN_EBADSIG.
 */
int gni_pubkey_verify_data(gn_key_type type, const uint8_t *d, size_t len, const uint8_t *msg,
                           size_t mlen, const uint8_t *sig, size_t slen);

#endif /* GNI_KEYS_H */
