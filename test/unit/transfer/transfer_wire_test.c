/*
 * /golem/transfer/1.0.0 codec and stream cores (protocols/transfer/
 * xfer_wire.c, docs/protocols/transfer.md sections 4-6): round trips of
 * every message type, every bound violation of the decoder, a requester
 * and a provider back to back (whole transfers of empty, one-chunk and
 * odd-sized resources fed byte by byte and in bulk), the window, cancel,
 * not-have, a corrupt provider, an unknown CID, protocol violations,
 * allocation failure, backpressure, and a download killed half way that
 * resumes from its state file.
 */
#include "gn_failalloc.h"
#include "gn_test.h"
#include "xfer.h"

#include "golemnet/err.h"
#include "golemnet/multiformats.h"

typedef struct res {
    uint8_t *data;
    size_t len;
    uint8_t *leaves;
    gni_xfer_tree *t;
    gni_xfer_manifest m;
    uint8_t mb[GNI_XFER_MANIFEST_MAX];
    int mb_len;
    uint8_t cid[GNI_XFER_CID_LEN];
} res;

static void res_make(res *r, size_t n, uint32_t chunk)
{
    memset(r, 0, sizeof *r);
    r->data = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++)
        r->data[i] = (uint8_t)(i * 13 + (i >> 12));
    r->len = n;
    uint64_t lc = gni_xfer_leaf_count(n, chunk);
    r->leaves = malloc(lc ? lc * 32 : 1);
    for (uint64_t i = 0; i < lc; i++)
        gni_xfer_leaf_hash(r->leaves + i * 32, r->data + i * chunk,
                           i + 1 < lc ? chunk : n - i * chunk);
    CHECK_EQ(gni_xfer_tree_new(r->leaves, lc, &r->t), 0);
    r->m = (gni_xfer_manifest){.total_size = n, .chunk_size = chunk, .leaf_count = lc};
    memcpy(r->m.root, gni_xfer_tree_root(r->t), 32);
    r->mb_len = gni_xfer_manifest_encode(&r->m, r->mb, sizeof r->mb);
    CHECK(r->mb_len > 0);
    gni_xfer_cid(r->mb, (size_t)r->mb_len, r->cid);
}

static void res_free(res *r)
{
    gni_xfer_tree_free(r->t);
    free(r->leaves);
    free(r->data);
}

/* ---- codec ---- */

static void roundtrip(const gni_xfer_msg *m)
{
    uint8_t buf[GNI_XFER_MSG_MAX + 16];
    int n = gni_xfer_msg_encode(m, buf, sizeof buf);
    CHECK(n > 0);
    uint64_t bl;
    int pl = gn_varint_decode(buf, (size_t)n, &bl);
    CHECK(pl > 0);
    CHECK_EQ(bl + (uint64_t)pl, n);
    gni_xfer_msg d;
    gni_xfer_range rs[GNI_XFER_MAX_RANGES];
    CHECK_EQ(gni_xfer_msg_decode(buf + pl, (size_t)bl, &d, rs), 0);
    CHECK_EQ(d.type, m->type);
    CHECK_EQ(d.code, m->code);
    CHECK_EQ(d.index, m->index);
    CHECK_EQ(d.range_cnt, m->range_cnt);
    for (size_t i = 0; i < d.range_cnt; i++) {
        CHECK_EQ(d.ranges[i].start, m->ranges[i].start);
        CHECK_EQ(d.ranges[i].count, m->ranges[i].count);
    }
    CHECK_EQ(d.bytes.len, m->bytes.len);
    if (d.bytes.len)
        CHECK_MEM(d.bytes.base, m->bytes.base, d.bytes.len);
    CHECK_EQ(d.proof_cnt, m->proof_cnt);
    if (d.proof_cnt)
        CHECK_MEM(d.proof, m->proof, d.proof_cnt * 32u);
    /* every short output buffer is GN_ENOSPC */
    for (int k = 0; k < n && k < 300; k++)
        CHECK_EQ(gni_xfer_msg_encode(m, buf, (size_t)k), GN_ENOSPC);
    /* every truncation of a body without trailing bytes fails (the others
     * end in bytes of any length: truncating those leaves a valid message) */
    if (m->type == GNI_XFER_T_HAVE || m->type == GNI_XFER_T_WANT || m->type == GNI_XFER_T_CANCEL ||
        m->type == GNI_XFER_T_SKIP)
        for (uint64_t k = 0; k < bl && k < 300; k++)
            CHECK(gni_xfer_msg_decode(buf + pl, (size_t)k, &d, rs) < 0);
}

GN_TEST(codec_roundtrip_every_type)
{
    static uint8_t big[GNI_XFER_CHUNK_MAX];
    uint8_t cid[38] = {1, 0x55, 0xa0, 0xe4, 0x02, 0x20, 9};
    uint8_t proof[GNI_XFER_DEPTH_MAX * 32];
    for (size_t i = 0; i < sizeof proof; i++)
        proof[i] = (uint8_t)i;
    gni_xfer_range g[GNI_XFER_MAX_RANGES];
    for (unsigned i = 0; i < GNI_XFER_MAX_RANGES; i++)
        g[i] = (gni_xfer_range){(uint64_t)i * 1000, i + 1};
    g[GNI_XFER_MAX_RANGES - 1] = (gni_xfer_range){(1ull << 36) - 5, 5}; /* the last index */
    gni_xfer_msg m[] = {
        {.type = GNI_XFER_T_GET_MANIFEST, .bytes = gn_slice_of(cid, 38)},
        {.type = GNI_XFER_T_MANIFEST, .bytes = gn_slice_of(big, GNI_XFER_MANIFEST_MAX)},
        {.type = GNI_XFER_T_HAVE, .code = 1},
        {.type = GNI_XFER_T_HAVE, .ranges = g, .range_cnt = GNI_XFER_MAX_RANGES},
        {.type = GNI_XFER_T_WANT, .ranges = g, .range_cnt = 1},
        {.type = GNI_XFER_T_CANCEL, .ranges = g, .range_cnt = 3},
        {.type = GNI_XFER_T_SKIP, .code = GNI_XFER_SKIP_NOT_HAVE, .ranges = g, .range_cnt = 2},
        {.type = GNI_XFER_T_SKIP, .code = GNI_XFER_SKIP_CANCELED, .ranges = g + 5, .range_cnt = 1},
        {.type = GNI_XFER_T_CHUNK, .index = 7, .proof = proof, .proof_cnt = 3,
         .bytes = gn_slice_of(big, 1)},
        {.type = GNI_XFER_T_CHUNK, .index = (1ull << 36) - 1, .proof = proof,
         .proof_cnt = GNI_XFER_DEPTH_MAX, .bytes = gn_slice_of(big, GNI_XFER_CHUNK_MAX)},
        {.type = GNI_XFER_T_ERROR, .code = GNI_XFER_ERR_NOT_FOUND,
         .bytes = gn_slice_of("no such resource", 16)},
        {.type = GNI_XFER_T_ERROR, .code = 77},
    };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        roundtrip(&m[i]);
}

