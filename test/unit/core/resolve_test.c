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
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

typedef struct rs_out {
    int calls;
    int status;
    size_t n;
    char all[4][256]; /* the first four results */
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
    for (size_t i = 0; i < n && i < 4; i++)
        if (gn_multiaddr_to_string(addrs[i], o->all[i], sizeof o->all[i]) < 0)
            o->all[i][0] = '\0';
}

/* ---- a tiny answering DNS server on 127.0.0.1, served from run_until ---- */

typedef struct fake_rr {
    const char *name; /* the question's name, e.g. "_dnsaddr.a.test" */
    int type;         /* 16 TXT, 1 A */
    const char *data; /* TXT: the string; A: dotted quad */
} fake_rr;

static int fake_fd = -1;
static const fake_rr *fake_rrs;
static size_t fake_nrr;
static int fake_queries;

/* Answers every query waiting on fake_fd: the records of fake_rrs that
 * match name and type, else NXDOMAIN. */
static void fake_serve(void)
{
    uint8_t q[512], a[1500];
    struct sockaddr_in from;
    for (;;) {
        socklen_t fl = sizeof from;
        ssize_t len = recvfrom(fake_fd, q, sizeof q, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
        if (len < 12)
            return;
        fake_queries++;
        char name[256];
        size_t o = 12, nl = 0;
        while (o < (size_t)len && q[o] != 0 && nl + q[o] + 1 < sizeof name) {
            if (nl)
                name[nl++] = '.';
            memcpy(name + nl, q + o + 1, q[o]);
            nl += q[o];
            o += 1 + q[o];
        }
        name[nl] = '\0';
        size_t qend = o + 5; /* the zero label, type, class */
        if (qend > (size_t)len)
            continue;
        int qtype = q[o + 1] << 8 | q[o + 2];
        memcpy(a, q, qend);
        a[2] = 0x81; /* QR, RD */
        a[3] = 0x80; /* RA, NOERROR */
        a[6] = a[7] = a[8] = a[9] = a[10] = a[11] = 0;
        size_t w = qend, an = 0;
        bool known = false;
        for (size_t i = 0; i < fake_nrr; i++) {
            if (strcasecmp(fake_rrs[i].name, name) != 0)
                continue;
            known = true;
            if (fake_rrs[i].type != qtype)
                continue;
            uint8_t rd[256];
            size_t rdlen;
            if (qtype == 16) {
                rdlen = strlen(fake_rrs[i].data);
                rd[0] = (uint8_t)rdlen;
                memcpy(rd + 1, fake_rrs[i].data, rdlen);
                rdlen++;
            } else {
                inet_pton(AF_INET, fake_rrs[i].data, rd);
                rdlen = 4;
            }
            uint8_t hdr[12] = {0xc0, 0x0c, 0, (uint8_t)qtype, 0, 1, 0, 0, 0, 60,
                               0, (uint8_t)rdlen};
            memcpy(a + w, hdr, 12);
            memcpy(a + w + 12, rd, rdlen);
            w += 12 + rdlen;
            an++;
        }
        if (!known)
            a[3] |= 3; /* NXDOMAIN */
        a[7] = (uint8_t)an;
        (void)sendto(fake_fd, a, w, 0, (struct sockaddr *)&from, fl);
    }
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
        if (fake_fd >= 0)
            fake_serve();
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

/* A walk whose entries resolve partly at once (localhost from /etc/hosts,
 * answered inside ares_getaddrinfo()) and partly from the server: every
 * address arrives (the immediate answer does not end the resolution);
 * a nested name that fails does not turn the success's detail into an
 * error; two entries of one nested name with different peers both count. */
#define PA "12D3KooWPjceQrSwdWXPyLLeABRXmuqt69Rg3sBYbU1Nft9HyQ6X"
#define PB "QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN"
GN_TEST(resolve_walk_with_immediate_answers)
{
    static const fake_rr rrs[] = {
        {"_dnsaddr.a.test", 16, "dnsaddr=/dns4/localhost/tcp/1"},
        {"_dnsaddr.a.test", 16, "dnsaddr=/dns4/h.test/tcp/2"},
        {"h.test", 1, "10.9.8.7"},
        {"_dnsaddr.b.test", 16, "dnsaddr=/dnsaddr/nope.test"},
        {"_dnsaddr.b.test", 16, "dnsaddr=/ip4/10.0.0.1/tcp/3"},
        {"_dnsaddr.c.test", 16, "dnsaddr=/dnsaddr/x.test/p2p/" PA},
        {"_dnsaddr.c.test", 16, "dnsaddr=/dnsaddr/x.test/p2p/" PB},
        {"_dnsaddr.x.test", 16, "dnsaddr=/ip4/10.0.0.2/tcp/4/p2p/" PA},
        {"_dnsaddr.x.test", 16, "dnsaddr=/ip4/10.0.0.3/tcp/4/p2p/" PB},
    };
    int port = 0;
    fake_fd = silent_server(&port);
    CHECK(fake_fd >= 0);
    fake_rrs = rrs;
    fake_nrr = sizeof rrs / sizeof rrs[0];
    char servers[64];
    snprintf(servers, sizeof servers, "127.0.0.1:%d", port);
    gn_loop *loop = new_loop();
    gn_resolver_config cfg;
    gn_resolver_config_default(&cfg);
    cfg.servers = servers;
    cfg.timeout_ms = 500;
    gn_resolver *r = NULL;
    CHECK_EQ(gn_resolver_new(loop, &cfg, &r), 0);
    rs_out a = {0}, b = {0}, c = {0};
    CHECK_EQ(start(r, "/dnsaddr/a.test", &a, NULL), 0);
    CHECK_EQ(start(r, "/dnsaddr/b.test", &b, NULL), 0);
    CHECK_EQ(start(r, "/dnsaddr/c.test", &c, NULL), 0);
    rs_out *all[] = {&a, &b, &c};
    run_until(loop, all, 3, 5000);
    CHECK_EQ(a.calls, 1);
    if (a.status != 0)
        printf("# a.test: %s\n", a.detail);
    CHECK_EQ(a.status, 0);
    CHECK_EQ(a.n, 2);
    CHECK_STR(a.all[0], "/ip4/127.0.0.1/tcp/1");
    CHECK_STR(a.all[1], "/ip4/10.9.8.7/tcp/2");
    CHECK_EQ(b.status, 0);
    CHECK_EQ(b.n, 1);
    CHECK_STR(b.detail, "/dnsaddr/b.test"); /* not nope.test's NXDOMAIN */
    CHECK_EQ(c.status, 0);
    CHECK_EQ(c.n, 2);
    CHECK_STR(c.all[0], "/ip4/10.0.0.2/tcp/4/p2p/" PA);
    CHECK_STR(c.all[1], "/ip4/10.0.0.3/tcp/4/p2p/" PB);
    /* filtered by the target's /p2p suffix through the nested level: PB's goes */
    rs_out e = {0};
    CHECK_EQ(start(r, "/dnsaddr/c.test/p2p/" PA, &e, NULL), 0);
    rs_out *ee[] = {&e};
    run_until(loop, ee, 1, 5000);
    CHECK_EQ(e.status, 0);
    CHECK_EQ(e.n, 1);
    CHECK_STR(e.all[0], "/ip4/10.0.0.2/tcp/4/p2p/" PA);
    /* a failure still says which name failed */
    rs_out d = {0};
    CHECK_EQ(start(r, "/dnsaddr/nope.test", &d, NULL), 0);
    rs_out *dd[] = {&d};
    run_until(loop, dd, 1, 5000);
    CHECK_EQ(d.status, GN_ERESOLVE);
    CHECK(strstr(d.detail, "_dnsaddr.nope.test: NXDOMAIN") != NULL);
    gn_resolver_free(r);
    end_loop(loop);
    close(fake_fd);
    fake_fd = -1;
}

/* The whole resolution is bounded by deadline_ms, whatever c-ares' own
 * per-query timeouts and retries would allow. */
GN_TEST(resolve_deadline)
{
    int port = 0, fd = silent_server(&port);
    CHECK(fd >= 0);
    char servers[64];
    snprintf(servers, sizeof servers, "127.0.0.1:%d", port);
    gn_loop *loop = new_loop();
    gn_resolver_config cfg;
    gn_resolver_config_default(&cfg);
    cfg.servers = servers;
    cfg.timeout_ms = 5000;
    cfg.tries = 3;
    cfg.deadline_ms = 300;
    gn_resolver *r = NULL;
    CHECK_EQ(gn_resolver_new(loop, &cfg, &r), 0);
    rs_out t = {0};
    uint64_t t0 = uv_hrtime();
    CHECK_EQ(start(r, "/dnsaddr/slow.example.test/p2p/" PA, &t, NULL), 0);
    rs_out *one[] = {&t};
    run_until(loop, one, 1, 5000);
    uint64_t ms = (uv_hrtime() - t0) / 1000000u;
    CHECK_EQ(t.status, GN_ETIMEDOUT);
    CHECK(strstr(t.detail, "/dnsaddr/slow.example.test") != NULL);
    CHECK(strstr(t.detail, "300 ms") != NULL);
    CHECK(ms >= 250 && ms < 2000);
    gn_resolver_config_default(&cfg);
    cfg.deadline_ms = 0;
    gn_resolver *r2 = NULL;
    CHECK_EQ(gn_resolver_new(loop, &cfg, &r2), GN_EINVAL);
    gn_resolver_free(r);
    end_loop(loop);
    close(fd);
}

GN_TEST_MAIN(GN_T(resolve_passthrough_and_hosts), GN_T(resolve_timeout_cancel_and_free),
             GN_T(resolve_bad_config), GN_T(resolve_walk_with_immediate_answers),
             GN_T(resolve_deadline))
