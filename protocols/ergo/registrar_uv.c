/*
 * Ergo's embedded registrar on libuv: binds or registers as the failover
 * core says, serves the table, resolves over UDP (ergo-wire.md a).
 * Contract: registrar_uv.h. All decisions are in registrar.c.
 */
#include "registrar_uv.h"

#include <stdio.h>
#include <string.h>

#include "gni.h"
#include "golemnet/err.h"
#include "golemnet/log.h"

typedef struct reg_h reg_h; /* one heap-allocated uv handle */

struct gni_reg_uv {
    uv_loop_t *loop;
    gni_reg_uv_options o;
    gni_reg_failover f;
    gni_reg_server *srv;
    gn_edf_arena *arena;
    uv_timer_t timer;
    reg_h *listener, *udp;  /* server */
    reg_h *lease;           /* client: the registration link */
    reg_h *all;             /* every open handle but the timer */
    uint64_t next_lease;
    int open;               /* handles not yet closed (timer included) */
    bool closing;
    void (*close_cb)(void *);
    void *close_ud;
};

enum { RH_LISTENER, RH_UDP, RH_SRV_CONN, RH_CLIENT, RH_RESOLVE_UDP, RH_RESOLVE_TIMER };

struct reg_h {
    union {
        uv_handle_t h;
        uv_tcp_t tcp;
        uv_udp_t udp;
        uv_timer_t timer;
    } u;
    gni_reg_uv *r;
    int kind;
    bool closing, got_first, registered;
    uint64_t lease;
    uv_connect_t creq;
    uint8_t buf[GNI_REG_CLIENT_TCP_READ];
    size_t have;
    /* resolve */
    reg_h *peer; /* the other handle of a resolve (udp <-> timer) */
    gni_reg_uv_resolve_cb cb;
    void *cb_ud;
    bool done;
    struct sockaddr_storage dest; /* resolve: replies come only from here */
    gn_time deadline; /* server conn: first read; client: RegisterReply (0 = none) */
    reg_h *next;
};

static void reg_drive(gni_reg_uv *r);
static void resolve_done(reg_h *u, int err, const gni_reg_route *routes, uint32_t n);

static void reg_finish(gni_reg_uv *r)
{
    if (r->closing && r->open == 0) {
        void (*cb)(void *) = r->close_cb;
        void *ud = r->close_ud;
        gni_reg_server_free(r->srv);
        gn_edf_arena_free(r->arena);
        gn_free(r);
        if (cb)
            cb(ud);
    }
}

static void rh_closed(uv_handle_t *h)
{
    reg_h *x = h->data;
    gni_reg_uv *r = x->r;
    for (reg_h **pp = &r->all; *pp; pp = &(*pp)->next)
        if (*pp == x) {
            *pp = x->next;
            break;
        }
    gn_free(x);
    r->open--;
    reg_finish(r);
}

static void rh_close(reg_h *x)
{
    if (!x || x->closing)
        return;
    x->closing = true;
    gni_reg_uv *r = x->r;
    if (x->kind == RH_SRV_CONN && x->registered && r->srv)
        gni_reg_server_lease_end(r->srv, x->lease);
    if (r->lease == x)
        r->lease = NULL;
    if (r->listener == x)
        r->listener = NULL;
    if (r->udp == x)
        r->udp = NULL;
    uv_close(&x->u.h, rh_closed);
}

static reg_h *rh_new(gni_reg_uv *r, int kind)
{
    reg_h *x = gn_calloc(1, sizeof *x);
    if (!x)
        return NULL;
    x->r = r;
    x->kind = kind;
    int rc;
    if (kind == RH_LISTENER || kind == RH_SRV_CONN || kind == RH_CLIENT)
        rc = uv_tcp_init(r->loop, &x->u.tcp);
    else if (kind == RH_RESOLVE_TIMER)
        rc = uv_timer_init(r->loop, &x->u.timer);
    else
        rc = uv_udp_init(r->loop, &x->u.udp);
    if (rc < 0) {
        gn_free(x);
        return NULL;
    }
    x->u.h.data = x;
    r->open++;
    x->next = r->all;
    r->all = x;
    return x;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    buf->base = gn_malloc(GNI_REG_SERVER_READ);
    buf->len = buf->base ? GNI_REG_SERVER_READ : 0;
}

typedef struct reg_wr {
    uv_write_t w;
    uv_udp_send_t s;
    reg_h *close_after;
    uint8_t data[GNI_REG_SERVER_READ];
} reg_wr;

