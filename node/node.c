/*
 * The node: configuration, the any-thread command path, events, listeners,
 * protocol handlers and teardown. See docs/node.md for the design and
 * node_int.h for the threading invariants.
 *
 * Every "any thread" entry point validates what it can where it is called
 * (parsing, sizes, state) and then posts a command to the loop: submitted
 * from another thread, deferred when already on the loop thread, so no
 * user callback ever runs from inside the call that asked for it.
 */
#include "gni_dnsaddr.h"
#include "node_int.h"

#include "golemnet/multiaddr.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#define NODE_LOG "node"

/* ------------------------------------------------------------------------
 * Configuration
 */

void gn_node_config_default(gn_node_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->version = GN_NODE_CONFIG_VERSION;
    gn_transport_config_default(&cfg->transport);
    gn_crypto_config_default(&cfg->crypto);
    gn_mux_config_default(&cfg->mux);
    cfg->max_connections = 1024;
    cfg->max_connections_per_peer = 4;
    cfg->upgrade_timeout = 20 * GN_S;
    cfg->idle_timeout = 0;
    cfg->max_message_len = 1u << 20;
    cfg->event_queue_capacity = 4096;
    cfg->command_queue_capacity = 4096;
    cfg->protocols = GN_NODE_PROTO_DEFAULT;
    cfg->agent_version = NULL;
    cfg->loop = NULL;
}

/* Most bytes a message payload may be configured to (256 MiB). */
#define NODE_MAX_MESSAGE_CAP (256u * 1024u * 1024u)

static int dup_opt(const char *s, char **out)
{
    *out = NULL;
    if (!s) {
        return 0;
    }
    *out = gn_strdup(s);
    return *out ? 0 : GN_ENOMEM;
}

/* Creates the component instances; loop thread. Idempotent. */
int gni_node_make_instances(gn_node *n)
{
    if (atomic_load(&n->instances_ready)) {
        return 0;
    }
    if (n->close_finished) {
        return GN_ECLOSED; /* a command that raced the close: no new instances */
    }
    int rc = 0;
    n->ntr = gn_stack_count(n->stack, GN_LAYER_TRANSPORT);
    n->nsec = gn_stack_count(n->stack, GN_LAYER_CRYPTO);
    n->nmux = gn_stack_count(n->stack, GN_LAYER_MUX);
    n->tr = gn_calloc(n->ntr + 1, sizeof *n->tr);
    n->sec = gn_calloc(n->nsec + 1, sizeof *n->sec);
    n->sec_ids = gn_calloc(n->nsec + 1, sizeof *n->sec_ids);
    n->mux = gn_calloc(n->nmux + 1, sizeof *n->mux);
    n->mux_ids = gn_calloc(n->nmux + 1, sizeof *n->mux_ids);
    if (!n->tr || !n->sec || !n->sec_ids || !n->mux || !n->mux_ids) {
        return GN_ENOMEM;
    }
    for (size_t i = 0; i < n->ntr && rc == 0; i++) {
        const gn_layer_ops *o = gn_stack_get(n->stack, GN_LAYER_TRANSPORT, i);
        rc = gn_transport_new((const gn_transport_ops *)o, n->loop, &n->cfg.transport, &n->tr[i]);
        if (rc == 0) {
            n->tr[i]->host = &n->host;
        }
    }
    for (size_t i = 0; i < n->nsec && rc == 0; i++) {
        const gn_layer_ops *o = gn_stack_get(n->stack, GN_LAYER_CRYPTO, i);
        n->sec_ids[i] = o->name;
        rc = gn_crypto_new((const gn_crypto_ops *)o, n->loop, n->id, &n->cfg.crypto, &n->sec[i]);
    }
    for (size_t i = 0; i < n->nmux && rc == 0; i++) {
        const gn_layer_ops *o = gn_stack_get(n->stack, GN_LAYER_MUX, i);
        n->mux_ids[i] = o->name;
        rc = gn_mux_new((const gn_mux_ops *)o, n->loop, &n->cfg.mux, &n->mux[i]);
    }
    if (rc == 0) {
        rc = gni_host_make_components(n);
    }
    if (rc == 0 && !n->resolver) {
        rc = gni_node_make_resolver(n);
    }
    if (rc < 0) {
        GN_LOG(GN_LOG_ERR, NODE_LOG, "creating the stack's components: %s", gn_err_name(rc));
        return rc;
    }
    atomic_store(&n->instances_ready, true);
    return 0;
}

static void node_free_instances(gn_node *n)
{
    gni_host_free_components(n);
    /* made with the instances (gni_node_make_resolver); a close freed it
     * already, a node freed without starting or closing has it still */
    gn_resolver_free(n->resolver);
    n->resolver = NULL;
    for (size_t i = 0; n->tr && i < n->ntr; i++) {
        gn_transport_free(n->tr[i]);
    }
    for (size_t i = 0; n->sec && i < n->nsec; i++) {
        gn_crypto_free(n->sec[i]);
    }
    for (size_t i = 0; n->mux && i < n->nmux; i++) {
        gn_mux_free(n->mux[i]);
    }
    gn_free(n->tr);
    gn_free(n->sec);
    gn_free(n->sec_ids);
    gn_free(n->mux);
    gn_free(n->mux_ids);
    n->tr = NULL;
    n->sec = NULL;
    n->sec_ids = NULL;
    n->mux = NULL;
    n->mux_ids = NULL;
    n->ntr = n->nsec = n->nmux = 0;
    atomic_store(&n->instances_ready, false);
}

static void node_free_memory(gn_node *n)
{
    if (n->evq) {
        gn_node_event ev;
        while (gn_evq_pop(n->evq, &ev, 0) == 0) {
            gn_rcbuf_rele(ev.message);
        }
        gn_evq_free(n->evq);
    }
    gni_list *lists[2] = {&n->overflow, &n->agg};
    for (size_t i = 0; i < 2; i++) {
        while (!gni_list_empty(lists[i])) {
            ovf_ev *o = GNI_CONTAINER_OF(lists[i]->next, ovf_ev, link);
            gni_list_del(&o->link);
            gn_rcbuf_rele(o->ev.message);
            gn_free(o);
        }
    }
    gni_pmap_fini(n);
    uv_mutex_destroy(&n->pmap_mtx);
    gni_peerstore_free(n->ps);
    gn_rcmgr_free(n->rm);
    gn_free(n->protected_peers);
    gn_stack_free(n->stack);
    gn_registry_free(n->own_registry);
    gn_identity_free(n->own_identity);
    gn_free(n->s_transports);
    gn_free(n->s_security);
    gn_free(n->s_muxers);
    gn_free(n->s_agent);
    gn_free(n->s_routers);
    gn_free(n->s_discovery);
    gn_free(n->s_nat);
    gn_free(n->s_protocols);
    if (n->s_options) {
        for (size_t i = 0; i < n->cfg.n_options; i++) {
            gn_free(n->s_options[i]);
        }
        gn_free(n->s_options);
    }
    gni_host_fini(n);
    if (n->s_listen) {
        for (size_t i = 0; i < n->cfg.n_listen; i++) {
            gn_free(n->s_listen[i]);
        }
        gn_free(n->s_listen);
    }
    uv_mutex_destroy(&n->close_mtx);
    uv_cond_destroy(&n->close_cond);
    uv_mutex_destroy(&n->chan_mtx);
    gni_group_fini(n);
    gn_free(n);
}

static void node_close_cmd_run(gn_loop *loop, void *arg);

/* The connection limits of the resource manager follow max_connections:
 * every connection may hold a descriptor, inbound may use all of them. */
static void node_rcmgr_conn_limits(gn_rcmgr_limits *l, uint32_t max_conns)
{
    l->system.conns = max_conns;
    l->system.conns_in = max_conns;
    l->system.conns_out = max_conns;
    l->system.fd = max_conns;
}

static int node_rcmgr_new(gn_node *n)
{
    gn_rcmgr_limits l;
    gn_rcmgr_limits_default(&l);
    node_rcmgr_conn_limits(&l, n->max_conns);
    return gn_rcmgr_new(&l, &n->rm);
}

gn_rcmgr *gn_node_rcmgr(gn_node *n)
{
    return n ? n->rm : NULL;
}

