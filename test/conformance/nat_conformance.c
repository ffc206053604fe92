/*
 * NAT conformance suite: the same tests on every NAT component.
 *
 * Usage: conformance_nat <component-name>|ref [test-filter]
 *   "ref" runs the suite on the reference component defined below (a
 *   pretend gateway that maps every address to 203.0.113.7, TEST-NET-3):
 *   no NAT component is built in yet, the suite must run in CI all the
 *   same, and a test machine has no gateway to ask.
 *
 * Each test runs a real node on a loop driven by this thread (conf_node.h)
 * listening on 127.0.0.1 and on 0.0.0.0 (not loopback: mapped). The
 * component runs inside the node wrapped by a spy: an ops table with the
 * same name and state whose entries count the node's calls and the
 * results, then call the component's own entries. Checked (include/
 * golemnet/nat.h): only the non-loopback listen address is mapped; each
 * map completes once, never inside the call; a mapped external address
 * becomes an observed address of the host (gn_host_observed_addrs); the
 * node removes its mappings (unmap) before it stops the component, which
 * happens once; a map pending at close completes with GN_ECANCELED; a
 * refused or failed mapping (the spy injects both) leaves the node
 * working, with nothing observed and nothing to unmap. A component that
 * cannot map here (no gateway) is checked on the failure path only.
 */
#include "golemnet/nat.h"

#include "conf_node.h"

/* ---- the reference component: a pretend gateway ------------------------- */

#define REF_EXTERNAL_IP "/ip4/203.0.113.7"
#define REF_DELAY (20 * GN_MS) /* a gateway takes a while to answer */

typedef struct ref_map {
    struct ref_map *next;
    struct ref_nat *rn;
    gn_multiaddr *internal;
    gn_nat_map_cb cb;
    void *arg;
    gn_timer t;
    bool pending, canceled;
} ref_map;

typedef struct ref_nat {
    ref_map *maps; /* pending and made */
} ref_nat;

static void ref_unlink(ref_nat *rn, ref_map *m)
{
    for (ref_map **pp = &rn->maps; *pp; pp = &(*pp)->next) {
        if (*pp == m) {
            *pp = m->next;
            return;
        }
    }
}

static void ref_free(ref_map *m)
{
    gn_timer_stop(&m->t);
    gn_multiaddr_free(m->internal);
    gn_free(m);
}

static void ref_fire(gn_timer *t, void *arg)
{
    ref_map *m = arg;
    (void)t;
    m->pending = false;
    if (m->canceled) {
        ref_unlink(m->rn, m);
        gn_nat_map_cb cb = m->cb;
        void *cb_arg = m->arg;
        ref_free(m);
        cb(cb_arg, GN_ECANCELED, NULL);
        return;
    }
    /* same transport and port, the gateway's address */
    char in[GN_NODE_ADDR_MAX], ext[GN_NODE_ADDR_MAX];
    gn_multiaddr *ma = NULL;
    const char *rest = NULL;
    if (gn_multiaddr_to_string(m->internal, in, sizeof in) > 0)
        rest = strchr(in + 1, '/') ? strchr(strchr(in + 1, '/') + 1, '/') : NULL;
    int rc = rest ? 0 : GN_EINVAL;
    if (rc == 0) {
        snprintf(ext, sizeof ext, "%s%s", REF_EXTERNAL_IP, rest);
        rc = gn_multiaddr_parse(ext, &ma);
    }
    m->cb(m->arg, rc == 0 ? 0 : GN_ENOTSUP, ma);
    gn_multiaddr_free(ma);
    if (rc < 0) {
        ref_unlink(m->rn, m);
        ref_free(m);
    }
}

static int ref_map_fn(gn_nat *n, const gn_multiaddr *internal, gn_time lifetime,
                      gn_nat_map_cb cb, void *arg)
{
    ref_nat *rn = n->state;
    (void)lifetime;
    ref_map *m = gn_calloc(1, sizeof *m);
    if (!m)
        return GN_ENOMEM;
    int rc = gn_multiaddr_dup(internal, &m->internal);
    if (rc < 0) {
        gn_free(m);
        return rc;
    }
    m->rn = rn;
    m->cb = cb;
    m->arg = arg;
    m->pending = true;
    gn_timer_init(n->loop, &m->t);
    if ((rc = gn_timer_start(&m->t, REF_DELAY, ref_fire, m)) < 0) {
        ref_free(m);
        return rc;
    }
    m->next = rn->maps;
    rn->maps = m;
    return 0;
}