/* decodes a body given as bytes */
static int dec(const uint8_t *b, size_t n)
{
    gni_xfer_msg d;
    gni_xfer_range rs[GNI_XFER_MAX_RANGES];
    return gni_xfer_msg_decode(b, n, &d, rs);
}

GN_TEST(codec_bounds)
{
    static uint8_t b[GNI_XFER_MSG_MAX + 16];
    gni_xfer_range g[GNI_XFER_MAX_RANGES + 1];
    for (unsigned i = 0; i <= GNI_XFER_MAX_RANGES; i++)
        g[i] = (gni_xfer_range){i * 2ull, 1};
    uint8_t out[4096];
    /* 65 ranges: the encoder refuses, a hand-made body is GN_ETOOBIG */
    gni_xfer_msg m = {.type = GNI_XFER_T_WANT, .ranges = g, .range_cnt = GNI_XFER_MAX_RANGES + 1};
    CHECK_EQ(gni_xfer_msg_encode(&m, out, sizeof out), GN_EINVAL);
    b[0] = GNI_XFER_T_WANT;
    b[1] = GNI_XFER_MAX_RANGES + 1;
    for (unsigned i = 0; i <= GNI_XFER_MAX_RANGES; i++)
        b[2 + 2 * i] = (uint8_t)(2 * i), b[3 + 2 * i] = 1;
    CHECK_EQ(dec(b, 2 + 2 * (GNI_XFER_MAX_RANGES + 1)), GN_ETOOBIG);
    b[1] = GNI_XFER_MAX_RANGES;
    CHECK_EQ(dec(b, 2 + 2 * GNI_XFER_MAX_RANGES), 0);
    /* zero ranges, a zero count, overlapping, out of order, beyond 2^36, trailing */
    static const uint8_t bad[][8] = {
        {GNI_XFER_T_WANT, 0},
        {GNI_XFER_T_WANT, 1, 0, 0},
        {GNI_XFER_T_WANT, 2, 0, 3, 2, 1},
        {GNI_XFER_T_CANCEL, 2, 5, 1, 4, 1},
        {GNI_XFER_T_WANT, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01},
        {GNI_XFER_T_WANT, 1, 0, 1, 0},
        {GNI_XFER_T_WANT, 1, 0x80, 0x00, 1}, /* non-minimal varint */
        {GNI_XFER_T_HAVE, 2, 0},             /* bad flags */
        {GNI_XFER_T_HAVE, 1, 1, 0, 1},       /* all + ranges */
        {GNI_XFER_T_HAVE, 0, 0},             /* nothing */
        {GNI_XFER_T_SKIP, 3, 1, 0, 1},       /* bad reason */
        {GNI_XFER_T_ERROR, 0},               /* code 0 */
        {GNI_XFER_T_CHUNK, 0, 0},            /* no data */
        {GNI_XFER_T_CHUNK, 0, 2, 1},         /* proof truncated */
        {9},
        {0},
    };
    static const size_t bad_len[] = {2, 4, 6, 6, 8, 5, 5, 3, 5, 3, 5, 2, 3, 4, 1, 1};
    for (size_t i = 0; i < sizeof bad_len / sizeof bad_len[0]; i++) {
        int rc = dec(bad[i], bad_len[i]);
        if (rc != GN_EBADFRAME)
            printf("# case %zu: %d\n", i, rc);
        CHECK_EQ(rc, GN_EBADFRAME);
    }
    CHECK_EQ(dec(b, 0), GN_EBADFRAME);
    /* proof count above 36, chunk above 1 MiB, text above 256, CID above 64, manifest above 512 */
    memset(b, 0, sizeof b);
    b[0] = GNI_XFER_T_CHUNK, b[1] = 0, b[2] = GNI_XFER_DEPTH_MAX + 1;
    CHECK_EQ(dec(b, 3 + 37 * 32 + 1), GN_ETOOBIG);
    b[2] = 0;
    CHECK_EQ(dec(b, 3 + GNI_XFER_CHUNK_MAX), 0);
    CHECK_EQ(dec(b, 3 + GNI_XFER_CHUNK_MAX + 1), GN_ETOOBIG);
    CHECK_EQ(dec(b, GNI_XFER_MSG_MAX + 1), GN_EFRAMESIZE);
    b[0] = GNI_XFER_T_ERROR, b[1] = 1;
    CHECK_EQ(dec(b, 2 + GNI_XFER_ERRTEXT_MAX), 0);
    CHECK_EQ(dec(b, 2 + GNI_XFER_ERRTEXT_MAX + 1), GN_ETOOBIG);
    b[0] = GNI_XFER_T_GET_MANIFEST;
    CHECK_EQ(dec(b, 1 + GNI_XFER_CID_STR_MAX), 0);
    CHECK_EQ(dec(b, 1 + GNI_XFER_CID_STR_MAX + 1), GN_ETOOBIG);
    CHECK_EQ(dec(b, 1), GN_EBADFRAME);
    b[0] = GNI_XFER_T_MANIFEST;
    CHECK_EQ(dec(b, 1 + GNI_XFER_MANIFEST_MAX), 0);
    CHECK_EQ(dec(b, 1 + GNI_XFER_MANIFEST_MAX + 1), GN_ETOOBIG);
}

/* ---- requester and provider back to back ---- */

typedef struct pair {
    gni_xfer_req *r;
    gni_xfer_prov *p;
    res *res;
    uint8_t *got;     /* reassembled */
    uint8_t *seen;    /* per chunk: delivered */
    unsigned skips, errors, haves, manifests;
    int req_rc, prov_rc;
    unsigned prov_err_code; /* code of the last ERROR the provider received */
    size_t step;      /* bytes per feed call (0: all at once) */
    int corrupt_at;   /* flip a data byte of this chunk (-1: none) */
    int unreadable;   /* the provider's read of this chunk fails (-1: none) */
    bool defer;       /* deferred verification: the test verifies */
    unsigned corrupt_seen;
} pair;

static int feed_req(pair *x, const uint8_t *b, size_t n)
{
    while (n) {
        size_t take = x->step && x->step < n ? x->step : n, used;
        gni_xfer_ev ev;
        int rc = gni_xfer_req_feed(x->r, b, take, &used, &ev);
        b += used;
        n -= used;
        if (rc < 0)
            return x->req_rc = rc;
        if (rc == 1) {
            switch (ev.type) {
            case GNI_XFER_EV_MANIFEST:
                x->manifests++;
                CHECK_EQ(ev.manifest->total_size, x->res->len);
                break;
            case GNI_XFER_EV_HAVE:
                x->haves++;
                break;
            case GNI_XFER_EV_CHUNK:
                CHECK_EQ(ev.verified, !x->defer);
                if (x->defer && gni_xfer_chunk_verify(&x->res->m, ev.index, ev.data.base,
                                                      ev.data.len, ev.proof, ev.proof_cnt) != 0) {
                    x->corrupt_seen++;
                    CHECK_EQ(gni_xfer_req_abort(x->r, GNI_XFER_ERR_CORRUPT, "bad chunk"), 0);
                    return x->req_rc = GN_EDECRYPT;
                }
                CHECK(!x->seen[ev.index]);
                x->seen[ev.index] = 1;
                memcpy(x->got + ev.index * x->res->m.chunk_size, ev.data.base, ev.data.len);
                break;
            case GNI_XFER_EV_SKIP:
                x->skips++;
                break;
            case GNI_XFER_EV_ERROR:
                x->errors++;
                break;
            }
        }
    }
    return 0;
}

