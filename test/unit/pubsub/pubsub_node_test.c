/*
 * pubsub_node_test - the pubsub component and multicast channels on it
 * (gn_node_dial_group, issue 18): golemnet nodes in one process over the
 * memory transport, one loop driven by the test thread.
 *  - five nodes in a sparse graph (a line plus one chord), gossipsub and
 *    floodsub: every publish reaches every other subscriber exactly once,
 *    signed by the publisher (event peer = the publisher, also beyond its
 *    neighbours), and the channel counters say so;
 *  - the mesh snapshot of gossipsub lists only peers the node is connected to;
 *  - unicast on a group channel reaches a member over /golem/msg/1.0.0;
 *  - a slow peer (a hand-made pubsub peer that subscribes and never reads)
 *    fills its bounded outbound queue, leaves the publisher's mesh, and
 *    another subscriber still gets every message;
 *  - the group address form and the calls a group refuses;
 *  - pubsub.sign_policy: unsigned messages refused (rejected) by a
 *    StrictSign node, delivered between StrictNoSign nodes; a bad option
 *    stops the node's start.
 */
#include "gn_test.h"

#define GN_TNODE_EXTRA                                                                        \
    gn_multicast *mc;                                                                         \
    int got[16];      /* group messages received per publish index */                         \
    int other;        /* group messages that matched no expectation */                        \
    int unicasts;     /* /golem/msg/1.0.0 messages received */                               \
    char listen[32];
#include "gn_tnode.h"

#define NN 5
#define NMSG 4
#define TOPIC "golemnet-test/topic"

static tnode nodes[NN];

static void up_ex2(tnode *t, uint32_t seed, int idx, const char *router, const char *extra,
                   const char *extra2);

static void up(tnode *t, uint32_t seed, int idx, const char *router)
{
    up_ex2(t, seed, idx, router, NULL, NULL);
}

static void up_ex(tnode *t, uint32_t seed, int idx, const char *router, const char *extra)
{
    up_ex2(t, seed, idx, router, extra, NULL);
}

static void up_ex2(tnode *t, uint32_t seed, int idx, const char *router, const char *extra,
                   const char *extra2)
{
    static char opt_router[64];
    snprintf(opt_router, sizeof opt_router, "pubsub.router=%s", router);
    static const char *opts[4];
    opts[0] = opt_router;
    opts[1] = "pubsub.heartbeat_ms=100";
    opts[2] = extra;
    opts[3] = extra2;
    memset(t, 0, sizeof *t);
    CHECK_EQ(gn_identity_from_int_seed(seed, &t->id), 0);
    gn_identity_peer_id(t->id, &t->pid);
    gn_peer_id_to_string(&t->pid, t->pid_str, sizeof t->pid_str);
    snprintf(t->listen, sizeof t->listen, "/memory/%u", 7300 + seed * 10 + (unsigned)idx);
    gn_node_config cfg;
    gn_node_config_default(&cfg);
    cfg.identity = t->id;
    cfg.loop = loop;
    cfg.transports = "memory";
    cfg.protocol_components = "/meshsub/1.1.0";
    cfg.options = opts;
    cfg.n_options = extra2 ? 4 : extra ? 3 : 2;
    const char *l = t->listen;
    cfg.listen = &l;
    cfg.n_listen = 1;
    CHECK_EQ(gn_node_new(&cfg, &t->n), 0);
    CHECK_EQ(gn_node_start(t->n), 0);
    CHECK(run_until(got_listen, t, 5000));
}

/* Drains @t's events, counting group messages of node @pub's payloads "m<i>". */
static void pump_events(tnode *t, const tnode *pub)
{
    gn_node_event ev;
    while (gn_node_next_event(t->n, &ev, 0) == 0) {
        if (ev.type == GN_NODE_EV_MESSAGE && ev.message) {
            gn_slice sl = gn_rcbuf_slice(ev.message);
            const uint8_t *d = sl.base;
            size_t len = sl.len;
            if (strcmp(ev.addr, GN_GROUP_ADDR_PREFIX TOPIC) == 0 && pub &&
                gn_peer_id_equal(&ev.peer, &pub->pid) && len == 2 && d[0] == 'm' &&
                d[1] >= '0' && d[1] < '0' + NMSG) {
                t->got[d[1] - '0']++;
            } else if (strcmp(ev.protocol, GN_MSG_PROTOCOL_ID) == 0) {
                t->unicasts++;
            } else {
                t->other++;
            }
        }
        gn_rcbuf_rele(ev.message);
    }
}

static const tnode *cur_pub;

static bool all_meshed(void *arg)
{
    (void)arg;
    for (int i = 0; i < NN; i++) {
        gn_multicast_metrics m;
        pump_events(&nodes[i], cur_pub);
        if (gn_multicast_metrics_get(nodes[i].mc, &m) != 0 || m.members == 0) {
            return false;
        }
    }
    return true;
}

static bool all_got(void *arg)
{
    int pub = *(int *)arg;
    for (int i = 0; i < NN; i++) {
        pump_events(&nodes[i], &nodes[pub]);
    }
    for (int i = 0; i < NN; i++) {
        for (int k = 0; i != pub && k < NMSG; k++) {
            if (nodes[i].got[k] < 1) {
                return false;
            }
        }
    }
    return true;
}

static void connect_graph(void)
{
    /* a line 0-1-2-3-4 and the chord 0-2: node 4 is three hops from node 0 */
    static const int edges[][2] = {{0, 1}, {1, 2}, {2, 3}, {3, 4}, {0, 2}};
    for (size_t e = 0; e < sizeof edges / sizeof edges[0]; e++) {
        tnode *a = &nodes[edges[e][0]];
        char addr[GN_NODE_ADDR_MAX + 80];
        snprintf(addr, sizeof addr, "%s/p2p/%s", nodes[edges[e][1]].listen,
                 nodes[edges[e][1]].pid_str);
        CHECK_EQ(dial_wait(a, addr), 0);
    }
}

