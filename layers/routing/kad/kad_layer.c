/*
 * The `kad` router: the Kademlia DHT (/ipfs/kad/1.0.0) as a router
 * component. It glues the sans-I/O cores -- routing table (kad_table.h),
 * iterative lookup (kad_lookup.h), record and provider stores
 * (kad_store.h), wire messages (protocols/kad/kad_msg.h) -- to the host:
 * streams through kad_rpc.h, peers through identify events and the peer
 * store, timers on the loop.
 *
 * Options (gn_host_option, component "kad"), docs/routing-kad.md:
 *   kad.mode=auto|server|client       default auto
 *   kad.bootstrap=<multiaddr>/p2p/<id> repeatable
 *   kad.k, kad.alpha, kad.quorum, kad.request_timeout_ms,
 *   kad.query_timeout_ms, kad.max_queries, kad.inbound_per_peer,
 *   kad.max_inbound, kad.rate, kad.burst, kad.refresh_ms,
 *   kad.republish_ms, kad.protocol, kad.max_msg_len
 *
 * Thread context: the host's loop thread.
 * Spec: libp2p/specs kad-dht/README.md.
 */
#include "golemnet/router.h"
#include "golemnet/crypto.h"
#include "golemnet/multiformats.h"
#include "golemnet/registry.h"

#include "gni.h"
#include "kad_key.h"
#include "kad_lookup.h"
#include "kad_msg.h"
#include "kad_rpc.h"
#include "kad_store.h"
#include "kad_table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KAD_LOG "kad"
#define KAD_ALPHA_MAX 16u
/* Most disjoint lookup paths per query (kad.disjoint_paths). */
#define KAD_PATHS_MAX 8u
#define KAD_MAX_BOOTSTRAP 16u
/* Peers tracked for inbound accounting (concurrent streams, rate). */
#define KAD_INBOUND_PEERS 1024u
/* How long a served stream may wait for its next request. */
#define KAD_SERVE_IDLE (60 * GN_S)
/* Peer-store TTL of addresses learnt from DHT answers. */
#define KAD_ADDR_TTL (30 * 60 * GN_S)
/* First refresh after the start (then every refresh_ms). */
#define KAD_FIRST_REFRESH (1 * GN_S)
/* Addresses put in a peer entry of a reply. */
#define KAD_REPLY_ADDRS GNI_KAD_MAX_ADDRS

typedef enum kad_mode { MODE_AUTO = 0, MODE_SERVER, MODE_CLIENT } kad_mode;

typedef struct kad_cfg {
    char proto[GN_PROTOCOL_ID_MAX];
    kad_mode mode;
    size_t k, alpha, quorum, max_queries, paths;
    size_t inbound_per_peer, max_inbound;
    uint32_t rate, burst; /* requests per second per peer, and the bucket size */
    gn_time request_timeout, query_timeout, refresh, republish;
    gni_kad_limits lim;
} kad_cfg;

typedef enum qkind { Q_FIND_PEER = 0, Q_CLOSEST, Q_GET, Q_PUT, Q_PROVIDE, Q_FIND_PROV, Q_REFRESH } qkind;

typedef struct kad_router kad_router;
typedef struct kad_query kad_query;

/* One request of a query in flight. */
typedef struct kad_call {
    gni_list link; /* q->calls or kr->checks */
    kad_query *q;  /* NULL: a liveness check */
    kad_router *kr;
    gn_peer_id peer;
    unsigned path; /* the lookup path that asked */
    gni_kad_rpc *rpc;
} kad_call;

/* A peer handed to one lookup path (disjoint paths: never to another). */
typedef struct kad_claim {
    gn_peer_id id;
    unsigned path;
} kad_claim;

/* Addresses a query heard of for a peer it may ask (copies, at most
 * KAD_CACHE_ADDRS): remote peers' claims stay here, not in the peer store. */
#define KAD_CACHE_ADDRS 2u
typedef struct kad_addr_ent {
    gn_peer_id id;
    gni_kad_key key; /* SHA-256 of id: the farthest entry gives way when full */
    gn_multiaddr *addrs[KAD_CACHE_ADDRS];
    size_t n;
} kad_addr_ent;

/* A provider found, with its addresses (copies). */
typedef struct kad_found {
    gn_peer_id id;
    gn_multiaddr *addrs[GNI_KAD_MAX_ADDRS];
    size_t naddrs;
} kad_found;

struct kad_query {
    gn_op op;          /* handed out for gn_op_cancel */
    gni_list link;     /* kr->queries */
    kad_router *kr;
    qkind kind;
    uint8_t *key;      /* the key as on the wire */
    size_t key_len;
    gn_peer_id peer;   /* Q_FIND_PEER: the target */
    uint8_t *value;    /* Q_PUT */
    size_t value_len;
    unsigned cpl;      /* Q_REFRESH */
    gni_kad_lookup *lks[KAD_PATHS_MAX]; /* one lookup per disjoint path */
    size_t npaths;
    kad_claim *claims; /* npaths > 1: which path each peer belongs to */
    size_t nclaims, claims_cap;
    kad_addr_ent *cache; /* addresses of candidates, from the answers */
    gni_kad_key target;  /* SHA-256 of key */
    size_t ncache, cache_cap, cache_max;
    gn_timer timer;    /* lookup ticks, then the deferred answer */
    gni_list calls;
    bool storing;      /* Q_PUT, Q_PROVIDE: the lookup ended, stores in flight */
    size_t store_ok, store_err;
    int store_first_err;
    bool answered;     /* the outcome is decided */
    int status;
    /* results */
    uint8_t **values;  /* Q_GET: valid values found (copies) */
    size_t *value_lens;
    size_t nvalues;
    kad_found *found;  /* Q_FIND_PROV: providers; Q_FIND_PEER: the target */
    size_t nfound, max_found;
    /* user */
    gn_router_peer_cb peer_cb;
    gn_router_value_cb value_cb;
    gn_router_done_cb done_cb;
    gn_router_peers_cb peers_cb;
    void *arg;
};

typedef struct kad_inbound {
    gn_peer_id peer;
    uint32_t streams;
    double tokens;
    gn_time last;
    bool used;
} kad_inbound;

typedef struct kad_ext_validator {
    gn_router_validator v;
    char ns[GNI_KAD_NS_NAME_MAX + 1];
} kad_ext_validator;

typedef struct kad_server_stream {
    gni_list link; /* kr->served */
    kad_router *kr;
    gni_kad_srv *sv;
} kad_server_stream;

struct kad_router {
    gn_router *r;
    gn_host *h;
    kad_cfg cfg;
    gn_peer_id self;
    gni_kad_table *table;
    gni_kad_records *records;
    gni_kad_providers *providers;
    gni_kad_validators *validators;
    gni_list queries;
    size_t nqueries;
    gni_list checks;
    gni_list served;
    size_t nserved;
    kad_inbound *inbound;  /* grows up to KAD_INBOUND_PEERS entries */
    size_t ninbound, inbound_cap;
    gn_host_sub *sub;
    gn_timer tick;     /* refresh, expiry, republish */
    bool running;
    bool serving;      /* the handler is registered */
    gn_multiaddr *boot[KAD_MAX_BOOTSTRAP];
    gn_peer_id boot_id[KAD_MAX_BOOTSTRAP];
    size_t nboot;
    gn_time last_republish;
    gn_router_stats st;     /* counters (table and store sizes filled on demand) */
    kad_ext_validator *ext[GNI_KAD_NS_MAX]; /* each allocated when registered (the
                                              * store keeps a pointer to it) */
    size_t next;
};

static gn_time kr_now(kad_router *kr)
{
    return gn_loop_now(kr->r->loop);
}

static void pid_str(const gn_peer_id *p, char *out, size_t len)
{
    if (gn_peer_id_to_string(p, out, len) < 0) {
        snprintf(out, len, "?");
    }
}

/* ------------------------------------------------------------------------
 * Options
 */

static int opt_num(gn_host *h, const char *key, uint64_t def, uint64_t min, uint64_t max,
                   uint64_t *out)
{
    const char *v = gn_host_option(h, "kad", key, 0);
    *out = def;
    if (!v) {
        return 0;
    }
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    if (*v < '0' || *v > '9' || *end || x < min || x > max) {
        GN_LOG(GN_LOG_ERR, KAD_LOG, "kad.%s=%s: want a whole number from %llu to %llu", key, v,
               (unsigned long long)min, (unsigned long long)max);
        return GN_EINVAL;
    }
    *out = x;
    return 0;
}

static int load_options(kad_router *kr)
{
    gn_host *h = kr->h;
    kad_cfg *c = &kr->cfg;
    uint64_t v;
    int rc = 0;
    const char *s = gn_host_option(h, "kad", "mode", 0);
    c->mode = MODE_AUTO;
    if (s && strcmp(s, "server") == 0) {
        c->mode = MODE_SERVER;
    } else if (s && strcmp(s, "client") == 0) {
        c->mode = MODE_CLIENT;
    } else if (s && strcmp(s, "auto") != 0) {
        GN_LOG(GN_LOG_ERR, KAD_LOG, "kad.mode=%s: want auto, server or client", s);
        return GN_EINVAL;
    }
    s = gn_host_option(h, "kad", "protocol", 0);
    if (!s) {
        s = GNI_KAD_PROTOCOL_ID;
    }
    if (s[0] != '/' || strlen(s) >= sizeof c->proto) {
        GN_LOG(GN_LOG_ERR, KAD_LOG, "kad.protocol=%s: want a protocol id starting with '/'", s);
        return GN_EINVAL;
    }
    strcpy(c->proto, s);
#define NUM(key, def, min, max, dst, mul)                                                  \
    if (rc == 0 && (rc = opt_num(h, key, def, min, max, &v)) == 0) {                       \
        dst = (mul) * v;                                                                   \
    }
    NUM("k", GNI_KAD_K_DEFAULT, 1, GNI_KAD_K_MAX, c->k, 1)
    NUM("alpha", GNI_KAD_ALPHA_DEFAULT, 1, KAD_ALPHA_MAX, c->alpha, 1)
    NUM("quorum", 16, 1, 256, c->quorum, 1)
    NUM("disjoint_paths", 1, 1, KAD_PATHS_MAX, c->paths, 1)
    NUM("max_queries", 256, 1, 4096, c->max_queries, 1)
    NUM("inbound_per_peer", 8, 1, 1024, c->inbound_per_peer, 1)
    NUM("max_inbound", 256, 1, 65536, c->max_inbound, 1)
    NUM("rate", 50, 1, 100000, c->rate, 1)
    NUM("burst", 200, 1, 1000000, c->burst, 1)
    NUM("request_timeout_ms", 10000, 1, 3600000, c->request_timeout, GN_MS)
    NUM("query_timeout_ms", 60000, 1, 86400000, c->query_timeout, GN_MS)
    NUM("refresh_ms", 600000, 1, 86400000ull * 7, c->refresh, GN_MS)
    NUM("republish_ms", 22ull * 3600 * 1000, 1, 86400000ull * 7, c->republish, GN_MS)
    NUM("max_msg_len", GNI_KAD_DEFAULT_MAX_MSG_LEN, 1024, GNI_KAD_MAX_MSG_LEN_LIMIT,
        c->lim.max_msg_len, 1)
#undef NUM
    /* replies carry k closer peers: the encoder's bound must allow them */
    c->lim.max_closer = GNI_MAX((size_t)GNI_KAD_DEFAULT_MAX_CLOSER, c->k);
    return rc;
}

