/*
 * golemnet - the IPC client: drive a running golemnet daemon from another
 * process through its control socket.
 *
 * A client is one connection to a daemon's control socket (`golemnet
 * daemon`, docs/daemon.md) speaking golemnet's control protocol
 * (docs/protocols/control.md: unsigned-varint framed protobuf-c messages).
 * The calls have the shape of the in-process net API (golemnet/node.h):
 * configure, listen, dial, unicast, broadcast, close; channel send, close,
 * state, metrics; the peer store, ping, the DHT; streams; events popped
 * with gn_ipc_next_event() or watched through gn_ipc_event_fd().
 *
 * Threading. Every call may be made from any thread; calls from several
 * threads run concurrently on the one connection (each request carries an
 * id and waits for its own response). A client owns one reader thread that
 * reads the socket for as long as the client lives: it hands each response
 * to the call waiting for it and queues events, so events are read even
 * while no call is made, and a call never waits behind an unread event.
 *
 * Calls are synchronous: each sends one request and waits at most the
 * client's timeout (gn_ipc_options.timeout, gn_ipc_set_timeout()) for its
 * response. A call that timed out leaves the connection usable; its late
 * response is discarded, and whatever the daemon did meanwhile (a dial
 * that completed) shows in the events.
 *
 * Errors are negative gn_err codes (golemnet/err.h). Errors the daemon
 * answers carry a message naming what was wrong, read with
 * gn_ipc_last_error(). Every call also returns, besides the errors listed
 * for it: GN_EINVAL (a NULL argument that must not be NULL), GN_ETIMEDOUT
 * (no response within the timeout), GN_ECLOSED (the connection to the
 * daemon is gone: the daemon closed it or exited, or gn_ipc_free() runs),
 * GN_EIO (a socket error), GN_EPROTO (the daemon sent something that is
 * not a control-protocol message), GN_ENOMEM.
 *
 * Platforms: Linux and the BSDs/macOS (Unix domain sockets, loopback TCP).
 * The Windows named pipe of the daemon is not supported by this client yet.
 *
 * Spec: docs/protocols/control.md. Guide: docs/ipc-client.md.
 * Since: 0.4
 */
#ifndef GOLEMNET_IPC_H
#define GOLEMNET_IPC_H

#include "golemnet/common.h"
#include "golemnet/identity.h"
#include "golemnet/node.h"

GN_BEGIN_DECLS

/** A connection to a daemon's control socket. */
typedef struct gn_ipc_client gn_ipc_client;
/** A stream carried over a dedicated connection to the daemon. */
typedef struct gn_ipc_stream gn_ipc_stream;
/** A protocol handler: a socket of the client's the daemon connects to. */
typedef struct gn_ipc_handler gn_ipc_handler;

/** Longest control message either side accepts, bytes (the protocol's bound). */
#define GN_IPC_MSG_MAX (4u * 1024u * 1024u)
/** Longest socket path (a Unix socket's sun_path), bytes with the NUL. */
#define GN_IPC_PATH_MAX 104u
/** Longest error message kept by gn_ipc_last_error(), bytes with the NUL. */
#define GN_IPC_ERROR_MAX 256u

/**
 * Event types the client adds to gn_node_event_type (golemnet/node.h); the
 * node's types keep their values.
 *
 * GN_IPC_EV_LOST: the client's event queue was full and @count events
 * were dropped at this point of the sequence (see gn_ipc_options), status
 * 0; or the daemon could not send @count events of a kind this client
 * subscribed to (its EV_LOST: status says why, e.g. GN_ETOOBIG for a
 * message past the control protocol's bound, addr holds its reason,
 * channel_id and peer the lost event's).
 * GN_IPC_EV_DISCONNECTED: the connection to the daemon ended; status says
 * why (GN_EEOF the daemon closed the connection or exited, GN_ECLOSED
 * gn_ipc_free() ended it, GN_ELIMIT the daemon disconnected this client
 * for not reading its events, GN_EPROTO the daemon broke the protocol,
 * GN_EIO, GN_ECONNRESET); addr holds the reason (the daemon's, when it
 * sent one). It is the last event:
 * gn_ipc_next_event() then answers GN_ECLOSED.
 */
