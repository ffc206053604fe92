/*
 * Ergo's etcd registrar over libuv: lease, registration, keepalive,
 * resolve and watch through etcd's v3 JSON gateway. Contract: etcd_uv.h;
 * design: docs/ergo.md "etcd registrar". The bytes and JSON work is in the
 * sans-I/O core etcd.c; this file owns the sockets and timers.
 */
#include "etcd_uv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gni.h"
#include "golemnet/err.h"
#include "golemnet/log.h"

#define EU_LOG "ergo.etcd"
#define EU_RBUF (64u << 10)
#define EU_RETRY_DEFAULT 5000u
#define EU_RETRY_UNITS_MAX 6u /* Ergo: 5 s x attempt, at most 30 s */
#define EU_REVOKE_TIMEOUT 2000u
#define EU_WATCH_RETRY 1000u

typedef struct eu_call eu_call;
typedef void (*eu_done)(gni_etcd_uv *e, eu_call *c, int err, const gni_etcd_result *res);

struct eu_call {
    eu_call *next;
    gni_etcd_op op;
    uint8_t *req;
    size_t req_len;
    eu_done done;
    bool completed;
    gni_etcd_uv_resolve_cb rcb; /* resolve */
    void *rud;
};

enum { CONN_CLOSED = 0, CONN_CONNECTING, CONN_READY, CONN_CLOSING };

typedef struct eu_conn {
    gni_etcd_uv *e;
    bool watch;
    int state;
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    uv_timer_t timer; /* connect and per-call deadline */
    gni_etcd_resp *resp;
    eu_call *cur;     /* unary: the call in flight */
    uint8_t *wbuf;    /* watch: its request */
    uint8_t *wheld;   /* unary: a finished call's request still being written */
    int fail;         /* why the connection is being closed */
    bool writing;     /* a write is in flight (the write request is reused) */
    bool in_feed;     /* inside the core's feed: a close leaves the reader to eu_feed */
    uint8_t rbuf[EU_RBUF];
} eu_conn;

struct gni_etcd_uv {
    uv_loop_t *loop;
    gni_etcd_uv_options o;
    char authority[272];
    struct sockaddr_in addr;
    char *cluster, *node;
    uint8_t key[GNI_ETCD_KEY_MAX];
    size_t key_len;
    uint8_t prefix[GNI_ETCD_KEY_MAX];
    size_t prefix_len;
    uint8_t *value; /* base64(EDF routes) as Ergo stores it */
    size_t value_len;
    eu_conn unary, watchc;
    eu_call *head, *tail;
    uint32_t queued;
    uv_timer_t ka_timer, retry_timer, watch_timer;
    gni_etcd_uv_state st;
    int64_t lease, old_lease;
    uint64_t last_ka_ms; /* loop time of the last good renewal */
    uint32_t attempts;
    int64_t watch_rev;   /* last revision seen by the watch */
    bool closing, timers_closed;
    bool ka_inflight;
    unsigned open_handles;
    void (*close_cb)(void *);
    void *close_ud;
    char diag[256];
};

static void eu_conn_kick(eu_conn *c);
static void eu_conn_close(eu_conn *c, int err);
static void eu_register_start(gni_etcd_uv *e);
static void eu_finish_close(gni_etcd_uv *e);

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void eu_diag(gni_etcd_uv *e, int err, const char *fmt, ...)
{
    char w[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w, sizeof w, fmt, ap);
    va_end(ap);
    if (err)
        snprintf(e->diag, sizeof e->diag, "%s (%s)", w, gn_err_name(err));
    else
        snprintf(e->diag, sizeof e->diag, "%s", w);
    GN_LOG(GN_LOG_WARNING, EU_LOG, "%s %s", e->node ? e->node : "(no node)", e->diag);
}

static void eu_set_state(gni_etcd_uv *e, gni_etcd_uv_state st, int err)
{
    e->st = st;
    if (e->o.on_state && !e->closing)
        e->o.on_state(e, st, err, err ? e->diag : "", e->o.user_data);
}

/* ---- calls ------------------------------------------------------------------------------ */

static void eu_call_free(eu_call *c)
{
    if (!c)
        return;
    gn_free(c->req);
    gn_free(c);
}

/* Frees @call that was in flight on @c; a request libuv is still writing (etcd or a proxy
 * answered before reading all of it) stays with @c until the write completes. */
static void eu_call_done(eu_conn *c, eu_call *call)
{
    if (c->writing && call) {
        gn_free(c->wheld);
        c->wheld = call->req;
        call->req = NULL;
    }
    eu_call_free(call);
}

static void eu_call_complete(gni_etcd_uv *e, eu_call *c, int err, const gni_etcd_result *res)
{
    if (c->completed)
        return;
    c->completed = true;
    c->done(e, c, err, res);
}

