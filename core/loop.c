/*
 * gn_loop: one libuv loop, its command queue, deferred calls and timers.
 *
 * Handles the loop creates (all closed together when it stops):
 *   - async:   wakes the loop for commands and stop requests;
 *   - idle:    active only while deferred calls are pending (an active idle
 *              handle also makes the poll phase non-blocking);
 *   - uvtimer: armed for the earliest timer deadline (real clock only).
 *
 * Threads: the command ring, the stop flag, the loop-thread id and the close
 * bookkeeping are guarded by mtx and may be touched from any thread.
 * Everything else (defer list, timer heap, closing) belongs to the loop
 * thread: the thread running uv_run, or the creating thread while nobody
 * runs the loop.
 *
 * Stop sequence (on the loop thread): the async callback drains the command
 * ring; once the ring is empty and stopping is set, pending deferred calls
 * run (bounded by LOOP_STOP_DEFER_ROUNDS iterations); then the three handles
 * are closed and, for an owned loop, uv_stop() ends uv_run. Handles other
 * code left open on an owned loop are closed (with a warning) before
 * uv_loop_close(), so gn_loop_free() cannot hang on them.
 *
 * Invariant for uv_async_send safety: async is sent only under mtx while
 * !stopping, or by gn_loop_stop() in the same critical section that sets
 * stopping; async_closed is set (under mtx) only after the loop thread saw
 * stopping, so no send can follow the close.
 */
#include "golemnet/loop.h"

#include "gni.h"

#include <string.h>
#include <uv.h>

#define LOOP_LOG "loop"
#define LOOP_NHANDLES 3u
#define LOOP_STOP_DEFER_ROUNDS 1000u
#define LOOP_HEAP_MIN 16u

typedef struct loop_cmd {
    gn_loop_fn fn;
    void *arg;
} loop_cmd;

typedef struct loop_defer {
    struct loop_defer *next;
    gn_loop_fn fn;
    void *arg;
} loop_defer;

/* A heap entry: the timer and its arming sequence (FIFO among equal deadlines). */
typedef struct loop_hent {
    gn_timer *t;
    uint64_t seq;
} loop_hent;

struct gn_loop {
    uv_loop_t *uvl;
    uv_loop_t own;
    bool embedded;

    /* ---- guarded by mtx ---- */
    uv_mutex_t mtx;
    loop_cmd *ring;
    size_t cap;
    size_t head;
    size_t count;
    gni_loop_cmd *rhead;  /* reserved commands (gni_loop_submit_cmd), FIFO */
    gni_loop_cmd *rtail;
    uint64_t submitted;   /* ring commands accepted, ever */
    uint64_t consumed;    /* ring commands taken off the ring, ever */
    bool stopping;
    bool async_closed;
    bool free_pending; /* embedded: free in the last close callback */
    unsigned nclosed;
    uv_thread_t tid;
    bool tid_valid;
    bool running; /* inside gn_loop_run or the loop thread */
    bool has_thread;

    /* ---- loop thread ---- */
    uv_thread_t thread;
    uv_async_t async;
    uv_idle_t idle;
    uv_timer_t uvtimer;
    bool closing;
    loop_defer *dhead;
    loop_defer *dtail;
    unsigned stop_rounds;

    struct {
        const void *key;
        void *value;
    } local[GN_LOOP_LOCAL_SLOTS];

    bool virt;
    gn_time vnow;
    loop_hent *heap;
    size_t hlen;
    size_t hcap;
    uint64_t seq;
    bool dispatching;
};

/* ------------------------------------------------------------------ */
/* timer heap                                                          */

static bool heap_less(const loop_hent *a, const loop_hent *b)
{
    if (a->t->deadline != b->t->deadline) {
        return a->t->deadline < b->t->deadline;
    }
    return a->seq < b->seq;
}

static void heap_set(gn_loop *loop, size_t i, loop_hent e)
{
    loop->heap[i] = e;
    e.t->heap_idx = i;
}

