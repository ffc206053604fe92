/*
 * Transport conformance suite: the same tests on every transport.
 *
 * Usage: conformance_transport <transport-name> [test-filter]
 *   e.g. conformance_transport tcp, conformance_transport memory half_close
 *
 * What to expect comes from the transport's capability bits and its test
 * listen address (gn_transport_ops.caps, .test_listen_addr), never from its
 * name: the stream-contract tests need GN_TRANSPORT_CAP_RELIABLE.
 *
 * Every test runs a real loop on this thread with a guard timer (RUN_UNTIL),
 * uses a server and a client instance of the transport, closes everything
 * and checks the loop is clean (tr_env_fini: no open connection, no libuv
 * TCP handle, no re-entrant callback, every write completed exactly once).
 * Contract: include/golemnet/transport.h and stream.h.
 */
#include "transport/tr_harness.h"

#include "conf.h"

static const gn_transport_ops *g_ops; /* the transport under test */
static const char *g_name;            /* its registered name */

/* The stream contract of stream.h holds only for reliable transports. */
#define NEED_RELIABLE()                                                                      \
    do {                                                                                     \
        if (!(g_ops->caps & GN_TRANSPORT_CAP_RELIABLE))                                      \
            SKIP("not GN_TRANSPORT_CAP_RELIABLE");                                           \
    } while (0)

static void env_default(void)
{
    tr_env_init(g_name, NULL, NULL, false);
}

/* Listens on the transport's test address; returns the bound one (caller frees). */
static gn_multiaddr *listen_any(gn_listener **l)
{
    gn_multiaddr *la = NULL;
    CHECK_OK(tr_listen(E.srv, g_ops->test_listen_addr, l));
    CHECK_OK(gn_listener_addr(*l, &la));
    return la;
}

/* ------------------------------------------------------------------ */

GN_TEST(capabilities_declared)
{
    uint32_t rel = g_ops->caps & (GN_TRANSPORT_CAP_RELIABLE | GN_TRANSPORT_CAP_UNRELIABLE);
    printf("# caps 0x%x, test address %s\n", (unsigned)g_ops->caps, g_ops->test_listen_addr);
    CHECK(rel == GN_TRANSPORT_CAP_RELIABLE || rel == GN_TRANSPORT_CAP_UNRELIABLE);
    CHECK_EQ(g_ops->caps & ~(uint32_t)GN_TRANSPORT_CAP_ALL, 0);
    env_default();
    gn_multiaddr *ta = NULL;
    CHECK_OK(gn_multiaddr_parse(g_ops->test_listen_addr, &ta));
    CHECK(gn_transport_handles(E.srv, ta));
    gn_multiaddr_free(ta);
    tr_env_fini();
}

/* ------------------------------------------------------------------ */

GN_TEST(listen_dial_bidirectional)
{
    NEED_RELIABLE();
    static const char hello[] = "hello golemnet";
    env_default();
    E.srv_prof = (tr_profile){.echo = true, .rx_cap = 64, .close_on_eof = true};
    gn_listener *l;
    gn_multiaddr *la = listen_any(&l);

    tconn *c = tc_new(&(tr_profile){.rx_cap = 64}, false);
    CHECK_OK(tr_dial_ma(E.cli, la, c));
    /* never from inside dial() */
    CHECK_EQ(E.dials_ok + E.dials_failed, 0);
    RUN_UNTIL(c->s != NULL && E.last_accepted != NULL && E.last_accepted->s != NULL, 5000);
    CHECK_EQ(E.accepts, 1);
    CHECK_EQ(E.srv->nconns, 1);
    CHECK_EQ(E.cli->nconns, 1);

    CHECK_OK(tc_send(c, hello, sizeof hello - 1));
    RUN_UNTIL(c->rx_total == sizeof hello - 1 && c->completed == 1, 5000);
    tconn *s = E.last_accepted;
    CHECK_EQ(s->rx_len, sizeof hello - 1);
    CHECK_MEM(s->rx, hello, sizeof hello - 1);
    CHECK_EQ(c->rx_len, sizeof hello - 1);
    CHECK_MEM(c->rx, hello, sizeof hello - 1);
    CHECK_EQ(c->failed, 0);

    gn_stream_metrics m;
    gn_stream_get_metrics(c->s, &m);
    CHECK_EQ(m.bytes_out, sizeof hello - 1);
    CHECK_EQ(m.writes_out, 1);
    CHECK_EQ(m.bytes_in, sizeof hello - 1);
    CHECK_EQ(m.write_queued, 0);
    RUN_UNTIL(s->completed == 1, 5000);
    gn_stream_get_metrics(s->s, &m);
    CHECK_EQ(m.bytes_in, sizeof hello - 1);
    CHECK_EQ(m.bytes_out, sizeof hello - 1);

    tc_close(c);
    RUN_UNTIL(s->closed, 5000); /* server closes on EOF */
    CHECK_EQ(s->eofs, 1);
    CHECK_EQ(s->errors, 0);
    tr_listener_close(l);
    gn_multiaddr_free(la);
    tr_env_fini();
}

