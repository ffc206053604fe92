/*
 * A counting allocator for allocation-failure tests (test-only): the
 * fa_fail_at-th allocation (malloc or realloc, counted from 0 since
 * fa_reset()) fails; fa_live counts blocks still allocated, so a test can
 * check that a failed operation left nothing behind.
 *
 *   for (size_t k = 0; ...; k++) {
 *       fa_reset(k);
 *       gn_set_allocator(&fa_allocator);
 *       int rc = scenario();
 *       gn_set_allocator(NULL);
 *       CHECK_EQ(fa_live, 0);
 *   }
 */
#ifndef GN_FAILALLOC_H
#define GN_FAILALLOC_H

#include "golemnet/err.h"
#include "golemnet/log.h"

#include "gn_test.h"

#include <stdlib.h>

static size_t fa_count, fa_fail_at;
static long fa_live;

static void *fa_malloc(void *ud, size_t len)
{
    (void)ud;
    if (fa_count++ == fa_fail_at) {
        return NULL;
    }
    void *p = malloc(len);
    if (p) {
        fa_live++;
    }
    return p;
}

static void *fa_realloc(void *ud, void *ptr, size_t len)
{
    (void)ud;
    if (fa_count++ == fa_fail_at) {
        return NULL;
    }
    void *p = realloc(ptr, len);
    if (p && !ptr) {
        fa_live++;
    }
    return p;
}

static void fa_free(void *ud, void *ptr)
{
    (void)ud;
    if (ptr) {
        fa_live--;
    }
    free(ptr);
}

static const gn_allocator fa_allocator = {fa_malloc, fa_realloc, fa_free, NULL};

/* Makes the @fail_at-th allocation from now fail (SIZE_MAX: none). */
static inline void fa_reset(size_t fail_at)
{
    fa_count = 0;
    fa_fail_at = fail_at;
    fa_live = 0;
}

/*
 * Runs @scenario with the k-th allocation failing, k = 0, 1, ... (at most
 * @max_k runs) until a run needs no more than k allocations. Each run must
 * leave nothing allocated and return GN_ENOMEM (an allocation failed) or 0
 * (the last run). Returns the number of runs that failed; CHECKs the rest.
 */
static inline size_t fa_every_k(int (*scenario)(void), size_t max_k)
{
    bool completed = false;
    size_t failures = 0;
    for (size_t k = 0; k < max_k && !completed; k++) {
        gn_set_allocator(&fa_allocator);
        fa_reset(k);
        int err = scenario();
        gn_set_allocator(NULL);
        CHECK_EQ(fa_live, 0);
        if (fa_count <= k) {
            CHECK_EQ(err, 0);
            completed = true;
        } else {
            CHECK_EQ(err, GN_ENOMEM);
            failures++;
        }
    }
    CHECK(completed);
    return failures;
}

#endif /* GN_FAILALLOC_H */
