/*
 * yamux sans-I/O core. See yamux.h for the contract.
 *
 * Invariants (per stream, while not reset and not released):
 *   rq.len + recv_window + credit == recv_max <= cfg.max_window
 * so received-but-unconsumed bytes never exceed the granted window. The
 * send side reserves window at write time: sq.len bytes are already
 * subtracted from send_window, so the drain never has to check windows.
 */
#include "yamux.h"

#include "gni.h"
#include "gni_htab.h"

#include <limits.h>
#include <string.h>

/* ---- small helpers ---------------------------------------------------- */

static void ys_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static void ys_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static uint16_t ys_get16(const uint8_t *p)
{
    return (uint16_t)(((unsigned)p[0] << 8) | p[1]);
}
static uint32_t ys_get32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* ---- types ------------------------------------------------------------ */

/* Pending per-stream event bits, reported in this order. */
#define YS_EV_OPENED 0x01u
#define YS_EV_DATA 0x02u
#define YS_EV_WRITABLE 0x04u
#define YS_EV_FIN 0x08u
#define YS_EV_RESET 0x10u

/* Pending session event bits. */
#define YS_SEV_REFUSED 0x01u
#define YS_SEV_RTT 0x02u
#define YS_SEV_GOAWAY 0x04u
#define YS_SEV_END 0x08u

/* What the body of the current Data frame is for. */
enum { YS_BODY_DISCARD = 0, YS_BODY_STORE = 1, YS_BODY_CREDIT = 2 };

typedef struct ys_stream {
    uint32_t id;
    bool inbound;
    bool pending;      /* inbound, not accepted yet */
    bool acked;        /* outbound: ACK received */
    bool lfin;         /* we queued FIN */
    bool lfin_sent;    /* our FIN is on the wire */
    bool rfin;         /* the peer sent FIN */
    bool fin_evented;  /* FIN event raised */
    bool reset;        /* reset either way */
    bool released;     /* the application let go */
    bool want_writable;
    uint8_t prio;
    uint8_t ev;          /* YS_EV_* pending */
    uint16_t ctrl_flags; /* flags for the next control frame */
    int reset_err;
    uint32_t recv_window; /* credit the peer still has */
    uint32_t recv_max;    /* current window size */
    uint32_t credit;      /* consumed bytes not yet returned */
    uint64_t send_window; /* peer credit left, after queued bytes */
    gn_bufq rq;
    gn_bufq sq;
    void *user_data;
    gn_time open_deadline;
    gni_list ev_link;
    gni_list ctrl_link;
    gni_list data_link;
    gni_list open_link;
    gni_hnode hn; /* in the session's stream table, key = id */
} ys_stream;

struct gni_yamux {
    bool client;
    gn_mux_config cfg;
    size_t chunk_max;
    gn_time ping_timeout;
    uint32_t next_id;
    bool ids_exhausted;
    uint32_t max_peer_id;

    /* parser */
    uint8_t hdr[GNI_YAMUX_HEADER_LEN];
    size_t hdr_len;
    uint16_t cur_flags;
    uint32_t body_left;
    int body_mode;
    ys_stream *cur_st;

    /* streams */
    gni_htab streams;
    uint32_t n_in;
    uint32_t n_out;
    uint32_t n_pending;
    size_t buffered;
    size_t send_queued;
    gni_list evq;
    gni_list ctrlq;
    gni_list prio[GNI_YAMUX_PRIO_CLASSES];
    gni_list openq;

    /* session control output */
    bool goaway_pending;
    bool goaway_sent;
    uint32_t goaway_code;
    bool ping_pending;
    uint32_t pongs[GNI_YAMUX_PONG_QUEUE];
    unsigned pong_head;
    unsigned pong_cnt;
    uint32_t refuse[GNI_YAMUX_REFUSE_QUEUE];
    unsigned refuse_head;
    unsigned refuse_cnt;

    /* ping */
    bool ping_out;
    uint32_t ping_opaque;
    gn_time ping_sent;
    gn_time next_keepalive;
    gn_time last_rtt;
    gn_time rtt_ev;

    /* remote Go Away */
    bool goaway_recv;
    uint32_t goaway_recv_code;

    /* session events */
    unsigned sev;
    uint32_t refused_ev_cnt;
    uint32_t refused_ev_id;
    int refused_ev_err;
    uint64_t refused_total;
    uint64_t pongs_dropped;
    int err;
};

/* ---- configuration ---------------------------------------------------- */

static void ys_config(gn_mux_config *c, const gn_mux_config *in)
{
    if (in) {
        *c = *in;
    } else {
        memset(c, 0, sizeof(*c));
        c->version = GN_MUX_CONFIG_VERSION;
        c->keepalive_interval = 30 * GN_S;
        c->stream_open_timeout = 30 * GN_S;
    }
    if (!c->max_inbound_streams)
        c->max_inbound_streams = 1024;
    if (!c->max_outbound_streams)
        c->max_outbound_streams = 1024;
    if (!c->max_pending_streams)
        c->max_pending_streams = 256;
    if (c->initial_window < GNI_YAMUX_DEFAULT_WINDOW)
        c->initial_window = GNI_YAMUX_DEFAULT_WINDOW;
    if (!c->max_window)
        c->max_window = 16u * 1024u * 1024u;
    if (c->max_window < c->initial_window)
        c->max_window = c->initial_window;
    if (!c->max_frame_len)
        c->max_frame_len = 256u * 1024u;
    if (!c->stream_buffer_max)
        c->stream_buffer_max = 1024u * 1024u;
    if (!c->session_buffer_max)
        c->session_buffer_max = (size_t)64u * 1024u * 1024u;
}

