/*
 * golemnet - multiformats: unsigned varint, base58btc, base32, multibase,
 * multihash and CIDv1.
 *
 * Spec: multiformats/unsigned-varint, multiformats/multibase,
 * multiformats/multihash, multiformats/cid (CIDv1), libp2p peer-ids spec.
 * All functions are pure (no allocation unless stated), thread-safe, and
 * write into caller-owned buffers.
 */
#ifndef GOLEMNET_MULTIFORMATS_H
#define GOLEMNET_MULTIFORMATS_H

#include "golemnet/common.h"

GN_BEGIN_DECLS

/** Longest unsigned varint accepted (9 bytes, 63 bits). Spec: unsigned-varint. */
#define GN_VARINT_MAX_LEN 9

/**
 * Encodes @v as an unsigned varint into @out (@out_len bytes available).
 * Returns the number of bytes written (1..9), GN_ERANGE if @v >= 2^63,
 * GN_ENOSPC if @out_len is too small.
 * Since: 0.1
 */
GN_API int gn_varint_encode(uint64_t v, uint8_t *out, size_t out_len);

/** Number of bytes gn_varint_encode() writes for @v (1..9; 10 if >= 2^63). */
GN_API size_t gn_varint_len(uint64_t v);

/**
 * Decodes one unsigned varint from the start of @in (@in_len bytes).
 * On success stores the value in *@v and returns the bytes consumed (1..9).
 * Errors: GN_EAGAIN if @in ends before the varint does (need more bytes,
 * fewer than 9 given); GN_EPARSE if it is longer than 9 bytes or not
 * minimally encoded (a trailing 0x00 continuation byte, per the spec).
 * Since: 0.1
 */
GN_API int gn_varint_decode(const uint8_t *in, size_t in_len, uint64_t *v);

/**
 * base58btc (Bitcoin alphabet). Encode: writes a NUL-terminated string into
 * @out (@out_len bytes incl. the NUL); returns its length or GN_ENOSPC.
 * Decode: @in is @in_len characters (no NUL needed); writes the bytes to
 * @out and returns their count, GN_EPARSE on a character outside the
 * alphabet, GN_ENOSPC if @out is too small, GN_ETOOBIG if @in_len > 1024.
 * Since: 0.1
 */
GN_API int gn_base58btc_encode(const uint8_t *in, size_t in_len, char *out, size_t out_len);
GN_API int gn_base58btc_decode(const char *in, size_t in_len, uint8_t *out, size_t out_len);

/**
 * base32 per RFC 4648, lower-case alphabet, no padding (multibase 'b').
 * Same return conventions as base58btc. Decode accepts lower case only and
 * rejects padding, invalid characters and non-zero trailing bits (GN_EPARSE).
 * Since: 0.1
 */
GN_API int gn_base32_encode(const uint8_t *in, size_t in_len, char *out, size_t out_len);
GN_API int gn_base32_decode(const char *in, size_t in_len, uint8_t *out, size_t out_len);

/** Multibase prefixes supported. Spec: multibase table. */
#define GN_MULTIBASE_BASE58BTC 'z'
#define GN_MULTIBASE_BASE32 'b'

/**
 * Multibase encode with prefix @base (GN_MULTIBASE_*): writes the prefix and
 * the encoding, NUL-terminated. Returns the string length, GN_ENOSPC, or
 * GN_ENOTSUP for other bases.
 * Decode: reads the prefix from @in[0]; stores it in *@base (may be NULL);
 * returns the byte count, GN_ENOTSUP for an unsupported prefix, GN_EPARSE.
 * Since: 0.1
 */
GN_API int gn_multibase_encode(char base, const uint8_t *in, size_t in_len, char *out,
                               size_t out_len);
GN_API int gn_multibase_decode(const char *in, size_t in_len, char *base, uint8_t *out,
                               size_t out_len);

/** Multicodec codes used here. Spec: multiformats multicodec table. */
#define GN_MH_IDENTITY 0x00
#define GN_MH_SHA2_256 0x12
#define GN_CODEC_LIBP2P_KEY 0x72
#define GN_CID_VERSION_1 0x01

/**
 * Multihash view into borrowed bytes (valid as long as the input is).
 */
typedef struct gn_multihash {
    uint64_t code;
    const uint8_t *digest;
    size_t digest_len;
} gn_multihash;

/**
 * Builds a multihash of @in: @code GN_MH_IDENTITY copies @in (any length
 * that fits @out), GN_MH_SHA2_256 hashes it (libsodium). Returns bytes
 * written, GN_ENOSPC, GN_ENOTSUP for other codes, GN_EINVAL for a NULL @in
 * with a non-zero length (the same holds for every function here).
 * Since: 0.1
 */
GN_API int gn_multihash_encode(uint64_t code, const uint8_t *in, size_t in_len, uint8_t *out,
                               size_t out_len);

/**
 * Parses a multihash occupying all of @in. Returns 0 and fills *@mh (pointing
 * into @in); GN_EPARSE for truncated input, trailing bytes or a bad varint;
 * GN_ETOOBIG for a digest longer than 1024 bytes.
 * Since: 0.1
 */
GN_API int gn_multihash_decode(const uint8_t *in, size_t in_len, gn_multihash *mh);

/**
 * CIDv1 binary: <version=1><codec varint><multihash>. Encode writes it and
 * returns the length or GN_ENOSPC. Decode parses all of @in, stores the codec
 * and the multihash view; GN_EPARSE on malformed input, GN_EVERSION if the
 * version is not 1.
 * Since: 0.1
 */
GN_API int gn_cid_encode(uint64_t codec, const uint8_t *mh, size_t mh_len, uint8_t *out,
                         size_t out_len);
GN_API int gn_cid_decode(const uint8_t *in, size_t in_len, uint64_t *codec, gn_multihash *mh);

GN_END_DECLS

#endif /* GOLEMNET_MULTIFORMATS_H */
