/*
 * yamux sans-I/O core (internal; never installed).
 *
 * Spec: hashicorp/yamux spec.md, as copied in libp2p/specs yamux/README.md
 * ("/yamux/1.0.0"): 12-byte big-endian header (version 0, type, flags,
 * stream id, length), types Data / Window Update / Ping / Go Away, flags
 * SYN ACK FIN RST, odd stream ids for the client, even for the server,
 * 256 KiB initial stream window, Go Away codes 0 normal, 1 protocol error,
 * 2 internal error; libp2p "ACK backlog" section for accept handling.
 *
 * Shape (same as the mplex core, layers/mux/mplex/mplex.h):
 *   - bytes in:  gni_yamux_feed(), any split of the peer's byte stream;
 *   - bytes out: gni_yamux_drain() appends whole frames to a caller gn_buf;
 *   - events:    PULL style. After feed/drain/expiry/any stream call, call
 *                gni_yamux_next_event() until it returns 0. Events are
 *                coalesced per stream (one pending DATA event however many
 *                frames arrived), so the event backlog is bounded by the
 *                number of streams and never needs input backpressure;
 *   - time:      every call that needs it takes `now` (gn_time, monotonic
 *                ns); gni_yamux_next_deadline() / gni_yamux_on_expiry() run
 *                keepalive pings, ping timeouts and stream-open timeouts.
 *
 * Streams are named by their 32-bit yamux stream id. The core owns the
 * stream objects; the application releases its interest with
 * gni_yamux_stream_release() (the object may live on briefly to flush a FIN
 * or RST). Every stream carries a user_data pointer returned in its events,
 * so the gn_stream glue needs no id lookup.
 *
 * Flow control (nghttp2-style "consume"): received data is buffered in the
 * core; the application reads it with gni_yamux_stream_peek() +
 * gni_yamux_stream_consume() (or gni_yamux_stream_read()). Window credit
 * goes back to the peer only for consumed bytes, in one Window Update once
 * half of the stream's window has been consumed. Hence per stream:
 * unconsumed bytes <= the stream's receive window <= config.max_window.
 * Sends: gni_yamux_stream_write() copies at most what the peer's window,
 * config.stream_buffer_max and the session send budget
 * (config.session_send_max, all streams together; first come, first
 * served within a priority class, see core/gni_mstate.h "send budget")
 * allow and returns the count taken; when it took less than offered, a
 * WRITABLE event follows once more can be taken. A stream told WRITABLE
 * while others wait for the budget holds the budget's next turn until it
 * writes, half-closes or is reset.
 *
 * QoS: the drain first writes session control frames (Go Away, Ping),
 * then per-stream control frames (SYN/ACK/FIN/RST, window updates), then
 * data: strict priority classes 7 (highest) .. 0 (bulk, the default), round
 * robin inside a class, one chunk (<= 16 KiB, <= max_frame_len) per turn.
 * A bulk stream therefore never holds back a higher class by more than the
 * frames already drained. Lower classes can starve while higher classes
 * have data; that is the intent of strict priority.
 *
 * Thread context: none. A session is a plain data structure; use it from one
 * thread. No call re-enters the caller (there are no callbacks).
 *
 * Errors: peer violations end the session; the core queues Go Away with the
 * matching code and reports GNI_YAMUX_EV_SESSION_END once:
 *   GN_EVERSION    version field != 0;
 *   GN_EBADFRAME   unknown type, unknown flag bits, SYN+ACK or SYN+RST,
 *                  Data/Window Update on stream 0, Ping/Go Away on a
 *                  stream != 0, Ping without exactly one of SYN/ACK, Go Away
 *                  with flags;
 *   GN_EPROTO      SYN with our parity or a reused id, frames for a stream
 *                  id never opened, ACK for a stream not awaiting one,
 *                  data after the peer's FIN;
 *   GN_EWINDOW     data beyond the granted receive window, or a window
 *                  update that overflows 2^32-1;
 *   GN_EFRAMESIZE  data frame for a closed stream longer than
 *                  max(max_frame_len, max_window);
 *   GN_ESTREAMLIMIT  a SYN to refuse while max_inbound_streams +
 *                  GNI_YAMUX_REFUSE_MARGIN refused streams still wait for
 *                  their RST (see "Stream limits");
 *   GN_ETIMEDOUT   a ping got no answer in time (Go Away internal error);
 *   GN_ENOMEM      allocation failed (Go Away internal error).
 *
 * Stream limits. What happens to a peer's SYN (any frame type, so a burst
 * of pipelined SYNs in one feed is handled frame by frame):
 *   - streams the peer opened and we hold (pending or accepted, until the
 *     object is freed) < max_inbound_streams and pending (not accepted) <
 *     max_pending_streams (default 256, the spec's ACK backlog), and no Go
 *     Away sent or received: a stream object, STREAM_OPENED;
 *   - otherwise the stream is refused: no object, one RST (a Window Update
 *     with flag RST, length 0, that stream id) queued for the drain, and a
 *     coalesced GNI_YAMUX_EV_STREAM_REFUSED (GN_ESTREAMLIMIT, or GN_EGOAWAY
 *     after a Go Away); the session goes on. Each refused stream gets
 *     exactly one RST; none if the peer resets it before ours was drained.
 *     Its later frames are discarded (data up to the discard limit);
 *   - the refused streams waiting for their RST are bounded by
 *     max_inbound_streams + GNI_YAMUX_REFUSE_MARGIN. Each is a stream the
 *     peer still counts as open, so a peer that keeps at most
 *     max_inbound_streams streams open never reaches the bound, however
 *     fast it opens them and whether it reads or not. A SYN that would
 *     exceed it (the peer is more than the margin beyond its limit with
 *     RSTs it has not let us write, e.g. it does not read, or one feed
 *     carries that many excess SYNs) ends the session with
 *     GN_ESTREAMLIMIT (Go Away protocol error). The core never stops taking
 *     input for refusals: see core/gni_mstate.h for why.
 */
