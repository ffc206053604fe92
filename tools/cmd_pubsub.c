/*
 * "golemnet pubsub sub|pub TOPIC": a node running the pubsub component
 * (gossipsub v1.1 or floodsub) with a multicast channel on /pubsub/TOPIC
 * (gn_node_dial_group). sub prints every message of the topic; pub
 * publishes --count messages once --wait-peers peers are subscribed, then
 * keeps running for --linger-ms so the messages leave. Output: one JSON
 * object per line on stdout (events listening, dial, message, published,
 * publish_failed, done); errors on stderr. Uses the public API only.
 */
#include "golemnet/golemnet.h"

#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_USAGE 2
#define PS_MAX_DIAL 16
/* Longest --data: the message is "<data>-<index>" in a 512-byte buffer. */
#define PS_MAX_DATA 480
#define PS_MAX_OPTS 32

const char cmd_pubsub_help[] =
    "usage: golemnet pubsub sub|pub TOPIC [options]\n"
    "  Runs a node with the pubsub component and a multicast channel on the\n"
    "  group /pubsub/TOPIC (docs/pubsub.md). sub prints the topic's messages;\n"
    "  pub publishes --count messages (\"--data\" then \"-<i>\") once --wait-peers\n"
    "  peers are subscribed, and prints the topic's messages too. One JSON object\n"
    "  per line on stdout.\n"
    "  --listen MA           listen on MA (repeatable, at most 16)\n"
    "  --dial MA             dial MA (repeatable, at most 16; with /p2p/<id>)\n"
    "  --router R            gossipsub (default) or floodsub\n"
    "  --seed N              deterministic Ed25519 identity N (default: a new one)\n"
    "  --count N             sub: exit after N messages (default: run until --timeout);\n"
    "                        pub: messages to publish (default 1)\n"
    "  --data TEXT           pub: message prefix, at most 480 bytes (default \"golemnet\")\n"
    "  --interval-ms MS      pub: between publishes (default 200)\n"
    "  --wait-peers K        pub: subscribed peers before publishing (default 1)\n"
    "  --delay-ms MS         pub: wait this long once the peers are there (default 1500)\n"
    "  --linger-ms MS        pub: run this long after the last publish (default 1000)\n"
    "  --timeout S           give up after S seconds (default 30; exit status 1)\n"
    "  --log LEVEL           log to stderr: error, warning (default), info or debug\n"
    "  --option C.K=V        a component option, e.g. pubsub.heartbeat_ms=700 (repeatable)\n";

typedef struct ps_cli {
    bool pub;
    const char *topic;
    const char *listen[PS_MAX_DIAL];
    size_t n_listen;
    const char *dial[PS_MAX_DIAL];
    size_t n_dial;
    const char *opts[PS_MAX_OPTS];
    size_t n_opts;
    char router_opt[64];
    long long seed;
    unsigned long count, interval_ms, wait_peers, linger_ms, timeout_s, delay_ms;
    const char *data;
} ps_cli;

/* "golemnet pubsub: @what @arg" and the help on stderr. */
static int ps_usage(const char *what, const char *arg)
{
    fprintf(stderr, "golemnet pubsub: %s%s\n%s", what, arg, cmd_pubsub_help);
    return EXIT_USAGE;
}

static bool ps_num(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    if (!s || *s < '0' || *s > '9') {
        return false;
    }
    unsigned long v = strtoul(s, &end, 10);
    if (*end || v > max) {
        return false;
    }
    *out = v;
    return true;
}

/* Prints one event line: {"event":EV,"key":"value",...} with @n string pairs. */
static void ps_emit(const char *ev, const char *const *kv, size_t n)
{
    printf("{\"event\":");
    cli_json_str(ev);
    for (size_t i = 0; i + 1 < 2 * n; i += 2) {
        putchar(',');
        cli_json_str(kv[i]);
        putchar(':');
        cli_json_str(kv[i + 1] ? kv[i + 1] : "");
    }
    printf("}\n");
    fflush(stdout);
}

/* Handles one node event; returns true for a group message of the topic. */
static bool ps_event(ps_cli *c, const gn_node_event *ev, char *group)
{
    char pid[GN_PEER_ID_MAX_STRLEN] = "";
    if (ev->peer.len) {
        gn_peer_id_to_string(&ev->peer, pid, sizeof pid);
    }
    switch (ev->type) {
    case GN_NODE_EV_DIAL: {
        const char *kv[] = {"status", gn_err_name(ev->status), "peer", pid};
        ps_emit("dial", kv, 2);
        break;
    }
    case GN_NODE_EV_SEND_FAILED: {
        if (strcmp(ev->addr, group) != 0) {
            break; /* not a publish of ours (a unicast or another send) */
        }
        const char *kv[] = {"status", gn_err_name(ev->status), "addr", ev->addr};
        ps_emit("publish_failed", kv, 2);
        break;
    }
    case GN_NODE_EV_MESSAGE:
        if (ev->message && strcmp(ev->addr, group) == 0) {
            gn_slice sl = gn_rcbuf_slice(ev->message);
            char *text = malloc(sl.len + 1);
            if (text) {
                memcpy(text, sl.base, sl.len);
                text[sl.len] = '\0';
                const char *kv[] = {"topic", c->topic, "from", pid, "data", text};
                ps_emit("message", kv, 3);
                free(text);
            }
            return true;
        }
        break;
    default:
        break;
    }
    return false;
}

