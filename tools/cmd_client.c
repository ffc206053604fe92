/*
 * golemnet CLI: commands on a running daemon (`golemnet daemon`), through
 * the C IPC client (golemnet/ipc.h). docs/cli.md "Commands on a daemon".
 *
 *   peers, dial MA, send CHANNEL|PEER MSG, listen MA, ping PEER|CHANNEL,
 *   dht OP ..., events
 *
 * Same contract as the other commands: --json (one object per line, each
 * with "event"), exit 0 success, 1 failure (an error line naming what was
 * wrong), 2 bad usage. `ping` and `dht` also exist as one-shot commands
 * that run a node of their own; they talk to a daemon when --socket is
 * given.
 */
#include "golemnet/golemnet.h"
#include "golemnet/ipc.h"

#include "cli.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CC_USAGE 2

static volatile sig_atomic_t cc_signal;

static void cc_on_signal(int sig)
{
    cc_signal = sig;
}

/* ------------------------------------------------------------------ help */

#define CC_HELP_COMMON                                                                       \
    "  --socket PATH                 the daemon's control socket: a path, /unix/PATH or\n"   \
    "                                a loopback /ip4/127.0.0.1/tcp/N (default: the\n"        \
    "                                daemon's default, see 'golemnet daemon --help')\n"      \
    "  --timeout S                   bound for each call, seconds (default 30)\n"            \
    "  --json                        one JSON object per line on stdout\n"

static const struct {
    const char *cmd;
    const char *text;
} cc_helps[] = {
    {"peers", "usage: golemnet peers [--socket PATH] [--json]\n"
              "List the daemon's open channels: one 'peer' line each, then a 'peers' line\n"
              "with the count.\n\n" CC_HELP_COMMON},
    {"dial", "usage: golemnet dial MA [--socket PATH] [--json]\n"
             "Make the daemon dial MA (a multiaddr with or without /p2p/ID, /p2p/ID or a\n"
             "bare peer ID) and print the open channel.\n\n" CC_HELP_COMMON},
    {"send", "usage: golemnet send CHANNEL|PEER MSG [--hex] [--socket PATH] [--json]\n"
             "Send MSG on /golem/msg/1.0.0: on channel CHANNEL (a channel id, as 'peers'\n"
             "prints it), or to PEER (a peer ID of a connected peer, or a multiaddr the\n"
             "daemon dials).\n\n"
             "  --hex                         MSG is hex\n" CC_HELP_COMMON},
    {"listen", "usage: golemnet listen MA [--socket PATH] [--json]\n"
               "Make the daemon listen on MA; print the bound address.\n\n" CC_HELP_COMMON},
    {"events", "usage: golemnet events [--socket PATH] [--json]\n"
               "Print the daemon node's events as they happen, until SIGINT/SIGTERM or until\n"
               "the daemon closes the connection.\n\n" CC_HELP_COMMON},
    {"ping", "usage: golemnet ping PEER|CHANNEL --socket PATH [--count N] [--json]\n"
             "Ping through a running daemon: PEER a peer ID or multiaddr (dialled if\n"
             "needed), CHANNEL a channel id. (Without --socket, and with a multiaddr or\n"
             "peer ID, 'golemnet ping' runs a node of its own: 'golemnet help ping'.)\n\n"
             "  --count N                     pings (default 1, at most 1000000)\n"
             CC_HELP_COMMON},
    {"dht", "usage: golemnet dht OPERATION --socket PATH [--json]\n"
            "One DHT operation through a running daemon's node (without --socket, 'golemnet\n"
            "dht' runs a short-lived node: 'golemnet help dht').\n\n"
            "operations:\n"
            "  find-peer PEER_ID             the peer's addresses\n"
            "  get KEY                       the best valid record stored under KEY\n"
            "  put KEY VALUE                 store a record\n"
            "  provide CID                   announce the daemon's node as a provider\n"
            "  find-providers CID [--max N]  providers of CID (N: 1..1000, default 20)\n"
            "  closest-peers KEY             the peers closest to KEY\n\n"
            "  --hex-key, --hex-value        KEY / VALUE are hex\n" CC_HELP_COMMON},
};

const char *cmd_client_help(const char *cmd)
{
    for (size_t i = 0; i < sizeof cc_helps / sizeof cc_helps[0]; i++) {
        if (!strcmp(cc_helps[i].cmd, cmd)) {
            return cc_helps[i].text;
        }
    }
    return NULL;
}

static const char *cc_cmd = "golemnet";

