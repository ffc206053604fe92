/*
 * mplex sans-I/O core (internal; never installed).
 *
 * Spec: libp2p/specs mplex/README.md ("/mplex/6.7.0"): every message is
 * uvarint(id << 3 | flag), uvarint(length), length bytes. Flags:
 * 0 NewStream (body = stream name), 1 MessageReceiver, 2 MessageInitiator,
 * 3 CloseReceiver, 4 CloseInitiator, 5 ResetReceiver, 6 ResetInitiator.
 * Each side numbers the streams it opens from 0 upwards (as go-mplex and
 * js-mplex do); the *Initiator / *Receiver flag variants say which side
 * opened the stream, so a stream is identified by (id, who opened it).
 * Maximum message size 1 MiB (the go-multiplex value the spec cites).
 *
 * The API has the same shape as the yamux core (layers/mux/yamux/yamux.h):
 * feed / drain / pull events (same numbering) / peek + consume / write
 * returning the count taken / shutdown / reset / release / priority. The
 * differences:
 *   - a stream handle is uint64: GNI_MPLEX_HANDLE(id, remote), where
 *     remote is 1 for streams the peer opened;
 *   - there is no flow control in mplex: received, unconsumed bytes of a
 *     stream are bounded by config.stream_buffer_max and of the session by
 *     config.session_buffer_max; a message that would exceed either resets
 *     that stream (Reset frame out, GNI_MPLEX_EV_STREAM_RESET with
 *     GN_ETOOBIG), as the spec's implementation notes allow. Sends are
 *     bounded by stream_buffer_max of queued bytes per stream and by
 *     session_send_max for all streams together (first come, first
 *     served within a priority class; see core/gni_mstate.h "send
 *     budget"): a stream told WRITABLE while others wait for the budget
 *     holds its next turn until it writes, half-closes or is reset;
 *   - there is no ping and no Go Away; a session error produces no output
 *     (the glue closes the connection), and next_deadline is always
 *     GN_TIME_INFINITY;
 *   - accept has no wire effect.
 *
 * QoS as in yamux: stream control frames (NewStream, Close, Reset) first,
 * then data chunks (<= 16 KiB, <= max_frame_len) by strict priority
 * 7..0 with round robin inside a class. A Close follows its stream's data.
 *
 * Thread context: none; one thread per session. No callbacks.
 *
 * Session-ending errors (feed returns them, then SESSION_END is reported):
 *   GN_EBADFRAME   flag 7, a varint longer than 10 bytes or above 2^64-1,
 *                  a Close/Reset with a body;
 *   GN_EFRAMESIZE  a length above max_frame_len (default 1 MiB);
 *   GN_EPROTO      NewStream for a stream id the peer already has open
 *                  (including one we refused whose Reset is not written
 *                  yet), a *Receiver frame for an id we never opened, a
 *                  message after the peer's Close;
 *   GN_ESTREAMLIMIT  a NewStream to refuse while max_inbound_streams +
 *                  GNI_MPLEX_REFUSE_MARGIN refused streams still wait for
 *                  their Reset (see "Stream limits");
 *   GN_ENOMEM.
 *
 * Stream limits. What happens to a peer's NewStream (a burst of pipelined
 * NewStreams in one feed is handled message by message):
 *   - streams the peer opened and we hold (pending or accepted, until the
 *     object is freed) < max_inbound_streams and pending (not accepted) <
 *     max_pending_streams (default 256): a stream object, STREAM_OPENED;
 *   - otherwise the stream is refused: no object, one ResetReceiver for
 *     that id queued for the drain and a coalesced
 *     GNI_MPLEX_EV_STREAM_REFUSED (GN_ESTREAMLIMIT); the session goes on.
 *     Each refused stream gets exactly one Reset; none if the peer sends
 *     ResetInitiator for it before ours was drained. Its later messages
 *     are dropped;
 *   - the refused streams waiting for their Reset are bounded by
 *     max_inbound_streams + GNI_MPLEX_REFUSE_MARGIN. Each is a stream the
 *     peer still counts as open, so a peer that keeps at most
 *     max_inbound_streams streams open never reaches the bound, however
 *     fast it opens them and whether it reads or not. A NewStream that
 *     would exceed it (the peer is more than the margin beyond its limit
 *     with Resets it has not let us write, e.g. it does not read, or one
 *     feed carries that many excess NewStreams) ends the session with
 *     GN_ESTREAMLIMIT. The core never stops taking input for refusals: see
 *     core/gni_mstate.h for why.
 * Frames for streams that no longer exist are dropped quietly (a reset may
 * be in flight).
 */