/* Builds and queues a call. Returns 0 or GN_EAGAIN / GN_ENOMEM / GN_EINVAL / GN_ECLOSED. */
static int eu_submit(gni_etcd_uv *e, const gni_etcd_req *rq, eu_done done,
                     gni_etcd_uv_resolve_cb rcb, void *rud, bool urgent)
{
    if (e->closing && !urgent)
        return GN_ECLOSED;
    if (e->queued >= GNI_ETCD_UV_QUEUE_MAX && !urgent)
        return GN_EAGAIN;
    eu_call *c = gn_calloc(1, sizeof *c);
    if (!c)
        return GN_ENOMEM;
    size_t cap = 1024 + (rq->key.len + rq->value.len) * 3;
    c->req = gn_malloc(cap);
    if (!c->req) {
        gn_free(c);
        return GN_ENOMEM;
    }
    gn_buf b;
    gn_buf_init(&b, c->req, cap);
    int rc = gni_etcd_build(rq, e->authority, &b);
    if (rc < 0) {
        eu_call_free(c);
        return rc;
    }
    c->req_len = (size_t)rc;
    c->op = rq->op;
    c->done = done;
    c->rcb = rcb;
    c->rud = rud;
    if (urgent) { /* to the front (the revoke at close) */
        c->next = e->head;
        e->head = c;
        if (!e->tail)
            e->tail = c;
    } else {
        if (e->tail)
            e->tail->next = c;
        else
            e->head = c;
        e->tail = c;
    }
    e->queued++;
    eu_conn_kick(&e->unary);
    return 0;
}

static eu_call *eu_pop(gni_etcd_uv *e)
{
    eu_call *c = e->head;
    if (c) {
        e->head = c->next;
        if (!e->head)
            e->tail = NULL;
        c->next = NULL;
        e->queued--;
    }
    return c;
}

/* Fails every waiting call (the connection could not be made, or we close). */
static void eu_fail_queue(gni_etcd_uv *e, int err)
{
    eu_call *c;
    while ((c = eu_pop(e)) != NULL) {
        eu_call_complete(e, c, err, NULL);
        eu_call_free(c);
    }
}

/* ---- connections ------------------------------------------------------------------------ */

static void eu_handle_closed(uv_handle_t *h)
{
    gni_etcd_uv *e = h->data;
    if (e->open_handles)
        e->open_handles--;
    if (e->closing)
        eu_finish_close(e);
}

static void eu_watch_tick(uv_timer_t *t);

static void eu_tcp_closed(uv_handle_t *h)
{
    eu_conn *c = h->data;
    gni_etcd_uv *e = c->e;
    c->state = CONN_CLOSED;
    c->writing = false;
    gn_free(c->wbuf);
    c->wbuf = NULL;
    gn_free(c->wheld);
    c->wheld = NULL;
    if (e->open_handles)
        e->open_handles--;
    if (!c->watch && e->head) {
        eu_conn_kick(c); /* calls queued meanwhile (or the revoke at close): connect again */
        if (c->state != CONN_CLOSED)
            return;
    }
    if (c->watch && !e->closing && e->o.watch) /* watch again, from the last revision seen */
        uv_timer_start(&e->watch_timer, eu_watch_tick, EU_WATCH_RETRY, 0);
    if (e->closing)
        eu_finish_close(e);
}

static void eu_conn_close(eu_conn *c, int err)
{
    gni_etcd_uv *e = c->e;
    if (c->state == CONN_CLOSED || c->state == CONN_CLOSING)
        return;
    c->state = CONN_CLOSING;
    c->fail = err;
    uv_timer_stop(&c->timer);
    eu_call *cur = c->cur;
    c->cur = NULL;
    if (cur) {
        eu_call_complete(e, cur, err ? err : GN_EEOF, NULL);
        eu_call_done(c, cur);
    }
    if (!c->in_feed)
        gni_etcd_resp_free(c->resp);
    c->resp = NULL;
    uv_close((uv_handle_t *)&c->tcp, eu_tcp_closed);
}

static void eu_conn_timeout(uv_timer_t *t)
{
    eu_conn *c = t->data;
    eu_diag(c->e, GN_ETIMEDOUT,
            c->state == CONN_CONNECTING ? "etcd at %s did not accept the connection in time"
                                        : "etcd at %s did not answer a call in time",
            c->e->authority);
    bool connecting = c->state == CONN_CONNECTING;
    eu_conn_close(c, GN_ETIMEDOUT);
    if (connecting && !c->watch) /* as a refused connect: no endless reconnects */
        eu_fail_queue(c->e, GN_ETIMEDOUT);
}

static void eu_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    eu_conn *c = h->data;
    buf->base = (char *)c->rbuf;
    buf->len = sizeof c->rbuf;
}

static void eu_on_watch_result(gni_etcd_uv *e, const gni_etcd_result *r);

static int eu_result_cb(const gni_etcd_result *r, void *ud)
{
    eu_conn *c = ud;
    if (c->watch) {
        eu_on_watch_result(c->e, r);
        return 0;
    }
    if (c->cur)
        eu_call_complete(c->e, c->cur, r->err, r);
    return 0;
}

