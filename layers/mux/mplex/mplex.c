/*
 * mplex sans-I/O core. See mplex.h for the contract.
 *
 * Invariants: per stream rq.len <= cfg.stream_buffer_max, per session
 * buffered <= cfg.session_buffer_max (checked when a message header arrives,
 * before any byte of it is stored); per stream sq.len <= stream_buffer_max.
 */
#include "mplex.h"
#include "golemnet/multiformats.h"

#include "gni.h"
#include "gni_htab.h"

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

#define MX_EV_OPENED 0x01u
#define MX_EV_DATA 0x02u
#define MX_EV_WRITABLE 0x04u
#define MX_EV_FIN 0x08u
#define MX_EV_RESET 0x10u

#define MX_SEV_REFUSED 0x01u
#define MX_SEV_END 0x02u

/* Control frames a stream waits to send. */
#define MX_C_NEW 0x1u
#define MX_C_CLOSE 0x2u
#define MX_C_RESET 0x4u

enum { MX_BODY_DISCARD = 0, MX_BODY_STORE = 1, MX_BODY_NAME = 2 };
enum { MX_P_HDR = 0, MX_P_LEN = 1, MX_P_BODY = 2 };

typedef struct mx_stream {
    uint64_t h; /* handle: id << 1 | remote */
    bool pending;
    bool lfin;
    bool lfin_sent;
    bool rfin;
    bool fin_evented;
    bool reset;
    bool released;
    bool want_writable;
    uint8_t prio;
    uint8_t ev;
    uint8_t ctrl;
    int reset_err;
    gn_bufq rq;
    gn_bufq sq;
    void *user_data;
    uint8_t *name;
    size_t name_len;
    gni_list ev_link;
    gni_list ctrl_link;
    gni_list data_link;
    gni_hnode hn; /* in the session's stream table, key = h */
} mx_stream;

struct gni_mplex {
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

    gni_htab streams;
    uint32_t n_in;
    uint32_t n_out;
    uint32_t n_pending;
    size_t buffered;
    size_t send_queued;
    gni_list evq;
    gni_list ctrlq;
    gni_list prio[GNI_MPLEX_PRIO_CLASSES];

    uint64_t refuse[GNI_MPLEX_REFUSE_QUEUE];
    unsigned refuse_head;
    unsigned refuse_cnt;

    unsigned sev;
    uint32_t refused_ev_cnt;
    uint64_t refused_ev_id;
    uint64_t refused_total;
    uint64_t overflowed;
    int err;
};

static bool mx_remote(uint64_t h)
{
    return (h & 1u) != 0;
}

/* ---- configuration and table ------------------------------------------ */

static void mx_config(gn_mux_config *c, const gn_mux_config *in)
{
    if (in) {
        *c = *in;
    } else {
        memset(c, 0, sizeof(*c));
        c->version = GN_MUX_CONFIG_VERSION;
    }
    if (!c->max_inbound_streams)
        c->max_inbound_streams = 1024;
    if (!c->max_outbound_streams)
        c->max_outbound_streams = 1024;
    if (!c->max_pending_streams)
        c->max_pending_streams = 256;
    if (!c->max_frame_len)
        c->max_frame_len = GNI_MPLEX_MAX_MSG;
    if (!c->stream_buffer_max)
        c->stream_buffer_max = 1024u * 1024u;
    if (!c->session_buffer_max)
        c->session_buffer_max = (size_t)64u * 1024u * 1024u;
}

static mx_stream *mx_find(const gni_mplex *ms, uint64_t key)
{
    gni_hnode *h = gni_htab_find(&ms->streams, key);
    return h ? GNI_CONTAINER_OF(h, mx_stream, hn) : NULL;
}

static mx_stream *mx_app_find(const gni_mplex *ms, uint64_t h)
{
    mx_stream *st = mx_find(ms, h);
    return st && !st->released ? st : NULL;
}

static int mx_table_insert(gni_mplex *ms, mx_stream *st)
{
    st->hn.key = st->h;
    return gni_htab_insert(&ms->streams, &st->hn);
}

