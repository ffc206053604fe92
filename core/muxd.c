/*
 * Generic stream-multiplexer driver: runs a sans-I/O session core over the
 * stream below and exposes gn_mux_session plus one gn_stream per mux
 * stream. See golemnet/mux_driver.h for the contract. No component is named here.
 *
 * Structure. Everything that calls a handler runs in muxd_pump(), which
 * runs either inline from a callback of the stream below (on_data,
 * on_writable, a write completion), from the session timer, or from a
 * deferred call that consumer and owner calls schedule (they only change
 * the core and set flags). One pump pass: pull the core's events, serve
 * the streams on the ready list (completions, errors, writes, reads, EOF,
 * closes), report the session end, flush output below, resume input, and
 * advance a session close. A pass that made work for another pass repeats
 * (bounded), the rest is deferred to the next loop turn.
 *
 * Memory. A stream object lives until the pump finalizes its close (the
 * consumer's close only flags it), so stream pointers held across handler
 * calls stay valid. The session lives until the stream below is closed and
 * no deferred pump is pending.
 */
#include "golemnet/mux_driver.h"

#include "golemnet/secure_driver.h"

#include "gni.h"
#include "gni_wq.h"

#include <string.h>

/* Passes of one pump call before the rest is deferred. */
#define MUXD_ROUNDS 16
/* Bytes delivered to one stream per service before others get a turn. */
#define MUXD_DELIVER_MAX (256u * 1024u)
/*
 * Spare output chunks kept for reuse while writes are in flight (a burst
 * reuses them). An idle session (no write in flight) keeps none: with many
 * mostly idle sessions (thousands of channels in one process) spare 32 KiB
 * chunks were most of the memory, and a malloc of a chunk per burst costs
 * nothing measurable next to the write.
 */
#define MUXD_SPARE_MAX 4u
/*
 * Input fed per loop turn before the session yields to the loop. A busy
 * session would otherwise take everything the stream below has buffered in
 * one turn (the memory transport delivers up to 16 x its queue size), and
 * every other event on the loop, including the answer to a small message,
 * would wait for that turn to end.
 */
#define MUXD_TURN_IN (256u << 10)

typedef struct muxd_session muxd_session;
typedef struct muxd_stream muxd_stream;

/* A chunk of core output written below: GN_MUXD_OUT_CHUNK data bytes, or
 * exactly the bytes drained when the core had little queued (muxd_flush). */
typedef struct muxd_obuf {
    struct muxd_obuf *next;
    muxd_session *ss;
    size_t len;
    size_t cap;
    uint8_t data[];
} muxd_obuf;

/*
 * Small output: when the core has at most half this queued, it is drained
 * into a buffer of this size on the stack and written in a chunk of exactly
 * the drained size (one copy of at most a few KiB). Control frames,
 * acknowledgements and small messages go that way: a session that sends
 * little (most of them, with thousands of channels in a process) no longer
 * has 32 KiB allocated per write in flight.
 */
#define MUXD_OBUF_SMALL 4096u

/* A waiting gn_mux_ping caller. */
typedef struct muxd_ping {
    struct muxd_ping *next;
    gn_mux_ping_cb cb;
    void *arg;
} muxd_ping;

struct muxd_stream {
    gn_stream s; /* first */
    muxd_session *ss; /* NULL once detached (session freed) */
    const char *muxer;
    uint64_t id;      /* the core's handle */
    uint64_t wire_id; /* what GN_QUERY_STREAM_ID reports */
    bool inbound;
    bool accepted;    /* inbound: accepted in the core */
    bool closing;     /* the consumer closed it */
    bool reset_req;   /* ... abortively */
    bool dead;        /* the core stream is reset or the session ended */
    bool has_data;    /* the core may hold unread bytes (on the rx list) */
    bool fin_pending; /* the core reported FIN */
    bool fin_done;
    bool err_done;
    bool core_blocked;  /* the core took less than offered: wait for WRITABLE */
    bool shut_pending;  /* shutdown waits for cur */
    bool shut;          /* core shutdown done */
    bool in_ready;
    bool active;        /* traffic since the last idle scan (stream_idle_timeout) */
    gn_time idle_since; /* idle scan: time the stream was last seen active */
    int err;            /* error to report (err_done once reported) */
    int cancel_status;  /* status for writes cut short by err */
    gni_wq wq;          /* accepted writes: taken ones wait (done) for their completion */
    gni_wreq *cur;      /* write not fully taken by the core (the queue's last) */
    muxd_stream *prev, *next;         /* session's stream list */
    muxd_stream *ready_next;
    muxd_stream *rx_prev, *rx_next;   /* streams that may hold unread bytes */
    bool on_rx;
};

struct muxd_session {
    gn_mux_session base; /* first: mux, below, user_data */
    const gn_muxd_vtbl *vt;
    void *core;
    gn_loop *loop;
    gn_mux_session_cbs cbs;
    gn_timer timer;
    gn_time armed; /* deadline the timer is armed for, or GN_TIME_INFINITY */
    gn_time idle_timeout; /* config stream_idle_timeout; 0: off */
    gn_time idle_scan_at; /* next idle scan, or GN_TIME_INFINITY (no streams) */
    /* streams */
    muxd_stream *streams;
    muxd_stream *ready_head, *ready_tail;
    muxd_stream *rx_head;
    uint32_t n_open, n_in, n_out;
    /* output */
    muxd_obuf *blocked; /* refused by below (GN_EAGAIN) */
    muxd_obuf *spare;
    unsigned nspare;
    size_t inflight;    /* bytes written below, not completed */
    unsigned nwrites;   /* writes below not completed */
    /* input */
    bool rx_held;       /* input held back, reading below stopped */
    uint8_t *hold;      /* received bytes not yet fed (one delivery of below) */
    size_t hold_len, hold_cap;
    size_t turn_in;     /* bytes fed since the last deferred pump (loop turn) */
    bool turn_yield;    /* input stopped for the turn: resume next turn */
    /* pump */
    bool pump_scheduled;
    bool in_pump;
    bool again;
    bool zombie;        /* freed by the pending deferred pump */
    /* lifecycle */
    bool ended;
    int end_err;
    bool end_reported;
    bool below_shut;
    bool local_goaway;
    bool remote_goaway;
    bool closing;       /* the owner called session_close */
    bool close_started;
    bool below_closing;
    bool linger_expired;
    gn_mux_close_cb close_cb;
    void *close_arg;
    /* ping */
    muxd_ping *pings;
    gn_time last_rtt;
    gn_rcmgr *rm; /* attached resource manager (for log lines), or NULL */
};

static const gn_stream_ops muxd_stream_ops;
static void muxd_pump(muxd_session *ss);
static void muxd_session_end(muxd_session *ss, int err);

