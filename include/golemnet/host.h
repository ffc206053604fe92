/*
 * golemnet - the host interface: what a node offers the components it runs.
 *
 * Protocol, router, discovery and NAT components are given a gn_host
 * instead of a node: through it they open streams to peers by peer ID,
 * register protocol handlers, read and write the peer store, subscribe to
 * connection and identify events, read the local identity and addresses,
 * ask the routers, and reach the loop for timers. libp2p's Host is the
 * model. A component never includes node internals, and the node never
 * names a component: they meet here and in the ops tables.
 *
 * Thread context: every function runs on the host's loop thread (the
 * thread that runs the component's ops) unless it says otherwise.
 * Callbacks run on the loop thread and never from inside the call that
 * registered or started them.
 *
 * Operation handles: functions that complete asynchronously follow the
 * library's one cancel pattern (gn_op, golemnet/loop.h): a trailing
 * `gn_op **op` (NULL: not cancellable by the caller); gn_op_cancel() makes
 * the callback run with GN_ECANCELED on a later loop turn; the callback
 * always runs exactly once, and the handle is invalid once it has begun.
 * Cancelling a connect closes its connection attempt when no one else
 * waits for it. The node's close ends every operation still pending, with
 * GN_ECANCELED.
 *
 * Spec: libp2p/specs connections/README.md (the host's role),
 * docs/architecture.md "The host interface".
 * Since: 0.2
 */
#ifndef GOLEMNET_HOST_H
#define GOLEMNET_HOST_H

#include "golemnet/buf.h"
#include "golemnet/identity.h"
#include "golemnet/loop.h"
#include "golemnet/multiaddr.h"
#include "golemnet/rcmgr.h"
#include "golemnet/stream.h"

GN_BEGIN_DECLS

typedef struct gn_host gn_host;
typedef struct gn_host_sub gn_host_sub;
/* A channel: one open logical connection to a peer (golemnet/node.h). */
typedef struct gn_channel gn_channel;
/* An application event of the node (golemnet/node.h). */
struct gn_node_event;

/* ---- identity, loop, addresses ---- */

/** The loop the host runs on: for gn_timer_init() and gn_loop_defer(). Any thread. */
GN_API gn_loop *gn_host_loop(gn_host *h);

/** The host's identity (borrowed, lives as long as the host). Any thread. */
GN_API const gn_identity *gn_host_identity(gn_host *h);

/** The host's peer ID. Any thread. */
GN_API void gn_host_peer_id(gn_host *h, gn_peer_id *out);

/**
 * Fills @out with up to @max of the addresses the host listens on (bound,
 * port 0 resolved, without /p2p/), borrowed until the next listener change
 * on the loop. Returns the count.
 */
GN_API size_t gn_host_listen_addrs(gn_host *h, const gn_multiaddr **out, size_t max);

/**
 * Records @addr as an address through which peers reach us (an identify
 * observed address, a NAT mapping). @addr is copied. At most
 * GN_HOST_MAX_OBSERVED are kept; the oldest is dropped. Relay addresses
 * are announced with gn_host_announce_addr() instead.
 * Errors: GN_EINVAL (NULL, or a relayed /p2p-circuit address), GN_ENOMEM.
 */
GN_API int gn_host_add_observed_addr(gn_host *h, const gn_multiaddr *addr);
/** Most observed addresses a host keeps. */
#define GN_HOST_MAX_OBSERVED 8u
/** Fills @out with up to @max observed addresses (borrowed as above). Returns the count. */
GN_API size_t gn_host_observed_addrs(gn_host *h, const gn_multiaddr **out, size_t max);

/* ---- protocol handlers ---- */

/**
 * A negotiated inbound stream for a registered protocol id. The callee owns
 * @s (it must gn_stream_close() or reset it); @ch is borrowed for the call
 * (gn_channel_hold() keeps it); @protocol_id is valid during the call.
 */
typedef void (*gn_host_stream_cb)(void *arg, gn_channel *ch, gn_stream *s,
                                  const char *protocol_id);

/**
 * Answers inbound streams for @protocol_id (NUL-terminated, shorter than
 * GN_PROTOCOL_ID_MAX) with @cb. The id is announced by identify.
 * Errors: GN_EINVAL (bad id or NULL @cb), GN_EEXIST (already handled),
 * GN_ELIMIT (the node's handler table is full, 64 entries).
 */
GN_API int gn_host_set_handler(gn_host *h, const char *protocol_id, gn_host_stream_cb cb,
                               void *arg);

/** Stops answering @protocol_id. Errors: GN_ENOTFOUND (not handled). */
GN_API int gn_host_remove_handler(gn_host *h, const char *protocol_id);

