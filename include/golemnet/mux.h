/*
 * golemnet - stream multiplexer ops: many streams over one secured stream.
 *
 * A muxer session wraps one gn_stream (its `below`) and produces any number
 * of gn_streams, opened locally (open_stream) or by the peer (on_stream).
 * Built-in: "/yamux/1.0.0", "/mplex/6.7.0".
 */
#ifndef GOLEMNET_MUX_H
#define GOLEMNET_MUX_H

#include "golemnet/layer.h"
#include "golemnet/rcmgr.h"
#include "golemnet/stream.h"

GN_BEGIN_DECLS

/**
 * ABI version: (kind << 16) | revision, so a table of another kind never passes.
 * Revision 2 added `caps`, revision 3 `set_rcmgr` (at the end of the
 * table: components built against revision 2 recompile unchanged, with
 * set_rcmgr NULL).
 */
#define GN_MUX_ABI 0x30003u

/*
 * Capability bits (gn_mux_ops.caps): what a muxer promises beyond the
 * common contract (streams, half-close, reset, stream limits, bounded
 * buffering). Code that must know what a muxer offers (the
 * conformance suites) reads these bits, never its name.
 */
/**
 * Flow control per stream: a stream whose reader stops holds back only its
 * own writer (initial_window); other streams keep flowing both ways.
 * Without it a reader that stops eventually stops the session's input for
 * all streams (the session buffer bound). Since: 0.1.
 */
#define GN_MUX_CAP_FLOW_CONTROL 0x1u
/**
 * gn_mux_ping() measures a round trip (and GN_QUERY_RTT answers); without
 * it gn_mux_ping() returns GN_ENOTSUP. Since: 0.1.
 */
#define GN_MUX_CAP_PING 0x2u
/**
 * The session pings every keepalive_interval and ends with GN_ETIMEDOUT
 * when a ping goes unanswered for another interval. Since: 0.1.
 */
#define GN_MUX_CAP_KEEPALIVE 0x4u
/**
 * Go Away is a wire frame: after gn_mux_go_away() the peer learns it,
 * refuses to open streams itself (GN_EGOAWAY), and its session ends with
 * GN_EGOAWAY once its last stream closed. A protocol violation is answered
 * with a Go Away before the session closes. Without it Go Away is local:
 * the sender refuses new streams from the peer with a reset, and a
 * violation is answered with silence. Since: 0.1.
 */
#define GN_MUX_CAP_GOAWAY 0x8u
/**
 * The peer acknowledges each new stream; a stream not acknowledged within
 * stream_open_timeout fails with GN_ETIMEDOUT. Since: 0.1.
 */
#define GN_MUX_CAP_OPEN_ACK 0x10u
/** Every capability bit this version defines. */
#define GN_MUX_CAP_ALL 0x1fu

typedef struct gn_mux gn_mux;
typedef struct gn_mux_ops gn_mux_ops;
typedef struct gn_mux_session gn_mux_session;

/**
 * Muxer limits. Fill with gn_mux_config_default(); zero fields take the
 * defaults below (except keepalive_interval and stream_idle_timeout, where
 * 0 means off).
 *
 * Stream limits (the built-in yamux and mplex; each muxer's core header
 * has the details). A stream the peer opens while it already has
 * max_inbound_streams open with us, or while max_pending_streams of its
 * streams wait to be accepted (or, in yamux, after a Go Away), is refused:
 * it gets exactly one reset on the wire, the session goes on and the owner
 * sees nothing but a log line. A peer that stays within
 * max_inbound_streams is never disconnected for opening streams, however
 * fast. Resets still to be written are bounded by max_inbound_streams +
 * 256: a peer with more refused streams than that unanswered at once (it
 * opens far beyond its limit and does not read our resets) is cut off with
 * GN_ESTREAMLIMIT.
 *
 * Send bounds (the built-in yamux and mplex, through the shared stream
 * state in core/gni_mstate.h). Bytes a stream's writer handed over and the
 * muxer has not yet written to the connection are bounded twice: per
 * stream by stream_buffer_max and per session, over all streams together,
 * by session_send_max. A write that finds either bound (or, in yamux, the
 * peer's window) full is taken in part; through the mux driver the
 * gn_stream_write() is then accepted and held (its bytes stay borrowed),
 * further writes return GN_EAGAIN, and on_writable follows once the held
 * write is taken: the same push-back for all three bounds. No byte is
 * dropped and neither the stream nor the session ends for it.
 * Fairness at the session bound: streams that find it full wait in arrival
 * order (a stream of a higher priority class, gn_mux_set_priority(), ahead
 * of lower ones); while any stream waits, bytes that drain go to the first
 * waiting stream only (others queue behind it), and a stream the bound
 * stops again goes to the back of its class. With the per-stream bound one
 * stream holds at most stream_buffer_max of the session's budget. What is
 * sent first stays the scheduler's choice (priorities, round robin).
 */