#define GN_IPC_EV_LOST ((gn_node_event_type)100)
#define GN_IPC_EV_DISCONNECTED ((gn_node_event_type)101)

/** Event kinds for gn_ipc_subscribe(): bit (1u << type) per gn_node_event_type. */
#define GN_IPC_EVENT_BIT(type) ((uint64_t)1 << (unsigned)(type))
/** Every event type the daemon publishes (bits 1..62). */
#define GN_IPC_EVENTS_ALL UINT64_C(0x7ffffffffffffffe)

/** Client options. Fill with gn_ipc_options_default() first. */
typedef struct gn_ipc_options {
    uint32_t version; /* GN_IPC_OPTIONS_VERSION */
    /** Bound of each call's wait for its response, ns; default 30 s; GN_TIME_INFINITY: none. */
    gn_time timeout;
    /**
     * Events the client queues for gn_ipc_next_event(); default 4096.
     * When the queue is full, further events are dropped (the reader
     * thread never stops reading: responses must get through) and one
     * GN_IPC_EV_LOST event with their count takes their place, so the
     * application knows where it lost events. Slow consumption thus costs
     * events, never a stalled call; past the daemon's own per-client bound
     * (docs/daemon.md) a client whose reader cannot keep up is
     * disconnected by the daemon.
     */
    size_t event_queue_capacity;
    /** Longest control message accepted from the daemon, bytes; default and most GN_IPC_MSG_MAX. */
    size_t max_message_len;
} gn_ipc_options;
#define GN_IPC_OPTIONS_VERSION 1

/** Fills @opt with the defaults above. Any thread. Since: 0.4 */
GN_API void gn_ipc_options_default(gn_ipc_options *opt);

/**
 * Writes the daemon's default control socket path, NUL-terminated, into
 * @out (@out_len bytes): the path `golemnet daemon` listens on without
 * --socket ($XDG_RUNTIME_DIR/golemnet/default.sock, else
 * /tmp/golemnet-<uid>/default.sock; docs/daemon.md). Returns its length. Any thread.
 * Errors: GN_EINVAL (@out NULL), GN_ENOSPC (@out_len too small).
 * Since: 0.4
 */
GN_API int gn_ipc_default_socket(char *out, size_t out_len);

/**
 * Connects to a daemon and greets it (the protocol's hello: versions are
 * checked). @addr (NUL-terminated; NULL: gn_ipc_default_socket()) is a
 * socket path ("/run/user/1000/golemnet.sock", a relative path too), a
 * "/unix/PATH" multiaddr, or a loopback TCP multiaddr "/ip4/127.0.0.1/tcp/N"
 * or "/ip6/::1/tcp/N". @opt NULL: the defaults; copied. On success *@out
 * receives the client (free with gn_ipc_free()); it starts its reader
 * thread. Any thread; blocks at most @opt->timeout.
 * Errors: GN_EINVAL (bad options), GN_EPARSE (@addr is a multiaddr of
 * another kind, or a path longer than GN_IPC_PATH_MAX - 1), GN_EACCES
 * (not loopback, or permission denied on the socket), GN_ENOTFOUND (no
 * socket file at the path), GN_ECONNREFUSED (nobody listens: the daemon is
 * not running, or a stale socket file), GN_ETIMEDOUT, GN_EVERSION (the
 * daemon speaks another major version of the protocol), GN_EPROTO,
 * GN_EIO, GN_ENOMEM.
 * Since: 0.4
 */
GN_API int gn_ipc_connect(const char *addr, const gn_ipc_options *opt, gn_ipc_client **out);

/**
 * Closes the connection and frees @c (NULL: no-op). Calls still waiting in
 * other threads return GN_ECLOSED first; streams and handlers opened
 * through @c stay valid and must be freed on their own. Any thread but
 * not concurrently with another call on @c that may start after it
 * (the caller's job). Since: 0.4
 */
