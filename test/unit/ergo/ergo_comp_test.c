/*
 * ergo_comp_test: the `ergo` protocol component in two gn_node instances
 * on one loop (protocols/ergo/ergo_layer.c, internal interface
 * ergo_comp.h).
 *  (a) /golem/ergo/1.0.0 through the nodes' channel (TCP + Noise + yamux, and
 *      through a circuit relay on a limited channel, where the reader's
 *      MaxMessageSize resets a stream that carries a larger frame):
 *      the opening exchange, ENP frames both ways in order, the peer's
 *      MaxMessageSize refused locally, write-queue pushback (GN_EAGAIN then
 *      on_writable, nothing lost), a second connect refused, close; a newer
 *      stream opened by the same side replaces the older one;
 *  (b) the component's Ergo TCP acceptor: B dialled by name through the
 *      embedded registrar on a private port, a pool of 3 links, frames both
 *      ways in order, close;
 *  (c) bad options refused, the log line naming the key and the value;
 *  (d) a port range whose first port is taken: the next one is used; a
 *      range of 1 on a taken port fails the start;
 *  (e) the wiring (connect_uv, routes, TLS, etcd): a TLS acceptor dialled by
 *      name through the embedded registrar (the route's TLS flag makes the
 *      dialler use TLS: without tls_skip_verify the self-signed certificate
 *      is refused); a static route given as ergo.route with its own cookie;
 *      registration and dial by name through a real etcd on loopback
 *      (skipped without etcd or without the ergo_etcd build); bad
 *      ergo.route and registrar values refused naming the key.
 */
#define _XOPEN_SOURCE 700 /* nftw, for etcd_server.h */
#include "gn_test.h"

#define GN_TNODE_EXTRA                                                                       \
    unsigned ups, downs, writables, fails;                                                   \
    unsigned frames, bad_order;                                                              \
    int64_t last_seq;                                                                        \
    size_t bytes;                                                                            \
    int last_down, last_fail;                                                                \
    gni_ergo_peer *peer;
#include "ergo_comp.h"
#include "ergo_open.h"
#include "ergo_etcd_config.h"
#include "ergo_tls_config.h"
#include "ergo_uv.h"
#include "gn_tnode.h"
#if GNI_HAVE_ERGO_ETCD
#include "etcd_server.h"
#endif

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the layer-above stub: counts what the interface reports ---------------------------- */

static void h_up(void *ud, gni_ergo_peer *p)
{
    tnode *t = ud;
    t->ups++;
    t->peer = p;
}

static void h_frame(void *ud, gni_ergo_peer *p, const uint8_t *f, size_t len)
{
    tnode *t = ud;
    (void)p;
    t->frames++;
    t->bytes += len;
    if (len < 42 || f[7] != 101)
        return;
    int64_t seq = 0;
    for (int i = 0; i < 8; i++)
        seq = (int64_t)((uint64_t)seq << 8 | f[34 + i]);
    if (seq != t->last_seq + 1)
        t->bad_order++;
    t->last_seq = seq;
}

static void h_down(void *ud, gni_ergo_peer *p, int reason)
{
    tnode *t = ud;
    if (t->peer == p)
        t->peer = NULL;
    t->downs++;
    t->last_down = reason;
}

static void h_writable(void *ud, gni_ergo_peer *p)
{
    (void)p;
    ((tnode *)ud)->writables++;
}

static void h_failed(void *ud, const char *node, int err, const char *diag)
{
    (void)node, (void)diag;
    tnode *t = ud;
    t->fails++;
    t->last_fail = err;
}

static const gni_ergo_handler handler = {h_up, h_frame, h_down, h_writable, h_failed};

static gni_ergo_comp *comp(tnode *t)
{
    gni_ergo_comp *c = gni_ergo_comp_of(gn_node_host(t->n));
    CHECK(c != NULL);
    gni_ergo_comp_set_handler(c, &handler, t);
    return c;
}

/* an ENP MessagePID frame of @len bytes (>= 42) carrying @seq at [34..42] */
static uint8_t *frame(uint8_t *f, size_t len, int64_t seq)
{
    memset(f, 0, len);
    f[0] = 78;
    f[1] = 1;
    f[2] = (uint8_t)(len >> 24);
    f[3] = (uint8_t)(len >> 16);
    f[4] = (uint8_t)(len >> 8);
    f[5] = (uint8_t)len;
    f[7] = 101;
    f[15] = 7; /* from */
    for (int i = 0; i < 8; i++)
        f[34 + i] = (uint8_t)((uint64_t)seq >> (56 - 8 * i));
    return f;
}

static bool both_up(void *arg)
{
    tnode *t = arg;
    return t[0].peer && t[1].peer;
}

static bool both_down(void *arg)
{
    tnode *t = arg;
    return t[0].downs > 0 && t[1].downs > 0;
}

typedef struct fwant {
    tnode *t;
    unsigned frames;
} fwant;

static bool got_frames(void *arg)
{
    fwant *w = arg;
    return w->t->frames >= w->frames;
}

