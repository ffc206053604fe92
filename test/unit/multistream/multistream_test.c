/*
 * multistream-select 1.0 core: known-answer bytes, two cores back to back in
 * memory, every split point, limits and malformed input, allocation failure.
 *
 * Vector sources:
 *   - "\x13/multistream/1.0.0\n": the header is 18 characters plus '\n' = 19
 *     = 0x13 (libp2p/specs connections/README.md: length-prefixed, newline
 *     counted; same constant as nim-libp2p's MSCodec).
 *   - "na" = 03 6e 61 0a: libp2p/specs connections/README.md and
 *     multiformats/multistream-select README.
 *   - "ls" = 03 6c 73 0a: multiformats/multistream-select README "Listing".
 *   - ls answer layout <len>(<len(id\n)><id>\n)*\n: rust-libp2p
 *     misc/multistream-select/src/protocol.rs (Message::Protocols) and
 *     js-libp2p packages/multistream-select/src/handle.ts.
 */
#include "multistream.h"

#include "golemnet/err.h"
#include "golemnet/log.h"

#include "gn_failalloc.h"
#include "gn_test.h"

#define HDR "\x13/multistream/1.0.0\n"
#define HDR_LEN 20
#define NA "\x03na\n"
#define LS "\x03ls\n"

static size_t min_sz(size_t a, size_t b)
{
    return a < b ? a : b;
}

static const uint8_t *u8(const char *s)
{
    return (const uint8_t *)s;
}

static gni_ms *mk(gni_ms_role role, const char *const *protos, size_t cnt)
{
    gni_ms_config cfg;
    gni_ms_config_default(&cfg, role);
    cfg.protocols = protos;
    cfg.protocol_cnt = cnt;
    gni_ms *ms = NULL;
    CHECK_EQ(gni_ms_new(&cfg, 0, &ms), 0);
    CHECK(ms != NULL);
    return ms;
}

static gni_ms *mk_cfg(const gni_ms_config *cfg)
{
    gni_ms *ms = NULL;
    CHECK_EQ(gni_ms_new(cfg, 0, &ms), 0);
    return ms;
}

/* Drains everything pending into @dst; returns the byte count. */
static size_t drain_all(gni_ms *ms, uint8_t *dst, size_t cap)
{
    gn_buf b;
    gn_buf_init(&b, dst, cap);
    int n = gni_ms_drain(ms, &b);
    CHECK(n >= 0);
    CHECK_EQ(gni_ms_pending(ms), 0);
    CHECK_EQ(gn_buf_len(&b), (size_t)n);
    return (size_t)n;
}

/* Checks that @ms has exactly @len bytes pending, equal to @want. */
static void expect_out(gni_ms *ms, const char *want, size_t len)
{
    uint8_t out[4096];
    size_t n = drain_all(ms, out, sizeof out);
    CHECK_EQ(n, len);
    CHECK_MEM(out, want, len);
}

/* Feeds @len bytes in one call; returns the feed result, stores consumed. */
static int feed(gni_ms *ms, const void *in, size_t len, size_t *used)
{
    *used = (size_t)-1;
    int rc = gni_ms_feed(ms, (const uint8_t *)in, len, used);
    return rc;
}

/* ---- two cores back to back ---- */

typedef struct side {
    gni_ms *ms;
    const char *app;   /* application bytes to send once allowed, or NULL */
    bool app_sent;
    uint8_t in[8192];  /* bytes received from the peer */
    size_t in_len, in_off;
    uint8_t left[8192]; /* bytes handed to the application (leftover) */
    size_t left_len;
    int rc;            /* first feed error */
} side;

static bool side_step(side *s, side *peer, size_t chunk)
{
    bool progress = false;
    gn_buf b;
    gn_buf_init(&b, peer->in + peer->in_len, sizeof peer->in - peer->in_len);
    int n = gni_ms_drain(s->ms, &b);
    CHECK(n >= 0);
    peer->in_len += (size_t)n;
    progress |= n > 0;
    gni_ms_status st = gni_ms_get_status(s->ms);
    if (s->app && !s->app_sent && gni_ms_pending(s->ms) == 0 &&
        (st == GNI_MS_SELECTED || st == GNI_MS_OPTIMISTIC)) {
        size_t al = strlen(s->app);
        CHECK(peer->in_len + al <= sizeof peer->in);
        memcpy(peer->in + peer->in_len, s->app, al);
        peer->in_len += al;
        s->app_sent = true;
        progress = true;
    }
    for (int guard = 0; guard < 100000 && s->in_off < s->in_len; guard++) {
        st = gni_ms_get_status(s->ms);
        if (st == GNI_MS_FAILED) {
            break;
        }
        if (st == GNI_MS_SELECTED || st == GNI_MS_LISTED) {
            size_t rest = s->in_len - s->in_off;
            memcpy(s->left + s->left_len, s->in + s->in_off, rest);
            s->left_len += rest;
            s->in_off = s->in_len;
            progress = true;
            break;
        }
        size_t want = min_sz(chunk, s->in_len - s->in_off);
        size_t used = 0;
        int rc = gni_ms_feed(s->ms, s->in + s->in_off, want, &used);
        if (rc < 0) {
            s->rc = rc;
            progress = true;
            break;
        }
        CHECK(used <= want);
        if (used < want) {
            st = gni_ms_get_status(s->ms);
            CHECK(st == GNI_MS_SELECTED || st == GNI_MS_LISTED);
        }
        s->in_off += used;
        progress |= used > 0;
    }
    return progress;
}

static void run_pair(side *a, side *b, size_t chunk)
{
    for (int i = 0; i < 200; i++) {
        bool p = side_step(a, b, chunk);
        p |= side_step(b, a, chunk);
        if (!p) {
            return;
        }
    }
    CHECK(!"negotiation did not settle");
}

