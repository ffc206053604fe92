/*
 * golemnet - NAT traversal ops (UPnP IGD, NAT-PMP): map ports on the
 * gateway and learn the external address.
 *
 * The node creates one instance per NAT component named in its
 * configuration (`nat`). When a listener is bound on an address that is
 * not loopback, the node asks each instance in order to map it; the first
 * external address is recorded as an observed address of the host
 * (gn_host_add_observed_addr); when the node closes it unmaps every
 * mapping it made (ops->unmap) before stopping the component.
 *
 * Thread context: every entry runs on the host's loop thread; blocking
 * work (miniupnpc) goes to uv_queue_work in the component's adapter.
 * Spec: docs/architecture.md "Layer kinds".
 * Since: 0.1 (host, start/stop: 0.2)
 */
#ifndef GOLEMNET_NAT_H
#define GOLEMNET_NAT_H

#include "golemnet/host.h"
#include "golemnet/layer.h"
#include "golemnet/multiaddr.h"

GN_BEGIN_DECLS

/** ABI version: (kind << 16) | revision, so a table of another kind never passes. */
#define GN_NAT_ABI 0x70002u

typedef struct gn_nat gn_nat;
typedef struct gn_nat_ops gn_nat_ops;

/** A NAT instance. Created by core (gn_nat_new). */
struct gn_nat {
    const gn_nat_ops *ops;
    gn_loop *loop;
    void *state;   /* ops->state_size zeroed bytes, or NULL */
    gn_host *host; /* the node that runs it */
};

/**
 * Mapping result: @status 0 with @external (borrowed) or an error
 * (GN_ENOTSUP: no gateway, GN_ETIMEDOUT, GN_ECANCELED, or another code the
 * component documents; the built-in upnp and natpmp list theirs in
 * docs/nat.md, e.g. GN_EADDRNOTAVAIL: the gateway has no public address).
 * Exactly once.
 */
typedef void (*gn_nat_map_cb)(void *arg, int status, const gn_multiaddr *external);

struct gn_nat_ops {
    GN_LAYER_OPS_HEADER;
    int (*init)(gn_nat *n);   /* optional: a negative gn_err refuses the instance */
    void (*fini)(gn_nat *n);  /* optional */
    int (*start)(gn_nat *n);  /* optional: find the gateway */
    void (*stop)(gn_nat *n);  /* optional: pending maps complete with GN_ECANCELED */
    /**
     * Required: map the local address @internal (e.g. /ip4/10.0.0.2/tcp/4001)
     * for @lifetime ns and keep it renewed until unmap or stop.
     */
    int (*map)(gn_nat *n, const gn_multiaddr *internal, gn_time lifetime, gn_nat_map_cb cb,
               void *arg);
    /**
     * Optional: remove a mapping made by map. The node calls it for each
     * mapping it made when it closes, before stop (GN_ENOTSUP when absent).
     */
    int (*unmap)(gn_nat *n, const gn_multiaddr *internal);
};

/**
 * Creates an instance of @ops for @host (calls ops->init). Errors:
 * GN_EINVAL, GN_EABI, GN_ENOMEM, or init's error.
 */
GN_API int gn_nat_new(const gn_nat_ops *ops, gn_host *host, gn_loop *loop, gn_nat **out);
/** Frees @n (calls ops->fini; stop it first). NULL is a no-op. */
GN_API void gn_nat_free(gn_nat *n);
/** Calls ops->start (0 when absent). */
GN_API int gn_nat_start(gn_nat *n);
/** Calls ops->stop (nothing when absent). */
GN_API void gn_nat_stop(gn_nat *n);
/** Forwards to ops->map. Errors: GN_EINVAL (NULL @internal or @cb), or the component's. */
GN_API int gn_nat_map(gn_nat *n, const gn_multiaddr *internal, gn_time lifetime,
                      gn_nat_map_cb cb, void *arg);
/** Forwards to ops->unmap; GN_ENOTSUP when absent. */
GN_API int gn_nat_unmap(gn_nat *n, const gn_multiaddr *internal);

GN_END_DECLS

#endif /* GOLEMNET_NAT_H */
