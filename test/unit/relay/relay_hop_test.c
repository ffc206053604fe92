/*
 * The circuit relay v2 hop service (protocols/relay/relay_layer.c) run by a
 * node: three nodes on TCP loopback (noise, yamux) sharing one loop driven
 * by the test thread. The relay R runs the `relay` component; the test
 * plays the clients itself with host streams and the wire core: A reserves
 * and answers the stop protocol, B connects through R to A. Every loop is
 * bounded by a guard timer; every node is closed and freed.
 */
#include "golemnet/golemnet.h"

#include "gn_test.h"
#include "gni.h"
#include "relay_hop.h"
#include "relay_msg.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GN_TNODE_MAX_TURNS 10000000
#define GN_TNODE_EXTRA gn_channel *to_relay; /* held: the channel to R */
#include "gn_tnode.h"

/* A node listening on loopback; a relay when @options is not NULL. */
static void rl_node_up(tnode *t, uint32_t seed, const char *const *options, size_t n_options)
{
    node_up(t, seed,
            &(nopts){.routers = "", .discovery = "", .listen = true,
                     .protocol_components = options ? "relay" : NULL, .options = options,
                     .n_options = options ? n_options : 0});
}

/* Releases @t's channel to R, then closes and frees @t. */
static void rl_node_down(tnode *t)
{
    if (t->to_relay) {
        gn_channel_rele(t->to_relay);
        t->to_relay = NULL;
    }
    node_down(t);
}

/* Connects @t to the relay @r and keeps the channel. */
static void connect_to(tnode *t, tnode *r)
{
    CHECK_OK(dial_wait_ch(t, r->addr, &t->to_relay));
}

/* ---- a client stream: collects what arrives, sends a buffer ---- */

typedef struct cstream {
    int open_calls, open_status;
    gn_stream *s;
    uint8_t *in;
    size_t in_len, in_cap, in_pos; /* in_pos: bytes taken as messages */
    bool eof;
    int err;
    /* the sender */
    const uint8_t *out;
    size_t out_len, out_off;
    bool shut_after, shut;
    int writes_pending;
} cstream;

static void cs_on_data(gn_stream *s, void *ud, const uint8_t *d, size_t n)
{
    (void)s;
    cstream *cs = ud;
    if (cs->in_len + n > cs->in_cap) {
        size_t cap = GNI_MAX(cs->in_cap * 2, cs->in_len + n);
        cs->in = realloc(cs->in, cap);
        CHECK(cs->in != NULL);
        cs->in_cap = cap;
    }
    memcpy(cs->in + cs->in_len, d, n);
    cs->in_len += n;
}

static void cs_on_eof(gn_stream *s, void *ud)
{
    (void)s;
    ((cstream *)ud)->eof = true;
}

static void cs_on_error(gn_stream *s, void *ud, int err)
{
    (void)s;
    ((cstream *)ud)->err = err;
}

static void cs_pump(cstream *cs);

static void cs_on_writable(gn_stream *s, void *ud)
{
    (void)s;
    cs_pump(ud);
}

static const gn_stream_handler cs_handler = {cs_on_data, cs_on_eof, cs_on_error,
                                             cs_on_writable};

static void cs_attach(cstream *cs, gn_stream *s)
{
    cs->s = s;
    gn_stream_set_handler(s, &cs_handler, cs);
    CHECK_OK(gn_stream_read_start(s));
}

static void cs_opened(void *arg, int status, gn_channel *ch, gn_stream *s)
{
    (void)ch;
    cstream *cs = arg;
    cs->open_calls++;
    cs->open_status = status;
    if (status == 0) {
        cs_attach(cs, s);
    }
}

static bool cs_open_done(void *arg) { return ((cstream *)arg)->open_calls > 0; }

/* Opens a stream of @proto from @t to @peer. */
static void cs_open(cstream *cs, tnode *t, const gn_peer_id *peer, const char *proto)
{
    memset(cs, 0, sizeof *cs);
    CHECK_OK(gn_host_new_stream_ex(gn_node_host(t->n), peer, proto, 0, cs_opened, cs, NULL));
    CHECK(run_until(cs_open_done, cs, 8000));
    CHECK_OK(cs->open_status);
}

static void cs_written(void *arg, int status)
{
    cstream *cs = arg;
    (void)status;
    cs->writes_pending--;
}

