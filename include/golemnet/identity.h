/*
 * golemnet - identities: Ed25519 key pairs, libp2p key encodings, peer IDs.
 *
 * Spec: libp2p/specs peer-ids/peer-ids.md (key protobufs, peer ID
 * derivation, string forms). All cryptography is libsodium's. Private keys
 * live in sodium_malloc() memory and are wiped on free.
 */
#ifndef GOLEMNET_IDENTITY_H
#define GOLEMNET_IDENTITY_H

#include "golemnet/common.h"

GN_BEGIN_DECLS

/** libp2p KeyType values (peer-ids spec, crypto.proto). */
typedef enum gn_key_type {
    GN_KEY_RSA = 0,
    GN_KEY_ED25519 = 1,
    GN_KEY_SECP256K1 = 2,
    GN_KEY_ECDSA = 3
} gn_key_type;

#define GN_ED25519_PUBLICKEYBYTES 32
#define GN_ED25519_SEEDBYTES 32
#define GN_ED25519_SIGBYTES 64
/** Longest encoded public key accepted from a peer (bytes). */
#define GN_PUBKEY_MAX_BYTES 1024
/** Longest binary peer ID (a multihash). */
#define GN_PEER_ID_MAX_BYTES 64
/** Longest peer ID string (CID base32 form) including the NUL. */
#define GN_PEER_ID_MAX_STRLEN 128

/** An Ed25519 identity: a key pair in secure memory. Opaque. */
typedef struct gn_identity gn_identity;

/**
 * A peer ID: the binary multihash (identity multihash of the encoded public
 * key when that is at most 42 bytes, sha2-256 otherwise). Value type.
 */
typedef struct gn_peer_id {
    uint8_t len;
    uint8_t bytes[GN_PEER_ID_MAX_BYTES];
} gn_peer_id;

/**
 * Creates a fresh random identity in *@out. Errors: GN_ENOMEM.
 * Since: 0.1
 */
GN_API int gn_identity_generate(gn_identity **out);

/**
 * Creates the identity whose 32-byte Ed25519 seed is @seed.
 * Errors: GN_EINVAL, GN_ENOMEM.
 * Since: 0.1
 */
GN_API int gn_identity_from_seed(const uint8_t seed[GN_ED25519_SEEDBYTES], gn_identity **out);

/**
 * Deterministic identity from an integer: the seed is 32 zero bytes except
 * bytes 0..3 = @n little-endian (rust-libp2p's --secret-key-seed). Seed 1
 * gives 12D3KooWPjceQrSwdWXPyLLeABRXmuqt69Rg3sBYbU1Nft9HyQ6X. Test use only.
 * Since: 0.1
 */
GN_API int gn_identity_from_int_seed(uint32_t n, gn_identity **out);

/** Wipes and frees @id; NULL is a no-op. Since: 0.1 */
GN_API void gn_identity_free(gn_identity *id);

/** Copies the raw 32-byte Ed25519 public key. Since: 0.1 */
GN_API void gn_identity_public_key(const gn_identity *id, uint8_t out[GN_ED25519_PUBLICKEYBYTES]);

/** The identity's peer ID. Since: 0.1 */
GN_API void gn_identity_peer_id(const gn_identity *id, gn_peer_id *out);

/**
 * Signs @len bytes at @msg (Ed25519, detached). Since: 0.1
 */
GN_API void gn_identity_sign(const gn_identity *id, const uint8_t *msg, size_t len,
                             uint8_t sig[GN_ED25519_SIGBYTES]);

/**
 * Verifies a detached Ed25519 signature. Returns 0 or GN_EBADSIG.
 * Since: 0.1
 */
GN_API int gn_ed25519_verify(const uint8_t pub[GN_ED25519_PUBLICKEYBYTES], const uint8_t *msg,
                             size_t len, const uint8_t sig[GN_ED25519_SIGBYTES])
    GN_WARN_UNUSED;

/**
 * Encodes @pub as a libp2p PublicKey protobuf (Type=Ed25519, Data=32 bytes;
 * deterministic field order, 36 bytes). Returns the length or GN_ENOSPC.
 * Spec: peer-ids.md "Keys".
 * Since: 0.1
 */