static int ps_parse(ps_cli *c, int argc, char **argv)
{
    if (argc < 2) {
        return ps_usage("want sub|pub and a TOPIC", "");
    }
    if (strcmp(argv[0], "sub") != 0 && strcmp(argv[0], "pub") != 0) {
        return ps_usage("unknown operation (want sub or pub): ", argv[0]);
    }
    c->pub = strcmp(argv[0], "pub") == 0;
    c->topic = argv[1];
    c->seed = -1;
    c->count = c->pub ? 1 : 0;
    c->interval_ms = 200;
    c->wait_peers = 1;
    c->linger_ms = 1000;
    c->delay_ms = 1500;
    c->timeout_s = 30;
    c->data = "golemnet";
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        unsigned long n = 0;
        if (!v) {
            return ps_usage("a value is missing after ", a);
        }
        i++;
        if ((!strcmp(a, "--listen") && c->n_listen == PS_MAX_DIAL) ||
            (!strcmp(a, "--dial") && c->n_dial == PS_MAX_DIAL)) {
            return ps_usage("at most 16 of each: too many ", a);
        }
        if (!strcmp(a, "--listen")) {
            c->listen[c->n_listen++] = v;
        } else if (!strcmp(a, "--dial")) {
            c->dial[c->n_dial++] = v;
        } else if (!strcmp(a, "--option") && c->n_opts + 1 < PS_MAX_OPTS) {
            c->opts[c->n_opts++] = v;
        } else if (!strcmp(a, "--router")) {
            if (strcmp(v, "gossipsub") != 0 && strcmp(v, "floodsub") != 0) {
                return ps_usage("--router: want gossipsub or floodsub, not ", v);
            }
            snprintf(c->router_opt, sizeof c->router_opt, "pubsub.router=%s", v);
        } else if (!strcmp(a, "--seed") && ps_num(v, 0xffffffffu, &n)) {
            c->seed = (long long)n;
        } else if (!strcmp(a, "--count") && ps_num(v, 1000000, &c->count)) {
        } else if (!strcmp(a, "--interval-ms") && ps_num(v, 3600000, &c->interval_ms)) {
        } else if (!strcmp(a, "--wait-peers") && ps_num(v, 100000, &c->wait_peers)) {
        } else if (!strcmp(a, "--linger-ms") && ps_num(v, 3600000, &c->linger_ms)) {
        } else if (!strcmp(a, "--delay-ms") && ps_num(v, 3600000, &c->delay_ms)) {
        } else if (!strcmp(a, "--timeout") && ps_num(v, 86400, &c->timeout_s)) {
        } else if (!strcmp(a, "--log")) {
            static const char *const lv[] = {"error", "warning", "info", "debug"};
            static const gn_log_level lvl[] = {GN_LOG_ERR, GN_LOG_WARNING, GN_LOG_INFO,
                                               GN_LOG_DEBUG};
            size_t k = 0;
            while (k < 4 && strcmp(v, lv[k]) != 0) {
                k++;
            }
            if (k == 4) {
                return ps_usage("--log: want error, warning, info or debug, not ", v);
            }
            gn_log_set(cli_log, NULL, lvl[k]);
        } else if (!strcmp(a, "--data")) {
            if (strlen(v) > PS_MAX_DATA) {
                return ps_usage("--data: at most 480 bytes, too long: ", a);
            }
            c->data = v;
        } else {
            return ps_usage("bad option or value: ", a);
        }
    }
    if (c->router_opt[0]) {
        c->opts[c->n_opts++] = c->router_opt;
    }
    return 0;
}

