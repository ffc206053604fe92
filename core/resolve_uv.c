/*
 * golemnet - DNS multiaddr resolver: the c-ares + libuv adapter.
 *
 * Spec and contract: include/golemnet/resolve.h; /dnsaddr bookkeeping is the
 * sans-I/O core/dnsaddr.c. c-ares reports the sockets it wants watched
 * through its socket-state callback: each gets a uv_poll handle; one loop
 * timer follows ares_timeout(). c-ares may run a query callback inside the
 * call that started the query (a hosts-file hit, an immediate error), so
 * completions are always deferred to a later loop turn (no re-entry).
 *
 * Ownership: a request holds its query contexts on a list; cancelling it
 * detaches them (ctx->req = NULL) and the ares callbacks then only free the
 * context. The resolver is freed once ares_destroy() ran and every poll
 * handle finished closing.
 *
 * Thread context: loop thread only.
 */
#include "golemnet/resolve.h"

#include "golemnet/err.h"
#include "golemnet/log.h"
#include "gni.h"
#include "gni_dnsaddr.h"

#include <ares.h>
#include <stdio.h>
#include <string.h>
#include <uv.h> /* sockaddr_in{,6}, AF_INET*: POSIX or Winsock headers */

#define RS_LOG "dns"
/* The query's class and type (RFC 1035 3.2.4 CLASS IN, 3.2.2 TYPE TXT),
 * defined here: ares_nameser.h is public only from c-ares 1.18 (meson.build
 * accepts 1.16) and arpa/nameser.h is not on Windows. */
#define RS_CLASS_IN 1
#define RS_TYPE_TXT 16
#define RS_DETAIL_MAX 320

typedef struct rs_poll {
    uv_poll_t h;
    ares_socket_t fd;
    struct gn_resolver *r;
    gni_list link;
} rs_poll;

typedef struct rs_req rs_req;

/* One ares query in flight; freed in its callback. */
typedef struct rs_ctx {
    gni_list link; /* in the request's ctxs while attached */
    rs_req *req;   /* NULL once the request is gone */
    bool txt;      /* TXT for the dnsaddr walk, else addresses */
    uint32_t id;   /* walk query id (txt) */
    gn_multiaddr *src; /* the /dns* address looked up (addresses) */
    char name[GNI_DNSADDR_NAME_MAX];
} rs_ctx;

struct rs_req {
    gn_op op; /* first: gn_op_cancel() */
    gni_list link;
    gn_resolver *r;
    gn_resolve_cb cb;
    void *arg;
    gn_multiaddr *ma;
    gn_multiaddr *tail; /* "/p2p-circuit/..." appended to each result, or NULL */
    bool walking; /* a dnsaddr walk is in w */
    gni_dnsaddr *w;
    gni_list ctxs;
    size_t outstanding;
    gn_multiaddr *out[GNI_DNSADDR_MAX_RESULTS];
    size_t nout, dropped;
    int err; /* first failure, for when nothing resolves */
    char detail[RS_DETAIL_MAX];  /* the address asked for (a success's detail) */
    char errtext[RS_DETAIL_MAX]; /* the first failure in words, or "" */
    bool finishing; /* the completion is deferred */
    bool in_step;   /* rs_step runs: a nested call (a query answered at once) returns */
    int final_status;
    gn_timer deadline; /* the whole resolution's bound (cfg.deadline_ms) */
};

struct gn_resolver {
    gn_loop *loop;
    ares_channel ch;
    bool have_ch;
    gn_timer timer;
    gn_resolver_config cfg;
    gni_list polls;
    gni_list reqs;
    size_t closing_handles;
    bool closing;
};

/* -------------------------------------------------------------- handles */

static void rs_maybe_free(gn_resolver *r)
{
    if (r->closing && r->closing_handles == 0 && gni_list_empty(&r->polls))
        gn_free(r);
}

static void rs_poll_closed(uv_handle_t *h)
{
    rs_poll *p = h->data;
    gn_resolver *r = p->r;
    gn_free(p);
    r->closing_handles--;
    rs_maybe_free(r);
}

