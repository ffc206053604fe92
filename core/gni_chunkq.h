/*
 * A byte FIFO in heap chunks sized by a hint (internal). The muxer cores
 * queue stream data in it: a chunk is sized for the rest of the frame being
 * stored (between 256 bytes and 16 KiB), so small messages on many streams
 * stay small and bulk data goes in large chunks. Unbounded by itself:
 * callers bound what they append (windows, buffer limits).
 */
#ifndef GNI_CHUNKQ_H
#define GNI_CHUNKQ_H

#include "golemnet/common.h"

#define GNI_CHUNKQ_MIN 256u
#define GNI_CHUNKQ_MAX (16u * 1024u)

typedef struct gni_chunk gni_chunk;

typedef struct gni_chunkq {
    gni_chunk *head;
    gni_chunk *tail;
    size_t len; /* queued bytes */
} gni_chunkq;

/**
 * Appends @n bytes; @hint is how many bytes are expected in all (sizes a
 * new chunk). Returns the count appended (< @n only when allocation failed).
 */
size_t gni_chunkq_append(gni_chunkq *q, const uint8_t *p, size_t n, size_t hint);
/** The first contiguous run, or false when empty. Valid until the next call. */
bool gni_chunkq_peek(const gni_chunkq *q, gn_slice *out);
/** Drops @n bytes from the head (clamped). */
void gni_chunkq_skip(gni_chunkq *q, size_t n);
/** Copies and drops up to @n bytes; returns the count. */
size_t gni_chunkq_read(gni_chunkq *q, uint8_t *out, size_t n);
/** Frees every chunk; the queue is empty and reusable. */
void gni_chunkq_clear(gni_chunkq *q);

#endif /* GNI_CHUNKQ_H */
