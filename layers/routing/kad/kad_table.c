/*
 * Kademlia routing table: up to 256 buckets, each an array of live entries
 * (least recently seen first) that grows by doubling up to k, and an array
 * of replacement_cnt cached candidates (oldest first) allocated when the
 * bucket first fills. The bucket array itself grows to the highest cpl
 * seen (a few dozen at most in practice), so an empty table costs a few
 * hundred bytes and a bucket only what it holds: a node of a 10,000-node
 * simulation keeps its table in about 40 KiB. Entries move by value
 * (memmove) when their order changes; k is small (20), so this beats
 * pointer chasing and keeps every bound explicit.
 */
#include "kad_table.h"

#include "gni.h"

#include <string.h>

typedef struct kad_bucket {
    gni_kad_entry *slots; /* live entries; capacity cap (grows up to k) */
    gni_kad_entry *cache; /* replacement_cnt cached slots, once the bucket filled */
    uint32_t nlive, ncache, cap;
} kad_bucket;

struct gni_kad_table {
    gni_kad_table_config cfg;
    gn_peer_id self_id;
    gni_kad_key self;
    size_t nlive, ncache; /* totals over all buckets */
    kad_bucket *buckets;  /* cpl 0 .. nbuckets - 1 */
    size_t nbuckets;
    gn_time refreshed[GNI_KAD_REFRESH_MAX_CPL + 1]; /* the buckets a refresh covers */
};

/* Bucket @cpl, or NULL when the array does not reach it yet. */
static kad_bucket *kad_bucket_at(const gni_kad_table *t, unsigned cpl)
{
    return cpl < t->nbuckets ? &t->buckets[cpl] : NULL;
}

/* Bucket @cpl, growing the array to reach it. NULL: out of memory. */
static kad_bucket *kad_bucket_make(gni_kad_table *t, unsigned cpl)
{
    if (cpl < t->nbuckets) {
        return &t->buckets[cpl];
    }
    kad_bucket *g = gn_realloc(t->buckets, (cpl + 1) * sizeof *g);
    if (!g) {
        return NULL;
    }
    memset(&g[t->nbuckets], 0, (cpl + 1 - t->nbuckets) * sizeof *g);
    t->buckets = g;
    t->nbuckets = cpl + 1;
    return &g[cpl];
}

/* Room for one more live entry in @b (nlive < k). Errors: GN_ENOMEM. */
static int kad_live_room(const gni_kad_table *t, kad_bucket *b)
{
    if (b->nlive < b->cap) {
        return 0;
    }
    uint32_t cap = b->cap ? b->cap * 2 : 2;
    cap = cap > t->cfg.k ? (uint32_t)t->cfg.k : cap;
    gni_kad_entry *g = gn_realloc(b->slots, cap * sizeof *g);
    if (!g) {
        return GN_ENOMEM;
    }
    memset(&g[b->cap], 0, (cap - b->cap) * sizeof *g);
    b->slots = g;
    b->cap = cap;
    return 0;
}

void gni_kad_table_config_default(gni_kad_table_config *cfg)
{
    cfg->k = GNI_KAD_K_DEFAULT;
    cfg->replacement_cnt = GNI_KAD_REPLACEMENTS_DEFAULT;
    cfg->max_entries = GNI_KAD_MAX_ENTRIES_DEFAULT;
    cfg->max_addrs = GNI_KAD_ADDRS_DEFAULT;
    cfg->max_failures = GNI_KAD_MAX_FAILURES_DEFAULT;
    cfg->refresh_interval = GNI_KAD_REFRESH_DEFAULT;
}

int gni_kad_table_new(const gni_kad_table_config *cfg, const gn_peer_id *self, gn_time now,
                      gni_kad_table **out)
{
    gni_kad_table_config c;
    if (!self || !out || self->len == 0 || self->len > GN_PEER_ID_MAX_BYTES) {
        return GN_EINVAL;
    }
    if (cfg) {
        c = *cfg;
    } else {
        gni_kad_table_config_default(&c);
    }
    if (c.k == 0 || c.k > GNI_KAD_K_MAX || c.replacement_cnt > GNI_KAD_K_MAX ||
        c.max_entries == 0 || c.max_addrs > GNI_KAD_MAX_ADDRS || c.max_failures == 0 ||
        c.refresh_interval == 0) {
        return GN_EINVAL;
    }
    gni_kad_table *t = gn_calloc(1, sizeof *t);
    if (!t) {
        return GN_ENOMEM;
    }
    t->cfg = c;
    t->self_id = *self;
    gni_kad_key_from_peer(self, &t->self);
    for (size_t i = 0; i <= GNI_KAD_REFRESH_MAX_CPL; i++) {
        t->refreshed[i] = now;
    }
    *out = t;
    return 0;
}

