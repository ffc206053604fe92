/*
 * ergo_uv_test: two golemnet Ergo endpoints on 127.0.0.1 over real TCP
 * (protocols/ergo/ergo_uv.c on the ehs/enp/pool cores): the Start
 * handshake, a pool of 3 links, ENP frames both ways with per-sender order,
 * a joined link killed mid-stream (the dialler re-joins, the stream goes
 * on), a cookie mismatch refused on both sides, and a clean close (the loop
 * ends empty); a hard write error inside a send closes the link.
 */
#include "gn_test.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "ergo_uv.h"
#include "golemnet/edf.h"
#include "golemnet/err.h"

#define NSEND 3

typedef struct side {
    gni_ergo_node *n;
    gni_ergo_conn *c;
    unsigned conns, downs, link_errors;
    int last_err;
    char diag[256];
    unsigned frames;
    int64_t last_seq[NSEND];
    unsigned got[NSEND];
    bool out_of_order;
} side;

#include "ergo_uv_harness.h"

static void on_frame(gni_ergo_conn *c, const uint8_t *f, size_t len, void *ud)
{
    side *s = ud;
    (void)c;
    s->frames++;
    if (len != 42 || f[7] != 101 || f[33] != 0x95)
        return;
    uint64_t from = 0;
    int64_t seq = 0;
    for (int i = 0; i < 8; i++) {
        from = from << 8 | f[8 + i];
        seq = (int64_t)((uint64_t)seq << 8 | f[34 + i]);
    }
    unsigned k = (unsigned)(from - 1001);
    if (k >= NSEND)
        return;
    if (seq <= s->last_seq[k])
        s->out_of_order = true;
    s->last_seq[k] = seq;
    s->got[k]++;
}

static gni_ergo_options opts(const gn_edf_registry *r, const char *node, const char *cookie,
                             side *s)
{
    const gni_ergo_callbacks cb = {.on_conn = on_conn,
                                   .on_frame = on_frame,
                                   .on_conn_down = on_down,
                                   .on_link_error = on_link_error};
    return ergo_test_options(r, node, cookie, &cb, s);
}

static void send_batch(side *s, int64_t *seq, unsigned per_sender)
{
    ergo_test_send_batch(s->c, seq, NSEND, per_sender);
}

static unsigned total(const side *s) { return s->got[0] + s->got[1] + s->got[2]; }

