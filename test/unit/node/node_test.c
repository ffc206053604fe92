/*
 * Node tests: two (or three) nodes on one loop driven by the test thread,
 * over the memory transport and TCP on loopback. Every node is closed and
 * freed; every loop is bounded by a guard timer.
 */
#include "golemnet/golemnet.h"
#include "golemnet/node.h"

#include "gn_test.h"
#include "gni_rcmgr.h"
#include "node_int.h"
#include "syn_drop.h"
#include "peerstore.h"

#include <pthread.h>
#include <signal.h>

/* ---- harness ---------------------------------------------------------- */

static gn_loop *loop;
static int stray_warnings;
static int eresource_ends; /* msg: "message stream ended: GN_ERESOURCE" */
static int span_refusals;  /* msg: "... stream refused by peer:..." */
static int mux_refusals;   /* muxer: "peer streams refused: GN_ERESOURCE (resource manager: peer:" */

static void log_fn(void *ud, gn_log_level level, const char *comp, const char *msg)
{
    (void)ud;
    (void)comp;
    if (level <= GN_LOG_WARNING && strstr(msg, "left open")) {
        stray_warnings++;
    }
    if (strstr(msg, "message stream ended: GN_ERESOURCE")) {
        eresource_ends++;
    }
    if (strstr(msg, "peer streams refused: GN_ERESOURCE (resource manager: peer:")) {
        mux_refusals++;
    }
    if (strstr(msg, "/golem/msg/1.0.0 stream refused by peer:")) {
        span_refusals++;
    }
    if (getenv("GN_TEST_LOG")) {
        fprintf(stderr, "[%s] %s\n", comp, msg);
    }
}

#define MAX_EVS 256

typedef struct tnode {
    gn_node *n;
    gn_identity *id;
    gn_peer_id pid;
    char addr[GN_NODE_ADDR_MAX]; /* listening address with /p2p/ */
    gn_node_event evs[MAX_EVS];
    bool used[MAX_EVS];
    size_t nevs;
    int closed;
} tnode;

static bool guard_fired;
static void guard(gn_timer *t, void *arg) { (void)t, (void)arg; guard_fired = true; }

static void collect(tnode *t)
{
    if (!t || !t->n) {
        return;
    }
    while (t->nevs < MAX_EVS && gn_node_next_event(t->n, &t->evs[t->nevs], 0) == 0) {
        t->used[t->nevs] = false;
        t->nevs++;
    }
}

static tnode *all_nodes[4];

static void collect_all(void)
{
    for (size_t i = 0; i < 4; i++) {
        collect(all_nodes[i]);
    }
}

/* Runs the loop until pred(arg) or @ms elapsed. */
static bool run_until(bool (*pred)(void *), void *arg, gn_time ms)
{
    gn_timer g;
    gn_timer_init(loop, &g);
    guard_fired = false;
    gn_timer_start(&g, ms * GN_MS, guard, NULL);
    for (int i = 0; i < 1000000 && !guard_fired; i++) {
        collect_all();
        if (pred(arg)) {
            break;
        }
        gn_loop_run(loop, GN_RUN_ONCE);
    }
    gn_timer_stop(&g);
    collect_all();
    return pred(arg);
}

static void run_for(gn_time ms)
{
    gn_timer g;
    gn_timer_init(loop, &g);
    guard_fired = false;
    gn_timer_start(&g, ms * GN_MS, guard, NULL);
    for (int i = 0; i < 1000000 && !guard_fired; i++) {
        gn_loop_run(loop, GN_RUN_ONCE);
        collect_all();
    }
    gn_timer_stop(&g);
}

typedef struct ev_wait {
    tnode *t;
    gn_node_event_type type;
    size_t idx;
} ev_wait;

static bool ev_found(void *arg)
{
    ev_wait *w = arg;
    for (size_t i = 0; i < w->t->nevs; i++) {
        if (!w->t->used[i] && w->t->evs[i].type == w->type) {
            w->idx = i;
            return true;
        }
    }
    return false;
}

/* Waits for the next unconsumed event of @type; consumes and copies it. */
static bool wait_event(tnode *t, gn_node_event_type type, gn_node_event *out, gn_time ms)
{
    ev_wait w = {t, type, 0};
    if (!run_until(ev_found, &w, ms)) {
        return false;
    }
    t->used[w.idx] = true;
    if (out) {
        *out = t->evs[w.idx];
    }
    return true;
}

static size_t count_events(tnode *t, gn_node_event_type type)
{
    size_t k = 0;
    for (size_t i = 0; i < t->nevs; i++) {
        k += t->evs[i].type == type;
    }
    return k;
}

typedef struct opts {
    const char *transport; /* "memory" or "tcp" */
    const char *security;
    const char *muxers;
    uint32_t max_connections;
    uint32_t protocols;
    size_t event_queue_capacity;
    gn_time idle_timeout;
    gn_time upgrade_timeout; /* 0: 5 s */
    bool no_listen;
    const char *const *options; /* component options, n_options entries */
    size_t n_options;
} opts;

static const opts mem_noise = {.transport = "memory", .security = "noise", .muxers = "yamux"};
static const opts mem_plain = {.transport = "memory", .security = "plaintext", .muxers = "yamux"};

static void node_up(tnode *t, uint32_t seed, const opts *o)
{
    memset(t, 0, sizeof *t);
    CHECK_OK(gn_identity_from_int_seed(seed, &t->id));
    gn_identity_peer_id(t->id, &t->pid);
    gn_node_config cfg;
    gn_node_config_default(&cfg);
    cfg.identity = t->id;
    cfg.loop = loop;
    cfg.transports = o->transport;
    cfg.security = o->security;
    cfg.muxers = o->muxers;
    const char *listen = strcmp(o->transport, "tcp") == 0   ? "/ip4/127.0.0.1/tcp/0"
                         : strcmp(o->transport, "utp") == 0 ? "/ip4/127.0.0.1/udp/0/utp"
                                                            : "/memory/0";
    if (!o->no_listen) {
        cfg.listen = &listen;
        cfg.n_listen = 1;
    }
    if (o->max_connections) {
        cfg.max_connections = o->max_connections;
    }
    if (o->protocols) {
        cfg.protocols = o->protocols;
    }
    if (o->event_queue_capacity) {
        cfg.event_queue_capacity = o->event_queue_capacity;
    }
    cfg.idle_timeout = o->idle_timeout;
    cfg.upgrade_timeout = o->upgrade_timeout ? o->upgrade_timeout : 5 * GN_S;
    cfg.options = o->options;
    cfg.n_options = o->n_options;
    CHECK_OK(gn_node_new(&cfg, &t->n));
    for (size_t i = 0; i < 4; i++) {
        if (!all_nodes[i]) {
            all_nodes[i] = t;
            break;
        }
    }
    CHECK_OK(gn_node_start(t->n));
    if (!o->no_listen) {
        gn_node_event ev;
        CHECK(wait_event(t, GN_NODE_EV_LISTENING, &ev, 5000));
        CHECK_EQ(ev.status, 0);
        snprintf(t->addr, sizeof t->addr, "%s", ev.addr);
    }
}

static void on_node_closed(gn_node *n, void *arg)
{
    (void)n;
    ((tnode *)arg)->closed++;
}

static bool all_closed(void *arg)
{
    (void)arg;
    for (size_t i = 0; i < 4; i++) {
        if (all_nodes[i] && all_nodes[i]->n && !all_nodes[i]->closed) {
            return false;
        }
    }
    return true;
}

static void release_events(tnode *t)
{
    for (size_t i = 0; i < t->nevs; i++) {
        gn_rcbuf_rele(t->evs[i].message);
        t->evs[i].message = NULL;
    }
}

/* Closes every node, checks each close completed once, frees everything. */
static void teardown(void)
{
    for (size_t i = 0; i < 4; i++) {
        if (all_nodes[i] && all_nodes[i]->n) {
            gn_node_close(all_nodes[i]->n, on_node_closed, all_nodes[i]);
        }
    }
    CHECK(run_until(all_closed, NULL, 10000));
    run_for(20);
    for (size_t i = 0; i < 4; i++) {
        tnode *t = all_nodes[i];
        if (!t) {
            continue;
        }
        if (t->n) {
            CHECK_EQ(t->closed, 1);
            collect(t);
            CHECK_EQ(count_events(t, GN_NODE_EV_CLOSED), 1);
            gn_node_event ev;
            CHECK_EQ(gn_node_next_event(t->n, &ev, 0), GN_ECLOSED);
            gn_node_free(t->n);
            t->n = NULL;
        }
        release_events(t);
        gn_identity_free(t->id);
        all_nodes[i] = NULL;
    }
}

static void setup(void)
{
    /* the loop runs on this thread: a write to a reset socket must not kill us */
    gts_block_sigpipe();
    gn_log_set(log_fn, NULL, GN_LOG_DEBUG);
    memset(all_nodes, 0, sizeof all_nodes);
    stray_warnings = 0;
    CHECK_OK(gn_loop_new(NULL, &loop));
}

static void finish(void)
{
    teardown();
    gn_loop_free(loop);
    loop = NULL;
    CHECK_EQ(stray_warnings, 0);
}

/* Dial completion recorder. */
typedef struct dial_res {
    int calls;
    int status;
    gn_channel *ch;
} dial_res;

static void on_dial(void *arg, int status, gn_channel *ch)
{
    dial_res *r = arg;
    r->calls++;
    r->status = status;
    r->ch = ch ? gn_channel_hold(ch) : NULL;
}

static bool dial_done(void *arg) { return ((dial_res *)arg)->calls > 0; }

static gn_channel *dial_ok(tnode *from, const char *addr)
{
    dial_res r = {0};
    CHECK_OK(gn_node_dial(from->n, addr, on_dial, &r, NULL));
    CHECK(run_until(dial_done, &r, 5000));
    CHECK_EQ(r.calls, 1);
    CHECK_EQ(r.status, 0);
    CHECK(r.ch != NULL);
    return r.ch;
}

/* Finds the (single) open channel a node has to @peer, through its events. */
static uint64_t opened_channel(tnode *t, const gn_peer_id *peer)
{
    gn_node_event ev;
    CHECK(wait_event(t, GN_NODE_EV_CHANNEL_OPENED, &ev, 5000));
    CHECK(gn_peer_id_equal(&ev.peer, peer));
    return ev.channel_id;
}

/* ---- tests -------------------------------------------------------------- */