GN_API void gn_ipc_free(gn_ipc_client *c);

/** Changes the per-call timeout (ns; GN_TIME_INFINITY: none). Any thread. Since: 0.4 */
GN_API void gn_ipc_set_timeout(gn_ipc_client *c, gn_time timeout);

/**
 * Copies the message of the latest failed call of @c (the daemon's
 * message naming what was wrong, or the client's own), NUL-terminated and
 * truncated to @out_len bytes, into @out. With several threads calling,
 * "latest" is whichever failed last. Returns its length (0: none).
 * Any thread. Since: 0.4
 */
GN_API size_t gn_ipc_last_error(gn_ipc_client *c, char *out, size_t out_len);

/**
 * The daemon's version string from the hello ("0.1.0"), borrowed for the
 * life of @c. Any thread. Since: 0.4
 */
GN_API const char *gn_ipc_daemon_version(const gn_ipc_client *c);

/* ---- owned result types ---- */

/** A list of owned NUL-terminated strings; free with gn_ipc_strv_free(). */
typedef struct gn_ipc_strv {
    char **v;
    size_t n;
} gn_ipc_strv;

/** Frees the strings of @sv and zeroes it (NULL: no-op). Since: 0.4 */
GN_API void gn_ipc_strv_free(gn_ipc_strv *sv);

/* ---- the node ---- */

/**
 * The daemon's node: its peer ID into *@peer and its listen addresses
 * (with /p2p/<id>) into @addrs (owned by the caller: gn_ipc_strv_free();
 * NULL: not wanted). Any thread. Errors: the common ones.
 * Since: 0.4
 */
GN_API int gn_ipc_identify(gn_ipc_client *c, gn_peer_id *peer, gn_ipc_strv *addrs);

/**
 * Changes a run-time option of the daemon's node (gn_node_configure()):
 * @name (NUL-terminated) is the option's name in docs/daemon.md
 * ("max-connections", "idle-timeout", ...), @value its decimal value
 * (counts; times in ms). Any thread.
 * Errors: GN_ENOTSUP (unknown option), GN_ERANGE (bad value), the common ones.
 * Since: 0.4
 */
GN_API int gn_ipc_configure(gn_ipc_client *c, const char *name, const char *value);

/**
 * Listens on @multiaddr; the bound address (port 0 resolved, with
 * /p2p/<id>) is copied, NUL-terminated, into @bound (@bound_len bytes; NULL:
 * not wanted; truncated to fit). Waits for the listener's outcome.
 * Errors: GN_EPARSE, GN_EADDRINUSE, GN_EADDRNOTAVAIL, GN_EACCES,
 * GN_ENOTRANSPORT, the common ones. Since: 0.4
 */
GN_API int gn_ipc_listen(gn_ipc_client *c, const char *multiaddr, char *bound, size_t bound_len);

/**
 * Stops listening on @multiaddr (as gn_ipc_listen() was given it, or the
 * bound address it returned). Errors: GN_ENOTFOUND (no such listener),
 * GN_ENOTSUP (the daemon cannot), the common ones. Since: 0.4
 */
GN_API int gn_ipc_unlisten(gn_ipc_client *c, const char *multiaddr);

/** The outcome of gn_ipc_dial(). */
typedef struct gn_ipc_dial_result {
    uint64_t channel_id;
    gn_peer_id peer; /* the channel's peer; with GN_EPEERID the one that answered */
    char remote_addr[GN_NODE_ADDR_MAX];
} gn_ipc_dial_result;

/**
 * Dials @target (a multiaddr with or without /p2p/<id>, "/p2p/<id>" or a
 * bare peer ID) and waits for the open channel (an open channel to the
 * peer is reused), as gn_node_dial(). @res may be NULL. On GN_EPEERID,
 * res->peer is the peer that answered (len 0 unknown).
 * Errors: GN_EPARSE, GN_ENOTRANSPORT, GN_ECONNREFUSED, GN_EUNREACHABLE,
 * GN_ENEGOTIATION, GN_EPEERID, GN_ELIMIT, GN_ENOROUTE, a handshake error,
 * the common ones (GN_ETIMEDOUT: the client's timeout or the daemon's
 * upgrade timeout). Since: 0.4
 */
