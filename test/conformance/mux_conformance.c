/*
 * Muxer conformance suite: the same tests for every mux-layer component.
 * argv[1] names the component ("yamux", "mplex", or a registered protocol
 * id; see conf.h); an optional argv[2] selects tests by name.
 *
 * Sessions run over a reliable built-in transport, an in-process one when
 * there is one (no crypto): a client (dialer, initiator) and a server
 * session on the two ends of one connection, or a session facing a raw peer
 * that writes bytes by hand.
 *
 * What to expect beyond the common contract comes from the muxer's
 * capability bits (GN_MUX_CAP_*), never from its name; wire formats are
 * checked byte for byte by each core's unit tests (test/unit/mux/).
 *
 * Checked everywhere: no handler, completion or callback runs inside a
 * gn_* call the test made; every accepted write completes exactly once;
 * all streams and sessions close.
 */
#include "golemnet/golemnet.h"

#include "conf.h"
#include "gn_test.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static const gn_mux_ops *ops;    /* the component under test */
static gn_loop *loop;
static gn_registry *reg;
static gn_transport *tr;         /* the harness transport (conf_harness_transport) */

static bool has_cap(uint32_t bit)
{
    return (ops->caps & bit) != 0;
}

/* ---- re-entry and write accounting ------------------------------------ */

static int in_call;   /* > 0 while the test is inside a gn_* call */
static int reentrant; /* handlers that ran inside one */
#define CB_CHECK()                                                                           \
    do {                                                                                     \
        if (in_call)                                                                         \
            reentrant++;                                                                     \
    } while (0)

/* Buffered-bytes watch: sampled on every event and loop turn. */
static gn_mux_session *watch_ms;
static size_t watch_max;
static size_t watch_bound;
static int watch_over;
/* Send-queue watch: the most bytes a session's muxer held for sending. */
static gn_mux_session *send_watch_ms;
static size_t send_watch_max;

static void sample(void)
{
    if (send_watch_ms) {
        gn_mux_metrics sm;
        gn_mux_get_metrics(send_watch_ms, &sm);
        if (sm.send_queued_bytes > send_watch_max)
            send_watch_max = sm.send_queued_bytes;
    }
    if (!watch_ms)
        return;
    gn_mux_metrics m;
    gn_mux_get_metrics(watch_ms, &m);
    if (m.buffered_bytes > watch_max)
        watch_max = m.buffered_bytes;
    if (m.buffered_bytes > watch_bound)
        watch_over++;
}

/* A position-dependent byte, so loss, duplication or reordering shows. */
static uint8_t pat(uint64_t i)
{
    uint64_t x = (i + 1) * UINT64_C(0x9E3779B97F4A7C15);
    x ^= x >> 29;
    return (uint8_t)(x >> 32);
}

static uint8_t *pattern; /* PAT_LEN bytes of pat(i) */
#define PAT_LEN (16u << 20)

/* ---- test streams -------------------------------------------------------- */

typedef struct tprof {
    bool no_read;      /* do not start reading */
    bool echo;         /* write back what arrives */
    bool echo_shut;    /* shut down on EOF (after echoing) */
    bool verify;       /* check arriving bytes against pat() */
    bool close_on_eof;
    bool keep_on_error; /* do not close on error */
    size_t rx_cap;     /* keep up to this many arriving bytes (default 64 KiB) */
} tprof;

typedef struct ts {
    gn_stream *s;
    tprof p;
    uint8_t *rx;
    size_t rx_len;
    uint64_t rx_total, bad;
    int eofs, errors, last_err, writables;
    bool closing, closed, shut;
    /* writer */
    const uint8_t *src;
    size_t src_len, src_off, chunk;
    bool shut_when_done;
    int accepted, completed, failed, canceled, eagains, last_status, write_errors, last_write_rc;
    int over_completed;
} ts;

#define MAX_TS 2400
static ts *all_ts[MAX_TS];
static int n_ts;

static ts *ts_new(const tprof *p)
{
    CHECK(n_ts < MAX_TS);
    ts *t = calloc(1, sizeof *t);
    CHECK(t != NULL);
    if (p)
        t->p = *p;
    if (!t->p.rx_cap)
        t->p.rx_cap = 64u << 10;
    t->rx = malloc(t->p.rx_cap);
    all_ts[n_ts++] = t;
    return t;
}

static void ts_closed_cb(gn_stream *s, void *arg)
{
    (void)s;
    ts *t = arg;
    CB_CHECK();
    t->closed = true;
    t->s = NULL;
}

static void ts_close(ts *t)
{
    if (!t || !t->s || t->closing)
        return;
    t->closing = true;
    in_call++;
    gn_stream_close(t->s, ts_closed_cb, t);
    in_call--;
}

static void ts_reset(ts *t)
{
    if (!t || !t->s || t->closing)
        return;
    t->closing = true;
    in_call++;
    gn_stream_reset(t->s, ts_closed_cb, t);
    in_call--;
}

static int ts_shutdown(ts *t)
{
    in_call++;
    int rc = gn_stream_shutdown(t->s);
    in_call--;
    if (rc == 0)
        t->shut = true;
    return rc;
}

static int ts_read_start(ts *t)
{
    in_call++;
    int rc = gn_stream_read_start(t->s);
    in_call--;
    return rc;
}

static int ts_read_stop(ts *t)
{
    in_call++;
    int rc = gn_stream_read_stop(t->s);
    in_call--;
    return rc;
}

static void ts_write_done(void *arg, int status)
{
    ts *t = arg;
    CB_CHECK();
    sample();
    t->completed++;
    if (t->completed > t->accepted)
        t->over_completed++;
    if (status != 0) {
        t->failed++;
        t->last_status = status;
        if (status == GN_ECANCELED)
            t->canceled++;
    }
}

/* Writes @len bytes that stay valid for the test. */
static int ts_send(ts *t, const void *data, size_t len)
{
    gn_slice sl = gn_slice_of(data, len);
    in_call++;
    int rc = gn_stream_write(t->s, &sl, 1, ts_write_done, t);
    in_call--;
    if (rc == 0) {
        t->accepted++;
    } else if (rc == GN_EAGAIN) {
        t->eagains++;
    } else {
        t->write_errors++;
        t->last_write_rc = rc;
    }
    return rc;
}

typedef struct tcopy {
    ts *t;
    uint8_t data[];
} tcopy;

static void ts_copy_done(void *arg, int status)
{
    tcopy *c = arg;
    ts_write_done(c->t, status);
    free(c);
}

static int ts_send_copy(ts *t, const uint8_t *data, size_t len)
{
    tcopy *c = malloc(sizeof *c + len);
    CHECK(c != NULL);
    c->t = t;
    memcpy(c->data, data, len);
    gn_slice sl = gn_slice_of(c->data, len);
    in_call++;
    int rc = gn_stream_write(t->s, &sl, 1, ts_copy_done, c);
    in_call--;
    if (rc == 0) {
        t->accepted++;
    } else {
        free(c);
        if (rc == GN_EAGAIN) {
            t->eagains++;
        } else {
            t->write_errors++;
            t->last_write_rc = rc;
        }
    }
    return rc;
}

/* Writes the source until done or GN_EAGAIN. */
static void ts_pump(ts *t)
{
    size_t chunk = t->chunk ? t->chunk : 64u << 10;
    while (t->src && t->s && !t->closing && !t->shut && t->src_off < t->src_len) {
        size_t n = MIN(chunk, t->src_len - t->src_off);
        if (ts_send(t, t->src + t->src_off, n) < 0)
            return;
        t->src_off += n;
    }
    if (t->src && t->shut_when_done && t->s && !t->closing && !t->shut &&
        t->src_off == t->src_len)
        (void)ts_shutdown(t);
}

static void ts_on_data(gn_stream *s, void *ud, const uint8_t *data, size_t len)
{
    (void)s;
    ts *t = ud;
    CB_CHECK();
    sample();
    if (t->p.verify) {
        for (size_t i = 0; i < len; i++)
            if (data[i] != pat(t->rx_total + i))
                t->bad++;
    }
    size_t room = t->p.rx_cap - t->rx_len;
    size_t n = MIN(len, room);
    memcpy(t->rx + t->rx_len, data, n);
    t->rx_len += n;
    t->rx_total += len;
    if (t->p.echo && !t->closing)
        (void)ts_send_copy(t, data, len);
}