static side *side_new(gni_ms *ms, const char *app)
{
    side *s = calloc(1, sizeof *s);
    CHECK(s != NULL);
    s->ms = ms;
    s->app = app;
    return s;
}

static void side_free(side *s)
{
    if (s) {
        gni_ms_free(s->ms);
        free(s);
    }
}

/* ---- known-answer bytes ---- */

GN_TEST(kat_responder_header)
{
    static const char *const p[] = {"/yamux/1.0.0"};
    gni_ms *r = mk(GNI_MS_RESPONDER, p, 1);
    CHECK_EQ(gni_ms_pending(r), HDR_LEN);
    uint8_t want[32];
    CHECK_EQ(gn_test_unhex("13 2f6d756c746973747265616d2f312e302e30 0a", want, sizeof want), 20);
    expect_out(r, (const char *)want, 20);
    CHECK_EQ(gni_ms_get_status(r), GNI_MS_PENDING);
    CHECK(gni_ms_get_protocol(r) == NULL);
    gni_ms_free(r);
}

GN_TEST(kat_initiator_first_flight)
{
    static const char *const p[] = {"/yamux/1.0.0", "/mplex/6.7.0"};
    gni_ms *i = mk(GNI_MS_INITIATOR, p, 2);
    /* header, then only the first proposal: "/yamux/1.0.0\n" is 13 = 0x0d bytes. */
    expect_out(i, HDR "\x0d/yamux/1.0.0\n", HDR_LEN + 14);
    gni_ms_free(i);

    gni_ms_config cfg;
    gni_ms_config_default(&cfg, GNI_MS_INITIATOR);
    cfg.protocols = p;
    cfg.protocol_cnt = 1;
    cfg.request_ls = true;
    i = mk_cfg(&cfg);
    expect_out(i, HDR LS "\x0d/yamux/1.0.0\n", HDR_LEN + 4 + 14);
    gni_ms_free(i);
}

GN_TEST(kat_na_echo_and_ls_answer)
{
    static const char *const p[] = {"/a", "/bb"};
    gni_ms *r = mk(GNI_MS_RESPONDER, p, 2);
    expect_out(r, HDR, HDR_LEN);
    size_t used;
    const char in[] = HDR "\x03/x\n" LS "\x04/bb\n";
    CHECK_EQ(feed(r, in, sizeof in - 1, &used), 0);
    CHECK_EQ(used, sizeof in - 1);
    /* na = 03 6e 61 0a; ls answer body 03 "/a\n" 04 "/bb\n" "\n" = 10 bytes. */
    uint8_t want[64];
    long wl = gn_test_unhex("036e610a"
                            "0a 03 2f610a 04 2f62620a 0a"
                            "04 2f62620a",
                            want, sizeof want);
    CHECK_EQ(wl, 4 + 11 + 5);
    expect_out(r, (const char *)want, (size_t)wl);
    CHECK_EQ(gni_ms_get_status(r), GNI_MS_SELECTED);
    CHECK_STR(gni_ms_get_protocol(r), "/bb");
    CHECK_EQ(gni_ms_get_index(r), 1);
    gni_ms_free(r);
}

/* ---- negotiations between two cores ---- */

GN_TEST(direct_match)
{
    static const char *const ip[] = {"/yamux/1.0.0"};
    static const char *const rp[] = {"/mplex/6.7.0", "/yamux/1.0.0"};
    side *a = side_new(mk(GNI_MS_INITIATOR, ip, 1), NULL);
    side *b = side_new(mk(GNI_MS_RESPONDER, rp, 2), NULL);
    run_pair(a, b, 4096);
    CHECK_EQ(a->rc, 0);
    CHECK_EQ(b->rc, 0);
    CHECK_EQ(gni_ms_get_status(a->ms), GNI_MS_SELECTED);
    CHECK_EQ(gni_ms_get_status(b->ms), GNI_MS_SELECTED);
    CHECK_STR(gni_ms_get_protocol(a->ms), "/yamux/1.0.0");
    CHECK_STR(gni_ms_get_protocol(b->ms), "/yamux/1.0.0");
    CHECK_EQ(gni_ms_get_index(a->ms), 0);
    CHECK_EQ(gni_ms_get_index(b->ms), 1);
    /* Exactly header + proposal each way. */
    CHECK_EQ(b->in_len, HDR_LEN + 14);
    CHECK_EQ(a->in_len, HDR_LEN + 14);
    CHECK_MEM(a->in, HDR "\x0d/yamux/1.0.0\n", HDR_LEN + 14);
    CHECK_EQ(a->left_len, 0);
    CHECK_EQ(b->left_len, 0);
    CHECK_EQ(gni_ms_deadline(a->ms), GN_TIME_INFINITY);
    side_free(a);
    side_free(b);
}

GN_TEST(na_then_match)
{
    static const char *const ip[] = {"/tls/1.0.0", "/noise"};
    static const char *const rp[] = {"/noise"};
    side *a = side_new(mk(GNI_MS_INITIATOR, ip, 2), NULL);
    side *b = side_new(mk(GNI_MS_RESPONDER, rp, 1), NULL);
    run_pair(a, b, 4096);
    CHECK_EQ(gni_ms_get_status(a->ms), GNI_MS_SELECTED);
    CHECK_EQ(gni_ms_get_status(b->ms), GNI_MS_SELECTED);
    CHECK_STR(gni_ms_get_protocol(a->ms), "/noise");
    CHECK_EQ(gni_ms_get_index(a->ms), 1);
    CHECK_EQ(gni_ms_get_index(b->ms), 0);
    const char r2i[] = HDR NA "\x07/noise\n";
    CHECK_EQ(a->in_len, sizeof r2i - 1);
    CHECK_MEM(a->in, r2i, sizeof r2i - 1);
    const char i2r[] = HDR "\x0b/tls/1.0.0\n\x07/noise\n";
    CHECK_EQ(b->in_len, sizeof i2r - 1);
    CHECK_MEM(b->in, i2r, sizeof i2r - 1);
    side_free(a);
    side_free(b);
}

