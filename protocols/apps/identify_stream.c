/* identify over a gn_stream: a thin driver of the identify core. See identify.h. */
#include "identify.h"

#include "golemnet/multiformats.h"

#include "golemnet/loop.h"
#include "gni.h"

#include <string.h>

typedef struct id_run {
    gn_stream *s;
    gn_timer timer;
    gn_timer fin_timer;    /* serve: the delayed half-close (fin_delay) */
    bool finished;
    bool closed;           /* the stream's close callback ran */
    unsigned writes;       /* write completions still to come */
    /* serve / push */
    uint8_t *msg;
    gni_app_done_cb done_cb;
    bool written;          /* the reply's write completed */
    bool shut;             /* we half-closed */
    /* request / recv push */
    gni_identify_cb cb;
    void *arg;
    bool has_expected;
    bool require_key;
    gn_peer_id expected;
    uint8_t *in;
    size_t in_len;
    size_t in_cap;
} id_run;

static void run_maybe_free(id_run *r)
{
    if (r->closed && r->writes == 0) {
        gn_free(r->msg);
        gn_free(r->in);
        gn_free(r);
    }
}

static void on_closed(gn_stream *s, void *arg)
{
    (void)s;
    id_run *r = arg;
    r->closed = true;
    run_maybe_free(r);
}

/* Stops everything and starts closing (or resetting) the stream. */
static void run_end(id_run *r, bool reset)
{
    r->finished = true;
    gn_timer_stop(&r->timer);
    gn_timer_stop(&r->fin_timer);
    gn_stream_set_handler(r->s, NULL, NULL);
    if (reset) {
        gn_stream_reset(r->s, on_closed, r);
    } else {
        gn_stream_close(r->s, on_closed, r);
    }
}

/* ---- serve / push ---- */

static void serve_finish(id_run *r, int status)
{
    if (r->finished) {
        return;
    }
    run_end(r, status < 0);
    if (r->done_cb) {
        r->done_cb(r->arg, status);
    }
}

static void serve_written(void *arg, int status)
{
    id_run *r = arg;
    r->writes--;
    r->written = true;
    if (status < 0 || r->shut) {
        serve_finish(r, status);
    }
    run_maybe_free(r);
}

static void serve_shutdown(id_run *r)
{
    r->shut = true;
    int rc = gn_stream_shutdown(r->s);
    if (rc < 0 && rc != GN_ENOTSUP) {
        GN_LOG(GN_LOG_DEBUG, "identify", "shutdown failed: %s", gn_err_name(rc));
    }
}

static void serve_fin_due(gn_timer *t, void *arg)
{
    (void)t;
    id_run *r = arg;
    if (r->finished) {
        return;
    }
    serve_shutdown(r);
    if (r->written) {
        serve_finish(r, 0);
    }
}

static void serve_timeout(gn_timer *t, void *arg)
{
    (void)t;
    serve_finish(arg, GN_ETIMEDOUT);
}

/*
 * While the FIN is delayed, watch the stream: a requester that already has
 * the reply (a golemnet peer) half-closes, and then the FIN goes at once;
 * a stream that fails ends the run. Requesters send nothing, so data is
 * ignored.
 */
static void serve_on_data(gn_stream *s, void *ud, const uint8_t *data, size_t len)
{
    (void)s, (void)ud, (void)data, (void)len;
}

static void serve_on_eof(gn_stream *s, void *ud)
{
    (void)s;
    id_run *r = ud;
    if (r->finished || r->shut) {
        return;
    }
    gn_timer_stop(&r->fin_timer);
    serve_shutdown(r);
    if (r->written) {
        serve_finish(r, 0);
    }
}

static void serve_on_error(gn_stream *s, void *ud, int err)
{
    (void)s;
    id_run *r = ud;
    serve_finish(r, r->written ? 0 : err);
}

static const gn_stream_handler serve_handler = {serve_on_data, serve_on_eof, serve_on_error,
                                                NULL};

