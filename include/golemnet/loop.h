/*
 * golemnet - the loop: where a node's network runs, and how other threads
 * reach it.
 *
 * A gn_loop wraps one libuv loop. It runs either on a thread of its own
 * (gn_loop_start_thread) or inside an application's loop (gn_loop_new_embedded
 * plus the application running uv_run). Everything in layers and protocols
 * runs on that one thread; layers take no locks.
 *
 * Other threads reach the loop through a bounded multi-producer command
 * queue (gn_loop_submit) woken with uv_async, and receive events through a
 * bounded event queue (gn_evq) they poll, block on, or watch through a file
 * descriptor. This is the golem-net design's "net event publisher -> poll
 * event" path.
 *
 * Time: the loop has a clock, real (monotonic) by default or virtual for
 * deterministic tests; timers (gn_timer) run on that clock.
 */
#ifndef GOLEMNET_LOOP_H
#define GOLEMNET_LOOP_H

#include "golemnet/common.h"

GN_BEGIN_DECLS

typedef struct gn_loop gn_loop;
/** libuv's loop type; the only libuv type in the public headers. */
typedef struct uv_loop_s uv_loop_t;

/** A command or deferred call; runs on the loop thread. */
typedef void (*gn_loop_fn)(gn_loop *loop, void *arg);

/** Loop options. Fill with gn_loop_config_default() first. */
typedef struct gn_loop_config {
    uint32_t version;         /* GN_LOOP_CONFIG_VERSION */
    size_t cmdq_capacity;     /* commands queued from other threads; default 4096 */
    bool virtual_clock;       /* start with a virtual clock at time 0 */
} gn_loop_config;
#define GN_LOOP_CONFIG_VERSION 1

/** Fills @cfg with defaults. Since: 0.1 */
GN_API void gn_loop_config_default(gn_loop_config *cfg);

/**
 * Creates a loop that owns a new libuv loop. @cfg NULL means defaults. It
 * does not run until gn_loop_start_thread() or gn_loop_run().
 * Errors: GN_EINVAL (bad config version, zero capacity), GN_ENOMEM, GN_EIO.
 * Since: 0.1
 */
GN_API int gn_loop_new(const gn_loop_config *cfg, gn_loop **out);

/**
 * Creates a loop living inside the application's @uvl. The application runs
 * @uvl; golemnet's handles keep it alive until gn_loop_stop(); keep running
 * @uvl until that close finishes, then call gn_loop_free().
 * Thread context: call on @uvl's thread.
 * Errors: as gn_loop_new().
 * Since: 0.1
 */
GN_API int gn_loop_new_embedded(uv_loop_t *uvl, const gn_loop_config *cfg, gn_loop **out);

/** The libuv loop underneath (for adapters). */
GN_API uv_loop_t *gn_loop_uv(gn_loop *loop);

/**
 * Runs the loop on a new thread until gn_loop_stop(). Errors: GN_ESTATE
 * (embedded loop, or already running), GN_EIO (thread creation failed).
 * Since: 0.1
 */
GN_API int gn_loop_start_thread(gn_loop *loop);

/** Run modes for gn_loop_run(), as uv_run's. */
typedef enum gn_run_mode { GN_RUN_DEFAULT = 0, GN_RUN_ONCE = 1, GN_RUN_NOWAIT = 2 } gn_run_mode;

/**
 * Runs the loop on the calling thread (which becomes the loop thread).
 * Returns nonzero if handles remain active (uv_run's meaning), or
 * GN_ESTATE if a thread already runs it.
 * Extra passes (in practice on Windows only, where libuv runs close
 * callbacks at the start of the next pass): when the run ends with the loop's
 * own handles still closing, gn_loop_run makes up to 16 more non-blocking passes (UV_RUN_NOWAIT) to finish those closes, and
 * returns 0 when they are done, as on POSIX. Callbacks due in those passes
 * (timers, I/O) run then too, on the calling thread. Not for an embedded
 * loop (gn_loop_new_embedded): its owner runs the passes.
 * Since: 0.1
 */
GN_API int gn_loop_run(gn_loop *loop, gn_run_mode mode);

/**
 * True when called on the loop thread: the creating thread until the loop is
 * started, then the loop's thread (or whichever thread last called
 * gn_loop_run()). This lets set-up code and virtual-clock tests use timers
 * without running the loop.
 */
