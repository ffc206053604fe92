/*
 * Tests of the pubsub router core (protocols/pubsub/pubsub_router.c): many
 * in-memory routers wired together through gni_psr_next_out() ->
 * encode -> decode -> gni_psr_rpc_in(), a shared fake clock and
 * deterministic RNGs. Hand-made RPCs from fake peers cover the control
 * paths and the bounds.
 */
#include "pubsub_router.h"

#include "gn_failalloc.h"
#include "gn_test.h"
#include "golemnet/err.h"
#include "golemnet/identity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAXN 50
#define MAXMSG 64
#define TOPIC "t"

/* ---- deterministic RNG ---- */

typedef struct xrng {
    uint64_t s;
    gn_rng rng;
} xrng;

static void xfill(void *ud, uint8_t *out, size_t len)
{
    xrng *x = ud;
    for (size_t i = 0; i < len; i++) {
        x->s ^= x->s << 13;
        x->s ^= x->s >> 7;
        x->s ^= x->s << 17;
        out[i] = (uint8_t)(x->s >> 24);
    }
}

static uint64_t xnext(xrng *x)
{
    uint64_t v;
    xfill(x, (uint8_t *)&v, sizeof v);
    return v;
}

/* ---- the simulated network ---- */

typedef struct node {
    gni_psr *r;
    gn_identity *id;
    gn_peer_id pid;
    xrng rng;
    int deliv[MAXMSG]; /* deliveries of message "m<k>" */
    int px_events, validate_events;
    uint8_t pend_id[GNI_PS_MSG_ID_MAX];
    size_t pend_len;
} node;

typedef struct net {
    node n[MAXN];
    int cnt;
    gni_psr_proto link[MAXN][MAXN]; /* valid when linked[i][j] */
    bool linked[MAXN][MAXN];
    gn_time now;
    /* observations */
    int control_on_floodsub, prunes_with_px, ihave_sent, iwant_sent, rpcs;
    bool drop_msgs_from[MAXN]; /* drop published messages leaving node i */
} net;

static const gni_psr_config *g_check; /* when set, tick() checks mesh bounds */

/* Identities and RNGs derive from @seed (PSR_SEED in the environment adds
 * to it, to explore other runs); a run is reproducible. */
static net *net_new(int cnt, const gni_psr_config *base, uint64_t seed)
{
    g_check = NULL; /* a failed test may have left it set */
    const char *env = getenv("PSR_SEED");
    if (env)
        seed += strtoull(env, NULL, 10) * 1000;
    net *w = calloc(1, sizeof *w);
    CHECK(w);
    w->cnt = cnt;
    w->now = 1000 * GN_S;
    for (int i = 0; i < cnt; i++) {
        node *x = &w->n[i];
        CHECK_OK(gn_identity_from_int_seed((uint32_t)(seed * 100 + (uint64_t)i), &x->id));
        gn_identity_peer_id(x->id, &x->pid);
        x->rng.s = seed * 7919 + (uint64_t)i * 104729 + 1;
        x->rng.rng.fill = xfill;
        x->rng.rng.user_data = &x->rng;
        gni_psr_config c = *base;
        c.identity = x->id;
        c.rng = &x->rng.rng;
        CHECK_OK(gni_psr_new(&c, w->now, &x->r));
    }
    return w;
}

static void net_free(net *w)
{
    for (int i = 0; i < w->cnt; i++) {
        gni_psr_free(w->n[i].r);
        gn_identity_free(w->n[i].id);
    }
    free(w);
}

static void net_link(net *w, int a, int b, gni_psr_proto proto)
{
    if (a == b || w->linked[a][b])
        return;
    w->linked[a][b] = w->linked[b][a] = true;
    w->link[a][b] = w->link[b][a] = proto;
    CHECK_OK(gni_psr_peer_add(w->n[a].r, &w->n[b].pid, proto, true, NULL, 0, w->now));
    CHECK_OK(gni_psr_peer_add(w->n[b].r, &w->n[a].pid, proto, false, NULL, 0, w->now));
}

static int find_node(net *w, const gn_peer_id *p)
{
    for (int i = 0; i < w->cnt; i++)
        if (gn_peer_id_equal(&w->n[i].pid, p))
            return i;
    return -1;
}

static int msg_index(const gni_ps_msg *m)
{
    if (m->data.len < 2 || m->data.data[0] != 'm')
        return -1;
    int k = 0;
    for (size_t i = 1; i < m->data.len; i++) {
        if (m->data.data[i] < '0' || m->data.data[i] > '9' || k > MAXMSG)
            return -1;
        k = k * 10 + (m->data.data[i] - '0');
    }
    return k < MAXMSG ? k : -1;
}

static void drain_events(net *w, int i)
{
    gni_psr_event ev;
    memset(&ev, 0, sizeof ev);
    while (gni_psr_next_event(w->n[i].r, &ev) == 1) {
        if (ev.kind == GNI_PSR_EV_DELIVER) {
            int k = msg_index(&ev.msg);
            if (k >= 0)
                w->n[i].deliv[k]++;
        } else if (ev.kind == GNI_PSR_EV_PX) {
            w->n[i].px_events++;
        } else if (ev.kind == GNI_PSR_EV_VALIDATE) {
            w->n[i].validate_events++;
            memcpy(w->n[i].pend_id, ev.id.data, ev.id.len);
            w->n[i].pend_len = ev.id.len;
        }
        gni_psr_event_fini(&ev);
    }
}

/* Moves every queued RPC to its destination (through the wire codec) until quiet. */
static void pump(net *w)
{
    gni_ps_limits lim = gni_ps_limits_resolve(NULL);
    static uint8_t buf[2 * 1024 * 1024];
    bool moved = true;
    for (int round = 0; moved && round < 10000; round++) {
        moved = false;
        for (int i = 0; i < w->cnt; i++) {
            gn_peer_id to;
            gni_ps_rpc rpc;
            gni_ps_rpc_init(&rpc);
            while (gni_psr_next_out(w->n[i].r, &to, &rpc) == 1) {
                moved = true;
                w->rpcs++;
                int j = find_node(w, &to);
                CHECK(j >= 0 && w->linked[i][j]);
                bool ctl = rpc.ihave_cnt || rpc.iwant_cnt || rpc.graft_cnt || rpc.prune_cnt;
                if (w->link[i][j] == GNI_PSR_FLOODSUB && ctl)
                    w->control_on_floodsub++;
                for (size_t k = 0; k < rpc.prune_cnt; k++)
                    if (rpc.prune[k].peer_cnt)
                        w->prunes_with_px++;
                w->ihave_sent += (int)rpc.ihave_cnt;
                w->iwant_sent += (int)rpc.iwant_cnt;
                if (w->drop_msgs_from[i]) {
                    for (size_t k = 0; k < rpc.msg_cnt; k++)
                        gni_ps_msg_fini(&rpc.msgs[k]);
                    rpc.msg_cnt = 0;
                }
                long len = gni_ps_rpc_encode(&rpc, &lim, buf, sizeof buf);
                CHECK(len > 0);
                gni_ps_splitter sp;
                CHECK_OK(gni_ps_splitter_init(&sp, 0));
                size_t used;
                const uint8_t *body;
                size_t blen;
                CHECK_EQ(gni_ps_splitter_feed(&sp, buf, (size_t)len, &used, &body, &blen, NULL), 1);
                gni_ps_rpc dec;
                gni_ps_rpc_init(&dec);
                CHECK_OK(gni_ps_rpc_decode(body, blen, &lim, &dec, NULL));
                gni_ps_splitter_fini(&sp);
                CHECK_OK(gni_psr_rpc_in(w->n[j].r, &w->n[i].pid, &dec, w->now));
                gni_ps_rpc_fini(&dec);
                gni_ps_rpc_fini(&rpc);
            }
        }
    }
    CHECK(!moved);
    for (int i = 0; i < w->cnt; i++)
        drain_events(w, i);
}

/*
 * Mesh degree right after every router's heartbeat (before the GRAFTs
 * those heartbeats send are delivered: a router accepts GRAFTs from
 * outbound peers beyond D_hi between heartbeats, as the spec allows):
 * at most D_hi each; at least one mesh peer when the topic has peers;
 * on average at least D_lo when every router has plenty of topic peers.
 */
static void check_mesh_bounds(net *w, const gni_psr_config *c)
{
    size_t sum = 0, plenty = 0;
    for (int i = 0; i < w->cnt; i++) {
        size_t m = gni_psr_mesh_peers(w->n[i].r, TOPIC, NULL, 0);
        size_t tp = gni_psr_topic_peers(w->n[i].r, TOPIC, NULL, 0);
        CHECK(m <= c->d_hi);
        CHECK(tp == 0 || m >= 1);
        sum += m;
        plenty += tp >= 2 * c->d_hi;
    }
    if (plenty == (size_t)w->cnt)
        CHECK(sum >= c->d_lo * (size_t)w->cnt);
}

static void tick(net *w, int secs)
{
    for (int s = 0; s < secs; s++) {
        w->now += GN_S;
        for (int i = 0; i < w->cnt; i++)
            CHECK_OK(gni_psr_heartbeat(w->n[i].r, w->now));
        if (g_check)
            check_mesh_bounds(w, g_check);
        pump(w);
    }
}

static void subscribe_all(net *w, const char *topic)
{
    for (int i = 0; i < w->cnt; i++)
        CHECK_OK(gni_psr_subscribe(w->n[i].r, topic, w->now));
    pump(w);
}

static void publish(net *w, int from, int k)
{
    char data[16];
    int n = snprintf(data, sizeof data, "m%d", k);
    CHECK_OK(gni_psr_publish(w->n[from].r, TOPIC, (const uint8_t *)data, (size_t)n, w->now, NULL, NULL));
    pump(w);
}

static gni_psr_config base_config(void)
{
    gni_psr_config c;
    gni_psr_config_default(&c);
    return c;
}

/* ---- tests ---- */

