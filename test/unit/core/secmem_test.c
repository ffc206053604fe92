/*
 * Pooled secure memory (core/secmem.c): distinct writable slots, wiping on
 * free, the sodium_malloc() fallback above the largest size class, slab
 * release, and concurrent use from several threads.
 */
#include "gni.h"

#include "gn_test.h"

#include <sodium.h>
#include <stdint.h>
#include <string.h>
#include <uv.h>

static int all_zero(const uint8_t *p, size_t len)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < len; i++) {
        acc |= p[i];
    }
    return acc == 0;
}

/* Allocations are distinct, zeroed, 16-byte aligned and writable end to end. */
GN_TEST(distinct_writable)
{
    enum { N = 300 };
    static uint8_t *p[N];
    static const size_t sizes[] = {1, 32, 48, 64, 100, 240, 600, 1008};
    for (size_t i = 0; i < N; i++) {
        size_t len = sizes[i % GNI_ARRAY_LEN(sizes)];
        p[i] = gni_secmem_alloc(len);
        CHECK(p[i] != NULL);
        CHECK_EQ((uintptr_t)p[i] % 16, 0);
        CHECK(all_zero(p[i], len));
        memset(p[i], (int)(i & 0xff) | 1, len);
    }
    /* no overlap: every block still holds its own pattern */
    for (size_t i = 0; i < N; i++) {
        size_t len = sizes[i % GNI_ARRAY_LEN(sizes)];
        for (size_t j = 0; j < len; j++) {
            if (p[i][j] != (uint8_t)((i & 0xff) | 1)) {
                CHECK_EQ(p[i][j], (uint8_t)((i & 0xff) | 1));
                break;
            }
        }
        for (size_t k = i + 1; k < N; k++) {
            CHECK(p[i] != p[k]);
        }
    }
    gni_secmem_stats st;
    gni_secmem_get_stats(&st);
    CHECK_EQ(st.slots_in_use, N);
    CHECK_EQ(st.big_in_use, 0);
    for (size_t i = 0; i < N; i++) {
        gni_secmem_free(p[i]);
    }
    gni_secmem_get_stats(&st);
    CHECK_EQ(st.slots_in_use, 0);
    gni_secmem_free(NULL); /* no-op */
}

/* A freed slot comes back (LIFO) wiped: the secret written before is gone. */
GN_TEST(wiped_on_free)
{
    static const size_t sizes[] = {32, 64, 200, 1000};
    for (size_t s = 0; s < GNI_ARRAY_LEN(sizes); s++) {
        uint8_t *a = gni_secmem_alloc(sizes[s]);
        CHECK(a != NULL);
        memset(a, 0xA5, sizes[s]);
        gni_secmem_free(a);
        uint8_t *b = gni_secmem_alloc(sizes[s]);
        CHECK(b == a); /* same slot reused */
        CHECK(all_zero(b, sizes[s]));
        gni_secmem_free(b);
    }
}

/* Above the largest class (1008 bytes) the fallback is sodium_malloc(). */
GN_TEST(fallback_large)
{
    gni_secmem_stats st;
    uint8_t *big = gni_secmem_alloc(1009);
    CHECK(big != NULL);
    CHECK_EQ((uintptr_t)big % 16, 0);
    CHECK(all_zero(big, 1009));
    memset(big, 0x5a, 1009);
    uint8_t *huge = gni_secmem_alloc(100000);
    CHECK(huge != NULL);
    CHECK(all_zero(huge, 100000));
    memset(huge, 0x11, 100000);
    uint8_t *small = gni_secmem_alloc(1008);
    CHECK(small != NULL);
    gni_secmem_get_stats(&st);
    CHECK_EQ(st.big_in_use, 2);
    CHECK_EQ(st.slots_in_use, 1);
    CHECK_EQ(big[1008], 0x5a);
    gni_secmem_free(big);
    gni_secmem_free(huge);
    gni_secmem_free(small);
    gni_secmem_get_stats(&st);
    CHECK_EQ(st.big_in_use, 0);
    CHECK_EQ(st.slots_in_use, 0);
}