static void cs_pump(cstream *cs)
{
    while (cs->s && cs->out_off < cs->out_len) {
        size_t n = GNI_MIN(cs->out_len - cs->out_off, (size_t)16384);
        gn_slice sl = {cs->out + cs->out_off, n};
        int rc = gn_stream_write(cs->s, &sl, 1, cs_written, cs);
        if (rc == GN_EAGAIN) {
            return;
        }
        if (rc < 0) {
            cs->out_off = cs->out_len; /* failed: stop sending */
            return;
        }
        cs->writes_pending++;
        cs->out_off += n;
    }
    if (cs->s && cs->shut_after && !cs->shut && cs->out_off == cs->out_len) {
        cs->shut = true;
        (void)gn_stream_shutdown(cs->s);
    }
}

/* Sends @len bytes at @data (kept by the caller until sent). */
static void cs_send(cstream *cs, const uint8_t *data, size_t len, bool shut_after)
{
    cs->out = data;
    cs->out_len = len;
    cs->out_off = 0;
    cs->shut_after = shut_after;
    cs_pump(cs);
}

static bool cs_sent(void *arg)
{
    cstream *cs = arg;
    return cs->out_off == cs->out_len && cs->writes_pending == 0;
}

/* Encodes and sends @m, waiting until it is written. */
static void cs_send_msg(cstream *cs, const gni_relay_msg *m)
{
    uint8_t *buf;
    size_t len;
    CHECK_OK(gni_relay_msg_encode(m, &buf, &len));
    cs_send(cs, buf, len, false);
    CHECK(run_until(cs_sent, cs, 5000));
    gn_free(buf);
}

typedef struct want_msg {
    cstream *cs;
    bool stop;
    gni_relay_msg *m;
    int rc;
    bool done;
} want_msg;

static bool msg_ready(void *arg)
{
    want_msg *w = arg;
    cstream *cs = w->cs;
    if (w->done) {
        return true;
    }
    if (cs->err || cs->in_len == cs->in_pos) {
        return cs->err != 0 || (cs->eof && cs->in_len == cs->in_pos);
    }
    gni_lp_reader rd;
    gni_lp_reader_init(&rd, GNI_RELAY_MSG_MAX);
    size_t used = 0;
    const uint8_t *msg;
    size_t mlen;
    int rc = gni_lp_reader_feed(&rd, cs->in + cs->in_pos, cs->in_len - cs->in_pos, &used, &msg,
                                &mlen);
    if (rc == 1) {
        w->rc = gni_relay_msg_decode(w->stop, msg, mlen, w->m);
        cs->in_pos += used;
        w->done = true;
    }
    gni_lp_reader_clear(&rd);
    return rc != 0;
}

/* Waits for the next message on @cs; fails the test when none comes. */
static void cs_recv_msg(cstream *cs, bool stop, gni_relay_msg *m)
{
    want_msg w = {cs, stop, m, GN_EAGAIN, false};
    bool ok = run_until(msg_ready, &w, 8000);
    if (!ok) {
        fprintf(stderr, "# no %s message: %zu bytes in, eof %d, err %d\n", stop ? "stop" : "hop",
                cs->in_len, cs->eof, cs->err);
    }
    CHECK(ok);
    CHECK_OK(w.rc);
    CHECK_EQ(m->stop, stop);
}

static void cs_free(cstream *cs)
{
    if (cs->s) {
        gn_stream_close(cs->s, NULL, NULL);
        cs->s = NULL;
    }
    free(cs->in);
    cs->in = NULL;
}

static bool cs_ended(void *arg)
{
    cstream *cs = arg;
    return cs->eof || cs->err;
}

/* ---- the target's stop handler ---- */

typedef struct stop_srv {
    cstream cs[4];
    int n;
} stop_srv;

static void on_stop_stream(void *arg, gn_channel *ch, gn_stream *s, const char *id)
{
    (void)ch, (void)id;
    stop_srv *sv = arg;
    if (sv->n == 4) {
        gn_stream_reset(s, NULL, NULL);
        return;
    }
    cstream *cs = &sv->cs[sv->n++];
    memset(cs, 0, sizeof *cs);
    cs_attach(cs, s);
}

static bool stop_arrived(void *arg) { return ((stop_srv *)arg)->n > 0; }

typedef struct stop_wait {
    stop_srv *sv;
    int before;
} stop_wait;

static bool stop_arrived_after(void *arg)
{
    stop_wait *w = arg;
    return w->sv->n > w->before;
}