static int send_info(gn_stream *s, const gni_identify_info *info, gn_time fin_delay,
                     gni_app_done_cb cb, void *arg)
{
    if (!s || !info) {
        return GN_EINVAL;
    }
    gni_identify_info local = *info;
    gn_multiaddr *remote = NULL;
    if (!local.observed_addr && gn_stream_addr(s, GN_ADDR_REMOTE, &remote) == 0) {
        local.observed_addr = remote;
    }
    int rc = 0;
    id_run *r = NULL;
    long n = gni_identify_encoded_len(&local);
    if (n < 0) {
        rc = (int)n;
        goto out;
    }
    r = gn_calloc(1, sizeof *r);
    if (!r || !(r->msg = gn_malloc((size_t)n))) {
        rc = GN_ENOMEM;
        goto out;
    }
    gn_buf b;
    gn_buf_init(&b, r->msg, (size_t)n);
    if ((rc = gni_identify_encode(&local, &b)) < 0) {
        goto out;
    }
    r->s = s;
    r->done_cb = cb;
    r->arg = arg;
    gn_timer_init(s->loop, &r->timer);
    gn_timer_init(s->loop, &r->fin_timer);
    gn_slice iov = gn_slice_of(b.pos, gn_buf_len(&b));
    if ((rc = gn_stream_write(s, &iov, 1, serve_written, r)) < 0) {
        goto out;
    }
    r->writes = 1;
    /* the write is in: from here on the driver owns the stream */
    if (!fin_delay || gn_timer_start(&r->fin_timer, fin_delay, serve_fin_due, r) < 0) {
        serve_shutdown(r);
    } else {
        gn_stream_set_handler(s, &serve_handler, r);
        gn_stream_read_start(s);
    }
    rc = 0;
    if (gn_timer_start(&r->timer, GNI_IDENTIFY_TIMEOUT, serve_timeout, r) < 0) {
        GN_LOG(GN_LOG_DEBUG, "identify", "no timer for the reply");
    }
    r = NULL;
out:
    if (r) {
        gn_free(r->msg);
        gn_free(r);
    }
    gn_multiaddr_free(remote);
    return rc;
}

int gni_identify_serve(gn_stream *s, const gni_identify_info *info, gni_app_done_cb cb,
                       void *arg)
{
    return send_info(s, info, info ? info->fin_delay : 0, cb, arg);
}

int gni_identify_push(gn_stream *s, const gni_identify_info *info, gni_app_done_cb cb,
                      void *arg)
{
    return send_info(s, info, 0, cb, arg);
}

/* ---- request / receive push ---- */

static void req_finish(id_run *r, int status, gni_identify_result *res)
{
    if (r->finished) {
        gni_identify_result_free(res);
        return;
    }
    run_end(r, status < 0 && status != GN_EPEERID && status != GN_EBADKEY);
    r->cb(r->arg, status, status == 0 ? res : NULL);
}

static void req_data(gn_stream *s, void *ud, const uint8_t *data, size_t len)
{
    (void)s;
    id_run *r = ud;
    if (r->finished) {
        return;
    }
    if (len > GNI_IDENTIFY_MAX_MSG - r->in_len) {
        req_finish(r, GN_EFRAMESIZE, NULL);
        return;
    }
    if (r->in_len + len > r->in_cap) {
        size_t cap = r->in_cap ? r->in_cap : 1024;
        while (cap < r->in_len + len) {
            cap *= 2;
        }
        cap = GNI_MIN(cap, (size_t)GNI_IDENTIFY_MAX_MSG);
        uint8_t *nb = gn_realloc(r->in, cap);
        if (!nb) {
            req_finish(r, GN_ENOMEM, NULL);
            return;
        }
        r->in = nb;
        r->in_cap = cap;
    }
    memcpy(r->in + r->in_len, data, len);
    r->in_len += len;
    /*
     * golemnet responders send exactly one length-prefixed message, so their
     * reply is complete without waiting for the FIN (which they delay for
     * js-libp2p's sake, GNI_IDENTIFY_FIN_DELAY). Other agents may send more
     * messages (go-libp2p sends the signed peer record apart): wait for EOF.
     */
    uint64_t mlen;
    int hl = gn_varint_decode(r->in, r->in_len, &mlen);
    if (hl > 0 && r->in_len - (size_t)hl == mlen) {
        gni_identify_result *res = NULL;
        if (gni_identify_decode(r->in, r->in_len, r->has_expected ? &r->expected : NULL,
                                r->require_key, &res) == 0) {
            if (res->agent_version && strncmp(res->agent_version, "golemnet/", 9) == 0) {
                req_finish(r, 0, res);
                return;
            }
            gni_identify_result_free(res);
        }
    }
}

