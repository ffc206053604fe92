/*
 * The resource manager (golemnet/rcmgr.h): sans-I/O accounting of memory,
 * streams, connections and descriptors in a chain of scopes per span.
 *
 * Invariants (checked by gni_rcmgr_check()):
 *  - every scope's usage is the sum of what the open spans reserved
 *    themselves (gn_rcmgr_span.own) over the spans whose chain holds it;
 *  - a keyed scope's refs is the number of spans that refer to it, and the
 *    scope exists exactly while refs > 0 (so it is freed, or parked for
 *    reuse outside its table, empty: gn_rcmgr.hot);
 *  - a reservation is admitted by every scope of the chain before any
 *    counter changes, so a refusal changes nothing but the refusal record.
 *
 * Thread context: one thread at a time (the owner's loop thread).
 */
#include "gni.h"
#include "gni_rcmgr.h"

#include "golemnet/rcmgr.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

/* Counters each scope keeps (the totals of gn_rcmgr_res are sums). */
enum { C_MEM, C_SIN, C_SOUT, C_CIN, C_COUT, C_CUP, C_FD, C_N };

/* The longest chain: conn, peer or transient, ip, subnet, system. */
#define CHAIN_MAX 5
/* Initial buckets of a keyed table; it doubles while it has more entries than buckets. */
#define TABLE_MIN_BUCKETS 16u
/*
 * Ended stream spans kept for reuse: the muxers open and end a span for
 * every stream, and an allocation and a free were most of that cost.
 */
#define SPARE_STREAMS_MAX 32u

typedef struct rc_scope {
    uint64_t use[C_N];
    uint64_t refused;
    uint64_t chk[C_N]; /* gni_rcmgr_check() scratch */
    uint32_t refs;     /* keyed scopes: spans that refer to it */
    uint32_t chk_refs;
    uint8_t kind; /* gn_rcmgr_scope_kind */
    /* the limits that apply (scope_limit()): its override's or its kind's
     * in rm->lim (stable storage: gn_rcmgr_set_limits() copies into it) */
    const gn_rcmgr_limit *lim;
} rc_scope;

/* Limits for one key (gn_rcmgr_set_scope_limit()); kept whether or not its scope exists. */
typedef struct rc_override {
    gni_list node; /* rm->overrides */
    gn_rcmgr_limit lim;
    uint8_t kind;
    uint16_t key_len;
    uint8_t key[];
} rc_override;

/* A peer, protocol, ip or subnet scope: in its kind's table while refs > 0. */
typedef struct rc_kscope {
    rc_scope s;
    rc_override *ov; /* its own limits, or NULL for the kind's */
    struct rc_kscope *hnext;
    uint64_t hash;
    gni_list node; /* the table's creation-ordered list */
    uint16_t key_len;
    uint8_t key[]; /* subnet: masked address then the prefix length */
} rc_kscope;

typedef struct rc_table {
    rc_kscope **b;
    size_t nb; /* a power of two, or 0 before the first insert */
    size_t n;
    gni_list all;
} rc_table;

struct gn_rcmgr_span {
    gn_rcmgr *rm;
    rc_scope self;     /* the conn or stream scope */
    uint64_t own[C_N]; /* what this span reserved itself */
    uint64_t id;
    bool is_stream;
};

struct gn_rcmgr_conn {
    gn_rcmgr_span span;
    gni_list node; /* rm->conns, until freed */
    rc_kscope *peer, *ip, *subnet;
    uint32_t streams; /* stream spans on it that are not done */
    bool done;
};

struct gn_rcmgr_stream {
    gn_rcmgr_span span;
    gni_list node; /* rm->streams; a spare: rm->spare_streams */
    gn_rcmgr_conn *conn;
    rc_kscope *peer, *proto;
};

struct gn_rcmgr {
    gn_rcmgr_limits lim;
    rc_scope system, transient;
    rc_table tab[GN_RCMGR_SCOPE_KINDS]; /* PEER, PROTOCOL, IP, SUBNET used */
    gni_list conns, streams;
    gni_list spare_streams; /* ended stream spans for reuse, at most SPARE_STREAMS_MAX */
    size_t n_spare_streams;
    /*
     * Per keyed kind, the scope scope_get() returned last: looked up by its
     * key before the table (no hash), and, once its last reference is gone,
     * kept out of the table ("parked", refs 0, empty) so that the next
     * stream of the same protocol does not allocate it again. A parked
     * scope does not exist for any other call (not in the table, not
     * counted, not reported); it is freed when another key takes its place
     * or with the manager.
     */
    rc_kscope *hot[GN_RCMGR_SCOPE_KINDS];
    gni_list overrides;
    size_t n_overrides;
    uint64_t next_id;
    uint64_t refusals[GN_RCMGR_SCOPE_KINDS];
    bool refused_once;
    gn_rcmgr_refusal last;
    uint8_t hash_key[crypto_shorthash_KEYBYTES];
};

static bool kind_keyed(int kind)
{
    return kind == GN_RCMGR_SCOPE_PEER || kind == GN_RCMGR_SCOPE_PROTOCOL ||
           kind == GN_RCMGR_SCOPE_IP || kind == GN_RCMGR_SCOPE_SUBNET;
}

/* ---- limits */

static void limit_set(gn_rcmgr_limit *l, uint64_t memory, uint32_t streams, uint32_t streams_in,
                      uint32_t streams_out, uint32_t conns, uint32_t conns_in, uint32_t conns_out,
                      uint32_t conns_upgrading, uint32_t fd)
{
    l->memory = memory;
    l->streams = streams;
    l->streams_in = streams_in;
    l->streams_out = streams_out;
    l->conns = conns;
    l->conns_in = conns_in;
    l->conns_out = conns_out;
    l->conns_upgrading = conns_upgrading;
    l->fd = fd;
}

#define MIB (1024ull * 1024ull)
#define U GN_RCMGR_UNLIMITED

void gn_rcmgr_limits_default(gn_rcmgr_limits *l)
{
    memset(l, 0, sizeof *l);
    l->version = GN_RCMGR_LIMITS_VERSION;
    /*
     * Inbound is the direction remote peers drive, so it gets its own
     * bound below the total; outbound is bounded by the total alone.
     *                        memory  streams in    out conns in   out upgr fd   (docs/limits.md) */
    limit_set(&l->system, 256 * MIB, 16384, 8192, U, 1024, 768, U, U, 768);
    limit_set(&l->transient, 32 * MIB, 512, 256, U, 128, U, U, 128, 128);
    limit_set(&l->peer, 64 * MIB, 1024, 512, U, 8, U, U, U, 8);
    limit_set(&l->protocol, 128 * MIB, 4096, 2048, U, U, U, U, U, U);
    limit_set(&l->ip, 64 * MIB, U, U, U, 64, U, U, 8, 64);
    limit_set(&l->subnet, 128 * MIB, U, U, U, 128, U, U, 16, 128);
    limit_set(&l->conn, 32 * MIB, 512, 256, U, 1, U, U, 1, 1);
    limit_set(&l->stream, 16 * MIB, 1, U, U, U, U, U, U, U);
    l->ipv4_prefix = 24;
    l->ipv6_prefix = 64;
    l->max_peers = 2048;
    l->max_protocols = 256;
    l->max_ips = 1024;
    l->max_subnets = 1024;
}

static int limits_valid(const gn_rcmgr_limits *l)
{
    if (!l || l->version != GN_RCMGR_LIMITS_VERSION) {
        return GN_EINVAL;
    }
    if (l->ipv4_prefix < 1 || l->ipv4_prefix > 32 || l->ipv6_prefix < 1 || l->ipv6_prefix > 128) {
        return GN_EINVAL;
    }
    if (l->max_peers == 0 || l->max_protocols == 0 || l->max_ips == 0 || l->max_subnets == 0) {
        return GN_EINVAL;
    }
    return 0;
}

