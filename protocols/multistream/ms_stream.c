/* multistream-select over a gn_stream: a thin driver of the sans-I/O core. */
#include "ms_stream.h"

#include "golemnet/log.h"
#include "golemnet/loop.h"
#include "golemnet/rcmgr.h"
#include "gni.h"

#include <string.h>

typedef struct ms_run {
    gn_op op; /* the negotiation's cancellation handle */
    gn_stream *s;
    gni_ms *ms;
    gni_ms_done_cb cb;
    void *arg;
    gn_timer timer;
    bool done;
} ms_run;

static void wrote(void *arg, int status)
{
    (void)status;
    gn_free(arg);
}

/* Writes whatever the core has pending. */
static int flush(ms_run *r)
{
    size_t n = gni_ms_pending(r->ms);
    if (n == 0) {
        return 0;
    }
    uint8_t *mem = gn_malloc(n);
    if (!mem) {
        return GN_ENOMEM;
    }
    gn_buf out;
    gn_buf_init(&out, mem, n);
    int rc = gni_ms_drain(r->ms, &out);
    if (rc < 0) {
        gn_free(mem);
        return rc;
    }
    gn_slice iov = gn_slice_of(out.pos, gn_buf_len(&out));
    rc = gn_stream_write(r->s, &iov, 1, wrote, mem);
    if (rc < 0) {
        gn_free(mem);
    }
    return rc;
}

/*
 * A mux stream accounted in a resource manager leaves the transient scope
 * for its protocol's (docs/limits.md, "Wiring"). Refused: GN_ERESOURCE.
 */
static int set_protocol(gn_stream *s, const char *proto, size_t len)
{
    gn_rcmgr_stream *rs = NULL;
    if (gn_stream_query(s, GN_QUERY_RCMGR_STREAM, &rs, sizeof rs) < 0 || !rs) {
        return 0;
    }
    int rc = gn_rcmgr_stream_set_protocol(rs, proto, len);
    if (rc == GN_ESTATE) {
        return 0; /* moved already (a negotiation nested in another protocol) */
    }
    if (rc < 0) {
        GN_LOG(GN_LOG_INFO, "multistream", "stream for %s not admitted by the resource manager: %s",
               proto, gn_err_name(rc));
    }
    return rc;
}

static void finish(ms_run *r, int status, const uint8_t *leftover, size_t leftover_len)
{
    r->done = true;
    gn_timer_stop(&r->timer);
    gn_stream_read_stop(r->s);
    gn_stream_set_handler(r->s, NULL, NULL);
    char proto[GN_MA_MAX_STRLEN];
    proto[0] = '\0';
    if (status == 0) {
        size_t len = gni_str_copy(proto, sizeof proto, gni_ms_get_protocol(r->ms));
        status = set_protocol(r->s, proto, len);
        if (status == 0 && leftover_len > 0) {
            status = gn_stream_unread(r->s, leftover, leftover_len);
        }
    }
    gni_ms_free(r->ms);
    gni_ms_done_cb cb = r->cb;
    void *arg = r->arg;
    gn_stream *s = r->s;
    gn_free(r);
    cb(arg, status, s, status == 0 ? proto : NULL);
}

static void fail(ms_run *r, int err)
{
    flush(r); /* a final "na" still goes out */
    finish(r, err, NULL, 0);
}

static void on_data(gn_stream *s, void *ud, const uint8_t *data, size_t len)
{
    (void)s;
    ms_run *r = ud;
    if (r->done) {
        return;
    }
    size_t consumed = 0;
    int rc = gni_ms_feed(r->ms, data, len, &consumed);
    if (rc < 0) {
        fail(r, rc);
        return;
    }
    if ((rc = flush(r)) < 0) {
        fail(r, rc);
        return;
    }
    switch (gni_ms_get_status(r->ms)) {
    case GNI_MS_SELECTED:
        finish(r, 0, data + consumed, len - consumed);
        return;
    case GNI_MS_FAILED:
        fail(r, gni_ms_get_error(r->ms));
        return;
    case GNI_MS_LISTED:
        fail(r, GN_ENEGOTIATION);
        return;
    default:
        break;
    }
}

