/*
 * Muxer stream state (internal; never installed): the stream-state layer
 * the yamux and mplex sans-I/O cores share. Each core keeps only its frame
 * format, its flow-control rules and its protocol state machine; this layer
 * holds what every stream multiplexer needs:
 *
 *   - the stream table (gni_htab keyed by a uint64 the core chooses: the
 *     yamux stream id, the mplex handle id << 1 | remote);
 *   - per-stream receive and send byte queues (gni_streamq_*) with the
 *     session totals, the per-stream send buffer limit and the session
 *     send budget (see "send budget" below);
 *   - per-stream pending event bits and the event queue, coalesced per
 *     stream, reported in the order OPENED, DATA, WRITABLE, FIN, RESET;
 *   - the queue of streams with control frames to send, and the protocol's
 *     pending control bits (opaque here except for the three bits named in
 *     gni_mstate_ops);
 *   - the outbound data scheduler: strict priority classes 7 .. 0, round
 *     robin inside a class;
 *   - the refused-stream set (peer streams answered with a reset and no
 *     stream object; see "refused peer streams" below);
 *   - the common stream calls (write, shutdown, reset, read, consume,
 *     release, priority, user_data).
 *
 * A core embeds gni_mstate in its session and gni_mstream as the FIRST
 * member of its stream struct, and allocates and frees its streams itself
 * (ops.stream_free). Sans-I/O: no syscalls, no time, no callbacks to the
 * application; the only calls out are the core's own ops. One thread.
 */
#ifndef GNI_MSTATE_H
#define GNI_MSTATE_H

#include "golemnet/buf.h"
#include "golemnet/common.h"
#include "golemnet/mux.h"
#include "golemnet/rcmgr.h"

#include "gni.h"
#include "gni_htab.h"

/** Number of send priority classes (0 bulk .. 7 highest). */
#define GNI_MSTATE_PRIO_CLASSES 8u
/**
 * Refused peer streams that may wait for their reset beyond
 * max_inbound_streams (see gni_mstate_refuse_bound()).
 */
#define GNI_MSTATE_REFUSE_MARGIN 256u

/*
 * Stream event types, numbered as GNI_YAMUX_EV_* and GNI_MPLEX_EV_* so a
 * core passes them through unchanged.
 */
enum {
    GNI_MSTATE_EV_OPENED = 1,
    GNI_MSTATE_EV_DATA = 2,
    GNI_MSTATE_EV_WRITABLE = 3,
    GNI_MSTATE_EV_FIN = 4,
    GNI_MSTATE_EV_RESET = 5
};
/** The pending bit of event type @t. */
#define GNI_MSTATE_BIT(t) ((uint8_t)(1u << ((t)-1)))

typedef struct gni_mstate gni_mstate;
/** A refused peer stream waiting for its reset (private to mstate.c). */
typedef struct gni_mrefused gni_mrefused;

/* ---- send budget ---------------------------------------------------------- *
 * Bytes accepted for sending and not yet drained (ms->send_queued, all
 * streams) are bounded by ms->send_max, on top of each stream's
 * stream_buffer_max; gni_mstate_write() takes at most what both leave (and
 * the core's credit). A write cut short by either bound is told apart only
 * by who wakes it: the stream bound by its own drain, the session budget
 * by the wait queue below. Nothing is ever dropped and no stream or
 * session ends for a full budget: the writer gets a short count and a
 * WRITABLE event later (the mux driver turns that into GN_EAGAIN and
 * on_writable).
 *
 * Fairness: first come, first served within a priority class. A stream
 * whose write the budget alone stopped (stream room and credit left) joins
 * send_waitq behind every waiter of its class or a higher one (ahead of
 * lower classes: the same strict priority the drain applies; with the
 * default class 0 for all it is a plain FIFO). While the queue is not
 * empty only its head may take budget; every other stream's write gets 0
 * for the budget and joins the queue, so a stream that keeps writing
 * cannot overtake one that waits. When budget frees up (the drain took
 * bytes, a stream was reset or removed), the head gets WRITABLE and keeps
 * its place until it writes (or a higher class queues ahead of it: it then
 * gets 0 and waits again); once it took bytes it leaves the queue, the
 * next head is told when budget is free, and a head the budget stopped
 * again goes to the back of its class. A waiter also leaves when it
 * half-closes or is reset or removed; its class is the one it had when it
 * started waiting. Each stream holds at most stream_buffer_max of the
 * budget, so a budget of B lets at least B / stream_buffer_max streams
 * hold full queues and the rest take turns. The budget never reorders the
 * drain (priority classes, round robin).
 *
 * Contract: a stream told WRITABLE at the head of the queue must write
 * (or half-close, reset, release) for the others to move on; the mux
 * driver always does (its held write is retried on WRITABLE).
 *
 * Cost when the budget is not reached: one comparison per write and an
 * empty-list check per drained chunk.
 *
 * With a resource manager attached (gni_mstate_set_rcmgr(), see
 * "resource accounting" below) send_max is what the connection span holds
 * reserved for the budget, between GNI_MSTATE_SEND_STEP and send_cap (the
 * configured session_send_max): a write that needs more grows the
 * reservation first, in steps; a refused growth leaves send_max where it
 * is, so the writer is pushed back exactly as at a full budget. Once
 * drained well below it (4 steps), the reservation shrinks to what is
 * queued plus a step, and to one step when nothing is queued.
 */

