/*
 * Kademlia iterative lookup (layers/routing/kad/kad_lookup.c): alpha
 * parallelism, ordering, duplicate and self filtering, failures, request
 * and query timeouts, termination, the candidate bound; and a simulation of
 * 500 peers, each with its own routing table (kad_table.c), answering
 * FIND_NODE from that table under a simulated clock, with every peer
 * answering and with 20 % of them silent.
 */
#include "kad_lookup.h"
#include "kad_table.h"

#include "gn_test.h"
#include "golemnet/err.h"
#include "kad_test_util.h"

#include <stdlib.h>

/* @n random peers sorted by distance to @target (brute force, insertion sort). */
static void sorted_peers(kt_rng *r, const gni_kad_key *target, gn_peer_id *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        kt_peer(r, &p[i]);
    }
    for (size_t i = 1; i < n; i++) {
        for (size_t j = i; j > 0; j--) {
            gni_kad_key a, b;
            gni_kad_key_from_peer(&p[j - 1], &a);
            gni_kad_key_from_peer(&p[j], &b);
            if (gni_kad_cmp_distance(target, &b, &a) >= 0) {
                break;
            }
            gn_peer_id tmp = p[j];
            p[j] = p[j - 1];
            p[j - 1] = tmp;
        }
    }
}

static gni_kad_lookup *new_lookup(size_t k, size_t alpha, size_t maxc, const gni_kad_key *target,
                                  const gn_peer_id *self)
{
    gni_kad_lookup_config cfg;
    gni_kad_lookup_config_default(&cfg);
    cfg.k = k;
    cfg.alpha = alpha;
    cfg.max_candidates = maxc;
    cfg.request_timeout = GN_S;
    cfg.query_timeout = 30 * GN_S;
    gni_kad_lookup *l = NULL;
    CHECK_OK(gni_kad_lookup_new(&cfg, target, self, 0, &l));
    return l;
}

GN_TEST(config_checks)
{
    gni_kad_key target;
    memset(&target, 7, sizeof target);
    gni_kad_lookup_config cfg;
    gni_kad_lookup *l = NULL;
    gni_kad_lookup_config_default(&cfg);
    CHECK_EQ(cfg.alpha, 3);
    CHECK_EQ(cfg.k, 20);
    cfg.alpha = 0;
    CHECK_EQ(gni_kad_lookup_new(&cfg, &target, NULL, 0, &l), GN_EINVAL);
    gni_kad_lookup_config_default(&cfg);
    cfg.max_candidates = cfg.k - 1;
    CHECK_EQ(gni_kad_lookup_new(&cfg, &target, NULL, 0, &l), GN_EINVAL);
    CHECK(l == NULL);
    /* no seeds: over at once, nobody answered */
    CHECK_OK(gni_kad_lookup_new(NULL, &target, NULL, 0, &l));
    CHECK(!gni_kad_lookup_done(l));
    CHECK_EQ(gni_kad_lookup_status(l), GN_EAGAIN);
    gn_peer_id p;
    CHECK_EQ(gni_kad_lookup_next(l, 0, &p), 0);
    CHECK(gni_kad_lookup_done(l));
    CHECK_EQ(gni_kad_lookup_status(l), GN_ENOROUTE);
    CHECK_EQ(gni_kad_lookup_seed(l, &p, 1), GN_ESTATE);
    CHECK_EQ(gni_kad_lookup_deadline(l), GN_TIME_INFINITY);
    gni_kad_lookup_free(l);
    gni_kad_lookup_free(NULL);
}