static void stop_serve(tnode *t, stop_srv *sv)
{
    memset(sv, 0, sizeof *sv);
    gn_host *h = gn_node_host(t->n);
    int rc = gn_host_set_handler_ex(h, GNI_RELAY_STOP_ID, GN_HOST_HANDLER_LIMITED_OK,
                                    on_stop_stream, sv);
    if (rc == GN_EEXIST) { /* a circuit transport answers it: take it over */
        CHECK_OK(gn_host_remove_handler(h, GNI_RELAY_STOP_ID));
        rc = gn_host_set_handler_ex(h, GNI_RELAY_STOP_ID, GN_HOST_HANDLER_LIMITED_OK,
                                    on_stop_stream, sv);
    }
    CHECK_OK(rc);
}

static void stop_free(stop_srv *sv)
{
    for (int i = 0; i < sv->n; i++) {
        cs_free(&sv->cs[i]);
    }
}

/* ---- the client side of the hop protocol ---- */

/* @t reserves a slot in @r; returns the answer's status, *@m the answer. */
static int reserve(tnode *t, tnode *r, gni_relay_msg *m)
{
    cstream cs;
    cs_open(&cs, t, &r->pid, GNI_RELAY_HOP_ID);
    gni_relay_msg req = {.type = GNI_RELAY_HOP_RESERVE};
    cs_send_msg(&cs, &req);
    cs_recv_msg(&cs, false, m);
    CHECK_EQ(m->type, GNI_RELAY_HOP_STATUS);
    CHECK(run_until(cs_ended, &cs, 5000)); /* the relay ends the stream */
    CHECK_EQ(cs.err, 0);
    cs_free(&cs);
    return m->status;
}

typedef struct trio {
    tnode r, a, b;
    stop_srv sv;
} trio;

/* R relays with @opts; A and B are connected to it; A serves stop. */
static void trio_up(trio *t, const char *const *opts, size_t n_opts)
{
    setup();
    rl_node_up(&t->r, 1, opts, n_opts);
    rl_node_up(&t->a, 2, NULL, 0);
    rl_node_up(&t->b, 3, NULL, 0);
    connect_to(&t->a, &t->r);
    connect_to(&t->b, &t->r);
    stop_serve(&t->a, &t->sv);
}

static void trio_down(trio *t)
{
    stop_free(&t->sv);
    rl_node_down(&t->b);
    rl_node_down(&t->a);
    rl_node_down(&t->r);
    finish();
}

static gni_relay_stats stats_of(tnode *r)
{
    gni_relay_stats st;
    CHECK_OK(gni_relay_hop_stats(gn_node_host(r->n), &st));
    return st;
}

/*
 * B opens a hop stream to R asking for @target; A (when @answer) accepts
 * the stop stream. Returns B's answer status; *@hop is B's stream.
 */
static int connect_via(trio *t, const gn_peer_id *target, cstream *hop, bool answer)
{
    cs_open(hop, &t->b, &t->r.pid, GNI_RELAY_HOP_ID);
    gni_relay_msg req = {.type = GNI_RELAY_HOP_CONNECT, .has_peer = true, .peer = *target};
    cs_send_msg(hop, &req);
    if (answer) {
        stop_wait sw = {&t->sv, t->sv.n};
        CHECK(run_until(stop_arrived_after, &sw, 8000));
        CHECK_EQ(t->sv.n, sw.before + 1);
        cstream *st = &t->sv.cs[t->sv.n - 1];
        gni_relay_msg sm;
        cs_recv_msg(st, true, &sm);
        CHECK_EQ(sm.type, GNI_RELAY_STOP_CONNECT);
        CHECK(sm.has_peer && gn_peer_id_equal(&sm.peer, &t->b.pid));
        gni_relay_msg_clear(&sm);
        gni_relay_msg ok = {.stop = true, .type = GNI_RELAY_STOP_STATUS,
                            .status = GNI_RELAY_OK};
        cs_send_msg(st, &ok);
    }
    gni_relay_msg m;
    cs_recv_msg(hop, false, &m);
    CHECK_EQ(m.type, GNI_RELAY_HOP_STATUS);
    int status = m.status;
    gni_relay_msg_clear(&m);
    return status;
}

static bool no_circuits(void *arg)
{
    gni_relay_stats st;
    return gni_relay_hop_stats(gn_node_host(((tnode *)arg)->n), &st) == 0 && st.circuits == 0;
}

/* trio_up(), then A reserves a slot in R: the answer must be OK. */
static void trio_up_reserved(trio *t, const char *const *opts, size_t n_opts)
{
    trio_up(t, opts, n_opts);
    gni_relay_msg m;
    CHECK_EQ(reserve(&t->a, &t->r, &m), GNI_RELAY_OK);
    gni_relay_msg_clear(&m);
}

/* B connects through R to A, which accepts: the answer must be OK. *@hop
 * is B's stream; returns A's stop stream. */
