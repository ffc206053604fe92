/*
 * The node's private structures and cross-file functions (never installed).
 *
 * Files:
 *   node.c      the node object, configuration, the any-thread command
 *               path, events (queue, overflow, backpressure), listeners,
 *               handlers, close;
 *   connmgr.c   the connection manager: dials (reuse, joining, limits,
 *               bare peer IDs), inbound admission, idle trimming; it
 *               creates channels and starts their upgrades;
 *   upgrade.c   the upgrade pipeline (transport -> multistream security ->
 *               handshake -> muxer -> session), which reports once through
 *               gni_upgrade_cbs and calls nothing else of the node;
 *   channel.c   the channel's life cycle (opened, closing, finished), its
 *               waiters, streams, protocol handover, metrics, and what
 *               protocol components use of a channel;
 *   host.c      the host interface, the hosted components (protocol,
 *               router, discovery, NAT instances) and the message
 *               service's slot (the messages themselves are a component's);
 *   peerstore.c what the node learned about peers.
 *
 * Calls go one way: node.c -> connmgr.c -> channel.c, upgrade.c; channel.c
 * -> upgrade.c (abort only); host.c -> connmgr.c, channel.c. channel.c and
 * host.c reach node.c only through the small interface under "node.c"
 * below (events, handlers, the close path); upgrade.c reaches its owner
 * only through gni_upgrade_cbs.
 *
 * Threading invariant: every field marked "loop" is touched only on the
 * node's loop thread. Fields marked "any" are atomics, immutable after
 * gn_node_new(), or guarded by the mutex named next to them.
 */
#ifndef GNI_NODE_INT_H
#define GNI_NODE_INT_H

#include "golemnet/host.h"
#include "golemnet/node.h"
#include "golemnet/resolve.h"
#include "golemnet/rcmgr.h"

#include "gni.h"
#include "peerstore.h"

#include <uv.h>
#include <stdatomic.h>

/* Node life cycle (atomic). */
enum { NODE_NEW = 0, NODE_RUNNING = 1, NODE_CLOSING = 2, NODE_CLOSED = 3 };

/* Channel phases (loop); the public state is derived from them. */
typedef enum ch_phase {
    PH_DIALING = 0,  /* transport dial in progress */
    PH_MS_SEC,       /* multistream-select of the security protocol */
    PH_HANDSHAKE,    /* the crypto component owns the raw stream */
    PH_MS_MUX,       /* multistream-select of the muxer */
    PH_OPEN,         /* mux session running */
    PH_CLOSING,      /* tearing down */
    PH_CLOSED        /* finished; removed from the node */
} ch_phase;

/** Most protocol handlers per node. */
#define GNI_NODE_MAX_HANDLERS 64u
/** Most lifecycle events kept while the event queue is full. */
#define GNI_NODE_OVERFLOW_MIN 256u
/** Most per-channel SEND_FAILED aggregates; beyond it they fold per status only. */
#define GNI_NODE_AGG_MAX 256u
/** A channel's queue is writable again below this many messages (GN_NODE_EV_WRITABLE). */
#define GNI_MQ_LOW_WATER (GN_HOST_MSG_QUEUE_MAX / 2u)

/** Most addresses one dial of a bare /p2p/<id> tries. */
#define GNI_DIAL_MAX_TRIES 8u

/* One waiter for a dial outcome (a gn_node_dial call, or an internal one). */
typedef struct dial_req dial_req;
typedef void (*dial_req_fn)(gn_node *n, dial_req *r, int status, gn_channel *ch);
struct dial_req {
    gni_list link;           /* in the channel's waiters, or the node's orphans */
    gn_channel *ch;          /* the channel it waits on, while in its waiters */
    bool routed;             /* the routers were asked for it already */
    uint32_t flags;          /* GN_HOST_CONNECT_* */
    /* A dial of a bare /p2p/<id> tries the peer's addresses one after the
     * other (direct ones first, relayed ones last): the ones tried, by
     * hash, and the last failure. */
    bool abandoned;          /* its only waiter cancelled: no further addresses */
    uint8_t ntried;
    uint64_t tried[GNI_DIAL_MAX_TRIES];
    int last_err;
    gn_node_dial_cb cb;      /* user callback (NULL: event) */
    gn_node_dial_result_cb result_cb; /* gn_node_dial_ex() callback (then cb is NULL) */
    void *arg;
    dial_req_fn internal;    /* internal waiter (unicast to an address) */
    void *internal_arg;
    uint64_t req_id;
    bool emit_event;
    char detail[200];        /* why it failed, in words (a DNS failure), or "" */
    int detail_status;       /* the failure @detail explains: reported only with it */
    gn_op *dns_op;           /* its resolution in flight (gn_op_cancel), or NULL */
};

