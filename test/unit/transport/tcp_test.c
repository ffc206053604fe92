/*
 * TCP transport specifics (layers/transport/tcp/tcp_uv.c): IPv6 loopback,
 * socket options, SO_REUSEADDR rebinding, EADDRINUSE, dial timeout,
 * max_connections, the write queue bound, application keepalive and DNS
 * addresses, port reuse (dials from the listen port, a simultaneous open).
 * Only loopback addresses are ever dialed. The shared behaviour
 * is in test/conformance/transport_conformance.c.
 */
#include "transport/tr_harness.h"
#include "syn_drop.h"

#include "gn_test_os.h" /* raw sockets: POSIX or Winsock */

#include <errno.h>

static gn_transport_config cfg_default(void)
{
    gn_transport_config c;
    gn_transport_config_default(&c);
    return c;
}

/* Port of a /ip4|ip6/../tcp/N multiaddr. */
static unsigned ma_port(const gn_multiaddr *ma)
{
    gn_ma_component c;
    if (gn_multiaddr_find(ma, GN_MA_TCP, &c) < 0 || c.value_len != 2) {
        return 0;
    }
    return (unsigned)(c.value[0] << 8 | c.value[1]);
}

GN_TEST(ipv6_loopback)
{
    char buf[128];
    tr_env_init("tcp", NULL, NULL, false);
    E.srv_prof = (tr_profile){.echo = true, .close_on_eof = true};
    gn_listener *l;
    int rc = tr_listen(E.srv, "/ip6/::1/tcp/0", &l);
    if (rc == GN_EADDRNOTAVAIL || rc == GN_ENOTSUP || rc == GN_EINVAL) {
        tr_env_fini();
        SKIP("no IPv6 loopback here");
    }
    CHECK_OK(rc);
    gn_multiaddr *la = NULL;
    CHECK_OK(gn_listener_addr(l, &la));
    CHECK_OK(gn_multiaddr_to_string(la, buf, sizeof buf));
    CHECK(strncmp(buf, "/ip6/::1/tcp/", 13) == 0);
    CHECK(ma_port(la) != 0);
    tconn *c = tc_new(&(tr_profile){.rx_cap = 16}, false);
    CHECK_OK(tr_dial_ma(E.cli, la, c));
    RUN_UNTIL(c->s != NULL, 5000);
    CHECK_OK(tc_send(c, "v6 hello", 8));
    RUN_UNTIL(c->rx_total == 8, 5000);
    CHECK_MEM(c->rx, "v6 hello", 8);
    gn_multiaddr *local = NULL, *remote = NULL;
    CHECK_OK(gn_stream_addr(c->s, GN_ADDR_LOCAL, &local));
    CHECK_OK(gn_stream_addr(c->s, GN_ADDR_REMOTE, &remote));
    CHECK(gn_multiaddr_equal(remote, la));
    CHECK_OK(gn_multiaddr_to_string(local, buf, sizeof buf));
    CHECK(strncmp(buf, "/ip6/::1/tcp/", 13) == 0);
    gn_multiaddr_free(local);
    gn_multiaddr_free(remote);
    gn_multiaddr_free(la);
    tc_close(c);
    tr_listener_close(l);
    tr_env_fini();
}

GN_TEST(listen_several_and_addrinuse)
{
    tr_env_init("tcp", NULL, NULL, false);
    gn_listener *l1, *l2, *l3;
    gn_multiaddr *a1 = NULL, *a2 = NULL;
    CHECK_OK(tr_listen(E.srv, "/ip4/127.0.0.1/tcp/0", &l1));
    CHECK_OK(tr_listen(E.srv, "/ip4/127.0.0.1/tcp/0", &l2));
    CHECK_OK(gn_listener_addr(l1, &a1));
    CHECK_OK(gn_listener_addr(l2, &a2));
    unsigned p1 = ma_port(a1), p2 = ma_port(a2);
    CHECK(p1 != 0 && p2 != 0 && p1 != p2);
    /* the same concrete port again: in use (SO_REUSEADDR does not allow two
     * listeners on one address) */
    char addr[64];
    snprintf(addr, sizeof addr, "/ip4/127.0.0.1/tcp/%u", p1);
    CHECK_EQ(tr_listen(E.srv, addr, &l3), GN_EADDRINUSE);
    /* a dial reaches each listener */
    tconn *c1 = tc_new(NULL, false), *c2 = tc_new(NULL, false);
    CHECK_OK(tr_dial_ma(E.cli, a1, c1));
    CHECK_OK(tr_dial_ma(E.cli, a2, c2));
    RUN_UNTIL(E.accepts == 2 && c1->s && c2->s, 5000);
    /* a listen address that is not local */
    CHECK_EQ(tr_listen(E.srv, "/ip4/192.0.2.1/tcp/0", &l3), GN_EADDRNOTAVAIL);
    gn_multiaddr_free(a1);
    gn_multiaddr_free(a2);
    tr_listener_close(l1);
    tr_listener_close(l2);
    tr_env_fini();
}

