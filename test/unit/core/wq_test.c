/*
 * Unit tests for the write-request queue of stream implementations
 * (core/wq.c): completion exactly once with the right status, the byte
 * bound and on_writable low-water, the zero-copy cursor, cancel on close,
 * request recycling.
 */
#include "gni_wq.h"

#include "gn_test.h"
#include "golemnet/err.h"

#include <stdlib.h>
#include <string.h>

/* A stream to complete on; its ops are never called. */
static int stub_write(gn_stream *s, const gn_slice *iov, size_t n, gn_write_cb cb, void *arg)
{
    (void)s, (void)iov, (void)n, (void)cb, (void)arg;
    return GN_ENOTSUP;
}
static void stub_close(gn_stream *s) { (void)s; }
static const gn_stream_ops stub_ops = {
    .abi = GN_STREAM_ABI, .name = "stub", .write = stub_write, .close = stub_close};

/* Completion log: which write completed, with what, in which order. */
typedef struct done_log {
    int ids[16];
    int status[16];
    int n;
} done_log;

typedef struct wctx {
    done_log *log;
    int id;
    gni_wq *q;          /* for completions that push again */
    bool push_again;
} wctx;

static void on_done(void *arg, int status)
{
    wctx *c = arg;
    if (c->log->n < 16) {
        c->log->ids[c->log->n] = c->id;
        c->log->status[c->log->n] = status;
    }
    c->log->n++;
    if (c->push_again) {
        static const uint8_t b[3] = {1, 2, 3};
        gn_slice sl = gn_slice_of(b, sizeof b);
        gni_wreq *w;
        c->push_again = false;
        CHECK_OK(gni_wq_push(c->q, &sl, 1, 3, NULL, NULL, true, 0, &w));
    }
}

static void init_stream(gn_stream *s)
{
    CHECK_OK(gn_stream_init(s, &stub_ops, NULL, NULL));
}

GN_TEST(wq_complete_exactly_once_in_order)
{
    gn_stream s;
    init_stream(&s);
    gni_wq q;
    gni_wq_init(&q, &s, 0, 0);
    done_log log = {0};
    wctx c[3] = {{&log, 1, &q, false}, {&log, 2, &q, false}, {&log, 3, &q, false}};
    uint8_t a[10] = {0}, b[20] = {0};
    gn_slice iov[2] = {gn_slice_of(a, sizeof a), gn_slice_of(b, sizeof b)};
    gni_wreq *w[3];
    size_t len = 0;
    for (int i = 0; i < 3; i++) {
        CHECK_OK(gni_wq_admit(&q, iov, 2, &len));
        CHECK_EQ(len, 30);
        CHECK_OK(gni_wq_push(&q, iov, 2, len, on_done, &c[i], true, 0, &w[i]));
    }
    CHECK(!gni_wq_empty(&q));
    CHECK_EQ(gni_wq_bytes(&q), 90);
    CHECK(gni_wq_head(&q) == w[0]);
    /* completing out of order is allowed (a zero-length write, say) */
    gni_wq_complete(&q, w[1], 0);
    CHECK_EQ(log.n, 1);
    CHECK_EQ(log.ids[0], 2);
    CHECK_EQ(gni_wq_bytes(&q), 60);
    gni_wq_set_done(w[0], GN_ESTREAMRESET);
    gni_wq_cancel_all(&q, GN_ECANCELED);
    CHECK_EQ(log.n, 3);
    CHECK_EQ(log.ids[1], 1);
    CHECK_EQ(log.status[1], GN_ESTREAMRESET); /* its decided status */
    CHECK_EQ(log.ids[2], 3);
    CHECK_EQ(log.status[2], GN_ECANCELED);
    CHECK(gni_wq_empty(&q));
    CHECK_EQ(gni_wq_bytes(&q), 0);
    gni_wq_cancel_all(&q, GN_ECANCELED); /* nothing left: no completion */
    CHECK_EQ(log.n, 3);
    gn_stream_metrics m;
    gn_stream_get_metrics(&s, &m);
    CHECK_EQ(m.writes_out, 1);
    CHECK_EQ(m.bytes_out, 30);
    gni_wq_fini(&q);
}