static void heap_sift_up(gn_loop *loop, size_t i)
{
    loop_hent e = loop->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&e, &loop->heap[p])) {
            break;
        }
        heap_set(loop, i, loop->heap[p]);
        i = p;
    }
    heap_set(loop, i, e);
}

static void heap_sift_down(gn_loop *loop, size_t i)
{
    loop_hent e = loop->heap[i];
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= loop->hlen) {
            break;
        }
        size_t m = l;
        if (l + 1 < loop->hlen && heap_less(&loop->heap[l + 1], &loop->heap[l])) {
            m = l + 1;
        }
        if (!heap_less(&loop->heap[m], &e)) {
            break;
        }
        heap_set(loop, i, loop->heap[m]);
        i = m;
    }
    heap_set(loop, i, e);
}

static void heap_remove(gn_loop *loop, size_t i)
{
    gn_timer *t = loop->heap[i].t;
    size_t last = loop->hlen - 1;
    loop->hlen--;
    if (i != last) {
        heap_set(loop, i, loop->heap[last]);
        heap_sift_down(loop, i);
        heap_sift_up(loop, i);
    }
    t->heap_idx = SIZE_MAX;
}

static bool timer_in_heap(const gn_timer *t)
{
    const gn_loop *loop = t->loop;
    return loop != NULL && t->heap_idx < loop->hlen && loop->heap[t->heap_idx].t == t;
}

static void loop_uvtimer_cb(uv_timer_t *h);

/* Arms the uv timer for the earliest deadline (real clock only). */
static void loop_rearm(gn_loop *loop)
{
    if (loop->virt || loop->closing || loop->dispatching) {
        return;
    }
    if (loop->hlen == 0) {
        uv_timer_stop(&loop->uvtimer);
        return;
    }
    gn_time now = gn_now();
    gn_time dl = loop->heap[0].t->deadline;
    uint64_t ms = 0;
    if (dl > now) {
        gn_time d = dl - now;
        ms = d / GN_MS + (d % GN_MS != 0);
    }
    uv_update_time(loop->uvl);
    uv_timer_start(&loop->uvtimer, loop_uvtimer_cb, ms, 0);
}

/* Runs every timer due at @now, in deadline order, skipping those armed during this run. */
static void loop_dispatch_real(gn_loop *loop, gn_time now)
{
    uint64_t start_seq = loop->seq;
    loop->dispatching = true;
    while (loop->hlen > 0 && loop->heap[0].t->deadline <= now && loop->heap[0].seq < start_seq) {
        gn_timer *t = loop->heap[0].t;
        heap_remove(loop, 0);
        t->fn(t, t->arg);
    }
    loop->dispatching = false;
}

static void loop_uvtimer_cb(uv_timer_t *h)
{
    gn_loop *loop = h->data;
    loop_dispatch_real(loop, gn_now());
    loop_rearm(loop);
}

/* ------------------------------------------------------------------ */
/* handles and shutdown                                                */

static void loop_destroy(gn_loop *loop)
{
    loop_defer *d = loop->dhead;
    while (d != NULL) {
        loop_defer *next = d->next;
        gn_free(d);
        d = next;
    }
    uv_mutex_destroy(&loop->mtx);
    gn_free(loop->heap);
    gn_free(loop->ring);
    gn_free(loop);
}

static void loop_handle_closed(uv_handle_t *h)
{
    gn_loop *loop = h->data;
    uv_mutex_lock(&loop->mtx);
    loop->nclosed++;
    bool done = loop->nclosed == LOOP_NHANDLES;
    bool fp = loop->free_pending;
    uv_mutex_unlock(&loop->mtx);
    if (done && fp) {
        loop_destroy(loop); /* embedded loop freed before its close completed */
    }
}

/* Is the loop stopping with closes of its own handles still pending?
 * Called with loop->mtx held. */
static bool loop_closes_pending_locked(const gn_loop *loop)
{
    return loop->closing && loop->nclosed < LOOP_NHANDLES;
}

