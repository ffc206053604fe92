/*
 * mplex core tests: two sessions back to back in memory.
 *
 * Known-answer frames are derived by hand from libp2p/specs
 * mplex/README.md "Message format": uvarint(id << 3 | flag), uvarint(len),
 * body; flags 0 NewStream .. 6 ResetInitiator.
 */
#include "../gn_test.h"

#include "gni.h"
#include "gni_rcmgr.h"
#include "mplex.h"

#include <stdio.h>
#include <string.h>

#define KIB 1024u
#define H(id, remote) GNI_MPLEX_HANDLE(id, remote)

static gn_mux_config cfg0(void)
{
    gn_mux_config c;
    memset(&c, 0, sizeof(c));
    c.version = GN_MUX_CONFIG_VERSION;
    return c;
}

static uint8_t g_wire[64 * 1024];

static size_t pump(gni_mplex *a, gni_mplex *b)
{
    size_t total = 0;
    for (int i = 0; i < 100000 && gni_mplex_want_drain(a); i++) {
        gn_buf out;
        gn_buf_init(&out, g_wire, sizeof(g_wire));
        int n = gni_mplex_drain(a, &out, 0);
        CHECK(n >= 0);
        if (n == 0)
            break;
        size_t used = 0;
        CHECK_OK(gni_mplex_feed(b, out.pos, (size_t)n, &used, 0));
        CHECK_EQ(used, n);
        total += (size_t)n;
    }
    return total;
}

static void exchange(gni_mplex *a, gni_mplex *b)
{
    for (int i = 0; i < 1000; i++) {
        if (pump(a, b) + pump(b, a) == 0)
            return;
    }
    CHECK(!"exchange did not settle");
}

static size_t drain_to(gni_mplex *a, uint8_t *buf, size_t cap)
{
    gn_buf out;
    gn_buf_init(&out, buf, cap);
    int n = gni_mplex_drain(a, &out, 0);
    CHECK(n >= 0);
    return (size_t)n;
}

typedef struct evlog {
    gni_mplex_event ev[4096];
    size_t n;
} evlog;

static void collect(gni_mplex *ms, evlog *log)
{
    gni_mplex_event ev;
    for (int i = 0; i < 100000 && gni_mplex_next_event(ms, &ev) == 1; i++) {
        if (log->n < GNI_ARRAY_LEN(log->ev))
            log->ev[log->n++] = ev;
    }
}

static size_t count(const evlog *log, int type)
{
    size_t k = 0;
    for (size_t i = 0; i < log->n; i++)
        k += log->ev[i].type == type;
    return k;
}

static const gni_mplex_event *find(const evlog *log, int type, uint64_t h)
{
    for (size_t i = 0; i < log->n; i++)
        if (log->ev[i].type == type && log->ev[i].stream_id == h)
            return &log->ev[i];
    return NULL;
}

static void mkpair(gni_mplex **a, gni_mplex **b, const gn_mux_config *ac,
                   const gn_mux_config *bc)
{
    CHECK_OK(gni_mplex_new(true, ac, 0, a));
    CHECK_OK(gni_mplex_new(false, bc, 0, b));
}

/* ---- known answers ---------------------------------------------------- */

GN_TEST(kat_new_stream_and_flags)
{
    gn_mux_config c = cfg0();
    gni_mplex *a;
    CHECK_OK(gni_mplex_new(true, &c, 0, &a));
    uint64_t s0, s1;
    CHECK_OK(gni_mplex_open(a, NULL, 0, &s0)); /* default name: the id, "0" */
    CHECK_OK(gni_mplex_open(a, "hello", 5, &s1));
    CHECK_EQ(s0, H(0, 0));
    CHECK_EQ(s1, H(1, 0));
    CHECK_EQ(gni_mplex_stream_write(a, s1, (const uint8_t *)"hi", 2), 2);
    CHECK_OK(gni_mplex_stream_shutdown(a, s1));
    uint8_t buf[128], want[128];
    /* NewStream id 0 "0"; NewStream id 1 "hello"; MessageInitiator id 1
     * (0x0a) "hi"; CloseInitiator id 1 (0x0c) */
    long n = gn_test_unhex("00 01 30"
                           "08 05 68656c6c6f"
                           "0a 02 6869"
                           "0c 00",
                           want, sizeof(want));
    CHECK_EQ(drain_to(a, buf, sizeof(buf)), n);
    CHECK_MEM(buf, want, (size_t)n);
    CHECK_OK(gni_mplex_stream_reset(a, s0));
    CHECK_EQ(drain_to(a, buf, sizeof(buf)), 2);
    CHECK_EQ(gn_test_unhex("06 00", want, sizeof(want)), 2); /* ResetInitiator id 0 */
    CHECK_MEM(buf, want, 2);
    /* header encoder: id 16 MessageReceiver -> 0x81 = varint 81 01 */
    uint8_t hdr[20];
    CHECK_EQ(gni_mplex_encode_header(hdr, sizeof(hdr), 16, GNI_MPLEX_MSG_RECEIVER, 300), 4);
    CHECK_EQ(gn_test_unhex("81 01 ac 02", want, sizeof(want)), 4);
    CHECK_MEM(hdr, want, 4);
    CHECK_EQ(gni_mplex_encode_header(hdr, sizeof(hdr), 0, 7, 0), GN_ERANGE);
    CHECK_EQ(gni_mplex_encode_header(hdr, 1, 16, 1, 0), GN_ENOSPC);
    gni_mplex_free(a);
}

GN_TEST(kat_receiver_side_flags)
{
    gn_mux_config c = cfg0();
    gni_mplex *b;
    CHECK_OK(gni_mplex_new(false, &c, 0, &b));
    uint8_t in[16];
    long n = gn_test_unhex("00 02 6162", in, sizeof(in)); /* NewStream id 0 "ab" */
    size_t used;
    CHECK_OK(gni_mplex_feed(b, in, (size_t)n, &used, 0));
    gn_slice name;
    CHECK_OK(gni_mplex_stream_name(b, H(0, 1), &name));
    CHECK_EQ(name.len, 2);
    CHECK_MEM(name.base, "ab", 2);
    CHECK_OK(gni_mplex_accept(b, H(0, 1)));
    CHECK_EQ(gni_mplex_stream_write(b, H(0, 1), (const uint8_t *)"z", 1), 1);
    CHECK_OK(gni_mplex_stream_shutdown(b, H(0, 1)));
    uint8_t buf[32], want[32];
    /* MessageReceiver (0x01) "z", CloseReceiver (0x03) */
    long w = gn_test_unhex("01 01 7a 03 00", want, sizeof(want));
    CHECK_EQ(drain_to(b, buf, sizeof(buf)), w);
    CHECK_MEM(buf, want, (size_t)w);
    CHECK_OK(gni_mplex_stream_reset(b, H(0, 1)));
    CHECK_EQ(drain_to(b, buf, sizeof(buf)), 2);
    CHECK_EQ(gn_test_unhex("05 00", want, sizeof(want)), 2); /* ResetReceiver */
    CHECK_MEM(buf, want, 2);
    gni_mplex_free(b);
}

/* ---- flows ------------------------------------------------------------ */

