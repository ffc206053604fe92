/* echo: 1 MiB through the bounded echo driver over the pipe. */
#include "golemnet/golemnet.h"
#include "echo.h"

#include "gn_pipe.h"
#include "gn_test.h"
#include "apps_test.h"

#define MIB (1024u * 1024u)

typedef struct client {
    uint8_t *rx;
    size_t rx_len;
    int eof;
    int err;
    int served;
    int serve_status;
    int written;
} client;

static void c_data(gn_stream *s, void *ud, const uint8_t *d, size_t n)
{
    (void)s;
    client *c = ud;
    if (c->rx_len + n <= MIB)
        memcpy(c->rx + c->rx_len, d, n);
    c->rx_len += n;
}
static void c_eof(gn_stream *s, void *ud) { (void)s; ((client *)ud)->eof = 1; }
static void c_error(gn_stream *s, void *ud, int err) { (void)s; ((client *)ud)->err = err; }
static const gn_stream_handler c_handler = {c_data, c_eof, c_error, NULL};

static void c_written(void *arg, int status)
{
    client *c = arg;
    c->written = status == 0 ? 1 : status;
}

static void on_served(void *arg, int status)
{
    client *c = arg;
    c->served++;
    c->serve_status = status;
}

static void run_echo(size_t chunk)
{
    static uint8_t tx[MIB];
    for (size_t i = 0; i < MIB; i++)
        tx[i] = (uint8_t)(i * 7 + (i >> 11));
    client c = {0};
    c.rx = malloc(MIB);
    gn_stream *a, *b;
    gn_pipe *p = gn_pipe_new(loop, &a, &b);
    p->chunk = chunk;
    CHECK_OK(gni_echo_serve(b, on_served, &c));
    gn_stream_set_handler(a, &c_handler, &c);
    CHECK_OK(gn_stream_read_start(a));
    gn_slice iov = gn_slice_of(tx, MIB);
    CHECK_OK(gn_stream_write(a, &iov, 1, c_written, &c));
    CHECK_OK(gn_stream_shutdown(a));
    spin_until(&c.eof, 20000);
    CHECK_EQ(c.written, 1);
    CHECK_EQ(c.err, 0);
    CHECK_EQ(c.eof, 1);
    CHECK_EQ(c.rx_len, MIB);
    CHECK_MEM(c.rx, tx, MIB);
    CHECK_EQ(c.served, 1);
    CHECK_EQ(c.serve_status, 0);
    gn_stream_close(a, NULL, NULL);
    spin(10);
    free(c.rx);
}

GN_TEST(echo_one_mib)
{
    run_echo(0);
}

GN_TEST(echo_one_mib_in_small_pieces)
{
    run_echo(1000); /* 1000-byte deliveries: exercises the push-back path */
}

GN_TEST(echo_peer_reset)
{
    client c = {0};
    c.rx = malloc(16);
    gn_stream *a, *b;
    gn_pipe_new(loop, &a, &b);
    CHECK_OK(gni_echo_serve(b, on_served, &c));
    gn_stream_reset(a, NULL, NULL);
    spin_until(&c.served, 100);
    CHECK_EQ(c.served, 1);
    CHECK_EQ(c.serve_status, GN_ECONNRESET);
    spin(10);
    free(c.rx);
}

GN_TEST(echo_empty_stream)
{
    client c = {0};
    gn_stream *a, *b;
    gn_pipe_new(loop, &a, &b);
    CHECK_OK(gni_echo_serve(b, on_served, &c));
    gn_stream_set_handler(a, &c_handler, &c);
    CHECK_OK(gn_stream_read_start(a));
    CHECK_OK(gn_stream_shutdown(a));
    spin_until(&c.eof, 100);
    CHECK_EQ(c.eof, 1);
    CHECK_EQ(c.rx_len, 0);
    CHECK_EQ(c.serve_status, 0);
    gn_stream_close(a, NULL, NULL);
    spin(10);
}

APPS_TEST_MAIN(GN_T(echo_one_mib), GN_T(echo_one_mib_in_small_pieces), GN_T(echo_peer_reset),
               GN_T(echo_empty_stream))