static void basic_dial(const char *transport, const char *security, const char *expect_sec)
{
    setup();
    tnode a, b;
    opts o = {.transport = transport, .security = security, .muxers = "yamux"};
    node_up(&a, 1, &o);
    node_up(&b, 2, &o);
    /* the listening address carries our peer ID */
    char pidstr[GN_PEER_ID_MAX_STRLEN];
    gn_peer_id_to_string(&b.pid, pidstr, sizeof pidstr);
    CHECK(strstr(b.addr, pidstr) != NULL);
    const char *prefix = strcmp(transport, "tcp") == 0   ? "/ip4/127.0.0.1/tcp/"
                         : strcmp(transport, "utp") == 0 ? "/ip4/127.0.0.1/udp/"
                                                         : "/memory/";
    CHECK(strncmp(b.addr, prefix, strlen(prefix)) == 0);

    gn_channel *ch = dial_ok(&a, b.addr);
    gn_channel_info info;
    CHECK_EQ(gn_channel_state_get(ch, &info), GN_CHANNEL_OPEN);
    CHECK_EQ(info.state, GN_CHANNEL_OPEN);
    CHECK_EQ(info.direction, GN_DIR_OUTBOUND);
    CHECK(gn_peer_id_equal(&info.remote_peer, &b.pid));
    CHECK_STR(info.security, expect_sec);
    CHECK_STR(info.muxer, "/yamux/1.0.0");
    CHECK(info.remote_addr[0] != '\0');
    CHECK(info.local_addr[0] != '\0');

    gn_node_event ev;
    CHECK(wait_event(&a, GN_NODE_EV_CHANNEL_OPENED, &ev, 5000));
    CHECK_EQ(ev.channel_id, info.id);
    CHECK(gn_peer_id_equal(&ev.peer, &b.pid));
    CHECK_STR(ev.protocol, "/yamux/1.0.0");
    /* the responder side sees an inbound channel from a */
    CHECK(wait_event(&b, GN_NODE_EV_CHANNEL_OPENED, &ev, 5000));
    CHECK(gn_peer_id_equal(&ev.peer, &a.pid));
    CHECK_STR(ev.protocol, "/yamux/1.0.0");
    CHECK_STR(ev.addr, info.local_addr);

    /* identify ran both ways: agent, protocols, observed address */
    CHECK(wait_event(&a, GN_NODE_EV_IDENTIFY, &ev, 5000));
    CHECK_EQ(ev.status, 0);
    CHECK(gn_peer_id_equal(&ev.peer, &b.pid));
    char agent[64];
    snprintf(agent, sizeof agent, "golemnet/%s", gn_version());
    CHECK_STR(ev.protocol, agent);
    CHECK_STR(ev.addr, info.local_addr); /* b observed us at our local address */
    const gni_peer_info *pi = gni_peerstore_get(gni_node_peerstore(a.n), &b.pid);
    CHECK(pi != NULL);
    CHECK(pi->identified);
    CHECK(gni_peer_pubkey(pi) != NULL);
    CHECK(gni_peerstore_supports(gni_node_peerstore(a.n), &b.pid, "/ipfs/ping/1.0.0"));
    CHECK(gni_peerstore_supports(gni_node_peerstore(a.n), &b.pid, "/golem/msg/1.0.0"));
    CHECK(!gni_peerstore_supports(gni_node_peerstore(a.n), &b.pid, "/perf/1.0.0"));
    CHECK(pi->naddrs >= 1);
    CHECK(wait_event(&b, GN_NODE_EV_IDENTIFY, &ev, 5000));
    CHECK_EQ(ev.status, 0);
    CHECK(gn_peer_id_equal(&ev.peer, &a.pid));

    gn_channel_metrics m;
    gn_channel_metrics_get(ch, &m);
    CHECK(m.bytes_out > 0);
    CHECK(m.bytes_in > 0);
    gn_channel_rele(ch);
    finish();
}


GN_TEST(memory_plaintext_dial) { basic_dial("memory", "plaintext", "/plaintext/2.0.0"); }
GN_TEST(memory_noise_dial) { basic_dial("memory", "noise", "/noise"); }
GN_TEST(tcp_noise_dial) { basic_dial("tcp", "noise", "/noise"); }
GN_TEST(tcp_ecies_dial) { basic_dial("tcp", "ecies", "/golem/ecies/1.0.0"); }

/* Noise + yamux + identify over uTP (layers/transport/utp), when built in */
GN_TEST(utp_noise_dial)
{
    gn_registry *reg = NULL;
    CHECK_EQ(gn_registry_new(&reg), 0);
    CHECK_EQ(gn_registry_add_builtins(reg), 0);
    bool have = gn_registry_find(reg, GN_LAYER_TRANSPORT, "utp") != NULL;
    gn_registry_free(reg);
    if (!have)
        SKIP("built without -Dutp");
    basic_dial("utp", "noise", "/noise");
}

GN_TEST(utp_options)
{
    gn_registry *reg = NULL;
    CHECK_EQ(gn_registry_new(&reg), 0);
    CHECK_EQ(gn_registry_add_builtins(reg), 0);
    bool have = gn_registry_find(reg, GN_LAYER_TRANSPORT, "utp") != NULL;
    gn_registry_free(reg);
    if (!have)
        SKIP("built without -Dutp");
    setup();
    /* the core's settings from utp.* options: a Noise + yamux dial works
     * with them on both ends */
    static const char *const good[] = {"utp.target_delay_ms=50", "utp.mss=1200",
                                       "utp.mss_max=0", "utp.recv_buf=262144",
                                       "utp.send_buf=131072", "utp.ledbat_md=0"};
    opts o = {.transport = "utp", .security = "noise", .muxers = "yamux", .options = good,
              .n_options = 6};
    tnode a, b;
    node_up(&a, 1, &o);
    node_up(&b, 2, &o);
    gn_channel_rele(dial_ok(&a, b.addr));
    /* a value out of range: the uTP listener fails with GN_EINVAL */
    static const char *const bad[] = {"utp.target_delay_ms=500"};
    opts ob = {.transport = "utp", .security = "noise", .muxers = "yamux", .options = bad,
               .n_options = 1, .no_listen = true};
    tnode c;
    node_up(&c, 3, &ob);
    const char *listen = "/ip4/127.0.0.1/udp/0/utp";
    CHECK_EQ(gn_node_listen(c.n, listen, NULL), 0);
    gn_node_event ev;
    CHECK(wait_event(&c, GN_NODE_EV_LISTEN_FAILED, &ev, 5000));
    CHECK_EQ(ev.status, GN_EINVAL);
    finish();
}

/* Replaces the /p2p/ id of @addr with @pid's. */
static void with_peer(char *out, size_t len, const char *addr, const gn_peer_id *pid)
{
    char base[GN_NODE_ADDR_MAX - GN_PEER_ID_MAX_STRLEN - 8];
    snprintf(base, sizeof base, "%s", addr);
    char *p = strstr(base, "/p2p/");
    if (p) {
        *p = '\0';
    }
    char ps[GN_PEER_ID_MAX_STRLEN];
    gn_peer_id_to_string(pid, ps, sizeof ps);
    snprintf(out, len, "%s/p2p/%s", base, ps);
}

GN_TEST(dial_wrong_peer_id)
{
    setup();
    tnode a, b, c, d;
    node_up(&a, 1, &mem_noise);
    node_up(&b, 2, &mem_noise);
    node_up(&c, 3, &mem_plain);
    node_up(&d, 4, &mem_plain);
    /* noise: b's address with c's peer ID */
    char addr[GN_NODE_ADDR_MAX];
    with_peer(addr, sizeof addr, b.addr, &c.pid);
    dial_res r = {0};
    CHECK_OK(gn_node_dial(a.n, addr, on_dial, &r, NULL));
    CHECK(run_until(dial_done, &r, 5000));
    CHECK_EQ(r.calls, 1);
    CHECK_EQ(r.status, GN_EPEERID);
    CHECK(r.ch == NULL);
    /* plaintext checks the expected peer too */
    with_peer(addr, sizeof addr, c.addr, &b.pid);
    dial_res r2 = {0};
    CHECK_OK(gn_node_dial(d.n, addr, on_dial, &r2, NULL));
    CHECK(run_until(dial_done, &r2, 5000));
    CHECK_EQ(r2.status, GN_EPEERID);
    /* no common security: noise-only a dialing plaintext-only c */
    dial_res r3 = {0};
    CHECK_OK(gn_node_dial(a.n, c.addr, on_dial, &r3, NULL));
    CHECK(run_until(dial_done, &r3, 5000));
    CHECK_EQ(r3.status, GN_ENEGOTIATION);
    /* dialing ourselves */
    dial_res r4 = {0};
    CHECK_OK(gn_node_dial(a.n, a.addr, on_dial, &r4, NULL));
    CHECK(run_until(dial_done, &r4, 5000));
    CHECK_EQ(r4.status, GN_EINVAL);
    run_for(20);
    CHECK_EQ(r.calls + r2.calls + r3.calls + r4.calls, 4);
    CHECK_EQ(count_events(&a, GN_NODE_EV_CHANNEL_OPENED), 0);
    CHECK_EQ(count_events(&d, GN_NODE_EV_CHANNEL_OPENED), 0);
    finish();
}

GN_TEST(dial_errors)
{
    setup();
    tnode a;
    node_up(&a, 1, &mem_noise);
    uint64_t req = 0;
    CHECK_EQ(gn_node_dial(a.n, "not an address", NULL, NULL, &req), GN_EPARSE);
    CHECK_EQ(gn_node_dial(a.n, "/ip4/127.0.0.1/tcp/1", NULL, NULL, &req), GN_ENOTRANSPORT);
    CHECK_EQ(gn_node_listen(a.n, "/nope", &req), GN_EPARSE);
    /* nobody listens on /memory/77 */
    CHECK_OK(gn_node_dial(a.n, "/memory/77", NULL, NULL, &req));
    CHECK(req > 0);
    gn_node_event ev;
    CHECK(wait_event(&a, GN_NODE_EV_DIAL, &ev, 5000));
    CHECK_EQ(ev.request_id, req);
    CHECK_EQ(ev.status, GN_ECONNREFUSED);
    /* a listen the transport cannot serve */
    CHECK_OK(gn_node_listen(a.n, "/ip4/127.0.0.1/tcp/0", &req));
    CHECK(wait_event(&a, GN_NODE_EV_LISTEN_FAILED, &ev, 5000));
    CHECK_EQ(ev.request_id, req);
    CHECK_EQ(ev.status, GN_ENOTRANSPORT);
    /* configure */
    CHECK_EQ(gn_node_configure(a.n, (gn_node_option)99, 1), GN_ENOTSUP);
    CHECK_EQ(gn_node_configure(a.n, GN_NODE_OPT_MAX_CONNECTIONS, 0), GN_ERANGE);
    CHECK_OK(gn_node_configure(a.n, GN_NODE_OPT_MAX_MESSAGE_LEN, 4096));
    finish();
}

GN_TEST(config_errors)
{
    gn_node_config cfg;
    gn_node *n = NULL;
    gn_node_config_default(&cfg);
    cfg.version = 99;
    CHECK_EQ(gn_node_new(&cfg, &n), GN_EINVAL);
    gn_node_config_default(&cfg);
    cfg.security = "nosuch";
    CHECK_EQ(gn_node_new(&cfg, &n), GN_ENOTFOUND);
    gn_node_config_default(&cfg);
    cfg.max_connections = 0;
    CHECK_EQ(gn_node_new(&cfg, &n), GN_EINVAL);
    CHECK(n == NULL);
    /* a node that is never started is freed directly */
    gn_node_config_default(&cfg);
    CHECK_OK(gn_node_new(&cfg, &n));
    gn_peer_id pid;
    gn_node_peer_id(n, &pid);
    CHECK(pid.len > 0);
    CHECK(gn_node_event_fd(n) >= 0);
    gn_node_free(n);
    /* closed before it was started: the close still completes, with its event */
    CHECK_OK(gn_node_new(&cfg, &n));
    gn_node_close(n, NULL, NULL);
    CHECK_EQ(gn_node_start(n), GN_ESTATE);
    gn_node_event ev;
    CHECK_EQ(gn_node_next_event(n, &ev, 5 * GN_S), 0);
    CHECK_EQ(ev.type, GN_NODE_EV_CLOSED);
    CHECK_EQ(gn_node_next_event(n, &ev, 5 * GN_S), GN_ECLOSED);
    gn_node_free(n);
}

