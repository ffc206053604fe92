/*
 * bench_node: node figures with two processes on loopback, as JSON lines
 * (one object a line on stdout; progress and errors on stderr).
 *
 * The bench runs a server node in a child process (this same binary,
 * re-executed as `bench_node --serve`, which prints its listen address with
 * /p2p/ on stdout) and measures from client nodes in this process, over
 * TCP on 127.0.0.1 with the chosen security and muxer (Noise and yamux by
 * default):
 *  1. bulk: one stream, /perf/1.0.0 (the libp2p perf protocol, served by
 *     the node's built-in driver): the 8-byte request (0 bytes back), then
 *     1 GiB uploaded in 256 KiB writes (4 in flight), half-close; the clock
 *     runs from the first write to the server's EOF, which it sends only
 *     after it read the last byte. MB/s = 10^6 bytes per second;
 *  2. msgs: 64-byte messages on one stream (/golemnet/bench/msgs/1.0.0),
 *     each preceded by its unsigned-varint length; 1024 messages per
 *     gn_stream_write as 2048 slices (4 writes in flight). The server
 *     parses the prefixes, counts the messages and, at EOF, replies with
 *     the count; the rate is that count over the time from the first write
 *     to the reply;
 *  3. dials: sequential full dials by a second client node: TCP connect,
 *     multistream-select, handshake, muxer, identify round trip (the
 *     client's GN_NODE_EV_IDENTIFY), then gn_channel_close() and its
 *     GN_NODE_EV_CHANNEL_CLOSED, then the next dial;
 *  4. streams: sequential stream opens on one channel: open,
 *     multistream-select /echo/1.0.0, write 1 byte, read it back, close
 *     (the next open starts in the close callback);
 *  5. rss: a fresh server; its VmRSS (/proc/PID/status) before and after
 *     1,000 secured, identified, idle connections from 1,000 client nodes
 *     (one connection each: a node reuses an open channel to a peer, so one
 *     node cannot open 1,000 to the same server). KiB per connection.
 *
 * Both processes run their node on an application loop driven by their main
 * thread (one thread each), so the two processes map onto the two cores.
 * glibc's allocator keeps its defaults (the RSS figure is what an
 * application gets).
 *
 * Safety: loopback only; every phase is bounded in count and time (a phase
 * that overruns fails); the server dies with its parent (PR_SET_PDEATHSIG),
 * exits at EOF on its stdin (the parent holds the pipe) and after 30
 * minutes at most; the parent kills it on every exit path.
 *
 * Usage: bench_node [--security noise|ecies] [--muxer yamux|mplex]
 *                   [--section all|bulk|msgs|dials|streams|rss]
 *                   [--bulk-mib N (1024)] [--msgs N (4000000)] [--dials N (2000)]
 *                   [--streams N (30000)] [--conns N (1000)] [--write-kib N (256)]
 *                   [--batch N (1024)] [--max-seconds S per phase (120)]
 *        bench_node --serve [--security ...] [--muxer ...]
 * Not run by the test suite. See docs/performance.md, "Node (two processes
 * on loopback)".
 */
#include "golemnet/golemnet.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#define MSGS_PROTO "/golemnet/bench/msgs/1.0.0"
#define PERF_PROTO "/perf/1.0.0"
#define ECHO_PROTO "/echo/1.0.0"
#define MSG_LEN 64u
#define MAX_BATCH 4096u
#define INFLIGHT 4

/* Goals on the 2-core machine and js-libp2p 3.3.11 on the same machine. */
#define GOAL_MBS 1200.0
#define GOAL_MSGS 2000000.0
#define GOAL_DIALS 1500.0
#define GOAL_STREAMS 15000.0
#define GOAL_KIB_PER_CONN 16.0
#define JS_MBS 523.0
#define JS_MSGS 49000.0
#define JS_DIALS 91.0
#define JS_STREAMS 1100.0

static struct {
    const char *security;
    const char *muxer;
    const char *section;
    unsigned long long bulk_mib;
    unsigned long long msgs;
    unsigned long dials;
    unsigned long streams;
    unsigned long conns;
    size_t write_len;
    unsigned long batch;
    double max_s;
} opt = {"noise", "yamux", "all", 1024, 4000000, 2000, 30000, 1000, 256u << 10, 1024, 120.0};

static gn_loop *loop;
static gn_registry *reg;
static gn_timer watchdog;
static char self_path[4096] = "/proc/self/exe"; /* resolved in main() */
static pid_t main_srv_pid; /* the server of phases 1-4 */

static void kill_servers(void);

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_node: %s: %s\n", what, rc ? gn_err_name(rc) : "failed");
    kill_servers();
    exit(1);
}

static double secs(gn_time a, gn_time b)
{
    return (double)(b - a) / 1e9;
}

static void raise_nofile(rlim_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return;
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        rl.rlim_cur = (rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want) ? want : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            fprintf(stderr, "bench_node: cannot raise RLIMIT_NOFILE: %s\n", strerror(errno));
        }
    }
}

/* Keeps one loop iteration from blocking longer than 50 ms. */
static void watchdog_fire(gn_timer *t, void *arg)
{
    (void)arg;
    gn_timer_start(t, (50 * GN_MS), watchdog_fire, NULL);
}

static void loop_setup(void)
{
    int rc = gn_loop_new(NULL, &loop);
    if (rc < 0) {
        die("gn_loop_new", rc);
    }
    if ((rc = gn_registry_new(&reg)) < 0 || (rc = gn_registry_add_builtins(reg)) < 0) {
        die("registry", rc);
    }
    gn_timer_init(loop, &watchdog);
    gn_timer_start(&watchdog, (50 * GN_MS), watchdog_fire, NULL);
}

static void base_config(gn_node_config *cfg)
{
    gn_node_config_default(cfg);
    cfg->loop = loop;
    cfg->registry = reg;
    cfg->security = opt.security;
    cfg->muxers = opt.muxer;
}

/* ======================================================================
 * Server (--serve)
 */

typedef struct msink {
    gn_stream *s;
    uint64_t count, bytes;
    uint64_t val;     /* length prefix being parsed */
    unsigned shift;
    uint64_t rem;     /* payload bytes left of the current message */
    bool in_payload;
    bool bad;
    bool closing;
    gn_time t_first, t_last;
    uint8_t reply[24];
} msink;

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8) {
        p[i] = (uint8_t)v;
    }
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

