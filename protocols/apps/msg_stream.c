/* /golem/msg/1.0.0 over a gn_stream: message reader and writer. See msg.h. */
#include "msg.h"

#include "golemnet/loop.h"
#include "gni.h"

#include <inttypes.h>
#include <string.h>

#define MSG_STREAM_LOG "msg"

/* ======================= reader ======================= */

struct gni_msg_reader {
    gn_stream *s;
    gni_msg_decoder dec;
    gni_msg_reader_cbs cbs;
    void *arg;
    bool paused;
    bool finished; /* ended or closed by the user: no more callbacks */
    gn_timer stall_timer; /* armed while a partial message waits for bytes */
    gn_rcmgr *rm;          /* memory accounting (gni_msg_reader_account), or NULL */
    gn_rcmgr_stream *span; /* owned: done when the reader is released */
    uint8_t prio;
};

static void reader_end(gni_msg_reader *r, int status);

static void reader_stalled(gn_timer *t, void *arg)
{
    (void)t;
    gni_msg_reader *r = arg;
    gn_time now = gn_loop_now(r->s->loop);
    gn_time dl = gni_msg_decoder_deadline(&r->dec);
    int rc = gni_msg_decoder_expire(&r->dec, now);
    if (rc == 0) {
        if (dl != GN_TIME_INFINITY && gn_timer_start(&r->stall_timer, dl - now, reader_stalled,
                                                     r) < 0) {
            reader_end(r, GN_ENOMEM);
        }
        return;
    }
    GN_LOG(GN_LOG_WARNING, MSG_STREAM_LOG,
           "message stream: a partly received message stalled for %" PRIu64
           " ms: resetting the stream (%s)",
           r->dec.stall_timeout / GN_MS, gn_err_name(rc));
    reader_end(r, rc);
}

/* Arms the stall timer for the partial message, if any (not while paused). */
static void reader_arm(gni_msg_reader *r)
{
    gn_time now = gn_loop_now(r->s->loop);
    gni_msg_decoder_touch(&r->dec, now);
    gn_time dl = gni_msg_decoder_deadline(&r->dec);
    if (r->paused || r->finished || dl == GN_TIME_INFINITY) {
        gn_timer_stop(&r->stall_timer);
        return;
    }
    if (gn_timer_start(&r->stall_timer, dl - now, reader_stalled, r) < 0) {
        reader_end(r, GN_ENOMEM);
    }
}

static void reader_closed(gn_stream *s, void *arg)
{
    (void)s;
    gni_msg_reader *r = arg;
    gni_msg_decoder_fini(&r->dec); /* releases a partial message's reservation */
    gn_rcmgr_stream_done(r->span);
    gn_free(r);
}

static void reader_stop(gni_msg_reader *r, bool reset)
{
    r->finished = true;
    gn_timer_stop(&r->stall_timer);
    gn_stream_set_handler(r->s, NULL, NULL);
    if (reset) {
        gn_stream_reset(r->s, reader_closed, r);
    } else {
        gn_stream_close(r->s, reader_closed, r);
    }
}

static void reader_end(gni_msg_reader *r, int status)
{
    if (r->finished) {
        return;
    }
    reader_stop(r, status != 0);
    if (r->cbs.on_end) {
        r->cbs.on_end(r->arg, status);
    }
}

static void reader_data(gn_stream *s, void *ud, const uint8_t *data, size_t len)
{
    gni_msg_reader *r = ud;
    size_t pos = 0;
    while (pos < len && !r->finished) {
        size_t used = 0;
        gn_rcbuf *m = NULL;
        int rc = gni_msg_decode(&r->dec, data + pos, len - pos, &used, &m);
        pos += used;
        if (rc < 0) {
            reader_end(r, rc);
            return;
        }
        if (rc == 0) {
            break;
        }
        int ret = r->cbs.on_message ? r->cbs.on_message(r->arg, m) : (gn_rcbuf_rele(m), 0);
        if (r->finished) {
            return; /* closed from inside the callback */
        }
        if (ret < 0) {
            reader_end(r, GN_ECALLBACK);
            return;
        }
        if (ret == GNI_MSG_PAUSE) {
            r->paused = true;
            gn_timer_stop(&r->stall_timer); /* a stall of ours, not the peer's */
            rc = gn_stream_read_stop(s);
            if (rc == 0 && pos < len) {
                rc = gn_stream_unread(s, data + pos, len - pos);
            }
            if (rc < 0) {
                reader_end(r, rc);
            }
            return;
        }
    }
    if (!r->finished) {
        reader_arm(r);
    }
}