GN_TEST(reuse_and_simultaneous_dial)
{
    setup();
    tnode a, b;
    node_up(&a, 1, &mem_noise);
    node_up(&b, 2, &mem_noise);
    /* two dials before the loop runs share one attempt */
    dial_res r1 = {0}, r2 = {0};
    CHECK_OK(gn_node_dial(a.n, b.addr, on_dial, &r1, NULL));
    CHECK_OK(gn_node_dial(a.n, b.addr, on_dial, &r2, NULL));
    CHECK(run_until(dial_done, &r2, 5000));
    CHECK(run_until(dial_done, &r1, 5000));
    CHECK_EQ(r1.status, 0);
    CHECK_EQ(r2.status, 0);
    CHECK(r1.ch == r2.ch);
    /* an open channel is reused: with the /p2p/ address and without it */
    gn_channel *c3 = dial_ok(&a, b.addr);
    CHECK(c3 == r1.ch);
    char bare[GN_NODE_ADDR_MAX];
    snprintf(bare, sizeof bare, "%s", b.addr);
    *strstr(bare, "/p2p/") = '\0';
    gn_channel *c4 = dial_ok(&a, bare);
    CHECK(c4 == r1.ch);
    /* the other side dialing back reuses the inbound channel */
    opened_channel(&b, &a.pid);
    gn_channel *back = dial_ok(&b, a.addr);
    gn_channel_info info;
    gn_channel_state_get(back, &info);
    CHECK_EQ(info.direction, GN_DIR_INBOUND);
    run_for(30);
    CHECK_EQ(count_events(&a, GN_NODE_EV_CHANNEL_OPENED), 1);
    CHECK_EQ(count_events(&b, GN_NODE_EV_CHANNEL_OPENED), 1);
    gn_channel_rele(r1.ch);
    gn_channel_rele(r2.ch);
    gn_channel_rele(c3);
    gn_channel_rele(c4);
    gn_channel_rele(back);
    finish();
}

GN_TEST(crossing_dials)
{
    setup();
    tnode a, b;
    node_up(&a, 1, &mem_noise);
    node_up(&b, 2, &mem_noise);
    dial_res r1 = {0}, r2 = {0};
    CHECK_OK(gn_node_dial(a.n, b.addr, on_dial, &r1, NULL));
    CHECK_OK(gn_node_dial(b.n, a.addr, on_dial, &r2, NULL));
    CHECK(run_until(dial_done, &r1, 5000));
    CHECK(run_until(dial_done, &r2, 5000));
    CHECK_EQ(r1.status, 0);
    CHECK_EQ(r2.status, 0);
    gn_channel_info i1, i2;
    gn_channel_state_get(r1.ch, &i1);
    gn_channel_state_get(r2.ch, &i2);
    CHECK(gn_peer_id_equal(&i1.remote_peer, &b.pid));
    CHECK(gn_peer_id_equal(&i2.remote_peer, &a.pid));
    gn_channel_rele(r1.ch);
    gn_channel_rele(r2.ch);
    finish();
}

/* ---- custom protocol streams ---- */

typedef struct tstream {
    gn_stream *s;
    uint8_t rx[256];
    size_t rx_len;
    bool eof;
    int err;
    int closed;
    bool echo;       /* write back what arrives */
    int open_calls;
    int open_status;
    gn_channel *ch;  /* handler: the channel it came on */
    char proto[GN_PROTOCOL_ID_MAX];
} tstream;

static void ts_on_data(gn_stream *s, void *ud, const uint8_t *d, size_t n)
{
    tstream *t = ud;
    if (t->rx_len + n <= sizeof t->rx) {
        memcpy(t->rx + t->rx_len, d, n);
        t->rx_len += n;
    }
    if (t->echo) {
        gn_slice iov = gn_slice_of(t->rx + t->rx_len - n, n);
        gn_stream_write(s, &iov, 1, NULL, NULL);
    }
}
static void ts_on_eof(gn_stream *s, void *ud) { (void)s; ((tstream *)ud)->eof = true; }
static void ts_on_error(gn_stream *s, void *ud, int e) { (void)s; ((tstream *)ud)->err = e; }
static const gn_stream_handler ts_handler = {ts_on_data, ts_on_eof, ts_on_error, NULL};
static void ts_closed(gn_stream *s, void *arg) { (void)s; ((tstream *)arg)->closed++; }

static void on_custom_stream(void *arg, gn_channel *ch, gn_stream *s, const char *proto)
{
    tstream *t = arg;
    t->s = s;
    t->ch = ch;
    snprintf(t->proto, sizeof t->proto, "%s", proto);
    gn_stream_set_handler(s, &ts_handler, t);
    gn_stream_read_start(s);
}

static void on_opened(void *arg, int status, gn_stream *s)
{
    tstream *t = arg;
    t->open_calls++;
    t->open_status = status;
    t->s = s;
    if (s) {
        gn_stream_set_handler(s, &ts_handler, t);
        gn_stream_read_start(s);
    }
}

static bool open_done(void *arg) { return ((tstream *)arg)->open_calls > 0; }
static bool got_stream(void *arg) { return ((tstream *)arg)->s != NULL; }
static size_t rx_want;
static bool rx_has(void *arg) { return ((tstream *)arg)->rx_len >= rx_want; }
static bool ts_closed_pred(void *arg) { return ((tstream *)arg)->closed > 0; }

static void ts_write(tstream *t, const char *text)
{
    gn_slice iov = gn_slice_of(text, strlen(text));
    CHECK_OK(gn_stream_write(t->s, &iov, 1, NULL, NULL));
}

static void ts_close(tstream *t)
{
    gn_stream_close(t->s, ts_closed, t);
    CHECK(run_until(ts_closed_pred, t, 2000));
}

GN_TEST(handlers_and_custom_streams)
{
    setup();
    tnode a, b;
    node_up(&a, 1, &mem_noise);
    node_up(&b, 2, &mem_noise);
    tstream hb = {.echo = true}, ha = {0};
    CHECK_OK(gn_node_set_handler(b.n, "/test/echo/1", on_custom_stream, &hb));
    CHECK_EQ(gn_node_set_handler(b.n, "/test/echo/1", on_custom_stream, &hb), GN_EEXIST);
    CHECK_EQ(gn_node_set_handler(b.n, "", on_custom_stream, &hb), GN_EINVAL);
    CHECK_EQ(gn_node_set_handler(b.n, "/ipfs/ping/1.0.0", on_custom_stream, &hb), GN_EEXIST);
    CHECK_EQ(gn_node_set_handler(b.n, "/not/there", NULL, NULL), GN_ENOTFOUND);
    CHECK_OK(gn_node_set_handler(a.n, "/test/back/1", on_custom_stream, &ha));

    gn_channel *ch = dial_ok(&a, b.addr);
    /* a -> b: the handler gets the stream after multistream-select */
    tstream oa = {0};
    CHECK_OK(gn_channel_open_stream(ch, "/test/echo/1", on_opened, &oa));
    CHECK_EQ(oa.open_calls, 0); /* never from inside the call */
    CHECK(run_until(open_done, &oa, 5000));
    CHECK_EQ(oa.open_status, 0);
    ts_write(&oa, "hello");
    rx_want = 5;
    CHECK(run_until(rx_has, &oa, 5000));
    CHECK_EQ(oa.rx_len, 5);
    CHECK_MEM(oa.rx, "hello", 5);
    CHECK(got_stream(&hb));
    CHECK_STR(hb.proto, "/test/echo/1");
    CHECK_MEM(hb.rx, "hello", 5);
    gn_channel_info info;
    gn_channel_state_get(hb.ch, &info);
    CHECK(gn_peer_id_equal(&info.remote_peer, &a.pid));
    CHECK_EQ(info.direction, GN_DIR_INBOUND);

    /* b -> a on the same channel (b's inbound channel) */
    tstream ob = {0};
    CHECK_OK(gn_channel_open_stream(hb.ch, "/test/back/1", on_opened, &ob));
    CHECK(run_until(open_done, &ob, 5000));
    CHECK_EQ(ob.open_status, 0);
    ts_write(&ob, "back");
    rx_want = 4;
    CHECK(run_until(rx_has, &ha, 5000));
    CHECK_MEM(ha.rx, "back", 4);
    CHECK_STR(ha.proto, "/test/back/1");

    /* a protocol nobody serves */
    tstream none = {0};
    CHECK_OK(gn_channel_open_stream(ch, "/not/served/1", on_opened, &none));
    CHECK(run_until(open_done, &none, 5000));
    CHECK_EQ(none.open_status, GN_ENEGOTIATION);
    CHECK(none.s == NULL);
    CHECK_EQ(gn_channel_open_stream(ch, "", on_opened, &none), GN_EINVAL);

    gn_channel_metrics m;
    gn_channel_metrics_get(ch, &m);
    CHECK(m.streams_open >= 2);

    ts_close(&oa);
    ts_close(&hb);
    ts_close(&ob);
    ts_close(&ha);
    /* a channel closed by one side closes on the other */
    gn_channel_close(ch);
    gn_channel_close(ch); /* idempotent */
    gn_node_event ev;
    CHECK(wait_event(&a, GN_NODE_EV_CHANNEL_CLOSED, &ev, 5000));
    CHECK_EQ(ev.status, GN_ECLOSED);
    CHECK(wait_event(&b, GN_NODE_EV_CHANNEL_CLOSED, &ev, 5000));
    CHECK_EQ(gn_channel_state_get(ch, NULL), GN_CHANNEL_CLOSED);
    CHECK_EQ(gn_channel_send(ch, (const uint8_t *)"x", 1), GN_ECLOSED);
    gn_channel_rele(ch);
    finish();
}

/* ---- messages ---- */

static bool msg_is(const gn_node_event *ev, const char *text)
{
    gn_slice sl = gn_rcbuf_slice(ev->message);
    return sl.len == strlen(text) && memcmp(sl.base, text, sl.len) == 0;
}

GN_TEST(messages_send_unicast_broadcast)
{
    setup();
    tnode a, b, c;
    node_up(&a, 1, &mem_noise);
    node_up(&b, 2, &mem_noise);
    node_up(&c, 3, &mem_noise);
    gn_channel *ab = dial_ok(&a, b.addr);
    gn_node_event ev;

    CHECK_OK(gn_channel_send(ab, (const uint8_t *)"one", 3));
    CHECK(wait_event(&b, GN_NODE_EV_MESSAGE, &ev, 5000));
    CHECK(msg_is(&ev, "one"));
    CHECK(gn_peer_id_equal(&ev.peer, &a.pid));
    CHECK_STR(ev.protocol, GN_MSG_PROTOCOL_ID);

    /* unicast to a peer ID string of a connected peer */
    char bs[GN_PEER_ID_MAX_STRLEN];
    gn_peer_id_to_string(&b.pid, bs, sizeof bs);
    uint64_t req;
    CHECK_OK(gn_node_unicast(a.n, bs, (const uint8_t *)"two", 3, &req));
    CHECK(wait_event(&b, GN_NODE_EV_MESSAGE, &ev, 5000));
    CHECK(msg_is(&ev, "two"));
    /* unicast to an address: dialed first */
    CHECK_OK(gn_node_unicast(a.n, c.addr, (const uint8_t *)"three", 5, &req));
    CHECK(wait_event(&c, GN_NODE_EV_MESSAGE, &ev, 5000));
    CHECK(msg_is(&ev, "three"));
    /* a peer ID with no channel: a SEND_FAILED with the request id */
    gn_identity *other;
    CHECK_OK(gn_identity_from_int_seed(9, &other));
    gn_peer_id opid;
    gn_identity_peer_id(other, &opid);
    gn_identity_free(other);
    gn_peer_id_to_string(&opid, bs, sizeof bs);
    CHECK_OK(gn_node_unicast(b.n, bs, (const uint8_t *)"x", 1, &req));
    CHECK(wait_event(&b, GN_NODE_EV_SEND_FAILED, &ev, 5000));
    CHECK_EQ(ev.request_id, req);
    CHECK_EQ(ev.status, GN_ENOTFOUND);
    CHECK_EQ(gn_node_unicast(a.n, "garbage!", (const uint8_t *)"x", 1, NULL), GN_EPARSE);
    uint8_t big[2048] = {0};
    CHECK_OK(gn_node_configure(a.n, GN_NODE_OPT_MAX_MESSAGE_LEN, 1024));
    run_for(5);
    CHECK_EQ(gn_channel_send(ab, big, sizeof big), GN_ETOOBIG);
    CHECK_EQ(gn_node_broadcast(a.n, big, sizeof big, NULL), GN_ETOOBIG);
    CHECK_OK(gn_channel_send(ab, big, 1024)); /* exactly the bound */
    CHECK(wait_event(&b, GN_NODE_EV_MESSAGE, &ev, 5000));
    CHECK_EQ(gn_rcbuf_slice(ev.message).len, 1024);

    /* broadcast reaches every open channel */
    CHECK_OK(gn_node_broadcast(a.n, (const uint8_t *)"all", 3, NULL));
    CHECK(wait_event(&b, GN_NODE_EV_MESSAGE, &ev, 5000));
    CHECK(msg_is(&ev, "all"));
    CHECK(wait_event(&c, GN_NODE_EV_MESSAGE, &ev, 5000));
    CHECK(msg_is(&ev, "all"));
    /* an empty message is a message */
    CHECK_OK(gn_channel_send(ab, NULL, 0));
    CHECK(wait_event(&b, GN_NODE_EV_MESSAGE, &ev, 5000));
    CHECK_EQ(gn_rcbuf_slice(ev.message).len, 0);

    gn_channel_metrics m;
    gn_channel_metrics_get(ab, &m);
    CHECK_EQ(m.messages_out, 5);
    CHECK_EQ(m.messages_in, 0);
    run_for(10);
    CHECK_EQ(count_events(&a, GN_NODE_EV_SEND_FAILED), 0);
    gn_channel_rele(ab);
    finish();
}

