/*
 * ergo_node_send_test: the Ergo node's send paths beyond the first slice
 * (docs/ergo-node.md, the items that left "Not there yet"), two gn_node
 * instances on one loop over Ergo TCP (embedded registrar):
 *  (a) frames waiting for their node's connection that the carrier refuses
 *      when it comes up (the remote's MaxMessageSize): the important send
 *      and the call waiting on them end at once with GN_ETOOBIG, not by
 *      their (long) timeout; a plain one is dropped; later sends work; a
 *      compressed one that fits while its plain size does not (102) too;
 *  (b) error answers (130 code 255) carry their whole text (EDF's 32767
 *      bytes), not the first 255;
 *  (c) compressed sends: a process's gen.Compression (gzip, zlib, LZW,
 *      threshold) applied to its sends, calls, answers and events, in both
 *      directions; each compressed frame checked against the captured Go
 *      frames enp_compress_{gzip,zlib,lzw}.hex (type 200, method, order
 *      byte, original length, and the inflated frame field by field with the
 *      same payload bytes), and enp_compress_below_threshold.hex sent plain;
 *      bad settings refused;
 *  (d) the atom cache on send: a name in the sender's announced atom cache
 *      goes as its id (103, 123, and 106, 183, 186 for events and
 *      terminations), checked against enp_send_processid_cached.hex,
 *      enp_event_cached_monitor_fire_down.hex and
 *      enp_monitor_processid_cached_down.hex; the other side, without it,
 *      names it inline (102, 122).
 */
#define _XOPEN_SOURCE 700
#include "gn_test.h"

#define GN_TNODE_EXTRA gn_ergo_node *en;
#include "golemnet/ergo.h"
#include "enp.h"
#include "ergo_node_int.h"
#include "gn_tnode.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- processes ------------------------------------------------------------------------- */

typedef struct rproc {
    gn_ergo_proc *p;
    unsigned got, calls;
    size_t last_len;        /* bytes of the last string or binary received */
    uint8_t last[4096];     /* its first bytes */
    const char *fail_text;  /* answer calls with this error text; NULL: echo the value */
    unsigned events;        /* gen.MessageEvent values received */
    size_t event_len;       /* bytes of the last event's string message */
    unsigned downs;         /* DOWN signals */
    gn_ergo_target_kind down_kind;
    char down_name[256], down_reason[64];
} rproc;

static void on_sig(gn_ergo_proc *p, void *arg, const gn_ergo_signal *s)
{
    (void)p;
    rproc *r = arg;
    if (s->kind != GN_ERGO_SIG_DOWN)
        return;
    r->downs++;
    r->down_kind = s->target.kind;
    snprintf(r->down_name, sizeof r->down_name, "%s", s->target.name);
    snprintf(r->down_reason, sizeof r->down_reason, "%s", s->reason);
}

static void on_msg(gn_ergo_proc *p, void *arg, const gn_ergo_msg *m)
{
    rproc *r = arg;
    r->got++;
    const gn_edf_value *v = m->value;
    r->last_len = 0;
    if (v->kind == GN_EDF_STRING || v->kind == GN_EDF_BINARY) {
        r->last_len = v->u.bytes.len;
        memcpy(r->last, v->u.bytes.base,
               v->u.bytes.len < sizeof r->last ? v->u.bytes.len : sizeof r->last);
    }
    if (m->to_kind == GN_ERGO_TO_EVENT && v->kind == GN_EDF_STRUCT) {
        const gn_edf_value *ef = gn_edf_items(v);
        r->events++;
        r->event_len = ef[2].kind == GN_EDF_STRING ? ef[2].u.bytes.len : 0;
    }
    if (!m->call)
        return;
    r->calls++;
    if (r->fail_text)
        CHECK_OK(gn_ergo_reply_error(p, &m->from, &m->ref, r->fail_text));
    else
        CHECK_OK(gn_ergo_reply(p, &m->from, &m->ref, v));
}

typedef struct res {
    unsigned n;
    int status;
    gn_time at;
} res;

static void on_result(void *arg, int status, const char *text)
{
    (void)text;
    res *r = arg;
    r->n++;
    r->status = status;
    r->at = gn_now();
}

typedef struct cres {
    unsigned n;
    int status;
    gn_time at;
    size_t len;          /* reply string/binary length, or error text length */
    char text[40000];    /* the error text */
    uint8_t reply[4096]; /* the reply's first bytes */
} cres;

static void on_reply(void *arg, int status, const gn_edf_value *v, const char *text)
{
    cres *c = arg;
    c->n++;
    c->status = status;
    c->at = gn_now();
    c->len = 0;
    c->text[0] = '\0';
    if (text) {
        c->len = strlen(text);
        CHECK(c->len < sizeof c->text);
        memcpy(c->text, text, c->len + 1);
    }
    if (v && (v->kind == GN_EDF_STRING || v->kind == GN_EDF_BINARY)) {
        c->len = v->u.bytes.len;
        memcpy(c->reply, v->u.bytes.base,
               v->u.bytes.len < sizeof c->reply ? v->u.bytes.len : sizeof c->reply);
    }
}