static bool got_fail(void *arg) { return ((tnode *)arg)->fails > 0; }

/* 4 MiB of 64 KiB frames, plus the one that crosses the bound */
#define ERGO_TEST_MAX_QUEUED_FRAMES 65u

static char regport_opt[64];

static void ergo_up(tnode *t, uint32_t seed, const char *const *opts, size_t nopt, bool listen)
{
    nopts o = {0};
    o.protocol_components = "ergo";
    o.options = opts;
    o.n_options = nopt;
    o.listen = listen;
    node_up(t, seed, &o);
}

/* (a) */
GN_TEST(channel_frames_both_ways)
{
    setup();
    tnode t[2];
    const char *oa[] = {"ergo.node=alpha@localhost"}; /* no cookie: no TCP acceptor */
    const char *ob[] = {"ergo.node=beta@localhost", "ergo.acceptor=off",
                        "ergo.max_message_size=4096"};
    ergo_up(&t[0], 301, oa, 1, false);
    ergo_up(&t[1], 302, ob, 3, true);
    gni_ergo_comp *ca = comp(&t[0]), *cb = comp(&t[1]);
    CHECK(gni_ergo_comp_endpoint(ca) == NULL);
    CHECK_EQ(dial_wait(&t[0], t[1].addr), 0);
    /* the name we expect is checked against the peer's Introduce */
    CHECK_OK(gni_ergo_comp_connect_peer(ca, &t[1].pid, "beta@localhost"));
    CHECK(run_until(both_up, t, 8000));
    CHECK_EQ(t[0].ups, 1u);
    CHECK_EQ(t[1].ups, 1u);
    CHECK(gni_ergo_comp_find(ca, "beta@localhost") == t[0].peer);
    const gni_ergo_peer_info *ia = gni_ergo_peer_get_info(t[0].peer);
    const gni_ergo_peer_info *ib = gni_ergo_peer_get_info(t[1].peer);
    CHECK_STR(ia->node, "beta@localhost");
    CHECK_STR(ib->node, "alpha@localhost");
    CHECK_EQ(ia->carrier, GNI_ERGO_CARRIER_CHANNEL);
    CHECK(gn_peer_id_equal(&ia->peer_id, &t[1].pid)); /* the name is bound to the peer ID */
    CHECK(gn_peer_id_equal(&ib->peer_id, &t[0].pid));
    CHECK(ia->initiator && !ib->initiator);
    CHECK_EQ(ia->max_message_size, 4096u);
    CHECK_EQ(ib->max_message_size, 0u);
    CHECK_EQ(ia->flags, (uint64_t)GNI_EHS_FLAGS_DEFAULT);
    CHECK(ia->dict && gn_edf_dict_count(ia->dict, GN_EDF_DICT_ERROR) > 0);
    CHECK_EQ(gni_ergo_peer_links(t[0].peer), 1u);
    /* a second connection for a name that is up is refused */
    CHECK_EQ(gni_ergo_comp_connect_peer(ca, &t[1].pid, "beta@localhost"), GN_EEXIST);

    /* frames both ways, in order */
    static uint8_t f[65536];
    for (int64_t i = 1; i <= 200; i++) {
        CHECK_OK(gni_ergo_comp_send(ca, "beta@localhost", 7, true, frame(f, 42 + (size_t)i, i),
                                    42 + (size_t)i));
        CHECK_OK(gni_ergo_comp_send(cb, "alpha@localhost", 7, true, frame(f, 100, i), 100));
    }
    fwant wb = {&t[1], 200}, wa = {&t[0], 200};
    CHECK(run_until(got_frames, &wb, 8000));
    CHECK(run_until(got_frames, &wa, 8000));
    CHECK_EQ(t[0].bad_order + t[1].bad_order, 0u);
    CHECK_EQ(t[0].bytes, 200u * 100u);
    CHECK_EQ(t[1].bytes, 200u * 42u + 200u * 201u / 2u);
    /* beta's MaxMessageSize (4096) is enforced by the sender; not a frame: refused */
    CHECK_EQ(gni_ergo_comp_send(ca, "beta@localhost", 7, true, frame(f, 5000, 1), 5000),
             GN_ETOOBIG);
    CHECK_EQ(gni_ergo_comp_send(ca, "beta@localhost", 7, true, f, 41), GN_EINVAL);
    CHECK_EQ(gni_ergo_comp_send(ca, "nobody@localhost", 7, true, f, 42), GN_ENOTFOUND);

    /* pushback: beta -> alpha (no limit) with 64 KiB frames, without running the loop */
    unsigned sent = 0;
    int rc = 0;
    for (unsigned i = 0; i < 1000; i++) { /* bounded: pushback comes at 4 MiB */
        rc = gni_ergo_comp_send(cb, "alpha@localhost", 7, true,
                                frame(f, sizeof f, 201 + (int64_t)i), sizeof f);
        if (rc < 0)
            break;
        sent++;
    }
    CHECK_EQ(rc, GN_EAGAIN);
    fprintf(stderr, "# sent %u before GN_EAGAIN\n", sent);
    CHECK(sent >= 1 && sent <= ERGO_TEST_MAX_QUEUED_FRAMES);
    fwant wa2 = {&t[0], 200 + sent};
    CHECK(run_until(got_frames, &wa2, 10000));
    CHECK(t[1].writables >= 1u);
    CHECK_EQ(t[0].frames, 200u + sent);
    CHECK_EQ(t[0].bad_order, 0u);

    /* close: both sides see the peer go */
    gni_ergo_peer_close(t[0].peer);
    CHECK(run_until(both_down, t, 8000));
    CHECK(gni_ergo_comp_find(ca, "beta@localhost") == NULL);
    CHECK(gni_ergo_comp_find(cb, "alpha@localhost") == NULL);
    CHECK_EQ(t[0].last_down, 0);
    /* a wrong expected name fails the connect on the opener's side */
    CHECK_OK(gni_ergo_comp_connect_peer(ca, &t[1].pid, "gamma@localhost"));
    CHECK(run_until(got_fail, &t[0], 8000));
    CHECK_EQ(t[0].fails, 1u);
    CHECK_EQ(t[0].last_fail, GN_EHANDSHAKE);
    CHECK_EQ(t[0].ups, 1u);
    node_down(&t[0]);
    node_down(&t[1]);
    finish();
}