static cstream *circuit_up(trio *t, cstream *hop)
{
    CHECK_EQ(connect_via(t, &t->a.pid, hop, true), GNI_RELAY_OK);
    return &t->sv.cs[t->sv.n - 1];
}

/* ---- tests ---- */

GN_TEST(reserve_answers_ok_with_a_voucher_and_addresses)
{
    static const char *const opts[] = {"relay.limit_duration=60", "relay.limit_data=65536"};
    trio t;
    trio_up(&t, opts, 2);
    gni_relay_msg m;
    uint64_t now = (uint64_t)time(NULL);
    CHECK_EQ(reserve(&t.a, &t.r, &m), GNI_RELAY_OK);
    CHECK(m.has_reservation);
    CHECK(m.rsv_expire >= now + 3599 && m.rsv_expire <= now + 3601);
    CHECK(m.nrsv_addrs >= 1);
    for (size_t i = 0; i < m.nrsv_addrs; i++) {
        gn_ma_component c;
        int idx = gn_multiaddr_find(m.rsv_addrs[i], GN_MA_P2P, &c);
        CHECK(idx > 0);
        gn_peer_id p;
        CHECK_OK(gn_peer_id_from_bytes(c.value, c.value_len, &p));
        CHECK(gn_peer_id_equal(&p, &t.r.pid));
    }
    char s[256];
    CHECK(gn_multiaddr_to_string(m.rsv_addrs[0], s, sizeof s) > 0);
    CHECK(strncmp(s, "/ip4/127.0.0.1/tcp/", 19) == 0);
    CHECK(m.has_limit);
    CHECK_EQ(m.limit_duration, 60u);
    CHECK_EQ(m.limit_data, 65536u);
    gn_peer_id who;
    uint64_t exp;
    CHECK(m.voucher != NULL);
    CHECK_OK(gni_relay_voucher_open(m.voucher, m.voucher_len, &t.r.pid, &who, &exp));
    CHECK(gn_peer_id_equal(&who, &t.a.pid));
    CHECK_EQ(exp, m.rsv_expire);
    gni_relay_msg_clear(&m);
    /* a refresh is accepted and keeps one reservation */
    CHECK_EQ(reserve(&t.a, &t.r, &m), GNI_RELAY_OK);
    gni_relay_msg_clear(&m);
    gni_relay_stats st = stats_of(&t.r);
    CHECK_EQ(st.reservations, 1u);
    CHECK_EQ(st.reservations_total, 2u);
    trio_down(&t);
}

#define BIG (1024u * 1024u)

typedef struct xfer {
    cstream *x, *y;
    size_t want;
} xfer;

static bool both_received(void *arg)
{
    xfer *w = arg;
    return (w->x->err || w->y->err) ||
           (w->x->eof && w->y->eof && w->x->in_len - w->x->in_pos >= w->want &&
            w->y->in_len - w->y->in_pos >= w->want && cs_sent(w->x) && cs_sent(w->y));
}

GN_TEST(connect_relays_bytes_both_ways_and_half_close)
{
    static const char *const opts[] = {"relay.limit_data=4194304"};
    trio t;
    trio_up_reserved(&t, opts, 1);
    cstream hop;
    cstream *stop = circuit_up(&t, &hop);
    CHECK_EQ(stats_of(&t.r).circuits, 1u);
    uint8_t *ab = malloc(BIG), *ba = malloc(BIG);
    CHECK(ab && ba);
    for (size_t i = 0; i < BIG; i++) {
        ab[i] = (uint8_t)(i * 7 + i / 251);
        ba[i] = (uint8_t)(i * 13 + 5);
    }
    cs_send(stop, ab, BIG, true);
    cs_send(&hop, ba, BIG, true);
    xfer w = {&hop, stop, BIG};
    CHECK(run_until(both_received, &w, 30000));
    CHECK_EQ(hop.err, 0);
    CHECK_EQ(stop->err, 0);
    CHECK_EQ(hop.in_len - hop.in_pos, (size_t)BIG);
    CHECK_EQ(stop->in_len - stop->in_pos, (size_t)BIG);
    CHECK(memcmp(hop.in + hop.in_pos, ab, BIG) == 0);
    CHECK(memcmp(stop->in + stop->in_pos, ba, BIG) == 0);
    gni_relay_stats st = stats_of(&t.r);
    CHECK_EQ(st.circuits_total, 1u);
    CHECK_EQ(st.bytes_relayed, 2u * BIG);
    CHECK(run_until(no_circuits, &t.r, 5000)); /* both halves closed: the circuit ended */
    cs_free(&hop);
    free(ab);
    free(ba);
    trio_down(&t);
}

