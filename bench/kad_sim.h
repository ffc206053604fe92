/*
 * kad_sim: a Kademlia network of N golemnet nodes in one process (the sim
 * harness, bench/sim.h: one virtual-clock loop, the memory transport,
 * plaintext security), used by bench/bench_kad.c (N = 10,000) and
 * test/unit/kad/kad_sim_test.c (a few hundred).
 *
 * Phases:
 *  1. join: nodes join in waves; each dials boot_degree random nodes that
 *     joined before it, then looks up its own ID (the spec's bootstrap
 *     self-lookup); when all joined, every node looks up its own ID once
 *     more (early joiners met few peers);
 *  2. FIND_NODE: random lookups (closest_peers of a random live node's ID
 *     from another random live node); a lookup succeeds when the target is
 *     the first result;
 *  3. records: puts of `records` records from random nodes, then random
 *     GET_VALUEs; a get succeeds with the right value;
 *  4. churn: `churn` of the nodes close; the same lookups and gets among
 *     the survivors.
 * Hops and messages come from the router's counters (gn_node_dht_stats:
 * last_hops, last_requests), read in the query's callback; a node runs one
 * query at a time so they belong to that query.
 *
 * Single-threaded, deterministic for a seed (the harness's RNG).
 */
#ifndef GOLEMNET_BENCH_KAD_SIM_H
#define GOLEMNET_BENCH_KAD_SIM_H

#include "sim.h"

typedef struct kad_sim_config {
    size_t nodes;          /* N (default 300) */
    uint32_t seed;         /* default 1 */
    unsigned boot_degree;  /* nodes each joiner dials (default 3) */
    size_t wave;           /* nodes joining together (default 250) */
    size_t lookups;        /* FIND_NODE lookups per phase (default 1000) */
    size_t records;        /* records put (default 100) */
    size_t gets;           /* GET_VALUEs per phase (default 1000) */
    double churn;          /* fraction of nodes closed in phase 4 (default 0.2) */
    size_t concurrency;    /* queries in flight (default 100) */
    gn_time idle_timeout;  /* channels idle this long close (default 10 s) */
    unsigned disjoint_paths; /* kad.disjoint_paths (default 1) */
    bool progress;         /* one line per phase on stderr */
} kad_sim_config;

typedef struct kad_sim_phase {
    size_t runs, ok;
    double hops_median, hops_p95, hops_max, msgs_mean;
    double wall_s, virtual_s;
} kad_sim_phase;

typedef struct kad_sim_result {
    size_t nodes, alive;
    double join_wall_s, join_virtual_s;
    size_t joins_failed;          /* self-lookups that did not succeed */
    size_t table_min, table_median, table_max;
    double table_mean;
    size_t puts_ok;
    kad_sim_phase find, get, churn_find, churn_get;
    long rss_kib, hwm_kib;        /* after phase 4 */
    double total_wall_s, cpu_s;
} kad_sim_result;

void kad_sim_config_default(kad_sim_config *cfg);

/** Runs the whole simulation. Errors: set-up failures (gn_err). */
int kad_sim_run(const kad_sim_config *cfg, kad_sim_result *out);

#endif /* GOLEMNET_BENCH_KAD_SIM_H */