GN_TEST(wq_cursor_walks_borrowed_slices)
{
    gn_stream s;
    init_stream(&s);
    gni_wq q;
    gni_wq_init(&q, &s, 0, 0);
    const uint8_t a[3] = {1, 2, 3}, b[4] = {4, 5, 6, 7};
    gn_slice iov[4] = {gn_slice_of(a, 0), gn_slice_of(a, 3), gn_slice_of(b, 0),
                       gn_slice_of(b, 4)};
    gni_wreq *w;
    CHECK_OK(gni_wq_push(&q, iov, 4, 7, NULL, NULL, true, 0, &w));
    gn_slice sl;
    CHECK(gni_wreq_peek(w, &sl));
    CHECK(sl.base == a); /* zero copy: the consumer's bytes, empty slice skipped */
    CHECK_EQ(sl.len, 3);
    gni_wq_advance(&q, w, 2);
    CHECK(gni_wreq_peek(w, &sl));
    CHECK(sl.base == a + 2);
    CHECK_EQ(sl.len, 1);
    CHECK_EQ(gni_wq_bytes(&q), 5);
    gni_wq_advance(&q, w, 3); /* across the slice boundary and the empty slice */
    CHECK(gni_wreq_peek(w, &sl));
    CHECK(sl.base == b + 2);
    CHECK_EQ(sl.len, 2);
    gni_wq_advance(&q, w, 2);
    CHECK(!gni_wreq_peek(w, &sl));
    CHECK_EQ(w->left, 0);
    CHECK_EQ(gni_wq_bytes(&q), 0);
    gni_wq_complete(&q, w, 0);
    /* a request without kept slices only accounts bytes */
    CHECK_OK(gni_wq_push(&q, iov, 4, 7, NULL, NULL, false, 0, &w));
    CHECK(!gni_wreq_peek(w, &sl));
    CHECK_EQ(gni_wq_bytes(&q), 7);
    gni_wq_drop(&q, w); /* refused after the push: no completion */
    CHECK(gni_wq_empty(&q));
    CHECK_EQ(gni_wq_bytes(&q), 0);
    gni_wq_fini(&q);
}

GN_TEST(wq_bound_and_writable_low_water)
{
    gn_stream s;
    init_stream(&s);
    gni_wq q;
    gni_wq_init(&q, &s, 100, 0);
    uint8_t buf[80] = {0};
    gn_slice sl = gn_slice_of(buf, sizeof buf);
    size_t len = 0;
    gni_wreq *w1, *w2;
    CHECK(!gni_wq_writable_due(&q));
    /* an empty queue takes any write, even above the bound */
    gn_slice big = gn_slice_of(buf, 80);
    CHECK_OK(gni_wq_admit(&q, &big, 1, &len));
    CHECK_OK(gni_wq_push(&q, &big, 1, len, NULL, NULL, true, 0, &w1));
    gn_slice small = gn_slice_of(buf, 20);
    CHECK_OK(gni_wq_admit(&q, &small, 1, &len)); /* 80 + 20 <= 100 */
    CHECK_OK(gni_wq_push(&q, &small, 1, len, NULL, NULL, true, 0, &w2));
    CHECK_EQ(gni_wq_admit(&q, &small, 1, &len), GN_EAGAIN);
    CHECK(q.want_writable);
    CHECK(!gni_wq_writable_due(&q)); /* 100 queued > 50 */
    gni_wq_advance(&q, w1, 40);
    CHECK(!gni_wq_writable_due(&q)); /* 60 > 50 */
    gni_wq_advance(&q, w1, 10);
    CHECK(gni_wq_writable_due(&q)); /* 50: at half the bound */
    CHECK(!gni_wq_writable_due(&q)); /* once */
    /* overflowing sums are refused */
    gn_slice huge[2] = {gn_slice_of(buf, SIZE_MAX), gn_slice_of(buf, 2)};
    CHECK_EQ(gni_wq_admit(&q, huge, 2, &len), GN_EINVAL);
    /* the implementation's own rule */
    CHECK_EQ(gni_wq_refuse(&q), GN_EAGAIN);
    gni_wq_cancel_all(&q, GN_ECANCELED);
    CHECK(!q.want_writable); /* a cancelled queue owes no on_writable */
    CHECK(!gni_wq_writable_due(&q));
    (void)sl;
    gni_wq_fini(&q);
}