GN_TEST(alpha_order_filtering_and_termination)
{
    kt_rng r = {11};
    gni_kad_key target;
    kt_key(&r, &target);
    gn_peer_id self, p[12], q;
    kt_peer(&r, &self);
    sorted_peers(&r, &target, p, 12);
    gni_kad_lookup *l = new_lookup(4, 2, 50, &target, &self);
    /* seeds out of order, a duplicate and self are filtered */
    gn_peer_id seeds[5] = {p[9], p[7], self, p[9], p[8]};
    CHECK_EQ(gni_kad_lookup_seed(l, seeds, 5), 3);
    /* closest first, at most alpha = 2 in flight */
    CHECK_EQ(gni_kad_lookup_next(l, 0, &q), 1);
    CHECK(gn_peer_id_equal(&q, &p[7]));
    CHECK_EQ(gni_kad_lookup_next(l, 0, &q), 1);
    CHECK(gn_peer_id_equal(&q, &p[8]));
    CHECK_EQ(gni_kad_lookup_next(l, 0, &q), 0);
    CHECK_EQ(gni_kad_lookup_deadline(l), GN_S);
    /* p7 answers with closer peers (plus itself, self and a repeat) */
    gn_peer_id closer[6] = {p[3], p[1], p[7], self, p[3], p[5]};
    CHECK_EQ(gni_kad_lookup_response(l, &p[7], closer, 6, 10), 3);
    CHECK_EQ(gni_kad_lookup_response(l, &p[7], NULL, 0, 10), GN_ENOTFOUND);
    CHECK_EQ(gni_kad_lookup_response(l, &p[0], NULL, 0, 10), GN_ENOTFOUND); /* never heard */
    CHECK_EQ(gni_kad_lookup_next(l, 10, &q), 1);
    CHECK(gn_peer_id_equal(&q, &p[1]));
    CHECK_EQ(gni_kad_lookup_next(l, 10, &q), 0);
    /* p8 fails: p3 next */
    CHECK_EQ(gni_kad_lookup_failure(l, &p[8], 20), 0);
    CHECK_EQ(gni_kad_lookup_failure(l, &p[8], 20), GN_ENOTFOUND);
    CHECK_EQ(gni_kad_lookup_next(l, 20, &q), 1);
    CHECK(gn_peer_id_equal(&q, &p[3]));
    /* p1 answers with p0 and p2 */
    gn_peer_id c2[2] = {p[0], p[2]};
    CHECK_EQ(gni_kad_lookup_response(l, &p[1], c2, 2, 30), 2);
    CHECK_EQ(gni_kad_lookup_next(l, 30, &q), 1);
    CHECK(gn_peer_id_equal(&q, &p[0]));
    CHECK_EQ(gni_kad_lookup_next(l, 30, &q), 0);
    CHECK_EQ(gni_kad_lookup_response(l, &p[3], NULL, 0, 40), 0);
    CHECK_EQ(gni_kad_lookup_next(l, 40, &q), 1);
    CHECK(gn_peer_id_equal(&q, &p[2]));
    CHECK_EQ(gni_kad_lookup_response(l, &p[0], NULL, 0, 50), 0);
    CHECK(!gni_kad_lookup_done(l));
    /* the 4 closest not failed: p0 p1 p2 p3; p2 still in flight; p5 never asked */
    CHECK_EQ(gni_kad_lookup_next(l, 50, &q), 0);
    CHECK_EQ(gni_kad_lookup_response(l, &p[2], NULL, 0, 60), 0);
    CHECK(gni_kad_lookup_done(l));
    CHECK_EQ(gni_kad_lookup_status(l), 0);
    gn_peer_id res[10];
    CHECK_EQ(gni_kad_lookup_results(l, res, 10), 5); /* p0 p1 p2 p3 p7 */
    for (int i = 0; i < 4; i++) {
        CHECK(gn_peer_id_equal(&res[i], &p[i]));
    }
    CHECK(gn_peer_id_equal(&res[4], &p[7]));
    CHECK_EQ(gni_kad_lookup_results(l, res, 2), 2);
    gni_kad_lookup_stats st;
    gni_kad_lookup_stats_get(l, &st);
    CHECK_EQ(st.requests, 6);
    CHECK_EQ(st.responses, 5);
    CHECK_EQ(st.failures, 1);
    CHECK_EQ(st.hops, 3); /* p0: seed p7 -> p1 -> p0 */
    CHECK_EQ(gni_kad_lookup_response(l, &p[5], NULL, 0, 70), GN_ESTATE);
    gni_kad_lookup_free(l);
}

