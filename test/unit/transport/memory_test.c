/*
 * Memory transport specifics (layers/transport/memory/memory.c): delivery
 * on a virtual clock with an exact, repeatable event order; refused dials;
 * per-loop listener tables; id assignment; the exact write-queue and
 * receive-buffer bounds; TCP-like close (RST when unread data is dropped,
 * EPIPE afterwards); max_connections. The shared behaviour is in
 * test/conformance/transport_conformance.c.
 */
#include "transport/tr_harness.h"

static gn_transport_config cfg_default(void)
{
    gn_transport_config c;
    gn_transport_config_default(&c);
    return c;
}

/* ---- an event log for the determinism test ---- */

static char elog[2048];

static void elog_add(const char *who, const char *ev, const void *data, size_t len)
{
    char line[128];
    if (data) {
        snprintf(line, sizeof line, "%s:%s(%.*s) ", who, ev, (int)len, (const char *)data);
    } else {
        snprintf(line, sizeof line, "%s%s ", who, ev);
    }
    strncat(elog, line, sizeof elog - strlen(elog) - 1);
}

typedef struct lconn {
    const char *who;
    gn_stream *s;
    bool echo;
    bool closed;
    char out[4][16]; /* echo buffers (stay valid until completion) */
    int nout;
} lconn;

static lconn lc_cli, lc_srv;

static void l_write_done(void *arg, int status)
{
    lconn *c = arg;
    char st[32];
    snprintf(st, sizeof st, "%s:wdone(%d) ", c->who, status);
    strncat(elog, st, sizeof elog - strlen(elog) - 1);
}

static void l_on_data(gn_stream *s, void *ud, const uint8_t *data, size_t len)
{
    lconn *c = ud;
    TR_CB_CHECK();
    elog_add(c->who, "data", data, len);
    if (c->echo && c->nout < 4 && len < sizeof c->out[0]) {
        memcpy(c->out[c->nout], data, len);
        gn_slice sl = gn_slice_of(c->out[c->nout++], len);
        TR_ENTER();
        int rc = gn_stream_write(s, &sl, 1, l_write_done, c);
        TR_LEAVE();
        if (rc < 0) {
            elog_add(c->who, ":werr", NULL, 0);
        }
    }
}

static void l_on_eof(gn_stream *s, void *ud)
{
    lconn *c = ud;
    TR_CB_CHECK();
    elog_add(c->who, ":eof", NULL, 0);
    if (c->echo) {
        TR_ENTER();
        gn_stream_shutdown(s);
        TR_LEAVE();
    }
}

static void l_on_error(gn_stream *s, void *ud, int err)
{
    (void)s;
    lconn *c = ud;
    TR_CB_CHECK();
    char st[32];
    snprintf(st, sizeof st, "%s:error(%d) ", c->who, err);
    strncat(elog, st, sizeof elog - strlen(elog) - 1);
}

static void l_on_writable(gn_stream *s, void *ud)
{
    (void)s;
    lconn *c = ud;
    elog_add(c->who, ":writable", NULL, 0);
}

static const gn_stream_handler l_handler = {l_on_data, l_on_eof, l_on_error, l_on_writable};

static void l_closed(gn_stream *s, void *arg)
{
    (void)s;
    lconn *c = arg;
    TR_CB_CHECK();
    c->closed = true;
    elog_add(c->who, ":closed", NULL, 0);
}

static void l_accept(void *arg, gn_listener *l, int status, gn_stream *conn)
{
    (void)arg;
    (void)l;
    TR_CB_CHECK();
    elog_add("S", ":accept", NULL, 0);
    lc_srv.s = conn;
    gn_stream_set_handler(conn, &l_handler, &lc_srv);
    TR_ENTER();
    gn_stream_read_start(conn);
    TR_LEAVE();
    (void)status;
}

static void l_dial(void *arg, int status, gn_stream *conn)
{
    (void)arg;
    TR_CB_CHECK();
    elog_add("C", ":dialed", NULL, 0);
    if (status == 0) {
        lc_cli.s = conn;
        gn_stream_set_handler(conn, &l_handler, &lc_cli);
        TR_ENTER();
        gn_stream_read_start(conn);
        TR_LEAVE();
    }
}