GN_API int gn_ipc_dial(gn_ipc_client *c, const char *target, gn_ipc_dial_result *res);

/**
 * Sends one /golem/msg/1.0.0 message (@msg, @len bytes, copied) to @to: a
 * multiaddr (dialled if needed) or a connected peer ID, as
 * gn_node_unicast(). *@req_id (may be NULL) receives the daemon's request
 * id, echoed by a later GN_NODE_EV_SEND_FAILED event.
 * Errors: GN_ETOOBIG, GN_EPARSE, GN_EAGAIN (the channel's queue is full:
 * retry after its GN_NODE_EV_WRITABLE event), the common ones. Since: 0.4
 */
GN_API int gn_ipc_unicast(gn_ipc_client *c, const char *to, const uint8_t *msg, size_t len,
                          uint64_t *req_id);

/** Sends @msg to every open channel of the daemon's node. Errors as gn_ipc_unicast(). Since: 0.4 */
GN_API int gn_ipc_broadcast(gn_ipc_client *c, const uint8_t *msg, size_t len, uint64_t *req_id);

/**
 * Closes every channel to @peer (a peer ID string, or a multiaddr ending
 * in /p2p/<id>). Errors: GN_EPARSE, GN_ENOTFOUND (no channel to it), the
 * common ones. Since: 0.4
 */
GN_API int gn_ipc_close_peer(gn_ipc_client *c, const char *peer);

/* ---- channels (by the node's channel id) ---- */

/**
 * Sends one message on channel @channel_id, as gn_channel_send().
 * Errors: GN_ENOTFOUND (no such channel), GN_ETOOBIG, GN_ESTATE,
 * GN_EAGAIN, the common ones. Since: 0.4
 */
GN_API int gn_ipc_channel_send(gn_ipc_client *c, uint64_t channel_id, const uint8_t *msg,
                               size_t len);

/** Closes channel @channel_id. Errors: GN_ENOTFOUND, the common ones. Since: 0.4 */
GN_API int gn_ipc_channel_close(gn_ipc_client *c, uint64_t channel_id);

/**
 * Fills @info (may be NULL) with a snapshot of channel @channel_id and
 * returns its state (a gn_channel_state, >= 0). Errors: GN_ENOTFOUND (no
 * such channel, or closed and forgotten), the common ones. Since: 0.4
 */
GN_API int gn_ipc_channel_state(gn_ipc_client *c, uint64_t channel_id, gn_channel_info *info);

/**
 * Fills @m with channel @channel_id's counters. Errors: GN_ENOTFOUND, the
 * common ones. Since: 0.4
 */
GN_API int gn_ipc_channel_metrics(gn_ipc_client *c, uint64_t channel_id, gn_channel_metrics *m);

/**
 * Measures a round trip on channel @channel_id with /ipfs/ping/1.0.0;
 * *@rtt (ns) receives it. Errors: GN_ENOTFOUND, GN_ENEGOTIATION,
 * GN_EPROTO, the common ones. Since: 0.4
 */
GN_API int gn_ipc_channel_ping(gn_ipc_client *c, uint64_t channel_id, gn_time *rtt);

/**
 * Pings @target (a peer ID or a multiaddr: dialled if needed). *@rtt in
 * ns. Errors: those of gn_ipc_dial() and gn_ipc_channel_ping(). Since: 0.4
 */
GN_API int gn_ipc_ping(gn_ipc_client *c, const char *target, gn_time *rtt);

/**
 * The daemon's open channels: *@out receives an array of *@n snapshots
 * (free it with gn_free(); NULL when *@n is 0). Errors: the common ones.
 * Since: 0.4
 */
