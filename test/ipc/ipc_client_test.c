/*
 * The C IPC client (include/golemnet/ipc.h) against real daemons: two
 * nodes on loopback TCP (Noise, yamux), each served by an in-process
 * control server (golemnet/ipcd.h) on a Unix socket in a fresh directory.
 * Everything the tests do to the nodes goes through clients.
 *
 * The fixture is built by the first test and torn down by the last (a
 * failed CHECK abandons its test, so per-test teardown would leak).
 */
#include "golemnet/golemnet.h"
#include "golemnet/ipc.h"
#include "golemnet/ipcd.h"

#include "gn_test.h"

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#define T_S (10 * GN_S)

typedef struct daemon_fx {
    gn_node *node;
    gn_ipcd *srv;
    char sock[256];
    gn_peer_id id;
    char addr[GN_NODE_ADDR_MAX]; /* a listen address with /p2p/ */
    atomic_int closed;
} daemon_fx;

static char dir[64];
static daemon_fx fa, fb;

static void srv_closed(void *arg)
{
    atomic_store(&((daemon_fx *)arg)->closed, 1);
}

static int daemon_up(daemon_fx *f, const char *name)
{
    gn_node_config cfg;
    gn_node_config_default(&cfg);
    const char *listen[] = {"/ip4/127.0.0.1/tcp/0"};
    cfg.listen = listen;
    cfg.n_listen = 1;
    cfg.protocols = GN_NODE_PROTO_DEFAULT | GN_NODE_PROTO_ECHO;
    cfg.routers = "";
    cfg.discovery = "";
    cfg.nat = "";
    int rc = gn_node_new(&cfg, &f->node);
    if (rc < 0 || (rc = gn_node_start(f->node)) < 0) {
        return rc;
    }
    snprintf(f->sock, sizeof f->sock, "%s/%s.sock", dir, name);
    gn_ipcd_config sc;
    gn_ipcd_config_default(&sc);
    sc.address = f->sock;
    sc.tcp_address = "/ip4/127.0.0.1/tcp/0"; /* a second, loopback TCP control address */
    char err[256] = "";
    rc = gn_ipcd_new(f->node, &sc, &f->srv, err, sizeof err);
    if (rc < 0) {
        printf("# gn_ipcd_new: %s\n", err);
    }
    return rc;
}

static void daemon_down(daemon_fx *f)
{
    if (f->srv) {
        gn_ipcd_close(f->srv, 0, srv_closed, f);
        for (int i = 0; i < 1000 && !atomic_load(&f->closed); i++) {
            usleep(5000);
        }
        f->srv = NULL;
    }
    if (f->node) {
        gn_node_close(f->node, NULL, NULL);
        gn_node_free(f->node);
        f->node = NULL;
    }
    char lk[sizeof f->sock + 8];
    snprintf(lk, sizeof lk, "%s.lock", f->sock);
    unlink(lk); /* left by the listener (ipc_sock_uv.c) */
}

static gn_ipc_client *client(const daemon_fx *f)
{
    gn_ipc_options o;
    gn_ipc_options_default(&o);
    o.timeout = T_S;
    gn_ipc_client *c = NULL;
    int rc = gn_ipc_connect(f->sock, &o, &c);
    if (rc < 0) {
        printf("# connect %s: %s\n", f->sock, gn_err_name(rc));
    }
    return c;
}

/* Pops events of @c until one of @type (and, if not 0, @channel) comes: 0 or an error. */
static int wait_event(gn_ipc_client *c, gn_node_event_type type, gn_node_event *out)
{
    gn_time end = gn_now() + T_S;
    while (gn_now() < end) {
        gn_node_event ev;
        int rc = gn_ipc_next_event(c, &ev, end - gn_now());
        if (rc < 0) {
            return rc;
        }
        if (ev.type == type) {
            *out = ev;
            return 0;
        }
        if (ev.message) {
            gn_rcbuf_rele(ev.message);
        }
    }
    return GN_ETIMEDOUT;
}