static void loop_close_handles(gn_loop *loop)
{
    if (loop->closing) {
        return;
    }
    if (loop->dhead != NULL) {
        GN_LOG(GN_LOG_WARNING, LOOP_LOG, "dropping deferred calls still pending at stop");
        loop_defer *d = loop->dhead;
        while (d != NULL) {
            loop_defer *next = d->next;
            gn_free(d);
            d = next;
        }
        loop->dhead = loop->dtail = NULL;
    }
    loop->closing = true;
    uv_mutex_lock(&loop->mtx);
    loop->async_closed = true;
    uv_mutex_unlock(&loop->mtx);

    /* Timers still armed are abandoned; their caller-owned storage is not touched. */
    loop->hlen = 0;
    gn_free(loop->heap);
    loop->heap = NULL;
    loop->hcap = 0;

    uv_close((uv_handle_t *)&loop->async, loop_handle_closed);
    uv_close((uv_handle_t *)&loop->idle, loop_handle_closed);
    uv_close((uv_handle_t *)&loop->uvtimer, loop_handle_closed);
    if (!loop->embedded) {
        uv_stop(loop->uvl);
    }
}

/* Called on the loop thread whenever stop progress may be possible. */
static void loop_stop_check(gn_loop *loop)
{
    if (loop->closing) {
        return;
    }
    uv_mutex_lock(&loop->mtx);
    bool ready = loop->stopping && loop->count == 0 && loop->rhead == NULL;
    uv_mutex_unlock(&loop->mtx);
    if (!ready) {
        return;
    }
    if (loop->dhead != NULL && loop->stop_rounds < LOOP_STOP_DEFER_ROUNDS) {
        loop->stop_rounds++;
        return; /* the idle handle is active and will call back here */
    }
    loop_close_handles(loop);
}

static void loop_async_cb(uv_async_t *h)
{
    gn_loop *loop = h->data;
    /* Bounded work per wakeup: at most one ring's worth, then re-arm. */
    for (size_t budget = loop->cap; budget > 0; budget--) {
        loop_cmd c;
        uv_mutex_lock(&loop->mtx);
        if (loop->count == 0) {
            uv_mutex_unlock(&loop->mtx);
            break;
        }
        c = loop->ring[loop->head];
        loop->head = (loop->head + 1) % loop->cap;
        loop->count--;
        loop->consumed++;
        uv_mutex_unlock(&loop->mtx);
        c.fn(loop, c.arg);
    }
    /* Reserved commands: each runs once every ring command accepted before
     * it was taken (the budget above may have left some for the next
     * wakeup). The list is in submission order, so the ready ones lead;
     * those queued by the calls below wait for the next wakeup. */
    uv_mutex_lock(&loop->mtx);
    size_t nready = 0;
    for (gni_loop_cmd *r = loop->rhead; r != NULL && r->seq <= loop->consumed; r = r->next) {
        nready++;
    }
    uv_mutex_unlock(&loop->mtx);
    for (; nready > 0; nready--) {
        uv_mutex_lock(&loop->mtx);
        gni_loop_cmd *r = loop->rhead;
        loop->rhead = r->next;
        if (loop->rhead == NULL) {
            loop->rtail = NULL;
        }
        r->next = NULL;
        r->queued = false; /* from here it may be queued again */
        uv_mutex_unlock(&loop->mtx);
        r->fn(loop, r->arg);
    }
    uv_mutex_lock(&loop->mtx);
    bool more = loop->count > 0 || loop->rhead != NULL;
    if (more) {
        uv_async_send(&loop->async); /* still open: async_closed is set only below */
    }
    uv_mutex_unlock(&loop->mtx);
    if (!more) {
        loop_stop_check(loop);
    }
}