/* ---- small helpers ----------------------------------------------------- */

static gn_time muxd_now(const muxd_session *ss)
{
    return gn_loop_now(ss->loop);
}

/* Idle scan period: a quarter of stream_idle_timeout, at least 1 ms. */
static gn_time muxd_idle_period(const muxd_session *ss)
{
    gn_time p = ss->idle_timeout / 4;
    return p < GN_MS ? GN_MS : p;
}

static void muxd_pump_deferred(gn_loop *loop, void *arg)
{
    (void)loop;
    muxd_session *ss = arg;
    ss->pump_scheduled = false;
    if (ss->zombie) {
        gn_free(ss);
        return;
    }
    ss->turn_in = 0; /* a new loop turn */
    ss->turn_yield = false;
    muxd_pump(ss);
}

/* Asks for a pump pass: the running one, or a deferred one. */
static void muxd_schedule(muxd_session *ss)
{
    if (ss->in_pump) {
        ss->again = true;
        return;
    }
    if (ss->pump_scheduled || ss->zombie) {
        return;
    }
    int rc = gn_loop_defer(ss->loop, muxd_pump_deferred, ss);
    if (rc < 0) {
        GN_LOG(GN_LOG_ERR, ss->base.mux->ops->name, "cannot defer: %s", gn_err_name(rc));
        return;
    }
    ss->pump_scheduled = true;
}

static void muxd_ready(muxd_session *ss, muxd_stream *st)
{
    if (ss->zombie) {
        return; /* the session is being torn down; no more turns */
    }
    if (!st->in_ready) {
        st->in_ready = true;
        st->ready_next = NULL;
        if (ss->ready_tail) {
            ss->ready_tail->ready_next = st;
        } else {
            ss->ready_head = st;
        }
        ss->ready_tail = st;
    }
    muxd_schedule(ss);
}

static void muxd_rx_add(muxd_session *ss, muxd_stream *st)
{
    if (st->on_rx) {
        return;
    }
    st->on_rx = true;
    st->rx_prev = NULL;
    st->rx_next = ss->rx_head;
    if (ss->rx_head) {
        ss->rx_head->rx_prev = st;
    }
    ss->rx_head = st;
}

static void muxd_rx_del(muxd_session *ss, muxd_stream *st)
{
    if (!st->on_rx) {
        return;
    }
    st->on_rx = false;
    if (st->rx_prev) {
        st->rx_prev->rx_next = st->rx_next;
    } else {
        ss->rx_head = st->rx_next;
    }
    if (st->rx_next) {
        st->rx_next->rx_prev = st->rx_prev;
    }
    st->rx_prev = st->rx_next = NULL;
}

static void muxd_link(muxd_session *ss, muxd_stream *st)
{
    st->prev = NULL;
    st->next = ss->streams;
    if (ss->streams) {
        ss->streams->prev = st;
    }
    ss->streams = st;
}

static void muxd_unlink(muxd_session *ss, muxd_stream *st)
{
    if (st->prev) {
        st->prev->next = st->next;
    } else if (ss->streams == st) {
        ss->streams = st->next;
    }
    if (st->next) {
        st->next->prev = st->prev;
    }
    st->prev = st->next = NULL;
}

/* ---- writes ------------------------------------------------------------- */

/* Reports every waiting completion, and cur with @cur_status. */
static void muxd_complete_all(muxd_stream *st, int cur_status)
{
    st->cur = NULL;
    gni_wq_cancel_all(&st->wq, cur_status);
}

/* In a write of many slices, consecutive slices of at most MUXD_SMALL bytes
 * are copied into one piece of at most MUXD_GATHER bytes and handed to the
 * core in one call (the core copies them into its queue anyway; one call a
 * slice cost about 40% of the small-message path); larger slices go as
 * they are. */
#define MUXD_GATHER 4096u
#define MUXD_SMALL 512u
/* Only for writes of many slices (batches of small messages): a write of a
 * few slices goes as it is, so the core sizes its queue chunks as before. */
#define MUXD_GATHER_MIN_IOV 16u

/* Hands what the core takes of @w. Returns 1 complete, 0 partial, or an error. */
static int muxd_push(muxd_session *ss, muxd_stream *st, gni_wreq *w)
{
    uint8_t buf[MUXD_GATHER];
    gn_slice sl;
    /* bounded: each pass takes a whole piece or returns */
    while (gni_wreq_peek(w, &sl)) {
        size_t k = w->iovcnt >= MUXD_GATHER_MIN_IOV && sl.len < w->left
                       ? gni_wreq_gather(w, buf, sizeof buf, MUXD_SMALL)
                       : 0;
        if (k > sl.len) {
            sl = gn_slice_of(buf, k); /* several small slices in one piece */
        }
        long n = ss->vt->write(ss->core, st->id, sl.base, sl.len);
        if (n < 0) {
            return (int)n;
        }
        gni_wq_advance(&st->wq, w, (size_t)n);
        if ((size_t)n < sl.len) {
            return 0;
        }
    }
    return 1;
}

/* Accepts a peer stream in the core on first use. */
static void muxd_accept(muxd_session *ss, muxd_stream *st)
{
    if (st->inbound && !st->accepted) {
        st->accepted = true;
        if (!ss->ended && !st->dead) {
            (void)ss->vt->accept(ss->core, st->id);
        }
    }
}

/* ---- stream ops ---------------------------------------------------------- */

/* The error a dead stream reports to calls. */
static int muxd_dead_err(const muxd_stream *st)
{
    return st->err < 0 ? st->err : GN_ECLOSED;
}

static int muxd_s_write(gn_stream *s, const gn_slice *iov, size_t iovcnt, gn_write_cb cb,
                        void *arg)
{
    muxd_stream *st = (muxd_stream *)s;
    muxd_session *ss = st->ss;
    if (!ss || ss->ended || ss->closing) {
        return GN_ECLOSED;
    }
    if (st->dead || st->err) {
        return muxd_dead_err(st);
    }
    if (st->cur) {
        return gni_wq_refuse(&st->wq);
    }
    size_t len = 0;
    int rc = gni_wq_admit(&st->wq, iov, iovcnt, &len);
    if (rc < 0) {
        return rc;
    }
    gni_wreq *w;
    if ((rc = gni_wq_push(&st->wq, iov, iovcnt, len, cb, arg, true, 0, &w)) < 0) {
        return rc;
    }
    muxd_accept(ss, st);
    st->active = true;
    rc = muxd_push(ss, st, w);
    if (rc < 0) {
        if (w->left == w->len) {
            gni_wq_drop(&st->wq, w);
            return rc;
        }
        /* part of it went in: it was accepted, report the failure */
        gni_wq_set_done(w, rc);
    } else if (rc == 1) {
        gni_wq_set_done(w, 0);
    } else {
        st->cur = w;
        st->core_blocked = true;
    }
    muxd_ready(ss, st);
    return 0;
}