static void run_mesh(const char *router, uint32_t seed)
{
    setup();
    for (int i = 0; i < NN; i++) {
        up(&nodes[i], seed + (uint32_t)i, i, router);
        CHECK_EQ(gn_node_dial_group(nodes[i].n, GN_GROUP_ADDR_PREFIX TOPIC, &nodes[i].mc), 0);
    }
    connect_graph();
    int pub = 0;
    cur_pub = &nodes[pub];
    CHECK(run_until(all_meshed, NULL, 8000));
    /* gossipsub: let a few heartbeats graft the mesh */
    run_until(never, NULL, 600);
    for (int k = 0; k < NMSG; k++) {
        char m[2] = {'m', (char)('0' + k)};
        CHECK_EQ(gn_multicast_broadcast(nodes[pub].mc, (const uint8_t *)m, 2), 0);
    }
    if (!run_until(all_got, &pub, 8000)) {
        for (int i = 0; i < NN; i++) {
            gn_multicast_metrics m;
            gn_multicast_metrics_get(nodes[i].mc, &m);
            fprintf(stderr, "# node %d: got %d %d %d %d other %d published %llu delivered %llu "
                            "dup %llu rej %llu members %llu mesh %llu\n",
                    i, nodes[i].got[0], nodes[i].got[1], nodes[i].got[2], nodes[i].got[3],
                    nodes[i].other, (unsigned long long)m.published,
                    (unsigned long long)m.delivered, (unsigned long long)m.duplicate,
                    (unsigned long long)m.rejected, (unsigned long long)m.members,
                    (unsigned long long)m.mesh);
        }
        CHECK(false);
    }
    /* more time for duplicates to show up */
    run_until(never, NULL, 500);
    all_got(&pub);
    for (int i = 0; i < NN; i++) {
        gn_multicast_metrics m;
        CHECK_EQ(gn_multicast_metrics_get(nodes[i].mc, &m), 0);
        for (int k = 0; i != pub && k < NMSG; k++) {
            CHECK_EQ(nodes[i].got[k], 1); /* exactly once */
        }
        CHECK_EQ(nodes[i].other, 0);
        if (i == pub) {
            CHECK_EQ(m.published, (uint64_t)NMSG);
            CHECK_EQ(m.delivered, 0u); /* own messages are not echoed */
        } else {
            CHECK_EQ(m.published, 0u);
            CHECK_EQ(m.delivered, (uint64_t)NMSG);
        }
        CHECK_EQ(m.rejected, 0u);
        CHECK_EQ(m.dropped, 0u);
        /* mesh peers are peers this node has a channel to */
        gn_peer_id mesh[NN];
        int nm = gn_multicast_mesh_peers(nodes[i].mc, mesh, NN);
        CHECK(nm >= 0 && nm < NN);
        if (strcmp(router, "gossipsub") == 0) {
            CHECK(nm >= 1);
        }
        for (int j = 0; j < nm && j < NN; j++) {
            gn_peer_info pi;
            CHECK_EQ(gn_node_peer_info(nodes[i].n, &mesh[j], &pi), 0);
        }
        fprintf(stderr, "# node %d: published %llu delivered %llu duplicate %llu members %llu "
                        "mesh %llu\n",
                i, (unsigned long long)m.published, (unsigned long long)m.delivered,
                (unsigned long long)m.duplicate, (unsigned long long)m.members,
                (unsigned long long)m.mesh);
    }
    /* unicast on the group channel: node 1 to node 0 (a member) */
    CHECK_EQ(gn_multicast_unicast(nodes[1].mc, &nodes[0].pid, (const uint8_t *)"u", 1), 0);
    for (int t = 0; t < 200 && nodes[0].unicasts == 0; t++) {
        run_until(never, NULL, 10);
        pump_events(&nodes[0], NULL);
    }
    CHECK_EQ(nodes[0].unicasts, 1);
    for (int i = 0; i < NN; i++) {
        gn_multicast_free(nodes[i].mc);
        nodes[i].mc = NULL;
    }
    for (int i = 0; i < NN; i++) {
        node_down(&nodes[i]);
    }
    finish();
}

GN_TEST(gossipsub_five_nodes_exactly_once) { run_mesh("gossipsub", 410); }
GN_TEST(floodsub_five_nodes_exactly_once) { run_mesh("floodsub", 420); }

GN_TEST(group_address_and_refusals)
{
    setup();
    tnode t;
    up(&t, 430, 0, "gossipsub");
    gn_multicast *mc = NULL, *mc2 = NULL, *local = NULL;
    CHECK_EQ(gn_node_dial_group(t.n, "/pubsub/", &mc), GN_EPARSE);
    CHECK_EQ(gn_node_dial_group(t.n, "/gossip/x", &mc), GN_EPARSE);
    CHECK_EQ(gn_node_dial_group(t.n, "/ip4/1.2.3.4/tcp/1", &mc), GN_EPARSE);
    CHECK_EQ(gn_node_dial_group(NULL, "/pubsub/x", &mc), GN_EINVAL);
    {
        /* "/pubsub/" + topic must fit an event's addr: 247 bytes at most */
        char longaddr[GN_NODE_ADDR_MAX + 16];
        memset(longaddr, 'x', sizeof longaddr);
        memcpy(longaddr, GN_GROUP_ADDR_PREFIX, 8);
        longaddr[8 + 248] = 0;
        CHECK_EQ(gn_node_dial_group(t.n, longaddr, &mc), GN_EINVAL);
        longaddr[8 + 247] = 0;
        CHECK_EQ(gn_node_dial_group(t.n, longaddr, &mc), 0);
        gn_multicast_free(mc);
        mc = NULL;
    }
    CHECK_EQ(gn_node_dial_group(t.n, "/pubsub/a/b c", &mc), 0); /* the rest is the topic */
    CHECK_EQ(gn_node_dial_group(t.n, "/pubsub/a/b c", &mc2), GN_EEXIST);
    gn_peer_id p = t.pid;
    CHECK_EQ(gn_multicast_join(mc, &p), GN_ENOTSUP);
    CHECK_EQ(gn_multicast_leave(mc, &p), GN_ENOTSUP);
    CHECK_EQ(gn_multicast_unicast(mc, &p, (const uint8_t *)"x", 1), GN_ENOTFOUND);
    CHECK_EQ(gn_multicast_new(t.n, "local", &local), 0);
    gn_multicast_metrics m;
    CHECK_EQ(gn_multicast_metrics_get(local, &m), GN_ENOTSUP);
    CHECK_EQ(gn_multicast_mesh_peers(local, NULL, 0), GN_ENOTSUP);
    gn_multicast_free(local);
    /* publishing with no peers is not an error */
    CHECK_EQ(gn_multicast_broadcast(mc, (const uint8_t *)"x", 1), 0);
    run_until(never, NULL, 50);
    CHECK_EQ(gn_multicast_metrics_get(mc, &m), 0);
    CHECK_EQ(m.published, 1u);
    CHECK_EQ(gn_multicast_mesh_peers(mc, NULL, 0), 0);
    gn_multicast_free(mc);
    /* freed: the topic can be opened again */
    CHECK_EQ(gn_node_dial_group(t.n, "/pubsub/a/b c", &mc2), 0);
    gn_multicast_free(mc2);
    /* a handle that outlives its node answers GN_ECLOSED, then frees */
    gn_multicast *late = NULL;
    CHECK_EQ(gn_node_dial_group(t.n, "/pubsub/late", &late), 0);
    node_down(&t);
    CHECK_EQ(gn_multicast_broadcast(late, (const uint8_t *)"x", 1), GN_ECLOSED);
    CHECK_EQ(gn_multicast_unicast(late, &p, (const uint8_t *)"x", 1), GN_ECLOSED);
    CHECK_EQ(gn_multicast_metrics_get(late, &m), 0);
    gn_multicast_free(late);
    finish();
}