static void ts_on_eof(gn_stream *s, void *ud)
{
    (void)s;
    ts *t = ud;
    CB_CHECK();
    sample();
    t->eofs++;
    if (t->p.echo_shut && !t->closing && !t->shut)
        (void)ts_shutdown(t);
    if (t->p.close_on_eof)
        ts_close(t);
}

static void ts_on_error(gn_stream *s, void *ud, int err)
{
    (void)s;
    ts *t = ud;
    CB_CHECK();
    sample();
    t->errors++;
    t->last_err = err;
    if (!t->p.keep_on_error)
        ts_close(t); /* the contract: the consumer closes it (later at the latest) */
}

static void ts_on_writable(gn_stream *s, void *ud)
{
    (void)s;
    ts *t = ud;
    CB_CHECK();
    sample();
    t->writables++;
    ts_pump(t);
}

static const gn_stream_handler ts_handler = {ts_on_data, ts_on_eof, ts_on_error, ts_on_writable};

static void ts_attach(ts *t, gn_stream *s)
{
    t->s = s;
    gn_stream_set_handler(s, &ts_handler, t);
    if (!t->p.no_read)
        CHECK_OK(ts_read_start(t));
    ts_pump(t);
}

/* ---- sessions --------------------------------------------------------------- */

typedef struct side {
    gn_mux *mux;
    gn_mux_session *ms;
    gn_stream *raw;    /* the connection end, until the session takes it */
    int ended, end_err;
    bool closed;
    int n_in;          /* on_stream calls */
    ts *in[MAX_TS];    /* inbound streams in arrival order (up to MAX_TS) */
    tprof in_prof;     /* profile for inbound streams */
} side;

static side *C, *S; /* client (initiator) and server */

static void on_stream(gn_mux_session *ms, void *ud, gn_stream *s)
{
    (void)ms;
    side *sd = ud;
    CB_CHECK();
    sample();
    ts *t = ts_new(&sd->in_prof);
    if (sd->n_in < MAX_TS)
        sd->in[sd->n_in] = t;
    sd->n_in++;
    ts_attach(t, s);
}

static void on_end(gn_mux_session *ms, void *ud, int err)
{
    (void)ms;
    side *sd = ud;
    CB_CHECK();
    sample();
    sd->ended++;
    sd->end_err = err;
}

static const gn_mux_session_cbs side_cbs = {on_stream, on_end};

static void session_closed(gn_mux_session *ms, void *arg)
{
    (void)ms;
    side *sd = arg;
    CB_CHECK();
    sd->closed = true;
}

static bool guard_fired;
static void guard_fn(gn_timer *t, void *arg)
{
    (void)t, (void)arg;
    guard_fired = true;
}

/* Runs the loop until @cond holds or @ms passed; fails the test then. */
#define RUN_UNTIL(cond, ms)                                                                  \
    do {                                                                                     \
        gn_timer g_;                                                                         \
        gn_timer_init(loop, &g_);                                                            \
        guard_fired = false;                                                                 \
        gn_timer_start(&g_, (gn_time)(ms)*GN_MS, guard_fn, NULL);                            \
        while (!(cond) && !guard_fired) {                                                    \
            gn_loop_run(loop, GN_RUN_ONCE);                                                  \
            sample();                                                                        \
        }                                                                                    \
        gn_timer_stop(&g_);                                                                  \
        if (!(cond))                                                                         \
            printf("# timed out after %d ms waiting for: %s\n", (int)(ms), #cond);           \
        CHECK(cond);                                                                         \
    } while (0)

/* Runs the loop for @ms of loop time. */
static void run_for(unsigned ms)
{
    gn_timer g;
    gn_timer_init(loop, &g);
    guard_fired = false;
    gn_timer_start(&g, (gn_time)ms * GN_MS, guard_fn, NULL);
    while (!guard_fired) {
        gn_loop_run(loop, GN_RUN_ONCE);
        sample();
    }
    gn_timer_stop(&g);
}

static gn_listener *lst;
static gn_multiaddr *lst_addr;
static gn_stream *accepted_raw;
static gn_stream *dialed_raw;

static void raw_accepted(void *arg, gn_listener *l, int status, gn_stream *conn)
{
    (void)arg, (void)l;
    if (status == 0)
        accepted_raw = conn;
}

static void raw_dialed(void *arg, int status, gn_stream *conn)
{
    (void)arg;
    if (status == 0)
        dialed_raw = conn;
}

/* A harness connection: *cli = the dialer's end, *srv = the listener's end. */
static void connect_raw(gn_stream **cli, gn_stream **srv)
{
    accepted_raw = dialed_raw = NULL;
    CHECK_OK(gn_transport_dial(tr, lst_addr, raw_dialed, NULL, NULL));
    RUN_UNTIL(accepted_raw && dialed_raw, 2000);
    *cli = dialed_raw;
    *srv = accepted_raw;
}

static side *side_new(const gn_mux_config *cfg)
{
    side *sd = calloc(1, sizeof *sd);
    CHECK(sd != NULL);
    CHECK_OK(gn_mux_new(ops, loop, cfg, &sd->mux));
    return sd;
}

static void side_start(side *sd, gn_stream *raw, bool initiator)
{
    in_call++;
    int rc = gn_mux_session_new(sd->mux, raw, initiator, &side_cbs, sd, &sd->ms);
    in_call--;
    CHECK_OK(rc);
}

/* A client and a server session over one harness connection. */
static void pair_new(const gn_mux_config *ccfg, const gn_mux_config *scfg)
{
    C = side_new(ccfg);
    S = side_new(scfg);
    gn_stream *rc, *rs;
    connect_raw(&rc, &rs);
    side_start(C, rc, true);
    side_start(S, rs, false);
}

static bool all_ts_closed(void)
{
    for (int i = 0; i < n_ts; i++)
        if (all_ts[i]->s && !all_ts[i]->closed)
            return false;
    return true;
}

static void side_close(side *sd)
{
    if (sd && sd->ms && !sd->closed) {
        if (watch_ms == sd->ms)
            watch_ms = NULL;
        if (send_watch_ms == sd->ms)
            send_watch_ms = NULL;
        in_call++;
        gn_mux_session_close(sd->ms, session_closed, sd);
        in_call--;
    }
}

static void side_free(side *sd)
{
    if (!sd)
        return;
    gn_mux_free(sd->mux);
    free(sd);
}

/* Closes every stream and session; checks the per-test invariants. */
static void finish(void)
{
    for (int i = 0; i < n_ts; i++)
        ts_close(all_ts[i]);
    RUN_UNTIL(all_ts_closed(), 5000);
    side_close(C);
    side_close(S);
    RUN_UNTIL((!C || !C->ms || C->closed) && (!S || !S->ms || S->closed), 5000);
    for (int i = 0; i < 20; i++)
        gn_loop_run(loop, GN_RUN_NOWAIT);
    CHECK_EQ(reentrant, 0);
    for (int i = 0; i < n_ts; i++) {
        ts *t = all_ts[i];
        if (t->completed != t->accepted)
            printf("# stream %d: %d writes accepted, %d completed\n", i, t->accepted,
                   t->completed);
        CHECK_EQ(t->completed, t->accepted);
        CHECK_EQ(t->over_completed, 0);
    }
    for (int i = 0; i < n_ts; i++) {
        free(all_ts[i]->rx);
        free(all_ts[i]);
    }
    n_ts = 0;
    side_free(C);
    side_free(S);
    C = S = NULL;
    watch_ms = NULL;
    send_watch_ms = NULL;
}

static gn_stream *open_stream(side *sd)
{
    gn_stream *s = NULL;
    in_call++;
    int rc = gn_mux_open_stream(sd->ms, &s);
    in_call--;
    CHECK_OK(rc);
    return s;
}

/* Opens a stream on @sd with profile @p and attaches a test stream. */
static ts *open_ts(side *sd, const tprof *p)
{
    ts *t = ts_new(p);
    ts_attach(t, open_stream(sd));
    return t;
}

static gn_mux_metrics metrics(side *sd)
{
    gn_mux_metrics m;
    gn_mux_get_metrics(sd->ms, &m);
    return m;
}

/* Counters over a set of test streams. */
static int count_rx(ts *const *v, int n, size_t len)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        k += v[i]->rx_len == len;
    return k;
}

