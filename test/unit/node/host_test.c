/*
 * Host interface and hosted components, through the public headers only
 * (golemnet/golemnet.h): a user-written protocol, router and discovery
 * component registered in an application registry and run by nodes; dials
 * by bare peer ID through the built-in `static` router and `bootstrap`
 * discovery over TCP on loopback; the clear error without a route; host
 * operation cancellation. Nodes share one loop driven by the test thread;
 * every loop is bounded by a guard timer; every node is closed and freed.
 */
#include "golemnet/golemnet.h"

#include "gn_test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define GN_TNODE_EXTRA bool saw_open; /* a CHANNEL_OPENED event was popped */
#include "gn_tnode.h"

/* ---- built-in components: static router, bootstrap discovery ---------- */

GN_TEST(dial_peer_id_through_static_router)
{
    setup();
    tnode a, b;
    node_up(&a, 1, &(nopts){.listen = true, .routers = "", .discovery = ""});
    char opt[GN_NODE_ADDR_MAX + 16];
    snprintf(opt, sizeof opt, "static.peer=%s", a.addr);
    const char *opts[] = {opt};
    node_up(&b, 2, &(nopts){.routers = "static", .discovery = "", .options = opts, .n_options = 1});
    char target[GN_NODE_ADDR_MAX];
    snprintf(target, sizeof target, "/p2p/%s", a.pid_str);
    CHECK_EQ(dial_wait(&b, target), 0);
    /* the bare peer ID string works too, and the router's answer is in the peer store */
    CHECK_EQ(dial_wait(&b, target), 0);
    gn_peer_info info;
    CHECK_EQ(gn_node_peer_info(b.n, &a.pid, &info), 0);
    CHECK(info.n_addrs >= 1);
    node_down(&b);
    node_down(&a);
    finish();
}

GN_TEST(dial_peer_id_through_bootstrap_discovery)
{
    setup();
    tnode a, b;
    node_up(&a, 3, &(nopts){.listen = true, .routers = "", .discovery = ""});
    char opt[GN_NODE_ADDR_MAX + 16];
    snprintf(opt, sizeof opt, "bootstrap.peer=%s", a.addr);
    /* report only: the dial below must find the address in the peer store */
    const char *opts[] = {opt, "bootstrap.dial=0"};
    node_up(&b, 4, &(nopts){.routers = "", .discovery = "bootstrap", .options = opts,
                            .n_options = 2});
    run_until(never, NULL, 50); /* the report happens on a loop turn after start */
    char target[GN_NODE_ADDR_MAX];
    snprintf(target, sizeof target, "/p2p/%s", a.pid_str);
    CHECK_EQ(dial_wait(&b, target), 0);
    node_down(&b);
    node_down(&a);
    finish();
}

static bool has_channel(void *arg)
{
    tnode *t = arg;
    gn_node_event ev;
    while (gn_node_next_event(t->n, &ev, 0) == 0) {
        t->saw_open = t->saw_open || ev.type == GN_NODE_EV_CHANNEL_OPENED;
        gn_rcbuf_rele(ev.message);
    }
    return t->saw_open;
}

GN_TEST(bootstrap_dials_with_backoff_until_connected)
{
    setup();
    /* b starts first: its bootstrap peer is not listening yet */
    gn_identity *aid;
    CHECK_EQ(gn_identity_from_int_seed(5, &aid), 0);
    gn_peer_id apid;
    gn_identity_peer_id(aid, &apid);
    char apid_str[GN_PEER_ID_MAX_STRLEN];
    gn_peer_id_to_string(&apid, apid_str, sizeof apid_str);
    gn_identity_free(aid);
    /* a fixed free port: bind one, remember it, close it */
    tnode probe;
    node_up(&probe, 7, &(nopts){.listen = true, .routers = "", .discovery = ""});
    char port_addr[GN_NODE_ADDR_MAX];
    snprintf(port_addr, sizeof port_addr, "%s", probe.addr);
    *strstr(port_addr, "/p2p/") = '\0';
    node_down(&probe);

    char opt[2 * GN_NODE_ADDR_MAX];
    snprintf(opt, sizeof opt, "bootstrap.peer=%s/p2p/%s", port_addr, apid_str);
    const char *opts[] = {opt, "bootstrap.backoff_ms=50", "bootstrap.max_backoff_ms=200"};
    tnode b;
    node_up(&b, 6, &(nopts){.routers = "", .discovery = "bootstrap", .options = opts,
                            .n_options = 3});
    run_until(never, NULL, 300); /* a few refused attempts */
    CHECK(!has_channel(&b));
    /* now a listens on that port */
    tnode a;
    memset(&a, 0, sizeof a);
    CHECK_EQ(gn_identity_from_int_seed(5, &a.id), 0);
    gn_node_config cfg;
    gn_node_config_default(&cfg);
    cfg.identity = a.id;
    cfg.loop = loop;
    cfg.routers = "";
    cfg.discovery = "";
    const char *listen = port_addr;
    cfg.listen = &listen;
    cfg.n_listen = 1;
    CHECK_EQ(gn_node_new(&cfg, &a.n), 0);
    CHECK_EQ(gn_node_start(a.n), 0);
    CHECK(run_until(has_channel, &b, 5000));
    node_down(&b);
    node_down(&a);
    finish();
}

GN_TEST(dial_peer_id_without_route_fails_clearly)
{
    setup();
    tnode a, b;
    node_up(&a, 8, &(nopts){.listen = true, .routers = "", .discovery = ""});
    node_up(&b, 9, &(nopts){.routers = "", .discovery = ""});
    char target[GN_NODE_ADDR_MAX];
    snprintf(target, sizeof target, "/p2p/%s", a.pid_str);
    CHECK_EQ(dial_wait(&b, target), GN_ENOROUTE);
    CHECK(strstr(gn_strerror(GN_ENOROUTE), "no route") != NULL);
    /* a static router that does not know the peer: the same error */
    node_down(&b);
    node_up(&b, 9, &(nopts){.routers = "static", .discovery = ""});
    CHECK_EQ(dial_wait(&b, target), GN_ENOROUTE);
    node_down(&b);
    node_down(&a);
    finish();
}

/* A dial of a bare peer ID tries the peer's addresses in turn, direct ones
 * before relayed ones: a dead newest address does not hide a live one, and
 * when every address fails the last failure is reported. */
