/*
 * Kademlia iterative lookup (sans-I/O core, private to the library).
 *
 * A state machine that finds the k peers closest to a target key. The
 * caller seeds it with the closest peers of its routing table, then loops:
 * gni_kad_lookup_next() hands out peers to query (at most alpha in
 * flight), the caller sends each a FIND_NODE (or GET_VALUE, GET_PROVIDERS)
 * and reports the answer with gni_kad_lookup_response() (the closer peers
 * it returned) or gni_kad_lookup_failure(); gni_kad_lookup_tick() expires
 * requests older than request_timeout and the whole lookup after
 * query_timeout; gni_kad_lookup_deadline() says when to tick next.
 *
 * Candidates are kept sorted by XOR distance to the target, each in one of
 * four states: heard of, waiting (request in flight), succeeded, failed.
 * Only heard-of peers among the k closest not-failed candidates are
 * queried. The lookup ends (libp2p kad-dht "Peer routing", step 1;
 * Kademlia paper section 2.3) when the k closest not-failed candidates have
 * all answered -- which also covers running out of candidates (fewer than k
 * peers known, all answered) and the paper's "no progress" case (answers
 * stop bringing closer peers: the unasked among the k closest are asked,
 * nobody farther) -- or at query_timeout. Results are the k
 * closest peers that answered.
 *
 * Peers reported by remote peers are attacker-controlled: the candidate set
 * holds at most max_candidates peers; when full, a new peer displaces the
 * farthest heard-of (never queried) candidate if it is closer, otherwise it
 * is dropped. Queried candidates are never displaced, so no peer is queried
 * twice and a lookup sends at most max_candidates requests. Duplicates and
 * the local peer are ignored.
 *
 * Time is an argument (gn_time, monotonic ns); no I/O, no clock, no
 * globals. One thread at a time per lookup.
 * Memory: one allocation of max_candidates x about 112 bytes (default 200
 * candidates: about 22 KiB) plus the struct.
 * Spec: libp2p/specs kad-dht/README.md "Alpha concurrency parameter",
 * "Peer routing"; docs/routing-kad.md.
 */
#ifndef GNI_KAD_LOOKUP_H
#define GNI_KAD_LOOKUP_H

#include "golemnet/common.h"
#include "golemnet/identity.h"

#include "kad_key.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GNI_KAD_ALPHA_DEFAULT 3u
#define GNI_KAD_LOOKUP_K_DEFAULT 20u
/** Default candidate-set bound: 10 x k. */
#define GNI_KAD_CANDIDATES_DEFAULT 200u
/** Largest configurable candidate set. */
#define GNI_KAD_CANDIDATES_MAX 4096u
/** Default per-request timeout (rust-libp2p's request timeout). */
#define GNI_KAD_REQUEST_TIMEOUT_DEFAULT (10u * GN_S)
/** Default whole-lookup timeout (rust-libp2p's query timeout). */
#define GNI_KAD_QUERY_TIMEOUT_DEFAULT (60u * GN_S)

typedef struct gni_kad_lookup_config {
    size_t k;              /* results wanted, 1..max_candidates */
    size_t alpha;          /* requests in flight, >= 1 */
    size_t max_candidates; /* candidate-set bound, k..GNI_KAD_CANDIDATES_MAX */
    gn_time request_timeout; /* > 0 */
    gn_time query_timeout;   /* > 0; GN_TIME_INFINITY disables it */
} gni_kad_lookup_config;

/** Counters, for tests and metrics. */
typedef struct gni_kad_lookup_stats {
    size_t requests;  /* peers handed out by gni_kad_lookup_next() */
    size_t responses; /* answers accepted */
    size_t failures;  /* gni_kad_lookup_failure() calls accepted */
    size_t timeouts;  /* requests expired by gni_kad_lookup_tick() */
    size_t dropped;   /* reported peers dropped or displaced by the candidate bound */
    size_t hops;      /* hops to the closest result: 1 = a seed, 2 = a peer a seed named, ... */
} gni_kad_lookup_stats;

typedef struct gni_kad_lookup gni_kad_lookup;