static bool b_counted(void *arg)
{
    tnode *ab = arg;
    pump_events(&ab[1], NULL);
    gn_multicast_metrics m;
    return gn_multicast_metrics_get(ab[1].mc, &m) == 0 &&
           (m.delivered >= 2 || m.rejected >= 1);
}

static bool b_member(void *arg)
{
    tnode *ab = arg;
    gn_multicast_metrics m;
    return gn_multicast_metrics_get(ab[0].mc, &m) == 0 && m.members >= 1;
}

/*
 * pubsub.sign_policy: A publishes unsigned (strict_no_sign) to B.
 * B with strict_sign refuses the messages (rejected, never delivered); B
 * with strict_no_sign delivers them with the forwarder as the peer.
 */
static void sign_policy_case(const char *b_policy, bool b_accepts, uint32_t seed)
{
    setup();
    tnode ab[2];
    char opt_b[64];
    snprintf(opt_b, sizeof opt_b, "pubsub.sign_policy=%s", b_policy);
    up_ex(&ab[0], seed, 0, "gossipsub", "pubsub.sign_policy=strict_no_sign");
    up_ex(&ab[1], seed + 1, 1, "gossipsub", opt_b);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(gn_node_dial_group(ab[i].n, GN_GROUP_ADDR_PREFIX TOPIC, &ab[i].mc), 0);
    }
    char addr[GN_NODE_ADDR_MAX + 80];
    snprintf(addr, sizeof addr, "%s/p2p/%s", ab[1].listen, ab[1].pid_str);
    CHECK_EQ(dial_wait(&ab[0], addr), 0);
    CHECK(run_until(b_member, ab, 5000));
    run_until(never, NULL, 400);
    CHECK_EQ(gn_multicast_broadcast(ab[0].mc, (const uint8_t *)"m0", 2), 0);
    CHECK_EQ(gn_multicast_broadcast(ab[0].mc, (const uint8_t *)"m1", 2), 0);
    CHECK(run_until(b_counted, ab, 5000));
    run_until(never, NULL, 200);
    gn_multicast_metrics m;
    CHECK_EQ(gn_multicast_metrics_get(ab[1].mc, &m), 0);
    if (b_accepts) {
        CHECK_EQ(m.delivered, 2u);
        CHECK_EQ(m.rejected, 0u);
    } else {
        /* the first refusal (P4, weight -100) graylists A: what A sends after
         * it may be ignored whole, so at least one is counted */
        CHECK_EQ(m.delivered, 0u);
        CHECK(m.rejected >= 1 && m.rejected <= 2);
    }
    for (int i = 0; i < 2; i++) {
        gn_multicast_free(ab[i].mc);
    }
    for (int i = 0; i < 2; i++) {
        node_down(&ab[i]);
    }
    finish();
}

GN_TEST(strict_sign_rejects_unsigned) { sign_policy_case("strict_sign", false, 440); }
GN_TEST(strict_no_sign_both_sides) { sign_policy_case("strict_no_sign", true, 450); }

static void bad_option_case(const char *opt, uint32_t seed)
{
    setup();
    const char *opts[] = {opt};
    gn_identity *id = NULL;
    CHECK_EQ(gn_identity_from_int_seed(seed, &id), 0);
    gn_node_config cfg;
    gn_node_config_default(&cfg);
    cfg.identity = id;
    cfg.loop = loop;
    cfg.transports = "memory";
    cfg.protocol_components = "meshsub";
    cfg.options = opts;
    cfg.n_options = 1;
    gn_node *n = NULL;
    CHECK_EQ(gn_node_new(&cfg, &n), 0);
    CHECK_EQ(gn_node_start(n), 0);
    tnode t = {.n = n, .id = id};
    bool failed = false;
    for (int i = 0; i < 100 && !failed; i++) {
        run_until(never, NULL, 10);
        gn_node_event ev;
        while (gn_node_next_event(n, &ev, 0) == 0) {
            failed |= ev.type == GN_NODE_EV_START_FAILED && ev.status == GN_EINVAL;
            gn_rcbuf_rele(ev.message);
        }
    }
    CHECK(failed);
    node_down(&t);
    finish();
}

