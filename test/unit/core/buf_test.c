/* Unit tests for gn_bufq and gn_rcbuf (core/buf.c). */
#include "golemnet/buf.h"
#include "golemnet/err.h"
#include "golemnet/log.h"

#include "gn_test.h"

/* ---- a counting allocator, to observe chunk allocation and spare reuse ---- */

static size_t n_mallocs, n_frees;

static void *count_malloc(void *ud, size_t len)
{
    (void)ud;
    n_mallocs++;
    return malloc(len);
}
static void *count_realloc(void *ud, void *p, size_t len)
{
    (void)ud;
    if (p == NULL)
        n_mallocs++;
    return realloc(p, len);
}
static void count_free(void *ud, void *p)
{
    (void)ud;
    if (p != NULL)
        n_frees++;
    free(p);
}

static void counting_on(void)
{
    static const gn_allocator a = {count_malloc, count_realloc, count_free, NULL};
    n_mallocs = n_frees = 0;
    gn_set_allocator(&a);
}

static void fill_pattern(uint8_t *p, size_t n, uint8_t start)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(start + i);
}

GN_TEST(bufq_init_rejects_zero)
{
    gn_bufq q;
    CHECK_EQ(gn_bufq_init(&q, 0, 4, 1), GN_EINVAL);
    CHECK_EQ(gn_bufq_init(&q, 16, 0, 1), GN_EINVAL);
    CHECK_EQ(gn_bufq_init(&q, 16, 4, 0), 0);
    CHECK_EQ(gn_bufq_len(&q), 0);
    CHECK_EQ(gn_bufq_space(&q), 64);
    CHECK(!gn_bufq_is_full(&q));
    const uint8_t *p;
    size_t n;
    CHECK(!gn_bufq_peek(&q, &p, &n));
    uint8_t out[4];
    CHECK_EQ(gn_bufq_read(&q, out, sizeof out), 0);
    gn_bufq_fini(&q);
}

GN_TEST(bufq_fill_to_bound)
{
    gn_bufq q;
    uint8_t data[100];
    fill_pattern(data, sizeof data, 0);
    CHECK_OK(gn_bufq_init(&q, 8, 4, 2)); /* 32 bytes at most */
    CHECK_EQ(gn_bufq_write(&q, data, 10), 10);
    CHECK_EQ(gn_bufq_len(&q), 10);
    CHECK_EQ(gn_bufq_space(&q), 22);
    /* partial write: only 22 of 30 fit */
    CHECK_EQ(gn_bufq_write(&q, data + 10, 30), 22);
    CHECK_EQ(gn_bufq_len(&q), 32);
    CHECK_EQ(gn_bufq_space(&q), 0);
    CHECK(gn_bufq_is_full(&q));
    CHECK_EQ(gn_bufq_write(&q, data + 32, 1), GN_EAGAIN);
    CHECK_EQ(gn_bufq_write(&q, data, 0), 0);
    CHECK_EQ(q.nchunks, 4);

    uint8_t out[64];
    CHECK_EQ(gn_bufq_read(&q, out, sizeof out), 32);
    CHECK_MEM(out, data, 32);
    CHECK_EQ(gn_bufq_len(&q), 0);
    CHECK_EQ(gn_bufq_space(&q), 32);
    gn_bufq_fini(&q);
}

GN_TEST(bufq_space_after_partial_drain)
{
    gn_bufq q;
    uint8_t data[32], out[32];
    fill_pattern(data, sizeof data, 7);
    CHECK_OK(gn_bufq_init(&q, 8, 2, 0));
    CHECK_EQ(gn_bufq_write(&q, data, 16), 16);
    CHECK_EQ(gn_bufq_write(&q, data, 1), GN_EAGAIN);
    /* reading 3 bytes does not free a chunk: still full */
    CHECK_EQ(gn_bufq_read(&q, out, 3), 3);
    CHECK(gn_bufq_is_full(&q));
    CHECK_EQ(gn_bufq_write(&q, data, 1), GN_EAGAIN);
    /* finishing the head chunk frees it */
    CHECK_EQ(gn_bufq_read(&q, out + 3, 5), 5);
    CHECK_MEM(out, data, 8);
    CHECK_EQ(gn_bufq_space(&q), 8);
    CHECK_EQ(gn_bufq_write(&q, data + 16, 8), 8);
    CHECK_EQ(gn_bufq_read(&q, out, 32), 16);
    CHECK_MEM(out, data + 8, 8);
    CHECK_MEM(out + 8, data + 16, 8);
    gn_bufq_fini(&q);
}

