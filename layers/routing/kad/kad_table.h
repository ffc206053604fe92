/*
 * Kademlia routing table (sans-I/O core, private to the library).
 *
 * 256 k-buckets indexed by the common-prefix length (cpl) of a peer's key
 * with the local key (bucket i holds peers whose key shares exactly i
 * leading bits with ours; cpl 256 is the local key itself and never
 * stored). Each bucket holds at most k live entries ordered from least to
 * most recently seen, plus a bounded replacement cache of candidates that
 * arrived while the bucket was full.
 *
 * Insertion never evicts a live entry on its own (Kademlia paper, section
 * 2.2; libp2p kad-dht "Kademlia routing table"): when a new peer lands in a
 * full bucket, it goes to the replacement cache and the least recently seen
 * entry is reported as needing a liveness check. The caller pings it and
 * reports the outcome with gni_kad_table_check_result(): alive -> the entry
 * becomes most recently seen and the candidate stays in the cache; dead ->
 * the entry is removed and the newest cached candidate takes its place.
 *
 * Bounds (all configurable, see gni_kad_table_config): k live entries per
 * bucket, replacement_cnt cached candidates per bucket, max_entries live and
 * cached entries in all, max_addrs addresses per entry, each at most
 * GNI_KAD_ADDR_MAX_BYTES in binary form. Memory per entry: sizeof
 * (gni_kad_entry) (192 bytes on LP64) plus, per stored address, its
 * binary length and the gn_multiaddr header (about 32 bytes); with the
 * defaults at most 4096 x (192 + 4 x (256 + 32)) bytes, under 6 MiB, and in
 * practice far less (addresses are 10-40 bytes, and only about
 * log2(network size / k) buckets fill). The bucket array grows to the
 * highest cpl seen; a bucket's live slots grow by doubling up to k, and its
 * replacement cache (replacement_cnt slots) is allocated when it first fills.
 *
 * Time: every call that needs the time takes it as @now (gn_time,
 * monotonic ns). No I/O, no clock, no globals.
 * Thread context: one thread at a time per table (the router's loop
 * thread); no internal locking.
 * Spec: libp2p/specs kad-dht/README.md "Kademlia routing table",
 * "Bootstrap process"; Maymounkov & Mazieres 2002, sections 2.2 and 2.3
 * (docs/routing-kad.md).
 */
#ifndef GNI_KAD_TABLE_H
#define GNI_KAD_TABLE_H

#include "golemnet/common.h"
#include "golemnet/identity.h"
#include "golemnet/multiaddr.h"

#include "kad_key.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Number of buckets: one per common-prefix length 0..255. */
#define GNI_KAD_BUCKETS 256u
/** Default bucket size k (libp2p kad-dht replication parameter). */
#define GNI_KAD_K_DEFAULT 20u
/** Largest configurable k. */
#define GNI_KAD_K_MAX 256u
/** Default replacement-cache size per bucket. */
#define GNI_KAD_REPLACEMENTS_DEFAULT 8u
/** Default bound on live plus cached entries in the whole table. */
#define GNI_KAD_MAX_ENTRIES_DEFAULT 4096u
/** Largest configurable addresses per entry (and the default is 4). */
#define GNI_KAD_MAX_ADDRS 8u
#define GNI_KAD_ADDRS_DEFAULT 4u
/** Addresses longer than this (binary form) are not stored. */
#define GNI_KAD_ADDR_MAX_BYTES 256u
/** Default failed requests after which an entry is dropped. */
#define GNI_KAD_MAX_FAILURES_DEFAULT 3u
/** Default bucket refresh interval (go-libp2p-kad-dht: 10 minutes). */
#define GNI_KAD_REFRESH_DEFAULT (10u * 60u * GN_S)
/**
 * Highest cpl whose bucket is ever reported for refresh: finding a peer ID
 * whose key has a given cpl takes about 2^(cpl+1) hashes (go-libp2p-kad-dht
 * uses the same cap, 15).
 */
#define GNI_KAD_REFRESH_MAX_CPL 15u

