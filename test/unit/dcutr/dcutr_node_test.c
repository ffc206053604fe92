/*
 * The dcutr component between two in-process nodes over TCP on loopback,
 * without a relay: the test-only option dcutr.test_treat_all_limited makes
 * each node treat its first channel to the other as the relayed one, so
 * the whole exchange (stream on that channel, CONNECT, RTT, SYNC, dials)
 * runs as it would over a circuit. A dials B; B, the inbound side, starts.
 *  - success: a second, direct channel appears (NO_REUSE) and both sides
 *    see it and report success; the first channel stays open;
 *  - failure: the addresses offered (dcutr.addr) name a closed port; both
 *    sides end with failure after the 3 attempts; the first channel stays
 *    open and carries a ping;
 *  - the TCP transport's port reuse, which hole punching needs: the peer
 *    sees a dial come from our listen address (not with tcp.port_reuse=false).
 * One loop driven by the test thread; every wait bounded; nodes closed and
 * freed.
 */
#include "golemnet/golemnet.h"

#include "gn_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static gn_loop *loop;
static bool guard_fired;
static void guard(gn_timer *t, void *arg) { (void)t, (void)arg; guard_fired = true; }

typedef struct tnode {
    gn_node *n;
    gn_identity *id;
    gn_peer_id pid;
    char addr[GN_NODE_ADDR_MAX];
    uint64_t first_ch;   /* the first channel to the other node */
    bool first_closed;
    int open;            /* channels opened minus closed */
    int opened;
    int closed;
} tnode;

static tnode na, nb;

/* ---- log capture: the component's verdict lines ---- */
static int log_ok, log_failed, log_failed_3, log_refused, dials_init, dials_resp;

static void log_fn(void *ud, gn_log_level level, const char *component, const char *msg)
{
    (void)ud;
    if (strcmp(component, "dcutr") == 0) {
        if (strstr(msg, "hole punch with") && strstr(msg, "succeeded as")) {
            log_ok++;
        }
        if (strstr(msg, "hole punch with") && strstr(msg, "failed as")) {
            log_failed++;
            if (strstr(msg, "after 3 attempt(s)")) {
                log_failed_3++;
            }
            if (strstr(msg, "GN_ECONNREFUSED")) {
                log_refused++;
            }
        }
        if (strstr(msg, ": dialling ")) {
            dials_init += strstr(msg, "as initiator") != NULL;
            dials_resp += strstr(msg, "as responder") != NULL;
        }
    }
    if (level <= GN_LOG_NOTICE || getenv("DCUTR_TEST_VERBOSE")) {
        fprintf(stderr, "[%s] %s\n", component, msg);
    }
}

static void pump(tnode *t)
{
    gn_node_event ev;
    while (t->n && gn_node_next_event(t->n, &ev, 0) == 0) {
        if (ev.type == GN_NODE_EV_LISTENING && !t->addr[0]) {
            snprintf(t->addr, sizeof t->addr, "%s", ev.addr);
        } else if (ev.type == GN_NODE_EV_CHANNEL_OPENED) {
            if (!t->first_ch) {
                t->first_ch = ev.channel_id;
            }
            t->open++;
            t->opened++;
        } else if (ev.type == GN_NODE_EV_CHANNEL_CLOSED) {
            t->open--;
            t->closed++;
            if (ev.channel_id == t->first_ch) {
                t->first_closed = true;
            }
        }
        gn_rcbuf_rele(ev.message);
    }
}

static bool run_until(bool (*pred)(void *), void *arg, gn_time ms)
{
    gn_timer g;
    gn_timer_init(loop, &g);
    guard_fired = false;
    gn_timer_start(&g, ms * GN_MS, guard, NULL);
    for (int i = 0; i < 1000000 && !guard_fired; i++) {
        pump(&na);
        pump(&nb);
        if (pred(arg)) {
            break;
        }
        gn_loop_run(loop, GN_RUN_ONCE);
    }
    gn_timer_stop(&g);
    pump(&na);
    pump(&nb);
    return pred(arg);
}

static bool never(void *arg) { (void)arg; return false; }
static bool has_addr(void *arg) { return ((tnode *)arg)->addr[0] != '\0'; }