/** Per-stream state; the first member of a core's stream struct. */
typedef struct gni_mstream {
    gni_hnode hn; /* table entry; hn.key is the stream key */
    bool inbound;
    bool pending;     /* inbound, not accepted yet */
    bool lfin;        /* we queued our half-close */
    bool lfin_sent;   /* our half-close is on the wire (set by the core) */
    bool rfin;        /* the peer half-closed (set by the core) */
    bool fin_evented; /* FIN event raised */
    bool reset;       /* reset either way */
    bool released;    /* the application let go */
    bool want_writable;
    uint8_t prio; /* 0 .. 7 */
    uint8_t ev;   /* pending GNI_MSTATE_BIT()s */
    uint16_t ctrl; /* the core's pending control bits */
    int reset_err; /* reported with the RESET event */
    gn_bufq rq;    /* received, unconsumed */
    gn_bufq sq;    /* accepted for sending, not drained */
    void *user_data;
    gni_list ev_link;
    gni_list ctrl_link;
    gni_list data_link;
    gni_list wait_link; /* ms->send_waitq: waiting for the session send budget */
    gn_rcmgr_stream *rs; /* the stream's span, NULL when not accounted */
} gni_mstream;

/** What a core tells the layer about itself. */
typedef struct gni_mstate_ops {
    /**
     * Frees the core's stream object. Called by gni_mstate_maybe_free() and
     * gni_mstate_fini(); it must call gni_mstate_remove() first. Required.
     */
    void (*stream_free)(gni_mstate *ms, gni_mstream *st);
    /**
     * Optional: called when @st is reset either way, after its queues were
     * dropped and before the RESET event is raised (flow-control credit,
     * open timers).
     */
    void (*on_reset)(gni_mstate *ms, gni_mstream *st);
    /** ctrl bit of an open frame not yet sent (the peer does not know the stream). */
    uint16_t ctrl_open;
    /** ctrl bits kept when a local reset replaces the pending control frame. */
    uint16_t ctrl_keep;
    /** ctrl bit of the reset frame. */
    uint16_t ctrl_reset;
    /** ctrl bit of the half-close frame. */
    uint16_t ctrl_fin;
} gni_mstate_ops;

struct gni_mstate {
    const gni_mstate_ops *ops;
    gni_htab streams;
    size_t stream_buffer_max; /* per-stream send queue limit (bytes) */
    uint32_t n_in;
    uint32_t n_out;
    uint32_t n_pending;
    size_t buffered;    /* received, unconsumed, all streams */
    size_t send_queued; /* accepted, not drained, all streams; <= send_max */
    size_t send_max;    /* the session send budget (bytes); the core sets it */
    gni_list send_waitq; /* streams waiting for send budget, FIFO (wait_link) */
    gni_list evq;
    gni_list ctrlq;
    unsigned prio_mask; /* bit p: prio[p] is not empty */
    gni_list prio[GNI_MSTATE_PRIO_CLASSES];
    /*
     * refused peer streams waiting for their reset: a set by stream key
     * (buckets allocated at the first refusal) and a FIFO for the drain
     */
    gni_htab refused;
    gni_list refuseq;
    uint32_t refuse_cnt; /* entries in the set */
    uint32_t refuse_max; /* bound on refuse_cnt; the core sets it */
    bool refused_ev;       /* a REFUSED event is pending */
    uint32_t refused_ev_cnt;
    uint64_t refused_ev_key;
    int refused_ev_err;
    uint64_t refused_total;
    int err; /* the session error; the core sets it, 0 while alive */
    /* resource accounting (gni_mstate_set_rcmgr); rm NULL: none */
    gn_rcmgr *rm;
    gn_rcmgr_conn *rc_conn;
    size_t send_cap;      /* the configured session_send_max while accounted */
    uint64_t rc_refused;  /* streams and growths the manager refused */
    /* receive reservation on rc_conn: see gni_mstate_rx_reserve() */
    size_t rx_resv;   /* bytes reserved, a multiple of GNI_MSTATE_SEND_STEP */
    size_t rx_expect; /* bytes of the frame being received that will be stored */
    bool rx_pressure; /* the last growth was refused at GN_RCMGR_PRIO_MEDIUM */
};