typedef struct nstream nstream;
struct nstream;

/* What the upgrade pipeline reports to the channel's owner (loop thread). */
typedef struct gni_upgrade_cbs {
    /* The connection is up; the security negotiation begins. */
    void (*upgrading)(gn_channel *ch);
    /* The handshake proved the peer (ch->info.remote_peer): 0 admits it, a
     * gn_err refuses it (the upgrade fails with that error). */
    int (*secured)(gn_channel *ch, const gn_secure_result *res);
    /* Once: 0 with ch->session running (PH_OPEN), or why the upgrade
     * failed (GN_ETIMEDOUT for upgrade_timeout). Not after gni_upgrade_abort(). */
    void (*done)(gn_channel *ch, int status);
    /* A stream the pipeline held finished closing, or a step ended after
     * the report: the channel may be finished. */
    void (*released)(gn_channel *ch);
    /* The callbacks of the mux session the pipeline creates. */
    gn_mux_session_cbs session;
} gni_upgrade_cbs;

/* A pending outbound stream open (gn_channel_open_stream and internal users). */
typedef void (*open_done_fn)(struct gn_channel *ch, void *arg, int status, gn_stream *s);

struct gn_channel {
    _Atomic uint32_t refs;          /* any */
    gn_node *node;                  /* any (immutable) */
    uv_mutex_t mtx;            /* guards info and cache */
    gn_channel_info info;           /* mtx */
    gn_channel_metrics cache;       /* mtx: last snapshot for other threads */
    _Atomic uint32_t mq_count;      /* messages accepted, not yet completed (the message service's) */
    _Atomic bool want_writable;     /* a sender got GN_EAGAIN: GN_NODE_EV_WRITABLE at low water */
    _Atomic int pub_state;          /* gn_channel_state, for lock-free checks */

    /* ---- loop ---- */
    gni_list link;                  /* node->channels */
    ch_phase phase;
    bool outbound;
    bool initiator;                 /* security and muxer role: outbound unless RESPONDER */
    bool no_reuse;                  /* GN_HOST_CONNECT_NO_REUSE: never joined or reused by a dial */
    bool limited;                   /* a limited connection (GN_QUERY_CONN_LIMIT answered) */
    bool relayed;                   /* dialled through a relay (/p2p-circuit) */
    gn_conn_limit limit;
    bool was_open;                  /* CHANNEL_OPENED was emitted */
    bool peer_known;
    bool expect_peer;
    gn_peer_id expected;
    gn_peer_id received;            /* GN_EPEERID: the peer the remote proved (len 0: unknown) */
    char dial_addr[GN_NODE_ADDR_MAX]; /* dialed address without /p2p/ */
    gn_transport *transport;
    bool transport_pending;         /* transport dial outstanding */
    gn_op *op;                      /* the dial, negotiation or handshake running, to cancel */
    const gni_upgrade_cbs *up_cbs;  /* the upgrade's owner (upgrade.c) */
    gn_rcmgr_conn *rc;              /* the connection's resource span (connmgr.c) */
    gn_time created_at;
    bool up_reported;               /* the upgrade reported, or was aborted */
    _Atomic bool close_req;         /* any: gn_channel_close() asked (node->close_cmd runs it) */
    gn_stream *raw;                 /* transport stream (until handed to crypto) */
    gn_stream *sec;                 /* secured stream (until handed to the muxer) */
    gn_stream *busy;                /* the stream a negotiation/handshake runs on */
    const gn_mux_ops *mux_ops;
    gn_mux_session *session;
    bool session_closing;
    gn_timer upgrade_timer;
    gni_list waiters;               /* dial_req */
    int close_reason;
    gn_time opened_at;
    gn_time last_active;
    uint32_t pending;               /* node-owned streams and closes outstanding */
    bool finalizing;                /* the final step is scheduled */
    gni_list nstreams;              /* nstream */
    uint32_t quiet_streams;         /* gn_channel_add_quiet_streams() */
    uint64_t bytes_in_base, bytes_out_base;
    uint64_t messages_in, messages_out;
    gn_time last_rtt;
    uint8_t remote_pubkey[GN_ED25519_PUBLICKEYBYTES];
};

