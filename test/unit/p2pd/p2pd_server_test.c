/*
 * golemnet-p2pd's server (ipc/p2pd/p2pd_uv.c) on a real loop with two
 * nodes on TCP loopback: a stream pipe holds backpressure (a peer that does
 * not read stops the client's bytes at a bound instead of the daemon
 * buffering them), a client killed mid-stream ends the stream, the
 * connection bound refuses with an ERROR, a request timeout is named, the
 * server closes with an operation pending, a stream handler's connection
 * carries a bare StreamInfo then the peer's bytes, and a handler address
 * off the machine is refused. Review fixes: a peer's idle streams fill the
 * handler cap and never the control connections' room, a client that sends
 * no complete request is closed after the read timeout, one that does not
 * read its answers is no longer read, a request gets one answer (the tag
 * limit's ERROR alone), PEERSTORE answers an unknown peer with an empty
 * response, a Unix handler address is refused over TCP.
 */
#include "gn_test.h"
#include "gn_tnode.h"

#include "gni_ipc.h"
#include "p2pd.h"
#include "p2pd.pb-c.h"
#include "p2pd_uv.h"

#include "golemnet/err.h"
#include "golemnet/log.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SINK_PROTO "/t/sink/1.0.0"
#define ECHO_PROTO "/t/echo/1.0.0"
#define HANDLED_PROTO "/t/handled/1.0.0"

static char tmpdir[64];
static char ctl[128];

/* ---- a control client on the test's loop ---- */

typedef struct cli {
    gni_ipc_conn *c;
    bool connected, failed, ended, closed;
    bool stop_after_msg; /* pause reading after the first message (raw bytes follow) */
    int end_err;
    uint8_t *msg[8];
    size_t mlen[8];
    size_t nmsg;
    size_t total; /* messages received, kept or not */
    uint8_t *raw;
    size_t raw_len, raw_cap;
} cli;

static void cli_on_msg(gni_ipc_conn *c, const uint8_t *m, size_t len, void *ud)
{
    (void)c;
    cli *k = ud;
    k->total++;
    if (k->nmsg < 8) {
        k->msg[k->nmsg] = malloc(len + 1);
        memcpy(k->msg[k->nmsg], m, len);
        k->mlen[k->nmsg++] = len;
    }
    if (k->stop_after_msg) {
        gni_ipc_conn_read_stop(c);
    }
}

static void cli_on_data(gni_ipc_conn *c, const uint8_t *d, size_t len, void *ud)
{
    (void)c;
    cli *k = ud;
    if (k->raw_len + len > k->raw_cap) {
        k->raw_cap = (k->raw_len + len) * 2;
        k->raw = realloc(k->raw, k->raw_cap);
    }
    memcpy(k->raw + k->raw_len, d, len);
    k->raw_len += len;
}

static void cli_on_end(gni_ipc_conn *c, int err, void *ud)
{
    (void)c;
    cli *k = ud;
    k->ended = true;
    k->end_err = err;
}

static void cli_on_close(gni_ipc_conn *c, void *ud)
{
    (void)c;
    cli *k = ud;
    k->closed = true;
    k->c = NULL;
}

static const gni_ipc_conn_cbs cli_cbs = {cli_on_msg, cli_on_data, cli_on_end, NULL, cli_on_close};

static void cli_connected(gni_ipc_conn *c, int err, void *ud)
{
    cli *k = ud;
    if (err < 0) {
        k->failed = true;
        return;
    }
    k->c = c;
    k->connected = true;
    gni_ipc_conn_set_cbs(c, &cli_cbs, k);
    gni_ipc_conn_read_start(c);
}

static bool cli_ready(void *arg) { return ((cli *)arg)->connected || ((cli *)arg)->failed; }
static bool cli_has_msg(void *arg) { return ((cli *)arg)->nmsg > 0 || ((cli *)arg)->ended; }
static bool cli_ended(void *arg) { return ((cli *)arg)->ended; }
static bool cli_closed(void *arg) { return ((cli *)arg)->closed; }

static void cli_open(cli *k)
{
    memset(k, 0, sizeof *k);
    char err[128];
    CHECK_EQ(gni_ipc_connect(gn_loop_uv(loop), ctl, cli_connected, k, err, sizeof err), 0);
    CHECK(run_until(cli_ready, k, 5000));
    CHECK(k->connected);
}

static void cli_free(cli *k)
{
    if (k->c) {
        gni_ipc_conn_close(k->c, false);
        CHECK(run_until(cli_closed, k, 5000));
    }
    for (size_t i = 0; i < k->nmsg; i++) {
        free(k->msg[i]);
    }
    free(k->raw);
    memset(k, 0, sizeof *k);
}

static void cli_send(cli *k, const Gnp2pd__Request *rq)
{
    uint8_t buf[4096];
    size_t n = gnp2pd__request__pack(rq, buf);
    CHECK_EQ(gni_ipc_conn_write(k->c, buf, n, true), 0);
}

/* Waits for the next Response; the caller frees it. */
static Gnp2pd__Response *cli_response(cli *k)
{
    CHECK(run_until(cli_has_msg, k, 15000));
    CHECK(k->nmsg > 0);
    Gnp2pd__Response *r = gnp2pd__response__unpack(NULL, k->mlen[0], k->msg[0]);
    CHECK(r != NULL);
    free(k->msg[0]);
    memmove(k->msg, k->msg + 1, (k->nmsg - 1) * sizeof k->msg[0]);
    memmove(k->mlen, k->mlen + 1, (k->nmsg - 1) * sizeof k->mlen[0]);
    k->nmsg--;
    return r;
}

