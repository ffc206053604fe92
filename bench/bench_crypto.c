/*
 * bench_crypto: secure-channel figures as JSON lines (one object a line).
 *
 *  - raw libsodium rates measured in the same run: X25519 scalar
 *    multiplication, Ed25519 sign and verify, ChaCha20-Poly1305 (IETF)
 *    encrypt and decrypt on 64 KiB buffers;
 *  - handshakes per second of every built-in crypto component, both sides
 *    in this process on one loop over the memory transport (dial, handshake
 *    and close of both ends per iteration);
 *  - secured bulk throughput, one way over the memory transport, of every
 *    built-in crypto component, with its ratio to the raw AEAD figures.
 *
 * Both ends of a secured stream run on the one loop thread, so every byte is
 * sealed and opened on the same core: the natural ceiling of the secured
 * figure is raw "seal+open" (1 / (1/encrypt + 1/decrypt)), about half of the
 * raw encrypt rate. Both ratios are printed.
 *
 * Allocator: glibc's dynamic mmap/trim thresholds make the memory
 * transport's 64 KiB chunk churn fault fresh pages in or not depending on
 * which large blocks happened to be freed earlier (seen as 2-3x swings of
 * the plaintext figure). The bench pins both thresholds at 64 MiB so runs
 * compare code, not heap history; GN_BENCH_MALLOC_DEFAULT=1 keeps glibc's
 * defaults.
 *
 * Usage: bench_crypto [MiB per bulk run, default 256] [seconds per rate, default 1]
 *                     [section: all (default), raw, handshake, bulk] [component substring]
 * (a bulk-only run still measures the raw AEAD rates for its ratios).
 * Not run by the test suite. See docs/performance.md, "Secure channels".
 */
#include "golemnet/golemnet.h"

#include <sodium.h>
#include <stdio.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

static gn_loop *loop;
static gn_registry *reg;
static gn_transport *mem;
static gn_listener *lst;
static gn_multiaddr *laddr;
static double rate_secs = 1.0;

static double secs_since(gn_time t0)
{
    return (double)(gn_now() - t0) / 1e9;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_crypto: %s: %s\n", what, gn_err_name(rc));
    exit(1);
}

/* ---- raw libsodium rates ---------------------------------------------------- */

static double raw_x25519, raw_sign, raw_verify, raw_enc_mbs, raw_dec_mbs;

