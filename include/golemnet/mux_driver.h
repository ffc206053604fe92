/*
 * golemnet - the generic stream-multiplexer driver, for muxer components.
 *
 * Muxer components (yamux, mplex) have sans-I/O session cores with one API
 * shape: feed / drain / pull events / deadline + expiry / open / accept /
 * write returning the count taken / shutdown / reset / peek + consume /
 * release / priority (layers/mux/yamux/yamux.h, layers/mux/mplex/mplex.h).
 * This driver runs any such core, given as a gn_muxd_vtbl, over the
 * secured gn_stream below, implements gn_mux_session and exposes one
 * gn_stream per mux stream. A component's *_layer.c only adapts its core to
 * the vtable and points its gn_mux_ops entries at the gn_muxd_* functions.
 * Out-of-tree muxers use it the same way (see layers/mux/yamux/yamux_layer.c
 * for a complete adapter).
 *
 * Behaviour (the contract every muxer component gets from here):
 *
 * Writes. gn_stream_write() hands the bytes to the core at once. When the
 * core takes everything (it copies), the write completes with 0 from the
 * loop. When it takes less (window, stream_buffer_max or the session's
 * send budget session_send_max exhausted; see gn_mux_config), the
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
 * Output. The core's output is drained in chunks of GN_MUXD_OUT_CHUNK
 * bytes and written below; at most GN_MUXD_OUT_MAX bytes are written and
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
 * within stream_open_timeout; GN_ETOOBIG: a bound was exceeded). A stream
 * without traffic for stream_idle_timeout (see gn_mux_config) is reset in
 * the core (the peer sees a reset) and reports on_error(GN_ETIMEDOUT); the
 * session's one timer runs the idle scan (every quarter of the timeout
 * while streams exist) besides the core's deadlines. The
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
 * gn_muxd_go_away() also works for cores without Go Away (vt->go_away
 * NULL): the session then refuses new peer streams (reset) and
 * open_stream returns GN_EGOAWAY, locally only.
 *
 * Queries on a mux stream: GN_QUERY_STREAM_ID (uint64_t, the wire id),
 * GN_QUERY_MUXER (the component name), GN_QUERY_RTT (gn_time, last ping
 * round trip; GN_ENOTSUP when the core has no ping), GN_QUERY_RCMGR_STREAM
 * (the stream's span when the session is accounted, vt->stream_span); every other key (and
 * addresses) goes to the stream below (peer id, security protocol).
 *
 * No re-entry: no handler, completion or callback ever runs inside a call
 * the consumer or owner made; work is deferred through the loop. Streams
 * may outlive their session (session_close frees it after its callback);
 * they then fail writes with GN_ECLOSED and close normally.
 *
 * Thread context: every function and table entry here runs on the loop
 * thread of the gn_mux instance. No component is named here.
 *
 * Spec: docs/architecture.md, "Drivers shared by components".
 * Since: 0.1
 */
#ifndef GOLEMNET_MUX_DRIVER_H
#define GOLEMNET_MUX_DRIVER_H

#include "golemnet/loop.h"
#include "golemnet/mux.h"

GN_BEGIN_DECLS

/** Bytes drained from the core per write to the stream below. */
#define GN_MUXD_OUT_CHUNK (32u * 1024u)
/** Bytes written below and not yet completed, at most (plus one refused chunk). */
#define GN_MUXD_OUT_MAX (128u * 1024u)
/** session_close waits at most this long for its output to be written. */
#define GN_MUXD_LINGER (2u * GN_S)

/* Event types: the numbers both cores use (GNI_YAMUX_EV_*, GNI_MPLEX_EV_*). */
enum {
    GN_MUXD_EV_NONE = 0,
    GN_MUXD_EV_STREAM_OPENED = 1,
    GN_MUXD_EV_STREAM_DATA = 2,
    GN_MUXD_EV_STREAM_WRITABLE = 3,
    GN_MUXD_EV_STREAM_FIN = 4,
    GN_MUXD_EV_STREAM_RESET = 5,
    GN_MUXD_EV_STREAM_REFUSED = 6,
    GN_MUXD_EV_PING_RTT = 7,
    GN_MUXD_EV_GOAWAY = 8,
    GN_MUXD_EV_SESSION_END = 9
};