/* A raw second /golem/ergo/1.0.0 stream from beta, as a restarted beta would open one while
 * alpha still holds the old stream: alpha keeps the newer stream and resets the older one,
 * although beta's name sorts after alpha's (that rule is for streams opened by both sides). */
typedef struct raw_open {
    const gni_ergo_comp *cb;
    gn_stream *s;
    uint8_t intro[4096];
    size_t len;
    int status;
} raw_open;

static void raw_opened(void *arg, int status, gn_channel *ch, gn_stream *s)
{
    (void)ch;
    raw_open *r = arg;
    r->status = status < 0 ? status : 1;
    if (status < 0)
        return;
    r->s = s;
    gni_ergo_open_config oc;
    memset(&oc, 0, sizeof oc);
    oc.reg = gni_ergo_comp_registry(r->cb);
    oc.node = gn_slice_of("beta@localhost", 14);
    oc.creation = 2; /* a new incarnation */
    gni_ergo_open *op = NULL;
    CHECK_OK(gni_ergo_open_new(&oc, 0, &op));
    gn_buf b;
    gn_buf_init(&b, r->intro, sizeof r->intro);
    gni_ergo_open_drain(op, &b);
    r->len = gn_buf_len(&b);
    gni_ergo_open_free(op);
    gn_slice iov = gn_slice_of(r->intro, r->len);
    CHECK_OK(gn_stream_write(s, &iov, 1, NULL, NULL));
}

static bool raw_done(void *arg) { return ((raw_open *)arg)->status != 0; }
static bool alpha_up_twice(void *arg)
{
    return ((tnode *)arg)[0].ups >= 2 && ((tnode *)arg)[1].downs >= 1;
}

GN_TEST(same_side_newer_stream_replaces_the_older)
{
    setup();
    tnode t[2];
    const char *oa[] = {"ergo.node=alpha@localhost"};
    const char *ob[] = {"ergo.node=beta@localhost"};
    ergo_up(&t[0], 311, oa, 1, true); /* beta dials alpha */
    ergo_up(&t[1], 312, ob, 1, true);
    gni_ergo_comp *ca = comp(&t[0]), *cb = comp(&t[1]);
    CHECK_EQ(dial_wait(&t[1], t[0].addr), 0);
    CHECK_OK(gni_ergo_comp_connect_peer(cb, &t[0].pid, "alpha@localhost"));
    CHECK(run_until(both_up, t, 8000));
    CHECK(gni_ergo_comp_find(ca, "beta@localhost") != NULL);
    static raw_open r;
    memset(&r, 0, sizeof r);
    r.cb = cb;
    CHECK_OK(gn_host_new_stream(gn_node_host(t[1].n), &t[0].pid, "/golem/ergo/1.0.0", raw_opened,
                                &r, NULL));
    CHECK(run_until(raw_done, &r, 8000));
    CHECK_EQ(r.status, 1);
    /* alpha: the old stream is replaced (down, then up with the new incarnation); beta's
     * component sees its own stream reset */
    CHECK(run_until(alpha_up_twice, t, 8000));
    const gni_ergo_peer *now = gni_ergo_comp_find(ca, "beta@localhost");
    CHECK(now != NULL);
    CHECK_EQ(gni_ergo_peer_get_info(now)->creation, 2);
    CHECK_EQ(t[0].downs, 1u);
    CHECK(gni_ergo_comp_find(cb, "alpha@localhost") == NULL);
    gn_stream_reset(r.s, NULL, NULL);
    node_down(&t[0]);
    node_down(&t[1]);
    finish();
}

