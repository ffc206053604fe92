/*
 * Bounded chunk queues (gn_bufq) and refcounted immutable buffers (gn_rcbuf).
 *
 * gn_bufq invariants:
 *   - the chunk list head..tail holds nchunks chunks, each with r < w <= cap, except
 *     that no chunk is ever left empty in the list (an emptied head chunk goes
 *     to the spare pool or is freed at once), so peek never sees 0 bytes;
 *   - len is the sum of (w - r) over the list;
 *   - nchunks <= max_chunks, nspare <= max_spare;
 *   - every chunk made for the queue has chunk_min <= cap <= chunk_size.
 * Not thread-safe (see buf.h).
 */
#include "golemnet/buf.h"

#include "gni.h"

#include <limits.h>
#include <stdatomic.h>
#include <string.h>

struct gn_bufq_chunk {
    gn_bufq_chunk *next;
    size_t r; /* read offset */
    size_t w; /* write offset */
    size_t cap; /* bytes of data[] */
    uint8_t data[];
};

int gn_bufq_init_adaptive(gn_bufq *q, size_t chunk_min, size_t chunk_max, size_t max_chunks,
                          size_t max_spare)
{
    if (q == NULL || chunk_min == 0 || chunk_min > chunk_max || chunk_max > UINT32_MAX ||
        max_chunks == 0 || max_spare > UINT32_MAX) {
        return GN_EINVAL;
    }
    memset(q, 0, sizeof(*q));
    q->chunk_min = (uint32_t)chunk_min;
    q->chunk_size = (uint32_t)chunk_max;
    q->max_chunks = max_chunks;
    q->max_spare = (uint32_t)max_spare;
    return 0;
}

int gn_bufq_init(gn_bufq *q, size_t chunk_size, size_t max_chunks, size_t max_spare)
{
    return gn_bufq_init_adaptive(q, chunk_size, chunk_size, max_chunks, max_spare);
}

static void bufq_free_list(gn_bufq_chunk *c)
{
    while (c != NULL) {
        gn_bufq_chunk *next = c->next;
        gn_free(c);
        c = next;
    }
}

void gn_bufq_fini(gn_bufq *q)
{
    if (q == NULL) {
        return;
    }
    bufq_free_list(q->head);
    bufq_free_list(q->spare);
    q->head = q->tail = q->spare = NULL;
    q->nchunks = q->nspare = q->len = 0;
}

/* A fresh chunk from the spare pool or the allocator, of @cap bytes when
 * allocated; NULL on ENOMEM. */
static gn_bufq_chunk *bufq_get_chunk(gn_bufq *q, size_t cap)
{
    gn_bufq_chunk *c = q->spare;
    if (c != NULL) {
        q->spare = c->next;
        q->nspare--;
    } else {
        c = gn_malloc(sizeof(*c) + cap);
        if (c == NULL) {
            return NULL;
        }
        c->cap = cap;
    }
    c->next = NULL;
    c->r = c->w = 0;
    return c;
}

/* Returns an emptied chunk to the spare pool, or frees it if the pool is full. */
static void bufq_put_chunk(gn_bufq *q, gn_bufq_chunk *c)
{
    if (q->nspare < q->max_spare) {
        c->next = q->spare;
        q->spare = c;
        q->nspare++;
    } else {
        gn_free(c);
    }
}

long gn_bufq_write_hint(gn_bufq *q, const uint8_t *data, size_t len, size_t hint)
{
    size_t taken = 0;
    bool nomem = false;

    if (len > (size_t)LONG_MAX) {
        len = (size_t)LONG_MAX;
    }
    while (taken < len) {
        gn_bufq_chunk *t = q->tail;
        if (t == NULL || t->w == t->cap) {
            if (q->nchunks >= q->max_chunks) {
                break;
            }
            /* Sized for what is expected, within chunk_min..chunk_size. */
            size_t want = GNI_MAX(hint, len - taken);
            want = GNI_MIN(GNI_MAX(want, (size_t)q->chunk_min), (size_t)q->chunk_size);
            gn_bufq_chunk *c = bufq_get_chunk(q, want);
            if (c == NULL) {
                nomem = true;
                break;
            }
            if (t == NULL) {
                q->head = c;
            } else {
                t->next = c;
            }
            q->tail = t = c;
            q->nchunks++;
        }
        size_t n = GNI_MIN(t->cap - t->w, len - taken);
        memcpy(t->data + t->w, data + taken, n);
        t->w += n;
        taken += n;
        q->len += n;
        hint = hint > n ? hint - n : 0;
    }
    if (taken == 0 && len > 0) {
        return nomem ? GN_ENOMEM : GN_EAGAIN;
    }
    return (long)taken;
}