/* Checks socket options on every libuv TCP handle of the loop. */
typedef struct sockopt_report {
    int listeners, conns;
    int bad_reuse, bad_v6only, bad_nodelay, bad_keepalive, bad_keepidle;
    int want_nodelay, want_keepalive, want_idle;
} sockopt_report;

static void sockopt_walk(uv_handle_t *h, void *arg)
{
    sockopt_report *r = arg;
    uv_os_fd_t fd;
    if (uv_handle_get_type(h) != UV_TCP || uv_is_closing(h) || uv_fileno(h, &fd) != 0) {
        return;
    }
    int v = 0;
    socklen_t len = sizeof v;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    gts_sock s = (gts_sock)(uintptr_t)fd;
    getsockname(s, (struct sockaddr *)&ss, &sl);
    getsockopt(s, SOL_SOCKET, SO_ACCEPTCONN, (char *)&v, &len);
    if (v) {
        r->listeners++;
        len = sizeof v;
        getsockopt(s, SOL_SOCKET, SO_REUSEADDR, (char *)&v, &len);
        r->bad_reuse += v == 0;
        if (ss.ss_family == AF_INET6) {
            len = sizeof v;
            getsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, (char *)&v, &len);
            r->bad_v6only += v == 0;
        }
        return;
    }
    r->conns++;
    len = sizeof v;
    getsockopt(s, IPPROTO_TCP, TCP_NODELAY, (char *)&v, &len);
    r->bad_nodelay += (v != 0) != (r->want_nodelay != 0);
    len = sizeof v;
    getsockopt(s, SOL_SOCKET, SO_KEEPALIVE, (char *)&v, &len);
    r->bad_keepalive += (v != 0) != (r->want_keepalive != 0);
#ifdef TCP_KEEPIDLE
    if (r->want_keepalive) {
        len = sizeof v;
        getsockopt(s, IPPROTO_TCP, TCP_KEEPIDLE, (char *)&v, &len);
        r->bad_keepidle += v != r->want_idle;
    }
#endif
}

static void sockopts_case(bool nodelay, gn_time keepalive)
{
    gn_transport_config cfg = cfg_default();
    cfg.nodelay = nodelay;
    cfg.keepalive_period = keepalive;
    tr_env_init("tcp", &cfg, &cfg, false);
    gn_listener *l4, *l6 = NULL;
    gn_multiaddr *a4 = NULL;
    CHECK_OK(tr_listen(E.srv, "/ip4/127.0.0.1/tcp/0", &l4));
    if (tr_listen(E.srv, "/ip6/::1/tcp/0", &l6) < 0) {
        l6 = NULL;
    }
    CHECK_OK(gn_listener_addr(l4, &a4));
    tconn *c = tc_new(NULL, false);
    CHECK_OK(tr_dial_ma(E.cli, a4, c));
    RUN_UNTIL(c->s && E.accepts == 1, 5000);
    sockopt_report r = {.want_nodelay = nodelay,
                        .want_keepalive = keepalive > 0,
                        .want_idle = (int)(keepalive / GN_S)};
    uv_walk(gn_loop_uv(E.loop), sockopt_walk, &r);
    CHECK_EQ(r.listeners, l6 ? 2 : 1);
    CHECK_EQ(r.conns, 2);
    if (GTS_UV_SETS_REUSEADDR) {
        CHECK_EQ(r.bad_reuse, 0); /* libuv sets SO_REUSEADDR when binding */
    }
    CHECK_EQ(r.bad_v6only, 0);
    CHECK_EQ(r.bad_nodelay, 0);
    CHECK_EQ(r.bad_keepalive, 0);
    CHECK_EQ(r.bad_keepidle, 0);
    gn_multiaddr_free(a4);
    tr_listener_close(l4);
    if (l6) {
        tr_listener_close(l6);
    }
    tr_env_fini();
}

