/*
 * golemnet - the command-line tool.
 *
 * Contract (docs/cli.md): every command takes --json (one JSON object per
 * line on stdout); exit 0 on success, 1 on failure, 2 on bad usage; logs and
 * errors go to stderr.
 *
 * The network commands (node, ping, echo, perf) run one gn_node on a loop
 * the tool owns and runs on the main thread (gn_node_config.loop): every
 * callback runs on the main thread, and node events are popped right after
 * each loop iteration, so all output comes from one thread. A 50 ms timer
 * notices SIGINT/SIGTERM (the handler only sets a flag) and wakes the loop.
 */
#include "golemnet/golemnet.h"


#include <errno.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_USAGE 2
#define CLI_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static bool json_out;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: golemnet <command> [options]\n"
            "\n"
            "commands:\n"
            "  id [--key FILE | --key-seed N]   print the peer ID (fresh identity by default)\n"
            "  keygen --out FILE                write a new Ed25519 key file (libp2p PrivateKey)\n"
            "  multiaddr ADDR                   parse a multiaddr, print its parts and bytes\n"
            "  version                          print the library version\n"
            "  node [--listen MA]... [--echo] [--perf]\n"
            "                                   run a node until SIGINT/SIGTERM\n"
            "                                   (default --listen /ip4/127.0.0.1/tcp/0)\n"
            "  ping MA [--count N]              ping a peer N times (default 1)\n"
            "  echo MA --bytes N [--streams K]  echo N random bytes on K concurrent streams\n"
            "  perf MA [--upload-bytes N] [--download-bytes N]\n"
            "                                   libp2p perf: an upload run, then a download run\n"
            "\n"
            "network options (node, ping, echo, perf):\n"
            "  --key FILE | --key-seed N        identity (default: a fresh one)\n"
            "  --security LIST                  e.g. noise,ecies (default: all but plaintext,\n"
            "                                   Noise first)\n"
            "  --muxer LIST                     e.g. yamux,mplex (default: all, yamux first)\n"
            "  --router LIST                    routers asked for bare /p2p/<id> dials, e.g.\n"
            "                                   static (default: all built in; \"\" none)\n"
            "  --discovery LIST                 e.g. bootstrap (default: all built in)\n"
            "  --nat LIST                       NAT components (default: all built in)\n"
            "  --route MA/p2p/ID                a static route (repeatable; static.peer)\n"
            "  --bootstrap MA/p2p/ID            a bootstrap peer, dialled with backoff\n"
            "                                   (repeatable; bootstrap.peer)\n"
            "  --option COMPONENT.KEY=VALUE     a component option (repeatable; see\n"
            "                                   docs/components.md)\n"
            "  --log LEVEL                      err, warning (default), notice, info, debug\n"
            "dial-side options (ping, echo, perf):\n"
            "  --listen MA                      also listen (repeatable; none by default)\n"
            "  --identify                       require the peer's identify before acting\n"
            "                                   (by default: wait for it at most 5 s)\n"
            "  --timeout S                      bound for the whole command (default 30)\n"
            "\n"
            "options: --json   one JSON object per line on stdout\n");
}

/* ------------------------------------------------------------------------
 * Output: one line per event, JSON or "event key=value ..." text.
 */

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            printf("\\%c", c);
        } else if (c < 0x20) {
            printf("\\u%04x", c);
        } else {
            putchar(c);
        }
    }
    putchar('"');
}

static void out_begin(const char *event)
{
    if (json_out) {
        printf("{\"event\":\"%s\"", event);
    } else {
        fputs(event, stdout);
    }
}

static void out_str(const char *key, const char *val)
{
    if (json_out) {
        printf(",\"%s\":", key);
        json_str(val);
    } else {
        printf(" %s=%s", key, val[0] ? val : "-");
    }
}

static void out_u64(const char *key, uint64_t v)
{
    printf(json_out ? ",\"%s\":%llu" : " %s=%llu", key, (unsigned long long)v);
}

static void out_num(const char *key, double v)
{
    printf(json_out ? ",\"%s\":%.6f" : " %s=%.6f", key, v);
}

static void out_bool(const char *key, bool v)
{
    printf(json_out ? ",\"%s\":%s" : " %s=%s", key, v ? "true" : "false");
}

static void out_strv(const char *key, const char *const *v, size_t n)
{
    if (json_out) {
        printf(",\"%s\":[", key);
        for (size_t i = 0; i < n; i++) {
            if (i) {
                putchar(',');
            }
            json_str(v[i]);
        }
        putchar(']');
    } else {
        printf(" %s=", key);
        for (size_t i = 0; i < n; i++) {
            printf("%s%s", i ? "," : "", v[i]);
        }
        if (n == 0) {
            putchar('-');
        }
    }
}

static void out_end(void)
{
    if (json_out) {
        putchar('}');
    }
    putchar('\n');
    fflush(stdout);
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "golemnet: %s: %s (%s)\n", what, gn_strerror(rc), gn_err_name(rc));
    if (json_out) {
        printf("{\"event\":\"error\",\"what\":");
        json_str(what);
        printf(",\"error\":\"%s\"}\n", gn_err_name(rc));
        fflush(stdout);
    }
    return EXIT_FAILURE;
}

/* Parses a decimal integer in [0, max]; false on anything else. */
static bool parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    if (!s || !*s || *s == '-' || *s == '+' || *s == ' ') {
        return false;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max) {
        return false;
    }
    *out = v;
    return true;
}

/* Loads the identity chosen by --key / --key-seed, or makes a fresh one. */
static int load_identity(const char *key_file, const char *seed, gn_identity **out)
{
    if (key_file && seed) {
        fprintf(stderr, "golemnet: --key and --key-seed exclude each other\n");
        return GN_EINVAL;
    }
    if (key_file) {
        return gn_identity_load(key_file, out);
    }
    if (seed) {
        unsigned long long n;
        if (!parse_uint(seed, UINT32_MAX, &n)) {
            fprintf(stderr, "golemnet: --key-seed takes an integer 0..4294967295\n");
            return GN_EINVAL;
        }
        return gn_identity_from_int_seed((uint32_t)n, out);
    }
    return gn_identity_generate(out);
}