static void on_tcp_written(uv_write_t *w, int status)
{
    (void)status;
    reg_wr *x = w->data;
    rh_close(x->close_after);
    gn_free(x);
}

static void tcp_send(reg_h *h, const uint8_t *p, size_t len, bool close_after)
{
    reg_wr *x = gn_calloc(1, sizeof *x);
    if (!x || len > sizeof x->data) {
        gn_free(x);
        rh_close(h);
        return;
    }
    memcpy(x->data, p, len);
    x->w.data = x;
    x->close_after = close_after ? h : NULL;
    uv_buf_t b = uv_buf_init((char *)x->data, (unsigned)len);
    if (uv_write(&x->w, (uv_stream_t *)&h->u.tcp, &b, 1, on_tcp_written) < 0) {
        gn_free(x);
        rh_close(h);
    }
}

/* ---- server ---- */

static void on_srv_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    reg_h *x = s->data;
    gni_reg_uv *r = x->r;
    if (nread > 0 && !x->closing && !x->got_first && r->srv) {
        /* Ergo: one read must hold the whole Register; later bytes are ignored */
        x->got_first = true;
        uint8_t out[256];
        gn_buf b;
        gn_buf_init(&b, out, sizeof out);
        bool close = true;
        int rc = gni_reg_server_tcp(r->srv, x->lease, (const uint8_t *)buf->base,
                                    (size_t)nread, &b, &close);
        x->registered = rc == 0;
        if (gn_buf_len(&b))
            tcp_send(x, out, gn_buf_len(&b), close);
        else if (close)
            rh_close(x);
    }
    gn_free(buf->base);
    if (nread < 0)
        rh_close(x); /* the lease ended: the node is forgotten */
}

static void on_srv_conn(uv_stream_t *s, int status)
{
    reg_h *l = s->data;
    gni_reg_uv *r = l->r;
    if (status < 0 || r->closing)
        return;
    reg_h *x = rh_new(r, RH_SRV_CONN);
    if (!x)
        return;
    x->lease = ++r->next_lease;
    /* Ergo: the Register must arrive within 1 s, else the connection is closed */
    x->deadline = (gn_time)uv_now(r->loop) * GN_MS + GNI_REG_REGISTER_TIMEOUT;
    if (uv_accept(s, (uv_stream_t *)&x->u.tcp) < 0 ||
        uv_read_start((uv_stream_t *)&x->u.tcp, on_alloc, on_srv_read) < 0)
        rh_close(x);
    reg_drive(r); /* arms the timer for the deadline */
}

static void on_udp_sent(uv_udp_send_t *s, int status)
{
    (void)status;
    gn_free(s->data);
}

static void on_srv_udp(uv_udp_t *u, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *from,
                       unsigned flags)
{
    reg_h *x = u->data;
    gni_reg_uv *r = x->r;
    (void)flags;
    if (nread > 0 && from && r->srv && !x->closing) {
        reg_wr *w = gn_calloc(1, sizeof *w);
        if (w) {
            gn_buf b;
            gn_buf_init(&b, w->data, sizeof w->data);
            int n = gni_reg_server_udp(r->srv, (const uint8_t *)buf->base, (size_t)nread, &b);
            uv_buf_t ub = uv_buf_init((char *)w->data, n > 0 ? (unsigned)n : 0);
            w->s.data = w;
            if (n <= 0 || uv_udp_send(&w->s, u, &ub, 1, from, on_udp_sent) < 0)
                gn_free(w);
        }
    }
    gn_free(buf->base);
}

/* try to own the port: TCP 127.0.0.1 and UDP 0.0.0.0 (spec a "Roles and transports") */
static bool reg_bind(gni_reg_uv *r)
{
    struct sockaddr_in lo, any;
    uv_ip4_addr("127.0.0.1", r->o.port, &lo);
    uv_ip4_addr("0.0.0.0", r->o.port, &any);
    reg_h *l = rh_new(r, RH_LISTENER), *u = rh_new(r, RH_UDP);
    bool ok = l && u && uv_tcp_bind(&l->u.tcp, (const struct sockaddr *)&lo, 0) == 0 &&
              uv_listen((uv_stream_t *)&l->u.tcp, 64, on_srv_conn) == 0 &&
              uv_udp_bind(&u->u.udp, (const struct sockaddr *)&any, 0) == 0 &&
              uv_udp_recv_start(&u->u.udp, on_alloc, on_srv_udp) == 0;
    if (ok && !r->srv)
        ok = gni_reg_server_new(r->o.reg, 0, 0, &r->srv) == 0 &&
             gni_reg_server_add(r->srv, 0, gn_slice_of(r->o.node, strlen(r->o.node)),
                                r->o.routes, r->o.nroutes) == 0;
    if (!ok) {
        rh_close(l);
        rh_close(u);
        gni_reg_server_free(r->srv);
        r->srv = NULL;
        return false;
    }
    r->listener = l;
    r->udp = u;
    return true;
}

