/*
 * The control daemon server (include/golemnet/ipcd.h) against two
 * in-process nodes on TCP loopback: node A served by a gn_ipcd on a Unix
 * socket, node B a plain peer. Clients are raw protocol clients (the
 * socket layer plus the wire core), several at once: every op at least
 * once, streams both ways (stream open, stream handlers), a client killed
 * mid-stream, a client that stops reading its events and is disconnected
 * while another keeps up, bad frames, and a graceful close.
 */
#include "ctl_wire.h"
#include "gni_ipc.h"

#include "gn_test.h"
#include "gn_tnode.h"
#include "golemnet/ipcd.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXMSGS 4096

typedef struct tcli {
    gni_ipc_conn *c;
    bool connected, ended, closed, expect_raw;
    int end_err;
    Gnctl__ServerMessage *msgs[MAXMSGS];
    size_t nmsgs;
    size_t events;   /* events received (all kinds) */
    size_t messages; /* EV_MESSAGE events */
    uint8_t raw[1 << 16];
    size_t raw_len;
    uint64_t next_id;
} tcli;

static char tmpdir[64];
static char sock_path[128];

static void mk_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/gn-ipcd-XXXXXX");
    CHECK(mkdtemp(tmpdir) != NULL);
    snprintf(sock_path, sizeof sock_path, "%s/d.sock", tmpdir);
}

static void rm_tmpdir(void)
{
    char p[160];
    snprintf(p, sizeof p, "%s/h.sock", tmpdir);
    unlink(p);
    snprintf(p, sizeof p, "%s/h.sock.lock", tmpdir);
    unlink(p);
    unlink(sock_path);
    snprintf(p, sizeof p, "%s.lock", sock_path);
    unlink(p); /* left by the listener (ipc_sock_uv.c) */
    rmdir(tmpdir);
}

static void tc_on_msg(gni_ipc_conn *c, const uint8_t *msg, size_t len, void *ud)
{
    tcli *t = ud;
    Gnctl__ServerMessage *m = NULL;
    int rc = gni_ctl_server_msg_decode(msg, len, &m, NULL, 0);
    CHECK_EQ(rc, 0);
    if (m->msg_case == GNCTL__SERVER_MESSAGE__MSG_EVENT) {
        t->events++;
        if (m->event->type == GNCTL__EVENT_TYPE__EV_MESSAGE) {
            t->messages++;
            gni_ctl_server_msg_free(m); /* counted only: many arrive */
            return;
        }
    }
    if (t->expect_raw && m->msg_case == GNCTL__SERVER_MESSAGE__MSG_RESPONSE &&
        m->response->status == 0 && m->response->result_case == GNCTL__RESPONSE__RESULT_STREAM) {
        gni_ipc_conn_set_raw(c);
    }
    if (t->nmsgs < MAXMSGS) {
        t->msgs[t->nmsgs++] = m;
    } else {
        gni_ctl_server_msg_free(m);
    }
}

static void tc_on_data(gni_ipc_conn *c, const uint8_t *d, size_t len, void *ud)
{
    tcli *t = ud;
    (void)c;
    CHECK(t->raw_len + len <= sizeof t->raw);
    memcpy(t->raw + t->raw_len, d, len);
    t->raw_len += len;
}

static void tc_on_end(gni_ipc_conn *c, int err, void *ud)
{
    tcli *t = ud;
    (void)c;
    t->ended = true;
    t->end_err = err;
}

static void tc_on_close(gni_ipc_conn *c, void *ud)
{
    tcli *t = ud;
    (void)c;
    t->closed = true;
}

static const gni_ipc_conn_cbs tc_cbs = {.on_msg = tc_on_msg, .on_data = tc_on_data,
                                        .on_end = tc_on_end, .on_close = tc_on_close};

static void tc_connected(gni_ipc_conn *c, int err, void *ud)
{
    tcli *t = ud;
    CHECK_EQ(err, 0);
    t->c = c;
    t->connected = true;
    gni_ipc_conn_set_cbs(c, &tc_cbs, t);
    CHECK_OK(gni_ipc_conn_read_start(c));
}

static bool tc_is_connected(void *arg) { return ((tcli *)arg)->connected; }
static bool tc_is_ended(void *arg) { return ((tcli *)arg)->ended; }
static bool tc_is_closed(void *arg) { return ((tcli *)arg)->closed; }

static void tc_open(tcli *t, const char *path)
{
    memset(t, 0, sizeof *t);
    t->next_id = 1;
    CHECK_OK(gni_ipc_connect(gn_loop_uv(loop), path, tc_connected, t, NULL, 0));
    CHECK(run_until(tc_is_connected, t, 3000));
}

static void tc_free_msgs(tcli *t)
{
    for (size_t i = 0; i < t->nmsgs; i++) {
        gni_ctl_server_msg_free(t->msgs[i]);
    }
    t->nmsgs = 0;
}

static void tc_close(tcli *t)
{
    if (t->c && !t->closed) {
        gni_ipc_conn_close(t->c, false);
        CHECK(run_until(tc_is_closed, t, 3000));
    }
    tc_free_msgs(t);
}

/* Sends @r (its id set from the counter); returns the id. */
static uint64_t tc_send(tcli *t, Gnctl__Request *r)
{
    r->id = t->next_id++;
    uint8_t *f = NULL;
    size_t n = 0;
    CHECK_OK(gni_ctl_encode(&r->base, &f, &n));
    CHECK_OK(gni_ipc_conn_write(t->c, f, n, false));
    gn_free(f);
    return r->id;
}

typedef struct wait_resp {
    tcli *t;
    uint64_t id;
    Gnctl__Response *r;
} wait_resp;

static bool got_resp(void *arg)
{
    wait_resp *w = arg;
    for (size_t i = 0; i < w->t->nmsgs; i++) {
        Gnctl__ServerMessage *m = w->t->msgs[i];
        if (m->msg_case == GNCTL__SERVER_MESSAGE__MSG_RESPONSE && m->response->id == w->id) {
            w->r = m->response;
            return true;
        }
    }
    return false;
}

static Gnctl__Response *tc_wait(tcli *t, uint64_t id)
{
    wait_resp w = {.t = t, .id = id};
    CHECK(run_until(got_resp, &w, 10000));
    return w.r;
}

/* Sends @r and waits for its response. */
static Gnctl__Response *tc_call(tcli *t, Gnctl__Request *r)
{
    return tc_wait(t, tc_send(t, r));
}

typedef struct wait_ev {
    tcli *t;
    int type;
    Gnctl__Event *ev;
} wait_ev;

static bool got_event(void *arg)
{
    wait_ev *w = arg;
    for (size_t i = 0; i < w->t->nmsgs; i++) {
        Gnctl__ServerMessage *m = w->t->msgs[i];
        if (m->msg_case == GNCTL__SERVER_MESSAGE__MSG_EVENT && (int)m->event->type == w->type) {
            w->ev = m->event;
            return true;
        }
    }
    return false;
}

static Gnctl__Event *tc_wait_event(tcli *t, int type)
{
    wait_ev w = {.t = t, .type = type};
    CHECK(run_until(got_event, &w, 10000));
    return w.ev;
}

/* ---- nodes ---- */

static tnode A, B;
static gn_ipcd *D;

/* B: a handler that echoes every stream (and a counter of streams). */
typedef struct echo_st {
    gn_stream *s;
    uint8_t buf[65536];
    size_t len;
    bool eof, closed;
} echo_st;

static int b_streams, b_stream_ends;
static void echo_wr(void *arg, int status) { (void)arg, (void)status; }