/** Table parameters; fill with gni_kad_table_config_default() first. */
typedef struct gni_kad_table_config {
    size_t k;               /* live entries per bucket, 1..GNI_KAD_K_MAX */
    size_t replacement_cnt; /* cached candidates per bucket, 0..GNI_KAD_K_MAX */
    size_t max_entries;     /* live + cached entries in all, >= 1 */
    size_t max_addrs;       /* addresses per entry, 0..GNI_KAD_MAX_ADDRS */
    uint32_t max_failures;  /* gni_kad_table_failure() calls that drop an entry, >= 1 */
    gn_time refresh_interval; /* > 0 */
} gni_kad_table_config;

/** One known peer. Read-only for callers; borrowed until the table changes. */
typedef struct gni_kad_entry {
    gn_peer_id id;
    gni_kad_key key;            /* SHA-256 of id */
    gn_multiaddr *addrs[GNI_KAD_MAX_ADDRS]; /* oldest first, owned by the table */
    uint8_t naddrs;
    bool checking;              /* a liveness check was requested and not yet reported */
    uint32_t failed;            /* failed requests/checks since the last success */
    gn_time last_seen;          /* last time we heard from or about it */
    gn_time last_ok;            /* last successful response, 0 = never */
} gni_kad_entry;

typedef struct gni_kad_table gni_kad_table;

/** Results of gni_kad_table_add() (positive; errors are negative). */
enum {
    GNI_KAD_ADD_INSERTED = 1, /* new live entry */
    GNI_KAD_ADD_UPDATED = 2,  /* known live entry refreshed */
    GNI_KAD_ADD_CHECK = 3,    /* bucket full: candidate cached, *check must be pinged */
    GNI_KAD_ADD_CACHED = 4    /* bucket full, a check already pending: candidate cached */
};

/** gni_kad_table_add() flag: the peer answered a request of ours (sets last_ok). */
#define GNI_KAD_F_RESPONDED 0x1u

/** Fills @cfg with the defaults above. */
void gni_kad_table_config_default(gni_kad_table_config *cfg);

/**
 * Creates an empty table for the local peer @self. @cfg NULL selects the
 * defaults; it is copied. Every bucket's refresh clock starts at @now.
 * Errors: GN_EINVAL (NULL @self or @out, empty @self, a @cfg field out of
 * range), GN_ENOMEM. *@out is untouched on failure.
 */
int gni_kad_table_new(const gni_kad_table_config *cfg, const gn_peer_id *self, gn_time now,
                      gni_kad_table **out);

/** Frees the table and every entry; NULL is a no-op. */
void gni_kad_table_free(gni_kad_table *t);

/** The local key (SHA-256 of the local peer ID); valid while @t lives. */
const gni_kad_key *gni_kad_table_self(const gni_kad_table *t);

/** The bucket index of @key: its cpl with the local key, 0..255; 256 for the local key. */
unsigned gni_kad_table_cpl(const gni_kad_table *t, const gni_kad_key *key);

/**
 * Records contact with @peer at @now: inserts it or refreshes it, and
 * merges @addrs (@naddrs multiaddrs, copied; NULL allowed when @naddrs is
 * 0): addresses not yet known are appended, the oldest dropped beyond
 * max_addrs, ones over GNI_KAD_ADDR_MAX_BYTES skipped. @flags:
 * GNI_KAD_F_RESPONDED when the peer answered us (resets its failure count
 * and sets last_ok). A known live entry becomes the bucket's most recently
 * seen; a known cached candidate becomes the newest of its cache. An
 * address that cannot be copied (out of memory) is skipped.
 *
 * Returns GNI_KAD_ADD_INSERTED, GNI_KAD_ADD_UPDATED (a live entry), GNI_KAD_ADD_CHECK
 * (bucket full: the peer went to the replacement cache and *@check (may be
 * NULL) receives the least recently seen entry, now marked "checking"; the
 * caller must ping it and call gni_kad_table_check_result() once) or
 * GNI_KAD_ADD_CACHED (bucket full and a check is already pending there: the
 * peer went to the replacement cache only).
 * Errors: GN_EINVAL (NULL @t or @peer, empty peer ID, @peer is the local
 * peer), GN_ELIMIT (max_entries reached and nothing to give way),
 * GN_ENOMEM (bucket storage could not be allocated; the table is
 * unchanged).
 */
int gni_kad_table_add(gni_kad_table *t, const gn_peer_id *peer, gn_multiaddr *const *addrs,
                      size_t naddrs, unsigned flags, gn_time now, gn_peer_id *check);