static void reader_eof(gn_stream *s, void *ud)
{
    (void)s;
    gni_msg_reader *r = ud;
    reader_end(r, gni_msg_decode_eof(&r->dec));
}

static void reader_error(gn_stream *s, void *ud, int err)
{
    (void)s;
    reader_end(ud, err);
}

static const gn_stream_handler reader_handler = {reader_data, reader_eof, reader_error, NULL};

int gni_msg_reader_new(gn_stream *s, size_t max_len, const gni_msg_reader_cbs *cbs, void *arg,
                       gni_msg_reader **out)
{
    if (!s || !cbs || !out) {
        return GN_EINVAL;
    }
    gni_msg_reader *r = gn_calloc(1, sizeof *r);
    if (!r) {
        return GN_ENOMEM;
    }
    int rc = gni_msg_decoder_init(&r->dec, max_len, true);
    if (rc < 0) {
        gn_free(r);
        return rc;
    }
    r->s = s;
    r->cbs = *cbs;
    r->arg = arg;
    gn_timer_init(s->loop, &r->stall_timer);
    gni_msg_decoder_set_stall_timeout(&r->dec, GNI_MSG_STALL_TIMEOUT);
    gn_stream_set_handler(s, &reader_handler, r);
    rc = gn_stream_read_start(s);
    if (rc < 0) {
        gn_stream_set_handler(s, NULL, NULL);
        gn_free(r);
        return rc;
    }
    /* the acceptor never writes: end our direction now */
    rc = gn_stream_shutdown(s);
    (void)rc; /* GN_ENOTSUP: nothing to end */
    *out = r;
    return 0;
}

int gni_msg_reader_resume(gni_msg_reader *r)
{
    if (!r || r->finished) {
        return GN_ECLOSED;
    }
    if (!r->paused) {
        return 0;
    }
    r->paused = false;
    int rc = gn_stream_read_start(r->s);
    if (rc == 0) {
        reader_arm(r); /* the pause was ours: the stall clock starts again */
    }
    return rc;
}

static int reader_reserve(void *arg, size_t more)
{
    gni_msg_reader *r = arg;
    int rc = gn_rcmgr_reserve_memory(gn_rcmgr_stream_span(r->span), more, r->prio);
    if (rc < 0) {
        gn_rcmgr_refusal ref;
        if (gn_rcmgr_last_refusal(r->rm, &ref) == 0) {
            GN_LOG(GN_LOG_INFO, MSG_STREAM_LOG,
                   "message stream: %zu more bytes for a message refused by %s (%s: %" PRIu64
                   " used, limit %" PRIu64 "): resetting the stream",
                   more, ref.name, gn_rcmgr_res_name(ref.res), ref.used, ref.limit);
        }
    }
    return rc;
}

static void reader_release(void *arg, size_t len)
{
    gni_msg_reader *r = arg;
    int rc = gn_rcmgr_release_memory(gn_rcmgr_stream_span(r->span), len);
    (void)rc; /* GN_EINVAL only on a miscount; the span's end settles it */
}

int gni_msg_reader_account(gni_msg_reader *r, gn_rcmgr *rm, gn_rcmgr_stream *span, uint8_t prio)
{
    if (!r || !rm || !span || r->span || r->finished || gni_msg_decoder_partial(&r->dec)) {
        return GN_EINVAL;
    }
    r->rm = rm;
    r->span = span;
    r->prio = prio;
    const gni_msg_mem mem = {reader_reserve, reader_release, r};
    gni_msg_decoder_set_mem(&r->dec, &mem);
    return 0;
}

void gni_msg_reader_set_stall_timeout(gni_msg_reader *r, gn_time timeout)
{
    if (r && !r->finished) {
        gni_msg_decoder_set_stall_timeout(&r->dec, timeout);
    }
}

void gni_msg_reader_close(gni_msg_reader *r, bool reset)
{
    if (!r || r->finished) {
        return;
    }
    reader_stop(r, reset);
}

/* ======================= writer ======================= */

static const uint8_t msg_version_byte[1] = {GNI_MSG_VERSION};

typedef struct wq_ent {
    gni_msg_writer *w;
    gn_rcbuf *msg; /* NULL once written (slot free) */
    int status;    /* the write's completion status, once done */
    uint8_t hdr[GNI_MSG_HEADER_MAX];
    uint8_t hdr_len;
    bool done; /* write completed; the slot frees when it reaches the head */
} wq_ent;

