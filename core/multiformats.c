/*
 * golemnet - multiformats: unsigned varint, base58btc, base32, multibase,
 * multihash and CIDv1.
 *
 * Specs implemented:
 *   - multiformats/unsigned-varint (9-byte limit, minimal encoding),
 *   - multiformats/multibase ('z' base58btc, 'b' base32 lower, no padding),
 *   - RFC 4648 section 6 (base32 alphabet),
 *   - multiformats/multihash (identity 0x00, sha2-256 0x12),
 *   - multiformats/cid (CIDv1 binary layout).
 *
 * Every function here is pure: no allocation, no global state, output only
 * into caller buffers. Decoders work in bounded stack scratch space so the
 * caller's output is written only on success.
 */
#include "golemnet/multiformats.h"

#include "gni.h"

#include <sodium.h>
#include <string.h>

/* Longest encoded input the base decoders accept (header contract). */
#define MF_MAX_DECODE_IN 1024
/* Longest multihash digest gn_multihash_decode() accepts. */
#define MF_MAX_DIGEST 1024

/* ---------------------------------------------------------------- varint */

size_t gn_varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80 && n < 10) {
        v >>= 7;
        n++;
    }
    return n;
}

int gn_varint_encode(uint64_t v, uint8_t *out, size_t out_len)
{
    if (v >= (UINT64_C(1) << 63))
        return GN_ERANGE;
    size_t n = gn_varint_len(v);
    if (out == NULL || out_len < n)
        return GN_ENOSPC;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = (uint8_t)(v & 0x7f);
        v >>= 7;
        out[i] = (uint8_t)(i + 1 < n ? (b | 0x80) : b);
    }
    return (int)n;
}

int gni_varint_rd_byte(gni_varint_rd *rd, uint8_t b, uint64_t *v)
{
    unsigned i = rd->n;
    if (rd->kind == GNI_VARINT_PB) {
        /* The tenth byte may only carry bit 63: 0 or 1, no continuation. */
        if (i == 9 && b > 1)
            goto bad;
    } else if (i >= GN_VARINT_MAX_LEN) {
        goto bad; /* unreachable: the ninth byte either ends or fails */
    }
    rd->acc |= (uint64_t)(b & 0x7f) << (7 * i);
    rd->n = (uint8_t)(i + 1);
    if ((b & 0x80) == 0) {
        /* Spec: a final 0x00 after at least one byte is not minimal. */
        if (rd->kind != GNI_VARINT_PB && b == 0 && i > 0)
            goto bad;
        if (v)
            *v = rd->acc;
        rd->acc = 0;
        rd->n = 0;
        return 1;
    }
    /* Nine bytes with the continuation bit: longer than MF allows. */
    if (rd->kind != GNI_VARINT_PB && rd->n >= GN_VARINT_MAX_LEN)
        goto bad;
    return 0;
bad:
    rd->acc = 0;
    rd->n = 0;
    return GN_EPARSE;
}

int gni_varint_decode_kind(const uint8_t *in, size_t in_len, unsigned kind, uint64_t *v)
{
    gni_varint_rd rd;
    if (in == NULL && in_len > 0)
        return GN_EINVAL;
    gni_varint_rd_init(&rd, kind);
    /* Bounded: the reader ends or fails within 10 bytes. */
    for (size_t i = 0; i < in_len; i++) {
        int rc = gni_varint_rd_byte(&rd, in[i], v);
        if (rc != 0)
            return rc < 0 ? rc : (int)(i + 1);
    }
    return GN_EAGAIN;
}

int gni_pb_next(const uint8_t *p, size_t n, size_t *pos, uint64_t *field, unsigned *wt,
                gn_slice *sub)
{
    if (*pos >= n) {
        return 0;
    }
    uint64_t tag, v;
    int r = gni_varint_decode_kind(p + *pos, n - *pos, GNI_VARINT_PB, &tag);
    if (r < 0) {
        return GN_EBADFRAME;
    }
    *pos += (size_t)r;
    *field = tag >> 3;
    if (wt) {
        *wt = (unsigned)(tag & 7);
    }
    sub->base = NULL;
    sub->len = 0;
    if (*field == 0 || *field > 536870911u) {
        return GN_EBADFRAME;
    }
    switch (tag & 7) {
    case 0:
        r = gni_varint_decode_kind(p + *pos, n - *pos, GNI_VARINT_PB, &v);
        if (r < 0) {
            return GN_EBADFRAME;
        }
        *pos += (size_t)r;
        return 1;
    case 1:
        if (n - *pos < 8) {
            return GN_EBADFRAME;
        }
        *pos += 8;
        return 1;
    case 5:
        if (n - *pos < 4) {
            return GN_EBADFRAME;
        }
        *pos += 4;
        return 1;
    case 2:
        r = gni_varint_decode_kind(p + *pos, n - *pos, GNI_VARINT_PB, &v);
        if (r < 0 || v > n - *pos - (size_t)r) {
            return GN_EBADFRAME;
        }
        *pos += (size_t)r;
        sub->base = p + *pos;
        sub->len = (size_t)v;
        *pos += (size_t)v;
        return 1;
    default:
        return GN_EBADFRAME;
    }
}