static void bench_raw(void)
{
    uint8_t sk[32], pk[32], out[32], edpk[32], edsk[64], sig[64], msg[64];
    randombytes_buf(sk, sizeof sk);
    crypto_scalarmult_curve25519_base(pk, sk);
    crypto_sign_keypair(edpk, edsk);
    randombytes_buf(msg, sizeof msg);
    volatile uint8_t sink = 0;
    long n = 0;
    gn_time t0 = gn_now();
    do {
        for (int i = 0; i < 64; i++, n++) {
            if (crypto_scalarmult_curve25519(out, sk, pk) != 0)
                die("x25519", GN_ECRYPTO);
            sk[0] ^= out[0];
        }
    } while (secs_since(t0) < rate_secs);
    raw_x25519 = (double)n / secs_since(t0);
    sink ^= out[1];
    printf("{\"bench\":\"raw\",\"op\":\"x25519_scalarmult\",\"ops_per_s\":%.0f}\n", raw_x25519);

    n = 0;
    t0 = gn_now();
    do {
        for (int i = 0; i < 64; i++, n++) {
            crypto_sign_detached(sig, NULL, msg, sizeof msg, edsk);
            msg[0] ^= sig[0];
        }
    } while (secs_since(t0) < rate_secs);
    raw_sign = (double)n / secs_since(t0);
    printf("{\"bench\":\"raw\",\"op\":\"ed25519_sign\",\"ops_per_s\":%.0f}\n", raw_sign);

    crypto_sign_detached(sig, NULL, msg, sizeof msg, edsk);
    n = 0;
    t0 = gn_now();
    do {
        for (int i = 0; i < 64; i++, n++) {
            if (crypto_sign_verify_detached(sig, msg, sizeof msg, edpk) != 0)
                die("verify", GN_EBADSIG);
        }
    } while (secs_since(t0) < rate_secs);
    raw_verify = (double)n / secs_since(t0);
    printf("{\"bench\":\"raw\",\"op\":\"ed25519_verify\",\"ops_per_s\":%.0f}\n", raw_verify);

    const size_t len = 64 * 1024;
    uint8_t *pt = malloc(len), *ct = malloc(len + 16), key[32], nonce[12] = {0};
    randombytes_buf(key, sizeof key);
    memset(pt, 0x42, len);
    unsigned long long clen = 0, plen = 0;
    n = 0;
    t0 = gn_now();
    do {
        for (int i = 0; i < 64; i++, n++) {
            nonce[4] = (uint8_t)n;
            crypto_aead_chacha20poly1305_ietf_encrypt(ct, &clen, pt, len, NULL, 0, NULL, nonce,
                                                      key);
        }
    } while (secs_since(t0) < rate_secs);
    raw_enc_mbs = (double)n * (double)len / 1e6 / secs_since(t0);
    n = 0;
    t0 = gn_now();
    do {
        for (int i = 0; i < 64; i++, n++) {
            if (crypto_aead_chacha20poly1305_ietf_decrypt(pt, &plen, NULL, ct, clen, NULL, 0,
                                                          nonce, key) != 0)
                die("decrypt", GN_EDECRYPT);
        }
    } while (secs_since(t0) < rate_secs);
    raw_dec_mbs = (double)n * (double)len / 1e6 / secs_since(t0);
    sink ^= pt[0];
    (void)sink;
    free(pt);
    free(ct);
    printf("{\"bench\":\"raw\",\"op\":\"chacha20poly1305_ietf_encrypt\",\"buf\":%zu,"
           "\"mb_per_s\":%.1f}\n",
           len, raw_enc_mbs);
    printf("{\"bench\":\"raw\",\"op\":\"chacha20poly1305_ietf_decrypt\",\"buf\":%zu,"
           "\"mb_per_s\":%.1f}\n",
           len, raw_dec_mbs);
    printf("{\"bench\":\"raw\",\"op\":\"chacha20poly1305_ietf_seal_open\",\"buf\":%zu,"
           "\"mb_per_s\":%.1f}\n",
           len, 1.0 / (1.0 / raw_enc_mbs + 1.0 / raw_dec_mbs));
}

/* ---- a secured pair over the memory transport ----------------------------------- */

typedef struct side {
    gn_crypto *c;
    gn_identity *id;
    int status; /* 1 pending, 0 ok, < 0 failed */
    gn_stream *sec;
    int closed;
    uint64_t rx;
    bool eof;
    int err;
} side;

static side sides[2]; /* 0 dials (initiator), 1 accepts */
static gn_secure_params p_init = {.initiator = true};
static gn_secure_params p_resp = {.initiator = false};

static void on_secured(void *arg, int status, const gn_secure_result *res)
{
    side *s = arg;
    s->status = status;
    if (status == 0)
        s->sec = res->stream;
}

static void accepted(void *arg, gn_listener *l, int status, gn_stream *conn)
{
    (void)arg, (void)l;
    if (status < 0)
        return;
    if (gn_crypto_secure(sides[1].c, conn, &p_resp, on_secured, &sides[1], NULL) < 0)
        gn_stream_close(conn, NULL, NULL);
}

static void dialed(void *arg, int status, gn_stream *conn)
{
    (void)arg;
    if (status < 0) {
        sides[0].status = status;
        return;
    }
    if (gn_crypto_secure(sides[0].c, conn, &p_init, on_secured, &sides[0], NULL) < 0) {
        sides[0].status = GN_EHANDSHAKE;
        gn_stream_close(conn, NULL, NULL);
    }
}

