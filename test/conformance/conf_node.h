/*
 * conf_node.h - what the suites of the hosted kinds (protocol, router,
 * discovery, nat) share: real nodes on one loop that the test thread
 * drives, TCP on 127.0.0.1, and a registry holding the component under
 * test.
 *
 * Every wait is bounded by a guard timer (CN_WAIT, CN_RUN_UNTIL); every
 * node is closed (its close callback must run within 10 s) and freed by
 * the test that made it. A component instance a test creates itself on a
 * node's host (gn_router_new etc.) is stopped before the node closes and
 * freed after the close completed: the close waits for the host
 * operations the instance started, and only then is its state unused.
 */
#ifndef CONF_NODE_H
#define CONF_NODE_H

#include "golemnet/golemnet.h"

#include "conf.h"
#include "gn_test.h"
#include "gn_test_os.h"

#include <pthread.h>
#include <signal.h>

static gn_loop *cn_loop;
static bool cn_guard_fired;
static gn_timer cn_guard;

static void cn_guard_fn(gn_timer *t, void *arg)
{
    (void)t, (void)arg;
    cn_guard_fired = true;
}

static inline void cn_guard_start(gn_time ms)
{
    cn_guard_fired = false;
    gn_timer_init(cn_loop, &cn_guard);
    gn_timer_start(&cn_guard, ms * GN_MS, cn_guard_fn, NULL);
}

/* One loop turn; false once the guard fired (or after a million turns). */
static inline bool cn_turn(int *turns)
{
    if (cn_guard_fired || ++*turns > 1000000)
        return false;
    gn_loop_run(cn_loop, GN_RUN_ONCE);
    return true;
}

/* Runs the loop until @cond holds or @ms passed. */
#define CN_WAIT(cond, ms)                                                                    \
    do {                                                                                     \
        int cn_turns_ = 0;                                                                   \
        cn_guard_start(ms);                                                                  \
        while (!(cond) && cn_turn(&cn_turns_)) {                                             \
        }                                                                                    \
        gn_timer_stop(&cn_guard);                                                            \
    } while (0)

/* Runs the loop until @cond holds; fails the test after @ms. */
#define CN_RUN_UNTIL(cond, ms)                                                               \
    do {                                                                                     \
        CN_WAIT(cond, ms);                                                                   \
        CHECK(cond);                                                                         \
    } while (0)

/* Runs the loop for @ms. */
#define CN_RUN_FOR(ms) CN_WAIT(false, ms)

/* A node of a test and what its event queue said. */
typedef struct cn_node {
    gn_node *n;
    gn_identity *id;
    gn_peer_id pid;
    char pid_str[GN_PEER_ID_MAX_STRLEN];
    char addr[GN_NODE_ADDR_MAX];  /* first listen address, with /p2p/<id> */
    char bare[GN_NODE_ADDR_MAX];  /* the same without /p2p/ */
    int listening;                /* GN_NODE_EV_LISTENING events */
    int start_failed;             /* GN_NODE_EV_START_FAILED events */
    int opened, closed_channels;  /* CHANNEL_OPENED / CHANNEL_CLOSED events */
    int identified;               /* successful GN_NODE_EV_IDENTIFY events */
    int closed;                   /* close callbacks */
} cn_node;

/* How to configure one: NULL hosted lists mean "" (none). */
typedef struct cn_opts {
    const gn_registry *registry;
    const char *routers, *discovery, *nat, *protocols;
    const char *const *options;
    size_t n_options;
    const char *const *listen;
    size_t n_listen;
    bool no_wait; /* do not wait for the listeners */
    uint32_t proto_bits; /* gn_node_config.protocols; 0: the default */
} cn_opts;