static Gnp2pd__Request req_connect(Gnp2pd__ConnectRequest *c, const tnode *t,
                                   ProtobufCBinaryData *addr, gn_multiaddr **ma)
{
    gnp2pd__connect_request__init(c);
    c->has_peer = 1;
    c->peer.data = (uint8_t *)t->pid.bytes;
    c->peer.len = t->pid.len;
    CHECK_EQ(gn_multiaddr_parse(t->addr, ma), 0);
    gn_slice s = gn_multiaddr_bytes(*ma);
    addr->data = (uint8_t *)(uintptr_t)s.base;
    addr->len = s.len;
    c->n_addrs = 1;
    c->addrs = addr;
    Gnp2pd__Request rq;
    gnp2pd__request__init(&rq);
    rq.has_type = 1;
    rq.type = GNP2PD__REQUEST__TYPE__CONNECT;
    rq.connect = c;
    return rq;
}

/* CONNECT from the daemon to @t; checks the OK. */
static void cli_connect_ok(const tnode *t)
{
    cli k;
    cli_open(&k);
    Gnp2pd__ConnectRequest c;
    ProtobufCBinaryData addr;
    gn_multiaddr *ma = NULL;
    Gnp2pd__Request rq = req_connect(&c, t, &addr, &ma);
    cli_send(&k, &rq);
    gn_multiaddr_free(ma);
    Gnp2pd__Response *r = cli_response(&k);
    CHECK_EQ(r->type, GNP2PD__RESPONSE__TYPE__OK);
    gnp2pd__response__free_unpacked(r, NULL);
    cli_free(&k);
}

/* ---- the peer's protocols ---- */

static gn_stream *sink_stream;
static int sink_errors;
static uint64_t echo_bytes;

static void sink_on_error(gn_stream *s, void *ud, int err)
{
    (void)ud, (void)err;
    sink_errors++;
    if (s == sink_stream) {
        sink_stream = NULL;
    }
    gn_stream_close(s, NULL, NULL);
}

static int sink_eofs;

static void sink_on_eof(gn_stream *s, void *ud)
{
    (void)ud;
    sink_eofs++;
    if (s == sink_stream) {
        sink_stream = NULL;
    }
    gn_stream_close(s, NULL, NULL);
}

static const gn_stream_handler sink_h = {.on_eof = sink_on_eof, .on_error = sink_on_error};

/* Keeps the stream and never reads it: the sender is held by flow control. */
static void sink_cb(void *arg, gn_channel *ch, gn_stream *s, const char *proto)
{
    (void)arg, (void)ch, (void)proto;
    sink_stream = s;
    gn_stream_set_handler(s, &sink_h, NULL);
}

static void echo_wrote(void *arg, int status)
{
    (void)status;
    free(arg);
}

static void echo_on_data(gn_stream *s, void *ud, const uint8_t *d, size_t len)
{
    (void)ud;
    uint8_t *copy = malloc(len);
    memcpy(copy, d, len);
    gn_slice iov = gn_slice_of(copy, len);
    if (gn_stream_write(s, &iov, 1, echo_wrote, copy) < 0) {
        free(copy);
    }
    echo_bytes += len;
}

static void echo_on_eof(gn_stream *s, void *ud)
{
    (void)ud;
    gn_stream_shutdown(s);
}

static void echo_on_error(gn_stream *s, void *ud, int err)
{
    (void)ud, (void)err;
    gn_stream_close(s, NULL, NULL);
}

static const gn_stream_handler echo_h = {echo_on_data, echo_on_eof, echo_on_error, NULL};

static void echo_cb(void *arg, gn_channel *ch, gn_stream *s, const char *proto)
{
    (void)arg, (void)ch, (void)proto;
    gn_stream_set_handler(s, &echo_h, NULL);
    gn_stream_read_start(s);
}

/* ---- fixture ---- */

static tnode A, P;
static gni_p2pd *srv;
/* set before up() for one test: max_handler_conns, req_read_timeout_ms (0: defaults) */
static size_t up_hconns;
static uint32_t up_read_timeout_ms;

static void up(size_t max_conns)
{
    setup();
    snprintf(tmpdir, sizeof tmpdir, "/tmp/gn-p2pd-XXXXXX");
    CHECK(mkdtemp(tmpdir) != NULL);
    snprintf(ctl, sizeof ctl, "/unix%s/ctl.sock", tmpdir);
    nopts o = {.listen = true, .routers = "", .discovery = ""};
    node_up(&A, 1, &o);
    node_up(&P, 2, &o);
    CHECK_EQ(gn_node_set_handler(P.n, SINK_PROTO, sink_cb, NULL), 0);
    CHECK_EQ(gn_node_set_handler(P.n, ECHO_PROTO, echo_cb, NULL), 0);
    gni_p2pd_config pc;
    memset(&pc, 0, sizeof pc);
    pc.node = A.n;
    pc.listen = ctl;
    pc.max_conns = max_conns;
    pc.max_handler_conns = up_hconns;
    pc.req_read_timeout_ms = up_read_timeout_ms;
    up_hconns = 0;
    up_read_timeout_ms = 0;
    CHECK_EQ(gni_p2pd_new(&pc, &srv), 0);
    char err[128] = "";
    CHECK_EQ(gni_p2pd_start(srv, err, sizeof err), 0);
    CHECK(strncmp(gni_p2pd_addr(srv), "/unix/tmp/", 10) == 0);
    sink_stream = NULL;
    sink_errors = 0;
    sink_eofs = 0;
    echo_bytes = 0;
}