GN_TEST(open_accept_data_both_ways)
{
    gn_mux_config c = cfg0();
    gni_mplex *a, *b;
    mkpair(&a, &b, &c, &c);
    uint64_t s;
    int tag = 7;
    CHECK_OK(gni_mplex_open(a, "/echo/1.0.0", 11, &s));
    CHECK_OK(gni_mplex_stream_set_user_data(a, s, &tag));
    CHECK_EQ(gni_mplex_stream_write(a, s, (const uint8_t *)"hello", 5), 5);
    exchange(a, b);
    evlog *log = calloc(1, sizeof(*log));
    collect(b, log);
    CHECK_EQ(log->n, 2);
    CHECK_EQ(log->ev[0].type, GNI_MPLEX_EV_STREAM_OPENED);
    CHECK_EQ(log->ev[0].stream_id, H(0, 1));
    CHECK_EQ(log->ev[1].type, GNI_MPLEX_EV_STREAM_DATA);
    gn_slice name;
    CHECK_OK(gni_mplex_stream_name(b, H(0, 1), &name));
    CHECK_EQ(name.len, 11);
    CHECK_MEM(name.base, "/echo/1.0.0", 11);
    gni_mplex_stream_info info;
    CHECK_OK(gni_mplex_stream_get_info(b, H(0, 1), &info));
    CHECK_EQ(info.state, GNI_MPLEX_ST_PENDING);
    CHECK(info.inbound);
    CHECK_EQ(gni_mplex_stream_write(b, H(0, 1), (const uint8_t *)"x", 1), GN_ESTATE);
    CHECK_OK(gni_mplex_accept(b, H(0, 1)));
    CHECK_EQ(gni_mplex_accept(b, H(0, 1)), GN_ESTATE);
    CHECK(!gni_mplex_want_drain(b)); /* accept has no wire effect */
    uint8_t rd[16];
    CHECK_EQ(gni_mplex_stream_read(b, H(0, 1), rd, sizeof(rd)), 5);
    CHECK_MEM(rd, "hello", 5);
    CHECK_EQ(gni_mplex_stream_write(b, H(0, 1), (const uint8_t *)"world", 5), 5);
    exchange(a, b);
    log->n = 0;
    collect(a, log);
    CHECK_EQ(log->n, 1);
    CHECK_EQ(log->ev[0].type, GNI_MPLEX_EV_STREAM_DATA);
    CHECK(log->ev[0].stream_user_data == &tag);
    gn_slice sl;
    CHECK_EQ(gni_mplex_stream_peek(a, s, &sl), 1);
    CHECK_EQ(sl.len, 5);
    CHECK_MEM(sl.base, "world", 5);
    CHECK_OK(gni_mplex_stream_consume(a, s, 5));
    CHECK_EQ(gni_mplex_buffered(a), 0);
    /* both sides may use the same id number for their own streams */
    uint64_t t;
    CHECK_OK(gni_mplex_open(b, NULL, 0, &t));
    CHECK_EQ(t, H(0, 0));
    CHECK_EQ(gni_mplex_stream_write(b, t, (const uint8_t *)"other", 5), 5);
    exchange(a, b);
    CHECK_EQ(gni_mplex_stream_read(a, H(0, 1), rd, sizeof(rd)), 5);
    CHECK_MEM(rd, "other", 5);
    CHECK_EQ(gni_mplex_buffered(a), 0);
    free(log);
    gni_mplex_free(a);
    gni_mplex_free(b);
}

GN_TEST(byte_by_byte_feeding)
{
    gn_mux_config c = cfg0();
    gni_mplex *a, *b;
    mkpair(&a, &b, &c, &c);
    uint64_t s[20];
    static uint8_t payload[3000];
    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)(i * 13);
    /* 20 streams so ids >= 16 need two-byte header varints */
    for (int i = 0; i < 20; i++)
        CHECK_OK(gni_mplex_open(a, NULL, 0, &s[i]));
    CHECK_EQ(gni_mplex_stream_write(a, s[19], payload, sizeof(payload)), 3000);
    CHECK_OK(gni_mplex_stream_shutdown(a, s[19]));
    static uint8_t buf[8192];
    size_t n = drain_to(a, buf, sizeof(buf));
    for (size_t i = 0; i < n; i++) {
        size_t used;
        CHECK_OK(gni_mplex_feed(b, buf + i, 1, &used, 0));
        CHECK_EQ(used, 1);
    }
    evlog *log = calloc(1, sizeof(*log));
    collect(b, log);
    CHECK_EQ(count(log, GNI_MPLEX_EV_STREAM_OPENED), 20);
    gn_slice name;
    CHECK_OK(gni_mplex_stream_name(b, H(19, 1), &name));
    CHECK_EQ(name.len, 2);
    CHECK_MEM(name.base, "19", 2);
    static uint8_t rd[4000];
    CHECK_EQ(gni_mplex_stream_read(b, H(19, 1), rd, sizeof(rd)), 3000);
    CHECK_MEM(rd, payload, 3000);
    log->n = 0;
    collect(b, log);
    CHECK(find(log, GNI_MPLEX_EV_STREAM_FIN, H(19, 1)));
    free(log);
    gni_mplex_free(a);
    gni_mplex_free(b);
}

GN_TEST(thousand_concurrent_streams)
{
    gn_mux_config c = cfg0();
    c.max_pending_streams = 1024;
    gni_mplex *a, *b;
    mkpair(&a, &b, &c, &c);
    static uint64_t s[1000];
    for (int i = 0; i < 1000; i++) {
        char msg[16];
        int len = snprintf(msg, sizeof(msg), "req%04d", i);
        CHECK_OK(gni_mplex_open(a, NULL, 0, &s[i]));
        CHECK_EQ(gni_mplex_stream_write(a, s[i], (const uint8_t *)msg, (size_t)len), len);
        CHECK_OK(gni_mplex_stream_shutdown(a, s[i]));
    }
    exchange(a, b);
    evlog *log = calloc(1, sizeof(*log));
    collect(b, log);
    CHECK_EQ(count(log, GNI_MPLEX_EV_STREAM_OPENED), 1000);
    for (int i = 0; i < 1000; i++) {
        uint64_t h = H((uint64_t)i, 1);
        uint8_t rd[16];
        char want[16];
        int wl = snprintf(want, sizeof(want), "req%04d", i);
        CHECK_OK(gni_mplex_accept(b, h));
        CHECK_EQ(gni_mplex_stream_read(b, h, rd, sizeof(rd)), wl);
        CHECK_MEM(rd, want, (size_t)wl);
        rd[0] = 'R';
        CHECK_EQ(gni_mplex_stream_write(b, h, rd, (size_t)wl), wl);
        CHECK_OK(gni_mplex_stream_shutdown(b, h));
    }
    log->n = 0;
    collect(b, log);
    CHECK_EQ(count(log, GNI_MPLEX_EV_STREAM_FIN), 1000);
    exchange(a, b);
    for (int i = 0; i < 1000; i++) {
        uint8_t rd[16];
        char want[16];
        int wl = snprintf(want, sizeof(want), "Req%04d", i);
        CHECK_EQ(gni_mplex_stream_read(a, s[i], rd, sizeof(rd)), wl);
        CHECK_MEM(rd, want, (size_t)wl);
        gni_mplex_stream_info info;
        CHECK_OK(gni_mplex_stream_get_info(a, s[i], &info));
        CHECK_EQ(info.state, GNI_MPLEX_ST_CLOSED);
        CHECK_OK(gni_mplex_stream_release(a, s[i]));
        CHECK_OK(gni_mplex_stream_release(b, H((uint64_t)i, 1)));
    }
    CHECK(!gni_mplex_want_drain(a));
    CHECK(!gni_mplex_want_drain(b));
    gni_mplex_stats st;
    gni_mplex_get_stats(a, &st);
    CHECK_EQ(st.streams_outbound, 0);
    gni_mplex_get_stats(b, &st);
    CHECK_EQ(st.streams_inbound, 0);
    free(log);
    gni_mplex_free(a);
    gni_mplex_free(b);
}