#ifndef GN_YAMUX_H
#define GN_YAMUX_H

#include "golemnet/common.h"
#include "golemnet/err.h"
#include "golemnet/mux.h"
#include "golemnet/rcmgr.h"

/* Wire constants (spec "Framing"). */
#define GNI_YAMUX_HEADER_LEN 12u
#define GNI_YAMUX_VERSION 0u
#define GNI_YAMUX_TYPE_DATA 0u
#define GNI_YAMUX_TYPE_WINDOW_UPDATE 1u
#define GNI_YAMUX_TYPE_PING 2u
#define GNI_YAMUX_TYPE_GO_AWAY 3u
#define GNI_YAMUX_FLAG_SYN 0x1u
#define GNI_YAMUX_FLAG_ACK 0x2u
#define GNI_YAMUX_FLAG_FIN 0x4u
#define GNI_YAMUX_FLAG_RST 0x8u
#define GNI_YAMUX_GOAWAY_NORMAL 0u
#define GNI_YAMUX_GOAWAY_PROTO_ERR 1u
#define GNI_YAMUX_GOAWAY_INTERNAL_ERR 2u
/** The window both sides assume for a new stream (spec "Flow Control"). */
#define GNI_YAMUX_DEFAULT_WINDOW (256u * 1024u)
/** Largest data chunk the scheduler sends in one turn. */
#define GNI_YAMUX_CHUNK_MAX (16u * 1024u)
/**
 * Refused streams whose RST may wait for the drain beyond
 * max_inbound_streams (see "Stream limits" at the top).
 */
#define GNI_YAMUX_REFUSE_MARGIN 256u
/** Ping replies that may wait for the drain; further replies are dropped. */
#define GNI_YAMUX_PONG_QUEUE 64u
/** Ping timeout when keepalive_interval is 0. */
#define GNI_YAMUX_PING_TIMEOUT (30u * GN_S)
/** Number of priority classes (0 bulk .. 7 highest). */
#define GNI_YAMUX_PRIO_CLASSES 8u

typedef struct gni_yamux gni_yamux;

/*
 * Event types. The mplex core uses the same numbering (GNI_MPLEX_EV_*), so
 * one glue switch can serve both.
 */
