/*
 * golemnet - the control daemon server: other processes drive a node over
 * a control socket with golemnet's control protocol.
 *
 * A gn_ipcd serves one gn_node: it listens on a Unix domain socket (or a
 * Windows named pipe, or an explicitly configured loopback TCP address),
 * accepts many clients at once, executes each client's requests through
 * the node's public API (golemnet/node.h, host.h, stream.h), publishes the
 * node's events to the clients that subscribed, carries streams as raw
 * bytes over a control connection (stream open) or over a connection the
 * daemon makes to the client (stream handlers), and answers the DHT
 * requests when the node has a DHT router. `golemnet daemon` is this
 * server plus a command line; any application can embed it.
 *
 * Ownership of the node's events: once a gn_ipcd serves a node, it pops
 * the node's event queue (gn_node_next_event) on the loop thread and fans
 * the events out to its clients; the application must not pop them too.
 *
 * Per-client bound: each client has an output bound (client_queue_max
 * bytes of responses and events written to it and not yet read by it).
 * At half the bound the daemon stops reading that client's requests (push
 * back); past the bound it writes one final EV_DISCONNECTING event (the
 * reason) and closes the connection. Another client, the node and its
 * peers never wait for a slow client.
 *
 * Spec: docs/protocols/control.md (the protocol), docs/daemon.md (running
 * the daemon, security model). Since: 0.4
 */
#ifndef GOLEMNET_IPCD_H
#define GOLEMNET_IPCD_H

#include "golemnet/common.h"
#include "golemnet/node.h"

GN_BEGIN_DECLS

/** The control protocol version this library speaks (HelloResponse.version). */
#define GN_CTL_VERSION 1u
/** Largest control message, bytes, without its varint length prefix: 4 MiB. */
#define GN_CTL_MSG_MAX (4u * 1024u * 1024u)
/** Longest string field of a control message (addresses, ids, names), bytes. */
#define GN_CTL_STRING_MAX 1024u
/** Most entries of one repeated field of a control message. */
#define GN_CTL_REPEATED_MAX 4096u
/**
 * Most asynchronous requests (listen, dial, ping, stream open, dht) one
 * client may have running; at the cap the server stops reading that
 * client's requests until one of them completes.
 */
#define GN_IPCD_CLIENT_OPS_MAX 256u

/**
 * The daemon name `golemnet daemon` uses without --name or --socket, so its
 * socket is gn_ipcd_default_address(GN_IPCD_DEFAULT_NAME, ...).
 */
#define GN_IPCD_DEFAULT_NAME "default"

typedef struct gn_ipcd gn_ipcd;

/** Server options. Fill with gn_ipcd_config_default() first. */
typedef struct gn_ipcd_config {
    uint32_t version; /* GN_IPCD_CONFIG_VERSION */
    /**
     * Where to listen (NUL-terminated, copied): a Unix socket path, the
     * multiaddr "/unix/PATH", a Windows pipe name "\\.\pipe\NAME", or a
     * loopback TCP address ("/ip4/127.0.0.1/tcp/N", "/ip6/::1/tcp/N").
     * Required.
     */
    const char *address;
    /** A second listener on loopback TCP (NULL: none). Copied. */
    const char *tcp_address;
    /** The socket file's mode; 0 means 0600. */
    unsigned socket_mode;
    /**
     * Uids allowed to connect besides the daemon's effective uid (peer
     * credentials are checked on every Unix socket connection); @n_allow_uids
     * entries, at most 64; copied. TCP connections carry no credentials.
     */
    const uint32_t *allow_uids;
    size_t n_allow_uids;
    /** Clients connected at once; more are refused (closed at accept). Default 64. */
    size_t max_clients;
    /**
     * Per-client output bound, bytes (see the top of this header). Default
     * 4 MiB; at least 64 KiB and at most 256 MiB.
     */
    size_t client_queue_max;
    /** Stream handler protocols registered at once, all clients. Default 64. */
    size_t max_handlers;
    /** Streams carried at once (stream open plus handler connections). Default 1024. */
    size_t max_streams;
    /** Time for a stream handler's client to accept the daemon's connection, ns. Default 5 s. */
    gn_time handler_connect_timeout;
    /**
     * Create the Unix socket's directory (mode 0700) when it is missing,
     * and refuse one that is not the daemon's own (another owner, or
     * writable by group or others: GN_EACCES). For the per-user default
     * directories (gn_ipcd_default_address()); leave it false for a path
     * in a shared directory. Default false.
     */
    bool create_dir;
} gn_ipcd_config;
#define GN_IPCD_CONFIG_VERSION 1

/** Fills @cfg with the defaults above (address NULL). Any thread. Since: 0.4 */
GN_API void gn_ipcd_config_default(gn_ipcd_config *cfg);