long gn_bufq_write(gn_bufq *q, const uint8_t *data, size_t len)
{
    return gn_bufq_write_hint(q, data, len, 0);
}

bool gn_bufq_peek(const gn_bufq *q, const uint8_t **data, size_t *len)
{
    const gn_bufq_chunk *h = q->head;
    if (h == NULL) {
        return false;
    }
    *data = h->data + h->r;
    *len = h->w - h->r;
    return true;
}

void gn_bufq_skip(gn_bufq *q, size_t len)
{
    while (len > 0 && q->head != NULL) {
        gn_bufq_chunk *h = q->head;
        size_t n = GNI_MIN(h->w - h->r, len);
        h->r += n;
        q->len -= n;
        len -= n;
        if (h->r == h->w) {
            q->head = h->next;
            if (q->head == NULL) {
                q->tail = NULL;
            }
            q->nchunks--;
            bufq_put_chunk(q, h);
        }
    }
}

size_t gn_bufq_read(gn_bufq *q, uint8_t *out, size_t len)
{
    size_t done = 0;
    const uint8_t *p;
    size_t avail;

    while (done < len && gn_bufq_peek(q, &p, &avail)) {
        size_t n = GNI_MIN(avail, len - done);
        memcpy(out + done, p, n);
        gn_bufq_skip(q, n);
        done += n;
    }
    return done;
}

size_t gn_bufq_len(const gn_bufq *q)
{
    return q->len;
}

size_t gn_bufq_space(const gn_bufq *q)
{
    size_t space = 0;
    if (q->tail != NULL) {
        space = q->tail->cap - q->tail->w;
    }
    size_t free_chunks = q->max_chunks - q->nchunks;
    if (free_chunks > (SIZE_MAX - space) / q->chunk_size) {
        return SIZE_MAX;
    }
    return space + free_chunks * q->chunk_size;
}

bool gn_bufq_is_full(const gn_bufq *q)
{
    return gn_bufq_space(q) == 0;
}

/* ---- gn_rcbuf ---- */

struct gn_rcbuf {
    atomic_size_t refcnt;
    size_t len;
    uint8_t data[];
};

gn_rcbuf *gn_rcbuf_new(const uint8_t *data, size_t len)
{
    if (len > SIZE_MAX - sizeof(gn_rcbuf)) {
        return NULL;
    }
    gn_rcbuf *b = gn_malloc(sizeof(*b) + len);
    if (b == NULL) {
        return NULL;
    }
    atomic_init(&b->refcnt, 1);
    b->len = len;
    if (len > 0) {
        if (data != NULL) {
            memcpy(b->data, data, len);
        } else {
            memset(b->data, 0, len);
        }
    }
    return b;
}

gn_rcbuf *gni_rcbuf_alloc(size_t len)
{
    if (len > SIZE_MAX - sizeof(gn_rcbuf)) {
        return NULL;
    }
    gn_rcbuf *b = gn_malloc(sizeof(*b) + len);
    if (b) {
        atomic_init(&b->refcnt, 1);
        b->len = len;
    }
    return b;
}

int gni_rcbuf_resize(gn_rcbuf **b, size_t len)
{
    if (atomic_load_explicit(&(*b)->refcnt, memory_order_acquire) != 1) {
        return GN_EINVAL;
    }
    if (len > SIZE_MAX - sizeof(gn_rcbuf)) {
        return GN_ENOMEM;
    }
    gn_rcbuf *nb = gn_realloc(*b, sizeof(gn_rcbuf) + len);
    if (!nb) {
        return GN_ENOMEM;
    }
    nb->len = len;
    *b = nb;
    return 0;
}

gn_rcbuf *gn_rcbuf_hold(gn_rcbuf *b)
{
    /* Relaxed is enough: the caller already holds a reference. */
    atomic_fetch_add_explicit(&b->refcnt, 1, memory_order_relaxed);
    return b;
}

void gn_rcbuf_rele(gn_rcbuf *b)
{
    if (b == NULL) {
        return;
    }
    size_t old = atomic_fetch_sub_explicit(&b->refcnt, 1, memory_order_acq_rel);
    assert(old > 0);
    if (old == 1) {
        gn_free(b);
    }
}

gn_slice gn_rcbuf_slice(const gn_rcbuf *b)
{
    return gn_slice_of(b->data, b->len);
}

uint8_t *gn_rcbuf_data_mut(gn_rcbuf *b)
{
    assert(atomic_load_explicit(&b->refcnt, memory_order_relaxed) == 1);
    return b->data;
}

size_t gn_rcbuf_refcnt(const gn_rcbuf *b)
{
    /* atomic_load takes a pointer to non-const in C11 as some compilers read it. */
    return atomic_load_explicit((atomic_size_t *)&b->refcnt, memory_order_acquire);
}
