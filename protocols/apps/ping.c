/* libp2p ping: sans-I/O core and stream drivers. See ping.h. */
#include "ping.h"

#include "gni.h"

#include <string.h>

/* ---- core ---- */

void gni_ping_core_init(gni_ping_core *p)
{
    memset(p, 0, sizeof *p);
}

int gni_ping_core_start(gni_ping_core *p, const gn_rng *rng, gn_time now,
                        uint8_t out[GNI_PING_SIZE])
{
    if (!p || !rng || !out) {
        return GN_EINVAL;
    }
    if (p->outstanding) {
        return GN_ESTATE;
    }
    gn_rng_fill(rng, p->payload, GNI_PING_SIZE);
    memcpy(out, p->payload, GNI_PING_SIZE);
    p->got = 0;
    p->outstanding = true;
    p->sent_at = now;
    return 0;
}

int gni_ping_core_feed(gni_ping_core *p, const uint8_t *in, size_t len, size_t *consumed,
                       gn_time now, gn_time *rtt)
{
    *consumed = 0;
    if (len == 0) {
        return 0;
    }
    if (!p->outstanding) {
        return GN_EPROTO;
    }
    size_t n = GNI_MIN(len, GNI_PING_SIZE - p->got);
    if (memcmp(in, p->payload + p->got, n) != 0) {
        return GN_EPROTO;
    }
    p->got += n;
    *consumed = n;
    if (p->got < GNI_PING_SIZE) {
        return 0;
    }
    p->outstanding = false;
    p->got = 0;
    gn_time d = now > p->sent_at ? now - p->sent_at : 0;
    *rtt = d > 0 ? d : 1;
    return 1;
}

/* ---- listener driver ---- */

typedef struct ping_srv {
    gn_stream *s;
    gni_app_done_cb cb;
    void *arg;
    uint8_t blk[GNI_PING_SIZE];
    size_t n;
    bool writing;
    bool eof;
    bool finished;
    bool closed;
} ping_srv;

static void srv_closed(gn_stream *s, void *arg)
{
    (void)s;
    ping_srv *v = arg;
    v->closed = true;
    if (!v->writing) {
        gn_free(v);
    }
}

static void srv_finish(ping_srv *v, int status)
{
    if (v->finished) {
        return;
    }
    v->finished = true;
    gn_stream_set_handler(v->s, NULL, NULL);
    if (status == 0) {
        int rc = gn_stream_shutdown(v->s);
        (void)rc; /* GN_ENOTSUP / GN_ESTATE: closing is enough */
        gn_stream_close(v->s, srv_closed, v);
    } else {
        gn_stream_reset(v->s, srv_closed, v);
    }
    if (v->cb) {
        v->cb(v->arg, status);
    }
}

static void srv_written(void *arg, int status)
{
    ping_srv *v = arg;
    v->writing = false;
    if (v->closed) {
        gn_free(v);
        return;
    }
    if (v->finished) {
        return;
    }
    if (status < 0) {
        srv_finish(v, status);
    } else if (v->eof) {
        srv_finish(v, 0);
    } else {
        int rc = gn_stream_read_start(v->s);
        if (rc < 0) {
            srv_finish(v, rc);
        }
    }
}

static void srv_data(gn_stream *s, void *ud, const uint8_t *data, size_t len)
{
    ping_srv *v = ud;
    if (v->finished) {
        return;
    }
    if (v->writing) { /* should not happen: reading is stopped */
        int rc = gn_stream_read_stop(s);
        if (rc == 0) {
            rc = gn_stream_unread(s, data, len);
        }
        if (rc < 0) {
            srv_finish(v, rc);
        }
        return;
    }
    size_t take = GNI_MIN(len, GNI_PING_SIZE - v->n);
    memcpy(v->blk + v->n, data, take);
    v->n += take;
    if (v->n < GNI_PING_SIZE) {
        return;
    }
    v->n = 0;
    gn_slice iov = gn_slice_of(v->blk, GNI_PING_SIZE);
    int rc = gn_stream_write(s, &iov, 1, srv_written, v);
    if (rc < 0) {
        srv_finish(v, rc);
        return;
    }
    v->writing = true;
    rc = gn_stream_read_stop(s);
    if (rc == 0 && take < len) {
        rc = gn_stream_unread(s, data + take, len - take);
    }
    if (rc < 0) {
        srv_finish(v, rc);
    }
}

static void srv_eof(gn_stream *s, void *ud)
{
    (void)s;
    ping_srv *v = ud;
    v->eof = true;
    if (!v->writing) {
        srv_finish(v, 0);
    }
}

static void srv_error(gn_stream *s, void *ud, int err)
{
    (void)s;
    srv_finish(ud, err);
}

static const gn_stream_handler srv_handler = {srv_data, srv_eof, srv_error, NULL};

int gni_ping_serve(gn_stream *s, gni_app_done_cb cb, void *arg)
{
    if (!s) {
        return GN_EINVAL;
    }
    ping_srv *v = gn_calloc(1, sizeof *v);
    if (!v) {
        return GN_ENOMEM;
    }
    v->s = s;
    v->cb = cb;
    v->arg = arg;
    gn_stream_set_handler(s, &srv_handler, v);
    int rc = gn_stream_read_start(s);
    if (rc < 0) {
        gn_stream_set_handler(s, NULL, NULL);
        gn_free(v);
        return rc;
    }
    return 0;
}

/* ---- dialer driver ---- */