static const gn_rcmgr_limit *limit_of(const gn_rcmgr *rm, int kind)
{
    switch (kind) {
    case GN_RCMGR_SCOPE_SYSTEM: return &rm->lim.system;
    case GN_RCMGR_SCOPE_TRANSIENT: return &rm->lim.transient;
    case GN_RCMGR_SCOPE_PEER: return &rm->lim.peer;
    case GN_RCMGR_SCOPE_PROTOCOL: return &rm->lim.protocol;
    case GN_RCMGR_SCOPE_IP: return &rm->lim.ip;
    case GN_RCMGR_SCOPE_SUBNET: return &rm->lim.subnet;
    case GN_RCMGR_SCOPE_CONN: return &rm->lim.conn;
    default: return &rm->lim.stream;
    }
}

/* The limits that apply to @sc: its override, else its kind's. */
static const gn_rcmgr_limit *scope_limit(const gn_rcmgr *rm, const rc_scope *sc)
{
    if (sc->lim) {
        return sc->lim; /* kept up to date by ks_set_override() */
    }
    return limit_of(rm, sc->kind);
}

/* Sets a keyed scope's override (NULL: none) and the limits it uses. */
static void ks_set_override(const gn_rcmgr *rm, rc_kscope *ks, rc_override *ov)
{
    ks->ov = ov;
    ks->s.lim = ov ? &ov->lim : limit_of(rm, ks->s.kind);
}

static uint32_t table_cap(const gn_rcmgr *rm, int kind)
{
    switch (kind) {
    case GN_RCMGR_SCOPE_PEER: return rm->lim.max_peers;
    case GN_RCMGR_SCOPE_PROTOCOL: return rm->lim.max_protocols;
    case GN_RCMGR_SCOPE_IP: return rm->lim.max_ips;
    default: return rm->lim.max_subnets;
    }
}

/* The part of @limit a reservation of priority @prio may fill: limit * (prio + 1) / 256. */
static uint64_t prio_share(uint64_t limit, uint8_t prio)
{
    if (limit == GN_RCMGR_UNLIMITED_MEMORY || prio == 255) {
        return limit;
    }
    uint64_t p = (uint64_t)prio + 1;
    return (limit / 256) * p + ((limit % 256) * p) / 256;
}

/* ---- names */

const char *gn_rcmgr_scope_kind_name(gn_rcmgr_scope_kind kind)
{
    static const char *const names[GN_RCMGR_SCOPE_KINDS] = {
        "system", "transient", "peer", "protocol", "ip", "subnet", "conn", "stream",
    };
    unsigned k = (unsigned)kind;
    return k < GN_RCMGR_SCOPE_KINDS ? names[k] : "unknown";
}

const char *gn_rcmgr_res_name(gn_rcmgr_res res)
{
    static const char *const names[] = {
        "memory", "streams_in", "streams_out", "streams", "conns_in",
        "conns_out", "conns", "conns_upgrading", "fd", "table",
    };
    unsigned r = (unsigned)res;
    return r < GNI_ARRAY_LEN(names) ? names[r] : "unknown";
}