GN_TEST(half_close_both_ways)
{
    gn_mux_config c = cfg0();
    gni_mplex *a, *b;
    mkpair(&a, &b, &c, &c);
    uint64_t s;
    CHECK_OK(gni_mplex_open(a, "x", 1, &s));
    CHECK_OK(gni_mplex_stream_shutdown(a, s));
    CHECK_EQ(gni_mplex_stream_shutdown(a, s), GN_ESTATE);
    CHECK_EQ(gni_mplex_stream_write(a, s, (const uint8_t *)"x", 1), GN_EPIPE);
    exchange(a, b);
    uint64_t r = H(0, 1);
    CHECK_OK(gni_mplex_accept(b, r));
    gni_mplex_stream_info info;
    CHECK_OK(gni_mplex_stream_get_info(b, r, &info));
    CHECK_EQ(info.state, GNI_MPLEX_ST_HALF_CLOSED_REMOTE);
    evlog *log = calloc(1, sizeof(*log));
    collect(b, log);
    CHECK(find(log, GNI_MPLEX_EV_STREAM_FIN, r));
    CHECK_EQ(gni_mplex_stream_write(b, r, (const uint8_t *)"late", 4), 4);
    exchange(a, b);
    CHECK_OK(gni_mplex_stream_get_info(a, s, &info));
    CHECK_EQ(info.state, GNI_MPLEX_ST_HALF_CLOSED_LOCAL);
    uint8_t rd[8];
    CHECK_EQ(gni_mplex_stream_read(a, s, rd, sizeof(rd)), 4);
    CHECK_MEM(rd, "late", 4);
    CHECK_OK(gni_mplex_stream_shutdown(b, r));
    exchange(a, b);
    CHECK_OK(gni_mplex_stream_get_info(a, s, &info));
    CHECK_EQ(info.state, GNI_MPLEX_ST_CLOSED);
    log->n = 0;
    collect(a, log);
    CHECK(find(log, GNI_MPLEX_EV_STREAM_FIN, s));
    free(log);
    gni_mplex_free(a);
    gni_mplex_free(b);
}

GN_TEST(reset_stream)
{
    gn_mux_config c = cfg0();
    gni_mplex *a, *b;
    mkpair(&a, &b, &c, &c);
    uint64_t s;
    CHECK_OK(gni_mplex_open(a, NULL, 0, &s));
    CHECK_EQ(gni_mplex_stream_write(a, s, (const uint8_t *)"abc", 3), 3);
    exchange(a, b);
    CHECK_EQ(gni_mplex_buffered(b), 3);
    CHECK_OK(gni_mplex_stream_reset(a, s));
    exchange(a, b);
    evlog *log = calloc(1, sizeof(*log));
    collect(b, log);
    CHECK_EQ(find(log, GNI_MPLEX_EV_STREAM_RESET, H(0, 1))->err, GN_ESTREAMRESET);
    CHECK_EQ(gni_mplex_buffered(b), 0);
    CHECK_EQ(gni_mplex_accept(b, H(0, 1)), GN_ESTATE);
    CHECK_EQ(gni_mplex_stream_write(b, H(0, 1), (const uint8_t *)"x", 1), GN_ESTREAMRESET);
    CHECK_OK(gni_mplex_stream_release(b, H(0, 1)));
    CHECK_OK(gni_mplex_stream_release(a, s));
    /* a message for the dead stream is dropped quietly */
    uint8_t late[3] = {0x02, 0x01, 'z'};
    size_t used;
    CHECK_OK(gni_mplex_feed(b, late, 3, &used, 0));
    CHECK_EQ(gni_mplex_buffered(b), 0);
    gni_mplex_stats st;
    gni_mplex_get_stats(b, &st);
    CHECK_EQ(st.streams_inbound, 0);
    free(log);
    gni_mplex_free(a);
    gni_mplex_free(b);
}

/* ---- buffering bounds (no flow control in mplex) ---------------------- */

GN_TEST(slow_reader_fast_writer_bounded)
{
    gn_mux_config c = cfg0();
    c.stream_buffer_max = 64 * KIB;
    gni_mplex *a, *b;
    mkpair(&a, &b, &c, &c);
    uint64_t s;
    CHECK_OK(gni_mplex_open(a, NULL, 0, &s));
    static uint8_t blob[256 * 1024];
    for (size_t i = 0; i < sizeof(blob); i++)
        blob[i] = (uint8_t)i;
    /* a reader that keeps up: all 256 KiB arrive, never above the bound */
    size_t off = 0, got = 0, max_buf = 0;
    static uint8_t rd[16 * 1024];
    CHECK(pump(a, b) > 0);
    CHECK_OK(gni_mplex_accept(b, H(0, 1)));
    for (int i = 0; i < 10000 && got < sizeof(blob); i++) {
        long w = gni_mplex_stream_write(a, s, blob + off, GNI_MIN(sizeof(blob) - off, 8 * KIB));
        CHECK(w >= 0);
        off += (size_t)w;
        pump(a, b);
        max_buf = GNI_MAX(max_buf, gni_mplex_buffered(b));
        long r = gni_mplex_stream_read(b, H(0, 1), rd, sizeof(rd));
        CHECK(r >= 0);
        for (long k = 0; k < r; k++)
            CHECK(rd[k] == (uint8_t)(got + (size_t)k));
        got += (size_t)r;
    }
    CHECK_EQ(got, sizeof(blob));
    CHECK(max_buf <= 64 * KIB);
    /* a reader that stops: the stream is reset once it would exceed 64 KiB */
    for (int i = 0; i < 100; i++) {
        long w = gni_mplex_stream_write(a, s, blob, 16 * KIB);
        if (w < 0)
            break;
        pump(a, b);
        CHECK(gni_mplex_buffered(b) <= 64 * KIB);
        pump(b, a);
    }
    CHECK(gni_mplex_buffered(b) <= 64 * KIB);
    evlog *log = calloc(1, sizeof(*log));
    collect(b, log);
    CHECK_EQ(find(log, GNI_MPLEX_EV_STREAM_RESET, H(0, 1))->err, GN_ETOOBIG);
    collect(a, log);
    CHECK_EQ(find(log, GNI_MPLEX_EV_STREAM_RESET, s)->err, GN_ESTREAMRESET);
    CHECK_EQ(gni_mplex_stream_write(a, s, blob, 1), GN_ESTREAMRESET);
    gni_mplex_stats st;
    gni_mplex_get_stats(b, &st);
    CHECK_EQ(st.streams_overflowed, 1);
    CHECK_EQ(st.recv_buffered, 0);
    free(log);
    gni_mplex_free(a);
    gni_mplex_free(b);
}

GN_TEST(session_buffer_bound)
{
    gn_mux_config c = cfg0();
    c.session_buffer_max = 100 * KIB;
    gni_mplex *a, *b;
    mkpair(&a, &b, &c, &c);
    static uint8_t blob[60 * 1024];
    memset(blob, 'q', sizeof(blob));
    uint64_t s1, s2;
    CHECK_OK(gni_mplex_open(a, NULL, 0, &s1));
    CHECK_OK(gni_mplex_open(a, NULL, 0, &s2));
    CHECK_EQ(gni_mplex_stream_write(a, s1, blob, sizeof(blob)), (long)sizeof(blob));
    exchange(a, b);
    CHECK_EQ(gni_mplex_stream_write(a, s2, blob, sizeof(blob)), (long)sizeof(blob));
    exchange(a, b);
    CHECK(gni_mplex_buffered(b) <= 100 * KIB);
    CHECK_EQ(gni_mplex_buffered(b), sizeof(blob));
    evlog *log = calloc(1, sizeof(*log));
    collect(b, log);
    CHECK_EQ(find(log, GNI_MPLEX_EV_STREAM_RESET, H(1, 1))->err, GN_ETOOBIG);
    CHECK(!find(log, GNI_MPLEX_EV_STREAM_RESET, H(0, 1)));
    free(log);
    gni_mplex_free(a);
    gni_mplex_free(b);
}

/* ---- limits ----------------------------------------------------------- */

GN_TEST(inbound_stream_limit)
{
    gn_mux_config c = cfg0(), bc = cfg0();
    bc.max_inbound_streams = 4;
    gni_mplex *a, *b;
    mkpair(&a, &b, &c, &bc);
    uint64_t s[6];
    for (int i = 0; i < 6; i++)
        CHECK_OK(gni_mplex_open(a, NULL, 0, &s[i]));
    pump(a, b);
    evlog *log = calloc(1, sizeof(*log));
    collect(b, log);
    CHECK_EQ(count(log, GNI_MPLEX_EV_STREAM_OPENED), 4);
    const gni_mplex_event *e = find(log, GNI_MPLEX_EV_STREAM_REFUSED, H(5, 1));
    CHECK(e != NULL);
    CHECK_EQ(e->count, 2);
    CHECK_EQ(e->err, GN_ESTREAMLIMIT);
    /* the refusals are ResetReceiver frames for ids 4 and 5 */
    uint8_t buf[16], want[16];
    CHECK_EQ(drain_to(b, buf, sizeof(buf)), 4);
    CHECK_EQ(gn_test_unhex("25 00 2d 00", want, sizeof(want)), 4);
    CHECK_MEM(buf, want, 4);
    size_t used;
    CHECK_OK(gni_mplex_feed(a, buf, 4, &used, 0));
    log->n = 0;
    collect(a, log);
    CHECK_EQ(count(log, GNI_MPLEX_EV_STREAM_RESET), 2);
    CHECK_EQ(find(log, GNI_MPLEX_EV_STREAM_RESET, s[4])->err, GN_ESTREAMRESET);
    free(log);
    gni_mplex_free(a);
    gni_mplex_free(b);
}

