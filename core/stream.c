/*
 * The stream dispatchers: consumer calls go through here to the
 * implementation's ops, events come back through gn_stream_emit_*().
 * Core keeps the flags (reading, eof, error, closing) and the metrics so
 * every implementation behaves alike.
 */
#include "golemnet/loop.h"
#include "golemnet/stream.h"

#include "gni.h"

#include <string.h>

#define PUSHBACK_MAX (16u << 20)
/* private flag: an EOF waits behind pushed-back bytes */
#define STREAM_EOF_DEFERRED 0x10000u
/* the implementation is held stopped until the pushed-back bytes are
 * delivered, so it adds nothing behind them meanwhile */
#define STREAM_IMPL_PAUSED GN_STREAM_HELD
/* the consumer wants data (whether or not the implementation is held) */
#define WANTS_DATA(s) (((s)->flags & GN_STREAM_READING) != 0)

/* A deferred pushback delivery; cancelled when the stream closes first. */
struct gni_stream_flush {
    gn_stream *s;
    bool cancelled;
};

int gn_stream_init(gn_stream *s, const gn_stream_ops *ops, gn_loop *loop, gn_stream *below)
{
    assert(ops != NULL && ops->write != NULL && ops->close != NULL);
    if (ops->abi != GN_STREAM_ABI) {
        return GN_EABI;
    }
    s->ops = ops;
    s->loop = loop;
    s->below = below;
    s->handler = NULL;
    s->handler_data = NULL;
    s->close_cb = NULL;
    s->close_arg = NULL;
    s->flags = 0;
    s->metrics = (gn_stream_metrics){0};
    s->metrics.opened_at = loop ? gn_loop_now(loop) : 0;
    s->pushback = NULL;
    s->pushback_len = 0;
    s->flush = NULL;
    return 0;
}

void gn_stream_set_handler(gn_stream *s, const gn_stream_handler *h, void *user_data)
{
    s->handler = h;
    s->handler_data = user_data;
}

static bool closing(const gn_stream *s)
{
    return (s->flags & (GN_STREAM_CLOSING | GN_STREAM_CLOSED)) != 0;
}

static void pushback_schedule(gn_stream *s);

static void pushback_flush(gn_loop *loop, void *arg)
{
    (void)loop;
    struct gni_stream_flush *f = arg;
    gn_stream *s = f->s;
    bool cancelled = f->cancelled;
    gn_free(f);
    if (cancelled) {
        return;
    }
    s->flush = NULL;
    if (!WANTS_DATA(s) || s->pushback_len == 0 || closing(s)) {
        return;
    }
    uint8_t *data = s->pushback;
    size_t len = s->pushback_len;
    s->pushback = NULL;
    s->pushback_len = 0;
    s->metrics.bytes_in += len;
    if (s->handler && s->handler->on_data) {
        s->handler->on_data(s, s->handler_data, data, len);
    }
    gn_free(data);
    if (closing(s)) {
        return;
    }
    if (s->pushback_len > 0) {
        if (WANTS_DATA(s)) {
            pushback_schedule(s); /* the consumer pushed some back again */
        }
        return;
    }
    if ((s->flags & STREAM_EOF_DEFERRED)) {
        s->flags &= ~STREAM_EOF_DEFERRED;
        gn_stream_emit_eof(s);
        return;
    }
    if ((s->flags & STREAM_IMPL_PAUSED) && WANTS_DATA(s)) {
        s->flags &= ~STREAM_IMPL_PAUSED;
        if (s->ops->read_start && s->ops->read_start(s) < 0) {
            gn_stream_emit_error(s, GN_EIO);
        }
    }
}

static void pushback_schedule(gn_stream *s)
{
    if (s->flush || !s->loop) {
        return;
    }
    struct gni_stream_flush *f = gn_malloc(sizeof *f);
    if (!f) {
        return;
    }
    f->s = s;
    f->cancelled = false;
    if (gn_loop_defer(s->loop, pushback_flush, f) < 0) {
        gn_free(f);
        return;
    }
    s->flush = f;
}