/** One core event in the driver's shape; unused fields zero. */
typedef struct gn_muxd_event {
    int type;               /* GN_MUXD_EV_* */
    uint64_t stream_id;     /* the core's stream handle */
    void *stream_user_data; /* as set with set_user_data */
    int err;                /* STREAM_RESET, STREAM_REFUSED, SESSION_END */
    uint32_t code;          /* GOAWAY: the peer's wire code */
    uint32_t count;         /* STREAM_REFUSED */
    gn_time rtt;            /* PING_RTT */
} gn_muxd_event;

/**
 * A session core as the driver sees it: a sans-I/O multiplexer (bytes in,
 * bytes out, events pulled). @core is the object create returned; stream
 * handles are uint64_t (the core's id or handle). Every entry is required
 * unless marked optional. Errors are negative gn_err codes; a session-level
 * error from feed / drain / on_expiry ends the session with that code.
 *
 * flow_control:  true when the protocol has per-stream windows (yamux); the
 *                driver then leaves the per-stream receive bound to the core.
 * create:        new session core (@initiator: we dialed) with limits @cfg
 *                at time @now (ns, monotonic); *@out receives it. 0 or error.
 * destroy:       frees the core and every stream in it.
 * feed:          consumes received bytes (borrowed), sets *@consumed.
 * drain:         appends output to @out; returns the bytes appended (0:
 *                none now), GN_ENOSPC when @out is too small for the next
 *                frame, or an error.
 * want_drain:    true when drain would produce output.
 * next_event:    pops one event into @ev; returns 1, 0 (none) or an error.
 * next_deadline: the next time on_expiry must run (GN_TIME_INFINITY: none).
 * on_expiry:     runs timers due at @now (keepalive, open timeouts).
 * open:          new outbound stream; *@id its handle. GN_ESTREAMLIMIT,
 *                GN_ELIMIT (ids exhausted), GN_ECLOSED, GN_ENOMEM.
 * accept:        accepts a peer stream (yamux ACK).
 * write:         copies up to @len bytes of @data into the stream's send
 *                queue; returns the count taken (0..@len; less when a
 *                window or buffer bound is reached: WRITABLE follows) or an
 *                error (GN_ECLOSED, GN_ESTREAMRESET, GN_ENOTFOUND).
 * shutdown:      half-closes our side (FIN) after the queued data.
 * reset:         resets the stream (RST); buffered data is dropped.
 * peek:          *@out = the next received bytes (borrowed until consume or
 *                the next feed); len 0 when none.
 * consume:       drops @n peeked bytes (returning window credit).
 * release:       forgets the stream handle (after FIN/RST both ways the core
 *                frees it); no events for it follow.
 * set_user_data: stores the pointer returned in events for that stream.
 * set_priority:  send class 0..7 for the core's scheduler.
 * stream_buffered: received, unconsumed bytes of one stream.
 * buffered:      received, unconsumed bytes of all streams.
 * send_queued:   optional (NULL: reported as 0): bytes the core accepted
 *                for sending and has not drained, all streams
 *                (gn_mux_metrics.send_queued_bytes). Since: 0.2
 * ping:          optional (NULL: gn_muxd_ping gives GN_ENOTSUP): sends a
 *                ping; GN_EAGAIN when one is already out.
 * go_away:       optional (NULL: emulated locally, see above): queues Go
 *                Away with @code.
 * goaway_err:    optional: maps a peer's Go Away code to 0 (normal: finish
 *                the streams) or the session error; NULL: 0 -> 0, others
 *                GN_EPROTO.
 * wire_id:       optional: the id GN_QUERY_STREAM_ID reports (NULL: the
 *                handle).
 * set_rcmgr:     optional (NULL: gn_muxd_set_rcmgr gives GN_ENOTSUP):
 *                attaches the core to connection span @conn of @rm, or
 *                detaches it (@rm NULL); the core accounts its streams and
 *                buffers as gn_mux_session_set_rcmgr() describes. Errors
 *                as that function. Since: 0.2
 * stream_span:   optional (NULL: GN_QUERY_RCMGR_STREAM is not answered):
 *                the stream's span, or NULL when it is not accounted.
 *                Since: 0.2
 * Since: 0.1
 */
