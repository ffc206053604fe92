/*
 * golemnet - Ergo's etcd registrar on libuv (private to the library).
 *
 * Runs the etcd core (etcd.h) over TCP to one etcd endpoint's v3 JSON
 * gateway, as Ergo's etcd registrar does over gRPC: grants a lease of
 * lease_ttl_s, creates services/ergo/cluster/<cluster>/routes/nodes/<node>
 * with the node's routes under that lease (only if the key does not exist:
 * else the name is taken), renews the lease every TTL/3, re-registers
 * with a new lease when the old one is gone, resolves other nodes by a get
 * of their key, and watches the cluster's node keys for joins and leaves.
 *
 * Two HTTP/1.1 connections: one carries the calls one at a time (a FIFO of
 * at most 64 waiting calls), the other the watch stream. Host parts are
 * IPv4 literals or "localhost" (no DNS here); plain HTTP only (no TLS, no
 * user/password).
 *
 * Design: docs/ergo.md "etcd registrar". Thread context: the loop's thread.
 * The application blocks SIGPIPE.
 */
#ifndef GNI_ETCD_UV_H
#define GNI_ETCD_UV_H

#include <uv.h>

#include "etcd.h"

typedef struct gni_etcd_uv gni_etcd_uv;

/** Where the registration stands (reported through on_state). */
typedef enum gni_etcd_uv_state {
    GNI_ETCD_UV_STARTING = 0, /* granting a lease, creating the key */
    GNI_ETCD_UV_REGISTERED,   /* our key exists under our live lease */
    GNI_ETCD_UV_RETRYING,     /* etcd unreachable, a call failed or the lease is gone: trying
                               * again after a pause (Ergo: 5 s x attempt, at most 30 s) */
    GNI_ETCD_UV_TAKEN,        /* another node holds the name (GN_EEXIST): final, as Ergo's
                               * node refuses to start */
} gni_etcd_uv_state;

#define GNI_ETCD_UV_QUEUE_MAX 64u           /* calls waiting for the connection */
#define GNI_ETCD_UV_TIMEOUT_DEFAULT 10000u  /* ms: connect and per call (Ergo: 10 s) */

typedef struct gni_etcd_uv_options {
    const gn_edf_registry *reg;   /* with gn_edf_registry_add_ergo types; outlives the object */
    const char *endpoint;         /* "host:port" or "http://host:port"; NULL = "localhost:2379" */
    const char *cluster;          /* NULL or "" = "default" */
    const char *node;             /* name@host to register; NULL = resolve and watch only */
    const gni_reg_route *routes;  /* copied at start */
    uint32_t nroutes;
    uint32_t lease_ttl_s;         /* 0 = 10 (GNI_ETCD_TTL_DEFAULT) */
    uint32_t timeout_ms;          /* connect and per call; 0 = 10000 */
    uint32_t retry_ms;            /* pause unit after a failure; 0 = 5000 (Ergo); cap 6 units */
    bool watch;                   /* watch the cluster's nodes: on_node */
    gni_etcd_limits limits;       /* response bounds; zero = defaults */
    /* Every state change; @err and @why (static or valid during the call) say why for
     * RETRYING and TAKEN. */
    void (*on_state)(gni_etcd_uv *e, gni_etcd_uv_state st, int err, const char *why,
                     void *user_data);
    /* A node's key appeared (joined) or went away (left; also when its lease expired).
     * Our own node is not reported. @node is valid during the call. */
    void (*on_node)(gni_etcd_uv *e, gn_slice node, bool joined, void *user_data);
    void *user_data;
} gni_etcd_uv_options;

/**
 * Starts: registers @o->node (if set) and the watch (if asked). Returns 0;
 * GN_EINVAL (a missing registry, a bad endpoint, cluster or node name, or
 * routes whose value does not encode; the log says which); GN_ENOMEM.
 */
int gni_etcd_uv_start(uv_loop_t *loop, const gni_etcd_uv_options *o, gni_etcd_uv **out);

/** The current state. */
gni_etcd_uv_state gni_etcd_uv_get_state(const gni_etcd_uv *e);

/** The lease our key is attached to (0 before registration). */
int64_t gni_etcd_uv_lease(const gni_etcd_uv *e);

/** The last failure, one line ("" if none). */
const char *gni_etcd_uv_diag(const gni_etcd_uv *e);

/**
 * Resolves @node (name@host) as Ergo's etcd resolver does: one get of its
 * key. @cb gets 0 and the routes (valid during the call; a route's Host is
 * empty for Ergo nodes: use the host part of the name), GN_ENOTFOUND (no
 * such key, or a value with no routes), GN_EPARSE (a value that is not
 * base64 of an EDF []gen.Route), GN_ETIMEDOUT, GN_ECONNREFUSED and the
 * other connection errors, GN_EPROTO (etcd refused the call), GN_ECANCELED
 * (closed first). Returns 0 or GN_EINVAL (bad name) / GN_EAGAIN (64 calls
 * wait already) / GN_ECLOSED / GN_ENOMEM; then @cb is not called.
 */
typedef void (*gni_etcd_uv_resolve_cb)(int err, const gni_reg_route *routes, uint32_t n,
                                       void *user_data);
int gni_etcd_uv_resolve(gni_etcd_uv *e, const char *node, gni_etcd_uv_resolve_cb cb, void *ud);

/**
 * Stops. With @revoke (Ergo's Terminate) the lease is revoked first (one
 * call, bounded by the timeout), so our key goes at once; without it the
 * key stays until the lease expires (as when a node dies). Pending
 * resolves complete with GN_ECANCELED. @cb runs when every handle is
 * closed and @e is freed.
 */
void gni_etcd_uv_close(gni_etcd_uv *e, bool revoke, void (*cb)(void *ud), void *ud);

#endif /* GNI_ETCD_UV_H */
