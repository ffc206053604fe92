/*
 * bench_mux: stream-multiplexing figures as JSON lines (one object a line).
 *
 * For every built-in muxer, both sessions in this process on one loop over
 * the memory transport (no crypto):
 *  - bulk: one stream, then 16 parallel streams, TOTAL MiB one way
 *    (client -> server), 256 KiB writes; the clock runs from the first write
 *    to the last stream's EOF at the receiver. MB/s = 10^6 bytes per second;
 *  - qos: a bulk stream saturates the session (client -> server, writes
 *    kept queued all the time) while another stream does 64-byte ping-pong
 *    (the client writes 64 bytes, the server echoes them, the client times
 *    the round trip), N round trips after 200 warm-up ones. "priorities on":
 *    the small stream has priority 7 on both sessions, the bulk stream 0;
 *    "off": both 0 (round robin). With 1 and with 8 bulk streams, over the
 *    memory transport with its default queue (4 MiB per direction, the
 *    analogue of large socket buffers) and with a 64 KiB queue (the analogue
 *    of TCP_NOTSENT_LOWAT: little data waits below the muxer's scheduler).
 *    p50/p99/max in microseconds, and the bulk rate achieved meanwhile.
 *
 * Allocator: as bench_crypto, glibc's mmap/trim thresholds are pinned at
 * 64 MiB so chunk churn does not make runs depend on heap history
 * (GN_BENCH_MALLOC_DEFAULT=1 keeps glibc's defaults).
 *
 * Usage: bench_mux [total MiB per bulk run, default 512] [round trips, default 5000]
 *                  [section: all (default), bulk, qos] [muxer substring]
 * Not run by the test suite. See docs/performance.md, "Stream multiplexing".
 */
#include "golemnet/golemnet.h"

#include <stdio.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdlib.h>
#include <string.h>

static gn_loop *loop;
static gn_registry *reg;
static gn_transport *mem;
static gn_listener *lst;
static gn_multiaddr *laddr;

#define WRITE_LEN (256u << 10)
static uint8_t wbuf[WRITE_LEN];

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_mux: %s: %s\n", what, gn_err_name(rc));
    exit(1);
}

static double secs_since(gn_time t0)
{
    return (double)(gn_now() - t0) / 1e9;
}

static size_t tq_len; /* the memory transport's write_queue_max */

static void raw_accepted(void *arg, gn_listener *l, int status, gn_stream *conn);

static void drop_transport(void)
{
    if (!mem)
        return;
    gn_listener_close(lst, NULL, NULL);
    for (int i = 0; i < 100; i++)
        gn_loop_run(loop, GN_RUN_NOWAIT);
    gn_multiaddr_free(laddr);
    gn_transport_free(mem);
    mem = NULL;
}

/* (Re)creates the memory transport with write_queue_max @queue (0: default). */
static void use_transport(size_t queue)
{
    drop_transport();
    const gn_transport_ops *tops =
        (const gn_transport_ops *)gn_registry_find(reg, GN_LAYER_TRANSPORT, "memory");
    if (!tops)
        die("memory transport", GN_ENOTFOUND);
    gn_transport_config tcfg;
    gn_transport_config_default(&tcfg);
    if (queue)
        tcfg.write_queue_max = queue;
    tq_len = tcfg.write_queue_max;
    int rc;
    if ((rc = gn_transport_new(tops, loop, &tcfg, &mem)) < 0)
        die("transport", rc);
    gn_multiaddr *ma;
    if ((rc = gn_multiaddr_parse("/memory/0", &ma)) < 0 ||
        (rc = gn_transport_listen(mem, ma, raw_accepted, NULL, &lst)) < 0 ||
        (rc = gn_listener_addr(lst, &laddr)) < 0)
        die("listen", rc);
    gn_multiaddr_free(ma);
}

/* ---- a session pair ------------------------------------------------------ */

typedef struct bstream bstream;

