/*
 * The `autorelay` router: reach peers through circuit relay v2 relays, and
 * listen through relays while this node cannot be dialled directly
 * (libp2p/specs relay/circuit-v2.md; docs/relay.md "Relay routing").
 *
 * Relays come from configuration (autorelay.relay) and, when the node runs
 * a DHT, from the DHT: relays announce themselves as providers of the CID
 * of "/libp2p/relay" (sha2-256, raw codec; the rendezvous namespace
 * go-libp2p's routing discovery uses), which the `relay` hop component
 * provides when it runs.
 *
 * find_peer(P) answers /p2p/<relay>/p2p-circuit/p2p/<P> through each known
 * relay (at most 4): the host adds them to the peer store, where a dial of
 * P tries them after P's direct addresses failed (node/connmgr.c), so a
 * relay carries the connection only when a direct one cannot be had.
 *
 * Reservations: with autorelay.reserve=auto (default) the router listens
 * through up to autorelay.max_reservations relays (default 2) while the
 * node's reachability (AutoNAT, gn_host_reachability) is PRIVATE, and
 * closes those listeners when it turns PUBLIC; =always reserves from the
 * start, =never does not reserve.
 *
 * Options (component "autorelay"):
 *   autorelay.relay=<multiaddr>/p2p/<id>   a relay (repeatable, at most 16)
 *   autorelay.reserve=auto|always|never    default auto
 *   autorelay.max_reservations=N           default 2, 1..8
 *   autorelay.discover=true|false          relays from the DHT (default true)
 *   autorelay.discover_interval_s=N        default 600
 *
 * Thread context: the host's loop thread.
 */
#include "golemnet/log.h"
#include "golemnet/registry.h"
#include "golemnet/router.h"

#include "gni.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AR_LOG "autorelay"
#define AR_MAX_RELAYS 16u
#define AR_MAX_ANSWER 4u
#define AR_FIRST_DISCOVERY (5 * GN_S)
/* A relay listened through that has announced no address (no reservation)
 * after AR_GRACE is dropped for AR_PENALTY (configured) or forgotten
 * (discovered); checked every AR_CHECK. */
#define AR_GRACE (60 * GN_S)
#define AR_PENALTY (10 * 60 * GN_S)
#define AR_CHECK (15 * GN_S)

typedef struct ar_relay {
    gn_peer_id id;
    gn_multiaddr *listen;   /* /.../p2p/<id>/p2p-circuit while we listen through it */
    gn_multiaddr *base;     /* the configured address (/.../p2p/<id>), or /p2p/<id> */
    bool configured;
    gn_time listen_since;   /* when we began listening through it */
    gn_time failed_until;   /* not used before this (no reservation came) */
} ar_relay;

typedef struct ar_query {
    gn_op op;
    gni_list link;
    struct ar_router *ar;
    gn_peer_id peer;
    gn_router_peer_cb cb;
    void *arg;
    bool canceled;
} ar_query;

typedef enum ar_reserve { AR_RES_AUTO = 0, AR_RES_ALWAYS, AR_RES_NEVER } ar_reserve;

typedef struct ar_router {
    gn_router *r;
    ar_relay relays[AR_MAX_RELAYS];
    size_t nrelays;
    ar_reserve reserve;
    size_t max_res;
    bool discover;
    gn_time discover_every;
    gn_timer timer;
    gn_timer check;         /* reservation health (AR_CHECK) */
    gn_op *disc_op;         /* the find_providers running */
    gn_host_sub *sub;
    gni_list queries;
    bool running;
    bool listening;         /* reservations wanted now */
} ar_router;

/* CID v1 (raw) multihash of sha2-256("/libp2p/relay"): the provider key. */
static void relay_key(uint8_t out[34])
{
    static const char ns[] = "/libp2p/relay";
    out[0] = 0x12; /* sha2-256 */
    out[1] = 32;
    crypto_hash_sha256(out + 2, (const uint8_t *)ns, sizeof ns - 1);
}

static int ar_init(gn_router *r)
{
    ar_router *ar = r->state;
    ar->r = r;
    gni_list_init(&ar->queries);
    gn_timer_init(r->loop, &ar->timer);
    gn_timer_init(r->loop, &ar->check);
    return 0;
}