static int muxd_s_read_start(gn_stream *s)
{
    muxd_stream *st = (muxd_stream *)s;
    muxd_session *ss = st->ss;
    if (ss) {
        muxd_accept(ss, st);
        muxd_ready(ss, st);
    }
    return 0;
}

static int muxd_s_read_stop(gn_stream *s)
{
    (void)s; /* delivery checks the reading flag; unread bytes keep the window closed */
    return 0;
}

static int muxd_s_shutdown(gn_stream *s)
{
    muxd_stream *st = (muxd_stream *)s;
    muxd_session *ss = st->ss;
    if (!ss || ss->ended || ss->closing) {
        return GN_ECLOSED;
    }
    if (st->dead || st->err) {
        return muxd_dead_err(st);
    }
    muxd_accept(ss, st);
    st->active = true;
    if (st->cur) {
        st->shut_pending = true; /* FIN after the pending write */
        return 0;
    }
    int rc = ss->vt->shutdown(ss->core, st->id);
    if (rc < 0) {
        return rc;
    }
    st->shut = true;
    muxd_schedule(ss);
    return 0;
}

static void muxd_detached_close(gn_loop *loop, void *arg)
{
    (void)loop;
    muxd_stream *st = arg;
    muxd_complete_all(st, GN_ECANCELED);
    gn_stream_emit_closed(&st->s);
    gni_wq_fini(&st->wq);
    gn_free(st);
}

static void muxd_begin_close(muxd_stream *st, bool reset)
{
    st->closing = true;
    st->reset_req = reset;
    if (st->ss) {
        muxd_ready(st->ss, st);
    } else if (gn_loop_defer(st->s.loop, muxd_detached_close, st) < 0) {
        GN_LOG(GN_LOG_ERR, "mux", "cannot defer a stream close: stream leaked");
    }
}

static void muxd_s_close(gn_stream *s)
{
    muxd_begin_close((muxd_stream *)s, false);
}

static void muxd_s_reset(gn_stream *s)
{
    muxd_begin_close((muxd_stream *)s, true);
}

static int muxd_copy_out(void *out, size_t out_len, const void *val, size_t len)
{
    if (!out || out_len < len) {
        return GN_ENOSPC;
    }
    memcpy(out, val, len);
    return (int)len;
}

static int muxd_s_query(gn_stream *s, int key, void *out, size_t out_len)
{
    muxd_stream *st = (muxd_stream *)s;
    switch (key) {
    case GN_QUERY_STREAM_ID:
        return muxd_copy_out(out, out_len, &st->wire_id, sizeof st->wire_id);
    case GN_QUERY_MUXER:
        return muxd_copy_out(out, out_len, st->muxer, strlen(st->muxer) + 1);
    case GN_QUERY_RTT: {
        if (!st->ss || !st->ss->vt->ping) {
            return GN_ENOTSUP;
        }
        gn_time rtt = st->ss->last_rtt;
        return muxd_copy_out(out, out_len, &rtt, sizeof rtt);
    }
    case GN_QUERY_RCMGR_STREAM: {
        gn_rcmgr_stream *rs = NULL;
        if (st->ss && st->ss->core && st->ss->vt->stream_span && !st->closing) {
            rs = st->ss->vt->stream_span(st->ss->core, st->id);
        }
        return rs ? muxd_copy_out(out, out_len, &rs, sizeof rs) : GN_ENOTSUP;
    }
    default:
        return GN_ENOTSUP; /* core asks the stream below */
    }
}

static const gn_stream_ops muxd_stream_ops = {
    .abi = GN_STREAM_ABI,
    .name = "mux",
    .write = muxd_s_write,
    .read_start = muxd_s_read_start,
    .read_stop = muxd_s_read_stop,
    .shutdown = muxd_s_shutdown,
    .reset = muxd_s_reset,
    .close = muxd_s_close,
    .query = muxd_s_query,
};

static muxd_stream *muxd_stream_new(muxd_session *ss, uint64_t id, bool inbound)
{
    muxd_stream *st = gn_calloc(1, sizeof *st);
    if (!st) {
        return NULL;
    }
    if (gn_stream_init(&st->s, &muxd_stream_ops, ss->loop, ss->base.below) < 0) {
        gn_free(st);
        return NULL;
    }
    gni_wq_init(&st->wq, &st->s, 0, 0); /* bound: one write not taken (cur) */
    st->ss = ss;
    st->muxer = ss->base.mux->ops->name;
    st->id = id;
    st->wire_id = ss->vt->wire_id ? ss->vt->wire_id(id) : id;
    st->inbound = inbound;
    if (ss->idle_timeout) {
        gn_time now = muxd_now(ss);
        st->idle_since = now;
        if (ss->idle_scan_at == GN_TIME_INFINITY) {
            ss->idle_scan_at = now + muxd_idle_period(ss);
        }
    }
    (void)ss->vt->set_user_data(ss->core, id, st);
    muxd_link(ss, st);
    ss->n_open++;
    if (inbound) {
        ss->n_in++;
    } else {
        ss->n_out++;
    }
    return st;
}

/* ---- stream service (pump only) ------------------------------------------ */

/* Final close of a consumer-closed stream: the core lets go, then the close callback. */
static void muxd_finalize(muxd_session *ss, muxd_stream *st)
{
    if (st->in_ready) {
        return; /* queued again meanwhile: that turn finalizes it */
    }
    bool cut = st->cur != NULL;
    muxd_complete_all(st, GN_ECANCELED);
    if (!ss->ended && !st->dead && !(st->inbound && !st->accepted)) {
        if (st->reset_req || cut) {
            (void)ss->vt->reset(ss->core, st->id);
        } else if (!st->shut) {
            (void)ss->vt->shutdown(ss->core, st->id); /* graceful: FIN */
        }
    }
    /* an unaccepted peer stream is refused (reset) by the release */
    (void)ss->vt->release(ss->core, st->id);
    muxd_rx_del(ss, st);
    muxd_unlink(ss, st);
    ss->n_open--;
    if (st->inbound) {
        ss->n_in--;
    } else {
        ss->n_out--;
    }
    ss->again = true; /* released bytes may let input resume; the release may need output */
    gn_stream_emit_closed(&st->s);
    gni_wq_fini(&st->wq);
    gn_free(st);
}