GN_TEST(no_match)
{
    static const char *const ip[] = {"/a", "/b"};
    static const char *const rp[] = {"/c"};
    side *a = side_new(mk(GNI_MS_INITIATOR, ip, 2), NULL);
    side *b = side_new(mk(GNI_MS_RESPONDER, rp, 1), NULL);
    run_pair(a, b, 4096);
    CHECK_EQ(a->rc, GN_ENEGOTIATION);
    CHECK_EQ(gni_ms_get_status(a->ms), GNI_MS_FAILED);
    CHECK_EQ(gni_ms_get_error(a->ms), GN_ENEGOTIATION);
    CHECK(gni_ms_get_protocol(a->ms) == NULL);
    CHECK_EQ(gni_ms_get_index(a->ms), GN_ENOTFOUND);
    /* The responder answered na twice and waits; the initiator closes. */
    CHECK_EQ(gni_ms_get_status(b->ms), GNI_MS_PENDING);
    CHECK_EQ(gni_ms_feed_eof(b->ms), GN_ENEGOTIATION);
    CHECK_EQ(gni_ms_get_error(b->ms), GN_ENEGOTIATION);
    side_free(a);
    side_free(b);
}

GN_TEST(ls_only_query)
{
    static const char *const rp[] = {"/ipfs/ping/1.0.0", "/ipfs/id/1.0.0", "/echo"};
    gni_ms_config cfg;
    gni_ms_config_default(&cfg, GNI_MS_INITIATOR);
    cfg.request_ls = true;
    side *a = side_new(mk_cfg(&cfg), NULL);
    side *b = side_new(mk(GNI_MS_RESPONDER, rp, 3), NULL);
    run_pair(a, b, 4096);
    CHECK_EQ(gni_ms_get_status(a->ms), GNI_MS_LISTED);
    CHECK_EQ(gni_ms_ls_count(a->ms), 3);
    for (size_t k = 0; k < 3; k++) {
        gn_slice s;
        CHECK_EQ(gni_ms_ls_get(a->ms, k, &s), 0);
        CHECK_EQ(s.len, strlen(rp[k]));
        CHECK_MEM(s.base, rp[k], s.len);
    }
    gn_slice s;
    CHECK_EQ(gni_ms_ls_get(a->ms, 3, &s), GN_ERANGE);
    CHECK_EQ(gni_ms_get_status(b->ms), GNI_MS_PENDING);
    CHECK_EQ(gni_ms_feed_eof(b->ms), GN_EEOF);
    CHECK_EQ(gni_ms_feed_eof(a->ms), 0);
    side_free(a);
    side_free(b);
}

GN_TEST(ls_then_select)
{
    static const char *const ip[] = {"/x", "/echo"};
    static const char *const rp[] = {"/echo", "/y"};
    gni_ms_config cfg;
    gni_ms_config_default(&cfg, GNI_MS_INITIATOR);
    cfg.protocols = ip;
    cfg.protocol_cnt = 2;
    cfg.request_ls = true;
    side *a = side_new(mk_cfg(&cfg), NULL);
    side *b = side_new(mk(GNI_MS_RESPONDER, rp, 2), NULL);
    run_pair(a, b, 3);
    CHECK_EQ(gni_ms_get_status(a->ms), GNI_MS_SELECTED);
    CHECK_EQ(gni_ms_get_status(b->ms), GNI_MS_SELECTED);
    CHECK_STR(gni_ms_get_protocol(a->ms), "/echo");
    CHECK_EQ(gni_ms_ls_count(a->ms), 2);
    side_free(a);
    side_free(b);

    /* A responder that does not answer ls says na: empty list, go on. */
    gni_ms_config rc;
    gni_ms_config_default(&rc, GNI_MS_RESPONDER);
    rc.protocols = rp;
    rc.protocol_cnt = 2;
    rc.answer_ls = false;
    a = side_new(mk_cfg(&cfg), NULL);
    b = side_new(mk_cfg(&rc), NULL);
    run_pair(a, b, 4096);
    CHECK_EQ(gni_ms_get_status(a->ms), GNI_MS_SELECTED);
    CHECK_EQ(gni_ms_ls_count(a->ms), 0);
    CHECK_MEM(a->in, HDR NA NA "\x06/echo\n", HDR_LEN + 4 + 4 + 7);
    side_free(a);
    side_free(b);
}

GN_TEST(ls_answer_malformed)
{
    static const char *const bad[] = {
        "\x04\x03/a\n",         /* entry runs into the final '\n' */
        "\x04\x02/a\n",         /* entry length 2 but "/a\n" is 3 */
        "\x05\x03/a\nx",        /* no final '\n' */
        "\x07\x05/a\nb\n\n",    /* '\n' inside an entry */
        "\x03\x01\n\n",         /* empty id */
        "\x04\x09/a\n",         /* entry longer than the message */
        "\x05\x83\x00/a\n",     /* non-minimal entry length */
    };
    static const char *const ip[] = {"/a"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        gni_ms_config cfg;
        gni_ms_config_default(&cfg, GNI_MS_INITIATOR);
        cfg.protocols = ip;
        cfg.protocol_cnt = 1;
        cfg.request_ls = true;
        gni_ms *i = mk_cfg(&cfg);
        uint8_t in[64];
        memcpy(in, HDR, HDR_LEN);
        const char *m = bad[k];
        size_t ml = 1 + (size_t)(uint8_t)m[0];
        memcpy(in + HDR_LEN, m, ml);
        size_t used;
        int rc = feed(i, in, HDR_LEN + ml, &used);
        CHECK_EQ(rc, GN_EPROTO);
        CHECK_EQ(gni_ms_get_status(i), GNI_MS_FAILED);
        CHECK_EQ(gni_ms_ls_count(i), 0);
        gni_ms_free(i);
    }
}