static int srv_closed;
static void on_srv_closed(void *arg)
{
    (void)arg;
    srv_closed++;
}
static bool srv_done(void *arg) { return *(int *)arg > 0; }

static void down(void)
{
    if (srv) {
        srv_closed = 0;
        gni_p2pd_close(srv, on_srv_closed, NULL);
        CHECK(run_until(srv_done, &srv_closed, 10000));
        CHECK_EQ(srv_closed, 1);
        gni_p2pd_stats st;
        gni_p2pd_stats_get(srv, &st);
        CHECK_EQ(st.conns_open, 0);
        gni_p2pd_free(srv);
        srv = NULL;
    }
    node_down(&A);
    node_down(&P);
    finish();
    char p[160];
    snprintf(p, sizeof p, "%s/ctl.sock", tmpdir);
    CHECK(access(p, F_OK) != 0); /* the socket file went with the listener */
    snprintf(p, sizeof p, "%s/h.sock", tmpdir);
    unlink(p);
    const char *const locks[] = {"ctl.sock.lock", "h.sock.lock"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/%s", tmpdir, locks[i]);
        unlink(p); /* left by the listeners (ipc_sock_uv.c) */
    }
    rmdir(tmpdir);
}

/* ---- tests ---- */

static Gnp2pd__Request req_open(Gnp2pd__StreamOpenRequest *so, const char *proto)
{
    static char *protos[1];
    protos[0] = (char *)proto;
    gnp2pd__stream_open_request__init(so);
    so->has_peer = 1;
    so->peer.data = P.pid.bytes;
    so->peer.len = P.pid.len;
    so->n_proto = 1;
    so->proto = protos;
    Gnp2pd__Request rq;
    gnp2pd__request__init(&rq);
    rq.has_type = 1;
    rq.type = GNP2PD__REQUEST__TYPE__STREAM_OPEN;
    rq.streamopen = so;
    return rq;
}

static bool sink_open(void *arg) { (void)arg; return sink_stream != NULL; }
static bool sink_ended(void *arg) { (void)arg; return sink_errors + sink_eofs > 0; }

static bool srv_idle(void *arg)
{
    (void)arg;
    gni_p2pd_stats st;
    gni_p2pd_stats_get(srv, &st);
    return st.conns_open == 0;
}

typedef struct flood {
    cli *k;
    uint64_t written;
    uint8_t chunk[65536];
} flood;

/* Keeps the client's queue topped up to 2 MiB, up to 64 MiB in all. */
static bool flood_step(void *arg)
{
    flood *f = arg;
    while (f->k->c && gni_ipc_conn_queued(f->k->c) < (2u << 20) && f->written < (64u << 20)) {
        if (gni_ipc_conn_write(f->k->c, f->chunk, sizeof f->chunk, false) < 0) {
            break;
        }
        f->written += sizeof f->chunk;
    }
    return false;
}

GN_TEST(pipe_backpressure_and_client_killed)
{
    up(0);
    cli_connect_ok(&P);
    cli k;
    cli_open(&k);
    k.stop_after_msg = true;
    Gnp2pd__StreamOpenRequest so;
    Gnp2pd__Request rq = req_open(&so, SINK_PROTO);
    cli_send(&k, &rq);
    Gnp2pd__Response *r = cli_response(&k);
    CHECK_EQ(r->type, GNP2PD__RESPONSE__TYPE__OK);
    CHECK(r->streaminfo && !strcmp(r->streaminfo->proto, SINK_PROTO));
    CHECK(r->streaminfo->peer.len == P.pid.len &&
          !memcmp(r->streaminfo->peer.data, P.pid.bytes, P.pid.len));
    gnp2pd__response__free_unpacked(r, NULL);
    CHECK(run_until(sink_open, NULL, 5000));
    /* the peer never reads: what leaves the client must stop at a bound */
    gni_ipc_conn_set_raw(k.c);
    CHECK_EQ(gni_ipc_conn_read_start(k.c), 0);
    static flood f;
    memset(&f, 0, sizeof f);
    f.k = &k;
    run_until(flood_step, &f, 2000);
    uint64_t moved = f.written - gni_ipc_conn_queued(k.c);
    printf("# wrote %llu, left the client %llu\n", (unsigned long long)f.written,
           (unsigned long long)moved);
    CHECK(f.written >= (2u << 20));
    CHECK(moved < (16u << 20)); /* daemon window + yamux window + socket buffers */
    /*
     * The client dies mid-stream. A Unix socket has no reset: the daemon
     * sees the end of the client's data once it reads again, that is once
     * the peer drains the stream; it then ends the stream, and the pipe is
     * released when the peer closes its side.
     */
    gni_ipc_conn_close(k.c, false);
    CHECK(run_until(cli_closed, &k, 5000));
    run_until(never, NULL, 200);
    CHECK_EQ(sink_errors + sink_eofs, 0); /* held, not lost, while nobody reads */
    CHECK_EQ(gn_stream_read_start(sink_stream), 0);
    CHECK(run_until(sink_ended, NULL, 10000));
    CHECK(run_until(srv_idle, NULL, 10000));
    cli_free(&k);
    down();
}