GN_TEST(pool_of_three_over_tcp)
{
    ergo_test_block_sigpipe();
    CHECK_OK(uv_loop_init(&loop));
    gn_edf_registry *r = gn_edf_registry_new();
    CHECK_OK(gn_edf_registry_add_ergo(r));
    gn_edf_registry_freeze(r);
    side a, b, c;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    memset(&c, 0, sizeof c);
    gni_ergo_options oa = opts(r, "beta@127.0.0.1", "golem-test-cookie", &a);
    oa.pool_size = 3;
    oa.max_message_size = 1024; /* announced in A's Introduce */
    gni_ergo_options ob = opts(r, "alpha@127.0.0.1", "golem-test-cookie", &b);
    CHECK_OK(gni_ergo_node_new(&loop, &oa, &a.n));
    CHECK_OK(gni_ergo_node_new(&loop, &ob, &b.n));
    CHECK(gni_ergo_node_port(a.n) != 0);

    /* Start handshake, then two joins */
    CHECK_OK(gni_ergo_dial(b.n, "127.0.0.1", gni_ergo_node_port(a.n), "beta@127.0.0.1"));
    RUN_UNTIL(a.c && b.c && gni_ergo_conn_links(a.c) == 3 && gni_ergo_conn_links(b.c) == 3);
    CHECK_EQ(a.conns, 1);
    CHECK_EQ(b.conns, 1);
    const gni_ehs_result *ib = gni_ergo_conn_info(b.c), *ia = gni_ergo_conn_info(a.c);
    CHECK_EQ(ib->pool_size, 3);
    CHECK_EQ(ib->conn_id.len, 32);
    CHECK_MEM(ib->conn_id.base, ia->conn_id.base, 32);
    CHECK_EQ(ib->ndsn, 1);
    CHECK_EQ(a.link_errors + b.link_errors, 0);

    /* frames both ways; one sender's frames stay in order */
    int64_t seq_b[NSEND] = {0, 0, 0}, seq_a[NSEND] = {0, 0, 0};
    send_batch(&b, seq_b, 100);
    send_batch(&a, seq_a, 10);
    RUN_UNTIL(total(&a) == 300 && total(&b) == 30);
    CHECK(!a.out_of_order && !b.out_of_order);

    /* kill a joined link mid-stream (acceptor side): the dialler sees it go, re-joins,
     * and the stream goes on */
    send_batch(&b, seq_b, 25);
    CHECK_OK(gni_ergo_conn_kill_link(a.c, 1));
    CHECK_EQ(gni_ergo_conn_links(a.c), 2);
    RUN_UNTIL(gni_ergo_conn_links(b.c) == 2 || gni_ergo_conn_links(b.c) == 3);
    unsigned before = total(&a);
    send_batch(&b, seq_b, 50);
    RUN_UNTIL(total(&a) >= before + 150 && gni_ergo_conn_links(a.c) == 3 &&
              gni_ergo_conn_links(b.c) == 3);
    /* order holds per link set: a sender whose link count changed moved to another link
     * (as in Ergo) and its frames in flight on the old one may land later */
    a.out_of_order = false;
    CHECK(total(&a) >= 300 + 150);
    CHECK_EQ(a.downs + b.downs, 0);
    /* the same on the dialler's side: it drops a joined link itself and re-joins */
    CHECK_OK(gni_ergo_conn_kill_link(b.c, 2));
    CHECK_EQ(gni_ergo_conn_links(b.c), 2);
    RUN_UNTIL(gni_ergo_conn_links(a.c) == 3 && gni_ergo_conn_links(b.c) == 3 &&
              a.link_errors == 0);
    CHECK_EQ(gni_ergo_conn_kill_link(b.c, 3), GN_ENOTFOUND);
    /* after the re-join every frame arrives again */
    before = total(&a);
    send_batch(&b, seq_b, 20);
    RUN_UNTIL(total(&a) == before + 60);
    CHECK(!a.out_of_order);
    CHECK_EQ(a.conns, 1); /* the join did not make a second connection */

    /* MaxMessageSize: B refuses locally a frame above A's announced limit */
    CHECK_EQ(gni_ergo_conn_info(b.c)->peer_max_message_size, 1024);
    static uint8_t big[1025];
    frame101(big, 1001, 0);
    big[4] = 0x04;
    big[5] = 0x01; /* 1025 bytes */
    CHECK_EQ(gni_ergo_conn_send(b.c, 1001, true, big, sizeof big), GN_ETOOBIG);
    /* receive side: a header announcing more than A's limit closes that link with a
     * clear error (B's local check saw 42 bytes; the header says 1025); B re-joins */
    unsigned errs0 = a.link_errors;
    CHECK_OK(gni_ergo_conn_send(b.c, 1001, true, big, 42));
    RUN_UNTIL(a.link_errors > errs0 && gni_ergo_conn_links(a.c) == 3 &&
              gni_ergo_conn_links(b.c) == 3);
    CHECK(strstr(a.diag, "MaxMessageSize") != NULL);
    CHECK_EQ(a.conns, 1);
    CHECK_EQ(a.downs + b.downs, 0);

    /* a node with another cookie: refused on both sides, and the refusal says so */
    gni_ergo_options oc = opts(r, "gamma@127.0.0.1", "wrong-cookie", &c);
    CHECK_OK(gni_ergo_node_new(&loop, &oc, &c.n));
    unsigned errs = a.link_errors;
    CHECK_OK(gni_ergo_dial(c.n, "127.0.0.1", gni_ergo_node_port(a.n), NULL));
    RUN_UNTIL(a.link_errors > errs && c.link_errors > 0);
    CHECK(strstr(a.diag, "cookie mismatch") != NULL);
    CHECK(!a.out_of_order);
    CHECK(strstr(c.diag, "cookie mismatch") != NULL);
    CHECK_EQ(c.conns, 0);
    CHECK_EQ(a.conns, 1);

    /* close: connections end, every handle closes, the loop is empty */
    closed = 0;
    gni_ergo_node_close(c.n, on_closed, NULL);
    gni_ergo_node_close(b.n, on_closed, NULL);
    gni_ergo_node_close(a.n, on_closed, NULL);
    RUN_UNTIL(closed == 3);
    CHECK_EQ(b.downs, 1);
    CHECK_EQ(a.downs, 1);
    CHECK_EQ(uv_run(&loop, UV_RUN_NOWAIT), 0);
    CHECK_OK(uv_loop_close(&loop));
    gn_edf_registry_free(r);
}

