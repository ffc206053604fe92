/*
 * golemnet-p2pd: a libp2p daemon (go-libp2p-daemon's control protocol and
 * flags) backed by a golemnet node, so that existing daemon clients (Go,
 * JavaScript @libp2p/daemon-client, Python p2pclient) drive golemnet
 * unchanged. docs/p2pd.md lists the flags, the operations and the
 * differences from go's daemon.
 *
 *   golemnet-p2pd [-listen /unix/tmp/p2pd.sock] [-hostAddrs MA,MA] [-id KEYFILE]
 *                 [-dht | -dhtServer | -dhtClient] [-bootstrapPeers MA,MA] ...
 *
 * Flags follow Go's flag package: -name or --name, values as "-name value"
 * or "-name=value", booleans as "-name" or "-name=false".
 *
 * Exit status: 0 after SIGINT/SIGTERM, 1 when the node or the control
 * socket cannot start, 2 for a bad flag.
 */
#include "golemnet/golemnet.h"
#include "golemnet/node.h"

#include "cli_platform.h"
#include "p2pd_uv.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define P2PD_EXIT_FAIL 1
#define P2PD_EXIT_USAGE 2
#define P2PD_TICK (50 * GN_MS)
#define P2PD_MAX_LIST 32     /* entries of -hostAddrs, -bootstrapPeers, -dhtNamespace */
#define P2PD_LIST_STR 4096   /* longest comma list */
#define P2PD_MAX_OPTIONS 128 /* node options built from the flags */

static volatile sig_atomic_t p2pd_signalled;

static void p2pd_on_signal(int sig)
{
    (void)sig;
    p2pd_signalled = 1;
}

/* ------------------------------------------------------------ flags */

typedef struct p2pd_flags {
    const char *listen;
    char host_addrs[P2PD_LIST_STR];
    bool no_listen;
    const char *id_file;
    bool noise, tls, plaintext;
    bool tls_set;
    const char *muxer;
    bool dht, dht_server, dht_client;
    char namespaces[P2PD_LIST_STR];
    bool relay;
    bool autonat;
    bool pubsub;
    const char *pubsub_router;
    char bootstrap_peers[P2PD_LIST_STR];
    bool bootstrap;
    bool quiet;
    bool echo;
    bool conn_mgr;
    unsigned long conn_lo, conn_hi;
    unsigned long conn_grace_s;
    bool nat_port_map;
    const char *log;
} p2pd_flags;

static void usage(FILE *f)
{
    fputs("usage: golemnet-p2pd [flags]   (a libp2p daemon backed by golemnet; docs/p2pd.md)\n"
          "  -listen MA            control socket (default /unix/tmp/p2pd.sock; also\n"
          "                        /ip4/127.0.0.1/tcp/N or /ip6/::1/tcp/N)\n"
          "  -hostAddrs MA,MA      addresses the node listens on (default /ip4/0.0.0.0/tcp/0)\n"
          "  -noListenAddrs        listen on no address\n"
          "  -id FILE              private key file (libp2p PrivateKey protobuf, as go writes;\n"
          "                        default: a fresh Ed25519 key)\n"
          "  -noise[=false]        Noise security (default true)\n"
          "  -tls                  TLS 1.3 security: not built in golemnet (refused)\n"
          "  -plaintext[=false]    plaintext/2.0.0 security, for tests (default false)\n"
          "  -muxer NAME           yamux (default), mplex, or a comma list of both\n"
          "  -dht | -dhtServer | -dhtClient\n"
          "                        run the Kademlia DHT (auto, server or client mode)\n"
          "  -dhtNamespace NS,NS   accept any record under /NS/... (golemnet extension)\n"
          "  -bootstrapPeers MA,MA peers to connect to (and bootstrap the DHT from)\n"
          "  -b                    connect to the bootstrap peers (they are always used)\n"
          "  -relay[=false]        serve circuit relay v2 (hop) (default false)\n"
          "  -autonat              run the AutoNAT service\n"
          "  -connManager          connection manager water marks: -connLo N (256),\n"
          "                        -connHi N (512), -connGrace DURATION (120s)\n"
          "  -natPortMap           map the listen ports on the gateway (UPnP, NAT-PMP)\n"
          "  -echo[=false]         serve /echo/1.0.0 (default true)\n"
          "  -pubsub, -pubsubRouter NAME\n"
          "                        pubsub: not built in golemnet yet (refused)\n"
          "  -q                    do not print the start-up lines\n"
          "  -log LEVEL            log to stderr: err, warning (default), notice, info, debug\n",
          f);
}