GN_TEST(pending_accept_limit)
{
    gn_mux_config c = cfg0(), bc = cfg0();
    bc.max_pending_streams = 3;
    gni_mplex *a, *b;
    mkpair(&a, &b, &c, &bc);
    uint64_t s[5];
    for (int i = 0; i < 5; i++)
        CHECK_OK(gni_mplex_open(a, NULL, 0, &s[i]));
    exchange(a, b);
    evlog *log = calloc(1, sizeof(*log));
    collect(b, log);
    CHECK_EQ(count(log, GNI_MPLEX_EV_STREAM_OPENED), 3);
    CHECK_EQ(find(log, GNI_MPLEX_EV_STREAM_REFUSED, H(4, 1))->count, 2);
    for (int i = 0; i < 3; i++)
        CHECK_OK(gni_mplex_accept(b, H((uint64_t)i, 1)));
    uint64_t more[3];
    for (int i = 0; i < 3; i++)
        CHECK_OK(gni_mplex_open(a, NULL, 0, &more[i]));
    exchange(a, b);
    log->n = 0;
    collect(b, log);
    CHECK_EQ(count(log, GNI_MPLEX_EV_STREAM_OPENED), 3);
    CHECK_EQ(count(log, GNI_MPLEX_EV_STREAM_REFUSED), 0);
    gni_mplex_stats st;
    gni_mplex_get_stats(b, &st);
    CHECK_EQ(st.streams_pending, 3);
    CHECK_EQ(st.streams_refused, 2);
    free(log);
    gni_mplex_free(a);
    gni_mplex_free(b);
}

GN_TEST(outbound_limit_and_names)
{
    gn_mux_config c = cfg0();
    c.max_outbound_streams = 1;
    gni_mplex *a, *b;
    mkpair(&a, &b, &c, &c);
    uint64_t s;
    static char longname[GNI_MPLEX_NAME_MAX + 1];
    memset(longname, 'n', sizeof(longname));
    CHECK_EQ(gni_mplex_open(a, longname, sizeof(longname), &s), GN_ETOOBIG);
    CHECK_OK(gni_mplex_open(a, "", 0, &s));
    CHECK_EQ(gni_mplex_open(a, NULL, 0, &s), GN_ESTREAMLIMIT);
    /* a peer name longer than we keep is truncated locally */
    static uint8_t in[2100];
    size_t k = (size_t)gni_mplex_encode_header(in, sizeof(in), 0, GNI_MPLEX_NEW_STREAM, 2000);
    memset(in + k, 'm', 2000);
    size_t used;
    CHECK_OK(gni_mplex_feed(b, in, k + 2000, &used, 0));
    gn_slice name;
    CHECK_OK(gni_mplex_stream_name(b, H(0, 1), &name));
    CHECK_EQ(name.len, GNI_MPLEX_NAME_MAX);
    gni_mplex_free(a);
    gni_mplex_free(b);
}

/* ---- violations ------------------------------------------------------- */

typedef struct violation {
    const char *name;
    const char *hex;
    int err;
} violation;

static const violation violations[] = {
    {"flag 7", "07 00", GN_EBADFRAME},
    {"header varint too long", "ff ff ff ff ff ff ff ff ff ff 01", GN_EBADFRAME},
    {"header varint above 2^64", "80 80 80 80 80 80 80 80 80 02", GN_EBADFRAME},
    {"message above 1 MiB", "02 81 80 40", GN_EFRAMESIZE}, /* len 1048577 */
    {"new stream above 1 MiB", "00 81 80 40", GN_EFRAMESIZE},
    {"duplicate new stream", "00 00 00 00", GN_EPROTO},
    {"receiver frame for an id we never opened", "01 01 aa", GN_EPROTO},
    {"close receiver for an id we never opened", "1b 00", GN_EPROTO},
    {"close with a body", "00 00 04 01 aa", GN_EBADFRAME},
    {"reset with a body", "06 02 aaaa", GN_EBADFRAME},
    {"message after close", "00 00 04 00 02 01 aa", GN_EPROTO},
};

GN_TEST(protocol_violations)
{
    for (size_t i = 0; i < GNI_ARRAY_LEN(violations); i++) {
        const violation *v = &violations[i];
        printf("# case: %s\n", v->name);
        gn_mux_config c = cfg0();
        gni_mplex *ms;
        CHECK_OK(gni_mplex_new(false, &c, 0, &ms));
        uint8_t in[64];
        long n = gn_test_unhex(v->hex, in, sizeof(in));
        CHECK(n > 0);
        size_t used;
        CHECK_EQ(gni_mplex_feed(ms, in, (size_t)n, &used, 0), v->err);
        CHECK_EQ(gni_mplex_error(ms), v->err);
        CHECK_EQ(gni_mplex_feed(ms, in, (size_t)n, &used, 0), v->err);
        CHECK_EQ(used, 0);
        uint64_t h;
        CHECK_EQ(gni_mplex_open(ms, NULL, 0, &h), GN_ECLOSED);
        /* mplex has no Go Away: nothing is written */
        uint8_t out[64];
        CHECK_EQ(drain_to(ms, out, sizeof(out)), 0);
        gni_mplex_event ev;
        int last = 0, err = 0;
        for (int k = 0; k < 16 && gni_mplex_next_event(ms, &ev) == 1; k++) {
            last = ev.type;
            err = ev.err;
        }
        CHECK_EQ(last, GNI_MPLEX_EV_SESSION_END);
        CHECK_EQ(err, v->err);
        gni_mplex_free(ms);
    }
}

GN_TEST(unknown_remote_stream_dropped)
{
    gn_mux_config c = cfg0();
    gni_mplex *ms;
    CHECK_OK(gni_mplex_new(false, &c, 0, &ms));
    uint8_t in[16];
    /* MessageInitiator / CloseInitiator / ResetInitiator for unknown id 3 */
    long n = gn_test_unhex("1a 02 aaaa 1c 00 1e 00", in, sizeof(in));
    size_t used;
    CHECK_OK(gni_mplex_feed(ms, in, (size_t)n, &used, 0));
    CHECK_EQ(used, n);
    CHECK_EQ(gni_mplex_buffered(ms), 0);
    gni_mplex_event ev;
    CHECK_EQ(gni_mplex_next_event(ms, &ev), 0);
    gni_mplex_free(ms);
}

/* ---- QoS -------------------------------------------------------------- */

GN_TEST(qos_priority_beats_bulk)
{
    gn_mux_config c = cfg0();
    gni_mplex *a;
    CHECK_OK(gni_mplex_new(true, &c, 0, &a));
    uint64_t bulk, hi;
    CHECK_OK(gni_mplex_open(a, "b", 1, &bulk));
    CHECK_OK(gni_mplex_open(a, "h", 1, &hi));
    CHECK_OK(gni_mplex_stream_set_priority(a, hi, 7));
    CHECK_EQ(gni_mplex_stream_set_priority(a, hi, 9), GN_ERANGE);
    static uint8_t blob[200 * 1024];
    memset(blob, 'B', sizeof(blob));
    CHECK_EQ(gni_mplex_stream_write(a, bulk, blob, sizeof(blob)), (long)sizeof(blob));
    static uint8_t buf[40 * 1024];
    size_t n = drain_to(a, buf, sizeof(buf));
    CHECK_EQ(n, sizeof(buf));
    CHECK_EQ(gni_mplex_stream_write(a, hi, (const uint8_t *)"urgent", 6), 6);
    n = drain_to(a, buf, sizeof(buf));
    CHECK(n > 8);
    uint8_t want[8];
    /* MessageInitiator id 1 (0x0a), len 6, first in the drain */
    CHECK_EQ(gn_test_unhex("0a 06 757267656e74", want, sizeof(want)), 8);
    CHECK_MEM(buf, want, 8);
    /* followed by a bulk chunk: MessageInitiator id 0 (0x02), 16 KiB */
    CHECK_EQ(buf[8], 0x02);
    CHECK_EQ(buf[9], 0x80);
    CHECK_EQ(buf[10], 0x80);
    CHECK_EQ(buf[11], 0x01);
    gni_mplex_stats st;
    gni_mplex_get_stats(a, &st);
    CHECK(st.send_queued > 0);
    gni_mplex_free(a);
}