static void msink_closed(gn_stream *s, void *arg)
{
    (void)s;
    gn_free(arg);
}

static void msink_close(msink *m)
{
    if (!m->closing) {
        m->closing = true;
        gn_stream_close(m->s, msink_closed, m);
    }
}

static void msink_written(void *arg, int status)
{
    (void)status;
    msink_close(arg);
}

static void msink_data(gn_stream *s, void *ud, const uint8_t *d, size_t n)
{
    (void)s;
    msink *m = ud;
    gn_time now = gn_now();
    if (!m->t_first) {
        m->t_first = now;
    }
    m->t_last = now;
    m->bytes += n;
    size_t i = 0;
    while (i < n && !m->bad) {
        if (m->in_payload) {
            size_t take = n - i < m->rem ? n - i : (size_t)m->rem;
            i += take;
            m->rem -= take;
            if (m->rem == 0) {
                m->in_payload = false;
                m->count++;
            }
            continue;
        }
        uint8_t b = d[i++];
        m->val |= (uint64_t)(b & 0x7f) << m->shift;
        m->shift += 7;
        if (b & 0x80) {
            if (m->shift > 28) {
                m->bad = true; /* longer than any message we send */
            }
            continue;
        }
        m->rem = m->val;
        m->val = 0;
        m->shift = 0;
        if (m->rem == 0) {
            m->count++;
        } else {
            m->in_payload = true;
        }
    }
}

static void msink_eof(gn_stream *s, void *ud)
{
    msink *m = ud;
    put64(m->reply, m->bad ? UINT64_MAX : m->count);
    put64(m->reply + 8, m->bytes);
    put64(m->reply + 16, (uint64_t)(m->t_last - m->t_first));
    gn_slice sl = gn_slice_of(m->reply, sizeof m->reply);
    if (gn_stream_write(s, &sl, 1, msink_written, m) < 0) {
        msink_close(m);
        return;
    }
    (void)gn_stream_shutdown(s);
}

static void msink_error(gn_stream *s, void *ud, int err)
{
    (void)s, (void)err;
    msink_close(ud);
}

static const gn_stream_handler msink_handler = {
    .on_data = msink_data, .on_eof = msink_eof, .on_error = msink_error};

static void srv_msgs_stream(void *arg, gn_channel *ch, gn_stream *s, const char *proto)
{
    (void)arg, (void)ch, (void)proto;
    msink *m = gn_calloc(1, sizeof *m);
    if (!m) {
        gn_stream_close(s, NULL, NULL);
        return;
    }
    m->s = s;
    gn_stream_set_handler(s, &msink_handler, m);
    if (gn_stream_read_start(s) < 0) {
        msink_close(m);
    }
}

static bool srv_stop;

static void srv_check_parent(gn_timer *t, void *arg)
{
    (void)arg;
    struct pollfd p = {.fd = 0, .events = POLLIN};
    if (poll(&p, 1, 0) > 0) {
        char b[64];
        if (read(0, b, sizeof b) <= 0) {
            srv_stop = true;
        }
    }
    if (getppid() == 1) {
        srv_stop = true;
    }
    gn_timer_start(t, (100 * GN_MS), srv_check_parent, NULL);
}

static void srv_closed(gn_node *n, void *arg)
{
    (void)n;
    *(bool *)arg = true;
}

static int serve(void)
{
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
    if (getppid() == 1) {
        return 1;
    }
    alarm(1800); /* hard bound on the server's life */
    raise_nofile(65536);
    loop_setup();
    gn_timer parent_check;
    gn_timer_init(loop, &parent_check);
    gn_timer_start(&parent_check, (100 * GN_MS), srv_check_parent, NULL);

    gn_node_config cfg;
    base_config(&cfg);
    const char *listen[1] = {"/ip4/127.0.0.1/tcp/0"};
    cfg.listen = listen;
    cfg.n_listen = 1;
    cfg.protocols = GN_NODE_PROTO_IDENTIFY | GN_NODE_PROTO_PING | GN_NODE_PROTO_ECHO |
                    GN_NODE_PROTO_PERF;
    cfg.max_connections = 8192;
    cfg.max_connections_per_peer = 8192;
    cfg.transport.max_connections = 8192;
    gn_node *n = NULL;
    int rc = gn_node_new(&cfg, &n);
    if (rc < 0) {
        die("server gn_node_new", rc);
    }
    if ((rc = gn_node_set_handler(n, MSGS_PROTO, srv_msgs_stream, NULL)) < 0) {
        die("server gn_node_set_handler", rc);
    }
    /* every client comes from 127.0.0.1: lift the per-address limits and
     * the water marks, which exist against remote abuse */
    static const struct {
        gn_node_option opt;
        uint64_t value;
    } lift[] = {{GN_NODE_OPT_MAX_CONNECTIONS_PER_IP, 8192},
                {GN_NODE_OPT_MAX_UPGRADING_PER_IP, 8192},
                {GN_NODE_OPT_MAX_UPGRADING, 8192},
                {GN_NODE_OPT_CONN_HIGH_WATER, 0}};
    for (size_t i = 0; i < sizeof lift / sizeof lift[0]; i++) {
        if ((rc = gn_node_configure(n, lift[i].opt, lift[i].value)) < 0) {
            die("server gn_node_configure", rc);
        }
    }
    if ((rc = gn_node_start(n)) < 0) {
        die("server gn_node_start", rc);
    }
    gn_node_event ev;
    while (!srv_stop) {
        gn_loop_run(loop, GN_RUN_ONCE);
        while (gn_node_next_event(n, &ev, 0) == 0) {
            gn_rcbuf_rele(ev.message);
            if (ev.type == GN_NODE_EV_LISTENING) {
                printf("%s\n", ev.addr);
                fflush(stdout);
            } else if (ev.type == GN_NODE_EV_LISTEN_FAILED) {
                die("server listen", ev.status);
            }
        }
    }
    bool closed = false;
    gn_node_close(n, srv_closed, &closed);
    gn_time dl = gn_now() + (5 * GN_S);
    while (!closed && gn_now() < dl) {
        gn_loop_run(loop, GN_RUN_ONCE);
        while (gn_node_next_event(n, &ev, 0) == 0) {
            gn_rcbuf_rele(ev.message);
        }
    }
    if (!closed) {
        _exit(0); /* do not hang on the way out */
    }
    gn_node_free(n);
    gn_timer_stop(&parent_check);
    gn_timer_stop(&watchdog);
    gn_loop_stop(loop);
    for (int i = 0; i < 1000 && gn_loop_run(loop, GN_RUN_NOWAIT) != 0; i++) {
    }
    gn_loop_free(loop);
    gn_registry_free(reg);
    return 0;
}