/* Delivers unread bytes while the consumer reads. */
static void muxd_deliver(muxd_session *ss, muxd_stream *st)
{
    size_t budget = MUXD_DELIVER_MAX;
    while (st->has_data && !st->closing && !st->err && gn_stream_is_reading(&st->s)) {
        if (budget == 0) {
            muxd_ready(ss, st); /* let the other streams have a turn */
            return;
        }
        gn_slice sl;
        int rc = ss->vt->peek(ss->core, st->id, &sl);
        if (rc <= 0 || sl.len == 0) {
            st->has_data = false;
            muxd_rx_del(ss, st);
            break;
        }
        size_t n = GNI_MIN(sl.len, budget);
        gn_stream_emit_data(&st->s, sl.base, n);
        /* delivered (the stream is freed only by this pump): return the credit */
        (void)ss->vt->consume(ss->core, st->id, n);
        budget -= n;
        ss->again = true;
    }
}

static void muxd_service(muxd_session *ss, muxd_stream *st)
{
    if (st->closing) {
        muxd_finalize(ss, st);
        return;
    }
    /* completions of writes the core took */
    for (gni_wreq *w; !st->closing && (w = gni_wq_head(&st->wq)) && w->done;) {
        gni_wq_complete(&st->wq, w, w->status);
    }
    if (st->closing) {
        muxd_finalize(ss, st);
        return;
    }
    if (st->err) {
        if (!st->err_done) {
            st->err_done = true;
            st->has_data = false;
            muxd_rx_del(ss, st);
            muxd_complete_all(st, st->cancel_status ? st->cancel_status : st->err);
            if (!st->closing) {
                gn_stream_emit_error(&st->s, st->err);
            }
        }
        if (st->closing) {
            muxd_finalize(ss, st);
        }
        return;
    }
    /*
     * the rest of a write the core took only in part (a WRITABLE the core
     * raises meanwhile for another stream, its send budget turn passed on,
     * is pulled by a later pass: the bytes taken make output, and its
     * completion pumps)
     */
    if (st->cur && !st->core_blocked) {
        st->core_blocked = true;
        int rc = muxd_push(ss, st, st->cur);
        if (rc != 0) {
            gni_wreq *w = st->cur;
            st->cur = NULL;
            gni_wq_complete(&st->wq, w, rc < 0 ? rc : 0);
            if (st->closing) {
                muxd_finalize(ss, st);
                return;
            }
        }
    }
    if (!st->cur && st->shut_pending && !st->dead) {
        st->shut_pending = false;
        st->shut = true;
        (void)ss->vt->shutdown(ss->core, st->id);
    }
    if (!st->cur && !st->shut_pending && gni_wq_writable_due(&st->wq)) {
        gn_stream_emit_writable(&st->s);
        if (st->closing) {
            muxd_finalize(ss, st);
            return;
        }
    }
    muxd_deliver(ss, st);
    if (!st->closing && st->fin_pending && !st->fin_done && !st->has_data && !st->err &&
        gn_stream_is_reading(&st->s)) {
        st->fin_done = true;
        gn_stream_emit_eof(&st->s);
    }
    if (st->closing) {
        muxd_finalize(ss, st);
    }
}

/* Marks @st failed with @err; reported by its service. */
static void muxd_stream_fail(muxd_session *ss, muxd_stream *st, int err, int cancel_status)
{
    if (st->err || st->closing) {
        return;
    }
    st->dead = true;
    st->err = err;
    st->cancel_status = cancel_status;
    muxd_ready(ss, st);
}

/* ---- events ---------------------------------------------------------------- */

static void muxd_pings_finish(muxd_session *ss, int status, gn_time rtt)
{
    muxd_ping *p = ss->pings;
    ss->pings = NULL;
    while (p) {
        muxd_ping *next = p->next;
        p->cb(p->arg, status, rtt);
        gn_free(p);
        p = next;
    }
}

static void muxd_on_opened(muxd_session *ss, uint64_t id)
{
    if (ss->closing || ss->ended || ss->local_goaway) {
        (void)ss->vt->reset(ss->core, id);
        (void)ss->vt->release(ss->core, id);
        return;
    }
    muxd_stream *st = muxd_stream_new(ss, id, true);
    if (!st) {
        (void)ss->vt->reset(ss->core, id);
        (void)ss->vt->release(ss->core, id);
        return;
    }
    ss->cbs.on_stream(&ss->base, ss->base.user_data, &st->s);
}

static void muxd_events(muxd_session *ss)
{
    gn_muxd_event ev;
    /* bounded: events are coalesced per stream; new ones come from callbacks */
    for (int guard = 0; guard < 100000 && ss->vt->next_event(ss->core, &ev) == 1; guard++) {
        muxd_stream *st = ev.stream_user_data;
        switch (ev.type) {
        case GN_MUXD_EV_STREAM_OPENED:
            muxd_on_opened(ss, ev.stream_id);
            break;
        case GN_MUXD_EV_STREAM_DATA:
            if (st && !st->closing) {
                st->active = true;
                st->has_data = true;
                muxd_rx_add(ss, st);
                muxd_ready(ss, st);
            }
            break;
        case GN_MUXD_EV_STREAM_WRITABLE:
            if (st) {
                st->active = true;
                st->core_blocked = false;
                muxd_ready(ss, st);
            }
            break;
        case GN_MUXD_EV_STREAM_FIN:
            if (st) {
                st->active = true;
                st->fin_pending = true;
                muxd_ready(ss, st);
            }
            break;
        case GN_MUXD_EV_STREAM_RESET:
            if (st) {
                muxd_stream_fail(ss, st, ev.err < 0 ? ev.err : GN_ESTREAMRESET, 0);
            }
            break;
        case GN_MUXD_EV_STREAM_REFUSED:
            if (ev.err == GN_ERESOURCE && ss->rm) {
                GN_LOG(GN_LOG_INFO, ss->base.mux->ops->name,
                       "%u peer streams refused: %s (resource manager: %s)", (unsigned)ev.count,
                       gn_err_name(ev.err), gn_rcmgr_last_refusal_scope(ss->rm));
            } else {
                GN_LOG(GN_LOG_INFO, ss->base.mux->ops->name, "%u peer streams refused: %s",
                       (unsigned)ev.count, gn_err_name(ev.err));
            }
            break;
        case GN_MUXD_EV_PING_RTT:
            ss->last_rtt = ev.rtt;
            muxd_pings_finish(ss, 0, ev.rtt);
            break;
        case GN_MUXD_EV_GOAWAY: {
            ss->remote_goaway = true;
            int err = ss->vt->goaway_err ? ss->vt->goaway_err(ev.code)
                                         : (ev.code == 0 ? 0 : GN_EPROTO);
            GN_LOG(GN_LOG_INFO, ss->base.mux->ops->name, "peer sent Go Away, code %u",
                   (unsigned)ev.code);
            if (err < 0) {
                muxd_session_end(ss, err);
            }
            break;
        }
        case GN_MUXD_EV_SESSION_END:
            muxd_session_end(ss, ev.err < 0 ? ev.err : GN_EPROTO);
            break;
        default:
            break;
        }
    }
}