GN_TEST(lazy_success)
{
    static const char *const p[] = {"/echo/1.0.0"};
    gni_ms_config cfg;
    gni_ms_config_default(&cfg, GNI_MS_INITIATOR);
    cfg.protocols = p;
    cfg.protocol_cnt = 1;
    cfg.lazy = true;
    gni_ms *ini = mk_cfg(&cfg);
    /* Optimistic from the start: the application may write at once. */
    CHECK_EQ(gni_ms_get_status(ini), GNI_MS_OPTIMISTIC);
    CHECK_STR(gni_ms_get_protocol(ini), "/echo/1.0.0");
    CHECK_EQ(gni_ms_get_index(ini), 0);
    side *a = side_new(ini, "ping!");
    side *b = side_new(mk(GNI_MS_RESPONDER, p, 1), "pong!");
    /* Everything the initiator sends fits in one flight, answered in one. */
    run_pair(a, b, 4096);
    CHECK_EQ(gni_ms_get_status(a->ms), GNI_MS_SELECTED);
    CHECK_EQ(gni_ms_get_status(b->ms), GNI_MS_SELECTED);
    const char i2r[] = HDR "\x0c/echo/1.0.0\nping!";
    CHECK_EQ(b->in_len, sizeof i2r - 1);
    CHECK_MEM(b->in, i2r, sizeof i2r - 1);
    CHECK_EQ(b->left_len, 5);
    CHECK_MEM(b->left, "ping!", 5);
    CHECK_EQ(a->left_len, 5);
    CHECK_MEM(a->left, "pong!", 5);
    side_free(a);
    side_free(b);
}

GN_TEST(lazy_success_single_buffer)
{
    /* Handshake answer and application data arrive in one read. */
    static const char *const p[] = {"/echo/1.0.0"};
    gni_ms_config cfg;
    gni_ms_config_default(&cfg, GNI_MS_INITIATOR);
    cfg.protocols = p;
    cfg.protocol_cnt = 1;
    cfg.lazy = true;
    gni_ms *i = mk_cfg(&cfg);
    const char in[] = HDR "\x0c/echo/1.0.0\nDATA";
    size_t used;
    CHECK_EQ(feed(i, in, sizeof in - 1, &used), 0);
    CHECK_EQ(used, sizeof in - 1 - 4);
    CHECK_EQ(gni_ms_get_status(i), GNI_MS_SELECTED);
    gni_ms_free(i);
}

GN_TEST(lazy_rejection)
{
    static const char *const ip[] = {"/x"};
    static const char *const rp[] = {"/y"};
    gni_ms_config cfg;
    gni_ms_config_default(&cfg, GNI_MS_INITIATOR);
    cfg.protocols = ip;
    cfg.protocol_cnt = 1;
    cfg.lazy = true;
    /* The application data after the optimistic proposal does not parse. */
    side *a = side_new(mk_cfg(&cfg), "\x02" "ab");
    side *b = side_new(mk(GNI_MS_RESPONDER, rp, 1), NULL);
    run_pair(a, b, 4096);
    CHECK_EQ(a->rc, GN_ENEGOTIATION);
    CHECK_EQ(gni_ms_get_status(a->ms), GNI_MS_FAILED);
    /* The na queued before the responder failed still reached the initiator. */
    CHECK_EQ(a->in_len, HDR_LEN + 4);
    CHECK_MEM(a->in, HDR NA, HDR_LEN + 4);
    /* After answering na, garbage is a failed negotiation, not EPROTO. */
    CHECK_EQ(b->rc, GN_ENEGOTIATION);
    CHECK_EQ(gni_ms_get_error(b->ms), GN_ENEGOTIATION);
    side_free(a);
    side_free(b);
}

GN_TEST(lazy_last_of_several)
{
    static const char *const ip[] = {"/a", "/b"};
    static const char *const rp[] = {"/b"};
    gni_ms_config cfg;
    gni_ms_config_default(&cfg, GNI_MS_INITIATOR);
    cfg.protocols = ip;
    cfg.protocol_cnt = 2;
    cfg.lazy = true;
    gni_ms *i = mk_cfg(&cfg);
    CHECK_EQ(gni_ms_get_status(i), GNI_MS_PENDING);
    size_t used;
    CHECK_EQ(feed(i, HDR NA, HDR_LEN + 4, &used), 0);
    CHECK_EQ(used, HDR_LEN + 4);
    CHECK_EQ(gni_ms_get_status(i), GNI_MS_OPTIMISTIC);
    CHECK_STR(gni_ms_get_protocol(i), "/b");
    expect_out(i, HDR "\x03/a\n\x03/b\n", HDR_LEN + 8);
    CHECK_EQ(feed(i, "\x03/b\nZ", 5, &used), 0);
    CHECK_EQ(used, 4);
    CHECK_EQ(gni_ms_get_status(i), GNI_MS_SELECTED);
    CHECK_EQ(gni_ms_get_index(i), 1);
    gni_ms_free(i);
    (void)rp;
}

GN_TEST(leftover_after_selection)
{
    static const char *const p[] = {"/proto"};
    /* Responder: header + proposal + application bytes in one read. */
    gni_ms *r = mk(GNI_MS_RESPONDER, p, 1);
    const char rin[] = HDR "\x07/proto\nxyz";
    size_t used;
    CHECK_EQ(feed(r, rin, sizeof rin - 1, &used), 0);
    CHECK_EQ(used, sizeof rin - 1 - 3);
    CHECK_EQ(gni_ms_get_status(r), GNI_MS_SELECTED);
    expect_out(r, HDR "\x07/proto\n", HDR_LEN + 8);
    /* Later feeds consume nothing. */
    CHECK_EQ(feed(r, "more", 4, &used), 0);
    CHECK_EQ(used, 0);
    CHECK_EQ(gni_ms_pending(r), 0);
    CHECK_EQ(gni_ms_feed_eof(r), 0);
    gni_ms_free(r);

    /* Initiator: header + echo + application bytes (a byte that looks like a varint). */
    gni_ms *i = mk(GNI_MS_INITIATOR, p, 1);
    const char iin[] = HDR "\x07/proto\n\x05hello";
    CHECK_EQ(feed(i, iin, sizeof iin - 1, &used), 0);
    CHECK_EQ(used, HDR_LEN + 8);
    CHECK_EQ(gni_ms_get_status(i), GNI_MS_SELECTED);
    CHECK_STR(gni_ms_get_protocol(i), "/proto");
    gni_ms_free(i);
}