/* ======================================================================
 * Server processes (parent side)
 */

typedef struct server {
    pid_t pid;
    int in_fd;  /* the child's stdin: closing it asks the child to exit */
    int out_fd; /* the child's stdout */
    char addr[GN_NODE_ADDR_MAX];
} server;

#define MAX_SERVERS 4
static server *servers[MAX_SERVERS];

static void on_signal(int sig)
{
    for (int i = 0; i < MAX_SERVERS; i++) {
        if (servers[i] && servers[i]->pid > 0) {
            kill(servers[i]->pid, SIGKILL);
        }
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static void server_stop(server *sv)
{
    if (sv->pid <= 0) {
        return;
    }
    close(sv->in_fd);
    close(sv->out_fd);
    int st;
    pid_t r = 0;
    for (int i = 0; i < 300 && (r = waitpid(sv->pid, &st, WNOHANG)) == 0; i++) {
        usleep(10000); /* up to 3 s for a clean exit */
    }
    if (r == 0) {
        kill(sv->pid, SIGKILL);
        waitpid(sv->pid, &st, 0);
    }
    sv->pid = -1;
    for (int i = 0; i < MAX_SERVERS; i++) {
        if (servers[i] == sv) {
            servers[i] = NULL;
        }
    }
}

static void kill_servers(void)
{
    for (int i = 0; i < MAX_SERVERS; i++) {
        if (servers[i]) {
            server_stop(servers[i]);
        }
    }
}

static void server_start(server *sv)
{
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0) {
        die("pipe", 0);
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        die("fork", 0);
    }
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        const char *wrap = getenv("BENCH_NODE_SERVER_WRAPPER");
        if (wrap && *wrap) {
            /* profiling: e.g. BENCH_NODE_SERVER_WRAPPER="valgrind --tool=massif" */
            char *args[] = {"sh",         "-c", "exec $BENCH_NODE_SERVER_WRAPPER \"$0\" \"$@\"",
                            self_path,    "--serve", "--security", (char *)opt.security,
                            "--muxer",    (char *)opt.muxer, NULL};
            execv("/bin/sh", args);
        } else {
            char *args[] = {"bench_node", "--serve", "--security", (char *)opt.security,
                            "--muxer", (char *)opt.muxer, NULL};
            execv(self_path, args);
        }
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    sv->pid = pid;
    sv->in_fd = in[1];
    sv->out_fd = out[0];
    for (int i = 0; i < MAX_SERVERS; i++) {
        if (!servers[i]) {
            servers[i] = sv;
            break;
        }
    }
    /* the first line is the listen address; 10 s at most */
    size_t got = 0;
    gn_time dl = gn_now() + (10 * GN_S);
    while (gn_now() < dl) {
        struct pollfd p = {.fd = sv->out_fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0) {
            continue;
        }
        ssize_t r = read(sv->out_fd, sv->addr + got, 1);
        if (r <= 0) {
            break;
        }
        if (sv->addr[got] == '\n') {
            sv->addr[got] = 0;
            return;
        }
        if (++got >= sizeof sv->addr - 1) {
            break;
        }
    }
    die("the server did not print its address", 0);
}

static bool read_status(pid_t pid, long *vmrss_kib, long *rssanon_kib)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f) {
        return false;
    }
    *vmrss_kib = *rssanon_kib = -1;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "VmRSS:", 6)) {
            *vmrss_kib = strtol(line + 6, NULL, 10);
        } else if (!strncmp(line, "RssAnon:", 8)) {
            *rssanon_kib = strtol(line + 8, NULL, 10);
        }
    }
    fclose(f);
    return *vmrss_kib >= 0;
}

/* CPU seconds (user + system) a process used so far; -1 when unknown. */
static double cpu_secs(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f) {
        return -1;
    }
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p) {
        return -1;
    }
    /* after ") ": state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15) */
    unsigned long long ut = 0, st = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) {
        return -1;
    }
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* CPU used by this process and the server during a phase. */
typedef struct cpu_mark {
    pid_t srv;
    double cli0, srv0;
} cpu_mark;

static cpu_mark cpu_start(pid_t srv)
{
    cpu_mark m = {srv, cpu_secs(getpid()), cpu_secs(srv)};
    return m;
}

/* Prints ,"client_cpu_s":..,"server_cpu_s":.. (CPU seconds during the phase). */
static void cpu_print(const cpu_mark *m)
{
    printf(",\"client_cpu_s\":%.2f,\"server_cpu_s\":%.2f", cpu_secs(getpid()) - m->cli0,
           cpu_secs(m->srv) - m->srv0);
}

/* Resident KiB by kind of mapping, from /proc/PID/smaps: the brk heap
 * (glibc's main arena), other anonymous mappings (thread arenas, large
 * malloc blocks, libsodium's guarded sodium_malloc() regions, stacks) and
 * file-backed ones (the binary and libraries). */
typedef struct rss_split {
    long heap, anon, file;
} rss_split;

static bool read_smaps(pid_t pid, rss_split *out)
{
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%ld/smaps", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f) {
        return false;
    }
    memset(out, 0, sizeof *out);
    long *cur = &out->anon;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "Rss:", 4)) {
            *cur += strtol(line + 4, NULL, 10);
            continue;
        }
        /* a mapping header: "start-end perms offset dev inode [path]" */
        unsigned long a, b;
        char perms[8];
        int off = 0;
        if (sscanf(line, "%lx-%lx %7s %*s %*s %*s%n", &a, &b, perms, &off) == 3) {
            const char *name = line + off;
            while (*name == ' ') {
                name++;
            }
            if (!strncmp(name, "[heap]", 6)) {
                cur = &out->heap;
            } else if (*name == '/') {
                cur = &out->file;
            } else {
                cur = &out->anon;
            }
        }
    }
    fclose(f);
    return true;
}