/* Memory the relay's hop streams hold in its resource manager, bytes. */
static uint64_t relay_memory(tnode *r)
{
    gn_rcmgr_usage u;
    int rc = gn_rcmgr_stat(gn_node_rcmgr(r->n), GN_RCMGR_SCOPE_PROTOCOL, GNI_RELAY_HOP_ID,
                           sizeof GNI_RELAY_HOP_ID - 1, &u);
    return rc == 0 ? u.memory : 0;
}

GN_TEST(a_slow_target_pushes_back_to_the_initiator)
{
    static const char *const opts[] = {"relay.limit_data=0"};
    trio t;
    trio_up_reserved(&t, opts, 1);
    cstream hop;
    cstream *stop = circuit_up(&t, &hop);
    CHECK_OK(gn_stream_read_stop(stop->s)); /* A stops reading */
    size_t total = 8u * BIG;
    uint8_t *data = malloc(total);
    CHECK(data != NULL);
    for (size_t i = 0; i < total; i++) {
        data[i] = (uint8_t)(i * 31 + i / 1021);
    }
    cs_send(&hop, data, total, true);
    CHECK(!run_until(cs_sent, &hop, 1500));
    /* B is held back: the relay buffers at most its window per direction
     * (plus one read), the muxers their windows, B's queue the rest */
    uint64_t held = relay_memory(&t.r);
    CHECK(held > 0);
    CHECK(held <= 2u * 256u * 1024u);
    CHECK(hop.out_off < total / 4); /* (about 0.7 MiB when written) */
    CHECK(stop->in_len < total / 2);
    /* A reads again: everything arrives, in order */
    CHECK_OK(gn_stream_read_start(stop->s));
    for (int i = 0; i < 3000 && !(stop->eof && stop->in_len - stop->in_pos >= total); i++) {
        run_until(never, NULL, 10);
    }
    CHECK(stop->eof);
    CHECK_EQ(stop->in_len - stop->in_pos, total);
    CHECK(memcmp(stop->in + stop->in_pos, data, total) == 0);
    CHECK_EQ(stats_of(&t.r).bytes_relayed, (uint64_t)total);
    free(data);
    cs_free(&hop);
    trio_down(&t);
}

GN_TEST(half_close_propagates_and_the_other_way_keeps_flowing)
{
    static const char *const opts[] = {"relay.limit_data=0"};
    trio t;
    trio_up(&t, opts, 1);
    gni_relay_msg m;
    CHECK_EQ(reserve(&t.a, &t.r, &m), GNI_RELAY_OK);
    gni_relay_msg_clear(&m);
    CHECK(!m.has_limit || m.limit_data == 0);
    cstream hop;
    cstream *stop = circuit_up(&t, &hop);
    /* B says "ping" and half-closes: A sees the bytes and EOF */
    cs_send(&hop, (const uint8_t *)"ping", 4, true);
    CHECK(run_until(cs_ended, stop, 8000));
    CHECK(stop->eof && stop->err == 0);
    CHECK_EQ(stop->in_len - stop->in_pos, 4u);
    CHECK(memcmp(stop->in + stop->in_pos, "ping", 4) == 0);
    /* A still answers after B's half-close */
    cs_send(stop, (const uint8_t *)"pong!", 5, true);
    CHECK(run_until(cs_ended, &hop, 8000));
    CHECK(hop.eof && hop.err == 0);
    CHECK_EQ(hop.in_len - hop.in_pos, 5u);
    CHECK(memcmp(hop.in + hop.in_pos, "pong!", 5) == 0);
    cs_free(&hop);
    trio_down(&t);
}

/* Encodes @m followed by @extra into one buffer (gn_free). */
static uint8_t *msg_plus(const gni_relay_msg *m, const char *extra, size_t *len)
{
    uint8_t *buf;
    size_t n;
    CHECK_OK(gni_relay_msg_encode(m, &buf, &n));
    size_t e = strlen(extra);
    buf = gn_realloc(buf, n + e);
    CHECK(buf != NULL);
    memcpy(buf + n, extra, e);
    *len = n + e;
    return buf;
}