static void node_up(tnode *t, uint32_t seed, const char *const *opts, size_t nopts)
{
    memset(t, 0, sizeof *t);
    CHECK_OK(gn_identity_from_int_seed(seed, &t->id));
    gn_identity_peer_id(t->id, &t->pid);
    gn_node_config cfg;
    gn_node_config_default(&cfg);
    cfg.identity = t->id;
    cfg.loop = loop;
    cfg.transports = "tcp";
    cfg.security = "noise";
    cfg.muxers = "yamux";
    cfg.protocol_components = "dcutr";
    cfg.options = opts;
    cfg.n_options = nopts;
    cfg.upgrade_timeout = 5 * GN_S;
    static const char *listen = "/ip4/127.0.0.1/tcp/0";
    cfg.listen = &listen;
    cfg.n_listen = 1;
    CHECK_OK(gn_node_new(&cfg, &t->n));
    CHECK_OK(gn_node_start(t->n));
    CHECK(run_until(has_addr, t, 5000));
}

static int closed_cnt;
static void on_closed(gn_node *n, void *arg) { (void)n, (void)arg; closed_cnt++; }
static bool all_closed(void *arg) { return closed_cnt >= *(int *)arg; }

static void nodes_down(void)
{
    closed_cnt = 0;
    int want = 0;
    tnode *ts[2] = {&na, &nb};
    for (int i = 0; i < 2; i++) {
        if (ts[i]->n) {
            gn_node_close(ts[i]->n, on_closed, NULL);
            want++;
        }
    }
    CHECK(run_until(all_closed, &want, 10000));
    for (int i = 0; i < 2; i++) {
        tnode *t = ts[i];
        if (t->n) {
            pump(t);
            gn_node_free(t->n);
            t->n = NULL;
        }
        gn_identity_free(t->id);
        t->id = NULL;
    }
}

typedef struct dial_res {
    int calls, status;
} dial_res;

static void on_dial(void *arg, int status, gn_channel *ch)
{
    (void)ch;
    dial_res *r = arg;
    r->calls++;
    r->status = status;
}

static bool dial_done(void *arg) { return ((dial_res *)arg)->calls > 0; }

/* A dials B; both see the channel. */
static void connect_a_to_b(void)
{
    dial_res r = {0};
    CHECK_OK(gn_node_dial(na.n, nb.addr, on_dial, &r, NULL));
    CHECK(run_until(dial_done, &r, 8000));
    CHECK_EQ(r.status, 0);
}

static bool punched_ok(void *arg)
{
    (void)arg;
    return log_ok >= 2 && na.open >= 2 && nb.open >= 2;
}

static bool punched_failed(void *arg)
{
    (void)arg;
    return log_failed >= 2;
}

static void reset_logs(void)
{
    log_ok = log_failed = log_failed_3 = log_refused = dials_init = dials_resp = 0;
}

GN_TEST(direct_channel_after_exchange)
{
    static const char *opts[] = {
        "dcutr.allow_private=true",
        "dcutr.test_treat_all_limited=1",
    };
    reset_logs();
    node_up(&na, 11, opts, 2);
    node_up(&nb, 12, opts, 2);
    connect_a_to_b();
    CHECK(run_until(punched_ok, NULL, 15000));
    CHECK_EQ(log_ok, 2);
    CHECK_EQ(log_failed, 0);
    /* a second channel on each side, the first one still open */
    CHECK(na.open >= 2);
    CHECK(nb.open >= 2);
    CHECK(!na.first_closed);
    CHECK(!nb.first_closed);
    /* nothing more happens: no second hole punch for the new channel */
    run_until(never, NULL, 300);
    CHECK_EQ(log_ok, 2);
    CHECK_EQ(log_failed, 0);
    nodes_down();
}

static int ping_calls, ping_status;
static void on_ping(void *arg, int status, gn_time rtt)
{
    (void)arg, (void)rtt;
    ping_calls++;
    ping_status = status;
}
static bool pinged(void *arg) { (void)arg; return ping_calls > 0; }

