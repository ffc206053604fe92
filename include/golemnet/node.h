/*
 * golemnet - the node: the public net API.
 *
 * A node owns an identity, a stack (transports, security components and
 * muxers in preference order), listeners, channels (one logical connection
 * to a peer) and protocol handlers. It runs on one gn_loop: its own thread
 * (default) or an application's libuv loop.
 *
 * The API words are the golem-net design's: configure, listen, dial,
 * unicast, broadcast, close; channel send, close, state, metrics.
 *
 * Two ways to use it:
 *  - on the loop thread, with callbacks (protocol implementations, the CLI);
 *  - from any other thread: every function marked "any thread" queues a
 *    command (bounded: GN_EAGAIN when full) and reports its outcome as a
 *    gn_node_event carrying the request id it returned; events are popped
 *    with gn_node_next_event() or watched through gn_node_event_fd().
 * Callbacks always run on the loop thread and never from inside the call
 * that registered them.
 *
 * Spec: libp2p/specs connections/README.md (upgrade pipeline),
 * docs/protocols/msg.md (/golem/msg/1.0.0, the unicast/broadcast messages).
 *
 * Implemented in node/ (node.c, upgrade.c, channel.c, peerstore.c); the
 * design is in docs/node.md.
 */
#ifndef GOLEMNET_NODE_H
#define GOLEMNET_NODE_H

#include "golemnet/buf.h"
#include "golemnet/crypto.h"
#include "golemnet/host.h"
#include "golemnet/rcmgr.h"
#include "golemnet/identity.h"
#include "golemnet/loop.h"
#include "golemnet/mux.h"
#include "golemnet/registry.h"
#include "golemnet/router.h"
#include "golemnet/stream.h"
#include "golemnet/transport.h"

GN_BEGIN_DECLS

typedef struct gn_node gn_node;
typedef struct gn_multicast gn_multicast;

/** The message protocol used by unicast and broadcast. */
#define GN_MSG_PROTOCOL_ID "/golem/msg/1.0.0"
/** Longest multiaddr string in events and infos, including the NUL. */
#define GN_NODE_ADDR_MAX 256

/** Built-in application protocols a node serves (gn_node_config.protocols). */
#define GN_NODE_PROTO_IDENTIFY 0x01u /* /ipfs/id/1.0.0 and /ipfs/id/push/1.0.0 */
#define GN_NODE_PROTO_PING 0x02u     /* /ipfs/ping/1.0.0 */
#define GN_NODE_PROTO_ECHO 0x04u     /* /echo/1.0.0 */
#define GN_NODE_PROTO_PERF 0x08u     /* /perf/1.0.0 */
#define GN_NODE_PROTO_MSG 0x10u      /* /golem/msg/1.0.0 */
#define GN_NODE_PROTO_DEFAULT (GN_NODE_PROTO_IDENTIFY | GN_NODE_PROTO_PING | GN_NODE_PROTO_MSG)

/** Node options. Fill with gn_node_config_default() first. */
typedef struct gn_node_config {
    uint32_t version; /* GN_NODE_CONFIG_VERSION */
    /** Borrowed; must outlive the node. NULL: a fresh random identity. */
    const gn_identity *identity;
    /** Borrowed; must outlive the node. NULL: a registry of the built-ins. */
    const gn_registry *registry;
    /**
     * Components in preference order, comma-separated; each entry is a
     * registered name ("/noise") or its short form ("noise", "ecies",
     * "yamux", "mplex", "tcp"). NULL: every registered component except
     * explicit-only ones (plaintext), in registration order (Noise before
     * ECIES, yamux before mplex).
     */
    const char *transports;
    const char *security;
    const char *muxers;
    /** Multiaddrs to listen on at gn_node_start(); @n_listen entries. */
    const char *const *listen;
    size_t n_listen;
    gn_transport_config transport;
    gn_crypto_config crypto;
    gn_mux_config mux;
    uint32_t max_connections;          /* all channels; default 1024 */
    uint32_t max_connections_per_peer; /* default 4 */
    gn_time upgrade_timeout;           /* dial to open channel; default 20 s */
    gn_time idle_timeout;              /* close channels with no stream this long; 0 = never (default) */
    size_t max_message_len;            /* /golem/msg/1.0.0 payload bound; default 1 MiB, at most 256 MiB */
    size_t event_queue_capacity;       /* gn_node_event slots; default 4096 */
    size_t command_queue_capacity;     /* commands from other threads; default 4096 */
    uint32_t protocols;                /* GN_NODE_PROTO_* served; default GN_NODE_PROTO_DEFAULT */
    const char *agent_version;         /* identify; NULL: "golemnet/<version>" */
    /**
     * NULL: the node creates a loop and runs it on its own thread from
     * gn_node_start(). Otherwise the node lives on this loop (borrowed), which
     * the application runs.
     */
    gn_loop *loop;
    /**
     * Hosted components (golemnet/host.h), comma-separated names as for
     * `security`: routers in the order they are asked ("static"), discovery
     * components ("bootstrap"), NAT components, and protocol components
     * (gn_protocol_ops; "/my/proto/1.0.0" or its short form). NULL: every
     * registered component of the kind that is not explicit-only, in
     * registration order; "" (empty): none. Protocol components that have
     * a node bit (the built-in identify, ping, echo, perf and msg) follow
     * `protocols` instead, whatever the list says.
     * Since: 0.2
     */
    const char *routers;
    const char *discovery;
    const char *nat;
    const char *protocol_components;
    /**
     * Component options, @n_options entries "component.key=value" (e.g.
     * "static.peer=/ip4/10.0.0.1/tcp/4001/p2p/12D3KooW...",
     * "bootstrap.peer=/ip4/..."), read by the components through
     * gn_host_option(); copied. Each component documents its keys
     * (docs/components.md). Since: 0.2
     */
    const char *const *options;
    size_t n_options;
} gn_node_config;
#define GN_NODE_CONFIG_VERSION 2

/** Fills @cfg with the defaults above. Since: 0.1 */
GN_API void gn_node_config_default(gn_node_config *cfg);