typedef struct want {
    const unsigned *n;
    unsigned min;
} want;
static bool reached(void *arg)
{
    want *w = arg;
    return *w->n >= w->min;
}
#define WAIT_FOR(counter, count) \
    do { want w_ = {&(counter), (count)}; CHECK(run_until(reached, &w_, 8000)); } while (0)

/* ---- nodes ------------------------------------------------------------------------------ */

static bool comp_up(void *arg) { return gn_ergo_node_name(((tnode *)arg)->en)[0] != '\0'; }

/* atoms alpha / beta register (their announced atom caches), NULL-terminated; NULL: none */
static const char *const *alpha_atoms, *const *beta_atoms;

static int reg_atoms(void *arg, gn_edf_registry *r)
{
    for (const char *const *a = arg; *a; a++) {
        int rc = gn_edf_register_atom(r, *a, strlen(*a), NULL);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void enode_up(tnode *t, uint32_t seed, const char *const *opts, size_t nopt,
                     const char *const *atoms)
{
    nopts o = {0};
    o.protocol_components = "ergo";
    o.options = opts;
    o.n_options = nopt;
    node_up(t, seed, &o);
    gn_ergo_config cfg = {.types = atoms ? reg_atoms : NULL, .types_arg = (void *)atoms};
    CHECK_OK(gn_ergo_attach(t->n, &cfg, &t->en));
    CHECK(run_until(comp_up, t, 5000));
}

static void enode_down(tnode *t)
{
    gn_ergo_detach(t->en);
    t->en = NULL;
    node_down(t);
}

static void spawn(tnode *t, rproc *r, const gn_ergo_proc_opts *o)
{
    memset(r, 0, sizeof *r);
    CHECK_OK(gn_ergo_spawn(t->en, o, on_msg, r, &r->p));
}

static gn_ergo_pid pid_of(const rproc *r)
{
    gn_ergo_pid p;
    gn_ergo_proc_pid(r->p, &p);
    return p;
}

static char regport_opt[64];

#include "ergo_regport.h"

/* alpha (t[0]) and beta (t[1], the registrar) over TCP; @beta_extra: one more option */
static void pair_up(tnode t[2], uint32_t seed, const char *beta_extra)
{
    snprintf(regport_opt, sizeof regport_opt, "ergo.registrar_port=%u",
             (unsigned)free_reg_port());
    const char *oa[] = {"ergo.node=alpha@localhost", "ergo.cookie=golem-test-cookie",
                        "ergo.port=0", regport_opt};
    const char *ob[] = {"ergo.node=beta@localhost", "ergo.cookie=golem-test-cookie",
                        "ergo.port=0", regport_opt, beta_extra};
    enode_up(&t[1], seed + 1, ob, beta_extra ? 5 : 4, beta_atoms);
    enode_up(&t[0], seed, oa, 4, alpha_atoms);
    run_until(never, NULL, 200); /* both register (beta owns the registrar port) */
}

/* ---- captured frames ---------------------------------------------------------------------- */

#include "ergo_vectors.h"

/* the first data line of capture @file */
static size_t vec_first(const char *file, uint8_t *out, size_t cap)
{
    return vec_frame(file, 0, out, cap);
}

/* our frame against data line @idx of @file: type, priority/flags, from, atom id, name,
 * order byte, payload bytes, length */
static void same_cached(const uint8_t *ours, size_t olen, const char *file, int idx)
{
    static uint8_t vb[4096];
    size_t vl = vec_frame(file, idx, vb, sizeof vb);
    gni_enp_frame o, v;
    CHECK_OK(gni_enp_parse(ours, olen, &o, NULL));
    CHECK_OK(gni_enp_parse(vb, vl, &v, NULL));
    CHECK_EQ(o.type, v.type);
    CHECK_EQ(o.flags, v.flags);
    CHECK_EQ(o.from, v.from);
    CHECK_EQ(o.atom_id, v.atom_id);
    CHECK_EQ(o.order, v.order);
    CHECK_EQ(o.payload.len, v.payload.len);
    CHECK(!memcmp(o.payload.base, v.payload.base, o.payload.len));
    CHECK_EQ(olen, vl);
}

typedef struct tap {
    uint8_t f[8192];
    size_t len;
    unsigned n;
} tap;

static void tap_fn(void *ud, bool out, const char *node, const uint8_t *f, size_t len)
{
    (void)node;
    tap *t = ud;
    if (!out || len > sizeof t->f)
        return;
    memcpy(t->f, f, len);
    t->len = len;
    t->n++;
}

/* inflates type-200 frame @z (@zl bytes) into @out and parses it as @in */
static size_t inflate_frame(const uint8_t *z, size_t zl, uint8_t *out, size_t cap,
                            gni_enp_frame *in)
{
    gni_enp_frame zf;
    CHECK_OK(gni_enp_parse(z, zl, &zf, NULL));
    CHECK_EQ(zf.type, GNI_ENP_COMPRESSED);
    long il = gni_enp_inflate(&zf, out, cap, NULL);
    CHECK(il > 0);
    CHECK_OK(gni_enp_parse(out, (size_t)il, in, NULL));
    return (size_t)il;
}

/* our compressed frame against the captured one: the wrapper's fields, then the inflated
 * frames field by field (the captured inner frame's msgref0 holds stale bytes: ignored) */
static void same_compressed(const uint8_t *ours, size_t olen, const char *file, uint8_t method)
{
    static uint8_t vb[8192], oi[8192], vi[8192];
    size_t vlen = vec_first(file, vb, sizeof vb);
    gni_enp_frame o, v, ofi, vfi;
    CHECK_OK(gni_enp_parse(ours, olen, &o, NULL));
    CHECK_OK(gni_enp_parse(vb, vlen, &v, NULL));
    CHECK_EQ(o.type, GNI_ENP_COMPRESSED);
    CHECK_EQ(o.method, method);
    CHECK_EQ(v.method, method);
    CHECK_EQ(o.orig_len, v.orig_len);
    CHECK_EQ(o.order, v.order);
    size_t ol = inflate_frame(ours, olen, oi, sizeof oi, &ofi);
    size_t vl = inflate_frame(vb, vlen, vi, sizeof vi, &vfi);
    CHECK_EQ(ol, vl);
    CHECK_EQ(oi[6], ours[6]); /* the wrapper keeps the inner order byte */
    CHECK_EQ(ofi.type, vfi.type);
    CHECK_EQ(ofi.flags, vfi.flags);
    CHECK_EQ(ofi.from, vfi.from);
    CHECK_EQ(ofi.to, vfi.to);
    CHECK_EQ(ofi.order, vfi.order);
    CHECK_EQ(ofi.payload.len, vfi.payload.len);
    CHECK(!memcmp(ofi.payload.base, vfi.payload.base, ofi.payload.len));
    if (method == GNI_ENP_Z_LZW) { /* LZW is Go's, byte for byte: with the same input
                                    * (the captured frame) it gives the captured stream */
        static uint8_t rz[8192];
        long rl = gni_enp_compress(vi, vl, GNI_ENP_Z_LZW, 0, rz, sizeof rz);
        CHECK_EQ((size_t)rl, vlen);
        CHECK(!memcmp(rz + 8, vb + 8, vlen - 8));
    }
}

/* the string value the captures compressed (their inner frame's payload, decoded) */
static gn_edf_value captured_string(gn_edf_arena *ar)
{
    static uint8_t vb[8192], vi[8192];
    size_t vlen = vec_first("enp_compress_gzip.hex", vb, sizeof vb);
    gni_enp_frame in;
    inflate_frame(vb, vlen, vi, sizeof vi, &in);
    gn_edf_decode_opts o;
    gn_edf_decode_opts_default(&o);
    o.flags = GN_EDF_DECODE_COPY;
    gn_edf_value v;
    CHECK_OK(gn_edf_decode(&o, ar, in.payload.base, in.payload.len, &v, NULL, NULL));
    CHECK_EQ(v.kind, GN_EDF_STRING);
    return v;
}

/* ---- (a) -------------------------------------------------------------------------------- */

GN_TEST(tcp_waiting_frame_refused)
{
    setup();
    tnode t[2];
    pair_up(t, 451, "ergo.max_message_size=4096");
    rproc a, b, z;
    spawn(&t[0], &a, NULL);
    spawn(&t[1], &b, NULL);
    spawn(&t[0], &z, NULL); /* compresses: its 8 KiB frame shrinks below 4096 */
    gn_ergo_compression zc = {.enable = true, .type = GN_ERGO_COMPRESS_GZIP};
    CHECK_OK(gn_ergo_proc_set_compression(z.p, &zc));
    CHECK_OK(gn_ergo_register(b.p, "big"));
    static uint8_t big[8192];
    memset(big, 'x', sizeof big);
    gn_edf_value v, small;
    gn_edf_set_binary(&v, big, sizeof big);
    gn_edf_set_binary(&small, big, 16);
    /* not connected yet: the frames wait for the connection the first send starts; beta
     * announces a MaxMessageSize of 4096, so its carrier refuses them when it comes up */
    gn_ergo_target to = gn_ergo_to_name("beta@localhost", "big");
    res r = {0};
    static cres c;
    memset(&c, 0, sizeof c);
    gn_ergo_send_opts imp = {.important = true, .on_result = on_result, .arg = &r,
                             .timeout = 60 * GN_S};
    gn_ergo_send_opts slow = {.timeout = 60 * GN_S};
    gn_time t0 = gn_now();
    CHECK_OK(gn_ergo_send(a.p, &to, &v, NULL)); /* plain: dropped */
    CHECK_OK(gn_ergo_send(a.p, &to, &v, &imp));
    CHECK_OK(gn_ergo_call(a.p, &to, &v, &slow, on_reply, &c, NULL));
    /* compressed, it fits; plain it does not, and for a send by name (102) Ergo checks
     * both (ergo-wire.md c "MaxMessageSize"): refused as well once beta is up */
    res rz = {0};
    gn_ergo_send_opts impz = {.important = true, .on_result = on_result, .arg = &rz,
                              .timeout = 60 * GN_S};
    CHECK_OK(gn_ergo_send(z.p, &to, &v, &impz));
    CHECK_OK(gn_ergo_send(a.p, &to, &small, NULL)); /* fits: delivered */
    WAIT_FOR(r.n, 1);
    WAIT_FOR(c.n, 1);
    WAIT_FOR(rz.n, 1);
    CHECK_EQ(r.status, GN_ETOOBIG);
    CHECK_EQ(c.status, GN_ETOOBIG);
    CHECK_EQ(rz.status, GN_ETOOBIG);
    CHECK(rz.at - t0 < 20 * GN_S);
    CHECK(r.at - t0 < 20 * GN_S && c.at - t0 < 20 * GN_S); /* not by the 60 s timeout */
    WAIT_FOR(b.got, 1);
    CHECK_EQ(b.last_len, 16u);
    run_until(never, NULL, 100);
    CHECK_EQ(b.got, 1u); /* the large ones never arrived */
    CHECK_EQ(r.n, 1u);
    CHECK_EQ(c.n, 1u);
    /* connected now: the same frames are refused by the send itself */
    CHECK_EQ(gn_ergo_send(a.p, &to, &v, &imp), GN_ETOOBIG);
    CHECK_EQ(gn_ergo_call(a.p, &to, &v, &slow, on_reply, &c, NULL), GN_ETOOBIG);
    CHECK_EQ(gn_ergo_send(z.p, &to, &v, &impz), GN_ETOOBIG);
    CHECK_EQ(rz.n, 1u);
    CHECK_OK(gn_ergo_send(a.p, &to, &small, &imp));
    WAIT_FOR(r.n, 2);
    CHECK_EQ(r.status, 0);
    CHECK_EQ(c.n, 1u);
    enode_down(&t[0]);
    enode_down(&t[1]);
    finish();
}

/* ---- (b) -------------------------------------------------------------------------------- */

GN_TEST(tcp_error_text_whole)
{
    setup();
    tnode t[2];
    pair_up(t, 461, NULL);
    rproc a, b;
    spawn(&t[0], &a, NULL);
    spawn(&t[1], &b, NULL);
    static char text[32768];
    static cres c;
    memset(&c, 0, sizeof c);
    gn_ergo_pid bp = pid_of(&b);
    gn_ergo_target to = gn_ergo_to_pid(&bp);
    gn_edf_value v;
    gn_edf_set_string(&v, "q", 1);
    size_t lens[] = {300, 5000, 32767}; /* EDF's largest error text */
    for (unsigned i = 0; i < 3; i++) {
        for (size_t k = 0; k < lens[i]; k++)
            text[k] = (char)('a' + (k * 7 + i) % 26);
        text[lens[i]] = '\0';
        b.fail_text = text;
        CHECK_OK(gn_ergo_call(a.p, &to, &v, NULL, on_reply, &c, NULL));
        WAIT_FOR(c.n, i + 1);
        CHECK_EQ(c.status, GN_ECALLBACK);
        CHECK_EQ(c.len, lens[i]);
        CHECK(!memcmp(c.text, text, lens[i]));
    }
    /* and the other way, with a local caller too */
    gn_ergo_pid ap = pid_of(&a);
    to = gn_ergo_to_pid(&ap);
    a.fail_text = text;
    CHECK_OK(gn_ergo_call(b.p, &to, &v, NULL, on_reply, &c, NULL));
    WAIT_FOR(c.n, 4);
    CHECK_EQ(c.status, GN_ECALLBACK);
    CHECK_EQ(c.len, 32767u);
    CHECK(!memcmp(c.text, text, 32767));
    enode_down(&t[0]);
    enode_down(&t[1]);
    finish();
}

/* ---- (c) -------------------------------------------------------------------------------- */

GN_TEST(tcp_compressed_sends_both_ways)
{
    setup();
    bool vectors = find_vec_dir();
    tnode t[2];
    pair_up(t, 471, NULL);
    /* bad settings */
    rproc bad;
    gn_ergo_proc_opts bo = {.compression = {.enable = true, .threshold = 100}};
    CHECK_EQ(gn_ergo_spawn(t[0].en, &bo, on_msg, &bad, &bad.p), GN_EINVAL);
    bo.compression.threshold = 0;
    bo.compression.type = (gn_ergo_compression_type)3;
    CHECK_EQ(gn_ergo_spawn(t[0].en, &bo, on_msg, &bad, &bad.p), GN_EINVAL);
    /* process 1004 on each side, as in the captures */
    rproc a[4], b[4];
    for (int i = 0; i < 4; i++) {
        spawn(&t[0], &a[i], NULL);
        spawn(&t[1], &b[i], NULL);
    }
    rproc *pa = &a[3], *pb = &b[3];
    CHECK_EQ(pid_of(pb).id, 1004u);
    gn_ergo_compression z;
    gn_ergo_proc_compression(pa->p, &z);
    CHECK(!z.enable);
    CHECK_EQ(z.threshold, GN_ERGO_COMPRESS_THRESHOLD_DEFAULT);
    gn_ergo_compression low = {.enable = true, .threshold = 1023};
    CHECK_EQ(gn_ergo_proc_set_compression(pa->p, &low), GN_EINVAL);
    gn_ergo_compression lvl = {.enable = true, .level = (gn_ergo_compression_level)3};
    CHECK_EQ(gn_ergo_proc_set_compression(pa->p, &lvl), GN_EINVAL);
    tap ta = {0}, tb = {0};
    gni_ergo_node_set_tap(t[0].en, tap_fn, &ta);
    gni_ergo_node_set_tap(t[1].en, tap_fn, &tb);
    gn_edf_arena *ar = gn_edf_arena_new(0, 0);
    gn_edf_value s2300;
    if (vectors) {
        s2300 = captured_string(ar);
    } else {
        static char s[2300];
        for (int i = 0; i < 2300; i++)
            s[i] = "golem-compression-test "[i % 23];
        gn_edf_set_string(&s2300, s, sizeof s);
    }
    CHECK_EQ(s2300.u.bytes.len, 2300u);
    gn_ergo_pid bp = pid_of(pb);
    gn_ergo_target to = gn_ergo_to_pid(&bp);
    /* first a plain send: it connects */
    CHECK_OK(gn_ergo_send(pa->p, &to, &s2300, NULL));
    WAIT_FOR(pb->got, 1);
    CHECK_EQ(ta.f[7], GNI_ENP_MSG_PID);
    CHECK_EQ(ta.len, 2336u);
    /* gzip, zlib, LZW: the 2336-byte MessagePID of the captures goes out compressed */
    static const struct {
        gn_ergo_compression_type type;
        uint8_t method;
        const char *file;
    } m[] = {{GN_ERGO_COMPRESS_GZIP, GNI_ENP_Z_GZIP, "enp_compress_gzip.hex"},
             {GN_ERGO_COMPRESS_ZLIB, GNI_ENP_Z_ZLIB, "enp_compress_zlib.hex"},
             {GN_ERGO_COMPRESS_LZW, GNI_ENP_Z_LZW, "enp_compress_lzw.hex"}};
    for (unsigned i = 0; i < 3; i++) {
        gn_ergo_compression zc = {.enable = true, .type = m[i].type};
        CHECK_OK(gn_ergo_proc_set_compression(pa->p, &zc));
        unsigned n = ta.n;
        CHECK_OK(gn_ergo_send(pa->p, &to, &s2300, NULL));
        CHECK_EQ(ta.n, n + 1);
        CHECK_EQ(ta.f[7], GNI_ENP_COMPRESSED);
        CHECK(ta.len < 600u);
        if (vectors)
            same_compressed(ta.f, ta.len, m[i].file, m[i].method);
        WAIT_FOR(pb->got, i + 2);
        CHECK_EQ(pb->last_len, 2300u);
        CHECK(!memcmp(pb->last, s2300.u.bytes.base, 2300));
    }
    /* below the threshold: plain (the capture's 536-byte frame: 500 'x') */
    static char xs[500];
    memset(xs, 'x', sizeof xs);
    gn_edf_value s500;
    gn_edf_set_string(&s500, xs, sizeof xs);
    CHECK_OK(gn_ergo_send(pa->p, &to, &s500, NULL));
    CHECK_EQ(ta.f[7], GNI_ENP_MSG_PID);
    CHECK_EQ(ta.len, 536u);
    if (vectors) {
        static uint8_t vb[2048];
        CHECK_EQ(vec_first("enp_compress_below_threshold.hex", vb, sizeof vb), 536u);
        CHECK_EQ(vb[7], GNI_ENP_MSG_PID);
        CHECK(!memcmp(ta.f + 33, vb + 33, 536 - 33)); /* the same payload bytes */
    }
    WAIT_FOR(pb->got, 5);
    CHECK_EQ(pb->last_len, 500u);
    /* a higher threshold keeps the 2336-byte frame plain */
    gn_ergo_compression hi = {.enable = true, .threshold = 4096};
    CHECK_OK(gn_ergo_proc_set_compression(pa->p, &hi));
    CHECK_OK(gn_ergo_send(pa->p, &to, &s2300, NULL));
    CHECK_EQ(ta.f[7], GNI_ENP_MSG_PID);
    WAIT_FOR(pb->got, 6);
    /* calls and answers, the other way: beta's process compresses (LZW, gzip at best
     * size), alpha's answers plain; then alpha's compressed call, answered compressed */
    gn_ergo_compression lz = {.enable = true, .type = GN_ERGO_COMPRESS_LZW};
    CHECK_OK(gn_ergo_proc_set_compression(pb->p, &lz));
    CHECK_OK(gn_ergo_proc_set_compression(pa->p, NULL));
    gn_ergo_pid ap = pid_of(pa);
    gn_ergo_target toa = gn_ergo_to_pid(&ap);
    static cres c;
    memset(&c, 0, sizeof c);
    CHECK_OK(gn_ergo_call(pb->p, &toa, &s2300, NULL, on_reply, &c, NULL));
    CHECK_EQ(tb.f[7], GNI_ENP_COMPRESSED);
    CHECK_EQ(tb.f[8], GNI_ENP_Z_LZW);
    gni_enp_frame zf;
    CHECK_OK(gni_enp_parse(tb.f, tb.len, &zf, NULL));
    CHECK_EQ(zf.orig_len, 2300u + 3u + 49u); /* a RequestPID */
    CHECK_EQ(tb.f[6], ap.id % 255);
    WAIT_FOR(c.n, 1);
    CHECK_EQ(c.status, 0);
    CHECK_EQ(c.len, 2300u);
    CHECK_EQ(ta.f[7], GNI_ENP_RESPONSE); /* alpha answered plain */
    gn_ergo_compression gz = {.enable = true, .level = GN_ERGO_COMPRESS_LEVEL_SIZE};
    CHECK_OK(gn_ergo_proc_set_compression(pa->p, &gz));
    CHECK_OK(gn_ergo_call(pa->p, &to, &s2300, NULL, on_reply, &c, NULL));
    CHECK_EQ(ta.f[7], GNI_ENP_COMPRESSED);
    CHECK_EQ(ta.f[8], GNI_ENP_Z_GZIP);
    WAIT_FOR(c.n, 2);
    CHECK_EQ(c.status, 0);
    CHECK_EQ(c.len, 2300u);
    CHECK(!memcmp(c.reply, s2300.u.bytes.base, 2300));
    CHECK_EQ(tb.f[7], GNI_ENP_COMPRESSED); /* beta's answer (129) compressed, LZW */
    CHECK_OK(gni_enp_parse(tb.f, tb.len, &zf, NULL));
    CHECK_EQ(zf.orig_len, 2300u + 3u + 49u); /* a MessageResponse */
    static uint8_t in[4096];
    gni_enp_frame inner;
    inflate_frame(tb.f, tb.len, in, sizeof in, &inner);
    CHECK_EQ(inner.type, GNI_ENP_RESPONSE);
    /* an error answer of beta, compressed above the threshold (130 code 255) */
    static char longtext[3000];
    memset(longtext, 'e', sizeof longtext - 1);
    pb->fail_text = longtext;
    CHECK_OK(gn_ergo_call(pa->p, &to, &s500, NULL, on_reply, &c, NULL));
    WAIT_FOR(c.n, 3);
    CHECK_EQ(c.status, GN_ECALLBACK);
    CHECK_EQ(c.len, sizeof longtext - 1);
    CHECK_EQ(tb.f[7], GNI_ENP_COMPRESSED);
    inflate_frame(tb.f, tb.len, in, sizeof in, &inner);
    CHECK_EQ(inner.type, GNI_ENP_RESPONSE_ERROR);
    CHECK_EQ(inner.code, GNI_ENP_RC_ERROR);
    /* an event beta's process publishes: compressed for the remote subscriber (LZW),
     * plain to the local one */
    CHECK_OK(gn_ergo_event_register(pb->p, "zev"));
    gn_ergo_target ev = gn_ergo_to_event("beta@localhost", "zev");
    res mr = {0};
    CHECK_OK(gn_ergo_monitor(pa->p, &ev, on_result, &mr));
    WAIT_FOR(mr.n, 1);
    CHECK_EQ(mr.status, 0);
    CHECK_OK(gn_ergo_monitor(b[0].p, &ev, NULL, NULL));
    CHECK_EQ(gn_ergo_event_publish(pb->p, "zev", &s2300), 2); /* one node, one local */
    CHECK_EQ(tb.f[7], GNI_ENP_COMPRESSED);
    inflate_frame(tb.f, tb.len, in, sizeof in, &inner);
    CHECK_EQ(inner.type, GNI_ENP_MSG_EVENT);
    CHECK_EQ(inner.name.len, 3u);
    WAIT_FOR(pa->events, 1);
    CHECK_EQ(pa->event_len, 2300u);
    WAIT_FOR(b[0].events, 1);
    CHECK_EQ(b[0].event_len, 2300u);
    CHECK_OK(gn_ergo_proc_set_compression(pb->p, NULL)); /* plain again */
    CHECK_EQ(gn_ergo_event_publish(pb->p, "zev", &s500), 2);
    CHECK_EQ(tb.f[7], GNI_ENP_MSG_EVENT);
    WAIT_FOR(pa->events, 2);
    CHECK_EQ(pa->event_len, 500u);
    gni_ergo_node_set_tap(t[0].en, NULL, NULL);
    gni_ergo_node_set_tap(t[1].en, NULL, NULL);
    gn_edf_arena_free(ar);
    enode_down(&t[0]);
    enode_down(&t[1]);
    finish();
    if (!vectors)
        SKIP("frames not compared: shared/vectors/ergo not found (set GN_SHARED_DIR)");
}

/* ---- (d) -------------------------------------------------------------------------------- */

GN_TEST(tcp_name_atom_cache_on_send)
{
    setup();
    bool vectors = find_vec_dir();
    static const char *const atoms[] = {"golem_cached", "alpha@localhost", NULL};
    static const char *const batoms[] = {"golem_event_cached", "golem_named_cached", NULL};
    alpha_atoms = atoms; /* the captures' atom caches (caches.txt): alpha 256, 257 */
    beta_atoms = batoms; /* beta 256, 257 */
    tnode t[2];
    pair_up(t, 481, NULL);
    alpha_atoms = beta_atoms = NULL;
    rproc a[4], b[4];
    for (int i = 0; i < 4; i++) {
        spawn(&t[0], &a[i], NULL);
        spawn(&t[1], &b[i], NULL);
    }
    rproc *pa = &a[3], *pb = &b[3];
    CHECK_OK(gn_ergo_register(pb->p, "golem_cached"));
    CHECK_OK(gn_ergo_register(pa->p, "golem_cached"));
    tap ta = {0}, tb = {0};
    gni_ergo_node_set_tap(t[0].en, tap_fn, &ta);
    gni_ergo_node_set_tap(t[1].en, tap_fn, &tb);
    gn_ergo_target to = gn_ergo_to_name("beta@localhost", "golem_cached");
    gn_edf_value v;
    gn_edf_set_string(&v, "to-cached-name", 14);
    CHECK_OK(gn_ergo_send(pa->p, &to, &v, NULL));
    WAIT_FOR(pb->got, 1);
    CHECK_EQ(pb->last_len, 14u);
    gni_enp_frame o;
    CHECK_OK(gni_enp_parse(ta.f, ta.len, &o, NULL));
    CHECK_EQ(o.type, GNI_ENP_MSG_NAME_CACHE);
    CHECK_EQ(o.atom_id, 256u);
    CHECK_EQ(o.order, pid_of(pa).id % 255);
    if (vectors) {
        static uint8_t vb[256];
        size_t vl = vec_first("enp_send_processid_cached.hex", vb, sizeof vb);
        gni_enp_frame vf;
        CHECK_OK(gni_enp_parse(vb, vl, &vf, NULL));
        CHECK_EQ(ta.len, vl);
        CHECK_EQ(o.type, vf.type);
        CHECK_EQ(o.flags, vf.flags);
        CHECK_EQ(o.from, vf.from);
        CHECK_EQ(o.atom_id, vf.atom_id);
        CHECK_EQ(o.order, vf.order);
        CHECK_EQ(o.payload.len, vf.payload.len);
        CHECK(!memcmp(o.payload.base, vf.payload.base, o.payload.len));
    }
    /* a call by the cached name: 123, answered */
    static cres c;
    memset(&c, 0, sizeof c);
    CHECK_OK(gn_ergo_call(pa->p, &to, &v, NULL, on_reply, &c, NULL));
    CHECK_OK(gni_enp_parse(ta.f, ta.len, &o, NULL));
    CHECK_EQ(o.type, GNI_ENP_REQ_NAME_CACHE);
    CHECK_EQ(o.atom_id, 256u);
    WAIT_FOR(c.n, 1);
    CHECK_EQ(c.status, 0);
    CHECK_EQ(c.len, 14u);
    /* beta did not announce the atom: it names alpha's process inline */
    to = gn_ergo_to_name("alpha@localhost", "golem_cached");
    CHECK_OK(gn_ergo_send(pb->p, &to, &v, NULL));
    WAIT_FOR(pa->got, 1);
    CHECK_OK(gni_enp_parse(tb.f, tb.len, &o, NULL));
    CHECK_EQ(o.type, GNI_ENP_MSG_NAME);
    CHECK_EQ(o.name.len, 12u);
    CHECK_OK(gn_ergo_call(pb->p, &to, &v, NULL, on_reply, &c, NULL));
    CHECK_OK(gni_enp_parse(tb.f, tb.len, &o, NULL));
    CHECK_EQ(o.type, GNI_ENP_REQ_NAME);
    WAIT_FOR(c.n, 2);
    CHECK_EQ(c.status, 0);
    /* a name not in the cache goes inline from alpha too */
    CHECK_OK(gn_ergo_register(b[2].p, "plain"));
    to = gn_ergo_to_name("beta@localhost", "plain");
    CHECK_OK(gn_ergo_send(pa->p, &to, &v, NULL));
    CHECK_OK(gni_enp_parse(ta.f, ta.len, &o, NULL));
    CHECK_EQ(o.type, GNI_ENP_MSG_NAME);
    WAIT_FOR(b[2].got, 1);
    /* beta's cached names in events and terminations: 106, 186, 183 (the captures'
     * enp_event_cached_monitor_fire_down F6 and F9, enp_monitor_processid_cached_down F6) */
    CHECK_OK(gn_ergo_proc_set_signal_cb(pa->p, on_sig, pa));
    CHECK_OK(gn_ergo_event_register(pb->p, "golem_event_cached"));
    gn_ergo_target ev = gn_ergo_to_event("beta@localhost", "golem_event_cached");
    res mr = {0};
    CHECK_OK(gn_ergo_monitor(pa->p, &ev, on_result, &mr));
    WAIT_FOR(mr.n, 1);
    CHECK_EQ(mr.status, 0);
    gn_edf_value seven;
    CHECK_OK(gn_edf_set_int(&seven, GN_EDF_INT32, 7));
    CHECK_EQ(gn_ergo_event_publish(pb->p, "golem_event_cached", &seven), 1);
    CHECK_OK(gni_enp_parse(tb.f, tb.len, &o, NULL));
    CHECK_EQ(o.type, GNI_ENP_MSG_EVENT_CACHE);
    CHECK_EQ(o.atom_id, 256u);
    if (vectors)
        same_cached(tb.f, tb.len, "enp_event_cached_monitor_fire_down.hex", 5);
    WAIT_FOR(pa->events, 1); /* alpha resolved the id with beta's table */
    CHECK_OK(gn_ergo_event_unregister(pb->p, "golem_event_cached"));
    CHECK_OK(gni_enp_parse(tb.f, tb.len, &o, NULL));
    CHECK_EQ(o.type, GNI_ENP_TERM_EVENT_CACHE);
    if (vectors)
        same_cached(tb.f, tb.len, "enp_event_cached_monitor_fire_down.hex", 8);
    WAIT_FOR(pa->downs, 1);
    CHECK_EQ(pa->down_kind, GN_ERGO_TO_EVENT);
    CHECK_STR(pa->down_name, "golem_event_cached");
    CHECK_STR(pa->down_reason, "unregistered");
    CHECK_OK(gn_ergo_register(b[1].p, "golem_named_cached"));
    gn_ergo_target nc = gn_ergo_to_name("beta@localhost", "golem_named_cached");
    CHECK_OK(gn_ergo_monitor(pa->p, &nc, on_result, &mr));
    WAIT_FOR(mr.n, 2);
    CHECK_EQ(mr.status, 0);
    CHECK_OK(gn_ergo_proc_exit(b[1].p, "shutdown"));
    CHECK_OK(gni_enp_parse(tb.f, tb.len, &o, NULL));
    CHECK_EQ(o.type, GNI_ENP_TERM_NAME_CACHE);
    CHECK_EQ(o.atom_id, 257u);
    if (vectors)
        same_cached(tb.f, tb.len, "enp_monitor_processid_cached_down.hex", 5);
    WAIT_FOR(pa->downs, 2);
    CHECK_EQ(pa->down_kind, GN_ERGO_TO_NAME);
    CHECK_STR(pa->down_name, "golem_named_cached");
    CHECK_STR(pa->down_reason, "shutdown");
    gni_ergo_node_set_tap(t[0].en, NULL, NULL);
    gni_ergo_node_set_tap(t[1].en, NULL, NULL);
    enode_down(&t[0]);
    enode_down(&t[1]);
    finish();
    if (!vectors)
        SKIP("frames not compared: shared/vectors/ergo not found (set GN_SHARED_DIR)");
}

GN_TEST_MAIN(GN_T(tcp_waiting_frame_refused), GN_T(tcp_error_text_whole),
             GN_T(tcp_compressed_sends_both_ways), GN_T(tcp_name_atom_cache_on_send))