static void eu_send_next(eu_conn *c);

/* Feeds the core (or tells it the connection ended). A result callback may close the
 * connection meanwhile (a user callback closing the object, a canceled watch): then the
 * reader is freed here, after the feed, and GN_ECLOSED returned. */
static int eu_feed(eu_conn *c, const uint8_t *p, size_t len, size_t *used, bool eof)
{
    gni_etcd_resp *resp = c->resp;
    c->in_feed = true;
    int rc = eof ? gni_etcd_resp_eof(resp, eu_result_cb, c)
                 : gni_etcd_resp_feed(resp, p, len, eu_result_cb, c, used);
    c->in_feed = false;
    if (c->resp != resp) {
        gni_etcd_resp_free(resp);
        return GN_ECLOSED;
    }
    return rc;
}

static void eu_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    eu_conn *c = s->data;
    gni_etcd_uv *e = c->e;
    if (nread == 0)
        return;
    if (nread < 0) {
        int err = nread == UV_EOF ? GN_EEOF : gni_err_from_uv((int)nread);
        if (c->resp) {
            int rc = eu_feed(c, NULL, 0, NULL, true);
            if (rc == GN_ECLOSED)
                return;
            if (rc == 1 && !c->watch) { /* a body that ended with the connection */
                eu_call_done(c, c->cur);
                c->cur = NULL;
            }
        }
        if (c->state == CONN_READY && (c->cur || c->watch))
            eu_diag(e, err, "the connection to etcd at %s ended", e->authority);
        eu_conn_close(c, err);
        return;
    }
    const uint8_t *p = (const uint8_t *)buf->base;
    size_t left = (size_t)nread;
    while (left > 0 && c->state == CONN_READY) {
        size_t used = 0;
        int rc = eu_feed(c, p, left, &used, false);
        if (rc == GN_ECLOSED)
            return;
        if (rc < 0) {
            eu_diag(e, rc, "%s", gni_etcd_resp_diag(c->resp));
            eu_conn_close(c, rc);
            return;
        }
        p += used;
        left -= used;
        if (rc == 0)
            break;
        /* a response ended */
        if (c->watch) {
            eu_diag(e, GN_EEOF, "etcd at %s ended the watch stream", e->authority);
            eu_conn_close(c, GN_EEOF);
            return;
        }
        eu_call *cur = c->cur;
        c->cur = NULL;
        uv_timer_stop(&c->timer);
        if (cur) {
            eu_call_complete(e, cur, GN_EPROTO, NULL); /* a response without a message */
            eu_call_done(c, cur);
        }
        if (left > 0 || !gni_etcd_resp_keep_alive(c->resp)) {
            if (left > 0)
                eu_diag(e, GN_EPROTO, "etcd at %s sent bytes no request asked for", e->authority);
            eu_conn_close(c, left > 0 ? GN_EPROTO : 0);
            return;
        }
        eu_send_next(c);
        if (e->closing && !c->cur) {
            eu_finish_close(e);
            return;
        }
    }
}

static void eu_written(uv_write_t *w, int status)
{
    eu_conn *c = w->data;
    c->writing = false;
    gn_free(c->wheld);
    c->wheld = NULL;
    if (c->state != CONN_READY)
        return;
    if (status < 0) {
        eu_diag(c->e, gni_err_from_uv(status), "writing to etcd at %s failed", c->e->authority);
        eu_conn_close(c, gni_err_from_uv(status));
        return;
    }
    if (!c->watch && !c->cur)
        eu_send_next(c); /* the answer came before the write completion */
}

static int eu_write(eu_conn *c, uint8_t *bytes, size_t len, gni_etcd_op op)
{
    int rc = gni_etcd_resp_begin(c->resp, op);
    if (rc < 0)
        return rc;
    uv_buf_t b = uv_buf_init((char *)bytes, (unsigned)len);
    c->wreq.data = c;
    c->writing = true;
    int uerr = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, eu_written);
    return uerr < 0 ? gni_err_from_uv(uerr) : 0;
}

/* Unary connection ready and idle: send the next queued call. */
static void eu_send_next(eu_conn *c)
{
    gni_etcd_uv *e = c->e;
    if (c->state != CONN_READY || c->cur || c->writing || !e->head)
        return;
    eu_call *call = eu_pop(e);
    c->cur = call;
    int rc = eu_write(c, call->req, call->req_len, call->op);
    if (rc < 0) {
        eu_diag(e, rc, "cannot send to etcd at %s", e->authority);
        eu_conn_close(c, rc);
        return;
    }
    uint32_t to = call->op == GNI_ETCD_REVOKE && e->closing ? EU_REVOKE_TIMEOUT : e->o.timeout_ms;
    uv_timer_start(&c->timer, eu_conn_timeout, to, 0);
}