static void kad_entry_clear(gni_kad_entry *e)
{
    for (size_t i = 0; i < e->naddrs; i++) {
        gn_multiaddr_free(e->addrs[i]);
    }
    memset(e, 0, sizeof *e);
}

void gni_kad_table_free(gni_kad_table *t)
{
    if (!t) {
        return;
    }
    for (size_t i = 0; i < t->nbuckets; i++) {
        kad_bucket *b = &t->buckets[i];
        for (size_t j = 0; j < b->nlive; j++) {
            kad_entry_clear(&b->slots[j]);
        }
        for (size_t j = 0; j < b->ncache; j++) {
            kad_entry_clear(&b->cache[j]);
        }
        gn_free(b->slots);
        gn_free(b->cache);
    }
    gn_free(t->buckets);
    gn_free(t);
}

const gni_kad_key *gni_kad_table_self(const gni_kad_table *t)
{
    return &t->self;
}

unsigned gni_kad_table_cpl(const gni_kad_table *t, const gni_kad_key *key)
{
    return gni_kad_cpl(&t->self, key);
}

static gni_kad_entry *kad_cache(const gni_kad_table *t, const kad_bucket *b)
{
    (void)t;
    return b->cache;
}

/* Index of @id among @n entries at @arr, or -1. */
static long kad_index(const gni_kad_entry *arr, size_t n, const gni_kad_key *key,
                      const gn_peer_id *id)
{
    for (size_t i = 0; i < n; i++) {
        if (memcmp(arr[i].key.b, key->b, GNI_KAD_KEY_BYTES) == 0 &&
            gn_peer_id_equal(&arr[i].id, id)) {
            return (long)i;
        }
    }
    return -1;
}

/* Moves arr[i] to arr[n-1], shifting the ones after it down. */
static void kad_to_tail(gni_kad_entry *arr, size_t n, size_t i)
{
    if (i + 1 >= n) {
        return;
    }
    gni_kad_entry tmp = arr[i];
    memmove(&arr[i], &arr[i + 1], (n - i - 1) * sizeof *arr);
    arr[n - 1] = tmp;
}

/* Removes arr[i] (already cleared or moved out) from @n entries. */
static void kad_del(gni_kad_entry *arr, size_t n, size_t i)
{
    memmove(&arr[i], &arr[i + 1], (n - i - 1) * sizeof *arr);
    memset(&arr[n - 1], 0, sizeof *arr);
}

static void kad_merge_addrs(const gni_kad_table *t, gni_kad_entry *e,
                            gn_multiaddr *const *addrs, size_t naddrs)
{
    if (t->cfg.max_addrs == 0) {
        return;
    }
    for (size_t i = 0; i < naddrs; i++) {
        if (!addrs[i] || gn_multiaddr_bytes(addrs[i]).len > GNI_KAD_ADDR_MAX_BYTES) {
            continue;
        }
        bool known = false;
        for (size_t j = 0; j < e->naddrs && !known; j++) {
            known = gn_multiaddr_equal(e->addrs[j], addrs[i]);
        }
        if (known) {
            continue;
        }
        gn_multiaddr *dup = NULL;
        if (gn_multiaddr_dup(addrs[i], &dup) < 0) {
            continue;
        }
        if (e->naddrs == t->cfg.max_addrs) {
            gn_multiaddr_free(e->addrs[0]);
            memmove(&e->addrs[0], &e->addrs[1], (size_t)(e->naddrs - 1) * sizeof e->addrs[0]);
            e->naddrs--;
        }
        e->addrs[e->naddrs++] = dup;
    }
}

static void kad_touch(gni_kad_entry *e, unsigned flags, gn_time now)
{
    e->last_seen = now;
    if (flags & GNI_KAD_F_RESPONDED) {
        e->last_ok = now;
        e->failed = 0;
    }
}