/* moves bytes both ways until nothing moves */
static void pump(pair *x)
{
    static uint8_t buf[GNI_XFER_CHUNK_MAX + GNI_XFER_CHUNK_HDR_MAX];
    for (int moved = 1, rounds = 0; moved && rounds < 100000; rounds++) {
        moved = 0;
        gn_buf o;
        gn_buf_init(&o, buf, 4096);
        if (gni_xfer_req_drain(x->r, &o) > 0) {
            moved = 1;
            const uint8_t *b = o.pos;
            size_t n = gn_buf_len(&o);
            while (n && x->prov_rc >= 0) {
                size_t used;
                gni_xfer_ev ev;
                int rc = gni_xfer_prov_feed(x->p, b, x->step && x->step < n ? x->step : n, &used,
                                            &ev);
                b += used, n -= used;
                if (rc < 0)
                    x->prov_rc = rc;
                if (rc == 1 && ev.type == GNI_XFER_EV_ERROR) {
                    x->errors++;
                    x->prov_err_code = ev.code;
                }
            }
        }
        gn_buf_init(&o, buf, 4096);
        if (gni_xfer_prov_drain(x->p, &o) > 0) {
            moved = 1;
            feed_req(x, o.pos, gn_buf_len(&o));
        }
        uint64_t idx;
        if (gni_xfer_prov_next(x->p, &idx) == 1) {
            moved = 1;
            if ((int)idx == x->unreadable) {
                CHECK_EQ(gni_xfer_prov_skip_head(x->p, GNI_XFER_SKIP_NOT_HAVE), 0);
                continue;
            }
            int hl = gni_xfer_prov_chunk_header(x->p, idx, buf, sizeof buf);
            CHECK(hl > 0);
            size_t dl = gni_xfer_chunk_len(&x->res->m, idx);
            memcpy(buf + hl, x->res->data + idx * x->res->m.chunk_size, dl);
            if ((int)idx == x->corrupt_at)
                buf[hl + dl - 1] ^= 0x80;
            feed_req(x, buf, (size_t)hl + dl);
        }
    }
}

static void pair_init(pair *x, res *r, const uint8_t *have, size_t step)
{
    memset(x, 0, sizeof *x);
    x->res = r;
    x->step = step;
    x->corrupt_at = -1;
    x->unreadable = -1;
    x->got = calloc(1, r->len + 1);
    x->seen = calloc(1, r->m.leaf_count + 1);
    CHECK_EQ(gni_xfer_req_new(r->cid, &x->r), 0);
    CHECK_EQ(gni_xfer_prov_new(r->mb, (size_t)r->mb_len, r->t, have, &x->p), 0);
}

static void pair_fini(pair *x)
{
    gni_xfer_req_free(x->r);
    gni_xfer_prov_free(x->p);
    free(x->got);
    free(x->seen);
}

/* requests every chunk, window by window */
static void fetch_all(pair *x)
{
    uint64_t next = 0, n = x->res->m.leaf_count;
    for (int guard = 0; guard < 10000; guard++) {
        pump(x);
        if (x->req_rc < 0 || x->prov_rc < 0)
            return;
        unsigned c = gni_xfer_req_credit(x->r);
        if (next == n && gni_xfer_req_outstanding(x->r) == 0)
            return;
        if (c && next < n) {
            uint64_t k = n - next < c ? n - next : c;
            CHECK_EQ(gni_xfer_req_want(x->r, next, k), 0);
            next += k;
        }
    }
    CHECK(0);
}

static void transfer_case(size_t size, uint32_t chunk, size_t step)
{
    res r;
    pair x;
    res_make(&r, size, chunk);
    pair_init(&x, &r, NULL, step);
    fetch_all(&x);
    CHECK_EQ(x.req_rc, 0);
    CHECK_EQ(x.prov_rc, 0);
    CHECK_EQ(x.manifests, 1);
    CHECK_EQ(x.haves, 1);
    CHECK_EQ(x.skips, 0);
    for (uint64_t i = 0; i < r.m.leaf_count; i++)
        CHECK(x.seen[i]);
    if (size)
        CHECK_MEM(x.got, r.data, size);
    pair_fini(&x);
    res_free(&r);
}

GN_TEST(transfer_empty)
{
    transfer_case(0, 16384, 0);
}

GN_TEST(transfer_one_chunk)
{
    transfer_case(1000, 16384, 0);
    transfer_case(16384, 16384, 1); /* byte by byte */
}

GN_TEST(transfer_odd_sized)
{
    transfer_case(100 * 16384 + 77, 16384, 0); /* 101 chunks: more than 3 windows */
    transfer_case(9 * 16384 + 1, 16384, 7);
    transfer_case(3 * 1024 * 1024 + 5, 1024 * 1024, 0); /* largest chunks */
}

GN_TEST(window_enforced)
{
    res r;
    pair x;
    res_make(&r, 40 * 16384, 16384);
    pair_init(&x, &r, NULL, 0);
    CHECK_EQ(gni_xfer_req_want(x.r, 0, 1), GN_ESTATE); /* before the manifest */
    pump(&x);
    CHECK_EQ(gni_xfer_req_credit(x.r), GNI_XFER_WINDOW);
    CHECK_EQ(gni_xfer_req_want(x.r, 0, GNI_XFER_WINDOW + 1), GN_EAGAIN);
    CHECK_EQ(gni_xfer_req_want(x.r, 39, 2), GN_ERANGE);
    CHECK_EQ(gni_xfer_req_want(x.r, 0, GNI_XFER_WINDOW), 0);
    CHECK_EQ(gni_xfer_req_want(x.r, 0, 1), GN_EAGAIN);
    CHECK_EQ(gni_xfer_req_credit(x.r), 0);
    pair_fini(&x);
    /* a requester that ignores the window: hand-made WANT of 33 chunks */
    pair_init(&x, &r, NULL, 0);
    pump(&x);
    uint8_t w[64];
    gni_xfer_range g = {0, GNI_XFER_WINDOW + 1};
    gni_xfer_msg m = {.type = GNI_XFER_T_WANT, .ranges = &g, .range_cnt = 1};
    int n = gni_xfer_msg_encode(&m, w, sizeof w);
    size_t used;
    gni_xfer_ev ev;
    CHECK_EQ(gni_xfer_prov_feed(x.p, w, (size_t)n, &used, &ev), GN_EWINDOW);
    /* the provider queued ERROR(LIMIT) */
    uint8_t o[4096];
    gn_buf ob;
    gn_buf_init(&ob, o, sizeof o);
    CHECK(gni_xfer_prov_drain(x.p, &ob) > 0);
    CHECK_EQ(feed_req(&x, ob.pos, gn_buf_len(&ob)), 0);
    CHECK_EQ(x.errors, 1);
    pair_fini(&x);
    /* a WANT beyond the last chunk */
    pair_init(&x, &r, NULL, 0);
    pump(&x);
    g = (gni_xfer_range){39, 2};
    n = gni_xfer_msg_encode(&m, w, sizeof w);
    CHECK_EQ(gni_xfer_prov_feed(x.p, w, (size_t)n, &used, &ev), GN_EPROTO);
    pair_fini(&x);
    res_free(&r);
}