/**
 * Creates a node; nothing runs until gn_node_start(). @cfg is copied (the
 * strings too); borrowed pointers (identity, registry, loop) must outlive
 * the node. Any thread.
 * Errors: GN_EINVAL (bad config version or values), GN_ENOTFOUND (a
 * component name in transports/security/muxers is not registered),
 * GN_ENOMEM, GN_EIO (no loop or thread).
 * Since: 0.1
 */
GN_API int gn_node_new(const gn_node_config *cfg, gn_node **out);

/**
 * Starts the node: the loop thread (own loop) and the configured listeners.
 * Listener results arrive as GN_NODE_EV_LISTENING / GN_NODE_EV_LISTEN_FAILED.
 * Any thread. Errors: GN_ESTATE (already started or closed).
 * Since: 0.1
 */
GN_API int gn_node_start(gn_node *n);

/** The node's peer ID. Any thread. Since: 0.1 */
GN_API void gn_node_peer_id(const gn_node *n, gn_peer_id *out);

/** The loop the node runs on. Since: 0.1 */
GN_API gn_loop *gn_node_loop(gn_node *n);

/**
 * The node's host interface (golemnet/host.h): what hosted components use.
 * Valid as long as the node. Any thread (the host's functions are for the
 * loop thread). Since: 0.2
 */
GN_API gn_host *gn_node_host(gn_node *n);

/* ---- requests: any thread; outcome as a callback (loop thread) or event ---- */

/**
 * Listens on @multiaddr (e.g. "/ip4/127.0.0.1/tcp/0"). The outcome is a
 * GN_NODE_EV_LISTENING event with the bound address (port 0 resolved, with
 * /p2p/<id>), or GN_NODE_EV_LISTEN_FAILED with GN_EADDRINUSE,
 * GN_EADDRNOTAVAIL, GN_EACCES, GN_ENOTRANSPORT. *@req_id (may be NULL)
 * receives the request id echoed in the event.
 * Immediate errors: GN_EPARSE (bad multiaddr), GN_EAGAIN (command queue
 * full), GN_ECLOSED.
 * Since: 0.1
 */
GN_API int gn_node_listen(gn_node *n, const char *multiaddr, uint64_t *req_id);

/**
 * Dial completion (loop thread). @status 0 with @ch borrowed for the call
 * (gn_channel_hold() to keep it), or GN_ECONNREFUSED, GN_EUNREACHABLE,
 * GN_ETIMEDOUT, GN_ENEGOTIATION (no common security or muxer), GN_EPEERID
 * (the peer is not the /p2p/ id dialed), a handshake error, GN_ELIMIT
 * (connection limits), GN_ECANCELED (node closing); @ch NULL. To learn
 * which peer answered a GN_EPEERID dial, use gn_node_dial_ex().
 */
typedef void (*gn_node_dial_cb)(void *arg, int status, gn_channel *ch);

/**
 * The outcome of a gn_node_dial_ex() dial, borrowed for the callback.
 * Since: 0.2
 */
typedef struct gn_node_dial_result {
    /** 0, or an error as for gn_node_dial_cb. */
    int status;
    /** status 0: the channel, borrowed for the call (gn_channel_hold() to keep it); else NULL. */
    gn_channel *ch;
    /**
     * status 0: the channel's peer. GN_EPEERID: the peer ID the remote
     * proved in the handshake instead of the dialed /p2p/ id (len 0 when
     * the security component could not tell, see gn_secure_cb). Any other
     * error: len 0.
     */
    gn_peer_id peer;
    /**
     * NULL, or why the dial failed in words, NUL-terminated, borrowed for
     * the call: set when resolving a /dns* or /dnsaddr address failed
     * ("_dnsaddr.example.com: NXDOMAIN (domain name not found)"). Since: 0.3
     */
    const char *detail;
} gn_node_dial_result;

/** gn_node_dial_ex() completion (loop thread); @res is borrowed for the call. Since: 0.2 */
typedef void (*gn_node_dial_result_cb)(void *arg, const gn_node_dial_result *res);

/**
 * Dials @multiaddr (with or without /p2p/<id>) and upgrades the connection:
 * transport -> multistream-select security -> handshake (checks the /p2p/
 * id) -> muxer (early-negotiated or multistream-select) -> open channel.
 * An open channel to the same peer is reused. @multiaddr may also name only
 * a peer: "/p2p/<id>" or a bare peer ID string; then the newest live address
 * of the peer store (from earlier connections, identify, discovery) is
 * dialled, else the routers are asked in order (gn_node_config.routers);
 * with no address and no router's answer the dial fails with GN_ENOROUTE.
 * An address starting with /dns, /dns4, /dns6 or /dnsaddr is resolved on
 * the loop first (options dns.*, docs/dns.md); resolving fails the dial
 * with GN_ERESOLVE (NXDOMAIN, no record, no matching dnsaddr entry),
 * GN_ETIMEDOUT (also past dns.deadline_ms) or GN_EIO, described in
 * gn_node_dial_result.detail; results no transport handles fail it with
 * GN_ENOTRANSPORT (detail "resolved to ..."), also with /p2p/<id> when
 * the peer has no other stored address left to try.
 * @cb NULL: the outcome is a GN_NODE_EV_DIAL event with *@req_id.
 * Immediate errors: GN_EPARSE, GN_ENOTRANSPORT (also for a /dns* address
 * whose resolved form no transport would handle), GN_EAGAIN, GN_ECLOSED.
 * Since: 0.1 (peer-only targets and GN_ENOROUTE: 0.2; DNS: 0.3)
 */
GN_API int gn_node_dial(gn_node *n, const char *multiaddr, gn_node_dial_cb cb, void *arg,
                        uint64_t *req_id);

/**
 * gn_node_dial(), reporting through @cb (not NULL) with a
 * gn_node_dial_result: the same outcome, plus, when the dial fails with
 * GN_EPEERID, the peer ID that actually answered (res->peer), so an
 * application can say "expected X, received Y". @cb runs exactly once on
 * the loop thread, never from inside this call. Any thread.
 * Immediate errors: GN_EINVAL (NULL @n, @multiaddr or @cb), GN_EPARSE,
 * GN_ENOTRANSPORT, GN_EAGAIN, GN_ECLOSED; then @cb does not run.
 * Since: 0.2
 */
GN_API int gn_node_dial_ex(gn_node *n, const char *multiaddr, gn_node_dial_result_cb cb,
                           void *arg, uint64_t *req_id);