typedef struct gn_muxd_vtbl {
    bool flow_control;
    int (*create)(bool initiator, const gn_mux_config *cfg, gn_time now, void **out);
    void (*destroy)(void *core);
    int (*feed)(void *core, const uint8_t *in, size_t len, size_t *consumed, gn_time now);
    int (*drain)(void *core, gn_buf *out, gn_time now);
    bool (*want_drain)(const void *core);
    int (*next_event)(void *core, gn_muxd_event *ev);
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
    size_t (*send_queued)(const void *core);
    int (*set_rcmgr)(void *core, gn_rcmgr *rm, gn_rcmgr_conn *conn);
    gn_rcmgr_stream *(*stream_span)(const void *core, uint64_t id);
} gn_muxd_vtbl;

/**
 * Starts a muxer session over @below: the gn_mux_ops.start of a component
 * built on this driver.
 *
 * @m:         the component instance (not NULL); m->ops->name is the muxer
 *             name, m->config the limits given to @vt->create.
 * @vt:        the core table (not NULL; kept by pointer: static storage).
 * @below:     the secured stream (not NULL); on 0 the session owns it,
 *             sets its handler and starts reading it.
 * @initiator: true on the side that dialed (yamux odd stream ids).
 * @cbs:       the owner's callbacks (not NULL, on_stream not NULL); copied.
 * @user_data: passed to @cbs; kept.
 * @out:       receives the session on 0 (not NULL); the caller ends it with
 *             gn_muxd_session_close() (through gn_mux_session_close()).
 *
 * Returns 0, or (nothing taken, @cbs never called): GN_EINVAL (a NULL
 * argument or no on_stream), GN_ECLOSED (@below closing or closed),
 * GN_ENOMEM, the core's error from @vt->create, or @below's error from
 * gn_stream_read_start().
 * Thread context: the loop thread of @m.
 * Since: 0.1
 */
GN_API int gn_muxd_session_new(gn_mux *m, const gn_muxd_vtbl *vt, gn_stream *below,
                               bool initiator, const gn_mux_session_cbs *cbs, void *user_data,
                               gn_mux_session **out);

/**
 * Opens an outbound stream: gn_mux_ops.open_stream.
 *
 * @ms:  a session from gn_muxd_session_new() (not NULL).
 * @out: receives the new stream on 0 (not NULL); the caller owns it and
 *       ends it with gn_stream_close(). Its SYN / NewStream goes out from
 *       the loop; writes before that are queued.
 *
 * Returns 0, or GN_EINVAL (@out NULL), GN_ECLOSED (the session ended or is
 * closing), GN_EGOAWAY (Go Away sent or received), GN_ESTREAMLIMIT
 * (max_outbound_streams open), GN_ELIMIT (the core ran out of stream
 * ids), GN_ERESOURCE (the resource manager refused the stream, see
 * gn_mux_session_set_rcmgr()), GN_ENOMEM.
 * Thread context: the loop thread.
 * Since: 0.1
 */
GN_API int gn_muxd_open_stream(gn_mux_session *ms, gn_stream **out);

/**
 * Attaches the session to a resource manager's connection span, or
 * detaches it (@rm and @conn NULL): gn_mux_ops.set_rcmgr; see
 * gn_mux_session_set_rcmgr() for what is accounted. The driver keeps @rm
 * to name the refusing scope in its log lines. When the core refuses the
 * attach with GN_ERESOURCE, the session ends with GN_ERESOURCE (on_end
 * follows from the loop) and GN_ERESOURCE is returned.
 *
 * Returns 0, or GN_ENOTSUP (vt->set_rcmgr NULL), GN_ECLOSED (the session
 * is closing or its core is gone; detaching still returns 0), or the
 * core's error (GN_EINVAL, GN_ESTATE, GN_ERESOURCE).
 * Thread context: the loop thread.
 * Since: 0.2
 */