GN_TEST(bad_option_stops_start)
{
    bad_option_case("pubsub.router=meshy", 460);
    /* a peer's queue must hold one RPC of max_rpc_len (1 MiB by default) */
    bad_option_case("pubsub.max_out_bytes=4096", 461);
    bad_option_case("pubsub.max_out_total_bytes=65536", 462);
}

/* ---- a slow peer: C speaks /meshsub/1.1.0 by hand, subscribes, never reads ---- */

static gn_stream *stalled_in;  /* A's stream to C, never read */
static int stall_count;        /* streams A opened to C */
static gn_stream *c_out;       /* C's stream to A: one subscription RPC */
static int c_out_status = 1;
static uint8_t sub_frame[64];
static size_t sub_frame_len;

static void stall_handler(void *arg, gn_channel *ch, gn_stream *s, const char *protocol_id)
{
    (void)arg, (void)ch, (void)protocol_id;
    stalled_in = s; /* kept, never read: its window fills */
    stall_count++;
}

static void c_write_done(void *arg, int status) { (void)arg, (void)status; }

static void c_opened(void *arg, int status, gn_stream *s)
{
    (void)arg;
    c_out_status = status;
    if (status == 0) {
        c_out = s;
        gn_slice iov = {sub_frame, sub_frame_len};
        CHECK_EQ(gn_stream_write(s, &iov, 1, c_write_done, NULL), 0);
    }
}

static bool slow_ready(void *arg)
{
    tnode *abc = arg;
    gn_multicast_metrics m;
    return stalled_in && gn_multicast_metrics_get(abc[0].mc, &m) == 0 && m.members >= 2;
}

#define SLOW_MSGS 48
#define SLOW_LEN 16384

static bool b_got_all(void *arg)
{
    tnode *abc = arg;
    gn_node_event ev;
    while (gn_node_next_event(abc[1].n, &ev, 0) == 0) {
        if (ev.type == GN_NODE_EV_MESSAGE && strcmp(ev.addr, GN_GROUP_ADDR_PREFIX TOPIC) == 0) {
            abc[1].got[0]++;
        }
        gn_rcbuf_rele(ev.message);
    }
    return abc[1].got[0] >= SLOW_MSGS;
}

GN_TEST(slow_peer_does_not_hold_others)
{
    setup();
    tnode abc[3];
    up_ex2(&abc[0], 470, 0, "gossipsub", "pubsub.max_out_bytes=65536", "pubsub.max_rpc_len=32768");
    up(&abc[1], 471, 1, "gossipsub");
    /* C: no pubsub component, a raw handler for the protocol */
    memset(&abc[2], 0, sizeof abc[2]);
    CHECK_EQ(gn_identity_from_int_seed(472, &abc[2].id), 0);
    gn_node_config cfg;
    gn_node_config_default(&cfg);
    cfg.identity = abc[2].id;
    cfg.loop = loop;
    cfg.transports = "memory";
    CHECK_EQ(gn_node_new(&cfg, &abc[2].n), 0);
    CHECK_EQ(gn_node_set_handler(abc[2].n, "/meshsub/1.1.0", stall_handler, NULL), 0);
    CHECK_EQ(gn_node_start(abc[2].n), 0);
    gn_identity_peer_id(abc[2].id, &abc[2].pid);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(gn_node_dial_group(abc[i].n, GN_GROUP_ADDR_PREFIX TOPIC, &abc[i].mc), 0);
    }
    char addr[GN_NODE_ADDR_MAX + 80];
    snprintf(addr, sizeof addr, "%s/p2p/%s", abc[0].listen, abc[0].pid_str);
    CHECK_EQ(dial_wait(&abc[1], addr), 0);
    gn_channel *ch = NULL;
    CHECK_EQ(dial_wait_ch(&abc[2], addr, &ch), 0);
    /* RPC{subscriptions: [{subscribe: true, topicid: TOPIC}]}, length-prefixed */
    size_t tl = strlen(TOPIC);
    uint8_t *f = sub_frame;
    f[0] = (uint8_t)(4 + tl + 2);
    f[1] = 0x0a;
    f[2] = (uint8_t)(4 + tl);
    f[3] = 0x08;
    f[4] = 0x01;
    f[5] = 0x12;
    f[6] = (uint8_t)tl;
    memcpy(f + 7, TOPIC, tl);
    sub_frame_len = 7 + tl;
    CHECK_EQ(gn_channel_open_stream(ch, "/meshsub/1.1.0", c_opened, NULL), 0);
    CHECK(run_until(slow_ready, abc, 5000));
    CHECK_EQ(c_out_status, 0);
    run_until(never, NULL, 400); /* a few heartbeats: both in A's mesh */
    gn_peer_id mesh[4];
    int nm = gn_multicast_mesh_peers(abc[0].mc, mesh, 4);
    bool c_in_mesh = false;
    for (int j = 0; j < nm && j < 4; j++) {
        c_in_mesh |= gn_peer_id_equal(&mesh[j], &abc[2].pid);
    }
    CHECK(c_in_mesh);
    uint8_t *big = calloc(1, SLOW_LEN);
    CHECK(big != NULL);
    for (int k = 0; k < SLOW_MSGS; k++) {
        big[0] = (uint8_t)k;
        CHECK_EQ(gn_multicast_broadcast(abc[0].mc, big, SLOW_LEN), 0);
        run_until(never, NULL, 5);
    }
    free(big);
    /* B gets every message although C reads nothing (768 KiB, past C's window) */
    CHECK(run_until(b_got_all, abc, 8000));
    {
        /* what A queues for C (which reads nothing) is reserved in the resource
         * manager: the outbound stream's span, in the /meshsub/1.1.0 scope */
        gn_rcmgr_usage up;
        memset(&up, 0, sizeof up);
        CHECK_EQ(gn_rcmgr_stat(gn_node_rcmgr(abc[0].n), GN_RCMGR_SCOPE_PROTOCOL, "/meshsub/1.1.0",
                               strlen("/meshsub/1.1.0"), &up), 0);
        CHECK(up.memory >= SLOW_LEN); /* at least one queued 16 KiB message */
    }
    CHECK_EQ(abc[1].got[0], SLOW_MSGS);
    run_until(never, NULL, 300); /* heartbeats: the mesh snapshot */
    nm = gn_multicast_mesh_peers(abc[0].mc, mesh, 4);
    CHECK(nm >= 1);
    for (int j = 0; j < nm && j < 4; j++) {
        CHECK(!gn_peer_id_equal(&mesh[j], &abc[2].pid)); /* the slow peer left the mesh */
    }
    gn_multicast_metrics m;
    CHECK_EQ(gn_multicast_metrics_get(abc[0].mc, &m), 0);
    CHECK_EQ(m.published, (uint64_t)SLOW_MSGS);
    gn_channel_rele(ch);
    for (int i = 0; i < 2; i++) {
        gn_multicast_free(abc[i].mc);
    }
    /* the test owns C's two streams */
    gn_stream_close(stalled_in, NULL, NULL);
    gn_stream_close(c_out, NULL, NULL);
    stalled_in = NULL;
    c_out = NULL;
    for (int i = 0; i < 3; i++) {
        node_down(&abc[i]);
    }
    finish();
}

