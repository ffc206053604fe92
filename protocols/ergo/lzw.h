/*
 * golemnet - LZW as Go's compress/lzw writes it (private to the library).
 *
 * Ergo compresses ENP frames with method 100 through Go's compress/lzw
 * (LSB bit order, 8-bit literals). No maintained C library writes that exact
 * stream, so this is a small codec of our own, written from the format
 * description (docs/ergo.md "ENP", "LZW"); it never reads the peer's bytes
 * beyond what it was given and never writes past the caller's buffer.
 *
 * The stream (Spec: shared/specs/ergo-wire.md section c, "Compression"):
 *  - codes are packed least significant bit first into bytes; the last
 *    byte is padded with zero bits;
 *  - codes 0..255 are literals, 256 = clear, 257 = end of data; dictionary
 *    codes start at 258;
 *  - codes start 9 bits wide. Each code written after the first one of a
 *    run (a "run" starts after a clear) defines the next dictionary code
 *    (previous string + first byte of this one). When the next code to
 *    define reaches 2^width the width grows by one bit, up to 12 bits;
 *  - the writer starts with a clear code, and writes a clear code (and
 *    starts a new run at 9 bits) instead of defining code 4095;
 *  - the writer ends with the pending code, then the end code, then the
 *    partial byte. An empty input is clear + end (00 03 02).
 * The encoder's output is byte-identical to Go's NewWriter(w, LSB, 8)
 * followed by one Write and Close (the dictionary semantics fix every code).
 * The decoder also accepts what Go's reader accepts beyond that: a run that
 * fills the 12-bit dictionary keeps using it (no further definitions) until
 * a clear code; bytes after the end code are ignored.
 *
 * Errors (negative gn_err codes):
 *   GN_ENOSPC   encoder: @cap too small (gni_lzw_bound() is always enough)
 *   GN_ETOOBIG  decoder: the data expands to more than @cap bytes (the
 *               output bound: nothing is written past @cap)
 *   GN_EPARSE   decoder: a code that is not defined yet, or the input ends
 *               before the end code
 *   GN_ENOMEM   the dictionary could not be allocated (48 KiB encoder,
 *               32 KiB decoder, from gn_malloc)
 *   GN_EINVAL   NULL pointers with a non-zero length
 *
 * Thread context: pure functions without global state; any thread.
 */
#ifndef GNI_LZW_H
#define GNI_LZW_H

#include <stddef.h>
#include <stdint.h>

/** Literal width Ergo uses (Go's litWidth): 8 bits. */
#define GNI_LZW_LIT_WIDTH 8u
/** Widest code: 12 bits. */
#define GNI_LZW_MAX_WIDTH 12u

/**
 * Upper bound of gni_lzw_encode()'s output for @len input bytes: every
 * input byte at most one 12-bit code, plus the first clear, one clear per
 * 3837 codes, the last code and the end code. Saturates at SIZE_MAX.
 */
size_t gni_lzw_bound(size_t len);

/**
 * Compresses @len bytes at @in into @out (@cap bytes). On success returns 0
 * and sets *@out_len. Errors: GN_ENOSPC, GN_ENOMEM, GN_EINVAL (see above);
 * *@out_len is untouched on failure and @out may hold partial output.
 */
int gni_lzw_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *out_len);

/**
 * Decompresses the stream at @in (@len bytes) into @out (@cap bytes: the
 * output bound). On success (an end code was read) returns 0 and sets
 * *@out_len to the bytes produced. Errors: GN_ETOOBIG, GN_EPARSE, GN_ENOMEM,
 * GN_EINVAL (see above).
 */
int gni_lzw_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *out_len);

#endif /* GNI_LZW_H */
