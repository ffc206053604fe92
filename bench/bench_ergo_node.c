/*
 * bench_ergo_node: the Ergo node's public API (include/golemnet/ergo.h) on
 * loopback: one sender process to one receiver process in two gn_node
 * instances over Ergo TCP (pool of 3), both on ONE loop and one thread (so
 * the figure includes both sides' work), as JSON lines.
 *
 *  - messages: 64-byte EDF []byte values, one gn_ergo_send() per message,
 *    as fast as the carrier takes them (GN_EAGAIN: run the loop), at most
 *    8192 in flight; the figure is messages delivered to the receiver's
 *    callback per second;
 *  - calls: sequential gn_ergo_call() of a 64-byte value answered by
 *    gn_ergo_reply(), the next call issued from the previous answer's
 *    callback; calls per second.
 * Issue 15's anchors (Go Ergo 3.1 on this machine): 1.36 M msgs/s and
 * 37,756 calls/s. Not run by the test suite.
 *
 * Usage: bench_ergo_node [messages, default 1000000] [calls, default 100000]
 */
#include "golemnet/ergo.h"
#include "golemnet/golemnet.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_ergo_node: %s: %s\n", what, gn_err_name(rc));
    exit(1);
}

static uint64_t got, answered, want_calls;
static gn_ergo_proc *caller;
static gn_ergo_target callee;
static gn_edf_value payload;

static void on_msg(gn_ergo_proc *p, void *arg, const gn_ergo_msg *m)
{
    (void)arg;
    got++;
    if (m->call) {
        int rc = gn_ergo_reply(p, &m->from, &m->ref, m->value);
        if (rc < 0)
            die("reply", rc);
    }
}

