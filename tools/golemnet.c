/*
 * golemnet - the command-line tool.
 *
 * Contract (docs/cli.md): every command takes --json (one JSON object per
 * line on stdout); exit 0 on success, 1 on failure, 2 on bad usage; logs and
 * errors go to stderr.
 *
 * The network commands (node, ping, echo, perf, dht) run one gn_node on a loop
 * the tool owns and runs on the main thread (gn_node_config.loop): every
 * callback runs on the main thread, and node events are popped right after
 * each loop iteration, so all output comes from one thread. A 50 ms timer
 * notices SIGINT/SIGTERM (the handler only sets a flag) and wakes the loop.
 */
#include "golemnet/golemnet.h"

#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EXIT_USAGE 2
#define CLI_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

bool cli_json;

/* tools/cmd_daemon.c: golemnet daemon (docs/daemon.md) */
extern const char cmd_daemon_help[];
int cmd_daemon(int argc, char **argv, bool json);

/* ------------------------------------------------------------------------
 * Help texts: `golemnet --help` lists the commands, `golemnet CMD --help`
 * (or `golemnet help CMD`) gives one command's usage and options.
 */

#define HELP_NET                                                                             \
    "network options:\n"                                                                     \
    "  --key FILE | --key-seed N     identity (default: a fresh one)\n"                      \
    "  --security LIST               e.g. noise,ecies (default: all but plaintext,\n"        \
    "                                Noise first)\n"                                         \
    "  --muxer LIST                  e.g. yamux,mplex (default: all, yamux first)\n"         \
    "  --router LIST                 routers asked for bare /p2p/<id> dials, e.g.\n"         \
    "                                static (default: all built in; \"\" none)\n"            \
    "  --discovery LIST              e.g. bootstrap (default: all built in)\n"               \
    "  --nat LIST                    NAT components (default: all built in)\n"               \
    "  --protocols LIST              protocol components besides identify, ping, msg,\n"     \
    "                                echo, perf (default: all not explicit-only)\n"          \
    "  --relay                       serve circuit relay v2 (hop): be a relay\n"             \
    "  --autonat                     run AutoNAT (reachability; answers dial-backs)\n"       \
    "  --dcutr                       run DCUtR (hole punching of relayed channels)\n"        \
    "  --autorelay MA/p2p/ID         reach peers through this relay, and listen through\n"   \
    "                                it while private (repeatable; autorelay.relay)\n"        \
    "  --route MA/p2p/ID             a static route (repeatable; static.peer)\n"             \
    "  --bootstrap MA/p2p/ID         a bootstrap peer, dialled with backoff\n"               \
    "                                (repeatable; bootstrap.peer)\n"                         \
    "  --option COMPONENT.KEY=VALUE  a component option (repeatable; see\n"                  \
    "                                docs/components.md)\n"                                  \
    "  --log LEVEL                   err, warning (default), notice, info, debug\n"          \
    "  --log-components LIST         components to log, e.g. all,-tcp or node,noise\n"       \
    "                                (default: all)\n"

#define HELP_DIAL                                                                            \
    "dial-side options:\n"                                                                   \
    "  --listen MA                   also listen (repeatable; none by default)\n"            \
    "  --identify                    require the peer's identify before acting\n"            \
    "                                (by default: wait for it at most 5 s)\n"                \
    "  --timeout S                   bound for the whole command, seconds (default 30;\n"    \
    "                                ping: 30 plus (count - 1) intervals)\n"

#define HELP_TARGET                                                                          \
    "  MA                            the peer: /ip4/ADDR/tcp/PORT[/p2p/ID], or /p2p/ID or\n" \
    "                                a bare peer ID (address from --route, --bootstrap\n"    \
    "                                or the routers)\n"

#define HELP_SIZES                                                                           \
    "byte counts take a unit: 500, 10k (10^3), 1M (10^6), 1G, 1KiB (2^10), 1MiB, 1GiB\n"

#define HELP_COMMON "  --json                        one JSON object per line on stdout\n"

#define HELP_KAD                                                                             \
    "  --bootstrap-kad MA/p2p/ID     a Kademlia bootstrap peer (repeatable; kad.bootstrap);\n" \
    "                                DHT work waits until these are identified (at most\n"   \
    "                                10 s)\n"                                                \
    "  --dht-namespace NS            accept any record under /NS/... (repeatable; only\n"   \
    "                                /pk/ records are accepted otherwise)\n"

static const struct cli_help {
    const char *cmd;
    const char *text;
} cli_helps[] = {
    {"id", "usage: golemnet id [--key FILE | --key-seed N] [--json]\n"
           "Print the peer ID of an identity (a fresh random one by default).\n\n"
           "  --key FILE                    a key file written by 'golemnet keygen'\n"
           "  --key-seed N                  a deterministic test key, N in 0..4294967295\n"
           HELP_COMMON},
    {"keygen", "usage: golemnet keygen --out FILE [--key-type TYPE [--bits N]] [--json]\n"
               "Write a new key file (libp2p PrivateKey protobuf, mode 0600; never\n"
               "overwrites) and print its peer ID. Any node command takes it with --key.\n\n"
               "  --out FILE                    the file to create\n"
               "  --key-type TYPE               ed25519 (default), rsa, secp256k1 or ecdsa (P-256)\n"
               "  --bits N                      RSA modulus size, 2048 (default) to 8192\n"
               HELP_COMMON},
    {"multiaddr", "usage: golemnet multiaddr ADDR [--json]\n"
                  "Parse a multiaddr; print its canonical form, its bytes and its components.\n"
                  "A bad address is named part by part (exit 1).\n\n" HELP_COMMON},
    {"version", "usage: golemnet version [--json]   (or golemnet --version)\n"
                "Print the library version.\n\n" HELP_COMMON},
    {"node", "usage: golemnet node [--listen MA]... [--echo] [--perf] [options]\n"
             "Run a node until SIGINT/SIGTERM; it serves identify, ping and /golem/msg/1.0.0.\n\n"
             "  --listen MA                   listen address (repeatable, at most 16;\n"
             "                                default /ip4/127.0.0.1/tcp/0)\n"
             "  --echo                        also serve /echo/1.0.0\n"
             "  --perf                        also serve /perf/1.0.0\n"
             "  --dht-put KEY=VALUE           once the kad bootstrap peers are identified, put\n"
             "                                this record (repeatable, text KEY and VALUE)\n"
             "  --dht-provide CID             ... and announce this node as a provider of CID\n"
             "                                (repeatable); the router republishes both\n"
             HELP_KAD HELP_COMMON "\n" HELP_NET},
    {"ping", "usage: golemnet ping MA [--count N] [--interval T] [options]\n"
             "Ping a peer (/ipfs/ping/1.0.0): one line per reply, then a summary line\n"
             "(sent, received, loss, min/avg/max round trip).\n\n" HELP_TARGET
             "  --count N                     pings to send (default 1, at most 1000000)\n"
             "  --interval T                  pause between pings: milliseconds, or with a\n"
             "                                unit: 250ms, 2s (default 0, at most 3600s)\n"
             HELP_COMMON
             "\n" HELP_DIAL "\n" HELP_NET},
    {"echo", "usage: golemnet echo MA --bytes N [--streams K] [options]\n"
             "Send N random bytes on each of K concurrent /echo/1.0.0 streams and check\n"
             "every echoed byte. Progress on stderr when it is a terminal.\n\n" HELP_TARGET
             "  --bytes N                     bytes per stream (at least 1, at most 1PiB)\n"
             "  --streams K                   concurrent streams (default 1, at most 1024)\n"
             HELP_COMMON
             "\n" HELP_SIZES "\n" HELP_DIAL "\n" HELP_NET},
    {"perf", "usage: golemnet perf MA [--upload-bytes N] [--download-bytes N] [options]\n"
             "libp2p perf (/perf/1.0.0): an upload run, then a download run. Progress on\n"
             "stderr when it is a terminal.\n\n" HELP_TARGET
             "  --upload-bytes N              bytes to send (at most 1PiB)\n"
             "  --download-bytes N            bytes to ask for (at most 1PiB)\n" HELP_COMMON
             "\n" HELP_SIZES "\n" HELP_DIAL "\n" HELP_NET},
    {"dht", "usage: golemnet dht OPERATION [--bootstrap-kad MA/p2p/ID]... [options]\n"
            "One Kademlia DHT operation (/ipfs/kad/1.0.0) through a short-lived node, then\n"
            "exit: 0 when it succeeded, 1 with an error line naming the operation and the\n"
            "reason otherwise.\n\n"
            "operations:\n"
            "  find-peer PEER_ID             the peer's addresses (a peer ID or MA/p2p/ID)\n"
            "  get KEY                       the best valid record stored under KEY\n"
            "  put KEY VALUE                 store a record at the peers closest to KEY\n"
            "  provide CID --listen MA       announce this (short-lived) node as a provider\n"
            "  find-providers CID [--max N]  providers of CID (N: 1..1000, default 20)\n"
            "  closest-peers KEY             the peers closest to KEY, closest first\n\n"
            "  KEY                           text, e.g. /test/foo (at most 1024 bytes)\n"
            "  CID                           CIDv0 (Qm...) or CIDv1 (bafy..., z...): the DHT\n"
            "                                key is its multihash\n"
            "  --hex-key                     KEY is hex (binary keys: /pk/<peer id bytes>)\n"
            "  --hex-value                   VALUE is hex\n"
            "  --timeout S                   bound for the whole command, seconds (default 30)\n"
            "  --listen MA                   also listen (none by default)\n"
            HELP_KAD HELP_COMMON
            "\nThe node runs kad in client mode (it asks, it is not asked) unless\n"
            "--option kad.mode=server|auto says otherwise. Values and keys are printed as\n"
            "text when they are printable UTF-8, else hex in value_hex / key_hex.\n\n"
            HELP_NET},
    {"daemon", cmd_daemon_help},
#ifdef GN_CLI_ERGO
    {"ergo", cmd_ergo_help},
#endif
#ifdef GN_CLI_PUBSUB
    {"pubsub", cmd_pubsub_help},
#endif
#ifdef GN_CLI_XFER
    {"share", cmd_share_help},
    {"fetch", cmd_fetch_help},
#endif
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: golemnet <command> [options]\n"
            "       golemnet <command> --help     that command's usage and options\n"
            "       golemnet --version\n"
            "\n"
            "commands:\n"
            "  id [--key FILE | --key-seed N]   print the peer ID (fresh identity by default)\n"
            "  keygen --out FILE [--key-type T] write a new key file (libp2p PrivateKey)\n"
            "  multiaddr ADDR                   parse a multiaddr, print its parts and bytes\n"
            "  version                          print the library version\n"
            "  node [--listen MA]... [--echo] [--perf]\n"
            "                                   run a node until SIGINT/SIGTERM\n"
            "                                   (default --listen /ip4/127.0.0.1/tcp/0)\n"
            "  ping MA [--count N] [--interval T]\n"
            "                                   ping a peer N times (default 1), then a summary\n"
            "  echo MA --bytes N [--streams K]  echo N random bytes on K concurrent streams\n"
            "  perf MA [--upload-bytes N] [--download-bytes N]\n"
            "                                   libp2p perf: an upload run, then a download run\n"
            "  dht find-peer ID | get KEY | put KEY VALUE | provide CID\n"
            "      | find-providers CID | closest-peers KEY\n"
            "                                   one Kademlia DHT operation\n"
            "  daemon [--socket PATH] [--config FILE]\n"
            "                                   run a node controlled through a control socket\n");
#ifdef GN_CLI_XFER
    fputs("  share FILE [--bootstrap-kad MA]...  serve a file under its CID until killed\n"
          "  fetch CID [--from MA]... [-o PATH]  download a shared file (resumable)\n",
          f);
#endif
#ifdef GN_CLI_ERGO
    fputs("  ergo send|call|ping|info NODE ... | ergo serve --name NAME@HOST\n"
          "                                   one Ergo operation, or serve an echo process\n",
          f);
#endif
    fprintf(f,
            "\n"
            "commands on a running daemon (--socket PATH, default the daemon's):\n"
            "  peers | dial MA | send CHANNEL|PEER MSG | listen MA | events\n"
            "  ping PEER|CHANNEL --socket PATH | dht OPERATION --socket PATH\n"
            "\n"
            "options: --json   one JSON object per line on stdout (every command)\n"
            "exit status: 0 success, 1 failure, 2 bad usage\n");
}

/* The help text of @cmd, or NULL for an unknown command. */
static const char *cmd_help_text(const char *cmd)
{
    for (size_t i = 0; i < CLI_ARRAY_LEN(cli_helps); i++) {
        if (!strcmp(cli_helps[i].cmd, cmd)) {
            return cli_helps[i].text;
        }
    }
    return NULL;
}

/* The command being run, for messages ("ping"). */
static const char *cli_cmd_name = "golemnet";

/* A usage error: the message, then where to look; returns EXIT_USAGE. */
static int usage_error(const char *fmt, ...) GN_PRINTF(1, 2);
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("golemnet: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (cmd_help_text(cli_cmd_name)) {
        fprintf(stderr, "\nusage: see 'golemnet %s --help'\n", cli_cmd_name);
    } else {
        fputs("\nusage: see 'golemnet --help'\n", stderr);
    }
    return EXIT_USAGE;
}

/* ------------------------------------------------------------------------
 * Output: one line per event, JSON or "event key=value ..." text.
 */

void cli_json_str(const char *s)
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