static void eu_connected(uv_connect_t *req, int status)
{
    eu_conn *c = req->data;
    gni_etcd_uv *e = c->e;
    if (c->state != CONN_CONNECTING)
        return; /* closed meanwhile */
    uv_timer_stop(&c->timer);
    if (status < 0) {
        int err = gni_err_from_uv(status);
        eu_diag(e, err, "cannot connect to etcd at %s", e->authority);
        eu_conn_close(c, err);
        if (!c->watch)
            eu_fail_queue(e, err);
        return;
    }
    c->state = CONN_READY;
    uv_tcp_nodelay(&c->tcp, 1);
    uv_tcp_keepalive(&c->tcp, 1, 15);
    int uerr = uv_read_start((uv_stream_t *)&c->tcp, eu_alloc, eu_read);
    if (uerr < 0) {
        eu_conn_close(c, gni_err_from_uv(uerr));
        return;
    }
    if (c->watch) {
        int rc = eu_write(c, c->wbuf, strlen((char *)c->wbuf), GNI_ETCD_WATCH);
        if (rc < 0)
            eu_conn_close(c, rc);
        return;
    }
    eu_send_next(c);
}

/* Makes sure the connection exists (connecting if needed) and is busy if there is work. */
static void eu_conn_kick(eu_conn *c)
{
    gni_etcd_uv *e = c->e;
    if (c->state == CONN_READY) {
        if (!c->watch)
            eu_send_next(c);
        return;
    }
    if (c->state != CONN_CLOSED || (e->closing && !(!c->watch && e->head)))
        return;
    if (!c->watch && !e->head)
        return;
    if (gni_etcd_resp_new(&e->o.limits, &c->resp) < 0) {
        if (!c->watch)
            eu_fail_queue(e, GN_ENOMEM);
        return;
    }
    int uerr = uv_tcp_init(e->loop, &c->tcp);
    if (uerr < 0) {
        gni_etcd_resp_free(c->resp);
        c->resp = NULL;
        if (!c->watch)
            eu_fail_queue(e, gni_err_from_uv(uerr));
        return;
    }
    c->tcp.data = c;
    e->open_handles++;
    c->state = CONN_CONNECTING;
    c->creq.data = c;
    uerr = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&e->addr, eu_connected);
    if (uerr < 0) {
        int err = gni_err_from_uv(uerr);
        eu_diag(e, err, "cannot connect to etcd at %s", e->authority);
        eu_conn_close(c, err);
        if (!c->watch)
            eu_fail_queue(e, err);
        return;
    }
    uv_timer_start(&c->timer, eu_conn_timeout, e->o.timeout_ms, 0);
}

/* ---- registration ------------------------------------------------------------------------ */

static void eu_ka_tick(uv_timer_t *t);

static uint64_t eu_ka_interval(const gni_etcd_uv *e)
{
    uint64_t ms = (uint64_t)e->o.lease_ttl_s * 1000 / 3;
    return ms < 200 ? 200 : ms;
}

static void eu_retry_tick(uv_timer_t *t)
{
    eu_register_start(t->data);
}

/* A registration step failed: pause (5 s x attempt, at most 30 s, Ergo's rule), then again. */
static void eu_retry(gni_etcd_uv *e, int err)
{
    if (e->closing)
        return;
    uv_timer_stop(&e->ka_timer);
    e->attempts++;
    uint32_t units = e->attempts < EU_RETRY_UNITS_MAX ? e->attempts : EU_RETRY_UNITS_MAX;
    eu_set_state(e, GNI_ETCD_UV_RETRYING, err);
    uv_timer_start(&e->retry_timer, eu_retry_tick, (uint64_t)units * e->o.retry_ms, 0);
}

static void eu_registered(gni_etcd_uv *e)
{
    e->attempts = 0;
    e->last_ka_ms = uv_now(e->loop);
    uv_timer_start(&e->ka_timer, eu_ka_tick, eu_ka_interval(e), eu_ka_interval(e));
    GN_LOG(GN_LOG_INFO, EU_LOG, "%s registered in etcd at %s (lease %lld, TTL %u s)", e->node,
           e->authority, (long long)e->lease, e->o.lease_ttl_s);
    eu_set_state(e, GNI_ETCD_UV_REGISTERED, 0);
}

static void eu_noop_done(gni_etcd_uv *e, eu_call *c, int err, const gni_etcd_result *res)
{
    (void)e, (void)c, (void)err, (void)res;
}

static void eu_revoke(gni_etcd_uv *e, int64_t lease)
{
    gni_etcd_req rq = {.op = GNI_ETCD_REVOKE, .lease = lease};
    (void)eu_submit(e, &rq, eu_noop_done, NULL, NULL, false); /* best effort */
}

static void eu_txn_done(gni_etcd_uv *e, eu_call *c, int err, const gni_etcd_result *res);