GN_TEST(bufq_peek_skip_across_chunks)
{
    gn_bufq q;
    uint8_t data[20];
    fill_pattern(data, sizeof data, 0x40);
    CHECK_OK(gn_bufq_init(&q, 8, 4, 1));
    CHECK_EQ(gn_bufq_write(&q, data, 20), 20); /* chunks: 8, 8, 4 */

    const uint8_t *p;
    size_t n;
    CHECK(gn_bufq_peek(&q, &p, &n));
    CHECK_EQ(n, 8); /* the first contiguous run only */
    CHECK_MEM(p, data, 8);

    gn_bufq_skip(&q, 5);
    CHECK(gn_bufq_peek(&q, &p, &n));
    CHECK_EQ(n, 3);
    CHECK_MEM(p, data + 5, 3);

    gn_bufq_skip(&q, 6); /* crosses into the second chunk */
    CHECK_EQ(gn_bufq_len(&q), 9);
    CHECK(gn_bufq_peek(&q, &p, &n));
    CHECK_EQ(n, 5);
    CHECK_MEM(p, data + 11, 5);

    gn_bufq_skip(&q, 5); /* exactly to the boundary */
    CHECK(gn_bufq_peek(&q, &p, &n));
    CHECK_EQ(n, 4);
    CHECK_MEM(p, data + 16, 4);

    gn_bufq_skip(&q, 1000); /* clamped */
    CHECK_EQ(gn_bufq_len(&q), 0);
    CHECK(!gn_bufq_peek(&q, &p, &n));
    CHECK_EQ(q.nchunks, 0);
    CHECK_EQ(q.nspare, 1); /* max_spare = 1 */
    gn_bufq_fini(&q);
}

GN_TEST(bufq_spare_reuse)
{
    gn_bufq q;
    uint8_t data[64], out[64];
    fill_pattern(data, sizeof data, 1);
    counting_on();
    CHECK_OK(gn_bufq_init(&q, 16, 4, 2));
    CHECK_EQ(n_mallocs, 0); /* init allocates nothing */
    CHECK_EQ(gn_bufq_write(&q, data, 64), 64);
    CHECK_EQ(n_mallocs, 4);
    CHECK_EQ(gn_bufq_read(&q, out, 64), 64);
    CHECK_MEM(out, data, 64);
    CHECK_EQ(q.nspare, 2);
    CHECK_EQ(n_frees, 2); /* two went to the spare pool, two were freed */

    /* two chunks' worth reuses the two spares: no new allocation */
    CHECK_EQ(gn_bufq_write(&q, data, 32), 32);
    CHECK_EQ(n_mallocs, 4);
    CHECK_EQ(q.nspare, 0);
    /* a third chunk needs the allocator again */
    CHECK_EQ(gn_bufq_write(&q, data + 32, 1), 1);
    CHECK_EQ(n_mallocs, 5);
    CHECK_EQ(gn_bufq_read(&q, out, 64), 33);
    CHECK_MEM(out, data, 33);
    gn_bufq_fini(&q);
    CHECK_EQ(n_frees, n_mallocs);
    gn_set_allocator(NULL);
}

static int fail_after;
static void *failing_malloc(void *ud, size_t len)
{
    (void)ud;
    if (fail_after-- <= 0)
        return NULL;
    return malloc(len);
}

