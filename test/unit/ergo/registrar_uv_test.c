/*
 * registrar_uv_test: the embedded registrar over real sockets
 * (protocols/ergo/registrar_uv.c on the registrar cores; ergo-wire.md a),
 * on a private port instead of 4499: the first node becomes the server,
 * the next ones register over TCP and resolve over UDP, a duplicate name
 * is refused, and when the server node goes away a survivor takes over
 * and the other re-registers with it. The loop ends empty.
 */
#include "gn_test.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "golemnet/edf.h"
#include "golemnet/err.h"
#include "registrar_uv.h"

static uv_loop_t loop;

#define RUN_UNTIL(cond)                                                                      \
    do {                                                                                     \
        uint64_t t0_ = uv_now(&loop);                                                        \
        while (!(cond) && uv_now(&loop) - t0_ < 15000) {                                     \
            uv_run(&loop, UV_RUN_ONCE);                                                      \
            uv_update_time(&loop);                                                           \
        }                                                                                    \
        CHECK(cond);                                                                         \
    } while (0)

typedef struct res {
    bool done;
    int err;
    uint16_t port;
} res;

static void on_resolved(int err, const gni_reg_route *routes, uint32_t n, void *ud)
{
    res *r = ud;
    r->done = true;
    r->err = err;
    r->port = err == 0 && n > 0 ? routes[0].port : 0;
}

static unsigned closed;
static void on_closed(void *ud)
{
    (void)ud;
    closed++;
}

static gni_reg_uv *start(const gn_edf_registry *reg, const char *node, const gni_reg_route *rt,
                         uint16_t port)
{
    gni_reg_uv_options o;
    memset(&o, 0, sizeof o);
    o.reg = reg;
    o.node = node;
    o.routes = rt;
    o.nroutes = 1;
    o.port = port;
    gni_reg_uv *r = NULL;
    CHECK_OK(gni_reg_uv_start(&loop, &o, &r));
    return r;
}

static void resolve(gni_reg_uv *from, const char *node, res *out)
{
    memset(out, 0, sizeof *out);
    CHECK_OK(gni_reg_uv_resolve(from, node, on_resolved, out));
    RUN_UNTIL(out->done);
}

GN_TEST(register_resolve_failover)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    CHECK_OK(uv_loop_init(&loop));
    gn_edf_registry *reg = gn_edf_registry_new();
    CHECK_OK(gn_edf_registry_add_ergo(reg));
    gn_edf_registry_freeze(reg);
    uint16_t port = (uint16_t)(30000 + getpid() % 20000);
    gni_reg_route rb = gni_reg_route_ergo(11144, false), ra = gni_reg_route_ergo(11145, false),
                  rg = gni_reg_route_ergo(11146, false), rd = gni_reg_route_ergo(11147, false);

    gni_reg_uv *beta = start(reg, "beta@localhost", &rb, port);
    RUN_UNTIL(gni_reg_uv_role(beta) != GNI_REG_ROLE_NONE);
    if (gni_reg_uv_role(beta) != GNI_REG_ROLE_SERVER) {
        gni_reg_uv_close(beta, NULL, NULL);
        SKIP("the test port is taken");
    }
    gni_reg_uv *alpha = start(reg, "alpha@localhost", &ra, port);
    RUN_UNTIL(gni_reg_uv_role(alpha) == GNI_REG_ROLE_CLIENT);

    res r;
    resolve(alpha, "beta@localhost", &r); /* UDP */
    CHECK_OK(r.err);
    CHECK_EQ(r.port, 11144);
    resolve(beta, "alpha@localhost", &r); /* in-process on the server */
    CHECK_OK(r.err);
    CHECK_EQ(r.port, 11145);
    resolve(alpha, "nobody@localhost", &r);
    CHECK_EQ(r.err, GN_ENOTFOUND);

    /* a second alpha is refused: "resource is taken" */
    gni_reg_uv *dup = start(reg, "alpha@localhost", &rd, port);
    RUN_UNTIL(gni_reg_uv_role(dup) == GNI_REG_ROLE_FAILED);
    gni_reg_uv *gamma = start(reg, "gamma@localhost", &rg, port);
    RUN_UNTIL(gni_reg_uv_role(gamma) == GNI_REG_ROLE_CLIENT);
    resolve(gamma, "alpha@localhost", &r);
    CHECK_EQ(r.port, 11145);

    /* the server node goes away: one survivor takes the port, the other re-registers */
    closed = 0;
    gni_reg_uv_close(beta, on_closed, NULL);
    RUN_UNTIL(closed == 1);
    RUN_UNTIL((gni_reg_uv_role(alpha) == GNI_REG_ROLE_SERVER &&
               gni_reg_uv_role(gamma) == GNI_REG_ROLE_CLIENT) ||
              (gni_reg_uv_role(gamma) == GNI_REG_ROLE_SERVER &&
               gni_reg_uv_role(alpha) == GNI_REG_ROLE_CLIENT));
    resolve(gamma, "alpha@localhost", &r);
    CHECK_OK(r.err);
    CHECK_EQ(r.port, 11145);
    resolve(alpha, "gamma@localhost", &r);
    CHECK_OK(r.err);
    CHECK_EQ(r.port, 11146);
    resolve(alpha, "beta@localhost", &r); /* the old table is gone */
    CHECK_EQ(r.err, GN_ENOTFOUND);

    gni_reg_uv_close(alpha, on_closed, NULL);
    gni_reg_uv_close(gamma, on_closed, NULL);
    gni_reg_uv_close(dup, on_closed, NULL);
    RUN_UNTIL(closed == 4);
    CHECK_EQ(uv_run(&loop, UV_RUN_NOWAIT), 0);
    CHECK_OK(uv_loop_close(&loop));
    gn_edf_registry_free(reg);
}

GN_TEST_MAIN(GN_T(register_resolve_failover))
