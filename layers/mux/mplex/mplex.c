/*
 * mplex sans-I/O core. See mplex.h for the contract.
 *
 * The stream table, per-stream queues, event bits, control queue, priority
 * scheduler and refused-stream set are the shared muxer stream state
 * (core/gni_mstate.h); this file holds the mplex frame format, stream names
 * and the per-stream receive bound (mplex has no flow control).
 *
 * Invariants: per stream rq.len <= cfg.stream_buffer_max, per session
 * buffered <= cfg.session_buffer_max (checked when a message header arrives,
 * before any byte of it is stored); per stream sq.len <= stream_buffer_max,
 * per session send_queued <= cfg.session_send_max.
 */
#include "mplex.h"
#include "golemnet/multiformats.h"

#include "gni.h"
#include "gni_mstate.h"

/* The limits mplex.h documents are the shared layer's. */
_Static_assert(GNI_MPLEX_REFUSE_MARGIN == GNI_MSTATE_REFUSE_MARGIN, "refusal margin");
_Static_assert(GNI_MPLEX_PRIO_CLASSES == GNI_MSTATE_PRIO_CLASSES, "priority classes");

#include <limits.h>
#include <stdio.h>
#include <string.h>

/* ---- small helpers ---------------------------------------------------- */

/* Go-uvarint encoder (10 bytes, the full 64-bit range gn_varint_encode()
 * refuses); its length is gn_varint_len(). */