/* Lines of /proc/PID/maps: the process's memory mappings (VMAs). */
static long count_maps(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/maps", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f) {
        return -1;
    }
    long k = 0;
    int c;
    while ((c = fgetc(f)) != EOF) {
        k += c == '\n';
    }
    fclose(f);
    return k;
}

static long count_fds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/fd", (long)pid);
    DIR *d = opendir(path);
    if (!d) {
        return -1;
    }
    long k = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] != '.') {
            k++;
        }
    }
    closedir(d);
    return k;
}

/* ======================================================================
 * Client nodes
 */

typedef struct cnode {
    gn_node *n;
    gn_channel *ch;   /* held while dialed */
    uint64_t ch_id;
    bool have_ch;
    bool dial_done;
    int dial_status;
    bool identified;
    int identify_status;
    bool ch_closed;
    bool node_closed;
} cnode;

static cnode **nodes;
static size_t n_nodes, cap_nodes;

static void drain_events(void)
{
    gn_node_event ev;
    for (size_t i = 0; i < n_nodes; i++) {
        cnode *c = nodes[i];
        if (!c || c->node_closed) {
            continue;
        }
        while (gn_node_next_event(c->n, &ev, 0) == 0) {
            gn_rcbuf_rele(ev.message);
            switch (ev.type) {
            case GN_NODE_EV_IDENTIFY:
                if (c->have_ch && ev.channel_id == c->ch_id) {
                    c->identified = true;
                    c->identify_status = ev.status;
                }
                break;
            case GN_NODE_EV_CHANNEL_CLOSED:
                if (c->have_ch && ev.channel_id == c->ch_id) {
                    c->ch_closed = true;
                }
                break;
            case GN_NODE_EV_CLOSED:
                c->node_closed = true;
                break;
            default:
                break;
            }
            if (c->node_closed) {
                break;
            }
        }
    }
}

/* Runs the loop until *@done or @max_s seconds; false on timeout. */
static bool run_until(const bool *done, double max_s)
{
    gn_time dl = gn_now() + (gn_time)(max_s * 1e9);
    while (!*done) {
        if (gn_now() > dl) {
            return false;
        }
        gn_loop_run(loop, GN_RUN_ONCE);
        drain_events();
    }
    return true;
}

static void run_for(double s)
{
    bool never = false;
    (void)run_until(&never, s);
}

static cnode *cnode_new(uint32_t protocols, size_t evq)
{
    cnode *c = calloc(1, sizeof *c);
    if (!c) {
        die("calloc", GN_ENOMEM);
    }
    gn_node_config cfg;
    base_config(&cfg);
    cfg.protocols = protocols;
    cfg.event_queue_capacity = evq;
    int rc = gn_node_new(&cfg, &c->n);
    if (rc < 0) {
        die("gn_node_new", rc);
    }
    if ((rc = gn_node_start(c->n)) < 0) {
        die("gn_node_start", rc);
    }
    if (n_nodes == cap_nodes) {
        cap_nodes = cap_nodes ? cap_nodes * 2 : 8;
        cnode **nn = realloc(nodes, cap_nodes * sizeof *nn);
        if (!nn) {
            die("realloc", GN_ENOMEM);
        }
        nodes = nn;
    }
    nodes[n_nodes++] = c;
    return c;
}

static void cnode_closed_cb(gn_node *n, void *arg)
{
    (void)n, (void)arg;
}

/* Closes and frees every client node (bounded). */
static void cnodes_free_all(void)
{
    for (size_t i = 0; i < n_nodes; i++) {
        if (nodes[i]->ch) {
            gn_channel_rele(nodes[i]->ch);
            nodes[i]->ch = NULL;
        }
        gn_node_close(nodes[i]->n, cnode_closed_cb, NULL);
    }
    gn_time dl = gn_now() + (30 * GN_S);
    for (;;) {
        size_t open = 0;
        for (size_t i = 0; i < n_nodes; i++) {
            open += !nodes[i]->node_closed;
        }
        if (open == 0 || gn_now() > dl) {
            if (open) {
                fprintf(stderr, "bench_node: %zu client nodes did not close\n", open);
            }
            break;
        }
        gn_loop_run(loop, GN_RUN_ONCE);
        drain_events();
    }
    for (size_t i = 0; i < n_nodes; i++) {
        if (nodes[i]->node_closed) {
            gn_node_free(nodes[i]->n);
        }
        free(nodes[i]);
    }
    n_nodes = 0;
}

static void dial_cb(void *arg, int status, gn_channel *ch)
{
    cnode *c = arg;
    c->dial_done = true;
    c->dial_status = status;
    if (status == 0) {
        gn_channel_info info;
        gn_channel_state_get(ch, &info);
        c->ch = gn_channel_hold(ch);
        c->ch_id = info.id;
        c->have_ch = true;
    }
}

static void cnode_dial(cnode *c, const char *addr)
{
    c->dial_done = c->identified = c->ch_closed = c->have_ch = false;
    int rc = gn_node_dial(c->n, addr, dial_cb, c, NULL);
    if (rc < 0) {
        die("gn_node_dial", rc);
    }
}

/* Dials and waits for the identify result. */
static void cnode_connect(cnode *c, const char *addr)
{
    cnode_dial(c, addr);
    if (!run_until(&c->dial_done, 20) || c->dial_status < 0) {
        die("dial", c->dial_status);
    }
    if (!run_until(&c->identified, 20) || c->identify_status < 0) {
        die("identify", c->identify_status);
    }
}

/* ---- opening a stream and waiting -------------------------------------- */

typedef struct opener {
    bool done;
    int status;
    gn_stream *s;
} opener;

static void opener_cb(void *arg, int status, gn_stream *s)
{
    opener *o = arg;
    o->done = true;
    o->status = status;
    o->s = s;
}

