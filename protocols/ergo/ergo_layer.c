/*
 * The `ergo` protocol component (/golem/ergo/1.0.0): Ergo connections for
 * a golemnet node over two carriers, behind one peer interface
 * (ergo_comp.h):
 *  - TCP: an Ergo acceptor/dialler (ergo_uv.c) on the node's loop,
 *    registered with the embedded registrar (registrar_uv.c);
 *  - CHANNEL: /golem/ergo/1.0.0 streams: one Introduce each way
 *    (ergo_open.c), then ENP frames split as on a TCP link.
 *
 * Explicit only: runs when the node's protocol_components names "ergo".
 * Options (gn_host_option, component "ergo"; docs/ergo.md "The ergo
 * component" has the table): node, cookie, acceptor, host, port,
 * port_range, flags, max_message_size, pool_size, registrar (embedded,
 * etcd or off), registrar_port, etcd, etcd_cluster, open_timeout_ms, tls,
 * tls_cert, tls_key, tls_ca, tls_skip_verify, tls_no_fingerprint and
 * repeated route. A bad value fails the node's start with GN_EINVAL and a
 * log line that names the key and the value.
 *
 * Connect by name is connect_uv.c's (static routes, then the configured
 * registrar: embedded or etcd).
 *
 * Spec: docs/protocols/ergo.md; ergo-wire.md b, c.
 */
#include "golemnet/err.h"
#include "golemnet/host.h"
#include "golemnet/log.h"
#include "golemnet/node.h"
#include "golemnet/protocol.h"
#include "golemnet/registry.h"

#include "connect_uv.h"
#include "enp.h"
#include "ergo_comp.h"
#include "ergo_etcd_config.h"
#include "ergo_open.h"
#include "ergo_tls_config.h"
#include "ergo_uv.h"
#include "gni.h"
#include "registrar_uv.h"
#include "routes.h"
#if GNI_HAVE_ERGO_ETCD
#include "etcd_uv.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ERGO_LOG "ergo"
/* Bytes a channel stream may have queued before sends push back (as a TCP link). */
#define ERGO_CHAN_WRITE_MAX (4u << 20)
/* Most peer nodes and stream openings at once; more are refused. */
#define ERGO_PEERS_MAX 1024u
#define ERGO_OPENING_PER_PEER 8u /* streams of one peer ID in the opening exchange at once */
/* Ergo's default acceptor port and port range. */
#define ERGO_PORT_DEFAULT 11144u
#define ERGO_PORT_RANGE_DEFAULT 50u

/* ergo.registrar */
enum { ERGO_REG_OFF = 0, ERGO_REG_EMBEDDED = 1, ERGO_REG_ETCD = 2 };
/* Bytes of a PEM path option, and of one ergo.route value. */
#define ERGO_PATH_MAX 512u
#define ERGO_ROUTE_OPT_MAX 1024u

typedef struct ergo_chan ergo_chan;
typedef struct ergo_pending ergo_pending;

struct gni_ergo_comp {
    gn_protocol *p;
    gn_host *h;
    gn_loop *loop;
    bool running;
    /* options */
    char node[256];
    char cookie[256];
    char host[64];
    uint16_t port, port_range, registrar_port;
    uint64_t flags, max_message_size;
    uint32_t pool_size;
    bool acceptor;
    int registrar; /* ERGO_REG_* */
    char etcd[256], etcd_cluster[256];
    bool tls, tls_skip_verify, tls_no_fingerprint;
    char tls_cert[ERGO_PATH_MAX], tls_key[ERGO_PATH_MAX], tls_ca[ERGO_PATH_MAX];
    gni_routes *routes; /* NULL: no ergo.route */
    gn_time open_timeout;
    int64_t creation;
    /* carriers */
    gn_edf_registry *reg;
    gni_ergo_node *ep;
    gni_reg_uv *ru;
#if GNI_HAVE_ERGO_ETCD
    gni_etcd_uv *eu;
#endif
    gni_reg_route route;
    gni_ergo_peer *peers; /* up, both carriers */
    size_t npeers;
    ergo_chan *chans;     /* channel streams not yet closing */
    size_t nchans;
    ergo_pending *pending;
    gni_ergo_handler hd;
    void *hd_ud;
    gni_ergo_comp *next_on_loop;
};

/* loop-local list of running components (gni_ergo_comp_of) */
static const int ergo_loop_key = 0;

/* ---- options ---------------------------------------------------------------------------- */

static const char *opt(gni_ergo_comp *c, const char *key)
{
    return gn_host_option(c->h, "ergo", key, 0);
}

static int opt_bad(const char *key, const char *val, const char *want)
{
    GN_LOG(GN_LOG_ERR, ERGO_LOG, "ergo.%s=%s: %s", key, val, want);
    return GN_EINVAL;
}

/* 0 absent (out unchanged), 1 set, GN_EINVAL (logged) */
static int opt_uint(gni_ergo_comp *c, const char *key, uint64_t min, uint64_t max, uint64_t *out)
{
    const char *v = opt(c, key);
    if (!v)
        return 0;
    char *end = NULL;
    unsigned long long x = 0;
    if (*v >= '0' && *v <= '9')
        x = strtoull(v, &end, 0);
    if (!end || *end || x < min || x > max) {
        char want[96];
        snprintf(want, sizeof want, "want an integer from %llu to %llu",
                 (unsigned long long)min, (unsigned long long)max);
        return opt_bad(key, v, want);
    }
    *out = x;
    return 1;
}

static int opt_bool(gni_ergo_comp *c, const char *key, bool *out)
{
    const char *v = opt(c, key);
    if (!v)
        return 0;
    if (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "1"))
        *out = true;
    else if (!strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "0"))
        *out = false;
    else
        return opt_bad(key, v, "want on or off");
    return 1;
}

static int opt_str(gni_ergo_comp *c, const char *key, char *out, size_t cap)
{
    const char *v = opt(c, key);
    if (!v)
        return 0;
    if (!v[0] || strlen(v) >= cap)
        return opt_bad(key, v, "empty or too long");
    snprintf(out, cap, "%s", v);
    return 1;
}

/* ergo.registrar: on/embedded, etcd, off */
static int opt_registrar(gni_ergo_comp *c)
{
    const char *v = opt(c, "registrar");
    c->registrar = ERGO_REG_EMBEDDED;
    if (!v)
        return 0;
    if (!strcmp(v, "embedded") || !strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "1"))
        c->registrar = ERGO_REG_EMBEDDED;
    else if (!strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "0"))
        c->registrar = ERGO_REG_OFF;
    else if (!strcmp(v, "etcd"))
        c->registrar = ERGO_REG_ETCD;
    else
        return opt_bad("registrar", v, "want embedded, etcd or off");
    if (c->registrar == ERGO_REG_ETCD && !GNI_HAVE_ERGO_ETCD)
        return opt_bad("registrar", v,
                       "this build has no etcd registrar (meson -Dergo_etcd=enabled; needs "
                       "json-c and http-parser)");
    return 1;
}

/* one token of an ergo.route value: refused naming the key, the value and the part */
static int route_bad(const char *v, const char *part, const char *want)
{
    GN_LOG(GN_LOG_ERR, ERGO_LOG, "ergo.route=%s: '%s': %s", v, part, want);
    return GN_EINVAL;
}