GN_TEST(socket_options)
{
    sockopts_case(true, 7 * GN_S);
    sockopts_case(false, 0);
}

GN_TEST(rebind_port_in_time_wait)
{
    tr_env_init("tcp", NULL, NULL, false);
    E.srv_prof = (tr_profile){0};
    gn_listener *l;
    gn_multiaddr *la = NULL;
    CHECK_OK(tr_listen(E.srv, "/ip4/127.0.0.1/tcp/0", &l));
    CHECK_OK(gn_listener_addr(l, &la));
    tconn *c = tc_new(&(tr_profile){.close_on_eof = true}, false);
    CHECK_OK(tr_dial_ma(E.cli, la, c));
    RUN_UNTIL(c->s && E.last_accepted && E.last_accepted->s, 5000);
    /* the server closes first: its side (port P) enters TIME_WAIT */
    tc_close(E.last_accepted);
    RUN_UNTIL(c->closed, 5000);
    tr_listener_close(l);
    RUN_UNTIL(E.listeners_closed == 1, 5000);
    char addr[64];
    snprintf(addr, sizeof addr, "/ip4/127.0.0.1/tcp/%u", ma_port(la));
    /* without SO_REUSEADDR Linux answers EADDRINUSE here */
    CHECK_OK(tr_listen(E.srv, addr, &l));
    tr_listener_close(l);
    gn_multiaddr_free(la);
    tr_env_fini();
}

GN_TEST(dial_timeout)
{
    /* A raw listener with backlog 0 that never accepts: once its accept
     * queue is full, Linux drops further SYNs and connect() hangs. */
    gts_init();
    gts_sock lfd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(lfd != GTS_BAD_SOCK);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(lfd, (struct sockaddr *)&sin, sizeof sin) == 0);
    CHECK(listen(lfd, 0) == 0);
    socklen_t sl = sizeof sin;
    CHECK(getsockname(lfd, (struct sockaddr *)&sin, &sl) == 0);
    gts_sock fill[3];
    for (int i = 0; i < 3; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM, 0);
        CHECK(fill[i] != GTS_BAD_SOCK);
        gts_set_nonblock(fill[i]);
        (void)connect(fill[i], (struct sockaddr *)&sin, sizeof sin);
    }
    gts_sleep_ms(50);

    gn_transport_config cfg = cfg_default();
    cfg.dial_timeout = 200 * GN_MS;
    tr_env_init("tcp", &cfg, &cfg, false);
    char addr[64];
    snprintf(addr, sizeof addr, "/ip4/127.0.0.1/tcp/%u", (unsigned)ntohs(sin.sin_port));
    tconn *c = tc_new(NULL, false);
    gn_time t0 = gn_now();
    CHECK_OK(tr_dial(E.cli, addr, c));
    RUN_UNTIL(E.dials_ok + E.dials_failed == 1, 5000);
    gn_time took = gn_now() - t0;
    for (int i = 0; i < 3; i++) {
        gts_close(fill[i]);
    }
    gts_close(lfd);
    if (E.dials_ok == 1) {
        tr_env_fini();
        SKIP("the kernel completed the handshake; cannot provoke a dial timeout");
    }
    CHECK_EQ(E.last_dial_err, GN_ETIMEDOUT);
    CHECK(took >= 190 * GN_MS);
    CHECK(took < 2 * GN_S);
    CHECK_EQ(E.cli->nconns, 0);
    tr_env_fini();
}

/* The dial in flight for dial_cancel, and what the cancel saw. */
static struct {
    gn_op *op;
    int fds_before, fds_after;
    int completions_at_cancel;
    gn_time cancelled_at;
} DC;

static void dial_cancel_fn(gn_timer *t, void *arg)
{
    (void)t;
    (void)arg;
    DC.fds_before = syn_drop_count_fds();
    TR_ENTER();
    gn_op_cancel(DC.op);
    TR_LEAVE();
    DC.fds_after = syn_drop_count_fds();
    DC.completions_at_cancel = E.dials_ok + E.dials_failed;
    DC.cancelled_at = gn_now();
}

/* A dial whose SYNs are dropped, cancelled after 100 ms: the socket is
 * closed inside gn_op_cancel(), the callback runs once with GN_ECANCELED
 * right after, and nothing is left on the loop (the transport's own dial
 * timeout is 10 s and must not be what ends it). */