GN_TEST(multicast_groups)
{
    setup();
    tnode a, b, c;
    node_up(&a, 1, &mem_noise);
    node_up(&b, 2, &mem_noise);
    node_up(&c, 3, &mem_noise);
    gn_channel *ab = dial_ok(&a, b.addr);
    gn_channel *ac = dial_ok(&a, c.addr);
    gn_multicast *mc;
    CHECK_EQ(gn_multicast_new(a.n, "", &mc), GN_EINVAL);
    CHECK_OK(gn_multicast_new(a.n, "group", &mc));
    CHECK_OK(gn_multicast_join(mc, &b.pid));
    CHECK_EQ(gn_multicast_join(mc, &b.pid), GN_EEXIST);
    CHECK_OK(gn_multicast_broadcast(mc, (const uint8_t *)"members", 7));
    gn_node_event ev;
    CHECK(wait_event(&b, GN_NODE_EV_MESSAGE, &ev, 5000));
    CHECK(msg_is(&ev, "members"));
    CHECK_EQ(gn_multicast_unicast(mc, &c.pid, (const uint8_t *)"no", 2), GN_ENOTFOUND);
    CHECK_OK(gn_multicast_unicast(mc, &b.pid, (const uint8_t *)"just b", 6));
    CHECK(wait_event(&b, GN_NODE_EV_MESSAGE, &ev, 5000));
    CHECK(msg_is(&ev, "just b"));
    CHECK_OK(gn_multicast_join(mc, &c.pid));
    CHECK_OK(gn_multicast_leave(mc, &b.pid));
    CHECK_EQ(gn_multicast_leave(mc, &b.pid), GN_ENOTFOUND);
    CHECK_OK(gn_multicast_broadcast(mc, (const uint8_t *)"now c", 5));
    CHECK(wait_event(&c, GN_NODE_EV_MESSAGE, &ev, 5000));
    CHECK(msg_is(&ev, "now c"));
    run_for(30);
    CHECK_EQ(count_events(&b, GN_NODE_EV_MESSAGE), 2);
    CHECK_EQ(count_events(&c, GN_NODE_EV_MESSAGE), 1);
    gn_multicast_free(mc);
    gn_channel_rele(ab);
    gn_channel_rele(ac);
    finish();
}

GN_TEST(event_queue_backpressure)
{
    setup();
    tnode a, b;
    node_up(&a, 1, &mem_noise);
    opts o = mem_noise;
    o.event_queue_capacity = 8;
    node_up(&b, 2, &o);
    gn_channel *ab = dial_ok(&a, b.addr);
    /* b's queue: stop collecting its events for a while */
    all_nodes[1] = NULL;
    enum { N = 100 };
    for (int i = 0; i < N; i++) {
        char text[16];
        snprintf(text, sizeof text, "m%03d", i);
        CHECK_OK(gn_channel_send(ab, (const uint8_t *)text, 4));
    }
    run_for(200);
    /* at most the queue's capacity is waiting; the rest waits in the stream */
    gn_channel *bch = NULL;
    (void)bch;
    size_t q = 0;
    gn_node_event ev;
    int got = 0;
    while (gn_node_next_event(b.n, &ev, 0) == 0) {
        q++;
        if (ev.type == GN_NODE_EV_MESSAGE) {
            char text[16];
            snprintf(text, sizeof text, "m%03d", got);
            CHECK(msg_is(&ev, text));
            got++;
        }
        gn_rcbuf_rele(ev.message);
    }
    CHECK(q <= 8);
    CHECK(got < N);
    /* popping lets the node deliver the rest, in order */
    for (int round = 0; round < 2000 && got < N; round++) {
        gn_loop_run(loop, GN_RUN_NOWAIT);
        while (gn_node_next_event(b.n, &ev, 0) == 0) {
            if (ev.type == GN_NODE_EV_MESSAGE) {
                char text[16];
                snprintf(text, sizeof text, "m%03d", got);
                CHECK(msg_is(&ev, text));
                got++;
            }
            gn_rcbuf_rele(ev.message);
        }
    }
    CHECK_EQ(got, N);
    all_nodes[1] = &b;
    gn_channel_rele(ab);
    finish();
}

/* ---- limits ---- */

GN_TEST(connection_limits)
{
    setup();
    tnode a, b, c;
    opts o = mem_noise;
    o.max_connections = 1;
    node_up(&a, 1, &o);
    node_up(&b, 2, &o);
    node_up(&c, 3, &mem_noise);
    gn_channel *ab = dial_ok(&a, b.addr);
    /* a is full: a second outbound dial is refused locally */
    dial_res r = {0};
    CHECK_OK(gn_node_dial(a.n, c.addr, on_dial, &r, NULL));
    CHECK(run_until(dial_done, &r, 5000));
    CHECK_EQ(r.status, GN_ELIMIT);
    /* b is full: c's inbound connection is dropped before the upgrade */
    dial_res r2 = {0};
    CHECK_OK(gn_node_dial(c.n, b.addr, on_dial, &r2, NULL));
    CHECK(run_until(dial_done, &r2, 5000));
    CHECK(r2.status < 0);
    /* raising the limit at run time lets the next dial through */
    CHECK_OK(gn_node_configure(a.n, GN_NODE_OPT_MAX_CONNECTIONS, 2));
    gn_channel *ac = dial_ok(&a, c.addr);
    gn_channel_rele(ab);
    gn_channel_rele(ac);
    finish();
}

GN_TEST(idle_channels_close)
{
    setup();
    tnode a, b;
    opts o = mem_noise;
    o.idle_timeout = 200 * GN_MS;
    node_up(&a, 1, &o);
    node_up(&b, 2, &mem_noise);
    gn_channel *ab = dial_ok(&a, b.addr);
    gn_node_event ev;
    /* message streams stay open, but do not keep the channel busy */
    CHECK_OK(gn_channel_send(ab, (const uint8_t *)"m", 1));
    CHECK(wait_event(&b, GN_NODE_EV_MESSAGE, &ev, 5000)); /* the harness frees it */
    CHECK(wait_event(&a, GN_NODE_EV_CHANNEL_CLOSED, &ev, 5000));
    CHECK_EQ(ev.status, GN_ETIMEDOUT);
    CHECK(wait_event(&b, GN_NODE_EV_CHANNEL_CLOSED, &ev, 5000));
    CHECK_EQ(gn_channel_state_get(ab, NULL), GN_CHANNEL_CLOSED);
    gn_channel_rele(ab);
    finish();
}

/* ---- ping ---- */

typedef struct ping_res {
    int calls;
    int status;
    gn_time rtt;
} ping_res;

static void on_ping(void *arg, int status, gn_time rtt)
{
    ping_res *p = arg;
    p->calls++;
    p->status = status;
    p->rtt = rtt;
}
static bool ping_done(void *arg) { return ((ping_res *)arg)->calls > 0; }

GN_TEST(ping_rtt)
{
    setup();
    tnode a, b;
    opts o = {.transport = "tcp", .security = "noise", .muxers = "yamux"};
    node_up(&a, 1, &o);
    node_up(&b, 2, &o);
    gn_channel *ab = dial_ok(&a, b.addr);
    ping_res p = {0};
    CHECK_OK(gn_channel_ping(ab, on_ping, &p));
    CHECK_EQ(p.calls, 0);
    CHECK(run_until(ping_done, &p, 5000));
    CHECK_EQ(p.status, 0);
    CHECK(p.rtt > 0);
    CHECK(p.rtt < 5 * GN_S);
    gn_channel_metrics m;
    gn_channel_metrics_get(ab, &m);
    CHECK_EQ(m.last_rtt, p.rtt);
    CHECK(m.uptime > 0);
    /* without a callback: a PING event */
    CHECK_OK(gn_channel_ping(ab, NULL, NULL));
    gn_node_event ev;
    CHECK(wait_event(&a, GN_NODE_EV_PING, &ev, 5000));
    CHECK_EQ(ev.status, 0);
    CHECK(ev.rtt > 0);
    CHECK(gn_peer_id_equal(&ev.peer, &b.pid));
    run_for(20);
    CHECK_EQ(p.calls, 1);
    gn_channel_rele(ab);
    finish();
}

/* ---- close with pending work ---- */

static bool node_closed(void *arg) { return ((tnode *)arg)->closed > 0; }

GN_TEST(close_cancels_pending)
{
    setup();
    tnode a, b, c;
    node_up(&a, 1, &mem_noise);
    node_up(&b, 2, &mem_noise);
    node_up(&c, 3, &mem_noise);
    gn_channel *ab = dial_ok(&a, b.addr);
    /* pending at close: a dial, a stream open, a ping, a queued message */
    dial_res r = {0};
    CHECK_OK(gn_node_dial(a.n, c.addr, on_dial, &r, NULL));
    tstream os = {0};
    CHECK_OK(gn_channel_open_stream(ab, "/ipfs/ping/1.0.0", on_opened, &os));
    ping_res p = {0};
    CHECK_OK(gn_channel_ping(ab, on_ping, &p));
    gn_node_close(a.n, on_node_closed, &a);
    gn_node_close(a.n, on_node_closed, &a); /* idempotent: one callback */
    CHECK_EQ(a.closed, 0);                  /* never from inside the call */
    CHECK_EQ(gn_node_dial(a.n, c.addr, on_dial, &r, NULL), GN_ECLOSED);
    CHECK_EQ(gn_channel_send(ab, (const uint8_t *)"x", 1), GN_ECLOSED);
    CHECK_EQ(gn_node_broadcast(a.n, (const uint8_t *)"x", 1, NULL), GN_ECLOSED);
    CHECK(run_until(node_closed, &a, 5000));
    /* every pending operation completed exactly once, before the close callback */
    CHECK_EQ(r.calls, 1);
    CHECK_EQ(r.status, GN_ECANCELED);
    CHECK_EQ(os.open_calls, 1);
    CHECK_EQ(os.open_status, GN_ECANCELED);
    CHECK_EQ(p.calls, 1);
    CHECK_EQ(p.status, GN_ECANCELED);
    CHECK_EQ(gn_channel_state_get(ab, NULL), GN_CHANNEL_CLOSED);
    gn_node_event ev;
    CHECK(wait_event(&a, GN_NODE_EV_CHANNEL_CLOSED, &ev, 5000));
    CHECK_EQ(ev.status, GN_ECANCELED);
    CHECK(wait_event(&b, GN_NODE_EV_CHANNEL_CLOSED, &ev, 5000));
    run_for(20);
    CHECK_EQ(r.calls + os.open_calls + p.calls, 3);
    CHECK_EQ(a.closed, 1);
    gn_channel_rele(ab);
    a.closed = 0; /* teardown closes it again (a no-op) and counts the CLOSED event */
    gn_node_close(a.n, NULL, NULL);
    a.closed = 1;
    finish();
}