static void loop_idle_cb(uv_idle_t *h)
{
    gn_loop *loop = h->data;
    /* Detach the list: calls deferred from here run on the next iteration. */
    loop_defer *d = loop->dhead;
    loop->dhead = loop->dtail = NULL;
    while (d != NULL) {
        loop_defer *next = d->next;
        gn_loop_fn fn = d->fn;
        void *arg = d->arg;
        gn_free(d);
        fn(loop, arg);
        d = next;
    }
    if (loop->dhead == NULL && !loop->closing) {
        uv_idle_stop(&loop->idle);
    }
    loop_stop_check(loop);
}

static void loop_stray_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) {
        GN_LOG(GN_LOG_WARNING, LOOP_LOG, "closing a %s handle left open at loop stop",
               uv_handle_type_name(uv_handle_get_type(h)));
        uv_close(h, NULL);
    }
}

/* Owned loop, after our handles closed: close strays and let every close finish. */
static void loop_finish_own(gn_loop *loop)
{
    uv_run(loop->uvl, UV_RUN_NOWAIT);
    if (uv_loop_alive(loop->uvl)) {
        uv_walk(loop->uvl, loop_stray_close, NULL);
        uv_run(loop->uvl, UV_RUN_DEFAULT);
    }
}

static void loop_set_tid(gn_loop *loop)
{
    uv_mutex_lock(&loop->mtx);
    loop->tid = uv_thread_self();
    loop->tid_valid = true;
    uv_mutex_unlock(&loop->mtx);
}

/* ------------------------------------------------------------------ */
/* public API                                                          */

void gn_loop_config_default(gn_loop_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->version = GN_LOOP_CONFIG_VERSION;
    cfg->cmdq_capacity = 4096;
    cfg->virtual_clock = false;
}

static int loop_create(uv_loop_t *uvl, const gn_loop_config *cfg, gn_loop **out)
{
    gn_loop_config def;
    if (out == NULL) {
        return GN_EINVAL;
    }
    if (cfg == NULL) {
        gn_loop_config_default(&def);
        cfg = &def;
    }
    if (cfg->version != GN_LOOP_CONFIG_VERSION || cfg->cmdq_capacity == 0) {
        return GN_EINVAL;
    }
    gn_loop *loop = gn_calloc(1, sizeof(*loop));
    if (loop == NULL) {
        return GN_ENOMEM;
    }
    loop->ring = gn_calloc(cfg->cmdq_capacity, sizeof(loop_cmd));
    if (loop->ring == NULL) {
        gn_free(loop);
        return GN_ENOMEM;
    }
    loop->cap = cfg->cmdq_capacity;
    loop->virt = cfg->virtual_clock;
    if (uv_mutex_init(&loop->mtx) != 0) {
        gn_free(loop->ring);
        gn_free(loop);
        return GN_EIO;
    }
    if (uvl == NULL) {
        if (uv_loop_init(&loop->own) != 0) {
            uv_mutex_destroy(&loop->mtx);
            gn_free(loop->ring);
            gn_free(loop);
            return GN_EIO;
        }
        loop->uvl = &loop->own;
    } else {
        loop->uvl = uvl;
        loop->embedded = true;
    }
    int rc = uv_async_init(loop->uvl, &loop->async, loop_async_cb);
    if (rc != 0) {
        GN_LOG(GN_LOG_ERR, LOOP_LOG, "uv_async_init: %s", uv_strerror(rc));
        if (!loop->embedded) {
            uv_loop_close(&loop->own);
        }
        uv_mutex_destroy(&loop->mtx);
        gn_free(loop->ring);
        gn_free(loop);
        return GN_EIO;
    }
    /* These two cannot fail (libuv returns 0 unconditionally). */
    uv_idle_init(loop->uvl, &loop->idle);
    uv_timer_init(loop->uvl, &loop->uvtimer);
    loop->async.data = loop;
    loop->idle.data = loop;
    loop->uvtimer.data = loop;
    loop->tid = uv_thread_self();
    loop->tid_valid = true;
    *out = loop;
    return 0;
}

int gn_loop_new(const gn_loop_config *cfg, gn_loop **out)
{
    return loop_create(NULL, cfg, out);
}