int gn_node_new(const gn_node_config *cfg, gn_node **out)
{
    if (!cfg || !out || cfg->version != GN_NODE_CONFIG_VERSION) {
        return GN_EINVAL;
    }
    if (cfg->max_connections == 0 || cfg->max_connections_per_peer == 0 ||
        cfg->event_queue_capacity == 0 || cfg->command_queue_capacity == 0 ||
        cfg->max_message_len == 0 || cfg->max_message_len > NODE_MAX_MESSAGE_CAP ||
        (cfg->n_listen > 0 && !cfg->listen) || (cfg->n_options > 0 && !cfg->options)) {
        return GN_EINVAL;
    }
    for (size_t i = 0; i < cfg->n_listen; i++) {
        if (!cfg->listen[i]) {
            return GN_EINVAL;
        }
    }
    for (size_t i = 0; i < cfg->n_options; i++) {
        const char *o = cfg->options[i];
        const char *dot = o ? strchr(o, '.') : NULL;
        if (!dot || dot == o || !strchr(dot, '=') || strchr(dot, '=') == dot + 1) {
            GN_LOG(GN_LOG_ERR, NODE_LOG, "option \"%s\": expected component.key=value",
                   o ? o : "(null)");
            return GN_EINVAL;
        }
    }
    gn_node *n = gn_calloc(1, sizeof *n);
    if (!n) {
        return GN_ENOMEM;
    }
    uv_mutex_init(&n->close_mtx);
    uv_cond_init(&n->close_cond);
    uv_mutex_init(&n->chan_mtx);
    gni_group_init(n);
    uv_mutex_init(&n->pmap_mtx);
    n->close_cmd.fn = node_close_cmd_run;
    n->close_cmd.arg = n;
    gni_list_init(&n->listeners);
    gni_list_init(&n->channels);
    gni_list_init(&n->overflow);
    gni_list_init(&n->agg);
    gni_list_init(&n->subs);
    gni_list_init(&n->host_ops);
    gni_list_init(&n->nat_maps);
    n->host.node = n;
    n->cfg = *cfg;
    n->cfg.loop = NULL;
    atomic_init(&n->state, NODE_NEW);
    atomic_init(&n->next_req, 1);
    atomic_init(&n->need_drain, false);
    atomic_init(&n->drain_posted, false);
    atomic_init(&n->instances_ready, false);
    n->max_conns = cfg->max_connections;
    n->max_per_peer = cfg->max_connections_per_peer;
    n->idle_timeout = cfg->idle_timeout;
    n->conn_high = 896;
    n->conn_low = 768;
    n->conn_grace = 20 * GN_S;
    n->first_byte_timeout = 5 * GN_S;
    atomic_init(&n->max_msg, cfg->max_message_len);
    n->next_channel = 1;

    int rc = node_rcmgr_new(n);
    if (rc < 0) {
        goto out;
    }
    if (dup_opt(cfg->transports, &n->s_transports) < 0 ||
        dup_opt(cfg->security, &n->s_security) < 0 || dup_opt(cfg->muxers, &n->s_muxers) < 0 ||
        dup_opt(cfg->routers, &n->s_routers) < 0 || dup_opt(cfg->discovery, &n->s_discovery) < 0 ||
        dup_opt(cfg->nat, &n->s_nat) < 0 ||
        dup_opt(cfg->protocol_components, &n->s_protocols) < 0) {
        rc = GN_ENOMEM;
        goto out;
    }
    n->cfg.routers = n->s_routers;
    n->cfg.discovery = n->s_discovery;
    n->cfg.nat = n->s_nat;
    n->cfg.protocol_components = n->s_protocols;
    if (cfg->n_options > 0) {
        n->s_options = gn_calloc(cfg->n_options, sizeof(char *));
        if (!n->s_options) {
            rc = GN_ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < cfg->n_options; i++) {
            if (!(n->s_options[i] = gn_strdup(cfg->options[i]))) {
                rc = GN_ENOMEM;
                goto out;
            }
        }
    }
    n->cfg.options = (const char *const *)n->s_options;
    if (cfg->agent_version) {
        rc = dup_opt(cfg->agent_version, &n->s_agent);
    } else {
        char agent[64];
        snprintf(agent, sizeof agent, "golemnet/%s", gn_version());
        rc = dup_opt(agent, &n->s_agent);
    }
    if (rc < 0) {
        goto out;
    }
    n->cfg.transports = n->s_transports;
    n->cfg.security = n->s_security;
    n->cfg.muxers = n->s_muxers;
    n->cfg.agent_version = n->s_agent;
    if (cfg->n_listen > 0) {
        n->s_listen = gn_calloc(cfg->n_listen, sizeof(char *));
        if (!n->s_listen) {
            rc = GN_ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < cfg->n_listen; i++) {
            if (!(n->s_listen[i] = gn_strdup(cfg->listen[i]))) {
                rc = GN_ENOMEM;
                goto out;
            }
        }
    }
    n->cfg.listen = (const char *const *)n->s_listen;

    if (cfg->identity) {
        n->id = cfg->identity;
    } else {
        if ((rc = gn_identity_generate(&n->own_identity)) < 0) {
            goto out;
        }
        n->id = n->own_identity;
    }
    gn_identity_peer_id(n->id, &n->self);
    gn_peer_id_to_string(&n->self, n->self_str, sizeof n->self_str);

    if (cfg->registry) {
        n->reg = cfg->registry;
    } else {
        if ((rc = gn_registry_new(&n->own_registry)) < 0 ||
            (rc = gn_registry_add_builtins(n->own_registry)) < 0) {
            goto out;
        }
        n->reg = n->own_registry;
    }
    if ((rc = gn_stack_new(n->reg, &n->stack)) < 0) {
        goto out;
    }
    if ((n->s_transports && (rc = gn_stack_set(n->stack, GN_LAYER_TRANSPORT, n->s_transports)) < 0) ||
        (n->s_security && (rc = gn_stack_set(n->stack, GN_LAYER_CRYPTO, n->s_security)) < 0) ||
        (n->s_muxers && (rc = gn_stack_set(n->stack, GN_LAYER_MUX, n->s_muxers)) < 0)) {
        goto out;
    }
    static const gn_layer_kind hosted[] = {GN_LAYER_ROUTER, GN_LAYER_DISCOVERY, GN_LAYER_NAT,
                                           GN_LAYER_PROTOCOL};
    const char *lists[] = {n->s_routers, n->s_discovery, n->s_nat, n->s_protocols};
    for (size_t i = 0; i < GNI_ARRAY_LEN(hosted); i++) {
        if (lists[i] && lists[i][0] && (rc = gn_stack_set(n->stack, hosted[i], lists[i])) < 0) {
            GN_LOG(GN_LOG_ERR, NODE_LOG, "%s list \"%s\": %s", gn_layer_kind_name(hosted[i]),
                   lists[i], gn_strerror(rc));
            goto out;
        }
    }
    if (gn_stack_count(n->stack, GN_LAYER_TRANSPORT) == 0 ||
        gn_stack_count(n->stack, GN_LAYER_CRYPTO) == 0 ||
        gn_stack_count(n->stack, GN_LAYER_MUX) == 0) {
        GN_LOG(GN_LOG_ERR, NODE_LOG, "the stack needs a transport, a security and a muxer");
        rc = GN_ENOTFOUND;
        goto out;
    }
    if ((rc = gni_peerstore_new(&n->ps)) < 0) {
        goto out;
    }
    if ((rc = gn_evq_new(cfg->event_queue_capacity, sizeof(gn_node_event), &n->evq)) < 0) {
        goto out;
    }
    if (cfg->loop) {
        n->loop = cfg->loop;
    } else {
        gn_loop_config lc;
        gn_loop_config_default(&lc);
        lc.cmdq_capacity = cfg->command_queue_capacity;
        if ((rc = gn_loop_new(&lc, &n->loop)) < 0) {
            rc = rc == GN_ENOMEM ? rc : GN_EIO;
            goto out;
        }
        n->own_loop = true;
    }
    gn_timer_init(n->loop, &n->idle_timer);
    if (gn_loop_on_thread(n->loop) && (rc = gni_node_make_instances(n)) < 0) {
        node_free_instances(n);
        goto out;
    }
    *out = n;
    return 0;
out:
    if (n->own_loop) {
        gn_loop_free(n->loop);
    }
    node_free_memory(n);
    return rc;
}

void gn_node_peer_id(const gn_node *n, gn_peer_id *out)
{
    *out = n->self;
}

gn_loop *gn_node_loop(gn_node *n)
{
    return n->loop;
}

const gni_peerstore *gni_node_peerstore(gn_node *n)
{
    return n->ps;
}

/* ------------------------------------------------------------------------
 * Commands
 */

int gni_node_post(gn_node *n, gn_loop_fn fn, void *arg)
{
    int rc;
    if (gn_loop_on_thread(n->loop)) {
        rc = gn_loop_defer(n->loop, fn, arg);
    } else {
        rc = gn_loop_submit(n->loop, fn, arg);
    }
    if (rc == GN_EINVAL) {
        rc = GN_EINTERNAL;
    }
    return rc;
}

static uint64_t node_req_id(gn_node *n)
{
    return atomic_fetch_add(&n->next_req, 1);
}

static bool node_accepting(gn_node *n)
{
    int st = atomic_load(&n->state);
    return st == NODE_NEW || st == NODE_RUNNING;
}

typedef enum cmd_kind {
    CMD_START = 1,
    CMD_LISTEN,
    CMD_DIAL,
    CMD_UNICAST,
    CMD_BROADCAST,
    CMD_CONFIGURE,
    CMD_CH_SEND,
    CMD_MC_UNICAST,
    CMD_DRAIN,
    CMD_PROTECT
} cmd_kind;

typedef struct node_cmd {
    gn_node *n;
    cmd_kind kind;
    uint64_t req_id;
    gn_multiaddr *ma;
    gn_node_dial_cb cb;
    void *arg;
    gn_rcbuf *msg;
    gn_peer_id peer;
    bool has_peer;
    gn_channel *ch;
    gn_peer_id *peers;      /* multicast broadcast: the members */
    dial_req *dial;         /* CMD_DIAL: allocated by the caller */
    size_t npeers;
    bool to_all;
    bool reserved;          /* CMD_UNICAST: holds a slot of ch's queue */
    int opt;
    uint64_t value;
} node_cmd;