/** Fills @ids with up to @max protocol ids the host answers (borrowed). Returns the count. */
GN_API size_t gn_host_protocols(gn_host *h, const char **ids, size_t max);

/* ---- connections and streams ---- */

/**
 * Dial or connect completion: @status 0 with @ch borrowed for the call, or
 * the dial's error: GN_ENOROUTE (no address known and no router found one),
 * GN_ENOTRANSPORT (no transport handles the address), GN_EINVAL (our own
 * peer ID), GN_ECONNREFUSED, GN_EUNREACHABLE, GN_ETIMEDOUT, GN_EPEERID,
 * GN_ENEGOTIATION, GN_ELIMIT, a handshake error, a router's own error
 * (GN_ETIMEDOUT, ...), or GN_ECANCELED (cancelled, or the node is
 * closing); @ch NULL.
 */
typedef void (*gn_host_connect_cb)(void *arg, int status, gn_channel *ch);

/**
 * Connects to @addr (a multiaddr with or without /p2p/<id>, or a bare
 * /p2p/<id>: then the peer store and the routers supply the addresses),
 * reusing an open channel to the same peer. @addr is copied.
 * *@op (may be NULL) receives a handle for gn_op_cancel(); NULL on an
 * immediate error. Errors (then @cb never runs): GN_EINVAL (NULL, or a
 * malformed /p2p/ part), GN_ENOMEM, GN_ECLOSED (the node is closing).
 */
GN_API int gn_host_connect(gn_host *h, const gn_multiaddr *addr, gn_host_connect_cb cb,
                           void *arg, gn_op **op);

/**
 * Stream open completion: @status 0 with @s owned by the callee (the
 * protocol is negotiated) and @ch borrowed, or an error: a connect error as
 * above, GN_ENEGOTIATION (the peer does not speak @protocol_id),
 * GN_ECANCELED.
 */
typedef void (*gn_host_stream_open_cb)(void *arg, int status, gn_channel *ch, gn_stream *s);

/**
 * Opens a stream for @protocol_id to @peer: an open channel is used when
 * there is one; otherwise the peer's addresses in the peer store, then the
 * routers' answer, are dialled. *@op (may be NULL) receives a handle for
 * gn_op_cancel(). Errors (then @cb never runs): GN_EINVAL (bad id or peer,
 * or our own peer ID), GN_ENOMEM, GN_ECLOSED.
 */
GN_API int gn_host_new_stream(gn_host *h, const gn_peer_id *peer, const char *protocol_id,
                              gn_host_stream_open_cb cb, void *arg, gn_op **op);

/* ---- limited connections and connection options (Since: 0.4) ---- */

/*
 * A limited channel runs over a connection that a third party carries
 * under limits: a circuit relay v2 connection (libp2p/specs
 * relay/circuit-v2.md "Reservation", the Limit message) lasts at most a
 * duration and carries at most a number of bytes each way. Only protocols
 * that accept limited connections run on it: a component opts in per
 * handler (GN_HOST_HANDLER_LIMITED_OK) and per outbound stream
 * (GN_HOST_STREAM_LIMITED_OK). Application streams and handlers always
 * accept them (the application dialled the relay address, or reads
 * gn_channel_limited()). Identify, ping, DCUtR, the circuit stop protocol
 * and the message service opt in; the DHT does not.
 */

/** The limits of a limited connection; 0 in a field: no limit of that kind. */
typedef struct gn_conn_limit {
    gn_time duration; /* ns from the connection's start */
    uint64_t data;    /* bytes each way */
} gn_conn_limit;

/**
 * True when @ch runs over a limited connection; *@out (may be NULL)
 * receives its limits. False for NULL. Loop thread. Since: 0.4
 */
GN_API bool gn_channel_limited(gn_channel *ch, gn_conn_limit *out);

/** gn_host_set_handler_ex(): the handler also runs on limited channels. */
#define GN_HOST_HANDLER_LIMITED_OK 0x1u

/**
 * gn_host_set_handler() with @flags (GN_HOST_HANDLER_*; 0: the handler
 * is not offered on limited channels, where multistream-select answers
 * "na"). Errors as gn_host_set_handler(), and GN_EINVAL for an unknown
 * flag. Since: 0.4
 */
GN_API int gn_host_set_handler_ex(gn_host *h, const char *protocol_id, uint32_t flags,
                                  gn_host_stream_cb cb, void *arg);

/** gn_host_new_stream_ex(): a limited channel may carry the stream. */
#define GN_HOST_STREAM_LIMITED_OK 0x1u

