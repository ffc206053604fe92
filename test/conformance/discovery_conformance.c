/*
 * Discovery conformance suite: the same tests on every discovery component.
 *
 * Usage: conformance_discovery <component-name> [test-filter]
 *   e.g. conformance_discovery bootstrap
 *
 * Each test runs real nodes on one loop driven by this thread (conf_node.h):
 * node A listens on 127.0.0.1; node B is configured with the node options
 * the component's test_options() gives for A's peer ID and address. The
 * contract (include/golemnet/discovery.h) is checked on an instance the
 * test makes on B's host (start, stop called directly: reports never from
 * inside start, none after stop, none without peers) and through B running
 * the component (the peer store, GN_HOST_EV_PEER_FOUND, close with work
 * pending). A component without test_options skips the tests that need a
 * reported peer.
 */
#include "golemnet/discovery.h"

#include "conf_node.h"

static const gn_discovery_ops *g_ops;

#define NEED_TEST_OPTIONS()                                                                  \
    do {                                                                                     \
        if (!g_ops->test_options)                                                            \
            SKIP("no test_options: cannot make the component report a peer");                \
    } while (0)

/* What an instance reported. */
typedef struct reports {
    int calls;        /* every report */
    int reentrant;    /* from inside start or stop */
    int after_stop;   /* after stop returned */
    int of_want;      /* reports of want_peer */
    bool has_addr;    /* one of them held want_addr */
    gn_time ttl;
    const gn_peer_id *want_peer;
    const char *want_addr;
} reports;

static bool g_in_call, g_stopped;

static void on_peer(void *arg, const gn_peer_id *peer, gn_multiaddr *const *addrs, size_t naddrs,
                    gn_time ttl)
{
    reports *r = arg;
    r->calls++;
    r->reentrant += g_in_call;
    r->after_stop += g_stopped;
    if (r->want_peer && peer && gn_peer_id_equal(peer, r->want_peer)) {
        r->of_want++;
        r->ttl = ttl;
        r->has_addr = r->has_addr || cn_has_addr(addrs, naddrs, r->want_addr);
    }
}

/* GN_HOST_EV_PEER_FOUND events a node published. */
typedef struct found {
    int events, of_want;
    const gn_peer_id *want_peer;
} found;

static void on_event(void *arg, const gn_host_event *ev)
{
    found *f = arg;
    if (ev->type != GN_HOST_EV_PEER_FOUND)
        return;
    f->events++;
    f->of_want += ev->peer && f->want_peer && gn_peer_id_equal(ev->peer, f->want_peer);
}

/* The world of one test: A is the peer to report, B runs the component. */
typedef struct dworld {
    gn_registry *reg;
    cn_node a, b;
    char optbuf[2048];
    const char *opts[16];
    size_t nopts;
    gn_discovery *d; /* the test's own instance on B's host, or NULL */
    gn_host_sub *sub;
    found f;
} dworld;

/*
 * Brings A and B up; @known: B's options name A; @run: B runs the
 * component itself (and the test watches its PEER_FOUND events).
 */
static void world_up(dworld *w, bool known, bool run)
{
    memset(w, 0, sizeof *w);
    g_stopped = false;
    cn_setup();
    w->reg = cn_registry(GN_LAYER_DISCOVERY, NULL);
    cn_up_listening(&w->a, 1, w->reg);
    if (known) {
        gn_multiaddr *ma = NULL;
        CHECK_OK(gn_multiaddr_parse(w->a.bare, &ma));
        int len = g_ops->test_options(&w->a.pid, ma, w->optbuf, sizeof w->optbuf);
        gn_multiaddr_free(ma);
        CHECK_OK(len);
        CHECK(len > 0 && (size_t)len < sizeof w->optbuf);
        w->nopts = cn_split_lines(w->optbuf, w->opts, 16);
        CHECK(w->nopts > 0);
        for (size_t i = 0; i < w->nopts; i++)
            printf("# option %s\n", w->opts[i]);
    }
    w->f.want_peer = &w->a.pid;
    cn_up(&w->b, 2, &(cn_opts){.registry = w->reg, .discovery = run ? g_ops->name : "",
                               .options = w->opts, .n_options = w->nopts});
    CHECK_OK(gn_host_subscribe(gn_node_host(w->b.n), GN_HOST_EV_PEER_FOUND, on_event, &w->f,
                               &w->sub));
}

/* Makes an instance on B's host and starts it; reports go to @r. */
static gn_discovery *world_start(dworld *w, reports *r)
{
    CHECK_OK(gn_discovery_new(g_ops, gn_node_host(w->b.n), cn_loop, &w->d));
    g_in_call = true;
    int rc = gn_discovery_start(w->d, on_peer, r);
    g_in_call = false;
    CHECK_OK(rc);
    CHECK_EQ(r->calls, 0); /* never from inside start */
    return w->d;
}

static void world_stop(dworld *w)
{
    g_in_call = true;
    gn_discovery_stop(w->d);
    g_in_call = false;
    g_stopped = true;
}

/* Stops the test's instance (if not yet), closes B and A, frees all. */
static void world_down(dworld *w)
{
    if (w->d && !g_stopped)
        world_stop(w);
    gn_host_unsubscribe(w->sub);
    cn_close(&w->b);
    gn_discovery_free(w->d); /* after the close: the host no longer calls it */
    w->d = NULL;
    cn_free(&w->b);
    cn_down(&w->a);
    gn_registry_free(w->reg);
    cn_finish();
}

