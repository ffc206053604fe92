/*
 * yamux sans-I/O core. See yamux.h for the contract.
 *
 * The stream table, per-stream queues, event bits, control queue, priority
 * scheduler and refused-stream set are the shared muxer stream state
 * (core/gni_mstate.h); this file holds the yamux frame format, the windows,
 * ACK / ping / Go Away and the open timeouts.
 *
 * Invariants (per stream, while not reset and not released):
 *   rq.len + recv_window + credit == recv_max <= cfg.max_window
 * so received-but-unconsumed bytes never exceed the granted window. The
 * send side reserves window at write time: sq.len bytes are already
 * subtracted from send_window, so the drain never has to check windows.
 */
#include "yamux.h"

#include "gni.h"
#include "gni_mstate.h"

/* The limits yamux.h documents are the shared layer's. */
_Static_assert(GNI_YAMUX_REFUSE_MARGIN == GNI_MSTATE_REFUSE_MARGIN, "refusal margin");
_Static_assert(GNI_YAMUX_PRIO_CLASSES == GNI_MSTATE_PRIO_CLASSES, "priority classes");

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

/* Pending session event bits (stream events live in gni_mstate). */
#define YS_SEV_RTT 0x02u
#define YS_SEV_GOAWAY 0x04u
#define YS_SEV_END 0x08u

/* What the body of the current Data frame is for. */
enum { YS_BODY_DISCARD = 0, YS_BODY_STORE = 1, YS_BODY_CREDIT = 2 };

/*
 * A stream: the shared state (table entry, queues, events, scheduling,
 * b.ctrl = flags for the next control frame) plus the yamux windows.
 */
typedef struct ys_stream {
    gni_mstream b; /* first; b.hn.key = stream id */
    bool acked;    /* outbound: ACK received */
    uint32_t recv_window; /* credit the peer still has */
    uint32_t recv_max;    /* current window size */
    uint32_t credit;      /* consumed bytes not yet returned */
    uint64_t send_window; /* peer credit left, after queued bytes */
    gn_time open_deadline;
    gni_list open_link;
} ys_stream;

struct gni_yamux {
    gni_mstate ms; /* streams, events, scheduling, refusals, ms.err */
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

    gni_list openq;

    /* session control output */
    bool goaway_pending;
    bool goaway_sent;
    uint32_t goaway_code;
    bool ping_pending;
    uint32_t pongs[GNI_YAMUX_PONG_QUEUE];
    unsigned pong_head;
    unsigned pong_cnt;

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
    uint64_t pongs_dropped;
    uint64_t windows_withheld; /* window growths the resource manager refused */
    uint64_t updates_withheld; /* Window Updates held back under memory pressure */
    bool wu_held;              /* some stream's Window Update is held back */
    uint64_t rc_resets;        /* streams reset: received data could not be reserved */
};

#define YS_OF(m) GNI_CONTAINER_OF(m, gni_yamux, ms)
#define YS_ST(b) GNI_MSTREAM_OF(b, ys_stream)
#define YS_ID(st) ((uint32_t)(st)->b.hn.key)

/* ---- configuration ---------------------------------------------------- */
static void ys_config(gn_mux_config *c, const gn_mux_config *in)
{
    gni_mstate_config(c, in);
    if (!in) {
        c->keepalive_interval = 30 * GN_S;
        c->stream_open_timeout = 30 * GN_S;
    }
    if (c->initial_window < GNI_YAMUX_DEFAULT_WINDOW)
        c->initial_window = GNI_YAMUX_DEFAULT_WINDOW;
    if (!c->max_window)
        c->max_window = 16u * 1024u * 1024u;
    if (c->max_window < c->initial_window)
        c->max_window = c->initial_window;
    if (!c->max_frame_len)
        c->max_frame_len = 256u * 1024u;
}

/* ---- stream table ----------------------------------------------------- */

static ys_stream *ys_find(const gni_yamux *ys, uint32_t id)
{
    return YS_ST(gni_mstate_find(&ys->ms, id));
}

/* The application's view: released streams no longer exist. */
static ys_stream *ys_app_find(const gni_yamux *ys, uint32_t id)
{
    return YS_ST(gni_mstate_app_find(&ys->ms, id));
}

