/*
 * ergo_pool_test: two golemnet Ergo endpoints on 127.0.0.1 over the real
 * pool (protocols/ergo/ergo_uv.c, pool of 3): one frame of every ENP
 * message type of ergo-wire.md c "Message types and layouts" in both
 * directions, built with the enp.h builders, with EDF payloads encoded with
 * the sender's own dictionaries and decoded with the ones the handshake
 * gave the receiver (gni_ergo_conn_peer_dict); compression off and on for
 * gzip, zlib and LZW with the threshold rule; per-sender order;
 * MaxMessageSize on send (GN_ETOOBIG) and on receive (the link closes with
 * a clear error, the connection's other links carry on); a joined link
 * killed mid-stream.
 *
 * The two registries differ on purpose (another atom order, an extra type
 * first), so a payload only decodes right with the peer's announced
 * tables, not with the receiver's own.
 */
#include "gn_test.h"

#include "enp.h"
#include "ergo_uv.h"
#include "golemnet/edf.h"
#include "golemnet/err.h"

#define MAX_EXPECT 64
#define NSEND 3
#define BIG_LEN 2000   /* payload of a frame above the compression threshold */
#define SMALL_LEN 500  /* below it */

typedef struct expect {
    gni_enp_frame f;   /* the fields sent (payload: the EDF bytes sent) */
    gn_edf_value v;    /* the payload value (kind NIL: none) */
    const char *atom;  /* 103/106/123/183/186: the name behind f.atom_id */
    uint8_t zmethod;   /* 200 expected with this method, 0 = plain */
} expect;

typedef struct side {
    const gn_edf_registry *reg;
    gni_ergo_node *n;
    gni_ergo_conn *c;
    unsigned conns, downs, link_errors, min_links;
    int last_err;
    char diag[256];
    /* the frames this side expects, in order (one sender, one link) */
    expect exp[MAX_EXPECT];
    unsigned nexp, nrx, bad;
    /* per-sender sequences (order test) */
    bool seq_mode;
    int64_t last_seq[NSEND];
    unsigned got[NSEND];
    bool out_of_order;
    gn_edf_arena *rx_arena;
} side;

#include "ergo_uv_harness.h"

/* a failed expectation inside a loop callback: counted, printed, checked after the run */
#define EXPECT(s, cond)                                                                      \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            printf("# frame %u: expected %s (line %d)\n", (s)->nrx, #cond, __LINE__);        \
            (s)->bad++;                                                                      \
        }                                                                                    \
    } while (0)

static void on_links(gni_ergo_conn *c, unsigned nlinks, void *ud)
{
    side *s = ud;
    (void)c;
    if (nlinks < s->min_links)
        s->min_links = nlinks;
}

static bool slice_eq(gn_slice a, gn_slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.base, b.base, a.len) == 0);
}

/* the sequence frames of the order test: 101 from 1001..1003 with an int64 */
static void on_seq_frame(side *s, const gni_enp_frame *f)
{
    uint64_t k = f->from - 1001;
    if (f->type != GNI_ENP_MSG_PID || k >= NSEND || f->payload.len != 9 ||
        f->payload.base[0] != GN_EDF_TAG_INT64) {
        s->bad++;
        return;
    }
    int64_t seq = (int64_t)gni_enp_get64(f->payload.base + 1);
    if (seq <= s->last_seq[k])
        s->out_of_order = true;
    s->last_seq[k] = seq;
    s->got[k]++;
}