static int cmd_id(int argc, char **argv)
{
    const char *key_file = NULL, *seed = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--key") && i + 1 < argc) {
            key_file = argv[++i];
        } else if (!strcmp(argv[i], "--key-seed") && i + 1 < argc) {
            seed = argv[++i];
        } else {
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    gn_identity *id = NULL;
    int rc = load_identity(key_file, seed, &id);
    if (rc == GN_EINVAL) {
        return EXIT_USAGE;
    }
    if (rc < 0) {
        return fail(key_file ? key_file : "identity", rc);
    }
    gn_peer_id pid;
    gn_identity_peer_id(id, &pid);
    char b58[GN_PEER_ID_MAX_STRLEN], cid[GN_PEER_ID_MAX_STRLEN];
    gn_peer_id_to_string(&pid, b58, sizeof b58);
    gn_peer_id_to_cid_string(&pid, cid, sizeof cid);
    gn_identity_free(id);
    if (json_out) {
        printf("{\"event\":\"id\",\"peer_id\":\"%s\",\"peer_id_cid\":\"%s\"}\n", b58, cid);
    } else {
        printf("%s\n", b58);
    }
    return EXIT_SUCCESS;
}

static int cmd_keygen(int argc, char **argv)
{
    const char *out = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc) {
            out = argv[++i];
        } else {
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (!out) {
        usage(stderr);
        return EXIT_USAGE;
    }
    gn_identity *id = NULL;
    int rc = gn_identity_generate(&id);
    if (rc == 0) {
        rc = gn_identity_save(id, out);
    }
    if (rc < 0) {
        gn_identity_free(id);
        return fail(out, rc);
    }
    gn_peer_id pid;
    gn_identity_peer_id(id, &pid);
    gn_identity_free(id);
    char b58[GN_PEER_ID_MAX_STRLEN];
    gn_peer_id_to_string(&pid, b58, sizeof b58);
    if (json_out) {
        printf("{\"event\":\"keygen\",\"peer_id\":\"%s\",\"file\":", b58);
        json_str(out);
        printf("}\n");
    } else {
        printf("%s\n", b58);
    }
    return EXIT_SUCCESS;
}

static int cmd_multiaddr(int argc, char **argv)
{
    if (argc != 1) {
        usage(stderr);
        return EXIT_USAGE;
    }
    gn_multiaddr *ma = NULL;
    int rc = gn_multiaddr_parse(argv[0], &ma);
    if (rc < 0) {
        return fail(argv[0], rc);
    }
    char str[GN_MA_MAX_STRLEN];
    gn_multiaddr_to_string(ma, str, sizeof str);
    gn_slice bytes = gn_multiaddr_bytes(ma);
    char hex[2 * GN_MA_MAX_BYTES + 1];
    for (size_t i = 0; i < bytes.len; i++) {
        snprintf(hex + 2 * i, 3, "%02x", bytes.base[i]);
    }
    hex[2 * bytes.len] = '\0';
    size_t n = gn_multiaddr_count(ma);
    if (json_out) {
        printf("{\"event\":\"multiaddr\",\"multiaddr\":");
        json_str(str);
        printf(",\"bytes\":\"%s\",\"components\":[", hex);
    } else {
        printf("%s\n%s\n", str, hex);
    }
    for (size_t i = 0; i < n; i++) {
        gn_ma_component c;
        char val[GN_MA_MAX_STRLEN];
        gn_multiaddr_component(ma, i, &c);
        if (gn_ma_component_value_string(&c, val, sizeof val) < 0) {
            val[0] = '\0';
        }
        if (json_out) {
            printf("%s{\"protocol\":\"%s\",\"code\":%llu,\"value\":", i ? "," : "", c.name,
                   (unsigned long long)c.code);
            json_str(val);
            printf("}");
        } else {
            printf("  %-12s %s\n", c.name, val);
        }
    }
    if (json_out) {
        printf("]}\n");
    }
    gn_multiaddr_free(ma);
    return EXIT_SUCCESS;
}

/* ------------------------------------------------------------------------
 * Network commands: node, ping, echo, perf
 */

enum cli_cmd { CLI_NODE = 0, CLI_PING, CLI_ECHO, CLI_PERF };

#define CLI_MIN(a, b) ((a) < (b) ? (a) : (b))
#define CLI_MAX_LISTEN 16u
#define CLI_MAX_OPTIONS 64u
#define CLI_TICK (50 * GN_MS)
#define CLI_CLOSE_GRACE (10 * GN_S)
/* A dial-side command exits by its --timeout plus this much (closing). */
#define CLI_CLOSE_SLACK (500 * GN_MS)
#define CLI_DEFAULT_TIMEOUT_S 30u
#define CLI_MAX_TIMEOUT_S 86400u
#define CLI_MAX_PINGS 1000000u
#define CLI_MAX_STREAMS 1024u
#define CLI_MAX_BYTES (1ull << 50) /* 1 PiB: bounded in practice by --timeout */
/* Dial side: how long to wait for the peer's identify before acting anyway. */
#define CLI_IDENTIFY_WAIT (5 * GN_S)

/* Echo client: each stream sends a ChaCha20 keystream (its own random key),
 * so any length is checked with O(chunk) memory. */
#define ECHO_CHUNK (64u * 1024u)
#define ECHO_INFLIGHT 4u
#define ECHO_BLOCK 64u /* ChaCha20 block, bytes */

typedef struct cli cli;
typedef struct echo_stream echo_stream;

typedef struct echo_slot {
    echo_stream *es;
    uint8_t *buf;
    bool busy;
} echo_slot;

struct echo_stream {
    cli *c;
    uint32_t idx;
    gn_stream *s;
    uint8_t key[crypto_stream_chacha20_KEYBYTES];
    uint8_t nonce[crypto_stream_chacha20_NONCEBYTES];
    uint64_t queued; /* bytes handed to gn_stream_write */
    uint64_t recv;   /* echoed bytes checked */
    echo_slot slot[ECHO_INFLIGHT];
    bool shut;
    bool done;
};

