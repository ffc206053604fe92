/*
 * The `autonat` component on real nodes: TCP on 127.0.0.1, one loop.
 *  - a client connected to two servers learns PUBLIC (both dial it back)
 *    and the application gets GN_NODE_EV_REACHABILITY; a client whose
 *    DIAL carries only a closed port learns PRIVATE;
 *  - the server, asked by a hand-made client (raw streams and the wire
 *    core's encoder): a PeerInfo id that is not the stream's peer gets
 *    E_BAD_REQUEST; addresses on another IP than the observed one, and
 *    relayed ones, are never dialled (the client listens on 0.0.0.0, so a
 *    dial of 127.0.0.2 would succeed: the answer's address and the
 *    client's channel count show it was not made); a closed port gets
 *    E_DIAL_ERROR; the per-peer rate limit refuses with E_DIAL_REFUSED;
 *    an address on 0.0.0.0 is dialled on the observed IP;
 *  - a dial-back that hangs (a listener that never answers) ends with
 *    E_DIAL_ERROR after dial_timeout_ms; a second request of the same peer
 *    meanwhile is refused; nodes closed while requests run (ASan build).
 */
#include "../../conformance/conf_node.h"

#include "autonat_msg.h"
#include "gni.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct reach {
    int events;
    int status;
    char addr[GN_NODE_ADDR_MAX];
} reach;

/* Pops @t's events: reachability into @r, the rest into cn_node counters. */
static bool poll_reach(cn_node *t, reach *r)
{
    gn_node_event ev;
    while (t->n && gn_node_next_event(t->n, &ev, 0) == 0) {
        switch (ev.type) {
        case GN_NODE_EV_REACHABILITY:
            r->events++;
            r->status = ev.status;
            snprintf(r->addr, sizeof r->addr, "%s", ev.addr);
            break;
        case GN_NODE_EV_CHANNEL_OPENED:
            t->opened++;
            break;
        case GN_NODE_EV_CHANNEL_CLOSED:
            t->closed_channels++;
            break;
        default:
            break;
        }
        gn_rcbuf_rele(ev.message);
    }
    return true;
}

static const char *const lo[] = {"/ip4/127.0.0.1/tcp/0"};

static void server_up(cn_node *s, uint32_t seed, const char *extra)
{
    const char *opts[2] = {"autonat.client=false", extra};
    cn_up(s, seed,
          &(cn_opts){.protocols = "autonat", .options = opts, .n_options = extra ? 2 : 1,
                     .listen = lo, .n_listen = 1});
}

GN_TEST(client_learns_public_then_private)
{
    cn_setup();
    cn_node s1, s2, c, d;
    server_up(&s1, 1, NULL);
    server_up(&s2, 2, NULL);
    /* the first round waits 500 ms after the first identified server: both are
     * connected and identified by then, so both are asked */
    const char *copts[] = {"autonat.server=false", "autonat.boot_delay_ms=500",
                           "autonat.dial_timeout_ms=3000"};
    cn_up(&c, 3,
          &(cn_opts){.protocols = "autonat", .options = copts, .n_options = 3, .listen = lo,
                     .n_listen = 1});
    CHECK_EQ(gn_host_reachability(gn_node_host(c.n)), GN_REACH_UNKNOWN);
    CHECK_EQ(cn_dial(&c, s1.addr, NULL), 0);
    CHECK_EQ(cn_dial(&c, s2.addr, NULL), 0);
    reach rc = {0};
    CN_RUN_UNTIL(poll_reach(&c, &rc) && rc.events > 0, 10000);
    CHECK_EQ(rc.events, 1);
    CHECK_EQ(rc.status, GN_REACH_PUBLIC);
    CHECK_STR(rc.addr, c.bare); /* the listen address was dialled back */
    CHECK_EQ(gn_host_reachability(gn_node_host(c.n)), GN_REACH_PUBLIC);
    /* the servers closed their dial-back channels: c has only its own two left */
    CN_RUN_UNTIL(poll_reach(&c, &rc) && c.opened - c.closed_channels == 2, 5000);
    CHECK_EQ(c.opened, 4);
    /* the servers, client=false, never asked anyone */
    reach r1 = {0};
    CN_RUN_FOR(200);
    poll_reach(&s1, &r1);
    CHECK_EQ(r1.events, 0);

    /* d's DIAL carries only a closed port: both servers fail to dial it */
    /* (and its dials leave from ephemeral ports, as behind a NAT that does
     * not keep them: the channel's own address is no way back either) */
    const char *dopts[] = {"autonat.server=false", "autonat.boot_delay_ms=100",
                           "autonat.dial_timeout_ms=3000", "autonat.test_addr=/ip4/127.0.0.1/tcp/1",
                           "tcp.port_reuse=false"};
    cn_up(&d, 4,
          &(cn_opts){.protocols = "autonat", .options = dopts, .n_options = 5, .listen = lo,
                     .n_listen = 1});
    CHECK_EQ(cn_dial(&d, s1.addr, NULL), 0);
    CHECK_EQ(cn_dial(&d, s2.addr, NULL), 0);
    reach rd = {0};
    CN_RUN_UNTIL(poll_reach(&d, &rd) && rd.events > 0, 10000);
    CHECK_EQ(rd.events, 1);
    CHECK_EQ(rd.status, GN_REACH_PRIVATE);
    CHECK_EQ(gn_host_reachability(gn_node_host(d.n)), GN_REACH_PRIVATE);

    cn_close(&d);
    cn_close(&c);
    cn_close(&s2);
    cn_close(&s1);
    cn_free(&d);
    cn_free(&c);
    cn_free(&s2);
    cn_free(&s1);
    cn_finish();
}