GN_TEST(bytes_right_after_the_handshake_messages_are_relayed)
{
    trio t;
    static const char *const opts[] = {"relay.limit_data=0"};
    trio_up_reserved(&t, opts, 1);
    gni_relay_msg m;
    /* B's CONNECT and its first bytes in one write */
    cstream hop;
    cs_open(&hop, &t.b, &t.r.pid, GNI_RELAY_HOP_ID);
    gni_relay_msg req = {.type = GNI_RELAY_HOP_CONNECT, .has_peer = true, .peer = t.a.pid};
    size_t len;
    uint8_t *buf = msg_plus(&req, "early-from-b", &len);
    cs_send(&hop, buf, len, true); /* and half-closes before the circuit is up */
    CHECK(run_until(cs_sent, &hop, 5000));
    gn_free(buf);
    CHECK(run_until(stop_arrived, &t.sv, 8000));
    cstream *st = &t.sv.cs[0];
    cs_recv_msg(st, true, &m);
    CHECK_EQ(m.type, GNI_RELAY_STOP_CONNECT);
    gni_relay_msg_clear(&m);
    /* A's STATUS OK and its first bytes in one write */
    gni_relay_msg ok = {.stop = true, .type = GNI_RELAY_STOP_STATUS, .status = GNI_RELAY_OK};
    buf = msg_plus(&ok, "early-from-a", &len);
    cs_send(st, buf, len, false);
    CHECK(run_until(cs_sent, st, 5000));
    gn_free(buf);
    cs_recv_msg(&hop, false, &m);
    CHECK_EQ(m.status, GNI_RELAY_OK);
    gni_relay_msg_clear(&m);
    for (int i = 0; i < 200 && (hop.in_len - hop.in_pos < 12 || st->in_len - st->in_pos < 12);
         i++) {
        run_until(never, NULL, 10);
    }
    CHECK_EQ(hop.in_len - hop.in_pos, 12u);
    CHECK(memcmp(hop.in + hop.in_pos, "early-from-a", 12) == 0);
    CHECK_EQ(st->in_len - st->in_pos, 12u);
    CHECK(memcmp(st->in + st->in_pos, "early-from-b", 12) == 0);
    CHECK(run_until(cs_ended, st, 5000));
    CHECK(st->eof && st->err == 0);
    CHECK_EQ(hop.err, 0);
    cs_free(&hop);
    trio_down(&t);
}

GN_TEST(connect_without_reservation_is_refused)
{
    trio t;
    static const char *const opts[] = {"relay.max_circuits=4"};
    trio_up(&t, opts, 1);
    cstream hop;
    CHECK_EQ(connect_via(&t, &t.a.pid, &hop, false), GNI_RELAY_NO_RESERVATION);
    CHECK_EQ(t.sv.n, 0);
    CHECK(run_until(cs_ended, &hop, 5000));
    cs_free(&hop);
    /* a reservation dies with the channel it was made on */
    gni_relay_msg m;
    CHECK_EQ(reserve(&t.a, &t.r, &m), GNI_RELAY_OK);
    gni_relay_msg_clear(&m);
    CHECK_EQ(stats_of(&t.r).reservations, 1u);
    gn_channel_close(t.a.to_relay);
    gn_channel_rele(t.a.to_relay);
    t.a.to_relay = NULL;
    CHECK(!run_until(never, NULL, 300));
    CHECK_EQ(stats_of(&t.r).reservations, 0u);
    CHECK_EQ(connect_via(&t, &t.a.pid, &hop, false), GNI_RELAY_NO_RESERVATION);
    cs_free(&hop);
    gni_relay_stats st = stats_of(&t.r);
    CHECK_EQ(st.refused[GNI_RELAY_REFUSED_NO_RSV], 2u);
    CHECK_EQ(st.circuits_total, 0u);
    trio_down(&t);
}

static bool both_failed(void *arg)
{
    xfer *w = arg;
    return w->x->err && w->y->err;
}

GN_TEST(data_limit_resets_both_streams)
{
    static const char *const opts[] = {"relay.limit_data=1000"};
    trio t;
    trio_up(&t, opts, 1);
    gni_relay_msg m;
    CHECK_EQ(reserve(&t.a, &t.r, &m), GNI_RELAY_OK);
    CHECK(m.has_limit && m.limit_data == 1000);
    gni_relay_msg_clear(&m);
    cstream hop;
    cstream *stop = circuit_up(&t, &hop);
    /* exactly the limit passes */
    static uint8_t data[3000];
    memset(data, 0x5a, sizeof data);
    cs_send(stop, data, 1000, false);
    CHECK(run_until(cs_sent, stop, 5000));
    for (int i = 0; i < 100 && hop.in_len - hop.in_pos < 1000; i++) {
        run_until(never, NULL, 10);
    }
    CHECK_EQ(hop.in_len - hop.in_pos, 1000u);
    CHECK_EQ(hop.err, 0);
    /* one byte more resets both sides */
    cs_send(stop, data, 1, false);
    xfer w = {&hop, stop, 0};
    CHECK(run_until(both_failed, &w, 8000));
    CHECK_EQ(hop.in_len - hop.in_pos, 1000u);
    CHECK_EQ(stats_of(&t.r).limit_resets, 1u);
    CHECK_EQ(stats_of(&t.r).circuits, 0u);
    cs_free(&hop);
    trio_down(&t);
}