/* ---- session end ------------------------------------------------------------ */

static void muxd_session_end(muxd_session *ss, int err)
{
    if (ss->ended) {
        return;
    }
    ss->ended = true;
    ss->end_err = err;
    GN_LOG(GN_LOG_INFO, ss->base.mux->ops->name, "session ended: %s", gn_err_name(err));
    for (muxd_stream *st = ss->streams; st; st = st->next) {
        if (!st->closing) {
            muxd_stream_fail(ss, st, err, 0);
        }
    }
    if (ss->below_closing) {
        return;
    }
    if (!ss->rx_held) {
        (void)gn_stream_read_stop(ss->base.below);
    }
    muxd_schedule(ss);
}

/* ---- output ------------------------------------------------------------------ */

static void muxd_obuf_put(muxd_session *ss, muxd_obuf *ob)
{
    if (ob->cap == GN_MUXD_OUT_CHUNK && ss->nwrites > 0 && ss->nspare < MUXD_SPARE_MAX) {
        ob->next = ss->spare;
        ss->spare = ob;
        ss->nspare++;
    } else {
        gn_free(ob);
    }
}

static void muxd_spares_free(muxd_session *ss)
{
    while (ss->spare) {
        muxd_obuf *ob = ss->spare;
        ss->spare = ob->next;
        gn_free(ob);
    }
    ss->nspare = 0;
}

/* A chunk of @cap data bytes; full-size ones come from the spares first. */
static muxd_obuf *muxd_obuf_get(muxd_session *ss, size_t cap)
{
    muxd_obuf *ob = cap == GN_MUXD_OUT_CHUNK ? ss->spare : NULL;
    if (ob) {
        ss->spare = ob->next;
        ss->nspare--;
    } else {
        ob = gn_malloc(sizeof *ob + cap);
        if (!ob) {
            return NULL;
        }
        ob->cap = cap;
    }
    ob->next = NULL;
    ob->ss = ss;
    ob->len = 0;
    return ob;
}

static void muxd_written(void *arg, int status)
{
    muxd_obuf *ob = arg;
    muxd_session *ss = ob->ss;
    ss->inflight -= ob->len;
    ss->nwrites--;
    muxd_obuf_put(ss, ob);
    if (ss->nwrites == 0) {
        muxd_spares_free(ss); /* idle: keep no spare chunk */
    }
    if (status < 0 && status != GN_ECANCELED && !ss->closing) {
        muxd_session_end(ss, status);
    }
    muxd_pump(ss);
}

/* Writes @ob below: 1 written, 0 refused (kept as blocked), < 0 failed. */
static int muxd_write_below(muxd_session *ss, muxd_obuf *ob)
{
    gn_slice sl = gn_slice_of(ob->data, ob->len);
    int rc = gn_stream_write(ss->base.below, &sl, 1, muxd_written, ob);
    if (rc == GN_EAGAIN) {
        ss->blocked = ob;
        return 0;
    }
    if (rc < 0) {
        muxd_obuf_put(ss, ob);
        return rc;
    }
    ss->inflight += ob->len;
    ss->nwrites++;
    return 1;
}

/* Drains the core below while the outbound bound allows. */
static void muxd_flush(muxd_session *ss)
{
    if (ss->below_closing) {
        return;
    }
    for (int guard = 0; guard < 1024 && !ss->blocked && ss->inflight < GN_MUXD_OUT_MAX &&
                        ss->vt->want_drain(ss->core);
         guard++) {
        /* little queued: drain on the stack, write an exact-size chunk; a
         * frame that does not fit (GN_ENOSPC) takes the full-size path. A
         * core that cannot tell (no send_queued) always takes that path. */
        size_t queued = ss->vt->send_queued ? ss->vt->send_queued(ss->core) : SIZE_MAX;
        muxd_obuf *ob = NULL;
        gn_buf b;
        int n = GN_ENOSPC;
        if (queued <= MUXD_OBUF_SMALL / 2) {
            uint8_t small[MUXD_OBUF_SMALL];
            gn_buf_init(&b, small, sizeof small);
            n = ss->vt->drain(ss->core, &b, muxd_now(ss));
            if (n > 0) {
                if (!(ob = muxd_obuf_get(ss, (size_t)n))) {
                    muxd_session_end(ss, GN_ENOMEM);
                    return;
                }
                memcpy(ob->data, small, (size_t)n);
            }
        }
        if (n == GN_ENOSPC) {
            if (!(ob = muxd_obuf_get(ss, GN_MUXD_OUT_CHUNK))) {
                muxd_session_end(ss, GN_ENOMEM);
                return;
            }
            gn_buf_init(&b, ob->data, ob->cap);
            n = ss->vt->drain(ss->core, &b, muxd_now(ss));
        }
        if (n <= 0) {
            if (ob) {
                muxd_obuf_put(ss, ob);
            }
            if (n < 0) {
                muxd_session_end(ss, n);
            }
            return;
        }
        ob->len = (size_t)n;
        int rc = muxd_write_below(ss, ob);
        if (rc < 0) {
            muxd_session_end(ss, rc);
            return;
        }
        if (rc == 0) {
            return;
        }
    }
}

/* ---- input --------------------------------------------------------------------- */

/* Bytes of input the core may take now without a bound being exceeded. */
static size_t muxd_rx_budget(const muxd_session *ss)
{
    const gn_mux_config *cfg = &ss->base.mux->config;
    size_t smax = cfg->session_buffer_max ? cfg->session_buffer_max : (size_t)64 << 20;
    size_t flen = cfg->max_frame_len ? cfg->max_frame_len : (size_t)1 << 20;
    size_t slack = GNI_MIN(flen, smax / 4);
    size_t used = ss->vt->buffered(ss->core);
    if (used + slack >= smax) {
        return 0;
    }
    size_t budget = smax - slack - used;
    if (!ss->vt->flow_control) {
        size_t tmax = cfg->stream_buffer_max ? cfg->stream_buffer_max : (size_t)1 << 20;
        size_t tslack = GNI_MIN(flen, tmax / 4);
        for (const muxd_stream *st = ss->rx_head; st; st = st->rx_next) {
            size_t b = ss->vt->stream_buffered(ss->core, st->id);
            if (b + tslack >= tmax) {
                return 0;
            }
            budget = GNI_MIN(budget, tmax - tslack - b);
        }
    }
    return budget;
}