static void cmd_free(node_cmd *c)
{
    gn_multiaddr_free(c->ma);
    gn_rcbuf_rele(c->msg);
    if (c->ch) {
        gn_channel_rele(c->ch);
    }
    gn_free(c->peers);
    gn_free(c->dial);
    gn_free(c);
}

static void cmd_run(gn_loop *loop, void *arg);
static int node_start_thread(gn_node *n);

static node_cmd *cmd_new(gn_node *n, cmd_kind kind)
{
    node_cmd *c = gn_calloc(1, sizeof *c);
    if (c) {
        c->n = n;
        c->kind = kind;
    }
    return c;
}

/* Posts @c; on failure frees it and returns the error. */
static int cmd_post(node_cmd *c)
{
    int rc = gni_node_post(c->n, cmd_run, c);
    if (rc < 0) {
        cmd_free(c);
    }
    return rc;
}

/* ------------------------------------------------------------------------
 * Events
 */

void gni_node_event_init(gn_node_event *ev, gn_node_event_type type)
{
    memset(ev, 0, sizeof *ev);
    ev->type = type;
    ev->count = type == GN_NODE_EV_SEND_FAILED ? 1 : 0;
}

/* Events wait in the overflow list or as aggregates: new ones queue behind them. */
static bool node_backlog(const gn_node *n)
{
    return !gni_list_empty(&n->overflow) || !gni_list_empty(&n->agg);
}

static size_t node_overflow_max(const gn_node *n)
{
    return GNI_MAX((size_t)GNI_NODE_OVERFLOW_MIN, n->cfg.event_queue_capacity);
}

/* Pushes one event into the queue; closes the queue after the CLOSED event. */
static int node_evq_push(gn_node *n, const gn_node_event *ev)
{
    int rc = gn_evq_push(n->evq, ev);
    if (rc == 0 && ev->type == GN_NODE_EV_CLOSED) {
        gn_evq_close(n->evq);
    }
    return rc;
}

static void node_drain(gn_node *n);

static void node_drain_deferred(gn_loop *loop, void *arg)
{
    (void)loop;
    gn_node *n = arg;
    atomic_store(&n->drain_posted, false);
    node_drain(n);
}

/*
 * Something waits for room in the event queue. The consumer posts a drain
 * when it pops while need_drain is set; if it emptied the queue before we
 * set the flag, nobody would, so check for room after setting it.
 */
static void node_need_drain(gn_node *n)
{
    atomic_store(&n->need_drain, true);
    if (gn_evq_len(n->evq) < n->cfg.event_queue_capacity &&
        !atomic_exchange(&n->drain_posted, true)) {
        if (gn_loop_defer(n->loop, node_drain_deferred, n) < 0) {
            atomic_store(&n->drain_posted, false);
        }
    }
}

/*
 * The queue and the overflow list are full: a SEND_FAILED joins the
 * pending aggregate of its channel and status (one event carrying a count),
 * past GNI_NODE_AGG_MAX aggregates the one of its status alone (channel 0):
 * bounded by the number of error codes, never dropped.
 */
static void node_aggregate(gn_node *n, const gn_node_event *ev)
{
    uint64_t chid = n->nagg >= GNI_NODE_AGG_MAX ? 0 : ev->channel_id;
    uint64_t cnt = ev->count ? ev->count : 1;
    atomic_fetch_add(&n->st_aggregated, cnt);
    for (gni_list *e = n->agg.next; e != &n->agg; e = e->next) {
        ovf_ev *o = GNI_CONTAINER_OF(e, ovf_ev, link);
        if (o->ev.channel_id == chid && o->ev.status == ev->status) {
            o->ev.count += cnt;
            if (!gn_peer_id_equal(&o->ev.peer, &ev->peer)) {
                memset(&o->ev.peer, 0, sizeof o->ev.peer); /* several peers */
            }
            return;
        }
    }
    ovf_ev *o = gn_malloc(sizeof *o);
    if (!o) {
        atomic_fetch_add(&n->st_dropped, cnt);
        GN_LOG(GN_LOG_ERR, NODE_LOG, "out of memory: %" PRIu64 " send failures (%s) not reported",
               cnt, gn_err_name(ev->status));
        return;
    }
    o->ev = *ev;
    o->ev.count = cnt;
    o->ev.channel_id = chid;
    if (chid != ev->channel_id) {
        memset(&o->ev.peer, 0, sizeof o->ev.peer);
    }
    gni_list_add_tail(&n->agg, &o->link);
    n->nagg++;
    node_need_drain(n);
}

void gni_node_push_event(gn_node *n, const gn_node_event *ev)
{
    if (!node_backlog(n)) {
        int rc = node_evq_push(n, ev);
        if (rc == 0) {
            return;
        }
        if (rc == GN_ECLOSED) {
            gn_rcbuf_rele(ev->message);
            return;
        }
    }
    if (n->noverflow >= node_overflow_max(n)) {
        if (ev->type == GN_NODE_EV_SEND_FAILED) {
            node_aggregate(n, ev);
            return;
        }
        if (ev->type == GN_NODE_EV_IDENTIFY) {
            /* informational (the peer store keeps what identify learned) */
            atomic_fetch_add(&n->st_dropped, 1);
            GN_LOG(GN_LOG_WARNING, NODE_LOG, "event queue and overflow full: dropping event %d",
                   (int)ev->type);
            gn_rcbuf_rele(ev->message);
            return;
        }
        /* the rest stand for one request or one channel each: kept past the bound */
    }
    ovf_ev *o = gn_malloc(sizeof *o);
    if (!o) {
        atomic_fetch_add(&n->st_dropped, 1);
        GN_LOG(GN_LOG_ERR, NODE_LOG, "out of memory: dropping event %d", (int)ev->type);
        gn_rcbuf_rele(ev->message);
        return;
    }
    o->ev = *ev;
    gni_list_add_tail(&n->overflow, &o->link);
    n->noverflow++;
    atomic_fetch_add(&n->st_overflowed, 1);
    node_need_drain(n);
}

bool gni_node_try_message(gn_node *n, const gn_node_event *ev)
{
    if (node_backlog(n)) {
        return false;
    }
    int rc = node_evq_push(n, ev);
    if (rc == GN_ECLOSED) {
        gn_rcbuf_rele(ev->message);
        return true; /* nobody will read it: consumed */
    }
    return rc == 0;
}

void gni_node_msg_blocked(gn_node *n)
{
    n->msg_blocked = true;
    node_need_drain(n);
}

/*
 * Moves overflow events, then aggregates, into the queue (the CLOSED event,
 * always last, waits for the aggregates) and resumes the message service (loop).
 */
static void node_drain(gn_node *n)
{
    while (node_backlog(n)) {
        ovf_ev *o = NULL;
        bool from_agg = false;
        if (!gni_list_empty(&n->overflow)) {
            o = GNI_CONTAINER_OF(n->overflow.next, ovf_ev, link);
        }
        if (!o || (o->ev.type == GN_NODE_EV_CLOSED && !gni_list_empty(&n->agg))) {
            o = GNI_CONTAINER_OF(n->agg.next, ovf_ev, link);
            from_agg = true;
        }
        int rc = node_evq_push(n, &o->ev);
        if (rc == GN_EAGAIN) {
            break;
        }
        if (rc < 0) {
            gn_rcbuf_rele(o->ev.message);
        }
        gni_list_del(&o->link);
        if (from_agg) {
            n->nagg--;
        } else {
            n->noverflow--;
        }
        gn_free(o);
    }
    if (!node_backlog(n) && n->msg_blocked) {
        n->msg_blocked = false;
        if (n->msg_ops) {
            n->msg_ops->resume(n->msg_svc); /* may block again */
        }
    }
    atomic_store(&n->need_drain, node_backlog(n) || n->msg_blocked);
}

int gn_node_stats_get(gn_node *n, gn_node_stats *st)
{
    if (!n || !st) {
        return GN_EINVAL;
    }
    memset(st, 0, sizeof *st);
    st->events_overflowed = atomic_load(&n->st_overflowed);
    st->send_failed_aggregated = atomic_load(&n->st_aggregated);
    st->events_dropped = atomic_load(&n->st_dropped);
    st->writable_events = atomic_load(&n->st_writable);
    return 0;
}

int gn_node_next_event(gn_node *n, gn_node_event *ev, gn_time timeout)
{
    if (!n || !ev) {
        return GN_EINVAL;
    }
    int rc = gn_evq_pop(n->evq, ev, timeout);
    if (atomic_load(&n->need_drain) && !atomic_exchange(&n->drain_posted, true)) {
        /*
         * Closed: the events still waiting (the CLOSED event among them)
         * come through too. An own loop runs until gn_node_free() and runs
         * the commands pending at its stop; an application's loop may not
         * outlive the node, so there only its own thread drains.
         */
        if (atomic_load(&n->state) != NODE_CLOSED || n->own_loop) {
            node_cmd *c = cmd_new(n, CMD_DRAIN);
            if (!c || cmd_post(c) < 0) {
                atomic_store(&n->drain_posted, false);
            }
        } else {
            atomic_store(&n->drain_posted, false);
            if (gn_loop_on_thread(n->loop)) {
                node_drain(n);
            }
        }
    }
    return rc;
}