/* ---- client ---- */

static void on_client_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    reg_h *x = s->data;
    gni_reg_uv *r = x->r;
    if (nread > 0 && !x->registered && !x->closing) {
        size_t take = (size_t)nread;
        if (take > sizeof x->buf - x->have)
            take = sizeof x->buf - x->have;
        memcpy(x->buf + x->have, buf->base, take);
        x->have += take;
        gn_edf_arena_reset(r->arena);
        int rc = gni_reg_register_result(r->o.reg, r->arena, x->buf, x->have);
        if (rc != GN_EAGAIN) {
            x->registered = rc == 0;
            gni_reg_failover_registered(&r->f, rc, (gn_time)uv_now(r->loop) * GN_MS);
            if (rc != 0)
                rh_close(x);
            if (r->o.on_role)
                r->o.on_role(r, r->f.role, r->o.user_data);
            reg_drive(r);
        }
    }
    gn_free(buf->base);
    if (nread < 0 && !x->closing) {
        bool was = x->registered;
        rh_close(x);
        gn_time now = (gn_time)uv_now(r->loop) * GN_MS;
        if (was) {
            gni_reg_failover_lease_lost(&r->f, now); /* the server node is gone */
        } else {
            gni_reg_failover_registered(&r->f, GN_EEOF, now);
        }
        if (r->o.on_role)
            r->o.on_role(r, r->f.role, r->o.user_data);
        reg_drive(r);
    }
}

static void on_client_connected(uv_connect_t *c, int status)
{
    reg_h *x = c->data;
    gni_reg_uv *r = x->r;
    if (x->closing)
        return;
    int err = status < 0 ? GN_ECONNREFUSED : GN_ETOOBIG;
    int uerr = status == 0 ? uv_read_start((uv_stream_t *)&x->u.tcp, on_alloc, on_client_read) : 0;
    if (uerr < 0)
        err = gni_err_from_uv(uerr);
    if (status == 0 && uerr == 0) {
        uint8_t out[GNI_REG_SERVER_READ];
        gn_buf b;
        gn_buf_init(&b, out, sizeof out);
        gni_reg_packet p = {.type = GNI_REG_REGISTER,
                            .node = gn_slice_of(r->o.node, strlen(r->o.node)),
                            .routes = r->o.routes, .nroutes = r->o.nroutes};
        gn_edf_arena_reset(r->arena);
        if (gni_reg_build(r->o.reg, r->arena, &p, &b) > 0) {
            tcp_send(x, out, gn_buf_len(&b), false); /* one write: Ergo reads it once */
            return;
        }
    }
    rh_close(x);
    /* the connect failed (nobody owns the port: try to become the server), reading failed,
     * or our own Register did not build (a route that does not fit a packet) */
    gni_reg_failover_registered(&r->f, err, (gn_time)uv_now(r->loop) * GN_MS);
    reg_drive(r);
}

static void reg_register(gni_reg_uv *r)
{
    struct sockaddr_in lo;
    uv_ip4_addr("127.0.0.1", r->o.port, &lo);
    reg_h *x = rh_new(r, RH_CLIENT);
    if (x) {
        /* Ergo: 1 s for the RegisterReply (here from the dial: connect is local) */
        x->deadline = (gn_time)uv_now(r->loop) * GN_MS + GNI_REG_REGISTER_TIMEOUT;
        x->creq.data = x;
        int uerr = uv_tcp_connect(&x->creq, &x->u.tcp, (const struct sockaddr *)&lo,
                                  on_client_connected);
        if (uerr == 0) {
            r->lease = x;
            return;
        }
        rh_close(x);
        gni_reg_failover_registered(&r->f, gni_err_from_uv(uerr), (gn_time)uv_now(r->loop) * GN_MS);
        return;
    }
    gni_reg_failover_registered(&r->f, GN_ENOMEM, (gn_time)uv_now(r->loop) * GN_MS);
}

/* ---- the failover loop ---- */