#ifndef GN_MPLEX_H
#define GN_MPLEX_H

#include "golemnet/common.h"
#include "golemnet/err.h"
#include "golemnet/mux.h"
#include "golemnet/rcmgr.h"

/* Wire constants (spec "Flag Values"). */
#define GNI_MPLEX_NEW_STREAM 0u
#define GNI_MPLEX_MSG_RECEIVER 1u
#define GNI_MPLEX_MSG_INITIATOR 2u
#define GNI_MPLEX_CLOSE_RECEIVER 3u
#define GNI_MPLEX_CLOSE_INITIATOR 4u
#define GNI_MPLEX_RESET_RECEIVER 5u
#define GNI_MPLEX_RESET_INITIATOR 6u
/** Default maximum message size (spec "Writing to a stream"). */
#define GNI_MPLEX_MAX_MSG (1024u * 1024u)
/** Largest data chunk the scheduler sends in one turn. */
#define GNI_MPLEX_CHUNK_MAX (16u * 1024u)
/** Bytes of a NewStream name kept (longer names are truncated locally). */
#define GNI_MPLEX_NAME_MAX 1024u
/**
 * Refused streams whose Reset may wait for the drain beyond
 * max_inbound_streams (see "Stream limits" at the top).
 */
#define GNI_MPLEX_REFUSE_MARGIN 256u
/** Priority classes (0 bulk .. 7 highest). */
#define GNI_MPLEX_PRIO_CLASSES 8u
/** Largest stream id we can address (id << 3 must fit 64 bits). */
#define GNI_MPLEX_ID_MAX ((UINT64_C(1) << 61) - 1)

/** Stream handle from (id, opened by the peer). */
#define GNI_MPLEX_HANDLE(id, remote) (((uint64_t)(id) << 1) | ((remote) ? 1u : 0u))
#define GNI_MPLEX_HANDLE_ID(h) ((uint64_t)(h) >> 1)
#define GNI_MPLEX_HANDLE_REMOTE(h) (((h)&1u) != 0)

typedef struct gni_mplex gni_mplex;

/* Event types: the same numbers as GNI_YAMUX_EV_*. */
enum {
    GNI_MPLEX_EV_NONE = 0,
    GNI_MPLEX_EV_STREAM_OPENED = 1,   /* NewStream from the peer: accept or reset */
    GNI_MPLEX_EV_STREAM_DATA = 2,     /* new bytes readable */
    GNI_MPLEX_EV_STREAM_WRITABLE = 3, /* a short write can take more now */
    GNI_MPLEX_EV_STREAM_FIN = 4,      /* peer Close, all data before it consumed */
    /** err: GN_ESTREAMRESET (peer Reset) or GN_ETOOBIG (buffer bound hit). */
    GNI_MPLEX_EV_STREAM_RESET = 5,
    /** count streams refused since the last such event; err GN_ESTREAMLIMIT. */
    GNI_MPLEX_EV_STREAM_REFUSED = 6,
    /* 7 (ping) and 8 (go away) do not exist in mplex */
    GNI_MPLEX_EV_SESSION_END = 9 /* err: the session error; reported once, last */
};

/** One event; fields not listed for its type are zero. */
typedef struct gni_mplex_event {
    int type;               /* GNI_MPLEX_EV_* */
    uint64_t stream_id;     /* handle, GNI_MPLEX_HANDLE() */
    void *stream_user_data; /* stream events */
    int err;                /* STREAM_RESET, STREAM_REFUSED, SESSION_END */
    uint32_t count;         /* STREAM_REFUSED */
} gni_mplex_event;

/* Stream states: the same numbers as GNI_YAMUX_ST_* (no SYN_SENT). */
enum {
    GNI_MPLEX_ST_PENDING = 2, /* peer opened it, not accepted yet */
    GNI_MPLEX_ST_ESTABLISHED = 3,
    GNI_MPLEX_ST_HALF_CLOSED_LOCAL = 4,
    GNI_MPLEX_ST_HALF_CLOSED_REMOTE = 5,
    GNI_MPLEX_ST_CLOSED = 6,
    GNI_MPLEX_ST_RESET = 7
};

typedef struct gni_mplex_stream_info {
    int state;            /* GNI_MPLEX_ST_* */
    bool inbound;
    uint8_t priority;
    size_t recv_buffered; /* received, unconsumed */
    size_t send_queued;   /* accepted, not yet drained */
} gni_mplex_stream_info;