GN_TEST(dial_peer_id_tries_each_address)
{
    setup();
    tnode a, b;
    node_up(&a, 31, &(nopts){.listen = true, .routers = "", .discovery = ""});
    node_up(&b, 32, &(nopts){.routers = "", .discovery = "", .transports = "tcp,circuit"});
    gn_host *hb = gn_node_host(b.n);
    gn_multiaddr *good = NULL, *dead = NULL, *relayed = NULL;
    char live[GN_NODE_ADDR_MAX];
    snprintf(live, sizeof live, "%s", a.addr);
    *strstr(live, "/p2p/") = '\0';
    CHECK_OK(gn_multiaddr_parse(live, &good));
    CHECK_OK(gn_multiaddr_parse("/ip4/127.0.0.1/tcp/1", &dead));
    /* a relay nobody knows: tried last, and it fails */
    CHECK_OK(gn_multiaddr_parse(
        "/p2p/12D3KooWQANRJdBvMCE2HRQAPTpunWZ3Vg3k2X2DjJsuCtg4K4SZ/p2p-circuit", &relayed));
    const gn_multiaddr *one[1];
    one[0] = good;
    CHECK_OK(gn_host_peer_add_addrs(hb, &a.pid, one, 1, 60 * GN_S, GN_ADDR_SRC_MANUAL));
    one[0] = relayed;
    CHECK_OK(gn_host_peer_add_addrs(hb, &a.pid, one, 1, 60 * GN_S, GN_ADDR_SRC_MANUAL));
    one[0] = dead; /* the newest */
    CHECK_OK(gn_host_peer_add_addrs(hb, &a.pid, one, 1, 60 * GN_S, GN_ADDR_SRC_MANUAL));
    char target[GN_NODE_ADDR_MAX];
    snprintf(target, sizeof target, "/p2p/%s", a.pid_str);
    CHECK_EQ(dial_wait(&b, target), 0);
    node_down(&b);
    /* only dead and relayed addresses: both are tried, the last error wins */
    node_up(&b, 32, &(nopts){.routers = "", .discovery = "", .transports = "tcp,circuit"});
    hb = gn_node_host(b.n);
    one[0] = relayed;
    CHECK_OK(gn_host_peer_add_addrs(hb, &a.pid, one, 1, 60 * GN_S, GN_ADDR_SRC_MANUAL));
    one[0] = dead;
    CHECK_OK(gn_host_peer_add_addrs(hb, &a.pid, one, 1, 60 * GN_S, GN_ADDR_SRC_MANUAL));
    int rc = dial_wait(&b, target);
    CHECK(rc < 0 && rc != GN_ECONNREFUSED); /* the relayed attempt came after the refusal */
    gn_multiaddr_free(good);
    gn_multiaddr_free(dead);
    gn_multiaddr_free(relayed);
    node_down(&b);
    node_down(&a);
    finish();
}

GN_TEST(bad_component_options_are_refused)
{
    setup();
    gn_node_config cfg;
    gn_node_config_default(&cfg);
    cfg.loop = loop;
    gn_node *n = NULL;
    const char *bad[] = {"static-peer=/ip4/1.2.3.4/tcp/1"};
    cfg.options = bad;
    cfg.n_options = 1;
    CHECK_EQ(gn_node_new(&cfg, &n), GN_EINVAL);
    cfg.options = NULL;
    cfg.n_options = 0;
    cfg.routers = "nosuchrouter";
    CHECK_EQ(gn_node_new(&cfg, &n), GN_ENOTFOUND);
    CHECK(n == NULL);
    /* a component that refuses its options fails the start, by name */
    tnode t;
    const char *opts[] = {"static.peer=/ip4/127.0.0.1/tcp/1"}; /* no /p2p/ */
    node_up(&t, 13, &(nopts){.routers = "static", .discovery = "", .options = opts,
                             .n_options = 1});
    gn_node_event ev;
    bool seen = false;
    for (int i = 0; i < 100 && !seen; i++) {
        run_until(never, NULL, 10);
        while (gn_node_next_event(t.n, &ev, 0) == 0) {
            if (ev.type == GN_NODE_EV_START_FAILED) {
                seen = true;
                CHECK_EQ(ev.status, GN_EINVAL);
                CHECK_STR(ev.protocol, "router static");
            }
            gn_rcbuf_rele(ev.message);
        }
    }
    CHECK(seen);
    node_down(&t);
    finish();
}

/* ---- user-written components through the public headers ---------------- */

#define HELLO_ID "/test/hello/1.0.0"

/* A protocol component: answers HELLO_ID with "hello from <peer id>". */
typedef struct hello_srv {
    gn_stream *s;
    char msg[96];
    gn_slice iov;
} hello_srv;

static void hello_closed(gn_stream *s, void *arg)
{
    (void)s;
    gn_free(arg);
}

static void hello_written(void *arg, int status)
{
    hello_srv *h = arg;
    (void)status;
    gn_stream_close(h->s, hello_closed, h);
}

static void hello_on_stream(gn_protocol *p, gn_stream *s, const gn_protocol_stream_info *info)
{
    hello_srv *h = gn_calloc(1, sizeof *h);
    CHECK(h != NULL);
    CHECK_STR(info->protocol_id, HELLO_ID);
    CHECK(info->channel != NULL);
    gn_peer_id self;
    gn_host_peer_id(p->host, &self);
    char pid[GN_PEER_ID_MAX_STRLEN];
    gn_peer_id_to_string(&self, pid, sizeof pid);
    h->s = s;
    int len = snprintf(h->msg, sizeof h->msg, "hello from %s", pid);
    h->iov = gn_slice_of((const uint8_t *)h->msg, (size_t)len);
    if (gn_stream_write(s, &h->iov, 1, hello_written, h) < 0) {
        gn_stream_close(s, hello_closed, h);
    }
}

static const gn_protocol_ops hello_ops = {
    .abi = GN_PROTOCOL_ABI,
    .name = HELLO_ID,
    .on_stream = hello_on_stream,
};

/* A protocol component on the client side: at start it subscribes to
 * connections; on the first one it opens HELLO_ID to the option
 * "greeter.peer" through gn_host_new_stream() and keeps the reply. */
typedef struct greeter {
    gn_protocol *p;
    gn_host_sub *sub;
    gn_peer_id target;
    bool asked;
    int status;
    bool done;
    char reply[128];
    size_t len;
    int connected_events, identified_events;
} greeter;

static greeter *the_greeter;

static void greet_data(gn_stream *s, void *ud, const uint8_t *data, size_t len)
{
    (void)s;
    greeter *g = ud;
    size_t room = sizeof g->reply - 1 - g->len;
    len = len < room ? len : room;
    memcpy(g->reply + g->len, data, len);
    g->len += len;
}

static void greet_eof(gn_stream *s, void *ud)
{
    greeter *g = ud;
    g->done = true;
    gn_stream_close(s, NULL, NULL);
}

static void greet_error(gn_stream *s, void *ud, int err)
{
    greeter *g = ud;
    g->status = err;
    g->done = true;
    gn_stream_close(s, NULL, NULL);
}

static const gn_stream_handler greet_handler = {
    .on_data = greet_data, .on_eof = greet_eof, .on_error = greet_error};

static void greet_opened(void *arg, int status, gn_channel *ch, gn_stream *s)
{
    greeter *g = arg;
    g->status = status;
    if (status < 0) {
        g->done = true;
        return;
    }
    CHECK(ch != NULL);
    gn_stream_set_handler(s, &greet_handler, g);
    gn_stream_read_start(s);
}

static void greet_event(void *arg, const gn_host_event *ev)
{
    greeter *g = arg;
    if (ev->type == GN_HOST_EV_IDENTIFIED) {
        g->identified_events++;
        return;
    }
    g->connected_events++;
    if (!g->asked) {
        g->asked = true;
        CHECK_EQ(gn_host_new_stream(g->p->host, &g->target, HELLO_ID, greet_opened, g, NULL), 0);
    }
}

static int greeter_start(gn_protocol *p)
{
    greeter *g = p->state;
    g->p = p;
    the_greeter = g;
    const char *peer = gn_host_option(p->host, "greeter", "peer", 0);
    if (!peer || gn_peer_id_parse(peer, strlen(peer), &g->target) < 0) {
        return GN_EINVAL;
    }
    return gn_host_subscribe(p->host, GN_HOST_EV_CONNECTED | GN_HOST_EV_IDENTIFIED, greet_event,
                             g, &g->sub);
}