struct gni_msg_writer {
    gn_stream *s;
    gni_msg_writer_cbs cbs;
    void *arg;
    size_t max_len;
    size_t cap;      /* ring slots = max_queue */
    wq_ent *q;
    size_t head;     /* oldest pending entry */
    size_t count;    /* pending entries (queued or in flight) */
    size_t written;  /* of those, handed to the stream (from head) */
    unsigned other;  /* the version byte's completion, deferred reports to come */
    int err;         /* failure waiting for a deferred report */
    bool blocked;    /* GN_EAGAIN from the stream */
    bool want_writable;
    bool finishing;
    bool finished;   /* ended or closed by the user */
    bool closed;
};

static void writer_maybe_free(gni_msg_writer *w)
{
    if (!w->closed || w->written > 0 || w->other > 0) {
        return;
    }
    for (size_t i = 0; i < w->cap; i++) {
        gn_rcbuf_rele(w->q[i].msg);
    }
    gn_free(w->q);
    gn_free(w);
}

static void writer_closed(gn_stream *s, void *arg)
{
    (void)s;
    gni_msg_writer *w = arg;
    w->closed = true;
    writer_maybe_free(w);
}

static void writer_stop(gni_msg_writer *w, bool reset)
{
    w->finished = true;
    gn_stream_set_handler(w->s, NULL, NULL);
    if (!reset) {
        int rc = gn_stream_shutdown(w->s);
        (void)rc; /* already shut down, or GN_ENOTSUP: the close ends it */
    }
    if (reset) {
        gn_stream_reset(w->s, writer_closed, w);
    } else {
        gn_stream_close(w->s, writer_closed, w);
    }
}

static void writer_end(gni_msg_writer *w, int status)
{
    if (w->finished) {
        return;
    }
    writer_stop(w, status != 0);
    if (w->cbs.on_end) {
        w->cbs.on_end(w->arg, status);
    }
}

static void writer_deferred_end(gn_loop *loop, void *arg)
{
    (void)loop;
    gni_msg_writer *w = arg;
    w->other--;
    if (w->closed) {
        writer_maybe_free(w);
        return;
    }
    writer_end(w, w->err);
}

/* Reports @err through on_end from the loop (never from inside an API call). */
static void writer_defer_end(gni_msg_writer *w, int err)
{
    w->err = err;
    if (gn_loop_defer(w->s->loop, writer_deferred_end, w) < 0) {
        /* no memory to defer: end now, so the owner learns it before it
         * uses the writer again */
        writer_end(w, err);
        return;
    }
    w->other++;
}

static void entry_written(void *arg, int status);

/* Hands queued entries to the stream until it pushes back. */
static int writer_pump(gni_msg_writer *w)
{
    while (!w->blocked && w->written < w->count) {
        wq_ent *e = &w->q[(w->head + w->written) % w->cap];
        gn_slice iov[2];
        size_t n = 1;
        iov[0] = gn_slice_of(e->hdr, e->hdr_len);
        gn_slice body = gn_rcbuf_slice(e->msg);
        if (body.len > 0) {
            iov[n++] = body;
        }
        int rc = gn_stream_write(w->s, iov, n, entry_written, e);
        if (rc == GN_EAGAIN) {
            w->blocked = true;
            break;
        }
        if (rc < 0) {
            return rc;
        }
        w->written++;
    }
    return 0;
}

/* After a completion: report room, finish when drained. */
static void writer_progress(gni_msg_writer *w)
{
    if (w->finished) {
        return;
    }
    int rc = writer_pump(w);
    if (rc < 0) {
        writer_end(w, rc);
        return;
    }
    if (w->finishing && w->count == 0 && w->other == 0) {
        writer_end(w, 0); /* half-closes, then closes */
        return;
    }
    if (w->want_writable && w->count < w->cap) {
        w->want_writable = false;
        if (w->cbs.on_writable) {
            w->cbs.on_writable(w->arg);
        }
    }
}

static void entry_written(void *arg, int status)
{
    wq_ent *e = arg;
    gni_msg_writer *w = e->w;
    gn_rcbuf_rele(e->msg);
    e->msg = NULL;
    e->done = true;
    e->status = status;
    /* completions normally come in order; one that does not waits here until
       the entries before it completed, so the ring stays contiguous (and
       on_sent reports in the order of the sends). Bounded by the ring. */
    while (w->written > 0 && w->q[w->head].done) {
        int st = w->q[w->head].status;
        w->q[w->head].done = false;
        w->head = (w->head + 1) % w->cap;
        w->written--;
        w->count--;
        if (w->cbs.on_sent && !w->closed && !w->finished) {
            w->cbs.on_sent(w->arg, st); /* may send: appends behind head */
        }
    }
    if (w->closed || w->finished) {
        writer_maybe_free(w);
        return;
    }
    if (status < 0) {
        writer_end(w, status);
        return;
    }
    writer_progress(w);
}