static int cc_usage(const char *fmt, ...) GN_PRINTF(1, 2);
static int cc_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("golemnet: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: see 'golemnet %s --help'\n", cc_cmd);
    return CC_USAGE;
}

/* ---------------------------------------------------------------- output */

static void cc_ms(const char *key, gn_time t)
{
    printf(cli_json ? ",\"%s\":%.3f" : " %s=%.3f", key, (double)t / 1e6);
}

static void cc_strv(const char *key, const gn_ipc_strv *sv)
{
    if (cli_json) {
        printf(",\"%s\":[", key);
        for (size_t i = 0; i < sv->n; i++) {
            if (i) {
                putchar(',');
            }
            cli_json_str(sv->v[i]);
        }
        putchar(']');
    } else {
        printf(" %s=", key);
        for (size_t i = 0; i < sv->n; i++) {
            printf("%s%s", i ? "," : "", sv->v[i]);
        }
        if (sv->n == 0) {
            putchar('-');
        }
    }
}

static void cc_peer_str(const gn_peer_id *p, char out[GN_PEER_ID_MAX_STRLEN])
{
    if (p->len == 0 || gn_peer_id_to_string(p, out, GN_PEER_ID_MAX_STRLEN) < 0) {
        out[0] = '\0';
    }
}

/*
 * A failure: "golemnet: WHAT: <daemon's message> (GN_E...)" on stderr and,
 * with --json, an error line. Returns EXIT_FAILURE.
 */
static int cc_fail(gn_ipc_client *c, const char *what, int rc)
{
    char msg[GN_IPC_ERROR_MAX] = "";
    if (c) {
        gn_ipc_last_error(c, msg, sizeof msg);
    }
    if (!msg[0]) {
        snprintf(msg, sizeof msg, "%s", gn_strerror(rc));
    }
    fprintf(stderr, "golemnet: %s: %s (%s)\n", what, msg, gn_err_name(rc));
    if (cli_json) {
        cli_out_begin("error");
        cli_out_str("what", what);
        cli_out_str("error", gn_err_name(rc));
        cli_out_str("message", msg);
        cli_out_end();
    }
    return EXIT_FAILURE;
}

/* ---------------------------------------------------------------- options */

typedef struct cc_opts {
    const char *socket;
    const char *pos[4];
    size_t npos;
    double timeout_s;
    bool timeout_set;
    unsigned long long count;
    unsigned long long max;
    bool hex, hex_key, hex_value;
} cc_opts;

enum { CCF_SOCKET = 1, CCF_TIMEOUT = 2, CCF_COUNT = 4, CCF_MAX = 8, CCF_HEX = 16, CCF_HEXKV = 32 };

/* The flags @cmd takes. */
static unsigned cc_flags_of(const char *cmd)
{
    unsigned f = CCF_SOCKET | CCF_TIMEOUT;
    if (!strcmp(cmd, "ping")) {
        f |= CCF_COUNT;
    } else if (!strcmp(cmd, "send")) {
        f |= CCF_HEX;
    } else if (!strcmp(cmd, "dht")) {
        f |= CCF_MAX | CCF_HEXKV;
    }
    return f;
}

static bool cc_uint(const char *s, unsigned long long lo, unsigned long long hi,
                    unsigned long long *out)
{
    char *end = NULL;
    if (!s[0] || s[0] == '-' || s[0] == '+') {
        return false;
    }
    unsigned long long v = strtoull(s, &end, 10);
    if (!end || *end || v < lo || v > hi) {
        return false;
    }
    *out = v;
    return true;
}

