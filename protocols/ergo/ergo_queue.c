/*
 * golemnet - the Ergo node's any-thread queue (include/golemnet/ergo.h
 * "any-thread queue"; docs/ergo-node.md "Any-thread queue").
 *
 * A queued process is an ordinary process (ergo_node.c) whose message and
 * signal callbacks copy what they get into a gn_ergo_item and push it into a
 * gn_evq (core/evq.c) that any thread pops. Built on the public API of
 * ergo.h; ergo_node.c only tells us when the process ends
 * (gni_ergo_queue_on_proc_end()) and which loop the node runs on.
 *
 * Pause protocol (the bound): the loop pushes, then, when the queue is at a
 * bound, pauses the process and sets q->paused; a popper that takes the queue
 * below the bounds and wins the paused true -> false exchange submits the
 * resume. Each side changes its quantity first and looks at the other's
 * after, so one of them always sees the other: the loop re-checks the bounds
 * after setting q->paused and resumes itself when a pop slipped in between.
 *
 * Threads: q->en, q->proc are loop-thread fields; refs, bytes, paused and
 * closed are atomics; the evq locks itself. Sans-I/O: no syscalls here.
 *
 * Loop lifetime: an any-thread call that submits to q->loop (a resume, an
 * answer) checks closed and submits under q->lock, and the loop thread sets
 * closed under it when the process ends (gni_ergo_queue_on_proc_end()). So
 * once the process ended no thread starts a submit, and one under way has
 * finished: the node (and then its loop) may go right after. The lock is a
 * spin lock (no syscalls here) held only for one submit, which takes the
 * loop's mutex briefly and never blocks otherwise.
 */
#include "golemnet/ergo.h"
#include "golemnet/err.h"
#include "golemnet/log.h"
#include "golemnet/loop.h"

#include "edf_int.h"
#include "ergo_node_int.h"
#include "gni.h"

#include <stdatomic.h>
#include <string.h>

struct gn_ergo_queue {
    atomic_uint refs;       /* the application, the live process, each submitted command */
    gn_evq *evq;            /* of gn_ergo_item */
    gn_loop *loop;
    gn_ergo_node *en;       /* loop thread */
    gn_ergo_proc *proc;     /* loop thread; NULL once the process ended */
    gn_ergo_pid pid;        /* constant */
    uint32_t capacity;
    size_t max_bytes;
    atomic_size_t bytes;    /* memory of the items waiting (q_item_bytes()) */
    atomic_bool paused;     /* we paused the process and no resume is on its way */
    atomic_bool closed;     /* the process ended; set under lock */
    atomic_flag lock;       /* "closed is false" + a submit to loop, atomically */
    atomic_bool resume_queued; /* resume_cmd is submitted and has not started running */
    gni_loop_cmd resume_cmd;   /* reserved: its submit never fails for a full queue */
};

static void q_item_free(gn_ergo_item *it) { gn_edf_arena_free(it->arena_); }

/* what an item waiting costs: its slot and what its arena holds (the chunks, not the
 * bytes used: a copy's arena holds about twice its value); stable from push to pop */
static size_t q_item_bytes(const gn_ergo_item *it)
{
    return sizeof *it + gni_edf_arena_held(it->arena_);
}

static void q_unref(gn_ergo_queue *q)
{
    if (atomic_fetch_sub(&q->refs, 1) != 1)
        return;
    gn_ergo_item it;
    while (gn_evq_pop(q->evq, &it, 0) == 0) /* bounded: the items waiting */
        q_item_free(&it);
    gn_evq_free(q->evq);
    gn_free(q);
}

static void q_lock(gn_ergo_queue *q)
{
    /* bounded: the holder runs one gn_loop_submit()/gni_loop_submit_cmd() */
    while (atomic_flag_test_and_set_explicit(&q->lock, memory_order_acquire))
        ;
}

static void q_unlock(gn_ergo_queue *q) { atomic_flag_clear_explicit(&q->lock, memory_order_release); }

static bool q_full(gn_ergo_queue *q)
{
    return gn_evq_len(q->evq) >= q->capacity || atomic_load(&q->bytes) >= q->max_bytes;
}

/* loop thread, after a push: pause at a bound (see the pause protocol above) */
static void q_check_full(gn_ergo_queue *q)
{
    if (!q->proc || !q_full(q))
        return;
    (void)gn_ergo_proc_pause(q->proc, true);
    atomic_store(&q->paused, true);
    bool t = true;
    if (!q_full(q) && atomic_compare_exchange_strong(&q->paused, &t, false))
        (void)gn_ergo_proc_pause(q->proc, false);
}