/** Casts a gni_mstream back to the core's stream (it is the first member). */
#define GNI_MSTREAM_OF(p, type) ((type *)(void *)(p))

/**
 * Fills *@c from @in (NULL: all zero, version GN_MUX_CONFIG_VERSION) and
 * gives the limits every muxer shares their defaults when zero: 1024
 * streams each way, 256 pending, stream_buffer_max 1 MiB,
 * session_buffer_max 64 MiB, session_send_max
 * GN_MUX_SESSION_SEND_MAX_DEFAULT (16 MiB). The core then sets its own
 * (frame length, windows, timers).
 */
void gni_mstate_config(gn_mux_config *c, const gn_mux_config *in);

/**
 * Initialises @ms. @ops must outlive @ms. @stream_buffer_max bounds each
 * stream's send queue. refuse_max starts at gni_mstate_refuse_bound(1024)
 * and send_max at GN_MUX_SESSION_SEND_MAX_DEFAULT; the core sets them from
 * its max_inbound_streams and session_send_max (before the first write).
 * Errors: GN_ENOMEM (its table).
 */
int gni_mstate_init(gni_mstate *ms, const gni_mstate_ops *ops, size_t stream_buffer_max);

/**
 * Frees every stream (through ops->stream_free, which ends their spans),
 * the refused set and the tables, and detaches from the resource manager
 * (the connection span must still be open if attached).
 */
void gni_mstate_fini(gni_mstate *ms);

/**
 * Initialises @st (zeroed by the caller, e.g. gn_calloc) with @key and
 * inserts it. Errors: GN_ENOMEM (table growth; @st is then not inserted
 * and owns nothing).
 */
int gni_mstate_insert(gni_mstate *ms, gni_mstream *st, uint64_t key, bool inbound);

/**
 * Takes @st out of the table, every queue (the budget's wait queue too)
 * and the counters; frees its buffers.
 */
void gni_mstate_remove(gni_mstate *ms, gni_mstream *st);

/** The stream with @key (released ones included), or NULL. */
static inline gni_mstream *gni_mstate_find(const gni_mstate *ms, uint64_t key)
{
    return (gni_mstream *)(void *)gni_htab_find(&ms->streams, key);
}

/** The application's view: the stream with @key unless released, or NULL. */
static inline gni_mstream *gni_mstate_app_find(const gni_mstate *ms, uint64_t key)
{
    gni_mstream *st = gni_mstate_find(ms, key);
    return st && !st->released ? st : NULL;
}

/** Marks inbound @st pending (awaiting accept) and counts it. */
void gni_mstate_set_pending(gni_mstate *ms, gni_mstream *st);

/** Accepts a pending stream. Errors: GN_ESTATE (not pending). */
int gni_mstate_accept(gni_mstate *ms, gni_mstream *st);

/* ---- events ------------------------------------------------------------ */

/** Raises event @type on @st (nothing for released streams). */
static inline void gni_mstate_raise(gni_mstate *ms, gni_mstream *st, int type)
{
    if (st->released)
        return;
    st->ev |= GNI_MSTATE_BIT(type);
    if (!gni_list_on(&st->ev_link))
        gni_list_add_tail(&ms->evq, &st->ev_link);
}

/**
 * Pops the next stream event: returns the stream and sets *@type
 * (GNI_MSTATE_EV_*), or NULL when no stream event is pending.
 */
gni_mstream *gni_mstate_next_event(gni_mstate *ms, int *type);

