/*
 * ehs_test: the EHS R1 handshake core (protocols/ergo/ehs.c) against the
 * handshakes captured between two live Ergo 3.1.0 nodes
 * ($GN_SHARED_DIR/vectors/ergo/handshake.hex, handshake_b.hex,
 * handshake_join.hex; provenance in that directory's README.md, layouts in
 * specs/ergo-wire.md section b). Cookie of the captures: golem-test-cookie.
 *
 * - every message parses and rebuilds to the same bytes;
 * - every digest is recomputed from the recorded salts and matches;
 * - the acceptor and initiator cores, given the recorded salts and
 *   connection IDs as their RNG output, write the recorded bytes (Introduce
 *   dictionaries announced in the captured map order);
 * - both cores against each other (Start, then two Joins; TLS fingerprint);
 * - cookie mismatch refused on both sides, with a diagnostic saying so;
 * - truncation at every offset, and every single-byte corruption, of every
 *   message: no success, no crash, nothing read past the message.
 */
#include "gn_failalloc.h"
#include "gn_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ehs.h"
#include "golemnet/edf.h"
#include "golemnet/err.h"

#define COOKIE "golem-test-cookie"

/* ---- vectors ---------------------------------------------------------------------------- */

typedef struct vmsg {
    char sender[32];
    char conn[8];
    uint8_t *b;
    size_t len;
} vmsg;

typedef struct vfile {
    vmsg m[16];
    size_t n;
} vfile;

static char *read_vector_file(const char *name)
{
    char path[1024];
    const char *dirs[2] = {getenv("GN_SHARED_DIR"), getenv("GN_SOURCE_DIR")};
    for (int i = 0; i < 2; i++) {
        if (!dirs[i])
            continue;
        snprintf(path, sizeof path, i == 0 ? "%s/vectors/ergo/%s" : "%s/../shared/vectors/ergo/%s",
                 dirs[i], name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        char *buf = malloc((size_t)n + 1);
        if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n) {
            buf[n] = '\0';
            fclose(f);
            return buf;
        }
        free(buf);
        fclose(f);
    }
    return NULL;
}

static bool load(const char *name, vfile *vf)
{
    memset(vf, 0, sizeof *vf);
    char *text = read_vector_file(name);
    if (!text)
        return false;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line && vf->n < 16;
         line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#')
            continue;
        char *sp1 = strchr(line, ' ');
        char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
        if (!sp2)
            continue;
        vmsg *m = &vf->m[vf->n++];
        snprintf(m->sender, sizeof m->sender, "%.*s", (int)(sp1 - line), line);
        snprintf(m->conn, sizeof m->conn, "%.*s", (int)(sp2 - sp1 - 1), sp1 + 1);
        size_t hl = strlen(sp2 + 1);
        m->b = malloc(hl / 2 + 1);
        long k = gn_test_unhex(sp2 + 1, m->b, hl / 2 + 1);
        m->len = k > 0 ? (size_t)k : 0;
    }
    free(text);
    return vf->n > 0;
}

static void unload(vfile *vf)
{
    for (size_t i = 0; i < vf->n; i++)
        free(vf->m[i].b);
    vf->n = 0;
}

static gn_edf_registry *make_reg(void)
{
    gn_edf_registry *r = gn_edf_registry_new();
    CHECK(r != NULL);
    CHECK_OK(gn_edf_registry_add_ergo(r));
    gn_edf_registry_freeze(r);
    return r;
}

static gn_slice S(const char *s) { return gn_slice_of(s, strlen(s)); }

static bool sl_is(gn_slice s, const char *str)
{
    return s.len == strlen(str) && (s.len == 0 || memcmp(s.base, str, s.len) == 0);
}

static gni_ehs_msg parse_ok(const gn_edf_registry *r, gn_edf_arena *a, const vmsg *v)
{
    gni_ehs_msg m;
    size_t c = 0;
    CHECK_OK(gni_ehs_parse(r, a, v->b, v->len, false, &m, &c));
    CHECK_EQ(c, v->len);
    return m;
}

static void check_digest(const gn_slice *parts, size_t n, gn_slice got)
{
    char hex[GNI_EHS_DIGEST_LEN];
    gni_ehs_digest(parts, n, NULL, hex);
    CHECK_EQ(got.len, GNI_EHS_DIGEST_LEN);
    CHECK_MEM(got.base, hex, GNI_EHS_DIGEST_LEN);
}

/* ---- deterministic RNG: hands out hex-decoded recorded values -------------------------- */

typedef struct script_rng {
    uint8_t bytes[256];
    size_t len, pos;
    size_t calls;
} script_rng;

static void script_fill(void *ud, uint8_t *out, size_t len)
{
    script_rng *s = ud;
    s->calls++;
    for (size_t i = 0; i < len; i++)
        out[i] = s->pos < s->len ? s->bytes[s->pos++] : (uint8_t)(0xa5 ^ i);
}

static void script_push(script_rng *s, gn_slice hex)
{
    char tmp[130];
    CHECK(hex.len < sizeof tmp);
    memcpy(tmp, hex.base, hex.len);
    tmp[hex.len] = '\0';
    long k = gn_test_unhex(tmp, s->bytes + s->len, sizeof s->bytes - s->len);
    CHECK(k > 0);
    s->len += (size_t)k;
}

/* a dict holding @m's Introduce caches in wire order (what the node announced) */
static gn_edf_dict *dict_of(const gni_ehs_msg *m)
{
    gn_edf_dict *d = gn_edf_dict_new();
    CHECK(d != NULL);
    for (int k = 0; k < 3; k++)
        for (uint32_t i = 0; i < m->ncache[k]; i++)
            CHECK_OK(gn_edf_dict_add(d, (gn_edf_dict_kind)k, m->cache[k][i].id,
                                     (const char *)m->cache[k][i].s.base, m->cache[k][i].s.len));
    return d;
}