static void q_resume_cmd(gn_loop *loop, void *arg)
{
    (void)loop;
    gn_ergo_queue *q = arg;
    /* first: a popper that sees it still set relies on us reading paused after */
    atomic_store(&q->resume_queued, false);
    if (q->proc && !atomic_load(&q->paused))
        (void)gn_ergo_proc_pause(q->proc, false);
    q_unref(q);
}

/* any thread, after a pop: submit the resume when we paused and the queue is below its bounds */
static void q_maybe_resume(gn_ergo_queue *q)
{
    if (!atomic_load(&q->paused) || atomic_load(&q->closed) || q_full(q))
        return;
    bool t = true;
    if (!atomic_compare_exchange_strong(&q->paused, &t, false))
        return;
    bool f = false; /* one submitted command at a time, holding one reference */
    if (!atomic_compare_exchange_strong(&q->resume_queued, &f, true))
        return; /* queued, not started: it reads paused (now false) when it runs */
    atomic_fetch_add(&q->refs, 1);
    q_lock(q);
    int rc = atomic_load(&q->closed) ? GN_ECLOSED : gni_loop_submit_cmd(q->loop, &q->resume_cmd);
    q_unlock(q);
    if (rc < 0) { /* the process ended or the loop is stopping: nothing to resume */
        atomic_store(&q->resume_queued, false);
        q_unref(q); /* not the last: the caller holds one */
    }
}

/* a copy of @v in a new arena (*@a), independent of the loop: encoded and decoded back */
static int q_copy_value(gn_ergo_queue *q, const gn_edf_value *v, gn_edf_arena **a,
                        gn_edf_value **out)
{
    size_t len = 0;
    int rc = gn_edf_encoded_len(NULL, v, &len);
    bool nil = rc == GN_EINVAL && v->kind == GN_EDF_NIL; /* a top-level nil does not encode */
    if (rc < 0 && !nil)
        return rc;
    uint8_t *buf = nil ? NULL : gn_malloc(len ? len : 1);
    if (!nil && !buf)
        return GN_ENOMEM;
    *a = gn_edf_arena_new(len * 2 + 256, 0);
    *out = *a ? gn_edf_arena_alloc(*a, sizeof **out) : NULL;
    if (!*out) {
        gn_edf_arena_free(*a);
        gn_free(buf);
        return GN_ENOMEM;
    }
    if (nil) {
        **out = *v; /* kind NIL: no bytes, no children (its type is a registry's or basic) */
        return 0;
    }
    gn_buf b;
    gn_buf_init(&b, buf, len);
    rc = gn_edf_encode(NULL, v, &b);
    if (rc >= 0) {
        gn_edf_decode_opts o;
        gn_edf_decode_opts_default(&o);
        o.reg = gn_ergo_registry(q->en);
        o.flags = GN_EDF_DECODE_COPY;
        o.max_input = len;
        o.max_values = UINT32_MAX;
        rc = gn_edf_decode(&o, *a, buf, len, *out, NULL, NULL);
    }
    gn_free(buf);
    if (rc < 0) {
        gn_edf_arena_free(*a);
        *a = NULL;
        return rc;
    }
    return 0;
}

/* loop thread: pushes @it (taking its arena) or drops it */
static void q_push(gn_ergo_queue *q, gn_ergo_item *it)
{
    size_t nb = q_item_bytes(it);
    atomic_fetch_add(&q->bytes, nb); /* before the push: a popper subtracts after its pop */
    /* only out of memory (the ring grows toward capacity as it fills; the bound paused us
     * before a full one): the item, message or signal, is dropped, as ergo.h says */
    if (gn_evq_push(q->evq, it) < 0) {
        atomic_fetch_sub(&q->bytes, nb);
        q_item_free(it);
        GN_LOG(GN_LOG_WARNING, "ergo", "queue of process %llu: %s dropped (out of memory)",
                    (unsigned long long)q->pid.id,
                    it->kind == GN_ERGO_ITEM_SIGNAL ? "signal" : "message");
        return;
    }
    q_check_full(q);
}

