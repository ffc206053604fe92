/*
 * Fuzzes the pubsub wire core (protocols/pubsub/pubsub_wire.c): the frame
 * splitter and the RPC decoder. Byte 0 picks a split size (low nibble) and
 * tight or default bounds (bit 4); the rest is the stream. Checks: the
 * outcome is the same whether the stream is fed whole or in pieces; every
 * decoded RPC stays within the bounds, re-encodes, and decodes again to the
 * same frame bytes; every decoded message's signing bytes, default ID and
 * both signature policies run without fault.
 */
#include "pubsub_wire.h"

#include "golemnet/err.h"

#include <stdlib.h>
#include <string.h>

#define MAXRPC 32

typedef struct run {
    uint32_t sums[MAXRPC];
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

static void check_bounds(const gni_ps_rpc *r, const gni_ps_limits *l)
{
    size_t ctl = r->ihave_cnt + r->iwant_cnt + r->graft_cnt + r->prune_cnt, ids = 0;
    if (r->sub_cnt > l->max_subs || r->msg_cnt > l->max_msgs || ctl > l->max_control)
        abort();
    for (size_t i = 0; i < r->ihave_cnt; i++) {
        if (r->ihave[i].id_cnt > l->max_ids)
            abort();
        ids += r->ihave[i].id_cnt;
    }
    for (size_t i = 0; i < r->iwant_cnt; i++) {
        if (r->iwant[i].id_cnt > l->max_ids)
            abort();
        ids += r->iwant[i].id_cnt;
    }
    if (ids > l->max_ids_total)
        abort();
    for (size_t i = 0; i < r->prune_cnt; i++)
        if (r->prune[i].peer_cnt > l->max_px)
            abort();
    for (size_t i = 0; i < r->msg_cnt; i++) {
        const gni_ps_msg *m = &r->msgs[i];
        if (!m->topic || strlen(m->topic) > l->max_topic_len || m->from.len > GN_PEER_ID_MAX_BYTES)
            abort();
        uint8_t id[GNI_PS_MSG_ID_MAX];
        long n = gni_ps_msg_id(NULL, NULL, m, id, sizeof id);
        if (n < 0 && n != GN_EINVAL)
            abort();
        if (gni_ps_msg_signing_bytes(m, NULL, 0) <= 0)
            abort();
        (void)gni_ps_msg_verify(m, GNI_PS_STRICT_SIGN, NULL);
        int v = gni_ps_msg_verify(m, GNI_PS_STRICT_NO_SIGN, NULL);
        if ((v == 0) != !(m->has_from || m->has_seqno || m->has_signature || m->has_key))
            abort();
    }
}

/* Re-encodes @r, decodes the body again and re-encodes that: both frames
 * must be identical. Returns the frame's checksum. */
static uint32_t reencode(const gni_ps_rpc *r, const gni_ps_limits *l)
{
    check_bounds(r, l);
    long n = gni_ps_rpc_frame_len(r, l);
    if (n <= 0)
        abort(); /* a decoded RPC always encodes */
    uint8_t *a = malloc((size_t)n), *b = malloc((size_t)n);
    if (!a || !b)
        abort();
    if (gni_ps_rpc_encode(r, l, a, (size_t)n) != n)
        abort();
    size_t hl = 0;
    while (hl < (size_t)n && (a[hl] & 0x80))
        hl++;
    hl++;
    gni_ps_rpc again;
    gni_ps_rpc_init(&again);
    if (gni_ps_rpc_decode(a + hl, (size_t)n - hl, l, &again, NULL) < 0)
        abort();
    if (gni_ps_rpc_encode(&again, l, b, (size_t)n) != n || memcmp(a, b, (size_t)n) != 0)
        abort();
    uint32_t s = checksum(a, (size_t)n);
    gni_ps_rpc_fini(&again);
    free(a);
    free(b);
    return s;
}

static void decode(const uint8_t *in, size_t len, size_t piece, const gni_ps_limits *lim,
                   run *out)
{
    gni_ps_limits l = gni_ps_limits_resolve(lim);
    gni_ps_splitter s;
    if (gni_ps_splitter_init(&s, l.max_rpc_len) < 0)
        abort();
    gni_ps_rpc r;
    gni_ps_rpc_init(&r);
    out->cnt = 0;
    out->status = 0;
    size_t pos = 0;
    while (pos < len && out->status == 0) {
        size_t end = piece && len - pos > piece ? pos + piece : len;
        while (pos < end) {
            size_t used = 0, bl = 0;
            const uint8_t *body = NULL;
            int rc = gni_ps_splitter_feed(&s, in + pos, end - pos, &used, &body, &bl, NULL);
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
            if (bl > l.max_rpc_len)
                abort();
            rc = gni_ps_rpc_decode(body, bl, &l, &r, NULL);
            if (rc < 0) {
                out->status = rc;
                break;
            }
            uint32_t sum = reencode(&r, &l);
            if (out->cnt < MAXRPC)
                out->sums[out->cnt] = sum;
            out->cnt++;
        }
    }
    if (out->status == 0)
        out->status = gni_ps_splitter_eof(&s);
    gni_ps_rpc_fini(&r);
    gni_ps_splitter_fini(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t piece = (size_t)(data[0] & 0x0f) + 1;
    gni_ps_limits tight = {
        .max_rpc_len = 512, .max_subs = 3, .max_msgs = 2, .max_control = 3, .max_ids = 3,
        .max_ids_total = 4, .max_id_len = 8, .max_topic_len = 8, .max_px = 2,
    };
    gni_ps_limits lim = (data[0] & 0x10) ? tight : (gni_ps_limits){0};
    run a, b;
    decode(data + 1, size - 1, 0, &lim, &a);
    decode(data + 1, size - 1, piece, &lim, &b);
    if (a.status != b.status || a.cnt != b.cnt)
        abort();
    for (size_t i = 0; i < a.cnt && i < MAXRPC; i++)
        if (a.sums[i] != b.sums[i])
            abort();
    return 0;
}