/* ---- stream table ----------------------------------------------------- */

static ys_stream *ys_find(const gni_yamux *ys, uint32_t key)
{
    gni_hnode *h = gni_htab_find(&ys->streams, key);
    return h ? GNI_CONTAINER_OF(h, ys_stream, hn) : NULL;
}

/* The application's view: released streams no longer exist. */
static ys_stream *ys_app_find(const gni_yamux *ys, uint32_t id)
{
    ys_stream *st = ys_find(ys, id);
    return st && !st->released ? st : NULL;
}

static int ys_table_insert(gni_yamux *ys, ys_stream *st)
{
    st->hn.key = st->id;
    return gni_htab_insert(&ys->streams, &st->hn);
}

static void ys_stream_free(gni_yamux *ys, ys_stream *st)
{
    if (ys->cur_st == st) {
        ys->cur_st = NULL; /* the rest of the current frame is discarded */
        ys->body_mode = YS_BODY_DISCARD;
    }
    gni_htab_remove(&ys->streams, &st->hn);
    gni_list_del(&st->ev_link);
    gni_list_del(&st->ctrl_link);
    gni_list_del(&st->data_link);
    gni_list_del(&st->open_link);
    ys->buffered -= gn_bufq_len(&st->rq);
    ys->send_queued -= gn_bufq_len(&st->sq);
    gn_bufq_fini(&st->rq);
    gn_bufq_fini(&st->sq);
    if (st->pending)
        ys->n_pending--;
    if (st->inbound)
        ys->n_in--;
    else
        ys->n_out--;
    gn_free(st);
}

static ys_stream *ys_stream_new(gni_yamux *ys, uint32_t id, bool inbound)
{
    ys_stream *st = gn_calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    gni_streamq_init(&st->rq);
    gni_streamq_init(&st->sq);
    st->id = id;
    st->inbound = inbound;
    st->recv_window = GNI_YAMUX_DEFAULT_WINDOW;
    st->recv_max = GNI_YAMUX_DEFAULT_WINDOW;
    st->send_window = GNI_YAMUX_DEFAULT_WINDOW;
    if (ys_table_insert(ys, st) < 0) {
        gn_free(st);
        return NULL;
    }
    if (inbound)
        ys->n_in++;
    else
        ys->n_out++;
    return st;
}

/* ---- events and scheduling -------------------------------------------- */

static void ys_raise(gni_yamux *ys, ys_stream *st, uint8_t bit)
{
    if (st->released)
        return;
    st->ev |= bit;
    if (!gni_list_on(&st->ev_link))
        gni_list_add_tail(&ys->evq, &st->ev_link);
}

static void ys_ctrl(gni_yamux *ys, ys_stream *st)
{
    if (!gni_list_on(&st->ctrl_link))
        gni_list_add_tail(&ys->ctrlq, &st->ctrl_link);
}

static size_t ys_write_space(const gni_yamux *ys, const ys_stream *st)
{
    size_t cap = ys->cfg.stream_buffer_max - GNI_MIN(gn_bufq_len(&st->sq), ys->cfg.stream_buffer_max);
    return (size_t)GNI_MIN((uint64_t)cap, st->send_window);
}

static void ys_check_writable(gni_yamux *ys, ys_stream *st)
{
    if (st->want_writable && !st->reset && !st->lfin && ys_write_space(ys, st) > 0) {
        st->want_writable = false;
        ys_raise(ys, st, YS_EV_WRITABLE);
    }
}

static void ys_check_fin(gni_yamux *ys, ys_stream *st)
{
    if (st->rfin && !st->fin_evented && !st->reset && gn_bufq_len(&st->rq) == 0) {
        st->fin_evented = true;
        ys_raise(ys, st, YS_EV_FIN);
    }
}

/* Frees a released stream once nothing of it remains to be sent. */
static bool ys_maybe_free(gni_yamux *ys, ys_stream *st)
{
    if (!st->released || gni_list_on(&st->ctrl_link) || gni_list_on(&st->data_link))
        return false;
    if (!st->reset && !(st->lfin_sent && st->rfin))
        return false;
    ys_stream_free(ys, st);
    return true;
}

/* Credit the consumed bytes; a Window Update goes out at half a window. */
static void ys_credit(gni_yamux *ys, ys_stream *st, size_t n)
{
    st->credit += (uint32_t)n;
    if (!st->rfin && !st->reset && st->credit >= st->recv_max / 2)
        ys_ctrl(ys, st);
}

static void ys_drop_queues(gni_yamux *ys, ys_stream *st)
{
    ys->buffered -= gn_bufq_len(&st->rq);
    ys->send_queued -= gn_bufq_len(&st->sq);
    gn_bufq_fini(&st->rq);
    gn_bufq_fini(&st->sq);
    gni_list_del(&st->data_link);
    gni_list_del(&st->open_link);
    if (st->pending) {
        st->pending = false;
        ys->n_pending--;
    }
    st->ev &= (uint8_t)~(YS_EV_DATA | YS_EV_WRITABLE | YS_EV_FIN);
}

/*
 * Resets @st from our side: RST goes out unless the peer never saw the
 * stream (SYN still queued). @event_err != 0 reports a RESET event.
 */