/**
 * Fire-and-forget message to one peer, on /golem/msg/1.0.0: @to is a
 * multiaddr (dialed if needed; an open channel to its /p2p/ peer or address
 * is reused) or a peer ID string of a connected peer. @msg (@len bytes, at
 * most max_message_len) is copied. Any thread.
 *
 * Backpressure: when @to names a peer (peer ID, or a multiaddr with /p2p/)
 * or an address with an open channel, the call takes a slot in that
 * channel's message queue (GN_HOST_MSG_QUEUE_MAX, shared with
 * gn_channel_send()) where it is called, and returns GN_EAGAIN when the
 * queue is full: nothing was queued; wait for the GN_NODE_EV_WRITABLE event
 * of that channel (or its GN_NODE_EV_CHANNEL_CLOSED) and try again. A
 * message to a peer with no open channel yet (being dialled) is queued
 * with the dial and its failures are reported as events.
 *
 * Delivery failures after 0 are reported as GN_NODE_EV_SEND_FAILED events
 * with *@req_id: the dial's error, GN_ENOTFOUND (no open channel to that
 * peer ID), GN_EAGAIN (the queue of a channel opened by the dial for this
 * message was full), GN_ENEGOTIATION (the peer does not serve the
 * protocol), GN_ECLOSED (the channel closed with the message queued),
 * GN_ECANCELED (node closing). These events are never dropped (see
 * gn_node_event.count). A message counts as sent (messages_out) once the
 * channel's message stream handed it to the muxer (the stream write
 * completed); one the writer had taken but not handed on when the stream,
 * channel or node ended is reported with SEND_FAILED (since 0.5; before,
 * it counted as sent when queued in the writer). Immediate errors: GN_EINVAL, GN_ETOOBIG, GN_EPARSE,
 * GN_EAGAIN (the channel's queue, or the command queue, is full: after a
 * full command queue no WRITABLE follows, so a caller waiting for one also
 * retries after a short delay), GN_ECLOSED, GN_ENOMEM.
 * Since: 0.1 (synchronous GN_EAGAIN of a full channel queue: 0.3)
 */
GN_API int gn_node_unicast(gn_node *n, const char *to, const uint8_t *msg, size_t len,
                           uint64_t *req_id);

/**
 * Sends @msg to every open channel (one shared refcounted copy).
 * Immediate errors as gn_node_unicast(). Since: 0.1
 */
GN_API int gn_node_broadcast(gn_node *n, const uint8_t *msg, size_t len, uint64_t *req_id);

/** Run-time options for gn_node_configure(). */
typedef enum gn_node_option {
    GN_NODE_OPT_MAX_CONNECTIONS = 1,          /* value: count */
    GN_NODE_OPT_MAX_CONNECTIONS_PER_PEER = 2, /* value: count */
    GN_NODE_OPT_IDLE_TIMEOUT_MS = 3,          /* value: ms, 0 = never */
    GN_NODE_OPT_MAX_MESSAGE_LEN = 4,          /* value: bytes */
    /*
     * The connection manager (docs/limits.md "Connection manager"). Since: 0.2
     */
    GN_NODE_OPT_CONN_HIGH_WATER = 5,       /* open channels above which the least valuable are
                                              closed down to the low mark; default 896, 0 = off */
    GN_NODE_OPT_CONN_LOW_WATER = 6,        /* default 768; at or above the high mark it acts
                                              as the high mark */
    GN_NODE_OPT_CONN_GRACE_MS = 7,         /* channels younger than this are not trimmed;
                                              default 20000 */
    GN_NODE_OPT_MAX_UPGRADING = 8,         /* connections still upgrading, all peers; default 128 */
    GN_NODE_OPT_MAX_CONNECTIONS_PER_IP = 9, /* per remote IP address; default 64 (a subnet,
                                              IPv4 /24 or IPv6 /64, holds twice as many) */
    GN_NODE_OPT_MAX_UPGRADING_PER_IP = 10, /* still upgrading, per remote IP; default 8
                                              (per subnet twice as many) */
    GN_NODE_OPT_FIRST_BYTE_TIMEOUT_MS = 11 /* an inbound connection that sent nothing this long
                                              is closed; default 5000, 0 = only upgrade_timeout */
} gn_node_option;

/**
 * Changes an option at run time. Any thread; applied on the loop thread
 * in call order (limits apply to new reservations: nothing already open is
 * closed for a lowered limit, except by the water marks). Errors:
 * GN_ENOTSUP (unknown option), GN_ERANGE (bad value: 0 where a count is
 * needed), GN_EAGAIN, GN_ECLOSED.
 * Since: 0.1 (connection manager options: 0.2)
 */
GN_API int gn_node_configure(gn_node *n, gn_node_option opt, uint64_t value);

/**
 * Protects @peer's channels from trimming by the water marks (@protect
 * true) or ends the protection (false). At most 256 protected peers.
 * Any thread; applied on the loop thread. Errors: GN_EINVAL, GN_ENOMEM,
 * GN_EAGAIN (command queue full), GN_ECLOSED.
 * Since: 0.2
 */
GN_API int gn_node_protect_peer(gn_node *n, const gn_peer_id *peer, bool protect);

/**
 * The node's resource manager (golemnet/rcmgr.h): read its scopes' usage
 * and refusals (gn_rcmgr_stat, gn_rcmgr_foreach, gn_rcmgr_last_refusal) or
 * change its limits. Loop thread only; lives as long as the node.
 * Since: 0.2
 */
GN_API gn_rcmgr *gn_node_rcmgr(gn_node *n);

/**
 * A negotiated inbound stream for a registered protocol (loop thread). The
 * callee owns @s (it must gn_stream_close() it); @ch is borrowed.
 */
typedef void (*gn_node_stream_cb)(void *arg, gn_channel *ch, gn_stream *s,
                                  const char *protocol_id);

/**
 * Registers @cb for @protocol_id (NUL-terminated, < GN_PROTOCOL_ID_MAX
 * bytes); NULL @cb removes it. Inbound streams for it are handed over after
 * multistream-select. Loop thread, or before gn_node_start().
 * Errors: GN_EINVAL (bad id, or another thread after the start),
 * GN_EEXIST (already registered, or a built-in protocol the node serves),
 * GN_ENOTFOUND (removing an id that is not registered), GN_ELIMIT (64
 * handlers).
 * Since: 0.1
 */