static bool echo_all(void *arg)
{
    cli *k = arg;
    return k->raw_len >= (1u << 20) || k->ended;
}

GN_TEST(pipe_echo_and_half_close)
{
    up(0);
    cli_connect_ok(&P);
    cli k;
    cli_open(&k);
    k.stop_after_msg = true;
    Gnp2pd__StreamOpenRequest so;
    Gnp2pd__Request rq = req_open(&so, ECHO_PROTO);
    cli_send(&k, &rq);
    /* stream bytes sent right behind the request are kept for the stream */
    uint8_t *data = malloc(1u << 20);
    for (size_t i = 0; i < (1u << 20); i++) {
        data[i] = (uint8_t)(i * 7 + 3);
    }
    Gnp2pd__Response *r = cli_response(&k);
    CHECK_EQ(r->type, GNP2PD__RESPONSE__TYPE__OK);
    gnp2pd__response__free_unpacked(r, NULL);
    gni_ipc_conn_set_raw(k.c);
    CHECK_EQ(gni_ipc_conn_read_start(k.c), 0);
    CHECK_EQ(gni_ipc_conn_write(k.c, data, 1u << 20, false), 0);
    gni_ipc_conn_shutdown(k.c); /* our end of data: the daemon half-closes the stream */
    CHECK(run_until(echo_all, &k, 10000));
    CHECK_EQ(k.raw_len, 1u << 20);
    CHECK_MEM(k.raw, data, 1u << 20);
    /* the echo half-closed back: the daemon ends the connection */
    CHECK(run_until(cli_ended, &k, 5000));
    CHECK_EQ(k.end_err, GN_EEOF);
    free(data);
    cli_free(&k);
    down();
}

GN_TEST(connection_bound)
{
    up(2);
    cli k[3];
    cli_open(&k[0]);
    cli_open(&k[1]);
    cli_open(&k[2]);
    Gnp2pd__Response *r = cli_response(&k[2]);
    CHECK_EQ(r->type, GNP2PD__RESPONSE__TYPE__ERROR);
    CHECK(r->error && strstr(r->error->msg, "too many control connections"));
    gnp2pd__response__free_unpacked(r, NULL);
    CHECK(run_until(cli_ended, &k[2], 5000));
    gni_p2pd_stats st;
    gni_p2pd_stats_get(srv, &st);
    CHECK_EQ(st.conns_refused, 1);
    CHECK_EQ(st.conns_open, 2);
    /* the two admitted ones still answer */
    Gnp2pd__Request rq;
    gnp2pd__request__init(&rq);
    rq.has_type = 1;
    rq.type = GNP2PD__REQUEST__TYPE__IDENTIFY;
    cli_send(&k[1], &rq);
    r = cli_response(&k[1]);
    CHECK_EQ(r->type, GNP2PD__RESPONSE__TYPE__OK);
    CHECK(r->identify && r->identify->id.len == A.pid.len);
    gnp2pd__response__free_unpacked(r, NULL);
    for (int i = 0; i < 3; i++) {
        cli_free(&k[i]);
    }
    down();
}

static bool h_listener_closed;
static void h_closed(void *ud) { (void)ud; h_listener_closed = true; }
static bool h_lc(void *arg) { (void)arg; return h_listener_closed; }

/* A TCP listener on loopback that accepts and never says a word. */
static gni_ipc_conn *silent_conns[8];
static size_t n_silent;

static void silent_accept(gni_ipc_listener *l, gni_ipc_conn *c, void *ud)
{
    (void)l, (void)ud;
    if (n_silent < 8) {
        silent_conns[n_silent++] = c;
    } else {
        gni_ipc_conn_close(c, false);
    }
}