static int count_errors(ts *const *v, int n)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        k += v[i]->errors;
    return k;
}

static int count_eagain(ts *const *v, int n)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        k += v[i]->eagains > 0;
    return k;
}

/* ---- tests ------------------------------------------------------------------- */

GN_TEST(capabilities_declared)
{
    printf("# %s, caps 0x%x, over %s\n", ops->name, (unsigned)ops->caps, tr->ops->name);
    CHECK_EQ(ops->caps & ~(uint32_t)GN_MUX_CAP_ALL, 0);
}

GN_TEST(open_accept_and_data_both_ways)
{
    pair_new(NULL, NULL);
    S->in_prof = (tprof){.verify = false, .rx_cap = 64};
    ts *c = open_ts(C, &(tprof){.rx_cap = 64});
    gn_slice three[3] = {gn_slice_of("he", 2), gn_slice_of("", 0), gn_slice_of("llo", 3)};
    in_call++;
    int wrc = gn_stream_write(c->s, three, 3, ts_write_done, c);
    in_call--;
    CHECK_OK(wrc);
    c->accepted++;
    RUN_UNTIL(S->n_in == 1 && S->in[0]->rx_len == 5, 2000);
    ts *s = S->in[0];
    CHECK_MEM(s->rx, "hello", 5);
    CHECK_OK(ts_send(s, "world!", 6));
    RUN_UNTIL(c->rx_len == 6, 2000);
    CHECK_MEM(c->rx, "world!", 6);

    /* queries: the muxer, the same stream id on both sides, addresses from below */
    char name[GN_PROTOCOL_ID_MAX];
    CHECK_OK(gn_stream_query(c->s, GN_QUERY_MUXER, name, sizeof name));
    CHECK_STR(name, ops->name);
    CHECK_OK(gn_stream_query(s->s, GN_QUERY_MUXER, name, sizeof name));
    CHECK_STR(name, ops->name);
    uint64_t idc = 99, ids = 98;
    CHECK_EQ(gn_stream_query(c->s, GN_QUERY_STREAM_ID, &idc, sizeof idc), 8);
    CHECK_EQ(gn_stream_query(s->s, GN_QUERY_STREAM_ID, &ids, sizeof ids), 8);
    CHECK_EQ(idc, ids);
    gn_multiaddr *ma = NULL;
    CHECK_OK(gn_stream_addr(c->s, GN_ADDR_REMOTE, &ma));
    CHECK(gn_multiaddr_equal(ma, lst_addr)); /* asked of the connection below */
    gn_multiaddr_free(ma);
    gn_peer_id pid;
    CHECK_EQ(gn_stream_query(c->s, GN_QUERY_REMOTE_PEER_ID, &pid, sizeof pid), GN_ENOTSUP);

    /* priorities: local, 0..7 */
    CHECK_OK(gn_mux_set_priority(C->ms, c->s, 7));
    CHECK_OK(gn_mux_set_priority(C->ms, c->s, 0));
    CHECK_EQ(gn_mux_set_priority(C->ms, c->s, 8), GN_ERANGE);
    CHECK_EQ(gn_mux_set_priority(S->ms, c->s, 1), GN_EINVAL); /* not the server's */

    gn_mux_metrics mc = metrics(C), ms = metrics(S);
    CHECK_EQ(mc.streams_open, 1);
    CHECK_EQ(mc.streams_outbound, 1);
    CHECK_EQ(mc.streams_inbound, 0);
    CHECK_EQ(ms.streams_open, 1);
    CHECK_EQ(ms.streams_inbound, 1);

    /* bulk both ways at once, checked byte by byte */
    ts *c2 = open_ts(C, &(tprof){.verify = true});
    c2->src = pattern;
    c2->src_len = 3u << 20;
    c2->shut_when_done = true;
    ts_pump(c2);
    RUN_UNTIL(S->n_in == 2, 2000);
    ts *s2 = S->in[1];
    uint64_t id2 = 0;
    CHECK_EQ(gn_stream_query(c2->s, GN_QUERY_STREAM_ID, &id2, sizeof id2), 8);
    CHECK(id2 != idc);
    s2->p.verify = true;
    s2->src = pattern;
    s2->src_len = (2u << 20) + 12345;
    s2->chunk = 100000;
    s2->shut_when_done = true;
    ts_pump(s2);
    RUN_UNTIL(s2->eofs == 1 && c2->eofs == 1, 10000);
    CHECK_EQ(s2->rx_total, 3u << 20);
    CHECK_EQ(c2->rx_total, (2u << 20) + 12345);
    CHECK_EQ(s2->bad, 0);
    CHECK_EQ(c2->bad, 0);
    CHECK_EQ(c2->failed + s2->failed, 0);
    finish();
}

static int echo_done, echo_bad;

GN_TEST(thousand_concurrent_streams)
{
    gn_mux_config scfg;
    gn_mux_config_default(&scfg);
    scfg.max_pending_streams = 1024; /* 1000 SYNs may arrive in one read */
    pair_new(NULL, &scfg);
    S->in_prof = (tprof){.echo = true, .echo_shut = true, .rx_cap = 64};
    enum { N = 1000 };
    static char msgs[N][24];
    ts *cs[N];
    for (int i = 0; i < N; i++) {
        cs[i] = open_ts(C, &(tprof){.rx_cap = 64});
        int n = snprintf(msgs[i], sizeof msgs[i], "stream %d says hi", i);
        CHECK_OK(ts_send(cs[i], msgs[i], (size_t)n));
        CHECK_OK(ts_shutdown(cs[i]));
    }
    CHECK_EQ(metrics(C).streams_open, N);
    echo_done = echo_bad = 0;
    bool all = false;
    gn_time t0 = gn_now();
    for (int round = 0; round < 200000 && !all; round++) {
        gn_loop_run(loop, GN_RUN_ONCE);
        all = true;
        for (int i = 0; i < N && all; i++)
            all = cs[i]->eofs == 1 || cs[i]->errors;
        if (gn_now() - t0 > 10 * GN_S)
            break;
    }
    CHECK(all);
    CHECK_EQ(S->n_in, N);
    CHECK_EQ(metrics(S).streams_open, N);
    for (int i = 0; i < N; i++) {
        CHECK_EQ(cs[i]->errors, 0);
        CHECK_EQ(cs[i]->rx_len, strlen(msgs[i]));
        CHECK_MEM(cs[i]->rx, msgs[i], cs[i]->rx_len);
    }
    printf("# %d echo round trips in %.1f ms\n", N, (double)(gn_now() - t0) / 1e6);
    for (int i = 0; i < N; i++)
        ts_close(cs[i]);
    for (int i = 0; i < S->n_in; i++)
        ts_close(S->in[i]);
    RUN_UNTIL(all_ts_closed(), 5000);
    RUN_UNTIL(metrics(C).streams_open == 0 && metrics(S).streams_open == 0, 2000);
    finish();
}

/*
 * Issue 10: a peer that opens 1,000 streams in one go (within the default
 * max_inbound_streams, 1024) keeps its session; streams beyond the pending
 * limit (256) that arrive before the first are accepted are reset, the
 * others work, and streams opened afterwards work.
 */
GN_TEST(burst_of_opens_keeps_the_session)
{
    pair_new(NULL, NULL); /* default limits */
    S->in_prof = (tprof){.echo = true, .echo_shut = true, .rx_cap = 64};
    enum { N = 1000 };
    ts *cs[N];
    for (int i = 0; i < N; i++) {
        cs[i] = open_ts(C, &(tprof){.rx_cap = 64});
        CHECK_OK(ts_send(cs[i], "hi", 2));
        CHECK_OK(ts_shutdown(cs[i]));
    }
    bool all = false;
    gn_time t0 = gn_now();
    for (int round = 0; round < 200000 && !all; round++) {
        gn_loop_run(loop, GN_RUN_ONCE);
        all = true;
        for (int i = 0; i < N && all; i++)
            all = cs[i]->eofs == 1 || cs[i]->errors;
        if (gn_now() - t0 > 10 * GN_S)
            break;
    }
    CHECK(all);
    CHECK_EQ(C->ended + S->ended, 0);
    int ok = count_rx(cs, N, 2), failed = count_errors(cs, N);
    printf("# %d streams echoed, %d reset\n", ok, failed);
    CHECK_EQ(ok + failed, N);
    CHECK(ok >= 256);
    CHECK_EQ(S->n_in, ok);
    for (int i = 0; i < N; i++)
        if (cs[i]->errors)
            CHECK_EQ(cs[i]->last_err, GN_ESTREAMRESET);
    /* the session still takes new streams */
    ts *late = open_ts(C, &(tprof){.rx_cap = 64});
    CHECK_OK(ts_send(late, "ok", 2));
    RUN_UNTIL(late->rx_len == 2, 2000);
    CHECK_EQ(C->ended + S->ended, 0);
    finish();
}

