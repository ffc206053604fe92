/*
 * golemnet - routing layer ops (static, Kademlia, relay): find peers and
 * values.
 *
 * The node creates one instance per router named in its configuration
 * (`routers`), starts and stops it with the node, and asks the routers in
 * order when a dial names only a peer ID (gn_host_find_peer()).
 *
 * A router that is also a DHT (the Kademlia router, "kad") implements the
 * optional value, provider and closest-peer entries; the host asks the
 * first router that has an entry (gn_host_get_value() and the others
 * below), and the node offers them to applications as gn_node_dht_*().
 *
 * Thread context: every entry runs on the host's loop thread. Results are
 * delivered on the loop thread, never from inside the call that asked.
 * Spec: docs/architecture.md "Layer kinds"; libp2p/specs
 * kad-dht/README.md for the DHT entries (docs/routing-kad.md).
 * Since: 0.1 (host, start/stop and the gn_op handle: 0.2; the DHT
 * entries: 0.3)
 */
#ifndef GOLEMNET_ROUTER_H
#define GOLEMNET_ROUTER_H

#include "golemnet/host.h"
#include "golemnet/identity.h"
#include "golemnet/layer.h"
#include "golemnet/multiaddr.h"

GN_BEGIN_DECLS

/** ABI version: (kind << 16) | revision, so a table of another kind never passes. */
#define GN_ROUTER_ABI 0x50003u

typedef struct gn_router gn_router;
typedef struct gn_router_ops gn_router_ops;

/** A router instance. Created by core (gn_router_new). */
struct gn_router {
    const gn_router_ops *ops;
    gn_loop *loop;
    void *state;   /* ops->state_size zeroed bytes, or NULL */
    gn_host *host; /* the node that runs it */
};

/**
 * find_peer result: @status 0 with @addrs (@naddrs multiaddrs, borrowed for
 * the call), or GN_ENOROUTE (the router does not know the peer),
 * GN_ETIMEDOUT, GN_ECANCELED. Exactly once per accepted query.
 */
typedef void (*gn_router_peer_cb)(void *arg, int status, const gn_peer_id *peer,
                                  gn_multiaddr *const *addrs, size_t naddrs);
/**
 * get_value result: @status 0 with @value (borrowed for the call), or
 * GN_ENOTFOUND (no peer had a valid record), GN_ENOROUTE (no peer to ask),
 * GN_ETIMEDOUT, GN_ECANCELED. Exactly once per accepted query. Since: 0.3
 */
typedef void (*gn_router_value_cb)(void *arg, int status, gn_slice value);
/**
 * put_value / provide completion: 0 (stored locally and by at least one of
 * the closest peers), GN_ENOROUTE (no peer to send it to: kept locally
 * only), GN_ETIMEDOUT, GN_ECANCELED, or the refusal of the local store
 * (GN_EINVAL: the record does not validate; GN_ENOTSUP: no validator for
 * its namespace; GN_ELIMIT: the store is full). Since: 0.3
 */
typedef void (*gn_router_done_cb)(void *arg, int status);

/** A peer in a DHT answer; everything is borrowed for the callback. Since: 0.3 */
typedef struct gn_router_peer {
    gn_peer_id id;
    gn_multiaddr *const *addrs; /* its known addresses, @naddrs of them */
    size_t naddrs;
} gn_router_peer;

/**
 * find_providers / closest_peers result: @status 0 with @n peers (borrowed
 * for the call; closest_peers: closest first), or GN_ENOROUTE (no peer to
 * ask), GN_ETIMEDOUT (the query's time ran out; @n peers found so far),
 * GN_ECANCELED. find_providers answers 0 with @n 0 when nobody provides
 * the key. Exactly once per accepted query. Since: 0.3
 */
typedef void (*gn_router_peers_cb)(void *arg, int status, const gn_router_peer *peers, size_t n);

/**
 * A record validator for one key namespace (keys "/<ns>/..."), what the
 * DHT checks every record against before storing or returning it.
 * validate: 0 when @value is a valid record for @key, else a negative
 *   gn_err (GN_EINVAL for a bad record). Required.
 * select: of @n (>= 1) valid values for @key, the index of the best (the
 *   one kept and returned). NULL: the first (all valid values are equal).
 * Both run on the loop thread and must not block. @arg is theirs.
 * Spec: libp2p/specs kad-dht/README.md "Entry validation". Since: 0.3
 */