static int ref_unmap(gn_nat *n, const gn_multiaddr *internal)
{
    ref_nat *rn = n->state;
    for (ref_map *m = rn->maps; m; m = m->next) {
        if (!m->pending && gn_multiaddr_equal(m->internal, internal)) {
            ref_unlink(rn, m);
            ref_free(m);
            return 0;
        }
    }
    return GN_ENOTFOUND;
}

static void ref_stop(gn_nat *n)
{
    ref_nat *rn = n->state;
    for (ref_map *m = rn->maps; m; m = m->next) {
        if (m->pending && !m->canceled) {
            m->canceled = true;
            gn_timer_start(&m->t, 0, ref_fire, m); /* GN_ECANCELED, on a later turn */
        }
    }
}

static void ref_fini(gn_nat *n)
{
    ref_nat *rn = n->state;
    while (rn->maps) {
        ref_map *m = rn->maps;
        rn->maps = m->next;
        ref_free(m);
    }
}

static const gn_nat_ops ref_ops = {
    .abi = GN_NAT_ABI,
    .name = "conformance-ref-nat",
    .state_size = sizeof(ref_nat),
    .fini = ref_fini,
    .stop = ref_stop,
    .map = ref_map_fn,
    .unmap = ref_unmap,
};

/* ---- the spy around the component under test ---------------------------- */

static const gn_nat_ops *g_inner;
static gn_nat_ops g_spy;

typedef enum inject { INJECT_NONE = 0, INJECT_REFUSE, INJECT_FAIL_LATER } inject;

static struct {
    int starts, stops, maps, results, unmaps;
    int reentrant;          /* results from inside map */
    int bad_lifetime;       /* maps asked with lifetime 0 */
    int unmap_after_stop;   /* unmap calls after stop */
    int maps_after_stop;
    int status;             /* of the last result */
    int results_after_stop; /* results delivered once stop ran */
    char internal[GN_NODE_ADDR_MAX], external[GN_NODE_ADDR_MAX], unmapped[GN_NODE_ADDR_MAX];
    inject inject;
} N;

static bool g_in_call;

typedef struct spy_ctx {
    gn_nat_map_cb cb;
    void *arg;
} spy_ctx;

static void spy_mapped(void *arg, int status, const gn_multiaddr *external)
{
    spy_ctx *c = arg;
    N.results++;
    N.results_after_stop += N.stops > 0;
    N.reentrant += g_in_call;
    N.status = status;
    N.external[0] = '\0';
    if (status == 0 && external)
        gn_multiaddr_to_string(external, N.external, sizeof N.external);
    gn_nat_map_cb cb = c->cb;
    void *cb_arg = c->arg;
    gn_free(c);
    cb(cb_arg, status, external);
}

static void spy_fail_later(gn_loop *loop, void *arg)
{
    (void)loop;
    spy_mapped(arg, GN_ETIMEDOUT, NULL);
}

static int spy_map(gn_nat *n, const gn_multiaddr *internal, gn_time lifetime, gn_nat_map_cb cb,
                   void *arg)
{
    N.maps++;
    N.maps_after_stop += N.stops > 0;
    N.bad_lifetime += lifetime == 0;
    gn_multiaddr_to_string(internal, N.internal, sizeof N.internal);
    if (N.inject == INJECT_REFUSE)
        return GN_ENOTSUP;
    spy_ctx *c = gn_calloc(1, sizeof *c);
    if (!c)
        return GN_ENOMEM;
    c->cb = cb;
    c->arg = arg;
    if (N.inject == INJECT_FAIL_LATER) {
        int rc = gn_loop_defer(n->loop, spy_fail_later, c);
        if (rc < 0)
            gn_free(c);
        return rc;
    }
    g_in_call = true;
    int rc = g_inner->map(n, internal, lifetime, spy_mapped, c);
    g_in_call = false;
    if (rc < 0)
        gn_free(c); /* refused: no callback */
    return rc;
}

