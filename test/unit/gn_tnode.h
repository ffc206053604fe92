/*
 * gn_tnode.h - in-process nodes for unit tests: one loop driven by the
 * test thread (setup()/finish()), run_until() bounded by a guard timer and
 * a turn count, nodes on TCP loopback started by node_up() and closed and
 * freed by node_down(), and dial_wait() for a dial's outcome.
 *
 * A test may add fields to struct tnode by defining GN_TNODE_EXTRA (member
 * declarations) before the include, and raise the turn bound of
 * run_until() by defining GN_TNODE_MAX_TURNS. Single header; include once
 * per test, after gn_test.h.
 */
#ifndef GN_TNODE_H
#define GN_TNODE_H

#include "golemnet/golemnet.h"

#include "gn_test.h"
#include "gn_test_os.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef GN_TNODE_MAX_TURNS
#define GN_TNODE_MAX_TURNS 1000000
#endif
#ifndef GN_TNODE_EXTRA
#define GN_TNODE_EXTRA
#endif

static gn_loop *loop;

static bool guard_fired;
static void guard(gn_timer *t, void *arg) { (void)t, (void)arg; guard_fired = true; }

/* Runs the loop until pred(arg) or @ms elapsed; returns pred(arg). */
static inline bool run_until(bool (*pred)(void *), void *arg, gn_time ms)
{
    gn_timer g;
    gn_timer_init(loop, &g);
    guard_fired = false;
    gn_timer_start(&g, ms * GN_MS, guard, NULL);
    for (int i = 0; i < GN_TNODE_MAX_TURNS && !guard_fired && !pred(arg); i++) {
        gn_loop_run(loop, GN_RUN_ONCE);
    }
    gn_timer_stop(&g);
    return pred(arg);
}

static inline bool never(void *arg) { (void)arg; return false; }

typedef struct tnode {
    gn_node *n;
    gn_identity *id;
    gn_peer_id pid;
    char pid_str[GN_PEER_ID_MAX_STRLEN];
    char addr[GN_NODE_ADDR_MAX]; /* listening address with /p2p/ (node_up waited for it) */
    int closed;
    GN_TNODE_EXTRA
} tnode;

/* How node_up() configures a node; zero fields keep the defaults. */
typedef struct nopts {
    const gn_registry *registry;
    const char *routers, *discovery, *protocol_components; /* set as given, NULL too */
    const char *nat;                                       /* NULL: the default */
    const char *const *options;
    size_t n_options;
    bool listen;             /* on /ip4/127.0.0.1/tcp/0 */
    bool no_wait;            /* with listen: the test pops the LISTENING event itself */
    uint32_t drop_protocols; /* GN_NODE_PROTO_* bits off */
    const char *transports;  /* NULL: "tcp" */
} nopts;

static inline bool got_listen(void *arg)
{
    tnode *t = arg;
    gn_node_event ev;
    while (!t->addr[0] && gn_node_next_event(t->n, &ev, 0) == 0) {
        if (ev.type == GN_NODE_EV_LISTENING) {
            snprintf(t->addr, sizeof t->addr, "%s", ev.addr);
        }
        gn_rcbuf_rele(ev.message);
    }
    return t->addr[0] != '\0';
}

/* Starts node @t with the identity of @seed; waits for its listen address. */
static inline void node_up(tnode *t, uint32_t seed, const nopts *o)
{
    memset(t, 0, sizeof *t);
    CHECK_EQ(gn_identity_from_int_seed(seed, &t->id), 0);
    gn_identity_peer_id(t->id, &t->pid);
    gn_peer_id_to_string(&t->pid, t->pid_str, sizeof t->pid_str);
    gn_node_config cfg;
    gn_node_config_default(&cfg);
    cfg.identity = t->id;
    cfg.loop = loop;
    cfg.registry = o->registry;
    cfg.transports = o->transports ? o->transports : "tcp";
    cfg.routers = o->routers;
    cfg.discovery = o->discovery;
    if (o->nat) {
        cfg.nat = o->nat;
    }
    cfg.protocol_components = o->protocol_components;
    cfg.options = o->options;
    cfg.n_options = o->n_options;
    cfg.upgrade_timeout = 5 * GN_S;
    cfg.protocols &= ~o->drop_protocols;
    const char *listen = "/ip4/127.0.0.1/tcp/0";
    if (o->listen) {
        cfg.listen = &listen;
        cfg.n_listen = 1;
    }
    CHECK_EQ(gn_node_new(&cfg, &t->n), 0);
    CHECK_EQ(gn_node_start(t->n), 0);
    if (o->listen && !o->no_wait) {
        CHECK(run_until(got_listen, t, 5000));
    }
}

static void on_closed(gn_node *n, void *arg)
{
    (void)n;
    ((tnode *)arg)->closed++;
}

static inline bool closed(void *arg) { return ((tnode *)arg)->closed > 0; }

/* Closes @t (the callback must run once within 10 s), drops its events, frees it. */
static inline void node_down(tnode *t)
{
    if (!t->n) {
        return;
    }
    gn_node_close(t->n, on_closed, t);
    CHECK(run_until(closed, t, 10000));
    CHECK_EQ(t->closed, 1);
    gn_node_event ev;
    while (gn_node_next_event(t->n, &ev, 0) == 0) {
        gn_rcbuf_rele(ev.message);
    }
    gn_node_free(t->n);
    t->n = NULL;
    gn_identity_free(t->id);
    t->id = NULL;
}

typedef struct dial_res {
    int calls, status;
    bool hold;      /* keep the channel in ch */
    gn_channel *ch; /* held when hold and the dial succeeded */
} dial_res;

static void on_dial(void *arg, int status, gn_channel *ch)
{
    dial_res *r = arg;
    r->calls++;
    r->status = status;
    r->ch = status == 0 && r->hold ? gn_channel_hold(ch) : NULL;
}

static inline bool dial_done(void *arg) { return ((dial_res *)arg)->calls > 0; }

/*
 * Dials @addr from @t and waits for the outcome; returns the status (or
 * gn_node_dial's error). With @ch not NULL, *@ch is the channel, held
 * (gn_channel_rele), when the dial succeeded, else NULL.
 */
static inline int dial_wait_ch(tnode *t, const char *addr, gn_channel **ch)
{
    dial_res r = {.hold = ch != NULL};
    if (ch) {
        *ch = NULL;
    }
    int rc = gn_node_dial(t->n, addr, on_dial, &r, NULL);
    if (rc < 0) {
        return rc;
    }
    CHECK(run_until(dial_done, &r, 8000));
    CHECK_EQ(r.calls, 1);
    if (ch) {
        *ch = r.ch;
    }
    return r.status;
}

/* Dials @addr from @t and waits for the outcome; returns the status. */
static inline int dial_wait(tnode *t, const char *addr) { return dial_wait_ch(t, addr, NULL); }

static void log_fn(void *ud, gn_log_level level, const char *comp, const char *msg)
{
    (void)ud, (void)level;
    fprintf(stderr, "[%s] %s\n", comp, msg);
}

/* Makes the loop; GN_TEST_LOG set logs at debug level; SIGPIPE blocked. */
static inline void setup(void)
{
    if (getenv("GN_TEST_LOG")) {
        gn_log_set(log_fn, NULL, GN_LOG_DEBUG);
    }
    gts_block_sigpipe();
    CHECK_EQ(gn_loop_new(NULL, &loop), 0);
}

/* Runs the loop a little (closes complete) and frees it. */
static inline void finish(void)
{
    run_until(never, NULL, 20);
    gn_loop_free(loop);
    loop = NULL;
}

#endif /* GN_TNODE_H */