static void rs_poll_close(rs_poll *p)
{
    gni_list_del(&p->link);
    p->r->closing_handles++;
    uv_poll_stop(&p->h);
    uv_close((uv_handle_t *)&p->h, rs_poll_closed);
}

/* c-ares' process-wide setup, once (ares_library_init is not thread-safe;
 * on Windows ares_init_options fails with ARES_ENOTINITIALIZED without it,
 * elsewhere it is a no-op). Never cleaned up: resolvers come and go for the
 * life of the process. */
static uv_once_t rs_lib_once = UV_ONCE_INIT;
static int rs_lib_rc;

static void rs_library_init_once(void)
{
    rs_lib_rc = ares_library_init(ARES_LIB_INIT_ALL);
}

static int rs_library_init(void)
{
    uv_once(&rs_lib_once, rs_library_init_once);
    return rs_lib_rc;
}

static void rs_timer_update(gn_resolver *r);

static void rs_poll_cb(uv_poll_t *h, int status, int events)
{
    rs_poll *p = h->data;
    gn_resolver *r = p->r;
    ares_socket_t rfd = ARES_SOCKET_BAD, wfd = ARES_SOCKET_BAD;
    if (status < 0 || (events & UV_READABLE))
        rfd = p->fd;
    if (status < 0 || (events & UV_WRITABLE))
        wfd = p->fd;
    ares_process_fd(r->ch, rfd, wfd); /* may close @p through the state callback */
    rs_timer_update(r);
}

static void rs_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    gn_resolver *r = data;
    rs_poll *p = NULL;
    for (gni_list *e = r->polls.next; e != &r->polls; e = e->next) {
        rs_poll *x = GNI_CONTAINER_OF(e, rs_poll, link);
        if (x->fd == fd) {
            p = x;
            break;
        }
    }
    if (!readable && !writable) {
        if (p)
            rs_poll_close(p);
        return;
    }
    if (!p) {
        p = gn_calloc(1, sizeof *p);
        if (!p) {
            GN_LOG(GN_LOG_ERR, RS_LOG, "out of memory watching a DNS socket");
            return; /* the query times out */
        }
        p->fd = fd;
        p->r = r;
        p->h.data = p;
        int rc = uv_poll_init_socket(gn_loop_uv(r->loop), &p->h, fd);
        if (rc < 0) {
            GN_LOG(GN_LOG_ERR, RS_LOG, "uv_poll_init_socket: %s", uv_strerror(rc));
            gn_free(p);
            return;
        }
        gni_list_add_tail(&r->polls, &p->link);
    }
    int rc = uv_poll_start(&p->h, (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0),
                           rs_poll_cb);
    if (rc < 0)
        GN_LOG(GN_LOG_ERR, RS_LOG, "uv_poll_start: %s", uv_strerror(rc));
}