static int route_num(const char *v, const char *part, const char *num, long long min,
                     long long max, long long *out)
{
    char *end = NULL;
    long long x = 0;
    if ((*num >= '0' && *num <= '9') || (*num == '-' && num[1] >= '0' && num[1] <= '9'))
        x = strtoll(num, &end, 0);
    if (!end || *end || x < min || x > max) {
        char want[96];
        snprintf(want, sizeof want, "want an integer from %lld to %lld", min, max);
        return route_bad(v, part, want);
    }
    *out = x;
    return 0;
}

/*
 * "<pattern> <host>:<port>|resolver [cookie=C] [tls] [weight=N] [flags=N]", parts
 * separated by spaces (docs/ergo.md "The ergo component", "Static routes as options").
 */
static int opt_route(gni_ergo_comp *c, const char *v)
{
    char buf[ERGO_ROUTE_OPT_MAX];
    if (strlen(v) >= sizeof buf)
        return opt_bad("route", v, "too long");
    snprintf(buf, sizeof buf, "%s", v);
    char *tok[8];
    unsigned nt = 0;
    for (char *save = NULL, *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        if (nt == 8)
            return route_bad(v, t, "too many parts");
        tok[nt++] = t;
    }
    if (nt < 2)
        return opt_bad("route", v,
                       "want '<pattern> <host>:<port>|resolver [cookie=C] [tls] [weight=N] "
                       "[flags=N]'");
    gni_route r;
    memset(&r, 0, sizeof r);
    char host[GNI_ROUTES_HOST_MAX + 1] = "";
    long long weight = 0, x;
    if (!strcmp(tok[1], "resolver")) {
        r.use_resolver = true;
    } else {
        char *colon = strrchr(tok[1], ':');
        if (!colon)
            return route_bad(v, tok[1], "want <host>:<port> or resolver");
        *colon = '\0';
        if (strlen(tok[1]) > GNI_ROUTES_HOST_MAX)
            return route_bad(v, tok[1], "host too long");
        snprintf(host, sizeof host, "%s", tok[1]);
        if (route_num(v, colon + 1, colon + 1, 1, UINT16_MAX, &x) < 0)
            return GN_EINVAL;
        r.host = host;
        r.port = (uint16_t)x;
    }
    for (unsigned i = 2; i < nt; i++) {
        const char *t = tok[i];
        if (!strcmp(t, "tls")) {
            r.tls = true;
        } else if (!strncmp(t, "cookie=", 7)) {
            if (!t[7] || strlen(t + 7) > GNI_ROUTES_COOKIE_MAX)
                return route_bad(v, "cookie=", "want 1 to 255 bytes");
            r.cookie = t + 7;
        } else if (!strncmp(t, "weight=", 7)) {
            if (route_num(v, t, t + 7, -1000000, 1000000, &weight) < 0)
                return GN_EINVAL;
        } else if (!strncmp(t, "flags=", 6)) {
            char *end = NULL;
            unsigned long long f = 0;
            if (t[6] >= '0' && t[6] <= '9')
                f = strtoull(t + 6, &end, 0);
            if (!end || *end)
                return route_bad(v, t, "want an integer (decimal or 0x hex; 0 = the node's)");
            r.flags = f;
        } else {
            return route_bad(v, t, "unknown part: want cookie=, tls, weight= or flags=");
        }
    }
    int rc = gni_routes_add(c->routes, tok[0], &r, (int)weight);
    if (rc == GN_EEXIST)
        return route_bad(v, tok[0], "this pattern is given twice");
    if (rc == GN_EINVAL)
        return route_bad(v, tok[0], "not a POSIX extended regular expression (1 to 256 bytes)");
    if (rc == GN_ENOTSUP)
        return route_bad(v, tok[0], "no regular expressions on this platform");
    if (rc < 0)
        return route_bad(v, tok[0], gn_err_name(rc));
    return 0;
}

/* every ergo.route, in the order given */
static int opt_routes(gni_ergo_comp *c)
{
    uint32_t n = 0;
    while (n <= GNI_ROUTES_MAX_LIMIT && gn_host_option(c->h, "ergo", "route", n))
        n++;
    if (n == 0)
        return 0;
    if (n > GNI_ROUTES_MAX_LIMIT) {
        GN_LOG(GN_LOG_ERR, ERGO_LOG, "ergo.route: more than %u routes", GNI_ROUTES_MAX_LIMIT);
        return GN_EINVAL;
    }
    int rc = gni_routes_new(n, &c->routes);
    /* bounded: n values */
    for (uint32_t i = 0; rc == 0 && i < n; i++)
        rc = opt_route(c, gn_host_option(c->h, "ergo", "route", i));
    return rc;
}

static int opt_tls(gni_ergo_comp *c)
{
    if (opt_bool(c, "tls", &c->tls) < 0 || opt_bool(c, "tls_skip_verify", &c->tls_skip_verify) < 0 ||
        opt_bool(c, "tls_no_fingerprint", &c->tls_no_fingerprint) < 0)
        return GN_EINVAL;
    int rc1 = opt_str(c, "tls_cert", c->tls_cert, sizeof c->tls_cert);
    int rc2 = opt_str(c, "tls_key", c->tls_key, sizeof c->tls_key);
    if (rc1 < 0 || rc2 < 0 || opt_str(c, "tls_ca", c->tls_ca, sizeof c->tls_ca) < 0)
        return GN_EINVAL;
    if (rc1 != rc2)
        return opt_bad(rc1 ? "tls_cert" : "tls_key", rc1 ? c->tls_cert : c->tls_key,
                       "ergo.tls_cert and ergo.tls_key go together");
    if (rc1 && !c->tls)
        return opt_bad("tls_cert", c->tls_cert, "needs ergo.tls=on");
    if (c->tls && !GNI_HAVE_ERGO_TLS)
        return opt_bad("tls", "on",
                       "this build has no TLS (meson -Dergo_tls=enabled; needs OpenSSL 3)");
    return 0;
}