GN_TEST(half_close_both_ways)
{
    pair_new(NULL, NULL);
    S->in_prof = (tprof){.rx_cap = 64};
    ts *c = open_ts(C, &(tprof){.rx_cap = 64});
    CHECK_OK(ts_send(c, "ping", 4));
    CHECK_OK(ts_shutdown(c));
    CHECK_EQ(ts_send(c, "x", 1), GN_EPIPE);        /* no writes after shutdown */
    CHECK_EQ(gn_stream_shutdown(c->s), GN_ESTATE); /* only once */
    RUN_UNTIL(S->n_in == 1 && S->in[0]->eofs == 1, 2000);
    ts *s = S->in[0];
    CHECK_EQ(s->rx_len, 4);
    CHECK_MEM(s->rx, "ping", 4);
    /* the server's direction is still open; the client still reads */
    run_for(20);
    CHECK_EQ(c->eofs, 0);
    CHECK_OK(ts_send(s, "pong", 4));
    CHECK_OK(ts_send(s, "pong", 4));
    RUN_UNTIL(c->rx_len == 8, 2000);
    CHECK_EQ(c->eofs, 0);
    CHECK_OK(ts_shutdown(s));
    RUN_UNTIL(c->eofs == 1, 2000);
    CHECK_MEM(c->rx, "pongpong", 8);
    CHECK_EQ(c->errors + s->errors, 0);
    /* and the other way round: the server half-closes first */
    ts *c2 = open_ts(C, &(tprof){.rx_cap = 64});
    CHECK_OK(ts_send(c2, "a", 1));
    RUN_UNTIL(S->n_in == 2 && S->in[1]->rx_len == 1, 2000);
    ts *s2 = S->in[1];
    CHECK_OK(ts_shutdown(s2));
    RUN_UNTIL(c2->eofs == 1, 2000);
    CHECK_OK(ts_send(c2, "bc", 2));
    CHECK_OK(ts_shutdown(c2));
    RUN_UNTIL(s2->eofs == 1, 2000);
    CHECK_EQ(s2->rx_len, 3);
    CHECK_MEM(s2->rx, "abc", 3);
    finish();
}

GN_TEST(reset_both_ways)
{
    pair_new(NULL, NULL);
    S->in_prof = (tprof){.rx_cap = 64};
    ts *c = open_ts(C, &(tprof){.rx_cap = 64});
    CHECK_OK(ts_send(c, "x", 1));
    RUN_UNTIL(S->n_in == 1 && S->in[0]->rx_len == 1, 2000);
    ts *s = S->in[0];
    ts_reset(c);
    RUN_UNTIL(s->errors == 1, 2000);
    CHECK_EQ(s->last_err, GN_ESTREAMRESET);
    CHECK_EQ(s->eofs, 0);
    /* the server resets; the client sees it, also while writing */
    ts *c2 = open_ts(C, &(tprof){.rx_cap = 64});
    CHECK_OK(ts_send(c2, "y", 1));
    RUN_UNTIL(S->n_in == 2 && S->in[1]->rx_len == 1, 2000);
    ts_reset(S->in[1]);
    RUN_UNTIL(c2->errors == 1, 2000);
    CHECK_EQ(c2->last_err, GN_ESTREAMRESET);
    RUN_UNTIL(c2->closed, 2000);
    CHECK_EQ(c2->completed, c2->accepted);
    /* a write the muxer holds (window or buffer full) fails with the reset */
    S->in_prof = (tprof){.no_read = true, .rx_cap = 64};
    ts *w = open_ts(C, &(tprof){.rx_cap = 64});
    w->src = pattern;
    w->src_len = PAT_LEN;
    w->chunk = 256u << 10;
    ts_pump(w);
    RUN_UNTIL(w->eagains > 0 && S->n_in == 3, 5000);
    CHECK(w->accepted > w->completed);
    ts_reset(S->in[2]);
    RUN_UNTIL(w->errors == 1 && w->completed == w->accepted, 3000);
    CHECK_EQ(w->last_err, GN_ESTREAMRESET);
    CHECK_EQ(w->last_status, GN_ESTREAMRESET);
    CHECK_EQ(w->failed, 1);
    /* closing right after a write still delivers it, then EOF (graceful) */
    S->in_prof = (tprof){.rx_cap = 128u << 10, .verify = true};
    ts *g = open_ts(C, &(tprof){.rx_cap = 64});
    CHECK_OK(ts_send(g, pattern, 100000));
    ts_close(g);
    RUN_UNTIL(S->n_in == 4 && S->in[3]->eofs == 1, 3000);
    CHECK_EQ(S->in[3]->rx_total, 100000);
    CHECK_EQ(S->in[3]->bad, 0);
    CHECK_EQ(S->in[3]->errors, 0);
    RUN_UNTIL(g->closed, 2000);
    CHECK_EQ(g->completed, 1);
    CHECK_EQ(g->failed, 0);
    /* other streams are unaffected */
    ts *c3 = open_ts(C, &(tprof){.rx_cap = 64});
    S->in_prof = (tprof){.echo = true, .rx_cap = 64};
    CHECK_OK(ts_send(c3, "still here", 10));
    RUN_UNTIL(c3->rx_len == 10, 2000);
    CHECK_MEM(c3->rx, "still here", 10);
    finish();
}

GN_TEST(slow_reader_fast_writer)
{
    gn_mux_config cfg;
    gn_mux_config_default(&cfg);
    cfg.session_buffer_max = 1u << 20;
    cfg.stream_buffer_max = 256u << 10;
    pair_new(&cfg, &cfg);
    watch_ms = S->ms;
    watch_bound = cfg.session_buffer_max;
    watch_max = 0;
    watch_over = 0;
    S->in_prof = (tprof){.no_read = true, .verify = true, .rx_cap = 64};
    ts *w = open_ts(C, &(tprof){.rx_cap = 64});
    const size_t total = 8u << 20;
    w->src = pattern;
    w->src_len = total;
    w->shut_when_done = true;
    ts_pump(w);
    RUN_UNTIL(S->n_in == 1, 2000);
    ts *r = S->in[0];
    run_for(300);
    /* the writer is held back; the receiver's buffering is bounded */
    printf("# stalled: %zu of %zu bytes written, %d EAGAIN, receiver buffered max %zu\n",
           w->src_off, total, w->eagains, watch_max);
    CHECK(w->src_off < total);
    CHECK(w->eagains > 0);
    CHECK(watch_max > 0);
    CHECK_EQ(watch_over, 0);
    CHECK(watch_max <= cfg.session_buffer_max);
    CHECK_EQ(r->rx_total, 0);
    if (has_cap(GN_MUX_CAP_FLOW_CONTROL)) {
        /* flow control is per stream: another stream still flows both ways */
        CHECK(watch_max <= 256u << 10);
        S->in_prof = (tprof){.echo = true, .rx_cap = 64};
        ts *e = open_ts(C, &(tprof){.rx_cap = 64});
        CHECK_OK(ts_send(e, "unaffected", 10));
        RUN_UNTIL(e->rx_len == 10, 2000);
        CHECK_MEM(e->rx, "unaffected", 10);
    } else {
        printf("# no flow control: the session's input stops until the reader reads\n");
    }
    /* the reader resumes: everything arrives intact */
    CHECK_OK(ts_read_start(r));
    RUN_UNTIL(r->eofs == 1, 10000);
    CHECK_EQ(r->rx_total, total);
    CHECK_EQ(r->bad, 0);
    CHECK_EQ(watch_over, 0);
    /* stop and go: the reader stops again mid-way, the writer waits again */
    int before = S->n_in;
    ts *w2 = open_ts(C, &(tprof){.rx_cap = 64});
    w2->src = pattern;
    w2->src_len = 4u << 20;
    w2->shut_when_done = true;
    ts_pump(w2);
    RUN_UNTIL(S->n_in == before + 1, 2000);
    ts *r2 = S->in[before];
    CHECK_OK(ts_read_start(r2));
    RUN_UNTIL(r2->rx_total >= 1u << 20, 5000);
    CHECK_OK(ts_read_stop(r2));
    run_for(100);
    uint64_t seen = r2->rx_total;
    run_for(100);
    CHECK_EQ(r2->rx_total, seen); /* no delivery while stopped */
    CHECK_OK(ts_read_start(r2));
    RUN_UNTIL(r2->eofs == 1, 10000);
    CHECK_EQ(r2->rx_total, 4u << 20);
    CHECK_EQ(r2->bad, 0);
    CHECK_EQ(watch_over, 0);
    printf("# receiver buffered at most %zu bytes (bound %zu)\n", watch_max, watch_bound);
    finish();
}