GN_TEST(cancel_and_not_have)
{
    res r;
    pair x;
    res_make(&r, 10 * 16384, 16384);
    /* only complete copies serve (5.1): a have-set is refused */
    uint8_t have[2] = {0xff, 0x01};
    gni_xfer_prov *bad;
    CHECK_EQ(gni_xfer_prov_new(r.mb, (size_t)r.mb_len, r.t, have, &bad), GN_EINVAL);
    pair_init(&x, &r, NULL, 0);
    x.unreadable = 9; /* reading chunk 9 fails: SKIP(NOT_HAVE) */
    pump(&x);
    CHECK_EQ(x.haves, 1);
    CHECK_EQ(gni_xfer_req_want(x.r, 4, 6), 0);
    CHECK_EQ(gni_xfer_req_want(x.r, 6, 1), GN_EEXIST);
    CHECK_EQ(gni_xfer_req_cancel(x.r, 5), 0);
    CHECK_EQ(gni_xfer_req_cancel(x.r, 5), GN_ENOTFOUND);
    CHECK_EQ(gni_xfer_req_cancel(x.r, 0), GN_ENOTFOUND);
    CHECK_EQ(gni_xfer_req_outstanding(x.r), 6);
    pump(&x);
    /* 4, 6, 7, 8 delivered; 5 skipped (canceled); 9 skipped (not have) */
    CHECK(x.seen[4] && !x.seen[5] && x.seen[6] && x.seen[8] && !x.seen[9]);
    CHECK_EQ(x.skips, 2);
    CHECK_EQ(x.req_rc, 0);
    CHECK_EQ(x.prov_rc, 0);
    CHECK_EQ(gni_xfer_req_outstanding(x.r), 0);
    CHECK_EQ(gni_xfer_req_credit(x.r), GNI_XFER_WINDOW);
    CHECK_EQ(gni_xfer_prov_announce(x.p, 9, 1), GN_ENOTSUP);
    CHECK_EQ(gni_xfer_prov_skip_head(x.p, GNI_XFER_SKIP_NOT_HAVE), GN_ESTATE);
    /* the read works again */
    x.unreadable = -1;
    CHECK_EQ(gni_xfer_req_want(x.r, 9, 1), 0);
    pump(&x);
    CHECK(x.seen[9]);
    pair_fini(&x);
    res_free(&r);
}

/* @needle (@nl bytes) inside @hay (@n bytes): a pointer to it, or NULL */
static const void *has_bytes(const void *hay, size_t n, const char *needle, size_t nl)
{
    const uint8_t *h = hay;
    for (size_t i = 0; nl <= n && i <= n - nl; i++)
        if (memcmp(h + i, needle, nl) == 0)
            return h + i;
    return NULL;
}

/* finding: a CANCEL between prov_next and prov_chunk_header made the header fail */
GN_TEST(cancel_of_the_chunk_being_sent)
{
    res r;
    pair x;
    res_make(&r, 4 * 16384, 16384);
    pair_init(&x, &r, NULL, 0);
    pump(&x);
    CHECK_EQ(gni_xfer_req_want(x.r, 0, 2), 0);
    static uint8_t buf[GNI_XFER_CHUNK_MAX + GNI_XFER_CHUNK_HDR_MAX];
    gn_buf o;
    gn_buf_init(&o, buf, sizeof buf);
    size_t n = gni_xfer_req_drain(x.r, &o), used;
    gni_xfer_ev ev;
    CHECK_EQ(gni_xfer_prov_feed(x.p, buf, n, &used, &ev), 0);
    uint64_t idx;
    CHECK_EQ(gni_xfer_prov_next(x.p, &idx), 1);
    CHECK_EQ(idx, 0);
    /* the driver reads chunk 0 from disk; meanwhile CANCEL 0 and 1 arrive */
    CHECK_EQ(gni_xfer_req_cancel(x.r, 0), 0);
    CHECK_EQ(gni_xfer_req_cancel(x.r, 1), 0);
    gn_buf_init(&o, buf, sizeof buf);
    n = gni_xfer_req_drain(x.r, &o);
    CHECK_EQ(gni_xfer_prov_feed(x.p, buf, n, &used, &ev), 0);
    int hl = gni_xfer_prov_chunk_header(x.p, 0, buf, sizeof buf);
    CHECK(hl > 0);
    memcpy(buf + hl, r.data, 16384);
    CHECK_EQ(feed_req(&x, buf, (size_t)hl + 16384), 0);
    CHECK(x.seen[0]);
    pump(&x); /* SKIP(CANCELED) for 1 */
    CHECK_EQ(x.skips, 1);
    CHECK(!x.seen[1]);
    CHECK_EQ(gni_xfer_req_outstanding(x.r), 0);
    CHECK_EQ(x.req_rc, 0);
    pair_fini(&x);
    res_free(&r);
}

/* findings: SKIP(CANCELED) of a chunk never cancelled (a WANT/SKIP loop),
 * the provider's own frame bound, ERROR text rules */