static int ergo_read_options(gni_ergo_comp *c)
{
    uint64_t x;
    int rc;
    if ((rc = opt_str(c, "node", c->node, sizeof c->node)) < 0)
        return rc;
    if (rc == 0) {
        /* no name given: the peer ID names the node, "<peer ID>@localhost" */
        gn_peer_id self;
        char pid[GN_PEER_ID_MAX_STRLEN];
        gn_host_peer_id(c->h, &self);
        if (gn_peer_id_to_string(&self, pid, sizeof pid) < 0)
            return GN_EINVAL;
        snprintf(c->node, sizeof c->node, "%s@localhost", pid);
    }
    if (!gni_ehs_name_valid(gn_slice_of(c->node, strlen(c->node))))
        return opt_bad("node", c->node, "want name@host (1 to 255 bytes, exactly one '@')");
    if ((rc = opt_str(c, "cookie", c->cookie, sizeof c->cookie)) < 0)
        return rc;
    c->acceptor = rc > 0; /* the TCP acceptor runs when a cookie is given, unless off */
    snprintf(c->host, sizeof c->host, "127.0.0.1");
    if (opt_bool(c, "acceptor", &c->acceptor) < 0 || opt_registrar(c) < 0)
        return GN_EINVAL;
    snprintf(c->etcd, sizeof c->etcd, "localhost:2379");
    snprintf(c->etcd_cluster, sizeof c->etcd_cluster, "default");
    if (opt_str(c, "etcd", c->etcd, sizeof c->etcd) < 0 ||
        opt_str(c, "etcd_cluster", c->etcd_cluster, sizeof c->etcd_cluster) < 0)
        return GN_EINVAL;
    if (c->registrar != ERGO_REG_ETCD && (opt(c, "etcd") || opt(c, "etcd_cluster"))) {
        GN_LOG(GN_LOG_ERR, ERGO_LOG, "ergo.etcd and ergo.etcd_cluster need ergo.registrar=etcd");
        return GN_EINVAL;
    }
    if (opt_tls(c) < 0 || opt_routes(c) < 0)
        return GN_EINVAL;
    if (!c->cookie[0] && c->acceptor) {
        GN_LOG(GN_LOG_ERR, ERGO_LOG,
               "ergo.acceptor=on needs ergo.cookie (the cluster cookie of the TCP handshake)");
        return GN_EINVAL;
    }
    if (opt_str(c, "host", c->host, sizeof c->host) < 0)
        return GN_EINVAL;
    x = ERGO_PORT_DEFAULT;
    if (opt_uint(c, "port", 0, UINT16_MAX, &x) < 0)
        return GN_EINVAL;
    c->port = (uint16_t)x;
    x = ERGO_PORT_RANGE_DEFAULT;
    if (opt_uint(c, "port_range", 1, UINT16_MAX, &x) < 0)
        return GN_EINVAL;
    c->port_range = (uint16_t)x;
    c->flags = GNI_EHS_FLAGS_DEFAULT;
    if (opt_uint(c, "flags", 0, UINT64_MAX, &c->flags) < 0)
        return GN_EINVAL;
    c->max_message_size = 0;
    if (opt_uint(c, "max_message_size", 0, UINT32_MAX, &c->max_message_size) < 0)
        return GN_EINVAL;
    x = GNI_EHS_POOL_DEFAULT;
    if (opt_uint(c, "pool_size", 1, GNI_EHS_POOL_MAX, &x) < 0)
        return GN_EINVAL;
    c->pool_size = (uint32_t)x;
    x = 4499;
    if (opt_uint(c, "registrar_port", 1, UINT16_MAX, &x) < 0)
        return GN_EINVAL;
    c->registrar_port = (uint16_t)x;
    x = GNI_ERGO_OPEN_TIMEOUT_DEFAULT / GN_MS;
    if (opt_uint(c, "open_timeout_ms", 1, 3600000, &x) < 0)
        return GN_EINVAL;
    c->open_timeout = (gn_time)x * GN_MS;
    return 0;
}

/* the etcd registrar runs (ergo.registrar=etcd, built with ergo_etcd) */
static bool comp_has_etcd(const gni_ergo_comp *c)
{
#if GNI_HAVE_ERGO_ETCD
    return c->eu != NULL;
#else
    (void)c;
    return false;
#endif
}

/* ---- peers (the one interface) ---------------------------------------------------------- */

static gni_ergo_peer *comp_find(gni_ergo_comp *c, const char *node)
{
    for (gni_ergo_peer *p = c->peers; p; p = p->next)
        if (!strcmp(p->node, node))
            return p;
    return NULL;
}

static gni_ergo_peer *comp_find_carrier(gni_ergo_comp *c, const void *carrier)
{
    for (gni_ergo_peer *p = c->peers; p; p = p->next)
        if (p->carrier == carrier)
            return p;
    return NULL;
}

static void comp_peer_add(gni_ergo_comp *c, gni_ergo_peer *p)
{
    p->comp = c;
    p->up = true;
    p->info.node = p->node;
    p->next = c->peers;
    c->peers = p;
    c->npeers++;
    GN_LOG(GN_LOG_INFO, ERGO_LOG, "%s: peer %s up over %s", c->node, p->node, p->ops->name);
    if (c->hd.on_peer_up)
        c->hd.on_peer_up(c->hd_ud, p);
}

/* unlinks @p and reports it down (the carrier frees it afterwards) */
static void comp_peer_remove(gni_ergo_comp *c, gni_ergo_peer *p, int reason)
{
    for (gni_ergo_peer **pp = &c->peers; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            c->npeers--;
            p->up = false;
            GN_LOG(GN_LOG_INFO, ERGO_LOG, "%s: peer %s down (%s)", c->node, p->node,
                   reason ? gn_err_name(reason) : "closed");
            if (c->hd.on_peer_down)
                c->hd.on_peer_down(c->hd_ud, p, reason);
            return;
        }
}

static void comp_connect_failed(gni_ergo_comp *c, const char *node, int err, const char *diag)
{
    GN_LOG(GN_LOG_NOTICE, ERGO_LOG, "%s: connect to %s failed: %s (%s)", c->node,
           node && node[0] ? node : "?", diag, gn_err_name(err));
    if (c->hd.on_connect_failed)
        c->hd.on_connect_failed(c->hd_ud, node ? node : "", err, diag);
}

/* ---- pending connects: stream opens, resolves, TCP dials ------------------------------- */

enum { PEND_STREAM = 1, PEND_CONNECT = 2, PEND_TCP = 3 };

struct ergo_pending {
    gni_ergo_comp *c; /* NULL once the component stopped */
    int kind;
    char node[256];
    gn_peer_id peer;
    gn_op *op;
    gn_timer timer; /* PEND_TCP, PEND_CONNECT: how long the connect may take */
    bool reported;  /* PEND_CONNECT: its deadline reported the failure already */
    ergo_pending *next;
};

static ergo_pending *pend_new(gni_ergo_comp *c, int kind, const char *node)
{
    ergo_pending *pd = gn_calloc(1, sizeof *pd);
    if (!pd)
        return NULL;
    pd->c = c;
    pd->kind = kind;
    snprintf(pd->node, sizeof pd->node, "%s", node ? node : "");
    gn_timer_init(c->loop, &pd->timer);
    pd->next = c->pending;
    c->pending = pd;
    return pd;
}

static void pend_unlink(ergo_pending *pd)
{
    gn_timer_stop(&pd->timer);
    if (!pd->c)
        return;
    for (ergo_pending **pp = &pd->c->pending; *pp; pp = &(*pp)->next)
        if (*pp == pd) {
            *pp = pd->next;
            break;
        }
    pd->c = NULL;
}

/* a peer came up as @node: its TCP dials are answered */
static void pend_done_tcp(gni_ergo_comp *c, const char *node)
{
    for (ergo_pending **pp = &c->pending; *pp;) {
        ergo_pending *pd = *pp;
        if (pd->kind == PEND_TCP && !strcmp(pd->node, node)) {
            *pp = pd->next;
            gn_timer_stop(&pd->timer);
            gn_free(pd);
        } else {
            pp = &pd->next;
        }
    }
}

/* ---- TCP carrier ------------------------------------------------------------------------- */

static int tcp_send(gni_ergo_peer *p, uint64_t from_id, bool keep_order, const uint8_t *f,
                    size_t len)
{
    return gni_ergo_conn_send(p->carrier, from_id, keep_order, f, len);
}

static unsigned tcp_links(const gni_ergo_peer *p) { return gni_ergo_conn_links(p->carrier); }

static void tcp_kill(gni_ergo_conn *conn)
{
    /* bounded: each kill ends one link; the last one frees @conn (on_conn_down) */
    unsigned n = gni_ergo_conn_links(conn);
    for (unsigned i = 0; i < n; i++)
        if (gni_ergo_conn_kill_link(conn, 0) < 0)
            break;
}