static void run_while(bool (*busy)(void))
{
    gn_time t0 = gn_now();
    while (busy()) {
        gn_loop_run(loop, GN_RUN_ONCE);
        if (secs_since(t0) > 60.0)
            die("stalled", GN_ETIMEDOUT);
    }
}

static bool hs_busy(void)
{
    return sides[0].status == 1 || sides[1].status == 1;
}

static void on_closed(gn_stream *st, void *arg)
{
    (void)st;
    ((side *)arg)->closed++;
}

static bool close_busy(void)
{
    return (sides[0].sec && !sides[0].closed) || (sides[1].sec && !sides[1].closed);
}

static void pair_open(void)
{
    sides[0].status = sides[1].status = 1;
    sides[0].sec = sides[1].sec = NULL;
    int rc = gn_transport_dial(mem, laddr, dialed, NULL, NULL);
    if (rc < 0)
        die("dial", rc);
    run_while(hs_busy);
    if (sides[0].status < 0)
        die("handshake (initiator)", sides[0].status);
    if (sides[1].status < 0)
        die("handshake (responder)", sides[1].status);
}

static void pair_close(void)
{
    for (int i = 0; i < 2; i++) {
        sides[i].closed = 0;
        if (sides[i].sec)
            gn_stream_close(sides[i].sec, on_closed, &sides[i]);
    }
    run_while(close_busy);
    sides[0].sec = sides[1].sec = NULL;
}

static void pair_new(const gn_crypto_ops *ops)
{
    for (int i = 0; i < 2; i++) {
        memset(&sides[i], 0, sizeof sides[i]);
        int rc = gn_identity_from_int_seed((uint32_t)i + 1, &sides[i].id);
        if (rc == 0)
            rc = gn_crypto_new(ops, loop, sides[i].id, NULL, &sides[i].c);
        if (rc < 0)
            die("crypto_new", rc);
    }
}

static void pair_free(void)
{
    for (int i = 0; i < 2; i++) {
        gn_crypto_free(sides[i].c);
        gn_identity_free(sides[i].id);
    }
}

/* ---- handshakes per second -------------------------------------------------------- */

static void bench_handshakes(const gn_crypto_ops *ops)
{
    pair_new(ops);
    pair_open(); /* warm-up */
    pair_close();
    long n = 0;
    gn_time t0 = gn_now();
    do {
        pair_open();
        pair_close();
        n++;
    } while (secs_since(t0) < rate_secs || n < 20);
    double hps = (double)n / secs_since(t0);
    pair_free();
    printf("{\"bench\":\"handshake\",\"component\":\"%s\",\"transport\":\"memory\","
           "\"handshakes\":%ld,\"handshakes_per_s\":%.1f}\n",
           ops->name, n, hps);
}

/* ---- bulk throughput -------------------------------------------------------------- */

#define BULK_WRITE (256u * 1024u) /* bytes per gn_stream_write */
#define BULK_INFLIGHT 8           /* writes outstanding */

static uint8_t *bulk_buf;
static uint64_t bulk_total, bulk_queued;
static int bulk_inflight;
static bool bulk_blocked;
static int bulk_werr;

static void bulk_pump(void);

static void bulk_written(void *arg, int status)
{
    (void)arg;
    bulk_inflight--;
    if (status < 0 && !bulk_werr)
        bulk_werr = status;
    bulk_pump();
}

static void bulk_pump(void)
{
    while (!bulk_blocked && !bulk_werr && bulk_inflight < BULK_INFLIGHT &&
           bulk_queued < bulk_total) {
        size_t n = (size_t)(bulk_total - bulk_queued < BULK_WRITE ? bulk_total - bulk_queued
                                                                   : BULK_WRITE);
        gn_slice iov = gn_slice_of(bulk_buf, n);
        int rc = gn_stream_write(sides[0].sec, &iov, 1, bulk_written, NULL);
        if (rc == GN_EAGAIN) {
            bulk_blocked = true;
            return;
        }
        if (rc < 0) {
            bulk_werr = rc;
            return;
        }
        bulk_inflight++;
        bulk_queued += n;
    }
}

