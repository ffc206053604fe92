/*
 * bench_enp_pool: ENP frames per second over a real Ergo pool on loopback
 * (protocols/ergo/ergo_uv.c, pool of 3, unencrypted), one sender to one
 * receiver, as JSON lines like the other bench/ programs.
 *
 * Each frame is a MessagePID (101) carrying an EDF []byte of 64 bytes
 * (102-byte frames: the message of Ergo's own 1.36 M msgs/s figure). The
 * receiver runs its endpoint on its own thread and loop; it parses every
 * frame and decodes its EDF payload (zero copy, arena reset per frame). The
 * sender sends from one process ID (one link, in order) as fast as the
 * adapter takes frames; GN_EAGAIN (4 MiB queued on the link) makes it wait
 * for the next loop turn. The figure is frames received per second, from
 * the first send to the last frame decoded.
 *
 * Usage: bench_enp_pool [frames, default 5000000]
 * Not run by the test suite. See docs/performance.md, "ENP over a pool".
 */
#include "bench_enp_frame.h"
#include "enp.h"
#include "ergo_uv.h"

#include "golemnet/edf.h"
#include "golemnet/golemnet.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *what, long rc)
{
    fprintf(stderr, "bench_enp_pool: %s: %s\n", what, gn_err_name((int)rc));
    exit(1);
}

typedef struct rx {
    uv_loop_t loop;
    gni_ergo_node *n;
    const gn_edf_registry *reg;
    gn_edf_arena *arena;
    uint64_t want, got, bad;
    atomic_int done;   /* every frame arrived (or the connection ended) */
    gn_time t_last;
    uv_async_t stop;
} rx;

typedef struct tx {
    uv_loop_t loop;
    gni_ergo_node *n;
    gni_ergo_conn *c;
    uv_prepare_t pump;
    uv_timer_t tick; /* wakes the sender's loop to see the receiver finish */
    uint8_t frame[128];
    size_t flen;
    uint64_t want, sent, eagain;
    gn_time t0;
    int closed;
} tx;

static void rx_frame(gni_ergo_conn *c, const uint8_t *f, size_t len, void *ud)
{
    rx *r = ud;
    (void)c;
    gni_enp_frame fr;
    gn_edf_decode_opts o;
    gn_edf_decode_opts_default(&o);
    o.reg = r->reg;
    o.dict = gni_ergo_conn_peer_dict(c);
    gn_edf_value v;
    if (gni_enp_parse(f, len, &fr, NULL) < 0 ||
        gn_edf_decode(&o, r->arena, fr.payload.base, fr.payload.len, &v, NULL, NULL) < 0 ||
        v.kind != GN_EDF_BINARY || v.u.bytes.len != 64)
        r->bad++;
    gn_edf_arena_reset(r->arena);
    if (++r->got == r->want) {
        r->t_last = gn_now();
        atomic_store(&r->done, 1);
    }
}

static void rx_down(gni_ergo_conn *c, void *ud)
{
    rx *r = ud;
    (void)c;
    atomic_store(&r->done, 1);
}

static void rx_link_error(gni_ergo_node *n, int err, const char *diag, void *ud)
{
    (void)n;
    (void)ud;
    fprintf(stderr, "bench_enp_pool: link error %s: %s\n", gn_err_name(err), diag);
}

static void rx_closed(void *ud) { (void)ud; }

static void rx_on_stop(uv_async_t *a)
{
    rx *r = a->data;
    gni_ergo_node_close(r->n, rx_closed, NULL);
    uv_close((uv_handle_t *)&r->stop, NULL);
}

static void *rx_thread(void *arg)
{
    rx *r = arg;
    uv_run(&r->loop, UV_RUN_DEFAULT);
    return NULL;
}

static void tx_pump(uv_prepare_t *p)
{
    tx *t = p->data;
    if (!t->c)
        return;
    /* bounded: one loop turn sends at most 65536 frames, or until pushback */
    for (unsigned i = 0; i < 65536 && t->sent < t->want; i++) {
        int rc = gni_ergo_conn_send(t->c, 1004, true, t->frame, t->flen);
        if (rc == GN_EAGAIN) {
            t->eagain++;
            break;
        }
        if (rc < 0)
            die("send", rc);
        t->sent++;
    }
    if (t->sent == t->want)
        uv_prepare_stop(p);
}

static void tx_tick(uv_timer_t *h) { (void)h; }

static void tx_conn(gni_ergo_conn *c, void *ud)
{
    tx *t = ud;
    t->c = c;
}

static void tx_down(gni_ergo_conn *c, void *ud)
{
    tx *t = ud;
    if (t->c == c)
        t->c = NULL;
}

static void tx_closed(void *ud)
{
    tx *t = ud;
    t->closed = 1;
}