static size_t mx_varint_put(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* ---- types ------------------------------------------------------------ */

#define MX_SEV_END 0x02u

/* Control frames a stream waits to send (its b.ctrl bits). */
#define MX_C_NEW 0x1u
#define MX_C_CLOSE 0x2u
#define MX_C_RESET 0x4u

enum { MX_BODY_DISCARD = 0, MX_BODY_STORE = 1, MX_BODY_NAME = 2 };
enum { MX_P_HDR = 0, MX_P_LEN = 1, MX_P_BODY = 2 };

/* A stream: the shared state plus its NewStream name. */
typedef struct mx_stream {
    gni_mstream b; /* first; b.hn.key = handle: id << 1 | remote */
    uint8_t *name;
    size_t name_len;
} mx_stream;

struct gni_mplex {
    gni_mstate ms; /* streams, events, scheduling, refusals, ms.err */
    bool initiator;
    gn_mux_config cfg;
    size_t chunk_max;
    uint64_t next_id;

    /* parser */
    int pstate;
    gni_varint_rd vrd; /* GNI_VARINT_PB: mplex uses Go's uvarint */
    uint64_t cur_hdr;
    uint64_t body_left;
    int body_mode;
    mx_stream *cur_st;
    unsigned cur_flag;

    unsigned sev;
    uint64_t overflowed;
};

#define MX_OF(m) GNI_CONTAINER_OF(m, gni_mplex, ms)
#define MX_ST(b) GNI_MSTREAM_OF(b, mx_stream)
#define MX_H(st) ((st)->b.hn.key)

static bool mx_remote(uint64_t h)
{
    return (h & 1u) != 0;
}

/* ---- configuration and table ------------------------------------------ */

static void mx_config(gn_mux_config *c, const gn_mux_config *in)
{
    gni_mstate_config(c, in);
    if (!c->max_frame_len)
        c->max_frame_len = GNI_MPLEX_MAX_MSG;
}

static mx_stream *mx_find(const gni_mplex *ms, uint64_t key)
{
    return MX_ST(gni_mstate_find(&ms->ms, key));
}

static mx_stream *mx_app_find(const gni_mplex *ms, uint64_t h)
{
    return MX_ST(gni_mstate_app_find(&ms->ms, h));
}

static void mx_stream_free_cb(gni_mstate *m, gni_mstream *b)
{
    gni_mplex *ms = MX_OF(m);
    mx_stream *st = MX_ST(b);
    if (ms->cur_st == st) {
        ms->cur_st = NULL;
        ms->body_mode = MX_BODY_DISCARD;
    }
    gni_mstate_remove(m, b);
    gn_free(st->name);
    gn_free(st);
}

static const gni_mstate_ops mx_mstate_ops = {
    .stream_free = mx_stream_free_cb,
    .ctrl_open = MX_C_NEW,
    .ctrl_keep = 0,
    .ctrl_reset = MX_C_RESET,
    .ctrl_fin = MX_C_CLOSE,
};

/* A new stream with its stream span (GN_ERESOURCE: refused), or GN_ENOMEM. */
static int mx_stream_new(gni_mplex *ms, uint64_t h, mx_stream **out)
{
    gn_rcmgr_stream *rs;
    int rc = gni_mstate_rc_stream(&ms->ms, mx_remote(h), &rs);
    if (rc < 0)
        return rc;
    mx_stream *st = gn_calloc(1, sizeof(*st));
    if (!st) {
        gn_rcmgr_stream_done(rs);
        return GN_ENOMEM;
    }
    if (gni_mstate_insert(&ms->ms, &st->b, h, mx_remote(h)) < 0) {
        gn_rcmgr_stream_done(rs);
        gn_free(st);
        return GN_ENOMEM;
    }
    st->b.rs = rs;
    *out = st;
    return 0;
}

static int mx_fail(gni_mplex *ms, int err)
{
    if (ms->ms.err)
        return ms->ms.err;
    ms->ms.err = err;
    ms->sev |= MX_SEV_END;
    return err;
}

/* ---- lifetime --------------------------------------------------------- */

int gni_mplex_new(bool initiator, const gn_mux_config *cfg, gn_time now, gni_mplex **out)
{
    (void)now;
    if (!out || (cfg && cfg->version != GN_MUX_CONFIG_VERSION))
        return GN_EINVAL;
    gni_mplex *ms = gn_calloc(1, sizeof(*ms));
    if (!ms)
        return GN_ENOMEM;
    ms->initiator = initiator;
    mx_config(&ms->cfg, cfg);
    if (gni_mstate_init(&ms->ms, &mx_mstate_ops, ms->cfg.stream_buffer_max) < 0) {
        gn_free(ms);
        return GN_ENOMEM;
    }
    ms->ms.refuse_max = gni_mstate_refuse_bound(ms->cfg.max_inbound_streams);
    ms->ms.send_max = ms->cfg.session_send_max;
    gni_varint_rd_init(&ms->vrd, GNI_VARINT_PB);
    ms->chunk_max = GNI_MIN((size_t)GNI_MPLEX_CHUNK_MAX, ms->cfg.max_frame_len);
    *out = ms;
    return 0;
}

void gni_mplex_free(gni_mplex *ms)
{
    if (!ms)
        return;
    gni_mstate_fini(&ms->ms);
    gn_free(ms);
}

int gni_mplex_set_rcmgr(gni_mplex *ms, gn_rcmgr *rm, gn_rcmgr_conn *conn)
{
    return gni_mstate_set_rcmgr(&ms->ms, rm, conn);
}

gn_rcmgr_stream *gni_mplex_stream_span(const gni_mplex *ms, uint64_t h)
{
    return gni_mstate_stream_span(&ms->ms, h);
}

int gni_mplex_error(const gni_mplex *ms)
{
    return ms->ms.err;
}

int gni_mplex_encode_header(uint8_t *out, size_t out_len, uint64_t id, unsigned flag,
                            uint64_t len)
{
    if (id > GNI_MPLEX_ID_MAX || flag > GNI_MPLEX_RESET_INITIATOR)
        return GN_ERANGE;
    uint64_t hv = (id << 3) | flag;
    size_t need = gn_varint_len(hv) + gn_varint_len(len);
    if (out_len < need)
        return GN_ENOSPC;
    size_t n = mx_varint_put(out, hv);
    n += mx_varint_put(out + n, len);
    return (int)n;
}

/* ---- input ------------------------------------------------------------ */

/* A complete header: flag, id and body length are known. */
static int mx_on_header(gni_mplex *ms, uint64_t len)
{
    unsigned flag = (unsigned)(ms->cur_hdr & 7u);
    uint64_t id = ms->cur_hdr >> 3;
    ms->cur_flag = flag;
    ms->cur_st = NULL;
    ms->body_left = len;
    ms->body_mode = MX_BODY_DISCARD;
    if (flag > GNI_MPLEX_RESET_INITIATOR)
        return GN_EBADFRAME;
    if (len > ms->cfg.max_frame_len)
        return GN_EFRAMESIZE;
    if (flag == GNI_MPLEX_NEW_STREAM) {
        uint64_t h = GNI_MPLEX_HANDLE(id, 1);
        /* open, or refused with our Reset not yet written: still open for the peer */
        if (mx_find(ms, h) || gni_mstate_refused_has(&ms->ms, h))
            return GN_EPROTO;
        if (ms->ms.n_in >= ms->cfg.max_inbound_streams ||
            ms->ms.n_pending >= ms->cfg.max_pending_streams)
            return gni_mstate_refuse(&ms->ms, id, h, GN_ESTREAMLIMIT);
        mx_stream *st;
        int rc = mx_stream_new(ms, h, &st);
        if (rc == GN_ERESOURCE)
            return gni_mstate_refuse(&ms->ms, id, h, GN_ERESOURCE);
        if (rc < 0)
            return rc;
        gni_mstate_set_pending(&ms->ms, &st->b);
        if (len > 0) {
            st->name = gn_malloc((size_t)GNI_MIN(len, (uint64_t)GNI_MPLEX_NAME_MAX));
            if (!st->name)
                return GN_ENOMEM;
        }
        gni_mstate_raise(&ms->ms, &st->b, GNI_MSTATE_EV_OPENED);
        ms->cur_st = st;
        ms->body_mode = MX_BODY_NAME;
        return 0;
    }
    /* Odd flags come from the stream's receiver: a stream we opened. */
    bool ours = (flag & 1u) != 0;
    mx_stream *st = mx_find(ms, GNI_MPLEX_HANDLE(id, !ours));
    bool msg = flag == GNI_MPLEX_MSG_RECEIVER || flag == GNI_MPLEX_MSG_INITIATOR;
    if (!msg && len != 0)
        return GN_EBADFRAME;
    if (!st) {
        if (ours && id >= ms->next_id)
            return GN_EPROTO;
        /* The peer reset a stream we refused before our Reset went out: none is owed. */
        if (flag == GNI_MPLEX_RESET_INITIATOR)
            gni_mstate_refuse_cancel(&ms->ms, GNI_MPLEX_HANDLE(id, 1));
        return 0; /* gone (reset in flight): drop */
    }
    ms->cur_st = st;
    if (!msg || len == 0 || st->b.reset)
        return 0;
    if (st->b.rfin)
        return GN_EPROTO;
    if (st->b.released)
        return 0;
    if (gn_bufq_len(&st->b.rq) + len > ms->cfg.stream_buffer_max ||
        ms->ms.buffered + len > ms->cfg.session_buffer_max) {
        ms->overflowed++;
        gni_mstate_reset_local(&ms->ms, &st->b, GN_ETOOBIG);
        return 0;
    }
    /* no flow control: what the peer sends is reserved as it is announced */
    if (!gni_mstate_rx_reserve(&ms->ms, (size_t)len, GN_RCMGR_PRIO_HIGH,
                               "mplex received data (stream reset)")) {
        gni_mstate_reset_local(&ms->ms, &st->b, GN_ERESOURCE);
        return 0;
    }
    ms->body_mode = MX_BODY_STORE;
    return 0;
}

static void mx_frame_done(gni_mplex *ms)
{
    mx_stream *st = ms->cur_st;
    ms->cur_st = NULL;
    gni_mstate_rx_done(&ms->ms);
    if (!st)
        return;
    switch (ms->cur_flag) {
    case GNI_MPLEX_CLOSE_RECEIVER:
    case GNI_MPLEX_CLOSE_INITIATOR:
        if (!st->b.rfin && !st->b.reset) {
            st->b.rfin = true;
            gni_mstate_check_fin(&ms->ms, &st->b);
        }
        break;
    case GNI_MPLEX_RESET_RECEIVER:
    case GNI_MPLEX_RESET_INITIATOR:
        gni_mstate_reset_remote(&ms->ms, &st->b);
        break;
    default:
        break;
    }
    gni_mstate_maybe_free(&ms->ms, &st->b);
}

int gni_mplex_feed(gni_mplex *ms, const uint8_t *in, size_t len, size_t *consumed,
                   gn_time now)
{
    (void)now;
    size_t off = 0;
    int rc = 0;
    if (ms->ms.err) {
        if (consumed)
            *consumed = 0;
        return ms->ms.err;
    }
    while (off < len) {
        if (ms->pstate == MX_P_BODY) {
            size_t k = (size_t)GNI_MIN((uint64_t)(len - off), ms->body_left);
            mx_stream *st = ms->cur_st;
            if (ms->body_mode == MX_BODY_STORE && (st->b.reset || st->b.released))
                ms->body_mode = MX_BODY_DISCARD;
            if (ms->body_mode == MX_BODY_STORE) {
                size_t got = gni_streamq_append(&st->b.rq, in + off, k, (size_t)ms->body_left);
                ms->ms.buffered += got;
                if (got < k) {
                    rc = GN_ENOMEM;
                    break;
                }
                gni_mstate_raise(&ms->ms, &st->b, GNI_MSTATE_EV_DATA);
            } else if (ms->body_mode == MX_BODY_NAME && st->name) {
                size_t room = GNI_MPLEX_NAME_MAX - st->name_len;
                size_t c = GNI_MIN(k, room);
                memcpy(st->name + st->name_len, in + off, c);
                st->name_len += c;
            }
            off += k;
            ms->body_left -= k;
            if (ms->body_left == 0) {
                ms->pstate = MX_P_HDR;
                mx_frame_done(ms);
            }
            continue;
        }
        uint64_t v = 0;
        rc = gni_varint_rd_byte(&ms->vrd, in[off++], &v);
        if (rc < 0) {
            rc = GN_EBADFRAME; /* above 2^64-1 or longer than 10 bytes */
            break;
        }
        if (rc == 0)
            continue;
        rc = 0;
        if (ms->pstate == MX_P_HDR) {
            ms->cur_hdr = v;
            ms->pstate = MX_P_LEN;
            continue;
        }
        rc = mx_on_header(ms, v);
        if (rc < 0)
            break;
        if (ms->body_left > 0) {
            ms->pstate = MX_P_BODY;
        } else {
            ms->pstate = MX_P_HDR;
            mx_frame_done(ms);
        }
    }
    if (consumed)
        *consumed = off;
    if (rc < 0)
        return mx_fail(ms, rc);
    return 0;
}

/* ---- output ----------------------------------------------------------- */

bool gni_mplex_want_drain(const gni_mplex *ms)
{
    if (ms->ms.err)
        return false;
    return gni_mstate_want_drain(&ms->ms);
}

/* Writes a frame with @body_len bytes from @body (may be NULL for 0). */
static bool mx_emit(gn_buf *out, uint64_t id, unsigned flag, const uint8_t *body,
                    size_t body_len)
{
    uint8_t hdr[20];
    int n = gni_mplex_encode_header(hdr, sizeof(hdr), id, flag, body_len);
    if (n < 0 || gn_buf_left(out) < (size_t)n + body_len)
        return false;
    memcpy(out->last, hdr, (size_t)n);
    out->last += n;
    if (body_len)
        memcpy(out->last, body, body_len);
    out->last += body_len;
    return true;
}

/* The flag for a frame we send on @st (initiator or receiver variant). */
static unsigned mx_flag(const mx_stream *st, unsigned receiver_flag)
{
    return mx_remote(MX_H(st)) ? receiver_flag : receiver_flag + 1;
}

static bool mx_drain_ctrl(gni_mplex *ms, gn_buf *out)
{
    uint64_t rid;
    while (gni_mstate_refuse_peek(&ms->ms, &rid)) {
        if (!mx_emit(out, rid, GNI_MPLEX_RESET_RECEIVER, NULL, 0))
            return false;
        gni_mstate_refuse_pop(&ms->ms);
    }
    gni_mstream *b;
    while ((b = gni_mstate_ctrl_head(&ms->ms)) != NULL) {
        mx_stream *st = MX_ST(b);
        uint64_t id = GNI_MPLEX_HANDLE_ID(MX_H(st));
        if (b->ctrl & MX_C_NEW) {
            if (!mx_emit(out, id, GNI_MPLEX_NEW_STREAM, st->name, st->name_len))
                return false;
            b->ctrl &= (uint16_t)~MX_C_NEW;
        }
        if (b->ctrl & MX_C_RESET) {
            if (!mx_emit(out, id, mx_flag(st, GNI_MPLEX_RESET_RECEIVER), NULL, 0))
                return false;
        } else if (b->ctrl & MX_C_CLOSE) {
            if (!mx_emit(out, id, mx_flag(st, GNI_MPLEX_CLOSE_RECEIVER), NULL, 0))
                return false;
            b->lfin_sent = true;
        }
        gni_mstate_ctrl_done(&ms->ms, b);
    }
    return true;
}

static bool mx_drain_data(gni_mplex *ms, gn_buf *out)
{
    gni_mstream *b;
    while ((b = gni_mstate_sched_next(&ms->ms)) != NULL) {
        mx_stream *st = MX_ST(b);
        uint64_t id = GNI_MPLEX_HANDLE_ID(MX_H(st));
        unsigned flag = mx_flag(st, GNI_MPLEX_MSG_RECEIVER);
        size_t n = GNI_MIN(gn_bufq_len(&b->sq), ms->chunk_max);
        size_t idl = gn_varint_len((id << 3) | flag);
        size_t left = gn_buf_left(out);
        if (idl + gn_varint_len(n) + n > left) {
            /* shrink: the largest n with idl + len(varint(n)) + n <= left */
            size_t fit = 0;
            for (size_t l = 1; l <= 10 && left > idl + l; l++) {
                if (gn_varint_len(left - idl - l) <= l) {
                    fit = left - idl - l;
                    break;
                }
            }
            n = GNI_MIN(n, fit);
        }
        if (n == 0)
            return false;
        int hl = gni_mplex_encode_header(out->last, left, id, flag, n);
        size_t rest = gni_mstate_sched_take(&ms->ms, b, out->last + hl, n);
        out->last += (size_t)hl + n;
        if (rest > 0) {
            /* round robin: back of its class */
        } else if (b->lfin && !b->lfin_sent) {
            gni_mstate_ctrl(&ms->ms, b, MX_C_CLOSE); /* Close right after the data */
        } else if (gni_mstate_maybe_free(&ms->ms, b)) {
            continue;
        }
        gni_mstate_check_writable(&ms->ms, b, UINT64_MAX);
    }
    return true;
}

int gni_mplex_drain(gni_mplex *ms, gn_buf *out, gn_time now)
{
    (void)now;
    uint8_t *start = out->last;
    bool done = false;
    if (ms->ms.err)
        return 0;
    for (int round = 0; round < 4; round++) {
        if (!mx_drain_ctrl(ms, out))
            break;
        if (!mx_drain_data(ms, out))
            break;
        if (!gni_mstate_ctrl_head(&ms->ms)) {
            done = true;
            break;
        }
    }
    size_t n = (size_t)(out->last - start);
    if (n == 0 && !done && gni_mplex_want_drain(ms))
        return GN_ENOSPC;
    return n > INT_MAX ? INT_MAX : (int)n;
}

/* ---- events and time -------------------------------------------------- */

int gni_mplex_next_event(gni_mplex *ms, gni_mplex_event *ev)
{
    memset(ev, 0, sizeof(*ev));
    int type;
    gni_mstream *b = gni_mstate_next_event(&ms->ms, &type);
    if (b) {
        ev->type = type; /* GNI_MSTATE_EV_* == GNI_MPLEX_EV_STREAM_* */
        ev->stream_id = b->hn.key;
        ev->stream_user_data = b->user_data;
        if (type == GNI_MSTATE_EV_RESET)
            ev->err = b->reset_err;
        return 1;
    }
    if (gni_mstate_refused_event(&ms->ms, &ev->stream_id, &ev->count, &ev->err)) {
        ev->type = GNI_MPLEX_EV_STREAM_REFUSED;
        return 1;
    }
    if (ms->sev & MX_SEV_END) {
        ms->sev &= ~MX_SEV_END;
        ev->type = GNI_MPLEX_EV_SESSION_END;
        ev->err = ms->ms.err;
        return 1;
    }
    return 0;
}

gn_time gni_mplex_next_deadline(const gni_mplex *ms)
{
    (void)ms;
    return GN_TIME_INFINITY;
}

int gni_mplex_on_expiry(gni_mplex *ms, gn_time now)
{
    (void)now;
    return ms->ms.err;
}

/* ---- streams ---------------------------------------------------------- */

int gni_mplex_open(gni_mplex *ms, const char *name, size_t name_len, uint64_t *out)
{
    char idname[24];
    if (ms->ms.err)
        return GN_ECLOSED;
    if (ms->ms.n_out >= ms->cfg.max_outbound_streams)
        return GN_ESTREAMLIMIT;
    if (ms->next_id > GNI_MPLEX_ID_MAX)
        return GN_ELIMIT;
    if (!name) {
        int k = snprintf(idname, sizeof(idname), "%llu", (unsigned long long)ms->next_id);
        name = idname;
        name_len = (size_t)k;
    }
    if (name_len > GNI_MPLEX_NAME_MAX || name_len > ms->cfg.max_frame_len)
        return GN_ETOOBIG;
    uint8_t *copy = NULL;
    if (name_len > 0) {
        copy = gn_malloc(name_len);
        if (!copy)
            return GN_ENOMEM;
        memcpy(copy, name, name_len);
    }
    mx_stream *st;
    int rc = mx_stream_new(ms, GNI_MPLEX_HANDLE(ms->next_id, 0), &st);
    if (rc < 0) {
        gn_free(copy);
        return rc;
    }
    ms->next_id++;
    st->name = copy;
    st->name_len = name_len;
    gni_mstate_ctrl(&ms->ms, &st->b, MX_C_NEW);
    *out = MX_H(st);
    return 0;
}

int gni_mplex_accept(gni_mplex *ms, uint64_t h)
{
    if (ms->ms.err)
        return GN_ECLOSED;
    mx_stream *st = mx_app_find(ms, h);
    if (!st)
        return GN_ENOTFOUND;
    return gni_mstate_accept(&ms->ms, &st->b);
}

long gni_mplex_stream_write(gni_mplex *ms, uint64_t h, const uint8_t *data, size_t len)
{
    return gni_mstate_stream_write(&ms->ms, h, data, len); /* no flow control */
}

size_t gni_mplex_stream_write_space(const gni_mplex *ms, uint64_t h)
{
    return gni_mstate_stream_write_space(&ms->ms, h);
}

int gni_mplex_stream_shutdown(gni_mplex *ms, uint64_t h)
{
    return gni_mstate_stream_shutdown(&ms->ms, h);
}

int gni_mplex_stream_reset(gni_mplex *ms, uint64_t h)
{
    return gni_mstate_stream_reset(&ms->ms, h);
}

int gni_mplex_stream_peek(const gni_mplex *ms, uint64_t h, gn_slice *out)
{
    return gni_mstate_stream_peek(&ms->ms, h, out);
}

int gni_mplex_stream_consume(gni_mplex *ms, uint64_t h, size_t n)
{
    return gni_mstate_stream_consume(&ms->ms, h, n);
}

long gni_mplex_stream_read(gni_mplex *ms, uint64_t h, uint8_t *out, size_t len)
{
    return gni_mstate_stream_read(&ms->ms, h, out, len);
}

int gni_mplex_stream_release(gni_mplex *ms, uint64_t h)
{
    mx_stream *st = mx_app_find(ms, h);
    if (!st)
        return GN_ENOTFOUND;
    if (ms->ms.err) {
        mx_stream_free_cb(&ms->ms, &st->b);
        return 0;
    }
    gni_mstate_release(&ms->ms, &st->b);
    gni_mstate_maybe_free(&ms->ms, &st->b);
    return 0;
}

int gni_mplex_stream_set_user_data(gni_mplex *ms, uint64_t h, void *user_data)
{
    return gni_mstate_stream_set_user_data(&ms->ms, h, user_data);
}

int gni_mplex_stream_set_priority(gni_mplex *ms, uint64_t h, uint8_t prio)
{
    return gni_mstate_stream_set_priority(&ms->ms, h, prio);
}

int gni_mplex_stream_name(const gni_mplex *ms, uint64_t h, gn_slice *out)
{
    const mx_stream *st = mx_app_find(ms, h);
    if (!st)
        return GN_ENOTFOUND;
    out->base = st->name;
    out->len = st->name_len;
    return 0;
}

int gni_mplex_stream_get_info(const gni_mplex *ms, uint64_t h, gni_mplex_stream_info *info)
{
    const mx_stream *st = mx_app_find(ms, h);
    if (!st)
        return GN_ENOTFOUND;
    memset(info, 0, sizeof(*info));
    info->state = gni_mstate_stream_state(&st->b); /* GNI_MSTATE_ST_* == GNI_MPLEX_ST_* */
    info->inbound = st->b.inbound;
    info->priority = st->b.prio;
    info->recv_buffered = gn_bufq_len(&st->b.rq);
    info->send_queued = gn_bufq_len(&st->b.sq);
    return 0;
}

size_t gni_mplex_buffered(const gni_mplex *ms)
{
    return ms->ms.buffered;
}

size_t gni_mplex_send_queued(const gni_mplex *ms)
{
    return ms->ms.send_queued;
}

void gni_mplex_get_stats(const gni_mplex *ms, gni_mplex_stats *st)
{
    memset(st, 0, sizeof(*st));
    st->streams_inbound = ms->ms.n_in;
    st->streams_outbound = ms->ms.n_out;
    st->streams_pending = ms->ms.n_pending;
    st->recv_buffered = ms->ms.buffered;
    st->send_queued = ms->ms.send_queued;
    st->streams_refused = ms->ms.refused_total;
    st->rc_refused = ms->ms.rc_refused;
    st->refused_waiting = ms->ms.refuse_cnt;
    st->streams_overflowed = ms->overflowed;
}
