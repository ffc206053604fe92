/*
 * The DHT calls: the host's (golemnet/router.h, loop thread), which ask the
 * first router that has the entry, and the node's (golemnet/node.h, any
 * thread), which copy their arguments, post them to the loop and answer
 * through one callback shape (gn_node_dht_result).
 *
 * The node knows no router by name: a router is a DHT when its ops table
 * has the entries (the Kademlia router, layers/routing/kad, is the built-in
 * one).
 */
#include "node_int.h"

#include "golemnet/router.h"

#include <string.h>

/* ---- the host's calls ---- */

/* Which DHT entry a call needs. */
typedef enum dht_entry { E_PUT = 0, E_GET, E_PROVIDE, E_FIND_PROVIDERS, E_CLOSEST } dht_entry;

static bool has_entry(const gn_router_ops *o, dht_entry e)
{
    switch (e) {
    case E_PUT:
        return o->put_value != NULL;
    case E_GET:
        return o->get_value != NULL;
    case E_PROVIDE:
        return o->provide != NULL;
    case E_FIND_PROVIDERS:
        return o->find_providers != NULL;
    case E_CLOSEST:
    default:
        return o->closest_peers != NULL;
    }
}

/* Checks the common arguments; returns the first started router with the
 * entry, or NULL with *@rc set. */
static gn_router *dht_begin(gn_host *h, gn_slice key, bool has_cb, dht_entry e, int *rc)
{
    if (!h || !has_cb || !key.base || key.len == 0) {
        *rc = GN_EINVAL;
        return NULL;
    }
    gn_node *n = h->node;
    if (n->closing) {
        *rc = GN_ECLOSED;
        return NULL;
    }
    for (size_t i = 0; i < n->nrouters_started; i++) {
        if (has_entry(n->routers[i]->ops, e)) {
            *rc = 0;
            return n->routers[i];
        }
    }
    *rc = GN_ENOTSUP;
    return NULL;
}

static void op_out(gn_op **op, int rc, gn_op *h)
{
    if (op) {
        *op = rc == 0 ? h : NULL;
    }
}

/*
 * Every accepted call is counted in n->dht_pending until its callback ran:
 * the node's close waits for them (a router answers pending queries with
 * GN_ECANCELED on a later turn, and the caller's state -- a discovery
 * component's, say -- must still be there then).
 */
typedef struct dht_call {
    gn_node *n;
    gn_router_done_cb done_cb;
    gn_router_value_cb value_cb;
    gn_router_peers_cb peers_cb;
    void *arg;
} dht_call;

static dht_call *call_new(gn_host *h, void *arg)
{
    dht_call *c = gn_calloc(1, sizeof *c);
    if (c) {
        c->n = h->node;
        c->arg = arg;
    }
    return c;
}

/* The call was accepted (@rc 0): count it; else free it. */
static int call_started(dht_call *c, int rc)
{
    if (rc == 0) {
        c->n->dht_pending++;
    } else {
        gn_free(c);
    }
    return rc;
}

static void call_end(dht_call *c)
{
    gn_node *n = c->n;
    gn_free(c);
    n->dht_pending--;
    gni_node_maybe_finish_close(n);
}

static void call_done(void *arg, int status)
{
    dht_call *c = arg;
    c->done_cb(c->arg, status);
    call_end(c);
}

static void call_value(void *arg, int status, gn_slice value)
{
    dht_call *c = arg;
    c->value_cb(c->arg, status, value);
    call_end(c);
}

static void call_peers(void *arg, int status, const gn_router_peer *peers, size_t n)
{
    dht_call *c = arg;
    c->peers_cb(c->arg, status, peers, n);
    call_end(c);
}

int gn_host_put_value(gn_host *h, gn_slice key, gn_slice value, gn_router_done_cb cb, void *arg,
                      gn_op **op)
{
    int rc;
    gn_op *q = NULL;
    gn_router *r = dht_begin(h, key, cb != NULL, E_PUT, &rc);
    dht_call *c = NULL;
    if (r && !value.base && value.len > 0) {
        rc = GN_EINVAL;
    } else if (r && !(c = call_new(h, arg))) {
        rc = GN_ENOMEM;
    } else if (r) {
        c->done_cb = cb;
        rc = call_started(c, r->ops->put_value(r, key, value, call_done, c, &q));
    }
    op_out(op, rc, q);
    return rc;
}