GN_TEST(skip_canceled_frame_bound_error_text)
{
    res r;
    res_make(&r, 4 * 16384, 16384);
    uint8_t b[1024];
    size_t used;
    gni_xfer_ev ev;
    {
        pair x;
        pair_init(&x, &r, NULL, 0);
        pump(&x);
        CHECK_EQ(gni_xfer_req_want(x.r, 2, 1), 0);
        gni_xfer_range g = {2, 1};
        gni_xfer_msg m = {.type = GNI_XFER_T_SKIP, .code = GNI_XFER_SKIP_CANCELED, .ranges = &g,
                          .range_cnt = 1};
        int n = gni_xfer_msg_encode(&m, b, sizeof b);
        CHECK(n > 0);
        CHECK_EQ(gni_xfer_req_feed(x.r, b, (size_t)n, &used, &ev), GN_EPROTO);
        /* the ERROR it queued names the rule */
        gn_buf o;
        static uint8_t ob[4096];
        gn_buf_init(&o, ob, sizeof ob);
        size_t on = gni_xfer_req_drain(x.r, &o);
        CHECK(on > 0);
        CHECK(has_bytes(ob, on, "SKIP(CANCELED) of a chunk not cancelled", 39) != NULL);
        pair_fini(&x);
    }
    /* the provider reads at most GNI_XFER_REQ_MSG_MAX bytes per message */
    {
        gni_xfer_prov *p;
        CHECK_EQ(gni_xfer_prov_new(r.mb, (size_t)r.mb_len, r.t, NULL, &p), 0);
        int n = gn_varint_encode(GNI_XFER_REQ_MSG_MAX + 1, b, sizeof b);
        CHECK_EQ(gni_xfer_prov_feed(p, b, (size_t)n, &used, &ev), GN_EFRAMESIZE);
        gni_xfer_prov_free(p);
        CHECK_EQ(gni_xfer_prov_new(r.mb, (size_t)r.mb_len, r.t, NULL, &p), 0);
        /* the largest requester message fits: WANT with 64 far ranges */
        gni_xfer_range g[GNI_XFER_MAX_RANGES];
        for (unsigned i = 0; i < GNI_XFER_MAX_RANGES; i++)
            g[i] = (gni_xfer_range){(1ull << 35) + i * (1ull << 28), (1ull << 27)};
        gni_xfer_msg m = {.type = GNI_XFER_T_WANT, .ranges = g, .range_cnt = GNI_XFER_MAX_RANGES};
        n = gni_xfer_msg_encode(&m, b, sizeof b);
        CHECK(n > 0 && n < (int)GNI_XFER_REQ_MSG_MAX);
        gni_xfer_prov_free(p);
    }
    /* ERROR: invalid UTF-8 refused; long text cut on a character boundary */
    {
        uint8_t body[8] = {GNI_XFER_T_ERROR, 2, 'o', 0xc3, 'k'};
        gni_xfer_msg m;
        gni_xfer_range rs[GNI_XFER_MAX_RANGES];
        CHECK_EQ(gni_xfer_msg_decode(body, 5, &m, rs), GN_EBADFRAME);
        body[3] = 0xc3, body[4] = 0xa9;
        CHECK_EQ(gni_xfer_msg_decode(body, 5, &m, rs), 0);
        gni_xfer_req *q;
        CHECK_EQ(gni_xfer_req_new(r.cid, &q), 0);
        char text[400] = "";
        for (int i = 0; i < 100; i++)
            strcat(text, "\xe2\x82\xac"); /* euro sign, 3 bytes: 256 splits one */
        CHECK_EQ(gni_xfer_req_abort(q, GNI_XFER_ERR_INTERNAL, text), 0);
        gn_buf o;
        static uint8_t ob[4096];
        gn_buf_init(&o, ob, sizeof ob);
        size_t on = gni_xfer_req_drain(q, &o);
        /* GET_MANIFEST then ERROR: 2 + 1 + 1 + 255 bytes of whole characters */
        size_t gl = 1 + 1 + GNI_XFER_CID_LEN;
        CHECK_EQ(on, gl + 2 + 1 + 1 + 255);
        CHECK_EQ(gni_xfer_msg_decode(ob + gl + 2, on - gl - 2, &m, rs), 0);
        CHECK_EQ(m.bytes.len, 255);
        gni_xfer_req_free(q);
        /* codes above 2^32-1 are malformed */
        uint8_t big[8] = {GNI_XFER_T_ERROR, 0x80, 0x80, 0x80, 0x80, 0x10};
        CHECK_EQ(gni_xfer_msg_decode(big, 6, &m, rs), GN_EBADFRAME);
    }
    res_free(&r);
}

GN_TEST(stream_timeouts)
{
    res r;
    res_make(&r, 4 * 16384, 16384);
    pair x;
    pair_init(&x, &r, NULL, 0);
    CHECK_EQ(gni_xfer_req_next_deadline(x.r), GN_TIME_INFINITY); /* not started */
    gni_xfer_req_start(x.r, 1 * GN_S);
    gni_xfer_prov_start(x.p, 1 * GN_S);
    CHECK_EQ(gni_xfer_req_next_deadline(x.r), 1 * GN_S + GNI_XFER_MANIFEST_TIMEOUT);
    CHECK_EQ(gni_xfer_prov_next_deadline(x.p), 1 * GN_S + GNI_XFER_MANIFEST_TIMEOUT);
    CHECK_EQ(gni_xfer_req_on_expiry(x.r, 2 * GN_S), 0);
    pump(&x); /* GET_MANIFEST, MANIFEST, HAVE: untimed feeds keep the old times */
    CHECK_EQ(x.manifests, 1);
    CHECK_EQ(gni_xfer_req_next_deadline(x.r), GN_TIME_INFINITY); /* nothing outstanding */
    CHECK_EQ(gni_xfer_prov_next_deadline(x.p), 1 * GN_S + GNI_XFER_PROV_IDLE_TIMEOUT);
    CHECK_EQ(gni_xfer_req_want(x.r, 0, 2), 0);
    CHECK_EQ(gni_xfer_req_next_deadline(x.r), 1 * GN_S + GNI_XFER_IDLE_TIMEOUT);
    /* bytes at 5 s push it on */
    static uint8_t buf[4096];
    gn_buf o;
    gn_buf_init(&o, buf, sizeof buf);
    size_t n = gni_xfer_req_drain(x.r, &o), used;
    gni_xfer_ev ev;
    CHECK_EQ(gni_xfer_prov_feed_at(x.p, buf, n, &used, &ev, 5 * GN_S), 0);
    CHECK_EQ(gni_xfer_prov_next_deadline(x.p), GN_TIME_INFINITY); /* chunks wanted */
    uint8_t one[1] = {0x05}; /* the first byte of a frame: the stream is alive */
    CHECK_EQ(gni_xfer_req_feed_at(x.r, one, 1, &used, &ev, 5 * GN_S), 0);
    gn_time d = gni_xfer_req_next_deadline(x.r);
    CHECK_EQ(d, 5 * GN_S + GNI_XFER_IDLE_TIMEOUT);
    CHECK_EQ(gni_xfer_req_on_expiry(x.r, d - 1), 0);
    CHECK_EQ(gni_xfer_req_on_expiry(x.r, d), GN_ETIMEDOUT);
    gn_buf_init(&o, buf, sizeof buf);
    n = gni_xfer_req_drain(x.r, &o);
    CHECK(has_bytes(buf, n, "timeout", 7) != NULL);
    CHECK_EQ(gni_xfer_req_next_deadline(x.r), GN_TIME_INFINITY);
    pair_fini(&x);
    /* a provider that never gets GET_MANIFEST */
    gni_xfer_prov *p;
    CHECK_EQ(gni_xfer_prov_new(r.mb, (size_t)r.mb_len, r.t, NULL, &p), 0);
    gni_xfer_prov_start(p, 0);
    CHECK_EQ(gni_xfer_prov_on_expiry(p, GNI_XFER_MANIFEST_TIMEOUT), GN_ETIMEDOUT);
    gni_xfer_prov_free(p);
    res_free(&r);
}