/**
 * gn_host_new_stream() with @flags (GN_HOST_STREAM_*). Without
 * GN_HOST_STREAM_LIMITED_OK a limited channel is never used: when the only
 * open channel to @peer is limited, the peer's other addresses are dialled
 * (never relayed ones), and the open fails with GN_ENOROUTE when there is
 * none. Errors as gn_host_new_stream(), and GN_EINVAL for an unknown flag.
 * Since: 0.4
 */
GN_API int gn_host_new_stream_ex(gn_host *h, const gn_peer_id *peer, const char *protocol_id,
                                 uint32_t flags, gn_host_stream_open_cb cb, void *arg,
                                 gn_op **op);

/**
 * gn_host_connect_ex() flags.
 * NO_REUSE: open a new connection even when a channel to the peer is open
 *   (AutoNAT's dial-back, DCUtR's direct connection); the new channel is
 *   never joined with another attempt.
 * DIRECT: the connection must not be relayed: an address with
 *   /p2p-circuit fails with GN_EINVAL, and a bare /p2p/<id> dials only the
 *   peer's direct addresses (never the routers).
 * RESPONDER: run the security and muxer negotiation as the responder
 *   although we dialled (a synchronised TCP simultaneous open, where the
 *   peer runs as initiator: libp2p/specs relay/DCUtR.md). Needs NO_REUSE
 *   and an address with the peer's /p2p/<id>.
 */
#define GN_HOST_CONNECT_NO_REUSE 0x1u
#define GN_HOST_CONNECT_DIRECT 0x2u
#define GN_HOST_CONNECT_RESPONDER 0x4u

/**
 * gn_host_connect() with @flags (GN_HOST_CONNECT_*). Errors as
 * gn_host_connect(), and GN_EINVAL for an unknown flag, RESPONDER without
 * NO_REUSE or without a peer ID, or DIRECT with a relayed address.
 * Since: 0.4
 */
GN_API int gn_host_connect_ex(gn_host *h, const gn_multiaddr *addr, uint32_t flags,
                              gn_host_connect_cb cb, void *arg, gn_op **op);

/**
 * Adds or removes @addr (copied; without /p2p/<self>) from the addresses
 * the host announces besides its listeners and observed addresses: a
 * circuit relay reservation's address (/.../p2p/<relay>/p2p-circuit). The
 * change is published as GN_HOST_EV_LISTEN_ADDRS. At most
 * GN_HOST_MAX_ANNOUNCED. Errors: GN_EINVAL, GN_EEXIST (adding one
 * present), GN_ENOTFOUND (removing one absent), GN_ELIMIT, GN_ENOMEM.
 * Since: 0.4
 */
GN_API int gn_host_announce_addr(gn_host *h, const gn_multiaddr *addr, bool add);
/** Most extra announced addresses a host keeps. */
#define GN_HOST_MAX_ANNOUNCED 8u
/** Fills @out with up to @max announced addresses (borrowed until the next change). Returns the count. */
GN_API size_t gn_host_announced_addrs(gn_host *h, const gn_multiaddr **out, size_t max);

/**
 * Keeps (or, @protect false, stops keeping) the connection manager from
 * trimming channels to @peer (gn_node_protect_peer() on the loop thread):
 * a relay a circuit listener holds a reservation at. Not reference
 * counted: the last call wins. Errors: GN_EINVAL (NULL or empty @peer);
 * a full protection list (256 peers) is logged and the call ignored.
 * Since: 0.4
 */
GN_API int gn_host_protect_peer(gn_host *h, const gn_peer_id *peer, bool protect);

/**
 * Opens a listener on @addr (copied) as gn_node_listen() does: the result
 * is a GN_NODE_EV_LISTENING or GN_NODE_EV_LISTEN_FAILED event for the
 * application (request_id 0) and, on success, GN_HOST_EV_LISTEN_ADDRS. How
 * a component listens through a relay it chose (/.../p2p/<relay>/p2p-circuit).
 * Errors: GN_EINVAL (NULL), GN_ECLOSED (closing). Since: 0.4
 */
GN_API int gn_host_listen(gn_host *h, const gn_multiaddr *addr);
/**
 * Closes the listener opened on @addr (the address as given to listen).
 * Errors: GN_EINVAL, GN_ENOTFOUND (no such listener). Since: 0.4
 */
GN_API int gn_host_unlisten(gn_host *h, const gn_multiaddr *addr);

/* ---- reachability (AutoNAT) ---- */