/* Feeds @in split at @k (two calls) and byte by byte; checks the outcome. */
static void split_case(gni_ms_role role, const char *in, size_t len, size_t app_len,
                       const char *want_out, size_t want_out_len, const char *want_proto)
{
    static const char *const rp[] = {"/other", "/proto"};
    static const char *const ip[] = {"/nope", "/proto"};
    for (size_t k = 0; k <= len + 1; k++) {
        /* k == len + 1: byte by byte. */
        gni_ms *ms = role == GNI_MS_RESPONDER ? mk(role, rp, 2) : mk(role, ip, 2);
        size_t total = 0, used;
        if (k <= len) {
            CHECK_EQ(feed(ms, in, k, &used), 0);
            CHECK_EQ(used, k <= len - app_len ? k : len - app_len);
            total = used;
            if (used == k) {
                CHECK_EQ(feed(ms, in + k, len - k, &used), 0);
                total += used;
            }
        } else {
            for (size_t j = 0; j < len; j++) {
                CHECK_EQ(feed(ms, in + j, 1, &used), 0);
                CHECK(used <= 1);
                total += used;
                if (used == 0) {
                    CHECK(j >= len - app_len);
                }
            }
        }
        CHECK_EQ(total, len - app_len);
        CHECK_EQ(gni_ms_get_status(ms), GNI_MS_SELECTED);
        CHECK_STR(gni_ms_get_protocol(ms), want_proto);
        uint8_t out[256];
        size_t n = drain_all(ms, out, sizeof out);
        CHECK_EQ(n, want_out_len);
        CHECK_MEM(out, want_out, n);
        gni_ms_free(ms);
    }
}

GN_TEST(every_split_point)
{
    const char rin[] = HDR "\x06/nope\n" LS "\x07/proto\nAPP";
    const char rout[] = HDR NA "\x11\x07/other\n\x07/proto\n\n" "\x07/proto\n";
    split_case(GNI_MS_RESPONDER, rin, sizeof rin - 1, 3, rout, sizeof rout - 1, "/proto");

    const char iin[] = HDR NA "\x07/proto\nAPP";
    const char iout[] = HDR "\x06/nope\n\x07/proto\n";
    split_case(GNI_MS_INITIATOR, iin, sizeof iin - 1, 3, iout, sizeof iout - 1, "/proto");
}

GN_TEST(pair_small_chunks)
{
    static const char *const ip[] = {"/a/1", "/b/2", "/c/3"};
    static const char *const rp[] = {"/c/3", "/b/2"};
    for (size_t chunk = 1; chunk <= 9; chunk++) {
        side *a = side_new(mk(GNI_MS_INITIATOR, ip, 3), "hello");
        side *b = side_new(mk(GNI_MS_RESPONDER, rp, 2), "world");
        run_pair(a, b, chunk);
        CHECK_STR(gni_ms_get_protocol(a->ms), "/b/2");
        CHECK_STR(gni_ms_get_protocol(b->ms), "/b/2");
        CHECK_EQ(b->left_len, 5);
        CHECK_MEM(b->left, "hello", 5);
        CHECK_EQ(a->left_len, 5);
        CHECK_MEM(a->left, "world", 5);
        side_free(a);
        side_free(b);
    }
}

/* ---- limits and malformed input ---- */

static int feed_fresh(gni_ms_role role, const void *in, size_t len, size_t max_msg_len)
{
    static const char *const p[] = {"/p"};
    gni_ms_config cfg;
    gni_ms_config_default(&cfg, role);
    cfg.protocols = p;
    cfg.protocol_cnt = 1;
    if (max_msg_len) {
        cfg.max_msg_len = max_msg_len;
    }
    gni_ms *ms = mk_cfg(&cfg);
    size_t used = 12345;
    int rc = gni_ms_feed(ms, in, len, &used);
    if (rc < 0) {
        CHECK_EQ(used, 12345); /* untouched on failure */
        CHECK_EQ(gni_ms_get_status(ms), GNI_MS_FAILED);
        CHECK_EQ(gni_ms_get_error(ms), rc);
        /* Sticky. */
        CHECK_EQ(gni_ms_feed(ms, u8(HDR), HDR_LEN, &used), rc);
        CHECK_EQ(gni_ms_expire(ms, GN_TIME_INFINITY - 1), rc);
        CHECK_EQ(gni_ms_feed_eof(ms), rc);
    }
    gni_ms_free(ms);
    return rc;
}

