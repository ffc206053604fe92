/*
 * Protocol conformance suite: the same tests on every protocol component.
 *
 * Usage: conformance_protocol <component-name>|ref [test-filter]
 *   "ref" runs the suite on the reference component defined below (an echo
 *   protocol): no protocol component is built in yet, and the suite must
 *   run in CI all the same.
 *
 * Each test runs real nodes on one loop driven by this thread (conf_node.h):
 * node S serves the component, node C dials S over TCP on 127.0.0.1 and
 * opens streams for the component's protocol id. The component runs
 * inside S wrapped by a spy: an ops table with the same name and state
 * whose entries count the node's calls and check what on_stream is given,
 * then call the component's own entries. Checked (include/golemnet/
 * protocol.h, host.h): S answers the id; each inbound stream is handed
 * over once with its protocol id, remote peer and open channel; start and
 * stop run once each; identify announces the id; a peer that resets or
 * disconnects mid-stream leaves nothing open on S (and, under ASan,
 * nothing leaked). The suite knows nothing of the protocol's wire format:
 * it only opens, writes a few bytes, and goes away.
 */
#include "golemnet/protocol.h"

#include "conf_node.h"

/* ---- the reference component: echo until EOF ---------------------------- */

#define REF_ID "/golemnet/conformance-ref/echo/1.0.0"

typedef struct ref_stream {
    gn_stream *s;
    int writes;   /* in flight */
    bool eof, closing;
} ref_stream;

typedef struct ref_write {
    ref_stream *rs;
    gn_slice iov;
    uint8_t data[];
} ref_write;

static void ref_closed(gn_stream *s, void *arg)
{
    (void)s;
    gn_free(arg);
}

static void ref_close(ref_stream *rs)
{
    if (rs->closing)
        return;
    rs->closing = true;
    gn_stream_close(rs->s, ref_closed, rs); /* pending writes complete first */
}

static void ref_written(void *arg, int status)
{
    ref_write *w = arg;
    ref_stream *rs = w->rs;
    gn_free(w);
    rs->writes--;
    if (status < 0 || (rs->eof && rs->writes == 0))
        ref_close(rs);
}

static void ref_data(gn_stream *s, void *ud, const uint8_t *data, size_t len)
{
    ref_stream *rs = ud;
    ref_write *w = gn_malloc(sizeof *w + len);
    if (!w) {
        ref_close(rs);
        return;
    }
    memcpy(w->data, data, len);
    w->rs = rs;
    w->iov = gn_slice_of(w->data, len);
    if (gn_stream_write(s, &w->iov, 1, ref_written, w) < 0) {
        gn_free(w);
        ref_close(rs);
        return;
    }
    rs->writes++;
}

static void ref_eof(gn_stream *s, void *ud)
{
    ref_stream *rs = ud;
    (void)s;
    rs->eof = true;
    if (rs->writes == 0)
        ref_close(rs);
}

static void ref_error(gn_stream *s, void *ud, int err)
{
    (void)s, (void)err;
    ref_close(ud);
}

static const gn_stream_handler ref_handler = {
    .on_data = ref_data, .on_eof = ref_eof, .on_error = ref_error};

static void ref_on_stream(gn_protocol *p, gn_stream *s, const gn_protocol_stream_info *info)
{
    (void)p, (void)info;
    ref_stream *rs = gn_calloc(1, sizeof *rs);
    if (!rs) {
        gn_stream_reset(s, NULL, NULL);
        return;
    }
    rs->s = s;
    gn_stream_set_handler(s, &ref_handler, rs);
    if (gn_stream_read_start(s) < 0)
        ref_close(rs);
}

static const gn_protocol_ops ref_ops = {
    .abi = GN_PROTOCOL_ABI,
    .name = REF_ID,
    .on_stream = ref_on_stream,
};

/* ---- the spy around the component under test ---------------------------- */

static const gn_protocol_ops *g_inner; /* the component under test */
static gn_protocol_ops g_spy;          /* its table with the entries below */

static struct {
    int starts, stops, streams;
    int bad_info;          /* on_stream calls with a wrong info */
    int after_stop;        /* on_stream calls after stop */
    gn_peer_id want_peer;  /* the peer expected to open streams */
    gn_channel *ch;        /* the channel of the last stream, held */
} S;

