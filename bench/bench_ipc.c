/*
 * bench_ipc: the control socket's cost, as JSON lines (one object a line on
 * stdout; errors on stderr).
 *
 * One process: node A on its own loop thread, served by the in-process
 * control server (golemnet/ipcd.h) on a Unix socket in a fresh directory;
 * node B (its own loop thread) connected to A over TCP on 127.0.0.1 (Noise,
 * yamux); C clients (golemnet/ipc.h) on A's socket.
 *  1. rtt: sequential round trips of cheap commands, one client, one
 *     thread: channel_state (a snapshot of the open channel) and identify
 *     (peer ID and listen addresses). Each call: encode, write, the
 *     daemon's loop decodes, runs and answers, the client's reader thread
 *     decodes and wakes the caller. Mean, median and 99th percentile in
 *     microseconds, and calls per second;
 *  2. rtt_threads: the same command from 4 threads on one client at once
 *     (requests pipelined on the connection): calls per second in all;
 *  3. events: B sends --events 64-byte messages to A (gn_node_unicast,
 *     retried on GN_EAGAIN); the daemon publishes each as an event; the
 *     client pops them. Events per second from the first send to the last
 *     event popped (bounded by the message path as much as by the socket).
 *
 * Options: --calls N (default 20000), --events N (default 100000).
 * Bounded: every wait has a deadline; the run fails past it.
 */
#include "golemnet/golemnet.h"
#include "golemnet/ipc.h"
#include "golemnet/ipcd.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#define BENCH_DEADLINE (120 * GN_S)

static char dir[64];
static gn_node *na, *nb;
static gn_ipcd *srv;
static atomic_int srv_closed;

static int die(const char *what, int rc)
{
    fprintf(stderr, "bench_ipc: %s: %s\n", what, rc ? gn_err_name(rc) : "failed");
    return 1;
}

static int node_up(gn_node **out)
{
    gn_node_config cfg;
    gn_node_config_default(&cfg);
    const char *listen[] = {"/ip4/127.0.0.1/tcp/0"};
    cfg.listen = listen;
    cfg.n_listen = 1;
    cfg.routers = "";
    cfg.discovery = "";
    cfg.nat = "";
    cfg.event_queue_capacity = 1u << 18;
    int rc = gn_node_new(&cfg, out);
    return rc < 0 ? rc : gn_node_start(*out);
}

static int cmp_time(const void *a, const void *b)
{
    gn_time x = *(const gn_time *)a, y = *(const gn_time *)b;
    return x < y ? -1 : x > y;
}

static void on_srv_closed(void *arg)
{
    (void)arg;
    atomic_store(&srv_closed, 1);
}

typedef struct rtt_thread {
    gn_ipc_client *c;
    uint64_t ch;
    unsigned calls;
    int failures;
} rtt_thread;

static void rtt_worker(void *arg)
{
    rtt_thread *t = arg;
    for (unsigned i = 0; i < t->calls; i++) {
        if (gn_ipc_channel_state(t->c, t->ch, NULL) < 0) {
            t->failures++;
        }
    }
}

/* Sequential round trips of @which: 0 channel_state, 1 identify. */
static int bench_rtt(gn_ipc_client *c, uint64_t ch, int which, unsigned calls)
{
    gn_time *lat = malloc(calls * sizeof *lat);
    if (!lat) {
        return die("malloc", GN_ENOMEM);
    }
    for (unsigned i = 0; i < calls / 10; i++) { /* warm up */
        (void)gn_ipc_channel_state(c, ch, NULL);
    }
    gn_time t0 = gn_now();
    for (unsigned i = 0; i < calls; i++) {
        gn_time s = gn_now();
        int rc;
        if (which == 0) {
            rc = gn_ipc_channel_state(c, ch, NULL);
        } else {
            gn_peer_id p;
            gn_ipc_strv addrs;
            rc = gn_ipc_identify(c, &p, &addrs);
            gn_ipc_strv_free(&addrs);
        }
        if (rc < 0) {
            free(lat);
            return die(which == 0 ? "channel_state" : "identify", rc);
        }
        lat[i] = gn_now() - s;
    }
    gn_time total = gn_now() - t0;
    qsort(lat, calls, sizeof *lat, cmp_time);
    printf("{\"bench\":\"ipc\",\"test\":\"rtt\",\"command\":\"%s\",\"transport\":\"unix\","
           "\"calls\":%u,\"calls_per_s\":%.0f,\"mean_us\":%.2f,\"p50_us\":%.2f,"
           "\"p99_us\":%.2f}\n",
           which == 0 ? "channel_state" : "identify", calls,
           (double)calls / ((double)total / 1e9), (double)total / calls / 1e3,
           (double)lat[calls / 2] / 1e3, (double)lat[calls * 99 / 100] / 1e3);
    fflush(stdout);
    free(lat);
    return 0;
}