static void echo_data(gn_stream *s, void *ud, const uint8_t *d, size_t len)
{
    echo_st *e = ud;
    if (e->len + len > sizeof e->buf) {
        e->len = 0;
    }
    memcpy(e->buf + e->len, d, len);
    gn_slice sl = {.base = e->buf + e->len, .len = len};
    e->len += len;
    CHECK_OK(gn_stream_write(s, &sl, 1, echo_wr, NULL));
}

static void echo_closed(gn_stream *s, void *arg)
{
    (void)s;
    b_stream_ends++;
    free(arg);
}

static void echo_eof(gn_stream *s, void *ud)
{
    (void)ud;
    gn_stream_close(s, echo_closed, ud);
}

static void echo_err(gn_stream *s, void *ud, int err)
{
    (void)err;
    gn_stream_close(s, echo_closed, ud);
}

static const gn_stream_handler echo_h = {.on_data = echo_data, .on_eof = echo_eof,
                                         .on_error = echo_err};

static void b_echo(void *arg, gn_channel *ch, gn_stream *s, const char *proto)
{
    (void)arg, (void)ch, (void)proto;
    echo_st *e = calloc(1, sizeof *e);
    e->s = s;
    b_streams++;
    gn_stream_set_handler(s, &echo_h, e);
    gn_stream_read_start(s);
}

static void b_drain_events(void)
{
    gn_node_event ev;
    while (gn_node_next_event(B.n, &ev, 0) == 0) {
        gn_rcbuf_rele(ev.message);
    }
}

static void serve_a(size_t queue_max)
{
    mk_tmpdir();
    setup();
    nopts o = {.listen = true, .routers = "", .discovery = ""};
    node_up(&A, 1, &o);
    node_up(&B, 2, &o);
    CHECK_OK(gn_node_set_handler(B.n, "/test/echo/1.0.0", b_echo, NULL));
    gn_ipcd_config cfg;
    gn_ipcd_config_default(&cfg);
    cfg.address = sock_path;
    if (queue_max) {
        cfg.client_queue_max = queue_max;
    }
    char err[256];
    CHECK_OK(gn_ipcd_new(A.n, &cfg, &D, err, sizeof err));
    CHECK_STR(gn_ipcd_address(D, 0), sock_path);
    CHECK(gn_ipcd_address(D, 1) == NULL);
    b_streams = b_stream_ends = 0;
}

static int closed_cb_runs;
static void ipcd_closed(void *arg)
{
    (void)arg;
    closed_cb_runs++;
}
static bool ipcd_is_closed(void *arg) { (void)arg; return closed_cb_runs > 0; }

static void unserve(void)
{
    closed_cb_runs = 0;
    gn_ipcd_close(D, 2 * GN_S, ipcd_closed, NULL);
    CHECK(run_until(ipcd_is_closed, NULL, 10000));
    CHECK_EQ(closed_cb_runs, 1);
    D = NULL;
    CHECK(access(sock_path, F_OK) != 0); /* socket file removed */
    b_drain_events();
    node_down(&A);
    node_down(&B);
    finish();
    rm_tmpdir();
}

/* ---- tests ---- */

static bool b_got_message(void *arg)
{
    int *want = arg;
    gn_node_event ev;
    while (gn_node_next_event(B.n, &ev, 0) == 0) {
        if (ev.type == GN_NODE_EV_MESSAGE) {
            (*want)--;
        }
        gn_rcbuf_rele(ev.message);
    }
    return *want <= 0;
}