GN_TEST(timeout_named_and_close_with_pending_op)
{
    up(0);
    gni_ipc_listener *silent = NULL;
    char err[128];
    n_silent = 0;
    CHECK_EQ(gni_ipc_listen(gn_loop_uv(loop), "/ip4/127.0.0.1/tcp/0", NULL, silent_accept, NULL,
                            &silent, err, sizeof err),
             0);
    /* a CONNECT to a peer whose address answers nothing: the 1 s timeout is named */
    tnode ghost;
    memset(&ghost, 0, sizeof ghost);
    gn_identity *gid = NULL;
    CHECK_EQ(gn_identity_from_int_seed(77, &gid), 0);
    gn_identity_peer_id(gid, &ghost.pid);
    gn_identity_free(gid);
    snprintf(ghost.addr, sizeof ghost.addr, "%s", gni_ipc_listener_addr(silent));
    cli k;
    cli_open(&k);
    Gnp2pd__ConnectRequest c;
    ProtobufCBinaryData addr;
    gn_multiaddr *ma = NULL;
    Gnp2pd__Request rq = req_connect(&c, &ghost, &addr, &ma);
    c.has_timeout = 1;
    c.timeout = 1;
    cli_send(&k, &rq);
    Gnp2pd__Response *r = cli_response(&k);
    CHECK_EQ(r->type, GNP2PD__RESPONSE__TYPE__ERROR);
    printf("# %s\n", r->error->msg);
    CHECK_STR(r->error->msg, "CONNECT: timed out after 1 s");
    gnp2pd__response__free_unpacked(r, NULL);
    /* the same again with a long timeout, then the server closes under it */
    c.timeout = 60;
    cli_send(&k, &rq);
    run_until(never, NULL, 100);
    cli_free(&k);
    cli k2;
    cli_open(&k2);
    cli_send(&k2, &rq);
    gn_multiaddr_free(ma);
    run_until(never, NULL, 100);
    srv_closed = 0;
    gni_p2pd_close(srv, on_srv_closed, NULL);
    CHECK(run_until(srv_done, &srv_closed, 5000));
    CHECK(run_until(cli_ended, &k2, 5000));
    gni_p2pd_stats st;
    gni_p2pd_stats_get(srv, &st);
    CHECK_EQ(st.conns_open, 0);
    gni_p2pd_free(srv);
    srv = NULL;
    cli_free(&k2);
    for (size_t i = 0; i < n_silent; i++) {
        gni_ipc_conn_close(silent_conns[i], false);
    }
    h_listener_closed = false;
    gni_ipc_listener_close(silent, h_closed, NULL);
    CHECK(run_until(h_lc, NULL, 5000));
    down();
}

/* ---- stream handler: the daemon connects to our own Unix socket ---- */

typedef struct hsrv {
    cli k; /* the connection the daemon made */
    bool got;
} hsrv;

static void h_accept(gni_ipc_listener *l, gni_ipc_conn *c, void *ud)
{
    (void)l;
    hsrv *h = ud;
    if (h->got) {
        gni_ipc_conn_close(c, false);
        return;
    }
    h->got = true;
    memset(&h->k, 0, sizeof h->k);
    h->k.c = c;
    h->k.connected = true;
    h->k.stop_after_msg = true;
    gni_ipc_conn_set_cbs(c, &cli_cbs, &h->k);
    gni_ipc_conn_read_start(c);
}

static bool h_first(void *arg) { return ((hsrv *)arg)->got && ((hsrv *)arg)->k.nmsg > 0; }

typedef struct opened {
    int calls, status;
    gn_stream *s;
} opened;

static void p_opened(void *arg, int status, gn_stream *s)
{
    opened *o = arg;
    o->calls++;
    o->status = status;
    o->s = s;
}
static bool p_done(void *arg) { return ((opened *)arg)->calls > 0; }
static void p_wrote(void *arg, int status) { (void)arg, (void)status; }
static bool h_bytes(void *arg) { return ((hsrv *)arg)->k.raw_len >= 5; }

GN_TEST(stream_handler_to_unix_socket)
{
    up(0);
    char hpath[128];
    snprintf(hpath, sizeof hpath, "/unix%s/h.sock", tmpdir);
    static hsrv h;
    memset(&h, 0, sizeof h);
    gni_ipc_listener *l = NULL;
    char err[128];
    CHECK_EQ(gni_ipc_listen(gn_loop_uv(loop), hpath, NULL, h_accept, &h, &l, err, sizeof err), 0);

    /* an address off the machine is refused, naming it */
    cli k;
    cli_open(&k);
    gn_multiaddr *far = NULL;
    CHECK_EQ(gn_multiaddr_parse("/ip4/8.8.8.8/tcp/1", &far), 0);
    gn_slice fs = gn_multiaddr_bytes(far);
    static char *protos[1] = {(char *)HANDLED_PROTO};
    Gnp2pd__StreamHandlerRequest sh;
    gnp2pd__stream_handler_request__init(&sh);
    sh.has_addr = 1;
    sh.addr.data = (uint8_t *)(uintptr_t)fs.base;
    sh.addr.len = fs.len;
    sh.n_proto = 1;
    sh.proto = protos;
    Gnp2pd__Request rq;
    gnp2pd__request__init(&rq);
    rq.has_type = 1;
    rq.type = GNP2PD__REQUEST__TYPE__STREAM_HANDLER;
    rq.streamhandler = &sh;
    cli_send(&k, &rq);
    Gnp2pd__Response *r = cli_response(&k);
    CHECK_EQ(r->type, GNP2PD__RESPONSE__TYPE__ERROR);
    CHECK(strstr(r->error->msg, "8.8.8.8"));
    gnp2pd__response__free_unpacked(r, NULL);
    gn_multiaddr_free(far);

    /* our Unix socket: accepted, on the same connection */
    gn_multiaddr *hm = NULL;
    CHECK_EQ(gn_multiaddr_parse(hpath, &hm), 0);
    gn_slice hs = gn_multiaddr_bytes(hm);
    sh.addr.data = (uint8_t *)(uintptr_t)hs.base;
    sh.addr.len = hs.len;
    cli_send(&k, &rq);
    r = cli_response(&k);
    CHECK_EQ(r->type, GNP2PD__RESPONSE__TYPE__OK);
    gnp2pd__response__free_unpacked(r, NULL);
    gn_multiaddr_free(hm);
    cli_free(&k);

    /* the peer opens a stream to the daemon's node for the protocol */
    gn_channel *ch = NULL;
    CHECK_EQ(dial_wait_ch(&P, A.addr, &ch), 0);
    opened o = {0};
    CHECK_EQ(gn_channel_open_stream(ch, HANDLED_PROTO, p_opened, &o), 0);
    CHECK(run_until(p_done, &o, 5000));
    CHECK_EQ(o.status, 0);
    gn_slice iov = gn_slice_of("hello", 5);
    CHECK_EQ(gn_stream_write(o.s, &iov, 1, p_wrote, NULL), 0);
    /* first a bare, framed StreamInfo naming the peer and the protocol */
    CHECK(run_until(h_first, &h, 5000));
    Gnp2pd__StreamInfo *si = gnp2pd__stream_info__unpack(NULL, h.k.mlen[0], h.k.msg[0]);
    CHECK(si != NULL);
    CHECK(si->has_peer && si->peer.len == P.pid.len && !memcmp(si->peer.data, P.pid.bytes, P.pid.len));
    CHECK_STR(si->proto, HANDLED_PROTO);
    CHECK(si->has_addr && si->addr.len > 0);
    gnp2pd__stream_info__free_unpacked(si, NULL);
    /* then the peer's bytes, raw */
    gni_ipc_conn_set_raw(h.k.c);
    CHECK_EQ(gni_ipc_conn_read_start(h.k.c), 0);
    CHECK(run_until(h_bytes, &h, 5000));
    CHECK_EQ(h.k.raw_len, 5);
    CHECK_MEM(h.k.raw, "hello", 5);
    gn_stream_close(o.s, NULL, NULL);
    gn_channel_rele(ch);
    cli_free(&h.k);
    h_listener_closed = false;
    gni_ipc_listener_close(l, h_closed, NULL);
    CHECK(run_until(h_lc, NULL, 5000));
    down();
}