static void tcp_close(gni_ergo_peer *p) { tcp_kill(p->carrier); }

static const gni_ergo_peer_ops tcp_peer_ops = {
    .name = "tcp", .send = tcp_send, .links = tcp_links, .close = tcp_close,
};

static void tcp_on_conn(gni_ergo_conn *conn, void *ud)
{
    gni_ergo_comp *c = ud;
    const gni_ehs_result *r = gni_ergo_conn_info(conn);
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)r->peer_node.len, (const char *)r->peer_node.base);
    gni_ergo_peer *p = NULL;
    if (!c->running || comp_find(c, name) || c->npeers >= ERGO_PEERS_MAX ||
        !(p = gn_calloc(1, sizeof *p))) {
        GN_LOG(GN_LOG_NOTICE, ERGO_LOG, "%s: TCP connection from %s refused: %s", c->node, name,
               !c->running         ? "the component is stopping"
               : comp_find(c, name) ? "the name is up on another connection"
               : c->npeers >= ERGO_PEERS_MAX ? "too many peer nodes"
                                              : "out of memory");
        tcp_kill(conn);
        return;
    }
    p->ops = &tcp_peer_ops;
    p->carrier = conn;
    snprintf(p->node, sizeof p->node, "%s", name);
    p->info.carrier = GNI_ERGO_CARRIER_TCP;
    p->info.flags = r->peer_flags;
    p->info.creation = r->peer_creation;
    p->info.max_message_size = r->peer_max_message_size;
    p->info.initiator = r->ndsn > 0; /* only the dialler learns a PoolDSN */
    p->info.dict = gni_ergo_conn_peer_dict(conn);
    pend_done_tcp(c, name);
    comp_peer_add(c, p);
}

static void tcp_on_frame(gni_ergo_conn *conn, const uint8_t *f, size_t len, void *ud)
{
    gni_ergo_comp *c = ud;
    gni_ergo_peer *p = comp_find_carrier(c, conn);
    if (p && c->hd.on_frame)
        c->hd.on_frame(c->hd_ud, p, f, len);
}

static void tcp_on_down(gni_ergo_conn *conn, void *ud)
{
    gni_ergo_comp *c = ud;
    gni_ergo_peer *p = comp_find_carrier(c, conn);
    if (!p)
        return;
    comp_peer_remove(c, p, GN_ECLOSED);
    gn_free(p);
}

static void tcp_on_link_error(gni_ergo_node *n, int err, const char *diag, void *ud)
{
    gni_ergo_comp *c = ud;
    (void)n;
    GN_LOG(GN_LOG_NOTICE, ERGO_LOG, "%s: TCP link: %s (%s)", c->node, diag, gn_err_name(err));
}

static void tcp_pend_expired(gn_timer *t, void *arg)
{
    (void)t;
    ergo_pending *pd = arg;
    gni_ergo_comp *c = pd->c;
    char node[256];
    snprintf(node, sizeof node, "%s", pd->node);
    pend_unlink(pd);
    gn_free(pd);
    if (c)
        comp_connect_failed(c, node, GN_ETIMEDOUT,
                            "no Ergo connection within ergo.open_timeout_ms (refused, "
                            "unreachable, or a cookie mismatch: see the TCP link log)");
}

static int comp_dial_tcp(gni_ergo_comp *c, const char *node, const char *ip, uint16_t port)
{
    ergo_pending *pd = pend_new(c, PEND_TCP, node);
    if (!pd)
        return GN_ENOMEM;
    int rc = gni_ergo_dial(c->ep, ip, port, node);
    if (rc == 0)
        rc = gn_timer_start(&pd->timer, c->open_timeout, tcp_pend_expired, pd);
    if (rc < 0) {
        pend_unlink(pd);
        gn_free(pd);
    }
    return rc;
}

/* PEND_CONNECT: connect_uv's answer (it runs exactly once, also when the component stops:
 * the registrar and the endpoint cancel what they have; then pd->c is NULL) */
static void on_connected(int err, gni_ergo_conn *conn, void *ud)
{
    (void)conn; /* on_conn reports it up */
    ergo_pending *pd = ud;
    gni_ergo_comp *c = pd->c;
    bool reported = pd->reported;
    char node[256];
    snprintf(node, sizeof node, "%s", pd->node);
    pend_unlink(pd);
    gn_free(pd);
    if (!c || err == 0 || reported)
        return;
    comp_connect_failed(c, node, err,
                        err == GN_ENOTFOUND   ? "the registrar does not resolve the name"
                        : err == GN_ENOROUTE  ? "no static route and no registrar route"
                        : err == GN_ENOTSUP   ? "a route needs TLS and this build has none"
                                              : "no route could be dialled (see the TCP link log)");
}

static void connect_expired(gn_timer *t, void *arg)
{
    (void)t;
    ergo_pending *pd = arg;
    pd->reported = true; /* stays listed until connect_uv answers */
    comp_connect_failed(pd->c, pd->node, GN_ETIMEDOUT,
                        "no Ergo connection within ergo.open_timeout_ms");
}

#if GNI_HAVE_ERGO_ETCD
static int comp_etcd_resolve(void *ctx, const char *name, gni_reg_uv_resolve_cb cb, void *ud)
{
    return gni_etcd_uv_resolve(ctx, name, cb, ud);
}
#endif

/* ---- CHANNEL carrier ------------------------------------------------------------------- */

struct ergo_chan {
    gni_ergo_peer peer; /* the interface view; peer.carrier = this */
    gni_ergo_comp *c;   /* NULL once the component stopped */
    gn_stream *s;
    gn_loop *loop;
    gni_ergo_open *op;  /* until the peer's Introduce */
    gni_enp_splitter sp;
    gn_timer timer;
    gn_edf_dict *dict;
    gn_peer_id remote;
    bool initiator, opened, closing;
    bool want_writable;
    size_t queued; /* bytes written, not yet completed */
    char expect[256];
    ergo_chan *next;
};

typedef struct chan_write {
    ergo_chan *ch;
    size_t len;
} chan_write;

static void chan_on_closed(gn_stream *s, void *arg)
{
    (void)s;
    ergo_chan *ch = arg;
    gni_ergo_open_free(ch->op);
    gni_enp_splitter_fini(&ch->sp);
    gn_edf_dict_free(ch->dict);
    gn_free(ch);
}

static void chan_unlink(ergo_chan *ch)
{
    gni_ergo_comp *c = ch->c;
    if (!c)
        return;
    for (ergo_chan **pp = &c->chans; *pp; pp = &(*pp)->next)
        if (*pp == ch) {
            *pp = ch->next;
            c->nchans--;
            break;
        }
}

/* ends @ch: reports it (down, or a failed connect), then closes the stream */
static void chan_end(ergo_chan *ch, int err, const char *diag)
{
    if (ch->closing)
        return;
    ch->closing = true;
    gn_timer_stop(&ch->timer);
    gni_ergo_comp *c = ch->c;
    chan_unlink(ch);
    ch->c = NULL;
    if (c && ch->peer.up) {
        comp_peer_remove(c, &ch->peer, err);
    } else if (c && err) {
        if (ch->initiator)
            comp_connect_failed(c, ch->expect, err, diag);
        else
            GN_LOG(GN_LOG_NOTICE, ERGO_LOG, "%s: inbound /golem/ergo/1.0.0 stream refused: %s",
                   c->node, diag);
    }
    if (err && err != GN_EEOF)
        gn_stream_reset(ch->s, chan_on_closed, ch);
    else
        gn_stream_close(ch->s, chan_on_closed, ch);
}

