/*
 * bench_kad: a Kademlia network of N golemnet nodes in one process
 * (bench/kad_sim.h: one virtual-clock loop, the memory transport,
 * plaintext security -- the run measures routing and footprint, not
 * cryptography, and nothing leaves the process). Prints one JSON object:
 * join (bootstrap) time, routing-table sizes, success rate, hops and
 * messages of random FIND_NODE and GET_VALUE lookups, the same after
 * churn, RSS, wall and CPU time.
 *
 * Usage: bench_kad [--nodes N (10000)] [--seed S (1)] [--lookups L (1000)]
 *                  [--records R (100)] [--gets G (1000)] [--churn F (0.2)]
 *                  [--concurrency C (100)] [--boot-degree D (3)] [--wave W (250)]
 *                  [--disjoint-paths P (1)] [--quiet]
 * Not run by the test suite (test/unit/kad/kad_sim_test.c runs the same
 * simulation at a few hundred nodes). Figures: docs/performance.md,
 * "Kademlia simulation".
 */
#include "kad_sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static void log_line(void *ud, gn_log_level level, const char *comp, const char *msg)
{
    (void)ud, (void)level;
    fprintf(stderr, "[%s] %s\n", comp, msg);
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_kad [--nodes N] [--seed S] [--lookups L] [--records R] "
                    "[--gets G] [--churn F] [--concurrency C] [--boot-degree D] [--wave W] "
                    "[--disjoint-paths P] [--quiet]\n");
    exit(2);
}

static void phase_json(const char *name, const kad_sim_phase *p, bool last)
{
    printf("\"%s\":{\"runs\":%zu,\"ok\":%zu,\"success_rate\":%.4f,\"hops_median\":%.0f,"
           "\"hops_p95\":%.0f,\"hops_max\":%.0f,\"messages_mean\":%.2f,\"wall_s\":%.2f,"
           "\"virtual_s\":%.2f}%s",
           name, p->runs, p->ok, p->runs ? (double)p->ok / (double)p->runs : 0.0,
           p->hops_median, p->hops_p95, p->hops_max, p->msgs_mean, p->wall_s, p->virtual_s,
           last ? "" : ",");
}

int main(int argc, char **argv)
{
    kad_sim_config cfg;
    kad_sim_config_default(&cfg);
    cfg.nodes = 10000;
    cfg.progress = true;
    int i = 1;
    while (i < argc) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--quiet")) {
            cfg.progress = false;
            i++;
            continue;
        }
        if (!v) {
            usage();
        }
        i += 2;
        if (!strcmp(a, "--nodes")) {
            cfg.nodes = strtoul(v, NULL, 10);
        } else if (!strcmp(a, "--seed")) {
            cfg.seed = (uint32_t)strtoul(v, NULL, 10);
        } else if (!strcmp(a, "--lookups")) {
            cfg.lookups = strtoul(v, NULL, 10);
        } else if (!strcmp(a, "--records")) {
            cfg.records = strtoul(v, NULL, 10);
        } else if (!strcmp(a, "--gets")) {
            cfg.gets = strtoul(v, NULL, 10);
        } else if (!strcmp(a, "--churn")) {
            cfg.churn = strtod(v, NULL);
        } else if (!strcmp(a, "--concurrency")) {
            cfg.concurrency = strtoul(v, NULL, 10);
        } else if (!strcmp(a, "--boot-degree")) {
            cfg.boot_degree = (unsigned)strtoul(v, NULL, 10);
        } else if (!strcmp(a, "--wave")) {
            cfg.wave = strtoul(v, NULL, 10);
        } else if (!strcmp(a, "--disjoint-paths")) {
            cfg.disjoint_paths = (unsigned)strtoul(v, NULL, 10);
        } else {
            usage();
        }
    }
    if (cfg.nodes < 2 || cfg.records == 0 || cfg.churn < 0 || cfg.churn >= 1) {
        usage();
    }
    /* KS_LOG=1: the library's info log on stderr (which request failed, why) */
    if (getenv("KS_LOG")) {
        gn_log_set(log_line, NULL, GN_LOG_INFO);
    }
    /* one eventfd per node (its event queue) */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    kad_sim_result r;
    int rc = kad_sim_run(&cfg, &r);
    printf("{\"bench\":\"kad_sim\",\"status\":\"%s\",\"nodes\":%zu,\"alive_after_churn\":%zu,"
           "\"security\":\"plaintext\",\"transport\":\"memory\",\"k\":20,\"alpha\":3,"
           "\"disjoint_paths\":%u,"
           "\"join\":{\"wall_s\":%.2f,\"virtual_s\":%.2f,\"self_lookups_failed\":%zu},"
           "\"table\":{\"min\":%zu,\"median\":%zu,\"max\":%zu,\"mean\":%.1f},\"puts_ok\":%zu,",
           rc == 0 ? "ok" : gn_err_name(rc), r.nodes, r.alive, cfg.disjoint_paths, r.join_wall_s,
           r.join_virtual_s, r.joins_failed, r.table_min, r.table_median, r.table_max,
           r.table_mean, r.puts_ok);
    phase_json("find_node", &r.find, false);
    phase_json("get_value", &r.get, false);
    phase_json("find_node_churn", &r.churn_find, false);
    phase_json("get_value_churn", &r.churn_get, false);
    printf("\"rss_kib\":%ld,\"hwm_kib\":%ld,\"hwm_bytes_per_node\":%.0f,\"wall_s\":%.1f,"
           "\"cpu_s\":%.1f}\n",
           r.rss_kib, r.hwm_kib, r.nodes ? (double)r.hwm_kib * 1024.0 / (double)r.nodes : 0.0,
           r.total_wall_s, r.cpu_s);
    return rc == 0 ? 0 : 1;
}