/*
 * A node-owned stream: a multistream-select negotiation (in or out) until
 * the stream is handed over. Counts in ch->pending while it exists.
 */
struct nstream {
    gni_list link;                  /* ch->nstreams */
    gn_channel *ch;
    gn_stream *s;                   /* while negotiating (or closing after it) */
    bool closing;
    bool inbound;
    /* negotiation */
    gn_op *op;                      /* the multistream-select running, to cancel */
    open_done_fn done;
    void *done_arg;
    char protocol[GN_PROTOCOL_ID_MAX];
};

typedef struct handler_ent {
    char id[GN_PROTOCOL_ID_MAX];
    gn_node_stream_cb cb;
    void *arg;
    bool component;                 /* registered through the host, not the application */
    bool limited_ok;                /* offered on limited channels (GN_HOST_HANDLER_LIMITED_OK) */
} handler_ent;

typedef struct ovf_ev {
    gni_list link;
    gn_node_event ev;
} ovf_ev;

/*
 * The peer map: open channels by peer (and dial address), for the
 * any-thread unicast's backpressure. Kept by the loop when a channel opens
 * and when it starts closing; each entry holds a channel reference.
 */
typedef struct pmap_ent {
    uint64_t hash;                  /* of peer */
    gn_peer_id peer;
    gn_channel *ch;
    char addr[GN_NODE_ADDR_MAX];    /* dial address of an outbound channel; "" inbound */
} pmap_ent;

typedef struct node_listener {
    gni_list link;
    gn_node *n;
    gn_listener *l;
    char addr[GN_NODE_ADDR_MAX];
    gn_multiaddr *bound;            /* without /p2p/ */
} node_listener;

struct gn_multicast {
    gn_node *n;
    uv_mutex_t mtx;
    char name[64];
    gn_peer_id *members;            /* mtx */
    size_t count, cap;              /* mtx */
    /* a group on the overlay (group.c, gn_node_dial_group); false: a local group */
    bool group;
    gni_list glink;                 /* n->groups, under n->group_mtx */
    char topic[GN_GROUP_TOPIC_MAX];
    int status;                     /* mtx: the service's join error, 0 */
    bool joined;                    /* mtx: the service's join() ran for this handle */
    gn_peer_id *mesh;               /* mtx */
    size_t nmesh;                   /* mtx */
    gn_multicast_metrics m;         /* mtx (members and mesh filled on read) */
    gn_group_validate_fn validate;  /* mtx: the application's validator, NULL */
    void *validate_ud;              /* mtx */
};

/* group.c: multicast channels on the node's group service */
int gni_group_broadcast(gn_multicast *mc, const uint8_t *msg, size_t len);
void gni_group_free(gn_multicast *mc);
void gni_group_init(gn_node *n);
void gni_group_fini(gn_node *n);
/* @mc's node, NULL once the node was freed (read under mc->mtx). */
gn_node *gni_multicast_node(gn_multicast *mc);

/* The host interface of a node (host.c): components see only this. */
struct gn_host {
    gn_node *node;
};

typedef struct gn_protocol gn_protocol;
typedef struct gn_router gn_router;
typedef struct gn_discovery gn_discovery;
typedef struct gn_nat gn_nat;

struct gn_node {
    /* ---- any (immutable after gn_node_new) ---- */
    gn_host host;                   /* host.node == this node */
    char *s_routers, *s_discovery, *s_nat, *s_protocols; /* "" = none */
    char **s_options;
    gn_node_config cfg;             /* strings point into the copies below */
    char *s_transports, *s_security, *s_muxers, *s_agent;
    char **s_listen;
    gn_identity *own_identity;
    const gn_identity *id;
    gn_registry *own_registry;
    const gn_registry *reg;
    gn_stack *stack;
    gn_loop *loop;
    bool own_loop;
    gn_peer_id self;
    char self_str[GN_PEER_ID_MAX_STRLEN];
    gn_evq *evq;
    _Atomic int state;
    _Atomic uint64_t next_req;
    _Atomic bool need_drain;        /* overflow or blocked readers pending */
    _Atomic bool drain_posted;
    _Atomic bool instances_ready;
    _Atomic int reach;              /* gn_reachability (gn_host_set_reachability) */
    /* Close requests never lost (gn_node_close, gn_channel_close): a flag
     * plus one reserved loop command, no allocation, no ring slot. */
    gni_loop_cmd close_cmd;         /* any: storage; the loop's mutex guards it */
    _Atomic bool close_req;         /* any: gn_node_close() asked */
    _Atomic bool ch_close_req;      /* any: some channel's close_req may be set */
    gn_node_close_cb req_close_cb;  /* written once by the gn_node_close() that won */
    void *req_close_arg;
    uv_mutex_t close_mtx;
    uv_cond_t close_cond;
    bool closed_done;               /* close_mtx */
    uv_mutex_t pmap_mtx;            /* guards pmap */
    pmap_ent *pmap;                 /* pmap_mtx */
    size_t pmap_n, pmap_cap;        /* pmap_mtx */
    /* gn_node_stats (any: atomics) */
    _Atomic uint64_t st_overflowed, st_aggregated, st_dropped, st_writable;