GN_TEST(every_op)
{
    serve_a(0);
    tcli t;
    tc_open(&t, sock_path);
    Gnctl__Request r = GNCTL__REQUEST__INIT;
    Gnctl__Response *resp;

    /* hello */
    Gnctl__HelloRequest hello = GNCTL__HELLO_REQUEST__INIT;
    hello.version = 1;
    hello.client = "ipcd_test";
    r.op_case = GNCTL__REQUEST__OP_HELLO;
    r.hello = &hello;
    resp = tc_call(&t, &r);
    CHECK_EQ(resp->status, 0);
    CHECK_EQ(resp->hello->version, GN_CTL_VERSION);
    CHECK_STR(resp->hello->peer, A.pid_str);
    CHECK_EQ(resp->hello->max_message, GN_CTL_MSG_MAX);
    CHECK_EQ(resp->hello->n_features, 0u); /* no kad router */

    /* subscribe to everything */
    Gnctl__SubscribeRequest sub = GNCTL__SUBSCRIBE_REQUEST__INIT;
    sub.mask = ~(uint64_t)0;
    r.op_case = GNCTL__REQUEST__OP_SUBSCRIBE;
    r.subscribe = &sub;
    resp = tc_call(&t, &r);
    CHECK_EQ(resp->status, 0);
    CHECK_EQ(resp->subscribe->mask, ~(uint64_t)0);
    CHECK_EQ(resp->subscribe->queue_max, 4u * 1024 * 1024);

    /* identify */
    Gnctl__IdentifyRequest idr = GNCTL__IDENTIFY_REQUEST__INIT;
    r.op_case = GNCTL__REQUEST__OP_IDENTIFY;
    r.identify = &idr;
    resp = tc_call(&t, &r);
    CHECK_EQ(resp->status, 0);
    CHECK_STR(resp->identify->peer, A.pid_str);
    CHECK(resp->identify->n_addrs >= 1);
    CHECK(resp->identify->n_protocols >= 1);
    CHECK(resp->identify->agent[0] != '\0');

    /* configure: one known option, one unknown, one bad value */
    Gnctl__ConfigureRequest conf = GNCTL__CONFIGURE_REQUEST__INIT;
    conf.name = "max_connections";
    conf.value = "100";
    r.op_case = GNCTL__REQUEST__OP_CONFIGURE;
    r.configure = &conf;
    CHECK_EQ(tc_call(&t, &r)->status, 0);
    conf.name = "nope";
    resp = tc_call(&t, &r);
    CHECK_EQ(resp->status, GN_ENOTSUP);
    CHECK(strstr(resp->error, "nope") != NULL);
    conf.name = "idle_timeout_ms";
    conf.value = "12x";
    CHECK_EQ(tc_call(&t, &r)->status, GN_EINVAL);

    /* listen, then unlisten */
    Gnctl__ListenRequest lr = GNCTL__LISTEN_REQUEST__INIT;
    lr.addr = "/ip4/127.0.0.1/tcp/0";
    r.op_case = GNCTL__REQUEST__OP_LISTEN;
    r.listen = &lr;
    resp = tc_call(&t, &r);
    CHECK_EQ(resp->status, 0);
    CHECK(strncmp(resp->listen->addr, "/ip4/127.0.0.1/tcp/", 19) == 0);
    char bound[GN_NODE_ADDR_MAX];
    snprintf(bound, sizeof bound, "%s", resp->listen->addr);
    (void)tc_wait_event(&t, GNCTL__EVENT_TYPE__EV_LISTENING);
    lr.addr = "/ip4/127.0.0.1/tcp/0/bogus";
    CHECK(tc_call(&t, &r)->status < 0);
    Gnctl__UnlistenRequest ul = GNCTL__UNLISTEN_REQUEST__INIT;
    ul.addr = bound;
    r.op_case = GNCTL__REQUEST__OP_UNLISTEN;
    r.unlisten = &ul;
    CHECK_EQ(tc_call(&t, &r)->status, 0);
    CHECK_EQ(tc_call(&t, &r)->status, GN_ENOTFOUND);

    /* dial B */
    Gnctl__DialRequest dr = GNCTL__DIAL_REQUEST__INIT;
    dr.addr = B.addr;
    r.op_case = GNCTL__REQUEST__OP_DIAL;
    r.dial = &dr;
    resp = tc_call(&t, &r);
    CHECK_EQ(resp->status, 0);
    CHECK_STR(resp->channel->peer, B.pid_str);
    CHECK_EQ(resp->channel->state, GNCTL__CHANNEL_STATE__CH_OPEN);
    uint64_t chid = resp->channel->channel_id;
    CHECK(chid != 0);
    (void)tc_wait_event(&t, GNCTL__EVENT_TYPE__EV_CHANNEL_OPENED);
    /* the node API the daemon lists channels with */
    uint64_t ids[4];
    CHECK_EQ(gn_node_channel_ids(A.n, ids, 4), 1);
    CHECK_EQ(ids[0], chid);
    CHECK_EQ(gn_node_channel_ids(A.n, NULL, 0), 1);
    CHECK_EQ(gn_node_channel_ids(A.n, NULL, 1), GN_EINVAL);
    dr.addr = "/ip4/127.0.0.1/tcp/1";
    CHECK(tc_call(&t, &r)->status < 0); /* refused */

    /* peers, channel state, metrics */
    Gnctl__PeersRequest pr = GNCTL__PEERS_REQUEST__INIT;
    r.op_case = GNCTL__REQUEST__OP_PEERS;
    r.peers = &pr;
    resp = tc_call(&t, &r);
    CHECK_EQ(resp->peers->n_channels, 1u);
    CHECK_EQ(resp->peers->channels[0]->channel_id, chid);
    CHECK(!resp->peers->truncated);
    Gnctl__ChannelRequest cr = GNCTL__CHANNEL_REQUEST__INIT;
    cr.channel_id = chid;
    r.op_case = GNCTL__REQUEST__OP_CHANNEL_STATE;
    r.channel_state = &cr;
    resp = tc_call(&t, &r);
    CHECK_EQ(resp->channel->channel_id, chid);
    CHECK(!resp->channel->inbound);
    r.op_case = GNCTL__REQUEST__OP_CHANNEL_METRICS;
    r.channel_metrics = &cr;
    resp = tc_call(&t, &r);
    CHECK_EQ(resp->status, 0);
    CHECK(resp->metrics->bytes_out > 0);
    Gnctl__ChannelRequest bad = GNCTL__CHANNEL_REQUEST__INIT;
    bad.channel_id = 999;
    r.channel_metrics = &bad;
    CHECK_EQ(tc_call(&t, &r)->status, GN_ENOTFOUND);

    /* unicast, broadcast, channel send: B receives three messages */
    b_drain_events();
    Gnctl__UnicastRequest uc = GNCTL__UNICAST_REQUEST__INIT;
    uc.to = B.pid_str;
    uc.data.data = (uint8_t *)"one";
    uc.data.len = 3;
    r.op_case = GNCTL__REQUEST__OP_UNICAST;
    r.unicast = &uc;
    resp = tc_call(&t, &r);
    CHECK_EQ(resp->status, 0);
    CHECK(resp->send->send_id != 0);
    Gnctl__BroadcastRequest bc = GNCTL__BROADCAST_REQUEST__INIT;
    bc.data.data = (uint8_t *)"two";
    bc.data.len = 3;
    r.op_case = GNCTL__REQUEST__OP_BROADCAST;
    r.broadcast = &bc;
    CHECK_EQ(tc_call(&t, &r)->status, 0);
    Gnctl__ChannelSendRequest cs = GNCTL__CHANNEL_SEND_REQUEST__INIT;
    cs.channel_id = chid;
    cs.data.data = (uint8_t *)"three";
    cs.data.len = 5;
    r.op_case = GNCTL__REQUEST__OP_CHANNEL_SEND;
    r.channel_send = &cs;
    CHECK_EQ(tc_call(&t, &r)->status, 0);
    int want = 3;
    CHECK(run_until(b_got_message, &want, 5000));
    CHECK(gn_node_pending_messages(A.n) == 0);

    /* B sends to A: the subscribed client gets EV_MESSAGE */
    CHECK_OK(gn_node_unicast(B.n, A.pid_str, (const uint8_t *)"hey", 3, NULL));
    for (int i = 0; i < 500 && t.messages == 0; i++) {
        run_until(never, NULL, 10);
    }
    CHECK_EQ(t.messages, 1u);

    /* peer info, ping by channel and by peer */
    Gnctl__PeerInfoRequest pir = GNCTL__PEER_INFO_REQUEST__INIT;
    pir.peer = B.pid_str;
    r.op_case = GNCTL__REQUEST__OP_PEER_INFO;
    r.peer_info = &pir;
    resp = tc_call(&t, &r);
    CHECK_EQ(resp->status, 0);
    CHECK_STR(resp->peer_info->peer, B.pid_str);
    CHECK(resp->peer_info->n_addrs >= 1);
    pir.peer = "not-a-peer";
    CHECK_EQ(tc_call(&t, &r)->status, GN_EPARSE);
    Gnctl__PingRequest pg = GNCTL__PING_REQUEST__INIT;
    pg.channel_id = chid;
    r.op_case = GNCTL__REQUEST__OP_PING;
    r.ping = &pg;
    resp = tc_call(&t, &r);
    CHECK_EQ(resp->status, 0);
    CHECK(resp->ping->rtt_ns > 0);
    pg.channel_id = 0;
    pg.peer = B.pid_str;
    resp = tc_call(&t, &r);
    CHECK_EQ(resp->status, 0);

    /* dht: no kad router here */
    Gnctl__DhtRequest dht = GNCTL__DHT_REQUEST__INIT;
    dht.op = GNCTL__DHT_OP__DHT_GET;
    dht.key.data = (uint8_t *)"/test/k";
    dht.key.len = 7;
    r.op_case = GNCTL__REQUEST__OP_DHT;
    r.dht = &dht;
    resp = tc_call(&t, &r);
    CHECK_EQ(resp->status, GN_ENOTSUP);
    CHECK(strstr(resp->error, "kad") != NULL);

    /* pubsub: not built */
    Gnctl__PubsubRequest ps = GNCTL__PUBSUB_REQUEST__INIT;
    ps.topic = "t";
    r.op_case = GNCTL__REQUEST__OP_PUBSUB;
    r.pubsub = &ps;
    resp = tc_call(&t, &r);
    CHECK_EQ(resp->status, GN_ENOTSUP);
    CHECK(strstr(resp->error, "pubsub") != NULL);

    /* stream handler: B opens /test/h to A; the daemon connects to our listener */
    /* (exercised in stream_handler_test below) */

    /* channel close, then disconnect (nothing left) */
    r.op_case = GNCTL__REQUEST__OP_CHANNEL_CLOSE;
    r.channel_close = &cr;
    CHECK_EQ(tc_call(&t, &r)->status, 0);
    (void)tc_wait_event(&t, GNCTL__EVENT_TYPE__EV_CHANNEL_CLOSED);
    Gnctl__DisconnectRequest dc = GNCTL__DISCONNECT_REQUEST__INIT;
    dc.peer = B.pid_str;
    r.op_case = GNCTL__REQUEST__OP_DISCONNECT;
    r.disconnect = &dc;
    resp = tc_call(&t, &r);
    CHECK(resp->status == 0 || resp->status == GN_ENOTFOUND);
    /* a fresh channel, closed by disconnect */
    r.op_case = GNCTL__REQUEST__OP_DIAL;
    dr.addr = B.addr;
    r.dial = &dr;
    CHECK_EQ(tc_call(&t, &r)->status, 0);
    r.op_case = GNCTL__REQUEST__OP_DISCONNECT;
    r.disconnect = &dc;
    CHECK_EQ(tc_call(&t, &r)->status, 0);

    gn_ipcd_stats st;
    CHECK_OK(gn_ipcd_stats_get(D, &st));
    CHECK_EQ(st.clients_now, 1u);
    CHECK_EQ(st.requests, 29u);
    CHECK_EQ(st.bad_requests, 0u);
    CHECK(st.events_sent >= 3);
    tc_close(&t);
    unserve();
}