static int spy_unmap(gn_nat *n, const gn_multiaddr *internal)
{
    N.unmaps++;
    N.unmap_after_stop += N.stops > 0;
    gn_multiaddr_to_string(internal, N.unmapped, sizeof N.unmapped);
    return g_inner->unmap ? g_inner->unmap(n, internal) : GN_ENOTSUP;
}

static int spy_start(gn_nat *n)
{
    N.starts++;
    return g_inner->start ? g_inner->start(n) : 0;
}

static void spy_stop(gn_nat *n)
{
    N.stops++;
    if (g_inner->stop)
        g_inner->stop(n);
}

static void spy_make(const gn_nat_ops *inner)
{
    g_inner = inner;
    g_spy = *inner;
    g_spy.start = spy_start;
    g_spy.stop = spy_stop;
    g_spy.map = spy_map;
    g_spy.unmap = spy_unmap;
}

/* ---- one test's world: node T runs the component ------------------------- */

typedef struct nworld {
    gn_registry *reg;
    cn_node t;
    char any[GN_NODE_ADDR_MAX]; /* T's 0.0.0.0 listen address, bound */
} nworld;

static void world_up(nworld *w, inject inj, bool wait_listen)
{
    memset(w, 0, sizeof *w);
    memset(&N, 0, sizeof N);
    N.inject = inj;
    cn_setup();
    w->reg = cn_registry(GN_LAYER_NAT, (const gn_layer_ops *)&g_spy);
    static const char *const listen[] = {"/ip4/127.0.0.1/tcp/0", "/ip4/0.0.0.0/tcp/0"};
    /* the built-in components ask a gateway on loopback where nothing
     * answers, never the machine's network (its LAN, its default gateway):
     * their failure path runs here, their success path in test/nat/ */
    static const char *const opts[] = {"upnp.igd_url=http://127.0.0.1:9/rootDesc.xml",
                                       "natpmp.gateway=127.0.0.1"};
    cn_up(&w->t, 1, &(cn_opts){.registry = w->reg, .nat = g_inner->name, .listen = listen,
                               .n_listen = 2, .no_wait = !wait_listen, .options = opts,
                               .n_options = 2});
    if (!wait_listen)
        return;
    CHECK_EQ(N.starts, 1);
    const gn_multiaddr *la[8];
    size_t n = gn_host_listen_addrs(gn_node_host(w->t.n), la, 8);
    CHECK_EQ(n, 2);
    for (size_t i = 0; i < n; i++) {
        char text[GN_NODE_ADDR_MAX];
        CHECK_OK(gn_multiaddr_to_string(la[i], text, sizeof text));
        if (strncmp(text, "/ip4/0.0.0.0/", 13) == 0)
            snprintf(w->any, sizeof w->any, "%s", text);
    }
    CHECK(w->any[0] != '\0');
}

static size_t observed(nworld *w, const char *want, bool *has)
{
    const gn_multiaddr *o[GN_HOST_MAX_OBSERVED];
    size_t n = gn_host_observed_addrs(gn_node_host(w->t.n), o, GN_HOST_MAX_OBSERVED);
    *has = cn_has_addr((gn_multiaddr *const *)o, n, want);
    return n;
}

static void world_down(nworld *w)
{
    cn_close(&w->t);
    CN_RUN_FOR(20);
    CHECK_EQ(N.starts, 1);
    CHECK_EQ(N.stops, 1);
    CHECK_EQ(N.results, N.maps - (N.inject == INJECT_REFUSE ? N.maps : 0));
    CHECK_EQ(N.reentrant, 0);
    CHECK_EQ(N.maps_after_stop, 0);
    CHECK_EQ(N.bad_lifetime, 0);
    cn_free(&w->t);
    gn_registry_free(w->reg);
    cn_finish();
}

/* ------------------------------------------------------------------ */

