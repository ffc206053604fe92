/* A byte FIFO in heap chunks sized by a hint (see gni_chunkq.h). */
#include "gni_chunkq.h"

#include "golemnet/log.h"
#include "gni.h"

#include <string.h>

struct gni_chunk {
    gni_chunk *next;
    size_t rd;
    size_t wr;
    size_t cap;
    uint8_t data[];
};

/* Appends; returns the count appended (< n only on allocation failure). */
size_t gni_chunkq_append(gni_chunkq *q, const uint8_t *p, size_t n, size_t hint)
{
    size_t done = 0;
    while (done < n) {
        gni_chunk *c = q->tail;
        if (!c || c->wr == c->cap) {
            size_t cap = GNI_MAX(hint, n - done);
            cap = GNI_MIN(GNI_MAX(cap, (size_t)GNI_CHUNKQ_MIN), (size_t)GNI_CHUNKQ_MAX);
            c = gn_malloc(sizeof(*c) + cap);
            if (!c)
                break;
            c->next = NULL;
            c->rd = c->wr = 0;
            c->cap = cap;
            if (q->tail)
                q->tail->next = c;
            else
                q->head = c;
            q->tail = c;
        }
        size_t k = GNI_MIN(n - done, c->cap - c->wr);
        memcpy(c->data + c->wr, p + done, k);
        c->wr += k;
        q->len += k;
        done += k;
        hint = hint > k ? hint - k : 0;
    }
    return done;
}

bool gni_chunkq_peek(const gni_chunkq *q, gn_slice *out)
{
    const gni_chunk *c = q->head;
    if (!c || c->rd == c->wr)
        return false;
    out->base = c->data + c->rd;
    out->len = c->wr - c->rd;
    return true;
}

void gni_chunkq_skip(gni_chunkq *q, size_t n)
{
    while (n > 0 && q->head) {
        gni_chunk *c = q->head;
        size_t k = GNI_MIN(n, c->wr - c->rd);
        c->rd += k;
        q->len -= k;
        n -= k;
        if (c->rd == c->wr) {
            q->head = c->next;
            if (!q->head)
                q->tail = NULL;
            gn_free(c);
        }
    }
}

size_t gni_chunkq_read(gni_chunkq *q, uint8_t *out, size_t n)
{
    size_t done = 0;
    gn_slice s;
    while (done < n && gni_chunkq_peek(q, &s)) {
        size_t k = GNI_MIN(n - done, s.len);
        memcpy(out + done, s.base, k);
        gni_chunkq_skip(q, k);
        done += k;
    }
    return done;
}

void gni_chunkq_clear(gni_chunkq *q)
{
    gni_chunk *c = q->head;
    while (c) {
        gni_chunk *n = c->next;
        gn_free(c);
        c = n;
    }
    q->head = q->tail = NULL;
    q->len = 0;
}
