/*
 * Unit tests for core/resolve_uv.c, the c-ares + libuv resolver, on a real
 * loop: completions counted (exactly once, never inside gn_resolve()),
 * /etc/hosts' localhost, a server that never answers (timeout, cancel,
 * freeing the resolver with queries in flight), bad configuration. The
 * answering server (dnsmasq) is exercised end to end by test/cli/dns_test.py.
 */
#include "golemnet/err.h"
#include "golemnet/loop.h"
#include "golemnet/multiaddr.h"
#include "golemnet/resolve.h"

#include "gn_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

typedef struct rs_out {
    int calls;
    int status;
    size_t n;
    char first[256];
    char detail[400];
    bool inside; /* set while gn_resolve() runs */
    bool called_inside;
} rs_out;

static void rs_cb(void *arg, int status, gn_multiaddr *const *addrs, size_t n, const char *detail)
{
    rs_out *o = arg;
    o->calls++;
    o->status = status;
    o->n = n;
    o->called_inside = o->called_inside || o->inside;
    snprintf(o->detail, sizeof o->detail, "%s", detail ? detail : "(null)");
    if (n > 0 && gn_multiaddr_to_string(addrs[0], o->first, sizeof o->first) < 0)
        o->first[0] = '\0';
}

static int start(gn_resolver *r, const char *s, rs_out *o, gn_op **op)
{
    gn_multiaddr *ma = NULL;
    if (gn_multiaddr_parse(s, &ma) != 0)
        return GN_EPARSE;
    o->inside = true;
    int rc = gn_resolve(r, ma, rs_cb, o, op);
    o->inside = false;
    gn_multiaddr_free(ma);
    return rc;
}

/* Runs @loop until every @o has one call, at most @ms milliseconds. */
static void run_until(gn_loop *loop, rs_out **o, size_t n, unsigned ms)
{
    uint64_t end = uv_hrtime() + (uint64_t)ms * 1000000u;
    for (;;) {
        bool all = true;
        for (size_t i = 0; i < n; i++)
            all = all && o[i]->calls > 0;
        if (all || uv_hrtime() > end)
            return;
        gn_loop_run(loop, GN_RUN_NOWAIT);
        uv_sleep(1);
    }
}

static gn_loop *new_loop(void)
{
    gn_loop_config cfg;
    gn_loop *loop = NULL;
    gn_loop_config_default(&cfg);
    return gn_loop_new(&cfg, &loop) == 0 ? loop : NULL;
}

static void end_loop(gn_loop *loop)
{
    for (int i = 0; i < 20; i++) /* let closing handles finish */
        gn_loop_run(loop, GN_RUN_NOWAIT);
    gn_loop_stop(loop);
    gn_loop_run(loop, GN_RUN_DEFAULT);
    gn_loop_free(loop);
}

/* A UDP socket on 127.0.0.1 that never answers; its port in *@port. */
static int silent_server(int *port)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        return -1;
    *port = ntohs(a.sin_port);
    return fd;
}

GN_TEST(resolve_passthrough_and_hosts)
{
    gn_loop *loop = new_loop();
    gn_resolver *r = NULL;
    CHECK(loop != NULL);
    CHECK_EQ(gn_resolver_new(loop, NULL, &r), 0);
    rs_out a = {0}, b = {0};
    CHECK_EQ(start(r, "/ip4/1.2.3.4/tcp/1", &a, NULL), 0);
    CHECK_EQ(start(r, "/dns4/localhost/tcp/5/p2p/12D3KooWPjceQrSwdWXPyLLeABRXmuqt69Rg3sBYbU1Nft9HyQ6X", &b, NULL), 0);
    CHECK_EQ(a.calls + b.calls, 0); /* never inside the call */
    rs_out *all[] = {&a, &b};
    run_until(loop, all, 2, 5000);
    CHECK_EQ(a.calls, 1);
    CHECK_EQ(a.status, 0);
    CHECK_STR(a.first, "/ip4/1.2.3.4/tcp/1");
    CHECK_EQ(b.calls, 1);
    if (b.status != 0)
        printf("# localhost: %s\n", b.detail);
    CHECK_EQ(b.status, 0);
    CHECK_STR(b.first, "/ip4/127.0.0.1/tcp/5/p2p/12D3KooWPjceQrSwdWXPyLLeABRXmuqt69Rg3sBYbU1Nft9HyQ6X");
    CHECK(!a.called_inside && !b.called_inside);
    /* a relayed address: the relay's part is resolved, the circuit kept */
    rs_out c = {0};
#define RELAY "12D3KooWPjceQrSwdWXPyLLeABRXmuqt69Rg3sBYbU1Nft9HyQ6X"
#define TARGET "QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN"
    CHECK_EQ(start(r, "/dns4/localhost/tcp/7/p2p/" RELAY "/p2p-circuit/p2p/" TARGET, &c, NULL), 0);
    rs_out *cc[] = {&c};
    run_until(loop, cc, 1, 5000);
    CHECK_EQ(c.status, 0);
    CHECK_STR(c.first, "/ip4/127.0.0.1/tcp/7/p2p/" RELAY "/p2p-circuit/p2p/" TARGET);
    gn_resolver_free(r);
    end_loop(loop);
}

