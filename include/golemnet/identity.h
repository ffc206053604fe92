/*
 * golemnet - identities: key pairs of the four libp2p key types (Ed25519,
 * RSA, secp256k1, ECDSA), libp2p key encodings, signatures, peer IDs.
 *
 * Spec: libp2p/specs peer-ids/peer-ids.md (key protobufs, "Key Types",
 * peer ID derivation, string forms); docs/identity.md lists the encodings.
 * Ed25519 is libsodium's, RSA and ECDSA OpenSSL 3 libcrypto's, secp256k1
 * libsecp256k1's. Private keys live in sodium_malloc() memory or OpenSSL key
 * objects and are wiped on free.
 *
 * The functions named *ed25519* and gn_identity_public_key()/
 * gn_identity_sign() handle Ed25519 only (as since 0.1); the type-generic
 * calls are gn_identity_generate_type(), gn_identity_encode_public(),
 * gn_identity_sign_any(), gn_pubkey_check() and gn_pubkey_verify().
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
/**
 * Longest encoded public key (PublicKey protobuf) accepted from a peer, in
 * bytes: an RSA-8192 key encodes to 1067. (1024 before 0.2.)
 */
#define GN_PUBKEY_MAX_BYTES 1200
/** Longest signature of any key type (bytes): RSA-8192. Since: 0.2 */
#define GN_SIG_MAX_BYTES 1024
/**
 * Longest PrivateKey protobuf read or written (key files, bytes): an
 * RSA-8192 PKCS#1 key is about 4.7 kB. Since: 0.2
 */
#define GN_PRIVKEY_MAX_BYTES 6200
/** RSA modulus sizes generated and accepted (bits). Since: 0.2 */
#define GN_RSA_MIN_BITS 2048
#define GN_RSA_MAX_BITS 8192
/** Longest binary peer ID (a multihash). */
#define GN_PEER_ID_MAX_BYTES 64
/** Longest peer ID string (CID base32 form) including the NUL. */
#define GN_PEER_ID_MAX_STRLEN 128

/** An identity: a key pair of one key type (Ed25519 by default) in secure memory. Opaque. */
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
 * Creates a fresh random Ed25519 identity in *@out. Errors: GN_EINVAL (@out
 * NULL), GN_ENOMEM.
 * Since: 0.1
 */
GN_API int gn_identity_generate(gn_identity **out);

/**
 * Creates a fresh random identity of @type in *@out.
 * @bits: RSA modulus size, GN_RSA_MIN_BITS..GN_RSA_MAX_BITS, or 0 for 2048;
 *   must be 0 for the other types. ECDSA keys are P-256.
 * RSA generation takes from tens of milliseconds (2048) to many seconds
 * (8192): do not call it on a loop thread.
 * Errors: GN_EINVAL (@out NULL, @bits out of range or set for a non-RSA
 * type), GN_ENOTSUP (unknown @type), GN_ENOMEM, GN_ECRYPTO (the library
 * failed).
 * Spec: peer-ids.md "Key Types".
 * Since: 0.2
 */
GN_API int gn_identity_generate_type(gn_key_type type, unsigned bits, gn_identity **out);

/** The key type of @id (non-NULL). Since: 0.2 */
GN_API gn_key_type gn_identity_key_type(const gn_identity *id);

/**
 * The lower-case name of @type: "rsa", "ed25519", "secp256k1", "ecdsa"
 * ("unknown" for other values). Static string. Since: 0.2
 */
GN_API const char *gn_key_type_name(gn_key_type type);

/**
 * Parses a key type name (NUL-terminated, ASCII case-insensitive; the names
 * gn_key_type_name() gives) into *@out. Errors: GN_EINVAL (NULL or unknown).
 * Since: 0.2
 */
GN_API int gn_key_type_parse(const char *name, gn_key_type *out);

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

/**
 * Copies the raw 32-byte Ed25519 public key. For an identity of another
 * type it writes 32 zero bytes: use gn_identity_encode_public().
 * Since: 0.1
 */
GN_API void gn_identity_public_key(const gn_identity *id, uint8_t out[GN_ED25519_PUBLICKEYBYTES]);

/** The identity's peer ID. Since: 0.1 */
GN_API void gn_identity_peer_id(const gn_identity *id, gn_peer_id *out);

/**
 * Signs @len bytes at @msg (Ed25519, detached). Ed25519 identities only: for
 * another type it writes 64 zero bytes (which never verify); use
 * gn_identity_sign_any().
 * Since: 0.1
 */
GN_API void gn_identity_sign(const gn_identity *id, const uint8_t *msg, size_t len,
                             uint8_t sig[GN_ED25519_SIGBYTES]);

/**
 * Signs @len bytes at @msg (NULL allowed when @len is 0) as the key type
 * prescribes: Ed25519 (64 bytes), RSA PKCS#1 v1.5 over SHA-256 (modulus
 * size), secp256k1 and ECDSA over SHA-256 with a DER signature (at most 72
 * bytes for P-256 and secp256k1). Writes into @sig (@sig_len bytes; a
 * GN_SIG_MAX_BYTES buffer always fits).
 * Returns the signature length, or GN_EINVAL (@id NULL), GN_ENOSPC,
 * GN_ENOMEM, GN_ECRYPTO.
 * Spec: peer-ids.md "Key Types".
 * Since: 0.2
 */
GN_API int gn_identity_sign_any(const gn_identity *id, const uint8_t *msg, size_t len,
                                uint8_t *sig, size_t sig_len) GN_WARN_UNUSED;