GN_API int gn_pubkey_encode_ed25519(const uint8_t pub[GN_ED25519_PUBLICKEYBYTES], uint8_t *out,
                                    size_t out_len);

/**
 * Decodes a libp2p PublicKey protobuf. On success stores the type in *@type
 * and, for Ed25519, the raw key in @pub. Errors: GN_EPARSE (malformed
 * protobuf, missing field), GN_ETOOBIG (> GN_PUBKEY_MAX_BYTES), GN_EBADKEY
 * (well-formed but not a 32-byte Ed25519 key; *@type still set).
 * Since: 0.1
 */
GN_API int gn_pubkey_decode(const uint8_t *in, size_t len, gn_key_type *type,
                            uint8_t pub[GN_ED25519_PUBLICKEYBYTES]);

/**
 * Encodes the private key as a libp2p PrivateKey protobuf (Ed25519 Data =
 * 64 bytes: seed || public key). The output is secret: wipe it after use.
 * Returns the length or GN_ENOSPC.
 * Since: 0.1
 */
GN_API int gn_identity_encode_private(const gn_identity *id, uint8_t *out, size_t out_len);

/**
 * Decodes a libp2p PrivateKey protobuf (Ed25519 with 64- or 32-byte Data).
 * Errors: GN_EPARSE, GN_EBADKEY (other key types, or the embedded public key
 * does not match the seed), GN_ENOMEM.
 * Since: 0.1
 */
GN_API int gn_identity_decode_private(const uint8_t *in, size_t len, gn_identity **out);

/**
 * Key files hold the PrivateKey protobuf bytes, as go-libp2p writes them.
 * Save creates @path with mode 0600 (fails with GN_EEXIST if it exists);
 * load reads at most 4096 bytes. Errors: GN_EIO, GN_EACCES, GN_ENOTFOUND,
 * GN_EEXIST and the decode errors.
 * Since: 0.1
 */
GN_API int gn_identity_save(const gn_identity *id, const char *path);
GN_API int gn_identity_load(const char *path, gn_identity **out);

/**
 * Derives the peer ID of an encoded libp2p public key (@len bytes).
 * Errors: GN_EINVAL (len 0), GN_ETOOBIG.
 * Since: 0.1
 */
GN_API int gn_peer_id_from_pubkey(const uint8_t *pubkey_pb, size_t len, gn_peer_id *out);

/**
 * Accepts the binary multihash form. Errors: GN_EPARSE (not a multihash or a
 * code other than identity/sha2-256, or sha2-256 with a digest not 32 bytes),
 * GN_ETOOBIG.
 * Since: 0.1
 */
GN_API int gn_peer_id_from_bytes(const uint8_t *in, size_t len, gn_peer_id *out);

/**
 * Parses the text forms: base58btc multihash ("12D3KooW...", "Qm...") and
 * multibase CIDv1 with the libp2p-key codec ("bafz..."). @len characters.
 * Errors: GN_EPARSE, GN_ETOOBIG.
 * Since: 0.1
 */
GN_API int gn_peer_id_parse(const char *str, size_t len, gn_peer_id *out);

/** Writes the base58btc form, NUL-terminated. Returns length or GN_ENOSPC. */
GN_API int gn_peer_id_to_string(const gn_peer_id *pid, char *out, size_t out_len);

/** Writes the CIDv1 base32 form ("bafz..."). Returns length or GN_ENOSPC. */
GN_API int gn_peer_id_to_cid_string(const gn_peer_id *pid, char *out, size_t out_len);

/** True when equal. */
GN_API bool gn_peer_id_equal(const gn_peer_id *a, const gn_peer_id *b);

/**
 * Extracts the Ed25519 public key embedded in an identity-multihash peer ID.
 * Errors: GN_ENOTFOUND (sha2-256 peer ID: the key is not inside),
 * GN_EBADKEY (embedded key is not Ed25519).
 * Since: 0.1
 */
GN_API int gn_peer_id_ed25519_key(const gn_peer_id *pid, uint8_t pub[GN_ED25519_PUBLICKEYBYTES]);

GN_END_DECLS

#endif /* GOLEMNET_IDENTITY_H */