static gn_stream *open_stream(gn_channel *ch, const char *proto)
{
    opener o = {0};
    int rc = gn_channel_open_stream(ch, proto, opener_cb, &o);
    if (rc < 0) {
        die("gn_channel_open_stream", rc);
    }
    if (!run_until(&o.done, 20) || o.status < 0) {
        die(proto, o.status);
    }
    return o.s;
}

static bool stream_closed_flag;

static void stream_closed(gn_stream *s, void *arg)
{
    (void)s;
    *(bool *)arg = true;
}

static const char *verdict(bool met)
{
    return met ? "true" : "false";
}

static void print_info(const char *sec, const char *mux)
{
    printf("{\"bench\":\"info\",\"golemnet\":\"%s\",\"transport\":\"tcp\",\"addr\":\"127.0.0.1\","
           "\"security\":\"%s\",\"muxer\":\"%s\",\"processes\":2,\"cores\":%ld}\n",
           gn_version(), sec, mux, sysconf(_SC_NPROCESSORS_ONLN));
    fflush(stdout);
}

/* ======================================================================
 * 1. bulk
 */

static uint8_t *wbuf;

typedef struct bulk {
    gn_stream *s;
    uint64_t to_send;
    int inflight;
    bool shut;
    bool done;
    int err;
    uint64_t rx;
    gn_time t0, t1;
    uint8_t hdr[8];
} bulk;

static void bulk_pump(bulk *b);

static void bulk_written(void *arg, int status)
{
    bulk *b = arg;
    b->inflight--;
    if (status < 0 && !b->err) {
        b->err = status;
        b->done = true;
    }
    bulk_pump(b);
}

static void bulk_pump(bulk *b)
{
    while (!b->err && !b->shut && b->inflight < INFLIGHT) {
        if (b->to_send == 0) {
            int rc = gn_stream_shutdown(b->s);
            if (rc < 0) {
                b->err = rc;
                b->done = true;
            }
            b->shut = true;
            return;
        }
        size_t n = b->to_send < opt.write_len ? (size_t)b->to_send : opt.write_len;
        gn_slice sl = gn_slice_of(wbuf, n);
        int rc = gn_stream_write(b->s, &sl, 1, bulk_written, b);
        if (rc == GN_EAGAIN) {
            return; /* on_writable resumes */
        }
        if (rc < 0) {
            b->err = rc;
            b->done = true;
            return;
        }
        b->inflight++;
        b->to_send -= n;
    }
}

static void bulk_data(gn_stream *s, void *ud, const uint8_t *d, size_t n)
{
    (void)s, (void)d;
    ((bulk *)ud)->rx += n;
}

static void bulk_eof(gn_stream *s, void *ud)
{
    (void)s;
    bulk *b = ud;
    b->t1 = gn_now();
    b->done = true;
}

static void bulk_error(gn_stream *s, void *ud, int err)
{
    (void)s;
    bulk *b = ud;
    b->err = err;
    b->done = true;
}

static void bulk_writable(gn_stream *s, void *ud)
{
    (void)s;
    bulk_pump(ud);
}

static const gn_stream_handler bulk_handler = {.on_data = bulk_data,
                                               .on_eof = bulk_eof,
                                               .on_error = bulk_error,
                                               .on_writable = bulk_writable};

static void bench_bulk(gn_channel *ch)
{
    bulk b;
    memset(&b, 0, sizeof b);
    b.to_send = opt.bulk_mib << 20;
    b.s = open_stream(ch, PERF_PROTO);
    gn_stream_set_handler(b.s, &bulk_handler, &b);
    int rc = gn_stream_read_start(b.s);
    if (rc < 0) {
        die("read_start", rc);
    }
    /* the request: download 0 bytes (one write, before any payload) */
    gn_slice sl = gn_slice_of(b.hdr, sizeof b.hdr);
    b.t0 = gn_now();
    if ((rc = gn_stream_write(b.s, &sl, 1, bulk_written, &b)) < 0) {
        die("perf header", rc);
    }
    b.inflight++;
    cpu_mark cm = cpu_start(main_srv_pid);
    bulk_pump(&b);
    bool ok = run_until(&b.done, opt.max_s);
    if (!ok || b.err) {
        die("bulk", ok ? b.err : GN_ETIMEDOUT);
    }
    stream_closed_flag = false;
    gn_stream_close(b.s, stream_closed, &stream_closed_flag);
    run_until(&stream_closed_flag, 10);
    uint64_t bytes = opt.bulk_mib << 20;
    double s = secs(b.t0, b.t1);
    double mbs = (double)bytes / 1e6 / s;
    printf("{\"bench\":\"node\",\"test\":\"bulk\",\"protocol\":\"%s\",\"bytes\":%llu,"
           "\"write_len\":%zu,\"seconds\":%.3f,\"mb_per_s\":%.1f,\"goal_mb_per_s\":%.0f,"
           "\"goal_met\":%s,\"js_libp2p_mb_per_s\":%.0f",
           PERF_PROTO, (unsigned long long)bytes, opt.write_len, s, mbs, GOAL_MBS,
           verdict(mbs >= GOAL_MBS), JS_MBS);
    cpu_print(&cm);
    printf("}\n");
    fflush(stdout);
}

/* ======================================================================
 * 2. 64-byte messages
 */

static uint8_t msg_hdr = MSG_LEN; /* the uvarint of 64: one byte */
static uint8_t (*payloads)[MSG_LEN];
static gn_slice *msg_iov;

typedef struct msgs {
    gn_stream *s;
    uint64_t to_send;
    int inflight;
    bool shut;
    bool done;
    int err;
    uint8_t reply[24];
    size_t reply_len;
    gn_time t0, t1;
} msgs;

static void msgs_pump(msgs *m);

static void msgs_written(void *arg, int status)
{
    msgs *m = arg;
    m->inflight--;
    if (status < 0 && !m->err) {
        m->err = status;
        m->done = true;
    }
    msgs_pump(m);
}

static void msgs_pump(msgs *m)
{
    while (!m->err && !m->shut && m->inflight < INFLIGHT) {
        if (m->to_send == 0) {
            int rc = gn_stream_shutdown(m->s);
            if (rc < 0) {
                m->err = rc;
                m->done = true;
            }
            m->shut = true;
            return;
        }
        size_t k = m->to_send < opt.batch ? (size_t)m->to_send : opt.batch;
        int rc = gn_stream_write(m->s, msg_iov, 2 * k, msgs_written, m);
        if (rc == GN_EAGAIN) {
            return;
        }
        if (rc < 0) {
            m->err = rc;
            m->done = true;
            return;
        }
        m->inflight++;
        m->to_send -= k;
    }
}

