/*
 * golemnet - logging and allocator hooks.
 *
 * The library never prints. An application that wants log lines installs a
 * callback; until it does, log calls cost one comparison.
 */
#ifndef GOLEMNET_LOG_H
#define GOLEMNET_LOG_H

#include "golemnet/common.h"

GN_BEGIN_DECLS

/** Log levels, with syslog's numbering. Since: 0.1 */
typedef enum gn_log_level {
    GN_LOG_ERR = 3,
    GN_LOG_WARNING = 4,
    GN_LOG_NOTICE = 5,
    GN_LOG_INFO = 6,
    GN_LOG_DEBUG = 7
} gn_log_level;

/**
 * Log callback.
 *
 * @level: the line's level. @component: NUL-terminated layer or module name
 * ("tcp", "noise", "core"). @msg: the NUL-terminated line, no trailing
 * newline, valid only during the call. Keys and payloads are never logged.
 *
 * Thread context: called on whichever thread logs (usually a node's loop
 * thread); must be thread-safe if several loops run. Must not call back into
 * golemnet.
 */
typedef void (*gn_log_fn)(void *user_data, gn_log_level level, const char *component,
                          const char *msg);

/**
 * Installs the process-wide log callback. @fn NULL disables logging.
 * @max_level: lines above it are dropped before formatting.
 * Thread context: call before starting loops; not synchronised with loggers.
 * Since: 0.1
 */
GN_API void gn_log_set(gn_log_fn fn, void *user_data, gn_log_level max_level);

/**
 * Selects components, curl style: "all", "all,-noise", "tcp,yamux". NULL or
 * "all" enables every component. Returns 0, or GN_EINVAL if @spec is longer
 * than 255 bytes.
 * Since: 0.1
 */
GN_API int gn_log_set_components(const char *spec);

/** True when a line of @level for @component would be delivered. Since: 0.1 */
GN_API bool gn_log_enabled(gn_log_level level, const char *component);

/**
 * Formats and delivers one line (printf-style) if enabled. Lines longer than
 * 1023 bytes are truncated. Since: 0.1
 */
GN_API void gn_log(gn_log_level level, const char *component, const char *fmt, ...)
    GN_PRINTF(3, 4);

/** Logs only when enabled, without evaluating the arguments otherwise. */
#define GN_LOG(level, comp, ...)                                                             \
    do {                                                                                     \
        if (gn_log_enabled((level), (comp)))                                                 \
            gn_log((level), (comp), __VA_ARGS__);                                            \
    } while (0)

/**
 * Allocator hooks. All library allocations go through these (libsodium's
 * secure memory excepted). @realloc_fn must accept NULL like realloc();
 * @free_fn must accept NULL.
 */
typedef struct gn_allocator {
    void *(*malloc_fn)(void *user_data, size_t len);
    void *(*realloc_fn)(void *user_data, void *ptr, size_t len);
    void (*free_fn)(void *user_data, void *ptr);
    void *user_data;
} gn_allocator;

/**
 * Installs the allocator. NULL restores malloc/realloc/free. Must be called
 * before any other golemnet call and never while objects are alive.
 * Since: 0.1
 */
GN_API void gn_set_allocator(const gn_allocator *a);

/** Allocate through the installed hooks. gn_calloc zeroes and checks n*size overflow. */
GN_API void *gn_malloc(size_t len);
GN_API void *gn_calloc(size_t n, size_t size);
GN_API void *gn_realloc(void *ptr, size_t len);
GN_API void gn_free(void *ptr);
/** Duplicates a NUL-terminated string through the hooks; NULL on failure. */
GN_API char *gn_strdup(const char *s);

GN_END_DECLS

#endif /* GOLEMNET_LOG_H */
