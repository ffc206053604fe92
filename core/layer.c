/*
 * Layer instances and dispatchers: core allocates each instance and its
 * zeroed state (ops->state_size), checks the ABI, and forwards calls to the
 * ops table, filling in defaults for optional entries.
 */
#include "golemnet/crypto.h"
#include "golemnet/discovery.h"
#include "golemnet/mux.h"
#include "golemnet/nat.h"
#include "golemnet/protocol.h"
#include "golemnet/router.h"
#include "golemnet/transport.h"

#include "gni.h"

#include <string.h>

const char *gn_layer_kind_name(gn_layer_kind kind)
{
    static const char *const names[GN_LAYER_KIND_COUNT] = {
        "transport", "crypto", "mux", "protocol", "router", "discovery", "nat",
    };
    if ((unsigned)kind >= GN_LAYER_KIND_COUNT) {
        return NULL;
    }
    return names[kind];
}

/* Allocates an instance of @inst_size bytes plus @state_size zeroed state. */
static void *instance_alloc(size_t inst_size, size_t state_size, void **state)
{
    void *inst = gn_calloc(1, inst_size);
    if (!inst) {
        return NULL;
    }
    *state = NULL;
    if (state_size > 0) {
        *state = gn_calloc(1, state_size);
        if (!*state) {
            gn_free(inst);
            return NULL;
        }
    }
    return inst;
}

/* ---- transport ---- */

void gn_transport_config_default(gn_transport_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->version = GN_TRANSPORT_CONFIG_VERSION;
    cfg->dial_timeout = 10 * GN_S;
    cfg->max_connections = 1024;
    cfg->nodelay = true;
    cfg->write_queue_max = 4u << 20;
    cfg->listen_backlog = 511;
}

int gn_transport_new(const gn_transport_ops *ops, gn_loop *loop, const gn_transport_config *cfg,
                     gn_transport **out)
{
    if (!ops || !loop || !out) {
        return GN_EINVAL;
    }
    if (ops->abi != GN_TRANSPORT_ABI) {
        return GN_EABI;
    }
    if (cfg && cfg->version != GN_TRANSPORT_CONFIG_VERSION) {
        return GN_EINVAL;
    }
    void *state;
    gn_transport *t = instance_alloc(sizeof *t, ops->state_size, &state);
    if (!t) {
        return GN_ENOMEM;
    }
    t->ops = ops;
    t->loop = loop;
    t->state = state;
    if (cfg) {
        t->config = *cfg;
    } else {
        gn_transport_config_default(&t->config);
    }
    if (ops->init) {
        int rc = ops->init(t);
        if (rc < 0) {
            gn_free(t->state);
            gn_free(t);
            return rc;
        }
    }
    *out = t;
    return 0;
}

void gn_transport_free(gn_transport *t)
{
    if (!t) {
        return;
    }
    if (t->ops->fini) {
        t->ops->fini(t);
    }
    gn_free(t->state);
    gn_free(t);
}

bool gn_transport_handles(const gn_transport *t, const gn_multiaddr *ma)
{
    return t->ops->handles(t, ma);
}

int gn_transport_listen(gn_transport *t, const gn_multiaddr *ma, gn_accept_cb cb, void *arg,
                        gn_listener **out)
{
    if (!ma || !cb || !out) {
        return GN_EINVAL;
    }
    if (!t->ops->handles(t, ma)) {
        return GN_ENOTRANSPORT;
    }
    return t->ops->listen(t, ma, cb, arg, out);
}

int gn_listener_addr(gn_listener *l, gn_multiaddr **out)
{
    return l->transport->ops->listener_addr(l, out);
}

void gn_listener_close(gn_listener *l, gn_listener_close_cb cb, void *arg)
{
    l->transport->ops->listener_close(l, cb, arg);
}

int gn_transport_dial(gn_transport *t, const gn_multiaddr *ma, gn_dial_cb cb, void *arg,
                      gn_op **op)
{
    gn_op *h = NULL;
    if (op) {
        *op = NULL;
    }
    if (!ma || !cb) {
        return GN_EINVAL;
    }
    if (!t->ops->handles(t, ma)) {
        return GN_ENOTRANSPORT;
    }
    int rc = t->ops->dial(t, ma, cb, arg, &h);
    if (rc == 0 && op) {
        *op = h;
    }
    return rc;
}

/* ---- crypto ---- */

void gn_crypto_config_default(gn_crypto_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->version = GN_CRYPTO_CONFIG_VERSION;
    cfg->handshake_timeout = 10 * GN_S;
    cfg->max_handshake_msg = 65535;
}