static void ys_reset_local(gni_yamux *ys, ys_stream *st, int event_err)
{
    if (st->reset)
        return;
    st->reset = true;
    st->reset_err = event_err ? event_err : GN_ECLOSED;
    ys_drop_queues(ys, st);
    if (!st->inbound && (st->ctrl_flags & GNI_YAMUX_FLAG_SYN)) {
        st->ctrl_flags = 0;
        gni_list_del(&st->ctrl_link);
    } else {
        st->ctrl_flags = (uint16_t)((st->ctrl_flags & GNI_YAMUX_FLAG_ACK) | GNI_YAMUX_FLAG_RST);
        ys_ctrl(ys, st);
    }
    st->credit = 0;
    if (event_err)
        ys_raise(ys, st, YS_EV_RESET);
}

static void ys_reset_remote(gni_yamux *ys, ys_stream *st)
{
    if (st->reset)
        return;
    st->reset = true;
    st->reset_err = GN_ESTREAMRESET;
    ys_drop_queues(ys, st);
    st->ctrl_flags = 0;
    st->credit = 0;
    gni_list_del(&st->ctrl_link);
    ys_raise(ys, st, YS_EV_RESET);
}

static int ys_fail(gni_yamux *ys, int err)
{
    if (ys->err)
        return ys->err;
    ys->err = err;
    ys->goaway_pending = true;
    ys->goaway_code = (err == GN_ENOMEM || err == GN_ETIMEDOUT || err == GN_EINTERNAL)
                          ? GNI_YAMUX_GOAWAY_INTERNAL_ERR
                          : GNI_YAMUX_GOAWAY_PROTO_ERR;
    ys->sev |= YS_SEV_END;
    return err;
}

/* ---- session lifetime ------------------------------------------------- */

int gni_yamux_new(bool client, const gn_mux_config *cfg, gn_time now, gni_yamux **out)
{
    if (!out || (cfg && cfg->version != GN_MUX_CONFIG_VERSION))
        return GN_EINVAL;
    gni_yamux *ys = gn_calloc(1, sizeof(*ys));
    if (!ys)
        return GN_ENOMEM;
    if (gni_htab_init(&ys->streams, 64) < 0) {
        gn_free(ys);
        return GN_ENOMEM;
    }
    ys->client = client;
    ys_config(&ys->cfg, cfg);
    ys->chunk_max = GNI_MIN((size_t)GNI_YAMUX_CHUNK_MAX, ys->cfg.max_frame_len);
    ys->ping_timeout =
        ys->cfg.keepalive_interval ? ys->cfg.keepalive_interval : GNI_YAMUX_PING_TIMEOUT;
    ys->next_id = client ? 1 : 2;
    ys->next_keepalive = now + ys->cfg.keepalive_interval;
    gni_list_init(&ys->evq);
    gni_list_init(&ys->ctrlq);
    gni_list_init(&ys->openq);
    for (unsigned i = 0; i < GNI_YAMUX_PRIO_CLASSES; i++)
        gni_list_init(&ys->prio[i]);
    *out = ys;
    return 0;
}

void gni_yamux_free(gni_yamux *ys)
{
    if (!ys)
        return;
    gni_hnode *h;
    while ((h = gni_htab_any(&ys->streams)) != NULL)
        ys_stream_free(ys, GNI_CONTAINER_OF(h, ys_stream, hn));
    gni_htab_fini(&ys->streams);
    gn_free(ys);
}

int gni_yamux_error(const gni_yamux *ys)
{
    return ys->err;
}

void gni_yamux_encode_header(uint8_t out[GNI_YAMUX_HEADER_LEN], uint8_t type, uint16_t flags,
                             uint32_t stream_id, uint32_t length)
{
    out[0] = GNI_YAMUX_VERSION;
    out[1] = type;
    ys_put16(out + 2, flags);
    ys_put32(out + 4, stream_id);
    ys_put32(out + 8, length);
}

/* ---- input ------------------------------------------------------------ */

static int ys_refuse(gni_yamux *ys, uint32_t id, int reason)
{
    if (ys->refuse_cnt == GNI_YAMUX_REFUSE_QUEUE)
        return GN_ESTREAMLIMIT;
    ys->refuse[(ys->refuse_head + ys->refuse_cnt) % GNI_YAMUX_REFUSE_QUEUE] = id;
    ys->refuse_cnt++;
    ys->refused_total++;
    ys->refused_ev_cnt++;
    ys->refused_ev_id = id;
    ys->refused_ev_err = reason;
    ys->sev |= YS_SEV_REFUSED;
    return 0;
}

static size_t ys_discard_limit(const gni_yamux *ys)
{
    return GNI_MAX(ys->cfg.max_frame_len, (size_t)ys->cfg.max_window);
}

static int ys_on_ping(gni_yamux *ys, uint16_t flags, uint32_t id, uint32_t opaque, gn_time now)
{
    if (id != 0)
        return GN_EBADFRAME;
    if (flags == GNI_YAMUX_FLAG_SYN) {
        if (ys->pong_cnt == GNI_YAMUX_PONG_QUEUE) {
            ys->pongs_dropped++;
            return 0;
        }
        ys->pongs[(ys->pong_head + ys->pong_cnt) % GNI_YAMUX_PONG_QUEUE] = opaque;
        ys->pong_cnt++;
        return 0;
    }
    if (flags != GNI_YAMUX_FLAG_ACK)
        return GN_EBADFRAME;
    if (ys->ping_out && opaque == ys->ping_opaque) {
        ys->ping_out = false;
        ys->last_rtt = now >= ys->ping_sent ? now - ys->ping_sent : 0;
        ys->rtt_ev = ys->last_rtt;
        ys->sev |= YS_SEV_RTT;
        ys->next_keepalive = now + ys->cfg.keepalive_interval;
    }
    return 0;
}