typedef struct gn_router_validator {
    const char *ns; /* the namespace, without slashes: "pk", "ipns", "test" */
    int (*validate)(void *arg, gn_slice key, gn_slice value);
    size_t (*select)(void *arg, gn_slice key, const gn_slice *values, size_t n);
    void *arg;
} gn_router_validator;

/**
 * A DHT router's counters since it started (gn_host_dht_stats()). Queries
 * count when they end, whatever their outcome. Since: 0.3
 */
typedef struct gn_router_stats {
    uint64_t queries;       /* queries ended */
    uint64_t requests;      /* requests they sent (lookup steps, stores) */
    uint64_t responses;     /* answers to those requests */
    uint64_t failures;      /* requests that failed or timed out */
    uint64_t hops;          /* sum over lookups of the hops to the closest result */
    uint32_t last_hops;     /* the last ended lookup's hops (1: a peer of our table) */
    uint32_t last_requests; /* ... and the requests it sent */
    uint64_t served;        /* inbound requests answered */
    uint64_t refused;       /* inbound streams or requests refused (limits, rate, bad input) */
    size_t table_size;      /* peers in the routing table */
    size_t records;         /* records stored (local and remote) */
    size_t providers;       /* provider entries stored */
} gn_router_stats;

struct gn_router_ops {
    GN_LAYER_OPS_HEADER;
    int (*init)(gn_router *r);   /* optional: a negative gn_err refuses the instance */
    void (*fini)(gn_router *r);  /* optional */
    int (*start)(gn_router *r);  /* optional: load configuration, bootstrap */
    void (*stop)(gn_router *r);  /* optional: pending queries complete with GN_ECANCELED */
    /**
     * Required: looks @peer up. Returns 0 and calls @cb exactly once,
     * preferably on a later loop turn (the host copes with an answer from
     * inside the call). *@op receives the query's cancellation handle
     * (gn_op, golemnet/loop.h): gn_op_cancel() ends it and @cb then runs
     * with GN_ECANCELED. A negative gn_err means @cb will not run.
     */
    int (*find_peer)(gn_router *r, const gn_peer_id *peer, gn_router_peer_cb cb, void *arg,
                     gn_op **op);
    /*
     * The DHT entries, each optional (NULL: the router is not a DHT). They
     * copy what they are given and answer as find_peer does: 0 and the
     * callback exactly once, never from inside the call, with *@op the
     * cancellation handle (a cancelled query answers GN_ECANCELED); a
     * negative gn_err means the callback will not run: GN_EINVAL (an empty
     * key or one longer than the router takes), GN_ELIMIT (too many
     * queries running), GN_ESTATE (stopped). Keys are the DHT keys as on
     * the wire: "/<ns>/..." for records, a multihash (a CID's) for
     * providers, any bytes for closest_peers. Since: 0.3
     */
    /** Stores @value under @key locally and at the peers closest to @key. */
    int (*put_value)(gn_router *r, gn_slice key, gn_slice value, gn_router_done_cb cb,
                     void *arg, gn_op **op);
    /** Finds the best valid record for @key (the local store counts). */
    int (*get_value)(gn_router *r, gn_slice key, gn_router_value_cb cb, void *arg, gn_op **op);
    /** Announces this node as a provider of @key to the peers closest to it. */
    int (*provide)(gn_router *r, gn_slice key, gn_router_done_cb cb, void *arg, gn_op **op);
    /** Finds up to @max (>= 1) providers of @key. */
    int (*find_providers)(gn_router *r, gn_slice key, size_t max, gn_router_peers_cb cb,
                          void *arg, gn_op **op);
    /** Finds the peers closest to @key (the DHT's k). */
    int (*closest_peers)(gn_router *r, gn_slice key, gn_router_peers_cb cb, void *arg,
                         gn_op **op);
    /**
     * Registers (or replaces) the validator of @v->ns; @v is copied, its
     * functions and arg must stay valid while the router lives. Errors:
     * GN_EINVAL (empty namespace or NULL validate), GN_ELIMIT (too many
     * namespaces), GN_ENOMEM.
     */
    int (*set_validator)(gn_router *r, const gn_router_validator *v);
    /**
     * Optional, for tests (the router conformance suite): writes into @out
     * (@out_len bytes, NUL-terminated) the node options that make an
     * instance know @peer at @addr (a multiaddr without /p2p/), one
     * "component.key=value" entry per line, e.g.
     * "static.peer=/ip4/127.0.0.1/tcp/4001/p2p/12D3KooW...". Returns the
     * length written, or GN_ENOSPC. Any thread; no instance needed. NULL:
     * no options can do that (the suite skips the tests that need a
     * router that knows the peer). Since: 0.2
     */
    int (*test_options)(const gn_peer_id *peer, const gn_multiaddr *addr, char *out,
                        size_t out_len);
    /** Optional: fills @out with the router's counters (gn_host_dht_stats()). Since: 0.3 */
    int (*stats)(gn_router *r, gn_router_stats *out);
};

