/*
 * Router conformance suite: the same tests on every router.
 *
 * Usage: conformance_router <router-name> [test-filter]
 *   e.g. conformance_router static
 *
 * Each test runs real nodes on one loop driven by this thread (conf_node.h):
 * node A listens on 127.0.0.1, node B runs the router, configured through
 * the node options the router's test_options() gives for A's peer ID and
 * address. The router contract (include/golemnet/router.h) is checked on
 * an instance the test makes on B's host (find_peer, gn_op_cancel, stop called
 * directly, so "exactly once" and "never inside the call" are observed at
 * the router itself) and through B (gn_host_find_peer, gn_node_dial of a
 * bare /p2p/<id>). What a test expects comes from the ops table only: a
 * router without test_options skips the tests that need a known peer.
 */
#include "golemnet/router.h"

#include "conf_node.h"

static const gn_router_ops *g_ops;

#define NEED_TEST_OPTIONS()                                                                  \
    do {                                                                                     \
        if (!g_ops->test_options)                                                            \
            SKIP("no test_options: cannot make the router know a peer");                     \
    } while (0)

/* One find_peer's outcome, as the router delivered it. */
typedef struct find_res {
    int calls, status;
    int reentrant;       /* calls from inside find_peer, cancel or stop */
    bool has_want;       /* the answer holds want_addr */
    size_t naddrs;
    gn_peer_id peer;     /* the peer the callback named */
    const char *want_addr;
} find_res;

static bool g_in_call; /* the test is inside a router entry */

static void on_find(void *arg, int status, const gn_peer_id *peer, gn_multiaddr *const *addrs,
                    size_t naddrs)
{
    find_res *f = arg;
    f->calls++;
    f->reentrant += g_in_call;
    f->status = status;
    f->naddrs = naddrs;
    if (peer)
        f->peer = *peer;
    f->has_want = f->want_addr && status == 0 && cn_has_addr(addrs, naddrs, f->want_addr);
}

/* The world of one test: A is the peer to find, B runs the router. */
typedef struct rworld {
    gn_registry *reg;
    cn_node a, b;
    char optbuf[2048];
    const char *opts[16];
    size_t nopts;
    gn_router *r; /* the test's own instance on B's host, or NULL */
} rworld;

/* Brings A and B up; @known: B's options make the router know A. */
static void world_up(rworld *w, bool known)
{
    memset(w, 0, sizeof *w);
    cn_setup();
    w->reg = cn_registry(GN_LAYER_ROUTER, NULL);
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
    cn_up(&w->b, 2, &(cn_opts){.registry = w->reg, .routers = g_ops->name,
                               .options = w->opts, .n_options = w->nopts});
}

/* An instance of the router on B's host, started. */
static gn_router *world_router(rworld *w)
{
    CHECK_OK(gn_router_new(g_ops, gn_node_host(w->b.n), cn_loop, &w->r));
    CHECK_OK(gn_router_start(w->r));
    return w->r;
}

/* Stops the test's instance (unless @stopped), closes B and A, frees all. */
static void world_down(rworld *w, bool stopped)
{
    if (w->r && !stopped)
        gn_router_stop(w->r);
    cn_close(&w->b);
    gn_router_free(w->r); /* after the close: the host no longer calls it */
    w->r = NULL;
    cn_free(&w->b);
    cn_down(&w->a);
    gn_registry_free(w->reg);
    cn_finish();
}

/* find_peer on @r with the re-entry check armed; returns its result. */
static int find(gn_router *r, const gn_peer_id *peer, find_res *f, gn_op **query)
{
    g_in_call = true;
    int rc = gn_router_find_peer(r, peer, on_find, f, query);
    g_in_call = false;
    CHECK_EQ(f->calls, 0); /* never from inside the call */
    return rc;
}

/* ------------------------------------------------------------------ */

GN_TEST(table_is_well_formed)
{
    printf("# %s: test_options %s\n", g_ops->name, g_ops->test_options ? "yes" : "no");
    CHECK_EQ(g_ops->abi, GN_ROUTER_ABI);
    CHECK(g_ops->find_peer != NULL);
    if (g_ops->test_options) {
        /* too small a buffer is refused, not overrun */
        gn_peer_id p;
        cn_unknown_peer(&p);
        gn_multiaddr *ma = NULL;
        CHECK_OK(gn_multiaddr_parse("/ip4/127.0.0.1/tcp/4001", &ma));
        char small[8];
        CHECK_EQ(g_ops->test_options(&p, ma, small, sizeof small), GN_ENOSPC);
        gn_multiaddr_free(ma);
    }
}