/* checks one arrived frame against the next expected one */
static void on_frame(gni_ergo_conn *c, const uint8_t *frame, size_t len, void *ud)
{
    side *s = ud;
    gni_enp_frame f;
    gni_enp_diag diag;
    int rc = gni_enp_parse(frame, len, &f, &diag);
    EXPECT(s, rc == 0);
    if (rc < 0)
        return;
    if (s->seq_mode) {
        on_seq_frame(s, &f);
        return;
    }
    EXPECT(s, s->nrx < s->nexp);
    if (s->nrx >= s->nexp)
        return;
    const expect *e = &s->exp[s->nrx];
    static uint8_t inner[BIG_LEN + 512];
    if (e->zmethod) {
        EXPECT(s, f.type == GNI_ENP_COMPRESSED && f.method == e->zmethod);
        EXPECT(s, f.order == e->f.order); /* the wrapper keeps the inner order byte */
        long n = gni_enp_inflate(&f, inner, sizeof inner, &diag);
        EXPECT(s, n > 0);
        if (n <= 0 || gni_enp_parse(inner, (size_t)n, &f, &diag) < 0) {
            s->nrx++;
            s->bad++;
            return;
        }
    }
    EXPECT(s, f.type == e->f.type);
    EXPECT(s, f.order == e->f.order);
    EXPECT(s, f.flags == e->f.flags);
    EXPECT(s, f.code == e->f.code);
    EXPECT(s, f.from == e->f.from);
    EXPECT(s, f.to == e->f.to);
    EXPECT(s, memcmp(f.ref, e->f.ref, sizeof f.ref) == 0);
    EXPECT(s, memcmp(f.alias, e->f.alias, sizeof f.alias) == 0);
    EXPECT(s, f.timestamp == e->f.timestamp);
    EXPECT(s, slice_eq(f.name, e->f.name));
    const gn_edf_dict *peer = gni_ergo_conn_peer_dict(c);
    if (e->atom) {
        /* a name sent as the sender's atom-cache id: the peer's AtomCache resolves it */
        gn_slice name = {0};
        EXPECT(s, f.atom_id == e->f.atom_id);
        EXPECT(s, gn_edf_dict_find(peer, GN_EDF_DICT_ATOM, f.atom_id, &name) == 0);
        EXPECT(s, slice_eq(name, gn_slice_of(e->atom, strlen(e->atom))));
    }
    if (e->v.kind == GN_EDF_NIL) {
        EXPECT(s, f.payload.len == 0);
    } else {
        /* the payload is the bytes sent, and decodes with the peer's tables to the value */
        EXPECT(s, slice_eq(f.payload, e->f.payload));
        gn_edf_decode_opts o;
        gn_edf_decode_opts_default(&o);
        o.reg = s->reg;
        o.dict = peer;
        gn_edf_value v;
        size_t used = 0;
        gn_edf_decode_error err;
        rc = gn_edf_decode(&o, s->rx_arena, f.payload.base, f.payload.len, &v, &used, &err);
        if (rc < 0)
            printf("# decode: %s at %zu: %s\n", gn_err_name(rc), err.offset, err.what);
        EXPECT(s, rc == 0 && used == f.payload.len);
        EXPECT(s, rc == 0 && gn_edf_value_equal(&v, &e->v));
        gn_edf_arena_reset(s->rx_arena);
    }
    s->nrx++;
}

static gni_ergo_options opts(const gn_edf_registry *r, const char *node, side *s)
{
    const gni_ergo_callbacks cb = {.on_conn = on_conn,
                                   .on_frame = on_frame,
                                   .on_links = on_links,
                                   .on_conn_down = on_down,
                                   .on_link_error = on_link_error};
    s->reg = r;
    s->min_links = 3;
    s->rx_arena = gn_edf_arena_new(0, 0);
    return ergo_test_options(r, node, "golem-test-cookie", &cb, s);
}

#define NODE_A "beta@127.0.0.1"
#define NODE_B "alpha@127.0.0.1"
#define CACHED "golem_cached"

/* Two registries that number their entries differently (ergo-wire.md d "Dictionaries"). */
static gn_edf_registry *make_reg(bool other_order)
{
    gn_edf_registry *r = gn_edf_registry_new();
    CHECK(r != NULL);
    static const char *const atoms[] = {NODE_A, NODE_B, CACHED};
    if (other_order) {
        CHECK_OK(gn_edf_register_custom(r, "#golemcap/test/Shift", NULL)); /* type ids + 1 */
        for (int i = 2; i >= 0; i--)
            CHECK_OK(gn_edf_register_atom(r, atoms[i], strlen(atoms[i]), NULL));
        CHECK_OK(gn_edf_register_error(r, "golem-reason", 12, NULL)); /* error ids + 1 */
    }
    CHECK_OK(gn_edf_registry_add_ergo(r));
    if (!other_order) {
        for (int i = 0; i < 3; i++)
            CHECK_OK(gn_edf_register_atom(r, atoms[i], strlen(atoms[i]), NULL));
        CHECK_OK(gn_edf_register_error(r, "golem-reason", 12, NULL));
    }
    gn_edf_registry_freeze(r);
    return r;
}