static void version_written(void *arg, int status)
{
    gni_msg_writer *w = arg;
    w->other--;
    if (w->closed || w->finished) {
        writer_maybe_free(w);
        return;
    }
    if (status < 0) {
        writer_end(w, status);
        return;
    }
    writer_progress(w);
}

static void writer_data(gn_stream *s, void *ud, const uint8_t *data, size_t len)
{
    (void)s;
    (void)data;
    (void)len;
    writer_end(ud, GN_EPROTO); /* the acceptor must not send */
}

static void writer_eof(gn_stream *s, void *ud)
{
    (void)s;
    (void)ud; /* the acceptor half-closed its unused direction: expected */
}

static void writer_error(gn_stream *s, void *ud, int err)
{
    (void)s;
    writer_end(ud, err);
}

static void writer_writable(gn_stream *s, void *ud)
{
    (void)s;
    gni_msg_writer *w = ud;
    w->blocked = false;
    writer_progress(w);
}

static const gn_stream_handler writer_handler = {writer_data, writer_eof, writer_error,
                                                 writer_writable};

int gni_msg_writer_new(gn_stream *s, size_t max_len, size_t max_queue,
                       const gni_msg_writer_cbs *cbs, void *arg, gni_msg_writer **out)
{
    if (!s || !out || max_len > GNI_MSG_MAX_LEN_LIMIT || max_queue > (1u << 20)) {
        return GN_EINVAL;
    }
    gni_msg_writer *w = gn_calloc(1, sizeof *w);
    if (!w) {
        return GN_ENOMEM;
    }
    w->cap = max_queue ? max_queue : GNI_MSG_DEFAULT_QUEUE;
    w->q = gn_calloc(w->cap, sizeof *w->q);
    if (!w->q) {
        gn_free(w);
        return GN_ENOMEM;
    }
    for (size_t i = 0; i < w->cap; i++) {
        w->q[i].w = w;
    }
    w->s = s;
    if (cbs) {
        w->cbs = *cbs;
    }
    w->arg = arg;
    w->max_len = max_len ? max_len : GNI_MSG_DEFAULT_MAX_LEN;
    gn_slice iov = gn_slice_of(msg_version_byte, 1);
    int rc = gn_stream_write(s, &iov, 1, version_written, w);
    if (rc < 0) {
        gn_free(w->q);
        gn_free(w);
        return rc;
    }
    w->other = 1;
    gn_stream_set_handler(s, &writer_handler, w);
    rc = gn_stream_read_start(s);
    if (rc < 0) { /* the write is in: report from the loop */
        writer_defer_end(w, rc);
    }
    *out = w;
    return 0;
}

int gni_msg_writer_send(gni_msg_writer *w, gn_rcbuf *msg)
{
    if (!w || !msg) {
        return GN_EINVAL;
    }
    if (w->finished || w->err) {
        return GN_ECLOSED;
    }
    if (w->finishing) {
        return GN_ESTATE;
    }
    gn_slice body = gn_rcbuf_slice(msg);
    if (body.len > w->max_len) {
        return GN_ETOOBIG;
    }
    if (w->count == w->cap) {
        w->want_writable = true;
        return GN_EAGAIN;
    }
    wq_ent *e = &w->q[(w->head + w->count) % w->cap];
    int hl = gni_msg_header_encode(body.len, e->hdr);
    if (hl < 0) {
        return hl;
    }
    e->hdr_len = (uint8_t)hl;
    e->msg = gn_rcbuf_hold(msg);
    w->count++;
    int rc = writer_pump(w);
    if (rc < 0) { /* the stream failed: report through on_end, from the loop */
        writer_defer_end(w, rc);
    }
    return 0;
}

size_t gni_msg_writer_queued(const gni_msg_writer *w)
{
    return w ? w->count : 0;
}

int gni_msg_writer_finish(gni_msg_writer *w)
{
    if (!w || w->finished || w->err) {
        return GN_ECLOSED;
    }
    if (w->finishing) {
        return GN_ESTATE;
    }
    w->finishing = true;
    if (w->count == 0 && w->other == 0) {
        /* nothing in flight: still report from the loop, never from here */
        writer_defer_end(w, 0);
    }
    return 0;
}

void gni_msg_writer_close(gni_msg_writer *w, bool reset)
{
    if (!w || w->finished) {
        return;
    }
    writer_stop(w, reset);
}