static void drain_eq(gni_ehs *h, const uint8_t *want, size_t len)
{
    static uint8_t out[1 << 17];
    gn_buf b;
    gn_buf_init(&b, out, sizeof out);
    gni_ehs_drain(h, &b);
    CHECK_EQ(gn_buf_len(&b), len);
    CHECK_MEM(out, want, len);
}

static void feed_all(gni_ehs *h, const vmsg *v)
{
    size_t c = 0;
    CHECK_OK(gni_ehs_feed(h, v->b, v->len, &c, 0));
    CHECK_EQ(c, v->len);
}

/* ---- tests ------------------------------------------------------------------------------- */

static void roundtrip_file(const char *name, size_t want_n)
{
    vfile vf;
    if (!load(name, &vf))
        SKIP("vectors not found");
    CHECK_EQ(vf.n, want_n);
    gn_edf_registry *r = make_reg();
    gn_edf_arena *a = gn_edf_arena_new(0, 0);
    static uint8_t out[1 << 17];
    for (size_t i = 0; i < vf.n; i++) {
        gni_ehs_msg m = parse_ok(r, a, &vf.m[i]);
        gn_buf b;
        gn_buf_init(&b, out, sizeof out);
        CHECK_EQ(gni_ehs_build(r, a, &m, &b), (int)vf.m[i].len);
        CHECK_MEM(out, vf.m[i].b, vf.m[i].len);
        /* too small an output buffer: GN_ENOSPC, nothing written */
        gn_buf_init(&b, out, vf.m[i].len - 1);
        CHECK_EQ(gni_ehs_build(r, a, &m, &b), GN_ENOSPC);
        CHECK_EQ(gn_buf_len(&b), 0);
    }
    gn_edf_arena_free(a);
    gn_edf_registry_free(r);
    unload(&vf);
}

GN_TEST(parse_build_every_message)
{
    roundtrip_file("handshake.hex", 6);
    roundtrip_file("handshake_join.hex", 4);
    roundtrip_file("handshake_b.hex", 10);
}

GN_TEST(fields_of_the_captured_start)
{
    vfile vf;
    if (!load("handshake.hex", &vf))
        SKIP("vectors not found");
    gn_edf_registry *r = make_reg();
    gn_edf_arena *a = gn_edf_arena_new(0, 0);
    gni_ehs_msg m = parse_ok(r, a, &vf.m[2]);
    CHECK_EQ(m.kind, GNI_EHS_INTRODUCE);
    CHECK(sl_is(m.node, "alpha@localhost"));
    CHECK(sl_is(m.version[0], "golemcap") && sl_is(m.version[1], "1.0"));
    CHECK(sl_is(m.version[2], "") && sl_is(m.version[3], "MIT"));
    CHECK_EQ(m.flags, 0x67);
    CHECK_EQ(m.creation, 1795235515);
    CHECK_EQ(m.max_message_size, 0);
    CHECK_EQ(m.ncache[0], 2);
    CHECK_EQ(m.ncache[1], 125);
    CHECK_EQ(m.ncache[2], 15);
    CHECK_EQ(m.cache[0][0].id, 256);
    CHECK(sl_is(m.cache[0][0].s, "golem_cached"));
    m = parse_ok(r, a, &vf.m[3]);
    CHECK_EQ(m.kind, GNI_EHS_ACCEPT);
    CHECK(sl_is(m.conn_id, "e3a724444921a5e729146a7d0502079a"));
    CHECK_EQ(m.pool_size, 3);
    CHECK_EQ(m.ndsn, 1);
    CHECK(sl_is(m.dsn[0], "127.0.0.1:11144"));
    m = parse_ok(r, a, &vf.m[5]);
    CHECK_EQ(m.kind, GNI_EHS_ACCEPT);
    CHECK(m.dsn_nil && m.conn_id.len == 0 && m.pool_size == 0);
    gn_edf_arena_free(a);
    gn_edf_registry_free(r);
    unload(&vf);
}

/* Start digests of handshake.hex / the first six of handshake_b.hex, joins after */
static void digests_of(const vfile *vf, size_t start, size_t nj)
{
    gn_edf_registry *r = make_reg();
    gn_edf_arena *a = gn_edf_arena_new(0, 0);
    gn_slice c = S(COOKIE);
    if (start != SIZE_MAX) {
        gni_ehs_msg hi = parse_ok(r, a, &vf->m[start]);
        gni_ehs_msg ha = parse_ok(r, a, &vf->m[start + 1]);
        gni_ehs_msg in = parse_ok(r, a, &vf->m[start + 2]);
        gni_ehs_msg ia = parse_ok(r, a, &vf->m[start + 4]);
        CHECK_EQ(hi.kind, GNI_EHS_HELLO);
        check_digest((gn_slice[]){hi.salt, c}, 2, hi.digest);
        check_digest((gn_slice[]){ha.salt, hi.digest, c}, 3, ha.digest);
        check_digest((gn_slice[]){ha.salt, c}, 2, in.digest);
        CHECK_EQ(ia.digest.len, 0);
        CHECK_EQ(hi.digest_cert.len + ha.digest_cert.len, 0); /* no TLS */
    }
    for (size_t j = 0; j < nj; j++) {
        size_t at = (start == SIZE_MAX ? 0 : start + 6) + 2 * j;
        gni_ehs_msg jo = parse_ok(r, a, &vf->m[at]);
        gni_ehs_msg ac = parse_ok(r, a, &vf->m[at + 1]);
        CHECK_EQ(jo.kind, GNI_EHS_JOIN);
        CHECK_EQ(ac.kind, GNI_EHS_ACCEPT);
        check_digest((gn_slice[]){jo.conn_id, jo.salt, c}, 3, jo.digest);
        check_digest((gn_slice[]){jo.digest, c}, 2, ac.digest);
        /* and a wrong cookie does not give the recorded digest */
        char hex[GNI_EHS_DIGEST_LEN];
        gni_ehs_digest((gn_slice[]){jo.conn_id, jo.salt, S("golem-test-cookiE")}, 3, NULL, hex);
        CHECK(memcmp(hex, jo.digest.base, GNI_EHS_DIGEST_LEN) != 0);
    }
    gn_edf_arena_free(a);
    gn_edf_registry_free(r);
}