/*
 * Application validation (gn_multicast_set_validator): a line A - B - C.
 * B's validator rejects payload "bad", ignores "ign", accepts the rest:
 * B and C get only "m0" and "m1" (C only through B, which forwards only
 * what it accepted); B's group counts one rejection; the validator saw
 * every message once, with A as the publisher; the rejection penalised A
 * (P4): B drops A from its mesh.
 */
typedef struct vstate {
    int calls;
    int from_a;
    const gn_peer_id *a;
    gn_multicast *mc; /* read from inside the validator: allowed */
} vstate;

static int validate_b(void *ud, const char *topic, const gn_peer_id *from, const uint8_t *data,
                      size_t len)
{
    vstate *v = ud;
    gn_multicast_metrics m;
    v->calls++;
    v->from_a += from && gn_peer_id_equal(from, v->a) && strcmp(topic, TOPIC) == 0;
    CHECK_EQ(gn_multicast_metrics_get(v->mc, &m), 0);
    if (len == 3 && memcmp(data, "bad", 3) == 0) {
        return GN_GROUP_VERDICT_REJECT;
    }
    if (len == 3 && memcmp(data, "ign", 3) == 0) {
        return GN_GROUP_VERDICT_IGNORE;
    }
    return GN_GROUP_VERDICT_ACCEPT;
}

static bool c_got_two(void *arg)
{
    tnode *abc = arg;
    pump_events(&abc[1], &abc[0]);
    pump_events(&abc[2], &abc[0]);
    return abc[2].got[0] >= 1 && abc[2].got[1] >= 1 && abc[1].got[0] >= 1 && abc[1].got[1] >= 1;
}

GN_TEST(application_validator)
{
    setup();
    tnode abc[3];
    for (int i = 0; i < 3; i++) {
        up(&abc[i], 460 + (uint32_t)i, i, "gossipsub");
        CHECK_EQ(gn_node_dial_group(abc[i].n, GN_GROUP_ADDR_PREFIX TOPIC, &abc[i].mc), 0);
    }
    vstate v = {0, 0, &abc[0].pid, abc[1].mc};
    CHECK_EQ(gn_multicast_set_validator(NULL, validate_b, &v), GN_EINVAL);
    gn_multicast *local = NULL;
    CHECK_EQ(gn_multicast_new(abc[1].n, "local", &local), 0);
    CHECK_EQ(gn_multicast_set_validator(local, validate_b, &v), GN_ENOTSUP);
    gn_multicast_free(local);
    CHECK_EQ(gn_multicast_set_validator(abc[1].mc, validate_b, &v), 0);
    for (int e = 0; e < 2; e++) {
        char addr[GN_NODE_ADDR_MAX + 80];
        snprintf(addr, sizeof addr, "%s/p2p/%s", abc[e + 1].listen, abc[e + 1].pid_str);
        CHECK_EQ(dial_wait(&abc[e], addr), 0);
    }
    CHECK(run_until(b_member, abc, 5000));
    run_until(never, NULL, 600); /* heartbeats graft the line */
    /* the rejection last: it costs A its score at B (P4, below the graylist threshold) */
    static const char *const pay[] = {"m0", "ign", "m1", "bad"};
    for (int k = 0; k < 4; k++) {
        CHECK_EQ(gn_multicast_broadcast(abc[0].mc, (const uint8_t *)pay[k], strlen(pay[k])), 0);
        run_until(never, NULL, 20);
    }
    if (!run_until(c_got_two, abc, 5000)) {
        for (int i = 0; i < 3; i++) {
            gn_multicast_metrics m;
            gn_multicast_metrics_get(abc[i].mc, &m);
            fprintf(stderr, "# node %d: got %d %d other %d delivered %llu rejected %llu members %llu "
                            "mesh %llu calls %d from_a %d\n",
                    i, abc[i].got[0], abc[i].got[1], abc[i].other, (unsigned long long)m.delivered,
                    (unsigned long long)m.rejected, (unsigned long long)m.members,
                    (unsigned long long)m.mesh, v.calls, v.from_a);
        }
        CHECK(false);
    }
    run_until(never, NULL, 500); /* time for anything else to arrive */
    c_got_two(abc);
    for (int i = 1; i < 3; i++) {
        gn_multicast_metrics m;
        CHECK_EQ(gn_multicast_metrics_get(abc[i].mc, &m), 0);
        CHECK_EQ(abc[i].got[0], 1);
        CHECK_EQ(abc[i].got[1], 1);
        CHECK_EQ(abc[i].other, 0); /* neither "bad" nor "ign" */
        CHECK_EQ(m.delivered, 2u);
        CHECK_EQ(m.rejected, i == 1 ? 1u : 0u);
    }
    CHECK_EQ(v.calls, 4);
    CHECK_EQ(v.from_a, 4);
    /* the rejection penalised A at B: after heartbeats A is out of B's mesh */
    run_until(never, NULL, 400);
    gn_peer_id mesh[4];
    int nm = gn_multicast_mesh_peers(abc[1].mc, mesh, 4);
    CHECK(nm >= 1); /* C */
    for (int j = 0; j < nm && j < 4; j++) {
        CHECK(!gn_peer_id_equal(&mesh[j], &abc[0].pid));
    }
    CHECK_EQ(gn_multicast_set_validator(abc[1].mc, NULL, NULL), 0); /* removed */
    for (int i = 0; i < 3; i++) {
        gn_multicast_free(abc[i].mc);
    }
    for (int i = 0; i < 3; i++) {
        node_down(&abc[i]);
    }
    finish();
}