/* Empty slabs are released, one spare per class is kept; trim drops it. */
GN_TEST(slabs_released)
{
    enum { N = 2000 }; /* 64-byte class: ~250 slots a slab, so several slabs */
    static void *p[N];
    gni_secmem_stats st0, st;
    gni_secmem_trim();
    gni_secmem_get_stats(&st0);
    CHECK_EQ(st0.slabs, 0);
    for (size_t i = 0; i < N; i++) {
        p[i] = gni_secmem_alloc(32);
        CHECK(p[i] != NULL);
    }
    gni_secmem_get_stats(&st);
    CHECK(st.slabs >= 7);
    CHECK(st.slabs <= 9);
    for (size_t i = 0; i < N; i++) {
        gni_secmem_free(p[i]);
    }
    gni_secmem_get_stats(&st);
    CHECK_EQ(st.slabs, 1); /* the spare */
    CHECK_EQ(st.slots_in_use, 0);
    /* churn on one slot does not create slabs */
    for (int i = 0; i < 1000; i++) {
        gni_secmem_free(gni_secmem_alloc(32));
    }
    gni_secmem_get_stats(&st);
    CHECK_EQ(st.slabs, 1);
    gni_secmem_trim();
    gni_secmem_get_stats(&st);
    CHECK_EQ(st.slabs, 0);
}

/* 4 threads x 100 000 operations, each keeping up to 64 live blocks. */
enum { THREADS = 4, OPS = 100000, LIVE = 64 };

typedef struct worker {
    uv_thread_t tid;
    unsigned id;
    unsigned errors;
} worker;

static void worker_run(void *arg)
{
    worker *w = arg;
    uint8_t *live[LIVE] = {0};
    size_t lens[LIVE] = {0};
    uint32_t x = 0x9e3779b9u * (w->id + 1);
    uint8_t tag = (uint8_t)(0x10 + w->id);
    for (int op = 0; op < OPS; op++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        size_t i = x % LIVE;
        if (live[i]) {
            /* the block still holds this thread's tag: nobody else wrote it */
            if (live[i][0] != tag || live[i][lens[i] - 1] != tag)
                w->errors++;
            gni_secmem_free(live[i]);
            live[i] = NULL;
        } else {
            static const size_t sizes[] = {16, 32, 64, 96, 200, 700, 1500};
            size_t len = sizes[(x >> 8) % GNI_ARRAY_LEN(sizes)];
            live[i] = gni_secmem_alloc(len);
            if (!live[i]) {
                w->errors++;
                continue;
            }
            if (live[i][0] != 0 || live[i][len - 1] != 0)
                w->errors++;
            memset(live[i], tag, len);
            lens[i] = len;
        }
    }
    for (size_t i = 0; i < LIVE; i++) {
        gni_secmem_free(live[i]);
    }
}

GN_TEST(threads)
{
    worker w[THREADS];
    for (unsigned i = 0; i < THREADS; i++) {
        w[i].id = i;
        w[i].errors = 0;
        CHECK_EQ(uv_thread_create(&w[i].tid, worker_run, &w[i]), 0);
    }
    for (unsigned i = 0; i < THREADS; i++) {
        CHECK_EQ(uv_thread_join(&w[i].tid), 0);
        CHECK_EQ(w[i].errors, 0);
    }
    gni_secmem_stats st;
    gni_secmem_get_stats(&st);
    CHECK_EQ(st.slots_in_use, 0);
    CHECK_EQ(st.big_in_use, 0);
    CHECK(st.slabs <= 4); /* at most one spare per class */
    gni_secmem_trim();
    gni_secmem_get_stats(&st);
    CHECK_EQ(st.slabs, 0);
}

GN_TEST_MAIN(GN_T(distinct_writable), GN_T(wiped_on_free), GN_T(fallback_large),
             GN_T(slabs_released), GN_T(threads))