int gn_node_event_fd(const gn_node *n)
{
    return gn_evq_fd(n->evq);
}

/* ------------------------------------------------------------------------
 * Listeners
 */

static void listen_event(gn_node *n, uint64_t req, int status, const char *addr)
{
    gn_node_event ev;
    gni_node_event_init(&ev, status == 0 ? GN_NODE_EV_LISTENING : GN_NODE_EV_LISTEN_FAILED);
    ev.status = status;
    ev.request_id = req;
    ev.peer = n->self;
    snprintf(ev.addr, sizeof ev.addr, "%s", addr);
    gni_node_push_event(n, &ev);
}

static void node_listener_closed(gn_listener *l, void *arg)
{
    (void)l;
    node_listener *nl = arg;
    gn_node *n = nl->n;
    gn_multiaddr_free(nl->bound);
    gn_free(nl);
    n->nlisteners_closing--;
    gni_node_maybe_finish_close(n);
}

static void node_listener_close(node_listener *nl)
{
    gni_list_del(&nl->link);
    nl->n->nlisteners_closing++;
    gn_listener_close(nl->l, node_listener_closed, nl);
}

static void node_on_accept(void *arg, gn_listener *l, int status, gn_stream *conn)
{
    node_listener *nl = arg;
    gn_node *n = nl->n;
    if (status < 0) {
        GN_LOG(GN_LOG_WARNING, NODE_LOG, "listener %s failed: %s", nl->addr,
               gn_err_name(status));
        if (!n->closing) {
            node_listener_close(nl);
        }
        return;
    }
    gni_node_accept(n, l->transport, conn);
}

static gn_transport *node_pick_transport(gn_node *n, const gn_multiaddr *ma)
{
    for (size_t i = 0; i < n->ntr; i++) {
        if (gn_transport_handles(n->tr[i], ma)) {
            return n->tr[i];
        }
    }
    return NULL;
}

static void node_listen_run(gn_node *n, const gn_multiaddr *ma, uint64_t req)
{
    char text[GN_NODE_ADDR_MAX];
    if (gn_multiaddr_to_string(ma, text, sizeof text) < 0) {
        text[0] = '\0';
    }
    if (n->closing) {
        listen_event(n, req, GN_ECANCELED, text);
        return;
    }
    gn_transport *t = node_pick_transport(n, ma);
    if (!t) {
        listen_event(n, req, GN_ENOTRANSPORT, text);
        return;
    }
    node_listener *nl = gn_calloc(1, sizeof *nl);
    if (!nl) {
        listen_event(n, req, GN_ENOMEM, text);
        return;
    }
    nl->n = n;
    gni_list_init(&nl->link);
    int rc = gn_transport_listen(t, ma, node_on_accept, nl, &nl->l);
    if (rc == 0) {
        rc = gn_listener_addr(nl->l, &nl->bound);
        if (rc < 0) {
            gni_list_add_tail(&n->listeners, &nl->link);
            node_listener_close(nl);
        }
    }
    if (rc < 0) {
        if (!nl->l) {
            gn_free(nl);
        }
        listen_event(n, req, rc, text);
        return;
    }
    char bound[GN_NODE_ADDR_MAX];
    if (gn_multiaddr_to_string(nl->bound, bound, sizeof bound) < 0) {
        bound[0] = '\0';
    }
    snprintf(nl->addr, sizeof nl->addr, "%s/p2p/%s", bound, n->self_str);
    gni_list_add_tail(&n->listeners, &nl->link);
    GN_LOG(GN_LOG_INFO, NODE_LOG, "listening on %s", nl->addr);
    listen_event(n, req, 0, nl->addr);
    gni_host_on_listen(n, nl->bound);
}

void gni_node_listen_now(gn_node *n, const gn_multiaddr *ma)
{
    node_listen_run(n, ma, 0);
}

int gni_node_unlisten(gn_node *n, const gn_multiaddr *ma)
{
    for (gni_list *e = n->listeners.next; e != &n->listeners; e = e->next) {
        node_listener *nl = GNI_CONTAINER_OF(e, node_listener, link);
        if (nl->bound && gn_multiaddr_equal(nl->bound, ma)) {
            node_listener_close(nl);
            gni_host_emit(n, GN_HOST_EV_LISTEN_ADDRS, NULL, NULL, 0);
            return 0;
        }
    }
    return GN_ENOTFOUND;
}

size_t gni_node_listen_addrs(gn_node *n, const gn_multiaddr **out, size_t max)
{
    size_t k = 0;
    for (gni_list *e = n->listeners.next; e != &n->listeners && k < max; e = e->next) {
        out[k++] = GNI_CONTAINER_OF(e, node_listener, link)->bound;
    }
    return k;
}

/* ------------------------------------------------------------------------
 * Handlers
 */

const handler_ent *gni_node_find_handler(gn_node *n, const char *id)
{
    for (size_t i = 0; i < n->nhandlers; i++) {
        if (strcmp(n->handlers[i].id, id) == 0) {
            return &n->handlers[i];
        }
    }
    return NULL;
}

/* Every protocol the node answers is a handler: the application's, or a
 * protocol component's (registered when it starts). */
size_t gni_node_protocols(gn_node *n, const char **ids, size_t max)
{
    size_t k = 0;
    for (size_t i = 0; i < n->nhandlers && k < max; i++) {
        ids[k++] = n->handlers[i].id;
    }
    return k;
}

size_t gni_node_protocols_for(gn_node *n, const gn_channel *ch, const char **ids, size_t max)
{
    size_t k = 0;
    for (size_t i = 0; i < n->nhandlers && k < max; i++) {
        if (!ch->limited || n->handlers[i].limited_ok) {
            ids[k++] = n->handlers[i].id;
        }
    }
    return k;
}

/* Tells components (identify push) that the protocol list changed; not while
 * the components start or stop (nobody is connected to hear it then). */
static void handlers_changed(gn_node *n)
{
    if (n->components_running && !n->closing) {
        gni_host_emit(n, GN_HOST_EV_PROTOCOLS, NULL, NULL, 0);
    }
}

int gni_node_add_handler(gn_node *n, const char *protocol_id, gn_node_stream_cb cb, void *arg,
                         bool component, bool limited_ok)
{
    size_t len = protocol_id ? strlen(protocol_id) : 0;
    if (len == 0 || len >= GN_PROTOCOL_ID_MAX || strchr(protocol_id, '\n') ||
        strcmp(protocol_id, "na") == 0 || strcmp(protocol_id, "ls") == 0) {
        return GN_EINVAL;
    }
    for (size_t i = 0; i < n->nhandlers; i++) {
        if (strcmp(n->handlers[i].id, protocol_id) == 0) {
            if (cb) {
                return GN_EEXIST;
            }
            if (n->handlers[i].component != component) {
                return GN_ENOTFOUND; /* the other owner's */
            }
            n->handlers[i] = n->handlers[n->nhandlers - 1];
            n->nhandlers--;
            handlers_changed(n);
            return 0;
        }
    }
    if (!cb) {
        return GN_ENOTFOUND;
    }
    if (n->nhandlers == GNI_NODE_MAX_HANDLERS) {
        return GN_ELIMIT;
    }
    handler_ent *h = &n->handlers[n->nhandlers++];
    memcpy(h->id, protocol_id, len + 1);
    h->cb = cb;
    h->arg = arg;
    h->component = component;
    h->limited_ok = limited_ok || !component; /* the application's always run */
    handlers_changed(n);
    return 0;
}

int gn_node_set_handler(gn_node *n, const char *protocol_id, gn_node_stream_cb cb, void *arg)
{
    if (!n || !protocol_id) {
        return GN_EINVAL;
    }
    if (atomic_load(&n->state) != NODE_NEW && !gn_loop_on_thread(n->loop)) {
        return GN_EINVAL; /* loop thread, or before gn_node_start() */
    }
    if (cb && !n->components_running && gni_host_protocol_selected(n, protocol_id)) {
        return GN_EEXIST; /* a protocol component answers it once started */
    }
    return gni_node_add_handler(n, protocol_id, cb, arg, false, true);
}

/* ------------------------------------------------------------------------
 * Close
 */

static void node_signal_closed(gn_node *n)
{
    uv_mutex_lock(&n->close_mtx);
    n->closed_done = true;
    uv_cond_broadcast(&n->close_cond);
    uv_mutex_unlock(&n->close_mtx);
}

static void node_finish_close_deferred(gn_loop *loop, void *arg)
{
    gn_node *n = arg;
    (void)loop;
    n->finish_posted = false;
    gni_node_maybe_finish_close(n);
}

void gni_node_finish_close_later(gn_node *n)
{
    if (n->finish_posted || n->close_finished) {
        return;
    }
    if (gn_loop_defer(n->loop, node_finish_close_deferred, n) == 0) {
        n->finish_posted = true;
    } else {
        gni_node_maybe_finish_close(n); /* no memory: at once */
    }
}