static const gn_edf_type *find_type(const gn_edf_registry *r, const char *name)
{
    const gn_edf_type *t = gn_edf_registry_find(r, name, strlen(name));
    CHECK(t != NULL);
    return t;
}

/* Sends @f with payload value @v (kind NIL: none) from @src to @dst, compressed as @z says,
 * and queues what @dst must see. @f->payload is set here. Returns gni_ergo_conn_send's rc. */
static int send_frame(side *src, side *dst, gni_enp_frame *f, const gn_edf_value *v,
                      const char *atom, const gni_enp_zopts *z, gn_edf_arena *keep)
{
    static uint8_t frame[BIG_LEN + 512], zf[BIG_LEN + 1024];
    f->payload = gn_slice_of(NULL, 0);
    if (v && v->kind != GN_EDF_NIL) {
        /* our own dictionaries: what we announced in our Introduce */
        gn_edf_encode_opts eo = {.dict = gn_edf_registry_dict(src->reg)};
        size_t need = 0;
        CHECK_OK(gn_edf_encoded_len(&eo, v, &need));
        uint8_t *p = gn_edf_arena_alloc(keep, need);
        CHECK(p != NULL);
        gn_buf b;
        gn_buf_init(&b, p, need);
        CHECK_EQ(gn_edf_encode(&eo, v, &b), (long long)need);
        f->payload = gn_slice_of(p, need);
    }
    long n = gni_enp_build(f, frame, sizeof frame);
    CHECK(n > 0);
    const uint8_t *out = frame;
    size_t outlen = (size_t)n;
    uint8_t zmethod = 0;
    if (z && gni_enp_should_compress(f->type, (size_t)n, z)) {
        long zn = gni_enp_compress(frame, (size_t)n, z->method, z->level, zf, sizeof zf);
        CHECK(zn > 0);
        CHECK(zn < n); /* the test payloads compress */
        out = zf;
        outlen = (size_t)zn;
        zmethod = z->method;
    }
    int rc = gni_ergo_conn_send(src->c, 1001, true, out, outlen);
    if (rc == 0) {
        CHECK(dst->nexp < MAX_EXPECT);
        expect *e = &dst->exp[dst->nexp++];
        memset(e, 0, sizeof *e);
        e->f = *f;
        if (v)
            e->v = *v;
        e->atom = atom;
        e->zmethod = zmethod;
    }
    return rc;
}

static uint16_t atom_id(const gn_edf_registry *r, const char *s)
{
    uint16_t id = 0;
    CHECK_OK(gn_edf_dict_find_id(gn_edf_registry_dict(r), GN_EDF_DICT_ATOM, s, strlen(s), &id));
    return id;
}