static int ys_on_stream_frame(gni_yamux *ys, uint8_t type, uint16_t flags, uint32_t id,
                              uint32_t length)
{
    if (flags & ~(uint16_t)0xF)
        return GN_EBADFRAME;
    if (id == 0)
        return GN_EBADFRAME;
    if ((flags & GNI_YAMUX_FLAG_SYN) && (flags & (GNI_YAMUX_FLAG_ACK | GNI_YAMUX_FLAG_RST)))
        return GN_EBADFRAME;
    bool peer_parity = ys->client ? (id % 2 == 0) : (id % 2 == 1);
    bool data = type == GNI_YAMUX_TYPE_DATA;
    ys_stream *st = ys_find(ys, id);

    ys->cur_flags = flags;
    ys->cur_st = NULL;
    ys->body_left = data ? length : 0;
    ys->body_mode = YS_BODY_DISCARD;

    if (flags & GNI_YAMUX_FLAG_SYN) {
        if (!peer_parity || id <= ys->max_peer_id)
            return GN_EPROTO;
        ys->max_peer_id = id;
        int reason = 0;
        if (ys->goaway_sent || ys->goaway_pending || ys->goaway_recv)
            reason = GN_EGOAWAY;
        else if (ys->n_in >= ys->cfg.max_inbound_streams ||
                 ys->n_pending >= ys->cfg.max_pending_streams)
            reason = GN_ESTREAMLIMIT;
        if (reason) {
            if (data && length > ys_discard_limit(ys))
                return GN_EFRAMESIZE;
            return ys_refuse(ys, id, reason);
        }
        st = ys_stream_new(ys, id, true);
        if (!st)
            return GN_ENOMEM;
        st->pending = true;
        ys->n_pending++;
        ys_raise(ys, st, YS_EV_OPENED);
    } else if (!st) {
        /* Never opened: violation. Opened and gone: drain quietly. */
        if (peer_parity ? id > ys->max_peer_id : id >= ys->next_id)
            return GN_EPROTO;
        if (data && length > ys_discard_limit(ys))
            return GN_EFRAMESIZE;
        return 0;
    }
    if (flags & GNI_YAMUX_FLAG_ACK) {
        if (st->inbound || st->acked)
            return GN_EPROTO;
        st->acked = true;
        gni_list_del(&st->open_link);
    }
    ys->cur_st = st;
    if (!data) {
        if (!st->reset) {
            if (st->send_window + length > UINT32_MAX)
                return GN_EWINDOW;
            st->send_window += length;
            ys_check_writable(ys, st);
        }
        return 0;
    }
    if (length == 0)
        return 0;
    if (st->reset) {
        if (length > ys_discard_limit(ys))
            return GN_EFRAMESIZE;
        return 0;
    }
    if (st->rfin)
        return GN_EPROTO;
    if (length > st->recv_window)
        return GN_EWINDOW;
    st->recv_window -= length;
    if (st->released) {
        ys->body_mode = YS_BODY_CREDIT;
    } else if (ys->buffered + length > ys->cfg.session_buffer_max) {
        ys_reset_local(ys, st, GN_ETOOBIG);
    } else {
        ys->body_mode = YS_BODY_STORE;
    }
    return 0;
}

static int ys_on_header(gni_yamux *ys, gn_time now)
{
    const uint8_t *h = ys->hdr;
    uint8_t type = h[1];
    uint16_t flags = ys_get16(h + 2);
    uint32_t id = ys_get32(h + 4);
    uint32_t length = ys_get32(h + 8);

    ys->cur_st = NULL;
    ys->cur_flags = 0;
    if (h[0] != GNI_YAMUX_VERSION)
        return GN_EVERSION;
    switch (type) {
    case GNI_YAMUX_TYPE_DATA:
    case GNI_YAMUX_TYPE_WINDOW_UPDATE:
        return ys_on_stream_frame(ys, type, flags, id, length);
    case GNI_YAMUX_TYPE_PING:
        return ys_on_ping(ys, flags, id, length, now);
    case GNI_YAMUX_TYPE_GO_AWAY:
        if (id != 0 || flags != 0)
            return GN_EBADFRAME;
        ys->goaway_recv = true;
        ys->goaway_recv_code = length;
        ys->sev |= YS_SEV_GOAWAY;
        return 0;
    default:
        return GN_EBADFRAME;
    }
}

/* The frame's body is complete: apply its FIN / RST. */
static void ys_frame_done(gni_yamux *ys)
{
    ys_stream *st = ys->cur_st;
    ys->cur_st = NULL;
    if (!st)
        return;
    if (ys->cur_flags & GNI_YAMUX_FLAG_RST) {
        ys_reset_remote(ys, st);
    } else if ((ys->cur_flags & GNI_YAMUX_FLAG_FIN) && !st->rfin && !st->reset) {
        st->rfin = true;
        gni_list_del(&st->open_link);
        ys_check_fin(ys, st);
    }
    ys_maybe_free(ys, st);
}

