/*
 * golemnet - the byte stream every layer produces and consumes.
 *
 * A raw transport connection, a secured channel and a muxed stream are all a
 * gn_stream: the same operations (write with a completion, read start/stop
 * for backpressure, half-close, reset, close with a callback, addresses,
 * metrics). Layers stack by wrapping the stream below: a Noise channel is a
 * gn_stream whose implementation writes to and reads from the TCP gn_stream
 * under it (its `below`).
 *
 * Two sides use a stream:
 *  - the CONSUMER (the layer above, or the application) calls gn_stream_*()
 *    and receives events through the gn_stream_handler it installed;
 *  - the IMPLEMENTATION (a transport, crypto or mux component) provides a
 *    gn_stream_ops table and reports through gn_stream_emit_*().
 *
 * Thread context: a stream belongs to its loop thread; every function here
 * is loop-thread only. Handlers are never called from inside a gn_stream_*()
 * call made by the consumer (no re-entry): implementations defer through the
 * loop.
 *
 * Lifetime: the implementation allocates the stream. The consumer calls
 * gn_stream_close() exactly once; every pending write then completes with
 * GN_ECANCELED (if not already completed), no more handler calls are made
 * except the close callback, and the memory is freed right after the close
 * callback returns.
 */
#ifndef GOLEMNET_STREAM_H
#define GOLEMNET_STREAM_H

#include "golemnet/common.h"
#include "golemnet/multiaddr.h"

GN_BEGIN_DECLS

typedef struct gn_stream gn_stream;
typedef struct gn_stream_ops gn_stream_ops;
typedef struct gn_loop gn_loop;

/** ABI version of gn_stream_ops. */
/** ABI version: (kind << 16) | revision, so a table of another kind never passes. */
#define GN_STREAM_ABI 0x80001u

/**
 * Write completion. @status: 0 when every byte was handed to the layer
 * below (for transports: to the kernel), GN_ECANCELED when the stream closed
 * first, another negative code on failure. Called exactly once per accepted
 * write, on the loop thread, never from inside gn_stream_write().
 */
typedef void (*gn_write_cb)(void *arg, int status);

/** Close completion; the stream is freed right after it returns. */
typedef void (*gn_close_cb)(gn_stream *s, void *arg);

/**
 * Events for the consumer. Every entry may be NULL (event ignored).
 *
 * on_data: @len > 0 bytes arrived, borrowed for the call. Only while reading
 *   is started. The consumer may call gn_stream_read_stop() from inside it.
 * on_eof: the remote half-closed; no more on_data. Writing may continue.
 * on_error: the stream failed (@err < 0: GN_ECONNRESET, GN_ESTREAMRESET,
 *   GN_EDECRYPT, ...). No more on_data/on_eof. The consumer must close it.
 * on_writable: the write queue drained below its low-water mark after a
 *   gn_stream_write() returned GN_EAGAIN.
 */
typedef struct gn_stream_handler {
    void (*on_data)(gn_stream *s, void *user_data, const uint8_t *data, size_t len);
    void (*on_eof)(gn_stream *s, void *user_data);
    void (*on_error)(gn_stream *s, void *user_data, int err);
    void (*on_writable)(gn_stream *s, void *user_data);
} gn_stream_handler;

/** Counters kept by core for every stream. */
typedef struct gn_stream_metrics {
    uint64_t bytes_in;       /* bytes delivered through on_data */
    uint64_t bytes_out;      /* bytes whose write completed with 0 */
    uint64_t writes_out;     /* writes completed with 0 */
    uint64_t write_queued;   /* bytes accepted but not yet completed */
    gn_time opened_at;       /* loop clock when gn_stream_init() ran */
} gn_stream_metrics;

/** Which address gn_stream_addr() returns. */
typedef enum gn_stream_addr_kind { GN_ADDR_LOCAL = 0, GN_ADDR_REMOTE = 1 } gn_stream_addr_kind;

/**
 * The implementation's operations. Required: write, close. Optional (NULL)
 * entries take the default:
 *   read_start/read_stop  : set the core's reading flag only;
 *   shutdown              : GN_ENOTSUP;
 *   reset                 : calls close;
 *   addr                  : asks `below`, GN_ENOTSUP without one;
 *   query                 : asks `below`, GN_ENOTSUP without one.
 * Every entry is called on the loop thread, only by core's gn_stream_*()
 * dispatchers, never after close.
 */
struct gn_stream_ops {
    uint32_t abi;     /* GN_STREAM_ABI */
    const char *name; /* for logs: "tcp", "noise", "yamux" */

