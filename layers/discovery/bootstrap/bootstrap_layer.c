/*
 * The `bootstrap` discovery component: a configured list of peers,
 * reported to the node (so their addresses are in the peer store) and
 * dialled, again with exponential backoff until a connection opens.
 *
 * Options (gn_host_option, component "bootstrap"):
 *   bootstrap.peer=<multiaddr>/p2p/<id>   one peer; repeatable (at most 64)
 *   bootstrap.backoff_ms=<n>              first retry delay (default 1000)
 *   bootstrap.max_backoff_ms=<n>          retry delay cap (default 60000)
 *   bootstrap.dial=0                      report only, do not dial
 * A peer that disconnects later is dialled again (with the same backoff).
 * Spec: docs/components.md "bootstrap".
 */
#include "golemnet/discovery.h"
#include "golemnet/registry.h"

#include "gni.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BOOT_LOG "bootstrap"
#define BOOT_MAX_PEERS 64u
#define BOOT_TTL (60 * 60 * GN_S)

typedef struct boot_peer {
    struct bootstrap *b;
    gn_peer_id id;
    gn_multiaddr *addr;        /* with /p2p/<id> */
    gn_timer timer;
    gn_op *op;                 /* a connect in flight */
    gn_time backoff;
    bool connected;
} boot_peer;

typedef struct bootstrap {
    gn_discovery *d;
    gn_discovery_peer_cb cb;
    void *cb_arg;
    boot_peer peers[BOOT_MAX_PEERS];
    size_t npeers;
    gn_time backoff0, backoff_max;
    bool dial;
    bool running;
    gn_timer report_timer;     /* reports on a loop turn after start() */
    gn_host_sub *sub;
} bootstrap;

static void boot_dial(boot_peer *p);

static void boot_retry(gn_timer *t, void *arg)
{
    (void)t;
    boot_dial(arg);
}

static void boot_schedule(boot_peer *p)
{
    bootstrap *b = p->b;
    if (!b->running || p->connected || gn_timer_active(&p->timer)) {
        return;
    }
    gn_timer_start(&p->timer, p->backoff, boot_retry, p);
    p->backoff = GNI_MIN(p->backoff * 2, b->backoff_max);
}

static void boot_connected(void *arg, int status, gn_channel *ch)
{
    boot_peer *p = arg;
    (void)ch;
    p->op = NULL;
    if (status == 0) {
        p->connected = true;
        p->backoff = p->b->backoff0;
        return;
    }
    if (status != GN_ECANCELED) {
        char text[GN_MA_MAX_STRLEN];
        if (gn_multiaddr_to_string(p->addr, text, sizeof text) > 0) {
            GN_LOG(GN_LOG_INFO, BOOT_LOG, "%s: %s; again in %llu ms", text, gn_strerror(status),
                   (unsigned long long)(p->backoff / GN_MS));
        }
    }
    boot_schedule(p);
}

static void boot_dial(boot_peer *p)
{
    bootstrap *b = p->b;
    if (!b->running || p->connected || p->op) {
        return;
    }
    int rc = gn_host_connect(b->d->host, p->addr, boot_connected, p, &p->op);
    if (rc < 0) {
        p->op = NULL;
        boot_schedule(p);
    }
}

/* Reports every peer, then dials them: on a loop turn after start(). */
static void boot_report(gn_timer *t, void *arg)
{
    bootstrap *b = arg;
    (void)t;
    if (!b->running) {
        return;
    }
    for (size_t i = 0; i < b->npeers; i++) {
        boot_peer *p = &b->peers[i];
        gn_multiaddr *const addrs[1] = {p->addr};
        b->cb(b->cb_arg, &p->id, addrs, 1, BOOT_TTL);
    }
    for (size_t i = 0; b->dial && i < b->npeers; i++) {
        boot_dial(&b->peers[i]);
    }
}

static void boot_event(void *arg, const gn_host_event *ev)
{
    bootstrap *b = arg;
    for (size_t i = 0; i < b->npeers && ev->peer; i++) {
        boot_peer *p = &b->peers[i];
        if (!gn_peer_id_equal(&p->id, ev->peer)) {
            continue;
        }
        if (ev->type == GN_HOST_EV_CONNECTED) {
            p->connected = true;
            p->backoff = b->backoff0;
            gn_timer_stop(&p->timer);
        } else if (ev->type == GN_HOST_EV_DISCONNECTED && p->connected) {
            p->connected = false;
            if (b->dial) {
                boot_schedule(p);
            }
        }
    }
}

static int opt_ms(gn_host *h, const char *key, gn_time def, gn_time *out)
{
    const char *v = gn_host_option(h, "bootstrap", key, 0);
    *out = def;
    if (!v) {
        return 0;
    }
    char *end;
    unsigned long long ms = strtoull(v, &end, 10);
    if (*v < '0' || *v > '9' || *end || ms == 0 || ms > 24ull * 3600 * 1000) {
        GN_LOG(GN_LOG_ERR, BOOT_LOG, "bootstrap.%s=%s: want milliseconds, 1 to 86400000", key,
               v);
        return GN_EINVAL;
    }
    *out = (gn_time)ms * GN_MS;
    return 0;
}

