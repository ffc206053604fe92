/*
 * Generic secure-channel driver: runs a sans-I/O handshake core over the raw
 * stream below, then exposes the secured gn_stream over a frame cipher.
 * See golemnet/secure_driver.h. No component is named here.
 */
#include "golemnet/secure_driver.h"

#include "gni.h"
#include "gni_wq.h"

#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------------------
 * Small helpers
 */

/* Writes a heap copy of @len bytes to @s; the copy is freed on completion. */
static void copy_written(void *arg, int status)
{
    (void)status;
    gn_free(arg);
}

static int write_copy(gn_stream *s, const uint8_t *data, size_t len)
{
    uint8_t *copy = gn_malloc(len);
    if (!copy) {
        return GN_ENOMEM;
    }
    memcpy(copy, data, len);
    gn_slice iov = gn_slice_of(copy, len);
    int rc = gn_stream_write(s, &iov, 1, copy_written, copy);
    if (rc < 0) {
        gn_free(copy);
    }
    return rc;
}

/* A growable byte buffer bounded by @max. */
typedef struct bytes {
    uint8_t *p;
    size_t len, cap;
} bytes;

/* The capacity @b needs for @len more bytes (its own when they fit; 0 past @max). */
static size_t bytes_cap_for(const bytes *b, size_t len, size_t max)
{
    if (len > max || b->len > max - len) {
        return 0;
    }
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + len) { /* bounded: doubles up to max (4 MiB) */
        cap *= 2;
    }
    return cap;
}