void gni_node_maybe_finish_close(gn_node *n)
{
    if (!n->closing || n->close_finished || n->finish_posted || n->nlisteners_closing > 0 || n->nstray > 0 ||
        !gni_list_empty(&n->listeners) || !gni_list_empty(&n->channels) ||
        !gni_host_idle(n) || n->nat_pending > 0 || n->dht_pending > 0 || n->dns_pending > 0) {
        return;
    }
    n->close_finished = true;
    gn_timer_stop(&n->idle_timer);
    node_free_instances(n);
    GN_LOG(GN_LOG_INFO, NODE_LOG, "node %s closed", n->self_str);
    atomic_store(&n->state, NODE_CLOSED);
    if (n->close_cb) {
        n->close_cb(n, n->close_arg);
    }
    gn_node_event ev;
    gni_node_event_init(&ev, GN_NODE_EV_CLOSED);
    ev.peer = n->self;
    gni_node_push_event(n, &ev);
    node_signal_closed(n);
}

static void node_close_run(gn_node *n, gn_node_close_cb cb, void *arg)
{
    if (n->closing) {
        return;
    }
    n->closing = true;
    n->close_cb = cb;
    n->close_arg = arg;
    gn_timer_stop(&n->idle_timer);
    gni_host_stop_components(n);
    /* resolutions in flight complete their dials with GN_ECANCELED, later */
    gn_resolver_free(n->resolver);
    n->resolver = NULL;
    while (!gni_list_empty(&n->listeners)) {
        node_listener_close(GNI_CONTAINER_OF(n->listeners.next, node_listener, link));
    }
    /* begin_close may finish a channel synchronously only through deferred
     * calls, so walking with a saved next is safe */
    for (gni_list *e = n->channels.next; e != &n->channels;) {
        gni_list *next = e->next;
        gni_channel_begin_close(GNI_CONTAINER_OF(e, gn_channel, link), GN_ECANCELED);
        e = next;
    }
    gni_node_maybe_finish_close(n);
}

/*
 * The reserved close command (n->close_cmd): runs every close asked since
 * it last ran. Close requests never go through the bounded command ring
 * and never allocate, so a full ring or no memory cannot lose them.
 */
static void node_close_cmd_run(gn_loop *loop, void *arg)
{
    (void)loop;
    gn_node *n = arg;
    if (atomic_exchange(&n->ch_close_req, false)) {
        /* begin_close finishes a channel only through deferred calls */
        for (gni_list *e = n->channels.next; e != &n->channels;) {
            gni_list *next = e->next;
            gn_channel *ch = GNI_CONTAINER_OF(e, gn_channel, link);
            if (atomic_exchange(&ch->close_req, false)) {
                gni_channel_begin_close(ch, GN_ECLOSED);
            }
            e = next;
        }
    }
    if (atomic_load(&n->close_req) && !n->closing) {
        (void)gni_node_make_instances(n);
        node_close_run(n, n->req_close_cb, n->req_close_arg);
    }
}

void gn_node_close(gn_node *n, gn_node_close_cb cb, void *arg)
{
    if (!n) {
        return;
    }
    int st = atomic_load(&n->state);
    while (st == NODE_NEW || st == NODE_RUNNING) {
        if (atomic_compare_exchange_weak(&n->state, &st, NODE_CLOSING)) {
            break;
        }
    }
    if (st != NODE_NEW && st != NODE_RUNNING) {
        return; /* already closing or closed: idempotent */
    }
    /* only the caller that won the exchange gets here */
    n->req_close_cb = cb;
    n->req_close_arg = arg;
    atomic_store(&n->close_req, true);
    if (st == NODE_NEW && n->own_loop) {
        /* never started: run the loop so the close can complete */
        if (node_start_thread(n) < 0) {
            GN_LOG(GN_LOG_ERR, NODE_LOG, "close: cannot start the loop thread");
        }
    }
    int rc = gni_loop_submit_cmd(n->loop, &n->close_cmd);
    if (rc < 0) {
        GN_LOG(GN_LOG_ERR, NODE_LOG, "close: cannot reach the loop: %s", gn_err_name(rc));
    }
}

void gn_node_free(gn_node *n)
{
    if (!n) {
        return;
    }
    int st = atomic_load(&n->state);
    if (n->own_loop) {
        assert(!gn_loop_on_thread(n->loop) || st == NODE_NEW);
        if (st != NODE_NEW) {
            if (st == NODE_RUNNING) {
                gn_node_close(n, NULL, NULL);
            }
            uv_mutex_lock(&n->close_mtx);
            while (!n->closed_done) {
                uv_cond_wait(&n->close_cond, &n->close_mtx);
            }
            uv_mutex_unlock(&n->close_mtx);
        } else {
            node_free_instances(n);
        }
        gn_loop_stop(n->loop);
        gn_loop_free(n->loop);
    } else {
        if (st == NODE_NEW) {
            node_free_instances(n);
        } else if (!n->close_finished) {
            GN_LOG(GN_LOG_ERR, NODE_LOG, "gn_node_free before the close completed: leaking");
            return;
        }
    }
    node_free_memory(n);
}

/* ------------------------------------------------------------------------
 * Start, listen, dial, unicast, broadcast, configure
 */

static void node_start_run(gn_node *n)
{
    for (size_t i = 0; i < n->cfg.n_listen; i++) {
        gn_multiaddr *ma = NULL;
        int rc = gn_multiaddr_parse(n->cfg.listen[i], &ma);
        if (rc < 0) {
            listen_event(n, 0, rc, n->cfg.listen[i]);
            continue;
        }
        node_listen_run(n, ma, 0);
        gn_multiaddr_free(ma);
    }
}

/*
 * Starts the own loop's thread with SIGPIPE blocked: a write to a socket
 * the peer reset then fails with EPIPE instead of killing the process
 * (libuv writes with write(2); the signal is directed at the writing
 * thread, and the new thread inherits this mask).
 */
static int node_start_thread(gn_node *n)
{
#ifdef SIGPIPE
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &old);
#endif
    int rc = gn_loop_start_thread(n->loop);
#ifdef SIGPIPE
    pthread_sigmask(SIG_SETMASK, &old, NULL);
#endif
    return rc < 0 ? GN_EIO : 0;
}

int gn_node_start(gn_node *n)
{
    if (!n) {
        return GN_EINVAL;
    }
    int expect = NODE_NEW;
    if (!atomic_compare_exchange_strong(&n->state, &expect, NODE_RUNNING)) {
        return GN_ESTATE;
    }
    node_cmd *c = cmd_new(n, CMD_START);
    if (!c) {
        atomic_store(&n->state, NODE_NEW);
        return GN_ENOMEM;
    }
    int rc = cmd_post(c);
    if (rc == 0 && n->own_loop) {
        rc = node_start_thread(n);
    }
    if (rc < 0) {
        atomic_store(&n->state, NODE_NEW);
    }
    return rc;
}

int gn_node_listen(gn_node *n, const char *multiaddr, uint64_t *req_id)
{
    if (!n || !multiaddr) {
        return GN_EINVAL;
    }
    if (!node_accepting(n)) {
        return GN_ECLOSED;
    }
    gn_multiaddr *ma = NULL;
    int rc = gn_multiaddr_parse(multiaddr, &ma);
    if (rc < 0) {
        return rc == GN_ENOMEM ? rc : GN_EPARSE;
    }
    node_cmd *c = cmd_new(n, CMD_LISTEN);
    if (!c) {
        gn_multiaddr_free(ma);
        return GN_ENOMEM;
    }
    c->ma = ma;
    c->req_id = node_req_id(n);
    uint64_t id = c->req_id;
    rc = cmd_post(c);
    if (rc == 0 && req_id) {
        *req_id = id;
    }
    return rc;
}

/* Parses @s as a multiaddr, with its /p2p/ peer when present. */
static int node_parse_target(gn_node *n, const char *s, gn_multiaddr **ma, gn_peer_id *peer,
                             bool *has_peer)
{
    char p2p[GN_PEER_ID_MAX_STRLEN + 8];
    if (s[0] != '/') {
        /* a bare peer ID: the same as /p2p/<id> */
        gn_peer_id id;
        if (gn_peer_id_parse(s, strlen(s), &id) < 0) {
            return GN_EPARSE;
        }
        snprintf(p2p, sizeof p2p, "/p2p/%s", s);
        s = p2p;
    }
    int rc = gn_multiaddr_parse(s, ma);
    if (rc < 0) {
        return rc == GN_ENOMEM ? rc : GN_EPARSE;
    }
    *has_peer = false;
    rc = gni_ma_target_peer(*ma, peer);
    if (rc < 0) {
        gn_multiaddr_free(*ma);
        *ma = NULL;
        return GN_EPARSE;
    }
    *has_peer = rc == 1;
    if (atomic_load(&n->instances_ready)) {
        /* handles() is pure and the instance array is immutable while running */
        gn_multiaddr *bare = NULL;
        const gn_multiaddr *probe = *ma;
        if (*has_peer && gn_multiaddr_decapsulate_code(*ma, GN_MA_P2P, &bare) == 0) {
            probe = bare;
        }
        bool ok = *has_peer && !bare; /* a bare /p2p/<id>: a peer lookup */
        gn_multiaddr *subst = NULL;
        gn_ma_component c0;
        if (!ok && gn_resolver_needed(probe) && gn_multiaddr_component(probe, 0, &c0) == 0) {
            /* /dnsaddr: only its TXT records tell; /dns*: the transports
             * must handle the address it resolves to (any IP will do) */
            static const uint8_t any[16] = {0};
            ok = c0.code == GN_MA_DNSADDR;
            if (!ok && gni_dns_substitute(probe, any, c0.code == GN_MA_DNS6 ? 16 : 4, &subst) == 0) {
                probe = subst;
            }
        }
        for (size_t i = 0; !ok && i < n->ntr; i++) {
            ok = gn_transport_handles(n->tr[i], probe) || gn_transport_handles(n->tr[i], *ma);
        }
        gn_multiaddr_free(subst);
        gn_multiaddr_free(bare);
        if (!ok) {
            gn_multiaddr_free(*ma);
            *ma = NULL;
            return GN_ENOTRANSPORT;
        }
    }
    return 0;
}