static void greeter_stop(gn_protocol *p)
{
    greeter *g = p->state;
    gn_host_unsubscribe(g->sub);
    g->sub = NULL;
}

static void greeter_unused(gn_protocol *p, gn_stream *s, const gn_protocol_stream_info *info)
{
    (void)p, (void)info;
    gn_stream_reset(s, NULL, NULL);
}

static const gn_protocol_ops greeter_ops = {
    .abi = GN_PROTOCOL_ABI,
    .name = "/test/greeter/1.0.0",
    .state_size = sizeof(greeter),
    .start = greeter_start,
    .stop = greeter_stop,
    .on_stream = greeter_unused,
};

/* A router component: knows one peer (set by the test) or hangs (never
 * answers until cancelled or stopped). */
static char route_addr[GN_NODE_ADDR_MAX];
static gn_peer_id route_peer;
static int route_asked, route_cancels;
static bool route_sync; /* answer from inside find_peer */

typedef struct troute_q {
    gn_op op;
    gn_router *r;
    gn_router_peer_cb cb;
    void *arg;
    gn_peer_id peer;
    bool hang, canceled;
    gn_timer t;
} troute_q;

typedef struct troute {
    troute_q *pending; /* the one hanging query */
} troute;

static void troute_fire(gn_timer *t, void *arg)
{
    (void)t;
    troute_q *q = arg;
    troute *tr = q->r->state;
    if (tr->pending == q) {
        tr->pending = NULL;
    }
    if (q->canceled) {
        q->cb(q->arg, GN_ECANCELED, &q->peer, NULL, 0);
    } else if (gn_peer_id_equal(&q->peer, &route_peer)) {
        gn_multiaddr *ma = NULL;
        CHECK_EQ(gn_multiaddr_parse(route_addr, &ma), 0);
        gn_multiaddr *const addrs[1] = {ma};
        q->cb(q->arg, 0, &q->peer, addrs, 1);
        gn_multiaddr_free(ma);
    } else {
        q->cb(q->arg, GN_ENOROUTE, &q->peer, NULL, 0);
    }
    gn_free(q);
}

static void troute_cancel(gn_op *op)
{
    troute_q *q = (troute_q *)op; /* op is the first member */
    route_cancels++;
    q->canceled = true;
    gn_timer_start(&q->t, 0, troute_fire, q);
}

static int troute_find(gn_router *r, const gn_peer_id *peer, gn_router_peer_cb cb, void *arg,
                       gn_op **op)
{
    troute *tr = r->state;
    troute_q *q = gn_calloc(1, sizeof *q);
    if (!q) {
        return GN_ENOMEM;
    }
    route_asked++;
    q->op.cancel = troute_cancel;
    q->r = r;
    q->cb = cb;
    q->arg = arg;
    q->peer = *peer;
    q->hang = route_addr[0] == '\0';
    gn_timer_init(r->loop, &q->t);
    if (q->hang) {
        tr->pending = q;
    } else if (route_sync) {
        troute_fire(&q->t, q); /* answers from inside the call */
        *op = NULL;
        return 0;
    } else {
        gn_timer_start(&q->t, 0, troute_fire, q);
    }
    *op = &q->op;
    return 0;
}

static void troute_stop(gn_router *r)
{
    troute *tr = r->state;
    if (tr->pending) {
        troute_cancel(&tr->pending->op);
    }
}

static const gn_router_ops troute_ops = {
    .abi = GN_ROUTER_ABI,
    .name = "testroute",
    .state_size = sizeof(troute),
    .stop = troute_stop,
    .find_peer = troute_find,
};

/* A discovery component: reports one made-up peer once, after start. */
static gn_peer_id disc_peer;
typedef struct tdisc {
    gn_discovery_peer_cb cb;
    void *arg;
    gn_timer t;
} tdisc;

static void tdisc_fire(gn_timer *t, void *arg)
{
    (void)t;
    tdisc *d = arg;
    gn_multiaddr *ma = NULL;
    CHECK_EQ(gn_multiaddr_parse("/ip4/127.0.0.1/tcp/9", &ma), 0);
    gn_multiaddr *const addrs[1] = {ma};
    d->cb(d->arg, &disc_peer, addrs, 1, 60 * GN_S);
    gn_multiaddr_free(ma);
}

static int tdisc_start(gn_discovery *d, gn_discovery_peer_cb cb, void *arg)
{
    tdisc *s = d->state;
    s->cb = cb;
    s->arg = arg;
    gn_timer_init(d->loop, &s->t);
    return gn_timer_start(&s->t, 0, tdisc_fire, s);
}

static void tdisc_stop(gn_discovery *d)
{
    tdisc *s = d->state;
    gn_timer_stop(&s->t);
}

static const gn_discovery_ops tdisc_ops = {
    .abi = GN_DISCOVERY_ABI,
    .name = "testdisc",
    .state_size = sizeof(tdisc),
    .start = tdisc_start,
    .stop = tdisc_stop,
};

static void on_dial_stream_unused(void *arg, gn_channel *ch, gn_stream *s, const char *id)
{
    (void)arg, (void)ch, (void)id;
    gn_stream_reset(s, NULL, NULL);
}

static gn_registry *user_registry(void)
{
    gn_registry *reg = NULL;
    CHECK_EQ(gn_registry_new(&reg), 0);
    CHECK_EQ(gn_registry_add_builtins(reg), 0);
    CHECK_EQ(gn_registry_add(reg, GN_LAYER_PROTOCOL, (const gn_layer_ops *)&hello_ops), 0);
    CHECK_EQ(gn_registry_add(reg, GN_LAYER_PROTOCOL, (const gn_layer_ops *)&greeter_ops), 0);
    CHECK_EQ(gn_registry_add(reg, GN_LAYER_ROUTER, (const gn_layer_ops *)&troute_ops), 0);
    CHECK_EQ(gn_registry_add(reg, GN_LAYER_DISCOVERY, (const gn_layer_ops *)&tdisc_ops), 0);
    return reg;
}

static bool greeted(void *arg)
{
    (void)arg;
    return the_greeter && the_greeter->done;
}

