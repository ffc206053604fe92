/*
 * Resource transfer: the /golem/transfer/1.0.0 codec (docs/protocols/
 * transfer.md sections 4-5) and the per-stream requester and provider
 * state machines (section 6). Sans-I/O.
 */
#include "xfer.h"

#include "golemnet/err.h"
#include "golemnet/log.h"
#include "golemnet/multiformats.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Output queue of one stream's control messages; a full ERROR always fits
 * in the reserve. */
#define XFER_Q_LEN (16u * 1024u)
#define XFER_Q_RESERVE (2u * 1024u)
/* Largest leaf index + 1 a range may reach (2^36 leaves). */
#define XFER_IDX_END (1ull << GNI_XFER_DEPTH_MAX)

/* ---- codec ---- */

/* length of the longest prefix of @s (@n bytes) made of whole, valid
 * UTF-8 characters (RFC 3629: shortest form, no surrogates, <= U+10FFFF) */
static size_t utf8_valid_prefix(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t k;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0)
            k = 1, cp = c & 0x1fu, min = 0x80;
        else if ((c & 0xf0) == 0xe0)
            k = 2, cp = c & 0x0fu, min = 0x800;
        else if ((c & 0xf8) == 0xf0)
            k = 3, cp = c & 0x07u, min = 0x10000;
        else
            return i;
        if (n - i <= k)
            return i;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return i;
            cp = (cp << 6) | (s[i + j] & 0x3fu);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return i;
        i += k + 1;
    }
    return i;
}

typedef struct xfer_rd {
    const uint8_t *p;
    size_t n, pos;
} xfer_rd;

static int rd_varint(xfer_rd *r, uint64_t *v)
{
    int rc = gn_varint_decode(r->p + r->pos, r->n - r->pos, v);
    if (rc < 0)
        return GN_EBADFRAME;
    r->pos += (size_t)rc;
    return 0;
}

static int rd_byte(xfer_rd *r, uint8_t *b)
{
    if (r->pos >= r->n)
        return GN_EBADFRAME;
    *b = r->p[r->pos++];
    return 0;
}

static int rd_ranges(xfer_rd *r, gni_xfer_msg *m, gni_xfer_range *ranges, bool allow_empty)
{
    uint64_t cnt, end = 0;
    if (rd_varint(r, &cnt) < 0)
        return GN_EBADFRAME;
    if (cnt > GNI_XFER_MAX_RANGES)
        return GN_ETOOBIG;
    if (cnt == 0 && !allow_empty)
        return GN_EBADFRAME;
    for (uint64_t i = 0; i < cnt; i++) {
        gni_xfer_range g;
        if (rd_varint(r, &g.start) < 0 || rd_varint(r, &g.count) < 0)
            return GN_EBADFRAME;
        if (g.count == 0 || g.start >= XFER_IDX_END || g.count > XFER_IDX_END - g.start ||
            (i > 0 && g.start < end))
            return GN_EBADFRAME;
        end = g.start + g.count;
        ranges[i] = g;
    }
    m->ranges = ranges;
    m->range_cnt = (size_t)cnt;
    return 0;
}