    /**
     * Queue @iovcnt slices for sending. The bytes must stay valid until @cb
     * runs (zero copy). Return 0 (accepted: @cb will run exactly once),
     * GN_EAGAIN (queue bound reached: nothing taken, @cb will not run; an
     * on_writable follows), GN_EPIPE (after shutdown) or another error (@cb
     * will not run).
     */
    int (*write)(gn_stream *s, const gn_slice *iov, size_t iovcnt, gn_write_cb cb, void *arg);
    /** Start / stop delivering on_data (backpressure towards the peer). */
    int (*read_start)(gn_stream *s);
    int (*read_stop)(gn_stream *s);
    /** Half-close: flush queued writes, then signal end of data. */
    int (*shutdown)(gn_stream *s);
    /** Abortive close towards the peer (RST); then behaves like close. */
    void (*reset)(gn_stream *s);
    /**
     * Begin closing. Cancel pending writes with GN_ECANCELED, release
     * resources, then call gn_stream_emit_closed() (later, from the loop).
     */
    void (*close)(gn_stream *s);
    /** Local or remote address into *@out (new multiaddr, caller frees). */
    int (*addr)(gn_stream *s, gn_stream_addr_kind kind, gn_multiaddr **out);
    /**
     * Generic query for facts a layer may know: GN_QUERY_* keys, value
     * written to @out (@out_len bytes); returns bytes written or GN_ENOTSUP.
     */
    int (*query)(gn_stream *s, int key, void *out, size_t out_len);
};

/** Query keys for gn_stream_query(). */
enum {
    GN_QUERY_REMOTE_PEER_ID = 1, /* out: gn_peer_id */
    GN_QUERY_LOCAL_PEER_ID = 2,  /* out: gn_peer_id */
    GN_QUERY_SECURITY = 3,       /* out: char[], protocol id, NUL-terminated */
    GN_QUERY_MUXER = 4,          /* out: char[], protocol id, NUL-terminated */
    GN_QUERY_EARLY_MUXER = 5,    /* out: char[], muxer agreed in the handshake */
    GN_QUERY_STREAM_ID = 6,      /* out: uint64_t, mux stream id */
    GN_QUERY_RTT = 7,            /* out: gn_time, last measured round trip */
    /**
     * out: gn_rcmgr_stream *, the stream's span in the resource manager
     * (golemnet/rcmgr.h): a mux stream of a session attached with
     * gn_mux_session_set_rcmgr(); GN_ENOTSUP when the stream is not
     * accounted. Borrowed: valid until the stream is closed or reset;
     * the caller may move it to its protocol (gn_rcmgr_stream_set_protocol)
     * but never ends it. Since: 0.2
     */
    GN_QUERY_RCMGR_STREAM = 8,
    /**
     * out: gn_conn_limit (golemnet/host.h), the limits of a limited
     * connection (a circuit relay v2 connection): a transport's connection
     * answers it when a third party carries it under limits; the node then
     * marks the channel limited (gn_channel_limited()). Since: 0.4
     */
    GN_QUERY_CONN_LIMIT = 9
};

/* Stream state flags (core-managed; read with gn_stream_flags()). */
#define GN_STREAM_READING 0x01u
#define GN_STREAM_EOF_RECV 0x02u
#define GN_STREAM_SHUT_SENT 0x04u
#define GN_STREAM_ERRORED 0x08u
#define GN_STREAM_CLOSING 0x10u
#define GN_STREAM_CLOSED 0x20u
/* Set while pushed-back bytes (gn_stream_unread) are delivered first: the
 * implementation must not deliver meanwhile (gn_stream_is_reading() is false). */
#define GN_STREAM_HELD 0x40u

/**
 * The stream object. Implementations embed it (usually first) in their own
 * struct. Fields are private to core; use the functions.
 */
struct gn_stream {
    const gn_stream_ops *ops;
    gn_loop *loop;
    gn_stream *below;
    const gn_stream_handler *handler;
    void *handler_data;
    gn_close_cb close_cb;
    void *close_arg;
    void *impl_data; /* free for the implementation */
    uint32_t flags;
    gn_stream_metrics metrics;
    /* private: bytes pushed back (gn_stream_unread), delivered before new data */
    uint8_t *pushback;
    size_t pushback_len;
    struct gni_stream_flush *flush; /* pending deferred delivery of pushback */
};

/* ---- consumer side ---- */