typedef struct gni_mplex_stats {
    uint32_t streams_inbound;
    uint32_t streams_outbound;
    uint32_t streams_pending;
    size_t recv_buffered;
    size_t send_queued;
    uint64_t streams_refused;
    uint32_t refused_waiting; /* refused streams whose Reset is not drained yet */
    uint64_t streams_overflowed; /* reset for exceeding a buffer bound */
    uint64_t rc_refused; /* resource manager refusals: streams, received data, budget growth */
} gni_mplex_stats;

/**
 * Creates a session. @initiator: we dialed (the spec's session initiator;
 * it only affects logs, ids are per side). @cfg: copied; NULL or zero
 * fields take defaults (1024 streams each way, 256 pending, max_frame_len
 * 1 MiB, stream_buffer_max 1 MiB, session_buffer_max 64 MiB,
 * session_send_max 16 MiB); the window,
 * keepalive and open-timeout fields are unused. @now: unused, for symmetry
 * with yamux. Errors: GN_EINVAL (@out NULL or bad cfg->version), GN_ENOMEM.
 */
int gni_mplex_new(bool initiator, const gn_mux_config *cfg, gn_time now, gni_mplex **out);

/** Frees @ms and everything it holds (NULL is a no-op). */
void gni_mplex_free(gni_mplex *ms);

/**
 * Resource accounting (include/golemnet/rcmgr.h; core/gni_mstate.h,
 * "resource accounting"): attaches @ms to connection span @conn of @rm
 * (@rm NULL detaches; do it before gn_rcmgr_conn_done()). From then on:
 *   - each new stream opens a stream span under @conn first; refused, a
 *     peer's NewStream is answered with a Reset (counted in
 *     streams_refused and rc_refused, REFUSED event with GN_ERESOURCE) and
 *     gni_mplex_open() fails with GN_ERESOURCE;
 *   - mplex has no flow control, so the body of each message is reserved
 *     when its header arrives (GN_RCMGR_PRIO_HIGH), for the session, on
 *     @conn (gni_mstate_rx_reserve(): in 64 KiB steps, released as the
 *     application consumes it or the stream drops it; an idle stream
 *     holds no memory); refused, the stream is reset (the peer gets a
 *     Reset, the owner a RESET event with GN_ERESOURCE; the message is not
 *     stored);
 *   - the session send budget is reserved on @conn.
 * Errors: as gni_mstate_set_rcmgr().
 */
int gni_mplex_set_rcmgr(gni_mplex *ms, gn_rcmgr *rm, gn_rcmgr_conn *conn);

/** The span of stream @h (NULL: unknown, released or not accounted). */
gn_rcmgr_stream *gni_mplex_stream_span(const gni_mplex *ms, uint64_t h);

/**
 * Feeds received bytes (any split). @consumed (may be NULL): bytes
 * processed (@len on success; up to the offending byte when this call ends
 * the session). Returns 0 or the session-ending error (then again on every
 * later call, with *@consumed 0).
 */
int gni_mplex_feed(gni_mplex *ms, const uint8_t *in, size_t len, size_t *consumed,
                   gn_time now);

/**
 * Appends whole frames to @out until nothing is pending or the next frame
 * does not fit (data chunks shrink to fit). Returns the bytes appended, or
 * GN_ENOSPC when output is pending and no frame fits. Writes nothing after
 * the session ended.
 */
int gni_mplex_drain(gni_mplex *ms, gn_buf *out, gn_time now);

/** True when gni_mplex_drain() has something to write. */
bool gni_mplex_want_drain(const gni_mplex *ms);

/** Pops the next event (1) or reports none (0). Order as in yamux. */
int gni_mplex_next_event(gni_mplex *ms, gni_mplex_event *ev);

/** Always GN_TIME_INFINITY (mplex has no timers); for symmetry with yamux. */
gn_time gni_mplex_next_deadline(const gni_mplex *ms);

/** No-op returning 0, or the session error. */
int gni_mplex_on_expiry(gni_mplex *ms, gn_time now);

/**
 * Opens a stream: NewStream with @name (@name_len bytes, may be 0;
 * NULL: the decimal stream id, as go-mplex and js-mplex do). @out receives
 * the handle. Errors: GN_ECLOSED, GN_ESTREAMLIMIT (max_outbound_streams),
 * GN_ETOOBIG (@name_len > GNI_MPLEX_NAME_MAX), GN_ELIMIT (ids exhausted),
 * GN_ERESOURCE (the resource manager refused the stream), GN_ENOMEM.
 */