GN_TEST(delivery_random_graph_exactly_once)
{
    gni_psr_config c = base_config();
    c.flood_publish = false; /* make the mesh carry everything */
    net *w = net_new(40, &c, 1);
    xrng g = {.s = 99};
    for (int i = 0; i < w->cnt; i++) {
        net_link(w, i, (i + 1) % w->cnt, GNI_PSR_MESHSUB11);
        for (int k = 0; k < 3; k++)
            net_link(w, i, (int)(xnext(&g) % (uint64_t)w->cnt), k == 0 ? GNI_PSR_MESHSUB10 : GNI_PSR_MESHSUB11);
    }
    subscribe_all(w, TOPIC);
    g_check = &c;
    tick(w, 5);
    g_check = NULL;
    for (int k = 0; k < 20; k++)
        publish(w, (int)(xnext(&g) % (uint64_t)w->cnt), k);
    for (int i = 0; i < w->cnt; i++)
        for (int k = 0; k < 20; k++)
            CHECK_EQ(w->n[i].deliv[k], 1);
    gni_psr_topic_stats st;
    CHECK_OK(gni_psr_get_topic_stats(w->n[0].r, TOPIC, &st));
    CHECK_EQ(st.delivered, 20);
    g_check = &c;
    tick(w, 3);
    g_check = NULL;
    /* IHAVE gossip flowed to non-mesh peers; nothing delivered twice */
    CHECK(w->ihave_sent > 0);
    for (int i = 0; i < w->cnt; i++)
        for (int k = 0; k < 20; k++)
            CHECK_EQ(w->n[i].deliv[k], 1);
    net_free(w);
}

GN_TEST(delivery_line_and_ring)
{
    gni_psr_config c = base_config();
    c.flood_publish = false;
    net *w = net_new(20, &c, 2);
    for (int i = 0; i + 1 < w->cnt; i++)
        net_link(w, i, i + 1, GNI_PSR_MESHSUB11);
    subscribe_all(w, TOPIC);
    tick(w, 2);
    publish(w, 0, 0);
    publish(w, 19, 1);
    for (int i = 0; i < w->cnt; i++) {
        CHECK_EQ(w->n[i].deliv[0], 1);
        CHECK_EQ(w->n[i].deliv[1], 1);
        size_t m = gni_psr_mesh_peers(w->n[i].r, TOPIC, NULL, 0);
        CHECK_EQ(m, (i == 0 || i == 19) ? 1 : 2);
    }
    net_link(w, 19, 0, GNI_PSR_MESHSUB11); /* close the ring */
    tick(w, 2);
    publish(w, 10, 2);
    for (int i = 0; i < w->cnt; i++)
        CHECK_EQ(w->n[i].deliv[2], 1);
    net_free(w);
}

GN_TEST(mesh_degree_bounds_dense)
{
    gni_psr_config c = base_config();
    net *w = net_new(30, &c, 3);
    for (int i = 0; i < w->cnt; i++)
        for (int j = i + 1; j < w->cnt; j++)
            net_link(w, i, j, GNI_PSR_MESHSUB11);
    subscribe_all(w, TOPIC);
    /* subscribing grafted up to D each, and incoming GRAFTs may exceed D_hi until a heartbeat */
    g_check = &c;
    tick(w, 5);
    g_check = NULL;
    CHECK(w->prunes_with_px > 0); /* oversubscribed meshes pruned with peer exchange */
    publish(w, 5, 0);
    for (int i = 0; i < w->cnt; i++)
        CHECK_EQ(w->n[i].deliv[0], 1);
    net_free(w);
}

GN_TEST(floodsub_peers_mixed_in)
{
    gni_psr_config c = base_config();
    c.flood_publish = false;
    net *w = net_new(24, &c, 4);
    /* nodes 0..15 speak gossipsub among themselves; 16..23 are floodsub-only nodes */
    for (int i = 0; i < 16; i++) {
        net_link(w, i, (i + 1) % 16, GNI_PSR_MESHSUB11);
        net_link(w, i, (i + 5) % 16, GNI_PSR_MESHSUB11);
    }
    for (int i = 16; i < 24; i++) {
        net_link(w, i, i - 16, GNI_PSR_FLOODSUB);
        if (i > 16)
            net_link(w, i, i - 1, GNI_PSR_FLOODSUB);
    }
    subscribe_all(w, TOPIC);
    tick(w, 3);
    publish(w, 20, 0); /* from a floodsub node */
    publish(w, 3, 1);  /* from a gossipsub node */
    tick(w, 3);
    for (int i = 0; i < w->cnt; i++) {
        CHECK_EQ(w->n[i].deliv[0], 1);
        CHECK_EQ(w->n[i].deliv[1], 1);
    }
    CHECK_EQ(w->control_on_floodsub, 0);
    CHECK_EQ(gni_psr_mesh_peers(w->n[20].r, TOPIC, NULL, 0), 0);
    net_free(w);
}

GN_TEST(ihave_iwant_recovers_missed_message)
{
    gni_psr_config c = base_config();
    c.flood_publish = false;
    c.d = 1;
    c.d_lo = 1;
    c.d_hi = 1;
    c.d_score = 0;
    c.d_out = 0;
    net *w = net_new(3, &c, 5);
    net_link(w, 0, 1, GNI_PSR_MESHSUB11);
    net_link(w, 0, 2, GNI_PSR_MESHSUB11);
    subscribe_all(w, TOPIC);
    tick(w, 2);
    CHECK_EQ(gni_psr_mesh_peers(w->n[0].r, TOPIC, NULL, 0), 1);
    publish(w, 0, 0);
    /* one of 1, 2 is in 0's mesh and got it; the other has not yet */
    int got = w->n[1].deliv[0] + w->n[2].deliv[0];
    CHECK_EQ(got, 1);
    tick(w, 1); /* heartbeat: IHAVE to the non-mesh peer, IWANT back, message */
    CHECK_EQ(w->n[1].deliv[0], 1);
    CHECK_EQ(w->n[2].deliv[0], 1);
    CHECK(w->iwant_sent >= 1);
    gni_psr_stats st;
    gni_psr_get_stats(w->n[0].r, &st);
    CHECK_EQ(st.iwant_served, 1);
    net_free(w);
}

GN_TEST(fanout_then_subscribe)
{
    gni_psr_config c = base_config();
    c.flood_publish = false;
    net *w = net_new(12, &c, 6);
    for (int i = 1; i < w->cnt; i++)
        net_link(w, 0, i, GNI_PSR_MESHSUB11);
    for (int i = 1; i < w->cnt; i++)
        CHECK_OK(gni_psr_subscribe(w->n[i].r, TOPIC, w->now));
    pump(w);
    tick(w, 2);
    publish(w, 0, 0); /* node 0 is not subscribed: fanout of D peers */
    int got = 0;
    for (int i = 1; i < w->cnt; i++)
        got += w->n[i].deliv[0];
    CHECK_EQ(got, (int)c.d); /* no links among 1..11: only the fanout got it */
    CHECK_EQ(w->n[0].deliv[0], 0);
    gn_peer_id fan[16];
    CHECK_OK(gni_psr_subscribe(w->n[0].r, TOPIC, w->now));
    pump(w);
    size_t m = gni_psr_mesh_peers(w->n[0].r, TOPIC, fan, 16);
    CHECK_EQ(m, c.d);
    /* the mesh is the former fanout: exactly the peers that got message 0 */
    for (size_t k = 0; k < m; k++)
        CHECK_EQ(w->n[find_node(w, &fan[k])].deliv[0], 1);
    publish(w, 0, 1);
    CHECK_EQ(w->n[0].deliv[1], 1);
    net_free(w);
}

/* ---- hand-made RPCs from fake peers ---- */

typedef struct fake {
    gn_identity *id;
    gn_peer_id pid;
} fake;

static void fake_new(fake *f)
{
    CHECK_OK(gn_identity_generate(&f->id));
    gn_identity_peer_id(f->id, &f->pid);
}

static void fake_sub(gni_psr *r, fake *f, const char *topic, gn_time now)
{
    gni_ps_rpc rpc;
    gni_ps_rpc_init(&rpc);
    CHECK_OK(gni_ps_rpc_add_sub(&rpc, true, topic));
    CHECK_OK(gni_psr_rpc_in(r, &f->pid, &rpc, now));
    gni_ps_rpc_fini(&rpc);
}

static void fake_msg(gni_psr *r, fake *f, const char *data, bool sign, uint64_t seq, gn_time now)
{
    gni_ps_rpc rpc;
    gni_ps_rpc_init(&rpc);
    gni_ps_msg m;
    gni_ps_msg_init(&m);
    CHECK_OK(gni_ps_msg_set(&m, TOPIC, (const uint8_t *)data, strlen(data), &seq));
    if (sign) {
        CHECK_OK(gni_ps_msg_sign(&m, f->id));
    } else {
        m.has_from = true;
        m.from.data = malloc(f->pid.len);
        memcpy(m.from.data, f->pid.bytes, f->pid.len);
        m.from.len = f->pid.len;
    }
    CHECK_OK(gni_ps_rpc_add_msg(&rpc, &m));
    CHECK_OK(gni_psr_rpc_in(r, &f->pid, &rpc, now));
    gni_ps_rpc_fini(&rpc);
}

static void fake_graft(gni_psr *r, fake *f, gn_time now)
{
    gni_ps_rpc rpc;
    gni_ps_rpc_init(&rpc);
    CHECK_OK(gni_ps_rpc_add_graft(&rpc, TOPIC));
    CHECK_OK(gni_psr_rpc_in(r, &f->pid, &rpc, now));
    gni_ps_rpc_fini(&rpc);
}

static void fake_prune(gni_psr *r, fake *f, fake *px, size_t npx, gn_time now)
{
    gni_ps_rpc rpc;
    gni_ps_rpc_init(&rpc);
    gni_ps_prune *p;
    CHECK_OK(gni_ps_rpc_add_prune(&rpc, TOPIC, true, 60, &p));
    for (size_t i = 0; i < npx; i++)
        CHECK_OK(gni_ps_prune_add_px(p, px[i].pid.bytes, px[i].pid.len, (const uint8_t *)"rec", 3));
    CHECK_OK(gni_psr_rpc_in(r, &f->pid, &rpc, now));
    gni_ps_rpc_fini(&rpc);
}

/* Drains @r's outputs; counts PRUNEs, GRAFTs, messages, IWANT ids to @to. */
typedef struct outs {
    int prunes, grafts, msgs, iwant_ids, ihave_ids, subs;
} outs;

