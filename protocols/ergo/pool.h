/*
 * golemnet - the Ergo connection pool (private to the library).
 *
 * A logical connection between two Ergo nodes is a pool of TCP links
 * (Ergo's default 3): the main link that ran the Start handshake and
 * PoolSize - 1 links the dialling side adds with Join handshakes. This
 * sans-I/O core keeps the set of live links of one connection and answers:
 *  - which link a frame goes out on: from.ID mod 255 mod links when the
 *    sender keeps network order (so one sender's frames stay on one link
 *    and arrive in order), round robin otherwise or for from.ID mod 255 = 0;
 *  - when the dialler must dial (the initial joins to PoolDSN[i mod len],
 *    replacements of lost links to a random DSN with the same ID; the
 *    acceptor never dials);
 *  - when the connection is over (its last link closed).
 * Links are the adapter's opaque 64-bit ids. No I/O, no clock, no globals.
 *
 * Spec: shared/specs/ergo-wire.md section b "Pool", section c "Order byte,
 * links and receive queues". Design and limits: docs/ergo.md "Pool".
 */
#ifndef GNI_POOL_H
#define GNI_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "golemnet/common.h"

#define GNI_POOL_MAX 64u /* = GNI_EHS_POOL_MAX */

typedef struct gni_pool {
    bool dialler;
    bool ended;
    uint32_t size;     /* links wanted (the acceptor's PoolSize, 1..GNI_POOL_MAX) */
    uint32_t nlinks;   /* links attached */
    uint32_t dialing;  /* joins in flight (dialler) */
    uint32_t ndsn;     /* PoolDSN entries known (dialler) */
    uint32_t initial;  /* initial joins started (link i = 1 .. size-1) */
    uint32_t rr;       /* round-robin cursor */
    uint64_t link[GNI_POOL_MAX];
} gni_pool;

/**
 * Starts a connection whose main link @main is up. @size: the pool size
 * (clamped to 1..GNI_POOL_MAX); @ndsn: PoolDSN entries (dialler; 0 makes
 * the dialler dial nothing). Returns 0 or GN_EINVAL.
 */
int gni_pool_init(gni_pool *p, bool dialler, uint32_t size, uint32_t ndsn, uint64_t main);

/**
 * Dialler: whether to start one more Join now; *@dsn_idx receives the
 * PoolDSN index to dial (initial link i: i mod ndsn; replacements:
 * random through @rng). Call until false. Counts the join as in flight.
 */
bool gni_pool_want_dial(gni_pool *p, const gn_rng *rng, uint32_t *dsn_idx);

/** A join started by gni_pool_want_dial() failed (the link never came up). */
void gni_pool_dial_failed(gni_pool *p);

/**
 * A joined link is up (dialler: a join finished; acceptor: a Join with this
 * connection's ID and node arrived). Returns 0; GN_ELIMIT when a dialler's pool
 * already has @size links, or an acceptor's GNI_POOL_MAX (it takes more
 * than PoolSize: a replacement join may arrive before it saw the lost
 * link's end); GN_ESTATE
 * when the connection ended; GN_EEXIST for a link already attached.
 */
int gni_pool_attach(gni_pool *p, uint64_t link);

/**
 * Link @link closed. Returns true when it was the last one: the connection
 * is over (node down for the peer's processes). Unknown links are ignored.
 */
bool gni_pool_detach(gni_pool *p, uint64_t link);

/**
 * The link for a frame from local process @from_id: with @keep_order
 * (KeepNetworkOrder, Ergo's default) and from_id mod 255 != 0 the link
 * (from_id mod 255) mod nlinks, else round robin. Returns 0 and *@link, or
 * GN_ECLOSED when no link is up.
 */
int gni_pool_pick(gni_pool *p, uint64_t from_id, bool keep_order, uint64_t *link);

#endif /* GNI_POOL_H */
