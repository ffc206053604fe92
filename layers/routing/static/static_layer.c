/*
 * The `static` router: peer ID -> addresses from configuration.
 *
 * Options (gn_host_option, component "static"):
 *   static.peer=<multiaddr>/p2p/<id>   one route; repeatable
 *   static.file=<path>                 a routes file (static_table.h format),
 *                                      read once when the node starts
 * find_peer answers from the table on a later loop turn: the addresses, or
 * GN_ENOROUTE. Spec: docs/components.md "static".
 */
#include "golemnet/router.h"
#include "golemnet/registry.h"

#include "gni.h"
#include "static_table.h"

#include <stdio.h>
#include <string.h>

#define STATIC_LOG "static"
/* Largest routes file read. */
#define STATIC_MAX_FILE (1u << 20)

typedef struct static_query {
    gn_op op;               /* the query's cancellation handle */
    gni_list link;          /* st->queries */
    struct static_router *st;
    gn_peer_id peer;
    gn_router_peer_cb cb;
    void *arg;
    bool canceled;
} static_query;

typedef struct static_router {
    gn_router *r;
    gni_static_table *table;
    gni_list queries;
} static_router;

static int static_init(gn_router *r)
{
    static_router *st = r->state;
    st->r = r;
    gni_list_init(&st->queries);
    return gni_static_table_new(&st->table);
}

static void static_fini(gn_router *r)
{
    static_router *st = r->state;
    gni_static_table_free(st->table);
}

static int load_file(static_router *st, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        GN_LOG(GN_LOG_ERR, STATIC_LOG, "static.file=%s: cannot open", path);
        return GN_ENOTFOUND;
    }
    char *text = gn_malloc(STATIC_MAX_FILE + 1);
    if (!text) {
        fclose(f);
        return GN_ENOMEM;
    }
    size_t len = fread(text, 1, STATIC_MAX_FILE + 1, f);
    bool err = ferror(f) != 0;
    fclose(f);
    int rc = 0;
    size_t line = 0;
    if (err) {
        GN_LOG(GN_LOG_ERR, STATIC_LOG, "static.file=%s: read error", path);
        rc = GN_EIO;
    } else if (len > STATIC_MAX_FILE) {
        GN_LOG(GN_LOG_ERR, STATIC_LOG, "static.file=%s: larger than %u bytes", path,
               STATIC_MAX_FILE);
        rc = GN_ETOOBIG;
    } else if ((rc = gni_static_table_add_text(st->table, text, len, &line)) < 0) {
        GN_LOG(GN_LOG_ERR, STATIC_LOG, "static.file=%s line %zu: %s", path, line,
               gn_strerror(rc));
    }
    gn_free(text);
    return rc;
}

static int static_start(gn_router *r)
{
    static_router *st = r->state;
    const char *v;
    for (size_t i = 0; (v = gn_host_option(r->host, "static", "peer", i)); i++) {
        int rc = gni_static_table_add(st->table, v, strlen(v));
        if (rc < 0) {
            GN_LOG(GN_LOG_ERR, STATIC_LOG, "static.peer=%s: %s (want <multiaddr>/p2p/<id>)", v,
                   gn_strerror(rc));
            return rc;
        }
    }
    for (size_t i = 0; (v = gn_host_option(r->host, "static", "file", i)); i++) {
        int rc = load_file(st, v);
        if (rc < 0) {
            return rc;
        }
    }
    GN_LOG(GN_LOG_DEBUG, STATIC_LOG, "%zu peers", gni_static_table_count(st->table));
    return 0;
}

static void query_run(gn_loop *loop, void *arg)
{
    static_query *q = arg;
    static_router *st = q->st;
    (void)loop;
    gni_list_del(&q->link);
    if (q->canceled) {
        q->cb(q->arg, GN_ECANCELED, &q->peer, NULL, 0);
    } else {
        gn_multiaddr *const *addrs = NULL;
        size_t n = gni_static_table_find(st->table, &q->peer, &addrs);
        q->cb(q->arg, n ? 0 : GN_ENOROUTE, &q->peer, addrs, n);
    }
    gn_free(q);
}

static void query_cancel(gn_op *op)
{
    GNI_CONTAINER_OF(op, static_query, op)->canceled = true; /* query_run reports it */
}

static int static_find_peer(gn_router *r, const gn_peer_id *peer, gn_router_peer_cb cb,
                            void *arg, gn_op **op)
{
    static_router *st = r->state;
    static_query *q = gn_calloc(1, sizeof *q);
    if (!q) {
        return GN_ENOMEM;
    }
    q->op.cancel = query_cancel;
    q->st = st;
    q->peer = *peer;
    q->cb = cb;
    q->arg = arg;
    int rc = gn_loop_defer(r->loop, query_run, q);
    if (rc < 0) {
        gn_free(q);
        return rc;
    }
    gni_list_add_tail(&st->queries, &q->link);
    *op = &q->op;
    return 0;
}

static void static_stop(gn_router *r)
{
    static_router *st = r->state;
    for (gni_list *e = st->queries.next; e != &st->queries; e = e->next) {
        GNI_CONTAINER_OF(e, static_query, link)->canceled = true;
    }
}

/* For the conformance suite: "static.peer=<addr>/p2p/<peer>". */
static int static_test_options(const gn_peer_id *peer, const gn_multiaddr *addr, char *out,
                               size_t out_len)
{
    char ma[GN_MA_MAX_STRLEN], pid[GN_PEER_ID_MAX_STRLEN];
    if (gn_multiaddr_to_string(addr, ma, sizeof ma) < 0 ||
        gn_peer_id_to_string(peer, pid, sizeof pid) < 0) {
        return GN_EINVAL;
    }
    int len = snprintf(out, out_len, "static.peer=%s/p2p/%s", ma, pid);
    return len < 0 || (size_t)len >= out_len ? GN_ENOSPC : len;
}

static const gn_router_ops static_ops = {
    .abi = GN_ROUTER_ABI,
    .name = "static",
    .state_size = sizeof(static_router),
    .init = static_init,
    .fini = static_fini,
    .start = static_start,
    .stop = static_stop,
    .find_peer = static_find_peer,
    .test_options = static_test_options,
};

int gn_router_static_register(gn_registry *reg);
int gn_router_static_register(gn_registry *reg)
{
    return gn_registry_add(reg, GN_LAYER_ROUTER, (const gn_layer_ops *)&static_ops);
}