/* Parses argv[1..] of @cmd into @o; returns 0 or CC_USAGE after saying why. */
static int cc_parse(const char *cmd, int argc, char **argv, cc_opts *o)
{
    unsigned f = cc_flags_of(cmd);
    memset(o, 0, sizeof *o);
    o->timeout_s = 30;
    o->count = 1;
    o->max = 20;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            if (o->npos == sizeof o->pos / sizeof o->pos[0]) {
                return cc_usage("unexpected argument '%s' for '%s'", a, cmd);
            }
            o->pos[o->npos++] = a;
            continue;
        }
        char name[32];
        const char *val = NULL;
        const char *eq = strchr(a, '=');
        size_t nl = eq ? (size_t)(eq - a) : strlen(a);
        if (nl >= sizeof name) {
            nl = sizeof name - 1;
        }
        memcpy(name, a, nl);
        name[nl] = '\0';
        struct {
            const char *name;
            unsigned bit;
            bool value;
        } const flags[] = {
            {"--socket", CCF_SOCKET, true},  {"--timeout", CCF_TIMEOUT, true},
            {"--count", CCF_COUNT, true},    {"--max", CCF_MAX, true},
            {"--hex", CCF_HEX, false},       {"--hex-key", CCF_HEXKV, false},
            {"--hex-value", CCF_HEXKV, false},
        };
        int k = -1;
        for (size_t j = 0; j < sizeof flags / sizeof flags[0]; j++) {
            if (!strcmp(flags[j].name, name) && (flags[j].bit & f)) {
                k = (int)j;
            }
        }
        if (k < 0) {
            return cc_usage("unknown option '%s' for '%s'", name, cmd);
        }
        if (flags[k].value) {
            if (eq) {
                val = eq + 1;
            } else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
                val = argv[++i];
            } else {
                return cc_usage("option '%s' needs a value", name);
            }
        } else if (eq) {
            return cc_usage("option '%s' takes no value", name);
        }
        if (!strcmp(name, "--socket")) {
            if (!val[0]) {
                return cc_usage("bad value '' for --socket: expected a socket path or multiaddr");
            }
            o->socket = val;
        } else if (!strcmp(name, "--timeout")) {
            char *end = NULL;
            double t = strtod(val, &end);
            if (!end || *end || !(t > 0) || t > 86400) {
                fprintf(stderr, "golemnet: bad value '%s' for --timeout: expected seconds, more "
                                "than 0 and at most 86400\n", val);
                return CC_USAGE;
            }
            o->timeout_s = t;
            o->timeout_set = true;
        } else if (!strcmp(name, "--count")) {
            if (!cc_uint(val, 1, 1000000, &o->count)) {
                fprintf(stderr, "golemnet: bad value '%s' for --count: expected an integer "
                                "1..1000000\n", val);
                return CC_USAGE;
            }
        } else if (!strcmp(name, "--max")) {
            if (!cc_uint(val, 1, 1000, &o->max)) {
                fprintf(stderr, "golemnet: bad value '%s' for --max: expected an integer "
                                "1..1000\n", val);
                return CC_USAGE;
            }
        } else if (!strcmp(name, "--hex")) {
            o->hex = true;
        } else if (!strcmp(name, "--hex-key")) {
            o->hex_key = true;
        } else {
            o->hex_value = true;
        }
    }
    return 0;
}

/* Connects to the daemon of --socket (or the default); prints why not. */
static int cc_connect(const cc_opts *o, gn_ipc_client **out)
{
    gn_ipc_options opt;
    gn_ipc_options_default(&opt);
    opt.timeout = (gn_time)(o->timeout_s * 1e9);
    char def[GN_IPC_PATH_MAX] = "";
    const char *addr = o->socket;
    if (!addr) {
        if (gn_ipc_default_socket(def, sizeof def) < 0) {
            fprintf(stderr, "golemnet: no default control socket path: give --socket PATH\n");
            return EXIT_FAILURE;
        }
        addr = def;
    }
    int rc = gn_ipc_connect(addr, &opt, out);
    if (rc < 0) {
        const char *why = rc == GN_ENOTFOUND ? "no socket there: is 'golemnet daemon' running?"
                          : rc == GN_ECONNREFUSED ? "nobody listens there: the daemon is not "
                                                    "running (a stale socket file)"
                          : rc == GN_EACCES       ? "permission denied, or not a loopback address"
                          : rc == GN_EPARSE       ? "not a socket path, /unix/PATH or a loopback "
                                                    "/ip4|/ip6 .../tcp/PORT"
                          : rc == GN_EVERSION     ? "the daemon speaks another protocol version"
                                                  : gn_strerror(rc);
        fprintf(stderr, "golemnet: cannot connect to the daemon at '%s': %s (%s)\n", addr, why,
                gn_err_name(rc));
        if (cli_json) {
            cli_out_begin("error");
            cli_out_str("what", "connect");
            cli_out_str("socket", addr);
            cli_out_str("error", gn_err_name(rc));
            cli_out_str("message", why);
            cli_out_end();
        }
        return EXIT_FAILURE;
    }
    return 0;
}

/* A channel id: all digits, 1.. */
static bool cc_channel_id(const char *s, uint64_t *id)
{
    unsigned long long v;
    if (!cc_uint(s, 1, UINT64_MAX, &v)) {
        return false;
    }
    *id = v;
    return true;
}