/* ---- stream open: the control connection becomes the stream ---- */

static bool raw_has(void *arg)
{
    tcli *t = arg;
    return t->raw_len >= 11;
}

GN_TEST(stream_open_and_two_clients)
{
    serve_a(0);
    tcli t1, t2;
    tc_open(&t1, sock_path);
    tc_open(&t2, sock_path);
    Gnctl__Request r = GNCTL__REQUEST__INIT;
    /* both clients ask at once; the answers go to the right one */
    Gnctl__DialRequest dr = GNCTL__DIAL_REQUEST__INIT;
    dr.addr = B.addr;
    r.op_case = GNCTL__REQUEST__OP_DIAL;
    r.dial = &dr;
    uint64_t i1 = tc_send(&t1, &r);
    Gnctl__IdentifyRequest idr = GNCTL__IDENTIFY_REQUEST__INIT;
    r.op_case = GNCTL__REQUEST__OP_IDENTIFY;
    r.identify = &idr;
    uint64_t i2 = tc_send(&t2, &r);
    Gnctl__Response *a1 = tc_wait(&t1, i1);
    Gnctl__Response *a2 = tc_wait(&t2, i2);
    CHECK_EQ(a1->status, 0);
    CHECK_EQ(a1->result_case, GNCTL__RESPONSE__RESULT_CHANNEL);
    CHECK_EQ(a2->result_case, GNCTL__RESPONSE__RESULT_IDENTIFY);
    uint64_t chid = a1->channel->channel_id;

    /* t1 opens an echo stream on the channel and sends bytes right behind the request */
    Gnctl__StreamOpenRequest so = GNCTL__STREAM_OPEN_REQUEST__INIT;
    so.channel_id = chid;
    so.protocol = "/test/echo/1.0.0";
    r.op_case = GNCTL__REQUEST__OP_STREAM_OPEN;
    r.stream_open = &so;
    t1.expect_raw = true;
    uint64_t sid = tc_send(&t1, &r);
    CHECK_OK(gni_ipc_conn_write(t1.c, (const uint8_t *)"hello ", 6, false));
    Gnctl__Response *sr = tc_wait(&t1, sid);
    CHECK_EQ(sr->status, 0);
    CHECK_STR(sr->stream->protocol, "/test/echo/1.0.0");
    CHECK_STR(sr->stream->peer, B.pid_str);
    CHECK_OK(gni_ipc_conn_write(t1.c, (const uint8_t *)"world", 5, false));
    CHECK(run_until(raw_has, &t1, 5000));
    CHECK_MEM(t1.raw, "hello world", 11);

    /* the other client goes on meanwhile; a stream to a peer ID works too */
    Gnctl__StreamOpenRequest so2 = GNCTL__STREAM_OPEN_REQUEST__INIT;
    so2.peer = B.pid_str;
    so2.protocol = "/test/none/1.0.0"; /* B does not speak it */
    r.op_case = GNCTL__REQUEST__OP_STREAM_OPEN;
    r.stream_open = &so2;
    t2.expect_raw = true;
    Gnctl__Response *f = tc_call(&t2, &r);
    CHECK_EQ(f->status, GN_ENEGOTIATION);
    /* a failed open leaves the connection framed */
    r.op_case = GNCTL__REQUEST__OP_IDENTIFY;
    r.identify = &idr;
    CHECK_EQ(tc_call(&t2, &r)->status, 0);
    so2.protocol = "/test/echo/1.0.0";
    r.op_case = GNCTL__REQUEST__OP_STREAM_OPEN;
    r.stream_open = &so2;
    CHECK_EQ(tc_call(&t2, &r)->status, 0);
    CHECK_OK(gni_ipc_conn_write(t2.c, (const uint8_t *)"second one!", 11, false));
    CHECK(run_until(raw_has, &t2, 5000));
    CHECK_MEM(t2.raw, "second one!", 11);

    gn_ipcd_stats st;
    CHECK_OK(gn_ipcd_stats_get(D, &st));
    CHECK_EQ(st.streams_now, 2u);

    /* t1 half-closes: the echo side closes; t1 reads EOF and the bridge ends */
    gni_ipc_conn_shutdown(t1.c);
    CHECK(run_until(tc_is_ended, &t1, 5000));
    CHECK_EQ(t1.end_err, GN_EEOF);
    tc_close(&t1);

    /* t2 is killed mid-stream (no shutdown, just closed) */
    tc_close(&t2);
    for (int i = 0; i < 500; i++) {
        run_until(never, NULL, 5);
        CHECK_OK(gn_ipcd_stats_get(D, &st));
        if (st.streams_now == 0 && b_stream_ends == 2) {
            break;
        }
    }
    CHECK_EQ(st.streams_now, 0u);
    CHECK_EQ(b_stream_ends, 2);
    CHECK_EQ(st.clients_now, 0u);

    /* the daemon still serves */
    tcli t3;
    tc_open(&t3, sock_path);
    r.op_case = GNCTL__REQUEST__OP_IDENTIFY;
    r.identify = &idr;
    CHECK_EQ(tc_call(&t3, &r)->status, 0);
    tc_close(&t3);
    unserve();
}

/* ---- stream handler: the daemon connects to the client per inbound stream ---- */

typedef struct hsrv {
    gni_ipc_conn *c;
    Gnctl__StreamInfo *info;
    bool got_info, closed;
    size_t echoed;
} hsrv;

static void hs_on_msg(gni_ipc_conn *c, const uint8_t *msg, size_t len, void *ud)
{
    hsrv *h = ud;
    CHECK_OK(gni_ctl_stream_info_decode(msg, len, &h->info, NULL, 0));
    h->got_info = true;
    gni_ipc_conn_set_raw(c);
}

static void hs_on_data(gni_ipc_conn *c, const uint8_t *d, size_t len, void *ud)
{
    hsrv *h = ud;
    h->echoed += len;
    CHECK_OK(gni_ipc_conn_write(c, d, len, false)); /* echo */
}

static void hs_on_end(gni_ipc_conn *c, int err, void *ud)
{
    (void)err, (void)ud;
    gni_ipc_conn_close(c, true);
}

static void hs_on_close(gni_ipc_conn *c, void *ud)
{
    (void)c;
    ((hsrv *)ud)->closed = true;
}

static void hs_accept(gni_ipc_listener *l, gni_ipc_conn *c, void *ud)
{
    (void)l;
    static const gni_ipc_conn_cbs cbs = {.on_msg = hs_on_msg, .on_data = hs_on_data,
                                         .on_end = hs_on_end, .on_close = hs_on_close};
    hsrv *h = ud;
    h->c = c;
    gni_ipc_conn_set_cbs(c, &cbs, h);
    CHECK_OK(gni_ipc_conn_read_start(c));
}

typedef struct bopen {
    int status;
    bool done, eof;
    gn_stream *s;
    uint8_t got[64];
    size_t got_len;
} bopen;

static void bo_data(gn_stream *s, void *ud, const uint8_t *d, size_t len)
{
    bopen *b = ud;
    (void)s;
    if (b->got_len + len <= sizeof b->got) {
        memcpy(b->got + b->got_len, d, len);
        b->got_len += len;
    }
}

static void bo_eof(gn_stream *s, void *ud)
{
    (void)s;
    ((bopen *)ud)->eof = true;
}

static const gn_stream_handler bo_h = {.on_data = bo_data, .on_eof = bo_eof};

static void bo_opened(void *arg, int status, gn_stream *s)
{
    bopen *b = arg;
    b->status = status;
    b->done = true;
    b->s = s;
    if (s) {
        gn_stream_set_handler(s, &bo_h, b);
        gn_stream_read_start(s);
    }
}