static void mx_stream_free(gni_mplex *ms, mx_stream *st)
{
    if (ms->cur_st == st) {
        ms->cur_st = NULL;
        ms->body_mode = MX_BODY_DISCARD;
    }
    gni_htab_remove(&ms->streams, &st->hn);
    gni_list_del(&st->ev_link);
    gni_list_del(&st->ctrl_link);
    gni_list_del(&st->data_link);
    ms->buffered -= gn_bufq_len(&st->rq);
    ms->send_queued -= gn_bufq_len(&st->sq);
    gn_bufq_fini(&st->rq);
    gn_bufq_fini(&st->sq);
    if (st->pending)
        ms->n_pending--;
    if (mx_remote(st->h))
        ms->n_in--;
    else
        ms->n_out--;
    gn_free(st->name);
    gn_free(st);
}

static mx_stream *mx_stream_new(gni_mplex *ms, uint64_t h)
{
    mx_stream *st = gn_calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    gni_streamq_init(&st->rq);
    gni_streamq_init(&st->sq);
    st->h = h;
    if (mx_table_insert(ms, st) < 0) {
        gn_free(st);
        return NULL;
    }
    if (mx_remote(h))
        ms->n_in++;
    else
        ms->n_out++;
    return st;
}

/* ---- events and scheduling -------------------------------------------- */

static void mx_raise(gni_mplex *ms, mx_stream *st, uint8_t bit)
{
    if (st->released)
        return;
    st->ev |= bit;
    if (!gni_list_on(&st->ev_link))
        gni_list_add_tail(&ms->evq, &st->ev_link);
}

static void mx_ctrl(gni_mplex *ms, mx_stream *st, uint8_t bit)
{
    st->ctrl |= bit;
    if (!gni_list_on(&st->ctrl_link))
        gni_list_add_tail(&ms->ctrlq, &st->ctrl_link);
}

static size_t mx_write_space(const gni_mplex *ms, const mx_stream *st)
{
    return ms->cfg.stream_buffer_max - GNI_MIN(gn_bufq_len(&st->sq), ms->cfg.stream_buffer_max);
}

static void mx_check_writable(gni_mplex *ms, mx_stream *st)
{
    if (st->want_writable && !st->reset && !st->lfin && mx_write_space(ms, st) > 0) {
        st->want_writable = false;
        mx_raise(ms, st, MX_EV_WRITABLE);
    }
}

static void mx_check_fin(gni_mplex *ms, mx_stream *st)
{
    if (st->rfin && !st->fin_evented && !st->reset && gn_bufq_len(&st->rq) == 0) {
        st->fin_evented = true;
        mx_raise(ms, st, MX_EV_FIN);
    }
}

static bool mx_maybe_free(gni_mplex *ms, mx_stream *st)
{
    if (!st->released || gni_list_on(&st->ctrl_link) || gni_list_on(&st->data_link))
        return false;
    if (!st->reset && !(st->lfin_sent && st->rfin))
        return false;
    mx_stream_free(ms, st);
    return true;
}

static void mx_drop_queues(gni_mplex *ms, mx_stream *st)
{
    ms->buffered -= gn_bufq_len(&st->rq);
    ms->send_queued -= gn_bufq_len(&st->sq);
    gn_bufq_fini(&st->rq);
    gn_bufq_fini(&st->sq);
    gni_list_del(&st->data_link);
    if (st->pending) {
        st->pending = false;
        ms->n_pending--;
    }
    st->ev &= (uint8_t)~(MX_EV_DATA | MX_EV_WRITABLE | MX_EV_FIN);
}

static void mx_reset_local(gni_mplex *ms, mx_stream *st, int event_err)
{
    if (st->reset)
        return;
    st->reset = true;
    st->reset_err = event_err ? event_err : GN_ECLOSED;
    mx_drop_queues(ms, st);
    if (st->ctrl & MX_C_NEW) {
        /* the peer never heard of it */
        st->ctrl = 0;
        gni_list_del(&st->ctrl_link);
    } else {
        st->ctrl = 0;
        mx_ctrl(ms, st, MX_C_RESET);
    }
    if (event_err)
        mx_raise(ms, st, MX_EV_RESET);
}

static void mx_reset_remote(gni_mplex *ms, mx_stream *st)
{
    if (st->reset)
        return;
    st->reset = true;
    st->reset_err = GN_ESTREAMRESET;
    mx_drop_queues(ms, st);
    st->ctrl = 0;
    gni_list_del(&st->ctrl_link);
    mx_raise(ms, st, MX_EV_RESET);
}