static int eu_txn(gni_etcd_uv *e, gni_etcd_op op)
{
    gni_etcd_req rq = {.op = op, .key = gn_slice_of(e->key, e->key_len),
                       .value = gn_slice_of(e->value, e->value_len), .lease = e->lease,
                       .old_lease = e->old_lease};
    return eu_submit(e, &rq, eu_txn_done, NULL, NULL, false);
}

static void eu_txn_done(gni_etcd_uv *e, eu_call *c, int err, const gni_etcd_result *res)
{
    if (e->closing)
        return;
    if (err < 0) {
        if (res && res->message.len)
            eu_diag(e, err, "etcd refused the registration: %.*s",
                    (int)(res->message.len > 120 ? 120 : res->message.len),
                    (const char *)res->message.base);
        else
            eu_diag(e, err, "registration in etcd at %s failed", e->authority);
        eu_revoke(e, e->lease);
        e->lease = 0;
        eu_retry(e, err);
        return;
    }
    if (res->succeeded) {
        if (e->old_lease)
            eu_revoke(e, e->old_lease); /* the key moved to the new lease */
        e->old_lease = 0;
        eu_registered(e);
        return;
    }
    if (c->op == GNI_ETCD_TXN_CREATE && e->old_lease) {
        /* the key still exists: ours if it is on our old lease (we came back in time) */
        int rc = eu_txn(e, GNI_ETCD_TXN_OURS);
        if (rc < 0)
            eu_retry(e, rc);
        return;
    }
    eu_revoke(e, e->lease);
    if (e->old_lease)
        eu_revoke(e, e->old_lease);
    e->lease = 0;
    e->old_lease = 0;
    uv_timer_stop(&e->ka_timer);
    eu_diag(e, GN_EEXIST, "the name is taken: another node holds key %s", (const char *)e->key);
    eu_set_state(e, GNI_ETCD_UV_TAKEN, GN_EEXIST);
}

static void eu_grant_done(gni_etcd_uv *e, eu_call *c, int err, const gni_etcd_result *res)
{
    (void)c;
    if (e->closing)
        return;
    if (err < 0) {
        if (res && res->message.len)
            eu_diag(e, err, "etcd refused a lease: %.*s",
                    (int)(res->message.len > 120 ? 120 : res->message.len),
                    (const char *)res->message.base);
        else
            eu_diag(e, err, "lease grant from etcd at %s failed", e->authority);
        eu_retry(e, err);
        return;
    }
    e->lease = res->lease_id;
    int rc = eu_txn(e, GNI_ETCD_TXN_CREATE);
    if (rc < 0)
        eu_retry(e, rc);
}

static void eu_register_start(gni_etcd_uv *e)
{
    if (e->closing || !e->node || e->st == GNI_ETCD_UV_TAKEN)
        return;
    gni_etcd_req rq = {.op = GNI_ETCD_GRANT, .ttl_s = e->o.lease_ttl_s};
    int rc = eu_submit(e, &rq, eu_grant_done, NULL, NULL, false);
    if (rc < 0)
        eu_retry(e, rc);
}

/* The lease is gone (expired, revoked by someone, or unrenewed for a whole TTL): start over
 * with a new lease, taking our key back if it is still on the old one (Ergo's re-register). */
static void eu_lease_lost(gni_etcd_uv *e, int err, const char *why)
{
    uv_timer_stop(&e->ka_timer);
    eu_diag(e, err, "%s", why);
    if (e->lease)
        e->old_lease = e->lease;
    e->lease = 0;
    eu_set_state(e, GNI_ETCD_UV_RETRYING, err);
    eu_register_start(e);
}

static void eu_ka_done(gni_etcd_uv *e, eu_call *c, int err, const gni_etcd_result *res)
{
    (void)c;
    e->ka_inflight = false;
    if (e->closing || e->st != GNI_ETCD_UV_REGISTERED)
        return;
    if (res && err == 0 && res->lease_id && res->lease_id != e->lease)
        return; /* the answer for a lease we replaced */
    if (err == 0 && res && res->ttl_s > 0) {
        e->last_ka_ms = uv_now(e->loop);
        return;
    }
    if (err == 0 && res) {
        eu_lease_lost(e, GN_ENOTFOUND, "the lease expired in etcd");
        return;
    }
    if (uv_now(e->loop) - e->last_ka_ms >= (uint64_t)e->o.lease_ttl_s * 1000)
        eu_lease_lost(e, err ? err : GN_ETIMEDOUT, "the lease was not renewed for its whole TTL");
}

static void eu_ka_tick(uv_timer_t *t)
{
    gni_etcd_uv *e = t->data;
    if (e->closing || e->st != GNI_ETCD_UV_REGISTERED || !e->lease)
        return;
    if (e->ka_inflight) { /* the last renewal has not come back yet */
        if (uv_now(e->loop) - e->last_ka_ms >= (uint64_t)e->o.lease_ttl_s * 1000)
            eu_lease_lost(e, GN_ETIMEDOUT, "the lease was not renewed for its whole TTL");
        return;
    }
    gni_etcd_req rq = {.op = GNI_ETCD_KEEPALIVE, .lease = e->lease};
    int rc = eu_submit(e, &rq, eu_ka_done, NULL, NULL, false);
    if (rc < 0)
        eu_ka_done(e, NULL, rc, NULL);
    else
        e->ka_inflight = true;
}