int gn_loop_new_embedded(uv_loop_t *uvl, const gn_loop_config *cfg, gn_loop **out)
{
    if (uvl == NULL) {
        return GN_EINVAL;
    }
    return loop_create(uvl, cfg, out);
}

uv_loop_t *gn_loop_uv(gn_loop *loop)
{
    return loop->uvl;
}

static void loop_thread_main(void *arg)
{
    gn_loop *loop = arg;
    loop_set_tid(loop);
    /* Someone else calling uv_stop() must not end the thread early. */
    while (!loop->closing) {
        uv_run(loop->uvl, UV_RUN_DEFAULT);
    }
    loop_finish_own(loop);
    uv_mutex_lock(&loop->mtx);
    loop->tid_valid = false;
    uv_mutex_unlock(&loop->mtx);
}

int gn_loop_start_thread(gn_loop *loop)
{
    uv_mutex_lock(&loop->mtx);
    if (loop->embedded || loop->has_thread || loop->running || loop->async_closed) {
        uv_mutex_unlock(&loop->mtx);
        return GN_ESTATE;
    }
    loop->has_thread = true;
    loop->running = true;
    loop->tid_valid = false; /* set by the new thread itself */
    uv_mutex_unlock(&loop->mtx);

    int rc = uv_thread_create(&loop->thread, loop_thread_main, loop);
    if (rc != 0) {
        GN_LOG(GN_LOG_ERR, LOOP_LOG, "uv_thread_create: %s", uv_strerror(rc));
        uv_mutex_lock(&loop->mtx);
        loop->has_thread = false;
        loop->running = false;
        loop->tid = uv_thread_self();
        loop->tid_valid = true;
        uv_mutex_unlock(&loop->mtx);
        return GN_EIO;
    }
    return 0;
}

int gn_loop_run(gn_loop *loop, gn_run_mode mode)
{
    uv_run_mode um = mode == GN_RUN_ONCE     ? UV_RUN_ONCE
                     : mode == GN_RUN_NOWAIT ? UV_RUN_NOWAIT
                                             : UV_RUN_DEFAULT;
    uv_mutex_lock(&loop->mtx);
    if (loop->has_thread || loop->running) {
        uv_mutex_unlock(&loop->mtx);
        return GN_ESTATE;
    }
    loop->running = true;
    loop->tid = uv_thread_self();
    loop->tid_valid = true;
    uv_mutex_unlock(&loop->mtx);

    int rc = uv_run(loop->uvl, um);
    uv_mutex_lock(&loop->mtx);
    /* libuv on Windows runs close callbacks at the start of the next pass
     * (its endgame list), which the uv_stop() after the closes prevents:
     * finish them here, so that a stopped loop's run returns with its
     * handles closed (0) on every OS. A few passes at most. Checked under
     * the lock taken anyway to clear 'running': no extra lock per run. */
    for (int i = 0; i < 16 && rc != 0 && !loop->embedded && loop_closes_pending_locked(loop);
         i++) {
        uv_mutex_unlock(&loop->mtx);
        rc = uv_run(loop->uvl, UV_RUN_NOWAIT);
        uv_mutex_lock(&loop->mtx);
    }
    loop->running = false;
    uv_mutex_unlock(&loop->mtx);
    return rc;
}

bool gn_loop_on_thread(const gn_loop *loop)
{
    gn_loop *l = (gn_loop *)loop; /* the mutex is not part of the logical state */
    uv_thread_t self = uv_thread_self();
    uv_mutex_lock(&l->mtx);
    bool r = l->tid_valid && uv_thread_equal(&l->tid, &self);
    uv_mutex_unlock(&l->mtx);
    return r;
}

int gn_loop_submit(gn_loop *loop, gn_loop_fn fn, void *arg)
{
    if (loop == NULL || fn == NULL) {
        return GN_EINVAL;
    }
    int rc = 0;
    uv_mutex_lock(&loop->mtx);
    if (loop->stopping) {
        rc = GN_ECLOSED;
    } else if (loop->count == loop->cap) {
        rc = GN_EAGAIN;
    } else {
        loop_cmd *c = &loop->ring[(loop->head + loop->count) % loop->cap];
        c->fn = fn;
        c->arg = arg;
        loop->count++;
        loop->submitted++;
        uv_async_send(&loop->async);
    }
    uv_mutex_unlock(&loop->mtx);
    return rc;
}