/*
 * Issue 10 item 4: the session send budget. 64 streams write 1 MiB each
 * while the peer reads nothing (it stops reading the connection once its
 * 512 KiB receive bound is reached). Each stream's own bound (window or
 * stream_buffer_max, 256 KiB) would let the writer's muxer hold up to
 * 16 MiB; session_send_max (1 MiB) bounds them together. Every writer meets
 * GN_EAGAIN, nothing fails, the session goes on; once the peer reads,
 * every writer hears on_writable and every byte arrives intact.
 */
GN_TEST(session_send_budget)
{
    gn_mux_config ccfg, scfg;
    gn_mux_config_default(&ccfg);
    gn_mux_config_default(&scfg);
    CHECK_EQ(ccfg.session_send_max, GN_MUX_SESSION_SEND_MAX_DEFAULT);
    ccfg.stream_buffer_max = 256u << 10;
    ccfg.session_send_max = 1u << 20;
    scfg.stream_buffer_max = 256u << 10;
    scfg.session_buffer_max = 512u << 10;
    pair_new(&ccfg, &scfg);
    send_watch_ms = C->ms;
    send_watch_max = 0;
    S->in_prof = (tprof){.no_read = true, .verify = true, .rx_cap = 64};
    enum { N = 64 };
    const size_t each = 1u << 20;
    ts *w[N];
    for (int i = 0; i < N; i++) {
        w[i] = open_ts(C, &(tprof){.rx_cap = 64});
        w[i]->src = pattern;
        w[i]->src_len = each;
        w[i]->shut_when_done = true;
        ts_pump(w[i]);
    }
    RUN_UNTIL(S->n_in == N, 5000);
    run_for(300);
    size_t written = 0;
    for (int i = 0; i < N; i++)
        written += w[i]->src_off;
    gn_mux_metrics mc = metrics(C);
    printf("# stalled: %zu of %zu bytes handed over, sender queued at most %zu (bound %zu)\n",
           written, (size_t)N * each, send_watch_max, ccfg.session_send_max);
    CHECK(send_watch_max > 0);
    CHECK(send_watch_max <= ccfg.session_send_max);
    CHECK(mc.send_queued_bytes <= ccfg.session_send_max);
    CHECK_EQ(count_eagain(w, N), N); /* push-back on every stream */
    CHECK(written < (size_t)N * each);
    CHECK_EQ(count_errors(w, N), 0);
    CHECK_EQ(C->ended + S->ended, 0);
    for (int i = 0; i < N; i++)
        CHECK_EQ(S->in[i]->rx_total, 0);
    /* the peer reads: every stream is told writable, every byte arrives */
    for (int i = 0; i < N; i++)
        CHECK_OK(ts_read_start(S->in[i]));
    bool all = false;
    for (int round = 0; round < 2000 && !all; round++) {
        run_for(10);
        all = true;
        for (int i = 0; i < N && all; i++)
            all = S->in[i]->eofs == 1;
    }
    CHECK(all);
    for (int i = 0; i < N; i++) {
        CHECK_EQ(S->in[i]->rx_total, each);
        CHECK_EQ(S->in[i]->bad, 0);
        CHECK(w[i]->writables > 0);
        CHECK_EQ(w[i]->failed, 0);
    }
    CHECK_EQ(count_errors(w, N), 0);
    CHECK(send_watch_max <= ccfg.session_send_max);
    CHECK_EQ(metrics(C).send_queued_bytes, 0);
    finish();
}

/*
 * Issue 10: idle application streams. Only the client has
 * stream_idle_timeout (300 ms; the server's is off). A stream it opened and
 * one the server opened go silent after one byte each way: both are reset
 * on the client with GN_ETIMEDOUT, not before the timeout, and the server
 * sees a peer reset on each. Two streams with one byte every 50 ms (one
 * written by the client, one by the server) survive five timeout periods;
 * the session goes on and a new stream works.
 */
/* Log capture for idle_stream_timeout: INFO lines that report an idle reset. */
static char idle_logs[4][256];
static int n_idle_logs;

static void idle_log_fn(void *ud, gn_log_level level, const char *component, const char *msg)
{
    (void)ud, (void)level, (void)component;
    if (strstr(msg, "idle for at least") && n_idle_logs < (int)ARRAY_LEN(idle_logs))
        snprintf(idle_logs[n_idle_logs++], sizeof idle_logs[0], "%s", msg);
}

/* True when a captured idle-reset line names stream @id (@dir) of session @ms. */
static bool idle_logged(const char *dir, uint64_t id, const gn_mux_session *ms)
{
    char want[128];
    snprintf(want, sizeof want, "%s stream %llu of session %p ", dir, (unsigned long long)id,
             (const void *)ms);
    for (int i = 0; i < n_idle_logs; i++)
        if (strstr(idle_logs[i], want))
            return true;
    return false;
}

static uint64_t stream_id(ts *t)
{
    uint64_t id = 0;
    CHECK_EQ(gn_stream_query(t->s, GN_QUERY_STREAM_ID, &id, sizeof id), (int)sizeof id);
    return id;
}