GN_API int gn_ipc_peers(gn_ipc_client *c, gn_channel_info **out, size_t *n);

/** What the daemon's peer store knows of a peer; free with gn_ipc_peer_info_free(). */
typedef struct gn_ipc_peer_info {
    gn_peer_id peer;
    bool identified;
    char agent_version[GN_NODE_ADDR_MAX];
    char observed_addr[GN_NODE_ADDR_MAX];
    gn_ipc_strv addrs;
    gn_ipc_strv protocols;
} gn_ipc_peer_info;

/**
 * Fills @info from the daemon's peer store for @peer (a peer ID string).
 * The caller frees it with gn_ipc_peer_info_free().
 * Errors: GN_EPARSE, GN_ENOTFOUND (unknown peer), the common ones. Since: 0.4
 */
GN_API int gn_ipc_peer_info_get(gn_ipc_client *c, const char *peer, gn_ipc_peer_info *info);

/** Frees what @info holds (NULL: no-op). Since: 0.4 */
GN_API void gn_ipc_peer_info_free(gn_ipc_peer_info *info);

/* ---- the DHT (as golemnet/node.h's gn_node_dht_*; docs/routing-kad.md) ---- */

/** A peer found by a DHT call. */
typedef struct gn_ipc_dht_peer {
    gn_peer_id peer;
    gn_ipc_strv addrs;
} gn_ipc_dht_peer;

/** A DHT call's result; free with gn_ipc_dht_result_free(). */
typedef struct gn_ipc_dht_result {
    uint8_t *value; /* get: the record's value (value_len bytes); else NULL */
    size_t value_len;
    gn_ipc_dht_peer *peers; /* find-peer (one), find-providers, closest-peers */
    size_t npeers;
} gn_ipc_dht_result;

/** Frees what @r holds and zeroes it (NULL: no-op). Since: 0.4 */
GN_API void gn_ipc_dht_result_free(gn_ipc_dht_result *r);

/*
 * Each DHT call waits for the daemon's answer (the client's timeout should
 * exceed the daemon's query bound, 30 s by default; DHT calls without a
 * timeout of their own use 60 s when the client's is shorter than that).
 * @res may be NULL where no result is wanted; on an error with partial
 * results (GN_ETIMEDOUT) @res holds those found. Errors, besides the
 * common ones: GN_ENOTSUP (the daemon's node has no DHT router),
 * GN_ENOROUTE, GN_ETIMEDOUT, and each call's own (node.h); GN_EINVAL for
 * an empty key, a key longer than GN_NODE_DHT_KEY_MAX or a value longer
 * than GN_NODE_DHT_VALUE_MAX.
 */
/** Addresses of @peer (a peer ID string): res->peers[0]. Since: 0.4 */
GN_API int gn_ipc_dht_find_peer(gn_ipc_client *c, const char *peer, gn_ipc_dht_result *res);
/** The best valid record under @key (@key_len bytes): res->value. GN_ENOTFOUND: none. Since: 0.4 */
GN_API int gn_ipc_dht_get(gn_ipc_client *c, const uint8_t *key, size_t key_len,
                          gn_ipc_dht_result *res);
/** Stores @value under @key here and at the closest peers. Since: 0.4 */
GN_API int gn_ipc_dht_put(gn_ipc_client *c, const uint8_t *key, size_t key_len,
                          const uint8_t *value, size_t value_len);
/** Announces the daemon's node as a provider of @key (a multihash). Since: 0.4 */
GN_API int gn_ipc_dht_provide(gn_ipc_client *c, const uint8_t *key, size_t key_len);
/** Up to @max (>= 1) providers of @key: res->peers. Since: 0.4 */
GN_API int gn_ipc_dht_find_providers(gn_ipc_client *c, const uint8_t *key, size_t key_len,
                                     size_t max, gn_ipc_dht_result *res);
/** The peers closest to @key, closest first: res->peers. Since: 0.4 */
GN_API int gn_ipc_dht_closest_peers(gn_ipc_client *c, const uint8_t *key, size_t key_len,
                                    gn_ipc_dht_result *res);