static void fmt_ip(char *out, size_t len, const uint8_t *a, size_t alen)
{
    if (alen == 4) {
        snprintf(out, len, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
        return;
    }
    /* uncompressed groups: unambiguous and enough for a log line */
    size_t pos = 0;
    for (size_t i = 0; i < 16 && pos < len; i += 2) {
        unsigned group = (unsigned)(a[i] << 8 | a[i + 1]);
        int w = snprintf(out + pos, len - pos, "%s%x", i ? ":" : "", group);
        if (w < 0) {
            break;
        }
        pos += (size_t)w;
    }
}

/* Writes "<kind>:<key>" for a keyed scope's key into @out. */
static void key_name(int kind, const uint8_t *key, size_t key_len, char *out, size_t len)
{
    const char *kn = gn_rcmgr_scope_kind_name((gn_rcmgr_scope_kind)kind);
    char k[GN_RCMGR_NAME_MAX];
    k[0] = '\0';
    if (kind == GN_RCMGR_SCOPE_PEER) {
        gn_peer_id pid;
        pid.len = (uint8_t)key_len;
        memcpy(pid.bytes, key, key_len);
        if (gn_peer_id_to_string(&pid, k, sizeof k) < 0) {
            snprintf(k, sizeof k, "?");
        }
    } else if (kind == GN_RCMGR_SCOPE_PROTOCOL) {
        size_t n = GNI_MIN(key_len, sizeof k - 1);
        for (size_t i = 0; i < n; i++) {
            uint8_t c = key[i];
            k[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?'; /* never print raw peer bytes */
        }
        k[n] = '\0';
    } else if (kind == GN_RCMGR_SCOPE_IP) {
        fmt_ip(k, sizeof k, key, key_len);
    } else {
        size_t alen = key_len - 1u;
        char a[64];
        fmt_ip(a, sizeof a, key, alen);
        snprintf(k, sizeof k, "%s/%u", a, key[alen]);
    }
    snprintf(out, len, "%s:%s", kn, k);
}

/* Writes "<kind>[:<key>]" for @sc into @out (GN_RCMGR_NAME_MAX bytes). */
static void scope_name(const rc_scope *sc, char *out, size_t len)
{
    const char *kn = gn_rcmgr_scope_kind_name((gn_rcmgr_scope_kind)sc->kind);
    if (sc->kind == GN_RCMGR_SCOPE_CONN || sc->kind == GN_RCMGR_SCOPE_STREAM) {
        const gn_rcmgr_span *sp = GNI_CONTAINER_OF(sc, const gn_rcmgr_span, self);
        snprintf(out, len, "%s:%llu", kn, (unsigned long long)sp->id);
    } else if (kind_keyed(sc->kind)) {
        const rc_kscope *ks = GNI_CONTAINER_OF(sc, const rc_kscope, s);
        key_name(sc->kind, ks->key, ks->key_len, out, len);
    } else {
        snprintf(out, len, "%s", kn);
    }
}

/* ---- keyed tables */

static uint64_t key_hash(const gn_rcmgr *rm, const uint8_t *key, size_t len)
{
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, key, len, rm->hash_key);
    uint64_t v = 0;
    for (size_t i = 0; i < sizeof h; i++) {
        v = v << 8 | h[i];
    }
    return v;
}

static rc_kscope *table_find(const gn_rcmgr *rm, int kind, const uint8_t *key, size_t len)
{
    const rc_table *t = &rm->tab[kind];
    if (t->nb == 0) {
        return NULL;
    }
    uint64_t h = key_hash(rm, key, len);
    for (rc_kscope *e = t->b[h & (t->nb - 1)]; e; e = e->hnext) {
        if (e->hash == h && e->key_len == len && memcmp(e->key, key, len) == 0) {
            return e;
        }
    }
    return NULL;
}

static int table_insert(rc_table *t, rc_kscope *e)
{
    if (t->n >= t->nb) {
        size_t nb = t->nb ? t->nb * 2 : TABLE_MIN_BUCKETS;
        rc_kscope **b = gn_calloc(nb, sizeof *b);
        if (!b) {
            return GN_ENOMEM;
        }
        for (size_t i = 0; i < t->nb; i++) {
            rc_kscope *x = t->b[i];
            while (x) {
                rc_kscope *next = x->hnext;
                size_t k = x->hash & (nb - 1);
                x->hnext = b[k];
                b[k] = x;
                x = next;
            }
        }
        gn_free(t->b);
        t->b = b;
        t->nb = nb;
    }
    size_t k = e->hash & (t->nb - 1);
    e->hnext = t->b[k];
    t->b[k] = e;
    t->n++;
    gni_list_add_tail(&t->all, &e->node);
    return 0;
}

static void table_remove(rc_table *t, rc_kscope *e)
{
    rc_kscope **pp = &t->b[e->hash & (t->nb - 1)];
    while (*pp && *pp != e) {
        pp = &(*pp)->hnext;
    }
    if (*pp) {
        *pp = e->hnext;
        t->n--;
    }
    gni_list_del(&e->node);
}

static void refuse(gn_rcmgr *rm, rc_scope *sc, int kind, const char *name, gn_rcmgr_res res,
                   uint64_t used, uint64_t asked, uint64_t limit)
{
    rm->refused_once = true;
    rm->refusals[kind]++;
    if (sc) {
        sc->refused++;
    }
    gn_rcmgr_refusal *r = &rm->last;
    r->scope = (gn_rcmgr_scope_kind)kind;
    r->res = res;
    r->used = used;
    r->asked = asked;
    r->limit = limit;
    if (sc) {
        scope_name(sc, r->name, sizeof r->name);
    } else {
        snprintf(r->name, sizeof r->name, "%s", name ? name : "?");
    }
}

static rc_override *override_find(const gn_rcmgr *rm, int kind, const uint8_t *key, size_t len)
{
    for (const gni_list *l = rm->overrides.next; l != &rm->overrides; l = l->next) {
        rc_override *o = GNI_CONTAINER_OF(l, rc_override, node);
        if (o->kind == kind && o->key_len == len && memcmp(o->key, key, len) == 0) {
            return o;
        }
    }
    return NULL;
}

/*
 * Takes a reference on the scope of (@kind, @key), creating it if the
 * table has room. Errors: GN_ERESOURCE (table full), GN_ENOMEM.
 */
static int scope_get(gn_rcmgr *rm, int kind, const uint8_t *key, size_t len, rc_kscope **out)
{
    rc_table *t = &rm->tab[kind];
    uint32_t cap = table_cap(rm, kind);
    rc_kscope *e = rm->hot[kind];
    if (e && e->key_len == len && memcmp(e->key, key, len) == 0) {
        if (e->s.refs > 0) {
            e->s.refs++;
            *out = e;
            return 0;
        }
        /* parked: it exists again, as a new scope would (its override is
         * kept up to date while parked: gn_rcmgr_set_scope_limit()) */
        if (t->n < cap && table_insert(t, e) == 0) {
            e->s.refused = 0;
            e->s.refs = 1;
            *out = e;
            return 0;
        }
    }
    e = table_find(rm, kind, key, len);
    if (e) {
        e->s.refs++;
        *out = e;
        return 0;
    }
    if (t->n >= cap) { /* refused without allocating: floods cost no memory */
        char name[GN_RCMGR_NAME_MAX];
        key_name(kind, key, len, name, sizeof name);
        refuse(rm, NULL, kind, name, GN_RCMGR_RES_TABLE, t->n, 1, cap);
        return GN_ERESOURCE;
    }
    e = gn_calloc(1, sizeof *e + len);
    if (!e) {
        return GN_ENOMEM;
    }
    e->s.kind = (uint8_t)kind;
    e->s.refs = 1;
    e->key_len = (uint16_t)len;
    memcpy(e->key, key, len);
    e->hash = key_hash(rm, key, len);
    ks_set_override(rm, e, override_find(rm, kind, key, len));
    int rc = table_insert(t, e);
    if (rc < 0) {
        gn_free(e);
        return rc;
    }
    rc_kscope *old = rm->hot[kind];
    if (old && old->s.refs == 0) {
        gn_free(old); /* parked */
    }
    rm->hot[kind] = e;
    *out = e;
    return 0;
}

/* Drops a reference; the scope is freed with the last one (it is empty then). */
static void scope_put(gn_rcmgr *rm, rc_kscope *e)
{
    if (!e) {
        return;
    }
    assert(e->s.refs > 0);
    if (--e->s.refs > 0) {
        return;
    }
    for (int i = 0; i < C_N; i++) {
        assert(e->s.use[i] == 0);
    }
    table_remove(&rm->tab[e->s.kind], e);
    if (rm->hot[e->s.kind] != e) {
        gn_free(e);
    } /* else parked: see gn_rcmgr.hot */
}

/* ---- admission */

/* Checks one count: usage + delta within limit (GN_RCMGR_UNLIMITED: none). */
static bool count_over(uint64_t used, uint64_t delta, uint32_t limit)
{
    return delta > 0 && limit != GN_RCMGR_UNLIMITED && used + delta > limit;
}

/*
 * Admits @d into @sc. On refusal returns false and fills the resource, the
 * usage, what was asked and the limit.
 */
static bool scope_admit(const gn_rcmgr *rm, const rc_scope *sc, const uint64_t d[C_N], uint8_t prio,
                        gn_rcmgr_res *res, uint64_t *used, uint64_t *asked, uint64_t *limit)
{
    const gn_rcmgr_limit *l = scope_limit(rm, sc);
    const uint64_t *u = sc->use;
    if (d[C_MEM] > 0) {
        uint64_t cap = prio_share(l->memory, prio); /* UINT64_MAX when unlimited: no wrap either */
        if (d[C_MEM] > cap || u[C_MEM] > cap - d[C_MEM]) {
            *res = GN_RCMGR_RES_MEMORY, *used = u[C_MEM], *asked = d[C_MEM], *limit = cap;
            return false;
        }
    }
#define CHECK_COUNT(R, usedv, deltav, lim)                                                   \
    do {                                                                                     \
        if (count_over((usedv), (deltav), (lim))) {                                          \
            *res = (R), *used = (usedv), *asked = (deltav), *limit = (lim);                  \
            return false;                                                                    \
        }                                                                                    \
    } while (0)
    /* groups with nothing asked are skipped: a stream open or a memory
     * reservation (the muxers' per-stream calls) checks one group */
    if ((d[C_SIN] | d[C_SOUT]) != 0) {
        CHECK_COUNT(GN_RCMGR_RES_STREAMS_IN, u[C_SIN], d[C_SIN], l->streams_in);
        CHECK_COUNT(GN_RCMGR_RES_STREAMS_OUT, u[C_SOUT], d[C_SOUT], l->streams_out);
        CHECK_COUNT(GN_RCMGR_RES_STREAMS, u[C_SIN] + u[C_SOUT], d[C_SIN] + d[C_SOUT], l->streams);
    }
    if ((d[C_CIN] | d[C_COUT] | d[C_CUP] | d[C_FD]) != 0) {
        CHECK_COUNT(GN_RCMGR_RES_CONNS_IN, u[C_CIN], d[C_CIN], l->conns_in);
        CHECK_COUNT(GN_RCMGR_RES_CONNS_OUT, u[C_COUT], d[C_COUT], l->conns_out);
        CHECK_COUNT(GN_RCMGR_RES_CONNS, u[C_CIN] + u[C_COUT], d[C_CIN] + d[C_COUT], l->conns);
        CHECK_COUNT(GN_RCMGR_RES_CONNS_UPGRADING, u[C_CUP], d[C_CUP], l->conns_upgrading);
        CHECK_COUNT(GN_RCMGR_RES_FD, u[C_FD], d[C_FD], l->fd);
    }
#undef CHECK_COUNT
    return true;
}

/* Admits @d into every scope of @ch or records the first refusal. */
static int chain_admit(gn_rcmgr *rm, rc_scope *const *ch, size_t n, const uint64_t d[C_N],
                       uint8_t prio)
{
    for (size_t i = 0; i < n; i++) {
        gn_rcmgr_res res;
        uint64_t used, asked, limit;
        if (!scope_admit(rm, ch[i], d, prio, &res, &used, &asked, &limit)) {
            refuse(rm, ch[i], ch[i]->kind, NULL, res, used, asked, limit);
            return GN_ERESOURCE;
        }
    }
    return 0;
}

/* The counters @d changes (at most C_N); a span's delta touches one to three. */
static size_t delta_keys(const uint64_t d[C_N], uint8_t keys[C_N])
{
    size_t nk = 0;
    for (int k = 0; k < C_N; k++) {
        if (d[k] != 0) {
            keys[nk++] = (uint8_t)k;
        }
    }
    return nk;
}

static void chain_add(rc_scope *const *ch, size_t n, const uint64_t d[C_N])
{
    uint8_t keys[C_N];
    size_t nk = delta_keys(d, keys);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < nk; j++) {
            ch[i]->use[keys[j]] += d[keys[j]];
        }
    }
}

static void chain_sub(rc_scope *const *ch, size_t n, const uint64_t d[C_N])
{
    uint8_t keys[C_N];
    size_t nk = delta_keys(d, keys);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < nk; j++) {
            assert(ch[i]->use[keys[j]] >= d[keys[j]]);
            ch[i]->use[keys[j]] -= d[keys[j]];
        }
    }
}