/* Pops @t's events into its counters; returns true (for CN_RUN_UNTIL). */
static inline bool cn_poll(cn_node *t)
{
    gn_node_event ev;
    while (t->n && gn_node_next_event(t->n, &ev, 0) == 0) {
        switch (ev.type) {
        case GN_NODE_EV_LISTENING:
            if (t->listening++ == 0) {
                snprintf(t->addr, sizeof t->addr, "%s", ev.addr);
                snprintf(t->bare, sizeof t->bare, "%s", ev.addr);
                char *p2p = strstr(t->bare, "/p2p/");
                if (p2p)
                    *p2p = '\0';
            }
            break;
        case GN_NODE_EV_START_FAILED:
            printf("# start failed: %s: %s\n", ev.protocol, gn_err_name(ev.status));
            t->start_failed++;
            break;
        case GN_NODE_EV_CHANNEL_OPENED:
            t->opened++;
            break;
        case GN_NODE_EV_CHANNEL_CLOSED:
            t->closed_channels++;
            break;
        case GN_NODE_EV_IDENTIFY:
            t->identified += ev.status == 0;
            break;
        default:
            break;
        }
        gn_rcbuf_rele(ev.message);
    }
    return true;
}

/* Creates and starts a node with identity @seed; waits for its listeners. */
static inline void cn_up(cn_node *t, uint32_t seed, const cn_opts *o)
{
    memset(t, 0, sizeof *t);
    CHECK_OK(gn_identity_from_int_seed(seed, &t->id));
    gn_identity_peer_id(t->id, &t->pid);
    gn_peer_id_to_string(&t->pid, t->pid_str, sizeof t->pid_str);
    gn_node_config cfg;
    gn_node_config_default(&cfg);
    cfg.identity = t->id;
    cfg.loop = cn_loop;
    cfg.registry = o->registry;
    cfg.transports = "tcp";
    cfg.routers = o->routers ? o->routers : "";
    cfg.discovery = o->discovery ? o->discovery : "";
    cfg.nat = o->nat ? o->nat : "";
    cfg.protocol_components = o->protocols ? o->protocols : "";
    if (o->proto_bits) {
        cfg.protocols = o->proto_bits;
    }
    cfg.options = o->options;
    cfg.n_options = o->n_options;
    cfg.listen = o->listen;
    cfg.n_listen = o->n_listen;
    cfg.upgrade_timeout = 5 * GN_S;
    CHECK_OK(gn_node_new(&cfg, &t->n));
    CHECK_OK(gn_node_start(t->n));
    if (o->n_listen > 0 && !o->no_wait)
        CN_RUN_UNTIL(cn_poll(t) && (t->listening == (int)o->n_listen || t->start_failed), 5000);
    CHECK_EQ(t->start_failed, 0);
}

/* A node that listens on 127.0.0.1 and runs no hosted component. */
static inline void cn_up_listening(cn_node *t, uint32_t seed, const gn_registry *reg)
{
    static const char *const lo[] = {"/ip4/127.0.0.1/tcp/0"};
    cn_up(t, seed, &(cn_opts){.registry = reg, .listen = lo, .n_listen = 1});
}

static void cn_on_closed(gn_node *n, void *arg)
{
    (void)n;
    ((cn_node *)arg)->closed++;
}

/* Closes @t; its close callback must run exactly once within 10 s. */
static inline void cn_close(cn_node *t)
{
    gn_node_close(t->n, cn_on_closed, t);
    CN_RUN_UNTIL(t->closed > 0, 10000);
    CHECK_EQ(t->closed, 1);
}

/* Frees a closed node. */
static inline void cn_free(cn_node *t)
{
    cn_poll(t);
    gn_node_free(t->n);
    t->n = NULL;
    gn_identity_free(t->id);
    t->id = NULL;
}

static inline void cn_down(cn_node *t)
{
    cn_close(t);
    cn_free(t);
}

typedef struct cn_dial_res {
    int calls, status;
    gn_channel *ch; /* held on success */
} cn_dial_res;

static void cn_on_dial(void *arg, int status, gn_channel *ch)
{
    cn_dial_res *r = arg;
    r->calls++;
    r->status = status;
    if (status == 0)
        r->ch = gn_channel_hold(ch);
}

/* Dials @addr from @t; returns the outcome. *@ch (may be NULL) gets the held channel. */
static inline int cn_dial(cn_node *t, const char *addr, gn_channel **ch)
{
    cn_dial_res r = {0};
    int rc = gn_node_dial(t->n, addr, cn_on_dial, &r, NULL);
    if (rc < 0)
        return rc;
    CHECK_EQ(r.calls, 0); /* never from inside the call */
    CN_RUN_UNTIL(r.calls > 0, 8000);
    CHECK_EQ(r.calls, 1);
    if (ch)
        *ch = r.ch;
    else if (r.ch)
        gn_channel_rele(r.ch);
    return r.status;
}