/** Fills @cfg with the defaults above. */
void gni_kad_lookup_config_default(gni_kad_lookup_config *cfg);

/**
 * Starts a lookup for @target at @now. @cfg NULL selects the defaults; it is
 * copied. @self (may be NULL) is the local peer, never queried.
 * Errors: GN_EINVAL (NULL @target or @out, a @cfg field out of range),
 * GN_ENOMEM. *@out is untouched on failure.
 */
int gni_kad_lookup_new(const gni_kad_lookup_config *cfg, const gni_kad_key *target,
                       const gn_peer_id *self, gn_time now, gni_kad_lookup **out);

/** Frees it; NULL is a no-op. Requests still in flight are simply forgotten. */
void gni_kad_lookup_free(gni_kad_lookup *l);

/**
 * Adds @n seed peers (array of @n, copied), usually the routing table's k
 * closest to the target (the spec's minimum is alpha). Duplicates, the
 * local peer and empty IDs are skipped. Returns the number added.
 * Errors: GN_EINVAL (NULL @l, or NULL @peers with @n > 0), GN_ESTATE (the
 * lookup is over).
 */
int gni_kad_lookup_seed(gni_kad_lookup *l, const gn_peer_id *peers, size_t n);

/**
 * The next peer to query at @now, into *@peer: returns 1 and marks it in
 * flight (deadline @now + request_timeout). Returns 0 when nothing is to be
 * sent now: alpha requests in flight, no candidate left to ask among the k
 * closest, or the lookup is over (gni_kad_lookup_done()). Call it until it
 * returns 0 after every start, response, failure and tick.
 * Errors: GN_EINVAL (NULL argument).
 */
int gni_kad_lookup_next(gni_kad_lookup *l, gn_time now, gn_peer_id *peer);

/**
 * @peer answered with @n closer peers (array of @n; may be NULL when @n is
 * 0). A peer whose request had timed out is accepted too (late answer).
 * Returns the number of new candidates added.
 * Errors: GN_EINVAL (NULL argument), GN_ENOTFOUND (@peer was not queried, or
 * already answered or failed), GN_ESTATE (the lookup is over; the answer is
 * ignored).
 */
int gni_kad_lookup_response(gni_kad_lookup *l, const gn_peer_id *peer,
                            const gn_peer_id *closer, size_t n, gn_time now);

/**
 * The request to @peer failed (stream error, bad answer); the peer is not
 * queried again nor returned.
 * Errors: GN_EINVAL, GN_ENOTFOUND (@peer has no request in flight),
 * GN_ESTATE (the lookup is over).
 */
int gni_kad_lookup_failure(gni_kad_lookup *l, const gn_peer_id *peer, gn_time now);

/**
 * Expires requests whose deadline is at or before @now (they count as
 * failed, but a late answer is still accepted) and ends the lookup when
 * query_timeout has passed. Safe to call at any time.
 */
void gni_kad_lookup_tick(gni_kad_lookup *l, gn_time now);

/** Earliest time gni_kad_lookup_tick() has work; GN_TIME_INFINITY when over. */
gn_time gni_kad_lookup_deadline(const gni_kad_lookup *l);

/** True once the lookup is over (see the header comment). */
bool gni_kad_lookup_done(const gni_kad_lookup *l);

/**
 * Outcome once over: 0 (the k closest known peers answered, or every peer
 * known answered), GN_ETIMEDOUT (query_timeout: results are partial),
 * GN_ENOROUTE (no peer answered: no seed, or all failed). GN_EAGAIN while
 * running.
 */
int gni_kad_lookup_status(const gni_kad_lookup *l);

/**
 * The closest peers that answered, closest first, at most @max (usually k)
 * into @out (array of @max). Valid at any time (partial while running).
 * Returns the count.
 */
size_t gni_kad_lookup_results(const gni_kad_lookup *l, gn_peer_id *out, size_t max);

/** Copies the counters into *@st. */
void gni_kad_lookup_stats_get(const gni_kad_lookup *l, gni_kad_lookup_stats *st);

#endif /* GNI_KAD_LOOKUP_H */