static const char *cc_state_name(int st)
{
    static const char *const names[] = {"dialing", "upgrading", "open", "closing", "closed"};
    return st >= 0 && st <= 4 ? names[st] : "unknown";
}

static void cc_chan_line(const char *event, const gn_channel_info *info)
{
    char peer[GN_PEER_ID_MAX_STRLEN];
    cc_peer_str(&info->remote_peer, peer);
    cli_out_begin(event);
    cli_out_u64("channel_id", info->id);
    cli_out_str("peer_id", peer);
    cli_out_str("state", cc_state_name((int)info->state));
    cli_out_str("direction", info->direction == GN_DIR_INBOUND ? "inbound" : "outbound");
    cli_out_str("local_addr", info->local_addr);
    cli_out_str("remote_addr", info->remote_addr);
    cli_out_str("security", info->security);
    cli_out_str("muxer", info->muxer);
    cli_out_end();
}

/* -------------------------------------------------------------- commands */

static int cc_peers(gn_ipc_client *c, const cc_opts *o)
{
    if (o->npos) {
        return cc_usage("unexpected argument '%s' for 'peers'", o->pos[0]);
    }
    gn_channel_info *v = NULL;
    size_t n = 0;
    int rc = gn_ipc_peers(c, &v, &n);
    if (rc < 0) {
        return cc_fail(c, "peers", rc);
    }
    for (size_t i = 0; i < n; i++) {
        cc_chan_line("peer", &v[i]);
    }
    gn_free(v);
    cli_out_begin("peers");
    cli_out_u64("count", n);
    cli_out_end();
    return 0;
}

static int cc_dial(gn_ipc_client *c, const cc_opts *o)
{
    if (o->npos != 1) {
        return o->npos ? cc_usage("unexpected argument '%s' for 'dial'", o->pos[1])
                       : cc_usage("dial needs MA, the peer's multiaddr or peer ID");
    }
    gn_ipc_dial_result r;
    int rc = gn_ipc_dial(c, o->pos[0], &r);
    if (rc < 0) {
        char what[GN_MA_MAX_STRLEN + 8];
        snprintf(what, sizeof what, "dial %s", o->pos[0]);
        return cc_fail(c, what, rc);
    }
    char peer[GN_PEER_ID_MAX_STRLEN];
    cc_peer_str(&r.peer, peer);
    cli_out_begin("dialed");
    cli_out_u64("channel_id", r.channel_id);
    cli_out_str("peer_id", peer);
    cli_out_str("remote_addr", r.remote_addr);
    cli_out_end();
    return 0;
}

static int cc_send(gn_ipc_client *c, const cc_opts *o)
{
    if (o->npos != 2) {
        return o->npos > 2 ? cc_usage("unexpected argument '%s' for 'send'", o->pos[2])
                           : cc_usage("send needs CHANNEL|PEER and MSG");
    }
    const char *msg = o->pos[1];
    size_t len = strlen(msg);
    uint8_t *buf = NULL;
    if (o->hex) {
        buf = gn_malloc(len / 2 + 1);
        if (!buf || !cli_hex(msg, buf, len / 2 + 1, &len)) {
            gn_free(buf);
            fprintf(stderr, "golemnet: bad value '%s' for MSG: --hex needs an even number of "
                            "hex digits\n", msg);
            return CC_USAGE;
        }
    }
    const uint8_t *data = buf ? buf : (const uint8_t *)msg;
    uint64_t ch = 0, req = 0;
    int rc;
    bool by_channel = cc_channel_id(o->pos[0], &ch);
    if (by_channel) {
        rc = gn_ipc_channel_send(c, ch, data, len);
    } else {
        rc = gn_ipc_unicast(c, o->pos[0], data, len, &req);
    }
    gn_free(buf);
    if (rc < 0) {
        char what[GN_MA_MAX_STRLEN + 16];
        snprintf(what, sizeof what, "send to %s%s", by_channel ? "channel " : "", o->pos[0]);
        return cc_fail(c, what, rc);
    }
    cli_out_begin("sent");
    if (by_channel) {
        cli_out_u64("channel_id", ch);
    } else {
        cli_out_str("to", o->pos[0]);
        cli_out_u64("request_id", req);
    }
    cli_out_u64("bytes", len);
    cli_out_end();
    return 0;
}