/* One frame of every ENP R1 message type from @src to @dst (ergo-wire.md c). */
static void send_every_type(side *src, side *dst, const char *src_node, gn_edf_arena *a)
{
    const gn_edf_registry *r = src->reg;
    const uint64_t ref[3] = {0x28946, 0x63a7, 7}, alias[3] = {0x11, 0x22, 0x33};
    gn_edf_value pid, str, num, bin, err, ev, link, spawn, fl;
    gn_edf_set_pid(&pid, src_node, strlen(src_node), 1004, 1795235514); /* node: atom-cache id */
    gn_edf_set_string(&str, "hello ergo", 10);
    CHECK_OK(gn_edf_set_int(&num, GN_EDF_INT64, -42));
    static const uint8_t blob[64] = {1, 2, 3, 4, 5};
    gn_edf_set_binary(&bin, blob, sizeof blob);
    gn_edf_set_error(&err, "golem-reason", 12); /* sent as an error-cache id */
    gn_edf_set_atom(&ev, CACHED, strlen(CACHED));  /* an atom-cache id */
    gn_edf_set_float64(&fl, 2.5);
    /* 199 bodies: registered structs, written as reg-cache ids */
    CHECK_OK(gn_edf_set_composite(&link, a, find_type(r, GN_EDF_ERGO_PROTO_PREFIX "MessageLinkPID"),
                                  0));
    gn_edf_set_pid(&link.u.items[0], src_node, strlen(src_node), 1004, 1795235514);
    gn_edf_set_pid(&link.u.items[1], NODE_A, strlen(NODE_A), 1006, 1795235514);
    gn_edf_set_ref(&link.u.items[2], src_node, strlen(src_node), 1795235514, ref);
    CHECK_OK(gn_edf_set_composite(&spawn, a, find_type(r, GN_EDF_ERGO_MESSAGE_SPAWN), 0));
    gn_edf_set_atom(&spawn.u.items[0], "remote_worker", 13);
    gn_edf_value *ox = &spawn.u.items[1];
    CHECK_OK(gn_edf_set_composite(ox, a, find_type(r, GN_EDF_ERGO_PROCESS_OPTIONS_EXTRA), 0));
    gn_edf_value *po = &ox->u.items[0];
    CHECK_OK(gn_edf_set_composite(po, a, find_type(r, GN_EDF_ERGO_PROCESS_OPTIONS), 0));
    CHECK_OK(gn_edf_set_int(&po->u.items[0], GN_EDF_INT64, 100));          /* MailboxSize */
    gn_edf_set_pid(&po->u.items[1], "", 0, 0, 0);                          /* Leader */
    CHECK_OK(gn_edf_set_nil_of(&po->u.items[2], po->type->fields[2].type)); /* Env */
    gn_edf_value *cz = &po->u.items[3];
    CHECK_OK(gn_edf_set_composite(cz, a, find_type(r, GN_EDF_ERGO_COMPRESSION), 0));
    gn_edf_set_bool(&cz->u.items[0], true);
    gn_edf_set_string(&cz->u.items[1], "gzip", 4);
    CHECK_OK(gn_edf_set_type(&cz->u.items[1], find_type(r, GN_EDF_ERGO_COMPRESSION_TYPE)));
    CHECK_OK(gn_edf_set_int(&cz->u.items[2], GN_EDF_INT, 1));
    CHECK_OK(gn_edf_set_type(&cz->u.items[2], find_type(r, GN_EDF_ERGO_COMPRESSION_LEVEL)));
    CHECK_OK(gn_edf_set_int(&cz->u.items[3], GN_EDF_INT, 1024));
    CHECK_OK(gn_edf_set_int(&po->u.items[4], GN_EDF_INT, 2));
    CHECK_OK(gn_edf_set_type(&po->u.items[4], find_type(r, GN_EDF_ERGO_MESSAGE_PRIORITY)));
    gn_edf_set_bool(&po->u.items[5], true);
    gn_edf_value *fb = &po->u.items[6];
    CHECK_OK(gn_edf_set_composite(fb, a, find_type(r, GN_EDF_ERGO_PROCESS_FALLBACK), 0));
    gn_edf_set_bool(&fb->u.items[0], false);
    gn_edf_set_atom(&fb->u.items[1], "", 0);
    gn_edf_set_string(&fb->u.items[2], "", 0);
    gn_edf_set_bool(&po->u.items[7], false);
    gn_edf_set_bool(&po->u.items[8], true);
    CHECK_OK(gn_edf_set_int(&po->u.items[9], GN_EDF_INT, 3));
    CHECK_OK(gn_edf_set_type(&po->u.items[9], find_type(r, GN_EDF_ERGO_LOG_LEVEL)));
    gn_edf_set_pid(&ox->u.items[1], src_node, strlen(src_node), 1004, 1795235514);
    gn_edf_set_pid(&ox->u.items[2], src_node, strlen(src_node), 1, 1795235514);
    CHECK_OK(gn_edf_set_nil_of(&ox->u.items[3], ox->type->fields[3].type));
    CHECK_OK(gn_edf_set_int(&ox->u.items[4], GN_EDF_INT, 0));
    CHECK_OK(gn_edf_set_type(&ox->u.items[4], find_type(r, GN_EDF_ERGO_LOG_LEVEL)));
    gn_edf_set_atom(&ox->u.items[5], "", 0);
    gn_edf_set_atom(&ox->u.items[6], CACHED, strlen(CACHED));
    gn_edf_value *args = &ox->u.items[7];
    CHECK_OK(gn_edf_set_composite(args, a, ox->type->fields[7].type, 2));
    gn_edf_set_string(&args->u.items[0], "golem-arg", 9);
    CHECK_OK(gn_edf_set_int(&args->u.items[1], GN_EDF_INT, 42));
    gn_edf_set_ref(&spawn.u.items[2], src_node, strlen(src_node), 1795235514, ref);

    gni_enp_frame f;
    const gn_slice ev_name = gn_slice_of("golem_event", 11), proc = gn_slice_of("receiver", 8);
    uint16_t cached = atom_id(r, CACHED);
#define F0(t) (memset(&f, 0, sizeof f), f.type = (t))
#define SEND(v, atom)                                                                        \
    do {                                                                                     \
        f.order = f.order ? f.order : gni_enp_default_order(&f, true);                       \
        CHECK_OK(send_frame(src, dst, &f, (v), (atom), NULL, a));                            \
    } while (0)
    F0(GNI_ENP_MSG_PID), f.from = 1004, f.to = 1005, f.flags = GNI_ENP_PRIO_HIGH;
    SEND(&pid, NULL);
    F0(GNI_ENP_MSG_NAME), f.from = 1004, f.name = proc;
    SEND(&str, NULL);
    F0(GNI_ENP_MSG_NAME_CACHE), f.from = 1004, f.atom_id = cached;
    SEND(&num, CACHED);
    F0(GNI_ENP_MSG_ALIAS), f.from = 1004, f.flags = GNI_ENP_FLAG_IMPORTANT, f.ref[0] = 99;
    memcpy(f.alias, alias, sizeof alias);
    SEND(&bin, NULL);
    F0(GNI_ENP_MSG_EVENT), f.from = 1004, f.name = ev_name, f.timestamp = 1733400000000000000;
    SEND(&ev, NULL);
    F0(GNI_ENP_MSG_EVENT_CACHE), f.from = 1004, f.atom_id = cached, f.timestamp = 5;
    SEND(&fl, CACHED);
    F0(GNI_ENP_MSG_EXIT), f.from = 1004, f.to = 1006, f.flags = 1;
    SEND(&err, NULL);
    F0(GNI_ENP_REQ_PID), f.from = 1004, f.to = 1005;
    memcpy(f.ref, ref, sizeof ref);
    SEND(&str, NULL);
    F0(GNI_ENP_REQ_NAME), f.from = 1004, f.name = proc, f.flags = GNI_ENP_PRIO_MAX;
    memcpy(f.ref, ref, sizeof ref);
    SEND(&pid, NULL);
    F0(GNI_ENP_REQ_NAME_CACHE), f.from = 1004, f.atom_id = cached;
    memcpy(f.ref, ref, sizeof ref);
    SEND(&link, CACHED);
    F0(GNI_ENP_REQ_ALIAS), f.from = 1004;
    memcpy(f.ref, ref, sizeof ref);
    memcpy(f.alias, alias, sizeof alias);
    SEND(&num, NULL);
    F0(GNI_ENP_RESPONSE), f.from = 1005, f.to = 1004;
    memcpy(f.ref, ref, sizeof ref);
    SEND(&spawn, NULL);
    F0(GNI_ENP_RESPONSE_ERROR), f.from = 1005, f.to = 1004, f.code = GNI_ENP_RC_UNKNOWN;
    memcpy(f.ref, ref, sizeof ref);
    SEND(NULL, NULL);
    F0(GNI_ENP_RESPONSE_ERROR), f.from = 1005, f.to = 1004, f.code = GNI_ENP_RC_ERROR;
    memcpy(f.ref, ref, sizeof ref);
    SEND(&err, NULL);
    F0(GNI_ENP_TERM_PID), f.to = 1006;
    SEND(&err, NULL);
    F0(GNI_ENP_TERM_NAME), f.name = proc;
    SEND(&err, NULL);
    F0(GNI_ENP_TERM_NAME_CACHE), f.atom_id = cached;
    SEND(&err, CACHED);
    F0(GNI_ENP_TERM_ALIAS);
    memcpy(f.alias, alias, sizeof alias);
    SEND(&err, NULL);
    F0(GNI_ENP_TERM_EVENT), f.name = ev_name;
    SEND(&err, NULL);
    F0(GNI_ENP_TERM_EVENT_CACHE), f.atom_id = cached;
    SEND(&err, CACHED);
    F0(GNI_ENP_ANY), f.order = gni_enp_any_order(GNI_ENP_ANY_LINK_PID, false, 1006);
    SEND(&link, NULL);
    F0(GNI_ENP_ANY);
    SEND(&spawn, NULL);
#undef SEND
#undef F0
}