static void chan_on_written(void *arg, int status)
{
    chan_write *w = arg;
    ergo_chan *ch = w->ch;
    ch->queued -= w->len;
    gn_free(w);
    if (status < 0 || ch->closing || !ch->c)
        return;
    if (ch->want_writable && ch->queued < ERGO_CHAN_WRITE_MAX / 2) {
        ch->want_writable = false;
        if (ch->peer.up && ch->c->hd.on_writable)
            ch->c->hd.on_writable(ch->c->hd_ud, &ch->peer);
    }
}

static int chan_write_bytes(ergo_chan *ch, const uint8_t *p, size_t len)
{
    if (ch->closing)
        return GN_ECLOSED;
    if (ch->queued > 0 && ch->queued + len > ERGO_CHAN_WRITE_MAX) {
        ch->want_writable = true;
        return GN_EAGAIN;
    }
    chan_write *w = gn_malloc(sizeof *w + len);
    if (!w)
        return GN_ENOMEM;
    w->ch = ch;
    w->len = len;
    memcpy(w + 1, p, len);
    gn_slice iov = gn_slice_of(w + 1, len);
    int rc = gn_stream_write(ch->s, &iov, 1, chan_on_written, w);
    if (rc < 0) {
        gn_free(w);
        if (rc == GN_EAGAIN)
            ch->want_writable = true;
        return rc;
    }
    ch->queued += len;
    return 0;
}

static int chan_send(gni_ergo_peer *p, uint64_t from_id, bool keep_order, const uint8_t *f,
                     size_t len)
{
    (void)from_id, (void)keep_order; /* one stream: every frame keeps its order */
    ergo_chan *ch = p->carrier;
    if (p->info.max_message_size && len > p->info.max_message_size)
        return GN_ETOOBIG;
    return chan_write_bytes(ch, f, len);
}

static unsigned chan_links(const gni_ergo_peer *p) { return p->up ? 1u : 0u; }

static void chan_close(gni_ergo_peer *p) { chan_end(p->carrier, 0, "closed"); }

static const gni_ergo_peer_ops chan_peer_ops = {
    .name = "channel", .send = chan_send, .links = chan_links, .close = chan_close,
};

/* the stream opened by the node with the smaller name wins a duplicate (both sides agree) */
static bool chan_opener_is_small(const ergo_chan *ch, const char *self)
{
    const char *opener = ch->initiator ? self : ch->peer.node;
    const char *other = ch->initiator ? ch->peer.node : self;
    return strcmp(opener, other) < 0;
}

/* the peer's Introduce arrived: bind the name, then the stream carries ENP */
static int chan_opened(ergo_chan *ch)
{
    gni_ergo_comp *c = ch->c;
    const gni_ergo_open_result *r = gni_ergo_open_result_get(ch->op);
    snprintf(ch->peer.node, sizeof ch->peer.node, "%.*s", (int)r->peer_node.len,
             (const char *)r->peer_node.base);
    gni_ergo_peer *old = comp_find(c, ch->peer.node);
    if (old) {
        ergo_chan *och = old->ops == &chan_peer_ops ? old->carrier : NULL;
        if (!och || !gn_peer_id_equal(&och->remote, &ch->remote)) {
            chan_end(ch, GN_EEXIST, "the name is bound to another peer or carrier");
            return GN_EEXIST;
        }
        /* two streams between the same two nodes: opened by both at once, the one the
         * smaller name opened wins (both sides agree); opened by the same side, the newer
         * wins (the old one is left over from a restart or a lost relay) */
        if (och->initiator != ch->initiator && !chan_opener_is_small(ch, c->node)) {
            chan_end(ch, GN_EEXIST, "duplicate stream (the other one wins)");
            return GN_EEXIST;
        }
        chan_end(och, GN_EEXIST, "duplicate stream (replaced by a newer one)");
        if (ch->closing || !ch->c)
            return GN_ECLOSED; /* a callback of the replaced stream stopped us */
    }
    uint64_t max = c->max_message_size > UINT32_MAX ? UINT32_MAX : c->max_message_size;
    int rc = gni_enp_splitter_init(&ch->sp, (uint32_t)max);
    if (rc == 0)
        rc = (ch->dict = gn_edf_dict_new()) ? 0 : GN_ENOMEM;
    if (rc == 0)
        rc = gni_ergo_open_peer_dict(ch->op, ch->dict);
    if (rc < 0) {
        chan_end(ch, rc, "cannot keep the peer's dictionaries");
        return rc;
    }
    ch->peer.ops = &chan_peer_ops;
    ch->peer.carrier = ch;
    ch->peer.info.carrier = GNI_ERGO_CARRIER_CHANNEL;
    ch->peer.info.flags = r->peer_flags;
    ch->peer.info.creation = r->peer_creation;
    ch->peer.info.max_message_size = r->peer_max_message_size;
    ch->peer.info.initiator = ch->initiator;
    ch->peer.info.peer_id = ch->remote;
    ch->peer.info.dict = ch->dict;
    ch->opened = true;
    gni_ergo_open_free(ch->op);
    ch->op = NULL;
    comp_peer_add(c, &ch->peer);
    return ch->closing ? GN_ECLOSED : 0;
}

static void chan_on_data(gn_stream *s, void *ud, const uint8_t *data, size_t len)
{
    (void)s;
    ergo_chan *ch = ud;
    size_t off = 0;
    if (ch->closing || !ch->c)
        return;
    if (ch->op) {
        int rc = gni_ergo_open_feed(ch->op, data, len, &off, gn_loop_now(ch->loop));
        if (rc < 0) {
            chan_end(ch, rc, gni_ergo_open_diag(ch->op));
            return;
        }
        if (!gni_ergo_open_done(ch->op))
            return;
        gn_timer_stop(&ch->timer);
        if (chan_opened(ch) < 0)
            return;
    }
    /* bounded: every pass consumes bytes or ends */
    while (off < len && !ch->closing && ch->c) {
        size_t used = 0;
        gn_slice frame;
        int rc = gni_enp_splitter_feed(&ch->sp, data + off, len - off, &used, &frame);
        off += used;
        if (rc < 0) {
            chan_end(ch, rc, gni_enp_splitter_diag(&ch->sp));
            return;
        }
        if (rc == 0)
            break;
        if (ch->c->hd.on_frame)
            ch->c->hd.on_frame(ch->c->hd_ud, &ch->peer, frame.base, frame.len);
    }
}

static void chan_on_eof(gn_stream *s, void *ud)
{
    (void)s;
    ergo_chan *ch = ud;
    int rc = ch->op ? gni_ergo_open_eof(ch->op) : GN_EEOF;
    chan_end(ch, rc ? rc : GN_EEOF, ch->op ? gni_ergo_open_diag(ch->op) : "the peer closed");
}

static void chan_on_error(gn_stream *s, void *ud, int err)
{
    (void)s;
    chan_end(ud, err, "stream error");
}

