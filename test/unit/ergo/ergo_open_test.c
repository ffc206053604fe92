/*
 * ergo_open_test: the opening exchange of /golem/ergo/1.0.0
 * (protocols/ergo/ergo_open.c), in memory.
 *  - known answer: with the fields and dictionaries of beta's Introduce
 *    captured between two Ergo 3.1.0 nodes ($GN_SHARED_DIR/vectors/ergo/
 *    handshake.hex, frame 5: the acceptor's Introduce, whose Digest is
 *    empty), the core sends exactly those bytes;
 *  - two cores back to back, whole and byte by byte: both learn the other's
 *    name, flags, creation, MaxMessageSize and dictionaries, and bytes after
 *    the Introduce (ENP) are left to the caller;
 *  - refusals: a Hello (the TCP sequence), bad magic, a body above 65535
 *    (refused on the header, before collecting), our own name, a name we did
 *    not open to, the deadline, EOF;
 *  - allocation failure at every k.
 */
#include "gn_test.h"

#include "gn_failalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ergo_open.h"
#include "golemnet/edf.h"
#include "golemnet/err.h"

static gn_slice S(const char *s) { return gn_slice_of(s, strlen(s)); }

static gn_edf_registry *make_reg(void)
{
    gn_edf_registry *r = gn_edf_registry_new();
    CHECK(r != NULL);
    CHECK_OK(gn_edf_registry_add_ergo(r));
    gn_edf_registry_freeze(r);
    return r;
}