/* ---- dials that hang (SYNs dropped) ---- */

static bool dial_or_closed(void *arg)
{
    tnode *t = arg;
    return t->closed > 0;
}

/* Closing a node whose dial hangs is immediate: the transport dial is
 * cancelled (its socket closed) rather than waited for (10 s). */
GN_TEST(close_after_hanging_dial_is_immediate)
{
    syn_drop sd;
    if (!syn_drop_open(&sd)) {
        syn_drop_close(&sd);
        SKIP("the kernel completed every handshake; cannot provoke dropped SYNs");
    }
    setup();
    tnode a;
    opts o = {.transport = "tcp", .security = "noise", .muxers = "yamux", .no_listen = true};
    node_up(&a, 1, &o);
    char addr[64];
    snprintf(addr, sizeof addr, "/ip4/127.0.0.1/tcp/%u", sd.port);
    dial_res r = {0};
    CHECK_OK(gn_node_dial(a.n, addr, on_dial, &r, NULL));
    run_for(100);
    CHECK_EQ(r.calls, 0);
    int fds1 = syn_drop_count_fds(); /* the dialing socket open */
    gn_time t0 = gn_now();
    gn_node_close(a.n, on_node_closed, &a);
    CHECK(run_until(dial_or_closed, &a, 5000));
    gn_time took = gn_now() - t0;
    CHECK(took < 500 * GN_MS);
    CHECK_EQ(r.calls, 1);
    CHECK_EQ(r.status, GN_ECANCELED);
    if (fds1 >= 0) { /* -1: no descriptor count here (Windows) */
        CHECK_EQ(syn_drop_count_fds(), fds1 - 1);
    }
    syn_drop_close(&sd);
    finish();
}

/* The node's upgrade timeout ends the dial: the waiter gets GN_ETIMEDOUT
 * at the timeout and the socket is closed then, not at the transport's own
 * 10 s dial timeout. */
GN_TEST(upgrade_timeout_ends_hanging_dial)
{
    syn_drop sd;
    if (!syn_drop_open(&sd)) {
        syn_drop_close(&sd);
        SKIP("the kernel completed every handshake; cannot provoke dropped SYNs");
    }
    setup();
    tnode a;
    opts o = {.transport = "tcp", .security = "noise", .muxers = "yamux", .no_listen = true,
              .upgrade_timeout = 300 * GN_MS};
    node_up(&a, 1, &o);
    char addr[64];
    snprintf(addr, sizeof addr, "/ip4/127.0.0.1/tcp/%u", sd.port);
    dial_res r = {0};
    gn_time t0 = gn_now();
    CHECK_OK(gn_node_dial(a.n, addr, on_dial, &r, NULL));
    run_for(100);
    CHECK_EQ(r.calls, 0);
    int fds1 = syn_drop_count_fds(); /* the dialing socket open */
    CHECK(run_until(dial_done, &r, 5000));
    gn_time took = gn_now() - t0;
    CHECK_EQ(r.status, GN_ETIMEDOUT);
    CHECK(took >= 250 * GN_MS);
    CHECK(took < 1500 * GN_MS);
    run_for(20);
    if (fds1 >= 0) { /* -1: no descriptor count here (Windows) */
        CHECK_EQ(syn_drop_count_fds(), fds1 - 1); /* the socket is gone too */
    }
    CHECK_EQ(a.n->nchannels, 0);
    syn_drop_close(&sd);
    finish();
}

/* ---- stacks ---- */

GN_TEST(ecies_only_dials_noise_and_ecies)
{
    setup();
    tnode a, b;
    opts oa = {.transport = "memory", .security = "ecies", .muxers = "yamux"};
    opts ob = {.transport = "memory", .security = "noise,ecies", .muxers = "yamux"};
    node_up(&a, 1, &oa);
    node_up(&b, 2, &ob);
    gn_channel *ch = dial_ok(&a, b.addr);
    gn_channel_info info;
    gn_channel_state_get(ch, &info);
    CHECK_STR(info.security, "/golem/ecies/1.0.0");
    gn_node_event ev;
    CHECK(wait_event(&b, GN_NODE_EV_CHANNEL_OPENED, &ev, 5000));
    gn_channel_rele(ch);
    finish();
}

static void mplex_against_both(const char *security)
{
    setup();
    tnode a, b;
    opts oa = {.transport = "memory", .security = security, .muxers = "mplex"};
    opts ob = {.transport = "memory", .security = security, .muxers = "yamux,mplex"};
    node_up(&a, 1, &oa);
    node_up(&b, 2, &ob);
    gn_channel *ch = dial_ok(&a, b.addr);
    gn_channel_info info;
    gn_channel_state_get(ch, &info);
    CHECK_STR(info.muxer, "/mplex/6.7.0");
    CHECK_OK(gn_channel_send(ch, (const uint8_t *)"over mplex", 10));
    gn_node_event ev;
    CHECK(wait_event(&b, GN_NODE_EV_MESSAGE, &ev, 5000));
    CHECK(msg_is(&ev, "over mplex"));
    CHECK(wait_event(&a, GN_NODE_EV_IDENTIFY, &ev, 5000));
    CHECK_EQ(ev.status, 0);
    gn_channel_rele(ch);
    /* and the other way round: b prefers yamux, a only speaks mplex */
    gn_channel *back = dial_ok(&b, a.addr);
    gn_channel_state_get(back, &info);
    CHECK_STR(info.muxer, "/mplex/6.7.0");
    gn_channel_rele(back);
    finish();
}

GN_TEST(mplex_only_vs_yamux_mplex_noise) { mplex_against_both("noise"); }
GN_TEST(mplex_only_vs_yamux_mplex_plaintext) { mplex_against_both("plaintext"); }

/* ---- the any-thread API, nodes on their own loop threads ---- */

typedef struct thread_ctx {
    gn_node *n;
    const char *addr;
    int dial_status;
    uint64_t channel_id;
    bool got_msg;
} thread_ctx;

static void *dialer_thread(void *arg)
{
    thread_ctx *t = arg;
    uint64_t req = 0;
    if (gn_node_dial(t->n, t->addr, NULL, NULL, &req) < 0) {
        t->dial_status = -999;
        return NULL;
    }
    gn_node_event ev;
    t->dial_status = 1;
    for (int i = 0; i < 100; i++) {
        int rc = gn_node_next_event(t->n, &ev, 100 * GN_MS);
        if (rc == 0) {
            gn_rcbuf_rele(ev.message);
            if (ev.type == GN_NODE_EV_DIAL && ev.request_id == req) {
                t->dial_status = ev.status;
                t->channel_id = ev.channel_id;
                break;
            }
        }
    }
    return NULL;
}

static int wait_type(gn_node *n, gn_node_event_type type, gn_node_event *out)
{
    for (int i = 0; i < 100; i++) {
        gn_node_event ev;
        int rc = gn_node_next_event(n, &ev, 100 * GN_MS);
        if (rc == 0 && ev.type == type) {
            *out = ev;
            return 0;
        }
        if (rc == 0) {
            gn_rcbuf_rele(ev.message);
        }
    }
    return GN_ETIMEDOUT;
}

GN_TEST(any_thread_api)
{
    gn_identity *ia, *ib;
    CHECK_OK(gn_identity_from_int_seed(1, &ia));
    CHECK_OK(gn_identity_from_int_seed(2, &ib));
    gn_node_config cfg;
    gn_node_config_default(&cfg);
    const char *listen = "/ip4/127.0.0.1/tcp/0";
    cfg.listen = &listen;
    cfg.n_listen = 1;
    cfg.security = "noise";
    cfg.identity = ia;
    gn_node *a, *b;
    CHECK_OK(gn_node_new(&cfg, &a));
    cfg.identity = ib;
    CHECK_OK(gn_node_new(&cfg, &b));
    CHECK_OK(gn_node_start(a));
    CHECK_OK(gn_node_start(b));
    CHECK_EQ(gn_node_start(b), GN_ESTATE);
    gn_node_event ev;
    CHECK_OK(wait_type(b, GN_NODE_EV_LISTENING, &ev));
    CHECK_EQ(ev.status, 0);
    char baddr[GN_NODE_ADDR_MAX];
    snprintf(baddr, sizeof baddr, "%s", ev.addr);
    CHECK_OK(wait_type(a, GN_NODE_EV_LISTENING, &ev));

    /* a second thread dials and waits for the DIAL event */
    thread_ctx t = {.n = a, .addr = baddr};
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, dialer_thread, &t), 0);
    pthread_join(th, NULL);
    CHECK_EQ(t.dial_status, 0);
    CHECK(t.channel_id > 0);
    /* messages from this (non-loop) thread */
    char bs[GN_PEER_ID_MAX_STRLEN];
    gn_peer_id pb;
    gn_identity_peer_id(ib, &pb);
    gn_peer_id_to_string(&pb, bs, sizeof bs);
    uint64_t req;
    CHECK_OK(gn_node_unicast(a, bs, (const uint8_t *)"cross-thread", 12, &req));
    CHECK_OK(wait_type(b, GN_NODE_EV_MESSAGE, &ev));
    CHECK(msg_is(&ev, "cross-thread"));
    gn_rcbuf_rele(ev.message);
    CHECK_OK(gn_node_broadcast(b, (const uint8_t *)"hi a", 4, NULL));
    CHECK_OK(wait_type(a, GN_NODE_EV_MESSAGE, &ev));
    CHECK(msg_is(&ev, "hi a"));
    gn_rcbuf_rele(ev.message);
    CHECK_OK(gn_node_configure(a, GN_NODE_OPT_IDLE_TIMEOUT_MS, 0));
    /* close from this thread; the CLOSED event ends the queue */
    gn_node_close(a, NULL, NULL);
    CHECK_OK(wait_type(a, GN_NODE_EV_CLOSED, &ev));
    /* the queue closes right after the CLOSED event is queued */
    CHECK_EQ(gn_node_next_event(a, &ev, 2 * GN_S), GN_ECLOSED);
    gn_node_free(a);
    gn_node_free(b); /* closes and waits itself */
    gn_identity_free(ia);
    gn_identity_free(ib);
}

/* ---- close with a full command queue ---- */

typedef struct blocker {
    uv_sem_t started, release;
} blocker;

static void block_loop(gn_loop *l, void *arg)
{
    (void)l;
    blocker *b = arg;
    uv_sem_post(&b->started);
    uv_sem_wait(&b->release);
}

/* Stops @n's loop thread inside a command, then fills its command queue. */
static void block_and_fill(gn_node *n, blocker *b)
{
    CHECK_OK(gn_loop_submit(gn_node_loop(n), block_loop, b));
    uv_sem_wait(&b->started);
    int rc = 0;
    for (int i = 0; i < 100000 && rc == 0; i++) {
        rc = gn_node_configure(n, GN_NODE_OPT_IDLE_TIMEOUT_MS, 0);
    }
    CHECK_EQ(rc, GN_EAGAIN);
}

typedef struct async_dial {
    _Atomic int calls;
    int status;
    gn_channel *ch;
} async_dial;

