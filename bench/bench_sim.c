/*
 * bench_sim: N golemnet nodes in one process on one virtual-clock loop,
 * over the memory transport, with plaintext security and yamux (see
 * bench/sim.h). Prints one JSON object on stdout; progress on stderr.
 *
 * Phases, each measured (wall time; VmRSS from /proc/self/status; heap
 * bytes in use from mallinfo2() where glibc has it):
 *  1. create: N identities and gn_node_new() (not started);
 *  2. start: every node starts and listens on /memory/<i + 1>;
 *  3. dial: every node dials --degree distinct random others (seeded
 *     RNG), --wave nodes at a time (default 500); the loop runs
 *     until every dial of the wave completed (bounded by --max-virtual-s of
 *     virtual time), then 2 more virtual seconds so identify exchanges
 *     finish;
 *  4. close: every node closes and is freed (not in the RSS figures).
 * bytes_per_node figures are deltas over the phase before "create"
 * divided by N; VmHWM is the peak.
 *
 * Plaintext security: nothing leaves the process, and the simulation
 * measures routing and footprint, not cryptography.
 *
 * Usage: bench_sim [--nodes N (10000)] [--degree D (8)] [--seed S (1)]
 *                  [--evq N (16): gn_node_config.event_queue_capacity]
 *                  [--muxer yamux|mplex] [--max-virtual-s S (120)]
 *                  [--wave N (500; 0 = all): nodes that start their dials together]
 * Not run by the test suite (test/unit/node/sim_test.c runs the harness
 * at N = 100). See docs/performance.md, "Simulation".
 */
#include "sim.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

typedef struct mem_snap {
    double wall_s;
    long rss_kib;
    long hwm_kib;
    long long heap_bytes; /* -1 when unknown */
} mem_snap;

static void snap(mem_snap *m, gn_time t0)
{
    m->wall_s = (double)(gn_now() - t0) / 1e9;
    m->rss_kib = sim_rss_kib();
    m->hwm_kib = sim_hwm_kib();
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 mi = mallinfo2();
    m->heap_bytes = (long long)(mi.uordblks + mi.hblkhd);
#else
    m->heap_bytes = -1;
#endif
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_sim: %s: %s\n", what, rc ? gn_err_name(rc) : "failed");
    exit(1);
}