static outs drain_out(gni_psr *r, const gn_peer_id *to)
{
    outs o = {0};
    gn_peer_id p;
    gni_ps_rpc rpc;
    gni_ps_rpc_init(&rpc);
    while (gni_psr_next_out(r, &p, &rpc) == 1) {
        if (!to || gn_peer_id_equal(&p, to)) {
            o.prunes += (int)rpc.prune_cnt;
            o.grafts += (int)rpc.graft_cnt;
            o.msgs += (int)rpc.msg_cnt;
            o.subs += (int)rpc.sub_cnt;
            for (size_t i = 0; i < rpc.iwant_cnt; i++)
                o.iwant_ids += (int)rpc.iwant[i].id_cnt;
            for (size_t i = 0; i < rpc.ihave_cnt; i++)
                o.ihave_ids += (int)rpc.ihave[i].id_cnt;
        }
        gni_ps_rpc_fini(&rpc);
    }
    return o;
}

static int count_delivers(gni_psr *r)
{
    int n = 0;
    gni_psr_event ev;
    while (gni_psr_next_event(r, &ev) == 1) {
        n += ev.kind == GNI_PSR_EV_DELIVER;
        gni_psr_event_fini(&ev);
    }
    return n;
}

static xrng g_rng = {.s = 12345};

static gni_psr *one_router(gni_psr_config *c, gn_identity **id, gn_time now)
{
    CHECK_OK(gn_identity_generate(id));
    g_rng.rng.fill = xfill;
    g_rng.rng.user_data = &g_rng;
    c->identity = *id;
    c->rng = &g_rng.rng;
    gni_psr *r;
    CHECK_OK(gni_psr_new(c, now, &r));
    CHECK_OK(gni_psr_subscribe(r, TOPIC, now));
    return r;
}

GN_TEST(prune_backoff_respected_and_regraft_penalised)
{
    gni_psr_config c = base_config();
    gn_identity *id;
    gn_time now = 50 * GN_S;
    gni_psr *r = one_router(&c, &id, now);
    fake b;
    fake_new(&b);
    CHECK_OK(gni_psr_peer_add(r, &b.pid, GNI_PSR_MESHSUB11, false, NULL, 0, now));
    fake_sub(r, &b, TOPIC, now);
    fake_graft(r, &b, now);
    CHECK_EQ(gni_psr_mesh_peers(r, TOPIC, NULL, 0), 1);
    drain_out(r, NULL);
    fake_prune(r, &b, NULL, 0, now); /* b leaves, asks for 60 s backoff */
    CHECK_EQ(gni_psr_mesh_peers(r, TOPIC, NULL, 0), 0);
    /* heartbeats within the backoff do not graft b back */
    for (int s = 1; s <= 5; s++)
        CHECK_OK(gni_psr_heartbeat(r, now + (gn_time)s * GN_S));
    outs o = drain_out(r, &b.pid);
    CHECK_EQ(o.grafts, 0);
    CHECK_EQ(gni_psr_mesh_peers(r, TOPIC, NULL, 0), 0);
    /* b re-grafts during the backoff: refused with PRUNE, P7 penalty */
    now += 6 * GN_S;
    double s0, s1;
    CHECK_OK(gni_psr_peer_score(r, &b.pid, now, &s0));
    fake_graft(r, &b, now);
    CHECK_EQ(gni_psr_mesh_peers(r, TOPIC, NULL, 0), 0);
    o = drain_out(r, &b.pid);
    CHECK_EQ(o.prunes, 1);
    CHECK_OK(gni_psr_peer_score(r, &b.pid, now, &s1));
    CHECK(s1 < s0 && s1 < 0);
    gni_psr_stats st;
    gni_psr_get_stats(r, &st);
    CHECK_EQ(st.backoff_violations, 1);
    /* after the backoff (and the penalty decayed) heartbeats graft b again */
    now += 120 * GN_S;
    for (int s = 0; s < 60; s++)
        CHECK_OK(gni_psr_heartbeat(r, now + (gn_time)s * GN_S));
    o = drain_out(r, &b.pid);
    CHECK_EQ(o.grafts, 1);
    CHECK_EQ(gni_psr_mesh_peers(r, TOPIC, NULL, 0), 1);
    gni_psr_free(r);
    gn_identity_free(id);
    gn_identity_free(b.id);
}

static double app_score(void *ud, const gn_peer_id *p)
{
    const gn_peer_id *good = ud;
    return gn_peer_id_equal(p, good) ? 20 : 0;
}

GN_TEST(px_accepted_only_from_well_scored_peers)
{
    gni_psr_config c = base_config();
    fake b, d, cands[3];
    fake_new(&b);
    fake_new(&d);
    for (int i = 0; i < 3; i++)
        fake_new(&cands[i]);
    c.score.app_specific = app_score;
    c.score.app_specific_user_data = &b.pid;
    c.score.app_specific_weight = 1;
    gn_identity *id;
    gn_time now = 10 * GN_S;
    gni_psr *r = one_router(&c, &id, now);
    CHECK_OK(gni_psr_peer_add(r, &b.pid, GNI_PSR_MESHSUB11, true, NULL, 0, now));
    CHECK_OK(gni_psr_peer_add(r, &d.pid, GNI_PSR_MESHSUB11, true, NULL, 0, now));
    fake_sub(r, &b, TOPIC, now);
    fake_sub(r, &d, TOPIC, now);
    fake_prune(r, &d, cands, 3, now); /* score 0 < accept_px_threshold 10 */
    fake_prune(r, &b, cands, 3, now); /* score 20 */
    int px = 0, from_b = 0;
    gni_psr_event ev;
    while (gni_psr_next_event(r, &ev) == 1) {
        if (ev.kind == GNI_PSR_EV_PX) {
            px++;
            from_b += gn_peer_id_equal(&ev.from, &b.pid);
            CHECK_EQ(ev.px.spr.len, 3);
            CHECK_STR(ev.msg.topic, TOPIC);
        }
        gni_psr_event_fini(&ev);
    }
    CHECK_EQ(px, 3);
    CHECK_EQ(from_b, 3);
    gni_psr_free(r);
    gn_identity_free(id);
    gn_identity_free(b.id);
    gn_identity_free(d.id);
    for (int i = 0; i < 3; i++)
        gn_identity_free(cands[i].id);
}

GN_TEST(strict_sign_rejects_unsigned_then_graylists)
{
    gni_psr_config c = base_config();
    gn_identity *id;
    gn_time now = 10 * GN_S;
    gni_psr *r = one_router(&c, &id, now);
    fake b;
    fake_new(&b);
    CHECK_OK(gni_psr_peer_add(r, &b.pid, GNI_PSR_MESHSUB11, false, NULL, 0, now));
    fake_sub(r, &b, TOPIC, now);
    fake_msg(r, &b, "m0", false, 1, now); /* unsigned under StrictSign */
    CHECK_EQ(count_delivers(r), 0);
    gni_psr_topic_stats ts;
    CHECK_OK(gni_psr_get_topic_stats(r, TOPIC, &ts));
    CHECK_EQ(ts.rejected, 1);
    double s;
    CHECK_OK(gni_psr_peer_score(r, &b.pid, now, &s));
    CHECK(s <= c.score.graylist_threshold); /* P4: 1^2 * -100 */
    fake_msg(r, &b, "m1", true, 2, now); /* a valid one, but b is graylisted */
    CHECK_EQ(count_delivers(r), 0);
    gni_psr_stats st;
    gni_psr_get_stats(r, &st);
    CHECK_EQ(st.graylisted_rpcs, 1);
    /* the P4 counter decays; b is heard again later */
    for (int k = 1; k <= 10; k++)
        CHECK_OK(gni_psr_heartbeat(r, now + (gn_time)k * GN_S));
    now += 11 * GN_S;
    fake_msg(r, &b, "m2", true, 3, now);
    CHECK_EQ(count_delivers(r), 1);
    gni_psr_free(r);
    gn_identity_free(id);
    gn_identity_free(b.id);
}

static gni_psr_verdict validator(void *ud, const char *topic, const gni_ps_msg *m, const gn_peer_id *from)
{
    (void)ud;
    (void)topic;
    (void)from;
    if (m->data.len == 3 && memcmp(m->data.data, "bad", 3) == 0)
        return GNI_PSR_REJECT;
    if (m->data.len == 3 && memcmp(m->data.data, "ign", 3) == 0)
        return GNI_PSR_IGNORE;
    if (m->data.len == 5 && memcmp(m->data.data, "defer", 5) == 0)
        return GNI_PSR_DEFER;
    return GNI_PSR_ACCEPT;
}

GN_TEST(validation_verdicts_and_graylist)
{
    gni_psr_config c = base_config();
    c.validate = validator;
    gn_identity *id;
    gn_time now = 10 * GN_S;
    gni_psr *r = one_router(&c, &id, now);
    fake b, d;
    fake_new(&b);
    fake_new(&d);
    CHECK_OK(gni_psr_peer_add(r, &b.pid, GNI_PSR_MESHSUB11, false, NULL, 0, now));
    CHECK_OK(gni_psr_peer_add(r, &d.pid, GNI_PSR_MESHSUB11, false, NULL, 0, now));
    fake_sub(r, &b, TOPIC, now);
    fake_sub(r, &d, TOPIC, now);
    fake_graft(r, &d, now);
    fake_graft(r, &b, now);
    CHECK_EQ(gni_psr_mesh_peers(r, TOPIC, NULL, 0), 2);
    drain_out(r, NULL);
    fake_msg(r, &b, "ok", true, 1, now);
    CHECK_EQ(count_delivers(r), 1);
    outs o = drain_out(r, NULL); /* forwarded to the mesh peer d, not back to b */
    CHECK_EQ(o.msgs, 1);
    fake_msg(r, &b, "ign", true, 2, now);
    CHECK_EQ(count_delivers(r), 0);
    double s;
    CHECK_OK(gni_psr_peer_score(r, &b.pid, now, &s));
    CHECK(s >= 0); /* ignore costs nothing */
    /* deferred: a VALIDATE event, then ACCEPT delivers and forwards */
    fake_msg(r, &b, "defer", true, 3, now);
    gni_psr_event ev;
    CHECK_EQ(gni_psr_next_event(r, &ev), 1);
    CHECK_EQ(ev.kind, GNI_PSR_EV_VALIDATE);
    CHECK_OK(gni_psr_validation_result(r, ev.id.data, ev.id.len, GNI_PSR_ACCEPT, now));
    CHECK_EQ(gni_psr_validation_result(r, ev.id.data, ev.id.len, GNI_PSR_ACCEPT, now), GN_ENOTFOUND);
    gni_psr_event_fini(&ev);
    CHECK_EQ(count_delivers(r), 1);
    o = drain_out(r, &d.pid);
    CHECK_EQ(o.msgs, 1);
    /* reject: P4, score below the graylist threshold, later RPCs ignored */
    fake_msg(r, &b, "bad", true, 4, now);
    CHECK_OK(gni_psr_peer_score(r, &b.pid, now, &s));
    CHECK(s < c.score.graylist_threshold);
    fake_msg(r, &b, "ok2", true, 5, now);
    CHECK_EQ(count_delivers(r), 0);
    gni_psr_topic_stats ts;
    CHECK_OK(gni_psr_get_topic_stats(r, TOPIC, &ts));
    CHECK_EQ(ts.rejected, 1);
    CHECK_EQ(ts.ignored, 1);
    CHECK_EQ(ts.delivered, 2);
    gni_psr_stats st;
    gni_psr_get_stats(r, &st);
    CHECK_EQ(st.graylisted_rpcs, 1);
    /* a deferred validation that is never answered times out as IGNORE */
    fake_msg(r, &d, "defer", true, 6, now);
    gni_psr_get_stats(r, &st);
    CHECK_EQ(st.pending_validations, 1);
    CHECK_OK(gni_psr_heartbeat(r, now + 31 * GN_S));
    gni_psr_get_stats(r, &st);
    CHECK_EQ(st.pending_validations, 0);
    gni_psr_free(r);
    gn_identity_free(id);
    gn_identity_free(b.id);
    gn_identity_free(d.id);
}