static void expect_all_arrived(side *s)
{
    RUN_UNTIL(s->nrx == s->nexp || s->bad > 0);
    CHECK_EQ(s->bad, 0);
    CHECK_EQ(s->nrx, s->nexp);
}

/* one 101 frame with a @len-byte binary from 1004, compressed by @z's rule */
static void send_sized(side *src, side *dst, size_t len, const gni_enp_zopts *z, gn_edf_arena *a)
{
    uint8_t *p = gn_edf_arena_alloc(a, len);
    CHECK(p != NULL);
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)("golem ergo pool "[i % 16]);
    gn_edf_value *v = gn_edf_arena_alloc(a, sizeof *v);
    CHECK(v != NULL);
    gn_edf_set_binary(v, p, len);
    gni_enp_frame f;
    memset(&f, 0, sizeof f);
    f.type = GNI_ENP_MSG_PID;
    f.from = 1004;
    f.to = 1005;
    f.order = gni_enp_default_order(&f, true);
    CHECK_OK(send_frame(src, dst, &f, v, NULL, z, a));
}

typedef struct pair {
    gn_edf_registry *ra, *rb;
    side a, b;
    gn_edf_arena *keep;
} pair;

/* A (acceptor, MaxMessageSize @a_max) and B (dialler), connected with a pool of 3. */
static void pair_up(pair *p, uint64_t a_max)
{
    ergo_test_block_sigpipe();
    CHECK_OK(uv_loop_init(&loop));
    memset(p, 0, sizeof *p);
    p->ra = make_reg(false);
    p->rb = make_reg(true);
    p->keep = gn_edf_arena_new(0, 0);
    gni_ergo_options oa = opts(p->ra, NODE_A, &p->a), ob = opts(p->rb, NODE_B, &p->b);
    oa.pool_size = 3;
    oa.max_message_size = a_max;
    CHECK_OK(gni_ergo_node_new(&loop, &oa, &p->a.n));
    CHECK_OK(gni_ergo_node_new(&loop, &ob, &p->b.n));
    CHECK_OK(gni_ergo_dial(p->b.n, "127.0.0.1", gni_ergo_node_port(p->a.n), NODE_A));
    RUN_UNTIL(p->a.c && p->b.c && gni_ergo_conn_links(p->a.c) == 3 &&
              gni_ergo_conn_links(p->b.c) == 3);
    CHECK_EQ(p->a.link_errors + p->b.link_errors, 0);
}

