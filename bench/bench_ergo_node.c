/*
 * bench_ergo_node: the Ergo node's public API (include/golemnet/ergo.h) on
 * loopback: one sender process to one receiver process in two gn_node
 * instances, each running on its own loop thread (as two Go nodes would be
 * two processes), connected over Ergo TCP (pool of 3) on 127.0.0.1. JSON
 * lines: one per run, then one summary per figure (median, min, max).
 *
 *  - messages: 64-byte EDF []byte values, one gn_ergo_send() per message,
 *    as fast as the carrier takes them (GN_EAGAIN: try again next loop
 *    turn), at most 4096 in flight: the receiver hands credit back every
 *    512 messages (a remote sender gets no pushback from a mailbox, as in
 *    Ergo, so without a window the receiver's backlog would be timed, not
 *    the path; 4096 is also the number of message items a node keeps for
 *    reuse: a deeper backlog costs three allocations per message); the
 *    figure is messages delivered to the receiver's
 *    callback per second, from the first send to the last delivery;
 *  - calls: sequential gn_ergo_call() of a 64-byte value answered by
 *    gn_ergo_reply() on the other node, the next call issued from the
 *    previous answer's callback; calls per second.
 *
 * Issue 15's anchors (Go Ergo 3.1 on this machine): 1.36 M msgs/s and
 * 37,756 calls/s. Not run by the test suite. Instructions per message and
 * per call: run it twice under callgrind with different counts and divide
 * the difference (docs/performance.md "Ergo node").
 *
 * Usage: bench_ergo_node [messages per run, default 1000000]
 *                        [calls per run, default 100000] [runs, default 5]
 */
#include "golemnet/ergo.h"
#include "golemnet/golemnet.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define WINDOW 4096u  /* messages in flight at most */
#define CREDIT 512u   /* the receiver hands credit back every this many messages */
#define BURST 1024u   /* sends per loop turn at most */
#define RUNS_MAX 50u

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_ergo_node: %s: %s\n", what, gn_err_name(rc));
    exit(1);
}

typedef struct side {
    gn_identity *id;
    gn_node *n;
    gn_ergo_node *en;
    gn_loop *loop;
    gn_ergo_proc *p;
} side;

static side tx_side, rx_side;
static sem_t step;                 /* posted by a loop thread when a step is done */
static gn_ergo_target callee;
static gn_edf_value payload;
static uint8_t bytes[64];

/* receiver (its loop thread) */
static uint64_t rx_got, rx_want;
static gn_time rx_t1;
/* sender (its loop thread) */
static uint64_t tx_sent, tx_want, tx_eagain, tx_answered, tx_calls_want;
static bool tx_pump_queued;
static gn_time tx_t0, tx_t1;
static atomic_uint_fast64_t credited; /* messages the receiver got, as it last told */

static void submit(gn_loop *l, gn_loop_fn fn, void *arg)
{
    for (int i = 0; i < 100000; i++) { /* bounded: the queue drains in microseconds */
        int rc = gn_loop_submit(l, fn, arg);
        if (rc == 0)
            return;
        if (rc != GN_EAGAIN)
            die("submit", rc);
        usleep(10);
    }
    die("submit", GN_EAGAIN);
}

static void run_on(side *s, gn_loop_fn fn, void *arg)
{
    submit(s->loop, fn, arg);
    while (sem_wait(&step) != 0) /* bounded: EINTR only */
        ;
}

static void pump(gn_loop *l, void *arg);

static void pump_later(void)
{
    if (!tx_pump_queued) {
        tx_pump_queued = true;
        int rc = gn_loop_defer(tx_side.loop, pump, NULL);
        if (rc < 0)
            die("defer", rc);
    }
}