GN_TEST(idle_stream_timeout)
{
    n_idle_logs = 0;
    gn_log_set(idle_log_fn, NULL, GN_LOG_INFO);
    gn_mux_config ccfg, scfg;
    gn_mux_config_default(&ccfg);
    gn_mux_config_default(&scfg);
    CHECK_EQ(ccfg.stream_idle_timeout, GN_MUX_STREAM_IDLE_TIMEOUT_DEFAULT);
    ccfg.stream_idle_timeout = 300 * GN_MS;
    scfg.stream_idle_timeout = 0; /* off */
    pair_new(&ccfg, &scfg);
    S->in_prof = (tprof){.keep_on_error = true, .rx_cap = 1024};
    C->in_prof = (tprof){.keep_on_error = true, .rx_cap = 1024};
    tprof keep = {.keep_on_error = true, .rx_cap = 1024};
    ts *c_idle = open_ts(C, &keep);  /* ours, silent after one byte each way */
    ts *c_busy = open_ts(C, &keep);  /* we write a byte every 50 ms */
    ts *c_busy2 = open_ts(C, &keep); /* the peer writes a byte every 50 ms */
    ts *s_idle = open_ts(S, &keep);  /* the peer's, silent after one byte each way */
    CHECK_OK(ts_send(c_idle, "a", 1));
    CHECK_OK(ts_send(c_busy, "b", 1));
    CHECK_OK(ts_send(c_busy2, "c", 1));
    CHECK_OK(ts_send(s_idle, "d", 1));
    RUN_UNTIL(S->n_in == 3 && C->n_in == 1 && C->in[0]->rx_len == 1 &&
                  S->in[0]->rx_len == 1 && S->in[1]->rx_len == 1 && S->in[2]->rx_len == 1,
              2000);
    ts *p_idle = S->in[0], *p_busy = S->in[1], *p_busy2 = S->in[2];
    ts *c_pidle = C->in[0]; /* the client's end of s_idle */
    CHECK_MEM(p_idle->rx, "a", 1);
    CHECK_MEM(c_pidle->rx, "d", 1);
    uint64_t id_idle = stream_id(c_idle), id_pidle = stream_id(c_pidle);
    CHECK_OK(ts_send(p_idle, "A", 1));
    CHECK_OK(ts_send(c_pidle, "D", 1));
    RUN_UNTIL(c_idle->rx_len == 1 && s_idle->rx_len == 1, 2000);
    /* not before the timeout */
    run_for(250);
    CHECK_EQ(c_idle->errors + c_pidle->errors + p_idle->errors + s_idle->errors, 0);
    /* steady traffic on the busy streams for five timeout periods */
    for (int i = 0; i < 32; i++) {
        run_for(50);
        CHECK_OK(ts_send(c_busy, "b", 1));
        CHECK_OK(ts_send(p_busy2, "c", 1));
    }
    RUN_UNTIL(p_busy->rx_len == 33 && c_busy2->rx_len == 32, 2000);
    /* the silent ones were reset: GN_ETIMEDOUT here, a reset at the peer */
    CHECK_EQ(c_idle->errors, 1);
    CHECK_EQ(c_idle->last_err, GN_ETIMEDOUT);
    CHECK_EQ(c_pidle->errors, 1);
    CHECK_EQ(c_pidle->last_err, GN_ETIMEDOUT);
    RUN_UNTIL(p_idle->errors == 1 && s_idle->errors == 1, 2000);
    CHECK_EQ(p_idle->last_err, GN_ESTREAMRESET);
    CHECK_EQ(s_idle->last_err, GN_ESTREAMRESET);
    CHECK_EQ(ts_send(c_idle, "x", 1), GN_ETIMEDOUT);
    /* one log line each, naming the stream and the session */
    gn_log_set(NULL, NULL, GN_LOG_WARNING);
    for (int i = 0; i < n_idle_logs; i++)
        printf("# log: %s\n", idle_logs[i]);
    CHECK_EQ(n_idle_logs, 2);
    CHECK(idle_logged("outbound", id_idle, C->ms));
    CHECK(idle_logged("inbound", id_pidle, C->ms));
    /* the busy streams, the session and new streams are unaffected */
    CHECK_EQ(c_busy->errors + c_busy2->errors + p_busy->errors + p_busy2->errors, 0);
    CHECK_EQ(C->ended + S->ended, 0);
    CHECK_OK(ts_send(c_busy, "e", 1));
    RUN_UNTIL(p_busy->rx_len == 34, 2000);
    S->in_prof = (tprof){.echo = true, .rx_cap = 64};
    ts *fresh = open_ts(C, &(tprof){.rx_cap = 64});
    CHECK_OK(ts_send(fresh, "again", 5));
    RUN_UNTIL(fresh->rx_len == 5, 2000);
    CHECK_MEM(fresh->rx, "again", 5);
    /* the busy streams still hold their slots; the reset ones are gone */
    ts_close(c_idle);
    ts_close(c_pidle);
    ts_close(p_idle);
    ts_close(s_idle);
    RUN_UNTIL(c_idle->closed && c_pidle->closed && p_idle->closed && s_idle->closed, 2000);
    RUN_UNTIL(metrics(C).streams_open == 3, 2000);
    finish();
}

/*
 * Issue 10: a stream whose writer the peer holds back (it never reads) is
 * idle too: its held write completes with GN_ETIMEDOUT, the owner hears
 * GN_ETIMEDOUT, the session goes on. With flow control the peer sees the
 * reset at once and the session carries a new stream both ways (without,
 * the unread stream holds the peer's session input until it is read).
 */
GN_TEST(idle_stream_timeout_held_writer)
{
    gn_mux_config ccfg, scfg;
    gn_mux_config_default(&ccfg);
    gn_mux_config_default(&scfg);
    ccfg.stream_idle_timeout = 200 * GN_MS;
    ccfg.stream_buffer_max = 256u << 10;
    scfg.stream_idle_timeout = 0;
    scfg.stream_buffer_max = 256u << 10;
    scfg.session_buffer_max = 1u << 20;
    pair_new(&ccfg, &scfg);
    S->in_prof = (tprof){.no_read = true, .keep_on_error = true, .rx_cap = 64};
    ts *w = open_ts(C, &(tprof){.rx_cap = 64});
    w->src = pattern;
    w->src_len = 8u << 20;
    ts_pump(w);
    RUN_UNTIL(S->n_in == 1 && w->eagains > 0, 2000);
    CHECK_EQ(w->errors, 0);
    RUN_UNTIL(w->errors == 1, 2000);
    CHECK_EQ(w->last_err, GN_ETIMEDOUT);
    CHECK(w->src_off < w->src_len);
    RUN_UNTIL(w->completed == w->accepted, 2000);
    CHECK_EQ(w->last_status, GN_ETIMEDOUT); /* the held write */
    CHECK_EQ(C->ended + S->ended, 0);
    if (has_cap(GN_MUX_CAP_FLOW_CONTROL)) {
        RUN_UNTIL(S->in[0]->errors == 1, 2000);
        CHECK_EQ(S->in[0]->last_err, GN_ESTREAMRESET);
        S->in_prof = (tprof){.echo = true, .rx_cap = 64};
        ts *e = open_ts(C, &(tprof){.rx_cap = 64});
        CHECK_OK(ts_send(e, "unaffected", 10));
        RUN_UNTIL(e->rx_len == 10, 2000);
        CHECK_MEM(e->rx, "unaffected", 10);
    }
    finish();
}

GN_TEST(inbound_and_outbound_stream_limits)
{
    gn_mux_config ccfg, scfg;
    gn_mux_config_default(&ccfg);
    gn_mux_config_default(&scfg);
    ccfg.max_outbound_streams = 12;
    scfg.max_inbound_streams = 4;
    pair_new(&ccfg, &scfg);
    S->in_prof = (tprof){.echo = true, .rx_cap = 64};
    ts *cs[10];
    for (int i = 0; i < 10; i++) {
        cs[i] = open_ts(C, &(tprof){.rx_cap = 64});
        CHECK_OK(ts_send(cs[i], "hi", 2));
    }
    RUN_UNTIL(count_rx(cs, 10, 2) + count_errors(cs, 10) == 10, 3000);
    CHECK_EQ(count_rx(cs, 10, 2), 4);
    CHECK_EQ(count_errors(cs, 10), 6);
    for (int i = 0; i < 10; i++)
        if (cs[i]->errors)
            CHECK_EQ(cs[i]->last_err, GN_ESTREAMRESET);
    CHECK_EQ(S->n_in, 4);
    /* the server's streams stay usable */
    CHECK_EQ(metrics(S).streams_open, 4);
    /* outbound limit: 12 open at most (4 open + 6 reset but not yet gone) */
    RUN_UNTIL(metrics(C).streams_open == 4, 2000);
    gn_stream *extra[8];
    int opened = 0, rc = 0;
    for (int i = 0; i < 8; i++) {
        in_call++;
        rc = gn_mux_open_stream(C->ms, &extra[i]);
        in_call--;
        if (rc < 0)
            break;
        opened++;
    }
    CHECK_EQ(opened, 8);
    in_call++;
    rc = gn_mux_open_stream(C->ms, &extra[0]);
    in_call--;
    CHECK_EQ(rc, GN_ESTREAMLIMIT);
    for (int i = 0; i < opened; i++) {
        ts *t = ts_new(&(tprof){.no_read = true});
        ts_attach(t, extra[i]);
    }
    finish();
}

GN_TEST(pending_accept_limit)
{
    gn_mux_config scfg;
    gn_mux_config_default(&scfg);
    scfg.max_pending_streams = 3;
    pair_new(NULL, &scfg);
    /* the server takes the streams but does not use them yet (not accepted) */
    S->in_prof = (tprof){.no_read = true, .rx_cap = 64};
    ts *cs[8];
    for (int i = 0; i < 8; i++) {
        cs[i] = open_ts(C, &(tprof){.rx_cap = 64});
        CHECK_OK(ts_send(cs[i], "hi", 2));
    }
    RUN_UNTIL(count_errors(cs, 8) == 5, 3000);
    run_for(30);
    CHECK_EQ(S->n_in, 3);
    for (int i = 0; i < 8; i++)
        if (cs[i]->errors)
            CHECK_EQ(cs[i]->last_err, GN_ESTREAMRESET);
    /* accepting them (first read) lets the data through */
    for (int i = 0; i < 3; i++) {
        S->in[i]->p.echo = true;
        CHECK_OK(ts_read_start(S->in[i]));
    }
    RUN_UNTIL(count_rx(cs, 8, 2) == 3, 2000);
    /* with room again, new streams are taken */
    S->in_prof = (tprof){.echo = true, .rx_cap = 64};
    ts *late = open_ts(C, &(tprof){.rx_cap = 64});
    CHECK_OK(ts_send(late, "ok", 2));
    RUN_UNTIL(late->rx_len == 2, 2000);
    finish();
}