static int cc_listen(gn_ipc_client *c, const cc_opts *o)
{
    if (o->npos != 1) {
        return o->npos ? cc_usage("unexpected argument '%s' for 'listen'", o->pos[1])
                       : cc_usage("listen needs MA, the address to listen on");
    }
    char bound[GN_NODE_ADDR_MAX] = "";
    int rc = gn_ipc_listen(c, o->pos[0], bound, sizeof bound);
    if (rc < 0) {
        char what[GN_MA_MAX_STRLEN + 8];
        snprintf(what, sizeof what, "listen %s", o->pos[0]);
        return cc_fail(c, what, rc);
    }
    cli_out_begin("listening");
    cli_out_str("addr", bound);
    cli_out_end();
    return 0;
}

static int cc_ping(gn_ipc_client *c, const cc_opts *o)
{
    if (o->npos != 1) {
        return o->npos ? cc_usage("unexpected argument '%s' for 'ping'", o->pos[1])
                       : cc_usage("ping needs PEER or CHANNEL");
    }
    uint64_t ch = 0;
    bool by_channel = cc_channel_id(o->pos[0], &ch);
    if (!by_channel) {
        gn_ipc_dial_result r;
        int rc = gn_ipc_dial(c, o->pos[0], &r);
        if (rc < 0) {
            char what[GN_MA_MAX_STRLEN + 8];
            snprintf(what, sizeof what, "ping %s", o->pos[0]);
            return cc_fail(c, what, rc);
        }
        ch = r.channel_id;
    }
    gn_channel_info info;
    memset(&info, 0, sizeof info);
    int rc = gn_ipc_channel_state(c, ch, &info);
    if (rc < 0) {
        char what[64];
        snprintf(what, sizeof what, "ping channel %llu", (unsigned long long)ch);
        return cc_fail(c, what, rc);
    }
    char peer[GN_PEER_ID_MAX_STRLEN];
    cc_peer_str(&info.remote_peer, peer);
    unsigned long long ok = 0;
    gn_time min = 0, max = 0, sum = 0;
    int last = 0;
    for (unsigned long long seq = 1; seq <= o->count && !cc_signal; seq++) {
        gn_time rtt = 0;
        rc = gn_ipc_channel_ping(c, ch, &rtt);
        if (rc < 0) {
            last = rc;
            char msg[GN_IPC_ERROR_MAX];
            gn_ipc_last_error(c, msg, sizeof msg);
            fprintf(stderr, "golemnet: ping %llu: %s (%s)\n", seq, msg, gn_err_name(rc));
            if (rc == GN_ECLOSED || rc == GN_ENOTFOUND || rc == GN_ENEGOTIATION) {
                break;
            }
            continue;
        }
        cli_out_begin("ping");
        cli_out_str("peer_id", peer);
        cli_out_u64("channel_id", ch);
        cli_out_u64("seq", seq);
        cc_ms("rtt_ms", rtt);
        cli_out_end();
        if (ok == 0 || rtt < min) {
            min = rtt;
        }
        if (rtt > max) {
            max = rtt;
        }
        sum += rtt;
        ok++;
    }
    if (o->count > 1) {
        cli_out_begin("ping_summary");
        cli_out_str("peer_id", peer);
        cli_out_u64("received", ok);
        if (ok) {
            cc_ms("min_ms", min);
            cc_ms("avg_ms", sum / ok);
            cc_ms("max_ms", max);
        }
        cli_out_end();
    }
    if (ok == 0) {
        return cc_fail(c, "ping", last ? last : GN_ECANCELED);
    }
    return 0;
}

static void cc_dht_peers(const char *list, const gn_ipc_dht_result *r)
{
    if (!cli_json) {
        cli_out_u64(list, r->npeers);
        return;
    }
    printf(",\"%s\":[", list);
    for (size_t i = 0; i < r->npeers; i++) {
        char id[GN_PEER_ID_MAX_STRLEN];
        cc_peer_str(&r->peers[i].peer, id);
        printf("%s{\"peer_id\":", i ? "," : "");
        cli_json_str(id);
        cc_strv("addrs", &r->peers[i].addrs);
        putchar('}');
    }
    putchar(']');
}

