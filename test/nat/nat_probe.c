/*
 * nat_probe - runs one NAT component inside a real node and reports what
 * happened, for test/nat/nat_netns_test.sh (which runs it inside a network
 * namespace against miniupnpd or a fake gateway).
 *
 * Usage: nat_probe COMPONENT LISTEN_MULTIADDR HOLD_MS [component.key=value ...]
 *        nat_probe COMPONENT direct:INTERNAL_MULTIADDR HOLD_MS [...]
 *
 * The second form maps INTERNAL_MULTIADDR (any transport, e.g. /udp, which
 * no node transport listens on) by driving the component directly on the
 * node's host: gn_nat_new, start, map, and after HOLD_MS unmap and stop;
 * the result status is then the map callback's own.
 *
 * The node listens on LISTEN_MULTIADDR with nat=COMPONENT and the given
 * options. The probe waits (at most 30 s) until the component answers the
 * node's map: the node's "mapped to" line, or the component's failure line
 * ("map ...: <reason> [GN_...]"). On success it keeps the node running for
 * HOLD_MS (renewals happen then), then closes it (the node unmaps) and
 * frees the loop, which waits for the component's last jobs (the delete).
 *
 * Output (stdout, one line each): every log line of the component and the
 * node as "log: <level> <component>: <message>", then
 *   RESULT mapped <external multiaddr>   or   RESULT failed <GN_ERR name>
 *   OBSERVED <n>                          observed addresses of the host
 *   RESULT closed                         after the loop was freed
 * Exit status: 0 when the run completed, 1 on a usage or set-up error,
 * 2 when the component did not answer within 30 s.
 */
#include "golemnet/golemnet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char g_comp[32];
static int g_state;            /* 0 waiting, 1 mapped, -1 failed */
static char g_err[48], g_ext[256];
static bool g_guard, g_closed;

static void probe_log(void *ud, gn_log_level level, const char *component, const char *msg)
{
    (void)ud;
    if (!component || !msg) {
        return;
    }
    if (strcmp(component, g_comp) != 0 && strcmp(component, "host") != 0 &&
        strcmp(component, "node") != 0) {
        return;
    }
    printf("log: %d %s: %s\n", (int)level, component, msg);
    fflush(stdout);
    if (strcmp(component, g_comp) == 0 && strncmp(msg, "map ", 4) == 0 && g_state == 0) {
        const char *e = strstr(msg, "[GN_");
        if (e) {
            snprintf(g_err, sizeof g_err, "%.*s", (int)strcspn(e + 1, "]"), e + 1);
            g_state = -1;
        }
    }
    const char *m = strstr(msg, " mapped to ");
    if (m && g_state == 0) {
        snprintf(g_ext, sizeof g_ext, "%s", m + strlen(" mapped to "));
        g_state = 1;
    }
}

static void direct_mapped(void *arg, int status, const gn_multiaddr *external)
{
    (void)arg;
    if (status == 0 && external) {
        gn_multiaddr_to_string(external, g_ext, sizeof g_ext);
        g_state = 1;
    } else {
        snprintf(g_err, sizeof g_err, "%s", gn_err_name(status));
        g_state = -1;
    }
}

static void guard_fn(gn_timer *t, void *arg)
{
    (void)t, (void)arg;
    g_guard = true;
}

static void closed_cb(gn_node *n, void *arg)
{
    (void)n, (void)arg;
    g_closed = true;
}