/* STREAM_HANDLER for HANDLED_PROTO to @addr (a multiaddr string) on @k; the response. */
static Gnp2pd__Response *cli_stream_handler(cli *k, const char *addr)
{
    gn_multiaddr *hm = NULL;
    CHECK_EQ(gn_multiaddr_parse(addr, &hm), 0);
    gn_slice hs = gn_multiaddr_bytes(hm);
    static char *protos[1] = {(char *)HANDLED_PROTO};
    Gnp2pd__StreamHandlerRequest sh;
    gnp2pd__stream_handler_request__init(&sh);
    sh.has_addr = 1;
    sh.addr.data = (uint8_t *)(uintptr_t)hs.base;
    sh.addr.len = hs.len;
    sh.n_proto = 1;
    sh.proto = protos;
    Gnp2pd__Request rq;
    gnp2pd__request__init(&rq);
    rq.has_type = 1;
    rq.type = GNP2PD__REQUEST__TYPE__STREAM_HANDLER;
    rq.streamhandler = &sh;
    cli_send(k, &rq);
    gn_multiaddr_free(hm);
    return cli_response(k);
}

static void cli_identify_ok(cli *k)
{
    Gnp2pd__Request rq;
    gnp2pd__request__init(&rq);
    rq.has_type = 1;
    rq.type = GNP2PD__REQUEST__TYPE__IDENTIFY;
    cli_send(k, &rq);
    Gnp2pd__Response *r = cli_response(k);
    CHECK_EQ(r->type, GNP2PD__RESPONSE__TYPE__OK);
    CHECK(r->identify && r->identify->id.len == A.pid.len);
    gnp2pd__response__free_unpacked(r, NULL);
}

static bool handlers_full(void *arg)
{
    (void)arg;
    gni_p2pd_stats st;
    gni_p2pd_stats_get(srv, &st);
    return st.handler_refused >= 1 && st.conns_open == 2 && n_silent == 2;
}

/* A remote peer's idle streams fill the handler cap, never the control connections' room. */
GN_TEST(handler_cap_leaves_control_room)
{
    up_hconns = 2;
    up(2);
    char hpath[128];
    snprintf(hpath, sizeof hpath, "/unix%s/h.sock", tmpdir);
    n_silent = 0;
    gni_ipc_listener *l = NULL;
    char err[128];
    CHECK_EQ(gni_ipc_listen(gn_loop_uv(loop), hpath, NULL, silent_accept, NULL, &l, err, sizeof err),
             0);
    cli k;
    cli_open(&k);
    Gnp2pd__Response *r = cli_stream_handler(&k, hpath);
    CHECK_EQ(r->type, GNP2PD__RESPONSE__TYPE__OK);
    gnp2pd__response__free_unpacked(r, NULL);
    cli_free(&k);
    /* the peer opens three streams and sends nothing: two are piped, the third reset */
    gn_channel *ch = NULL;
    CHECK_EQ(dial_wait_ch(&P, A.addr, &ch), 0);
    opened o[3];
    memset(o, 0, sizeof o);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(gn_channel_open_stream(ch, HANDLED_PROTO, p_opened, &o[i]), 0);
        CHECK(run_until(p_done, &o[i], 5000));
        CHECK_EQ(o[i].status, 0);
    }
    CHECK(run_until(handlers_full, NULL, 5000));
    gni_p2pd_stats st;
    gni_p2pd_stats_get(srv, &st);
    CHECK_EQ(st.handler_refused, 1);
    CHECK_EQ(st.conns_refused, 0);
    /* both control connections are still admitted and answer */
    cli c2[2];
    cli_open(&c2[0]);
    cli_open(&c2[1]);
    cli_identify_ok(&c2[0]);
    cli_identify_ok(&c2[1]);
    gni_p2pd_stats_get(srv, &st);
    CHECK_EQ(st.conns_refused, 0);
    cli_free(&c2[0]);
    cli_free(&c2[1]);
    for (int i = 0; i < 3; i++) {
        gn_stream_reset(o[i].s, NULL, NULL);
    }
    gn_channel_rele(ch);
    for (size_t i = 0; i < n_silent; i++) {
        gni_ipc_conn_close(silent_conns[i], false);
    }
    n_silent = 0;
    h_listener_closed = false;
    gni_ipc_listener_close(l, h_closed, NULL);
    CHECK(run_until(h_lc, NULL, 5000));
    down();
}