/* Appends (or prepends) bytes to the pushback buffer. */
static int pushback_add(gn_stream *s, const uint8_t *data, size_t len, bool front)
{
    if (len > PUSHBACK_MAX || s->pushback_len > PUSHBACK_MAX - len) {
        return GN_ETOOBIG;
    }
    uint8_t *nb = gn_realloc(s->pushback, s->pushback_len + len);
    if (!nb) {
        return GN_ENOMEM;
    }
    if (front) {
        memmove(nb + len, nb, s->pushback_len);
        memcpy(nb, data, len);
    } else {
        memcpy(nb + s->pushback_len, data, len);
    }
    s->pushback = nb;
    s->pushback_len += len;
    return 0;
}

int gn_stream_unread(gn_stream *s, const uint8_t *data, size_t len)
{
    if (closing(s)) {
        return GN_ECLOSED;
    }
    if (len == 0) {
        return 0;
    }
    int rc = pushback_add(s, data, len, true);
    if (rc == 0 && WANTS_DATA(s)) {
        if (!(s->flags & STREAM_IMPL_PAUSED)) {
            /* hold the implementation until these bytes are delivered */
            s->flags |= STREAM_IMPL_PAUSED;
            if (s->ops->read_stop) {
                s->ops->read_stop(s);
            }
        }
        pushback_schedule(s);
    }
    return rc;
}

int gn_stream_write(gn_stream *s, const gn_slice *iov, size_t iovcnt, gn_write_cb cb, void *arg)
{
    if (closing(s)) {
        return GN_ECLOSED;
    }
    if (iovcnt == 0 || iov == NULL) {
        return GN_EINVAL;
    }
    if (s->flags & GN_STREAM_SHUT_SENT) {
        return GN_EPIPE;
    }
    size_t len = 0;
    for (size_t i = 0; i < iovcnt; i++) {
        len += iov[i].len;
    }
    int rc = s->ops->write(s, iov, iovcnt, cb, arg);
    if (rc == 0) {
        s->metrics.write_queued += len;
    }
    return rc;
}

int gn_stream_read_start(gn_stream *s)
{
    if (closing(s)) {
        return GN_ECLOSED;
    }
    if (s->flags & GN_STREAM_READING) {
        return 0;
    }
    s->flags |= GN_STREAM_READING;
    if (s->pushback_len > 0) {
        /* pushed-back bytes first; the implementation resumes after them */
        s->flags |= STREAM_IMPL_PAUSED;
        pushback_schedule(s);
        return 0;
    }
    int rc = s->ops->read_start ? s->ops->read_start(s) : 0;
    if (rc < 0) {
        s->flags &= ~GN_STREAM_READING;
    }
    return rc;
}

int gn_stream_read_stop(gn_stream *s)
{
    if (closing(s)) {
        return GN_ECLOSED;
    }
    if (!(s->flags & GN_STREAM_READING)) {
        return 0;
    }
    s->flags &= ~GN_STREAM_READING;
    if (s->flags & STREAM_IMPL_PAUSED) {
        s->flags &= ~STREAM_IMPL_PAUSED; /* already stopped below */
        return 0;
    }
    return s->ops->read_stop ? s->ops->read_stop(s) : 0;
}

int gn_stream_shutdown(gn_stream *s)
{
    if (closing(s)) {
        return GN_ECLOSED;
    }
    if (s->flags & GN_STREAM_SHUT_SENT) {
        return GN_ESTATE;
    }
    if (s->ops->shutdown == NULL) {
        return GN_ENOTSUP;
    }
    int rc = s->ops->shutdown(s);
    if (rc == 0) {
        s->flags |= GN_STREAM_SHUT_SENT;
    }
    return rc;
}

static void begin_close(gn_stream *s, gn_close_cb cb, void *arg, bool reset)
{
    assert(!closing(s) && "gn_stream_close called twice");
    if (closing(s)) {
        return;
    }
    s->flags |= GN_STREAM_CLOSING;
    s->flags &= ~GN_STREAM_READING;
    s->close_cb = cb;
    s->close_arg = arg;
    if (reset && s->ops->reset) {
        s->ops->reset(s);
    } else {
        s->ops->close(s);
    }
}