/* ---- a hand-made client ---- */

typedef struct raw {
    int opened, status, done;
    gn_stream *s;
    uint8_t out[GNI_AUTONAT_FRAME_MAX];
    gni_lp_reader rd;
    gni_autonat_msg m;
    int decoded;
} raw;

static void raw_data(gn_stream *s, void *ud, const uint8_t *data, size_t len)
{
    (void)s;
    raw *r = ud;
    while (len > 0 && !r->done) {
        size_t used, mlen;
        const uint8_t *msg;
        int rc = gni_lp_reader_feed(&r->rd, data, len, &used, &msg, &mlen);
        if (rc < 0) {
            r->decoded = rc;
            r->done = 1;
            return;
        }
        data += used;
        len -= used;
        if (rc == 1) {
            r->decoded = gni_autonat_decode(msg, mlen, &r->m);
            r->done = 1;
        }
    }
}

static void raw_eof(gn_stream *s, void *ud)
{
    (void)s;
    raw *r = ud;
    if (!r->done) {
        r->decoded = GN_EPROTO;
        r->done = 1;
    }
}

static void raw_error(gn_stream *s, void *ud, int err)
{
    (void)s;
    raw *r = ud;
    if (!r->done) {
        r->decoded = err;
        r->done = 1;
    }
}

static const gn_stream_handler raw_handler = {
    .on_data = raw_data, .on_eof = raw_eof, .on_error = raw_error};

static void raw_opened(void *arg, int status, gn_stream *s)
{
    raw *r = arg;
    r->opened = 1;
    r->status = status;
    r->s = s;
}

/* The last answer's statusText. */
static char g_text[GNI_AUTONAT_MAX_TEXT + 1];

/* Sends a DIAL for @id with @addrs (strings) over @ch; returns the answer's
 * status (or a negative error); *@addr_out gets the answer's address. */
static int raw_ask(gn_channel *ch, const gn_peer_id *id, const char *const *addrs, size_t n,
                   char *addr_out, size_t addr_len)
{
    raw r;
    memset(&r, 0, sizeof r);
    gni_lp_reader_init(&r.rd, GNI_AUTONAT_MAX_MSG_LEN);
    CHECK_OK(gn_channel_open_stream(ch, GNI_AUTONAT_PROTOCOL_ID, raw_opened, &r));
    CN_RUN_UNTIL(r.opened, 5000);
    CHECK_EQ(r.status, 0);
    gn_multiaddr *mas[8];
    CHECK(n <= 8);
    for (size_t i = 0; i < n; i++) {
        CHECK_OK(gn_multiaddr_parse(addrs[i], &mas[i]));
    }
    size_t len;
    CHECK_OK(gni_autonat_encode_dial(id, (const gn_multiaddr *const *)mas, n, r.out,
                                     sizeof r.out, &len));
    for (size_t i = 0; i < n; i++) {
        gn_multiaddr_free(mas[i]);
    }
    gn_stream_set_handler(r.s, &raw_handler, &r);
    gn_slice iov = gn_slice_of(r.out, len);
    CHECK_OK(gn_stream_write(r.s, &iov, 1, NULL, NULL));
    CHECK_OK(gn_stream_read_start(r.s));
    CN_RUN_UNTIL(r.done, 10000);
    gn_stream_close(r.s, NULL, NULL);
    CN_RUN_FOR(50);
    gni_lp_reader_clear(&r.rd);
    int ret = r.decoded < 0 ? r.decoded : (int)r.m.status;
    snprintf(g_text, sizeof g_text, "%s", r.decoded == 0 ? r.m.status_text : "");
    if (r.decoded == 0) {
        CHECK_EQ(r.m.type, GNI_AUTONAT_DIAL_RESPONSE);
    }
    if (addr_out) {
        addr_out[0] = '\0';
        if (r.decoded == 0 && r.m.addr) {
            CHECK(gn_multiaddr_to_string(r.m.addr, addr_out, addr_len) >= 0);
        }
    }
    gni_autonat_msg_fini(&r.m);
    return ret;
}