static void ys_stream_free_cb(gni_mstate *ms, gni_mstream *b)
{
    gni_yamux *ys = YS_OF(ms);
    ys_stream *st = YS_ST(b);
    if (ys->cur_st == st) {
        ys->cur_st = NULL; /* the rest of the current frame is discarded */
        ys->body_mode = YS_BODY_DISCARD;
    }
    gni_list_del(&st->open_link);
    gni_mstate_remove(ms, b);
    gn_free(st);
}

/* Reset either way: no credit to return, no open timeout. */
static void ys_on_reset_cb(gni_mstate *ms, gni_mstream *b)
{
    (void)ms;
    ys_stream *st = YS_ST(b);
    st->credit = 0;
    gni_list_del(&st->open_link);
}

static const gni_mstate_ops ys_mstate_ops = {
    .stream_free = ys_stream_free_cb,
    .on_reset = ys_on_reset_cb,
    .ctrl_open = GNI_YAMUX_FLAG_SYN, /* only outbound streams queue SYN */
    .ctrl_keep = GNI_YAMUX_FLAG_ACK,
    .ctrl_reset = GNI_YAMUX_FLAG_RST,
    .ctrl_fin = GNI_YAMUX_FLAG_FIN,
};

/*
 * A new stream with the protocol's implicit 256 KiB window, with its stream
 * span first (GN_ERESOURCE when the resource manager refuses, GN_ENOMEM).
 * The window is not reserved: what the peer sends is, when it arrives
 * (ys_on_stream_frame()).
 */
static int ys_stream_new(gni_yamux *ys, uint32_t id, bool inbound, ys_stream **out)
{
    gn_rcmgr_stream *rs;
    int rc = gni_mstate_rc_stream(&ys->ms, inbound, &rs);
    if (rc < 0)
        return rc;
    ys_stream *st = gn_calloc(1, sizeof(*st));
    if (!st) {
        gn_rcmgr_stream_done(rs);
        return GN_ENOMEM;
    }
    st->recv_window = GNI_YAMUX_DEFAULT_WINDOW;
    st->recv_max = GNI_YAMUX_DEFAULT_WINDOW;
    st->send_window = GNI_YAMUX_DEFAULT_WINDOW;
    if (gni_mstate_insert(&ys->ms, &st->b, id, inbound) < 0) {
        gn_rcmgr_stream_done(rs);
        gn_free(st);
        return GN_ENOMEM;
    }
    st->b.rs = rs;
    *out = st;
    return 0;
}

/*
 * Grows @st's window to @window (> recv_max) if the resource manager has
 * room for the growth at @prio now (nothing is held: the data is reserved
 * when it arrives); refused, or while under memory pressure, the window
 * stays as it is (no Window Update for the growth) and false is returned.
 */
static bool ys_grow_window(gni_yamux *ys, ys_stream *st, uint32_t window, uint8_t prio)
{
    if (ys->ms.rx_pressure ||
        !gni_mstate_rx_probe(&ys->ms, window - st->recv_max, prio,
                             "yamux receive window growth (window withheld)")) {
        ys->windows_withheld++;
        return false;
    }
    st->credit += window - st->recv_max;
    st->recv_max = window;
    return true;
}

/* ---- events and scheduling -------------------------------------------- */

static void ys_ctrl(gni_yamux *ys, ys_stream *st)
{
    gni_mstate_ctrl(&ys->ms, &st->b, 0);
}

static void ys_check_writable(gni_yamux *ys, ys_stream *st)
{
    gni_mstate_check_writable(&ys->ms, &st->b, st->send_window);
}

static bool ys_wants_update(const ys_stream *st)
{
    return !st->b.rfin && !st->b.reset && st->credit >= st->recv_max / 2;
}

/*
 * Under memory pressure (a receive reservation was refused at
 * GN_RCMGR_PRIO_MEDIUM): true once the manager has a step of room again,
 * and then the Window Updates held back go out.
 */
static bool ys_relieve(gni_yamux *ys)
{
    if (!gni_mstate_rx_probe(&ys->ms, GNI_MSTATE_SEND_STEP, GN_RCMGR_PRIO_MEDIUM,
                             "yamux window update (held back)"))
        return false;
    if (ys->wu_held) {
        ys->wu_held = false;
        const gni_htab *t = &ys->ms.streams;
        for (size_t i = 0; i < t->nbuckets; i++) {
            for (gni_hnode *h = t->buckets[i]; h; h = h->next) {
                ys_stream *st = YS_ST((gni_mstream *)(void *)h);
                if (ys_wants_update(st))
                    ys_ctrl(ys, st);
            }
        }
    }
    return true;
}