static int flag_error(const char *fmt, ...) GN_PRINTF(1, 2);
static int flag_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("golemnet-p2pd: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\n(see golemnet-p2pd -h)\n", stderr);
    va_end(ap);
    return -1;
}

static int parse_bool(const char *name, const char *v, bool *out)
{
    if (!v || !strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "t") || !strcmp(v, "T") ||
        !strcmp(v, "TRUE") || !strcmp(v, "True")) {
        *out = true;
        return 0;
    }
    if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "f") || !strcmp(v, "F") ||
        !strcmp(v, "FALSE") || !strcmp(v, "False")) {
        *out = false;
        return 0;
    }
    return flag_error("-%s: '%s' is not a boolean (true or false)", name, v);
}

static int parse_ulong(const char *name, const char *v, unsigned long max, unsigned long *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long x = strtoul(v, &end, 10);
    if (!v[0] || *end || errno || x > max || v[0] == '-') {
        return flag_error("-%s: '%s' is not a number 0..%lu", name, v, max);
    }
    *out = x;
    return 0;
}

/* A Go duration as -connGrace takes it: "120s", "2m", "1h", "500ms", or plain seconds. */
static int parse_duration_s(const char *name, const char *v, unsigned long *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long x = strtoul(v, &end, 10);
    if (!v[0] || v[0] == '-' || errno || end == v) {
        return flag_error("-%s: '%s' is not a duration (e.g. 120s, 2m)", name, v);
    }
    unsigned long mul = 1;
    if (!*end || !strcmp(end, "s")) {
        mul = 1;
    } else if (!strcmp(end, "m")) {
        mul = 60;
    } else if (!strcmp(end, "h")) {
        mul = 3600;
    } else if (!strcmp(end, "ms")) {
        *out = x / 1000;
        return 0;
    } else {
        return flag_error("-%s: '%s' is not a duration (e.g. 120s, 2m)", name, v);
    }
    if (x > 86400ul * 365 / mul) {
        return flag_error("-%s: '%s' is too long", name, v);
    }
    *out = x * mul;
    return 0;
}

static int set_list(const char *name, const char *v, char *out)
{
    if (strlen(v) >= P2PD_LIST_STR) {
        return flag_error("-%s: the list is longer than %d bytes", name, P2PD_LIST_STR - 1);
    }
    snprintf(out, P2PD_LIST_STR, "%s", v);
    return 0;
}

/* Flags of go's daemon that golemnet-p2pd refuses, with the reason. */
static const struct {
    const char *name;
    const char *why;
} refused_flags[] = {
    {"f", "a JSON configuration file is not supported; use flags"},
    {"i", "a JSON configuration on stdin is not supported; use flags"},
    {"announceAddrs", "announce addresses are not supported"},
    {"metricsAddr", "the metrics handler is not supported"},
    {"pprof", "the pprof handler is not supported"},
    {"pprofPort", "the pprof handler is not supported"},
    {"relayActive", "active relaying is not supported (relay v1)"},
    {"relayDiscovery", "relay discovery is not supported (relay v1)"},
    {"relayHopLimit", "a relay hop limit is not supported (relay v1)"},
    {"autoRelay", "use golemnet node --autorelay; not supported here"},
    {"forceReachabilityPublic", "forcing reachability is not supported"},
    {"forceReachabilityPrivate", "forcing reachability is not supported"},
    {"pubsubSign", "pubsub is not built in golemnet yet"},
    {"pubsubSignStrict", "pubsub is not built in golemnet yet"},
    {"gossipsubHeartbeatInterval", "pubsub is not built in golemnet yet"},
    {"gossipsubHeartbeatInitialDelay", "pubsub is not built in golemnet yet"},
};