static void msgs_data(gn_stream *s, void *ud, const uint8_t *d, size_t n)
{
    (void)s;
    msgs *m = ud;
    size_t take = sizeof m->reply - m->reply_len;
    take = n < take ? n : take;
    memcpy(m->reply + m->reply_len, d, take);
    m->reply_len += take;
}

static void msgs_eof(gn_stream *s, void *ud)
{
    (void)s;
    msgs *m = ud;
    m->t1 = gn_now();
    m->done = true;
}

static void msgs_error(gn_stream *s, void *ud, int err)
{
    (void)s;
    msgs *m = ud;
    m->err = err;
    m->done = true;
}

static void msgs_writable(gn_stream *s, void *ud)
{
    (void)s;
    msgs_pump(ud);
}

static const gn_stream_handler msgs_handler = {.on_data = msgs_data,
                                               .on_eof = msgs_eof,
                                               .on_error = msgs_error,
                                               .on_writable = msgs_writable};

static void bench_msgs(gn_channel *ch)
{
    msgs m;
    memset(&m, 0, sizeof m);
    m.to_send = opt.msgs;
    m.s = open_stream(ch, MSGS_PROTO);
    gn_stream_set_handler(m.s, &msgs_handler, &m);
    int rc = gn_stream_read_start(m.s);
    if (rc < 0) {
        die("read_start", rc);
    }
    cpu_mark cm = cpu_start(main_srv_pid);
    m.t0 = gn_now();
    msgs_pump(&m);
    bool ok = run_until(&m.done, opt.max_s);
    if (!ok || m.err) {
        die("msgs", ok ? m.err : GN_ETIMEDOUT);
    }
    if (m.reply_len != sizeof m.reply) {
        die("msgs: short reply", GN_EPROTO);
    }
    stream_closed_flag = false;
    gn_stream_close(m.s, stream_closed, &stream_closed_flag);
    run_until(&stream_closed_flag, 10);
    uint64_t count = get64(m.reply), bytes = get64(m.reply + 8);
    double srv_s = (double)get64(m.reply + 16) / 1e9;
    if (count != opt.msgs) {
        fprintf(stderr, "bench_node: msgs: the server counted %llu of %llu\n",
                (unsigned long long)count, opt.msgs);
        die("msgs", GN_EPROTO);
    }
    double s = secs(m.t0, m.t1);
    double rate = (double)count / s;
    printf("{\"bench\":\"node\",\"test\":\"msgs\",\"msg_len\":%u,\"framing\":\"uvarint\","
           "\"messages\":%llu,\"per_write\":%lu,\"bytes\":%llu,\"seconds\":%.3f,"
           "\"msgs_per_s\":%.0f,\"receiver_msgs_per_s\":%.0f,\"goal_msgs_per_s\":%.0f,"
           "\"goal_met\":%s,\"js_libp2p_msgs_per_s\":%.0f",
           MSG_LEN, (unsigned long long)count, opt.batch, (unsigned long long)bytes, s, rate,
           srv_s > 0 ? (double)count / srv_s : 0.0, GOAL_MSGS, verdict(rate >= GOAL_MSGS),
           JS_MSGS);
    cpu_print(&cm);
    printf("}\n");
    fflush(stdout);
}

/* ======================================================================
 * 3. sequential dials
 */

/* Time spent in each step of the timed dials (ns, summed). */
static gn_time dial_t_upgrade, dial_t_identify, dial_t_close;

static void one_dial(cnode *c, const char *addr)
{
    gn_time t0 = gn_now();
    cnode_dial(c, addr);
    if (!run_until(&c->dial_done, 20) || c->dial_status < 0) {
        die("dial", c->dial_status);
    }
    gn_time t1 = gn_now();
    if (!run_until(&c->identified, 20) || c->identify_status < 0) {
        die("identify", c->identify_status);
    }
    gn_time t2 = gn_now();
    gn_channel_close(c->ch);
    if (!run_until(&c->ch_closed, 20)) {
        die("dial: channel close", GN_ETIMEDOUT);
    }
    gn_channel_rele(c->ch);
    c->ch = NULL;
    gn_time t3 = gn_now();
    dial_t_upgrade += t1 - t0;
    dial_t_identify += t2 - t1;
    dial_t_close += t3 - t2;
}

static void bench_dials(const char *addr)
{
    cnode *c = cnode_new(GN_NODE_PROTO_DEFAULT, 256);
    unsigned long warm = opt.dials / 20 + 1;
    for (unsigned long i = 0; i < warm; i++) {
        one_dial(c, addr);
    }
    dial_t_upgrade = dial_t_identify = dial_t_close = 0;
    cpu_mark cm = cpu_start(main_srv_pid);
    gn_time t0 = gn_now(), dl = t0 + (gn_time)(opt.max_s * 1e9);
    unsigned long done = 0;
    for (; done < opt.dials && gn_now() < dl; done++) {
        one_dial(c, addr);
    }
    double s = secs(t0, gn_now());
    double rate = (double)done / s;
    printf("{\"bench\":\"node\",\"test\":\"dials\",\"steps\":\"tcp+ms+handshake+muxer+identify+"
           "close\",\"dials\":%lu,\"seconds\":%.3f,\"dials_per_s\":%.0f,\"goal_dials_per_s\":%.0f,"
           "\"goal_met\":%s,\"js_libp2p_dials_per_s\":%.0f%s",
           done, s, rate, GOAL_DIALS, verdict(rate >= GOAL_DIALS), JS_DIALS,
           done < opt.dials ? ",\"time_bound_hit\":true" : "");
    /* mean time from gn_node_dial() to the dial callback (channel open), from
     * there to the identify result, and from gn_channel_close() to CLOSED */
    double k = done ? 1e6 * (double)done : 1.0;
    printf(",\"upgrade_ms\":%.3f,\"identify_ms\":%.3f,\"close_ms\":%.3f",
           (double)dial_t_upgrade / k, (double)dial_t_identify / k, (double)dial_t_close / k);
    cpu_print(&cm);
    printf("}\n");
    fflush(stdout);
}