GN_TEST(bufq_enomem)
{
    static const gn_allocator a = {failing_malloc, count_realloc, count_free, NULL};
    gn_bufq q;
    uint8_t data[32];
    fill_pattern(data, sizeof data, 3);
    CHECK_OK(gn_bufq_init(&q, 8, 4, 0));
    fail_after = 1;
    gn_set_allocator(&a);
    /* first chunk allocates, second fails: partial count */
    long r1 = gn_bufq_write(&q, data, 16);
    /* nothing fits and allocation fails: GN_ENOMEM */
    long r2 = gn_bufq_write(&q, data + 8, 8);
    gn_set_allocator(NULL);
    CHECK_EQ(r1, 8);
    CHECK_EQ(r2, GN_ENOMEM);
    CHECK_EQ(gn_bufq_len(&q), 8);
    gn_set_allocator(&a);
    fail_after = 0;
    gn_bufq_fini(&q); /* frees through the hook */
    gn_set_allocator(NULL);
}

GN_TEST(bufq_many_small_writes)
{
    gn_bufq q;
    uint8_t in[1000], out[1000];
    fill_pattern(in, sizeof in, 9);
    CHECK_OK(gn_bufq_init(&q, 7, 200, 3));
    size_t w = 0, r = 0;
    for (int round = 0; round < 2000 && r < sizeof in; round++) {
        size_t step = (size_t)(round % 13) + 1;
        if (w < sizeof in) {
            long n = gn_bufq_write(&q, in + w, (step < sizeof in - w ? step : sizeof in - w));
            CHECK(n > 0);
            w += (size_t)n;
        }
        if (round % 2 == 1)
            r += gn_bufq_read(&q, out + r, (size_t)(round % 5) + 1);
        CHECK_EQ(gn_bufq_len(&q), w - r);
    }
    r += gn_bufq_read(&q, out + r, sizeof out - r);
    CHECK_EQ(r, sizeof in);
    CHECK_MEM(out, in, sizeof in);
    gn_bufq_fini(&q);
}

GN_TEST(rcbuf_refcounts)
{
    static const uint8_t msg[] = "fan-out payload";
    counting_on();
    gn_rcbuf *b = gn_rcbuf_new(msg, sizeof msg);
    CHECK(b != NULL);
    CHECK_EQ(gn_rcbuf_refcnt(b), 1);
    gn_slice s = gn_rcbuf_slice(b);
    CHECK_EQ(s.len, sizeof msg);
    CHECK(s.base != msg); /* a copy */
    CHECK_MEM(s.base, msg, sizeof msg);

    CHECK(gn_rcbuf_hold(b) == b);
    CHECK(gn_rcbuf_hold(b) == b);
    CHECK_EQ(gn_rcbuf_refcnt(b), 3);
    gn_rcbuf_rele(b);
    CHECK_EQ(gn_rcbuf_refcnt(b), 2);
    gn_rcbuf_rele(b);
    CHECK_EQ(gn_rcbuf_refcnt(b), 1);
    CHECK_EQ(n_frees, 0);
    gn_rcbuf_rele(b); /* last reference frees */
    CHECK_EQ(n_frees, 1);
    CHECK_EQ(n_mallocs, 1);
    gn_rcbuf_rele(NULL);

    gn_rcbuf *z = gn_rcbuf_new(NULL, 5);
    CHECK(z != NULL);
    static const uint8_t zero[5] = {0};
    CHECK_MEM(gn_rcbuf_slice(z).base, zero, 5);
    uint8_t *m = gn_rcbuf_data_mut(z);
    m[0] = 0xAA;
    m[4] = 0x55;
    CHECK_EQ(gn_rcbuf_slice(z).base[0], 0xAA);
    CHECK_EQ(gn_rcbuf_slice(z).base[4], 0x55);
    gn_rcbuf_rele(z);

    gn_rcbuf *e = gn_rcbuf_new(NULL, 0);
    CHECK(e != NULL);
    CHECK_EQ(gn_rcbuf_slice(e).len, 0);
    gn_rcbuf_rele(e);
    CHECK_EQ(n_frees, n_mallocs);
    gn_set_allocator(NULL);
}