/*
 * Credit the consumed bytes; a Window Update goes out at half a window,
 * unless the session is under memory pressure: then it is held back (the
 * peer's window closes, back-pressure) until the manager has room again.
 */
static void ys_credit(gni_yamux *ys, ys_stream *st, size_t n)
{
    st->credit += (uint32_t)n;
    if (ys_wants_update(st)) {
        if (ys->ms.rx_pressure && !ys_relieve(ys)) {
            ys->updates_withheld++;
            ys->wu_held = true;
            return;
        }
        ys_ctrl(ys, st);
    }
}

static int ys_fail(gni_yamux *ys, int err)
{
    if (ys->ms.err)
        return ys->ms.err;
    ys->ms.err = err;
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
    ys->client = client;
    ys_config(&ys->cfg, cfg);
    if (gni_mstate_init(&ys->ms, &ys_mstate_ops, ys->cfg.stream_buffer_max) < 0) {
        gn_free(ys);
        return GN_ENOMEM;
    }
    ys->ms.refuse_max = gni_mstate_refuse_bound(ys->cfg.max_inbound_streams);
    ys->ms.send_max = ys->cfg.session_send_max;
    ys->chunk_max = GNI_MIN((size_t)GNI_YAMUX_CHUNK_MAX, ys->cfg.max_frame_len);
    ys->ping_timeout =
        ys->cfg.keepalive_interval ? ys->cfg.keepalive_interval : GNI_YAMUX_PING_TIMEOUT;
    ys->next_id = client ? 1 : 2;
    ys->next_keepalive = now + ys->cfg.keepalive_interval;
    gni_list_init(&ys->openq);
    *out = ys;
    return 0;
}

void gni_yamux_free(gni_yamux *ys)
{
    if (!ys)
        return;
    gni_mstate_fini(&ys->ms);
    gn_free(ys);
}

int gni_yamux_set_rcmgr(gni_yamux *ys, gn_rcmgr *rm, gn_rcmgr_conn *conn)
{
    return gni_mstate_set_rcmgr(&ys->ms, rm, conn);
}

gn_rcmgr_stream *gni_yamux_stream_span(const gni_yamux *ys, uint32_t id)
{
    return gni_mstate_stream_span(&ys->ms, id);
}