int gn_crypto_new(const gn_crypto_ops *ops, gn_loop *loop, const gn_identity *identity,
                  const gn_crypto_config *cfg, gn_crypto **out)
{
    if (!ops || !loop || !identity || !out) {
        return GN_EINVAL;
    }
    if (ops->abi != GN_CRYPTO_ABI) {
        return GN_EABI;
    }
    if (cfg && cfg->version != GN_CRYPTO_CONFIG_VERSION) {
        return GN_EINVAL;
    }
    void *state;
    gn_crypto *c = instance_alloc(sizeof *c, ops->state_size, &state);
    if (!c) {
        return GN_ENOMEM;
    }
    c->ops = ops;
    c->loop = loop;
    c->state = state;
    c->identity = identity;
    if (cfg) {
        c->config = *cfg;
    } else {
        gn_crypto_config_default(&c->config);
    }
    if (ops->init) {
        int rc = ops->init(c);
        if (rc < 0) {
            gn_free(c->state);
            gn_free(c);
            return rc;
        }
    }
    *out = c;
    return 0;
}

void gn_crypto_free(gn_crypto *c)
{
    if (!c) {
        return;
    }
    if (c->ops->fini) {
        c->ops->fini(c);
    }
    gn_free(c->state);
    gn_free(c);
}

int gn_crypto_secure(gn_crypto *c, gn_stream *below, const gn_secure_params *p, gn_secure_cb cb,
                     void *arg, gn_op **op)
{
    gn_op *h = NULL;
    if (op) {
        *op = NULL;
    }
    if (!below || !p || !cb) {
        return GN_EINVAL;
    }
    int rc = c->ops->secure(c, below, p, cb, arg, &h);
    if (rc == 0 && op) {
        *op = h;
    }
    return rc;
}

/* ---- mux ---- */

void gn_mux_config_default(gn_mux_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->version = GN_MUX_CONFIG_VERSION;
    cfg->max_inbound_streams = 1024;
    cfg->max_outbound_streams = 1024;
    cfg->max_pending_streams = 256;
    cfg->initial_window = 256u << 10;
    cfg->max_window = 16u << 20;
    cfg->max_frame_len = 1u << 20;
    cfg->stream_buffer_max = 1u << 20;
    cfg->session_buffer_max = 64u << 20;
    cfg->keepalive_interval = 30 * GN_S;
    cfg->stream_open_timeout = 30 * GN_S;
    cfg->session_send_max = GN_MUX_SESSION_SEND_MAX_DEFAULT;
    cfg->stream_idle_timeout = GN_MUX_STREAM_IDLE_TIMEOUT_DEFAULT;
}

int gn_mux_new(const gn_mux_ops *ops, gn_loop *loop, const gn_mux_config *cfg, gn_mux **out)
{
    if (!ops || !loop || !out) {
        return GN_EINVAL;
    }
    if (ops->abi != GN_MUX_ABI) {
        return GN_EABI;
    }
    if (cfg && cfg->version != GN_MUX_CONFIG_VERSION) {
        return GN_EINVAL;
    }
    void *state;
    gn_mux *m = instance_alloc(sizeof *m, ops->state_size, &state);
    if (!m) {
        return GN_ENOMEM;
    }
    m->ops = ops;
    m->loop = loop;
    m->state = state;
    if (cfg) {
        m->config = *cfg;
    } else {
        gn_mux_config_default(&m->config);
    }
    if (ops->init) {
        int rc = ops->init(m);
        if (rc < 0) {
            gn_free(m->state);
            gn_free(m);
            return rc;
        }
    }
    *out = m;
    return 0;
}

void gn_mux_free(gn_mux *m)
{
    if (!m) {
        return;
    }
    if (m->ops->fini) {
        m->ops->fini(m);
    }
    gn_free(m->state);
    gn_free(m);
}

int gn_mux_session_new(gn_mux *m, gn_stream *below, bool initiator, const gn_mux_session_cbs *cbs,
                       void *user_data, gn_mux_session **out)
{
    if (!below || !cbs || !cbs->on_stream || !out) {
        return GN_EINVAL;
    }
    return m->ops->session_new(m, below, initiator, cbs, user_data, out);
}

int gn_mux_open_stream(gn_mux_session *ms, gn_stream **out)
{
    if (!out) {
        return GN_EINVAL;
    }
    return ms->mux->ops->open_stream(ms, out);
}

int gn_mux_ping(gn_mux_session *ms, gn_mux_ping_cb cb, void *arg)
{
    if (!ms->mux->ops->ping) {
        return GN_ENOTSUP;
    }
    return ms->mux->ops->ping(ms, cb, arg);
}

int gn_mux_go_away(gn_mux_session *ms, uint32_t code)
{
    if (!ms->mux->ops->go_away) {
        return GN_ENOTSUP;
    }
    ms->mux->ops->go_away(ms, code);
    return 0;
}