static void ar_fini(gn_router *r)
{
    ar_router *ar = r->state;
    for (size_t i = 0; i < ar->nrelays; i++) {
        gn_multiaddr_free(ar->relays[i].listen);
        gn_multiaddr_free(ar->relays[i].base);
    }
    ar->nrelays = 0;
}

static ar_relay *find_relay(ar_router *ar, const gn_peer_id *id)
{
    for (size_t i = 0; i < ar->nrelays; i++) {
        if (gn_peer_id_equal(&ar->relays[i].id, id)) {
            return &ar->relays[i];
        }
    }
    return NULL;
}

/* Adds a relay known at @base (/.../p2p/<id>); an existing one is kept. */
static int add_relay(ar_router *ar, const gn_peer_id *id, const gn_multiaddr *base,
                     bool configured)
{
    gn_peer_id self;
    gn_host_peer_id(ar->r->host, &self);
    if (gn_peer_id_equal(id, &self) || find_relay(ar, id)) {
        return 0;
    }
    if (ar->nrelays == AR_MAX_RELAYS) {
        return GN_ELIMIT;
    }
    ar_relay *rl = &ar->relays[ar->nrelays];
    memset(rl, 0, sizeof *rl);
    int rc = gn_multiaddr_dup(base, &rl->base);
    if (rc < 0) {
        return rc;
    }
    rl->id = *id;
    rl->configured = configured;
    ar->nrelays++;
    return 0;
}

/* /p2p/<id> */
static int ma_p2p(const gn_peer_id *id, const char *suffix, gn_multiaddr **out)
{
    char pid[GN_PEER_ID_MAX_STRLEN], text[2 * GN_PEER_ID_MAX_STRLEN + 64];
    if (gn_peer_id_to_string(id, pid, sizeof pid) < 0) {
        return GN_EINVAL;
    }
    snprintf(text, sizeof text, "/p2p/%s%s", pid, suffix);
    return gn_multiaddr_parse(text, out);
}

/* ---- reservations ---- */

static void reserve_update(ar_router *ar)
{
    gn_host *h = ar->r->host;
    bool want = ar->running && (ar->reserve == AR_RES_ALWAYS ||
                                (ar->reserve == AR_RES_AUTO &&
                                 gn_host_reachability(h) == GN_REACH_PRIVATE));
    size_t active = 0;
    for (size_t i = 0; i < ar->nrelays; i++) {
        ar_relay *rl = &ar->relays[i];
        if (rl->listen && (!want || active >= ar->max_res)) {
            gn_host_unlisten(h, rl->listen);
            gn_multiaddr_free(rl->listen);
            rl->listen = NULL;
        } else if (rl->listen) {
            active++;
        }
    }
    gn_time now = gn_loop_now(ar->r->loop);
    for (size_t i = 0; want && i < ar->nrelays && active < ar->max_res; i++) {
        ar_relay *rl = &ar->relays[i];
        gn_multiaddr *tail = NULL, *ma = NULL;
        if (rl->listen || rl->failed_until > now) {
            continue;
        }
        if (gn_multiaddr_parse("/p2p-circuit", &tail) == 0 &&
            gn_multiaddr_encapsulate(rl->base, tail, &ma) == 0 && gn_host_listen(h, ma) == 0) {
            char text[GN_MA_MAX_STRLEN];
            if (gn_multiaddr_to_string(ma, text, sizeof text) >= 0) {
                GN_LOG(GN_LOG_INFO, AR_LOG, "listening through relay: %s", text);
            }
            rl->listen = ma;
            rl->listen_since = now;
            ma = NULL;
            active++;
        }
        gn_multiaddr_free(tail);
        gn_multiaddr_free(ma);
    }
    ar->listening = want;
}

/* True when the host announces an address through relay @rl (its
 * reservation succeeded: the circuit transport announces what it gives). */