/* ---- watch -------------------------------------------------------------------------------- */

static void eu_watch_start(gni_etcd_uv *e)
{
    eu_conn *c = &e->watchc;
    if (e->closing || c->state != CONN_CLOSED)
        return;
    gni_etcd_req rq = {.op = GNI_ETCD_WATCH, .key = gn_slice_of(e->prefix, e->prefix_len),
                       .prefix = true, .start_revision = e->watch_rev ? e->watch_rev + 1 : 0};
    size_t cap = 1024 + e->prefix_len * 3;
    c->wbuf = gn_malloc(cap + 1);
    if (!c->wbuf)
        return;
    gn_buf b;
    gn_buf_init(&b, c->wbuf, cap);
    int rc = gni_etcd_build(&rq, e->authority, &b);
    if (rc < 0) {
        gn_free(c->wbuf);
        c->wbuf = NULL;
        return;
    }
    c->wbuf[rc] = 0;
    /* eu_conn_kick only connects the watch connection when it is closed */
    if (gni_etcd_resp_new(&e->o.limits, &c->resp) < 0)
        goto fail;
    if (uv_tcp_init(e->loop, &c->tcp) < 0)
        goto fail;
    c->tcp.data = c;
    e->open_handles++;
    c->state = CONN_CONNECTING;
    c->creq.data = c;
    if (uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&e->addr, eu_connected) < 0) {
        eu_conn_close(c, GN_ECONNREFUSED);
        return;
    }
    uv_timer_start(&c->timer, eu_conn_timeout, e->o.timeout_ms, 0);
    return;
fail:
    gni_etcd_resp_free(c->resp);
    c->resp = NULL;
    gn_free(c->wbuf);
    c->wbuf = NULL;
    uv_timer_start(&e->watch_timer, eu_watch_tick, EU_WATCH_RETRY, 0);
}

static void eu_watch_tick(uv_timer_t *t)
{
    gni_etcd_uv *e = t->data;
    if (e->watchc.state == CONN_CLOSED)
        eu_watch_start(e);
    else if (e->watchc.state != CONN_READY && e->watchc.state != CONN_CONNECTING)
        uv_timer_start(&e->watch_timer, eu_watch_tick, EU_WATCH_RETRY, 0);
}

static void eu_on_watch_result(gni_etcd_uv *e, const gni_etcd_result *r)
{
    if (r->revision > e->watch_rev)
        e->watch_rev = r->revision;
    if (r->err < 0) {
        if (r->canceled) /* e.g. compacted past our revision: from now on */
            e->watch_rev = 0;
        eu_diag(e, r->err, "etcd ended the watch: %.*s",
                (int)(r->message.len > 120 ? 120 : r->message.len),
                r->message.len ? (const char *)r->message.base : "");
        eu_conn_close(&e->watchc, r->err); /* its close schedules a new watch */
        return;
    }
    for (uint32_t i = 0; i < r->nkvs; i++) {
        const gni_etcd_kv *kv = &r->kvs[i];
        if (kv->mod_revision > e->watch_rev)
            e->watch_rev = kv->mod_revision;
        gn_slice name;
        if (gni_etcd_key_to_node(e->cluster, kv->key, &name) < 0)
            continue;
        if (e->node && name.len == strlen(e->node) && memcmp(name.base, e->node, name.len) == 0)
            continue; /* our own key: Ergo does not report itself */
        if (e->o.on_node && !e->closing)
            e->o.on_node(e, name, !kv->deleted, e->o.user_data);
    }
}

/* ---- resolve ------------------------------------------------------------------------------ */

static void eu_resolve_done(gni_etcd_uv *e, eu_call *c, int err, const gni_etcd_result *res)
{
    if (err < 0 || !res) {
        c->rcb(err < 0 ? err : GN_EPROTO, NULL, 0, c->rud);
        return;
    }
    if (res->count == 0 || res->nkvs == 0) {
        c->rcb(GN_ENOTFOUND, NULL, 0, c->rud);
        return;
    }
    gn_edf_arena *a = gn_edf_arena_new(0, 1u << 20);
    if (!a) {
        c->rcb(GN_ENOMEM, NULL, 0, c->rud);
        return;
    }
    const gni_reg_route *routes = NULL;
    uint32_t n = 0;
    int rc = gni_etcd_routes_decode(e->o.reg, a, res->kvs[0].value.base, res->kvs[0].value.len,
                                    &routes, &n);
    if (rc == 0 && n == 0)
        rc = GN_ENOTFOUND;
    if (rc < 0 && rc != GN_ENOTFOUND)
        eu_diag(e, rc, "a route value in etcd is not Ergo's base64 EDF []gen.Route");
    c->rcb(rc, rc == 0 ? routes : NULL, rc == 0 ? n : 0, c->rud);
    gn_edf_arena_free(a);
}