/** Whether peers can dial this host directly. Since: 0.4 */
typedef enum gn_reachability {
    GN_REACH_UNKNOWN = 0, /* not yet known */
    GN_REACH_PUBLIC = 1,  /* dial-backs succeed: peers can dial us */
    GN_REACH_PRIVATE = 2  /* dial-backs fail: we are behind a NAT or firewall */
} gn_reachability;

/**
 * Records the host's reachability (an AutoNAT component's verdict) with
 * the address that proved it (may be NULL). A change is published as
 * GN_HOST_EV_REACHABILITY (status: the new gn_reachability) and queued for
 * the application as GN_NODE_EV_REACHABILITY. Errors: GN_EINVAL. Since: 0.4
 */
GN_API int gn_host_set_reachability(gn_host *h, gn_reachability r, const gn_multiaddr *addr);
/** The host's reachability (GN_REACH_UNKNOWN until a component reported). Any thread. Since: 0.4 */
GN_API gn_reachability gn_host_reachability(gn_host *h);

/* ---- routing ---- */

/**
 * find_peer result: @status 0 with @naddrs addresses (borrowed for the
 * call), or GN_ENOROUTE (no router knows the peer), a router's own error
 * (GN_ETIMEDOUT, ...) when none answered and one failed, GN_ECANCELED.
 */
typedef void (*gn_host_peer_cb)(void *arg, int status, const gn_peer_id *peer,
                                gn_multiaddr *const *addrs, size_t naddrs);

/**
 * Asks the node's routers, in configured order, for @peer's addresses; the
 * first answer with addresses wins and is also added to the peer store
 * (source GN_ADDR_SRC_ROUTER). A router may answer from inside its
 * find_peer; the host still calls @cb on a later turn. *@op (may be NULL)
 * receives a handle for gn_op_cancel(). Errors (then @cb never runs):
 * GN_EINVAL, GN_ENOMEM, GN_ECLOSED.
 */
GN_API int gn_host_find_peer(gn_host *h, const gn_peer_id *peer, gn_host_peer_cb cb, void *arg,
                             gn_op **op);

/* ---- peer store ---- */

/** Where an address of a peer came from. */
typedef enum gn_addr_source {
    GN_ADDR_SRC_MANUAL = 0,    /* the application or configuration */
    GN_ADDR_SRC_DIAL = 1,      /* a successful outbound connection */
    GN_ADDR_SRC_IDENTIFY = 2,  /* the peer's identify listen addresses */
    GN_ADDR_SRC_DISCOVERY = 3, /* a discovery component */
    GN_ADDR_SRC_ROUTER = 4     /* a router's answer */
} gn_addr_source;

/** An address TTL that never expires. */
#define GN_ADDR_TTL_PERMANENT GN_TIME_INFINITY

/**
 * Adds @naddrs addresses of @peer (a trailing /p2p/ part must name @peer
 * and is not stored; a /p2p/ part inside, as in a relay address
 * /p2p/<relay>/p2p-circuit, is kept),
 * valid for @ttl (ns, > 0; GN_ADDR_TTL_PERMANENT) from now; an address
 * already known gets the longer of the two TTLs and the new source. The
 * store is bounded (4096 peers, 16 addresses each: the oldest goes).
 * Errors: GN_EINVAL (NULL, @ttl 0, or a /p2p/ part naming another peer),
 * GN_ETOOBIG (an address longer than the store keeps), GN_ENOMEM.
 */
GN_API int gn_host_peer_add_addrs(gn_host *h, const gn_peer_id *peer,
                                  const gn_multiaddr *const *addrs, size_t naddrs, gn_time ttl,
                                  gn_addr_source src);

/**
 * Copies up to @max unexpired addresses of @peer into @out, newest first;
 * each is a new multiaddr the caller frees with gn_multiaddr_free().
 * @src (may be NULL, else @max entries) receives each one's source.
 * Returns the count (0 for an unknown peer); an address that cannot be
 * copied (no memory) is left out.
 */
GN_API int gn_host_peer_addrs(gn_host *h, const gn_peer_id *peer, gn_multiaddr **out,
                              gn_addr_source *src, size_t max);

/**
 * True when a dial to @peer would not need the routers: a channel to it is
 * open, or the peer store has an unexpired address of it that one of the
 * node's transports handles. Routers check it before opening streams of
 * their own, so that a peer they cannot reach does not send the host back
 * to them. Since: 0.3
 */
GN_API bool gn_host_peer_dialable(gn_host *h, const gn_peer_id *peer);

/** Replaces @peer's protocol list (@n ids, copied). Errors: GN_EINVAL, GN_ENOMEM. */
GN_API int gn_host_peer_set_protocols(gn_host *h, const gn_peer_id *peer,
                                      const char *const *protocols, size_t n);