/** Raises FIN once the peer half-closed and every byte before it was consumed. */
void gni_mstate_check_fin(gni_mstate *ms, gni_mstream *st);

/**
 * Raises WRITABLE when a short write is waiting and @st can take a byte:
 * send buffer space left (its own and the session budget's, see "send
 * budget") and @credit (the protocol's send window; UINT64_MAX without
 * flow control) > 0. When only the session budget is missing, @st joins
 * the budget's wait queue instead (it is told when its turn comes).
 */
void gni_mstate_check_writable(gni_mstate *ms, gni_mstream *st, uint64_t credit);

/* ---- control frames ---------------------------------------------------- */

/** ORs @bits (0 allowed: e.g. a window update) into @st's ctrl and queues it. */
static inline void gni_mstate_ctrl(gni_mstate *ms, gni_mstream *st, uint16_t bits)
{
    st->ctrl |= bits;
    if (!gni_list_on(&st->ctrl_link))
        gni_list_add_tail(&ms->ctrlq, &st->ctrl_link);
}

/** The first stream waiting to send control frames, or NULL. */
static inline gni_mstream *gni_mstate_ctrl_head(const gni_mstate *ms)
{
    return gni_list_empty(&ms->ctrlq) ? NULL
                                      : GNI_CONTAINER_OF(ms->ctrlq.next, gni_mstream, ctrl_link);
}

/** @st's control frames are written: clears its ctrl, dequeues it, maybe frees it. */
void gni_mstate_ctrl_done(gni_mstate *ms, gni_mstream *st);

/* ---- outbound data ----------------------------------------------------- */

/** True when some stream has queued data. */
static inline bool gni_mstate_have_data(const gni_mstate *ms)
{
    return ms->prio_mask != 0;
}

/**
 * The stream whose turn it is: the head of the highest non-empty priority
 * class, or NULL when no stream has data.
 */
gni_mstream *gni_mstate_sched_next(const gni_mstate *ms);

/**
 * Moves @n queued bytes of @st (the stream gni_mstate_sched_next() gave,
 * @n <= its queue) into @dst and ends its turn: it goes to the back of its
 * class while data remains. The freed budget may raise WRITABLE on the
 * stream waiting longest for it. Returns the bytes left in its queue.
 */
size_t gni_mstate_sched_take(gni_mstate *ms, gni_mstream *st, uint8_t *dst, size_t n);

/** Bytes @st's send queue can take under stream_buffer_max alone. */
static inline size_t gni_mstate_stream_room(const gni_mstate *ms, const gni_mstream *st)
{
    size_t q = gn_bufq_len(&st->sq);
    return q >= ms->stream_buffer_max ? 0 : ms->stream_buffer_max - q;
}

/**
 * Bytes of the session send budget @st may take now: what is left of
 * send_max, or 0 while other streams wait for it ahead of @st (@st is not
 * the head of the wait queue).
 */
static inline size_t gni_mstate_budget_room(const gni_mstate *ms, const gni_mstream *st)
{
    if (ms->send_queued >= ms->send_max)
        return 0;
    if (!gni_list_empty(&ms->send_waitq) && ms->send_waitq.next != &st->wait_link)
        return 0;
    return ms->send_max - ms->send_queued;
}

/** Bytes @st's send queue can take now: under stream_buffer_max and the session budget. */
static inline size_t gni_mstate_send_room(const gni_mstate *ms, const gni_mstream *st)
{
    return GNI_MIN(gni_mstate_stream_room(ms, st), gni_mstate_budget_room(ms, st));
}

/**
 * Frees @st through ops->stream_free when it is released and has nothing
 * left to send (no control frame, no data, and reset or closed both ways).
 * Returns true when it was freed.
 */
bool gni_mstate_maybe_free(gni_mstate *ms, gni_mstream *st);

