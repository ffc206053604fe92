/*
 * "golemnet share FILE" and "golemnet fetch CID": resource transfer from the
 * command line (issue 19; docs/transfer.md). A node on its own loop thread;
 * the transfer calls run on that loop (gn_loop_submit), their callbacks
 * print; the main thread prints the listening addresses and waits for the
 * end or a signal.
 */
#include "golemnet/golemnet.h"
#include "golemnet/transfer.h"

#include "cli.h"

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define XC_MAX 64u

const char cmd_share_help[] =
    "usage: golemnet share FILE [--listen MA]... [--bootstrap-kad MA/p2p/ID]... [options]\n"
    "Shares FILE under its content address (a CIDv1, printed first) and serves it on\n"
    "/golem/transfer/1.0.0 until killed (SIGINT/SIGTERM). With --bootstrap-kad it also\n"
    "announces itself as a provider in the DHT, so 'golemnet fetch CID' needs no --from.\n"
    "  --listen MA                   listen address (repeatable; default /ip4/0.0.0.0/tcp/0)\n"
    "  --bootstrap-kad MA/p2p/ID     a Kademlia bootstrap peer (repeatable)\n"
    "  --option COMPONENT.KEY=VALUE  a component option (repeatable), e.g. kad.mode=server\n"
    "  --no-provide                  do not announce in the DHT\n"
    "  --json                        JSON lines on stdout\n"
    "Output: 'shared cid=... size=... file=...', then 'listening addr=MA/p2p/ID' per\n"
    "address, 'provided status=...' after the DHT announcement.\n";

const char cmd_fetch_help[] =
    "usage: golemnet fetch CID [--from MA/p2p/ID]... [-o PATH] [options]\n"
    "Downloads the resource CID to PATH (default: ./CID), verifying every chunk. Without\n"
    "--from, providers are found in the DHT (needs --bootstrap-kad). Interrupted\n"
    "downloads (Ctrl-C, kill -9) resume: PATH.part and PATH.part.state stay beside PATH.\n"
    "  --from MA/p2p/ID              a provider (repeatable; up to 64)\n"
    "  -o, --output PATH             where to write the file\n"
    "  --bootstrap-kad MA/p2p/ID     a Kademlia bootstrap peer (repeatable)\n"
    "  --max-providers N             providers to use from the DHT (1..64, default 16)\n"
    "  --memory-chunks N             chunks held in memory at most (4..256, default 48)\n"
    "  --max-rate BYTES              download at most BYTES per second (default: no cap)\n"
    "  --option COMPONENT.KEY=VALUE  a component option (repeatable)\n"
    "  --listen MA                   also listen (none by default)\n"
    "  --timeout S                   give up after S seconds (default: none)\n"
    "  --json                        JSON lines on stdout (progress, peer_up, peer_down,\n"
    "                                peer_banned, done) instead of a progress bar\n"
    "Exit status: 0 the file is complete at PATH; 1 failure (stderr says why); 2 usage.\n";

typedef struct xcli {
    gn_node *node;
    gn_loop *loop;
    bool fetch;
    const char *file, *cid, *out;
    const char *from[XC_MAX];
    size_t n_from;
    bool provide, have_kad;
    size_t max_prov;
    unsigned mem_chunks;
    uint64_t max_rate;
    gn_xfer_fetch *f;
    atomic_int done; /* 0 running; exit status + 1 */
    atomic_int stopped;
    bool tty;
    bool bar_on;
    unsigned provide_tries;
    gn_timer provide_timer;
    char cid_s[GN_XFER_CID_STR_MAX];
} xcli;

static pthread_mutex_t xc_mu = PTHREAD_MUTEX_INITIALIZER;
static volatile sig_atomic_t xc_signal;

static void xc_on_signal(int sig)
{
    xc_signal = sig;
}

__attribute__((format(printf, 2, 3))) static int xc_usage_(const char *help, const char *fmt,
                                                          ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "golemnet: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s", help);
    return 2;
}
#define xc_usage(help, fmt, arg) xc_usage_(help, fmt, arg)