GN_TEST(dial_cancel)
{
    syn_drop sd;
    if (!syn_drop_open(&sd)) {
        syn_drop_close(&sd);
        SKIP("the kernel completed every handshake; cannot provoke dropped SYNs");
    }
    tr_env_init("tcp", NULL, NULL, false);
    char addr[64];
    snprintf(addr, sizeof addr, "/ip4/127.0.0.1/tcp/%u", sd.port);
    gn_multiaddr *ma = NULL;
    CHECK_OK(gn_multiaddr_parse(addr, &ma));
    memset(&DC, 0, sizeof DC);
    TR_ENTER();
    CHECK_OK(gn_transport_dial(E.cli, ma, tr_dial_cb, NULL, &DC.op));
    TR_LEAVE();
    gn_multiaddr_free(ma);
    CHECK(DC.op != NULL);
    CHECK_EQ(tr_tcp_handles(), 1);
    gn_timer cancel_timer;
    gn_timer_init(E.loop, &cancel_timer);
    CHECK_OK(gn_timer_start(&cancel_timer, 100 * GN_MS, dial_cancel_fn, NULL));
    gn_time t0 = gn_now();
    RUN_UNTIL(E.dials_ok + E.dials_failed == 1, 5000);
    gn_time took = gn_now() - t0;
    CHECK(DC.cancelled_at != 0);
    CHECK_EQ(DC.completions_at_cancel, 0); /* not from inside the cancel */
    if (GTS_HAVE_FD_COUNT) { /* 0: no descriptor count here (Windows) */
        CHECK(DC.fds_before > 0); /* -1: /proc (or /dev/fd) missing */
        CHECK_EQ(DC.fds_after, DC.fds_before - 1); /* the socket closed at once */
    }
    CHECK_EQ(E.dials_failed, 1);
    CHECK_EQ(E.last_dial_err, GN_ECANCELED);
    CHECK(took >= 90 * GN_MS);
    CHECK(took < 1 * GN_S);
    CHECK(gn_now() - DC.cancelled_at < 100 * GN_MS);
    /* exactly once, and the loop holds nothing of the dial */
    tr_run_for(50);
    CHECK_EQ(E.dials_ok + E.dials_failed, 1);
    CHECK_EQ(tr_tcp_handles(), 0);
    CHECK_EQ(E.cli->nconns, 0);
    syn_drop_close(&sd);
    tr_env_fini();
}

/* Cancelling before the loop ran, with a refusal already on its way
 * (a closed loopback port): the callback reports GN_ECANCELED, once. */
GN_TEST(dial_cancel_beats_refusal)
{
    tr_env_init("tcp", NULL, NULL, false);
    gn_listener *l;
    CHECK_OK(tr_listen(E.srv, "/ip4/127.0.0.1/tcp/0", &l));
    gn_multiaddr *la = NULL;
    CHECK_OK(gn_listener_addr(l, &la));
    tr_listener_close(l);
    RUN_UNTIL(E.listeners_closed == 1, 5000);
    gn_op *op = NULL;
    TR_ENTER();
    CHECK_OK(gn_transport_dial(E.cli, la, tr_dial_cb, NULL, &op));
    gn_op_cancel(op);
    gn_op_cancel(op); /* again before the completion: a no-op */
    TR_LEAVE();
    gn_multiaddr_free(la);
    CHECK_EQ(E.dials_failed, 0);
    RUN_UNTIL(E.dials_failed == 1, 5000);
    tr_run_for(20);
    CHECK_EQ(E.dials_failed, 1);
    CHECK_EQ(E.dials_ok, 0);
    CHECK_EQ(E.last_dial_err, GN_ECANCELED);
    tr_env_fini();
}

static int count_failed(tconn *const *c, int n)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        k += c[i]->eofs + c[i]->errors > 0;
    }
    return k;
}