/* Feeds what the bounds allow of @data; returns the bytes used (all on a core error). */
static size_t muxd_feed(muxd_session *ss, const uint8_t *data, size_t len)
{
    size_t n = GNI_MIN(len, muxd_rx_budget(ss));
    size_t turn_left = ss->turn_in < MUXD_TURN_IN ? MUXD_TURN_IN - ss->turn_in : 0;
    if (turn_left < n) {
        n = turn_left;
        ss->turn_yield = true; /* resumed by a deferred pump, next turn */
    }
    if (n == 0) {
        return 0;
    }
    ss->turn_in += n;
    size_t consumed = 0;
    int rc = ss->vt->feed(ss->core, data, n, &consumed, muxd_now(ss));
    ss->again = true;
    /* on an error the core reports SESSION_END; the rest of the input is moot */
    return rc < 0 ? len : n;
}

/* Keeps @len bytes of input for later and stops reading below. */
static void muxd_hold(muxd_session *ss, const uint8_t *data, size_t len)
{
    if (ss->hold_len + len > ss->hold_cap) {
        size_t cap = ss->hold_len + len;
        uint8_t *p = gn_realloc(ss->hold, cap);
        if (!p) {
            muxd_session_end(ss, GN_ENOMEM);
            return;
        }
        ss->hold = p;
        ss->hold_cap = cap;
    }
    memcpy(ss->hold + ss->hold_len, data, len);
    ss->hold_len += len;
    if (!ss->rx_held) {
        ss->rx_held = true;
        (void)gn_stream_read_stop(ss->base.below);
    }
}

/* Feeds held input once the bounds allow; reading below resumes when it is all in. */
static void muxd_resume_input(muxd_session *ss)
{
    if (!ss->rx_held || ss->ended || ss->closing) {
        return;
    }
    size_t n = muxd_feed(ss, ss->hold, ss->hold_len);
    if (ss->ended) {
        ss->hold_len = 0;
        return;
    }
    if (n > 0) {
        memmove(ss->hold, ss->hold + n, ss->hold_len - n);
        ss->hold_len -= n;
    }
    if (ss->hold_len == 0) {
        ss->rx_held = false;
        (void)gn_stream_read_start(ss->base.below);
    }
}

static void muxd_below_data(gn_stream *below, void *ud, const uint8_t *data, size_t len)
{
    (void)below;
    muxd_session *ss = ud;
    if (ss->ended || ss->below_closing) {
        return;
    }
    size_t n = ss->rx_held ? 0 : muxd_feed(ss, data, len);
    if (n < len && !ss->ended) {
        muxd_hold(ss, data + n, len - n);
    }
    muxd_pump(ss);
}

static void muxd_below_eof(gn_stream *below, void *ud)
{
    (void)below;
    muxd_session *ss = ud;
    if (ss->below_closing) {
        return;
    }
    muxd_session_end(ss, GN_EEOF);
    muxd_pump(ss);
}

static void muxd_below_error(gn_stream *below, void *ud, int err)
{
    (void)below;
    muxd_session *ss = ud;
    if (ss->below_closing) {
        return;
    }
    ss->below_shut = true; /* nothing more goes below */
    muxd_session_end(ss, err < 0 ? err : GN_EIO);
    muxd_pump(ss);
}

static void muxd_below_writable(gn_stream *below, void *ud)
{
    (void)below;
    muxd_session *ss = ud;
    if (ss->below_closing) {
        return;
    }
    if (ss->blocked) {
        muxd_obuf *ob = ss->blocked;
        ss->blocked = NULL;
        int rc = muxd_write_below(ss, ob);
        if (rc < 0) {
            muxd_session_end(ss, rc);
        }
    }
    muxd_pump(ss);
}

static const gn_stream_handler muxd_below_handler = {
    .on_data = muxd_below_data,
    .on_eof = muxd_below_eof,
    .on_error = muxd_below_error,
    .on_writable = muxd_below_writable,
};

/* ---- timer ------------------------------------------------------------------- */

/*
 * Idle scan (stream_idle_timeout). The data paths only set st->active (one
 * store, no clock read); this scan, run from the session timer every
 * idle_timeout / 4 while streams exist, turns the flag into a time: an
 * active stream gets idle_since = now, a stream inactive since idle_since
 * for idle_timeout or more is reset with GN_ETIMEDOUT. A stream is thus
 * reset after at least idle_timeout and less than 1.25 x idle_timeout of
 * silence. Cost: O(streams) every idle_timeout / 4 per session.
 */
static void muxd_idle_scan(muxd_session *ss, gn_time now)
{
    bool any = false;
    for (muxd_stream *st = ss->streams; st; st = st->next) {
        if (st->closing || st->dead || st->err) {
            continue;
        }
        if (st->active) {
            st->active = false;
            st->idle_since = now;
        } else if (now - st->idle_since >= ss->idle_timeout) {
            char peer[128] = "?";
            gn_peer_id pid;
            if (gn_stream_query(ss->base.below, GN_QUERY_REMOTE_PEER_ID, &pid, sizeof pid) >=
                0) {
                (void)gn_peer_id_to_string(&pid, peer, sizeof peer);
            }
            GN_LOG(GN_LOG_INFO, ss->base.mux->ops->name,
                   "%s stream %llu of session %p (peer %s) idle for at least %llu ms: "
                   "reset, GN_ETIMEDOUT",
                   st->inbound ? "inbound" : "outbound", (unsigned long long)st->wire_id,
                   (void *)ss, peer,
                   (unsigned long long)((now - st->idle_since) / GN_MS));
            (void)ss->vt->reset(ss->core, st->id);
            muxd_stream_fail(ss, st, GN_ETIMEDOUT, 0);
            continue;
        }
        any = true;
    }
    ss->idle_scan_at = any ? now + muxd_idle_period(ss) : GN_TIME_INFINITY;
}

static void muxd_timer_fn(gn_timer *t, void *arg)
{
    (void)t;
    muxd_session *ss = arg;
    ss->armed = GN_TIME_INFINITY;
    if (ss->closing) {
        ss->linger_expired = true;
    } else if (!ss->ended) {
        gn_time now = muxd_now(ss);
        if (ss->vt->next_deadline(ss->core) <= now) {
            (void)ss->vt->on_expiry(ss->core, now);
        }
        if (ss->idle_scan_at <= now) {
            muxd_idle_scan(ss, now);
        }
    }
    muxd_pump(ss);
}

static void muxd_arm(muxd_session *ss)
{
    if (ss->closing || ss->below_closing) {
        return; /* the linger timer is armed by the close */
    }
    gn_time dl = GN_TIME_INFINITY;
    if (!ss->ended) {
        dl = ss->vt->next_deadline(ss->core);
        if (ss->n_open == 0) {
            ss->idle_scan_at = GN_TIME_INFINITY; /* set again by the next stream */
        } else if (ss->idle_scan_at < dl) {
            dl = ss->idle_scan_at;
        }
    }
    if (dl == ss->armed) {
        return;
    }
    ss->armed = dl;
    if (dl == GN_TIME_INFINITY) {
        gn_timer_stop(&ss->timer);
        return;
    }
    gn_time now = muxd_now(ss);
    if (gn_timer_start(&ss->timer, dl > now ? dl - now : 0, muxd_timer_fn, ss) < 0) {
        ss->armed = GN_TIME_INFINITY;
    }
}