static int parse_flags(int argc, char **argv, p2pd_flags *f)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || !a[1]) {
            return flag_error("unexpected argument '%s' (flags start with -)", a);
        }
        a += a[1] == '-' ? 2 : 1;
        char name[64];
        const char *eq = strchr(a, '=');
        size_t nl = eq ? (size_t)(eq - a) : strlen(a);
        if (nl == 0 || nl >= sizeof name) {
            return flag_error("bad flag '%s'", argv[i]);
        }
        memcpy(name, a, nl);
        name[nl] = '\0';
        const char *val = eq ? eq + 1 : NULL;
        if (!strcmp(name, "h") || !strcmp(name, "help")) {
            usage(stdout);
            exit(0);
        }
        for (size_t k = 0; k < sizeof refused_flags / sizeof refused_flags[0]; k++) {
            if (!strcmp(name, refused_flags[k].name)) {
                return flag_error("-%s: %s", name, refused_flags[k].why);
            }
        }
        /* booleans */
        struct {
            const char *n;
            bool *p;
        } bools[] = {
            {"noListenAddrs", &f->no_listen},
            {"noise", &f->noise},
            {"tls", &f->tls},
            {"plaintext", &f->plaintext},
            {"dht", &f->dht},
            {"dhtServer", &f->dht_server},
            {"dhtClient", &f->dht_client},
            {"relay", &f->relay},
            {"relayHop", &f->relay},
            {"autonat", &f->autonat},
            {"pubsub", &f->pubsub},
            {"b", &f->bootstrap},
            {"q", &f->quiet},
            {"echo", &f->echo},
            {"connManager", &f->conn_mgr},
            {"natPortMap", &f->nat_port_map},
        };
        bool done = false;
        for (size_t k = 0; k < sizeof bools / sizeof bools[0] && !done; k++) {
            if (!strcmp(name, bools[k].n)) {
                if (parse_bool(name, val, bools[k].p) < 0) {
                    return -1;
                }
                if (!strcmp(name, "tls")) {
                    f->tls_set = true;
                }
                done = true;
            }
        }
        if (done) {
            continue;
        }
        /* flags with a value: -name=value or -name value */
        if (!val) {
            if (i + 1 >= argc) {
                return flag_error("flag needs an argument: -%s", name);
            }
            val = argv[++i];
        }
        int rc = 0;
        if (!strcmp(name, "listen")) {
            f->listen = val;
        } else if (!strcmp(name, "hostAddrs")) {
            rc = set_list(name, val, f->host_addrs);
        } else if (!strcmp(name, "id")) {
            f->id_file = val;
        } else if (!strcmp(name, "muxer")) {
            f->muxer = val;
        } else if (!strcmp(name, "dhtNamespace")) {
            if (f->namespaces[0]) {
                size_t used = strlen(f->namespaces);
                if (used + 1 + strlen(val) >= P2PD_LIST_STR) {
                    return flag_error("-dhtNamespace: too many namespaces");
                }
                snprintf(f->namespaces + used, P2PD_LIST_STR - used, ",%s", val);
            } else {
                rc = set_list(name, val, f->namespaces);
            }
        } else if (!strcmp(name, "bootstrapPeers")) {
            rc = set_list(name, val, f->bootstrap_peers);
        } else if (!strcmp(name, "pubsubRouter")) {
            f->pubsub_router = val;
        } else if (!strcmp(name, "connLo")) {
            rc = parse_ulong(name, val, 1000000, &f->conn_lo);
        } else if (!strcmp(name, "connHi")) {
            rc = parse_ulong(name, val, 1000000, &f->conn_hi);
        } else if (!strcmp(name, "connGrace")) {
            rc = parse_duration_s(name, val, &f->conn_grace_s);
        } else if (!strcmp(name, "log")) {
            f->log = val;
        } else {
            return flag_error("flag provided but not defined: -%s", name);
        }
        if (rc < 0) {
            return -1;
        }
    }
    if (f->tls) {
        return flag_error("-tls: TLS 1.3 security is not built in golemnet yet; use -noise "
                          "(the default) and give -tls=false");
    }
    if (f->pubsub || f->pubsub_router) {
        return flag_error("-pubsub/-pubsubRouter: pubsub (gossipsub, floodsub) is not built in "
                          "golemnet yet");
    }
    if (!f->noise && !f->plaintext) {
        return flag_error("at least one channel security protocol must be enabled (-noise or "
                          "-plaintext)");
    }
    if ((int)f->dht + (int)f->dht_server + (int)f->dht_client > 1) {
        return flag_error("-dht, -dhtServer and -dhtClient exclude each other");
    }
    if (f->muxer && strcmp(f->muxer, "yamux") && strcmp(f->muxer, "mplex") &&
        strcmp(f->muxer, "yamux,mplex") && strcmp(f->muxer, "mplex,yamux")) {
        return flag_error("-muxer: '%s' is not yamux or mplex", f->muxer);
    }
    if (f->namespaces[0] && !f->dht && !f->dht_server && !f->dht_client) {
        return flag_error("-dhtNamespace needs the DHT (-dht, -dhtServer or -dhtClient)");
    }
    if (f->bootstrap && !f->bootstrap_peers[0]) {
        return flag_error("-b: golemnet has no default bootstrap peers; give -bootstrapPeers");
    }
    if (f->conn_mgr && f->conn_lo > f->conn_hi) {
        return flag_error("-connLo %lu is above -connHi %lu", f->conn_lo, f->conn_hi);
    }
    return 0;
}