GN_TEST(user_protocol_router_and_discovery_components)
{
    setup();
    gn_registry *reg = user_registry();
    tnode a, b;
    node_up(&a, 10, &(nopts){.registry = reg, .listen = true, .routers = "", .discovery = "",
                             .protocol_components = "hello"});
    snprintf(route_addr, sizeof route_addr, "%s", a.addr);
    *strstr(route_addr, "/p2p/") = '\0';
    route_peer = a.pid;
    route_asked = 0;
    gn_identity *other;
    CHECK_EQ(gn_identity_from_int_seed(99, &other), 0);
    gn_identity_peer_id(other, &disc_peer);
    gn_identity_free(other);
    char opt[GN_PEER_ID_MAX_STRLEN + 32];
    snprintf(opt, sizeof opt, "greeter.peer=%s", a.pid_str);
    const char *opts[] = {opt};
    the_greeter = NULL;
    node_up(&b, 11, &(nopts){.registry = reg, .routers = "testroute", .discovery = "testdisc",
                             .protocol_components = "greeter", .options = opts,
                             .n_options = 1});
    /* the router finds a for a dial by peer ID; the greeter then opens its
     * stream through the host on the new connection */
    char target[GN_NODE_ADDR_MAX];
    snprintf(target, sizeof target, "/p2p/%s", a.pid_str);
    CHECK_EQ(dial_wait(&b, target), 0);
    CHECK_EQ(route_asked, 1);
    CHECK(run_until(greeted, NULL, 5000));
    CHECK_EQ(the_greeter->status, 0);
    char want[GN_PEER_ID_MAX_STRLEN + 16];
    snprintf(want, sizeof want, "hello from %s", a.pid_str);
    CHECK_STR(the_greeter->reply, want);
    CHECK_EQ(the_greeter->connected_events, 1);
    /* the discovered peer is in b's peer store with its address */
    gn_peer_info info;
    CHECK_EQ(gn_node_peer_info(b.n, &disc_peer, &info), 0);
    CHECK_EQ(info.n_addrs, 1);
    char addr[GN_NODE_ADDR_MAX];
    CHECK(gn_node_peer_addr(b.n, &disc_peer, 0, addr, sizeof addr) > 0);
    CHECK_STR(addr, "/ip4/127.0.0.1/tcp/9");
    /* relay addresses keep their inner /p2p/ part; a trailing one must be the peer's */
    {
        char relay[2 * GN_NODE_ADDR_MAX];
        snprintf(relay, sizeof relay, "/ip4/127.0.0.1/tcp/7/p2p/%s/p2p-circuit/p2p/%s",
                 a.pid_str, b.pid_str);
        gn_multiaddr *ra = NULL;
        CHECK_EQ(gn_multiaddr_parse(relay, &ra), 0);
        gn_host *hb = gn_node_host(b.n);
        const gn_multiaddr *one[1] = {ra};
        CHECK_EQ(gn_host_peer_add_addrs(hb, &disc_peer, one, 1, 60 * GN_S, GN_ADDR_SRC_MANUAL),
                 GN_EINVAL); /* names b, not disc_peer */
        CHECK_EQ(gn_host_peer_add_addrs(hb, &b.pid, one, 1, 0, GN_ADDR_SRC_MANUAL), GN_EINVAL);
        CHECK_EQ(gn_host_peer_add_addrs(hb, &b.pid, one, 1, 60 * GN_S, GN_ADDR_SRC_MANUAL), 0);
        gn_multiaddr *got[4];
        gn_addr_source src[4];
        int k = gn_host_peer_addrs(hb, &b.pid, got, src, 4);
        CHECK_EQ(k, 1);
        char text[2 * GN_NODE_ADDR_MAX];
        CHECK(gn_multiaddr_to_string(got[0], text, sizeof text) > 0);
        *strstr(relay, "/p2p-circuit") = '\0';
        CHECK(strncmp(text, relay, strlen(relay)) == 0);
        CHECK(strstr(text, "/p2p-circuit") != NULL);
        CHECK_EQ(src[0], GN_ADDR_SRC_MANUAL);
        gn_multiaddr_free(got[0]);
        gn_multiaddr_free(ra);
    }
    /* the application cannot remove or take over a component's handler */
    CHECK_EQ(gn_node_set_handler(a.n, HELLO_ID, NULL, NULL), GN_ENOTFOUND);
    CHECK_EQ(gn_node_set_handler(a.n, HELLO_ID, on_dial_stream_unused, NULL), GN_EEXIST);
    /* a's identify announces the user protocol */
    CHECK(gn_node_peer_protocol(b.n, &a.pid, 0, addr, sizeof addr) > 0);
    bool announced = false;
    for (size_t i = 0; gn_node_peer_protocol(b.n, &a.pid, i, addr, sizeof addr) > 0; i++) {
        announced = announced || strcmp(addr, HELLO_ID) == 0;
    }
    CHECK(announced);
    node_down(&b);
    node_down(&a);
    gn_registry_free(reg);
    finish();
}

/* ---- cancellation of host operations ----------------------------------- */

typedef struct find_res {
    int calls, status;
    size_t naddrs;
} find_res;

static void on_found(void *arg, int status, const gn_peer_id *peer, gn_multiaddr *const *addrs,
                     size_t naddrs)
{
    find_res *f = arg;
    (void)peer, (void)addrs;
    f->calls++;
    f->status = status;
    f->naddrs = naddrs;
}

static bool found_done(void *arg)
{
    return ((find_res *)arg)->calls > 0;
}

typedef struct conn_res {
    int calls, status;
} conn_res;

static void on_connect(void *arg, int status, gn_channel *ch)
{
    conn_res *c = arg;
    (void)ch;
    c->calls++;
    c->status = status;
}

static bool conn_done(void *arg)
{
    return ((conn_res *)arg)->calls > 0;
}

GN_TEST(host_operations_cancel_and_complete_once)
{
    setup();
    gn_registry *reg = user_registry();
    tnode b;
    route_addr[0] = '\0'; /* the test router hangs */
    route_cancels = 0;
    node_up(&b, 12, &(nopts){.registry = reg, .routers = "testroute", .discovery = "",
                             .protocol_components = ""});
    gn_host *h = gn_node_host(b.n);
    gn_peer_id nobody;
    gn_identity *other;
    CHECK_EQ(gn_identity_from_int_seed(98, &other), 0);
    gn_identity_peer_id(other, &nobody);
    gn_identity_free(other);

    /* a lookup the router never answers: cancelled, it completes once */
    find_res f = {0};
    gn_op *op = NULL;
    CHECK_EQ(gn_host_find_peer(h, &nobody, on_found, &f, &op), 0);
    CHECK(op != NULL);
    run_until(never, NULL, 100);
    CHECK_EQ(f.calls, 0);
    gn_op_cancel(op);
    CHECK_EQ(f.calls, 0); /* never from inside the call */
    CHECK(run_until(found_done, &f, 1000));
    CHECK_EQ(f.status, GN_ECANCELED);
    CHECK_EQ(route_cancels, 1);
    run_until(never, NULL, 50);
    CHECK_EQ(f.calls, 1);

    /* a connect by peer ID waiting on the router: cancelled likewise */
    char target[GN_NODE_ADDR_MAX];
    char pid[GN_PEER_ID_MAX_STRLEN];
    gn_peer_id_to_string(&nobody, pid, sizeof pid);
    snprintf(target, sizeof target, "/p2p/%s", pid);
    gn_multiaddr *ma = NULL;
    CHECK_EQ(gn_multiaddr_parse(target, &ma), 0);
    conn_res c = {0};
    CHECK_EQ(gn_host_connect(h, ma, on_connect, &c, &op), 0);
    run_until(never, NULL, 100);
    gn_op_cancel(op);
    CHECK(run_until(conn_done, &c, 1000));
    CHECK_EQ(c.status, GN_ECANCELED);
    run_until(never, NULL, 50);
    CHECK_EQ(c.calls, 1);

    /* a connect still waiting when the node closes completes with GN_ECANCELED */
    conn_res c2 = {0};
    CHECK_EQ(gn_host_connect(h, ma, on_connect, &c2, NULL), 0);
    run_until(never, NULL, 50);
    gn_multiaddr_free(ma);
    node_down(&b);
    CHECK_EQ(c2.calls, 1);
    CHECK_EQ(c2.status, GN_ECANCELED);
    gn_registry_free(reg);
    finish();
}