GN_TEST(bounds_ihave_iwant_topics)
{
    gni_psr_config c = base_config();
    c.max_ihave_len = 100;
    c.max_ihave_msgs = 2;
    c.max_topics_per_peer = 50;
    gn_identity *id;
    gn_time now = 10 * GN_S;
    gni_psr *r = one_router(&c, &id, now);
    fake b;
    fake_new(&b);
    CHECK_OK(gni_psr_peer_add(r, &b.pid, GNI_PSR_MESHSUB11, false, NULL, 0, now));
    fake_sub(r, &b, TOPIC, now);
    drain_out(r, NULL);
    /* an IHAVE of 3000 unknown ids: at most 100 asked for in this heartbeat */
    gni_ps_rpc rpc;
    gni_ps_rpc_init(&rpc);
    static uint8_t idb[3000][8];
    const uint8_t *ids[3000];
    size_t lens[3000];
    for (int i = 0; i < 3000; i++) {
        memcpy(idb[i], &i, sizeof i);
        memset(idb[i] + 4, 0xab, 4);
        ids[i] = idb[i];
        lens[i] = 8;
    }
    CHECK_OK(gni_ps_rpc_add_ihave(&rpc, TOPIC, ids, lens, 3000));
    for (int k = 0; k < 4; k++)
        CHECK_OK(gni_psr_rpc_in(r, &b.pid, &rpc, now));
    gni_ps_rpc_fini(&rpc);
    outs o = drain_out(r, &b.pid);
    CHECK_EQ(o.iwant_ids, 100);
    gni_psr_stats st;
    gni_psr_get_stats(r, &st);
    CHECK(st.ihave_ignored >= 2900);
    /* IWANT for an own message: served at most gossip_retransmission (3) times */
    uint8_t mid[GNI_PS_MSG_ID_MAX];
    size_t mlen;
    CHECK_OK(gni_psr_publish(r, TOPIC, (const uint8_t *)"x", 1, now, mid, &mlen));
    drain_out(r, NULL);
    const uint8_t *mp = mid;
    for (int k = 0; k < 5; k++) {
        gni_ps_rpc_init(&rpc);
        CHECK_OK(gni_ps_rpc_add_iwant(&rpc, &mp, &mlen, 1));
        CHECK_OK(gni_psr_rpc_in(r, &b.pid, &rpc, now));
        gni_ps_rpc_fini(&rpc);
    }
    o = drain_out(r, &b.pid);
    CHECK_EQ(o.msgs, 3);
    /* topics per peer */
    gni_ps_rpc_init(&rpc);
    for (int i = 0; i < 200; i++) {
        char t[16];
        snprintf(t, sizeof t, "x%d", i);
        CHECK_OK(gni_ps_rpc_add_sub(&rpc, true, t));
    }
    CHECK_OK(gni_psr_rpc_in(r, &b.pid, &rpc, now));
    gni_ps_rpc_fini(&rpc);
    gni_psr_get_stats(r, &st);
    CHECK_EQ(st.subs_ignored, 200 - 49); /* TOPIC + 49 new ones */
    CHECK_EQ(gni_psr_topic_peers(r, "x48", NULL, 0), 1);
    CHECK_EQ(gni_psr_topic_peers(r, "x49", NULL, 0), 0);
    /* broken IWANT promise: P7 after the follow-up time */
    CHECK_OK(gni_psr_heartbeat(r, now + 4 * GN_S));
    gni_psr_get_stats(r, &st);
    CHECK_EQ(st.broken_promises, 1);
    gni_psr_free(r);
    gn_identity_free(id);
    gn_identity_free(b.id);
}

GN_TEST(congested_peer_leaves_mesh)
{
    gni_psr_config c = base_config();
    gn_identity *id;
    gn_time now = 10 * GN_S;
    gni_psr *r = one_router(&c, &id, now);
    fake b;
    fake_new(&b);
    CHECK_OK(gni_psr_peer_add(r, &b.pid, GNI_PSR_MESHSUB11, false, NULL, 0, now));
    fake_sub(r, &b, TOPIC, now);
    fake_graft(r, &b, now);
    CHECK_EQ(gni_psr_mesh_peers(r, TOPIC, NULL, 0), 1);
    drain_out(r, NULL);
    CHECK_OK(gni_psr_peer_congested(r, &b.pid, true, now));
    CHECK_EQ(gni_psr_mesh_peers(r, TOPIC, NULL, 0), 0);
    CHECK_OK(gni_psr_publish(r, TOPIC, (const uint8_t *)"y", 1, now, NULL, NULL));
    outs o = drain_out(r, &b.pid);
    CHECK_EQ(o.msgs, 0); /* held: next_out skips a congested peer */
    CHECK_OK(gni_psr_peer_congested(r, &b.pid, false, now));
    o = drain_out(r, &b.pid);
    CHECK_EQ(o.prunes, 1);
    CHECK_EQ(o.msgs, 0);
    gni_psr_stats st;
    gni_psr_get_stats(r, &st);
    CHECK_EQ(st.out_dropped, 1);
    /* own queue bound: a peer that never drains is cut off, memory stays bounded */
    gni_psr_free(r);
    gn_identity_free(id);
    c = base_config();
    c.max_out_bytes_per_peer = 64 * 1024;
    r = one_router(&c, &id, now);
    CHECK_OK(gni_psr_peer_add(r, &b.pid, GNI_PSR_MESHSUB11, false, NULL, 0, now));
    fake_sub(r, &b, TOPIC, now);
    static uint8_t big[4096];
    for (int k = 0; k < 100; k++)
        CHECK_OK(gni_psr_publish(r, TOPIC, big, sizeof big, now + (gn_time)k, NULL, NULL));
    gni_psr_get_stats(r, &st);
    CHECK(st.out_dropped >= 80);
    o = drain_out(r, &b.pid);
    CHECK(o.msgs <= 16);
    gni_psr_free(r);
    gn_identity_free(id);
    gn_identity_free(b.id);
}

GN_TEST(outbound_quota_kept_when_pruning)
{
    gni_psr_config c = base_config();
    gn_identity *id;
    gn_time now = 10 * GN_S;
    gni_psr *r = one_router(&c, &id, now);
    fake f[20];
    for (int i = 0; i < 20; i++) {
        CHECK_OK(gn_identity_from_int_seed((uint32_t)(700 + i), &f[i].id));
        gn_identity_peer_id(f[i].id, &f[i].pid);
        /* the last two are outbound: accepted above D_hi, kept by the D_out quota */
        CHECK_OK(gni_psr_peer_add(r, &f[i].pid, GNI_PSR_MESHSUB11, i >= 18, NULL, 0, now));
        fake_sub(r, &f[i], TOPIC, now);
        fake_graft(r, &f[i], now);
    }
    CHECK_EQ(gni_psr_mesh_peers(r, TOPIC, NULL, 0), c.d_hi + 2);
    gni_psr_stats st;
    gni_psr_get_stats(r, &st);
    CHECK_EQ(st.graft_refused, 20 - c.d_hi - 2);
    drain_out(r, NULL);
    CHECK_OK(gni_psr_heartbeat(r, now + GN_S));
    gn_peer_id mesh[16];
    size_t m = gni_psr_mesh_peers(r, TOPIC, mesh, 16);
    CHECK_EQ(m, c.d);
    int outbound = 0;
    for (size_t k = 0; k < m; k++)
        outbound += gn_peer_id_equal(&mesh[k], &f[18].pid) + gn_peer_id_equal(&mesh[k], &f[19].pid);
    CHECK_EQ(outbound, 2);
    gni_psr_free(r);
    gn_identity_free(id);
    for (int i = 0; i < 20; i++)
        gn_identity_free(f[i].id);
}

