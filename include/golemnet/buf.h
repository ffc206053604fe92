/*
 * golemnet - bounded chunk queues and refcounted buffers.
 *
 * gn_bufq: a FIFO of bytes stored in chunks, bounded by a maximum chunk
 * count. A full queue refuses writes with GN_EAGAIN (backpressure); readers
 * peek at the head and skip what they consumed. Emptied chunks go to a small
 * spare pool. Modelled on curl's bufq. Chunks have one fixed size
 * (gn_bufq_init) or adapt to the data (gn_bufq_init_adaptive): a new chunk
 * is sized for the bytes the writer expects, between a minimum and a
 * maximum, so small messages on many queues stay small and bulk data goes in
 * large chunks (the muxers' per-stream queues work this way).
 *
 * gn_rcbuf: an immutable byte buffer with a reference count, for data that
 * fans out (broadcast to many peers).
 *
 * Thread context: neither type is thread-safe; use one from one thread.
 */
#ifndef GOLEMNET_BUF_H
#define GOLEMNET_BUF_H

#include "golemnet/common.h"

GN_BEGIN_DECLS

typedef struct gn_bufq_chunk gn_bufq_chunk;

/** A bounded chunk queue. Caller-owned storage; fields are private. */
typedef struct gn_bufq {
    gn_bufq_chunk *head;
    gn_bufq_chunk *tail;
    gn_bufq_chunk *spare;
    size_t len;        /* queued bytes */
    size_t max_chunks;
    size_t nchunks;
    uint32_t chunk_min; /* == chunk_size for fixed-size chunks */
    uint32_t chunk_size; /* largest chunk */
    uint32_t max_spare;
    uint32_t nspare;
} gn_bufq;

/**
 * Initialises @q with fixed-size chunks: chunks of @chunk_size bytes
 * (1 .. 2^32-1), at most @max_chunks (> 0; SIZE_MAX when the caller bounds
 * what it writes) of them in use, at most @max_spare (<= 2^32-1) emptied
 * chunks kept for reuse. Allocates nothing. Returns 0, or GN_EINVAL (@q
 * NULL, a size or count out of range).
 * Since: 0.1
 */
GN_API int gn_bufq_init(gn_bufq *q, size_t chunk_size, size_t max_chunks, size_t max_spare);

/**
 * Initialises @q with adaptive chunks: a new chunk holds the larger of the
 * write's remaining bytes and its hint (gn_bufq_write_hint()), clamped to
 * @chunk_min .. @chunk_max bytes (1 <= @chunk_min <= @chunk_max <= 2^32-1).
 * @max_chunks and @max_spare as for gn_bufq_init(); spare chunks are reused
 * whatever their size. Allocates nothing. Returns 0, or GN_EINVAL (@q NULL,
 * a size or count out of range).
 * Since: 0.1
 */
GN_API int gn_bufq_init_adaptive(gn_bufq *q, size_t chunk_min, size_t chunk_max,
                                 size_t max_chunks, size_t max_spare);

/**
 * Frees every chunk (queued and spare). @q is then empty and may be used
 * again with the same settings, or re-initialised. NULL is a no-op.
 * Since: 0.1
 */
GN_API void gn_bufq_fini(gn_bufq *q);

/**
 * Appends up to @len bytes of @data (borrowed for the call; copied).
 * Returns the number of bytes taken (possibly fewer than @len when the bound
 * is reached or an allocation failed after some bytes were taken),
 * GN_EAGAIN when the queue is full and nothing was taken, or GN_ENOMEM when
 * an allocation failed and nothing was taken.
 * Since: 0.1
 */
GN_API long gn_bufq_write(gn_bufq *q, const uint8_t *data, size_t len);

/**
 * gn_bufq_write() with a size hint for adaptive queues: @hint is how many
 * bytes the writer expects to append in all, this call's included (e.g. the
 * rest of a frame that arrives in pieces); new chunks are sized for
 * max(@hint, the bytes left in this call). 0 means no hint. Fixed-size
 * queues ignore it. Returns and errors as gn_bufq_write().
 * Since: 0.1
 */
GN_API long gn_bufq_write_hint(gn_bufq *q, const uint8_t *data, size_t len, size_t hint);

/**
 * Peeks at the first contiguous run of queued bytes: returns true and sets
 * @data and @len (never 0), or false when empty. Valid until the next call
 * that changes @q.
 * Since: 0.1
 */
GN_API bool gn_bufq_peek(const gn_bufq *q, const uint8_t **data, size_t *len);

/** Drops @len bytes from the head (clamped to the queued length). Since: 0.1 */
GN_API void gn_bufq_skip(gn_bufq *q, size_t len);

/**
 * Copies up to @len queued bytes to @out and drops them. Returns the count
 * (0 when empty).
 * Since: 0.1
 */
GN_API size_t gn_bufq_read(gn_bufq *q, uint8_t *out, size_t len);

/** Queued bytes. */
GN_API size_t gn_bufq_len(const gn_bufq *q);
/** True when no more bytes fit. */
GN_API bool gn_bufq_is_full(const gn_bufq *q);
/**
 * Bytes that still fit before GN_EAGAIN (SIZE_MAX when that overflows). For
 * an adaptive queue an upper bound: chunks sized for small writes hold less.
 */
GN_API size_t gn_bufq_space(const gn_bufq *q);

/** A refcounted immutable buffer. Opaque. */
typedef struct gn_rcbuf gn_rcbuf;

/**
 * Creates a buffer holding a copy of @len bytes at @data (NULL allowed to get
 * zeroed storage to fill through gn_rcbuf_data_mut() before sharing), with
 * one reference. Returns NULL on allocation failure.
 * Since: 0.1
 */
GN_API gn_rcbuf *gn_rcbuf_new(const uint8_t *data, size_t len);
/** Adds a reference; returns @b. */
GN_API gn_rcbuf *gn_rcbuf_hold(gn_rcbuf *b);
/** Drops a reference; frees on the last one. NULL is a no-op. */
GN_API void gn_rcbuf_rele(gn_rcbuf *b);
/** The bytes, borrowed while a reference is held. */
GN_API gn_slice gn_rcbuf_slice(const gn_rcbuf *b);
/** Writable view, only valid while the caller holds the only reference. */
GN_API uint8_t *gn_rcbuf_data_mut(gn_rcbuf *b);
/** Current reference count (for tests). */
GN_API size_t gn_rcbuf_refcnt(const gn_rcbuf *b);

GN_END_DECLS

#endif /* GOLEMNET_BUF_H */
