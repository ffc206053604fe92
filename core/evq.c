/*
 * gn_evq: a bounded, thread-safe ring of fixed-size items.
 *
 * One uv_mutex guards everything. Poppers block on a uv_cond. A wakeup fd
 * (Linux eventfd, a non-blocking pipe elsewhere, a loopback socket pair on
 * Windows: core/gni_platform.h) is made
 * readable on the empty -> non-empty transition and drained when the queue
 * becomes empty again, so it is readable exactly while items are queued.
 * After gn_evq_close() the fd stays readable (a watcher then pops and sees
 * GN_ECLOSED once drained), mirroring "waiters wake".
 *
 * The ring starts with EVQ_INITIAL slots and doubles as pushes need it, up
 * to the capacity, so a large capacity (a node's default 4096 events of
 * about 500 bytes) costs memory only once it is used; it never shrinks.
 *
 * Thread context: every function may be called from any thread.
 */
#include "golemnet/loop.h"

#include "gni.h"

#include <string.h>
#include <uv.h>

#include "gni_platform.h"


/* Slots allocated by gn_evq_new() (fewer when the capacity is smaller). */
#define EVQ_INITIAL 8u

struct gn_evq {
    uv_mutex_t mtx;
    uv_cond_t cond;
    uint8_t *items;
    size_t cap;   /* the bound */
    size_t nslot; /* slots allocated, <= cap */
    size_t item_size;
    size_t head;  /* index of the oldest item */
    size_t count; /* items queued */
    bool closed;
    bool signaled;   /* wakeup fd currently readable */
    gni_wakeup wake; /* eventfd, pipe or socket pair (core/gni_platform.h) */
};

/* ---- wakeup fd (core/gni_platform.h) ---- */

static int evq_fd_open(gn_evq *q)
{
    return gni_wakeup_open(&q->wake);
}

static void evq_fd_close(gn_evq *q)
{
    gni_wakeup_close(&q->wake);
}

/* Makes the fd readable. Called with the mutex held. */
static void evq_fd_signal(gn_evq *q)
{
    if (q->signaled) {
        return;
    }
    gni_wakeup_signal(&q->wake);
    q->signaled = true;
}

/* Makes the fd unreadable. Called with the mutex held. A socket-pair wakeup
 * (Windows) may deliver a signal's byte after a drain ran; a pop that finds
 * the queue empty therefore drains again (evq_fd_drain_spurious), so a
 * level-triggered watcher is not left spinning on a readable, empty queue.
 * Where the wakeup is exact (GNI_WAKEUP_EXACT: eventfd, pipe) it does not,
 * which saves a read() per empty non-blocking pop. */
static void evq_fd_drain(gn_evq *q)
{
    if (!q->signaled) {
        return;
    }
    gni_wakeup_drain(&q->wake);
    q->signaled = false;
}

static void evq_fd_drain_spurious(gn_evq *q)
{
    if (!GNI_WAKEUP_EXACT && !q->signaled && !q->closed) {
        gni_wakeup_drain(&q->wake);
    }
}

/* ---- queue ---- */

int gn_evq_new(size_t capacity, size_t item_size, gn_evq **out)
{
    if (out == NULL || capacity == 0 || item_size == 0) {
        return GN_EINVAL;
    }
    gn_evq *q = gn_calloc(1, sizeof(*q));
    if (q == NULL) {
        return GN_ENOMEM;
    }
    q->wake.rfd = q->wake.wfd = -1;
    q->cap = capacity;
    q->nslot = capacity < EVQ_INITIAL ? capacity : EVQ_INITIAL;
    q->item_size = item_size;
    q->items = gn_calloc(q->nslot, item_size);
    if (q->items == NULL) {
        gn_free(q);
        return GN_ENOMEM;
    }
    int rc = evq_fd_open(q);
    if (rc < 0) {
        gn_free(q->items);
        gn_free(q);
        return rc;
    }
    if (uv_mutex_init(&q->mtx) != 0) {
        evq_fd_close(q);
        gn_free(q->items);
        gn_free(q);
        return GN_EIO;
    }
    if (uv_cond_init(&q->cond) != 0) {
        uv_mutex_destroy(&q->mtx);
        evq_fd_close(q);
        gn_free(q->items);
        gn_free(q);
        return GN_EIO;
    }
    *out = q;
    return 0;
}