/* ------------------------------------------------------------ the node */

typedef struct p2pd_main {
    p2pd_flags fl;
    gn_identity *id;
    gn_loop *loop;
    gn_node *node;
    gni_p2pd *srv;
    gn_timer tick;
    char *listen[P2PD_MAX_LIST];
    size_t n_listen;
    size_t listen_results;
    bool printed;
    bool stopping;
    bool node_closed;
    int exit_code;
    char *options[P2PD_MAX_OPTIONS];
    size_t n_options;
    char *ns[P2PD_MAX_LIST];
    gn_router_validator val[P2PD_MAX_LIST];
    size_t n_ns;
    char *boot[P2PD_MAX_LIST];
    size_t n_boot;
    char protolist[1024];
    char routerlist[256];
    char disclist[256];
    char security[64];
} p2pd_main;

/* Splits a comma list into @out (strdup'd entries); -1 after saying why. */
static int split_list(const char *flag, const char *list, char **out, size_t *n)
{
    *n = 0;
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        if (len == 0) {
            return flag_error("-%s: an empty entry in '%s'", flag, list);
        }
        if (*n >= P2PD_MAX_LIST) {
            return flag_error("-%s: more than %d entries", flag, P2PD_MAX_LIST);
        }
        char *e = malloc(len + 1);
        if (!e) {
            return flag_error("out of memory");
        }
        memcpy(e, p, len);
        e[len] = '\0';
        out[(*n)++] = e;
        p += len;
        p += *p == ',';
    }
    return 0;
}