static int bytes_append(bytes *b, const uint8_t *data, size_t len, size_t max)
{
    size_t cap = bytes_cap_for(b, len, max);
    if (cap == 0) {
        return GN_ETOOBIG;
    }
    if (cap > b->cap) {
        uint8_t *np = gn_realloc(b->p, cap);
        if (!np) {
            return GN_ENOMEM;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
    return 0;
}

static void bytes_consume(bytes *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

static void bytes_free(bytes *b)
{
    gn_free(b->p);
    *b = (bytes){0};
}

/* ---------------------------------------------------------------------------
 * The secured stream
 */

/* Most received ciphertext kept while the consumer does not read. */
#define SEC_RX_MAX (4u << 20)
/* Largest write buffer kept for reuse after its write completed. */
#define SEC_SPARE_MAX (4u << 20)

/* A consumer write's sealed frames: the extra storage of its gni_wreq. */
typedef struct sec_out {
    struct sec_stream *ss;
    size_t len;
    uint8_t data[];
} sec_out;

typedef struct sec_stream {
    gn_stream s; /* first: the secured stream */
    const gn_secure_cipher_vtbl *cv;
    void *cobj;
    gn_secure_result info;
    char security[GN_PROTOCOL_ID_MAX];
    gn_peer_id local;
    bytes rx;             /* received ciphertext not yet opened */
    bool eof_pending;     /* below reached EOF behind rx */
    bool drain_scheduled; /* a deferred rx drain is queued */
    bool free_pending;    /* closed while a drain was queued: the drain frees */
    gni_wq wq;            /* writes sealed, not completed (keeps one buffer for reuse) */
    gni_wreq *blocked;    /* sealed write the stream below refused (GN_EAGAIN) */
    uint8_t *scratch;     /* max_plain bytes: gathers a frame spanning iovs */
    bool dead;            /* closing: ignore events from below */
    gn_rcmgr_span *span;  /* where the buffers are accounted, or NULL */
    size_t reserved;      /* bytes reserved in span */
} sec_stream;

/*
 * Memory accounting (gn_secure_set_rcmgr). What a secured stream holds:
 * one frame of the cipher (a cipher may keep a partly received frame),
 * the received ciphertext not yet opened, the scratch frame, and the write
 * queue's storage (sealed frames in flight and the spare). Growth the peer
 * causes (received ciphertext) is reserved before the buffer grows, at
 * medium priority; a write reserves its sealed copy (and the scratch
 * frame) before it is made. What is no longer held is released (in steps,
 * see sec_account).
 */
static inline size_t sec_held(const sec_stream *ss)
{
    return ss->cv->max_plain + ss->cv->overhead + ss->rx.cap +
           (ss->scratch ? ss->cv->max_plain : 0) + ss->wq.mem;
}

/*
 * The reservation moves in steps, so that small writes and their
 * completions do not call the manager: it grows to what is needed rounded
 * up to a step, and shrinks (to that rounding) only when two steps or more
 * are unused.
 */
#define SEC_RESV_STEP (8u << 10)

static size_t sec_resv_round(size_t n)
{
    return (n + SEC_RESV_STEP - 1) / SEC_RESV_STEP * SEC_RESV_STEP;
}

static int sec_account_move(sec_stream *ss, size_t want, uint8_t prio)
{
    if (want > ss->reserved) {
        size_t to = sec_resv_round(want);
        int rc = gn_rcmgr_reserve_memory(ss->span, to - ss->reserved, prio);
        if (rc < 0 && to > want) {
            to = want; /* the rounding may be what does not fit */
            rc = gn_rcmgr_reserve_memory(ss->span, to - ss->reserved, prio);
        }
        if (rc < 0) {
            return rc;
        }
        ss->reserved = to;
    } else if (ss->reserved - want >= 2 * SEC_RESV_STEP) {
        size_t to = sec_resv_round(want);
        (void)gn_rcmgr_release_memory(ss->span, ss->reserved - to);
        ss->reserved = to;
    }
    return 0;
}

/* Makes the reservation cover what @ss holds plus @extra: 0 or GN_ERESOURCE. */
static inline int sec_account(sec_stream *ss, size_t extra, uint8_t prio)
{
    if (!ss->span) {
        return 0;
    }
    size_t want = sec_held(ss) + extra;
    if (want <= ss->reserved && ss->reserved - want < 2 * SEC_RESV_STEP) {
        return 0; /* within the step: the usual case */
    }
    return sec_account_move(ss, want, prio);
}

static void sec_unaccount(sec_stream *ss)
{
    if (ss->span && ss->reserved > 0) {
        (void)gn_rcmgr_release_memory(ss->span, ss->reserved);
    }
    ss->span = NULL;
    ss->reserved = 0;
}

static void sec_on_data(gn_stream *below, void *ud, const uint8_t *data, size_t len);
static void sec_on_eof(gn_stream *below, void *ud);
static void sec_on_error(gn_stream *below, void *ud, int err);
static void sec_on_writable(gn_stream *below, void *ud);
static const gn_stream_handler sec_below_handler = {sec_on_data, sec_on_eof, sec_on_error,
                                                    sec_on_writable};

static void sec_write_done(void *arg, int status)
{
    gni_wreq *w = arg;
    sec_stream *ss = ((sec_out *)gni_wreq_extra(w))->ss;
    /* released first: a write made from the completion reuses the buffer */
    gni_wq_complete(&ss->wq, w, status);
    (void)sec_account(ss, 0, GN_RCMGR_PRIO_ALWAYS); /* releases */
}

static void sec_zero_write_done(gn_loop *loop, void *arg)
{
    (void)loop;
    gni_wreq *w = arg;
    sec_stream *ss = ((sec_out *)gni_wreq_extra(w))->ss;
    gni_wq_complete(&ss->wq, w, ss->dead ? GN_ECANCELED : 0);
    (void)sec_account(ss, 0, GN_RCMGR_PRIO_ALWAYS); /* releases */
}

static int sec_write_sealed(sec_stream *ss, const gn_slice *iov, size_t iovcnt, size_t total,
                            size_t extra_len, gn_write_cb cb, void *arg);

static int sec_write(gn_stream *s, const gn_slice *iov, size_t iovcnt, gn_write_cb cb, void *arg)
{
    sec_stream *ss = (sec_stream *)s;
    if (ss->blocked) {
        return gni_wq_refuse(&ss->wq);
    }
    size_t total = 0;
    int rc = gni_wq_admit(&ss->wq, iov, iovcnt, &total);
    if (rc < 0) {
        return rc;
    }
    size_t maxp = ss->cv->max_plain;
    size_t frames = (total + maxp - 1) / maxp;
    size_t room = SIZE_MAX / 2 - sizeof(sec_out) - maxp; /* gni_wq_push adds its header */
    if (total > room || frames > (room - total) / (ss->cv->overhead + 1)) {
        return GN_ETOOBIG;
    }
    size_t extra_len = sizeof(sec_out) + total + frames * ss->cv->overhead;
    /* the sealed copy (at most a fresh request) and, when a frame may span
     * slices, the scratch frame */
    rc = sec_account(ss, sizeof(gni_wreq) + sizeof(max_align_t) + extra_len +
                             (ss->scratch || iovcnt < 2 ? 0 : maxp), GN_RCMGR_PRIO_ALWAYS);
    if (rc < 0) {
        return rc;
    }
    /* what was not used is released by the completion (or the next write) */
    return sec_write_sealed(ss, iov, iovcnt, total, extra_len, cb, arg);
}

/* Seals and writes below; the reservation was made. */
static int sec_write_sealed(sec_stream *ss, const gn_slice *iov, size_t iovcnt, size_t total,
                            size_t extra_len, gn_write_cb cb, void *arg)
{
    gn_stream *s = &ss->s;
    size_t maxp = ss->cv->max_plain;
    gni_wreq *w;
    int rc = gni_wq_push(&ss->wq, iov, iovcnt, total, cb, arg, false, extra_len, &w);
    if (rc < 0) {
        return rc;
    }
    sec_out *o = gni_wreq_extra(w);
    o->ss = ss;
    o->len = 0;
    if (total == 0) {
        rc = gn_loop_defer(s->loop, sec_zero_write_done, w);
        if (rc < 0) {
            gni_wq_drop(&ss->wq, w);
        }
        return rc;
    }
    /* Seal frame by frame; a frame spanning iovs is gathered into scratch. */
    size_t vi = 0, voff = 0, left = total;
    while (left > 0) {
        size_t flen = GNI_MIN(left, maxp);
        const uint8_t *src;
        while (iov[vi].len - voff == 0) {
            vi++;
            voff = 0;
        }
        if (iov[vi].len - voff >= flen) {
            src = iov[vi].base + voff;
            voff += flen;
        } else {
            if (!ss->scratch && !(ss->scratch = gn_malloc(maxp))) {
                gni_wq_drop(&ss->wq, w);
                return GN_ENOMEM;
            }
            size_t got = 0;
            while (got < flen) {
                size_t take = GNI_MIN(flen - got, iov[vi].len - voff);
                memcpy(ss->scratch + got, iov[vi].base + voff, take);
                got += take;
                voff += take;
                if (voff == iov[vi].len) {
                    vi++;
                    voff = 0;
                }
            }
            src = ss->scratch;
        }
        int n = ss->cv->seal(ss->cobj, src, flen, o->data + o->len);
        if (n < 0) {
            gni_wq_drop(&ss->wq, w);
            return n;
        }
        o->len += (size_t)n;
        left -= flen;
    }
    gn_slice out = gn_slice_of(o->data, o->len);
    rc = gn_stream_write(s->below, &out, 1, sec_write_done, w);
    if (rc == GN_EAGAIN) {
        /* The frames are sealed (nonces used): keep them and refuse more. */
        ss->blocked = w;
        return 0;
    }
    if (rc < 0) {
        /* Sealed frames were lost: the channel cannot continue in order. */
        gni_wq_drop(&ss->wq, w);
        return rc;
    }
    return 0;
}

/* Opens frames from @in while the consumer reads; returns bytes consumed. */
static size_t sec_process(sec_stream *ss, const uint8_t *in, size_t len)
{
    size_t off = 0;
    while (off < len && gn_stream_is_reading(&ss->s) && !ss->dead) {
        size_t consumed = 0;
        const uint8_t *plain = NULL;
        size_t plen = 0;
        int rc = ss->cv->open(ss->cobj, in + off, len - off, &consumed, &plain, &plen);
        if (rc < 0) {
            GN_LOG(GN_LOG_INFO, "secure", "%s: closing channel: %s", ss->security,
                   gn_err_name(rc));
            gn_stream_read_stop(ss->s.below);
            gn_stream_emit_error(&ss->s, rc);
            return len;
        }
        off += consumed;
        if (plen > 0) {
            gn_stream_emit_data(&ss->s, plain, plen);
        }
        if (ss->cv->closed && ss->cv->closed(ss->cobj)) {
            /* authenticated end of stream: nothing may follow it */
            gn_stream_emit_eof(&ss->s);
            return len;
        }
        if (consumed == 0 && plen == 0) {
            break;
        }
    }
    return off;
}

static void sec_finish_eof(sec_stream *ss)
{
    if (ss->cv->partial && ss->cv->partial(ss->cobj)) {
        gn_stream_emit_error(&ss->s, GN_EBADFRAME); /* truncated frame */
    } else if (ss->cv->closed && !ss->cv->closed(ss->cobj)) {
        gn_stream_emit_error(&ss->s, GN_EEOF); /* cut without a close frame */
    } else {
        gn_stream_emit_eof(&ss->s);
    }
}

static void sec_drain_rx(gn_loop *loop, void *arg)
{
    (void)loop;
    sec_stream *ss = arg;
    ss->drain_scheduled = false;
    if (ss->free_pending) {
        gn_free(ss); /* closed after this call was queued */
        return;
    }
    if (ss->dead || !gn_stream_is_reading(&ss->s)) {
        return;
    }
    size_t n = sec_process(ss, ss->rx.p, ss->rx.len);
    bytes_consume(&ss->rx, n);
    if (ss->rx.len == 0) {
        bytes_free(&ss->rx); /* an idle connection keeps no receive buffer */
        (void)sec_account(ss, 0, GN_RCMGR_PRIO_ALWAYS);
    }
    if (ss->rx.len == 0 && gn_stream_is_reading(&ss->s) && !ss->dead) {
        if (ss->eof_pending) {
            ss->eof_pending = false;
            sec_finish_eof(ss);
        } else {
            gn_stream_read_start(ss->s.below);
        }
    }
}

static void sec_schedule_drain(sec_stream *ss)
{
    if (!ss->drain_scheduled && gn_loop_defer(ss->s.loop, sec_drain_rx, ss) == 0) {
        ss->drain_scheduled = true;
    }
}

static void sec_on_data(gn_stream *below, void *ud, const uint8_t *data, size_t len)
{
    (void)below;
    sec_stream *ss = ud;
    if (ss->dead) {
        return;
    }
    size_t n = 0;
    if (ss->rx.len == 0) {
        n = sec_process(ss, data, len);
    }
    if (n < len && !ss->dead && !(ss->s.flags & GN_STREAM_ERRORED)) {
        size_t cap = bytes_cap_for(&ss->rx, len - n, SEC_RX_MAX);
        int rc = cap > ss->rx.cap ? sec_account(ss, cap - ss->rx.cap, GN_RCMGR_PRIO_MEDIUM) : 0;
        if (rc == GN_ERESOURCE) {
            GN_LOG(GN_LOG_WARNING, "secure",
                   "%s: received data refused by the resource manager (%zu bytes buffered)",
                   ss->security, ss->rx.len);
        }
        if (rc == 0) {
            rc = bytes_append(&ss->rx, data + n, len - n, SEC_RX_MAX);
        }
        if (rc < 0) {
            gn_stream_read_stop(ss->s.below);
            gn_stream_emit_error(&ss->s, rc);
            return;
        }
        gn_stream_read_stop(ss->s.below);
    }
}

static void sec_on_eof(gn_stream *below, void *ud)
{
    (void)below;
    sec_stream *ss = ud;
    if (ss->dead) {
        return;
    }
    if (ss->rx.len > 0) {
        ss->eof_pending = true;
        return;
    }
    sec_finish_eof(ss);
}

static void sec_on_error(gn_stream *below, void *ud, int err)
{
    (void)below;
    sec_stream *ss = ud;
    if (!ss->dead) {
        gn_stream_emit_error(&ss->s, err);
    }
}

static void sec_on_writable(gn_stream *below, void *ud)
{
    sec_stream *ss = ud;
    if (ss->dead) {
        return;
    }
    if (ss->blocked) {
        gni_wreq *w = ss->blocked;
        sec_out *o = gni_wreq_extra(w);
        gn_slice out = gn_slice_of(o->data, o->len);
        int rc = gn_stream_write(below, &out, 1, sec_write_done, w);
        if (rc == GN_EAGAIN) {
            return;
        }
        ss->blocked = NULL;
        if (rc < 0) {
            gni_wq_complete(&ss->wq, w, rc);
            (void)sec_account(ss, 0, GN_RCMGR_PRIO_ALWAYS); /* releases */
            gn_stream_emit_error(&ss->s, rc);
            return;
        }
    }
    if (gni_wq_writable_due(&ss->wq)) {
        gn_stream_emit_writable(&ss->s);
    }
}

static int sec_read_start(gn_stream *s)
{
    sec_stream *ss = (sec_stream *)s;
    if (ss->rx.len > 0 || ss->eof_pending) {
        sec_schedule_drain(ss);
        return 0;
    }
    return gn_stream_read_start(s->below);
}

static int sec_read_stop(gn_stream *s)
{
    return gn_stream_read_stop(s->below);
}

static int sec_shutdown(gn_stream *s)
{
    sec_stream *ss = (sec_stream *)s;
    if (ss->cv->seal_close) {
        if (ss->blocked) {
            return GN_EAGAIN; /* the close frame must follow the queued data */
        }
        uint8_t *frame = gn_malloc(ss->cv->overhead + 1);
        if (!frame) {
            return GN_ENOMEM;
        }
        int n = ss->cv->seal_close(ss->cobj, frame);
        if (n < 0) {
            gn_free(frame);
            return n;
        }
        int rc = write_copy(s->below, frame, (size_t)n);
        gn_free(frame);
        if (rc < 0) {
            return rc;
        }
    }
    return gn_stream_shutdown(s->below);
}

static void sec_below_closed(gn_stream *below, void *arg)
{
    (void)below;
    sec_stream *ss = arg;
    sec_unaccount(ss);
    ss->cv->free(ss->cobj);
    bytes_free(&ss->rx);
    /* Writes still queued (a deferred zero-length one) complete on their own. */
    gni_wq_stop_recycling(&ss->wq);
    gn_free(ss->scratch);
    gn_stream_emit_closed(&ss->s);
    if (ss->drain_scheduled) {
        ss->free_pending = true; /* the queued sec_drain_rx frees it */
        return;
    }
    gn_free(ss);
}

static void sec_begin_close(sec_stream *ss, bool reset)
{
    ss->dead = true;
    gni_wq_stop_recycling(&ss->wq);
    if (ss->blocked) {
        gni_wreq *w = ss->blocked;
        ss->blocked = NULL;
        gni_wq_complete(&ss->wq, w, GN_ECANCELED);
    }
    gn_stream_set_handler(ss->s.below, NULL, NULL);
    if (reset) {
        gn_stream_reset(ss->s.below, sec_below_closed, ss);
    } else {
        gn_stream_close(ss->s.below, sec_below_closed, ss);
    }
}

static void sec_close(gn_stream *s)
{
    sec_begin_close((sec_stream *)s, false);
}

static void sec_reset(gn_stream *s)
{
    sec_begin_close((sec_stream *)s, true);
}

static int copy_out(void *out, size_t out_len, const void *val, size_t len)
{
    if (out_len < len) {
        return GN_ENOSPC;
    }
    memcpy(out, val, len);
    return (int)len;
}

static int sec_query(gn_stream *s, int key, void *out, size_t out_len)
{
    sec_stream *ss = (sec_stream *)s;
    switch (key) {
    case GN_QUERY_REMOTE_PEER_ID:
        return copy_out(out, out_len, &ss->info.remote_peer, sizeof(gn_peer_id));
    case GN_QUERY_LOCAL_PEER_ID:
        return copy_out(out, out_len, &ss->local, sizeof(gn_peer_id));
    case GN_QUERY_SECURITY:
        return copy_out(out, out_len, ss->security, strlen(ss->security) + 1);
    case GN_QUERY_EARLY_MUXER:
        return copy_out(out, out_len, ss->info.early_muxer, strlen(ss->info.early_muxer) + 1);
    default:
        return GN_ENOTSUP;
    }
}

static const gn_stream_ops sec_stream_ops = {
    .abi = GN_STREAM_ABI,
    .name = "secure",
    .write = sec_write,
    .read_start = sec_read_start,
    .read_stop = sec_read_stop,
    .shutdown = sec_shutdown,
    .reset = sec_reset,
    .close = sec_close,
    .query = sec_query,
};

int gn_secure_set_rcmgr(gn_stream *s, gn_rcmgr_span *span)
{
    if (!s) {
        return GN_EINVAL;
    }
    if (s->ops != &sec_stream_ops) {
        return GN_ENOTSUP;
    }
    sec_stream *ss = (sec_stream *)s;
    sec_unaccount(ss);
    if (!span) {
        return 0;
    }
    if (ss->dead) {
        return GN_ECLOSED;
    }
    ss->span = span;
    int rc = sec_account(ss, 0, GN_RCMGR_PRIO_ALWAYS);
    if (rc < 0) {
        ss->span = NULL;
    }
    return rc;
}

/* ---------------------------------------------------------------------------
 * The handshake driver
 */

typedef struct hs_run {
    gn_op op;      /* the handshake's cancellation handle */
    gn_crypto *c;
    gn_stream *below;
    const gn_secure_hs_vtbl *hv;
    void *hs;
    gn_secure_cb cb;
    void *arg;
    gn_timer timer;
    bytes in;      /* received bytes the core has not consumed yet */
    int failure;   /* final error, once failed */
    bool finished; /* success or failure decided */
    bool has_peer; /* GN_EPEERID: the core reported the peer proven (peer) */
    gn_secure_result peer;
    gn_rcmgr_span *span; /* where the input buffer is accounted, or NULL */
    size_t reserved;     /* bytes reserved in span */
} hs_run;

/* Gives back what the handshake reserved (it ends either way). */
static void hs_unaccount(hs_run *r)
{
    if (r->span && r->reserved > 0) {
        (void)gn_rcmgr_release_memory(r->span, r->reserved);
    }
    r->span = NULL;
    r->reserved = 0;
}

static void hs_on_data(gn_stream *below, void *ud, const uint8_t *data, size_t len);
static void hs_on_eof(gn_stream *below, void *ud);
static void hs_on_error(gn_stream *below, void *ud, int err);
static const gn_stream_handler hs_handler = {hs_on_data, hs_on_eof, hs_on_error, NULL};

/* Drains the core and writes what it produced. */
static int hs_flush(hs_run *r)
{
    uint8_t stack_buf[2048];
    uint8_t *mem = stack_buf;
    size_t cap = sizeof stack_buf;
    /* bounded: every pass but the growing ones writes a full buffer */
    for (int pass = 0; pass < 4096; pass++) {
        gn_buf out;
        gn_buf_init(&out, mem, cap);
        int n = r->hv->drain(r->hs, &out, gn_loop_now(r->c->loop));
        if (n == GN_ENOSPC && cap < (1u << 20)) {
            if (mem != stack_buf) {
                gn_free(mem);
            }
            cap *= 4;
            if (!(mem = gn_malloc(cap))) {
                return GN_ENOMEM;
            }
            continue;
        }
        int rc = n;
        if (n > 0 && gn_buf_len(&out) > 0) {
            rc = write_copy(r->below, out.pos, gn_buf_len(&out));
        }
        if (rc < 0 || n == 0 || gn_buf_left(&out) > 0) {
            if (mem != stack_buf) {
                gn_free(mem);
            }
            return rc < 0 ? rc : 0;
        }
        /* the buffer filled up: the core may hold more (partial drain) */
    }
    if (mem != stack_buf) {
        gn_free(mem);
    }
    return GN_ETOOBIG; /* a core that never stops producing */
}

static void hs_below_closed(gn_stream *below, void *arg)
{
    (void)below;
    hs_run *r = arg;
    /* a cancel after the failure turns it into GN_ECANCELED: no peer then */
    bool peer = r->has_peer && r->failure == GN_EPEERID;
    r->cb(r->arg, r->failure, peer ? &r->peer : NULL);
    gn_free(r);
}

static void hs_fail(hs_run *r, int err)
{
    if (r->finished) {
        return;
    }
    r->finished = true;
    r->failure = err < 0 ? err : GN_EHANDSHAKE;
    GN_LOG(GN_LOG_INFO, "secure", "%s handshake failed: %s", r->c->ops->name,
           gn_err_name(r->failure));
    gn_timer_stop(&r->timer);
    if (r->failure == GN_EPEERID && r->hv->mismatched_peer) {
        r->has_peer = r->hv->mismatched_peer(r->hs, &r->peer.remote_peer,
                                             r->peer.remote_pubkey) == 0;
    }
    r->hv->free(r->hs);
    r->hs = NULL;
    bytes_free(&r->in);
    hs_unaccount(r);
    gn_stream_set_handler(r->below, NULL, NULL);
    gn_stream_close(r->below, hs_below_closed, r);
}

static void hs_complete(hs_run *r)
{
    r->finished = true;
    gn_timer_stop(&r->timer);
    sec_stream *ss = gn_calloc(1, sizeof *ss);
    int rc = ss ? 0 : GN_ENOMEM;
    const gn_secure_cipher_vtbl *cv = NULL;
    void *cobj = NULL;
    if (rc == 0) {
        rc = r->hv->finish(r->hs, &ss->info, &cv, &cobj);
    }
    if (rc == 0) {
        rc = gn_stream_init(&ss->s, &sec_stream_ops, r->c->loop, r->below);
        gni_wq_init(&ss->wq, &ss->s, 0, SEC_SPARE_MAX);
    }
    if (rc == 0 && r->in.len > 0) {
        rc = bytes_append(&ss->rx, r->in.p, r->in.len, SEC_RX_MAX);
    }
    if (rc < 0) {
        if (cobj) {
            cv->free(cobj);
        }
        if (ss) {
            bytes_free(&ss->rx);
        }
        gn_free(ss);
        r->finished = false;
        hs_fail(r, rc);
        return;
    }
    r->hv->free(r->hs);
    r->hs = NULL;
    bytes_free(&r->in);
    hs_unaccount(r);
    ss->cv = cv;
    ss->cobj = cobj;
    snprintf(ss->security, sizeof ss->security, "%s", r->c->ops->name);
    gn_identity_peer_id(r->c->identity, &ss->local);
    ss->info.stream = &ss->s;
    /* The consumer starts reading when it is ready. */
    gn_stream_read_stop(r->below);
    gn_stream_set_handler(r->below, &sec_below_handler, ss);
    GN_LOG(GN_LOG_DEBUG, "secure", "%s handshake complete", r->c->ops->name);
    gn_secure_cb cb = r->cb;
    void *arg = r->arg;
    gn_secure_result res = ss->info;
    gn_free(r);
    cb(arg, 0, &res);
}

/* Feeds buffered input to the core until it needs more or finishes. */
static void hs_pump(hs_run *r)
{
    for (int guard = 0; guard < 64 && !r->finished; guard++) {
        size_t consumed = 0;
        int rc = 0;
        if (r->in.len > 0) {
            rc = r->hv->feed(r->hs, r->in.p, r->in.len, &consumed, gn_loop_now(r->c->loop));
        }
        if (rc < 0) {
            hs_fail(r, rc);
            return;
        }
        bytes_consume(&r->in, consumed);
        if ((rc = hs_flush(r)) < 0) {
            hs_fail(r, rc);
            return;
        }
        int st = r->hv->status(r->hs);
        if (st < 0) {
            hs_fail(r, st);
            return;
        }
        if (st == 1) {
            hs_complete(r);
            return;
        }
        if (consumed == 0) {
            return; /* needs more bytes */
        }
    }
}

static void hs_on_data(gn_stream *below, void *ud, const uint8_t *data, size_t len)
{
    (void)below;
    hs_run *r = ud;
    if (r->finished) {
        return;
    }
    size_t max = r->c->config.max_handshake_msg + 4;
    size_t cap = bytes_cap_for(&r->in, len, max);
    int rc = 0;
    if (r->span && cap > r->in.cap) {
        /* the input buffer grows only after the span took it */
        rc = gn_rcmgr_reserve_memory(r->span, cap - r->in.cap, GN_RCMGR_PRIO_MEDIUM);
        if (rc == 0) {
            r->reserved += cap - r->in.cap;
        }
    }
    if (rc == 0) {
        rc = bytes_append(&r->in, data, len, max);
    }
    if (rc < 0) {
        hs_fail(r, rc == GN_ETOOBIG ? GN_EFRAMESIZE : rc);
        return;
    }
    hs_pump(r);
}

static void hs_on_eof(gn_stream *below, void *ud)
{
    (void)below;
    hs_fail(ud, GN_EEOF);
}

static void hs_on_error(gn_stream *below, void *ud, int err)
{
    (void)below;
    hs_fail(ud, err);
}

/* gn_op_cancel(): fail now (the stream below starts closing inside
 * hs_fail); the completion runs from its close callback. */
static void hs_cancel(gn_op *op)
{
    hs_run *r = GNI_CONTAINER_OF(op, hs_run, op);
    if (r->finished) {
        r->failure = GN_ECANCELED; /* failing already: report the cancel */
        return;
    }
    hs_fail(r, GN_ECANCELED);
}

static void hs_timeout(gn_timer *t, void *arg)
{
    (void)t;
    hs_fail(arg, GN_ETIMEDOUT);
}

int gn_secure_run(gn_crypto *c, gn_stream *below, const gn_secure_hs_vtbl *hv, void *hs,
                  gn_secure_cb cb, void *arg, gn_op **op)
{
    return gn_secure_run_ex(c, below, hv, hs, NULL, cb, arg, op);
}

int gn_secure_run_ex(gn_crypto *c, gn_stream *below, const gn_secure_hs_vtbl *hv, void *hs,
                     gn_rcmgr_span *span, gn_secure_cb cb, void *arg, gn_op **op)
{
    if (op) {
        *op = NULL;
    }
    hs_run *r = gn_calloc(1, sizeof *r);
    if (!r) {
        return GN_ENOMEM;
    }
    r->op.cancel = hs_cancel;
    r->c = c;
    r->below = below;
    r->hv = hv;
    r->hs = hs;
    r->cb = cb;
    r->arg = arg;
    r->span = span;
    gn_timer_init(c->loop, &r->timer);
    int rc = hs_flush(r);
    if (rc == 0) {
        rc = gn_timer_start(&r->timer, c->config.handshake_timeout, hs_timeout, r);
    }
    if (rc == 0) {
        gn_stream_set_handler(below, &hs_handler, r);
        rc = gn_stream_read_start(below);
    }
    if (rc < 0) {
        gn_timer_stop(&r->timer);
        gn_stream_set_handler(below, NULL, NULL);
        gn_free(r);
        return rc;
    }
    if (op) {
        *op = &r->op;
    }
    return 0;
}