GN_TEST(server_checks_and_limits)
{
    cn_setup();
    cn_node s, c;
    /* only the addresses the DIAL lists (not the channel's own address) */
    const char *sopts[] = {"autonat.client=false", "autonat.peer_dials_per_min=3",
                           "autonat.dial_observed=false"};
    cn_up(&s, 11,
          &(cn_opts){.protocols = "autonat", .options = sopts, .n_options = 3, .listen = lo,
                     .n_listen = 1});
    static const char *const any[] = {"/ip4/0.0.0.0/tcp/0"};
    cn_up(&c, 12, &(cn_opts){.listen = any, .n_listen = 1});
    /* c's port */
    gn_multiaddr *la;
    CHECK_OK(gn_multiaddr_parse(c.bare, &la));
    gn_ma_component tc;
    CHECK(gn_multiaddr_find(la, GN_MA_TCP, &tc) >= 0);
    char port[16];
    CHECK(gn_ma_component_value_string(&tc, port, sizeof port) > 0);
    gn_multiaddr_free(la);
    char on_lo[64], on_lo2[64], relayed[256], closed[64];
    snprintf(on_lo, sizeof on_lo, "/ip4/127.0.0.1/tcp/%s", port);
    snprintf(on_lo2, sizeof on_lo2, "/ip4/127.0.0.2/tcp/%s", port);
    snprintf(relayed, sizeof relayed, "/ip4/127.0.0.1/tcp/%s/p2p/%s/p2p-circuit", port,
             s.pid_str);
    snprintf(closed, sizeof closed, "/ip4/127.0.0.1/tcp/1");

    gn_channel *ch;
    CHECK_EQ(cn_dial(&c, s.addr, &ch), 0);
    reach rr = {0};
    poll_reach(&c, &rr);
    int base = c.opened;
    char got[GN_NODE_ADDR_MAX];

    /* a PeerInfo id that is not the stream's peer */
    gn_peer_id other;
    cn_unknown_peer(&other);
    const char *a1[] = {on_lo};
    CHECK_EQ(raw_ask(ch, &other, a1, 1, got, sizeof got), GNI_AUTONAT_E_BAD_REQUEST);
    /* another IP only, and a relayed address on the right IP: nothing to dial */
    const char *a2[] = {on_lo2, relayed};
    CHECK_EQ(raw_ask(ch, &c.pid, a2, 2, got, sizeof got), GNI_AUTONAT_E_DIAL_REFUSED);
    CHECK_STR(g_text, "no dialable addresses");
    CN_RUN_FOR(200);
    poll_reach(&c, &rr);
    CHECK_EQ(c.opened, base); /* no dial-back reached c */

    /* 127.0.0.2 first (it would answer: c listens on 0.0.0.0), then the observed IP */
    const char *a3[] = {on_lo2, on_lo};
    CHECK_EQ(raw_ask(ch, &c.pid, a3, 2, got, sizeof got), GNI_AUTONAT_OK);
    CHECK_STR(got, on_lo);
    CN_RUN_UNTIL(poll_reach(&c, &rr) && c.opened == base + 1, 2000);
    CHECK_EQ(c.opened, base + 1);

    /* c's listen address as it announces it, 0.0.0.0: dialled on the observed IP */
    char unspec[64];
    snprintf(unspec, sizeof unspec, "/ip4/0.0.0.0/tcp/%s", port);
    const char *a5[] = {unspec};
    CHECK_EQ(raw_ask(ch, &c.pid, a5, 1, got, sizeof got), GNI_AUTONAT_OK);
    CHECK_STR(got, on_lo);
    CN_RUN_UNTIL(poll_reach(&c, &rr) && c.opened == base + 2, 2000);
    CHECK_EQ(c.opened, base + 2);

    /* a closed port: E_DIAL_ERROR (the third dial of the minute) */
    const char *a4[] = {closed};
    CHECK_EQ(raw_ask(ch, &c.pid, a4, 1, got, sizeof got), GNI_AUTONAT_E_DIAL_ERROR);
    /* the fourth: the per-peer limit (3 a minute) refuses */
    CHECK_EQ(raw_ask(ch, &c.pid, a1, 1, got, sizeof got), GNI_AUTONAT_E_DIAL_REFUSED);
    CHECK_STR(g_text, "peer rate limit");
    CN_RUN_FOR(200);
    poll_reach(&c, &rr);
    CHECK_EQ(c.opened, base + 2);

    gn_channel_rele(ch);
    cn_close(&c);
    cn_close(&s);
    cn_free(&c);
    cn_free(&s);
    cn_finish();
}