static int spy_start(gn_protocol *p)
{
    S.starts++;
    return g_inner->start ? g_inner->start(p) : 0;
}

static void spy_stop(gn_protocol *p)
{
    S.stops++;
    if (g_inner->stop)
        g_inner->stop(p);
}

static void spy_on_stream(gn_protocol *p, gn_stream *s, const gn_protocol_stream_info *info)
{
    S.streams++;
    S.after_stop += S.stops > 0;
    gn_channel_info ci;
    bool ok = info && info->protocol_id && strcmp(info->protocol_id, g_inner->name) == 0 &&
              gn_peer_id_equal(&info->remote_peer, &S.want_peer) && info->channel &&
              gn_channel_state_get(info->channel, &ci) == GN_CHANNEL_OPEN &&
              gn_peer_id_equal(&ci.remote_peer, &S.want_peer) && ci.direction == GN_DIR_INBOUND;
    if (!ok) {
        printf("# on_stream: unexpected info (protocol %s)\n",
               info && info->protocol_id ? info->protocol_id : "(null)");
        S.bad_info++;
    }
    if (info && info->channel) {
        if (S.ch)
            gn_channel_rele(S.ch);
        S.ch = gn_channel_hold(info->channel);
    }
    g_inner->on_stream(p, s, info);
}

static void spy_make(const gn_protocol_ops *inner)
{
    g_inner = inner;
    g_spy = *inner; /* same name, state size, init and fini */
    g_spy.start = spy_start;
    g_spy.stop = spy_stop;
    g_spy.on_stream = spy_on_stream;
    g_spy.node_bit = 0; /* runs because the test's protocol list names it */
}

/* ---- the world of one test: S serves the component, C is the peer ------- */

typedef struct pworld {
    gn_registry *reg;
    gn_registry *creg; /* C's: the built-in components only, never the spy */
    cn_node s, c;
    gn_channel *ch; /* C's channel to S, held */
} pworld;

/* C, the peer, runs the built-in components but identify only when
 * @identify: otherwise its identify requests would be streams S counts
 * when the component under test answers them. */
static void world_up_c(pworld *w, bool identify);

static void world_up(pworld *w)
{
    world_up_c(w, false);
}

static void world_up_c(pworld *w, bool identify)
{
    memset(w, 0, sizeof *w);
    memset(&S, 0, sizeof S);
    cn_setup();
    w->reg = cn_registry(GN_LAYER_PROTOCOL, (const gn_layer_ops *)&g_spy);
    static const char *const lo[] = {"/ip4/127.0.0.1/tcp/0"};
    cn_up(&w->s, 1, &(cn_opts){.registry = w->reg, .protocols = g_inner->name, .listen = lo,
                               .n_listen = 1});
    CHECK_EQ(S.starts, 1);
    CHECK_EQ(S.stops, 0);
    w->creg = cn_registry(GN_LAYER_PROTOCOL, NULL);
    uint32_t bits = GN_NODE_PROTO_DEFAULT & ~(identify ? 0u : GN_NODE_PROTO_IDENTIFY);
    cn_up(&w->c, 2, &(cn_opts){.registry = w->creg, .proto_bits = bits});
    S.want_peer = w->c.pid;
    CHECK_EQ(cn_dial(&w->c, w->s.addr, &w->ch), 0);
}

static void world_down(pworld *w)
{
    if (w->ch)
        gn_channel_rele(w->ch);
    w->ch = NULL;
    if (w->c.n)
        cn_down(&w->c);
    cn_down(&w->s);
    CHECK_EQ(S.starts, 1);
    CHECK_EQ(S.stops, 1);
    CHECK_EQ(S.after_stop, 0);
    if (S.ch)
        gn_channel_rele(S.ch);
    S.ch = NULL;
    gn_registry_free(w->reg);
    gn_registry_free(w->creg);
    cn_finish();
}

/* A client stream of C: opened, then whatever S sends is dropped. */
typedef struct cstream {
    int opened, status;
    gn_stream *s;
    int eofs, errors;
    bool closed;
} cstream;