static int node_dial_post(gn_node *n, const char *multiaddr, gn_node_dial_cb cb,
                          gn_node_dial_result_cb result_cb, void *arg, uint64_t *req_id)
{
    if (!n || !multiaddr) {
        return GN_EINVAL;
    }
    if (!node_accepting(n)) {
        return GN_ECLOSED;
    }
    gn_multiaddr *ma = NULL;
    gn_peer_id peer;
    bool has_peer;
    int rc = node_parse_target(n, multiaddr, &ma, &peer, &has_peer);
    if (rc < 0) {
        return rc;
    }
    node_cmd *c = cmd_new(n, CMD_DIAL);
    if (!c || !(c->dial = gn_calloc(1, sizeof *c->dial))) {
        gn_free(c);
        gn_multiaddr_free(ma);
        return GN_ENOMEM;
    }
    c->ma = ma;
    c->cb = cb;
    c->dial->result_cb = result_cb; /* the rest of the request is filled on the loop */
    c->arg = arg;
    c->req_id = node_req_id(n);
    uint64_t id = c->req_id;
    rc = cmd_post(c);
    if (rc == 0 && req_id) {
        *req_id = id;
    }
    return rc;
}

int gn_node_dial(gn_node *n, const char *multiaddr, gn_node_dial_cb cb, void *arg,
                 uint64_t *req_id)
{
    return node_dial_post(n, multiaddr, cb, NULL, arg, req_id);
}

int gn_node_dial_ex(gn_node *n, const char *multiaddr, gn_node_dial_result_cb cb, void *arg,
                    uint64_t *req_id)
{
    if (!cb) {
        return GN_EINVAL;
    }
    return node_dial_post(n, multiaddr, NULL, cb, arg, req_id);
}

/*
 * Backpressure for a unicast whose target has an open channel (any
 * thread): takes a slot in its queue, or GN_EAGAIN. The command holds the
 * channel and the slot (c->ch, c->reserved).
 */
static int node_unicast_reserve(gn_node *n, node_cmd *c)
{
    gn_channel *ch = NULL;
    if (c->has_peer) {
        ch = gni_pmap_find(n, &c->peer, NULL);
    } else if (c->ma) {
        char addr[GN_NODE_ADDR_MAX];
        if (gn_multiaddr_to_string(c->ma, addr, sizeof addr) >= 0) {
            ch = gni_pmap_find(n, NULL, addr);
        }
    }
    if (!ch) {
        return 0; /* no open channel: the loop dials, queues and reports */
    }
    int rc = gni_channel_mq_reserve(ch);
    if (rc < 0) {
        gn_channel_rele(ch);
        return rc;
    }
    c->ch = ch;
    c->reserved = true;
    return 0;
}

/* Gives back the slot node_unicast_reserve() took (caller's thread). */
static void node_unicast_unreserve(node_cmd *c)
{
    if (c->reserved) {
        atomic_fetch_sub(&c->ch->mq_count, 1);
        c->reserved = false;
    }
}

int gn_node_unicast(gn_node *n, const char *to, const uint8_t *msg, size_t len, uint64_t *req_id)
{
    if (!n || !to || (!msg && len > 0)) {
        return GN_EINVAL;
    }
    if (!node_accepting(n)) {
        return GN_ECLOSED;
    }
    if (len > atomic_load(&n->max_msg)) {
        return GN_ETOOBIG;
    }
    node_cmd *c = cmd_new(n, CMD_UNICAST);
    if (!c) {
        return GN_ENOMEM;
    }
    int rc;
    if (to[0] == '/') {
        rc = node_parse_target(n, to, &c->ma, &c->peer, &c->has_peer);
    } else {
        rc = gn_peer_id_parse(to, strlen(to), &c->peer);
        rc = rc == GN_ENOMEM ? rc : (rc < 0 ? GN_EPARSE : 0);
        c->has_peer = true;
    }
    if (rc == 0) {
        rc = node_unicast_reserve(n, c);
    }
    if (rc == 0 && !(c->msg = gn_rcbuf_new(msg, len))) {
        rc = GN_ENOMEM;
    }
    if (rc < 0) {
        node_unicast_unreserve(c);
        cmd_free(c);
        return rc;
    }
    c->req_id = node_req_id(n);
    uint64_t id = c->req_id;
    rc = gni_node_post(n, cmd_run, c);
    if (rc < 0) {
        node_unicast_unreserve(c);
        cmd_free(c);
    }
    if (rc == 0 && req_id) {
        *req_id = id;
    }
    return rc;
}

int gn_node_broadcast(gn_node *n, const uint8_t *msg, size_t len, uint64_t *req_id)
{
    if (!n || (!msg && len > 0)) {
        return GN_EINVAL;
    }
    if (!node_accepting(n)) {
        return GN_ECLOSED;
    }
    if (len > atomic_load(&n->max_msg)) {
        return GN_ETOOBIG;
    }
    node_cmd *c = cmd_new(n, CMD_BROADCAST);
    if (!c) {
        return GN_ENOMEM;
    }
    if (!(c->msg = gn_rcbuf_new(msg, len))) {
        cmd_free(c);
        return GN_ENOMEM;
    }
    c->to_all = true;
    c->req_id = node_req_id(n);
    uint64_t id = c->req_id;
    int rc = cmd_post(c);
    if (rc == 0 && req_id) {
        *req_id = id;
    }
    return rc;
}

int gn_node_configure(gn_node *n, gn_node_option opt, uint64_t value)
{
    if (!n) {
        return GN_EINVAL;
    }
    switch (opt) {
    case GN_NODE_OPT_MAX_CONNECTIONS:
    case GN_NODE_OPT_MAX_CONNECTIONS_PER_PEER:
        if (value == 0 || value > UINT32_MAX) {
            return GN_ERANGE;
        }
        break;
    case GN_NODE_OPT_IDLE_TIMEOUT_MS:
        if (value > UINT64_MAX / GN_MS) {
            return GN_ERANGE;
        }
        break;
    case GN_NODE_OPT_MAX_MESSAGE_LEN:
        if (value == 0 || value > NODE_MAX_MESSAGE_CAP) {
            return GN_ERANGE;
        }
        break;
    case GN_NODE_OPT_CONN_HIGH_WATER:
    case GN_NODE_OPT_CONN_LOW_WATER:
        if (value > UINT32_MAX) {
            return GN_ERANGE;
        }
        break;
    case GN_NODE_OPT_MAX_UPGRADING:
    case GN_NODE_OPT_MAX_CONNECTIONS_PER_IP:
    case GN_NODE_OPT_MAX_UPGRADING_PER_IP:
        if (value == 0 || value > UINT32_MAX) {
            return GN_ERANGE;
        }
        break;
    case GN_NODE_OPT_CONN_GRACE_MS:
    case GN_NODE_OPT_FIRST_BYTE_TIMEOUT_MS:
        if (value > UINT64_MAX / GN_MS) {
            return GN_ERANGE;
        }
        break;
    default:
        return GN_ENOTSUP;
    }
    if (!node_accepting(n)) {
        return GN_ECLOSED;
    }
    node_cmd *c = cmd_new(n, CMD_CONFIGURE);
    if (!c) {
        return GN_ENOMEM;
    }
    c->opt = (int)opt;
    c->value = value;
    return cmd_post(c);
}

int gn_node_protect_peer(gn_node *n, const gn_peer_id *peer, bool protect)
{
    if (!n || !peer || peer->len == 0) {
        return GN_EINVAL;
    }
    if (!node_accepting(n)) {
        return GN_ECLOSED;
    }
    node_cmd *c = cmd_new(n, CMD_PROTECT);
    if (!c) {
        return GN_ENOMEM;
    }
    c->peer = *peer;
    c->value = protect;
    return cmd_post(c);
}

/* A SEND_FAILED event (loop). */
static void send_failed(gn_node *n, uint64_t req, int status, const gn_channel *ch)
{
    gn_node_event ev;
    gni_node_event_init(&ev, GN_NODE_EV_SEND_FAILED);
    ev.request_id = req;
    ev.status = status;
    if (ch) {
        ev.channel_id = ch->info.id;
        ev.peer = ch->info.remote_peer;
    }
    gni_node_push_event(n, &ev);
}

/* Reserves a slot in @ch's queue and enqueues (loop). */
static void node_send_on(gn_node *n, gn_channel *ch, gn_rcbuf *msg, uint64_t req)
{
    if (atomic_fetch_add(&ch->mq_count, 1) >= GN_HOST_MSG_QUEUE_MAX) {
        atomic_fetch_sub(&ch->mq_count, 1);
        send_failed(n, req, GN_EAGAIN, ch);
        return;
    }
    int rc = gni_channel_enqueue(ch, msg, req);
    if (rc < 0) {
        send_failed(n, req, rc, ch);
    }
}