GN_TEST(oversize_message)
{
    /* 1025 = varint 81 08: over the default 1024. */
    CHECK_EQ(feed_fresh(GNI_MS_RESPONDER, "\x81\x08", 2, 0), GN_EFRAMESIZE);
    CHECK_EQ(feed_fresh(GNI_MS_INITIATOR, "\x81\x08", 2, 0), GN_EFRAMESIZE);
    /* 1024 = 80 08 is accepted (waits for the body). */
    CHECK_EQ(feed_fresh(GNI_MS_RESPONDER, "\x80\x08", 2, 0), 0);
    /* A third varint byte is rejected before it is even complete. */
    CHECK_EQ(feed_fresh(GNI_MS_RESPONDER, "\xff\xff", 2, 0), GN_EFRAMESIZE);
    CHECK_EQ(feed_fresh(GNI_MS_RESPONDER, "\xff\xff\xff\xff\x0f", 5, 0), GN_EFRAMESIZE);
    /* Configured limit 64: 65 fails, 64 passes. */
    CHECK_EQ(feed_fresh(GNI_MS_RESPONDER, "\x41", 1, 64), GN_EFRAMESIZE);
    CHECK_EQ(feed_fresh(GNI_MS_RESPONDER, "\x40", 1, 64), 0);
    /* Oversize after the header, in the proposal phase. */
    CHECK_EQ(feed_fresh(GNI_MS_RESPONDER, HDR "\x90\x10", HDR_LEN + 2, 0), GN_EFRAMESIZE);
}

GN_TEST(missing_newline)
{
    CHECK_EQ(feed_fresh(GNI_MS_RESPONDER, "\x13/multistream/1.0.0X", 20, 0), GN_EPROTO);
    CHECK_EQ(feed_fresh(GNI_MS_INITIATOR, "\x13/multistream/1.0.0X", 20, 0), GN_EPROTO);
    CHECK_EQ(feed_fresh(GNI_MS_RESPONDER, HDR "\x02/p", HDR_LEN + 3, 0), GN_EPROTO);
    /* Zero-length message: no room for the newline. */
    CHECK_EQ(feed_fresh(GNI_MS_RESPONDER, "\x00", 1, 0), GN_EPROTO);
    /* Header sent without its newline (18 bytes). */
    CHECK_EQ(feed_fresh(GNI_MS_RESPONDER, "\x12/multistream/1.0.0", 19, 0), GN_EPROTO);
}

GN_TEST(bad_header)
{
    CHECK_EQ(feed_fresh(GNI_MS_RESPONDER, "\x13/multistream/2.0.0\n", 20, 0), GN_EPROTO);
    CHECK_EQ(feed_fresh(GNI_MS_INITIATOR, "\x13/multistream/2.0.0\n", 20, 0), GN_EPROTO);
    /* A proposal before the header. */
    CHECK_EQ(feed_fresh(GNI_MS_RESPONDER, "\x03/p\n", 4, 0), GN_EPROTO);
    /* Initiator: "na" as the first message. */
    CHECK_EQ(feed_fresh(GNI_MS_INITIATOR, NA, 4, 0), GN_EPROTO);
    /* Initiator: an answer that is neither the proposal nor na. */
    CHECK_EQ(feed_fresh(GNI_MS_INITIATOR, HDR "\x03/q\n", HDR_LEN + 4, 0), GN_EPROTO);
    /* Initiator: the header twice. */
    CHECK_EQ(feed_fresh(GNI_MS_INITIATOR, HDR HDR, 2 * HDR_LEN, 0), GN_EPROTO);
    /* Non-minimal varint (0x93 0x00 for 19). */
    CHECK_EQ(feed_fresh(GNI_MS_RESPONDER, "\x93\x00/multistream/1.0.0\n", 21, 0), GN_EPROTO);
}

GN_TEST(too_many_proposals)
{
    static const char *const rp[] = {"/want"};
    gni_ms_config cfg;
    gni_ms_config_default(&cfg, GNI_MS_RESPONDER);
    cfg.protocols = rp;
    cfg.protocol_cnt = 1;
    cfg.max_rounds = 3;
    gni_ms *r = mk_cfg(&cfg);
    size_t used;
    CHECK_EQ(feed(r, HDR "\x03/a\n" LS "\x03/c\n", HDR_LEN + 12, &used), 0);
    CHECK_EQ(gni_ms_get_status(r), GNI_MS_PENDING);
    CHECK_EQ(gni_ms_pending(r), HDR_LEN + 4 + 9 + 4);
    CHECK_EQ(feed(r, "\x03/d\n", 4, &used), GN_ENEGOTIATION);
    CHECK_EQ(gni_ms_get_status(r), GNI_MS_FAILED);
    /* The 4th proposal is not answered; earlier answers stay drainable. */
    CHECK_EQ(gni_ms_pending(r), HDR_LEN + 4 + 9 + 4);
    gni_ms_free(r);

    /* Default cap: 16 rejected proposals pass, the 17th fails. */
    r = mk(GNI_MS_RESPONDER, rp, 1);
    CHECK_EQ(feed(r, HDR, HDR_LEN, &used), 0);
    for (int k = 0; k < 16; k++) {
        CHECK_EQ(feed(r, "\x03/z\n", 4, &used), 0);
    }
    CHECK_EQ(feed(r, "\x03/z\n", 4, &used), GN_ENEGOTIATION);
    gni_ms_free(r);
}

GN_TEST(responder_odd_proposals_get_na)
{
    static const char *const rp[] = {"/p"};
    gni_ms *r = mk(GNI_MS_RESPONDER, rp, 1);
    expect_out(r, HDR, HDR_LEN);
    size_t used;
    /* "na", the header again, an id with a NUL, an id with an inner newline. */
    const char in[] = HDR NA HDR "\x04/p\0\n" "\x04/\np\n";
    CHECK_EQ(feed(r, in, sizeof in - 1, &used), 0);
    CHECK_EQ(used, sizeof in - 1);
    expect_out(r, NA NA NA NA, 16);
    CHECK_EQ(gni_ms_get_status(r), GNI_MS_PENDING);
    gni_ms_free(r);
}

/* ---- callback matching ---- */

typedef struct match_ctx {
    int calls;
    int verdict_error;
} match_ctx;

static int match_prefix(void *ud, const char *proto, size_t len)
{
    match_ctx *m = ud;
    m->calls++;
    if (m->verdict_error) {
        return -1;
    }
    CHECK_EQ(strlen(proto), len);
    return strncmp(proto, "/ipfs/", 6) == 0 ? 1 : 0;
}