GN_TEST(wq_completion_may_push_again)
{
    gn_stream s;
    init_stream(&s);
    gni_wq q;
    gni_wq_init(&q, &s, 0, 0);
    done_log log = {0};
    wctx c = {&log, 1, &q, true};
    gni_wreq *w;
    CHECK_OK(gni_wq_push(&q, NULL, 0, 0, on_done, &c, true, 0, &w));
    gni_wq_cancel_all(&q, GN_ECANCELED);
    CHECK_EQ(log.n, 1);
    CHECK_EQ(log.status[0], GN_ECANCELED);
    /* the write pushed from the completion is queued, not cancelled */
    CHECK(!gni_wq_empty(&q));
    CHECK_EQ(gni_wq_bytes(&q), 3);
    gni_wq_cancel_all(&q, GN_ECANCELED);
    CHECK(gni_wq_empty(&q));
    gni_wq_fini(&q);
}

GN_TEST(wq_extra_storage_and_recycling)
{
    gn_stream s;
    init_stream(&s);
    gni_wq q;
    gni_wq_init(&q, &s, 0, 4096);
    uint8_t b[8] = {0};
    gn_slice sl = gn_slice_of(b, sizeof b);
    gni_wreq *w, *w2;
    CHECK_EQ(q.mem, 0);
    CHECK_OK(gni_wq_push(&q, &sl, 1, 8, NULL, NULL, true, 1000, &w));
    const size_t mem1 = sizeof *w + w->cap; /* what it allocated, header included */
    CHECK(w->cap >= 1000 + sizeof(gn_slice));
    CHECK_EQ(q.mem, mem1);
    uint8_t *x = gni_wreq_extra(w);
    CHECK(((uintptr_t)x % sizeof(max_align_t)) == 0);
    memset(x, 0xab, 1000); /* the storage is usable (ASan checks the bounds) */
    CHECK(gni_wreq_of_extra(x) == w);
    CHECK(gni_wreq_peek(w, &sl)); /* the slices after the extra are intact */
    CHECK(sl.base == b);
    gni_wq_complete(&q, w, 0);
    CHECK(q.spare == w); /* kept for the next write */
    CHECK_EQ(q.mem, mem1);  /* and still counted */
    CHECK_OK(gni_wq_push(&q, &sl, 1, 8, NULL, NULL, true, 500, &w2));
    CHECK(w2 == w); /* reused: large enough */
    CHECK(q.spare == NULL);
    gni_wq_complete(&q, w2, 0);
    CHECK_OK(gni_wq_push(&q, &sl, 1, 8, NULL, NULL, true, 5000, &w));
    CHECK(q.spare != NULL); /* too small for 5000: a new one, the spare stays */
    CHECK_EQ(q.mem, mem1 + sizeof *w + w->cap);
    gni_wq_complete(&q, w, 0); /* above spare_max: freed */
    CHECK(q.spare != NULL && q.spare->cap < 5000);
    CHECK_EQ(q.mem, mem1);
    gni_wq_stop_recycling(&q);
    CHECK(q.spare == NULL);
    CHECK_EQ(q.mem, 0);
    CHECK_OK(gni_wq_push(&q, &sl, 1, 8, NULL, NULL, true, 10, &w));
    gni_wq_complete(&q, w, 0);
    CHECK(q.spare == NULL);
    /* sizes that overflow are refused */
    CHECK_EQ(gni_wq_push(&q, &sl, 1, 8, NULL, NULL, true, SIZE_MAX - 8, &w), GN_EINVAL);
    CHECK_EQ(gni_wq_push(&q, &sl, SIZE_MAX / 2, 8, NULL, NULL, true, 0, &w), GN_EINVAL);
    CHECK(gni_wq_empty(&q));
    CHECK_EQ(q.mem, 0);
    gni_wq_fini(&q);
}