GN_TEST(corrupt_provider)
{
    res r;
    pair x;
    res_make(&r, 6 * 16384 + 9, 16384);
    pair_init(&x, &r, NULL, 0);
    x.corrupt_at = 3;
    fetch_all(&x);
    CHECK_EQ(x.req_rc, GN_EDECRYPT);
    CHECK(!x.seen[3]);
    /* the requester sent ERROR(CORRUPT) and refuses more input */
    CHECK_EQ(x.errors, 1);
    CHECK_EQ(x.prov_err_code, GNI_XFER_ERR_CORRUPT);
    uint8_t o[4] = {0};
    size_t used;
    gni_xfer_ev ev;
    CHECK_EQ(gni_xfer_req_feed(x.r, o, 1, &used, &ev), GN_ESTATE);
    pair_fini(&x);
    res_free(&r);
}

/* deferred verification: the same transfer with the caller hashing, and a
 * corrupt chunk caught by the caller */
GN_TEST(deferred_verification)
{
    res r;
    pair x;
    res_make(&r, 20 * 16384 + 3, 16384);
    pair_init(&x, &r, NULL, 0);
    x.defer = true;
    gni_xfer_req_set_defer_verify(x.r, true);
    fetch_all(&x);
    CHECK_EQ(x.req_rc, 0);
    for (uint64_t i = 0; i < r.m.leaf_count; i++)
        CHECK(x.seen[i]);
    CHECK_MEM(x.got, r.data, r.len);
    pair_fini(&x);
    pair_init(&x, &r, NULL, 0);
    x.defer = true;
    x.corrupt_at = 7;
    gni_xfer_req_set_defer_verify(x.r, true);
    fetch_all(&x);
    CHECK_EQ(x.req_rc, GN_EDECRYPT);
    CHECK_EQ(x.corrupt_seen, 1);
    CHECK(!x.seen[7]);
    pump(&x); /* the ERROR(CORRUPT) the caller queued reaches the provider */
    CHECK_EQ(x.prov_err_code, GNI_XFER_ERR_CORRUPT);
    pair_fini(&x);
    res_free(&r);
}

GN_TEST(wrong_manifest_and_cid)
{
    res r, other;
    res_make(&r, 5 * 16384, 16384);
    res_make(&other, 5 * 16384 + 1, 16384);
    /* a requester for another CID: NOT_FOUND */
    pair x;
    pair_init(&x, &r, NULL, 0);
    gni_xfer_req_free(x.r);
    CHECK_EQ(gni_xfer_req_new(other.cid, &x.r), 0);
    pump(&x);
    CHECK_EQ(x.prov_rc, GN_ENOTFOUND);
    CHECK_EQ(x.errors, 1);
    CHECK_EQ(x.manifests, 0);
    pair_fini(&x);
    /* a provider that answers with a manifest not matching the CID */
    gni_xfer_req *q;
    CHECK_EQ(gni_xfer_req_new(r.cid, &q), 0);
    uint8_t b[1024];
    gni_xfer_msg m = {.type = GNI_XFER_T_MANIFEST, .bytes = gn_slice_of(other.mb, (size_t)other.mb_len)};
    int n = gni_xfer_msg_encode(&m, b, sizeof b);
    size_t used;
    gni_xfer_ev ev;
    CHECK_EQ(gni_xfer_req_feed(q, b, (size_t)n, &used, &ev), GN_EDECRYPT);
    gni_xfer_req_free(q);
    /* a provider whose tree is not the manifest's */
    gni_xfer_prov *p;
    CHECK_EQ(gni_xfer_prov_new(r.mb, (size_t)r.mb_len, other.t, NULL, &p), GN_EINVAL);
    res_free(&r);
    res_free(&other);
}

GN_TEST(protocol_violations)
{
    res r;
    res_make(&r, 5 * 16384, 16384);
    uint8_t b[4096], body[64];
    size_t used;
    gni_xfer_ev ev;
    int n;
    /* requester: a CHUNK never wanted, a second MANIFEST, WANT from the provider side,
     * HAVE before MANIFEST, a frame above the bound */
    {
        pair x;
        pair_init(&x, &r, NULL, 0);
        pump(&x);
        uint8_t hdr[GNI_XFER_CHUNK_HDR_MAX];
        uint8_t pf[GNI_XFER_DEPTH_MAX][32];
        int pc = gni_xfer_tree_proof(r.t, 2, pf);
        gni_xfer_msg m = {.type = GNI_XFER_T_CHUNK, .index = 2, .proof = &pf[0][0],
                          .proof_cnt = (unsigned)pc, .bytes = gn_slice_of(r.data + 2 * 16384, 16384)};
        static uint8_t cb[20000];
        n = gni_xfer_msg_encode(&m, cb, sizeof cb);
        CHECK(n > 0);
        CHECK_EQ(gni_xfer_req_feed(x.r, cb, (size_t)n, &used, &ev), GN_EPROTO);
        (void)hdr;
        pair_fini(&x);
    }
    static const struct {
        gni_xfer_msg m;
        int want;
    } cases[] = {
        {{.type = GNI_XFER_T_WANT}, GN_EPROTO},
        {{.type = GNI_XFER_T_HAVE, .code = 1}, GN_EPROTO},
        {{.type = GNI_XFER_T_GET_MANIFEST}, GN_EPROTO},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gni_xfer_req *q;
        CHECK_EQ(gni_xfer_req_new(r.cid, &q), 0);
        gni_xfer_msg m = cases[i].m;
        gni_xfer_range g = {0, 1};
        if (m.type == GNI_XFER_T_WANT)
            m.ranges = &g, m.range_cnt = 1;
        if (m.type == GNI_XFER_T_GET_MANIFEST)
            m.bytes = gn_slice_of(r.cid, 38);
        n = gni_xfer_msg_encode(&m, b, sizeof b);
        CHECK(n > 0);
        CHECK_EQ(gni_xfer_req_feed(q, b, (size_t)n, &used, &ev), cases[i].want);
        gni_xfer_req_free(q);
    }
    /* a length prefix above GNI_XFER_MSG_MAX: refused before any allocation */
    {
        gni_xfer_req *q;
        CHECK_EQ(gni_xfer_req_new(r.cid, &q), 0);
        n = gn_varint_encode(GNI_XFER_MSG_MAX + 1, body, sizeof body);
        CHECK_EQ(gni_xfer_req_feed(q, body, (size_t)n, &used, &ev), GN_EFRAMESIZE);
        gni_xfer_req_free(q);
    }
    /* provider: WANT before GET_MANIFEST, CHUNK from the requester, twice GET_MANIFEST,
     * a WANT of a chunk already wanted */
    {
        gni_xfer_prov *p;
        CHECK_EQ(gni_xfer_prov_new(r.mb, (size_t)r.mb_len, r.t, NULL, &p), 0);
        gni_xfer_range g = {0, 1};
        gni_xfer_msg m = {.type = GNI_XFER_T_WANT, .ranges = &g, .range_cnt = 1};
        n = gni_xfer_msg_encode(&m, b, sizeof b);
        CHECK_EQ(gni_xfer_prov_feed(p, b, (size_t)n, &used, &ev), GN_EPROTO);
        gni_xfer_prov_free(p);
        CHECK_EQ(gni_xfer_prov_new(r.mb, (size_t)r.mb_len, r.t, NULL, &p), 0);
        gni_xfer_msg gm = {.type = GNI_XFER_T_GET_MANIFEST, .bytes = gn_slice_of(r.cid, 38)};
        int k = gni_xfer_msg_encode(&gm, b, sizeof b);
        n = gni_xfer_msg_encode(&m, b + k, sizeof b - (size_t)k);
        int k2 = gni_xfer_msg_encode(&m, b + k + n, sizeof b - (size_t)(k + n));
        CHECK_EQ(gni_xfer_prov_feed(p, b, (size_t)(k + n + k2), &used, &ev), GN_EPROTO);
        gni_xfer_prov_free(p);
        CHECK_EQ(gni_xfer_prov_new(r.mb, (size_t)r.mb_len, r.t, NULL, &p), 0);
        memcpy(b + k, b, (size_t)k);
        CHECK_EQ(gni_xfer_prov_feed(p, b, (size_t)(2 * k), &used, &ev), GN_EPROTO);
        gni_xfer_prov_free(p);
    }
    res_free(&r);
}


