/*
 * Fuzzes the /golem/msg/1.0.0 decoder: byte 0 picks a split size and a
 * bound, the rest is the stream. The messages and the final status must be
 * the same whether the stream is fed whole or in pieces.
 */
#include "msg.h"

#include "golemnet/err.h"

#include <stdlib.h>

#define MAXMSG 64

typedef struct run {
    size_t lens[MAXMSG];
    uint32_t sums[MAXMSG];
    size_t cnt;
    int status;
} run;

static void decode(const uint8_t *in, size_t len, size_t piece, size_t max_len, run *out)
{
    gni_msg_decoder d;
    if (gni_msg_decoder_init(&d, max_len, true) < 0)
        abort();
    out->cnt = 0;
    out->status = 0;
    size_t pos = 0;
    while (pos < len && out->status == 0) {
        size_t end = piece && len - pos > piece ? pos + piece : len;
        while (pos < end) {
            size_t used = 0;
            gn_rcbuf *m = NULL;
            int rc = gni_msg_decode(&d, in + pos, end - pos, &used, &m);
            if (used > end - pos)
                abort();
            pos += used;
            if (rc < 0) {
                out->status = rc;
                if (m != NULL)
                    abort();
                break;
            }
            if (rc == 0) {
                if (pos != end)
                    abort(); /* 0 means everything was consumed */
                break;
            }
            gn_slice s = gn_rcbuf_slice(m);
            if (s.len > max_len)
                abort();
            if (out->cnt < MAXMSG) {
                uint32_t sum = 0;
                for (size_t i = 0; i < s.len; i++)
                    sum = sum * 31 + s.base[i];
                out->lens[out->cnt] = s.len;
                out->sums[out->cnt] = sum;
            }
            out->cnt++;
            gn_rcbuf_rele(m);
        }
    }
    if (out->status == 0)
        out->status = gni_msg_decode_eof(&d);
    gni_msg_decoder_fini(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t piece = (size_t)(data[0] & 0x0f) + 1;
    size_t max_len = (data[0] & 0x10) ? 16 : 4096;
    run a, b;
    decode(data + 1, size - 1, 0, max_len, &a);
    decode(data + 1, size - 1, piece, max_len, &b);
    if (a.status != b.status || a.cnt != b.cnt)
        abort();
    for (size_t i = 0; i < a.cnt && i < MAXMSG; i++)
        if (a.lens[i] != b.lens[i] || a.sums[i] != b.sums[i])
            abort();
    return 0;
}