static void chan_on_writable(gn_stream *s, void *ud)
{
    (void)s;
    ergo_chan *ch = ud;
    if (ch->closing || !ch->c || !ch->want_writable || ch->queued >= ERGO_CHAN_WRITE_MAX / 2)
        return;
    ch->want_writable = false;
    if (ch->peer.up && ch->c->hd.on_writable)
        ch->c->hd.on_writable(ch->c->hd_ud, &ch->peer);
}

static const gn_stream_handler chan_handler = {
    .on_data = chan_on_data,
    .on_eof = chan_on_eof,
    .on_error = chan_on_error,
    .on_writable = chan_on_writable,
};

static void chan_expired(gn_timer *t, void *arg)
{
    (void)t;
    ergo_chan *ch = arg;
    if (ch->op && gni_ergo_open_expire(ch->op, gn_loop_now(ch->loop)) < 0)
        chan_end(ch, gni_ergo_open_error(ch->op), gni_ergo_open_diag(ch->op));
}

/* runs /golem/ergo/1.0.0 on @s (owned from now on) */
static void chan_start(gni_ergo_comp *c, gn_stream *s, const gn_peer_id *remote, bool initiator,
                       const char *expect)
{
    ergo_chan *ch = NULL;
    unsigned opening = 0; /* this peer's streams still in the opening exchange */
    for (ergo_chan *o = c->chans; o; o = o->next) /* bounded: ERGO_PEERS_MAX */
        opening += o->op && !o->closing && gn_peer_id_equal(&o->remote, remote);
    if (!c->running || c->nchans >= ERGO_PEERS_MAX || opening >= ERGO_OPENING_PER_PEER ||
        !(ch = gn_calloc(1, sizeof *ch))) {
        if (c->running)
            comp_connect_failed(c, expect, GN_ELIMIT,
                                opening >= ERGO_OPENING_PER_PEER
                                    ? "too many Ergo streams of this peer still opening"
                                    : "too many Ergo streams");
        gn_stream_reset(s, NULL, NULL);
        return;
    }
    ch->c = c;
    ch->s = s;
    ch->loop = c->loop;
    ch->remote = *remote;
    ch->initiator = initiator;
    snprintf(ch->expect, sizeof ch->expect, "%s", expect ? expect : "");
    gn_timer_init(c->loop, &ch->timer);
    ch->next = c->chans;
    c->chans = ch;
    c->nchans++;
    gn_stream_set_handler(s, &chan_handler, ch);
    gni_ergo_open_config oc;
    memset(&oc, 0, sizeof oc);
    oc.reg = c->reg;
    oc.node = gn_slice_of(c->node, strlen(c->node));
    oc.version[0] = gn_slice_of("golemnet", 8);
    oc.version[1] = gn_slice_of(GN_VERSION_STRING, strlen(GN_VERSION_STRING));
    oc.version[3] = gn_slice_of("MIT", 3);
    oc.flags = c->flags;
    oc.creation = c->creation;
    oc.max_message_size = c->max_message_size;
    oc.expect_peer = gn_slice_of(ch->expect, strlen(ch->expect));
    oc.timeout = c->open_timeout;
    gn_time now = gn_loop_now(c->loop);
    int rc = gni_ergo_open_new(&oc, now, &ch->op);
    if (rc == 0) {
        size_t n = gni_ergo_open_pending(ch->op);
        uint8_t *tmp = gn_malloc(n ? n : 1);
        rc = tmp ? 0 : GN_ENOMEM;
        if (rc == 0) {
            gn_buf b;
            gn_buf_init(&b, tmp, n);
            gni_ergo_open_drain(ch->op, &b);
            rc = chan_write_bytes(ch, tmp, gn_buf_len(&b));
            gn_free(tmp);
        }
    }
    if (rc == 0)
        rc = gn_timer_start(&ch->timer, gni_ergo_open_deadline(ch->op) - now, chan_expired, ch);
    if (rc == 0)
        rc = gn_stream_read_start(s);
    if (rc < 0)
        chan_end(ch, rc, "cannot start the opening exchange");
}

static void on_stream_opened(void *arg, int status, gn_channel *chn, gn_stream *s)
{
    (void)chn;
    ergo_pending *pd = arg;
    gni_ergo_comp *c = pd->c;
    pend_unlink(pd);
    if (!c || status < 0) {
        if (s)
            gn_stream_reset(s, NULL, NULL);
        if (c)
            comp_connect_failed(c, pd->node, status < 0 ? status : GN_ECLOSED,
                                "cannot open a /golem/ergo/1.0.0 stream to the peer");
        gn_free(pd);
        return;
    }
    gn_peer_id peer = pd->peer;
    char node[256];
    snprintf(node, sizeof node, "%s", pd->node);
    gn_free(pd);
    chan_start(c, s, &peer, true, node);
}

static void ergo_on_stream(gn_protocol *p, gn_stream *s, const gn_protocol_stream_info *info)
{
    chan_start(p->state, s, &info->remote_peer, false, NULL);
}

/* ---- registrar ------------------------------------------------------------------------- */

static void on_reg_role(gni_reg_uv *r, gni_reg_role role, void *ud)
{
    (void)r;
    gni_ergo_comp *c = ud;
    if (role == GNI_REG_ROLE_FAILED)
        GN_LOG(GN_LOG_ERR, ERGO_LOG,
               "ergo.node=%s: the name is taken at the registrar on port %u; the acceptor "
               "runs unregistered",
               c->node, (unsigned)c->registrar_port);
    else
        GN_LOG(GN_LOG_DEBUG, ERGO_LOG, "%s: registrar role %s", c->node,
               role == GNI_REG_ROLE_SERVER ? "server" : "client");
}

#if GNI_HAVE_ERGO_ETCD
static void on_etcd_state(gni_etcd_uv *e, gni_etcd_uv_state st, int err, const char *why,
                          void *ud)
{
    (void)e;
    gni_ergo_comp *c = ud;
    if (st == GNI_ETCD_UV_TAKEN)
        GN_LOG(GN_LOG_ERR, ERGO_LOG,
               "ergo.node=%s: the name is taken in etcd (ergo.etcd=%s, ergo.etcd_cluster=%s); "
               "the acceptor runs unregistered",
               c->node, c->etcd, c->etcd_cluster);
    else if (st == GNI_ETCD_UV_RETRYING)
        GN_LOG(GN_LOG_NOTICE, ERGO_LOG, "%s: etcd registrar at %s: %s (%s); retrying", c->node,
               c->etcd, why ? why : "", gn_err_name(err));
    else if (st == GNI_ETCD_UV_REGISTERED)
        GN_LOG(GN_LOG_DEBUG, ERGO_LOG, "%s: registered in etcd at %s", c->node, c->etcd);
}
#endif

/* ---- start / stop ---------------------------------------------------------------------- */

typedef struct ergo_closing {
    gn_edf_registry *reg;
    int left;
} ergo_closing;

static void ergo_closed_one(void *ud)
{
    ergo_closing *z = ud;
    if (--z->left == 0) {
        gn_edf_registry_free(z->reg);
        gn_free(z);
    }
}

static void loop_list_remove(gni_ergo_comp *c)
{
    gni_ergo_comp *head = gn_loop_get_local(c->loop, &ergo_loop_key);
    gni_ergo_comp **pp = &head;
    for (; *pp; pp = &(*pp)->next_on_loop)
        if (*pp == c) {
            *pp = c->next_on_loop;
            break;
        }
    gn_loop_set_local(c->loop, &ergo_loop_key, head);
    c->next_on_loop = NULL;
}

