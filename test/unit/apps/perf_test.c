/* perf: header bytes, the state machine's rules, and 8 MiB up and down over the pipe. */
#include "golemnet/golemnet.h"
#include "perf.h"

#include "gn_pipe.h"
#include "gn_test.h"
#include "apps_test.h"

#define MIB (1024u * 1024u)

GN_TEST(header_is_big_endian_u64)
{
    /* perf spec: "a single big-endian uint64 number" */
    uint8_t h[8];
    gni_perf_header_encode(0x0102030405060708ULL, h);
    CHECK_MEM(h, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
    CHECK_EQ(gni_perf_header_decode(h), 0x0102030405060708LL);
    gni_perf_header_encode(8 * MIB, h);
    CHECK_MEM(h, "\x00\x00\x00\x00\x00\x80\x00\x00", 8);
    gni_perf_header_encode(UINT64_MAX, h);
    CHECK_MEM(h, "\xff\xff\xff\xff\xff\xff\xff\xff", 8);
}

GN_TEST(server_core)
{
    gni_perf p;
    gni_perf_server_init(&p);
    CHECK_EQ(gni_perf_send_budget(&p, 100), 0);
    /* header split 3 + 5, with 4 upload bytes behind it */
    static const uint8_t in[] = {0, 0, 0, 0, 0, 0, 1, 0x2c, 9, 9, 9, 9};
    CHECK_OK(gni_perf_feed(&p, in, 3));
    CHECK_EQ(gni_perf_get_state(&p), GNI_PERF_SRV_HEADER);
    CHECK_OK(gni_perf_feed(&p, in + 3, 9));
    CHECK_EQ(gni_perf_get_state(&p), GNI_PERF_SRV_DRAIN);
    CHECK_EQ(gni_perf_requested(&p), 300);
    CHECK_EQ(gni_perf_received(&p), 4);
    CHECK_EQ(gni_perf_send_budget(&p, 100), 0); /* not before EOF */
    CHECK_OK(gni_perf_feed_eof(&p));
    CHECK_EQ(gni_perf_get_state(&p), GNI_PERF_SRV_SEND);
    CHECK_EQ(gni_perf_send_budget(&p, 256), 256);
    CHECK_EQ(gni_perf_sent(&p, 256), 0);
    CHECK_EQ(gni_perf_send_budget(&p, 256), 44);
    CHECK_EQ(gni_perf_sent(&p, 45), GN_ERANGE);
    CHECK_EQ(gni_perf_sent(&p, 44), 1);
    CHECK_EQ(gni_perf_get_state(&p), GNI_PERF_DONE);
    /* truncated header */
    gni_perf_server_init(&p);
    CHECK_OK(gni_perf_feed(&p, in, 7));
    CHECK_EQ(gni_perf_feed_eof(&p), GN_EPROTO);
    CHECK_EQ(gni_perf_feed(&p, in, 1), GN_EPROTO); /* sticky */
    /* zero requested: done at EOF */
    gni_perf_server_init(&p);
    static const uint8_t zero[8] = {0};
    CHECK_OK(gni_perf_feed(&p, zero, 8));
    CHECK_OK(gni_perf_feed_eof(&p));
    CHECK_EQ(gni_perf_get_state(&p), GNI_PERF_DONE);
}

GN_TEST(client_core)
{
    gni_perf p;
    uint8_t h[8];
    gni_perf_client_init(&p, 10, 5);
    CHECK_EQ(gni_perf_send_budget(&p, 100), 0); /* header first */
    CHECK_EQ(gni_perf_client_header(&p, h), 0);
    CHECK_MEM(h, "\0\0\0\0\0\0\0\x05", 8);
    CHECK_EQ(gni_perf_client_header(&p, h), GN_ESTATE);
    static const uint8_t x[8] = {0};
    CHECK_EQ(gni_perf_send_budget(&p, 100), 10);
    CHECK_EQ(gni_perf_sent(&p, 10), 1); /* now half-close */
    CHECK_EQ(gni_perf_get_state(&p), GNI_PERF_CLI_DOWNLOAD);
    CHECK_OK(gni_perf_feed(&p, x, 2));
    CHECK_EQ(gni_perf_feed_eof(&p), GN_EPROTO); /* 2 of 5: short */
    /* too much */
    gni_perf_client_init(&p, 0, 5);
    CHECK_EQ(gni_perf_client_header(&p, h), 1); /* empty upload */
    CHECK_EQ(gni_perf_feed(&p, x, 6), GN_EPROTO);
    /* the server speaking while we upload */
    gni_perf_client_init(&p, 10, 5);
    CHECK_EQ(gni_perf_client_header(&p, h), 0);
    CHECK_EQ(gni_perf_feed(&p, x, 1), GN_EPROTO);
    /* exact */
    gni_perf_client_init(&p, 0, 5);
    CHECK_EQ(gni_perf_client_header(&p, h), 1);
    CHECK_OK(gni_perf_feed(&p, x, 5));
    CHECK_OK(gni_perf_feed_eof(&p));
    CHECK_EQ(gni_perf_get_state(&p), GNI_PERF_DONE);
    CHECK_EQ(gni_perf_received(&p), 5);
}

typedef struct perf_res {
    int done;
    int status;
    double up, down;
    int served;
    int serve_status;
} perf_res;

static void on_perf(void *arg, int status, double up, double down)
{
    perf_res *r = arg;
    r->done++;
    r->status = status;
    r->up = up;
    r->down = down;
}

static void on_served(void *arg, int status)
{
    perf_res *r = arg;
    r->served++;
    r->serve_status = status;
}

/* Counts what the server stream received. */
GN_TEST(driver_8mib_up_and_down)
{
    gn_stream *a, *b;
    gn_pipe_new(loop, &a, &b);
    perf_res r = {0};
    CHECK_OK(gni_perf_serve(b, on_served, &r));
    CHECK_OK(gni_perf_request(a, 8 * MIB, 8 * MIB, on_perf, &r));
    CHECK_EQ(r.done, 0);
    spin_until(&r.done, 20000);
    CHECK_EQ(r.done, 1);
    CHECK_EQ(r.status, 0);
    CHECK(r.up > 0.0);
    CHECK(r.down > 0.0);
    spin_until(&r.served, 100);
    CHECK_EQ(r.served, 1);
    CHECK_EQ(r.serve_status, 0);
    spin(10);
}

GN_TEST(driver_zero_and_download_only)
{
    gn_stream *a, *b;
    gn_pipe_new(loop, &a, &b);
    perf_res r = {0};
    CHECK_OK(gni_perf_serve(b, on_served, &r));
    CHECK_OK(gni_perf_request(a, 0, 0, on_perf, &r));
    spin_until(&r.done, 200);
    CHECK_EQ(r.status, 0);
    spin_until(&r.served, 100);
    CHECK_EQ(r.serve_status, 0);
    spin(10);
    gn_pipe_new(loop, &a, &b);
    perf_res q = {0};
    CHECK_OK(gni_perf_serve(b, on_served, &q));
    CHECK_OK(gni_perf_request(a, 0, 1 * MIB + 3, on_perf, &q));
    spin_until(&q.done, 2000);
    CHECK_EQ(q.status, 0);
    spin(10);
}

typedef struct raw {
    uint64_t got;
    int eof;
} raw;
static void raw_data(gn_stream *s, void *ud, const uint8_t *d, size_t n)
{
    (void)s;
    (void)d;
    ((raw *)ud)->got += n;
}
static void raw_eof(gn_stream *s, void *ud) { (void)s; ((raw *)ud)->eof = 1; }
static const gn_stream_handler raw_handler = {raw_data, raw_eof, NULL, NULL};

GN_TEST(driver_server_wire_and_bad_client)
{
    /* a hand-made client: header asking for 100000 bytes, 5 upload bytes, FIN */
    gn_stream *a, *b;
    gn_pipe_new(loop, &a, &b);
    perf_res r = {0};
    raw w = {0};
    CHECK_OK(gni_perf_serve(b, on_served, &r));
    static const uint8_t req[] = {0, 0, 0, 0, 0, 1, 0x86, 0xa0, 1, 2, 3, 4, 5};
    gn_slice iov = gn_slice_of(req, sizeof req);
    gn_stream_set_handler(a, &raw_handler, &w);
    CHECK_OK(gn_stream_read_start(a));
    CHECK_OK(gn_stream_write(a, &iov, 1, NULL, NULL));
    CHECK_OK(gn_stream_shutdown(a));
    spin_until(&w.eof, 500);
    CHECK_EQ(w.got, 100000);
    CHECK_EQ(r.serve_status, 0);
    gn_stream_close(a, NULL, NULL);
    spin(10);
    /* truncated header */
    gn_pipe_new(loop, &a, &b);
    perf_res t = {0};
    CHECK_OK(gni_perf_serve(b, on_served, &t));
    iov = gn_slice_of(req, 5);
    CHECK_OK(gn_stream_write(a, &iov, 1, NULL, NULL));
    CHECK_OK(gn_stream_shutdown(a));
    spin_until(&t.served, 100);
    CHECK_EQ(t.serve_status, GN_EPROTO);
    gn_stream_close(a, NULL, NULL);
    spin(10);
}

GN_TEST(driver_client_short_download)
{
    /* a hand-made server that sends 3 of the 10 bytes asked for */
    gn_stream *a, *b;
    gn_pipe_new(loop, &a, &b);
    perf_res r = {0};
    CHECK_OK(gni_perf_request(a, 4, 10, on_perf, &r));
    static const uint8_t three[3] = {0};
    gn_slice iov = gn_slice_of(three, 3);
    spin(5); /* let the upload and the FIN reach b */
    CHECK_OK(gn_stream_write(b, &iov, 1, NULL, NULL));
    CHECK_OK(gn_stream_shutdown(b));
    spin_until(&r.done, 100);
    CHECK_EQ(r.status, GN_EPROTO);
    gn_stream_close(b, NULL, NULL);
    spin(10);
}

APPS_TEST_MAIN(GN_T(header_is_big_endian_u64), GN_T(server_core), GN_T(client_core),
               GN_T(driver_8mib_up_and_down), GN_T(driver_zero_and_download_only),
               GN_T(driver_server_wire_and_bad_client), GN_T(driver_client_short_download))