/**
 * Writes the default control address of the daemon named @name for the
 * calling user into @out (@cap bytes, NUL-terminated):
 * "$XDG_RUNTIME_DIR/golemnet/<name>.sock" when XDG_RUNTIME_DIR is an
 * absolute path and the result fits a Unix socket address (103 bytes),
 * else "/tmp/golemnet-<euid>/<name>.sock"; on Windows
 * "\\.\pipe\golemnet-<name>". Clients use it to find a daemon started
 * without --socket. @name: 1..64 bytes of A-Z a-z 0-9 . _ - (not starting
 * with '.'). Reads the environment: any thread that does not change it.
 * Errors: GN_EINVAL (bad @name, NULL @out), GN_ENOSPC (@cap too small, or
 * the path too long for a socket address).
 * Since: 0.4
 */
GN_API int gn_ipcd_default_address(const char *name, char *out, size_t cap);

/**
 * Starts serving @node (started or not yet started; borrowed: it must
 * outlive the server) on @cfg->address: binds the control socket (stale
 * socket files are replaced, a live daemon's socket is refused), sets its
 * mode, and starts popping the node's events. *@out receives the server.
 *
 * Thread context: any thread. On the node's loop thread it runs at once;
 * from another thread it runs on the loop (gn_loop_submit) and this call
 * waits for it, so the loop must be running (a node with its own loop
 * thread that was started, or an application loop run by another thread).
 *
 * @err (may be NULL) receives a message naming what was wrong, at most
 * @errlen bytes with the NUL.
 * Errors: GN_EINVAL (NULL @node, @cfg, @out or address; bad config version
 * or values), GN_EACCES (an address that is not allowed: not loopback TCP,
 * other protocols; the socket's mode could not be set; with create_dir, a
 * directory that is not the daemon's own), GN_EADDRINUSE
 * (another daemon listens there, or the TCP port is taken), GN_EEXIST (the
 * path exists and is not a socket), GN_ENOMEM, GN_EAGAIN (the loop's
 * command queue is full), GN_ECLOSED (the loop or node is closing),
 * GN_EIO (bind or listen failed otherwise).
 * Since: 0.4
 */
GN_API int gn_ipcd_new(gn_node *node, const gn_ipcd_config *cfg, gn_ipcd **out, char *err,
                       size_t errlen);

/**
 * The address the server listens on as text: the socket path (or pipe
 * name) as configured, or "/ip4/127.0.0.1/tcp/N" with the port resolved.
 * @which 0 is the main address, 1 the TCP one (NULL when not configured).
 * Borrowed until gn_ipcd_close(). Any thread.
 * Since: 0.4
 */
GN_API const char *gn_ipcd_address(const gn_ipcd *d, int which);

/** Counters of a server (gn_ipcd_stats_get). */
typedef struct gn_ipcd_stats {
    uint64_t clients_accepted;  /* control connections accepted */
    uint64_t clients_refused;   /* refused: credentials, or max_clients */
    uint64_t clients_now;       /* connected now */
    uint64_t clients_slow;      /* disconnected for passing client_queue_max */
    uint64_t requests;          /* requests decoded */
    uint64_t bad_requests;      /* refused with an error status before running */
    uint64_t framing_lost;      /* connections closed for lost framing */
    uint64_t events_sent;       /* events written to clients */
    uint64_t streams_now;       /* streams carried now */
    uint64_t ops_now;           /* asynchronous requests running now (all clients) */
    uint64_t clients_ops_paused; /* times a client reached GN_IPCD_CLIENT_OPS_MAX */
    uint64_t events_lost;       /* events a subscriber could not be sent (EV_LOST sent instead) */
} gn_ipcd_stats;

/**
 * Fills @st with the server's counters. Loop thread only (values are
 * plain fields of the loop's). Errors: GN_EINVAL (NULL argument).
 * Since: 0.4
 */
GN_API int gn_ipcd_stats_get(const gn_ipcd *d, gn_ipcd_stats *st);

/** Close completion (loop thread); the server's memory is already freed. */
typedef void (*gn_ipcd_close_cb)(void *arg);

/**
 * Stops the server gracefully, in this order: stops accepting clients and
 * reading requests; waits (at most @drain_timeout ns; 0 means no waiting)
 * until the node has no accepted message still queued
 * (gn_node_pending_messages()), no request of a client is still running,
 * no channel is dialing or upgrading (a unicast may wait for it outside
 * the pending count) and the channels (all of them) wrote nothing for one 10 ms tick (what the message
 * service handed to a channel's writer has passed the muxer and the
 * security layer); forwards the events popped meanwhile (send failures reach the
 * clients that subscribed); ends stream handlers and streams; closes every
 * client connection after flushing what was written to it (at most 5 s);
 * removes the socket file; then runs @cb(@arg) (may be NULL) on the loop
 * thread and frees the server. The node is not closed: the caller closes
 * it afterwards (its remaining send failures are then the caller's events).
 * Requests still running when the drain time runs out are answered with
 * GN_ECANCELED. Idempotent (a second call only ignores its arguments).
 * Thread context: any thread (a command on the loop, never lost: reserved
 * storage). @cb never runs from inside this call.
 * Since: 0.4
 */
GN_API void gn_ipcd_close(gn_ipcd *d, gn_time drain_timeout, gn_ipcd_close_cb cb, void *arg);

GN_END_DECLS

#endif /* GOLEMNET_IPCD_H */