int main(int argc, char **argv)
{
    uint64_t want = argc > 1 ? strtoull(argv[1], NULL, 10) : 5000000;
    if (want == 0) {
        fprintf(stderr, "usage: %s [frames]\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    gn_edf_registry *reg = gn_edf_registry_new();
    if (!reg)
        die("registry", GN_ENOMEM);
    int rc = gn_edf_registry_add_ergo(reg);
    if (rc < 0)
        die("registry", rc);
    gn_edf_registry_freeze(reg);

    static rx r;
    r.reg = reg;
    r.want = want;
    r.arena = gn_edf_arena_new(0, 0);
    if (uv_loop_init(&r.loop) < 0 || !r.arena)
        die("loop", GN_ENOMEM);
    gni_ergo_options oa;
    memset(&oa, 0, sizeof oa);
    oa.reg = reg;
    oa.node = "beta@127.0.0.1";
    oa.cookie = "bench-cookie";
    oa.flags = GNI_EHS_FLAGS_DEFAULT;
    oa.pool_size = 3;
    oa.creation = 1;
    oa.cb = (gni_ergo_callbacks){
        .on_frame = rx_frame, .on_conn_down = rx_down, .on_link_error = rx_link_error};
    oa.user_data = &r;
    if ((rc = gni_ergo_node_new(&r.loop, &oa, &r.n)) < 0)
        die("acceptor", rc);
    uv_async_init(&r.loop, &r.stop, rx_on_stop);
    r.stop.data = &r;
    uint16_t port = gni_ergo_node_port(r.n);
    pthread_t th;
    if (pthread_create(&th, NULL, rx_thread, &r) != 0)
        die("thread", GN_ENOMEM);

    static tx t;
    t.want = want;
    if (uv_loop_init(&t.loop) < 0)
        die("loop", GN_ENOMEM);
    gni_ergo_options ob = oa;
    ob.node = "alpha@127.0.0.1";
    ob.cb = (gni_ergo_callbacks){
        .on_conn = tx_conn, .on_conn_down = tx_down, .on_link_error = rx_link_error};
    ob.user_data = &t;
    if ((rc = gni_ergo_node_new(&t.loop, &ob, &t.n)) < 0)
        die("dialler", rc);
    if ((rc = gni_ergo_dial(t.n, "127.0.0.1", port, "beta@127.0.0.1")) < 0)
        die("dial", rc);
    /* bounded: the handshake and two joins, 10 s at most */
    gn_time limit = gn_now() + 10 * GN_S;
    while ((!t.c || gni_ergo_conn_links(t.c) < 3) && gn_now() < limit)
        uv_run(&t.loop, UV_RUN_ONCE);
    if (!t.c || gni_ergo_conn_links(t.c) < 3)
        die("pool of 3", GN_ETIMEDOUT);

    uint8_t payload[69];
    gni_enp_frame f = bench_enp_send64(payload, 1005); /* order: to.ID mod 255, as Ergo */
    long n = gni_enp_build(&f, t.frame, sizeof t.frame);
    if (n < 0)
        die("build", n);
    t.flen = (size_t)n;

    uv_prepare_init(&t.loop, &t.pump);
    t.pump.data = &t;
    t.t0 = gn_now();
    uv_prepare_start(&t.pump, tx_pump);
    uv_timer_init(&t.loop, &t.tick);
    uv_timer_start(&t.tick, tx_tick, 10, 10);
    /* bounded: until every frame arrived or the connection ended, 120 s at most */
    limit = gn_now() + 120 * GN_S;
    while (!atomic_load(&r.done) && t.c && gn_now() < limit)
        uv_run(&t.loop, UV_RUN_ONCE);
    bool ok = atomic_load(&r.done) && r.got == want && r.bad == 0;
    double el = ok ? (double)(r.t_last - t.t0) / 1e9 : 0;
    printf("{\"bench\":\"enp_pool\",\"transport\":\"tcp-loopback\",\"pool\":3,\"senders\":1,"
           "\"frame_bytes\":%zu,\"payload\":\"edf binary 64\",\"frames\":%llu,\"received\":%llu,"
           "\"bad\":%llu,\"eagain\":%llu,\"seconds\":%.3f,\"frames_per_s\":%.0f,"
           "\"MB_per_s\":%.1f}\n",
           t.flen, (unsigned long long)want, (unsigned long long)r.got,
           (unsigned long long)r.bad, (unsigned long long)t.eagain, el,
           el > 0 ? (double)want / el : 0, el > 0 ? (double)want * (double)t.flen / el / 1e6 : 0);

    uv_close((uv_handle_t *)&t.pump, NULL);
    uv_close((uv_handle_t *)&t.tick, NULL);
    gni_ergo_node_close(t.n, tx_closed, &t);
    limit = gn_now() + 10 * GN_S;
    while (!t.closed && gn_now() < limit)
        uv_run(&t.loop, UV_RUN_ONCE);
    uv_async_send(&r.stop);
    pthread_join(th, NULL);
    uv_loop_close(&t.loop);
    uv_loop_close(&r.loop);
    gn_edf_arena_free(r.arena);
    gn_edf_registry_free(reg);
    return ok ? 0 : 1;
}