GN_TEST(duration_limit_resets_both_streams)
{
    static const char *const opts[] = {"relay.limit_duration=1"};
    trio t;
    trio_up_reserved(&t, opts, 1);
    cstream hop;
    cstream *stop = circuit_up(&t, &hop);
    xfer w = {&hop, stop, 0};
    CHECK(!run_until(both_failed, &w, 500)); /* alive before the limit */
    CHECK(run_until(both_failed, &w, 5000));
    CHECK_EQ(stats_of(&t.r).limit_resets, 1u);
    cs_free(&hop);
    trio_down(&t);
}

GN_TEST(reservation_and_circuit_limits_refuse)
{
    static const char *const opts[] = {"relay.max_reservations=1", "relay.max_circuits=1"};
    trio t;
    trio_up_reserved(&t, opts, 2);
    gni_relay_msg m;
    /* the table is full: B is refused, A's refresh is not */
    CHECK_EQ(reserve(&t.b, &t.r, &m), GNI_RELAY_RESERVATION_REFUSED);
    CHECK(!m.has_reservation);
    gni_relay_msg_clear(&m);
    CHECK_EQ(reserve(&t.a, &t.r, &m), GNI_RELAY_OK);
    gni_relay_msg_clear(&m);
    /* one circuit at a time */
    cstream hop1, hop2;
    CHECK_EQ(connect_via(&t, &t.a.pid, &hop1, true), GNI_RELAY_OK);
    CHECK_EQ(connect_via(&t, &t.a.pid, &hop2, false), GNI_RELAY_RESOURCE_LIMIT_EXCEEDED);
    CHECK_EQ(t.sv.n, 1);
    cs_free(&hop2);
    /* once the first ends, the slot is free again */
    gn_stream_reset(hop1.s, NULL, NULL);
    hop1.s = NULL;
    CHECK(run_until(cs_ended, &t.sv.cs[0], 5000));
    CHECK_EQ(connect_via(&t, &t.a.pid, &hop2, true), GNI_RELAY_OK);
    cs_free(&hop1);
    cs_free(&hop2);
    gni_relay_stats st = stats_of(&t.r);
    CHECK_EQ(st.refused[GNI_RELAY_REFUSED_RESERVATION], 1u);
    CHECK_EQ(st.refused[GNI_RELAY_REFUSED_RESOURCE], 1u);
    CHECK_EQ(st.circuits_total, 2u);
    trio_down(&t);
}

GN_TEST(reservations_per_ip_are_bounded)
{
    /* A and B both come from 127.0.0.1 */
    static const char *const opts[] = {"relay.max_reservations_per_ip=1",
                                       "relay.reservation_ttl=1"};
    trio t;
    trio_up_reserved(&t, opts, 2);
    gni_relay_msg m;
    CHECK_EQ(reserve(&t.b, &t.r, &m), GNI_RELAY_RESERVATION_REFUSED);
    gni_relay_msg_clear(&m);
    /* A's reservation expires after its TTL; then B gets the slot */
    CHECK(!run_until(never, NULL, 1300));
    CHECK_EQ(stats_of(&t.r).reservations, 0u);
    cstream hop;
    CHECK_EQ(connect_via(&t, &t.a.pid, &hop, false), GNI_RELAY_NO_RESERVATION);
    cs_free(&hop);
    CHECK_EQ(reserve(&t.b, &t.r, &m), GNI_RELAY_OK);
    gni_relay_msg_clear(&m);
    trio_down(&t);
}