static void rs_timer_cb(gn_timer *t, void *arg)
{
    (void)t;
    gn_resolver *r = arg;
    ares_process_fd(r->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    rs_timer_update(r);
}

static void rs_timer_update(gn_resolver *r)
{
    if (r->closing || !r->have_ch)
        return;
    struct timeval tv;
    if (ares_timeout(r->ch, NULL, &tv) == NULL) {
        gn_timer_stop(&r->timer);
        return;
    }
    gn_time d = (gn_time)tv.tv_sec * GN_S + (gn_time)tv.tv_usec * 1000 + GN_MS;
    (void)gn_timer_start(&r->timer, d, rs_timer_cb, r);
}

/* ------------------------------------------------------------ resolver */

void gn_resolver_config_default(gn_resolver_config *cfg)
{
    if (!cfg)
        return;
    memset(cfg, 0, sizeof *cfg);
    cfg->timeout_ms = 2000;
    cfg->tries = 2;
    cfg->max_depth = 4;
    cfg->max_lookups = 32;
    cfg->max_results = 32;
    cfg->deadline_ms = 10000;
}

int gn_resolver_new(gn_loop *loop, const gn_resolver_config *cfg, gn_resolver **out)
{
    gn_resolver_config def;
    if (!loop || !out)
        return GN_EINVAL;
    if (!cfg) {
        gn_resolver_config_default(&def);
        cfg = &def;
    }
    if (cfg->timeout_ms < 1 || cfg->timeout_ms > 60000 || cfg->tries < 1 || cfg->tries > 10 ||
        cfg->max_depth > GNI_DNSADDR_MAX_DEPTH || cfg->max_lookups < 1 ||
        cfg->max_lookups > GNI_DNSADDR_MAX_LOOKUPS || cfg->max_results < 1 ||
        cfg->max_results > GNI_DNSADDR_MAX_RESULTS || cfg->deadline_ms < 1 ||
        cfg->deadline_ms > 600000)
        return GN_EINVAL;
    gn_resolver *r = gn_calloc(1, sizeof *r);
    if (!r)
        return GN_ENOMEM;
    r->loop = loop;
    r->cfg = *cfg;
    r->cfg.servers = NULL; /* not kept */
    gni_list_init(&r->polls);
    gni_list_init(&r->reqs);
    gn_timer_init(loop, &r->timer);
    struct ares_options o;
    memset(&o, 0, sizeof o);
    o.sock_state_cb = rs_sock_state;
    o.sock_state_cb_data = r;
    o.timeout = (int)cfg->timeout_ms;
    o.tries = (int)cfg->tries;
    int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
    int rc = rs_library_init();
    if (rc == ARES_SUCCESS) {
        rc = ares_init_options(&r->ch, &o, mask);
    }
    if (rc != ARES_SUCCESS) {
        GN_LOG(GN_LOG_ERR, RS_LOG, "ares_init_options: %s", ares_strerror(rc));
        gn_free(r);
        return rc == ARES_ENOMEM ? GN_ENOMEM : GN_EIO;
    }
    r->have_ch = true;
    if (cfg->servers && cfg->servers[0]) {
        rc = ares_set_servers_ports_csv(r->ch, cfg->servers);
        if (rc != ARES_SUCCESS) {
            GN_LOG(GN_LOG_ERR, RS_LOG, "dns servers '%s': %s", cfg->servers, ares_strerror(rc));
            ares_destroy(r->ch);
            gn_free(r);
            return rc == ARES_ENOMEM ? GN_ENOMEM : GN_EINVAL;
        }
    }
    *out = r;
    return 0;
}

bool gn_resolver_needed(const gn_multiaddr *ma)
{
    gn_ma_component c;
    if (!ma || gn_multiaddr_component(ma, 0, &c) < 0)
        return false;
    return c.code == GN_MA_DNS || c.code == GN_MA_DNS4 || c.code == GN_MA_DNS6 ||
           c.code == GN_MA_DNSADDR;
}

/* ------------------------------------------------------------ requests */

static void rs_req_free(rs_req *q)
{
    gn_timer_stop(&q->deadline);
    for (size_t i = 0; i < q->nout; i++)
        gn_multiaddr_free(q->out[i]);
    while (!gni_list_empty(&q->ctxs)) {
        rs_ctx *c = GNI_CONTAINER_OF(q->ctxs.next, rs_ctx, link);
        gni_list_del(&c->link);
        c->req = NULL; /* its ares callback frees it */
    }
    if (q->w) {
        gni_dnsaddr_fini(q->w);
        gn_free(q->w);
    }
    gn_multiaddr_free(q->ma);
    gn_multiaddr_free(q->tail);
    gn_free(q);
}

static void rs_finish_cb(gn_loop *loop, void *arg)
{
    (void)loop;
    rs_req *q = arg;
    if (gni_list_on(&q->link))
        gni_list_del(&q->link);
    int st = q->final_status;
    if (st == 0 && q->nout == 0)
        st = q->err ? q->err : GN_ERESOLVE;
    if (st == 0 && q->dropped > 0)
        GN_LOG(GN_LOG_INFO, RS_LOG, "%s: %zu addresses over max_results dropped", q->detail,
               q->dropped);
    if (st != 0) {
        const char *why = q->errtext[0] ? q->errtext : q->detail;
        GN_LOG(GN_LOG_INFO, RS_LOG, "resolution failed: %s (%s)", why, gn_err_name(st));
        q->cb(q->arg, st, NULL, 0, why);
    } else {
        if (q->errtext[0])
            GN_LOG(GN_LOG_INFO, RS_LOG, "%s: resolved, though %s", q->detail, q->errtext);
        q->cb(q->arg, 0, q->out, q->nout, q->detail);
    }
    rs_req_free(q);
}

/* Schedules the completion with @status (0: whatever resolved). */
static void rs_finish(rs_req *q, int status)
{
    if (q->finishing)
        return;
    q->finishing = true;
    q->final_status = status;
    gn_timer_stop(&q->deadline);
    /* detach the queries still in flight: their callbacks only free themselves */
    while (!gni_list_empty(&q->ctxs)) {
        rs_ctx *c = GNI_CONTAINER_OF(q->ctxs.next, rs_ctx, link);
        gni_list_del(&c->link);
        c->req = NULL;
    }
    if (gn_loop_defer(q->r ? q->r->loop : NULL, rs_finish_cb, q) < 0) {
        /* no memory for the deferral, or the loop is closing: report now
         * (the documented exception to "never inside gn_resolve()") */
        rs_finish_cb(NULL, q);
    }
}

static void rs_note_err(rs_req *q, int err, const char *name, const char *what)
{
    if (q->err == 0) {
        q->err = err;
        snprintf(q->errtext, sizeof q->errtext, "%.200s: %.100s", name, what);
    }
}

/* A gn_err and words for an ares status. */
static int rs_map(int st, const char **what)
{
    switch (st) {
    case ARES_ENOTFOUND:
        *what = "NXDOMAIN (domain name not found)";
        return GN_ERESOLVE;
    case ARES_ENODATA:
        *what = "no record of the asked type";
        return GN_ERESOLVE;
    case ARES_ETIMEOUT:
        *what = "timeout (no DNS server answered)";
        return GN_ETIMEDOUT;
    case ARES_ENOMEM:
        *what = "out of memory";
        return GN_ENOMEM;
    case ARES_ECANCELLED:
    case ARES_EDESTRUCTION:
        *what = "cancelled";
        return GN_ECANCELED;
    default:
        *what = ares_strerror(st);
        return GN_EIO;
    }
}

static void rs_add_out(rs_req *q, gn_multiaddr *ma)
{
    if (q->tail) {
        /* a relayed address: the relay's part was resolved, the rest follows */
        gn_multiaddr *full = NULL;
        int rc = gn_multiaddr_encapsulate(ma, q->tail, &full);
        gn_multiaddr_free(ma);
        if (rc < 0) {
            q->dropped++;
            return;
        }
        ma = full;
    }
    for (size_t i = 0; i < q->nout; i++) {
        if (gn_multiaddr_equal(q->out[i], ma)) {
            gn_multiaddr_free(ma);
            return;
        }
    }
    if (q->nout >= q->r->cfg.max_results) {
        q->dropped++;
        gn_multiaddr_free(ma);
        return;
    }
    q->out[q->nout++] = ma;
}

static rs_ctx *rs_ctx_new(rs_req *q, const char *name)
{
    rs_ctx *c = gn_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->req = q;
    snprintf(c->name, sizeof c->name, "%s", name);
    gni_list_add_tail(&q->ctxs, &c->link);
    q->outstanding++;
    return c;
}

/* Ends the context of an ares callback; returns its request (or NULL). */
static rs_req *rs_ctx_end(rs_ctx *c)
{
    rs_req *q = c->req;
    if (q) {
        gni_list_del(&c->link);
        q->outstanding--;
    }
    gn_multiaddr_free(c->src);
    gn_free(c);
    return q;
}

static void rs_step(rs_req *q);
static void rs_step_send(rs_req *q);

static void rs_addr_cb(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    (void)timeouts;
    rs_ctx *c = arg;
    rs_req *q = c->req;
    if (q) {
        if (status != ARES_SUCCESS) {
            const char *what;
            int e = rs_map(status, &what);
            rs_note_err(q, e, c->name, what);
        } else {
            for (struct ares_addrinfo_node *n = res ? res->nodes : NULL; n; n = n->ai_next) {
                gn_multiaddr *ma = NULL;
                int rc = GN_EINVAL;
                if (n->ai_family == AF_INET && n->ai_addrlen >= sizeof(struct sockaddr_in)) {
                    const struct sockaddr_in *s4 = (const struct sockaddr_in *)n->ai_addr;
                    rc = gni_dns_substitute(c->src, (const uint8_t *)&s4->sin_addr, 4, &ma);
                } else if (n->ai_family == AF_INET6 &&
                           n->ai_addrlen >= sizeof(struct sockaddr_in6)) {
                    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)n->ai_addr;
                    rc = gni_dns_substitute(c->src, (const uint8_t *)&s6->sin6_addr, 16, &ma);
                }
                if (rc == 0)
                    rs_add_out(q, ma);
            }
            if (!res || !res->nodes)
                rs_note_err(q, GN_ERESOLVE, c->name, "no address of the asked family");
        }
    }
    if (res)
        ares_freeaddrinfo(res);
    q = rs_ctx_end(c);
    if (q)
        rs_step(q);
}