GN_TEST(transfer_8mib_both_ways)
{
    NEED_RELIABLE();
    const size_t total = 8u << 20;
    const uint8_t *pat = tr_pat_buf();
    env_default();
    E.srv_prof = (tr_profile){.verify = true, .src = pat, .src_len = total, .shut_when_done = true};
    gn_listener *l;
    gn_multiaddr *la = listen_any(&l);
    tconn *c = tc_new(&(tr_profile){.verify = true, .src = pat, .src_len = total,
                                     .shut_when_done = true, .chunk = 100000},
                      false);
    CHECK_OK(tr_dial_ma(E.cli, la, c));
    RUN_UNTIL(E.last_accepted && E.last_accepted->eofs == 1 && c->eofs == 1, 60000);
    tconn *s = E.last_accepted;
    CHECK_EQ(s->rx_total, total);
    CHECK_EQ(c->rx_total, total);
    CHECK_EQ(s->verify_bad, 0);
    CHECK_EQ(c->verify_bad, 0);
    RUN_UNTIL(c->completed == c->accepted && s->completed == s->accepted, 5000);
    CHECK_EQ(c->failed, 0);
    CHECK_EQ(s->failed, 0);
    CHECK_EQ(c->errors + s->errors, 0);
    gn_stream_metrics m;
    gn_stream_get_metrics(c->s, &m);
    CHECK_EQ(m.bytes_out, total);
    CHECK_EQ(m.bytes_in, total);
    tc_close(c);
    tc_close(s);
    tr_listener_close(l);
    gn_multiaddr_free(la);
    tr_env_fini();
}

static int count_rx(tconn *const *c, int n, uint64_t want)
{
    int done = 0;
    for (int i = 0; i < n; i++) {
        done += c[i]->rx_total == want;
    }
    return done;
}

GN_TEST(many_concurrent_connections)
{
    NEED_RELIABLE();
    enum { N = 100 };
    env_default();
    E.srv_prof = (tr_profile){.echo = true, .close_on_eof = true};
    gn_listener *l;
    gn_multiaddr *la = listen_any(&l);
    tconn *c[N];
    for (int i = 0; i < N; i++) {
        c[i] = tc_new(&(tr_profile){.rx_cap = 16}, false);
        CHECK(c[i] != NULL);
        snprintf((char *)c[i]->msg, sizeof c[i]->msg, "conn%04d", i);
        c[i]->p.src = c[i]->msg;
        c[i]->p.src_len = 8;
        CHECK_OK(tr_dial_ma(E.cli, la, c[i]));
    }
    RUN_UNTIL(count_rx(c, N, 8) == N, 20000);
    CHECK_EQ(E.accepts, N);
    CHECK_EQ(E.dials_ok, N);
    CHECK_EQ(E.srv->nconns, N);
    CHECK_EQ(E.cli->nconns, N);
    for (int i = 0; i < N; i++) {
        CHECK_MEM(c[i]->rx, c[i]->msg, 8);
        tc_close(c[i]);
    }
    RUN_UNTIL(E.closed == 2 * N, 20000);
    tr_listener_close(l);
    gn_multiaddr_free(la);
    tr_env_fini();
}