GN_TEST(match_callback)
{
    static const char *const rp[] = {"/ipfs/ping/1.0.0"};
    match_ctx m = {0, 0};
    gni_ms_config cfg;
    gni_ms_config_default(&cfg, GNI_MS_RESPONDER);
    cfg.protocols = rp;
    cfg.protocol_cnt = 1;
    cfg.match = match_prefix;
    cfg.user_data = &m;
    gni_ms *r = mk_cfg(&cfg);
    size_t used;
    const char in[] = HDR "\x05/foo\n\x0c/ipfs/kad/1\n";
    CHECK_EQ(feed(r, in, sizeof in - 1, &used), 0);
    CHECK_EQ(m.calls, 2);
    CHECK_EQ(gni_ms_get_status(r), GNI_MS_SELECTED);
    CHECK_STR(gni_ms_get_protocol(r), "/ipfs/kad/1");
    CHECK_EQ(gni_ms_get_index(r), GN_ENOTFOUND);
    expect_out(r, HDR NA "\x0c/ipfs/kad/1\n", HDR_LEN + 4 + 13);
    gni_ms_free(r);

    /* Callback only, no list; ls answers an empty list. */
    cfg.protocols = NULL;
    cfg.protocol_cnt = 0;
    r = mk_cfg(&cfg);
    CHECK_EQ(feed(r, HDR LS, HDR_LEN + 4, &used), 0);
    expect_out(r, HDR "\x01\n", HDR_LEN + 2);
    gni_ms_free(r);

    m.verdict_error = 1;
    r = mk_cfg(&cfg);
    CHECK_EQ(feed(r, HDR "\x03/q\n", HDR_LEN + 4, &used), GN_ECALLBACK);
    CHECK_EQ(gni_ms_get_error(r), GN_ECALLBACK);
    gni_ms_free(r);
}

/* ---- time, EOF, drain, configuration ---- */

GN_TEST(timeout)
{
    static const char *const p[] = {"/p"};
    gni_ms_config cfg;
    gni_ms_config_default(&cfg, GNI_MS_INITIATOR);
    cfg.protocols = p;
    cfg.protocol_cnt = 1;
    cfg.timeout = 5 * GN_S;
    gni_ms *i = NULL;
    CHECK_EQ(gni_ms_new(&cfg, 100 * GN_S, &i), 0);
    CHECK_EQ(gni_ms_deadline(i), 105 * GN_S);
    CHECK_EQ(gni_ms_expire(i, 104 * GN_S), 0);
    CHECK_EQ(gni_ms_get_status(i), GNI_MS_PENDING);
    CHECK_EQ(gni_ms_expire(i, 105 * GN_S), GN_ETIMEDOUT);
    CHECK_EQ(gni_ms_get_status(i), GNI_MS_FAILED);
    CHECK_EQ(gni_ms_deadline(i), GN_TIME_INFINITY);
    gni_ms_free(i);

    /* Selected before the deadline: no deadline any more, expire is a no-op. */
    i = NULL;
    CHECK_EQ(gni_ms_new(&cfg, 0, &i), 0);
    size_t used;
    CHECK_EQ(feed(i, HDR "\x03/p\n", HDR_LEN + 4, &used), 0);
    CHECK_EQ(gni_ms_deadline(i), GN_TIME_INFINITY);
    CHECK_EQ(gni_ms_expire(i, 10 * GN_S), 0);
    CHECK_EQ(gni_ms_get_status(i), GNI_MS_SELECTED);
    gni_ms_free(i);

    /* Saturating deadline. */
    cfg.timeout = GN_TIME_INFINITY - 1;
    i = NULL;
    CHECK_EQ(gni_ms_new(&cfg, 10, &i), 0);
    CHECK_EQ(gni_ms_deadline(i), GN_TIME_INFINITY);
    gni_ms_free(i);
}

GN_TEST(eof_before_done)
{
    static const char *const p[] = {"/p"};
    gni_ms *i = mk(GNI_MS_INITIATOR, p, 1);
    size_t used;
    CHECK_EQ(feed(i, HDR, HDR_LEN, &used), 0);
    CHECK_EQ(gni_ms_feed_eof(i), GN_EEOF);
    CHECK_EQ(gni_ms_get_error(i), GN_EEOF);
    gni_ms_free(i);
    gni_ms *r = mk(GNI_MS_RESPONDER, p, 1);
    CHECK_EQ(gni_ms_feed_eof(r), GN_EEOF);
    gni_ms_free(r);
}

GN_TEST(drain_in_small_pieces)
{
    static const char *const p[] = {"/a", "/bb"};
    gni_ms *r = mk(GNI_MS_RESPONDER, p, 2);
    size_t used;
    CHECK_EQ(feed(r, HDR LS, HDR_LEN + 4, &used), 0);
    const char want[] = HDR "\x0a\x03/a\n\x04/bb\n\n";
    uint8_t out[64];
    size_t got = 0;
    for (int guard = 0; guard < 100 && gni_ms_pending(r) > 0; guard++) {
        uint8_t piece[3];
        gn_buf b;
        gn_buf_init(&b, piece, sizeof piece);
        int n = gni_ms_drain(r, &b);
        CHECK(n > 0 && n <= 3);
        memcpy(out + got, piece, (size_t)n);
        got += (size_t)n;
    }
    CHECK_EQ(got, sizeof want - 1);
    CHECK_MEM(out, want, got);
    /* Full buffer: nothing moves. */
    gn_buf b;
    gn_buf_init(&b, out, 0);
    CHECK_EQ(gni_ms_drain(r, &b), 0);
    CHECK_EQ(gni_ms_drain(r, NULL), GN_EINVAL);
    gni_ms_free(r);
}

