/*
 * Fuzzes the ENP decompression path (protocols/ergo/enp_z.c, lzw.c).
 * Byte 0 picks the method (100 LZW, 101 zlib, 102 gzip; anything else is
 * passed through as is), bytes 1-2 the announced original length (big
 * endian, so up to 64 KiB), the rest is the compressed stream. Checks:
 * inflation never writes past its bound and fails only with a documented
 * error; the raw LZW decoder likewise; and the rest of the input, taken as
 * plain data, round trips through the LZW codec and through a compressed
 * frame of every method.
 */
#include "enp.h"
#include "lzw.h"

#include "golemnet/err.h"

#include <stdlib.h>
#include <string.h>

static uint8_t out[1 << 16];
static uint8_t zbuf[3 * (1 << 16)];
static uint8_t frame[(1 << 16) + 64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    gni_enp_frame z;
    memset(&z, 0, sizeof z);
    z.type = GNI_ENP_COMPRESSED;
    z.method = data[0];
    z.orig_len = (uint32_t)(data[1] << 8 | data[2]);
    z.payload = gn_slice_of(data + 3, size - 3);
    gni_enp_diag d;
    long r = gni_enp_inflate(&z, out, sizeof out, &d);
    if (r < 0 && r != GN_ETOOBIG && r != GN_EPARSE && r != GN_ENOTSUP && r != GN_ENOMEM)
        abort();
    if (r >= 0 && r != (long)z.orig_len)
        abort();

    /* the raw LZW decoder with a small bound */
    size_t n = 0;
    int rc = gni_lzw_decode(data + 3, size - 3, out, z.orig_len, &n);
    if (rc != 0 && rc != GN_ETOOBIG && rc != GN_EPARSE && rc != GN_ENOMEM)
        abort();
    if (rc == 0 && n > z.orig_len)
        abort();

    /* round trips of the same bytes as plain data */
    size_t plen = size - 3;
    if (plen > (1 << 16))
        plen = 1 << 16;
    size_t zn = 0;
    if (gni_lzw_encode(data + 3, plen, zbuf, sizeof zbuf, &zn) != 0 || zn > gni_lzw_bound(plen))
        abort();
    if (gni_lzw_decode(zbuf, zn, out, plen, &n) != 0 || n != plen ||
        (plen && memcmp(out, data + 3, plen) != 0))
        abort();
    if (data[0] % 4 == 0 && plen <= sizeof out - 64) {
        gni_enp_frame f;
        memset(&f, 0, sizeof f);
        f.type = GNI_ENP_MSG_PID;
        f.order = data[1];
        f.payload = gn_slice_of(data + 3, plen);
        long fl = gni_enp_build(&f, frame, sizeof frame);
        if (fl < 0)
            abort();
        static const uint8_t methods[] = {GNI_ENP_Z_LZW, GNI_ENP_Z_ZLIB, GNI_ENP_Z_GZIP};
        for (size_t m = 0; m < sizeof methods; m++) {
            long zl = gni_enp_compress(frame, (size_t)fl, methods[m], data[2] % 3, zbuf, sizeof zbuf);
            if (zl < 0 || (size_t)zl > gni_enp_compress_bound((size_t)fl))
                abort();
            gni_enp_frame zf;
            if (gni_enp_parse(zbuf, (size_t)zl, &zf, NULL) != 0)
                abort();
            if (gni_enp_inflate(&zf, out, sizeof out, NULL) != fl || memcmp(out, frame, (size_t)fl) != 0)
                abort();
        }
    }
    return 0;
}