GN_TEST(half_close_both_ways)
{
    NEED_RELIABLE();
    static const char reply[] = "late reply";
    static const char first[] = "server speaks first";
    env_default();
    gn_listener *l;
    gn_multiaddr *la = listen_any(&l);

    /* 1: the client shuts down first; the server still writes after EOF */
    E.srv_prof = (tr_profile){.rx_cap = 64, .reply_on_eof = reply};
    tconn *c = tc_new(&(tr_profile){.rx_cap = 64}, false);
    CHECK_OK(tr_dial_ma(E.cli, la, c));
    RUN_UNTIL(c->s && E.last_accepted && E.last_accepted->s, 5000);
    tconn *s = E.last_accepted;
    CHECK_OK(tc_shutdown(c));
    /* writes after our own shutdown are refused */
    CHECK_EQ(tc_send(c, "x", 1), GN_EPIPE);
    RUN_UNTIL(c->eofs == 1, 5000);
    CHECK_EQ(s->eofs, 1);
    CHECK_EQ(s->rx_total, 0);
    CHECK_EQ(c->rx_len, sizeof reply - 1);
    CHECK_MEM(c->rx, reply, sizeof reply - 1);
    CHECK_EQ(c->errors + s->errors, 0);
    CHECK(gn_stream_flags(c->s) & GN_STREAM_EOF_RECV);
    CHECK(gn_stream_flags(c->s) & GN_STREAM_SHUT_SENT);
    tc_close(c);
    tc_close(s);
    RUN_UNTIL(c->closed && s->closed, 5000);

    /* 2: the server writes and shuts down first; the client replies */
    E.srv_prof = (tr_profile){.rx_cap = 64, .src = (const uint8_t *)first,
                              .src_len = sizeof first - 1, .shut_when_done = true};
    E.last_accepted = NULL;
    c = tc_new(&(tr_profile){.rx_cap = 64, .reply_on_eof = reply}, false);
    CHECK_OK(tr_dial_ma(E.cli, la, c));
    RUN_UNTIL(E.last_accepted && E.last_accepted->eofs == 1, 5000);
    s = E.last_accepted;
    CHECK_EQ(c->eofs, 1);
    CHECK_EQ(c->rx_len, sizeof first - 1);
    CHECK_MEM(c->rx, first, sizeof first - 1);
    CHECK_EQ(s->rx_len, sizeof reply - 1);
    CHECK_MEM(s->rx, reply, sizeof reply - 1);
    CHECK_EQ(c->errors + s->errors, 0);
    tc_close(c);
    tc_close(s);
    tr_listener_close(l);
    gn_multiaddr_free(la);
    tr_env_fini();
}

GN_TEST(reset_delivers_error)
{
    NEED_RELIABLE();
    env_default();
    E.srv_prof = (tr_profile){.echo = true};
    gn_listener *l;
    gn_multiaddr *la = listen_any(&l);
    tconn *c = tc_new(&(tr_profile){.rx_cap = 8}, false);
    CHECK_OK(tr_dial_ma(E.cli, la, c));
    RUN_UNTIL(c->s && E.last_accepted && E.last_accepted->s, 5000);
    CHECK_OK(tc_send(c, "ping", 4));
    RUN_UNTIL(c->rx_total == 4, 5000);
    tconn *s = E.last_accepted;
    tc_reset(c);
    CHECK_EQ(E.closed, 0); /* the close callback comes later */
    RUN_UNTIL(c->closed && s->errors == 1, 5000);
    CHECK_EQ(s->last_err, GN_ECONNRESET);
    CHECK_EQ(s->eofs, 0);
    RUN_UNTIL(s->closed, 5000); /* closed by tc_on_error */
    tr_listener_close(l);
    gn_multiaddr_free(la);
    tr_env_fini();
}