GN_TEST(known_peer_answered_once_on_a_later_turn)
{
    NEED_TEST_OPTIONS();
    rworld w;
    world_up(&w, true);
    gn_router *r = world_router(&w);
    find_res f = {.want_addr = w.a.bare};
    gn_op *q = NULL;
    CHECK_OK(find(r, &w.a.pid, &f, &q));
    CN_RUN_UNTIL(f.calls > 0, 5000);
    CHECK_EQ(f.status, 0);
    CHECK(f.naddrs >= 1);
    CHECK(f.has_want);
    CHECK(gn_peer_id_equal(&f.peer, &w.a.pid));
    CN_RUN_FOR(50);
    CHECK_EQ(f.calls, 1);
    CHECK_EQ(f.reentrant, 0);
    world_down(&w, false);
}

GN_TEST(unknown_peer_is_enoroute)
{
    rworld w;
    world_up(&w, g_ops->test_options != NULL);
    gn_router *r = world_router(&w);
    gn_peer_id nobody;
    cn_unknown_peer(&nobody);
    find_res f = {0};
    gn_op *q = NULL;
    int rc = find(r, &nobody, &f, &q);
    if (rc == 0) {
        CN_RUN_UNTIL(f.calls > 0, 5000);
        CHECK_EQ(f.status, GN_ENOROUTE);
        CHECK_EQ(f.naddrs, 0);
        CN_RUN_FOR(50);
        CHECK_EQ(f.calls, 1);
    } else {
        CHECK_EQ(rc, GN_ENOROUTE); /* refused at once: then no callback */
        CN_RUN_FOR(50);
        CHECK_EQ(f.calls, 0);
    }
    CHECK_EQ(f.reentrant, 0);
    /* through the node: the lookup and a dial by peer ID fail alike */
    find_res hf = {0};
    CHECK_OK(gn_host_find_peer(gn_node_host(w.b.n), &nobody, on_find, &hf, NULL));
    CN_RUN_UNTIL(hf.calls > 0, 5000);
    CHECK_EQ(hf.status, GN_ENOROUTE);
    char target[GN_NODE_ADDR_MAX];
    char pid[GN_PEER_ID_MAX_STRLEN];
    gn_peer_id_to_string(&nobody, pid, sizeof pid);
    snprintf(target, sizeof target, "/p2p/%s", pid);
    CHECK_EQ(cn_dial(&w.b, target, NULL), GN_ENOROUTE);
    CHECK_EQ(hf.calls, 1);
    world_down(&w, false);
}

GN_TEST(cancel_completes_once)
{
    bool known = g_ops->test_options != NULL;
    rworld w;
    world_up(&w, known);
    gn_router *r = world_router(&w);
    gn_peer_id nobody;
    cn_unknown_peer(&nobody);
    /* the known peer (an answer may already be due) and an unknown one */
    find_res f[2] = {{0}, {0}};
    const gn_peer_id *peers[2] = {known ? &w.a.pid : &nobody, &nobody};
    for (int i = 0; i < 2; i++) {
        gn_op *q = NULL;
        CHECK_OK(find(r, peers[i], &f[i], &q));
        g_in_call = true;
        gn_op_cancel(q); /* a router that answers at once may hand out none */
        g_in_call = false;
        CHECK_EQ(f[i].calls, 0); /* never from inside cancel */
    }
    CN_RUN_UNTIL(f[0].calls > 0 && f[1].calls > 0, 5000);
    CN_RUN_FOR(50);
    for (int i = 0; i < 2; i++) {
        printf("# cancelled query %d: %s\n", i, gn_err_name(f[i].status));
        CHECK_EQ(f[i].calls, 1);
        CHECK_EQ(f[i].reentrant, 0);
        /* GN_ECANCELED, unless the answer was already due */
        CHECK(f[i].status == GN_ECANCELED || f[i].status == 0 || f[i].status == GN_ENOROUTE);
        CHECK(f[i].status != 0 || i == 0);
    }
    /* through the node: the user's callback runs once, with GN_ECANCELED */
    find_res hf = {0};
    gn_op *op = NULL;
    CHECK_OK(gn_host_find_peer(gn_node_host(w.b.n), peers[0], on_find, &hf, &op));
    gn_op_cancel(op);
    CHECK_EQ(hf.calls, 0);
    CN_RUN_UNTIL(hf.calls > 0, 5000);
    CN_RUN_FOR(50);
    CHECK_EQ(hf.calls, 1);
    CHECK_EQ(hf.status, GN_ECANCELED);
    world_down(&w, false);
}