void gn_stream_reset(gn_stream *s, gn_close_cb cb, void *arg)
{
    begin_close(s, cb, arg, true);
}

void gn_stream_close(gn_stream *s, gn_close_cb cb, void *arg)
{
    begin_close(s, cb, arg, false);
}

int gn_stream_addr(gn_stream *s, gn_stream_addr_kind kind, gn_multiaddr **out)
{
    for (gn_stream *cur = s; cur != NULL; cur = cur->below) {
        if (cur->ops->addr) {
            int rc = cur->ops->addr(cur, kind, out);
            if (rc != GN_ENOTSUP) {
                return rc;
            }
        }
    }
    return GN_ENOTSUP;
}

int gn_stream_query(gn_stream *s, int key, void *out, size_t out_len)
{
    for (gn_stream *cur = s; cur != NULL; cur = cur->below) {
        if (cur->ops->query) {
            int rc = cur->ops->query(cur, key, out, out_len);
            if (rc != GN_ENOTSUP) {
                return rc;
            }
        }
    }
    return GN_ENOTSUP;
}

void gn_stream_get_metrics(const gn_stream *s, gn_stream_metrics *m)
{
    *m = s->metrics;
}

uint32_t gn_stream_flags(const gn_stream *s)
{
    return s->flags;
}

/* ---- implementation side ---- */

void gn_stream_emit_data(gn_stream *s, const uint8_t *data, size_t len)
{
    if (len == 0 || closing(s) || (s->flags & (GN_STREAM_EOF_RECV | GN_STREAM_ERRORED))) {
        return;
    }
    if (s->pushback_len > 0) {
        /* older pushed-back bytes go first */
        if (pushback_add(s, data, len, false) < 0) {
            gn_stream_emit_error(s, GN_ENOMEM);
        }
        return;
    }
    s->metrics.bytes_in += len;
    if (s->handler && s->handler->on_data) {
        s->handler->on_data(s, s->handler_data, data, len);
    }
}

void gn_stream_emit_eof(gn_stream *s)
{
    if (closing(s) || (s->flags & (GN_STREAM_EOF_RECV | GN_STREAM_ERRORED))) {
        return;
    }
    if (s->pushback_len > 0) {
        s->flags |= STREAM_EOF_DEFERRED;
        return;
    }
    s->flags |= GN_STREAM_EOF_RECV;
    if (s->handler && s->handler->on_eof) {
        s->handler->on_eof(s, s->handler_data);
    }
}

void gn_stream_emit_error(gn_stream *s, int err)
{
    if (closing(s) || (s->flags & GN_STREAM_ERRORED)) {
        return;
    }
    s->flags |= GN_STREAM_ERRORED;
    if (s->handler && s->handler->on_error) {
        s->handler->on_error(s, s->handler_data, err < 0 ? err : GN_EIO);
    }
}

void gn_stream_emit_writable(gn_stream *s)
{
    if (closing(s) || (s->flags & GN_STREAM_ERRORED)) {
        return;
    }
    if (s->handler && s->handler->on_writable) {
        s->handler->on_writable(s, s->handler_data);
    }
}

void gn_stream_complete_write(gn_stream *s, gn_write_cb cb, void *arg, size_t len, int status)
{
    s->metrics.write_queued -= GNI_MIN(s->metrics.write_queued, (uint64_t)len);
    if (status == 0) {
        s->metrics.bytes_out += len;
        s->metrics.writes_out++;
    }
    if (cb) {
        cb(arg, status);
    }
}

void gn_stream_emit_closed(gn_stream *s)
{
    if (s->flush) {
        s->flush->cancelled = true;
        s->flush = NULL;
    }
    gn_free(s->pushback);
    s->pushback = NULL;
    s->pushback_len = 0;
    s->flags |= GN_STREAM_CLOSED;
    s->flags &= ~GN_STREAM_CLOSING;
    if (s->close_cb) {
        gn_close_cb cb = s->close_cb;
        s->close_cb = NULL;
        cb(s, s->close_arg);
    }
}
