/*
 * Connecting to an Ergo node by name: static routes first, then the
 * registrar, each candidate dialled in turn (Ergo's GetConnection order).
 * Contract: connect_uv.h.
 */
#include "connect_uv.h"

#include <stdio.h>
#include <string.h>

#include "gni.h"
#include "golemnet/err.h"

typedef struct connect_cand {
    char host[GNI_ROUTES_HOST_MAX + 1]; /* "" = the host part of the name */
    char cookie[GNI_ROUTES_COOKIE_MAX + 1];
    uint16_t port;
    bool tls, use_resolver;
    uint64_t flags;
} connect_cand;

typedef struct connect_op {
    uv_timer_t timer; /* defers a result that is known inside gni_ergo_connect */
    gni_ergo_node *n;
    gni_ergo_resolver rv; /* .resolve NULL: no registrar */
    char name[GNI_ROUTES_NAME_MAX + 1];
    connect_cand st[GNI_ERGO_CONNECT_MAX]; /* static matches, by weight */
    uint32_t nst, ist;
    connect_cand res[GNI_ERGO_CONNECT_MAX]; /* what the last resolve answered */
    uint32_t nres, ires;
    bool static_matched, resolving, in_step, done;
    bool canceled; /* the node or the registrar closed: nothing more is tried */
    int err;
    gni_ergo_connect_cb cb;
    void *ud;
} connect_op;

static void connect_step(connect_op *o);

static void connect_freed(uv_handle_t *h) { gn_free(h->data); }

static void connect_finish(connect_op *o, int err, gni_ergo_conn *c)
{
    if (o->done)
        return;
    o->done = true;
    o->cb(err, c, o->ud);
    uv_close((uv_handle_t *)&o->timer, connect_freed);
}

static void connect_deferred(uv_timer_t *t)
{
    connect_op *o = t->data;
    connect_finish(o, o->err, NULL);
}

static void connect_fail(connect_op *o, int err)
{
    o->err = err;
    if (o->in_step) /* still inside gni_ergo_connect: report from the loop */
        uv_timer_start(&o->timer, connect_deferred, 0, 0);
    else
        connect_finish(o, err, NULL);
}

static void connect_dialled(int err, gni_ergo_conn *c, void *ud)
{
    connect_op *o = ud;
    if (err == 0) {
        connect_finish(o, 0, c);
        return;
    }
    o->err = err;
    o->canceled = err == GN_ECANCELED; /* the node is closing: no next candidate */
    connect_step(o); /* the next candidate */
}

/* starts a dial to @k; 0 when on_result will run */
static int connect_dial(connect_op *o, const connect_cand *k)
{
    const char *host = k->host[0] ? k->host : strchr(o->name, '@') + 1;
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    gni_ergo_dial_options d = {.cookie = k->cookie, .flags = k->flags, .tls = k->tls,
                               .on_result = connect_dialled, .user_data = o};
    return gni_ergo_dial_with(o->n, host, k->port, o->name, &d);
}

static void connect_resolved(int err, const gni_reg_route *routes, uint32_t n, void *ud)
{
    connect_op *o = ud;
    o->resolving = false;
    o->nres = o->ires = 0;
    if (err < 0)
        o->err = err;
    if (err == GN_ECANCELED)
        o->canceled = true; /* the registrar closed; the node may be closing too */
    for (uint32_t i = 0; err == 0 && i < n && o->nres < GNI_ERGO_CONNECT_MAX; i++) {
        connect_cand *k = &o->res[o->nres++];
        memset(k, 0, sizeof *k); /* cookie "" and flags 0: the node's (Ergo's rule) */
        snprintf(k->host, sizeof k->host, "%.*s", (int)routes[i].host.len,
                 (const char *)routes[i].host.base);
        k->port = routes[i].port;
        k->tls = routes[i].tls;
    }
    if (!o->in_step)
        connect_step(o);
}