/* A client that announces a request and stops (or says nothing) loses its slot. */
GN_TEST(request_read_timeout)
{
    up_read_timeout_ms = 500;
    up(0);
    cli k[2];
    cli_open(&k[0]);
    cli_open(&k[1]);
    CHECK_EQ(gni_ipc_conn_write(k[0].c, (const uint8_t *)"\x05\x08", 2, false), 0);
    /* an answered request restarts the wait; then nothing follows */
    cli_identify_ok(&k[1]);
    CHECK(run_until(cli_ended, &k[0], 5000));
    CHECK(run_until(cli_ended, &k[1], 5000));
    for (int i = 0; i < 2; i++) {
        CHECK(k[i].nmsg == 1);
        Gnp2pd__Response *r = cli_response(&k[i]);
        CHECK_EQ(r->type, GNP2PD__RESPONSE__TYPE__ERROR);
        CHECK(r->error && strstr(r->error->msg, "no complete request within 500 ms"));
        gnp2pd__response__free_unpacked(r, NULL);
    }
    gni_p2pd_stats st;
    gni_p2pd_stats_get(srv, &st);
    CHECK_EQ(st.read_timeouts, 2);
    cli_free(&k[0]);
    cli_free(&k[1]);
    down();
}

#define FLOOD_REQS 20000u
static bool read_waited(void *arg)
{
    (void)arg;
    gni_p2pd_stats st;
    gni_p2pd_stats_get(srv, &st);
    return st.read_waits > 0;
}
static bool all_answered(void *arg) { return ((cli *)arg)->total >= FLOOD_REQS; }

/* A client that sends requests and never reads the answers stops being read. */
GN_TEST(unread_answers_pause_requests)
{
    up(0);
    cli k;
    cli_open(&k);
    gni_ipc_conn_read_stop(k.c);
    Gnp2pd__Request rq;
    gnp2pd__request__init(&rq);
    rq.has_type = 1;
    rq.type = GNP2PD__REQUEST__TYPE__IDENTIFY;
    uint8_t one[16];
    size_t n = gnp2pd__request__pack(&rq, one);
    CHECK(n < 127);
    uint8_t *buf = malloc(FLOOD_REQS * (n + 1));
    CHECK(buf != NULL);
    for (size_t i = 0; i < FLOOD_REQS; i++) {
        buf[i * (n + 1)] = (uint8_t)n;
        memcpy(buf + i * (n + 1) + 1, one, n);
    }
    CHECK_EQ(gni_ipc_conn_write(k.c, buf, FLOOD_REQS * (n + 1), false), 0);
    free(buf);
    CHECK(run_until(read_waited, NULL, 10000));
    run_until(never, NULL, 200);
    gni_p2pd_stats st;
    gni_p2pd_stats_get(srv, &st);
    printf("# %llu of %u requests read while the client read nothing\n",
           (unsigned long long)st.requests, FLOOD_REQS);
    CHECK(st.requests < FLOOD_REQS);
    /* reading resumes as the client reads */
    CHECK_EQ(gni_ipc_conn_read_start(k.c), 0);
    CHECK(run_until(all_answered, &k, 30000));
    gni_p2pd_stats_get(srv, &st);
    CHECK_EQ(st.requests, FLOOD_REQS);
    CHECK_EQ(k.total, FLOOD_REQS);
    cli_free(&k);
    down();
}

static Gnp2pd__Response *cli_tag(cli *k, const char *tag)
{
    Gnp2pd__ConnManagerRequest cm;
    gnp2pd__conn_manager_request__init(&cm);
    cm.has_type = 1;
    cm.type = GNP2PD__CONN_MANAGER_REQUEST__TYPE__TAG_PEER;
    cm.has_peer = 1;
    cm.peer.data = (uint8_t *)P.pid.bytes;
    cm.peer.len = P.pid.len;
    cm.tag = (char *)tag;
    cm.has_weight = 1;
    cm.weight = 1;
    Gnp2pd__Request rq;
    gnp2pd__request__init(&rq);
    rq.has_type = 1;
    rq.type = GNP2PD__REQUEST__TYPE__CONNMANAGER;
    rq.connmanager = &cm;
    cli_send(k, &rq);
    return cli_response(k);
}