static void raise_nofile(void)
{
    /* one eventfd per node (its event queue) */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void print_phase(const char *name, const mem_snap *m, const mem_snap *base, size_t n,
                        bool last)
{
    double per_rss = (double)(m->rss_kib - base->rss_kib) * 1024.0 / (double)n;
    double per_heap = m->heap_bytes >= 0 && base->heap_bytes >= 0
                          ? (double)(m->heap_bytes - base->heap_bytes) / (double)n
                          : -1.0;
    printf("    \"%s\": {\"wall_s\": %.3f, \"rss_kib\": %ld, \"hwm_kib\": %ld, "
           "\"heap_bytes\": %lld, \"rss_bytes_per_node\": %.0f, \"heap_bytes_per_node\": %.0f}%s\n",
           name, m->wall_s, m->rss_kib, m->hwm_kib, m->heap_bytes, per_rss, per_heap,
           last ? "" : ",");
}

typedef struct settle_arg {
    gn_time until;
} settle_arg;

static bool virtual_time_reached(sim *s, void *arg)
{
    return gn_loop_now(s->loop) >= ((settle_arg *)arg)->until;
}

int main(int argc, char **argv)
{
    sim_config cfg;
    sim_config_default(&cfg);
    cfg.nodes = 10000;
    double max_virtual_s = 120.0;
    size_t wave = 500; /* nodes dialling at once; 0: all */
    for (int i = 1; i < argc; i += 2) { /* every option takes a value */
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "bench_sim: %s needs a value\n", a);
            return 2;
        }
        if (strcmp(a, "--nodes") == 0) {
            cfg.nodes = strtoul(v, NULL, 10);
        } else if (strcmp(a, "--degree") == 0) {
            cfg.degree = (unsigned)strtoul(v, NULL, 10);
        } else if (strcmp(a, "--seed") == 0) {
            cfg.seed = (uint32_t)strtoul(v, NULL, 10);
        } else if (strcmp(a, "--evq") == 0) {
            cfg.event_queue_capacity = strtoul(v, NULL, 10);
        } else if (strcmp(a, "--wave") == 0) {
            wave = strtoul(v, NULL, 10);
        } else if (strcmp(a, "--muxer") == 0) {
            cfg.muxers = v;
        } else if (strcmp(a, "--max-virtual-s") == 0) {
            max_virtual_s = strtod(v, NULL);
        } else {
            fprintf(stderr, "bench_sim: unknown option %s\n", a);
            return 2;
        }
    }
    if (cfg.nodes < 2 || cfg.degree >= cfg.nodes || max_virtual_s <= 0) {
        fprintf(stderr, "bench_sim: need --nodes >= 2, --degree < nodes, --max-virtual-s > 0\n");
        return 2;
    }
    if (wave == 0 || wave > cfg.nodes) {
        wave = cfg.nodes;
    }
    raise_nofile();

    gn_time t0 = gn_now();
    mem_snap base, created, started, dialled, settled;
    sim s;
    int rc = sim_init(&s, &cfg);
    if (rc < 0) {
        die("sim_init", rc);
    }
    snap(&base, t0);
    fprintf(stderr, "bench_sim: creating %zu nodes\n", cfg.nodes);
    if ((rc = sim_create_nodes(&s)) < 0) {
        die("sim_create_nodes", rc);
    }
    snap(&created, t0);
    fprintf(stderr, "bench_sim: starting (%.1f s)\n", created.wall_s);
    if ((rc = sim_start(&s, (gn_time)(max_virtual_s * 1e9))) < 0) {
        die("sim_start", rc);
    }
    snap(&started, t0);
    fprintf(stderr, "bench_sim: dialling (%.1f s)\n", started.wall_s);
    gn_time v0 = gn_loop_now(s.loop);
    uint64_t turns0 = s.turns;
    bool ok = true;
    for (size_t first = 0; first < s.n && ok; first += wave) {
        if ((rc = sim_dial_random_range(&s, first, wave, cfg.degree)) < 0) {
            die("sim_dial_random_range", rc);
        }
        ok = sim_run_until(&s, sim_dials_settled, NULL, (gn_time)(max_virtual_s * 1e9));
    }
    gn_time vdial = gn_loop_now(s.loop) - v0;
    uint64_t dial_turns = s.turns - turns0;
    snap(&dialled, t0);
    fprintf(stderr, "bench_sim: dials %s (%.1f s)\n", ok ? "settled" : "NOT settled",
            dialled.wall_s);
    settle_arg sa = {gn_loop_now(s.loop) + 2 * GN_S};
    sim_run_until(&s, virtual_time_reached, &sa, 3 * GN_S);
    snap(&settled, t0);

    uint64_t channels = 0, identified = 0, wrong = 0;
    uint32_t min_ch = UINT32_MAX, max_ch = 0;
    for (size_t i = 0; i < s.n; i++) {
        const sim_node *sn = &s.nodes[i];
        channels += sn->channels_open;
        identified += sn->identified;
        wrong += sn->dials_wrong_peer;
        min_ch = sn->channels_open < min_ch ? sn->channels_open : min_ch;
        max_ch = sn->channels_open > max_ch ? sn->channels_open : max_ch;
    }
    printf("{\n  \"bench\": \"sim\", \"nodes\": %zu, \"degree\": %u, \"seed\": %u, "
           "\"security\": \"%s\", \"muxer\": \"%s\", \"event_queue_capacity\": %zu, \"wave\": %zu,\n",
           cfg.nodes, cfg.degree, cfg.seed, cfg.security, cfg.muxers, cfg.event_queue_capacity, wave);
    printf("  \"dials\": %llu, \"dials_failed\": %llu, \"dials_wrong_peer\": %llu, "
           "\"first_error\": \"%s\", \"dials_settled\": %s,\n",
           (unsigned long long)s.dials_started, (unsigned long long)s.dials_failed,
           (unsigned long long)wrong, s.first_error ? gn_err_name(s.first_error) : "none",
           ok ? "true" : "false");
    printf("  \"channel_ends\": %llu, \"channels\": %llu, \"channels_per_node_min\": %u, "
           "\"channels_per_node_max\": %u, \"identified\": %llu,\n",
           (unsigned long long)channels, (unsigned long long)(channels / 2), min_ch, max_ch,
           (unsigned long long)identified);
    printf("  \"dial_virtual_s\": %.3f, \"dial_turns\": %llu, \"events\": %llu,\n",
           (double)vdial / 1e9, (unsigned long long)dial_turns, (unsigned long long)s.events);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                   (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    printf("  \"wall_s\": %.3f, \"cpu_s\": %.3f, \"rss_kib\": %ld, \"hwm_kib\": %ld, "
           "\"rss_bytes_per_node\": %.0f,\n",
           settled.wall_s, cpu_s, settled.rss_kib, settled.hwm_kib,
           (double)(settled.rss_kib - base.rss_kib) * 1024.0 / (double)cfg.nodes);
    printf("  \"phases\": {\n");
    print_phase("base", &base, &base, cfg.nodes, false);
    print_phase("created", &created, &base, cfg.nodes, false);
    print_phase("started", &started, &base, cfg.nodes, false);
    print_phase("dialled", &dialled, &base, cfg.nodes, false);
    print_phase("settled", &settled, &base, cfg.nodes, true);
    printf("  },\n");
    fflush(stdout);
    gn_time tc = gn_now();
    sim_fini(&s);
    /* closing allocates too (Go Away frames, close events): the peak of the whole run */
    printf("  \"close_wall_s\": %.3f, \"hwm_kib_after_close\": %ld\n}\n",
           (double)(gn_now() - tc) / 1e9, sim_hwm_kib());
    return ok && s.dials_failed == 0 ? 0 : 1;
}