static void pair_down(pair *p)
{
    closed = 0;
    gni_ergo_node_close(p->b.n, on_closed, NULL);
    gni_ergo_node_close(p->a.n, on_closed, NULL);
    RUN_UNTIL(closed == 2);
    CHECK_EQ(p->a.downs, 1);
    CHECK_EQ(p->b.downs, 1);
    CHECK_EQ(uv_run(&loop, UV_RUN_NOWAIT), 0);
    CHECK_OK(uv_loop_close(&loop));
    gn_edf_arena_free(p->keep);
    gn_edf_arena_free(p->a.rx_arena);
    gn_edf_arena_free(p->b.rx_arena);
    gn_edf_registry_free(p->ra);
    gn_edf_registry_free(p->rb);
}

/* The peer's dictionaries come from its Introduce, per connection. */
static void check_peer_dicts(pair *p)
{
    const gn_edf_dict *da = gni_ergo_conn_peer_dict(p->a.c), *db = gni_ergo_conn_peer_dict(p->b.c);
    CHECK(da && db && da != db);
    CHECK(gni_ergo_conn_peer_dict(NULL) == NULL);
    for (int k = 0; k < 3; k++) {
        CHECK_EQ(gn_edf_dict_count(da, (gn_edf_dict_kind)k),
                 gn_edf_dict_count(gn_edf_registry_dict(p->rb), (gn_edf_dict_kind)k));
        CHECK_EQ(gn_edf_dict_count(db, (gn_edf_dict_kind)k),
                 gn_edf_dict_count(gn_edf_registry_dict(p->ra), (gn_edf_dict_kind)k));
    }
    /* the two sides number the same atom differently: each decodes with the other's table */
    uint16_t ia = atom_id(p->ra, CACHED), ib = atom_id(p->rb, CACHED), got = 0;
    CHECK(ia != ib);
    CHECK_OK(gn_edf_dict_find_id(da, GN_EDF_DICT_ATOM, CACHED, strlen(CACHED), &got));
    CHECK_EQ(got, ib);
    CHECK_OK(gn_edf_dict_find_id(db, GN_EDF_DICT_ATOM, CACHED, strlen(CACHED), &got));
    CHECK_EQ(got, ia);
}