static void cs_closed(gn_stream *s, void *arg)
{
    (void)s;
    ((cstream *)arg)->closed = true;
}

static void cs_data(gn_stream *s, void *ud, const uint8_t *d, size_t n)
{
    (void)s, (void)ud, (void)d, (void)n;
}

static void cs_eof(gn_stream *s, void *ud)
{
    (void)s;
    ((cstream *)ud)->eofs++;
}

static void cs_error(gn_stream *s, void *ud, int err)
{
    (void)s, (void)err;
    ((cstream *)ud)->errors++;
}

static const gn_stream_handler cs_handler = {
    .on_data = cs_data, .on_eof = cs_eof, .on_error = cs_error};

static void cs_opened(void *arg, int status, gn_stream *s)
{
    cstream *c = arg;
    c->opened++;
    c->status = status;
    if (status == 0) {
        c->s = s;
        gn_stream_set_handler(s, &cs_handler, c);
        gn_stream_read_start(s);
    }
}

static void cs_open(pworld *w, cstream *c)
{
    memset(c, 0, sizeof *c);
    CHECK_OK(gn_channel_open_stream(w->ch, g_inner->name, cs_opened, c));
    CHECK_EQ(c->opened, 0);
}

static void cs_close(cstream *c)
{
    if (c->s && !c->closed)
        gn_stream_close(c->s, cs_closed, c);
}

static uint32_t s_streams_open(void)
{
    gn_channel_metrics m;
    gn_channel_metrics_get(S.ch, &m);
    return m.streams_open;
}

/* ------------------------------------------------------------------ */

GN_TEST(table_is_well_formed)
{
    size_t len = strlen(g_inner->name);
    printf("# %s: start %s, stop %s\n", g_inner->name, g_inner->start ? "yes" : "no",
           g_inner->stop ? "yes" : "no");
    CHECK_EQ(g_inner->abi, GN_PROTOCOL_ABI);
    CHECK(g_inner->on_stream != NULL);
    CHECK(g_inner->name[0] == '/' && len > 1 && len < GN_PROTOCOL_ID_MAX);
}

GN_TEST(node_answers_the_protocol_id)
{
    pworld w;
    world_up(&w);
    cstream c;
    cs_open(&w, &c);
    CN_RUN_UNTIL(c.opened > 0 && S.streams > 0, 5000);
    CHECK_EQ(c.status, 0);
    CHECK_EQ(c.opened, 1);
    CHECK_EQ(S.streams, 1);
    CHECK_EQ(S.bad_info, 0);
    /* S's host lists the id */
    const char *ids[64];
    size_t n = gn_host_protocols(gn_node_host(w.s.n), ids, 64);
    bool listed = false;
    for (size_t i = 0; i < n; i++)
        listed = listed || strcmp(ids[i], g_inner->name) == 0;
    CHECK(listed);
    cs_close(&c);
    CN_RUN_UNTIL(c.closed, 5000);
    CN_RUN_FOR(50);
    CHECK_EQ(S.streams, 1);
    world_down(&w);
}

GN_TEST(identify_announces_the_id)
{
    pworld w;
    world_up_c(&w, true);
    CN_RUN_UNTIL(cn_poll(&w.c) && w.c.identified > 0, 5000);
    char id[GN_PROTOCOL_ID_MAX];
    bool announced = false;
    for (size_t i = 0; gn_node_peer_protocol(w.c.n, &w.s.pid, i, id, sizeof id) > 0; i++)
        announced = announced || strcmp(id, g_inner->name) == 0;
    CHECK(announced);
    CHECK(gn_host_peer_supports(gn_node_host(w.c.n), &w.s.pid, g_inner->name));
    world_down(&w);
}

static int opened_ok(const cstream *c, int n)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        k += c[i].opened > 0 && c[i].status == 0;
    return k;
}

