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
 *  - when the connection is over (its last link closed);
 *  - how long replacement joins wait (back-off): the first replacement
 *    after a quiet period is immediate, as in Ergo; after a link that
 *    lived less than GNI_POOL_STABLE or a join that failed, the next waits
 *    GNI_POOL_BACKOFF_MIN, doubling up to GNI_POOL_BACKOFF_MAX; a link
 *    that stays up GNI_POOL_STABLE (attached after the last failure)
 *    resets it. This bounds the re-join rate against an acceptor that
 *    answers a Join and then closes the link.
 * Links are the adapter's opaque 64-bit ids. Time is an argument (gn_time,
 * monotonic). No I/O, no clock, no globals.
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
#define GNI_POOL_STABLE (2 * GN_S)            /* a link up this long was a success */
#define GNI_POOL_BACKOFF_MIN (200 * GN_MS)    /* the first held replacement waits this */
#define GNI_POOL_BACKOFF_MAX (5 * GN_S)       /* doubling stops here */

typedef struct gni_pool {
    bool dialler;
    bool ended;
    uint32_t size;     /* links wanted (the acceptor's PoolSize, 1..GNI_POOL_MAX) */
    uint32_t nlinks;   /* links attached */
    uint32_t dialing;  /* joins in flight (dialler) */
    uint32_t ndsn;     /* PoolDSN entries known (dialler) */
    uint32_t initial;  /* initial joins started (link i = 1 .. size-1) */
    uint32_t rr;       /* round-robin cursor */
    uint32_t fails;    /* short-lived links and failed joins since the last success */
    gn_time fail_at;   /* the last of them */
    gn_time hold_until; /* replacement joins wait until then */
    uint64_t link[GNI_POOL_MAX];
    gn_time since[GNI_POOL_MAX]; /* when each link was attached */
} gni_pool;

/**
 * Starts a connection whose main link @main is up since @now. @size: the
 * pool size (clamped to 1..GNI_POOL_MAX); @ndsn: PoolDSN entries
 * (dialler; 0 makes the dialler dial nothing). Returns 0 or GN_EINVAL.
 */
int gni_pool_init(gni_pool *p, bool dialler, uint32_t size, uint32_t ndsn, uint64_t main,
                  gn_time now);

/**
 * Dialler: whether to start one more Join at @now; *@dsn_idx receives the
 * PoolDSN index to dial (initial link i: i mod ndsn; replacements:
 * random through @rng). Call until false. Counts the join as in flight.
 * Replacements are held by the back-off: see gni_pool_dial_deadline().
 */
bool gni_pool_want_dial(gni_pool *p, const gn_rng *rng, gn_time now, uint32_t *dsn_idx);

/**
 * When gni_pool_want_dial() will next want a replacement that the back-off
 * holds now (the adapter arms a timer for it); GN_TIME_INFINITY when no
 * join is held (none wanted, or one may start at once).
 */
gn_time gni_pool_dial_deadline(const gni_pool *p, gn_time now);

/** A join started by gni_pool_want_dial() failed at @now (the link never came up). */
void gni_pool_dial_failed(gni_pool *p, gn_time now);

/**
 * A joined link is up at @now (dialler: a join finished; acceptor: a Join
 * with this connection's ID and node arrived). Returns 0; GN_ELIMIT when a dialler's pool
 * already has @size links, or an acceptor's GNI_POOL_MAX (it takes more
 * than PoolSize: a replacement join may arrive before it saw the lost
 * link's end); GN_ESTATE
 * when the connection ended; GN_EEXIST for a link already attached.
 */
int gni_pool_attach(gni_pool *p, uint64_t link, gn_time now);

/**
 * Link @link closed at @now. Returns true when it was the last one: the
 * connection is over (node down for the peer's processes). Unknown links
 * are ignored. A link that lived less than GNI_POOL_STABLE counts as a
 * failure for the back-off.
 */
bool gni_pool_detach(gni_pool *p, uint64_t link, gn_time now);

/**
 * The link for a frame from local process @from_id: with @keep_order
 * (KeepNetworkOrder, Ergo's default) and from_id mod 255 != 0 the link
 * (from_id mod 255) mod nlinks, else round robin. Returns 0 and *@link, or
 * GN_ECLOSED when no link is up.
 */
int gni_pool_pick(gni_pool *p, uint64_t from_id, bool keep_order, uint64_t *link);

#endif /* GNI_POOL_H */