int gni_yamux_feed(gni_yamux *ys, const uint8_t *in, size_t len, size_t *consumed,
                   gn_time now)
{
    size_t off = 0;
    int rc = 0;
    if (ys->err) {
        if (consumed)
            *consumed = 0;
        return ys->err;
    }
    while (off < len) {
        if (ys->body_left > 0) {
            size_t k = GNI_MIN(len - off, (size_t)ys->body_left);
            ys_stream *st = ys->cur_st;
            if (ys->body_mode == YS_BODY_STORE && st->reset)
                ys->body_mode = YS_BODY_DISCARD; /* reset by the app mid-frame */
            else if (ys->body_mode == YS_BODY_STORE && st->released)
                ys->body_mode = YS_BODY_CREDIT;
            if (ys->body_mode == YS_BODY_STORE) {
                size_t got = gni_streamq_append(&st->rq, in + off, k, ys->body_left);
                ys->buffered += got;
                if (got < k) {
                    rc = GN_ENOMEM;
                    break;
                }
                ys_raise(ys, st, YS_EV_DATA);
            } else if (ys->body_mode == YS_BODY_CREDIT) {
                ys_credit(ys, st, k);
            }
            off += k;
            ys->body_left -= (uint32_t)k;
            if (ys->body_left == 0)
                ys_frame_done(ys);
            continue;
        }
        size_t k = GNI_MIN(len - off, GNI_YAMUX_HEADER_LEN - ys->hdr_len);
        memcpy(ys->hdr + ys->hdr_len, in + off, k);
        ys->hdr_len += k;
        off += k;
        if (ys->hdr_len < GNI_YAMUX_HEADER_LEN)
            break;
        ys->hdr_len = 0;
        rc = ys_on_header(ys, now);
        if (rc < 0)
            break;
        if (ys->body_left == 0)
            ys_frame_done(ys);
    }
    if (consumed)
        *consumed = off;
    if (rc < 0)
        return ys_fail(ys, rc);
    return 0;
}

/* ---- output ----------------------------------------------------------- */

static bool ys_have_data(const gni_yamux *ys)
{
    for (unsigned i = 0; i < GNI_YAMUX_PRIO_CLASSES; i++)
        if (!gni_list_empty(&ys->prio[i]))
            return true;
    return false;
}

bool gni_yamux_want_drain(const gni_yamux *ys)
{
    if (ys->goaway_pending)
        return true;
    if (ys->err)
        return false;
    return ys->ping_pending || ys->pong_cnt || ys->refuse_cnt || !gni_list_empty(&ys->ctrlq) ||
           ys_have_data(ys);
}

static bool ys_emit(gn_buf *out, uint8_t type, uint16_t flags, uint32_t id, uint32_t length)
{
    if (gn_buf_left(out) < GNI_YAMUX_HEADER_LEN)
        return false;
    gni_yamux_encode_header(out->last, type, flags, id, length);
    out->last += GNI_YAMUX_HEADER_LEN;
    return true;
}

#define YS_ST(link, member) GNI_CONTAINER_OF(link, ys_stream, member)

static bool ys_drain_ctrl(gni_yamux *ys, gn_buf *out)
{
    if (ys->ping_pending) {
        if (!ys_emit(out, GNI_YAMUX_TYPE_PING, GNI_YAMUX_FLAG_SYN, 0, ys->ping_opaque))
            return false;
        ys->ping_pending = false;
    }
    while (ys->pong_cnt) {
        if (!ys_emit(out, GNI_YAMUX_TYPE_PING, GNI_YAMUX_FLAG_ACK, 0,
                     ys->pongs[ys->pong_head]))
            return false;
        ys->pong_head = (ys->pong_head + 1) % GNI_YAMUX_PONG_QUEUE;
        ys->pong_cnt--;
    }
    while (ys->refuse_cnt) {
        if (!ys_emit(out, GNI_YAMUX_TYPE_WINDOW_UPDATE, GNI_YAMUX_FLAG_RST,
                     ys->refuse[ys->refuse_head], 0))
            return false;
        ys->refuse_head = (ys->refuse_head + 1) % GNI_YAMUX_REFUSE_QUEUE;
        ys->refuse_cnt--;
    }
    while (!gni_list_empty(&ys->ctrlq)) {
        ys_stream *st = YS_ST(ys->ctrlq.next, ctrl_link);
        uint16_t flags = st->ctrl_flags;
        uint32_t delta = (flags & GNI_YAMUX_FLAG_RST) ? 0 : st->credit;
        if (flags || delta) {
            if (!ys_emit(out, GNI_YAMUX_TYPE_WINDOW_UPDATE, flags, st->id, delta))
                return false;
        }
        st->recv_window += delta;
        st->credit -= delta;
        st->ctrl_flags = 0;
        if (flags & GNI_YAMUX_FLAG_FIN)
            st->lfin_sent = true;
        gni_list_del(&st->ctrl_link);
        ys_maybe_free(ys, st);
    }
    return true;
}