/* sender loop: sends while the window allows, BURST per turn */
static void pump(gn_loop *l, void *arg)
{
    (void)l, (void)arg;
    tx_pump_queued = false;
    uint64_t acked = atomic_load_explicit(&credited, memory_order_relaxed);
    for (unsigned i = 0; i < BURST && tx_sent < tx_want && tx_sent - acked < WINDOW; i++) {
        int rc = gn_ergo_send(tx_side.p, &callee, &payload, NULL);
        if (rc == GN_EAGAIN) { /* the carrier's queue is full: the loop writes it first */
            tx_eagain++;
            pump_later();
            return;
        }
        if (rc < 0)
            die("send", rc);
        tx_sent++;
    }
    if (tx_sent < tx_want && tx_sent - acked < WINDOW)
        pump_later();
    /* else: the window is full, the receiver's credit calls pump */
}

static void credit_cb(gn_loop *l, void *arg)
{
    (void)l, (void)arg;
    pump(NULL, NULL);
}

static void on_msg(gn_ergo_proc *p, void *arg, const gn_ergo_msg *m)
{
    (void)arg;
    if (m->call) {
        int rc = gn_ergo_reply(p, &m->from, &m->ref, m->value);
        if (rc < 0)
            die("reply", rc);
        return;
    }
    if (++rx_got % CREDIT == 0 || rx_got == rx_want) {
        atomic_store_explicit(&credited, rx_got, memory_order_relaxed);
        if (rx_got == rx_want) {
            rx_t1 = gn_now();
            sem_post(&step);
        } else {
            submit(tx_side.loop, credit_cb, NULL);
        }
    }
}

static void on_tx_msg(gn_ergo_proc *p, void *arg, const gn_ergo_msg *m)
{
    (void)p, (void)arg, (void)m;
}

static void on_answer(void *arg, int status, const gn_edf_value *v, const char *text)
{
    (void)arg, (void)v, (void)text;
    if (status < 0)
        die("call", status);
    if (++tx_answered < tx_calls_want) {
        int rc = gn_ergo_call(tx_side.p, &callee, &payload, NULL, on_answer, NULL, NULL);
        if (rc < 0)
            die("call", rc);
    } else {
        tx_t1 = gn_now();
        sem_post(&step);
    }
}