/* ---- close ---------------------------------------------------------------------- */

/* Runs after below closed: streams detach, the core goes, the owner hears. */
static void muxd_below_closed(gn_stream *below, void *arg)
{
    (void)below;
    muxd_session *ss = arg;
    gn_timer_stop(&ss->timer);
    ss->base.below = NULL;
    while (ss->ready_head) {
        muxd_stream *st = ss->ready_head;
        ss->ready_head = st->ready_next;
        st->ready_next = NULL;
        st->in_ready = false;
    }
    ss->ready_tail = NULL;
    ss->zombie = true; /* no more pumps; muxd_ready() is a no-op from here */
    while (ss->streams) {
        muxd_stream *st = ss->streams;
        if (st->closing) {
            muxd_finalize(ss, st);
            continue;
        }
        muxd_unlink(ss, st);
        muxd_rx_del(ss, st);
        st->in_ready = false;
        st->ss = NULL;
        st->s.below = NULL;
        st->dead = true;
        if (!st->err) {
            st->err = GN_ECLOSED;
        }
        st->cancel_status = GN_ECANCELED;
        muxd_complete_all(st, GN_ECANCELED);
        if (!st->err_done && !st->closing) {
            st->err_done = true;
            gn_stream_emit_error(&st->s, st->err);
        }
    }
    muxd_pings_finish(ss, GN_ECLOSED, 0);
    ss->vt->destroy(ss->core);
    ss->core = NULL;
    if (ss->blocked) {
        gn_free(ss->blocked);
        ss->blocked = NULL;
    }
    muxd_spares_free(ss);
    gn_free(ss->hold);
    ss->hold = NULL;
    ss->hold_len = ss->hold_cap = 0;
    gn_mux_close_cb cb = ss->close_cb;
    void *cb_arg = ss->close_arg;
    if (cb) {
        cb(&ss->base, cb_arg);
    }
    if (!ss->pump_scheduled && !ss->in_pump) {
        gn_free(ss);
    }
}

/* First pump pass after session_close: Go Away, reset streams. */
static void muxd_close_start(muxd_session *ss)
{
    ss->close_started = true;
    if (!ss->ended) {
        if (ss->vt->go_away) {
            (void)ss->vt->go_away(ss->core, 0);
        }
        for (muxd_stream *st = ss->streams; st; st = st->next) {
            if (!st->closing && !st->dead) {
                (void)ss->vt->reset(ss->core, st->id);
            }
        }
    }
    for (muxd_stream *st = ss->streams; st; st = st->next) {
        if (!st->closing) {
            st->dead = true;
            if (!st->err) {
                st->err = GN_ECLOSED;
            }
            st->cancel_status = GN_ECANCELED;
            muxd_ready(ss, st);
        }
    }
    muxd_pings_finish(ss, GN_ECLOSED, 0);
    ss->armed = GN_TIME_INFINITY;
    if (gn_timer_start(&ss->timer, GN_MUXD_LINGER, muxd_timer_fn, ss) < 0) {
        ss->linger_expired = true;
    }
}

/* Closes below once the output is out (or the linger time is over). */
static void muxd_close_progress(muxd_session *ss)
{
    if (ss->below_closing) {
        return;
    }
    bool out_pending = !ss->below_shut &&
                       (ss->blocked || ss->nwrites > 0 || ss->vt->want_drain(ss->core));
    if (out_pending && !ss->linger_expired) {
        return;
    }
    ss->below_closing = true;
    gn_timer_stop(&ss->timer);
    gn_stream_close(ss->base.below, muxd_below_closed, ss);
}

/* ---- the pump ------------------------------------------------------------------- */

static void muxd_pump(muxd_session *ss)
{
    if (ss->in_pump) {
        ss->again = true;
        return;
    }
    if (ss->zombie || !ss->core) {
        return;
    }
    ss->in_pump = true;
    for (int round = 0; round < MUXD_ROUNDS; round++) {
        ss->again = false;
        if (ss->closing && !ss->close_started) {
            muxd_close_start(ss);
        }
        muxd_events(ss);
        /* serve this round's ready streams; streams made ready meanwhile wait */
        muxd_stream *list = ss->ready_head;
        ss->ready_head = ss->ready_tail = NULL;
        while (list) {
            muxd_stream *st = list;
            list = st->ready_next;
            st->ready_next = NULL;
            st->in_ready = false;
            muxd_service(ss, st);
        }
        if (ss->ready_head) {
            ss->again = true;
        }
        if (!ss->ended && ss->remote_goaway && ss->n_open == 0) {
            muxd_session_end(ss, GN_EGOAWAY);
        }
        if (ss->ended && !ss->end_reported && !ss->closing) {
            ss->end_reported = true;
            if (ss->cbs.on_end) {
                ss->cbs.on_end(&ss->base, ss->base.user_data, ss->end_err);
            }
        }
        if (ss->ended) {
            muxd_pings_finish(ss, ss->end_err, 0);
        }
        muxd_flush(ss);
        if (ss->ended && !ss->below_shut && !ss->below_closing && !ss->blocked &&
            !ss->vt->want_drain(ss->core)) {
            ss->below_shut = true;
            (void)gn_stream_shutdown(ss->base.below);
        }
        muxd_resume_input(ss);
        if (ss->closing) {
            muxd_close_progress(ss);
            if (ss->below_closing) {
                break;
            }
        }
        if (!ss->again) {
            break;
        }
    }
    bool more = ss->again;
    ss->again = false;
    ss->in_pump = false;
    if (ss->zombie) {
        /* below closed synchronously inside the pump: free when no deferred pump holds us */
        if (!ss->pump_scheduled) {
            gn_free(ss);
        }
        return;
    }
    if (!ss->below_closing) {
        muxd_arm(ss);
    }
    if ((more || ss->turn_yield) && !ss->below_closing) {
        muxd_schedule(ss);
    }
}

/* ---- session API ------------------------------------------------------------------ */

