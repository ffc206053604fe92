/*
 * The host interface (include/golemnet/host.h) as the node implements it,
 * and the node's hosted components: protocol, router, discovery and NAT
 * instances created from the configuration, started with the node and
 * stopped when it closes.
 *
 * Operations (gn_host_op) run in stages: an optional router lookup (FIND),
 * a dial through the upgrade pipeline (DIAL), a stream open (OPEN). Each
 * stage in flight counts in op->pending; the user's callback runs once
 * (op->delivered); the op is freed when both are settled. A cancelled op
 * delivers GN_ECANCELED on a later loop turn and lets its stage in flight
 * finish on its own (a dial that only this op waits for is closed).
 *
 * Loop thread only, except the accessors documented "any thread".
 */
#include "node_int.h"

#include "golemnet/discovery.h"
#include "golemnet/nat.h"
#include "golemnet/protocol.h"
#include "golemnet/router.h"

#include <stdio.h>
#include <string.h>

#define HOST_LOG "host"

/* How long addresses from a router or discovery stay in the peer store
 * unless the component says otherwise. */
#define HOST_ROUTER_ADDR_TTL (60 * 60 * GN_S)
/* NAT mapping lifetime asked of the gateway. */
#define HOST_NAT_LIFETIME (60 * 60 * GN_S)

typedef enum op_kind {
    OP_FIND = 0,   /* gn_host_find_peer */
    OP_CONNECT,    /* gn_host_connect */
    OP_STREAM,     /* gn_host_new_stream */
    OP_ROUTE_DIAL  /* a node dial to a bare /p2p/<id> that needs the routers */
} op_kind;

typedef struct gn_host_op {
    gn_op op;                  /* the handle given out (gn_op_cancel) */
    gni_list link;             /* n->host_ops */
    gn_node *n;
    op_kind kind;
    uint32_t pending;          /* stages in flight */
    bool delivered;            /* the user callback ran or is scheduled */
    bool canceled;
    gn_peer_id peer;
    bool has_peer;
    gn_multiaddr *ma;          /* CONNECT, STREAM, ROUTE_DIAL: what to dial */
    char proto[GN_PROTOCOL_ID_MAX];
    uint32_t flags;            /* GN_HOST_CONNECT_* for the dial */
    bool limited_ok;           /* STREAM: a limited channel may carry it */
    /* FIND stage */
    size_t router_idx;         /* the next router to ask */
    gn_op *query;              /* the pending query of the router asked */
    int find_err;
    bool in_call;              /* inside a router's find_peer */
    bool sync_answer;          /* ... which answered from inside the call */
    int sync_status;
    /* DIAL stage */
    dial_req *r;               /* ROUTE_DIAL: the node's request; others: ours */
    /* user */
    gn_host_connect_cb connect_cb;
    gn_host_stream_open_cb stream_cb;
    gn_host_peer_cb peer_cb;
    void *arg;
} gn_host_op;

struct gn_host_sub {
    gni_list link;             /* n->subs */
    gn_node *n;
    uint32_t mask;
    gn_host_event_cb cb;
    void *arg;
    bool dead;
};

static inline gn_node *host_node(gn_host *h)
{
    return h->node;
}

/* ------------------------------------------------------------------------
 * Identity, loop, addresses
 */

gn_host *gn_node_host(gn_node *n)
{
    return n ? &n->host : NULL;
}

gn_loop *gn_host_loop(gn_host *h)
{
    return host_node(h)->loop;
}

const gn_identity *gn_host_identity(gn_host *h)
{
    return host_node(h)->id;
}

void gn_host_peer_id(gn_host *h, gn_peer_id *out)
{
    *out = host_node(h)->self;
}

size_t gn_host_listen_addrs(gn_host *h, const gn_multiaddr **out, size_t max)
{
    return out ? gni_node_listen_addrs(host_node(h), out, max) : 0;
}

int gn_host_add_observed_addr(gn_host *h, const gn_multiaddr *addr)
{
    gn_node *n = host_node(h);
    if (!addr || gni_ma_is_relayed(addr)) {
        return GN_EINVAL; /* a peer's view of a relayed connection is not our address */
    }
    for (size_t i = 0; i < n->nobserved; i++) {
        if (gn_multiaddr_equal(n->observed[i], addr)) {
            return 0;
        }
    }
    gn_multiaddr *copy = NULL;
    int rc = gn_multiaddr_dup(addr, &copy);
    if (rc < 0) {
        return rc;
    }
    if (n->nobserved == GN_HOST_MAX_OBSERVED) {
        gn_multiaddr_free(n->observed[0]);
        memmove(&n->observed[0], &n->observed[1], (GN_HOST_MAX_OBSERVED - 1) * sizeof copy);
        n->nobserved--;
    }
    n->observed[n->nobserved++] = copy;
    gni_host_emit(n, GN_HOST_EV_LISTEN_ADDRS, NULL, NULL, 0);
    return 0;
}

size_t gn_host_observed_addrs(gn_host *h, const gn_multiaddr **out, size_t max)
{
    gn_node *n = host_node(h);
    size_t k = 0;
    for (size_t i = 0; out && i < n->nobserved && k < max; i++) {
        out[k++] = n->observed[i];
    }
    return k;
}

int gn_host_announce_addr(gn_host *h, const gn_multiaddr *addr, bool add)
{
    gn_node *n = host_node(h);
    if (!addr) {
        return GN_EINVAL;
    }
    size_t i = 0;
    while (i < n->nannounced && !gn_multiaddr_equal(n->announced[i], addr)) {
        i++;
    }
    if (!add) {
        if (i == n->nannounced) {
            return GN_ENOTFOUND;
        }
        gn_multiaddr_free(n->announced[i]);
        n->announced[i] = n->announced[--n->nannounced];
    } else {
        if (i < n->nannounced) {
            return GN_EEXIST;
        }
        if (n->nannounced == GN_HOST_MAX_ANNOUNCED) {
            return GN_ELIMIT;
        }
        gn_multiaddr *copy = NULL;
        int rc = gn_multiaddr_dup(addr, &copy);
        if (rc < 0) {
            return rc;
        }
        n->announced[n->nannounced++] = copy;
    }
    gni_host_emit(n, GN_HOST_EV_LISTEN_ADDRS, NULL, NULL, 0);
    return 0;
}

size_t gn_host_announced_addrs(gn_host *h, const gn_multiaddr **out, size_t max)
{
    gn_node *n = host_node(h);
    size_t k = 0;
    for (size_t i = 0; out && i < n->nannounced && k < max; i++) {
        out[k++] = n->announced[i];
    }
    return k;
}