static int cc_dht(gn_ipc_client *c, const cc_opts *o)
{
    static const char *const ops[] = {"find-peer", "get", "put", "provide", "find-providers",
                                      "closest-peers"};
    int op = -1;
    for (int i = 0; o->npos && i < 6; i++) {
        if (!strcmp(o->pos[0], ops[i])) {
            op = i;
        }
    }
    if (op < 0) {
        return o->npos ? cc_usage("unknown dht operation '%s' (one of find-peer, get, put, "
                                  "provide, find-providers, closest-peers)", o->pos[0])
                       : cc_usage("dht needs an operation");
    }
    size_t want = op == 2 ? 3 : 2;
    if (o->npos != want) {
        return o->npos > want ? cc_usage("unexpected argument '%s' for 'dht %s'", o->pos[want],
                                         ops[op])
                              : cc_usage("dht %s needs %s", ops[op],
                                         op == 0   ? "PEER_ID"
                                         : op == 2 ? "KEY and VALUE"
                                         : op == 3 || op == 4 ? "CID"
                                                              : "KEY");
    }
    const char *arg = o->pos[1];
    uint8_t key[GN_NODE_DHT_KEY_MAX];
    size_t key_len = 0;
    if (op == 3 || op == 4) {
        const char *why = NULL;
        if (!cli_cid_key(arg, key, sizeof key, &key_len, &why)) {
            fprintf(stderr, "golemnet: bad CID '%s': %s\n", arg, why);
            return CC_USAGE;
        }
    } else if (op != 0) {
        if (o->hex_key) {
            if (!cli_hex(arg, key, sizeof key, &key_len) || key_len == 0) {
                fprintf(stderr, "golemnet: bad KEY '%s': --hex-key needs 1..%u bytes in hex\n",
                        arg, GN_NODE_DHT_KEY_MAX);
                return CC_USAGE;
            }
        } else {
            key_len = strlen(arg);
            if (key_len == 0 || key_len > sizeof key) {
                fprintf(stderr, "golemnet: bad KEY '%s': 1..%u bytes\n", arg, GN_NODE_DHT_KEY_MAX);
                return CC_USAGE;
            }
            memcpy(key, arg, key_len);
        }
    }
    uint8_t *value = NULL;
    size_t value_len = 0;
    if (op == 2) {
        const char *v = o->pos[2];
        value_len = strlen(v);
        if (o->hex_value) {
            value = gn_malloc(value_len / 2 + 1);
            if (!value || !cli_hex(v, value, value_len / 2 + 1, &value_len)) {
                gn_free(value);
                fprintf(stderr, "golemnet: bad VALUE '%s': --hex-value needs hex\n", v);
                return CC_USAGE;
            }
        }
        if (value_len > GN_NODE_DHT_VALUE_MAX) {
            gn_free(value);
            fprintf(stderr, "golemnet: bad VALUE: at most %u bytes\n", GN_NODE_DHT_VALUE_MAX);
            return CC_USAGE;
        }
    }
    gn_ipc_dht_result r;
    memset(&r, 0, sizeof r);
    int rc;
    switch (op) {
    case 0: rc = gn_ipc_dht_find_peer(c, arg, &r); break;
    case 1: rc = gn_ipc_dht_get(c, key, key_len, &r); break;
    case 2:
        rc = gn_ipc_dht_put(c, key, key_len, value ? value : (const uint8_t *)o->pos[2],
                            value_len);
        break;
    case 3: rc = gn_ipc_dht_provide(c, key, key_len); break;
    case 4: rc = gn_ipc_dht_find_providers(c, key, key_len, (size_t)o->max, &r); break;
    default: rc = gn_ipc_dht_closest_peers(c, key, key_len, &r); break;
    }
    gn_free(value);
    char msg[GN_IPC_ERROR_MAX] = "";
    if (rc < 0) {
        gn_ipc_last_error(c, msg, sizeof msg);
    }
    cli_out_begin("dht");
    cli_out_str("op", ops[op]);
    cli_out_str("status", rc == 0 ? "ok" : gn_err_name(rc));
    switch (op) {
    case 0:
        cli_out_str("peer_id", arg);
        if (rc == 0 && r.npeers > 0) {
            cc_strv("addrs", &r.peers[0].addrs);
        }
        break;
    case 1:
    case 2:
    case 5:
        cli_out_bytes("key", key, key_len);
        if (op == 1 && rc == 0) {
            cli_out_bytes("value", r.value ? r.value : (const uint8_t *)"", r.value_len);
        } else if (op == 5) {
            cc_dht_peers("peers", &r);
        }
        break;
    default:
        cli_out_str("cid", arg);
        cli_out_bytes("key", key, key_len);
        if (op == 4) {
            cc_dht_peers("providers", &r);
        }
        break;
    }
    if (rc < 0) {
        cli_out_str("message", msg[0] ? msg : gn_strerror(rc));
    }
    cli_out_end();
    gn_ipc_dht_result_free(&r);
    if (rc < 0) {
        char what[1100];
        snprintf(what, sizeof what, "dht %s %s", ops[op], arg);
        return cc_fail(c, what, rc);
    }
    return 0;
}