/* ---- refused peer streams ---------------------------------------------- *
 * A peer stream the core does not take (over max_inbound_streams or
 * max_pending_streams, or after a Go Away) gets no stream object: its key
 * goes into the refused set until the drain has written its reset. Each key
 * is in the set at most once, so each refused stream gets exactly one reset
 * frame; the drain writes them oldest first. An entry leaves the set when
 * its reset is written (gni_mstate_refuse_pop()) or when the peer resets the
 * stream itself first (gni_mstate_refuse_cancel(): no reset is then owed).
 *
 * Bound. The set holds at most refuse_max entries, which the core sets to
 * gni_mstate_refuse_bound(max_inbound_streams). Every entry is a stream the
 * peer still counts as open (it has neither seen our reset nor reset it
 * itself), so a peer that keeps at most max_inbound_streams streams open
 * can never fill the set, however fast it opens them and whether or not it
 * reads. Only a peer that has more than max_inbound_streams +
 * GNI_MSTATE_REFUSE_MARGIN refused streams unanswered at once (it opens
 * beyond the limit faster than the drain writes our resets, typically
 * because it does not read) overflows it; gni_mstate_refuse() then fails
 * and the core ends the session with GN_ESTREAMLIMIT. Memory: one small
 * allocation per entry, freed when it leaves the set.
 *
 * Why not stop reading instead: input stopped while resets cannot be
 * written also stops the peer's window updates, pings and data for every
 * other stream, and with a peer that writes its whole burst before reading
 * both sides would sit blocked writing until a keepalive timeout (mplex has
 * none); the bound above never touches a peer that stays within its limit,
 * so it needs no backpressure. (The driver still stops reading when the
 * received, unconsumed bytes reach their bounds: a different resource.)
 */

/** The bound on refused streams for @max_inbound_streams (saturating). */
static inline uint32_t gni_mstate_refuse_bound(uint32_t max_inbound_streams)
{
    return max_inbound_streams > UINT32_MAX - GNI_MSTATE_REFUSE_MARGIN
               ? UINT32_MAX
               : max_inbound_streams + GNI_MSTATE_REFUSE_MARGIN;
}

/**
 * Adds refused peer stream @key (answered on the wire as @wire_id) to the
 * refused set and records a REFUSED event for it with @reason. A key
 * already in the set is left as it is (returns 0, nothing counted).
 * Errors: GN_ESTREAMLIMIT (refuse_max entries already wait: the peer
 * floods; end the session), GN_ENOMEM.
 */
int gni_mstate_refuse(gni_mstate *ms, uint64_t wire_id, uint64_t key, int reason);

/** True when @key is in the refused set (its reset not written yet). */
bool gni_mstate_refused_has(const gni_mstate *ms, uint64_t key);

/**
 * The peer reset refused stream @key itself: drops it from the set (no
 * reset is owed any more). Returns true when it was there.
 */
bool gni_mstate_refuse_cancel(gni_mstate *ms, uint64_t key);

/** The wire id of the oldest refused stream waiting for its reset; false when none. */
bool gni_mstate_refuse_peek(const gni_mstate *ms, uint64_t *wire_id);

/** Drops the entry gni_mstate_refuse_peek() gave (its reset was written). */
void gni_mstate_refuse_pop(gni_mstate *ms);

/**
 * Pops the pending REFUSED event: the last key, the count since the last
 * such event and the last reason. Returns false when none is pending.
 */
bool gni_mstate_refused_event(gni_mstate *ms, uint64_t *key, uint32_t *count, int *reason);

/** True when control frames, refused resets or data wait for the drain. */
static inline bool gni_mstate_want_drain(const gni_mstate *ms)
{
    return ms->refuse_cnt || !gni_list_empty(&ms->ctrlq) || ms->prio_mask;
}

/* ---- resource accounting ------------------------------------------------ *
 * Optional (include/golemnet/rcmgr.h). Once a session is attached to its
 * connection's span (gni_mstate_set_rcmgr()):
 *   - every stream the core creates opens a stream span under the
 *     connection span (gni_mstate_rc_stream(), inbound and outbound
 *     counted apart; no memory); the span ends when the stream leaves the
 *     table (gni_mstate_remove());
 *   - received data is reserved lazily, for the whole session, on the
 *     connection span: before a frame's payload is stored the core calls
 *     gni_mstate_rx_reserve(), which grows the session's receive
 *     reservation (rx_resv) in GNI_MSTATE_SEND_STEP steps so that it
 *     covers everything buffered plus the frame; consuming, reading or
 *     dropping received bytes shrinks it again (one step of hysteresis;
 *     a session that has received keeps one step while attached). A
 *     stream that receives nothing costs no memory, so stream counts, not
 *     windows, bound how many streams a connection holds;
 *   - the send budget is a reservation on the connection span (see "send
 *     budget" above).
 * Streams created before the attach are not accounted. A refusal is
 * counted in rc_refused and logged (INFO, "mux") with the refusing scope.
 * Cost per stream: one span opened, moved and ended; per frame, a
 * comparison unless a step boundary is crossed.
 */