/* ------------------------------------------------------------------------
 * Peers: the table, the peer store, reply entries
 */

/* Addresses of @p the host knows (copies, caller frees). */
static size_t peer_addrs(kad_router *kr, const gn_peer_id *p, gn_multiaddr **out, size_t max)
{
    int n = gn_host_peer_addrs(kr->h, p, out, NULL, max);
    return n > 0 ? (size_t)n : 0;
}

static void free_addrs(gn_multiaddr **a, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        gn_multiaddr_free(a[i]);
    }
}

/* Runs a liveness check of @peer (a FIND_NODE for our own ID). */
static void check_peer(kad_router *kr, const gn_peer_id *peer);

/* Records a peer that speaks the protocol as a server. */
static void table_add(kad_router *kr, const gn_peer_id *peer, unsigned flags,
                      gn_multiaddr *const *extra, size_t nextra)
{
    gn_multiaddr *addrs[GNI_KAD_MAX_ADDRS];
    size_t n = peer_addrs(kr, peer, addrs, GNI_KAD_MAX_ADDRS);
    gn_multiaddr *const *use = addrs;
    size_t nuse = n;
    if (n == 0 && nextra > 0) {
        use = extra; /* the addresses we reached it at */
        nuse = nextra;
    }
    if (nuse == 0 && !gni_kad_table_find(kr->table, peer)) {
        return; /* nothing to reach it at: useless to others */
    }
    gn_peer_id check;
    int rc = gni_kad_table_add(kr->table, peer, use, nuse, flags, kr_now(kr), &check);
    free_addrs(addrs, n);
    if (rc == GNI_KAD_ADD_CHECK) {
        check_peer(kr, &check);
    }
}

/* Appends @e as a peer entry of @m (closer or provider list) with up to
 * KAD_REPLY_ADDRS addresses from @addrs. */
static void reply_peer(gni_kad_msg *m, bool provider, const gn_peer_id *id,
                       gn_multiaddr *const *addrs, size_t naddrs, gni_kad_conn conn)
{
    gni_kad_peer *p;
    if (gni_kad_msg_add_peer(m, provider, id, conn, &p) < 0) {
        return;
    }
    for (size_t i = 0; i < naddrs && i < KAD_REPLY_ADDRS; i++) {
        gn_slice b = gn_multiaddr_bytes(addrs[i]);
        (void)gni_kad_peer_add_addr(p, b.base, b.len);
    }
}

/* The k closest peers of the table to @target into @m's closer list,
 * leaving out @skip (the requester). */
static void reply_closer(kad_router *kr, gni_kad_msg *m, const gni_kad_key *target,
                         const gn_peer_id *skip)
{
    const gni_kad_entry *e[GNI_KAD_K_MAX + 1];
    size_t n = gni_kad_table_closest(kr->table, target, kr->cfg.k + 1, e);
    size_t added = 0;
    for (size_t i = 0; i < n && added < kr->cfg.k; i++) {
        if (skip && gn_peer_id_equal(&e[i]->id, skip)) {
            continue;
        }
        reply_peer(m, false, &e[i]->id, e[i]->addrs, e[i]->naddrs, GNI_KAD_NOT_CONNECTED);
        added++;
    }
}

/* Our own entry for ADD_PROVIDER: our ID and listen/observed addresses. */
static void reply_self(kad_router *kr, gni_kad_msg *m)
{
    const gn_multiaddr *la[GNI_KAD_MAX_ADDRS];
    size_t n = gn_host_listen_addrs(kr->h, la, GNI_KAD_MAX_ADDRS);
    if (n < GNI_KAD_MAX_ADDRS) {
        n += gn_host_observed_addrs(kr->h, la + n, GNI_KAD_MAX_ADDRS - n);
    }
    reply_peer(m, true, &kr->self, (gn_multiaddr *const *)la, n, GNI_KAD_CONNECTED);
}

/* Takes a peer entry of an answer: its addresses into the peer store.
 * Returns true when the peer can be dialled (addresses known). */
static kad_addr_ent *cache_put(kad_query *q, const gni_kad_peer *p);

/* Takes a peer entry of an answer: its addresses into the query's cache
 * (not the peer store: they are a remote peer's claim until a connection
 * proves them). Returns true when the peer can be asked. */
static bool learn_peer(kad_router *kr, kad_query *q, const gni_kad_peer *p)
{
    if (gn_peer_id_equal(&p->id, &kr->self)) {
        return false;
    }
    if (gn_host_peer_dialable(kr->h, &p->id)) {
        return true;
    }
    return cache_put(q, p) != NULL;
}

/* ------------------------------------------------------------------------
 * Stores
 */