GN_TEST(every_type_both_ways)
{
    pair p;
    pair_up(&p, 0);
    check_peer_dicts(&p);
    send_every_type(&p.b, &p.a, NODE_B, p.keep);
    send_every_type(&p.a, &p.b, NODE_A, p.keep);
    CHECK_EQ(p.a.nexp, 22); /* 101-107, 121-124, 129, 130 twice, 181-186, 199 twice */
    expect_all_arrived(&p.a);
    expect_all_arrived(&p.b);
    pair_down(&p);
}

GN_TEST(compression_off_and_on)
{
    pair p;
    pair_up(&p, 0);
    static const uint8_t methods[] = {GNI_ENP_Z_GZIP, GNI_ENP_Z_ZLIB, GNI_ENP_Z_LZW};
    /* off: a large frame goes plain */
    gni_enp_zopts off = {.enable = false, .method = GNI_ENP_Z_GZIP};
    send_sized(&p.b, &p.a, BIG_LEN, &off, p.keep);
    CHECK_EQ(p.a.exp[p.a.nexp - 1].zmethod, 0);
    for (size_t m = 0; m < sizeof methods; m++) {
        gni_enp_zopts on = {.enable = true, .method = methods[m], .threshold = 1024};
        send_sized(&p.b, &p.a, BIG_LEN, &on, p.keep);             /* compressed */
        CHECK_EQ(p.a.exp[p.a.nexp - 1].zmethod, methods[m]);
        send_sized(&p.b, &p.a, SMALL_LEN, &on, p.keep);           /* below threshold: plain */
        CHECK_EQ(p.a.exp[p.a.nexp - 1].zmethod, 0);
        send_sized(&p.a, &p.b, BIG_LEN, &on, p.keep);             /* the other way */
        CHECK_EQ(p.b.exp[p.b.nexp - 1].zmethod, methods[m]);
        /* exactly at the threshold (33 + 5 header/tag bytes + payload = 1024): plain */
        send_sized(&p.a, &p.b, 1024 - 33 - 5, &on, p.keep);
        CHECK_EQ(p.b.exp[p.b.nexp - 1].zmethod, 0);
        send_sized(&p.a, &p.b, 1024 - 33 - 5 + 1, &on, p.keep);   /* one above: compressed */
        CHECK_EQ(p.b.exp[p.b.nexp - 1].zmethod, methods[m]);
    }
    expect_all_arrived(&p.a);
    expect_all_arrived(&p.b);
    pair_down(&p);
}

static void send_seq(side *s, int64_t *seq, unsigned per_sender)
{
    ergo_test_send_batch(s->c, seq, NSEND, per_sender);
}