GN_TEST(bounded_send_queue_and_writable)
{
    gn_mux_config c = cfg0();
    c.stream_buffer_max = 32 * KIB;
    gni_mplex *a, *b;
    mkpair(&a, &b, &c, &c);
    uint64_t s;
    CHECK_OK(gni_mplex_open(a, NULL, 0, &s));
    static uint8_t blob[64 * 1024];
    CHECK_EQ(gni_mplex_stream_write(a, s, blob, sizeof(blob)), 32 * KIB);
    CHECK_EQ(gni_mplex_stream_write_space(a, s), 0);
    evlog *log = calloc(1, sizeof(*log));
    collect(a, log);
    CHECK_EQ(count(log, GNI_MPLEX_EV_STREAM_WRITABLE), 0);
    static uint8_t buf[20 * 1024];
    CHECK(drain_to(a, buf, sizeof(buf)) > 0);
    collect(a, log);
    CHECK_EQ(count(log, GNI_MPLEX_EV_STREAM_WRITABLE), 1);
    CHECK(gni_mplex_stream_write_space(a, s) >= 16 * KIB);
    /* tiny output buffers still make progress, 1 data byte at a time */
    gn_buf out;
    gn_buf_init(&out, buf, 3);
    CHECK_EQ(gni_mplex_drain(a, &out, 0), 3);
    CHECK_EQ(buf[0], 0x02);
    CHECK_EQ(buf[1], 0x01);
    gn_buf_init(&out, buf, 2);
    CHECK_EQ(gni_mplex_drain(a, &out, 0), GN_ENOSPC);
    free(log);
    gni_mplex_free(a);
    gni_mplex_free(b);
}

/* ---- session send budget ---------------------------------------------- */

/*
 * Issue 10 item 4: many streams write while the peer reads nothing. mplex
 * has no window, so each stream alone could queue stream_buffer_max
 * (256 KiB here): 32 streams 8 MiB. The session budget keeps the total at
 * session_send_max, the streams past it get nothing (a short write, the
 * core's push-back), and once the peer reads every stream hears WRITABLE
 * and all its bytes arrive intact.
 */
#define SB_STREAMS 32u
#define SB_EACH (320u * KIB)
#define SB_BUDGET (1000u * KIB)

static uint8_t sb_byte(unsigned s, size_t i)
{
    return (uint8_t)((s * 31u + i * 7u) % 251u);
}

typedef struct sb_writer {
    size_t off;       /* bytes the core took */
    bool writable;    /* no short write since the last WRITABLE */
    unsigned cut;     /* short writes */
    unsigned wakeups; /* WRITABLE events */
} sb_writer;

static void sb_write(gni_mplex *ms, uint64_t h, unsigned s, sb_writer *w)
{
    static uint8_t piece[64 * KIB];
    for (int guard = 0; guard < 64 && w->writable && w->off < SB_EACH; guard++) {
        size_t n = GNI_MIN((size_t)sizeof(piece), SB_EACH - w->off);
        for (size_t k = 0; k < n; k++)
            piece[k] = sb_byte(s, w->off + k);
        long got = gni_mplex_stream_write(ms, h, piece, n);
        CHECK(got >= 0);
        w->off += (size_t)got;
        if ((size_t)got < n) {
            w->writable = false;
            w->cut++;
        }
    }
}

GN_TEST(session_send_budget_many_streams)
{
    gn_mux_config c = cfg0();
    c.session_send_max = SB_BUDGET;
    c.stream_buffer_max = 256 * KIB; /* every stream is cut short by its own bound too */
    gni_mplex *a, *b;
    mkpair(&a, &b, &c, &c);
    uint64_t hs[SB_STREAMS];
    sb_writer w[SB_STREAMS];
    size_t got[SB_STREAMS];
    memset(w, 0, sizeof(w));
    memset(got, 0, sizeof(got));
    for (unsigned s = 0; s < SB_STREAMS; s++) {
        CHECK_OK(gni_mplex_open(a, NULL, 0, &hs[s]));
        CHECK_EQ(hs[s], H(s, 0));
        w[s].writable = true;
    }
    /* phase 1: nothing leaves (the peer reads nothing) */
    size_t peak = 0;
    for (int round = 0; round < 3; round++) {
        for (unsigned s = 0; s < SB_STREAMS; s++) {
            w[s].writable = true; /* writers that ignore push-back get nothing more */
            sb_write(a, hs[s], s, &w[s]);
            peak = GNI_MAX(peak, gni_mplex_send_queued(a));
        }
    }
    size_t total = 0, starved = 0;
    for (unsigned s = 0; s < SB_STREAMS; s++) {
        total += w[s].off;
        starved += w[s].off == 0;
        CHECK(w[s].cut > 0);
        CHECK_EQ(gni_mplex_stream_write_space(a, hs[s]), 0);
    }
    gni_mplex_stats st;
    gni_mplex_get_stats(a, &st);
    CHECK_EQ(st.send_queued, total);
    CHECK(peak <= SB_BUDGET);
    CHECK_EQ(total, SB_BUDGET); /* used up to the byte */
    CHECK(starved >= SB_STREAMS - 4);
    gni_mplex_event ev;
    size_t early = 0;
    while (gni_mplex_next_event(a, &ev) == 1)
        early += ev.type == GNI_MPLEX_EV_STREAM_WRITABLE;
    CHECK_EQ(early, 0);
    CHECK_EQ(gni_mplex_error(a), 0);

    /* phase 2: the peer accepts and reads everything */
    static uint8_t rd[64 * KIB];
    bool done = false;
    for (int round = 0; round < 10000 && !done; round++) {
        exchange(a, b);
        while (gni_mplex_next_event(b, &ev) == 1) {
            CHECK(ev.type == GNI_MPLEX_EV_STREAM_OPENED || ev.type == GNI_MPLEX_EV_STREAM_DATA);
            if (ev.type == GNI_MPLEX_EV_STREAM_OPENED)
                CHECK_OK(gni_mplex_accept(b, ev.stream_id));
        }
        for (unsigned s = 0; s < SB_STREAMS; s++) {
            long r;
            while ((r = gni_mplex_stream_read(b, H(s, 1), rd, sizeof(rd))) > 0) {
                for (long k = 0; k < r; k++)
                    CHECK(rd[k] == sb_byte(s, got[s] + (size_t)k));
                got[s] += (size_t)r;
            }
            CHECK(r == 0 || r == GN_ENOTFOUND);
        }
        while (gni_mplex_next_event(a, &ev) == 1) {
            CHECK_EQ(ev.type, GNI_MPLEX_EV_STREAM_WRITABLE);
            unsigned s = (unsigned)GNI_MPLEX_HANDLE_ID(ev.stream_id);
            CHECK(s < SB_STREAMS);
            w[s].writable = true;
            w[s].wakeups++;
        }
        for (unsigned s = 0; s < SB_STREAMS; s++) {
            sb_write(a, hs[s], s, &w[s]);
            CHECK(gni_mplex_send_queued(a) <= SB_BUDGET);
        }
        done = true;
        for (unsigned s = 0; s < SB_STREAMS; s++)
            done = done && got[s] == SB_EACH;
    }
    CHECK(done);
    for (unsigned s = 0; s < SB_STREAMS; s++) {
        CHECK_EQ(got[s], SB_EACH);
        CHECK(w[s].wakeups > 0); /* every stream cut short was told */
    }
    CHECK_EQ(gni_mplex_send_queued(a), 0);
    CHECK_EQ(gni_mplex_error(a), 0);
    CHECK_EQ(gni_mplex_error(b), 0);
    gni_mplex_free(a);
    gni_mplex_free(b);
}