/* One scripted exchange on a virtual clock; returns the loop time at the end. */
static gn_time scripted_run(void)
{
    elog[0] = '\0';
    memset(&lc_cli, 0, sizeof lc_cli);
    memset(&lc_srv, 0, sizeof lc_srv);
    lc_cli.who = "C";
    lc_srv.who = "S";
    lc_srv.echo = true;
    tr_env_init("memory", NULL, NULL, true);
    CHECK(gn_loop_is_virtual(E.loop));
    gn_multiaddr *ma = NULL;
    gn_listener *l;
    CHECK_OK(gn_multiaddr_parse("/memory/77", &ma));
    CHECK_OK(gn_transport_listen(E.srv, ma, l_accept, NULL, &l));
    E.listeners_open++;
    CHECK_OK(gn_transport_dial(E.cli, ma, l_dial, NULL, NULL));
    RUN_UNTIL(lc_cli.s && lc_srv.s, 2000);
    gn_slice a = gn_slice_of("abc", 3), b = gn_slice_of("defg", 4);
    TR_ENTER();
    int rc1 = gn_stream_write(lc_cli.s, &a, 1, l_write_done, &lc_cli);
    int rc2 = gn_stream_write(lc_cli.s, &b, 1, l_write_done, &lc_cli);
    int rc3 = gn_stream_shutdown(lc_cli.s);
    TR_LEAVE();
    CHECK_OK(rc1);
    CHECK_OK(rc2);
    CHECK_OK(rc3);
    RUN_UNTIL(strstr(elog, "C:eof") != NULL, 2000);
    TR_ENTER();
    gn_stream_close(lc_cli.s, l_closed, &lc_cli);
    gn_stream_close(lc_srv.s, l_closed, &lc_srv);
    TR_LEAVE();
    RUN_UNTIL(lc_cli.closed && lc_srv.closed, 2000);
    gn_time now = gn_loop_now(E.loop);
    tr_listener_close(l);
    gn_multiaddr_free(ma);
    tr_env_fini();
    return now;
}

GN_TEST(virtual_clock_deterministic)
{
    /* The exact order follows from the design (derived by hand, then
     * observed): one deferred call per instance and turn; the receiving
     * end copies both writes into its buffer, completing them, before it
     * delivers them as one run; the client's FIN is behind that data, so S
     * sees EOF in the same turn, after its echo write was queued; the echo
     * completes when C pulls it in the next turn; closes finish in the
     * order the ends were closed. */
    static const char expect[] =
        "S:accept C:dialed "
        "C:wdone(0) C:wdone(0) S:data(abcdefg) S:eof "
        "S:wdone(0) C:data(abcdefg) C:eof "
        "C:closed S:closed ";
    gn_time t1 = scripted_run();
    char first[sizeof elog];
    memcpy(first, elog, sizeof elog);
    gn_time t2 = scripted_run();
    CHECK_EQ(t1, 0); /* nothing needed the clock to move */
    CHECK_EQ(t2, 0);
    CHECK_STR(elog, first);
    CHECK_STR(elog, expect);
}

GN_TEST(missing_id_refused)
{
    tr_env_init("memory", NULL, NULL, true);
    CHECK_OK(tr_dial(E.cli, "/memory/424242", NULL));
    CHECK_EQ(E.dials_failed, 0); /* not from inside dial() */
    RUN_UNTIL(E.dials_failed == 1, 2000);
    CHECK_EQ(E.last_dial_err, GN_ECONNREFUSED);
    CHECK_EQ(E.dials_ok, 0);
    CHECK_EQ(gn_loop_now(E.loop), 0);
    tr_env_fini();
}