static void ergo_teardown(gni_ergo_comp *c)
{
    c->running = false;
    memset(&c->hd, 0, sizeof c->hd); /* no callbacks from here on */
    /* bounded: each pass removes one pending entry */
    while (c->pending) {
        ergo_pending *pd = c->pending;
        c->pending = pd->next;
        gn_timer_stop(&pd->timer);
        pd->c = NULL;
        if (pd->kind == PEND_STREAM)
            gn_op_cancel(pd->op); /* its callback frees it */
        else if (pd->kind == PEND_TCP)
            gn_free(pd);
        /* PEND_CONNECT: freed by its callback (the registrar and endpoint cancel on close) */
    }
    /* bounded: chan_end unlinks each stream */
    while (c->chans)
        chan_end(c->chans, 0, "stopping");
    ergo_closing *z = gn_calloc(1, sizeof *z);
    int left = (c->ep != NULL) + (c->ru != NULL) + comp_has_etcd(c);
    if (z && left) {
        z->reg = c->reg;
        z->left = left;
        c->reg = NULL;
    }
    /* registrars before the endpoint: their canceled resolves may still dial on it */
    if (c->ru)
        gni_reg_uv_close(c->ru, z && left ? ergo_closed_one : NULL, z);
#if GNI_HAVE_ERGO_ETCD
    if (c->eu) /* Ergo's Terminate: revoke the lease, the key goes at once */
        gni_etcd_uv_close(c->eu, true, z && left ? ergo_closed_one : NULL, z);
    c->eu = NULL;
#endif
    if (c->ep)
        gni_ergo_node_close(c->ep, z && left ? ergo_closed_one : NULL, z); /* downs first */
    if (!z || !left)
        gn_free(z);
    c->ru = NULL;
    c->ep = NULL;
    /* peers of the TCP carrier ended in the close above; channel peers in chan_end */
    gn_edf_registry_free(c->reg); /* NULL when the closes own it */
    c->reg = NULL;
    gni_routes_free(c->routes);
    c->routes = NULL;
    if (c->loop)
        loop_list_remove(c);
}

static int ergo_start(gn_protocol *p)
{
    gni_ergo_comp *c = p->state;
    memset(c, 0, sizeof *c);
    c->p = p;
    c->h = p->host;
    c->loop = p->loop;
    int rc = ergo_read_options(c);
    if (rc < 0) {
        gni_routes_free(c->routes);
        c->routes = NULL;
        return rc;
    }
    c->creation = (int64_t)time(NULL);
    c->reg = gn_edf_registry_new();
    if (!c->reg || gn_edf_registry_add_ergo(c->reg) < 0) {
        gn_edf_registry_free(c->reg);
        c->reg = NULL;
        return GN_ENOMEM;
    }
    /* the Ergo node layer registers the application's types before the freeze */
    if ((rc = gni_ergo_node_on_comp_start(c->h, c, c->reg)) < 0) {
        gn_edf_registry_free(c->reg);
        c->reg = NULL;
        return rc;
    }
    gn_edf_registry_freeze(c->reg);
    c->running = true;
    gni_ergo_comp *head = gn_loop_get_local(c->loop, &ergo_loop_key);
    c->next_on_loop = head;
    if ((rc = gn_loop_set_local(c->loop, &ergo_loop_key, c)) < 0) {
        c->next_on_loop = NULL;
        goto fail;
    }
    if (c->acceptor) {
        gni_ergo_options o;
        memset(&o, 0, sizeof o);
        o.reg = c->reg;
        o.node = c->node;
        o.cookie = c->cookie;
        o.host = c->host;
        o.port = c->port;
        o.port_range = c->port_range;
        o.flags = c->flags;
        o.max_message_size = c->max_message_size;
        o.pool_size = c->pool_size;
        o.creation = c->creation;
        o.cb.on_conn = tcp_on_conn;
        o.cb.on_frame = tcp_on_frame;
        o.cb.on_conn_down = tcp_on_down;
        o.cb.on_link_error = tcp_on_link_error;
        o.user_data = c;
        o.tls = c->tls;
        o.tls_cert_file = c->tls_cert[0] ? c->tls_cert : NULL;
        o.tls_key_file = c->tls_key[0] ? c->tls_key : NULL;
        o.tls_ca_file = c->tls_ca[0] ? c->tls_ca : NULL;
        o.tls_skip_verify = c->tls_skip_verify;
        o.tls_no_fingerprint = c->tls_no_fingerprint;
        rc = gni_ergo_node_new(gn_loop_uv(c->loop), &o, &c->ep);
        if (rc < 0) {
            if (c->tls && (rc == GN_EIO || rc == GN_EBADKEY || rc == GN_ECRYPTO ||
                           rc == GN_ENOTSUP))
                GN_LOG(GN_LOG_ERR, ERGO_LOG,
                       "ergo.tls=on, ergo.tls_cert=%s, ergo.tls_key=%s: %s", c->tls_cert,
                       c->tls_key,
                       rc == GN_EIO      ? "cannot read the PEM files"
                       : rc == GN_EBADKEY ? "the PEM files do not hold a matching key pair"
                       : rc == GN_ENOTSUP ? "this build has no TLS"
                                          : "cannot make a certificate");
            else if (rc == GN_EADDRINUSE)
                GN_LOG(GN_LOG_ERR, ERGO_LOG,
                       "ergo.port=%u, ergo.port_range=%u: every port in use on %s",
                       (unsigned)c->port, (unsigned)c->port_range, c->host);
            else
                GN_LOG(GN_LOG_ERR, ERGO_LOG, "ergo.host=%s, ergo.port=%u: cannot listen: %s",
                       c->host, (unsigned)c->port, gn_err_name(rc));
            c->ep = NULL;
            goto fail;
        }
        /* the route we register carries the acceptor's TLS flag (gen.Route.TLS) */
        c->route = gni_reg_route_ergo(gni_ergo_node_port(c->ep), gni_ergo_node_tls(c->ep));
#if GNI_HAVE_ERGO_ETCD
        if (c->registrar == ERGO_REG_ETCD) {
            gni_etcd_uv_options eo;
            memset(&eo, 0, sizeof eo);
            eo.reg = c->reg;
            eo.endpoint = c->etcd;
            eo.cluster = c->etcd_cluster;
            eo.node = c->node;
            eo.routes = &c->route;
            eo.nroutes = 1;
            eo.on_state = on_etcd_state;
            eo.user_data = c;
            rc = gni_etcd_uv_start(gn_loop_uv(c->loop), &eo, &c->eu);
            if (rc < 0) {
                GN_LOG(GN_LOG_ERR, ERGO_LOG, "ergo.etcd=%s, ergo.etcd_cluster=%s: cannot start: %s",
                       c->etcd, c->etcd_cluster, gn_err_name(rc));
                c->eu = NULL;
                goto fail;
            }
        }
#endif
        if (c->registrar == ERGO_REG_EMBEDDED) {
            gni_reg_uv_options ro;
            memset(&ro, 0, sizeof ro);
            ro.reg = c->reg;
            ro.node = c->node;
            ro.routes = &c->route;
            ro.nroutes = 1;
            ro.port = c->registrar_port;
            ro.on_role = on_reg_role;
            ro.user_data = c;
            rc = gni_reg_uv_start(gn_loop_uv(c->loop), &ro, &c->ru);
            if (rc < 0) {
                GN_LOG(GN_LOG_ERR, ERGO_LOG, "ergo.registrar_port=%u: cannot start: %s",
                       (unsigned)c->registrar_port, gn_err_name(rc));
                c->ru = NULL;
                goto fail;
            }
        }
        GN_LOG(GN_LOG_INFO, ERGO_LOG, "%s: Ergo acceptor on %s:%u", c->node, c->host,
               (unsigned)gni_ergo_node_port(c->ep));
    }
    return 0;
fail:
    ergo_teardown(c);
    return rc;
}