GN_TEST(router_answers_synchronously_or_without_dialable_addresses)
{
    setup();
    gn_registry *reg = user_registry();
    tnode a, b;
    node_up(&a, 14, &(nopts){.registry = reg, .listen = true, .routers = "", .discovery = "",
                             .protocol_components = ""});
    route_peer = a.pid;
    /* an answer whose only address no transport of b handles: GN_ENOROUTE,
     * once, and the routers are not asked in a loop */
    snprintf(route_addr, sizeof route_addr, "/ip4/127.0.0.1/udp/9");
    route_asked = 0;
    node_up(&b, 15, &(nopts){.registry = reg, .routers = "testroute", .discovery = "",
                             .protocol_components = ""});
    char target[GN_NODE_ADDR_MAX];
    snprintf(target, sizeof target, "/p2p/%s", a.pid_str);
    CHECK_EQ(dial_wait(&b, target), GN_ENOROUTE);
    run_until(never, NULL, 50);
    CHECK_EQ(route_asked, 1);
    /* a router that answers from inside find_peer */
    snprintf(route_addr, sizeof route_addr, "%s", a.addr);
    *strstr(route_addr, "/p2p/") = '\0';
    route_sync = true;
    find_res f = {0};
    CHECK_EQ(gn_host_find_peer(gn_node_host(b.n), &a.pid, on_found, &f, NULL), 0);
    CHECK_EQ(f.calls, 0);
    CHECK(run_until(found_done, &f, 1000));
    CHECK_EQ(f.status, 0);
    CHECK(f.naddrs >= 1);
    CHECK_EQ(dial_wait(&b, target), 0);
    route_sync = false;
    node_down(&b);
    node_down(&a);
    gn_registry_free(reg);
    finish();
}

/* ---- a user-written message service ------------------------------------ */

#define TMSG_ID "/test/msg/1.0.0"

/* One message per stream: the sender writes the payload and closes; the
 * receiver hands what it read up to EOF to the host. */
typedef struct tmsg_svc {
    gn_host *host;
    int resumes;
} tmsg_svc;

typedef struct tmsg_send {
    tmsg_svc *sv;
    gn_channel *ch; /* held */
    gn_rcbuf *msg;
    uint64_t req;
    gn_stream *s;
    gn_slice iov;
} tmsg_send;

static void tmsg_send_end(tmsg_send *t, int status)
{
    gn_host_msg_done(t->sv->host, t->ch, t->req, status);
    gn_channel_rele(t->ch);
    gn_rcbuf_rele(t->msg);
    gn_free(t);
}

static void tmsg_written(void *arg, int status)
{
    tmsg_send *t = arg;
    gn_stream_close(t->s, NULL, NULL);
    tmsg_send_end(t, status);
}

static void tmsg_opened(void *arg, int status, gn_stream *s)
{
    tmsg_send *t = arg;
    if (status < 0) {
        tmsg_send_end(t, status);
        return;
    }
    t->s = s;
    t->iov = gn_rcbuf_slice(t->msg);
    if (gn_stream_write(s, &t->iov, 1, tmsg_written, t) < 0) {
        gn_stream_reset(s, NULL, NULL);
        tmsg_send_end(t, GN_ECLOSED);
    }
}

static int tmsg_send_fn(void *svc, gn_channel *ch, gn_rcbuf *msg, uint64_t req)
{
    tmsg_send *t = gn_calloc(1, sizeof *t);
    if (!t) {
        return GN_ENOMEM;
    }
    t->sv = svc;
    t->ch = gn_channel_hold(ch);
    t->msg = gn_rcbuf_hold(msg);
    t->req = req;
    int rc = gn_channel_open_stream(ch, TMSG_ID, tmsg_opened, t);
    if (rc < 0) {
        gn_channel_rele(t->ch);
        gn_rcbuf_rele(t->msg);
        gn_free(t);
    }
    return rc;
}

static void tmsg_resume(void *svc)
{
    ((tmsg_svc *)svc)->resumes++;
}

static const gn_host_msg_ops tmsg_svc_ops = {tmsg_send_fn, tmsg_resume};

typedef struct tmsg_recv {
    tmsg_svc *sv;
    gn_channel *ch; /* held */
    uint8_t buf[256];
    size_t len;
} tmsg_recv;

static void tmsg_recv_data(gn_stream *s, void *ud, const uint8_t *data, size_t len)
{
    (void)s;
    tmsg_recv *r = ud;
    size_t room = sizeof r->buf - r->len;
    len = len < room ? len : room;
    memcpy(r->buf + r->len, data, len);
    r->len += len;
}

static void tmsg_recv_end(gn_stream *s, tmsg_recv *r, bool deliver)
{
    if (deliver) {
        gn_rcbuf *m = gn_rcbuf_new(r->buf, r->len);
        CHECK(m != NULL);
        CHECK_EQ(gn_host_msg_deliver(r->sv->host, r->ch, m), 0);
    }
    gn_stream_set_handler(s, NULL, NULL);
    gn_stream_close(s, NULL, NULL);
    gn_channel_rele(r->ch);
    gn_free(r);
}

static void tmsg_recv_eof(gn_stream *s, void *ud) { tmsg_recv_end(s, ud, true); }
static void tmsg_recv_error(gn_stream *s, void *ud, int err)
{
    (void)err;
    tmsg_recv_end(s, ud, false);
}

static const gn_stream_handler tmsg_recv_handler = {
    .on_data = tmsg_recv_data, .on_eof = tmsg_recv_eof, .on_error = tmsg_recv_error};

static void tmsg_on_stream(gn_protocol *p, gn_stream *s, const gn_protocol_stream_info *info)
{
    tmsg_recv *r = gn_calloc(1, sizeof *r);
    CHECK(r != NULL);
    r->sv = p->state;
    r->ch = gn_channel_hold(info->channel);
    gn_stream_set_handler(s, &tmsg_recv_handler, r);
    gn_stream_read_start(s);
}

static int tmsg_start(gn_protocol *p)
{
    tmsg_svc *sv = p->state;
    sv->host = p->host;
    return gn_host_set_message_service(p->host, &tmsg_svc_ops, sv, TMSG_ID);
}

static void tmsg_stop(gn_protocol *p)
{
    CHECK_EQ(gn_host_set_message_service(p->host, NULL, p->state, NULL), 0);
}

static const gn_protocol_ops tmsg_ops = {
    .abi = GN_PROTOCOL_ABI,
    .name = TMSG_ID,
    .state_size = sizeof(tmsg_svc),
    .start = tmsg_start,
    .stop = tmsg_stop,
    .on_stream = tmsg_on_stream,
};

static bool got_event_type(tnode *t, gn_node_event_type type, gn_node_event *out)
{
    gn_node_event ev;
    while (gn_node_next_event(t->n, &ev, 0) == 0) {
        if (ev.type == type) {
            *out = ev;
            return true;
        }
        gn_rcbuf_rele(ev.message);
    }
    return false;
}

typedef struct ev_wait {
    tnode *t;
    gn_node_event_type type;
    gn_node_event ev;
    bool got;
} ev_wait;

static bool ev_arrived(void *arg)
{
    ev_wait *w = arg;
    w->got = w->got || got_event_type(w->t, w->type, &w->ev);
    return w->got;
}

static int dummy_send(void *svc, gn_channel *ch, gn_rcbuf *msg, uint64_t req)
{
    (void)svc, (void)ch, (void)msg, (void)req;
    return GN_ENOTSUP;
}
static void dummy_resume(void *svc) { (void)svc; }
static const gn_host_msg_ops dummy_svc_ops = {dummy_send, dummy_resume};

