/*
 * The write-request queue of gn_stream implementations (internal).
 *
 * Every stream implementation (tcp, memory, the secure and muxer drivers,
 * the test pipe) keeps the writes its consumer made until they complete.
 * This queue is that bookkeeping, once:
 *
 *  - a request holds the consumer's completion (cb, arg), the byte count
 *    for the metrics, optionally a copy of the slice array (the bytes stay
 *    borrowed: zero copy) with a cursor of what the implementation has
 *    taken so far, and optionally `extra` bytes of storage for the
 *    implementation (a uv_write_t, sealed frames);
 *  - every pushed request completes exactly once, through
 *    gn_stream_complete_write(), with the status the implementation gives
 *    (gni_wq_complete), or the one decided earlier (gni_wq_set_done), or
 *    GN_ECANCELED and the like for all of them (gni_wq_cancel_all);
 *  - an optional byte bound: gni_wq_admit() refuses a write with GN_EAGAIN
 *    while bytes are queued and the write would exceed it, and remembers
 *    that the consumer waits for on_writable; gni_wq_writable_due() says
 *    when to emit it (queued bytes at or below half the bound). An
 *    implementation with its own refusal rule uses gni_wq_refuse();
 *  - an optional one-request recycling slot (spare_max > 0): the largest
 *    recent allocation up to spare_max bytes is kept for the next push;
 *  - the bytes it has allocated (mem: requests and the spare, headers
 *    included), for an implementation that accounts them in a resource
 *    manager span.
 *
 * Invariants: reqs holds the queued requests in the order they were pushed;
 * bytes is the sum of their `left`; a request is freed (or kept as the
 * spare) before its completion runs, so a completion may push, complete or
 * cancel freely; the spare is never on reqs.
 *
 * Thread context: the stream's loop thread; not thread-safe. Completions
 * run inside gni_wq_complete() / gni_wq_cancel_all(): call them only where
 * the implementation may call back its consumer (never inside the
 * consumer's own gn_stream_*() call).
 */
#ifndef GNI_WQ_H
#define GNI_WQ_H

#include "golemnet/stream.h"

#include "gni.h"

#include <stddef.h>

/** A queued write. Fields are read-only for the implementation. */
typedef struct gni_wreq {
    gni_list link;
    gn_write_cb cb;
    void *arg;
    size_t len;    /* bytes the consumer wrote */
    size_t left;   /* bytes the implementation has not taken yet */
    size_t idx;    /* slice the cursor is in */
    size_t off;    /* offset of the cursor in it */
    size_t iovcnt; /* slices kept (0 without keep_iov) */
    gn_slice *iov; /* the kept slices, inside this allocation */
    size_t cap;    /* bytes of storage after the header (extra + slices) */
    int status;    /* the decided status, when done */
    bool done;     /* gni_wq_set_done() decided the status */
    max_align_t extra[]; /* the implementation's storage, then the slices */
} gni_wreq;

typedef struct gni_wq {
    gni_list reqs;
    gn_stream *s;       /* completions go through gn_stream_complete_write(s) */
    size_t bytes;       /* not yet taken, over every queued request */
    size_t max_bytes;   /* gni_wq_admit() bound; 0: none */
    gni_wreq *spare;
    uint32_t spare_max; /* largest allocation kept for reuse; 0: none kept */
    size_t mem;         /* bytes allocated: queued requests and the spare */
    bool want_writable; /* a write was refused with GN_EAGAIN */
} gni_wq;

/**
 * Initialises @q for stream @s: @max_bytes bounds queued bytes (0: no
 * bound), @spare_max is the largest request storage kept for reuse (0:
 * none). Allocates nothing.
 */
void gni_wq_init(gni_wq *q, gn_stream *s, size_t max_bytes, size_t spare_max);

/**
 * Frees the spare. Queued requests are the implementation's to complete
 * before this (asserted in debug builds).
 */
void gni_wq_fini(gni_wq *q);

/**
 * Sums the @iovcnt slices into *@len and applies the byte bound. Returns 0,
 * GN_EINVAL (the sum overflows), or GN_EAGAIN (bytes are queued and @len
 * more would exceed max_bytes; want_writable is set).
 */