static void on_async_dial(void *arg, int status, gn_channel *ch)
{
    async_dial *d = arg;
    d->status = status;
    d->ch = ch ? gn_channel_hold(ch) : NULL;
    atomic_fetch_add(&d->calls, 1);
}

static _Atomic int full_q_closed;
static void on_full_q_closed(gn_node *n, void *arg)
{
    (void)n;
    (void)arg;
    atomic_fetch_add(&full_q_closed, 1);
}

static bool wait_atomic(_Atomic int *v, int want, gn_time ms)
{
    for (gn_time t0 = gn_now(); atomic_load(v) < want;) {
        if (gn_now() - t0 > ms * GN_MS) {
            return false;
        }
        usleep(1000);
    }
    return true;
}

/* gn_channel_close and gn_node_close from another thread while the command
 * queue is full: neither close is lost; each completes once the loop runs. */
GN_TEST(close_with_full_command_queue)
{
    gn_identity *ia, *ib;
    CHECK_OK(gn_identity_from_int_seed(1, &ia));
    CHECK_OK(gn_identity_from_int_seed(2, &ib));
    gn_node_config cfg;
    gn_node_config_default(&cfg);
    const char *listen = "/ip4/127.0.0.1/tcp/0";
    cfg.listen = &listen;
    cfg.n_listen = 1;
    cfg.security = "noise";
    cfg.command_queue_capacity = 8;
    cfg.identity = ia;
    gn_node *a, *b;
    CHECK_OK(gn_node_new(&cfg, &a));
    cfg.identity = ib;
    CHECK_OK(gn_node_new(&cfg, &b));
    CHECK_OK(gn_node_start(a));
    CHECK_OK(gn_node_start(b));
    gn_node_event ev;
    CHECK_OK(wait_type(a, GN_NODE_EV_LISTENING, &ev));
    CHECK_OK(wait_type(b, GN_NODE_EV_LISTENING, &ev));
    async_dial d = {0};
    CHECK_OK(gn_node_dial(a, ev.addr, on_async_dial, &d, NULL));
    CHECK(wait_atomic(&d.calls, 1, 5000));
    CHECK_EQ(d.status, 0);
    CHECK(d.ch != NULL);
    CHECK_EQ(gn_channel_state_get(d.ch, NULL), GN_CHANNEL_OPEN);

    blocker bl;
    uv_sem_init(&bl.started, 0);
    uv_sem_init(&bl.release, 0);
    /* the channel close, queue full */
    block_and_fill(a, &bl);
    gn_channel_close(d.ch);
    uv_sem_post(&bl.release);
    gn_channel_state st = GN_CHANNEL_OPEN;
    for (int i = 0; i < 5000 && st != GN_CHANNEL_CLOSED; i++) {
        usleep(1000);
        st = gn_channel_state_get(d.ch, NULL);
    }
    CHECK_EQ(st, GN_CHANNEL_CLOSED);
    /* the node close, queue full */
    atomic_store(&full_q_closed, 0);
    block_and_fill(a, &bl);
    gn_time t0 = gn_now();
    gn_node_close(a, on_full_q_closed, NULL);
    gn_node_close(a, on_full_q_closed, NULL); /* idempotent */
    uv_sem_post(&bl.release);
    CHECK(wait_atomic(&full_q_closed, 1, 5000));
    CHECK(gn_now() - t0 < 2 * GN_S);
    CHECK_OK(wait_type(a, GN_NODE_EV_CLOSED, &ev));
    usleep(20000);
    CHECK_EQ(atomic_load(&full_q_closed), 1);
    gn_channel_rele(d.ch);
    gn_node_free(a);
    gn_node_free(b);
    uv_sem_destroy(&bl.started);
    uv_sem_destroy(&bl.release);
    gn_identity_free(ia);
    gn_identity_free(ib);
}

/* ---- channels by ID and fresh metrics from any thread ---- */

typedef struct metrics_ctx {
    gn_node *n;
    gn_node *peer;              /* receives the messages */
    uint64_t channel_id;
    int sent;                   /* messages to send from the thread */
    /* results, checked by the test thread */
    bool got, got_unknown;
    int send_rc;
    int rc1, rc2, rc_closed;
    gn_channel_metrics m1, m2;
    uv_sem_t done;
} metrics_ctx;

/* A second thread: finds the channel by ID, sends, reads fresh metrics. */
static void *metrics_thread(void *arg)
{
    metrics_ctx *t = arg;
    gn_channel *ch = gn_node_channel_get(t->n, t->channel_id);
    gn_channel *none = gn_node_channel_get(t->n, t->channel_id + 1000);
    t->got = ch != NULL;
    t->got_unknown = none != NULL;
    gn_channel_rele(none);
    if (ch) {
        for (int i = 0; i < t->sent && t->send_rc == 0; i++) {
            t->send_rc = gn_channel_send(ch, (const uint8_t *)"m", 1);
        }
        /* written once the peer has them all */
        int got = 0;
        for (int i = 0; i < 100 && got < t->sent; i++) {
            gn_node_event ev;
            if (gn_node_next_event(t->peer, &ev, 100 * GN_MS) == 0) {
                got += ev.type == GN_NODE_EV_MESSAGE;
                gn_rcbuf_rele(ev.message);
            }
        }
        t->rc1 = gn_channel_metrics_refresh(ch, &t->m1, 5 * GN_S);
        uv_sleep(120);
        t->rc2 = gn_channel_metrics_refresh(ch, &t->m2, 5 * GN_S);
        gn_channel_rele(ch);
    }
    return NULL;
}

/* On the loop thread: both calls answer at once (no deadlock). */
static void metrics_on_loop(gn_loop *l, void *arg)
{
    (void)l;
    metrics_ctx *t = arg;
    gn_channel *ch = gn_node_channel_get(t->n, t->channel_id);
    t->got = ch != NULL && ch == gn_node_channel_find(t->n, t->channel_id);
    t->rc1 = ch ? gn_channel_metrics_refresh(ch, &t->m1, GN_TIME_INFINITY) : -999;
    gn_channel_rele(ch);
    uv_sem_post(&t->done);
}

GN_TEST(channel_get_and_metrics_refresh_any_thread)
{
    gn_identity *ia, *ib;
    CHECK_OK(gn_identity_from_int_seed(1, &ia));
    CHECK_OK(gn_identity_from_int_seed(2, &ib));
    gn_node_config cfg;
    gn_node_config_default(&cfg);
    const char *listen = "/ip4/127.0.0.1/tcp/0";
    cfg.listen = &listen;
    cfg.n_listen = 1;
    cfg.security = "noise";
    cfg.identity = ia;
    gn_node *a, *b;
    CHECK_OK(gn_node_new(&cfg, &a));
    cfg.identity = ib;
    CHECK_OK(gn_node_new(&cfg, &b));
    CHECK_OK(gn_node_start(a));
    CHECK_OK(gn_node_start(b));
    gn_node_event ev;
    CHECK_OK(wait_type(b, GN_NODE_EV_LISTENING, &ev));
    char baddr[GN_NODE_ADDR_MAX];
    snprintf(baddr, sizeof baddr, "%s", ev.addr);
    CHECK_OK(wait_type(a, GN_NODE_EV_LISTENING, &ev));
    uint64_t req = 0;
    CHECK_OK(gn_node_dial(a, baddr, NULL, NULL, &req));
    CHECK_OK(wait_type(a, GN_NODE_EV_DIAL, &ev));
    CHECK_EQ(ev.status, 0);
    uint64_t id = ev.channel_id;
    CHECK(id > 0);
    CHECK(gn_node_channel_get(NULL, id) == NULL);
    /* the borrowed lookup is for the loop thread only */
    CHECK(gn_node_channel_find(a, id) == NULL);

    /* a second thread: lookup by ID, send 5 messages, fresh metrics twice */
    metrics_ctx t = {.n = a, .peer = b, .channel_id = id, .sent = 5};
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, metrics_thread, &t), 0);
    pthread_join(th, NULL);
    CHECK(t.got);
    CHECK(!t.got_unknown);
    CHECK_OK(t.send_rc);
    CHECK_OK(t.rc1);
    CHECK_OK(t.rc2);
    /* the sends were queued before the refresh: counted in it */
    CHECK_EQ(t.m1.messages_out, 5);
    CHECK(t.m1.bytes_out > 0);
    /* a fresh snapshot each time: the uptime moved with the clock, which a
     * stale snapshot (up to a second old) would not show */
    CHECK(t.m2.uptime >= t.m1.uptime + 100 * GN_MS);
    CHECK(t.m2.uptime > 0);

    /* the same calls on the loop thread answer at once */
    metrics_ctx lt = {.n = a, .channel_id = id};
    CHECK_EQ(uv_sem_init(&lt.done, 0), 0);
    CHECK_OK(gn_loop_submit(gn_node_loop(a), metrics_on_loop, &lt));
    uv_sem_wait(&lt.done);
    uv_sem_destroy(&lt.done);
    CHECK(lt.got);
    CHECK_OK(lt.rc1);
    CHECK_EQ(lt.m1.messages_out, 5);

    /* a loop that does not answer: the wait is bounded */
    blocker bl;
    CHECK_EQ(uv_sem_init(&bl.started, 0), 0);
    CHECK_EQ(uv_sem_init(&bl.release, 0), 0);
    CHECK_OK(gn_loop_submit(gn_node_loop(a), block_loop, &bl));
    uv_sem_wait(&bl.started);
    gn_channel *ch = gn_node_channel_get(a, id); /* no loop needed */
    CHECK(ch != NULL);
    gn_channel_metrics m;
    uint64_t t0 = uv_hrtime();
    CHECK_EQ(gn_channel_metrics_refresh(ch, &m, 50 * GN_MS), GN_ETIMEDOUT);
    uint64_t took = uv_hrtime() - t0;
    CHECK(took >= 50 * GN_MS && took < 2 * GN_S);
    CHECK_EQ(m.messages_out, 5); /* the last snapshot */
    CHECK_EQ(gn_channel_metrics_refresh(ch, &m, 0), GN_ETIMEDOUT);
    uv_sem_post(&bl.release);
    CHECK_OK(gn_channel_metrics_refresh(ch, &m, 5 * GN_S));
    CHECK_EQ(m.messages_out, 5);
    uv_sem_destroy(&bl.started);
    uv_sem_destroy(&bl.release);

    /* once the channel finished closing it is not found; a held one keeps
     * its final values, also after the node is freed */
    gn_channel_close(ch);
    CHECK_OK(wait_type(a, GN_NODE_EV_CHANNEL_CLOSED, &ev));
    CHECK(gn_node_channel_get(a, id) == NULL);
    gn_node_close(a, NULL, NULL);
    CHECK_OK(wait_type(a, GN_NODE_EV_CLOSED, &ev));
    gn_node_free(a);
    CHECK_OK(gn_channel_metrics_refresh(ch, &m, 5 * GN_S));
    CHECK_EQ(m.messages_out, 5);
    CHECK_EQ(gn_channel_state_get(ch, NULL), GN_CHANNEL_CLOSED);
    gn_channel_rele(ch);
    gn_node_free(b);
    gn_identity_free(ia);
    gn_identity_free(ib);
}

/* gn_node_dial_ex() recorder. */
typedef struct dial_ex_res {
    int calls;
    int status;
    gn_peer_id peer;
    gn_channel *ch;
} dial_ex_res;

static void on_dial_ex(void *arg, const gn_node_dial_result *res)
{
    dial_ex_res *r = arg;
    r->calls++;
    r->status = res->status;
    r->peer = res->peer;
    r->ch = res->ch ? gn_channel_hold(res->ch) : NULL;
}

static bool dial_ex_done(void *arg) { return ((dial_ex_res *)arg)->calls > 0; }

