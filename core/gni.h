/*
 * Internal helpers shared by core and components (never installed).
 * Include only from .c files of this project.
 */
#ifndef GNI_H
#define GNI_H

#include "golemnet/err.h"
#include "golemnet/identity.h"
#include "golemnet/log.h"

#include <assert.h>
#include <stddef.h>

#define GNI_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define GNI_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define GNI_MIN(a, b) ((a) < (b) ? (a) : (b))
#define GNI_MAX(a, b) ((a) > (b) ? (a) : (b))

/** Names of the built-in components ("kind:name"), NULL-terminated (generated). */
extern const char *const gni_builtin_names[];

/**
 * Maps a libuv error (negative errno-style) to a gn_err. Adapters only.
 * Unknown codes map to GN_EIO. Defined in core/uv_glue.c.
 */
int gni_err_from_uv(int uverr);

/**
 * HKDF-Extract of RFC 5869 section 2.2 with HMAC-SHA256: @prk (32 bytes) =
 * HMAC(@salt, @ikm). A NULL or empty @salt means 32 zero bytes (the RFC's
 * default); @ikm may be NULL when @ikm_len is 0. Cannot fail. Defined in
 * core/hkdf.c; any thread.
 */
void gni_hkdf_sha256_extract(uint8_t prk[32], const uint8_t *salt, size_t salt_len,
                             const uint8_t *ikm, size_t ikm_len);

/**
 * HKDF-Expand of RFC 5869 section 2.3 with HMAC-SHA256: the first @out_len
 * bytes of T(1) || T(2) || ..., T(i) = HMAC(@prk, T(i-1) || @info || u8(i)).
 * @prk is @prk_len bytes (normally 32, any length is accepted as an HMAC
 * key); @info may be NULL when @info_len is 0. Returns 0, or GN_EINVAL
 * (@out_len > 255 * 32, or a NULL pointer with a length). core/hkdf.c.
 */
int gni_hkdf_sha256_expand(uint8_t *out, size_t out_len, const uint8_t *prk, size_t prk_len,
                           const uint8_t *info, size_t info_len);

/**
 * The X25519 secret key of @id's Ed25519 identity key (libsodium
 * crypto_sign_ed25519_sk_to_curve25519, RFC 7748 section 4.1 map), written
 * to @out (32 bytes; a secret: the caller wipes it). Returns 0, or
 * GN_EINVAL (NULL argument), GN_EINTERNAL (conversion failed; @out is then
 * zeroed). Defined in core/identity.c; any thread (reads @id only).
 */
int gni_identity_x25519_secret(const gn_identity *id, uint8_t out[32]);

#endif /* GNI_H */