static bool ys_drain_data(gni_yamux *ys, gn_buf *out)
{
    for (;;) {
        int p = (int)GNI_YAMUX_PRIO_CLASSES - 1;
        while (p >= 0 && gni_list_empty(&ys->prio[p]))
            p--;
        if (p < 0)
            return true;
        if (gn_buf_left(out) <= GNI_YAMUX_HEADER_LEN)
            return false;
        ys_stream *st = YS_ST(ys->prio[p].next, data_link);
        size_t n = GNI_MIN(gn_bufq_len(&st->sq), ys->chunk_max);
        n = GNI_MIN(n, gn_buf_left(out) - GNI_YAMUX_HEADER_LEN);
        bool fin = n == gn_bufq_len(&st->sq) && st->lfin && !st->lfin_sent;
        gni_yamux_encode_header(out->last, GNI_YAMUX_TYPE_DATA, 0, st->id, (uint32_t)n);
        out->last += GNI_YAMUX_HEADER_LEN;
        gn_bufq_read(&st->sq, out->last, n);
        out->last += n;
        ys->send_queued -= n;
        /*
         * FIN goes in a frame of its own right behind the data (a Window
         * Update, as go-yamux sends it), never on the Data frame:
         * js-libp2p-yamux 8.x handles a frame's flags before its body and
         * drops the data of a Data|FIN frame. No room: the control queue
         * sends it next.
         */
        if (fin) {
            if (ys_emit(out, GNI_YAMUX_TYPE_WINDOW_UPDATE, GNI_YAMUX_FLAG_FIN, st->id, 0)) {
                st->lfin_sent = true;
            } else {
                st->ctrl_flags |= GNI_YAMUX_FLAG_FIN;
                ys_ctrl(ys, st);
            }
        }
        gni_list_del(&st->data_link);
        if (gn_bufq_len(&st->sq) > 0) {
            gni_list_add_tail(&ys->prio[p], &st->data_link); /* round robin */
        } else if (ys_maybe_free(ys, st)) {
            continue;
        }
        ys_check_writable(ys, st);
    }
}

int gni_yamux_drain(gni_yamux *ys, gn_buf *out, gn_time now)
{
    (void)now;
    uint8_t *start = out->last;
    bool done = false;
    if (ys->goaway_pending) {
        if (!ys_emit(out, GNI_YAMUX_TYPE_GO_AWAY, 0, 0, ys->goaway_code))
            goto out;
        ys->goaway_pending = false;
        ys->goaway_sent = true;
    }
    if (ys->err) {
        done = true;
        goto out;
    }
    if (!ys_drain_ctrl(ys, out))
        goto out;
    done = ys_drain_data(ys, out);
out:;
    size_t n = (size_t)(out->last - start);
    if (n == 0 && !done && gni_yamux_want_drain(ys))
        return GN_ENOSPC;
    return n > INT_MAX ? INT_MAX : (int)n;
}

/* ---- events ----------------------------------------------------------- */

int gni_yamux_next_event(gni_yamux *ys, gni_yamux_event *ev)
{
    static const struct {
        uint8_t bit;
        int type;
    } order[] = {
        {YS_EV_OPENED, GNI_YAMUX_EV_STREAM_OPENED},   {YS_EV_DATA, GNI_YAMUX_EV_STREAM_DATA},
        {YS_EV_WRITABLE, GNI_YAMUX_EV_STREAM_WRITABLE}, {YS_EV_FIN, GNI_YAMUX_EV_STREAM_FIN},
        {YS_EV_RESET, GNI_YAMUX_EV_STREAM_RESET},
    };
    memset(ev, 0, sizeof(*ev));
    while (!gni_list_empty(&ys->evq)) {
        ys_stream *st = YS_ST(ys->evq.next, ev_link);
        for (size_t i = 0; i < GNI_ARRAY_LEN(order); i++) {
            if (!(st->ev & order[i].bit))
                continue;
            st->ev &= (uint8_t)~order[i].bit;
            if (!st->ev)
                gni_list_del(&st->ev_link);
            ev->type = order[i].type;
            ev->stream_id = st->id;
            ev->stream_user_data = st->user_data;
            if (order[i].bit == YS_EV_RESET)
                ev->err = st->reset_err;
            return 1;
        }
        gni_list_del(&st->ev_link);
    }
    if (ys->sev & YS_SEV_REFUSED) {
        ys->sev &= ~YS_SEV_REFUSED;
        ev->type = GNI_YAMUX_EV_STREAM_REFUSED;
        ev->stream_id = ys->refused_ev_id;
        ev->count = ys->refused_ev_cnt;
        ev->err = ys->refused_ev_err;
        ys->refused_ev_cnt = 0;
        return 1;
    }
    if (ys->sev & YS_SEV_RTT) {
        ys->sev &= ~YS_SEV_RTT;
        ev->type = GNI_YAMUX_EV_PING_RTT;
        ev->rtt = ys->rtt_ev;
        return 1;
    }
    if (ys->sev & YS_SEV_GOAWAY) {
        ys->sev &= ~YS_SEV_GOAWAY;
        ev->type = GNI_YAMUX_EV_GOAWAY;
        ev->code = ys->goaway_recv_code;
        ev->err = GN_EGOAWAY;
        return 1;
    }
    if (ys->sev & YS_SEV_END) {
        ys->sev &= ~YS_SEV_END;
        ev->type = GNI_YAMUX_EV_SESSION_END;
        ev->err = ys->err;
        return 1;
    }
    return 0;
}

/* ---- time ------------------------------------------------------------- */

gn_time gni_yamux_next_deadline(const gni_yamux *ys)
{
    gn_time d = GN_TIME_INFINITY;
    if (ys->err)
        return d;
    if (ys->ping_out)
        d = ys->ping_sent + ys->ping_timeout;
    else if (ys->cfg.keepalive_interval)
        d = ys->next_keepalive;
    if (!gni_list_empty(&ys->openq)) {
        const ys_stream *st = YS_ST(ys->openq.next, open_link);
        d = GNI_MIN(d, st->open_deadline);
    }
    return d;
}

static void ys_start_ping(gni_yamux *ys, gn_time now)
{
    ys->ping_opaque++;
    ys->ping_pending = true;
    ys->ping_out = true;
    ys->ping_sent = now;
}