static void snd_writable(gn_stream *st, void *ud)
{
    (void)st, (void)ud;
    bulk_blocked = false;
    bulk_pump();
}

static void rcv_data(gn_stream *st, void *ud, const uint8_t *d, size_t n)
{
    (void)st, (void)d;
    ((side *)ud)->rx += n;
}
static void rcv_eof(gn_stream *st, void *ud)
{
    (void)st;
    ((side *)ud)->eof = true;
}
static void rcv_error(gn_stream *st, void *ud, int err)
{
    (void)st;
    ((side *)ud)->err = err;
}

static const gn_stream_handler snd_handler = {NULL, NULL, rcv_error, snd_writable};
static const gn_stream_handler rcv_handler = {rcv_data, rcv_eof, rcv_error, NULL};

static bool bulk_busy(void)
{
    return sides[1].rx < bulk_total && !sides[1].err && !sides[0].err && !bulk_werr;
}

static bool bulk_drain_busy(void)
{
    return bulk_inflight > 0;
}

static void bench_bulk(const gn_crypto_ops *ops, uint64_t total)
{
    pair_new(ops);
    pair_open();
    gn_stream_set_handler(sides[0].sec, &snd_handler, &sides[0]);
    gn_stream_set_handler(sides[1].sec, &rcv_handler, &sides[1]);
    int rc = gn_stream_read_start(sides[1].sec);
    if (rc < 0)
        die("read_start", rc);
    bulk_total = total;
    bulk_queued = 0;
    bulk_inflight = 0;
    bulk_blocked = false;
    bulk_werr = 0;
    sides[1].rx = 0;
    gn_time t0 = gn_now();
    bulk_pump();
    run_while(bulk_busy);
    double secs = secs_since(t0);
    if (bulk_werr)
        die("bulk write", bulk_werr);
    if (sides[1].err)
        die("bulk receive", sides[1].err);
    run_while(bulk_drain_busy);
    pair_close();
    pair_free();
    double mbs = (double)total / 1e6 / secs;
    double seal_open = 1.0 / (1.0 / raw_enc_mbs + 1.0 / raw_dec_mbs);
    printf("{\"bench\":\"bulk\",\"component\":\"%s\",\"transport\":\"memory\",\"bytes\":%llu,"
           "\"write\":%u,\"secs\":%.3f,\"mb_per_s\":%.1f,\"ratio_vs_raw_encrypt\":%.3f,"
           "\"ratio_vs_raw_seal_open\":%.3f}\n",
           ops->name, (unsigned long long)total, BULK_WRITE, secs, mbs, mbs / raw_enc_mbs,
           mbs / seal_open);
}

/* ---- bulk over TCP, receiver on a second loop thread ----------------------------------
 * Encryption (sender, main thread) and decryption (receiver, its own loop
 * thread) run on different cores, as between two processes: the figure to
 * compare with raw encrypt throughput. */

typedef struct rside {
    gn_loop *loop;
    const gn_crypto_ops *ops;
    gn_identity *id;
    gn_crypto *c;
    gn_transport *tcp;
    gn_listener *l;
    gn_stream *sec;
    gn_multiaddr *addr;
    uint64_t total;
    uint64_t rx;
    gn_time t_end;
    atomic_int ready;  /* 1 listening, < 0 failed */
    atomic_int done;   /* 1 all bytes received, < 0 error */
    atomic_int closed; /* teardown finished */
} rside;

static rside R;