    /* ---- loop ---- */
    gn_transport **tr;
    size_t ntr;
    gn_crypto **sec;
    const char **sec_ids;
    size_t nsec;
    gn_mux **mux;
    const char **mux_ids;
    size_t nmux;
    gn_protocol **protos;           /* hosted components (host.c) */
    size_t nprotos;
    gn_router **routers;
    size_t nrouters;
    gn_discovery **discs;
    size_t ndiscs;
    gn_nat **nats;
    size_t nnats;
    size_t nprotos_started, nrouters_started, ndiscs_started, nnats_started;
    bool components_running;        /* gni_host_start_components() succeeded */
    uint32_t nat_pending;           /* NAT map requests outstanding */
    uint32_t dht_pending;           /* host DHT calls whose callback has not run (dht.c) */
    gn_resolver *resolver;          /* /dns* and /dnsaddr before a transport (connmgr.c) */
    uint32_t dns_pending;           /* dial resolutions whose callback has not run */
    gni_list nat_maps;              /* mappings made (host.c), unmapped at close */
    bool finish_posted;             /* gni_node_finish_close_later pending */
    gni_list subs;                  /* gn_host_sub */
    int sub_depth;                  /* nested publishes */
    gni_list host_ops;              /* gn_host_op not yet finished */
    gn_multiaddr *observed[GN_HOST_MAX_OBSERVED];
    size_t nobserved;
    gn_multiaddr *announced[GN_HOST_MAX_ANNOUNCED]; /* gn_host_announce_addr */
    size_t nannounced;
    gni_list listeners;
    uint32_t nlisteners_closing;
    uint32_t nstray;                /* refused inbound connections still closing */
    gni_list channels;              /* added/removed on the loop under chan_mtx; walked
                                     * by the loop freely, by others under chan_mtx */
    uv_mutex_t chan_mtx;            /* any: gn_node_channel_get() */
    uint32_t nchannels;
    uint64_t next_channel;
    handler_ent handlers[GNI_NODE_MAX_HANDLERS];
    size_t nhandlers;
    gni_list overflow;
    size_t noverflow;
    gni_list agg;                   /* ovf_ev: SEND_FAILED aggregates, after the overflow */
    size_t nagg;
    /* the message service (host.c) */
    const gn_host_msg_ops *msg_ops;
    void *msg_svc;
    char msg_proto[GN_PROTOCOL_ID_MAX];
    bool msg_blocked;               /* a delivery met a full event queue */
    /* the group service (group.c) */
    const gn_host_group_ops *group_ops; /* loop */
    void *group_svc;                /* loop */
    char group_proto[GN_PROTOCOL_ID_MAX];
    uv_mutex_t group_mtx;           /* any: groups */
    gni_list groups;                /* gn_multicast.glink of open groups */
    gni_peerstore *ps;
    gn_timer idle_timer;
    bool idle_armed;
    /* the connection manager (connmgr.c) */
    gn_rcmgr *rm;                   /* resource accounting of connections */
    uint32_t conn_high, conn_low;   /* water marks of open channels */
    gn_time conn_grace;             /* new channels are not trimmed before this age */
    gn_time first_byte_timeout;     /* inbound connections silent this long are closed */
    gn_peer_id *protected_peers;
    size_t nprotected, cap_protected;
    uint64_t trimmed, evicted, refused;
    /* run-time options (gn_node_configure) */
    uint32_t max_conns, max_per_peer;
    gn_time idle_timeout;
    _Atomic size_t max_msg;         /* any: read by the immediate size checks */
    /* close */
    bool closing;
    gn_node_close_cb close_cb;
    void *close_arg;
    bool close_cb_set;
    bool close_finished;
};

