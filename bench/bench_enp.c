/*
 * bench_enp: ENP R1 framing and compression figures as JSON lines (one
 * object a line). Single thread, in memory, no I/O: what the sans-I/O core
 * costs per frame (protocols/ergo/enp.c, enp_z.c, lzw.c).
 *
 *  - split_parse: 64-byte binary sends (type 101 with an EDF []byte of 64
 *    bytes: 102-byte frames, as Ergo's 64-byte benchmark sends) laid back to
 *    back in a 4 MiB stream, fed to the splitter in 64 KiB reads (a socket
 *    read's size), every frame parsed; frames per second and MB/s of wire;
 *  - split_parse_small_reads: the same stream fed in 100-byte reads, so
 *    nearly every frame straddles two reads and takes the copying path;
 *  - build: the same frames built (head + payload copy) into a buffer;
 *  - compress / decompress: per method (lzw, zlib, gzip at Ergo's default
 *    level) on two inputs: the 2336-byte frame of the captured compression
 *    vectors (a repeated phrase) and a 64 KiB frame of pseudo-random words;
 *    MB/s of the original frame (10^6 bytes per second).
 *
 * Usage: bench_enp [seconds per figure, default 1.0]
 * Not run by the test suite. See docs/performance.md, "ENP framing".
 */
#include "enp.h"
#include "bench_enp_frame.h"

#include "golemnet/golemnet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double secs(gn_time t0) { return (double)(gn_now() - t0) / 1e9; }

static void die(const char *what, long rc)
{
    fprintf(stderr, "bench_enp: %s: %s\n", what, gn_err_name((int)rc));
    exit(1);
}

static volatile uint64_t sink;

#define STREAM_LEN (4u << 20)

#define send64 bench_enp_send64

static void bench_split_parse(double budget, size_t read_len, const char *name)
{
    uint8_t payload[69];
    gni_enp_frame f = send64(payload, 1004);
    size_t flen = gni_enp_frame_len(&f);
    size_t nframes = STREAM_LEN / flen;
    uint8_t *stream = malloc(nframes * flen);
    if (!stream)
        die("malloc", GN_ENOMEM);
    for (size_t i = 0; i < nframes; i++) {
        f.to = 1001 + i % 64;
        long n = gni_enp_build(&f, stream + i * flen, flen);
        if (n != (long)flen)
            die("build", n);
    }
    size_t total = nframes * flen;
    uint64_t frames = 0;
    gn_time t0 = gn_now();
    double el = 0;
    do {
        gni_enp_splitter s;
        gni_enp_splitter_init(&s, 1u << 20);
        size_t pos = 0;
        while (pos < total) {
            size_t n = total - pos < read_len ? total - pos : read_len;
            const uint8_t *in = stream + pos;
            while (n > 0) {
                size_t used;
                gn_slice fr;
                int rc = gni_enp_splitter_feed(&s, in, n, &used, &fr);
                if (rc < 0)
                    die("feed", rc);
                in += used;
                n -= used;
                pos += used;
                if (rc == 1) {
                    gni_enp_frame pf;
                    int pr = gni_enp_parse(fr.base, fr.len, &pf, NULL);
                    if (pr != 0)
                        die("parse", pr);
                    sink += pf.to + pf.payload.len +
                            gni_enp_queue_index(pf.order, frames, 12);
                    frames++;
                }
            }
        }
        gni_enp_splitter_fini(&s);
        el = secs(t0);
    } while (el < budget);
    printf("{\"bench\":\"enp_%s\",\"frame_bytes\":%zu,\"read_bytes\":%zu,\"frames\":%llu,"
           "\"seconds\":%.3f,\"frames_per_s\":%.0f,\"MB_per_s\":%.1f}\n",
           name, flen, read_len, (unsigned long long)frames, el, frames / el,
           (double)frames * flen / el / 1e6);
    free(stream);
}

static void bench_build(double budget)
{
    uint8_t payload[69];
    gni_enp_frame f = send64(payload, 1004);
    size_t flen = gni_enp_frame_len(&f);
    size_t nframes = STREAM_LEN / flen;
    uint8_t *out = malloc(nframes * flen);
    if (!out)
        die("malloc", GN_ENOMEM);
    uint64_t frames = 0;
    gn_time t0 = gn_now();
    double el = 0;
    do {
        uint8_t *p = out;
        for (size_t i = 0; i < nframes; i++) {
            f.to = 1001 + i % 64;
            f.order = gni_enp_default_order(&f, true);
            long n = gni_enp_build(&f, p, flen);
            if (n < 0)
                die("build", n);
            p += n;
        }
        frames += nframes;
        sink += out[flen * (nframes - 1) + 30];
        el = secs(t0);
    } while (el < budget);
    printf("{\"bench\":\"enp_build\",\"frame_bytes\":%zu,\"frames\":%llu,\"seconds\":%.3f,"
           "\"frames_per_s\":%.0f,\"MB_per_s\":%.1f}\n",
           flen, (unsigned long long)frames, el, frames / el, (double)frames * flen / el / 1e6);
    free(out);
}