GN_API int gn_node_set_handler(gn_node *n, const char *protocol_id, gn_node_stream_cb cb,
                               void *arg);

/** Close completion (loop thread); the node may be freed afterwards. */
typedef void (*gn_node_close_cb)(gn_node *n, void *arg);

/**
 * Closes every listener and channel; pending operations complete with
 * GN_ECANCELED; then @cb runs (may be NULL) and a GN_NODE_EV_CLOSED event
 * is queued. Any thread. Idempotent.
 * Since: 0.1
 */
GN_API void gn_node_close(gn_node *n, gn_node_close_cb cb, void *arg);

/**
 * Frees a node, joining its loop thread. Not on the loop thread. With its
 * own loop, a started node that is not closed yet is closed first (this
 * waits for the close). On an application's loop the close must have
 * completed (the close callback ran), or the node was never started.
 * Events still queued are released. Channels the application holds stay
 * valid (gn_channel_state_get() says CLOSED) until released.
 * Since: 0.1
 */
GN_API void gn_node_free(gn_node *n);

/* ---- the DHT: values, providers, peers (docs/routing-kad.md) ---- */

/*
 * These ask the node's DHT router (the first router that has the entry:
 * the built-in one is "kad", /ipfs/kad/1.0.0) through the host
 * (gn_host_get_value() and the others, golemnet/router.h). Any thread: the
 * arguments are copied and the request runs on the loop; @cb runs there
 * exactly once when the call returned 0, never from inside the call.
 * Immediate errors (then @cb never runs): GN_EINVAL (NULL @n or @cb, an
 * empty key or one longer than GN_NODE_DHT_KEY_MAX, a value longer than
 * GN_NODE_DHT_VALUE_MAX), GN_ENOMEM, GN_EAGAIN (the loop's command queue
 * is full), GN_ECLOSED. Errors through @cb: GN_ESTATE (the node is not
 * started), GN_ECLOSED (closing), GN_ENOTSUP (no router is a DHT), the
 * router's refusal (GN_ELIMIT: too many queries), then each call's own.
 * Spec: libp2p/specs kad-dht/README.md. Since: 0.3
 */

/** Longest DHT key the node's calls accept, bytes. */
#define GN_NODE_DHT_KEY_MAX 1024u
/** Longest value gn_node_dht_put() accepts, bytes (the kad store's default record bound). */
#define GN_NODE_DHT_VALUE_MAX (64u * 1024u)

/** A DHT call's outcome; everything is borrowed for the callback. */
typedef struct gn_node_dht_result {
    int status;
    /** get: the record's value (status 0). */
    gn_slice value;
    /**
     * find_peer: the peer and its addresses (one entry); find_providers:
     * the providers found; closest_peers: the closest peers, closest first.
     * With GN_ETIMEDOUT, what was found before the time ran out.
     */
    const gn_router_peer *peers;
    size_t npeers;
} gn_node_dht_result;

/** DHT completion (loop thread). */
typedef void (*gn_node_dht_cb)(void *arg, const gn_node_dht_result *res);

/**
 * Finds @peer's addresses: the peer store, then the routers in order (the
 * same path a dial to a bare /p2p/<id> takes). @cb: 0 with one peer,
 * GN_ENOROUTE (no router found it), GN_ETIMEDOUT, GN_ECANCELED.
 */
GN_API int gn_node_dht_find_peer(gn_node *n, const gn_peer_id *peer, gn_node_dht_cb cb,
                                 void *arg);
/**
 * Gets the best valid record stored under @key (@key_len bytes, "/<ns>/...").
 * @cb: 0 with the value, GN_ENOTFOUND (no peer had a valid one),
 * GN_ENOROUTE (no peer to ask and none stored here), GN_ETIMEDOUT.
 */
GN_API int gn_node_dht_get(gn_node *n, const uint8_t *key, size_t key_len, gn_node_dht_cb cb,
                           void *arg);
/**
 * Puts @value (@value_len bytes) under @key here and at the k peers
 * closest to it. @cb: 0 (at least one peer stored it), GN_ENOROUTE (kept
 * here only: no peer to send it to), GN_EINVAL (the namespace's validator
 * refused it), GN_ENOTSUP (no validator for the key's namespace),
 * GN_ELIMIT (the local store is full), GN_ETIMEDOUT.
 */
GN_API int gn_node_dht_put(gn_node *n, const uint8_t *key, size_t key_len, const uint8_t *value,
                           size_t value_len, gn_node_dht_cb cb, void *arg);
/**
 * Announces this node as a provider of @key (a multihash, e.g. a CID's)
 * to the k peers closest to it; republished while the node runs.
 * @cb: 0, GN_ENOROUTE (recorded here only), GN_ELIMIT, GN_ETIMEDOUT.
 */
GN_API int gn_node_dht_provide(gn_node *n, const uint8_t *key, size_t key_len,
                               gn_node_dht_cb cb, void *arg);
/**
 * Finds up to @max (>= 1) providers of @key. @cb: 0 with the providers
 * (none: nobody provides it), GN_ENOROUTE, GN_ETIMEDOUT (with those found).
 */
GN_API int gn_node_dht_find_providers(gn_node *n, const uint8_t *key, size_t key_len,
                                      size_t max, gn_node_dht_cb cb, void *arg);
/**
 * Finds the k peers closest to @key (any bytes; for a peer, its ID's
 * bytes). @cb: 0 with the peers, GN_ENOROUTE, GN_ETIMEDOUT (with those found).
 */
GN_API int gn_node_dht_closest_peers(gn_node *n, const uint8_t *key, size_t key_len,
                                     gn_node_dht_cb cb, void *arg);
/**
 * The DHT router's counters (gn_router_stats: queries, requests, hops,
 * routing-table size, stored records). Loop thread only (tests and
 * benchmarks on an application loop). Errors: GN_EINVAL, GN_ESTATE (not
 * started), GN_ENOTSUP (no DHT router).
 */