/* Looks up the addresses of the /dns* address @ma (taken). */
static void rs_lookup_addr(rs_req *q, gn_multiaddr *ma)
{
    gn_ma_component c;
    if (gn_multiaddr_component(ma, 0, &c) < 0) {
        gn_multiaddr_free(ma);
        return;
    }
    char host[256];
    memcpy(host, c.value, c.value_len); /* 1..255 bytes, no NUL (multiaddr rule) */
    host[c.value_len] = '\0';
    rs_ctx *x = rs_ctx_new(q, host);
    if (!x) {
        gn_multiaddr_free(ma);
        rs_note_err(q, GN_ENOMEM, host, "out of memory");
        return;
    }
    x->src = ma;
    struct ares_addrinfo_hints h;
    memset(&h, 0, sizeof h);
    h.ai_family = c.code == GN_MA_DNS4 ? AF_INET : c.code == GN_MA_DNS6 ? AF_INET6 : AF_UNSPEC;
    h.ai_socktype = SOCK_STREAM; /* one entry per address */
    ares_getaddrinfo(q->r->ch, host, NULL, &h, rs_addr_cb, x); /* may call back at once */
}

static void rs_txt_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    rs_ctx *c = arg;
    rs_req *q = c->req;
    if (q) {
        if (status != ARES_SUCCESS) {
            const char *what;
            int e = rs_map(status, &what);
            rs_note_err(q, e, c->name, what);
            (void)gni_dnsaddr_feed(q->w, c->id, e, NULL, 0);
        } else {
            struct ares_txt_ext *txt = NULL;
            int prc = ares_parse_txt_reply_ext(abuf, alen, &txt);
            if (prc != ARES_SUCCESS) {
                const char *what;
                int e = rs_map(prc, &what);
                rs_note_err(q, e, c->name, what);
                (void)gni_dnsaddr_feed(q->w, c->id, e, NULL, 0);
            } else {
                /* join each record's character-strings (their total is below
                 * @alen); at most RS_MAX_REC records, longer ones skipped */
                enum { RS_MAX_REC = 64 };
                gn_slice recs[RS_MAX_REC];
                uint8_t *bufs = gn_malloc(alen > 0 ? (size_t)alen : 1);
                size_t nrec = 0, used = 0;
                for (struct ares_txt_ext *t = txt; bufs && t; t = t->next) {
                    if (t->record_start) {
                        if (nrec == RS_MAX_REC)
                            break;
                        recs[nrec++] = gn_slice_of(bufs + used, 0);
                    }
                    if (nrec == 0 || t->length > (size_t)alen - used)
                        continue;
                    memcpy(bufs + used, t->txt, t->length);
                    used += t->length;
                    recs[nrec - 1].len += t->length;
                }
                int frc = bufs ? gni_dnsaddr_feed(q->w, c->id, 0, recs, nrec)
                               : gni_dnsaddr_feed(q->w, c->id, GN_ENOMEM, NULL, 0);
                if (frc == GN_ENOMEM || !bufs)
                    rs_note_err(q, GN_ENOMEM, c->name, "out of memory");
                gn_free(bufs);
                ares_free_data(txt);
            }
        }
    }
    q = rs_ctx_end(c);
    if (q)
        rs_step(q);
}