static int mx_fail(gni_mplex *ms, int err)
{
    if (ms->err)
        return ms->err;
    ms->err = err;
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
    if (gni_htab_init(&ms->streams, 64) < 0) {
        gn_free(ms);
        return GN_ENOMEM;
    }
    ms->initiator = initiator;
    gni_varint_rd_init(&ms->vrd, GNI_VARINT_PB);
    mx_config(&ms->cfg, cfg);
    ms->chunk_max = GNI_MIN((size_t)GNI_MPLEX_CHUNK_MAX, ms->cfg.max_frame_len);
    gni_list_init(&ms->evq);
    gni_list_init(&ms->ctrlq);
    for (unsigned i = 0; i < GNI_MPLEX_PRIO_CLASSES; i++)
        gni_list_init(&ms->prio[i]);
    *out = ms;
    return 0;
}

void gni_mplex_free(gni_mplex *ms)
{
    if (!ms)
        return;
    gni_hnode *h;
    while ((h = gni_htab_any(&ms->streams)) != NULL)
        mx_stream_free(ms, GNI_CONTAINER_OF(h, mx_stream, hn));
    gni_htab_fini(&ms->streams);
    gn_free(ms);
}

int gni_mplex_error(const gni_mplex *ms)
{
    return ms->err;
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

static int mx_refuse(gni_mplex *ms, uint64_t id)
{
    if (ms->refuse_cnt == GNI_MPLEX_REFUSE_QUEUE)
        return GN_ESTREAMLIMIT;
    ms->refuse[(ms->refuse_head + ms->refuse_cnt) % GNI_MPLEX_REFUSE_QUEUE] = id;
    ms->refuse_cnt++;
    ms->refused_total++;
    ms->refused_ev_cnt++;
    ms->refused_ev_id = GNI_MPLEX_HANDLE(id, 1);
    ms->sev |= MX_SEV_REFUSED;
    return 0;
}

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
        if (mx_find(ms, h))
            return GN_EPROTO;
        if (ms->n_in >= ms->cfg.max_inbound_streams ||
            ms->n_pending >= ms->cfg.max_pending_streams)
            return mx_refuse(ms, id);
        mx_stream *st = mx_stream_new(ms, h);
        if (!st)
            return GN_ENOMEM;
        st->pending = true;
        ms->n_pending++;
        if (len > 0) {
            st->name = gn_malloc((size_t)GNI_MIN(len, (uint64_t)GNI_MPLEX_NAME_MAX));
            if (!st->name)
                return GN_ENOMEM;
        }
        mx_raise(ms, st, MX_EV_OPENED);
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
        return 0; /* gone (reset in flight): drop */
    }
    ms->cur_st = st;
    if (!msg || len == 0 || st->reset)
        return 0;
    if (st->rfin)
        return GN_EPROTO;
    if (st->released)
        return 0;
    if (gn_bufq_len(&st->rq) + len > ms->cfg.stream_buffer_max ||
        ms->buffered + len > ms->cfg.session_buffer_max) {
        ms->overflowed++;
        mx_reset_local(ms, st, GN_ETOOBIG);
        return 0;
    }
    ms->body_mode = MX_BODY_STORE;
    return 0;
}

static void mx_frame_done(gni_mplex *ms)
{
    mx_stream *st = ms->cur_st;
    ms->cur_st = NULL;
    if (!st)
        return;
    switch (ms->cur_flag) {
    case GNI_MPLEX_CLOSE_RECEIVER:
    case GNI_MPLEX_CLOSE_INITIATOR:
        if (!st->rfin && !st->reset) {
            st->rfin = true;
            mx_check_fin(ms, st);
        }
        break;
    case GNI_MPLEX_RESET_RECEIVER:
    case GNI_MPLEX_RESET_INITIATOR:
        mx_reset_remote(ms, st);
        break;
    default:
        break;
    }
    mx_maybe_free(ms, st);
}