int gn_mux_set_priority(gn_mux_session *ms, gn_stream *s, uint8_t prio)
{
    if (prio > 7) {
        return GN_ERANGE;
    }
    if (!ms->mux->ops->set_priority) {
        return GN_ENOTSUP;
    }
    return ms->mux->ops->set_priority(ms, s, prio);
}

void gn_mux_get_metrics(gn_mux_session *ms, gn_mux_metrics *m)
{
    memset(m, 0, sizeof *m);
    ms->mux->ops->metrics(ms, m);
}

int gn_mux_session_set_rcmgr(gn_mux_session *ms, gn_rcmgr *rm, gn_rcmgr_conn *conn)
{
    if (!ms->mux->ops->set_rcmgr) {
        return GN_ENOTSUP;
    }
    return ms->mux->ops->set_rcmgr(ms, rm, conn);
}

void gn_mux_session_close(gn_mux_session *ms, gn_mux_close_cb cb, void *arg)
{
    ms->mux->ops->session_close(ms, cb, arg);
}

/* ---- host-run kinds: protocol, router, discovery, nat ----
 *
 * The four share one instance layout (ops, loop, state, host) and one life
 * cycle: new (init), start, stop, free (fini). HOSTED_NEW expands the
 * constructor and destructor for one kind. */

#define HOSTED_NEW(kind, KIND_ABI)                                                            \
    int gn_##kind##_new(const gn_##kind##_ops *ops, gn_host *host, gn_loop *loop,           \
                        gn_##kind **out)                                                     \
    {                                                                                        \
        if (!ops || !host || !loop || !out) {                                                \
            return GN_EINVAL;                                                                \
        }                                                                                    \
        if (ops->abi != KIND_ABI) {                                                          \
            return GN_EABI;                                                                  \
        }                                                                                    \
        void *state;                                                                         \
        gn_##kind *x = instance_alloc(sizeof *x, ops->state_size, &state);                   \
        if (!x) {                                                                            \
            return GN_ENOMEM;                                                                \
        }                                                                                    \
        x->ops = ops;                                                                        \
        x->loop = loop;                                                                      \
        x->state = state;                                                                    \
        x->host = host;                                                                      \
        int rc = ops->init ? ops->init(x) : 0;                                               \
        if (rc < 0) {                                                                        \
            gn_free(x->state);                                                               \
            gn_free(x);                                                                      \
            return rc;                                                                       \
        }                                                                                    \
        *out = x;                                                                            \
        return 0;                                                                            \
    }                                                                                        \
    void gn_##kind##_free(gn_##kind *x)                                                      \
    {                                                                                        \
        if (!x) {                                                                            \
            return;                                                                          \
        }                                                                                    \
        if (x->ops->fini) {                                                                  \
            x->ops->fini(x);                                                                 \
        }                                                                                    \
        gn_free(x->state);                                                                   \
        gn_free(x);                                                                          \
    }

HOSTED_NEW(protocol, GN_PROTOCOL_ABI)
HOSTED_NEW(router, GN_ROUTER_ABI)
HOSTED_NEW(discovery, GN_DISCOVERY_ABI)
HOSTED_NEW(nat, GN_NAT_ABI)

int gn_router_start(gn_router *r)
{
    return r->ops->start ? r->ops->start(r) : 0;
}

void gn_router_stop(gn_router *r)
{
    if (r->ops->stop) {
        r->ops->stop(r);
    }
}

int gn_router_find_peer(gn_router *r, const gn_peer_id *peer, gn_router_peer_cb cb, void *arg,
                        gn_op **op)
{
    gn_op *h = NULL;
    int rc = (!peer || !cb) ? GN_EINVAL : r->ops->find_peer(r, peer, cb, arg, &h);
    if (op) {
        *op = rc == 0 ? h : NULL;
    }
    return rc;
}

int gn_discovery_start(gn_discovery *d, gn_discovery_peer_cb cb, void *arg)
{
    if (!cb) {
        return GN_EINVAL;
    }
    return d->ops->start(d, cb, arg);
}

void gn_discovery_stop(gn_discovery *d)
{
    d->ops->stop(d);
}

int gn_nat_start(gn_nat *n)
{
    return n->ops->start ? n->ops->start(n) : 0;
}

void gn_nat_stop(gn_nat *n)
{
    if (n->ops->stop) {
        n->ops->stop(n);
    }
}

int gn_nat_map(gn_nat *n, const gn_multiaddr *internal, gn_time lifetime, gn_nat_map_cb cb,
               void *arg)
{
    if (!internal || !cb) {
        return GN_EINVAL;
    }
    return n->ops->map(n, internal, lifetime, cb, arg);
}

int gn_nat_unmap(gn_nat *n, const gn_multiaddr *internal)
{
    return n->ops->unmap ? n->ops->unmap(n, internal) : GN_ENOTSUP;
}