/* Internal dial waiter of a unicast to an address. */
typedef struct unicast_wait {
    gn_rcbuf *msg;
    uint64_t req;
} unicast_wait;

static void unicast_dialed(gn_node *n, dial_req *r, int status, gn_channel *ch)
{
    unicast_wait *w = r->internal_arg;
    if (status == 0) {
        node_send_on(n, ch, w->msg, w->req);
    } else {
        send_failed(n, w->req, status, NULL);
    }
    gn_rcbuf_rele(w->msg);
    gn_free(w);
}

/* A unicast that took a slot where it was called: true when sent or reported. */
static bool node_run_reserved(gn_node *n, node_cmd *c)
{
    if (!c->reserved) {
        return false;
    }
    c->reserved = false;
    if (c->ch->phase == PH_OPEN && !n->closing) {
        int rc = gni_channel_enqueue(c->ch, c->msg, c->req_id); /* releases on failure */
        if (rc < 0) {
            send_failed(n, c->req_id, rc, c->ch);
        }
        return true;
    }
    /* it closed since: the slot goes back, the message takes the usual path */
    gni_channel_mq_release(c->ch);
    return false;
}

static void node_unicast_run(gn_node *n, node_cmd *c)
{
    if (node_run_reserved(n, c)) {
        return;
    }
    if (n->closing) {
        send_failed(n, c->req_id, GN_ECANCELED, NULL);
        return;
    }
    gn_channel *ch = c->has_peer ? gni_node_find_open(n, &c->peer) : NULL;
    if (ch) {
        node_send_on(n, ch, c->msg, c->req_id);
        return;
    }
    if (!c->ma) {
        send_failed(n, c->req_id, GN_ENOTFOUND, NULL);
        return;
    }
    dial_req *r = gn_calloc(1, sizeof *r);
    unicast_wait *w = gn_calloc(1, sizeof *w);
    if (!r || !w) {
        gn_free(r);
        gn_free(w);
        send_failed(n, c->req_id, GN_ENOMEM, NULL);
        return;
    }
    w->msg = gn_rcbuf_hold(c->msg);
    w->req = c->req_id;
    r->internal = unicast_dialed;
    r->internal_arg = w;
    r->req_id = c->req_id;
    gni_list_init(&r->link);
    gn_multiaddr *ma = c->ma;
    c->ma = NULL;
    gni_node_dial_run(n, ma, r);
}

static void node_broadcast_run(gn_node *n, node_cmd *c)
{
    if (n->closing) {
        send_failed(n, c->req_id, GN_ECANCELED, NULL);
        return;
    }
    for (gni_list *e = n->channels.next; e != &n->channels; e = e->next) {
        gn_channel *ch = GNI_CONTAINER_OF(e, gn_channel, link);
        if (ch->phase != PH_OPEN) {
            continue;
        }
        bool member = c->to_all;
        for (size_t i = 0; !member && i < c->npeers; i++) {
            member = gn_peer_id_equal(&c->peers[i], &ch->info.remote_peer);
        }
        if (member) {
            node_send_on(n, ch, c->msg, c->req_id);
        }
    }
}

static void node_configure_run(gn_node *n, node_cmd *c)
{
    switch ((gn_node_option)c->opt) {
    case GN_NODE_OPT_MAX_CONNECTIONS: {
        n->max_conns = (uint32_t)c->value;
        gn_rcmgr_limits l;
        gn_rcmgr_get_limits(n->rm, &l);
        node_rcmgr_conn_limits(&l, n->max_conns);
        gn_rcmgr_set_limits(n->rm, &l);
        break;
    }
    case GN_NODE_OPT_MAX_CONNECTIONS_PER_PEER:
        n->max_per_peer = (uint32_t)c->value;
        break;
    case GN_NODE_OPT_IDLE_TIMEOUT_MS:
        n->idle_timeout = c->value * GN_MS;
        gni_node_idle_arm(n);
        break;
    case GN_NODE_OPT_MAX_MESSAGE_LEN:
        atomic_store(&n->max_msg, (size_t)c->value);
        break;
    default:
        gni_connmgr_configure(n, c->opt, c->value);
        break;
    }
}

static void cmd_run(gn_loop *loop, void *arg)
{
    (void)loop;
    node_cmd *c = arg;
    gn_node *n = c->n;
    int rc = gni_node_make_instances(n);
    switch (c->kind) {
    case CMD_START:
        if (rc == 0 && !n->closing && gni_host_start_components(n) == 0) {
            node_start_run(n);
            gni_node_idle_arm(n);
        }
        break;
    case CMD_LISTEN:
        if (rc < 0) {
            char text[GN_NODE_ADDR_MAX];
            gn_multiaddr_to_string(c->ma, text, sizeof text);
            listen_event(n, c->req_id, rc, text);
        } else {
            node_listen_run(n, c->ma, c->req_id);
        }
        break;
    case CMD_DIAL: {
        dial_req *r = c->dial;
        c->dial = NULL;
        gni_list_init(&r->link);
        r->cb = c->cb;
        r->arg = c->arg;
        r->req_id = c->req_id;
        r->emit_event = c->cb == NULL;
        if (rc < 0) {
            gni_dial_req_complete(n, r, rc, NULL);
            break;
        }
        gn_multiaddr *ma = c->ma;
        c->ma = NULL;
        gni_node_dial_run(n, ma, r);
        break;
    }
    case CMD_UNICAST:
        node_unicast_run(n, c);
        break;
    case CMD_BROADCAST:
        node_broadcast_run(n, c);
        break;
    case CMD_CONFIGURE:
        node_configure_run(n, c);
        break;
    case CMD_CH_SEND:
        rc = gni_channel_enqueue(c->ch, c->msg, 0);
        if (rc < 0) {
            send_failed(n, 0, rc, c->ch);
        }
        break;
    case CMD_MC_UNICAST: {
        if (node_run_reserved(n, c)) {
            break;
        }
        gn_channel *ch = gni_node_find_open(n, &c->peer);
        if (ch) {
            node_send_on(n, ch, c->msg, 0);
        } else {
            send_failed(n, 0, GN_ENOTFOUND, NULL);
        }
        break;
    }
    case CMD_DRAIN:
        atomic_store(&n->drain_posted, false);
        node_drain(n);
        break;
    case CMD_PROTECT:
        gni_connmgr_protect(n, &c->peer, c->value != 0);
        break;
    }
    cmd_free(c);
}

/* ------------------------------------------------------------------------
 * Channel entry points that go through the command path
 */

int gn_channel_send(gn_channel *ch, const uint8_t *msg, size_t len)
{
    if (!ch || (!msg && len > 0)) {
        return GN_EINVAL;
    }
    gn_node *n = ch->node;
    int st = atomic_load(&ch->pub_state);
    if (st == GN_CHANNEL_CLOSING || st == GN_CHANNEL_CLOSED || !node_accepting(n)) {
        return GN_ECLOSED;
    }
    if (st != GN_CHANNEL_OPEN) {
        return GN_ESTATE;
    }
    if (len > atomic_load(&n->max_msg)) {
        return GN_ETOOBIG;
    }
    if (gni_channel_mq_reserve(ch) < 0) {
        return GN_EAGAIN; /* GN_NODE_EV_WRITABLE follows at the low-water mark */
    }
    node_cmd *c = cmd_new(n, CMD_CH_SEND);
    if (!c || !(c->msg = gn_rcbuf_new(msg, len))) {
        atomic_fetch_sub(&ch->mq_count, 1);
        gn_free(c);
        return GN_ENOMEM;
    }
    c->ch = gn_channel_hold(ch);
    int rc = cmd_post(c);
    if (rc < 0) {
        atomic_fetch_sub(&ch->mq_count, 1);
    }
    return rc;
}

void gn_channel_close(gn_channel *ch)
{
    if (!ch) {
        return;
    }
    int st = atomic_load(&ch->pub_state);
    if (st == GN_CHANNEL_CLOSING || st == GN_CHANNEL_CLOSED) {
        return;
    }
    /* a flag and the node's reserved command: no ring slot, no allocation */
    gn_node *n = ch->node;
    atomic_store(&ch->close_req, true);
    atomic_store(&n->ch_close_req, true);
    int rc = gni_loop_submit_cmd(n->loop, &n->close_cmd);
    if (rc < 0) {
        /* the loop is stopping: the node's close has closed every channel */
        GN_LOG(GN_LOG_DEBUG, NODE_LOG, "channel close: %s", gn_err_name(rc));
    }
}

/* ------------------------------------------------------------------------
 * Multicast groups
 */

int gn_multicast_new(gn_node *n, const char *name, gn_multicast **out)
{
    if (!n || !name || !out || strlen(name) == 0 || strlen(name) >= 64) {
        return GN_EINVAL;
    }
    gn_multicast *mc = gn_calloc(1, sizeof *mc);
    if (!mc) {
        return GN_ENOMEM;
    }
    mc->n = n;
    uv_mutex_init(&mc->mtx);
    snprintf(mc->name, sizeof mc->name, "%s", name);
    *out = mc;
    return 0;
}