static bool bo_done(void *arg) { return ((bopen *)arg)->done; }
static bool bo_has(void *arg) { return ((bopen *)arg)->got_len >= 4; }
static bool bo_eof_p(void *arg) { return ((bopen *)arg)->eof; }
static bool hs_closed(void *arg) { return ((hsrv *)arg)->closed; }

GN_TEST(stream_handler)
{
    serve_a(0);
    char hpath[160];
    snprintf(hpath, sizeof hpath, "%s/h.sock", tmpdir);
    hsrv h = {0};
    gni_ipc_listener *hl = NULL;
    CHECK_OK(gni_ipc_listen(gn_loop_uv(loop), hpath, NULL, hs_accept, &h, &hl, NULL, 0));
    tcli t;
    tc_open(&t, sock_path);
    Gnctl__Request r = GNCTL__REQUEST__INIT;
    char *protos[] = {"/test/h/1.0.0"};
    Gnctl__StreamHandlerRequest sh = GNCTL__STREAM_HANDLER_REQUEST__INIT;
    sh.protocols = protos;
    sh.n_protocols = 1;
    sh.path = hpath;
    r.op_case = GNCTL__REQUEST__OP_STREAM_HANDLER;
    r.stream_handler = &sh;
    CHECK_EQ(tc_call(&t, &r)->status, 0);
    CHECK_EQ(tc_call(&t, &r)->status, GN_EEXIST); /* twice */
    char *builtin[] = {"/ipfs/ping/1.0.0"};
    sh.protocols = builtin;
    Gnctl__Response *rr = tc_call(&t, &r);
    CHECK_EQ(rr->status, GN_EEXIST); /* the node serves it itself */
    sh.protocols = protos;
    sh.path = "/ip4/10.0.0.1/tcp/9";
    CHECK_EQ(tc_call(&t, &r)->status, GN_EACCES); /* not loopback */

    /* B opens /test/h/1.0.0 to A */
    gn_channel *ch = NULL;
    CHECK_EQ(dial_wait_ch(&B, A.addr, &ch), 0);
    bopen b = {0};
    CHECK_OK(gn_channel_open_stream(ch, "/test/h/1.0.0", bo_opened, &b));
    CHECK(run_until(bo_done, &b, 5000));
    CHECK_EQ(b.status, 0);
    gn_slice sl = {.base = (uint8_t *)"ping", .len = 4};
    CHECK_OK(gn_stream_write(b.s, &sl, 1, NULL, NULL));
    CHECK(run_until(bo_has, &b, 5000));
    CHECK_MEM(b.got, "ping", 4);
    CHECK(h.got_info);
    CHECK_STR(h.info->protocol, "/test/h/1.0.0");
    CHECK_STR(h.info->peer, B.pid_str);
    CHECK(h.info->channel_id != 0);
    /* B ends its side: the handler connection reads EOF and closes; B reads EOF */
    CHECK_OK(gn_stream_shutdown(b.s));
    CHECK(run_until(hs_closed, &h, 5000));
    CHECK(run_until(bo_eof_p, &b, 5000));
    gn_stream_close(b.s, NULL, NULL);

    /* unhandle; a second open is refused by negotiation */
    Gnctl__StreamUnhandleRequest su = GNCTL__STREAM_UNHANDLE_REQUEST__INIT;
    su.protocols = protos;
    su.n_protocols = 1;
    r.op_case = GNCTL__REQUEST__OP_STREAM_UNHANDLE;
    r.stream_unhandle = &su;
    CHECK_EQ(tc_call(&t, &r)->status, 0);
    CHECK_EQ(tc_call(&t, &r)->status, GN_ENOTFOUND);
    bopen b2 = {0};
    CHECK_OK(gn_channel_open_stream(ch, "/test/h/1.0.0", bo_opened, &b2));
    CHECK(run_until(bo_done, &b2, 5000));
    CHECK(b2.status < 0);

    /* a handler ends with its client's connection */
    sh.path = hpath;
    r.op_case = GNCTL__REQUEST__OP_STREAM_HANDLER;
    r.stream_handler = &sh;
    CHECK_EQ(tc_call(&t, &r)->status, 0);
    tc_close(&t);
    run_until(never, NULL, 50);
    bopen b3 = {0};
    CHECK_OK(gn_channel_open_stream(ch, "/test/h/1.0.0", bo_opened, &b3));
    CHECK(run_until(bo_done, &b3, 5000));
    CHECK(b3.status < 0);

    gn_channel_rele(ch);
    gni_ctl_stream_info_free(h.info);
    bool lclosed = false;
    gni_ipc_listener_close(hl, NULL, NULL);
    (void)lclosed;
    unserve();
}

/* ---- a client that stops reading its events is disconnected ---- */

GN_TEST(slow_client_disconnected)
{
    serve_a(64 * 1024);
    tcli slow, fast;
    tc_open(&slow, sock_path);
    tc_open(&fast, sock_path);
    Gnctl__Request r = GNCTL__REQUEST__INIT;
    Gnctl__SubscribeRequest sub = GNCTL__SUBSCRIBE_REQUEST__INIT;
    sub.mask = (uint64_t)1 << GNCTL__EVENT_TYPE__EV_MESSAGE;
    r.op_case = GNCTL__REQUEST__OP_SUBSCRIBE;
    r.subscribe = &sub;
    CHECK_EQ(tc_call(&slow, &r)->status, 0);
    CHECK_EQ(tc_call(&fast, &r)->status, 0);
    gni_ipc_conn_read_stop(slow.c); /* stops reading */
    CHECK_EQ(dial_wait(&B, A.addr), 0);
    static uint8_t msg[16 * 1024];
    size_t sent = 0;
    gn_ipcd_stats st = {0};
    /* B sends until the daemon gives up on the slow client (bounded) */
    for (int i = 0; i < 2000 && st.clients_slow == 0; i++) {
        int rc = gn_node_unicast(B.n, A.pid_str, msg, sizeof msg, NULL);
        if (rc == 0) {
            sent++;
        }
        run_until(never, NULL, 2);
        b_drain_events();
        CHECK_OK(gn_ipcd_stats_get(D, &st));
    }
    CHECK_EQ(st.clients_slow, 1u);
    /* the fast client got every message B sent */
    for (int i = 0; i < 1000 && fast.messages < sent; i++) {
        run_until(never, NULL, 5);
    }
    CHECK_EQ(fast.messages, sent);
    /* the slow one finds the reason at the end of what it did not read */
    CHECK_OK(gni_ipc_conn_read_start(slow.c));
    CHECK(run_until(tc_is_ended, &slow, 10000));
    Gnctl__Event *ev = tc_wait_event(&slow, GNCTL__EVENT_TYPE__EV_DISCONNECTING);
    CHECK_EQ(ev->status, GN_ELIMIT);
    CHECK(strstr(ev->reason, "does not read") != NULL);
    CHECK(slow.messages <= sent);
    /* what B sends now reaches the fast client only */
    for (int i = 0; i < 5; i++) {
        CHECK_OK(gn_node_unicast(B.n, A.pid_str, msg, 10, NULL));
    }
    for (int i = 0; i < 1000 && fast.messages < sent + 5; i++) {
        run_until(never, NULL, 5);
    }
    CHECK_EQ(fast.messages, sent + 5);
    CHECK(slow.messages <= sent);
    tc_close(&slow);
    CHECK_OK(gn_ipcd_stats_get(D, &st));
    CHECK_EQ(st.clients_now, 1u);
    tc_close(&fast);
    unserve();
}

/* ---- bad input ---- */