/* on_conn may end the connection it reports (here: by closing its node);
 * the adapter must not touch it afterwards (run under ASan in CI) */
static void on_conn_close_node(gni_ergo_conn *c, void *ud)
{
    side *s = ud;
    s->conns++;
    (void)c;
    gni_ergo_node_close(s->n, on_closed, NULL);
}

GN_TEST(callback_may_end_the_connection)
{
    CHECK_OK(uv_loop_init(&loop));
    gn_edf_registry *r = gn_edf_registry_new();
    CHECK_OK(gn_edf_registry_add_ergo(r));
    gn_edf_registry_freeze(r);
    side a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    gni_ergo_options oa = opts(r, "beta@127.0.0.1", "golem-test-cookie", &a);
    oa.pool_size = 3; /* the dialler would join two more links after on_conn */
    gni_ergo_options ob = opts(r, "alpha@127.0.0.1", "golem-test-cookie", &b);
    ob.cb.on_conn = on_conn_close_node;
    CHECK_OK(gni_ergo_node_new(&loop, &oa, &a.n));
    CHECK_OK(gni_ergo_node_new(&loop, &ob, &b.n));
    closed = 0;
    CHECK_OK(gni_ergo_dial(b.n, "127.0.0.1", gni_ergo_node_port(a.n), "beta@127.0.0.1"));
    RUN_UNTIL(b.conns == 1 && closed == 1);
    CHECK_EQ(b.downs, 1); /* its connection ended with the node */
    RUN_UNTIL(a.downs == 1 || a.conns == 0);
    gni_ergo_node_close(a.n, on_closed, NULL);
    RUN_UNTIL(closed == 2);
    CHECK_EQ(uv_run(&loop, UV_RUN_NOWAIT), 0);
    CHECK_OK(uv_loop_close(&loop));
    gn_edf_registry_free(r);
}

/* ---- re-join back-off ----
 * B's main link runs through a relay; the relay cuts its side towards A only, and A
 * then drops its joined links too: A has forgotten the connection while B still holds
 * its main link to the relay. Every Join B sends is answered by A and then closed (no
 * such connection). Without a back-off B re-joins at once, each time. */

typedef struct relay {
    uv_tcp_t listener, down, up; /* down: from B; up: to A */
    uv_connect_t creq;
    struct sockaddr_in a;
    bool have_down, up_ok, cut;
    int open;
} relay;

static void relay_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    (void)h;
    (void)sz;
    b->base = malloc(65536);
    b->len = b->base ? 65536 : 0;
}

static void relay_written(uv_write_t *w, int status)
{
    (void)status;
    free(w->data);
    free(w);
}

static void relay_forward(uv_stream_t *to, const uv_buf_t *b, ssize_t n)
{
    uv_write_t *w = malloc(sizeof *w);
    CHECK(w != NULL);
    w->data = b->base;
    uv_buf_t out = uv_buf_init(b->base, (unsigned)n);
    if (uv_write(w, to, &out, 1, relay_written) < 0) {
        free(b->base);
        free(w);
    }
}

static void relay_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    relay *r = s->data;
    uv_stream_t *to = s == (uv_stream_t *)&r->down ? (uv_stream_t *)&r->up
                                                   : (uv_stream_t *)&r->down;
    if (n > 0 && !r->cut && r->up_ok) {
        relay_forward(to, b, n);
        return;
    }
    free(b->base);
    if (n < 0)
        uv_read_stop(s);
}