typedef struct bside {
    gn_mux *mux;
    gn_mux_session *ms;
    bstream *in[32];
    int n_in;
    int closed;
    bool echo_second; /* the second inbound stream echoes (ping-pong server) */
} bside;

struct bstream {
    gn_stream *s;
    bside *side;
    /* writer */
    uint64_t to_send;   /* bytes left to write (UINT64_MAX: until stopped) */
    bool stop;
    bool shut;
    int inflight;
    /* reader */
    uint64_t rx;
    bool eof;
    bool echo;          /* ping-pong server: write back what arrives */
    uint8_t echo_buf[4096];
    size_t echo_len;
    /* ping-pong client */
    bool pinger;
    size_t pong_got;
    int closed;
    int err;
};

static gn_stream *accepted_raw, *dialed_raw;

static void raw_accepted(void *arg, gn_listener *l, int status, gn_stream *conn)
{
    (void)arg, (void)l;
    if (status == 0)
        accepted_raw = conn;
}

static void raw_dialed(void *arg, int status, gn_stream *conn)
{
    (void)arg;
    if (status == 0)
        dialed_raw = conn;
}

static void bs_pump(bstream *b);

static void bs_written(void *arg, int status)
{
    bstream *b = arg;
    b->inflight--;
    if (status < 0 && !b->err)
        b->err = status;
    bs_pump(b);
}

/* Keeps writes queued until to_send is used up or the stream is told to stop. */
static void bs_pump(bstream *b)
{
    while (b->s && !b->shut && !b->err && b->inflight < 4) {
        if (b->stop || b->to_send == 0) {
            if (b->inflight == 0 && gn_stream_shutdown(b->s) == 0)
                b->shut = true;
            return;
        }
        size_t n = b->to_send < WRITE_LEN ? (size_t)b->to_send : WRITE_LEN;
        gn_slice sl = gn_slice_of(wbuf, n);
        int rc = gn_stream_write(b->s, &sl, 1, bs_written, b);
        if (rc == GN_EAGAIN)
            return;
        if (rc < 0)
            die("write", rc);
        b->inflight++;
        if (b->to_send != UINT64_MAX)
            b->to_send -= n;
    }
}

static void echo_written(void *arg, int status)
{
    (void)arg;
    if (status < 0)
        die("echo write", status);
}

static void bs_data(gn_stream *s, void *ud, const uint8_t *d, size_t n)
{
    (void)s;
    bstream *b = ud;
    b->rx += n;
    if (b->echo) {
        /* 64-byte messages, one at a time: echo each as it completes */
        size_t off = 0;
        while (off < n) {
            size_t k = 64 - b->echo_len < n - off ? 64 - b->echo_len : n - off;
            memcpy(b->echo_buf + b->echo_len, d + off, k);
            b->echo_len += k;
            off += k;
            if (b->echo_len == 64) {
                gn_slice sl = gn_slice_of(b->echo_buf, 64);
                int rc = gn_stream_write(b->s, &sl, 1, echo_written, b);
                if (rc < 0)
                    die("echo", rc);
                b->echo_len = 0;
            }
        }
    }
    if (b->pinger)
        b->pong_got += n;
}

static void bs_eof(gn_stream *s, void *ud)
{
    (void)s;
    ((bstream *)ud)->eof = true;
}

static void bs_error(gn_stream *s, void *ud, int err)
{
    (void)s;
    bstream *b = ud;
    b->err = err;
}

static void bs_writable(gn_stream *s, void *ud)
{
    (void)s;
    bs_pump(ud);
}

static const gn_stream_handler bs_handler = {bs_data, bs_eof, bs_error, bs_writable};

static void on_stream(gn_mux_session *ms, void *ud, gn_stream *s)
{
    (void)ms;
    bside *sd = ud;
    if (sd->n_in >= 32)
        die("too many streams", GN_ELIMIT);
    bstream *b = calloc(1, sizeof *b);
    b->s = s;
    b->side = sd;
    sd->in[sd->n_in++] = b;
    b->echo = sd->echo_second && sd->n_in == 2;
    gn_stream_set_handler(s, &bs_handler, b);
    gn_stream_read_start(s);
}