/* ---- streams: raw bytes on a dedicated connection ---- */

/** What a stream is: borrowed from the stream, valid as long as it. */
typedef struct gn_ipc_stream_info {
    uint64_t channel_id;
    gn_peer_id peer;
    char protocol[GN_PROTOCOL_ID_MAX];
    char remote_addr[GN_NODE_ADDR_MAX];
} gn_ipc_stream_info;

/**
 * Opens a stream to @target (a peer ID or multiaddr, dialled if needed;
 * NULL when @channel_id is not 0: on that channel) and negotiates
 * @protocol_id on it. The client opens a new connection to the daemon for
 * it (the control connection stays free for calls); after the daemon's OK
 * that connection carries the stream's raw bytes both ways: read and write
 * them through gn_ipc_stream_fd() (a connected, blocking socket) or
 * gn_ipc_stream_read()/gn_ipc_stream_write(). Closing it closes the
 * stream. *@out: free with gn_ipc_stream_free(). Any thread.
 * Errors: GN_ENEGOTIATION (the peer does not serve @protocol_id),
 * GN_ENOTFOUND (no channel @channel_id), the errors of gn_ipc_dial() and of
 * gn_ipc_connect(), the common ones.
 * Since: 0.4
 */
GN_API int gn_ipc_stream_open(gn_ipc_client *c, const char *target, uint64_t channel_id,
                              const char *protocol_id, gn_ipc_stream **out);

/**
 * The stream's socket (owned by @s; do not close it): connected and
 * blocking, for read(2)/write(2)/poll(2). A write(2) after the daemon
 * closed the stream raises SIGPIPE unless the application ignores it (use
 * send(2) with MSG_NOSIGNAL, or gn_ipc_stream_write(), which never does).
 * Since: 0.4
 */
GN_API int gn_ipc_stream_fd(const gn_ipc_stream *s);

/** The stream's channel, peer, protocol and remote address. Since: 0.4 */
GN_API const gn_ipc_stream_info *gn_ipc_stream_get_info(const gn_ipc_stream *s);

/**
 * Reads up to @len bytes into @buf, waiting at most @timeout (ns;
 * GN_TIME_INFINITY: no bound) for the first. Returns the count (> 0), 0 at
 * the end of the stream (the peer closed its side), or GN_ETIMEDOUT,
 * GN_ECONNRESET (the stream was reset or the daemon went away), GN_EIO.
 * One thread at a time per stream. Since: 0.4
 */
GN_API int gn_ipc_stream_read(gn_ipc_stream *s, uint8_t *buf, size_t len, gn_time timeout);

/**
 * Writes all @len bytes of @buf, waiting at most @timeout (ns) in all.
 * Returns 0, or GN_ETIMEDOUT (part may have been written), GN_EPIPE
 * (after gn_ipc_stream_shutdown(), or the stream is gone), GN_EIO.
 * One thread at a time per stream. Since: 0.4
 */
GN_API int gn_ipc_stream_write(gn_ipc_stream *s, const uint8_t *buf, size_t len,
                               gn_time timeout);

/**
 * Half-closes: no more writes; the peer reads the end of the stream.
 * Returns 0 or GN_EIO. Since: 0.4
 */
GN_API int gn_ipc_stream_shutdown(gn_ipc_stream *s);

/**
 * Closes the stream's connection (the daemon closes the stream) and frees
 * @s (NULL: no-op). Since: 0.4
 */
GN_API void gn_ipc_stream_free(gn_ipc_stream *s);

/**
 * Registers this client as the handler of @protocol_id on the daemon's
 * node. The client listens on @path (a Unix socket path, mode 0600;
 * NULL: a fresh path beside the daemon's socket, or in $TMPDIR) and the
 * daemon connects there for each negotiated inbound stream, writes one
 * framed StreamInfo, then the stream's raw bytes. Take them with
 * gn_ipc_handler_accept(). The registration ends with gn_ipc_handler_free()
 * or when the client's connection ends. *@out: free with
 * gn_ipc_handler_free(). Any thread.
 * Errors: GN_EEXIST (another handler has @protocol_id, or a built-in),
 * GN_EADDRINUSE (a live socket at @path), GN_EPARSE (@path too long),
 * GN_ELIMIT (the daemon's handler bound), the common ones.
 * Since: 0.4
 */