void cli_out_begin(const char *event)
{
    if (cli_json) {
        printf("{\"event\":\"%s\"", event);
    } else {
        fputs(event, stdout);
    }
}

void cli_out_str(const char *key, const char *val)
{
    if (cli_json) {
        printf(",\"%s\":", key);
        cli_json_str(val);
    } else {
        printf(" %s=%s", key, val[0] ? val : "-");
    }
}

void cli_out_u64(const char *key, uint64_t v)
{
    printf(cli_json ? ",\"%s\":%llu" : " %s=%llu", key, (unsigned long long)v);
}

static void out_num(const char *key, double v)
{
    printf(cli_json ? ",\"%s\":%.6f" : " %s=%.6f", key, v);
}

static void out_bool(const char *key, bool v)
{
    printf(cli_json ? ",\"%s\":%s" : " %s=%s", key, v ? "true" : "false");
}

static void cli_out_strv(const char *key, const char *const *v, size_t n)
{
    if (cli_json) {
        printf(",\"%s\":[", key);
        for (size_t i = 0; i < n; i++) {
            if (i) {
                putchar(',');
            }
            cli_json_str(v[i]);
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

void cli_out_end(void)
{
    if (cli_json) {
        putchar('}');
    }
    putchar('\n');
    fflush(stdout);
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "golemnet: %s: %s (%s)\n", what, gn_strerror(rc), gn_err_name(rc));
    if (cli_json) {
        printf("{\"event\":\"error\",\"what\":");
        cli_json_str(what);
        printf(",\"error\":\"%s\"}\n", gn_err_name(rc));
        fflush(stdout);
    }
    return EXIT_FAILURE;
}

/* ------------------------------------------------------------------------
 * Options: which command takes which flag, and value parsers that name the
 * flag and the value when they refuse it.
 */

enum {
    CMDF_ID = 1u << 0,
    CMDF_KEYGEN = 1u << 1,
    CMDF_NODE = 1u << 2,
    CMDF_PING = 1u << 3,
    CMDF_ECHO = 1u << 4,
    CMDF_PERF = 1u << 5,
    CMDF_DHT = 1u << 6,
    CMDF_DIAL = CMDF_PING | CMDF_ECHO | CMDF_PERF,
    CMDF_NET = CMDF_NODE | CMDF_DIAL | CMDF_DHT
};

#define GNI_CLI_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

typedef struct cli_flag {
    const char *name;
    unsigned cmds;  /* CMDF_* of the commands that take it */
    bool has_value; /* takes the next argument (or --name=value) */
} cli_flag;

static const cli_flag cli_flags[] = {
    {"--key", CMDF_ID | CMDF_NET, true},
    {"--key-seed", CMDF_ID | CMDF_NET, true},
    {"--out", CMDF_KEYGEN, true},
    {"--key-type", CMDF_KEYGEN, true},
    {"--bits", CMDF_KEYGEN, true},
    {"--security", CMDF_NET, true},
    {"--muxer", CMDF_NET, true},
    {"--log", CMDF_NET, true},
    {"--log-components", CMDF_NET, true},
    {"--router", CMDF_NET, true},
    {"--discovery", CMDF_NET, true},
    {"--nat", CMDF_NET, true},
    {"--protocols", CMDF_NET, true},
    {"--relay", CMDF_NET, false},
    {"--autonat", CMDF_NET, false},
    {"--dcutr", CMDF_NET, false},
    {"--autorelay", CMDF_NET, true},
    {"--option", CMDF_NET, true},
    {"--route", CMDF_NET, true},
    {"--bootstrap", CMDF_NET, true},
    {"--limit", CMDF_NODE, true},
    {"--protect", CMDF_NODE, true},
    {"--listen", CMDF_NET, true},
    {"--echo", CMDF_NODE, false},
    {"--perf", CMDF_NODE, false},
    {"--identify", CMDF_DIAL, false},
    {"--timeout", CMDF_DIAL | CMDF_DHT, true},
    {"--bootstrap-kad", CMDF_NODE | CMDF_DHT, true},
    {"--dht-namespace", CMDF_NODE | CMDF_DHT, true},
    {"--dht-put", CMDF_NODE, true},
    {"--dht-provide", CMDF_NODE, true},
    {"--max", CMDF_DHT, true},
    {"--hex-key", CMDF_DHT, false},
    {"--hex-value", CMDF_DHT, false},
    {"--count", CMDF_PING, true},
    {"--interval", CMDF_PING, true},
    {"--bytes", CMDF_ECHO, true},
    {"--streams", CMDF_ECHO, true},
    {"--upload-bytes", CMDF_PERF, true},
    {"--download-bytes", CMDF_PERF, true},
};

/* One parsed argument. */
typedef struct cli_arg {
    const char *name;  /* the flag ("--count"), or NULL for a positional */
    const char *value; /* its value, or the positional argument */
    char namebuf[32];  /* --name=value: the name part */
} cli_arg;

/*
 * Reads the argument at argv[*i] for command @cmd (CMDF_* bit @bit) into
 * @a, advancing *i past a flag's value. Returns 0, or EXIT_USAGE after
 * saying why (unknown option, missing value). A value that starts with
 * "--" is taken for a forgotten value, not as the value.
 */
static int cli_next_arg(unsigned bit, int argc, char **argv, int *i, cli_arg *a)
{
    const char *s = argv[*i];
    memset(a, 0, sizeof *a);
    if (s[0] != '-' || s[1] == '\0') {
        a->value = s;
        return 0;
    }
    const char *eq = strncmp(s, "--", 2) == 0 ? strchr(s, '=') : NULL;
    const char *name = s;
    if (eq) {
        size_t n = (size_t)(eq - s);
        if (n >= sizeof a->namebuf) {
            n = sizeof a->namebuf - 1;
        }
        memcpy(a->namebuf, s, n);
        a->namebuf[n] = '\0';
        name = a->namebuf;
    }
    const cli_flag *f = NULL;
    for (size_t k = 0; k < CLI_ARRAY_LEN(cli_flags); k++) {
        if (!strcmp(cli_flags[k].name, name) && (cli_flags[k].cmds & bit)) {
            f = &cli_flags[k];
        }
    }
    if (!f) {
        /* say which commands take it, if any */
        static const char *const names[] = {"id",   "keygen", "node", "ping",
                                            "echo", "perf",   "dht"};
        char takers[64] = "";
        for (size_t k = 0; k < CLI_ARRAY_LEN(cli_flags); k++) {
            for (unsigned b = 0; !strcmp(cli_flags[k].name, name) && b < CLI_ARRAY_LEN(names);
                 b++) {
                if (cli_flags[k].cmds & (1u << b)) {
                    size_t len = strlen(takers);
                    snprintf(takers + len, sizeof takers - len, "%s%s", len ? ", " : "",
                             names[b]);
                }
            }
        }
        if (takers[0]) {
            return usage_error("unknown option '%s' for '%s' (an option of: %s)", name,
                               cli_cmd_name, takers);
        }
        return usage_error("unknown option '%s' for '%s'", name, cli_cmd_name);
    }
    a->name = f->name;
    if (!f->has_value) {
        if (eq) {
            return usage_error("option '%s' takes no value", f->name);
        }
        return 0;
    }
    if (eq) {
        a->value = eq + 1;
        return 0;
    }
    if (*i + 1 >= argc || strncmp(argv[*i + 1], "--", 2) == 0) {
        return usage_error("option '%s' needs a value", f->name);
    }
    a->value = argv[++*i];
    return 0;
}

/* Refuses @val for @opt: names both and says what was expected. */
static int bad_value(const char *opt, const char *val, const char *expected)
{
    fprintf(stderr, "golemnet: bad value '%s' for %s: %s\n", val, opt, expected);
    return EXIT_USAGE;
}

/* Parses a decimal integer in [0, max]; false on anything else. */
static bool parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end;
    if (s[0] < '0' || s[0] > '9') {
        return false; /* no sign, no spaces */
    }
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max) {
        return false;
    }
    *out = v;
    return true;
}

/* An integer option value in [min, max]; says why on stderr when it is bad. */
static bool opt_uint(const char *name, const char *val, unsigned long long min,
                     unsigned long long max, uint64_t *out)
{
    unsigned long long v;
    if (!parse_uint(val, max, &v) || v < min) {
        char want[96];
        snprintf(want, sizeof want, "expected an integer %llu..%llu", min, max);
        bad_value(name, val, want);
        return false;
    }
    *out = v;
    return true;
}

/*
 * Byte counts: digits, then an optional unit. Decimal units are powers of
 * 1000 (k or K, M, G, T, P, each optionally followed by B), binary ones
 * powers of 1024 (Ki, Mi, Gi, Ti, Pi, optionally followed by B); a bare B
 * is bytes. Returns 0, -1 for junk, -2 for more than @max.
 */
