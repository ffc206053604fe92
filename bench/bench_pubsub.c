/*
 * bench_pubsub: gossipsub at scale (issue 18, "Scale"). N golemnet nodes
 * in one process on one virtual-clock loop over the memory transport
 * (bench/sim.h: plaintext security, yamux), each with the pubsub component
 * (/meshsub/1.1.0, default router parameters: D = 6, heartbeat 1 s, flood
 * publishing on) and a multicast channel on one topic
 * (gn_node_dial_group "/pubsub/bench"). Every node dials --degree distinct
 * random others; after --warmup-s virtual seconds (subscriptions spread,
 * heartbeats graft the mesh) --messages messages are published, one every
 * --interval-ms virtual ms, each from a random node, and the loop runs
 * until every other node got every message or --drain-s virtual seconds
 * pass after the last publish.
 *
 * Prints one JSON object on stdout (progress on stderr):
 *  - delivery_ratio: distinct (node, message) deliveries / messages x (N - 1);
 *  - duplicates_per_delivery: the routers' duplicate counts (a message
 *    received again after it was seen: gn_multicast_metrics.duplicate) summed
 *    over the nodes, divided by the deliveries; app_duplicates: deliveries of
 *    a message the application already had (must be 0);
 *  - latency_ms p50/p90/p99/max: first delivery minus publish, on the loop's
 *    (virtual) clock; a turn advances it 1 ms (--tick-us), so latencies are
 *    counted in turns, i.e. hops of deferred calls, not CPU time;
 *  - hwm_kib (VmHWM, the peak), rss_kib, wall_s, cpu_s (getrusage, the
 *    whole run: set-up, dials, warm-up and publishing), and the same for the
 *    publishing phase alone;
 *  - mesh size min/mean/max over the nodes, rejected and dropped counts.
 *
 * Usage: bench_pubsub [--nodes N (1000)] [--degree K (8)] [--messages M (1000)]
 *                     [--size BYTES (64, at least 12)] [--interval-ms I (10)]
 *                     [--seed S (1)] [--warmup-s W (5)] [--drain-s D (30)]
 *                     [--evq N (64)] [--wave N (500)] [--max-virtual-s S (120)]
 *                     [--option pubsub.KEY=VALUE (repeatable, up to 8)]
 * Exit status 0 when every message reached every node exactly once at the
 * application, 1 otherwise. The test suite runs it small (suite 'bench',
 * bench_pubsub_smoke). See docs/performance.md, "Pubsub at scale".
 */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define TOPIC_ADDR GN_GROUP_ADDR_PREFIX "bench"
#define MAX_OPTS 8