GN_API int gn_ipc_handler_new(gn_ipc_client *c, const char *protocol_id, const char *path,
                              gn_ipc_handler **out);

/** The listening socket: readable when a stream waits to be accepted. Since: 0.4 */
GN_API int gn_ipc_handler_fd(const gn_ipc_handler *h);

/** The handler's socket path (NUL-terminated, borrowed). Since: 0.4 */
GN_API const char *gn_ipc_handler_path(const gn_ipc_handler *h);

/**
 * Accepts the next inbound stream, waiting at most @timeout (ns; 0: do not
 * wait) for the daemon's connection and its StreamInfo. *@out: free with
 * gn_ipc_stream_free(). One thread at a time per handler.
 * Errors: GN_EAGAIN (none waiting, @timeout 0), GN_ETIMEDOUT, GN_EPROTO
 * (the connection did not start with a StreamInfo: it is closed), GN_EIO,
 * GN_ENOMEM. Since: 0.4
 */
GN_API int gn_ipc_handler_accept(gn_ipc_handler *h, gn_ipc_stream **out, gn_time timeout);

/**
 * Removes the registration (when its client is still connected), closes
 * the socket, unlinks its path and frees @h (NULL: no-op). Streams already
 * accepted stay valid. Free handlers before their client. Since: 0.4
 */
GN_API void gn_ipc_handler_free(gn_ipc_handler *h);

/* ---- events ---- */

/**
 * Asks the daemon to publish the events of @mask (GN_IPC_EVENT_BIT() of
 * gn_node_event_type values, GN_IPC_EVENTS_ALL; 0: none) to this client,
 * replacing the previous mask. Events arrive from the daemon's node as
 * they happen from then on (none from before).
 * Errors: the common ones. Since: 0.4
 */
GN_API int gn_ipc_subscribe(gn_ipc_client *c, uint64_t mask);

/**
 * Pops the oldest event into @ev, as gn_node_next_event(): the daemon
 * node's events with the node's types and fields (a GN_NODE_EV_MESSAGE's
 * payload is an rcbuf the receiver releases with gn_rcbuf_rele()), plus
 * GN_IPC_EV_LOST and GN_IPC_EV_DISCONNECTED. @timeout: 0 = do not wait,
 * GN_TIME_INFINITY = wait, else ns. Any thread.
 * Errors: GN_EAGAIN (none queued, @timeout 0), GN_ETIMEDOUT, GN_ECLOSED
 * (the connection ended and every event, GN_IPC_EV_DISCONNECTED last, was
 * popped), GN_EINVAL.
 * Since: 0.4
 */
GN_API int gn_ipc_next_event(gn_ipc_client *c, gn_node_event *ev, gn_time timeout);

/**
 * A file descriptor readable while events are queued (or the connection
 * has ended), for poll/epoll/asyncio; level-triggered. Do not read or
 * close it. Since: 0.4
 */
GN_API int gn_ipc_event_fd(const gn_ipc_client *c);

/** Client counters. */
typedef struct gn_ipc_stats {
    uint64_t calls;           /* requests sent */
    uint64_t events_received; /* events read from the daemon */
    uint64_t events_dropped;  /* events dropped for a full queue (reported as GN_IPC_EV_LOST) */
    uint64_t late_responses;  /* responses that came after their call timed out */
} gn_ipc_stats;

/** Fills @st. Any thread. Errors: GN_EINVAL. Since: 0.4 */
GN_API int gn_ipc_stats_get(gn_ipc_client *c, gn_ipc_stats *st);

GN_END_DECLS

#endif /* GOLEMNET_IPC_H */