typedef struct gn_mux_config {
    uint32_t version;              /* GN_MUX_CONFIG_VERSION */
    uint32_t max_inbound_streams;  /* open peer-initiated streams; default 1024 */
    uint32_t max_outbound_streams; /* default 1024 */
    uint32_t max_pending_streams;  /* inbound, not yet accepted; default 256 */
    uint32_t initial_window;       /* receive window per stream, bytes; default 256 KiB */
    uint32_t max_window;           /* largest window we grant; default 16 MiB */
    size_t max_frame_len;          /* default 1 MiB (mplex), 256 KiB data (yamux) */
    /* per stream: received, unread bytes; also bytes queued for sending; default 1 MiB */
    size_t stream_buffer_max;
    size_t session_buffer_max;     /* received, unread, all streams together; default 64 MiB */
    gn_time keepalive_interval;    /* ping interval; 0 = off; default 30 s */
    gn_time stream_open_timeout;   /* default 30 s */
    /**
     * Bytes queued for sending (accepted from writers, not yet written to
     * the connection), all streams of a session together; default
     * GN_MUX_SESSION_SEND_MAX_DEFAULT (16 MiB); SIZE_MAX: no session bound
     * (the per-stream bound still applies). See "Send bounds" above.
     * Since: 0.2
     */
    size_t session_send_max;
    /**
     * Idle application streams (ns; 0 = off; default
     * GN_MUX_STREAM_IDLE_TIMEOUT_DEFAULT, 5 min). A stream that sees no
     * traffic in either direction for this long is reset: no bytes
     * received from the peer or written by its consumer, no write the
     * muxer takes after waiting for window or budget (so a window update
     * that lets a held write go on counts), no half-close by either side,
     * no open. The peer gets a reset on the wire (yamux RST, mplex Reset;
     * for a peer stream not yet accepted, the refusal), the stream's owner
     * on_error(GN_ETIMEDOUT) (writes still pending complete with
     * GN_ETIMEDOUT), and an INFO log line names the stream id, the session
     * and the peer. The session and its other streams go on. A stream is
     * reset after at least stream_idle_timeout and less than 1.25 x
     * stream_idle_timeout of silence (one scan per session every quarter
     * of the timeout, at least 1 ms apart). A stream whose own writer is
     * stopped by a peer that neither reads nor grants window is idle too:
     * this bounds how long a peer can hold stream slots and buffers with
     * streams it opened, or made us open, and then ignores. Applications
     * with long silent streams send something (a ping of their own) more
     * often, or raise or turn off the timeout. Built-in muxers apply it
     * through the mux driver (golemnet/mux_driver.h). Unlike most fields,
     * 0 is not replaced by the default: gn_mux_config_default() sets it.
     * Since: 0.2
     */
    gn_time stream_idle_timeout;
} gn_mux_config;
/** Version 2 added session_send_max, version 3 stream_idle_timeout. */
#define GN_MUX_CONFIG_VERSION 3
/** The default gn_mux_config.session_send_max: 16 MiB. Since: 0.2 */
#define GN_MUX_SESSION_SEND_MAX_DEFAULT ((size_t)16u << 20)
/**
 * The default gn_mux_config.stream_idle_timeout: 5 minutes. Long enough
 * that no well-behaved protocol with a request in flight hits it (request
 * and response timeouts are seconds, keepalive pings every 30 s), short
 * enough that a peer cycling through max_inbound_streams (1024) idle
 * streams cannot pin them, with their window buffers, for more than a
 * few minutes. Since: 0.2
 */