int gni_xfer_msg_decode(const uint8_t *body, size_t len, gni_xfer_msg *m,
                        gni_xfer_range ranges[GNI_XFER_MAX_RANGES])
{
    if (!m || !ranges || (len && !body))
        return GN_EINVAL;
    memset(m, 0, sizeof *m);
    if (len > GNI_XFER_MSG_MAX)
        return GN_EFRAMESIZE;
    xfer_rd r = {body, len, 0};
    uint8_t t, b;
    uint64_t v;
    int rc;
    if (rd_byte(&r, &t) < 0)
        return GN_EBADFRAME;
    m->type = t;
    switch (t) {
    case GNI_XFER_T_GET_MANIFEST:
    case GNI_XFER_T_MANIFEST: {
        size_t rest = len - r.pos, max = t == GNI_XFER_T_GET_MANIFEST ? GNI_XFER_CID_STR_MAX
                                                                      : GNI_XFER_MANIFEST_MAX;
        if (rest == 0)
            return GN_EBADFRAME;
        if (rest > max)
            return GN_ETOOBIG;
        m->bytes = gn_slice_of(body + r.pos, rest);
        return 0;
    }
    case GNI_XFER_T_HAVE:
        if (rd_byte(&r, &b) < 0 || b > 1)
            return GN_EBADFRAME;
        m->code = b;
        if ((rc = rd_ranges(&r, m, ranges, true)) < 0)
            return rc;
        if ((b == 1) != (m->range_cnt == 0))
            return GN_EBADFRAME;
        break;
    case GNI_XFER_T_WANT:
    case GNI_XFER_T_CANCEL:
        if ((rc = rd_ranges(&r, m, ranges, false)) < 0)
            return rc;
        break;
    case GNI_XFER_T_SKIP:
        if (rd_byte(&r, &b) < 0 || (b != GNI_XFER_SKIP_NOT_HAVE && b != GNI_XFER_SKIP_CANCELED))
            return GN_EBADFRAME;
        m->code = b;
        if ((rc = rd_ranges(&r, m, ranges, false)) < 0)
            return rc;
        break;
    case GNI_XFER_T_CHUNK: {
        if (rd_varint(&r, &m->index) < 0 || rd_byte(&r, &b) < 0)
            return GN_EBADFRAME;
        if (m->index >= XFER_IDX_END)
            return GN_EBADFRAME;
        if (b > GNI_XFER_DEPTH_MAX)
            return GN_ETOOBIG;
        size_t pl = (size_t)b * GNI_XFER_HASH_LEN;
        if (len - r.pos < pl)
            return GN_EBADFRAME;
        m->proof = body + r.pos;
        m->proof_cnt = b;
        r.pos += pl;
        size_t rest = len - r.pos;
        if (rest == 0)
            return GN_EBADFRAME;
        if (rest > GNI_XFER_CHUNK_MAX)
            return GN_ETOOBIG;
        m->bytes = gn_slice_of(body + r.pos, rest);
        return 0;
    }
    case GNI_XFER_T_ERROR: {
        if (rd_varint(&r, &v) < 0)
            return GN_EBADFRAME;
        if (v == 0 || v > UINT32_MAX)
            return GN_EBADFRAME;
        m->code = (unsigned)v;
        size_t rest = len - r.pos;
        if (rest > GNI_XFER_ERRTEXT_MAX)
            return GN_ETOOBIG;
        if (utf8_valid_prefix(body + r.pos, rest) != rest)
            return GN_EBADFRAME;
        m->bytes = gn_slice_of(rest ? body + r.pos : NULL, rest);
        return 0;
    }
    default:
        return GN_EBADFRAME;
    }
    return r.pos == len ? 0 : GN_EBADFRAME;
}

typedef struct xfer_wr {
    uint8_t *p;
    size_t n, pos;
    bool full;
} xfer_wr;

static void wr_bytes(xfer_wr *w, const void *b, size_t n)
{
    if (w->full || w->n - w->pos < n) {
        w->full = true;
        return;
    }
    if (n)
        memcpy(w->p + w->pos, b, n);
    w->pos += n;
}

static void wr_varint(xfer_wr *w, uint64_t v)
{
    uint8_t t[10];
    int n = gn_varint_encode(v, t, sizeof t);
    wr_bytes(w, t, n > 0 ? (size_t)n : 0);
}

static void wr_byte(xfer_wr *w, uint8_t b)
{
    wr_bytes(w, &b, 1);
}

/* the body of @m; the caller checked it */
static void xfer_body(xfer_wr *w, const gni_xfer_msg *m)
{
    wr_byte(w, (uint8_t)m->type);
    switch (m->type) {
    case GNI_XFER_T_HAVE:
        wr_byte(w, (uint8_t)m->code);
        /* fall through */
    case GNI_XFER_T_WANT:
    case GNI_XFER_T_CANCEL:
    ranges:
        wr_varint(w, m->range_cnt);
        for (size_t i = 0; i < m->range_cnt; i++) {
            wr_varint(w, m->ranges[i].start);
            wr_varint(w, m->ranges[i].count);
        }
        break;
    case GNI_XFER_T_SKIP:
        wr_byte(w, (uint8_t)m->code);
        goto ranges;
    case GNI_XFER_T_CHUNK:
        wr_varint(w, m->index);
        wr_byte(w, (uint8_t)m->proof_cnt);
        wr_bytes(w, m->proof, (size_t)m->proof_cnt * GNI_XFER_HASH_LEN);
        wr_bytes(w, m->bytes.base, m->bytes.len);
        break;
    case GNI_XFER_T_ERROR:
        wr_varint(w, m->code);
        /* fall through */
    default:
        wr_bytes(w, m->bytes.base, m->bytes.len);
        break;
    }
}

int gni_xfer_msg_encode(const gni_xfer_msg *m, uint8_t *out, size_t out_len)
{
    if (!m || !out)
        return GN_EINVAL;
    /* encode the body after room for the longest prefix, check it with the
     * decoder's rules, then move it down behind its real prefix */
    uint8_t hdr[10];
    if (out_len < 10)
        return GN_ENOSPC;
    xfer_wr w = {out + 10, out_len - 10, 0, false};
    xfer_body(&w, m);
    if (w.full)
        return GN_ENOSPC;
    gni_xfer_range rs[GNI_XFER_MAX_RANGES];
    gni_xfer_msg chk;
    if (gni_xfer_msg_decode(out + 10, w.pos, &chk, rs) != 0)
        return GN_EINVAL;
    size_t pl = gni_lp_prefix(hdr, w.pos);
    memmove(out + pl, out + 10, w.pos);
    memcpy(out, hdr, pl);
    return (int)(pl + w.pos);
}

/* ---- output queues ---- */