/* no options at all: the node's peer ID names it, channels only */
GN_TEST(default_name_is_the_peer_id)
{
    setup();
    tnode t[2];
    ergo_up(&t[0], 305, NULL, 0, false);
    ergo_up(&t[1], 306, NULL, 0, true);
    gni_ergo_comp *ca = comp(&t[0]);
    comp(&t[1]);
    char want_name[GN_PEER_ID_MAX_STRLEN + 16];
    snprintf(want_name, sizeof want_name, "%s@localhost", t[0].pid_str);
    CHECK_STR(gni_ergo_comp_node(ca), want_name);
    CHECK(gni_ergo_comp_endpoint(ca) == NULL);
    CHECK_EQ(dial_wait(&t[0], t[1].addr), 0);
    CHECK_OK(gni_ergo_comp_connect_peer(ca, &t[1].pid, NULL));
    CHECK(run_until(both_up, t, 8000));
    snprintf(want_name, sizeof want_name, "%s@localhost", t[1].pid_str);
    CHECK_STR(gni_ergo_peer_get_info(t[0].peer)->node, want_name);
    node_down(&t[0]);
    node_down(&t[1]);
    finish();
}

/* (a) through a circuit relay: the stream runs on a limited channel */
GN_TEST(channel_through_a_relay)
{
    setup();
    tnode r, t[2];
    nopts ro = {0};
    ro.protocol_components = "relay";
    ro.listen = true;
    node_up(&r, 350, &ro);
    const char *oa[] = {"ergo.node=alpha@localhost"};
    const char *ob[] = {"ergo.node=beta@localhost", "ergo.max_message_size=1000"};
    nopts o = {0};
    o.protocol_components = "ergo";
    o.transports = "tcp,circuit";
    o.options = ob;
    o.n_options = 2;
    node_up(&t[1], 352, &o);
    char addr[GN_NODE_ADDR_MAX + GN_PEER_ID_MAX_STRLEN + 64];
    snprintf(addr, sizeof addr, "%s/p2p-circuit", r.addr);
    CHECK_OK(gn_node_listen(t[1].n, addr, NULL));
    CHECK(run_until(got_listen, &t[1], 8000)); /* a reservation at the relay */
    o.options = oa;
    o.n_options = 1;
    node_up(&t[0], 351, &o);
    snprintf(addr, sizeof addr, "%s/p2p-circuit/p2p/%s", r.addr, t[1].pid_str);
    gn_channel *ch = NULL;
    CHECK_EQ(dial_wait_ch(&t[0], addr, &ch), 0);
    CHECK(ch != NULL && gn_channel_limited(ch, NULL));
    gni_ergo_comp *ca = comp(&t[0]), *cb = comp(&t[1]);
    CHECK_OK(gni_ergo_comp_connect_peer(ca, &t[1].pid, "beta@localhost"));
    CHECK(run_until(both_up, t, 8000));
    static uint8_t f[256];
    for (int64_t i = 1; i <= 50; i++) {
        CHECK_OK(gni_ergo_comp_send(ca, "beta@localhost", 7, true, frame(f, 100, i), 100));
        CHECK_OK(gni_ergo_comp_send(cb, "alpha@localhost", 7, true, frame(f, 60, i), 60));
    }
    fwant wb = {&t[1], 50}, wa = {&t[0], 50};
    CHECK(run_until(got_frames, &wb, 8000));
    CHECK(run_until(got_frames, &wa, 8000));
    CHECK_EQ(t[0].bad_order + t[1].bad_order, 0u);
    CHECK_EQ(t[1].bytes, 5000u);
    /* the reader enforces its own MaxMessageSize: a sender that ignores the announced
     * 1000 (forced here) gets its stream reset, as an Ergo TCP link is closed */
    t[0].peer->info.max_message_size = 0;
    CHECK_OK(gni_ergo_comp_send(ca, "beta@localhost", 7, true, frame(f, 200, 51), 200));
    static uint8_t big[2000];
    CHECK_OK(gni_ergo_comp_send(ca, "beta@localhost", 7, true, frame(big, sizeof big, 52),
                                sizeof big));
    CHECK(run_until(both_down, t, 8000));
    CHECK_EQ(t[1].last_down, GN_EFRAMESIZE);
    CHECK_EQ(t[1].frames, 51u); /* the frame before it arrived, the big one did not */
    gn_channel_rele(ch);
    node_down(&t[0]);
    node_down(&t[1]);
    node_down(&r);
    finish();
}