/* What the tool remembers of an open channel (for its "closed" line). */
typedef struct cli_chan {
    uint64_t id;
    gn_channel_info info;
} cli_chan;

struct cli {
    int cmd;
    /* options */
    const char *target;
    const char *key_file, *key_seed, *security, *muxers;
    const char *listen[CLI_MAX_LISTEN];
    size_t n_listen;
    const char *routers, *discovery, *nat;
    const char *options[CLI_MAX_OPTIONS];
    char *option_copies[CLI_MAX_OPTIONS]; /* --route/--bootstrap expansions */
    size_t n_options;
    bool serve_echo, serve_perf, want_identify;
    uint64_t count, bytes, streams, up, down;
    gn_time timeout;
    gn_time end_at; /* loop time the command must be over by (dial side; 0: none) */
    /* runtime */
    gn_identity *id;
    gn_loop *loop;
    gn_node *node;
    gn_timer tick, deadline, grace, id_wait;
    char *bound[CLI_MAX_LISTEN];
    size_t n_bound, n_listen_done;
    bool announced;
    cli_chan *chans;
    size_t nchans, capchans;
    uint64_t identified[16]; /* channel ids with an identify result (ring) */
    size_t nidentified;
    /* dial side */
    gn_channel *ch;
    uint64_t ch_id;
    bool acting;
    uint64_t pings;
    echo_stream *es;
    uint64_t echo_ok;
    gn_time t0;
    int perf_phase;
    double up_s, down_s;
    uint8_t *ks_zero, *ks_tmp;
    /* end */
    bool finishing, closed, forced;
    int exit_code;
};

static volatile sig_atomic_t cli_signal;

static void cli_on_signal(int sig)
{
    cli_signal = sig;
}

static void cli_log(void *ud, gn_log_level level, const char *component, const char *msg)
{
    (void)ud;
    static const char *const names[] = {"emerg", "alert", "crit", "err",
                                        "warning", "notice", "info", "debug"};
    fprintf(stderr, "golemnet: [%s] %s: %s\n", names[(unsigned)level & 7u], component, msg);
}

static double ns_to_s(gn_time t)
{
    return (double)t / 1e9;
}

static void cli_peer_str(const gn_peer_id *p, char out[GN_PEER_ID_MAX_STRLEN])
{
    if (gn_peer_id_to_string(p, out, GN_PEER_ID_MAX_STRLEN) < 0) {
        out[0] = '\0';
    }
}

/* An error line ({"event":"error"} with --json) and a message on stderr. */
static void cli_error(const char *what, int rc, const char *detail)
{
    fprintf(stderr, "golemnet: %s: %s (%s)%s%s\n", what, gn_strerror(rc), gn_err_name(rc),
            detail ? ": " : "", detail ? detail : "");
    if (json_out) {
        out_begin("error");
        out_str("what", what);
        out_str("error", gn_err_name(rc));
        out_str("message", detail ? detail : gn_strerror(rc));
        out_end();
    }
}

static void cli_closed_cb(gn_node *n, void *arg)
{
    (void)n;
    cli *c = arg;
    c->closed = true;
}

static void cli_grace_expired(gn_timer *t, void *arg)
{
    (void)t;
    cli *c = arg;
    fprintf(stderr, "golemnet: the node did not close in time; exiting anyway\n");
    c->forced = true;
}

/* Ends the command with @code: closes the node (once). */
static void cli_finish(cli *c, int code)
{
    if (c->finishing) {
        return;
    }
    c->finishing = true;
    c->exit_code = code;
    gn_timer_stop(&c->deadline);
    gn_timer_stop(&c->id_wait);
    for (uint64_t i = 0; c->es && i < c->streams; i++) {
        echo_stream *es = &c->es[i];
        if (es->s) {
            gn_stream_reset(es->s, NULL, NULL);
            es->s = NULL;
        }
    }
    /* --timeout bounds the whole command, closing included */
    gn_time grace = CLI_CLOSE_GRACE;
    if (c->end_at > 0) {
        gn_time now = gn_loop_now(c->loop);
        grace = CLI_MIN(grace, (c->end_at > now ? c->end_at - now : 0) + CLI_CLOSE_SLACK);
    }
    gn_timer_start(&c->grace, grace, cli_grace_expired, c);
    gn_node_close(c->node, cli_closed_cb, c);
}

static void cli_fail(cli *c, const char *what, int rc, const char *detail)
{
    if (c->finishing) {
        return;
    }
    cli_error(what, rc, detail);
    cli_finish(c, EXIT_FAILURE);
}