GN_API int gn_node_dht_stats(gn_node *n, gn_router_stats *out);
/**
 * Registers a record validator for namespace @v->ns (shorter than 64
 * bytes, no '/') with the DHT routers; allowed before gn_node_start() so
 * that no record of the namespace is refused in between. @v is copied; its
 * functions and arg must outlive the node. @cb: 0, GN_ENOTSUP (no router
 * takes validators), GN_ELIMIT (too many namespaces). The built-in "pk"
 * namespace needs none (docs/routing-kad.md).
 */
GN_API int gn_node_dht_set_validator(gn_node *n, const gn_router_validator *v,
                                     gn_node_dht_cb cb, void *arg);

/* ---- events ---- */

typedef enum gn_node_event_type {
    GN_NODE_EV_NONE = 0,
    GN_NODE_EV_LISTENING = 1,      /* addr: the bound address */
    GN_NODE_EV_LISTEN_FAILED = 2,  /* status, addr */
    /**
     * status; on success channel_id, peer, addr (remote), protocol (muxer);
     * on GN_EPEERID peer is the peer ID the remote proved instead of the
     * dialed one (len 0 when unknown; since 0.2).
     */
    GN_NODE_EV_DIAL = 3,
    GN_NODE_EV_CHANNEL_OPENED = 4, /* channel_id, peer, addr (remote), protocol (muxer) */
    GN_NODE_EV_CHANNEL_CLOSED = 5, /* channel_id, peer, status (why) */
    GN_NODE_EV_IDENTIFY = 6,       /* channel_id, peer, status, protocol (agent), addr (observed) */
    GN_NODE_EV_MESSAGE = 7,        /* channel_id, peer, message */
    GN_NODE_EV_SEND_FAILED = 8,    /* request_id, status */
    GN_NODE_EV_PING = 9,           /* channel_id, peer, rtt */
    GN_NODE_EV_CLOSED = 10,        /* the node finished closing */
    /**
     * A hosted component (router, discovery, NAT, protocol) refused to
     * start: status (its error), protocol ("<kind> <name>"). The node opens
     * no listener and starts nothing else; close it. Since: 0.2
     */
    GN_NODE_EV_START_FAILED = 11,
    /**
     * channel_id, peer: the channel's message queue has room again (fewer
     * than GN_HOST_MSG_QUEUE_MAX / 2 messages) after a gn_channel_send(),
     * gn_node_unicast() or gn_multicast_unicast() on it returned GN_EAGAIN.
     * One event per such episode, however many calls were refused; none
     * without a GN_EAGAIN, and none once the channel is closing (its
     * GN_NODE_EV_CHANNEL_CLOSED follows instead). Since: 0.3
     */
    GN_NODE_EV_WRITABLE = 12,
    /**
     * status: the node's new reachability (gn_reachability, golemnet/host.h:
     * GN_REACH_PUBLIC, GN_REACH_PRIVATE or GN_REACH_UNKNOWN) as an AutoNAT
     * component judged it; addr: the address that proved it (may be
     * empty). Since: 0.4
     */
    GN_NODE_EV_REACHABILITY = 13
} gn_node_event_type;

/** One event. Fixed size; strings are NUL-terminated. */
typedef struct gn_node_event {
    gn_node_event_type type;
    int status;
    uint64_t request_id;
    uint64_t channel_id;
    gn_peer_id peer;
    gn_time rtt;
    char addr[GN_NODE_ADDR_MAX];
    char protocol[GN_PROTOCOL_ID_MAX];
    /** GN_NODE_EV_MESSAGE: the payload; the receiver owns one reference. */
    gn_rcbuf *message;
    /**
     * GN_NODE_EV_SEND_FAILED: how many failed messages this event reports,
     * 1 normally. When the event queue and its overflow list are full,
     * failures are aggregated into one pending event per channel and
     * status (channel_id 0 and peer zeroed once more than 256 channels have
     * one, or when it spans several peers) with the request_id of the
     * first; count says how many it stands for (gn_node_stats). 0 for the
     * other types. Since: 0.3
     */
    uint64_t count;
} gn_node_event;

/**
 * Pops the oldest event into @ev. @timeout: 0 = do not wait,
 * GN_TIME_INFINITY = wait. Any thread (not after gn_node_free()). Errors:
 * GN_EAGAIN (none, timeout 0), GN_ETIMEDOUT, GN_ECLOSED (closed and
 * drained: the GN_NODE_EV_CLOSED event was the last one).
 * When the queue is full, message streams stop being read (backpressure to
 * the senders) and other events wait in a bounded overflow list; past it,
 * see gn_node_stats. Aggregated SEND_FAILED events come after the overflow
 * list (later events may overtake them), always before GN_NODE_EV_CLOSED.
 * Since: 0.1
 */
GN_API int gn_node_next_event(gn_node *n, gn_node_event *ev, gn_time timeout);

/**
 * A file descriptor readable while events are queued (gn_evq_fd(): on Windows
 * a loopback socket, which may stay readable briefly after the queue empties;
 * a gn_node_next_event() with a 0 timeout that returns GN_EAGAIN clears it).
 */
GN_API int gn_node_event_fd(const gn_node *n);

/**
 * What happened to events the application did not read in time. The event
 * queue holds event_queue_capacity events; then a bounded overflow list
 * holds as many again (at least 256). When both are full:
 *  - GN_NODE_EV_MESSAGE is never queued: the message streams stop being
 *    read (backpressure to the senders);
 *  - GN_NODE_EV_SEND_FAILED is aggregated (gn_node_event.count);
 *  - GN_NODE_EV_IDENTIFY is dropped (the peer store keeps its result), and
 *    counted in events_dropped with a warning in the log;
 *  - every other type (each the outcome of one request or the life of one
 *    channel, themselves bounded) is kept past the bound.
 * Only out of memory loses another event: counted in events_dropped, with
 * an error in the log.
 */
typedef struct gn_node_stats {
    uint64_t events_overflowed;      /* events that waited in the overflow list */
    uint64_t send_failed_aggregated; /* send failures reported through aggregates */
    uint64_t events_dropped;         /* events (or send failures) lost, as above */
    uint64_t writable_events;        /* GN_NODE_EV_WRITABLE events emitted */
} gn_node_stats;

/**
 * Fills @st with the node's counters since gn_node_new(). Any thread.
 * Errors: GN_EINVAL (@n or @st NULL).
 * Since: 0.3
 */
GN_API int gn_node_stats_get(gn_node *n, gn_node_stats *st);