int gni_wq_admit(gni_wq *q, const gn_slice *iov, size_t iovcnt, size_t *len);

/** Refuses a write by the implementation's own rule: sets want_writable, returns GN_EAGAIN. */
static inline int gni_wq_refuse(gni_wq *q)
{
    q->want_writable = true;
    return GN_EAGAIN;
}

/**
 * Appends a request for a write of @len bytes (as gni_wq_admit() summed)
 * completing with @cb(@arg). With @keep_iov the @iovcnt slices are copied
 * (not their bytes, which stay borrowed) and the cursor starts at the first
 * byte; without, the request only accounts @len bytes. @extra_len bytes of
 * storage (max_align_t aligned, uninitialised) are at gni_wreq_extra().
 * Returns 0 with *@out set, GN_EINVAL (sizes overflow) or GN_ENOMEM.
 */
int gni_wq_push(gni_wq *q, const gn_slice *iov, size_t iovcnt, size_t len, gn_write_cb cb,
                void *arg, bool keep_iov, size_t extra_len, gni_wreq **out);

/**
 * Removes @w without completing it: for a write the implementation refused
 * after pushing it (its gn_stream_ops.write then returns the error, so
 * the consumer's callback must not run).
 */
void gni_wq_drop(gni_wq *q, gni_wreq *w);

/** The oldest queued request, or NULL. */
static inline gni_wreq *gni_wq_head(const gni_wq *q)
{
    return gni_list_empty(&q->reqs) ? NULL : GNI_CONTAINER_OF(q->reqs.next, gni_wreq, link);
}

static inline bool gni_wq_empty(const gni_wq *q) { return gni_list_empty(&q->reqs); }
static inline size_t gni_wq_bytes(const gni_wq *q) { return q->bytes; }

/** The implementation's storage of @w (extra_len bytes given to gni_wq_push). */
static inline void *gni_wreq_extra(gni_wreq *w) { return w->extra; }

/** The request whose storage gni_wreq_extra() returned @p. */
static inline gni_wreq *gni_wreq_of_extra(void *p)
{
    return GNI_CONTAINER_OF(p, gni_wreq, extra);
}

/**
 * The next bytes of a keep_iov request not taken yet, as one contiguous
 * slice of the consumer's (empty slices skipped). Returns false when every
 * byte was taken.
 */
bool gni_wreq_peek(const gni_wreq *w, gn_slice *out);

/** Marks @n (<= w->left) more bytes of @w taken: moves the cursor and the counts. */
void gni_wq_advance(gni_wq *q, gni_wreq *w, size_t n);

/**
 * Copies the next bytes of a keep_iov request not taken yet into @buf (at
 * most @cap bytes), across slices, as long as each slice's remaining part
 * is at most @small bytes; the cursor does not move (gni_wq_advance() after
 * the consumer took them). Returns the bytes copied: 0 when the next slice
 * is larger than @small (hand it over as it is) or nothing is left. For
 * consumers that take bytes one call per piece: many small slices become
 * one call.
 */
size_t gni_wreq_gather(const gni_wreq *w, uint8_t *buf, size_t cap, size_t small);

/** Decides @w's status now; gni_wq_cancel_all() then reports it instead of its own. */
static inline void gni_wq_set_done(gni_wreq *w, int status)
{
    w->done = true;
    w->status = status;
}

/**
 * Completes @w with @status: removes it, frees (or keeps as the spare) its
 * storage, then calls gn_stream_complete_write(). @w is invalid afterwards.
 */
void gni_wq_complete(gni_wq *q, gni_wreq *w, int status);

/**
 * Completes every queued request, oldest first: with its decided status
 * when gni_wq_set_done() ran for it, else with @status. Clears
 * want_writable. Requests pushed by the completions stay queued.
 */
void gni_wq_cancel_all(gni_wq *q, int status);

/**
 * True, once, when a refused writer should get on_writable: want_writable
 * is set and the queued bytes are at or below half the bound (or there is
 * no bound). Clears want_writable when it returns true.
 */
bool gni_wq_writable_due(gni_wq *q);

/** Frees the spare and keeps none from now on (a closing stream). */
void gni_wq_stop_recycling(gni_wq *q);

#endif /* GNI_WQ_H */