GN_TEST(listen_ids)
{
    char buf[64];
    tr_env_init("memory", NULL, NULL, true);
    gn_listener *l1, *l2, *l3;
    gn_multiaddr *a = NULL;
    /* /memory/0 takes the lowest free id of this loop */
    CHECK_OK(tr_listen(E.srv, "/memory/0", &l1));
    CHECK_OK(tr_listen(E.cli, "/memory/0", &l2)); /* other instance, same table */
    CHECK_OK(gn_listener_addr(l1, &a));
    CHECK_OK(gn_multiaddr_to_string(a, buf, sizeof buf));
    CHECK_STR(buf, "/memory/1");
    gn_multiaddr_free(a);
    CHECK_OK(gn_listener_addr(l2, &a));
    CHECK_OK(gn_multiaddr_to_string(a, buf, sizeof buf));
    CHECK_STR(buf, "/memory/2");
    gn_multiaddr_free(a);
    CHECK_EQ(tr_listen(E.cli, "/memory/1", &l3), GN_EADDRINUSE);
    tr_listener_close(l1);
    /* unreachable at once, free again after */
    CHECK_OK(tr_dial(E.cli, "/memory/1", NULL));
    RUN_UNTIL(E.listeners_closed == 1 && E.dials_failed == 1, 2000);
    CHECK_EQ(E.last_dial_err, GN_ECONNREFUSED);
    CHECK_OK(tr_listen(E.cli, "/memory/1", &l3));
    tr_listener_close(l2);
    tr_listener_close(l3);
    tr_env_fini();
}

GN_TEST(loops_are_isolated)
{
    tr_env_init("memory", NULL, NULL, true);
    gn_listener *l;
    CHECK_OK(tr_listen(E.srv, "/memory/55", &l));
    /* a second loop with its own instance */
    gn_loop_config lc;
    gn_loop_config_default(&lc);
    lc.virtual_clock = true;
    gn_loop *loop2 = NULL;
    gn_transport *t2 = NULL;
    CHECK_OK(gn_loop_new(&lc, &loop2));
    CHECK_OK(gn_transport_new(E.ops, loop2, NULL, &t2));
    gn_multiaddr *ma = NULL;
    gn_listener *l2;
    CHECK_OK(gn_multiaddr_parse("/memory/55", &ma));
    /* the same id is free on the other loop... */
    E.listeners_open++;
    CHECK_OK(gn_transport_listen(t2, ma, tr_accept_cb, NULL, &l2));
    gn_multiaddr_free(ma);
    /* ...and /memory/56, open on loop 1 only, is refused from loop 2 */
    gn_listener *l56;
    CHECK_OK(tr_listen(E.srv, "/memory/56", &l56));
    CHECK_OK(gn_multiaddr_parse("/memory/56", &ma));
    CHECK_OK(gn_transport_dial(t2, ma, tr_dial_cb, NULL, NULL));
    gn_multiaddr_free(ma);
    for (int i = 0; i < 10 && E.dials_failed == 0; i++) {
        gn_loop_run(loop2, GN_RUN_NOWAIT);
    }
    CHECK_EQ(E.dials_failed, 1);
    CHECK_EQ(E.last_dial_err, GN_ECONNREFUSED);
    CHECK_EQ(E.accepts, 0);
    gn_listener_close(l2, tr_listener_closed_cb, NULL);
    for (int i = 0; i < 10 && E.listeners_closed == 0; i++) {
        gn_loop_run(loop2, GN_RUN_NOWAIT);
    }
    CHECK_EQ(E.listeners_closed, 1);
    gn_transport_free(t2);
    gn_loop_free(loop2);
    tr_listener_close(l);
    tr_listener_close(l56);
    tr_env_fini();
}