/** True when @peer announced @protocol_id (identify). */
GN_API bool gn_host_peer_supports(gn_host *h, const gn_peer_id *peer, const char *protocol_id);

/** Records @peer's Ed25519 public key. Errors: GN_EINVAL, GN_ENOMEM. */
GN_API int gn_host_peer_set_pubkey(gn_host *h, const gn_peer_id *peer,
                                   const uint8_t pub[GN_ED25519_PUBLICKEYBYTES]);

/** Records @peer's agent version (NUL-terminated, truncated to 255 bytes). */
GN_API int gn_host_peer_set_agent(gn_host *h, const gn_peer_id *peer, const char *agent);

/** Records a round-trip time to @peer (ns); the store keeps a moving average. */
GN_API int gn_host_peer_record_latency(gn_host *h, const gn_peer_id *peer, gn_time rtt);

/** @peer's latency average (ns), or 0 when none was recorded. */
GN_API gn_time gn_host_peer_latency(gn_host *h, const gn_peer_id *peer);

/* ---- events ---- */

typedef enum gn_host_event_type {
    GN_HOST_EV_CONNECTED = 0x1,    /* a channel opened: ch, peer */
    GN_HOST_EV_DISCONNECTED = 0x2, /* a channel closed: ch, peer, status (why) */
    GN_HOST_EV_IDENTIFIED = 0x4,   /* identify finished: ch, peer; peer store updated */
    GN_HOST_EV_PEER_FOUND = 0x8,   /* discovery reported a peer: peer (ch NULL) */
    GN_HOST_EV_LISTEN_ADDRS = 0x10, /* listen, observed or announced addresses changed (ch, peer NULL) */
    /**
     * The protocols the host answers (gn_host_protocols()) changed once the
     * components run: a handler was added or removed (ch, peer NULL).
     * Since: 0.3
     */
    GN_HOST_EV_PROTOCOLS = 0x20,
    GN_HOST_EV_REACHABILITY = 0x40 /* reachability changed: status = gn_reachability (Since: 0.4) */
} gn_host_event_type;

/** One host event; every pointer is borrowed for the callback. */
typedef struct gn_host_event {
    gn_host_event_type type;
    gn_channel *ch;
    const gn_peer_id *peer;
    int status;
} gn_host_event;

/**
 * A host event (loop thread). The callback may call any host function; it
 * must not free @arg's subscription's owner before returning unless it
 * unsubscribes first.
 */
typedef void (*gn_host_event_cb)(void *arg, const gn_host_event *ev);

/**
 * Subscribes @cb to the events in @mask (gn_host_event_type bits).
 * *@out receives the subscription for gn_host_unsubscribe().
 * Errors: GN_EINVAL (NULL or empty mask), GN_ENOMEM.
 */
GN_API int gn_host_subscribe(gn_host *h, uint32_t mask, gn_host_event_cb cb, void *arg,
                             gn_host_sub **out);

/** Ends a subscription; @cb is not called after it returns. NULL is a no-op. */
GN_API void gn_host_unsubscribe(gn_host_sub *sub);

/**
 * Publishes @ev to subscribers (components report GN_HOST_EV_IDENTIFIED
 * and GN_HOST_EV_PEER_FOUND this way).
 */
GN_API void gn_host_publish(gn_host *h, const gn_host_event *ev);

/**
 * Queues @ev for the application (gn_node_next_event()): how application
 * protocols report their results (GN_NODE_EV_IDENTIFY, GN_NODE_EV_PING).
 * @ev is copied; ev->message must be NULL. When the event queue is full
 * the event waits in the node's bounded overflow list, in order; past
 * that, see gn_node_stats (golemnet/node.h) for what is kept, aggregated
 * or dropped.
 */
GN_API void gn_host_emit_event(gn_host *h, const struct gn_node_event *ev);

/** The agent version the node announces (identify), borrowed. Any thread. */
GN_API const char *gn_host_agent_version(gn_host *h);

/**
 * Records what identify learned of @peer: its agent version (NULL:
 * unchanged) and the address it sees us at (NULL: unknown), and marks it
 * identified. Errors: GN_EINVAL, GN_ENOMEM.
 */
GN_API int gn_host_peer_set_identified(gn_host *h, const gn_peer_id *peer, const char *agent,
                                       const gn_multiaddr *observed);

/* ---- the message service ---- */

