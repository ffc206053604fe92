/*
 * Fuzzes the /ipfs/kad/1.0.0 frame decoder (protocols/kad/kad_msg.c).
 * Byte 0 picks a split size (low nibble) and tight or default bounds
 * (bit 4); the rest is the stream. Checks: the outcome is the same whether
 * the stream is fed whole or in pieces; every decoded message stays within
 * the bounds, re-encodes, and decodes again to the same frame bytes.
 */
#include "kad_msg.h"

#include "golemnet/err.h"

#include <stdlib.h>
#include <string.h>

#define MAXMSG 32

typedef struct run {
    uint32_t sums[MAXMSG]; /* checksum of each message's re-encoded frame */
    size_t cnt;
    int status;
} run;

static uint32_t checksum(const uint8_t *p, size_t n)
{
    uint32_t s = 2166136261u;
    for (size_t i = 0; i < n; i++)
        s = (s ^ p[i]) * 16777619u;
    return s;
}

/* Re-encodes @m, decodes the body again, and re-encodes that: both frames
 * must be identical. Returns the frame's checksum. */
static uint32_t reencode(const gni_kad_msg *m, const gni_kad_limits *lim)
{
    if (m->closer_cnt > lim->max_closer || m->provider_cnt > lim->max_providers ||
        (unsigned)m->type > GNI_KAD_PING || m->key.len > lim->max_key_len)
        abort();
    long n = gni_kad_msg_frame_len(m, lim);
    if (n <= 0)
        abort(); /* a decoded message always encodes */
    uint8_t *a = malloc((size_t)n), *b = malloc((size_t)n);
    if (!a || !b)
        abort();
    if (gni_kad_msg_encode(m, lim, a, (size_t)n) != n)
        abort();
    size_t hl = 0;
    while (hl < (size_t)n && (a[hl] & 0x80))
        hl++;
    hl++;
    gni_kad_msg again;
    gni_kad_msg_init(&again);
    if (gni_kad_msg_decode(a + hl, (size_t)n - hl, lim, &again, NULL) < 0)
        abort();
    if (gni_kad_msg_encode(&again, lim, b, (size_t)n) != n || memcmp(a, b, (size_t)n) != 0)
        abort();
    uint32_t s = checksum(a, (size_t)n);
    gni_kad_msg_fini(&again);
    free(a);
    free(b);
    return s;
}

static void decode(const uint8_t *in, size_t len, size_t piece, const gni_kad_limits *lim,
                   run *out)
{
    gni_kad_decoder d;
    if (gni_kad_decoder_init(&d, lim) < 0)
        abort();
    gni_kad_msg m;
    gni_kad_msg_init(&m);
    out->cnt = 0;
    out->status = 0;
    size_t pos = 0;
    while (pos < len && out->status == 0) {
        size_t end = piece && len - pos > piece ? pos + piece : len;
        while (pos < end) {
            size_t used = 0;
            int rc = gni_kad_decode(&d, in + pos, end - pos, &used, &m, NULL);
            if (used > end - pos)
                abort();
            pos += used;
            if (rc < 0) {
                out->status = rc;
                break;
            }
            if (rc == 0) {
                if (pos != end)
                    abort(); /* 0 means everything was consumed */
                break;
            }
            uint32_t s = reencode(&m, &d.lim);
            if (out->cnt < MAXMSG)
                out->sums[out->cnt] = s;
            out->cnt++;
        }
    }
    if (out->status == 0)
        out->status = gni_kad_decode_eof(&d);
    gni_kad_msg_fini(&m);
    gni_kad_decoder_fini(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t piece = (size_t)(data[0] & 0x0f) + 1;
    gni_kad_limits tight = {
        .max_msg_len = 512, .max_closer = 3, .max_providers = 2, .max_addrs = 2,
        .max_key_len = 40,
    };
    gni_kad_limits lim = (data[0] & 0x10) ? tight : (gni_kad_limits){0};
    run a, b;
    decode(data + 1, size - 1, 0, &lim, &a);
    decode(data + 1, size - 1, piece, &lim, &b);
    if (a.status != b.status || a.cnt != b.cnt)
        abort();
    for (size_t i = 0; i < a.cnt && i < MAXMSG; i++)
        if (a.sums[i] != b.sums[i])
            abort();
    return 0;
}