/* ---- allocation failure ----------------------------------------------- */

static long g_alloc_left;
static void *fm_malloc(void *ud, size_t len)
{
    (void)ud;
    if (g_alloc_left-- <= 0)
        return NULL;
    return malloc(len);
}
static void *fm_realloc(void *ud, void *p, size_t len)
{
    (void)ud;
    if (g_alloc_left-- <= 0)
        return NULL;
    return realloc(p, len);
}
static void fm_free(void *ud, void *p)
{
    (void)ud;
    free(p);
}

/* Allocation k fails, for every k: errors are GN_ENOMEM, never a crash or leak (ASan). */
GN_TEST(allocation_failure_every_k)
{
    static const gn_allocator fm = {fm_malloc, fm_realloc, fm_free, NULL};
    uint8_t in[128];
        size_t n = 0;
    /* NewStream 0 "a", MessageInitiator 0 with 100 bytes, NewStream 1 */
    n = (size_t)gni_mplex_encode_header(in, sizeof(in), 0, GNI_MPLEX_NEW_STREAM, 1);
    in[n++] = 'a';
    n += (size_t)gni_mplex_encode_header(in + n, sizeof(in) - n, 0, GNI_MPLEX_MSG_INITIATOR, 100);
    memset(in + n, 'd', 100);
    n += 100;
    n += (size_t)gni_mplex_encode_header(in + n, sizeof(in) - n, 1, GNI_MPLEX_NEW_STREAM, 0);
    bool completed = false;
    for (long k = 0; k < 200 && !completed; k++) {
        gn_set_allocator(&fm);
        g_alloc_left = k;
        gni_mplex *ys = NULL;
        int rc = gni_mplex_new(false, NULL, 0, &ys);
        if (rc < 0) {
            gn_set_allocator(NULL);
            CHECK_EQ(rc, GN_ENOMEM);
            CHECK(ys == NULL);
            continue;
        }
        size_t used;
        rc = gni_mplex_feed(ys, in, n, &used, 0);
        CHECK(rc == 0 || rc == GN_ENOMEM);
        uint64_t id;
        int rc2 = gni_mplex_open(ys, NULL, 0, &id);
        CHECK(rc2 == 0 || rc2 == GN_ENOMEM || rc2 == GN_ECLOSED);
        long w = rc2 == 0 ? gni_mplex_stream_write(ys, id, in, 50) : 0;
        CHECK(w == 50 || w == GN_ENOMEM || rc2 != 0);
        completed = rc == 0 && rc2 == 0 && w == 50;
        gni_mplex_free(ys);
        gn_set_allocator(NULL);
    }
    CHECK(completed);
}

/* ---- bursts of stream opens ------------------------------------------ */

/* @n NewStreams for ids @first, @first + 1, ..., each named by its decimal id. */
static size_t new_burst(uint8_t *buf, size_t cap, uint64_t first, unsigned n)
{
    size_t off = 0;
    for (unsigned i = 0; i < n; i++) {
        char name[24];
        int k = snprintf(name, sizeof(name), "%llu", (unsigned long long)(first + i));
        int hl = gni_mplex_encode_header(buf + off, cap - off, first + i, GNI_MPLEX_NEW_STREAM,
                                         (uint64_t)k);
        CHECK(hl > 0 && off + (size_t)hl + (size_t)k <= cap);
        off += (size_t)hl;
        memcpy(buf + off, name, (size_t)k);
        off += (size_t)k;
    }
    return off;
}

/* One header-only frame (no body). */
static size_t mx_frame(uint8_t *buf, uint64_t id, unsigned flag)
{
    int hl = gni_mplex_encode_header(buf, 20, id, flag, 0);
    CHECK(hl > 0);
    return (size_t)hl;
}

static size_t drain_all(gni_mplex *ms, uint8_t *buf, size_t cap)
{
    size_t total = 0;
    for (int i = 0; i < 10000 && gni_mplex_want_drain(ms); i++) {
        gn_buf out;
        gn_buf_init(&out, buf + total, cap - total);
        int n = gni_mplex_drain(ms, &out, 0);
        CHECK(n > 0);
        total += (size_t)n;
    }
    CHECK(!gni_mplex_want_drain(ms));
    return total;
}

typedef struct mxframe {
    uint64_t id;
    unsigned flag;
    uint64_t len;
} mxframe;

static uint64_t mx_get(const uint8_t *p, size_t n, size_t *off)
{
    uint64_t v = 0;
    for (unsigned sh = 0; *off < n && sh < 64; sh += 7) {
        uint8_t b = p[(*off)++];
        v |= (uint64_t)(b & 0x7f) << sh;
        if (!(b & 0x80))
            break;
    }
    return v;
}

static size_t parse_mx(const uint8_t *p, size_t n, mxframe *f, size_t max)
{
    size_t k = 0, off = 0;
    while (off < n && k < max) {
        uint64_t hv = mx_get(p, n, &off);
        f[k].id = hv >> 3;
        f[k].flag = (unsigned)(hv & 7);
        f[k].len = mx_get(p, n, &off);
        off += (size_t)f[k].len;
        k++;
    }
    CHECK_EQ(off, n);
    return k;
}

/* @f[0..@nf) is exactly one ResetReceiver for each of @cnt ids from @first. */
static void check_resets(const mxframe *f, size_t nf, uint64_t first, unsigned cnt)
{
    CHECK_EQ(nf, cnt);
    for (unsigned i = 0; i < cnt && i < nf; i++) {
        CHECK_EQ(f[i].flag, GNI_MPLEX_RESET_RECEIVER);
        CHECK_EQ(f[i].len, 0);
        CHECK_EQ(f[i].id, first + i);
    }
}

static void feed_ok(gni_mplex *ms, const uint8_t *in, size_t len)
{
    size_t used = 0;
    CHECK_OK(gni_mplex_feed(ms, in, len, &used, 0));
    CHECK_EQ(used, len);
}

/*
 * Issue 10: 1,000 NewStreams pipelined in one buffer (within
 * max_inbound_streams 1024) ended the session from the 513th on. Now the
 * 744 beyond the pending limit get one Reset each and the session lives.
 */