#define GN_MUX_STREAM_IDLE_TIMEOUT_DEFAULT ((gn_time)300 * GN_S)
GN_API void gn_mux_config_default(gn_mux_config *cfg);

/** A muxer instance (one per node and component). */
struct gn_mux {
    const gn_mux_ops *ops;
    gn_loop *loop;
    void *state;
    gn_mux_config config;
};

/** Session header; components embed it. Fields private. */
struct gn_mux_session {
    gn_mux *mux;
    gn_stream *below;
    void *user_data;
};

/** Session events. */
typedef struct gn_mux_session_cbs {
    /** A peer opened @s; the callee owns it. Required. */
    void (*on_stream)(gn_mux_session *ms, void *user_data, gn_stream *s);
    /**
     * The session ended on its own with @err: a protocol violation, `below`
     * failed, or the peer's Go Away (a normal Go Away lets open streams
     * finish first: on_end(GN_EGOAWAY) comes when the last one closes; other
     * codes end the session at once). Streams have been errored. The owner
     * still calls gn_mux_session_close().
     */
    void (*on_end)(gn_mux_session *ms, void *user_data, int err);
} gn_mux_session_cbs;

/** Session counters. */
typedef struct gn_mux_metrics {
    uint32_t streams_open;
    uint32_t streams_inbound;
    uint32_t streams_outbound;
    size_t buffered_bytes;  /* received, unread, all streams */
    gn_time last_rtt;       /* 0 until a ping completed */
    /**
     * Bytes queued for sending in the muxer, all streams: accepted from
     * writers, not yet drained towards the connection (at most
     * session_send_max for the built-in muxers; 0 when the muxer does not
     * report it). Since: 0.2
     */
    size_t send_queued_bytes;
} gn_mux_metrics;

typedef void (*gn_mux_ping_cb)(void *arg, int status, gn_time rtt);
typedef void (*gn_mux_close_cb)(gn_mux_session *ms, void *arg);

struct gn_mux_ops {
    GN_LAYER_OPS_HEADER;
    /** GN_MUX_CAP_* bits. */
    uint32_t caps;
    int (*init)(gn_mux *m);   /* optional */
    void (*fini)(gn_mux *m);  /* optional */
    /**
     * Required: start a session over @below. On 0 the session owns @below.
     * @cbs and @user_data are kept.
     */
    int (*session_new)(gn_mux *m, gn_stream *below, bool initiator,
                       const gn_mux_session_cbs *cbs, void *user_data, gn_mux_session **out);
    /**
     * Required: open an outbound stream, synchronously (no callback, so no
     * gn_op): *@out is usable at once. To abandon it, gn_stream_reset() it;
     * writes still pending complete with GN_ECANCELED. Errors:
     * GN_ESTREAMLIMIT, GN_EGOAWAY, GN_ECLOSED, GN_ERESOURCE (the
     * resource manager refused it, see gn_mux_session_set_rcmgr()).
     */
    int (*open_stream)(gn_mux_session *ms, gn_stream **out);
    /** Optional (GN_ENOTSUP): measure one round trip. */
    int (*ping)(gn_mux_session *ms, gn_mux_ping_cb cb, void *arg);
    /** Optional: send Go Away with @code (mux-specific wire code). */
    void (*go_away)(gn_mux_session *ms, uint32_t code);
    /** Optional: QoS weight for @s, 0 (bulk) .. 7 (highest). Wire unchanged. */
    int (*set_priority)(gn_mux_session *ms, gn_stream *s, uint8_t prio);
    /** Required: counters. */
    void (*metrics)(gn_mux_session *ms, gn_mux_metrics *m);
    /**
     * Required: close the session: Go Away, reset open streams (their
     * consumers get on_error GN_ECLOSED), close @below, then @cb; the
     * session is freed after @cb returns. Streams must still be closed by
     * their owners.
     */
    void (*session_close)(gn_mux_session *ms, gn_mux_close_cb cb, void *arg);
    /**
     * Optional (NULL: gn_mux_session_set_rcmgr() returns GN_ENOTSUP, the
     * session accounts nothing): attach the session to a connection span;
     * see gn_mux_session_set_rcmgr(). Since: 0.2 (revision 3).
     */
    int (*set_rcmgr)(gn_mux_session *ms, gn_rcmgr *rm, gn_rcmgr_conn *conn);
};