/* ---- node.c ---- */
void gni_node_push_event(gn_node *n, const gn_node_event *ev);
/* Tries to queue a MESSAGE event; false when the queue is full (the caller
 * keeps it, and the message service's resume() runs when there is room). */
bool gni_node_try_message(gn_node *n, const gn_node_event *ev);
/* A delivery met a full event queue: resume the message service when there is room. */
void gni_node_msg_blocked(gn_node *n);
void gni_node_event_init(gn_node_event *ev, gn_node_event_type type);
int gni_node_post(gn_node *n, gn_loop_fn fn, void *arg);
/* Creates the component instances once (loop thread); idempotent. */
int gni_node_make_instances(gn_node *n);
const handler_ent *gni_node_find_handler(gn_node *n, const char *id);
/* All protocol ids the node answers on inbound streams; returns the count. */
size_t gni_node_protocols(gn_node *n, const char **ids, size_t max);
/* The same for a stream of @ch: on a limited channel only the handlers that
 * accept limited connections (the application's and GN_HOST_HANDLER_LIMITED_OK). */
size_t gni_node_protocols_for(gn_node *n, const gn_channel *ch, const char **ids, size_t max);
void gni_node_maybe_finish_close(gn_node *n);
/*
 * The same on a later loop turn: for callers that run inside a component's
 * callback (the finish frees the components). At most one is pending; no
 * close finishes while it is.
 */
void gni_node_finish_close_later(gn_node *n);
size_t gni_node_listen_addrs(gn_node *n, const gn_multiaddr **out, size_t max);
/* Opens a listener on @ma (loop thread): the events as gn_node_listen(). */
void gni_node_listen_now(gn_node *n, const gn_multiaddr *ma);
/* Closes the listener bound at @ma. Returns 0 or GN_ENOTFOUND. */
int gni_node_unlisten(gn_node *n, const gn_multiaddr *ma);

/*
 * Adds (@cb non-NULL) or removes (@cb NULL) the handler of @id for the
 * application or (@component) a hosted component; neither removes the
 * other's. Errors: GN_EINVAL (bad id), GN_EEXIST, GN_ENOTFOUND (nothing of
 * the caller's to remove), GN_ELIMIT.
 */
int gni_node_add_handler(gn_node *n, const char *id, gn_node_stream_cb cb, void *arg,
                         bool component, bool limited_ok);

/* ---- host.c ---- */
void gni_host_emit(gn_node *n, gn_host_event_type type, gn_channel *ch, const gn_peer_id *peer,
                   int status);
int gni_host_make_components(gn_node *n);
void gni_host_free_components(gn_node *n);
int gni_host_start_components(gn_node *n);
void gni_host_stop_components(gn_node *n);
/* True when no host operation is outstanding. */
bool gni_host_idle(gn_node *n);
/* True when a protocol component named @id is selected to run in @n. */
bool gni_host_protocol_selected(gn_node *n, const char *id);
void gni_host_on_listen(gn_node *n, const gn_multiaddr *bound);
void gni_host_fini(gn_node *n);
/*
 * A dial of a bare /p2p/<id> with no known address: asks the routers, then
 * dials again. Takes @ma and @r on 0; GN_ENOROUTE when there is no router.
 */
int gni_host_route_dial(gn_node *n, gn_multiaddr *ma, const gn_peer_id *peer, dial_req *r);

/* ---- connmgr.c ---- */
/* Dials @ma (taken) for @r (taken): reuse, join, route or a new channel. */
void gni_node_dial_run(gn_node *n, gn_multiaddr *ma, dial_req *r);
/* Creates n->resolver from the options dns.* (connmgr.c); loop thread.
 * GN_EINVAL names the bad option in the log. */
int gni_node_make_resolver(gn_node *n);
/* An inbound connection from @t's listener: admitted and upgraded, or closed. */
void gni_node_accept(gn_node *n, gn_transport *t, gn_stream *conn);
gn_channel *gni_node_find_open(gn_node *n, const gn_peer_id *peer);
/* The same, never a limited channel when @direct (an unlimited one is
 * preferred either way). */
gn_channel *gni_node_find_open_ex(gn_node *n, const gn_peer_id *peer, bool direct);
/* True when the peer store holds a live address of @peer a transport handles
 * (@direct: one that is not relayed). */
bool gni_node_has_route(gn_node *n, const gn_peer_id *peer);
bool gni_node_has_route_ex(gn_node *n, const gn_peer_id *peer, bool direct);
/* The peer a multiaddr dials: its last component when that is /p2p/<id>
 * (a relay address /.../p2p/<relay>/p2p-circuit/p2p/<id> names <id>).
 * Returns 1 with *@peer, 0 when there is none, GN_EPARSE for a bad id. */