/* ---- two channels between A and B; peer state per stream ---- */

static int count_msgs(tnode *t)
{
    gn_node_event ev;
    while (gn_node_next_event(t->n, &ev, 0) == 0) {
        if (ev.type == GN_NODE_EV_MESSAGE && strcmp(ev.addr, GN_GROUP_ADDR_PREFIX TOPIC) == 0) {
            t->got[0]++;
        }
        gn_rcbuf_rele(ev.message);
    }
    return t->got[0];
}

static int want_msgs;
static bool b_got_want(void *arg) { return count_msgs(arg) >= want_msgs; }

/*
 * A and B dial each other at once: two channels. Closing the first one
 * leaves the peers connected on the second, and pubsub goes on over it
 * (both sides re-open their outbound stream there).
 */
GN_TEST(two_channels_first_closes)
{
    setup();
    tnode ab[2];
    up(&ab[0], 480, 0, "gossipsub");
    up(&ab[1], 481, 1, "gossipsub");
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(gn_node_dial_group(ab[i].n, GN_GROUP_ADDR_PREFIX TOPIC, &ab[i].mc), 0);
    }
    char addr[GN_NODE_ADDR_MAX + 80], addr2[GN_NODE_ADDR_MAX + 80];
    snprintf(addr, sizeof addr, "%s/p2p/%s", ab[1].listen, ab[1].pid_str);
    snprintf(addr2, sizeof addr2, "%s/p2p/%s", ab[0].listen, ab[0].pid_str);
    dial_res r1 = {.hold = true}, r2 = {.hold = true};
    CHECK_EQ(gn_node_dial(ab[0].n, addr, on_dial, &r1, NULL), 0);
    CHECK_EQ(gn_node_dial(ab[1].n, addr2, on_dial, &r2, NULL), 0);
    CHECK(run_until(dial_done, &r1, 5000));
    CHECK(run_until(dial_done, &r2, 5000));
    CHECK_EQ(r1.status, 0);
    CHECK_EQ(r2.status, 0);
    gn_channel_info c1, c2;
    CHECK_EQ(gn_channel_state_get(r1.ch, &c1), GN_CHANNEL_OPEN);
    CHECK_EQ(gn_channel_state_get(r2.ch, &c2), GN_CHANNEL_OPEN);
    CHECK(c1.id != 0 && c1.direction == GN_DIR_OUTBOUND && c2.direction == GN_DIR_OUTBOUND);
    CHECK(run_until(b_member, ab, 5000));
    run_until(never, NULL, 600);
    CHECK_EQ(gn_multicast_broadcast(ab[0].mc, (const uint8_t *)"m0", 2), 0);
    want_msgs = 1;
    CHECK(run_until(b_got_want, &ab[1], 3000));
    /* close A's channel; B's (A inbound) stays */
    gn_channel_close(r1.ch);
    gn_channel_rele(r1.ch);
    run_until(never, NULL, 1500);
    gn_peer_info pi;
    CHECK_EQ(gn_node_peer_info(ab[0].n, &ab[1].pid, &pi), 0);
    CHECK_EQ(gn_channel_state_get(r2.ch, &c2), GN_CHANNEL_OPEN);
    gn_multicast_metrics m;
    CHECK_EQ(gn_multicast_metrics_get(ab[0].mc, &m), 0);
    CHECK_EQ(m.members, 1u); /* B is still a member at A */
    CHECK_EQ(gn_multicast_metrics_get(ab[1].mc, &m), 0);
    CHECK_EQ(m.members, 1u); /* and A at B */
    /* both ways over the remaining channel */
    CHECK_EQ(gn_multicast_broadcast(ab[0].mc, (const uint8_t *)"m1", 2), 0);
    want_msgs = 2;
    CHECK(run_until(b_got_want, &ab[1], 3000));
    CHECK_EQ(gn_multicast_broadcast(ab[1].mc, (const uint8_t *)"m2", 2), 0);
    want_msgs = 1;
    CHECK(run_until(b_got_want, &ab[0], 3000));
    gn_channel_rele(r2.ch);
    for (int i = 0; i < 2; i++) {
        gn_multicast_free(ab[i].mc);
    }
    for (int i = 0; i < 2; i++) {
        node_down(&ab[i]);
    }
    finish();
}

/*
 * A burst of RPCs of nearly max_rpc_len (max_out_bytes = max_rpc_len + 10,
 * the least accepted) fills B's queue past its mark: B is congested (the
 * RPC in hand is still sent whole; what the router holds beyond its bound
 * is dropped), and the congestion clears when the queue drains: the
 * messages after it all get through.
 */
