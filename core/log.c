/* Logging through the application's callback, and allocator hooks. */
#include "golemnet/log.h"

#include "golemnet/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static gn_log_fn log_fn;
static void *log_ud;
static gn_log_level log_max = GN_LOG_WARNING;
/* "all" or a comma list; entries starting with '-' exclude. Empty = all. */
static char log_components[256];

void gn_log_set(gn_log_fn fn, void *user_data, gn_log_level max_level)
{
    log_fn = fn;
    log_ud = user_data;
    log_max = max_level;
}

int gn_log_set_components(const char *spec)
{
    if (spec == NULL) {
        log_components[0] = '\0';
        return 0;
    }
    size_t n = strlen(spec);
    if (n >= sizeof log_components) {
        return GN_EINVAL;
    }
    memcpy(log_components, spec, n + 1);
    return 0;
}

/* Does the comma list contain @comp (exact match) with the given sign? */
static bool list_has(const char *list, const char *comp, bool negated)
{
    size_t clen = strlen(comp);
    const char *p = list;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        bool neg = len > 0 && p[0] == '-';
        const char *name = neg ? p + 1 : p;
        size_t nlen = neg ? len - 1 : len;
        if (neg == negated && nlen == clen && memcmp(name, comp, clen) == 0) {
            return true;
        }
        if (!end) {
            break;
        }
        p = end + 1;
    }
    return false;
}

bool gn_log_enabled(gn_log_level level, const char *component)
{
    if (log_fn == NULL || level > log_max) {
        return false;
    }
    if (log_components[0] == '\0' || component == NULL) {
        return true;
    }
    if (list_has(log_components, component, true)) {
        return false;
    }
    return list_has(log_components, "all", false) ||
           list_has(log_components, component, false);
}

void gn_log(gn_log_level level, const char *component, const char *fmt, ...)
{
    if (!gn_log_enabled(level, component)) {
        return;
    }
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    log_fn(log_ud, level, component ? component : "", line);
}

/* ---- allocator hooks ---- */

static void *def_malloc(void *ud, size_t len)
{
    (void)ud;
    return malloc(len);
}
static void *def_realloc(void *ud, void *p, size_t len)
{
    (void)ud;
    return realloc(p, len);
}
static void def_free(void *ud, void *p)
{
    (void)ud;
    free(p);
}

static gn_allocator alloc = {def_malloc, def_realloc, def_free, NULL};

void gn_set_allocator(const gn_allocator *a)
{
    if (a == NULL) {
        alloc.malloc_fn = def_malloc;
        alloc.realloc_fn = def_realloc;
        alloc.free_fn = def_free;
        alloc.user_data = NULL;
        return;
    }
    alloc = *a;
}

void *gn_malloc(size_t len)
{
    return alloc.malloc_fn(alloc.user_data, len ? len : 1);
}

void *gn_calloc(size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size) {
        return NULL;
    }
    size_t len = n * size;
    void *p = gn_malloc(len);
    if (p) {
        memset(p, 0, len ? len : 1);
    }
    return p;
}

void *gn_realloc(void *ptr, size_t len)
{
    return alloc.realloc_fn(alloc.user_data, ptr, len ? len : 1);
}

void gn_free(void *ptr)
{
    if (ptr) {
        alloc.free_fn(alloc.user_data, ptr);
    }
}

char *gn_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = gn_malloc(n);
    if (d) {
        memcpy(d, s, n);
    }
    return d;
}