static uint16_t free_port(void)
{
    int u = socket(AF_INET, SOCK_DGRAM, 0), t = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof sa;
    if (u < 0 || t < 0 || bind(u, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(u, (struct sockaddr *)&sa, &sl) != 0 ||
        bind(t, (struct sockaddr *)&sa, sizeof sa) != 0)
        die("free port", GN_EIO);
    close(u);
    close(t);
    return ntohs(sa.sin_port);
}

/* ---- steps run on a loop thread (each posts `step` when done) ---- */

static bool started_tx, started_rx;

static void probe_tx(gn_loop *l, void *arg)
{
    (void)l, (void)arg;
    started_tx = gn_ergo_node_name(tx_side.en)[0] != '\0';
    sem_post(&step);
}

static void probe_rx(gn_loop *l, void *arg)
{
    (void)l, (void)arg;
    started_rx = gn_ergo_node_name(rx_side.en)[0] != '\0';
    sem_post(&step);
}

static void spawn_rx(gn_loop *l, void *arg)
{
    (void)l, (void)arg;
    gn_ergo_proc_opts big = {.mailbox_size = 1u << 20};
    int rc = gn_ergo_spawn(rx_side.en, &big, on_msg, NULL, &rx_side.p);
    if (rc < 0)
        die("spawn", rc);
    gn_ergo_pid rp;
    gn_ergo_proc_pid(rx_side.p, &rp);
    callee = gn_ergo_to_pid(&rp);
    sem_post(&step);
}

static void spawn_tx(gn_loop *l, void *arg)
{
    (void)l, (void)arg;
    int rc = gn_ergo_spawn(tx_side.en, NULL, on_tx_msg, NULL, &tx_side.p);
    if (rc < 0)
        die("spawn", rc);
    sem_post(&step);
}

/* a message run: counters reset on the receiver first, then the sender starts */
static void rx_reset(gn_loop *l, void *arg)
{
    (void)l;
    rx_got = 0;
    rx_want = *(uint64_t *)arg;
    atomic_store(&credited, 0);
    sem_post(&step);
}

static void tx_start(gn_loop *l, void *arg)
{
    (void)l;
    tx_sent = 0;
    tx_eagain = 0;
    tx_want = *(uint64_t *)arg;
    tx_t0 = gn_now();
    pump(NULL, NULL);
}

static void call_start(gn_loop *l, void *arg)
{
    (void)l;
    tx_answered = 0;
    tx_calls_want = *(uint64_t *)arg;
    tx_t0 = gn_now();
    int rc = gn_ergo_call(tx_side.p, &callee, &payload, NULL, on_answer, NULL, NULL);
    if (rc < 0)
        die("call", rc);
}

static void detach_side(gn_loop *l, void *arg)
{
    (void)l;
    side *s = arg;
    gn_ergo_detach(s->en);
    s->en = NULL;
    sem_post(&step);
}

static void start_side(side *s, int seed, const char *name, const char *regport)
{
    int rc = gn_identity_from_int_seed((uint32_t)seed, &s->id);
    if (rc < 0)
        die("identity", rc);
    char nopt[300];
    snprintf(nopt, sizeof nopt, "ergo.node=%s", name);
    const char *opts[] = {nopt, "ergo.cookie=bench", "ergo.port=0", regport};
    gn_node_config cfg;
    gn_node_config_default(&cfg);
    cfg.identity = s->id;
    cfg.transports = "tcp";
    cfg.protocol_components = "ergo";
    cfg.options = opts;
    cfg.n_options = 4;
    if ((rc = gn_node_new(&cfg, &s->n)) < 0) /* its own loop, run on its own thread */
        die("node", rc);
    s->loop = gn_node_loop(s->n);
    if ((rc = gn_ergo_attach(s->n, NULL, &s->en)) < 0) /* before the loop runs the start */
        die("attach", rc);
    if ((rc = gn_node_start(s->n)) < 0)
        die("start", rc);
}

static void wait_started(side *s, gn_loop_fn probe, bool *flag)
{
    for (int i = 0; i < 500 && !*flag; i++) { /* bounded: 5 s */
        run_on(s, probe, NULL);
        if (!*flag)
            usleep(10000);
    }
    if (!*flag)
        die("component start", GN_ETIMEDOUT);
}

static double secs(gn_time a, gn_time b) { return (double)(b - a) / 1e9; }

/* CPU seconds (user + system) of the whole process: both nodes' threads */
static double cpu_secs(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(const double *v, unsigned n)
{
    double s[RUNS_MAX];
    memcpy(s, v, n * sizeof *v);
    qsort(s, n, sizeof *s, cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* @cpu: CPU microseconds per item of each run (both threads, user + system) */
static void summary(const char *bench, const char *unit, double *v, const double *cpu, unsigned n,
                    uint64_t count)
{
    double s[RUNS_MAX];
    memcpy(s, v, n * sizeof *v);
    qsort(s, n, sizeof *s, cmp_double);
    double med = median(v, n);
    printf("{\"bench\":\"%s\",\"summary\":true,\"transport\":\"tcp-loopback\",\"threads\":2,"
           "\"runs\":%u,\"per_run\":%llu,\"value_bytes\":64,\"%s_median\":%.0f,\"%s_min\":%.0f,"
           "\"%s_max\":%.0f,\"spread_pct\":%.1f,\"cpu_us_per_item_median\":%.2f}\n",
           bench, n, (unsigned long long)count, unit, med, unit, s[0], unit, s[n - 1],
           med > 0 ? 100.0 * (s[n - 1] - s[0]) / med : 0.0, median(cpu, n));
}

int main(int argc, char **argv)
{
    uint64_t want = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    uint64_t want_calls = argc > 2 ? strtoull(argv[2], NULL, 10) : 100000;
    unsigned runs = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : 5;
    if (!want || !want_calls || !runs || runs > RUNS_MAX) {
        fprintf(stderr, "usage: %s [messages] [calls] [runs, 1..%u]\n", argv[0], RUNS_MAX);
        return 2;
    }
    if (sem_init(&step, 0, 0) != 0)
        die("sem_init", GN_EIO);
    char regport[64];
    snprintf(regport, sizeof regport, "ergo.registrar_port=%u", (unsigned)free_port());
    start_side(&rx_side, 9002, "beta@localhost", regport); /* beta owns the registrar */
    wait_started(&rx_side, probe_rx, &started_rx);
    start_side(&tx_side, 9001, "alpha@localhost", regport);
    wait_started(&tx_side, probe_tx, &started_tx);
    usleep(300000); /* both register with the registrar */
    run_on(&rx_side, spawn_rx, NULL);
    run_on(&tx_side, spawn_tx, NULL);
    gn_edf_set_binary(&payload, bytes, sizeof bytes);

    /* warm up: the first send connects by name (registrar, handshake, pool) */
    uint64_t one = 1;
    run_on(&rx_side, rx_reset, &one);
    submit(tx_side.loop, tx_start, &one);
    while (sem_wait(&step) != 0)
        ;

    double mps[RUNS_MAX], cps[RUNS_MAX], mcpu[RUNS_MAX], ccpu[RUNS_MAX];
    for (unsigned r = 0; r < runs; r++) {
        run_on(&rx_side, rx_reset, &want);
        double c0 = cpu_secs();
        submit(tx_side.loop, tx_start, &want);
        while (sem_wait(&step) != 0) /* the receiver posts after the last message */
            ;
        double s = secs(tx_t0, rx_t1);
        mcpu[r] = (cpu_secs() - c0) * 1e6 / (double)want;
        mps[r] = (double)want / s;
        printf("{\"bench\":\"ergo_node_send\",\"run\":%u,\"transport\":\"tcp-loopback\","
               "\"threads\":2,\"messages\":%llu,\"value_bytes\":64,\"seconds\":%.3f,"
               "\"msgs_per_s\":%.0f,\"cpu_us_per_msg\":%.2f,\"eagain\":%llu}\n",
               r + 1, (unsigned long long)want, s, mps[r], mcpu[r],
               (unsigned long long)tx_eagain);
        fflush(stdout);
    }
    for (unsigned r = 0; r < runs; r++) {
        double c0 = cpu_secs();
        submit(tx_side.loop, call_start, &want_calls);
        while (sem_wait(&step) != 0)
            ;
        double s = secs(tx_t0, tx_t1);
        ccpu[r] = (cpu_secs() - c0) * 1e6 / (double)want_calls;
        cps[r] = (double)want_calls / s;
        printf("{\"bench\":\"ergo_node_call\",\"run\":%u,\"transport\":\"tcp-loopback\","
               "\"threads\":2,\"calls\":%llu,\"value_bytes\":64,\"seconds\":%.3f,"
               "\"calls_per_s\":%.0f,\"cpu_us_per_call\":%.2f}\n",
               r + 1, (unsigned long long)want_calls, s, cps[r], ccpu[r]);
        fflush(stdout);
    }
    summary("ergo_node_send", "msgs_per_s", mps, mcpu, runs, want);
    summary("ergo_node_call", "calls_per_s", cps, ccpu, runs, want_calls);

    run_on(&tx_side, detach_side, &tx_side);
    run_on(&rx_side, detach_side, &rx_side);
    gn_node_free(tx_side.n); /* closes the node and joins its loop thread */
    gn_node_free(rx_side.n);
    gn_identity_free(tx_side.id);
    gn_identity_free(rx_side.id);
    sem_destroy(&step);
    return 0;
}
