/*
 * golemnet - discovery layer ops (bootstrap lists, mDNS, rendezvous):
 * report peers as they are found.
 *
 * The node creates one instance per discovery component named in its
 * configuration (`discovery`), starts it with the node and stops it when
 * the node closes. Every reported peer's addresses go into the peer store
 * (source GN_ADDR_SRC_DISCOVERY) and a GN_HOST_EV_PEER_FOUND event is
 * published. A component may also use the host to connect to what it
 * found (the bootstrap component does).
 *
 * Thread context: every entry runs on the host's loop thread.
 * Spec: docs/architecture.md "Layer kinds".
 * Since: 0.1 (host: 0.2)
 */
#ifndef GOLEMNET_DISCOVERY_H
#define GOLEMNET_DISCOVERY_H

#include "golemnet/host.h"
#include "golemnet/identity.h"
#include "golemnet/layer.h"
#include "golemnet/multiaddr.h"

GN_BEGIN_DECLS

/** ABI version: (kind << 16) | revision, so a table of another kind never passes. */
#define GN_DISCOVERY_ABI 0x60002u

typedef struct gn_discovery gn_discovery;
typedef struct gn_discovery_ops gn_discovery_ops;

/** A discovery instance. Created by core (gn_discovery_new). */
struct gn_discovery {
    const gn_discovery_ops *ops;
    gn_loop *loop;
    void *state;   /* ops->state_size zeroed bytes, or NULL */
    gn_host *host; /* the node that runs it */
};

/**
 * A peer was found: @addrs (@naddrs, borrowed for the call) are its
 * addresses, valid for @ttl ns (0: the host's default, one hour). Loop
 * thread; never from inside start().
 */
typedef void (*gn_discovery_peer_cb)(void *arg, const gn_peer_id *peer,
                                     gn_multiaddr *const *addrs, size_t naddrs, gn_time ttl);

struct gn_discovery_ops {
    GN_LAYER_OPS_HEADER;
    int (*init)(gn_discovery *d);   /* optional: a negative gn_err refuses the instance */
    void (*fini)(gn_discovery *d);  /* optional */
    /** Required: begin reporting peers to @cb until stop. */
    int (*start)(gn_discovery *d, gn_discovery_peer_cb cb, void *arg);
    /** Required: no @cb calls after it returns; pending work is cancelled. */
    void (*stop)(gn_discovery *d);
    /**
     * Optional, for tests (the discovery conformance suite): writes into
     * @out (@out_len bytes, NUL-terminated) the node options that make an
     * instance report @peer at @addr (a multiaddr without /p2p/), one
     * "component.key=value" entry per line, e.g.
     * "bootstrap.peer=/ip4/127.0.0.1/tcp/4001/p2p/12D3KooW...". Returns the
     * length written, or GN_ENOSPC. Any thread; no instance needed. NULL:
     * the component finds peers only by itself (the suite skips the tests
     * that need a reported peer). Since: 0.2
     */
    int (*test_options)(const gn_peer_id *peer, const gn_multiaddr *addr, char *out,
                        size_t out_len);
};

/**
 * Creates an instance of @ops for @host (calls ops->init). Errors:
 * GN_EINVAL, GN_EABI, GN_ENOMEM, or init's error.
 */
GN_API int gn_discovery_new(const gn_discovery_ops *ops, gn_host *host, gn_loop *loop,
                            gn_discovery **out);
/** Frees @d (calls ops->fini; stop it first). NULL is a no-op. */
GN_API void gn_discovery_free(gn_discovery *d);
/** Calls ops->start. Errors: GN_EINVAL (NULL @cb), or the component's. */
GN_API int gn_discovery_start(gn_discovery *d, gn_discovery_peer_cb cb, void *arg);
/** Calls ops->stop. */
GN_API void gn_discovery_stop(gn_discovery *d);

GN_END_DECLS

#endif /* GOLEMNET_DISCOVERY_H */
