/*
 * Generic stream-multiplexer driver (internal).
 *
 * Muxer components (yamux, mplex) have sans-I/O session cores with one API
 * shape: feed / drain / pull events / deadline + expiry / open / accept /
 * write returning the count taken / shutdown / reset / peek + consume /
 * release / priority (layers/mux/yamux/yamux.h, layers/mux/mplex/mplex.h).
 * This driver runs any such core, given as a gni_muxd_vtbl, over the
 * secured gn_stream below, implements gn_mux_session and exposes one
 * gn_stream per mux stream. A component's *_layer.c only adapts its core to
 * the vtable and points its gn_mux_ops entries at the gni_muxd_* functions.
 *
 * Behaviour (the contract every muxer component gets from here):
 *
 * Writes. gn_stream_write() hands the bytes to the core at once. When the
 * core takes everything (it copies), the write completes with 0 from the
 * loop. When it takes less (window or stream_buffer_max exhausted), the
 * write is kept, its slices stay borrowed (zero copy), the rest goes in as
 * the core reports WRITABLE, and the write then completes with 0. While
 * such a write is pending, further writes return GN_EAGAIN and an
 * on_writable follows once it has been taken. Every accepted write
 * completes exactly once: 0, GN_ECANCELED (the consumer closed or reset the
 * stream, or the owner closed the session first), or the stream's error
 * (GN_ESTREAMRESET when the peer reset it, the session error when the
 * session ended).
 *
 * Reads. Received bytes stay in the core until the consumer reads: they are
 * delivered through on_data only while the stream is reading, and only
 * delivered bytes are consumed (returned as window credit). read_stop
 * therefore closes that stream's window and the peer stops sending on that
 * stream only. on_eof follows the last byte once the peer half-closed.
 *
 * Session receive bound ("read stop on the lowest stream"). Input from the
 * stream below is fed to the core only while the session's buffered bytes
 * (received, unread, all streams) stay below session_buffer_max minus a
 * slack of min(max_frame_len, session_buffer_max / 4); the rest of that
 * delivery is held by the driver (so at most one on_data of the stream
 * below is held) and reading below stops until the consumers have read
 * enough ("read stop on the lowest stream"). For cores without
 * flow control (vt->flow_control false: mplex) the same rule applies per
 * stream with stream_buffer_max. The slack keeps frames that are already
 * announced from overflowing a bound (a core resets a stream whose frame
 * would overflow); peers that send frames longer than the slack can still
 * cause such resets. Hence gn_mux_metrics.buffered_bytes never exceeds
 * session_buffer_max.
 *
 * Fairness. After feeding 256 KiB of input in one loop turn a session
 * stops reading below and resumes from a deferred call, so one busy
 * session cannot hold the loop (and every other event on it) for as long
 * as the stream below can deliver.
 *
 * Output. The core's output is drained in chunks of GNI_MUXD_OUT_CHUNK
 * bytes and written below; at most GNI_MUXD_OUT_MAX bytes are written and
 * not yet completed. When below returns GN_EAGAIN the drained chunk is kept
 * and draining stops until below's on_writable. Data the core has not
 * drained stays in the core, so its priority scheduling decides what goes
 * next (a high-priority stream waits behind at most the bytes in flight).
 *
 * Accepting. A peer stream is handed to the owner's on_stream at once but
 * accepted in the core (yamux ACK) only when its consumer first reads,
 * writes or shuts it down; until then it counts against
 * max_pending_streams. Closing it unaccepted refuses it (reset).
 *
 * Stream ends. FIN -> on_eof; peer RST -> on_error(GN_ESTREAMRESET);
 * stream-level core errors -> on_error(that code) (GN_ETIMEDOUT: no ACK
 * within stream_open_timeout; GN_ETOOBIG: a bound was exceeded). The
 * consumer's shutdown -> core shutdown (after a pending write); reset ->
 * core reset + release; close -> core shutdown (graceful FIN, or a reset
 * when a write was cut short) + release.
 *
 * Session ends. A core session error (protocol violation: the core queues
 * Go Away with its code, which is flushed), a peer Go Away with a non-zero
 * code (GN_EPROTO, or what vt->goaway_err maps it to), EOF (GN_EEOF) or an
 * error from below: every open stream gets on_error with the code, below
 * is shut down after the pending output, and on_end(code) runs. After a
 * peer's normal Go Away no new streams are opened either way; existing
 * streams finish, and on_end(GN_EGOAWAY) runs once the last one is closed.
 *
 * gni_muxd_go_away() also works for cores without Go Away (vt->go_away
 * NULL): the session then refuses new peer streams (reset) and
 * open_stream returns GN_EGOAWAY, locally only.
 *
 * Queries on a mux stream: GN_QUERY_STREAM_ID (uint64_t, the wire id),
 * GN_QUERY_MUXER (the component name), GN_QUERY_RTT (gn_time, last ping
 * round trip; GN_ENOTSUP when the core has no ping); every other key (and
 * addresses) goes to the stream below (peer id, security protocol).
 *
 * No re-entry: no handler, completion or callback ever runs inside a call
 * the consumer or owner made; work is deferred through the loop. Streams
 * may outlive their session (session_close frees it after its callback);
 * they then fail writes with GN_ECLOSED and close normally.
 *
 * Thread context: loop thread only. No component is named here.
 */