/* A peer ID nobody uses. */
static inline void cn_unknown_peer(gn_peer_id *out)
{
    gn_identity *id;
    CHECK_OK(gn_identity_from_int_seed(4242, &id));
    gn_identity_peer_id(id, out);
    gn_identity_free(id);
}

/*
 * Splits @text (entries one per line, as the components' test_options
 * callbacks write them) in place into @out (at most @max); returns the count.
 */
static inline size_t cn_split_lines(char *text, const char **out, size_t max)
{
    size_t n = 0;
    for (char *p = text; *p && n < max;) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        if (*p)
            out[n++] = p;
        if (!nl)
            break;
        p = nl + 1;
    }
    return n;
}

/* True when @addrs (@n) has one whose text, without /p2p/, is @want. */
static inline bool cn_has_addr(gn_multiaddr *const *addrs, size_t n, const char *want)
{
    for (size_t i = 0; i < n; i++) {
        char text[GN_NODE_ADDR_MAX];
        if (!addrs[i] || gn_multiaddr_to_string(addrs[i], text, sizeof text) < 0)
            continue;
        char *p2p = strstr(text, "/p2p/");
        if (p2p)
            *p2p = '\0';
        if (strcmp(text, want) == 0)
            return true;
    }
    return false;
}

/*
 * A registry of every built-in component, where @extra (may be NULL), a
 * component of @kind, replaces the built-in of the same name or is added.
 */
static inline gn_registry *cn_registry(gn_layer_kind kind, const gn_layer_ops *extra)
{
    gn_registry *all = NULL, *reg = NULL;
    CHECK_OK(gn_registry_new(&all));
    CHECK_OK(gn_registry_add_builtins(all));
    CHECK_OK(gn_registry_new(&reg));
    for (int k = 0; k < GN_LAYER_KIND_COUNT; k++) {
        for (size_t i = 0; i < gn_registry_count(all, (gn_layer_kind)k); i++) {
            const gn_layer_ops *o = gn_registry_get(all, (gn_layer_kind)k, i);
            if (extra && k == (int)kind && strcmp(o->name, extra->name) == 0)
                continue;
            CHECK_OK(gn_registry_add(reg, (gn_layer_kind)k, o));
        }
    }
    if (extra)
        CHECK_OK(gn_registry_add(reg, kind, extra));
    gn_registry_free(all);
    return reg;
}

static void cn_log(void *ud, gn_log_level level, const char *comp, const char *msg)
{
    (void)ud, (void)level;
    fprintf(stderr, "[%s] %s\n", comp, msg);
}

/* Per test: a fresh loop (GN_TEST_LOG=1 prints the library's log). */
static inline void cn_setup(void)
{
    if (getenv("GN_TEST_LOG"))
        gn_log_set(cn_log, NULL, GN_LOG_DEBUG);
    gts_block_sigpipe();
    CHECK_OK(gn_loop_new(NULL, &cn_loop));
}

static inline void cn_finish(void)
{
    CN_RUN_FOR(20);
    gn_loop_free(cn_loop);
    cn_loop = NULL;
}

/*
 * The component a suite runs on: argv[1] names a built-in of @kind, or is
 * "ref" for the suite's own reference component @ref (may be NULL).
 * NULL (after a "Bail out!" line) when there is none.
 */
static inline const gn_layer_ops *cn_component(gn_layer_kind kind, const char *arg,
                                               const gn_layer_ops *ref)
{
    if (ref && strcmp(arg, "ref") == 0)
        return ref;
    gn_registry *reg = NULL;
    if (gn_registry_new(&reg) < 0 || gn_registry_add_builtins(reg) < 0)
        return NULL;
    const gn_layer_ops *o = conf_component(reg, kind, arg);
    gn_registry_free(reg); /* ops tables are static: o stays valid */
    if (!o)
        printf("Bail out! no %s component named %s is built in\n", gn_layer_kind_name(kind),
               arg);
    return o;
}

#endif /* CONF_NODE_H */