GN_TEST(score_p3_p3b_p6_and_retention)
{
    gni_psr_config c = base_config();
    c.score.default_topic.mesh_message_deliveries_weight = -1;
    c.score.default_topic.mesh_message_deliveries_threshold = 5;
    c.score.default_topic.mesh_message_deliveries_activation = 2 * GN_S;
    c.score.default_topic.mesh_failure_penalty_weight = -1;
    c.score.default_topic.mesh_failure_penalty_decay = 0.99;
    c.score.default_topic.time_in_mesh_weight = 0;
    gn_identity *id;
    gn_time now = 10 * GN_S;
    gni_psr *r = one_router(&c, &id, now);
    fake b;
    CHECK_OK(gn_identity_from_int_seed(800, &b.id));
    gn_identity_peer_id(b.id, &b.pid);
    CHECK_OK(gni_psr_peer_add(r, &b.pid, GNI_PSR_MESHSUB11, true, NULL, 0, now));
    fake_sub(r, &b, TOPIC, now);
    fake_graft(r, &b, now);
    double s;
    CHECK_OK(gni_psr_heartbeat(r, now + GN_S));
    CHECK_OK(gni_psr_peer_score(r, &b.pid, now + GN_S, &s));
    CHECK(s == 0); /* P3 not active yet */
    /* two deliveries, then activation: deficit 3 -> -9 */
    fake_msg(r, &b, "m0", true, 1, now + GN_S);
    fake_msg(r, &b, "m1", true, 2, now + GN_S);
    for (int k = 2; k <= 3; k++)
        CHECK_OK(gni_psr_heartbeat(r, now + (gn_time)k * GN_S));
    CHECK_OK(gni_psr_peer_score(r, &b.pid, now + 3 * GN_S, &s));
    /* P2 (decayed first deliveries) offsets part of it; P3 makes it negative */
    CHECK(s < 0);
    /* b leaves the mesh: the deficit becomes the sticky P3b penalty */
    fake_prune(r, &b, NULL, 0, now + 3 * GN_S);
    double s2;
    CHECK_OK(gni_psr_peer_score(r, &b.pid, now + 3 * GN_S, &s2));
    CHECK(s2 < 0 && s2 < s + 1e-9 && s2 > s - 30);
    /* disconnect and reconnect within retain_score: the penalty is still there */
    CHECK_OK(gni_psr_peer_remove(r, &b.pid, now + 4 * GN_S));
    CHECK_OK(gni_psr_peer_add(r, &b.pid, GNI_PSR_MESHSUB11, true, NULL, 0, now + 5 * GN_S));
    CHECK_OK(gni_psr_peer_score(r, &b.pid, now + 5 * GN_S, &s));
    CHECK(s < 0);
    gni_psr_free(r);
    gn_identity_free(id);
    gn_identity_free(b.id);

    /* P6: 12 peers on one IP, threshold 10, weight -10 -> (12-10)^2 * -10 = -40 */
    c = base_config();
    r = one_router(&c, &id, now);
    fake f[12];
    uint8_t ip[4] = {192, 0, 2, 7};
    for (int i = 0; i < 12; i++) {
        CHECK_OK(gn_identity_from_int_seed((uint32_t)(900 + i), &f[i].id));
        gn_identity_peer_id(f[i].id, &f[i].pid);
        CHECK_OK(gni_psr_peer_add(r, &f[i].pid, GNI_PSR_MESHSUB11, false, ip, 4, now));
    }
    CHECK_OK(gni_psr_peer_score(r, &f[3].pid, now, &s));
    CHECK(s > -40.001 && s < -39.999);
    CHECK_OK(gni_psr_peer_remove(r, &f[0].pid, now));
    CHECK_OK(gni_psr_peer_remove(r, &f[1].pid, now));
    CHECK_OK(gni_psr_peer_score(r, &f[3].pid, now, &s));
    CHECK(s == 0);
    gni_psr_free(r);
    gn_identity_free(id);
    for (int i = 0; i < 12; i++)
        gn_identity_free(f[i].id);
}

GN_TEST(scale_50_routers)
{
    gni_psr_config c = base_config();
    net *w = net_new(50, &c, 9);
    xrng g = {.s = 4242};
    for (int i = 0; i < w->cnt; i++)
        for (int k = 0; k < 4; k++)
            net_link(w, i, (int)(xnext(&g) % (uint64_t)w->cnt), GNI_PSR_MESHSUB11);
    for (int i = 0; i < w->cnt; i++)
        net_link(w, i, (i + 1) % w->cnt, GNI_PSR_MESHSUB11);
    subscribe_all(w, TOPIC);
    tick(w, 3);
    int rpcs0 = w->rpcs;
    clock_t t0 = clock();
    for (int k = 0; k < MAXMSG; k++)
        publish(w, (int)(xnext(&g) % (uint64_t)w->cnt), k);
    tick(w, 2);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    for (int i = 0; i < w->cnt; i++)
        for (int k = 0; k < MAXMSG; k++)
            CHECK_EQ(w->n[i].deliv[k], 1);
    uint64_t dups = 0;
    for (int i = 0; i < w->cnt; i++) {
        gni_psr_topic_stats st;
        CHECK_OK(gni_psr_get_topic_stats(w->n[i].r, TOPIC, &st));
        dups += st.duplicates;
    }
    printf("# 50 routers, %d messages (flood publish): %d RPCs, %.2f duplicates per delivery, "
           "%.1f ms CPU (codec included)\n",
           MAXMSG, w->rpcs - rpcs0, (double)dups / (50.0 * MAXMSG), secs * 1000);
    net_free(w);
}

GN_TEST(peers_cannot_fill_the_topic_table_for_us)
{
    gni_psr_config c = base_config();
    c.max_topics = 10;
    gn_identity *id;
    gn_time now = 10 * GN_S;
    gni_psr *r = one_router(&c, &id, now);
    fake b;
    CHECK_OK(gn_identity_from_int_seed(950, &b.id));
    gn_identity_peer_id(b.id, &b.pid);
    CHECK_OK(gni_psr_peer_add(r, &b.pid, GNI_PSR_MESHSUB11, false, NULL, 0, now));
    gni_ps_rpc rpc;
    gni_ps_rpc_init(&rpc);
    for (int i = 0; i < 30; i++) {
        char t[16];
        snprintf(t, sizeof t, "junk%d", i);
        CHECK_OK(gni_ps_rpc_add_sub(&rpc, true, t));
    }
    CHECK_OK(gni_psr_rpc_in(r, &b.pid, &rpc, now));
    gni_ps_rpc_fini(&rpc);
    gni_psr_stats st;
    gni_psr_get_stats(r, &st);
    CHECK_EQ(st.topics, 10);
    CHECK_EQ(st.subs_ignored, 21); /* TOPIC (ours) + 9 of b's */
    CHECK_OK(gni_psr_subscribe(r, "mine", now));
    CHECK_OK(gni_psr_publish(r, "elsewhere", (const uint8_t *)"x", 1, now, NULL, NULL));
    CHECK(gni_psr_subscribed(r, "mine"));
    gni_psr_free(r);
    gn_identity_free(id);
    gn_identity_free(b.id);
}

/* One pass of a scenario touching most paths; every call may fail. */
static size_t fa_scenario(gn_identity *self, fake *f, int nf)
{
    gni_psr_config c = base_config();
    c.identity = self;
    c.validate = validator;
    g_rng.s = 777;
    g_rng.rng.fill = xfill;
    g_rng.rng.user_data = &g_rng;
    c.rng = &g_rng.rng;
    gn_time now = 5 * GN_S;
    gni_psr *r;
    if (gni_psr_new(&c, now, &r) != 0)
        return 0;
    (void)gni_psr_subscribe(r, TOPIC, now);
    for (int i = 0; i < nf; i++) {
        uint8_t ip[4] = {10, 0, 0, 1};
        (void)gni_psr_peer_add(r, &f[i].pid, (gni_psr_proto)(i % 3), i & 1, ip, 4, now);
        gni_ps_rpc rpc;
        gni_ps_rpc_init(&rpc);
        if (gni_ps_rpc_add_sub(&rpc, true, TOPIC) == 0 && gni_ps_rpc_add_graft(&rpc, TOPIC) == 0)
            (void)gni_psr_rpc_in(r, &f[i].pid, &rpc, now);
        gni_ps_rpc_fini(&rpc);
    }
    (void)gni_psr_publish(r, TOPIC, (const uint8_t *)"own", 3, now, NULL, NULL);
    (void)gni_psr_publish(r, "other", (const uint8_t *)"fan", 3, now, NULL, NULL);
    for (int i = 0; i < nf; i++) {
        gni_ps_rpc rpc;
        gni_ps_rpc_init(&rpc);
        gni_ps_msg m;
        gni_ps_msg_init(&m);
        uint64_t seq = (uint64_t)i + 1;
        const char *data = i == 0 ? "defer" : i == 1 ? "bad" : "ok";
        if (gni_ps_msg_set(&m, TOPIC, (const uint8_t *)data, strlen(data), &seq) == 0 &&
            gni_ps_msg_sign(&m, f[i].id) == 0 && gni_ps_rpc_add_msg(&rpc, &m) == 0) {
            const uint8_t *id = (const uint8_t *)"unknown-id";
            size_t len = 10;
            gni_ps_prune *pr;
            (void)gni_ps_rpc_add_ihave(&rpc, TOPIC, &id, &len, 1);
            (void)gni_ps_rpc_add_iwant(&rpc, &id, &len, 1);
            if (gni_ps_rpc_add_prune(&rpc, TOPIC, true, 1, &pr) == 0)
                (void)gni_ps_prune_add_px(pr, f[(i + 1) % nf].pid.bytes, f[(i + 1) % nf].pid.len, NULL, 0);
            (void)gni_psr_rpc_in(r, &f[i].pid, &rpc, now);
        }
        gni_ps_msg_fini(&m);
        gni_ps_rpc_fini(&rpc);
    }
    gni_psr_event ev;
    while (gni_psr_next_event(r, &ev) == 1) {
        if (ev.kind == GNI_PSR_EV_VALIDATE)
            (void)gni_psr_validation_result(r, ev.id.data, ev.id.len, GNI_PSR_ACCEPT, now);
        gni_psr_event_fini(&ev);
    }
    for (int k = 1; k <= 3; k++)
        (void)gni_psr_heartbeat(r, now + (gn_time)k * GN_S);
    (void)gni_psr_peer_congested(r, &f[0].pid, true, now);
    (void)gni_psr_unsubscribe(r, TOPIC, now);
    (void)gni_psr_peer_remove(r, &f[1].pid, now);
    size_t outs_n = 0;
    gn_peer_id to;
    gni_ps_rpc rpc;
    gni_ps_rpc_init(&rpc);
    while (gni_psr_next_out(r, &to, &rpc) == 1) {
        outs_n++;
        gni_ps_rpc_fini(&rpc);
    }
    gni_psr_free(r);
    return outs_n;
}

GN_TEST(allocation_failure_every_k)
{
    gn_identity *self;
    fake f[4];
    CHECK_OK(gn_identity_from_int_seed(500, &self));
    for (int i = 0; i < 4; i++) {
        CHECK_OK(gn_identity_from_int_seed((uint32_t)(501 + i), &f[i].id));
        gn_identity_peer_id(f[i].id, &f[i].pid);
    }
    size_t full = fa_scenario(self, f, 4);
    CHECK(full > 0);
    size_t k;
    for (k = 0; k < 20000; k++) {
        fa_reset(k);
        gn_set_allocator(&fa_allocator);
        (void)fa_scenario(self, f, 4);
        gn_set_allocator(NULL);
        CHECK_EQ(fa_live, 0);
        if (fa_count <= k)
            break; /* the scenario ran without reaching allocation k */
    }
    CHECK(k > 100 && k < 20000);
    printf("# every one of %zu allocations failed in turn: no leak, no fault\n", k);
    gn_identity_free(self);
    for (int i = 0; i < 4; i++)
        gn_identity_free(f[i].id);
}

