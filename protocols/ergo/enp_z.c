/*
 * golemnet - ENP compressed frames (type 200): gzip and zlib through zlib,
 * LZW through lzw.c, and the threshold rule. Contract: enp.h.
 * Spec: shared/specs/ergo-wire.md section c "Compression".
 *
 * Deflate output need not match Go's bytes (the receiver only inflates);
 * LZW output does (lzw.c). zlib's memory comes from gn_malloc.
 */
#include "enp.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <zlib.h>

#include "gni.h"
#include "lzw.h"

GN_PRINTF(2, 3)
static void z_diag(gni_enp_diag *d, const char *fmt, ...)
{
    if (d == NULL) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->msg, sizeof d->msg, fmt, ap);
    va_end(ap);
}

static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    (void)opaque;
    return gn_calloc(items, size);
}

static void z_free(voidpf opaque, voidpf p)
{
    (void)opaque;
    gn_free(p);
}

bool gni_enp_should_compress(uint8_t type, size_t frame_len, const gni_enp_zopts *z)
{
    if (z == NULL || !z->enable) {
        return false;
    }
    bool eligible = (type >= GNI_ENP_MSG_PID && type <= GNI_ENP_MSG_EVENT_CACHE) ||
                    (type >= GNI_ENP_REQ_PID && type <= GNI_ENP_REQ_ALIAS) ||
                    type == GNI_ENP_RESPONSE || type == GNI_ENP_RESPONSE_ERROR;
    uint32_t threshold = z->threshold < GNI_ENP_Z_THRESHOLD ? GNI_ENP_Z_THRESHOLD : z->threshold;
    return eligible && frame_len > threshold;
}

size_t gni_enp_compress_bound(size_t frame_len)
{
    if (frame_len > GNI_ENP_MAX_FRAME_LEN) {
        return SIZE_MAX;
    }
    /* deflate: zlib's bound plus the gzip wrapper (18 bytes against zlib's 6) */
    size_t d = (size_t)compressBound((uLong)frame_len) + 16;
    size_t l = gni_lzw_bound(frame_len);
    return GNI_ENP_Z_HEAD_LEN + (d > l ? d : l);
}

static int z_deflate(const uint8_t *in, size_t len, int wbits, int level, uint8_t *out, size_t cap,
                     size_t *out_len)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    zs.zalloc = z_alloc;
    zs.zfree = z_free;
    int zr = deflateInit2(&zs, level, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY);
    if (zr != Z_OK) {
        return zr == Z_MEM_ERROR ? GN_ENOMEM : GN_EINTERNAL;
    }
    int rc = 0;
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.next_out = out;
    size_t in_left = len, out_left = cap;
    /* uInt chunks: bounded by (len + cap) / UINT_MAX + 2 passes */
    for (;;) {
        uInt ic = in_left > UINT_MAX ? UINT_MAX : (uInt)in_left;
        uInt oc = out_left > UINT_MAX ? UINT_MAX : (uInt)out_left;
        zs.avail_in = ic;
        zs.avail_out = oc;
        zr = deflate(&zs, ic == in_left ? Z_FINISH : Z_NO_FLUSH);
        in_left -= ic - zs.avail_in;
        out_left -= oc - zs.avail_out;
        if (zr == Z_STREAM_END) {
            break;
        }
        if (zr == Z_BUF_ERROR || (zr == Z_OK && out_left == 0)) {
            rc = GN_ENOSPC;
            break;
        }
        if (zr != Z_OK) {
            rc = GN_EINTERNAL;
            break;
        }
    }
    deflateEnd(&zs);
    if (rc == 0) {
        *out_len = cap - out_left;
    }
    return rc;
}