/*
 * Stream spans: one stream count (@k, C_SIN or C_SOUT) and @mem bytes of
 * memory at GN_RCMGR_PRIO_ALWAYS. The same checks as chain_admit() with a
 * delta of just these, without the general loops: the muxers open, move and
 * end a span for every stream, so this is their hot path.
 */
static int stream_admit(gn_rcmgr *rm, rc_scope *const *ch, size_t n, int k, uint64_t cnt,
                        uint64_t mem)
{
    for (size_t i = 0; i < n; i++) {
        const rc_scope *sc = ch[i];
        const gn_rcmgr_limit *l = scope_limit(rm, sc);
        const uint64_t *u = sc->use;
        gn_rcmgr_res res;
        uint64_t used, asked, limit;
        if (mem > 0 && (mem > l->memory || u[C_MEM] > l->memory - mem)) {
            res = GN_RCMGR_RES_MEMORY, used = u[C_MEM], asked = mem, limit = l->memory;
        } else if (count_over(u[k], cnt, k == C_SIN ? l->streams_in : l->streams_out)) {
            res = k == C_SIN ? GN_RCMGR_RES_STREAMS_IN : GN_RCMGR_RES_STREAMS_OUT;
            used = u[k], asked = cnt, limit = k == C_SIN ? l->streams_in : l->streams_out;
        } else if (count_over(u[C_SIN] + u[C_SOUT], cnt, l->streams)) {
            res = GN_RCMGR_RES_STREAMS, used = u[C_SIN] + u[C_SOUT], asked = cnt;
            limit = l->streams;
        } else {
            continue;
        }
        refuse(rm, ch[i], sc->kind, NULL, res, used, asked, limit);
        return GN_ERESOURCE;
    }
    return 0;
}

/* Adds (@sign > 0) or takes away a stream span's own usage in @ch. */
static void stream_apply(rc_scope *const *ch, size_t n, int k, uint64_t cnt, uint64_t mem,
                         int sign)
{
    for (size_t i = 0; i < n; i++) {
        if (sign > 0) {
            ch[i]->use[k] += cnt;
            ch[i]->use[C_MEM] += mem;
        } else {
            assert(ch[i]->use[k] >= cnt && ch[i]->use[C_MEM] >= mem);
            ch[i]->use[k] -= cnt;
            ch[i]->use[C_MEM] -= mem;
        }
    }
}

/* The count a stream span holds (C_SIN or C_SOUT). */
static int stream_key(const gn_rcmgr_span *sp)
{
    return sp->own[C_SIN] ? C_SIN : C_SOUT;
}

static size_t conn_chain(gn_rcmgr_conn *c, rc_scope *ch[CHAIN_MAX])
{
    gn_rcmgr *rm = c->span.rm;
    size_t n = 0;
    ch[n++] = &c->span.self;
    ch[n++] = c->peer ? &c->peer->s : &rm->transient;
    if (c->ip) {
        ch[n++] = &c->ip->s;
    }
    if (c->subnet) {
        ch[n++] = &c->subnet->s;
    }
    ch[n++] = &rm->system;
    return n;
}

static size_t stream_chain(gn_rcmgr_stream *s, rc_scope *ch[CHAIN_MAX])
{
    gn_rcmgr *rm = s->span.rm;
    size_t n = 0;
    ch[n++] = &s->span.self;
    if (s->conn) {
        ch[n++] = &s->conn->span.self;
    }
    ch[n++] = &s->peer->s;
    ch[n++] = s->proto ? &s->proto->s : &rm->transient;
    ch[n++] = &rm->system;
    return n;
}

static size_t span_chain(gn_rcmgr_span *sp, rc_scope *ch[CHAIN_MAX])
{
    if (sp->is_stream) {
        return stream_chain(GNI_CONTAINER_OF(sp, gn_rcmgr_stream, span), ch);
    }
    return conn_chain(GNI_CONTAINER_OF(sp, gn_rcmgr_conn, span), ch);
}

/* ---- the manager */

int gn_rcmgr_new(const gn_rcmgr_limits *limits, gn_rcmgr **out)
{
    gn_rcmgr_limits def;
    if (!limits) {
        gn_rcmgr_limits_default(&def);
        limits = &def;
    }
    if (!out || limits_valid(limits) < 0) {
        return GN_EINVAL;
    }
    if (sodium_init() < 0) {
        return GN_EINTERNAL;
    }
    gn_rcmgr *rm = gn_calloc(1, sizeof *rm);
    if (!rm) {
        return GN_ENOMEM;
    }
    rm->lim = *limits;
    rm->system.kind = GN_RCMGR_SCOPE_SYSTEM;
    rm->transient.kind = GN_RCMGR_SCOPE_TRANSIENT;
    rm->system.lim = &rm->lim.system;
    rm->transient.lim = &rm->lim.transient;
    for (int k = 0; k < GN_RCMGR_SCOPE_KINDS; k++) {
        gni_list_init(&rm->tab[k].all);
    }
    gni_list_init(&rm->conns);
    gni_list_init(&rm->streams);
    gni_list_init(&rm->spare_streams);
    gni_list_init(&rm->overrides);
    gn_rng_fill(gn_rng_system(), rm->hash_key, sizeof rm->hash_key);
    *out = rm;
    return 0;
}

void gn_rcmgr_free(gn_rcmgr *rm)
{
    if (!rm) {
        return;
    }
    while (!gni_list_empty(&rm->streams)) {
        gn_rcmgr_stream *s = GNI_CONTAINER_OF(rm->streams.next, gn_rcmgr_stream, node);
        gni_list_del(&s->node);
        gn_free(s);
    }
    while (!gni_list_empty(&rm->conns)) {
        gn_rcmgr_conn *c = GNI_CONTAINER_OF(rm->conns.next, gn_rcmgr_conn, node);
        gni_list_del(&c->node);
        gn_free(c);
    }
    while (!gni_list_empty(&rm->spare_streams)) {
        gn_rcmgr_stream *s = GNI_CONTAINER_OF(rm->spare_streams.next, gn_rcmgr_stream, node);
        gni_list_del(&s->node);
        gn_free(s);
    }
    for (int k = 0; k < GN_RCMGR_SCOPE_KINDS; k++) {
        rc_table *t = &rm->tab[k];
        if (rm->hot[k] && rm->hot[k]->s.refs == 0) {
            gn_free(rm->hot[k]); /* parked */
        }
        while (!gni_list_empty(&t->all)) {
            rc_kscope *e = GNI_CONTAINER_OF(t->all.next, rc_kscope, node);
            gni_list_del(&e->node);
            gn_free(e);
        }
        gn_free(t->b);
    }
    while (!gni_list_empty(&rm->overrides)) {
        rc_override *o = GNI_CONTAINER_OF(rm->overrides.next, rc_override, node);
        gni_list_del(&o->node);
        gn_free(o);
    }
    gn_free(rm);
}

int gn_rcmgr_set_limits(gn_rcmgr *rm, const gn_rcmgr_limits *limits)
{
    if (!rm || limits_valid(limits) < 0) {
        return GN_EINVAL;
    }
    rm->lim = *limits;
    return 0;
}

void gn_rcmgr_get_limits(const gn_rcmgr *rm, gn_rcmgr_limits *out)
{
    *out = rm->lim;
}

/* IPv4-mapped IPv6 becomes IPv4. Returns the address length (4 or 16). */
static size_t ip_normalise(const uint8_t *ip, size_t len, uint8_t out[16])
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (len == 16 && memcmp(ip, mapped, sizeof mapped) == 0) {
        memcpy(out, ip + 12, 4);
        return 4;
    }
    memcpy(out, ip, len);
    return len;
}

/* The subnet key of an address: masked to the prefix, then the prefix length. */
static size_t subnet_key(const gn_rcmgr *rm, const uint8_t *a, size_t alen, uint8_t out[17])
{
    unsigned prefix = alen == 4 ? rm->lim.ipv4_prefix : rm->lim.ipv6_prefix;
    for (size_t i = 0; i < alen; i++) {
        unsigned bits = prefix > i * 8 ? prefix - (unsigned)(i * 8) : 0;
        uint8_t mask = bits >= 8 ? 0xff : (uint8_t)(0xff00u >> bits);
        out[i] = a[i] & mask;
    }
    out[alen] = (uint8_t)prefix;
    return alen + 1;
}