GN_API int gn_muxd_set_rcmgr(gn_mux_session *ms, gn_rcmgr *rm, gn_rcmgr_conn *conn);

/**
 * Measures one round trip: gn_mux_ops.ping.
 *
 * @ms:  the session (not NULL).
 * @cb:  called once from the loop (not NULL): cb(@arg, 0, rtt) with the
 *       round trip in ns when the answer arrives, or cb(@arg, err, 0) when
 *       the session ends first (err: the session error, GN_ECLOSED after
 *       gn_muxd_session_close()). Several callers may wait for one ping.
 * @arg: passed to @cb.
 *
 * Returns 0, or (then @cb never runs) GN_ENOTSUP (the core has no ping),
 * GN_EINVAL (@cb NULL), GN_ECLOSED (the session ended or is closing),
 * GN_ENOMEM, or the core's error from sending the ping.
 * Thread context: the loop thread.
 * Since: 0.1
 */
GN_API int gn_muxd_ping(gn_mux_session *ms, gn_mux_ping_cb cb, void *arg);

/**
 * Sends Go Away with the mux-specific @code, once: gn_mux_ops.go_away.
 * Afterwards no new streams are opened either way; existing streams carry
 * on. For a core without Go Away (vt->go_away NULL) this takes effect
 * locally only (peer streams are refused). A no-op on an ended or closing
 * session, and on a second call.
 *
 * @ms:   the session (not NULL).
 * @code: the wire code (yamux: 0 normal, 1 protocol error, 2 internal).
 *
 * Thread context: the loop thread.
 * Since: 0.1
 */
GN_API void gn_muxd_go_away(gn_mux_session *ms, uint32_t code);

/**
 * Sets the local send priority of a stream: gn_mux_ops.set_priority.
 * Higher classes are drained first by the core's scheduler.
 *
 * @ms:   the session (not NULL).
 * @s:    a stream of @ms (from gn_muxd_open_stream() or on_stream).
 * @prio: 0 (bulk, the default) .. 7 (most urgent).
 *
 * Returns 0, or GN_EINVAL (@s NULL or not a stream of @ms), GN_ERANGE
 * (@prio > 7), GN_ECLOSED (the stream or the session is gone).
 * Thread context: the loop thread.
 * Since: 0.1
 */
GN_API int gn_muxd_set_priority(gn_mux_session *ms, gn_stream *s, uint8_t prio);

/**
 * Fills @m with the session's counters: gn_mux_ops.metrics. Streams open
 * (not yet closed by their consumers) by direction, the core's buffered
 * bytes, the bytes queued for sending in the core (vt->send_queued; 0
 * without it), the last ping round trip (0: none yet). Cannot fail.
 *
 * @ms: the session (not NULL).
 * @m:  written (not NULL).
 *
 * Thread context: the loop thread.
 * Since: 0.1
 */
GN_API void gn_muxd_metrics(gn_mux_session *ms, gn_mux_metrics *m);

/**
 * Closes the session: gn_mux_ops.session_close. Sends Go Away (normal),
 * resets every open stream (consumers get on_error(GN_ECLOSED), pending
 * writes complete with GN_ECANCELED), flushes the output (for at most
 * GN_MUXD_LINGER), closes the stream below, then calls @cb from the loop.
 * The session is freed after @cb returns; streams may outlive it (writes
 * then fail with GN_ECLOSED; they still must be closed). on_end is not
 * called for an owner's close.
 *
 * @ms:  the session (not NULL); calling this twice is a bug (ignored).
 * @cb:  completion (NULL allowed), called once from the loop, never from
 *       inside this call.
 * @arg: passed to @cb.
 *
 * Thread context: the loop thread.
 * Since: 0.1
 */
GN_API void gn_muxd_session_close(gn_mux_session *ms, gn_mux_close_cb cb, void *arg);

GN_END_DECLS

#endif /* GOLEMNET_MUX_DRIVER_H */
