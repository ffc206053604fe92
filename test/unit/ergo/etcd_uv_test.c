/*
 * etcd_uv_test: the etcd registrar adapter (protocols/ergo/etcd_uv.c)
 * against a real etcd that the test starts on 127.0.0.1 (free client and
 * peer ports, a data dir in a fresh temp dir; killed and removed at the
 * end; skipped when no `etcd` binary is installed: apt-get install
 * etcd-server). Two golemnet nodes register and resolve each other; a
 * third with the same name is refused as Ergo refuses it; a value written
 * in Ergo's layout by the test, as a Go node writes it, is resolved; a
 * lease that nobody renews expires (and the watcher sees the node leave);
 * a lease revoked behind a node's back makes it register again; close
 * with revoke removes the key at once; the loop ends empty.
 */
#define _XOPEN_SOURCE 700
#include "gn_test.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "etcd_uv.h"
#include "golemnet/edf.h"
#include "golemnet/err.h"

static uv_loop_t loop;

#define RUN_UNTIL_MS(cond, ms)                                                               \
    do {                                                                                     \
        uint64_t t0_ = uv_now(&loop);                                                        \
        while (!(cond) && uv_now(&loop) - t0_ < (ms)) {                                      \
            uv_run(&loop, UV_RUN_ONCE);                                                      \
            uv_update_time(&loop);                                                           \
        }                                                                                    \
        CHECK(cond);                                                                         \
    } while (0)
#define RUN_UNTIL(cond) RUN_UNTIL_MS(cond, 15000)

#include "etcd_server.h"

/* ---- clients ------------------------------------------------------------------------- */

typedef struct node_ev {
    char name[64];
    bool joined;
} node_ev;

typedef struct client {
    gni_etcd_uv *e;
    gni_etcd_uv_state st;
    int err;
    unsigned changes;
    node_ev ev[32];
    unsigned nev;
} client;

static void on_state(gni_etcd_uv *e, gni_etcd_uv_state st, int err, const char *why, void *ud)
{
    (void)e;
    client *c = ud;
    c->st = st;
    c->err = err;
    c->changes++;
    if (err)
        printf("# state %d: %s\n", (int)st, why);
}

static void on_node(gni_etcd_uv *e, gn_slice node, bool joined, void *ud)
{
    (void)e;
    client *c = ud;
    if (c->nev < 32) {
        snprintf(c->ev[c->nev].name, 64, "%.*s", (int)node.len, (const char *)node.base);
        c->ev[c->nev].joined = joined;
        c->nev++;
    }
}

static bool saw(const client *c, const char *name, bool joined)
{
    for (unsigned i = 0; i < c->nev; i++)
        if (strcmp(c->ev[i].name, name) == 0 && c->ev[i].joined == joined)
            return true;
    return false;
}

static gni_reg_route routes[4];

static void start(client *c, const gn_edf_registry *reg, const char *ep, const char *node,
                  uint16_t port, bool watch, uint32_t ttl)
{
    memset(c, 0, sizeof *c);
    gni_etcd_uv_options o;
    memset(&o, 0, sizeof o);
    o.reg = reg;
    o.endpoint = ep;
    o.cluster = "gn-test";
    o.node = node;
    static unsigned k;
    gni_reg_route *r = &routes[k++ % 4];
    *r = gni_reg_route_ergo(port, false);
    o.routes = r;
    o.nroutes = 1;
    o.lease_ttl_s = ttl;
    o.timeout_ms = 3000;
    o.retry_ms = 300;
    o.watch = watch;
    o.on_state = on_state;
    o.on_node = on_node;
    o.user_data = c;
    CHECK_OK(gni_etcd_uv_start(&loop, &o, &c->e));
}

typedef struct res {
    bool done;
    int err;
    uint32_t n;
    gni_reg_route r[4];
    char host[4][32];
} res;

static void on_resolved(int err, const gni_reg_route *rt, uint32_t n, void *ud)
{
    res *r = ud;
    r->done = true;
    r->err = err;
    r->n = n;
    for (uint32_t i = 0; i < n && i < 4; i++) {
        r->r[i] = rt[i];
        snprintf(r->host[i], 32, "%.*s", (int)rt[i].host.len, (const char *)rt[i].host.base);
    }
}

static void resolve(client *c, const char *node, res *r)
{
    memset(r, 0, sizeof *r);
    CHECK_OK(gni_etcd_uv_resolve(c->e, node, on_resolved, r));
    RUN_UNTIL(r->done);
}

static unsigned closed;
static void on_closed(void *ud)
{
    (void)ud;
    closed++;
}

/* A resolve callback that closes the client it came from (inside the response's feed). */
static gni_etcd_uv *selfclose_e;
static int selfclose_err = 1;
static void on_resolved_close(int err, const gni_reg_route *rt, uint32_t n, void *ud)
{
    (void)rt, (void)n, (void)ud;
    selfclose_err = err;
    gni_etcd_uv_close(selfclose_e, true, on_closed, NULL);
}