/*
 * A dial to a /p2p/ id the listener does not have, over TCP on 127.0.0.1:
 * GN_EPEERID, and the application learns which peer answered, through
 * gn_node_dial_ex() and through the GN_NODE_EV_DIAL event, for Noise and
 * ECIES.
 */
GN_TEST(dial_wrong_peer_id_reports_received)
{
    setup();
    static const opts tcp_noise = {.transport = "tcp", .security = "noise", .muxers = "yamux"};
    static const opts tcp_ecies = {.transport = "tcp", .security = "ecies", .muxers = "yamux"};
    tnode a, b, c, d;
    node_up(&a, 1, &tcp_noise);
    node_up(&b, 2, &tcp_noise);
    node_up(&c, 3, &tcp_ecies);
    node_up(&d, 4, &tcp_ecies);
    gn_identity *other;
    gn_peer_id wrong;
    CHECK_OK(gn_identity_from_int_seed(9, &other));
    gn_identity_peer_id(other, &wrong);
    gn_identity_free(other);
    char addr[GN_NODE_ADDR_MAX];

    CHECK_EQ(gn_node_dial_ex(a.n, b.addr, NULL, NULL, NULL), GN_EINVAL);
    /* noise, callback: b answered instead of "wrong" */
    with_peer(addr, sizeof addr, b.addr, &wrong);
    dial_ex_res r = {0};
    CHECK_OK(gn_node_dial_ex(a.n, addr, on_dial_ex, &r, NULL));
    CHECK(run_until(dial_ex_done, &r, 5000));
    CHECK_EQ(r.status, GN_EPEERID);
    CHECK(r.ch == NULL);
    CHECK(gn_peer_id_equal(&r.peer, &b.pid));
    /* noise, event */
    uint64_t req = 0;
    CHECK_OK(gn_node_dial(a.n, addr, NULL, NULL, &req));
    gn_node_event ev;
    CHECK(wait_event(&a, GN_NODE_EV_DIAL, &ev, 5000));
    CHECK_EQ(ev.request_id, req);
    CHECK_EQ(ev.status, GN_EPEERID);
    CHECK_EQ(ev.channel_id, 0);
    CHECK(gn_peer_id_equal(&ev.peer, &b.pid));
    /* ecies, callback */
    with_peer(addr, sizeof addr, d.addr, &wrong);
    dial_ex_res r2 = {0};
    CHECK_OK(gn_node_dial_ex(c.n, addr, on_dial_ex, &r2, NULL));
    CHECK(run_until(dial_ex_done, &r2, 5000));
    CHECK_EQ(r2.status, GN_EPEERID);
    CHECK(gn_peer_id_equal(&r2.peer, &d.pid));
    /* other errors carry no peer: no common security (noise a, ecies d) */
    dial_ex_res r3 = {0};
    CHECK_OK(gn_node_dial_ex(a.n, d.addr, on_dial_ex, &r3, NULL));
    CHECK(run_until(dial_ex_done, &r3, 5000));
    CHECK_EQ(r3.status, GN_ENEGOTIATION);
    CHECK_EQ(r3.peer.len, 0);
    /* success: the channel and its peer */
    dial_ex_res r4 = {0};
    CHECK_OK(gn_node_dial_ex(a.n, b.addr, on_dial_ex, &r4, NULL));
    CHECK(run_until(dial_ex_done, &r4, 5000));
    CHECK_EQ(r4.status, 0);
    CHECK(r4.ch != NULL);
    CHECK(gn_peer_id_equal(&r4.peer, &b.pid));
    gn_channel_rele(r4.ch);
    run_for(20);
    CHECK_EQ(r.calls + r2.calls + r3.calls + r4.calls, 4);
    CHECK_EQ(count_events(&a, GN_NODE_EV_DIAL), 1);
    CHECK_EQ(count_events(&c, GN_NODE_EV_CHANNEL_OPENED), 0);
    finish();
}

/* ---- resource accounting of message streams ---- */

/* Peer scope memory of @pid in @n's manager (0 when the scope is gone). */
static uint64_t peer_memory(tnode *n, const gn_peer_id *pid)
{
    gn_rcmgr_usage u;
    int rc = gn_rcmgr_stat(gn_node_rcmgr(n->n), GN_RCMGR_SCOPE_PEER, pid->bytes, pid->len, &u);
    return rc == 0 ? u.memory : 0;
}

#define AMP_STREAMS 6
#define AMP_PEER_MEM (64u * 1024u)
#define AMP_PARTIAL (24u * 1024u)
#define AMP_RX_STEP (64u * 1024u)   /* the muxer's receive reservation step, one kept */
#define AMP_SEND_STEP (64u * 1024u) /* the least send budget a session reserves */
/* Noise's secured stream: one cipher frame (max_plain + overhead) */
#define AMP_SEC_FRAME (65519u + 18u)
/* and at most the receive buffer it keeps (64 KiB) and a spare sealed write */
#define AMP_SEC_SLACK (64u * 1024u + 8u * 1024u)
#define HONEST_LEN 20000u

typedef struct amp {
    tnode *victim;
    const gn_peer_id *attacker;
    uint64_t peak; /* highest peer memory seen */
    tstream s[AMP_STREAMS];
    size_t want_resets;
} amp;

static size_t amp_resets(amp *a)
{
    size_t k = 0;
    for (size_t i = 0; i < AMP_STREAMS; i++) {
        k += a->s[i].err != 0;
    }
    return k;
}

static bool amp_sample(void *arg)
{
    amp *a = arg;
    a->peak = GNI_MAX(a->peak, peer_memory(a->victim, a->attacker));
    return false;
}

static bool amp_all_opened(void *arg)
{
    amp *a = arg;
    amp_sample(a);
    for (size_t i = 0; i < AMP_STREAMS; i++) {
        if (a->s[i].open_calls == 0) {
            return false;
        }
    }
    return true;
}

static bool amp_reset_seen(void *arg)
{
    amp *a = arg;
    amp_sample(a);
    return amp_resets(a) >= a->want_resets && eresource_ends >= (int)a->want_resets;
}

GN_TEST(msg_amplification_bounded_per_peer)
{
    setup();
    eresource_ends = 0;
    span_refusals = 0;
    tnode v, atk, hon;
    node_up(&v, 1, &mem_noise);
    node_up(&atk, 2, &mem_noise);
    node_up(&hon, 3, &mem_noise);
    gn_channel *ach = dial_ok(&atk, v.addr);
    gn_channel *hch = dial_ok(&hon, v.addr);
    /* the host hands components the node's manager and each open
     * channel's connection span */
    CHECK(gn_host_rcmgr(gn_node_host(v.n)) == gn_node_rcmgr(v.n));
    CHECK(gn_channel_rcmgr_conn(ach) != NULL);
    CHECK(gn_channel_rcmgr_conn(NULL) == NULL);

    /* the attacker opens raw message streams, announces 1 MiB messages and
     * sends 24 KiB of each: 144 KiB in all, over twice its limit */
    amp a = {.victim = &v, .attacker = &atk.pid};
    for (size_t i = 0; i < AMP_STREAMS; i++) {
        CHECK_OK(gn_channel_open_stream(ach, GN_MSG_PROTOCOL_ID, on_opened, &a.s[i]));
    }
    CHECK(run_until(amp_all_opened, &a, 5000));
    run_for(20);
    /* the muxer accounts the session's send budget and what it received
     * (the negotiations: one receive step kept), the secure channel its
     * cipher frame and small buffers, all of it in the attacker's scope;
     * the idle streams hold no window */
    const uint64_t base = peer_memory(&v, &atk.pid);
    CHECK(base >= AMP_SEND_STEP + AMP_RX_STEP + AMP_SEC_FRAME);
    CHECK(base <= AMP_SEND_STEP + AMP_RX_STEP + AMP_SEC_FRAME + 8u * 1024u);
    /*
     * The victim now allows each peer that plus AMP_PEER_MEM for message
     * buffers, which reserve at GN_RCMGR_PRIO_HIGH (up to 204/256 of the
     * limit). The loop runs on this thread.
     */
    gn_rcmgr_limits l;
    gn_rcmgr_get_limits(gn_node_rcmgr(v.n), &l);
    l.peer.memory = (base + AMP_PEER_MEM) * 256u / 204u;
    CHECK_OK(gn_rcmgr_set_limits(gn_node_rcmgr(v.n), &l));
    a.peak = base;
    static uint8_t frame[4 + AMP_PARTIAL];
    size_t flen = 0;
    frame[flen++] = 0x01; /* version */
    frame[flen++] = 0x80; /* varint 1048576 (1 MiB, the default maximum) */
    frame[flen++] = 0x80;
    frame[flen++] = 0x40;
    memset(frame + flen, 0x5a, AMP_PARTIAL);
    flen += AMP_PARTIAL;
    for (size_t i = 0; i < AMP_STREAMS; i++) {
        CHECK_EQ(a.s[i].open_status, 0);
        gn_slice iov = gn_slice_of(frame, flen);
        CHECK_OK(gn_stream_write(a.s[i].s, &iov, 1, NULL, NULL));
    }
    /*
     * About two streams' buffers fit in AMP_PEER_MEM: a third is refused
     * and reset (by the message reader, or by the muxer when even the
     * bytes in transit cannot be reserved). A reset stream gives its
     * buffer back, which may make room for the others, so at least one
     * and at most AMP_STREAMS - 2 are reset.
     */
    a.want_resets = 1;
    CHECK(run_until(amp_reset_seen, &a, 5000));
    run_until(amp_sample, &a, 100);
    CHECK(amp_resets(&a) >= 1);
    CHECK(amp_resets(&a) <= AMP_STREAMS - 2);
    CHECK(a.peak >= base);                        /* everything was accounted */
    CHECK(a.peak <= l.peer.memory); /* and never beyond the limit */
    gn_rcmgr_refusal ref;
    CHECK_OK(gn_rcmgr_last_refusal(gn_node_rcmgr(v.n), &ref));
    CHECK_EQ(ref.scope, GN_RCMGR_SCOPE_PEER);
    CHECK_EQ(ref.res, GN_RCMGR_RES_MEMORY);
    CHECK(gn_rcmgr_refusal_count(gn_node_rcmgr(v.n), GN_RCMGR_SCOPE_PEER) >= a.want_resets);
    for (size_t i = 0; i < AMP_STREAMS; i++) {
        if (a.s[i].err) {
            CHECK_EQ(a.s[i].err, GN_ESTREAMRESET);
        }
    }

    /* the honest peer's messages still arrive, intact */
    static uint8_t big[HONEST_LEN];
    for (size_t i = 0; i < sizeof big; i++) {
        big[i] = (uint8_t)(i * 13);
    }
    for (int k = 0; k < 3; k++) {
        CHECK_OK(gn_channel_send(hch, big, sizeof big));
    }
    for (int k = 0; k < 3; k++) {
        gn_node_event ev;
        CHECK(wait_event(&v, GN_NODE_EV_MESSAGE, &ev, 5000));
        CHECK(gn_peer_id_equal(&ev.peer, &hon.pid));
        CHECK_EQ(gn_rcbuf_slice(ev.message).len, sizeof big);
        CHECK_MEM(gn_rcbuf_slice(ev.message).base, big, sizeof big);
    }
    /* delivered messages are the application's: the peer holds only what
     * its muxer does (the kept receive step, the send budget) */
    CHECK(peer_memory(&v, &hon.pid) >= AMP_RX_STEP + AMP_SEND_STEP + AMP_SEC_FRAME);
    CHECK(peer_memory(&v, &hon.pid) <=
          AMP_RX_STEP + AMP_SEND_STEP + AMP_SEC_FRAME + AMP_SEC_SLACK);
    CHECK(peer_memory(&v, &atk.pid) > 0); /* the surviving partial streams */

    /* the attacker gives up: its readers end and release everything */
    for (size_t i = 0; i < AMP_STREAMS; i++) {
        gn_stream_reset(a.s[i].s, ts_closed, &a.s[i]);
    }
    run_for(100);
    /* the session's send budget and its kept receive step, the secure
     * channel's frame and small buffers */
    CHECK(peer_memory(&v, &atk.pid) >= AMP_SEND_STEP + AMP_RX_STEP + AMP_SEC_FRAME);
    CHECK(peer_memory(&v, &atk.pid) <=
          AMP_SEND_STEP + AMP_RX_STEP + AMP_SEC_FRAME + AMP_SEC_SLACK);
    for (size_t i = 0; i < AMP_STREAMS; i++) {
        CHECK_EQ(a.s[i].closed, 1);
    }
    /* no inbound stream allowed per peer: the victim's muxer refuses a new
     * stream with a RST before any protocol sees it; the session lives */
    l.peer.streams_in = 0;
    CHECK_OK(gn_rcmgr_set_limits(gn_node_rcmgr(v.n), &l));
    span_refusals = 0;
    mux_refusals = 0;
    tstream late = {0};
    CHECK_OK(gn_channel_open_stream(ach, GN_MSG_PROTOCOL_ID, on_opened, &late));
    CHECK(run_until(open_done, &late, 5000));
    CHECK_EQ(late.open_status, GN_ESTREAMRESET);
    CHECK_EQ(mux_refusals, 1);
    CHECK_EQ(span_refusals, 0);
    CHECK_EQ(gn_channel_state_get(ach, NULL), GN_CHANNEL_OPEN);

    /* a closing channel has no connection span any more */
    gn_channel_close(ach);
    run_for(20);
    CHECK(gn_channel_state_get(ach, NULL) != GN_CHANNEL_OPEN);
    CHECK(gn_channel_rcmgr_conn(ach) == NULL);
    gn_channel_rele(ach);
    gn_channel_rele(hch);
    finish();
}