GN_TEST(fixture_up)
{
    snprintf(dir, sizeof dir, "/tmp/gnipcc-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    CHECK_OK(daemon_up(&fa, "a"));
    CHECK_OK(daemon_up(&fb, "b"));
    daemon_fx *fs[2] = {&fa, &fb};
    for (int i = 0; i < 2; i++) {
        gn_ipc_client *c = client(fs[i]);
        CHECK(c != NULL);
        gn_ipc_strv addrs = {0};
        /* the listener is up once identify lists it */
        for (int k = 0; k < 200 && addrs.n == 0; k++) {
            gn_ipc_strv_free(&addrs);
            CHECK_OK(gn_ipc_identify(c, &fs[i]->id, &addrs));
            if (addrs.n == 0) {
                usleep(10000);
            }
        }
        CHECK(addrs.n > 0);
        gn_peer_id want;
        gn_node_peer_id(fs[i]->node, &want);
        CHECK_EQ(want.len, fs[i]->id.len);
        CHECK_MEM(want.bytes, fs[i]->id.bytes, want.len);
        char id[GN_PEER_ID_MAX_STRLEN];
        CHECK_OK(gn_peer_id_to_string(&want, id, sizeof id));
        if (strstr(addrs.v[0], "/p2p/")) {
            snprintf(fs[i]->addr, sizeof fs[i]->addr, "%s", addrs.v[0]);
        } else {
            snprintf(fs[i]->addr, sizeof fs[i]->addr, "%s/p2p/%s", addrs.v[0], id);
        }
        gn_ipc_strv_free(&addrs);
        CHECK(gn_ipc_daemon_version(c)[0] != '\0');
        gn_ipc_free(c);
    }
}

GN_TEST(connect_errors_name_the_problem)
{
    gn_ipc_client *c = (gn_ipc_client *)1;
    char path[100];
    snprintf(path, sizeof path, "%s/nobody.sock", dir);
    CHECK_EQ(gn_ipc_connect(path, NULL, &c), GN_ENOTFOUND);
    CHECK(c == NULL);
    CHECK_EQ(gn_ipc_connect("/ip4/10.1.2.3/tcp/4001", NULL, &c), GN_EACCES);
    CHECK_EQ(gn_ipc_connect("/dns4/localhost/tcp/4001", NULL, &c), GN_EACCES);
    /* a stale socket file: nobody listens */
    snprintf(path, sizeof path, "%s/stale.sock", dir);
    {
        /* bound, then closed without unlinking: what a crashed daemon leaves */
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un su = {.sun_family = AF_UNIX};
        snprintf(su.sun_path, sizeof su.sun_path, "%s", path);
        CHECK(fd >= 0);
        CHECK_EQ(bind(fd, (struct sockaddr *)&su, sizeof su), 0);
        close(fd);
    }
    CHECK_EQ(gn_ipc_connect(path, NULL, &c), GN_ECONNREFUSED);
    unlink(path);
    gn_ipc_options o;
    gn_ipc_options_default(&o);
    o.event_queue_capacity = 0;
    CHECK_EQ(gn_ipc_connect(fa.sock, &o, &c), GN_EINVAL);
    /* the loopback TCP control address, and the /unix/ form of the path */
    const char *tcp = gn_ipcd_address(fa.srv, 1);
    CHECK(tcp && !strncmp(tcp, "/ip4/127.0.0.1/tcp/", 19));
    CHECK_OK(gn_ipc_connect(tcp, NULL, &c));
    gn_peer_id p;
    CHECK_OK(gn_ipc_identify(c, &p, NULL));
    CHECK_EQ(p.len, fa.id.len);
    gn_ipc_free(c);
    char ma[300];
    snprintf(ma, sizeof ma, "/unix%s", fa.sock);
    CHECK_OK(gn_ipc_connect(ma, NULL, &c));
    gn_ipc_free(c);
    char def[GN_IPC_PATH_MAX];
    CHECK(gn_ipc_default_socket(def, sizeof def) > 0);
    CHECK(strstr(def, "golemnet") != NULL);
    CHECK_EQ(gn_ipc_default_socket(def, 4), GN_ENOSPC);
}

GN_TEST(dial_message_events_both_ways)
{
    gn_ipc_client *a = client(&fa), *b = client(&fb);
    CHECK(a && b);
    CHECK_OK(gn_ipc_subscribe(a, GN_IPC_EVENTS_ALL));
    CHECK_OK(gn_ipc_subscribe(b, GN_IPC_EVENT_BIT(GN_NODE_EV_MESSAGE)));
    gn_ipc_dial_result r;
    CHECK_OK(gn_ipc_dial(a, fb.addr, &r));
    CHECK(r.channel_id != 0);
    CHECK_EQ(r.peer.len, fb.id.len);
    CHECK_MEM(r.peer.bytes, fb.id.bytes, r.peer.len);
    gn_node_event ev;
    CHECK_OK(wait_event(a, GN_NODE_EV_CHANNEL_OPENED, &ev));
    CHECK_EQ(ev.channel_id, r.channel_id);

    gn_channel_info *v = NULL;
    size_t n = 0;
    CHECK_OK(gn_ipc_peers(a, &v, &n));
    bool found = false;
    for (size_t i = 0; i < n; i++) {
        found = found || (v[i].id == r.channel_id && v[i].state == GN_CHANNEL_OPEN &&
                          !strcmp(v[i].muxer, "/yamux/1.0.0"));
    }
    gn_free(v);
    CHECK(found);
    gn_channel_info info;
    CHECK_EQ(gn_ipc_channel_state(a, r.channel_id, &info), GN_CHANNEL_OPEN);
    CHECK_EQ(info.direction, GN_DIR_OUTBOUND);
    CHECK_EQ(gn_ipc_channel_state(a, 999999, &info), GN_ENOTFOUND);
    char msg[GN_IPC_ERROR_MAX];
    CHECK(gn_ipc_last_error(a, msg, sizeof msg) > 0);

    /* a -> b on the channel; b's client gets the message event */
    CHECK_OK(gn_ipc_channel_send(a, r.channel_id, (const uint8_t *)"hello b", 7));
    CHECK_OK(wait_event(b, GN_NODE_EV_MESSAGE, &ev));
    gn_slice s = gn_rcbuf_slice(ev.message);
    CHECK_EQ(s.len, 7);
    CHECK_MEM(s.base, "hello b", 7);
    CHECK_EQ(ev.peer.len, fa.id.len);
    gn_rcbuf_rele(ev.message);
    /* b -> a by peer ID */
    char aid[GN_PEER_ID_MAX_STRLEN];
    CHECK_OK(gn_peer_id_to_string(&fa.id, aid, sizeof aid));
    uint64_t req = 0;
    CHECK_OK(gn_ipc_unicast(b, aid, (const uint8_t *)"hi a", 4, &req));
    CHECK(req != 0);
    CHECK_OK(wait_event(a, GN_NODE_EV_MESSAGE, &ev));
    s = gn_rcbuf_slice(ev.message);
    CHECK_EQ(s.len, 4);
    CHECK_MEM(s.base, "hi a", 4);
    gn_rcbuf_rele(ev.message);

    gn_time rtt = 0;
    CHECK_OK(gn_ipc_channel_ping(a, r.channel_id, &rtt));
    CHECK(rtt > 0);
    char bid[GN_PEER_ID_MAX_STRLEN];
    CHECK_OK(gn_peer_id_to_string(&fb.id, bid, sizeof bid));
    CHECK_OK(gn_ipc_ping(a, bid, &rtt));
    gn_channel_metrics m;
    CHECK_OK(gn_ipc_channel_metrics(a, r.channel_id, &m));
    CHECK(m.messages_out >= 1 && m.bytes_out > 0);

    gn_ipc_peer_info pi;
    CHECK_OK(gn_ipc_peer_info_get(a, bid, &pi));
    CHECK(pi.addrs.n >= 1);
    gn_ipc_peer_info_free(&pi);
    CHECK_EQ(gn_ipc_peer_info_get(a, "not-a-peer", &pi), GN_EPARSE);
    CHECK(gn_ipc_last_error(a, msg, sizeof msg) > 0);

    CHECK_EQ(gn_ipc_dial(a, "/ip4/127.0.0.1/tcp/1", &r), GN_ECONNREFUSED);
    CHECK_EQ(gn_ipc_dial(a, "/ip4/1.2.3", &r), GN_EPARSE);
    gn_ipc_free(a);
    gn_ipc_free(b);
}

GN_TEST(stream_open_and_handler_carry_bytes_both_ways)
{
    gn_ipc_client *a = client(&fa), *b = client(&fb);
    CHECK(a && b);
    /* a handles /test/ipcc/1.0.0; b opens a stream to a for it */
    gn_ipc_handler *h = NULL;
    CHECK_OK(gn_ipc_handler_new(a, "/test/ipcc/1.0.0", NULL, &h));
    struct stat st;
    CHECK_EQ(stat(gn_ipc_handler_path(h), &st), 0);
    CHECK_EQ(st.st_mode & 0777, 0600);
    gn_ipc_stream *out = NULL, *in = NULL;
    CHECK_OK(gn_ipc_stream_open(b, fa.addr, 0, "/test/ipcc/1.0.0", &out));
    CHECK_STR(gn_ipc_stream_get_info(out)->protocol, "/test/ipcc/1.0.0");
    CHECK_OK(gn_ipc_stream_write(out, (const uint8_t *)"ping!", 5, T_S));
    CHECK_OK(gn_ipc_handler_accept(h, &in, T_S));
    CHECK_STR(gn_ipc_stream_get_info(in)->protocol, "/test/ipcc/1.0.0");
    CHECK_EQ(gn_ipc_stream_get_info(in)->peer.len, fb.id.len);
    CHECK_MEM(gn_ipc_stream_get_info(in)->peer.bytes, fb.id.bytes, fb.id.len);
    uint8_t buf[64];
    size_t got = 0;
    for (int k = 0; k < 10 && got < 5; k++) {
        int rc = gn_ipc_stream_read(in, buf + got, sizeof buf - got, T_S);
        CHECK(rc > 0);
        got += (size_t)rc;
    }
    CHECK_EQ(got, 5);
    CHECK_MEM(buf, "ping!", 5);
    CHECK_OK(gn_ipc_stream_write(in, (const uint8_t *)"pong", 4, T_S));
    CHECK_OK(gn_ipc_stream_shutdown(in));
    got = 0;
    for (int k = 0; k < 10; k++) {
        int rc = gn_ipc_stream_read(out, buf + got, sizeof buf - got, T_S);
        CHECK(rc >= 0);
        if (rc == 0) {
            break; /* the end of the stream */
        }
        got += (size_t)rc;
    }
    CHECK_EQ(got, 4);
    CHECK_MEM(buf, "pong", 4);
    gn_ipc_stream_free(in);
    gn_ipc_stream_free(out);
    CHECK_EQ(gn_ipc_handler_accept(h, &in, 0), GN_EAGAIN);

    /* echo, the built-in protocol, on b's channel to a */
    CHECK_OK(gn_ipc_stream_open(b, fa.addr, 0, "/echo/1.0.0", &out));
    static uint8_t big[256 * 1024], back[256 * 1024];
    for (size_t i = 0; i < sizeof big; i++) {
        big[i] = (uint8_t)(i * 7 + 3);
    }
    CHECK_OK(gn_ipc_stream_write(out, big, sizeof big, T_S));
    CHECK_OK(gn_ipc_stream_shutdown(out));
    got = 0;
    for (int k = 0; k < 100000 && got < sizeof back; k++) {
        int rc = gn_ipc_stream_read(out, back + got, sizeof back - got, T_S);
        CHECK(rc > 0);
        got += (size_t)rc;
    }
    CHECK_MEM(back, big, sizeof big);
    gn_ipc_stream_free(out);

    /* a protocol nobody serves */
    CHECK_EQ(gn_ipc_stream_open(b, fa.addr, 0, "/nobody/1.0.0", &out), GN_ENEGOTIATION);
    char path[256];
    snprintf(path, sizeof path, "%s", gn_ipc_handler_path(h));
    gn_ipc_handler_free(h);
    CHECK(access(path, F_OK) != 0);
    gn_ipc_free(a);
    gn_ipc_free(b);
}

typedef struct call_thread {
    gn_ipc_client *c;
    int failures;
} call_thread;

static void many_calls(void *arg)
{
    call_thread *t = arg;
    for (int i = 0; i < 300; i++) {
        gn_peer_id p;
        if (gn_ipc_identify(t->c, &p, NULL) < 0) {
            t->failures++;
        }
    }
}

GN_TEST(two_clients_and_concurrent_calls)
{
    gn_ipc_client *c1 = client(&fa), *c2 = client(&fa);
    CHECK(c1 && c2);
    CHECK_OK(gn_ipc_subscribe(c1, GN_IPC_EVENTS_ALL));
    CHECK_OK(gn_ipc_subscribe(c2, GN_IPC_EVENT_BIT(GN_NODE_EV_LISTENING)));
    /* both see the same event */
    char bound[GN_NODE_ADDR_MAX];
    CHECK_OK(gn_ipc_listen(c1, "/ip4/127.0.0.1/tcp/0", bound, sizeof bound));
    CHECK(strstr(bound, "/tcp/") && !strstr(bound, "/tcp/0/"));
    gn_node_event e1, e2;
    CHECK_OK(wait_event(c1, GN_NODE_EV_LISTENING, &e1));
    CHECK_OK(wait_event(c2, GN_NODE_EV_LISTENING, &e2));
    CHECK_STR(e1.addr, e2.addr);
    /* four threads on c1, one on c2, at once */
    call_thread ts[5] = {{c1, 0}, {c1, 0}, {c1, 0}, {c1, 0}, {c2, 0}};
    uv_thread_t th[5];
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(uv_thread_create(&th[i], many_calls, &ts[i]), 0);
    }
    for (int i = 0; i < 5; i++) {
        uv_thread_join(&th[i]);
        CHECK_EQ(ts[i].failures, 0);
    }
    gn_ipc_stats st;
    CHECK_OK(gn_ipc_stats_get(c1, &st));
    CHECK(st.calls >= 1200);
    CHECK_EQ(st.late_responses, 0);
    gn_ipc_free(c1);
    /* c2 is unaffected by c1 leaving */
    gn_peer_id p;
    CHECK_OK(gn_ipc_identify(c2, &p, NULL));
    gn_ipc_free(c2);
}