GN_TEST(timeouts_and_late_answers)
{
    kt_rng r = {12};
    gni_kad_key target;
    kt_key(&r, &target);
    gn_peer_id p[4], q;
    sorted_peers(&r, &target, p, 4);
    gni_kad_lookup *l = new_lookup(2, 3, 20, &target, NULL);
    CHECK_EQ(gni_kad_lookup_seed(l, p, 3), 3);
    /* only the k = 2 closest are asked, although alpha is 3 */
    CHECK_EQ(gni_kad_lookup_next(l, 0, &q), 1);
    CHECK_EQ(gni_kad_lookup_next(l, 0, &q), 1);
    CHECK_EQ(gni_kad_lookup_next(l, 0, &q), 0);
    /* both time out at 1 s: p2 moves into the k closest and is asked */
    gni_kad_lookup_tick(l, GN_S - 1);
    CHECK_EQ(gni_kad_lookup_next(l, GN_S - 1, &q), 0);
    gni_kad_lookup_tick(l, GN_S);
    gni_kad_lookup_stats st;
    gni_kad_lookup_stats_get(l, &st);
    CHECK_EQ(st.timeouts, 2);
    CHECK(!gni_kad_lookup_done(l));
    CHECK_EQ(gni_kad_lookup_next(l, GN_S, &q), 1);
    CHECK(gn_peer_id_equal(&q, &p[2]));
    CHECK_EQ(gni_kad_lookup_response(l, &p[2], NULL, 0, GN_S + 1), 0);
    /* everything known answered or failed: over with the one answer */
    CHECK(gni_kad_lookup_done(l));
    CHECK_EQ(gni_kad_lookup_status(l), 0);
    gni_kad_lookup_free(l);

    /* a late answer is still accepted while the lookup runs */
    l = new_lookup(2, 1, 20, &target, NULL);
    CHECK_EQ(gni_kad_lookup_seed(l, p, 2), 2);
    CHECK_EQ(gni_kad_lookup_next(l, 0, &q), 1);
    CHECK(gn_peer_id_equal(&q, &p[0]));
    gni_kad_lookup_tick(l, GN_S);
    CHECK_EQ(gni_kad_lookup_next(l, GN_S, &q), 1);
    CHECK(gn_peer_id_equal(&q, &p[1]));
    gn_peer_id c[1] = {p[3]};
    CHECK_EQ(gni_kad_lookup_response(l, &p[0], c, 1, GN_S + 1), 1);
    CHECK_EQ(gni_kad_lookup_failure(l, &p[0], GN_S + 1), GN_ENOTFOUND);
    CHECK_EQ(gni_kad_lookup_response(l, &p[1], NULL, 0, GN_S + 2), 0);
    CHECK(gni_kad_lookup_done(l)); /* p0 p1 answered: the 2 closest */
    gn_peer_id res[4];
    CHECK_EQ(gni_kad_lookup_results(l, res, 4), 2);
    CHECK(gn_peer_id_equal(&res[0], &p[0]));
    gni_kad_lookup_free(l);

    /* nobody answers: over with GN_ENOROUTE */
    l = new_lookup(2, 3, 20, &target, NULL);
    CHECK_EQ(gni_kad_lookup_seed(l, p, 2), 2);
    while (gni_kad_lookup_next(l, 0, &q) == 1) {
    }
    gni_kad_lookup_tick(l, gni_kad_lookup_deadline(l));
    CHECK(gni_kad_lookup_done(l));
    CHECK_EQ(gni_kad_lookup_status(l), GN_ENOROUTE);
    CHECK_EQ(gni_kad_lookup_results(l, res, 4), 0);
    gni_kad_lookup_free(l);

    /* the query timeout ends a lookup that still waits */
    gni_kad_lookup_config cfg;
    gni_kad_lookup_config_default(&cfg);
    cfg.query_timeout = 5 * GN_S;
    cfg.request_timeout = 10 * GN_S;
    CHECK_OK(gni_kad_lookup_new(&cfg, &target, NULL, GN_S, &l));
    CHECK_EQ(gni_kad_lookup_seed(l, p, 2), 2);
    CHECK_EQ(gni_kad_lookup_next(l, GN_S, &q), 1);
    CHECK_EQ(gni_kad_lookup_deadline(l), 6 * GN_S);
    gni_kad_lookup_tick(l, 6 * GN_S);
    CHECK(gni_kad_lookup_done(l));
    CHECK_EQ(gni_kad_lookup_status(l), GN_ETIMEDOUT);
    CHECK_EQ(gni_kad_lookup_next(l, 6 * GN_S, &q), 0);
    gni_kad_lookup_free(l);
}

