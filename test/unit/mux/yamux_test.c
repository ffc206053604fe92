/*
 * yamux core tests: two sessions back to back in memory, fake clock.
 *
 * Known-answer frames are derived by hand from the header layout in
 * hashicorp/yamux spec.md "Framing" (= libp2p/specs yamux/README.md):
 * version(1) type(1) flags(2) stream id(4) length(4), big endian.
 */
#include "../gn_test.h"

#include "gni.h"
#include "gni_rcmgr.h"
#include "yamux.h"

#include <string.h>

#define KIB 1024u

/* ---- harness ---------------------------------------------------------- */

static gn_mux_config cfg0(void)
{
    gn_mux_config c;
    memset(&c, 0, sizeof(c));
    c.version = GN_MUX_CONFIG_VERSION; /* zero fields: defaults; keepalive off */
    return c;
}

static uint8_t g_wire[64 * 1024];

/* Drains @a into @b until @a is idle. Returns the bytes moved. */
static size_t pump(gni_yamux *a, gni_yamux *b, gn_time now)
{
    size_t total = 0;
    for (int i = 0; i < 100000 && gni_yamux_want_drain(a); i++) {
        gn_buf out;
        gn_buf_init(&out, g_wire, sizeof(g_wire));
        int n = gni_yamux_drain(a, &out, now);
        CHECK(n >= 0);
        if (n == 0)
            break;
        size_t used = 0;
        CHECK_OK(gni_yamux_feed(b, out.pos, (size_t)n, &used, now));
        CHECK_EQ(used, n);
        total += (size_t)n;
    }
    return total;
}

static void exchange(gni_yamux *c, gni_yamux *s, gn_time now)
{
    for (int i = 0; i < 1000; i++) {
        size_t n = pump(c, s, now) + pump(s, c, now);
        if (n == 0)
            return;
    }
    CHECK(!"exchange did not settle");
}

/* Drains @a into a fresh buffer (one call). */
static size_t drain_to(gni_yamux *a, uint8_t *buf, size_t cap, gn_time now)
{
    gn_buf out;
    gn_buf_init(&out, buf, cap);
    int n = gni_yamux_drain(a, &out, now);
    CHECK(n >= 0);
    return (size_t)n;
}

typedef struct evlog {
    gni_yamux_event ev[4096];
    size_t n;
} evlog;

