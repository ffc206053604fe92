/*
 * connect_uv_test: connecting to an Ergo node by name
 * (protocols/ergo/connect_uv.c over ergo_uv.c, routes.c, registrar_uv.c):
 * a static route with its own cookie reaches a node whose cookie differs
 * from ours (the Start and every Join use it), the highest weight is tried
 * first and a dead route falls through to the next, a matching static
 * route keeps the registrar out, a name without a static route goes to the
 * registrar, a use_resolver route dials the registrar's answer with the
 * node's cookie, and nothing to try gives GN_ENOROUTE from the loop.
 */
#include "gn_test.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "connect_uv.h"
#include "golemnet/edf.h"
#include "golemnet/err.h"

typedef struct side {
    gni_ergo_node *n;
    gni_ergo_conn *c;
    unsigned conns, downs, link_errors;
    int last_err;
    char diag[256];
} side;

#include "ergo_uv_harness.h"

static gni_ergo_options opts(const gn_edf_registry *r, const char *node, const char *cookie,
                             side *s)
{
    static const gni_ergo_callbacks cb = {.on_conn = on_conn, .on_conn_down = on_down,
                                          .on_link_error = on_link_error};
    gni_ergo_options o = ergo_test_options(r, node, cookie, &cb, s);
    o.pool_size = 3;
    return o;
}

typedef struct result {
    unsigned calls;
    int err;
    gni_ergo_conn *c;
} result;

static void on_connected(int err, gni_ergo_conn *c, void *ud)
{
    result *r = ud;
    r->calls++;
    r->err = err;
    r->c = c;
}

static gni_route route(uint16_t port, const char *cookie)
{
    gni_route r;
    memset(&r, 0, sizeof r);
    r.port = port;
    r.cookie = cookie;
    return r;
}