/* ---- channels ---- */

typedef enum gn_channel_state {
    GN_CHANNEL_DIALING = 0,
    GN_CHANNEL_UPGRADING = 1,
    GN_CHANNEL_OPEN = 2,
    GN_CHANNEL_CLOSING = 3,
    GN_CHANNEL_CLOSED = 4
} gn_channel_state;

typedef enum gn_direction { GN_DIR_OUTBOUND = 0, GN_DIR_INBOUND = 1 } gn_direction;

/** A snapshot of a channel. */
typedef struct gn_channel_info {
    uint64_t id;
    gn_channel_state state;
    gn_direction direction;
    gn_peer_id remote_peer;
    char local_addr[GN_NODE_ADDR_MAX];
    char remote_addr[GN_NODE_ADDR_MAX];
    char security[GN_PROTOCOL_ID_MAX];
    char muxer[GN_PROTOCOL_ID_MAX];
    /** Runs over a limited (relayed) connection: gn_channel_limited(). Since: 0.4 */
    bool limited;
} gn_channel_info;

/**
 * Counters, like Ergo's inspect of a TCP connection. Bytes are counted on
 * the secured stream (mux framing included, security framing not). From
 * another thread the values are the last snapshot the loop took (at every
 * message and ping, at least once a second, and on the loop thread's own
 * calls). A closed channel keeps its last snapshot, readable even after the
 * node was freed while the channel is held.
 */
typedef struct gn_channel_metrics {
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t messages_in;
    uint64_t messages_out;
    uint32_t streams_open;
    gn_time last_rtt; /* 0 until a ping completed */
    gn_time uptime;
} gn_channel_metrics;

/** Keeps @ch alive (any thread); gn_channel_rele() drops the reference. */
GN_API gn_channel *gn_channel_hold(gn_channel *ch);
GN_API void gn_channel_rele(gn_channel *ch);

/** Fills @info and returns the state. Any thread (a consistent snapshot). */
GN_API gn_channel_state gn_channel_state_get(gn_channel *ch, gn_channel_info *info);

/**
 * Fills @m. Any thread: on the loop thread with current values, on another
 * thread with the last snapshot (up to about a second old, see
 * gn_channel_metrics; gn_channel_metrics_refresh() for current values).
 */
GN_API void gn_channel_metrics_get(gn_channel *ch, gn_channel_metrics *m);

/**
 * Fills @m with current values, from any thread. On the loop thread, or
 * for a closed channel (whose last snapshot is final), this is
 * gn_channel_metrics_get() and returns 0 at once. On another thread it
 * asks the loop to take a snapshot and blocks until it did, at most
 * @timeout (ns; GN_TIME_INFINITY: no bound; 0: do not wait).
 *
 * Blocking rather than a callback: a thread other than the loop's wants
 * the values where it stands, and a callback would run on the loop thread
 * and need its own hand-off; on the loop thread it never waits, so it
 * cannot deadlock there. The bound matters on an application's loop that
 * is not running (or is blocked by the caller): then the call times out.
 *
 * @ch held by the caller (not NULL); @m (not NULL) receives the values,
 * on an error the last snapshot. Not after gn_node_free() unless the
 * channel is closed.
 * Errors: GN_EINVAL (NULL argument), GN_ETIMEDOUT (the loop did not
 * answer within @timeout; its snapshot still happens later), GN_EAGAIN
 * (the loop's command queue is full), GN_ECLOSED (the loop is stopping),
 * GN_ENOMEM.
 * Since: 0.2
 */
GN_API int gn_channel_metrics_refresh(gn_channel *ch, gn_channel_metrics *m, gn_time timeout);

/**
 * Sends one message on /golem/msg/1.0.0 (copied). Any thread. Errors:
 * GN_ETOOBIG, GN_ECLOSED, GN_ESTATE (not open yet), GN_EAGAIN (the
 * channel's message queue, 1024 messages, is full: backpressure; a
 * GN_NODE_EV_WRITABLE event follows when it is half empty), GN_ENOMEM.
 * Later failures: GN_NODE_EV_SEND_FAILED with request_id 0.
 */
GN_API int gn_channel_send(gn_channel *ch, const uint8_t *msg, size_t len);

/** Stream-open completion (loop thread): @s owned by the callee, or an error. */
typedef void (*gn_channel_stream_cb)(void *arg, int status, gn_stream *s);

/**
 * Opens a stream and negotiates @protocol_id on it (multistream-select).
 * Loop thread. Returns 0 (then @cb runs exactly once, never from inside
 * this call), GN_EINVAL (bad id, NULL @cb, not on the loop thread) or
 * GN_ENOMEM. Errors via @cb: GN_ENEGOTIATION, GN_ESTREAMLIMIT, GN_ECLOSED
 * (channel closing), GN_ECANCELED (node closing), GN_ESTATE (not open yet),
 * GN_ERESOURCE (the node's resource manager refused the stream, or its
 * move to @protocol_id's scope: gn_rcmgr_last_refusal(gn_node_rcmgr())
 * names the scope), GN_ESTREAMRESET (the peer refused it, for instance
 * its own resource manager).
 */
GN_API int gn_channel_open_stream(gn_channel *ch, const char *protocol_id,
                                  gn_channel_stream_cb cb, void *arg);

/**
 * Measures a round trip with /ipfs/ping/1.0.0; the result (also stored as
 * last_rtt) goes to @cb, or with @cb NULL to a GN_NODE_EV_PING event.
 * Loop thread. Returns 0, GN_EINVAL (not on the loop thread), GN_ENOMEM;
 * errors via @cb as gn_channel_open_stream(), plus GN_ETIMEDOUT (20 s),
 * GN_EPROTO (wrong echo).
 */
typedef void (*gn_channel_ping_cb)(void *arg, int status, gn_time rtt);
GN_API int gn_channel_ping(gn_channel *ch, gn_channel_ping_cb cb, void *arg);

/**
 * Perf client (loop thread): opens /perf/1.0.0, uploads @upload_bytes, then
 * downloads @download_bytes (libp2p perf spec); @cb gets the two durations
 * in seconds, or an error (GN_ENEGOTIATION: the peer does not serve perf).
 * Immediate errors: GN_EINVAL (not on the loop thread), GN_ENOMEM.
 * Since: 0.1
 */
