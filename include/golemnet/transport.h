/*
 * golemnet - transport layer ops: turn multiaddrs into raw byte streams.
 *
 * A transport instance belongs to one loop. It listens on multiaddrs and
 * hands each accepted connection over as a gn_stream, and dials multiaddrs
 * into gn_streams. Built-in: "tcp" (layers/transport/tcp), "memory"
 * (layers/transport/memory).
 */
#ifndef GOLEMNET_TRANSPORT_H
#define GOLEMNET_TRANSPORT_H

#include "golemnet/layer.h"
#include "golemnet/loop.h"
#include "golemnet/stream.h"

GN_BEGIN_DECLS

/**
 * ABI version: (kind << 16) | revision, so a table of another kind never passes.
 * Revision 2 added `caps` and `test_listen_addr`; 3, the gn_op handle of dial().
 */
#define GN_TRANSPORT_ABI 0x10003u

/*
 * Capability bits (gn_transport_ops.caps): what a transport promises about
 * its connections. Code that must know what a transport offers (the
 * conformance suites) reads these bits, never its name. A transport sets
 * exactly one of RELIABLE and UNRELIABLE.
 */
/**
 * Connections are ordered, reliable byte streams with the whole gn_stream
 * contract (stream.h): half-close (shutdown, then EOF at the peer), reset
 * seen by the peer as GN_ECONNRESET, bounded write queues with GN_EAGAIN and
 * on_writable, read_stop as backpressure. Crypto and mux layers need it.
 * Since: 0.1.
 */
#define GN_TRANSPORT_CAP_RELIABLE 0x1u
/** Bytes may be lost or reordered (datagram transports). Since: 0.1. */
#define GN_TRANSPORT_CAP_UNRELIABLE 0x2u
/**
 * Connections never leave the process: no sockets, no OS limits, no
 * network. Suites of other kinds prefer such a transport as their harness.
 * Since: 0.1.
 */
#define GN_TRANSPORT_CAP_IN_PROCESS 0x4u
/** Every capability bit this version defines. */
#define GN_TRANSPORT_CAP_ALL 0x7u

typedef struct gn_transport gn_transport;
typedef struct gn_listener gn_listener;
typedef struct gn_transport_ops gn_transport_ops;

/** Options common to transports. Fill with gn_transport_config_default(). */
typedef struct gn_transport_config {
    uint32_t version;              /* GN_TRANSPORT_CONFIG_VERSION */
    gn_time dial_timeout;          /* default 10 s */
    uint32_t max_connections;      /* open connections, in+out; 0 = unlimited; default 1024 */
    bool nodelay;                  /* TCP_NODELAY; default true */
    gn_time keepalive_period;      /* OS keepalive; 0 = off (default) */
    gn_time app_keepalive_period;  /* application keepalive write when idle; 0 = off */
    gn_slice app_keepalive_bytes;  /* bytes of that write (borrowed during init) */
    /* bytes queued per connection before GN_EAGAIN (default 4 MiB; 0 = no
     * limit); a single write is always accepted when the queue is empty */
    size_t write_queue_max;
    uint32_t listen_backlog;       /* default 511 */
} gn_transport_config;
#define GN_TRANSPORT_CONFIG_VERSION 1

GN_API void gn_transport_config_default(gn_transport_config *cfg);

/**
 * Dial completion: @status 0 and a new stream @conn (the caller owns it and
 * must gn_stream_close() it), or an error (@conn NULL): GN_ECONNREFUSED,
 * GN_EUNREACHABLE, GN_ETIMEDOUT (config.dial_timeout passed; the socket was
 * closed then), GN_ECANCELED (gn_op_cancel() on the dial's handle),
 * GN_ELIMIT, GN_EADDRNOTAVAIL.
 * Called exactly once, on the loop thread, never from inside dial() or
 * gn_op_cancel().
 */
typedef void (*gn_dial_cb)(void *arg, int status, gn_stream *conn);

/**
 * Accept callback: @conn is a new inbound connection the callee now owns.
 * On listener failure it is called once with @status < 0 and @conn NULL.
 */
typedef void (*gn_accept_cb)(void *arg, gn_listener *l, int status, gn_stream *conn);

/** Listener close completion; the listener is freed after it returns. */
typedef void (*gn_listener_close_cb)(gn_listener *l, void *arg);

/** A transport instance. Fields private to core and the component. */
struct gn_transport {
    const gn_transport_ops *ops;
    gn_loop *loop;
    void *state;                 /* ops->state_size bytes, zeroed, owned by core */
    gn_transport_config config;
    uint32_t nconns;             /* open connections (maintained by the component) */
    /**
     * The node that runs the instance, set by the node right after
     * gn_transport_new() and before any listen or dial; NULL for an
     * instance made outside a node. A transport that runs over other
     * connections (the circuit relay transport) reaches the peers through
     * it (golemnet/host.h). Since: 0.4
     */
    struct gn_host *host;
};

