/*
 * Fuzzes the /golem/transfer/1.0.0 cores (protocols/transfer/xfer_wire.c).
 * Byte 0: the low nibble is the feed piece size (0: whole), bits 4-5 pick
 * the mode: 0 the codec (frames of the input decoded; each that decodes
 * must re-encode to the same bytes: the codec is canonical), 1 a requester
 * that has the manifest of a fixed 4-chunk resource and wants all four
 * chunks, 2 a provider of that resource after a valid GET_MANIFEST, 3 a
 * requester from its first byte; bit 6 makes a requester defer verification
 * to the harness (gni_xfer_req_set_defer_verify), and makes the provider
 * hold the chunk gni_xfer_prov_next() gave while it feeds the next piece
 * (a CANCEL may arrive while it is "being sent": its header must still be
 * written) and answer odd chunks with gni_xfer_prov_skip_head(NOT_HAVE),
 * as after a read error. Checks: the outcome is the same whole or
 * in pieces; a requester delivers only chunks that verify, and each once;
 * every frame a provider writes decodes; nothing grows beyond its bound.
 */
#include "xfer.h"

#include "golemnet/err.h"
#include "golemnet/multiformats.h"

#include <stdlib.h>
#include <string.h>

#define NCH 4u
#define CH 16384u
#define LEN (3u * CH + 5u)

typedef struct fres {
    uint8_t data[LEN];
    gni_xfer_tree *t;
    gni_xfer_manifest m;
    uint8_t mb[GNI_XFER_MANIFEST_MAX];
    size_t mb_len;
    uint8_t cid[GNI_XFER_CID_LEN];
} fres;

static fres *res_get(void)
{
    static fres r; /* the harness's fixture, built once */
    static int ready;
    if (ready)
        return &r;
    uint8_t leaves[NCH * 32];
    for (size_t i = 0; i < LEN; i++)
        r.data[i] = (uint8_t)(i * 13 + (i >> 12));
    for (unsigned i = 0; i < NCH; i++)
        gni_xfer_leaf_hash(leaves + i * 32, r.data + i * CH, i + 1 < NCH ? CH : LEN - i * CH);
    if (gni_xfer_tree_new(leaves, NCH, &r.t) != 0)
        abort();
    r.m = (gni_xfer_manifest){.total_size = LEN, .chunk_size = CH, .leaf_count = NCH};
    memcpy(r.m.root, gni_xfer_tree_root(r.t), 32);
    int n = gni_xfer_manifest_encode(&r.m, r.mb, sizeof r.mb);
    if (n <= 0)
        abort();
    r.mb_len = (size_t)n;
    gni_xfer_cid(r.mb, r.mb_len, r.cid);
    ready = 1;
    return &r;
}

typedef struct outcome {
    int status;
    unsigned events;
    uint32_t sum;
} outcome;

static void check_frames(const uint8_t *b, size_t n)
{
    while (n) {
        uint64_t bl;
        int pl = gn_varint_decode(b, n, &bl);
        gni_xfer_msg m;
        gni_xfer_range rs[GNI_XFER_MAX_RANGES];
        if (pl <= 0 || bl > n - (size_t)pl || gni_xfer_msg_decode(b + pl, (size_t)bl, &m, rs) != 0)
            abort();
        b += (size_t)pl + bl;
        n -= (size_t)pl + bl;
    }
}

static void run_codec(const uint8_t *in, size_t len, outcome *o)
{
    static uint8_t out[GNI_XFER_MSG_MAX + 16];
    while (len) {
        uint64_t bl;
        int pl = gn_varint_decode(in, len, &bl);
        if (pl <= 0 || bl > len - (size_t)pl)
            return;
        gni_xfer_msg m;
        gni_xfer_range rs[GNI_XFER_MAX_RANGES];
        if (gni_xfer_msg_decode(in + pl, (size_t)bl, &m, rs) == 0) {
            o->events++;
            int n = gni_xfer_msg_encode(&m, out, sizeof out);
            if (n != pl + (int)bl || memcmp(out, in, (size_t)n) != 0)
                abort();
        }
        in += (size_t)pl + bl;
        len -= (size_t)pl + bl;
    }
}