int gn_multicast_join(gn_multicast *mc, const gn_peer_id *peer)
{
    if (!mc || !peer || peer->len == 0) {
        return GN_EINVAL;
    }
    if (mc->group) {
        return GN_ENOTSUP; /* membership is the overlay's */
    }
    int rc = 0;
    uv_mutex_lock(&mc->mtx);
    for (size_t i = 0; i < mc->count; i++) {
        if (gn_peer_id_equal(&mc->members[i], peer)) {
            rc = GN_EEXIST;
            goto out;
        }
    }
    if (mc->count == mc->cap) {
        size_t cap = mc->cap ? mc->cap * 2 : 8;
        gn_peer_id *m = gn_realloc(mc->members, cap * sizeof *m);
        if (!m) {
            rc = GN_ENOMEM;
            goto out;
        }
        mc->members = m;
        mc->cap = cap;
    }
    mc->members[mc->count++] = *peer;
out:
    uv_mutex_unlock(&mc->mtx);
    return rc;
}

int gn_multicast_leave(gn_multicast *mc, const gn_peer_id *peer)
{
    if (!mc || !peer) {
        return GN_EINVAL;
    }
    if (mc->group) {
        return GN_ENOTSUP;
    }
    int rc = GN_ENOTFOUND;
    uv_mutex_lock(&mc->mtx);
    for (size_t i = 0; i < mc->count; i++) {
        if (gn_peer_id_equal(&mc->members[i], peer)) {
            mc->members[i] = mc->members[--mc->count];
            rc = 0;
            break;
        }
    }
    uv_mutex_unlock(&mc->mtx);
    return rc;
}

int gn_multicast_unicast(gn_multicast *mc, const gn_peer_id *peer, const uint8_t *msg,
                         size_t len)
{
    if (!mc || !peer || (!msg && len > 0)) {
        return GN_EINVAL;
    }
    gn_node *n = mc->group ? gni_multicast_node(mc) : mc->n;
    if (!n || !node_accepting(n)) { /* NULL: a group whose node was freed */
        return GN_ECLOSED;
    }
    if (len > atomic_load(&n->max_msg)) {
        return GN_ETOOBIG;
    }
    bool member = false;
    uv_mutex_lock(&mc->mtx);
    for (size_t i = 0; i < mc->count && !member; i++) {
        member = gn_peer_id_equal(&mc->members[i], peer);
    }
    uv_mutex_unlock(&mc->mtx);
    if (!member) {
        return GN_ENOTFOUND;
    }
    node_cmd *c = cmd_new(n, CMD_MC_UNICAST);
    if (!c) {
        return GN_ENOMEM;
    }
    c->peer = *peer;
    c->has_peer = true;
    int rc = node_unicast_reserve(n, c);
    if (rc == 0 && !(c->msg = gn_rcbuf_new(msg, len))) {
        rc = GN_ENOMEM;
    }
    if (rc == 0) {
        rc = gni_node_post(n, cmd_run, c);
    }
    if (rc < 0) {
        node_unicast_unreserve(c);
        cmd_free(c);
    }
    return rc;
}

int gn_multicast_broadcast(gn_multicast *mc, const uint8_t *msg, size_t len)
{
    if (!mc || (!msg && len > 0)) {
        return GN_EINVAL;
    }
    if (mc->group) {
        return gni_group_broadcast(mc, msg, len);
    }
    gn_node *n = mc->n;
    if (!node_accepting(n)) {
        return GN_ECLOSED;
    }
    if (len > atomic_load(&n->max_msg)) {
        return GN_ETOOBIG;
    }
    node_cmd *c = cmd_new(n, CMD_BROADCAST);
    if (!c || !(c->msg = gn_rcbuf_new(msg, len))) {
        gn_free(c);
        return GN_ENOMEM;
    }
    uv_mutex_lock(&mc->mtx);
    if (mc->count > 0) {
        c->peers = gn_malloc(mc->count * sizeof(gn_peer_id));
        if (c->peers) {
            memcpy(c->peers, mc->members, mc->count * sizeof(gn_peer_id));
            c->npeers = mc->count;
        }
    }
    bool oom = mc->count > 0 && !c->peers;
    uv_mutex_unlock(&mc->mtx);
    if (oom) {
        cmd_free(c);
        return GN_ENOMEM;
    }
    return cmd_post(c);
}

void gn_multicast_free(gn_multicast *mc)
{
    if (!mc) {
        return;
    }
    if (mc->group) {
        gni_group_free(mc); /* off the node's list, leave posted */
    }
    uv_mutex_destroy(&mc->mtx);
    gn_free(mc->mesh);
    gn_free(mc->members);
    gn_free(mc);
}

/* ---- channel lookup and the peer store (public accessors) ---- */

gn_channel *gn_node_channel_find(gn_node *n, uint64_t channel_id)
{
    if (!n || !gn_loop_on_thread(n->loop)) {
        return NULL;
    }
    for (gni_list *e = n->channels.next; e != &n->channels; e = e->next) {
        gn_channel *ch = GNI_CONTAINER_OF(e, gn_channel, link);
        if (ch->info.id == channel_id) {
            return ch;
        }
    }
    return NULL;
}

gn_channel *gn_node_channel_get(gn_node *n, uint64_t channel_id)
{
    if (!n) {
        return NULL;
    }
    gn_channel *found = NULL;
    /* the loop adds and removes channels under chan_mtx, and a channel in
     * the list still has the node's reference: holding it here is safe */
    uv_mutex_lock(&n->chan_mtx);
    for (gni_list *e = n->channels.next; e != &n->channels; e = e->next) {
        gn_channel *ch = GNI_CONTAINER_OF(e, gn_channel, link);
        if (ch->info.id == channel_id) {
            /* CLOSED is published before the CHANNEL_CLOSED event */
            if (atomic_load(&ch->pub_state) != GN_CHANNEL_CLOSED) {
                found = gn_channel_hold(ch);
            }
            break;
        }
    }
    uv_mutex_unlock(&n->chan_mtx);
    return found;
}

int gn_node_channel_ids(gn_node *n, uint64_t *ids, size_t max)
{
    if (!n || (!ids && max > 0)) {
        return GN_EINVAL;
    }
    size_t cnt = 0;
    uv_mutex_lock(&n->chan_mtx);
    for (gni_list *e = n->channels.next; e != &n->channels; e = e->next) {
        gn_channel *ch = GNI_CONTAINER_OF(e, gn_channel, link);
        if (atomic_load(&ch->pub_state) == GN_CHANNEL_CLOSED) {
            continue;
        }
        if (cnt < max) {
            ids[cnt] = ch->info.id;
        }
        cnt++;
    }
    uv_mutex_unlock(&n->chan_mtx);
    return cnt > INT32_MAX ? INT32_MAX : (int)cnt;
}

uint64_t gn_node_pending_messages(gn_node *n)
{
    if (!n) {
        return 0;
    }
    uint64_t sum = 0;
    uv_mutex_lock(&n->chan_mtx);
    for (gni_list *e = n->channels.next; e != &n->channels; e = e->next) {
        gn_channel *ch = GNI_CONTAINER_OF(e, gn_channel, link);
        sum += atomic_load(&ch->mq_count);
    }
    uv_mutex_unlock(&n->chan_mtx);
    return sum;
}

static const gni_peer_info *peer_lookup(gn_node *n, const gn_peer_id *peer)
{
    if (!n || !peer || !gn_loop_on_thread(n->loop)) {
        return NULL;
    }
    return gni_peerstore_get(n->ps, peer);
}

int gn_node_peer_info(gn_node *n, const gn_peer_id *peer, gn_peer_info *info)
{
    if (!info) {
        return GN_EINVAL;
    }
    const gni_peer_info *pi = peer_lookup(n, peer);
    if (!pi) {
        return GN_ENOTFOUND;
    }
    memset(info, 0, sizeof *info);
    info->peer = pi->id;
    info->identified = pi->identified;
    snprintf(info->agent_version, sizeof info->agent_version, "%s", gni_peer_agent(pi));
    snprintf(info->observed_addr, sizeof info->observed_addr, "%s", gni_peer_observed(pi));
    info->n_addrs = pi->naddrs;
    info->n_protocols = gni_peer_nprotocols(pi);
    return 0;
}

static int copy_str(const char *v, char *out, size_t out_len)
{
    size_t len = strlen(v);
    if (len >= out_len) {
        return GN_ENOSPC;
    }
    memcpy(out, v, len + 1);
    return (int)len;
}

int gn_node_peer_addr(gn_node *n, const gn_peer_id *peer, size_t idx, char *out,
                      size_t out_len)
{
    const gni_peer_info *pi = peer_lookup(n, peer);
    if (!pi) {
        return GN_ENOTFOUND;
    }
    return idx < pi->naddrs ? copy_str(pi->addrs[idx].text, out, out_len) : GN_ERANGE;
}

int gn_node_peer_protocol(gn_node *n, const gn_peer_id *peer, size_t idx, char *out,
                          size_t out_len)
{
    const gni_peer_info *pi = peer_lookup(n, peer);
    if (!pi) {
        return GN_ENOTFOUND;
    }
    return idx < gni_peer_nprotocols(pi) ? copy_str(gni_peer_protocol(pi, idx), out, out_len)
                                         : GN_ERANGE;
}