/* Sends what the walk asks for; when all is in, resolves /dns* results and finishes. */
static void rs_step(rs_req *q)
{
    /* a query answered inside ares_query()/ares_getaddrinfo() (hosts file,
     * cache, immediate error) calls back into here: the outer call goes on
     * sending and decides once, at its end, whether all is in */
    if (q->finishing || q->in_step)
        return;
    q->in_step = true;
    rs_step_send(q);
    q->in_step = false;
    if (q->finishing)
        return;
    if (q->walking && (q->outstanding > 0 || !gni_dnsaddr_done(q->w))) {
        rs_timer_update(q->r);
        return;
    }
    if (q->outstanding == 0)
        rs_finish(q, 0);
    else
        rs_timer_update(q->r);
}

/* rs_step's work: the walk's next queries and, once it is complete, the
 * lookups of its /dns* results. Callbacks inside return at once (in_step). */
static void rs_step_send(rs_req *q)
{
    /* a TXT answer given inside ares_query() queues further names: the
     * loop picks them up; the walk ends when none is waiting or in flight */
    if (q->walking) {
        const char *name;
        uint32_t id;
        while (gni_dnsaddr_next(q->w, &name, &id) == 1) {
            rs_ctx *x = rs_ctx_new(q, name);
            if (!x) {
                rs_note_err(q, GN_ENOMEM, name, "out of memory");
                (void)gni_dnsaddr_feed(q->w, id, GN_ENOMEM, NULL, 0);
                continue;
            }
            x->txt = true;
            x->id = id;
            ares_query(q->r->ch, name, RS_CLASS_IN, RS_TYPE_TXT, rs_txt_cb, x); /* may call back */
            if (q->finishing)
                return;
        }
        if (q->outstanding > 0 || !gni_dnsaddr_done(q->w))
            return;
        q->walking = false;
        if (q->w->dropped || q->w->repeated)
            GN_LOG(GN_LOG_INFO, RS_LOG,
                   "dnsaddr %s: %zu entries over the bounds, %zu names already queried",
                   q->w->q[0].name, q->w->dropped, q->w->repeated);
        gn_multiaddr *res[GNI_DNSADDR_MAX_RESULTS];
        size_t n = gni_dnsaddr_take(q->w, res, GNI_DNSADDR_MAX_RESULTS);
        if (n == 0 && q->err == 0)
            rs_note_err(q, GN_ERESOLVE, q->w->q[0].name,
                        "no dnsaddr entry matched (none, or none ending with the address's suffix)");
        for (size_t i = 0; i < n; i++) {
            if (gn_resolver_needed(res[i])) {
                gn_ma_component c;
                if (gn_multiaddr_component(res[i], 0, &c) == 0 && c.code == GN_MA_DNSADDR) {
                    gn_multiaddr_free(res[i]); /* deeper than max_depth: cannot happen */
                    continue;
                }
                rs_lookup_addr(q, res[i]); /* may call back: rs_step returns (in_step) */
            } else {
                rs_add_out(q, res[i]);
            }
        }
        return;
    }
}