GN_TEST(resolve_timeout_cancel_and_free)
{
    int port = 0, fd = silent_server(&port);
    CHECK(fd >= 0);
    char servers[64];
    snprintf(servers, sizeof servers, "127.0.0.1:%d", port);
    gn_loop *loop = new_loop();
    gn_resolver_config cfg;
    gn_resolver_config_default(&cfg);
    cfg.servers = servers;
    cfg.timeout_ms = 200;
    cfg.tries = 1;
    gn_resolver *r = NULL;
    CHECK_EQ(gn_resolver_new(loop, &cfg, &r), 0);
    /* a timeout names the name */
    rs_out t = {0};
    uint64_t t0 = uv_hrtime();
    CHECK_EQ(start(r, "/dns4/slow.example.test/tcp/1", &t, NULL), 0);
    rs_out *one[] = {&t};
    run_until(loop, one, 1, 5000);
    CHECK_EQ(t.calls, 1);
    CHECK_EQ(t.status, GN_ETIMEDOUT);
    CHECK(strstr(t.detail, "slow.example.test") != NULL);
    CHECK(strstr(t.detail, "timeout") != NULL);
    CHECK((uv_hrtime() - t0) / 1000000u < 3000);
    /* cancel: once, GN_ECANCELED, later */
    rs_out c = {0};
    gn_op *op = NULL;
    CHECK_EQ(start(r, "/dnsaddr/slow.example.test", &c, &op), 0);
    CHECK(op != NULL);
    gn_op_cancel(op);
    gn_op_cancel(op); /* again before the callback: a no-op */
    CHECK_EQ(c.calls, 0);
    rs_out *cc[] = {&c};
    run_until(loop, cc, 1, 2000);
    CHECK_EQ(c.calls, 1);
    CHECK_EQ(c.status, GN_ECANCELED);
    /* freeing with queries in flight: each completes once with GN_ECANCELED */
    rs_out p1 = {0}, p2 = {0};
    CHECK_EQ(start(r, "/dns6/a.example.test", &p1, NULL), 0);
    CHECK_EQ(start(r, "/dnsaddr/b.example.test", &p2, NULL), 0);
    gn_loop_run(loop, GN_RUN_NOWAIT);
    gn_resolver_free(r);
    CHECK_EQ(p1.calls + p2.calls, 0);
    rs_out *pp[] = {&p1, &p2};
    run_until(loop, pp, 2, 2000);
    CHECK_EQ(p1.calls, 1);
    CHECK_EQ(p2.calls, 1);
    CHECK_EQ(p1.status, GN_ECANCELED);
    CHECK_EQ(p2.status, GN_ECANCELED);
    end_loop(loop);
    CHECK_EQ(c.calls, 1); /* nothing more after the close */
    close(fd);
}

GN_TEST(resolve_bad_config)
{
    gn_loop *loop = new_loop();
    gn_resolver_config cfg;
    gn_resolver *r = NULL;
    gn_resolver_config_default(&cfg);
    cfg.timeout_ms = 0;
    CHECK_EQ(gn_resolver_new(loop, &cfg, &r), GN_EINVAL);
    gn_resolver_config_default(&cfg);
    cfg.max_results = 65;
    CHECK_EQ(gn_resolver_new(loop, &cfg, &r), GN_EINVAL);
    gn_resolver_config_default(&cfg);
    cfg.servers = "not an address";
    CHECK_EQ(gn_resolver_new(loop, &cfg, &r), GN_EINVAL);
    CHECK(r == NULL);
    CHECK_EQ(gn_resolver_new(NULL, NULL, &r), GN_EINVAL);
    CHECK_EQ(gn_resolver_new(loop, NULL, &r), 0);
    rs_out o = {0};
    CHECK_EQ(gn_resolve(r, NULL, rs_cb, &o, NULL), GN_EINVAL);
    gn_resolver_free(r);
    end_loop(loop);
}

GN_TEST_MAIN(GN_T(resolve_passthrough_and_hosts), GN_T(resolve_timeout_cancel_and_free),
             GN_T(resolve_bad_config))