GN_TEST(go_away)
{
    pair_new(NULL, NULL);
    S->in_prof = (tprof){.echo = true, .echo_shut = true, .rx_cap = 64};
    ts *c = open_ts(C, &(tprof){.rx_cap = 64});
    CHECK_OK(ts_send(c, "a", 1));
    RUN_UNTIL(c->rx_len == 1, 2000);
    /* no public gn_mux_go_away() yet: through the ops table */
    in_call++;
    CHECK_OK(gn_mux_go_away(S->ms, 0));
    in_call--;
    /* the sender opens nothing more */
    gn_stream *x = NULL;
    CHECK_EQ(gn_mux_open_stream(S->ms, &x), GN_EGOAWAY);
    run_for(30);
    /* the peer's new streams are refused: by the peer itself once the Go
     * Away frame arrived, else by the sender with a reset */
    in_call++;
    int rc = gn_mux_open_stream(C->ms, &x);
    in_call--;
    if (has_cap(GN_MUX_CAP_GOAWAY)) {
        CHECK_EQ(rc, GN_EGOAWAY);
    } else {
        CHECK_OK(rc);
        ts *t = ts_new(&(tprof){.rx_cap = 64});
        ts_attach(t, x);
        CHECK_OK(ts_send(t, "late", 4));
        RUN_UNTIL(t->errors == 1, 2000);
        CHECK_EQ(t->last_err, GN_ESTREAMRESET);
        CHECK_EQ(t->rx_len, 0);
        printf("# Go Away enforced by the sender only (no wire frame)\n");
    }
    CHECK_EQ(S->n_in, 1);
    /* the existing stream finishes normally */
    CHECK_OK(ts_send(c, "bc", 2));
    CHECK_OK(ts_shutdown(c));
    RUN_UNTIL(c->eofs == 1, 2000);
    CHECK_EQ(c->rx_len, 3);
    CHECK_MEM(c->rx, "abc", 3);
    CHECK_EQ(c->errors, 0);
    CHECK_EQ(C->ended + S->ended, 0);
    if (has_cap(GN_MUX_CAP_GOAWAY)) {
        /* once its last stream is closed, the receiver's session ends */
        ts_close(c);
        ts_close(S->in[0]);
        RUN_UNTIL(C->ended == 1, 2000);
        CHECK_EQ(C->end_err, GN_EGOAWAY);
        RUN_UNTIL(S->ended == 1, 2000);
    }
    finish();
}

static int ping_status[2];
static gn_time ping_rtts[2];
static int ping_calls;
static void ping_cb(void *arg, int status, gn_time rtt)
{
    int i = (int)(intptr_t)arg;
    CB_CHECK();
    ping_calls++;
    ping_status[i] = status;
    ping_rtts[i] = rtt;
}

GN_TEST(ping_rtt)
{
    pair_new(NULL, NULL);
    ping_calls = 0;
    ping_status[0] = ping_status[1] = 1;
    in_call++;
    int rc = gn_mux_ping(C->ms, ping_cb, (void *)0);
    in_call--;
    if (!has_cap(GN_MUX_CAP_PING)) {
        CHECK_EQ(rc, GN_ENOTSUP);
        finish();
        SKIP("the muxer has no ping (GN_ENOTSUP)");
    }
    CHECK_OK(rc);
    in_call++;
    rc = gn_mux_ping(C->ms, ping_cb, (void *)1); /* shares the outstanding ping */
    in_call--;
    CHECK_OK(rc);
    CHECK_EQ(ping_calls, 0);
    RUN_UNTIL(ping_calls == 2, 2000);
    CHECK_EQ(ping_status[0], 0);
    CHECK_EQ(ping_status[1], 0);
    CHECK(ping_rtts[0] > 0 && ping_rtts[0] < GN_S);
    CHECK_EQ(metrics(C).last_rtt, ping_rtts[0]);
    ts *c = open_ts(C, &(tprof){.rx_cap = 64});
    gn_time q = 0;
    CHECK_EQ(gn_stream_query(c->s, GN_QUERY_RTT, &q, sizeof q), (int)sizeof q);
    CHECK_EQ(q, ping_rtts[0]);
    /* the server can ping too */
    ping_calls = 0;
    CHECK_OK(gn_mux_ping(S->ms, ping_cb, (void *)0));
    RUN_UNTIL(ping_calls == 1, 2000);
    CHECK_EQ(ping_status[0], 0);
    printf("# rtt %.1f us\n", (double)ping_rtts[0] / 1e3);
    /* a ping still out when the session closes fails */
    ping_calls = 0;
    CHECK_OK(gn_mux_ping(C->ms, ping_cb, (void *)0));
    side_close(C);
    RUN_UNTIL(C->closed, 3000);
    CHECK_EQ(ping_calls, 1);
    finish();
}

GN_TEST(session_close_cancels_pending_writes)
{
    pair_new(NULL, NULL);
    S->in_prof = (tprof){.no_read = true, .rx_cap = 64};
    enum { N = 3 };
    ts *ws[N];
    for (int i = 0; i < N; i++) {
        ws[i] = open_ts(C, &(tprof){.rx_cap = 64, .keep_on_error = i == 0});
        ws[i]->src = pattern;
        ws[i]->src_len = PAT_LEN;
        ws[i]->chunk = 256u << 10;
        ts_pump(ws[i]);
    }
    /* until every writer has a write the muxer could not take */
    RUN_UNTIL(count_eagain(ws, N) == N, 10000);
    run_for(20);
    int pending = 0;
    for (int i = 0; i < N; i++) {
        CHECK_EQ(ws[i]->failed, 0);
        pending += ws[i]->accepted - ws[i]->completed;
    }
    CHECK(pending >= N);
    side_close(C);
    /* nothing runs inside the close call itself */
    for (int i = 0; i < N; i++)
        CHECK_EQ(ws[i]->errors, 0);
    RUN_UNTIL(C->closed, 5000);
    for (int i = 0; i < N; i++) {
        CHECK_EQ(ws[i]->completed, ws[i]->accepted);
        CHECK(ws[i]->canceled >= 1);
        CHECK_EQ(ws[i]->errors, 1);
        CHECK_EQ(ws[i]->last_err, GN_ECLOSED);
        CHECK_EQ(ws[i]->over_completed, 0);
    }
    CHECK_EQ(C->ended, 0); /* the owner closed it: no on_end */
    /* the peer's session ends on its own; without flow control its input
     * stopped for the unread streams, so it notices once they are read */
    if (!has_cap(GN_MUX_CAP_FLOW_CONTROL)) {
        run_for(50);
        CHECK_EQ(S->ended, 0);
        for (int i = 0; i < S->n_in; i++)
            CHECK_OK(ts_read_start(S->in[i]));
    }
    RUN_UNTIL(S->ended == 1, 3000);
    printf("# peer session ended with %s\n", gn_err_name(S->end_err));
    for (int i = 0; i < S->n_in; i++)
        RUN_UNTIL(S->in[i]->errors == 1, 2000);
    /* streams outlive their session: writes fail, close works */
    CHECK_EQ(gn_stream_write(ws[0]->s, &(gn_slice){(const uint8_t *)"z", 1}, 1, NULL, NULL),
             GN_ECLOSED);
    finish();
}

/* ---- a raw peer ----------------------------------------------------------- */

typedef struct raw {
    uint8_t rx[256];
    size_t rx_len;
    int eof, err;
} raw;

static void raw_data(gn_stream *s, void *ud, const uint8_t *d, size_t n)
{
    (void)s;
    raw *r = ud;
    size_t k = MIN(n, sizeof r->rx - r->rx_len);
    memcpy(r->rx + r->rx_len, d, k);
    r->rx_len += k;
}
static void raw_eof(gn_stream *s, void *ud)
{
    (void)s;
    ((raw *)ud)->eof++;
}
static void raw_error(gn_stream *s, void *ud, int err)
{
    (void)s;
    ((raw *)ud)->err = err;
}
static const gn_stream_handler raw_handler = {raw_data, raw_eof, raw_error, NULL};

static bool raw_closed;
static void raw_closed_cb(gn_stream *s, void *arg)
{
    (void)s, (void)arg;
    raw_closed = true;
}

