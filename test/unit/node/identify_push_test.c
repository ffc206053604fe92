/*
 * identify push (/ipfs/id/push/1.0.0) between two nodes over TCP on
 * loopback, through the public headers: a node that starts listening on a
 * new address, gets an observed address, or answers new protocols, after a
 * peer connected tells that
 * peer with a push (the peer's store learns it on the same channel, with no
 * new connection and so no new identify request); changes close together
 * make one push; id.push=0 sends none; a partial push leaves the fields it
 * lacks unchanged. Nodes share one loop driven by the test thread; every
 * loop is bounded by a guard timer; every node is closed and freed.
 */
#include "golemnet/golemnet.h"

#include "gn_test.h"

#include <stdio.h>
#include <string.h>

#define GN_TNODE_EXTRA                                                                       \
    /* counts of the events popped so far (pump()) */                                        \
    int listening, channels_opened, identify_ok;                                             \
    char last_listen[GN_NODE_ADDR_MAX]; /* without /p2p/ */                                  \
    uint64_t channel_id;                /* of the last CHANNEL_OPENED */
#include "gn_tnode.h"

/* Pops @t's events and counts them. */
static void pump(tnode *t)
{
    gn_node_event ev;
    while (gn_node_next_event(t->n, &ev, 0) == 0) {
        switch (ev.type) {
        case GN_NODE_EV_LISTENING:
            t->listening++;
            snprintf(t->last_listen, sizeof t->last_listen, "%s", ev.addr);
            {
                char *p2p = strstr(t->last_listen, "/p2p/");
                if (p2p) {
                    *p2p = '\0';
                }
            }
            break;
        case GN_NODE_EV_CHANNEL_OPENED:
            t->channels_opened++;
            t->channel_id = ev.channel_id;
            break;
        case GN_NODE_EV_IDENTIFY:
            t->identify_ok += ev.status == 0;
            break;
        default:
            break;
        }
        gn_rcbuf_rele(ev.message);
    }
}

/* Starts @t (listening when @listen; pump() sees its LISTENING events). */
static void ip_node_up(tnode *t, uint32_t seed, bool listen, const char *const *opts, size_t n)
{
    node_up(t, seed,
            &(nopts){.routers = "", .discovery = "", .nat = "", .options = opts,
                            .n_options = n, .listen = listen, .no_wait = true});
}

/* ---- predicates ---- */

typedef struct want {
    tnode *t;     /* whose events to pump */
    tnode *other; /* pumped too */
    int listening;
    int identify_ok;
    /* peer-store checks on t about other */
    const char *addr;
    const char *protocol;
} want;

static bool has_addr(tnode *t, const gn_peer_id *peer, const char *addr)
{
    char got[GN_NODE_ADDR_MAX];
    for (size_t i = 0; i < 64 && gn_node_peer_addr(t->n, peer, i, got, sizeof got) > 0; i++) {
        if (strcmp(got, addr) == 0) {
            return true;
        }
    }
    return false;
}

static bool has_protocol(tnode *t, const gn_peer_id *peer, const char *id)
{
    char got[GN_PROTOCOL_ID_MAX];
    for (size_t i = 0; i < 512 && gn_node_peer_protocol(t->n, peer, i, got, sizeof got) > 0;
         i++) {
        if (strcmp(got, id) == 0) {
            return true;
        }
    }
    return false;
}

static bool wanted(void *arg)
{
    want *w = arg;
    pump(w->t);
    if (w->other) {
        pump(w->other);
    }
    if (w->t->listening < w->listening || w->t->identify_ok < w->identify_ok) {
        return false;
    }
    if (w->addr && !has_addr(w->t, &w->other->pid, w->addr)) {
        return false;
    }
    if (w->protocol && !has_protocol(w->t, &w->other->pid, w->protocol)) {
        return false;
    }
    return true;
}