int gni_ma_target_peer(const gn_multiaddr *ma, gn_peer_id *peer);
/* True when @ma runs through a relay (has /p2p-circuit). */
bool gni_ma_is_relayed(const gn_multiaddr *ma);
/*
 * A dial of a bare /p2p/<id> that failed with @status: when the peer has
 * another address it did not try, dial it for @r (taken) and return true;
 * false when there is none (the caller completes @r).
 */
bool gni_dial_next_addr(gn_node *n, dial_req *r, const gn_peer_id *peer, int status);
/* True when the peer store has an address of @peer that @r may still try. */
bool gni_node_has_untried_route(gn_node *n, const gn_peer_id *peer, const dial_req *r);
void gni_node_idle_arm(gn_node *n);
/* A connection manager option (gn_node_configure), on the loop thread. */
void gni_connmgr_configure(gn_node *n, int opt, uint64_t value);
void gni_connmgr_protect(gn_node *n, const gn_peer_id *peer, bool protect);

/* ---- upgrade.c ---- */
/* Dials @addr (borrowed) with @t and upgrades the connection of @ch (new, outbound). */
void gni_upgrade_dial(gn_channel *ch, gn_transport *t, const gn_multiaddr *addr,
                      const gni_upgrade_cbs *cbs);
/* Upgrades @conn (taken), accepted by @t's listener, for @ch (new, inbound). */
void gni_upgrade_accept(gn_channel *ch, gn_transport *t, gn_stream *conn,
                        const gni_upgrade_cbs *cbs);
/* The channel closes before the upgrade reported: stop the step running
 * (its streams are released; released() follows). No done() after it. */
void gni_upgrade_abort(gn_channel *ch);

/* ---- channel.c ---- */
gn_channel *gni_channel_new(gn_node *n, bool outbound);
void gni_channel_publish(gn_channel *ch);
/* The upgrade succeeded: events, host CONNECTED, waiters complete. */
void gni_channel_opened(gn_channel *ch);
/* Closes @ch for @reason (any phase); idempotent. */
void gni_channel_begin_close(gn_channel *ch, int reason);
/* Completes one dial request (callback, internal waiter or DIAL event) and frees it. */
void gni_dial_req_complete(gn_node *n, dial_req *r, int status, gn_channel *ch);
void gni_channel_on_stream(gn_mux_session *ms, void *ud, gn_stream *s);
void gni_channel_on_end(gn_mux_session *ms, void *ud, int err);
void gni_channel_teardown_streams(gn_channel *ch);
void gni_channel_check_done(gn_channel *ch);
/*
 * Hands @buf to the message service for @ch (its mq_count slot already
 * taken; released here on failure). Errors: GN_ENOTSUP (no service),
 * GN_ECLOSED/GN_ECANCELED/GN_ESTATE (not open), the service's refusal.
 */
int gni_channel_enqueue(gn_channel *ch, gn_rcbuf *buf, uint64_t req_id);
void gni_channel_refresh(gn_channel *ch);
/*
 * Takes a slot in @ch's message queue (any thread). Returns 0 or GN_EAGAIN
 * (full: the channel owes the caller a GN_NODE_EV_WRITABLE).
 */
int gni_channel_mq_reserve(gn_channel *ch);
/* Releases a slot (loop): below the low-water mark, the WRITABLE owed. */
void gni_channel_mq_release(gn_channel *ch);
/* The peer map (node_int.h): add on open, remove on close (loop). */
void gni_pmap_add(gn_channel *ch);
void gni_pmap_del(gn_channel *ch);
/*
 * The open channel to @peer (NULL: any peer) or, with @peer NULL, dialled
 * at @addr, with a reference the caller releases; NULL if none. Any thread.
 */
gn_channel *gni_pmap_find(gn_node *n, const gn_peer_id *peer, const char *addr);
/* Releases every entry (node teardown). */
void gni_pmap_fini(gn_node *n);
uint32_t gni_channel_user_streams(gn_channel *ch);
/*
 * Opens a stream on @ch and negotiates @proto; @done runs once, later.
 * Returns 0, or GN_ENOMEM when not even the failure can be reported later
 * (then @done never runs).
 */
int gni_channel_open_internal(gn_channel *ch, const char *proto, open_done_fn done, void *arg);

#endif /* GNI_NODE_INT_H */