enum {
    GNI_YAMUX_EV_NONE = 0,
    /** The peer opened stream_id (SYN). Accept it or reset it. */
    GNI_YAMUX_EV_STREAM_OPENED = 1,
    /** New bytes are readable on stream_id (peek / read / consume). */
    GNI_YAMUX_EV_STREAM_DATA = 2,
    /** A write that took less than offered can now take more. */
    GNI_YAMUX_EV_STREAM_WRITABLE = 3,
    /** The peer half-closed stream_id and every byte before it was consumed. */
    GNI_YAMUX_EV_STREAM_FIN = 4,
    /**
     * stream_id is dead; err: GN_ESTREAMRESET (peer RST), GN_ETIMEDOUT
     * (no ACK within stream_open_timeout), GN_ETOOBIG (session receive
     * budget exceeded: we reset it). Unconsumed data was dropped.
     */
    GNI_YAMUX_EV_STREAM_RESET = 5,
    /**
     * count peer streams were refused with RST since the last such event
     * (the last one was stream_id); err: GN_ESTREAMLIMIT or GN_EGOAWAY.
     * No stream object exists for them.
     */
    GNI_YAMUX_EV_STREAM_REFUSED = 6,
    /** A ping completed; rtt holds the round trip. */
    GNI_YAMUX_EV_PING_RTT = 7,
    /** The peer sent Go Away with code; no new streams either way. */
    GNI_YAMUX_EV_GOAWAY = 8,
    /** The session is over with err (< 0). Reported once, last. */
    GNI_YAMUX_EV_SESSION_END = 9
};

/** One event; fields not listed for its type are zero. */
typedef struct gni_yamux_event {
    int type;               /* GNI_YAMUX_EV_* */
    uint32_t stream_id;     /* stream events, REFUSED */
    void *stream_user_data; /* stream events: the stream's user_data */
    int err;                /* STREAM_RESET, STREAM_REFUSED, SESSION_END */
    uint32_t code;          /* GOAWAY: the peer's code */
    uint32_t count;         /* STREAM_REFUSED */
    gn_time rtt;            /* PING_RTT */
} gni_yamux_event;

/** Stream states (derived; see gni_yamux_stream_get_info()). */
enum {
    GNI_YAMUX_ST_SYN_SENT = 1,     /* we opened it, no ACK yet */
    GNI_YAMUX_ST_SYN_RECEIVED = 2, /* peer opened it, not accepted yet */
    GNI_YAMUX_ST_ESTABLISHED = 3,
    GNI_YAMUX_ST_HALF_CLOSED_LOCAL = 4,  /* we sent (or queued) FIN */
    GNI_YAMUX_ST_HALF_CLOSED_REMOTE = 5, /* the peer sent FIN */
    GNI_YAMUX_ST_CLOSED = 6,             /* FIN both ways */
    GNI_YAMUX_ST_RESET = 7
};

/** A stream's state and counters. */
typedef struct gni_yamux_stream_info {
    int state;              /* GNI_YAMUX_ST_* */
    bool inbound;           /* opened by the peer */
    uint8_t priority;       /* 0..7 */
    size_t recv_buffered;   /* received, unconsumed bytes */
    uint32_t recv_window;   /* credit the peer still has */
    uint32_t recv_max;      /* our current window size for this stream */
    uint64_t send_window;   /* credit we still have (minus queued bytes) */
    size_t send_queued;     /* accepted, not yet drained bytes */
} gni_yamux_stream_info;

/** Session counters. */
typedef struct gni_yamux_stats {
    uint32_t streams_inbound;  /* stream objects opened by the peer */
    uint32_t streams_outbound; /* stream objects opened by us */
    uint32_t streams_pending;  /* inbound, not yet accepted */
    size_t recv_buffered;      /* = gni_yamux_buffered() */
    size_t send_queued;        /* accepted, not yet drained, all streams */
    gn_time last_rtt;          /* 0 until a ping completed */
    uint64_t streams_refused;  /* SYNs answered with RST */
    uint32_t refused_waiting;  /* refused streams whose RST is not drained yet */
    uint64_t pongs_dropped;    /* ping replies dropped (queue full) */
    uint64_t rc_refused;       /* resource manager refusals: streams, windows, budget growth */
    uint64_t windows_withheld; /* window growths refused (no Window Update sent for them) */
    uint64_t updates_withheld; /* Window Updates held back under memory pressure */
    uint64_t rc_resets;        /* streams reset: granted data the manager refused to buffer */
} gni_yamux_stats;