int gni_loop_submit_cmd(gn_loop *loop, gni_loop_cmd *cmd)
{
    if (loop == NULL || cmd == NULL || cmd->fn == NULL) {
        return GN_EINVAL;
    }
    int rc = 0;
    uv_mutex_lock(&loop->mtx);
    if (loop->stopping) {
        rc = GN_ECLOSED;
    } else if (!cmd->queued) {
        cmd->queued = true;
        cmd->next = NULL;
        cmd->seq = loop->submitted;
        if (loop->rtail != NULL) {
            loop->rtail->next = cmd;
        } else {
            loop->rhead = cmd;
        }
        loop->rtail = cmd;
        uv_async_send(&loop->async);
    }
    uv_mutex_unlock(&loop->mtx);
    return rc;
}

int gn_loop_defer(gn_loop *loop, gn_loop_fn fn, void *arg)
{
    if (loop == NULL || fn == NULL) {
        return GN_EINVAL;
    }
    assert(gn_loop_on_thread(loop));
    if (loop->closing) {
        return GN_ECLOSED;
    }
    loop_defer *d = gn_malloc(sizeof(*d));
    if (d == NULL) {
        return GN_ENOMEM;
    }
    d->next = NULL;
    d->fn = fn;
    d->arg = arg;
    if (loop->dtail == NULL) {
        loop->dhead = d;
        uv_idle_start(&loop->idle, loop_idle_cb);
    } else {
        loop->dtail->next = d;
    }
    loop->dtail = d;
    return 0;
}

void gn_loop_stop(gn_loop *loop)
{
    uv_mutex_lock(&loop->mtx);
    if (!loop->stopping) {
        loop->stopping = true;
        if (!loop->async_closed) {
            uv_async_send(&loop->async);
        }
    }
    uv_mutex_unlock(&loop->mtx);
}

void gn_loop_free(gn_loop *loop)
{
    if (loop == NULL) {
        return;
    }
    gn_loop_stop(loop);
    if (loop->embedded) {
        /* The application's uv_run completes the close; free now or in the last close cb. */
        uv_mutex_lock(&loop->mtx);
        bool done = loop->nclosed == LOOP_NHANDLES;
        if (!done) {
            loop->free_pending = true;
        }
        uv_mutex_unlock(&loop->mtx);
        if (done) {
            loop_destroy(loop);
        }
        return;
    }
    if (loop->has_thread) {
        uv_thread_join(&loop->thread);
    } else {
        /* Nobody runs the loop: drive the stop here (runs pending commands). */
        loop_set_tid(loop);
        while (!loop->closing) {
            uv_run(loop->uvl, UV_RUN_DEFAULT);
        }
        loop_finish_own(loop);
    }
    int rc = uv_loop_close(loop->uvl);
    if (rc != 0) {
        GN_LOG(GN_LOG_ERR, LOOP_LOG, "uv_loop_close: %s", uv_strerror(rc));
    }
    loop_destroy(loop);
}

gn_time gn_loop_now(const gn_loop *loop)
{
    return loop->virt ? loop->vnow : gn_now();
}

bool gn_loop_is_virtual(const gn_loop *loop)
{
    return loop->virt;
}

int gn_loop_advance(gn_loop *loop, gn_time delta)
{
    if (!loop->virt || loop->dispatching) {
        return GN_ESTATE;
    }
    assert(gn_loop_on_thread(loop));
    gn_time target = delta > GN_TIME_INFINITY - loop->vnow ? GN_TIME_INFINITY : loop->vnow + delta;
    loop->dispatching = true;
    while (loop->hlen > 0 && loop->heap[0].t->deadline <= target) {
        gn_timer *t = loop->heap[0].t;
        heap_remove(loop, 0);
        if (t->deadline > loop->vnow) {
            loop->vnow = t->deadline; /* callbacks see their own deadline as "now" */
        }
        t->fn(t, t->arg);
    }
    loop->dispatching = false;
    loop->vnow = target;
    return 0;
}