GN_TEST(each_inbound_stream_handed_over_once)
{
    enum { N = 8 };
    pworld w;
    world_up(&w);
    static cstream c[N];
    for (int i = 0; i < N; i++)
        cs_open(&w, &c[i]);
    CN_RUN_UNTIL(opened_ok(c, N) == N && S.streams == N, 5000);
    for (int i = 0; i < N; i++)
        cs_close(&c[i]);
    CN_RUN_FOR(100);
    CHECK_EQ(S.streams, N);
    CHECK_EQ(S.bad_info, 0);
    world_down(&w);
}

GN_TEST(peer_resets_mid_stream)
{
    static const char junk[] = "conformance: a few bytes, then a reset";
    pworld w;
    world_up(&w);
    cstream c;
    cs_open(&w, &c);
    CN_RUN_UNTIL(c.opened > 0 && S.streams > 0, 5000);
    CHECK_EQ(c.status, 0);
    gn_slice iov = gn_slice_of((const uint8_t *)junk, sizeof junk - 1);
    CHECK_OK(gn_stream_write(c.s, &iov, 1, NULL, NULL));
    CN_RUN_FOR(50);
    gn_stream_reset(c.s, cs_closed, &c);
    CN_RUN_UNTIL(c.closed, 5000);
    /* S's component closes its side: nothing stays open on the channel */
    CN_RUN_UNTIL(s_streams_open() == 0, 5000);
    world_down(&w);
}

GN_TEST(peer_disconnects_mid_stream)
{
    static const char junk[] = "conformance: a few bytes, then the peer goes away";
    pworld w;
    world_up(&w);
    cstream c;
    cs_open(&w, &c);
    CN_RUN_UNTIL(c.opened > 0 && S.streams > 0, 5000);
    CHECK_EQ(c.status, 0);
    gn_slice iov = gn_slice_of((const uint8_t *)junk, sizeof junk - 1);
    CHECK_OK(gn_stream_write(c.s, &iov, 1, NULL, NULL));
    CN_RUN_FOR(50);
    /* C goes away with the stream open: its channel closes under it */
    gn_channel_close(w.ch);
    CN_RUN_UNTIL(c.errors + c.eofs > 0, 5000);
    cs_close(&c);
    CN_RUN_UNTIL(c.closed, 5000);
    CN_RUN_UNTIL(cn_poll(&w.s) && w.s.closed_channels > 0, 5000);
    cn_down(&w.c);
    world_down(&w); /* S closes within the bound: nothing of the stream held it */
}

GN_TEST(node_close_with_a_stream_open)
{
    pworld w;
    world_up(&w);
    cstream c;
    cs_open(&w, &c);
    CN_RUN_UNTIL(c.opened > 0 && S.streams > 0, 5000);
    CHECK_EQ(c.status, 0);
    /* S closes while the component holds the stream */
    cn_close(&w.s);
    CHECK_EQ(S.stops, 1);
    CN_RUN_UNTIL(c.errors + c.eofs > 0, 5000);
    cs_close(&c);
    CN_RUN_UNTIL(c.closed, 5000);
    cn_free(&w.s);
    cn_down(&w.c);
    if (w.ch)
        gn_channel_rele(w.ch);
    CHECK_EQ(S.starts, 1);
    CHECK_EQ(S.after_stop, 0);
    if (S.ch)
        gn_channel_rele(S.ch);
    S.ch = NULL;
    gn_registry_free(w.reg);
    gn_registry_free(w.creg);
    cn_finish();
}

int main(int argc, char **argv)
{
    static const gn_test_case cases[] = {
        GN_T(table_is_well_formed),
        GN_T(node_answers_the_protocol_id),
        GN_T(identify_announces_the_id),
        GN_T(each_inbound_stream_handed_over_once),
        GN_T(peer_resets_mid_stream),
        GN_T(peer_disconnects_mid_stream),
        GN_T(node_close_with_a_stream_open),
    };
    if (argc < 2) {
        fprintf(stderr, "usage: %s COMPONENT|ref [filter]\n", argv[0]);
        return 2;
    }
    const gn_layer_ops *o =
        cn_component(GN_LAYER_PROTOCOL, argv[1], (const gn_layer_ops *)&ref_ops);
    if (!o)
        return 1;
    spy_make((const gn_protocol_ops *)o);
    return gn_test_run(cases, sizeof cases / sizeof cases[0], argc - 1, argv + 1);
}