/* Removes live entry @i of @b; the newest cached candidate takes its place. */
static void kad_remove_live(gni_kad_table *t, kad_bucket *b, size_t i)
{
    kad_entry_clear(&b->slots[i]);
    kad_del(b->slots, b->nlive, i);
    b->nlive--;
    t->nlive--;
    if (b->ncache > 0) {
        gni_kad_entry *cache = kad_cache(t, b);
        b->slots[b->nlive] = cache[b->ncache - 1];
        b->slots[b->nlive].checking = false;
        memset(&cache[b->ncache - 1], 0, sizeof *cache);
        b->ncache--;
        t->ncache--;
        b->nlive++;
        t->nlive++;
    }
}

static void kad_remove_cached(gni_kad_table *t, kad_bucket *b, size_t i)
{
    gni_kad_entry *cache = kad_cache(t, b);
    kad_entry_clear(&cache[i]);
    kad_del(cache, b->ncache, i);
    b->ncache--;
    t->ncache--;
}

static bool kad_bucket_checking(const kad_bucket *b)
{
    for (size_t i = 0; i < b->nlive; i++) {
        if (b->slots[i].checking) {
            return true;
        }
    }
    return false;
}

int gni_kad_table_add(gni_kad_table *t, const gn_peer_id *peer, gn_multiaddr *const *addrs,
                      size_t naddrs, unsigned flags, gn_time now, gn_peer_id *check)
{
    if (!t || !peer || peer->len == 0 || peer->len > GN_PEER_ID_MAX_BYTES ||
        (naddrs > 0 && !addrs)) {
        return GN_EINVAL;
    }
    gni_kad_key key;
    gni_kad_key_from_peer(peer, &key);
    unsigned cpl = gni_kad_cpl(&t->self, &key);
    if (cpl >= GNI_KAD_BUCKETS || gn_peer_id_equal(peer, &t->self_id)) {
        return GN_EINVAL;
    }
    kad_bucket *b = kad_bucket_make(t, cpl);
    if (!b) {
        return GN_ENOMEM;
    }
    long i = kad_index(b->slots, b->nlive, &key, peer);
    if (i >= 0) {
        gni_kad_entry *e = &b->slots[i];
        kad_touch(e, flags, now);
        kad_merge_addrs(t, e, addrs, naddrs);
        kad_to_tail(b->slots, b->nlive, (size_t)i);
        return GNI_KAD_ADD_UPDATED;
    }
    gni_kad_entry *cache = kad_cache(t, b);
    long ci = kad_index(cache, b->ncache, &key, peer);
    if (b->nlive < t->cfg.k) {
        if (kad_live_room(t, b) < 0) {
            return GN_ENOMEM;
        }
        gni_kad_entry *e = &b->slots[b->nlive];
        if (ci >= 0) {
            /* promote the cached candidate: no change in the total */
            *e = cache[ci];
            kad_del(cache, b->ncache, (size_t)ci);
            b->ncache--;
            t->ncache--;
        } else {
            if (t->nlive + t->ncache >= t->cfg.max_entries) {
                return GN_ELIMIT;
            }
            memset(e, 0, sizeof *e);
            e->id = *peer;
            e->key = key;
        }
        e->checking = false;
        kad_touch(e, flags, now);
        kad_merge_addrs(t, e, addrs, naddrs);
        b->nlive++;
        t->nlive++;
        return GNI_KAD_ADD_INSERTED;
    }
    /* full bucket: the candidate waits in the replacement cache */
    if (ci >= 0) {
        gni_kad_entry *e = &cache[ci];
        kad_touch(e, flags, now);
        kad_merge_addrs(t, e, addrs, naddrs);
        kad_to_tail(cache, b->ncache, (size_t)ci);
    } else if (t->cfg.replacement_cnt > 0) {
        if (!b->cache) {
            if (!(b->cache = gn_calloc(t->cfg.replacement_cnt, sizeof *b->cache))) {
                return GN_ENOMEM;
            }
            cache = b->cache;
        }
        if (b->ncache == t->cfg.replacement_cnt) {
            kad_remove_cached(t, b, 0); /* the oldest candidate gives way */
        } else if (t->nlive + t->ncache >= t->cfg.max_entries) {
            return GN_ELIMIT;
        }
        gni_kad_entry *e = &cache[b->ncache];
        memset(e, 0, sizeof *e);
        e->id = *peer;
        e->key = key;
        kad_touch(e, flags, now);
        kad_merge_addrs(t, e, addrs, naddrs);
        b->ncache++;
        t->ncache++;
    }
    if (kad_bucket_checking(b)) {
        return GNI_KAD_ADD_CACHED;
    }
    b->slots[0].checking = true;
    if (check) {
        *check = b->slots[0].id;
    }
    return GNI_KAD_ADD_CHECK;
}