/* bounded: every pass consumes one candidate or ends */
static void connect_step(connect_op *o)
{
    bool outer = o->in_step;
    o->in_step = true;
    for (uint32_t guard = 0; guard < 4 * GNI_ERGO_CONNECT_MAX + 4 && !o->done; guard++) {
        if (o->canceled) {
            connect_fail(o, GN_ECANCELED);
            break;
        }
        if (o->ires < o->nres) {
            int rc = connect_dial(o, &o->res[o->ires++]);
            if (rc == 0)
                break;
            o->err = rc;
            continue;
        }
        if (!o->static_matched || o->ist >= o->nst) {
            /* without static routes the registrar's answer was the only list */
            connect_fail(o, o->err ? o->err : GN_ENOROUTE);
            break;
        }
        const connect_cand *k = &o->st[o->ist++];
        if (k->use_resolver) {
            if (!o->rv.resolve) {
                o->err = GN_ENOROUTE;
                continue;
            }
            o->resolving = true;
            int rc = o->rv.resolve(o->rv.ctx, o->name, connect_resolved, o);
            if (rc < 0) {
                o->resolving = false;
                o->err = rc;
                continue;
            }
            if (o->resolving)
                break; /* the answer comes from the loop */
            continue;  /* answered in-process */
        }
        int rc = connect_dial(o, k);
        if (rc == 0)
            break;
        o->err = rc;
    }
    o->in_step = outer;
}

static int connect_reg_resolve(void *ctx, const char *name, gni_reg_uv_resolve_cb cb, void *ud)
{
    return gni_reg_uv_resolve(ctx, name, cb, ud);
}

int gni_ergo_connect(uv_loop_t *loop, gni_ergo_node *n, const gni_routes *routes,
                     gni_reg_uv *reg, const char *name, gni_ergo_connect_cb cb,
                     void *user_data)
{
    gni_ergo_resolver r = {.resolve = connect_reg_resolve, .ctx = reg};
    return gni_ergo_connect_res(loop, n, routes, reg ? &r : NULL, name, cb, user_data);
}

int gni_ergo_connect_res(uv_loop_t *loop, gni_ergo_node *n, const gni_routes *routes,
                         const gni_ergo_resolver *res, const char *name,
                         gni_ergo_connect_cb cb, void *user_data)
{
    if (!loop || !n || !name || !cb || !strchr(name, '@') ||
        strlen(name) > GNI_ROUTES_NAME_MAX)
        return GN_EINVAL;
    connect_op *o = gn_calloc(1, sizeof *o);
    if (!o)
        return GN_ENOMEM;
    const gni_route *m[GNI_ERGO_CONNECT_MAX];
    uint32_t nm = 0;
    if (routes && gni_routes_lookup(routes, name, m, GNI_ERGO_CONNECT_MAX, &nm) < 0) {
        gn_free(o);
        return GN_EINVAL;
    }
    if (uv_timer_init(loop, &o->timer) < 0) {
        gn_free(o);
        return GN_ENOMEM;
    }
    o->timer.data = o;
    o->n = n;
    if (res && res->resolve)
        o->rv = *res;
    o->cb = cb;
    o->ud = user_data;
    snprintf(o->name, sizeof o->name, "%s", name);
    o->nst = nm < GNI_ERGO_CONNECT_MAX ? nm : GNI_ERGO_CONNECT_MAX;
    o->static_matched = nm > 0;
    for (uint32_t i = 0; i < o->nst; i++) {
        connect_cand *k = &o->st[i];
        snprintf(k->host, sizeof k->host, "%s", m[i]->host ? m[i]->host : "");
        snprintf(k->cookie, sizeof k->cookie, "%s", m[i]->cookie ? m[i]->cookie : "");
        k->port = m[i]->port;
        k->tls = m[i]->tls;
        k->use_resolver = m[i]->use_resolver;
        k->flags = m[i]->flags;
    }
    o->in_step = true;
    if (!o->static_matched) {
        /* no static route: the registrar */
        o->err = o->rv.resolve ? 0 : GN_ENOROUTE;
        if (o->rv.resolve) {
            o->resolving = true;
            int rc = o->rv.resolve(o->rv.ctx, o->name, connect_resolved, o);
            if (rc < 0) {
                o->resolving = false;
                o->err = rc;
            }
        }
        if (!o->resolving)
            connect_step(o); /* answered in-process, or failed */
    } else {
        connect_step(o);
    }
    o->in_step = false;
    return 0;
}