static void on_end(gn_mux_session *ms, void *ud, int err)
{
    (void)ms, (void)ud;
    fprintf(stderr, "bench_mux: session ended: %s\n", gn_err_name(err));
}

static const gn_mux_session_cbs cbs = {on_stream, on_end};

static void run_once(void)
{
    gn_loop_run(loop, GN_RUN_ONCE);
}

static void side_new(const gn_mux_ops *ops, bside *sd, gn_stream *raw, bool initiator)
{
    memset(sd, 0, sizeof *sd);
    int rc = gn_mux_new(ops, loop, NULL, &sd->mux);
    if (rc < 0)
        die("gn_mux_new", rc);
    rc = gn_mux_session_new(sd->mux, raw, initiator, &cbs, sd, &sd->ms);
    if (rc < 0)
        die("gn_mux_session_new", rc);
}

static void pair_new(const gn_mux_ops *ops, bside *c, bside *s)
{
    accepted_raw = dialed_raw = NULL;
    int rc = gn_transport_dial(mem, laddr, raw_dialed, NULL, NULL);
    if (rc < 0)
        die("dial", rc);
    for (int i = 0; i < 1000 && !(accepted_raw && dialed_raw); i++)
        run_once();
    if (!accepted_raw || !dialed_raw)
        die("connect", GN_ETIMEDOUT);
    side_new(ops, c, dialed_raw, true);
    side_new(ops, s, accepted_raw, false);
}

static bstream *open_bs(bside *sd)
{
    gn_stream *s;
    int rc = gn_mux_open_stream(sd->ms, &s);
    if (rc < 0)
        die("open", rc);
    bstream *b = calloc(1, sizeof *b);
    b->s = s;
    b->side = sd;
    gn_stream_set_handler(s, &bs_handler, b);
    gn_stream_read_start(s);
    return b;
}

static void bs_closed(gn_stream *s, void *arg)
{
    (void)s;
    ((bstream *)arg)->closed = 1;
}

static void bs_close(bstream *b)
{
    if (b && b->s) {
        gn_stream_close(b->s, bs_closed, b);
        b->s = NULL;
    }
}

static void session_closed(gn_mux_session *ms, void *arg)
{
    (void)ms;
    ((bside *)arg)->closed = 1;
}

static void pair_free(bside *c, bside *s, bstream **mine, int n)
{
    for (int i = 0; i < n; i++)
        bs_close(mine[i]);
    for (int i = 0; i < s->n_in; i++)
        bs_close(s->in[i]);
    gn_mux_session_close(c->ms, session_closed, c);
    gn_mux_session_close(s->ms, session_closed, s);
    for (int i = 0; i < 100000 && !(c->closed && s->closed); i++)
        run_once();
    for (int i = 0; i < 20; i++)
        gn_loop_run(loop, GN_RUN_NOWAIT);
    for (int i = 0; i < n; i++)
        free(mine[i]);
    for (int i = 0; i < s->n_in; i++)
        free(s->in[i]);
    gn_mux_free(c->mux);
    gn_mux_free(s->mux);
}

/* ---- bulk ------------------------------------------------------------------ */