static bool relay_announced(ar_router *ar, const ar_relay *rl)
{
    char pid[GN_PEER_ID_MAX_STRLEN], want[GN_PEER_ID_MAX_STRLEN + 24];
    if (gn_peer_id_to_string(&rl->id, pid, sizeof pid) < 0) {
        return false;
    }
    snprintf(want, sizeof want, "/p2p/%s/p2p-circuit", pid);
    const gn_multiaddr *ann[GN_HOST_MAX_ANNOUNCED];
    size_t n = gn_host_announced_addrs(ar->r->host, ann, GN_HOST_MAX_ANNOUNCED);
    for (size_t i = 0; i < n; i++) {
        char text[GN_MA_MAX_STRLEN];
        if (gn_multiaddr_to_string(ann[i], text, sizeof text) >= 0 && strstr(text, want)) {
            return true;
        }
    }
    return false;
}

/* Drops the relays listened through that never gave a reservation, so that
 * a dead relay, or a peer that only claims to be one in the DHT, does not
 * hold a slot for good; the next relay takes the slot. */
static void check_timer(gn_timer *t, void *arg)
{
    (void)t;
    ar_router *ar = arg;
    if (!ar->running) {
        return;
    }
    gn_time now = gn_loop_now(ar->r->loop);
    bool changed = false;
    for (size_t i = 0; i < ar->nrelays;) {
        ar_relay *rl = &ar->relays[i];
        if (!rl->listen || now - rl->listen_since < AR_GRACE || relay_announced(ar, rl)) {
            i++;
            continue;
        }
        char pid[GN_PEER_ID_MAX_STRLEN];
        gn_peer_id_to_string(&rl->id, pid, sizeof pid);
        GN_LOG(GN_LOG_WARNING, AR_LOG, "relay %s gave no reservation in %llu s: %s", pid,
               (unsigned long long)(AR_GRACE / GN_S),
               rl->configured ? "set aside for 10 min" : "forgotten");
        gn_host_unlisten(ar->r->host, rl->listen);
        gn_multiaddr_free(rl->listen);
        rl->listen = NULL;
        changed = true;
        if (rl->configured) {
            rl->failed_until = now + AR_PENALTY;
            i++;
        } else {
            gn_multiaddr_free(rl->base);
            ar->relays[i] = ar->relays[--ar->nrelays];
        }
    }
    if (changed) {
        reserve_update(ar);
    }
    gn_timer_start(&ar->check, AR_CHECK, check_timer, ar);
}

/* ---- discovery through the DHT ---- */

static void discover(ar_router *ar);

static void disc_timer(gn_timer *t, void *arg)
{
    (void)t;
    discover(arg);
}

static void disc_done(void *arg, int status, const gn_router_peer *peers, size_t n)
{
    ar_router *ar = arg;
    ar->disc_op = NULL;
    if (!ar->running) {
        return;
    }
    size_t added = 0;
    for (size_t i = 0; status == 0 && i < n; i++) {
        const gn_router_peer *p = &peers[i];
        if (p->naddrs > 0) {
            gn_host_peer_add_addrs(ar->r->host, &p->id, (const gn_multiaddr *const *)p->addrs,
                                   p->naddrs, 60 * 60 * GN_S, GN_ADDR_SRC_ROUTER);
        }
        gn_multiaddr *base = NULL;
        if (!find_relay(ar, &p->id) && ma_p2p(&p->id, "", &base) == 0 &&
            add_relay(ar, &p->id, base, false) == 0) {
            added++;
        }
        gn_multiaddr_free(base);
    }
    GN_LOG(GN_LOG_INFO, AR_LOG, "relay discovery: %s, %zu relay(s) found, %zu new",
           status == 0 ? "done" : gn_err_name(status), n, added);
    if (added > 0 && ar->listening) {
        reserve_update(ar);
    }
    gn_timer_start(&ar->timer, ar->discover_every, disc_timer, ar);
}

static void discover(ar_router *ar)
{
    if (!ar->running || ar->disc_op) {
        return;
    }
    uint8_t key[34];
    relay_key(key);
    int rc = gn_host_find_providers(ar->r->host, gn_slice_of(key, sizeof key), AR_MAX_RELAYS,
                                    disc_done, ar, &ar->disc_op);
    if (rc == GN_ENOTSUP) {
        GN_LOG(GN_LOG_DEBUG, AR_LOG, "no DHT: relays from configuration only");
        return;
    }
    if (rc < 0) {
        gn_timer_start(&ar->timer, ar->discover_every, disc_timer, ar);
    }
}