typedef void (*gn_channel_perf_cb)(void *arg, int status, double upload_s, double download_s);
GN_API int gn_channel_perf(gn_channel *ch, uint64_t upload_bytes, uint64_t download_bytes,
                           gn_channel_perf_cb cb, void *arg);

/** Closes the channel (all its streams). Any thread. Idempotent. */
GN_API void gn_channel_close(gn_channel *ch);

/** The host interface of the channel's node (golemnet/host.h). Any thread. Since: 0.2 */
GN_API gn_host *gn_channel_host(gn_channel *ch);

/**
 * For protocol components reporting an outcome on @ch: a failure @status
 * seen while the channel is closing becomes the channel's close status,
 * GN_ECANCELED (the node is closing) or GN_ECLOSED; any other @status is
 * returned as it is. Loop thread. Since: 0.2
 */
GN_API int gn_channel_map_status(gn_channel *ch, int status);

/**
 * Records a measured round trip on @ch (ns): the channel's last_rtt, its
 * last activity, and the peer store's latency average. Loop thread (ping
 * components). Since: 0.2
 */
GN_API void gn_channel_record_rtt(gn_channel *ch, gn_time rtt);

/**
 * The channel with @channel_id (from an event), borrowed, or NULL once it
 * is gone. Loop thread (NULL on another thread: use gn_node_channel_get()).
 * Since: 0.1
 */
GN_API gn_channel *gn_node_channel_find(gn_node *n, uint64_t channel_id);

/**
 * The channel with @channel_id (from an event or gn_channel_state_get()),
 * with a reference the caller owns (release it with gn_channel_rele()), or
 * NULL when @n is NULL or no channel of @n has that id, or it is closed
 * (from before its GN_NODE_EV_CHANNEL_CLOSED event is queued; a closing
 * channel is still returned, gn_channel_state_get() saying CLOSING). Any
 * thread; not after
 * gn_node_free(). The reference keeps the channel readable (state,
 * metrics) after it closed, even after the node was freed.
 * Since: 0.2
 */
GN_API gn_channel *gn_node_channel_get(gn_node *n, uint64_t channel_id);

/**
 * The ids of the node's channels that are not closed (dialing, upgrading,
 * open or closing), in the order they were created. Up to @max ids are
 * written to @ids (may be NULL when @max is 0); the return value is the
 * number of such channels, which may exceed @max (call again with a larger
 * array). Ids are a snapshot: a channel may close right after; look each
 * one up with gn_node_channel_get() (any thread) or gn_node_channel_find()
 * (loop thread). Any thread; not after gn_node_free().
 * Errors: GN_EINVAL (NULL @n, or NULL @ids with @max > 0).
 * Since: 0.4
 */
GN_API int gn_node_channel_ids(gn_node *n, uint64_t *ids, size_t max);

/**
 * Messages accepted on channels (gn_node_unicast(), gn_node_broadcast(),
 * gn_channel_send(), gn_multicast_*) and not yet handed to the channel's
 * writer or failed, summed over the node's channels. Messages waiting for a
 * dial (a unicast to a peer with no open channel yet) are not counted until
 * the channel opens. For a graceful shutdown: stop submitting, wait (with
 * a bound) until this is 0, then gn_node_close(); what is still queued then
 * fails with GN_NODE_EV_SEND_FAILED. Any thread; 0 for a NULL @n.
 * Since: 0.4
 */
GN_API uint64_t gn_node_pending_messages(gn_node *n);

/* ---- the peer store ---- */

/** What the node knows of a peer (identify results, addresses seen). */
typedef struct gn_peer_info {
    gn_peer_id peer;
    bool identified;                          /* an identify reply was recorded */
    char agent_version[GN_NODE_ADDR_MAX];     /* "" unknown */
    char observed_addr[GN_NODE_ADDR_MAX];     /* how the peer sees us; "" unknown */
    size_t n_addrs;                           /* gn_node_peer_addr() indexes */
    size_t n_protocols;                       /* gn_node_peer_protocol() indexes */
} gn_peer_info;

/**
 * Fills @info for @peer. Loop thread. Errors: GN_ENOTFOUND (unknown peer),
 * GN_EINVAL.
 * Since: 0.1
 */
GN_API int gn_node_peer_info(gn_node *n, const gn_peer_id *peer, gn_peer_info *info);

/**
 * Copies the @idx-th known address / protocol id of @peer, NUL-terminated,
 * into @out (@out_len bytes). Returns the length. Loop thread. Errors:
 * GN_ENOTFOUND, GN_ERANGE (@idx past the end), GN_ENOSPC.
 * Since: 0.1
 */
GN_API int gn_node_peer_addr(gn_node *n, const gn_peer_id *peer, size_t idx, char *out,
                             size_t out_len);
GN_API int gn_node_peer_protocol(gn_node *n, const gn_peer_id *peer, size_t idx, char *out,
                                 size_t out_len);

/* ---- multicast channels ---- */

/**
 * A named group of peers: broadcast goes to its members only. Any thread.
 * Errors: GN_ENOMEM, GN_EINVAL.
 */
GN_API int gn_multicast_new(gn_node *n, const char *name, gn_multicast **out);
GN_API int gn_multicast_join(gn_multicast *mc, const gn_peer_id *peer);
GN_API int gn_multicast_leave(gn_multicast *mc, const gn_peer_id *peer);
/**
 * Sends to one member (GN_ENOTFOUND if @peer is not a member); GN_EAGAIN
 * when its open channel's queue is full, as gn_node_unicast().
 */
GN_API int gn_multicast_unicast(gn_multicast *mc, const gn_peer_id *peer, const uint8_t *msg,
                                size_t len);
GN_API int gn_multicast_broadcast(gn_multicast *mc, const uint8_t *msg, size_t len);
GN_API void gn_multicast_free(gn_multicast *mc);

/* ---- multicast channels on an overlay (pubsub; Since: 0.5) ---- */

/** The group address form: this prefix, then the topic (docs/addresses.md "Group addresses"). */
#define GN_GROUP_ADDR_PREFIX "/pubsub/"