int gni_etcd_uv_resolve(gni_etcd_uv *e, const char *node, gni_etcd_uv_resolve_cb cb, void *ud)
{
    if (!e || !node || !cb)
        return GN_EINVAL;
    if (e->closing)
        return GN_ECLOSED;
    uint8_t key[GNI_ETCD_KEY_MAX];
    gn_buf b;
    gn_buf_init(&b, key, sizeof key);
    int rc = gni_etcd_key_node(e->cluster, gn_slice_of(node, strlen(node)), &b);
    if (rc < 0)
        return rc;
    gni_etcd_req rq = {.op = GNI_ETCD_RANGE, .key = gn_slice_of(key, gn_buf_len(&b))};
    return eu_submit(e, &rq, eu_resolve_done, cb, ud, false);
}

/* ---- start, close -------------------------------------------------------------------------- */

/* "host:port" or "http://host:port"; host an IPv4 literal or localhost. */
static int eu_endpoint(gni_etcd_uv *e, const char *ep)
{
    if (!ep)
        ep = "localhost:2379";
    if (strncmp(ep, "https://", 8) == 0) {
        GN_LOG(GN_LOG_ERR, EU_LOG, "endpoint %s: TLS is not supported (plain http only)", ep);
        return GN_EINVAL;
    }
    if (strncmp(ep, "http://", 7) == 0)
        ep += 7;
    const char *colon = strrchr(ep, ':');
    char host[64];
    size_t hl = colon ? (size_t)(colon - ep) : 0;
    char *endp = NULL;
    long port = colon ? strtol(colon + 1, &endp, 10) : 0;
    if (!colon || hl == 0 || hl >= sizeof host || !endp || *endp || port < 1 || port > 65535) {
        GN_LOG(GN_LOG_ERR, EU_LOG, "endpoint %s: not host:port", ep);
        return GN_EINVAL;
    }
    memcpy(host, ep, hl);
    host[hl] = 0;
    const char *ip = strcmp(host, "localhost") == 0 ? "127.0.0.1" : host;
    if (uv_ip4_addr(ip, (int)port, &e->addr) != 0) {
        GN_LOG(GN_LOG_ERR, EU_LOG,
               "endpoint %s: the host must be an IPv4 literal or localhost (no DNS here)", ep);
        return GN_EINVAL;
    }
    snprintf(e->authority, sizeof e->authority, "%s:%ld", host, port);
    return 0;
}

static char *eu_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = gn_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static void eu_free(gni_etcd_uv *e)
{
    gn_free(e->cluster);
    gn_free(e->node);
    gn_free(e->value);
    gn_free(e);
}

int gni_etcd_uv_start(uv_loop_t *loop, const gni_etcd_uv_options *o, gni_etcd_uv **out)
{
    if (!loop || !o || !out || !o->reg || (!o->routes && o->nroutes))
        return GN_EINVAL;
    *out = NULL;
    gni_etcd_uv *e = gn_calloc(1, sizeof *e);
    if (!e)
        return GN_ENOMEM;
    e->loop = loop;
    e->o = *o;
    if (!e->o.lease_ttl_s)
        e->o.lease_ttl_s = GNI_ETCD_TTL_DEFAULT;
    if (!e->o.timeout_ms)
        e->o.timeout_ms = GNI_ETCD_UV_TIMEOUT_DEFAULT;
    if (!e->o.retry_ms)
        e->o.retry_ms = EU_RETRY_DEFAULT;
    int rc = eu_endpoint(e, o->endpoint);
    if (rc < 0)
        goto fail;
    e->cluster = eu_strdup(o->cluster && o->cluster[0] ? o->cluster : GNI_ETCD_CLUSTER_DEFAULT);
    if (!e->cluster)
        goto nomem;
    gn_buf b;
    gn_buf_init(&b, e->prefix, sizeof e->prefix);
    if ((rc = gni_etcd_key_nodes(e->cluster, &b)) < 0) {
        GN_LOG(GN_LOG_ERR, EU_LOG, "cluster name %s: 1..255 bytes, no '/'", e->cluster);
        goto fail;
    }
    e->prefix_len = (size_t)rc;
    if (o->node) {
        if (!strchr(o->node, '@')) {
            GN_LOG(GN_LOG_ERR, EU_LOG, "node name %s: must be name@host", o->node);
            rc = GN_EINVAL;
            goto fail;
        }
        e->node = eu_strdup(o->node);
        if (!e->node)
            goto nomem;
        gn_buf_init(&b, e->key, sizeof e->key - 1);
        if ((rc = gni_etcd_key_node(e->cluster, gn_slice_of(e->node, strlen(e->node)), &b)) < 0) {
            GN_LOG(GN_LOG_ERR, EU_LOG, "node name %s: 1..255 bytes, no '/'", o->node);
            goto fail;
        }
        e->key_len = (size_t)rc;
        e->key[e->key_len] = 0;
        gn_edf_arena *a = gn_edf_arena_new(0, 1u << 20);
        size_t cap = GNI_ETCD_VALUE_MAX / 3 * 4 + 8;
        e->value = gn_malloc(cap);
        if (!a || !e->value) {
            gn_edf_arena_free(a);
            goto nomem;
        }
        gn_buf_init(&b, e->value, cap);
        rc = gni_etcd_routes_encode(o->reg, a, o->routes, o->nroutes, &b);
        gn_edf_arena_free(a);
        if (rc < 0) {
            GN_LOG(GN_LOG_ERR, EU_LOG, "the routes of %s do not encode as EDF (%s)", o->node,
                   gn_err_name(rc));
            goto fail;
        }
        e->value_len = (size_t)rc;
    }
    e->unary.e = e->watchc.e = e;
    e->watchc.watch = true;
    uv_timer_t *timers[5] = {&e->unary.timer, &e->watchc.timer, &e->ka_timer, &e->retry_timer,
                             &e->watch_timer};
    for (int i = 0; i < 5; i++) {
        uv_timer_init(loop, timers[i]);
        e->open_handles++;
    }
    e->unary.timer.data = &e->unary;
    e->watchc.timer.data = &e->watchc;
    e->ka_timer.data = e->retry_timer.data = e->watch_timer.data = e;
    *out = e;
    eu_register_start(e);
    if (o->watch)
        eu_watch_start(e);
    return 0;
nomem:
    rc = GN_ENOMEM;
fail:
    eu_free(e);
    return rc;
}