GN_TEST(max_connections_inbound)
{
    gn_transport_config scfg = cfg_default();
    scfg.max_connections = 2;
    tr_env_init("tcp", &scfg, NULL, false);
    gn_listener *l;
    gn_multiaddr *la = NULL;
    CHECK_OK(tr_listen(E.srv, "/ip4/127.0.0.1/tcp/0", &l));
    CHECK_OK(gn_listener_addr(l, &la));
    tconn *c[3];
    for (int i = 0; i < 3; i++) {
        c[i] = tc_new(NULL, false);
        CHECK_OK(tr_dial_ma(E.cli, la, c[i]));
    }
    /* the kernel completes all three handshakes; the third is closed at
     * accept, so its client sees EOF (or a reset) */
    RUN_UNTIL(E.dials_ok == 3 && count_failed(c, 3) == 1, 5000);
    tr_run_for(50);
    CHECK_EQ(E.accepts, 2);
    CHECK_EQ(E.srv->nconns, 2);
    CHECK_EQ(count_failed(c, 3), 1);
    /* a slot frees up: the next one is accepted */
    tc_close(E.last_accepted);
    RUN_UNTIL(E.srv->nconns == 1, 5000);
    tconn *c4 = tc_new(NULL, false);
    CHECK_OK(tr_dial_ma(E.cli, la, c4));
    RUN_UNTIL(E.accepts == 3, 5000);
    gn_multiaddr_free(la);
    tr_listener_close(l);
    tr_env_fini();
}

GN_TEST(max_connections_dial)
{
    gn_transport_config ccfg = cfg_default();
    ccfg.max_connections = 1;
    tr_env_init("tcp", NULL, &ccfg, false);
    gn_listener *l;
    gn_multiaddr *la = NULL;
    CHECK_OK(tr_listen(E.srv, "/ip4/127.0.0.1/tcp/0", &l));
    CHECK_OK(gn_listener_addr(l, &la));
    tconn *c1 = tc_new(NULL, false);
    CHECK_OK(tr_dial_ma(E.cli, la, c1));
    /* a dial in progress counts */
    CHECK_EQ(tr_dial_ma(E.cli, la, NULL), GN_ELIMIT);
    RUN_UNTIL(c1->s != NULL, 5000);
    CHECK_EQ(tr_dial_ma(E.cli, la, NULL), GN_ELIMIT);
    tc_close(c1);
    RUN_UNTIL(c1->closed, 5000);
    tconn *c2 = tc_new(NULL, false);
    CHECK_OK(tr_dial_ma(E.cli, la, c2));
    RUN_UNTIL(c2->s != NULL, 5000);
    gn_multiaddr_free(la);
    tr_listener_close(l);
    tr_env_fini();
}

GN_TEST(write_queue_bound)
{
    static uint8_t big[64 * 1024];
    gn_transport_config ccfg = cfg_default();
    ccfg.write_queue_max = 128 * 1024;
    tr_env_init("tcp", NULL, &ccfg, false);
    gn_listener *l;
    gn_multiaddr *la = NULL;
    CHECK_OK(tr_listen(E.srv, "/ip4/127.0.0.1/tcp/0", &l));
    CHECK_OK(gn_listener_addr(l, &la));
    tconn *c = tc_new(NULL, false);
    CHECK_OK(tr_dial_ma(E.cli, la, c));
    RUN_UNTIL(c->s && E.last_accepted, 5000);
    /* completions are deferred, so the queue only grows inside this turn */
    CHECK_EQ(tc_send(c, big, sizeof big), 0);
    CHECK_EQ(tc_send(c, big, sizeof big), 0);
    CHECK_EQ(tc_send(c, big, sizeof big), GN_EAGAIN);
    gn_stream_metrics m;
    gn_stream_get_metrics(c->s, &m);
    CHECK_EQ(m.write_queued, 2 * sizeof big);
    RUN_UNTIL(c->writables == 1, 5000);
    CHECK_EQ(c->completed, 2);
    CHECK_EQ(c->failed, 0);
    CHECK_EQ(tc_send(c, big, sizeof big), 0);
    RUN_UNTIL(E.last_accepted->rx_total == 3 * sizeof big, 5000);
    gn_multiaddr_free(la);
    tr_listener_close(l);
    tr_env_fini();
}