static int add_option(p2pd_main *m, const char *fmt, ...) GN_PRINTF(2, 3);
static int add_option(p2pd_main *m, const char *fmt, ...)
{
    if (m->n_options >= P2PD_MAX_OPTIONS) {
        return flag_error("too many options");
    }
    char buf[1200];
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (w < 0 || (size_t)w >= sizeof buf) {
        return flag_error("an option is too long");
    }
    char *s = malloc((size_t)w + 1);
    if (!s) {
        return flag_error("out of memory");
    }
    memcpy(s, buf, (size_t)w + 1);
    m->options[m->n_options++] = s;
    return 0;
}

/* The registered non-explicit components of @kind, without @skip (may be NULL). */
static bool default_names(gn_layer_kind kind, const char *skip, char *out, size_t len)
{
    gn_registry *reg = NULL;
    out[0] = '\0';
    bool ok = gn_registry_new(&reg) == 0 && gn_registry_add_builtins(reg) == 0;
    for (size_t i = 0; ok && i < gn_registry_count(reg, kind); i++) {
        const gn_layer_ops *o = gn_registry_get(reg, kind, i);
        if ((o->flags & GN_LAYER_F_EXPLICIT_ONLY) || (skip && !strcmp(o->name, skip))) {
            continue;
        }
        size_t used = strlen(out);
        int w = snprintf(out + used, len - used, "%s%s", used ? "," : "", o->name);
        ok = w > 0 && (size_t)w < len - used;
    }
    gn_registry_free(reg);
    return ok;
}

static bool list_add(char *out, size_t len, const char *name)
{
    size_t used = strlen(out);
    int w = snprintf(out + used, len - used, "%s%s", used ? "," : "", name);
    return w > 0 && (size_t)w < len - used;
}

static void log_to_stderr(void *ud, gn_log_level level, const char *component, const char *msg)
{
    (void)ud;
    static const char *const names[] = {"emerg", "alert", "crit",   "err",
                                        "warning", "notice", "info", "debug"};
    char ts[32] = "";
    time_t now = time(NULL);
    struct tm tmv;
    if (gmtime_r(&now, &tmv)) {
        strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    }
    fprintf(stderr, "%s %s %s: %s\n", ts, (unsigned)level < 8 ? names[level] : "?", component,
            msg);
}

static void print_startup(p2pd_main *m)
{
    m->printed = true;
    if (m->fl.quiet) {
        return;
    }
    gn_peer_id self;
    gn_node_peer_id(m->node, &self);
    char id[GN_PEER_ID_MAX_STRLEN];
    if (gn_peer_id_to_string(&self, id, sizeof id) < 0) {
        id[0] = '\0';
    }
    printf("Control socket: %s\n", gni_p2pd_addr(m->srv));
    printf("Peer ID: %s\n", id);
    printf("Peer Addrs:\n");
    const gn_multiaddr *addrs[64];
    size_t n = gn_host_listen_addrs(gn_node_host(m->node), addrs, 64);
    for (size_t i = 0; i < n; i++) {
        char s[GN_MA_MAX_STRLEN];
        if (gn_multiaddr_to_string(addrs[i], s, sizeof s) >= 0) {
            printf("%s\n", s);
        }
    }
    if (m->fl.bootstrap && m->n_boot > 0) {
        printf("Bootstrap peers:\n");
        for (size_t i = 0; i < m->n_boot; i++) {
            printf("%s\n", m->boot[i]);
        }
    }
    fflush(stdout);
}

static void node_closed(gn_node *n, void *arg)
{
    (void)n;
    p2pd_main *m = arg;
    m->node_closed = true;
}

static void server_closed(void *arg)
{
    p2pd_main *m = arg;
    gn_node_close(m->node, node_closed, m);
}

static void p2pd_stop(p2pd_main *m, int code)
{
    if (m->stopping) {
        return;
    }
    m->stopping = true;
    m->exit_code = code;
    gni_p2pd_close(m->srv, server_closed, m);
}

static void on_tick(gn_timer *t, void *arg)
{
    p2pd_main *m = arg;
    if (p2pd_signalled) {
        p2pd_stop(m, 0);
        return;
    }
    gn_timer_start(t, P2PD_TICK, on_tick, m);
}