GN_TEST(config_checked)
{
    gni_psr_config c = base_config();
    gni_psr *r;
    c.d_lo = 7;
    CHECK_EQ(gni_psr_new(&c, 0, &r), GN_EINVAL);
    c = base_config();
    c.score.publish_threshold = 0;
    CHECK_EQ(gni_psr_new(&c, 0, &r), GN_EINVAL);
    c = base_config();
    c.mcache_gossip = 6;
    CHECK_EQ(gni_psr_new(&c, 0, &r), GN_EINVAL);
    c = base_config();
    CHECK_OK(gni_psr_new(&c, 0, &r));
    CHECK_EQ(gni_psr_publish(r, TOPIC, (const uint8_t *)"x", 1, 0, NULL, NULL), GN_EINVAL); /* no identity */
    gn_peer_id p = {.len = 3, .bytes = {1, 2, 3}};
    CHECK_OK(gni_psr_peer_add(r, &p, GNI_PSR_FLOODSUB, false, NULL, 0, 0));
    CHECK_EQ(gni_psr_peer_add(r, &p, GNI_PSR_FLOODSUB, false, NULL, 0, 0), GN_EEXIST);
    CHECK_OK(gni_psr_peer_remove(r, &p, 0));
    CHECK_EQ(gni_psr_peer_remove(r, &p, 0), GN_ENOTFOUND);
    gni_psr_free(r);
}

/* ---- review findings (issue 18 review) ---- */

static gni_psr_verdict defer_val(void *ud, const char *topic, const gni_ps_msg *m, const gn_peer_id *from)
{
    (void)ud;
    (void)topic;
    (void)from;
    if (m->data.len >= 5 && memcmp(m->data.data, "defer", 5) == 0)
        return GNI_PSR_DEFER;
    if (m->data.len >= 3 && memcmp(m->data.data, "bad", 3) == 0)
        return GNI_PSR_REJECT;
    if (m->data.len >= 3 && memcmp(m->data.data, "ign", 3) == 0)
        return GNI_PSR_IGNORE;
    return GNI_PSR_ACCEPT;
}

/* @via relays a message authored (signed) by @author. */
static void relay_msg(gni_psr *r, fake *via, fake *author, const char *data, uint64_t seq, gn_time now)
{
    gni_ps_rpc rpc;
    gni_ps_rpc_init(&rpc);
    gni_ps_msg m;
    gni_ps_msg_init(&m);
    CHECK_OK(gni_ps_msg_set(&m, TOPIC, (const uint8_t *)data, strlen(data), &seq));
    CHECK_OK(gni_ps_msg_sign(&m, author->id));
    CHECK_OK(gni_ps_rpc_add_msg(&rpc, &m));
    CHECK_OK(gni_psr_rpc_in(r, &via->pid, &rpc, now));
    gni_ps_rpc_fini(&rpc);
}

/* An IHAVE of @n fresh 200-byte ids (counter @ctr) from @f. */
static void fake_ihave_many(gni_psr *r, fake *f, uint32_t *ctr, size_t n, gn_time now)
{
    static uint8_t idb[5000][200];
    static const uint8_t *ids[5000];
    static size_t lens[5000];
    for (size_t i = 0; i < n; i++) {
        (*ctr)++;
        memset(idb[i], 0x5a, 200);
        memcpy(idb[i], ctr, sizeof *ctr);
        ids[i] = idb[i];
        lens[i] = 200;
    }
    gni_ps_rpc rpc;
    gni_ps_rpc_init(&rpc);
    CHECK_OK(gni_ps_rpc_add_ihave(&rpc, TOPIC, ids, lens, n));
    CHECK_OK(gni_psr_rpc_in(r, &f->pid, &rpc, now));
    gni_ps_rpc_fini(&rpc);
}

/* Finding 1: control replies to a congested (or never draining) peer stay within the byte bound. */
GN_TEST(control_output_bounded_for_congested_peer)
{
    gni_psr_config c;
    gni_psr_config_default(&c);
    c.score.enabled = false;
    c.max_out_bytes_per_peer = 64 * 1024;
    gn_identity *id;
    gn_time now = 10 * GN_S;
    gni_psr *r = one_router(&c, &id, now);
    fake b;
    fake_new(&b);
    CHECK_OK(gni_psr_peer_add(r, &b.pid, GNI_PSR_MESHSUB11, false, NULL, 0, now));
    fake_sub(r, &b, TOPIC, now);
    drain_out(r, NULL);
    CHECK_OK(gni_psr_peer_congested(r, &b.pid, true, now));
    uint32_t ctr = 0;
    for (int hb = 0; hb < 20; hb++) {
        fake_ihave_many(r, &b, &ctr, 4000, now);
        fake_graft(r, &b, now); /* answered with PRUNE (backoff) */
        CHECK(gni_psr_peer_out_bytes(r, &b.pid) <= 2 * c.max_out_bytes_per_peer);
        now += GN_S;
        CHECK_OK(gni_psr_heartbeat(r, now));
    }
    CHECK_OK(gni_psr_peer_congested(r, &b.pid, false, now));
    outs o = drain_out(r, &b.pid);
    CHECK_EQ(o.iwant_ids, 0); /* IHAVE from a congested peer is ignored */
    CHECK(o.prunes <= 1);     /* one unsent PRUNE per peer x topic */
    gni_psr_stats st;
    gni_psr_get_stats(r, &st);
    CHECK_EQ(st.broken_promises, 0);

    /* not congested but never drained: IWANTs stop at the bound, promises wait for hand-out */
    for (int hb = 0; hb < 20; hb++) {
        fake_ihave_many(r, &b, &ctr, 4000, now);
        CHECK(gni_psr_peer_out_bytes(r, &b.pid) <= c.max_out_bytes_per_peer);
        now += 4 * GN_S;
        CHECK_OK(gni_psr_heartbeat(r, now));
    }
    gni_psr_get_stats(r, &st);
    CHECK_EQ(st.broken_promises, 0);
    CHECK(st.out_dropped > 0);
    o = drain_out(r, &b.pid);
    CHECK(o.iwant_ids > 0);
    CHECK_EQ(gni_psr_peer_out_bytes(r, &b.pid), 0);
    /* handed out and never answered: now the promises break */
    now += 4 * GN_S;
    CHECK_OK(gni_psr_heartbeat(r, now));
    gni_psr_get_stats(r, &st);
    CHECK(st.broken_promises > 0);
    gni_psr_free(r);
    gn_identity_free(id);
    gn_identity_free(b.id);
}

/* Finding 2: subscribe/unsubscribe churn does not fill the topic table; a full table evicts the
 * churning/hoarding peer's topics rather than refusing a newcomer. */
GN_TEST(topic_churn_and_eviction)
{
    gni_psr_config c;
    gni_psr_config_default(&c);
    c.max_topics = 10;
    gn_identity *id;
    gn_time now = 10 * GN_S;
    gni_psr *r = one_router(&c, &id, now);
    fake b, d;
    fake_new(&b);
    fake_new(&d);
    CHECK_OK(gni_psr_peer_add(r, &b.pid, GNI_PSR_MESHSUB11, false, NULL, 0, now));
    CHECK_OK(gni_psr_peer_add(r, &d.pid, GNI_PSR_MESHSUB11, false, NULL, 0, now));
    for (int round = 0; round < 3; round++) {
        gni_ps_rpc rpc;
        gni_ps_rpc_init(&rpc);
        for (int i = 0; i < 20; i++) {
            char t[16];
            snprintf(t, sizeof t, "junk%d", i);
            CHECK_OK(gni_ps_rpc_add_sub(&rpc, true, t));
            CHECK_OK(gni_ps_rpc_add_sub(&rpc, false, t));
        }
        CHECK_OK(gni_psr_rpc_in(r, &b.pid, &rpc, now));
        gni_ps_rpc_fini(&rpc);
        gni_psr_stats st;
        gni_psr_get_stats(r, &st);
        CHECK_EQ(st.topics, (round == 0 ? 1u : 2u)); /* ours (+ d's "real"): junk freed at unsubscribe */
        if (round == 0)
            fake_sub(r, &d, "real", now);
        now += GN_S;
        CHECK_OK(gni_psr_heartbeat(r, now));
    }
    CHECK_EQ(gni_psr_topic_peers(r, "real", NULL, 0), 1);
    /* b holds 12 subscriptions in a 10-topic table: its oldest are evicted, d's newcomer is kept */
    gni_ps_rpc rpc;
    gni_ps_rpc_init(&rpc);
    for (int i = 0; i < 12; i++) {
        char t[16];
        snprintf(t, sizeof t, "hoard%d", i);
        CHECK_OK(gni_ps_rpc_add_sub(&rpc, true, t));
    }
    CHECK_OK(gni_psr_rpc_in(r, &b.pid, &rpc, now));
    gni_ps_rpc_fini(&rpc);
    fake_sub(r, &d, "fresh", now);
    CHECK_EQ(gni_psr_topic_peers(r, "fresh", NULL, 0), 1);
    CHECK_EQ(gni_psr_topic_peers(r, "real", NULL, 0), 1);
    CHECK_EQ(gni_psr_topic_peers(r, "hoard11", NULL, 0), 1);
    CHECK_EQ(gni_psr_topic_peers(r, "hoard0", NULL, 0), 0);
    gni_psr_stats st;
    gni_psr_get_stats(r, &st);
    CHECK(st.topics <= c.max_topics + 1);
    gni_psr_free(r);
    gn_identity_free(id);
    gn_identity_free(b.id);
    gn_identity_free(d.id);
}