/* Wakes the sender's loop (blocked in epoll) from the receiver thread. */
static void wake_noop(gn_loop *l, void *arg)
{
    (void)l, (void)arg;
}
static void r_finish(int v)
{
    atomic_store(&R.done, v);
    gn_loop_submit(loop, wake_noop, NULL);
}

static void r_data(gn_stream *st, void *ud, const uint8_t *d, size_t n)
{
    (void)st, (void)ud, (void)d;
    R.rx += n;
    if (R.rx >= R.total && atomic_load(&R.done) == 0) {
        R.t_end = gn_now();
        r_finish(1);
    }
}
static void r_error(gn_stream *st, void *ud, int err)
{
    (void)st, (void)ud;
    r_finish(err);
}
static const gn_stream_handler r_handler = {r_data, NULL, r_error, NULL};

static void r_secured(void *arg, int status, const gn_secure_result *res)
{
    (void)arg;
    if (status < 0) {
        r_finish(status);
        return;
    }
    R.sec = res->stream;
    gn_stream_set_handler(R.sec, &r_handler, NULL);
    gn_stream_read_start(R.sec);
}

static void r_accepted(void *arg, gn_listener *l, int status, gn_stream *conn)
{
    (void)arg, (void)l;
    if (status == 0 && gn_crypto_secure(R.c, conn, &p_resp, r_secured, NULL, NULL) < 0)
        gn_stream_close(conn, NULL, NULL);
}

static void r_setup(gn_loop *l, void *arg)
{
    (void)l, (void)arg;
    const gn_transport_ops *tops =
        (const gn_transport_ops *)gn_registry_find(reg, GN_LAYER_TRANSPORT, "tcp");
    gn_multiaddr *ma = NULL;
    int rc = tops ? 0 : GN_ENOTSUP;
    if (rc == 0)
        rc = gn_identity_from_int_seed(2, &R.id);
    if (rc == 0)
        rc = gn_crypto_new(R.ops, R.loop, R.id, NULL, &R.c);
    if (rc == 0)
        rc = gn_transport_new(tops, R.loop, NULL, &R.tcp);
    if (rc == 0)
        rc = gn_multiaddr_parse("/ip4/127.0.0.1/tcp/0", &ma);
    if (rc == 0)
        rc = gn_transport_listen(R.tcp, ma, r_accepted, NULL, &R.l);
    if (rc == 0)
        rc = gn_listener_addr(R.l, &R.addr);
    gn_multiaddr_free(ma);
    atomic_store(&R.ready, rc < 0 ? rc : 1);
}

static void r_free_all(void)
{
    gn_transport_free(R.tcp);
    gn_crypto_free(R.c);
    gn_identity_free(R.id);
    atomic_store(&R.closed, 1);
}
static void r_listener_closed(gn_listener *l, void *arg)
{
    (void)l, (void)arg;
    r_free_all();
}
static void r_stream_closed(gn_stream *st, void *arg)
{
    (void)st, (void)arg;
    gn_listener_close(R.l, r_listener_closed, NULL);
}
static void r_teardown(gn_loop *l, void *arg)
{
    (void)l, (void)arg;
    if (R.sec)
        gn_stream_close(R.sec, r_stream_closed, NULL);
    else if (R.l)
        gn_listener_close(R.l, r_listener_closed, NULL);
    else
        r_free_all();
}

static void wait_atomic(atomic_int *v, double max_s)
{
    gn_time t0 = gn_now();
    while (atomic_load(v) == 0) {
        gn_loop_run(loop, GN_RUN_NOWAIT);
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
        if (secs_since(t0) > max_s)
            die("stalled (tcp)", GN_ETIMEDOUT);
    }
}

static bool tcp_bulk_busy(void)
{
    return atomic_load(&R.done) == 0 && !bulk_werr && !sides[0].err;
}