static unsigned total(const side *s) { return s->got[0] + s->got[1] + s->got[2]; }

GN_TEST(order_max_message_size_and_link_loss)
{
    pair p;
    pair_up(&p, 4096);
    p.a.seq_mode = p.b.seq_mode = true;
    /* per-sender order over three links, both ways */
    int64_t seq_b[NSEND] = {0}, seq_a[NSEND] = {0};
    send_seq(&p.b, seq_b, 200);
    send_seq(&p.a, seq_a, 200);
    RUN_UNTIL(total(&p.a) == 600 && total(&p.b) == 600);
    CHECK(!p.a.out_of_order && !p.b.out_of_order);
    CHECK_EQ(p.a.bad + p.b.bad, 0);

    /* MaxMessageSize on send: above A's announced 4096 is refused locally, nothing sent */
    CHECK_EQ(gni_ergo_conn_info(p.b.c)->peer_max_message_size, 4096);
    static uint8_t big[4097];
    frame101(big, 1001, 0);
    big[2] = 0, big[3] = 0, big[4] = 0x10, big[5] = 0x01; /* 4097 */
    CHECK_EQ(gni_ergo_conn_send(p.b.c, 1001, true, big, sizeof big), GN_ETOOBIG);
    /* forced onto the wire (B's local check sees 42 bytes, the header says 4097): A closes
     * that one link with a clear error; the connection lives on its other two links, and B
     * re-joins */
    CHECK_OK(gni_ergo_conn_send(p.b.c, 1001, true, big, 42));
    RUN_UNTIL(p.a.link_errors == 1);
    CHECK_EQ(p.a.last_err, GN_EFRAMESIZE);
    CHECK(strstr(p.a.diag, "MaxMessageSize") != NULL);
    CHECK(strstr(p.a.diag, "4097") != NULL);
    CHECK_EQ(p.a.min_links, 2);
    CHECK_EQ(p.a.downs + p.b.downs, 0);
    RUN_UNTIL(gni_ergo_conn_links(p.a.c) == 3 && gni_ergo_conn_links(p.b.c) == 3);
    unsigned before = total(&p.a);
    send_seq(&p.b, seq_b, 20);
    RUN_UNTIL(total(&p.a) == before + 60);
    CHECK(!p.a.out_of_order);

    /* a joined link killed mid-stream: frames on it are lost with it, the others keep
     * their order, the dialler re-joins and every later frame arrives */
    p.a.min_links = 3;
    send_seq(&p.b, seq_b, 100);
    uv_run(&loop, UV_RUN_NOWAIT); /* part of the stream is on the wire */
    CHECK_OK(gni_ergo_conn_kill_link(p.a.c, 1));
    CHECK_EQ(gni_ergo_conn_links(p.a.c), 2);
    send_seq(&p.b, seq_b, 100);
    RUN_UNTIL(gni_ergo_conn_links(p.a.c) == 3 && gni_ergo_conn_links(p.b.c) == 3);
    CHECK(!p.a.out_of_order || p.a.min_links == 2);
    /* a sender whose link count changed moved to another link (as in Ergo), so frames
     * still in flight on its old link may arrive after its new ones: order is per link
     * set. Once those have landed, the new link set keeps every sender's order again. */
    RUN_FOR(200);
    p.a.out_of_order = false;
    before = total(&p.a);
    send_seq(&p.b, seq_b, 50);
    RUN_UNTIL(total(&p.a) == before + 150 && p.a.last_seq[0] == seq_b[0] &&
              p.a.last_seq[1] == seq_b[1] && p.a.last_seq[2] == seq_b[2]);
    CHECK(!p.a.out_of_order);
    CHECK_EQ(p.a.min_links, 2);
    CHECK_EQ(p.a.downs + p.b.downs, 0);
    CHECK_EQ(p.a.conns, 1);
    CHECK_EQ(p.a.bad + p.b.bad, 0);
    pair_down(&p);
}

GN_TEST_MAIN(GN_T(every_type_both_ways), GN_T(compression_off_and_on),
             GN_T(order_max_message_size_and_link_loss))