/**
 * Writes the identity's PublicKey protobuf (deterministic encoding; 36
 * bytes for Ed25519, at most GN_PUBKEY_MAX_BYTES) into @out (@out_len
 * bytes). Returns the length, GN_EINVAL (@id NULL) or GN_ENOSPC.
 * Spec: peer-ids.md "Keys".
 * Since: 0.2
 */
GN_API int gn_identity_encode_public(const gn_identity *id, uint8_t *out, size_t out_len);

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
 * Decodes a libp2p PublicKey protobuf, Ed25519 only (for all types see
 * gn_pubkey_check()). On success stores the type in *@type
 * and, for Ed25519, the raw key in @pub. Errors: GN_EPARSE (malformed
 * protobuf, missing field), GN_ETOOBIG (> GN_PUBKEY_MAX_BYTES), GN_EBADKEY
 * (well-formed but not a 32-byte Ed25519 key; *@type still set).
 * Since: 0.1
 */
GN_API int gn_pubkey_decode(const uint8_t *in, size_t len, gn_key_type *type,
                            uint8_t pub[GN_ED25519_PUBLICKEYBYTES]);

/**
 * Checks a libp2p PublicKey protobuf of any type (@len bytes at @in): the
 * deterministic protobuf encoding, then the key itself: Ed25519 32 bytes;
 * RSA a canonical DER SubjectPublicKeyInfo of 2048 to 8192 bits; secp256k1
 * a 33-byte compressed point on the curve (not the 65-byte form); ECDSA a
 * canonical DER SubjectPublicKeyInfo on P-256, P-384 or P-521. Stores the
 * type in *@type (NULL allowed) once the protobuf parsed.
 * Errors: GN_EPARSE (malformed or non-canonical protobuf, unknown type),
 * GN_ETOOBIG (> GN_PUBKEY_MAX_BYTES), GN_EBADKEY (the key is malformed or
 * unsupported), GN_ENOMEM (checking an RSA or ECDSA key ran out of memory).
 * Spec: peer-ids.md "Keys", "Key Types".
 * Since: 0.2
 */
GN_API int gn_pubkey_check(const uint8_t *in, size_t len, gn_key_type *type) GN_WARN_UNUSED;

/**
 * Verifies @sig (@sig_len bytes) over @len bytes at @msg (NULL allowed when
 * @len is 0) with the PublicKey protobuf @pubkey_pb (@pb_len bytes) of any
 * type, as the type prescribes (see gn_identity_sign_any(); secp256k1 also
 * accepts high-S signatures, as go-libp2p does; DER must be strict).
 * Returns 0 when the signature is good, else GN_EPARSE or GN_ETOOBIG (the
 * protobuf, as gn_pubkey_check()), GN_EBADKEY (the key), GN_EBADSIG (bad,
 * empty or oversized signature).
 * Spec: peer-ids.md "Key Types".
 * Since: 0.2
 */
GN_API int gn_pubkey_verify(const uint8_t *pubkey_pb, size_t pb_len, const uint8_t *msg,
                            size_t len, const uint8_t *sig, size_t sig_len) GN_WARN_UNUSED;

/**
 * Encodes the private key as a libp2p PrivateKey protobuf: Ed25519 Data =
 * 64 bytes (seed || public key), RSA DER PKCS#1 RSAPrivateKey, secp256k1
 * the 32-byte scalar, ECDSA DER SEC1 ECPrivateKey (as go-libp2p and the
 * spec's test vectors). At most GN_PRIVKEY_MAX_BYTES. The output is secret:
 * wipe it after use. Returns the length or GN_ENOSPC, GN_EINVAL (@id NULL),
 * GN_ENOMEM, GN_ECRYPTO.
 * Since: 0.1 (all key types since 0.2)
 */
GN_API int gn_identity_encode_private(const gn_identity *id, uint8_t *out, size_t out_len);

/**
 * Decodes a libp2p PrivateKey protobuf of any type: Ed25519 with 64-byte
 * Data, the legacy 96-byte form (seed || public || public, both copies
 * equal) or a bare 32-byte seed; RSA PKCS#1 of 2048 to 8192 bits; secp256k1
 * 32 bytes; ECDSA SEC1 on P-256, P-384 or P-521.
 * Errors: GN_EINVAL (@out NULL), GN_EPARSE (not a protobuf, or longer than
 * GN_PRIVKEY_MAX_BYTES), GN_EBADKEY (unknown type, malformed key, RSA size
 * out of range, unsupported curve, or an embedded public key that does not
 * match the private key), GN_ENOMEM.
 * Spec: peer-ids.md "Key Types".
 * Since: 0.1 (all key types since 0.2)
 */
GN_API int gn_identity_decode_private(const uint8_t *in, size_t len, gn_identity **out);

/**
 * Key files hold the PrivateKey protobuf bytes, as go-libp2p and js-libp2p
 * write them (any key type). Save creates @path with mode 0600 (fails with
 * GN_EEXIST if it exists; does not follow a symbolic link at @path where the
 * OS has O_NOFOLLOW); load reads at most GN_PRIVKEY_MAX_BYTES bytes.
 * Windows: there are no modes; the new file inherits the ACL of its
 * directory, so keep key files in a directory only their owner can read
 * (e.g. under %LOCALAPPDATA%), see docs/building.md.
 * Errors: GN_EIO, GN_EACCES, GN_ENOTFOUND, GN_EEXIST and the decode errors.
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