GN_TEST(burst_of_1000_new_streams_within_limit)
{
    enum { N = 1000, PEND = 256, REF = N - PEND };
    gn_mux_config c = cfg0();
    gni_mplex *b;
    CHECK_OK(gni_mplex_new(false, &c, 0, &b));
    const size_t cap = 16u * N;
    uint8_t *in = malloc(cap);
    uint8_t *out = malloc(64 * KIB);
    mxframe *f = calloc(N, sizeof(*f));
    evlog *log = calloc(1, sizeof(*log));
    CHECK(in && out && f && log);
    feed_ok(b, in, new_burst(in, cap, 0, N));
    CHECK_EQ(gni_mplex_error(b), 0);
    collect(b, log);
    CHECK_EQ(count(log, GNI_MPLEX_EV_STREAM_OPENED), PEND);
    CHECK(find(log, GNI_MPLEX_EV_STREAM_OPENED, H(PEND - 1, 1)));
    CHECK_EQ(count(log, GNI_MPLEX_EV_SESSION_END), 0);
    CHECK_EQ(count(log, GNI_MPLEX_EV_STREAM_REFUSED), 1);
    const gni_mplex_event *e = find(log, GNI_MPLEX_EV_STREAM_REFUSED, H(N - 1, 1));
    CHECK(e != NULL);
    CHECK_EQ(e->count, REF);
    CHECK_EQ(e->err, GN_ESTREAMLIMIT);
    gni_mplex_stats st;
    gni_mplex_get_stats(b, &st);
    CHECK_EQ(st.streams_inbound, PEND);
    CHECK_EQ(st.streams_pending, PEND);
    CHECK_EQ(st.streams_refused, REF);
    CHECK_EQ(st.refused_waiting, REF);
    /* Late messages for a refused stream are dropped quietly. */
    uint8_t late[16];
    int hl = gni_mplex_encode_header(late, sizeof(late), PEND, GNI_MPLEX_MSG_INITIATOR, 3);
    memcpy(late + hl, "xyz", 3);
    feed_ok(b, late, (size_t)hl + 3);
    /* Each excess stream: exactly one Reset, oldest first, nothing else. */
    size_t on = drain_all(b, out, 64 * KIB);
    uint8_t want[16];
    /* known answer: ResetReceiver id 256: uvarint(256 << 3 | 5) = 85 10, length 00 */
    CHECK_EQ(gn_test_unhex("85 10 00", want, sizeof(want)), 3);
    CHECK_MEM(out, want, 3);
    check_resets(f, parse_mx(out, on, f, N), PEND, REF);
    gni_mplex_get_stats(b, &st);
    CHECK_EQ(st.refused_waiting, 0);
    /* accept the pending ones (no wire effect in mplex) */
    for (uint64_t i = 0; i < PEND; i++)
        CHECK_OK(gni_mplex_accept(b, H(i, 1)));
    CHECK(!gni_mplex_want_drain(b));
    /* A stream opened after the burst works both ways. */
    size_t n = new_burst(in, cap, N, 1);
    hl = gni_mplex_encode_header(in + n, cap - n, N, GNI_MPLEX_MSG_INITIATOR, 5);
    memcpy(in + n + (size_t)hl, "hello", 5);
    feed_ok(b, in, n + (size_t)hl + 5);
    log->n = 0;
    collect(b, log);
    CHECK(find(log, GNI_MPLEX_EV_STREAM_OPENED, H(N, 1)));
    CHECK(find(log, GNI_MPLEX_EV_STREAM_DATA, H(N, 1)));
    CHECK_EQ(log->n, 2);
    CHECK_OK(gni_mplex_accept(b, H(N, 1)));
    uint8_t rd[8];
    CHECK_EQ(gni_mplex_stream_read(b, H(N, 1), rd, sizeof(rd)), 5);
    CHECK_MEM(rd, "hello", 5);
    CHECK_EQ(gni_mplex_stream_write(b, H(N, 1), (const uint8_t *)"world", 5), 5);
    on = drain_all(b, out, 64 * KIB);
    /* MessageReceiver id 1000: uvarint(8001) = c1 3e, length 5, "world" */
    CHECK_EQ(gn_test_unhex("c1 3e 05 776f726c64", want, sizeof(want)), 8);
    CHECK_EQ(on, 8);
    CHECK_MEM(out, want, 8);
    gni_mplex_get_stats(b, &st);
    CHECK_EQ(st.streams_inbound, PEND + 1);
    CHECK_EQ(gni_mplex_error(b), 0);
    free(in);
    free(out);
    free(f);
    free(log);
    gni_mplex_free(b);
}

/*
 * A peer at max_inbound_streams that keeps opening gets one Reset per
 * extra stream; only one with more than max_inbound_streams + the margin of
 * them unanswered (it does not let us write) loses the session.
 */
GN_TEST(burst_beyond_max_inbound_streams)
{
    enum { MAXIN = 1024, PEND = 256, N = 1000, BOUND = MAXIN + GNI_MPLEX_REFUSE_MARGIN };
    gn_mux_config c = cfg0();
    gni_mplex *b;
    CHECK_OK(gni_mplex_new(false, &c, 0, &b));
    const size_t cap = 16u * BOUND;
    uint8_t *in = malloc(cap);
    uint8_t *out = malloc(64 * KIB);
    mxframe *f = calloc(N, sizeof(*f));
    evlog *log = calloc(1, sizeof(*log));
    CHECK(in && out && f && log);
    uint64_t next = 0;
    for (int r = 0; r < MAXIN / PEND; r++) {
        feed_ok(b, in, new_burst(in, cap, next, PEND));
        for (uint64_t i = 0; i < PEND; i++)
            CHECK_OK(gni_mplex_accept(b, H(next + i, 1)));
        next += PEND;
    }
    collect(b, log);
    CHECK_EQ(count(log, GNI_MPLEX_EV_STREAM_OPENED), MAXIN);
    CHECK_EQ(count(log, GNI_MPLEX_EV_STREAM_REFUSED), 0);
    CHECK(!gni_mplex_want_drain(b));
    /* 1,000 more in one buffer: all refused, one Reset each, the session lives */
    feed_ok(b, in, new_burst(in, cap, next, N));
    log->n = 0;
    collect(b, log);
    CHECK_EQ(log->n, 1);
    CHECK_EQ(find(log, GNI_MPLEX_EV_STREAM_REFUSED, H(next + N - 1, 1))->count, N);
    size_t on = drain_all(b, out, 64 * KIB);
    check_resets(f, parse_mx(out, on, f, N), next, N);
    next += N;
    /* The peer resets a refused stream before our Reset went out: none is sent. */
    size_t n = new_burst(in, cap, next, 3);
    n += mx_frame(in + n, next + 1, GNI_MPLEX_RESET_INITIATOR);
    feed_ok(b, in, n);
    on = drain_all(b, out, 64 * KIB);
    CHECK_EQ(parse_mx(out, on, f, N), 2);
    CHECK(f[0].id == next && f[1].id == next + 2 && f[1].flag == GNI_MPLEX_RESET_RECEIVER);
    next += 3;
    /* Not read: up to max_inbound_streams + margin Resets may wait... */
    feed_ok(b, in, new_burst(in, cap, next, BOUND));
    next += BOUND;
    CHECK_EQ(gni_mplex_error(b), 0);
    gni_mplex_stats st;
    gni_mplex_get_stats(b, &st);
    CHECK_EQ(st.refused_waiting, BOUND);
    /* ...(one the peer reset itself frees its place)... */
    feed_ok(b, in, mx_frame(in, next - 1, GNI_MPLEX_RESET_INITIATOR));
    feed_ok(b, in, new_burst(in, cap, next, 1));
    next += 1;
    CHECK_EQ(gni_mplex_error(b), 0);
    /* ...and one more ends the session. */
    size_t used = 0;
    n = new_burst(in, cap, next, 1);
    CHECK_EQ(gni_mplex_feed(b, in, n, &used, 0), GN_ESTREAMLIMIT);
    log->n = 0;
    collect(b, log);
    CHECK_EQ(log->ev[log->n - 1].type, GNI_MPLEX_EV_SESSION_END);
    CHECK_EQ(log->ev[log->n - 1].err, GN_ESTREAMLIMIT);
    free(in);
    free(out);
    free(f);
    free(log);
    gni_mplex_free(b);
}

/* A NewStream reusing an id we refused, before our Reset went out, is a violation. */
GN_TEST(refused_id_reused_before_reset)
{
    gn_mux_config c = cfg0();
    c.max_pending_streams = 1;
    gni_mplex *b;
    CHECK_OK(gni_mplex_new(false, &c, 0, &b));
    uint8_t in[64], out[64];
    feed_ok(b, in, new_burst(in, sizeof(in), 0, 2)); /* 1 is refused */
    /* after our Reset for 1 is written the id is free again */
    CHECK_EQ(drain_to(b, out, sizeof(out)), 2);
    CHECK_OK(gni_mplex_accept(b, H(0, 1)));
    feed_ok(b, in, new_burst(in, sizeof(in), 1, 1));
    gni_mplex_stats st;
    gni_mplex_get_stats(b, &st);
    CHECK_EQ(st.streams_inbound, 2);
    /* 2 refused, then reused while its Reset still waits */
    feed_ok(b, in, new_burst(in, sizeof(in), 2, 1));
    size_t used;
    CHECK_EQ(gni_mplex_feed(b, in, new_burst(in, sizeof(in), 2, 1), &used, 0), GN_EPROTO);
    gni_mplex_free(b);
}

