/*
 * bench_utp: uTP against TCP on loopback, raw transport streams (no
 * security, no muxer), both on one loop thread in this process.
 *
 *   bench_utp [MiB per run, default 64] [connections, default 200]
 *
 * For each transport: bulk throughput of one stream (MB/s, CPU seconds
 * per GiB from getrusage, so both ends' work on the one thread counts), and
 * connections per second (dial + accept + one byte each way + close, one
 * at a time). Prints one JSON object per transport and figure.
 */
#include "golemnet/golemnet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static gn_loop *loop;
static gn_stream *cli, *srv;
static size_t total, sent_bytes, recv_bytes, inflight_writes;
static int closed_n;
static uint8_t chunk[256 * 1024];

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static void pump(void);

static void on_written(void *arg, int status)
{
    (void)arg;
    if (status < 0) {
        fprintf(stderr, "write: %s\n", gn_err_name(status));
        exit(1);
    }
    inflight_writes--;
    pump();
}

static void pump(void)
{
    while (cli && sent_bytes < total && inflight_writes < 4) {
        size_t n = total - sent_bytes < sizeof chunk ? total - sent_bytes : sizeof chunk;
        gn_slice sl = gn_slice_of(chunk, n);
        int rc = gn_stream_write(cli, &sl, 1, on_written, NULL);
        if (rc == GN_EAGAIN)
            return;
        if (rc < 0) {
            fprintf(stderr, "write: %s\n", gn_err_name(rc));
            exit(1);
        }
        inflight_writes++;
        sent_bytes += n;
    }
}

static void on_writable(gn_stream *s, void *ud) { (void)s, (void)ud; pump(); }
static void on_data(gn_stream *s, void *ud, const uint8_t *d, size_t n) { (void)s, (void)ud, (void)d; recv_bytes += n; }
static void on_eof(gn_stream *s, void *ud) { (void)s, (void)ud; }
static void on_error(gn_stream *s, void *ud, int err) { (void)s, (void)ud; fprintf(stderr, "error %s\n", gn_err_name(err)); exit(1); }
static const gn_stream_handler h = {.on_data = on_data, .on_eof = on_eof, .on_error = on_error,
                                    .on_writable = on_writable};

static void on_accept(void *arg, gn_listener *l, int status, gn_stream *s)
{
    (void)arg, (void)l;
    if (status < 0)
        return;
    srv = s;
    gn_stream_set_handler(s, &h, NULL);
    gn_stream_read_start(s);
}

static void on_dial(void *arg, int status, gn_stream *s)
{
    (void)arg;
    if (status < 0) {
        fprintf(stderr, "dial: %s\n", gn_err_name(status));
        exit(1);
    }
    cli = s;
    gn_stream_set_handler(s, &h, NULL);
    gn_stream_read_start(s);
    pump();
}

static void on_closed(gn_stream *s, void *arg) { (void)s, (void)arg; closed_n++; }

static void run_until(bool (*cond)(void), double limit_s)
{
    gn_time end = gn_loop_now(loop) + (gn_time)(limit_s * 1e9);
    while (!cond() && gn_loop_now(loop) < end)
        gn_loop_run(loop, GN_RUN_ONCE);
    if (!cond()) {
        fprintf(stderr, "timed out\n");
        exit(1);
    }
}

static bool connected(void) { return cli && srv; }
static bool all_received(void) { return recv_bytes >= total; }
static bool both_closed(void) { return closed_n >= 2; }

static void tick(gn_timer *t, void *arg)
{
    (void)arg;
    gn_timer_start(t, 50 * GN_MS, tick, NULL);
}

static void bench(const gn_registry *reg, const char *name, const char *addr, size_t mib, int nconns)
{
    const gn_transport_ops *ops =
        (const gn_transport_ops *)gn_registry_find(reg, GN_LAYER_TRANSPORT, name);
    if (!ops)
        return;
    gn_transport *t;
    gn_multiaddr *ma, *la;
    gn_listener *l;
    if (gn_transport_new(ops, loop, NULL, &t) < 0 || gn_multiaddr_parse(addr, &ma) < 0 ||
        gn_transport_listen(t, ma, on_accept, NULL, &l) < 0 || gn_listener_addr(l, &la) < 0) {
        fprintf(stderr, "%s: setup failed\n", name);
        exit(1);
    }
    /* bulk */
    cli = srv = NULL;
    total = mib << 20;
    sent_bytes = recv_bytes = 0;
    gn_transport_dial(t, la, on_dial, NULL, NULL);
    run_until(connected, 10);
    double c0 = cpu_s();
    gn_time w0 = gn_now();
    pump();
    run_until(all_received, 600);
    double wall = (double)(gn_now() - w0) / 1e9, cpu = cpu_s() - c0;
    printf("{\"bench\":\"bulk\",\"transport\":\"%s\",\"mib\":%zu,\"seconds\":%.3f,"
           "\"mb_per_s\":%.1f,\"cpu_s_per_gib\":%.2f}\n",
           name, mib, wall, (double)total / wall / 1e6, cpu / ((double)total / (1u << 30)));
    fflush(stdout);
    closed_n = 0;
    gn_stream_close(cli, on_closed, NULL);
    gn_stream_close(srv, on_closed, NULL);
    run_until(both_closed, 10);
    /* connections per second */
    w0 = gn_now();
    for (int i = 0; i < nconns; i++) {
        cli = srv = NULL;
        total = 0;
        gn_transport_dial(t, la, on_dial, NULL, NULL);
        run_until(connected, 10);
        closed_n = 0;
        gn_stream_close(cli, on_closed, NULL);
        gn_stream_close(srv, on_closed, NULL);
        run_until(both_closed, 10);
    }
    wall = (double)(gn_now() - w0) / 1e9;
    printf("{\"bench\":\"connect\",\"transport\":\"%s\",\"connections\":%d,\"per_s\":%.0f}\n", name,
           nconns, nconns / wall);
    fflush(stdout);
    bool dummy = false;
    gn_listener_close(l, NULL, &dummy);
    for (int i = 0; i < 200; i++)
        gn_loop_run(loop, GN_RUN_NOWAIT);
    gn_multiaddr_free(ma);
    gn_multiaddr_free(la);
    gn_transport_free(t);
}

static void log_fn(void *ud, gn_log_level level, const char *component, const char *msg)
{
    (void)ud, (void)level;
    fprintf(stderr, "%s: %s\n", component, msg);
}

int main(int argc, char **argv)
{
    if (getenv("BENCH_UTP_LOG")) {  /* e.g. BENCH_UTP_LOG=utp: the core's statistics */
        gn_log_set(log_fn, NULL, GN_LOG_DEBUG);
        gn_log_set_components(getenv("BENCH_UTP_LOG"));
    }
    size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 64;
    int nconns = argc > 2 ? atoi(argv[2]) : 200;
    for (size_t i = 0; i < sizeof chunk; i++)
        chunk[i] = (uint8_t)(i * 131u);
    gn_registry *reg;
    if (gn_loop_new(NULL, &loop) < 0 || gn_registry_new(&reg) < 0 ||
        gn_registry_add_builtins(reg) < 0)
        return 1;
    gn_timer tk;
    gn_timer_init(loop, &tk);
    gn_timer_start(&tk, 50 * GN_MS, tick, NULL);
    bench(reg, "tcp", "/ip4/127.0.0.1/tcp/0", mib, nconns);
    bench(reg, "utp", "/ip4/127.0.0.1/udp/0/utp", mib, nconns);
    gn_timer_stop(&tk);
    gn_registry_free(reg);
    gn_loop_free(loop);
    return 0;
}