typedef struct xfer_q {
    uint8_t b[XFER_Q_LEN];
    size_t len;
} xfer_q;

/* queues @m; @reserve: leave room for a final ERROR */
static int q_push(xfer_q *q, const gni_xfer_msg *m, bool reserve)
{
    size_t room = XFER_Q_LEN - q->len;
    if (reserve)
        room = room > XFER_Q_RESERVE ? room - XFER_Q_RESERVE : 0;
    int n = gni_xfer_msg_encode(m, q->b + q->len, room);
    if (n == GN_ENOSPC)
        return GN_EAGAIN;
    if (n < 0)
        return n;
    q->len += (size_t)n;
    return 0;
}

static size_t q_drain(xfer_q *q, gn_buf *out)
{
    if (!out)
        return 0;
    size_t n = gn_buf_left(out);
    if (n > q->len)
        n = q->len;
    memcpy(out->last, q->b, n);
    out->last += n;
    memmove(q->b, q->b + n, q->len - n);
    q->len -= n;
    return n;
}

static void q_error(xfer_q *q, unsigned code, const char *text)
{
    gni_xfer_msg m = {.type = GNI_XFER_T_ERROR, .code = code};
    size_t tl = text ? strlen(text) : 0;
    if (tl > GNI_XFER_ERRTEXT_MAX)
        tl = GNI_XFER_ERRTEXT_MAX;
    /* whole characters only: cut before a character the bound splits, and
     * at the first invalid byte (section 5) */
    tl = utf8_valid_prefix((const uint8_t *)text, tl);
    m.bytes = gn_slice_of(text, tl);
    (void)q_push(q, &m, false);
}

static unsigned xfer_err_code(int rc)
{
    switch (rc) {
    case GN_ETIMEDOUT:
    case GN_EWINDOW:
    case GN_ETOOBIG:
    case GN_EFRAMESIZE:
        return GNI_XFER_ERR_LIMIT;
    case GN_EDECRYPT:
        return GNI_XFER_ERR_CORRUPT;
    case GN_ENOTFOUND:
        return GNI_XFER_ERR_NOT_FOUND;
    case GN_ENOMEM:
        return GNI_XFER_ERR_INTERNAL;
    default:
        return GNI_XFER_ERR_PROTOCOL;
    }
}

/* ---- requester ---- */

typedef struct xfer_slot {
    uint64_t index;
    bool canceled;
} xfer_slot;

struct gni_xfer_req {
    uint8_t cid[GNI_XFER_CID_LEN];
    gni_lp_reader rd;
    bool have_manifest, dead, defer_verify, timed;
    gn_time t_start, t_rx; /* timed: when started, when bytes last arrived */
    gni_xfer_manifest m;
    xfer_slot out[GNI_XFER_WINDOW];
    unsigned out_cnt;
    gni_xfer_range ranges[GNI_XFER_MAX_RANGES];
    xfer_q q;
};

int gni_xfer_req_new(const uint8_t cid[GNI_XFER_CID_LEN], gni_xfer_req **out)
{
    if (!cid || !out)
        return GN_EINVAL;
    *out = NULL;
    if (gni_xfer_cid_check(cid, GNI_XFER_CID_LEN) != 0)
        return GN_EINVAL;
    gni_xfer_req *r = gn_calloc(1, sizeof *r);
    if (!r)
        return GN_ENOMEM;
    memcpy(r->cid, cid, GNI_XFER_CID_LEN);
    gni_lp_reader_init(&r->rd, GNI_XFER_MSG_MAX);
    gni_xfer_msg m = {.type = GNI_XFER_T_GET_MANIFEST,
                      .bytes = gn_slice_of(r->cid, GNI_XFER_CID_LEN)};
    (void)q_push(&r->q, &m, true);
    *out = r;
    return 0;
}

void gni_xfer_req_free(gni_xfer_req *r)
{
    if (!r)
        return;
    gni_lp_reader_clear(&r->rd);
    gn_free(r);
}

static int req_slot(const gni_xfer_req *r, uint64_t index)
{
    for (unsigned i = 0; i < r->out_cnt; i++)
        if (r->out[i].index == index)
            return (int)i;
    return -1;
}

static void req_unslot(gni_xfer_req *r, int i)
{
    r->out[i] = r->out[--r->out_cnt];
}

static bool ranges_in_file(const gni_xfer_msg *m, uint64_t leaves)
{
    for (size_t i = 0; i < m->range_cnt; i++)
        if (m->ranges[i].start + m->ranges[i].count > leaves)
            return false;
    return true;
}

static int req_fail(gni_xfer_req *r, int rc, const char *text)
{
    if (!r->dead)
        q_error(&r->q, xfer_err_code(rc), text);
    r->dead = true;
    return rc;
}

