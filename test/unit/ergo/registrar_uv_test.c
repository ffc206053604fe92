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

/* ---- deadlines and the resolve reply's source (a fake registrar owns the port) ---- */

typedef struct fake {
    uv_tcp_t listener;
    uv_tcp_t conn[4];
    unsigned accepted, eofs;
    uint64_t accept_ms[4], eof_ms[4];
    uv_udp_t udp, spoof;
    struct sockaddr_storage asker;
    bool asked;
} fake;

static void fake_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    static char mem[4096];
    (void)h;
    (void)sz;
    *b = uv_buf_init(mem, sizeof mem);
}

static void fake_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    fake *f = s->data;
    (void)b;
    if (nread < 0) {
        for (unsigned i = 0; i < f->accepted; i++)
            if ((uv_stream_t *)&f->conn[i] == s)
                f->eof_ms[i] = uv_now(&loop);
        f->eofs++;
        uv_read_stop(s);
    }
}

static void fake_conn(uv_stream_t *l, int status)
{
    fake *f = l->data;
    if (status < 0 || f->accepted >= 4)
        return;
    uv_tcp_t *c = &f->conn[f->accepted];
    uv_tcp_init(&loop, c);
    c->data = f;
    CHECK_OK(uv_accept(l, (uv_stream_t *)c));
    f->accept_ms[f->accepted++] = uv_now(&loop);
    uv_read_start((uv_stream_t *)c, fake_alloc, fake_read); /* and never answer */
}

static void fake_udp(uv_udp_t *u, ssize_t nread, const uv_buf_t *b, const struct sockaddr *from,
                     unsigned flags)
{
    fake *f = u->data;
    (void)b;
    (void)flags;
    if (nread > 0 && from) {
        memcpy(&f->asker, from, sizeof(struct sockaddr_in));
        f->asked = true;
    }
}

static void fake_handle_closed(uv_handle_t *h)
{
    (void)h;
    closed++;
}

static void run_for_fired(uv_timer_t *t) { *(bool *)t->data = true; }

/* runs the loop for @ms of loop time (a timer keeps it from blocking) */
static void run_for(uint64_t ms)
{
    uv_timer_t t;
    bool fired = false;
    uv_timer_init(&loop, &t);
    t.data = &fired;
    uv_timer_start(&t, run_for_fired, ms, 0);
    RUN_UNTIL(fired);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
}

/* a 100 ms tick keeps uv_run from blocking, so RUN_UNTIL's bound holds even when the
 * code under test arms no timer (a missing deadline fails instead of hanging) */
static uv_timer_t tick;
static void on_tick(uv_timer_t *t) { (void)t; }

static void udp_send_done(uv_udp_send_t *s, int status)
{
    (void)status;
    (void)s;
}

GN_TEST(register_deadline_and_resolve_source)
{
    CHECK_OK(uv_loop_init(&loop));
    gn_edf_registry *reg = gn_edf_registry_new();
    CHECK_OK(gn_edf_registry_add_ergo(reg));
    gn_edf_registry_freeze(reg);
    uint16_t port = (uint16_t)(30000 + (getpid() + 3571) % 20000);
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, on_tick, 100, 100);
    fake f;
    memset(&f, 0, sizeof f);
    struct sockaddr_in lo, any, lo0;
    uv_ip4_addr("127.0.0.1", port, &lo);
    uv_ip4_addr("0.0.0.0", port, &any);
    uv_ip4_addr("127.0.0.1", 0, &lo0);
    uv_tcp_init(&loop, &f.listener);
    uv_udp_init(&loop, &f.udp);
    uv_udp_init(&loop, &f.spoof);
    f.listener.data = f.udp.data = f.spoof.data = &f;
    if (uv_tcp_bind(&f.listener, (const struct sockaddr *)&lo, 0) != 0 ||
        uv_listen((uv_stream_t *)&f.listener, 8, fake_conn) != 0 ||
        uv_udp_bind(&f.udp, (const struct sockaddr *)&any, 0) != 0)
        SKIP("the test port is taken");
    CHECK_OK(uv_udp_bind(&f.spoof, (const struct sockaddr *)&lo0, 0));
    CHECK_OK(uv_udp_recv_start(&f.udp, fake_alloc, fake_udp));

    /* the port is owned by a registrar that never answers a Register: the client gives
     * up after 1 s (closes), pauses 1 s, and tries again */
    gni_reg_route ra = gni_reg_route_ergo(11145, false);
    gni_reg_uv *alpha = start(reg, "alpha@localhost", &ra, port);
    RUN_UNTIL(f.accepted >= 1);
    RUN_UNTIL(f.eofs >= 1);
    uint64_t waited = f.eof_ms[0] - f.accept_ms[0];
    CHECK(waited >= 900 && waited <= 1800);
    RUN_UNTIL(f.accepted >= 2);
    CHECK(f.accept_ms[1] - f.eof_ms[0] >= 900); /* the failover pause */
    CHECK_EQ(gni_reg_uv_role(alpha), GNI_REG_ROLE_NONE);

    /* a resolve goes to UDP port; a reply from another socket is ignored, the one from
     * the address asked is taken */
    res r;
    memset(&r, 0, sizeof r);
    CHECK_OK(gni_reg_uv_resolve(alpha, "beta@localhost", on_resolved, &r));
    RUN_UNTIL(f.asked);
    gn_edf_arena *a = gn_edf_arena_new(1024, 1u << 20);
    CHECK(a != NULL);
    uint8_t spoofed[512], genuine[512];
    gn_buf b;
    gni_reg_route fake_rt = gni_reg_route_ergo(6666, false),
                  real_rt = gni_reg_route_ergo(7777, false);
    gni_reg_packet p = {.type = GNI_REG_RESOLVE_REPLY, .routes = &fake_rt, .nroutes = 1,
                        .error_nil = true};
    gn_buf_init(&b, spoofed, sizeof spoofed);
    CHECK(gni_reg_build(reg, a, &p, &b) > 0);
    uv_buf_t ub = uv_buf_init((char *)spoofed, (unsigned)gn_buf_len(&b));
    uv_udp_send_t s1, s2;
    CHECK_OK(uv_udp_send(&s1, &f.spoof, &ub, 1, (const struct sockaddr *)&f.asker,
                         udp_send_done));
    run_for(300);
    CHECK(!r.done); /* still waiting */
    p.routes = &real_rt;
    gn_edf_arena_reset(a);
    gn_buf_init(&b, genuine, sizeof genuine);
    CHECK(gni_reg_build(reg, a, &p, &b) > 0);
    ub = uv_buf_init((char *)genuine, (unsigned)gn_buf_len(&b));
    CHECK_OK(uv_udp_send(&s2, &f.udp, &ub, 1, (const struct sockaddr *)&f.asker,
                         udp_send_done));
    RUN_UNTIL(r.done);
    CHECK_OK(r.err);
    CHECK_EQ(r.port, 7777);
    gn_edf_arena_free(a);

    closed = 0;
    gni_reg_uv_close(alpha, on_closed, NULL);
    for (unsigned i = 0; i < f.accepted; i++)
        uv_close((uv_handle_t *)&f.conn[i], fake_handle_closed);
    uv_close((uv_handle_t *)&f.listener, fake_handle_closed);
    uv_close((uv_handle_t *)&f.udp, fake_handle_closed);
    uv_close((uv_handle_t *)&f.spoof, fake_handle_closed);
    uv_close((uv_handle_t *)&tick, fake_handle_closed);
    unsigned want = 5 + f.accepted;
    RUN_UNTIL(closed == want);
    CHECK_EQ(uv_run(&loop, UV_RUN_NOWAIT), 0);
    CHECK_OK(uv_loop_close(&loop));
    gn_edf_registry_free(reg);
}