int gn_host_set_reachability(gn_host *h, gn_reachability r, const gn_multiaddr *addr)
{
    gn_node *n = host_node(h);
    if (r != GN_REACH_UNKNOWN && r != GN_REACH_PUBLIC && r != GN_REACH_PRIVATE) {
        return GN_EINVAL;
    }
    if (atomic_exchange(&n->reach, (int)r) == (int)r) {
        return 0;
    }
    static const char *const names[] = {"unknown", "public", "private"};
    char text[GN_NODE_ADDR_MAX] = "";
    if (addr && gn_multiaddr_to_string(addr, text, sizeof text) < 0) {
        text[0] = '\0';
    }
    GN_LOG(GN_LOG_INFO, HOST_LOG, "reachability: %s%s%s", names[r], text[0] ? " via " : "",
           text);
    gni_host_emit(n, GN_HOST_EV_REACHABILITY, NULL, NULL, (int)r);
    gn_node_event ev;
    gni_node_event_init(&ev, GN_NODE_EV_REACHABILITY);
    ev.status = (int)r;
    snprintf(ev.addr, sizeof ev.addr, "%s", text);
    gni_node_push_event(n, &ev);
    return 0;
}

int gn_host_listen(gn_host *h, const gn_multiaddr *addr)
{
    gn_node *n = host_node(h);
    if (!addr) {
        return GN_EINVAL;
    }
    if (n->closing) {
        return GN_ECLOSED;
    }
    gni_node_listen_now(n, addr);
    return 0;
}

int gn_host_unlisten(gn_host *h, const gn_multiaddr *addr)
{
    return addr ? gni_node_unlisten(host_node(h), addr) : GN_EINVAL;
}

int gn_host_protect_peer(gn_host *h, const gn_peer_id *peer, bool protect)
{
    if (!peer || peer->len == 0) {
        return GN_EINVAL;
    }
    gni_connmgr_protect(host_node(h), peer, protect);
    return 0;
}

gn_reachability gn_host_reachability(gn_host *h)
{
    return (gn_reachability)atomic_load(&host_node(h)->reach);
}

/* ------------------------------------------------------------------------
 * Handlers
 */

int gn_host_set_handler(gn_host *h, const char *protocol_id, gn_host_stream_cb cb, void *arg)
{
    return gn_host_set_handler_ex(h, protocol_id, 0, cb, arg);
}

int gn_host_set_handler_ex(gn_host *h, const char *protocol_id, uint32_t flags,
                           gn_host_stream_cb cb, void *arg)
{
    if (!cb || (flags & ~GN_HOST_HANDLER_LIMITED_OK)) {
        return GN_EINVAL;
    }
    return gni_node_add_handler(host_node(h), protocol_id, cb, arg, true,
                                (flags & GN_HOST_HANDLER_LIMITED_OK) != 0);
}

int gn_host_remove_handler(gn_host *h, const char *protocol_id)
{
    if (!protocol_id) {
        return GN_EINVAL;
    }
    return gni_node_add_handler(host_node(h), protocol_id, NULL, NULL, true, false);
}

size_t gn_host_protocols(gn_host *h, const char **ids, size_t max)
{
    return ids ? gni_node_protocols(host_node(h), ids, max) : 0;
}

/* ------------------------------------------------------------------------
 * Peer store
 */

/* The string the store keeps for @ma: without a trailing /p2p/<peer> (which
 * must name @peer); a /p2p/ part inside, as in a relay address
 * (/p2p/<relay>/p2p-circuit), stays. */
static int addr_to_store(const gn_peer_id *peer, const gn_multiaddr *ma, char *out,
                         size_t out_len)
{
    gn_ma_component c;
    gn_multiaddr *bare = NULL;
    const gn_multiaddr *use = ma;
    size_t cnt = gn_multiaddr_count(ma);
    if (cnt > 0 && gn_multiaddr_component(ma, cnt - 1, &c) == 0 && c.code == GN_MA_P2P) {
        gn_peer_id named;
        if (gn_peer_id_from_bytes(c.value, c.value_len, &named) < 0 ||
            !gn_peer_id_equal(&named, peer)) {
            return GN_EINVAL;
        }
        int rc = gn_multiaddr_decapsulate_code(ma, GN_MA_P2P, &bare);
        if (rc < 0) {
            return rc == GN_EPARSE ? GN_EINVAL : rc; /* nothing before /p2p/ */
        }
        use = bare;
    }
    int rc = gn_multiaddr_to_string(use, out, out_len);
    gn_multiaddr_free(bare);
    return rc == GN_ENOSPC ? GN_ETOOBIG : (rc < 0 ? rc : 0);
}

static gn_time ttl_expiry(gn_node *n, gn_time ttl)
{
    gn_time now = gn_loop_now(n->loop);
    return (ttl == GN_TIME_INFINITY || ttl > GN_TIME_INFINITY - now) ? GN_TIME_INFINITY
                                                                      : now + ttl;
}