static void q_on_msg(gn_ergo_proc *p, void *arg, const gn_ergo_msg *m)
{
    (void)p;
    gn_ergo_queue *q = arg;
    gn_ergo_item it;
    memset(&it, 0, sizeof it);
    it.kind = GN_ERGO_ITEM_MESSAGE;
    it.msg = *m;
    gn_edf_arena *a = NULL;
    gn_edf_value *v = NULL;
    int rc = q_copy_value(q, m->value, &a, &v);
    if (rc < 0) {
        GN_LOG(GN_LOG_WARNING, "ergo", "queue of process %llu: message dropped (%s)",
                    (unsigned long long)q->pid.id, gn_strerror(rc));
        return;
    }
    it.msg.value = v;
    it.arena_ = a;
    q_push(q, &it);
}

static void q_on_sig(gn_ergo_proc *p, void *arg, const gn_ergo_signal *s)
{
    (void)p;
    gn_ergo_queue *q = arg;
    gn_ergo_item it;
    memset(&it, 0, sizeof it);
    it.kind = GN_ERGO_ITEM_SIGNAL;
    it.signal = *s;
    size_t n = s->reason ? strlen(s->reason) : 0;
    if (n > GN_ERGO_NAME_MAX)
        n = GN_ERGO_NAME_MAX;
    if (n)
        memcpy(it.reason_, s->reason, n);
    it.reason_[n] = '\0';
    it.signal.reason = NULL; /* set to it.reason_ by the pop (the item is copied) */
    q_push(q, &it);
}

void gni_ergo_queue_on_proc_end(gn_ergo_msg_cb cb, void *arg)
{
    if (cb != q_on_msg)
        return;
    gn_ergo_queue *q = arg;
    if (!q->proc)
        return;
    q->proc = NULL;
    q_lock(q); /* a barrier: a submit under way finishes before the node (and loop) may go */
    atomic_store(&q->closed, true);
    q_unlock(q);
    gn_evq_close(q->evq);
    q_unref(q);
}

int gn_ergo_spawn_queued(gn_ergo_node *en, const gn_ergo_queue_opts *o, gn_ergo_proc **p_out,
                         gn_ergo_queue **q_out)
{
    if (!en || !p_out || !q_out)
        return GN_EINVAL;
    gn_ergo_queue *q = gn_calloc(1, sizeof *q);
    if (!q)
        return GN_ENOMEM;
    q->capacity = o && o->capacity ? o->capacity : GN_ERGO_QUEUE_DEFAULT;
    q->max_bytes = o && o->max_bytes ? o->max_bytes : GN_ERGO_QUEUE_BYTES_DEFAULT;
    q->loop = gni_ergo_node_loop(en);
    q->en = en;
    int rc = gn_evq_new(q->capacity, sizeof(gn_ergo_item), &q->evq);
    if (rc < 0) {
        gn_free(q);
        return rc;
    }
    gn_ergo_proc *p = NULL;
    rc = gn_ergo_spawn(en, o ? &o->proc : NULL, q_on_msg, q, &p);
    if (rc < 0) {
        gn_evq_free(q->evq);
        gn_free(q);
        return rc;
    }
    (void)gn_ergo_proc_set_signal_cb(p, q_on_sig, q);
    q->proc = p;
    gn_ergo_proc_pid(p, &q->pid);
    atomic_init(&q->refs, 2);
    atomic_init(&q->bytes, 0);
    atomic_init(&q->paused, false);
    atomic_init(&q->closed, false);
    atomic_init(&q->resume_queued, false);
    atomic_flag_clear(&q->lock);
    q->resume_cmd.fn = q_resume_cmd;
    q->resume_cmd.arg = q;
    *p_out = p;
    *q_out = q;
    return 0;
}

int gn_ergo_queue_next(gn_ergo_queue *q, gn_ergo_item *item, gn_time timeout)
{
    if (!q || !item)
        return GN_EINVAL;
    int rc = gn_evq_pop(q->evq, item, timeout);
    if (rc < 0)
        return rc;
    atomic_fetch_sub(&q->bytes, q_item_bytes(item));
    if (item->kind == GN_ERGO_ITEM_SIGNAL)
        item->signal.reason = item->reason_;
    q_maybe_resume(q);
    return 0;
}

void gn_ergo_item_release(gn_ergo_item *item)
{
    if (!item)
        return;
    gn_edf_arena_free(item->arena_);
    item->arena_ = NULL;
    item->msg.value = NULL;
}

int gn_ergo_queue_fd(const gn_ergo_queue *q) { return q ? gn_evq_fd(q->evq) : -1; }

size_t gn_ergo_queue_len(gn_ergo_queue *q) { return q ? gn_evq_len(q->evq) : 0; }