static int boot_start(gn_discovery *d, gn_discovery_peer_cb cb, void *arg)
{
    bootstrap *b = d->state;
    gn_host *h = d->host;
    b->d = d;
    b->cb = cb;
    b->cb_arg = arg;
    int rc = opt_ms(h, "backoff_ms", GN_S, &b->backoff0);
    if (rc == 0) {
        rc = opt_ms(h, "max_backoff_ms", 60 * GN_S, &b->backoff_max);
    }
    if (rc < 0) {
        return rc;
    }
    b->backoff_max = GNI_MAX(b->backoff_max, b->backoff0);
    const char *dial = gn_host_option(h, "bootstrap", "dial", 0);
    b->dial = !dial || strcmp(dial, "0") != 0;
    const char *v;
    for (size_t i = 0; (v = gn_host_option(h, "bootstrap", "peer", i)); i++) {
        if (b->npeers == BOOT_MAX_PEERS) {
            GN_LOG(GN_LOG_ERR, BOOT_LOG, "more than %u bootstrap.peer entries", BOOT_MAX_PEERS);
            return GN_ELIMIT;
        }
        boot_peer *p = &b->peers[b->npeers];
        gn_ma_component c;
        size_t n;
        rc = gn_multiaddr_parse(v, &p->addr);
        if (rc == 0 && ((n = gn_multiaddr_count(p->addr)) < 2 ||
                        gn_multiaddr_component(p->addr, n - 1, &c) < 0 || c.code != GN_MA_P2P ||
                        gn_peer_id_from_bytes(c.value, c.value_len, &p->id) < 0)) {
            rc = GN_EINVAL;
        }
        if (rc < 0) {
            GN_LOG(GN_LOG_ERR, BOOT_LOG, "bootstrap.peer=%s: %s (want <multiaddr>/p2p/<id>)", v,
                   gn_strerror(rc));
            gn_multiaddr_free(p->addr);
            p->addr = NULL;
            return rc;
        }
        /* into the peer store now, so a dial by peer ID right after the
         * start finds it; the discovery report follows on a later turn */
        const gn_multiaddr *addrs[1] = {p->addr};
        if ((rc = gn_host_peer_add_addrs(h, &p->id, addrs, 1, BOOT_TTL,
                                         GN_ADDR_SRC_DISCOVERY)) < 0) {
            GN_LOG(GN_LOG_ERR, BOOT_LOG, "bootstrap.peer=%s: %s", v, gn_strerror(rc));
            gn_multiaddr_free(p->addr);
            p->addr = NULL;
            return rc;
        }
        p->b = b;
        p->backoff = b->backoff0;
        gn_timer_init(d->loop, &p->timer);
        b->npeers++;
    }
    if (b->npeers == 0) {
        return 0;
    }
    rc = gn_host_subscribe(h, GN_HOST_EV_CONNECTED | GN_HOST_EV_DISCONNECTED, boot_event, b,
                           &b->sub);
    if (rc < 0) {
        return rc;
    }
    b->running = true;
    gn_timer_init(d->loop, &b->report_timer);
    return gn_timer_start(&b->report_timer, 0, boot_report, b);
}

static void boot_stop(gn_discovery *d)
{
    bootstrap *b = d->state;
    if (b->running) {
        gn_timer_stop(&b->report_timer);
    }
    b->running = false;
    gn_host_unsubscribe(b->sub);
    b->sub = NULL;
    for (size_t i = 0; i < b->npeers; i++) {
        boot_peer *p = &b->peers[i];
        gn_timer_stop(&p->timer);
        if (p->op) {
            gn_op_cancel(p->op); /* boot_connected runs later with GN_ECANCELED */
        }
    }
}

static void boot_fini(gn_discovery *d)
{
    bootstrap *b = d->state;
    for (size_t i = 0; i < b->npeers; i++) {
        gn_multiaddr_free(b->peers[i].addr);
    }
}

/* For the conformance suite: "bootstrap.peer=<addr>/p2p/<peer>". */
static int boot_test_options(const gn_peer_id *peer, const gn_multiaddr *addr, char *out,
                             size_t out_len)
{
    char ma[GN_MA_MAX_STRLEN], pid[GN_PEER_ID_MAX_STRLEN];
    if (gn_multiaddr_to_string(addr, ma, sizeof ma) < 0 ||
        gn_peer_id_to_string(peer, pid, sizeof pid) < 0) {
        return GN_EINVAL;
    }
    int len = snprintf(out, out_len, "bootstrap.peer=%s/p2p/%s", ma, pid);
    return len < 0 || (size_t)len >= out_len ? GN_ENOSPC : len;
}

static const gn_discovery_ops bootstrap_ops = {
    .abi = GN_DISCOVERY_ABI,
    .name = "bootstrap",
    .state_size = sizeof(bootstrap),
    .fini = boot_fini,
    .start = boot_start,
    .stop = boot_stop,
    .test_options = boot_test_options,
};

int gn_discovery_bootstrap_register(gn_registry *reg);
int gn_discovery_bootstrap_register(gn_registry *reg)
{
    return gn_registry_add(reg, GN_LAYER_DISCOVERY, (const gn_layer_ops *)&bootstrap_ops);
}