GN_TEST(digests_recomputed_from_recorded_salts)
{
    vfile vf;
    if (!load("handshake.hex", &vf))
        SKIP("vectors not found");
    digests_of(&vf, 0, 0);
    unload(&vf);
    CHECK(load("handshake_join.hex", &vf));
    digests_of(&vf, SIZE_MAX, 2);
    unload(&vf);
    CHECK(load("handshake_b.hex", &vf));
    digests_of(&vf, 0, 2);
    unload(&vf);
}

static gni_ehs_config base_cfg(const gn_edf_registry *r, const char *node)
{
    gni_ehs_config c = {0};
    c.reg = r;
    c.cookie = S(COOKIE);
    c.node = S(node);
    c.version[0] = S("golemcap");
    c.version[1] = S("1.0");
    c.version[2] = S("");
    c.version[3] = S("MIT");
    c.flags = GNI_EHS_FLAGS_DEFAULT;
    return c;
}

/* the acceptor (beta) replays its side of a recorded Start: [start..start+5] */
static void acceptor_replay(const vfile *vf, size_t start, int64_t creation)
{
    gn_edf_registry *r = make_reg();
    gn_edf_arena *a = gn_edf_arena_new(0, 0);
    const vmsg *v = &vf->m[start];
    gni_ehs_msg ha = parse_ok(r, a, &v[1]);
    gni_ehs_msg acc = parse_ok(r, a, &v[3]);
    gni_ehs_msg intro = parse_ok(r, a, &v[4]);
    gn_edf_dict *ann = dict_of(&intro);
    script_rng s = {0};
    script_push(&s, ha.salt);
    script_push(&s, acc.conn_id);
    gn_rng rng = {script_fill, &s};
    gni_ehs_config c = base_cfg(r, "beta@localhost");
    c.announce = ann;
    c.rng = &rng;
    c.creation = creation;
    c.pool_dsn = S("127.0.0.1:11144");
    gni_ehs *h = NULL;
    CHECK_OK(gni_ehs_new(&c, GNI_EHS_ROLE_ACCEPT, 0, &h));
    CHECK_EQ(gni_ehs_pending(h), 0);
    feed_all(h, &v[0]);
    drain_eq(h, v[1].b, v[1].len); /* Hello with the recorded salt and digest */
    feed_all(h, &v[2]);
    uint8_t both[1 << 14];
    CHECK(v[3].len + v[4].len <= sizeof both);
    memcpy(both, v[3].b, v[3].len);
    memcpy(both + v[3].len, v[4].b, v[4].len);
    drain_eq(h, both, v[3].len + v[4].len); /* Accept + Introduce */
    CHECK(!gni_ehs_done(h));
    /* the initiator's final Accept, followed by ENP bytes that must be left alone */
    uint8_t tail[256];
    memcpy(tail, v[5].b, v[5].len);
    memcpy(tail + v[5].len, "\x4e\x01\x00\x00\x00\x08\x00\x65", 8);
    size_t used = 0;
    CHECK_OK(gni_ehs_feed(h, tail, v[5].len + 8, &used, 0));
    CHECK_EQ(used, v[5].len);
    CHECK(gni_ehs_done(h));
    CHECK_EQ(gni_ehs_pending(h), 0);
    const gni_ehs_result *res = gni_ehs_get_result(h);
    CHECK(res != NULL);
    CHECK(!res->join);
    CHECK(sl_is(res->peer_node, "alpha@localhost"));
    CHECK_EQ(res->pool_size, 3);
    CHECK_EQ(res->peer_flags, 0x67);
    CHECK_EQ(res->conn_id.len, 32);
    CHECK_MEM(res->conn_id.base, acc.conn_id.base, 32);
    gn_edf_dict *pd = gn_edf_dict_new();
    CHECK_OK(gni_ehs_peer_dict(h, pd));
    gn_slice at;
    CHECK_OK(gn_edf_dict_find(pd, GN_EDF_DICT_ATOM, 257, &at));
    CHECK(sl_is(at, "alpha@localhost"));
    CHECK_EQ(gn_edf_dict_count(pd, GN_EDF_DICT_TYPE), 125);
    CHECK_EQ(gn_edf_dict_count(pd, GN_EDF_DICT_ERROR), 15);
    CHECK_EQ(s.calls, 2); /* one salt, one connection ID */
    gn_edf_dict_free(pd);
    gni_ehs_free(h);
    gn_edf_dict_free(ann);
    gn_edf_arena_free(a);
    gn_edf_registry_free(r);
}

/* the initiator (alpha) replays its side */
static void initiator_replay(const vfile *vf, size_t start, int64_t creation)
{
    gn_edf_registry *r = make_reg();
    gn_edf_arena *a = gn_edf_arena_new(0, 0);
    const vmsg *v = &vf->m[start];
    gni_ehs_msg hi = parse_ok(r, a, &v[0]);
    gni_ehs_msg intro = parse_ok(r, a, &v[2]);
    gn_edf_dict *ann = dict_of(&intro);
    script_rng s = {0};
    script_push(&s, hi.salt);
    gn_rng rng = {script_fill, &s};
    gni_ehs_config c = base_cfg(r, "alpha@localhost");
    c.announce = ann;
    c.rng = &rng;
    c.creation = creation;
    c.expect_peer = S("beta@localhost");
    gni_ehs *h = NULL;
    CHECK_OK(gni_ehs_new(&c, GNI_EHS_ROLE_START, 0, &h));
    drain_eq(h, v[0].b, v[0].len);
    feed_all(h, &v[1]);
    drain_eq(h, v[2].b, v[2].len);
    feed_all(h, &v[3]);
    CHECK_EQ(gni_ehs_pending(h), 0);
    feed_all(h, &v[4]);
    drain_eq(h, v[5].b, v[5].len);
    CHECK(gni_ehs_done(h));
    const gni_ehs_result *res = gni_ehs_get_result(h);
    CHECK(sl_is(res->peer_node, "beta@localhost"));
    CHECK_EQ(res->pool_size, 3);
    CHECK_EQ(res->ndsn, 1);
    CHECK(sl_is(res->dsn[0], "127.0.0.1:11144"));
    CHECK_EQ(res->conn_id.len, 32);
    CHECK_EQ(res->peer_creation, creation == 1795235515 ? 1795235514 : creation);
    gni_ehs_free(h);
    gn_edf_dict_free(ann);
    gn_edf_arena_free(a);
    gn_edf_registry_free(r);
}