gni_etcd_uv_state gni_etcd_uv_get_state(const gni_etcd_uv *e)
{
    return e ? e->st : GNI_ETCD_UV_STARTING;
}

int64_t gni_etcd_uv_lease(const gni_etcd_uv *e)
{
    return e && e->st == GNI_ETCD_UV_REGISTERED ? e->lease : 0;
}

const char *gni_etcd_uv_diag(const gni_etcd_uv *e)
{
    return e ? e->diag : "";
}

static void eu_finish_close(gni_etcd_uv *e)
{
    if (e->unary.state == CONN_READY || e->unary.state == CONN_CONNECTING) {
        if (e->unary.cur || e->head)
            return; /* the revoke is still under way */
        eu_conn_close(&e->unary, GN_ECANCELED);
    }
    if (e->watchc.state == CONN_READY || e->watchc.state == CONN_CONNECTING)
        eu_conn_close(&e->watchc, GN_ECANCELED);
    if (e->unary.state != CONN_CLOSED || e->watchc.state != CONN_CLOSED)
        return;
    if (!e->timers_closed) { /* timers close once, after the sockets */
        e->timers_closed = true;
        uv_timer_t *timers[5] = {&e->unary.timer, &e->watchc.timer, &e->ka_timer,
                                 &e->retry_timer, &e->watch_timer};
        for (int i = 0; i < 5; i++) {
            timers[i]->data = e; /* the connections' timers pointed at their connection */
            uv_close((uv_handle_t *)timers[i], eu_handle_closed);
        }
        return;
    }
    if (e->open_handles)
        return;
    void (*cb)(void *) = e->close_cb;
    void *ud = e->close_ud;
    eu_free(e);
    if (cb)
        cb(ud);
}

static void eu_revoke_done(gni_etcd_uv *e, eu_call *c, int err, const gni_etcd_result *res)
{
    (void)c, (void)res;
    if (err < 0)
        GN_LOG(GN_LOG_NOTICE, EU_LOG, "revoking the lease at close failed (%s); it will expire",
               gn_err_name(err));
    (void)e;
}

void gni_etcd_uv_close(gni_etcd_uv *e, bool revoke, void (*cb)(void *ud), void *ud)
{
    if (!e || e->closing)
        return;
    e->close_cb = cb;
    e->close_ud = ud;
    uv_timer_stop(&e->ka_timer);
    uv_timer_stop(&e->retry_timer);
    uv_timer_stop(&e->watch_timer);
    int64_t lease = e->st == GNI_ETCD_UV_REGISTERED ? e->lease : 0;
    e->closing = true;
    /* what waits is canceled; the call in flight finishes (or times out) */
    eu_fail_queue(e, GN_ECANCELED);
    if (e->unary.cur) {
        eu_call_complete(e, e->unary.cur, GN_ECANCELED, NULL);
        eu_conn_close(&e->unary, GN_ECANCELED);
    }
    if (revoke && lease) {
        gni_etcd_req rq = {.op = GNI_ETCD_REVOKE, .lease = lease};
        if (eu_submit(e, &rq, eu_revoke_done, NULL, NULL, true) == 0 &&
            e->unary.state == CONN_CLOSING)
            return; /* the close callback connects again for it */
    }
    eu_finish_close(e);
}