/* Finding 4: mesh peers whose copy arrives while the first is being validated get P3 credit. */
GN_TEST(deferred_validation_credits_duplicates_p3)
{
    for (int deferred = 0; deferred < 2; deferred++) {
        gni_psr_config c = base_config();
        c.validate = defer_val;
        c.score.default_topic.mesh_message_deliveries_weight = -1;
        c.score.default_topic.mesh_message_deliveries_threshold = 1;
        c.score.default_topic.mesh_message_deliveries_activation = 1;
        c.score.default_topic.mesh_message_deliveries_window = GN_S;
        c.score.default_topic.time_in_mesh_weight = 0;
        gn_identity *id;
        gn_time now = 10 * GN_S;
        gni_psr *r = one_router(&c, &id, now);
        fake b, d;
        fake_new(&b);
        fake_new(&d);
        CHECK_OK(gni_psr_peer_add(r, &b.pid, GNI_PSR_MESHSUB11, false, NULL, 0, now));
        CHECK_OK(gni_psr_peer_add(r, &d.pid, GNI_PSR_MESHSUB11, false, NULL, 0, now));
        fake_sub(r, &b, TOPIC, now);
        fake_sub(r, &d, TOPIC, now);
        fake_graft(r, &b, now);
        fake_graft(r, &d, now);
        now += GN_S;
        CHECK_OK(gni_psr_heartbeat(r, now));
        const char *data = deferred ? "deferX" : "plain";
        relay_msg(r, &b, &b, data, 1, now);
        relay_msg(r, &d, &b, data, 1, now);
        gni_psr_event ev;
        int validates = 0;
        while (gni_psr_next_event(r, &ev) == 1) {
            if (ev.kind == GNI_PSR_EV_VALIDATE) {
                validates++;
                CHECK_OK(gni_psr_validation_result(r, ev.id.data, ev.id.len, GNI_PSR_ACCEPT, now));
            }
            gni_psr_event_fini(&ev);
        }
        CHECK_EQ(validates, deferred);
        double sd;
        CHECK_OK(gni_psr_peer_score(r, &d.pid, now, &sd));
        CHECK(sd == 0); /* -1 without the P3 credit */
        gni_psr_topic_stats ts;
        CHECK_OK(gni_psr_get_topic_stats(r, TOPIC, &ts));
        CHECK_EQ(ts.duplicates, 1);
        gni_psr_free(r);
        gn_identity_free(id);
        gn_identity_free(b.id);
        gn_identity_free(d.id);
    }
}

/* Finding 5: a throttled message is not marked seen (a later copy is validated); a message
 * becomes seen only when accepted; a copy of a rejected one costs its sender P4. */
GN_TEST(throttled_and_rejected_not_seen)
{
    gni_psr_config c = base_config();
    c.validate = defer_val;
    c.max_pending_validations = 1;
    gn_identity *id;
    gn_time now = 10 * GN_S;
    gni_psr *r = one_router(&c, &id, now);
    fake b, d;
    fake_new(&b);
    fake_new(&d);
    CHECK_OK(gni_psr_peer_add(r, &b.pid, GNI_PSR_MESHSUB11, false, NULL, 0, now));
    CHECK_OK(gni_psr_peer_add(r, &d.pid, GNI_PSR_MESHSUB11, false, NULL, 0, now));
    fake_sub(r, &b, TOPIC, now);
    fake_sub(r, &d, TOPIC, now);
    relay_msg(r, &b, &b, "defer1", 1, now);
    relay_msg(r, &b, &b, "defer2", 2, now); /* throttled: pending full */
    int validates = 0, delivers = 0;
    gni_psr_event ev;
    while (gni_psr_next_event(r, &ev) == 1) {
        if (ev.kind == GNI_PSR_EV_VALIDATE) {
            validates++;
            CHECK_OK(gni_psr_validation_result(r, ev.id.data, ev.id.len, GNI_PSR_ACCEPT, now));
        }
        gni_psr_event_fini(&ev);
    }
    CHECK_EQ(validates, 1);
    relay_msg(r, &d, &b, "defer2", 2, now); /* another copy after the queue drained */
    while (gni_psr_next_event(r, &ev) == 1) {
        if (ev.kind == GNI_PSR_EV_VALIDATE) {
            validates++;
            CHECK_OK(gni_psr_validation_result(r, ev.id.data, ev.id.len, GNI_PSR_ACCEPT, now));
        }
        gni_psr_event_fini(&ev);
    }
    CHECK_EQ(validates, 2);
    while (gni_psr_next_event(r, &ev) == 1) {
        delivers += ev.kind == GNI_PSR_EV_DELIVER;
        gni_psr_event_fini(&ev);
    }
    /* rejected: its copy from d is dropped without validation and costs d P4 */
    double s0, s1;
    CHECK_OK(gni_psr_peer_score(r, &d.pid, now, &s0));
    relay_msg(r, &b, &b, "bad1", 3, now);
    relay_msg(r, &d, &b, "bad1", 3, now);
    CHECK_OK(gni_psr_peer_score(r, &d.pid, now, &s1));
    CHECK(s1 < s0);
    gni_psr_stats st;
    gni_psr_get_stats(r, &st);
    CHECK_EQ(st.seen, 2); /* the two accepted ones only */
    gni_psr_free(r);
    gn_identity_free(id);
    gn_identity_free(b.id);
    gn_identity_free(d.id);
}

/* Finding 6: a good score is not carried over a reconnect, a bad one is; backoffs survive a
 * reconnect with scoring disabled; a full retained table evicts the best retained peer. */
GN_TEST(score_retention_and_backoff_kept)
{
    gni_psr_config c = base_config();
    gn_identity *id;
    gn_time now = 10 * GN_S;
    gni_psr *r = one_router(&c, &id, now);
    fake b, d;
    fake_new(&b);
    fake_new(&d);
    CHECK_OK(gni_psr_peer_add(r, &b.pid, GNI_PSR_MESHSUB11, false, NULL, 0, now));
    CHECK_OK(gni_psr_peer_add(r, &d.pid, GNI_PSR_MESHSUB11, false, NULL, 0, now));
    fake_sub(r, &b, TOPIC, now);
    fake_sub(r, &d, TOPIC, now);
    fake_msg(r, &b, "good", true, 1, now);   /* P2 > 0 */
    fake_msg(r, &d, "unsigned", false, 1, now); /* P4 < 0 */
    double sb, sd;
    CHECK_OK(gni_psr_peer_score(r, &b.pid, now, &sb));
    CHECK_OK(gni_psr_peer_score(r, &d.pid, now, &sd));
    CHECK(sb > 0 && sd < 0);
    CHECK_OK(gni_psr_peer_remove(r, &b.pid, now));
    CHECK_OK(gni_psr_peer_remove(r, &d.pid, now));
    CHECK_OK(gni_psr_peer_add(r, &b.pid, GNI_PSR_MESHSUB11, false, NULL, 0, now));
    CHECK_OK(gni_psr_peer_add(r, &d.pid, GNI_PSR_MESHSUB11, false, NULL, 0, now));
    CHECK_OK(gni_psr_peer_score(r, &b.pid, now, &sb));
    CHECK_OK(gni_psr_peer_score(r, &d.pid, now, &sd));
    CHECK(sb == 0);
    CHECK(sd < 0);
    gni_psr_free(r);
    gn_identity_free(id);

    /* scoring off: the backoff from b's PRUNE outlives a reconnect */
    c = base_config();
    c.score.enabled = false;
    r = one_router(&c, &id, now);
    CHECK_OK(gni_psr_peer_add(r, &b.pid, GNI_PSR_MESHSUB11, false, NULL, 0, now));
    fake_sub(r, &b, TOPIC, now);
    fake_prune(r, &b, NULL, 0, now); /* backoff 60 s */
    CHECK_OK(gni_psr_peer_remove(r, &b.pid, now));
    CHECK_OK(gni_psr_peer_add(r, &b.pid, GNI_PSR_MESHSUB11, false, NULL, 0, now));
    fake_sub(r, &b, TOPIC, now);
    now += 2 * GN_S;
    CHECK_OK(gni_psr_heartbeat(r, now));
    CHECK_EQ(gni_psr_mesh_peers(r, TOPIC, NULL, 0), 0);
    now += 60 * GN_S;
    CHECK_OK(gni_psr_heartbeat(r, now));
    CHECK_EQ(gni_psr_mesh_peers(r, TOPIC, NULL, 0), 1);
    gni_psr_free(r);
    gn_identity_free(id);

    /* retained table full (max_peers 1): the newcomer is kept, the older one evicted */
    c = base_config();
    c.max_peers = 1;
    r = one_router(&c, &id, now);
    CHECK_OK(gni_psr_peer_add(r, &b.pid, GNI_PSR_MESHSUB11, false, NULL, 0, now));
    fake_sub(r, &b, TOPIC, now);
    fake_msg(r, &b, "unsigned", false, 1, now);
    CHECK_OK(gni_psr_peer_remove(r, &b.pid, now));
    CHECK_OK(gni_psr_peer_add(r, &d.pid, GNI_PSR_MESHSUB11, false, NULL, 0, now));
    fake_sub(r, &d, TOPIC, now);
    fake_msg(r, &d, "unsigned", false, 1, now);
    CHECK_OK(gni_psr_peer_remove(r, &d.pid, now));
    CHECK_EQ(gni_psr_peer_score(r, &b.pid, now, &sb), GN_ENOTFOUND);
    CHECK_OK(gni_psr_peer_score(r, &d.pid, now, &sd));
    CHECK(sd < 0);
    gni_psr_free(r);
    gn_identity_free(id);
    gn_identity_free(b.id);
    gn_identity_free(d.id);
}

/* Finding 3: byte bounds on the message cache, the event queue and all queued output. */
GN_TEST(byte_bounds_cache_events_output)
{
    gni_psr_config c = base_config();
    c.mcache_max_bytes = 5000;
    c.max_event_bytes = 3500;
    c.max_out_bytes_total = 3500;
    gn_identity *id;
    gn_time now = 10 * GN_S;
    gni_psr *r = one_router(&c, &id, now);
    fake b;
    fake_new(&b);
    CHECK_OK(gni_psr_peer_add(r, &b.pid, GNI_PSR_MESHSUB11, false, NULL, 0, now));
    fake_sub(r, &b, TOPIC, now);
    static uint8_t big[1000];
    for (int i = 0; i < 10; i++) {
        big[0] = (uint8_t)i;
        CHECK_OK(gni_psr_publish(r, TOPIC, big, sizeof big, now, NULL, NULL));
    }
    gni_psr_stats st;
    gni_psr_get_stats(r, &st);
    CHECK(st.mcache_msgs >= 3 && st.mcache_msgs <= 4);
    CHECK(st.events_dropped >= 6);
    CHECK(st.out_dropped >= 6);
    CHECK(gni_psr_peer_out_bytes(r, &b.pid) <= c.max_out_bytes_total);
    CHECK(count_delivers(r) <= 3);
    outs o = drain_out(r, &b.pid);
    CHECK(o.msgs >= 1 && o.msgs <= 3);
    gni_psr_free(r);
    gn_identity_free(id);
    gn_identity_free(b.id);
}