static void ergo_stop(gn_protocol *p)
{
    gni_ergo_comp *c = p->state;
    if (c->loop)
        ergo_teardown(c);
}

static void ergo_fini(gn_protocol *p)
{
    gni_ergo_comp *c = p->state;
    if (c->running)
        ergo_teardown(c);
}

static const gn_protocol_ops ergo_ops = {
    .abi = GN_PROTOCOL_ABI,
    .name = GNI_ERGO_PROTOCOL_ID,
    .flags = GN_LAYER_F_EXPLICIT_ONLY | GN_LAYER_F_LIMITED_OK,
    .state_size = sizeof(gni_ergo_comp),
    .fini = ergo_fini,
    .start = ergo_start,
    .stop = ergo_stop,
    .on_stream = ergo_on_stream,
};

int gn_protocol_ergo_register(gn_registry *reg);
int gn_protocol_ergo_register(gn_registry *reg)
{
    return gn_registry_add(reg, GN_LAYER_PROTOCOL, (const gn_layer_ops *)&ergo_ops);
}

/* ---- the internal interface (ergo_comp.h) ---------------------------------------------- */

gni_ergo_comp *gni_ergo_comp_of(gn_host *h)
{
    gn_loop *loop = h ? gn_host_loop(h) : NULL;
    if (!loop)
        return NULL;
    /* bounded: the running components on this loop */
    for (gni_ergo_comp *c = gn_loop_get_local(loop, &ergo_loop_key); c; c = c->next_on_loop)
        if (c->h == h && c->running)
            return c;
    return NULL;
}

void gni_ergo_comp_set_handler(gni_ergo_comp *c, const gni_ergo_handler *h, void *ud)
{
    if (!c)
        return;
    if (h)
        c->hd = *h;
    else
        memset(&c->hd, 0, sizeof c->hd);
    c->hd_ud = ud;
}

const char *gni_ergo_comp_node(const gni_ergo_comp *c) { return c ? c->node : ""; }

const gn_edf_registry *gni_ergo_comp_registry(const gni_ergo_comp *c) { return c ? c->reg : NULL; }

gni_ergo_node *gni_ergo_comp_endpoint(gni_ergo_comp *c) { return c ? c->ep : NULL; }

int64_t gni_ergo_comp_creation(const gni_ergo_comp *c) { return c ? c->creation : 0; }

uint64_t gni_ergo_comp_flags(const gni_ergo_comp *c) { return c ? c->flags : 0; }

uint16_t gni_ergo_comp_port(const gni_ergo_comp *c)
{
    return c && c->ep ? gni_ergo_node_port(c->ep) : 0;
}

static int comp_connect_check(gni_ergo_comp *c, const char *node)
{
    if (!c || !node || !gni_ehs_name_valid(gn_slice_of(node, strlen(node))))
        return GN_EINVAL;
    if (!c->running)
        return GN_ECLOSED;
    if (comp_find(c, node))
        return GN_EEXIST;
    return 0;
}

int gni_ergo_comp_connect(gni_ergo_comp *c, const char *node)
{
    int rc = comp_connect_check(c, node);
    if (rc < 0)
        return rc;
    if (!c->ep)
        return GN_EINVAL;
    if (!c->routes && !c->ru && !comp_has_etcd(c))
        return GN_ENOTSUP;
    ergo_pending *pd = pend_new(c, PEND_CONNECT, node);
    if (!pd)
        return GN_ENOMEM;
    uv_loop_t *uvl = gn_loop_uv(c->loop);
#if GNI_HAVE_ERGO_ETCD
    if (c->eu) {
        gni_ergo_resolver er = {.resolve = comp_etcd_resolve, .ctx = c->eu};
        rc = gni_ergo_connect_res(uvl, c->ep, c->routes, &er, node, on_connected, pd);
    } else
#endif
        rc = gni_ergo_connect(uvl, c->ep, c->routes, c->ru, node, on_connected, pd);
    if (rc == 0)
        gn_timer_start(&pd->timer, c->open_timeout, connect_expired, pd); /* a bound only */
    if (rc < 0) {
        pend_unlink(pd);
        gn_free(pd);
    }
    return rc;
}

int gni_ergo_comp_connect_addr(gni_ergo_comp *c, const char *node, const char *ip,
                               uint16_t port)
{
    int rc = comp_connect_check(c, node);
    if (rc < 0)
        return rc;
    if (!c->ep || !ip)
        return GN_EINVAL;
    return comp_dial_tcp(c, node, ip, port);
}

int gni_ergo_comp_connect_peer(gni_ergo_comp *c, const gn_peer_id *peer, const char *node)
{
    if (!c || !peer)
        return GN_EINVAL;
    if (node) {
        int rc = comp_connect_check(c, node);
        if (rc < 0)
            return rc;
    } else if (!c->running) {
        return GN_ECLOSED;
    }
    ergo_pending *pd = pend_new(c, PEND_STREAM, node);
    if (!pd)
        return GN_ENOMEM;
    pd->peer = *peer;
    int rc = gn_host_new_stream_ex(c->h, peer, GNI_ERGO_PROTOCOL_ID, GN_HOST_STREAM_LIMITED_OK,
                                   on_stream_opened, pd, &pd->op);
    if (rc < 0) {
        pend_unlink(pd);
        gn_free(pd);
    }
    return rc;
}

gni_ergo_peer *gni_ergo_comp_find(gni_ergo_comp *c, const char *node)
{
    return c && node ? comp_find(c, node) : NULL;
}

int gni_ergo_comp_send(gni_ergo_comp *c, const char *node, uint64_t from_id, bool keep_order,
                       const uint8_t *frame, size_t len)
{
    gni_ergo_peer *p = gni_ergo_comp_find(c, node);
    if (!p)
        return c && node ? GN_ENOTFOUND : GN_EINVAL;
    return gni_ergo_peer_send(p, from_id, keep_order, frame, len);
}

int gni_ergo_peer_send(gni_ergo_peer *p, uint64_t from_id, bool keep_order,
                       const uint8_t *frame, size_t len)
{
    if (!p || !frame || len < GNI_ENP_HEADER_LEN || gni_enp_get32(frame + 2) != len)
        return GN_EINVAL;
    if (!p->up)
        return GN_ECLOSED;
    return p->ops->send(p, from_id, keep_order, frame, len);
}

const gni_ergo_peer_info *gni_ergo_peer_get_info(const gni_ergo_peer *p)
{
    return p ? &p->info : NULL;
}

unsigned gni_ergo_peer_links(const gni_ergo_peer *p) { return p && p->up ? p->ops->links(p) : 0; }

void gni_ergo_peer_close(gni_ergo_peer *p)
{
    if (p && p->up)
        p->ops->close(p);
}