GN_TEST(app_keepalive_bytes)
{
    static const uint8_t ka[3] = {0x00, 'k', 'a'};
    gn_transport_config ccfg = cfg_default();
    ccfg.app_keepalive_period = 40 * GN_MS;
    ccfg.app_keepalive_bytes = gn_slice_of(ka, sizeof ka);
    tr_env_init("tcp", NULL, &ccfg, false);
    E.srv_prof = (tr_profile){.rx_cap = 64};
    gn_listener *l;
    gn_multiaddr *la = NULL;
    CHECK_OK(tr_listen(E.srv, "/ip4/127.0.0.1/tcp/0", &l));
    CHECK_OK(gn_listener_addr(l, &la));
    tconn *c = tc_new(NULL, false);
    CHECK_OK(tr_dial_ma(E.cli, la, c));
    RUN_UNTIL(E.last_accepted && E.last_accepted->rx_total >= 9, 3000);
    tconn *s = E.last_accepted;
    CHECK_EQ(s->rx_len % 3, 0);
    for (size_t i = 0; i < s->rx_len; i += 3) {
        CHECK_MEM(s->rx + i, ka, 3);
    }
    /* internal writes are not stream writes */
    gn_stream_metrics m;
    gn_stream_get_metrics(c->s, &m);
    CHECK_EQ(m.bytes_out, 0);
    CHECK_EQ(m.writes_out, 0);
    /* the server (no keepalive configured) sends none */
    CHECK_EQ(c->rx_total, 0);
    gn_multiaddr_free(la);
    tr_listener_close(l);
    tr_env_fini();
}

GN_TEST(dns_not_handled)
{
    tr_env_init("tcp", NULL, NULL, false);
    gn_multiaddr *ma = NULL;
    CHECK_OK(gn_multiaddr_parse("/dns4/localhost/tcp/4001", &ma));
    CHECK(!gn_transport_handles(E.cli, ma));
    CHECK_EQ(tr_dial_ma(E.cli, ma, NULL), GN_ENOTRANSPORT);
    gn_listener *l;
    TR_ENTER();
    int rc = gn_transport_listen(E.srv, ma, tr_accept_cb, NULL, &l);
    TR_LEAVE();
    CHECK_EQ(rc, GN_ENOTRANSPORT);
    gn_multiaddr_free(ma);
    CHECK_OK(gn_multiaddr_parse("/ip4/127.0.0.1/udp/4001", &ma));
    CHECK(!gn_transport_handles(E.cli, ma));
    gn_multiaddr_free(ma);
    CHECK_OK(gn_multiaddr_parse("/ip4/127.0.0.1/tcp/4001/ws", &ma));
    CHECK(!gn_transport_handles(E.cli, ma));
    gn_multiaddr_free(ma);
    tr_env_fini();
}

/* Port of a stream's local or remote address. */
static unsigned conn_port(gn_stream *s, gn_stream_addr_kind kind)
{
    gn_multiaddr *a = NULL;
    CHECK_OK(gn_stream_addr(s, kind, &a));
    unsigned p = ma_port(a);
    gn_multiaddr_free(a);
    return p;
}

/* Port reuse (on by default): a dial leaves from the listen port of its
 * transport, so the peer observes the listen address; a second dial to the
 * same address (the four-tuple is taken) falls back to another port. */
GN_TEST(dial_from_listen_port)
{
    if (!GTS_HAVE_REUSEPORT)
        SKIP("no SO_REUSEPORT here: dials cannot use the listen port");
    tr_env_init("tcp", NULL, NULL, false);
    E.srv_prof = (tr_profile){.echo = true, .close_on_eof = true};
    gn_listener *ls, *lc;
    gn_multiaddr *as = NULL, *ac = NULL;
    CHECK_OK(tr_listen(E.srv, "/ip4/127.0.0.1/tcp/0", &ls));
    CHECK_OK(tr_listen(E.cli, "/ip4/127.0.0.1/tcp/0", &lc));
    CHECK_OK(gn_listener_addr(ls, &as));
    CHECK_OK(gn_listener_addr(lc, &ac));
    unsigned pc = ma_port(ac);
    /* SO_REUSEPORT on the listeners does not let another instance listen
     * on a port in use */
    {
        char addr[64];
        gn_listener *l3 = NULL;
        snprintf(addr, sizeof addr, "/ip4/127.0.0.1/tcp/%u", ma_port(as));
        CHECK_EQ(tr_listen(E.cli, addr, &l3), GN_EADDRINUSE);
    }
    tconn *c1 = tc_new(&(tr_profile){.rx_cap = 16}, false);
    CHECK_OK(tr_dial_ma(E.cli, as, c1));
    RUN_UNTIL(c1->s != NULL && E.accepts == 1, 5000);
    CHECK_EQ(conn_port(c1->s, GN_ADDR_LOCAL), pc);
    /* the server sees the dialler's listen address */
    CHECK_EQ(conn_port(E.last_accepted->s, GN_ADDR_REMOTE), pc);
    tconn *c2 = tc_new(&(tr_profile){.rx_cap = 16}, false);
    CHECK_OK(tr_dial_ma(E.cli, as, c2));
    RUN_UNTIL(c2->s != NULL && E.accepts == 2, 5000);
    CHECK(conn_port(c2->s, GN_ADDR_LOCAL) != pc);
    /* both carry data */
    CHECK_OK(tc_send(c1, "one", 3));
    CHECK_OK(tc_send(c2, "two", 3));
    RUN_UNTIL(c1->rx_total == 3 && c2->rx_total == 3, 5000);
    CHECK_MEM(c1->rx, "one", 3);
    CHECK_MEM(c2->rx, "two", 3);
    /* a dial to a non-loopback address never borrows a loopback listener's
     * port (it would not route): covered by the scope rule, not dialled here */
    gn_multiaddr_free(as);
    gn_multiaddr_free(ac);
    tr_listener_close(ls);
    tr_listener_close(lc);
    tr_env_fini();
}