/* Runs @loop until *@flag or @ms passed (bounded by turns too). */
static void run_until(gn_loop *loop, const bool *flag, const int *state, unsigned ms)
{
    gn_timer guard;
    g_guard = false;
    gn_timer_init(loop, &guard);
    gn_timer_start(&guard, (gn_time)ms * GN_MS, guard_fn, NULL);
    for (long turns = 0; !g_guard && turns < 10000000; turns++) {
        if ((flag && *flag) || (state && *state != 0)) {
            break;
        }
        gn_loop_run(loop, GN_RUN_ONCE);
    }
    gn_timer_stop(&guard);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s COMPONENT LISTEN_MULTIADDR HOLD_MS [component.key=value ...]\n",
                argv[0]);
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    snprintf(g_comp, sizeof g_comp, "%s", argv[1]);
    unsigned hold_ms = (unsigned)strtoul(argv[3], NULL, 10);
    gn_log_set(probe_log, NULL, GN_LOG_INFO);

    gn_loop *loop = NULL;
    if (gn_loop_new(NULL, &loop) < 0) {
        return 1;
    }
    gn_registry *reg = NULL;
    if (gn_registry_new(&reg) < 0 || gn_registry_add_builtins(reg) < 0) {
        return 1;
    }
    bool direct = strncmp(argv[2], "direct:", 7) == 0;
    gn_node_config cfg;
    gn_node_config_default(&cfg);
    const char *listen[1] = {direct ? "/ip4/127.0.0.1/tcp/0" : argv[2]};
    cfg.listen = listen;
    cfg.n_listen = 1;
    cfg.loop = loop;
    cfg.registry = reg;
    cfg.nat = direct ? "" : argv[1];
    cfg.discovery = "";
    cfg.options = (const char *const *)(argv + 4);
    cfg.n_options = (size_t)(argc - 4);
    gn_node *n = NULL;
    int rc = gn_node_new(&cfg, &n);
    if (rc == 0) {
        rc = gn_node_start(n);
    }
    if (rc < 0) {
        printf("RESULT setup-failed %s\n", gn_err_name(rc));
        gn_node_free(n);
        gn_loop_free(loop);
        return 1;
    }
    gn_nat *nat = NULL;
    gn_multiaddr *internal = NULL;
    if (direct) {
        const gn_nat_ops *ops = (const gn_nat_ops *)gn_registry_find(reg, GN_LAYER_NAT, argv[1]);
        rc = ops ? gn_multiaddr_parse(argv[2] + 7, &internal) : GN_ENOTFOUND;
        if (rc == 0) {
            rc = gn_nat_new(ops, gn_node_host(n), loop, &nat);
        }
        if (rc == 0) {
            rc = gn_nat_start(nat);
        }
        if (rc == 0) {
            rc = gn_nat_map(nat, internal, 60 * 60 * GN_S, direct_mapped, NULL);
        }
        if (rc < 0) {
            printf("RESULT failed %s (at once)\n", gn_err_name(rc));
            g_state = -2;
        }
    }
    run_until(loop, NULL, &g_state, 30000);
    int status = 0;
    if (g_state == 1) {
        printf("RESULT mapped %s\n", g_ext);
        bool never = false;
        run_until(loop, &never, NULL, hold_ms);
    } else if (g_state == -2) {
        status = 0;
    } else if (g_state == -1) {
        printf("RESULT failed %s\n", g_err);
    } else {
        printf("RESULT none (no answer within 30 s)\n");
        status = 2;
    }
    const gn_multiaddr *obs[GN_HOST_MAX_OBSERVED];
    size_t nobs = gn_host_observed_addrs(gn_node_host(n), obs, GN_HOST_MAX_OBSERVED);
    printf("OBSERVED %zu\n", nobs);
    if (nat) {
        if (g_state == 1) {
            printf("UNMAP %s\n", gn_err_name(gn_nat_unmap(nat, internal)));
        }
        gn_nat_stop(nat);
    }
    gn_node_close(n, closed_cb, NULL);
    run_until(loop, &g_closed, NULL, 15000);
    gn_nat_free(nat); /* after the close: the node's operations are done */
    gn_multiaddr_free(internal);
    gn_node_free(n);
    gn_registry_free(reg);
    gn_loop_free(loop); /* runs the component's last jobs (the delete) */
    printf("RESULT closed\n");
    return status;
}