void gn_evq_free(gn_evq *q)
{
    if (q == NULL) {
        return;
    }
    uv_cond_destroy(&q->cond);
    uv_mutex_destroy(&q->mtx);
    evq_fd_close(q);
    gn_free(q->items);
    gn_free(q);
}

/* Doubles the ring (up to cap), oldest item first at slot 0. Mutex held. */
static int evq_grow(gn_evq *q)
{
    size_t n = q->nslot > q->cap / 2 ? q->cap : q->nslot * 2;
    if (n > SIZE_MAX / q->item_size) {
        return GN_ENOMEM;
    }
    uint8_t *items = gn_malloc(n * q->item_size);
    if (items == NULL) {
        return GN_ENOMEM;
    }
    size_t first = q->nslot - q->head; /* items from head to the end of the ring */
    if (first > q->count) {
        first = q->count;
    }
    memcpy(items, q->items + q->head * q->item_size, first * q->item_size);
    memcpy(items + first * q->item_size, q->items, (q->count - first) * q->item_size);
    gn_free(q->items);
    q->items = items;
    q->nslot = n;
    q->head = 0;
    return 0;
}

int gn_evq_push(gn_evq *q, const void *item)
{
    int rc = 0;
    uv_mutex_lock(&q->mtx);
    if (q->closed) {
        rc = GN_ECLOSED;
    } else if (q->count == q->cap || (q->count == q->nslot && evq_grow(q) < 0)) {
        /* full, or (out of memory) the ring cannot grow toward the bound */
        rc = GN_EAGAIN;
    } else {
        size_t idx = (q->head + q->count) % q->nslot;
        memcpy(q->items + idx * q->item_size, item, q->item_size);
        q->count++;
        if (q->count == 1) {
            evq_fd_signal(q);
        }
        uv_cond_signal(&q->cond);
    }
    uv_mutex_unlock(&q->mtx);
    return rc;
}

int gn_evq_pop(gn_evq *q, void *item, gn_time timeout)
{
    int rc;
    gn_time deadline = GN_TIME_INFINITY;
    if (timeout != 0 && timeout != GN_TIME_INFINITY) {
        gn_time now = gn_now();
        deadline = timeout > GN_TIME_INFINITY - 1 - now ? GN_TIME_INFINITY - 1 : now + timeout;
    }

    uv_mutex_lock(&q->mtx);
    for (;;) {
        if (q->count > 0) {
            memcpy(item, q->items + q->head * q->item_size, q->item_size);
            q->head = (q->head + 1) % q->nslot;
            q->count--;
            if (q->count == 0 && !q->closed) {
                evq_fd_drain(q);
            }
            /* A push may have been waiting on nothing; wake one more popper if items remain. */
            if (q->count > 0) {
                uv_cond_signal(&q->cond);
            }
            rc = 0;
            break;
        }
        if (q->closed) {
            rc = GN_ECLOSED;
            break;
        }
        if (timeout == 0) {
            evq_fd_drain_spurious(q);
            rc = GN_EAGAIN;
            break;
        }
        if (deadline == GN_TIME_INFINITY) {
            uv_cond_wait(&q->cond, &q->mtx);
            continue;
        }
        gn_time now = gn_now();
        if (now >= deadline) {
            rc = GN_ETIMEDOUT;
            break;
        }
        /* Spurious wakeups and timeouts both loop back to re-check. */
        (void)uv_cond_timedwait(&q->cond, &q->mtx, deadline - now);
    }
    uv_mutex_unlock(&q->mtx);
    return rc;
}

int gn_evq_fd(const gn_evq *q)
{
    return q->wake.rfd;
}

void gn_evq_close(gn_evq *q)
{
    uv_mutex_lock(&q->mtx);
    if (!q->closed) {
        q->closed = true;
        evq_fd_signal(q);
        uv_cond_broadcast(&q->cond);
    }
    uv_mutex_unlock(&q->mtx);
}

size_t gn_evq_len(gn_evq *q)
{
    uv_mutex_lock(&q->mtx);
    size_t n = q->count;
    uv_mutex_unlock(&q->mtx);
    return n;
}