/* the ERROR text of a failed frame read or decode, naming what was wrong */
static const char *xfer_frame_text(char *buf, size_t n, int rc, size_t max, const uint8_t *body,
                                   size_t len)
{
    switch (rc) {
    case GN_ENOMEM:
        return "out of memory";
    case GN_EFRAMESIZE:
        snprintf(buf, n, "message length above the bound of %zu bytes", max);
        return buf;
    case GN_EPARSE:
        return "bad length prefix (malformed varint)";
    default:
        snprintf(buf, n, "malformed message (type %u, %zu bytes): %s", len ? body[0] : 0u, len,
                 rc == GN_ETOOBIG ? "a count or length above its bound" : "not well formed");
        return buf;
    }
}

#define XFER_FAILF(fail, obj, rc, ...)                                                       \
    do {                                                                                     \
        char fb_[160];                                                                       \
        snprintf(fb_, sizeof fb_, __VA_ARGS__);                                              \
        return fail((obj), (rc), fb_);                                                       \
    } while (0)

static int req_msg(gni_xfer_req *r, const uint8_t *body, size_t len, gni_xfer_ev *ev)
{
    gni_xfer_msg m;
    int rc = gni_xfer_msg_decode(body, len, &m, r->ranges);
    char tb[160];
    if (rc < 0)
        return req_fail(r, rc, xfer_frame_text(tb, sizeof tb, rc, GNI_XFER_MSG_MAX, body, len));
    memset(ev, 0, sizeof *ev);
    switch (m.type) {
    case GNI_XFER_T_MANIFEST:
        if (r->have_manifest)
            return req_fail(r, GN_EPROTO, "second MANIFEST");
        if (gni_xfer_cid_verify(r->cid, m.bytes.base, m.bytes.len) != 0)
            return req_fail(r, GN_EDECRYPT, "MANIFEST does not match the CID");
        if ((rc = gni_xfer_manifest_decode(m.bytes.base, m.bytes.len, &r->m)) < 0)
            XFER_FAILF(req_fail, r, GN_EPARSE, "MANIFEST malformed (%zu bytes): %s",
                       m.bytes.len, gn_strerror(rc));
        r->have_manifest = true;
        ev->type = GNI_XFER_EV_MANIFEST;
        ev->manifest = &r->m;
        return 1;
    case GNI_XFER_T_HAVE:
        if (!r->have_manifest)
            return req_fail(r, GN_EPROTO, "HAVE before MANIFEST (the first answer must be MANIFEST)");
        if (!ranges_in_file(&m, r->m.leaf_count))
            XFER_FAILF(req_fail, r, GN_EPROTO, "HAVE beyond the last chunk (%llu chunks)",
                       (unsigned long long)r->m.leaf_count);
        ev->type = GNI_XFER_EV_HAVE;
        ev->all = m.code == 1;
        ev->ranges = m.ranges;
        ev->range_cnt = m.range_cnt;
        return 1;
    case GNI_XFER_T_CHUNK: {
        int s = r->have_manifest ? req_slot(r, m.index) : -1;
        if (s < 0)
            XFER_FAILF(req_fail, r, GN_EPROTO, "CHUNK %llu not wanted",
                       (unsigned long long)m.index);
        if (r->defer_verify) {
            /* the caller hashes; what costs nothing is checked here */
            if (m.bytes.len != gni_xfer_chunk_len(&r->m, m.index) ||
                m.proof_cnt != gni_xfer_proof_len(r->m.leaf_count, m.index))
                XFER_FAILF(req_fail, r, GN_EDECRYPT,
                           "CHUNK %llu does not verify (%zu bytes, %u proof hashes)",
                           (unsigned long long)m.index, m.bytes.len, m.proof_cnt);
        } else if (gni_xfer_chunk_verify(&r->m, m.index, m.bytes.base, m.bytes.len, m.proof,
                                         m.proof_cnt) != 0) {
            XFER_FAILF(req_fail, r, GN_EDECRYPT, "CHUNK %llu does not verify",
                       (unsigned long long)m.index);
        }
        req_unslot(r, s);
        ev->type = GNI_XFER_EV_CHUNK;
        ev->index = m.index;
        ev->data = m.bytes;
        ev->verified = !r->defer_verify;
        ev->proof = m.proof;
        ev->proof_cnt = m.proof_cnt;
        return 1;
    }
    case GNI_XFER_T_SKIP: {
        if (!r->have_manifest)
            return req_fail(r, GN_EPROTO, "SKIP before MANIFEST");
        unsigned total = 0;
        for (size_t i = 0; i < m.range_cnt; i++) {
            if (m.ranges[i].count > GNI_XFER_WINDOW - total)
                return req_fail(r, GN_EPROTO, "SKIP of more chunks than outstanding");
            total += (unsigned)m.ranges[i].count;
            for (uint64_t k = 0; k < m.ranges[i].count; k++) {
                uint64_t x = m.ranges[i].start + k;
                int sl = req_slot(r, x);
                if (sl < 0)
                    XFER_FAILF(req_fail, r, GN_EPROTO, "SKIP of chunk %llu not wanted",
                               (unsigned long long)x);
                /* a CANCELED answer only to a CANCEL: else WANT/SKIP could loop */
                if (m.code == GNI_XFER_SKIP_CANCELED && !r->out[sl].canceled)
                    XFER_FAILF(req_fail, r, GN_EPROTO,
                               "SKIP(CANCELED) of a chunk not cancelled (%llu)",
                               (unsigned long long)x);
            }
        }
        for (size_t i = 0; i < m.range_cnt; i++)
            for (uint64_t k = 0; k < m.ranges[i].count; k++)
                req_unslot(r, req_slot(r, m.ranges[i].start + k));
        ev->type = GNI_XFER_EV_SKIP;
        ev->code = m.code;
        ev->ranges = m.ranges;
        ev->range_cnt = m.range_cnt;
        return 1;
    }
    case GNI_XFER_T_ERROR:
        r->dead = true;
        ev->type = GNI_XFER_EV_ERROR;
        ev->code = m.code;
        ev->data = m.bytes;
        return 1;
    default:
        XFER_FAILF(req_fail, r, GN_EPROTO, "message type %u is the requester's to send", m.type);
    }
}