/* the server closes a registration connection that sends nothing within 1 s */
static void silent_connected(uv_connect_t *c, int status)
{
    fake *f = c->data;
    CHECK_OK(status);
    f->accept_ms[0] = uv_now(&loop);
    f->accepted = 1;
    f->conn[0].data = f;
    uv_read_start((uv_stream_t *)&f->conn[0], fake_alloc, fake_read);
}

GN_TEST(server_closes_a_silent_registration)
{
    CHECK_OK(uv_loop_init(&loop));
    gn_edf_registry *reg = gn_edf_registry_new();
    CHECK_OK(gn_edf_registry_add_ergo(reg));
    gn_edf_registry_freeze(reg);
    uint16_t port = (uint16_t)(30000 + (getpid() + 1237) % 20000);
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, on_tick, 100, 100);
    gni_reg_route rb = gni_reg_route_ergo(11144, false);
    gni_reg_uv *beta = start(reg, "beta@localhost", &rb, port);
    RUN_UNTIL(gni_reg_uv_role(beta) != GNI_REG_ROLE_NONE);
    if (gni_reg_uv_role(beta) != GNI_REG_ROLE_SERVER) {
        gni_reg_uv_close(beta, NULL, NULL);
        SKIP("the test port is taken");
    }
    fake f;
    memset(&f, 0, sizeof f);
    struct sockaddr_in lo;
    uv_ip4_addr("127.0.0.1", port, &lo);
    uv_connect_t creq;
    creq.data = &f;
    uv_tcp_init(&loop, &f.conn[0]);
    CHECK_OK(uv_tcp_connect(&creq, &f.conn[0], (const struct sockaddr *)&lo, silent_connected));
    RUN_UNTIL(f.accepted == 1);
    RUN_UNTIL(f.eofs == 1);
    uint64_t waited = f.eof_ms[0] - f.accept_ms[0];
    CHECK(waited >= 900 && waited <= 1800);
    /* a registration that does speak still works afterwards */
    gni_reg_route ra = gni_reg_route_ergo(11145, false);
    gni_reg_uv *alpha = start(reg, "alpha@localhost", &ra, port);
    RUN_UNTIL(gni_reg_uv_role(alpha) == GNI_REG_ROLE_CLIENT);
    run_for(1500); /* the lease outlives the deadline */
    CHECK_EQ(gni_reg_uv_role(alpha), GNI_REG_ROLE_CLIENT);
    res r;
    resolve(beta, "alpha@localhost", &r);
    CHECK_OK(r.err);
    CHECK_EQ(r.port, 11145);

    closed = 0;
    uv_close((uv_handle_t *)&f.conn[0], fake_handle_closed);
    uv_close((uv_handle_t *)&tick, fake_handle_closed);
    gni_reg_uv_close(alpha, on_closed, NULL);
    gni_reg_uv_close(beta, on_closed, NULL);
    RUN_UNTIL(closed == 4);
    CHECK_EQ(uv_run(&loop, UV_RUN_NOWAIT), 0);
    CHECK_OK(uv_loop_close(&loop));
    gn_edf_registry_free(reg);
}

GN_TEST_MAIN(GN_T(register_resolve_failover), GN_T(register_deadline_and_resolve_source),
             GN_T(server_closes_a_silent_registration))
