/*
 * sim: many golemnet nodes in one process, on one virtual-clock loop, over
 * the memory transport (bench/bench_sim.c and test/unit/node/sim_test.c).
 *
 * The harness owns one gn_loop with a virtual clock and N nodes living on
 * it (gn_node_config.loop). Node i listens on /memory/<i + 1> and its
 * identity is gn_identity_from_int_seed(seed + i), so a run is a function
 * of its configuration: random choices come from the harness's seeded RNG
 * (sim_rand), never from the clock.
 *
 * Security is plaintext (/plaintext/2.0.0, an explicit-only component):
 * the simulation measures routing and footprint, not cryptography; nothing
 * leaves the process.
 *
 * Time: a "turn" runs the loop once without blocking (every deferred call
 * queued so far, which is how the memory transport moves bytes), drains
 * every node's events, then advances the virtual clock by config.tick so
 * timers (timeouts, keepalives) progress. sim_run_until() repeats turns
 * until a predicate holds or a virtual-time bound passes: every run is
 * bounded.
 *
 * Extending (Kademlia later): sim_node.ext is the caller's per-node
 * pointer; sim.on_event sees every event before the harness counts it; a
 * predicate over the nodes plus sim_run_until() waits for any condition.
 *
 * Single-threaded: every function runs on the thread that called
 * sim_init() (it is the loop thread).
 */
#ifndef GOLEMNET_BENCH_SIM_H
#define GOLEMNET_BENCH_SIM_H

#include "golemnet/golemnet.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sim sim;

typedef struct sim_config {
    size_t nodes;                  /* N, at least 2 */
    unsigned degree;               /* peers each node dials (sim_dial_random) */
    uint32_t seed;                 /* identities seed + i; the RNG's seed */
    const char *security;          /* default "plaintext" */
    const char *muxers;            /* default "yamux" */
    uint32_t protocols;            /* GN_NODE_PROTO_*; default identify | ping */
    /*
     * Per-node footprint knobs (see docs/performance.md, "Simulation").
     * 0 keeps the library default.
     */
    size_t event_queue_capacity;   /* default here 16 (the library's: 4096) */
    size_t command_queue_capacity; /* unused with a shared loop; kept for the node */
    gn_time tick;                  /* virtual time per turn; default 1 ms */
    /* Hosted components and options (NULL / 0: none), e.g. routers "kad"
     * with options {"kad.mode=server"}; the same for every node. */
    const char *routers;
    const char *const *options;
    size_t n_options;
    gn_time idle_timeout;          /* gn_node_config.idle_timeout; 0: never */
    /* gn_node_config.protocol_components (explicit-only protocols such as
     * "/meshsub/1.1.0"); NULL: none */
    const char *protocol_components;
} sim_config;

/** Fills @cfg with the harness defaults (N = 100, degree 8, seed 1). */
void sim_config_default(sim_config *cfg);

typedef struct sim_node {
    sim *s;
    size_t idx;
    gn_node *n;
    gn_identity *id;
    gn_peer_id pid;
    char addr[192];           /* /memory/<idx+1>/p2p/<pid> */
    bool listening;
    bool closed;
    uint32_t dials_started;
    uint32_t dials_ok;
    uint32_t dials_failed;
    uint32_t dials_wrong_peer; /* succeeded, but to another peer than dialed */
    uint32_t channels_open;    /* CHANNEL_OPENED minus CHANNEL_CLOSED events */
    uint32_t channels_opened;  /* CHANNEL_OPENED events */
    uint32_t identified;       /* successful IDENTIFY events */
    bool gone;                 /* closed by the caller (churn): sim_fini only frees it */
    void *ext;                 /* the caller's (a router's per-node state) */
} sim_node;

struct sim {
    sim_config cfg;
    gn_loop *loop;
    gn_registry *reg;
    sim_node *nodes;
    size_t n;                 /* nodes created */
    uint64_t rng;             /* splitmix64 state */
    uint64_t turns;
    /* totals over all nodes */
    uint64_t listening;
    uint64_t listen_failed;
    uint64_t dials_started;
    uint64_t dials_done;
    uint64_t dials_failed;
    uint64_t events;
    int first_error;          /* first failed dial or listen status */
    /* optional: sees every event first (loop thread) */
    void (*on_event)(sim *s, sim_node *sn, const gn_node_event *ev, void *arg);
    void *on_event_arg;
};

/** Creates the loop (virtual clock) and the registry. Errors: as gn_loop_new(). */
int sim_init(sim *s, const sim_config *cfg);

/** Creates the N nodes (not started). Errors: as gn_node_new(), gn_identity_from_int_seed(). */
int sim_create_nodes(sim *s);

/**
 * Starts every node and runs until all listen or @vbound virtual ns pass.
 * Errors: GN_ETIMEDOUT (not all listening), a listen failure's status.
 */
int sim_start(sim *s, gn_time vbound);

/** Uniform in [0, bound), bound > 0, from the seeded RNG. */
uint64_t sim_rand(sim *s, uint64_t bound);

/** A random node index other than @exclude (SIZE_MAX: none excluded). */
size_t sim_pick(sim *s, size_t exclude);

/** Node @from dials node @to (by /memory/ address with /p2p/). */
int sim_dial(sim *s, size_t from, size_t to);

/**
 * Every node dials @degree distinct random other nodes (degree < N).
 * Returns 0 or the first immediate dial error.
 */
int sim_dial_random(sim *s, unsigned degree);

/** As sim_dial_random() for nodes @first .. @first + @count - 1 only (dialling in waves). */
int sim_dial_random_range(sim *s, size_t first, size_t count, unsigned degree);

/** One turn: run the loop once (no blocking), drain events, advance the clock. */
void sim_turn(sim *s);

/**
 * Runs turns until @pred(s, @arg) holds (checked before each turn) or the
 * virtual clock moved @vbound ns. Returns whether @pred held.
 */
bool sim_run_until(sim *s, bool (*pred)(sim *s, void *arg), void *arg, gn_time vbound);

/** Predicate: every dial started has completed. */
bool sim_dials_settled(sim *s, void *arg);

/**
 * Closes node @i (churn) and runs until it closed (bounded by 60 virtual
 * s); it stays in s->nodes, marked gone. Returns whether it closed.
 */
bool sim_close_node(sim *s, size_t i);

/** The process's VmRSS and VmHWM in KiB (-1 when unknown). */
long sim_rss_kib(void);
long sim_hwm_kib(void);

/** Closes every node, runs until they closed (bounded), frees them and the loop. */
void sim_fini(sim *s);

#endif /* GOLEMNET_BENCH_SIM_H */