int gn_varint_decode(const uint8_t *in, size_t in_len, uint64_t *v)
{
    return gni_varint_decode_kind(in, in_len, GNI_VARINT_MF, v);
}

/* ------------------------------------------------------------- base58btc */

static const char mf_b58_alphabet[] =
    "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

static int mf_b58_value(unsigned char c)
{
    /* Bitcoin alphabet: 0, O, I and l are absent. */
    if (c >= '1' && c <= '9')
        return c - '1';
    if (c >= 'A' && c <= 'H')
        return 9 + (c - 'A');
    if (c >= 'J' && c <= 'N')
        return 17 + (c - 'J');
    if (c >= 'P' && c <= 'Z')
        return 22 + (c - 'P');
    if (c >= 'a' && c <= 'k')
        return 33 + (c - 'a');
    if (c >= 'm' && c <= 'z')
        return 44 + (c - 'm');
    return -1;
}

int gn_base58btc_encode(const uint8_t *in, size_t in_len, char *out, size_t out_len)
{
    if (out == NULL || out_len == 0)
        return GN_ENOSPC;
    if (in == NULL && in_len > 0) {
        out[0] = '\0';
        return GN_EINVAL;
    }
    size_t zeros = 0;
    while (zeros < in_len && in[zeros] == 0)
        zeros++;
    if (zeros + 1 > out_len) {
        out[0] = '\0';
        return GN_ENOSPC;
    }
    /* Base-58 digits, least significant first, built in @out itself. */
    uint8_t *digits = (uint8_t *)out;
    size_t cap = out_len - 1 - zeros, n = 0;
    for (size_t i = zeros; i < in_len; i++) {
        unsigned carry = in[i];
        for (size_t j = 0; j < n; j++) {
            carry += (unsigned)digits[j] << 8;
            digits[j] = (uint8_t)(carry % 58);
            carry /= 58;
        }
        while (carry) {
            if (n >= cap) {
                out[0] = '\0';
                return GN_ENOSPC;
            }
            digits[n++] = (uint8_t)(carry % 58);
            carry /= 58;
        }
    }
    /* Most significant first, shifted right past the leading '1's. */
    for (size_t a = 0, b = n; a + 1 < b; a++, b--) {
        uint8_t t = digits[a];
        digits[a] = digits[b - 1];
        digits[b - 1] = t;
    }
    memmove(out + zeros, digits, n);
    memset(out, '1', zeros);
    for (size_t i = zeros; i < zeros + n; i++)
        out[i] = mf_b58_alphabet[(uint8_t)out[i]];
    out[zeros + n] = '\0';
    return (int)(zeros + n);
}

int gn_base58btc_decode(const char *in, size_t in_len, uint8_t *out, size_t out_len)
{
    if (in_len > MF_MAX_DECODE_IN)
        return GN_ETOOBIG;
    if (in == NULL && in_len > 0)
        return GN_EINVAL;
    for (size_t i = 0; i < in_len; i++)
        if (mf_b58_value((unsigned char)in[i]) < 0)
            return GN_EPARSE;
    /* 1024 base-58 digits never exceed 1024 bytes (log(58)/log(256) < 1). */
    uint8_t bytes[MF_MAX_DECODE_IN];
    size_t zeros = 0, n = 0;
    while (zeros < in_len && in[zeros] == '1')
        zeros++;
    for (size_t i = zeros; i < in_len; i++) {
        unsigned carry = (unsigned)mf_b58_value((unsigned char)in[i]);
        for (size_t j = 0; j < n; j++) {
            carry += (unsigned)bytes[j] * 58;
            bytes[j] = (uint8_t)(carry & 0xff);
            carry >>= 8;
        }
        while (carry) {
            if (n >= sizeof bytes)
                return GN_EINTERNAL; /* unreachable: bounded above */
            bytes[n++] = (uint8_t)(carry & 0xff);
            carry >>= 8;
        }
    }
    if (zeros + n > out_len)
        return GN_ENOSPC;
    memset(out, 0, zeros);
    for (size_t i = 0; i < n; i++)
        out[zeros + i] = bytes[n - 1 - i];
    return (int)(zeros + n);
}