int gn_rcmgr_open_conn(gn_rcmgr *rm, gn_rcmgr_dir dir, bool fd, const uint8_t *ip, size_t ip_len,
                       gn_rcmgr_conn **out)
{
    if (!rm || !out || (dir != GN_RCMGR_INBOUND && dir != GN_RCMGR_OUTBOUND) ||
        (ip_len != 0 && ip_len != 4 && ip_len != 16) || (!ip && ip_len > 0)) {
        return GN_EINVAL;
    }
    int rc = 0;
    gn_rcmgr_conn *c = gn_calloc(1, sizeof *c);
    if (!c) {
        return GN_ENOMEM;
    }
    c->span.rm = rm;
    c->span.self.kind = GN_RCMGR_SCOPE_CONN;
    c->span.self.lim = &rm->lim.conn;
    c->span.id = ++rm->next_id;
    if (ip_len > 0) {
        uint8_t a[16], sk[17];
        size_t alen = ip_normalise(ip, ip_len, a);
        if ((rc = scope_get(rm, GN_RCMGR_SCOPE_IP, a, alen, &c->ip)) < 0) {
            goto out;
        }
        size_t sklen = subnet_key(rm, a, alen, sk);
        if ((rc = scope_get(rm, GN_RCMGR_SCOPE_SUBNET, sk, sklen, &c->subnet)) < 0) {
            goto out;
        }
    }
    uint64_t d[C_N] = {0};
    d[dir == GN_RCMGR_INBOUND ? C_CIN : C_COUT] = 1;
    d[C_CUP] = 1;
    d[C_FD] = fd ? 1 : 0;
    rc_scope *ch[CHAIN_MAX];
    size_t n = conn_chain(c, ch);
    if ((rc = chain_admit(rm, ch, n, d, GN_RCMGR_PRIO_ALWAYS)) < 0) {
        goto out;
    }
    chain_add(ch, n, d);
    memcpy(c->span.own, d, sizeof d);
    gni_list_add_tail(&rm->conns, &c->node);
    *out = c;
    c = NULL;
out:
    if (c) {
        scope_put(rm, c->subnet);
        scope_put(rm, c->ip);
        gn_free(c);
    }
    return rc;
}

int gn_rcmgr_conn_set_peer(gn_rcmgr_conn *c, const gn_peer_id *peer)
{
    if (!c || !peer || peer->len == 0 || peer->len > GN_PEER_ID_MAX_BYTES) {
        return GN_EINVAL;
    }
    if (c->peer) {
        return GN_ESTATE;
    }
    gn_rcmgr *rm = c->span.rm;
    rc_kscope *ps = NULL;
    int rc = scope_get(rm, GN_RCMGR_SCOPE_PEER, peer->bytes, peer->len, &ps);
    if (rc < 0) {
        return rc;
    }
    /* the peer scope takes everything but the upgrading mark */
    uint64_t move[C_N];
    memcpy(move, c->span.own, sizeof move);
    move[C_CUP] = 0;
    rc_scope *target = &ps->s;
    if ((rc = chain_admit(rm, &target, 1, move, GN_RCMGR_PRIO_ALWAYS)) < 0) {
        scope_put(rm, ps);
        return rc;
    }
    rc_scope *tr = &rm->transient;
    chain_sub(&tr, 1, c->span.own);
    chain_add(&target, 1, move);
    uint64_t up[C_N] = {0};
    up[C_CUP] = c->span.own[C_CUP];
    rc_scope *ch[CHAIN_MAX];
    size_t n = conn_chain(c, ch); /* still the transient chain; skip ch[1] */
    for (size_t i = 0; i < n; i++) {
        if (i != 1) {
            chain_sub(&ch[i], 1, up);
        }
    }
    c->span.own[C_CUP] = 0;
    c->peer = ps;
    return 0;
}

static void conn_free(gn_rcmgr_conn *c)
{
    for (int k = 0; k < C_N; k++) {
        assert(c->span.self.use[k] == 0);
    }
    gni_list_del(&c->node);
    gn_free(c);
}

void gn_rcmgr_conn_done(gn_rcmgr_conn *c)
{
    if (!c || c->done) {
        return;
    }
    gn_rcmgr *rm = c->span.rm;
    rc_scope *ch[CHAIN_MAX];
    size_t n = conn_chain(c, ch);
    chain_sub(ch, n, c->span.own);
    memset(c->span.own, 0, sizeof c->span.own);
    scope_put(rm, c->peer);
    scope_put(rm, c->ip);
    scope_put(rm, c->subnet);
    c->peer = c->ip = c->subnet = NULL;
    c->done = true;
    if (c->streams == 0) {
        conn_free(c);
    }
}

static int open_stream(gn_rcmgr *rm, gn_rcmgr_conn *conn, const gn_peer_id *peer,
                       gn_rcmgr_dir dir, size_t mem, gn_rcmgr_stream **out);

/* Keeps an ended (or never admitted) stream span for reuse, or frees it. */
static void stream_spare(gn_rcmgr *rm, gn_rcmgr_stream *s)
{
    if (rm->n_spare_streams < SPARE_STREAMS_MAX) {
        gni_list_add_tail(&rm->spare_streams, &s->node);
        rm->n_spare_streams++;
    } else {
        gn_free(s);
    }
}

int gn_rcmgr_open_stream(gn_rcmgr *rm, gn_rcmgr_conn *conn, const gn_peer_id *peer,
                         gn_rcmgr_dir dir, gn_rcmgr_stream **out)
{
    return open_stream(rm, conn, peer, dir, 0, out);
}

int gni_rcmgr_open_stream_mem(gn_rcmgr *rm, gn_rcmgr_conn *conn, gn_rcmgr_dir dir, size_t mem,
                              gn_rcmgr_stream **out)
{
    return conn ? open_stream(rm, conn, NULL, dir, mem, out) : GN_EINVAL;
}

/*
 * One stream count more in @sc, in direction @k (C_SIN or C_SOUT): within
 * the scope's direction and total limits? The muxers' per-stream path
 * (open, move to a protocol) checks its scopes with this alone.
 */
static inline bool stream_fits(const rc_scope *sc, int k)
{
    const gn_rcmgr_limit *l = sc->lim;
    uint32_t lk = k == C_SIN ? l->streams_in : l->streams_out;
    return (lk == GN_RCMGR_UNLIMITED || sc->use[k] < lk) &&
           (l->streams == GN_RCMGR_UNLIMITED || sc->use[C_SIN] + sc->use[C_SOUT] < l->streams);
}

/* Takes a spare stream span (fields reset as a new one) or allocates one; NULL: no memory. */
static gn_rcmgr_stream *stream_take(gn_rcmgr *rm)
{
    gn_rcmgr_stream *s;
    if (!gni_list_empty(&rm->spare_streams)) {
        s = GNI_CONTAINER_OF(rm->spare_streams.next, gn_rcmgr_stream, node);
        gni_list_del(&s->node);
        rm->n_spare_streams--;
        /* an ended span's own scope is empty again (its own usage left the
         * chain with it); only what else it carried is reset */
        memset(s->span.own, 0, sizeof s->span.own);
        s->span.self.refused = 0;
        s->proto = NULL;
    } else if (!(s = gn_calloc(1, sizeof *s))) {
        return NULL;
    } else {
        s->span.is_stream = true;
        s->span.self.kind = GN_RCMGR_SCOPE_STREAM;
    }
    s->span.rm = rm;
    s->span.self.lim = &rm->lim.stream;
    s->span.id = ++rm->next_id;
    return s;
}

/*
 * The muxers' path (a connection with its peer, no memory): the chain is
 * stream -> conn -> peer -> transient -> system, checked and counted
 * without building it (the same checks as stream_admit()). Returns 1 without
 * doing anything when a scope would refuse: the general path then refuses
 * the span and records where.
 */