/*
 * The node's message calls (gn_node_unicast, gn_node_broadcast,
 * gn_channel_send, gn_multicast_*) and GN_NODE_EV_MESSAGE are carried by a
 * message service: a protocol component that registers itself here when it
 * starts. The built-in one is "msg" (/golem/msg/1.0.0, docs/protocols/msg.md);
 * without a service those calls fail with GN_ENOTSUP. The node keeps the
 * admission bound (at most GN_HOST_MSG_QUEUE_MAX messages accepted and not
 * yet completed per channel: GN_EAGAIN to the caller beyond it), the
 * counters and the event queue; the service keeps the per-channel outbound
 * queues and the streams.
 */

/** Most messages a channel holds accepted and not yet completed. */
#define GN_HOST_MSG_QUEUE_MAX 1024u

/** What a message service implements (loop thread). */
typedef struct gn_host_msg_ops {
    /**
     * Required: send @msg (one message, at most gn_host_max_message_len()
     * bytes) to the peer of @ch, an open channel. The service takes its own
     * reference on 0 (the caller keeps its reference either way: fan-out
     * shares one buffer). Return 0: the service calls gn_host_msg_done()
     * for @req_id exactly once, later or from inside this call. A negative
     * gn_err: not accepted (the node reports it to the application);
     * gn_host_msg_done() is not called.
     */
    int (*send)(void *svc, gn_channel *ch, gn_rcbuf *msg, uint64_t req_id);
    /**
     * Required: the event queue has room again after gn_host_msg_deliver()
     * returned GN_EAGAIN. Called once per GN_EAGAIN episode, from the loop.
     */
    void (*resume)(void *svc);
} gn_host_msg_ops;

/**
 * Makes @ops/@svc the host's message service, announcing @protocol_id in
 * GN_NODE_EV_MESSAGE events (copied). @ops NULL removes the service
 * registered with @svc. A component registers in its start() and removes
 * itself in stop(). Errors: GN_EINVAL (NULL or bad id), GN_EEXIST (another
 * service is registered), GN_ENOTFOUND (removing one that is not).
 */
GN_API int gn_host_set_message_service(gn_host *h, const gn_host_msg_ops *ops, void *svc,
                                       const char *protocol_id);

/** The largest message payload the node accepts, bytes (gn_node_config.max_message_len). Any thread. */
GN_API size_t gn_host_max_message_len(gn_host *h);

/**
 * Hands a received message of @ch's peer to the application as a
 * GN_NODE_EV_MESSAGE event. Returns 0 (the host took the caller's reference
 * on @msg) or GN_EAGAIN: the event queue is full; the caller keeps @msg,
 * should stop reading (backpressure reaches the peer through the muxer's
 * flow control) and try again when ops->resume() runs.
 */
GN_API int gn_host_msg_deliver(gn_host *h, gn_channel *ch, gn_rcbuf *msg);

/**
 * Completes a message that ops->send() accepted: @status 0 when it was
 * handed to the stream (its write completed; counted in messages_out), or
 * a negative gn_err when
 * it was lost: the application gets GN_NODE_EV_SEND_FAILED with @req_id,
 * @status and the channel's peer. Failure reports are never dropped: when
 * the event queue is full they wait in the node's overflow list, and past
 * it they are aggregated (gn_node_event.count). Releasing the slot may
 * emit GN_NODE_EV_WRITABLE (a sender met the full queue).
 */
GN_API void gn_host_msg_done(gn_host *h, gn_channel *ch, uint64_t req_id, int status);

/**
 * Adds @delta (may be negative) to @ch's count of long-lived streams a
 * component keeps open without them being activity: the idle timeout
 * (GN_NODE_OPT_IDLE_TIMEOUT_MS) closes a channel whose only streams are
 * these. Message and pubsub streams are of this kind; their traffic marks
 * the channel active through gn_host_msg_deliver()/gn_host_msg_done() or
 * gn_channel_touch().
 */
GN_API void gn_channel_add_quiet_streams(gn_channel *ch, int delta);

/** Marks @ch active now (for the idle timeout). Loop thread. */
GN_API void gn_channel_touch(gn_channel *ch);

/** @ch's node-wide unique id (gn_channel_info.id). Any thread. */
GN_API uint64_t gn_channel_id(const gn_channel *ch);

/* ---- the group service (Since: 0.5) ---- */

/*
 * The node's multicast groups on an overlay (gn_node_dial_group(),
 * golemnet/node.h) are carried by a group service: a protocol component
 * that registers itself here when it starts. The built-in one is "meshsub"
 * (gossipsub v1.1 or floodsub, docs/pubsub.md section 8). The node keeps the group
 * handles the application holds, their counters, their member and mesh
 * snapshots and the event queue; the service keeps the overlay (peers,
 * streams, router). A group is named by its topic (NUL-terminated, 1 to
 * GN_GROUP_TOPIC_MAX - 1 bytes, no NUL inside).
 */