/* ======================================================================
 * 4. sequential stream opens
 */

typedef struct sopen {
    gn_channel *ch;
    unsigned long target, done;
    gn_stream *s;
    bool got;
    bool finished;
    int err;
    gn_time dl;
} sopen;

static uint8_t one_byte = 0x5a;

static void so_next(sopen *so);

static void so_closed(gn_stream *s, void *arg)
{
    (void)s;
    sopen *so = arg;
    so->s = NULL;
    so->done++;
    so_next(so);
}

static void so_data(gn_stream *s, void *ud, const uint8_t *d, size_t n)
{
    sopen *so = ud;
    if (so->got) {
        return;
    }
    so->got = true;
    if (n != 1 || d[0] != one_byte) {
        so->err = GN_EPROTO;
    }
    gn_stream_close(s, so_closed, so);
}

static void so_error(gn_stream *s, void *ud, int err)
{
    sopen *so = ud;
    so->err = err;
    if (!so->got) {
        so->got = true;
        gn_stream_close(s, so_closed, so);
    }
}

static const gn_stream_handler so_handler = {.on_data = so_data, .on_error = so_error};

static void so_written(void *arg, int status)
{
    sopen *so = arg;
    if (status < 0 && status != GN_ECANCELED && !so->err) {
        so->err = status;
    }
}

static void so_opened(void *arg, int status, gn_stream *s)
{
    sopen *so = arg;
    if (status < 0) {
        so->err = status;
        so->finished = true;
        return;
    }
    so->s = s;
    so->got = false;
    gn_stream_set_handler(s, &so_handler, so);
    gn_slice sl = gn_slice_of(&one_byte, 1);
    int rc = gn_stream_read_start(s);
    if (rc == 0) {
        rc = gn_stream_write(s, &sl, 1, so_written, so);
    }
    if (rc < 0) {
        so->err = rc;
        so->got = true;
        gn_stream_close(s, so_closed, so);
    }
}

static void so_next(sopen *so)
{
    if (so->err || so->done >= so->target || gn_now() > so->dl) {
        so->finished = true;
        return;
    }
    int rc = gn_channel_open_stream(so->ch, ECHO_PROTO, so_opened, so);
    if (rc < 0) {
        so->err = rc;
        so->finished = true;
    }
}

static unsigned long run_opens(gn_channel *ch, unsigned long n, gn_time *elapsed)
{
    sopen so;
    memset(&so, 0, sizeof so);
    so.ch = ch;
    so.target = n;
    gn_time t0 = gn_now();
    so.dl = t0 + (gn_time)(opt.max_s * 1e9);
    so_next(&so);
    if (!run_until(&so.finished, opt.max_s + 20) || so.err) {
        die("streams", so.err ? so.err : GN_ETIMEDOUT);
    }
    *elapsed = gn_now() - t0;
    return so.done;
}

static void bench_streams(gn_channel *ch)
{
    gn_time el;
    (void)run_opens(ch, opt.streams / 20 + 1, &el); /* warm-up */
    cpu_mark cm = cpu_start(main_srv_pid);
    unsigned long done = run_opens(ch, opt.streams, &el);
    double s = (double)el / 1e9;
    double rate = (double)done / s;
    printf("{\"bench\":\"node\",\"test\":\"streams\",\"steps\":\"open+ms(%s)+1-byte echo+close\","
           "\"streams\":%lu,\"seconds\":%.3f,\"streams_per_s\":%.0f,\"goal_streams_per_s\":%.0f,"
           "\"goal_met\":%s,\"js_libp2p_streams_per_s\":%.0f%s",
           ECHO_PROTO, done, s, rate, GOAL_STREAMS, verdict(rate >= GOAL_STREAMS), JS_STREAMS,
           done < opt.streams ? ",\"time_bound_hit\":true" : "");
    cpu_print(&cm);
    printf("}\n");
    fflush(stdout);
}

/* ======================================================================
 * 5. RSS per idle connection
 */

static void bench_rss(void)
{
    server sv;
    memset(&sv, 0, sizeof sv);
    server_start(&sv);
    run_for(0.3);
    long rss0, anon0, rss1, anon1;
    if (!read_status(sv.pid, &rss0, &anon0)) {
        die("read /proc/PID/status", 0);
    }
    long fds0 = count_fds(sv.pid), maps0 = count_maps(sv.pid);
    rss_split sp0, sp1;
    if (!read_smaps(sv.pid, &sp0)) {
        memset(&sp0, 0, sizeof sp0);
    }

    size_t first = n_nodes;
    for (unsigned long i = 0; i < opt.conns; i++) {
        cnode_new(GN_NODE_PROTO_IDENTIFY, 16);
    }
    /* dial with at most 32 attempts outstanding */
    size_t next = first, identified = 0;
    gn_time dl = gn_now() + (gn_time)(opt.max_s * 1e9);
    while (identified < opt.conns) {
        if (gn_now() > dl) {
            fprintf(stderr, "bench_node: rss: %zu of %lu connections identified\n", identified,
                    opt.conns);
            die("rss", GN_ETIMEDOUT);
        }
        size_t outstanding = 0;
        identified = 0;
        for (size_t i = first; i < next; i++) {
            cnode *c = nodes[i];
            if (c->dial_done && c->dial_status < 0) {
                die("rss dial", c->dial_status);
            }
            if (c->identified && c->identify_status < 0) {
                die("rss identify", c->identify_status);
            }
            identified += c->identified;
            outstanding += !c->identified;
        }
        while (outstanding < 32 && next < n_nodes) {
            cnode_dial(nodes[next++], sv.addr);
            outstanding++;
        }
        gn_loop_run(loop, GN_RUN_ONCE);
        drain_events();
    }
    run_for(0.5); /* let both sides settle (the server's identify requests) */
    if (!read_status(sv.pid, &rss1, &anon1)) {
        die("read /proc/PID/status", 0);
    }
    long fds1 = count_fds(sv.pid), maps1 = count_maps(sv.pid);
    if (!read_smaps(sv.pid, &sp1)) {
        memset(&sp1, 0, sizeof sp1);
    }
    double per = (double)(rss1 - rss0) / (double)opt.conns;
    double per_anon = (double)(anon1 - anon0) / (double)opt.conns;
    printf("{\"bench\":\"node\",\"test\":\"rss\",\"connections\":%lu,\"server_fds_added\":%ld,"
           "\"server_mappings_added\":%ld,"
           "\"vmrss_before_kib\":%ld,\"vmrss_after_kib\":%ld,\"rssanon_before_kib\":%ld,"
           "\"rssanon_after_kib\":%ld,\"kib_per_conn\":%.2f,\"anon_kib_per_conn\":%.2f,"
           "\"heap_kib_per_conn\":%.2f,\"other_anon_kib_per_conn\":%.2f,"
           "\"goal_kib_per_conn\":%.0f,\"goal_met\":%s}\n",
           opt.conns, fds1 - fds0, maps1 - maps0, rss0, rss1, anon0, anon1, per, per_anon,
           (double)(sp1.heap - sp0.heap) / (double)opt.conns,
           (double)(sp1.anon - sp0.anon) / (double)opt.conns, GOAL_KIB_PER_CONN,
           verdict(per <= GOAL_KIB_PER_CONN));
    fflush(stdout);
    cnodes_free_all();
    server_stop(&sv);
}