int gn_host_get_value(gn_host *h, gn_slice key, gn_router_value_cb cb, void *arg, gn_op **op)
{
    int rc;
    gn_op *q = NULL;
    gn_router *r = dht_begin(h, key, cb != NULL, E_GET, &rc);
    dht_call *c = NULL;
    if (r && !(c = call_new(h, arg))) {
        rc = GN_ENOMEM;
    } else if (r) {
        c->value_cb = cb;
        rc = call_started(c, r->ops->get_value(r, key, call_value, c, &q));
    }
    op_out(op, rc, q);
    return rc;
}

int gn_host_provide(gn_host *h, gn_slice key, gn_router_done_cb cb, void *arg, gn_op **op)
{
    int rc;
    gn_op *q = NULL;
    gn_router *r = dht_begin(h, key, cb != NULL, E_PROVIDE, &rc);
    dht_call *c = NULL;
    if (r && !(c = call_new(h, arg))) {
        rc = GN_ENOMEM;
    } else if (r) {
        c->done_cb = cb;
        rc = call_started(c, r->ops->provide(r, key, call_done, c, &q));
    }
    op_out(op, rc, q);
    return rc;
}

int gn_host_find_providers(gn_host *h, gn_slice key, size_t max, gn_router_peers_cb cb,
                           void *arg, gn_op **op)
{
    int rc;
    gn_op *q = NULL;
    gn_router *r = dht_begin(h, key, cb != NULL, E_FIND_PROVIDERS, &rc);
    dht_call *c = NULL;
    if (r && max == 0) {
        rc = GN_EINVAL;
    } else if (r && !(c = call_new(h, arg))) {
        rc = GN_ENOMEM;
    } else if (r) {
        c->peers_cb = cb;
        rc = call_started(c, r->ops->find_providers(r, key, max, call_peers, c, &q));
    }
    op_out(op, rc, q);
    return rc;
}

int gn_host_closest_peers(gn_host *h, gn_slice key, gn_router_peers_cb cb, void *arg,
                          gn_op **op)
{
    int rc;
    gn_op *q = NULL;
    gn_router *r = dht_begin(h, key, cb != NULL, E_CLOSEST, &rc);
    dht_call *c = NULL;
    if (r && !(c = call_new(h, arg))) {
        rc = GN_ENOMEM;
    } else if (r) {
        c->peers_cb = cb;
        rc = call_started(c, r->ops->closest_peers(r, key, call_peers, c, &q));
    }
    op_out(op, rc, q);
    return rc;
}

int gn_host_dht_stats(gn_host *h, gn_router_stats *out)
{
    if (!h || !out) {
        return GN_EINVAL;
    }
    gn_node *n = h->node;
    for (size_t i = 0; i < n->nrouters_started; i++) {
        gn_router *r = n->routers[i];
        if (r->ops->stats) {
            memset(out, 0, sizeof *out);
            return r->ops->stats(r, out);
        }
    }
    return GN_ENOTSUP;
}

int gn_node_dht_stats(gn_node *n, gn_router_stats *out)
{
    if (!n || !out) {
        return GN_EINVAL;
    }
    if (!n->components_running) {
        return GN_ESTATE;
    }
    return gn_host_dht_stats(&n->host, out);
}

int gn_host_set_validator(gn_host *h, const gn_router_validator *v)
{
    if (!h || !v || !v->ns || !v->ns[0] || !v->validate) {
        return GN_EINVAL;
    }
    gn_node *n = h->node;
    int rc = GN_ENOTSUP;
    /* every router instance, started or not: validators are configuration */
    for (size_t i = 0; i < n->nrouters; i++) {
        gn_router *r = n->routers[i];
        if (r->ops->set_validator) {
            int x = r->ops->set_validator(r, v);
            if (rc == GN_ENOTSUP || (rc == 0 && x < 0)) {
                rc = x;
            }
        }
    }
    return rc;
}

/* ---- the accept-everything validator ---- */

static int any_validate(void *arg, gn_slice key, gn_slice value)
{
    (void)arg, (void)key, (void)value;
    return 0;
}

static size_t any_select(void *arg, gn_slice key, const gn_slice *values, size_t n)
{
    (void)arg, (void)key;
    size_t best = 0;
    for (size_t i = 1; i < n; i++) {
        size_t m = GNI_MIN(values[i].len, values[best].len);
        int c = m ? memcmp(values[i].base, values[best].base, m) : 0;
        if (c > 0 || (c == 0 && values[i].len > values[best].len)) {
            best = i;
        }
    }
    return best;
}

