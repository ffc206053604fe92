/* perf over a gn_stream: drives the perf core with bounded chunked writes. See perf.h. */
#include "perf.h"

#include "golemnet/loop.h"
#include "gni.h"

/* The payload: perf does not specify it; zeros, shared by every writer. */
static const uint8_t perf_zeros[GNI_PERF_CHUNK];

typedef struct perf_run {
    gn_stream *s;
    gni_perf core;
    bool client;
    gni_app_done_cb done_cb;
    gni_perf_cb perf_cb;
    void *arg;
    uint8_t hdr[GNI_PERF_HEADER_LEN];
    unsigned inflight; /* writes whose completion is still to come */
    bool blocked;      /* the stream said GN_EAGAIN: wait for on_writable */
    bool finished;
    bool closed;
    gn_time t0;        /* request start */
    gn_time t_up;      /* upload written (0 until then) */
    int err;           /* failure waiting for a deferred report */
} perf_run;

static void perf_maybe_free(perf_run *r)
{
    if (r->closed && r->inflight == 0) {
        gn_free(r);
    }
}

static void perf_closed(gn_stream *s, void *arg)
{
    (void)s;
    perf_run *r = arg;
    r->closed = true;
    perf_maybe_free(r);
}

static double secs(gn_time d)
{
    return (double)d / (double)GN_S;
}

static void perf_finish(perf_run *r, int status)
{
    if (r->finished) {
        return;
    }
    r->finished = true;
    gn_stream_set_handler(r->s, NULL, NULL);
    if (status == 0) {
        if (!r->client) {
            int rc = gn_stream_shutdown(r->s);
            (void)rc; /* GN_ENOTSUP: the close ends the stream anyway */
        }
        gn_stream_close(r->s, perf_closed, r);
    } else {
        gn_stream_reset(r->s, perf_closed, r);
    }
    if (r->client) {
        gn_time now = gn_loop_now(r->s->loop);
        gn_time up = r->t_up ? r->t_up : now;
        r->perf_cb(r->arg, status, status == 0 ? secs(up - r->t0) : 0.0,
                   status == 0 ? secs(now - up) : 0.0);
    } else if (r->done_cb) {
        r->done_cb(r->arg, status);
    }
}

static void perf_written(void *arg, int status);

/* Client: the upload is complete once its last write completed. */
static void perf_check_upload_done(perf_run *r)
{
    if (r->client && r->t_up == 0 && r->inflight == 0 &&
        gni_perf_get_state(&r->core) >= GNI_PERF_CLI_DOWNLOAD) {
        r->t_up = gn_loop_now(r->s->loop);
        if (r->t_up == r->t0) {
            r->t_up++; /* keep "set" distinct from 0 and the times ordered */
        }
    }
}

/* Keeps up to GNI_PERF_INFLIGHT chunk writes in flight. */
static int perf_pump(perf_run *r)
{
    while (!r->blocked && r->inflight < GNI_PERF_INFLIGHT) {
        size_t n = gni_perf_send_budget(&r->core, GNI_PERF_CHUNK);
        if (n == 0) {
            break;
        }
        gn_slice iov = gn_slice_of(perf_zeros, n);
        int rc = gn_stream_write(r->s, &iov, 1, perf_written, r);
        if (rc == GN_EAGAIN) {
            r->blocked = true;
            break;
        }
        if (rc < 0) {
            return rc;
        }
        r->inflight++;
        rc = gni_perf_sent(&r->core, n);
        if (rc < 0) {
            return rc;
        }
        if (rc == 1 && r->client) {
            rc = gn_stream_shutdown(r->s); /* upload over: half-close */
            if (rc < 0 && rc != GN_ENOTSUP) {
                return rc;
            }
        }
    }
    return 0;
}

static void perf_step(perf_run *r)
{
    int rc = perf_pump(r);
    if (rc < 0) {
        perf_finish(r, rc);
        return;
    }
    perf_check_upload_done(r);
    if (!r->client && r->inflight == 0 && gni_perf_get_state(&r->core) == GNI_PERF_DONE) {
        perf_finish(r, 0);
    }
}