static void on_timer(uv_timer_t *t) { reg_drive(t->data); }

/* the 1 s register deadlines: a silent registration connection (server) is closed; a
 * RegisterReply that does not come (client) fails the attempt. Returns the next one. */
static gn_time reg_expire(gni_reg_uv *r, gn_time now)
{
    gn_time next = GN_TIME_INFINITY;
    reg_h *late = NULL;
    for (reg_h *x = r->all; x; x = x->next) { /* bounded: the handle list */
        if (x->closing || !x->deadline)
            continue;
        bool waiting = (x->kind == RH_SRV_CONN && !x->got_first) ||
                       (x->kind == RH_CLIENT && !x->registered);
        if (!waiting)
            continue;
        if (x->deadline > now) {
            next = x->deadline < next ? x->deadline : next;
        } else if (x->kind == RH_SRV_CONN) {
            rh_close(x); /* closing handles stay listed: the walk goes on */
        } else {
            late = x;
        }
    }
    if (late) {
        rh_close(late);
        gni_reg_failover_registered(&r->f, GN_ETIMEDOUT, now);
        if (r->o.on_role)
            r->o.on_role(r, r->f.role, r->o.user_data);
    }
    return next;
}

static void reg_drive(gni_reg_uv *r)
{
    if (r->closing)
        return;
    gn_time hd = reg_expire(r, (gn_time)uv_now(r->loop) * GN_MS);
    if (r->closing)
        return; /* on_role closed us */
    /* bounded: each action changes the state (bind -> settled/register -> pending) */
    for (int i = 0; i < 4; i++) {
        gn_time now = (gn_time)uv_now(r->loop) * GN_MS;
        gni_reg_action a = gni_reg_failover_next(&r->f, now);
        if (a == GNI_REG_ACT_NONE)
            break;
        if (a == GNI_REG_ACT_BIND) {
            bool ok = reg_bind(r);
            gni_reg_failover_bound(&r->f, ok, now);
            if (ok && r->o.on_role)
                r->o.on_role(r, r->f.role, r->o.user_data);
            if (r->closing)
                return; /* on_role closed us: no new handles */
        } else {
            reg_register(r);
        }
    }
    gn_time d = gni_reg_failover_deadline(&r->f), now = (gn_time)uv_now(r->loop) * GN_MS;
    gn_time h2 = reg_expire(r, now); /* a register started above has its deadline now */
    hd = h2 < hd ? h2 : hd;
    d = hd < d ? hd : d;
    if (d != GN_TIME_INFINITY)
        uv_timer_start(&r->timer, on_timer, d > now ? (d - now) / GN_MS + 1 : 0, 0);
}

int gni_reg_uv_start(uv_loop_t *loop, const gni_reg_uv_options *o, gni_reg_uv **out)
{
    if (!loop || !o || !out || !o->reg || !o->node || !o->routes || !o->nroutes)
        return GN_EINVAL;
    if (!strchr(o->node, '@'))
        return GN_EINVAL; /* a node name is name@host (ergo-wire.md a) */
    gni_reg_uv *r = gn_calloc(1, sizeof *r);
    if (!r)
        return GN_ENOMEM;
    r->loop = loop;
    r->o = *o;
    if (!r->o.port)
        r->o.port = GNI_REG_PORT;
    r->arena = gn_edf_arena_new(1024, 1u << 20);
    if (!r->arena) {
        gn_free(r);
        return GN_ENOMEM;
    }
    uv_timer_init(loop, &r->timer);
    r->timer.data = r;
    r->open = 1;
    *out = r;
    reg_drive(r);
    return 0;
}

gni_reg_role gni_reg_uv_role(const gni_reg_uv *r) { return r ? r->f.role : GNI_REG_ROLE_NONE; }

static void on_timer_closed(uv_handle_t *h)
{
    gni_reg_uv *r = h->data;
    r->open--;
    reg_finish(r);
}

void gni_reg_uv_close(gni_reg_uv *r, void (*cb)(void *ud), void *ud)
{
    if (!r || r->closing)
        return;
    r->closing = true;
    r->close_cb = cb;
    r->close_ud = ud;
    /* bounded: every pass closes one more handle; closing ones stay listed until closed */
    for (;;) {
        reg_h *x = r->all;
        while (x && x->closing)
            x = x->next;
        if (!x)
            break;
        if (x->kind == RH_RESOLVE_UDP && !x->done) {
            resolve_done(x, GN_ECANCELED, NULL, 0);
            continue;
        }
        rh_close(x);
    }
    uv_close((uv_handle_t *)&r->timer, on_timer_closed);
}