static void pump_events(p2pd_main *m)
{
    gn_node_event ev;
    for (int guard = 0; guard < 4096 && gn_node_next_event(m->node, &ev, 0) == 0; guard++) {
        switch (ev.type) {
        case GN_NODE_EV_LISTENING:
            m->listen_results++;
            break;
        case GN_NODE_EV_LISTEN_FAILED:
            m->listen_results++;
            if (!m->stopping) {
                fprintf(stderr, "golemnet-p2pd: cannot listen on %s: %s (%s)\n", ev.addr,
                        gn_strerror(ev.status), gn_err_name(ev.status));
                p2pd_stop(m, P2PD_EXIT_FAIL);
            }
            break;
        case GN_NODE_EV_START_FAILED:
            if (!m->stopping) {
                fprintf(stderr, "golemnet-p2pd: %s did not start: %s (%s)\n", ev.protocol,
                        gn_strerror(ev.status), gn_err_name(ev.status));
                p2pd_stop(m, P2PD_EXIT_FAIL);
            }
            break;
        case GN_NODE_EV_MESSAGE:
            if (ev.message) {
                gn_rcbuf_rele(ev.message);
            }
            break;
        default:
            break;
        }
    }
    if (!m->printed && !m->stopping && m->listen_results >= m->n_listen) {
        print_startup(m);
    }
}

static int build_config(p2pd_main *m, gn_node_config *cfg)
{
    p2pd_flags *f = &m->fl;
    gn_node_config_default(cfg);
    cfg->identity = m->id;
    cfg->loop = m->loop;
    /* security: noise and plaintext, in that order */
    m->security[0] = '\0';
    if (f->noise) {
        list_add(m->security, sizeof m->security, "noise");
    }
    if (f->plaintext) {
        list_add(m->security, sizeof m->security, "plaintext");
    }
    cfg->security = m->security;
    cfg->muxers = f->muxer ? f->muxer : "yamux";
    /* listen addresses */
    if (!f->no_listen) {
        if (split_list("hostAddrs", f->host_addrs[0] ? f->host_addrs : "/ip4/0.0.0.0/tcp/0",
                       m->listen, &m->n_listen) < 0) {
            return -1;
        }
    }
    cfg->listen = (const char *const *)m->listen;
    cfg->n_listen = m->n_listen;
    /* the DHT: the kad router and random walk only when asked for */
    bool dht = f->dht || f->dht_server || f->dht_client;
    if (!default_names(GN_LAYER_ROUTER, dht ? NULL : "kad", m->routerlist, sizeof m->routerlist) ||
        !default_names(GN_LAYER_DISCOVERY, dht ? NULL : "kad", m->disclist, sizeof m->disclist)) {
        return flag_error("the component lists do not fit");
    }
    if (dht && !strstr(m->routerlist, "kad")) {
        return flag_error("-dht: the kad router is not built in this golemnet");
    }
    cfg->routers = m->routerlist;
    cfg->discovery = m->disclist;
    if (dht && add_option(m, "kad.mode=%s", f->dht_server   ? "server"
                                            : f->dht_client ? "client"
                                                            : "auto") < 0) {
        return -1;
    }
    /* bootstrap peers: dialled with backoff, and the DHT's bootstrap peers */
    if (f->bootstrap_peers[0]) {
        if (split_list("bootstrapPeers", f->bootstrap_peers, m->boot, &m->n_boot) < 0) {
            return -1;
        }
        for (size_t i = 0; i < m->n_boot; i++) {
            gn_multiaddr *ma = NULL;
            gn_ma_component pc;
            if (gn_multiaddr_parse(m->boot[i], &ma) < 0 ||
                gn_multiaddr_find(ma, GN_MA_P2P, &pc) < 0) {
                gn_multiaddr_free(ma);
                return flag_error("-bootstrapPeers: '%s' is not a multiaddr ending in /p2p/<id>",
                                  m->boot[i]);
            }
            gn_multiaddr_free(ma);
            if (add_option(m, "bootstrap.peer=%s", m->boot[i]) < 0 ||
                (dht && add_option(m, "kad.bootstrap=%s", m->boot[i]) < 0)) {
                return -1;
            }
        }
    }
    cfg->options = (const char *const *)m->options;
    cfg->n_options = m->n_options;
    /* protocols: identify, ping, msg (the node's default), echo as go serves it */
    if (f->echo) {
        cfg->protocols |= GN_NODE_PROTO_ECHO;
    }
    if (f->relay || f->autonat) {
        if (!default_names(GN_LAYER_PROTOCOL, NULL, m->protolist, sizeof m->protolist) ||
            (f->relay && !list_add(m->protolist, sizeof m->protolist,
                                   "/libp2p/circuit/relay/0.2.0/hop")) ||
            (f->autonat && !list_add(m->protolist, sizeof m->protolist, "/libp2p/autonat/1.0.0"))) {
            return flag_error("the protocol list does not fit");
        }
        cfg->protocol_components = m->protolist;
    }
    if (f->nat_port_map) {
        cfg->nat = "upnp,natpmp";
    }
    return 0;
}