GN_TEST(read_stop_backpressure)
{
    NEED_RELIABLE();
    const uint8_t *pat = tr_pat_buf();
    gn_transport_config cfg;
    gn_transport_config_default(&cfg);
    cfg.write_queue_max = 256u << 10;
    tr_env_init(g_name, &cfg, &cfg, false);
    E.srv_prof = (tr_profile){.no_read = true, .verify = true};
    gn_listener *l;
    gn_multiaddr *la = listen_any(&l);
    tconn *c = tc_new(&(tr_profile){.src = pat, .src_len = TR_PAT_LEN}, false);
    CHECK_OK(tr_dial_ma(E.cli, la, c));
    RUN_UNTIL(E.last_accepted && c->eagains >= 1, 20000);
    tconn *s = E.last_accepted;
    /* the reader is stopped: the writer stalls */
    tr_run_for(300);
    size_t stalled_at = c->src_off;
    int writables = c->writables;
    tr_run_for(200);
    CHECK_EQ(c->src_off, stalled_at);
    CHECK_EQ(c->writables, writables);
    CHECK_EQ(s->rx_total, 0);
    CHECK(stalled_at < TR_PAT_LEN - (1u << 20)); /* bounded buffering */
    printf("# stalled after %zu bytes accepted\n", stalled_at);

    /* reading again drains the queue: writable follows */
    CHECK_OK(tc_read_start(s));
    RUN_UNTIL(c->writables > writables, 10000);
    /* finish 1 MiB later, then EOF */
    c->p.src_len = c->src_off + (1u << 20);
    c->p.shut_when_done = true;
    tc_pump(c);
    RUN_UNTIL(s->eofs == 1, 20000);
    CHECK_EQ(s->rx_total, c->p.src_len);
    CHECK_EQ(s->verify_bad, 0);
    CHECK_EQ(c->failed, 0);
    CHECK_EQ(c->write_errors, 0);
    tc_close(c);
    tc_close(s);
    tr_listener_close(l);
    gn_multiaddr_free(la);
    tr_env_fini();
}

GN_TEST(dial_closed_listener_refused)
{
    env_default();
    gn_listener *l;
    gn_multiaddr *la = listen_any(&l);
    tr_listener_close(l);
    RUN_UNTIL(E.listeners_closed == 1, 5000);
    int rc = tr_dial_ma(E.cli, la, NULL);
    if (rc == 0) {
        RUN_UNTIL(E.dials_failed == 1, 5000);
        rc = E.last_dial_err;
    }
    CHECK_EQ(rc, GN_ECONNREFUSED);
    CHECK_EQ(E.dials_ok, 0);
    gn_multiaddr_free(la);
    tr_env_fini();
}

/* Per-write completion records for the close test. */
enum { NPEND = 256 };
static int pend_done[NPEND];
static int pend_status[NPEND];
static int pend_after_close;
static bool pend_client_closed;

static void pend_cb(void *arg, int status)
{
    int i = (int)(intptr_t)arg;
    TR_CB_CHECK();
    pend_done[i]++;
    pend_status[i] = status;
    if (pend_client_closed) {
        pend_after_close++;
    }
}

static void pend_closed_cb(gn_stream *s, void *arg)
{
    tc_closed_cb(s, arg);
    pend_client_closed = true;
}

GN_TEST(close_with_pending_writes)
{
    NEED_RELIABLE();
    const uint8_t *pat = tr_pat_buf();
    gn_transport_config cfg;
    gn_transport_config_default(&cfg);
    cfg.write_queue_max = 64u << 20;
    tr_env_init(g_name, &cfg, &cfg, false);
    memset(pend_done, 0, sizeof pend_done);
    pend_after_close = 0;
    pend_client_closed = false;
    E.srv_prof = (tr_profile){.no_read = true, .close_on_eof = true};
    gn_listener *l;
    gn_multiaddr *la = listen_any(&l);
    tconn *c = tc_new(&(tr_profile){0}, false);
    CHECK_OK(tr_dial_ma(E.cli, la, c));
    RUN_UNTIL(c->s && E.last_accepted && E.last_accepted->s, 5000);
    tconn *s = E.last_accepted;
    for (int i = 0; i < NPEND; i++) {
        gn_slice sl = gn_slice_of(pat + (size_t)i * 65536u, 65536u);
        CHECK_OK(tr_write(c, &sl, 1, pend_cb, (void *)(intptr_t)i));
    }
    c->closing = true;
    TR_ENTER();
    gn_stream_close(c->s, pend_closed_cb, c);
    TR_LEAVE();
    /* writes after close are refused (the stream is closing) */
    RUN_UNTIL(c->closed, 10000);
    int canceled = 0, ok = 0;
    for (int i = 0; i < NPEND; i++) {
        CHECK_EQ(pend_done[i], 1);
        if (pend_status[i] == GN_ECANCELED) {
            canceled++;
        } else {
            CHECK_EQ(pend_status[i], 0);
            ok++;
        }
    }
    printf("# %d writes completed, %d canceled\n", ok, canceled);
    CHECK(canceled >= 1);
    CHECK_EQ(pend_after_close, 0);
    CHECK_OK(tc_read_start(s));
    RUN_UNTIL(s->closed, 10000);
    tr_listener_close(l);
    gn_multiaddr_free(la);
    tr_env_fini();
}