GN_TEST(config_validation)
{
    static const char *const good[] = {"/p"};
    static const char *const nl[] = {"/p\nq"};
    static const char *const empty[] = {""};
    static const char *const na[] = {"na"};
    static const char *const ls[] = {"ls"};
    static const char *const hdr[] = {"/multistream/1.0.0"};
    static const char *const null1[] = {NULL};
    gni_ms *ms = NULL;
    gni_ms_config cfg;

    CHECK_EQ(gni_ms_new(NULL, 0, &ms), GN_EINVAL);
    gni_ms_config_default(&cfg, GNI_MS_INITIATOR);
    CHECK_EQ(gni_ms_new(&cfg, 0, NULL), GN_EINVAL);
    /* Initiator without proposals and without ls. */
    CHECK_EQ(gni_ms_new(&cfg, 0, &ms), GN_EINVAL);
    const char *const *bad[] = {nl, empty, na, ls, hdr, null1};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        cfg.protocols = bad[k];
        cfg.protocol_cnt = 1;
        CHECK_EQ(gni_ms_new(&cfg, 0, &ms), GN_EINVAL);
    }
    cfg.protocols = good;
    cfg.max_msg_len = GNI_MS_MIN_MAX_MSG_LEN - 1;
    CHECK_EQ(gni_ms_new(&cfg, 0, &ms), GN_EINVAL);
    cfg.max_msg_len = GNI_MS_MAX_MAX_MSG_LEN + 1;
    CHECK_EQ(gni_ms_new(&cfg, 0, &ms), GN_EINVAL);
    cfg.max_msg_len = GNI_MS_DEFAULT_MAX_MSG_LEN;
    cfg.max_rounds = 0;
    CHECK_EQ(gni_ms_new(&cfg, 0, &ms), GN_EINVAL);
    cfg.max_rounds = 1;
    cfg.protocol_cnt = GNI_MS_MAX_PROTOCOLS + 1;
    CHECK_EQ(gni_ms_new(&cfg, 0, &ms), GN_EINVAL);
    cfg.protocol_cnt = 1;
    cfg.role = (gni_ms_role)7;
    CHECK_EQ(gni_ms_new(&cfg, 0, &ms), GN_EINVAL);
    /* Responder with neither list nor callback. */
    gni_ms_config_default(&cfg, GNI_MS_RESPONDER);
    CHECK_EQ(gni_ms_new(&cfg, 0, &ms), GN_EINVAL);
    CHECK(ms == NULL);
    /* An id exactly max_msg_len - 1 long is fine, one more is not. */
    char longid[GNI_MS_MIN_MAX_MSG_LEN + 1];
    memset(longid, 'x', sizeof longid);
    longid[0] = '/';
    longid[GNI_MS_MIN_MAX_MSG_LEN - 1] = '\0';
    const char *const lp[] = {longid};
    cfg.protocols = lp;
    cfg.protocol_cnt = 1;
    cfg.max_msg_len = GNI_MS_MIN_MAX_MSG_LEN;
    CHECK_EQ(gni_ms_new(&cfg, 0, &ms), 0);
    gni_ms_free(ms);
    ms = NULL;
    longid[GNI_MS_MIN_MAX_MSG_LEN - 1] = 'x';
    longid[GNI_MS_MIN_MAX_MSG_LEN] = '\0';
    CHECK_EQ(gni_ms_new(&cfg, 0, &ms), GN_EINVAL);
    CHECK(ms == NULL);
    gni_ms_free(NULL);
}

/* ---- allocation failure: make allocation k fail, for every k ---- */

/* One full negotiation with ls; returns 0 or the first error seen. */
static int fa_scenario(void)
{
    static const char *const ip[] = {"/a", "/b"};
    static const char *const rp[] = {"/b", "/c"};
    gni_ms_config ic, rc;
    gni_ms_config_default(&ic, GNI_MS_INITIATOR);
    ic.protocols = ip;
    ic.protocol_cnt = 2;
    ic.request_ls = true;
    gni_ms_config_default(&rc, GNI_MS_RESPONDER);
    rc.protocols = rp;
    rc.protocol_cnt = 2;
    gni_ms *i = NULL, *r = NULL;
    int err = gni_ms_new(&ic, 0, &i);
    if (err < 0) {
        CHECK(i == NULL);
        return err;
    }
    err = gni_ms_new(&rc, 0, &r);
    if (err < 0) {
        CHECK(r == NULL);
        gni_ms_free(i);
        return err;
    }
    side *a = side_new(i, NULL);
    side *b = side_new(r, NULL);
    run_pair(a, b, 4096);
    err = a->rc ? a->rc : b->rc;
    if (err == 0) {
        CHECK_STR(gni_ms_get_protocol(i), "/b");
        CHECK_STR(gni_ms_get_protocol(r), "/b");
        CHECK_EQ(gni_ms_ls_count(i), 2);
    }
    side_free(a);
    side_free(b);
    return err;
}

GN_TEST(allocation_failure_every_k)
{
    size_t failures = fa_every_k(fa_scenario, 200);
    CHECK(failures >= 8);
}

GN_TEST_MAIN(GN_T(kat_responder_header), GN_T(kat_initiator_first_flight),
             GN_T(kat_na_echo_and_ls_answer), GN_T(direct_match), GN_T(na_then_match),
             GN_T(no_match), GN_T(ls_only_query), GN_T(ls_then_select),
             GN_T(ls_answer_malformed), GN_T(lazy_success), GN_T(lazy_success_single_buffer),
             GN_T(lazy_rejection), GN_T(lazy_last_of_several), GN_T(leftover_after_selection),
             GN_T(every_split_point), GN_T(pair_small_chunks), GN_T(oversize_message),
             GN_T(missing_newline), GN_T(bad_header), GN_T(too_many_proposals),
             GN_T(responder_odd_proposals_get_na), GN_T(match_callback), GN_T(timeout),
             GN_T(eof_before_done), GN_T(drain_in_small_pieces), GN_T(config_validation),
             GN_T(allocation_failure_every_k))