static void run_req(const uint8_t *in, size_t len, size_t piece, bool primed, bool defer,
                    outcome *o)
{
    fres *r = res_get();
    gni_xfer_req *q;
    uint8_t pre[1024];
    uint8_t seen[NCH] = {0};
    size_t used;
    gni_xfer_ev ev;
    if (gni_xfer_req_new(r->cid, &q) != 0)
        abort();
    if (defer)
        gni_xfer_req_set_defer_verify(q, true); /* the harness verifies */
    if (primed) {
        gni_xfer_msg mm = {.type = GNI_XFER_T_MANIFEST, .bytes = gn_slice_of(r->mb, r->mb_len)};
        gni_xfer_msg hv = {.type = GNI_XFER_T_HAVE, .code = 1};
        int a = gni_xfer_msg_encode(&mm, pre, sizeof pre);
        int b = gni_xfer_msg_encode(&hv, pre + a, sizeof pre - (size_t)a);
        size_t pos = 0;
        while (pos < (size_t)(a + b)) {
            if (gni_xfer_req_feed(q, pre + pos, (size_t)(a + b) - pos, &used, &ev) < 0)
                abort();
            pos += used;
        }
        if (gni_xfer_req_want(q, 0, NCH) != 0)
            abort();
    }
    size_t pos = 0;
    while (pos < len && o->status == 0) {
        size_t end = piece && len - pos > piece ? pos + piece : len;
        while (pos < end) {
            int rc = gni_xfer_req_feed(q, in + pos, end - pos, &used, &ev);
            if (used > end - pos)
                abort();
            pos += used;
            if (rc < 0) {
                o->status = rc;
                if (gni_xfer_req_feed(q, in, 1, &used, &ev) != GN_ESTATE)
                    abort();
                break;
            }
            if (gni_xfer_req_outstanding(q) > GNI_XFER_WINDOW)
                abort();
            if (rc == 0) {
                if (pos != end)
                    abort();
                break;
            }
            o->events++;
            o->sum = o->sum * 31 + (uint32_t)ev.type;
            if (ev.type == GNI_XFER_EV_CHUNK) {
                if (ev.index >= NCH || seen[ev.index] || ev.verified == defer)
                    abort();
                if (!ev.verified && gni_xfer_chunk_verify(&r->m, ev.index, ev.data.base,
                                                          ev.data.len, ev.proof,
                                                          ev.proof_cnt) != 0) {
                    gni_xfer_req_abort(q, GNI_XFER_ERR_CORRUPT, "bad chunk");
                    o->status = GN_EDECRYPT;
                    break;
                }
                seen[ev.index] = 1;
                if (ev.data.len != gni_xfer_chunk_len(&r->m, ev.index) ||
                    memcmp(ev.data.base, r->data + ev.index * CH, ev.data.len) != 0)
                    abort(); /* an unverified chunk got through */
            }
        }
    }
    uint8_t ob[4096];
    gn_buf b;
    gn_buf_init(&b, ob, sizeof ob);
    while (gni_xfer_req_drain(q, &b) > 0) {
        check_frames(b.pos, gn_buf_len(&b));
        gn_buf_init(&b, ob, sizeof ob);
    }
    gni_xfer_req_free(q);
}