#ifndef GNI_MUXD_H
#define GNI_MUXD_H

#include "golemnet/loop.h"
#include "golemnet/mux.h"

/** Bytes drained from the core per write to the stream below. */
#define GNI_MUXD_OUT_CHUNK (32u * 1024u)
/** Bytes written below and not yet completed, at most (plus one refused chunk). */
#define GNI_MUXD_OUT_MAX (128u * 1024u)
/** session_close waits at most this long for its output to be written. */
#define GNI_MUXD_LINGER (2u * GN_S)

/* Event types: the numbers both cores use (GNI_YAMUX_EV_*, GNI_MPLEX_EV_*). */
enum {
    GNI_MUXD_EV_NONE = 0,
    GNI_MUXD_EV_STREAM_OPENED = 1,
    GNI_MUXD_EV_STREAM_DATA = 2,
    GNI_MUXD_EV_STREAM_WRITABLE = 3,
    GNI_MUXD_EV_STREAM_FIN = 4,
    GNI_MUXD_EV_STREAM_RESET = 5,
    GNI_MUXD_EV_STREAM_REFUSED = 6,
    GNI_MUXD_EV_PING_RTT = 7,
    GNI_MUXD_EV_GOAWAY = 8,
    GNI_MUXD_EV_SESSION_END = 9
};

/** One core event in the driver's shape; unused fields zero. */
typedef struct gni_muxd_event {
    int type;               /* GNI_MUXD_EV_* */
    uint64_t stream_id;     /* the core's stream handle */
    void *stream_user_data; /* as set with set_user_data */
    int err;                /* STREAM_RESET, STREAM_REFUSED, SESSION_END */
    uint32_t code;          /* GOAWAY: the peer's wire code */
    uint32_t count;         /* STREAM_REFUSED */
    gn_time rtt;            /* PING_RTT */
} gni_muxd_event;

/**
 * A session core as the driver sees it. Stream handles are uint64_t (the
 * core's id or handle). Every entry is required unless marked optional;
 * semantics and errors are those of the cores' headers.
 *
 * flow_control: true when the protocol has per-stream windows (yamux); the
 *   driver then leaves the per-stream receive bound to the core.
 * create:  new session (initiator = we dialed); *out receives the core.
 * ping:    optional (NULL: gn_mux_ping gives GN_ENOTSUP).
 * go_away: optional (NULL: emulated locally, see above).
 * goaway_err: optional: maps a peer's Go Away code to 0 (normal: finish the
 *   streams) or the session error; NULL: 0 -> 0, others GN_EPROTO.
 * wire_id: optional: the id GN_QUERY_STREAM_ID reports (NULL: the handle).
 */