static int open_conn_stream(gn_rcmgr *rm, gn_rcmgr_conn *conn, int k, gn_rcmgr_stream **out)
{
    rc_scope *sc[4] = {&conn->span.self, &conn->peer->s, &rm->transient, &rm->system};
    const gn_rcmgr_limit *sl = &rm->lim.stream;
    bool fast = sl->streams != 0 && (k == C_SIN ? sl->streams_in : sl->streams_out) != 0 &&
                stream_fits(sc[0], k) && stream_fits(sc[1], k) && stream_fits(sc[2], k) &&
                stream_fits(sc[3], k);
    if (!fast) {
        return 1; /* refused somewhere (or a stream limit of 0): the general path says where */
    }
    gn_rcmgr_stream *s = stream_take(rm);
    if (!s) {
        return GN_ENOMEM;
    }
    s->conn = conn;
    s->peer = conn->peer;
    s->peer->s.refs++;
    s->span.self.use[k] = 1;
    for (int i = 0; i < 4; i++) {
        sc[i]->use[k]++;
    }
    s->span.own[k] = 1;
    conn->streams++;
    gni_list_add_tail(&rm->streams, &s->node);
    *out = s;
    return 0;
}

/* gn_rcmgr_open_stream() that also reserves @mem bytes (GN_RCMGR_PRIO_ALWAYS) in the same admission. */
static int open_stream(gn_rcmgr *rm, gn_rcmgr_conn *conn, const gn_peer_id *peer,
                       gn_rcmgr_dir dir, size_t mem, gn_rcmgr_stream **out)
{
    if (!rm || !out || (dir != GN_RCMGR_INBOUND && dir != GN_RCMGR_OUTBOUND)) {
        return GN_EINVAL;
    }
    if (peer && (peer->len == 0 || peer->len > GN_PEER_ID_MAX_BYTES)) {
        return GN_EINVAL;
    }
    if (conn) {
        if (conn->span.rm != rm || conn->done) {
            return GN_EINVAL;
        }
        if (!conn->peer) {
            return GN_ESTATE;
        }
        if (peer && (peer->len != conn->peer->key_len ||
                     memcmp(peer->bytes, conn->peer->key, peer->len) != 0)) {
            return GN_EINVAL;
        }
    } else if (!peer) {
        return GN_EINVAL;
    }
    int k = dir == GN_RCMGR_INBOUND ? C_SIN : C_SOUT;
    if (conn && mem == 0) {
        int fast = open_conn_stream(rm, conn, k, out);
        if (fast <= 0) {
            return fast;
        }
    }
    gn_rcmgr_stream *s = stream_take(rm);
    if (!s) {
        return GN_ENOMEM;
    }
    s->conn = conn;
    int rc;
    if (conn) {
        s->peer = conn->peer;
        s->peer->s.refs++;
    } else if ((rc = scope_get(rm, GN_RCMGR_SCOPE_PEER, peer->bytes, peer->len, &s->peer)) < 0) {
        stream_spare(rm, s);
        return rc;
    }
    rc_scope *ch[CHAIN_MAX];
    size_t n = stream_chain(s, ch);
    /* the new span's own scope holds nothing yet: only its limits matter,
     * and the usual ones (a stream each, memory for @mem) admit it */
    const gn_rcmgr_limit *sl = &rm->lim.stream;
    bool self_ok = sl->streams != 0 && (k == C_SIN ? sl->streams_in : sl->streams_out) != 0 &&
                   mem <= sl->memory;
    if ((rc = self_ok ? stream_admit(rm, ch + 1, n - 1, k, 1, mem)
                      : stream_admit(rm, ch, n, k, 1, mem)) < 0) {
        scope_put(rm, s->peer);
        stream_spare(rm, s);
        return rc;
    }
    stream_apply(ch, n, k, 1, mem, 1);
    s->span.own[k] = 1;
    s->span.own[C_MEM] = mem;
    if (conn) {
        conn->streams++;
    }
    gni_list_add_tail(&rm->streams, &s->node);
    *out = s;
    return 0;
}

int gn_rcmgr_stream_set_protocol(gn_rcmgr_stream *s, const char *id, size_t len)
{
    if (!s || !id || len == 0 || len > GN_RCMGR_PROTOCOL_MAX) {
        return GN_EINVAL;
    }
    if (s->proto) {
        return GN_ESTATE;
    }
    gn_rcmgr *rm = s->span.rm;
    rc_kscope *ps = NULL;
    int rc = scope_get(rm, GN_RCMGR_SCOPE_PROTOCOL, (const uint8_t *)id, len, &ps);
    if (rc < 0) {
        return rc;
    }
    rc_scope *target = &ps->s;
    int k = stream_key(&s->span);
    uint64_t cnt = s->span.own[k], mem = s->span.own[C_MEM];
    rc_scope *tr = &rm->transient;
    if (cnt == 1 && mem == 0) { /* a muxer's stream span: one count, no memory */
        if (!stream_fits(target, k)) {
            rc = stream_admit(rm, &target, 1, k, cnt, mem); /* refuses, records where */
            assert(rc < 0);
            scope_put(rm, ps);
            return rc;
        }
        assert(tr->use[k] >= 1);
        tr->use[k]--;
        target->use[k]++;
        s->proto = ps;
        return 0;
    }
    if ((rc = stream_admit(rm, &target, 1, k, cnt, mem)) < 0) {
        scope_put(rm, ps);
        return rc;
    }
    stream_apply(&tr, 1, k, cnt, mem, -1);
    stream_apply(&target, 1, k, cnt, mem, 1);
    s->proto = ps;
    return 0;
}

void gn_rcmgr_stream_done(gn_rcmgr_stream *s)
{
    if (!s) {
        return;
    }
    gn_rcmgr *rm = s->span.rm;
    int k = stream_key(&s->span);
    uint64_t cnt = s->span.own[k], mem = s->span.own[C_MEM];
    if (mem == 0) { /* the muxers' stream spans: counts alone */
        rc_scope *sc[5] = {&s->span.self, &s->peer->s, s->proto ? &s->proto->s : &rm->transient,
                           &rm->system, s->conn ? &s->conn->span.self : NULL};
        for (int i = 0; i < 5 && sc[i]; i++) {
            assert(sc[i]->use[k] >= cnt);
            sc[i]->use[k] -= cnt;
        }
    } else {
        rc_scope *ch[CHAIN_MAX];
        size_t n = stream_chain(s, ch);
        stream_apply(ch, n, k, cnt, mem, -1);
    }
    scope_put(rm, s->proto);
    scope_put(rm, s->peer);
    gni_list_del(&s->node);
    gn_rcmgr_conn *c = s->conn;
    stream_spare(rm, s);
    if (c) {
        assert(c->streams > 0);
        if (--c->streams == 0 && c->done) {
            conn_free(c);
        }
    }
}

gn_rcmgr_span *gn_rcmgr_conn_span(gn_rcmgr_conn *conn)
{
    return &conn->span;
}

gn_rcmgr_span *gn_rcmgr_stream_span(gn_rcmgr_stream *stream)
{
    return &stream->span;
}

int gn_rcmgr_reserve_memory(gn_rcmgr_span *sp, size_t len, uint8_t prio)
{
    if (!sp) {
        return GN_EINVAL;
    }
    if (len == 0) {
        return 0;
    }
    rc_scope *ch[CHAIN_MAX];
    size_t n = span_chain(sp, ch);
    for (size_t i = 0; i < n; i++) { /* chain_admit() for memory alone */
        const uint64_t *u = ch[i]->use;
        uint64_t cap = prio_share(scope_limit(sp->rm, ch[i])->memory, prio);
        if (len > cap || u[C_MEM] > cap - len) {
            refuse(sp->rm, ch[i], ch[i]->kind, NULL, GN_RCMGR_RES_MEMORY, u[C_MEM], len, cap);
            return GN_ERESOURCE;
        }
    }
    for (size_t i = 0; i < n; i++) {
        ch[i]->use[C_MEM] += len;
    }
    sp->own[C_MEM] += len;
    return 0;
}