int gni_mplex_feed(gni_mplex *ms, const uint8_t *in, size_t len, size_t *consumed,
                   gn_time now)
{
    (void)now;
    size_t off = 0;
    int rc = 0;
    if (ms->err) {
        if (consumed)
            *consumed = 0;
        return ms->err;
    }
    while (off < len) {
        if (ms->pstate == MX_P_BODY) {
            size_t k = (size_t)GNI_MIN((uint64_t)(len - off), ms->body_left);
            mx_stream *st = ms->cur_st;
            if (ms->body_mode == MX_BODY_STORE && (st->reset || st->released))
                ms->body_mode = MX_BODY_DISCARD;
            if (ms->body_mode == MX_BODY_STORE) {
                size_t got = gni_streamq_append(&st->rq, in + off, k, (size_t)ms->body_left);
                ms->buffered += got;
                if (got < k) {
                    rc = GN_ENOMEM;
                    break;
                }
                mx_raise(ms, st, MX_EV_DATA);
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

static bool mx_have_data(const gni_mplex *ms)
{
    for (unsigned i = 0; i < GNI_MPLEX_PRIO_CLASSES; i++)
        if (!gni_list_empty(&ms->prio[i]))
            return true;
    return false;
}

bool gni_mplex_want_drain(const gni_mplex *ms)
{
    if (ms->err)
        return false;
    return ms->refuse_cnt || !gni_list_empty(&ms->ctrlq) || mx_have_data(ms);
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
    return mx_remote(st->h) ? receiver_flag : receiver_flag + 1;
}

#define MX_ST(link, member) GNI_CONTAINER_OF(link, mx_stream, member)

static bool mx_drain_ctrl(gni_mplex *ms, gn_buf *out)
{
    while (ms->refuse_cnt) {
        if (!mx_emit(out, ms->refuse[ms->refuse_head], GNI_MPLEX_RESET_RECEIVER, NULL, 0))
            return false;
        ms->refuse_head = (ms->refuse_head + 1) % GNI_MPLEX_REFUSE_QUEUE;
        ms->refuse_cnt--;
    }
    while (!gni_list_empty(&ms->ctrlq)) {
        mx_stream *st = MX_ST(ms->ctrlq.next, ctrl_link);
        uint64_t id = GNI_MPLEX_HANDLE_ID(st->h);
        if (st->ctrl & MX_C_NEW) {
            if (!mx_emit(out, id, GNI_MPLEX_NEW_STREAM, st->name, st->name_len))
                return false;
            st->ctrl &= (uint8_t)~MX_C_NEW;
        }
        if (st->ctrl & MX_C_RESET) {
            if (!mx_emit(out, id, mx_flag(st, GNI_MPLEX_RESET_RECEIVER), NULL, 0))
                return false;
        } else if (st->ctrl & MX_C_CLOSE) {
            if (!mx_emit(out, id, mx_flag(st, GNI_MPLEX_CLOSE_RECEIVER), NULL, 0))
                return false;
            st->lfin_sent = true;
        }
        st->ctrl = 0;
        gni_list_del(&st->ctrl_link);
        mx_maybe_free(ms, st);
    }
    return true;
}

static bool mx_drain_data(gni_mplex *ms, gn_buf *out)
{
    for (;;) {
        int p = (int)GNI_MPLEX_PRIO_CLASSES - 1;
        while (p >= 0 && gni_list_empty(&ms->prio[p]))
            p--;
        if (p < 0)
            return true;
        mx_stream *st = MX_ST(ms->prio[p].next, data_link);
        uint64_t id = GNI_MPLEX_HANDLE_ID(st->h);
        unsigned flag = mx_flag(st, GNI_MPLEX_MSG_RECEIVER);
        size_t n = GNI_MIN(gn_bufq_len(&st->sq), ms->chunk_max);
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
        gn_bufq_read(&st->sq, out->last + hl, n);
        out->last += (size_t)hl + n;
        ms->send_queued -= n;
        gni_list_del(&st->data_link);
        if (gn_bufq_len(&st->sq) > 0) {
            gni_list_add_tail(&ms->prio[p], &st->data_link);
        } else if (st->lfin && !st->lfin_sent) {
            mx_ctrl(ms, st, MX_C_CLOSE); /* Close right after the data */
        } else if (mx_maybe_free(ms, st)) {
            continue;
        }
        mx_check_writable(ms, st);
    }
}

int gni_mplex_drain(gni_mplex *ms, gn_buf *out, gn_time now)
{
    (void)now;
    uint8_t *start = out->last;
    bool done = false;
    if (ms->err)
        return 0;
    for (int round = 0; round < 4; round++) {
        if (!mx_drain_ctrl(ms, out))
            break;
        if (!mx_drain_data(ms, out))
            break;
        if (gni_list_empty(&ms->ctrlq)) {
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
    static const struct {
        uint8_t bit;
        int type;
    } order[] = {
        {MX_EV_OPENED, GNI_MPLEX_EV_STREAM_OPENED},   {MX_EV_DATA, GNI_MPLEX_EV_STREAM_DATA},
        {MX_EV_WRITABLE, GNI_MPLEX_EV_STREAM_WRITABLE}, {MX_EV_FIN, GNI_MPLEX_EV_STREAM_FIN},
        {MX_EV_RESET, GNI_MPLEX_EV_STREAM_RESET},
    };
    memset(ev, 0, sizeof(*ev));
    while (!gni_list_empty(&ms->evq)) {
        mx_stream *st = MX_ST(ms->evq.next, ev_link);
        for (size_t i = 0; i < GNI_ARRAY_LEN(order); i++) {
            if (!(st->ev & order[i].bit))
                continue;
            st->ev &= (uint8_t)~order[i].bit;
            if (!st->ev)
                gni_list_del(&st->ev_link);
            ev->type = order[i].type;
            ev->stream_id = st->h;
            ev->stream_user_data = st->user_data;
            if (order[i].bit == MX_EV_RESET)
                ev->err = st->reset_err;
            return 1;
        }
        gni_list_del(&st->ev_link);
    }
    if (ms->sev & MX_SEV_REFUSED) {
        ms->sev &= ~MX_SEV_REFUSED;
        ev->type = GNI_MPLEX_EV_STREAM_REFUSED;
        ev->stream_id = ms->refused_ev_id;
        ev->count = ms->refused_ev_cnt;
        ev->err = GN_ESTREAMLIMIT;
        ms->refused_ev_cnt = 0;
        return 1;
    }
    if (ms->sev & MX_SEV_END) {
        ms->sev &= ~MX_SEV_END;
        ev->type = GNI_MPLEX_EV_SESSION_END;
        ev->err = ms->err;
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
    return ms->err;
}

/* ---- streams ---------------------------------------------------------- */

int gni_mplex_open(gni_mplex *ms, const char *name, size_t name_len, uint64_t *out)
{
    char idname[24];
    if (ms->err)
        return GN_ECLOSED;
    if (ms->n_out >= ms->cfg.max_outbound_streams)
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
    mx_stream *st = mx_stream_new(ms, GNI_MPLEX_HANDLE(ms->next_id, 0));
    if (!st) {
        gn_free(copy);
        return GN_ENOMEM;
    }
    ms->next_id++;
    st->name = copy;
    st->name_len = name_len;
    mx_ctrl(ms, st, MX_C_NEW);
    *out = st->h;
    return 0;
}

int gni_mplex_accept(gni_mplex *ms, uint64_t h)
{
    if (ms->err)
        return GN_ECLOSED;
    mx_stream *st = mx_app_find(ms, h);
    if (!st)
        return GN_ENOTFOUND;
    if (!st->pending)
        return GN_ESTATE;
    st->pending = false;
    ms->n_pending--;
    return 0;
}

long gni_mplex_stream_write(gni_mplex *ms, uint64_t h, const uint8_t *data, size_t len)
{
    if (ms->err)
        return GN_ECLOSED;
    mx_stream *st = mx_app_find(ms, h);
    if (!st)
        return GN_ENOTFOUND;
    if (st->reset)
        return GN_ESTREAMRESET;
    if (st->pending)
        return GN_ESTATE;
    if (st->lfin)
        return GN_EPIPE;
    size_t n = GNI_MIN(len, mx_write_space(ms, st));
    n = GNI_MIN(n, (size_t)LONG_MAX);
    if (n > 0) {
        size_t got = gni_streamq_append(&st->sq, data, n, n);
        ms->send_queued += got;
        if (got > 0 && !gni_list_on(&st->data_link))
            gni_list_add_tail(&ms->prio[st->prio], &st->data_link);
        if (got == 0)
            return GN_ENOMEM;
        n = got;
    }
    if (n < len)
        st->want_writable = true;
    return (long)n;
}

size_t gni_mplex_stream_write_space(const gni_mplex *ms, uint64_t h)
{
    const mx_stream *st = mx_app_find(ms, h);
    if (ms->err || !st || st->reset || st->pending || st->lfin)
        return 0;
    return mx_write_space(ms, st);
}

int gni_mplex_stream_shutdown(gni_mplex *ms, uint64_t h)
{
    if (ms->err)
        return GN_ECLOSED;
    mx_stream *st = mx_app_find(ms, h);
    if (!st)
        return GN_ENOTFOUND;
    if (st->lfin || st->reset || st->pending)
        return GN_ESTATE;
    st->lfin = true;
    st->want_writable = false;
    st->ev &= (uint8_t)~MX_EV_WRITABLE;
    if (gn_bufq_len(&st->sq) == 0)
        mx_ctrl(ms, st, MX_C_CLOSE);
    return 0;
}

int gni_mplex_stream_reset(gni_mplex *ms, uint64_t h)
{
    if (ms->err)
        return GN_ECLOSED;
    mx_stream *st = mx_app_find(ms, h);
    if (!st)
        return GN_ENOTFOUND;
    mx_reset_local(ms, st, 0);
    return 0;
}

int gni_mplex_stream_peek(const gni_mplex *ms, uint64_t h, gn_slice *out)
{
    const mx_stream *st = mx_app_find(ms, h);
    if (!st)
        return GN_ENOTFOUND;
    return gni_streamq_peek(&st->rq, out) ? 1 : 0;
}

int gni_mplex_stream_consume(gni_mplex *ms, uint64_t h, size_t n)
{
    mx_stream *st = mx_app_find(ms, h);
    if (!st)
        return GN_ENOTFOUND;
    n = GNI_MIN(n, gn_bufq_len(&st->rq));
    gn_bufq_skip(&st->rq, n);
    ms->buffered -= n;
    mx_check_fin(ms, st);
    return 0;
}

long gni_mplex_stream_read(gni_mplex *ms, uint64_t h, uint8_t *out, size_t len)
{
    mx_stream *st = mx_app_find(ms, h);
    if (!st)
        return GN_ENOTFOUND;
    len = GNI_MIN(len, (size_t)LONG_MAX);
    size_t n = gn_bufq_read(&st->rq, out, len);
    ms->buffered -= n;
    mx_check_fin(ms, st);
    return (long)n;
}

int gni_mplex_stream_release(gni_mplex *ms, uint64_t h)
{
    mx_stream *st = mx_app_find(ms, h);
    if (!st)
        return GN_ENOTFOUND;
    if (ms->err) {
        mx_stream_free(ms, st);
        return 0;
    }
    if (st->pending || (!st->reset && !st->lfin))
        mx_reset_local(ms, st, 0);
    st->released = true;
    st->user_data = NULL;
    st->ev = 0;
    gni_list_del(&st->ev_link);
    ms->buffered -= gn_bufq_len(&st->rq);
    gn_bufq_fini(&st->rq);
    mx_maybe_free(ms, st);
    return 0;
}

int gni_mplex_stream_set_user_data(gni_mplex *ms, uint64_t h, void *user_data)
{
    mx_stream *st = mx_app_find(ms, h);
    if (!st)
        return GN_ENOTFOUND;
    st->user_data = user_data;
    return 0;
}

int gni_mplex_stream_set_priority(gni_mplex *ms, uint64_t h, uint8_t prio)
{
    mx_stream *st = mx_app_find(ms, h);
    if (!st)
        return GN_ENOTFOUND;
    if (prio >= GNI_MPLEX_PRIO_CLASSES)
        return GN_ERANGE;
    if (st->prio != prio && gni_list_on(&st->data_link)) {
        gni_list_del(&st->data_link);
        gni_list_add_tail(&ms->prio[prio], &st->data_link);
    }
    st->prio = prio;
    return 0;
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
    if (st->reset)
        info->state = GNI_MPLEX_ST_RESET;
    else if (st->pending)
        info->state = GNI_MPLEX_ST_PENDING;
    else if (st->lfin && st->rfin)
        info->state = GNI_MPLEX_ST_CLOSED;
    else if (st->lfin)
        info->state = GNI_MPLEX_ST_HALF_CLOSED_LOCAL;
    else if (st->rfin)
        info->state = GNI_MPLEX_ST_HALF_CLOSED_REMOTE;
    else
        info->state = GNI_MPLEX_ST_ESTABLISHED;
    info->inbound = mx_remote(st->h);
    info->priority = st->prio;
    info->recv_buffered = gn_bufq_len(&st->rq);
    info->send_queued = gn_bufq_len(&st->sq);
    return 0;
}

size_t gni_mplex_buffered(const gni_mplex *ms)
{
    return ms->buffered;
}

void gni_mplex_get_stats(const gni_mplex *ms, gni_mplex_stats *st)
{
    memset(st, 0, sizeof(*st));
    st->streams_inbound = ms->n_in;
    st->streams_outbound = ms->n_out;
    st->streams_pending = ms->n_pending;
    st->recv_buffered = ms->buffered;
    st->send_queued = ms->send_queued;
    st->streams_refused = ms->refused_total;
    st->streams_overflowed = ms->overflowed;
}