static void bench_bulk(const gn_mux_ops *ops, int nstreams, uint64_t total)
{
    bside c, s;
    pair_new(ops, &c, &s);
    bstream *w[16];
    uint64_t per = total / (uint64_t)nstreams;
    gn_time t0 = gn_now();
    for (int i = 0; i < nstreams; i++) {
        w[i] = open_bs(&c);
        w[i]->to_send = per;
        bs_pump(w[i]);
    }
    for (;;) {
        run_once();
        int done = 0;
        for (int i = 0; i < s.n_in; i++) {
            if (s.in[i]->err)
                die("bulk receiver", s.in[i]->err);
            done += s.in[i]->eof;
        }
        if (done == nstreams)
            break;
        if (secs_since(t0) > 120)
            die("bulk", GN_ETIMEDOUT);
    }
    double secs = secs_since(t0);
    uint64_t got = 0;
    for (int i = 0; i < s.n_in; i++)
        got += s.in[i]->rx;
    if (got != per * (uint64_t)nstreams)
        die("bulk: bytes lost", GN_EINTERNAL);
    printf("{\"bench\":\"mux_bulk\",\"muxer\":\"%s\",\"transport\":\"memory\",\"streams\":%d,"
           "\"bytes\":%llu,\"write_len\":%u,\"seconds\":%.3f,\"MBps\":%.1f}\n",
           ops->name, nstreams, (unsigned long long)got, WRITE_LEN, secs,
           (double)got / 1e6 / secs);
    fflush(stdout);
    pair_free(&c, &s, w, nstreams);
}

/* ---- QoS --------------------------------------------------------------------- */

static int cmp_time(const void *a, const void *b)
{
    gn_time x = *(const gn_time *)a, y = *(const gn_time *)b;
    return x < y ? -1 : x > y;
}

static void bench_qos(const gn_mux_ops *ops, bool prio, int n, int nbulk)
{
    bside c, s;
    pair_new(ops, &c, &s);
    s.echo_second = true;
    bstream *bulk = open_bs(&c);
    bulk->to_send = UINT64_MAX;
    bs_pump(bulk);
    bstream *small = open_bs(&c);
    bstream *more[16];
    for (int i = 1; i < nbulk; i++) {
        more[i] = open_bs(&c);
        more[i]->to_send = UINT64_MAX;
        bs_pump(more[i]);
    }
    small->pinger = true;
    /* the server's end of the small stream echoes; it is the second inbound stream */
    static uint8_t msg[64];
    gn_slice sl = gn_slice_of(msg, sizeof msg);
    if (gn_stream_write(small->s, &sl, 1, NULL, NULL) < 0)
        die("first ping", GN_EIO);
    gn_time t0 = gn_now();
    while (s.n_in < nbulk + 1) {
        run_once();
        if (secs_since(t0) > 10)
            die("qos setup", GN_ETIMEDOUT);
    }
    bstream *echo = s.in[1];
    if (prio) {
        if (gn_mux_set_priority(c.ms, small->s, 7) < 0 ||
            gn_mux_set_priority(s.ms, echo->s, 7) < 0)
            die("set_priority", GN_EINVAL);
    }
    /* let the bulk stream reach its steady state */
    gn_time warm = gn_now();
    while (secs_since(warm) < 0.2)
        run_once();
    const int warmup = 200;
    gn_time *lat = malloc(sizeof(gn_time) * (size_t)(n + warmup));
    uint64_t bulk_rx0 = 0;
    gn_time tb0 = 0;
    /* the first ping is out; collect its pong, then ping again */
    gn_time sent = gn_now();
    size_t want = 64;
    for (int i = 0; i < n + warmup; i++) {
        while (small->pong_got < want) {
            run_once();
            if (small->err || bulk->err)
                die("qos stream", small->err ? small->err : bulk->err);
            if (secs_since(sent) > 10)
                die("qos ping-pong", GN_ETIMEDOUT);
        }
        gn_time now = gn_now();
        lat[i] = now - sent;
        if (i == warmup - 1) {
            bulk_rx0 = 0;
            for (int k = 0; k < s.n_in; k++)
                bulk_rx0 += k == 1 ? 0 : s.in[k]->rx;
            tb0 = now;
        }
        sent = gn_now();
        want += 64;
        if (i + 1 < n + warmup) {
            int rc = gn_stream_write(small->s, &sl, 1, NULL, NULL);
            if (rc < 0)
                die("ping", rc);
        }
    }
    double bulk_secs = secs_since(tb0);
    uint64_t bulk_rx = 0;
    for (int k = 0; k < s.n_in; k++)
        bulk_rx += k == 1 ? 0 : s.in[k]->rx;
    double bulk_mbs = (double)(bulk_rx - bulk_rx0) / 1e6 / bulk_secs;
    gn_time *v = lat + warmup;
    qsort(v, (size_t)n, sizeof *v, cmp_time);
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += (double)v[i];
    printf("{\"bench\":\"mux_qos\",\"muxer\":\"%s\",\"transport\":\"memory\","
           "\"transport_queue\":%zu,\"bulk_streams\":%d,"
           "\"priorities\":%s,\"round_trips\":%d,\"msg_bytes\":64,\"p50_us\":%.1f,"
           "\"p99_us\":%.1f,\"max_us\":%.1f,\"mean_us\":%.1f,\"bulk_MBps\":%.1f}\n",
           ops->name, tq_len, nbulk, prio ? "true" : "false", n, (double)v[n / 2] / 1e3,
           (double)v[(size_t)n * 99 / 100] / 1e3, (double)v[n - 1] / 1e3, sum / n / 1e3,
           bulk_mbs);
    fflush(stdout);
    free(lat);
    bstream *mine[17] = {bulk, small};
    for (int i = 1; i < nbulk; i++)
        mine[i + 1] = more[i];
    pair_free(&c, &s, mine, nbulk + 1);
}