/* Refusals under allocation failure k, for every k: GN_ENOMEM or one Reset per refused stream. */
GN_TEST(refusal_allocation_failure_every_k)
{
    static const gn_allocator fm = {fm_malloc, fm_realloc, fm_free, NULL};
    gn_mux_config c = cfg0();
    c.max_pending_streams = 1;
    /* NewStream 0 (taken), 1, 2, 3 (refused), the peer's ResetInitiator for 2 */
    uint8_t in[64];
    size_t n = new_burst(in, sizeof(in), 0, 4);
    n += mx_frame(in + n, 2, GNI_MPLEX_RESET_INITIATOR);
    uint8_t out[64], want[8];
    bool completed = false;
    for (long k = 0; k < 200 && !completed; k++) {
        gn_set_allocator(&fm);
        g_alloc_left = k;
        gni_mplex *ms = NULL;
        int rc = gni_mplex_new(false, &c, 0, &ms);
        if (rc < 0) {
            gn_set_allocator(NULL);
            CHECK_EQ(rc, GN_ENOMEM);
            continue;
        }
        size_t used;
        rc = gni_mplex_feed(ms, in, n, &used, 0);
        CHECK(rc == 0 || rc == GN_ENOMEM);
        if (rc == 0) {
            /* ResetReceiver 1 (0d 00), ResetReceiver 3 (1d 00) */
            CHECK_EQ(gn_test_unhex("0d 00 1d 00", want, sizeof(want)), 4);
            CHECK_EQ(drain_to(ms, out, sizeof(out)), 4);
            CHECK_MEM(out, want, 4);
            completed = true;
        }
        gni_mplex_free(ms);
        gn_set_allocator(NULL);
    }
    CHECK(completed);
}


/* ---- resource accounting (gni_mplex_set_rcmgr) ---- */

static gn_rcmgr_usage rc_system(const gn_rcmgr *rm)
{
    gn_rcmgr_usage u;
    CHECK_OK(gn_rcmgr_stat(rm, GN_RCMGR_SCOPE_SYSTEM, NULL, 0, &u));
    return u;
}

GN_TEST(rcmgr_streams_and_received_data)
{
    gn_rcmgr_limits l;
    gn_rcmgr_limits_default(&l);
    l.conn.memory = 256u * 1024u; /* send budget step + received, unread bytes */
    l.conn.streams_in = 2;
    gn_rcmgr *rm = NULL;
    CHECK_OK(gn_rcmgr_new(&l, &rm));
    gn_rcmgr_conn *conn;
    CHECK_OK(gn_rcmgr_open_conn(rm, GN_RCMGR_INBOUND, false, NULL, 0, &conn));
    gn_peer_id p;
    memset(&p, 0, sizeof p);
    p.len = 34;
    p.bytes[1] = 32;
    p.bytes[3] = 9;
    CHECK_OK(gn_rcmgr_conn_set_peer(conn, &p));
    gn_mux_config c = cfg0();
    gni_mplex *a, *b;
    mkpair(&a, &b, &c, &c);
    CHECK_OK(gni_mplex_set_rcmgr(b, rm, conn));
    const size_t step = 64u * 1024u;

    /* a third inbound stream is refused with a Reset; the session lives */
    uint64_t s[3];
    for (int i = 0; i < 3; i++)
        CHECK_OK(gni_mplex_open(a, NULL, 0, &s[i]));
    exchange(a, b);
    evlog bl = {0}, al = {0};
    collect(b, &bl);
    collect(a, &al);
    CHECK_EQ(count(&bl, GNI_MPLEX_EV_STREAM_OPENED), 2);
    CHECK_EQ(count(&bl, GNI_MPLEX_EV_STREAM_REFUSED), 1);
    CHECK_EQ(bl.ev[bl.n - 1].err, GN_ERESOURCE);
    CHECK(find(&al, GNI_MPLEX_EV_STREAM_RESET, s[2]) != NULL);
    CHECK_EQ(gni_mplex_error(b), 0);
    CHECK_EQ(rc_system(rm).streams_in, 2);
    CHECK_EQ(rc_system(rm).memory, step); /* streams without data hold no memory */

    /* received data is reserved as it arrives, in 64 KiB steps, for the session */
    uint64_t h0 = GNI_MPLEX_HANDLE(GNI_MPLEX_HANDLE_ID(s[0]), 1);
    uint64_t h1 = GNI_MPLEX_HANDLE(GNI_MPLEX_HANDLE_ID(s[1]), 1);
    CHECK_OK(gni_mplex_accept(b, h0));
    CHECK_OK(gni_mplex_accept(b, h1));
    static uint8_t blob[100 * 1024];
    memset(blob, 'm', sizeof blob);
    CHECK_EQ(gni_mplex_stream_write(a, s[0], blob, sizeof blob), (long)sizeof blob);
    exchange(a, b);
    CHECK_EQ(rc_system(rm).memory, step + 2 * step);
    CHECK_OK(gni_mplex_stream_consume(b, h0, 10000));
    CHECK_EQ(rc_system(rm).memory, step + 2 * step); /* within a step: kept */

    /* a message beyond the share of the connection's limit (80 % at
     * GN_RCMGR_PRIO_HIGH) resets the stream: the peer gets a Reset, the
     * owner GN_ERESOURCE; the other stream goes on */
    CHECK_EQ(gni_mplex_stream_write(a, s[0], blob, sizeof blob), (long)sizeof blob);
    CHECK_EQ(gni_mplex_stream_write(a, s[1], (const uint8_t *)"ok", 2), 2);
    exchange(a, b);
    evlog bl2 = {0}, al2 = {0};
    collect(b, &bl2);
    collect(a, &al2);
    const gni_mplex_event *rs = find(&bl2, GNI_MPLEX_EV_STREAM_RESET, h0);
    CHECK(rs != NULL);
    CHECK_EQ(rs->err, GN_ERESOURCE);
    CHECK(find(&al2, GNI_MPLEX_EV_STREAM_RESET, s[0]) != NULL);
    uint8_t two[2];
    CHECK_EQ(gni_mplex_stream_read(b, h1, two, 2), 2);
    CHECK_MEM(two, "ok", 2);
    gni_mplex_stats st;
    gni_mplex_get_stats(b, &st);
    CHECK_EQ(st.rc_refused, 2); /* the stream, the message */
    /* the reset stream's bytes were given back; one receive step is kept */
    CHECK_EQ(rc_system(rm).memory, step + step);

    /* everything goes back once the streams and the session are gone */
    CHECK_OK(gni_mplex_stream_release(b, h0));
    CHECK_OK(gni_mplex_stream_reset(b, h1));
    CHECK_OK(gni_mplex_stream_release(b, h1));
    exchange(a, b);
    gn_rcmgr_usage u = rc_system(rm);
    CHECK_EQ(u.streams_in + u.streams_out, 0);
    CHECK_EQ(u.memory, step + step);
    gni_mplex_free(b);
    gni_mplex_free(a);
    CHECK_EQ(rc_system(rm).memory, 0);
    gn_rcmgr_conn_done(conn);
    char why[256];
    CHECK_OK(gni_rcmgr_check(rm, true, why, sizeof why));
    gn_rcmgr_free(rm);
}

GN_TEST_MAIN(GN_T(kat_new_stream_and_flags), GN_T(kat_receiver_side_flags),
             GN_T(open_accept_data_both_ways), GN_T(byte_by_byte_feeding),
             GN_T(thousand_concurrent_streams), GN_T(half_close_both_ways),
             GN_T(reset_stream), GN_T(slow_reader_fast_writer_bounded),
             GN_T(session_buffer_bound), GN_T(inbound_stream_limit),
             GN_T(pending_accept_limit), GN_T(outbound_limit_and_names),
             GN_T(protocol_violations), GN_T(unknown_remote_stream_dropped),
             GN_T(qos_priority_beats_bulk), GN_T(bounded_send_queue_and_writable),
             GN_T(session_send_budget_many_streams),
             GN_T(allocation_failure_every_k),
             GN_T(burst_of_1000_new_streams_within_limit),
             GN_T(burst_beyond_max_inbound_streams), GN_T(refused_id_reused_before_reset),
             GN_T(refusal_allocation_failure_every_k), GN_T(rcmgr_streams_and_received_data))