/* Finds @peer: its bucket, and its index among live (*cached false) or cached entries. */
static bool kad_locate(const gni_kad_table *t, const gn_peer_id *peer, kad_bucket **bucket,
                       size_t *idx, bool *cached)
{
    gni_kad_key key;
    gni_kad_key_from_peer(peer, &key);
    unsigned cpl = gni_kad_cpl(&t->self, &key);
    if (cpl >= GNI_KAD_BUCKETS) {
        return false;
    }
    kad_bucket *b = kad_bucket_at(t, cpl);
    if (!b || (!b->slots && !b->cache)) {
        return false;
    }
    long i = kad_index(b->slots, b->nlive, &key, peer);
    *cached = false;
    if (i < 0) {
        i = kad_index(kad_cache(t, b), b->ncache, &key, peer);
        *cached = true;
    }
    if (i < 0) {
        return false;
    }
    *bucket = b;
    *idx = (size_t)i;
    return true;
}

int gni_kad_table_check_result(gni_kad_table *t, const gn_peer_id *peer, bool alive, gn_time now)
{
    if (!t || !peer) {
        return GN_EINVAL;
    }
    kad_bucket *b;
    size_t i;
    bool cached;
    if (!kad_locate(t, peer, &b, &i, &cached) || cached || !b->slots[i].checking) {
        return GN_ENOTFOUND;
    }
    if (!alive) {
        kad_remove_live(t, b, i);
        return 1;
    }
    gni_kad_entry *e = &b->slots[i];
    e->checking = false;
    kad_touch(e, GNI_KAD_F_RESPONDED, now);
    kad_to_tail(b->slots, b->nlive, i);
    return 0;
}

int gni_kad_table_failure(gni_kad_table *t, const gn_peer_id *peer, gn_time now)
{
    (void)now;
    if (!t || !peer) {
        return GN_EINVAL;
    }
    kad_bucket *b;
    size_t i;
    bool cached;
    if (!kad_locate(t, peer, &b, &i, &cached)) {
        return GN_ENOTFOUND;
    }
    if (cached) {
        kad_remove_cached(t, b, i);
        return 1;
    }
    gni_kad_entry *e = &b->slots[i];
    if (e->failed < UINT32_MAX) {
        e->failed++;
    }
    if (e->failed >= t->cfg.max_failures) {
        kad_remove_live(t, b, i);
        return 1;
    }
    return 0;
}

int gni_kad_table_remove(gni_kad_table *t, const gn_peer_id *peer)
{
    if (!t || !peer) {
        return GN_EINVAL;
    }
    kad_bucket *b;
    size_t i;
    bool cached;
    if (!kad_locate(t, peer, &b, &i, &cached)) {
        return GN_ENOTFOUND;
    }
    if (cached) {
        kad_remove_cached(t, b, i);
    } else {
        kad_remove_live(t, b, i);
    }
    return 0;
}

const gni_kad_entry *gni_kad_table_find(const gni_kad_table *t, const gn_peer_id *peer)
{
    kad_bucket *b;
    size_t i;
    bool cached;
    if (!t || !peer || !kad_locate(t, peer, &b, &i, &cached) || cached) {
        return NULL;
    }
    return &b->slots[i];
}