/* Two transports listening on 127.0.0.1 dial each other in the same loop
 * turn, each from its listen port: a simultaneous open. On loopback the
 * first SYN meets the other's listener (a SO_REUSEPORT socket on the same
 * port), so the second connect finds its four-tuple taken and goes out
 * from another port; connections form and carry data either way. */
GN_TEST(simultaneous_open_loopback)
{
    if (!GTS_HAVE_REUSEPORT)
        SKIP("no SO_REUSEPORT here: simultaneous open needs dials from the listen ports");
    tr_env_init("tcp", NULL, NULL, false);
    E.srv_prof = (tr_profile){.echo = true, .close_on_eof = true};
    gn_listener *la, *lb;
    gn_multiaddr *aa = NULL, *ab = NULL;
    CHECK_OK(tr_listen(E.srv, "/ip4/127.0.0.1/tcp/0", &la));
    CHECK_OK(tr_listen(E.cli, "/ip4/127.0.0.1/tcp/0", &lb));
    CHECK_OK(gn_listener_addr(la, &aa));
    CHECK_OK(gn_listener_addr(lb, &ab));
    unsigned pa = ma_port(aa), pb = ma_port(ab);
    tconn *ca = tc_new(&(tr_profile){.rx_cap = 16}, false);
    tconn *cb = tc_new(&(tr_profile){.rx_cap = 16}, false);
    CHECK_OK(tr_dial_ma(E.srv, ab, ca)); /* A -> B from pa */
    CHECK_OK(tr_dial_ma(E.cli, aa, cb)); /* B -> A from pb, before any loop turn */
    RUN_UNTIL(E.dials_ok + E.dials_failed == 2, 5000);
    CHECK(E.dials_ok >= 1);
    printf("# dials ok %d, failed %d (last %s), accepts %d\n", E.dials_ok, E.dials_failed,
           E.dials_failed ? gn_err_name(E.last_dial_err) : "-", E.accepts);
    /* the first dial left from its listen port; the pair (pa, pb) carries
     * one connection */
    CHECK(ca->s != NULL);
    CHECK_EQ(conn_port(ca->s, GN_ADDR_LOCAL), pa);
    CHECK_EQ(conn_port(ca->s, GN_ADDR_REMOTE), pb);
    RUN_UNTIL(E.accepts == E.dials_ok, 5000);
    tconn *both[2] = {ca, cb};
    for (int i = 0; i < 2; i++) {
        if (both[i]->s) {
            CHECK_OK(tc_send(both[i], "sim", 3));
        }
    }
    RUN_UNTIL(ca->rx_total == 3 && (!cb->s || cb->rx_total == 3), 5000);
    CHECK_MEM(ca->rx, "sim", 3);
    gn_multiaddr_free(aa);
    gn_multiaddr_free(ab);
    tr_listener_close(la);
    tr_listener_close(lb);
    tr_env_fini();
}

GN_TEST_MAIN(GN_T(ipv6_loopback), GN_T(listen_several_and_addrinuse), GN_T(socket_options),
             GN_T(rebind_port_in_time_wait), GN_T(dial_timeout), GN_T(dial_cancel),
             GN_T(dial_cancel_beats_refusal), GN_T(max_connections_inbound),
             GN_T(max_connections_dial), GN_T(write_queue_bound), GN_T(app_keepalive_bytes),
             GN_T(dns_not_handled), GN_T(dial_from_listen_port),
             GN_T(simultaneous_open_loopback))