static void *fail_malloc(void *ud, size_t len)
{
    (void)ud, (void)len;
    return NULL;
}
static void *pass_realloc(void *ud, void *p, size_t len)
{
    (void)ud;
    return realloc(p, len);
}
static void pass_free(void *ud, void *p)
{
    (void)ud;
    free(p);
}

GN_TEST(wq_push_out_of_memory_takes_nothing)
{
    static const gn_allocator failing = {fail_malloc, pass_realloc, pass_free, NULL};
    gn_stream s;
    init_stream(&s);
    gni_wq q;
    gni_wq_init(&q, &s, 100, 0);
    uint8_t b[8] = {0};
    gn_slice sl = gn_slice_of(b, sizeof b);
    gni_wreq *w = NULL;
    gn_set_allocator(&failing);
    int rc = gni_wq_push(&q, &sl, 1, 8, NULL, NULL, true, 0, &w);
    gn_set_allocator(NULL);
    CHECK_EQ(rc, GN_ENOMEM);
    CHECK(w == NULL); /* untouched on failure */
    CHECK(gni_wq_empty(&q));
    CHECK_EQ(gni_wq_bytes(&q), 0);
    gni_wq_fini(&q);
}

GN_TEST(wq_gather_copies_small_slices_without_moving)
{
    gn_stream s;
    init_stream(&s);
    gni_wq q;
    gni_wq_init(&q, &s, 0, 0);
    const uint8_t a[3] = {1, 2, 3}, b[2] = {4, 5}, big[10] = {9, 9, 9, 9, 9, 9, 9, 9, 9, 9};
    gn_slice iov[5] = {gn_slice_of(a, 3), gn_slice_of(b, 0), gn_slice_of(b, 2),
                       gn_slice_of(big, 10), gn_slice_of(a, 3)};
    gni_wreq *w;
    CHECK_OK(gni_wq_push(&q, iov, 5, 18, NULL, NULL, true, 0, &w));
    uint8_t buf[8];
    /* from an offset, across the empty slice, stopping before the large one */
    gni_wq_advance(&q, w, 1);
    CHECK_EQ(gni_wreq_gather(w, buf, sizeof buf, 4), 4);
    CHECK(memcmp(buf, "\x02\x03\x04\x05", 4) == 0);
    CHECK_EQ(w->left, 17); /* nothing taken */
    gn_slice sl;
    CHECK(gni_wreq_peek(w, &sl));
    CHECK(sl.base == a + 1);
    gni_wq_advance(&q, w, 4);
    /* the next slice is larger than @small: nothing to gather */
    CHECK_EQ(gni_wreq_gather(w, buf, sizeof buf, 4), 0);
    /* @cap bounds it: the large slice does not fit in 8 bytes */
    CHECK_EQ(gni_wreq_gather(w, buf, sizeof buf, 64), 0);
    gni_wq_advance(&q, w, 10);
    CHECK_EQ(gni_wreq_gather(w, buf, sizeof buf, 64), 3);
    gni_wq_advance(&q, w, 3);
    CHECK_EQ(gni_wreq_gather(w, buf, sizeof buf, 64), 0); /* all taken */
    CHECK_EQ(w->left, 0);
    gni_wq_complete(&q, w, 0);
    gni_wq_fini(&q);
}

GN_TEST_MAIN(GN_T(wq_complete_exactly_once_in_order), GN_T(wq_cursor_walks_borrowed_slices),
             GN_T(wq_bound_and_writable_low_water), GN_T(wq_completion_may_push_again),
             GN_T(wq_extra_storage_and_recycling),
             GN_T(wq_push_out_of_memory_takes_nothing),
             GN_T(wq_gather_copies_small_slices_without_moving))