GN_API int gn_mux_new(const gn_mux_ops *ops, gn_loop *loop, const gn_mux_config *cfg,
                      gn_mux **out);
GN_API void gn_mux_free(gn_mux *m);
GN_API int gn_mux_session_new(gn_mux *m, gn_stream *below, bool initiator,
                              const gn_mux_session_cbs *cbs, void *user_data,
                              gn_mux_session **out);
GN_API int gn_mux_open_stream(gn_mux_session *ms, gn_stream **out);
GN_API int gn_mux_ping(gn_mux_session *ms, gn_mux_ping_cb cb, void *arg);
GN_API int gn_mux_set_priority(gn_mux_session *ms, gn_stream *s, uint8_t prio);
/**
 * Sends Go Away with the muxer's @code (yamux: 0 normal, 1 protocol error,
 * 2 internal error): no new streams; open ones finish. Without
 * GN_MUX_CAP_GOAWAY the Go Away is local (mplex resets the peer's new
 * streams). GN_ENOTSUP when the muxer has no go_away entry.
 */
GN_API int gn_mux_go_away(gn_mux_session *ms, uint32_t code);
GN_API void gn_mux_get_metrics(gn_mux_session *ms, gn_mux_metrics *m);
/**
 * Accounts the session's streams and buffers in a resource manager
 * (golemnet/rcmgr.h), under the connection span @conn of @rm; the node
 * does this for every connection right after the muxer session starts
 * (docs/limits.md, "Wiring"). For the built-in yamux and mplex:
 *   - every stream, inbound or outbound, opens a stream span under @conn
 *     before it exists (the direction counted apart). A peer's stream the
 *     manager refuses is refused with the muxer's refusal (yamux RST,
 *     mplex Reset; counted, and logged with the refusing scope); the
 *     session and the other streams go on. gn_mux_open_stream() fails with
 *     GN_ERESOURCE instead;
 *   - a stream holds no memory by itself: received data is reserved when
 *     its frame header arrives, for the session on @conn, in 64 KiB steps
 *     given back as the application consumes it (one step kept while
 *     attached). yamux: refused at GN_RCMGR_PRIO_MEDIUM, Window Updates
 *     are held back (back-pressure) until there is room again; the
 *     granted bytes are then reserved at GN_RCMGR_PRIO_ALWAYS, and
 *     refused even so, the stream is reset and its owner gets on_error
 *     GN_ERESOURCE; a window growth beyond 256 KiB is granted only if the
 *     manager has room for it now (else withheld, logged). mplex: each
 *     message as its header arrives (refused: the stream is reset, its
 *     owner gets on_error GN_ERESOURCE, logged). No byte the peer was
 *     allowed to send is dropped silently;
 *   - the session send budget (gn_mux_config.session_send_max, the upper
 *     bound) is reserved on @conn in 64 KiB steps as writers fill it, and
 *     given back as it drains; a refused step pushes writers back as a
 *     full budget does (GN_EAGAIN, on_writable).
 * Streams opened before the call are not accounted. @conn must have its
 * peer set and stay open while attached: detach (@rm and @conn NULL) before
 * gn_rcmgr_conn_done(); stream spans already open then stay until their
 * streams are freed (gn_rcmgr_conn_done() allows that). Detaching an
 * unattached session does nothing.
 * Errors: GN_ENOTSUP (the muxer has no set_rcmgr), GN_EINVAL (@rm without
 * @conn), GN_ESTATE (already attached), GN_ERESOURCE (the session's first
 * 64 KiB of send budget were refused: for the built-in muxers the session
 * then ends with GN_ERESOURCE, reported through on_end).
 * Thread context: the loop thread of the session (and of @rm).
 * Since: 0.2
 */
GN_API int gn_mux_session_set_rcmgr(gn_mux_session *ms, gn_rcmgr *rm, gn_rcmgr_conn *conn);
GN_API void gn_mux_session_close(gn_mux_session *ms, gn_mux_close_cb cb, void *arg);

GN_END_DECLS

#endif /* GOLEMNET_MUX_H */