static Gnp2pd__Response *cli_peerstore(cli *k, int type, const tnode *t)
{
    Gnp2pd__PeerstoreRequest ps;
    gnp2pd__peerstore_request__init(&ps);
    ps.has_type = 1;
    ps.type = type;
    ps.has_id = 1;
    ps.id.data = (uint8_t *)t->pid.bytes;
    ps.id.len = t->pid.len;
    Gnp2pd__Request rq;
    gnp2pd__request__init(&rq);
    rq.has_type = 1;
    rq.type = GNP2PD__REQUEST__TYPE__PEERSTORE;
    rq.peerstore = &ps;
    cli_send(k, &rq);
    return cli_response(k);
}

/* One answer per request: the tag limit is one ERROR; an unknown peer's store entry is empty. */
GN_TEST(one_answer_per_request)
{
    up(0);
    cli k;
    cli_open(&k);
    char tag[32];
    for (unsigned i = 0; i < GNI_P2PD_TAGS_MAX; i++) {
        snprintf(tag, sizeof tag, "t%u", i);
        Gnp2pd__Response *r = cli_tag(&k, tag);
        CHECK_EQ(r->type, GNP2PD__RESPONSE__TYPE__OK);
        gnp2pd__response__free_unpacked(r, NULL);
    }
    Gnp2pd__Response *r = cli_tag(&k, "one-too-many");
    CHECK_EQ(r->type, GNP2PD__RESPONSE__TYPE__ERROR);
    CHECK(r->error && strstr(r->error->msg, "at most 1024 peer tags"));
    gnp2pd__response__free_unpacked(r, NULL);
    /* the next answer is the next request's, not an OK after the ERROR */
    cli_identify_ok(&k);
    CHECK_EQ(k.nmsg, 0);
    /* a peer the daemon never heard of: empty answers (as go's daemon) */
    tnode ghost;
    memset(&ghost, 0, sizeof ghost);
    gn_identity *gid = NULL;
    CHECK_EQ(gn_identity_from_int_seed(78, &gid), 0);
    gn_identity_peer_id(gid, &ghost.pid);
    gn_identity_free(gid);
    r = cli_peerstore(&k, GNP2PD__PEERSTORE_REQUEST__TYPE__GET_PROTOCOLS, &ghost);
    CHECK_EQ(r->type, GNP2PD__RESPONSE__TYPE__OK);
    CHECK(r->peerstore && r->peerstore->n_protos == 0);
    gnp2pd__response__free_unpacked(r, NULL);
    r = cli_peerstore(&k, GNP2PD__PEERSTORE_REQUEST__TYPE__GET_PEER_INFO, &ghost);
    CHECK_EQ(r->type, GNP2PD__RESPONSE__TYPE__OK);
    CHECK(r->peerstore && r->peerstore->peer && r->peerstore->peer->n_addrs == 0);
    CHECK(r->peerstore->peer->id.len == ghost.pid.len &&
          !memcmp(r->peerstore->peer->id.data, ghost.pid.bytes, ghost.pid.len));
    gnp2pd__response__free_unpacked(r, NULL);
    cli_free(&k);
    down();
}

static int srv2_closed;
static void on_srv2_closed(void *arg) { (void)arg; srv2_closed++; }

/* Over a TCP control connection a Unix handler address is refused (no peer credentials). */
GN_TEST(unix_handler_refused_over_tcp)
{
    up(0);
    gni_p2pd *tsrv = NULL;
    gni_p2pd_config pc;
    memset(&pc, 0, sizeof pc);
    pc.node = A.n;
    pc.listen = "/ip4/127.0.0.1/tcp/0";
    CHECK_EQ(gni_p2pd_new(&pc, &tsrv), 0);
    char err[128] = "";
    CHECK_EQ(gni_p2pd_start(tsrv, err, sizeof err), 0);
    char saved[128];
    snprintf(saved, sizeof saved, "%s", ctl);
    snprintf(ctl, sizeof ctl, "%s", gni_p2pd_addr(tsrv));
    char hpath[128];
    snprintf(hpath, sizeof hpath, "/unix%s/h.sock", tmpdir);
    cli k;
    cli_open(&k);
    snprintf(ctl, sizeof ctl, "%s", saved);
    Gnp2pd__Response *r = cli_stream_handler(&k, hpath);
    CHECK_EQ(r->type, GNP2PD__RESPONSE__TYPE__ERROR);
    printf("# %s\n", r->error->msg);
    CHECK(r->error && strstr(r->error->msg, "TCP control connection"));
    gnp2pd__response__free_unpacked(r, NULL);
    cli_free(&k);
    /* the same over the Unix control socket is accepted */
    cli_open(&k);
    r = cli_stream_handler(&k, hpath);
    CHECK_EQ(r->type, GNP2PD__RESPONSE__TYPE__OK);
    gnp2pd__response__free_unpacked(r, NULL);
    cli_free(&k);
    srv2_closed = 0;
    gni_p2pd_close(tsrv, on_srv2_closed, NULL);
    CHECK(run_until(srv_done, &srv2_closed, 5000));
    gni_p2pd_free(tsrv);
    down();
}

GN_TEST_MAIN(GN_T(pipe_backpressure_and_client_killed), GN_T(pipe_echo_and_half_close),
             GN_T(connection_bound), GN_T(timeout_named_and_close_with_pending_op),
             GN_T(stream_handler_to_unix_socket), GN_T(handler_cap_leaves_control_room),
             GN_T(request_read_timeout), GN_T(unread_answers_pause_requests),
             GN_T(one_answer_per_request), GN_T(unix_handler_refused_over_tcp))