GN_TEST(static_route_with_its_own_cookie)
{
    ergo_test_block_sigpipe();
    CHECK_OK(uv_loop_init(&loop));
    gn_edf_registry *reg = gn_edf_registry_new();
    CHECK_OK(gn_edf_registry_add_ergo(reg));
    gn_edf_registry_freeze(reg);
    side a, b, g;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    memset(&g, 0, sizeof g);
    gni_ergo_options oa = opts(reg, "alpha@localhost", "default-cookie", &a);
    gni_ergo_options ob = opts(reg, "beta@localhost", "beta-only-cookie", &b);
    gni_ergo_options og = opts(reg, "gamma@localhost", "default-cookie", &g);
    CHECK_OK(gni_ergo_node_new(&loop, &oa, &a.n));
    CHECK_OK(gni_ergo_node_new(&loop, &ob, &b.n));
    CHECK_OK(gni_ergo_node_new(&loop, &og, &g.n));
    uint16_t bport = gni_ergo_node_port(b.n);

    /* the registrar (gamma owns it) knows beta at its real port too */
    uint16_t rport = (uint16_t)(30000 + (getpid() + 7919) % 20000);
    gni_reg_route rb = gni_reg_route_ergo(bport, false),
                  rg = gni_reg_route_ergo(gni_ergo_node_port(g.n), false);
    gni_reg_uv_options ro;
    memset(&ro, 0, sizeof ro);
    ro.reg = reg;
    ro.node = "gamma@localhost";
    ro.routes = &rg;
    ro.nroutes = 1;
    ro.port = rport;
    gni_reg_uv *rgam = NULL, *rbeta = NULL;
    CHECK_OK(gni_reg_uv_start(&loop, &ro, &rgam));
    RUN_UNTIL(gni_reg_uv_role(rgam) != GNI_REG_ROLE_NONE);
    bool have_reg = gni_reg_uv_role(rgam) == GNI_REG_ROLE_SERVER;
    if (have_reg) {
        ro.node = "beta@localhost";
        ro.routes = &rb;
        CHECK_OK(gni_reg_uv_start(&loop, &ro, &rbeta));
        RUN_UNTIL(gni_reg_uv_role(rbeta) == GNI_REG_ROLE_CLIENT);
    }

    gni_routes *t = NULL;
    CHECK_OK(gni_routes_new(0, &t));
    /* weight 20: a dead port (refused) is tried first; weight 10: beta with its cookie */
    gni_route dead = route(1, "beta-only-cookie"), good = route(bport, "beta-only-cookie");
    good.host = "127.0.0.1";
    CHECK_OK(gni_routes_add(t, "^beta@", &good, 10));
    CHECK_OK(gni_routes_add(t, "beta@localhost$", &dead, 20));

    result r;
    memset(&r, 0, sizeof r);
    CHECK_OK(gni_ergo_connect(&loop, a.n, t, have_reg ? rgam : NULL, "beta@localhost",
                              on_connected, &r));
    CHECK_EQ(r.calls, 0); /* never from inside the call */
    RUN_UNTIL(r.calls == 1);
    CHECK_OK(r.err);
    CHECK(r.c != NULL && r.c == a.c);
    CHECK_EQ(a.link_errors, 1); /* the dead route: connect refused */
    /* the joins used the route's cookie too: a pool of 3 on both sides */
    RUN_UNTIL(b.c && gni_ergo_conn_links(a.c) == 3 && gni_ergo_conn_links(b.c) == 3);
    CHECK_EQ(b.link_errors, 0);
    CHECK_EQ(b.conns, 1);

    /* a static route without a cookie uses ours: beta refuses it, and the registrar
     * (which knows beta) is not asked since a static route matched */
    side d;
    memset(&d, 0, sizeof d);
    gni_ergo_options od = opts(reg, "delta@localhost", "default-cookie", &d);
    CHECK_OK(gni_ergo_node_new(&loop, &od, &d.n));
    gni_routes *t2 = NULL;
    CHECK_OK(gni_routes_new(0, &t2));
    gni_route plain = route(bport, NULL);
    CHECK_OK(gni_routes_add(t2, "^beta@localhost$", &plain, 0));
    memset(&r, 0, sizeof r);
    CHECK_OK(gni_ergo_connect(&loop, d.n, t2, have_reg ? rgam : NULL, "beta@localhost",
                              on_connected, &r));
    RUN_UNTIL(r.calls == 1);
    CHECK(r.err < 0);
    CHECK(r.c == NULL);
    CHECK(strstr(d.diag, "cookie") != NULL);
    CHECK_EQ(d.conns, 0);

    /* no static route for gamma: the registrar resolves it (in-process here) */
    if (have_reg) {
        memset(&r, 0, sizeof r);
        CHECK_OK(gni_ergo_connect(&loop, d.n, t2, rgam, "gamma@localhost", on_connected, &r));
        RUN_UNTIL(r.calls == 1);
        CHECK_OK(r.err);
        CHECK_EQ(d.conns, 1);
        memset(&r, 0, sizeof r);
        CHECK_OK(gni_ergo_connect(&loop, d.n, NULL, rgam, "nobody@localhost", on_connected,
                                  &r));
        RUN_UNTIL(r.calls == 1);
        CHECK_EQ(r.err, GN_ENOTFOUND);

        /* a static route with use_resolver: the registrar's answer is dialled with the
         * node's cookie, not the route's (Ergo's rule), so "wrong" here is not used */
        gni_routes *t3 = NULL;
        CHECK_OK(gni_routes_new(0, &t3));
        gni_route viareg = route(0, "wrong");
        viareg.use_resolver = true;
        CHECK_OK(gni_routes_add(t3, "^gamma@", &viareg, 0));
        memset(&r, 0, sizeof r);
        CHECK_OK(gni_ergo_connect(&loop, a.n, t3, rgam, "gamma@localhost", on_connected, &r));
        RUN_UNTIL(r.calls == 1);
        CHECK_OK(r.err);
        RUN_UNTIL(g.conns == 2); /* delta, then alpha */
        /* without a registrar that route has nothing to try */
        memset(&r, 0, sizeof r);
        CHECK_OK(gni_ergo_connect(&loop, a.n, t3, NULL, "gamma@elsewhere", on_connected, &r));
        RUN_UNTIL(r.calls == 1);
        CHECK_EQ(r.err, GN_ENOROUTE);
        gni_routes_free(t3);
    }
    /* nothing to try: reported from the loop */
    memset(&r, 0, sizeof r);
    CHECK_OK(gni_ergo_connect(&loop, d.n, t2, NULL, "omega@localhost", on_connected, &r));
    CHECK_EQ(r.calls, 0);
    RUN_UNTIL(r.calls == 1);
    CHECK_EQ(r.err, GN_ENOROUTE);
    CHECK_EQ(gni_ergo_connect(&loop, d.n, t2, NULL, "no-at-sign", on_connected, &r),
             GN_EINVAL);

    closed = 0;
    unsigned want = 4;
    if (rbeta) {
        gni_reg_uv_close(rbeta, on_closed, NULL);
        want++;
    }
    gni_reg_uv_close(rgam, on_closed, NULL);
    want++;
    gni_ergo_node_close(a.n, on_closed, NULL);
    gni_ergo_node_close(b.n, on_closed, NULL);
    gni_ergo_node_close(g.n, on_closed, NULL);
    gni_ergo_node_close(d.n, on_closed, NULL);
    RUN_UNTIL(closed == want);
    CHECK_EQ(uv_run(&loop, UV_RUN_NOWAIT), 0);
    CHECK_OK(uv_loop_close(&loop));
    gni_routes_free(t);
    gni_routes_free(t2);
    gn_edf_registry_free(reg);
}

GN_TEST_MAIN(GN_T(static_route_with_its_own_cookie))