static void on_answer(void *arg, int status, const gn_edf_value *v, const char *text)
{
    (void)arg, (void)v, (void)text;
    if (status < 0)
        die("call", status);
    if (++answered < want_calls) {
        int rc = gn_ergo_call(caller, &callee, &payload, NULL, on_answer, NULL, NULL);
        if (rc < 0)
            die("call", rc);
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

static gn_node *start(gn_loop *loop, int seed, const char *name, const char *regport,
                      gn_ergo_node **en)
{
    gn_identity *id;
    int rc = gn_identity_from_int_seed((uint32_t)seed, &id);
    if (rc < 0)
        die("identity", rc);
    char nopt[300];
    snprintf(nopt, sizeof nopt, "ergo.node=%s", name);
    const char *opts[] = {nopt, "ergo.cookie=bench", "ergo.port=0", regport};
    gn_node_config cfg;
    gn_node_config_default(&cfg);
    cfg.identity = id;
    cfg.loop = loop;
    cfg.transports = "tcp";
    cfg.protocol_components = "ergo";
    cfg.options = opts;
    cfg.n_options = 4;
    gn_node *n;
    if ((rc = gn_node_new(&cfg, &n)) < 0)
        die("node", rc);
    if ((rc = gn_ergo_attach(n, NULL, en)) < 0)
        die("attach", rc);
    if ((rc = gn_node_start(n)) < 0)
        die("start", rc);
    for (int i = 0; i < 1000 && !gn_ergo_node_name(*en)[0]; i++)
        gn_loop_run(loop, GN_RUN_NOWAIT);
    if (!gn_ergo_node_name(*en)[0])
        die("component start", GN_ETIMEDOUT);
    return n;
}

static void on_closed(gn_node *n, void *arg)
{
    (void)n;
    ++*(int *)arg;
}

static double secs(gn_time a, gn_time b) { return (double)(b - a) / 1e9; }

int main(int argc, char **argv)
{
    uint64_t want = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    want_calls = argc > 2 ? strtoull(argv[2], NULL, 10) : 100000;
    if (!want || !want_calls) {
        fprintf(stderr, "usage: %s [messages] [calls]\n", argv[0]);
        return 2;
    }
    gn_loop *loop;
    int rc = gn_loop_new(NULL, &loop);
    if (rc < 0)
        die("loop", rc);
    char regport[64];
    snprintf(regport, sizeof regport, "ergo.registrar_port=%u", (unsigned)free_port());
    gn_ergo_node *ea, *eb;
    gn_node *nb = start(loop, 9002, "beta@localhost", regport, &eb);
    gn_node *na = start(loop, 9001, "alpha@localhost", regport, &ea);
    gn_time t_reg = gn_now() + 300 * GN_MS;
    while (gn_now() < t_reg) /* both register (beta owns the registrar) */
        gn_loop_run(loop, GN_RUN_NOWAIT);
    gn_ergo_proc *rx = NULL, *tx = NULL;
    gn_ergo_proc_opts big = {.mailbox_size = 1u << 20};
    if ((rc = gn_ergo_spawn(eb, &big, on_msg, NULL, &rx)) < 0 ||
        (rc = gn_ergo_spawn(ea, NULL, on_msg, NULL, &tx)) < 0)
        die("spawn", rc);
    gn_ergo_pid rp;
    gn_ergo_proc_pid(rx, &rp);
    callee = gn_ergo_to_pid(&rp);
    static uint8_t bytes[64];
    gn_edf_set_binary(&payload, bytes, sizeof bytes);
    /* warm up: the first send connects by name */
    if ((rc = gn_ergo_send(tx, &callee, &payload, NULL)) < 0)
        die("send", rc);
    for (gn_time end = gn_now() + 5 * GN_S; got < 1 && gn_now() < end;)
        gn_loop_run(loop, GN_RUN_NOWAIT);
    if (got < 1)
        die("first message", GN_ETIMEDOUT);
    got = 0;
    uint64_t sent = 0, eagain = 0;
    gn_time t0 = gn_now();
    while (got < want) { /* bounded: every message is sent once; the loop drains them */
        /* at most 8192 in flight: remote senders get no pushback from a mailbox (Ergo's
         * semantics), so without a window the receiver's backlog, not the path, is timed */
        for (int i = 0; i < 256 && sent < want && sent - got < 8192; i++) {
            rc = gn_ergo_send(tx, &callee, &payload, NULL);
            if (rc == GN_EAGAIN) {
                eagain++;
                break;
            }
            if (rc < 0)
                die("send", rc);
            sent++;
        }
        gn_loop_run(loop, sent < want ? GN_RUN_NOWAIT : GN_RUN_ONCE);
        if (secs(t0, gn_now()) > 120)
            die("messages", GN_ETIMEDOUT);
    }
    gn_time t1 = gn_now();
    printf("{\"bench\":\"ergo_node_send\",\"transport\":\"tcp-loopback\",\"loops\":1,"
           "\"messages\":%llu,\"value_bytes\":64,\"seconds\":%.3f,\"msgs_per_s\":%.0f,"
           "\"eagain\":%llu}\n",
           (unsigned long long)want, secs(t0, t1), (double)want / secs(t0, t1),
           (unsigned long long)eagain);
    caller = tx;
    t0 = gn_now();
    if ((rc = gn_ergo_call(caller, &callee, &payload, NULL, on_answer, NULL, NULL)) < 0)
        die("call", rc);
    while (answered < want_calls) {
        gn_loop_run(loop, GN_RUN_ONCE);
        if (secs(t0, gn_now()) > 120)
            die("calls", GN_ETIMEDOUT);
    }
    t1 = gn_now();
    printf("{\"bench\":\"ergo_node_call\",\"transport\":\"tcp-loopback\",\"loops\":1,"
           "\"calls\":%llu,\"value_bytes\":64,\"seconds\":%.3f,\"calls_per_s\":%.0f}\n",
           (unsigned long long)want_calls, secs(t0, t1), (double)want_calls / secs(t0, t1));
    gn_ergo_detach(ea);
    gn_ergo_detach(eb);
    int closed = 0;
    gn_node_close(na, on_closed, &closed);
    gn_node_close(nb, on_closed, &closed);
    for (gn_time end = gn_now() + 10 * GN_S; closed < 2 && gn_now() < end;)
        gn_loop_run(loop, GN_RUN_ONCE);
    gn_node_free(na);
    gn_node_free(nb);
    gn_loop_free(loop);
    return 0;
}