int gni_yamux_on_expiry(gni_yamux *ys, gn_time now)
{
    if (ys->err)
        return ys->err;
    if (ys->ping_out && now >= ys->ping_sent + ys->ping_timeout)
        return ys_fail(ys, GN_ETIMEDOUT);
    if (!ys->ping_out && ys->cfg.keepalive_interval && now >= ys->next_keepalive)
        ys_start_ping(ys, now);
    while (!gni_list_empty(&ys->openq)) {
        ys_stream *st = YS_ST(ys->openq.next, open_link);
        if (st->open_deadline > now)
            break;
        gni_list_del(&st->open_link);
        ys_reset_local(ys, st, GN_ETIMEDOUT);
        ys_maybe_free(ys, st);
    }
    return 0;
}

int gni_yamux_ping(gni_yamux *ys, gn_time now)
{
    if (ys->err)
        return GN_ECLOSED;
    if (ys->ping_out)
        return GN_EAGAIN;
    ys_start_ping(ys, now);
    return 0;
}

int gni_yamux_go_away(gni_yamux *ys, uint32_t code)
{
    if (ys->err)
        return GN_ECLOSED;
    if (ys->goaway_pending || ys->goaway_sent)
        return GN_ESTATE;
    ys->goaway_pending = true;
    ys->goaway_code = code;
    return 0;
}

/* ---- streams ---------------------------------------------------------- */

int gni_yamux_open(gni_yamux *ys, gn_time now, uint32_t *id)
{
    if (ys->err)
        return GN_ECLOSED;
    if (ys->goaway_pending || ys->goaway_sent || ys->goaway_recv)
        return GN_EGOAWAY;
    if (ys->n_out >= ys->cfg.max_outbound_streams)
        return GN_ESTREAMLIMIT;
    if (ys->ids_exhausted)
        return GN_ELIMIT;
    ys_stream *st = ys_stream_new(ys, ys->next_id, false);
    if (!st)
        return GN_ENOMEM;
    if (ys->next_id > UINT32_MAX - 2)
        ys->ids_exhausted = true;
    else
        ys->next_id += 2;
    st->ctrl_flags = GNI_YAMUX_FLAG_SYN;
    if (ys->cfg.initial_window > st->recv_max) {
        st->credit = ys->cfg.initial_window - st->recv_max;
        st->recv_max = ys->cfg.initial_window;
    }
    ys_ctrl(ys, st);
    if (ys->cfg.stream_open_timeout) {
        st->open_deadline = now + ys->cfg.stream_open_timeout;
        gni_list_add_tail(&ys->openq, &st->open_link);
    }
    *id = st->id;
    return 0;
}

int gni_yamux_accept(gni_yamux *ys, uint32_t id)
{
    if (ys->err)
        return GN_ECLOSED;
    ys_stream *st = ys_app_find(ys, id);
    if (!st)
        return GN_ENOTFOUND;
    if (!st->pending)
        return GN_ESTATE;
    st->pending = false;
    ys->n_pending--;
    st->ctrl_flags |= GNI_YAMUX_FLAG_ACK;
    if (ys->cfg.initial_window > st->recv_max) {
        st->credit += ys->cfg.initial_window - st->recv_max;
        st->recv_max = ys->cfg.initial_window;
    }
    ys_ctrl(ys, st);
    return 0;
}

long gni_yamux_stream_write(gni_yamux *ys, uint32_t id, const uint8_t *data, size_t len)
{
    if (ys->err)
        return GN_ECLOSED;
    ys_stream *st = ys_app_find(ys, id);
    if (!st)
        return GN_ENOTFOUND;
    if (st->reset)
        return GN_ESTREAMRESET;
    if (st->pending)
        return GN_ESTATE;
    if (st->lfin)
        return GN_EPIPE;
    size_t n = GNI_MIN(len, ys_write_space(ys, st));
    n = GNI_MIN(n, (size_t)LONG_MAX);
    if (n > 0) {
        size_t got = gni_streamq_append(&st->sq, data, n, n);
        st->send_window -= got;
        ys->send_queued += got;
        if (got > 0 && !gni_list_on(&st->data_link))
            gni_list_add_tail(&ys->prio[st->prio], &st->data_link);
        if (got == 0)
            return GN_ENOMEM;
        n = got;
    }
    if (n < len)
        st->want_writable = true;
    return (long)n;
}

size_t gni_yamux_stream_write_space(const gni_yamux *ys, uint32_t id)
{
    const ys_stream *st = ys_app_find(ys, id);
    if (ys->err || !st || st->reset || st->pending || st->lfin)
        return 0;
    return ys_write_space(ys, st);
}

int gni_yamux_stream_shutdown(gni_yamux *ys, uint32_t id)
{
    if (ys->err)
        return GN_ECLOSED;
    ys_stream *st = ys_app_find(ys, id);
    if (!st)
        return GN_ENOTFOUND;
    if (st->lfin || st->reset || st->pending)
        return GN_ESTATE;
    st->lfin = true;
    st->want_writable = false;
    st->ev &= (uint8_t)~YS_EV_WRITABLE;
    if (gn_bufq_len(&st->sq) == 0) {
        st->ctrl_flags |= GNI_YAMUX_FLAG_FIN;
        ys_ctrl(ys, st);
    }
    return 0;
}

int gni_yamux_stream_reset(gni_yamux *ys, uint32_t id)
{
    if (ys->err)
        return GN_ECLOSED;
    ys_stream *st = ys_app_find(ys, id);
    if (!st)
        return GN_ENOTFOUND;
    ys_reset_local(ys, st, 0);
    return 0;
}