/* A loopback port nothing listens on (bound, read, closed). */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    CHECK_EQ(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    CHECK_EQ(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

GN_TEST(closed_port_fails_after_retries)
{
    /* the same address twice, once with a /p2p/ part as js-libp2p sends
     * them: each side dials it once per attempt */
    char addr_opt[96], addr_p2p_opt[160];
    int port = closed_port();
    snprintf(addr_opt, sizeof addr_opt, "dcutr.addr=/ip4/127.0.0.1/tcp/%d", port);
    snprintf(addr_p2p_opt, sizeof addr_p2p_opt,
             "dcutr.addr=/ip4/127.0.0.1/tcp/%d/p2p/"
             "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA",
             port);
    const char *opts[] = {
        "dcutr.allow_private=true",
        "dcutr.test_treat_all_limited=1",
        addr_p2p_opt,
        addr_opt,
    };
    reset_logs();
    node_up(&na, 21, opts, 4);
    node_up(&nb, 22, opts, 4);
    connect_a_to_b();
    CHECK(run_until(punched_failed, NULL, 20000));
    run_until(never, NULL, 200);
    CHECK_EQ(log_ok, 0);
    CHECK_EQ(log_failed, 2);
    CHECK_EQ(log_failed_3, 2); /* B gave up after its 3 attempts, A followed */
    CHECK_EQ(log_refused, 2);  /* the dials were made and refused */
    CHECK_EQ(dials_init, 3);
    CHECK_EQ(dials_resp, 3);
    /* only the first channel, still open and working */
    CHECK_EQ(na.open, 1);
    CHECK_EQ(nb.open, 1);
    CHECK(!na.first_closed);
    CHECK(!nb.first_closed);
    gn_channel *ch = gn_node_channel_get(na.n, na.first_ch);
    CHECK(ch != NULL);
    ping_calls = 0;
    CHECK_OK(gn_channel_ping(ch, on_ping, NULL));
    CHECK(run_until(pinged, NULL, 5000));
    CHECK_EQ(ping_status, 0);
    gn_channel_rele(ch);
    nodes_down();
}

/* True when B's first channel comes from A's listen address (the TCP
 * transport's port reuse, which hole punching depends on). */
static bool b_has_channel(void *arg)
{
    (void)arg;
    return nb.first_ch != 0;
}

static bool b_sees_a_listen_addr(void)
{
    CHECK(run_until(b_has_channel, NULL, 5000));
    gn_channel *ch = gn_node_channel_get(nb.n, nb.first_ch);
    CHECK(ch != NULL);
    gn_channel_info info;
    gn_channel_state_get(ch, &info);
    gn_channel_rele(ch);
    /* na.addr is <listen address>/p2p/<id> */
    size_t n = strlen(info.remote_addr);
    printf("# A listens on %s; B sees %s\n", na.addr, info.remote_addr);
    return n > 0 && strncmp(na.addr, info.remote_addr, n) == 0 &&
           strncmp(na.addr + n, "/p2p/", 5) == 0;
}

GN_TEST(observed_address_is_listen_address)
{
    static const char *on[] = {"dcutr.allow_private=true"};
    static const char *off[] = {"dcutr.allow_private=true", "tcp.port_reuse=false"};
    node_up(&na, 31, on, 1);
    node_up(&nb, 32, on, 1);
    connect_a_to_b();
    CHECK(b_sees_a_listen_addr());
    nodes_down();
    node_up(&na, 33, off, 2);
    node_up(&nb, 34, off, 2);
    connect_a_to_b();
    CHECK(!b_sees_a_listen_addr());
    nodes_down();
}

int main(int argc, char **argv)
{
    gn_log_set(log_fn, NULL, GN_LOG_DEBUG);
    if (gn_loop_new(NULL, &loop) < 0) {
        return 1;
    }
    static const gn_test_case cases[] = {
        GN_T(direct_channel_after_exchange),
        GN_T(closed_port_fails_after_retries),
        GN_T(observed_address_is_listen_address),
    };
    int rc = gn_test_run(cases, sizeof cases / sizeof cases[0], argc, argv);
    run_until(never, NULL, 50); /* handles closed by the nodes finish closing */
    gn_loop_free(loop);
    gn_log_set(NULL, NULL, GN_LOG_ERR);
    return rc;
}