/* both sides of the joins in vf->m[at], [at+1], ... */
static void join_replay(const vfile *vf, size_t at, size_t nj)
{
    gn_edf_registry *r = make_reg();
    gn_edf_arena *a = gn_edf_arena_new(0, 0);
    for (size_t j = 0; j < nj; j++) {
        const vmsg *v = &vf->m[at + 2 * j];
        gni_ehs_msg jo = parse_ok(r, a, &v[0]);
        script_rng s = {0};
        script_push(&s, jo.salt);
        gn_rng rng = {script_fill, &s};
        gni_ehs_config c = base_cfg(r, "alpha@localhost");
        c.rng = &rng;
        c.conn_id = jo.conn_id;
        c.expect_peer = S("beta@localhost");
        gni_ehs *h = NULL;
        CHECK_OK(gni_ehs_new(&c, GNI_EHS_ROLE_JOIN, 0, &h));
        drain_eq(h, v[0].b, v[0].len);
        feed_all(h, &v[1]);
        CHECK(gni_ehs_done(h));
        CHECK(gni_ehs_get_result(h)->join);
        CHECK_EQ(gni_ehs_peer_dict(h, NULL), GN_EINVAL);
        gni_ehs_free(h);
        /* the acceptor answers the recorded Join with the recorded Accept */
        gni_ehs_config ca = base_cfg(r, "beta@localhost");
        ca.pool_dsn = S("127.0.0.1:11144");
        CHECK_OK(gni_ehs_new(&ca, GNI_EHS_ROLE_ACCEPT, 0, &h));
        feed_all(h, &v[0]);
        drain_eq(h, v[1].b, v[1].len);
        CHECK(gni_ehs_done(h));
        const gni_ehs_result *res = gni_ehs_get_result(h);
        CHECK(res->join);
        CHECK(sl_is(res->peer_node, "alpha@localhost"));
        CHECK_EQ(res->conn_id.len, jo.conn_id.len);
        CHECK_MEM(res->conn_id.base, jo.conn_id.base, jo.conn_id.len);
        gn_edf_dict *d = gn_edf_dict_new();
        CHECK_EQ(gni_ehs_peer_dict(h, d), GN_ESTATE); /* a join has no Introduce */
        gn_edf_dict_free(d);
        gni_ehs_free(h);
    }
    gn_edf_arena_free(a);
    gn_edf_registry_free(r);
}

GN_TEST(cores_replay_recorded_bytes)
{
    vfile vf;
    if (!load("handshake.hex", &vf))
        SKIP("vectors not found");
    acceptor_replay(&vf, 0, 1795235514);
    initiator_replay(&vf, 0, 1795235515);
    unload(&vf);
    CHECK(load("handshake_join.hex", &vf));
    join_replay(&vf, 0, 2);
    unload(&vf);
    CHECK(load("handshake_b.hex", &vf));
    acceptor_replay(&vf, 0, 1795235555);
    initiator_replay(&vf, 0, 1795235555);
    join_replay(&vf, 6, 2);
    unload(&vf);
}

/* ---- cores back to back ------------------------------------------------------------------ */

/* moves bytes both ways until neither side has output; returns the rounds */
static int pump(gni_ehs *x, gni_ehs *y, int *ex, int *ey)
{
    static uint8_t buf[1 << 17];
    int rounds = 0;
    *ex = *ey = 0;
    for (; rounds < 16; rounds++) {
        bool moved = false;
        gni_ehs *from[2] = {x, y}, *to[2] = {y, x};
        int *err[2] = {ey, ex};
        for (int i = 0; i < 2; i++) {
            gn_buf b;
            gn_buf_init(&b, buf, sizeof buf);
            gni_ehs_drain(from[i], &b);
            if (gn_buf_len(&b) == 0 || *err[i])
                continue;
            moved = true;
            size_t c = 0;
            *err[i] = gni_ehs_feed(to[i], buf, gn_buf_len(&b), &c, 0);
        }
        if (!moved)
            break;
    }
    return rounds;
}

static void run_pair(const gni_ehs_config *ci, const gni_ehs_config *ca, int *ei, int *ea,
                     gni_ehs **hi, gni_ehs **ha)
{
    CHECK_OK(gni_ehs_new(ci, GNI_EHS_ROLE_START, 0, hi));
    CHECK_OK(gni_ehs_new(ca, GNI_EHS_ROLE_ACCEPT, 0, ha));
    pump(*hi, *ha, ei, ea);
}