/* ---- the router ---- */

static void ar_on_event(void *arg, const gn_host_event *ev)
{
    ar_router *ar = arg;
    if (ar->running && ev->type == GN_HOST_EV_REACHABILITY) {
        reserve_update(ar);
    }
}

static int opt_uint(gn_host *h, const char *key, uint64_t lo, uint64_t hi, uint64_t *out)
{
    const char *v = gn_host_option(h, "autorelay", key, 0);
    if (!v) {
        return 0;
    }
    char *end = NULL;
    unsigned long long x = strtoull(v, &end, 10);
    if (!*v || *end || x < lo || x > hi) {
        GN_LOG(GN_LOG_ERR, AR_LOG, "autorelay.%s=%s: want a number from %llu to %llu", key, v,
               (unsigned long long)lo, (unsigned long long)hi);
        return GN_EINVAL;
    }
    *out = x;
    return 0;
}

static int ar_start(gn_router *r)
{
    ar_router *ar = r->state;
    gn_host *h = r->host;
    const char *v;
    for (size_t i = 0; (v = gn_host_option(h, "autorelay", "relay", i)); i++) {
        gn_multiaddr *ma = NULL;
        gn_peer_id id;
        size_t cnt = 0;
        gn_ma_component c;
        int rc = gn_multiaddr_parse(v, &ma);
        if (rc == 0) {
            cnt = gn_multiaddr_count(ma);
            rc = cnt > 0 && gn_multiaddr_component(ma, cnt - 1, &c) == 0 && c.code == GN_MA_P2P &&
                         gn_peer_id_from_bytes(c.value, c.value_len, &id) == 0
                     ? 0
                     : GN_EINVAL;
        }
        if (rc == 0) {
            rc = add_relay(ar, &id, ma, true);
        }
        gn_multiaddr_free(ma);
        if (rc < 0) {
            GN_LOG(GN_LOG_ERR, AR_LOG, "autorelay.relay=%s: %s (want <multiaddr>/p2p/<relay id>)",
                   v, gn_strerror(rc));
            return rc;
        }
    }
    v = gn_host_option(h, "autorelay", "reserve", 0);
    if (!v || strcmp(v, "auto") == 0) {
        ar->reserve = AR_RES_AUTO;
    } else if (strcmp(v, "always") == 0) {
        ar->reserve = AR_RES_ALWAYS;
    } else if (strcmp(v, "never") == 0) {
        ar->reserve = AR_RES_NEVER;
    } else {
        GN_LOG(GN_LOG_ERR, AR_LOG, "autorelay.reserve=%s: want auto, always or never", v);
        return GN_EINVAL;
    }
    uint64_t maxr = 2, every = 600;
    int rc = opt_uint(h, "max_reservations", 1, 8, &maxr);
    if (rc == 0) {
        rc = opt_uint(h, "discover_interval_s", 10, 86400, &every);
    }
    if (rc < 0) {
        return rc;
    }
    ar->max_res = (size_t)maxr;
    ar->discover_every = (gn_time)every * GN_S;
    v = gn_host_option(h, "autorelay", "discover", 0);
    ar->discover = !v || strcmp(v, "true") == 0;
    if (v && strcmp(v, "true") != 0 && strcmp(v, "false") != 0) {
        GN_LOG(GN_LOG_ERR, AR_LOG, "autorelay.discover=%s: want true or false", v);
        return GN_EINVAL;
    }
    rc = gn_host_subscribe(h, GN_HOST_EV_REACHABILITY, ar_on_event, ar, &ar->sub);
    if (rc < 0) {
        return rc;
    }
    ar->running = true;
    gn_timer_start(&ar->check, AR_CHECK, check_timer, ar);
    if (ar->discover) {
        gn_timer_start(&ar->timer, AR_FIRST_DISCOVERY, disc_timer, ar);
    }
    reserve_update(ar);
    return 0;
}