/** Send budget and receive reservation step (bytes); also the least a session holds. */
#define GNI_MSTATE_SEND_STEP ((size_t)64u << 10)

/**
 * Attaches @ms to connection span @conn of manager @rm: reserves the first
 * step of the send budget (max(GNI_MSTATE_SEND_STEP, send_queued), at most
 * send_max) at GN_RCMGR_PRIO_ALWAYS on @conn and makes send_max that
 * reservation. @conn must stay open while attached. @rm NULL detaches: the
 * budget and receive reservations are released (do it before
 * gn_rcmgr_conn_done()), send_max is the configured bound again, and
 * streams opened from now on are not accounted; stream spans already
 * open stay until their streams go.
 * Errors: GN_EINVAL (@rm without @conn), GN_ESTATE (already attached),
 * GN_ERESOURCE (the first step was refused; nothing changed), and the
 * manager's errors.
 */
int gni_mstate_set_rcmgr(gni_mstate *ms, gn_rcmgr *rm, gn_rcmgr_conn *conn);

/**
 * Opens a stream span (no memory) for a new stream of @inbound direction.
 * *@out is NULL when @ms is not accounted (returns 0); the core stores it
 * in the stream's rs after gni_mstate_insert() (gn_rcmgr_stream_done() it
 * if the insert fails).
 * Errors: GN_ERESOURCE (refused: nothing is held; counted and logged; also
 * for the manager's other errors, such as a connection span without its
 * peer), GN_ENOMEM.
 */
int gni_mstate_rc_stream(gni_mstate *ms, bool inbound, gn_rcmgr_stream **out);

/**
 * A frame is about to store @len payload bytes: makes the session's
 * receive reservation cover buffered + @len (growing it in steps at @prio)
 * and remembers @len in rx_expect until gni_mstate_rx_done(). A growth
 * refused at @prio sets rx_pressure when @prio is at most
 * GN_RCMGR_PRIO_MEDIUM. True when covered or not accounted; false when the
 * manager refused (counted and logged naming @what): the core must not
 * store the payload.
 */
bool gni_mstate_rx_reserve(gni_mstate *ms, size_t len, uint8_t prio, const char *what);

/** The frame announced to gni_mstate_rx_reserve() is over (stored or dropped). */
static inline void gni_mstate_rx_done(gni_mstate *ms)
{
    ms->rx_expect = 0;
}

/**
 * Whether the manager would admit @len more bytes on the connection span at
 * @prio now (reserved and given back at once; nothing is held). True when
 * not accounted. A refusal is counted and logged naming @what. Used before
 * a receive window grows and to end rx_pressure (cleared on success when
 * @prio is at least GN_RCMGR_PRIO_MEDIUM).
 */
bool gni_mstate_rx_probe(gni_mstate *ms, size_t len, uint8_t prio, const char *what);

/** The span of the application's stream @key, or NULL (none, released, not accounted). */
static inline gn_rcmgr_stream *gni_mstate_stream_span(const gni_mstate *ms, uint64_t key)
{
    const gni_mstream *st = gni_mstate_app_find(ms, key);
    return st ? st->rs : NULL;
}

/* ---- stream calls ------------------------------------------------------ */

/**
 * Resets @st from our side: queued and unconsumed data are dropped; the
 * reset frame is queued (ops->ctrl_reset, keeping ops->ctrl_keep bits)
 * unless the open frame was never sent (ops->ctrl_open pending: the peer
 * never heard of it). @event_err != 0 reports a RESET event with it. A
 * stream already reset is left alone.
 */
void gni_mstate_reset_local(gni_mstate *ms, gni_mstream *st, int event_err);

/** The peer reset @st: queues dropped, pending control cleared, RESET event (GN_ESTREAMRESET). */
void gni_mstate_reset_remote(gni_mstate *ms, gni_mstream *st);

/**
 * Copies up to @len bytes into @st's send queue: at most min(@credit,
 * send room: stream_buffer_max and the session budget). Returns the count
 * taken; a short count arms a WRITABLE event (a stream the budget alone
 * stopped waits in the budget's queue for it). Errors: GN_ESTREAMRESET,
 * GN_ESTATE (pending), GN_EPIPE (half-closed), GN_ENOMEM.
 */