static void free_main(p2pd_main *m)
{
    for (size_t i = 0; i < m->n_listen; i++) {
        free(m->listen[i]);
    }
    for (size_t i = 0; i < m->n_options; i++) {
        free(m->options[i]);
    }
    for (size_t i = 0; i < m->n_ns; i++) {
        free(m->ns[i]);
    }
    for (size_t i = 0; i < m->n_boot; i++) {
        free(m->boot[i]);
    }
    gn_identity_free(m->id);
}

static void ns_set(void *arg, const gn_node_dht_result *res)
{
    p2pd_main *m = arg;
    if (res->status < 0 && !m->stopping) {
        fprintf(stderr, "golemnet-p2pd: -dhtNamespace: %s\n", gn_strerror(res->status));
        p2pd_stop(m, P2PD_EXIT_FAIL);
    }
}

int main(int argc, char **argv)
{
    static p2pd_main mm;
    p2pd_main *m = &mm;
    p2pd_flags *f = &m->fl;
    f->listen = "/unix/tmp/p2pd.sock";
    f->noise = true;
    f->echo = true;
    f->conn_lo = 256;
    f->conn_hi = 512;
    f->conn_grace_s = 120;
    if (parse_flags(argc, argv, f) < 0) {
        return P2PD_EXIT_USAGE;
    }
    gn_log_level lvl = GN_LOG_WARNING;
    if (f->log) {
        static const char *const names[] = {"err", "warning", "notice", "info", "debug"};
        static const gn_log_level levels[] = {GN_LOG_ERR, GN_LOG_WARNING, GN_LOG_NOTICE,
                                              GN_LOG_INFO, GN_LOG_DEBUG};
        size_t k = 0;
        while (k < 5 && strcmp(names[k], f->log) != 0) {
            k++;
        }
        if (k == 5) {
            flag_error("-log: '%s' is not err, warning, notice, info or debug", f->log);
            return P2PD_EXIT_USAGE;
        }
        lvl = levels[k];
    }
    gn_log_set(log_to_stderr, NULL, lvl);

    int rc = f->id_file ? gn_identity_load(f->id_file, &m->id) : gn_identity_generate(&m->id);
    if (rc < 0) {
        fprintf(stderr, "golemnet-p2pd: -id %s: %s (%s)%s\n", f->id_file ? f->id_file : "",
                gn_strerror(rc), gn_err_name(rc),
                rc == GN_EBADKEY ? ": golemnet takes Ed25519 keys only (go's p2p-keygen -t "
                                   "ed25519, or golemnet keygen)"
                                 : "");
        return P2PD_EXIT_FAIL;
    }
    if (f->namespaces[0] && split_list("dhtNamespace", f->namespaces, m->ns, &m->n_ns) < 0) {
        free_main(m);
        return P2PD_EXIT_USAGE;
    }
    gn_node_config cfg;
    if (build_config(m, &cfg) < 0) {
        free_main(m);
        return P2PD_EXIT_USAGE;
    }
    cli_signals_catch(p2pd_on_signal, NULL);
    cli_sigpipe_ignore();

    if ((rc = gn_loop_new(NULL, &m->loop)) < 0) {
        fprintf(stderr, "golemnet-p2pd: loop: %s\n", gn_strerror(rc));
        free_main(m);
        return P2PD_EXIT_FAIL;
    }
    cfg.loop = m->loop;
    if ((rc = gn_node_new(&cfg, &m->node)) < 0) {
        fprintf(stderr, "golemnet-p2pd: node: %s (%s)\n", gn_strerror(rc), gn_err_name(rc));
        gn_loop_free(m->loop);
        free_main(m);
        return rc == GN_EINVAL || rc == GN_ENOTFOUND ? P2PD_EXIT_USAGE : P2PD_EXIT_FAIL;
    }
    if (f->conn_mgr) {
        if (gn_node_configure(m->node, GN_NODE_OPT_CONN_HIGH_WATER, f->conn_hi) < 0 ||
            gn_node_configure(m->node, GN_NODE_OPT_CONN_LOW_WATER, f->conn_lo) < 0 ||
            gn_node_configure(m->node, GN_NODE_OPT_CONN_GRACE_MS,
                              (uint64_t)f->conn_grace_s * 1000u) < 0) {
            fprintf(stderr, "golemnet-p2pd: -connLo/-connHi/-connGrace refused\n");
        }
    }
    gni_p2pd_config pc;
    memset(&pc, 0, sizeof pc);
    pc.node = m->node;
    pc.listen = f->listen;
    pc.dht = f->dht || f->dht_server || f->dht_client;
    char err[256] = "";
    if ((rc = gni_p2pd_new(&pc, &m->srv)) < 0 ||
        (rc = gni_p2pd_start(m->srv, err, sizeof err)) < 0) {
        fprintf(stderr, "golemnet-p2pd: control socket %s: %s%s%s\n", f->listen,
                gn_strerror(rc), err[0] ? ": " : "", err);
        gni_p2pd_free(m->srv);
        /* a listener that failed after its handle was set up is closing: one loop turn runs
         * its close callback (uv's closing-handles phase) before the loop goes */
        gn_loop_run(m->loop, GN_RUN_NOWAIT);
        gn_node_free(m->node);
        gn_loop_free(m->loop);
        free_main(m);
        return P2PD_EXIT_FAIL;
    }
    for (size_t i = 0; i < m->n_ns && pc.dht; i++) {
        gn_router_validator_any(&m->val[i], m->ns[i]);
        if ((rc = gn_node_dht_set_validator(m->node, &m->val[i], ns_set, m)) < 0) {
            fprintf(stderr, "golemnet-p2pd: -dhtNamespace %s: %s\n", m->ns[i], gn_strerror(rc));
        }
    }
    gn_timer_init(m->loop, &m->tick);
    gn_timer_start(&m->tick, P2PD_TICK, on_tick, m);
    if ((rc = gn_node_start(m->node)) < 0) {
        fprintf(stderr, "golemnet-p2pd: start: %s\n", gn_strerror(rc));
        p2pd_stop(m, P2PD_EXIT_FAIL);
    }
    /* every wait is bounded by the node's own timers; the tick checks for signals */
    while (!m->node_closed) {
        gn_loop_run(m->loop, GN_RUN_ONCE);
        pump_events(m);
    }
    pump_events(m);
    gn_timer_stop(&m->tick);
    gni_p2pd_free(m->srv);
    gn_node_free(m->node);
    gn_loop_free(m->loop);
    free_main(m);
    return m->exit_code;
}