static void relay_up_connected(uv_connect_t *c, int status)
{
    relay *r = c->data;
    CHECK_OK(status);
    r->up_ok = true;
    uv_read_start((uv_stream_t *)&r->up, relay_alloc, relay_read);
    uv_read_start((uv_stream_t *)&r->down, relay_alloc, relay_read);
}

static void relay_accept(uv_stream_t *l, int status)
{
    relay *r = l->data;
    if (status < 0 || r->have_down)
        return;
    uv_tcp_init(&loop, &r->down);
    uv_tcp_init(&loop, &r->up);
    r->down.data = r->up.data = r;
    r->have_down = true;
    CHECK_OK(uv_accept(l, (uv_stream_t *)&r->down));
    r->creq.data = r;
    CHECK_OK(uv_tcp_connect(&r->creq, &r->up, (const struct sockaddr *)&r->a,
                            relay_up_connected));
}

static void relay_closed(uv_handle_t *h)
{
    (void)h;
    closed++;
}

static unsigned refused_joins;
static void on_link_error_count(gni_ergo_node *n, int err, const char *diag, void *ud)
{
    on_link_error(n, err, diag, ud);
    if (strstr(diag, "no such connection"))
        refused_joins++;
}

static void tick_cb(uv_timer_t *t) { (void)t; }

GN_TEST(rejoin_backs_off)
{
    CHECK_OK(uv_loop_init(&loop));
    gn_edf_registry *r = gn_edf_registry_new();
    CHECK_OK(gn_edf_registry_add_ergo(r));
    gn_edf_registry_freeze(r);
    uv_timer_t tick; /* keeps RUN_UNTIL's bound even when nothing else is armed */
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, tick_cb, 50, 50);
    side a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    gni_ergo_options oa = opts(r, "beta@127.0.0.1", "golem-test-cookie", &a);
    oa.pool_size = 3;
    oa.cb.on_link_error = on_link_error_count;
    gni_ergo_options ob = opts(r, "alpha@127.0.0.1", "golem-test-cookie", &b);
    CHECK_OK(gni_ergo_node_new(&loop, &oa, &a.n));
    CHECK_OK(gni_ergo_node_new(&loop, &ob, &b.n));

    relay rl;
    memset(&rl, 0, sizeof rl);
    struct sockaddr_in any0;
    uv_ip4_addr("127.0.0.1", 0, &any0);
    uv_ip4_addr("127.0.0.1", gni_ergo_node_port(a.n), &rl.a);
    uv_tcp_init(&loop, &rl.listener);
    rl.listener.data = &rl;
    CHECK_OK(uv_tcp_bind(&rl.listener, (const struct sockaddr *)&any0, 0));
    CHECK_OK(uv_listen((uv_stream_t *)&rl.listener, 4, relay_accept));
    struct sockaddr_in got;
    int gl = sizeof got;
    uv_tcp_getsockname(&rl.listener, (struct sockaddr *)&got, &gl);

    /* B's main link via the relay; the joins go straight to A (PoolDSN) */
    CHECK_OK(gni_ergo_dial(b.n, "127.0.0.1", ntohs(got.sin_port), "beta@127.0.0.1"));
    RUN_UNTIL(a.c && b.c && gni_ergo_conn_links(a.c) == 3 && gni_ergo_conn_links(b.c) == 3);

    /* A forgets the connection: its main link (the relay's upstream) and both joins go;
     * B keeps its main link to the relay, loses the joins, and re-joins */
    rl.cut = true;
    uv_read_stop((uv_stream_t *)&rl.down);
    uv_close((uv_handle_t *)&rl.up, relay_closed);
    RUN_UNTIL(gni_ergo_conn_links(a.c) == 2);
    CHECK_OK(gni_ergo_conn_kill_link(a.c, 0));
    CHECK_OK(gni_ergo_conn_kill_link(a.c, 0));
    RUN_UNTIL(a.c == NULL && a.downs == 1);
    refused_joins = 0;
    uint64_t t0 = uv_now(&loop);
    while (uv_now(&loop) - t0 < 3000) { /* bounded: 3 s of loop time (the tick wakes us) */
        uv_run(&loop, UV_RUN_ONCE);
        uv_update_time(&loop);
    }
    /* replacements go on, but bounded: 0, 0.2, 0.4, 0.8, 1.6 s apart for each of the two
     * slots; without the back-off this is thousands */
    printf("# refused joins in 3 s: %u\n", refused_joins);
    CHECK(refused_joins >= 2);
    CHECK(refused_joins <= 16);
    CHECK(b.c != NULL); /* B's connection still stands on its main link */
    CHECK_EQ(b.downs, 0);

    closed = 0;
    uv_close((uv_handle_t *)&rl.down, relay_closed);
    uv_close((uv_handle_t *)&rl.listener, relay_closed);
    uv_close((uv_handle_t *)&tick, relay_closed);
    gni_ergo_node_close(b.n, on_closed, NULL);
    gni_ergo_node_close(a.n, on_closed, NULL);
    RUN_UNTIL(closed == 5);
    CHECK_EQ(uv_run(&loop, UV_RUN_NOWAIT), 0);
    CHECK_OK(uv_loop_close(&loop));
    gn_edf_registry_free(r);
}

