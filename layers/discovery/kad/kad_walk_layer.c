/*
 * The `kad` discovery component: random walks through the DHT.
 *
 * Every walk asks the host for the peers closest to a random key
 * (gn_host_closest_peers(), answered by the first router that is a DHT:
 * the kad router) and reports the peers it had not reported recently, with
 * their addresses. The first walk runs shortly after the start, the next
 * ones every walk interval; a walk that found nobody (the routing table was
 * still empty) is retried sooner, with doubling delays up to the interval.
 *
 * Options (gn_host_option, component "kad"; the router's options share the
 * prefix, these start with "walk_"):
 *   kad.walk_ms=<n>        interval between walks (default 300000: 5 min)
 *   kad.walk_first_ms=<n>  delay of the first walk (default 1000)
 * Bounds: one walk in flight; the last 1024 reported peers are remembered
 * (older ones may be reported again, which the peer store absorbs).
 * Spec: libp2p/specs kad-dht/README.md "Bootstrap process" (random
 * lookups); docs/routing-kad.md "Discovery".
 */
#include "golemnet/discovery.h"
#include "golemnet/registry.h"
#include "golemnet/router.h"

#include "gni.h"

#include <stdlib.h>
#include <string.h>

#define WALK_LOG "kad-walk"
#define WALK_SEEN 1024u
/* Addresses found by a walk stay in the peer store this long. */
#define WALK_TTL (30 * 60 * GN_S)

typedef struct kad_walk {
    gn_discovery *d;
    gn_discovery_peer_cb cb;
    void *cb_arg;
    gn_timer timer;
    gn_op *op;             /* the walk in flight */
    gn_time interval, first, retry;
    bool running;
    gn_peer_id seen[WALK_SEEN]; /* ring of recently reported peers */
    size_t nseen, seen_pos;
    uint64_t walks, reported;
} kad_walk;

static int opt_ms(gn_host *h, const char *key, gn_time def, gn_time *out)
{
    const char *v = gn_host_option(h, "kad", key, 0);
    *out = def;
    if (!v) {
        return 0;
    }
    char *end;
    unsigned long long ms = strtoull(v, &end, 10);
    if (*v < '0' || *v > '9' || *end || ms == 0 || ms > 7ull * 24 * 3600 * 1000) {
        GN_LOG(GN_LOG_ERR, WALK_LOG, "kad.%s=%s: want milliseconds, 1 to 604800000", key, v);
        return GN_EINVAL;
    }
    *out = (gn_time)ms * GN_MS;
    return 0;
}

static bool seen_before(kad_walk *w, const gn_peer_id *p)
{
    for (size_t i = 0; i < w->nseen; i++) {
        if (gn_peer_id_equal(&w->seen[i], p)) {
            return true;
        }
    }
    w->seen[w->seen_pos] = *p;
    w->seen_pos = (w->seen_pos + 1) % WALK_SEEN;
    if (w->nseen < WALK_SEEN) {
        w->nseen++;
    }
    return false;
}

static void walk_due(gn_timer *t, void *arg);

static void walk_done(void *arg, int status, const gn_router_peer *peers, size_t n)
{
    kad_walk *w = arg;
    w->op = NULL;
    if (!w->running || status == GN_ECANCELED) {
        return;
    }
    size_t fresh = 0;
    for (size_t i = 0; i < n; i++) {
        if (peers[i].naddrs == 0 || seen_before(w, &peers[i].id)) {
            continue;
        }
        fresh++;
        w->reported++;
        w->cb(w->cb_arg, &peers[i].id, peers[i].addrs, peers[i].naddrs, WALK_TTL);
        if (!w->running) {
            return; /* stopped from inside the report */
        }
    }
    GN_LOG(GN_LOG_DEBUG, WALK_LOG, "walk %llu: %zu peers, %zu new (%s)",
           (unsigned long long)w->walks, n, fresh, gn_err_name(status));
    gn_time next = w->interval;
    if (n == 0) {
        /* nothing known yet: try again sooner */
        next = w->retry;
        w->retry = GNI_MIN(w->retry * 2, w->interval);
    } else {
        w->retry = w->first;
    }
    (void)gn_timer_start(&w->timer, next, walk_due, w);
}

static void walk_due(gn_timer *t, void *arg)
{
    (void)t;
    kad_walk *w = arg;
    if (!w->running || w->op) {
        return;
    }
    uint8_t key[32];
    gn_rng_fill(gn_rng_system(), key, sizeof key);
    w->walks++;
    int rc = gn_host_closest_peers(w->d->host, gn_slice_of(key, sizeof key), walk_done, w,
                                   &w->op);
    if (rc == GN_ENOTSUP) {
        GN_LOG(GN_LOG_NOTICE, WALK_LOG, "no DHT router: random walks off");
        return;
    }
    if (rc < 0) {
        GN_LOG(GN_LOG_INFO, WALK_LOG, "walk not started: %s", gn_err_name(rc));
        (void)gn_timer_start(&w->timer, w->interval, walk_due, w);
    }
}

static int walk_start(gn_discovery *d, gn_discovery_peer_cb cb, void *arg)
{
    kad_walk *w = d->state;
    w->d = d;
    w->cb = cb;
    w->cb_arg = arg;
    int rc = opt_ms(d->host, "walk_ms", 5 * 60 * GN_S, &w->interval);
    if (rc == 0) {
        rc = opt_ms(d->host, "walk_first_ms", GN_S, &w->first);
    }
    if (rc < 0) {
        return rc;
    }
    w->retry = w->first;
    gn_timer_init(d->loop, &w->timer);
    w->running = true;
    return gn_timer_start(&w->timer, w->first, walk_due, w);
}

static void walk_stop(gn_discovery *d)
{
    kad_walk *w = d->state;
    w->running = false;
    gn_timer_stop(&w->timer);
    if (w->op) {
        gn_op *op = w->op;
        w->op = NULL;
        gn_op_cancel(op); /* walk_done runs later with GN_ECANCELED and does nothing */
    }
}

static const gn_discovery_ops kad_walk_ops = {
    .abi = GN_DISCOVERY_ABI,
    .name = "kad",
    .state_size = sizeof(kad_walk),
    .start = walk_start,
    .stop = walk_stop,
};

int gn_discovery_kad_register(gn_registry *reg);
int gn_discovery_kad_register(gn_registry *reg)
{
    return gn_registry_add(reg, GN_LAYER_DISCOVERY, (const gn_layer_ops *)&kad_walk_ops);
}