GN_TEST(user_message_service_replaces_msg)
{
    setup();
    gn_registry *reg = NULL;
    CHECK_EQ(gn_registry_new(&reg), 0);
    CHECK_EQ(gn_registry_add_builtins(reg), 0);
    CHECK_EQ(gn_registry_add(reg, GN_LAYER_PROTOCOL, (const gn_layer_ops *)&tmsg_ops), 0);
    tnode a, b, c;
    /* a and b carry messages with the user's service instead of msg */
    node_up(&a, 20, &(nopts){.registry = reg, .listen = true, .protocol_components = TMSG_ID,
                             .drop_protocols = GN_NODE_PROTO_MSG});
    node_up(&b, 21, &(nopts){.registry = reg, .protocol_components = TMSG_ID,
                             .drop_protocols = GN_NODE_PROTO_MSG});
    int dummy = 0;
    CHECK_EQ(gn_host_set_message_service(gn_node_host(a.n), &dummy_svc_ops, &dummy, "/x/1"),
             GN_EEXIST);
    CHECK_EQ(gn_host_set_message_service(gn_node_host(a.n), NULL, &dummy, NULL), GN_ENOTFOUND);
    CHECK_EQ(dial_wait(&b, a.addr), 0);
    uint64_t req = 0;
    CHECK_EQ(gn_node_unicast(b.n, a.pid_str, (const uint8_t *)"hi there", 8, &req), 0);
    ev_wait w = {.t = &a, .type = GN_NODE_EV_MESSAGE};
    CHECK(run_until(ev_arrived, &w, 5000));
    CHECK_STR(w.ev.protocol, TMSG_ID);
    CHECK(gn_peer_id_equal(&w.ev.peer, &b.pid));
    gn_slice got = gn_rcbuf_slice(w.ev.message);
    CHECK_EQ(got.len, 8);
    CHECK(memcmp(got.base, "hi there", 8) == 0);
    gn_rcbuf_rele(w.ev.message);
    gn_channel *bch = gn_node_channel_find(a.n, w.ev.channel_id); /* borrowed */
    CHECK(bch != NULL);
    gn_channel_metrics m;
    gn_channel_metrics_get(bch, &m);
    CHECK_EQ(m.messages_in, 1);
    /* a node without a message service says so for every message */
    node_up(&c, 22, &(nopts){.registry = reg, .protocol_components = "",
                             .drop_protocols = GN_NODE_PROTO_MSG});
    CHECK_EQ(dial_wait(&c, a.addr), 0);
    CHECK_EQ(gn_node_unicast(c.n, a.pid_str, (const uint8_t *)"x", 1, &req), 0);
    ev_wait f = {.t = &c, .type = GN_NODE_EV_SEND_FAILED};
    CHECK(run_until(ev_arrived, &f, 5000));
    CHECK_EQ(f.ev.status, GN_ENOTSUP);
    CHECK_EQ(f.ev.request_id, req);
    node_down(&c);
    node_down(&b);
    node_down(&a);
    gn_registry_free(reg);
    finish();
}

/* ---- the connection manager ------------------------------------------- */

/* The port of a listening address "/ip4/127.0.0.1/tcp/PORT/p2p/...". */
static int addr_port(const char *addr)
{
    const char *p = strstr(addr, "/tcp/");
    return p ? atoi(p + 5) : 0;
}

/* Opens @n silent TCP connections to 127.0.0.1:@port, from 127.0.X.Y
 * sources (8 per /24, X from 1): they connect and never send a byte. */
static int *silent_open(int port, size_t n)
{
    struct rlimit rl;
    CHECK_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < n + 512 && rl.rlim_max >= n + 512) {
        rl.rlim_cur = n + 512;
        CHECK_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    int *fds = calloc(n, sizeof *fds);
    CHECK(fds != NULL);
    for (size_t i = 0; i < n; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        CHECK(fds[i] >= 0);
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr =
            htonl(0x7f000000u | (uint32_t)(1 + i / 8) << 8 | (uint32_t)(1 + i % 8));
        CHECK_EQ(bind(fds[i], (struct sockaddr *)&src, sizeof src), 0);
        struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        dst.sin_addr.s_addr = htonl(0x7f000001u);
        int rc = connect(fds[i], (struct sockaddr *)&dst, sizeof dst);
        CHECK(rc == 0 || errno == EINPROGRESS);
        if ((i + 1) % 64 == 0) {
            run_until(never, NULL, 5); /* let the node accept */
        }
    }
    return fds;
}

static void silent_close(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        close(fds[i]);
    }
    free(fds);
}