static void collect(gni_yamux *ys, evlog *log)
{
    gni_yamux_event ev;
    for (int i = 0; i < 100000 && gni_yamux_next_event(ys, &ev) == 1; i++) {
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

static const gni_yamux_event *find(const evlog *log, int type, uint32_t id)
{
    for (size_t i = 0; i < log->n; i++)
        if (log->ev[i].type == type && log->ev[i].stream_id == id)
            return &log->ev[i];
    return NULL;
}

/* Parsed frame headers of a drained buffer. */
typedef struct frame {
    uint8_t type;
    uint16_t flags;
    uint32_t id;
    uint32_t len;
} frame;

static size_t parse_frames(const uint8_t *p, size_t n, frame *f, size_t max)
{
    size_t k = 0, off = 0;
    while (off + 12 <= n && k < max) {
        f[k].type = p[off + 1];
        f[k].flags = (uint16_t)((p[off + 2] << 8) | p[off + 3]);
        f[k].id = ((uint32_t)p[off + 4] << 24) | ((uint32_t)p[off + 5] << 16) |
                  ((uint32_t)p[off + 6] << 8) | p[off + 7];
        f[k].len = ((uint32_t)p[off + 8] << 24) | ((uint32_t)p[off + 9] << 16) |
                   ((uint32_t)p[off + 10] << 8) | p[off + 11];
        off += 12 + (f[k].type == GNI_YAMUX_TYPE_DATA ? f[k].len : 0);
        k++;
    }
    CHECK_EQ(off, n);
    return k;
}

static void mkpair(gni_yamux **c, gni_yamux **s, const gn_mux_config *cc,
                   const gn_mux_config *sc)
{
    CHECK_OK(gni_yamux_new(true, cc, 0, c));
    CHECK_OK(gni_yamux_new(false, sc, 0, s));
}

/* ---- known-answer frames ---------------------------------------------- */

GN_TEST(kat_syn_window_update)
{
    gn_mux_config c = cfg0();
    gni_yamux *cl, *sv;
    mkpair(&cl, &sv, &c, &c);
    uint32_t id = 0;
    CHECK_OK(gni_yamux_open(cl, 0, &id));
    CHECK_EQ(id, 1);
    uint8_t buf[64], want[12];
    /* Window Update (1), SYN (0x0001), stream 1, delta 0 */
    CHECK_EQ(gn_test_unhex("00 01 0001 00000001 00000000", want, sizeof(want)), 12);
    CHECK_EQ(drain_to(cl, buf, sizeof(buf), 0), 12);
    CHECK_MEM(buf, want, 12);
    /* the server's first stream is 2 */
    CHECK_OK(gni_yamux_open(sv, 0, &id));
    CHECK_EQ(id, 2);
    CHECK_EQ(gn_test_unhex("00 01 0001 00000002 00000000", want, sizeof(want)), 12);
    CHECK_EQ(drain_to(sv, buf, sizeof(buf), 0), 12);
    CHECK_MEM(buf, want, 12);
    gni_yamux_free(cl);
    gni_yamux_free(sv);
}

GN_TEST(kat_syn_with_bigger_window)
{
    gn_mux_config c = cfg0();
    c.initial_window = 512 * KIB;
    gni_yamux *cl;
    CHECK_OK(gni_yamux_new(true, &c, 0, &cl));
    uint32_t id;
    CHECK_OK(gni_yamux_open(cl, 0, &id));
    uint8_t buf[64], want[12];
    /* SYN carries the extra 256 KiB (0x00040000) above the spec's 256 KiB */
    CHECK_EQ(gn_test_unhex("00 01 0001 00000001 00040000", want, sizeof(want)), 12);
    CHECK_EQ(drain_to(cl, buf, sizeof(buf), 0), 12);
    CHECK_MEM(buf, want, 12);
    gni_yamux_free(cl);
}

GN_TEST(kat_data_ping_goaway)
{
    gn_mux_config c = cfg0();
    gni_yamux *cl;
    CHECK_OK(gni_yamux_new(true, &c, 0, &cl));
    uint32_t id;
    CHECK_OK(gni_yamux_open(cl, 0, &id));
    CHECK_EQ(gni_yamux_stream_write(cl, id, (const uint8_t *)"hi", 2), 2);
    CHECK_OK(gni_yamux_stream_shutdown(cl, id));
    CHECK_OK(gni_yamux_ping(cl, 0));
    uint8_t buf[128], want[128];
    /* ping SYN opaque 1; WU SYN; Data "hi"; WU FIN (FIN in a frame of its own) */
    long n = gn_test_unhex("00 02 0001 00000000 00000001"
                           "00 01 0001 00000001 00000000"
                           "00 00 0000 00000001 00000002 6869"
                           "00 01 0004 00000001 00000000",
                           want, sizeof(want));
    CHECK_EQ(drain_to(cl, buf, sizeof(buf), 0), n);
    CHECK_MEM(buf, want, (size_t)n);
    CHECK_OK(gni_yamux_go_away(cl, GNI_YAMUX_GOAWAY_NORMAL));
    CHECK_EQ(gn_test_unhex("00 03 0000 00000000 00000000", want, sizeof(want)), 12);
    CHECK_EQ(drain_to(cl, buf, sizeof(buf), 0), 12);
    CHECK_MEM(buf, want, 12);
    CHECK_EQ(gni_yamux_go_away(cl, 0), GN_ESTATE);
    uint8_t hdr[12];
    gni_yamux_encode_header(hdr, GNI_YAMUX_TYPE_DATA, GNI_YAMUX_FLAG_RST, 0x01020304u, 7);
    CHECK_EQ(gn_test_unhex("00 00 0008 01020304 00000007", want, sizeof(want)), 12);
    CHECK_MEM(hdr, want, 12);
    gni_yamux_free(cl);
}

/* ---- basic flows ------------------------------------------------------ */

GN_TEST(open_accept_data_both_ways)
{
    gn_mux_config c = cfg0();
    gni_yamux *cl, *sv;
    mkpair(&cl, &sv, &c, &c);
    uint32_t id;
    int tag = 42;
    CHECK_OK(gni_yamux_open(cl, 0, &id));
    CHECK_OK(gni_yamux_stream_set_user_data(cl, id, &tag));
    CHECK_EQ(gni_yamux_stream_write(cl, id, (const uint8_t *)"hello", 5), 5);
    gni_yamux_stream_info info;
    CHECK_OK(gni_yamux_stream_get_info(cl, id, &info));
    CHECK_EQ(info.state, GNI_YAMUX_ST_SYN_SENT);
    pump(cl, sv, 0);
    evlog *log = calloc(1, sizeof(*log));
    collect(sv, log);
    CHECK_EQ(log->n, 2);
    CHECK_EQ(log->ev[0].type, GNI_YAMUX_EV_STREAM_OPENED);
    CHECK_EQ(log->ev[0].stream_id, 1);
    CHECK_EQ(log->ev[1].type, GNI_YAMUX_EV_STREAM_DATA);
    CHECK_OK(gni_yamux_stream_get_info(sv, 1, &info));
    CHECK_EQ(info.state, GNI_YAMUX_ST_SYN_RECEIVED);
    CHECK_EQ(info.recv_buffered, 5);
    CHECK_EQ(gni_yamux_stream_write(sv, 1, (const uint8_t *)"x", 1), GN_ESTATE);
    CHECK_OK(gni_yamux_accept(sv, 1));
    CHECK_EQ(gni_yamux_accept(sv, 1), GN_ESTATE);
    uint8_t buf[64], want[12];
    /* accept: Window Update with ACK (0x0002) for stream 1 */
    CHECK_EQ(drain_to(sv, buf, sizeof(buf), 0), 12);
    CHECK_EQ(gn_test_unhex("00 01 0002 00000001 00000000", want, sizeof(want)), 12);
    CHECK_MEM(buf, want, 12);
    size_t used;
    CHECK_OK(gni_yamux_feed(cl, buf, 12, &used, 0));
    CHECK_OK(gni_yamux_stream_get_info(cl, id, &info));
    CHECK_EQ(info.state, GNI_YAMUX_ST_ESTABLISHED);
    uint8_t rd[16];
    CHECK_EQ(gni_yamux_stream_read(sv, 1, rd, sizeof(rd)), 5);
    CHECK_MEM(rd, "hello", 5);
    CHECK_EQ(gni_yamux_buffered(sv), 0);
    CHECK_EQ(gni_yamux_stream_write(sv, 1, (const uint8_t *)"world!", 6), 6);
    pump(sv, cl, 0);
    log->n = 0;
    collect(cl, log);
    CHECK_EQ(log->n, 1);
    CHECK_EQ(log->ev[0].type, GNI_YAMUX_EV_STREAM_DATA);
    CHECK(log->ev[0].stream_user_data == &tag);
    gn_slice sl;
    CHECK_EQ(gni_yamux_stream_peek(cl, id, &sl), 1);
    CHECK_EQ(sl.len, 6);
    CHECK_MEM(sl.base, "world!", 6);
    CHECK_OK(gni_yamux_stream_consume(cl, id, 6));
    CHECK_EQ(gni_yamux_stream_peek(cl, id, &sl), 0);
    free(log);
    gni_yamux_free(cl);
    gni_yamux_free(sv);
}

GN_TEST(byte_by_byte_feeding)
{
    gn_mux_config c = cfg0();
    gni_yamux *cl, *sv;
    mkpair(&cl, &sv, &c, &c);
    uint32_t a, b;
    CHECK_OK(gni_yamux_open(cl, 0, &a));
    CHECK_OK(gni_yamux_open(cl, 0, &b));
    uint8_t payload[3000];
    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)(i * 13);
    CHECK_EQ(gni_yamux_stream_write(cl, a, payload, sizeof(payload)), (long)sizeof(payload));
    CHECK_EQ(gni_yamux_stream_write(cl, b, (const uint8_t *)"bee", 3), 3);
    CHECK_OK(gni_yamux_stream_shutdown(cl, b));
    CHECK_OK(gni_yamux_ping(cl, 0));
    static uint8_t buf[8192];
    size_t n = drain_to(cl, buf, sizeof(buf), 0);
    CHECK_EQ(n, 12 * 6 + 3000 + 3); /* b's FIN is a frame of its own */
    for (size_t i = 0; i < n; i++) {
        size_t used = 0;
        CHECK_OK(gni_yamux_feed(sv, buf + i, 1, &used, 0));
        CHECK_EQ(used, 1);
    }
    evlog *log = calloc(1, sizeof(*log));
    collect(sv, log);
    CHECK(find(log, GNI_YAMUX_EV_STREAM_OPENED, a));
    CHECK(find(log, GNI_YAMUX_EV_STREAM_OPENED, b));
    CHECK(!find(log, GNI_YAMUX_EV_STREAM_FIN, b)); /* "bee" not consumed yet */
    uint8_t rd[4000];
    CHECK_EQ(gni_yamux_stream_read(sv, a, rd, sizeof(rd)), 3000);
    CHECK_MEM(rd, payload, 3000);
    CHECK_EQ(gni_yamux_stream_read(sv, b, rd, sizeof(rd)), 3);
    CHECK_MEM(rd, "bee", 3);
    log->n = 0;
    collect(sv, log);
    CHECK_EQ(log->n, 1);
    CHECK(find(log, GNI_YAMUX_EV_STREAM_FIN, b));
    /* the ping answer is waiting */
    CHECK_EQ(drain_to(sv, buf, sizeof(buf), 0), 12);
    uint8_t want[12];
    CHECK_EQ(gn_test_unhex("00 02 0002 00000000 00000001", want, sizeof(want)), 12);
    CHECK_MEM(buf, want, 12);
    free(log);
    gni_yamux_free(cl);
    gni_yamux_free(sv);
}

GN_TEST(thousand_concurrent_streams)
{
    gn_mux_config c = cfg0();
    c.max_pending_streams = 1024;
    gni_yamux *cl, *sv;
    mkpair(&cl, &sv, &c, &c);
    static uint32_t ids[1000];
    for (int i = 0; i < 1000; i++) {
        char msg[16];
        int len = snprintf(msg, sizeof(msg), "req%04d", i);
        CHECK_OK(gni_yamux_open(cl, 0, &ids[i]));
        CHECK_EQ(gni_yamux_stream_write(cl, ids[i], (const uint8_t *)msg, (size_t)len), len);
    }
    exchange(cl, sv, 0);
    gni_yamux_stats st;
    gni_yamux_get_stats(sv, &st);
    CHECK_EQ(st.streams_inbound, 1000);
    CHECK_EQ(st.streams_pending, 1000);
    evlog *log = calloc(1, sizeof(*log));
    collect(sv, log);
    CHECK_EQ(count(log, GNI_YAMUX_EV_STREAM_OPENED), 1000);
    for (int i = 0; i < 1000; i++) {
        uint8_t rd[16];
        char want[16];
        CHECK_OK(gni_yamux_accept(sv, ids[i]));
        int wl = snprintf(want, sizeof(want), "req%04d", i);
        CHECK_EQ(gni_yamux_stream_read(sv, ids[i], rd, sizeof(rd)), wl);
        CHECK_MEM(rd, want, (size_t)wl);
        rd[0] = 'R';
        CHECK_EQ(gni_yamux_stream_write(sv, ids[i], rd, (size_t)wl), wl);
        CHECK_OK(gni_yamux_stream_shutdown(sv, ids[i]));
    }
    exchange(cl, sv, 0);
    log->n = 0;
    collect(cl, log);
    CHECK_EQ(count(log, GNI_YAMUX_EV_STREAM_DATA), 1000);
    /* FIN events wait until the data before the FIN is consumed */
    CHECK_EQ(count(log, GNI_YAMUX_EV_STREAM_FIN), 0);
    for (int i = 0; i < 1000; i++) {
        uint8_t rd[16];
        char want[16];
        int wl = snprintf(want, sizeof(want), "Req%04d", i);
        CHECK_EQ(gni_yamux_stream_read(cl, ids[i], rd, sizeof(rd)), wl);
        CHECK_MEM(rd, want, (size_t)wl);
    }
    log->n = 0;
    collect(cl, log);
    CHECK_EQ(count(log, GNI_YAMUX_EV_STREAM_FIN), 1000);
    for (int i = 0; i < 1000; i++) {
        CHECK_OK(gni_yamux_stream_shutdown(cl, ids[i]));
        CHECK_OK(gni_yamux_stream_release(cl, ids[i]));
    }
    exchange(cl, sv, 0);
    for (int i = 0; i < 1000; i++)
        CHECK_OK(gni_yamux_stream_release(sv, ids[i]));
    exchange(cl, sv, 0);
    gni_yamux_get_stats(cl, &st);
    CHECK_EQ(st.streams_outbound, 0);
    gni_yamux_get_stats(sv, &st);
    CHECK_EQ(st.streams_inbound, 0);
    free(log);
    gni_yamux_free(cl);
    gni_yamux_free(sv);
}

GN_TEST(half_close_both_ways)
{
    gn_mux_config c = cfg0();
    gni_yamux *cl, *sv;
    mkpair(&cl, &sv, &c, &c);
    uint32_t id;
    CHECK_OK(gni_yamux_open(cl, 0, &id));
    CHECK_EQ(gni_yamux_stream_write(cl, id, (const uint8_t *)"abc", 3), 3);
    CHECK_OK(gni_yamux_stream_shutdown(cl, id));
    CHECK_EQ(gni_yamux_stream_shutdown(cl, id), GN_ESTATE);
    CHECK_EQ(gni_yamux_stream_write(cl, id, (const uint8_t *)"x", 1), GN_EPIPE);
    exchange(cl, sv, 0);
    evlog *log = calloc(1, sizeof(*log));
    collect(sv, log);
    /* FIN is reported only once the data before it is consumed */
    CHECK(find(log, GNI_YAMUX_EV_STREAM_DATA, id));
    CHECK(!find(log, GNI_YAMUX_EV_STREAM_FIN, id));
    CHECK_OK(gni_yamux_accept(sv, id));
    gni_yamux_stream_info info;
    CHECK_OK(gni_yamux_stream_get_info(sv, id, &info));
    CHECK_EQ(info.state, GNI_YAMUX_ST_HALF_CLOSED_REMOTE);
    uint8_t rd[8];
    CHECK_EQ(gni_yamux_stream_read(sv, id, rd, sizeof(rd)), 3);
    log->n = 0;
    collect(sv, log);
    CHECK(find(log, GNI_YAMUX_EV_STREAM_FIN, id));
    /* the server may still write after the client's FIN */
    CHECK_EQ(gni_yamux_stream_write(sv, id, (const uint8_t *)"back", 4), 4);
    exchange(cl, sv, 0);
    CHECK_OK(gni_yamux_stream_get_info(cl, id, &info));
    CHECK_EQ(info.state, GNI_YAMUX_ST_HALF_CLOSED_LOCAL);
    CHECK_EQ(gni_yamux_stream_read(cl, id, rd, sizeof(rd)), 4);
    CHECK_MEM(rd, "back", 4);
    CHECK_OK(gni_yamux_stream_shutdown(sv, id));
    exchange(cl, sv, 0);
    log->n = 0;
    collect(cl, log);
    CHECK(find(log, GNI_YAMUX_EV_STREAM_FIN, id));
    CHECK_OK(gni_yamux_stream_get_info(cl, id, &info));
    CHECK_EQ(info.state, GNI_YAMUX_ST_CLOSED);
    CHECK_OK(gni_yamux_stream_get_info(sv, id, &info));
    CHECK_EQ(info.state, GNI_YAMUX_ST_CLOSED);
    /* released closed streams are freed, nothing more on the wire */
    CHECK_OK(gni_yamux_stream_release(cl, id));
    CHECK_OK(gni_yamux_stream_release(sv, id));
    CHECK(!gni_yamux_want_drain(cl));
    CHECK(!gni_yamux_want_drain(sv));
    gni_yamux_stats st;
    gni_yamux_get_stats(cl, &st);
    CHECK_EQ(st.streams_outbound, 0);
    CHECK_EQ(gni_yamux_stream_release(cl, id), GN_ENOTFOUND);
    free(log);
    gni_yamux_free(cl);
    gni_yamux_free(sv);
}

GN_TEST(reset_stream)
{
    gn_mux_config c = cfg0();
    gni_yamux *cl, *sv;
    mkpair(&cl, &sv, &c, &c);
    uint32_t id;
    CHECK_OK(gni_yamux_open(cl, 0, &id));
    CHECK_EQ(gni_yamux_stream_write(cl, id, (const uint8_t *)"abc", 3), 3);
    exchange(cl, sv, 0);
    CHECK_OK(gni_yamux_accept(sv, id));
    exchange(cl, sv, 0);
    CHECK_EQ(gni_yamux_buffered(sv), 3);
    CHECK_OK(gni_yamux_stream_reset(cl, id));
    uint8_t buf[64], want[12];
    /* RST (0x0008) as a Window Update */
    CHECK_EQ(drain_to(cl, buf, sizeof(buf), 0), 12);
    CHECK_EQ(gn_test_unhex("00 01 0008 00000001 00000000", want, sizeof(want)), 12);
    CHECK_MEM(buf, want, 12);
    size_t used;
    CHECK_OK(gni_yamux_feed(sv, buf, 12, &used, 0));
    evlog *log = calloc(1, sizeof(*log));
    collect(sv, log);
    const gni_yamux_event *e = find(log, GNI_YAMUX_EV_STREAM_RESET, id);
    CHECK(e != NULL);
    CHECK_EQ(e->err, GN_ESTREAMRESET);
    /* unconsumed data is dropped */
    CHECK_EQ(gni_yamux_buffered(sv), 0);
    CHECK_EQ(gni_yamux_stream_write(sv, id, (const uint8_t *)"x", 1), GN_ESTREAMRESET);
    CHECK_EQ(gni_yamux_stream_write(cl, id, (const uint8_t *)"x", 1), GN_ESTREAMRESET);
    gni_yamux_stream_info info;
    CHECK_OK(gni_yamux_stream_get_info(sv, id, &info));
    CHECK_EQ(info.state, GNI_YAMUX_ST_RESET);
    CHECK_OK(gni_yamux_stream_release(sv, id));
    CHECK_OK(gni_yamux_stream_release(cl, id));
    gni_yamux_stats st;
    gni_yamux_get_stats(sv, &st);
    CHECK_EQ(st.streams_inbound, 0);
    /* late data for the dead stream is dropped without error */
    uint8_t late[13];
    gni_yamux_encode_header(late, GNI_YAMUX_TYPE_DATA, 0, id, 1);
    late[12] = 'z';
    CHECK_OK(gni_yamux_feed(sv, late, sizeof(late), &used, 0));
    CHECK_EQ(gni_yamux_buffered(sv), 0);
    free(log);
    gni_yamux_free(cl);
    gni_yamux_free(sv);
}

GN_TEST(release_open_stream_sends_rst)
{
    gn_mux_config c = cfg0();
    gni_yamux *cl, *sv;
    mkpair(&cl, &sv, &c, &c);
    uint32_t id;
    CHECK_OK(gni_yamux_open(cl, 0, &id));
    exchange(cl, sv, 0);
    CHECK_OK(gni_yamux_accept(sv, id));
    exchange(cl, sv, 0);
    CHECK_OK(gni_yamux_stream_release(cl, id));
    CHECK_EQ(gni_yamux_stream_write(cl, id, (const uint8_t *)"x", 1), GN_ENOTFOUND);
    exchange(cl, sv, 0);
    evlog *log = calloc(1, sizeof(*log));
    collect(sv, log);
    CHECK(find(log, GNI_YAMUX_EV_STREAM_RESET, id));
    gni_yamux_stats st;
    gni_yamux_get_stats(cl, &st);
    CHECK_EQ(st.streams_outbound, 0);
    free(log);
    gni_yamux_free(cl);
    gni_yamux_free(sv);
}

/* ---- flow control ----------------------------------------------------- */

static uint8_t pattern(size_t i)
{
    return (uint8_t)((i * 7u) % 251u);
}

GN_TEST(slow_reader_fast_writer_bounded)
{
    gn_mux_config c = cfg0();
    gni_yamux *cl, *sv;
    mkpair(&cl, &sv, &c, &c);
    const size_t total = 4u * 1024u * 1024u;
    uint8_t *src = malloc(total);
    CHECK(src != NULL);
    for (size_t i = 0; i < total; i++)
        src[i] = pattern(i);
    uint32_t id;
    CHECK_OK(gni_yamux_open(cl, 0, &id));
    size_t off = 0;
    /* phase 1: the reader consumes nothing, the writer stalls at 256 KiB */
    for (int i = 0; i < 100; i++) {
        long w = gni_yamux_stream_write(cl, id, src + off, total - off);
        CHECK(w >= 0);
        off += (size_t)w;
        exchange(cl, sv, 0);
        if (w == 0)
            break;
    }
    CHECK_EQ(off, 256 * KIB);
    CHECK_EQ(gni_yamux_buffered(sv), 256 * KIB);
    CHECK_EQ(gni_yamux_stream_write_space(cl, id), 0);
    CHECK_OK(gni_yamux_accept(sv, id));
    exchange(cl, sv, 0); /* the ACK goes out before any credit */
    evlog *log = calloc(1, sizeof(*log));
    collect(cl, log);
    log->n = 0;
    /* phase 2: below half a window consumed, no credit goes back */
    static uint8_t rd[128 * 1024];
    size_t got = 0;
    CHECK_EQ(gni_yamux_stream_read(sv, id, rd, 100 * KIB), 100 * KIB);
    for (size_t i = 0; i < 100 * KIB; i++)
        CHECK(rd[i] == pattern(got + i));
    got += 100 * KIB;
    exchange(cl, sv, 0);
    CHECK_EQ(gni_yamux_stream_write_space(cl, id), 0);
    collect(cl, log);
    CHECK_EQ(count(log, GNI_YAMUX_EV_STREAM_WRITABLE), 0);
    CHECK_EQ(gni_yamux_stream_read(sv, id, rd, 28 * KIB), 28 * KIB);
    got += 28 * KIB;
    exchange(cl, sv, 0);
    collect(cl, log);
    CHECK_EQ(count(log, GNI_YAMUX_EV_STREAM_WRITABLE), 1);
    CHECK_EQ(gni_yamux_stream_write_space(cl, id), 128 * KIB);
    /* phase 3: stream the rest; the reader takes 16 KiB per round */
    size_t max_buf = 0;
    for (int i = 0; i < 100000 && got < total; i++) {
        if (off < total) {
            long w = gni_yamux_stream_write(cl, id, src + off, total - off);
            CHECK(w >= 0);
            off += (size_t)w;
        }
        exchange(cl, sv, 0);
        max_buf = GNI_MAX(max_buf, gni_yamux_buffered(sv));
        gni_yamux_stats st;
        gni_yamux_get_stats(cl, &st);
        CHECK(st.send_queued <= c.stream_buffer_max + 1024u * 1024u);
        long r = gni_yamux_stream_read(sv, id, rd, 16 * KIB);
        CHECK(r >= 0);
        for (long k = 0; k < r; k++)
            CHECK(rd[k] == pattern(got + (size_t)k));
        got += (size_t)r;
    }
    CHECK_EQ(got, total);
    CHECK(max_buf <= 256 * KIB);
    CHECK(max_buf > 0);
    free(log);
    free(src);
    gni_yamux_free(cl);
    gni_yamux_free(sv);
}

GN_TEST(window_growth)
{
    gn_mux_config c = cfg0();
    c.max_window = 1024 * KIB;
    gni_yamux *cl, *sv;
    mkpair(&cl, &sv, &c, &c);
    uint32_t id;
    CHECK_OK(gni_yamux_open(cl, 0, &id));
    exchange(cl, sv, 0);
    CHECK_OK(gni_yamux_accept(sv, id));
    CHECK_EQ(gni_yamux_stream_set_window(sv, id, 2048 * KIB), GN_ERANGE);
    CHECK_OK(gni_yamux_stream_set_window(sv, id, 1024 * KIB));
    uint8_t buf[64], want[12];
    /* ACK plus the extra 768 KiB (0x000C0000) */
    CHECK_EQ(drain_to(sv, buf, sizeof(buf), 0), 12);
    CHECK_EQ(gn_test_unhex("00 01 0002 00000001 000C0000", want, sizeof(want)), 12);
    CHECK_MEM(buf, want, 12);
    size_t used;
    CHECK_OK(gni_yamux_feed(cl, buf, 12, &used, 0));
    CHECK_EQ(gni_yamux_stream_write_space(cl, id), 1024 * KIB);
    gni_yamux_stream_info info;
    CHECK_OK(gni_yamux_stream_get_info(sv, id, &info));
    CHECK_EQ(info.recv_max, 1024 * KIB);
    CHECK_EQ(info.recv_window, 1024 * KIB);
    gni_yamux_free(cl);
    gni_yamux_free(sv);
}

GN_TEST(session_buffer_budget_resets_stream)
{
    gn_mux_config c = cfg0();
    c.session_buffer_max = 300 * KIB;
    gni_yamux *cl, *sv;
    mkpair(&cl, &sv, &c, &c);
    static uint8_t blob[200 * 1024];
    memset(blob, 'b', sizeof(blob));
    uint32_t a, b;
    CHECK_OK(gni_yamux_open(cl, 0, &a));
    CHECK_OK(gni_yamux_open(cl, 0, &b));
    CHECK_EQ(gni_yamux_stream_write(cl, a, blob, sizeof(blob)), (long)sizeof(blob));
    exchange(cl, sv, 0);
    CHECK_EQ(gni_yamux_stream_write(cl, b, blob, sizeof(blob)), (long)sizeof(blob));
    exchange(cl, sv, 0);
    CHECK(gni_yamux_buffered(sv) <= 300 * KIB);
    evlog *log = calloc(1, sizeof(*log));
    collect(sv, log);
    const gni_yamux_event *e = find(log, GNI_YAMUX_EV_STREAM_RESET, b);
    CHECK(e != NULL);
    CHECK_EQ(e->err, GN_ETOOBIG);
    CHECK(!find(log, GNI_YAMUX_EV_STREAM_RESET, a));
    CHECK_EQ(gni_yamux_buffered(sv), sizeof(blob));
    log->n = 0;
    collect(cl, log);
    CHECK(find(log, GNI_YAMUX_EV_STREAM_RESET, b));
    free(log);
    gni_yamux_free(cl);
    gni_yamux_free(sv);
}

/* ---- limits ----------------------------------------------------------- */

GN_TEST(inbound_stream_limit)
{
    gn_mux_config c = cfg0(), s = cfg0();
    s.max_inbound_streams = 4;
    gni_yamux *cl, *sv;
    mkpair(&cl, &sv, &c, &s);
    uint32_t ids[6];
    for (int i = 0; i < 6; i++)
        CHECK_OK(gni_yamux_open(cl, 0, &ids[i]));
    exchange(cl, sv, 0);
    evlog *log = calloc(1, sizeof(*log));
    collect(sv, log);
    CHECK_EQ(count(log, GNI_YAMUX_EV_STREAM_OPENED), 4);
    const gni_yamux_event *e = find(log, GNI_YAMUX_EV_STREAM_REFUSED, ids[5]);
    CHECK(e != NULL);
    CHECK_EQ(e->count, 2);
    CHECK_EQ(e->err, GN_ESTREAMLIMIT);
    log->n = 0;
    collect(cl, log);
    CHECK_EQ(count(log, GNI_YAMUX_EV_STREAM_RESET), 2);
    CHECK(find(log, GNI_YAMUX_EV_STREAM_RESET, ids[4]));
    CHECK_EQ(find(log, GNI_YAMUX_EV_STREAM_RESET, ids[5])->err, GN_ESTREAMRESET);
    gni_yamux_stats st;
    gni_yamux_get_stats(sv, &st);
    CHECK_EQ(st.streams_refused, 2);
    CHECK_EQ(gni_yamux_error(sv), 0);
    free(log);
    gni_yamux_free(cl);
    gni_yamux_free(sv);
}

GN_TEST(pending_accept_limit)
{
    gn_mux_config c = cfg0(), s = cfg0();
    s.max_pending_streams = 3;
    gni_yamux *cl, *sv;
    mkpair(&cl, &sv, &c, &s);
    uint32_t ids[5];
    for (int i = 0; i < 5; i++)
        CHECK_OK(gni_yamux_open(cl, 0, &ids[i]));
    exchange(cl, sv, 0);
    evlog *log = calloc(1, sizeof(*log));
    collect(sv, log);
    CHECK_EQ(count(log, GNI_YAMUX_EV_STREAM_OPENED), 3);
    CHECK_EQ(find(log, GNI_YAMUX_EV_STREAM_REFUSED, ids[4])->count, 2);
    gni_yamux_stats st;
    gni_yamux_get_stats(sv, &st);
    CHECK_EQ(st.streams_pending, 3);
    for (int i = 0; i < 3; i++)
        CHECK_OK(gni_yamux_accept(sv, ids[i]));
    gni_yamux_get_stats(sv, &st);
    CHECK_EQ(st.streams_pending, 0);
    uint32_t more[3];
    for (int i = 0; i < 3; i++)
        CHECK_OK(gni_yamux_open(cl, 0, &more[i]));
    exchange(cl, sv, 0);
    log->n = 0;
    collect(sv, log);
    CHECK_EQ(count(log, GNI_YAMUX_EV_STREAM_OPENED), 3);
    CHECK_EQ(count(log, GNI_YAMUX_EV_STREAM_REFUSED), 0);
    free(log);
    gni_yamux_free(cl);
    gni_yamux_free(sv);
}

GN_TEST(outbound_stream_limit)
{
    gn_mux_config c = cfg0();
    c.max_outbound_streams = 2;
    gni_yamux *cl;
    CHECK_OK(gni_yamux_new(true, &c, 0, &cl));
    uint32_t id;
    CHECK_OK(gni_yamux_open(cl, 0, &id));
    CHECK_OK(gni_yamux_open(cl, 0, &id));
    CHECK_EQ(gni_yamux_open(cl, 0, &id), GN_ESTREAMLIMIT);
    gni_yamux_free(cl);
}

GN_TEST(go_away)
{
    gn_mux_config c = cfg0();
    gni_yamux *cl, *sv;
    mkpair(&cl, &sv, &c, &c);
    uint32_t id;
    CHECK_OK(gni_yamux_open(cl, 0, &id));
    exchange(cl, sv, 0);
    CHECK_OK(gni_yamux_accept(sv, id));
    CHECK_OK(gni_yamux_go_away(cl, GNI_YAMUX_GOAWAY_NORMAL));
    CHECK_EQ(gni_yamux_open(cl, 0, &id), GN_EGOAWAY);
    exchange(cl, sv, 0);
    evlog *log = calloc(1, sizeof(*log));
    collect(sv, log);
    CHECK_EQ(count(log, GNI_YAMUX_EV_GOAWAY), 1);
    CHECK_EQ(log->ev[log->n - 1].code, GNI_YAMUX_GOAWAY_NORMAL);
    CHECK_EQ(gni_yamux_open(sv, 0, &id), GN_EGOAWAY);
    /* the existing stream keeps working */
    CHECK_EQ(gni_yamux_stream_write(sv, 1, (const uint8_t *)"ok", 2), 2);
    exchange(cl, sv, 0);
    uint8_t rd[4];
    CHECK_EQ(gni_yamux_stream_read(cl, 1, rd, sizeof(rd)), 2);
    /* a SYN after our Go Away is refused */
    uint8_t syn[12];
    gni_yamux_encode_header(syn, GNI_YAMUX_TYPE_WINDOW_UPDATE, GNI_YAMUX_FLAG_SYN, 2, 0);
    size_t used;
    CHECK_OK(gni_yamux_feed(cl, syn, sizeof(syn), &used, 0));
    log->n = 0;
    collect(cl, log);
    CHECK_EQ(find(log, GNI_YAMUX_EV_STREAM_REFUSED, 2)->err, GN_EGOAWAY);
    free(log);
    gni_yamux_free(cl);
    gni_yamux_free(sv);
}

/* ---- bursts of stream opens ------------------------------------------ */

/* @n SYNs (Window Update, length 0) for peer ids @first, @first + 2, ... */
static size_t syn_burst(uint8_t *buf, uint32_t first, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        gni_yamux_encode_header(buf + 12u * i, GNI_YAMUX_TYPE_WINDOW_UPDATE,
                                GNI_YAMUX_FLAG_SYN, first + 2u * i, 0);
    return 12u * n;
}

/* Drains all @ys has into @buf (@cap bytes); returns the length. */
static size_t drain_all(gni_yamux *ys, uint8_t *buf, size_t cap)
{
    size_t total = 0;
    for (int i = 0; i < 10000 && gni_yamux_want_drain(ys); i++) {
        gn_buf out;
        gn_buf_init(&out, buf + total, cap - total);
        int n = gni_yamux_drain(ys, &out, 0);
        CHECK(n > 0);
        total += (size_t)n;
    }
    CHECK(!gni_yamux_want_drain(ys));
    return total;
}

/* @f[0..@nf) is exactly one RST (Window Update, RST, length 0) for each of @cnt ids from @first. */
static void check_rsts(const frame *f, size_t nf, uint32_t first, unsigned cnt)
{
    CHECK_EQ(nf, cnt);
    for (unsigned i = 0; i < cnt && i < nf; i++) {
        CHECK_EQ(f[i].type, GNI_YAMUX_TYPE_WINDOW_UPDATE);
        CHECK_EQ(f[i].flags, GNI_YAMUX_FLAG_RST);
        CHECK_EQ(f[i].len, 0);
        CHECK_EQ(f[i].id, first + 2u * i);
    }
}

/* Feeds @len bytes of @in, which must all be taken. */
static void feed_ok(gni_yamux *ys, const uint8_t *in, size_t len)
{
    size_t used = 0;
    CHECK_OK(gni_yamux_feed(ys, in, len, &used, 0));
    CHECK_EQ(used, len);
}

/*
 * Issue 10: 1,000 SYNs pipelined in one buffer (within max_inbound_streams
 * 1024) cost the session its life from the 513th on (256 pending + a
 * 256-entry refusal ring). Now the 744 beyond the ACK backlog get one RST
 * each and the session carries on.
 */
GN_TEST(burst_of_1000_syns_within_limit)
{
    enum { N = 1000, PEND = 256, REF = N - PEND };
    gn_mux_config c = cfg0(); /* 1024 inbound, 256 pending */
    gni_yamux *sv;
    CHECK_OK(gni_yamux_new(false, &c, 0, &sv));
    uint8_t *in = malloc(12u * N);
    uint8_t *out = malloc(64 * KIB);
    frame *f = calloc(N, sizeof(*f));
    evlog *log = calloc(1, sizeof(*log));
    CHECK(in && out && f && log);
    feed_ok(sv, in, syn_burst(in, 1, N));
    CHECK_EQ(gni_yamux_error(sv), 0);
    collect(sv, log);
    CHECK_EQ(count(log, GNI_YAMUX_EV_STREAM_OPENED), PEND);
    CHECK(find(log, GNI_YAMUX_EV_STREAM_OPENED, 2 * PEND - 1));
    CHECK_EQ(count(log, GNI_YAMUX_EV_SESSION_END), 0);
    CHECK_EQ(count(log, GNI_YAMUX_EV_STREAM_REFUSED), 1);
    const gni_yamux_event *e = find(log, GNI_YAMUX_EV_STREAM_REFUSED, 2 * N - 1);
    CHECK(e != NULL);
    CHECK_EQ(e->count, REF);
    CHECK_EQ(e->err, GN_ESTREAMLIMIT);
    gni_yamux_stats st;
    gni_yamux_get_stats(sv, &st);
    CHECK_EQ(st.streams_inbound, PEND);
    CHECK_EQ(st.streams_pending, PEND);
    CHECK_EQ(st.streams_refused, REF);
    CHECK_EQ(st.refused_waiting, REF);
    /* Late data for a refused stream is dropped quietly. */
    uint8_t late[15];
    gni_yamux_encode_header(late, GNI_YAMUX_TYPE_DATA, 0, 2 * PEND + 1, 3);
    memcpy(late + 12, "xyz", 3);
    feed_ok(sv, late, sizeof(late));
    /* Each excess stream: exactly one RST, oldest first, nothing else. */
    size_t on = drain_all(sv, out, 64 * KIB);
    CHECK_EQ(on, 12u * REF);
    uint8_t want[32];
    /* known answer: Window Update (01), flags RST (0008), id 513, length 0 */
    CHECK_EQ(gn_test_unhex("00 01 0008 00000201 00000000", want, sizeof(want)), 12);
    CHECK_MEM(out, want, 12);
    check_rsts(f, parse_frames(out, on, f, N), 2 * PEND + 1, REF);
    gni_yamux_get_stats(sv, &st);
    CHECK_EQ(st.refused_waiting, 0);
    /* The accepted ones get their ACKs. */
    for (uint32_t i = 0; i < PEND; i++)
        CHECK_OK(gni_yamux_accept(sv, 1 + 2 * i));
    on = drain_all(sv, out, 64 * KIB);
    size_t nf = parse_frames(out, on, f, N);
    CHECK_EQ(nf, PEND);
    for (size_t i = 0; i < nf; i++)
        CHECK(f[i].flags == GNI_YAMUX_FLAG_ACK && f[i].id == 1 + 2 * i);
    /* A stream opened after the burst works both ways. */
    uint8_t syn[17];
    gni_yamux_encode_header(syn, GNI_YAMUX_TYPE_DATA, GNI_YAMUX_FLAG_SYN, 2 * N + 1, 5);
    memcpy(syn + 12, "hello", 5);
    feed_ok(sv, syn, sizeof(syn));
    log->n = 0;
    collect(sv, log);
    CHECK(find(log, GNI_YAMUX_EV_STREAM_OPENED, 2 * N + 1));
    CHECK(find(log, GNI_YAMUX_EV_STREAM_DATA, 2 * N + 1));
    CHECK_EQ(log->n, 2);
    CHECK_OK(gni_yamux_accept(sv, 2 * N + 1));
    uint8_t rd[8];
    CHECK_EQ(gni_yamux_stream_read(sv, 2 * N + 1, rd, sizeof(rd)), 5);
    CHECK_MEM(rd, "hello", 5);
    CHECK_EQ(gni_yamux_stream_write(sv, 2 * N + 1, (const uint8_t *)"world", 5), 5);
    on = drain_all(sv, out, 64 * KIB);
    /* ACK, carrying the credit for the 5 bytes read; Data "world" */
    CHECK_EQ(gn_test_unhex("00 01 0002 000007d1 00000005"
                           "00 00 0000 000007d1 00000005 776f726c64", /* "world" */
                           want, sizeof(want)),
             29);
    CHECK_EQ(on, 29);
    CHECK_MEM(out, want, 29);
    gni_yamux_get_stats(sv, &st);
    CHECK_EQ(st.streams_inbound, PEND + 1);
    CHECK_EQ(st.streams_refused, REF);
    CHECK_EQ(gni_yamux_error(sv), 0);
    free(in);
    free(out);
    free(f);
    free(log);
    gni_yamux_free(sv);
}

/*
 * A peer at max_inbound_streams that keeps opening gets one RST per extra
 * stream; only one with more than max_inbound_streams + the margin of them
 * unanswered (it does not let us write) loses the session.
 */
GN_TEST(burst_beyond_max_inbound_streams)
{
    enum { MAXIN = 1024, PEND = 256, N = 1000, BOUND = MAXIN + GNI_YAMUX_REFUSE_MARGIN };
    gn_mux_config c = cfg0();
    gni_yamux *sv;
    CHECK_OK(gni_yamux_new(false, &c, 0, &sv));
    uint8_t *in = malloc(12u * BOUND);
    uint8_t *out = malloc(64 * KIB);
    frame *f = calloc(N, sizeof(*f));
    evlog *log = calloc(1, sizeof(*log));
    CHECK(in && out && f && log);
    uint32_t next = 1;
    /* up to the limit, one ACK backlog at a time */
    for (int r = 0; r < MAXIN / PEND; r++) {
        feed_ok(sv, in, syn_burst(in, next, PEND));
        for (uint32_t i = 0; i < PEND; i++)
            CHECK_OK(gni_yamux_accept(sv, next + 2 * i));
        next += 2 * PEND;
        drain_all(sv, out, 64 * KIB);
    }
    collect(sv, log);
    CHECK_EQ(count(log, GNI_YAMUX_EV_STREAM_OPENED), MAXIN);
    CHECK_EQ(count(log, GNI_YAMUX_EV_STREAM_REFUSED), 0);
    /* 1,000 more in one buffer: all refused, one RST each, the session lives */
    feed_ok(sv, in, syn_burst(in, next, N));
    log->n = 0;
    collect(sv, log);
    CHECK_EQ(log->n, 1);
    CHECK_EQ(find(log, GNI_YAMUX_EV_STREAM_REFUSED, next + 2 * (N - 1))->count, N);
    size_t on = drain_all(sv, out, 64 * KIB);
    check_rsts(f, parse_frames(out, on, f, N), next, N);
    next += 2 * N;
    /* The peer resets a refused stream before our RST went out: none is sent. */
    feed_ok(sv, in, syn_burst(in, next, 3));
    uint8_t rst[12];
    gni_yamux_encode_header(rst, GNI_YAMUX_TYPE_WINDOW_UPDATE, GNI_YAMUX_FLAG_RST, next + 2, 0);
    feed_ok(sv, rst, sizeof(rst));
    on = drain_all(sv, out, 64 * KIB);
    CHECK_EQ(parse_frames(out, on, f, N), 2);
    CHECK(f[0].id == next && f[1].id == next + 4 && f[1].flags == GNI_YAMUX_FLAG_RST);
    next += 6;
    /* Not read: up to max_inbound_streams + margin RSTs may wait... */
    feed_ok(sv, in, syn_burst(in, next, BOUND));
    next += 2 * BOUND;
    CHECK_EQ(gni_yamux_error(sv), 0);
    gni_yamux_stats st;
    gni_yamux_get_stats(sv, &st);
    CHECK_EQ(st.refused_waiting, BOUND);
    /* ...(one the peer reset itself frees its place)... */
    gni_yamux_encode_header(rst, GNI_YAMUX_TYPE_WINDOW_UPDATE, GNI_YAMUX_FLAG_RST, next - 2, 0);
    feed_ok(sv, rst, sizeof(rst));
    feed_ok(sv, in, syn_burst(in, next, 1));
    next += 2;
    CHECK_EQ(gni_yamux_error(sv), 0);
    /* ...and one more ends the session: Go Away, protocol error. */
    size_t used = 0;
    CHECK_EQ(gni_yamux_feed(sv, in, syn_burst(in, next, 1), &used, 0), GN_ESTREAMLIMIT);
    CHECK_EQ(used, 12);
    log->n = 0;
    collect(sv, log);
    CHECK_EQ(log->ev[log->n - 1].type, GNI_YAMUX_EV_SESSION_END);
    CHECK_EQ(log->ev[log->n - 1].err, GN_ESTREAMLIMIT);
    on = drain_all(sv, out, 64 * KIB);
    uint8_t want[12];
    CHECK_EQ(gn_test_unhex("00 03 0000 00000000 00000001", want, sizeof(want)), 12);
    CHECK_EQ(on, 12);
    CHECK_MEM(out, want, 12);
    free(in);
    free(out);
    free(f);
    free(log);
    gni_yamux_free(sv);
}

/* ---- ping and timers -------------------------------------------------- */

GN_TEST(ping_rtt)
{
    gn_mux_config c = cfg0();
    gni_yamux *cl, *sv;
    mkpair(&cl, &sv, &c, &c);
    CHECK_OK(gni_yamux_ping(cl, 1000 * GN_MS));
    CHECK_EQ(gni_yamux_ping(cl, 1000 * GN_MS), GN_EAGAIN);
    pump(cl, sv, 1010 * GN_MS);
    pump(sv, cl, 1050 * GN_MS);
    evlog *log = calloc(1, sizeof(*log));
    collect(cl, log);
    CHECK_EQ(log->n, 1);
    CHECK_EQ(log->ev[0].type, GNI_YAMUX_EV_PING_RTT);
    CHECK_EQ(log->ev[0].rtt, 50 * GN_MS);
    gni_yamux_stats st;
    gni_yamux_get_stats(cl, &st);
    CHECK_EQ(st.last_rtt, 50 * GN_MS);
    /* a stale or unsolicited pong is ignored */
    uint8_t pong[12];
    gni_yamux_encode_header(pong, GNI_YAMUX_TYPE_PING, GNI_YAMUX_FLAG_ACK, 0, 99);
    size_t used;
    CHECK_OK(gni_yamux_feed(cl, pong, 12, &used, 2 * GN_S));
    log->n = 0;
    collect(cl, log);
    CHECK_EQ(log->n, 0);
    free(log);
    gni_yamux_free(cl);
    gni_yamux_free(sv);
}

GN_TEST(keepalive_and_ping_timeout)
{
    gn_mux_config c = cfg0();
    c.keepalive_interval = 10 * GN_S;
    gni_yamux *cl, *sv;
    mkpair(&cl, &sv, &c, &c);
    CHECK_EQ(gni_yamux_next_deadline(cl), 10 * GN_S);
    CHECK_OK(gni_yamux_on_expiry(cl, 5 * GN_S));
    CHECK(!gni_yamux_want_drain(cl));
    CHECK_OK(gni_yamux_on_expiry(cl, 10 * GN_S));
    uint8_t buf[64], want[12];
    CHECK_EQ(drain_to(cl, buf, sizeof(buf), 10 * GN_S), 12);
    CHECK_EQ(gn_test_unhex("00 02 0001 00000000 00000001", want, sizeof(want)), 12);
    CHECK_MEM(buf, want, 12);
    /* answered: next ping 10 s after the pong */
    size_t used;
    CHECK_OK(gni_yamux_feed(sv, buf, 12, &used, 10 * GN_S));
    pump(sv, cl, 11 * GN_S);
    CHECK_EQ(gni_yamux_next_deadline(cl), 21 * GN_S);
    /* unanswered: the session ends at ping time + interval */
    CHECK_OK(gni_yamux_on_expiry(cl, 21 * GN_S));
    CHECK_EQ(drain_to(cl, buf, sizeof(buf), 21 * GN_S), 12);
    CHECK_EQ(gni_yamux_next_deadline(cl), 31 * GN_S);
    CHECK_EQ(gni_yamux_on_expiry(cl, 31 * GN_S), GN_ETIMEDOUT);
    CHECK_EQ(drain_to(cl, buf, sizeof(buf), 31 * GN_S), 12);
    /* Go Away, internal error */
    CHECK_EQ(gn_test_unhex("00 03 0000 00000000 00000002", want, sizeof(want)), 12);
    CHECK_MEM(buf, want, 12);
    evlog *log = calloc(1, sizeof(*log));
    collect(cl, log);
    CHECK_EQ(log->ev[log->n - 1].type, GNI_YAMUX_EV_SESSION_END);
    CHECK_EQ(log->ev[log->n - 1].err, GN_ETIMEDOUT);
    CHECK_EQ(gni_yamux_next_deadline(cl), GN_TIME_INFINITY);
    free(log);
    gni_yamux_free(cl);
    gni_yamux_free(sv);
}

GN_TEST(stream_open_timeout)
{
    gn_mux_config c = cfg0();
    c.stream_open_timeout = 5 * GN_S;
    gni_yamux *cl;
    CHECK_OK(gni_yamux_new(true, &c, 0, &cl));
    uint32_t id;
    CHECK_OK(gni_yamux_open(cl, 1 * GN_S, &id));
    CHECK_EQ(gni_yamux_next_deadline(cl), 6 * GN_S);
    uint8_t buf[64], want[12];
    CHECK_EQ(drain_to(cl, buf, sizeof(buf), GN_S), 12);
    CHECK_OK(gni_yamux_on_expiry(cl, 6 * GN_S));
    evlog *log = calloc(1, sizeof(*log));
    collect(cl, log);
    CHECK_EQ(find(log, GNI_YAMUX_EV_STREAM_RESET, id)->err, GN_ETIMEDOUT);
    CHECK_EQ(drain_to(cl, buf, sizeof(buf), 6 * GN_S), 12);
    CHECK_EQ(gn_test_unhex("00 01 0008 00000001 00000000", want, sizeof(want)), 12);
    CHECK_MEM(buf, want, 12);
    CHECK_EQ(gni_yamux_next_deadline(cl), GN_TIME_INFINITY);
    free(log);
    gni_yamux_free(cl);
}

/* ---- protocol violations ---------------------------------------------- */

typedef struct violation {
    const char *name;
    bool client; /* role of the session under test */
    const char *hex;
    int err;
} violation;

static const violation violations[] = {
    {"bad version", false, "01 01 0001 00000001 00000000", GN_EVERSION},
    {"unknown type", false, "00 04 0000 00000000 00000000", GN_EBADFRAME},
    {"unknown flag bit", false, "00 01 0011 00000001 00000000", GN_EBADFRAME},
    {"SYN+ACK", false, "00 01 0003 00000001 00000000", GN_EBADFRAME},
    {"SYN+RST", false, "00 00 0009 00000001 00000000", GN_EBADFRAME},
    {"data on stream 0", false, "00 00 0000 00000000 00000000", GN_EBADFRAME},
    {"ping on a stream", false, "00 02 0001 00000001 00000000", GN_EBADFRAME},
    {"ping without flags", false, "00 02 0000 00000000 00000000", GN_EBADFRAME},
    {"ping SYN+ACK", false, "00 02 0003 00000000 00000000", GN_EBADFRAME},
    {"go away on a stream", false, "00 03 0000 00000001 00000000", GN_EBADFRAME},
    {"go away with flags", false, "00 03 0001 00000000 00000000", GN_EBADFRAME},
    {"server gets even SYN", false, "00 01 0001 00000002 00000000", GN_EPROTO},
    {"client gets odd SYN", true, "00 01 0001 00000001 00000000", GN_EPROTO},
    {"reused stream id", false,
     "00 01 0001 00000003 00000000 00 01 0001 00000003 00000000", GN_EPROTO},
    {"lower stream id", false,
     "00 01 0001 00000005 00000000 00 01 0001 00000003 00000000", GN_EPROTO},
    {"data on never-opened stream", false, "00 00 0000 00000007 00000001 ff", GN_EPROTO},
    {"update on our never-opened id", false, "00 01 0000 00000004 00000000", GN_EPROTO},
    {"ACK on an inbound stream", false,
     "00 01 0001 00000001 00000000 00 01 0002 00000001 00000000", GN_EPROTO},
    {"data after FIN", false,
     "00 01 0005 00000001 00000000 00 00 0000 00000001 00000001 aa", GN_EPROTO},
    {"data beyond the window", false,
     "00 01 0001 00000001 00000000 00 00 0000 00000001 00040001", GN_EWINDOW},
    {"window overflow", false, "00 01 0001 00000001 FFFFFFFF", GN_EWINDOW},
};

GN_TEST(protocol_violations)
{
    for (size_t i = 0; i < GNI_ARRAY_LEN(violations); i++) {
        const violation *v = &violations[i];
        printf("# case: %s\n", v->name);
        gn_mux_config c = cfg0();
        gni_yamux *ys;
        CHECK_OK(gni_yamux_new(v->client, &c, 0, &ys));
        uint8_t in[64];
        long n = gn_test_unhex(v->hex, in, sizeof(in));
        CHECK(n > 0);
        size_t used = 0;
        CHECK_EQ(gni_yamux_feed(ys, in, (size_t)n, &used, 0), v->err);
        CHECK_EQ(gni_yamux_error(ys), v->err);
        /* later input is refused with the same code */
        CHECK_EQ(gni_yamux_feed(ys, in, (size_t)n, &used, 0), v->err);
        CHECK_EQ(used, 0);
        CHECK_EQ(gni_yamux_open(ys, 0, &(uint32_t){0}), GN_ECLOSED);
        /* the drain holds exactly Go Away with "protocol error" */
        uint8_t out[64], want[12];
        CHECK_EQ(drain_to(ys, out, sizeof(out), 0), 12);
        CHECK_EQ(gn_test_unhex("00 03 0000 00000000 00000001", want, sizeof(want)), 12);
        CHECK_MEM(out, want, 12);
        CHECK(!gni_yamux_want_drain(ys));
        gni_yamux_event ev;
        int last = 0, err = 0;
        for (int k = 0; k < 16 && gni_yamux_next_event(ys, &ev) == 1; k++) {
            last = ev.type;
            err = ev.err;
        }
        CHECK_EQ(last, GNI_YAMUX_EV_SESSION_END);
        CHECK_EQ(err, v->err);
        gni_yamux_free(ys);
    }
}

GN_TEST(violation_split_across_feeds)
{
    /* the same window violation fed one byte at a time */
    gn_mux_config c = cfg0();
    gni_yamux *ys;
    CHECK_OK(gni_yamux_new(false, &c, 0, &ys));
    uint8_t in[32];
    long n = gn_test_unhex("00 01 0001 00000001 00000000 00 00 0000 00000001 00040001", in,
                           sizeof(in));
    int rc = 0;
    size_t used;
    for (long i = 0; i < n && rc == 0; i++)
        rc = gni_yamux_feed(ys, in + i, 1, &used, 0);
    CHECK_EQ(rc, GN_EWINDOW);
    gni_yamux_free(ys);
}

/* ---- QoS -------------------------------------------------------------- */

GN_TEST(qos_priority_beats_bulk)
{
    gn_mux_config c = cfg0();
    gni_yamux *cl;
    CHECK_OK(gni_yamux_new(true, &c, 0, &cl));
    uint32_t bulk, hi;
    CHECK_OK(gni_yamux_open(cl, 0, &bulk));
    CHECK_OK(gni_yamux_open(cl, 0, &hi));
    CHECK_OK(gni_yamux_stream_set_priority(cl, hi, 7));
    CHECK_EQ(gni_yamux_stream_set_priority(cl, hi, 8), GN_ERANGE);
    static uint8_t blob[200 * 1024];
    memset(blob, 'B', sizeof(blob));
    CHECK_EQ(gni_yamux_stream_write(cl, bulk, blob, sizeof(blob)), (long)sizeof(blob));
    /* a first drain sends the SYNs and some bulk data */
    static uint8_t buf[40 * 1024];
    frame f[64];
    size_t n = drain_to(cl, buf, sizeof(buf), 0);
    size_t nf = parse_frames(buf, n, f, 64);
    CHECK_EQ(f[0].type, GNI_YAMUX_TYPE_WINDOW_UPDATE);
    CHECK_EQ(f[1].type, GNI_YAMUX_TYPE_WINDOW_UPDATE);
    for (size_t i = 2; i < nf; i++) {
        CHECK_EQ(f[i].id, bulk);
        CHECK(f[i].len <= GNI_YAMUX_CHUNK_MAX);
    }
    /* now the small high-priority message jumps the bulk backlog */
    CHECK_EQ(gni_yamux_stream_write(cl, hi, (const uint8_t *)"urgent", 6), 6);
    n = drain_to(cl, buf, sizeof(buf), 0);
    nf = parse_frames(buf, n, f, 64);
    CHECK(nf >= 2);
    CHECK_EQ(f[0].type, GNI_YAMUX_TYPE_DATA);
    CHECK_EQ(f[0].id, hi);
    CHECK_EQ(f[0].len, 6);
    CHECK_MEM(buf + 12, "urgent", 6);
    CHECK_EQ(f[1].id, bulk);
    gni_yamux_stats st;
    gni_yamux_get_stats(cl, &st);
    CHECK(st.send_queued > 0); /* bulk data still waiting */
    gni_yamux_free(cl);
}

GN_TEST(qos_round_robin_and_control_first)
{
    gn_mux_config c = cfg0();
    gni_yamux *cl;
    CHECK_OK(gni_yamux_new(true, &c, 0, &cl));
    uint32_t a, b;
    CHECK_OK(gni_yamux_open(cl, 0, &a));
    CHECK_OK(gni_yamux_open(cl, 0, &b));
    static uint8_t blob[64 * 1024];
    memset(blob, 'x', sizeof(blob));
    CHECK_EQ(gni_yamux_stream_write(cl, a, blob, sizeof(blob)), (long)sizeof(blob));
    CHECK_EQ(gni_yamux_stream_write(cl, b, blob, sizeof(blob)), (long)sizeof(blob));
    CHECK_OK(gni_yamux_ping(cl, 0));
    static uint8_t buf[256 * 1024];
    frame f[64];
    size_t n = drain_to(cl, buf, sizeof(buf), 0);
    size_t nf = parse_frames(buf, n, f, 64);
    CHECK_EQ(nf, 3 + 8);
    CHECK_EQ(f[0].type, GNI_YAMUX_TYPE_PING);
    /* same class: 16 KiB chunks alternate between the two streams */
    for (size_t i = 3; i < nf; i++) {
        CHECK_EQ(f[i].len, GNI_YAMUX_CHUNK_MAX);
        CHECK_EQ(f[i].id, (i % 2 == 1) ? a : b);
    }
    /* a tiny buffer still makes progress (data shrinks to fit) */
    CHECK_EQ(gni_yamux_stream_write(cl, a, blob, 100), 100);
    CHECK_EQ(drain_to(cl, buf, 13, 0), 13);
    gn_buf out;
    gn_buf_init(&out, buf, 12);
    CHECK_EQ(gni_yamux_drain(cl, &out, 0), GN_ENOSPC);
    gni_yamux_free(cl);
}

GN_TEST(bad_config)
{
    gn_mux_config c = cfg0();
    c.version = 99;
    gni_yamux *ys = NULL;
    CHECK_EQ(gni_yamux_new(true, &c, 0, &ys), GN_EINVAL);
    CHECK(ys == NULL);
    CHECK_OK(gni_yamux_new(true, NULL, 0, &ys));
    CHECK_EQ(gni_yamux_next_deadline(ys), 30 * GN_S); /* default keepalive */
    gni_yamux_free(ys);
}

/* ---- session send budget ---------------------------------------------- */

/*
 * Issue 10 item 4: many streams write while the peer neither reads nor
 * grants window. Every stream's own bounds (256 KiB window, 1 MiB queue)
 * would let 32 streams queue 8 MiB; the session budget keeps the total at
 * session_send_max, the streams past it get nothing (a short write, the
 * core's push-back), and once the peer reads and grants window every
 * stream hears WRITABLE and all its bytes arrive intact.
 */
#define SB_STREAMS 32u
#define SB_EACH (320u * KIB) /* more than a window: every stream is cut short */
#define SB_BUDGET (1000u * KIB) /* not a multiple of the window */

static uint8_t sb_byte(unsigned s, size_t i)
{
    return (uint8_t)((s * 31u + i * 7u) % 251u);
}

typedef struct sb_writer {
    size_t off;      /* bytes the core took */
    bool writable;   /* no short write since the last WRITABLE */
    unsigned cut;    /* short writes */
    unsigned wakeups; /* WRITABLE events */
} sb_writer;

/* Writes stream @s's next bytes in 64 KiB pieces until the core takes less. */
static void sb_write(gni_yamux *ys, uint32_t id, unsigned s, sb_writer *w)
{
    static uint8_t piece[64 * KIB];
    for (int guard = 0; guard < 64 && w->writable && w->off < SB_EACH; guard++) {
        size_t n = GNI_MIN((size_t)sizeof(piece), SB_EACH - w->off);
        for (size_t k = 0; k < n; k++)
            piece[k] = sb_byte(s, w->off + k);
        long got = gni_yamux_stream_write(ys, id, piece, n);
        CHECK(got >= 0);
        w->off += (size_t)got;
        if ((size_t)got < n) {
            w->writable = false;
            w->cut++;
        }
    }
}

static size_t sb_queued(const gni_yamux *ys)
{
    gni_yamux_stats st;
    gni_yamux_get_stats(ys, &st);
    return st.send_queued;
}

GN_TEST(session_send_budget_many_streams)
{
    gn_mux_config c = cfg0();
    c.session_send_max = SB_BUDGET;
    gni_yamux *cl, *sv;
    mkpair(&cl, &sv, &c, &c);
    uint32_t ids[SB_STREAMS];
    sb_writer w[SB_STREAMS];
    size_t got[SB_STREAMS];
    memset(w, 0, sizeof(w));
    memset(got, 0, sizeof(got));
    for (unsigned s = 0; s < SB_STREAMS; s++) {
        CHECK_OK(gni_yamux_open(cl, 0, &ids[s]));
        CHECK_EQ(ids[s], 2 * s + 1);
        w[s].writable = true;
    }
    /* phase 1: nothing leaves the client (the peer reads nothing) */
    size_t peak = 0;
    for (int round = 0; round < 3; round++) {
        for (unsigned s = 0; s < SB_STREAMS; s++) {
            w[s].writable = true; /* writers that ignore push-back get nothing more */
            sb_write(cl, ids[s], s, &w[s]);
            peak = GNI_MAX(peak, sb_queued(cl));
        }
    }
    size_t total = 0, starved = 0;
    for (unsigned s = 0; s < SB_STREAMS; s++) {
        total += w[s].off;
        starved += w[s].off == 0;
        CHECK(w[s].cut > 0);
        CHECK_EQ(gni_yamux_stream_write_space(cl, ids[s]), 0);
    }
    CHECK_EQ(sb_queued(cl), total);
    CHECK(peak <= SB_BUDGET);
    CHECK_EQ(total, SB_BUDGET); /* the budget is used up to the byte */
    CHECK(starved >= SB_STREAMS - 4);
    gni_yamux_event ev;
    size_t early = 0;
    while (gni_yamux_next_event(cl, &ev) == 1)
        early += ev.type == GNI_YAMUX_EV_STREAM_WRITABLE;
    CHECK_EQ(early, 0); /* nothing drained: no room, no WRITABLE */
    CHECK_EQ(gni_yamux_error(cl), 0);

    /* phase 2: the peer accepts, reads everything and grants window */
    static uint8_t rd[64 * KIB];
    bool done = false;
    for (int round = 0; round < 10000 && !done; round++) {
        exchange(cl, sv, 0);
        while (gni_yamux_next_event(sv, &ev) == 1) {
            CHECK(ev.type == GNI_YAMUX_EV_STREAM_OPENED || ev.type == GNI_YAMUX_EV_STREAM_DATA);
            if (ev.type == GNI_YAMUX_EV_STREAM_OPENED)
                CHECK_OK(gni_yamux_accept(sv, ev.stream_id));
        }
        for (unsigned s = 0; s < SB_STREAMS; s++) {
            long r;
            while ((r = gni_yamux_stream_read(sv, ids[s], rd, sizeof(rd))) > 0) {
                for (long k = 0; k < r; k++)
                    CHECK(rd[k] == sb_byte(s, got[s] + (size_t)k));
                got[s] += (size_t)r;
            }
            CHECK(r == 0 || r == GN_ENOTFOUND);
        }
        while (gni_yamux_next_event(cl, &ev) == 1) {
            CHECK_EQ(ev.type, GNI_YAMUX_EV_STREAM_WRITABLE);
            unsigned s = (ev.stream_id - 1) / 2;
            CHECK(s < SB_STREAMS);
            w[s].writable = true;
            w[s].wakeups++;
        }
        for (unsigned s = 0; s < SB_STREAMS; s++) {
            sb_write(cl, ids[s], s, &w[s]);
            CHECK(sb_queued(cl) <= SB_BUDGET);
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
    CHECK_EQ(sb_queued(cl), 0);
    CHECK_EQ(gni_yamux_error(cl), 0);
    CHECK_EQ(gni_yamux_error(sv), 0);
    gni_yamux_free(cl);
    gni_yamux_free(sv);
}

/*
 * Fairness: a stream that writes whenever it can (without waiting for
 * WRITABLE) cannot overtake streams that wait for the budget, and a stream
 * waiting for it that half-closes or is reset passes its turn on.
 */
GN_TEST(session_send_budget_first_come)
{
    gn_mux_config c = cfg0();
    c.session_send_max = 100 * KIB;
    gni_yamux *cl;
    CHECK_OK(gni_yamux_new(true, &c, 0, &cl));
    uint32_t a, b, d, e;
    CHECK_OK(gni_yamux_open(cl, 0, &a));
    CHECK_OK(gni_yamux_open(cl, 0, &b));
    CHECK_OK(gni_yamux_open(cl, 0, &d));
    CHECK_OK(gni_yamux_open(cl, 0, &e));
    static uint8_t blob[128 * KIB];
    memset(blob, 'x', sizeof(blob));
    CHECK_EQ(gni_yamux_stream_write(cl, a, blob, 100 * KIB), 100 * KIB); /* fills it */
    CHECK_EQ(gni_yamux_stream_write(cl, b, blob, 10), 0); /* b waits first */
    CHECK_EQ(gni_yamux_stream_write(cl, d, blob, 10), 0); /* then d */
    CHECK_EQ(gni_yamux_stream_write(cl, e, blob, 10), 0); /* then e */
    static uint8_t buf[64 * KIB];
    /* 20 KiB drain out (16 KiB chunk + part): b's turn, and only b's */
    CHECK(drain_to(cl, buf, 20 * KIB, 0) > 16 * KIB);
    size_t room = 100 * KIB - sb_queued(cl);
    CHECK(room > 0);
    gni_yamux_event ev;
    CHECK_EQ(gni_yamux_next_event(cl, &ev), 1);
    CHECK_EQ(ev.type, GNI_YAMUX_EV_STREAM_WRITABLE);
    CHECK_EQ(ev.stream_id, b);
    CHECK_EQ(gni_yamux_next_event(cl, &ev), 0);
    /* the greedy writer (it queues last) and the later waiters get nothing before b */
    CHECK_EQ(gni_yamux_stream_write(cl, a, blob, 1), 0);
    CHECK_EQ(gni_yamux_stream_write(cl, e, blob, 1), 0);
    CHECK_EQ(gni_yamux_stream_write_space(cl, d), 0);
    CHECK_EQ(gni_yamux_stream_write_space(cl, b), room);
    /* b takes 10 bytes and leaves; d is next (it waited before e and a) */
    CHECK_EQ(gni_yamux_stream_write(cl, b, blob, 10), 10);
    CHECK_EQ(gni_yamux_next_event(cl, &ev), 1);
    CHECK_EQ(ev.stream_id, d);
    CHECK_EQ(ev.type, GNI_YAMUX_EV_STREAM_WRITABLE);
    /* d half-closes instead of writing: its turn passes to e */
    CHECK_OK(gni_yamux_stream_shutdown(cl, d));
    CHECK_EQ(gni_yamux_next_event(cl, &ev), 1);
    CHECK_EQ(ev.stream_id, e);
    /* e is reset: the greedy a (which queued behind e) gets its turn */
    CHECK_OK(gni_yamux_stream_reset(cl, e));
    CHECK_EQ(gni_yamux_next_event(cl, &ev), 1);
    CHECK_EQ(ev.stream_id, a);
    CHECK_EQ(ev.type, GNI_YAMUX_EV_STREAM_WRITABLE);
    CHECK_EQ(gni_yamux_next_event(cl, &ev), 0);
    CHECK_EQ(gni_yamux_stream_write(cl, a, blob, 128 * KIB), (long)room - 10);
    CHECK_EQ(sb_queued(cl), 100 * KIB);
    gni_yamux_free(cl);
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
    /* SYN stream 1 + 100 data bytes, SYN stream 3 */
    size_t n = 0;
    gni_yamux_encode_header(in, GNI_YAMUX_TYPE_DATA, GNI_YAMUX_FLAG_SYN, 1, 100);
    memset(in + 12, 'd', 100);
    gni_yamux_encode_header(in + 112, GNI_YAMUX_TYPE_WINDOW_UPDATE, GNI_YAMUX_FLAG_SYN, 3, 0);
    n = 124;
    bool completed = false;
    for (long k = 0; k < 200 && !completed; k++) {
        gn_set_allocator(&fm);
        g_alloc_left = k;
        gni_yamux *ys = NULL;
        int rc = gni_yamux_new(false, NULL, 0, &ys);
        if (rc < 0) {
            gn_set_allocator(NULL);
            CHECK_EQ(rc, GN_ENOMEM);
            CHECK(ys == NULL);
            continue;
        }
        size_t used;
        rc = gni_yamux_feed(ys, in, n, &used, 0);
        CHECK(rc == 0 || rc == GN_ENOMEM);
        uint32_t id;
        int rc2 = gni_yamux_open(ys, 0, &id);
        CHECK(rc2 == 0 || rc2 == GN_ENOMEM || rc2 == GN_ECLOSED);
        long w = rc2 == 0 ? gni_yamux_stream_write(ys, id, in, 50) : 0;
        CHECK(w == 50 || w == GN_ENOMEM || rc2 != 0);
        completed = rc == 0 && rc2 == 0 && w == 50;
        gni_yamux_free(ys);
        gn_set_allocator(NULL);
    }
    CHECK(completed);
}

/* Refusals under allocation failure k, for every k: GN_ENOMEM or one RST per refused stream. */
GN_TEST(refusal_allocation_failure_every_k)
{
    static const gn_allocator fm = {fm_malloc, fm_realloc, fm_free, NULL};
    gn_mux_config c = cfg0();
    c.max_pending_streams = 1;
    /* SYN 1 (taken), SYN 3, 5, 7 (refused), the peer's RST for 5 */
    uint8_t in[60];
    size_t n = syn_burst(in, 1, 4);
    gni_yamux_encode_header(in + n, GNI_YAMUX_TYPE_WINDOW_UPDATE, GNI_YAMUX_FLAG_RST, 5, 0);
    n += 12;
    uint8_t out[256];
    frame f[8];
    bool completed = false;
    for (long k = 0; k < 200 && !completed; k++) {
        gn_set_allocator(&fm);
        g_alloc_left = k;
        gni_yamux *ys = NULL;
        int rc = gni_yamux_new(false, &c, 0, &ys);
        if (rc < 0) {
            gn_set_allocator(NULL);
            CHECK_EQ(rc, GN_ENOMEM);
            continue;
        }
        size_t used;
        rc = gni_yamux_feed(ys, in, n, &used, 0);
        CHECK(rc == 0 || rc == GN_ENOMEM);
        if (rc == 0) {
            size_t on = drain_to(ys, out, sizeof(out), 0);
            CHECK_EQ(parse_frames(out, on, f, 8), 2);
            CHECK(f[0].id == 3 && f[0].flags == GNI_YAMUX_FLAG_RST);
            CHECK(f[1].id == 7 && f[1].flags == GNI_YAMUX_FLAG_RST);
            completed = true;
        }
        gni_yamux_free(ys);
        gn_set_allocator(NULL);
    }
    CHECK(completed);
}


/* ---- resource accounting (gni_yamux_set_rcmgr) ---- */

/* A manager whose stream scope allows @stream_mem bytes, and an inbound
 * connection span with its peer set. */
static gn_rcmgr *rc_setup(uint64_t stream_mem, gn_rcmgr_conn **conn)
{
    gn_rcmgr_limits l;
    gn_rcmgr_limits_default(&l);
    l.stream.memory = stream_mem;
    gn_rcmgr *rm = NULL;
    CHECK_OK(gn_rcmgr_new(&l, &rm));
    CHECK_OK(gn_rcmgr_open_conn(rm, GN_RCMGR_INBOUND, false, NULL, 0, conn));
    gn_peer_id p;
    memset(&p, 0, sizeof p);
    p.len = 34;
    p.bytes[1] = 32;
    p.bytes[3] = 7;
    CHECK_OK(gn_rcmgr_conn_set_peer(*conn, &p));
    return rm;
}

static gn_rcmgr_usage rc_system(const gn_rcmgr *rm)
{
    gn_rcmgr_usage u;
    CHECK_OK(gn_rcmgr_stat(rm, GN_RCMGR_SCOPE_SYSTEM, NULL, 0, &u));
    return u;
}

/* A manager whose connection scope allows @conn_mem bytes (the session's
 * send budget and received data are reserved there). */
static gn_rcmgr *rc_setup_conn(uint64_t conn_mem, gn_rcmgr_conn **conn)
{
    gn_rcmgr *rm = rc_setup(16384 * KIB, conn);
    gn_rcmgr_limits l;
    gn_rcmgr_get_limits(rm, &l);
    l.conn.memory = conn_mem;
    CHECK_OK(gn_rcmgr_set_limits(rm, &l));
    return rm;
}

GN_TEST(rcmgr_window_growth_needs_room)
{
    /* 512 KiB on the connection: a growth to 1 MiB (768 KiB more, checked
     * at GN_RCMGR_PRIO_HIGH, ~80 %) has no room */
    gn_rcmgr_conn *conn;
    gn_rcmgr *rm = rc_setup_conn(512 * KIB, &conn);
    gn_mux_config c = cfg0();
    c.initial_window = 1024 * KIB;
    gni_yamux *cl, *sv;
    mkpair(&cl, &sv, &c, &c);
    CHECK_OK(gni_yamux_set_rcmgr(sv, rm, conn));
    CHECK_EQ(gni_yamux_set_rcmgr(sv, rm, conn), GN_ESTATE);
    CHECK_EQ(rc_system(rm).memory, 64 * KIB); /* the first send budget step */

    /* the server's stream holds no memory; the growth to 1 MiB is withheld */
    uint32_t id;
    CHECK_OK(gni_yamux_open(cl, 0, &id));
    exchange(cl, sv, 0);
    CHECK_OK(gni_yamux_accept(sv, id));
    exchange(cl, sv, 0);
    gni_yamux_stream_info info;
    CHECK_OK(gni_yamux_stream_get_info(sv, id, &info));
    CHECK_EQ(info.recv_max, 256 * KIB);
    CHECK_EQ(info.recv_window, 256 * KIB);
    CHECK_EQ(gni_yamux_stream_write_space(cl, id), 256 * KIB);
    gni_yamux_stats st;
    gni_yamux_get_stats(sv, &st);
    CHECK_EQ(st.windows_withheld, 1);
    CHECK_EQ(st.rc_refused, 1);
    gn_rcmgr_usage u = rc_system(rm);
    CHECK_EQ(u.memory, 64 * KIB); /* the stream's window is not reserved */
    CHECK_EQ(u.streams_in, 1);
    CHECK_EQ(gni_yamux_stream_set_window(sv, id, 1024 * KIB), GN_ERESOURCE);
    CHECK_OK(gni_yamux_stream_get_info(sv, id, &info));
    CHECK_EQ(info.recv_max, 256 * KIB);

    /* the peer fills the window it was granted: every byte is kept and
     * reserved as it arrives (above the MEDIUM share, so within the
     * ALWAYS share: the session is under pressure) */
    static uint8_t blob[256 * 1024];
    memset(blob, 'w', sizeof blob);
    CHECK_EQ(gni_yamux_stream_write(cl, id, blob, sizeof blob), (long)sizeof blob);
    CHECK_EQ(gni_yamux_stream_write(cl, id, blob, 1), 0); /* no more credit */
    exchange(cl, sv, 0);
    CHECK_OK(gni_yamux_stream_get_info(sv, id, &info));
    CHECK_EQ(info.recv_buffered, sizeof blob);
    CHECK_EQ(rc_system(rm).memory, 64 * KIB + 256 * KIB);
    CHECK_EQ(gni_yamux_stream_consume(sv, id, sizeof blob), 0);
    CHECK_EQ(rc_system(rm).memory, 64 * KIB + 64 * KIB); /* one receive step kept */
    exchange(cl, sv, 0);
    CHECK_EQ(gni_yamux_stream_write_space(cl, id), 256 * KIB); /* the same window again */

    /* with room, the same growth is granted, and still nothing is held for it */
    gn_rcmgr_limits l;
    gn_rcmgr_get_limits(rm, &l);
    l.conn.memory = 4096 * KIB; /* growth is checked at GN_RCMGR_PRIO_LOW: ~40 % */
    CHECK_OK(gn_rcmgr_set_limits(rm, &l));
    CHECK_OK(gni_yamux_stream_set_window(sv, id, 1024 * KIB));
    exchange(cl, sv, 0);
    CHECK_EQ(gni_yamux_stream_write_space(cl, id), 1024 * KIB);
    CHECK_EQ(rc_system(rm).memory, 64 * KIB + 64 * KIB);

    /* closed both ways and released: the stream span is gone */
    CHECK_OK(gni_yamux_stream_shutdown(cl, id));
    CHECK_OK(gni_yamux_stream_shutdown(sv, id));
    exchange(cl, sv, 0);
    CHECK_OK(gni_yamux_stream_release(sv, id));
    CHECK_OK(gni_yamux_stream_release(cl, id));
    exchange(cl, sv, 0);
    u = rc_system(rm);
    CHECK_EQ(u.memory, 64 * KIB + 64 * KIB);
    CHECK_EQ(u.streams_in + u.streams_out, 0);
    CHECK_OK(gni_yamux_set_rcmgr(sv, NULL, NULL));
    CHECK_EQ(rc_system(rm).memory, 0);
    gni_yamux_free(cl);
    gni_yamux_free(sv);
    gn_rcmgr_conn_done(conn);
    CHECK_EQ(rc_system(rm).memory, 0);
    char why[256];
    CHECK_OK(gni_rcmgr_check(rm, true, why, sizeof why));
    gn_rcmgr_free(rm);
}

/*
 * 2,000 idle streams at the default limits (8 peers, 250 inbound streams
 * each, moved to their protocol as after negotiation: the per-connection,
 * per-peer and transient stream counts are unchanged) are all accepted:
 * they hold no memory. When each stream reserved its 256 KiB
 * window, the 256 MiB system limit refused them from about the 1,000th.
 */
GN_TEST(rcmgr_idle_streams_hold_no_memory)
{
    enum { SESSIONS = 8, PER = 250 };
    gn_rcmgr *rm = NULL;
    CHECK_OK(gn_rcmgr_new(NULL, &rm));
    gn_rcmgr_conn *conn[SESSIONS];
    gni_yamux *cl[SESSIONS], *sv[SESSIONS];
    gn_mux_config c = cfg0();
    for (int i = 0; i < SESSIONS; i++) {
        CHECK_OK(gn_rcmgr_open_conn(rm, GN_RCMGR_INBOUND, false, NULL, 0, &conn[i]));
        gn_peer_id p;
        memset(&p, 0, sizeof p);
        p.len = 34;
        p.bytes[1] = 32;
        p.bytes[3] = (uint8_t)(100 + i);
        CHECK_OK(gn_rcmgr_conn_set_peer(conn[i], &p));
        mkpair(&cl[i], &sv[i], &c, &c);
        CHECK_OK(gni_yamux_set_rcmgr(sv[i], rm, conn[i]));
        uint32_t id;
        for (int k = 0; k < PER; k++)
            CHECK_OK(gni_yamux_open(cl[i], 0, &id));
        exchange(cl[i], sv[i], 0);
        evlog *log = calloc(1, sizeof *log);
        CHECK(log != NULL);
        collect(sv[i], log);
        CHECK_EQ(count(log, GNI_YAMUX_EV_STREAM_OPENED), PER);
        CHECK_EQ(count(log, GNI_YAMUX_EV_STREAM_REFUSED), 0);
        for (size_t e = 0; e < log->n; e++) {
            if (log->ev[e].type != GNI_YAMUX_EV_STREAM_OPENED)
                continue;
            uint32_t sid = log->ev[e].stream_id;
            CHECK_OK(gni_yamux_accept(sv[i], sid));
            /* negotiated, as multistream-select moves it: out of the transient scope */
            gn_rcmgr_stream *rs = gni_yamux_stream_span(sv[i], sid);
            CHECK(rs != NULL);
            CHECK_OK(gn_rcmgr_stream_set_protocol(rs, "/golem/msg/1.0.0", 16));
        }
        free(log);
        exchange(cl[i], sv[i], 0);
    }
    gn_rcmgr_usage u = rc_system(rm);
    CHECK_EQ(u.streams_in, SESSIONS * PER);
    CHECK_EQ(u.memory, SESSIONS * 64 * KIB); /* the send budgets' first steps only */
    CHECK_EQ(gn_rcmgr_refusal_count(rm, GN_RCMGR_SCOPE_SYSTEM), 0);
    for (int i = 0; i < SESSIONS; i++) {
        gni_yamux_free(sv[i]);
        gni_yamux_free(cl[i]);
        gn_rcmgr_conn_done(conn[i]);
    }
    u = rc_system(rm);
    CHECK_EQ(u.memory, 0);
    CHECK_EQ(u.streams_in, 0);
    char why[256];
    CHECK_OK(gni_rcmgr_check(rm, true, why, sizeof why));
    gn_rcmgr_free(rm);
}

/*
 * A peer fills the implicit windows of 8 streams (2 MiB) against a 1 MiB
 * connection limit while the application reads nothing. Every stream
 * either keeps every byte sent on it or is reset with GN_ERESOURCE (the
 * sender sees the reset): nothing is lost silently. Past the MEDIUM share
 * Window Updates are held back (back-pressure) until memory is given back.
 */
GN_TEST(rcmgr_flood_reserved_back_pressured_or_reset)
{
    enum { N = 8 };
    gn_rcmgr_conn *conn;
    gn_rcmgr *rm = rc_setup_conn(1024 * KIB, &conn);
    gn_mux_config c = cfg0();
    gni_yamux *cl, *sv;
    mkpair(&cl, &sv, &c, &c);
    CHECK_OK(gni_yamux_set_rcmgr(sv, rm, conn));
    uint32_t id[N];
    for (int i = 0; i < N; i++)
        CHECK_OK(gni_yamux_open(cl, 0, &id[i]));
    exchange(cl, sv, 0);
    for (int i = 0; i < N; i++)
        CHECK_OK(gni_yamux_accept(sv, id[i]));
    exchange(cl, sv, 0);
    static uint8_t blob[256 * 1024];
    memset(blob, 'f', sizeof blob);
    for (int i = 0; i < N; i++)
        CHECK_EQ(gni_yamux_stream_write(cl, id[i], blob, sizeof blob), (long)sizeof blob);
    exchange(cl, sv, 0);
    evlog sl = {0}, cll = {0};
    collect(sv, &sl);
    collect(cl, &cll);
    int kept = 0, reset = 0, kept_ids[N];
    for (int i = 0; i < N; i++) {
        gni_yamux_stream_info info;
        const gni_yamux_event *r = find(&sl, GNI_YAMUX_EV_STREAM_RESET, id[i]);
        if (r) {
            CHECK_EQ(r->err, GN_ERESOURCE);
            CHECK(find(&cll, GNI_YAMUX_EV_STREAM_RESET, id[i]) != NULL);
            reset++;
        } else {
            CHECK_OK(gni_yamux_stream_get_info(sv, id[i], &info));
            CHECK_EQ(info.recv_buffered, sizeof blob);
            kept_ids[kept++] = (int)id[i];
        }
    }
    CHECK(kept >= 2);
    CHECK(reset >= 1);
    CHECK_EQ(kept + reset, N);
    gni_yamux_stats st;
    gni_yamux_get_stats(sv, &st);
    CHECK_EQ(st.rc_resets, (uint64_t)reset);
    CHECK(rc_system(rm).memory <= 1024 * KIB);
    gn_rcmgr_usage cu;
    gn_rcmgr_span_stat(gn_rcmgr_conn_span(conn), &cu);
    CHECK_EQ(cu.memory, rc_system(rm).memory); /* all of it on the connection */

    /* the first stream read: its Window Update is held back while the
     * others still hold memory above the MEDIUM share */
    CHECK_EQ(gni_yamux_stream_consume(sv, (uint32_t)kept_ids[0], sizeof blob), 0);
    exchange(cl, sv, 0);
    gni_yamux_get_stats(sv, &st);
    CHECK(st.updates_withheld >= 1);
    CHECK_EQ(gni_yamux_stream_write_space(cl, (uint32_t)kept_ids[0]), 0);
    /* the rest read: room again, every held Window Update goes out */
    for (int i = 1; i < kept; i++)
        CHECK_EQ(gni_yamux_stream_consume(sv, (uint32_t)kept_ids[i], sizeof blob), 0);
    exchange(cl, sv, 0);
    for (int i = 0; i < kept; i++)
        CHECK_EQ(gni_yamux_stream_write_space(cl, (uint32_t)kept_ids[i]), 256 * KIB);
    CHECK_EQ(rc_system(rm).memory, 64 * KIB + 64 * KIB);

    gni_yamux_free(sv);
    gni_yamux_free(cl);
    gn_rcmgr_usage u = rc_system(rm);
    CHECK_EQ(u.memory, 0);
    CHECK_EQ(u.streams_in + u.streams_out, 0);
    gn_rcmgr_conn_done(conn);
    char why[256];
    CHECK_OK(gni_rcmgr_check(rm, true, why, sizeof why));
    gn_rcmgr_free(rm);
}

GN_TEST(rcmgr_streams_refused_and_budget)
{
    gn_rcmgr_conn *conn;
    gn_rcmgr *rm = rc_setup(16384 * KIB, &conn);
    gn_rcmgr_limits l;
    gn_rcmgr_get_limits(rm, &l);
    l.conn.streams_in = 2;
    l.conn.streams_out = 1;
    CHECK_OK(gn_rcmgr_set_limits(rm, &l));
    gn_mux_config c = cfg0();
    gni_yamux *cl, *sv;
    mkpair(&cl, &sv, &c, &c);
    CHECK_OK(gni_yamux_set_rcmgr(sv, rm, conn));

    /* the third inbound stream is refused with a RST; the session lives */
    uint32_t id[3];
    for (int i = 0; i < 3; i++)
        CHECK_OK(gni_yamux_open(cl, 0, &id[i]));
    exchange(cl, sv, 0);
    evlog sl = {0}, cll = {0};
    collect(sv, &sl);
    collect(cl, &cll);
    CHECK_EQ(count(&sl, GNI_YAMUX_EV_STREAM_OPENED), 2);
    const gni_yamux_event *ref = find(&sl, GNI_YAMUX_EV_STREAM_REFUSED, id[2]);
    CHECK(ref != NULL);
    CHECK_EQ(ref->err, GN_ERESOURCE);
    CHECK(find(&cll, GNI_YAMUX_EV_STREAM_RESET, id[2]) != NULL);
    gni_yamux_stats st;
    gni_yamux_get_stats(sv, &st);
    CHECK_EQ(st.streams_refused, 1);
    CHECK_EQ(st.rc_refused, 1);
    CHECK_EQ(gni_yamux_error(sv), 0);
    gn_rcmgr_usage u = rc_system(rm);
    CHECK_EQ(u.streams_in, 2);
    CHECK_EQ(u.memory, 64 * KIB); /* streams without data hold no memory */
    CHECK(gn_rcmgr_refusal_count(rm, GN_RCMGR_SCOPE_CONN) >= 1);

    /* the accepted ones carry data both ways */
    CHECK_OK(gni_yamux_accept(sv, id[0]));
    CHECK_EQ(gni_yamux_stream_write(cl, id[0], (const uint8_t *)"ping", 4), 4);
    exchange(cl, sv, 0);
    CHECK_EQ(rc_system(rm).memory, 64 * KIB + 64 * KIB); /* a receive step for 4 bytes */
    uint8_t buf[8];
    CHECK_EQ(gni_yamux_stream_read(sv, id[0], buf, sizeof buf), 4);
    CHECK_MEM(buf, "ping", 4);

    /* outbound: one allowed, the next open fails with GN_ERESOURCE */
    uint32_t o1, o2;
    CHECK_OK(gni_yamux_open(sv, 0, &o1));
    CHECK_EQ(gni_yamux_open(sv, 0, &o2), GN_ERESOURCE);
    CHECK_EQ(rc_system(rm).streams_out, 1);

    /* the send budget is reserved as writers fill it and given back as it drains */
    static uint8_t blob[200 * 1024];
    memset(blob, 's', sizeof blob);
    CHECK_EQ(gni_yamux_stream_write(sv, o1, blob, sizeof blob), (long)sizeof blob);
    CHECK_EQ(gni_yamux_send_queued(sv), sizeof blob);
    CHECK_EQ(rc_system(rm).memory, 64 * KIB + sizeof blob); /* grown from 64 KiB */
    exchange(cl, sv, 0);
    CHECK_EQ(gni_yamux_send_queued(sv), 0);
    CHECK_EQ(rc_system(rm).memory, 64 * KIB + 64 * KIB);
    CHECK_OK(gni_yamux_stream_consume(cl, o1, sizeof blob));
    exchange(cl, sv, 0);

    /* a refused budget step pushes the writer back; nothing is lost */
    gn_rcmgr_get_limits(rm, &l);
    l.conn.memory = 64 * KIB + 64 * KIB + 16 * KIB;
    CHECK_OK(gn_rcmgr_set_limits(rm, &l));
    CHECK_EQ(gni_yamux_stream_write(sv, o1, blob, sizeof blob), (long)(64 * KIB));
    gni_yamux_get_stats(sv, &st);
    CHECK(st.rc_refused >= 2); /* the stream, and the budget step */
    exchange(cl, sv, 0);
    evlog sl2 = {0};
    collect(sv, &sl2);
    CHECK(find(&sl2, GNI_YAMUX_EV_STREAM_WRITABLE, o1) != NULL);
    CHECK_EQ(gni_yamux_stream_write(sv, o1, blob + 64 * KIB, sizeof blob - 64 * KIB),
             (long)(64 * KIB));

    gni_yamux_free(sv); /* frees the streams and detaches: everything is given back */
    gni_yamux_free(cl);
    u = rc_system(rm);
    CHECK_EQ(u.memory, 0);
    CHECK_EQ(u.streams_in + u.streams_out, 0);
    gn_rcmgr_conn_done(conn);
    gn_rcmgr_free(rm);
}

/* The same with the session accounted: every failure leaves the manager's books balanced. */
GN_TEST(rcmgr_allocation_failure_every_k)
{
    static const gn_allocator fm = {fm_malloc, fm_realloc, fm_free, NULL};
    uint8_t in[128];
    gni_yamux_encode_header(in, GNI_YAMUX_TYPE_DATA, GNI_YAMUX_FLAG_SYN, 1, 100);
    memset(in + 12, 'd', 100);
    gni_yamux_encode_header(in + 112, GNI_YAMUX_TYPE_WINDOW_UPDATE, GNI_YAMUX_FLAG_SYN, 3, 0);
    size_t n = 124;
    gn_rcmgr_conn *conn;
    gn_rcmgr *rm = rc_setup(16384 * KIB, &conn);
    bool completed = false;
    for (long k = 0; k < 200 && !completed; k++) {
        gn_set_allocator(&fm);
        g_alloc_left = k;
        gni_yamux *ys = NULL;
        int rc = gni_yamux_new(false, NULL, 0, &ys);
        if (rc < 0) {
            gn_set_allocator(NULL);
            CHECK_EQ(rc, GN_ENOMEM);
            continue;
        }
        CHECK_OK(gni_yamux_set_rcmgr(ys, rm, conn));
        size_t used;
        rc = gni_yamux_feed(ys, in, n, &used, 0);
        CHECK(rc == 0 || rc == GN_ENOMEM);
        uint32_t id;
        int rc2 = gni_yamux_open(ys, 0, &id);
        CHECK(rc2 == 0 || rc2 == GN_ENOMEM || rc2 == GN_ECLOSED);
        long w = rc2 == 0 ? gni_yamux_stream_write(ys, id, in, 50) : 0;
        CHECK(w == 50 || w == GN_ENOMEM || rc2 != 0);
        completed = rc == 0 && rc2 == 0 && w == 50;
        if (completed) {
            gn_rcmgr_usage u = rc_system(rm);
            CHECK_EQ(u.streams_in, 2);
            CHECK_EQ(u.streams_out, 1);
            CHECK_EQ(u.memory, 64 * KIB + 64 * KIB); /* send step, 100 bytes received */
        }
        gni_yamux_free(ys);
        gn_set_allocator(NULL);
        gn_rcmgr_usage u = rc_system(rm);
        CHECK_EQ(u.memory, 0);
        CHECK_EQ(u.streams_in + u.streams_out, 0);
        char why[256];
        CHECK_OK(gni_rcmgr_check(rm, true, why, sizeof why));
    }
    CHECK(completed);
    gn_rcmgr_conn_done(conn);
    gn_rcmgr_free(rm);
}

GN_TEST_MAIN(GN_T(kat_syn_window_update), GN_T(kat_syn_with_bigger_window),
             GN_T(kat_data_ping_goaway), GN_T(open_accept_data_both_ways),
             GN_T(byte_by_byte_feeding), GN_T(thousand_concurrent_streams),
             GN_T(half_close_both_ways), GN_T(reset_stream),
             GN_T(release_open_stream_sends_rst), GN_T(slow_reader_fast_writer_bounded),
             GN_T(window_growth), GN_T(session_buffer_budget_resets_stream),
             GN_T(inbound_stream_limit), GN_T(pending_accept_limit),
             GN_T(outbound_stream_limit), GN_T(go_away),
             GN_T(burst_of_1000_syns_within_limit), GN_T(burst_beyond_max_inbound_streams), GN_T(ping_rtt),
             GN_T(keepalive_and_ping_timeout), GN_T(stream_open_timeout),
             GN_T(protocol_violations), GN_T(violation_split_across_feeds),
             GN_T(qos_priority_beats_bulk), GN_T(qos_round_robin_and_control_first),
             GN_T(bad_config), GN_T(session_send_budget_many_streams),
             GN_T(session_send_budget_first_come), GN_T(allocation_failure_every_k),
             GN_T(refusal_allocation_failure_every_k), GN_T(rcmgr_window_growth_needs_room), GN_T(rcmgr_idle_streams_hold_no_memory),
             GN_T(rcmgr_flood_reserved_back_pressured_or_reset),
             GN_T(rcmgr_streams_refused_and_budget), GN_T(rcmgr_allocation_failure_every_k))