/** Longest group topic, bytes, including the NUL. */
#define GN_GROUP_TOPIC_MAX 256u

/** What a group service implements (loop thread, never re-entered from the node's calls back). */
typedef struct gn_host_group_ops {
    /**
     * Required: the application opened a group on @topic: subscribe to it
     * (announce it to peers, join its mesh). Called once per topic until
     * leave(). Returns 0 or a negative gn_err (GN_ELIMIT: too many topics),
     * which the node reports to the group (gn_multicast_broadcast() then
     * fails with it).
     */
    int (*join)(void *svc, const char *topic);
    /** Required: the last group handle on @topic was freed: unsubscribe. */
    void (*leave)(void *svc, const char *topic);
    /**
     * Required: publish @len bytes at @data (borrowed for the call) on
     * @topic. Returns 0 when the message was signed and handed to the
     * overlay (queued to at least zero peers: a topic without peers is not
     * an error), or a negative gn_err: GN_ETOOBIG (above the service's
     * message bound), GN_ENOMEM, GN_ECRYPTO (signing failed).
     */
    int (*publish)(void *svc, const char *topic, const uint8_t *data, size_t len);
} gn_host_group_ops;

/**
 * Makes @ops/@svc the host's group service; @protocol_id (copied) is
 * announced in the GN_NODE_EV_MESSAGE events of group messages. Groups the
 * application opened before are joined later, on the loop (join() is never
 * called from inside this call; once per group handle). @ops NULL
 * removes the service registered with @svc (in the component's stop()).
 * Loop thread (the component's start() and stop()).
 * Errors: GN_EINVAL (NULL @h, a missing entry in @ops, @protocol_id NULL,
 * empty or longer than the node keeps), GN_EEXIST (another service is
 * registered), GN_ENOTFOUND (removing one that is not).
 * Since: 0.5
 */
GN_API int gn_host_set_group_service(gn_host *h, const gn_host_group_ops *ops, void *svc,
                                     const char *protocol_id);

/**
 * Hands a message of @topic (validated by the service: signature, policy,
 * first delivery) to the application as a GN_NODE_EV_MESSAGE event whose
 * addr is the group address ("/pubsub/<topic>"), peer the publisher
 * (@from; NULL or empty for an unsigned message: then @ch's peer),
 * channel_id @ch's (the peer that forwarded it; NULL: 0). @len bytes at
 * @data are copied. Counted in the group's `delivered`.
 * Returns 0, GN_ENOTFOUND (no open group on @topic: not counted), or
 * GN_EAGAIN (the event queue is full: the message is dropped and counted
 * in the group's `dropped`; an overlay cannot hold its peers back),
 * GN_ENOMEM (counted as dropped), GN_EINVAL (NULL @h or @topic, or
 * @data NULL with @len > 0). Loop thread.
 * Since: 0.5
 */
GN_API int gn_host_group_deliver(gn_host *h, const char *topic, const gn_peer_id *from,
                                 gn_channel *ch, const uint8_t *data, size_t len);

/** What gn_host_group_count() adds to. */
typedef enum gn_group_counter {
    GN_GROUP_DUPLICATE = 1, /* a message of the topic seen before (seen cache) */
    GN_GROUP_REJECTED = 2,  /* a message refused: bad signature, policy, validator */
    GN_GROUP_OUT_DROPPED = 3,  /* node-wide (@topic ignored): copies not sent to slow peers */
    GN_GROUP_DECODE_ERRORS = 4 /* node-wide (@topic ignored): bad RPCs from peers */
} gn_group_counter;

/** An application's verdict on a group message (gn_multicast_set_validator(), node.h). */
typedef enum gn_group_verdict {
    GN_GROUP_VERDICT_ACCEPT = 0, /* deliver and forward */
    GN_GROUP_VERDICT_REJECT = 1, /* drop; penalise the forwarder; counted as rejected */
    GN_GROUP_VERDICT_IGNORE = 2  /* drop without penalty */
} gn_group_verdict;

/**
 * The application's verdict on a new message of @topic from publisher
 * @from (NULL or empty: unsigned), payload @data/@len (borrowed): calls the
 * validator of the open group on @topic (gn_multicast_set_validator()).
 * Loop thread; the service calls it after its own checks (signature,
 * policy, seen cache) and before delivering or forwarding, and counts a
 * REJECT itself (gn_host_group_count() is not needed for it when the
 * router's rejected counter is reported). Returns a gn_group_verdict:
 * ACCEPT when no group is open on @topic, it has no validator, or @h or
 * @topic is NULL; any value the validator returns outside the enum is
 * IGNORE. Since: 0.5
 */
