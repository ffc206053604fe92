/*
 * golemnet - discovery layer ops (mDNS, bootstrap lists, rendezvous):
 * report peers as they are found.
 */
#ifndef GOLEMNET_DISCOVERY_H
#define GOLEMNET_DISCOVERY_H

#include "golemnet/identity.h"
#include "golemnet/layer.h"
#include "golemnet/multiaddr.h"

GN_BEGIN_DECLS

/** ABI version: (kind << 16) | revision, so a table of another kind never passes. */
#define GN_DISCOVERY_ABI 0x60001u

typedef struct gn_discovery gn_discovery;
typedef struct gn_discovery_ops gn_discovery_ops;

struct gn_discovery {
    const gn_discovery_ops *ops;
    gn_loop *loop;
    void *state;
    void *host;
};

/** A peer was found; @addrs are borrowed for the call. Loop thread. */
typedef void (*gn_discovery_peer_cb)(void *arg, const gn_peer_id *peer,
                                     gn_multiaddr *const *addrs, size_t naddrs);

struct gn_discovery_ops {
    GN_LAYER_OPS_HEADER;
    int (*init)(gn_discovery *d);   /* optional */
    void (*fini)(gn_discovery *d);  /* optional */
    /** Required: begin reporting peers to @cb until stop. */
    int (*start)(gn_discovery *d, gn_discovery_peer_cb cb, void *arg);
    /** Required: no @cb calls after it returns. */
    void (*stop)(gn_discovery *d);
};

GN_END_DECLS

#endif /* GOLEMNET_DISCOVERY_H */