int gni_yamux_stream_peek(const gni_yamux *ys, uint32_t id, gn_slice *out)
{
    const ys_stream *st = ys_app_find(ys, id);
    if (!st)
        return GN_ENOTFOUND;
    return gni_streamq_peek(&st->rq, out) ? 1 : 0;
}

int gni_yamux_stream_consume(gni_yamux *ys, uint32_t id, size_t n)
{
    ys_stream *st = ys_app_find(ys, id);
    if (!st)
        return GN_ENOTFOUND;
    n = GNI_MIN(n, gn_bufq_len(&st->rq));
    gn_bufq_skip(&st->rq, n);
    ys->buffered -= n;
    if (!ys->err)
        ys_credit(ys, st, n);
    ys_check_fin(ys, st);
    return 0;
}

long gni_yamux_stream_read(gni_yamux *ys, uint32_t id, uint8_t *out, size_t len)
{
    ys_stream *st = ys_app_find(ys, id);
    if (!st)
        return GN_ENOTFOUND;
    len = GNI_MIN(len, (size_t)LONG_MAX);
    size_t n = gn_bufq_read(&st->rq, out, len);
    ys->buffered -= n;
    if (!ys->err)
        ys_credit(ys, st, n);
    ys_check_fin(ys, st);
    return (long)n;
}

int gni_yamux_stream_release(gni_yamux *ys, uint32_t id)
{
    ys_stream *st = ys_app_find(ys, id);
    if (!st)
        return GN_ENOTFOUND;
    if (ys->err) {
        ys_stream_free(ys, st);
        return 0;
    }
    if (st->pending || (!st->reset && !st->lfin))
        ys_reset_local(ys, st, 0);
    st->released = true;
    st->user_data = NULL;
    st->ev = 0;
    gni_list_del(&st->ev_link);
    size_t dropped = gn_bufq_len(&st->rq);
    ys->buffered -= dropped;
    gn_bufq_fini(&st->rq);
    if (!st->reset && !st->rfin && dropped > 0) {
        /* Orphan still receiving: hand the dropped bytes' credit back. */
        st->credit += (uint32_t)dropped;
        ys_ctrl(ys, st);
    }
    ys_maybe_free(ys, st);
    return 0;
}

int gni_yamux_stream_set_user_data(gni_yamux *ys, uint32_t id, void *user_data)
{
    ys_stream *st = ys_app_find(ys, id);
    if (!st)
        return GN_ENOTFOUND;
    st->user_data = user_data;
    return 0;
}

int gni_yamux_stream_set_priority(gni_yamux *ys, uint32_t id, uint8_t prio)
{
    ys_stream *st = ys_app_find(ys, id);
    if (!st)
        return GN_ENOTFOUND;
    if (prio >= GNI_YAMUX_PRIO_CLASSES)
        return GN_ERANGE;
    if (st->prio != prio && gni_list_on(&st->data_link)) {
        gni_list_del(&st->data_link);
        gni_list_add_tail(&ys->prio[prio], &st->data_link);
    }
    st->prio = prio;
    return 0;
}

int gni_yamux_stream_set_window(gni_yamux *ys, uint32_t id, uint32_t window)
{
    ys_stream *st = ys_app_find(ys, id);
    if (!st)
        return GN_ENOTFOUND;
    if (window > ys->cfg.max_window)
        return GN_ERANGE;
    if (window <= st->recv_max || st->reset || st->rfin || ys->err)
        return 0;
    st->credit += window - st->recv_max;
    st->recv_max = window;
    ys_ctrl(ys, st);
    return 0;
}

int gni_yamux_stream_get_info(const gni_yamux *ys, uint32_t id, gni_yamux_stream_info *info)
{
    const ys_stream *st = ys_app_find(ys, id);
    if (!st)
        return GN_ENOTFOUND;
    memset(info, 0, sizeof(*info));
    if (st->reset)
        info->state = GNI_YAMUX_ST_RESET;
    else if (st->pending)
        info->state = GNI_YAMUX_ST_SYN_RECEIVED;
    else if (st->lfin && st->rfin)
        info->state = GNI_YAMUX_ST_CLOSED;
    else if (st->lfin)
        info->state = GNI_YAMUX_ST_HALF_CLOSED_LOCAL;
    else if (st->rfin)
        info->state = GNI_YAMUX_ST_HALF_CLOSED_REMOTE;
    else if (!st->inbound && !st->acked)
        info->state = GNI_YAMUX_ST_SYN_SENT;
    else
        info->state = GNI_YAMUX_ST_ESTABLISHED;
    info->inbound = st->inbound;
    info->priority = st->prio;
    info->recv_buffered = gn_bufq_len(&st->rq);
    info->recv_window = st->recv_window;
    info->recv_max = st->recv_max;
    info->send_window = st->send_window;
    info->send_queued = gn_bufq_len(&st->sq);
    return 0;
}

size_t gni_yamux_buffered(const gni_yamux *ys)
{
    return ys->buffered;
}

void gni_yamux_get_stats(const gni_yamux *ys, gni_yamux_stats *st)
{
    memset(st, 0, sizeof(*st));
    st->streams_inbound = ys->n_in;
    st->streams_outbound = ys->n_out;
    st->streams_pending = ys->n_pending;
    st->recv_buffered = ys->buffered;
    st->send_queued = ys->send_queued;
    st->last_rtt = ys->last_rtt;
    st->streams_refused = ys->refused_total;
    st->pongs_dropped = ys->pongs_dropped;
}