GN_TEST(silent_connections_do_not_lock_out_legitimate_peers)
{
    setup();
    tnode a, b;
    node_up(&a, 30, &(nopts){.listen = true});
    /* default limits: 1024 connections, 128 upgrading; 1024 silent
     * connections from 128 subnets would fill every slot without the
     * transient budget */
    size_t n = 1024;
    int *fds = silent_open(addr_port(a.addr), n);
    run_until(never, NULL, 300);
    node_up(&b, 31, &(nopts){0});
    CHECK_EQ(dial_wait(&b, a.addr), 0);
    gn_rcmgr_usage u;
    CHECK_EQ(gn_rcmgr_stat(gn_node_rcmgr(a.n), GN_RCMGR_SCOPE_TRANSIENT, NULL, 0, &u), 0);
    CHECK(u.conns_upgrading <= 128);
    /* one address alone holds at most 8 upgrading connections */
    size_t m = 64;
    int *one = calloc(m, sizeof *one);
    CHECK(one != NULL);
    for (size_t i = 0; i < m; i++) {
        one[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr = htonl(0x7f00c801u); /* 127.0.200.1 */
        CHECK_EQ(bind(one[i], (struct sockaddr *)&src, sizeof src), 0);
        struct sockaddr_in dst = {.sin_family = AF_INET,
                                  .sin_port = htons((uint16_t)addr_port(a.addr))};
        dst.sin_addr.s_addr = htonl(0x7f000001u);
        int rc = connect(one[i], (struct sockaddr *)&dst, sizeof dst);
        CHECK(rc == 0 || errno == EINPROGRESS);
    }
    run_until(never, NULL, 300);
    const uint8_t ip[4] = {127, 0, 200, 1};
    CHECK_EQ(gn_rcmgr_stat(gn_node_rcmgr(a.n), GN_RCMGR_SCOPE_IP, ip, 4, &u), 0);
    CHECK(u.conns_upgrading <= 8);
    CHECK(u.conns_upgrading >= 1);
    silent_close(one, m);
    silent_close(fds, n);
    node_down(&b);
    node_down(&a);
    finish();
}

GN_TEST(first_byte_deadline_closes_silent_connections)
{
    setup();
    tnode a;
    node_up(&a, 32, &(nopts){.listen = true});
    CHECK_EQ(gn_node_configure(a.n, GN_NODE_OPT_FIRST_BYTE_TIMEOUT_MS, 200), 0);
    int *fds = silent_open(addr_port(a.addr), 4);
    run_until(never, NULL, 150);
    gn_rcmgr_usage u;
    CHECK_EQ(gn_rcmgr_stat(gn_node_rcmgr(a.n), GN_RCMGR_SCOPE_TRANSIENT, NULL, 0, &u), 0);
    CHECK_EQ(u.conns_upgrading, 4);
    run_until(never, NULL, 1500); /* the check runs at least once a second */
    CHECK_EQ(gn_rcmgr_stat(gn_node_rcmgr(a.n), GN_RCMGR_SCOPE_TRANSIENT, NULL, 0, &u), 0);
    CHECK_EQ(u.conns_upgrading, 0);
    silent_close(fds, 4);
    node_down(&a);
    finish();
}

GN_TEST(idle_handshaked_channels_are_trimmed_to_the_low_mark)
{
    setup();
    enum { ATTACKERS = 24 };
    tnode a, b, att[ATTACKERS];
    node_up(&a, 40, &(nopts){.listen = true});
    CHECK_EQ(gn_node_configure(a.n, GN_NODE_OPT_MAX_CONNECTIONS, ATTACKERS), 0);
    CHECK_EQ(gn_node_configure(a.n, GN_NODE_OPT_CONN_HIGH_WATER, 16), 0);
    CHECK_EQ(gn_node_configure(a.n, GN_NODE_OPT_CONN_LOW_WATER, 8), 0);
    CHECK_EQ(gn_node_configure(a.n, GN_NODE_OPT_CONN_GRACE_MS, 300), 0);
    for (int i = 0; i < ATTACKERS; i++) {
        node_up(&att[i], (uint32_t)(100 + i), &(nopts){0});
    }
    CHECK_EQ(gn_node_protect_peer(a.n, &att[0].pid, true), 0);
    /* every attacker holds a handshaked, idle channel: the node is full */
    for (int i = 0; i < ATTACKERS; i++) {
        CHECK_EQ(dial_wait(&att[i], a.addr), 0);
    }
    gn_rcmgr_usage u;
    CHECK_EQ(gn_rcmgr_stat(gn_node_rcmgr(a.n), GN_RCMGR_SCOPE_SYSTEM, NULL, 0, &u), 0);
    CHECK_EQ(u.conns_in, ATTACKERS);
    /* past the grace period the manager trims down to the low mark */
    run_until(never, NULL, 1600);
    CHECK_EQ(gn_rcmgr_stat(gn_node_rcmgr(a.n), GN_RCMGR_SCOPE_SYSTEM, NULL, 0, &u), 0);
    CHECK(u.conns_in <= 8);
    /* the protected peer kept its channel */
    CHECK_EQ(gn_rcmgr_stat(gn_node_rcmgr(a.n), GN_RCMGR_SCOPE_PEER, att[0].pid.bytes, att[0].pid.len, &u), 0);
    CHECK_EQ(u.conns_in, 1);
    /* and a legitimate peer gets in */
    node_up(&b, 41, &(nopts){0});
    CHECK_EQ(dial_wait(&b, a.addr), 0);
    node_down(&b);
    for (int i = 0; i < ATTACKERS; i++) {
        node_down(&att[i]);
    }
    node_down(&a);
    finish();
}

GN_TEST(refused_connections_do_not_trim_open_channels)
{
    setup();
    enum { PEERS = 4 };
    tnode a, p[PEERS];
    node_up(&a, 50, &(nopts){.listen = true});
    CHECK_EQ(gn_node_configure(a.n, GN_NODE_OPT_MAX_CONNECTIONS, PEERS), 0);
    CHECK_EQ(gn_node_configure(a.n, GN_NODE_OPT_MAX_CONNECTIONS_PER_IP, PEERS), 0);
    CHECK_EQ(gn_node_configure(a.n, GN_NODE_OPT_CONN_GRACE_MS, 0), 0);
    for (int i = 0; i < PEERS; i++) {
        node_up(&p[i], (uint32_t)(60 + i), &(nopts){0});
        CHECK_EQ(dial_wait(&p[i], a.addr), 0);
    }
    /* 127.0.0.1 is at its per-address limit: more connections from it are
     * refused by that limit, and must not trim the open channels */
    int fds[3];
    for (int i = 0; i < 3; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in dst = {.sin_family = AF_INET,
                                  .sin_port = htons((uint16_t)addr_port(a.addr))};
        dst.sin_addr.s_addr = htonl(0x7f000001u);
        CHECK_EQ(connect(fds[i], (struct sockaddr *)&dst, sizeof dst), 0);
    }
    run_until(never, NULL, 300);
    gn_rcmgr_usage u;
    for (int i = 0; i < PEERS; i++) {
        /* every peer still has its channel */
        CHECK_EQ(gn_rcmgr_stat(gn_node_rcmgr(a.n), GN_RCMGR_SCOPE_PEER, p[i].pid.bytes,
                               p[i].pid.len, &u), 0);
        CHECK_EQ(u.conns_in, 1);
    }
    for (int i = 0; i < 3; i++) {
        close(fds[i]);
    }
    for (int i = 0; i < PEERS; i++) {
        node_down(&p[i]);
    }
    node_down(&a);
    finish();
}

GN_TEST(idle_message_streams_are_ended_by_their_sender)
{
    setup();
    tnode a, b;
    node_up(&a, 70, &(nopts){.listen = true});
    const char *opts[] = {"msg.writer_idle_ms=200"};
    node_up(&b, 71, &(nopts){.options = opts, .n_options = 1});
    CHECK_EQ(dial_wait(&b, a.addr), 0);
    uint64_t req = 0;
    CHECK_EQ(gn_node_unicast(b.n, a.pid_str, (const uint8_t *)"one", 3, &req), 0);
    ev_wait w = {.t = &a, .type = GN_NODE_EV_MESSAGE};
    CHECK(run_until(ev_arrived, &w, 5000));
    gn_rcbuf_rele(w.ev.message);
    gn_channel *ach = gn_node_channel_find(a.n, w.ev.channel_id); /* borrowed */
    CHECK(ach != NULL);
    gn_channel_metrics m;
    gn_channel_metrics_get(ach, &m);
    CHECK(m.streams_open >= 1);
    /* after the idle period the sender half-closes its message stream and
     * the receiver's reader ends: no stream is left for the muxer's idle
     * timeout to reset with a message in flight */
    run_until(never, NULL, 700);
    gn_channel_metrics_get(ach, &m);
    CHECK_EQ(m.streams_open, 0);
    /* the next message opens a new stream */
    CHECK_EQ(gn_node_unicast(b.n, a.pid_str, (const uint8_t *)"two", 3, &req), 0);
    ev_wait w2 = {.t = &a, .type = GN_NODE_EV_MESSAGE};
    CHECK(run_until(ev_arrived, &w2, 5000));
    gn_slice got = gn_rcbuf_slice(w2.ev.message);
    CHECK_EQ(got.len, 3);
    CHECK(memcmp(got.base, "two", 3) == 0);
    gn_rcbuf_rele(w2.ev.message);
    node_down(&b);
    node_down(&a);
    finish();
}

/* ---- DNS addresses in the dial path ------------------------------------ */

/* A UDP "name server" on 127.0.0.1 that never answers; its port in *@port. */
static int dns_silent(int *port)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        return -1;
    *port = ntohs(a.sin_port);
    return fd;
}

/* A name server thread on @fd: answers an A query after 200 ms with
 * 127.0.0.1, except for names starting with "slow" (never answered). */