/* @y dials @x's first listen address and waits until @y identified @x. */
static void connect_and_identify(tnode *y, tnode *x)
{
    CHECK(run_until(wanted, &(want){.t = x, .listening = 1}, 5000));
    char target[2 * GN_NODE_ADDR_MAX];
    char xs[GN_PEER_ID_MAX_STRLEN];
    gn_peer_id_to_string(&x->pid, xs, sizeof xs);
    snprintf(target, sizeof target, "%s/p2p/%s", x->last_listen, xs);
    CHECK_EQ(dial_wait(y, target), 0);
    CHECK(run_until(wanted, &(want){.t = y, .other = x, .identify_ok = 1}, 5000));
    /* and x identified y: both sides track the channel for pushes */
    CHECK(run_until(wanted, &(want){.t = x, .other = y, .identify_ok = 1}, 5000));
}

static void unused_stream(void *arg, gn_channel *ch, gn_stream *s, const char *id)
{
    (void)arg, (void)ch, (void)id;
    gn_stream_reset(s, NULL, NULL);
}

/* ---- tests ---- */

GN_TEST(new_listen_address_reaches_a_connected_peer_by_push)
{
    setup();
    tnode x, y;
    ip_node_up(&x, 80, true, NULL, 0);
    ip_node_up(&y, 81, false, NULL, 0);
    connect_and_identify(&y, &x);
    char first[GN_NODE_ADDR_MAX];
    snprintf(first, sizeof first, "%s", x.last_listen);
    CHECK(has_addr(&y, &x.pid, first));
    CHECK(has_protocol(&y, &x.pid, "/ipfs/id/push/1.0.0"));
    int identified_before = y.identify_ok;

    /* x listens on a second address: y learns it on the same channel */
    CHECK_EQ(gn_node_listen(x.n, "/ip4/127.0.0.1/tcp/0", NULL), 0);
    CHECK(run_until(wanted, &(want){.t = &x, .other = &y, .listening = 2}, 5000));
    char second[GN_NODE_ADDR_MAX];
    snprintf(second, sizeof second, "%s", x.last_listen);
    CHECK(strcmp(first, second) != 0);
    CHECK(!has_addr(&y, &x.pid, second));
    CHECK(run_until(wanted, &(want){.t = &y, .other = &x, .addr = second}, 3000));
    CHECK(has_addr(&y, &x.pid, first));
    /* one push result, on the one channel each side has: no reconnection,
     * so no new identify request */
    CHECK_EQ(y.identify_ok, identified_before + 1);
    CHECK_EQ(y.channels_opened, 1);
    CHECK_EQ(x.channels_opened, 1);

    /* an observed address (a NAT mapping, a relay address) is announced
     * after the listen addresses and pushed too */
    gn_multiaddr *obs = NULL;
    CHECK_EQ(gn_multiaddr_parse("/ip4/198.51.100.7/tcp/4001", &obs), 0);
    CHECK_EQ(gn_host_add_observed_addr(gn_node_host(x.n), obs), 0);
    gn_multiaddr_free(obs);
    CHECK(run_until(wanted, &(want){.t = &y, .other = &x, .addr = "/ip4/198.51.100.7/tcp/4001"},
                    3000));
    CHECK_EQ(y.channels_opened, 1);

    /* three new protocols in one turn: one push carries them all */
    run_until(never, NULL, 300); /* any late push has landed */
    pump(&y);
    identified_before = y.identify_ok;
    CHECK_EQ(gn_node_set_handler(x.n, "/test/push/a/1.0.0", unused_stream, NULL), 0);
    CHECK_EQ(gn_node_set_handler(x.n, "/test/push/b/1.0.0", unused_stream, NULL), 0);
    CHECK_EQ(gn_node_set_handler(x.n, "/test/push/c/1.0.0", unused_stream, NULL), 0);
    CHECK(run_until(wanted, &(want){.t = &y, .other = &x, .protocol = "/test/push/c/1.0.0"},
                    3000));
    CHECK(has_protocol(&y, &x.pid, "/test/push/a/1.0.0"));
    CHECK(has_protocol(&y, &x.pid, "/test/push/b/1.0.0"));
    CHECK(has_protocol(&y, &x.pid, "/ipfs/ping/1.0.0"));
    run_until(never, NULL, 400);
    pump(&y);
    CHECK_EQ(y.identify_ok, identified_before + 1);

    /* a removed protocol is gone from y's store after the next push */
    CHECK_EQ(gn_node_set_handler(x.n, "/test/push/b/1.0.0", NULL, NULL), 0);
    CHECK(run_until(wanted, &(want){.t = &y, .other = &x, .identify_ok = identified_before + 2},
                    3000));
    CHECK(!has_protocol(&y, &x.pid, "/test/push/b/1.0.0"));
    CHECK(has_protocol(&y, &x.pid, "/test/push/a/1.0.0"));
    CHECK_EQ(y.channels_opened, 1);
    node_down(&y);
    node_down(&x);
    finish();
}