/**
 * Installs the event handler (NULL: ignore events). @h must outlive the
 * stream or the next call. Since: 0.1
 */
GN_API void gn_stream_set_handler(gn_stream *s, const gn_stream_handler *h, void *user_data);

/**
 * Writes @iovcnt slices; bytes stay borrowed until @cb (may be NULL, then
 * the bytes must still stay valid until the write completes: use a
 * completion). See gn_stream_ops.write for the results; additionally
 * GN_ECLOSED after gn_stream_close(), GN_EINVAL for iovcnt 0.
 * Since: 0.1
 */
GN_API int gn_stream_write(gn_stream *s, const gn_slice *iov, size_t iovcnt, gn_write_cb cb,
                           void *arg);

/** Start/stop on_data delivery. Errors: GN_ECLOSED. Since: 0.1 */
GN_API int gn_stream_read_start(gn_stream *s);
GN_API int gn_stream_read_stop(gn_stream *s);

/**
 * Half-close: no more writes from us. Errors: GN_ECLOSED, GN_ENOTSUP,
 * GN_ESTATE (already shut down). Since: 0.1
 */
GN_API int gn_stream_shutdown(gn_stream *s);

/** Abortive close (RST to the peer where the layer has one), then close. */
GN_API void gn_stream_reset(gn_stream *s, gn_close_cb cb, void *arg);

/**
 * Closes the stream; @cb (may be NULL) runs once, from the loop, after
 * which the stream is freed. Calling it twice is a bug (asserted).
 * Since: 0.1
 */
GN_API void gn_stream_close(gn_stream *s, gn_close_cb cb, void *arg);

/** Local/remote address in *@out (caller frees). GN_ENOTSUP if unknown. */
GN_API int gn_stream_addr(gn_stream *s, gn_stream_addr_kind kind, gn_multiaddr **out);

/** Asks the stream (then each stream below) a GN_QUERY_* key. */
GN_API int gn_stream_query(gn_stream *s, int key, void *out, size_t out_len);

/** Copies the counters. */
GN_API void gn_stream_get_metrics(const gn_stream *s, gn_stream_metrics *m);

/** GN_STREAM_* flags. */
GN_API uint32_t gn_stream_flags(const gn_stream *s);

/* ---- implementation side (component authors) ---- */

/**
 * Initialises the embedded stream: @ops (abi checked, asserted in debug),
 * @loop, @below (may be NULL). Metrics start at zero, opened_at = now.
 * Returns 0 or GN_EABI.
 * Since: 0.1
 */
GN_API int gn_stream_init(gn_stream *s, const gn_stream_ops *ops, gn_loop *loop,
                          gn_stream *below);

/** Delivers data to the consumer (counts bytes_in). Only while reading. */
GN_API void gn_stream_emit_data(gn_stream *s, const uint8_t *data, size_t len);
/** Remote half-close; delivered once. */
GN_API void gn_stream_emit_eof(gn_stream *s);
/** Fatal error; delivered once, then no data or eof. */
GN_API void gn_stream_emit_error(gn_stream *s, int err);
/** Write queue drained after GN_EAGAIN. */
GN_API void gn_stream_emit_writable(gn_stream *s);
/**
 * Completes a write: updates metrics and calls @cb. Implementations call
 * this instead of calling the completion themselves.
 */
GN_API void gn_stream_complete_write(gn_stream *s, gn_write_cb cb, void *arg, size_t len,
                                     int status);
/**
 * The implementation finished closing: runs the close callback. The
 * implementation frees its memory after this returns.
 */
GN_API void gn_stream_emit_closed(gn_stream *s);

/**
 * Pushes @len bytes back in front of the stream's input: they are delivered
 * through on_data (from the loop, never from inside this call) before any
 * byte the implementation delivers later. Used by a consumer that read past
 * what it needed (multistream-select hands the bytes after the negotiation
 * to the protocol this way). Errors: GN_ENOMEM, GN_ECLOSED, GN_ETOOBIG (more
 * than 16 MiB pushed back).
 * Since: 0.1
 */
GN_API int gn_stream_unread(gn_stream *s, const uint8_t *data, size_t len);

/**
 * True when the implementation may deliver on_data now: the consumer reads
 * and no pushed-back bytes are waiting to go first.
 */
static inline bool gn_stream_is_reading(const gn_stream *s)
{
    return (s->flags & (GN_STREAM_READING | GN_STREAM_HELD)) == GN_STREAM_READING;
}

GN_END_DECLS

#endif /* GOLEMNET_STREAM_H */