/* Adaptive chunks: a chunk is sized for max(hint, bytes left in the write),
 * clamped to chunk_min..chunk_max; contiguous peeks show each chunk's size. */
GN_TEST(bufq_adaptive_chunk_sizes)
{
    static uint8_t data[40000], out[40000];
    fill_pattern(data, sizeof data, 5);
    gn_bufq q;
    const uint8_t *p;
    size_t n;
    CHECK_EQ(gn_bufq_init_adaptive(&q, 0, 64, 4, 0), GN_EINVAL);
    CHECK_EQ(gn_bufq_init_adaptive(&q, 128, 64, 4, 0), GN_EINVAL);
    CHECK_EQ(gn_bufq_init_adaptive(&q, 64, 64, 0, 0), GN_EINVAL);
    CHECK_EQ(gn_bufq_init(&q, (size_t)UINT32_MAX + 1, 4, 0), GN_EINVAL);
    CHECK_OK(gn_bufq_init_adaptive(&q, 256, 16384, SIZE_MAX, 0));
    CHECK_EQ(gn_bufq_space(&q), SIZE_MAX);

    /* small writes: minimum-size chunks */
    counting_on();
    CHECK_EQ(gn_bufq_write(&q, data, 100), 100);
    CHECK_EQ(gn_bufq_write(&q, data + 100, 300), 300);
    CHECK_EQ(n_mallocs, 2);
    CHECK(gn_bufq_peek(&q, &p, &n));
    CHECK_EQ(n, 256);
    CHECK_EQ(gn_bufq_read(&q, out, 400), 400);
    CHECK_MEM(out, data, 400);
    CHECK_EQ(n_frees, 2); /* no spare pool */

    /* a frame announced as 5000 bytes arriving in pieces: one chunk */
    n_mallocs = 0;
    CHECK_EQ(gn_bufq_write_hint(&q, data, 10, 5000), 10);
    CHECK_EQ(gn_bufq_write_hint(&q, data + 10, 4990, 4990), 4990);
    CHECK_EQ(n_mallocs, 1);
    CHECK(gn_bufq_peek(&q, &p, &n));
    CHECK_EQ(n, 5000);
    CHECK_EQ(gn_bufq_read(&q, out, sizeof out), 5000);
    CHECK_MEM(out, data, 5000);

    /* bulk: maximum-size chunks */
    n_mallocs = 0;
    CHECK_EQ(gn_bufq_write(&q, data, sizeof data), (long)sizeof data);
    CHECK_EQ(n_mallocs, 3); /* 16384 + 16384 + 7232 */
    CHECK(gn_bufq_peek(&q, &p, &n));
    CHECK_EQ(n, 16384);
    CHECK_EQ(gn_bufq_read(&q, out, sizeof out), sizeof data);
    CHECK_MEM(out, data, sizeof data);
    gn_bufq_fini(&q);
    CHECK_EQ(n_frees, n_mallocs + 3);
    gn_set_allocator(NULL);

    /* fixed-size queues ignore the hint */
    CHECK_OK(gn_bufq_init(&q, 8, 4, 0));
    CHECK_EQ(gn_bufq_write_hint(&q, data, 3, 1000), 3);
    CHECK_EQ(gn_bufq_space(&q), 29);
    CHECK_EQ(gn_bufq_write_hint(&q, data + 3, 100, 1000), 29); /* bound: 4 chunks of 8 */
    CHECK_EQ(gn_bufq_write_hint(&q, data, 1, 0), GN_EAGAIN);
    CHECK(gn_bufq_is_full(&q));
    gn_bufq_fini(&q);
}

GN_TEST_MAIN(GN_T(bufq_init_rejects_zero), GN_T(bufq_fill_to_bound),
             GN_T(bufq_space_after_partial_drain), GN_T(bufq_peek_skip_across_chunks),
             GN_T(bufq_spare_reuse), GN_T(bufq_enomem), GN_T(bufq_many_small_writes),
             GN_T(bufq_adaptive_chunk_sizes),
             GN_T(rcbuf_refcounts))