int gn_muxd_session_new(gn_mux *m, const gn_muxd_vtbl *vt, gn_stream *below, bool initiator,
                         const gn_mux_session_cbs *cbs, void *user_data, gn_mux_session **out)
{
    if (!m || !vt || !below || !cbs || !cbs->on_stream || !out) {
        return GN_EINVAL;
    }
    if (gn_stream_flags(below) & (GN_STREAM_CLOSING | GN_STREAM_CLOSED)) {
        return GN_ECLOSED;
    }
    muxd_session *ss = gn_calloc(1, sizeof *ss);
    if (!ss) {
        return GN_ENOMEM;
    }
    int rc = vt->create(initiator, &m->config, gn_loop_now(m->loop), &ss->core);
    if (rc < 0) {
        gn_free(ss);
        return rc;
    }
    ss->base.mux = m;
    ss->base.below = below;
    ss->base.user_data = user_data;
    ss->vt = vt;
    ss->loop = m->loop;
    ss->cbs = *cbs;
    ss->armed = GN_TIME_INFINITY;
    ss->idle_timeout = m->config.stream_idle_timeout;
    ss->idle_scan_at = GN_TIME_INFINITY;
    gn_timer_init(m->loop, &ss->timer);
    gn_stream_set_handler(below, &muxd_below_handler, ss);
    rc = gn_stream_read_start(below);
    if (rc < 0) {
        gn_stream_set_handler(below, NULL, NULL);
        vt->destroy(ss->core);
        gn_free(ss);
        return rc;
    }
    muxd_schedule(ss); /* arms the keepalive timer */
    *out = &ss->base;
    return 0;
}

int gn_muxd_open_stream(gn_mux_session *ms, gn_stream **out)
{
    muxd_session *ss = (muxd_session *)ms;
    if (!out) {
        return GN_EINVAL;
    }
    if (ss->closing || ss->ended) {
        return GN_ECLOSED;
    }
    if (ss->local_goaway || ss->remote_goaway) {
        return GN_EGOAWAY;
    }
    uint64_t id;
    int rc = ss->vt->open(ss->core, muxd_now(ss), &id);
    if (rc < 0) {
        return rc;
    }
    muxd_stream *st = muxd_stream_new(ss, id, false);
    if (!st) {
        (void)ss->vt->reset(ss->core, id);
        (void)ss->vt->release(ss->core, id);
        return GN_ENOMEM;
    }
    muxd_schedule(ss);
    *out = &st->s;
    return 0;
}

int gn_muxd_set_rcmgr(gn_mux_session *ms, gn_rcmgr *rm, gn_rcmgr_conn *conn)
{
    muxd_session *ss = (muxd_session *)ms;
    if (!ss->vt->set_rcmgr) {
        return GN_ENOTSUP;
    }
    if (!rm && ss->base.below) {
        /* the secured stream below leaves the span too (GN_ENOTSUP: not one) */
        (void)gn_secure_set_rcmgr(ss->base.below, NULL);
    }
    if (!ss->core) {
        return rm ? GN_ECLOSED : 0;
    }
    if (rm && (ss->closing || ss->ended)) {
        return GN_ECLOSED;
    }
    int rc = ss->vt->set_rcmgr(ss->core, rm, conn);
    if (rc == GN_ERESOURCE) {
        GN_LOG(GN_LOG_WARNING, ss->base.mux->ops->name,
               "session refused by the resource manager (%s): closing it",
               gn_rcmgr_last_refusal_scope(rm));
        muxd_session_end(ss, GN_ERESOURCE);
        return rc;
    }
    if (rc == 0 && rm && conn && ss->base.below) {
        /* the secure channel's buffers join the session's under the span */
        rc = gn_secure_set_rcmgr(ss->base.below, gn_rcmgr_conn_span(conn));
        if (rc == GN_ERESOURCE) {
            GN_LOG(GN_LOG_WARNING, ss->base.mux->ops->name,
                   "secure channel buffers refused by the resource manager (%s): closing",
                   gn_rcmgr_last_refusal_scope(rm));
            (void)ss->vt->set_rcmgr(ss->core, NULL, NULL);
            muxd_session_end(ss, GN_ERESOURCE);
            return rc;
        }
        rc = 0; /* GN_ENOTSUP: not a stream of the secure driver */
    }
    if (rc == 0) {
        ss->rm = rm;
    }
    return rc;
}

int gn_muxd_ping(gn_mux_session *ms, gn_mux_ping_cb cb, void *arg)
{
    muxd_session *ss = (muxd_session *)ms;
    if (!ss->vt->ping) {
        return GN_ENOTSUP;
    }
    if (!cb) {
        return GN_EINVAL;
    }
    if (ss->closing || ss->ended) {
        return GN_ECLOSED;
    }
    muxd_ping *p = gn_malloc(sizeof *p);
    if (!p) {
        return GN_ENOMEM;
    }
    int rc = ss->vt->ping(ss->core, muxd_now(ss));
    if (rc < 0 && rc != GN_EAGAIN) {
        gn_free(p);
        return rc;
    }
    /* GN_EAGAIN: a ping is out already; its answer serves this caller too */
    p->cb = cb;
    p->arg = arg;
    p->next = ss->pings;
    ss->pings = p;
    muxd_schedule(ss);
    return 0;
}

void gn_muxd_go_away(gn_mux_session *ms, uint32_t code)
{
    muxd_session *ss = (muxd_session *)ms;
    if (ss->closing || ss->ended || ss->local_goaway) {
        return;
    }
    ss->local_goaway = true;
    if (ss->vt->go_away) {
        (void)ss->vt->go_away(ss->core, code);
    }
    muxd_schedule(ss);
}

int gn_muxd_set_priority(gn_mux_session *ms, gn_stream *s, uint8_t prio)
{
    muxd_session *ss = (muxd_session *)ms;
    if (!s || s->ops != &muxd_stream_ops) {
        return GN_EINVAL;
    }
    muxd_stream *st = (muxd_stream *)s;
    if (st->ss != ss) {
        return st->ss ? GN_EINVAL : GN_ECLOSED;
    }
    if (prio > 7) {
        return GN_ERANGE;
    }
    if (ss->ended || st->closing) {
        return GN_ECLOSED;
    }
    int rc = ss->vt->set_priority(ss->core, st->id, prio);
    return rc == GN_ENOTFOUND ? GN_ECLOSED : rc;
}

void gn_muxd_metrics(gn_mux_session *ms, gn_mux_metrics *m)
{
    muxd_session *ss = (muxd_session *)ms;
    m->streams_open = ss->n_open;
    m->streams_inbound = ss->n_in;
    m->streams_outbound = ss->n_out;
    m->buffered_bytes = ss->core ? ss->vt->buffered(ss->core) : 0;
    m->send_queued_bytes = ss->core && ss->vt->send_queued ? ss->vt->send_queued(ss->core) : 0;
    m->last_rtt = ss->last_rtt;
}

void gn_muxd_session_close(gn_mux_session *ms, gn_mux_close_cb cb, void *arg)
{
    muxd_session *ss = (muxd_session *)ms;
    if (ss->closing) {
        GN_LOG(GN_LOG_ERR, ss->base.mux->ops->name, "session closed twice");
        return;
    }
    ss->closing = true;
    ss->close_cb = cb;
    ss->close_arg = arg;
    muxd_schedule(ss);
}