static void ar_stop(gn_router *r)
{
    ar_router *ar = r->state;
    ar->running = false;
    gn_timer_stop(&ar->timer);
    gn_timer_stop(&ar->check);
    gn_host_unsubscribe(ar->sub);
    ar->sub = NULL;
    if (ar->disc_op) {
        gn_op *q = ar->disc_op;
        ar->disc_op = NULL;
        gn_op_cancel(q);
    }
    for (size_t i = 0; i < ar->nrelays; i++) {
        if (ar->relays[i].listen) {
            gn_host_unlisten(r->host, ar->relays[i].listen);
            gn_multiaddr_free(ar->relays[i].listen);
            ar->relays[i].listen = NULL;
        }
    }
    for (gni_list *e = ar->queries.next; e != &ar->queries; e = e->next) {
        GNI_CONTAINER_OF(e, ar_query, link)->canceled = true;
    }
}

static void query_run(gn_loop *loop, void *arg)
{
    (void)loop;
    ar_query *q = arg;
    ar_router *ar = q->ar;
    gni_list_del(&q->link);
    if (q->canceled) {
        q->cb(q->arg, GN_ECANCELED, &q->peer, NULL, 0);
        gn_free(q);
        return;
    }
    gn_multiaddr *addrs[AR_MAX_ANSWER];
    size_t n = 0;
    char suffix[GN_PEER_ID_MAX_STRLEN + 24], pid[GN_PEER_ID_MAX_STRLEN];
    gn_peer_id_to_string(&q->peer, pid, sizeof pid);
    snprintf(suffix, sizeof suffix, "/p2p-circuit/p2p/%s", pid);
    gn_multiaddr *tail = NULL;
    if (gn_multiaddr_parse(suffix, &tail) < 0) {
        tail = NULL;
    }
    for (size_t i = 0; tail && i < ar->nrelays && n < AR_MAX_ANSWER; i++) {
        if (gn_peer_id_equal(&ar->relays[i].id, &q->peer) ||
            ar->relays[i].failed_until > gn_loop_now(ar->r->loop)) {
            continue; /* a relay is not reached through itself; nor a failing one */
        }
        /* through the relay's configured address, or its bare peer ID (the
         * peer store and the routers know where it is) */
        if (gn_multiaddr_encapsulate(ar->relays[i].base, tail, &addrs[n]) == 0) {
            n++;
        }
    }
    gn_multiaddr_free(tail);
    q->cb(q->arg, n > 0 ? 0 : GN_ENOROUTE, &q->peer, addrs, n);
    for (size_t i = 0; i < n; i++) {
        gn_multiaddr_free(addrs[i]);
    }
    gn_free(q);
}

static void query_cancel(gn_op *op)
{
    GNI_CONTAINER_OF(op, ar_query, op)->canceled = true; /* query_run reports it */
}

static int ar_find_peer(gn_router *r, const gn_peer_id *peer, gn_router_peer_cb cb, void *arg,
                        gn_op **op)
{
    ar_router *ar = r->state;
    ar_query *q = gn_calloc(1, sizeof *q);
    if (!q) {
        return GN_ENOMEM;
    }
    q->op.cancel = query_cancel;
    q->ar = ar;
    q->peer = *peer;
    q->cb = cb;
    q->arg = arg;
    int rc = gn_loop_defer(r->loop, query_run, q);
    if (rc < 0) {
        gn_free(q);
        return rc;
    }
    gni_list_add_tail(&ar->queries, &q->link);
    *op = &q->op;
    return 0;
}

static const gn_router_ops ar_ops = {
    .abi = GN_ROUTER_ABI,
    .name = "autorelay",
    .state_size = sizeof(ar_router),
    .flags = GN_LAYER_F_EXPLICIT_ONLY, /* a node routes through relays when configured to */
    .init = ar_init,
    .fini = ar_fini,
    .start = ar_start,
    .stop = ar_stop,
    .find_peer = ar_find_peer,
};

int gn_router_autorelay_register(gn_registry *reg);
int gn_router_autorelay_register(gn_registry *reg)
{
    return gn_registry_add(reg, GN_LAYER_ROUTER, (const gn_layer_ops *)&ar_ops);
}