int gni_mplex_open(gni_mplex *ms, const char *name, size_t name_len, uint64_t *out);

/** Accepts a pending peer stream. Errors: GN_ENOTFOUND, GN_ESTATE, GN_ECLOSED. */
int gni_mplex_accept(gni_mplex *ms, uint64_t h);

/**
 * Copies up to @len bytes for sending; takes at most stream_buffer_max -
 * queued and what the session send budget leaves this stream
 * (session_send_max - all streams' queued bytes; 0 while other streams
 * wait for it first). Returns the count taken; when short, a WRITABLE
 * event follows.
 * Errors: GN_ENOTFOUND, GN_ESTATE (not accepted), GN_EPIPE (we closed),
 * GN_ESTREAMRESET, GN_ECLOSED, GN_ENOMEM.
 */
long gni_mplex_stream_write(gni_mplex *ms, uint64_t h, const uint8_t *data, size_t len);

/** Bytes gni_mplex_stream_write() would take now (0 on any error). */
size_t gni_mplex_stream_write_space(const gni_mplex *ms, uint64_t h);

/** Half-close: Close after the queued data. Errors: GN_ENOTFOUND, GN_ESTATE, GN_ECLOSED. */
int gni_mplex_stream_shutdown(gni_mplex *ms, uint64_t h);

/** Reset: Reset frame first, queues dropped. Errors: GN_ENOTFOUND, GN_ECLOSED. */
int gni_mplex_stream_reset(gni_mplex *ms, uint64_t h);

/** Borrows the first run of unconsumed bytes. 1 with data, 0 none, GN_ENOTFOUND. */
int gni_mplex_stream_peek(const gni_mplex *ms, uint64_t h, gn_slice *out);

/** Consumes @n buffered bytes (clamped). Returns 0 or GN_ENOTFOUND. */
int gni_mplex_stream_consume(gni_mplex *ms, uint64_t h, size_t n);

/** Copies up to @len bytes to @out and consumes them. Count or GN_ENOTFOUND. */
long gni_mplex_stream_read(gni_mplex *ms, uint64_t h, uint8_t *out, size_t len);

/**
 * The application is done with @h; same rules as gni_yamux_stream_release():
 * a stream still open for writing is reset, a half-closed one flushes its
 * data and Close and is freed at the peer's Close or Reset (its later data
 * is dropped). Errors: GN_ENOTFOUND.
 */
int gni_mplex_stream_release(gni_mplex *ms, uint64_t h);

/** Sets the user_data reported in @h's events. Errors: GN_ENOTFOUND. */
int gni_mplex_stream_set_user_data(gni_mplex *ms, uint64_t h, void *user_data);

/** Priority class 0..7 (local only). Errors: GN_ENOTFOUND, GN_ERANGE. */
int gni_mplex_stream_set_priority(gni_mplex *ms, uint64_t h, uint8_t prio);

/**
 * The stream's name (NewStream body, at most GNI_MPLEX_NAME_MAX bytes kept),
 * borrowed until the stream is released. Errors: GN_ENOTFOUND.
 */
int gni_mplex_stream_name(const gni_mplex *ms, uint64_t h, gn_slice *out);

/** Fills *@info. Errors: GN_ENOTFOUND. */
int gni_mplex_stream_get_info(const gni_mplex *ms, uint64_t h, gni_mplex_stream_info *info);

/** Received, unconsumed bytes across all streams. */
size_t gni_mplex_buffered(const gni_mplex *ms);

/** Bytes accepted for sending, not yet drained, all streams (<= session_send_max). */
size_t gni_mplex_send_queued(const gni_mplex *ms);

/** Fills *@st. */
void gni_mplex_get_stats(const gni_mplex *ms, gni_mplex_stats *st);

/** 0 while alive, else the error that ended the session. */
int gni_mplex_error(const gni_mplex *ms);

/**
 * Encodes a frame header (uvarint(id << 3 | flag), uvarint(len)) into @out
 * (@out_len bytes, 20 always suffice). Returns the header length or
 * GN_ENOSPC / GN_ERANGE (id > GNI_MPLEX_ID_MAX or flag > 6).
 */
int gni_mplex_encode_header(uint8_t *out, size_t out_len, uint64_t id, unsigned flag,
                            uint64_t len);

#endif /* GN_MPLEX_H */