/* ------------------------------------------------------------------ */

GN_TEST(table_is_well_formed)
{
    printf("# %s: test_options %s\n", g_ops->name, g_ops->test_options ? "yes" : "no");
    CHECK_EQ(g_ops->abi, GN_DISCOVERY_ABI);
    CHECK(g_ops->start != NULL && g_ops->stop != NULL);
    if (g_ops->test_options) {
        gn_peer_id p;
        cn_unknown_peer(&p);
        gn_multiaddr *ma = NULL;
        CHECK_OK(gn_multiaddr_parse("/ip4/127.0.0.1/tcp/4001", &ma));
        char small[8];
        CHECK_EQ(g_ops->test_options(&p, ma, small, sizeof small), GN_ENOSPC);
        gn_multiaddr_free(ma);
    }
}

GN_TEST(start_reports_the_configured_peer_later)
{
    NEED_TEST_OPTIONS();
    dworld w;
    world_up(&w, true, false);
    reports r = {.want_peer = &w.a.pid, .want_addr = w.a.bare};
    world_start(&w, &r);
    CN_RUN_UNTIL(r.of_want > 0 && r.has_addr, 5000);
    CHECK(r.ttl > 0);
    CHECK_EQ(r.reentrant, 0);
    world_stop(&w);
    int calls = r.calls;
    CN_RUN_FOR(200);
    CHECK_EQ(r.calls, calls);
    CHECK_EQ(r.after_stop, 0);
    world_down(&w);
}

GN_TEST(node_stores_the_reported_address)
{
    NEED_TEST_OPTIONS();
    dworld w;
    world_up(&w, true, true);
    CN_RUN_UNTIL(w.f.of_want > 0, 5000);
    gn_multiaddr *addrs[16];
    int n = gn_host_peer_addrs(gn_node_host(w.b.n), &w.a.pid, addrs, NULL, 16);
    CHECK(n >= 1);
    bool has = cn_has_addr(addrs, (size_t)n, w.a.bare);
    for (int i = 0; i < n; i++)
        gn_multiaddr_free(addrs[i]);
    CHECK(has);
    /* and a dial by peer ID finds it */
    char target[GN_NODE_ADDR_MAX];
    snprintf(target, sizeof target, "/p2p/%s", w.a.pid_str);
    CHECK_EQ(cn_dial(&w.b, target, NULL), 0);
    world_down(&w);
}

GN_TEST(stop_before_the_first_report)
{
    dworld w;
    bool known = g_ops->test_options != NULL;
    world_up(&w, known, false);
    reports r = {.want_peer = &w.a.pid, .want_addr = w.a.bare};
    world_start(&w, &r);
    world_stop(&w); /* same loop turn as start */
    CN_RUN_FOR(300);
    CHECK_EQ(r.calls, 0);
    world_down(&w);
}

GN_TEST(stop_after_reports_ends_them)
{
    NEED_TEST_OPTIONS();
    dworld w;
    world_up(&w, true, false);
    reports r = {.want_peer = &w.a.pid, .want_addr = w.a.bare};
    world_start(&w, &r);
    CN_RUN_UNTIL(r.of_want > 0, 5000);
    /* whatever the component does next (dial, re-report) ends here */
    world_stop(&w);
    gn_channel *ch = NULL;
    CHECK_EQ(cn_dial(&w.b, w.a.addr, &ch), 0); /* connection events do not revive it */
    gn_channel_close(ch);
    gn_channel_rele(ch);
    CN_RUN_FOR(300);
    CHECK_EQ(r.after_stop, 0);
    world_down(&w);
}

GN_TEST(node_close_with_work_pending)
{
    bool known = g_ops->test_options != NULL;
    /* 1: closed on the turn it started: nothing reported yet */
    dworld w;
    world_up(&w, known, true);
    int before = w.f.events;
    world_down(&w);
    CHECK_EQ(before, 0);
    if (!known)
        return;
    /* 2: closed right after the report (the component may be dialling) */
    world_up(&w, true, true);
    CN_RUN_UNTIL(w.f.of_want > 0, 5000);
    world_down(&w);
}

GN_TEST(no_peers_no_reports)
{
    dworld w;
    world_up(&w, false, true); /* B runs the component too, unconfigured */
    reports r = {.want_peer = &w.a.pid, .want_addr = w.a.bare};
    world_start(&w, &r);
    CN_RUN_FOR(300);
    CHECK_EQ(r.calls, 0);
    CHECK_EQ(w.f.events, 0);
    world_down(&w);
}

int main(int argc, char **argv)
{
    static const gn_test_case cases[] = {
        GN_T(table_is_well_formed),
        GN_T(start_reports_the_configured_peer_later),
        GN_T(node_stores_the_reported_address),
        GN_T(stop_before_the_first_report),
        GN_T(stop_after_reports_ends_them),
        GN_T(node_close_with_work_pending),
        GN_T(no_peers_no_reports),
    };
    if (argc < 2) {
        fprintf(stderr, "usage: %s COMPONENT [filter]\n", argv[0]);
        return 2;
    }
    g_ops = (const gn_discovery_ops *)cn_component(GN_LAYER_DISCOVERY, argv[1], NULL);
    if (!g_ops)
        return 1;
    return gn_test_run(cases, sizeof cases / sizeof cases[0], argc - 1, argv + 1);
}