/*
 * Splits @ma before its first /p2p-circuit: *@head the part before, *@tail
 * the rest; both NULL when there is none (or it comes first). 0 or GN_ENOMEM.
 */
static int rs_split_circuit(const gn_multiaddr *ma, gn_multiaddr **head, gn_multiaddr **tail)
{
    *head = *tail = NULL;
    gn_slice all = gn_multiaddr_bytes(ma);
    for (size_t i = 1; i < gn_multiaddr_count(ma); i++) {
        gn_ma_component c, prev;
        if (gn_multiaddr_component(ma, i, &c) < 0 || c.code != GN_MA_P2P_CIRCUIT ||
            gn_multiaddr_component(ma, i - 1, &prev) < 0)
            continue;
        size_t off = (size_t)(prev.value + prev.value_len - all.base);
        if (gn_multiaddr_from_bytes(all.base, off, head) < 0 ||
            gn_multiaddr_from_bytes(all.base + off, all.len - off, tail) < 0) {
            gn_multiaddr_free(*head);
            *head = NULL;
            return GN_ENOMEM;
        }
        return 0;
    }
    return 0;
}

static void rs_deadline_cb(gn_timer *t, void *arg)
{
    (void)t;
    rs_req *q = arg;
    snprintf(q->errtext, sizeof q->errtext,
             "%.250s: not resolved within %u ms (the resolution's deadline)", q->detail,
             (unsigned)q->r->cfg.deadline_ms);
    rs_finish(q, GN_ETIMEDOUT);
}