GN_TEST(listener_close_keeps_connections)
{
    env_default();
    E.srv_prof = (tr_profile){.echo = true, .close_on_eof = true};
    gn_listener *l1, *l2;
    gn_multiaddr *a1 = listen_any(&l1);
    gn_multiaddr *a2 = listen_any(&l2);
    CHECK(!gn_multiaddr_equal(a1, a2));
    tconn *c1 = tc_new(&(tr_profile){.rx_cap = 8}, false);
    tconn *c2 = tc_new(&(tr_profile){.rx_cap = 8}, false);
    CHECK_OK(tr_dial_ma(E.cli, a1, c1));
    CHECK_OK(tr_dial_ma(E.cli, a2, c2));
    RUN_UNTIL(c1->s && c2->s && E.accepts == 2, 5000);

    tr_listener_close(l1);
    CHECK_EQ(E.listeners_closed, 0); /* completion comes later */
    RUN_UNTIL(E.listeners_closed == 1, 5000);
    /* the accepted connection outlives its listener */
    CHECK_OK(tc_send(c1, "ping", 4));
    RUN_UNTIL(c1->rx_total == 4, 5000);
    CHECK_MEM(c1->rx, "ping", 4);
    /* the closed listener refuses, the other still accepts */
    int rc = tr_dial_ma(E.cli, a1, NULL);
    if (rc == 0) {
        RUN_UNTIL(E.dials_failed == 1, 5000);
        rc = E.last_dial_err;
    }
    CHECK_EQ(rc, GN_ECONNREFUSED);
    tconn *c3 = tc_new(&(tr_profile){.rx_cap = 8}, false);
    CHECK_OK(tr_dial_ma(E.cli, a2, c3));
    RUN_UNTIL(c3->s && E.accepts == 3, 5000);
    tr_listener_close(l2);
    RUN_UNTIL(E.listeners_closed == 2, 5000);
    gn_multiaddr_free(a1);
    gn_multiaddr_free(a2);
    tr_env_fini();
}