GN_TEST(stop_cancels_pending_queries)
{
    bool known = g_ops->test_options != NULL;
    rworld w;
    world_up(&w, known);
    gn_router *r = world_router(&w);
    gn_peer_id nobody;
    cn_unknown_peer(&nobody);
    find_res f[2] = {{0}, {0}};
    gn_op *q = NULL;
    CHECK_OK(find(r, known ? &w.a.pid : &nobody, &f[0], &q));
    CHECK_OK(find(r, &nobody, &f[1], &q));
    g_in_call = true;
    gn_router_stop(r);
    g_in_call = false;
    CN_RUN_UNTIL(f[0].calls > 0 && f[1].calls > 0, 5000);
    CN_RUN_FOR(50);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(f[i].calls, 1);
        CHECK_EQ(f[i].reentrant, 0);
        CHECK_EQ(f[i].status, GN_ECANCELED);
    }
    /* the node's own instance is stopped by the close: a lookup waiting
     * for it completes once */
    find_res hf = {0};
    CHECK_OK(gn_host_find_peer(gn_node_host(w.b.n), known ? &w.a.pid : &nobody, on_find, &hf,
                               NULL));
    CN_RUN_FOR(1);
    gn_node_close(w.b.n, cn_on_closed, &w.b);
    CN_RUN_UNTIL(w.b.closed > 0 && hf.calls > 0, 10000);
    CN_RUN_FOR(20);
    CHECK_EQ(hf.calls, 1);
    /* a router with nobody to ask (kad with an empty table) may have
     * answered GN_ENOROUTE before the close */
    CHECK(hf.status == GN_ECANCELED || (known && hf.status == 0) ||
          (!known && hf.status == GN_ENOROUTE));
    world_down(&w, true);
}

GN_TEST(dial_by_bare_peer_id)
{
    NEED_TEST_OPTIONS();
    rworld w;
    world_up(&w, true);
    char target[GN_NODE_ADDR_MAX];
    snprintf(target, sizeof target, "/p2p/%s", w.a.pid_str);
    gn_channel *ch = NULL;
    CHECK_EQ(cn_dial(&w.b, target, &ch), 0);
    gn_channel_info info;
    CHECK_EQ(gn_channel_state_get(ch, &info), GN_CHANNEL_OPEN);
    CHECK(gn_peer_id_equal(&info.remote_peer, &w.a.pid));
    gn_channel_rele(ch);
    /* the answer is in B's peer store */
    gn_multiaddr *addrs[16];
    int n = gn_host_peer_addrs(gn_node_host(w.b.n), &w.a.pid, addrs, NULL, 16);
    CHECK(n >= 1);
    CHECK(cn_has_addr(addrs, (size_t)n, w.a.bare));
    for (int i = 0; i < n; i++)
        gn_multiaddr_free(addrs[i]);
    world_down(&w, false);
}

static int answered(const find_res *f, int n)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        k += f[i].calls > 0;
    return k;
}

GN_TEST(hundred_concurrent_queries)
{
    enum { N = 100 };
    bool known = g_ops->test_options != NULL;
    rworld w;
    world_up(&w, known);
    gn_router *r = world_router(&w);
    gn_peer_id nobody;
    cn_unknown_peer(&nobody);
    static find_res f[N];
    memset(f, 0, sizeof f);
    for (int i = 0; i < N; i++) {
        bool ask_known = known && i % 2 == 0;
        f[i].want_addr = ask_known ? w.a.bare : NULL;
        gn_op *q = NULL;
        CHECK_OK(find(r, ask_known ? &w.a.pid : &nobody, &f[i], &q));
    }
    CN_RUN_UNTIL(answered(f, N) == N, 10000);
    CN_RUN_FOR(50);
    for (int i = 0; i < N; i++) {
        CHECK_EQ(f[i].calls, 1);
        CHECK_EQ(f[i].reentrant, 0);
        if (f[i].want_addr) {
            CHECK_EQ(f[i].status, 0);
            CHECK(f[i].has_want);
        } else {
            CHECK_EQ(f[i].status, GN_ENOROUTE);
        }
    }
    world_down(&w, false);
}

int main(int argc, char **argv)
{
    static const gn_test_case cases[] = {
        GN_T(table_is_well_formed),
        GN_T(known_peer_answered_once_on_a_later_turn),
        GN_T(unknown_peer_is_enoroute),
        GN_T(cancel_completes_once),
        GN_T(stop_cancels_pending_queries),
        GN_T(dial_by_bare_peer_id),
        GN_T(hundred_concurrent_queries),
    };
    if (argc < 2) {
        fprintf(stderr, "usage: %s COMPONENT [filter]\n", argv[0]);
        return 2;
    }
    g_ops = (const gn_router_ops *)cn_component(GN_LAYER_ROUTER, argv[1], NULL);
    if (!g_ops)
        return 1;
    return gn_test_run(cases, sizeof cases / sizeof cases[0], argc - 1, argv + 1);
}