void gn_router_validator_any(gn_router_validator *v, const char *ns)
{
    if (v) {
        v->ns = ns;
        v->validate = any_validate;
        v->select = any_select;
        v->arg = NULL;
    }
}

/* ---- the node's calls: any thread ---- */

typedef enum dht_kind {
    DHT_FIND_PEER = 0,
    DHT_GET,
    DHT_PUT,
    DHT_PROVIDE,
    DHT_FIND_PROVIDERS,
    DHT_CLOSEST,
    DHT_VALIDATOR
} dht_kind;

typedef struct dht_req {
    gn_node *n;
    dht_kind kind;
    gn_node_dht_cb cb;
    void *arg;
    gn_peer_id peer;
    uint8_t *key;
    size_t key_len;
    uint8_t *value;
    size_t value_len;
    size_t max;
    gn_router_validator v;
    char ns[64];
} dht_req;

static void req_free(dht_req *q)
{
    gn_free(q->key);
    gn_free(q->value);
    gn_free(q);
}

static void req_answer(dht_req *q, int status, gn_slice value, const gn_router_peer *peers,
                       size_t npeers)
{
    gn_node_dht_result res = {status, value, peers, npeers};
    if (q->cb) {
        q->cb(q->arg, &res);
    }
    req_free(q);
}

static void on_peer(void *arg, int status, const gn_peer_id *peer, gn_multiaddr *const *addrs,
                    size_t naddrs)
{
    dht_req *q = arg;
    gn_router_peer p = {.id = *peer, .addrs = addrs, .naddrs = naddrs};
    req_answer(q, status, gn_slice_of(NULL, 0), status == 0 ? &p : NULL, status == 0 ? 1 : 0);
}

static void on_value(void *arg, int status, gn_slice value)
{
    req_answer(arg, status, value, NULL, 0);
}

static void on_done(void *arg, int status)
{
    req_answer(arg, status, gn_slice_of(NULL, 0), NULL, 0);
}

static void on_peers(void *arg, int status, const gn_router_peer *peers, size_t n)
{
    req_answer(arg, status, gn_slice_of(NULL, 0), peers, n);
}

/* A request that failed at once still answers through the callback, on
 * the loop thread, as the node's calls promise. */
static void req_fail_later(gn_loop *loop, void *arg)
{
    (void)loop;
    dht_req *q = arg;
    req_answer(q, (int)q->max, gn_slice_of(NULL, 0), NULL, 0);
}

static void req_run(gn_loop *loop, void *arg)
{
    (void)loop;
    dht_req *q = arg;
    gn_node *n = q->n;
    gn_host *h = &n->host;
    gn_slice key = gn_slice_of(q->key, q->key_len);
    int rc;
    if (q->kind == DHT_VALIDATOR) {
        rc = n->closing ? GN_ECLOSED : gni_node_make_instances(n);
        if (rc == 0) {
            rc = gn_host_set_validator(h, &q->v);
        }
        req_answer(q, rc, gn_slice_of(NULL, 0), NULL, 0);
        return;
    }
    if (n->closing) {
        rc = GN_ECLOSED;
    } else if (!n->components_running) {
        rc = GN_ESTATE; /* not started: no router runs */
    } else {
        switch (q->kind) {
        case DHT_FIND_PEER:
            rc = gn_host_find_peer(h, &q->peer, on_peer, q, NULL);
            break;
        case DHT_GET:
            rc = gn_host_get_value(h, key, on_value, q, NULL);
            break;
        case DHT_PUT:
            rc = gn_host_put_value(h, key, gn_slice_of(q->value, q->value_len), on_done, q,
                                   NULL);
            break;
        case DHT_PROVIDE:
            rc = gn_host_provide(h, key, on_done, q, NULL);
            break;
        case DHT_FIND_PROVIDERS:
            rc = gn_host_find_providers(h, key, q->max, on_peers, q, NULL);
            break;
        case DHT_CLOSEST:
            rc = gn_host_closest_peers(h, key, on_peers, q, NULL);
            break;
        default:
            rc = GN_EINVAL;
            break;
        }
    }
    if (rc < 0) {
        q->max = (size_t)(long)rc;
        if (gn_loop_defer(n->loop, req_fail_later, q) < 0) {
            req_answer(q, rc, gn_slice_of(NULL, 0), NULL, 0);
        }
    }
}