static void rs_cancel(gn_op *op)
{
    rs_req *q = (rs_req *)op;
    if (!q->finishing)
        rs_finish(q, GN_ECANCELED);
}

int gn_resolve(gn_resolver *r, const gn_multiaddr *ma, gn_resolve_cb cb, void *arg, gn_op **op)
{
    if (op)
        *op = NULL;
    if (!r || !ma || !cb)
        return GN_EINVAL;
    if (r->closing)
        return GN_ECLOSED;
    rs_req *q = gn_calloc(1, sizeof *q);
    if (!q)
        return GN_ENOMEM;
    q->op.cancel = rs_cancel;
    q->r = r;
    q->cb = cb;
    q->arg = arg;
    gni_list_init(&q->ctxs);
    gn_timer_init(r->loop, &q->deadline);
    if (gn_multiaddr_dup(ma, &q->ma) < 0) {
        gn_free(q);
        return GN_ENOMEM;
    }
    char text[GN_MA_MAX_STRLEN];
    if (gn_multiaddr_to_string(ma, text, sizeof text) < 0)
        text[0] = '\0';
    snprintf(q->detail, sizeof q->detail, "%.300s", text);
    gni_list_add_tail(&r->reqs, &q->link);
    if (gn_resolver_needed(ma))
        (void)gn_timer_start(&q->deadline, (gn_time)r->cfg.deadline_ms * GN_MS, rs_deadline_cb, q);
    gn_ma_component c;
    (void)gn_multiaddr_component(ma, 0, &c);
    /* /dns.../p2p/<relay>/p2p-circuit/...: resolve the relay's part only
     * (its /dnsaddr suffix is the relay's /p2p), then append the rest */
    gn_multiaddr *head = NULL;
    if (gn_resolver_needed(ma) && rs_split_circuit(ma, &head, &q->tail) < 0) {
        rs_finish(q, GN_ENOMEM);
        goto out;
    }
    if (head)
        ma = head;
    if (!gn_resolver_needed(ma)) {
        gn_multiaddr *d = NULL;
        if (gn_multiaddr_dup(ma, &d) < 0) {
            rs_finish(q, GN_ENOMEM);
        } else {
            rs_add_out(q, d);
            rs_finish(q, 0);
        }
    } else if (c.code == GN_MA_DNSADDR) {
        gni_dnsaddr_limits lim = {r->cfg.max_depth, r->cfg.max_lookups, r->cfg.max_results};
        q->w = gn_malloc(sizeof *q->w);
        int rc = q->w ? gni_dnsaddr_init(q->w, ma, &lim) : GN_ENOMEM;
        if (rc < 0) {
            rs_finish(q, rc);
        } else {
            q->walking = true;
            rs_step(q);
        }
    } else {
        gn_multiaddr *d = NULL;
        if (gn_multiaddr_dup(ma, &d) < 0) {
            rs_finish(q, GN_ENOMEM);
        } else {
            rs_lookup_addr(q, d);
            rs_step(q);
        }
    }
out:
    gn_multiaddr_free(head);
    if (op && !q->finishing)
        *op = &q->op;
    return 0;
}

void gn_resolver_free(gn_resolver *r)
{
    if (!r || r->closing)
        return;
    r->closing = true;
    gn_timer_stop(&r->timer);
    /* every pending request completes with GN_ECANCELED, later */
    for (gni_list *e = r->reqs.next; e != &r->reqs;) {
        rs_req *q = GNI_CONTAINER_OF(e, rs_req, link);
        e = e->next;
        gni_list_del(&q->link);
        rs_finish(q, GN_ECANCELED);
    }
    /* queries still in flight end with ARES_EDESTRUCTION; their contexts
     * are detached, so the callbacks only free them; sockets close through
     * the state callback */
    ares_destroy(r->ch);
    r->have_ch = false;
    while (!gni_list_empty(&r->polls))
        rs_poll_close(GNI_CONTAINER_OF(r->polls.next, rs_poll, link));
    rs_maybe_free(r);
}