GN_TEST(exact_bounds)
{
    /* write_queue_max 1000: the writer's queue and the reader's buffer each
     * hold up to 1000 bytes; GN_EAGAIN when a write would push a non-empty
     * queue over 1000; writable once the queue is at most 500. */
    static uint8_t buf[600];
    for (size_t i = 0; i < sizeof buf; i++) {
        buf[i] = tr_pat(i);
    }
    gn_transport_config cfg = cfg_default();
    cfg.write_queue_max = 1000;
    tr_env_init("memory", &cfg, &cfg, true);
    E.srv_prof = (tr_profile){.no_read = true, .rx_cap = 4096};
    gn_listener *l;
    CHECK_OK(tr_listen(E.srv, "/memory/3", &l));
    tconn *c = tc_new(NULL, false);
    CHECK_OK(tr_dial(E.cli, "/memory/3", c));
    RUN_UNTIL(c->s && E.last_accepted, 2000);
    tconn *s = E.last_accepted;

    CHECK_EQ(tc_send(c, buf, 600), 0);
    CHECK_EQ(tc_send(c, buf, 600), GN_EAGAIN); /* 600 + 600 > 1000 */
    tr_run_for(50);
    /* the reader buffered all 600: the write completed, the queue is empty */
    CHECK_EQ(c->completed, 1);
    CHECK_EQ(c->writables, 1);
    CHECK_EQ(s->rx_total, 0);

    CHECK_EQ(tc_send(c, buf, 600), 0);
    tr_run_for(50);
    /* 400 more fit the reader's buffer (1000); 200 stay queued */
    CHECK_EQ(c->completed, 1);
    CHECK_EQ(tc_send(c, buf, 600), 0);   /* 200 + 600 <= 1000 */
    CHECK_EQ(tc_send(c, buf, 300), GN_EAGAIN); /* 800 + 300 > 1000 */
    tr_run_for(50);
    CHECK_EQ(c->completed, 1);
    CHECK_EQ(c->writables, 1);

    CHECK_OK(tc_read_start(s));
    RUN_UNTIL(s->rx_total == 1800 && c->completed == 3, 2000);
    CHECK_EQ(c->writables, 2);
    for (int k = 0; k < 3; k++) {
        CHECK_MEM(s->rx + 600 * k, buf, 600);
    }
    tr_listener_close(l);
    tr_env_fini();
}

GN_TEST(close_like_tcp)
{
    tr_env_init("memory", NULL, NULL, true);
    E.srv_prof = (tr_profile){.no_read = true};
    gn_listener *l;
    CHECK_OK(tr_listen(E.srv, "/memory/4", &l));

    /* the server closes with unread data: the client gets a reset */
    tconn *c = tc_new(NULL, false);
    CHECK_OK(tr_dial(E.cli, "/memory/4", c));
    RUN_UNTIL(c->s && E.last_accepted, 2000);
    CHECK_OK(tc_send(c, "unread", 6));
    RUN_UNTIL(c->completed == 1, 2000);
    tc_close(E.last_accepted);
    RUN_UNTIL(c->errors == 1, 2000);
    CHECK_EQ(c->last_err, GN_ECONNRESET);
    CHECK_EQ(c->eofs, 0);

    /* nothing unread: EOF, then writes fail with GN_EPIPE */
    E.last_accepted = NULL;
    tconn *c2 = tc_new(NULL, false);
    CHECK_OK(tr_dial(E.cli, "/memory/4", c2));
    RUN_UNTIL(c2->s && E.last_accepted, 2000);
    tc_close(E.last_accepted);
    RUN_UNTIL(c2->eofs == 1, 2000);
    CHECK_EQ(c2->errors, 0);
    CHECK_EQ(tc_send(c2, "late", 4), GN_EPIPE);

    /* data written just before close still arrives, then EOF */
    E.srv_prof = (tr_profile){.rx_cap = 16};
    E.last_accepted = NULL;
    tconn *c3 = tc_new(NULL, false);
    CHECK_OK(tr_dial(E.cli, "/memory/4", c3));
    RUN_UNTIL(c3->s && E.last_accepted, 2000);
    tconn *s3 = E.last_accepted;
    CHECK_OK(tc_send(c3, "bye", 3));
    tr_run_for(10); /* the write reaches the peer's buffer */
    tc_close(c3);
    RUN_UNTIL(s3->eofs == 1, 2000);
    CHECK_EQ(s3->rx_len, 3);
    CHECK_MEM(s3->rx, "bye", 3);
    CHECK_EQ(c3->failed, 0);
    tr_listener_close(l);
    tr_env_fini();
}