static volatile bool dns_stop;
static void *dns_delayed(void *arg)
{
    int fd = *(int *)arg;
    struct timeval tv = {0, 50000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    while (!dns_stop) {
        uint8_t q[512], a[600];
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t len = recvfrom(fd, q, sizeof q, 0, (struct sockaddr *)&from, &fl);
        if (len < 12 || (q[12] >= 4 && memcmp(q + 13, "slow", 4) == 0))
            continue;
        size_t o = 12;
        while (o < (size_t)len && q[o] != 0)
            o += 1 + q[o];
        if (o + 5 > (size_t)len || (size_t)len > 400)
            continue;
        memcpy(a, q, o + 5);
        a[2] = 0x81;
        a[3] = 0x80;
        memset(a + 6, 0, 6);
        size_t w = o + 5;
        if (q[o + 2] == 1) { /* type A */
            static const uint8_t rr[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1};
            memcpy(a + w, rr, sizeof rr);
            w += sizeof rr;
            a[7] = 1;
        }
        usleep(200 * 1000);
        (void)sendto(fd, a, w, 0, (struct sockaddr *)&from, fl);
    }
    return NULL;
}

typedef struct dres {
    int calls, status;
    char detail[256];
} dres;

static void on_dial_res(void *arg, const gn_node_dial_result *res)
{
    dres *d = arg;
    d->calls++;
    d->status = res->status;
    snprintf(d->detail, sizeof d->detail, "%s", res->detail ? res->detail : "");
}

static bool dres_done(void *arg) { return ((dres *)arg)->calls > 0; }

typedef struct opened { tnode *t; int n; } opened;
static bool count_opened(void *arg)
{
    opened *o = arg;
    gn_node_event ev;
    while (gn_node_next_event(o->t->n, &ev, 0) == 0) {
        o->n += ev.type == GN_NODE_EV_CHANNEL_OPENED;
        gn_rcbuf_rele(ev.message);
    }
    return false;
}

/*
 * With DNS that never answers (a silent server): a stored name that fails
 * to resolve lends its words to no later, different failure; a name whose
 * results no transport handles fails GN_ENOTRANSPORT (not the routers'
 * GN_ENOROUTE); a cancelled dial does not go on to connect once its name
 * resolves; an open connection to the /p2p/ peer is reused before DNS.
 */
GN_TEST(dial_dns_paths)
{
    setup();
    int port = 0, fd = dns_silent(&port);
    CHECK(fd >= 0);
    char server[64];
    snprintf(server, sizeof server, "dns.server=127.0.0.1:%d", port);
    const char *opts[] = {server, "dns.timeout_ms=100", "dns.tries=1"};
    tnode a, b, c;
    node_up(&a, 41, &(nopts){.listen = true, .routers = "", .discovery = ""});
    node_up(&b, 42, &(nopts){.routers = "", .discovery = "", .options = opts, .n_options = 3});
    int port2 = 0, fd2 = dns_silent(&port2);
    CHECK(fd2 >= 0);
    char server2[64];
    snprintf(server2, sizeof server2, "dns.server=127.0.0.1:%d", port2);
    const char *opts2[] = {server2, "dns.timeout_ms=1000", "dns.tries=1"};
    pthread_t th;
    dns_stop = false;
    CHECK_EQ(pthread_create(&th, NULL, dns_delayed, &fd2), 0);
    node_up(&c, 43, &(nopts){.routers = "", .discovery = "", .options = opts2, .n_options = 3});
    char tcp_a[GN_NODE_ADDR_MAX], target[GN_NODE_ADDR_MAX];
    snprintf(tcp_a, sizeof tcp_a, "%s", a.addr);
    *strstr(tcp_a, "/p2p/") = '\0';
    const char *aport = strstr(tcp_a, "/tcp/") + 5;

    /* b knows a at a dead address and, newest, at a name that times out */
    gn_host *hb = gn_node_host(b.n);
    gn_multiaddr *dead = NULL, *slow = NULL;
    CHECK_OK(gn_multiaddr_parse("/ip4/127.0.0.1/tcp/1", &dead));
    CHECK_OK(gn_multiaddr_parse("/dns4/slow.example.test/tcp/1", &slow));
    const gn_multiaddr *one[1] = {dead};
    CHECK_OK(gn_host_peer_add_addrs(hb, &a.pid, one, 1, 60 * GN_S, GN_ADDR_SRC_MANUAL));
    one[0] = slow;
    CHECK_OK(gn_host_peer_add_addrs(hb, &a.pid, one, 1, 60 * GN_S, GN_ADDR_SRC_MANUAL));
    gn_multiaddr_free(dead);
    gn_multiaddr_free(slow);
    snprintf(target, sizeof target, "/p2p/%s", a.pid_str);
    dres d = {0};
    CHECK_OK(gn_node_dial_ex(b.n, target, on_dial_res, &d, NULL));
    CHECK(run_until(dres_done, &d, 5000));
    CHECK_EQ(d.status, GN_ECONNREFUSED);
    CHECK_STR(d.detail, ""); /* not "resolving failed: slow.example.test: ..." */

    /* a name resolving only to what no transport handles (udp) */
    gn_host *hc = gn_node_host(c.n);
    gn_multiaddr *ma = NULL;
    snprintf(target, sizeof target, "/dns4/localhost/udp/1/p2p/%s", a.pid_str);
    CHECK_OK(gn_multiaddr_parse(target, &ma));
    conn_res r4 = {0};
    CHECK_OK(gn_host_connect(hc, ma, on_connect, &r4, NULL));
    CHECK(run_until(conn_done, &r4, 5000));
    CHECK_EQ(r4.status, GN_ENOTRANSPORT);
    gn_multiaddr_free(ma);

    /* cancelled while its name resolves (200 ms): no connection follows */
    snprintf(target, sizeof target, "/dns4/late.example.test/tcp/%s/p2p/%s", aport, a.pid_str);
    CHECK_OK(gn_multiaddr_parse(target, &ma));
    conn_res r5 = {0};
    gn_op *op = NULL;
    CHECK_OK(gn_host_connect(hc, ma, on_connect, &r5, &op));
    CHECK(op != NULL);
    run_until(never, NULL, 50); /* the resolution is under way */
    CHECK_EQ(r5.calls, 0);
    gn_op_cancel(op);
    CHECK(run_until(conn_done, &r5, 2000));
    CHECK_EQ(r5.status, GN_ECANCELED);
    opened oa = {&a, 0};
    run_until(count_opened, &oa, 700);
    CHECK_EQ(oa.n, 0);
    CHECK_EQ(r5.calls, 1);
    gn_multiaddr_free(ma);

    /* connected to a: /dns4/<a name DNS cannot answer>/.../p2p/a reuses it */
    CHECK_EQ(dial_wait(&c, a.addr), 0);
    snprintf(target, sizeof target, "/dns4/slow.example.test/tcp/%s/p2p/%s", aport, a.pid_str);
    CHECK_EQ(dial_wait(&c, target), 0);

    node_down(&c);
    node_down(&b);
    node_down(&a);
    dns_stop = true;
    pthread_join(th, NULL);
    close(fd);
    close(fd2);
    finish();
}

GN_TEST_MAIN(GN_T(dial_peer_id_through_static_router),
             GN_T(dial_dns_paths),
             GN_T(dial_peer_id_through_bootstrap_discovery),
             GN_T(bootstrap_dials_with_backoff_until_connected),
             GN_T(dial_peer_id_without_route_fails_clearly), GN_T(dial_peer_id_tries_each_address),
             GN_T(bad_component_options_are_refused),
             GN_T(user_protocol_router_and_discovery_components),
             GN_T(host_operations_cancel_and_complete_once),
             GN_T(router_answers_synchronously_or_without_dialable_addresses),
             GN_T(user_message_service_replaces_msg),
             GN_T(silent_connections_do_not_lock_out_legitimate_peers),
             GN_T(first_byte_deadline_closes_silent_connections),
             GN_T(idle_handshaked_channels_are_trimmed_to_the_low_mark),
             GN_T(refused_connections_do_not_trim_open_channels),
             GN_T(idle_message_streams_are_ended_by_their_sender))
