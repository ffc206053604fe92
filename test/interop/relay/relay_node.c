/*
 * A golemnet relay for the js-libp2p relay interop test
 * (test/interop/js/relay_hop_interop.sh): a node running the `relay`
 * component (the circuit relay v2 hop service) on TCP loopback.
 *
 *   relay_node SEED MAX_SECONDS [relay.KEY=VALUE ...]
 *
 * Prints "listening <multiaddr>/p2p/<id>" on stdout once it listens, then
 * serves until SIGTERM/SIGINT or MAX_SECONDS; prints "stopped" and exits 0.
 * Exit 1 on a start failure (also when the relay component failed).
 */
#include "golemnet/golemnet.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: relay_node SEED MAX_SECONDS [relay.KEY=VALUE ...]\n");
        return 2;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    gn_identity *id = NULL;
    if (gn_identity_from_int_seed((uint32_t)strtoul(argv[1], NULL, 10), &id) < 0) {
        return 1;
    }
    long max_s = strtol(argv[2], NULL, 10);
    gn_node_config cfg;
    gn_node_config_default(&cfg);
    cfg.identity = id;
    cfg.transports = "tcp";
    cfg.routers = "";
    cfg.discovery = "";
    cfg.protocol_components = "relay";
    const char *listen = "/ip4/127.0.0.1/tcp/0";
    cfg.listen = &listen;
    cfg.n_listen = 1;
    cfg.options = (const char *const *)(argv + 3);
    cfg.n_options = (size_t)(argc - 3);
    gn_node *n = NULL;
    int rc = gn_node_new(&cfg, &n);
    if (rc == 0) {
        rc = gn_node_start(n);
    }
    if (rc < 0) {
        fprintf(stderr, "relay_node: %s\n", gn_strerror(rc));
        gn_node_free(n);
        gn_identity_free(id);
        return 1;
    }
    int status = 0;
    for (long ticks = 0; !stop_flag && ticks < max_s * 10; ticks++) {
        gn_node_event ev;
        while (gn_node_next_event(n, &ev, 100 * GN_MS) == 0) {
            if (ev.type == GN_NODE_EV_LISTENING) {
                printf("listening %s\n", ev.addr);
                fflush(stdout);
            } else if (ev.type == GN_NODE_EV_START_FAILED || ev.type == GN_NODE_EV_LISTEN_FAILED) {
                fprintf(stderr, "relay_node: start failed: %s (%s)\n", ev.protocol,
                        gn_strerror(ev.status));
                status = 1;
                stop_flag = 1;
            }
            gn_rcbuf_rele(ev.message);
            if (stop_flag) {
                break;
            }
        }
    }
    gn_node_close(n, NULL, NULL);
    gn_node_free(n);
    gn_identity_free(id);
    printf("stopped\n");
    fflush(stdout);
    return status;
}