typedef struct gni_muxd_vtbl {
    bool flow_control;
    int (*create)(bool initiator, const gn_mux_config *cfg, gn_time now, void **out);
    void (*destroy)(void *core);
    int (*feed)(void *core, const uint8_t *in, size_t len, size_t *consumed, gn_time now);
    int (*drain)(void *core, gn_buf *out, gn_time now);
    bool (*want_drain)(const void *core);
    int (*next_event)(void *core, gni_muxd_event *ev);
    gn_time (*next_deadline)(const void *core);
    int (*on_expiry)(void *core, gn_time now);
    int (*open)(void *core, gn_time now, uint64_t *id);
    int (*accept)(void *core, uint64_t id);
    long (*write)(void *core, uint64_t id, const uint8_t *data, size_t len);
    int (*shutdown)(void *core, uint64_t id);
    int (*reset)(void *core, uint64_t id);
    int (*peek)(const void *core, uint64_t id, gn_slice *out);
    int (*consume)(void *core, uint64_t id, size_t n);
    int (*release)(void *core, uint64_t id);
    int (*set_user_data)(void *core, uint64_t id, void *user_data);
    int (*set_priority)(void *core, uint64_t id, uint8_t prio);
    size_t (*stream_buffered)(const void *core, uint64_t id);
    size_t (*buffered)(const void *core);
    int (*ping)(void *core, gn_time now);
    int (*go_away)(void *core, uint32_t code);
    int (*goaway_err)(uint32_t code);
    uint64_t (*wire_id)(uint64_t id);
} gni_muxd_vtbl;

/**
 * Starts a session of component @m (m->ops->name is the muxer name) over
 * @below with core @vt. On 0 the session owns @below, starts reading it,
 * and *@out is set; @cbs is copied, @user_data kept. On error nothing was
 * taken. Errors: GN_EINVAL (NULL argument, no on_stream), GN_ENOMEM, the
 * core's create error, GN_ECLOSED (@below closing).
 */
int gni_muxd_session_new(gn_mux *m, const gni_muxd_vtbl *vt, gn_stream *below, bool initiator,
                         const gn_mux_session_cbs *cbs, void *user_data, gn_mux_session **out);

/**
 * gn_mux_ops.open_stream: a new outbound stream in *@out (the caller owns
 * it and closes it). Its SYN / NewStream goes out from the loop. Errors:
 * GN_ECLOSED (session ended or closing), GN_EGOAWAY (Go Away sent or
 * received), GN_ESTREAMLIMIT (max_outbound_streams), GN_ELIMIT, GN_ENOMEM.
 */
int gni_muxd_open_stream(gn_mux_session *ms, gn_stream **out);

/**
 * gn_mux_ops.ping: measures one round trip; @cb(arg, 0, rtt) runs from the
 * loop when the answer arrives, or @cb(arg, err, 0) when the session ends
 * first (err: the session error, GN_ECLOSED on session_close). Several
 * callers may wait for the same ping. Errors (then @cb never runs):
 * GN_ENOTSUP (core without ping), GN_ECLOSED, GN_EINVAL (NULL @cb),
 * GN_ENOMEM.
 */
int gni_muxd_ping(gn_mux_session *ms, gn_mux_ping_cb cb, void *arg);

/**
 * gn_mux_ops.go_away: sends Go Away with the mux-specific @code (once);
 * afterwards no new streams are opened either way; existing streams carry
 * on. No-op on an ended or closing session.
 */
void gni_muxd_go_away(gn_mux_session *ms, uint32_t code);

/**
 * gn_mux_ops.set_priority: local send priority of @s (a stream of @ms),
 * 0 (bulk) .. 7. Errors: GN_EINVAL (@s not a stream of @ms), GN_ERANGE,
 * GN_ECLOSED (stream or session gone).
 */
int gni_muxd_set_priority(gn_mux_session *ms, gn_stream *s, uint8_t prio);

/**
 * gn_mux_ops.metrics: streams open (not yet closed by their consumers),
 * by direction, the core's buffered bytes, the last ping round trip.
 */
void gni_muxd_metrics(gn_mux_session *ms, gn_mux_metrics *m);

/**
 * gn_mux_ops.session_close: Go Away (normal), reset every open stream
 * (consumers get on_error GN_ECLOSED, pending writes complete with
 * GN_ECANCELED), flush the output (at most GNI_MUXD_LINGER), close below,
 * then @cb (may be NULL) from the loop; the session is freed after @cb
 * returns. on_end is not called for an owner's close. Calling it twice is
 * a bug (ignored).
 */
void gni_muxd_session_close(gn_mux_session *ms, gn_mux_close_cb cb, void *arg);

#endif /* GNI_MUXD_H */