bool gn_ergo_queue_paused(gn_ergo_queue *q) { return q && atomic_load(&q->paused); }

void gn_ergo_queue_pid(const gn_ergo_queue *q, gn_ergo_pid *out)
{
    if (q && out)
        *out = q->pid;
}

/* an answer on its way to the loop */
typedef struct q_reply {
    gn_ergo_queue *q;
    gn_ergo_pid to;
    gn_ergo_ref ref;
    gn_ergo_result_cb cb;
    void *arg;
    bool error; /* data is the NUL-terminated text, else the encoded value */
    size_t len;
    uint8_t data[];
} q_reply;

static void q_reply_cmd(gn_loop *loop, void *arg)
{
    (void)loop;
    q_reply *r = arg;
    gn_ergo_queue *q = r->q;
    int rc = GN_ECLOSED;
    if (q->proc && r->error) {
        rc = gn_ergo_reply_error(q->proc, &r->to, &r->ref, (const char *)r->data);
    } else if (q->proc) {
        gn_edf_arena *a = gn_edf_arena_new(r->len * 2 + 256, 0);
        gn_edf_value v;
        rc = GN_ENOMEM;
        if (a) {
            gn_edf_decode_opts o;
            gn_edf_decode_opts_default(&o);
            o.reg = gn_ergo_registry(q->en);
            o.max_input = r->len;
            o.max_values = UINT32_MAX;
            rc = gn_edf_decode(&o, a, r->data, r->len, &v, NULL, NULL);
            if (rc == 0)
                rc = gn_ergo_reply(q->proc, &r->to, &r->ref, &v);
        }
        gn_edf_arena_free(a);
    }
    if (r->cb)
        r->cb(r->arg, rc, NULL);
    gn_free(r);
    q_unref(q);
}

static int q_reply_submit(gn_ergo_queue *q, q_reply *r)
{
    atomic_fetch_add(&q->refs, 1);
    q_lock(q);
    int rc = atomic_load(&q->closed) ? GN_ECLOSED : gn_loop_submit(q->loop, q_reply_cmd, r);
    q_unlock(q);
    if (rc < 0) {
        gn_free(r);
        q_unref(q);
    }
    return rc;
}

static q_reply *q_reply_new(gn_ergo_queue *q, const gn_ergo_pid *to, const gn_ergo_ref *ref,
                            size_t len, gn_ergo_result_cb cb, void *arg)
{
    q_reply *r = gn_malloc(sizeof *r + len);
    if (!r)
        return NULL;
    memset(r, 0, sizeof *r);
    r->q = q;
    r->to = *to;
    r->ref = *ref;
    r->cb = cb;
    r->arg = arg;
    r->len = len;
    return r;
}

int gn_ergo_queue_reply(gn_ergo_queue *q, const gn_ergo_pid *to, const gn_ergo_ref *ref,
                        const gn_edf_value *v, gn_ergo_result_cb cb, void *arg)
{
    if (!q || !to || !ref || !v)
        return GN_EINVAL;
    if (atomic_load(&q->closed))
        return GN_ECLOSED;
    size_t len = 0;
    int rc = gn_edf_encoded_len(NULL, v, &len);
    if (rc < 0)
        return rc;
    q_reply *r = q_reply_new(q, to, ref, len, cb, arg);
    if (!r)
        return GN_ENOMEM;
    gn_buf b;
    gn_buf_init(&b, r->data, len);
    rc = gn_edf_encode(NULL, v, &b);
    if (rc < 0) {
        gn_free(r);
        return rc;
    }
    return q_reply_submit(q, r);
}

int gn_ergo_queue_reply_error(gn_ergo_queue *q, const gn_ergo_pid *to, const gn_ergo_ref *ref,
                              const char *text, gn_ergo_result_cb cb, void *arg)
{
    if (!q || !to || !ref || !text)
        return GN_EINVAL;
    size_t n = 0;
    while (n <= 32767 && text[n]) /* bounded: 32768 bytes */
        n++;
    if (n == 0 || n > 32767)
        return GN_EINVAL;
    if (atomic_load(&q->closed))
        return GN_ECLOSED;
    q_reply *r = q_reply_new(q, to, ref, n + 1, cb, arg);
    if (!r)
        return GN_ENOMEM;
    r->error = true;
    memcpy(r->data, text, n + 1);
    return q_reply_submit(q, r);
}

void gn_ergo_queue_free(gn_ergo_queue *q)
{
    if (q)
        q_unref(q);
}