GN_TEST(push_off_sends_nothing)
{
    setup();
    tnode x, y;
    const char *opts[] = {"id.push=0"};
    ip_node_up(&x, 82, true, opts, 1);
    ip_node_up(&y, 83, false, NULL, 0);
    connect_and_identify(&y, &x);
    int identified_before = y.identify_ok;
    CHECK_EQ(gn_node_listen(x.n, "/ip4/127.0.0.1/tcp/0", NULL), 0);
    CHECK(run_until(wanted, &(want){.t = &x, .other = &y, .listening = 2}, 5000));
    char second[GN_NODE_ADDR_MAX];
    snprintf(second, sizeof second, "%s", x.last_listen);
    /* the control for the test above: without push, y never hears of it */
    CHECK(!run_until(wanted, &(want){.t = &y, .other = &x, .addr = second}, 800));
    CHECK_EQ(y.identify_ok, identified_before);
    node_down(&y);
    node_down(&x);
    finish();
}

GN_TEST(bad_push_options_are_refused)
{
    setup();
    const char *bad[][1] = {{"id.push=yes"}, {"id.push_delay_ms=60001"},
                            {"id.push_delay_ms=-1"}, {"id.push_delay_ms="}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tnode x;
        memset(&x, 0, sizeof x);
        CHECK_EQ(gn_identity_from_int_seed(84, &x.id), 0);
        gn_node_config cfg;
        gn_node_config_default(&cfg);
        cfg.identity = x.id;
        cfg.loop = loop;
        cfg.transports = "tcp";
        cfg.options = bad[i];
        cfg.n_options = 1;
        int rc = gn_node_new(&cfg, &x.n);
        if (rc == 0) {
            rc = gn_node_start(x.n);
            bool refused = rc < 0;
            gn_node_event ev;
            for (int k = 0; k < 50 && !refused; k++) {
                gn_loop_run(loop, GN_RUN_NOWAIT);
                while (gn_node_next_event(x.n, &ev, 0) == 0) {
                    refused = refused || ev.type == GN_NODE_EV_START_FAILED;
                    gn_rcbuf_rele(ev.message);
                }
            }
            CHECK(refused);
            node_down(&x);
        } else {
            gn_identity_free(x.id);
        }
    }
    /* and good ones are taken */
    tnode ok;
    const char *good[] = {"id.push=1", "id.push_delay_ms=0"};
    ip_node_up(&ok, 84, true, good, 2);
    CHECK(run_until(wanted, &(want){.t = &ok, .listening = 1}, 5000));
    node_down(&ok);
    finish();
}

/* Writes one framed Identify message holding only listenAddrs (field 2)
 * on a push stream that @x opens to @y, then closes it. */
typedef struct raw_push {
    const uint8_t *msg;
    size_t len;
    int written;
} raw_push;

static void raw_written(void *arg, int status)
{
    raw_push *p = arg;
    p->written = status == 0 ? 1 : -1;
}