/* ---- allocation failure: a whole transfer with the k-th allocation failing ---- */

#define FA_CH 16384u
#define FA_LEN (3u * FA_CH + 5u)
static uint8_t fa_data[FA_LEN];
static uint8_t fa_leaves[4 * 32];

/* moves @n bytes of @b into the requester; GN_ENOMEM or 0 */
static int fa_to_req(gni_xfer_req *r, gni_xfer_sched *s, int pid, const uint8_t *b, size_t n,
                     uint64_t *got)
{
    while (n) {
        size_t used;
        gni_xfer_ev ev;
        int rc = gni_xfer_req_feed(r, b, n, &used, &ev);
        b += used, n -= used;
        if (rc < 0)
            return rc;
        if (rc == 1 && ev.type == GNI_XFER_EV_HAVE && (rc = gni_xfer_sched_have(s, pid, 0, 4)) < 0)
            return rc;
        if (rc == 1 && ev.type == GNI_XFER_EV_CHUNK) {
            if (memcmp(ev.data.base, fa_data + ev.index * FA_CH, ev.data.len) != 0)
                return GN_EINTERNAL;
            if (gni_xfer_sched_done(s, pid, ev.index, ev.data.len, 1) == 1)
                (*got)++;
        }
    }
    return 0;
}

static int fa_scenario(void)
{
    gni_xfer_tree *t = NULL;
    gni_xfer_req *r = NULL;
    gni_xfer_prov *p = NULL;
    gni_xfer_sched *s = NULL;
    static uint8_t buf[FA_CH + GNI_XFER_CHUNK_HDR_MAX];
    uint8_t mb[GNI_XFER_MANIFEST_MAX], cid[GNI_XFER_CID_LEN];
    uint64_t got = 0;
    int rc = gni_xfer_tree_new(fa_leaves, 4, &t), pid = 0;
    if (rc < 0)
        goto out;
    gni_xfer_manifest m = {.total_size = FA_LEN, .chunk_size = FA_CH, .leaf_count = 4};
    memcpy(m.root, gni_xfer_tree_root(t), 32);
    int ml = gni_xfer_manifest_encode(&m, mb, sizeof mb);
    gni_xfer_cid(mb, (size_t)ml, cid);
    if ((rc = gni_xfer_req_new(cid, &r)) < 0 ||
        (rc = gni_xfer_prov_new(mb, (size_t)ml, t, NULL, &p)) < 0 ||
        (rc = gni_xfer_sched_new(&m, NULL, NULL, &s)) < 0 || (rc = pid = gni_xfer_sched_add(s)) < 0)
        goto out;
    for (int guard = 0; guard < 100 && !gni_xfer_sched_complete(s); guard++) {
        gn_buf o;
        gn_buf_init(&o, buf, sizeof buf);
        size_t n = gni_xfer_req_drain(r, &o);
        for (size_t pos = 0; pos < n;) {
            size_t used;
            gni_xfer_ev ev;
            rc = gni_xfer_prov_feed(p, buf + pos, n - pos, &used, &ev);
            pos += used;
            if (rc < 0)
                goto out;
        }
        gn_buf_init(&o, buf, sizeof buf);
        n = gni_xfer_prov_drain(p, &o);
        if ((rc = fa_to_req(r, s, pid, buf, n, &got)) < 0)
            goto out;
        uint64_t idx;
        while (gni_xfer_prov_next(p, &idx) == 1) {
            int hl = gni_xfer_prov_chunk_header(p, idx, buf, sizeof buf);
            size_t dl = gni_xfer_chunk_len(&m, idx);
            memcpy(buf + hl, fa_data + idx * FA_CH, dl);
            if ((rc = fa_to_req(r, s, pid, buf, (size_t)hl + dl, &got)) < 0)
                goto out;
        }
        int sp;
        while (gni_xfer_sched_next(s, 1, &sp, &idx) == 1)
            if ((rc = gni_xfer_req_want(r, idx, 1)) < 0)
                goto out;
    }
    rc = got == 4 ? 0 : GN_EINTERNAL;
out:
    gni_xfer_sched_free(s);
    gni_xfer_prov_free(p);
    gni_xfer_req_free(r);
    gni_xfer_tree_free(t);
    return rc;
}

GN_TEST(alloc_failure_every_k)
{
    for (size_t i = 0; i < FA_LEN; i++)
        fa_data[i] = (uint8_t)(i * 5 + (i >> 11));
    for (unsigned i = 0; i < 4; i++)
        gni_xfer_leaf_hash(fa_leaves + i * 32, fa_data + i * FA_CH, i < 3 ? FA_CH : 5);
    size_t failures = fa_every_k(fa_scenario, 400);
    CHECK(failures >= 8); /* tree, requester, provider, scheduler, reader growth */
}