static int req_post(gn_node *n, dht_req *q)
{
    int rc = gni_node_post(n, req_run, q);
    if (rc < 0) {
        req_free(q);
    }
    return rc;
}

/* A request with a copy of @key (@len bytes, 1..GN_NODE_DHT_KEY_MAX). */
static dht_req *req_new(gn_node *n, dht_kind kind, const uint8_t *key, size_t len,
                        gn_node_dht_cb cb, void *arg, int *rc)
{
    *rc = GN_EINVAL;
    if (!n || !cb || (kind != DHT_FIND_PEER && kind != DHT_VALIDATOR && (!key || len == 0 || len > GN_NODE_DHT_KEY_MAX))) {
        return NULL;
    }
    dht_req *q = gn_calloc(1, sizeof *q);
    if (!q || (len && !(q->key = gn_malloc(len)))) {
        gn_free(q);
        *rc = GN_ENOMEM;
        return NULL;
    }
    if (len) {
        memcpy(q->key, key, len);
    }
    q->key_len = len;
    q->n = n;
    q->kind = kind;
    q->cb = cb;
    q->arg = arg;
    *rc = 0;
    return q;
}

int gn_node_dht_find_peer(gn_node *n, const gn_peer_id *peer, gn_node_dht_cb cb, void *arg)
{
    int rc;
    if (!peer || peer->len == 0) {
        return GN_EINVAL;
    }
    dht_req *q = req_new(n, DHT_FIND_PEER, NULL, 0, cb, arg, &rc);
    if (!q) {
        return rc;
    }
    q->peer = *peer;
    return req_post(n, q);
}

int gn_node_dht_get(gn_node *n, const uint8_t *key, size_t key_len, gn_node_dht_cb cb,
                    void *arg)
{
    int rc;
    dht_req *q = req_new(n, DHT_GET, key, key_len, cb, arg, &rc);
    return q ? req_post(n, q) : rc;
}

int gn_node_dht_put(gn_node *n, const uint8_t *key, size_t key_len, const uint8_t *value,
                    size_t value_len, gn_node_dht_cb cb, void *arg)
{
    int rc;
    if ((!value && value_len > 0) || value_len > GN_NODE_DHT_VALUE_MAX) {
        return GN_EINVAL;
    }
    dht_req *q = req_new(n, DHT_PUT, key, key_len, cb, arg, &rc);
    if (!q) {
        return rc;
    }
    if (value_len && !(q->value = gn_malloc(value_len))) {
        req_free(q);
        return GN_ENOMEM;
    }
    if (value_len) {
        memcpy(q->value, value, value_len);
    }
    q->value_len = value_len;
    return req_post(n, q);
}

int gn_node_dht_provide(gn_node *n, const uint8_t *key, size_t key_len, gn_node_dht_cb cb,
                        void *arg)
{
    int rc;
    dht_req *q = req_new(n, DHT_PROVIDE, key, key_len, cb, arg, &rc);
    return q ? req_post(n, q) : rc;
}

int gn_node_dht_find_providers(gn_node *n, const uint8_t *key, size_t key_len, size_t max,
                               gn_node_dht_cb cb, void *arg)
{
    int rc;
    if (max == 0) {
        return GN_EINVAL;
    }
    dht_req *q = req_new(n, DHT_FIND_PROVIDERS, key, key_len, cb, arg, &rc);
    if (!q) {
        return rc;
    }
    q->max = max;
    return req_post(n, q);
}

int gn_node_dht_closest_peers(gn_node *n, const uint8_t *key, size_t key_len,
                              gn_node_dht_cb cb, void *arg)
{
    int rc;
    dht_req *q = req_new(n, DHT_CLOSEST, key, key_len, cb, arg, &rc);
    return q ? req_post(n, q) : rc;
}

int gn_node_dht_set_validator(gn_node *n, const gn_router_validator *v, gn_node_dht_cb cb,
                              void *arg)
{
    int rc;
    if (!v || !v->ns || !v->ns[0] || strlen(v->ns) >= sizeof ((dht_req *)0)->ns ||
        strchr(v->ns, '/') || !v->validate) {
        return GN_EINVAL;
    }
    dht_req *q = req_new(n, DHT_VALIDATOR, NULL, 0, cb, arg, &rc);
    if (!q) {
        return rc;
    }
    q->v = *v;
    strcpy(q->ns, v->ns);
    q->v.ns = q->ns;
    return req_post(n, q);
}