/* ------------------------------------------------------------------ */
/* timers                                                              */

void gn_timer_init(gn_loop *loop, gn_timer *t)
{
    t->loop = loop;
    t->deadline = 0;
    t->fn = NULL;
    t->arg = NULL;
    t->heap_idx = SIZE_MAX;
}

int gn_timer_start(gn_timer *t, gn_time delay, gn_timer_fn fn, void *arg)
{
    gn_loop *loop = t->loop;
    if (loop == NULL || fn == NULL) {
        return GN_EINVAL;
    }
    assert(gn_loop_on_thread(loop));
    if (loop->closing) {
        return GN_ECLOSED;
    }
    bool active = timer_in_heap(t);
    if (!active && loop->hlen == loop->hcap) {
        size_t ncap = loop->hcap ? loop->hcap * 2 : LOOP_HEAP_MIN;
        if (ncap > SIZE_MAX / sizeof(loop_hent)) {
            return GN_ENOMEM;
        }
        loop_hent *nh = gn_realloc(loop->heap, ncap * sizeof(loop_hent));
        if (nh == NULL) {
            return GN_ENOMEM;
        }
        loop->heap = nh;
        loop->hcap = ncap;
    }
    gn_time now = gn_loop_now(loop);
    t->deadline = delay > GN_TIME_INFINITY - now ? GN_TIME_INFINITY : now + delay;
    t->fn = fn;
    t->arg = arg;
    uint64_t seq = loop->seq++;
    if (active) {
        size_t i = t->heap_idx;
        loop->heap[i].seq = seq;
        heap_sift_down(loop, i);
        heap_sift_up(loop, t->heap_idx);
    } else {
        size_t i = loop->hlen++;
        loop->heap[i].t = t;
        loop->heap[i].seq = seq;
        t->heap_idx = i;
        heap_sift_up(loop, i);
    }
    loop_rearm(loop);
    return 0;
}

void gn_timer_stop(gn_timer *t)
{
    if (!timer_in_heap(t)) {
        t->heap_idx = SIZE_MAX;
        return;
    }
    gn_loop *loop = t->loop;
    heap_remove(loop, t->heap_idx);
    loop_rearm(loop);
}

bool gn_timer_active(const gn_timer *t)
{
    return timer_in_heap(t);
}

/* ------------------------------------------------------------------ */
/* loop-local storage                                                  */
/* ------------------------------------------------------------------ */

int gn_loop_set_local(gn_loop *loop, const void *key, void *value)
{
    if (!loop || !key) {
        return GN_EINVAL;
    }
    int free_slot = -1;
    for (int i = 0; i < GN_LOOP_LOCAL_SLOTS; i++) {
        if (loop->local[i].key == key) {
            if (value) {
                loop->local[i].value = value;
            } else {
                loop->local[i].key = NULL;
                loop->local[i].value = NULL;
            }
            return 0;
        }
        if (!loop->local[i].key && free_slot < 0) {
            free_slot = i;
        }
    }
    if (!value) {
        return 0;
    }
    if (free_slot < 0) {
        return GN_ELIMIT;
    }
    loop->local[free_slot].key = key;
    loop->local[free_slot].value = value;
    return 0;
}

void *gn_loop_get_local(const gn_loop *loop, const void *key)
{
    for (int i = 0; loop && key && i < GN_LOOP_LOCAL_SLOTS; i++) {
        if (loop->local[i].key == key) {
            return loop->local[i].value;
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------------
 * Cancellation handles
 */

void gn_op_cancel(gn_op *op)
{
    if (op != NULL && op->cancel != NULL) {
        op->cancel(op);
    }
}