/**
 * Reports the liveness check requested for @peer by gni_kad_table_add().
 * @alive: it answered at @now -> it becomes most recently seen (the cached
 * candidate stays cached). Dead -> it is removed and the newest cached
 * candidate of its bucket takes its place.
 * Returns 0 (alive recorded), 1 (dead: replaced or removed).
 * Errors: GN_EINVAL (NULL argument), GN_ENOTFOUND (@peer is not a live
 * entry with a pending check).
 */
int gni_kad_table_check_result(gni_kad_table *t, const gn_peer_id *peer, bool alive, gn_time now);

/**
 * Records a failed request to @peer (timeout, refused stream). After
 * max_failures consecutive failures the entry is removed and the newest
 * cached candidate of its bucket takes its place. A cached candidate that
 * fails is dropped at once.
 * Returns 0 (counted), 1 (removed).
 * Errors: GN_EINVAL (NULL argument), GN_ENOTFOUND (unknown peer).
 */
int gni_kad_table_failure(gni_kad_table *t, const gn_peer_id *peer, gn_time now);

/**
 * Removes @peer (live or cached). A live entry's place goes to the newest
 * cached candidate of its bucket.
 * Errors: GN_EINVAL (NULL argument), GN_ENOTFOUND (unknown peer).
 */
int gni_kad_table_remove(gni_kad_table *t, const gn_peer_id *peer);

/** The live entry of @peer, or NULL (cached candidates are not returned). */
const gni_kad_entry *gni_kad_table_find(const gni_kad_table *t, const gn_peer_id *peer);

/**
 * The @n live entries closest to @target by XOR distance, closest first,
 * into @out (array of @n; borrowed until the table changes). Returns the
 * count, at most @n and at most the number of live entries. Ties cannot
 * happen (distinct keys have distinct distances). O(entries x n) worst case.
 */
size_t gni_kad_table_closest(const gni_kad_table *t, const gni_kad_key *target, size_t n,
                             const gni_kad_entry **out);

/** Live entries in all. */
size_t gni_kad_table_count(const gni_kad_table *t);
/** Live entries, and cached candidates, of bucket @cpl (0 when out of range). */
size_t gni_kad_table_bucket_count(const gni_kad_table *t, unsigned cpl);
size_t gni_kad_table_cached_count(const gni_kad_table *t, unsigned cpl);
/**
 * The @i-th live entry of bucket @cpl, least recently seen first, or NULL
 * when out of range. Borrowed until the table changes.
 */
const gni_kad_entry *gni_kad_table_bucket_entry(const gni_kad_table *t, unsigned cpl, size_t i);

/**
 * Buckets due for a refresh at @now: those with cpl 0..min(highest non-empty
 * cpl, GNI_KAD_REFRESH_MAX_CPL) whose refresh clock is refresh_interval or
 * more old. Writes up to @max cpls, lowest first, into @cpls and returns
 * how many are due (may exceed @max). The caller runs a lookup for a random
 * key in each (gni_kad_table_random_peer()) and then calls
 * gni_kad_table_refreshed().
 */
size_t gni_kad_table_refresh_due(const gni_kad_table *t, gn_time now, unsigned *cpls, size_t max);

/** Restarts bucket @cpl's refresh clock at @now (a lookup ran in it). No-op when out of range. */
void gni_kad_table_refreshed(gni_kad_table *t, unsigned cpl, gn_time now);

/** Earliest time a bucket becomes due for refresh (GN_TIME_INFINITY: never). */
gn_time gni_kad_table_next_refresh(const gni_kad_table *t);

/**
 * A random peer ID (a sha2-256 multihash of random bytes from @rng) whose
 * key has cpl exactly @cpl with the local key, for refresh lookups (FIND_NODE
 * takes a peer ID on the wire). Tries at most @max_tries candidates
 * (about 2^(@cpl+1) are needed on average).
 * Errors: GN_EINVAL (NULL argument, @cpl > GNI_KAD_REFRESH_MAX_CPL),
 * GN_ELIMIT (no match within @max_tries).
 */
int gni_kad_table_random_peer(const gni_kad_table *t, unsigned cpl, const gn_rng *rng,
                              size_t max_tries, gn_peer_id *out);

#endif /* GNI_KAD_TABLE_H */