int gn_rcmgr_release_memory(gn_rcmgr_span *sp, size_t len)
{
    if (!sp || len > sp->own[C_MEM]) {
        return GN_EINVAL;
    }
    rc_scope *ch[CHAIN_MAX];
    size_t n = span_chain(sp, ch);
    for (size_t i = 0; i < n; i++) {
        assert(ch[i]->use[C_MEM] >= len);
        ch[i]->use[C_MEM] -= len;
    }
    sp->own[C_MEM] -= len;
    return 0;
}

static void stat_of(const uint64_t u[C_N], gn_rcmgr_usage *out)
{
    memset(out, 0, sizeof *out);
    out->memory = u[C_MEM];
    out->streams_in = (uint32_t)u[C_SIN];
    out->streams_out = (uint32_t)u[C_SOUT];
    out->conns_in = (uint32_t)u[C_CIN];
    out->conns_out = (uint32_t)u[C_COUT];
    out->conns_upgrading = (uint32_t)u[C_CUP];
    out->fd = (uint32_t)u[C_FD];
}

static void scope_stat(const rc_scope *sc, gn_rcmgr_usage *out)
{
    stat_of(sc->use, out);
    out->spans = kind_keyed(sc->kind) ? sc->refs : 0;
    out->refused = sc->refused;
}

void gn_rcmgr_span_stat(const gn_rcmgr_span *sp, gn_rcmgr_usage *out)
{
    stat_of(sp->own, out);
    out->refused = sp->self.refused;
}

/*
 * The table key of a caller's @key for a keyed @kind, in @buf (at least
 * GN_RCMGR_PROTOCOL_MAX bytes) or @key itself. Errors: GN_EINVAL.
 */
static int user_key(const gn_rcmgr *rm, int kind, const void *key, size_t len, uint8_t *buf,
                    const uint8_t **out, size_t *out_len)
{
    const uint8_t *k = key;
    switch (kind) {
    case GN_RCMGR_SCOPE_PEER:
    case GN_RCMGR_SCOPE_PROTOCOL:
        if (!k || len == 0 ||
            len > (kind == GN_RCMGR_SCOPE_PEER ? GN_PEER_ID_MAX_BYTES : GN_RCMGR_PROTOCOL_MAX)) {
            return GN_EINVAL;
        }
        *out = k;
        *out_len = len;
        return 0;
    case GN_RCMGR_SCOPE_IP:
    case GN_RCMGR_SCOPE_SUBNET: {
        if (!k || (len != 4 && len != 16)) {
            return GN_EINVAL;
        }
        uint8_t a[16];
        size_t alen = ip_normalise(k, len, a);
        if (kind == GN_RCMGR_SCOPE_IP) {
            memcpy(buf, a, alen);
            *out_len = alen;
        } else {
            *out_len = subnet_key(rm, a, alen, buf);
        }
        *out = buf;
        return 0;
    }
    default:
        return GN_EINVAL;
    }
}

int gn_rcmgr_stat(const gn_rcmgr *rm, gn_rcmgr_scope_kind kind, const void *key, size_t key_len,
                  gn_rcmgr_usage *out)
{
    if (!rm || !out) {
        return GN_EINVAL;
    }
    const rc_scope *sc = NULL;
    if (kind == GN_RCMGR_SCOPE_SYSTEM || kind == GN_RCMGR_SCOPE_TRANSIENT) {
        if (key || key_len) {
            return GN_EINVAL;
        }
        sc = kind == GN_RCMGR_SCOPE_SYSTEM ? &rm->system : &rm->transient;
    } else {
        uint8_t buf[GN_RCMGR_PROTOCOL_MAX];
        const uint8_t *k;
        size_t klen;
        int rc = user_key(rm, kind, key, key_len, buf, &k, &klen);
        if (rc < 0) {
            return rc;
        }
        const rc_kscope *e = table_find(rm, kind, k, klen);
        sc = e ? &e->s : NULL;
    }
    if (!sc) {
        return GN_ENOTFOUND;
    }
    scope_stat(sc, out);
    return 0;
}

int gn_rcmgr_set_scope_limit(gn_rcmgr *rm, gn_rcmgr_scope_kind kind, const void *key,
                             size_t key_len, const gn_rcmgr_limit *limit)
{
    if (!rm || !kind_keyed(kind)) {
        return GN_EINVAL;
    }
    uint8_t buf[GN_RCMGR_PROTOCOL_MAX];
    const uint8_t *k;
    size_t klen;
    int rc = user_key(rm, kind, key, key_len, buf, &k, &klen);
    if (rc < 0) {
        return rc;
    }
    rc_override *o = override_find(rm, kind, k, klen);
    rc_kscope *e = table_find(rm, kind, k, klen);
    rc_kscope *hot = rm->hot[kind];
    if (!e && hot && hot->s.refs == 0 && hot->key_len == klen && memcmp(hot->key, k, klen) == 0) {
        e = hot; /* parked: it keeps its override for when it is taken again */
    }
    if (!limit) {
        if (!o) {
            return GN_ENOTFOUND;
        }
        if (e) {
            ks_set_override(rm, e, NULL);
        }
        gni_list_del(&o->node);
        gn_free(o);
        rm->n_overrides--;
        return 0;
    }
    if (!o) {
        if (rm->n_overrides >= GN_RCMGR_MAX_OVERRIDES) {
            return GN_ELIMIT;
        }
        o = gn_calloc(1, sizeof *o + klen);
        if (!o) {
            return GN_ENOMEM;
        }
        o->kind = (uint8_t)kind;
        o->key_len = (uint16_t)klen;
        memcpy(o->key, k, klen);
        gni_list_add_tail(&rm->overrides, &o->node);
        rm->n_overrides++;
        if (e) {
            ks_set_override(rm, e, o);
        }
    }
    o->lim = *limit;
    return 0;
}

static int report(const gn_rcmgr *rm, const rc_scope *sc, const uint8_t *key, size_t key_len,
                  int (*cb)(void *, const gn_rcmgr_scope_info *), void *ud)
{
    char name[GN_RCMGR_NAME_MAX];
    scope_name(sc, name, sizeof name);
    gn_rcmgr_scope_info info;
    info.kind = (gn_rcmgr_scope_kind)sc->kind;
    info.name = name;
    info.key = key;
    info.key_len = key_len;
    scope_stat(sc, &info.stat);
    info.limit = scope_limit(rm, sc);
    return cb(ud, &info);
}

int gn_rcmgr_foreach(const gn_rcmgr *rm, gn_rcmgr_scope_kind kind,
                     int (*cb)(void *user_data, const gn_rcmgr_scope_info *info), void *user_data)
{
    if (!rm || !cb || (unsigned)kind >= GN_RCMGR_SCOPE_KINDS) {
        return GN_EINVAL;
    }
    int rc = 0;
    const gni_list *l;
    switch (kind) {
    case GN_RCMGR_SCOPE_SYSTEM: return report(rm, &rm->system, NULL, 0, cb, user_data);
    case GN_RCMGR_SCOPE_TRANSIENT: return report(rm, &rm->transient, NULL, 0, cb, user_data);
    case GN_RCMGR_SCOPE_CONN:
        for (l = rm->conns.next; l != &rm->conns && rc == 0;) {
            const gn_rcmgr_conn *c = GNI_CONTAINER_OF(l, const gn_rcmgr_conn, node);
            l = l->next;
            rc = report(rm, &c->span.self, NULL, 0, cb, user_data);
        }
        return rc;
    case GN_RCMGR_SCOPE_STREAM:
        for (l = rm->streams.next; l != &rm->streams && rc == 0;) {
            const gn_rcmgr_stream *s = GNI_CONTAINER_OF(l, const gn_rcmgr_stream, node);
            l = l->next;
            rc = report(rm, &s->span.self, NULL, 0, cb, user_data);
        }
        return rc;
    default:
        for (l = rm->tab[kind].all.next; l != &rm->tab[kind].all && rc == 0;) {
            const rc_kscope *e = GNI_CONTAINER_OF(l, const rc_kscope, node);
            l = l->next;
            size_t klen = kind == GN_RCMGR_SCOPE_SUBNET ? e->key_len - 1u : e->key_len;
            rc = report(rm, &e->s, e->key, klen, cb, user_data);
        }
        return rc;
    }
}