/* ======================================================================
 * main
 */

static bool parse_num(const char *s, unsigned long long max, unsigned long long *out)
{
    if (!s || !*s || *s == '-') {
        return false;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v == 0 || v > max) {
        return false;
    }
    *out = v;
    return true;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_node [--security noise|ecies] [--muxer yamux|mplex]\n"
            "                  [--section all|bulk|msgs|dials|streams|rss] [--bulk-mib N]\n"
            "                  [--msgs N] [--dials N] [--streams N] [--conns N]\n"
            "                  [--write-kib N] [--batch N] [--max-seconds S]\n"
            "       bench_node --serve [--security S] [--muxer M]\n");
    exit(2);
}

static bool want(const char *section)
{
    return !strcmp(opt.section, "all") || !strcmp(opt.section, section);
}

int main(int argc, char **argv)
{
    bool srv = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        unsigned long long x = 0;
        if (!strcmp(a, "--serve")) {
            srv = true;
            continue;
        }
        if (!v) {
            usage();
        }
        i++;
        if (!strcmp(a, "--security")) {
            opt.security = v;
        } else if (!strcmp(a, "--muxer")) {
            opt.muxer = v;
        } else if (!strcmp(a, "--section")) {
            opt.section = v;
        } else if (!strcmp(a, "--bulk-mib") && parse_num(v, 1u << 20, &x)) {
            opt.bulk_mib = x;
        } else if (!strcmp(a, "--msgs") && parse_num(v, 1ull << 40, &x)) {
            opt.msgs = x;
        } else if (!strcmp(a, "--dials") && parse_num(v, 10000000, &x)) {
            opt.dials = (unsigned long)x;
        } else if (!strcmp(a, "--streams") && parse_num(v, 100000000, &x)) {
            opt.streams = (unsigned long)x;
        } else if (!strcmp(a, "--conns") && parse_num(v, 10000, &x)) {
            opt.conns = (unsigned long)x;
        } else if (!strcmp(a, "--write-kib") && parse_num(v, 16384, &x)) {
            opt.write_len = (size_t)x << 10;
        } else if (!strcmp(a, "--batch") && parse_num(v, MAX_BATCH, &x)) {
            opt.batch = (unsigned long)x;
        } else if (!strcmp(a, "--max-seconds") && parse_num(v, 3600, &x)) {
            opt.max_s = (double)x;
        } else {
            usage();
        }
    }
    if (srv) {
        return serve();
    }
    if (!want("bulk") && !want("msgs") && !want("dials") && !want("streams") && !want("rss")) {
        usage();
    }
    ssize_t pl = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
    if (pl > 0) {
        self_path[pl] = 0;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    raise_nofile(65536);

    wbuf = calloc(1, opt.write_len);
    payloads = calloc(opt.batch, MSG_LEN);
    msg_iov = calloc(2 * opt.batch, sizeof *msg_iov);
    if (!wbuf || !payloads || !msg_iov) {
        die("calloc", GN_ENOMEM);
    }
    for (size_t i = 0; i < opt.write_len; i++) {
        wbuf[i] = (uint8_t)(i * 131u);
    }
    for (size_t i = 0; i < opt.batch; i++) {
        memset(payloads[i], (int)(i & 0xff), MSG_LEN);
        msg_iov[2 * i] = gn_slice_of(&msg_hdr, 1);
        msg_iov[2 * i + 1] = gn_slice_of(payloads[i], MSG_LEN);
    }

    loop_setup();
    server sv;
    memset(&sv, 0, sizeof sv);
    bool main_server = want("bulk") || want("msgs") || want("dials") || want("streams");
    if (main_server) {
        server_start(&sv);
        fprintf(stderr, "bench_node: server %ld at %s\n", (long)sv.pid, sv.addr);
        main_srv_pid = sv.pid;
        cnode *a = cnode_new(GN_NODE_PROTO_DEFAULT, 1024);
        cnode_connect(a, sv.addr);
        gn_channel_info info;
        gn_channel_state_get(a->ch, &info);
        print_info(info.security, info.muxer);
        if (want("bulk")) {
            bench_bulk(a->ch);
        }
        if (want("msgs")) {
            bench_msgs(a->ch);
        }
        if (want("streams")) {
            bench_streams(a->ch);
        }
        if (want("dials")) {
            bench_dials(sv.addr);
        }
        cnodes_free_all();
        server_stop(&sv);
    }
    if (want("rss")) {
        if (!main_server) {
            print_info(opt.security, opt.muxer);
        }
        bench_rss();
    }
    gn_timer_stop(&watchdog);
    gn_loop_stop(loop);
    for (int i = 0; i < 1000 && gn_loop_run(loop, GN_RUN_NOWAIT) != 0; i++) {
    }
    gn_loop_free(loop);
    gn_registry_free(reg);
    free(wbuf);
    free(payloads);
    free(msg_iov);
    free(nodes);
    return 0;
}