/* ---------------------------------------------------------------- base32 */

static const char mf_b32_alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";

static int mf_b32_value(unsigned char c)
{
    if (c >= 'a' && c <= 'z')
        return c - 'a';
    if (c >= '2' && c <= '7')
        return 26 + (c - '2');
    return -1;
}

int gn_base32_encode(const uint8_t *in, size_t in_len, char *out, size_t out_len)
{
    if (out == NULL || out_len == 0)
        return GN_ENOSPC;
    if (in == NULL && in_len > 0) {
        out[0] = '\0';
        return GN_EINVAL;
    }
    /* ceil(in_len * 8 / 5) characters; guard the multiplication. */
    if (in_len > (SIZE_MAX - 4) / 8) {
        out[0] = '\0';
        return GN_ENOSPC;
    }
    size_t need = (in_len * 8 + 4) / 5;
    if (need + 1 > out_len || need > INT32_MAX) {
        out[0] = '\0';
        return GN_ENOSPC;
    }
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < in_len; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out[o++] = mf_b32_alphabet[(acc >> bits) & 0x1f];
        }
        acc &= (1u << bits) - 1;
    }
    if (bits > 0)
        out[o++] = mf_b32_alphabet[(acc << (5 - bits)) & 0x1f];
    out[o] = '\0';
    return (int)o;
}

int gn_base32_decode(const char *in, size_t in_len, uint8_t *out, size_t out_len)
{
    if (in_len > MF_MAX_DECODE_IN)
        return GN_ETOOBIG;
    if (in == NULL && in_len > 0)
        return GN_EINVAL;
    /* Unpadded RFC 4648: a final group of 1, 3 or 6 characters is impossible. */
    size_t rem = in_len % 8;
    if (rem == 1 || rem == 3 || rem == 6)
        return GN_EPARSE;
    for (size_t i = 0; i < in_len; i++)
        if (mf_b32_value((unsigned char)in[i]) < 0)
            return GN_EPARSE;
    size_t nbytes = in_len * 5 / 8;
    /* The leftover bits (in_len*5 - nbytes*8 < 5) must be zero. */
    unsigned tail_bits = (unsigned)(in_len * 5 - nbytes * 8);
    if (tail_bits > 0) {
        int last = mf_b32_value((unsigned char)in[in_len - 1]);
        if ((last & ((1 << tail_bits) - 1)) != 0)
            return GN_EPARSE;
    }
    if (nbytes > out_len)
        return GN_ENOSPC;
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < in_len; i++) {
        acc = (acc << 5) | (uint32_t)mf_b32_value((unsigned char)in[i]);
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    return (int)o;
}

/* ------------------------------------------------------------- multibase */

int gn_multibase_encode(char base, const uint8_t *in, size_t in_len, char *out, size_t out_len)
{
    if (base != GN_MULTIBASE_BASE58BTC && base != GN_MULTIBASE_BASE32) {
        if (out && out_len > 0)
            out[0] = '\0';
        return GN_ENOTSUP;
    }
    if (out == NULL || out_len < 2) {
        if (out && out_len > 0)
            out[0] = '\0';
        return GN_ENOSPC;
    }
    int rc = base == GN_MULTIBASE_BASE58BTC ? gn_base58btc_encode(in, in_len, out + 1, out_len - 1)
                                            : gn_base32_encode(in, in_len, out + 1, out_len - 1);
    if (rc < 0) {
        out[0] = '\0';
        return rc;
    }
    if (rc >= INT32_MAX) {
        out[0] = '\0';
        return GN_ENOSPC;
    }
    out[0] = base;
    return rc + 1;
}