static int bench_rtt_threads(gn_ipc_client *c, uint64_t ch, unsigned calls)
{
    enum { NT = 4 };
    rtt_thread ts[NT];
    uv_thread_t th[NT];
    gn_time t0 = gn_now();
    for (int i = 0; i < NT; i++) {
        ts[i] = (rtt_thread){c, ch, calls / NT, 0};
        if (uv_thread_create(&th[i], rtt_worker, &ts[i]) != 0) {
            return die("thread", GN_ENOMEM);
        }
    }
    int fails = 0;
    for (int i = 0; i < NT; i++) {
        uv_thread_join(&th[i]);
        fails += ts[i].failures;
    }
    gn_time total = gn_now() - t0;
    if (fails) {
        return die("rtt_threads: calls failed", GN_EIO);
    }
    printf("{\"bench\":\"ipc\",\"test\":\"rtt_threads\",\"command\":\"channel_state\","
           "\"threads\":%d,\"calls\":%u,\"calls_per_s\":%.0f}\n",
           NT, (calls / NT) * NT, (double)((calls / NT) * NT) / ((double)total / 1e9));
    fflush(stdout);
    return 0;
}

typedef struct sender {
    const char *to;
    unsigned n;
    int rc;
} sender;

static void send_worker(void *arg)
{
    sender *s = arg;
    uint8_t msg[64];
    memset(msg, 0x5a, sizeof msg);
    gn_time end = gn_now() + BENCH_DEADLINE;
    for (unsigned i = 0; i < s->n && gn_now() < end; i++) {
        int rc;
        while ((rc = gn_node_unicast(nb, s->to, msg, sizeof msg, NULL)) == GN_EAGAIN &&
               gn_now() < end) {
            usleep(200);
        }
        if (rc < 0) {
            s->rc = rc;
            return;
        }
    }
}