static void s_dialed(void *arg, int status, gn_stream *conn)
{
    (void)arg;
    if (status < 0) {
        sides[0].status = status;
        return;
    }
    if (gn_crypto_secure(sides[0].c, conn, &p_init, on_secured, &sides[0], NULL) < 0) {
        sides[0].status = GN_EHANDSHAKE;
        gn_stream_close(conn, NULL, NULL);
    }
}

static bool s_hs_busy(void)
{
    return sides[0].status == 1;
}

static void bench_bulk_tcp(const gn_crypto_ops *ops, uint64_t total)
{
    const gn_transport_ops *tops =
        (const gn_transport_ops *)gn_registry_find(reg, GN_LAYER_TRANSPORT, "tcp");
    if (!tops)
        return;
    memset(&R, 0, sizeof R);
    R.ops = ops;
    R.total = total;
    int rc = gn_loop_new(NULL, &R.loop);
    if (rc == 0)
        rc = gn_loop_start_thread(R.loop);
    if (rc == 0)
        rc = gn_loop_submit(R.loop, r_setup, NULL);
    if (rc < 0)
        die("receiver loop", rc);
    wait_atomic(&R.ready, 10);
    if (atomic_load(&R.ready) < 0)
        die("receiver listen", atomic_load(&R.ready));

    gn_transport *stcp;
    memset(&sides[0], 0, sizeof sides[0]);
    sides[0].status = 1;
    rc = gn_identity_from_int_seed(1, &sides[0].id);
    if (rc == 0)
        rc = gn_crypto_new(ops, loop, sides[0].id, NULL, &sides[0].c);
    if (rc == 0)
        rc = gn_transport_new(tops, loop, NULL, &stcp);
    if (rc == 0)
        rc = gn_transport_dial(stcp, R.addr, s_dialed, NULL, NULL);
    if (rc < 0)
        die("sender", rc);
    run_while(s_hs_busy);
    if (sides[0].status < 0)
        die("handshake (tcp initiator)", sides[0].status);
    gn_stream_set_handler(sides[0].sec, &snd_handler, &sides[0]);
    bulk_total = total;
    bulk_queued = 0;
    bulk_inflight = 0;
    bulk_blocked = false;
    bulk_werr = 0;
    gn_time t0 = gn_now();
    bulk_pump();
    run_while(tcp_bulk_busy);
    if (bulk_werr)
        die("bulk write (tcp)", bulk_werr);
    if (atomic_load(&R.done) < 0)
        die("bulk receive (tcp)", atomic_load(&R.done));
    double secs = (double)(R.t_end - t0) / 1e9;
    run_while(bulk_drain_busy);
    sides[0].closed = 0;
    gn_stream_close(sides[0].sec, on_closed, &sides[0]);
    while (!sides[0].closed)
        gn_loop_run(loop, GN_RUN_ONCE);
    gn_loop_submit(R.loop, r_teardown, NULL);
    wait_atomic(&R.closed, 10);
    gn_loop_stop(R.loop);
    gn_loop_free(R.loop);
    gn_multiaddr_free(R.addr);
    for (int i = 0; i < 100; i++)
        gn_loop_run(loop, GN_RUN_NOWAIT);
    gn_transport_free(stcp);
    gn_crypto_free(sides[0].c);
    gn_identity_free(sides[0].id);
    double mbs = (double)total / 1e6 / secs;
    printf("{\"bench\":\"bulk\",\"component\":\"%s\",\"transport\":\"tcp_two_threads\","
           "\"bytes\":%llu,\"write\":%u,\"secs\":%.3f,\"mb_per_s\":%.1f,"
           "\"ratio_vs_raw_encrypt\":%.3f}\n",
           ops->name, (unsigned long long)total, BULK_WRITE, secs, mbs, mbs / raw_enc_mbs);
}