/** A listener. The component allocates it embedding this header. */
struct gn_listener {
    gn_transport *transport;
    gn_accept_cb accept_cb;
    void *accept_arg;
};

struct gn_transport_ops {
    GN_LAYER_OPS_HEADER;
    /** GN_TRANSPORT_CAP_* bits. */
    uint32_t caps;
    /**
     * Optional: a multiaddr string (static, NUL-terminated) a test may listen
     * on any number of times on one loop without outside setup, each listen
     * binding a fresh address that listener_addr() reports resolved
     * ("/ip4/127.0.0.1/tcp/0", "/memory/0"). NULL: the transport needs setup
     * a test cannot do alone; the conformance suite then skips it.
     */
    const char *test_listen_addr;
    /** Optional: set up t->state after core allocated it. Errors abort creation. */
    int (*init)(gn_transport *t);
    /** Optional: release what init made. Called after every listener and conn closed. */
    void (*fini)(gn_transport *t);
    /** Required: true if this transport can dial/listen on @ma. Pure. */
    bool (*handles)(const gn_transport *t, const gn_multiaddr *ma);
    /**
     * Required: listen on @ma. On success *@out is the listener.
     * Errors: GN_EADDRINUSE, GN_EADDRNOTAVAIL, GN_EACCES, GN_EINVAL.
     */
    int (*listen)(gn_transport *t, const gn_multiaddr *ma, gn_accept_cb cb, void *arg,
                  gn_listener **out);
    /** Required: the bound address (port 0 resolved) in *@out, caller frees. */
    int (*listener_addr)(gn_listener *l, gn_multiaddr **out);
    /** Required: stop listening; @cb runs later, then the listener is freed. */
    void (*listener_close)(gn_listener *l, gn_listener_close_cb cb, void *arg);
    /**
     * Required: dial @ma (a trailing /p2p/ is ignored by the transport).
     * Returns 0 (then @cb runs exactly once) or an immediate error (@cb does
     * not run): GN_ENOTRANSPORT, GN_EINVAL, GN_ELIMIT. @op is never NULL
     * here (core passes its own slot): on 0 set *@op to the dial's
     * cancellation handle (gn_op), whose cancel must release the dial's
     * resources at once (close the socket) and complete @cb with
     * GN_ECANCELED from the loop.
     */
    int (*dial)(gn_transport *t, const gn_multiaddr *ma, gn_dial_cb cb, void *arg, gn_op **op);
};

/**
 * Creates an instance of the transport @ops on @loop with @cfg (NULL:
 * defaults). Errors: GN_EABI, GN_EINVAL, GN_ENOMEM, init's errors.
 * Loop thread only.
 */
GN_API int gn_transport_new(const gn_transport_ops *ops, gn_loop *loop,
                            const gn_transport_config *cfg, gn_transport **out);
/** Frees an instance whose listeners and connections are all closed. */
GN_API void gn_transport_free(gn_transport *t);

/* Dispatchers (loop thread). Same contracts as the ops entries. */
GN_API bool gn_transport_handles(const gn_transport *t, const gn_multiaddr *ma);
GN_API int gn_transport_listen(gn_transport *t, const gn_multiaddr *ma, gn_accept_cb cb,
                               void *arg, gn_listener **out);
GN_API int gn_listener_addr(gn_listener *l, gn_multiaddr **out);
GN_API void gn_listener_close(gn_listener *l, gn_listener_close_cb cb, void *arg);
/**
 * Dials @ma with @t. Returns 0, then @cb runs exactly once (see gn_dial_cb),
 * or an immediate error and @cb does not run: GN_EINVAL (NULL @ma or @cb),
 * GN_ENOTRANSPORT (@t does not handle @ma), GN_ELIMIT (max_connections),
 * GN_ENOMEM. @op (NULL allowed) receives the dial's handle on 0 (NULL on an
 * error): gn_op_cancel(*@op) before @cb ends the dial at once, closing its
 * socket, and @cb follows with GN_ECANCELED. The dial's own bound is
 * config.dial_timeout (GN_ETIMEDOUT). Loop thread.
 * Since: 0.1
 */
GN_API int gn_transport_dial(gn_transport *t, const gn_multiaddr *ma, gn_dial_cb cb, void *arg,
                             gn_op **op);

GN_END_DECLS

#endif /* GOLEMNET_TRANSPORT_H */