long gni_mstate_write(gni_mstate *ms, gni_mstream *st, const uint8_t *data, size_t len,
                      uint64_t credit);

/**
 * Half-closes our side: the half-close (ops->ctrl_fin) is queued now when
 * no data waits, else the core sends it after the data. A wait for send
 * budget ends. Errors: GN_ESTATE (already half-closed, reset or pending).
 */
int gni_mstate_shutdown(gni_mstate *ms, gni_mstream *st);

/** Skips up to @n buffered bytes; returns the count skipped. May raise FIN. */
size_t gni_mstate_consume(gni_mstate *ms, gni_mstream *st, size_t n);

/** Copies up to @len buffered bytes into @out and consumes them; returns the count. */
size_t gni_mstate_read(gni_mstate *ms, gni_mstream *st, uint8_t *out, size_t len);

/**
 * The application lets go of @st: a stream still writable or pending is
 * reset, events and user_data are cleared and unconsumed bytes dropped.
 * Returns the count dropped. The caller then calls gni_mstate_maybe_free()
 * (after any flow-control bookkeeping for the dropped bytes).
 */
size_t gni_mstate_release(gni_mstate *ms, gni_mstream *st);

/** Moves @st to priority class @prio. Errors: GN_ERANGE (@prio > 7). */
int gni_mstate_set_priority(gni_mstate *ms, gni_mstream *st, uint8_t prio);

/* ---- the same calls by stream key --------------------------------------- *
 * What a core's public stream functions do when the protocol adds nothing:
 * look the stream up in the application's view (GN_ENOTFOUND when absent
 * or released) and, for calls that change it, refuse after the session
 * ended (GN_ECLOSED, checked first). Other errors as above.
 */

/** Half-closes stream @key. Errors: GN_ECLOSED, GN_ENOTFOUND, GN_ESTATE. */
int gni_mstate_stream_shutdown(gni_mstate *ms, uint64_t key);

/** Resets stream @key (no event; idempotent). Errors: GN_ECLOSED, GN_ENOTFOUND. */
int gni_mstate_stream_reset(gni_mstate *ms, uint64_t key);

/** Borrows @key's first run of unconsumed bytes: 1 with data, 0 without, GN_ENOTFOUND. */
int gni_mstate_stream_peek(const gni_mstate *ms, uint64_t key, gn_slice *out);

/** Sets the user_data reported in @key's events. Errors: GN_ENOTFOUND. */
int gni_mstate_stream_set_user_data(gni_mstate *ms, uint64_t key, void *user_data);

/** Sets @key's priority class. Errors: GN_ENOTFOUND, GN_ERANGE. */
int gni_mstate_stream_set_priority(gni_mstate *ms, uint64_t key, uint8_t prio);

/*
 * Without flow control (the send credit is unlimited and consuming
 * returns nothing to the peer):
 */

/** gni_mstate_write() on @key. Errors: GN_ECLOSED, GN_ENOTFOUND and its own. */
long gni_mstate_stream_write(gni_mstate *ms, uint64_t key, const uint8_t *data, size_t len);

/** Bytes gni_mstate_stream_write() would take now (0 on any error). */
size_t gni_mstate_stream_write_space(const gni_mstate *ms, uint64_t key);

/** gni_mstate_consume() on @key; returns 0 or GN_ENOTFOUND. */
int gni_mstate_stream_consume(gni_mstate *ms, uint64_t key, size_t n);

/** gni_mstate_read() on @key (at most LONG_MAX); returns the count or GN_ENOTFOUND. */
long gni_mstate_stream_read(gni_mstate *ms, uint64_t key, uint8_t *out, size_t len);

/*
 * Derived stream state, numbered as GNI_YAMUX_ST_* / GNI_MPLEX_ST_*; the
 * core refines ESTABLISHED (yamux SYN_SENT).
 */
enum {
    GNI_MSTATE_ST_PENDING = 2,
    GNI_MSTATE_ST_ESTABLISHED = 3,
    GNI_MSTATE_ST_HALF_CLOSED_LOCAL = 4,
    GNI_MSTATE_ST_HALF_CLOSED_REMOTE = 5,
    GNI_MSTATE_ST_CLOSED = 6,
    GNI_MSTATE_ST_RESET = 7
};

/** @st's derived state (GNI_MSTATE_ST_*). */
int gni_mstate_stream_state(const gni_mstream *st);

#endif /* GNI_MSTATE_H */