long gni_enp_compress(const uint8_t *frame, size_t len, uint8_t method, uint8_t level, uint8_t *out,
                      size_t cap)
{
    if (frame == NULL || (out == NULL && cap > 0)) {
        return GN_EINVAL;
    }
    if (method == 0) {
        method = GNI_ENP_Z_GZIP;
    }
    if (len < GNI_ENP_HEADER_LEN || frame[0] != GNI_ENP_MAGIC || frame[1] != GNI_ENP_VERSION ||
        gni_enp_get32(frame + 2) != len) {
        return GN_EPARSE;
    }
    if (method != GNI_ENP_Z_LZW && method != GNI_ENP_Z_ZLIB && method != GNI_ENP_Z_GZIP) {
        return GN_ENOTSUP;
    }
    if (cap < GNI_ENP_Z_HEAD_LEN) {
        return GN_ENOSPC;
    }
    size_t zlen = 0;
    int rc;
    uint8_t *zout = out + GNI_ENP_Z_HEAD_LEN;
    size_t zcap = cap - GNI_ENP_Z_HEAD_LEN;
    if (method == GNI_ENP_Z_LZW) {
        rc = gni_lzw_encode(frame, len, zout, zcap, &zlen);
    } else if (method == GNI_ENP_Z_ZLIB) {
        rc = z_deflate(frame, len, 15, Z_DEFAULT_COMPRESSION, zout, zcap, &zlen);
    } else {
        int lv = level == GNI_ENP_ZLEVEL_SPEED  ? Z_BEST_SPEED
                 : level == GNI_ENP_ZLEVEL_SIZE ? Z_BEST_COMPRESSION
                                                : Z_DEFAULT_COMPRESSION;
        rc = z_deflate(frame, len, 15 + 16, lv, zout, zcap, &zlen);
    }
    if (rc < 0) {
        return rc;
    }
    size_t total = GNI_ENP_Z_HEAD_LEN + zlen;
    if (total > GNI_ENP_MAX_FRAME_LEN) {
        return GN_ETOOBIG;
    }
    out[0] = GNI_ENP_MAGIC;
    out[1] = GNI_ENP_VERSION;
    out[2] = (uint8_t)(total >> 24);
    out[3] = (uint8_t)(total >> 16);
    out[4] = (uint8_t)(total >> 8);
    out[5] = (uint8_t)total;
    out[6] = frame[6]; /* keep the original order byte */
    out[7] = GNI_ENP_COMPRESSED;
    out[8] = method;
    out[9] = (uint8_t)(len >> 24);
    out[10] = (uint8_t)(len >> 16);
    out[11] = (uint8_t)(len >> 8);
    out[12] = (uint8_t)len;
    return (long)total;
}

/*
 * Inflates @in into exactly @want bytes at @out. gzip (wbits 31): further
 * members may follow, as Go's multistream reader allows; zlib (15):
 * trailing bytes are ignored, as Go's reader does.
 */