GN_TEST(cores_back_to_back_start_and_joins)
{
    gn_edf_registry *r = make_reg();
    gni_ehs_config ci = base_cfg(r, "one@127.0.0.1");
    gni_ehs_config ca = base_cfg(r, "two@127.0.0.1");
    ci.creation = 100;
    ci.max_message_size = 1 << 20;
    ca.creation = 200;
    ca.pool_size = 4;
    ca.pool_dsn = S("127.0.0.1:9");
    ca.flags = 0x66; /* Enable clear: every flag reads false */
    gni_ehs *hi, *ha;
    int ei, ea;
    run_pair(&ci, &ca, &ei, &ea, &hi, &ha);
    CHECK_OK(ei);
    CHECK_OK(ea);
    CHECK(gni_ehs_done(hi) && gni_ehs_done(ha));
    const gni_ehs_result *ri = gni_ehs_get_result(hi), *ra = gni_ehs_get_result(ha);
    CHECK_EQ(ri->pool_size, 4);
    CHECK_EQ(ra->pool_size, 4);
    CHECK_EQ(ri->conn_id.len, 32);
    CHECK_MEM(ri->conn_id.base, ra->conn_id.base, 32);
    CHECK(sl_is(ri->peer_node, "two@127.0.0.1") && sl_is(ra->peer_node, "one@127.0.0.1"));
    CHECK_EQ(ri->peer_creation, 200);
    CHECK_EQ(ra->peer_creation, 100);
    CHECK_EQ(ra->peer_max_message_size, 1 << 20);
    CHECK_EQ(ri->peer_flags, 0);
    CHECK_EQ(ra->peer_flags, GNI_EHS_FLAGS_DEFAULT);
    CHECK(sl_is(ri->dsn[0], "127.0.0.1:9"));
    /* dictionaries: each side learns the other's registry tables */
    gn_edf_dict *d = gn_edf_dict_new();
    CHECK_OK(gni_ehs_peer_dict(hi, d));
    CHECK_EQ(gn_edf_dict_count(d, GN_EDF_DICT_ERROR), 15);
    CHECK_EQ(gn_edf_dict_count(d, GN_EDF_DICT_TYPE),
             gn_edf_dict_count(gn_edf_registry_dict(r), GN_EDF_DICT_TYPE));
    gn_edf_dict_free(d);
    /* pool_size - 1 joins with the ID */
    char id[32];
    memcpy(id, ri->conn_id.base, 32);
    for (int j = 0; j < 3; j++) {
        gni_ehs_config cj = ci;
        cj.conn_id = gn_slice_of(id, 32);
        gni_ehs *hj, *hb;
        CHECK_OK(gni_ehs_new(&cj, GNI_EHS_ROLE_JOIN, 0, &hj));
        CHECK_OK(gni_ehs_new(&ca, GNI_EHS_ROLE_ACCEPT, 0, &hb));
        pump(hj, hb, &ei, &ea);
        CHECK_OK(ei);
        CHECK_OK(ea);
        CHECK(gni_ehs_done(hj) && gni_ehs_done(hb));
        CHECK(gni_ehs_get_result(hb)->join);
        CHECK_MEM(gni_ehs_get_result(hb)->conn_id.base, id, 32);
        gni_ehs_free(hj);
        gni_ehs_free(hb);
    }
    gni_ehs_free(hi);
    gni_ehs_free(ha);
    gn_edf_registry_free(r);
}

GN_TEST(tls_fingerprint_fields)
{
    gn_edf_registry *r = make_reg();
    uint8_t cert[GNI_EHS_CERT_SHA1_LEN], other[GNI_EHS_CERT_SHA1_LEN];
    memset(cert, 0x11, sizeof cert);
    memset(other, 0x22, sizeof other);
    gni_ehs_config ci = base_cfg(r, "one@h");
    gni_ehs_config ca = base_cfg(r, "two@h");
    ca.pool_dsn = S("10.0.0.1:1");
    ca.cert_sha1 = cert;
    ci.peer_cert_sha1 = cert;
    gni_ehs *hi, *ha;
    int ei, ea;
    run_pair(&ci, &ca, &ei, &ea, &hi, &ha);
    CHECK_OK(ei);
    CHECK(gni_ehs_done(hi) && gni_ehs_done(ha));
    char id[32];
    memcpy(id, gni_ehs_get_result(hi)->conn_id.base, 32);
    gni_ehs_free(hi);
    gni_ehs_free(ha);
    /* a different certificate than the one DigestCert was made for */
    ci.peer_cert_sha1 = other;
    run_pair(&ci, &ca, &ei, &ea, &hi, &ha);
    CHECK_EQ(ei, GN_EHANDSHAKE);
    CHECK_EQ(gni_ehs_why_failed(hi), GNI_EHS_WHY_CERT);
    CHECK(strstr(gni_ehs_diag(hi), "TLS fingerprint") != NULL);
    gni_ehs_free(hi);
    gni_ehs_free(ha);
    /* join on TLS: good and bad fingerprint */
    for (int bad = 0; bad < 2; bad++) {
        gni_ehs_config cj = ci;
        cj.conn_id = gn_slice_of(id, 32);
        cj.peer_cert_sha1 = bad ? other : cert;
        gni_ehs *hj, *hb;
        CHECK_OK(gni_ehs_new(&cj, GNI_EHS_ROLE_JOIN, 0, &hj));
        CHECK_OK(gni_ehs_new(&ca, GNI_EHS_ROLE_ACCEPT, 0, &hb));
        pump(hj, hb, &ei, &ea);
        CHECK_EQ(ei, bad ? GN_EHANDSHAKE : 0);
        CHECK_EQ(gni_ehs_done(hj), !bad);
        gni_ehs_free(hj);
        gni_ehs_free(hb);
    }
    gn_edf_registry_free(r);
}