static void raw_opened(void *arg, int status, gn_stream *s)
{
    raw_push *p = arg;
    if (status < 0) {
        p->written = -1;
        return;
    }
    gn_slice iov = gn_slice_of(p->msg, p->len);
    if (gn_stream_write(s, &iov, 1, raw_written, p) < 0) {
        p->written = -1;
        gn_stream_reset(s, NULL, NULL);
        return;
    }
    gn_stream_shutdown(s);
    gn_stream_close(s, NULL, NULL);
}

static bool raw_done(void *arg) { return ((raw_push *)arg)->written != 0; }

GN_TEST(partial_push_leaves_missing_fields_unchanged)
{
    setup();
    tnode x, y;
    ip_node_up(&x, 85, true, NULL, 0);
    ip_node_up(&y, 86, false, NULL, 0);
    connect_and_identify(&y, &x);
    gn_peer_info before;
    CHECK_EQ(gn_node_peer_info(y.n, &x.pid, &before), 0);
    CHECK(before.agent_version[0] != '\0');
    CHECK(before.n_protocols > 2);
    /* listenAddrs = /ip4/10.9.9.9/tcp/9 only: no key, agent or protocols */
    gn_multiaddr *ma = NULL;
    CHECK_EQ(gn_multiaddr_parse("/ip4/10.9.9.9/tcp/9", &ma), 0);
    gn_slice b = gn_multiaddr_bytes(ma);
    uint8_t msg[64];
    size_t n = 0;
    msg[n++] = 0; /* frame length, set below */
    msg[n++] = 0x12;
    msg[n++] = (uint8_t)b.len;
    memcpy(msg + n, b.base, b.len);
    n += b.len;
    msg[0] = (uint8_t)(n - 1);
    gn_multiaddr_free(ma);
    gn_channel *xch = gn_node_channel_find(x.n, x.channel_id);
    CHECK(xch != NULL);
    raw_push p = {msg, n, 0};
    CHECK_EQ(gn_channel_open_stream(xch, "/ipfs/id/push/1.0.0", raw_opened, &p), 0);
    CHECK(run_until(raw_done, &p, 3000));
    CHECK_EQ(p.written, 1);
    CHECK(run_until(wanted, &(want){.t = &y, .other = &x, .addr = "/ip4/10.9.9.9/tcp/9"}, 3000));
    gn_peer_info after;
    CHECK_EQ(gn_node_peer_info(y.n, &x.pid, &after), 0);
    CHECK_STR(after.agent_version, before.agent_version);
    CHECK_EQ(after.n_protocols, before.n_protocols);
    CHECK(has_protocol(&y, &x.pid, "/ipfs/ping/1.0.0"));
    CHECK(has_addr(&y, &x.pid, x.last_listen));
    node_down(&y);
    node_down(&x);
    finish();
}

GN_TEST(close_with_pushes_in_flight)
{
    /* pushes still opening or writing when the nodes close end with the
     * channels: no crash, no leak (run under ASan), each node closes once */
    setup();
    const char *opts[] = {"id.push_delay_ms=0"};
    for (int round = 0; round < 3; round++) {
        tnode x, y;
        ip_node_up(&x, 87, true, opts, 1);
        ip_node_up(&y, 88, false, opts, 1);
        connect_and_identify(&y, &x);
        CHECK_EQ(gn_node_listen(x.n, "/ip4/127.0.0.1/tcp/0", NULL), 0);
        CHECK_EQ(gn_node_set_handler(x.n, "/test/push/d/1.0.0", unused_stream, NULL), 0);
        for (int i = 0; i < round; i++) {
            gn_loop_run(loop, GN_RUN_NOWAIT);
        }
        if (round == 2) {
            node_down(&x); /* the pushing side first */
            node_down(&y);
        } else {
            node_down(&y);
            node_down(&x);
        }
    }
    finish();
}

GN_TEST_MAIN(GN_T(new_listen_address_reaches_a_connected_peer_by_push),
             GN_T(push_off_sends_nothing), GN_T(bad_push_options_are_refused),
             GN_T(partial_push_leaves_missing_fields_unchanged),
             GN_T(close_with_pushes_in_flight))
