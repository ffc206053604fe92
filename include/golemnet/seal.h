/*
 * golemnet - message-level cryptography: sealed (encrypted) messages to an
 * identity, and signed messages.
 *
 * Sealing encrypts a message to a peer's Ed25519 identity public key with a
 * fresh ephemeral X25519 key (anonymous sender, forward secrecy for the
 * sender's side); only the holder of the identity can open it. Signing makes
 * a detached, versioned, context-bound Ed25519 signature.
 *
 * Spec: docs/protocols/ecies.md part B (sections 15 and 16) for the wire
 * formats. All cryptography is libsodium's.
 *
 * Thread context: every function is reentrant and may be called from any
 * thread; a gn_identity may be shared by concurrent callers (read only).
 */
#ifndef GOLEMNET_SEAL_H
#define GOLEMNET_SEAL_H

#include "golemnet/common.h"
#include "golemnet/identity.h"

GN_BEGIN_DECLS

/** Version byte of sealed messages and of signatures. Since: 0.1 */
#define GN_SEAL_VERSION 0x01
/** Suite byte: X25519, HKDF-SHA256, ChaCha20-Poly1305 (IETF). Since: 0.1 */
#define GN_SEAL_SUITE_X25519_CHACHAPOLY 0x01
/** Bytes a sealed message adds to its plaintext: 1 + 1 + 32 + 16. Since: 0.1 */
#define GN_SEAL_OVERHEAD 50
/** Version byte of signatures made by gn_sign(). Since: 0.1 */
#define GN_SIGN_VERSION 0x01
/** Size of a signature made by gn_sign(): version byte + 64. Since: 0.1 */
#define GN_SIGN_BYTES 65
/** Longest signing context, in bytes (without the NUL). Since: 0.1 */
#define GN_SIGN_CONTEXT_MAX 255

/** Returns GN_SEAL_OVERHEAD. Since: 0.1 */
GN_API size_t gn_seal_overhead(void);
/** Returns GN_SIGN_BYTES. Since: 0.1 */
GN_API size_t gn_sign_bytes(void);
/** Returns GN_SIGN_CONTEXT_MAX. Since: 0.1 */
GN_API size_t gn_sign_context_max(void);

/**
 * Seals @msg to the owner of the Ed25519 identity key @recipient.
 *
 * @recipient: 32-byte raw Ed25519 public key (as gn_identity_public_key()
 *   or gn_peer_id_ed25519_key() give it); converted to X25519 internally.
 * @msg: @msg_len bytes of plaintext (NULL allowed when @msg_len is 0).
 * @aad: optional associated data, @aad_len bytes (NULL when 0). Not
 *   transmitted; gn_seal_open() must be given the same bytes.
 * @rng: source of the ephemeral key; NULL selects gn_rng_system(). Tests pass
 *   a deterministic one for known-answer vectors; real callers pass NULL.
 * @out: receives @msg_len + GN_SEAL_OVERHEAD bytes; @out_cap is its size. It
 *   must not overlap @msg.
 * @out_len: if not NULL, receives the sealed length on success.
 *
 * Returns 0, or GN_EINVAL (NULL @recipient/@out, or NULL data with a nonzero
 * length), GN_EBADKEY (@recipient is not a valid Ed25519 point),
 * GN_ETOOBIG (@msg_len exceeds ChaCha20-Poly1305's limit), GN_ENOSPC
 * (@out_cap too small), GN_ENOMEM, GN_ECRYPTO (libsodium failed to
 * initialise). On failure @out's contents are unspecified and *@out_len is
 * untouched.
 *
 * Spec: docs/protocols/ecies.md section 15.
 * Since: 0.1
 */
GN_API int gn_seal(const uint8_t recipient[GN_ED25519_PUBLICKEYBYTES], const uint8_t *msg,
                   size_t msg_len, const uint8_t *aad, size_t aad_len, const gn_rng *rng,
                   uint8_t *out, size_t out_cap, size_t *out_len);

/**
 * Opens a message sealed to @id.
 *
 * @id: the recipient's identity (borrowed, not NULL).
 * @sealed: @sealed_len bytes as produced by gn_seal().
 * @aad: the associated data given to gn_seal() (@aad_len bytes, NULL when 0).
 * @out: receives @sealed_len - GN_SEAL_OVERHEAD bytes of plaintext; @out_cap
 *   is its size. It must not overlap @sealed.
 * @out_len: if not NULL, receives the plaintext length on success.
 *
 * Returns 0, or GN_EINVAL (NULL arguments), GN_EPARSE (shorter than
 * GN_SEAL_OVERHEAD), GN_EBADKEY (@id is not an Ed25519 identity; since
 * 0.2), GN_EVERSION (unknown version or suite byte), GN_ENOSPC
 * (@out_cap too small), GN_EDECRYPT (tampered, truncated, wrong recipient,
 * wrong @aad, or an invalid ephemeral key), GN_ENOMEM, GN_ECRYPTO. On
 * failure @out is wiped (no unauthenticated plaintext is released) and
 * *@out_len is untouched.
 *
 * Spec: docs/protocols/ecies.md section 15.
 * Since: 0.1
 */
GN_API int gn_seal_open(const gn_identity *id, const uint8_t *sealed, size_t sealed_len,
                        const uint8_t *aad, size_t aad_len, uint8_t *out, size_t out_cap,
                        size_t *out_len) GN_WARN_UNUSED;

/**
 * Signs @msg with @id under @context, producing a detached signature.
 *
 * @context: NUL-terminated application context string of at most
 *   GN_SIGN_CONTEXT_MAX bytes (e.g. "myapp/vote/1"); NULL means "". A
 *   signature only verifies under the same context.
 * @msg: @msg_len bytes (NULL allowed when 0).
 * @sig: receives GN_SIGN_BYTES bytes: version byte || Ed25519 signature of
 *   "golem-sign/1" || u8(context length) || context || msg.
 *
 * Returns 0, or GN_EINVAL (NULL @id/@sig, context too long, NULL @msg with a
 * nonzero length), GN_EBADKEY (@id is not an Ed25519 identity; since 0.2),
 * GN_ENOMEM.
 *
 * Spec: docs/protocols/ecies.md section 16.
 * Since: 0.1
 */
GN_API int gn_sign(const gn_identity *id, const char *context, const uint8_t *msg,
                   size_t msg_len, uint8_t sig[GN_SIGN_BYTES]);

/**
 * Verifies a signature made by gn_sign().
 *
 * @pub: the signer's 32-byte raw Ed25519 public key.
 * @context, @msg, @msg_len: as given to gn_sign().
 * @sig: GN_SIGN_BYTES bytes.
 *
 * Returns 0 when valid, or GN_EINVAL (NULL arguments, context too long),
 * GN_EVERSION (unknown version byte), GN_EBADSIG (the signature does not
 * verify: wrong key, context, message or a tampered signature), GN_ENOMEM.
 *
 * Spec: docs/protocols/ecies.md section 16.
 * Since: 0.1
 */
GN_API int gn_verify(const uint8_t pub[GN_ED25519_PUBLICKEYBYTES], const char *context,
                     const uint8_t *msg, size_t msg_len, const uint8_t sig[GN_SIGN_BYTES])
    GN_WARN_UNUSED;

GN_END_DECLS

#endif /* GOLEMNET_SEAL_H */