GN_TEST(cookie_mismatch_refused_both_ways)
{
    gn_edf_registry *r = make_reg();
    gni_ehs_config ci = base_cfg(r, "one@h");
    gni_ehs_config ca = base_cfg(r, "two@h");
    ca.pool_dsn = S("10.0.0.1:1");
    ci.cookie = S("another cookie");
    gni_ehs *hi, *ha;
    int ei, ea;
    /* acceptor side: the initiator's Hello digest is refused, nothing is sent */
    run_pair(&ci, &ca, &ei, &ea, &hi, &ha);
    CHECK_EQ(ea, GN_EHANDSHAKE);
    CHECK_EQ(gni_ehs_why_failed(ha), GNI_EHS_WHY_COOKIE);
    CHECK(strstr(gni_ehs_diag(ha), "cookie mismatch") != NULL);
    CHECK_EQ(gni_ehs_pending(ha), 0);
    CHECK(!gni_ehs_done(ha));
    /* ... and the initiator sees the close and says why it probably happened */
    CHECK_EQ(gni_ehs_eof(hi), GN_EEOF);
    CHECK(strstr(gni_ehs_diag(hi), "cookie mismatch") != NULL);
    CHECK_EQ(gni_ehs_feed(hi, (const uint8_t *)"W", 1, NULL, 0), GN_EEOF); /* sticky */
    gni_ehs_free(hi);
    gni_ehs_free(ha);

    /* initiator side: a Hello made with another cookie (the recorded one) */
    vfile vf;
    if (!load("handshake.hex", &vf)) {
        gn_edf_registry_free(r);
        SKIP("vectors not found");
    }
    gn_edf_arena *a = gn_edf_arena_new(0, 0);
    gni_ehs_msg m0 = parse_ok(r, a, &vf.m[0]);
    script_rng s = {0};
    script_push(&s, m0.salt);
    gn_rng rng = {script_fill, &s};
    ci.rng = &rng;
    CHECK_OK(gni_ehs_new(&ci, GNI_EHS_ROLE_START, 0, &hi));
    CHECK_EQ(gni_ehs_feed(hi, vf.m[1].b, vf.m[1].len, NULL, 0), GN_EHANDSHAKE);
    CHECK_EQ(gni_ehs_why_failed(hi), GNI_EHS_WHY_COOKIE);
    CHECK(strstr(gni_ehs_diag(hi), "cookie mismatch") != NULL);
    gni_ehs_free(hi);
    /* the acceptor's check of the Introduce digest: recorded Hello answered with our
     * salt, then the recorded Introduce (made for the recorded salt) must be refused */
    ca.cookie = S(COOKIE);
    CHECK_OK(gni_ehs_new(&ca, GNI_EHS_ROLE_ACCEPT, 0, &ha));
    feed_all(ha, &vf.m[0]);
    CHECK_EQ(gni_ehs_feed(ha, vf.m[2].b, vf.m[2].len, NULL, 0), GN_EHANDSHAKE);
    CHECK_EQ(gni_ehs_why_failed(ha), GNI_EHS_WHY_COOKIE);
    gni_ehs_free(ha);
    unload(&vf);
    /* joins: the acceptor refuses a Join made with another cookie; the dialler refuses
     * an Accept made with another cookie */
    CHECK(load("handshake_join.hex", &vf));
    ca.cookie = S("another cookie");
    CHECK_OK(gni_ehs_new(&ca, GNI_EHS_ROLE_ACCEPT, 0, &ha));
    CHECK_EQ(gni_ehs_feed(ha, vf.m[0].b, vf.m[0].len, NULL, 0), GN_EHANDSHAKE);
    CHECK_EQ(gni_ehs_why_failed(ha), GNI_EHS_WHY_COOKIE);
    CHECK(strstr(gni_ehs_diag(ha), "cookie mismatch") != NULL);
    gni_ehs_free(ha);
    gni_ehs_msg jo = parse_ok(r, a, &vf.m[0]);
    script_rng s2 = {0};
    script_push(&s2, jo.salt);
    gn_rng rng2 = {script_fill, &s2};
    gni_ehs_config cj = base_cfg(r, "alpha@localhost");
    cj.cookie = S("another cookie");
    cj.rng = &rng2;
    cj.conn_id = jo.conn_id;
    gni_ehs *hj;
    CHECK_OK(gni_ehs_new(&cj, GNI_EHS_ROLE_JOIN, 0, &hj));
    CHECK_EQ(gni_ehs_feed(hj, vf.m[1].b, vf.m[1].len, NULL, 0), GN_EHANDSHAKE);
    CHECK_EQ(gni_ehs_why_failed(hj), GNI_EHS_WHY_COOKIE);
    CHECK(strstr(gni_ehs_diag(hj), "cookie mismatch") != NULL);
    gni_ehs_free(hj);
    unload(&vf);
    gn_edf_arena_free(a);
    gn_edf_registry_free(r);
}

