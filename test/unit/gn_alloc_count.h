/*
 * gn_alloc_count.h - live heap bytes through golemnet's allocator hooks
 * (gn_set_allocator), for tests that bound a footprint. Sizes are
 * gts_malloc_usable_size(), so memory allocated before the hooks were
 * installed frees correctly (gn_test_msize.h: glibc, macOS, Windows).
 */
#ifndef GN_ALLOC_COUNT_H
#define GN_ALLOC_COUNT_H

#include "golemnet/log.h" /* gn_allocator */

#include "gn_test_msize.h" /* gts_malloc_usable_size */
#include <stdlib.h>

/* Live bytes allocated through the hooks since they were installed. */
static long long g_live;

static void *cnt_malloc(void *ud, size_t len)
{
    (void)ud;
    void *p = malloc(len);
    g_live += p ? (long long)gts_malloc_usable_size(p) : 0;
    return p;
}

static void *cnt_realloc(void *ud, void *ptr, size_t len)
{
    (void)ud;
    long long old = ptr ? (long long)gts_malloc_usable_size(ptr) : 0;
    void *p = realloc(ptr, len);
    if (p) {
        g_live += (long long)gts_malloc_usable_size(p) - old;
    }
    return p;
}

static void cnt_free(void *ud, void *ptr)
{
    (void)ud;
    g_live -= ptr ? (long long)gts_malloc_usable_size(ptr) : 0;
    free(ptr);
}

static const gn_allocator cnt_allocator = {cnt_malloc, cnt_realloc, cnt_free, NULL};

#endif /* GN_ALLOC_COUNT_H */