GN_API gn_group_verdict gn_host_group_validate(gn_host *h, const char *topic,
                                               const gn_peer_id *from, const uint8_t *data,
                                               size_t len);

/**
 * Adds @delta to counter @which of the open group on @topic (none open:
 * ignored); a node-wide counter (GN_GROUP_OUT_DROPPED,
 * GN_GROUP_DECODE_ERRORS) is added to every open group and @topic may be
 * NULL. An unknown @which or NULL @h is ignored. Loop thread. Since: 0.5
 */
GN_API void gn_host_group_count(gn_host *h, const char *topic, gn_group_counter which,
                                uint64_t delta);

/**
 * Replaces the snapshot of @topic's members (@nmembers peers known to be
 * subscribed, what gn_multicast_unicast() accepts) and mesh peers
 * (@nmesh; for floodsub the same as the members). Copied; at most
 * GN_GROUP_PEERS_MAX of each are kept. No open group on @topic: ignored.
 * The service calls it when they change (at least every heartbeat).
 * NULL @h or @topic, or a NULL array with a nonzero count: ignored (no
 * error is returned). An allocation failure keeps the previous snapshot.
 * Loop thread. Since: 0.5
 */
GN_API void gn_host_group_set_peers(gn_host *h, const char *topic, const gn_peer_id *members,
                                    size_t nmembers, const gn_peer_id *mesh, size_t nmesh);
/** Most peers a group snapshot keeps. */
#define GN_GROUP_PEERS_MAX 1024u

/* ---- resource accounting ---- */

/*
 * Every allocation a peer causes is accounted before it is made
 * (golemnet/rcmgr.h, docs/limits.md). Components account what their
 * streams make them hold - receive buffers, queues - in stream spans they
 * open under the channel's connection span, so a peer's streams of every
 * protocol share the peer scope's limits:
 *
 *   gn_rcmgr *rm = gn_host_rcmgr(h);
 *   gn_rcmgr_stream *span;
 *   if (gn_rcmgr_open_stream(rm, gn_channel_rcmgr_conn(ch), &info->remote_peer,
 *                            GN_RCMGR_INBOUND, &span) < 0 ||
 *       gn_rcmgr_stream_set_protocol(span, id, strlen(id)) < 0) ... reset the stream
 *   gn_rcmgr_reserve_memory(gn_rcmgr_stream_span(span), len, GN_RCMGR_PRIO_...)
 *   before allocating; release after freeing; gn_rcmgr_stream_done() at the end.
 */

/**
 * The node's resource manager (gn_node_rcmgr()): the one that accounts
 * the node's connections, for components to open stream spans in and
 * reserve memory through. Borrowed: it lives as long as the host (the
 * node frees it, with any span still open in it, after freeing its
 * components); end your spans when the streams they account end. Not
 * NULL for a host of a node.
 * Thread context: loop thread only, like the manager itself (a manager is
 * not thread-safe: golemnet/rcmgr.h).
 * Since: 0.2
 */
GN_API gn_rcmgr *gn_host_rcmgr(gn_host *h);

/**
 * @ch's connection span in gn_host_rcmgr(): the parent to give
 * gn_rcmgr_open_stream() for a stream of @ch, so the stream's memory
 * counts in the connection's and its peer's scopes. Borrowed, and valid
 * only until @ch starts closing: the node ends the span then (a closing
 * channel no longer counts against the connection limits), so call this
 * each time a span is opened and never keep the result. Stream spans
 * opened under it stay valid after it is done (golemnet/rcmgr.h) and keep
 * their reservations until gn_rcmgr_stream_done().
 * Returns NULL when @ch is NULL, not open (still upgrading) or closing;
 * open a stream span with the channel's peer and no connection span then,
 * or refuse the stream.
 * Thread context: loop thread only.
 * Since: 0.2
 */
GN_API gn_rcmgr_conn *gn_channel_rcmgr_conn(gn_channel *ch);

/* ---- component options ---- */

/**
 * The @idx-th value of option @key for the component named @component
 * (from the node's `options`, entries "component.key=value"; @component is
 * the component's short name, e.g. "static", "bootstrap"). Borrowed for the
 * host's life. NULL when there is no such value.
 */
GN_API const char *gn_host_option(gn_host *h, const char *component, const char *key,
                                  size_t idx);

GN_END_DECLS

#endif /* GOLEMNET_HOST_H */