GN_TEST(target_refusal_and_bad_requests)
{
    trio t;
    static const char *const opts[] = {"relay.timeout_ms=500"};
    trio_up_reserved(&t, opts, 1);
    gni_relay_msg m;
    /* the target answers CONNECTION_FAILED: so does the relay */
    cstream hop;
    cs_open(&hop, &t.b, &t.r.pid, GNI_RELAY_HOP_ID);
    gni_relay_msg req = {.type = GNI_RELAY_HOP_CONNECT, .has_peer = true, .peer = t.a.pid};
    cs_send_msg(&hop, &req);
    CHECK(run_until(stop_arrived, &t.sv, 8000));
    gni_relay_msg no = {.stop = true, .type = GNI_RELAY_STOP_STATUS,
                        .status = GNI_RELAY_CONNECTION_FAILED};
    cs_send_msg(&t.sv.cs[0], &no);
    cs_recv_msg(&hop, false, &m);
    CHECK_EQ(m.status, GNI_RELAY_CONNECTION_FAILED);
    cs_free(&hop);
    /* a silent target: the relay gives up after timeout_ms */
    cs_open(&hop, &t.b, &t.r.pid, GNI_RELAY_HOP_ID);
    cs_send_msg(&hop, &req);
    cs_recv_msg(&hop, false, &m);
    CHECK_EQ(m.status, GNI_RELAY_CONNECTION_FAILED);
    cs_free(&hop);
    /* a STATUS sent to the relay is unexpected; garbage is malformed */
    cs_open(&hop, &t.b, &t.r.pid, GNI_RELAY_HOP_ID);
    gni_relay_msg st = {.type = GNI_RELAY_HOP_STATUS, .status = GNI_RELAY_OK};
    cs_send_msg(&hop, &st);
    cs_recv_msg(&hop, false, &m);
    CHECK_EQ(m.status, GNI_RELAY_UNEXPECTED_MESSAGE);
    cs_free(&hop);
    cs_open(&hop, &t.b, &t.r.pid, GNI_RELAY_HOP_ID);
    cs_send(&hop, (const uint8_t *)"\x02\x08\x07", 3, false);
    cs_recv_msg(&hop, false, &m);
    CHECK_EQ(m.status, GNI_RELAY_MALFORMED_MESSAGE);
    cs_free(&hop);
    /* a silent requester is dropped after timeout_ms */
    cs_open(&hop, &t.b, &t.r.pid, GNI_RELAY_HOP_ID);
    CHECK(run_until(cs_ended, &hop, 5000));
    cs_free(&hop);
    CHECK_EQ(stats_of(&t.r).circuits, 0u);
    trio_down(&t);
}

GN_TEST(relay_is_off_unless_configured)
{
    setup();
    tnode a;
    rl_node_up(&a, 2, NULL, 0);
    gni_relay_stats st;
    CHECK_EQ(gni_relay_hop_stats(gn_node_host(a.n), &st), GN_ENOTFOUND);
    const char *ids[64];
    size_t n = gn_host_protocols(gn_node_host(a.n), ids, 64);
    for (size_t i = 0; i < n; i++) {
        CHECK(strcmp(ids[i], GNI_RELAY_HOP_ID) != 0);
    }
    rl_node_down(&a);
    /* a bad option fails the component's start, reported by name */
    static const char *const bad[] = {"relay.max_circuits=lots"};
    gn_identity *id;
    CHECK_OK(gn_identity_from_int_seed(9, &id));
    gn_node_config cfg;
    gn_node_config_default(&cfg);
    cfg.identity = id;
    cfg.loop = loop;
    cfg.transports = "tcp";
    cfg.routers = "";
    cfg.discovery = "";
    cfg.protocol_components = "relay";
    cfg.options = bad;
    cfg.n_options = 1;
    tnode t = {.id = id};
    CHECK_OK(gn_node_new(&cfg, &t.n));
    (void)gn_node_start(t.n);
    bool seen = false;
    for (int i = 0; i < 100 && !seen; i++) {
        run_until(never, NULL, 10);
        gn_node_event ev;
        while (gn_node_next_event(t.n, &ev, 0) == 0) {
            if (ev.type == GN_NODE_EV_START_FAILED) {
                seen = true;
                CHECK_EQ(ev.status, GN_EINVAL);
                CHECK(strstr(ev.protocol, GNI_RELAY_HOP_ID) != NULL);
            }
            gn_rcbuf_rele(ev.message);
        }
    }
    CHECK(seen);
    rl_node_down(&t);
    finish();
}

GN_TEST_MAIN(GN_T(reserve_answers_ok_with_a_voucher_and_addresses),
             GN_T(connect_relays_bytes_both_ways_and_half_close),
             GN_T(a_slow_target_pushes_back_to_the_initiator),
             GN_T(half_close_propagates_and_the_other_way_keeps_flowing),
             GN_T(bytes_right_after_the_handshake_messages_are_relayed),
             GN_T(connect_without_reservation_is_refused), GN_T(data_limit_resets_both_streams),
             GN_T(duration_limit_resets_both_streams), GN_T(reservation_and_circuit_limits_refuse),
             GN_T(reservations_per_ip_are_bounded),
             GN_T(target_refusal_and_bad_requests), GN_T(relay_is_off_unless_configured))
