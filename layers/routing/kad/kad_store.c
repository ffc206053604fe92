/*
 * Kademlia record and provider stores.
 *
 * Both stores find keys through a sorted array of (key bytes, item)
 * (binary search, memmove on insert: deterministic and immune to hash
 * flooding; the counts are bounded by the configuration). Expiry needs no
 * search: with one TTL per store and a non-decreasing clock, entries expire
 * in the order they were last put, so each store keeps its expiring entries
 * on one list, least recently put first; a refresh moves an entry to the
 * tail, expire() pops from the head and next_expiry() reads the head.
 * Local entries (records and provided keys) are kept in plain arrays: only
 * this node adds them.
 */
#include "kad_store.h"

#include "gni.h"

#include <string.h>

/* ---- sorted key index ---- */

typedef struct kad_ix_ent {
    const uint8_t *key; /* owned by the item */
    size_t len;
    void *item;
} kad_ix_ent;

typedef struct kad_ix {
    kad_ix_ent *v;
    size_t n, cap;
} kad_ix;

static int kad_bytes_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t m = alen < blen ? alen : blen;
    int c = m > 0 ? memcmp(a, b, m) : 0;
    if (c != 0) {
        return c;
    }
    return alen < blen ? -1 : alen > blen;
}

/* Position of @key, or where it would go; *@found tells which. */
static size_t kad_ix_find(const kad_ix *ix, const uint8_t *key, size_t len, bool *found)
{
    size_t lo = 0, hi = ix->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (kad_bytes_cmp(ix->v[mid].key, ix->v[mid].len, key, len) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *found = lo < ix->n && kad_bytes_cmp(ix->v[lo].key, ix->v[lo].len, key, len) == 0;
    return lo;
}

/* Grows @ix so one more entry fits (never beyond @limit entries). */
static int kad_ix_reserve(kad_ix *ix, size_t limit)
{
    if (ix->n < ix->cap) {
        return 0;
    }
    if (ix->n >= limit) {
        return GN_ELIMIT;
    }
    size_t cap = ix->cap ? ix->cap * 2 : 16;
    cap = GNI_MIN(cap, limit);
    kad_ix_ent *v = gn_realloc(ix->v, cap * sizeof *v);
    if (!v) {
        return GN_ENOMEM;
    }
    ix->v = v;
    ix->cap = cap;
    return 0;
}

/* Inserts at @at; room was reserved. */
static void kad_ix_insert(kad_ix *ix, size_t at, const uint8_t *key, size_t len, void *item)
{
    memmove(&ix->v[at + 1], &ix->v[at], (ix->n - at) * sizeof *ix->v);
    ix->v[at].key = key;
    ix->v[at].len = len;
    ix->v[at].item = item;
    ix->n++;
}

static void kad_ix_del(kad_ix *ix, size_t at)
{
    memmove(&ix->v[at], &ix->v[at + 1], (ix->n - at - 1) * sizeof *ix->v);
    ix->n--;
}

/* Grows a pointer array so one more fits (at most @limit). */
static int kad_ptrs_reserve(void ***arr, size_t n, size_t *cap, size_t limit)
{
    if (n < *cap) {
        return 0;
    }
    if (n >= limit) {
        return GN_ELIMIT;
    }
    size_t c = *cap ? *cap * 2 : 8;
    c = GNI_MIN(c, limit);
    void **v = gn_realloc(*arr, c * sizeof *v);
    if (!v) {
        return GN_ENOMEM;
    }
    *arr = v;
    *cap = c;
    return 0;
}

/* Removes arr[i] of @n, keeping the order. */
static void kad_ptrs_del(void **arr, size_t n, size_t i)
{
    memmove(&arr[i], &arr[i + 1], (n - i - 1) * sizeof *arr);
}

static gn_time kad_deadline(gn_time t, gn_time ttl)
{
    return t > GN_TIME_INFINITY - ttl ? GN_TIME_INFINITY : t + ttl;
}

/* ---- validators ---- */

typedef struct kad_ns {
    char name[GNI_KAD_NS_NAME_MAX + 1];
    size_t len;
    gni_kad_validate_fn validate;
    gni_kad_select_fn select;
    void *arg;
} kad_ns;

struct gni_kad_validators {
    kad_ns *ns; /* grows (doubling) up to GNI_KAD_NS_MAX: most nodes use one or two */
    size_t n, cap;
};

#define KAD_PK_PREFIX "/pk/"
#define KAD_PK_PREFIX_LEN 4u

/* "/pk/" + binary peer ID; the value a PublicKey protobuf whose peer ID that is. */
static int kad_pk_validate(void *arg, const uint8_t *key, size_t klen, const uint8_t *value,
                           size_t vlen)
{
    (void)arg;
    gn_peer_id want, got;
    if (klen < KAD_PK_PREFIX_LEN || memcmp(key, KAD_PK_PREFIX, KAD_PK_PREFIX_LEN) != 0 ||
        gn_peer_id_from_bytes(key + KAD_PK_PREFIX_LEN, klen - KAD_PK_PREFIX_LEN, &want) < 0) {
        return GN_EPARSE;
    }
    if (vlen == 0 || !value) {
        return GN_EPARSE;
    }
    if (vlen > GN_PUBKEY_MAX_BYTES) {
        return GN_ETOOBIG;
    }
    /* the binding first: it allocates nothing, so forgeries cost little */
    int rc = gn_peer_id_from_pubkey(value, vlen, &got);
    if (rc < 0) {
        return rc;
    }
    if (!gn_peer_id_equal(&want, &got)) {
        return GN_EPEERID;
    }
    /* every key type's material is parsed and checked (issue 17) */
    return gn_pubkey_check(value, vlen, NULL);
}

static int kad_pk_select(void *arg, const uint8_t *key, size_t klen,
                         const uint8_t *const *values, const size_t *lens, size_t n)
{
    (void)arg, (void)key, (void)klen, (void)values, (void)lens, (void)n;
    return 0;
}

int gni_kad_validators_new(gni_kad_validators **out)
{
    if (!out) {
        return GN_EINVAL;
    }
    gni_kad_validators *v = gn_calloc(1, sizeof *v);
    if (!v) {
        return GN_ENOMEM;
    }
    int rc = gni_kad_validators_register(v, "pk", kad_pk_validate, kad_pk_select, NULL);
    if (rc < 0) {
        gni_kad_validators_free(v); /* GN_ENOMEM: the only way "pk" can fail */
        return rc;
    }
    *out = v;
    return 0;
}

void gni_kad_validators_free(gni_kad_validators *v)
{
    if (v) {
        gn_free(v->ns);
    }
    gn_free(v);
}

int gni_kad_validators_register(gni_kad_validators *v, const char *ns,
                                gni_kad_validate_fn validate, gni_kad_select_fn select,
                                void *arg)
{
    if (!v || !ns || !validate) {
        return GN_EINVAL;
    }
    size_t len = 0;
    while (len <= GNI_KAD_NS_NAME_MAX && ns[len] != '\0') {
        len++;
    }
    if (len == 0 || len > GNI_KAD_NS_NAME_MAX || memchr(ns, '/', len)) {
        return GN_EINVAL;
    }
    kad_ns *e = NULL;
    for (size_t i = 0; i < v->n && !e; i++) {
        if (v->ns[i].len == len && memcmp(v->ns[i].name, ns, len) == 0) {
            e = &v->ns[i];
        }
    }
    if (!e) {
        if (v->n == GNI_KAD_NS_MAX) {
            return GN_ELIMIT;
        }
        if (v->n == v->cap) {
            size_t cap = v->cap ? GNI_MIN(v->cap * 2, (size_t)GNI_KAD_NS_MAX) : 2;
            kad_ns *g = gn_realloc(v->ns, cap * sizeof *g);
            if (!g) {
                return GN_ENOMEM;
            }
            v->ns = g;
            v->cap = cap;
        }
        e = &v->ns[v->n++];
        memcpy(e->name, ns, len);
        e->name[len] = '\0';
        e->len = len;
    }
    e->validate = validate;
    e->select = select;
    e->arg = arg;
    return 0;
}

/* The namespace of "/<ns>/<rest>", or NULL. */
static const kad_ns *kad_ns_of(const gni_kad_validators *v, const uint8_t *key, size_t klen)
{
    if (klen < 2 || key[0] != '/') {
        return NULL;
    }
    const uint8_t *slash = memchr(key + 1, '/', klen - 1);
    if (!slash) {
        return NULL;
    }
    size_t len = (size_t)(slash - (key + 1));
    for (size_t i = 0; i < v->n; i++) {
        if (v->ns[i].len == len && memcmp(v->ns[i].name, key + 1, len) == 0) {
            return &v->ns[i];
        }
    }
    return NULL;
}

int gni_kad_validators_validate(const gni_kad_validators *v, const uint8_t *key, size_t klen,
                                const uint8_t *value, size_t vlen)
{
    if (!v || (!key && klen > 0) || (!value && vlen > 0)) {
        return GN_EINVAL;
    }
    const kad_ns *ns = kad_ns_of(v, key, klen);
    if (!ns) {
        return GN_ENOTSUP;
    }
    int rc = ns->validate(ns->arg, key, klen, value, vlen);
    return rc > 0 ? GN_ECALLBACK : rc;
}

int gni_kad_validators_select(const gni_kad_validators *v, const uint8_t *key, size_t klen,
                              const uint8_t *const *values, const size_t *lens, size_t n,
                              size_t *best)
{
    if (!v || (!key && klen > 0) || !values || !lens || n == 0 || !best) {
        return GN_EINVAL;
    }
    const kad_ns *ns = kad_ns_of(v, key, klen);
    if (!ns) {
        return GN_ENOTSUP;
    }
    if (n == 1 || !ns->select) {
        *best = 0;
        return 0;
    }
    int rc = ns->select(ns->arg, key, klen, values, lens, n);
    if (rc < 0) {
        return rc;
    }
    if ((size_t)rc >= n) {
        return GN_ECALLBACK;
    }
    *best = (size_t)rc;
    return 0;
}

/* ---- records ---- */

typedef struct kad_rec {
    gni_list link;    /* remote: on the expiry list; local: off */
    gn_time received; /* last put */
    bool local;
    size_t klen, vlen;
    uint8_t data[]; /* key, then value */
} kad_rec;

struct gni_kad_records {
    gni_kad_records_config cfg;
    const gni_kad_validators *v;
    kad_ix ix;       /* every record, by key */
    gni_list remote; /* remote records, least recently put first */
    kad_rec **locals; /* local records, in the order they became local */
    size_t nlocal, local_cap;
    size_t bytes; /* key + value bytes of all records */
    gn_time last; /* largest @now seen */
};

void gni_kad_records_config_default(gni_kad_records_config *cfg)
{
    cfg->max_records = GNI_KAD_RECORDS_DEFAULT;
    cfg->max_bytes = GNI_KAD_RECORD_BYTES_DEFAULT;
    cfg->max_value_len = GNI_KAD_VALUE_LEN_DEFAULT;
    cfg->max_key_len = GNI_KAD_STORE_KEY_LEN_DEFAULT;
    cfg->ttl = GNI_KAD_RECORD_TTL_DEFAULT;
}

int gni_kad_records_new(const gni_kad_records_config *cfg, const gni_kad_validators *v,
                        gni_kad_records **out)
{
    gni_kad_records_config c;
    if (!v || !out) {
        return GN_EINVAL;
    }
    if (cfg) {
        c = *cfg;
    } else {
        gni_kad_records_config_default(&c);
    }
    if (c.max_records == 0 || c.max_records > GNI_KAD_STORE_COUNT_LIMIT || c.max_bytes == 0 ||
        c.max_value_len == 0 || c.max_key_len == 0 || c.ttl == 0) {
        return GN_EINVAL;
    }
    gni_kad_records *rs = gn_calloc(1, sizeof *rs);
    if (!rs) {
        return GN_ENOMEM;
    }
    rs->cfg = c;
    rs->v = v;
    gni_list_init(&rs->remote);
    *out = rs;
    return 0;
}

static const uint8_t *kad_rec_value(const kad_rec *r)
{
    return r->data + r->klen;
}

static kad_rec *kad_rec_of(gni_list *l)
{
    return GNI_CONTAINER_OF(l, kad_rec, link);
}

static gn_time kad_records_now(gni_kad_records *rs, gn_time now)
{
    if (now > rs->last) {
        rs->last = now;
    }
    return rs->last;
}

/* Unlinks @r from the index, the expiry list or the local array, and frees it. */
static void kad_rec_drop(gni_kad_records *rs, kad_rec *r)
{
    bool found;
    size_t at = kad_ix_find(&rs->ix, r->data, r->klen, &found);
    assert(found && rs->ix.v[at].item == r);
    kad_ix_del(&rs->ix, at);
    if (r->local) {
        for (size_t i = 0; i < rs->nlocal; i++) {
            if (rs->locals[i] == r) {
                kad_ptrs_del((void **)rs->locals, rs->nlocal--, i);
                break;
            }
        }
    } else {
        gni_list_del(&r->link);
    }
    rs->bytes -= r->klen + r->vlen;
    gn_free(r);
}

void gni_kad_records_free(gni_kad_records *rs)
{
    if (!rs) {
        return;
    }
    for (size_t i = 0; i < rs->ix.n; i++) {
        gn_free(rs->ix.v[i].item);
    }
    gn_free(rs->ix.v);
    gn_free(rs->locals);
    gn_free(rs);
}

static int kad_locals_reserve(gni_kad_records *rs)
{
    void **arr = (void **)rs->locals;
    int rc = kad_ptrs_reserve(&arr, rs->nlocal, &rs->local_cap, rs->cfg.max_records);
    rs->locals = (kad_rec **)arr;
    return rc;
}

/* Moves remote @r to the local array (room reserved). */
static void kad_rec_make_local(gni_kad_records *rs, kad_rec *r)
{
    gni_list_del(&r->link);
    r->local = true;
    rs->locals[rs->nlocal++] = r;
}

/*
 * Counts the least recently put remote records (never @keep) whose eviction
 * makes room for @add_n more records and @add_b more bytes; -1 when even all
 * of them would not.
 */
static long kad_records_evictable(const gni_kad_records *rs, const kad_rec *keep, size_t add_n,
                                  size_t add_b)
{
    size_t n = rs->ix.n + add_n, b = rs->bytes + add_b;
    long cnt = 0;
    for (gni_list *e = rs->remote.next; e != &rs->remote; e = e->next) {
        if (n <= rs->cfg.max_records && b <= rs->cfg.max_bytes) {
            break;
        }
        const kad_rec *r = kad_rec_of(e);
        if (r == keep) {
            continue;
        }
        n--;
        b -= r->klen + r->vlen;
        cnt++;
    }
    return n <= rs->cfg.max_records && b <= rs->cfg.max_bytes ? cnt : -1;
}

int gni_kad_records_put(gni_kad_records *rs, const uint8_t *key, size_t klen,
                        const uint8_t *value, size_t vlen, gn_time now, bool local)
{
    if (!rs || klen == 0 || !key || (vlen > 0 && !value)) {
        return GN_EINVAL;
    }
    if (klen > rs->cfg.max_key_len || vlen > rs->cfg.max_value_len ||
        vlen > SIZE_MAX - sizeof(kad_rec) - klen) {
        return GN_ETOOBIG;
    }
    int rc = gni_kad_validators_validate(rs->v, key, klen, value, vlen);
    if (rc < 0) {
        return rc;
    }
    /* dead records neither count against the bounds nor compete with the new value */
    now = kad_records_now(rs, now);
    gni_kad_records_expire(rs, now);
    bool found;
    size_t at = kad_ix_find(&rs->ix, key, klen, &found);
    kad_rec *old = found ? rs->ix.v[at].item : NULL;
    if (old && old->vlen == vlen && (vlen == 0 || memcmp(kad_rec_value(old), value, vlen) == 0)) {
        if (local && !old->local) {
            rc = kad_locals_reserve(rs);
            if (rc < 0) {
                return rc;
            }
            kad_rec_make_local(rs, old);
        }
        old->received = kad_records_now(rs, now);
        if (!old->local) {
            gni_list_del(&old->link);
            gni_list_add_tail(&rs->remote, &old->link);
        }
        return GNI_KAD_PUT_SAME;
    }
    if (old) {
        const uint8_t *vals[2] = {kad_rec_value(old), value};
        size_t lens[2] = {old->vlen, vlen};
        size_t best = 0;
        rc = gni_kad_validators_select(rs->v, key, klen, vals, lens, 2, &best);
        if (rc < 0) {
            return rc;
        }
        if (best == 0) {
            return GNI_KAD_PUT_KEPT;
        }
    }
    /* room: the bounds are checked against the store after the put */
    size_t old_b = old ? old->klen + old->vlen : 0;
    size_t add_n = old ? 0 : 1;
    size_t add_b = klen + vlen > old_b ? klen + vlen - old_b : 0;
    size_t sub_b = old_b > klen + vlen ? old_b - (klen + vlen) : 0;
    long evict = 0;
    if (rs->ix.n + add_n > rs->cfg.max_records || rs->bytes - sub_b + add_b > rs->cfg.max_bytes) {
        evict = local ? kad_records_evictable(rs, old, add_n, add_b) : -1;
        if (evict < 0) {
            return GN_ELIMIT;
        }
    }
    bool was_local = old && old->local;
    kad_rec *nr = gn_malloc(sizeof *nr + klen + vlen);
    if (!nr) {
        return GN_ENOMEM;
    }
    memset(nr, 0, sizeof *nr);
    nr->klen = klen;
    nr->vlen = vlen;
    memcpy(nr->data, key, klen);
    if (vlen > 0) {
        memcpy(nr->data + klen, value, vlen);
    }
    /* an eviction frees an index slot; otherwise the bound check left room for one */
    rc = old || evict > 0 ? 0 : kad_ix_reserve(&rs->ix, rs->cfg.max_records);
    if (rc == 0 && local && !was_local) {
        rc = kad_locals_reserve(rs);
    }
    if (rc < 0) {
        gn_free(nr);
        return rc;
    }
    /* nothing fails from here on */
    for (gni_list *e = rs->remote.next; evict > 0 && e != &rs->remote;) {
        kad_rec *r = kad_rec_of(e);
        e = e->next;
        if (r != old) {
            kad_rec_drop(rs, r);
            evict--;
        }
    }
    nr->received = kad_records_now(rs, now);
    at = kad_ix_find(&rs->ix, key, klen, &found);
    if (old) {
        assert(found);
        rs->ix.v[at].key = nr->data;
        rs->ix.v[at].item = nr;
        if (was_local) {
            for (size_t i = 0; i < rs->nlocal; i++) {
                if (rs->locals[i] == old) {
                    rs->locals[i] = nr;
                }
            }
            nr->local = true;
        } else {
            gni_list_del(&old->link);
        }
        rs->bytes -= old_b;
        gn_free(old);
    } else {
        kad_ix_insert(&rs->ix, at, nr->data, klen, nr);
    }
    rs->bytes += klen + vlen;
    if (!nr->local) {
        if (local) {
            nr->local = true;
            rs->locals[rs->nlocal++] = nr;
        } else {
            gni_list_add_tail(&rs->remote, &nr->link);
        }
    }
    return GNI_KAD_PUT_STORED;
}

int gni_kad_records_get(const gni_kad_records *rs, const uint8_t *key, size_t klen, gn_time now,
                        gn_slice *value, gn_time *received)
{
    if (!rs || (!key && klen > 0)) {
        return GN_EINVAL;
    }
    bool found;
    size_t at = kad_ix_find(&rs->ix, key, klen, &found);
    if (!found) {
        return GN_ENOTFOUND;
    }
    const kad_rec *r = rs->ix.v[at].item;
    if (!r->local && now >= kad_deadline(r->received, rs->cfg.ttl)) {
        return GN_ENOTFOUND;
    }
    if (value) {
        *value = gn_slice_of(kad_rec_value(r), r->vlen);
    }
    if (received) {
        *received = r->received;
    }
    return 0;
}

int gni_kad_records_remove(gni_kad_records *rs, const uint8_t *key, size_t klen)
{
    if (!rs || (!key && klen > 0)) {
        return GN_EINVAL;
    }
    bool found;
    size_t at = kad_ix_find(&rs->ix, key, klen, &found);
    if (!found) {
        return GN_ENOTFOUND;
    }
    kad_rec_drop(rs, rs->ix.v[at].item);
    return 0;
}

size_t gni_kad_records_expire(gni_kad_records *rs, gn_time now)
{
    size_t cnt = 0;
    if (!rs) {
        return 0;
    }
    while (!gni_list_empty(&rs->remote)) {
        kad_rec *r = kad_rec_of(rs->remote.next);
        if (now < kad_deadline(r->received, rs->cfg.ttl)) {
            break;
        }
        kad_rec_drop(rs, r);
        cnt++;
    }
    return cnt;
}

gn_time gni_kad_records_next_expiry(const gni_kad_records *rs)
{
    if (!rs || gni_list_empty(&rs->remote)) {
        return GN_TIME_INFINITY;
    }
    return kad_deadline(kad_rec_of(rs->remote.next)->received, rs->cfg.ttl);
}

size_t gni_kad_records_count(const gni_kad_records *rs)
{
    return rs ? rs->ix.n : 0;
}

size_t gni_kad_records_local_count(const gni_kad_records *rs)
{
    return rs ? rs->nlocal : 0;
}

size_t gni_kad_records_bytes(const gni_kad_records *rs)
{
    return rs ? rs->bytes : 0;
}

int gni_kad_records_local_at(const gni_kad_records *rs, size_t i, gn_slice *key, gn_slice *value,
                             gn_time *put_at)
{
    if (!rs) {
        return GN_EINVAL;
    }
    if (i >= rs->nlocal) {
        return GN_ENOTFOUND;
    }
    const kad_rec *r = rs->locals[i];
    if (key) {
        *key = gn_slice_of(r->data, r->klen);
    }
    if (value) {
        *value = gn_slice_of(kad_rec_value(r), r->vlen);
    }
    if (put_at) {
        *put_at = r->received;
    }
    return 0;
}

/* ---- providers ---- */

/** Largest configurable max_per_key. */
#define KAD_PROV_PER_KEY_LIMIT 4096u

typedef struct kad_pkey kad_pkey;

typedef struct kad_prov {
    gni_kad_provider pub;
    gni_list link;   /* all entries, least recently announced first */
    kad_pkey *owner;
    uint8_t *abuf;   /* the addresses' bytes, NULL when none */
} kad_prov;

struct kad_pkey {
    kad_prov **v; /* entries, least recently announced first */
    size_t n, cap;
    size_t klen;
    uint8_t key[];
};

typedef struct kad_local {
    gn_time provided;
    size_t klen;
    uint8_t key[];
} kad_local;

struct gni_kad_providers {
    gni_kad_providers_config cfg;
    kad_ix ix;    /* kad_pkey by key */
    gni_list all; /* every entry, least recently announced first */
    size_t total;
    kad_local **locals; /* least recently announced first */
    size_t nlocal, local_cap;
    gn_time last; /* largest @now seen */
};

void gni_kad_providers_config_default(gni_kad_providers_config *cfg)
{
    cfg->max_per_key = GNI_KAD_PROV_PER_KEY_DEFAULT;
    cfg->max_keys = GNI_KAD_PROV_KEYS_DEFAULT;
    cfg->max_total = GNI_KAD_PROV_TOTAL_DEFAULT;
    cfg->max_addrs = GNI_KAD_PROV_ADDRS_DEFAULT;
    cfg->max_key_len = GNI_KAD_PROV_KEY_LEN_DEFAULT;
    cfg->ttl = GNI_KAD_PROV_TTL_DEFAULT;
}

int gni_kad_providers_new(const gni_kad_providers_config *cfg, gni_kad_providers **out)
{
    gni_kad_providers_config c;
    if (!out) {
        return GN_EINVAL;
    }
    if (cfg) {
        c = *cfg;
    } else {
        gni_kad_providers_config_default(&c);
    }
    if (c.max_per_key == 0 || c.max_per_key > KAD_PROV_PER_KEY_LIMIT || c.max_keys == 0 ||
        c.max_keys > GNI_KAD_STORE_COUNT_LIMIT || c.max_total == 0 ||
        c.max_addrs > GNI_KAD_PROV_ADDRS_MAX || c.max_key_len == 0 || c.ttl == 0) {
        return GN_EINVAL;
    }
    gni_kad_providers *ps = gn_calloc(1, sizeof *ps);
    if (!ps) {
        return GN_ENOMEM;
    }
    ps->cfg = c;
    gni_list_init(&ps->all);
    *out = ps;
    return 0;
}

static kad_prov *kad_prov_of(gni_list *l)
{
    return GNI_CONTAINER_OF(l, kad_prov, link);
}

static gn_time kad_providers_now(gni_kad_providers *ps, gn_time now)
{
    if (now > ps->last) {
        ps->last = now;
    }
    return ps->last;
}

static void kad_prov_free(kad_prov *e)
{
    gn_free(e->abuf);
    gn_free(e);
}

/* Unlinks @e from its key (freeing the key when it was the last) and frees it. */
static void kad_prov_drop(gni_kad_providers *ps, kad_prov *e)
{
    kad_pkey *pk = e->owner;
    for (size_t i = 0; i < pk->n; i++) {
        if (pk->v[i] == e) {
            kad_ptrs_del((void **)pk->v, pk->n--, i);
            break;
        }
    }
    gni_list_del(&e->link);
    kad_prov_free(e);
    ps->total--;
    if (pk->n == 0) {
        bool found;
        size_t at = kad_ix_find(&ps->ix, pk->key, pk->klen, &found);
        assert(found && ps->ix.v[at].item == pk);
        kad_ix_del(&ps->ix, at);
        gn_free(pk->v);
        gn_free(pk);
    }
}

void gni_kad_providers_free(gni_kad_providers *ps)
{
    if (!ps) {
        return;
    }
    while (!gni_list_empty(&ps->all)) {
        kad_prov_drop(ps, kad_prov_of(ps->all.next));
    }
    gn_free(ps->ix.v);
    for (size_t i = 0; i < ps->nlocal; i++) {
        gn_free(ps->locals[i]);
    }
    gn_free(ps->locals);
    gn_free(ps);
}

/*
 * Copies the addresses @addrs[@idx[0..@n)] (@len bytes in all) into one
 * buffer and points @e's slices at it; the old buffer is freed.
 * Errors: GN_ENOMEM (@e unchanged).
 */
static int kad_prov_set_addrs(kad_prov *e, const gn_slice *addrs, const size_t *idx, size_t n,
                              size_t len)
{
    uint8_t *buf = gn_malloc(len);
    if (!buf) {
        return GN_ENOMEM;
    }
    gn_free(e->abuf);
    e->abuf = buf;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        const gn_slice *a = &addrs[idx[i]];
        memcpy(buf + off, a->base, a->len);
        e->pub.addrs[i] = gn_slice_of(buf + off, a->len);
        off += a->len;
    }
    for (size_t i = n; i < GNI_KAD_PROV_ADDRS_MAX; i++) {
        e->pub.addrs[i] = gn_slice_of(NULL, 0);
    }
    e->pub.naddrs = n;
    return 0;
}