static int parse_size(const char *s, uint64_t max, uint64_t *out)
{
    static const struct {
        const char *unit;
        uint64_t mult;
    } units[] = {
        {"", 1},          {"B", 1},
        {"k", 1000},      {"K", 1000},      {"kB", 1000},     {"KB", 1000},
        {"M", 1000000},   {"MB", 1000000},  {"G", 1000000000}, {"GB", 1000000000},
        {"T", 1000000000000ull},            {"TB", 1000000000000ull},
        {"P", 1000000000000000ull},         {"PB", 1000000000000000ull},
        {"Ki", 1ull << 10}, {"KiB", 1ull << 10}, {"Mi", 1ull << 20}, {"MiB", 1ull << 20},
        {"Gi", 1ull << 30}, {"GiB", 1ull << 30}, {"Ti", 1ull << 40}, {"TiB", 1ull << 40},
        {"Pi", 1ull << 50}, {"PiB", 1ull << 50},
    };
    if (s[0] < '0' || s[0] > '9') {
        return -1;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    bool too_big = errno == ERANGE;
    for (size_t i = 0; i < CLI_ARRAY_LEN(units); i++) {
        if (!strcmp(end, units[i].unit)) {
            if (too_big || v > max / units[i].mult) {
                return -2;
            }
            *out = v * units[i].mult;
            return 0;
        }
    }
    return -1;
}

/* A byte-count option value in [min, max]; says why on stderr when it is bad. */
static bool opt_size(const char *name, const char *val, uint64_t min, uint64_t max,
                     uint64_t *out)
{
    char want[160];
    switch (parse_size(val, max, out)) {
    case 0:
        if (*out >= min) {
            return true;
        }
        snprintf(want, sizeof want, "at least %llu byte%s", (unsigned long long)min,
                 min == 1 ? "" : "s");
        break;
    case -2:
        snprintf(want, sizeof want, "too large: at most %llu bytes (1PiB)",
                 (unsigned long long)max);
        break;
    default:
        snprintf(want, sizeof want,
                 "expected a byte count such as 500, 10k (10^3), 1M (10^6), 1G, 1KiB (2^10), "
                 "1MiB, 1GiB");
        break;
    }
    bad_value(name, val, want);
    return false;
}

/* --limit NAME=VALUE: the connection manager's limits (docs/limits.md). */
static const struct cli_limit {
    const char *name;
    gn_node_option opt;
    bool duration; /* VALUE in ms or with a unit; else a count */
} cli_limits[] = {
    {"max-connections", GN_NODE_OPT_MAX_CONNECTIONS, false},
    {"max-connections-per-peer", GN_NODE_OPT_MAX_CONNECTIONS_PER_PEER, false},
    {"max-connections-per-ip", GN_NODE_OPT_MAX_CONNECTIONS_PER_IP, false},
    {"max-upgrading", GN_NODE_OPT_MAX_UPGRADING, false},
    {"max-upgrading-per-ip", GN_NODE_OPT_MAX_UPGRADING_PER_IP, false},
    {"conn-high-water", GN_NODE_OPT_CONN_HIGH_WATER, false},
    {"conn-low-water", GN_NODE_OPT_CONN_LOW_WATER, false},
    {"conn-grace", GN_NODE_OPT_CONN_GRACE_MS, true},
    {"first-byte-timeout", GN_NODE_OPT_FIRST_BYTE_TIMEOUT_MS, true},
    {"idle-timeout", GN_NODE_OPT_IDLE_TIMEOUT_MS, true},
};

/* A duration in ms (bare number), or with the unit ms or s, at most @max_ms. */
static bool opt_ms(const char *name, const char *val, uint64_t max_ms, uint64_t *out_ms)
{
    char *end;
    errno = 0;
    unsigned long long v = val[0] >= '0' && val[0] <= '9' ? strtoull(val, &end, 10) : 0;
    uint64_t mult = 0;
    if (val[0] >= '0' && val[0] <= '9' && errno == 0) {
        mult = !strcmp(end, "") || !strcmp(end, "ms") ? 1 : !strcmp(end, "s") ? 1000 : 0;
    }
    if (mult == 0 || v > max_ms / mult) {
        char want[128];
        snprintf(want, sizeof want,
                 "expected milliseconds (250) or a duration with a unit (250ms, 2s), at most "
                 "%llus",
                 (unsigned long long)(max_ms / 1000));
        bad_value(name, val, want);
        return false;
    }
    *out_ms = v * mult;
    return true;
}

/* What is wrong with a multiaddr value of the given protocol. */
static const char *ma_value_problem(const char *proto)
{
    static const struct {
        const char *proto, *problem;
    } probs[] = {
        {"ip4", "is not an IPv4 address"},
        {"ip6", "is not an IPv6 address"},
        {"tcp", "is not a port number (0..65535)"},
        {"udp", "is not a port number (0..65535)"},
        {"p2p", "is not a peer ID"},
        {"dns", "is not a host name (1..255 bytes)"},
        {"dns4", "is not a host name (1..255 bytes)"},
        {"dns6", "is not a host name (1..255 bytes)"},
        {"unix", "is not an absolute path (or a percent-encoded one, %2F...)"},
        {"memory", "is not a 64-bit number"},
        {"dccp", "is not a port number (0..65535)"},
        {"sctp", "is not a port number (0..65535)"},
        {"dnsaddr", "is not a domain name (1..255 bytes)"},
        {"sni", "is not a server name (1..255 bytes)"},
        {"ip6zone", "is not an IPv6 zone (1..255 bytes)"},
        {"ipcidr", "is not a prefix length (0..255)"},
        {"onion", "is not <16 base32 characters>:<port 1..65535>"},
        {"onion3", "is not <56 base32 characters>:<port 1..65535>"},
        {"garlic64", "is not an I2P destination in I2P base64 (at least 386 bytes)"},
        {"garlic32", "is not an I2P address in base32 (32 or at least 35 bytes)"},
        {"certhash", "is not a multibase multihash (e.g. base64url 'uEi...')"},
        {"http-path", "is not a percent-encoded path segment"},
    };
    for (size_t i = 0; proto && i < CLI_ARRAY_LEN(probs); i++) {
        if (!strcmp(probs[i].proto, proto)) {
            return probs[i].problem;
        }
    }
    return "has a bad value";
}

/*
 * Parses @s as a multiaddr. On failure writes into @msg what is wrong,
 * naming the offending part: "bad multiaddr '/ip4/1.2.3/tcp/1': '/ip4/1.2.3'
 * is not an IPv4 address", and returns the gn_err.
 */
static int ma_check(const char *s, char *msg, size_t msg_len, gn_multiaddr **out)
{
    gn_multiaddr *ma = NULL;
    gn_ma_parse_error e;
    int rc = gn_multiaddr_parse_ex(s, &ma, &e);
    if (rc == 0) {
        if (out) {
            *out = ma;
        } else {
            gn_multiaddr_free(ma);
        }
        return 0;
    }
    int n = snprintf(msg, msg_len, "bad multiaddr '%s': ", s);
    if (n < 0 || (size_t)n >= msg_len) {
        return rc;
    }
    msg += n;
    msg_len -= (size_t)n;
    int plen = e.len > 200 ? 200 : (int)e.len; /* quote at most 200 bytes */
    const char *part = s + e.offset;
    switch (e.reason) {
    case GN_MA_PARSE_SYNTAX:
        if (s[0] == '\0') {
            snprintf(msg, msg_len, "it is empty");
        } else if (s[0] != '/') {
            snprintf(msg, msg_len, "a multiaddr starts with '/' (e.g. /ip4/127.0.0.1/tcp/4001)");
        } else if (e.len == 1) {
            snprintf(msg, msg_len, "empty component at byte %zu ('//')", e.offset);
        } else {
            snprintf(msg, msg_len, "%s", gn_strerror(rc));
        }
        break;
    case GN_MA_PARSE_PROTOCOL:
        snprintf(msg, msg_len, "'%.*s' is not a known protocol", plen, part);
        break;
    case GN_MA_PARSE_MISSING_VALUE:
        snprintf(msg, msg_len, "'%.*s' needs a value", plen, part);
        break;
    case GN_MA_PARSE_VALUE:
        snprintf(msg, msg_len, "'%.*s' %s", plen, part, ma_value_problem(e.protocol));
        break;
    case GN_MA_PARSE_TOO_LONG:
        snprintf(msg, msg_len,
                 "too long at '%.*s' (at most %d characters, %d components, %d bytes binary)",
                 plen, part, GN_MA_MAX_STRLEN - 1, GN_MA_MAX_COMPONENTS, GN_MA_MAX_BYTES);
        break;
    default:
        snprintf(msg, msg_len, "%s", gn_strerror(rc));
        break;
    }
    return rc;
}

/* Checks a multiaddr option value; says what is wrong (naming @opt) on stderr. */
static bool opt_multiaddr(const char *opt, const char *val)
{
    char msg[512];
    if (ma_check(val, msg, sizeof msg, NULL) == 0) {
        return true;
    }
    fprintf(stderr, "golemnet: %s: %s\n", opt, msg);
    return false;
}

/*
 * The peer a dial target names: the last /p2p/ component of a multiaddr,
 * or a bare peer ID. Returns 1 with *@out set, 0 if it names none, or
 * EXIT_USAGE after saying what is wrong with @target.
 */
static int target_peer(const char *target, gn_peer_id *out)
{
    char msg[512];
    if (target[0] != '/') {
        if (gn_peer_id_parse(target, strlen(target), out) == 0) {
            return 1;
        }
        fprintf(stderr,
                "golemnet: bad target '%s': neither a multiaddr (it would start with '/') "
                "nor a peer ID\n",
                target);
        return EXIT_USAGE;
    }
    gn_multiaddr *ma = NULL;
    if (ma_check(target, msg, sizeof msg, &ma) < 0) {
        fprintf(stderr, "golemnet: %s\n", msg);
        return EXIT_USAGE;
    }
    int found = 0;
    for (size_t i = 0; i < gn_multiaddr_count(ma); i++) {
        gn_ma_component comp;
        if (gn_multiaddr_component(ma, i, &comp) < 0) {
            continue;
        }
        if (comp.code == GN_MA_P2P_CIRCUIT) {
            found = 0; /* a relay's id so far; the target's comes after */
        } else if (comp.code == GN_MA_P2P &&
                   gn_peer_id_from_bytes(comp.value, comp.value_len, out) == 0) {
            found = 1;
        }
    }
    gn_multiaddr_free(ma);
    return found;
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
            bad_value("--key-seed", seed, "expected an integer 0..4294967295");
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
        cli_arg a;
        if (cli_next_arg(CMDF_ID, argc, argv, &i, &a) != 0) {
            return EXIT_USAGE;
        }
        if (!a.name) {
            return usage_error("unexpected argument '%s' for 'id'", a.value);
        }
        if (!strcmp(a.name, "--key")) {
            key_file = a.value;
        } else {
            seed = a.value;
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
    const char *kt = gn_key_type_name(gn_identity_key_type(id));
    gn_identity_free(id);
    if (cli_json) {
        printf("{\"event\":\"id\",\"peer_id\":\"%s\",\"peer_id_cid\":\"%s\",\"key_type\":\"%s\"}\n",
               b58, cid, kt);
    } else {
        printf("%s\n", b58);
    }
    return EXIT_SUCCESS;
}

static int cmd_keygen(int argc, char **argv)
{
    const char *out = NULL;
    gn_key_type type = GN_KEY_ED25519;
    unsigned long long bits = 0;
    for (int i = 0; i < argc; i++) {
        cli_arg a;
        if (cli_next_arg(CMDF_KEYGEN, argc, argv, &i, &a) != 0) {
            return EXIT_USAGE;
        }
        if (!a.name) {
            return usage_error("unexpected argument '%s' for 'keygen'", a.value);
        }
        if (!strcmp(a.name, "--key-type")) {
            if (gn_key_type_parse(a.value, &type) != 0) {
                bad_value("--key-type", a.value, "expected ed25519, rsa, secp256k1 or ecdsa");
                return EXIT_USAGE;
            }
        } else if (!strcmp(a.name, "--bits")) {
            if (!parse_uint(a.value, GN_RSA_MAX_BITS, &bits) || bits < GN_RSA_MIN_BITS) {
                bad_value("--bits", a.value, "expected an RSA size, 2048 to 8192");
                return EXIT_USAGE;
            }
        } else {
            out = a.value;
        }
    }
    if (!out) {
        return usage_error("keygen needs --out FILE");
    }
    if (bits && type != GN_KEY_RSA) {
        return usage_error("--bits applies to --key-type rsa only");
    }
    gn_identity *id = NULL;
    int rc = gn_identity_generate_type(type, (unsigned)bits, &id);
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
    if (cli_json) {
        printf("{\"event\":\"keygen\",\"peer_id\":\"%s\",\"key_type\":\"%s\",\"file\":", b58,
               gn_key_type_name(type));
        cli_json_str(out);
        printf("}\n");
    } else {
        printf("%s\n", b58);
    }
    return EXIT_SUCCESS;
}

static int cmd_multiaddr(int argc, char **argv)
{
    const char *addr = NULL;
    for (int i = 0; i < argc; i++) {
        cli_arg a;
        if (cli_next_arg(0, argc, argv, &i, &a) != 0) {
            return EXIT_USAGE;
        }
        if (addr) {
            return usage_error("unexpected argument '%s' for 'multiaddr' (one ADDR)", a.value);
        }
        addr = a.value;
    }
    if (!addr) {
        return usage_error("multiaddr needs ADDR");
    }
    gn_multiaddr *ma = NULL;
    char msg[512];
    int rc = ma_check(addr, msg, sizeof msg, &ma);
    if (rc < 0) {
        fprintf(stderr, "golemnet: %s\n", msg);
        if (cli_json) {
            cli_out_begin("error");
            cli_out_str("what", "multiaddr");
            cli_out_str("error", gn_err_name(rc));
            cli_out_str("message", msg);
            cli_out_end();
        }
        return EXIT_FAILURE;
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
    if (cli_json) {
        printf("{\"event\":\"multiaddr\",\"multiaddr\":");
        cli_json_str(str);
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
        if (cli_json) {
            printf("%s{\"protocol\":\"%s\",\"code\":%llu,\"value\":", i ? "," : "", c.name,
                   (unsigned long long)c.code);
            cli_json_str(val);
            printf("}");
        } else {
            printf("  %-12s %s\n", c.name, val);
        }
    }
    if (cli_json) {
        printf("]}\n");
    }
    gn_multiaddr_free(ma);
    return EXIT_SUCCESS;
}

/* ------------------------------------------------------------------------
 * Network commands: node, ping, echo, perf
 */

enum cli_cmd { CLI_NODE = 0, CLI_PING, CLI_ECHO, CLI_PERF, CLI_DHT };

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
#define CLI_MAX_INTERVAL_MS 3600000u
/* Progress on a terminal: at most this often. */
#define CLI_PROGRESS_EVERY (250 * GN_MS)
#define CLI_MAX_STREAMS 1024u
#define CLI_MAX_BYTES (1ull << 50) /* 1 PiB: bounded in practice by --timeout */
/* Dial side: how long to wait for the peer's identify before acting anyway. */
#define CLI_IDENTIFY_WAIT (5 * GN_S)
/* DHT work: how long to wait for the kad bootstrap peers' identify. */
#define CLI_KAD_BOOT_WAIT (10 * GN_S)
#define CLI_MAX_KAD_BOOT 16u   /* the kad component's own bound */
#define CLI_MAX_DHT_NS 8u
#define CLI_MAX_DHT_WORK 16u   /* --dht-put, --dht-provide each */
#define CLI_DHT_NS_MAX 63u     /* a namespace's length (gn_node_dht_set_validator) */
#define CLI_MAX_PROVIDERS 1000u
#define CLI_DEFAULT_PROVIDERS 20u

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

/* The DHT operations (golemnet dht OP, and node's --dht-put/--dht-provide). */
enum dht_op {
    DHT_NONE = 0,
    DHT_FIND_PEER,
    DHT_GET,
    DHT_PUT,
    DHT_PROVIDE,
    DHT_FIND_PROV,
    DHT_CLOSEST
};

/* One DHT call: its arguments (copies) and what the output names it by. */
typedef struct cli_dht {
    cli *c;
    int op;
    uint8_t key[GN_NODE_DHT_KEY_MAX];
    size_t key_len;
    uint8_t *value; /* put: heap copy */
    size_t value_len;
    gn_peer_id peer; /* find-peer */
    const char *arg; /* as given: the CID, the peer, the text key */
    size_t max;      /* find-providers */
    bool pending;
} cli_dht;

struct cli {
    int cmd;
    /* options */
    const char *target;
    const char *key_file, *key_seed, *security, *muxers;
    const char *listen[CLI_MAX_LISTEN];
    size_t n_listen;
    const char *routers, *discovery, *nat;
    const char *options[CLI_MAX_OPTIONS];
    gn_node_option limit_opt[16];
    uint64_t limit_val[16];
    size_t n_limits;
    gn_peer_id protect[16];
    size_t n_protect;
    char *option_copies[CLI_MAX_OPTIONS]; /* --route/--bootstrap expansions */
    size_t n_options;
    bool serve_echo, serve_perf, want_identify;
    const char *protocols;         /* --protocols, or NULL */
    bool want_relay, want_autonat, want_dcutr, want_autorelay;
    char protolist[512];           /* the protocol component list built from them */
    char routerlist[256];          /* the router list with autorelay added */
    uint64_t count, bytes, streams, up, down;
    gn_time timeout;
    bool timeout_set;  /* --timeout given */
    gn_time interval;  /* ping: pause between pings */
    gn_peer_id target_peer;
    bool has_target_peer;
    gn_time end_at; /* loop time the command must be over by (dial side; 0: none) */
    /* DHT: bootstrap peers to wait for, namespaces, the work */
    gn_peer_id kad_boot[CLI_MAX_KAD_BOOT];
    bool kad_boot_seen[CLI_MAX_KAD_BOOT];
    size_t n_kad_boot;
    const char *dht_ns[CLI_MAX_DHT_NS];
    gn_router_validator dht_val[CLI_MAX_DHT_NS];
    size_t n_dht_ns, dht_ns_pending;
    cli_dht *dht;   /* the work: one entry for dht, the node's --dht-put/--dht-provide */
    size_t n_dht;
    bool dht_started, kad_mode_set;
    /* runtime */
    gn_identity *id;
    gn_loop *loop;
    gn_node *node;
    gn_timer tick, deadline, grace, id_wait, ping_wait, kad_wait;
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
    uint64_t pings;          /* replies */
    uint64_t pings_sent;     /* pings started */
    gn_time rtt_min, rtt_max, rtt_sum;
    int ping_err;            /* the last failed ping's error */
    bool summary_done;
    bool progress;           /* stderr is a terminal and no --json */
    gn_time progress_at;     /* loop time of the last progress line */
    echo_stream *es;
    uint64_t echo_ok;
    gn_time t0;
    int perf_phase;
    uint64_t perf_base;     /* the channel's bytes out (upload) or in (download) at the run's start */
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

/* A progress line is on the terminal (stderr), without its newline. */
static bool progress_shown;

/* Erases the progress line, so that a message can take its place. */
static void progress_clear(void)
{
    if (progress_shown) {
        fputs("\r\033[K", stderr);
        progress_shown = false;
    }
}

/* "2026-12-04T22:33:39.123Z": UTC wall-clock time, milliseconds. */
static void utc_stamp(char out[32])
{
    struct timespec ts;
    struct tm tm;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || !gmtime_r(&ts.tv_sec, &tm)) {
        snprintf(out, 32, "-");
        return;
    }
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(ts.tv_nsec / 1000000));
}

/*
 * Library log lines: "<UTC time> golemnet <level> <component>: <message>",
 * e.g. "2026-12-04T22:33:39.123Z golemnet warning static: ...".
 */
void cli_log(void *ud, gn_log_level level, const char *component, const char *msg)
{
    (void)ud;
    static const char *const names[] = {"emerg", "alert", "crit", "err",
                                        "warning", "notice", "info", "debug"};
    char stamp[32];
    utc_stamp(stamp);
    progress_clear();
    fprintf(stderr, "%s golemnet %s %s: %s\n", stamp, names[(unsigned)level & 7u],
            component && component[0] ? component : "-", msg);
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

/*
 * An error line ({"event":"error"} with --json) and a message on stderr;
 * @key/@val (both NULL, or both set) add a field to the JSON line.
 */
/* An error line with up to two extra string fields (a NULL value: left out). */
static void cli_error_kv2(const char *what, int rc, const char *detail, const char *key,
                          const char *val, const char *key2, const char *val2)
{
    progress_clear();
    fprintf(stderr, "golemnet: %s: %s (%s)%s%s\n", what, gn_strerror(rc), gn_err_name(rc),
            detail ? ": " : "", detail ? detail : "");
    if (cli_json) {
        cli_out_begin("error");
        cli_out_str("what", what);
        cli_out_str("error", gn_err_name(rc));
        cli_out_str("message", detail ? detail : gn_strerror(rc));
        if (key && val) {
            cli_out_str(key, val);
        }
        if (key2 && val2) {
            cli_out_str(key2, val2);
        }
        cli_out_end();
    }
}

static void cli_error_kv(const char *what, int rc, const char *detail, const char *key,
                         const char *val)
{
    cli_error_kv2(what, rc, detail, key, val, NULL, NULL);
}

static void cli_error(const char *what, int rc, const char *detail)
{
    cli_error_kv(what, rc, detail, NULL, NULL);
}

/* ping: the closing line (once), when at least one ping was sent. */
static void ping_summary(cli *c)
{
    if (c->cmd != CLI_PING || c->summary_done || c->pings_sent == 0) {
        return;
    }
    c->summary_done = true;
    char peer[GN_PEER_ID_MAX_STRLEN] = "";
    if (c->ch) {
        gn_channel_info info;
        gn_channel_state_get(c->ch, &info);
        cli_peer_str(&info.remote_peer, peer);
    }
    cli_out_begin("ping_summary");
    cli_out_str("peer_id", peer);
    cli_out_u64("sent", c->pings_sent);
    cli_out_u64("received", c->pings);
    printf(cli_json ? ",\"loss_pct\":%.1f" : " loss_pct=%.1f",
           100.0 * (double)(c->pings_sent - c->pings) / (double)c->pings_sent);
    if (c->pings > 0) {
        printf(cli_json ? ",\"min_ms\":%.3f,\"avg_ms\":%.3f,\"max_ms\":%.3f"
                        : " min_ms=%.3f avg_ms=%.3f max_ms=%.3f",
               (double)c->rtt_min / 1e6, (double)c->rtt_sum / (double)c->pings / 1e6,
               (double)c->rtt_max / 1e6);
    }
    cli_out_end();
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
    ping_summary(c);
    progress_clear();
    c->finishing = true;
    c->exit_code = code;
    gn_timer_stop(&c->deadline);
    gn_timer_stop(&c->id_wait);
    gn_timer_stop(&c->ping_wait);
    gn_timer_stop(&c->kad_wait);
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
    ping_summary(c); /* before the error line, which stays the last one */
    cli_error(what, rc, detail);
    cli_finish(c, EXIT_FAILURE);
}

/* Binary units for humans: "12.3 MiB". */
static void human_bytes(double v, char out[24])
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    unsigned u = 0;
    while (v >= 1024.0 && u + 1 < CLI_ARRAY_LEN(units)) {
        v /= 1024.0;
        u++;
    }
    snprintf(out, 24, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

/*
 * echo/perf on a terminal: one progress line on stderr, rewritten in place
 * at most every CLI_PROGRESS_EVERY (never with --json or when stderr is not
 * a terminal: c->progress is false then).
 */
static void progress_update(cli *c)
{
    gn_time now = gn_loop_now(c->loop);
    if (!c->progress || !c->acting || c->finishing || now - c->progress_at < CLI_PROGRESS_EVERY) {
        return;
    }
    c->progress_at = now;
    double secs = ns_to_s(now - c->t0);
    char line[200], a[24], b[24], r[24];
    if (c->cmd == CLI_ECHO && c->es) {
        uint64_t done = 0;
        for (uint64_t i = 0; i < c->streams; i++) {
            done += c->es[i].recv;
        }
        uint64_t total = c->bytes * c->streams;
        human_bytes((double)done, a);
        human_bytes((double)total, b);
        human_bytes(secs > 0 ? (double)done / secs : 0.0, r);
        snprintf(line, sizeof line, "golemnet: echo %s of %s checked (%.0f%%), %s/s, %.1f s", a,
                 b, 100.0 * (double)done / (double)total, r, secs);
    } else if (c->cmd == CLI_PERF && (c->perf_phase == 1 || c->perf_phase == 2) && c->ch) {
        /* the channel's byte counters since the run began (mux framing
         * included: capped at the run's size) */
        gn_channel_metrics m;
        gn_channel_metrics_get(c->ch, &m);
        uint64_t total = c->perf_phase == 1 ? c->up : c->down;
        uint64_t now_b = c->perf_phase == 1 ? m.bytes_out : m.bytes_in;
        uint64_t done = now_b > c->perf_base ? now_b - c->perf_base : 0;
        done = done > total ? total : done;
        human_bytes((double)done, a);
        human_bytes((double)total, b);
        human_bytes(secs > 0 ? (double)done / secs : 0.0, r);
        snprintf(line, sizeof line, "golemnet: perf %s %s of %s (%.0f%%), %s/s, %.1f s",
                 c->perf_phase == 1 ? "upload" : "download", a, b,
                 total ? 100.0 * (double)done / (double)total : 100.0, r, secs);
    } else {
        return;
    }
    fprintf(stderr, "\r%s\033[K", line);
    progress_shown = true;
}

static void cli_tick(gn_timer *t, void *arg)
{
    cli *c = arg;
    if (cli_signal && !c->finishing) {
        int sig = cli_signal;
        progress_clear();
        fprintf(stderr, "golemnet: %s: closing\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
        if (c->cmd == CLI_NODE) {
            cli_finish(c, EXIT_SUCCESS);
        } else {
            cli_fail(c, "interrupted", GN_ECANCELED, sig == SIGINT ? "SIGINT" : "SIGTERM");
        }
    }
    progress_update(c);
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
    cli_out_begin(event);
    cli_out_u64("channel_id", info->id);
    cli_out_str("peer_id", peer);
    cli_out_str("direction", info->direction == GN_DIR_INBOUND ? "inbound" : "outbound");
    cli_out_str("local_addr", info->local_addr);
    cli_out_str("remote_addr", info->remote_addr);
    cli_out_str("security", info->security);
    cli_out_str("muxer", info->muxer);
    if (closed) {
        cli_out_str("reason", status < 0 ? gn_err_name(status) : "closed");
    }
    cli_out_end();
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
static void cli_kad_on_identify(cli *c, const gn_node_event *ev);
static void cli_dht_maybe_begin(cli *c);

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
        cli_out_strv(list == 0 ? "protocols" : "addrs", (const char *const *)v, k);
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
    cli_out_begin("identify");
    cli_out_u64("channel_id", ev->channel_id);
    cli_out_str("peer_id", peer);
    out_bool("ok", ev->status == 0);
    if (ev->status < 0) {
        cli_out_str("error", gn_err_name(ev->status));
    } else {
        cli_out_str("agent_version", ev->protocol);
        cli_out_str("observed_addr", ev->addr);
        cli_peer_lists(c, &ev->peer);
    }
    cli_out_end();
    c->identified[c->nidentified++ % CLI_ARRAY_LEN(c->identified)] = ev->channel_id;
    if (c->ch && ev->channel_id == c->ch_id && !c->acting && !c->finishing) {
        if (ev->status < 0 && c->want_identify) {
            cli_fail(c, "identify", ev->status, NULL);
        } else {
            cli_start_action(c);
        }
    }
    cli_kad_on_identify(c, ev);
}

static void cli_on_listen(cli *c, const gn_node_event *ev)
{
    if (c->announced) {
        /* a listener a component opened later (autorelay through a relay) */
        cli_out_begin(ev->type == GN_NODE_EV_LISTENING ? "listen_added" : "listen_failed");
        cli_out_str("addr", ev->addr);
        if (ev->status < 0) {
            cli_out_str("error", gn_err_name(ev->status));
        }
        cli_out_end();
        return;
    }
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
        cli_out_begin("listening");
        cli_out_str("peer_id", self);
        cli_out_strv("addrs", (const char *const *)c->bound, c->n_bound);
        cli_out_end();
        cli_dht_maybe_begin(c);
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
    case GN_NODE_EV_REACHABILITY: {
        static const char *const names[] = {"unknown", "public", "private"};
        cli_out_begin("reachability");
        cli_out_str("reachability", ev->status >= 0 && ev->status <= 2 ? names[ev->status] : "unknown");
        cli_out_str("addr", ev->addr);
        cli_out_end();
        break;
    }
    case GN_NODE_EV_MESSAGE: {
        char peer[GN_PEER_ID_MAX_STRLEN];
        cli_peer_str(&ev->peer, peer);
        cli_out_begin("message");
        cli_out_u64("channel_id", ev->channel_id);
        cli_out_str("peer_id", peer);
        cli_out_u64("bytes", ev->message ? gn_rcbuf_slice(ev->message).len : 0);
        cli_out_end();
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

/* Failures after which the next ping may still get through. */
static bool ping_transient(int rc)
{
    return rc == GN_ETIMEDOUT || rc == GN_ESTREAMRESET || rc == GN_EPROTO;
}

/* All pings sent and answered (or not): success only if none was lost. */
static void ping_end(cli *c)
{
    if (c->pings == c->pings_sent && c->pings_sent == c->count) {
        cli_finish(c, EXIT_SUCCESS);
        return;
    }
    char msg[128];
    uint64_t lost = c->pings_sent - c->pings;
    if (c->pings_sent < c->count) {
        snprintf(msg, sizeof msg, "%llu of %llu pings lost; stopped after %llu of %llu",
                 (unsigned long long)lost, (unsigned long long)c->pings_sent,
                 (unsigned long long)c->pings_sent, (unsigned long long)c->count);
    } else {
        snprintf(msg, sizeof msg, "%llu of %llu pings lost", (unsigned long long)lost,
                 (unsigned long long)c->pings_sent);
    }
    cli_fail(c, "ping", c->ping_err < 0 ? c->ping_err : GN_ETIMEDOUT, msg);
}

static void ping_wait_expired(gn_timer *t, void *arg)
{
    (void)t;
    cli *c = arg;
    if (!c->finishing) {
        ping_next(c);
    }
}

/* The next ping now, or after --interval; or the end. */
static void ping_schedule(cli *c)
{
    if (c->pings_sent == c->count) {
        ping_end(c);
    } else if (c->interval > 0) {
        gn_timer_start(&c->ping_wait, c->interval, ping_wait_expired, c);
    } else {
        ping_next(c);
    }
}

static void ping_done(void *arg, int status, gn_time rtt)
{
    cli *c = arg;
    if (c->finishing) {
        return;
    }
    uint64_t seq = c->pings_sent - 1;
    gn_channel_info info;
    gn_channel_state st = gn_channel_state_get(c->ch, &info);
    if (status < 0) {
        c->ping_err = status;
        progress_clear();
        fprintf(stderr, "golemnet: ping %llu: %s (%s)\n", (unsigned long long)seq,
                gn_strerror(status), gn_err_name(status));
        if (!ping_transient(status) || st != GN_CHANNEL_OPEN) {
            ping_end(c);
            return;
        }
        ping_schedule(c);
        return;
    }
    char peer[GN_PEER_ID_MAX_STRLEN];
    cli_peer_str(&info.remote_peer, peer);
    cli_out_begin("ping");
    cli_out_str("peer_id", peer);
    cli_out_u64("seq", seq);
    printf(cli_json ? ",\"rtt_ms\":%.3f" : " rtt_ms=%.3f", (double)rtt / 1e6);
    cli_out_end();
    if (c->pings == 0 || rtt < c->rtt_min) {
        c->rtt_min = rtt;
    }
    if (rtt > c->rtt_max) {
        c->rtt_max = rtt;
    }
    c->rtt_sum += rtt;
    c->pings++;
    ping_schedule(c);
}

static void ping_next(cli *c)
{
    c->pings_sent++;
    int rc = gn_channel_ping(c->ch, ping_done, c);
    if (rc < 0) {
        c->ping_err = rc;
        ping_end(c);
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
        cli_out_begin("echo");
        out_bool("ok", true);
        cli_out_u64("bytes", c->bytes);
        cli_out_u64("streams", c->streams);
        out_num("seconds", secs);
        cli_out_end();
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
        gn_channel_metrics m;
        gn_channel_metrics_get(c->ch, &m);
        c->perf_base = c->perf_phase == 1 ? m.bytes_out : m.bytes_in;
        uint64_t up = c->perf_phase == 1 ? c->up : 0;
        uint64_t down = c->perf_phase == 2 ? c->down : 0;
        int rc = gn_channel_perf(c->ch, up, down, perf_result, c);
        if (rc < 0) {
            cli_fail(c, "perf", rc, NULL);
        }
        return;
    }
    cli_out_begin("perf");
    cli_out_u64("upload_bytes", c->up);
    out_num("upload_s", c->up_s);
    cli_out_u64("download_bytes", c->down);
    out_num("download_s", c->down_s);
    printf(cli_json ? ",\"upload_mbit_s\":%.2f,\"download_mbit_s\":%.2f"
                    : " upload_mbit_s=%.2f download_mbit_s=%.2f",
           mbit_s(c->up, c->up_s), mbit_s(c->down, c->down_s));
    cli_out_end();
    cli_finish(c, EXIT_SUCCESS);
}

/* ---- the DHT (dht command; node --dht-put/--dht-provide) ---- */

static const char *dht_op_name(int op)
{
    static const char *const names[] = {"-",       "find-peer",      "get",          "put",
                                        "provide", "find-providers", "closest-peers"};
    return op >= 0 && (size_t)op < CLI_ARRAY_LEN(names) ? names[op] : "-";
}

/* True when @p (@n bytes) is valid UTF-8 without control characters. */
bool dht_text(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint8_t b = p[i];
        size_t len = b < 0x80 ? 1 : (b & 0xe0) == 0xc0 ? 2 : (b & 0xf0) == 0xe0 ? 3
                                  : (b & 0xf8) == 0xf0 ? 4 : 0;
        if (len == 0 || i + len > n || (len == 1 && (b < 0x20 || b == 0x7f))) {
            return false;
        }
        uint32_t cp = len == 1 ? b : (uint32_t)(b & (0x7f >> len));
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (p[i + k] & 0x3fu);
        }
        /* overlong forms, surrogates, beyond U+10FFFF, C1 controls */
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff || (cp >= 0x80 && cp < 0xa0)) {
            return false;
        }
        i += len;
    }
    return true;
}

/* @name=text when @p is printable UTF-8, else @name_hex=hex. */
void cli_out_bytes(const char *name, const uint8_t *p, size_t n)
{
    char key[48];
    if (dht_text(p, n)) {
        char *s = gn_malloc(n + 1);
        if (s) {
            memcpy(s, p, n);
            s[n] = '\0';
            cli_out_str(name, s);
            gn_free(s);
            return;
        }
    }
    snprintf(key, sizeof key, "%s_hex", name);
    char *h = gn_malloc(2 * n + 1);
    if (!h) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(h + 2 * i, 3, "%02x", p[i]);
    }
    h[2 * n] = '\0';
    cli_out_str(key, h);
    gn_free(h);
}

/* "addrs":[...] of a router peer. */
static void out_peer_addrs(const gn_router_peer *p)
{
    char **v = p->naddrs ? gn_calloc(p->naddrs, sizeof *v) : NULL;
    size_t k = 0;
    for (size_t i = 0; v && i < p->naddrs; i++) {
        char buf[GN_MA_MAX_STRLEN];
        if (p->addrs[i] && gn_multiaddr_to_string(p->addrs[i], buf, sizeof buf) >= 0 &&
            (v[k] = gn_strdup(buf)) != NULL) {
            k++;
        }
    }
    cli_out_strv("addrs", (const char *const *)v, k);
    for (size_t i = 0; i < k; i++) {
        gn_free(v[i]);
    }
    gn_free(v);
}

/*
 * A list of peers: with --json a field @list of objects {peer_id, addrs} in
 * the current line; in text a count in the line, then (after it ends) one
 * line per peer, printed by out_peer_lines().
 */
static void out_peer_list(const char *list, const gn_router_peer *peers, size_t n)
{
    if (!cli_json) {
        cli_out_u64(list, n);
        return;
    }
    printf(",\"%s\":[", list);
    for (size_t i = 0; i < n; i++) {
        char id[GN_PEER_ID_MAX_STRLEN];
        cli_peer_str(&peers[i].id, id);
        printf("%s{\"peer_id\":", i ? "," : "");
        cli_json_str(id);
        out_peer_addrs(&peers[i]);
        putchar('}');
    }
    putchar(']');
}

static void out_peer_lines(const char *event, const gn_router_peer *peers, size_t n)
{
    for (size_t i = 0; !cli_json && i < n; i++) {
        char id[GN_PEER_ID_MAX_STRLEN];
        cli_peer_str(&peers[i].id, id);
        cli_out_begin(event);
        cli_out_str("peer_id", id);
        out_peer_addrs(&peers[i]);
        cli_out_end();
    }
}

/* What a DHT failure means, for the error message (NULL: the code says it). */
static const char *dht_why(int op, int status)
{
    switch (status) {
    case GN_ENOTFOUND:
        return "no peer had a valid record for the key";
    case GN_ENOROUTE:
        return op == DHT_PUT || op == DHT_PROVIDE
                   ? "kept on this node only: no DHT peer took it (is a --bootstrap-kad peer up?)"
               : op == DHT_FIND_PEER ? "neither the peer store nor the DHT knows the peer"
                                     : "no DHT peer to ask (is a --bootstrap-kad peer up?)";
    case GN_ENOTSUP:
        return op == DHT_PUT ? "no validator for the key's namespace (--dht-namespace NS), or no "
                               "DHT router (--router)"
                             : "no router is a DHT (is kad in --router?)";
    case GN_EINVAL:
        return op == DHT_PUT ? "the namespace's validator refused the record" : NULL;
    case GN_ETIMEDOUT:
        return "the DHT query ran out of time";
    case GN_ELIMIT:
        return "too many DHT queries running, or the local store is full";
    default:
        return NULL;
    }
}

/* The outcome of one DHT call: a "dht" line; the dht command ends with it. */
static void cli_dht_done(void *arg, const gn_node_dht_result *res)
{
    cli_dht *d = arg;
    cli *c = d->c;
    d->pending = false;
    if (c->finishing) {
        return;
    }
    int st = res->status;
    cli_out_begin("dht");
    cli_out_str("op", dht_op_name(d->op));
    cli_out_str("status", st == 0 ? "ok" : gn_err_name(st));
    const gn_router_peer *peers = res->peers;
    size_t np = res->npeers;
    switch (d->op) {
    case DHT_FIND_PEER: {
        char id[GN_PEER_ID_MAX_STRLEN];
        cli_peer_str(&d->peer, id);
        cli_out_str("peer_id", id);
        if (st == 0 && np > 0) {
            out_peer_addrs(&peers[0]);
        }
        break;
    }
    case DHT_GET:
    case DHT_PUT:
    case DHT_CLOSEST:
        cli_out_bytes("key", d->key, d->key_len);
        if (d->op == DHT_GET && st == 0) {
            cli_out_bytes("value", res->value.base, res->value.len);
        } else if (d->op == DHT_CLOSEST) {
            out_peer_list("peers", peers, np);
        }
        break;
    case DHT_PROVIDE:
    case DHT_FIND_PROV:
        cli_out_str("cid", d->arg);
        cli_out_bytes("key", d->key, d->key_len);
        if (d->op == DHT_FIND_PROV) {
            out_peer_list("providers", peers, np);
        }
        break;
    default:
        break;
    }
    if (st < 0) {
        const char *why = dht_why(d->op, st);
        cli_out_str("message", why ? why : gn_strerror(st));
    }
    cli_out_end();
    if (d->op == DHT_FIND_PROV || d->op == DHT_CLOSEST) {
        out_peer_lines(d->op == DHT_FIND_PROV ? "provider" : "peer", peers, np);
    }
    if (c->cmd != CLI_DHT) {
        return; /* the node keeps running */
    }
    if (st == 0) {
        cli_finish(c, EXIT_SUCCESS);
        return;
    }
    /* "golemnet: dht get /test/x: no such item (GN_ENOTFOUND): no peer had ..." */
    const char *why = dht_why(d->op, st);
    progress_clear();
    fprintf(stderr, "golemnet: dht %s %s: %s (%s)%s%s\n", dht_op_name(d->op), d->arg,
            gn_strerror(st), gn_err_name(st), why ? ": " : "", why ? why : "");
    if (cli_json) {
        cli_out_begin("error");
        cli_out_str("what", "dht");
        cli_out_str("op", dht_op_name(d->op));
        cli_out_str("arg", d->arg);
        cli_out_str("error", gn_err_name(st));
        cli_out_str("message", why ? why : gn_strerror(st));
        cli_out_end();
    }
    cli_finish(c, EXIT_FAILURE);
}

/* Starts every DHT call (once): the bootstrap peers are identified (or the
 * wait is over), the namespaces registered, the listeners up. */
static void cli_dht_maybe_begin(cli *c)
{
    if (c->dht_started || c->finishing || c->n_dht == 0 || c->dht_ns_pending > 0 ||
        (c->n_listen > 0 && !c->announced)) {
        return;
    }
    if (gn_timer_active(&c->kad_wait)) {
        for (size_t i = 0; i < c->n_kad_boot; i++) {
            if (!c->kad_boot_seen[i]) {
                return;
            }
        }
        gn_timer_stop(&c->kad_wait);
    }
    c->dht_started = true;
    for (size_t i = 0; i < c->n_dht && !c->finishing; i++) {
        cli_dht *d = &c->dht[i];
        int rc;
        d->c = c;
        d->pending = true;
        switch (d->op) {
        case DHT_FIND_PEER:
            rc = gn_node_dht_find_peer(c->node, &d->peer, cli_dht_done, d);
            break;
        case DHT_GET:
            rc = gn_node_dht_get(c->node, d->key, d->key_len, cli_dht_done, d);
            break;
        case DHT_PUT:
            rc = gn_node_dht_put(c->node, d->key, d->key_len, d->value, d->value_len,
                                 cli_dht_done, d);
            break;
        case DHT_PROVIDE:
            rc = gn_node_dht_provide(c->node, d->key, d->key_len, cli_dht_done, d);
            break;
        case DHT_FIND_PROV:
            rc = gn_node_dht_find_providers(c->node, d->key, d->key_len, d->max, cli_dht_done,
                                            d);
            break;
        default:
            rc = gn_node_dht_closest_peers(c->node, d->key, d->key_len, cli_dht_done, d);
            break;
        }
        if (rc < 0) {
            gn_node_dht_result res;
            memset(&res, 0, sizeof res);
            res.status = rc;
            cli_dht_done(d, &res);
        }
    }
}

static void cli_kad_wait_expired(gn_timer *t, void *arg)
{
    (void)t;
    cli *c = arg;
    if (c->finishing || c->dht_started) {
        return;
    }
    size_t seen = 0;
    for (size_t i = 0; i < c->n_kad_boot; i++) {
        seen += c->kad_boot_seen[i];
    }
    fprintf(stderr, "golemnet: %zu of %zu kad bootstrap peers identified after %llu s; going "
                    "ahead\n",
            seen, c->n_kad_boot, (unsigned long long)(CLI_KAD_BOOT_WAIT / GN_S));
    cli_dht_maybe_begin(c);
}

/* An identify result: one of the kad bootstrap peers may be ready. */
static void cli_kad_on_identify(cli *c, const gn_node_event *ev)
{
    if (ev->status < 0) {
        return;
    }
    for (size_t i = 0; i < c->n_kad_boot; i++) {
        if (gn_peer_id_equal(&c->kad_boot[i], &ev->peer)) {
            c->kad_boot_seen[i] = true;
        }
    }
    cli_dht_maybe_begin(c);
}

static void cli_dht_ns_set(void *arg, const gn_node_dht_result *res)
{
    cli *c = arg;
    c->dht_ns_pending--;
    if (res->status < 0) {
        cli_fail(c, "dht-namespace", res->status, "the DHT router refused the namespace");
        return;
    }
    cli_dht_maybe_begin(c);
}

/* ---- dial ---- */

static void cli_start_action(cli *c)
{
    if (c->acting) {
        return;
    }
    c->acting = true;
    c->t0 = gn_loop_now(c->loop);
    /* the first progress line comes at the first tick: a run shorter than
     * the update period still shows what it is doing */
    c->progress_at = c->t0 - CLI_PROGRESS_EVERY;
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
static void cli_dialed(void *arg, int status, gn_channel *ch, const gn_peer_id *received)
{
    cli *c = arg;
    if (c->finishing) {
        return;
    }
    if (status == GN_EPEERID && c->has_target_peer) {
        /* received: the ID the peer proved, when the security component said */
        char want[GN_PEER_ID_MAX_STRLEN], got[GN_PEER_ID_MAX_STRLEN] = "";
        char where[GN_MA_MAX_STRLEN] = "", msg[GN_MA_MAX_STRLEN + 256];
        cli_peer_str(&c->target_peer, want);
        if (received && received->len > 0) {
            cli_peer_str(received, got);
        }
        gn_multiaddr *ma = NULL, *addr = NULL;
        if (gn_multiaddr_parse(c->target, &ma) == 0 &&
            gn_multiaddr_decapsulate_code(ma, GN_MA_P2P, &addr) == 0) {
            size_t n = strlen("the peer at ");
            memcpy(where, "the peer at ", n);
            if (gn_multiaddr_to_string(addr, where + n, sizeof where - n) < 0) {
                where[0] = '\0';
            }
        }
        gn_multiaddr_free(addr);
        gn_multiaddr_free(ma);
        if (got[0]) {
            snprintf(msg, sizeof msg, "peer ID mismatch: expected %s, received %s (from %s)", want,
                     got, where[0] ? where : "the peer that answered");
        } else {
            snprintf(msg, sizeof msg, "peer ID mismatch: expected %s, but %s proved a different "
                     "peer ID", want, where[0] ? where : "the peer that answered");
        }
        cli_error_kv2("dial", status, msg, "expected_peer_id", want, "received_peer_id",
                      got[0] ? got : NULL);
        cli_finish(c, EXIT_FAILURE);
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

static void cli_dialed_result(void *arg, const gn_node_dial_result *res)
{
    cli *c = arg;
    if (res->status < 0 && res->status != GN_EPEERID && res->detail) {
        /* the node said why in words (a DNS failure names the domain) */
        char msg[1024];
        snprintf(msg, sizeof msg, "%s: %s", c->target, res->detail);
        cli_fail(c, "dial", res->status, msg);
        return;
    }
    cli_dialed(arg, res->status, res->ch, &res->peer);
}

/*
 * For GN_ENOTRANSPORT: @target followed by the part of the address no
 * transport of this build handles, e.g. "'/udp/1/quic-v1' (the address is
 * valid; this build has no transport for it)": the components after the
 * network address (ip4, ip6, dns*), without a trailing /p2p/<id>.
 */
static void cli_unsupported_detail(const char *target, char *out, size_t len)
{
    gn_multiaddr *ma = NULL, *bare = NULL;
    char part[GN_MA_MAX_STRLEN] = "";
    if (gn_multiaddr_parse(target, &ma) == 0) {
        const gn_multiaddr *m = ma;
        if (gn_multiaddr_decapsulate_code(ma, GN_MA_P2P, &bare) == 0) {
            m = bare;
        }
        char full[GN_MA_MAX_STRLEN];
        gn_ma_component c0;
        if (gn_multiaddr_to_string(m, full, sizeof full) > 0 &&
            gn_multiaddr_component(m, 0, &c0) == 0) {
            bool net = c0.code == GN_MA_IP4 || c0.code == GN_MA_IP6 || c0.code == GN_MA_DNS ||
                       c0.code == GN_MA_DNS4 || c0.code == GN_MA_DNS6;
            const char *rest = full;
            if (net && gn_multiaddr_count(m) > 1) {
                rest = strchr(full + 1, '/');                  /* after "/ip4" */
                rest = rest ? strchr(rest + 1, '/') : NULL;    /* after the value */
            }
            snprintf(part, sizeof part, "%s", rest ? rest : full);
        }
    }
    gn_multiaddr_free(bare);
    gn_multiaddr_free(ma);
    if (part[0]) {
        snprintf(out, len, "%s: unsupported: no transport of this build handles '%s' "
                 "(the address is valid; docs/addresses.md lists what each component dials)",
                 target, part);
    } else {
        snprintf(out, len, "%s", target);
    }
}

/* ---- setup and the main loop ---- */

/*
 * Appends to @out (a comma list) the names of @kind's built-in components
 * that run by default (not explicit-only). False when @out is too short.
 */
static bool cli_default_names(gn_layer_kind kind, char *out, size_t len)
{
    gn_registry *reg = NULL;
    bool ok = gn_registry_new(&reg) == 0 && gn_registry_add_builtins(reg) == 0;
    for (size_t i = 0; ok && i < gn_registry_count(reg, kind); i++) {
        const gn_layer_ops *o = gn_registry_get(reg, kind, i);
        if (!(o->flags & GN_LAYER_F_EXPLICIT_ONLY)) {
            size_t used = strlen(out);
            int w = snprintf(out + used, len - used, "%s%s", used ? "," : "", o->name);
            ok = w > 0 && (size_t)w < len - used;
        }
    }
    gn_registry_free(reg);
    return ok;
}

/* Appends @name to the comma list @out; false when it does not fit. */
static bool cli_list_add(char *out, size_t len, const char *name)
{
    size_t used = strlen(out);
    int w = snprintf(out + used, len - used, "%s%s", used ? "," : "", name);
    return w > 0 && (size_t)w < len - used;
}

/*
 * The protocol component list for --protocols, --relay, --autonat and
 * --dcutr: the given list (or the default components) plus the ones those
 * flags ask for. NULL: the node's default (no flag given), or a list that
 * does not fit (cli_run reports it).
 */
static const char *cli_protocol_list(cli *c)
{
    if (!c->want_relay && !c->want_autonat && !c->want_dcutr) {
        return c->protocols;
    }
    char *out = c->protolist;
    size_t len = sizeof c->protolist;
    out[0] = '\0';
    bool ok = c->protocols ? cli_list_add(out, len, c->protocols)
                           : cli_default_names(GN_LAYER_PROTOCOL, out, len);
    static const struct {
        size_t off;
        const char *id;
    } extra[] = {
        {offsetof(cli, want_relay), "/libp2p/circuit/relay/0.2.0/hop"},
        {offsetof(cli, want_autonat), "/libp2p/autonat/1.0.0"},
        {offsetof(cli, want_dcutr), "/libp2p/dcutr"},
    };
    for (size_t i = 0; ok && i < CLI_ARRAY_LEN(extra); i++) {
        if (*(const bool *)((const char *)c + extra[i].off) && !strstr(out, extra[i].id)) {
            ok = cli_list_add(out, len, extra[i].id);
        }
    }
    return ok && out[0] ? out : NULL;
}

/* The router list with autorelay added when --autorelay names a relay. */
static const char *cli_router_list(cli *c)
{
    if (!c->want_autorelay || (c->routers && strstr(c->routers, "autorelay"))) {
        return c->routers;
    }
    char *out = c->routerlist;
    out[0] = '\0';
    bool ok = c->routers ? cli_list_add(out, sizeof c->routerlist, c->routers)
                         : cli_default_names(GN_LAYER_ROUTER, out, sizeof c->routerlist);
    ok = ok && cli_list_add(out, sizeof c->routerlist, "autorelay");
    return ok ? out : c->routers;
}

static int cli_run(cli *c)
{
    int rc = load_identity(c->key_file, c->key_seed, &c->id);
    if (rc == GN_EINVAL) {
        return EXIT_USAGE;
    }
    if (rc < 0) {
        return fail(c->key_file ? c->key_file : "identity", rc);
    }
    gn_peer_id self;
    gn_identity_peer_id(c->id, &self);
    if (c->has_target_peer && gn_peer_id_equal(&self, &c->target_peer)) {
        char me[GN_PEER_ID_MAX_STRLEN], msg[512];
        cli_peer_str(&self, me);
        snprintf(msg, sizeof msg, "cannot dial yourself (%s is this node's own peer ID)", me);
        cli_error("dial", GN_EINVAL, msg);
        gn_identity_free(c->id);
        return EXIT_FAILURE;
    }
    cli_signals_catch(cli_on_signal, NULL);
    cli_sigpipe_ignore();

    rc = gn_loop_new(NULL, &c->loop);
    if (rc < 0) {
        gn_identity_free(c->id);
        return fail("loop", rc);
    }
    if (!cli_protocol_list(c) && (c->want_relay || c->want_autonat || c->want_dcutr)) {
        gn_loop_free(c->loop);
        gn_identity_free(c->id);
        fprintf(stderr, "golemnet: --relay/--autonat/--dcutr: a component is not built in, or "
                        "the protocol list is longer than %zu bytes\n",
                sizeof c->protolist - 1);
        return EXIT_USAGE;
    }
    gn_node_config cfg;
    gn_node_config_default(&cfg);
    cfg.identity = c->id;
    cfg.loop = c->loop;
    cfg.security = c->security;
    cfg.muxers = c->muxers;
    cfg.listen = c->listen;
    cfg.n_listen = c->n_listen;
    cfg.routers = cli_router_list(c);
    cfg.discovery = c->discovery;
    cfg.nat = c->nat;
    cfg.protocol_components = cli_protocol_list(c);
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
                    "golemnet: --security/--muxer/--router/--discovery/--nat/--protocols/--relay/"
                    "--autonat/--dcutr/--option: %s (%s)\n",
                    gn_strerror(rc), gn_err_name(rc));
            return EXIT_USAGE;
        }
        return fail("node", rc);
    }
    for (size_t i = 0; i < c->n_limits; i++) {
        rc = gn_node_configure(c->node, c->limit_opt[i], c->limit_val[i]);
        if (rc == 0) {
            continue;
        }
        for (size_t k = 0; k < GNI_CLI_ARRAY_LEN(cli_limits); k++) {
            if (cli_limits[k].opt == c->limit_opt[i]) {
                fprintf(stderr, "golemnet: --limit %s=%llu: %s (%s)\n", cli_limits[k].name,
                        (unsigned long long)c->limit_val[i], gn_strerror(rc), gn_err_name(rc));
            }
        }
        gn_node_free(c->node);
        c->node = NULL;
        gn_loop_free(c->loop);
        gn_identity_free(c->id);
        return rc == GN_ERANGE ? EXIT_USAGE : fail("node", rc);
    }
    for (size_t i = 0; i < c->n_protect; i++) {
        if ((rc = gn_node_protect_peer(c->node, &c->protect[i], true)) < 0) {
            fprintf(stderr, "golemnet: --protect: %s\n", gn_strerror(rc));
        }
    }
    gn_timer_init(c->loop, &c->tick);
    gn_timer_init(c->loop, &c->deadline);
    gn_timer_init(c->loop, &c->grace);
    gn_timer_init(c->loop, &c->id_wait);
    gn_timer_init(c->loop, &c->ping_wait);
    gn_timer_init(c->loop, &c->kad_wait);
    gn_timer_start(&c->tick, CLI_TICK, cli_tick, c);
    /* --dht-namespace before the start: no record of them is refused in between */
    for (size_t i = 0; i < c->n_dht_ns; i++) {
        gn_router_validator *v = &c->dht_val[i];
        v->ns = c->dht_ns[i];
        gn_router_validator_any(v, v->ns);
        rc = gn_node_dht_set_validator(c->node, v, cli_dht_ns_set, c);
        if (rc < 0) {
            cli_fail(c, "dht-namespace", rc, c->dht_ns[i]);
            break;
        }
        c->dht_ns_pending++;
    }
    rc = c->finishing ? 0 : gn_node_start(c->node);
    if (rc < 0) {
        cli_fail(c, "start", rc, NULL);
    } else if (c->finishing) {
        /* a namespace was refused */
    } else if (c->cmd == CLI_DHT || (c->cmd == CLI_NODE && c->n_dht > 0)) {
        if (c->cmd == CLI_DHT) {
            c->end_at = gn_loop_now(c->loop) + c->timeout;
            gn_timer_start(&c->deadline, c->timeout, cli_deadline, c);
        }
        if (c->n_kad_boot > 0) {
            gn_timer_start(&c->kad_wait, CLI_KAD_BOOT_WAIT, cli_kad_wait_expired, c);
        }
        cli_dht_maybe_begin(c);
    } else if (c->cmd != CLI_NODE) {
        c->end_at = gn_loop_now(c->loop) + c->timeout;
        gn_timer_start(&c->deadline, c->timeout, cli_deadline, c);
        rc = gn_node_dial_ex(c->node, c->target, cli_dialed_result, c, NULL);
        if (rc == GN_ENOTRANSPORT) {
            char msg[GN_MA_MAX_STRLEN + 512];
            cli_unsupported_detail(c->target, msg, sizeof msg);
            cli_fail(c, "dial", rc, msg);
        } else if (rc < 0) {
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
    gn_timer_stop(&c->ping_wait);
    gn_timer_stop(&c->kad_wait);
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

/*
 * Checks a component list option (--security, --muxer, --router,
 * --discovery, --nat) against the built-in registry, so that a bad entry
 * is named: "bad value 'noise,nosuch' for --security: 'nosuch' is not a
 * built-in security component (known: /noise, ...)". Returns false after saying
 * so on stderr. NULL (the default) is fine, and "" (none) for the
 * hosted kinds.
 */
static bool check_components(const gn_registry *reg, gn_stack *st, const char *opt,
                             gn_layer_kind kind, const char *list)
{
    if (!list) {
        return true;
    }
    if (!list[0]) {
        if (kind == GN_LAYER_ROUTER || kind == GN_LAYER_DISCOVERY || kind == GN_LAYER_NAT) {
            return true; /* none */
        }
        bad_value(opt, list, "at least one component is needed");
        return false;
    }
    int rc = gn_stack_set(st, kind, list);
    if (rc == 0) {
        return true;
    }
    char why[512] = "", entry[128];
    for (const char *p = list; *p && !why[0];) {
        size_t n = strcspn(p, ",");
        if (n > 0 && n < sizeof entry) {
            memcpy(entry, p, n);
            entry[n] = '\0';
            if (gn_stack_set(st, kind, entry) == GN_ENOTFOUND) {
                size_t cnt = gn_registry_count(reg, kind);
                int w = snprintf(why, sizeof why, "'%s' is not a built-in %s component (%s", entry,
                                 opt + 2, cnt ? "known:" : "none built in");
                for (size_t i = 0; w > 0 && (size_t)w < sizeof why && i < cnt; i++) {
                    const gn_layer_ops *ops = gn_registry_get(reg, kind, i);
                    w += snprintf(why + w, sizeof why - (size_t)w, "%s %s", i ? "," : "",
                                  ops ? ops->name : "?");
                }
                if (w > 0 && (size_t)w < sizeof why - 1) {
                    strcat(why, ")");
                }
            }
        }
        p += n;
        p += *p == ',';
    }
    if (!why[0]) {
        snprintf(why, sizeof why, "%s (an empty or repeated entry?)", gn_strerror(rc));
    }
    bad_value(opt, list, why);
    return false;
}

/* ---- DHT arguments ---- */

/* Decodes hex (even length, either case) into @out; false on anything else. */
bool cli_hex(const char *s, uint8_t *out, size_t cap, size_t *len)
{
    size_t n = strlen(s);
    if (n % 2 || n / 2 > cap) {
        return false;
    }
    for (size_t i = 0; i < n / 2; i++) {
        int v = 0;
        for (int k = 0; k < 2; k++) {
            char ch = s[2 * i + (size_t)k];
            int d = ch >= '0' && ch <= '9'   ? ch - '0'
                    : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                    : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                             : -1;
            if (d < 0) {
                return false;
            }
            v = v * 16 + d;
        }
        out[i] = (uint8_t)v;
    }
    *len = n / 2;
    return true;
}

/*
 * The DHT key of a CID: its multihash (what libp2p kad-dht uses for
 * provider records). CIDv0: base58btc "Qm..." (46 characters), which is the
 * multihash itself; CIDv1: multibase (b: base32, z: base58btc) of
 * <1><codec><multihash>. Returns false after writing why into @why.
 */
bool cli_cid_key(const char *s, uint8_t *out, size_t cap, size_t *len, const char **why)
{
    uint8_t buf[GN_NODE_DHT_KEY_MAX];
    size_t sl = strlen(s);
    int n;
    gn_multihash mh;
    if (sl == 46 && s[0] == 'Q' && s[1] == 'm') {
        n = gn_base58btc_decode(s, sl, buf, sizeof buf);
        if (n < 0 || gn_multihash_decode(buf, (size_t)n, &mh) < 0 || mh.code != GN_MH_SHA2_256 ||
            mh.digest_len != 32 || (size_t)n > cap) {
            *why = "not a CIDv0 (base58btc of a sha2-256 multihash)";
            return false;
        }
        memcpy(out, buf, (size_t)n);
        *len = (size_t)n;
        return true;
    }
    n = gn_multibase_decode(s, sl, NULL, buf, sizeof buf);
    if (n == GN_ENOTSUP) {
        *why = "expected a CIDv0 (Qm...) or a CIDv1 in base32 (b...) or base58btc (z...)";
        return false;
    }
    uint64_t codec;
    if (n < 0 || gn_cid_decode(buf, (size_t)n, &codec, &mh) < 0) {
        *why = "not a CIDv1 (<version 1><codec><multihash> in multibase)";
        return false;
    }
    size_t off = gn_varint_len(GN_CID_VERSION_1) + gn_varint_len(codec);
    if (off >= (size_t)n || (size_t)n - off > cap ||
        gn_multihash_decode(buf + off, (size_t)n - off, &mh) < 0) {
        *why = "its multihash does not parse";
        return false;
    }
    memcpy(out, buf + off, (size_t)n - off);
    *len = (size_t)n - off;
    return true;
}

/* The peer ID at the end of a kad.bootstrap / --bootstrap-kad value, if any. */
static bool cli_kad_boot_peer(const char *v, gn_peer_id *out)
{
    gn_multiaddr *ma = NULL;
    gn_ma_component comp;
    size_t n;
    bool ok = gn_multiaddr_parse(v, &ma) == 0 && (n = gn_multiaddr_count(ma)) >= 1 &&
              gn_multiaddr_component(ma, n - 1, &comp) == 0 && comp.code == GN_MA_P2P &&
              gn_peer_id_from_bytes(comp.value, comp.value_len, out) == 0;
    gn_multiaddr_free(ma);
    return ok;
}

/*
 * `golemnet dht OP ARGS...`: fills @d from the positional arguments @pos
 * (@npos of them). Returns 0 or EXIT_USAGE after saying what is wrong.
 */
static int cli_dht_args(cli_dht *d, const char *const *pos, size_t npos, bool hex_key,
                        bool hex_value)
{
    static const struct {
        const char *name;
        int op;
        size_t nargs;
        const char *usage;
    } ops[] = {
        {"find-peer", DHT_FIND_PEER, 1, "find-peer PEER_ID"},
        {"get", DHT_GET, 1, "get KEY"},
        {"put", DHT_PUT, 2, "put KEY VALUE"},
        {"provide", DHT_PROVIDE, 1, "provide CID"},
        {"find-providers", DHT_FIND_PROV, 1, "find-providers CID"},
        {"closest-peers", DHT_CLOSEST, 1, "closest-peers KEY"},
    };
    if (npos == 0) {
        return usage_error("dht needs an operation: find-peer, get, put, provide, "
                           "find-providers or closest-peers");
    }
    size_t k = 0;
    while (k < CLI_ARRAY_LEN(ops) && strcmp(ops[k].name, pos[0]) != 0) {
        k++;
    }
    if (k == CLI_ARRAY_LEN(ops)) {
        return usage_error("unknown dht operation '%s' (find-peer, get, put, provide, "
                           "find-providers or closest-peers)",
                           pos[0]);
    }
    if (npos - 1 != ops[k].nargs) {
        return usage_error("'dht %s' takes %zu argument%s: dht %s", ops[k].name, ops[k].nargs,
                           ops[k].nargs == 1 ? "" : "s", ops[k].usage);
    }
    d->op = ops[k].op;
    d->arg = pos[1];
    const char *why = NULL;
    switch (d->op) {
    case DHT_FIND_PEER: {
        int rc = target_peer(pos[1], &d->peer);
        if (rc == EXIT_USAGE) {
            return EXIT_USAGE;
        }
        if (rc != 1) {
            return bad_value("PEER_ID", pos[1], "expected a peer ID or a multiaddr ending in "
                                                "/p2p/<id>");
        }
        return 0;
    }
    case DHT_PROVIDE:
    case DHT_FIND_PROV:
        if (!cli_cid_key(pos[1], d->key, sizeof d->key, &d->key_len, &why)) {
            return bad_value("CID", pos[1], why);
        }
        return 0;
    default:
        break;
    }
    if (hex_key) {
        if (!cli_hex(pos[1], d->key, sizeof d->key, &d->key_len) || d->key_len == 0) {
            return bad_value("KEY (--hex-key)", pos[1], "expected 1..1024 bytes in hex");
        }
    } else {
        d->key_len = strlen(pos[1]);
        if (d->key_len == 0 || d->key_len > sizeof d->key) {
            return bad_value("KEY", pos[1], "expected 1..1024 bytes");
        }
        memcpy(d->key, pos[1], d->key_len);
    }
    if (d->op == DHT_PUT) {
        size_t vl = strlen(pos[2]);
        d->value = gn_malloc(vl ? vl : 1);
        if (!d->value) {
            return fail("dht put", GN_ENOMEM);
        }
        if (hex_value) {
            if (!cli_hex(pos[2], d->value, vl, &d->value_len)) {
                return bad_value("VALUE (--hex-value)", pos[2], "expected hex");
            }
        } else {
            memcpy(d->value, pos[2], vl);
            d->value_len = vl;
        }
        if (d->value_len > GN_NODE_DHT_VALUE_MAX) {
            return bad_value("VALUE", "...", "at most 65536 bytes");
        }
    }
    return 0;
}

static int cmd_net(int kind, int argc, char **argv)
{
    static const unsigned bits[] = {CMDF_NODE, CMDF_PING, CMDF_ECHO, CMDF_PERF, CMDF_DHT};
    cli c;
    memset(&c, 0, sizeof c);
    const char *dht_pos[4];
    size_t n_dht_pos = 0;
    bool hex_key = false, hex_value = false, have_max = false;
    uint64_t dht_max = CLI_DEFAULT_PROVIDERS;
    c.cmd = kind;
    c.count = 1;
    c.streams = 1;
    c.timeout = CLI_DEFAULT_TIMEOUT_S * GN_S;
    gn_log_level level = GN_LOG_WARNING;
    const char *log_components = NULL;
    bool have_bytes = false;
    int code = EXIT_USAGE;
    /* the dht operation, then the node's --dht-put and --dht-provide */
    c.dht = gn_calloc(2 * CLI_MAX_DHT_WORK + 1, sizeof *c.dht);
    if (!c.dht) {
        return fail("dht", GN_ENOMEM);
    }
    size_t n_puts = 0, n_provides = 0;
    for (int i = 0; i < argc; i++) {
        cli_arg a;
        uint64_t x;
        if (cli_next_arg(bits[kind], argc, argv, &i, &a) != 0) {
            goto out;
        }
        const char *n = a.name, *v = a.value;
        if (!n && kind == CLI_DHT) {
            if (n_dht_pos == CLI_ARRAY_LEN(dht_pos)) {
                usage_error("unexpected argument '%s' for 'dht'", v);
                goto out;
            }
            dht_pos[n_dht_pos++] = v;
        } else if (!n) {
            if (kind == CLI_NODE || c.target) {
                usage_error("unexpected argument '%s' for '%s'", v, cli_cmd_name);
                goto out;
            }
            c.target = v;
        } else if (!strcmp(n, "--echo")) {
            c.serve_echo = true;
        } else if (!strcmp(n, "--protocols")) {
            c.protocols = v;
        } else if (!strcmp(n, "--relay")) {
            c.want_relay = true;
        } else if (!strcmp(n, "--autonat")) {
            c.want_autonat = true;
        } else if (!strcmp(n, "--dcutr")) {
            c.want_dcutr = true;
        } else if (!strcmp(n, "--perf")) {
            c.serve_perf = true;
        } else if (!strcmp(n, "--identify")) {
            c.want_identify = true;
        } else if (!strcmp(n, "--hex-key")) {
            hex_key = true;
        } else if (!strcmp(n, "--hex-value")) {
            hex_value = true;
        } else if (!strcmp(n, "--max")) {
            if (!opt_uint(n, v, 1, CLI_MAX_PROVIDERS, &dht_max)) {
                goto out;
            }
            have_max = true;
        } else if (!strcmp(n, "--dht-namespace")) {
            if (!v[0] || strlen(v) > CLI_DHT_NS_MAX || strchr(v, '/')) {
                bad_value(n, v, "expected a namespace name without '/', 1..63 bytes (e.g. test "
                                "for keys /test/...)");
                goto out;
            }
            if (c.n_dht_ns == CLI_MAX_DHT_NS) {
                usage_error("at most %u --dht-namespace", CLI_MAX_DHT_NS);
                goto out;
            }
            c.dht_ns[c.n_dht_ns++] = v;
        } else if (!strcmp(n, "--dht-put") || !strcmp(n, "--dht-provide")) {
            bool put = !strcmp(n, "--dht-put");
            if ((put ? n_puts : n_provides) == CLI_MAX_DHT_WORK) {
                usage_error("at most %u %s", CLI_MAX_DHT_WORK, n);
                goto out;
            }
            cli_dht *d = &c.dht[c.n_dht];
            const char *why = NULL;
            d->arg = v;
            if (put) {
                const char *eq = strchr(v, '=');
                size_t kl = eq ? (size_t)(eq - v) : 0;
                size_t vl = eq ? strlen(eq + 1) : 0;
                if (!eq || kl == 0 || kl > GN_NODE_DHT_KEY_MAX || vl > GN_NODE_DHT_VALUE_MAX) {
                    bad_value(n, v, "expected KEY=VALUE, e.g. /test/name=hello (KEY 1..1024 "
                                    "bytes, VALUE at most 65536)");
                    goto out;
                }
                d->op = DHT_PUT;
                memcpy(d->key, v, kl);
                d->key_len = kl;
                d->value = gn_malloc(vl + 1);
                if (!d->value) {
                    code = fail(n, GN_ENOMEM);
                    goto out;
                }
                memcpy(d->value, eq + 1, vl);
                d->value_len = vl;
                n_puts++;
            } else {
                if (!cli_cid_key(v, d->key, sizeof d->key, &d->key_len, &why)) {
                    bad_value(n, v, why);
                    goto out;
                }
                d->op = DHT_PROVIDE;
                n_provides++;
            }
            c.n_dht++;
        } else if (!strcmp(n, "--key")) {
            c.key_file = v;
        } else if (!strcmp(n, "--key-seed")) {
            c.key_seed = v;
        } else if (!strcmp(n, "--security")) {
            c.security = v;
        } else if (!strcmp(n, "--muxer")) {
            c.muxers = v;
        } else if (!strcmp(n, "--log")) {
            if (!log_level(v, &level)) {
                bad_value(n, v, "expected err, warning, notice, info or debug");
                goto out;
            }
        } else if (!strcmp(n, "--log-components")) {
            log_components = v;
            if (strlen(v) > 255) {
                bad_value(n, v, "at most 255 characters");
                goto out;
            }
        } else if (!strcmp(n, "--router")) {
            c.routers = v;
        } else if (!strcmp(n, "--discovery")) {
            c.discovery = v;
        } else if (!strcmp(n, "--nat")) {
            c.nat = v;
        } else if (!strcmp(n, "--option") || !strcmp(n, "--route") || !strcmp(n, "--bootstrap") ||
                   !strcmp(n, "--bootstrap-kad") || !strcmp(n, "--autorelay")) {
            if (c.n_options == CLI_MAX_OPTIONS) {
                usage_error("at most %u --option/--route/--bootstrap/--bootstrap-kad",
                            CLI_MAX_OPTIONS);
                goto out;
            }
            bool kad_boot = !strcmp(n, "--bootstrap-kad") ||
                            !strncmp(v, "kad.bootstrap=", strlen("kad.bootstrap="));
            if (!strcmp(n, "--option")) {
                if (!strchr(v, '.') || !strchr(v, '=')) {
                    bad_value(n, v, "expected COMPONENT.KEY=VALUE, e.g. static.file=routes.txt");
                    goto out;
                }
                c.options[c.n_options++] = v;
                c.kad_mode_set = c.kad_mode_set || !strncmp(v, "kad.mode=", strlen("kad.mode="));
                /* wait for these too; a bad one is the component's to refuse */
                if (kad_boot && c.n_kad_boot < CLI_MAX_KAD_BOOT &&
                    cli_kad_boot_peer(v + strlen("kad.bootstrap="), &c.kad_boot[c.n_kad_boot])) {
                    c.n_kad_boot++;
                }
                continue;
            }
            if (!opt_multiaddr(n, v)) {
                goto out;
            }
            if (kad_boot) {
                if (c.n_kad_boot == CLI_MAX_KAD_BOOT) {
                    usage_error("at most %u kad bootstrap peers", CLI_MAX_KAD_BOOT);
                    goto out;
                }
                if (!cli_kad_boot_peer(v, &c.kad_boot[c.n_kad_boot])) {
                    bad_value(n, v, "expected MA/p2p/ID, the peer's address and peer ID");
                    goto out;
                }
                c.n_kad_boot++;
            }
            const char *key = !strcmp(n, "--route")       ? "static.peer="
                              : !strcmp(n, "--bootstrap") ? "bootstrap.peer="
                              : !strcmp(n, "--autorelay") ? "autorelay.relay="
                                                          : "kad.bootstrap=";
            c.want_autorelay = c.want_autorelay || !strcmp(n, "--autorelay");
            char *o = malloc(strlen(key) + strlen(v) + 1);
            if (!o) {
                code = fail(n, GN_ENOMEM);
                goto out;
            }
            strcpy(o, key);
            strcat(o, v);
            c.option_copies[c.n_options] = o;
            c.options[c.n_options++] = o;
        } else if (!strcmp(n, "--limit")) {
            const char *eq = strchr(v, '=');
            size_t k = 0, nl = GNI_CLI_ARRAY_LEN(cli_limits);
            while (eq && k < nl &&
                   (strlen(cli_limits[k].name) != (size_t)(eq - v) ||
                    strncmp(cli_limits[k].name, v, (size_t)(eq - v)) != 0)) {
                k++;
            }
            if (!eq || k == nl) {
                char want[512] = "expected NAME=VALUE with NAME one of";
                for (size_t j = 0; j < nl; j++) {
                    strncat(want, j ? ", " : " ", sizeof want - strlen(want) - 1);
                    strncat(want, cli_limits[j].name, sizeof want - strlen(want) - 1);
                }
                bad_value(n, v, want);
                goto out;
            }
            if (c.n_limits == GNI_CLI_ARRAY_LEN(c.limit_opt)) {
                usage_error("at most %zu --limit", GNI_CLI_ARRAY_LEN(c.limit_opt));
                goto out;
            }
            if (cli_limits[k].duration ? !opt_ms(n, eq + 1, 86400000u, &x)
                                       : !opt_uint(n, eq + 1, 0, UINT32_MAX, &x)) {
                goto out;
            }
            c.limit_opt[c.n_limits] = cli_limits[k].opt;
            c.limit_val[c.n_limits++] = x;
        } else if (!strcmp(n, "--protect")) {
            if (c.n_protect == GNI_CLI_ARRAY_LEN(c.protect)) {
                usage_error("at most %zu --protect", GNI_CLI_ARRAY_LEN(c.protect));
                goto out;
            }
            if (gn_peer_id_parse(v, strlen(v), &c.protect[c.n_protect]) < 0) {
                bad_value(n, v, "expected a peer ID (12D3KooW... or Qm...)");
                goto out;
            }
            c.n_protect++;
        } else if (!strcmp(n, "--listen")) {
            if (c.n_listen == CLI_MAX_LISTEN) {
                usage_error("at most %u --listen", CLI_MAX_LISTEN);
                goto out;
            }
            if (!opt_multiaddr(n, v)) {
                goto out;
            }
            c.listen[c.n_listen++] = v;
        } else if (!strcmp(n, "--timeout")) {
            if (!opt_uint(n, v, 1, CLI_MAX_TIMEOUT_S, &x)) {
                goto out;
            }
            c.timeout = x * GN_S;
            c.timeout_set = true;
        } else if (!strcmp(n, "--count")) {
            if (!opt_uint(n, v, 1, CLI_MAX_PINGS, &c.count)) {
                goto out;
            }
        } else if (!strcmp(n, "--interval")) {
            if (!opt_ms(n, v, CLI_MAX_INTERVAL_MS, &x)) {
                goto out;
            }
            c.interval = x * GN_MS;
        } else if (!strcmp(n, "--bytes")) {
            if (!opt_size(n, v, 1, CLI_MAX_BYTES, &c.bytes)) {
                goto out;
            }
            have_bytes = true;
        } else if (!strcmp(n, "--streams")) {
            if (!opt_uint(n, v, 1, CLI_MAX_STREAMS, &c.streams)) {
                goto out;
            }
        } else if (!strcmp(n, "--upload-bytes")) {
            if (!opt_size(n, v, 0, CLI_MAX_BYTES, &c.up)) {
                goto out;
            }
        } else if (!strcmp(n, "--download-bytes")) {
            if (!opt_size(n, v, 0, CLI_MAX_BYTES, &c.down)) {
                goto out;
            }
        }
    }
    if (kind == CLI_DHT) {
        int rc = cli_dht_args(&c.dht[0], dht_pos, n_dht_pos, hex_key, hex_value);
        if (rc != 0) {
            code = rc;
            goto out;
        }
        if (have_max && c.dht[0].op != DHT_FIND_PROV) {
            usage_error("--max is for 'dht find-providers'");
            goto out;
        }
        c.dht[0].max = (size_t)dht_max;
        c.n_dht = 1;
        if (c.dht[0].op == DHT_PROVIDE && c.n_listen == 0) {
            /* the record names our addresses; peers drop one without any
             * (as go-libp2p and js-libp2p kad-dht do), yet ADD_PROVIDER has
             * no reply that could say so */
            usage_error("'dht provide' needs --listen MA: a provider record without "
                        "addresses is dropped by the peers");
            goto out;
        }
        if (!c.kad_mode_set) {
            /* a one-shot asks and leaves: never a server others would add */
            if (c.n_options == CLI_MAX_OPTIONS) {
                usage_error("at most %u --option/--route/--bootstrap/--bootstrap-kad",
                            CLI_MAX_OPTIONS);
                goto out;
            }
            c.options[c.n_options++] = "kad.mode=client";
        }
    }
    if (kind != CLI_NODE && kind != CLI_DHT && !c.target) {
        usage_error("%s needs MA, the peer's multiaddr or peer ID", cli_cmd_name);
        goto out;
    }
    if (kind == CLI_ECHO && !have_bytes) {
        usage_error("echo needs --bytes N");
        goto out;
    }
    if (kind == CLI_PERF && c.up == 0 && c.down == 0) {
        usage_error("perf needs --upload-bytes and/or --download-bytes (more than 0)");
        goto out;
    }
    if (c.key_file && c.key_seed) {
        fprintf(stderr, "golemnet: --key and --key-seed exclude each other\n");
        goto out;
    }
    if (c.target) {
        int rc = target_peer(c.target, &c.target_peer);
        if (rc == EXIT_USAGE) {
            goto out;
        }
        c.has_target_peer = rc == 1;
    }
    gn_registry *reg = NULL;
    gn_stack *st = NULL;
    if (gn_registry_new(&reg) == 0 && gn_registry_add_builtins(reg) == 0 &&
        gn_stack_new(reg, &st) == 0) {
        bool ok = check_components(reg, st, "--security", GN_LAYER_CRYPTO, c.security) &&
                  check_components(reg, st, "--muxer", GN_LAYER_MUX, c.muxers) &&
                  check_components(reg, st, "--router", GN_LAYER_ROUTER, c.routers) &&
                  check_components(reg, st, "--discovery", GN_LAYER_DISCOVERY, c.discovery) &&
                  check_components(reg, st, "--nat", GN_LAYER_NAT, c.nat);
        gn_stack_free(st);
        gn_registry_free(reg);
        if (!ok) {
            goto out;
        }
    } else {
        gn_registry_free(reg); /* no memory: gn_node_new() will say so */
    }
    if (kind == CLI_PING && !c.timeout_set) {
        c.timeout += (c.count - 1) * c.interval; /* the pauses come on top */
    }
    if (kind == CLI_NODE && c.n_listen == 0) {
        c.listen[c.n_listen++] = "/ip4/127.0.0.1/tcp/0";
    }
    c.progress = !cli_json && (kind == CLI_ECHO || kind == CLI_PERF) && isatty(STDERR_FILENO);
    if (gn_log_set_components(log_components) < 0) {
        bad_value("--log-components", log_components, "at most 255 characters");
        goto out;
    }
    gn_log_set(cli_log, NULL, level);
    code = cli_run(&c);
out:
    for (size_t k = 0; k < c.n_options; k++) {
        free(c.option_copies[k]);
    }
    for (size_t k = 0; k < 2 * CLI_MAX_DHT_WORK + 1; k++) {
        gn_free(c.dht[k].value);
    }
    gn_free(c.dht);
    return code;
}

int main(int argc, char **argv)
{
    /* --json may appear anywhere; remove it from the argument list */
    int n = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            cli_json = true;
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
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        if (argc > 2) {
            const char *text = cmd_help_text(argv[2]);
            if (!text) {
                text = cmd_client_help(argv[2]);
            }
            if (!text) {
                fprintf(stderr, "golemnet: no command '%s'\n", argv[2]);
                usage(stderr);
                return EXIT_USAGE;
            }
            fputs(text, stdout);
            return EXIT_SUCCESS;
        }
        usage(stdout);
        return EXIT_SUCCESS;
    }
    if (!strcmp(cmd, "--version")) {
        cmd = "version";
    }
    int client_rc = cmd_client_main(cmd, argc - 1, argv + 1, cli_json);
    if (client_rc >= 0) {
        return client_rc; /* a command on a running daemon (tools/cmd_client.c) */
    }
    const char *help = cmd_help_text(cmd);
    if (!help) {
        fprintf(stderr, "golemnet: unknown command '%s'\n", cmd);
        usage(stderr);
        return EXIT_USAGE;
    }
    cli_cmd_name = cmd;
    /* CMD --help (or -h) anywhere before a lone "--": that command's help */
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(help, stdout);
            return EXIT_SUCCESS;
        }
    }
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
    if (!strcmp(cmd, "dht")) {
        return cmd_net(CLI_DHT, argc - 2, argv + 2);
    }
    if (!strcmp(cmd, "daemon")) {
        return cmd_daemon(argc - 2, argv + 2, cli_json);
    }
#ifdef GN_CLI_XFER
    if (!strcmp(cmd, "share") || !strcmp(cmd, "fetch")) {
        return cmd_xfer(!strcmp(cmd, "fetch"), argc - 2, argv + 2);
    }
#endif
#ifdef GN_CLI_ERGO
    if (!strcmp(cmd, "ergo")) {
        return cmd_ergo(argc - 2, argv + 2);
    }
#endif
#ifdef GN_CLI_PUBSUB
    if (!strcmp(cmd, "pubsub")) {
        return cmd_pubsub(argc - 2, argv + 2);
    }
#endif
    /* version */
    if (argc > 2) {
        return usage_error("unexpected argument '%s' for 'version'", argv[2]);
    }
    if (cli_json) {
        printf("{\"event\":\"version\",\"version\":\"%s\"}\n", gn_version());
    } else {
        printf("golemnet %s\n", gn_version());
    }
    return EXIT_SUCCESS;
}