/* a write that fails for good inside a send (the peer is gone: ECONNRESET/EPIPE from the
 * immediate write of a full batch) lost the batch's frames, whose sends had returned 0:
 * the send says GN_ECONNRESET, every later send on the link fails too (none is taken into
 * a new batch that nobody will write), and the connection goes down from the loop */
GN_TEST(hard_write_error_closes_the_link)
{
    ergo_test_block_sigpipe();
    CHECK_OK(uv_loop_init(&loop));
    gn_edf_registry *r = gn_edf_registry_new();
    CHECK_OK(gn_edf_registry_add_ergo(r));
    gn_edf_registry_freeze(r);
    side a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    gni_ergo_options oa = opts(r, "beta@127.0.0.1", "golem-test-cookie", &a);
    oa.pool_size = 1;
    gni_ergo_options ob = opts(r, "alpha@127.0.0.1", "golem-test-cookie", &b);
    CHECK_OK(gni_ergo_node_new(&loop, &oa, &a.n));
    CHECK_OK(gni_ergo_node_new(&loop, &ob, &b.n));
    CHECK_OK(gni_ergo_dial(b.n, "127.0.0.1", gni_ergo_node_port(a.n), "beta@127.0.0.1"));
    RUN_UNTIL(a.c && b.c && gni_ergo_conn_links(a.c) == 1 && gni_ergo_conn_links(b.c) == 1);
    /* A drops its only link (its socket closes now); B has not run since */
    CHECK_OK(gni_ergo_conn_kill_link(a.c, 0));
    static uint8_t big[40000]; /* two do not fit one 64 KiB batch */
    frame101(big, 1001, 0);
    int rc = 0;
    unsigned k = 0;
    for (; k < 16 && rc == 0; k++) /* bounded: the first hard error comes within a few */
        rc = gni_ergo_conn_send(b.c, 1001, true, big, sizeof big);
    CHECK(k < 16);
    CHECK_EQ(rc, GN_ECONNRESET);
    CHECK_EQ(gni_ergo_conn_send(b.c, 1001, true, big, 42), GN_ECONNRESET);
    CHECK_EQ(gni_ergo_conn_send(b.c, 1001, true, big, sizeof big), GN_ECONNRESET);
    RUN_UNTIL(b.downs == 1 && !b.c);
    closed = 0;
    gni_ergo_node_close(b.n, on_closed, NULL);
    gni_ergo_node_close(a.n, on_closed, NULL);
    RUN_UNTIL(closed == 2);
    CHECK_EQ(uv_run(&loop, UV_RUN_NOWAIT), 0);
    CHECK_OK(uv_loop_close(&loop));
    gn_edf_registry_free(r);
}

GN_TEST_MAIN(GN_T(pool_of_three_over_tcp), GN_T(callback_may_end_the_connection),
             GN_T(rejoin_backs_off), GN_T(hard_write_error_closes_the_link))