/* Moves pk->v[i] to the newest end and @e to the tail of the expiry list. */
static void kad_prov_to_tail(gni_kad_providers *ps, kad_pkey *pk, size_t i)
{
    kad_prov *e = pk->v[i];
    memmove(&pk->v[i], &pk->v[i + 1], (pk->n - i - 1) * sizeof *pk->v);
    pk->v[pk->n - 1] = e;
    gni_list_del(&e->link);
    gni_list_add_tail(&ps->all, &e->link);
}

int gni_kad_providers_add(gni_kad_providers *ps, const uint8_t *key, size_t klen,
                          const gn_peer_id *peer, const gn_slice *addrs, size_t naddrs,
                          gn_time now)
{
    if (!ps || !peer || peer->len == 0 || peer->len > GN_PEER_ID_MAX_BYTES || klen == 0 ||
        !key || (naddrs > 0 && !addrs)) {
        return GN_EINVAL;
    }
    if (klen > ps->cfg.max_key_len || klen > SIZE_MAX - sizeof(kad_pkey)) {
        return GN_ETOOBIG;
    }
    now = kad_providers_now(ps, now);
    gni_kad_providers_expire(ps, now);
    /* the addresses kept: the first max_addrs distinct storable ones */
    size_t keep[GNI_KAD_PROV_ADDRS_MAX];
    size_t nkeep = 0, abytes = 0;
    for (size_t i = 0; i < naddrs && nkeep < ps->cfg.max_addrs; i++) {
        const gn_slice *a = &addrs[i];
        if (!a->base || a->len == 0 || a->len > GNI_KAD_PROV_ADDR_BYTES) {
            continue;
        }
        bool dup = false;
        for (size_t j = 0; j < nkeep && !dup; j++) {
            dup = addrs[keep[j]].len == a->len && memcmp(addrs[keep[j]].base, a->base, a->len) == 0;
        }
        if (!dup) {
            keep[nkeep++] = i;
            abytes += a->len;
        }
    }
    bool found;
    size_t at = kad_ix_find(&ps->ix, key, klen, &found);
    kad_pkey *pk = found ? ps->ix.v[at].item : NULL;
    if (pk) {
        for (size_t i = 0; i < pk->n; i++) {
            kad_prov *e = pk->v[i];
            if (!gn_peer_id_equal(&e->pub.id, peer)) {
                continue;
            }
            if (nkeep > 0 && kad_prov_set_addrs(e, addrs, keep, nkeep, abytes) < 0) {
                return GN_ENOMEM;
            }
            e->pub.added = kad_providers_now(ps, now);
            kad_prov_to_tail(ps, pk, i);
            return GNI_KAD_PROV_REFRESHED;
        }
    }
    bool replace = pk && pk->n >= ps->cfg.max_per_key;
    if ((!pk && ps->ix.n >= ps->cfg.max_keys) || (!replace && ps->total >= ps->cfg.max_total)) {
        return GN_ELIMIT;
    }
    kad_prov *e = gn_calloc(1, sizeof *e);
    if (!e) {
        return GN_ENOMEM;
    }
    e->pub.id = *peer;
    if (nkeep > 0 && kad_prov_set_addrs(e, addrs, keep, nkeep, abytes) < 0) {
        kad_prov_free(e);
        return GN_ENOMEM;
    }
    kad_pkey *npk = NULL;
    if (!pk) {
        npk = gn_malloc(sizeof *npk + klen);
        if (!npk) {
            kad_prov_free(e);
            return GN_ENOMEM;
        }
        memset(npk, 0, sizeof *npk);
        npk->klen = klen;
        memcpy(npk->key, key, klen);
        int rc = kad_ix_reserve(&ps->ix, ps->cfg.max_keys);
        if (rc < 0) {
            gn_free(npk);
            kad_prov_free(e);
            return rc;
        }
        pk = npk;
    }
    if (!replace) {
        void **arr = (void **)pk->v;
        int rc = kad_ptrs_reserve(&arr, pk->n, &pk->cap, ps->cfg.max_per_key);
        pk->v = (kad_prov **)arr;
        if (rc < 0) {
            if (npk) {
                gn_free(npk->v);
                gn_free(npk);
            }
            kad_prov_free(e);
            return rc;
        }
    }
    /* nothing fails from here on */
    if (npk) {
        kad_ix_insert(&ps->ix, at, npk->key, klen, npk);
    }
    if (replace) {
        kad_prov *oldest = pk->v[0];
        kad_ptrs_del((void **)pk->v, pk->n--, 0);
        gni_list_del(&oldest->link);
        kad_prov_free(oldest);
        ps->total--;
    }
    e->owner = pk;
    e->pub.added = kad_providers_now(ps, now);
    pk->v[pk->n++] = e;
    gni_list_add_tail(&ps->all, &e->link);
    ps->total++;
    return replace ? GNI_KAD_PROV_REPLACED : GNI_KAD_PROV_ADDED;
}