static void cli_tick(gn_timer *t, void *arg)
{
    cli *c = arg;
    if (cli_signal && !c->finishing) {
        int sig = cli_signal;
        fprintf(stderr, "golemnet: %s: closing\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
        if (c->cmd == CLI_NODE) {
            cli_finish(c, EXIT_SUCCESS);
        } else {
            cli_fail(c, "interrupted", GN_ECANCELED, sig == SIGINT ? "SIGINT" : "SIGTERM");
        }
    }
    gn_timer_start(t, CLI_TICK, cli_tick, c);
}

static void cli_deadline(gn_timer *t, void *arg)
{
    (void)t;
    cli *c = arg;
    char msg[64];
    snprintf(msg, sizeof msg, "no result within %llu s",
             (unsigned long long)(c->timeout / GN_S));
    cli_fail(c, "timeout", GN_ETIMEDOUT, msg);
}

/* ---- channel bookkeeping ---- */

/* The node's channel with id @id (loop thread), or NULL once it is gone. */
static gn_channel *cli_find_channel(cli *c, uint64_t id)
{
    return gn_node_channel_find(c->node, id);
}

static void cli_chan_line(const char *event, const gn_channel_info *info, bool closed,
                          int status)
{
    char peer[GN_PEER_ID_MAX_STRLEN];
    cli_peer_str(&info->remote_peer, peer);
    out_begin(event);
    out_u64("channel_id", info->id);
    out_str("peer_id", peer);
    out_str("direction", info->direction == GN_DIR_INBOUND ? "inbound" : "outbound");
    out_str("local_addr", info->local_addr);
    out_str("remote_addr", info->remote_addr);
    out_str("security", info->security);
    out_str("muxer", info->muxer);
    if (closed) {
        out_str("reason", status < 0 ? gn_err_name(status) : "closed");
    }
    out_end();
}

static void cli_on_opened(cli *c, const gn_node_event *ev)
{
    cli_chan rec;
    memset(&rec, 0, sizeof rec);
    rec.id = ev->channel_id;
    gn_channel *ch = cli_find_channel(c, ev->channel_id);
    if (ch) {
        gn_channel_state_get(ch, &rec.info);
    } else {
        /* already gone: what the event carries */
        rec.info.id = ev->channel_id;
        rec.info.remote_peer = ev->peer;
        snprintf(rec.info.remote_addr, sizeof rec.info.remote_addr, "%s", ev->addr);
        snprintf(rec.info.muxer, sizeof rec.info.muxer, "%s", ev->protocol);
    }
    if (c->nchans == c->capchans) {
        size_t cap = c->capchans ? 2 * c->capchans : 16;
        cli_chan *nc = gn_realloc(c->chans, cap * sizeof *nc);
        if (nc) {
            c->chans = nc;
            c->capchans = cap;
        }
    }
    if (c->nchans < c->capchans) {
        c->chans[c->nchans++] = rec;
    }
    cli_chan_line("channel_opened", &rec.info, false, 0);
}

static void cli_on_closed(cli *c, const gn_node_event *ev)
{
    gn_channel_info info;
    memset(&info, 0, sizeof info);
    info.id = ev->channel_id;
    info.remote_peer = ev->peer;
    snprintf(info.remote_addr, sizeof info.remote_addr, "%s", ev->addr);
    for (size_t i = 0; i < c->nchans; i++) {
        if (c->chans[i].id == ev->channel_id) {
            info = c->chans[i].info;
            c->chans[i] = c->chans[--c->nchans];
            break;
        }
    }
    cli_chan_line("channel_closed", &info, true, ev->status);
    if (ev->channel_id == c->ch_id && !c->finishing) {
        cli_fail(c, "channel", ev->status < 0 ? ev->status : GN_ECLOSED,
                 "the channel closed before the command finished");
    }
}

static void cli_start_action(cli *c);


/* Prints the peer store's protocols and addresses of @peer (public API). */
static void cli_peer_lists(cli *c, const gn_peer_id *peer)
{
    gn_peer_info pi;
    if (gn_node_peer_info(c->node, peer, &pi) < 0) {
        pi.n_protocols = pi.n_addrs = 0;
    }
    for (int list = 0; list < 2; list++) {
        size_t n = list == 0 ? pi.n_protocols : pi.n_addrs;
        char **v = n ? gn_calloc(n, sizeof *v) : NULL;
        size_t k = 0;
        for (size_t i = 0; v && i < n; i++) {
            char buf[GN_NODE_ADDR_MAX];
            int rc = list == 0 ? gn_node_peer_protocol(c->node, peer, i, buf, sizeof buf)
                               : gn_node_peer_addr(c->node, peer, i, buf, sizeof buf);
            if (rc >= 0 && (v[k] = gn_strdup(buf)) != NULL) {
                k++;
            }
        }
        out_strv(list == 0 ? "protocols" : "addrs", (const char *const *)v, k);
        for (size_t i = 0; i < k; i++) {
            gn_free(v[i]);
        }
        gn_free(v);
    }
}

static void cli_on_identify(cli *c, const gn_node_event *ev)
{
    char peer[GN_PEER_ID_MAX_STRLEN];
    cli_peer_str(&ev->peer, peer);
    out_begin("identify");
    out_u64("channel_id", ev->channel_id);
    out_str("peer_id", peer);
    out_bool("ok", ev->status == 0);
    if (ev->status < 0) {
        out_str("error", gn_err_name(ev->status));
    } else {
        out_str("agent_version", ev->protocol);
        out_str("observed_addr", ev->addr);
        cli_peer_lists(c, &ev->peer);
    }
    out_end();
    c->identified[c->nidentified++ % CLI_ARRAY_LEN(c->identified)] = ev->channel_id;
    if (c->ch && ev->channel_id == c->ch_id && !c->acting && !c->finishing) {
        if (ev->status < 0 && c->want_identify) {
            cli_fail(c, "identify", ev->status, NULL);
        } else {
            cli_start_action(c);
        }
    }
}

static void cli_on_listen(cli *c, const gn_node_event *ev)
{
    c->n_listen_done++;
    if (ev->type == GN_NODE_EV_LISTEN_FAILED) {
        cli_fail(c, "listen", ev->status, ev->addr);
        return;
    }
    if (c->n_bound < CLI_MAX_LISTEN) {
        c->bound[c->n_bound] = gn_strdup(ev->addr);
        if (c->bound[c->n_bound]) {
            c->n_bound++;
        }
    }
    if (c->n_listen_done == c->n_listen && !c->announced && !c->finishing) {
        char self[GN_PEER_ID_MAX_STRLEN];
        gn_peer_id pid;
        gn_node_peer_id(c->node, &pid);
        cli_peer_str(&pid, self);
        c->announced = true;
        out_begin("listening");
        out_str("peer_id", self);
        out_strv("addrs", (const char *const *)c->bound, c->n_bound);
        out_end();
    }
}

static void cli_handle_event(cli *c, gn_node_event *ev)
{
    switch (ev->type) {
    case GN_NODE_EV_LISTENING:
    case GN_NODE_EV_LISTEN_FAILED:
        cli_on_listen(c, ev);
        break;
    case GN_NODE_EV_START_FAILED:
        cli_fail(c, "start", ev->status, ev->protocol);
        break;
    case GN_NODE_EV_CHANNEL_OPENED:
        cli_on_opened(c, ev);
        break;
    case GN_NODE_EV_CHANNEL_CLOSED:
        cli_on_closed(c, ev);
        break;
    case GN_NODE_EV_IDENTIFY:
        cli_on_identify(c, ev);
        break;
    case GN_NODE_EV_MESSAGE: {
        char peer[GN_PEER_ID_MAX_STRLEN];
        cli_peer_str(&ev->peer, peer);
        out_begin("message");
        out_u64("channel_id", ev->channel_id);
        out_str("peer_id", peer);
        out_u64("bytes", ev->message ? gn_rcbuf_slice(ev->message).len : 0);
        out_end();
        gn_rcbuf_rele(ev->message);
        ev->message = NULL;
        break;
    }
    default:
        break;
    }
}

static void cli_pump_events(cli *c)
{
    gn_node_event ev;
    /* bounded: at most the queue's capacity plus what arrives meanwhile */
    for (int i = 0; i < 100000 && gn_node_next_event(c->node, &ev, 0) == 0; i++) {
        cli_handle_event(c, &ev);
    }
}

/* ---- ping ---- */

static void ping_next(cli *c);

static void ping_done(void *arg, int status, gn_time rtt)
{
    cli *c = arg;
    if (c->finishing) {
        return;
    }
    if (status < 0) {
        cli_fail(c, "ping", status, NULL);
        return;
    }
    char peer[GN_PEER_ID_MAX_STRLEN];
    gn_channel_info info;
    gn_channel_state_get(c->ch, &info);
    cli_peer_str(&info.remote_peer, peer);
    out_begin("ping");
    out_str("peer_id", peer);
    out_u64("seq", c->pings);
    printf(json_out ? ",\"rtt_ms\":%.3f" : " rtt_ms=%.3f", (double)rtt / 1e6);
    out_end();
    c->pings++;
    ping_next(c);
}

static void ping_next(cli *c)
{
    if (c->pings == c->count) {
        cli_finish(c, EXIT_SUCCESS);
        return;
    }
    int rc = gn_channel_ping(c->ch, ping_done, c);
    if (rc < 0) {
        cli_fail(c, "ping", rc, NULL);
    }
}

/* ---- echo ---- */

/*
 * The bytes stream @es sends at [@off, @off + @len), @len <= ECHO_CHUNK:
 * a pointer into the tool's scratch buffer, valid until the next call.
 */
static const uint8_t *echo_expected(cli *c, const echo_stream *es, uint64_t off, size_t len)
{
    size_t skip = (size_t)(off % ECHO_BLOCK);
    crypto_stream_chacha20_xor_ic(c->ks_tmp, c->ks_zero, skip + len, es->nonce,
                                  off / ECHO_BLOCK, es->key);
    return c->ks_tmp + skip;
}

static void echo_fail(echo_stream *es, int rc, const char *detail)
{
    char msg[128];
    snprintf(msg, sizeof msg, "stream %u: %s", (unsigned)es->idx, detail);
    cli_fail(es->c, "echo", rc, msg);
}

static void echo_pump(echo_stream *es);

static void echo_wrote(void *arg, int status)
{
    echo_slot *sl = arg;
    echo_stream *es = sl->es;
    sl->busy = false;
    if (es->c->finishing || !es->s) {
        return;
    }
    if (status < 0) {
        echo_fail(es, status, "write failed");
        return;
    }
    echo_pump(es);
}

static void echo_pump(echo_stream *es)
{
    cli *c = es->c;
    for (unsigned i = 0; i < ECHO_INFLIGHT && es->queued < c->bytes; i++) {
        echo_slot *sl = &es->slot[i];
        if (sl->busy) {
            continue;
        }
        if (!sl->buf && !(sl->buf = gn_malloc(ECHO_CHUNK))) {
            echo_fail(es, GN_ENOMEM, "no memory");
            return;
        }
        uint64_t left = c->bytes - es->queued;
        size_t len = left < ECHO_CHUNK ? (size_t)left : ECHO_CHUNK;
        memcpy(sl->buf, echo_expected(c, es, es->queued, len), len);
        gn_slice iov = {sl->buf, len};
        int rc = gn_stream_write(es->s, &iov, 1, echo_wrote, sl);
        if (rc == GN_EAGAIN) {
            return; /* on_writable resumes */
        }
        if (rc < 0) {
            echo_fail(es, rc, "write refused");
            return;
        }
        sl->busy = true;
        es->queued += len;
    }
    if (es->queued == c->bytes && !es->shut) {
        es->shut = true;
        int rc = gn_stream_shutdown(es->s);
        if (rc < 0) {
            echo_fail(es, rc, "half-close failed");
        }
    }
}

static void echo_on_data(gn_stream *s, void *ud, const uint8_t *data, size_t len)
{
    (void)s;
    echo_stream *es = ud;
    cli *c = es->c;
    if (c->finishing) {
        return;
    }
    if (len > c->bytes - es->recv) {
        echo_fail(es, GN_EPROTO, "more bytes echoed than sent");
        return;
    }
    while (len > 0) {
        size_t n = len < ECHO_CHUNK ? len : ECHO_CHUNK;
        if (memcmp(echo_expected(c, es, es->recv, n), data, n) != 0) {
            char msg[96];
            snprintf(msg, sizeof msg, "echoed bytes differ near offset %llu",
                     (unsigned long long)es->recv);
            echo_fail(es, GN_EPROTO, msg);
            return;
        }
        es->recv += n;
        data += n;
        len -= n;
    }
}

static void echo_on_eof(gn_stream *s, void *ud)
{
    echo_stream *es = ud;
    cli *c = es->c;
    if (c->finishing) {
        return;
    }
    if (es->recv != c->bytes) {
        char msg[96];
        snprintf(msg, sizeof msg, "echo ended after %llu of %llu bytes",
                 (unsigned long long)es->recv, (unsigned long long)c->bytes);
        echo_fail(es, GN_EPROTO, msg);
        return;
    }
    es->done = true;
    es->s = NULL;
    gn_stream_close(s, NULL, NULL);
    if (++c->echo_ok == c->streams) {
        double secs = ns_to_s(gn_loop_now(c->loop) - c->t0);
        out_begin("echo");
        out_bool("ok", true);
        out_u64("bytes", c->bytes);
        out_u64("streams", c->streams);
        out_num("seconds", secs);
        out_end();
        cli_finish(c, EXIT_SUCCESS);
    }
}

static void echo_on_error(gn_stream *s, void *ud, int err)
{
    echo_stream *es = ud;
    if (es->s == s) {
        es->s = NULL;
        gn_stream_close(s, NULL, NULL);
    }
    echo_fail(es, err, "stream failed");
}

static void echo_on_writable(gn_stream *s, void *ud)
{
    (void)s;
    echo_stream *es = ud;
    if (!es->c->finishing && es->s) {
        echo_pump(es);
    }
}

static const gn_stream_handler echo_handler = {
    .on_data = echo_on_data,
    .on_eof = echo_on_eof,
    .on_error = echo_on_error,
    .on_writable = echo_on_writable,
};

static void echo_opened(void *arg, int status, gn_stream *s)
{
    echo_stream *es = arg;
    if (status < 0) {
        echo_fail(es, status, "open failed");
        return;
    }
    if (es->c->finishing) {
        gn_stream_reset(s, NULL, NULL);
        return;
    }
    es->s = s;
    gn_stream_set_handler(s, &echo_handler, es);
    int rc = gn_stream_read_start(s);
    if (rc < 0) {
        echo_fail(es, rc, "read failed");
        return;
    }
    echo_pump(es);
}

static void echo_start(cli *c)
{
    c->es = gn_calloc((size_t)c->streams, sizeof *c->es);
    c->ks_zero = gn_calloc(1, ECHO_CHUNK + ECHO_BLOCK);
    c->ks_tmp = gn_malloc(ECHO_CHUNK + ECHO_BLOCK);
    if (!c->es || !c->ks_zero || !c->ks_tmp) {
        cli_fail(c, "echo", GN_ENOMEM, NULL);
        return;
    }
    c->t0 = gn_loop_now(c->loop);
    for (uint64_t i = 0; i < c->streams; i++) {
        echo_stream *es = &c->es[i];
        es->c = c;
        es->idx = (uint32_t)i;
        randombytes_buf(es->key, sizeof es->key);
        randombytes_buf(es->nonce, sizeof es->nonce);
        for (unsigned k = 0; k < ECHO_INFLIGHT; k++) {
            es->slot[k].es = es;
        }
    }
    for (uint64_t i = 0; i < c->streams && !c->finishing; i++) {
        int rc = gn_channel_open_stream(c->ch, "/echo/1.0.0", echo_opened, &c->es[i]);
        if (rc < 0) {
            echo_fail(&c->es[i], rc, "open failed");
        }
    }
}

/* ---- perf ---- */

static void perf_next(cli *c);

static void perf_result(void *arg, int status, double upload_s, double download_s)
{
    (void)upload_s;
    (void)download_s;
    cli *c = arg;
    if (c->finishing) {
        return;
    }
    if (status < 0) {
        cli_fail(c, "perf", status, c->perf_phase == 1 ? "upload run" : "download run");
        return;
    }
    /* from the stream open to the server's end of stream, as js-libp2p's client */
    double secs = ns_to_s(gn_loop_now(c->loop) - c->t0);
    if (c->perf_phase == 1) {
        c->up_s = secs;
    } else {
        c->down_s = secs;
    }
    perf_next(c);
}

static double mbit_s(uint64_t bytes, double secs)
{
    return secs > 0 ? (double)bytes * 8.0 / secs / 1e6 : 0.0;
}

/* Phase 1: the upload run (if any); phase 2: the download run (if any). */
static void perf_next(cli *c)
{
    while (++c->perf_phase <= 2) {
        if ((c->perf_phase == 1 && c->up == 0) || (c->perf_phase == 2 && c->down == 0)) {
            continue;
        }
        c->t0 = gn_loop_now(c->loop);
        uint64_t up = c->perf_phase == 1 ? c->up : 0;
        uint64_t down = c->perf_phase == 2 ? c->down : 0;
        int rc = gn_channel_perf(c->ch, up, down, perf_result, c);
        if (rc < 0) {
            cli_fail(c, "perf", rc, NULL);
        }
        return;
    }
    out_begin("perf");
    out_u64("upload_bytes", c->up);
    out_num("upload_s", c->up_s);
    out_u64("download_bytes", c->down);
    out_num("download_s", c->down_s);
    printf(json_out ? ",\"upload_mbit_s\":%.2f,\"download_mbit_s\":%.2f"
                    : " upload_mbit_s=%.2f download_mbit_s=%.2f",
           mbit_s(c->up, c->up_s), mbit_s(c->down, c->down_s));
    out_end();
    cli_finish(c, EXIT_SUCCESS);
}

/* ---- dial ---- */

static void cli_start_action(cli *c)
{
    if (c->acting) {
        return;
    }
    c->acting = true;
    gn_timer_stop(&c->id_wait);
    switch (c->cmd) {
    case CLI_PING:
        ping_next(c);
        break;
    case CLI_ECHO:
        echo_start(c);
        break;
    case CLI_PERF:
        perf_next(c);
        break;
    default:
        break;
    }
}

static void cli_id_wait_expired(gn_timer *t, void *arg)
{
    (void)t;
    cli *c = arg;
    if (!c->finishing) {
        fprintf(stderr, "golemnet: no identify result from the peer yet; going ahead\n");
        cli_start_action(c);
    }
}

/*
 * The action starts once the peer's identify result arrived (success or
 * not), at most CLI_IDENTIFY_WAIT after the dial; with --identify only after
 * a successful one. The identify reply means the peer finished setting up
 * the connection: js-libp2p, as listener, resets every stream beyond 10
 * opened before its upgrade completed ("MaxEarlyStreamsError").
 */
static void cli_dialed(void *arg, int status, gn_channel *ch)
{
    cli *c = arg;
    if (c->finishing) {
        return;
    }
    if (status < 0) {
        cli_fail(c, "dial", status, c->target);
        return;
    }
    gn_channel_info info;
    gn_channel_state_get(ch, &info);
    c->ch = gn_channel_hold(ch);
    c->ch_id = info.id;
    bool seen = false;
    for (size_t i = 0; i < CLI_ARRAY_LEN(c->identified) && i < c->nidentified; i++) {
        seen = seen || c->identified[i] == info.id;
    }
    if (seen) {
        cli_start_action(c);
    } else if (!c->want_identify) {
        gn_timer_start(&c->id_wait, CLI_IDENTIFY_WAIT, cli_id_wait_expired, c);
    }
}

/* ---- setup and the main loop ---- */

static int cli_run(cli *c)
{
    int rc = load_identity(c->key_file, c->key_seed, &c->id);
    if (rc == GN_EINVAL) {
        return EXIT_USAGE;
    }
    if (rc < 0) {
        return fail(c->key_file ? c->key_file : "identity", rc);
    }
#ifdef SIGPIPE
    signal(SIGPIPE, SIG_IGN); /* a write to a reset socket fails with EPIPE */
#endif
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = cli_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    rc = gn_loop_new(NULL, &c->loop);
    if (rc < 0) {
        gn_identity_free(c->id);
        return fail("loop", rc);
    }
    gn_node_config cfg;
    gn_node_config_default(&cfg);
    cfg.identity = c->id;
    cfg.loop = c->loop;
    cfg.security = c->security;
    cfg.muxers = c->muxers;
    cfg.listen = c->listen;
    cfg.n_listen = c->n_listen;
    cfg.routers = c->routers;
    cfg.discovery = c->discovery;
    cfg.nat = c->nat;
    cfg.options = c->options;
    cfg.n_options = c->n_options;
    if (c->serve_echo) {
        cfg.protocols |= GN_NODE_PROTO_ECHO;
    }
    if (c->serve_perf) {
        cfg.protocols |= GN_NODE_PROTO_PERF;
    }
    rc = gn_node_new(&cfg, &c->node);
    if (rc < 0) {
        gn_loop_free(c->loop);
        gn_identity_free(c->id);
        if (rc == GN_ENOTFOUND || rc == GN_EINVAL) {
            fprintf(stderr,
                    "golemnet: --security/--muxer/--router/--discovery/--nat/--option: %s (%s)\n",
                    gn_strerror(rc), gn_err_name(rc));
            return EXIT_USAGE;
        }
        return fail("node", rc);
    }
    gn_timer_init(c->loop, &c->tick);
    gn_timer_init(c->loop, &c->deadline);
    gn_timer_init(c->loop, &c->grace);
    gn_timer_init(c->loop, &c->id_wait);
    gn_timer_start(&c->tick, CLI_TICK, cli_tick, c);
    rc = gn_node_start(c->node);
    if (rc < 0) {
        cli_fail(c, "start", rc, NULL);
    } else if (c->cmd != CLI_NODE) {
        c->end_at = gn_loop_now(c->loop) + c->timeout;
        gn_timer_start(&c->deadline, c->timeout, cli_deadline, c);
        rc = gn_node_dial(c->node, c->target, cli_dialed, c, NULL);
        if (rc < 0) {
            cli_fail(c, "dial", rc, c->target);
        }
    }
    /* Events are produced only inside loop iterations: pop them after each. */
    while (!c->closed && !c->forced) {
        gn_loop_run(c->loop, GN_RUN_ONCE);
        cli_pump_events(c);
    }
    int code = c->exit_code;
    if (c->forced) {
        fflush(stdout);
        return code; /* the process exits; nothing is freed */
    }
    gn_timer_stop(&c->tick);
    gn_timer_stop(&c->grace);
    gn_timer_stop(&c->id_wait);
    gn_node_free(c->node);
    if (c->ch) {
        gn_channel_rele(c->ch);
    }
    gn_loop_free(c->loop);
    gn_identity_free(c->id);
    for (size_t i = 0; i < c->n_bound; i++) {
        gn_free(c->bound[i]);
    }
    for (uint64_t i = 0; c->es && i < c->streams; i++) {
        for (unsigned k = 0; k < ECHO_INFLIGHT; k++) {
            gn_free(c->es[i].slot[k].buf);
        }
    }
    gn_free(c->es);
    gn_free(c->ks_zero);
    gn_free(c->ks_tmp);
    gn_free(c->chans);
    return code;
}

/* Parses an integer option value; prints why on stderr when it is bad. */
static bool opt_uint(const char *name, const char *val, unsigned long long min,
                     unsigned long long max, uint64_t *out)
{
    unsigned long long v;
    if (!parse_uint(val, max, &v) || v < min) {
        fprintf(stderr, "golemnet: %s takes an integer %llu..%llu\n", name, min, max);
        return false;
    }
    *out = v;
    return true;
}

static bool log_level(const char *s, gn_log_level *out)
{
    static const struct {
        const char *name;
        gn_log_level level;
    } levels[] = {{"err", GN_LOG_ERR},   {"warning", GN_LOG_WARNING}, {"notice", GN_LOG_NOTICE},
                  {"info", GN_LOG_INFO}, {"debug", GN_LOG_DEBUG}};
    for (size_t i = 0; i < CLI_ARRAY_LEN(levels); i++) {
        if (!strcmp(s, levels[i].name)) {
            *out = levels[i].level;
            return true;
        }
    }
    return false;
}

static int cmd_net(int kind, int argc, char **argv)
{
    cli c;
    memset(&c, 0, sizeof c);
    c.cmd = kind;
    c.count = 1;
    c.streams = 1;
    c.timeout = CLI_DEFAULT_TIMEOUT_S * GN_S;
    gn_log_level level = GN_LOG_WARNING;
    bool have_bytes = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t x;
        bool dial = kind != CLI_NODE;
        if (a[0] != '-' && dial && !c.target) {
            c.target = a;
            continue;
        }
        if (!strcmp(a, "--echo") && kind == CLI_NODE) {
            c.serve_echo = true;
            continue;
        }
        if (!strcmp(a, "--perf") && kind == CLI_NODE) {
            c.serve_perf = true;
            continue;
        }
        if (!strcmp(a, "--identify") && dial) {
            c.want_identify = true;
            continue;
        }
        if (!v) {
            goto bad;
        }
        i++;
        if (!strcmp(a, "--key")) {
            c.key_file = v;
        } else if (!strcmp(a, "--key-seed")) {
            c.key_seed = v;
        } else if (!strcmp(a, "--security")) {
            c.security = v;
        } else if (!strcmp(a, "--muxer")) {
            c.muxers = v;
        } else if (!strcmp(a, "--log")) {
            if (!log_level(v, &level)) {
                fprintf(stderr, "golemnet: --log takes err, warning, notice, info or debug\n");
                return EXIT_USAGE;
            }
        } else if (!strcmp(a, "--router")) {
            c.routers = v;
        } else if (!strcmp(a, "--discovery")) {
            c.discovery = v;
        } else if (!strcmp(a, "--nat")) {
            c.nat = v;
        } else if (!strcmp(a, "--option") || !strcmp(a, "--route") || !strcmp(a, "--bootstrap")) {
            if (c.n_options == CLI_MAX_OPTIONS) {
                fprintf(stderr, "golemnet: at most %u --option/--route/--bootstrap\n",
                        CLI_MAX_OPTIONS);
                return EXIT_USAGE;
            }
            if (!strcmp(a, "--option")) {
                c.options[c.n_options++] = v;
                continue;
            }
            const char *key = !strcmp(a, "--route") ? "static.peer=" : "bootstrap.peer=";
            char *o = malloc(strlen(key) + strlen(v) + 1);
            if (!o) {
                return fail(a, GN_ENOMEM);
            }
            strcpy(o, key);
            strcat(o, v);
            c.option_copies[c.n_options] = o;
            c.options[c.n_options++] = o;
        } else if (!strcmp(a, "--listen")) {
            if (c.n_listen == CLI_MAX_LISTEN) {
                fprintf(stderr, "golemnet: at most %u --listen\n", CLI_MAX_LISTEN);
                return EXIT_USAGE;
            }
            c.listen[c.n_listen++] = v;
        } else if (!strcmp(a, "--timeout") && dial) {
            if (!opt_uint(a, v, 1, CLI_MAX_TIMEOUT_S, &x)) {
                return EXIT_USAGE;
            }
            c.timeout = x * GN_S;
        } else if (!strcmp(a, "--count") && kind == CLI_PING) {
            if (!opt_uint(a, v, 1, CLI_MAX_PINGS, &c.count)) {
                return EXIT_USAGE;
            }
        } else if (!strcmp(a, "--bytes") && kind == CLI_ECHO) {
            if (!opt_uint(a, v, 1, CLI_MAX_BYTES, &c.bytes)) {
                return EXIT_USAGE;
            }
            have_bytes = true;
        } else if (!strcmp(a, "--streams") && kind == CLI_ECHO) {
            if (!opt_uint(a, v, 1, CLI_MAX_STREAMS, &c.streams)) {
                return EXIT_USAGE;
            }
        } else if (!strcmp(a, "--upload-bytes") && kind == CLI_PERF) {
            if (!opt_uint(a, v, 0, CLI_MAX_BYTES, &c.up)) {
                return EXIT_USAGE;
            }
        } else if (!strcmp(a, "--download-bytes") && kind == CLI_PERF) {
            if (!opt_uint(a, v, 0, CLI_MAX_BYTES, &c.down)) {
                return EXIT_USAGE;
            }
        } else {
            goto bad;
        }
    }
    if (kind != CLI_NODE && !c.target) {
        fprintf(stderr, "golemnet: missing MULTIADDR\n");
        goto bad;
    }
    if (kind == CLI_ECHO && !have_bytes) {
        fprintf(stderr, "golemnet: echo needs --bytes N\n");
        goto bad;
    }
    if (kind == CLI_PERF && c.up == 0 && c.down == 0) {
        fprintf(stderr, "golemnet: perf needs --upload-bytes and/or --download-bytes\n");
        goto bad;
    }
    if (c.key_file && c.key_seed) {
        fprintf(stderr, "golemnet: --key and --key-seed exclude each other\n");
        return EXIT_USAGE;
    }
    if (kind == CLI_NODE && c.n_listen == 0) {
        c.listen[c.n_listen++] = "/ip4/127.0.0.1/tcp/0";
    }
    gn_log_set(cli_log, NULL, level);
    int rc = cli_run(&c);
    for (size_t k = 0; k < c.n_options; k++) {
        free(c.option_copies[k]);
    }
    return rc;
bad:
    usage(stderr);
    return EXIT_USAGE;
}