GN_TEST(etcd_register_resolve_expire)
{
    signal(SIGPIPE, SIG_IGN);
    if (!find_etcd())
        SKIP("no etcd binary (apt-get install etcd-server)");
    CHECK(etcd_start());
    CHECK_OK(uv_loop_init(&loop));
    gn_edf_registry *reg = gn_edf_registry_new();
    CHECK_OK(gn_edf_registry_add_ergo(reg));
    gn_edf_registry_freeze(reg);

    /* beta first (it watches), then alpha: beta sees alpha join */
    client alpha, beta, dup, gamma;
    start(&beta, reg, endpoint, "beta@localhost", 11146, true, 10);
    RUN_UNTIL(beta.st == GNI_ETCD_UV_REGISTERED);
    CHECK(gni_etcd_uv_lease(beta.e) > 0);
    start(&alpha, reg, endpoint, "alpha@localhost", 11145, false, 2);
    RUN_UNTIL(alpha.st == GNI_ETCD_UV_REGISTERED);
    RUN_UNTIL(saw(&beta, "alpha@localhost", true));
    CHECK(!saw(&beta, "beta@localhost", true)); /* not itself */

    res r;
    resolve(&alpha, "beta@localhost", &r);
    CHECK_OK(r.err);
    CHECK_EQ(r.n, 1);
    CHECK_EQ(r.r[0].port, 11146);
    CHECK_STR(r.host[0], ""); /* Ergo's routes: Host empty, the dialer uses the name's host */
    resolve(&beta, "alpha@localhost", &r);
    CHECK_OK(r.err);
    CHECK_EQ(r.r[0].port, 11145);
    resolve(&beta, "nobody@localhost", &r);
    CHECK_EQ(r.err, GN_ENOTFOUND);

    /* the same name again: refused as Ergo refuses it (gen.ErrTaken), alpha keeps its key */
    start(&dup, reg, endpoint, "alpha@localhost", 12000, false, 10);
    RUN_UNTIL(dup.st == GNI_ETCD_UV_TAKEN);
    CHECK_EQ(dup.err, GN_EEXIST);
    CHECK(strstr(gni_etcd_uv_diag(dup.e), "taken") != NULL);
    resolve(&beta, "alpha@localhost", &r);
    CHECK_EQ(r.r[0].port, 11145);

    /* a Go node's registration, written by the test in Ergo's layout under a lease: base64 of
     * EDF []gen.Route{{Port 15000}, {Host "10.0.0.7", Port 15001, TLS}} (etcd_test VALUE2) */
    static const char go_value[] =
        "ggAhnYMAHSNlcmdvLnNlcnZpY2VzL2VyZ28vZ2VuL1JvdXRlnQAAAAIAADqYAAADRUhTAAJSMQAAAANNSVQAA0VO"
        "UAACUjEAAAADTUlUAAgxMC4wLjAuNzqZAQADRUhTAAJSMQAAAANNSVQAA0VOUAACUjEAAAADTUlU";
    static const char go_key[] = "services/ergo/cluster/gn-test/routes/nodes/gonode@localhost";
    gni_etcd_req g = {.op = GNI_ETCD_GRANT, .ttl_s = 30};
    raw_res x = raw_call(&g);
    CHECK_OK(x.err);
    int64_t go_lease = x.lease;
    gni_etcd_req put = {.op = GNI_ETCD_TXN_CREATE, .key = gn_slice_of(go_key, strlen(go_key)),
                        .value = gn_slice_of(go_value, strlen(go_value)), .lease = go_lease};
    x = raw_call(&put);
    CHECK(x.succeeded);
    RUN_UNTIL(saw(&beta, "gonode@localhost", true));
    resolve(&alpha, "gonode@localhost", &r);
    CHECK_OK(r.err);
    CHECK_EQ(r.n, 2);
    CHECK_EQ(r.r[0].port, 15000);
    CHECK_EQ(r.r[1].port, 15001);
    CHECK(r.r[1].tls);
    CHECK_STR(r.host[1], "10.0.0.7");
    /* and the Go node cannot take beta's name either (the same transaction) */
    static const char beta_key[] = "services/ergo/cluster/gn-test/routes/nodes/beta@localhost";
    put.key = gn_slice_of(beta_key, strlen(beta_key));
    x = raw_call(&put);
    CHECK_OK(x.err);
    CHECK(!x.succeeded);
    /* a value that is not Ergo's: resolve says so */
    static const char junk_key[] = "services/ergo/cluster/gn-test/routes/nodes/junk@localhost";
    gni_etcd_req pj = {.op = GNI_ETCD_PUT, .key = gn_slice_of(junk_key, strlen(junk_key)),
                       .value = gn_slice_of("hello", 5)};
    x = raw_call(&pj);
    CHECK_OK(x.err);
    resolve(&alpha, "junk@localhost", &r);
    CHECK_EQ(r.err, GN_EPARSE);

    /* a lease revoked behind alpha's back: its renewal finds it gone, it registers again */
    int64_t old = gni_etcd_uv_lease(alpha.e);
    gni_etcd_req rv = {.op = GNI_ETCD_REVOKE, .lease = old};
    x = raw_call(&rv);
    CHECK_OK(x.err);
    RUN_UNTIL(alpha.st == GNI_ETCD_UV_REGISTERED && gni_etcd_uv_lease(alpha.e) != old &&
              gni_etcd_uv_lease(alpha.e) != 0);
    RUN_UNTIL(saw(&beta, "alpha@localhost", false)); /* the revoke deleted the key ... */
    resolve(&beta, "alpha@localhost", &r);           /* ... and alpha put it back */
    CHECK_OK(r.err);
    CHECK_EQ(r.r[0].port, 11145);

    /* alpha stops without revoking (as a node that dies): its 2 s lease expires */
    beta.nev = 0;
    closed = 0;
    gni_etcd_uv_close(alpha.e, false, on_closed, NULL);
    RUN_UNTIL(closed == 1);
    resolve(&beta, "alpha@localhost", &r);
    CHECK_OK(r.err); /* still there right after */
    RUN_UNTIL_MS(saw(&beta, "alpha@localhost", false), 10000);
    resolve(&beta, "alpha@localhost", &r);
    CHECK_EQ(r.err, GN_ENOTFOUND);

    /* gamma registers, then closes with revoke: the key goes at once */
    start(&gamma, reg, endpoint, "gamma@localhost", 11147, false, 30);
    RUN_UNTIL(gamma.st == GNI_ETCD_UV_REGISTERED);
    RUN_UNTIL(saw(&beta, "gamma@localhost", true));
    gni_etcd_uv_close(gamma.e, true, on_closed, NULL);
    RUN_UNTIL(closed == 2);
    resolve(&beta, "gamma@localhost", &r);
    CHECK_EQ(r.err, GN_ENOTFOUND);

    /* a callback may close the client that called it */
    client sc;
    start(&sc, reg, endpoint, NULL, 1, true, 10);
    selfclose_e = sc.e;
    CHECK_OK(gni_etcd_uv_resolve(sc.e, "beta@localhost", on_resolved_close, NULL));
    RUN_UNTIL(closed == 3);
    CHECK_EQ(selfclose_err, 0);

    /* nothing listens: a clear connection error */
    client none;
    char dead[64];
    snprintf(dead, sizeof dead, "127.0.0.1:%u", free_port());
    start(&none, reg, dead, NULL, 1, false, 10);
    resolve(&none, "beta@localhost", &r);
    CHECK_EQ(r.err, GN_ECONNREFUSED);
    CHECK(strstr(gni_etcd_uv_diag(none.e), "cannot connect to etcd at 127.0.0.1:") != NULL);
    /* a resolve pending at close completes, canceled */
    res pend;
    memset(&pend, 0, sizeof pend);
    CHECK_OK(gni_etcd_uv_resolve(beta.e, "gonode@localhost", on_resolved, &pend));
    gni_etcd_uv_close(beta.e, true, on_closed, NULL);
    gni_etcd_uv_close(dup.e, true, on_closed, NULL);
    gni_etcd_uv_close(none.e, true, on_closed, NULL);
    RUN_UNTIL(closed == 6);
    CHECK(pend.done);
    CHECK(pend.err == GN_ECANCELED || pend.err == 0);

    /* bad options are refused with the reason logged */
    gni_etcd_uv *bad = NULL;
    gni_etcd_uv_options o;
    memset(&o, 0, sizeof o);
    o.reg = reg;
    o.endpoint = "etcd.example:2379";
    CHECK_EQ(gni_etcd_uv_start(&loop, &o, &bad), GN_EINVAL);
    o.endpoint = "https://127.0.0.1:2379";
    CHECK_EQ(gni_etcd_uv_start(&loop, &o, &bad), GN_EINVAL);
    o.endpoint = endpoint;
    o.node = "no-at-sign";
    CHECK_EQ(gni_etcd_uv_start(&loop, &o, &bad), GN_EINVAL);
    o.node = "a@b";
    o.cluster = "x/y";
    CHECK_EQ(gni_etcd_uv_start(&loop, &o, &bad), GN_EINVAL);
    CHECK(bad == NULL);

    CHECK_EQ(uv_run(&loop, UV_RUN_NOWAIT), 0);
    CHECK_OK(uv_loop_close(&loop));
    gn_edf_registry_free(reg);
    etcd_stop();
}

static void cleanup(void)
{
    etcd_stop();
}

int main(int argc, char **argv)
{
    atexit(cleanup);
    static const gn_test_case cases[] = {GN_T(etcd_register_resolve_expire)};
    return gn_test_run(cases, 1, argc, argv);
}