/* (b) */
GN_TEST(tcp_acceptor_by_name)
{
    setup();
    snprintf(regport_opt, sizeof regport_opt, "ergo.registrar_port=%u",
             (unsigned)(30000 + getpid() % 20000));
    tnode t[2];
    const char *oa[] = {"ergo.node=alpha@localhost", "ergo.cookie=golem-test-cookie",
                        "ergo.port=0", regport_opt};
    const char *ob[] = {"ergo.node=beta@localhost", "ergo.cookie=golem-test-cookie",
                        "ergo.port=0", regport_opt, "ergo.pool_size=3"};
    ergo_up(&t[1], 312, ob, 4 + 1, false);
    ergo_up(&t[0], 311, oa, 4, false);
    run_until(never, NULL, 200); /* both register (beta owns the registrar port) */
    gni_ergo_comp *ca = comp(&t[0]), *cb = comp(&t[1]);
    CHECK(gni_ergo_comp_port(ca) != 0 && gni_ergo_comp_port(cb) != 0);
    CHECK(gni_ergo_comp_endpoint(cb) != NULL);
    CHECK_OK(gni_ergo_comp_connect(ca, "beta@localhost"));
    CHECK(run_until(both_up, t, 8000));
    const gni_ergo_peer_info *ia = gni_ergo_peer_get_info(t[0].peer);
    CHECK_STR(ia->node, "beta@localhost");
    CHECK_EQ(ia->carrier, GNI_ERGO_CARRIER_TCP);
    CHECK(ia->initiator);
    CHECK(!gni_ergo_peer_get_info(t[1].peer)->initiator);
    CHECK(ia->dict && gn_edf_dict_count(ia->dict, GN_EDF_DICT_ERROR) > 0);
    /* the pool: the dialler joins PoolSize - 1 more links */
    for (int i = 0; i < 100 && gni_ergo_peer_links(t[0].peer) < 3; i++)
        run_until(never, NULL, 20);
    CHECK_EQ(gni_ergo_peer_links(t[0].peer), 3u);
    static uint8_t f[256];
    for (int64_t i = 1; i <= 300; i++) {
        CHECK_OK(gni_ergo_comp_send(ca, "beta@localhost", 7, true, frame(f, 64, i), 64));
        CHECK_OK(gni_ergo_comp_send(cb, "alpha@localhost", 7, true, frame(f, 200, i), 200));
    }
    fwant wb = {&t[1], 300}, wa = {&t[0], 300};
    CHECK(run_until(got_frames, &wb, 8000));
    CHECK(run_until(got_frames, &wa, 8000));
    CHECK_EQ(t[0].bad_order + t[1].bad_order, 0u);
    CHECK_EQ(t[1].bytes, 300u * 64u);
    CHECK_EQ(t[0].bytes, 300u * 200u);
    /* an unknown name does not resolve */
    CHECK_OK(gni_ergo_comp_connect(ca, "nobody@localhost"));
    CHECK(run_until(got_fail, &t[0], 8000));
    CHECK_EQ(t[0].fails, 1u);
    CHECK_EQ(t[0].last_fail, GN_ENOTFOUND);
    /* beta owns the registrar: its resolve is answered in-process, and still reported
     * from the loop, never from inside the call */
    CHECK_OK(gni_ergo_comp_connect(cb, "nobody@localhost"));
    CHECK_EQ(t[1].fails, 0u);
    CHECK(run_until(got_fail, &t[1], 8000));
    CHECK_EQ(t[1].last_fail, GN_ENOTFOUND);
    CHECK_EQ(gni_ergo_comp_connect(ca, "beta@localhost"), GN_EEXIST);
    gni_ergo_peer_close(t[0].peer);
    CHECK(run_until(both_down, t, 8000));
    node_down(&t[0]);
    node_down(&t[1]);
    finish();
}

/* ---- (c) and (d): start failures, seen in the log ------------------------------------------ */

static char logged[4096];
static void capture(void *ud, gn_log_level level, const char *c, const char *msg)
{
    (void)ud;
    if (level <= GN_LOG_ERR && !strcmp(c, "ergo"))
        snprintf(logged + strlen(logged), sizeof logged - strlen(logged), "%s\n", msg);
}

static bool got_log(void *arg) { return strstr(logged, arg) != NULL; }

/* starts a node with @opts and expects the component to refuse with a line holding @want */
static void refused(const char *const *opts, size_t n, const char *want)
{
    logged[0] = '\0';
    tnode t;
    ergo_up(&t, 320, opts, n, false);
    CHECK(run_until(got_log, (void *)want, 3000));
    CHECK(gni_ergo_comp_of(gn_node_host(t.n)) == NULL);
    node_down(&t);
}

GN_TEST(bad_options_named)
{
    setup();
    gn_log_set(capture, NULL, GN_LOG_ERR);
    const char *o1[] = {"ergo.node=alpha@localhost", "ergo.cookie=c", "ergo.port=99999"};
    refused(o1, 3, "ergo.port=99999: want an integer from 0 to 65535");
    const char *o2[] = {"ergo.node=alpha", "ergo.acceptor=off"};
    refused(o2, 2, "ergo.node=alpha: want name@host");
    const char *o3[] = {"ergo.node=alpha@localhost", "ergo.acceptor=on"};
    refused(o3, 2, "ergo.acceptor=on needs ergo.cookie");
    const char *o4[] = {"ergo.node=alpha@localhost", "ergo.acceptor=maybe"};
    refused(o4, 2, "ergo.acceptor=maybe: want on or off");
    const char *o5[] = {"ergo.node=alpha@localhost", "ergo.acceptor=off",
                        "ergo.max_message_size=12k"};
    refused(o5, 3, "ergo.max_message_size=12k");
    const char *o6[] = {"ergo.node=alpha@localhost", "ergo.acceptor=off", "ergo.pool_size=0"};
    refused(o6, 3, "ergo.pool_size=0");
    const char *o7[] = {"ergo.node="};
    refused(o7, 1, "ergo.node=: empty or too long");
    gn_log_set(NULL, NULL, GN_LOG_ERR);
    finish();
}

