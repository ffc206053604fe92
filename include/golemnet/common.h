/*
 * golemnet - common definitions shared by every public header.
 *
 * Export macro, the monotonic time type, borrowed byte slices, caller-owned
 * output buffers and the injectable random-number source used by every
 * sans-I/O core.
 */
#ifndef GOLEMNET_COMMON_H
#define GOLEMNET_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#  if defined(GN_BUILDING_LIBRARY) && !defined(GN_STATIC)
#    define GN_API __declspec(dllexport)
#  elif !defined(GN_STATIC)
#    define GN_API __declspec(dllimport)
#  else
#    define GN_API
#  endif
#elif defined(__GNUC__)
#  define GN_API __attribute__((visibility("default")))
#else
#  define GN_API
#endif

#if defined(__GNUC__)
#  define GN_WARN_UNUSED __attribute__((warn_unused_result))
#  define GN_NONNULL(...) __attribute__((nonnull(__VA_ARGS__)))
#  define GN_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#  define GN_WARN_UNUSED
#  define GN_NONNULL(...)
#  define GN_PRINTF(f, a)
#endif

#ifdef __cplusplus
#  define GN_BEGIN_DECLS extern "C" {
#  define GN_END_DECLS }
#else
#  define GN_BEGIN_DECLS
#  define GN_END_DECLS
#endif

GN_BEGIN_DECLS

/**
 * gn_time: monotonic time or a duration, in nanoseconds.
 *
 * Every time value in the API has this type. Sans-I/O cores take the current
 * time as an argument and never read a clock themselves.
 *
 * Since: 0.1
 */
typedef uint64_t gn_time;

/** One microsecond, millisecond and second as gn_time. Since: 0.1 */
#define GN_US ((gn_time)1000ULL)
#define GN_MS ((gn_time)1000000ULL)
#define GN_S ((gn_time)1000000000ULL)
/** A deadline that never expires. Since: 0.1 */
#define GN_TIME_INFINITY UINT64_MAX

/**
 * gn_slice: borrowed bytes, passed by value.
 *
 * @base points at @len readable bytes (may be NULL when @len is 0). The
 * bytes belong to the caller and are valid only for the duration of the call
 * that receives the slice, unless that call documents otherwise (stream
 * writes keep them until the write completion).
 *
 * Since: 0.1
 */
typedef struct gn_slice {
    const uint8_t *base;
    size_t len;
} gn_slice;

/** Builds a gn_slice from a pointer and a length. Since: 0.1 */
static inline gn_slice gn_slice_of(const void *base, size_t len)
{
    gn_slice s;
    s.base = (const uint8_t *)base;
    s.len = len;
    return s;
}

/**
 * gn_buf: a caller-owned output buffer.
 *
 * Layout: begin <= pos <= last <= end. Bytes in [pos, last) are filled and
 * not yet consumed; [last, end) is free space. Writers append at @last and
 * readers consume from @pos. The struct never owns @begin: whoever set it up
 * frees it.
 *
 * Since: 0.1
 */
typedef struct gn_buf {
    uint8_t *begin;
    uint8_t *pos;
    uint8_t *last;
    uint8_t *end;
} gn_buf;

/** Points @b at @len bytes of storage at @mem, empty. Since: 0.1 */
static inline void gn_buf_init(gn_buf *b, void *mem, size_t len)
{
    b->begin = b->pos = b->last = (uint8_t *)mem;
    b->end = b->begin + len;
}
/** Number of filled, unconsumed bytes. Since: 0.1 */
static inline size_t gn_buf_len(const gn_buf *b) { return (size_t)(b->last - b->pos); }
/** Number of free bytes after @last. Since: 0.1 */
static inline size_t gn_buf_left(const gn_buf *b) { return (size_t)(b->end - b->last); }
/** Empties the buffer (pos = last = begin). Since: 0.1 */
static inline void gn_buf_reset(gn_buf *b) { b->pos = b->last = b->begin; }

/**
 * gn_rng: an injectable source of random bytes.
 *
 * @fill writes @len random bytes to @out; it cannot fail. Sans-I/O cores
 * receive a gn_rng so tests can make them deterministic. gn_rng_system()
 * returns libsodium's randombytes_buf().
 *
 * Thread context: @fill is called on the thread that drives the core.
 * Since: 0.1
 */
typedef struct gn_rng {
    void (*fill)(void *user_data, uint8_t *out, size_t len);
    void *user_data;
} gn_rng;

/** The system CSPRNG (libsodium). Never NULL; the struct is static. Since: 0.1 */
GN_API const gn_rng *gn_rng_system(void);

/** Fills @out with @len bytes from @rng. Since: 0.1 */
static inline void gn_rng_fill(const gn_rng *rng, uint8_t *out, size_t len)
{
    rng->fill(rng->user_data, out, len);
}

/**
 * Reads the monotonic clock, in nanoseconds since an arbitrary origin.
 * Thread context: any thread. Only adapters and applications call it; cores
 * take the time as an argument.
 * Since: 0.1
 */
GN_API gn_time gn_now(void);

/** Library version as a string ("0.1.0"). Since: 0.1 */
GN_API const char *gn_version(void);
/** Library version as (major << 16) | (minor << 8) | patch. Since: 0.1 */
GN_API uint32_t gn_version_number(void);

GN_END_DECLS

#endif /* GOLEMNET_COMMON_H */