GN_TEST(names_sequence_timeouts)
{
    gn_edf_registry *r = make_reg();
    gni_ehs_config ci = base_cfg(r, "same@h");
    gni_ehs_config ca = base_cfg(r, "same@h");
    ca.pool_dsn = S("10.0.0.1:1");
    gni_ehs *hi, *ha;
    int ei, ea;
    /* a peer introducing itself with our own name is refused */
    run_pair(&ci, &ca, &ei, &ea, &hi, &ha);
    CHECK_EQ(ea, GN_EHANDSHAKE);
    CHECK_EQ(gni_ehs_why_failed(ha), GNI_EHS_WHY_NAME);
    gni_ehs_free(hi);
    gni_ehs_free(ha);
    /* the initiator drops a peer that is not the node it dialled */
    ca.node = S("other@h");
    ci.expect_peer = S("wanted@h");
    run_pair(&ci, &ca, &ei, &ea, &hi, &ha);
    CHECK_EQ(ei, GN_EHANDSHAKE);
    CHECK_EQ(gni_ehs_why_failed(hi), GNI_EHS_WHY_NAME);
    CHECK(strstr(gni_ehs_diag(hi), "not the node we dialled") != NULL);
    gni_ehs_free(hi);
    gni_ehs_free(ha);
    /* invalid configs */
    gni_ehs_config bad = ci;
    bad.node = S("no-at-sign");
    CHECK_EQ(gni_ehs_new(&bad, GNI_EHS_ROLE_START, 0, &hi), GN_EINVAL);
    bad = ci;
    bad.cookie = S("");
    CHECK_EQ(gni_ehs_new(&bad, GNI_EHS_ROLE_START, 0, &hi), GN_EINVAL);
    CHECK_EQ(gni_ehs_new(&ci, GNI_EHS_ROLE_JOIN, 0, &hi), GN_EINVAL); /* no conn_id */
    bad = ca;
    bad.pool_dsn = S("");
    CHECK_EQ(gni_ehs_new(&bad, GNI_EHS_ROLE_ACCEPT, 0, &ha), GN_EINVAL);
    CHECK(!gni_ehs_name_valid(S("a@b@c")));
    CHECK(gni_ehs_name_valid(S("a@b")));
    /* sequence: an acceptor that gets an Introduce first */
    vfile vf;
    if (!load("handshake.hex", &vf)) {
        gn_edf_registry_free(r);
        SKIP("vectors not found");
    }
    ca.node = S("beta@localhost");
    CHECK_OK(gni_ehs_new(&ca, GNI_EHS_ROLE_ACCEPT, 0, &ha));
    CHECK_EQ(gni_ehs_feed(ha, vf.m[2].b, vf.m[2].len, NULL, 0), GN_EHANDSHAKE);
    CHECK_EQ(gni_ehs_why_failed(ha), GNI_EHS_WHY_SEQUENCE);
    gni_ehs_free(ha);
    /* read deadline: 1 s per message, re-armed by progress */
    CHECK_OK(gni_ehs_new(&ca, GNI_EHS_ROLE_ACCEPT, 5 * GN_S, &ha));
    CHECK_EQ(gni_ehs_deadline(ha), 6 * GN_S);
    CHECK_OK(gni_ehs_expire(ha, 6 * GN_S - 1));
    size_t c;
    CHECK_OK(gni_ehs_feed(ha, vf.m[0].b, vf.m[0].len, &c, 5 * GN_S + 500 * GN_MS));
    CHECK_EQ(gni_ehs_deadline(ha), 6 * GN_S + 500 * GN_MS);
    CHECK_OK(gni_ehs_expire(ha, 6 * GN_S));
    CHECK_EQ(gni_ehs_expire(ha, 6 * GN_S + 500 * GN_MS), GN_ETIMEDOUT);
    CHECK_EQ(gni_ehs_why_failed(ha), GNI_EHS_WHY_TIMEOUT);
    CHECK_EQ(gni_ehs_deadline(ha), GN_TIME_INFINITY);
    gni_ehs_free(ha);
    unload(&vf);
    gn_edf_registry_free(r);
}

/* every prefix, every chunking and every single-byte corruption of every message */
static void hostile_file(const char *name)
{
    vfile vf;
    if (!load(name, &vf))
        SKIP("vectors not found");
    gn_edf_registry *r = make_reg();
    gn_edf_arena *a = gn_edf_arena_new(0, 0);
    gni_ehs_config ca = base_cfg(r, "beta@localhost");
    ca.pool_dsn = S("127.0.0.1:11144");
    for (size_t i = 0; i < vf.n; i++) {
        const vmsg *v = &vf.m[i];
        for (size_t k = 0; k < v->len; k++) {
            gni_ehs_msg m;
            size_t c = 99;
            CHECK_EQ(gni_ehs_parse(r, a, v->b, k, false, &m, &c), GN_EAGAIN);
            CHECK_EQ(c, 0);
            gn_edf_arena_reset(a);
        }
        /* messages an acceptor gets first: fed in two pieces at every split */
        gni_ehs_msg m0 = parse_ok(r, a, v);
        if (m0.kind == GNI_EHS_HELLO || m0.kind == GNI_EHS_JOIN) {
            if (strncmp(v->sender, "alpha", 5) != 0)
                continue;
            for (size_t k = 0; k <= v->len; k++) {
                gni_ehs *h;
                CHECK_OK(gni_ehs_new(&ca, GNI_EHS_ROLE_ACCEPT, 0, &h));
                size_t c1 = 0, c2 = 0;
                CHECK_OK(gni_ehs_feed(h, v->b, k, &c1, 0));
                CHECK_EQ(c1, k);
                CHECK_EQ(gni_ehs_pending(h) > 0, k == v->len);
                CHECK_OK(gni_ehs_feed(h, v->b + k, v->len - k, &c2, 0));
                CHECK_EQ(c2, v->len - k);
                CHECK(gni_ehs_pending(h) > 0);
                gni_ehs_free(h);
            }
            /* every single-byte corruption: never accepted, never a read past the end */
            uint8_t *cp = malloc(v->len);
            for (size_t k = 0; k < v->len; k++) {
                memcpy(cp, v->b, v->len);
                cp[k] ^= 0x41;
                gni_ehs *h;
                CHECK_OK(gni_ehs_new(&ca, GNI_EHS_ROLE_ACCEPT, 0, &h));
                size_t c = 0;
                int rc = gni_ehs_feed(h, cp, v->len, &c, 0);
                CHECK(rc < 0 || (rc == 0 && (gni_ehs_pending(h) == 0 || gni_ehs_done(h))));
                CHECK(c <= v->len);
                /* the Join's Node is not covered by its digest (as in Ergo): a corrupted
                 * name passes the handshake and fails the attach to the connection */
                if (gni_ehs_done(h))
                    CHECK(m0.kind == GNI_EHS_JOIN &&
                          !sl_is(gni_ehs_get_result(h)->peer_node, "alpha@localhost"));
                gni_ehs_free(h);
                gni_ehs_msg m;
                (void)gni_ehs_parse(r, a, cp, v->len, false, &m, &c);
                gn_edf_arena_reset(a);
            }
            free(cp);
        }
    }
    /* garbage */
    gni_ehs *h;
    CHECK_OK(gni_ehs_new(&ca, GNI_EHS_ROLE_ACCEPT, 0, &h));
    CHECK_EQ(gni_ehs_feed(h, (const uint8_t *)"GET / HTTP/1.1\r\n", 16, NULL, 0), GN_EBADFRAME);
    CHECK_EQ(gni_ehs_why_failed(h), GNI_EHS_WHY_FRAMING);
    gni_ehs_free(h);
    CHECK_OK(gni_ehs_new(&ca, GNI_EHS_ROLE_ACCEPT, 0, &h));
    CHECK_EQ(gni_ehs_feed(h, (const uint8_t *)"\x57\x01\x00\x01\x00\x00", 6, NULL, 0),
             GN_EFRAMESIZE);
    gni_ehs_free(h);
    CHECK_OK(gni_ehs_new(&ca, GNI_EHS_ROLE_ACCEPT, 0, &h));
    CHECK_EQ(gni_ehs_feed(h, (const uint8_t *)"\x57\x02", 2, NULL, 0), GN_EBADFRAME);
    gni_ehs_free(h);
    CHECK_OK(gni_ehs_new(&ca, GNI_EHS_ROLE_ACCEPT, 0, &h));
    CHECK_EQ(gni_ehs_feed(h, (const uint8_t *)"\x57\x01\x00\x00\x00\x02\x8d\x00", 8, NULL, 0),
             GN_EPARSE); /* a string, not a handshake message */
    gni_ehs_free(h);
    gn_edf_arena_free(a);
    gn_edf_registry_free(r);
    unload(&vf);
}