size_t gni_kad_providers_get(const gni_kad_providers *ps, const uint8_t *key, size_t klen,
                             gn_time now, const gni_kad_provider **out, size_t max)
{
    size_t cnt = 0;
    if (!ps || (!key && klen > 0) || !out) {
        return 0;
    }
    bool found;
    size_t at = kad_ix_find(&ps->ix, key, klen, &found);
    if (!found) {
        return 0;
    }
    const kad_pkey *pk = ps->ix.v[at].item;
    for (size_t i = pk->n; i > 0 && cnt < max; i--) {
        const kad_prov *e = pk->v[i - 1];
        if (now < kad_deadline(e->pub.added, ps->cfg.ttl)) {
            out[cnt++] = &e->pub;
        }
    }
    return cnt;
}

size_t gni_kad_providers_expire(gni_kad_providers *ps, gn_time now)
{
    size_t cnt = 0;
    if (!ps) {
        return 0;
    }
    while (!gni_list_empty(&ps->all)) {
        kad_prov *e = kad_prov_of(ps->all.next);
        if (now < kad_deadline(e->pub.added, ps->cfg.ttl)) {
            break;
        }
        kad_prov_drop(ps, e);
        cnt++;
    }
    return cnt;
}

gn_time gni_kad_providers_next_expiry(const gni_kad_providers *ps)
{
    if (!ps || gni_list_empty(&ps->all)) {
        return GN_TIME_INFINITY;
    }
    return kad_deadline(kad_prov_of(ps->all.next)->pub.added, ps->cfg.ttl);
}