/**
 * Opens a multicast channel on the overlay group @group_addr:
 * "/pubsub/<topic>", the topic being every byte after the prefix (it may
 * hold '/'; 1 to GN_GROUP_TOPIC_MAX - 1 bytes, no NUL; percent-escapes
 * are not decoded; and the whole address, the addr of the channel's
 * events, must fit GN_NODE_ADDR_MAX: topics of at most 247 bytes). At
 * most 256 topics per node (the pubsub component's bound: the 257th
 * handle opens, but its join is refused and its broadcasts fail with
 * GN_ELIMIT). The node's group service (the pubsub component,
 * golemnet/host.h) subscribes to the topic on the loop thread; then
 *  - gn_multicast_broadcast() publishes to the topic (signed per the
 *    service's policy), reaching every subscriber of the overlay, also
 *    those this node has no channel to;
 *  - gn_multicast_unicast() sends to one member (a peer known subscribed
 *    to the topic) on /golem/msg/1.0.0, as gn_node_unicast();
 *  - gn_multicast_join()/gn_multicast_leave() fail with GN_ENOTSUP
 *    (membership is the overlay's);
 *  - messages of the topic arrive as GN_NODE_EV_MESSAGE events with addr
 *    the group address and peer the publisher;
 *  - gn_multicast_mesh_peers() and gn_multicast_metrics_get() report the
 *    group's state; members, mesh and the mesh peers are the service's
 *    last snapshot (refreshed every heartbeat, pubsub.heartbeat_ms, and
 *    on join), so up to one heartbeat old.
 * gn_multicast_broadcast() checks @len against the node's message bound
 * (gn_node_config.max_message_len, GN_ETOOBIG) synchronously; the service's own bound (the
 * RPC must fit pubsub.max_rpc_len, docs/pubsub.md 8.1) is checked on the
 * loop: a message over it comes back as GN_NODE_EV_SEND_FAILED with
 * status GN_ETOOBIG and addr the group address.
 * gn_multicast_free() leaves the topic. One handle per topic and node.
 * Free it before the node; a handle still open when the node is freed
 * only answers GN_ECLOSED (broadcast, unicast) until it is freed.
 * gn_node_free() must not run concurrently with any call on the node's
 * handles (groups, channels, streams) from another thread.
 * Any thread. Errors: GN_EINVAL (NULL; a topic over 247 bytes, logged),
 * GN_EPARSE (not a group address, empty or too long topic), GN_EEXIST (a handle on the topic is open),
 * GN_ECLOSED, GN_EAGAIN (command queue full), GN_ENOMEM. A node without a
 * group service accepts the call; broadcasts then fail with GN_ENOTSUP.
 * Spec: libp2p/specs pubsub/README.md (topics, publishing); docs/pubsub.md.
 * Since: 0.5
 */
GN_API int gn_node_dial_group(gn_node *n, const char *group_addr, gn_multicast **out);

/** Counters of a multicast channel on an overlay. */
typedef struct gn_multicast_metrics {
    uint64_t published; /* gn_multicast_broadcast() calls the service accepted */
    uint64_t delivered; /* messages of the topic handed to the application */
    uint64_t duplicate; /* messages of the topic received again (seen before) */
    uint64_t rejected;  /* messages refused: signature, policy or validation */
    uint64_t dropped;   /* accepted but not delivered: the event queue was full */
    uint64_t members;   /* peers known subscribed, last snapshot */
    uint64_t mesh;      /* mesh peers, last snapshot */
    /* Since 0.5, node-wide (the group service's, the same in every group; counted
     * from the handle's opening): */
    uint64_t out_dropped;   /* message copies not sent to a slow (congested) peer */
    uint64_t decode_errors; /* bad RPCs from peers (framing or bounds: stream reset) */
} gn_multicast_metrics;

/**
 * Fills @m (not NULL) with @mc's counters. Any thread. Errors: GN_EINVAL
 * (NULL), GN_ENOTSUP (@mc is a local group of gn_multicast_new()).
 * Since: 0.5
 */
GN_API int gn_multicast_metrics_get(gn_multicast *mc, gn_multicast_metrics *m);

/**
 * Copies up to @max of @mc's mesh peers (the service's last snapshot) into
 * @out (@max entries; NULL with @max 0 to count). Returns the number of
 * mesh peers (may exceed @max), or GN_EINVAL, GN_ENOTSUP (a local group).
 * Any thread. Since: 0.5
 */
GN_API int gn_multicast_mesh_peers(gn_multicast *mc, gn_peer_id *out, size_t max);

/**
 * An application validator of a group's messages (gossipsub-v1.1
 * "Extended Validators"): called on the node's loop thread, synchronously,
 * once for each new message of @topic (NUL-terminated) that passed the
 * signature policy, before it is delivered or forwarded; not for the
 * node's own publishes. @from is the publisher (signed messages; NULL for
 * an unsigned one), @data/@len the payload; all borrowed for the call.
 * Returns a gn_group_verdict (host.h): GN_GROUP_VERDICT_ACCEPT delivers
 * and forwards; GN_GROUP_VERDICT_REJECT drops it, counts it in the group's
 * `rejected` and penalises the peer that forwarded it (score P4);
 * GN_GROUP_VERDICT_IGNORE drops it without penalty (not forwarded, not
 * counted as rejected). Any other value is taken as IGNORE. It must not
 * block and must not wait on the node (it runs on its loop); calling
 * gn_multicast_metrics_get() or gn_multicast_mesh_peers() is allowed.
 */
typedef int (*gn_group_validate_fn)(void *user_data, const char *topic, const gn_peer_id *from,
                                    const uint8_t *data, size_t len);

/**
 * Sets @mc's validator (@fn NULL: accept every message, the default);
 * @user_data is passed to it, owned by the caller. Any thread; from the
 * next message the loop thread validates on. A call from another thread
 * may overlap one last run of the previous validator: keep @user_data
 * alive until gn_multicast_free() returned and the node's loop ran once,
 * or free it from the loop thread. Deferred (asynchronous) validation is
 * not offered through this interface yet. Errors: GN_EINVAL (@mc NULL),
 * GN_ENOTSUP (a local group of gn_multicast_new()), GN_ECLOSED (the node
 * was freed). Since: 0.5
 */
GN_API int gn_multicast_set_validator(gn_multicast *mc, gn_group_validate_fn fn, void *user_data);

GN_END_DECLS

#endif /* GOLEMNET_NODE_H */
