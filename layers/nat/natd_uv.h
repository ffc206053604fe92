/*
 * natd - the driver the NAT components (upnp, natpmp) share: the mapping
 * records, renewal timers, cancellation at stop, unmapping, and one
 * serial queue of blocking jobs on libuv's thread pool (uv_queue_work).
 *
 * A component supplies a backend (gni_natd_vtbl): three blocking calls that
 * run on a thread-pool thread, one at a time (the queue is serial, so the
 * backend's state needs no lock), and a free. The driver calls them in
 * order: gateway (from gni_natd_start), then map/unmap jobs in submission
 * order. Everything else runs on the loop thread.
 *
 * Lifetime: gni_natd_free() detaches the driver from its owner. Jobs that
 * delete mappings still run (a mapping made must not outlive the node),
 * queued map jobs are dropped; when the job in flight (if any) and the
 * remaining deletes are done, the backend is freed (vtbl->free, on the
 * loop thread) and the driver with it. libuv keeps the loop alive while a
 * job runs, so a loop being stopped finishes them (core/loop.c).
 */
#ifndef GNI_NATD_UV_H
#define GNI_NATD_UV_H

#include "golemnet/nat.h"

#include "natcore.h"

/** Text kept for the log about a job's outcome. */
#define GNI_NATD_REASON_MAX 400

/** A blocking call's result, filled by the backend on the worker thread. */
typedef struct gni_natd_result {
    int err;                        /* 0 or a negative gn_err */
    int code;                       /* the protocol's own code (UPnP error, NAT-PMP result), or 0 */
    char reason[GNI_NATD_REASON_MAX]; /* what happened, for the log; "" on success */
    uint8_t ext_ip[4];              /* gateway: its public address; map: the same */
    uint16_t ext_port;              /* map: the external port granted */
    uint32_t lease_s;               /* map: the lease granted, seconds (0: permanent) */
} gni_natd_result;

typedef struct gni_natd_vtbl {
    const char *log;   /* component name, for log lines */
    /* Worker thread: find the gateway and its public address. */
    void (*gateway)(void *be, gni_natd_result *r);
    /* Worker thread: add (or renew) a mapping of @t for @lease_s seconds. */
    void (*map)(void *be, const gni_nat_target *t, uint32_t lease_s, gni_natd_result *r);
    /* Worker thread: delete the mapping of @t (made by map). */
    void (*unmap)(void *be, const gni_nat_target *t, gni_natd_result *r);
    /* Loop thread, when no job runs any more: frees @be. */
    void (*free)(void *be);
} gni_natd_vtbl;

typedef struct gni_natd gni_natd;

/**
 * Creates a driver for @n running @vt on backend state @be (owned by the
 * driver from now on, also on failure: vt->free(be) is called).
 * @lease_opt_s: the lease to ask for (0: the node's lifetime), clamped to
 * [@lease_min_s, @lease_max_s]. Errors: GN_ENOMEM.
 */
int gni_natd_new(gn_nat *n, const gni_natd_vtbl *vt, void *be, uint32_t lease_opt_s,
                 uint32_t lease_min_s, uint32_t lease_max_s, gni_natd **out);
/** Queues the gateway job. Errors: GN_ENOMEM, GN_EIO (uv_queue_work). */
int gni_natd_start(gni_natd *d);
/** gn_nat_ops.map: see nat.h. Errors: GN_ESTATE (stopped), gni_nat_target_parse's, GN_ENOMEM. */
int gni_natd_map(gni_natd *d, const gn_multiaddr *internal, gn_time lifetime, gn_nat_map_cb cb,
                 void *arg);
/** gn_nat_ops.unmap: queues the delete. Errors: GN_ENOTFOUND (no such mapping). */
int gni_natd_unmap(gni_natd *d, const gn_multiaddr *internal);
/**
 * gn_nat_ops.stop: maps not answered yet complete with GN_ECANCELED on a
 * later loop turn; mappings still made are deleted; no renewal after this.
 */
void gni_natd_stop(gni_natd *d);
/** Detaches (see above). NULL is a no-op. */
void gni_natd_free(gni_natd *d);

#endif /* GNI_NATD_UV_H */