static void format_time(char *out, size_t len)
{
    time_t t = time(NULL);
    struct tm tm;
#if defined(_WIN32)
    gmtime_s(&tm, &t);
#else
    gmtime_r(&t, &tm);
#endif
    strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ------------------------------------------------------------------------
 * Queries
 */

static void query_pump(kad_query *q);
static void query_lookup_done(kad_query *q);

/* Adds what the query's lookups did to the router's counters. */
static void query_count(kad_router *kr, kad_query *q)
{
    uint32_t hops = 0, reqs = 0;
    for (size_t i = 0; i < q->npaths; i++) {
        gni_kad_lookup_stats ls;
        gni_kad_lookup_stats_get(q->lks[i], &ls);
        hops = GNI_MAX(hops, (uint32_t)ls.hops);
        reqs += (uint32_t)ls.requests;
        kr->st.responses += ls.responses;
        kr->st.failures += ls.failures + ls.timeouts;
    }
    kr->st.queries++;
    kr->st.requests += reqs;
    kr->st.hops += hops;
    kr->st.last_hops = hops;
    kr->st.last_requests = reqs;
}

static void query_free(kad_query *q)
{
    kad_router *kr = q->kr;
    if (kr) { /* else detached by kad_stop */
        gni_list_del(&q->link);
        kr->nqueries--;
    }
    gn_timer_stop(&q->timer);
    for (size_t i = 0; i < q->npaths; i++) {
        gni_kad_lookup_free(q->lks[i]);
    }
    gn_free(q->claims);
    for (size_t i = 0; i < q->ncache; i++) {
        free_addrs(q->cache[i].addrs, q->cache[i].n);
    }
    gn_free(q->cache);
    for (size_t i = 0; i < q->nvalues; i++) {
        gn_free(q->values[i]);
    }
    gn_free(q->values);
    gn_free(q->value_lens);
    for (size_t i = 0; i < q->nfound; i++) {
        free_addrs(q->found[i].addrs, q->found[i].naddrs);
    }
    gn_free(q->found);
    gn_free(q->key);
    gn_free(q->value);
    gn_free(q);
}

static void cancel_calls(kad_query *q)
{
    while (!gni_list_empty(&q->calls)) {
        kad_call *c = GNI_CONTAINER_OF(q->calls.next, kad_call, link);
        gni_list_del(&c->link);
        gni_kad_rpc_cancel(c->rpc);
        gn_free(c);
    }
}

/* Picks the best of the values found (validator's selector). */
static int best_value(kad_query *q, size_t *idx)
{
    if (q->nvalues == 0) {
        return GN_ENOTFOUND;
    }
    if (gni_kad_validators_select(q->kr->validators, q->key, q->key_len,
                                  (const uint8_t *const *)q->values, q->value_lens, q->nvalues,
                                  idx) < 0 ||
        *idx >= q->nvalues) {
        *idx = 0;
    }
    return 0;
}

/* ---- lookup paths ---- */

/* The path that owns @p, or -1. */
static int claim_of(const kad_query *q, const gn_peer_id *p)
{
    for (size_t i = 0; i < q->nclaims; i++) {
        if (gn_peer_id_equal(&q->claims[i].id, p)) {
            return (int)q->claims[i].path;
        }
    }
    return -1;
}

/* Whether path @path may take @p: always with one path; with several, when
 * no other path has it (it is claimed for @path on the way). */
static bool claim(kad_query *q, const gn_peer_id *p, unsigned path)
{
    if (q->npaths == 1) {
        return true;
    }
    int owner = claim_of(q, p);
    if (owner >= 0) {
        return owner == (int)path;
    }
    if (q->nclaims == q->claims_cap) {
        return false; /* bounded: npaths x candidates */
    }
    q->claims[q->nclaims].id = *p;
    q->claims[q->nclaims++].path = path;
    return true;
}

static bool paths_done(const kad_query *q)
{
    for (size_t i = 0; i < q->npaths; i++) {
        if (!gni_kad_lookup_done(q->lks[i])) {
            return false;
        }
    }
    return true;
}

/* 0 when a path succeeded, else GN_ETIMEDOUT when one timed out, else
 * GN_ENOROUTE. */
static int paths_status(const kad_query *q)
{
    int st = GN_ENOROUTE;
    for (size_t i = 0; i < q->npaths; i++) {
        int x = gni_kad_lookup_status(q->lks[i]);
        if (x == 0) {
            return 0;
        }
        if (x == GN_ETIMEDOUT) {
            st = x;
        }
    }
    return st;
}

/* The closest peers that answered over all paths, closest first, at most
 * @max into @out. */
static size_t paths_results(const kad_query *q, gn_peer_id *out, size_t max)
{
    if (q->npaths == 1) {
        return gni_kad_lookup_results(q->lks[0], out, max);
    }
    gni_kad_key target;
    gni_kad_key_from_bytes(q->key, q->key_len, &target);
    gni_kad_key keys[GNI_KAD_K_MAX];
    size_t n = 0;
    for (size_t i = 0; i < q->npaths; i++) {
        gn_peer_id ids[GNI_KAD_K_MAX];
        size_t k = gni_kad_lookup_results(q->lks[i], ids, max);
        for (size_t j = 0; j < k; j++) {
            gni_kad_key kk;
            gni_kad_key_from_peer(&ids[j], &kk);
            /* insertion into the sorted list of at most @max */
            size_t pos = n;
            while (pos > 0 && gni_kad_cmp_distance(&target, &kk, &keys[pos - 1]) < 0) {
                pos--;
            }
            if (pos >= max) {
                continue;
            }
            size_t last = n < max ? n : max - 1;
            memmove(&out[pos + 1], &out[pos], (last - pos) * sizeof *out);
            memmove(&keys[pos + 1], &keys[pos], (last - pos) * sizeof *keys);
            out[pos] = ids[j];
            keys[pos] = kk;
            if (n < max) {
                n++;
            }
        }
    }
    return n;
}

static size_t query_addrs(kad_query *q, const gn_peer_id *id, gn_multiaddr **out, size_t max);

/* Calls the user's callback with the outcome, then frees the query. */
static void query_deliver(kad_query *q)
{
    kad_router *kr = q->kr;
    int st = q->status;
    if (kr) {
        query_count(kr, q); /* before the callback: it may read the counters */
    }
    switch (q->kind) {
    case Q_FIND_PEER:
        if (q->peer_cb) {
            kad_found *f = q->nfound ? &q->found[0] : NULL;
            q->peer_cb(q->arg, st, &q->peer, f ? f->addrs : NULL, f ? f->naddrs : 0);
        }
        break;
    case Q_GET: {
        size_t i = 0;
        if (st == 0 || st == GN_ETIMEDOUT) {
            int b = best_value(q, &i);
            st = b == 0 ? 0 : (st == 0 ? GN_ENOTFOUND : st);
        }
        if (q->value_cb) {
            q->value_cb(q->arg, st,
                        st == 0 ? gn_slice_of(q->values[i], q->value_lens[i])
                                : gn_slice_of(NULL, 0));
        }
        break;
    }
    case Q_PUT:
    case Q_PROVIDE:
        if (q->done_cb) {
            q->done_cb(q->arg, st);
        }
        break;
    case Q_FIND_PROV:
    case Q_CLOSEST: {
        gn_router_peer peers[GNI_KAD_K_MAX];
        size_t n = 0;
        gn_multiaddr *addrs[GNI_KAD_K_MAX][GNI_KAD_MAX_ADDRS];
        if (q->kind == Q_FIND_PROV) {
            for (size_t i = 0; i < q->nfound && n < GNI_ARRAY_LEN(peers); i++, n++) {
                peers[n].id = q->found[i].id;
                peers[n].addrs = q->found[i].addrs;
                peers[n].naddrs = q->found[i].naddrs;
            }
        } else if (q->npaths && kr) {
            gn_peer_id ids[GNI_KAD_K_MAX];
            size_t k = paths_results(q, ids, GNI_MIN(kr->cfg.k, GNI_KAD_K_MAX));
            for (size_t i = 0; i < k; i++, n++) {
                peers[n].id = ids[i];
                peers[n].naddrs = query_addrs(q, &ids[i], addrs[n], GNI_KAD_MAX_ADDRS);
                peers[n].addrs = addrs[n];
            }
            if (st == GN_ENOROUTE && k > 0) {
                st = 0;
            }
        }
        if (q->peers_cb) {
            q->peers_cb(q->arg, st, n ? peers : NULL, n);
        }
        if (q->kind == Q_CLOSEST) {
            for (size_t i = 0; i < n; i++) {
                free_addrs(addrs[i], peers[i].naddrs);
            }
        }
        break;
    }
    case Q_REFRESH:
    default:
        break;
    }
    query_free(q);
}

static void query_deliver_due(gn_timer *t, void *arg)
{
    (void)t;
    query_deliver(arg);
}

static void query_deliver_deferred(gn_loop *loop, void *arg)
{
    (void)loop;
    query_deliver(arg);
}

/* Decides the outcome once; the callback runs on a later loop turn. */
static void query_answer(kad_query *q, int status)
{
    if (q->answered) {
        return;
    }
    q->answered = true;
    q->status = status;
    cancel_calls(q);
    gn_timer_stop(&q->timer);
    if (gn_timer_start(&q->timer, 0, query_deliver_due, q) < 0 &&
        gn_loop_defer(q->kr->r->loop, query_deliver_deferred, q) < 0) {
        /* no memory for either: answering now beats never answering (the
         * callers below touch nothing of @q after a call that can get here) */
        query_deliver(q);
    }
}

static void query_cancel(gn_op *op)
{
    kad_query *q = GNI_CONTAINER_OF(op, kad_query, op);
    query_answer(q, GN_ECANCELED);
}

static void query_tick(gn_timer *t, void *arg)
{
    (void)t;
    kad_query *q = arg;
    for (size_t i = 0; i < q->npaths; i++) {
        gni_kad_lookup_tick(q->lks[i], kr_now(q->kr));
    }
    query_pump(q);
}

/* The message a lookup step sends for @q. */
static int lookup_msg(kad_query *q, gni_kad_msg *m)
{
    gni_kad_msg_init(m);
    switch (q->kind) {
    case Q_GET:
        m->type = GNI_KAD_GET_VALUE;
        break;
    case Q_FIND_PROV:
        m->type = GNI_KAD_GET_PROVIDERS;
        break;
    default:
        m->type = GNI_KAD_FIND_NODE;
        break;
    }
    return gni_kad_msg_set_key(m, q->key, q->key_len);
}

static void on_lookup_reply(void *arg, int status, gni_kad_msg *resp);

static kad_addr_ent *cache_get(kad_query *q, const gn_peer_id *id)
{
    for (size_t i = 0; i < q->ncache; i++) {
        if (gn_peer_id_equal(&q->cache[i].id, id)) {
            return &q->cache[i];
        }
    }
    return NULL;
}

/* Keeps up to KAD_CACHE_ADDRS of @p's addresses; returns its entry or NULL
 * (none parsed, or the bound reached). */
static kad_addr_ent *cache_put(kad_query *q, const gni_kad_peer *p)
{
    kad_addr_ent *e = cache_get(q, &p->id);
    if (e) {
        return e;
    }
    kad_addr_ent ne;
    memset(&ne, 0, sizeof ne);
    ne.id = p->id;
    gni_kad_key_from_peer(&p->id, &ne.key);
    /* full: only a closer peer may take the farthest entry's place (the
     * lookup's candidates move towards the target; the peers closest to
     * it, heard of last, must not be the ones left without an address) */
    size_t far = 0;
    if (q->ncache == q->cache_max) {
        for (size_t i = 1; i < q->ncache; i++) {
            if (gni_kad_cmp_distance(&q->target, &q->cache[i].key, &q->cache[far].key) > 0) {
                far = i;
            }
        }
        if (q->ncache == 0 || gni_kad_cmp_distance(&q->target, &ne.key, &q->cache[far].key) >= 0) {
            return NULL;
        }
    }
    for (size_t i = 0; i < p->addr_cnt && ne.n < KAD_CACHE_ADDRS; i++) {
        if (gn_multiaddr_from_bytes(p->addrs[i].data, p->addrs[i].len, &ne.addrs[ne.n]) == 0) {
            ne.n++;
        }
    }
    if (ne.n == 0) {
        return NULL; /* nothing usable: no entry gives way for it */
    }
    if (q->ncache == q->cache_max) {
        free_addrs(q->cache[far].addrs, q->cache[far].n);
        q->cache[far] = q->cache[--q->ncache];
    }
    if (q->ncache == q->cache_cap) {
        size_t cap = q->cache_cap ? q->cache_cap * 2 : 32;
        cap = GNI_MIN(cap, q->cache_max);
        kad_addr_ent *g = gn_realloc(q->cache, cap * sizeof *g);
        if (!g) {
            free_addrs(ne.addrs, ne.n);
            return NULL;
        }
        q->cache = g;
        q->cache_cap = cap;
    }
    e = &q->cache[q->ncache++];
    *e = ne;
    return e;
}

/* Copies of @id's addresses: the peer store's, else what the query heard. */
static size_t query_addrs(kad_query *q, const gn_peer_id *id, gn_multiaddr **out, size_t max)
{
    size_t n = q->kr ? peer_addrs(q->kr, id, out, max) : 0;
    kad_addr_ent *e = n == 0 ? cache_get(q, id) : NULL;
    for (size_t i = 0; e && i < e->n && n < max; i++) {
        if (gn_multiaddr_dup(e->addrs[i], &out[n]) == 0) {
            n++;
        }
    }
    return n;
}

static void found_add(kad_query *q, const gn_peer_id *id)
{
    for (size_t i = 0; i < q->nfound; i++) {
        if (gn_peer_id_equal(&q->found[i].id, id)) {
            return;
        }
    }
    if (q->nfound == q->max_found) {
        return;
    }
    kad_found *f = &q->found[q->nfound++];
    memset(f, 0, sizeof *f);
    f->id = *id;
    f->naddrs = query_addrs(q, id, f->addrs, GNI_KAD_MAX_ADDRS);
}

/* A provider from an answer, with the addresses the answer gave (not
 * through the cache: a provider's ID is anywhere in the key space). */
static void found_add_with(kad_query *q, const gni_kad_peer *p)
{
    bool known = false;
    for (size_t i = 0; i < q->nfound && !known; i++) {
        known = gn_peer_id_equal(&q->found[i].id, &p->id);
    }
    if (known || q->nfound == q->max_found) {
        return;
    }
    kad_found *f = &q->found[q->nfound++];
    memset(f, 0, sizeof *f);
    f->id = p->id;
    for (size_t i = 0; i < p->addr_cnt && f->naddrs < GNI_KAD_MAX_ADDRS; i++) {
        if (gn_multiaddr_from_bytes(p->addrs[i].data, p->addrs[i].len,
                                    &f->addrs[f->naddrs]) == 0) {
            f->naddrs++;
        }
    }
    if (f->naddrs == 0) {
        f->naddrs = query_addrs(q, &p->id, f->addrs, GNI_KAD_MAX_ADDRS);
    }
}

static void send_lookup(kad_query *q, unsigned path, const gn_peer_id *peer)
{
    kad_router *kr = q->kr;
    gn_time now = kr_now(kr);
    /* a peer the host reaches by itself, or at addresses the answers gave
     * (never through the routers: that would bring the host back here) */
    kad_addr_ent *ce = cache_get(q, peer);
    bool na = ce || gn_host_peer_dialable(kr->h, peer);
    kad_call *c = NULL;
    gni_kad_msg m;
    int rc = !na ? GN_ENOROUTE : lookup_msg(q, &m);
    if (na) {
        if (rc == 0 && !(c = gn_calloc(1, sizeof *c))) {
            rc = GN_ENOMEM;
        }
        if (rc == 0) {
            c->q = q;
            c->kr = kr;
            c->peer = *peer;
            c->path = path;
            rc = gni_kad_rpc_send(kr->h, kr->cfg.proto, peer, ce ? ce->addrs : NULL,
                                  ce ? ce->n : 0, &m, true, &kr->cfg.lim,
                                  kr->cfg.request_timeout, on_lookup_reply, c, &c->rpc);
        }
        gni_kad_msg_fini(&m);
    }
    if (rc < 0) {
        gn_free(c);
        (void)gni_kad_lookup_failure(q->lks[path], peer, now);
        return;
    }
    gni_list_add_tail(&q->calls, &c->link);
}

static void query_pump(kad_query *q)
{
    kad_router *kr = q->kr;
    if (q->answered || q->storing) {
        return;
    }
    gn_peer_id p;
    for (unsigned i = 0; i < q->npaths; i++) {
        size_t guard = 0;
        while (guard++ < KAD_ALPHA_MAX * 4 &&
               gni_kad_lookup_next(q->lks[i], kr_now(kr), &p) == 1) {
            send_lookup(q, i, &p);
        }
    }
    if (paths_done(q)) {
        gn_timer_stop(&q->timer);
        query_lookup_done(q);
        return;
    }
    gn_time d = GN_TIME_INFINITY;
    for (size_t i = 0; i < q->npaths; i++) {
        d = GNI_MIN(d, gni_kad_lookup_deadline(q->lks[i]));
    }
    gn_time now = kr_now(kr);
    if (d != GN_TIME_INFINITY) {
        (void)gn_timer_start(&q->timer, d > now ? d - now : 0, query_tick, q);
    }
}

static void on_lookup_reply(void *arg, int status, gni_kad_msg *resp)
{
    kad_call *c = arg;
    kad_query *q = c->q;
    kad_router *kr = c->kr;
    gn_peer_id peer = c->peer;
    unsigned path = c->path;
    gni_kad_lookup *lk = q->lks[path];
    gni_list_del(&c->link);
    gn_free(c);
    gn_time now = kr_now(kr);
    if (status < 0) {
        (void)gni_kad_lookup_failure(lk, &peer, now);
        if (gni_kad_table_failure(kr->table, &peer, now) == 1) {
            char pid[GN_PEER_ID_MAX_STRLEN];
            pid_str(&peer, pid, sizeof pid);
            GN_LOG(GN_LOG_DEBUG, KAD_LOG, "%s dropped from the routing table: %s", pid,
                   gn_err_name(status));
        }
        query_pump(q);
        return;
    }
    /* it answered a kad request: a server */
    kad_addr_ent *ce = cache_get(q, &peer);
    table_add(kr, &peer, GNI_KAD_F_RESPONDED, ce ? ce->addrs : NULL, ce ? ce->n : 0);
    gn_peer_id closer[GNI_KAD_DEFAULT_MAX_CLOSER];
    size_t n = 0;
    for (size_t i = 0; i < resp->closer_cnt && n < GNI_ARRAY_LEN(closer); i++) {
        const gni_kad_peer *p = &resp->closer[i];
        if (!learn_peer(kr, q, p)) {
            continue;
        }
        if (q->kind == Q_FIND_PEER && gn_peer_id_equal(&p->id, &q->peer)) {
            found_add(q, &p->id);
        }
        if (claim(q, &p->id, path)) {
            closer[n++] = p->id;
        }
    }
    if (q->kind == Q_FIND_PEER && gn_peer_id_equal(&peer, &q->peer)) {
        found_add(q, &peer);
    }
    if (q->kind == Q_GET && resp->has_record && resp->rec_key.len == q->key_len &&
        memcmp(resp->rec_key.data, q->key, q->key_len) == 0 &&
        gni_kad_validators_validate(kr->validators, q->key, q->key_len, resp->rec_value.data,
                                    resp->rec_value.len) == 0 &&
        q->nvalues < kr->cfg.quorum) {
        uint8_t *v = gn_malloc(resp->rec_value.len ? resp->rec_value.len : 1);
        if (v) {
            if (resp->rec_value.len) {
                memcpy(v, resp->rec_value.data, resp->rec_value.len);
            }
            q->values[q->nvalues] = v;
            q->value_lens[q->nvalues++] = resp->rec_value.len;
        }
    }
    if (q->kind == Q_FIND_PROV) {
        for (size_t i = 0; i < resp->provider_cnt; i++) {
            const gni_kad_peer *pp = &resp->providers[i];
            if (gn_peer_id_equal(&pp->id, &kr->self)) {
                continue; /* our own records are added from the local store */
            }
            found_add_with(q, pp); /* with the addresses it gave, else what we know */
        }
    }
    (void)gni_kad_lookup_response(lk, &peer, closer, n, now);
    if ((q->kind == Q_FIND_PEER && q->nfound > 0 && q->found[0].naddrs > 0) ||
        (q->kind == Q_GET && q->nvalues >= kr->cfg.quorum) ||
        (q->kind == Q_FIND_PROV && q->nfound >= q->max_found)) {
        query_answer(q, 0);
        return;
    }
    query_pump(q);
}

/* ---- the store phase of PUT and PROVIDE ---- */

static void store_check_done(kad_query *q)
{
    if (!gni_list_empty(&q->calls)) {
        return;
    }
    int st = q->store_ok > 0 ? 0 : (q->store_err > 0 ? q->store_first_err : GN_ENOROUTE);
    query_answer(q, st);
}

static void on_store_reply(void *arg, int status, gni_kad_msg *resp)
{
    kad_call *c = arg;
    kad_query *q = c->q;
    gni_list_del(&c->link);
    gn_free(c);
    /* a PUT_VALUE reply echoes the record it stored (as go checks) */
    if (status == 0 && q->kind == Q_PUT && resp &&
        (!resp->has_record || resp->rec_value.len != q->value_len ||
         (q->value_len && memcmp(resp->rec_value.data, q->value, q->value_len) != 0))) {
        status = GN_EPROTO;
    }
    if (status == 0) {
        q->store_ok++;
    } else if (q->store_err++ == 0) {
        q->store_first_err = status;
    }
    store_check_done(q);
}

static void query_store(kad_query *q)
{
    kad_router *kr = q->kr;
    /* lookup requests still in flight (the lookup ended at its timeout, or
     * their peers fell out of the k closest) are no longer wanted */
    cancel_calls(q);
    q->storing = true;
    gn_peer_id ids[GNI_KAD_K_MAX];
    size_t n = paths_results(q, ids, GNI_MIN(kr->cfg.k, GNI_KAD_K_MAX));
    gni_kad_msg m;
    gni_kad_msg_init(&m);
    int rc = gni_kad_msg_set_key(&m, q->key, q->key_len);
    if (q->kind == Q_PUT) {
        char tbuf[40];
        format_time(tbuf, sizeof tbuf);
        m.type = GNI_KAD_PUT_VALUE;
        if (rc == 0) {
            rc = gni_kad_msg_set_record(&m, q->key, q->key_len, q->value, q->value_len, tbuf);
        }
    } else {
        m.type = GNI_KAD_ADD_PROVIDER;
        reply_self(kr, &m);
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        kad_call *c = gn_calloc(1, sizeof *c);
        if (!c) {
            rc = GN_ENOMEM;
            break;
        }
        c->q = q;
        c->kr = kr;
        c->peer = ids[i];
        kad_addr_ent *ce = cache_get(q, &ids[i]);
        int x = gni_kad_rpc_send(kr->h, kr->cfg.proto, &ids[i], ce ? ce->addrs : NULL,
                                 ce ? ce->n : 0, &m, q->kind == Q_PUT,
                                 &kr->cfg.lim, kr->cfg.request_timeout, on_store_reply, c,
                                 &c->rpc);
        if (x < 0) {
            gn_free(c);
            if (q->store_err++ == 0) {
                q->store_first_err = x;
            }
            continue;
        }
        gni_list_add_tail(&q->calls, &c->link);
    }
    gni_kad_msg_fini(&m);
    if (rc < 0 && q->store_err++ == 0) {
        q->store_first_err = rc;
    }
    store_check_done(q);
}

static void query_lookup_done(kad_query *q)
{
    kad_router *kr = q->kr;
    int st = paths_status(q);
    switch (q->kind) {
    case Q_PUT:
    case Q_PROVIDE:
        query_store(q);
        return;
    case Q_REFRESH:
        gni_kad_table_refreshed(kr->table, q->cpl, kr_now(kr));
        query_answer(q, st);
        return;
    case Q_FIND_PEER:
        query_answer(q, q->nfound > 0 && q->found[0].naddrs > 0
                            ? 0
                            : (st == GN_ETIMEDOUT ? st : GN_ENOROUTE));
        return;
    case Q_GET:
        query_answer(q, q->nvalues > 0 ? 0 : (st == 0 ? GN_ENOTFOUND : st));
        return;
    case Q_FIND_PROV:
        /* nobody to ask and nothing known locally: GN_ENOROUTE */
        query_answer(q, q->nfound > 0 ? 0 : st);
        return;
    case Q_CLOSEST:
    default:
        query_answer(q, st);
        return;
    }
}

/* Creates a query for wire key @key; the lookup targets SHA-256(@key). */
static int query_new(kad_router *kr, qkind kind, gn_slice key, kad_query **out)
{
    *out = NULL;
    if (!kr->running) {
        return GN_ESTATE;
    }
    size_t max_key = kr->cfg.lim.max_key_len ? kr->cfg.lim.max_key_len
                                              : GNI_KAD_DEFAULT_MAX_KEY_LEN;
    if (key.len == 0 || key.len > max_key) {
        return GN_EINVAL;
    }
    if (kr->nqueries >= kr->cfg.max_queries) {
        GN_LOG(GN_LOG_INFO, KAD_LOG, "query refused: %zu queries running (kad.max_queries)",
               kr->nqueries);
        return GN_ELIMIT;
    }
    kad_query *q = gn_calloc(1, sizeof *q);
    if (!q || !(q->key = gn_malloc(key.len))) {
        gn_free(q);
        return GN_ENOMEM;
    }
    memcpy(q->key, key.base, key.len);
    q->key_len = key.len;
    q->kr = kr;
    q->kind = kind;
    q->op.cancel = query_cancel;
    gni_list_init(&q->calls);
    gn_timer_init(kr->r->loop, &q->timer);
    gni_kad_key target;
    gni_kad_key_from_bytes(key.base, key.len, &target);
    q->target = target;
    gni_kad_lookup_config lc;
    gni_kad_lookup_config_default(&lc);
    lc.k = kr->cfg.k;
    lc.alpha = kr->cfg.alpha;
    lc.max_candidates = GNI_MAX(lc.max_candidates, 10 * kr->cfg.k);
    lc.request_timeout = kr->cfg.request_timeout;
    lc.query_timeout = kr->cfg.query_timeout;
    int rc = 0;
    q->npaths = kr->cfg.paths;
    q->cache_max = kr->cfg.paths * lc.max_candidates;
    if (q->npaths > 1) {
        q->claims_cap = q->npaths * lc.max_candidates;
        if (!(q->claims = gn_calloc(q->claims_cap, sizeof *q->claims))) {
            rc = GN_ENOMEM;
        }
    }
    for (size_t i = 0; i < q->npaths && rc == 0; i++) {
        rc = gni_kad_lookup_new(&lc, &target, &kr->self, kr_now(kr), &q->lks[i]);
    }
    gni_list_add_tail(&kr->queries, &q->link);
    kr->nqueries++;
    if (rc < 0) {
        query_free(q);
        return rc;
    }
    *out = q;
    return 0;
}

/* Seeds the lookup from the table and starts it. */
static void query_start(kad_query *q)
{
    kad_router *kr = q->kr;
    gni_kad_key target;
    gni_kad_key_from_bytes(q->key, q->key_len, &target);
    const gni_kad_entry *e[GNI_KAD_K_MAX];
    size_t n = gni_kad_table_closest(kr->table, &target, kr->cfg.k, e);
    /* disjoint paths: the seeds are dealt out round-robin, closest first */
    for (size_t p = 0; p < q->npaths; p++) {
        gn_peer_id seeds[GNI_KAD_K_MAX];
        size_t ns = 0;
        for (size_t i = p; i < n; i += q->npaths) {
            if (claim(q, &e[i]->id, (unsigned)p)) {
                seeds[ns++] = e[i]->id;
            }
        }
        (void)gni_kad_lookup_seed(q->lks[p], seeds, ns);
    }
    /* the lookup answers on a later turn even when it has nothing to do */
    (void)gn_timer_start(&q->timer, 0, query_tick, q);
}

/* ------------------------------------------------------------------------
 * Liveness checks
 */

static void on_check_reply(void *arg, int status, gni_kad_msg *resp)
{
    (void)resp;
    kad_call *c = arg;
    kad_router *kr = c->kr;
    gni_list_del(&c->link);
    (void)gni_kad_table_check_result(kr->table, &c->peer, status == 0, kr_now(kr));
    gn_free(c);
}

static void check_peer(kad_router *kr, const gn_peer_id *peer)
{
    const gni_kad_entry *e = gni_kad_table_find(kr->table, peer);
    if (!gn_host_peer_dialable(kr->h, peer) && (!e || e->naddrs == 0)) {
        /* nowhere to reach it: asking the host would ask the routers */
        (void)gni_kad_table_check_result(kr->table, peer, false, kr_now(kr));
        return;
    }
    kad_call *c = gn_calloc(1, sizeof *c);
    gni_kad_msg m;
    gni_kad_msg_init(&m);
    m.type = GNI_KAD_FIND_NODE;
    int rc = c ? gni_kad_msg_set_key(&m, kr->self.bytes, kr->self.len) : GN_ENOMEM;
    if (rc == 0) {
        c->kr = kr;
        c->peer = *peer;
        rc = gni_kad_rpc_send(kr->h, kr->cfg.proto, peer, e ? e->addrs : NULL,
                              e ? e->naddrs : 0, &m, true, &kr->cfg.lim,
                              kr->cfg.request_timeout, on_check_reply, c, &c->rpc);
    }
    gni_kad_msg_fini(&m);
    if (rc < 0) {
        gn_free(c);
        (void)gni_kad_table_check_result(kr->table, peer, false, kr_now(kr));
        return;
    }
    gni_list_add_tail(&kr->checks, &c->link);
}

/* ------------------------------------------------------------------------
 * Serving
 */

static kad_inbound *inbound_get(kad_router *kr, const gn_peer_id *peer, bool create)
{
    kad_inbound *free_slot = NULL, *oldest = NULL;
    for (size_t i = 0; i < kr->ninbound; i++) {
        kad_inbound *b = &kr->inbound[i];
        if (b->used && gn_peer_id_equal(&b->peer, peer)) {
            return b;
        }
        if (!b->used && !free_slot) {
            free_slot = b;
        } else if (b->used && b->streams == 0 && (!oldest || b->last < oldest->last)) {
            oldest = b;
        }
    }
    if (!create) {
        return NULL;
    }
    if (!free_slot && kr->ninbound < KAD_INBOUND_PEERS) {
        if (kr->ninbound == kr->inbound_cap) {
            size_t cap = kr->inbound_cap ? kr->inbound_cap * 2 : 8;
            kad_inbound *g = gn_realloc(kr->inbound, cap * sizeof *g);
            if (g) {
                kr->inbound = g;
                kr->inbound_cap = cap;
            }
        }
        if (kr->ninbound < kr->inbound_cap) {
            free_slot = &kr->inbound[kr->ninbound++];
        }
    }
    kad_inbound *b = free_slot ? free_slot : oldest;
    if (b) {
        memset(b, 0, sizeof *b);
        b->used = true;
        b->peer = *peer;
        b->tokens = kr->cfg.burst;
        b->last = kr_now(kr);
    }
    return b;
}

/* Takes one request token of @peer's bucket; false when it is empty. */
static bool inbound_take(kad_router *kr, const gn_peer_id *peer)
{
    kad_inbound *b = inbound_get(kr, peer, true);
    if (!b) {
        return false;
    }
    gn_time now = kr_now(kr);
    double add = (double)(now - b->last) / (double)GN_S * kr->cfg.rate;
    b->tokens = GNI_MIN(b->tokens + add, (double)kr->cfg.burst);
    b->last = now;
    if (b->tokens < 1.0) {
        return false;
    }
    b->tokens -= 1.0;
    return true;
}

static int serve_request(void *arg, const gn_peer_id *peer, const gni_kad_msg *req,
                         gni_kad_msg *resp)
{
    kad_server_stream *ss = arg;
    kad_router *kr = ss->kr;
    char pid[GN_PEER_ID_MAX_STRLEN];
    if (!inbound_take(kr, peer)) {
        pid_str(peer, pid, sizeof pid);
        GN_LOG(GN_LOG_INFO, KAD_LOG, "%s: request rate above kad.rate=%u/s; stream reset", pid,
               kr->cfg.rate);
        return GN_ELIMIT;
    }
    if (gn_host_peer_supports(kr->h, peer, kr->cfg.proto)) {
        table_add(kr, peer, 0, NULL, 0);
    }
    gni_kad_key target;
    gni_kad_key_from_bytes(req->key.data, req->key.len, &target);
    resp->type = req->type;
    int rc = gni_kad_msg_set_key(resp, req->key.data, req->key.len);
    if (rc < 0) {
        return rc;
    }
    gn_time now = kr_now(kr);
    switch (req->type) {
    case GNI_KAD_FIND_NODE:
        if (req->key.len == 0) {
            return GN_EPROTO;
        }
        reply_closer(kr, resp, &target, peer);
        return 1;
    case GNI_KAD_GET_VALUE: {
        if (req->key.len == 0) {
            return GN_EPROTO;
        }
        gn_slice v;
        if (gni_kad_records_get(kr->records, req->key.data, req->key.len, now, &v, NULL) == 0) {
            char tbuf[40];
            format_time(tbuf, sizeof tbuf);
            rc = gni_kad_msg_set_record(resp, req->key.data, req->key.len, v.base, v.len, tbuf);
            if (rc < 0) {
                return rc;
            }
        }
        reply_closer(kr, resp, &target, peer);
        return 1;
    }
    case GNI_KAD_PUT_VALUE: {
        if (!req->has_record || req->rec_key.len != req->key.len ||
            memcmp(req->rec_key.data, req->key.data, req->key.len) != 0) {
            pid_str(peer, pid, sizeof pid);
            GN_LOG(GN_LOG_INFO, KAD_LOG, "%s: PUT_VALUE without a record for its key", pid);
            return GN_EPROTO;
        }
        rc = gni_kad_records_put(kr->records, req->key.data, req->key.len, req->rec_value.data,
                                 req->rec_value.len, now, false);
        if (rc < 0) {
            pid_str(peer, pid, sizeof pid);
            GN_LOG(GN_LOG_INFO, KAD_LOG, "%s: record refused: %s", pid, gn_err_name(rc));
            return rc;
        }
        char tbuf[40];
        format_time(tbuf, sizeof tbuf);
        rc = gni_kad_msg_set_record(resp, req->key.data, req->key.len, req->rec_value.data,
                                    req->rec_value.len, req->rec_time ? req->rec_time : tbuf);
        return rc < 0 ? rc : 1;
    }
    case GNI_KAD_GET_PROVIDERS: {
        if (req->key.len == 0) {
            return GN_EPROTO;
        }
        const gni_kad_provider *prov[GNI_KAD_DEFAULT_MAX_PROVIDERS];
        size_t n = gni_kad_providers_get(kr->providers, req->key.data, req->key.len, now, prov,
                                         GNI_KAD_DEFAULT_MAX_PROVIDERS);
        for (size_t i = 0; i < n; i++) {
            gni_kad_peer *p;
            if (gni_kad_msg_add_peer(resp, true, &prov[i]->id, GNI_KAD_NOT_CONNECTED, &p) < 0) {
                break;
            }
            for (size_t j = 0; j < prov[i]->naddrs; j++) {
                (void)gni_kad_peer_add_addr(p, prov[i]->addrs[j].base, prov[i]->addrs[j].len);
            }
        }
        reply_closer(kr, resp, &target, peer);
        return 1;
    }
    case GNI_KAD_ADD_PROVIDER: {
        /* a content key: a multihash (as go and js send), or CIDv1 bytes */
        gn_multihash mh;
        uint64_t codec;
        if (req->key.len == 0 ||
            (gn_multihash_decode(req->key.data, req->key.len, &mh) < 0 &&
             gn_cid_decode(req->key.data, req->key.len, &codec, &mh) < 0)) {
            pid_str(peer, pid, sizeof pid);
            GN_LOG(GN_LOG_INFO, KAD_LOG, "%s: ADD_PROVIDER key is neither a multihash nor a CID",
                   pid);
            return GN_EPROTO;
        }
        for (size_t i = 0; i < req->provider_cnt; i++) {
            const gni_kad_peer *p = &req->providers[i];
            if (!gn_peer_id_equal(&p->id, peer)) {
                continue; /* only the sender may announce itself (spec) */
            }
            gn_slice addrs[GNI_KAD_MAX_ADDRS];
            size_t na = 0;
            for (size_t j = 0; j < p->addr_cnt && na < GNI_KAD_MAX_ADDRS; j++, na++) {
                addrs[na] = gn_slice_of(p->addrs[j].data, p->addrs[j].len);
            }
            rc = gni_kad_providers_add(kr->providers, req->key.data, req->key.len, &p->id,
                                       addrs, na, now);
            if (rc < 0) {
                pid_str(peer, pid, sizeof pid);
                GN_LOG(GN_LOG_INFO, KAD_LOG, "%s: provider record refused: %s", pid,
                       gn_err_name(rc));
            }
        }
        return 0;
    }
    case GNI_KAD_PING:
        return 1;
    default:
        return GN_EPROTO;
    }
}

static void serve_end(void *arg, const gn_peer_id *peer, int status)
{
    (void)status;
    kad_server_stream *ss = arg;
    kad_router *kr = ss->kr;
    kad_inbound *b = inbound_get(kr, peer, false);
    if (b && b->streams > 0) {
        b->streams--;
    }
    gni_list_del(&ss->link);
    kr->nserved--;
    gn_free(ss);
}

static void on_stream(void *arg, gn_channel *ch, gn_stream *s, const char *protocol_id)
{
    (void)protocol_id;
    kad_router *kr = arg;
    gn_peer_id peer;
    char pid[GN_PEER_ID_MAX_STRLEN];
    (void)ch;
    if (gn_stream_query(s, GN_QUERY_REMOTE_PEER_ID, &peer, sizeof peer) < 0 || peer.len == 0) {
        GN_LOG(GN_LOG_INFO, KAD_LOG, "kad stream without a peer ID refused");
        gn_stream_reset(s, NULL, NULL);
        return;
    }
    kad_inbound *b = inbound_get(kr, &peer, true);
    if (!kr->running || !b || b->streams >= kr->cfg.inbound_per_peer ||
        kr->nserved >= kr->cfg.max_inbound) {
        pid_str(&peer, pid, sizeof pid);
        GN_LOG(GN_LOG_INFO, KAD_LOG,
               "%s: kad stream refused (%u of kad.inbound_per_peer=%zu, %zu of "
               "kad.max_inbound=%zu)",
               pid, b ? b->streams : 0, kr->cfg.inbound_per_peer, kr->nserved,
               kr->cfg.max_inbound);
        gn_stream_reset(s, NULL, NULL);
        return;
    }
    kad_server_stream *ss = gn_calloc(1, sizeof *ss);
    if (!ss) {
        gn_stream_reset(s, NULL, NULL);
        return;
    }
    ss->kr = kr;
    if (gni_kad_serve(s, &peer, &kr->cfg.lim, KAD_SERVE_IDLE, serve_request, serve_end, ss,
                      &ss->sv) < 0) {
        gn_free(ss);
        gn_stream_reset(s, NULL, NULL);
        return;
    }
    b->streams++;
    gni_list_add_tail(&kr->served, &ss->link);
    kr->nserved++;
}

/* ------------------------------------------------------------------------
 * Mode, events, periodic work
 */

/* True when @ma's first component is a public IPv4/IPv6 address. */
static bool addr_public(const gn_multiaddr *ma)
{
    gn_ma_component c;
    if (gn_multiaddr_component(ma, 0, &c) < 0) {
        return false;
    }
    const uint8_t *a = c.value;
    if (c.code == GN_MA_IP4 && c.value_len == 4) {
        return !(a[0] == 10 || a[0] == 127 || a[0] == 0 || (a[0] == 169 && a[1] == 254) ||
                 (a[0] == 172 && (a[1] & 0xf0) == 16) || (a[0] == 192 && a[1] == 168) ||
                 (a[0] == 100 && (a[1] & 0xc0) == 64) || a[0] >= 224);
    }
    if (c.code == GN_MA_IP6 && c.value_len == 16) {
        return (a[0] & 0xe0) == 0x20; /* global unicast 2000::/3 */
    }
    return false;
}

static void set_serving(kad_router *kr, bool on)
{
    if (on == kr->serving) {
        return;
    }
    if (on) {
        int rc = gn_host_set_handler(kr->h, kr->cfg.proto, on_stream, kr);
        if (rc < 0) {
            GN_LOG(GN_LOG_ERR, KAD_LOG, "cannot serve %s: %s", kr->cfg.proto, gn_err_name(rc));
            return;
        }
    } else {
        (void)gn_host_remove_handler(kr->h, kr->cfg.proto);
    }
    kr->serving = on;
    GN_LOG(GN_LOG_INFO, KAD_LOG, "%s mode", on ? "server" : "client");
}

static void update_mode(kad_router *kr)
{
    if (kr->cfg.mode != MODE_AUTO) {
        return;
    }
    /* an AutoNAT verdict decides when there is one (libp2p/specs
     * kad-dht/README.md "Client and server mode"): private peers are clients */
    gn_reachability reach = gn_host_reachability(kr->h);
    if (reach != GN_REACH_UNKNOWN) {
        set_serving(kr, reach == GN_REACH_PUBLIC);
        return;
    }
    const gn_multiaddr *a[16];
    size_t n = gn_host_listen_addrs(kr->h, a, 16);
    bool pub = false;
    for (size_t i = 0; i < n && !pub; i++) {
        pub = addr_public(a[i]);
    }
    n = gn_host_observed_addrs(kr->h, a, 16);
    for (size_t i = 0; i < n && !pub; i++) {
        pub = addr_public(a[i]);
    }
    set_serving(kr, pub);
}

static void on_host_event(void *arg, const gn_host_event *ev)
{
    kad_router *kr = arg;
    if (!kr->running) {
        return;
    }
    if (ev->type == GN_HOST_EV_IDENTIFIED && ev->peer) {
        if (gn_host_peer_supports(kr->h, ev->peer, kr->cfg.proto)) {
            table_add(kr, ev->peer, 0, NULL, 0);
        } else if (gni_kad_table_find(kr->table, ev->peer)) {
            (void)gni_kad_table_remove(kr->table, ev->peer); /* now a client */
        }
    } else if (ev->type == GN_HOST_EV_LISTEN_ADDRS || ev->type == GN_HOST_EV_REACHABILITY) {
        update_mode(kr);
    }
}

static void republish(kad_router *kr);

static void kad_tick(gn_timer *t, void *arg);

static void tick_arm(kad_router *kr, gn_time delay)
{
    (void)gn_timer_start(&kr->tick, delay, kad_tick, kr);
}

static void start_refresh(kad_router *kr, unsigned cpl)
{
    gn_peer_id target;
    if (gni_kad_table_random_peer(kr->table, cpl, gn_rng_system(), 1u << 20, &target) < 0) {
        gni_kad_table_refreshed(kr->table, cpl, kr_now(kr));
        return;
    }
    kad_query *q;
    if (query_new(kr, Q_REFRESH, gn_slice_of(target.bytes, target.len), &q) < 0) {
        return;
    }
    q->cpl = cpl;
    query_start(q);
}

/* Whether a refresh query for some bucket is already running. */
static bool refreshing(kad_router *kr)
{
    for (gni_list *e = kr->queries.next; e != &kr->queries; e = e->next) {
        if (GNI_CONTAINER_OF(e, kad_query, link)->kind == Q_REFRESH) {
            return true;
        }
    }
    return false;
}

static void kad_tick(gn_timer *t, void *arg)
{
    (void)t;
    kad_router *kr = arg;
    gn_time now = kr_now(kr);
    gni_kad_records_expire(kr->records, now);
    gni_kad_providers_expire(kr->providers, now);
    if (gni_kad_table_count(kr->table) > 0 && !refreshing(kr)) {
        unsigned cpls[GNI_KAD_REFRESH_MAX_CPL + 1];
        size_t due = gni_kad_table_refresh_due(kr->table, now, cpls, GNI_ARRAY_LEN(cpls));
        for (size_t i = 0; i < due && i < GNI_ARRAY_LEN(cpls); i++) {
            start_refresh(kr, cpls[i]);
        }
    }
    if (now - kr->last_republish >= kr->cfg.republish) {
        kr->last_republish = now;
        republish(kr);
    }
    gn_time next = gni_kad_table_next_refresh(kr->table);
    gn_time d = next > now ? next - now : kr->cfg.refresh;
    d = GNI_MIN(d, kr->cfg.refresh);
    d = GNI_MIN(d, 60 * GN_S); /* expiry runs at least every minute */
    tick_arm(kr, GNI_MAX(d, GN_S));
}

static void republish_done(void *arg, int status)
{
    (void)arg;
    if (status < 0 && status != GN_ECANCELED) {
        GN_LOG(GN_LOG_DEBUG, KAD_LOG, "republish: %s", gn_err_name(status));
    }
}

static int kad_put_value(gn_router *r, gn_slice key, gn_slice value, gn_router_done_cb cb,
                         void *arg, gn_op **op);
static int kad_provide(gn_router *r, gn_slice key, gn_router_done_cb cb, void *arg, gn_op **op);

/* Sends one local record (Q_PUT) or provider key (Q_PROVIDE) again, from
 * copies: the put and provide calls change the stores. */
static void republish_one(kad_router *kr, qkind kind, gn_slice k, gn_slice v)
{
    uint8_t *kc = gn_malloc(k.len + v.len + 1);
    if (!kc) {
        return;
    }
    memcpy(kc, k.base, k.len);
    if (v.len) {
        memcpy(kc + k.len, v.base, v.len);
    }
    int rc = kind == Q_PUT ? kad_put_value(kr->r, gn_slice_of(kc, k.len),
                                           gn_slice_of(kc + k.len, v.len), republish_done, kr,
                                           NULL)
                           : kad_provide(kr->r, gn_slice_of(kc, k.len), republish_done, kr, NULL);
    if (rc < 0) {
        GN_LOG(GN_LOG_DEBUG, KAD_LOG, "republish: %s", gn_err_name(rc));
    }
    gn_free(kc);
}

/* Sends this node's own records and provider keys again (spec: provider
 * records every 22 h; values likewise so that they outlive their expiry). */
/* One entry to republish, copied out of the store. */
typedef struct repub_item {
    qkind kind;
    uint8_t *buf; /* key, then value */
    size_t klen, vlen;
} repub_item;

static void republish(kad_router *kr)
{
    /* put and provide reorder the stores' local lists: copy everything
     * first, then send */
    size_t nrec = gni_kad_records_local_count(kr->records);
    size_t nprov = gni_kad_providers_local_count(kr->providers);
    size_t total = nrec + nprov, n = 0;
    repub_item *items = total ? gn_calloc(total, sizeof *items) : NULL;
    if (total && !items) {
        GN_LOG(GN_LOG_WARNING, KAD_LOG, "republish skipped: out of memory");
        return;
    }
    for (size_t i = 0; i < total; i++) {
        gn_slice k, v = gn_slice_of(NULL, 0);
        bool rec = i < nrec;
        int rc = rec ? gni_kad_records_local_at(kr->records, i, &k, &v, NULL)
                     : gni_kad_providers_local_at(kr->providers, i - nrec, &k, NULL);
        if (rc < 0 || !(items[n].buf = gn_malloc(k.len + v.len + 1))) {
            continue;
        }
        memcpy(items[n].buf, k.base, k.len);
        if (v.len) {
            memcpy(items[n].buf + k.len, v.base, v.len);
        }
        items[n].kind = rec ? Q_PUT : Q_PROVIDE;
        items[n].klen = k.len;
        items[n].vlen = v.len;
        n++;
    }
    for (size_t i = 0; i < n; i++) {
        republish_one(kr, items[i].kind, gn_slice_of(items[i].buf, items[i].klen),
                      gn_slice_of(items[i].buf + items[i].klen, items[i].vlen));
        gn_free(items[i].buf);
    }
    gn_free(items);
}

/* ------------------------------------------------------------------------
 * Router ops
 */

static int kad_init(gn_router *r)
{
    kad_router *kr = r->state;
    kr->r = r;
    kr->h = r->host;
    gni_list_init(&kr->queries);
    gni_list_init(&kr->checks);
    gni_list_init(&kr->served);
    gn_host_peer_id(r->host, &kr->self);
    gn_timer_init(r->loop, &kr->tick);
    int rc = gni_kad_validators_new(&kr->validators);
    return rc;
}

static void kad_fini(gn_router *r)
{
    kad_router *kr = r->state;
    gni_kad_table_free(kr->table);
    gni_kad_records_free(kr->records);
    gni_kad_providers_free(kr->providers);
    gni_kad_validators_free(kr->validators);
    for (size_t i = 0; i < kr->nboot; i++) {
        gn_multiaddr_free(kr->boot[i]);
    }
    gn_free(kr->inbound);
    for (size_t i = 0; i < kr->next; i++) {
        gn_free(kr->ext[i]);
    }
}

static int load_bootstrap(kad_router *kr)
{
    const char *v;
    for (size_t i = 0; (v = gn_host_option(kr->h, "kad", "bootstrap", i)); i++) {
        if (kr->nboot == KAD_MAX_BOOTSTRAP) {
            GN_LOG(GN_LOG_ERR, KAD_LOG, "more than %u kad.bootstrap entries", KAD_MAX_BOOTSTRAP);
            return GN_ELIMIT;
        }
        gn_multiaddr *ma = NULL;
        gn_ma_component c;
        size_t n;
        gn_peer_id id;
        int rc = gn_multiaddr_parse(v, &ma);
        if (rc == 0 && ((n = gn_multiaddr_count(ma)) < 2 ||
                        gn_multiaddr_component(ma, n - 1, &c) < 0 || c.code != GN_MA_P2P ||
                        gn_peer_id_from_bytes(c.value, c.value_len, &id) < 0)) {
            rc = GN_EINVAL;
        }
        const gn_multiaddr *one[1] = {ma};
        if (rc == 0) {
            rc = gn_host_peer_add_addrs(kr->h, &id, one, 1, GN_ADDR_TTL_PERMANENT,
                                        GN_ADDR_SRC_MANUAL);
        }
        if (rc < 0) {
            GN_LOG(GN_LOG_ERR, KAD_LOG, "kad.bootstrap=%s: %s (want <multiaddr>/p2p/<id>)", v,
                   gn_strerror(rc));
            gn_multiaddr_free(ma);
            return rc;
        }
        kr->boot[kr->nboot] = ma;
        kr->boot_id[kr->nboot++] = id;
    }
    return 0;
}

static void boot_connected(void *arg, int status, gn_channel *ch)
{
    (void)ch;
    kad_router *kr = arg;
    if (status < 0 && status != GN_ECANCELED) {
        GN_LOG(GN_LOG_INFO, KAD_LOG, "bootstrap peer: %s", gn_err_name(status));
    }
    (void)kr;
}

static int kad_closest(gn_router *r, gn_slice key, gn_router_peers_cb cb, void *arg,
                       gn_op **op);

/* Undoes a start that failed half-way (the node does not stop a router
 * whose start failed). */
static void start_undo(kad_router *kr)
{
    if (kr->serving) {
        set_serving(kr, false);
    }
    kr->running = false;
    gn_timer_stop(&kr->tick);
    gn_host_unsubscribe(kr->sub);
    kr->sub = NULL;
    gni_kad_table_free(kr->table);
    gni_kad_records_free(kr->records);
    gni_kad_providers_free(kr->providers);
    kr->table = NULL;
    kr->records = NULL;
    kr->providers = NULL;
    for (size_t i = 0; i < kr->nboot; i++) {
        gn_multiaddr_free(kr->boot[i]);
        kr->boot[i] = NULL;
    }
    kr->nboot = 0;
}

static int kad_start_run(kad_router *kr);

static int kad_start(gn_router *r)
{
    kad_router *kr = r->state;
    start_undo(kr); /* a start after a failed one begins afresh */
    int rc = kad_start_run(kr);
    if (rc < 0) {
        start_undo(kr);
    }
    return rc;
}

static int kad_start_run(kad_router *kr)
{
    int rc = load_options(kr);
    if (rc < 0) {
        return rc;
    }
    gni_kad_table_config tc;
    gni_kad_table_config_default(&tc);
    tc.k = kr->cfg.k;
    tc.refresh_interval = kr->cfg.refresh;
    gni_kad_records_config rcfg;
    gni_kad_records_config_default(&rcfg);
    gni_kad_providers_config pcfg;
    gni_kad_providers_config_default(&pcfg);
    if ((rc = gni_kad_table_new(&tc, &kr->self, kr_now(kr), &kr->table)) < 0 ||
        (rc = gni_kad_records_new(&rcfg, kr->validators, &kr->records)) < 0 ||
        (rc = gni_kad_providers_new(&pcfg, &kr->providers)) < 0 ||
        (rc = load_bootstrap(kr)) < 0) {
        return rc;
    }
    rc = gn_host_subscribe(kr->h,
                           GN_HOST_EV_IDENTIFIED | GN_HOST_EV_LISTEN_ADDRS |
                               GN_HOST_EV_REACHABILITY,
                           on_host_event,
                           kr, &kr->sub);
    if (rc < 0) {
        return rc;
    }
    kr->running = true;
    kr->last_republish = kr_now(kr);
    if (kr->cfg.mode == MODE_SERVER) {
        set_serving(kr, true);
        if (!kr->serving) {
            return GN_EEXIST;
        }
    } else {
        update_mode(kr);
    }
    for (size_t i = 0; i < kr->nboot; i++) {
        (void)gn_host_connect(kr->h, kr->boot[i], boot_connected, kr, NULL);
    }
    tick_arm(kr, KAD_FIRST_REFRESH);
    return 0;
}

static void kad_stop(gn_router *r)
{
    kad_router *kr = r->state;
    if (!kr->running) {
        return;
    }
    kr->running = false;
    gn_timer_stop(&kr->tick);
    gn_host_unsubscribe(kr->sub);
    kr->sub = NULL;
    set_serving(kr, false);
    while (!gni_list_empty(&kr->served)) {
        kad_server_stream *ss = GNI_CONTAINER_OF(kr->served.next, kad_server_stream, link);
        gni_list_del(&ss->link);
        kr->nserved--;
        gni_kad_serve_abort(ss->sv);
        gn_free(ss);
    }
    while (!gni_list_empty(&kr->checks)) {
        kad_call *c = GNI_CONTAINER_OF(kr->checks.next, kad_call, link);
        gni_list_del(&c->link);
        gni_kad_rpc_cancel(c->rpc);
        gn_free(c);
    }
    /* pending queries answer GN_ECANCELED on a later turn, detached from
     * the router (which may be freed before that) */
    while (!gni_list_empty(&kr->queries)) {
        kad_query *q = GNI_CONTAINER_OF(kr->queries.next, kad_query, link);
        gni_list_del(&q->link);
        kr->nqueries--;
        cancel_calls(q);
        q->kr = NULL;
        q->answered = true;
        q->status = GN_ECANCELED;
        gn_timer_stop(&q->timer);
        if (gn_timer_start(&q->timer, 0, query_deliver_due, q) < 0) {
            query_deliver(q);
        }
    }
}

/* Answers @q from the table when it knows the peer; true when it did (then
 * @q may be gone). */
static bool find_peer_local(kad_query *q)
{
    const gni_kad_entry *e = gni_kad_table_find(q->kr->table, &q->peer);
    if (e && e->naddrs > 0) {
        found_add(q, &q->peer);
        if (q->nfound && q->found[0].naddrs) {
            query_answer(q, 0);
            return true;
        }
    }
    return false;
}

static int kad_find_peer(gn_router *r, const gn_peer_id *peer, gn_router_peer_cb cb, void *arg,
                         gn_op **op)
{
    kad_router *kr = r->state;
    kad_query *q;
    int rc = query_new(kr, Q_FIND_PEER, gn_slice_of(peer->bytes, peer->len), &q);
    if (rc < 0) {
        return rc;
    }
    q->peer = *peer;
    q->peer_cb = cb;
    q->arg = arg;
    q->max_found = 1;
    if (!(q->found = gn_calloc(1, sizeof *q->found))) {
        query_free(q);
        return GN_ENOMEM;
    }
    *op = &q->op;
    if (!find_peer_local(q)) {
        query_start(q);
    }
    return 0;
}

static int kad_put_value(gn_router *r, gn_slice key, gn_slice value, gn_router_done_cb cb,
                         void *arg, gn_op **op)
{
    kad_router *kr = r->state;
    if (!kr->running) {
        return GN_ESTATE;
    }
    kad_query *q;
    int rc = query_new(kr, Q_PUT, key, &q); /* the key and query checks first */
    if (rc < 0) {
        return rc;
    }
    rc = gni_kad_records_put(kr->records, key.base, key.len, value.base, value.len, kr_now(kr),
                             true);
    if (rc < 0) {
        query_free(q);
        return rc == GN_ETOOBIG ? GN_EINVAL : rc;
    }
    if (value.len && !(q->value = gn_malloc(value.len))) {
        query_free(q);
        return GN_ENOMEM;
    }
    if (value.len) {
        memcpy(q->value, value.base, value.len);
    }
    q->value_len = value.len;
    q->done_cb = cb;
    q->arg = arg;
    query_start(q);
    if (op) {
        *op = &q->op;
    }
    return 0;
}

static int kad_get_value(gn_router *r, gn_slice key, gn_router_value_cb cb, void *arg,
                         gn_op **op)
{
    kad_router *kr = r->state;
    kad_query *q;
    int rc = query_new(kr, Q_GET, key, &q);
    if (rc < 0) {
        return rc;
    }
    q->value_cb = cb;
    q->arg = arg;
    q->values = gn_calloc(kr->cfg.quorum + 1, sizeof *q->values);
    q->value_lens = gn_calloc(kr->cfg.quorum + 1, sizeof *q->value_lens);
    if (!q->values || !q->value_lens) {
        query_free(q);
        return GN_ENOMEM;
    }
    gn_slice v;
    if (gni_kad_records_get(kr->records, key.base, key.len, kr_now(kr), &v, NULL) == 0) {
        uint8_t *c = gn_malloc(v.len ? v.len : 1);
        if (c) {
            if (v.len) {
                memcpy(c, v.base, v.len);
            }
            q->values[0] = c;
            q->value_lens[0] = v.len;
            q->nvalues = 1;
        }
    }
    query_start(q);
    *op = &q->op;
    return 0;
}

static int kad_provide(gn_router *r, gn_slice key, gn_router_done_cb cb, void *arg, gn_op **op)
{
    kad_router *kr = r->state;
    if (!kr->running) {
        return GN_ESTATE;
    }
    const gn_multiaddr *la[GNI_KAD_MAX_ADDRS];
    size_t n = gn_host_listen_addrs(kr->h, la, GNI_KAD_MAX_ADDRS);
    gn_slice addrs[GNI_KAD_MAX_ADDRS];
    for (size_t i = 0; i < n; i++) {
        addrs[i] = gn_multiaddr_bytes(la[i]);
    }
    gn_time now = kr_now(kr);
    kad_query *q;
    int rc = query_new(kr, Q_PROVIDE, key, &q); /* the key and query checks first */
    if (rc < 0) {
        return rc;
    }
    rc = gni_kad_providers_local_add(kr->providers, key.base, key.len, now);
    if (rc >= 0) {
        rc = gni_kad_providers_add(kr->providers, key.base, key.len, &kr->self, addrs, n, now);
    }
    if (rc < 0) {
        query_free(q);
        return rc == GN_ETOOBIG ? GN_EINVAL : rc;
    }
    q->done_cb = cb;
    q->arg = arg;
    query_start(q);
    if (op) {
        *op = &q->op;
    }
    return 0;
}

static int kad_find_providers(gn_router *r, gn_slice key, size_t max, gn_router_peers_cb cb,
                              void *arg, gn_op **op)
{
    kad_router *kr = r->state;
    kad_query *q;
    max = GNI_MIN(max, (size_t)GNI_KAD_K_MAX);
    int rc = query_new(kr, Q_FIND_PROV, key, &q);
    if (rc < 0) {
        return rc;
    }
    q->peers_cb = cb;
    q->arg = arg;
    q->max_found = max;
    if (!(q->found = gn_calloc(max, sizeof *q->found))) {
        query_free(q);
        return GN_ENOMEM;
    }
    const gni_kad_provider *prov[GNI_KAD_DEFAULT_MAX_PROVIDERS];
    size_t n = gni_kad_providers_get(kr->providers, key.base, key.len, kr_now(kr), prov,
                                     GNI_KAD_DEFAULT_MAX_PROVIDERS);
    for (size_t i = 0; i < n && q->nfound < max; i++) {
        kad_found *f = &q->found[q->nfound++];
        f->id = prov[i]->id;
        if (gn_peer_id_equal(&f->id, &kr->self)) {
            const gn_multiaddr *la[GNI_KAD_MAX_ADDRS];
            size_t k = gn_host_listen_addrs(kr->h, la, GNI_KAD_MAX_ADDRS);
            for (size_t j = 0; j < k; j++) {
                if (gn_multiaddr_dup(la[j], &f->addrs[f->naddrs]) == 0) {
                    f->naddrs++;
                }
            }
            continue;
        }
        for (size_t j = 0; j < prov[i]->naddrs && f->naddrs < GNI_KAD_MAX_ADDRS; j++) {
            if (gn_multiaddr_from_bytes(prov[i]->addrs[j].base, prov[i]->addrs[j].len,
                                        &f->addrs[f->naddrs]) == 0) {
                f->naddrs++;
            }
        }
    }
    *op = &q->op;
    if (q->nfound >= max) {
        query_answer(q, 0);
    } else {
        query_start(q);
    }
    return 0;
}

static int kad_closest(gn_router *r, gn_slice key, gn_router_peers_cb cb, void *arg,
                       gn_op **op)
{
    kad_router *kr = r->state;
    kad_query *q;
    int rc = query_new(kr, Q_CLOSEST, key, &q);
    if (rc < 0) {
        return rc;
    }
    q->peers_cb = cb;
    q->arg = arg;
    query_start(q);
    if (op) {
        *op = &q->op;
    }
    return 0;
}

/* An application's validator (gn_router_validator) behind the store's
 * function shapes. */
static int ext_validate(void *arg, const uint8_t *key, size_t klen, const uint8_t *value,
                        size_t vlen)
{
    const kad_ext_validator *e = arg;
    return e->v.validate(e->v.arg, gn_slice_of(key, klen), gn_slice_of(value, vlen));
}

static int ext_select(void *arg, const uint8_t *key, size_t klen, const uint8_t *const *values,
                      const size_t *lens, size_t n)
{
    const kad_ext_validator *e = arg;
    gn_slice vals[256] = {{0}};
    n = GNI_MIN(n, GNI_ARRAY_LEN(vals));
    for (size_t i = 0; i < n; i++) {
        vals[i] = gn_slice_of(values[i], lens[i]);
    }
    size_t best = e->v.select(e->v.arg, gn_slice_of(key, klen), vals, n);
    return best < n ? (int)best : GN_ECALLBACK;
}

static int kad_stats(gn_router *r, gn_router_stats *out)
{
    kad_router *kr = r->state;
    *out = kr->st;
    out->table_size = kr->table ? gni_kad_table_count(kr->table) : 0;
    out->records = kr->records ? gni_kad_records_count(kr->records) : 0;
    out->providers = kr->providers ? gni_kad_providers_count(kr->providers) : 0;
    return 0;
}

static int kad_set_validator(gn_router *r, const gn_router_validator *v)
{
    kad_router *kr = r->state;
    if (strlen(v->ns) >= GNI_KAD_NS_NAME_MAX + 1) {
        return GN_EINVAL;
    }
    kad_ext_validator *e = NULL;
    for (size_t i = 0; i < kr->next && !e; i++) {
        if (strcmp(kr->ext[i]->ns, v->ns) == 0) {
            e = kr->ext[i];
        }
    }
    bool fresh = e == NULL;
    if (fresh && kr->next == GNI_KAD_NS_MAX) {
        return GN_ELIMIT;
    }
    if (fresh && !(e = gn_calloc(1, sizeof *e))) {
        return GN_ENOMEM;
    }
    kad_ext_validator old = *e;
    e->v = *v;
    strcpy(e->ns, v->ns);
    e->v.ns = e->ns;
    int rc = gni_kad_validators_register(kr->validators, e->ns, ext_validate,
                                         v->select ? ext_select : NULL, e);
    if (rc < 0) {
        if (fresh) {
            gn_free(e);
        } else {
            *e = old;
            e->v.ns = e->ns;
        }
        return rc;
    }
    if (fresh) {
        kr->ext[kr->next++] = e;
    }
    return 0;
}

static const gn_router_ops kad_ops = {
    .abi = GN_ROUTER_ABI,
    .name = "kad",
    .state_size = sizeof(kad_router),
    .init = kad_init,
    .fini = kad_fini,
    .start = kad_start,
    .stop = kad_stop,
    .find_peer = kad_find_peer,
    .put_value = kad_put_value,
    .get_value = kad_get_value,
    .provide = kad_provide,
    .find_providers = kad_find_providers,
    .closest_peers = kad_closest,
    .set_validator = kad_set_validator,
    .stats = kad_stats,
};

int gn_router_kad_register(gn_registry *reg);
int gn_router_kad_register(gn_registry *reg)
{
    return gn_registry_add(reg, GN_LAYER_ROUTER, (const gn_layer_ops *)&kad_ops);
}