static int bench_events(gn_ipc_client *c, const char *a_id, unsigned n)
{
    int rc = gn_ipc_subscribe(c, GN_IPC_EVENT_BIT(GN_NODE_EV_MESSAGE));
    if (rc < 0) {
        return die("subscribe", rc);
    }
    sender s = {a_id, n, 0};
    uv_thread_t th;
    gn_time t0 = gn_now();
    if (uv_thread_create(&th, send_worker, &s) != 0) {
        return die("thread", GN_ENOMEM);
    }
    unsigned got = 0, lost = 0;
    gn_time end = t0 + BENCH_DEADLINE;
    while (got + lost < n && gn_now() < end) {
        gn_node_event ev;
        rc = gn_ipc_next_event(c, &ev, 100 * GN_MS);
        if (rc == GN_ETIMEDOUT) {
            continue;
        }
        if (rc < 0) {
            break;
        }
        if (ev.type == GN_NODE_EV_MESSAGE) {
            got++;
            gn_rcbuf_rele(ev.message);
        } else if (ev.type == GN_IPC_EV_LOST) {
            lost += (unsigned)ev.count;
        }
    }
    gn_time total = gn_now() - t0;
    uv_thread_join(&th);
    if (s.rc < 0) {
        return die("unicast", s.rc);
    }
    if (got + lost < n) {
        return die("events: not all arrived in time", GN_ETIMEDOUT);
    }
    printf("{\"bench\":\"ipc\",\"test\":\"events\",\"event\":\"message\",\"msg_len\":64,"
           "\"events\":%u,\"lost\":%u,\"events_per_s\":%.0f,\"seconds\":%.3f}\n",
           got, lost, (double)got / ((double)total / 1e9), (double)total / 1e9);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    unsigned calls = 20000, events = 100000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--calls")) {
            calls = (unsigned)strtoul(argv[i + 1], NULL, 10);
        } else if (!strcmp(argv[i], "--events")) {
            events = (unsigned)strtoul(argv[i + 1], NULL, 10);
        } else {
            fprintf(stderr, "usage: bench_ipc [--calls N] [--events N]\n");
            return 2;
        }
    }
    if (calls < 100 || calls > 10000000 || events < 1 || events > 100000000) {
        fprintf(stderr, "bench_ipc: --calls 100..10^7, --events 1..10^8\n");
        return 2;
    }
    snprintf(dir, sizeof dir, "/tmp/gnipcb-XXXXXX");
    if (!mkdtemp(dir)) {
        return die("mkdtemp", GN_EIO);
    }
    char sock[128];
    snprintf(sock, sizeof sock, "%s/ctl.sock", dir);
    int rc;
    if ((rc = node_up(&na)) < 0 || (rc = node_up(&nb)) < 0) {
        return die("node", rc);
    }
    gn_ipcd_config sc;
    gn_ipcd_config_default(&sc);
    sc.address = sock;
    sc.client_queue_max = 64u * 1024 * 1024;
    char err[256] = "";
    if ((rc = gn_ipcd_new(na, &sc, &srv, err, sizeof err)) < 0) {
        fprintf(stderr, "bench_ipc: %s\n", err);
        return die("gn_ipcd_new", rc);
    }
    gn_ipc_options o;
    gn_ipc_options_default(&o);
    o.event_queue_capacity = events + 16;
    gn_ipc_client *c = NULL;
    if ((rc = gn_ipc_connect(sock, &o, &c)) < 0) {
        return die("connect", rc);
    }
    /* B's address, for the client to dial from A */
    gn_peer_id aid, bid;
    gn_node_peer_id(na, &aid);
    gn_node_peer_id(nb, &bid);
    char a_str[GN_PEER_ID_MAX_STRLEN], target[GN_NODE_ADDR_MAX] = "";
    gn_peer_id_to_string(&aid, a_str, sizeof a_str);
    gn_time end = gn_now() + 10 * GN_S;
    while (!target[0] && gn_now() < end) {
        gn_node_event ev;
        if (gn_node_next_event(nb, &ev, 100 * GN_MS) == 0 && ev.type == GN_NODE_EV_LISTENING) {
            snprintf(target, sizeof target, "%s", ev.addr);
        }
    }
    if (!target[0]) {
        return die("B did not listen", GN_ETIMEDOUT);
    }
    gn_ipc_dial_result dr;
    if ((rc = gn_ipc_dial(c, target, &dr)) < 0) {
        return die("dial", rc);
    }
    printf("{\"bench\":\"info\",\"golemnet\":\"%s\",\"control\":\"unix socket\","
           "\"daemon\":\"in-process gn_ipcd, node loop thread\",\"client\":\"golemnet/ipc.h\"}\n",
           gn_version());
    int ret = bench_rtt(c, dr.channel_id, 0, calls) || bench_rtt(c, dr.channel_id, 1, calls / 4) ||
              bench_rtt_threads(c, dr.channel_id, calls) || bench_events(c, a_str, events);
    /* B's events: drain (its queue is bounded; nobody else reads it) */
    gn_node_event ev;
    while (gn_node_next_event(nb, &ev, 0) == 0) {
        if (ev.message) {
            gn_rcbuf_rele(ev.message);
        }
    }
    gn_ipc_free(c);
    gn_ipcd_close(srv, 0, on_srv_closed, NULL);
    for (int i = 0; i < 1000 && !atomic_load(&srv_closed); i++) {
        usleep(5000);
    }
    gn_node_close(na, NULL, NULL);
    gn_node_close(nb, NULL, NULL);
    gn_node_free(na);
    gn_node_free(nb);
    rmdir(dir);
    return ret;
}