size_t gni_kad_providers_count(const gni_kad_providers *ps)
{
    return ps ? ps->total : 0;
}

size_t gni_kad_providers_key_count(const gni_kad_providers *ps)
{
    return ps ? ps->ix.n : 0;
}

/* Index of local key @key, or -1. */
static long kad_local_find(const gni_kad_providers *ps, const uint8_t *key, size_t klen)
{
    for (size_t i = 0; i < ps->nlocal; i++) {
        if (kad_bytes_cmp(ps->locals[i]->key, ps->locals[i]->klen, key, klen) == 0) {
            return (long)i;
        }
    }
    return -1;
}

int gni_kad_providers_local_add(gni_kad_providers *ps, const uint8_t *key, size_t klen,
                                gn_time now)
{
    if (!ps || !key || klen == 0) {
        return GN_EINVAL;
    }
    if (klen > ps->cfg.max_key_len || klen > SIZE_MAX - sizeof(kad_local)) {
        return GN_ETOOBIG;
    }
    long i = kad_local_find(ps, key, klen);
    if (i >= 0) {
        kad_local *l = ps->locals[i];
        memmove(&ps->locals[i], &ps->locals[i + 1],
                (ps->nlocal - (size_t)i - 1) * sizeof *ps->locals);
        ps->locals[ps->nlocal - 1] = l;
        l->provided = kad_providers_now(ps, now);
        return GNI_KAD_PROV_REFRESHED;
    }
    void **arr = (void **)ps->locals;
    int rc = kad_ptrs_reserve(&arr, ps->nlocal, &ps->local_cap, ps->cfg.max_keys);
    ps->locals = (kad_local **)arr;
    if (rc < 0) {
        return rc;
    }
    kad_local *l = gn_malloc(sizeof *l + klen);
    if (!l) {
        return GN_ENOMEM;
    }
    l->klen = klen;
    memcpy(l->key, key, klen);
    l->provided = kad_providers_now(ps, now);
    ps->locals[ps->nlocal++] = l;
    return GNI_KAD_PROV_ADDED;
}

int gni_kad_providers_local_remove(gni_kad_providers *ps, const uint8_t *key, size_t klen)
{
    if (!ps || !key) {
        return GN_EINVAL;
    }
    long i = kad_local_find(ps, key, klen);
    if (i < 0) {
        return GN_ENOTFOUND;
    }
    gn_free(ps->locals[i]);
    kad_ptrs_del((void **)ps->locals, ps->nlocal--, (size_t)i);
    return 0;
}

size_t gni_kad_providers_local_count(const gni_kad_providers *ps)
{
    return ps ? ps->nlocal : 0;
}

int gni_kad_providers_local_at(const gni_kad_providers *ps, size_t i, gn_slice *key,
                               gn_time *provided_at)
{
    if (!ps) {
        return GN_EINVAL;
    }
    if (i >= ps->nlocal) {
        return GN_ENOTFOUND;
    }
    if (key) {
        *key = gn_slice_of(ps->locals[i]->key, ps->locals[i]->klen);
    }
    if (provided_at) {
        *provided_at = ps->locals[i]->provided;
    }
    return 0;
}
