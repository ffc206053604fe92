/* kad_sim: a Kademlia network in one process (see kad_sim.h). */
#include "kad_sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

/* Heap bytes in use (glibc), -1 when unknown. */
static long long heap_bytes(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 mi = mallinfo2();
    return (long long)(mi.uordblks + mi.hblkhd);
#else
    return -1;
#endif
}

/* Virtual time bounds (each query is bounded by kad.query_timeout_ms). */
#define KS_QUERY_TIMEOUT_MS 30000
#define KS_SETTLE (5 * GN_S)

typedef enum ks_kind { KS_SELF = 0, KS_FIND, KS_PUT, KS_GET } ks_kind;

typedef struct ks {
    sim s;
    const kad_sim_config *cfg;
    bool *busy;        /* a node runs at most one query */
    size_t inflight;
    /* the phase being measured */
    double *hops;
    size_t nhops, hops_cap;
    double msgs_sum;
    size_t runs, ok;
} ks;

typedef struct ks_q {
    ks *k;
    ks_kind kind;
    size_t src, target, rec;
} ks_q;

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

void kad_sim_config_default(kad_sim_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->nodes = 300;
    cfg->seed = 1;
    cfg->boot_degree = 3;
    cfg->wave = 250;
    cfg->lookups = 1000;
    cfg->records = 100;
    cfg->gets = 1000;
    cfg->churn = 0.2;
    cfg->concurrency = 50;
    cfg->idle_timeout = 500 * GN_MS;
    cfg->disjoint_paths = 1;
}

static void rec_key(size_t i, char *out, size_t len)
{
    snprintf(out, len, "/sim/record-%zu", i);
}

static void rec_value(size_t i, char *out, size_t len)
{
    snprintf(out, len, "value-of-record-%zu", i);
}

static int sim_validate(void *arg, gn_slice key, gn_slice value)
{
    (void)arg, (void)key, (void)value;
    return 0;
}

static void validator_set(void *arg, const gn_node_dht_result *res)
{
    int *failures = arg;
    *failures += res->status < 0;
}