static int z_inflate(const uint8_t *in, size_t len, int wbits, uint8_t *out, size_t want,
                     gni_enp_diag *diag)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    zs.zalloc = z_alloc;
    zs.zfree = z_free;
    int zr = inflateInit2(&zs, wbits);
    if (zr != Z_OK) {
        return zr == Z_MEM_ERROR ? GN_ENOMEM : GN_EINTERNAL;
    }
    int rc = 0;
    size_t in_left = len, got = 0;
    const uint8_t *ip = in;
    uint8_t extra;
    /*
     * Each pass either ends a stream, consumes input, produces output or
     * stops; with uInt-sized chunks the pass count is bounded by the input
     * and output sizes.
     */
    for (;;) {
        uInt ic = in_left > UINT_MAX ? UINT_MAX : (uInt)in_left;
        size_t out_left = want - got;
        bool spare = out_left == 0; /* the output is full: one byte to catch a longer stream */
        uInt oc = spare ? 1 : out_left > UINT_MAX ? UINT_MAX : (uInt)out_left;
        zs.next_in = (Bytef *)(uintptr_t)ip;
        zs.avail_in = ic;
        zs.next_out = spare ? &extra : out + got;
        zs.avail_out = oc;
        zr = inflate(&zs, Z_NO_FLUSH);
        size_t took = ic - zs.avail_in, made = oc - zs.avail_out;
        ip += took;
        in_left -= took;
        if (spare && made > 0) {
            z_diag(diag, "compressed ENP frame expands beyond its announced %zu bytes", want);
            rc = GN_EPARSE;
            break;
        }
        if (!spare) {
            got += made;
        }
        if (zr == Z_STREAM_END) {
            if (wbits > 15 && in_left > 0) {
                /* another gzip member follows */
                if (inflateReset(&zs) != Z_OK) {
                    rc = GN_EINTERNAL;
                    break;
                }
                continue;
            }
            if (got != want) {
                z_diag(diag, "compressed ENP frame expands to %zu bytes, %zu announced", got, want);
                rc = GN_EPARSE;
            }
            break;
        }
        if (zr == Z_MEM_ERROR) {
            rc = GN_ENOMEM;
            break;
        }
        if (zr == Z_NEED_DICT || zr == Z_DATA_ERROR || zr == Z_STREAM_ERROR) {
            z_diag(diag, "corrupt %s stream in a compressed ENP frame: %s",
                   wbits > 15 ? "gzip" : "zlib", zs.msg ? zs.msg : "bad data");
            rc = GN_EPARSE;
            break;
        }
        if (took == 0 && made == 0) {
            /* Z_BUF_ERROR or no progress: the input ended inside the stream */
            z_diag(diag, "truncated %s stream in a compressed ENP frame",
                   wbits > 15 ? "gzip" : "zlib");
            rc = GN_EPARSE;
            break;
        }
    }
    inflateEnd(&zs);
    return rc;
}

long gni_enp_inflate(const gni_enp_frame *z, uint8_t *out, size_t cap, gni_enp_diag *diag)
{
    if (z == NULL || (out == NULL && cap > 0) || (z->payload.base == NULL && z->payload.len > 0)) {
        return GN_EINVAL;
    }
    if (z->type != GNI_ENP_COMPRESSED) {
        return GN_EINVAL;
    }
    size_t want = z->orig_len;
    if (want > cap) {
        z_diag(diag, "compressed ENP frame announces %zu bytes, above the %zu-byte bound", want, cap);
        return GN_ETOOBIG;
    }
    if (want < GNI_ENP_HEADER_LEN) {
        z_diag(diag, "compressed ENP frame announces %zu bytes, below a frame header", want);
        return GN_EPARSE;
    }
    int rc;
    switch (z->method) {
    case GNI_ENP_Z_LZW: {
        size_t got = 0;
        rc = gni_lzw_decode(z->payload.base, z->payload.len, out, want, &got);
        if (rc == GN_ETOOBIG || (rc == 0 && got != want)) {
            z_diag(diag, "LZW stream of a compressed ENP frame does not expand to its announced %zu bytes",
                   want);
            rc = GN_EPARSE;
        } else if (rc == GN_EPARSE) {
            z_diag(diag, "corrupt or truncated LZW stream in a compressed ENP frame");
        }
        break;
    }
    case GNI_ENP_Z_ZLIB:
        rc = z_inflate(z->payload.base, z->payload.len, 15, out, want, diag);
        break;
    case GNI_ENP_Z_GZIP:
        rc = z_inflate(z->payload.base, z->payload.len, 15 + 16, out, want, diag);
        break;
    default:
        z_diag(diag, "unknown ENP compression method %u (100 LZW, 101 zlib, 102 gzip)", z->method);
        return GN_ENOTSUP;
    }
    if (rc < 0) {
        return rc;
    }
    if (out[0] != GNI_ENP_MAGIC || out[1] != GNI_ENP_VERSION || gni_enp_get32(out + 2) != want) {
        z_diag(diag, "inflated ENP frame has a bad header (magic 0x%02x, version %u, length %" PRIu32
                     ", %zu inflated)", out[0], out[1], gni_enp_get32(out + 2), want);
        return GN_EPARSE;
    }
    if (out[7] == GNI_ENP_COMPRESSED) {
        z_diag(diag, "compressed ENP frame inside a compressed frame refused");
        return GN_EPARSE;
    }
    return (long)want;
}