int gni_xfer_req_feed(gni_xfer_req *r, const uint8_t *in, size_t len, size_t *consumed,
                      gni_xfer_ev *ev)
{
    if (!r || !consumed || !ev || (len && !in))
        return GN_EINVAL;
    *consumed = 0;
    if (r->dead)
        return GN_ESTATE;
    size_t used = 0;
    while (used < len) {
        const uint8_t *msg = NULL;
        size_t ml = 0, c = 0;
        int rc = gni_lp_reader_feed(&r->rd, in + used, len - used, &c, &msg, &ml);
        used += c;
        *consumed = used;
        if (rc < 0) {
            char tb[160];
            const char *t = xfer_frame_text(tb, sizeof tb, rc, GNI_XFER_MSG_MAX, NULL, 0);
            return req_fail(r, rc == GN_EPARSE ? GN_EBADFRAME : rc, t);
        }
        if (rc == 1) {
            rc = req_msg(r, msg, ml, ev);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

int gni_xfer_req_want(gni_xfer_req *r, uint64_t start, uint64_t count)
{
    if (!r || count == 0)
        return GN_EINVAL;
    if (r->dead || !r->have_manifest)
        return GN_ESTATE;
    if (start >= r->m.leaf_count || count > r->m.leaf_count - start)
        return GN_ERANGE;
    if (count > GNI_XFER_WINDOW - r->out_cnt)
        return GN_EAGAIN;
    for (uint64_t k = 0; k < count; k++)
        if (req_slot(r, start + k) >= 0)
            return GN_EEXIST;
    gni_xfer_range g = {start, count};
    gni_xfer_msg m = {.type = GNI_XFER_T_WANT, .ranges = &g, .range_cnt = 1};
    int rc = q_push(&r->q, &m, true);
    if (rc < 0)
        return rc;
    for (uint64_t k = 0; k < count; k++)
        r->out[r->out_cnt++] = (xfer_slot){start + k, false};
    return 0;
}

int gni_xfer_req_cancel(gni_xfer_req *r, uint64_t index)
{
    if (!r)
        return GN_EINVAL;
    if (r->dead)
        return GN_ESTATE;
    int s = req_slot(r, index);
    if (s < 0 || r->out[s].canceled)
        return GN_ENOTFOUND;
    gni_xfer_range g = {index, 1};
    gni_xfer_msg m = {.type = GNI_XFER_T_CANCEL, .ranges = &g, .range_cnt = 1};
    int rc = q_push(&r->q, &m, true);
    if (rc < 0)
        return rc;
    r->out[s].canceled = true;
    return 0;
}

void gni_xfer_req_set_defer_verify(gni_xfer_req *r, bool on)
{
    if (r)
        r->defer_verify = on;
}

unsigned gni_xfer_req_credit(const gni_xfer_req *r)
{
    return r && !r->dead && r->have_manifest ? GNI_XFER_WINDOW - r->out_cnt : 0;
}

unsigned gni_xfer_req_outstanding(const gni_xfer_req *r)
{
    return r ? r->out_cnt : 0;
}

size_t gni_xfer_req_drain(gni_xfer_req *r, gn_buf *out)
{
    return r ? q_drain(&r->q, out) : 0;
}

int gni_xfer_req_abort(gni_xfer_req *r, unsigned code, const char *text)
{
    if (!r || code == 0)
        return GN_EINVAL;
    if (!r->dead)
        q_error(&r->q, code, text);
    r->dead = true;
    return 0;
}

gn_time gni_xfer_req_next_deadline(const gni_xfer_req *r)
{
    if (!r || !r->timed || r->dead)
        return GN_TIME_INFINITY;
    if (!r->have_manifest)
        return r->t_start + GNI_XFER_MANIFEST_TIMEOUT;
    if (r->out_cnt)
        return r->t_rx + GNI_XFER_IDLE_TIMEOUT;
    return GN_TIME_INFINITY;
}

void gni_xfer_req_start(gni_xfer_req *r, gn_time now)
{
    if (r) {
        r->timed = true;
        r->t_start = r->t_rx = now;
    }
}

int gni_xfer_req_feed_at(gni_xfer_req *r, const uint8_t *in, size_t len, size_t *consumed,
                         gni_xfer_ev *ev, gn_time now)
{
    if (r && len) {
        if (!r->timed)
            gni_xfer_req_start(r, now);
        r->t_rx = now;
    }
    return gni_xfer_req_feed(r, in, len, consumed, ev);
}

int gni_xfer_req_on_expiry(gni_xfer_req *r, gn_time now)
{
    if (!r)
        return GN_EINVAL;
    gn_time d = gni_xfer_req_next_deadline(r);
    if (now < d)
        return 0;
    if (!r->have_manifest)
        return req_fail(r, GN_ETIMEDOUT, "timeout: no MANIFEST within 10 s");
    XFER_FAILF(req_fail, r, GN_ETIMEDOUT, "timeout: nothing received for 30 s with %u chunks outstanding",
               r->out_cnt);
}

/* ---- provider ---- */

struct gni_xfer_prov {
    uint8_t cid[GNI_XFER_CID_LEN];
    uint8_t mb[GNI_XFER_MANIFEST_MAX];
    size_t mb_len;
    gni_xfer_manifest m;
    const gni_xfer_tree *t;
    gni_lp_reader rd;
    bool opened, dead, timed;
    bool sending; /* the head was given by gni_xfer_prov_next(): a CANCEL keeps it */
    gn_time t_start, t_rx;
    uint64_t want[GNI_XFER_WINDOW]; /* FIFO ring */
    unsigned head, cnt;
    gni_xfer_range ranges[GNI_XFER_MAX_RANGES];
    xfer_q q;
};

int gni_xfer_prov_new(const uint8_t *mb, size_t mb_len, const gni_xfer_tree *t,
                      const uint8_t *have, gni_xfer_prov **out)
{
    if (!out)
        return GN_EINVAL;
    *out = NULL;
    /* 1.0.0: only complete copies serve (section 5.1); @have is reserved */
    if (!mb || !t || have)
        return GN_EINVAL;
    gni_xfer_manifest m;
    int rc = gni_xfer_manifest_decode(mb, mb_len, &m);
    if (rc < 0)
        return GN_EPARSE;
    if (memcmp(m.root, gni_xfer_tree_root(t), GNI_XFER_HASH_LEN) != 0 ||
        gni_xfer_tree_leaves(t) != m.leaf_count)
        return GN_EINVAL;
    gni_xfer_prov *p = gn_calloc(1, sizeof *p);
    if (!p)
        return GN_ENOMEM;
    memcpy(p->mb, mb, mb_len);
    p->mb_len = mb_len;
    p->m = m;
    p->t = t;
    gni_xfer_cid(mb, mb_len, p->cid);
    gni_lp_reader_init(&p->rd, GNI_XFER_REQ_MSG_MAX);
    *out = p;
    return 0;
}

void gni_xfer_prov_free(gni_xfer_prov *p)
{
    if (!p)
        return;
    gni_lp_reader_clear(&p->rd);
    gn_free(p);
}

static int prov_fail(gni_xfer_prov *p, int rc, const char *text)
{
    if (!p->dead)
        q_error(&p->q, xfer_err_code(rc), text);
    p->dead = true;
    return rc;
}


/* appends @i to a sorted run list */
static void runs_add(gni_xfer_range *g, size_t *n, uint64_t i)
{
    if (*n && g[*n - 1].start + g[*n - 1].count == i)
        g[*n - 1].count++;
    else
        g[(*n)++] = (gni_xfer_range){i, 1};
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int prov_skip(gni_xfer_prov *p, unsigned reason, uint64_t *idx, size_t n)
{
    gni_xfer_range g[GNI_XFER_WINDOW];
    size_t gn = 0;
    if (n == 0)
        return 0;
    qsort(idx, n, sizeof *idx, cmp_u64);
    for (size_t i = 0; i < n; i++)
        runs_add(g, &gn, idx[i]);
    gni_xfer_msg m = {.type = GNI_XFER_T_SKIP, .code = reason, .ranges = g, .range_cnt = gn};
    return q_push(&p->q, &m, true);
}

/* a complete copy: one HAVE(every chunk) covers the resource (5.1) */
static int prov_send_have(gni_xfer_prov *p)
{
    gni_xfer_msg m = {.type = GNI_XFER_T_HAVE, .code = 1};
    return q_push(&p->q, &m, true);
}

static int prov_msg(gni_xfer_prov *p, const uint8_t *body, size_t len, gni_xfer_ev *ev)
{
    gni_xfer_msg m;
    int rc = gni_xfer_msg_decode(body, len, &m, p->ranges);
    char tb[160];
    if (rc < 0)
        return prov_fail(p, rc, xfer_frame_text(tb, sizeof tb, rc, GNI_XFER_REQ_MSG_MAX, body, len));
    memset(ev, 0, sizeof *ev);
    if (m.type == GNI_XFER_T_ERROR) {
        p->dead = true;
        ev->type = GNI_XFER_EV_ERROR;
        ev->code = m.code;
        ev->data = m.bytes;
        return 1;
    }
    if (m.type == GNI_XFER_T_GET_MANIFEST) {
        if (p->opened)
            return prov_fail(p, GN_EPROTO, "second GET_MANIFEST");
        if (m.bytes.len != GNI_XFER_CID_LEN || memcmp(m.bytes.base, p->cid, GNI_XFER_CID_LEN) != 0)
            XFER_FAILF(prov_fail, p, GN_ENOTFOUND, "no such resource here (%zu-byte CID)",
                       m.bytes.len);
        p->opened = true;
        gni_xfer_msg mm = {.type = GNI_XFER_T_MANIFEST, .bytes = gn_slice_of(p->mb, p->mb_len)};
        if ((rc = q_push(&p->q, &mm, true)) < 0 || (rc = prov_send_have(p)) < 0)
            return prov_fail(p, rc, "output queue full (MANIFEST, HAVE)");
        return 0;
    }
    if (!p->opened)
        XFER_FAILF(prov_fail, p, GN_EPROTO, "message type %u before GET_MANIFEST", m.type);
    if (m.type == GNI_XFER_T_WANT) {
        uint64_t total = 0;
        for (size_t i = 0; i < m.range_cnt; i++) {
            if (m.ranges[i].count > GNI_XFER_WINDOW)
                XFER_FAILF(prov_fail, p, GN_EWINDOW, "WANT of %llu chunks above the window of %u",
                           (unsigned long long)m.ranges[i].count, GNI_XFER_WINDOW);
            total += m.ranges[i].count;
        }
        if (total > GNI_XFER_WINDOW - p->cnt)
            XFER_FAILF(prov_fail, p, GN_EWINDOW,
                       "WANT of %llu chunks with %u outstanding: above the window of %u",
                       (unsigned long long)total, p->cnt, GNI_XFER_WINDOW);
        if (!ranges_in_file(&m, p->m.leaf_count))
            XFER_FAILF(prov_fail, p, GN_EPROTO, "WANT beyond the last chunk (%llu chunks)",
                       (unsigned long long)p->m.leaf_count);
        for (size_t i = 0; i < m.range_cnt; i++) {
            for (uint64_t k = 0; k < m.ranges[i].count; k++) {
                uint64_t x = m.ranges[i].start + k;
                for (unsigned j = 0; j < p->cnt; j++)
                    if (p->want[(p->head + j) % GNI_XFER_WINDOW] == x)
                        XFER_FAILF(prov_fail, p, GN_EPROTO, "WANT of chunk %llu already wanted",
                                   (unsigned long long)x);
                p->want[(p->head + p->cnt++) % GNI_XFER_WINDOW] = x;
            }
        }
        return 0;
    }
    if (m.type == GNI_XFER_T_CANCEL) {
        uint64_t gone[GNI_XFER_WINDOW], keep[GNI_XFER_WINDOW];
        size_t gn = 0, kn = 0;
        for (unsigned j = 0; j < p->cnt; j++) {
            uint64_t x = p->want[(p->head + j) % GNI_XFER_WINDOW];
            bool hit = false;
            if (j == 0 && p->sending) {
                keep[kn++] = x; /* being sent: it arrives as CHUNK (6.2) */
                continue;
            }
            for (size_t i = 0; i < m.range_cnt && !hit; i++)
                hit = x >= m.ranges[i].start && x - m.ranges[i].start < m.ranges[i].count;
            if (hit)
                gone[gn++] = x;
            else
                keep[kn++] = x;
        }
        for (size_t j = 0; j < kn; j++)
            p->want[(p->head + j) % GNI_XFER_WINDOW] = keep[j];
        p->cnt = (unsigned)kn;
        if ((rc = prov_skip(p, GNI_XFER_SKIP_CANCELED, gone, gn)) < 0)
            return prov_fail(p, rc, "output queue full (SKIP)");
        return 0;
    }
    XFER_FAILF(prov_fail, p, GN_EPROTO, "message type %u is the provider's to send", m.type);
}

int gni_xfer_prov_feed(gni_xfer_prov *p, const uint8_t *in, size_t len, size_t *consumed,
                       gni_xfer_ev *ev)
{
    if (!p || !consumed || !ev || (len && !in))
        return GN_EINVAL;
    *consumed = 0;
    if (p->dead)
        return GN_ESTATE;
    size_t used = 0;
    while (used < len) {
        /* backpressure: answers need room; the driver drains and feeds again */
        if (XFER_Q_LEN - p->q.len < 2 * XFER_Q_RESERVE)
            return GN_EAGAIN;
        const uint8_t *msg = NULL;
        size_t ml = 0, c = 0;
        int rc = gni_lp_reader_feed(&p->rd, in + used, len - used, &c, &msg, &ml);
        used += c;
        *consumed = used;
        if (rc < 0) {
            char tb[160];
            const char *t = xfer_frame_text(tb, sizeof tb, rc, GNI_XFER_REQ_MSG_MAX, NULL, 0);
            return prov_fail(p, rc == GN_EPARSE ? GN_EBADFRAME : rc, t);
        }
        if (rc == 1) {
            rc = prov_msg(p, msg, ml, ev);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

int gni_xfer_prov_next(gni_xfer_prov *p, uint64_t *index)
{
    if (!p || !index || p->dead || p->cnt == 0)
        return 0;
    *index = p->want[p->head];
    p->sending = true;
    return 1;
}

int gni_xfer_prov_chunk_header(gni_xfer_prov *p, uint64_t index, uint8_t *out, size_t out_len)
{
    if (!p || !out)
        return GN_EINVAL;
    if (p->dead || p->cnt == 0 || p->want[p->head] != index)
        return GN_ESTATE;
    uint8_t proof[GNI_XFER_DEPTH_MAX][GNI_XFER_HASH_LEN];
    int pc = gni_xfer_tree_proof(p->t, index, proof);
    if (pc < 0)
        return pc;
    size_t dl = gni_xfer_chunk_len(&p->m, index);
    size_t body = 1 + gn_varint_len(index) + 1 + (size_t)pc * GNI_XFER_HASH_LEN + dl;
    uint8_t pre[10];
    size_t pl = gni_lp_prefix(pre, body);
    xfer_wr w = {out, out_len, 0, false};
    wr_bytes(&w, pre, pl);
    wr_byte(&w, GNI_XFER_T_CHUNK);
    wr_varint(&w, index);
    wr_byte(&w, (uint8_t)pc);
    wr_bytes(&w, proof, (size_t)pc * GNI_XFER_HASH_LEN);
    if (w.full)
        return GN_ENOSPC;
    p->head = (p->head + 1) % GNI_XFER_WINDOW;
    p->cnt--;
    p->sending = false;
    return (int)w.pos;
}

int gni_xfer_prov_skip_head(gni_xfer_prov *p, unsigned reason)
{
    if (!p || (reason != GNI_XFER_SKIP_NOT_HAVE && reason != GNI_XFER_SKIP_CANCELED))
        return GN_EINVAL;
    if (p->dead || p->cnt == 0)
        return GN_ESTATE;
    uint64_t x = p->want[p->head];
    int rc = prov_skip(p, reason, &x, 1);
    if (rc < 0)
        return rc;
    p->head = (p->head + 1) % GNI_XFER_WINDOW;
    p->cnt--;
    p->sending = false;
    return 0;
}

int gni_xfer_prov_announce(gni_xfer_prov *p, uint64_t start, uint64_t count)
{
    (void)start;
    (void)count;
    /* 1.0.0: only complete copies serve, and their first HAVE says so */
    return p ? GN_ENOTSUP : GN_EINVAL;
}

size_t gni_xfer_prov_drain(gni_xfer_prov *p, gn_buf *out)
{
    return p ? q_drain(&p->q, out) : 0;
}

void gni_xfer_prov_start(gni_xfer_prov *p, gn_time now)
{
    if (p) {
        p->timed = true;
        p->t_start = p->t_rx = now;
    }
}

int gni_xfer_prov_feed_at(gni_xfer_prov *p, const uint8_t *in, size_t len, size_t *consumed,
                          gni_xfer_ev *ev, gn_time now)
{
    if (p && len) {
        if (!p->timed)
            gni_xfer_prov_start(p, now);
        p->t_rx = now;
    }
    return gni_xfer_prov_feed(p, in, len, consumed, ev);
}

gn_time gni_xfer_prov_next_deadline(const gni_xfer_prov *p)
{
    if (!p || !p->timed || p->dead)
        return GN_TIME_INFINITY;
    if (!p->opened)
        return p->t_start + GNI_XFER_MANIFEST_TIMEOUT;
    if (p->cnt == 0)
        return p->t_rx + GNI_XFER_PROV_IDLE_TIMEOUT;
    return GN_TIME_INFINITY;
}

int gni_xfer_prov_on_expiry(gni_xfer_prov *p, gn_time now)
{
    if (!p)
        return GN_EINVAL;
    if (now < gni_xfer_prov_next_deadline(p))
        return 0;
    if (!p->opened)
        return prov_fail(p, GN_ETIMEDOUT, "timeout: no GET_MANIFEST within 10 s");
    return prov_fail(p, GN_ETIMEDOUT, "timeout: idle for 60 s with nothing wanted");
}

int gni_xfer_prov_abort(gni_xfer_prov *p, unsigned code, const char *text)
{
    if (!p || code == 0)
        return GN_EINVAL;
    if (!p->dead)
        q_error(&p->q, code, text);
    p->dead = true;
    return 0;
}