GN_API bool gn_loop_on_thread(const gn_loop *loop);

/**
 * Queues @fn(loop, @arg) to run on the loop thread, from any thread.
 * Commands run in submission order per producer. Errors: GN_EAGAIN when the
 * queue is full (backpressure: retry later), GN_ECLOSED once the loop is
 * stopping, GN_EINVAL for a NULL @loop or @fn; @fn is then not called and
 * @arg still belongs to the caller.
 * Since: 0.1
 */
GN_API int gn_loop_submit(gn_loop *loop, gn_loop_fn fn, void *arg);

/**
 * Runs @fn(loop, @arg) on the loop thread at the start of the next loop
 * iteration, never from inside this call (no re-entry). Loop thread only.
 * Deferred calls are unbounded in count but each takes one small allocation.
 * Errors: GN_ENOMEM, GN_ECLOSED, GN_EINVAL (NULL @loop or @fn).
 * Since: 0.1
 */
GN_API int gn_loop_defer(gn_loop *loop, gn_loop_fn fn, void *arg);

/**
 * Asks the loop to stop, from any thread. Pending commands are run first,
 * then pending deferred calls (a call that keeps deferring itself is given
 * up after 1000 iterations); then the loop closes its handles (on an owned
 * loop also any handle other code left open, with a warning) and its thread
 * (if any) exits. Timers still armed are abandoned. Idempotent.
 * Since: 0.1
 */
GN_API void gn_loop_stop(gn_loop *loop);

/**
 * Waits for the loop thread (if any) to exit and frees the loop. Call after
 * gn_loop_stop() from a thread other than the loop thread, or from the loop
 * owner after gn_loop_run() returned. For an embedded loop, the
 * application keeps running @uvl until the close completes; gn_loop_free()
 * then only frees memory. On a loop nobody ran, gn_loop_free() performs the
 * stop itself, running pending commands on the calling thread.
 * Since: 0.1
 */
GN_API void gn_loop_free(gn_loop *loop);

/** Most loop-local values (gn_loop_set_local). */
#define GN_LOOP_LOCAL_SLOTS 16

/**
 * Loop-local storage for components that share state among their instances
 * on one loop (the memory transport's listener table) without globals or
 * locks. @key is the address of a static object of the caller's; @value NULL
 * removes the entry. Loop thread only. Errors: GN_EINVAL (NULL key),
 * GN_ELIMIT (all GN_LOOP_LOCAL_SLOTS slots in use).
 * Since: 0.1
 */
GN_API int gn_loop_set_local(gn_loop *loop, const void *key, void *value);

/** The value stored under @key, or NULL. Loop thread only. Since: 0.1 */
GN_API void *gn_loop_get_local(const gn_loop *loop, const void *key);

/** The loop clock, ns: monotonic, or the virtual time. Loop thread. */
GN_API gn_time gn_loop_now(const gn_loop *loop);

/**
 * Virtual clock: moves the time forward by @delta and runs every timer that
 * became due, in deadline order. GN_ESTATE if the clock is real.
 * Loop thread only.
 * Since: 0.1
 */
GN_API int gn_loop_advance(gn_loop *loop, gn_time delta);

/** True when the loop uses a virtual clock. */
GN_API bool gn_loop_is_virtual(const gn_loop *loop);

/**
 * A one-shot timer on the loop's clock. Caller-owned storage; call
 * gn_timer_init() first (a zeroed timer reports inactive and refuses to
 * start). Fields are private.
 */
typedef struct gn_timer gn_timer;
typedef void (*gn_timer_fn)(gn_timer *t, void *arg);
struct gn_timer {
    gn_loop *loop;
    gn_time deadline;
    gn_timer_fn fn;
    void *arg;
    size_t heap_idx; /* private: position in the loop's timer heap, SIZE_MAX if idle */
};

/** Prepares @t for use on @loop. */
GN_API void gn_timer_init(gn_loop *loop, gn_timer *t);
/**
 * (Re)arms @t to fire once @delay ns from now. Re-arming an active timer
 * moves it. Loop thread only. Errors: GN_ENOMEM (heap growth), GN_EINVAL
 * (no loop or no @fn), GN_ECLOSED (the loop is closed).
 */
