/*
 * golemnet - routing layer ops (static, Kademlia, relay): find peers and
 * values.
 *
 * The node creates one instance per router named in its configuration
 * (`routers`), starts and stops it with the node, and asks the routers in
 * order when a dial names only a peer ID (gn_host_find_peer()).
 *
 * Thread context: every entry runs on the host's loop thread. Results are
 * delivered on the loop thread, never from inside the call that asked.
 * Spec: docs/architecture.md "Layer kinds".
 * Since: 0.1 (host, start/stop and the gn_op handle: 0.2)
 */
#ifndef GOLEMNET_ROUTER_H
#define GOLEMNET_ROUTER_H

#include "golemnet/host.h"
#include "golemnet/identity.h"
#include "golemnet/layer.h"
#include "golemnet/multiaddr.h"

GN_BEGIN_DECLS

/** ABI version: (kind << 16) | revision, so a table of another kind never passes. */
#define GN_ROUTER_ABI 0x50002u

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
/** get_value result: @status 0 with @value borrowed, or an error. */
typedef void (*gn_router_value_cb)(void *arg, int status, gn_slice value);
/** put_value / provide completion. */
typedef void (*gn_router_done_cb)(void *arg, int status);

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
    /** Optional (GN_ENOTSUP). Key and value are copied. */
    int (*put_value)(gn_router *r, gn_slice key, gn_slice value, gn_router_done_cb cb,
                     void *arg);
    int (*get_value)(gn_router *r, gn_slice key, gn_router_value_cb cb, void *arg);
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

GN_END_DECLS

#endif /* GOLEMNET_ROUTER_H */