int gn_rcmgr_last_refusal(const gn_rcmgr *rm, gn_rcmgr_refusal *out)
{
    if (!rm || !out) {
        return GN_EINVAL;
    }
    if (!rm->refused_once) {
        return GN_ENOTFOUND;
    }
    *out = rm->last;
    return 0;
}

const char *gn_rcmgr_last_refusal_scope(const gn_rcmgr *rm)
{
    return rm && rm->refused_once ? rm->last.name : "";
}

uint64_t gn_rcmgr_refusal_count(const gn_rcmgr *rm, gn_rcmgr_scope_kind kind)
{
    if (!rm || (unsigned)kind >= GN_RCMGR_SCOPE_KINDS) {
        return 0;
    }
    return rm->refusals[kind];
}

/* ---- consistency check (tests, fuzzing) */

size_t gni_rcmgr_table_len(const gn_rcmgr *rm, gn_rcmgr_scope_kind kind)
{
    return kind_keyed(kind) ? rm->tab[kind].n : 0;
}

static void chk_clear(rc_scope *sc)
{
    memset(sc->chk, 0, sizeof sc->chk);
    sc->chk_refs = 0;
}

static void chk_add(rc_scope *const *ch, size_t n, const uint64_t own[C_N])
{
    for (size_t i = 0; i < n; i++) {
        for (int k = 0; k < C_N; k++) {
            ch[i]->chk[k] += own[k];
        }
    }
}

static int chk_scope(const gn_rcmgr *rm, const rc_scope *sc, bool limits, char *why, size_t len)
{
    char name[GN_RCMGR_NAME_MAX];
    for (int k = 0; k < C_N; k++) {
        if (sc->chk[k] != sc->use[k]) {
            scope_name(sc, name, sizeof name);
            snprintf(why, len, "%s: counter %d is %llu, spans hold %llu", name, k,
                     (unsigned long long)sc->use[k], (unsigned long long)sc->chk[k]);
            return GN_EINTERNAL;
        }
    }
    if (kind_keyed(sc->kind) && (sc->refs != sc->chk_refs || sc->refs == 0)) {
        scope_name(sc, name, sizeof name);
        snprintf(why, len, "%s: refs %u, spans %u", name, sc->refs, sc->chk_refs);
        return GN_EINTERNAL;
    }
    if (limits) {
        const gn_rcmgr_limit *l = scope_limit(rm, sc);
        const uint64_t *u = sc->use;
        bool ok = (l->memory == GN_RCMGR_UNLIMITED_MEMORY || u[C_MEM] <= l->memory) &&
                  !count_over(0, u[C_SIN], l->streams_in) &&
                  !count_over(0, u[C_SOUT], l->streams_out) &&
                  !count_over(0, u[C_SIN] + u[C_SOUT], l->streams) &&
                  !count_over(0, u[C_CIN], l->conns_in) &&
                  !count_over(0, u[C_COUT], l->conns_out) &&
                  !count_over(0, u[C_CIN] + u[C_COUT], l->conns) &&
                  !count_over(0, u[C_CUP], l->conns_upgrading) && !count_over(0, u[C_FD], l->fd);
        if (!ok) {
            scope_name(sc, name, sizeof name);
            snprintf(why, len, "%s: usage above its limits", name);
            return GN_EINTERNAL;
        }
    }
    return 0;
}

int gni_rcmgr_check(const gn_rcmgr *crm, bool limits, char *why, size_t why_len)
{
    gn_rcmgr *rm = (gn_rcmgr *)crm; /* only the scratch fields change */
    char dummy[1];
    if (why_len == 0) {
        why = dummy;
        why_len = sizeof dummy;
    }
    why[0] = '\0';
    const gni_list *l;
    chk_clear(&rm->system);
    chk_clear(&rm->transient);
    for (int k = 0; k < GN_RCMGR_SCOPE_KINDS; k++) {
        size_t cnt = 0;
        for (l = rm->tab[k].all.next; l != &rm->tab[k].all; l = l->next, cnt++) {
            chk_clear(&GNI_CONTAINER_OF(l, rc_kscope, node)->s);
        }
        if (cnt != rm->tab[k].n || (limits && kind_keyed(k) && cnt > table_cap(rm, k))) {
            snprintf(why, why_len, "%s table: %zu listed, %zu counted",
                     gn_rcmgr_scope_kind_name((gn_rcmgr_scope_kind)k), cnt, rm->tab[k].n);
            return GN_EINTERNAL;
        }
    }
    for (l = rm->conns.next; l != &rm->conns; l = l->next) {
        chk_clear(&GNI_CONTAINER_OF(l, gn_rcmgr_conn, node)->span.self);
    }
    for (l = rm->streams.next; l != &rm->streams; l = l->next) {
        chk_clear(&GNI_CONTAINER_OF(l, gn_rcmgr_stream, node)->span.self);
    }
    rc_scope *ch[CHAIN_MAX];
    for (l = rm->conns.next; l != &rm->conns; l = l->next) {
        gn_rcmgr_conn *c = GNI_CONTAINER_OF(l, gn_rcmgr_conn, node);
        if (c->done) {
            continue; /* holds nothing itself; only its streams' usage */
        }
        if ((c->peer != NULL) == (c->span.own[C_CUP] != 0)) {
            snprintf(why, why_len, "conn:%llu: upgrading mark and peer disagree",
                     (unsigned long long)c->span.id);
            return GN_EINTERNAL;
        }
        chk_add(ch, conn_chain(c, ch), c->span.own);
        rc_kscope *refs[3] = {c->peer, c->ip, c->subnet};
        for (int i = 0; i < 3; i++) {
            if (refs[i]) {
                refs[i]->s.chk_refs++;
            }
        }
    }
    uint32_t nstreams_chk = 0;
    for (l = rm->streams.next; l != &rm->streams; l = l->next) {
        gn_rcmgr_stream *s = GNI_CONTAINER_OF(l, gn_rcmgr_stream, node);
        chk_add(ch, stream_chain(s, ch), s->span.own);
        s->peer->s.chk_refs++;
        if (s->proto) {
            s->proto->s.chk_refs++;
        }
        nstreams_chk += s->conn ? 1u : 0u;
    }
    uint32_t nstreams = 0;
    for (l = rm->conns.next; l != &rm->conns; l = l->next) {
        const gn_rcmgr_conn *c = GNI_CONTAINER_OF(l, const gn_rcmgr_conn, node);
        nstreams += c->streams;
        if (c->done && c->streams == 0) {
            snprintf(why, why_len, "conn:%llu: done and unused but not freed",
                     (unsigned long long)c->span.id);
            return GN_EINTERNAL;
        }
    }
    if (nstreams != nstreams_chk) {
        snprintf(why, why_len, "connections count %u streams, %u are open", nstreams, nstreams_chk);
        return GN_EINTERNAL;
    }
    int rc;
    if ((rc = chk_scope(rm, &rm->system, limits, why, why_len)) < 0 ||
        (rc = chk_scope(rm, &rm->transient, limits, why, why_len)) < 0) {
        return rc;
    }
    for (int k = 0; k < GN_RCMGR_SCOPE_KINDS; k++) {
        for (l = rm->tab[k].all.next; l != &rm->tab[k].all; l = l->next) {
            const rc_scope *sc = &GNI_CONTAINER_OF(l, rc_kscope, node)->s;
            if ((rc = chk_scope(rm, sc, limits, why, why_len)) < 0) {
                return rc;
            }
        }
    }
    for (l = rm->conns.next; l != &rm->conns; l = l->next) {
        if ((rc = chk_scope(rm, &GNI_CONTAINER_OF(l, gn_rcmgr_conn, node)->span.self, limits, why,
                            why_len)) < 0) {
            return rc;
        }
    }
    for (l = rm->streams.next; l != &rm->streams; l = l->next) {
        if ((rc = chk_scope(rm, &GNI_CONTAINER_OF(l, gn_rcmgr_stream, node)->span.self, limits,
                            why, why_len)) < 0) {
            return rc;
        }
    }
    return 0;
}