/* a requester that floods CANCELs and never reads: the provider pushes back */
GN_TEST(provider_backpressure)
{
    res r;
    pair x;
    res_make(&r, 40 * 16384, 16384);
    pair_init(&x, &r, NULL, 0);
    pump(&x); /* manifest and HAVE */
    static uint8_t flood[200000];
    size_t fl = 0;
    for (int round = 0; round < 20000 && fl + 200 < sizeof flood; round++) {
        gni_xfer_range g = {(uint64_t)(round % 32), 1};
        gni_xfer_msg w = {.type = GNI_XFER_T_WANT, .ranges = &g, .range_cnt = 1};
        gni_xfer_msg c = {.type = GNI_XFER_T_CANCEL, .ranges = &g, .range_cnt = 1};
        fl += (size_t)gni_xfer_msg_encode(&w, flood + fl, sizeof flood - fl);
        fl += (size_t)gni_xfer_msg_encode(&c, flood + fl, sizeof flood - fl);
    }
    size_t pos = 0, used;
    gni_xfer_ev ev;
    int rc;
    while ((rc = gni_xfer_prov_feed(x.p, flood + pos, fl - pos, &used, &ev)) == 0 && used)
        pos += used;
    pos += used;
    CHECK_EQ(rc, GN_EAGAIN);
    CHECK(pos < fl);
    /* the driver drains (the answers are whole SKIP frames), then it goes on */
    uint8_t o[32768];
    gn_buf ob;
    unsigned eagain = 1;
    while (pos < fl) {
        gn_buf_init(&ob, o, sizeof o);
        CHECK(gni_xfer_prov_drain(x.p, &ob) > 0);
        rc = gni_xfer_prov_feed(x.p, flood + pos, fl - pos, &used, &ev);
        pos += used;
        CHECK(rc == 0 || rc == GN_EAGAIN);
        eagain += rc == GN_EAGAIN;
    }
    CHECK(eagain > 2);
    pair_fini(&x);
    res_free(&r);
}

/*
 * Resume at the core level: a download writes each verified chunk into an
 * in-memory FILE.part and sets its bit in an in-memory FILE.part.state
 * (header from gni_xfer_state_header, bit offsets from gni_xfer_state_bit),
 * is killed after 13 chunks (everything freed, nothing flushed but what
 * was written), then a new requester and scheduler start from the parsed
 * state and fetch only the missing chunks. The result is byte-exact.
 */
static uint64_t resume_run(res *r, uint8_t *part, uint8_t *state, size_t hl, const uint8_t *bitmap,
                           uint64_t stop_after)
{
    gni_xfer_sched *s;
    gni_xfer_req *q;
    gni_xfer_prov *p;
    static uint8_t buf[16384 + GNI_XFER_CHUNK_HDR_MAX];
    uint64_t fetched = 0;
    CHECK_EQ(gni_xfer_sched_new(&r->m, bitmap, NULL, &s), 0);
    CHECK_EQ(gni_xfer_req_new(r->cid, &q), 0);
    CHECK_EQ(gni_xfer_prov_new(r->mb, (size_t)r->mb_len, r->t, NULL, &p), 0);
    int pid = gni_xfer_sched_add(s);
    gn_time now = GN_S;
    for (int guard = 0; guard < 10000 && !gni_xfer_sched_complete(s) && fetched < stop_after;
         guard++) {
        now += GN_MS;
        gn_buf o;
        size_t used;
        gni_xfer_ev ev;
        gn_buf_init(&o, buf, sizeof buf);
        size_t n = gni_xfer_req_drain(q, &o);
        for (size_t pos = 0; pos < n; pos += used)
            CHECK(gni_xfer_prov_feed(p, buf + pos, n - pos, &used, &ev) >= 0);
        gn_buf_init(&o, buf, sizeof buf);
        n = gni_xfer_prov_drain(p, &o);
        uint64_t idx;
        int hl2 = 0;
        if (n == 0 && gni_xfer_prov_next(p, &idx) == 1) {
            hl2 = gni_xfer_prov_chunk_header(p, idx, buf, sizeof buf);
            size_t dl = gni_xfer_chunk_len(&r->m, idx);
            memcpy(buf + hl2, r->data + idx * 16384, dl);
            n = (size_t)hl2 + dl;
        }
        for (size_t pos = 0; pos < n; pos += used) {
            int rc = gni_xfer_req_feed(q, buf + pos, n - pos, &used, &ev);
            CHECK(rc >= 0);
            if (rc != 1)
                continue;
            if (ev.type == GNI_XFER_EV_HAVE)
                CHECK_EQ(gni_xfer_sched_have_all(s, pid), 0);
            if (ev.type == GNI_XFER_EV_CHUNK &&
                gni_xfer_sched_done(s, pid, ev.index, ev.data.len, now) == 1) {
                /* write the chunk, then its bit (transfer.md section 8) */
                memcpy(part + ev.index * 16384, ev.data.base, ev.data.len);
                uint8_t mask;
                uint64_t off = gni_xfer_state_bit(hl, ev.index, &mask);
                state[off] |= mask;
                fetched++;
            }
        }
        int sp;
        while (gni_xfer_sched_next(s, now, &sp, &idx) == 1)
            CHECK_EQ(gni_xfer_req_want(q, idx, 1), 0);
    }
    /* kill -9: nothing more is written */
    gni_xfer_prov_free(p);
    gni_xfer_req_free(q);
    gni_xfer_sched_free(s);
    return fetched;
}

GN_TEST(resume_from_state)
{
    res r;
    res_make(&r, 30 * 16384 + 1000, 16384); /* 31 chunks */
    uint8_t *part = calloc(1, r.len);
    uint8_t state[1024] = {0};
    int hl = gni_xfer_state_header(r.mb, (size_t)r.mb_len, state, sizeof state);
    CHECK(hl > 0);
    size_t slen = (size_t)hl + gni_xfer_bitmap_len(r.m.leaf_count);
    CHECK_EQ(resume_run(&r, part, state, (size_t)hl, NULL, 13), 13);
    /* restart: parse the state file against the CID being fetched */
    gni_xfer_manifest m;
    const uint8_t *bm;
    size_t hl2;
    CHECK_EQ(gni_xfer_state_parse(state, slen, r.cid, &m, &bm, &hl2), 0);
    CHECK_EQ(hl2, (size_t)hl);
    uint64_t set = 0;
    for (uint64_t i = 0; i < m.leaf_count; i++)
        set += gni_xfer_bit(bm, i);
    CHECK_EQ(set, 13);
    uint8_t bitmap[8];
    memcpy(bitmap, bm, gni_xfer_bitmap_len(m.leaf_count));
    CHECK_EQ(resume_run(&r, part, state, (size_t)hl, bitmap, UINT64_MAX), 31 - 13);
    CHECK_MEM(part, r.data, r.len);
    CHECK_EQ(gni_xfer_state_parse(state, slen, r.cid, &m, &bm, &hl2), 0);
    for (uint64_t i = 0; i < m.leaf_count; i++)
        CHECK(gni_xfer_bit(bm, i));
    free(part);
    res_free(&r);
}

GN_TEST_MAIN(GN_T(codec_roundtrip_every_type), GN_T(codec_bounds), GN_T(transfer_empty),
             GN_T(transfer_one_chunk), GN_T(transfer_odd_sized), GN_T(window_enforced),
             GN_T(cancel_and_not_have), GN_T(cancel_of_the_chunk_being_sent),
             GN_T(skip_canceled_frame_bound_error_text), GN_T(stream_timeouts), GN_T(corrupt_provider), GN_T(deferred_verification), GN_T(wrong_manifest_and_cid),
             GN_T(protocol_violations), GN_T(alloc_failure_every_k),
             GN_T(provider_backpressure), GN_T(resume_from_state))