/* ---- muxer streams in the resource manager ---- */

#define MS_STREAMS 5

typedef struct mstreams {
    tstream t[MS_STREAMS];
    size_t n;
} mstreams;

static void on_multi_stream(void *arg, gn_channel *ch, gn_stream *s, const char *proto)
{
    mstreams *m = arg;
    if (m->n == MS_STREAMS) {
        gn_stream_reset(s, NULL, NULL);
        return;
    }
    tstream *t = &m->t[m->n++];
    t->echo = true;
    on_custom_stream(t, ch, s, proto);
}

static gn_rcmgr_usage scope_usage(tnode *n, gn_rcmgr_scope_kind kind, const gn_peer_id *pid)
{
    gn_rcmgr_usage u;
    memset(&u, 0, sizeof u);
    (void)gn_rcmgr_stat(gn_node_rcmgr(n->n), kind, pid ? pid->bytes : NULL, pid ? pid->len : 0,
                        &u);
    return u;
}

static bool all_open_done(void *arg)
{
    tstream *t = arg;
    for (size_t i = 0; i < MS_STREAMS; i++) {
        if (t[i].open_calls == 0) {
            return false;
        }
    }
    return true;
}

static size_t echo_want;
static bool echoes_back(void *arg)
{
    tstream *t = arg;
    for (size_t i = 0; i < 3; i++) {
        if (t[i].rx_len < echo_want) {
            return false;
        }
    }
    return true;
}

GN_TEST(mux_streams_accounted_and_refused)
{
    setup();
    mux_refusals = 0;
    tnode a, b;
    node_up(&a, 1, &mem_noise);
    node_up(&b, 2, &mem_noise);
    mstreams hb = {0};
    CHECK_OK(gn_node_set_handler(b.n, "/test/echo/1", on_multi_stream, &hb));
    gn_channel *ch = dial_ok(&a, b.addr);
    run_for(100); /* identify done */

    /* b's peer scope for a holds its muxer session: streams, the send
     * budget's first step and at most one receive step (streams hold no
     * window: received data is reserved as it arrives), and the secure
     * channel's cipher frame and small buffers */
    gn_rcmgr_usage base = scope_usage(&b, GN_RCMGR_SCOPE_PEER, &a.pid);
    CHECK(base.memory >= 64u * 1024u + AMP_SEC_FRAME);
    CHECK(base.memory <= 2u * 64u * 1024u + AMP_SEC_FRAME + 8u * 1024u);
    /* room for three more inbound streams and no more */
    gn_rcmgr_limits l;
    gn_rcmgr_get_limits(gn_node_rcmgr(b.n), &l);
    l.peer.streams_in = (uint32_t)base.streams_in + 3u;
    CHECK_OK(gn_rcmgr_set_limits(gn_node_rcmgr(b.n), &l));

    tstream o[MS_STREAMS];
    memset(o, 0, sizeof o);
    for (size_t i = 0; i < MS_STREAMS; i++) {
        CHECK_OK(gn_channel_open_stream(ch, "/test/echo/1", on_opened, &o[i]));
    }
    CHECK(run_until(all_open_done, o, 5000));
    size_t ok = 0;
    for (size_t i = 0; i < MS_STREAMS; i++) {
        if (o[i].open_status == 0) {
            CHECK_EQ(i, ok); /* the first three */
            ok++;
        } else {
            CHECK_EQ(o[i].open_status, GN_ESTREAMRESET); /* b's muxer refused it: RST */
        }
    }
    CHECK_EQ(ok, 3);
    CHECK_EQ(hb.n, 3);
    run_for(20);
    CHECK(mux_refusals >= 1); /* logged with the refusing scope */
    gn_rcmgr_refusal ref;
    CHECK_OK(gn_rcmgr_last_refusal(gn_node_rcmgr(b.n), &ref));
    CHECK_EQ(ref.scope, GN_RCMGR_SCOPE_PEER);
    CHECK_EQ(ref.res, GN_RCMGR_RES_STREAMS_IN);
    gn_rcmgr_usage full = scope_usage(&b, GN_RCMGR_SCOPE_PEER, &a.pid);
    CHECK_EQ(full.streams_in, l.peer.streams_in);
    CHECK_EQ(full.memory, base.memory); /* the new streams hold no memory */
    CHECK_EQ(full.refused, 2);
    /* the accepted streams left the transient scope for their protocol's */
    CHECK_EQ(scope_usage(&b, GN_RCMGR_SCOPE_PROTOCOL, NULL).streams_in, 0); /* bad key */
    gn_rcmgr_usage pu;
    CHECK_OK(gn_rcmgr_stat(gn_node_rcmgr(b.n), GN_RCMGR_SCOPE_PROTOCOL, "/test/echo/1", 12, &pu));
    CHECK_EQ(pu.streams_in, 3);
    CHECK_EQ(pu.memory, 0); /* the muxer reserves received data on the connection */

    /* the session and its other streams go on, and nothing is lost */
    CHECK_EQ(gn_channel_state_get(ch, NULL), GN_CHANNEL_OPEN);
    char msg[64];
    for (int round = 0; round < 4; round++) {
        for (size_t i = 0; i < 3; i++) {
            snprintf(msg, sizeof msg, "stream %zu round %d|", i, round);
            ts_write(&o[i], msg);
        }
    }
    echo_want = strlen("stream 0 round 0|") * 4;
    CHECK(run_until(echoes_back, o, 5000));
    for (size_t i = 0; i < 3; i++) {
        char want[256] = "";
        for (int round = 0; round < 4; round++) {
            snprintf(msg, sizeof msg, "stream %zu round %d|", i, round);
            strcat(want, msg);
        }
        CHECK_EQ(o[i].rx_len, strlen(want));
        CHECK_MEM(o[i].rx, want, strlen(want));
        CHECK_EQ(o[i].err, 0);
    }

    /* our own open beyond a limit fails with GN_ERESOURCE, and nothing else */
    gn_rcmgr_usage aout = scope_usage(&a, GN_RCMGR_SCOPE_PEER, &b.pid);
    gn_rcmgr_limits la;
    gn_rcmgr_get_limits(gn_node_rcmgr(a.n), &la);
    const uint32_t out_limit = la.peer.streams_out;
    la.peer.streams_out = aout.streams_out;
    CHECK_OK(gn_rcmgr_set_limits(gn_node_rcmgr(a.n), &la));
    tstream over = {0};
    CHECK_OK(gn_channel_open_stream(ch, "/test/echo/1", on_opened, &over));
    CHECK(run_until(open_done, &over, 5000));
    CHECK_EQ(over.open_status, GN_ERESOURCE);
    CHECK(over.s == NULL);
    CHECK_EQ(gn_channel_state_get(ch, NULL), GN_CHANNEL_OPEN);
    la.peer.streams_out = out_limit;
    CHECK_OK(gn_rcmgr_set_limits(gn_node_rcmgr(a.n), &la));

    /* all streams closed: the peer scope is back where it was */
    for (size_t i = 0; i < 3; i++) {
        ts_close(&o[i]);
        ts_close(&hb.t[i]);
    }
    run_for(50);
    gn_rcmgr_usage after = scope_usage(&b, GN_RCMGR_SCOPE_PEER, &a.pid);
    CHECK_EQ(after.memory, base.memory);
    CHECK_EQ(after.streams_in, base.streams_in);
    CHECK_EQ(after.streams_out, base.streams_out);
    CHECK_EQ(gn_rcmgr_stat(gn_node_rcmgr(b.n), GN_RCMGR_SCOPE_PROTOCOL, "/test/echo/1", 12, &pu),
             GN_ENOTFOUND);

    /* and with the connection closed, nothing at all on either node */
    gn_channel_close(ch);
    gn_node_event ev;
    CHECK(wait_event(&b, GN_NODE_EV_CHANNEL_CLOSED, &ev, 5000));
    run_for(50);
    tnode *both[2] = {&a, &b};
    for (int k = 0; k < 2; k++) {
        gn_rcmgr_usage sys = scope_usage(both[k], GN_RCMGR_SCOPE_SYSTEM, NULL);
        CHECK_EQ(sys.memory, 0);
        CHECK_EQ(sys.streams_in + sys.streams_out, 0);
        CHECK_EQ(sys.conns_in + sys.conns_out, 0);
        char why[256];
        CHECK_OK(gni_rcmgr_check(gn_node_rcmgr(both[k]->n), false, why, sizeof why));
    }
    gn_channel_rele(ch);
    finish();
}

GN_TEST_MAIN(GN_T(memory_plaintext_dial), GN_T(memory_noise_dial), GN_T(tcp_noise_dial),
             GN_T(tcp_ecies_dial), GN_T(utp_noise_dial), GN_T(utp_options), GN_T(dial_wrong_peer_id), GN_T(dial_wrong_peer_id_reports_received),
             GN_T(dial_errors),
             GN_T(config_errors), GN_T(reuse_and_simultaneous_dial), GN_T(crossing_dials),
             GN_T(handlers_and_custom_streams), GN_T(messages_send_unicast_broadcast),
             GN_T(multicast_groups), GN_T(event_queue_backpressure), GN_T(connection_limits),
             GN_T(idle_channels_close), GN_T(ping_rtt), GN_T(close_cancels_pending),
             GN_T(ecies_only_dials_noise_and_ecies), GN_T(mplex_only_vs_yamux_mplex_noise),
             GN_T(mplex_only_vs_yamux_mplex_plaintext), GN_T(any_thread_api),
             GN_T(close_after_hanging_dial_is_immediate), GN_T(upgrade_timeout_ends_hanging_dial),
             GN_T(close_with_full_command_queue),
             GN_T(channel_get_and_metrics_refresh_any_thread),
             GN_T(msg_amplification_bounded_per_peer),
             GN_T(mux_streams_accounted_and_refused))