static size_t make_frame(uint8_t *buf, size_t cap, const uint8_t *payload, size_t plen)
{
    gni_enp_frame f;
    memset(&f, 0, sizeof f);
    f.type = GNI_ENP_MSG_PID;
    f.from = f.to = 1004;
    f.order = 239;
    f.payload = gn_slice_of(payload, plen);
    long n = gni_enp_build(&f, buf, cap);
    if (n < 0)
        die("build", n);
    return (size_t)n;
}

static void bench_z(double budget, const char *input, const uint8_t *frame, size_t flen)
{
    static const struct {
        uint8_t m;
        const char *name;
    } methods[] = {{GNI_ENP_Z_LZW, "lzw"}, {GNI_ENP_Z_ZLIB, "zlib"}, {GNI_ENP_Z_GZIP, "gzip"}};
    size_t cap = gni_enp_compress_bound(flen);
    uint8_t *z = malloc(cap), *back = malloc(flen);
    if (!z || !back)
        die("malloc", GN_ENOMEM);
    for (size_t m = 0; m < sizeof methods / sizeof methods[0]; m++) {
        long zl = 0;
        uint64_t runs = 0;
        gn_time t0 = gn_now();
        double el = 0;
        do {
            zl = gni_enp_compress(frame, flen, methods[m].m, GNI_ENP_ZLEVEL_DEFAULT, z, cap);
            if (zl < 0)
                die("compress", zl);
            runs++;
            el = secs(t0);
        } while (el < budget);
        double cmbs = (double)runs * flen / el / 1e6;
        gni_enp_frame zf;
        int pr = gni_enp_parse(z, (size_t)zl, &zf, NULL);
        if (pr != 0)
            die("parse", pr);
        uint64_t druns = 0;
        t0 = gn_now();
        do {
            long r = gni_enp_inflate(&zf, back, flen, NULL);
            if (r != (long)flen)
                die("inflate", r);
            druns++;
            el = secs(t0);
        } while (el < budget);
        if (memcmp(back, frame, flen) != 0)
            die("round trip", GN_EINTERNAL);
        printf("{\"bench\":\"enp_compress\",\"method\":\"%s\",\"input\":\"%s\",\"frame_bytes\":%zu,"
               "\"compressed_bytes\":%ld,\"compress_MB_per_s\":%.1f,\"decompress_MB_per_s\":%.1f}\n",
               methods[m].name, input, flen, zl, cmbs, (double)druns * flen / el / 1e6);
    }
    free(z);
    free(back);
}

int main(int argc, char **argv)
{
    double budget = argc > 1 ? atof(argv[1]) : 1.0;
    if (budget <= 0) {
        fprintf(stderr, "usage: %s [seconds per figure]\n", argv[0]);
        return 2;
    }
    bench_split_parse(budget, 64u << 10, "split_parse");
    bench_split_parse(budget, 100, "split_parse_small_reads");
    bench_build(budget);

    /* the captured compression vector's frame: "golem-compression-test " x 100 */
    uint8_t payload[3 + 2300];
    payload[0] = 0x8d;
    payload[1] = 0x08;
    payload[2] = 0xfc;
    for (size_t i = 0; i < 2300; i++)
        payload[3 + i] = (uint8_t)"golem-compression-test "[i % 23];
    uint8_t frame[2400];
    size_t flen = make_frame(frame, sizeof frame, payload, sizeof payload);
    bench_z(budget, "vector_2336", frame, flen);

    /* 64 KiB of pseudo-random words from a 64-word vocabulary */
    size_t plen = 64u << 10;
    uint8_t *words = malloc(plen), *big = malloc(plen + 64);
    if (!words || !big)
        die("malloc", GN_ENOMEM);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < plen;) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        size_t wl = 2 + (x >> 8) % 9;
        for (size_t k = 0; k < wl && i < plen; k++)
            words[i++] = (uint8_t)('a' + ((x >> 16) + k * ((x >> 24) % 64 + 1)) % 26);
        if (i < plen)
            words[i++] = ' ';
    }
    flen = make_frame(big, plen + 64, words, plen);
    bench_z(budget, "words_64k", big, flen);
    free(words);
    free(big);
    return sink == 42 ? 1 : 0;
}
