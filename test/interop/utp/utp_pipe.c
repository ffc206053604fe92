/*
 * utp_pipe: a test-only tool that carries raw bytes over golemnet's uTP
 * transport, for the interop tests against foreign uTP peers (libtorrent).
 *
 *   utp_pipe dial   <multiaddr> <send-file> <expect-bytes> <linger-ms>
 *   utp_pipe listen <multiaddr> <send-file> <expect-bytes> <linger-ms>
 *
 * dial: connects, writes <send-file>, reads until <expect-bytes> arrived.
 * listen: prints "LISTEN <bound multiaddr>" on stderr, accepts one
 * connection, reads <expect-bytes>, then writes <send-file>. Both then keep
 * the connection open <linger-ms> (the peer may act on what it got), write
 * the received bytes to stdout, close and exit 0. Exit 1 on any error or
 * after 20 s. Nothing here is installed or used outside tests.
 */
#include "golemnet/golemnet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static gn_loop *loop;
static gn_transport *tr;
static gn_stream *conn;
static uint8_t sendbuf[65536], rx[65536];
static size_t send_len, expect, rx_len;
static gn_time linger, done_at;
static bool listening_side, sent, closed, failed;
static int exit_code = 1;

static void on_data(gn_stream *s, void *ud, const uint8_t *d, size_t n)
{
    (void)s, (void)ud;
    if (n > sizeof rx - rx_len)
        n = sizeof rx - rx_len;
    memcpy(rx + rx_len, d, n);
    rx_len += n;
}

static void on_eof(gn_stream *s, void *ud)
{
    (void)s, (void)ud;
}

static void on_error(gn_stream *s, void *ud, int err)
{
    (void)s, (void)ud;
    fprintf(stderr, "utp_pipe: stream error %s\n", gn_err_name(err));
    failed = true;
}

static const gn_stream_handler handler = {.on_data = on_data, .on_eof = on_eof,
                                          .on_error = on_error};

static void on_written(void *arg, int status)
{
    (void)arg;
    if (status < 0) {
        fprintf(stderr, "utp_pipe: write %s\n", gn_err_name(status));
        failed = true;
    }
}

static void send_now(void)
{
    gn_slice sl = gn_slice_of(sendbuf, send_len);
    sent = true;
    if (send_len && gn_stream_write(conn, &sl, 1, on_written, NULL) < 0)
        failed = true;
}

static void attach(gn_stream *s)
{
    conn = s;
    gn_stream_set_handler(s, &handler, NULL);
    (void)gn_stream_read_start(s);
    if (!listening_side)
        send_now();
}

static void on_dial(void *arg, int status, gn_stream *s)
{
    (void)arg;
    if (status < 0) {
        fprintf(stderr, "utp_pipe: dial %s\n", gn_err_name(status));
        failed = true;
        return;
    }
    attach(s);
}

static void on_accept(void *arg, gn_listener *l, int status, gn_stream *s)
{
    (void)arg, (void)l;
    if (status < 0 || conn) {
        if (s)
            gn_stream_close(s, NULL, NULL);
        return;
    }
    attach(s);
}

/* wakes the loop every 100 ms so the 20 s bound holds while nothing happens */
static void tick(gn_timer *t, void *arg)
{
    (void)arg;
    (void)gn_timer_start(t, 100 * GN_MS, tick, NULL);
}

static void on_closed(gn_stream *s, void *arg)
{
    (void)s, (void)arg;
    closed = true;
}

static void on_lclosed(gn_listener *l, void *arg)
{
    (void)l;
    *(bool *)arg = true;
}

int main(int argc, char **argv)
{
    if (argc != 6 || (strcmp(argv[1], "dial") && strcmp(argv[1], "listen"))) {
        fprintf(stderr, "usage: utp_pipe dial|listen MULTIADDR SEND_FILE EXPECT LINGER_MS\n");
        return 2;
    }
    listening_side = strcmp(argv[1], "listen") == 0;
    FILE *f = fopen(argv[3], "rb");
    if (!f)
        return 2;
    send_len = fread(sendbuf, 1, sizeof sendbuf, f);
    fclose(f);
    expect = strtoul(argv[4], NULL, 10);
    linger = (gn_time)strtoul(argv[5], NULL, 10) * GN_MS;
    gn_registry *reg = NULL;
    gn_multiaddr *ma = NULL;
    gn_listener *l = NULL;
    bool lclosed = false;
    if (gn_loop_new(NULL, &loop) < 0 || gn_registry_new(&reg) < 0 ||
        gn_registry_add_builtins(reg) < 0)
        return 1;
    const gn_transport_ops *ops =
        (const gn_transport_ops *)gn_registry_find(reg, GN_LAYER_TRANSPORT, "utp");
    if (!ops || gn_transport_new(ops, loop, NULL, &tr) < 0 ||
        gn_multiaddr_parse(argv[2], &ma) < 0) {
        fprintf(stderr, "utp_pipe: no utp transport or bad address\n");
        return 1;
    }
    if (listening_side) {
        gn_multiaddr *bound = NULL;
        char buf[256];
        if (gn_transport_listen(tr, ma, on_accept, NULL, &l) < 0 ||
            gn_listener_addr(l, &bound) < 0 || gn_multiaddr_to_string(bound, buf, sizeof buf) < 0)
            return 1;
        fprintf(stderr, "LISTEN %s\n", buf);
        fflush(stderr);
        gn_multiaddr_free(bound);
    } else if (gn_transport_dial(tr, ma, on_dial, NULL, NULL) < 0) {
        return 1;
    }
    gn_timer ticker;
    gn_timer_init(loop, &ticker);
    (void)gn_timer_start(&ticker, 100 * GN_MS, tick, NULL);
    gn_time start = gn_loop_now(loop);
    /* bounded: 20 s of loop turns at most */
    while (!failed && gn_loop_now(loop) - start < 20 * GN_S) {
        gn_loop_run(loop, GN_RUN_NOWAIT);
        if (conn && rx_len >= expect && !sent)
            send_now();
        if (conn && rx_len >= expect && sent && !done_at)
            done_at = gn_loop_now(loop);
        if (done_at && gn_loop_now(loop) - done_at >= linger) {
            exit_code = 0;
            break;
        }
        gn_loop_run(loop, GN_RUN_ONCE);
    }
    fwrite(rx, 1, rx_len, stdout);
    fflush(stdout);
    if (exit_code)
        fprintf(stderr, "utp_pipe: got %zu of %zu bytes%s\n", rx_len, expect,
                failed ? " (failed)" : "");
    gn_timer_stop(&ticker);
    if (conn) {
        gn_stream_close(conn, on_closed, NULL);
        for (int i = 0; i < 1000 && !closed; i++)
            gn_loop_run(loop, GN_RUN_ONCE);
    }
    if (l) {
        gn_listener_close(l, on_lclosed, &lclosed);
        for (int i = 0; i < 1000 && !lclosed; i++)
            gn_loop_run(loop, GN_RUN_ONCE);
    }
    gn_multiaddr_free(ma);
    gn_transport_free(tr);
    gn_registry_free(reg);
    gn_loop_free(loop);
    return exit_code;
}