/* ---- resolve ---- */

static void resolve_done(reg_h *u, int err, const gni_reg_route *routes, uint32_t n)
{
    if (u->done)
        return;
    u->done = true;
    if (u->cb)
        u->cb(err, routes, n, u->cb_ud);
    rh_close(u->peer);
    rh_close(u);
}

static void on_resolve_timeout(uv_timer_t *t)
{
    reg_h *x = t->data;
    resolve_done(x->peer, GN_ETIMEDOUT, NULL, 0);
}

/* whether datagram source @from is the address the Resolve went to */
static bool resolve_from_dest(const reg_h *x, const struct sockaddr *from)
{
    if (!from || from->sa_family != AF_INET || x->dest.ss_family != AF_INET)
        return false;
    const struct sockaddr_in *a = (const struct sockaddr_in *)from,
                             *b = (const struct sockaddr_in *)&x->dest;
    return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
}

static void on_resolve_reply(uv_udp_t *u, ssize_t nread, const uv_buf_t *buf,
                             const struct sockaddr *from, unsigned flags)
{
    reg_h *x = u->data;
    (void)flags;
    if (nread > 0 && !x->done && !resolve_from_dest(x, from)) {
        gn_free(buf->base); /* not from the registrar we asked: ignored, keep waiting */
        return;
    }
    if (nread > 0 && !x->done) {
        gn_edf_arena *a = gn_edf_arena_new(1024, 1u << 20);
        const gni_reg_route *routes = NULL;
        uint32_t n = 0;
        int rc = a ? gni_reg_resolve_result(x->r->o.reg, a, (const uint8_t *)buf->base,
                                            (size_t)nread, &routes, &n)
                   : GN_ENOMEM;
        resolve_done(x, rc, routes, n);
        gn_edf_arena_free(a);
    }
    gn_free(buf->base);
}

int gni_reg_uv_resolve(gni_reg_uv *r, const char *node, gni_reg_uv_resolve_cb cb, void *ud)
{
    const char *at = node ? strchr(node, '@') : NULL;
    if (!r || !at || r->closing)
        return GN_EINVAL;
    if (r->srv && strcmp(at, strchr(r->o.node, '@')) == 0) {
        const gni_reg_route *routes;
        uint32_t n;
        int rc = gni_reg_server_find(r->srv, gn_slice_of(node, strlen(node)), &routes, &n);
        cb(rc, rc == 0 ? routes : NULL, rc == 0 ? n : 0, ud); /* in-process (spec a) */
        return 0;
    }
    const char *host = strcmp(at + 1, "localhost") == 0 ? "127.0.0.1" : at + 1;
    struct sockaddr_in sa;
    if (uv_ip4_addr(host, r->o.port, &sa) != 0)
        return GN_EINVAL;
    reg_h *u = rh_new(r, RH_RESOLVE_UDP), *t = rh_new(r, RH_RESOLVE_TIMER);
    reg_wr *w = gn_calloc(1, sizeof *w);
    if (!u || !t || !w) {
        gn_free(w);
        rh_close(u);
        rh_close(t);
        return GN_ENOMEM;
    }
    u->peer = t;
    t->peer = u;
    u->cb = cb;
    u->cb_ud = ud;
    memcpy(&u->dest, &sa, sizeof sa);
    gn_buf b;
    gn_buf_init(&b, w->data, sizeof w->data);
    gni_reg_packet p = {.type = GNI_REG_RESOLVE, .node = gn_slice_of(node, strlen(node))};
    gn_edf_arena_reset(r->arena);
    int n = gni_reg_build(r->o.reg, r->arena, &p, &b);
    uv_buf_t ub = uv_buf_init((char *)w->data, n > 0 ? (unsigned)n : 0);
    w->s.data = w;
    if (n <= 0 || uv_udp_recv_start(&u->u.udp, on_alloc, on_resolve_reply) < 0 ||
        uv_udp_send(&w->s, &u->u.udp, &ub, 1, (const struct sockaddr *)&sa, on_udp_sent) < 0) {
        gn_free(w);
        rh_close(u);
        rh_close(t);
        return n < 0 ? n : GN_EIO;
    }
    uv_timer_start(&t->u.timer, on_resolve_timeout, GNI_REG_RESOLVE_TIMEOUT / GN_MS, 0);
    return 0;
}