GN_TEST(candidate_bound_keeps_the_closest)
{
    kt_rng r = {13};
    gni_kad_key target;
    kt_key(&r, &target);
    enum { N = 300 };
    gn_peer_id *p = calloc(N, sizeof *p);
    CHECK(p != NULL);
    sorted_peers(&r, &target, p, N);
    gn_peer_id q;
    gni_kad_lookup *l = new_lookup(3, 1, 10, &target, NULL);
    CHECK_EQ(gni_kad_lookup_seed(l, &p[N - 1], 1), 1);
    CHECK_EQ(gni_kad_lookup_next(l, 0, &q), 1);
    /* an attacker floods 298 far-to-near peers (the closest, p0, is not among them) */
    gn_peer_id *flood = calloc(N, sizeof *flood);
    CHECK(flood != NULL);
    for (size_t i = 0; i < N - 2; i++) {
        flood[i] = p[N - 2 - i];
    }
    int added = gni_kad_lookup_response(l, &p[N - 1], flood, N - 2, 1);
    CHECK(added >= 9);
    gni_kad_lookup_stats st;
    gni_kad_lookup_stats_get(l, &st);
    CHECK(st.dropped >= N - 2 - 9);
    /* the 9 kept heard-of candidates are the 9 closest flooded: p1..p9 */
    for (int i = 1; i <= 3; i++) {
        CHECK_EQ(gni_kad_lookup_next(l, 2, &q), 1);
        CHECK(gn_peer_id_equal(&q, &p[i]));
        CHECK_EQ(gni_kad_lookup_response(l, &p[i], i == 3 ? &p[0] : NULL, i == 3, 3), i == 3);
    }
    /* p0 displaced a far heard-of candidate; p0..p3 asked: p0 is next and last */
    CHECK_EQ(gni_kad_lookup_next(l, 4, &q), 1);
    CHECK(gn_peer_id_equal(&q, &p[0]));
    CHECK_EQ(gni_kad_lookup_response(l, &p[0], NULL, 0, 5), 0);
    CHECK(gni_kad_lookup_done(l));
    gn_peer_id res[3];
    CHECK_EQ(gni_kad_lookup_results(l, res, 3), 3);
    for (int i = 0; i < 3; i++) {
        CHECK(gn_peer_id_equal(&res[i], &p[i]));
    }
    gni_kad_lookup_stats_get(l, &st);
    CHECK(st.requests <= 10);
    free(flood);
    free(p);
    gni_kad_lookup_free(l);
}

/* ---- simulation: 500 peers, each with its own routing table */

enum { SIM_N = 500, SIM_K = 20, SIM_LOOKUPS = 100, SIM_MAX_EVENTS = 64 };

typedef struct sim_peer {
    gn_peer_id id;
    gni_kad_key key;
    gni_kad_table *t;
    bool dead;
} sim_peer;

typedef struct sim_event {
    size_t peer;
    gn_time at;
} sim_event;

static sim_peer *sim;

static void sim_build(kt_rng *r)
{
    sim = calloc(SIM_N, sizeof *sim);
    CHECK(sim != NULL);
    for (size_t i = 0; i < SIM_N; i++) {
        kt_peer(r, &sim[i].id);
        gni_kad_key_from_peer(&sim[i].id, &sim[i].key);
    }
    for (size_t i = 0; i < SIM_N; i++) {
        CHECK_OK(gni_kad_table_new(NULL, &sim[i].id, 0, &sim[i].t));
        size_t start = kt_below(r, SIM_N);
        for (size_t m = 0; m < SIM_N; m++) {
            size_t j = (start + m) % SIM_N;
            if (j != i) {
                CHECK_OK(gni_kad_table_add(sim[i].t, &sim[j].id, NULL, 0, 0, 0, NULL));
            }
        }
    }
}