GN_TEST(big_rpc_congestion_clears)
{
    setup();
    tnode ab[2];
    up_ex2(&ab[0], 490, 0, "gossipsub", "pubsub.max_out_bytes=16394", "pubsub.max_rpc_len=16384");
    up_ex(&ab[1], 491, 1, "gossipsub", "pubsub.max_rpc_len=16384");
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(gn_node_dial_group(ab[i].n, GN_GROUP_ADDR_PREFIX TOPIC, &ab[i].mc), 0);
    }
    char addr[GN_NODE_ADDR_MAX + 80];
    snprintf(addr, sizeof addr, "%s/p2p/%s", ab[1].listen, ab[1].pid_str);
    CHECK_EQ(dial_wait(&ab[0], addr), 0);
    CHECK(run_until(b_member, ab, 5000));
    run_until(never, NULL, 400);
    static uint8_t big[15000];
    for (int k = 0; k < 40; k++) { /* 600 KB without running the loop: past the window */
        big[0] = (uint8_t)k;
        CHECK_EQ(gn_multicast_broadcast(ab[0].mc, big, sizeof big), 0);
    }
    want_msgs = 1;
    CHECK(run_until(b_got_want, &ab[1], 3000));
    run_until(never, NULL, 1000); /* B drains */
    int bigs = count_msgs(&ab[1]);
    CHECK(bigs >= 1 && bigs <= 40);
    for (int k = 0; k < 5; k++) {
        char msg[3] = {'s', (char)('0' + k), 0};
        CHECK_EQ(gn_multicast_broadcast(ab[0].mc, (const uint8_t *)msg, 2), 0);
        run_until(never, NULL, 50);
    }
    want_msgs = bigs + 5;
    CHECK(run_until(b_got_want, &ab[1], 3000));
    CHECK_EQ(ab[1].got[0], bigs + 5);
    fprintf(stderr, "# B got %d of the 40 big messages, then all 5 small ones\n", bigs);
    gn_multicast_metrics m;
    CHECK_EQ(gn_multicast_metrics_get(ab[0].mc, &m), 0);
    if (bigs < 40) {
        CHECK(m.out_dropped >= 1); /* never dropped silently */
    }
    CHECK_EQ(m.decode_errors, 0u);
    for (int i = 0; i < 2; i++) {
        gn_multicast_free(ab[i].mc);
    }
    for (int i = 0; i < 2; i++) {
        node_down(&ab[i]);
    }
    finish();
}

/* ---- a frame over max_rpc_len resets the stream; a reconnect rejoins ---- */

static gn_stream *ov_s;
static int ov_err; /* 0 until C's stream fails */
static void ov_on_error(gn_stream *s, void *ud, int err) { (void)s, (void)ud, ov_err = err ? err : -1; }
static void ov_on_eof(gn_stream *s, void *ud) { (void)s, (void)ud; }
static const gn_stream_handler ov_handler = {.on_error = ov_on_error, .on_eof = ov_on_eof};
static void ov_write_done(void *arg, int status) { (void)arg, (void)status; }
static void ov_opened(void *arg, int status, gn_stream *s)
{
    (void)arg;
    CHECK_EQ(status, 0);
    if (status == 0) {
        ov_s = s;
        gn_stream_set_handler(s, &ov_handler, NULL);
        gn_stream_read_start(s);
        static const uint8_t frame[] = {0x81, 0x40, 0x0a}; /* length 8193 > 4096 */
        gn_slice iov = {frame, sizeof frame};
        CHECK_EQ(gn_stream_write(s, &iov, 1, ov_write_done, NULL), 0);
    }
}
static bool ov_done(void *arg)
{
    gn_multicast_metrics m;
    return ov_err != 0 && gn_multicast_metrics_get(((tnode *)arg)->mc, &m) == 0 &&
           m.decode_errors >= 1;
}

GN_TEST(oversize_frame_resets_stream)
{
    setup();
    tnode a, c;
    up_ex2(&a, 500, 0, "gossipsub", "pubsub.max_rpc_len=4096", "pubsub.max_out_bytes=8192");
    CHECK_EQ(gn_node_dial_group(a.n, GN_GROUP_ADDR_PREFIX TOPIC, &a.mc), 0);
    memset(&c, 0, sizeof c);
    CHECK_EQ(gn_identity_from_int_seed(501, &c.id), 0);
    gn_node_config cfg;
    gn_node_config_default(&cfg);
    cfg.identity = c.id;
    cfg.loop = loop;
    cfg.transports = "memory";
    CHECK_EQ(gn_node_new(&cfg, &c.n), 0);
    CHECK_EQ(gn_node_start(c.n), 0);
    char addr[GN_NODE_ADDR_MAX + 80];
    snprintf(addr, sizeof addr, "%s/p2p/%s", a.listen, a.pid_str);
    gn_channel *ch = NULL;
    CHECK_EQ(dial_wait_ch(&c, addr, &ch), 0);
    CHECK_EQ(gn_channel_open_stream(ch, "/meshsub/1.1.0", ov_opened, NULL), 0);
    CHECK(run_until(ov_done, &a, 5000));
    CHECK(ov_err != 0); /* A reset C's stream */
    gn_multicast_metrics m;
    CHECK_EQ(gn_multicast_metrics_get(a.mc, &m), 0);
    CHECK_EQ(m.decode_errors, 1u);
    gn_channel_info ci;
    CHECK_EQ(gn_channel_state_get(ch, &ci), GN_CHANNEL_OPEN); /* nothing else affected */
    gn_stream_close(ov_s, NULL, NULL);
    ov_s = NULL;
    gn_channel_rele(ch);
    gn_multicast_free(a.mc);
    node_down(&a);
    node_down(&c);
    finish();
}

static bool b_no_member(void *arg)
{
    gn_multicast_metrics m;
    return gn_multicast_metrics_get(((tnode *)arg)->mc, &m) == 0 && m.members == 0;
}

/* A disconnect takes B out of A's group; dialling again brings it back. */
GN_TEST(disconnect_reconnect_rejoins)
{
    setup();
    tnode ab[2];
    up(&ab[0], 510, 0, "gossipsub");
    up(&ab[1], 511, 1, "gossipsub");
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(gn_node_dial_group(ab[i].n, GN_GROUP_ADDR_PREFIX TOPIC, &ab[i].mc), 0);
    }
    char addr[GN_NODE_ADDR_MAX + 80];
    snprintf(addr, sizeof addr, "%s/p2p/%s", ab[1].listen, ab[1].pid_str);
    gn_channel *ch = NULL;
    CHECK_EQ(dial_wait_ch(&ab[0], addr, &ch), 0);
    CHECK(run_until(b_member, ab, 5000));
    gn_channel_close(ch);
    gn_channel_rele(ch);
    CHECK(run_until(b_no_member, &ab[0], 3000));
    CHECK_EQ(dial_wait(&ab[0], addr), 0);
    CHECK(run_until(b_member, ab, 5000));
    run_until(never, NULL, 400);
    CHECK_EQ(gn_multicast_broadcast(ab[0].mc, (const uint8_t *)"m0", 2), 0);
    want_msgs = 1;
    CHECK(run_until(b_got_want, &ab[1], 3000));
    for (int i = 0; i < 2; i++) {
        gn_multicast_free(ab[i].mc);
    }
    for (int i = 0; i < 2; i++) {
        node_down(&ab[i]);
    }
    finish();
}