/* ---- main ---------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    uint64_t mib = 256;
    if (argc > 1)
        mib = strtoull(argv[1], NULL, 10);
    if (argc > 2)
        rate_secs = atof(argv[2]);
    const char *only = argc > 3 ? argv[3] : "all";
    const char *filter = argc > 4 ? argv[4] : "";
    bool all = strcmp(only, "all") == 0;
    bool do_hs = all || strcmp(only, "handshake") == 0;
    bool do_bulk = all || strcmp(only, "bulk") == 0;
    if (mib == 0 || rate_secs <= 0 || (!all && !do_hs && !do_bulk && strcmp(only, "raw") != 0)) {
        fprintf(stderr,
                "usage: %s [MiB per bulk run] [seconds per rate] [all|raw|handshake|bulk] "
                "[component]\n",
                argv[0]);
        return 2;
    }
    bool malloc_pinned = false;
#ifdef __GLIBC__
    if (!getenv("GN_BENCH_MALLOC_DEFAULT")) {
        malloc_pinned = mallopt(M_MMAP_THRESHOLD, 64 << 20) == 1 &&
                        mallopt(M_TRIM_THRESHOLD, 64 << 20) == 1;
    }
#endif
    if (sodium_init() < 0)
        die("sodium_init", GN_ECRYPTO);
    int rc = gn_registry_new(&reg);
    if (rc == 0)
        rc = gn_registry_add_builtins(reg);
    if (rc == 0)
        rc = gn_loop_new(NULL, &loop);
    if (rc < 0)
        die("setup", rc);
    const gn_transport_ops *tops =
        (const gn_transport_ops *)gn_registry_find(reg, GN_LAYER_TRANSPORT, "memory");
    if (!tops)
        die("memory transport not built", GN_ENOTSUP);
    gn_multiaddr *ma = NULL;
    rc = gn_transport_new(tops, loop, NULL, &mem);
    if (rc == 0)
        rc = gn_multiaddr_parse("/memory/0", &ma);
    if (rc == 0)
        rc = gn_transport_listen(mem, ma, accepted, NULL, &lst);
    if (rc == 0)
        rc = gn_listener_addr(lst, &laddr);
    if (rc < 0)
        die("listen", rc);
    gn_multiaddr_free(ma);

    printf("{\"bench\":\"info\",\"golemnet\":\"%s\",\"libsodium\":\"%s\",\"bulk_mib\":%llu,"
           "\"malloc_thresholds_pinned\":%s}\n",
           gn_version(), sodium_version_string(), (unsigned long long)mib,
           malloc_pinned ? "true" : "false");
    fflush(stdout);
    bench_raw();
    fflush(stdout);
    size_t ncrypto = gn_registry_count(reg, GN_LAYER_CRYPTO);
    for (size_t i = 0; do_hs && i < ncrypto; i++) {
        const gn_crypto_ops *ops = (const gn_crypto_ops *)gn_registry_get(reg, GN_LAYER_CRYPTO, i);
        if (strstr(ops->name, filter))
            bench_handshakes(ops);
        fflush(stdout);
    }
    bulk_buf = malloc(BULK_WRITE);
    memset(bulk_buf, 0x5a, BULK_WRITE);
    for (size_t i = 0; do_bulk && i < ncrypto; i++) {
        const gn_crypto_ops *ops = (const gn_crypto_ops *)gn_registry_get(reg, GN_LAYER_CRYPTO, i);
        if (strstr(ops->name, filter)) {
            bench_bulk(ops, mib << 20);
            fflush(stdout);
            bench_bulk_tcp(ops, mib << 20);
        }
        fflush(stdout);
    }
    free(bulk_buf);

    gn_listener_close(lst, NULL, NULL);
    for (int i = 0; i < 100; i++)
        gn_loop_run(loop, GN_RUN_NOWAIT);
    gn_transport_free(mem);
    gn_multiaddr_free(laddr);
    gn_loop_stop(loop);
    gn_loop_run(loop, GN_RUN_DEFAULT);
    gn_loop_free(loop);
    gn_registry_free(reg);
    return 0;
}