static void phase_reset(ks *k)
{
    k->nhops = 0;
    k->msgs_sum = 0;
    k->runs = k->ok = 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void phase_take(ks *k, kad_sim_phase *p, double wall0, gn_time virt0)
{
    p->runs = k->runs;
    p->ok = k->ok;
    p->wall_s = wall_now() - wall0;
    p->virtual_s = (double)(gn_loop_now(k->s.loop) - virt0) / 1e9;
    if (k->nhops > 0) {
        qsort(k->hops, k->nhops, sizeof *k->hops, cmp_double);
        p->hops_median = k->hops[k->nhops / 2];
        p->hops_p95 = k->hops[(k->nhops * 95) / 100 < k->nhops ? (k->nhops * 95) / 100
                                                               : k->nhops - 1];
        p->hops_max = k->hops[k->nhops - 1];
        p->msgs_mean = k->msgs_sum / (double)k->nhops;
    }
}

static void on_dht(void *arg, const gn_node_dht_result *res)
{
    ks_q *q = arg;
    ks *k = q->k;
    sim_node *sn = &k->s.nodes[q->src];
    k->inflight--;
    k->busy[q->src] = false;
    k->runs++;
    bool ok = false;
    switch (q->kind) {
    case KS_SELF:
        ok = res->status == 0;
        break;
    case KS_FIND:
        ok = res->status == 0 && res->npeers > 0 &&
             gn_peer_id_equal(&res->peers[0].id, &k->s.nodes[q->target].pid);
        if (!ok && getenv("KS_DEBUG")) {
            size_t at = SIZE_MAX;
            for (size_t i = 0; i < res->npeers; i++) {
                if (gn_peer_id_equal(&res->peers[i].id, &k->s.nodes[q->target].pid)) {
                    at = i;
                }
            }
            fprintf(stderr, "kad_sim: find %zu -> %zu: %s, %zu peers, target at %zd\n", q->src,
                    q->target, gn_err_name(res->status), res->npeers, (ssize_t)at);
        }
        break;
    case KS_PUT:
        ok = res->status == 0;
        break;
    case KS_GET: {
        char v[64];
        rec_value(q->rec, v, sizeof v);
        ok = res->status == 0 && res->value.len == strlen(v) &&
             memcmp(res->value.base, v, res->value.len) == 0;
        break;
    }
    }
    k->ok += ok;
    gn_router_stats st;
    if (q->kind != KS_PUT && gn_node_dht_stats(sn->n, &st) == 0) {
        if (k->nhops < k->hops_cap) {
            k->hops[k->nhops++] = st.last_hops;
        }
        k->msgs_sum += st.last_requests;
    }
    free(q);
}

/* A random live node that runs no query (SIZE_MAX after 1000 tries). */
static size_t pick_idle(ks *k, size_t exclude)
{
    for (int t = 0; t < 1000; t++) {
        size_t i = sim_pick(&k->s, exclude);
        if (!k->s.nodes[i].gone && !k->busy[i]) {
            return i;
        }
    }
    return SIZE_MAX;
}

static size_t pick_live(ks *k, size_t exclude)
{
    for (int t = 0; t < 1000; t++) {
        size_t i = sim_pick(&k->s, exclude);
        if (!k->s.nodes[i].gone) {
            return i;
        }
    }
    return exclude == 0 ? 1 : 0;
}

static int issue(ks *k, ks_kind kind, size_t src, size_t target, size_t rec)
{
    ks_q *q = calloc(1, sizeof *q);
    if (!q) {
        return GN_ENOMEM;
    }
    *q = (ks_q){k, kind, src, target, rec};
    gn_node *n = k->s.nodes[src].n;
    const gn_peer_id *tp = &k->s.nodes[target].pid;
    char key[64], val[64];
    rec_key(rec, key, sizeof key);
    rec_value(rec, val, sizeof val);
    int rc;
    switch (kind) {
    case KS_SELF:
    case KS_FIND:
        rc = gn_node_dht_closest_peers(n, tp->bytes, tp->len, on_dht, q);
        break;
    case KS_PUT:
        rc = gn_node_dht_put(n, (const uint8_t *)key, strlen(key), (const uint8_t *)val,
                             strlen(val), on_dht, q);
        break;
    case KS_GET:
    default:
        rc = gn_node_dht_get(n, (const uint8_t *)key, strlen(key), on_dht, q);
        break;
    }
    if (rc < 0) {
        free(q);
        return rc;
    }
    k->busy[src] = true;
    k->inflight++;
    return 0;
}

/*
 * Runs @total queries of @kind, at most cfg.concurrency at once: sources
 * (and targets, records) picked at random among live nodes, or, for
 * KS_SELF, the nodes @first .. @first + @total - 1 in order.
 */
static int run_queries(ks *k, ks_kind kind, size_t total, size_t first)
{
    size_t issued = 0;
    size_t conc = k->cfg->concurrency ? k->cfg->concurrency : 1;
    gn_time bound = (gn_time)(total / conc + 2) * (KS_QUERY_TIMEOUT_MS + 10000) * GN_MS;
    gn_time end = gn_loop_now(k->s.loop) + bound;
    while (issued < total || k->inflight > 0) {
        while (issued < total && k->inflight < conc) {
            size_t src, target = 0, rec = 0;
            if (kind == KS_SELF) {
                src = first + issued;
                target = src;
                if (k->busy[src] || k->s.nodes[src].gone) {
                    break;
                }
            } else {
                src = pick_idle(k, SIZE_MAX);
                if (src == SIZE_MAX) {
                    break;
                }
                if (kind == KS_FIND) {
                    target = pick_live(k, src);
                } else if (kind == KS_PUT) {
                    rec = issued;
                } else {
                    rec = (size_t)sim_rand(&k->s, k->cfg->records);
                }
            }
            int rc = issue(k, kind, src, target, rec);
            if (rc < 0) {
                return rc;
            }
            issued++;
        }
        if (gn_loop_now(k->s.loop) >= end) {
            fprintf(stderr, "kad_sim: %zu queries still running at the phase's bound\n",
                    k->inflight);
            return GN_ETIMEDOUT;
        }
        sim_turn(&k->s);
    }
    return 0;
}

static bool settled_quiet(sim *s, void *arg)
{
    (void)arg;
    return sim_dials_settled(s, NULL);
}

static int join(ks *k, kad_sim_result *out)
{
    sim *s = &k->s;
    size_t n = s->n, wave = k->cfg->wave ? k->cfg->wave : n;
    for (size_t first = 0; first < n; first += wave) {
        size_t count = first + wave <= n ? wave : n - first;
        for (size_t i = first; i < first + count; i++) {
            /* peers that joined before: the earlier waves (or, in the first
             * wave, the nodes before this one) */
            size_t pool = first > 0 ? first : i;
            unsigned deg = k->cfg->boot_degree;
            for (unsigned d = 0; d < deg && d < pool; d++) {
                size_t j = (size_t)sim_rand(s, pool);
                int rc = sim_dial(s, i, j);
                if (rc < 0) {
                    return rc;
                }
            }
        }
        if (!sim_run_until(s, settled_quiet, NULL, 60 * GN_S)) {
            return GN_ETIMEDOUT;
        }
        /* identify both ways, so the tables know the new neighbours */
        gn_time t_end = gn_loop_now(s->loop) + KS_SETTLE / 5;
        while (gn_loop_now(s->loop) < t_end) {
            sim_turn(s);
        }
        phase_reset(k);
        int rc = run_queries(k, KS_SELF, count, first);
        if (rc < 0) {
            return rc;
        }
        out->joins_failed += k->runs - k->ok;
        if (k->cfg->progress) {
            fprintf(stderr, "kad_sim: %zu of %zu nodes joined (virtual %.1f s)\n",
                    first + count, n, (double)gn_loop_now(s->loop) / 1e9);
        }
    }
    /* a second self-lookup for everyone: early joiners met few peers */
    phase_reset(k);
    int rc = run_queries(k, KS_SELF, n, 0);
    if (rc < 0) {
        return rc;
    }
    return 0;
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

static void tables(ks *k, kad_sim_result *out)
{
    size_t n = k->s.n, m = 0;
    size_t *sz = calloc(n, sizeof *sz);
    if (!sz) {
        return;
    }
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        gn_router_stats st;
        if (!k->s.nodes[i].gone && gn_node_dht_stats(k->s.nodes[i].n, &st) == 0) {
            sz[m++] = st.table_size;
            sum += (double)st.table_size;
        }
    }
    if (m > 0) {
        qsort(sz, m, sizeof *sz, cmp_size);
        out->table_min = sz[0];
        out->table_median = sz[m / 2];
        out->table_max = sz[m - 1];
        out->table_mean = sum / (double)m;
    }
    free(sz);
}

static int measure(ks *k, ks_kind kind, size_t total, kad_sim_phase *p, const char *name)
{
    double w0 = wall_now();
    gn_time v0 = gn_loop_now(k->s.loop);
    phase_reset(k);
    int rc = run_queries(k, kind, total, 0);
    phase_take(k, p, w0, v0);

    if (k->cfg->progress) {
        size_t ch = 0;
        for (size_t i = 0; i < k->s.n; i++) {
            ch += k->s.nodes[i].gone ? 0 : k->s.nodes[i].channels_open;
        }
        fprintf(stderr,
                "kad_sim: %s: %zu of %zu ok, median hops %.0f, %.1f messages, %.1f s; "
                "%zu channel ends open, RSS %ld KiB, heap %lld KiB\n",
                name, p->ok, p->runs, p->hops_median, p->msgs_mean, p->wall_s, ch,
                sim_rss_kib(), heap_bytes() / 1024);
    }
    return rc;
}

int kad_sim_run(const kad_sim_config *cfg, kad_sim_result *out)
{
    memset(out, 0, sizeof *out);
    double w0 = wall_now(), c0 = cpu_now();
    ks k;
    memset(&k, 0, sizeof k);
    k.cfg = cfg;
    static char paths_opt[48];
    snprintf(paths_opt, sizeof paths_opt, "kad.disjoint_paths=%u",
             cfg->disjoint_paths ? cfg->disjoint_paths : 1);
    static char qt_opt[48];
    snprintf(qt_opt, sizeof qt_opt, "kad.query_timeout_ms=%u", KS_QUERY_TIMEOUT_MS);
    const char *opts[] = {"kad.mode=server", "kad.request_timeout_ms=5000", qt_opt, paths_opt,
                          /* no bucket refresh or republish inside the run */
                          "kad.refresh_ms=86400000"};
    sim_config sc;
    sim_config_default(&sc);
    sc.nodes = cfg->nodes;
    sc.degree = 0;
    sc.seed = cfg->seed;
    sc.routers = "kad";
    sc.options = opts;
    sc.n_options = sizeof opts / sizeof opts[0];
    sc.idle_timeout = cfg->idle_timeout;
    int rc = sim_init(&k.s, &sc);
    size_t hcap = cfg->nodes * 2 + cfg->lookups + cfg->gets + 16;
    k.busy = calloc(cfg->nodes, sizeof *k.busy);
    k.hops = calloc(hcap, sizeof *k.hops);
    k.hops_cap = hcap;
    if (rc == 0 && (!k.busy || !k.hops)) {
        rc = GN_ENOMEM;
    }
    if (rc == 0) {
        rc = sim_create_nodes(&k.s);
    }
    /* the records' namespace, before the start: no record is refused */
    static const gn_router_validator v = {"sim", sim_validate, NULL, NULL};
    int vfail = 0;
    for (size_t i = 0; rc == 0 && i < k.s.n; i++) {
        rc = gn_node_dht_set_validator(k.s.nodes[i].n, &v, validator_set, &vfail);
    }
    if (rc == 0) {
        rc = sim_start(&k.s, 60 * GN_S);
    }
    if (rc == 0 && vfail) {
        rc = GN_EINTERNAL;
    }
    out->nodes = cfg->nodes;
    /* 1. join */
    double jw = wall_now();
    gn_time jv = rc == 0 ? gn_loop_now(k.s.loop) : 0;
    if (rc == 0) {
        rc = join(&k, out);
    }
    out->join_wall_s = wall_now() - jw;
    out->join_virtual_s = rc == 0 ? (double)(gn_loop_now(k.s.loop) - jv) / 1e9 : 0;
    if (rc == 0) {
        tables(&k, out);
        if (cfg->progress) {
            fprintf(stderr, "kad_sim: joined in %.1f s (virtual %.1f s); tables %zu..%zu\n",
                    out->join_wall_s, out->join_virtual_s, out->table_min, out->table_max);
        }
        /* 2. FIND_NODE */
        rc = measure(&k, KS_FIND, cfg->lookups, &out->find, "find");
    }
    /* 3. records */
    if (rc == 0) {
        kad_sim_phase put;
        memset(&put, 0, sizeof put);
        rc = measure(&k, KS_PUT, cfg->records, &put, "put");
        out->puts_ok = put.ok;
    }
    if (rc == 0) {
        rc = measure(&k, KS_GET, cfg->gets, &out->get, "get");
    }
    /* 4. churn */
    if (rc == 0 && cfg->churn > 0) {
        size_t gone = (size_t)(cfg->churn * (double)k.s.n);
        for (size_t c = 0; c < gone; c++) {
            size_t i = pick_live(&k, SIZE_MAX);
            if (!sim_close_node(&k.s, i)) {
                rc = GN_ETIMEDOUT;
                break;
            }
        }
        if (rc == 0) {
            rc = measure(&k, KS_FIND, cfg->lookups, &out->churn_find, "find after churn");
        }
        if (rc == 0) {
            rc = measure(&k, KS_GET, cfg->gets, &out->churn_get, "get after churn");
        }
    }
    out->alive = 0;
    for (size_t i = 0; i < k.s.n; i++) {
        out->alive += !k.s.nodes[i].gone;
    }
    out->rss_kib = sim_rss_kib();
    out->hwm_kib = sim_hwm_kib();
    sim_fini(&k.s);
    free(k.busy);
    free(k.hops);
    out->total_wall_s = wall_now() - w0;
    out->cpu_s = cpu_now() - c0;
    return rc;
}