/**
 * Creates a session.
 *
 * @client: true for the client (dialer: odd stream ids), false for the
 *   server (even ids).
 * @cfg: limits, copied; NULL or zero fields take the defaults of
 *   gn_mux_config (initial_window 256 KiB, max_window 16 MiB, 1024 streams
 *   each way, 256 pending, max_frame_len 256 KiB, stream_buffer_max 1 MiB,
 *   session_buffer_max 64 MiB, session_send_max 16 MiB). keepalive_interval and stream_open_timeout
 *   are used as given (0 = off). initial_window is raised to 256 KiB if
 *   smaller (the spec's fixed starting window) and max_window to
 *   initial_window.
 * @now: current time, starts the keepalive clock.
 * @out: receives the session (caller frees with gni_yamux_free()).
 *
 * Errors: GN_EINVAL (@out NULL, cfg->version not GN_MUX_CONFIG_VERSION),
 * GN_ENOMEM.
 */
int gni_yamux_new(bool client, const gn_mux_config *cfg, gn_time now, gni_yamux **out);

/** Frees @ys and every stream and buffer (NULL is a no-op). Sends nothing. */
void gni_yamux_free(gni_yamux *ys);

/**
 * Resource accounting (include/golemnet/rcmgr.h; core/gni_mstate.h,
 * "resource accounting"): attaches @ys to connection span @conn of @rm
 * (@rm NULL detaches; do it before gn_rcmgr_conn_done()). From then on:
 *   - each new stream opens a stream span under @conn (a stream count,
 *     no memory); refused, a peer's SYN is answered with RST (counted in
 *     streams_refused and rc_refused, REFUSED event with GN_ERESOURCE) and
 *     gni_yamux_open() fails with GN_ERESOURCE;
 *   - received data is reserved when its frame header arrives, for the
 *     session, on @conn (gni_mstate_rx_reserve(): in 64 KiB steps,
 *     released as the application consumes it), so an idle stream holds
 *     no memory. Refused at GN_RCMGR_PRIO_MEDIUM, the session is under
 *     memory pressure: Window Updates are held back (updates_withheld;
 *     the peer's windows close) until a step fits again (retried on
 *     every consume and every frame received). The bytes the peer was
 *     granted are then reserved at GN_RCMGR_PRIO_ALWAYS; refused even
 *     so, the stream is reset (the peer gets RST, the owner a RESET
 *     event with GN_ERESOURCE, rc_resets counts it): granted data is
 *     never dropped silently;
 *   - a window growth beyond 256 KiB (initial_window above it at open /
 *     accept, GN_RCMGR_PRIO_HIGH; gni_yamux_stream_set_window(),
 *     GN_RCMGR_PRIO_LOW) is granted only if the manager has room for it
 *     at that priority now and the session is not under pressure;
 *     otherwise the window keeps its size (windows_withheld counts it);
 *   - the session send budget is reserved on @conn (gn_mux_config
 *     session_send_max is its upper bound).
 * Errors: as gni_mstate_set_rcmgr() (GN_ERESOURCE: the first 64 KiB of
 * send budget were refused).
 */
int gni_yamux_set_rcmgr(gni_yamux *ys, gn_rcmgr *rm, gn_rcmgr_conn *conn);

/** The span of stream @id (NULL: unknown, released or not accounted). */
gn_rcmgr_stream *gni_yamux_stream_span(const gni_yamux *ys, uint32_t id);

/**
 * Feeds bytes received from the peer (any split, down to single bytes).
 *
 * @consumed (may be NULL) receives the bytes processed: @len on success,
 * up to and including the offending header when this call ends the
 * session, 0 when the session had already ended. Data frames are copied into the
 * streams' receive buffers as they arrive.
 *
 * Returns 0, or the session-ending error (see the list at the top; the same
 * code on every later call). The Go Away frame is then waiting in the drain
 * and GNI_YAMUX_EV_SESSION_END is queued.
 */
int gni_yamux_feed(gni_yamux *ys, const uint8_t *in, size_t len, size_t *consumed,
                   gn_time now);