size_t gni_kad_table_closest(const gni_kad_table *t, const gni_kad_key *target, size_t n,
                             const gni_kad_entry **out)
{
    size_t cnt = 0;
    if (!t || !target || !out || n == 0) {
        return 0;
    }
    for (size_t bi = 0; bi < t->nbuckets; bi++) {
        const kad_bucket *b = &t->buckets[bi];
        for (size_t j = 0; j < b->nlive; j++) {
            const gni_kad_entry *e = &b->slots[j];
            if (cnt == n && gni_kad_cmp_distance(target, &e->key, &out[cnt - 1]->key) >= 0) {
                continue;
            }
            /* binary search for the insertion point among out[0..cnt) */
            size_t lo = 0, hi = cnt;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (gni_kad_cmp_distance(target, &out[mid]->key, &e->key) < 0) {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            size_t keep = cnt == n ? n - 1 : cnt;
            memmove(&out[lo + 1], &out[lo], (keep - lo) * sizeof *out);
            out[lo] = e;
            if (cnt < n) {
                cnt++;
            }
        }
    }
    return cnt;
}

size_t gni_kad_table_count(const gni_kad_table *t)
{
    return t ? t->nlive : 0;
}

size_t gni_kad_table_bucket_count(const gni_kad_table *t, unsigned cpl)
{
    const kad_bucket *b = t ? kad_bucket_at(t, cpl) : NULL;
    return b ? b->nlive : 0;
}

size_t gni_kad_table_cached_count(const gni_kad_table *t, unsigned cpl)
{
    const kad_bucket *b = t ? kad_bucket_at(t, cpl) : NULL;
    return b ? b->ncache : 0;
}

const gni_kad_entry *gni_kad_table_bucket_entry(const gni_kad_table *t, unsigned cpl, size_t i)
{
    const kad_bucket *b = t ? kad_bucket_at(t, cpl) : NULL;
    if (!b || i >= b->nlive) {
        return NULL;
    }
    return &b->slots[i];
}

/* Highest cpl a refresh covers, or -1 when the table is empty. */
static int kad_refresh_limit(const gni_kad_table *t)
{
    for (int i = (int)t->nbuckets - 1; i >= 0; i--) {
        if (t->buckets[i].nlive > 0) {
            return i > (int)GNI_KAD_REFRESH_MAX_CPL ? (int)GNI_KAD_REFRESH_MAX_CPL : i;
        }
    }
    return -1;
}

static gn_time kad_due_at(const gni_kad_table *t, unsigned cpl)
{
    gn_time r = t->refreshed[cpl]; /* cpl <= GNI_KAD_REFRESH_MAX_CPL */
    return r > GN_TIME_INFINITY - t->cfg.refresh_interval ? GN_TIME_INFINITY
                                                          : r + t->cfg.refresh_interval;
}

size_t gni_kad_table_refresh_due(const gni_kad_table *t, gn_time now, unsigned *cpls, size_t max)
{
    size_t cnt = 0;
    if (!t) {
        return 0;
    }
    int lim = kad_refresh_limit(t);
    for (int i = 0; i <= lim; i++) {
        if (kad_due_at(t, (unsigned)i) <= now) {
            if (cpls && cnt < max) {
                cpls[cnt] = (unsigned)i;
            }
            cnt++;
        }
    }
    return cnt;
}

void gni_kad_table_refreshed(gni_kad_table *t, unsigned cpl, gn_time now)
{
    if (t && cpl <= GNI_KAD_REFRESH_MAX_CPL) {
        t->refreshed[cpl] = now;
    }
}

gn_time gni_kad_table_next_refresh(const gni_kad_table *t)
{
    gn_time next = GN_TIME_INFINITY;
    if (!t) {
        return next;
    }
    int lim = kad_refresh_limit(t);
    for (int i = 0; i <= lim; i++) {
        gn_time d = kad_due_at(t, (unsigned)i);
        if (d < next) {
            next = d;
        }
    }
    return next;
}

int gni_kad_table_random_peer(const gni_kad_table *t, unsigned cpl, const gn_rng *rng,
                              size_t max_tries, gn_peer_id *out)
{
    if (!t || !rng || !out || cpl > GNI_KAD_REFRESH_MAX_CPL) {
        return GN_EINVAL;
    }
    gn_peer_id pid;
    memset(&pid, 0, sizeof pid);
    pid.len = 34;
    pid.bytes[0] = 0x12; /* sha2-256 */
    pid.bytes[1] = 0x20; /* 32 bytes */
    for (size_t n = 0; n < max_tries; n++) {
        gn_rng_fill(rng, pid.bytes + 2, 32);
        gni_kad_key key;
        gni_kad_key_from_peer(&pid, &key);
        if (gni_kad_cpl(&t->self, &key) == cpl) {
            *out = pid;
            return 0;
        }
    }
    return GN_ELIMIT;
}