static void sim_free(void)
{
    if (!sim) {
        return;
    }
    for (size_t i = 0; i < SIM_N; i++) {
        gni_kad_table_free(sim[i].t);
    }
    free(sim);
    sim = NULL;
}

static size_t sim_index(const gn_peer_id *id)
{
    for (size_t i = 0; i < SIM_N; i++) {
        if (gn_peer_id_equal(&sim[i].id, id)) {
            return i;
        }
    }
    return SIZE_MAX;
}

/* The k closest live peers to @target other than @origin (brute force). */
static size_t sim_truth(const gni_kad_key *target, size_t origin, size_t *out)
{
    size_t cnt = 0;
    for (size_t i = 0; i < SIM_N; i++) {
        if (i == origin || sim[i].dead) {
            continue;
        }
        size_t pos = cnt < SIM_K ? cnt : SIM_K;
        while (pos > 0 && gni_kad_cmp_distance(target, &sim[i].key, &sim[out[pos - 1]].key) < 0) {
            if (pos < SIM_K) {
                out[pos] = out[pos - 1];
            }
            pos--;
        }
        if (pos < SIM_K) {
            out[pos] = i;
            if (cnt < SIM_K) {
                cnt++;
            }
        }
    }
    return cnt;
}

typedef struct sim_result {
    int status;
    size_t overlap; /* results among the true k closest live peers */
    bool closest_found;
    gni_kad_lookup_stats st;
} sim_result;