GN_API int gn_timer_start(gn_timer *t, gn_time delay, gn_timer_fn fn, void *arg);
/** Disarms @t; no-op when idle. Safe inside its own callback. */
GN_API void gn_timer_stop(gn_timer *t);
/** True when armed. */
GN_API bool gn_timer_active(const gn_timer *t);

/**
 * gn_op: the handle of an asynchronous operation in progress, for
 * cancelling it. One pattern for every operation that completes through a
 * callback (a transport dial, a security handshake, a multistream-select
 * negotiation): the call that starts it takes a trailing `gn_op **op`;
 * NULL means the caller will not cancel. When the call returns 0, *@op is
 * the operation's handle; on an immediate error *@op is set to NULL.
 *
 * The handle is valid from the start call's return until its completion
 * callback begins; the caller clears its copy first thing in the callback.
 * Cancelling an operation that already completed is a use after free.
 *
 * A component embeds a gn_op in its per-operation state and sets @cancel;
 * the field is private to the component.
 *
 * Since: 0.1
 */
typedef struct gn_op gn_op;
struct gn_op {
    void (*cancel)(gn_op *op);
};

/**
 * Cancels @op: the operation stops at once and releases what it holds (a
 * dial's socket is closed before this returns, timers are stopped, a stream
 * the operation owns is closed) and its completion callback runs exactly
 * once, later, from the loop (never from inside this call), with
 * GN_ECANCELED, even when the operation was about to succeed or had failed
 * with another error not yet reported. A stream the caller lent to the
 * operation (multistream-select) is handed back through that callback, as
 * on any failure. Memory of the operation is freed no later than that
 * callback. Calling it again before the callback is a no-op; NULL is a
 * no-op. Loop thread only.
 * Since: 0.1
 */
GN_API void gn_op_cancel(gn_op *op);

/**
 * Event queue: bounded, thread-safe, fixed-size items.
 *
 * The loop thread (or any thread) pushes; application threads pop,
 * optionally blocking with a timeout, or watch gn_evq_fd() for readability
 * (for asyncio and other event loops).
 */
typedef struct gn_evq gn_evq;

/**
 * Creates a queue of @capacity items of @item_size bytes each. Memory for
 * the items is allocated as they are queued (the ring starts small and
 * doubles up to @capacity; it does not shrink), so a large bound costs
 * nothing until used (since 0.3; before, @capacity slots up front).
 * Errors: GN_EINVAL (zero sizes), GN_ENOMEM, GN_EIO (no wakeup fd).
 * Since: 0.1
 */
GN_API int gn_evq_new(size_t capacity, size_t item_size, gn_evq **out);

/** Frees the queue. No thread may be blocked in it. */
GN_API void gn_evq_free(gn_evq *q);

/**
 * Copies one item in. Errors: GN_EAGAIN when full (the producer decides
 * whether to drop, retry or stop reading; also when the ring could not grow
 * toward its capacity for lack of memory), GN_ECLOSED after gn_evq_close().
 */
GN_API int gn_evq_push(gn_evq *q, const void *item);

/**
 * Copies the oldest item to @item. @timeout: 0 = do not wait,
 * GN_TIME_INFINITY = wait forever, else ns. Errors: GN_EAGAIN (empty with
 * timeout 0), GN_ETIMEDOUT, GN_ECLOSED (closed and drained).
 */
GN_API int gn_evq_pop(gn_evq *q, void *item, gn_time timeout);

/**
 * A file descriptor that is readable while the queue holds items or is
 * closed: an eventfd on Linux, a pipe on other POSIX systems, and on Windows
 * a loopback TCP socket (a SOCKET value, watchable with Winsock select() and
 * Python's selectors; core/gni_platform.h). Do not read or close it
 * yourself. On Windows the socket may stay readable for a moment after the
 * queue empties; a pop that returns GN_EAGAIN clears that.
 */
GN_API int gn_evq_fd(const gn_evq *q);

/** Closes the queue: pushes fail, waiters wake; queued items can still be popped. */
GN_API void gn_evq_close(gn_evq *q);

/** Items queued now. */
GN_API size_t gn_evq_len(gn_evq *q);

GN_END_DECLS

#endif /* GOLEMNET_LOOP_H */