GN_TEST(truncated_and_corrupted_input)
{
    hostile_file("handshake.hex");
    hostile_file("handshake_join.hex");
}

/* a whole Start and one Join back to back; GN_ENOMEM wherever an allocation failed */
static int alloc_scenario(void)
{
    int rc = GN_ENOMEM;
    gni_ehs *hi = NULL, *ha = NULL, *hj = NULL, *hb = NULL;
    gn_edf_dict *d = NULL;
    gn_edf_registry *r = gn_edf_registry_new();
    if (!r || (rc = gn_edf_registry_add_ergo(r)) < 0)
        goto out;
    gn_edf_registry_freeze(r);
    gni_ehs_config ci = base_cfg(r, "one@h"), ca = base_cfg(r, "two@h");
    ca.pool_dsn = S("10.0.0.1:1");
    int ei, ea;
    if ((rc = gni_ehs_new(&ci, GNI_EHS_ROLE_START, 0, &hi)) < 0 ||
        (rc = gni_ehs_new(&ca, GNI_EHS_ROLE_ACCEPT, 0, &ha)) < 0)
        goto out;
    pump(hi, ha, &ei, &ea);
    rc = ei < 0 ? ei : ea < 0 ? ea : 0;
    if (rc < 0)
        goto out;
    rc = GN_EINTERNAL;
    if (!gni_ehs_done(hi) || !gni_ehs_done(ha))
        goto out;
    if (!(d = gn_edf_dict_new())) {
        rc = GN_ENOMEM;
        goto out;
    }
    if ((rc = gni_ehs_peer_dict(ha, d)) < 0)
        goto out;
    gni_ehs_config cj = ci;
    cj.conn_id = gni_ehs_get_result(hi)->conn_id;
    if ((rc = gni_ehs_new(&cj, GNI_EHS_ROLE_JOIN, 0, &hj)) < 0 ||
        (rc = gni_ehs_new(&ca, GNI_EHS_ROLE_ACCEPT, 0, &hb)) < 0)
        goto out;
    pump(hj, hb, &ei, &ea);
    rc = ei < 0 ? ei : ea < 0 ? ea : (gni_ehs_done(hj) && gni_ehs_done(hb)) ? 0 : GN_EINTERNAL;
out:
    gni_ehs_free(hi);
    gni_ehs_free(ha);
    gni_ehs_free(hj);
    gni_ehs_free(hb);
    gn_edf_dict_free(d);
    gn_edf_registry_free(r);
    return rc;
}

GN_TEST(allocation_failure_every_k)
{
    size_t failures = fa_every_k(alloc_scenario, 100000);
    CHECK(failures > 10);
}

/* A 14-byte body that describes an array of a million empty arrays: zero
 * bytes each on the wire, so only the value bound stops it (before any
 * cookie check, a peer must not make us allocate tens of MB). */
GN_TEST(tiny_body_cannot_allocate_a_million_values)
{
    gn_edf_registry *r = make_reg();
    gn_edf_arena *a = gn_edf_arena_new(0, 0);
    static const uint8_t msg[] = {
        GNI_EHS_MAGIC, GNI_EHS_VERSION, 0, 0, 0, 14,
        0x82, 0x00, 0x0b,                   /* a descriptor of 11 bytes: */
        0x9e, 0x00, 0x0f, 0xff, 0xfc,       /* [1048572] */
        0x9e, 0x00, 0x00, 0x00, 0x00, 0x8d, /* [0]string */
        0x00, 0x00, 0x00                    /* (padding to the body length) */
    };
    gni_ehs_msg m;
    size_t c = 0;
    int rc = gni_ehs_parse(r, a, msg, 6 + 14, false, &m, &c);
    CHECK(rc < 0);
    CHECK(gn_edf_arena_used(a) < 8u * GNI_EHS_MAX_VALUES * 16u);
    gn_edf_arena_free(a);
    gn_edf_registry_free(r);
}

GN_TEST_MAIN(GN_T(parse_build_every_message), GN_T(fields_of_the_captured_start),
             GN_T(digests_recomputed_from_recorded_salts), GN_T(cores_replay_recorded_bytes),
             GN_T(cores_back_to_back_start_and_joins), GN_T(tls_fingerprint_fields),
             GN_T(cookie_mismatch_refused_both_ways), GN_T(names_sequence_timeouts),
             GN_T(truncated_and_corrupted_input), GN_T(allocation_failure_every_k),
             GN_T(tiny_body_cannot_allocate_a_million_values))