GN_TEST(addresses_reported)
{
    char buf[128];
    env_default();
    gn_listener *l;
    gn_multiaddr *la = listen_any(&l);
    CHECK(gn_transport_handles(E.cli, la));
    CHECK_OK(tr_ma_string(la, buf, sizeof buf));
    printf("# listening on %s\n", buf);
    /* the bound address is concrete (a wildcard such as port 0 is resolved):
     * while the listener is open, nothing else can listen on it */
    {
        gn_listener *l2 = NULL;
        TR_ENTER();
        int rc = gn_transport_listen(E.srv, la, tr_accept_cb, NULL, &l2);
        TR_LEAVE();
        CHECK_EQ(rc, GN_EADDRINUSE);
    }
    /* a trailing /p2p/ is ignored by the transport */
    gn_multiaddr *p2p = NULL, *withp2p = NULL;
    CHECK_OK(gn_multiaddr_parse("/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N", &p2p));
    CHECK_OK(gn_multiaddr_encapsulate(la, p2p, &withp2p));
    CHECK(gn_transport_handles(E.cli, withp2p));
    tconn *c = tc_new(&(tr_profile){0}, false);
    CHECK_OK(tr_dial_ma(E.cli, withp2p, c));
    RUN_UNTIL(c->s && E.last_accepted && E.last_accepted->s, 5000);
    tconn *s = E.last_accepted;

    gn_multiaddr *cl = NULL, *cr = NULL, *sl = NULL, *sr = NULL;
    CHECK_OK(gn_stream_addr(c->s, GN_ADDR_LOCAL, &cl));
    CHECK_OK(gn_stream_addr(c->s, GN_ADDR_REMOTE, &cr));
    CHECK_OK(gn_stream_addr(s->s, GN_ADDR_LOCAL, &sl));
    CHECK_OK(gn_stream_addr(s->s, GN_ADDR_REMOTE, &sr));
    CHECK(gn_multiaddr_equal(cr, la));
    CHECK(gn_multiaddr_equal(sl, la));
    CHECK(gn_multiaddr_equal(cl, sr));
    CHECK(!gn_multiaddr_equal(cl, la));
    CHECK(gn_transport_handles(E.cli, cl));
    CHECK_OK(tr_ma_string(cl, buf, sizeof buf));
    printf("# client local %s\n", buf);

    /* not ours: the other transports' test addresses and a few more; the
     * transport refuses to dial every one it does not handle */
    int foreign = 0;
    for (size_t i = 0; i <= gn_registry_count(E.reg, GN_LAYER_TRANSPORT); i++) {
        const gn_transport_ops *o =
            (const gn_transport_ops *)gn_registry_get(E.reg, GN_LAYER_TRANSPORT, i);
        const char *cand = o ? o->test_listen_addr : "/ip4/127.0.0.1/udp/1";
        gn_multiaddr *other = NULL;
        if (o == g_ops || !cand)
            continue;
        CHECK_OK(gn_multiaddr_parse(cand, &other));
        if (!gn_transport_handles(E.cli, other)) {
            foreign++;
            TR_ENTER();
            int rc = gn_transport_dial(E.cli, other, tr_dial_cb, NULL, NULL);
            TR_LEAVE();
            CHECK_EQ(rc, GN_ENOTRANSPORT);
        }
        gn_multiaddr_free(other);
    }
    CHECK(foreign > 0);

    gn_multiaddr_free(cl);
    gn_multiaddr_free(cr);
    gn_multiaddr_free(sl);
    gn_multiaddr_free(sr);
    gn_multiaddr_free(p2p);
    gn_multiaddr_free(withp2p);
    tc_close(c);
    tc_close(s);
    tr_listener_close(l);
    gn_multiaddr_free(la);
    tr_env_fini();
}

int main(int argc, char **argv)
{
    static const gn_test_case cases[] = {
        GN_T(capabilities_declared),
        GN_T(listen_dial_bidirectional),
        GN_T(transfer_8mib_both_ways),
        GN_T(many_concurrent_connections),
        GN_T(half_close_both_ways),
        GN_T(reset_delivers_error),
        GN_T(read_stop_backpressure),
        GN_T(dial_closed_listener_refused),
        GN_T(close_with_pending_writes),
        GN_T(listener_close_keeps_connections),
        GN_T(addresses_reported),
    };
    if (argc < 2) {
        fprintf(stderr, "usage: %s TRANSPORT [filter]\n", argv[0]);
        return 2;
    }
    gn_registry *reg;
    if (gn_registry_new(&reg) < 0 || gn_registry_add_builtins(reg) < 0)
        return 1;
    g_ops = (const gn_transport_ops *)conf_component(reg, GN_LAYER_TRANSPORT, argv[1]);
    gn_registry_free(reg); /* ops tables are static */
    if (!g_ops) {
        printf("Bail out! no transport named %s is built in\n", argv[1]);
        return 1;
    }
    g_name = g_ops->name;
    if (!g_ops->test_listen_addr) {
        printf("1..0 # SKIP %s has no test_listen_addr\n", g_name);
        return 0;
    }
    argv[1] = argv[0];
    argc--;
    argv++;
    int rc = gn_test_run(cases, sizeof cases / sizeof cases[0], argc, argv);
    free(tr_pattern);
    return rc;
}