int cmd_pubsub(int argc, char **argv)
{
    ps_cli c;
    memset(&c, 0, sizeof c);
    int rc = ps_parse(&c, argc, argv);
    if (rc != 0) {
        return rc;
    }
    char group[GN_NODE_ADDR_MAX];
    if (strlen(c.topic) + strlen(GN_GROUP_ADDR_PREFIX) >= sizeof group) {
        return ps_usage("topic too long: ", c.topic);
    }
    snprintf(group, sizeof group, "%s%s", GN_GROUP_ADDR_PREFIX, c.topic);
    gn_identity *id = NULL;
    rc = c.seed >= 0 ? gn_identity_from_int_seed((uint32_t)c.seed, &id) : gn_identity_generate(&id);
    if (rc < 0) {
        fprintf(stderr, "golemnet pubsub: identity: %s\n", gn_strerror(rc));
        return EXIT_FAILURE;
    }
    gn_node_config cfg;
    gn_node_config_default(&cfg);
    cfg.identity = id;
    cfg.listen = c.listen;
    cfg.n_listen = c.n_listen;
    cfg.protocol_components = "/meshsub/1.1.0";
    cfg.options = c.opts;
    cfg.n_options = c.n_opts;
    gn_node *n = NULL;
    gn_multicast *mc = NULL;
    int status = EXIT_FAILURE;
    if ((rc = gn_node_new(&cfg, &n)) < 0 || (rc = gn_node_start(n)) < 0 ||
        (rc = gn_node_dial_group(n, group, &mc)) < 0) {
        fprintf(stderr, "golemnet pubsub: node: %s\n", gn_strerror(rc));
        goto out;
    }
    gn_peer_id self;
    gn_identity_peer_id(id, &self);
    char self_s[GN_PEER_ID_MAX_STRLEN];
    gn_peer_id_to_string(&self, self_s, sizeof self_s);
    gn_time deadline = gn_now() + (gn_time)c.timeout_s * GN_S;
    /* listeners first, so a script can hand our address to the other side */
    for (size_t got = 0; got < c.n_listen;) {
        gn_node_event ev;
        if (gn_node_next_event(n, &ev, 5 * GN_S) < 0) {
            fprintf(stderr, "golemnet pubsub: no listener event\n");
            goto out;
        }
        if (ev.type == GN_NODE_EV_LISTENING) {
            const char *kv[] = {"addr", ev.addr, "peer_id", self_s}; /* with /p2p/ */
            ps_emit("listening", kv, 2);
            got++;
        } else if (ev.type == GN_NODE_EV_LISTEN_FAILED) {
            fprintf(stderr, "golemnet pubsub: listen %s: %s\n", ev.addr, gn_err_name(ev.status));
            gn_rcbuf_rele(ev.message);
            goto out;
        }
        gn_rcbuf_rele(ev.message);
    }
    if (c.n_listen == 0) {
        const char *kv[] = {"peer_id", self_s};
        ps_emit("started", kv, 1);
    }
    for (size_t i = 0; i < c.n_dial; i++) {
        if ((rc = gn_node_dial(n, c.dial[i], NULL, NULL, NULL)) < 0) {
            fprintf(stderr, "golemnet pubsub: dial %s: %s\n", c.dial[i], gn_strerror(rc));
            goto out;
        }
    }
    unsigned long received = 0, published = 0;
    gn_time next_pub = 0, linger_until = 0;
    bool ready = false;
    for (;;) {
        gn_time now = gn_now();
        if (now >= deadline) {
            fprintf(stderr, "golemnet pubsub: timed out (%lu received, %lu published)\n",
                    received, published);
            break;
        }
        if (!c.pub && c.count > 0 && received >= c.count) {
            status = EXIT_SUCCESS;
            break;
        }
        if (c.pub && published >= c.count && now >= linger_until) {
            status = EXIT_SUCCESS;
            break;
        }
        if (c.pub && !ready) {
            gn_multicast_metrics m;
            if (gn_multicast_metrics_get(mc, &m) == 0 && m.members >= c.wait_peers) {
                ready = true;
                next_pub = now + (gn_time)c.delay_ms * GN_MS; /* heartbeats build the mesh */
            }
        }
        if (c.pub && ready && published < c.count && now >= next_pub) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s-%lu", c.data, published);
            rc = gn_multicast_broadcast(mc, (const uint8_t *)msg, strlen(msg));
            char idx[24];
            snprintf(idx, sizeof idx, "%lu", published);
            const char *kv[] = {"topic", c.topic, "index", idx, "data", msg,
                                "status", gn_err_name(rc)};
            ps_emit(rc == 0 ? "published" : "publish_failed", kv, 4);
            published++;
            next_pub = now + (gn_time)c.interval_ms * GN_MS;
            if (published >= c.count) {
                linger_until = now + (gn_time)c.linger_ms * GN_MS;
            }
        }
        gn_node_event ev;
        if (gn_node_next_event(n, &ev, 50 * GN_MS) == 0) {
            if (ps_event(&c, &ev, group)) {
                received++;
            }
            gn_rcbuf_rele(ev.message);
        }
    }
    {
        gn_multicast_metrics m;
        if (gn_multicast_metrics_get(mc, &m) == 0) {
            char b[7][24];
            snprintf(b[0], 24, "%llu", (unsigned long long)m.published);
            snprintf(b[1], 24, "%llu", (unsigned long long)m.delivered);
            snprintf(b[2], 24, "%llu", (unsigned long long)m.duplicate);
            snprintf(b[3], 24, "%llu", (unsigned long long)m.rejected);
            snprintf(b[4], 24, "%llu", (unsigned long long)m.dropped);
            snprintf(b[5], 24, "%llu", (unsigned long long)m.members);
            snprintf(b[6], 24, "%llu", (unsigned long long)m.mesh);
            const char *kv[] = {"published", b[0], "delivered", b[1], "duplicate", b[2],
                                "rejected",  b[3], "dropped",   b[4], "members",   b[5],
                                "mesh",      b[6]};
            ps_emit("done", kv, 7);
        }
    }
out:
    gn_multicast_free(mc);
    if (n) {
        gn_node_close(n, NULL, NULL);
        gn_node_free(n);
    }
    gn_identity_free(id);
    return status;
}