static const char *cc_event_name(gn_node_event_type t)
{
    switch ((int)t) {
    case GN_NODE_EV_LISTENING: return "listening";
    case GN_NODE_EV_LISTEN_FAILED: return "listen_failed";
    case GN_NODE_EV_DIAL: return "dial";
    case GN_NODE_EV_CHANNEL_OPENED: return "channel_opened";
    case GN_NODE_EV_CHANNEL_CLOSED: return "channel_closed";
    case GN_NODE_EV_IDENTIFY: return "identify";
    case GN_NODE_EV_MESSAGE: return "message";
    case GN_NODE_EV_SEND_FAILED: return "send_failed";
    case GN_NODE_EV_PING: return "ping";
    case GN_NODE_EV_CLOSED: return "closed";
    case GN_NODE_EV_START_FAILED: return "start_failed";
    case GN_NODE_EV_WRITABLE: return "writable";
    case GN_NODE_EV_REACHABILITY: return "reachability";
    case GN_IPC_EV_LOST: return "lost";
    case GN_IPC_EV_DISCONNECTED: return "disconnected";
    default: return "unknown";
    }
}

static void cc_event_line(gn_node_event *ev)
{
    char peer[GN_PEER_ID_MAX_STRLEN];
    cc_peer_str(&ev->peer, peer);
    cli_out_begin(cc_event_name(ev->type));
    switch ((int)ev->type) {
    case GN_IPC_EV_LOST:
        cli_out_u64("count", ev->count);
        break;
    case GN_IPC_EV_DISCONNECTED:
        cli_out_str("error", gn_err_name(ev->status));
        cli_out_str("reason", ev->addr);
        break;
    case GN_NODE_EV_LISTENING:
    case GN_NODE_EV_LISTEN_FAILED:
        cli_out_str("addr", ev->addr);
        break;
    case GN_NODE_EV_MESSAGE: {
        gn_slice s = ev->message ? gn_rcbuf_slice(ev->message) : (gn_slice){NULL, 0};
        cli_out_u64("channel_id", ev->channel_id);
        cli_out_str("peer_id", peer);
        cli_out_u64("bytes", s.len);
        cli_out_bytes("data", s.base ? s.base : (const uint8_t *)"", s.len);
        break;
    }
    case GN_NODE_EV_SEND_FAILED:
        cli_out_u64("request_id", ev->request_id);
        cli_out_u64("count", ev->count);
        break;
    case GN_NODE_EV_PING:
        cli_out_u64("channel_id", ev->channel_id);
        cli_out_str("peer_id", peer);
        cc_ms("rtt_ms", ev->rtt);
        break;
    case GN_NODE_EV_IDENTIFY:
        cli_out_u64("channel_id", ev->channel_id);
        cli_out_str("peer_id", peer);
        cli_out_str("agent_version", ev->protocol);
        cli_out_str("observed_addr", ev->addr);
        break;
    case GN_NODE_EV_REACHABILITY: {
        static const char *const names[] = {"unknown", "public", "private"};
        cli_out_str("reachability", ev->status >= 0 && ev->status <= 2 ? names[ev->status] : "unknown");
        cli_out_str("addr", ev->addr);
        break;
    }
    default:
        if (ev->channel_id) {
            cli_out_u64("channel_id", ev->channel_id);
        }
        if (peer[0]) {
            cli_out_str("peer_id", peer);
        }
        if (ev->addr[0]) {
            cli_out_str("addr", ev->addr);
        }
        if (ev->protocol[0]) {
            cli_out_str("protocol", ev->protocol);
        }
        if (ev->request_id) {
            cli_out_u64("request_id", ev->request_id);
        }
        break;
    }
    if (ev->status < 0 && ev->type != GN_IPC_EV_DISCONNECTED) {
        cli_out_str("error", gn_err_name(ev->status));
    }
    cli_out_end();
}