/* (d) */
GN_TEST(port_range_skips_a_taken_port)
{
    setup();
    /* hold a listening socket on some port P */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_OK(bind(fd, (struct sockaddr *)&sa, sizeof sa));
    CHECK_OK(listen(fd, 1));
    socklen_t sl = sizeof sa;
    CHECK_OK(getsockname(fd, (struct sockaddr *)&sa, &sl));
    unsigned p = ntohs(sa.sin_port);
    if (p > 65000) {
        close(fd);
        finish();
        SKIP("the kernel gave a port at the top of the range");
    }
    char port[64];
    snprintf(port, sizeof port, "ergo.port=%u", p);
    const char *o[] = {"ergo.node=alpha@localhost", "ergo.cookie=c", "ergo.registrar=off", port,
                       "ergo.port_range=8"};
    tnode t;
    ergo_up(&t, 330, o, 5, false);
    run_until(never, NULL, 50);
    gni_ergo_comp *c = gni_ergo_comp_of(gn_node_host(t.n));
    CHECK(c != NULL);
    unsigned got = gni_ergo_comp_port(c);
    CHECK(got > p && got < p + 8);
    node_down(&t);
    /* a range of one on the taken port: the start fails, naming the options */
    gn_log_set(capture, NULL, GN_LOG_ERR);
    const char *o1[] = {"ergo.node=alpha@localhost", "ergo.cookie=c", "ergo.registrar=off", port,
                        "ergo.port_range=1"};
    char want[96];
    snprintf(want, sizeof want, "ergo.port=%u, ergo.port_range=1: every port in use", p);
    refused(o1, 5, want);
    gn_log_set(NULL, NULL, GN_LOG_ERR);
    close(fd);
    finish();
}

/* ---- (e) the wiring ------------------------------------------------------------------------ */

/* a TLS acceptor dialled by name: the registrar's route says TLS */
GN_TEST(tls_acceptor_by_name)
{
    if (!GNI_HAVE_ERGO_TLS)
        SKIP("built without ergo_tls");
    setup();
    snprintf(regport_opt, sizeof regport_opt, "ergo.registrar_port=%u",
             (unsigned)(30000 + (getpid() + 7919) % 20000));
    tnode t[3];
    const char *ob[] = {"ergo.node=beta@localhost", "ergo.cookie=golem-test-cookie",
                        "ergo.port=0", regport_opt, "ergo.tls=on"};
    const char *oa[] = {"ergo.node=alpha@localhost", "ergo.cookie=golem-test-cookie",
                        "ergo.port=0", regport_opt, "ergo.tls_skip_verify=on"};
    const char *og[] = {"ergo.node=gamma@localhost", "ergo.cookie=golem-test-cookie",
                        "ergo.port=0", regport_opt};
    ergo_up(&t[1], 361, ob, 5, false);
    ergo_up(&t[0], 360, oa, 5, false);
    ergo_up(&t[2], 362, og, 4, false);
    run_until(never, NULL, 200); /* all register (beta owns the registrar port) */
    gni_ergo_comp *ca = comp(&t[0]), *cg = comp(&t[2]);
    comp(&t[1]);
    CHECK(gni_ergo_node_tls(gni_ergo_comp_endpoint(comp(&t[1]))));
    CHECK(!gni_ergo_node_tls(gni_ergo_comp_endpoint(ca)));
    /* gamma verifies certificates: the route made it dial TLS, and the self-signed
     * certificate is refused (a plain dial would fail differently, not resolve-wise) */
    CHECK_OK(gni_ergo_comp_connect(cg, "beta@localhost"));
    CHECK(run_until(got_fail, &t[2], 8000));
    CHECK_EQ(t[2].last_fail, GN_EHANDSHAKE); /* "certificate verification failed" */
    CHECK_EQ(t[2].ups, 0u);
    /* alpha skips verification: up over TLS, frames both ways */
    CHECK_OK(gni_ergo_comp_connect(ca, "beta@localhost"));
    CHECK(run_until(both_up, t, 8000));
    CHECK_EQ(gni_ergo_peer_get_info(t[0].peer)->carrier, GNI_ERGO_CARRIER_TCP);
    static uint8_t f[128];
    for (int64_t i = 1; i <= 20; i++)
        CHECK_OK(gni_ergo_comp_send(ca, "beta@localhost", 7, true, frame(f, 100, i), 100));
    fwant wb = {&t[1], 20};
    CHECK(run_until(got_frames, &wb, 8000));
    CHECK_EQ(t[1].bad_order, 0u);
    node_down(&t[2]);
    node_down(&t[0]);
    node_down(&t[1]);
    finish();
}