typedef struct bench {
    size_t n;
    size_t msgs;
    size_t published;    /* messages published so far */
    gn_time *pub_time;   /* [msgs] loop time of the publish */
    uint32_t *pub_node;  /* [msgs] */
    uint8_t *seen;       /* [n * msgs / 8] bitmap: node got message */
    uint32_t *lat_us;    /* [msgs * (n - 1)] first-delivery latencies */
    size_t n_lat;
    uint64_t delivered;  /* distinct deliveries */
    uint64_t app_dups;   /* a message the node already had */
    uint64_t own;        /* a node got its own message back */
    uint64_t foreign;    /* messages that are not the bench's */
    gn_multicast **mc;   /* [n] */
} bench;

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_pubsub: %s: %s\n", what, rc ? gn_err_name(rc) : "failed");
    exit(1);
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void on_event(sim *s, sim_node *sn, const gn_node_event *ev, void *arg)
{
    bench *b = arg;
    if (ev->type != GN_NODE_EV_MESSAGE || !ev->message ||
        strcmp(ev->addr, TOPIC_ADDR) != 0) {
        return;
    }
    gn_slice sl = gn_rcbuf_slice(ev->message);
    const uint8_t *d = sl.base;
    if (sl.len < 4 || get_u32(d) >= b->published) {
        b->foreign++;
        return;
    }
    uint32_t k = get_u32(d);
    if (b->pub_node[k] == sn->idx) {
        b->own++;
        return;
    }
    size_t bit = sn->idx * b->msgs + k;
    if (b->seen[bit / 8] & (1u << (bit % 8))) {
        b->app_dups++;
        return;
    }
    b->seen[bit / 8] |= (uint8_t)(1u << (bit % 8));
    b->delivered++;
    gn_time lat = gn_loop_now(s->loop) - b->pub_time[k];
    uint64_t us = (uint64_t)lat / 1000;
    b->lat_us[b->n_lat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static bool all_delivered(sim *s, void *arg)
{
    (void)s;
    bench *b = arg;
    return b->delivered >= (uint64_t)b->msgs * (b->n - 1);
}

typedef struct until_arg {
    gn_time until;
} until_arg;

static bool time_reached(sim *s, void *arg)
{
    return gn_loop_now(s->loop) >= ((until_arg *)arg)->until;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_ms(const uint32_t *v, size_t n, double p)
{
    if (n == 0) {
        return -1.0;
    }
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return (double)v[i] / 1000.0;
}

int main(int argc, char **argv)
{
    sim_config cfg;
    sim_config_default(&cfg);
    cfg.nodes = 1000;
    cfg.event_queue_capacity = 64;
    size_t msgs = 1000, size = 64, wave = 500;
    double interval_ms = 10, warmup_s = 5, drain_s = 30, max_virtual_s = 120, tick_us = 1000;
    const char *opts[MAX_OPTS];
    size_t n_opts = 0;
    for (int i = 1; i < argc; i += 2) { /* every option takes a value */
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "bench_pubsub: %s needs a value\n", a);
            return 2;
        }
        if (strcmp(a, "--nodes") == 0) {
            cfg.nodes = strtoul(v, NULL, 10);
        } else if (strcmp(a, "--degree") == 0) {
            cfg.degree = (unsigned)strtoul(v, NULL, 10);
        } else if (strcmp(a, "--seed") == 0) {
            cfg.seed = (uint32_t)strtoul(v, NULL, 10);
        } else if (strcmp(a, "--messages") == 0) {
            msgs = strtoul(v, NULL, 10);
        } else if (strcmp(a, "--size") == 0) {
            size = strtoul(v, NULL, 10);
        } else if (strcmp(a, "--interval-ms") == 0) {
            interval_ms = strtod(v, NULL);
        } else if (strcmp(a, "--warmup-s") == 0) {
            warmup_s = strtod(v, NULL);
        } else if (strcmp(a, "--drain-s") == 0) {
            drain_s = strtod(v, NULL);
        } else if (strcmp(a, "--tick-us") == 0) {
            tick_us = strtod(v, NULL);
        } else if (strcmp(a, "--evq") == 0) {
            cfg.event_queue_capacity = strtoul(v, NULL, 10);
        } else if (strcmp(a, "--wave") == 0) {
            wave = strtoul(v, NULL, 10);
        } else if (strcmp(a, "--max-virtual-s") == 0) {
            max_virtual_s = strtod(v, NULL);
        } else if (strcmp(a, "--option") == 0 && n_opts < MAX_OPTS) {
            opts[n_opts++] = v;
        } else {
            fprintf(stderr, "bench_pubsub: unknown option %s\n", a);
            return 2;
        }
    }
    if (cfg.nodes < 2 || cfg.degree >= cfg.nodes || msgs == 0 || msgs > UINT32_MAX ||
        size < 12 || size > 65536 || interval_ms < 0 || tick_us < 1 || max_virtual_s <= 0) {
        fprintf(stderr, "bench_pubsub: need --nodes >= 2, --degree < nodes, --messages >= 1, "
                        "12 <= --size <= 65536, --interval-ms >= 0, --tick-us >= 1\n");
        return 2;
    }
    if (wave == 0 || wave > cfg.nodes) {
        wave = cfg.nodes;
    }
    cfg.tick = (gn_time)(tick_us * 1000.0);
    cfg.protocol_components = "/meshsub/1.1.0";
    cfg.options = n_opts ? opts : NULL;
    cfg.n_options = n_opts;
    raise_nofile();

    bench b;
    memset(&b, 0, sizeof b);
    b.n = cfg.nodes;
    b.msgs = msgs;
    b.pub_time = calloc(msgs, sizeof *b.pub_time);
    b.pub_node = calloc(msgs, sizeof *b.pub_node);
    b.seen = calloc((b.n * msgs + 7) / 8, 1);
    b.lat_us = calloc(msgs * (b.n - 1), sizeof *b.lat_us);
    b.mc = calloc(b.n, sizeof *b.mc);
    if (!b.pub_time || !b.pub_node || !b.seen || !b.lat_us || !b.mc) {
        die("allocating the bench's tables", GN_ENOMEM);
    }

    gn_time t0 = gn_now();
    sim s;
    int rc = sim_init(&s, &cfg);
    if (rc < 0) {
        die("sim_init", rc);
    }
    s.on_event = on_event;
    s.on_event_arg = &b;
    fprintf(stderr, "bench_pubsub: creating %zu nodes\n", cfg.nodes);
    if ((rc = sim_create_nodes(&s)) < 0) {
        die("sim_create_nodes", rc);
    }
    if ((rc = sim_start(&s, (gn_time)(max_virtual_s * 1e9))) < 0) {
        die("sim_start", rc);
    }
    for (size_t i = 0; i < s.n; i++) {
        if ((rc = gn_node_dial_group(s.nodes[i].n, TOPIC_ADDR, &b.mc[i])) < 0) {
            die("gn_node_dial_group", rc);
        }
    }
    fprintf(stderr, "bench_pubsub: dialling (%.1f s)\n", (double)(gn_now() - t0) / 1e9);
    bool ok = true;
    for (size_t first = 0; first < s.n && ok; first += wave) {
        if ((rc = sim_dial_random_range(&s, first, wave, cfg.degree)) < 0) {
            die("sim_dial_random_range", rc);
        }
        ok = sim_run_until(&s, sim_dials_settled, NULL, (gn_time)(max_virtual_s * 1e9));
    }
    if (!ok) {
        fprintf(stderr, "bench_pubsub: dials did not settle\n");
    }
    fprintf(stderr, "bench_pubsub: warming up (%.1f s)\n", (double)(gn_now() - t0) / 1e9);
    until_arg ua = {gn_loop_now(s.loop) + (gn_time)(warmup_s * 1e9)};
    sim_run_until(&s, time_reached, &ua, (gn_time)(warmup_s * 1e9) + GN_S);

    /* mesh sizes before publishing */
    uint64_t mesh_min = UINT64_MAX, mesh_max = 0, mesh_sum = 0;
    for (size_t i = 0; i < s.n; i++) {
        int nm = gn_multicast_mesh_peers(b.mc[i], NULL, 0);
        uint64_t m = nm > 0 ? (uint64_t)nm : 0;
        mesh_min = m < mesh_min ? m : mesh_min;
        mesh_max = m > mesh_max ? m : mesh_max;
        mesh_sum += m;
    }

    fprintf(stderr, "bench_pubsub: publishing (%.1f s)\n", (double)(gn_now() - t0) / 1e9);
    gn_time w_pub = gn_now();
    double c_pub = cpu_now();
    uint64_t turns0 = s.turns;
    gn_time v_pub = gn_loop_now(s.loop);
    uint8_t *payload = calloc(1, size);
    if (!payload) {
        die("allocating the payload", GN_ENOMEM);
    }
    uint64_t eagain = 0;
    gn_time interval = (gn_time)(interval_ms * 1e6);
    for (size_t k = 0; k < msgs; k++) {
        size_t p = (size_t)sim_rand(&s, s.n);
        gn_time now = gn_loop_now(s.loop);
        payload[0] = (uint8_t)(k >> 24);
        payload[1] = (uint8_t)(k >> 16);
        payload[2] = (uint8_t)(k >> 8);
        payload[3] = (uint8_t)k;
        for (int j = 0; j < 8; j++) {
            payload[4 + j] = (uint8_t)((uint64_t)now >> (56 - 8 * j));
        }
        b.pub_time[k] = now;
        b.pub_node[k] = (uint32_t)p;
        b.published = k + 1;
        while ((rc = gn_multicast_broadcast(b.mc[p], payload, size)) == GN_EAGAIN &&
               eagain < 1000000) {
            eagain++;
            sim_turn(&s);
        }
        if (rc < 0) {
            die("gn_multicast_broadcast", rc);
        }
        until_arg next = {now + interval};
        do {
            sim_turn(&s);
        } while (!time_reached(&s, &next));
    }
    free(payload);
    bool complete = sim_run_until(&s, all_delivered, &b, (gn_time)(drain_s * 1e9));
    gn_time v_end = gn_loop_now(s.loop);
    double pub_wall = (double)(gn_now() - w_pub) / 1e9;
    double pub_cpu = cpu_now() - c_pub;
    uint64_t pub_turns = s.turns - turns0;
    /* some more time for late duplicates (IHAVE/IWANT answers in flight) */
    until_arg tail = {gn_loop_now(s.loop) + 2 * GN_S};
    sim_run_until(&s, time_reached, &tail, 3 * GN_S);
    fprintf(stderr, "bench_pubsub: %s (%.1f s)\n", complete ? "all delivered" : "NOT all delivered",
            (double)(gn_now() - t0) / 1e9);

    gn_multicast_metrics tot;
    memset(&tot, 0, sizeof tot);
    for (size_t i = 0; i < s.n; i++) {
        gn_multicast_metrics m;
        if (gn_multicast_metrics_get(b.mc[i], &m) == 0) {
            tot.published += m.published;
            tot.delivered += m.delivered;
            tot.duplicate += m.duplicate;
            tot.rejected += m.rejected;
            tot.dropped += m.dropped;
        }
    }
    qsort(b.lat_us, b.n_lat, sizeof *b.lat_us, cmp_u32);
    uint64_t expected = (uint64_t)msgs * (b.n - 1);
    double cpu_s = cpu_now();
    printf("{\n  \"bench\": \"pubsub\", \"nodes\": %zu, \"degree\": %u, \"seed\": %u, "
           "\"messages\": %zu, \"size\": %zu, \"interval_ms\": %.3f, \"tick_us\": %.0f,\n",
           cfg.nodes, cfg.degree, cfg.seed, msgs, size, interval_ms, tick_us);
    printf("  \"options\": [");
    for (size_t i = 0; i < n_opts; i++) {
        printf("%s\"%s\"", i ? ", " : "", opts[i]);
    }
    printf("], \"dials\": %llu, \"dials_failed\": %llu, \"dials_settled\": %s,\n",
           (unsigned long long)s.dials_started, (unsigned long long)s.dials_failed,
           ok ? "true" : "false");
    printf("  \"mesh_min\": %llu, \"mesh_mean\": %.2f, \"mesh_max\": %llu,\n",
           (unsigned long long)mesh_min, (double)mesh_sum / (double)s.n,
           (unsigned long long)mesh_max);
    printf("  \"expected_deliveries\": %llu, \"deliveries\": %llu, \"delivery_ratio\": %.6f, "
           "\"complete\": %s,\n",
           (unsigned long long)expected, (unsigned long long)b.delivered,
           (double)b.delivered / (double)expected, complete ? "true" : "false");
    printf("  \"router_published\": %llu, \"router_delivered\": %llu, \"router_duplicates\": %llu, "
           "\"duplicates_per_delivery\": %.3f, \"rejected\": %llu, \"dropped\": %llu, "
           "\"app_duplicates\": %llu, \"own_echoes\": %llu, \"foreign\": %llu, "
           "\"publish_eagain\": %llu,\n",
           (unsigned long long)tot.published, (unsigned long long)tot.delivered,
           (unsigned long long)tot.duplicate,
           tot.delivered ? (double)tot.duplicate / (double)tot.delivered : 0.0,
           (unsigned long long)tot.rejected, (unsigned long long)tot.dropped,
           (unsigned long long)b.app_dups, (unsigned long long)b.own,
           (unsigned long long)b.foreign, (unsigned long long)eagain);
    printf("  \"latency_ms\": {\"p50\": %.1f, \"p90\": %.1f, \"p99\": %.1f, \"max\": %.1f},\n",
           pct_ms(b.lat_us, b.n_lat, 0.50), pct_ms(b.lat_us, b.n_lat, 0.90),
           pct_ms(b.lat_us, b.n_lat, 0.99), pct_ms(b.lat_us, b.n_lat, 1.0));
    printf("  \"publish_phase\": {\"virtual_s\": %.3f, \"turns\": %llu, \"wall_s\": %.3f, "
           "\"cpu_s\": %.3f},\n",
           (double)(v_end - v_pub) / 1e9, (unsigned long long)pub_turns, pub_wall, pub_cpu);
    printf("  \"wall_s\": %.3f, \"cpu_s\": %.3f, \"rss_kib\": %ld, \"hwm_kib\": %ld\n}\n",
           (double)(gn_now() - t0) / 1e9, cpu_s, sim_rss_kib(), sim_hwm_kib());
    fflush(stdout);
    for (size_t i = 0; i < s.n; i++) {
        gn_multicast_free(b.mc[i]);
    }
    sim_fini(&s);
    free(b.pub_time);
    free(b.pub_node);
    free(b.seen);
    free(b.lat_us);
    free(b.mc);
    bool pass = complete && ok && b.app_dups == 0 && b.own == 0 && b.foreign == 0;
    return pass ? 0 : 1;
}