/* A TCP listener that never answers: connections complete in the kernel's
 * backlog and the security handshake waits. Returns the fd; *@port its port. */
static int hang_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    CHECK_EQ(listen(fd, 16), 0);
    socklen_t sl = sizeof sa;
    CHECK_EQ(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

GN_TEST(dial_timeout_busy_peer_and_close_mid_request)
{
    cn_setup();
    int port;
    int fd = hang_listener(&port);
    char hang[64], hang_opt[96];
    snprintf(hang, sizeof hang, "/ip4/127.0.0.1/tcp/%d", port);
    snprintf(hang_opt, sizeof hang_opt, "autonat.test_addr=%s", hang);
    cn_node s, c;
    server_up(&s, 31, "autonat.dial_timeout_ms=1500");
    const char *copts[] = {"autonat.server=false", "autonat.boot_delay_ms=100",
                           "autonat.interval_ms=300", hang_opt, "tcp.port_reuse=false"};
    cn_up(&c, 32,
          &(cn_opts){.protocols = "autonat", .options = copts, .n_options = 5, .listen = lo,
                     .n_listen = 1});
    gn_channel *ch;
    CHECK_EQ(cn_dial(&c, s.addr, &ch), 0);
    /* c's first DIAL is being served (the dial-back hangs in the handshake):
     * another request of the same peer is refused */
    CN_RUN_FOR(600);
    const char *a[] = {hang};
    CHECK_EQ(raw_ask(ch, &c.pid, a, 1, NULL, 0), GNI_AUTONAT_E_DIAL_REFUSED);
    CHECK_STR(g_text, "a request of this peer is running");
    /* the server gives up after dial_timeout_ms: E_DIAL_ERROR, the only server's vote */
    reach rc = {0};
    CN_RUN_UNTIL(poll_reach(&c, &rc) && rc.events > 0, 5000);
    CHECK_EQ(rc.status, GN_REACH_PRIVATE);
    /* the next round (interval 300 ms) starts; close both while it runs */
    CN_RUN_FOR(600);
    gn_channel_rele(ch);
    cn_close(&c);
    cn_close(&s);
    cn_free(&c);
    cn_free(&s);
    close(fd);
    cn_finish();
}

GN_TEST(global_rate_limit)
{
    cn_setup();
    cn_node s, c;
    server_up(&s, 41, "autonat.max_dials_per_min=1");
    cn_up_listening(&c, 42, NULL);
    gn_channel *ch;
    CHECK_EQ(cn_dial(&c, s.addr, &ch), 0);
    const char *a[] = {c.bare};
    CHECK_EQ(raw_ask(ch, &c.pid, a, 1, NULL, 0), GNI_AUTONAT_OK);
    /* the per-peer limit (3) would allow it; the node-wide one (1) does not */
    CHECK_EQ(raw_ask(ch, &c.pid, a, 1, NULL, 0), GNI_AUTONAT_E_DIAL_REFUSED);
    CHECK_STR(g_text, "global rate limit");
    gn_channel_rele(ch);
    cn_close(&c);
    cn_close(&s);
    cn_free(&c);
    cn_free(&s);
    cn_finish();
}

GN_TEST(options_are_checked)
{
    cn_setup();
    cn_node s;
    memset(&s, 0, sizeof s);
    const char *bad[] = {"autonat.threshold=0"};
    /* cn_up checks that the start did not fail; build the node by hand */
    CHECK_OK(gn_identity_from_int_seed(21, &s.id));
    gn_node_config cfg;
    gn_node_config_default(&cfg);
    cfg.identity = s.id;
    cfg.loop = cn_loop;
    cfg.transports = "tcp";
    cfg.routers = cfg.discovery = cfg.nat = "";
    cfg.protocol_components = "autonat";
    cfg.options = bad;
    cfg.n_options = 1;
    CHECK_OK(gn_node_new(&cfg, &s.n));
    CHECK_OK(gn_node_start(s.n));
    CN_RUN_UNTIL(cn_poll(&s) && s.start_failed > 0, 5000);
    CHECK_EQ(s.start_failed, 1);
    cn_close(&s);
    cn_free(&s);
    cn_finish();
}

GN_TEST_MAIN(GN_T(client_learns_public_then_private), GN_T(server_checks_and_limits),
             GN_T(dial_timeout_busy_peer_and_close_mid_request), GN_T(global_rate_limit),
             GN_T(options_are_checked))