/* ergo.route: a static route with its own cookie, no registrar */
GN_TEST(static_route_option_with_cookie)
{
    setup();
    tnode t[2];
    const char *ob[] = {"ergo.node=beta@localhost", "ergo.cookie=beta-cookie", "ergo.port=0",
                        "ergo.registrar=off"};
    ergo_up(&t[1], 371, ob, 4, false);
    run_until(never, NULL, 50); /* the component starts */
    unsigned port = gni_ergo_comp_port(comp(&t[1]));
    CHECK(port != 0);
    char r1[160], r2[160];
    /* the heavier route (beta's cookie) is tried first; the other would fail the cookie */
    snprintf(r1, sizeof r1, "ergo.route=^beta@localhost$ 127.0.0.1:%u cookie=beta-cookie weight=5",
             port);
    snprintf(r2, sizeof r2, "ergo.route=^beta@ :%u weight=1", port);
    const char *oa[] = {"ergo.node=alpha@localhost", "ergo.cookie=alpha-cookie", "ergo.port=0",
                        "ergo.registrar=off", r2, r1};
    ergo_up(&t[0], 370, oa, 6, false);
    run_until(never, NULL, 50);
    gni_ergo_comp *ca = comp(&t[0]);
    CHECK_OK(gni_ergo_comp_connect(ca, "beta@localhost"));
    CHECK(run_until(both_up, t, 8000));
    CHECK_EQ(t[0].fails, 0u);
    CHECK_STR(gni_ergo_peer_get_info(t[0].peer)->node, "beta@localhost");
    /* no route matches and no registrar: nothing to try */
    CHECK_OK(gni_ergo_comp_connect(ca, "nobody@localhost"));
    CHECK(run_until(got_fail, &t[0], 8000));
    CHECK_EQ(t[0].last_fail, GN_ENOROUTE);
    node_down(&t[0]);
    node_down(&t[1]);
    finish();
}

/* stopping with a connect by name waiting on the registrar: it ends quietly (no report,
 * nothing used after the close; ASan checks the latter) */
