/*
 * gts_malloc_usable_size(): the size malloc gave a block, for the tests that
 * count live heap bytes through the allocator hooks (gn_alloc_count.h,
 * loop_test). Its own header so that only those tests include the C library's
 * allocator header, which differs per OS. Test-only (never installed).
 */
#ifndef GN_TEST_MSIZE_H
#define GN_TEST_MSIZE_H

#include <stddef.h>

#if defined(_WIN32)
#  include <malloc.h>
static inline size_t gts_malloc_usable_size(void *p) { return _msize(p); }
#elif defined(__APPLE__)
#  include <malloc/malloc.h>
static inline size_t gts_malloc_usable_size(void *p) { return malloc_size(p); }
#elif defined(__GLIBC__) || defined(__linux__) /* glibc; musl has it there too */
#  include <malloc.h>
static inline size_t gts_malloc_usable_size(void *p) { return malloc_usable_size(p); }
#else
#  error "gn_test_msize.h: no malloc_usable_size equivalent known for this C library"
#endif

#endif /* GN_TEST_MSIZE_H */