/**
 * Creates an instance of @ops for @host (calls ops->init). Errors:
 * GN_EINVAL, GN_EABI, GN_ENOMEM, or init's error.
 */
GN_API int gn_router_new(const gn_router_ops *ops, gn_host *host, gn_loop *loop,
                         gn_router **out);
/** Frees @r (calls ops->fini; stop it first). NULL is a no-op. */
GN_API void gn_router_free(gn_router *r);
/** Calls ops->start (0 when absent). */
GN_API int gn_router_start(gn_router *r);
/** Calls ops->stop (nothing when absent). */
GN_API void gn_router_stop(gn_router *r);
/**
 * Forwards to ops->find_peer (see there); *@op (may be NULL) receives the
 * handle, NULL on an error. Errors: GN_EINVAL (NULL @peer or @cb).
 */
GN_API int gn_router_find_peer(gn_router *r, const gn_peer_id *peer, gn_router_peer_cb cb,
                               void *arg, gn_op **op);

/**
 * Fills @v with a validator for namespace @ns (borrowed: it must outlive
 * the registration's copy, which gn_node_dht_set_validator makes) that
 * accepts every value and, of several, keeps the lexicographically
 * greatest bytes (so peers converge whatever order puts arrive in). For
 * test networks and namespaces whose values the application checks
 * itself; the CLI's --dht-namespace and Python's dht_allow_namespace use
 * it. Any thread. Since: 0.3
 */
GN_API void gn_router_validator_any(gn_router_validator *v, const char *ns);

/* ---- the host's DHT calls (implemented by the node; loop thread) ---- */

/*
 * Each asks the first of the node's routers that has the entry and returns
 * its answer: 0 and the callback exactly once on a later loop turn, or a
 * negative gn_err (the callback will not run): GN_ENOTSUP (no router is a
 * DHT), GN_EINVAL (NULL @cb, a NULL key with a length, an empty key),
 * GN_ECLOSED (the node is closing), or the router's refusal (see the ops
 * above). *@op (may be NULL) receives the cancellation handle. Since: 0.3
 */
GN_API int gn_host_put_value(gn_host *h, gn_slice key, gn_slice value, gn_router_done_cb cb,
                             void *arg, gn_op **op);
GN_API int gn_host_get_value(gn_host *h, gn_slice key, gn_router_value_cb cb, void *arg,
                             gn_op **op);
GN_API int gn_host_provide(gn_host *h, gn_slice key, gn_router_done_cb cb, void *arg,
                           gn_op **op);
GN_API int gn_host_find_providers(gn_host *h, gn_slice key, size_t max, gn_router_peers_cb cb,
                                  void *arg, gn_op **op);
GN_API int gn_host_closest_peers(gn_host *h, gn_slice key, gn_router_peers_cb cb, void *arg,
                                 gn_op **op);
/**
 * The counters of the first router that keeps DHT statistics. Errors:
 * GN_EINVAL, GN_ENOTSUP (none does). Since: 0.3
 */
GN_API int gn_host_dht_stats(gn_host *h, gn_router_stats *out);
/**
 * Registers @v with every router that takes validators. Errors: GN_ENOTSUP
 * (none does), or the first router's refusal. Since: 0.3
 */
GN_API int gn_host_set_validator(gn_host *h, const gn_router_validator *v);

GN_END_DECLS

#endif /* GOLEMNET_ROUTER_H */