int gni_yamux_error(const gni_yamux *ys)
{
    return ys->ms.err;
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

/*
 * The peer sends @length bytes it was granted: reserved before they are
 * stored, first at GN_RCMGR_PRIO_MEDIUM (refused: memory pressure, Window
 * Updates are held back from now on), then, as the bytes were granted, at
 * GN_RCMGR_PRIO_ALWAYS. False only when even that is refused.
 */
static bool ys_rx_reserve(gni_yamux *ys, uint32_t length)
{
    if (length <= ys->ms.rx_resv - GNI_MIN(ys->ms.rx_resv, ys->ms.buffered)) {
        ys->ms.rx_expect = length; /* covered: the common case */
        return true;
    }
    return gni_mstate_rx_reserve(&ys->ms, length, GN_RCMGR_PRIO_MEDIUM,
                                 "yamux received data (window updates held back)") ||
           gni_mstate_rx_reserve(&ys->ms, length, GN_RCMGR_PRIO_ALWAYS,
                                 "yamux received data (stream reset)");
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
        else if (ys->ms.n_in >= ys->cfg.max_inbound_streams ||
                 ys->ms.n_pending >= ys->cfg.max_pending_streams)
            reason = GN_ESTREAMLIMIT;
        int rc = 0;
        if (!reason) {
            rc = ys_stream_new(ys, id, true, &st);
            if (rc == GN_ERESOURCE)
                reason = GN_ERESOURCE; /* refused with a RST, as above */
            else if (rc < 0)
                return rc;
        }
        if (reason) {
            if (data && length > ys_discard_limit(ys))
                return GN_EFRAMESIZE;
            return gni_mstate_refuse(&ys->ms, id, id, reason);
        }
        gni_mstate_set_pending(&ys->ms, &st->b);
        gni_mstate_raise(&ys->ms, &st->b, GNI_MSTATE_EV_OPENED);
    } else if (!st) {
        /* Never opened: violation. Opened and gone: drain quietly. */
        if (peer_parity ? id > ys->max_peer_id : id >= ys->next_id)
            return GN_EPROTO;
        /* The peer reset a stream we refused before our RST went out: none is owed. */
        if (peer_parity && (flags & GNI_YAMUX_FLAG_RST))
            gni_mstate_refuse_cancel(&ys->ms, id);
        if (data && length > ys_discard_limit(ys))
            return GN_EFRAMESIZE;
        return 0;
    }
    if (flags & GNI_YAMUX_FLAG_ACK) {
        if (st->b.inbound || st->acked)
            return GN_EPROTO;
        st->acked = true;
        gni_list_del(&st->open_link);
    }
    ys->cur_st = st;
    if (!data) {
        if (!st->b.reset) {
            if (st->send_window + length > UINT32_MAX)
                return GN_EWINDOW;
            st->send_window += length;
            ys_check_writable(ys, st);
        }
        return 0;
    }
    if (length == 0)
        return 0;
    if (st->b.reset) {
        if (length > ys_discard_limit(ys))
            return GN_EFRAMESIZE;
        return 0;
    }
    if (st->b.rfin)
        return GN_EPROTO;
    if (length > st->recv_window)
        return GN_EWINDOW;
    st->recv_window -= length;
    if (st->b.released) {
        ys->body_mode = YS_BODY_CREDIT;
    } else if (ys->ms.buffered + length > ys->cfg.session_buffer_max) {
        gni_mstate_reset_local(&ys->ms, &st->b, GN_ETOOBIG);
    } else if (!ys_rx_reserve(ys, length)) {
        /* granted but cannot be buffered within the limits: never dropped
         * silently, the stream is reset and its owner told */
        ys->rc_resets++;
        gni_mstate_reset_local(&ys->ms, &st->b, GN_ERESOURCE);
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
    gni_mstate_rx_done(&ys->ms);
    if (!st)
        return;
    if (ys->cur_flags & GNI_YAMUX_FLAG_RST) {
        gni_mstate_reset_remote(&ys->ms, &st->b);
    } else if ((ys->cur_flags & GNI_YAMUX_FLAG_FIN) && !st->b.rfin && !st->b.reset) {
        st->b.rfin = true;
        gni_list_del(&st->open_link);
        gni_mstate_check_fin(&ys->ms, &st->b);
    }
    gni_mstate_maybe_free(&ys->ms, &st->b);
}

int gni_yamux_feed(gni_yamux *ys, const uint8_t *in, size_t len, size_t *consumed,
                   gn_time now)
{
    size_t off = 0;
    int rc = 0;
    if (ys->ms.err) {
        if (consumed)
            *consumed = 0;
        return ys->ms.err;
    }
    if (ys->ms.rx_pressure && ys->wu_held)
        (void)ys_relieve(ys); /* each frame (a ping at least) retries */
    while (off < len) {
        if (ys->body_left > 0) {
            size_t k = GNI_MIN(len - off, (size_t)ys->body_left);
            ys_stream *st = ys->cur_st;
            if (ys->body_mode == YS_BODY_STORE && st->b.reset)
                ys->body_mode = YS_BODY_DISCARD; /* reset by the app mid-frame */
            else if (ys->body_mode == YS_BODY_STORE && st->b.released)
                ys->body_mode = YS_BODY_CREDIT;
            if (ys->body_mode == YS_BODY_STORE) {
                size_t got = gni_streamq_append(&st->b.rq, in + off, k, ys->body_left);
                ys->ms.buffered += got;
                if (got < k) {
                    rc = GN_ENOMEM;
                    break;
                }
                gni_mstate_raise(&ys->ms, &st->b, GNI_MSTATE_EV_DATA);
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

bool gni_yamux_want_drain(const gni_yamux *ys)
{
    if (ys->goaway_pending)
        return true;
    if (ys->ms.err)
        return false;
    return ys->ping_pending || ys->pong_cnt || gni_mstate_want_drain(&ys->ms);
}

static bool ys_emit(gn_buf *out, uint8_t type, uint16_t flags, uint32_t id, uint32_t length)
{
    if (gn_buf_left(out) < GNI_YAMUX_HEADER_LEN)
        return false;
    gni_yamux_encode_header(out->last, type, flags, id, length);
    out->last += GNI_YAMUX_HEADER_LEN;
    return true;
}

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
    uint64_t rid;
    while (gni_mstate_refuse_peek(&ys->ms, &rid)) {
        if (!ys_emit(out, GNI_YAMUX_TYPE_WINDOW_UPDATE, GNI_YAMUX_FLAG_RST, (uint32_t)rid, 0))
            return false;
        gni_mstate_refuse_pop(&ys->ms);
    }
    gni_mstream *b;
    while ((b = gni_mstate_ctrl_head(&ys->ms)) != NULL) {
        ys_stream *st = YS_ST(b);
        uint16_t flags = b->ctrl;
        uint32_t delta = (flags & GNI_YAMUX_FLAG_RST) ? 0 : st->credit;
        if (flags || delta) {
            if (!ys_emit(out, GNI_YAMUX_TYPE_WINDOW_UPDATE, flags, YS_ID(st), delta))
                return false;
        }
        st->recv_window += delta;
        st->credit -= delta;
        if (flags & GNI_YAMUX_FLAG_FIN)
            b->lfin_sent = true;
        gni_mstate_ctrl_done(&ys->ms, b);
    }
    return true;
}

static bool ys_drain_data(gni_yamux *ys, gn_buf *out)
{
    gni_mstream *b;
    while ((b = gni_mstate_sched_next(&ys->ms)) != NULL) {
        if (gn_buf_left(out) <= GNI_YAMUX_HEADER_LEN)
            return false;
        ys_stream *st = YS_ST(b);
        size_t queued = gn_bufq_len(&b->sq);
        size_t n = GNI_MIN(queued, ys->chunk_max);
        n = GNI_MIN(n, gn_buf_left(out) - GNI_YAMUX_HEADER_LEN);
        bool fin = n == queued && b->lfin && !b->lfin_sent;
        gni_yamux_encode_header(out->last, GNI_YAMUX_TYPE_DATA, 0, YS_ID(st), (uint32_t)n);
        out->last += GNI_YAMUX_HEADER_LEN;
        size_t left = gni_mstate_sched_take(&ys->ms, b, out->last, n);
        out->last += n;
        /*
         * FIN goes in a frame of its own right behind the data (a Window
         * Update, as go-yamux sends it), never on the Data frame:
         * js-libp2p-yamux 8.x handles a frame's flags before its body and
         * drops the data of a Data|FIN frame. No room: the control queue
         * sends it next.
         */
        if (fin) {
            if (ys_emit(out, GNI_YAMUX_TYPE_WINDOW_UPDATE, GNI_YAMUX_FLAG_FIN, YS_ID(st), 0))
                b->lfin_sent = true;
            else
                gni_mstate_ctrl(&ys->ms, b, GNI_YAMUX_FLAG_FIN);
        }
        if (left == 0 && gni_mstate_maybe_free(&ys->ms, b))
            continue;
        ys_check_writable(ys, st);
    }
    return true;
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
    if (ys->ms.err) {
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
    memset(ev, 0, sizeof(*ev));
    int type;
    gni_mstream *b = gni_mstate_next_event(&ys->ms, &type);
    if (b) {
        ev->type = type; /* GNI_MSTATE_EV_* == GNI_YAMUX_EV_STREAM_* */
        ev->stream_id = (uint32_t)b->hn.key;
        ev->stream_user_data = b->user_data;
        if (type == GNI_MSTATE_EV_RESET)
            ev->err = b->reset_err;
        return 1;
    }
    uint64_t key;
    if (gni_mstate_refused_event(&ys->ms, &key, &ev->count, &ev->err)) {
        ev->type = GNI_YAMUX_EV_STREAM_REFUSED;
        ev->stream_id = (uint32_t)key;
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
        ev->err = ys->ms.err;
        return 1;
    }
    return 0;
}

/* ---- time ------------------------------------------------------------- */

gn_time gni_yamux_next_deadline(const gni_yamux *ys)
{
    gn_time d = GN_TIME_INFINITY;
    if (ys->ms.err)
        return d;
    if (ys->ping_out)
        d = ys->ping_sent + ys->ping_timeout;
    else if (ys->cfg.keepalive_interval)
        d = ys->next_keepalive;
    if (!gni_list_empty(&ys->openq)) {
        const ys_stream *st = GNI_CONTAINER_OF(ys->openq.next, ys_stream, open_link);
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
    if (ys->ms.err)
        return ys->ms.err;
    if (ys->ping_out && now >= ys->ping_sent + ys->ping_timeout)
        return ys_fail(ys, GN_ETIMEDOUT);
    if (!ys->ping_out && ys->cfg.keepalive_interval && now >= ys->next_keepalive)
        ys_start_ping(ys, now);
    while (!gni_list_empty(&ys->openq)) {
        ys_stream *st = GNI_CONTAINER_OF(ys->openq.next, ys_stream, open_link);
        if (st->open_deadline > now)
            break;
        gni_list_del(&st->open_link);
        gni_mstate_reset_local(&ys->ms, &st->b, GN_ETIMEDOUT);
        gni_mstate_maybe_free(&ys->ms, &st->b);
    }
    return 0;
}

int gni_yamux_ping(gni_yamux *ys, gn_time now)
{
    if (ys->ms.err)
        return GN_ECLOSED;
    if (ys->ping_out)
        return GN_EAGAIN;
    ys_start_ping(ys, now);
    return 0;
}

int gni_yamux_go_away(gni_yamux *ys, uint32_t code)
{
    if (ys->ms.err)
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
    if (ys->ms.err)
        return GN_ECLOSED;
    if (ys->goaway_pending || ys->goaway_sent || ys->goaway_recv)
        return GN_EGOAWAY;
    if (ys->ms.n_out >= ys->cfg.max_outbound_streams)
        return GN_ESTREAMLIMIT;
    if (ys->ids_exhausted)
        return GN_ELIMIT;
    ys_stream *st;
    int rc = ys_stream_new(ys, ys->next_id, false, &st);
    if (rc < 0)
        return rc;
    if (ys->next_id > UINT32_MAX - 2)
        ys->ids_exhausted = true;
    else
        ys->next_id += 2;
    if (ys->cfg.initial_window > st->recv_max)
        (void)ys_grow_window(ys, st, ys->cfg.initial_window, GN_RCMGR_PRIO_HIGH);
    gni_mstate_ctrl(&ys->ms, &st->b, GNI_YAMUX_FLAG_SYN);
    if (ys->cfg.stream_open_timeout) {
        st->open_deadline = now + ys->cfg.stream_open_timeout;
        gni_list_add_tail(&ys->openq, &st->open_link);
    }
    *id = YS_ID(st);
    return 0;
}

int gni_yamux_accept(gni_yamux *ys, uint32_t id)
{
    if (ys->ms.err)
        return GN_ECLOSED;
    ys_stream *st = ys_app_find(ys, id);
    if (!st)
        return GN_ENOTFOUND;
    int rc = gni_mstate_accept(&ys->ms, &st->b);
    if (rc < 0)
        return rc;
    if (ys->cfg.initial_window > st->recv_max)
        (void)ys_grow_window(ys, st, ys->cfg.initial_window, GN_RCMGR_PRIO_HIGH);
    gni_mstate_ctrl(&ys->ms, &st->b, GNI_YAMUX_FLAG_ACK);
    return 0;
}

long gni_yamux_stream_write(gni_yamux *ys, uint32_t id, const uint8_t *data, size_t len)
{
    if (ys->ms.err)
        return GN_ECLOSED;
    ys_stream *st = ys_app_find(ys, id);
    if (!st)
        return GN_ENOTFOUND;
    long n = gni_mstate_write(&ys->ms, &st->b, data, len, st->send_window);
    if (n > 0)
        st->send_window -= (uint64_t)n;
    return n;
}

size_t gni_yamux_stream_write_space(const gni_yamux *ys, uint32_t id)
{
    const ys_stream *st = ys_app_find(ys, id);
    if (ys->ms.err || !st || st->b.reset || st->b.pending || st->b.lfin)
        return 0;
    return (size_t)GNI_MIN((uint64_t)gni_mstate_send_room(&ys->ms, &st->b), st->send_window);
}

int gni_yamux_stream_shutdown(gni_yamux *ys, uint32_t id)
{
    return gni_mstate_stream_shutdown(&ys->ms, id);
}

int gni_yamux_stream_reset(gni_yamux *ys, uint32_t id)
{
    return gni_mstate_stream_reset(&ys->ms, id);
}

int gni_yamux_stream_peek(const gni_yamux *ys, uint32_t id, gn_slice *out)
{
    return gni_mstate_stream_peek(&ys->ms, id, out);
}

int gni_yamux_stream_consume(gni_yamux *ys, uint32_t id, size_t n)
{
    ys_stream *st = ys_app_find(ys, id);
    if (!st)
        return GN_ENOTFOUND;
    n = gni_mstate_consume(&ys->ms, &st->b, n);
    if (!ys->ms.err)
        ys_credit(ys, st, n);
    return 0;
}

long gni_yamux_stream_read(gni_yamux *ys, uint32_t id, uint8_t *out, size_t len)
{
    ys_stream *st = ys_app_find(ys, id);
    if (!st)
        return GN_ENOTFOUND;
    size_t n = gni_mstate_read(&ys->ms, &st->b, out, GNI_MIN(len, (size_t)LONG_MAX));
    if (!ys->ms.err)
        ys_credit(ys, st, n);
    return (long)n;
}

int gni_yamux_stream_release(gni_yamux *ys, uint32_t id)
{
    ys_stream *st = ys_app_find(ys, id);
    if (!st)
        return GN_ENOTFOUND;
    if (ys->ms.err) {
        ys_stream_free_cb(&ys->ms, &st->b);
        return 0;
    }
    size_t dropped = gni_mstate_release(&ys->ms, &st->b);
    if (!st->b.reset && !st->b.rfin && dropped > 0) {
        /* Orphan still receiving: hand the dropped bytes' credit back. */
        st->credit += (uint32_t)dropped;
        ys_ctrl(ys, st);
    }
    gni_mstate_maybe_free(&ys->ms, &st->b);
    return 0;
}

int gni_yamux_stream_set_user_data(gni_yamux *ys, uint32_t id, void *user_data)
{
    return gni_mstate_stream_set_user_data(&ys->ms, id, user_data);
}

int gni_yamux_stream_set_priority(gni_yamux *ys, uint32_t id, uint8_t prio)
{
    return gni_mstate_stream_set_priority(&ys->ms, id, prio);
}

int gni_yamux_stream_set_window(gni_yamux *ys, uint32_t id, uint32_t window)
{
    ys_stream *st = ys_app_find(ys, id);
    if (!st)
        return GN_ENOTFOUND;
    if (window > ys->cfg.max_window)
        return GN_ERANGE;
    if (window <= st->recv_max || st->b.reset || st->b.rfin || ys->ms.err)
        return 0;
    if (!ys_grow_window(ys, st, window, GN_RCMGR_PRIO_LOW))
        return GN_ERESOURCE;
    ys_ctrl(ys, st);
    return 0;
}

int gni_yamux_stream_get_info(const gni_yamux *ys, uint32_t id, gni_yamux_stream_info *info)
{
    const ys_stream *st = ys_app_find(ys, id);
    if (!st)
        return GN_ENOTFOUND;
    memset(info, 0, sizeof(*info));
    info->state = gni_mstate_stream_state(&st->b);
    if (info->state == GNI_MSTATE_ST_ESTABLISHED && !st->b.inbound && !st->acked)
        info->state = GNI_YAMUX_ST_SYN_SENT;
    info->inbound = st->b.inbound;
    info->priority = st->b.prio;
    info->recv_buffered = gn_bufq_len(&st->b.rq);
    info->recv_window = st->recv_window;
    info->recv_max = st->recv_max;
    info->send_window = st->send_window;
    info->send_queued = gn_bufq_len(&st->b.sq);
    return 0;
}

size_t gni_yamux_buffered(const gni_yamux *ys)
{
    return ys->ms.buffered;
}

size_t gni_yamux_send_queued(const gni_yamux *ys)
{
    return ys->ms.send_queued;
}

void gni_yamux_get_stats(const gni_yamux *ys, gni_yamux_stats *st)
{
    memset(st, 0, sizeof(*st));
    st->streams_inbound = ys->ms.n_in;
    st->streams_outbound = ys->ms.n_out;
    st->streams_pending = ys->ms.n_pending;
    st->recv_buffered = ys->ms.buffered;
    st->send_queued = ys->ms.send_queued;
    st->last_rtt = ys->last_rtt;
    st->streams_refused = ys->ms.refused_total;
    st->rc_refused = ys->ms.rc_refused;
    st->windows_withheld = ys->windows_withheld;
    st->updates_withheld = ys->updates_withheld;
    st->rc_resets = ys->rc_resets;
    st->refused_waiting = ys->ms.refuse_cnt;
    st->pongs_dropped = ys->pongs_dropped;
}