/* sends (or skips) chunk @idx that gni_xfer_prov_next() gave */
static void prov_send(gni_xfer_prov *p, uint64_t idx, bool skip_odd, uint8_t *ob, size_t obl,
                      outcome *o)
{
    fres *r = res_get();
    if (idx >= NCH)
        abort();
    if (skip_odd && (idx & 1)) {
        int rc = gni_xfer_prov_skip_head(p, GNI_XFER_SKIP_NOT_HAVE);
        if (rc == GN_EAGAIN) {
            gn_buf b;
            gn_buf_init(&b, ob, obl);
            while (gni_xfer_prov_drain(p, &b) > 0) {
                check_frames(b.pos, gn_buf_len(&b));
                gn_buf_init(&b, ob, obl);
            }
            rc = gni_xfer_prov_skip_head(p, GNI_XFER_SKIP_NOT_HAVE);
        }
        if (rc != 0)
            abort();
        o->events++;
        return;
    }
    int hl = gni_xfer_prov_chunk_header(p, idx, ob, obl);
    if (hl <= 0)
        abort(); /* a CANCEL never takes the chunk being sent */
    size_t dl = gni_xfer_chunk_len(&r->m, idx);
    memcpy(ob + hl, r->data + idx * CH, dl);
    check_frames(ob, (size_t)hl + dl);
    o->events++;
}

static void run_prov(const uint8_t *in, size_t len, size_t piece, bool hold, outcome *o)
{
    fres *r = res_get();
    gni_xfer_prov *p;
    uint8_t pre[128];
    size_t used;
    gni_xfer_ev ev;
    static uint8_t ob[16384 + GNI_XFER_CHUNK_HDR_MAX];
    if (gni_xfer_prov_new(r->mb, r->mb_len, r->t, NULL, &p) != 0)
        abort();
    gni_xfer_msg gm = {.type = GNI_XFER_T_GET_MANIFEST, .bytes = gn_slice_of(r->cid, 38)};
    int a = gni_xfer_msg_encode(&gm, pre, sizeof pre);
    if (gni_xfer_prov_feed(p, pre, (size_t)a, &used, &ev) != 0 || used != (size_t)a)
        abort();
    size_t pos = 0;
    uint64_t held = 0;
    bool holding = false;
    while (pos < len && o->status == 0) {
        size_t end = piece && len - pos > piece ? pos + piece : len;
        while (pos < end) {
            int rc = gni_xfer_prov_feed(p, in + pos, end - pos, &used, &ev);
            pos += used;
            if (rc == GN_EAGAIN || (rc == 0 && pos == end)) {
                /* drain the answers and send what is wanted, as a driver does */
                gn_buf b;
                gn_buf_init(&b, ob, sizeof ob);
                while (gni_xfer_prov_drain(p, &b) > 0) {
                    check_frames(b.pos, gn_buf_len(&b));
                    gn_buf_init(&b, ob, sizeof ob);
                }
                uint64_t idx;
                if (holding) {
                    /* given before the last feed; CANCELs may have come */
                    uint64_t again;
                    if (gni_xfer_prov_next(p, &again) != 1 || again != held)
                        abort();
                    prov_send(p, held, hold, ob, sizeof ob, o);
                    holding = false;
                }
                while (gni_xfer_prov_next(p, &idx) == 1) {
                    if (hold && pos < len) {
                        held = idx;
                        holding = true;
                        break;
                    }
                    prov_send(p, idx, hold, ob, sizeof ob, o);
                }
                if (rc == 0)
                    break;
                continue;
            }
            if (rc < 0) {
                o->status = rc;
                break;
            }
            if (rc == 1)
                o->events++;
        }
    }
    gni_xfer_prov_free(p);
}

static void run(const uint8_t *in, size_t len, unsigned mode, bool defer, size_t piece,
                outcome *o)
{
    memset(o, 0, sizeof *o);
    switch (mode) {
    case 0:
        run_codec(in, len, o);
        break;
    case 1:
        run_req(in, len, piece, true, defer, o);
        break;
    case 2:
        run_prov(in, len, piece, defer, o);
        break;
    default:
        run_req(in, len, piece, false, defer, o);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned mode = (data[0] >> 4) & 3;
    bool defer = (data[0] >> 6) & 1;
    size_t piece = data[0] & 15;
    outcome whole, split;
    run(data + 1, size - 1, mode, defer, 0, &whole);
    if (piece) {
        run(data + 1, size - 1, mode, defer, piece, &split);
        if (mode != 2 && (whole.status != split.status || whole.events != split.events ||
                          whole.sum != split.sum))
            abort();
    }
    return 0;
}