int main(int argc, char **argv)
{
    /* --json may appear anywhere; remove it from the argument list */
    int n = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            json_out = true;
        } else {
            argv[n++] = argv[i];
        }
    }
    argc = n;
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "id")) {
        return cmd_id(argc - 2, argv + 2);
    }
    if (!strcmp(cmd, "keygen")) {
        return cmd_keygen(argc - 2, argv + 2);
    }
    if (!strcmp(cmd, "multiaddr")) {
        return cmd_multiaddr(argc - 2, argv + 2);
    }
    if (!strcmp(cmd, "node")) {
        return cmd_net(CLI_NODE, argc - 2, argv + 2);
    }
    if (!strcmp(cmd, "ping")) {
        return cmd_net(CLI_PING, argc - 2, argv + 2);
    }
    if (!strcmp(cmd, "echo")) {
        return cmd_net(CLI_ECHO, argc - 2, argv + 2);
    }
    if (!strcmp(cmd, "perf")) {
        return cmd_net(CLI_PERF, argc - 2, argv + 2);
    }
    if (!strcmp(cmd, "version")) {
        if (json_out) {
            printf("{\"event\":\"version\",\"version\":\"%s\"}\n", gn_version());
        } else {
            printf("golemnet %s\n", gn_version());
        }
        return EXIT_SUCCESS;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return EXIT_SUCCESS;
    }
    fprintf(stderr, "golemnet: unknown command '%s'\n", cmd);
    usage(stderr);
    return EXIT_USAGE;
}