GN_TEST(bad_frames)
{
    serve_a(0);
    tcli t;
    tc_open(&t, sock_path);
    /* undecodable protobuf in a good frame: an error reply, the connection stays */
    static const uint8_t junk[] = {0x04, 0x08, 0x07, 0x52, 0x7f};
    CHECK_OK(gni_ipc_conn_write(t.c, junk, sizeof junk, false));
    Gnctl__Response *r = tc_wait(&t, 7);
    CHECK_EQ(r->status, GN_EPARSE);
    CHECK(strstr(r->error, "bad request") != NULL);
    /* an op from the future */
    static const uint8_t fut[] = {0x05, 0x08, 0x08, 0x9a, 0x06, 0x00};
    CHECK_OK(gni_ipc_conn_write(t.c, fut, sizeof fut, false));
    CHECK_EQ(tc_wait(&t, 8)->status, GN_ENOTSUP);
    /* a too long string */
    Gnctl__Request req = GNCTL__REQUEST__INIT;
    Gnctl__DialRequest dr = GNCTL__DIAL_REQUEST__INIT;
    char longs[GN_CTL_STRING_MAX + 2];
    memset(longs, 'a', sizeof longs - 1);
    longs[sizeof longs - 1] = '\0';
    dr.addr = longs;
    req.id = 9;
    req.op_case = GNCTL__REQUEST__OP_DIAL;
    req.dial = &dr;
    size_t n = protobuf_c_message_get_packed_size(&req.base);
    uint8_t *buf = malloc(n + 10);
    size_t pl = gni_lp_prefix(buf, n);
    protobuf_c_message_pack(&req.base, buf + pl);
    CHECK_OK(gni_ipc_conn_write(t.c, buf, pl + n, false));
    free(buf);
    CHECK_EQ(tc_wait(&t, 9)->status, GN_ETOOBIG);
    /* still served */
    Gnctl__IdentifyRequest idr = GNCTL__IDENTIFY_REQUEST__INIT;
    req.op_case = GNCTL__REQUEST__OP_IDENTIFY;
    req.identify = &idr;
    CHECK_EQ(tc_call(&t, &req)->status, 0);
    /* a frame length past the bound: an error reply, then the connection closes */
    static const uint8_t huge[] = {0x81, 0x80, 0x80, 0x02};
    CHECK_OK(gni_ipc_conn_write(t.c, huge, sizeof huge, false));
    CHECK(run_until(tc_is_ended, &t, 5000));
    Gnctl__Response *last = tc_wait(&t, 0);
    CHECK_EQ(last->status, GN_EFRAMESIZE);
    tc_close(&t);
    /* a bad varint: closed too */
    tc_open(&t, sock_path);
    static const uint8_t badv[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    CHECK_OK(gni_ipc_conn_write(t.c, badv, sizeof badv, false));
    CHECK(run_until(tc_is_ended, &t, 5000));
    CHECK_EQ(tc_wait(&t, 0)->status, GN_EBADFRAME);
    tc_close(&t);
    gn_ipcd_stats st;
    CHECK_OK(gn_ipcd_stats_get(D, &st));
    CHECK_EQ(st.framing_lost, 2u);
    CHECK_EQ(st.bad_requests, 3u);
    unserve();
}

/* ---- config refusals, a live socket, a graceful close with a client ---- */

GN_TEST(config_and_close)
{
    serve_a(0);
    gn_ipcd_config cfg;
    gn_ipcd_config_default(&cfg);
    gn_ipcd *d2 = NULL;
    char err[256];
    cfg.address = sock_path; /* D is live there */
    CHECK_EQ(gn_ipcd_new(A.n, &cfg, &d2, err, sizeof err), GN_EADDRINUSE);
    cfg.address = "/ip4/192.0.2.1/tcp/7000";
    CHECK_EQ(gn_ipcd_new(A.n, &cfg, &d2, err, sizeof err), GN_EACCES);
    CHECK(strstr(err, "loopback") != NULL);
    cfg.address = NULL;
    CHECK_EQ(gn_ipcd_new(A.n, &cfg, &d2, err, sizeof err), GN_EINVAL);
    cfg.address = "/ip4/127.0.0.1/tcp/0";
    cfg.client_queue_max = 10;
    CHECK_EQ(gn_ipcd_new(A.n, &cfg, &d2, err, sizeof err), GN_EINVAL);
    /* a TCP control address on loopback works */
    cfg.client_queue_max = 1u << 20;
    CHECK_OK(gn_ipcd_new(B.n, &cfg, &d2, err, sizeof err));
    const char *ta = gn_ipcd_address(d2, 0);
    CHECK(strncmp(ta, "/ip4/127.0.0.1/tcp/", 19) == 0);
    char taddr[64];
    snprintf(taddr, sizeof taddr, "%s", ta);
    tcli t;
    tc_open(&t, taddr);
    Gnctl__Request r = GNCTL__REQUEST__INIT;
    /* an error text echoing 1019 bytes of input is cut to whole characters:
     * the client gets its answer and the connection stays */
    static char name[1020];
    name[0] = 'x';
    for (size_t i = 1; i + 2 <= sizeof name - 1; i += 2) {
        memcpy(name + i, "\xc3\xa9", 2); /* é */
    }
    name[sizeof name - 1] = '\0';
    Gnctl__ConfigureRequest cq = GNCTL__CONFIGURE_REQUEST__INIT;
    cq.name = name;
    cq.value = "1";
    r.op_case = GNCTL__REQUEST__OP_CONFIGURE;
    r.configure = &cq;
    Gnctl__Response *cresp = tc_call(&t, &r);
    CHECK_EQ(cresp->status, GN_ENOTSUP);
    CHECK(strlen(cresp->error) <= GN_CTL_STRING_MAX);
    CHECK(strlen(cresp->error) > 900);
    /* configure: a number past 2^64 is refused, not clamped */
    cq.name = "max_connections";
    cq.value = "99999999999999999999999";
    cresp = tc_call(&t, &r);
    CHECK_EQ(cresp->status, GN_EINVAL);
    CHECK(strstr(cresp->error, "99999999999999999999999") != NULL);
    CHECK(strstr(cresp->error, "range") != NULL);
    Gnctl__IdentifyRequest idr = GNCTL__IDENTIFY_REQUEST__INIT;
    r.op_case = GNCTL__REQUEST__OP_IDENTIFY;
    r.identify = &idr;
    Gnctl__Response *resp = tc_call(&t, &r);
    CHECK_STR(resp->identify->peer, B.pid_str);
    /* closing with the client connected: its connection ends */
    closed_cb_runs = 0;
    gn_ipcd_close(d2, GN_S, ipcd_closed, NULL);
    gn_ipcd_close(d2, GN_S, ipcd_closed, NULL); /* idempotent */
    CHECK(run_until(ipcd_is_closed, NULL, 5000));
    CHECK_EQ(closed_cb_runs, 1);
    CHECK(run_until(tc_is_ended, &t, 5000));
    tc_close(&t);
    unserve();
}

/* ---- DHT requests on a node with the kad router ---- */

static int dht_accept(void *arg, gn_slice key, gn_slice value)
{
    (void)arg, (void)key, (void)value;
    return 0;
}

static size_t dht_first(void *arg, gn_slice key, const gn_slice *values, size_t n)
{
    (void)arg, (void)key, (void)values, (void)n;
    return 0;
}

static const gn_router_validator test_ns = {"test", dht_accept, dht_first, NULL};

static void dht_set(void *arg, const gn_node_dht_result *res)
{
    *(int *)arg = res->status + 1000;
}

static bool dht_set_done(void *arg) { return *(int *)arg != 0; }

GN_TEST(dht_ops_with_kad)
{
    mk_tmpdir();
    setup();
    const char *aopts[] = {"kad.mode=server", "kad.request_timeout_ms=3000"};
    nopts oa = {.listen = true, .routers = "kad", .discovery = "", .options = aopts,
                .n_options = 2};
    node_up(&A, 11, &oa);
    char boot[GN_NODE_ADDR_MAX + 32];
    snprintf(boot, sizeof boot, "kad.bootstrap=%s", A.addr);
    const char *bopts[] = {"kad.mode=server", "kad.request_timeout_ms=3000", boot};
    nopts ob = {.listen = true, .routers = "kad", .discovery = "", .options = bopts,
                .n_options = 3};
    node_up(&B, 12, &ob);
    tnode *both[] = {&A, &B};
    for (int i = 0; i < 2; i++) {
        int st = 0;
        CHECK_OK(gn_node_dht_set_validator(both[i]->n, &test_ns, dht_set, &st));
        CHECK(run_until(dht_set_done, &st, 2000));
        CHECK_EQ(st, 1000);
    }
    run_until(never, NULL, 300); /* B bootstraps from A; A learns B back */
    gn_ipcd_config cfg;
    gn_ipcd_config_default(&cfg);
    cfg.address = sock_path;
    CHECK_OK(gn_ipcd_new(A.n, &cfg, &D, NULL, 0));
    tcli t;
    tc_open(&t, sock_path);
    Gnctl__Request r = GNCTL__REQUEST__INIT;
    Gnctl__HelloRequest hello = GNCTL__HELLO_REQUEST__INIT;
    r.op_case = GNCTL__REQUEST__OP_HELLO;
    r.hello = &hello;
    Gnctl__Response *resp = tc_call(&t, &r);
    CHECK_EQ(resp->hello->n_features, 1u);
    CHECK_STR(resp->hello->features[0], "dht");

    Gnctl__DhtRequest q = GNCTL__DHT_REQUEST__INIT;
    r.op_case = GNCTL__REQUEST__OP_DHT;
    r.dht = &q;
    q.op = GNCTL__DHT_OP__DHT_PUT;
    q.key.data = (uint8_t *)"/test/k";
    q.key.len = 7;
    q.value.data = (uint8_t *)"value";
    q.value.len = 5;
    resp = tc_call(&t, &r);
    CHECK_EQ(resp->status, 0);
    q.op = GNCTL__DHT_OP__DHT_GET;
    q.value.len = 0;
    resp = tc_call(&t, &r);
    CHECK_EQ(resp->status, 0);
    CHECK_EQ(resp->dht->value.len, 5u);
    CHECK_MEM(resp->dht->value.data, "value", 5);
    q.op = GNCTL__DHT_OP__DHT_FIND_PEER;
    q.peer = B.pid_str;
    resp = tc_call(&t, &r);
    CHECK_EQ(resp->status, 0);
    CHECK_EQ(resp->dht->n_peers, 1u);
    CHECK_STR(resp->dht->peers[0]->peer, B.pid_str);
    CHECK(resp->dht->peers[0]->n_addrs >= 1);
    q.peer = "garbage";
    CHECK_EQ(tc_call(&t, &r)->status, GN_EPARSE);
    q.op = GNCTL__DHT_OP__DHT_CLOSEST_PEERS;
    resp = tc_call(&t, &r);
    CHECK_EQ(resp->status, 0);
    CHECK(resp->dht->n_peers >= 1);
    /* a sha2-256 multihash as the provider key */
    uint8_t mh[34] = {0x12, 0x20};
    memset(mh + 2, 0xab, 32);
    q.key.data = mh;
    q.key.len = sizeof mh;
    q.op = GNCTL__DHT_OP__DHT_PROVIDE;
    CHECK_EQ(tc_call(&t, &r)->status, 0);
    q.op = GNCTL__DHT_OP__DHT_FIND_PROVIDERS;
    q.count = 5;
    resp = tc_call(&t, &r);
    CHECK_EQ(resp->status, 0);
    q.op = GNCTL__DHT_OP__DHT_GET;
    q.key.len = 0;
    CHECK_EQ(tc_call(&t, &r)->status, GN_EINVAL); /* a key is needed */
    tc_close(&t);
    unserve();
}

/* ---- a client's running requests are capped: reading pauses at the cap ---- */

typedef struct ops_watch {
    tcli *t;
    uint64_t first, n;
    uint64_t max_now;
} ops_watch;

static bool all_answered(void *arg)
{
    ops_watch *w = arg;
    gn_ipcd_stats st;
    CHECK_OK(gn_ipcd_stats_get(D, &st));
    w->max_now = GNI_MAX(w->max_now, st.ops_now);
    size_t got = 0;
    for (size_t i = 0; i < w->t->nmsgs; i++) {
        Gnctl__ServerMessage *m = w->t->msgs[i];
        if (m->msg_case == GNCTL__SERVER_MESSAGE__MSG_RESPONSE && m->response->id >= w->first &&
            m->response->id < w->first + w->n) {
            got++;
        }
    }
    return got == w->n;
}

GN_TEST(ops_capped_per_client)
{
    serve_a(0);
    tcli t;
    tc_open(&t, sock_path);
    Gnctl__Request r = GNCTL__REQUEST__INIT;
    Gnctl__DialRequest dr = GNCTL__DIAL_REQUEST__INIT;
    dr.addr = B.addr;
    r.op_case = GNCTL__REQUEST__OP_DIAL;
    r.dial = &dr;
    Gnctl__Response *resp = tc_call(&t, &r);
    CHECK_EQ(resp->status, 0);
    uint64_t ch = resp->channel->channel_id;
    tc_free_msgs(&t);
    Gnctl__PingRequest pq = GNCTL__PING_REQUEST__INIT;
    pq.channel_id = ch;
    r.op_case = GNCTL__REQUEST__OP_PING;
    r.ping = &pq;
    enum { N = 3 * GN_IPCD_CLIENT_OPS_MAX };
    ops_watch w = {.t = &t, .first = t.next_id, .n = N};
    for (int i = 0; i < N; i++) {
        (void)tc_send(&t, &r); /* pipelined, all in one burst */
    }
    CHECK(run_until(all_answered, &w, 20000));
    gn_ipcd_stats st;
    CHECK_OK(gn_ipcd_stats_get(D, &st));
    CHECK(st.clients_ops_paused >= 1);
    CHECK(w.max_now <= GN_IPCD_CLIENT_OPS_MAX);
    CHECK_EQ(st.ops_now, 0u);
    tc_close(&t);
    unserve();
}

/* ---- a connection that becomes a stream drops its (non-keep) handlers ---- */

GN_TEST(stream_open_drops_handlers)
{
    serve_a(0);
    tcli t1, t2;
    tc_open(&t1, sock_path);
    tc_open(&t2, sock_path);
    char hpath[160];
    snprintf(hpath, sizeof hpath, "%s/h.sock", tmpdir);
    Gnctl__Request r = GNCTL__REQUEST__INIT;
    char *protos[] = {"/test/mine/1.0.0"};
    Gnctl__StreamHandlerRequest sh = GNCTL__STREAM_HANDLER_REQUEST__INIT;
    sh.protocols = protos;
    sh.n_protocols = 1;
    sh.path = hpath;
    r.op_case = GNCTL__REQUEST__OP_STREAM_HANDLER;
    r.stream_handler = &sh;
    CHECK_EQ(tc_call(&t1, &r)->status, 0);
    CHECK_EQ(tc_call(&t2, &r)->status, GN_EEXIST);
    /* t1's connection becomes a stream */
    Gnctl__StreamOpenRequest so = GNCTL__STREAM_OPEN_REQUEST__INIT;
    so.peer = B.addr;
    so.protocol = "/test/echo/1.0.0";
    r.op_case = GNCTL__REQUEST__OP_STREAM_OPEN;
    r.stream_open = &so;
    t1.expect_raw = true;
    CHECK_EQ(tc_call(&t1, &r)->status, 0);
    /* its handler is gone with its control use */
    r.op_case = GNCTL__REQUEST__OP_STREAM_HANDLER;
    r.stream_handler = &sh;
    CHECK_EQ(tc_call(&t2, &r)->status, 0);
    tc_close(&t1);
    tc_close(&t2);
    unserve();
}

/* ---- a graceful close waits (bounded) while a channel is still connecting ---- */

GN_TEST(close_waits_for_connecting_channel)
{
    serve_a(0);
    /* a TCP listener that never answers the security handshake: the
     * unicast's channel stays upgrading */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK_EQ(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    CHECK_EQ(listen(fd, 8), 0);
    socklen_t sl = sizeof sa;
    CHECK_EQ(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    char to[64];
    snprintf(to, sizeof to, "/ip4/127.0.0.1/tcp/%u", (unsigned)ntohs(sa.sin_port));
    tcli t;
    tc_open(&t, sock_path);
    Gnctl__Request r = GNCTL__REQUEST__INIT;
    static uint8_t payload[64] = {1, 2, 3};
    Gnctl__UnicastRequest uc = GNCTL__UNICAST_REQUEST__INIT;
    uc.to = to; /* no channel yet: the node dials first */
    uc.data.data = payload;
    uc.data.len = sizeof payload;
    r.op_case = GNCTL__REQUEST__OP_UNICAST;
    r.unicast = &uc;
    CHECK_EQ(tc_call(&t, &r)->status, 0);
    closed_cb_runs = 0;
    gn_time t0 = gn_loop_now(loop);
    gn_ipcd_close(D, 400 * GN_MS, ipcd_closed, NULL);
    CHECK(run_until(ipcd_is_closed, NULL, 10000));
    D = NULL;
    gn_time took = gn_loop_now(loop) - t0;
    CHECK(took >= 350 * GN_MS); /* waited for the channel, until the drain deadline */
    CHECK(took < 5 * GN_S);
    close(fd);
    tc_close(&t);
    b_drain_events();
    node_down(&A);
    node_down(&B);
    finish();
    rm_tmpdir();
}

/* ---- an event past the frame bound becomes an EV_LOST notice ---- */

static bool got_one_message(void *arg) { return ((tcli *)arg)->messages > 0; }

GN_TEST(oversized_event_reported_lost)
{
    serve_a(8u * 1024u * 1024u);
    enum { BIG = 5 * 1024 * 1024 };
    CHECK_OK(gn_node_configure(A.n, GN_NODE_OPT_MAX_MESSAGE_LEN, 2 * BIG));
    CHECK_OK(gn_node_configure(B.n, GN_NODE_OPT_MAX_MESSAGE_LEN, 2 * BIG));
    tcli t;
    tc_open(&t, sock_path);
    Gnctl__Request r = GNCTL__REQUEST__INIT;
    Gnctl__SubscribeRequest sub = GNCTL__SUBSCRIBE_REQUEST__INIT;
    sub.mask = (uint64_t)1 << GNCTL__EVENT_TYPE__EV_MESSAGE;
    r.op_case = GNCTL__REQUEST__OP_SUBSCRIBE;
    r.subscribe = &sub;
    CHECK_EQ(tc_call(&t, &r)->status, 0);
    CHECK_EQ(dial_wait(&B, A.addr), 0);
    uint8_t *big = calloc(1, BIG);
    CHECK(big != NULL);
    CHECK_OK(gn_node_unicast(B.n, A.pid_str, big, BIG, NULL));
    CHECK_OK(gn_node_unicast(B.n, A.pid_str, (const uint8_t *)"small", 5, NULL));
    free(big);
    Gnctl__Event *ev = tc_wait_event(&t, GNCTL__EVENT_TYPE__EV_LOST);
    CHECK_EQ(ev->status, GN_ETOOBIG);
    CHECK_EQ(ev->count, 1u);
    CHECK_STR(ev->peer, B.pid_str);
    CHECK(strstr(ev->reason, "type 7") != NULL);
    /* the connection goes on: the small message arrives */
    CHECK(run_until(got_one_message, &t, 10000));
    CHECK_EQ(t.messages, 1u);
    gn_ipcd_stats st;
    CHECK_OK(gn_ipcd_stats_get(D, &st));
    CHECK_EQ(st.events_lost, 1u);
    tc_close(&t);
    unserve();
}

/* ---- a graceful close: every acknowledged message reaches the peer ---- */

GN_TEST(close_delivers_acknowledged_messages)
{
    serve_a(0);
    tcli t;
    tc_open(&t, sock_path);
    Gnctl__Request r = GNCTL__REQUEST__INIT;
    Gnctl__DialRequest dr = GNCTL__DIAL_REQUEST__INIT;
    dr.addr = B.addr;
    r.op_case = GNCTL__REQUEST__OP_DIAL;
    r.dial = &dr;
    CHECK_EQ(tc_call(&t, &r)->status, 0);
    b_drain_events();
    static uint8_t payload[8192];
    Gnctl__UnicastRequest uc = GNCTL__UNICAST_REQUEST__INIT;
    uc.to = B.pid_str;
    uc.data.data = payload;
    uc.data.len = sizeof payload;
    r.op_case = GNCTL__REQUEST__OP_UNICAST;
    r.unicast = &uc;
    enum { N = 300 };
    uint64_t first = 0;
    for (int i = 0; i < N; i++) {
        uint64_t id = tc_send(&t, &r); /* pipelined */
        first = first ? first : id;
    }
    (void)tc_wait(&t, first);
    /* close the server while messages are still queued in the node; the
     * client reads every response written before its connection ends */
    closed_cb_runs = 0;
    gn_ipcd_close(D, 5 * GN_S, ipcd_closed, NULL);
    CHECK(run_until(ipcd_is_closed, NULL, 10000));
    D = NULL;
    CHECK(run_until(tc_is_ended, &t, 10000));
    int acked = 0;
    for (size_t i = 0; i < t.nmsgs; i++) {
        Gnctl__ServerMessage *m = t.msgs[i];
        if (m->msg_case == GNCTL__SERVER_MESSAGE__MSG_RESPONSE && m->response->status == 0 &&
            m->response->result_case == GNCTL__RESPONSE__RESULT_SEND) {
            acked++;
        }
    }
    CHECK(acked > 0);
    /* the node closes right after the server's callback */
    CHECK_EQ(gn_node_pending_messages(A.n), 0u);
    gn_node_close(A.n, on_closed, &A);
    CHECK(run_until(closed, &A, 10000));
    int failed = 0;
    gn_node_event ev;
    while (gn_node_next_event(A.n, &ev, 0) == 0) {
        if (ev.type == GN_NODE_EV_SEND_FAILED) {
            failed += (int)(ev.count ? ev.count : 1);
        }
        gn_rcbuf_rele(ev.message);
    }
    int want = acked - failed;
    CHECK_EQ(failed, 0);
    CHECK(run_until(b_got_message, &want, 10000));
    tc_close(&t);
    node_down(&A);
    node_down(&B);
    finish();
    rm_tmpdir();
}

GN_TEST_MAIN(GN_T(every_op), GN_T(stream_open_and_two_clients), GN_T(stream_handler),
             GN_T(slow_client_disconnected), GN_T(bad_frames), GN_T(config_and_close),
             GN_T(dht_ops_with_kad), GN_T(close_delivers_acknowledged_messages),
             GN_T(ops_capped_per_client), GN_T(stream_open_drops_handlers),
             GN_T(close_waits_for_connecting_channel), GN_T(oversized_event_reported_lost))