/*
 * Bytes no muxer can take for a frame: 0xff opens no valid header of any
 * known format (yamux: version 255; mplex: an over-long varint). The
 * session ends with a peer-violation error; it says why with a Go Away
 * where the protocol has one, else it goes silent.
 */
GN_TEST(protocol_violation_from_raw_peer)
{
    for (int role = 0; role < 2; role++) {
        side *sd = side_new(NULL);
        if (role == 0)
            S = sd;
        else
            C = sd;
        gn_stream *rc, *rs;
        connect_raw(&rc, &rs);
        /* role 0: the raw peer dialed a server; role 1: a client dialed the raw peer */
        gn_stream *raw_end = role == 0 ? rc : rs;
        side_start(sd, role == 0 ? rs : rc, role == 1);
        sd->in_prof = (tprof){.rx_cap = 64};
        raw r = {0};
        gn_stream_set_handler(raw_end, &raw_handler, &r);
        CHECK_OK(gn_stream_read_start(raw_end));
        uint8_t bytes[32];
        memset(bytes, 0xff, sizeof bytes);
        gn_slice sl = gn_slice_of(bytes, sizeof bytes);
        CHECK_OK(gn_stream_write(raw_end, &sl, 1, NULL, NULL));
        RUN_UNTIL(sd->ended == 1, 2000);
        printf("# %s: %s\n", role == 0 ? "server" : "client", gn_err_name(sd->end_err));
        CHECK_EQ(gn_err_band(sd->end_err), GN_ERR_BAND_PEER);
        /* the session stops talking and closes its end */
        RUN_UNTIL(r.eof || r.err, 2000);
        if (has_cap(GN_MUX_CAP_GOAWAY))
            CHECK(r.rx_len > 0);
        else if (role == 0)
            CHECK_EQ(r.rx_len, 0); /* a client may have said hello first */
        gn_stream *x = NULL;
        CHECK_EQ(gn_mux_open_stream(sd->ms, &x), GN_ECLOSED);
        raw_closed = false;
        gn_stream_close(raw_end, raw_closed_cb, NULL);
        RUN_UNTIL(raw_closed, 2000);
        CHECK_EQ(sd->n_in, 0);
        finish();
    }
}

GN_TEST(peer_disconnect_ends_the_session)
{
    S = side_new(NULL);
    C = side_new(NULL);
    gn_stream *rc, *rs;
    connect_raw(&rc, &rs);
    side_start(C, rc, true);
    side_start(S, rs, false);
    S->in_prof = (tprof){.rx_cap = 64};
    ts *c = open_ts(C, &(tprof){.rx_cap = 64});
    CHECK_OK(ts_send(c, "abc", 3));
    RUN_UNTIL(S->n_in == 1 && S->in[0]->rx_len == 3, 2000);
    /* the client's side goes away without a word */
    side_close(C);
    RUN_UNTIL(C->closed && S->ended == 1, 3000);
    RUN_UNTIL(S->in[0]->errors == 1, 2000);
    printf("# server session: %s, its stream: %s\n", gn_err_name(S->end_err),
           gn_err_name(S->in[0]->last_err));
    CHECK(S->end_err < 0);
    CHECK_EQ(c->errors, 1);
    CHECK_EQ(c->last_err, GN_ECLOSED);
    /* no new streams on an ended session */
    gn_stream *x;
    CHECK_EQ(gn_mux_open_stream(S->ms, &x), GN_ECLOSED);
    finish();
}

/* A client whose peer never answers: unacknowledged streams time out with
 * GN_MUX_CAP_OPEN_ACK, unanswered keepalive pings end the session with
 * GN_MUX_CAP_KEEPALIVE; without them nothing happens. */
GN_TEST(keepalive_and_open_timeouts)
{
    gn_mux_config cfg;
    gn_mux_config_default(&cfg);
    cfg.keepalive_interval = 60 * GN_MS;
    cfg.stream_open_timeout = 30 * GN_MS;
    C = side_new(&cfg);
    gn_stream *rc, *rs;
    connect_raw(&rc, &rs);
    side_start(C, rc, true);
    raw r = {0};
    gn_stream_set_handler(rs, &raw_handler, &r);
    CHECK_OK(gn_stream_read_start(rs));
    ts *t = open_ts(C, &(tprof){.rx_cap = 64, .keep_on_error = true});
    CHECK_OK(ts_send(t, "hello?", 6));
    if (has_cap(GN_MUX_CAP_OPEN_ACK)) {
        RUN_UNTIL(t->errors == 1, 2000);
        CHECK_EQ(t->last_err, GN_ETIMEDOUT);
    }
    if (has_cap(GN_MUX_CAP_KEEPALIVE)) {
        RUN_UNTIL(C->ended == 1, 2000);
        CHECK_EQ(C->end_err, GN_ETIMEDOUT);
        RUN_UNTIL(r.eof == 1, 2000);
        CHECK(r.rx_len > 0); /* the pings, at least */
    } else {
        run_for(300); /* five keepalive intervals */
        CHECK_EQ(C->ended, 0);
        CHECK_EQ(r.eof, 0);
    }
    if (!has_cap(GN_MUX_CAP_OPEN_ACK))
        CHECK_EQ(t->errors, has_cap(GN_MUX_CAP_KEEPALIVE) ? 1 : 0);
    raw_closed = false;
    gn_stream_close(rs, raw_closed_cb, NULL);
    RUN_UNTIL(raw_closed, 2000);
    finish();
}

int main(int argc, char **argv)
{
    static const gn_test_case cases[] = {
        GN_T(capabilities_declared),
        GN_T(open_accept_and_data_both_ways),
        GN_T(thousand_concurrent_streams), GN_T(burst_of_opens_keeps_the_session),
        GN_T(half_close_both_ways),
        GN_T(reset_both_ways),
        GN_T(slow_reader_fast_writer),
        GN_T(session_send_budget),
        GN_T(idle_stream_timeout),
        GN_T(idle_stream_timeout_held_writer),
        GN_T(inbound_and_outbound_stream_limits),
        GN_T(pending_accept_limit),
        GN_T(go_away),
        GN_T(ping_rtt),
        GN_T(session_close_cancels_pending_writes),
        GN_T(protocol_violation_from_raw_peer),
        GN_T(peer_disconnect_ends_the_session),
        GN_T(keepalive_and_open_timeouts),
    };
    if (argc < 2) {
        fprintf(stderr, "usage: %s COMPONENT [filter]\n", argv[0]);
        return 2;
    }
    if (gn_registry_new(&reg) < 0 || gn_registry_add_builtins(reg) < 0)
        return 1;
    ops = (const gn_mux_ops *)conf_component(reg, GN_LAYER_MUX, argv[1]);
    if (!ops) {
        printf("Bail out! no mux component named %s is built in\n", argv[1]);
        gn_registry_free(reg);
        return 1;
    }
    pattern = malloc(PAT_LEN);
    if (!pattern)
        return 1;
    for (size_t i = 0; i < PAT_LEN; i++)
        pattern[i] = pat(i);
    if (gn_loop_new(NULL, &loop) < 0)
        return 1;
    const gn_transport_ops *tops = conf_harness_transport(reg);
    if (!tops) {
        printf("1..0 # SKIP no reliable transport with a test address is built in\n");
        gn_loop_free(loop);
        gn_registry_free(reg);
        free(pattern);
        return 0;
    }
    gn_multiaddr *ma;
    if (gn_transport_new(tops, loop, NULL, &tr) < 0 ||
        gn_multiaddr_parse(tops->test_listen_addr, &ma) < 0 ||
        gn_transport_listen(tr, ma, raw_accepted, NULL, &lst) < 0 ||
        gn_listener_addr(lst, &lst_addr) < 0)
        return 1;
    gn_multiaddr_free(ma);
    int rc = gn_test_run(cases, sizeof cases / sizeof cases[0], argc - 1, argv + 1);
    gn_listener_close(lst, NULL, NULL);
    for (int i = 0; i < 100; i++)
        gn_loop_run(loop, GN_RUN_NOWAIT);
    gn_multiaddr_free(lst_addr);
    gn_transport_free(tr);
    gn_loop_stop(loop);
    gn_loop_run(loop, GN_RUN_DEFAULT);
    gn_loop_free(loop);
    gn_registry_free(reg);
    free(pattern);
    return rc;
}
