/*
 * golemnet - routing layer ops (Kademlia, relay): find peers and values.
 * Components arrive with their issues; the table is fixed now so stacks can
 * name a router.
 */
#ifndef GOLEMNET_ROUTER_H
#define GOLEMNET_ROUTER_H

#include "golemnet/identity.h"
#include "golemnet/layer.h"
#include "golemnet/multiaddr.h"

GN_BEGIN_DECLS

/** ABI version: (kind << 16) | revision, so a table of another kind never passes. */
#define GN_ROUTER_ABI 0x50001u

typedef struct gn_router gn_router;
typedef struct gn_router_ops gn_router_ops;

struct gn_router {
    const gn_router_ops *ops;
    gn_loop *loop;
    void *state;
    void *host;
};

/**
 * find_peer result: @status 0 with @addrs (@naddrs borrowed multiaddrs), or
 * GN_ENOTFOUND, GN_ETIMEDOUT, GN_ECANCELED. Exactly once.
 */
typedef void (*gn_router_peer_cb)(void *arg, int status, const gn_peer_id *peer,
                                  gn_multiaddr *const *addrs, size_t naddrs);
/** get_value result: @status 0 with @value borrowed, or an error. */
typedef void (*gn_router_value_cb)(void *arg, int status, gn_slice value);
/** put_value / provide completion. */
typedef void (*gn_router_done_cb)(void *arg, int status);

struct gn_router_ops {
    GN_LAYER_OPS_HEADER;
    int (*init)(gn_router *r);   /* optional */
    void (*fini)(gn_router *r);  /* optional */
    int (*start)(gn_router *r);  /* optional: bootstrap */
    void (*stop)(gn_router *r);  /* optional */
    /** Required. */
    int (*find_peer)(gn_router *r, const gn_peer_id *peer, gn_router_peer_cb cb, void *arg);
    /** Optional (GN_ENOTSUP). Key and value are copied. */
    int (*put_value)(gn_router *r, gn_slice key, gn_slice value, gn_router_done_cb cb,
                     void *arg);
    int (*get_value)(gn_router *r, gn_slice key, gn_router_value_cb cb, void *arg);
};

GN_END_DECLS

#endif /* GOLEMNET_ROUTER_H */