GN_TEST(a_full_event_queue_reports_what_it_lost)
{
    gn_ipc_options o;
    gn_ipc_options_default(&o);
    o.event_queue_capacity = 4;
    o.timeout = T_S;
    gn_ipc_client *a = NULL, *b = client(&fb);
    CHECK_OK(gn_ipc_connect(fa.sock, &o, &a));
    CHECK(b);
    CHECK_OK(gn_ipc_subscribe(a, GN_IPC_EVENT_BIT(GN_NODE_EV_MESSAGE)));
    char aid[GN_PEER_ID_MAX_STRLEN];
    CHECK_OK(gn_peer_id_to_string(&fa.id, aid, sizeof aid));
    for (int i = 0; i < 20; i++) {
        uint8_t m = (uint8_t)i;
        CHECK_OK(gn_ipc_unicast(b, fa.addr, &m, 1, NULL));
    }
    gn_ipc_stats st = {0};
    for (int k = 0; k < 500 && st.events_received < 20; k++) {
        usleep(10000);
        CHECK_OK(gn_ipc_stats_get(a, &st));
    }
    CHECK_EQ(st.events_received, 20);
    CHECK_EQ(st.events_dropped, 16);
    /* the pollable fd is readable */
    struct pollfd p = {.fd = gn_ipc_event_fd(a), .events = POLLIN};
    CHECK_EQ(poll(&p, 1, 0), 1);
    gn_node_event ev;
    for (int i = 0; i < 4; i++) {
        CHECK_OK(gn_ipc_next_event(a, &ev, 0));
        CHECK_EQ(ev.type, GN_NODE_EV_MESSAGE);
        CHECK_EQ(gn_rcbuf_slice(ev.message).base[0], i);
        gn_rcbuf_rele(ev.message);
    }
    CHECK_OK(gn_ipc_next_event(a, &ev, 0));
    CHECK_EQ(ev.type, GN_IPC_EV_LOST);
    CHECK_EQ(ev.count, 16);
    CHECK_EQ(gn_ipc_next_event(a, &ev, 0), GN_EAGAIN);
    CHECK_EQ(gn_ipc_next_event(a, &ev, 20 * GN_MS), GN_ETIMEDOUT);
    gn_ipc_free(a);
    gn_ipc_free(b);
}

GN_TEST(daemon_shutdown_ends_the_client)
{
    gn_ipc_client *b = client(&fb);
    CHECK(b);
    daemon_down(&fb);
    gn_node_event ev;
    CHECK_OK(wait_event(b, GN_IPC_EV_DISCONNECTED, &ev));
    CHECK(ev.status < 0);
    CHECK_EQ(gn_ipc_next_event(b, &ev, 0), GN_ECLOSED);
    gn_peer_id p;
    CHECK_EQ(gn_ipc_identify(b, &p, NULL), GN_ECLOSED);
    gn_ipc_free(b);
}

GN_TEST(fixture_down)
{
    daemon_down(&fa);
    daemon_down(&fb);
    rmdir(dir);
}

GN_TEST_MAIN(GN_T(fixture_up), GN_T(connect_errors_name_the_problem),
             GN_T(dial_message_events_both_ways),
             GN_T(stream_open_and_handler_carry_bytes_both_ways),
             GN_T(two_clients_and_concurrent_calls), GN_T(a_full_event_queue_reports_what_it_lost),
             GN_T(daemon_shutdown_ends_the_client), GN_T(fixture_down))