int gn_host_peer_add_addrs(gn_host *h, const gn_peer_id *peer, const gn_multiaddr *const *addrs,
                           size_t naddrs, gn_time ttl, gn_addr_source src)
{
    gn_node *n = host_node(h);
    if (!peer || (naddrs > 0 && !addrs) || ttl == 0) {
        return GN_EINVAL;
    }
    gn_time expiry = ttl_expiry(n, ttl);
    for (size_t i = 0; i < naddrs; i++) {
        char text[GNI_PS_STR_MAX];
        int rc = addrs[i] ? addr_to_store(peer, addrs[i], text, sizeof text) : GN_EINVAL;
        if (rc == 0) {
            rc = gni_peerstore_add_addr_ttl(n->ps, peer, text, expiry, (int)src);
        }
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}

int gn_host_peer_addrs(gn_host *h, const gn_peer_id *peer, gn_multiaddr **out,
                       gn_addr_source *src, size_t max)
{
    gn_node *n = host_node(h);
    const gni_peer_info *pi = peer ? gni_peerstore_get(n->ps, peer) : NULL;
    if (!pi || !out) {
        return 0;
    }
    gn_time now = gn_loop_now(n->loop);
    size_t k = 0;
    for (size_t i = pi->naddrs; i-- > 0 && k < max;) {
        if (pi->addrs[i].expiry <= now) {
            continue;
        }
        if (gn_multiaddr_parse(pi->addrs[i].text, &out[k]) < 0) {
            continue; /* stored from a string we printed: cannot fail but for memory */
        }
        if (src) {
            src[k] = (gn_addr_source)pi->addrs[i].src;
        }
        k++;
    }
    return (int)k;
}

int gn_host_peer_set_protocols(gn_host *h, const gn_peer_id *peer, const char *const *protocols,
                               size_t n)
{
    if (!peer || (n > 0 && !protocols)) {
        return GN_EINVAL;
    }
    return gni_peerstore_set_protocols(host_node(h)->ps, peer, protocols, n);
}

bool gn_host_peer_supports(gn_host *h, const gn_peer_id *peer, const char *protocol_id)
{
    return peer && protocol_id && gni_peerstore_supports(host_node(h)->ps, peer, protocol_id);
}

bool gn_host_peer_dialable(gn_host *h, const gn_peer_id *peer)
{
    if (!h || !peer || peer->len == 0) {
        return false;
    }
    gn_node *n = host_node(h);
    return gni_node_find_open(n, peer) != NULL || gni_node_has_route(n, peer);
}

int gn_host_peer_set_pubkey(gn_host *h, const gn_peer_id *peer,
                            const uint8_t pub[GN_ED25519_PUBLICKEYBYTES])
{
    if (!peer || !pub) {
        return GN_EINVAL;
    }
    return gni_peerstore_set_pubkey(host_node(h)->ps, peer, pub);
}

int gn_host_peer_set_agent(gn_host *h, const gn_peer_id *peer, const char *agent)
{
    if (!peer || !agent) {
        return GN_EINVAL;
    }
    return gni_peerstore_set_identify(host_node(h)->ps, peer, NULL, agent);
}

int gn_host_peer_record_latency(gn_host *h, const gn_peer_id *peer, gn_time rtt)
{
    if (!peer) {
        return GN_EINVAL;
    }
    return gni_peerstore_record_latency(host_node(h)->ps, peer, rtt);
}

gn_time gn_host_peer_latency(gn_host *h, const gn_peer_id *peer)
{
    const gni_peer_info *pi = peer ? gni_peerstore_get(host_node(h)->ps, peer) : NULL;
    return pi ? gni_peer_latency(pi) : 0;
}

/* ------------------------------------------------------------------------
 * Events
 */

int gn_host_subscribe(gn_host *h, uint32_t mask, gn_host_event_cb cb, void *arg,
                      gn_host_sub **out)
{
    gn_node *n = host_node(h);
    if (!cb || mask == 0 || !out) {
        return GN_EINVAL;
    }
    gn_host_sub *s = gn_calloc(1, sizeof *s);
    if (!s) {
        return GN_ENOMEM;
    }
    s->n = n;
    s->mask = mask;
    s->cb = cb;
    s->arg = arg;
    gni_list_add_tail(&n->subs, &s->link);
    *out = s;
    return 0;
}

static void subs_sweep(gn_node *n)
{
    for (gni_list *e = n->subs.next; e != &n->subs;) {
        gni_list *next = e->next;
        gn_host_sub *s = GNI_CONTAINER_OF(e, gn_host_sub, link);
        if (s->dead) {
            gni_list_del(&s->link);
            gn_free(s);
        }
        e = next;
    }
}

void gn_host_unsubscribe(gn_host_sub *sub)
{
    if (!sub) {
        return;
    }
    gn_node *n = sub->n;
    sub->dead = true;
    if (n->sub_depth == 0) {
        subs_sweep(n);
    }
}

void gn_host_publish(gn_host *h, const gn_host_event *ev)
{
    gn_node *n = host_node(h);
    if (!ev) {
        return;
    }
    n->sub_depth++;
    /* subscribers added during the walk see the next event, not this one */
    gni_list *last = n->subs.prev;
    for (gni_list *e = n->subs.next; e != &n->subs; e = e->next) {
        gn_host_sub *s = GNI_CONTAINER_OF(e, gn_host_sub, link);
        if (!s->dead && (s->mask & (uint32_t)ev->type)) {
            s->cb(s->arg, ev);
        }
        if (e == last) {
            break;
        }
    }
    if (--n->sub_depth == 0) {
        subs_sweep(n);
    }
}

void gni_host_emit(gn_node *n, gn_host_event_type type, gn_channel *ch, const gn_peer_id *peer,
                   int status)
{
    if (gni_list_empty(&n->subs)) {
        return;
    }
    gn_host_event ev = {.type = type, .ch = ch, .peer = peer, .status = status};
    gn_host_publish(&n->host, &ev);
}

/* ------------------------------------------------------------------------
 * Application events, identify records
 */

void gn_host_emit_event(gn_host *h, const gn_node_event *ev)
{
    /* the node's own life cycle events (and messages) are not for components */
    if (!ev || ev->message || ev->type == GN_NODE_EV_NONE || ev->type == GN_NODE_EV_CLOSED ||
        ev->type == GN_NODE_EV_MESSAGE) {
        return;
    }
    gni_node_push_event(host_node(h), ev);
}

const char *gn_host_agent_version(gn_host *h)
{
    return host_node(h)->cfg.agent_version;
}

int gn_host_peer_set_identified(gn_host *h, const gn_peer_id *peer, const char *agent,
                                const gn_multiaddr *observed)
{
    if (!peer) {
        return GN_EINVAL;
    }
    char obs[GNI_PS_STR_MAX] = "";
    if (observed && gn_multiaddr_to_string(observed, obs, sizeof obs) < 0) {
        obs[0] = '\0';
    }
    return gni_peerstore_set_identify(host_node(h)->ps, peer, observed ? obs : NULL, agent);
}

/* ------------------------------------------------------------------------
 * The message service
 */

int gn_host_set_message_service(gn_host *h, const gn_host_msg_ops *ops, void *svc,
                                const char *protocol_id)
{
    gn_node *n = host_node(h);
    if (!ops) {
        if (!n->msg_ops || n->msg_svc != svc) {
            return GN_ENOTFOUND;
        }
        n->msg_ops = NULL;
        n->msg_svc = NULL;
        n->msg_blocked = false;
        return 0;
    }
    size_t len = protocol_id ? strlen(protocol_id) : 0;
    if (!ops->send || !ops->resume || len == 0 || len >= sizeof n->msg_proto) {
        return GN_EINVAL;
    }
    if (n->msg_ops) {
        return GN_EEXIST;
    }
    n->msg_ops = ops;
    n->msg_svc = svc;
    memcpy(n->msg_proto, protocol_id, len + 1);
    return 0;
}

gn_rcmgr *gn_host_rcmgr(gn_host *h)
{
    return h ? host_node(h)->rm : NULL;
}

gn_rcmgr_conn *gn_channel_rcmgr_conn(gn_channel *ch)
{
    /* ended by gni_channel_begin_close(): never hand it out from then on */
    return ch && ch->phase == PH_OPEN ? ch->rc : NULL;
}

size_t gn_host_max_message_len(gn_host *h)
{
    return atomic_load(&host_node(h)->max_msg);
}

int gn_host_msg_deliver(gn_host *h, gn_channel *ch, gn_rcbuf *msg)
{
    gn_node *n = host_node(h);
    if (!ch || !msg) {
        return GN_EINVAL;
    }
    gn_node_event ev;
    gni_node_event_init(&ev, GN_NODE_EV_MESSAGE);
    ev.channel_id = ch->info.id;
    ev.peer = ch->info.remote_peer;
    memcpy(ev.protocol, n->msg_proto, sizeof ev.protocol);
    ev.message = msg;
    if (!gni_node_try_message(n, &ev)) {
        gni_node_msg_blocked(n);
        return GN_EAGAIN;
    }
    ch->messages_in++;
    ch->last_active = gn_loop_now(n->loop);
    return 0;
}

void gn_host_msg_done(gn_host *h, gn_channel *ch, uint64_t req_id, int status)
{
    gn_node *n = host_node(h);
    if (!ch) {
        return;
    }
    if (status == 0) {
        ch->messages_out++;
        ch->last_active = gn_loop_now(n->loop);
        gni_channel_mq_release(ch);
        return;
    }
    gni_channel_mq_release(ch);
    gn_node_event ev;
    gni_node_event_init(&ev, GN_NODE_EV_SEND_FAILED);
    ev.request_id = req_id;
    ev.status = status;
    ev.channel_id = ch->info.id;
    ev.peer = ch->info.remote_peer;
    gni_node_push_event(n, &ev);
}

/* ------------------------------------------------------------------------
 * Options: "component.key=value"
 */

const char *gn_host_option(gn_host *h, const char *component, const char *key, size_t idx)
{
    gn_node *n = host_node(h);
    if (!component || !key) {
        return NULL;
    }
    size_t clen = strlen(component), klen = strlen(key);
    for (size_t i = 0; i < n->cfg.n_options; i++) {
        const char *o = n->cfg.options[i];
        if (strncmp(o, component, clen) == 0 && o[clen] == '.' &&
            strncmp(o + clen + 1, key, klen) == 0 && o[clen + 1 + klen] == '=') {
            if (idx-- == 0) {
                return o + clen + 1 + klen + 1;
            }
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------------
 * Operations
 */

static gn_host_op *op_from(gn_op *h)
{
    return GNI_CONTAINER_OF(h, gn_host_op, op);
}

static void op_cancel(gn_op *h);

static gn_host_op *op_new(gn_node *n, op_kind kind)
{
    gn_host_op *op = gn_calloc(1, sizeof *op);
    if (!op) {
        return NULL;
    }
    op->op.cancel = op_cancel;
    op->n = n;
    op->kind = kind;
    gni_list_add_tail(&n->host_ops, &op->link);
    return op;
}

/* Frees an op that never started (an immediate error). */
static void op_discard(gn_host_op *op)
{
    gni_list_del(&op->link);
    gn_multiaddr_free(op->ma);
    gn_free(op);
}

static void op_settle(gn_host_op *op)
{
    if (op->pending > 0 || !op->delivered) {
        return;
    }
    gn_node *n = op->n;
    op_discard(op);
    if (n->closing) {
        gni_node_finish_close_later(n); /* never free components under their callbacks */
    }
}

/* Ends a stage: the op may be finished. */
static void op_stage_end(gn_host_op *op)
{
    op->pending--;
    op_settle(op);
}

/* Runs the user callback with an error (not for ROUTE_DIAL). */
static void op_deliver_error(gn_host_op *op, int status)
{
    op->delivered = true;
    switch (op->kind) {
    case OP_FIND:
        op->peer_cb(op->arg, status, &op->peer, NULL, 0);
        break;
    case OP_CONNECT:
        op->connect_cb(op->arg, status, NULL);
        break;
    case OP_STREAM:
        op->stream_cb(op->arg, status, NULL, NULL);
        break;
    case OP_ROUTE_DIAL:
        break;
    }
}

static void op_dial_stage(gn_host_op *op);

/* ---- FIND stage: the routers in order ---- */

/* The FIND stage ended: 0 (the peer store has dialable addresses now) or an
 * error. */
static void op_find_done(gn_host_op *op, int status)
{
    gn_node *n = op->n;
    if (status == 0 && op->kind == OP_ROUTE_DIAL && op->r &&
        !gni_node_has_untried_route(n, &op->peer, op->r)) {
        status = GN_ENOROUTE; /* only addresses the dial tried already */
    } else if (status == 0 && !gni_node_has_route(n, &op->peer)) {
        /* the routers' answer holds no address a transport handles (or it
         * could not be kept): asking again would loop */
        status = GN_ENOROUTE;
    }
    if (op->kind == OP_ROUTE_DIAL) {
        dial_req *r = op->r;
        op->r = NULL;
        if (status < 0) {
            if (r->ntried > 0 && r->last_err < 0) {
                status = r->last_err; /* every address failed: the last reason */
            }
            gni_dial_req_complete(n, r, status, NULL);
        } else {
            gn_multiaddr *ma = op->ma;
            op->ma = NULL;
            r->routed = true; /* never back to the routers for this request */
            gni_node_dial_run(n, ma, r);
        }
        op->delivered = true;
        op_stage_end(op);
        return;
    }
    if (op->canceled) {
        op_stage_end(op);
        return;
    }
    if (status < 0) {
        op_deliver_error(op, status);
        op_stage_end(op);
        return;
    }
    if (op->kind == OP_FIND) {
        gn_multiaddr *addrs[GNI_PS_MAX_ADDRS];
        int k = gn_host_peer_addrs(&n->host, &op->peer, addrs, NULL, GNI_ARRAY_LEN(addrs));
        op->delivered = true;
        op->peer_cb(op->arg, 0, &op->peer, addrs, (size_t)k);
        for (int i = 0; i < k; i++) {
            gn_multiaddr_free(addrs[i]);
        }
        op_stage_end(op);
        return;
    }
    /* CONNECT / STREAM: dial what the peer store has now */
    op->pending--;
    op_dial_stage(op);
}

/* Takes one router's answer: its addresses go into the peer store. Returns
 * 0 when it answered with addresses, else the status to remember. */
static int op_take_answer(gn_host_op *op, int status, gn_multiaddr *const *addrs, size_t naddrs)
{
    gn_node *n = op->n;
    if (status == 0 && naddrs > 0 && addrs) {
        int rc = gn_host_peer_add_addrs(&n->host, &op->peer, (const gn_multiaddr *const *)addrs,
                                        naddrs, HOST_ROUTER_ADDR_TTL, GN_ADDR_SRC_ROUTER);
        if (rc < 0) {
            char pid[GN_PEER_ID_MAX_STRLEN];
            gn_peer_id_to_string(&op->peer, pid, sizeof pid);
            GN_LOG(GN_LOG_INFO, HOST_LOG, "a router's address for %s not kept: %s", pid,
                   gn_err_name(rc));
        }
        if (op->kind == OP_ROUTE_DIAL && op->r && !gni_node_has_untried_route(n, &op->peer, op->r)) {
            return GN_ENOROUTE; /* nothing the dial has not tried: ask the next router */
        }
        return 0;
    }
    if (status == 0) {
        status = GN_ENOROUTE; /* an answer without addresses */
    }
    if (status != GN_ENOROUTE && status != GN_ENOTFOUND && status != GN_ECANCELED) {
        op->find_err = status;
    }
    return status;
}

static void op_find_next(gn_host_op *op);

static void op_found(void *arg, int status, const gn_peer_id *peer, gn_multiaddr *const *addrs,
                     size_t naddrs)
{
    gn_host_op *op = arg;
    (void)peer;
    op->query = NULL;
    int rc = op_take_answer(op, status, addrs, naddrs);
    if (op->in_call) {
        /* answered from inside find_peer: op_find_next goes on after it */
        op->sync_answer = true;
        op->sync_status = rc;
        return;
    }
    if (rc == 0) {
        op_find_done(op, 0);
    } else if (op->canceled || op->n->closing) {
        op_find_done(op, GN_ECANCELED);
    } else {
        op_find_next(op);
    }
}

static void op_find_next(gn_host_op *op)
{
    gn_node *n = op->n;
    while (op->router_idx < n->nrouters && !op->canceled && !n->closing) {
        gn_router *r = n->routers[op->router_idx++];
        gn_op *q = NULL;
        op->in_call = true;
        op->sync_answer = false;
        int rc = gn_router_find_peer(r, &op->peer, op_found, op, &q);
        op->in_call = false;
        if (rc < 0) {
            if (rc != GN_ENOROUTE && rc != GN_ENOTFOUND) {
                op->find_err = rc;
            }
            continue;
        }
        if (!op->sync_answer) {
            op->query = q; /* wait for op_found */
            return;
        }
        if (op->sync_status == 0) {
            op_find_done(op, 0);
            return;
        }
    }
    if (op->canceled || n->closing) {
        op_find_done(op, GN_ECANCELED);
        return;
    }
    op_find_done(op, op->find_err < 0 ? op->find_err : GN_ENOROUTE);
}

static void op_find_start(gn_host_op *op)
{
    op->router_idx = 0;
    op->find_err = 0;
    op->pending++;
    op_find_next(op);
}

/* ---- DIAL and OPEN stages ---- */

static void op_opened(gn_channel *ch, void *arg, int status, gn_stream *s)
{
    gn_host_op *op = arg;
    if (op->canceled) {
        if (status == 0 && s) {
            gn_stream_reset(s, NULL, NULL);
        }
    } else if (status < 0) {
        op_deliver_error(op, status);
    } else {
        op->delivered = true;
        op->stream_cb(op->arg, 0, ch, s);
    }
    op_stage_end(op);
}

static void op_dialed(gn_node *n, dial_req *r, int status, gn_channel *ch)
{
    gn_host_op *op = r->internal_arg;
    (void)n;
    op->r = NULL; /* freed by gni_dial_req_complete after this returns */
    if (op->canceled) {
        op_stage_end(op);
        return;
    }
    if (status < 0) {
        op_deliver_error(op, status);
        op_stage_end(op);
        return;
    }
    if (op->kind == OP_CONNECT) {
        op->delivered = true;
        op->connect_cb(op->arg, 0, ch);
        op_stage_end(op);
        return;
    }
    /* OP_STREAM: the stage goes on as the open */
    if (ch->limited && !op->limited_ok) {
        op_deliver_error(op, GN_ENOROUTE); /* only a limited channel to the peer */
        op_stage_end(op);
        return;
    }
    int rc = gni_channel_open_internal(ch, op->proto, op_opened, op);
    if (rc < 0) {
        op_deliver_error(op, rc);
        op_stage_end(op);
    }
}

static void op_dial_stage(gn_host_op *op)
{
    gn_node *n = op->n;
    op->pending++;
    if (n->closing) {
        op_deliver_error(op, GN_ECANCELED);
        op_stage_end(op);
        return;
    }
    bool bare = op->has_peer && gn_multiaddr_count(op->ma) == 1;
    bool routed = op->router_idx > 0;
    bool direct = (op->flags & GN_HOST_CONNECT_DIRECT) != 0;
    if (bare && ((op->flags & GN_HOST_CONNECT_NO_REUSE) ||
                 !gni_node_find_open_ex(n, &op->peer, direct)) &&
        !gni_node_has_route_ex(n, &op->peer, direct)) {
        if (routed || n->nrouters == 0) {
            op_deliver_error(op, GN_ENOROUTE); /* asked already, or nobody to ask */
            op_stage_end(op);
            return;
        }
        op->pending--;
        op_find_start(op); /* nothing known yet: ask the routers first */
        return;
    }
    dial_req *r = gn_calloc(1, sizeof *r);
    gn_multiaddr *ma = NULL;
    int rc = r ? gn_multiaddr_dup(op->ma, &ma) : GN_ENOMEM;
    if (rc < 0) {
        gn_free(r);
        op_deliver_error(op, rc);
        op_stage_end(op);
        return;
    }
    gni_list_init(&r->link);
    r->internal = op_dialed;
    r->internal_arg = op;
    r->routed = routed;
    r->flags = op->flags;
    op->r = r;
    gni_node_dial_run(n, ma, r);
}

static void op_start(gn_loop *loop, void *arg)
{
    gn_host_op *op = arg;
    (void)loop;
    op->pending--; /* the deferral */
    if (op->canceled) {
        op_settle(op);
        return;
    }
    if (op->kind == OP_FIND) {
        if (op->n->closing) {
            op_deliver_error(op, GN_ECANCELED);
            op_settle(op);
            return;
        }
        op_find_start(op);
        return;
    }
    op_dial_stage(op);
}

static int op_launch(gn_host_op *op, gn_op **out)
{
    op->pending++;
    int rc = gn_loop_defer(op->n->loop, op_start, op);
    if (rc < 0) {
        op_discard(op);
        if (out) {
            *out = NULL;
        }
        return rc;
    }
    if (out) {
        *out = &op->op;
    }
    return 0;
}

static void op_cancel_deliver(gn_loop *loop, void *arg)
{
    gn_host_op *op = arg;
    (void)loop;
    op_deliver_error(op, GN_ECANCELED);
    op_stage_end(op);
}

static void op_cancel(gn_op *h)
{
    gn_host_op *op = op_from(h);
    if (op->delivered || op->canceled || op->kind == OP_ROUTE_DIAL) {
        return;
    }
    gn_node *n = op->n;
    op->canceled = true;
    op->pending++;
    if (gn_loop_defer(n->loop, op_cancel_deliver, op) < 0) {
        /* no memory for the deferral: deliver now, the one exception to
         * "never from inside the call" */
        GN_LOG(GN_LOG_WARNING, HOST_LOG, "cancel: cannot defer, delivering at once");
        op_deliver_error(op, GN_ECANCELED);
        op->pending--;
    }
    op->delivered = true;
    if (op->query) {
        gn_op *q = op->query;
        op->query = NULL;
        gn_op_cancel(q); /* the router's callback follows with GN_ECANCELED */
    }
    if (op->r) {
        op->r->abandoned = true; /* no further addresses or routers for it */
        if (op->r->dns_op) {
            /* its resolution ends (cm_resolved follows with GN_ECANCELED) */
            gn_op *q = op->r->dns_op;
            op->r->dns_op = NULL;
            gn_op_cancel(q);
        }
    }
    if (op->r && op->r->ch) {
        /* a dial attempt that only this op waits for ends now */
        gn_channel *ch = op->r->ch;
        if (ch->phase < PH_OPEN && ch->waiters.next == &op->r->link &&
            op->r->link.next == &ch->waiters) {
            gni_channel_begin_close(ch, GN_ECANCELED);
        }
    }
}

/* Parses the multiaddr's /p2p/ part into op->peer. */
static int op_set_target(gn_host_op *op, const gn_multiaddr *addr)
{
    int rc = gni_ma_target_peer(addr, &op->peer);
    if (rc < 0) {
        return GN_EINVAL;
    }
    op->has_peer = rc == 1;
    return gn_multiaddr_dup(addr, &op->ma);
}

/* What the three calls share once their arguments are checked: a closing
 * node refuses; the op is created with @arg. */
static int op_create(gn_node *n, op_kind kind, void *arg, gn_host_op **opp)
{
    if (n->closing) {
        return GN_ECLOSED;
    }
    gn_host_op *op = op_new(n, kind);
    if (!op) {
        return GN_ENOMEM;
    }
    op->arg = arg;
    *opp = op;
    return 0;
}

int gn_host_connect(gn_host *h, const gn_multiaddr *addr, gn_host_connect_cb cb, void *arg,
                    gn_op **out)
{
    return gn_host_connect_ex(h, addr, 0, cb, arg, out);
}

int gn_host_connect_ex(gn_host *h, const gn_multiaddr *addr, uint32_t flags,
                       gn_host_connect_cb cb, void *arg, gn_op **out)
{
    const uint32_t all =
        GN_HOST_CONNECT_NO_REUSE | GN_HOST_CONNECT_DIRECT | GN_HOST_CONNECT_RESPONDER;
    gn_host_op *op = NULL;
    if (out) {
        *out = NULL;
    }
    if (!addr || !cb || (flags & ~all) ||
        ((flags & GN_HOST_CONNECT_RESPONDER) && !(flags & GN_HOST_CONNECT_NO_REUSE)) ||
        ((flags & GN_HOST_CONNECT_DIRECT) && gni_ma_is_relayed(addr))) {
        return GN_EINVAL;
    }
    int rc = op_create(host_node(h), OP_CONNECT, arg, &op);
    if (rc < 0) {
        return rc;
    }
    op->connect_cb = cb;
    op->flags = flags;
    rc = op_set_target(op, addr);
    if (rc == 0 && (flags & GN_HOST_CONNECT_RESPONDER) && !op->has_peer) {
        rc = GN_EINVAL; /* the responder must know whom it expects */
    }
    if (rc < 0) {
        op_discard(op);
        return rc;
    }
    return op_launch(op, out);
}

int gn_host_new_stream(gn_host *h, const gn_peer_id *peer, const char *protocol_id,
                       gn_host_stream_open_cb cb, void *arg, gn_op **out)
{
    return gn_host_new_stream_ex(h, peer, protocol_id, 0, cb, arg, out);
}

int gn_host_new_stream_ex(gn_host *h, const gn_peer_id *peer, const char *protocol_id,
                          uint32_t flags, gn_host_stream_open_cb cb, void *arg, gn_op **out)
{
    gn_node *n = host_node(h);
    size_t plen = protocol_id ? strlen(protocol_id) : 0;
    if (out) {
        *out = NULL;
    }
    if (!peer || !cb || plen == 0 || plen >= GN_PROTOCOL_ID_MAX ||
        gn_peer_id_equal(peer, &n->self) || (flags & ~GN_HOST_STREAM_LIMITED_OK)) {
        return GN_EINVAL;
    }
    char pid[GN_PEER_ID_MAX_STRLEN];
    if (gn_peer_id_to_string(peer, pid, sizeof pid) < 0) {
        return GN_EINVAL;
    }
    gn_host_op *op = NULL;
    int rc = op_create(n, OP_STREAM, arg, &op);
    if (rc < 0) {
        return rc;
    }
    op->stream_cb = cb;
    op->peer = *peer;
    op->has_peer = true;
    op->limited_ok = (flags & GN_HOST_STREAM_LIMITED_OK) != 0;
    op->flags = op->limited_ok ? 0 : GN_HOST_CONNECT_DIRECT;
    memcpy(op->proto, protocol_id, plen + 1);
    char text[GN_PEER_ID_MAX_STRLEN + 8];
    snprintf(text, sizeof text, "/p2p/%s", pid);
    rc = gn_multiaddr_parse(text, &op->ma);
    if (rc < 0) {
        op_discard(op);
        return rc == GN_ENOMEM ? rc : GN_EINVAL;
    }
    return op_launch(op, out);
}

int gn_host_find_peer(gn_host *h, const gn_peer_id *peer, gn_host_peer_cb cb, void *arg,
                      gn_op **out)
{
    gn_host_op *op = NULL;
    if (out) {
        *out = NULL;
    }
    if (!peer || !cb) {
        return GN_EINVAL;
    }
    int rc = op_create(host_node(h), OP_FIND, arg, &op);
    if (rc < 0) {
        return rc;
    }
    op->peer_cb = cb;
    op->peer = *peer;
    op->has_peer = true;
    return op_launch(op, out);
}

int gni_host_route_dial(gn_node *n, gn_multiaddr *ma, const gn_peer_id *peer, dial_req *r)
{
    if (n->nrouters == 0 || r->routed || r->abandoned) {
        return GN_ENOROUTE;
    }
    gn_host_op *op = op_new(n, OP_ROUTE_DIAL);
    if (!op) {
        return GN_ENOMEM;
    }
    op->peer = *peer;
    op->has_peer = true;
    op->ma = ma;
    op->r = r;
    op_find_start(op);
    return 0;
}

/* ------------------------------------------------------------------------
 * Hosted components
 */

static void proto_on_stream(void *arg, gn_channel *ch, gn_stream *s, const char *protocol_id)
{
    gn_protocol *p = arg;
    gn_protocol_stream_info info = {
        .protocol_id = protocol_id,
        .remote_peer = ch->info.remote_peer,
        .channel = ch,
    };
    p->ops->on_stream(p, s, &info);
}

static void disc_found(void *arg, const gn_peer_id *peer, gn_multiaddr *const *addrs,
                       size_t naddrs, gn_time ttl)
{
    gn_discovery *d = arg;
    gn_node *n = host_node(d->host);
    if (!peer || gn_peer_id_equal(peer, &n->self)) {
        return;
    }
    int rc = gn_host_peer_add_addrs(&n->host, peer, (const gn_multiaddr *const *)addrs, naddrs,
                                    ttl > 0 ? ttl : HOST_ROUTER_ADDR_TTL, GN_ADDR_SRC_DISCOVERY);
    if (rc < 0) {
        char pid[GN_PEER_ID_MAX_STRLEN];
        gn_peer_id_to_string(peer, pid, sizeof pid);
        GN_LOG(GN_LOG_INFO, HOST_LOG, "%s: addresses of %s not kept: %s", d->ops->name, pid,
               gn_err_name(rc));
    }
    gni_host_emit(n, GN_HOST_EV_PEER_FOUND, NULL, peer, 0);
}

/* Reports which component failed to start (or to be created). */
static int start_failed(gn_node *n, gn_layer_kind kind, const char *name, int rc)
{
    GN_LOG(GN_LOG_ERR, HOST_LOG, "%s %s did not start: %s", gn_layer_kind_name(kind), name,
           gn_err_name(rc));
    gn_node_event ev;
    gni_node_event_init(&ev, GN_NODE_EV_START_FAILED);
    ev.status = rc;
    ev.peer = n->self;
    snprintf(ev.protocol, sizeof ev.protocol, "%s %s", gn_layer_kind_name(kind), name);
    gni_node_push_event(n, &ev);
    return rc;
}

/* Creates the instances of one hosted kind; @list "" means none. */
#define MAKE_HOSTED(kind, KIND, arr, cnt, list)                                               \
    do {                                                                                     \
        size_t k_ = (list && !list[0]) ? 0 : gn_stack_count(n->stack, KIND);                 \
        n->arr = gn_calloc(k_ + 1, sizeof *n->arr);                                          \
        if (!n->arr) {                                                                       \
            return GN_ENOMEM;                                                                \
        }                                                                                    \
        for (size_t i_ = 0; i_ < k_; i_++) {                                                 \
            const gn_layer_ops *o_ = gn_stack_get(n->stack, KIND, i_);                       \
            int rc_ = gn_##kind##_new((const gn_##kind##_ops *)o_, &n->host, n->loop,        \
                                      &n->arr[n->cnt]);                                      \
            if (rc_ < 0) {                                                                   \
                return start_failed(n, KIND, o_->name, rc_);                                 \
            }                                                                                \
            n->cnt++;                                                                        \
        }                                                                                    \
    } while (0)

/* Whether the protocol component @o runs in @n: one with a node bit when
 * cfg.protocols has that bit (the built-in protocols the application asks
 * for); any other by the protocol_components list, or, without a list,
 * unless it is explicit-only. */
static bool protocol_wanted(const gn_node *n, const gn_layer_ops *o)
{
    const gn_protocol_ops *po = (const gn_protocol_ops *)o;
    if (po->node_bit) {
        return (n->cfg.protocols & po->node_bit) != 0;
    }
    if (!n->s_protocols) {
        return !(o->flags & GN_LAYER_F_EXPLICIT_ONLY);
    }
    if (!n->s_protocols[0]) {
        return false; /* "": none */
    }
    for (size_t i = 0; i < gn_stack_count(n->stack, GN_LAYER_PROTOCOL); i++) {
        if (gn_stack_get(n->stack, GN_LAYER_PROTOCOL, i) == o) {
            return true;
        }
    }
    return false;
}

bool gni_host_protocol_selected(gn_node *n, const char *id)
{
    for (size_t i = 0; i < gn_registry_count(n->reg, GN_LAYER_PROTOCOL); i++) {
        const gn_layer_ops *o = gn_registry_get(n->reg, GN_LAYER_PROTOCOL, i);
        if (strcmp(o->name, id) == 0) {
            return protocol_wanted(n, o);
        }
    }
    return false;
}

static int make_protocols(gn_node *n)
{
    size_t k = gn_registry_count(n->reg, GN_LAYER_PROTOCOL);
    n->protos = gn_calloc(k + 1, sizeof *n->protos);
    if (!n->protos) {
        return GN_ENOMEM;
    }
    for (size_t i = 0; i < k; i++) {
        const gn_layer_ops *o = gn_registry_get(n->reg, GN_LAYER_PROTOCOL, i);
        if (!protocol_wanted(n, o)) {
            continue;
        }
        int rc = gn_protocol_new((const gn_protocol_ops *)o, &n->host, n->loop,
                                 &n->protos[n->nprotos]);
        if (rc < 0) {
            return start_failed(n, GN_LAYER_PROTOCOL, o->name, rc);
        }
        n->nprotos++;
    }
    return 0;
}

static int make_components(gn_node *n)
{
    int rc = make_protocols(n);
    if (rc < 0) {
        return rc;
    }
    MAKE_HOSTED(router, GN_LAYER_ROUTER, routers, nrouters, n->s_routers);
    MAKE_HOSTED(discovery, GN_LAYER_DISCOVERY, discs, ndiscs, n->s_discovery);
    MAKE_HOSTED(nat, GN_LAYER_NAT, nats, nnats, n->s_nat);
    return 0;
}

int gni_host_make_components(gn_node *n)
{
    int rc = make_components(n);
    if (rc < 0) {
        gni_host_free_components(n); /* a later retry starts from nothing */
    }
    return rc;
}

static void nat_maps_drop(gn_node *n);

void gni_host_free_components(gn_node *n)
{
    nat_maps_drop(n);
    for (size_t i = 0; n->protos && i < n->nprotos; i++) {
        gn_protocol_free(n->protos[i]);
    }
    for (size_t i = 0; n->routers && i < n->nrouters; i++) {
        gn_router_free(n->routers[i]);
    }
    for (size_t i = 0; n->discs && i < n->ndiscs; i++) {
        gn_discovery_free(n->discs[i]);
    }
    for (size_t i = 0; n->nats && i < n->nnats; i++) {
        gn_nat_free(n->nats[i]);
    }
    gn_free(n->protos);
    gn_free(n->routers);
    gn_free(n->discs);
    gn_free(n->nats);
    n->protos = NULL;
    n->routers = NULL;
    n->discs = NULL;
    n->nats = NULL;
    n->nprotos = n->nrouters = n->ndiscs = n->nnats = 0;
}

static int start_protocol(gn_node *n, gn_protocol *p)
{
    int rc = gni_node_add_handler(n, p->ops->name, proto_on_stream, p, true,
                                  (p->ops->flags & GN_LAYER_F_LIMITED_OK) != 0);
    if (rc == 0 && p->ops->start && (rc = p->ops->start(p)) < 0) {
        gni_node_add_handler(n, p->ops->name, NULL, NULL, true, false);
    }
    return rc;
}

/* Starts every component: NAT first (listen addresses get mapped), then
 * routers, protocols, discovery (which may dial at once). On a failure the
 * ones already started are stopped again. */
int gni_host_start_components(gn_node *n)
{
    int rc = 0;
    while (rc == 0 && n->nnats_started < n->nnats) {
        gn_nat *x = n->nats[n->nnats_started];
        if ((rc = gn_nat_start(x)) < 0) {
            start_failed(n, GN_LAYER_NAT, x->ops->name, rc);
        } else {
            n->nnats_started++;
        }
    }
    while (rc == 0 && n->nrouters_started < n->nrouters) {
        gn_router *x = n->routers[n->nrouters_started];
        if ((rc = gn_router_start(x)) < 0) {
            start_failed(n, GN_LAYER_ROUTER, x->ops->name, rc);
        } else {
            n->nrouters_started++;
        }
    }
    while (rc == 0 && n->nprotos_started < n->nprotos) {
        gn_protocol *x = n->protos[n->nprotos_started];
        if ((rc = start_protocol(n, x)) < 0) {
            start_failed(n, GN_LAYER_PROTOCOL, x->ops->name, rc);
        } else {
            n->nprotos_started++;
        }
    }
    while (rc == 0 && n->ndiscs_started < n->ndiscs) {
        gn_discovery *x = n->discs[n->ndiscs_started];
        if ((rc = gn_discovery_start(x, disc_found, x)) < 0) {
            start_failed(n, GN_LAYER_DISCOVERY, x->ops->name, rc);
        } else {
            n->ndiscs_started++;
        }
    }
    if (rc < 0) {
        gni_host_stop_components(n);
    }
    n->components_running = rc == 0;
    return rc;
}

typedef struct nat_map_ctx {
    gni_list link;                  /* n->nat_maps once mapped */
    gn_node *n;
    size_t idx;                     /* the next NAT component to ask */
    gn_nat *mapped_by;
    gn_multiaddr *internal;
} nat_map_ctx;

/* Forgets mappings without asking the gateway (after a stop, none are left). */
static void nat_maps_drop(gn_node *n)
{
    while (!gni_list_empty(&n->nat_maps)) {
        nat_map_ctx *c = GNI_CONTAINER_OF(n->nat_maps.next, nat_map_ctx, link);
        gni_list_del(&c->link);
        gn_multiaddr_free(c->internal);
        gn_free(c);
    }
}

void gni_host_stop_components(gn_node *n)
{
    n->components_running = false;
    /* in the reverse order of the start; each only if it started */
    while (n->ndiscs_started > 0) {
        gn_discovery_stop(n->discs[--n->ndiscs_started]);
    }
    while (n->nprotos_started > 0) {
        gn_protocol *p = n->protos[--n->nprotos_started];
        if (p->ops->stop) {
            p->ops->stop(p);
        }
        gni_node_add_handler(n, p->ops->name, NULL, NULL, true, false);
    }
    while (n->nrouters_started > 0) {
        gn_router_stop(n->routers[--n->nrouters_started]);
    }
    while (!gni_list_empty(&n->nat_maps)) {
        nat_map_ctx *c = GNI_CONTAINER_OF(n->nat_maps.next, nat_map_ctx, link);
        gni_list_del(&c->link);
        int rc = gn_nat_unmap(c->mapped_by, c->internal);
        if (rc < 0 && rc != GN_ENOTSUP) {
            GN_LOG(GN_LOG_INFO, HOST_LOG, "%s: unmap: %s", c->mapped_by->ops->name,
                   gn_err_name(rc));
        }
        gn_multiaddr_free(c->internal);
        gn_free(c);
    }
    while (n->nnats_started > 0) {
        gn_nat_stop(n->nats[--n->nnats_started]);
    }
    /* what users still wait for ends now */
    for (gni_list *e = n->host_ops.next; e != &n->host_ops;) {
        gni_list *next = e->next;
        gn_host_op *op = GNI_CONTAINER_OF(e, gn_host_op, link);
        if (!op->delivered && !op->canceled) {
            op_cancel(&op->op);
        }
        e = next;
    }
}

bool gni_host_idle(gn_node *n)
{
    return gni_list_empty(&n->host_ops);
}

/* ---- NAT: map listen addresses that are not loopback ---- */

static void nat_try(nat_map_ctx *c);

static void nat_mapped(void *arg, int status, const gn_multiaddr *external)
{
    nat_map_ctx *c = arg;
    gn_node *n = c->n;
    if (status == 0 && external && !n->closing) {
        char text[GN_NODE_ADDR_MAX];
        if (gn_multiaddr_to_string(external, text, sizeof text) > 0) {
            GN_LOG(GN_LOG_INFO, HOST_LOG, "%s mapped to %s", c->mapped_by->ops->name, text);
        }
        gn_host_add_observed_addr(&n->host, external);
        n->nat_pending--;
        gni_list_add_tail(&n->nat_maps, &c->link); /* unmapped at close */
        return;
    }
    if (status == 0 && n->closing) {
        gn_nat_unmap(c->mapped_by, c->internal); /* mapped while closing: undo */
    }
    if (status < 0 && status != GN_ECANCELED && !n->closing) {
        nat_try(c);
        return;
    }
    n->nat_pending--;
    gn_multiaddr_free(c->internal);
    gn_free(c);
    if (n->closing) {
        gni_node_finish_close_later(n);
    }
}

static void nat_try(nat_map_ctx *c)
{
    gn_node *n = c->n;
    while (c->idx < n->nnats_started) {
        gn_nat *nat = n->nats[c->idx++];
        c->mapped_by = nat;
        if (gn_nat_map(nat, c->internal, HOST_NAT_LIFETIME, nat_mapped, c) == 0) {
            return;
        }
    }
    n->nat_pending--;
    gn_multiaddr_free(c->internal);
    gn_free(c);
}

static bool addr_is_mappable(const gn_multiaddr *ma)
{
    gn_ma_component c;
    if (gni_ma_is_relayed(ma) || gn_multiaddr_component(ma, 0, &c) < 0) {
        return false;
    }
    if (c.code == GN_MA_IP4) {
        return c.value_len == 4 && c.value[0] != 127;
    }
    if (c.code == GN_MA_IP6) {
        static const uint8_t loop6[16] = {[15] = 1};
        return c.value_len == 16 && memcmp(c.value, loop6, 16) != 0;
    }
    return false;
}

void gni_host_on_listen(gn_node *n, const gn_multiaddr *bound)
{
    gni_host_emit(n, GN_HOST_EV_LISTEN_ADDRS, NULL, NULL, 0);
    if (n->nnats_started == 0 || n->closing || !addr_is_mappable(bound)) {
        return;
    }
    nat_map_ctx *c = gn_calloc(1, sizeof *c);
    if (!c || gn_multiaddr_dup(bound, &c->internal) < 0) {
        gn_free(c);
        return;
    }
    gni_list_init(&c->link);
    c->n = n;
    n->nat_pending++;
    nat_try(c);
}

void gni_host_fini(gn_node *n)
{
    for (gni_list *e = n->subs.next; e != &n->subs;) {
        gni_list *next = e->next;
        gn_free(GNI_CONTAINER_OF(e, gn_host_sub, link));
        e = next;
    }
    gni_list_init(&n->subs);
    for (size_t i = 0; i < n->nobserved; i++) {
        gn_multiaddr_free(n->observed[i]);
    }
    n->nobserved = 0;
    for (size_t i = 0; i < n->nannounced; i++) {
        gn_multiaddr_free(n->announced[i]);
    }
    n->nannounced = 0;
}
