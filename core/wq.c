/* The write-request queue of gn_stream implementations (see gni_wq.h). */
#include "gni_wq.h"

#include "golemnet/log.h"

#include <string.h>

/* Frees a request's storage and takes it out of the memory count. */
static void wq_free(gni_wq *q, gni_wreq *w)
{
    if (w) {
        assert(q->mem >= sizeof *w + w->cap);
        q->mem -= sizeof *w + w->cap;
        gn_free(w);
    }
}

/* Extra storage rounded so the slice array after it is aligned. */
static size_t wq_round(size_t n)
{
    size_t a = sizeof(max_align_t);
    return (n + a - 1) / a * a;
}

void gni_wq_init(gni_wq *q, gn_stream *s, size_t max_bytes, size_t spare_max)
{
    gni_list_init(&q->reqs);
    q->s = s;
    q->bytes = 0;
    q->max_bytes = max_bytes;
    q->spare_max = (uint32_t)GNI_MIN(spare_max, (size_t)UINT32_MAX);
    q->spare = NULL;
    q->mem = 0;
    q->want_writable = false;
}

void gni_wq_fini(gni_wq *q)
{
    assert(gni_wq_empty(q));
    wq_free(q, q->spare);
    q->spare = NULL;
}

int gni_wq_admit(gni_wq *q, const gn_slice *iov, size_t iovcnt, size_t *len)
{
    size_t sum = 0;
    for (size_t i = 0; i < iovcnt; i++) {
        if (sum + iov[i].len < sum) {
            return GN_EINVAL;
        }
        sum += iov[i].len;
    }
    size_t max = q->max_bytes;
    if (max > 0 && q->bytes > 0 && (q->bytes + sum > max || q->bytes + sum < sum)) {
        q->want_writable = true;
        return GN_EAGAIN;
    }
    *len = sum;
    return 0;
}

int gni_wq_push(gni_wq *q, const gn_slice *iov, size_t iovcnt, size_t len, gn_write_cb cb,
                void *arg, bool keep_iov, size_t extra_len, gni_wreq **out)
{
    size_t nkeep = keep_iov ? iovcnt : 0;
    size_t room = SIZE_MAX - sizeof(gni_wreq) - sizeof(max_align_t);
    if (extra_len > room || nkeep > (room - extra_len) / sizeof(gn_slice)) {
        return GN_EINVAL;
    }
    size_t xoff = wq_round(extra_len);
    size_t cap = xoff + nkeep * sizeof(gn_slice);
    gni_wreq *w = q->spare;
    if (w && w->cap >= cap) {
        q->spare = NULL;
    } else {
        w = gn_malloc(sizeof *w + cap);
        if (!w) {
            return GN_ENOMEM;
        }
        w->cap = cap;
        q->mem += sizeof *w + cap;
    }
    w->link.prev = w->link.next = NULL;
    w->cb = cb;
    w->arg = arg;
    w->len = len;
    w->left = len;
    w->idx = 0;
    w->off = 0;
    w->iovcnt = nkeep;
    w->iov = (gn_slice *)(void *)((unsigned char *)w->extra + xoff);
    w->status = 0;
    w->done = false;
    if (nkeep > 0) {
        memcpy(w->iov, iov, nkeep * sizeof(gn_slice));
        while (w->idx < w->iovcnt && w->iov[w->idx].len == 0) {
            w->idx++;
        }
    }
    gni_list_add_tail(&q->reqs, &w->link);
    q->bytes += len;
    *out = w;
    return 0;
}

/* Takes @w off the queue and frees or keeps its storage. */
static void wq_release(gni_wq *q, gni_wreq *w)
{
    gni_list_del(&w->link);
    assert(q->bytes >= w->left);
    q->bytes -= w->left;
    if (q->spare_max > 0 && w->cap <= q->spare_max && (!q->spare || q->spare->cap < w->cap)) {
        wq_free(q, q->spare);
        q->spare = w; /* the largest recent one, for the next write */
    } else {
        wq_free(q, w);
    }
}

void gni_wq_drop(gni_wq *q, gni_wreq *w)
{
    wq_release(q, w);
}

bool gni_wreq_peek(const gni_wreq *w, gn_slice *out)
{
    if (w->left == 0 || w->idx >= w->iovcnt) {
        return false;
    }
    const gn_slice *sl = &w->iov[w->idx];
    out->base = sl->base + w->off;
    out->len = sl->len - w->off;
    return true;
}

size_t gni_wreq_gather(const gni_wreq *w, uint8_t *buf, size_t cap, size_t small)
{
    size_t k = 0;
    size_t off = w->off;
    /* bounded by iovcnt: each pass takes one slice or stops */
    for (size_t i = w->idx; i < w->iovcnt && k < w->left; i++, off = 0) {
        size_t part = w->iov[i].len - off;
        if (part > small || part > cap - k) {
            break;
        }
        memcpy(buf + k, w->iov[i].base + off, part);
        k += part;
    }
    return k;
}

void gni_wq_advance(gni_wq *q, gni_wreq *w, size_t n)
{
    assert(n <= w->left && q->bytes >= n);
    w->left -= n;
    q->bytes -= n;
    /* bounded by iovcnt: each pass consumes one slice */
    while (n > 0 && w->idx < w->iovcnt) {
        size_t k = GNI_MIN(n, w->iov[w->idx].len - w->off);
        w->off += k;
        n -= k;
        if (w->off == w->iov[w->idx].len) {
            w->idx++;
            w->off = 0;
        }
    }
    while (w->idx < w->iovcnt && w->iov[w->idx].len == 0) {
        w->idx++;
    }
}

void gni_wq_complete(gni_wq *q, gni_wreq *w, int status)
{
    gn_write_cb cb = w->cb;
    void *arg = w->arg;
    size_t len = w->len;
    /* released first: a write made from the completion may reuse it */
    wq_release(q, w);
    gn_stream_complete_write(q->s, cb, arg, len, status);
}

void gni_wq_cancel_all(gni_wq *q, int status)
{
    gni_list batch;
    gni_list_init(&batch);
    q->want_writable = false;
    if (gni_list_empty(&q->reqs)) {
        return;
    }
    /* detach: writes pushed by the completions stay on q */
    batch.next = q->reqs.next;
    batch.prev = q->reqs.prev;
    batch.next->prev = &batch;
    batch.prev->next = &batch;
    gni_list_init(&q->reqs);
    /* their bytes leave the queue now, before any completion runs */
    for (gni_list *e = batch.next; e != &batch; e = e->next) {
        gni_wreq *w = GNI_CONTAINER_OF(e, gni_wreq, link);
        assert(q->bytes >= w->left);
        q->bytes -= w->left;
    }
    /* bounded: each pass takes one request off the detached batch, and
     * completions push only onto q */
    while (!gni_list_empty(&batch)) {
        gni_wreq *w = GNI_CONTAINER_OF(batch.next, gni_wreq, link);
        int st = w->done ? w->status : status;
        gn_write_cb cb = w->cb;
        void *arg = w->arg;
        size_t len = w->len;
        gni_list_del(&w->link);
        wq_free(q, w);
        gn_stream_complete_write(q->s, cb, arg, len, st);
    }
}

bool gni_wq_writable_due(gni_wq *q)
{
    if (!q->want_writable || (q->max_bytes > 0 && q->bytes > q->max_bytes / 2)) {
        return false;
    }
    q->want_writable = false;
    return true;
}

void gni_wq_stop_recycling(gni_wq *q)
{
    wq_free(q, q->spare);
    q->spare = NULL;
    q->spare_max = 0;
}