GN_TEST(stop_while_resolving)
{
    setup();
    /* a registrar port held by the test that never answers: TCP listen + UDP */
    int tfd = socket(AF_INET, SOCK_STREAM, 0), ufd = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(tfd >= 0 && ufd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
    CHECK_OK(bind(ufd, (struct sockaddr *)&sa, sizeof sa));
    socklen_t sl = sizeof sa;
    CHECK_OK(getsockname(ufd, (struct sockaddr *)&sa, &sl));
    CHECK_OK(bind(tfd, (struct sockaddr *)&sa, sizeof sa));
    CHECK_OK(listen(tfd, 4));
    char rp[64];
    snprintf(rp, sizeof rp, "ergo.registrar_port=%u", (unsigned)ntohs(sa.sin_port));
    const char *oa[] = {"ergo.node=alpha@localhost", "ergo.cookie=c", "ergo.port=0", rp};
    tnode t;
    ergo_up(&t, 390, oa, 4, false);
    run_until(never, NULL, 50);
    gni_ergo_comp *c = comp(&t);
    CHECK_OK(gni_ergo_comp_connect(c, "beta@localhost")); /* UDP resolve: no answer for 3 s */
    run_until(never, NULL, 100);
    CHECK_EQ(t.fails, 0u);
    node_down(&t);
    run_until(never, NULL, 50);
    CHECK_EQ(t.fails, 0u);
    close(tfd);
    close(ufd);
    finish();
}

#if GNI_HAVE_ERGO_ETCD
typedef struct retry_ctx {
    tnode *t;
    gni_ergo_comp *c;
    unsigned tries;
} retry_ctx;

/* connects by name until it is up; a failure (not registered yet) asks again */
static bool up_retrying(void *arg)
{
    retry_ctx *r = arg;
    if (r->t->peer)
        return true;
    if (r->t->fails > 0 && r->tries < 50) {
        r->t->fails = 0;
        r->tries++;
        CHECK_OK(gni_ergo_comp_connect(r->c, "beta@localhost"));
    }
    return false;
}
#endif

/* ergo.registrar=etcd: register and dial by name through a real etcd */
GN_TEST(etcd_registrar_by_name)
{
#if !GNI_HAVE_ERGO_ETCD
    SKIP("built without ergo_etcd");
#else
    if (!find_etcd())
        SKIP("no etcd binary (apt-get install etcd-server)");
    CHECK(etcd_start());
    setup();
    char ep[96];
    snprintf(ep, sizeof ep, "ergo.etcd=%s", endpoint);
    tnode t[2];
    const char *ob[] = {"ergo.node=beta@localhost", "ergo.cookie=golem-test-cookie",
                        "ergo.port=0", "ergo.registrar=etcd", ep, "ergo.etcd_cluster=wire"};
    const char *oa[] = {"ergo.node=alpha@localhost", "ergo.cookie=golem-test-cookie",
                        "ergo.port=0", "ergo.registrar=etcd", ep, "ergo.etcd_cluster=wire"};
    ergo_up(&t[1], 381, ob, 6, false);
    ergo_up(&t[0], 380, oa, 6, false);
    run_until(never, NULL, 50);
    gni_ergo_comp *ca = comp(&t[0]);
    comp(&t[1]);
    /* the key is written once etcd answers: ask until it resolves (bounded: 50 tries) */
    CHECK_OK(gni_ergo_comp_connect(ca, "beta@localhost"));
    retry_ctx r = {&t[0], ca, 0};
    CHECK(run_until(up_retrying, &r, 15000));
    CHECK(run_until(both_up, t, 8000));
    CHECK_EQ(gni_ergo_peer_get_info(t[0].peer)->carrier, GNI_ERGO_CARRIER_TCP);
    /* a name nobody registered is not found */
    t[0].fails = 0;
    CHECK_OK(gni_ergo_comp_connect(ca, "nobody@localhost"));
    CHECK(run_until(got_fail, &t[0], 8000));
    CHECK_EQ(t[0].last_fail, GN_ENOTFOUND);
    node_down(&t[0]);
    node_down(&t[1]);
    run_until(never, NULL, 500); /* the lease revokes finish */
    finish();
    etcd_stop();
#endif
}

GN_TEST(bad_route_options_named)
{
    setup();
    gn_log_set(capture, NULL, GN_LOG_ERR);
    const char *o1[] = {"ergo.route=^x@ 127.0.0.1:99999"};
    refused(o1, 1, "ergo.route=^x@ 127.0.0.1:99999: '99999': want an integer from 1 to 65535");
    const char *o2[] = {"ergo.route=( 127.0.0.1:5"};
    refused(o2, 1, "ergo.route=( 127.0.0.1:5: '(': not a POSIX extended regular expression");
    const char *o3[] = {"ergo.route=^x@ 127.0.0.1:5 cookies=a"};
    refused(o3, 1, "'cookies=a': unknown part");
    const char *o4[] = {"ergo.route=^x@"};
    refused(o4, 1, "ergo.route=^x@: want '<pattern> <host>:<port>|resolver");
    const char *o5[] = {"ergo.route=^x@ 127.0.0.1", "ergo.acceptor=off"};
    refused(o5, 2, "'127.0.0.1': want <host>:<port> or resolver");
    const char *o6[] = {"ergo.route=^x@ :5", "ergo.route=^x@ resolver"};
    refused(o6, 2, "ergo.route=^x@ resolver: '^x@': this pattern is given twice");
    const char *o7[] = {"ergo.registrar=maybe"};
    refused(o7, 1, "ergo.registrar=maybe: want embedded, etcd or off");
    const char *o8[] = {"ergo.tls=on", "ergo.tls_cert=/x.pem"};
    refused(o8, 2, "ergo.tls_cert and ergo.tls_key go together");
    const char *o9[] = {"ergo.etcd=127.0.0.1:2379"};
    refused(o9, 1, "ergo.etcd and ergo.etcd_cluster need ergo.registrar=etcd");
    if (GNI_HAVE_ERGO_TLS) {
        const char *o11[] = {"ergo.node=alpha@localhost", "ergo.cookie=c", "ergo.port=0",
                             "ergo.registrar=off", "ergo.tls=on", "ergo.tls_cert=/nonexistent.pem",
                             "ergo.tls_key=/nonexistent.pem"};
        refused(o11, 7, "ergo.tls_key=/nonexistent.pem: cannot read the PEM files");
    }
    if (!GNI_HAVE_ERGO_ETCD) {
        const char *o10[] = {"ergo.registrar=etcd"};
        refused(o10, 1, "ergo.registrar=etcd: this build has no etcd registrar");
    }
    gn_log_set(NULL, NULL, GN_LOG_ERR);
    finish();
}

#if GNI_HAVE_ERGO_ETCD
static void cleanup(void) { etcd_stop(); }
#endif

int main(int argc, char **argv)
{
#if GNI_HAVE_ERGO_ETCD
    atexit(cleanup);
#endif
    static const gn_test_case cases[] = {
        GN_T(channel_frames_both_ways), GN_T(default_name_is_the_peer_id),
        GN_T(same_side_newer_stream_replaces_the_older),
        GN_T(channel_through_a_relay), GN_T(tcp_acceptor_by_name), GN_T(bad_options_named),
        GN_T(port_range_skips_a_taken_port), GN_T(tls_acceptor_by_name),
        GN_T(static_route_option_with_cookie), GN_T(stop_while_resolving),
        GN_T(etcd_registrar_by_name),
        GN_T(bad_route_options_named)};
    return gn_test_run(cases, sizeof cases / sizeof cases[0], argc, argv);
}