GN_TEST(table_is_well_formed)
{
    printf("# %s: start %s, stop %s, unmap %s\n", g_inner->name, g_inner->start ? "yes" : "no",
           g_inner->stop ? "yes" : "no", g_inner->unmap ? "yes" : "no");
    CHECK_EQ(g_inner->abi, GN_NAT_ABI);
    CHECK(g_inner->map != NULL);
}

GN_TEST(maps_the_non_loopback_listen_address)
{
    nworld w;
    world_up(&w, INJECT_NONE, true);
    CN_RUN_UNTIL(N.maps >= 1 && N.results == N.maps, 10000);
    CHECK_EQ(N.maps, 1); /* 127.0.0.1 is not mapped */
    CHECK_STR(N.internal, w.any);
    bool has;
    if (N.status == 0) {
        printf("# mapped %s -> %s\n", N.internal, N.external);
        CHECK(N.external[0] != '\0');
        CHECK_EQ(observed(&w, N.external, &has), 1);
        CHECK(has);
    } else {
        printf("# the component could not map here: %s\n", gn_err_name(N.status));
        CHECK_EQ(observed(&w, "", &has), 0);
    }
    CHECK_EQ(N.unmaps, 0);
    int mapped = N.status == 0;
    world_down(&w);
    /* the node removed the mapping, before it stopped the component */
    CHECK_EQ(N.unmaps, mapped);
    CHECK_EQ(N.unmap_after_stop, 0);
    if (mapped)
        CHECK_STR(N.unmapped, N.internal);
}

GN_TEST(map_failure_is_tolerated)
{
    static const inject how[] = {INJECT_REFUSE, INJECT_FAIL_LATER};
    for (size_t k = 0; k < 2; k++) {
        nworld w;
        world_up(&w, how[k], true);
        CN_RUN_FOR(100);
        CHECK_EQ(N.maps, 1);
        CHECK_EQ(N.results, how[k] == INJECT_REFUSE ? 0 : 1);
        bool has;
        CHECK_EQ(observed(&w, "", &has), 0);
        /* the node works: a peer connects */
        cn_node c;
        cn_up(&c, 2, &(cn_opts){.registry = w.reg});
        CHECK_EQ(cn_dial(&c, w.t.addr, NULL), 0);
        cn_down(&c);
        world_down(&w);
        CHECK_EQ(N.unmaps, 0); /* nothing was mapped */
    }
}

GN_TEST(close_with_a_map_pending)
{
    nworld w;
    world_up(&w, INJECT_NONE, false);
    /* the map starts when the listener is bound; close before its answer */
    CN_RUN_UNTIL(N.maps >= 1, 5000);
    bool pending = N.results == 0;
    printf("# %s at close\n", pending ? "map pending" : "map answered already");
    cn_close(&w.t);
    CHECK_EQ(N.results, N.maps);
    if (pending && N.results_after_stop > 0) {
        /* still pending when the component stopped: cancelled. (A gateway
         * that fails at once, as the loopback one the built-in components
         * are given here, may answer between the check above and the stop:
         * then the answer is the real one.) */
        CHECK_EQ(N.status, GN_ECANCELED);
        CHECK_EQ(N.unmaps, 0);
    }
    bool has;
    CHECK_EQ(observed(&w, N.external, &has), N.status == 0);
    CHECK_EQ(N.unmaps, N.status == 0);
    world_down(&w);
}

int main(int argc, char **argv)
{
    static const gn_test_case cases[] = {
        GN_T(table_is_well_formed),
        GN_T(maps_the_non_loopback_listen_address),
        GN_T(map_failure_is_tolerated),
        GN_T(close_with_a_map_pending),
    };
    if (argc < 2) {
        fprintf(stderr, "usage: %s COMPONENT|ref [filter]\n", argv[0]);
        return 2;
    }
    const gn_layer_ops *o = cn_component(GN_LAYER_NAT, argv[1], (const gn_layer_ops *)&ref_ops);
    if (!o)
        return 1;
    spy_make((const gn_nat_ops *)o);
    return gn_test_run(cases, sizeof cases / sizeof cases[0], argc - 1, argv + 1);
}