static void perf_written(void *arg, int status)
{
    perf_run *r = arg;
    r->inflight--;
    if (r->closed || r->finished) {
        perf_maybe_free(r);
        return;
    }
    if (status < 0) {
        perf_finish(r, status);
        return;
    }
    perf_step(r);
}

static void perf_data(gn_stream *s, void *ud, const uint8_t *data, size_t len)
{
    (void)s;
    perf_run *r = ud;
    if (r->finished) {
        return;
    }
    int rc = gni_perf_feed(&r->core, data, len);
    if (rc < 0) {
        perf_finish(r, rc);
    }
}

static void perf_eof(gn_stream *s, void *ud)
{
    (void)s;
    perf_run *r = ud;
    if (r->finished) {
        return;
    }
    int rc = gni_perf_feed_eof(&r->core);
    if (rc < 0) {
        perf_finish(r, rc);
        return;
    }
    if (r->client) {
        perf_check_upload_done(r);
        perf_finish(r, 0);
        return;
    }
    perf_step(r); /* server: start sending (or close when nothing was asked) */
}

static void perf_error(gn_stream *s, void *ud, int err)
{
    (void)s;
    perf_finish(ud, err);
}

static void perf_writable(gn_stream *s, void *ud)
{
    (void)s;
    perf_run *r = ud;
    if (r->finished) {
        return;
    }
    r->blocked = false;
    perf_step(r);
}

static void perf_deferred_fail(gn_loop *loop, void *arg)
{
    (void)loop;
    perf_run *r = arg;
    r->inflight--; /* the deferred call counted as pending work */
    if (r->closed) {
        perf_maybe_free(r);
        return;
    }
    perf_finish(r, r->err);
}

static const gn_stream_handler perf_handler = {perf_data, perf_eof, perf_error, perf_writable};

static perf_run *perf_new(gn_stream *s, bool client)
{
    perf_run *r = gn_calloc(1, sizeof *r);
    if (r) {
        r->s = s;
        r->client = client;
        r->t0 = gn_loop_now(s->loop);
    }
    return r;
}

int gni_perf_serve(gn_stream *s, gni_app_done_cb cb, void *arg)
{
    if (!s) {
        return GN_EINVAL;
    }
    perf_run *r = perf_new(s, false);
    if (!r) {
        return GN_ENOMEM;
    }
    gni_perf_server_init(&r->core);
    r->done_cb = cb;
    r->arg = arg;
    gn_stream_set_handler(s, &perf_handler, r);
    int rc = gn_stream_read_start(s);
    if (rc < 0) {
        gn_stream_set_handler(s, NULL, NULL);
        gn_free(r);
        return rc;
    }
    return 0;
}

int gni_perf_request(gn_stream *s, uint64_t upload, uint64_t download, gni_perf_cb cb,
                     void *arg)
{
    if (!s || !cb) {
        return GN_EINVAL;
    }
    perf_run *r = perf_new(s, true);
    if (!r) {
        return GN_ENOMEM;
    }
    gni_perf_client_init(&r->core, upload, download);
    r->perf_cb = cb;
    r->arg = arg;
    int empty = gni_perf_client_header(&r->core, r->hdr);
    gn_slice iov = gn_slice_of(r->hdr, sizeof r->hdr);
    /* the count goes out as one write of its own: js-libp2p's server reads it
       from the first chunk it receives */
    int rc = gn_stream_write(s, &iov, 1, perf_written, r);
    if (rc < 0) {
        gn_free(r);
        return rc;
    }
    r->inflight = 1;
    /* from here on the driver owns the stream; failures go through @cb */
    gn_stream_set_handler(s, &perf_handler, r);
    rc = gn_stream_read_start(s);
    if (rc == 0 && empty == 1) {
        rc = gn_stream_shutdown(s);
        if (rc == GN_ENOTSUP) {
            rc = 0;
        }
    }
    if (rc == 0) {
        rc = perf_pump(r);
    }
    if (rc < 0) {
        /* the header write is in: report through @cb, from the loop */
        r->err = rc;
        if (gn_loop_defer(s->loop, perf_deferred_fail, r) < 0) {
            perf_finish(r, rc);
        } else {
            r->inflight++;
        }
    }
    return 0;
}