static void bar_clear(xcli *c)
{
    if (c->bar_on) {
        fputs("\r\033[K", stderr);
        c->bar_on = false;
    }
}

static void print_progress(xcli *c, const gn_xfer_progress *p, bool final)
{
    if (cli_json) {
        cli_out_begin("progress");
        cli_out_u64("bytes_done", p->bytes_done);
        cli_out_u64("bytes_total", p->bytes_total);
        cli_out_u64("chunks_done", p->chunks_done);
        cli_out_u64("chunks_total", p->chunks_total);
        cli_out_u64("bytes_resumed", p->bytes_resumed);
        cli_out_u64("bytes_received", p->bytes_received);
        cli_out_u64("rate", p->rate);
        if (p->eta_ms >= 0)
            cli_out_u64("eta_ms", (uint64_t)p->eta_ms);
        cli_out_u64("peers", p->peers);
        cli_out_u64("peers_banned", p->peers_banned);
        cli_out_end();
        return;
    }
    if (!c->tty)
        return;
    char done[32], total[32], rate[32], eta[32] = "--";
    gn_xfer_format_bytes(p->bytes_done, done, sizeof done);
    gn_xfer_format_bytes(p->bytes_total, total, sizeof total);
    gn_xfer_format_bytes(p->rate, rate, sizeof rate);
    if (p->eta_ms >= 0) {
        uint64_t s = (uint64_t)p->eta_ms / 1000;
        if (s >= 3600)
            snprintf(eta, sizeof eta, "%uh%02um", (unsigned)(s / 3600), (unsigned)(s / 60 % 60));
        else
            snprintf(eta, sizeof eta, "%um%02us", (unsigned)(s / 60), (unsigned)(s % 60));
    }
    unsigned pct = p->bytes_total ? (unsigned)(p->bytes_done * 100 / p->bytes_total) : 0;
    if (p->bytes_total == 0 && p->chunks_total == 0 && final)
        pct = 100;
    char bar[31];
    unsigned fill = pct * 30 / 100;
    for (unsigned i = 0; i < 30; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[30] = 0;
    fprintf(stderr, "\r\033[K[%s] %3u%%  %s / %s  %s/s  ETA %s  peers %u%s", bar, pct, done, total,
            rate, eta, p->peers, p->peers_banned ? " (banned some)" : "");
    c->bar_on = true;
    if (final) {
        fputc('\n', stderr);
        c->bar_on = false;
    }
    fflush(stderr);
}

static void fetch_event(void *arg, const gn_xfer_event *ev)
{
    xcli *c = arg;
    pthread_mutex_lock(&xc_mu);
    switch (ev->type) {
    case GN_XFER_EV_PROGRESS:
        print_progress(c, ev->progress, false);
        break;
    case GN_XFER_EV_PEER_UP:
    case GN_XFER_EV_PEER_DOWN:
    case GN_XFER_EV_PEER_BANNED: {
        const char *what = ev->type == GN_XFER_EV_PEER_UP     ? "peer_up"
                           : ev->type == GN_XFER_EV_PEER_DOWN ? "peer_down"
                                                              : "peer_banned";
        if (cli_json || ev->type == GN_XFER_EV_PEER_BANNED) {
            bar_clear(c);
            cli_out_begin(what);
            cli_out_str("peer", ev->peer);
            if (ev->status < 0)
                cli_out_str("status", gn_err_name(ev->status));
            if (ev->detail)
                cli_out_str("detail", ev->detail);
            cli_out_end();
        }
        break;
    }
    case GN_XFER_EV_DONE:
        print_progress(c, ev->progress, true);
        bar_clear(c);
        cli_out_begin("done");
        cli_out_str("cid", c->cid);
        cli_out_str("path", c->out);
        cli_out_str("status", ev->status == 0 ? "ok" : gn_err_name(ev->status));
        cli_out_u64("bytes", ev->progress->bytes_total);
        cli_out_u64("bytes_resumed", ev->progress->bytes_resumed);
        cli_out_u64("bytes_received", ev->progress->bytes_received);
        if (ev->detail)
            cli_out_str("detail", ev->detail);
        cli_out_end();
        if (ev->status < 0)
            fprintf(stderr, "golemnet: fetch %s: %s (%s)%s%s\n", c->cid, gn_strerror(ev->status),
                    gn_err_name(ev->status), ev->detail ? ": " : "",
                    ev->detail ? ev->detail : "");
        c->f = NULL;
        atomic_store(&c->done, ev->status == 0 ? 1 : 2);
        break;
    }
    pthread_mutex_unlock(&xc_mu);
}

static void provided(void *arg, int status);

static void provide_again(gn_timer *t, void *arg)
{
    (void)t;
    xcli *c = arg;
    int rc = gn_xfer_provide(c->node, c->cid_s, provided, c);
    if (rc < 0)
        provided(c, rc);
}

static void provided(void *arg, int status)
{
    xcli *c = arg;
    /* no DHT peer yet (the bootstrap connection is still being made): retry
     * every 500 ms for up to 10 s */
    if (status == GN_ENOROUTE && c->provide_tries++ < 20) {
        gn_timer_start(&c->provide_timer, 500 * GN_MS, provide_again, c);
        return;
    }
    pthread_mutex_lock(&xc_mu);
    cli_out_begin("provided");
    cli_out_str("cid", c->cid_s);
    cli_out_str("status", status == 0 ? "ok" : gn_err_name(status));
    cli_out_end();
    pthread_mutex_unlock(&xc_mu);
}

static void shared(void *arg, int status, const char *cid, uint64_t size)
{
    xcli *c = arg;
    pthread_mutex_lock(&xc_mu);
    if (status < 0) {
        fprintf(stderr, "golemnet: share %s: %s (%s)\n", c->file, gn_strerror(status),
                gn_err_name(status));
        atomic_store(&c->done, 2);
        pthread_mutex_unlock(&xc_mu);
        return;
    }
    snprintf(c->cid_s, sizeof c->cid_s, "%s", cid);
    cli_out_begin("shared");
    cli_out_str("cid", cid);
    cli_out_u64("size", size);
    cli_out_str("file", c->file);
    cli_out_end();
    pthread_mutex_unlock(&xc_mu);
    if (c->provide && c->have_kad) {
        int rc = gn_xfer_provide(c->node, cid, provided, c);
        if (rc < 0)
            provided(c, rc);
    }
}

static void start_fn(gn_loop *loop, void *arg)
{
    (void)loop;
    xcli *c = arg;
    int rc;
    if (!c->fetch) {
        gn_timer_init(c->loop, &c->provide_timer);
        rc = gn_xfer_share(c->node, c->file, shared, c);
        if (rc < 0)
            shared(c, rc, NULL, 0);
        return;
    }
    gn_xfer_fetch_opts o;
    gn_xfer_fetch_opts_default(&o);
    o.providers = c->from;
    o.n_providers = c->n_from;
    if (c->max_prov)
        o.max_providers = c->max_prov;
    if (c->mem_chunks)
        o.max_chunks_in_memory = c->mem_chunks;
    o.max_rate = c->max_rate;
    if (!cli_json && !c->tty)
        o.progress_interval = 0;
    rc = gn_xfer_fetch_start(c->node, c->cid, c->out, &o, fetch_event, c, &c->f);
    if (rc < 0) {
        pthread_mutex_lock(&xc_mu);
        fprintf(stderr, "golemnet: fetch %s: %s (%s)%s\n", c->cid, gn_strerror(rc),
                gn_err_name(rc),
                rc == GN_EPARSE ? ": a CID (bafk...) and providers as MA/p2p/ID are expected"
                : rc == GN_ENOTSUP ? ": no DHT: give --from or --bootstrap-kad"
                                   : "");
        pthread_mutex_unlock(&xc_mu);
        atomic_store(&c->done, rc == GN_EPARSE || rc == GN_EINVAL ? 3 : 2);
    }
}

static void stop_fn(gn_loop *loop, void *arg)
{
    (void)loop;
    xcli *c = arg;
    if (c->f)
        gn_xfer_fetch_cancel(c->f); /* the partial state stays for a resume */
    if (!c->fetch) {
        gn_timer_stop(&c->provide_timer);
        atomic_store(&c->stopped, 1);
    }
}

int cmd_xfer(bool fetch, int argc, char **argv);
int cmd_xfer(bool fetch, int argc, char **argv)
{
    const char *help = fetch ? cmd_fetch_help : cmd_share_help;
    xcli c;
    memset(&c, 0, sizeof c);
    c.fetch = fetch;
    c.provide = true;
    const char *listen[XC_MAX], *opts[XC_MAX];
    char *owned[XC_MAX];
    size_t nl = 0, no = 0, nown = 0;
    double timeout_s = 0;
    const char *pos = NULL;
    int status = 2;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool has_v = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(help, stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            cli_json = true;
        } else if (!strcmp(a, "--no-provide") && !fetch) {
            c.provide = false;
        } else if (!strcmp(a, "--listen") || !strcmp(a, "--option") ||
                   !strcmp(a, "--bootstrap-kad") || (fetch && !strcmp(a, "--from"))) {
            if (!has_v)
                return xc_usage(help, "%s needs a value", a);
            const char *v = argv[++i];
            if (!strcmp(a, "--listen")) {
                if (nl == XC_MAX)
                    return xc_usage(help, "too many %s", a);
                listen[nl++] = v;
            } else if (!strcmp(a, "--from")) {
                if (c.n_from == XC_MAX)
                    return xc_usage(help, "too many %s (64 at most)", a);
                if (!strstr(v, "/p2p/"))
                    return xc_usage(help, "--from %s: want MULTIADDR/p2p/PEER_ID", v);
                c.from[c.n_from++] = v;
            } else if (no == XC_MAX) {
                return xc_usage(help, "too many %s", a);
            } else if (!strcmp(a, "--option")) {
                if (!strchr(v, '.') || !strchr(v, '='))
                    return xc_usage(help, "--option %s: want COMPONENT.KEY=VALUE", v);
                opts[no++] = v;
                c.have_kad = c.have_kad || !strncmp(v, "kad.bootstrap=", 14);
            } else {
                size_t l = strlen(v) + 16;
                char *s = malloc(l);
                if (!s || nown == XC_MAX) {
                    free(s);
                    return xc_usage(help, "%s: out of memory", a);
                }
                snprintf(s, l, "kad.bootstrap=%s", v);
                owned[nown++] = s;
                opts[no++] = s;
                c.have_kad = true;
            }
        } else if (fetch && (!strcmp(a, "-o") || !strcmp(a, "--output"))) {
            if (!has_v)
                return xc_usage(help, "%s needs a value", a);
            c.out = argv[++i];
        } else if (fetch && (!strcmp(a, "--max-providers") || !strcmp(a, "--memory-chunks") ||
                             !strcmp(a, "--timeout") || !strcmp(a, "--max-rate"))) {
            if (!has_v)
                return xc_usage(help, "%s needs a value", a);
            char *end;
            const char *v = argv[++i];
            double d = strtod(v, &end);
            if (*end || d <= 0)
                return xc_usage(help, "bad value '%s'", v);
            if (!strcmp(a, "--max-providers"))
                c.max_prov = (size_t)d;
            else if (!strcmp(a, "--memory-chunks"))
                c.mem_chunks = (unsigned)d;
            else if (!strcmp(a, "--max-rate"))
                c.max_rate = (uint64_t)d;
            else
                timeout_s = d;
        } else if (a[0] == '-' && a[1]) {
            return xc_usage(help, "unknown option '%s'", a);
        } else if (!pos) {
            pos = a;
        } else {
            return xc_usage(help, "unexpected argument '%s'", a);
        }
    }
    if (!pos)
        return xc_usage(help, "%s", fetch ? "want a CID" : "want a FILE");
    if (fetch) {
        c.cid = pos;
        c.out = c.out ? c.out : pos;
        if (c.n_from == 0 && !c.have_kad)
            return xc_usage(help, "%s", "no provider: give --from MA/p2p/ID or --bootstrap-kad");
    } else {
        c.file = pos;
        if (access(pos, R_OK) != 0) {
            fprintf(stderr, "golemnet: share %s: cannot read it\n", pos);
            return 1;
        }
        if (nl == 0)
            listen[nl++] = "/ip4/0.0.0.0/tcp/0";
    }
    c.tty = isatty(2) && !cli_json;
    gn_log_set(cli_log, NULL, GN_LOG_WARNING);
    gn_node_config cfg;
    gn_node_config_default(&cfg);
    cfg.listen = listen;
    cfg.n_listen = nl;
    cfg.options = opts;
    cfg.n_options = no;
    int rc = gn_node_new(&cfg, &c.node);
    if (rc < 0) {
        fprintf(stderr, "golemnet: node: %s (%s): a bad --option or --listen?\n", gn_strerror(rc),
                gn_err_name(rc));
        status = 1;
        goto out;
    }
    c.loop = gn_node_loop(c.node);
    if ((rc = gn_node_start(c.node)) == 0)
        rc = gn_loop_submit(c.loop, start_fn, &c);
    if (rc < 0) {
        fprintf(stderr, "golemnet: start: %s (%s)\n", gn_strerror(rc), gn_err_name(rc));
        gn_node_free(c.node);
        status = 1;
        goto out;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = xc_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    bool timed_out = false;
    while (atomic_load(&c.done) == 0 && !xc_signal) {
        gn_node_event ev;
        rc = gn_node_next_event(c.node, &ev, 100 * GN_MS);
        if (rc == GN_ECLOSED)
            break;
        if (timeout_s > 0) {
            struct timespec t1;
            clock_gettime(CLOCK_MONOTONIC, &t1);
            if ((double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9 > timeout_s) {
                timed_out = true;
                break;
            }
        }
        if (rc < 0)
            continue;
        if (ev.type == GN_NODE_EV_LISTENING) {
            char pid[GN_PEER_ID_MAX_STRLEN];
            gn_peer_id self;
            gn_node_peer_id(c.node, &self);
            gn_peer_id_to_string(&self, pid, sizeof pid);
            char full[GN_NODE_ADDR_MAX + GN_PEER_ID_MAX_STRLEN + 8];
            if (strstr(ev.addr, "/p2p/"))
                snprintf(full, sizeof full, "%s", ev.addr);
            else
                snprintf(full, sizeof full, "%s/p2p/%s", ev.addr, pid);
            pthread_mutex_lock(&xc_mu);
            bar_clear(&c);
            cli_out_begin("listening");
            cli_out_str("addr", full);
            cli_out_end();
            pthread_mutex_unlock(&xc_mu);
        } else if (ev.type == GN_NODE_EV_LISTEN_FAILED) {
            fprintf(stderr, "golemnet: listen %s: %s\n", ev.addr, gn_err_name(ev.status));
            if (!fetch)
                atomic_store(&c.done, 2);
        }
        if (ev.message)
            gn_rcbuf_rele(ev.message);
    }
    int d = atomic_load(&c.done);
    if (fetch && d == 0) { /* a signal or the timeout: cancel, keep the partial state */
        if (gn_loop_submit(c.loop, stop_fn, &c) == 0)
            for (int i = 0; i < 100 && atomic_load(&c.done) == 0; i++) /* bounded: 10 s */
                usleep(100000);
        if (timed_out)
            fprintf(stderr, "golemnet: fetch %s: timed out after %g s; the partial download "
                            "stays for a resume\n", c.cid, timeout_s);
        d = atomic_load(&c.done);
        status = 1;
    } else {
        if (!fetch && gn_loop_submit(c.loop, stop_fn, &c) == 0)
            for (int i = 0; i < 50 && !atomic_load(&c.stopped); i++) /* bounded: 5 s */
                usleep(100000);
        status = d == 0 ? 0 : d - 1; /* share: 0 on a signal */
        if (d == 3)
            status = 2;
    }
    gn_node_free(c.node);
out:
    for (size_t i = 0; i < nown; i++)
        free(owned[i]);
    return status;
}