static void on_eof(gn_stream *s, void *ud)
{
    (void)s;
    ms_run *r = ud;
    int rc = gni_ms_feed_eof(r->ms);
    fail(r, rc < 0 ? rc : GN_EEOF);
}

static void on_error(gn_stream *s, void *ud, int err)
{
    (void)s;
    finish(ud, err, NULL, 0);
}

static const gn_stream_handler ms_handler = {on_data, on_eof, on_error, NULL};

/* Completes a cancelled negotiation (from the loop). */
static void cancelled_complete(ms_run *r)
{
    gni_ms_done_cb cb = r->cb;
    void *arg = r->arg;
    gn_stream *s = r->s;
    gn_free(r);
    cb(arg, GN_ECANCELED, s, NULL);
}

static void cancelled_timer(gn_timer *t, void *arg)
{
    (void)t;
    cancelled_complete(arg);
}

static void cancelled_deferred(gn_loop *loop, void *arg)
{
    (void)loop;
    cancelled_complete(arg);
}

/*
 * gn_op_cancel(): stop reading, drop the handler and the core now; the
 * completion follows from the loop through a deferred call or, when that
 * cannot be allocated, the run's own timer (re-arming an armed timer
 * allocates nothing; on a virtual clock it runs at the next advance).
 */
static void ms_cancel(gn_op *op)
{
    ms_run *r = GNI_CONTAINER_OF(op, ms_run, op);
    if (r->done) {
        return;
    }
    r->done = true;
    gn_stream_read_stop(r->s);
    gn_stream_set_handler(r->s, NULL, NULL);
    gni_ms_free(r->ms);
    r->ms = NULL;
    if (gn_loop_defer(r->s->loop, cancelled_deferred, r) == 0) {
        gn_timer_stop(&r->timer);
        return;
    }
    if (gn_timer_start(&r->timer, 0, cancelled_timer, r) == 0) {
        return;
    }
    gn_timer_stop(&r->timer);
    /* out of memory twice over: completing now beats never completing */
    GN_LOG(GN_LOG_ERR, "multistream", "cannot defer a cancellation: completing inline");
    cancelled_complete(r);
}

static void on_timeout(gn_timer *t, void *arg)
{
    (void)t;
    ms_run *r = arg;
    int rc = gni_ms_expire(r->ms, gn_loop_now(r->s->loop));
    fail(r, rc < 0 ? rc : GN_ETIMEDOUT);
}

int gni_ms_negotiate(gn_stream *s, const gni_ms_config *cfg, gni_ms_done_cb cb, void *arg,
                     gn_op **op)
{
    if (op) {
        *op = NULL;
    }
    if (!s || !cfg || !cb || cfg->lazy) {
        return GN_EINVAL;
    }
    ms_run *r = gn_calloc(1, sizeof *r);
    if (!r) {
        return GN_ENOMEM;
    }
    r->op.cancel = ms_cancel;
    r->s = s;
    r->cb = cb;
    r->arg = arg;
    gn_time now = gn_loop_now(s->loop);
    int rc = gni_ms_new(cfg, now, &r->ms);
    if (rc < 0) {
        gn_free(r);
        return rc;
    }
    gn_timer_init(s->loop, &r->timer);
    if (cfg->timeout > 0) {
        rc = gn_timer_start(&r->timer, cfg->timeout, on_timeout, r);
    }
    if (rc == 0) {
        rc = flush(r);
    }
    if (rc == 0) {
        gn_stream_set_handler(s, &ms_handler, r);
        rc = gn_stream_read_start(s);
    }
    if (rc < 0) {
        gn_timer_stop(&r->timer);
        gn_stream_set_handler(s, NULL, NULL);
        gni_ms_free(r->ms);
        gn_free(r);
        return rc;
    }
    if (op) {
        *op = &r->op;
    }
    return 0;
}