/* ---- a second inbound stream from a peer replaces the first ---- */

static gn_stream *two_s[2];
static int two_err[2];
static void two_on_error(gn_stream *s, void *ud, int err)
{
    (void)s, (void)err;
    two_err[(intptr_t)ud] = 1;
}
static void two_on_eof(gn_stream *s, void *ud) { (void)s, (void)ud; }
static const gn_stream_handler two_handler = {.on_error = two_on_error, .on_eof = two_on_eof};
static void two_opened(void *arg, int status, gn_stream *s)
{
    CHECK_EQ(status, 0);
    if (status == 0) {
        two_s[(intptr_t)arg] = s;
        gn_stream_set_handler(s, &two_handler, arg);
        gn_stream_read_start(s);
        gn_slice iov = {sub_frame, sub_frame_len};
        CHECK_EQ(gn_stream_write(s, &iov, 1, c_write_done, NULL), 0);
    }
}
static bool two_first_reset(void *arg) { (void)arg; return two_s[1] && two_err[0]; }
static bool out_reopened(void *arg) { return stall_count > *(int *)arg; }

/* ...and an error on our outbound stream re-opens it, keeping the inbound side */
GN_TEST(second_inbound_replaces_first)
{
    setup();
    tnode a, c;
    up(&a, 520, 0, "gossipsub");
    CHECK_EQ(gn_node_dial_group(a.n, GN_GROUP_ADDR_PREFIX TOPIC, &a.mc), 0);
    memset(&c, 0, sizeof c);
    CHECK_EQ(gn_identity_from_int_seed(521, &c.id), 0);
    gn_node_config cfg;
    gn_node_config_default(&cfg);
    cfg.identity = c.id;
    cfg.loop = loop;
    cfg.transports = "memory";
    CHECK_EQ(gn_node_new(&cfg, &c.n), 0);
    CHECK_EQ(gn_node_set_handler(c.n, "/meshsub/1.1.0", stall_handler, NULL), 0);
    CHECK_EQ(gn_node_start(c.n), 0);
    /* RPC{subscriptions: [{subscribe: true, topicid: TOPIC}]}, length-prefixed */
    size_t tl = strlen(TOPIC);
    uint8_t *f = sub_frame;
    f[0] = (uint8_t)(4 + tl + 2);
    f[1] = 0x0a;
    f[2] = (uint8_t)(4 + tl);
    f[3] = 0x08;
    f[4] = 0x01;
    f[5] = 0x12;
    f[6] = (uint8_t)tl;
    memcpy(f + 7, TOPIC, tl);
    sub_frame_len = 7 + tl;
    char addr[GN_NODE_ADDR_MAX + 80];
    snprintf(addr, sizeof addr, "%s/p2p/%s", a.listen, a.pid_str);
    gn_channel *ch = NULL;
    CHECK_EQ(dial_wait_ch(&c, addr, &ch), 0);
    CHECK_EQ(gn_channel_open_stream(ch, "/meshsub/1.1.0", two_opened, (void *)(intptr_t)0), 0);
    tnode ac[2] = {a, c};
    CHECK(run_until(b_member, ac, 5000));
    CHECK_EQ(gn_channel_open_stream(ch, "/meshsub/1.1.0", two_opened, (void *)(intptr_t)1), 0);
    CHECK(run_until(two_first_reset, NULL, 5000)); /* A reset the older stream */
    run_until(never, NULL, 300);
    CHECK_EQ(two_err[1], 0); /* the newer one stays */
    gn_multicast_metrics m;
    CHECK_EQ(gn_multicast_metrics_get(a.mc, &m), 0);
    CHECK_EQ(m.members, 1u); /* C is still a member */
    CHECK_EQ(m.decode_errors, 0u);
    /* C resets A's outbound stream: A re-opens it (C's inbound side stays) */
    CHECK(stalled_in != NULL);
    int opened = stall_count;
    gn_stream_reset(stalled_in, NULL, NULL);
    stalled_in = NULL;
    /* publishes until one of A's writes on the reset stream fails */
    bool reopened = false;
    for (int k = 0; k < 30 && !reopened; k++) {
        CHECK_EQ(gn_multicast_broadcast(a.mc, (const uint8_t *)"m0", 2), 0);
        reopened = run_until(out_reopened, &opened, 100);
    }
    CHECK(reopened);
    CHECK_EQ(two_err[1], 0);
    CHECK_EQ(gn_multicast_metrics_get(a.mc, &m), 0);
    CHECK_EQ(m.members, 1u);
    for (int i = 0; i < 2; i++) {
        gn_stream_close(two_s[i], NULL, NULL);
        two_s[i] = NULL;
    }
    if (stalled_in) {
        gn_stream_close(stalled_in, NULL, NULL);
        stalled_in = NULL;
    }
    gn_channel_rele(ch);
    gn_multicast_free(a.mc);
    node_down(&a);
    node_down(&c);
    finish();
}

GN_TEST_MAIN(GN_T(slow_peer_does_not_hold_others), GN_T(group_address_and_refusals), GN_T(gossipsub_five_nodes_exactly_once),
             GN_T(floodsub_five_nodes_exactly_once), GN_T(strict_sign_rejects_unsigned),
             GN_T(strict_no_sign_both_sides), GN_T(bad_option_stops_start),
             GN_T(two_channels_first_closes), GN_T(big_rpc_congestion_clears),
             GN_T(oversize_frame_resets_stream), GN_T(disconnect_reconnect_rejoins),
             GN_T(second_inbound_replaces_first), GN_T(application_validator))