int gn_multibase_decode(const char *in, size_t in_len, char *base, uint8_t *out, size_t out_len)
{
    if (in == NULL || in_len == 0)
        return GN_EPARSE;
    int rc;
    switch (in[0]) {
    case GN_MULTIBASE_BASE58BTC:
        rc = gn_base58btc_decode(in + 1, in_len - 1, out, out_len);
        break;
    case GN_MULTIBASE_BASE32:
        rc = gn_base32_decode(in + 1, in_len - 1, out, out_len);
        break;
    default:
        return GN_ENOTSUP;
    }
    if (rc >= 0 && base)
        *base = in[0];
    return rc;
}

/* ------------------------------------------------------------- multihash */

int gn_multihash_encode(uint64_t code, const uint8_t *in, size_t in_len, uint8_t *out,
                        size_t out_len)
{
    uint8_t digest[crypto_hash_sha256_BYTES];
    const uint8_t *d;
    size_t dlen;
    if (code == GN_MH_IDENTITY) {
        if (in == NULL && in_len > 0)
            return GN_EINVAL;
        d = in;
        dlen = in_len;
    } else if (code == GN_MH_SHA2_256) {
        if (in == NULL && in_len > 0)
            return GN_EINVAL;
        crypto_hash_sha256(digest, in ? in : (const uint8_t *)"", (unsigned long long)in_len);
        d = digest;
        dlen = sizeof digest;
    } else {
        return GN_ENOTSUP;
    }
    size_t clen = gn_varint_len(code), llen = gn_varint_len(dlen);
    if (llen > GN_VARINT_MAX_LEN || out == NULL || out_len < clen || out_len - clen < llen ||
        out_len - clen - llen < dlen || clen + llen + dlen > INT32_MAX)
        return GN_ENOSPC;
    size_t o = (size_t)gn_varint_encode(code, out, out_len);
    o += (size_t)gn_varint_encode(dlen, out + o, out_len - o);
    if (dlen)
        memcpy(out + o, d, dlen);
    return (int)(o + dlen);
}

int gn_multihash_decode(const uint8_t *in, size_t in_len, gn_multihash *mh)
{
    uint64_t code, dlen;
    if (in == NULL && in_len > 0)
        return GN_EINVAL;
    int a = gn_varint_decode(in, in_len, &code);
    if (a < 0)
        return GN_EPARSE;
    int b = gn_varint_decode(in + a, in_len - (size_t)a, &dlen);
    if (b < 0)
        return GN_EPARSE;
    size_t hdr = (size_t)a + (size_t)b;
    if (dlen > MF_MAX_DIGEST)
        return GN_ETOOBIG;
    if (dlen != in_len - hdr)
        return GN_EPARSE; /* truncated digest or trailing bytes */
    if (mh) {
        mh->code = code;
        mh->digest = in + hdr;
        mh->digest_len = (size_t)dlen;
    }
    return 0;
}

/* ------------------------------------------------------------------- CID */

int gn_cid_encode(uint64_t codec, const uint8_t *mh, size_t mh_len, uint8_t *out,
                  size_t out_len)
{
    if (mh == NULL && mh_len > 0)
        return GN_EINVAL;
    size_t clen = gn_varint_len(codec);
    if (clen > GN_VARINT_MAX_LEN)
        return GN_ERANGE;
    if (out == NULL || out_len < 1 || out_len - 1 < clen || out_len - 1 - clen < mh_len ||
        1 + clen + mh_len > INT32_MAX)
        return GN_ENOSPC;
    out[0] = GN_CID_VERSION_1;
    (void)gn_varint_encode(codec, out + 1, clen);
    if (mh_len)
        memcpy(out + 1 + clen, mh, mh_len);
    return (int)(1 + clen + mh_len);
}

int gn_cid_decode(const uint8_t *in, size_t in_len, uint64_t *codec, gn_multihash *mh)
{
    uint64_t version, c;
    gn_multihash m;
    if (in == NULL && in_len > 0)
        return GN_EINVAL;
    int a = gn_varint_decode(in, in_len, &version);
    if (a < 0)
        return GN_EPARSE;
    if (version != GN_CID_VERSION_1)
        return GN_EVERSION;
    int b = gn_varint_decode(in + a, in_len - (size_t)a, &c);
    if (b < 0)
        return GN_EPARSE;
    size_t hdr = (size_t)a + (size_t)b;
    int rc = gn_multihash_decode(in + hdr, in_len - hdr, &m);
    if (rc < 0)
        return rc;
    if (codec)
        *codec = c;
    if (mh)
        *mh = m;
    return 0;
}