int main(int argc, char **argv)
{
    uint64_t mib = argc > 1 ? strtoull(argv[1], NULL, 10) : 512;
    int trips = argc > 2 ? atoi(argv[2]) : 5000;
    const char *section = argc > 3 ? argv[3] : "all";
    const char *only = argc > 4 ? argv[4] : NULL;
    if (mib == 0 || trips < 100) {
        fprintf(stderr, "usage: %s [MiB] [round trips >= 100] [all|bulk|qos] [muxer]\n",
                argv[0]);
        return 2;
    }
#ifdef __GLIBC__
    if (!getenv("GN_BENCH_MALLOC_DEFAULT")) {
        mallopt(M_MMAP_THRESHOLD, 64 << 20);
        mallopt(M_TRIM_THRESHOLD, 64 << 20);
    }
#endif
    for (size_t i = 0; i < sizeof wbuf; i++)
        wbuf[i] = (uint8_t)(i * 31 + 7);
    int rc;
    if ((rc = gn_loop_new(NULL, &loop)) < 0)
        die("loop", rc);
    if ((rc = gn_registry_new(&reg)) < 0 || (rc = gn_registry_add_builtins(reg)) < 0)
        die("registry", rc);
    use_transport(0);
    bool all = strcmp(section, "all") == 0;
    for (size_t i = 0; i < gn_registry_count(reg, GN_LAYER_MUX); i++) {
        const gn_mux_ops *ops = (const gn_mux_ops *)gn_registry_get(reg, GN_LAYER_MUX, i);
        if (only && !strstr(ops->name, only))
            continue;
        if (all || strcmp(section, "bulk") == 0) {
            bench_bulk(ops, 1, mib << 20);
            bench_bulk(ops, 16, mib << 20);
        }
        if (all || strcmp(section, "qos") == 0) {
            /* the transport's default queue (4 MiB), then a short one (64 KiB) */
            static const size_t queues[2] = {0, 64u << 10};
            for (int q = 0; q < 2; q++) {
                use_transport(queues[q]);
                for (int nb = 1; nb <= 8; nb += 7) {
                    bench_qos(ops, false, trips, nb);
                    bench_qos(ops, true, trips, nb);
                }
            }
            use_transport(0);
        }
    }
    drop_transport();
    gn_registry_free(reg);
    gn_loop_stop(loop);
    gn_loop_run(loop, GN_RUN_DEFAULT);
    gn_loop_free(loop);
    return 0;
}