struct gni_pinger {
    gn_stream *s;
    const gn_rng *rng;
    gni_ping_core core;
    gn_timer timer;
    gni_ping_cb cb;
    void *arg;
    int err;          /* sticky failure */
    unsigned writes;  /* completions still to come */
    bool closing;     /* gni_pinger_close() called */
    bool closed;      /* the stream's close callback ran */
};

typedef struct ping_wr {
    gni_pinger *p;
    uint8_t bytes[GNI_PING_SIZE];
} ping_wr;

static void pinger_maybe_free(gni_pinger *p)
{
    if (p->closed && p->writes == 0) {
        gn_free(p);
    }
}

/* Completes the outstanding ping, if any. */
static void pinger_complete(gni_pinger *p, int status, gn_time rtt)
{
    gni_ping_cb cb = p->cb;
    p->cb = NULL;
    gn_timer_stop(&p->timer);
    if (cb) {
        cb(p->arg, status, rtt);
    }
}

static void pinger_fail(gni_pinger *p, int err)
{
    if (p->err == 0) {
        p->err = err;
    }
    if (!p->closing) {
        gn_stream_read_stop(p->s);
    }
    pinger_complete(p, err, 0);
}

static void pinger_written(void *arg, int status)
{
    ping_wr *w = arg;
    gni_pinger *p = w->p;
    gn_free(w);
    p->writes--;
    if (status < 0 && !p->closing && p->err == 0) {
        pinger_fail(p, status);
    }
    pinger_maybe_free(p);
}

static void pinger_data(gn_stream *s, void *ud, const uint8_t *data, size_t len)
{
    (void)s;
    gni_pinger *p = ud;
    if (p->err || p->closing) {
        return;
    }
    size_t consumed = 0;
    gn_time rtt = 0;
    int rc = gni_ping_core_feed(&p->core, data, len, &consumed, gn_loop_now(p->s->loop), &rtt);
    if (rc < 0 || (rc == 1 && consumed < len)) {
        pinger_fail(p, GN_EPROTO); /* a mismatch, or bytes nobody asked for */
        return;
    }
    if (rc == 1) {
        pinger_complete(p, 0, rtt);
    }
}

static void pinger_eof(gn_stream *s, void *ud)
{
    (void)s;
    gni_pinger *p = ud;
    if (!p->closing) {
        pinger_fail(p, GN_EEOF);
    }
}

static void pinger_error(gn_stream *s, void *ud, int err)
{
    (void)s;
    gni_pinger *p = ud;
    if (!p->closing) {
        pinger_fail(p, err);
    }
}

static const gn_stream_handler pinger_handler = {pinger_data, pinger_eof, pinger_error, NULL};

static void pinger_timeout(gn_timer *t, void *arg)
{
    (void)t;
    pinger_fail(arg, GN_ETIMEDOUT);
}

int gni_pinger_new(gn_stream *s, const gn_rng *rng, gni_pinger **out)
{
    if (!s || !out) {
        return GN_EINVAL;
    }
    gni_pinger *p = gn_calloc(1, sizeof *p);
    if (!p) {
        return GN_ENOMEM;
    }
    p->s = s;
    p->rng = rng ? rng : gn_rng_system();
    gni_ping_core_init(&p->core);
    gn_timer_init(s->loop, &p->timer);
    gn_stream_set_handler(s, &pinger_handler, p);
    int rc = gn_stream_read_start(s);
    if (rc < 0) {
        gn_stream_set_handler(s, NULL, NULL);
        gn_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

int gni_pinger_ping(gni_pinger *p, gn_time timeout, gni_ping_cb cb, void *arg)
{
    if (!p || !cb || p->closing) {
        return GN_EINVAL;
    }
    if (p->err) {
        return p->err;
    }
    if (p->cb) {
        return GN_ESTATE;
    }
    ping_wr *w = gn_malloc(sizeof *w);
    if (!w) {
        return GN_ENOMEM;
    }
    w->p = p;
    gn_time now = gn_loop_now(p->s->loop);
    int rc = gni_ping_core_start(&p->core, p->rng, now, w->bytes);
    if (rc < 0) {
        gn_free(w);
        return rc;
    }
    rc = gn_timer_start(&p->timer, timeout ? timeout : GNI_PING_TIMEOUT, pinger_timeout, p);
    gn_slice iov = gn_slice_of(w->bytes, GNI_PING_SIZE);
    if (rc == 0) {
        rc = gn_stream_write(p->s, &iov, 1, pinger_written, w);
    }
    if (rc < 0) {
        gn_timer_stop(&p->timer);
        gni_ping_core_init(&p->core);
        gn_free(w);
        return rc;
    }
    p->writes++;
    p->cb = cb;
    p->arg = arg;
    return 0;
}

static void pinger_closed(gn_stream *s, void *arg)
{
    (void)s;
    gni_pinger *p = arg;
    p->closed = true;
    pinger_complete(p, GN_ECANCELED, 0); /* from the loop, not from gni_pinger_close() */
    pinger_maybe_free(p);
}

void gni_pinger_close(gni_pinger *p)
{
    if (!p || p->closing) {
        return;
    }
    p->closing = true;
    gn_timer_stop(&p->timer);
    gn_stream_set_handler(p->s, NULL, NULL);
    int rc = gn_stream_shutdown(p->s);
    (void)rc; /* not supported or already shut: the close ends it */
    gn_stream_close(p->s, pinger_closed, p);
}