static int cc_events(gn_ipc_client *c, const cc_opts *o)
{
    if (o->npos) {
        return cc_usage("unexpected argument '%s' for 'events'", o->pos[0]);
    }
    int rc = gn_ipc_subscribe(c, GN_IPC_EVENTS_ALL);
    if (rc < 0) {
        return cc_fail(c, "subscribe", rc);
    }
    cli_out_begin("subscribed");
    cli_out_str("daemon_version", gn_ipc_daemon_version(c));
    cli_out_end();
    /* bounded by the signal, the end of the connection or a write error on stdout */
    while (!cc_signal) {
        gn_node_event ev;
        rc = gn_ipc_next_event(c, &ev, 100 * GN_MS);
        if (rc == GN_ETIMEDOUT || rc == GN_EAGAIN) {
            continue;
        }
        if (rc < 0) {
            break;
        }
        cc_event_line(&ev);
        if (ev.message) {
            gn_rcbuf_rele(ev.message);
        }
        if (ferror(stdout)) {
            /* the reader went away (EPIPE where SIGPIPE is ignored, e.g. inherited) */
            fprintf(stderr, "golemnet events: writing to stdout failed; stopping\n");
            return EXIT_FAILURE;
        }
        if (ev.type == GN_IPC_EV_DISCONNECTED) {
            return ev.status == GN_EEOF || ev.status == GN_ECLOSED ? 0 : EXIT_FAILURE;
        }
    }
    return 0;
}

/* Usage errors found before connecting: argument counts, the DHT operation. */
static int cc_check_args(const char *cmd, const cc_opts *o)
{
    static const struct {
        const char *cmd;
        size_t n;
        const char *what;
    } need[] = {
        {"peers", 0, NULL},
        {"events", 0, NULL},
        {"dial", 1, "MA, the peer's multiaddr or peer ID"},
        {"listen", 1, "MA, the address to listen on"},
        {"send", 2, "CHANNEL|PEER and MSG"},
        {"ping", 1, "PEER or CHANNEL"},
    };
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
        if (strcmp(need[i].cmd, cmd) != 0) {
            continue;
        }
        if (o->npos > need[i].n) {
            return cc_usage("unexpected argument '%s' for '%s'", o->pos[need[i].n], cmd);
        }
        if (o->npos < need[i].n) {
            return cc_usage("%s needs %s", cmd, need[i].what);
        }
        return 0;
    }
    /* dht */
    static const char *const ops[] = {"find-peer", "get", "put", "provide", "find-providers",
                                      "closest-peers"};
    if (o->npos == 0) {
        return cc_usage("dht needs an operation (find-peer, get, put, provide, find-providers, "
                        "closest-peers)");
    }
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        if (!strcmp(ops[i], o->pos[0])) {
            return 0;
        }
    }
    return cc_usage("unknown dht operation '%s' (one of find-peer, get, put, provide, "
                    "find-providers, closest-peers)", o->pos[0]);
}

int cmd_client_main(const char *cmd, int argc, char **argv, bool json)
{
    static const char *const own[] = {"peers", "dial", "send", "listen", "events"};
    bool mine = false;
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++) {
        mine = mine || !strcmp(cmd, own[i]);
    }
    if (!mine && (!strcmp(cmd, "ping") || !strcmp(cmd, "dht"))) {
        /* the daemon form: --socket given (else the one-shot command) */
        for (int i = 1; i < argc && !mine; i++) {
            mine = !strcmp(argv[i], "--socket") || !strncmp(argv[i], "--socket=", 9);
        }
    }
    if (!mine) {
        return -1;
    }
    cli_json = json;
    cc_cmd = cmd;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(cmd_client_help(cmd), stdout);
            return 0;
        }
    }
    cc_opts o;
    int rc = cc_parse(cmd, argc, argv, &o);
    if (rc) {
        return rc;
    }
    rc = cc_check_args(cmd, &o);
    if (rc) {
        return rc;
    }
    gn_ipc_client *c = NULL;
    rc = cc_connect(&o, &c);
    if (rc) {
        return rc;
    }
    cli_sigsave old;
    cli_signals_catch(cc_on_signal, &old);
    if (!strcmp(cmd, "peers")) {
        rc = cc_peers(c, &o);
    } else if (!strcmp(cmd, "dial")) {
        rc = cc_dial(c, &o);
    } else if (!strcmp(cmd, "send")) {
        rc = cc_send(c, &o);
    } else if (!strcmp(cmd, "listen")) {
        rc = cc_listen(c, &o);
    } else if (!strcmp(cmd, "ping")) {
        rc = cc_ping(c, &o);
    } else if (!strcmp(cmd, "dht")) {
        rc = cc_dht(c, &o);
    } else {
        rc = cc_events(c, &o);
    }
    gn_ipc_free(c);
    cli_signals_restore(&old);
    return rc;
}
