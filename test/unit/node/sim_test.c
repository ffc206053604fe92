/*
 * The simulation harness of bench_sim (bench/sim.[ch]) at N = 100, so it
 * cannot rot: 100 nodes on one virtual-clock loop over the memory
 * transport (plaintext, yamux), each dialling 8 random others; every dial
 * succeeds to the peer it named, every node ends with an open channel to
 * each distinct neighbour, identify ran on every channel end, and a run is
 * a function of its seed.
 */
#include "gn_alloc_count.h"
#include "gn_test.h"

#include "../../../bench/sim.h"

#include <malloc.h>

#define N 100
#define DEGREE 8

/* adj[i][j]: i dialled j or j dialled i (replayed from the seeded RNG) */
static bool adj[N][N];

/* Replays sim_dial_random()'s choices on a copy of the RNG state. */
static void expected_neighbours(sim *s, uint64_t rng0)
{
    uint64_t saved = s->rng;
    s->rng = rng0;
    memset(adj, 0, sizeof adj);
    for (size_t i = 0; i < N; i++) {
        size_t picked[DEGREE];
        for (unsigned k = 0; k < DEGREE; k++) {
            size_t j;
            bool dup;
            do {
                j = sim_pick(s, i);
                dup = false;
                for (unsigned m = 0; m < k; m++) {
                    dup = dup || picked[m] == j;
                }
            } while (dup);
            picked[k] = j;
            adj[i][j] = adj[j][i] = true;
        }
    }
    s->rng = saved;
}

static void run(uint32_t seed, uint64_t *events, uint64_t *channels)
{
    sim_config cfg;
    sim_config_default(&cfg);
    cfg.nodes = N;
    cfg.degree = DEGREE;
    cfg.seed = seed;
    sim s;
    CHECK_OK(sim_init(&s, &cfg));
    CHECK_OK(sim_create_nodes(&s));
    CHECK_EQ(s.n, (size_t)N);
    CHECK_OK(sim_start(&s, 10 * GN_S));
    CHECK_EQ(s.listening, (uint64_t)N);
    uint64_t rng0 = s.rng;
    CHECK_OK(sim_dial_random(&s, DEGREE));
    CHECK_EQ(s.dials_started, (uint64_t)N * DEGREE);
    CHECK(sim_run_until(&s, sim_dials_settled, NULL, 20 * GN_S));
    /* identify on every channel end: two more virtual seconds at most */
    gn_time end = gn_loop_now(s.loop) + 2 * GN_S;
    while (gn_loop_now(s.loop) < end) {
        sim_turn(&s);
    }
    CHECK_EQ(s.dials_failed, 0);
    CHECK_EQ(s.first_error, 0);
    expected_neighbours(&s, rng0);
    uint64_t ch = 0;
    for (size_t i = 0; i < N; i++) {
        const sim_node *sn = &s.nodes[i];
        CHECK_EQ(sn->dials_started, DEGREE);
        CHECK_EQ(sn->dials_ok, DEGREE);
        CHECK_EQ(sn->dials_wrong_peer, 0);
        unsigned nb = 0;
        for (size_t j = 0; j < N; j++) {
            nb += adj[i][j];
        }
        /* one channel per distinct neighbour at least (two when both
         * dialled each other at once), no more than one per dial */
        CHECK(sn->channels_open >= nb);
        CHECK(sn->channels_open <= 2 * nb);
        CHECK_EQ(sn->identified, sn->channels_opened);
        /* every neighbour is a connected, identified peer */
        for (size_t j = 0; j < N; j++) {
            if (adj[i][j]) {
                gn_peer_info info;
                CHECK_OK(gn_node_peer_info(sn->n, &s.nodes[j].pid, &info));
                CHECK(info.identified);
            }
        }
        ch += sn->channels_open;
    }
    CHECK_EQ(ch % 2, 0); /* both ends of each channel are counted */
    *events = s.events;
    *channels = ch;
    sim_fini(&s);
}

/* Live bytes through the allocator hooks: gn_alloc_count.h (g_live, cnt_allocator). */

/*
 * The footprint the simulation depends on (docs/performance.md,
 * "Simulation"): a node on a shared loop with a 16-event queue, and an idle
 * channel end (plaintext, yamux, identify done). Before the mux driver
 * dropped idle 32 KiB output chunks, a channel end held about 46 KiB.
 */
GN_TEST(footprint_per_node_and_channel)
{
    gn_set_allocator(&cnt_allocator);
    sim_config cfg;
    sim_config_default(&cfg);
    cfg.nodes = N;
    cfg.degree = DEGREE;
    cfg.event_queue_capacity = 16;
    sim s;
    long long before = g_live;
    CHECK_OK(sim_init(&s, &cfg));
    CHECK_OK(sim_create_nodes(&s));
    CHECK_OK(sim_start(&s, 10 * GN_S));
    long long started = g_live;
    CHECK_OK(sim_dial_random(&s, DEGREE));
    CHECK(sim_run_until(&s, sim_dials_settled, NULL, 20 * GN_S));
    gn_time end = gn_loop_now(s.loop) + 2 * GN_S;
    while (gn_loop_now(s.loop) < end) {
        sim_turn(&s);
    }
    long long settled = g_live;
    uint64_t ends = 0;
    for (size_t i = 0; i < N; i++) {
        ends += s.nodes[i].channels_open;
    }
    CHECK(ends >= (uint64_t)N * DEGREE);
    long long per_node = (started - before) / N;
    long long per_end = (settled - started) / (long long)ends;
    printf("# live bytes: %lld a node (started), %lld a channel end (%llu ends)\n", per_node,
           per_end, (unsigned long long)ends);
    sim_fini(&s);
    gn_set_allocator(NULL);
    CHECK(per_node < 24 * 1024);
    CHECK(per_end < 8 * 1024);
}

GN_TEST(hundred_nodes_dial_and_identify)
{
    uint64_t ev1, ch1, ev2, ch2;
    run(1, &ev1, &ch1);
    /* each channel has 2 ends; at least N * DEGREE / 2 distinct neighbour pairs */
    CHECK(ch1 >= (uint64_t)N * DEGREE);
    /* deterministic: the same seed gives the same run */
    run(1, &ev2, &ch2);
    CHECK_EQ(ev1, ev2);
    CHECK_EQ(ch1, ch2);
}

GN_TEST(pick_never_returns_the_excluded_node)
{
    sim s;
    memset(&s, 0, sizeof s);
    s.n = 3;
    s.rng = 7;
    unsigned seen[3] = {0};
    for (int i = 0; i < 300; i++) {
        size_t j = sim_pick(&s, 1);
        CHECK(j == 0 || j == 2);
        seen[j]++;
    }
    CHECK(seen[0] > 100 && seen[2] > 100);
}

GN_TEST_MAIN(GN_T(footprint_per_node_and_channel), GN_T(hundred_nodes_dial_and_identify),
              GN_T(pick_never_returns_the_excluded_node))
