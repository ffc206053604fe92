/* /echo/1.0.0 listener: a bounded double-buffered echo. See echo.h. */
#include "echo.h"

#include "gni.h"

#include <string.h>

typedef struct echo_srv {
    gn_stream *s;
    gni_app_done_cb cb;
    void *arg;
    uint8_t *buf[2];  /* GNI_ECHO_BUF each */
    size_t fill;      /* bytes in buf[cur] (the half being filled) */
    int cur;
    bool writing;     /* buf[1 - cur] is in flight */
    bool eof;
    bool finished;
    bool closed;
} echo_srv;

static void echo_free(echo_srv *e)
{
    gn_free(e->buf[0]);
    gn_free(e->buf[1]);
    gn_free(e);
}

static void echo_closed(gn_stream *s, void *arg)
{
    (void)s;
    echo_srv *e = arg;
    e->closed = true;
    if (!e->writing) {
        echo_free(e);
    }
}

static void echo_finish(echo_srv *e, int status)
{
    if (e->finished) {
        return;
    }
    e->finished = true;
    if (status < 0) {
        GN_LOG(GN_LOG_INFO, "echo", "echo stream ends: %s", gn_err_name(status));
    }
    gn_stream_set_handler(e->s, NULL, NULL);
    if (status == 0) {
        int rc = gn_stream_shutdown(e->s);
        (void)rc; /* GN_ENOTSUP: the close ends the stream anyway */
        gn_stream_close(e->s, echo_closed, e);
    } else {
        gn_stream_reset(e->s, echo_closed, e);
    }
    if (e->cb) {
        e->cb(e->arg, status);
    }
}

static void echo_written(void *arg, int status);

/* Sends the filled half if nothing is in flight. */
static int echo_flush(echo_srv *e)
{
    if (e->writing || e->fill == 0) {
        return 0;
    }
    gn_slice iov = gn_slice_of(e->buf[e->cur], e->fill);
    int rc = gn_stream_write(e->s, &iov, 1, echo_written, e);
    if (rc == GN_EAGAIN) {
        return 0; /* retried from on_writable */
    }
    if (rc < 0) {
        return rc;
    }
    e->writing = true;
    e->cur = 1 - e->cur;
    e->fill = 0;
    return 0;
}

static void echo_written(void *arg, int status)
{
    echo_srv *e = arg;
    e->writing = false;
    if (e->closed) {
        echo_free(e);
        return;
    }
    if (e->finished) {
        return;
    }
    int rc = status;
    if (rc == 0) {
        rc = echo_flush(e);
    }
    if (rc == 0 && e->eof && !e->writing && e->fill == 0) {
        echo_finish(e, 0);
        return;
    }
    if (rc == 0 && !e->eof) {
        rc = gn_stream_read_start(e->s); /* room again */
    }
    if (rc < 0) {
        echo_finish(e, rc);
    }
}

static void echo_data(gn_stream *s, void *ud, const uint8_t *data, size_t len)
{
    echo_srv *e = ud;
    if (e->finished) {
        return;
    }
    size_t take = GNI_MIN(len, GNI_ECHO_BUF - e->fill);
    memcpy(e->buf[e->cur] + e->fill, data, take);
    e->fill += take;
    int rc = echo_flush(e);
    if (rc == 0 && (take < len || e->fill == GNI_ECHO_BUF)) {
        /* both halves busy: stop reading, keep the rest for later */
        rc = gn_stream_read_stop(s);
        if (rc == 0 && take < len) {
            rc = gn_stream_unread(s, data + take, len - take);
        }
    }
    if (rc < 0) {
        echo_finish(e, rc);
    }
}

static void echo_eof(gn_stream *s, void *ud)
{
    (void)s;
    echo_srv *e = ud;
    e->eof = true;
    if (!e->writing && e->fill == 0) {
        echo_finish(e, 0);
        return;
    }
    int rc = echo_flush(e);
    if (rc < 0) {
        echo_finish(e, rc);
    }
}

static void echo_error(gn_stream *s, void *ud, int err)
{
    (void)s;
    echo_finish(ud, err);
}

static void echo_writable(gn_stream *s, void *ud)
{
    (void)s;
    echo_srv *e = ud;
    int rc = echo_flush(e);
    if (rc < 0) {
        echo_finish(e, rc);
    }
}

static const gn_stream_handler echo_handler = {echo_data, echo_eof, echo_error, echo_writable};

int gni_echo_serve(gn_stream *s, gni_app_done_cb cb, void *arg)
{
    if (!s) {
        return GN_EINVAL;
    }
    echo_srv *e = gn_calloc(1, sizeof *e);
    if (!e || !(e->buf[0] = gn_malloc(GNI_ECHO_BUF)) || !(e->buf[1] = gn_malloc(GNI_ECHO_BUF))) {
        if (e) {
            echo_free(e);
        }
        return GN_ENOMEM;
    }
    e->s = s;
    e->cb = cb;
    e->arg = arg;
    gn_stream_set_handler(s, &echo_handler, e);
    int rc = gn_stream_read_start(s);
    if (rc < 0) {
        gn_stream_set_handler(s, NULL, NULL);
        echo_free(e);
        return rc;
    }
    return 0;
}