static void req_eof(gn_stream *s, void *ud)
{
    (void)s;
    id_run *r = ud;
    if (r->finished) {
        return;
    }
    gni_identify_result *res = NULL;
    int rc = gni_identify_decode(r->in, r->in_len, r->has_expected ? &r->expected : NULL,
                                 r->require_key, &res);
    req_finish(r, rc, res);
}

/*
 * A stream that fails after a complete reply still yields it (as js-libp2p
 * does): a responder that delays its FIN (gni_identify_info.fin_delay) may
 * close its connection first. A partial reply reports the stream's error.
 */
static void req_error(gn_stream *s, void *ud, int err)
{
    (void)s;
    id_run *r = ud;
    if (r->finished) {
        return;
    }
    gni_identify_result *res = NULL;
    if (r->in_len > 0 && gni_identify_decode(r->in, r->in_len,
                                             r->has_expected ? &r->expected : NULL,
                                             r->require_key, &res) == 0) {
        req_finish(r, 0, res);
        return;
    }
    req_finish(r, err, NULL);
}

static const gn_stream_handler req_handler = {req_data, req_eof, req_error, NULL};

static void req_timeout(gn_timer *t, void *arg)
{
    (void)t;
    req_finish(arg, GN_ETIMEDOUT, NULL);
}

static int start_read(gn_stream *s, const gn_peer_id *expected, gn_time timeout,
                      bool require_key, gni_identify_cb cb, void *arg)
{
    if (!s || !cb) {
        return GN_EINVAL;
    }
    gn_peer_id pid;
    bool have = false;
    if (expected) {
        pid = *expected;
        have = true;
    } else if (gn_stream_query(s, GN_QUERY_REMOTE_PEER_ID, &pid, sizeof pid) > 0) {
        have = true;
    }
    if (!have && require_key) {
        return GN_EINVAL;
    }
    id_run *r = gn_calloc(1, sizeof *r);
    if (!r) {
        return GN_ENOMEM;
    }
    r->s = s;
    r->cb = cb;
    r->arg = arg;
    r->require_key = require_key;
    r->has_expected = have;
    if (have) {
        r->expected = pid;
    }
    gn_timer_init(s->loop, &r->timer);
    int rc = gn_timer_start(&r->timer, timeout ? timeout : GNI_IDENTIFY_TIMEOUT, req_timeout, r);
    if (rc == 0) {
        gn_stream_set_handler(s, &req_handler, r);
        rc = gn_stream_read_start(s);
    }
    if (rc < 0) {
        gn_timer_stop(&r->timer);
        gn_stream_set_handler(s, NULL, NULL);
        gn_free(r);
        return rc;
    }
    return 0;
}

int gni_identify_request(gn_stream *s, const gn_peer_id *expected, gn_time timeout,
                         gni_identify_cb cb, void *arg)
{
    return start_read(s, expected, timeout, true, cb, arg);
}

int gni_identify_recv_push(gn_stream *s, const gn_peer_id *expected, gn_time timeout,
                           gni_identify_cb cb, void *arg)
{
    return start_read(s, expected, timeout, false, cb, arg);
}