/**
 * Appends whole frames to @out (between out->last and out->end), in the
 * order described at the top, until nothing is pending or the next frame
 * does not fit. Data chunks shrink to fit, so any buffer with 13 free bytes
 * makes progress. After the session ended only the Go Away is written.
 *
 * Returns the number of bytes appended (>= 0), or GN_ENOSPC when output is
 * pending and not even one frame fits (fewer than 13 free bytes).
 */
int gni_yamux_drain(gni_yamux *ys, gn_buf *out, gn_time now);

/** True when gni_yamux_drain() has something to write. */
bool gni_yamux_want_drain(const gni_yamux *ys);

/**
 * Pops the next event into *@ev. Returns 1 with an event, 0 when none is
 * pending (*@ev then has type GNI_YAMUX_EV_NONE). Stream events come first
 * (in the order the streams became ready; per stream OPENED, DATA,
 * WRITABLE, FIN, RESET), then REFUSED, PING_RTT, GOAWAY, SESSION_END.
 */
int gni_yamux_next_event(gni_yamux *ys, gni_yamux_event *ev);

/**
 * The earliest time gni_yamux_on_expiry() has work (keepalive ping due, ping
 * timeout, a stream's open timeout), or GN_TIME_INFINITY.
 */
gn_time gni_yamux_next_deadline(const gni_yamux *ys);

/**
 * Runs what is due at @now: sends the keepalive ping, resets streams whose
 * SYN got no ACK within stream_open_timeout (RESET event, GN_ETIMEDOUT),
 * ends the session with GN_ETIMEDOUT when the outstanding ping has waited
 * longer than keepalive_interval (GNI_YAMUX_PING_TIMEOUT when that is 0).
 * Returns 0 or the session error.
 */
int gni_yamux_on_expiry(gni_yamux *ys, gn_time now);

/**
 * Opens a stream (SYN, as a Window Update that also grants any window
 * above 256 KiB). Data may be written at once (spec "Opening a stream").
 * @now starts the open timeout. @id receives the stream id.
 *
 * Errors: GN_ECLOSED (session ended), GN_EGOAWAY (Go Away sent or
 * received), GN_ESTREAMLIMIT (max_outbound_streams open), GN_ELIMIT (stream
 * ids exhausted), GN_ERESOURCE (the resource manager refused the stream
 * or its 256 KiB window), GN_ENOMEM.
 */
int gni_yamux_open(gni_yamux *ys, gn_time now, uint32_t *id);

/**
 * Accepts a peer stream reported by GNI_YAMUX_EV_STREAM_OPENED: sends ACK
 * (Window Update with any extra window) and moves it out of the pending
 * count. Errors: GN_ENOTFOUND (no such stream), GN_ESTATE (not awaiting
 * accept), GN_ECLOSED.
 */
int gni_yamux_accept(gni_yamux *ys, uint32_t id);

/**
 * Copies up to @len bytes of @data for sending on stream @id. Takes at most
 * min(peer's remaining window, stream_buffer_max - queued, the session
 * send budget left to this stream: session_send_max - all streams' queued
 * bytes, 0 while other streams wait for it first). Returns the count taken
 * (0 .. @len); if it is less than @len a GNI_YAMUX_EV_STREAM_WRITABLE
 * follows when more fits.
 *
 * Errors: GN_ENOTFOUND, GN_ESTATE (inbound stream not accepted yet),
 * GN_EPIPE (we sent FIN), GN_ESTREAMRESET (the stream was reset),
 * GN_ECLOSED (session ended), GN_ENOMEM.
 */
long gni_yamux_stream_write(gni_yamux *ys, uint32_t id, const uint8_t *data, size_t len);

/** Bytes gni_yamux_stream_write() would take now (0 on any error). */
size_t gni_yamux_stream_write_space(const gni_yamux *ys, uint32_t id);

/**
 * Half-closes our side: FIN goes out after the queued data (spec "Closing a
 * stream"). Errors: GN_ENOTFOUND, GN_ESTATE (already shut down or reset or
 * not accepted), GN_ECLOSED.
 */
int gni_yamux_stream_shutdown(gni_yamux *ys, uint32_t id);

/**
 * Resets the stream: RST goes out first, queued and unconsumed data is
 * dropped. The stream stays (state RESET) until released. Resetting a
 * pending inbound stream refuses it. Errors: GN_ENOTFOUND, GN_ECLOSED.
 * Resetting a stream that is already reset returns 0.
 */