static void sim_lookup(kt_rng *r, size_t origin, const gni_kad_key *target, sim_result *res)
{
    gni_kad_lookup_config cfg;
    gni_kad_lookup_config_default(&cfg);
    cfg.k = SIM_K;
    cfg.request_timeout = 2 * GN_S;
    gni_kad_lookup *l = NULL;
    gn_time now = 1000 * GN_S;
    CHECK_OK(gni_kad_lookup_new(&cfg, target, &sim[origin].id, now, &l));
    const gni_kad_entry *near[SIM_K];
    gn_peer_id seeds[SIM_K], closer[SIM_K], q;
    size_t ns = gni_kad_table_closest(sim[origin].t, target, SIM_K, near);
    for (size_t i = 0; i < ns; i++) {
        seeds[i] = near[i]->id;
    }
    CHECK_OK(gni_kad_lookup_seed(l, seeds, ns));
    sim_event ev[SIM_MAX_EVENTS];
    size_t nev = 0;
    for (int guard = 0; guard < 10000; guard++) {
        while (gni_kad_lookup_next(l, now, &q) == 1) {
            size_t j = sim_index(&q);
            CHECK(j < SIM_N && j != origin);
            if (!sim[j].dead) {
                CHECK(nev < SIM_MAX_EVENTS);
                ev[nev].peer = j;
                ev[nev].at = now + (gn_time)(5 + kt_below(r, 95)) * GN_MS;
                nev++;
            }
        }
        if (gni_kad_lookup_done(l)) {
            break;
        }
        size_t first = SIZE_MAX;
        for (size_t e = 0; e < nev; e++) {
            if (first == SIZE_MAX || ev[e].at < ev[first].at) {
                first = e;
            }
        }
        gn_time deadline = gni_kad_lookup_deadline(l);
        if (first != SIZE_MAX && ev[first].at <= deadline) {
            sim_event e = ev[first];
            ev[first] = ev[--nev];
            now = e.at;
            size_t nc = gni_kad_table_closest(sim[e.peer].t, target, SIM_K, near);
            for (size_t i = 0; i < nc; i++) {
                closer[i] = near[i]->id;
            }
            CHECK_OK(gni_kad_lookup_response(l, &sim[e.peer].id, closer, nc, now));
        } else {
            CHECK(deadline != GN_TIME_INFINITY);
            now = deadline;
            gni_kad_lookup_tick(l, now);
        }
    }
    CHECK(gni_kad_lookup_done(l));
    res->status = gni_kad_lookup_status(l);
    gni_kad_lookup_stats_get(l, &res->st);
    gn_peer_id got[SIM_K];
    size_t truth[SIM_K];
    size_t ng = gni_kad_lookup_results(l, got, SIM_K);
    size_t nt = sim_truth(target, origin, truth);
    res->overlap = 0;
    for (size_t i = 0; i < ng; i++) {
        size_t j = sim_index(&got[i]);
        CHECK(j < SIM_N && !sim[j].dead); /* only peers that answered */
        if (i > 0) { /* closest first */
            CHECK(gni_kad_cmp_distance(target, &sim[sim_index(&got[i - 1])].key, &sim[j].key) < 0);
        }
        for (size_t t = 0; t < nt; t++) {
            res->overlap += truth[t] == j;
        }
    }
    res->closest_found = ng > 0 && nt > 0 && sim_index(&got[0]) == truth[0];
    gni_kad_lookup_free(l);
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

static void sim_run(kt_rng *r, double dead_share)
{
    size_t reqs[SIM_LOOKUPS], hops[SIM_LOOKUPS], overlap = 0, closest = 0, timeouts = 0;
    size_t ndead = (size_t)(dead_share * SIM_N);
    for (size_t i = 0; i < ndead;) {
        size_t j = kt_below(r, SIM_N);
        if (!sim[j].dead) {
            sim[j].dead = true;
            i++;
        }
    }
    for (size_t n = 0; n < SIM_LOOKUPS; n++) {
        size_t origin;
        do {
            origin = kt_below(r, SIM_N);
        } while (sim[origin].dead);
        gni_kad_key target;
        if (n % 4 == 0) {
            target = sim[kt_below(r, SIM_N)].key; /* an existing peer's key */
        } else {
            kt_key(r, &target);
        }
        sim_result res;
        sim_lookup(r, origin, &target, &res);
        CHECK_EQ(res.status, 0);
        closest += res.closest_found;
        overlap += res.overlap;
        timeouts += res.st.timeouts;
        reqs[n] = res.st.requests;
        hops[n] = res.st.hops;
    }
    qsort(reqs, SIM_LOOKUPS, sizeof reqs[0], cmp_size);
    qsort(hops, SIM_LOOKUPS, sizeof hops[0], cmp_size);
    printf("# dead %.0f%%: closest found %zu/%d, top-%d overlap %.2f, median requests %zu "
           "(max %zu), median hops %zu (max %zu), timeouts %zu\n",
           dead_share * 100, closest, SIM_LOOKUPS, SIM_K, (double)overlap / SIM_LOOKUPS,
           reqs[SIM_LOOKUPS / 2], reqs[SIM_LOOKUPS - 1], hops[SIM_LOOKUPS / 2],
           hops[SIM_LOOKUPS - 1], timeouts);
    /* every lookup finds the closest live peer; with every peer answering,
     * (nearly) all k closest; with silent peers still in the tables, remote
     * peers' k-closest lists carry dead entries, so a few live peers ranked
     * near k are never named by anyone */
    CHECK_EQ(closest, SIM_LOOKUPS);
    CHECK(overlap >= (size_t)((dead_share == 0 ? 0.99 : 0.90) * SIM_K * SIM_LOOKUPS));
    CHECK(reqs[SIM_LOOKUPS / 2] >= SIM_K && reqs[SIM_LOOKUPS / 2] <= 3 * SIM_K);
    CHECK(hops[SIM_LOOKUPS / 2] >= 1 && hops[SIM_LOOKUPS / 2] <= 4);
    CHECK(dead_share == 0 ? timeouts == 0 : timeouts > 0);
}

GN_TEST(simulation_500_peers_all_answer)
{
    kt_rng r = {21};
    sim_build(&r);
    sim_run(&r, 0.0);
    sim_free();
}

GN_TEST(simulation_500_peers_20pct_silent)
{
    kt_rng r = {22};
    sim_build(&r);
    sim_run(&r, 0.2);
    sim_free();
}

GN_TEST_MAIN(GN_T(config_checks), GN_T(alpha_order_filtering_and_termination),
             GN_T(timeouts_and_late_answers), GN_T(candidate_bound_keeps_the_closest),
             GN_T(simulation_500_peers_all_answer), GN_T(simulation_500_peers_20pct_silent))