/* Findings 10, 14: StrictNoSign needs a custom ID function; its messages carry no from/seqno and
 * incoming ones with from/seqno are refused; the tightened config checks. */
static long data_id(const gni_ps_msg *m, uint8_t *out, size_t cap, void *ud)
{
    (void)ud;
    size_t n = GNI_MIN(m->data.len, cap);
    if (n == 0)
        return GN_EINVAL;
    memcpy(out, m->data.data, n);
    return (long)n;
}

GN_TEST(strict_no_sign_and_config_checks)
{
    gni_psr_config c = base_config();
    gni_psr *r;
    c.sign_policy = GNI_PS_STRICT_NO_SIGN;
    CHECK_EQ(gni_psr_new(&c, 0, &r), GN_EINVAL); /* default ID function */
    c = base_config();
    c.score.gossip_threshold = 0;
    c.score.publish_threshold = -1;
    CHECK_EQ(gni_psr_new(&c, 0, &r), GN_EINVAL);
    c = base_config();
    c.score.app_specific_weight = -1;
    CHECK_EQ(gni_psr_new(&c, 0, &r), GN_EINVAL);

    c = base_config();
    c.sign_policy = GNI_PS_STRICT_NO_SIGN;
    c.msg_id = data_id;
    gn_identity *id;
    gn_time now = 10 * GN_S;
    r = one_router(&c, &id, now);
    fake b;
    fake_new(&b);
    CHECK_OK(gni_psr_peer_add(r, &b.pid, GNI_PSR_MESHSUB11, false, NULL, 0, now));
    fake_sub(r, &b, TOPIC, now);
    drain_out(r, NULL);
    CHECK_OK(gni_psr_publish(r, TOPIC, (const uint8_t *)"hello", 5, now, NULL, NULL));
    gn_peer_id to;
    gni_ps_rpc rpc;
    gni_ps_rpc_init(&rpc);
    int msgs = 0;
    while (gni_psr_next_out(r, &to, &rpc) == 1) {
        for (size_t i = 0; i < rpc.msg_cnt; i++) {
            CHECK(!rpc.msgs[i].has_from && !rpc.msgs[i].has_seqno && !rpc.msgs[i].has_signature);
            msgs++;
        }
        gni_ps_rpc_fini(&rpc);
    }
    CHECK_EQ(msgs, 1);
    CHECK_EQ(count_delivers(r), 1);
    fake_msg(r, &b, "withfrom", true, 7, now); /* from, seqno, signature: refused */
    CHECK_EQ(count_delivers(r), 0);
    gni_psr_topic_stats ts;
    CHECK_OK(gni_psr_get_topic_stats(r, TOPIC, &ts));
    CHECK_EQ(ts.rejected, 1);
    CHECK_EQ(gni_psr_get_topic_stats(r, TOPIC, NULL), GN_EINVAL);
    gni_psr_free(r);
    gn_identity_free(id);
    gn_identity_free(b.id);
}

/* Finding 9: a floodsub peer below the publish threshold gets no messages. */
GN_TEST(floodsub_peer_below_publish_threshold_skipped)
{
    gni_psr_config c = base_config();
    gn_identity *id;
    gn_time now = 10 * GN_S;
    gni_psr *r = one_router(&c, &id, now);
    fake b, d;
    fake_new(&b);
    fake_new(&d);
    CHECK_OK(gni_psr_peer_add(r, &b.pid, GNI_PSR_FLOODSUB, false, NULL, 0, now));
    CHECK_OK(gni_psr_peer_add(r, &d.pid, GNI_PSR_FLOODSUB, false, NULL, 0, now));
    fake_sub(r, &b, TOPIC, now);
    fake_sub(r, &d, TOPIC, now);
    fake_msg(r, &b, "unsigned", false, 1, now); /* P4: -100 */
    drain_out(r, NULL);
    CHECK_OK(gni_psr_publish(r, TOPIC, (const uint8_t *)"x", 1, now, NULL, NULL));
    gn_peer_id to;
    gni_ps_rpc rpc;
    gni_ps_rpc_init(&rpc);
    int to_b = 0, to_d = 0;
    while (gni_psr_next_out(r, &to, &rpc) == 1) {
        if (gn_peer_id_equal(&to, &b.pid))
            to_b += (int)rpc.msg_cnt;
        if (gn_peer_id_equal(&to, &d.pid))
            to_d += (int)rpc.msg_cnt;
        gni_ps_rpc_fini(&rpc);
    }
    CHECK_EQ(to_b, 0);
    CHECK_EQ(to_d, 1);
    gni_psr_free(r);
    gn_identity_free(id);
    gn_identity_free(b.id);
    gn_identity_free(d.id);
}

/* Finding 8: on subscribe a fanout peer in backoff is not grafted. */
GN_TEST(subscribe_fanout_promotion_respects_backoff)
{
    gni_psr_config c = base_config();
    c.flood_publish = false;
    gn_identity *id;
    gn_time now = 10 * GN_S;
    gni_psr *r = one_router(&c, &id, now);
    fake b, d;
    fake_new(&b);
    fake_new(&d);
    CHECK_OK(gni_psr_peer_add(r, &b.pid, GNI_PSR_MESHSUB11, false, NULL, 0, now));
    CHECK_OK(gni_psr_peer_add(r, &d.pid, GNI_PSR_MESHSUB11, false, NULL, 0, now));
    fake_sub(r, &b, "f", now);
    fake_sub(r, &d, "f", now);
    CHECK_OK(gni_psr_publish(r, "f", (const uint8_t *)"x", 1, now, NULL, NULL)); /* fanout {b, d} */
    gni_ps_rpc rpc;
    gni_ps_rpc_init(&rpc);
    gni_ps_prune *p;
    CHECK_OK(gni_ps_rpc_add_prune(&rpc, "f", true, 60, &p));
    CHECK_OK(gni_psr_rpc_in(r, &b.pid, &rpc, now));
    gni_ps_rpc_fini(&rpc);
    drain_out(r, NULL);
    CHECK_OK(gni_psr_subscribe(r, "f", now));
    gn_peer_id m[4];
    CHECK_EQ(gni_psr_mesh_peers(r, "f", m, 4), 1);
    CHECK(gn_peer_id_equal(&m[0], &d.pid));
    outs o = drain_out(r, &b.pid);
    CHECK_EQ(o.grafts, 0);
    gni_psr_free(r);
    gn_identity_free(id);
    gn_identity_free(b.id);
    gn_identity_free(d.id);
}

/* Finding 16: with long custom IDs an IHAVE still fits max_rpc_len. */
static long long_id(const gni_ps_msg *m, uint8_t *out, size_t cap, void *ud)
{
    (void)ud;
    if (cap < 1000 || m->data.len == 0)
        return GN_EINVAL;
    memset(out, 0x33, 1000);
    memcpy(out, m->data.data, GNI_MIN(m->data.len, (size_t)1000));
    return 1000;
}

GN_TEST(ihave_fits_rpc_with_long_ids)
{
    gni_psr_config c = base_config();
    c.msg_id = long_id;
    c.limits.max_rpc_len = 16384;
    c.limits.max_id_len = 1024;
    gn_identity *id;
    gn_time now = 10 * GN_S;
    gni_psr *r = one_router(&c, &id, now);
    gni_ps_limits lim = gni_ps_limits_resolve(&c.limits);
    fake b;
    fake_new(&b);
    CHECK_OK(gni_psr_peer_add(r, &b.pid, GNI_PSR_MESHSUB11, false, NULL, 0, now));
    fake_sub(r, &b, TOPIC, now);
    fake_prune(r, &b, NULL, 0, now); /* b in backoff: a gossip target, not a mesh peer */
    for (int i = 0; i < 40; i++) {
        char d[16];
        snprintf(d, sizeof d, "msg%02d", i);
        CHECK_OK(gni_psr_publish(r, TOPIC, (const uint8_t *)d, strlen(d), now, NULL, NULL));
    }
    drain_out(r, NULL);
    now += GN_S;
    CHECK_OK(gni_psr_heartbeat(r, now));
    static uint8_t buf[64 * 1024];
    gn_peer_id to;
    gni_ps_rpc rpc;
    gni_ps_rpc_init(&rpc);
    int ihave_ids = 0;
    while (gni_psr_next_out(r, &to, &rpc) == 1) {
        for (size_t i = 0; i < rpc.ihave_cnt; i++)
            ihave_ids += (int)rpc.ihave[i].id_cnt;
        CHECK(gni_ps_rpc_encode(&rpc, &lim, buf, sizeof buf) > 0);
        gni_ps_rpc_fini(&rpc);
    }
    CHECK(ihave_ids > 0 && ihave_ids < 40);
    gni_psr_free(r);
    gn_identity_free(id);
    gn_identity_free(b.id);
}

GN_TEST_MAIN(GN_T(ihave_fits_rpc_with_long_ids), GN_T(subscribe_fanout_promotion_respects_backoff), GN_T(floodsub_peer_below_publish_threshold_skipped), GN_T(strict_no_sign_and_config_checks), GN_T(byte_bounds_cache_events_output), GN_T(score_retention_and_backoff_kept), GN_T(deferred_validation_credits_duplicates_p3), GN_T(throttled_and_rejected_not_seen), GN_T(topic_churn_and_eviction), GN_T(control_output_bounded_for_congested_peer), GN_T(delivery_random_graph_exactly_once), GN_T(delivery_line_and_ring),
             GN_T(mesh_degree_bounds_dense), GN_T(floodsub_peers_mixed_in),
             GN_T(ihave_iwant_recovers_missed_message), GN_T(fanout_then_subscribe),
             GN_T(prune_backoff_respected_and_regraft_penalised),
             GN_T(px_accepted_only_from_well_scored_peers),
             GN_T(strict_sign_rejects_unsigned_then_graylists), GN_T(validation_verdicts_and_graylist),
             GN_T(bounds_ihave_iwant_topics), GN_T(congested_peer_leaves_mesh), GN_T(allocation_failure_every_k),
             GN_T(outbound_quota_kept_when_pruning), GN_T(score_p3_p3b_p6_and_retention),
             GN_T(scale_50_routers), GN_T(peers_cannot_fill_the_topic_table_for_us),
             GN_T(config_checked))