GN_TEST(max_connections)
{
    gn_transport_config scfg = cfg_default(), ccfg = cfg_default();
    scfg.max_connections = 1;
    ccfg.max_connections = 2;
    tr_env_init("memory", &scfg, &ccfg, true);
    gn_listener *l;
    CHECK_OK(tr_listen(E.srv, "/memory/8", &l));
    tconn *c1 = tc_new(NULL, false);
    CHECK_OK(tr_dial(E.cli, "/memory/8", c1));
    RUN_UNTIL(c1->s != NULL, 2000);
    /* the listener's instance is full: refused */
    CHECK_OK(tr_dial(E.cli, "/memory/8", NULL));
    RUN_UNTIL(E.dials_failed == 1, 2000);
    CHECK_EQ(E.last_dial_err, GN_ECONNREFUSED);
    CHECK_EQ(E.srv->nconns, 1);
    /* the dialer's own limit: one open + one in progress */
    CHECK_OK(tr_dial(E.cli, "/memory/999", NULL));
    CHECK_EQ(tr_dial(E.cli, "/memory/999", NULL), GN_ELIMIT);
    RUN_UNTIL(E.dials_failed == 2, 2000);
    tr_listener_close(l);
    tr_env_fini();
}

GN_TEST(same_instance_dials_itself)
{
    tr_env_init("memory", NULL, NULL, true);
    E.srv_prof = (tr_profile){.echo = true};
    gn_listener *l;
    CHECK_OK(tr_listen(E.srv, "/memory/12", &l));
    tconn *c = tc_new(&(tr_profile){.rx_cap = 8}, false);
    CHECK_OK(tr_dial(E.srv, "/memory/12/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N", c));
    RUN_UNTIL(c->s != NULL, 2000);
    CHECK_EQ(E.srv->nconns, 2);
    CHECK_OK(tc_send(c, "self", 4));
    RUN_UNTIL(c->rx_total == 4, 2000);
    CHECK_MEM(c->rx, "self", 4);
    gn_multiaddr *ma = NULL;
    CHECK_OK(gn_multiaddr_parse("/memory/12/tcp/1", &ma));
    CHECK(!gn_transport_handles(E.srv, ma));
    gn_multiaddr_free(ma);
    tr_listener_close(l);
    tr_env_fini();
}

/* A dial cancelled before its turn: no connection is made (the listener
 * sees no accept), the callback runs once with GN_ECANCELED, from the loop. */
GN_TEST(dial_cancel)
{
    tr_env_init("memory", NULL, NULL, true);
    gn_listener *l;
    CHECK_OK(tr_listen(E.srv, "/memory/77", &l));
    gn_multiaddr *ma = NULL;
    CHECK_OK(gn_multiaddr_parse("/memory/77", &ma));
    gn_op *op = NULL;
    TR_ENTER();
    CHECK_OK(gn_transport_dial(E.cli, ma, tr_dial_cb, NULL, &op));
    CHECK(op != NULL);
    gn_op_cancel(op);
    TR_LEAVE();
    CHECK_EQ(E.dials_failed, 0);
    /* a second dial, not cancelled, still connects */
    CHECK_OK(tr_dial_ma(E.cli, ma, NULL));
    gn_multiaddr_free(ma);
    tr_run_for(50);
    CHECK_EQ(E.dials_failed, 1);
    CHECK_EQ(E.last_dial_err, GN_ECANCELED);
    CHECK_EQ(E.dials_ok, 1);
    CHECK_EQ(E.accepts, 1);
    tr_listener_close(l);
    tr_env_fini();
}

GN_TEST_MAIN(GN_T(dial_cancel), GN_T(virtual_clock_deterministic), GN_T(missing_id_refused), GN_T(listen_ids),
             GN_T(loops_are_isolated), GN_T(exact_bounds), GN_T(close_like_tcp),
             GN_T(max_connections), GN_T(same_instance_dials_itself))