/* the data line of frame @idx (0-based) of a vector file, unhexed into @out */
static long vector_frame(const char *name, size_t idx, uint8_t *out, size_t cap)
{
    char path[1024];
    const char *dirs[2] = {getenv("GN_SHARED_DIR"), getenv("GN_SOURCE_DIR")};
    for (int i = 0; i < 2; i++) {
        if (!dirs[i])
            continue;
        snprintf(path, sizeof path, i == 0 ? "%s/vectors/ergo/%s" : "%s/../shared/vectors/ergo/%s",
                 dirs[i], name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        static char line[1 << 17];
        size_t n = 0;
        long got = -1;
        while (fgets(line, sizeof line, f)) {
            if (line[0] == '#' || line[0] == '\n')
                continue;
            if (n++ != idx)
                continue;
            char *sp = strchr(line, ' ');
            sp = sp ? strchr(sp + 1, ' ') : NULL;
            if (sp) {
                sp[strcspn(sp, "\r\n")] = '\0';
                got = gn_test_unhex(sp + 1, out, cap);
            }
            break;
        }
        fclose(f);
        return got;
    }
    return -1;
}

static gni_ergo_open_config cfg(const gn_edf_registry *r, const char *node)
{
    gni_ergo_open_config c;
    memset(&c, 0, sizeof c);
    c.reg = r;
    c.node = S(node);
    c.version[0] = S("golemnet");
    c.version[1] = S("0.1");
    c.version[3] = S("MIT");
    c.flags = GNI_EHS_FLAGS_DEFAULT;
    c.creation = 1795235514;
    c.max_message_size = 65536;
    return c;
}

static size_t drain_all(gni_ergo_open *o, uint8_t *out, size_t cap)
{
    gn_buf b;
    gn_buf_init(&b, out, cap);
    gni_ergo_open_drain(o, &b);
    return gn_buf_len(&b);
}

static uint8_t vec[1 << 16], got[1 << 16];

GN_TEST(known_answer_captured_introduce)
{
    long n = vector_frame("handshake.hex", 4, vec, sizeof vec);
    if (n <= 0)
        SKIP("vectors not found");
    gn_edf_registry *r = make_reg();
    gn_edf_arena *a = gn_edf_arena_new(0, 0);
    gni_ehs_msg m;
    size_t used = 0;
    CHECK_OK(gni_ehs_parse(r, a, vec, (size_t)n, false, &m, &used));
    CHECK_EQ(used, (size_t)n);
    CHECK_EQ(m.kind, GNI_EHS_INTRODUCE);
    CHECK_EQ(m.digest.len, 0u); /* the acceptor's Introduce carries no digest */
    gn_edf_dict *d = gn_edf_dict_new();
    for (int k = 0; k < 3; k++)
        for (uint32_t i = 0; i < m.ncache[k]; i++)
            CHECK_OK(gn_edf_dict_add(d, (gn_edf_dict_kind)k, m.cache[k][i].id,
                                     (const char *)m.cache[k][i].s.base, m.cache[k][i].s.len));
    gni_ergo_open_config c;
    memset(&c, 0, sizeof c);
    c.reg = r;
    c.announce = d;
    c.node = m.node;
    memcpy(c.version, m.version, sizeof c.version);
    c.flags = m.flags;
    c.creation = m.creation;
    c.max_message_size = (uint64_t)m.max_message_size;
    gni_ergo_open *o = NULL;
    CHECK_OK(gni_ergo_open_new(&c, 0, &o));
    CHECK_EQ(gni_ergo_open_pending(o), (size_t)n);
    CHECK_EQ(drain_all(o, got, sizeof got), (size_t)n);
    CHECK_MEM(got, vec, (size_t)n);
    CHECK_EQ(gni_ergo_open_pending(o), 0u);
    gni_ergo_open_free(o);
    gn_edf_dict_free(d);
    gn_edf_arena_free(a);
    gn_edf_registry_free(r);
}

/* the example of docs/protocols/ergo.md section 2, field by field there */
GN_TEST(spec_example_bytes)
{
    static const char hex[] =
        "57010000008b830032236572676f2e73657276696365732f6572676f2f6e6574"
        "2f68616e647368616b652f4d657373616765496e74726f64756365000f616c70"
        "6861406c6f63616c686f73740008676f6c656d6e65740005302e312e30000000"
        "034d4954000000080000000000000067000000006b011ebb0000000000000000"
        "9f000000009f000000009f000000000000";
    long n = gn_test_unhex(hex, vec, sizeof vec);
    CHECK_EQ(n, 145);
    gn_edf_registry *r = make_reg();
    gn_edf_dict *d = gn_edf_dict_new();
    gni_ergo_open_config c = cfg(r, "alpha@localhost");
    c.announce = d;
    c.version[1] = S("0.1.0");
    c.flags = 0x67;
    c.creation = 1795235515;
    c.max_message_size = 0;
    gni_ergo_open *o = NULL;
    CHECK_OK(gni_ergo_open_new(&c, 0, &o));
    CHECK_EQ(drain_all(o, got, sizeof got), 145u);
    CHECK_MEM(got, vec, 145);
    gni_ergo_open_free(o);
    gn_edf_dict_free(d);
    gn_edf_registry_free(r);
}

/* feeds @len bytes of @in to @o in chunks of @chunk; returns bytes consumed */
static size_t feed_chunks(gni_ergo_open *o, const uint8_t *in, size_t len, size_t chunk, int *err)
{
    size_t off = 0;
    *err = 0;
    while (off < len && !gni_ergo_open_done(o)) {
        size_t take = len - off < chunk ? len - off : chunk, used = 0;
        *err = gni_ergo_open_feed(o, in + off, take, &used, 0);
        CHECK(used <= take);
        off += used;
        if (*err < 0 || used < take)
            break;
    }
    return off;
}

static void back_to_back(size_t chunk)
{
    gn_edf_registry *r = make_reg();
    gni_ergo_open_config ca = cfg(r, "alpha@one"), cb = cfg(r, "beta@two");
    cb.flags = 0x21; /* Enable + ProxyAccept */
    cb.creation = 7;
    cb.max_message_size = 0;
    ca.expect_peer = S("beta@two");
    gni_ergo_open *a = NULL, *b = NULL;
    CHECK_OK(gni_ergo_open_new(&ca, 0, &a));
    CHECK_OK(gni_ergo_open_new(&cb, 0, &b));
    CHECK(!gni_ergo_open_done(a));
    CHECK_EQ(gni_ergo_open_deadline(a), GNI_ERGO_OPEN_TIMEOUT_DEFAULT);
    static uint8_t wa[1 << 16], wb[1 << 16];
    size_t na = drain_all(a, wa, sizeof wa), nb = drain_all(b, wb, sizeof wb);
    CHECK(na > GNI_EHS_HEADER_LEN && nb > GNI_EHS_HEADER_LEN);
    /* ENP bytes follow the Introduce in the same read: they stay with the caller */
    static const uint8_t enp[8] = {78, 1, 0, 0, 0, 8, 0, 101};
    memcpy(wb + nb, enp, sizeof enp);
    int err;
    CHECK_EQ(feed_chunks(a, wb, nb + sizeof enp, chunk, &err), nb);
    CHECK_OK(err);
    CHECK_EQ(feed_chunks(b, wa, na, chunk, &err), na);
    CHECK_OK(err);
    CHECK(gni_ergo_open_done(a) && gni_ergo_open_done(b));
    CHECK_EQ(gni_ergo_open_deadline(a), GN_TIME_INFINITY);
    size_t used = 1;
    CHECK_OK(gni_ergo_open_feed(a, enp, sizeof enp, &used, 0));
    CHECK_EQ(used, 0u); /* done: nothing more is read */
    const gni_ergo_open_result *ra = gni_ergo_open_result_get(a);
    const gni_ergo_open_result *rb = gni_ergo_open_result_get(b);
    CHECK(ra && rb);
    CHECK(ra->peer_node.len == 8 && !memcmp(ra->peer_node.base, "beta@two", 8));
    CHECK(rb->peer_node.len == 9 && !memcmp(rb->peer_node.base, "alpha@one", 9));
    CHECK_EQ(ra->peer_flags, 0x21u);
    CHECK_EQ(ra->peer_creation, 7);
    CHECK_EQ(ra->peer_max_message_size, 0u);
    CHECK_EQ(rb->peer_flags, (uint64_t)GNI_EHS_FLAGS_DEFAULT);
    CHECK_EQ(rb->peer_max_message_size, 65536u);
    CHECK(rb->peer_version[0].len == 8 && !memcmp(rb->peer_version[0].base, "golemnet", 8));
    /* the peer's dictionaries: what its registry announced (Ergo's 15 errors) */
    gn_edf_dict *d = gn_edf_dict_new();
    CHECK_OK(gni_ergo_open_peer_dict(a, d));
    CHECK_EQ(gn_edf_dict_count(d, GN_EDF_DICT_ERROR),
             gn_edf_dict_count(gn_edf_registry_dict(r), GN_EDF_DICT_ERROR));
    CHECK(gn_edf_dict_count(d, GN_EDF_DICT_ERROR) > 0);
    gn_slice s;
    CHECK_OK(gn_edf_dict_find(d, GN_EDF_DICT_ERROR, 32769, &s));
    CHECK(s.len == 9 && !memcmp(s.base, "timed out", 9));
    gn_edf_dict_free(d);
    gni_ergo_open_free(a);
    gni_ergo_open_free(b);
    gn_edf_registry_free(r);
}

GN_TEST(back_to_back_whole) { back_to_back(1 << 20); }
GN_TEST(back_to_back_byte_by_byte) { back_to_back(1); }

static int refuse(const gn_edf_registry *r, const char *node, const char *expect,
                  const uint8_t *in, size_t len, char *diag, size_t cap)
{
    gni_ergo_open_config c = cfg(r, node);
    if (expect)
        c.expect_peer = S(expect);
    gni_ergo_open *o = NULL;
    CHECK_OK(gni_ergo_open_new(&c, 0, &o));
    size_t used = 0;
    int rc = gni_ergo_open_feed(o, in, len, &used, 0);
    if (rc < 0) {
        CHECK(!gni_ergo_open_done(o));
        CHECK_EQ(gni_ergo_open_error(o), rc);
        size_t again = 0;
        CHECK_EQ(gni_ergo_open_feed(o, in, len, &again, 0), rc); /* sticky */
        CHECK(gni_ergo_open_result_get(o) == NULL);
    }
    snprintf(diag, cap, "%s", gni_ergo_open_diag(o));
    gni_ergo_open_free(o);
    return rc;
}

GN_TEST(refusals)
{
    gn_edf_registry *r = make_reg();
    char diag[200];
    /* the peer's Introduce as "beta@two" */
    gni_ergo_open_config cb = cfg(r, "beta@two");
    gni_ergo_open *b = NULL;
    CHECK_OK(gni_ergo_open_new(&cb, 0, &b));
    size_t nb = drain_all(b, got, sizeof got);
    gni_ergo_open_free(b);

    CHECK_EQ(refuse(r, "beta@two", NULL, got, nb, diag, sizeof diag), GN_EHANDSHAKE);
    CHECK(strstr(diag, "our own node name") != NULL);
    CHECK_EQ(refuse(r, "alpha@one", "gamma@three", got, nb, diag, sizeof diag), GN_EHANDSHAKE);
    CHECK(strstr(diag, "not the node gamma@three") != NULL);
    CHECK_OK(refuse(r, "alpha@one", "beta@two", got, nb, diag, sizeof diag)); /* accepted */

    /* a Hello: the TCP handshake's first message has no place on a channel */
    long n = vector_frame("handshake.hex", 0, vec, sizeof vec);
    if (n > 0) {
        CHECK_EQ(refuse(r, "alpha@one", NULL, vec, (size_t)n, diag, sizeof diag), GN_EHANDSHAKE);
        CHECK(strstr(diag, "expects an Introduce") != NULL);
    }
    /* bad magic, and an ENP frame where the Introduce belongs */
    uint8_t bad[6] = {88, 1, 0, 0, 0, 4};
    CHECK_EQ(refuse(r, "alpha@one", NULL, bad, 6, diag, sizeof diag), GN_EBADFRAME);
    static const uint8_t enp[8] = {78, 1, 0, 0, 0, 8, 0, 101};
    CHECK_EQ(refuse(r, "alpha@one", NULL, enp, 8, diag, sizeof diag), GN_EBADFRAME);
    /* a body above 65535 is refused on its header (nothing collected) */
    uint8_t big[6] = {GNI_EHS_MAGIC, GNI_EHS_VERSION, 0, 1, 0, 0};
    CHECK_EQ(refuse(r, "alpha@one", NULL, big, 6, diag, sizeof diag), GN_EFRAMESIZE);
    CHECK(strstr(diag, "65536") != NULL);
    /* an empty and a garbage body */
    uint8_t empty[6] = {GNI_EHS_MAGIC, GNI_EHS_VERSION, 0, 0, 0, 0};
    CHECK(refuse(r, "alpha@one", NULL, empty, 6, diag, sizeof diag) < 0);
    uint8_t junk[10] = {GNI_EHS_MAGIC, GNI_EHS_VERSION, 0, 0, 0, 4, 0xee, 1, 2, 3};
    CHECK(refuse(r, "alpha@one", NULL, junk, 10, diag, sizeof diag) < 0);
    /* a partial Introduce is not an error yet */
    CHECK_OK(refuse(r, "alpha@one", NULL, got, nb - 1, diag, sizeof diag));
    gn_edf_registry_free(r);
}

GN_TEST(deadline_and_eof)
{
    gn_edf_registry *r = make_reg();
    gni_ergo_open_config c = cfg(r, "alpha@one");
    c.timeout = 2 * GN_S;
    gni_ergo_open *o = NULL;
    CHECK_OK(gni_ergo_open_new(&c, 5 * GN_S, &o));
    CHECK_EQ(gni_ergo_open_deadline(o), 7 * GN_S);
    CHECK_OK(gni_ergo_open_expire(o, 7 * GN_S - 1));
    CHECK_EQ(gni_ergo_open_expire(o, 7 * GN_S), GN_ETIMEDOUT);
    CHECK_EQ(gni_ergo_open_deadline(o), GN_TIME_INFINITY);
    CHECK(strstr(gni_ergo_open_diag(o), "deadline") != NULL);
    gni_ergo_open_free(o);
    CHECK_OK(gni_ergo_open_new(&c, 0, &o));
    CHECK_EQ(gni_ergo_open_eof(o), GN_EEOF);
    CHECK_EQ(gni_ergo_open_error(o), GN_EEOF);
    gni_ergo_open_free(o);
    /* bad configurations */
    c.node = S("no-at-sign");
    CHECK_EQ(gni_ergo_open_new(&c, 0, &o), GN_EINVAL);
    gn_edf_registry *empty = gn_edf_registry_new();
    gn_edf_registry_freeze(empty);
    c = cfg(empty, "alpha@one");
    CHECK_EQ(gni_ergo_open_new(&c, 0, &o), GN_EINVAL); /* no Ergo types */
    gn_edf_registry_free(empty);
    gn_edf_registry_free(r);
}

static int alloc_scenario(void)
{
    int rc = GN_ENOMEM;
    gni_ergo_open *a = NULL, *b = NULL;
    gn_edf_dict *d = NULL;
    gn_edf_registry *r = gn_edf_registry_new();
    if (!r || (rc = gn_edf_registry_add_ergo(r)) < 0)
        goto out;
    gn_edf_registry_freeze(r);
    gni_ergo_open_config ca = cfg(r, "alpha@one"), cb = cfg(r, "beta@two");
    if ((rc = gni_ergo_open_new(&ca, 0, &a)) < 0 || (rc = gni_ergo_open_new(&cb, 0, &b)) < 0)
        goto out;
    static uint8_t wa[1 << 16];
    size_t na = drain_all(a, wa, sizeof wa), used = 0;
    if ((rc = gni_ergo_open_feed(b, wa, na, &used, 0)) < 0)
        goto out;
    rc = GN_EINTERNAL;
    if (!gni_ergo_open_done(b))
        goto out;
    rc = GN_ENOMEM;
    if (!(d = gn_edf_dict_new()))
        goto out;
    rc = gni_ergo_open_peer_dict(b, d);
out:
    gn_edf_dict_free(d);
    gni_ergo_open_free(a);
    gni_ergo_open_free(b);
    gn_edf_registry_free(r);
    return rc;
}

GN_TEST(allocation_failure_every_k)
{
    size_t failures = fa_every_k(alloc_scenario, 100000);
    CHECK(failures > 5);
}

GN_TEST_MAIN(GN_T(known_answer_captured_introduce), GN_T(spec_example_bytes),
             GN_T(back_to_back_whole),
             GN_T(back_to_back_byte_by_byte), GN_T(refusals), GN_T(deadline_and_eof),
             GN_T(allocation_failure_every_k))