int gni_yamux_stream_reset(gni_yamux *ys, uint32_t id);

/**
 * Borrows the first contiguous run of unconsumed bytes of stream @id into
 * *@out. Valid until the next call on @ys. Returns 1 with data, 0 when
 * nothing is buffered, GN_ENOTFOUND.
 */
int gni_yamux_stream_peek(const gni_yamux *ys, uint32_t id, gn_slice *out);

/**
 * Marks @n buffered bytes of @id consumed (clamped to what is buffered) and
 * credits them towards the next Window Update. Returns 0 or GN_ENOTFOUND.
 */
int gni_yamux_stream_consume(gni_yamux *ys, uint32_t id, size_t n);

/** Copies up to @len bytes to @out and consumes them. Returns the count or GN_ENOTFOUND. */
long gni_yamux_stream_read(gni_yamux *ys, uint32_t id, uint8_t *out, size_t len);

/**
 * The application is done with @id (the glue calls it when the gn_stream
 * closes). Fully closed or reset streams are freed once their last control
 * frame is drained. A stream whose write side is still open is reset (RST).
 * A stream we already half-closed keeps flushing its queued data and FIN;
 * the peer's later data is discarded (credit returned at once) and the
 * object is freed at the peer's FIN or RST. No events are reported for @id
 * afterwards. Errors: GN_ENOTFOUND.
 */
int gni_yamux_stream_release(gni_yamux *ys, uint32_t id);

/** Sets the user_data pointer reported in @id's events. Errors: GN_ENOTFOUND. */
int gni_yamux_stream_set_user_data(gni_yamux *ys, uint32_t id, void *user_data);

/**
 * Sets @id's send priority class, 0 (bulk, default) .. 7 (highest). Local
 * only; the wire is unchanged. Errors: GN_ENOTFOUND, GN_ERANGE (@prio > 7).
 */
int gni_yamux_stream_set_priority(gni_yamux *ys, uint32_t id, uint8_t prio);

/**
 * Grows @id's receive window to @window bytes (at most max_window; growth
 * only, smaller values are ignored) and sends the extra credit in a Window
 * Update. Errors: GN_ENOTFOUND, GN_ERANGE (@window > max_window),
 * GN_ERESOURCE (the resource manager refused the growth: the window is
 * unchanged).
 */
int gni_yamux_stream_set_window(gni_yamux *ys, uint32_t id, uint32_t window);

/** Fills *@info for @id. Errors: GN_ENOTFOUND. */
int gni_yamux_stream_get_info(const gni_yamux *ys, uint32_t id, gni_yamux_stream_info *info);

/**
 * Sends a Ping (SYN, opaque counter); its ACK produces a PING_RTT event with
 * rtt = time of the feed that carried the ACK - @now.
 * Errors: GN_EAGAIN (a ping is already outstanding), GN_ECLOSED.
 */
int gni_yamux_ping(gni_yamux *ys, gn_time now);

/**
 * Queues Go Away with @code (GNI_YAMUX_GOAWAY_*; sent once). Afterwards we
 * open no streams (GN_EGOAWAY) and refuse the peer's SYNs; existing streams
 * carry on. Returns 0, GN_ESTATE if Go Away was already queued or sent,
 * GN_ECLOSED after the session ended.
 */
int gni_yamux_go_away(gni_yamux *ys, uint32_t code);

/** Received, unconsumed bytes across all streams (the session's receive buffering). */
size_t gni_yamux_buffered(const gni_yamux *ys);

/** Bytes accepted for sending, not yet drained, all streams (<= session_send_max). */
size_t gni_yamux_send_queued(const gni_yamux *ys);

/** Fills *@st with the session counters. */
void gni_yamux_get_stats(const gni_yamux *ys, gni_yamux_stats *st);

/**
 * The session error: 0 while alive, else the code that ended it.
 */
int gni_yamux_error(const gni_yamux *ys);

/**
 * Encodes one 12-byte header into @out (spec "Framing"). For tests and
 * diagnostics.
 */
void gni_yamux_encode_header(uint8_t out[GNI_YAMUX_HEADER_LEN], uint8_t type, uint16_t flags,
                             uint32_t stream_id, uint32_t length);

#endif /* GN_YAMUX_H */
