/*
 * golemnet - NAT traversal ops (UPnP IGD via miniupnpc, NAT-PMP):
 * map ports on the gateway and learn the external address.
 */
#ifndef GOLEMNET_NAT_H
#define GOLEMNET_NAT_H

#include "golemnet/layer.h"
#include "golemnet/multiaddr.h"

GN_BEGIN_DECLS

/** ABI version: (kind << 16) | revision, so a table of another kind never passes. */
#define GN_NAT_ABI 0x70001u

typedef struct gn_nat gn_nat;
typedef struct gn_nat_ops gn_nat_ops;

struct gn_nat {
    const gn_nat_ops *ops;
    gn_loop *loop;
    void *state;
};

/**
 * Mapping result: @status 0 with @external (borrowed) or an error
 * (GN_ENOTSUP: no gateway, GN_ETIMEDOUT, GN_ECANCELED). Exactly once.
 */
typedef void (*gn_nat_map_cb)(void *arg, int status, const gn_multiaddr *external);

struct gn_nat_ops {
    GN_LAYER_OPS_HEADER;
    int (*init)(gn_nat *n);   /* optional */
    void (*fini)(gn_nat *n);  /* optional */
    /**
     * Required: map the local address @internal (e.g. /ip4/10.0.0.2/tcp/4001)
     * for @lifetime; blocking work goes to uv_queue_work.
     */
    int (*map)(gn_nat *n, const gn_multiaddr *internal, gn_time lifetime, gn_nat_map_cb cb,
               void *arg);
    /** Optional: remove a mapping made by map. */
    int (*unmap)(gn_nat *n, const gn_multiaddr *internal);
};

GN_END_DECLS

#endif /* GOLEMNET_NAT_H */
