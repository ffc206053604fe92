/*
 * Ergo's static routes: a bounded table of (pattern, route, weight) and the
 * lookup of a node name, highest weight first (Ergo node/static.go
 * semantics). Contract: routes.h. Sans-I/O.
 */
#include "routes.h"

#include <string.h>

#include "gni.h"
#include "golemnet/err.h"

#if defined(_WIN32)
#define ROUTES_HAVE_REGEX 0
#elif defined(__has_include)
#if __has_include(<regex.h>)
#define ROUTES_HAVE_REGEX 1
#else
#define ROUTES_HAVE_REGEX 0
#endif
#else
#define ROUTES_HAVE_REGEX 1
#endif

#if ROUTES_HAVE_REGEX
#include <regex.h>
#endif

typedef struct routes_entry {
    char match[GNI_ROUTES_MATCH_MAX + 1];
    char host[GNI_ROUTES_HOST_MAX + 1];
    char cookie[GNI_ROUTES_COOKIE_MAX + 1];
    gni_route route; /* host and cookie point into the entry */
    int weight;
    uint64_t seq; /* insertion order, for equal weights */
#if ROUTES_HAVE_REGEX
    regex_t re;
#endif
} routes_entry;

struct gni_routes {
    uint32_t max, n;
    uint64_t next_seq;
    routes_entry **e; /* n entries, unordered */
};

int gni_routes_new(uint32_t max, gni_routes **out)
{
    if (!out || max > GNI_ROUTES_MAX_LIMIT)
        return GN_EINVAL;
    gni_routes *t = gn_calloc(1, sizeof *t);
    if (!t)
        return GN_ENOMEM;
    t->max = max ? max : GNI_ROUTES_MAX_DEFAULT;
    t->e = gn_calloc(t->max, sizeof *t->e);
    if (!t->e) {
        gn_free(t);
        return GN_ENOMEM;
    }
    *out = t;
    return 0;
}

static void routes_entry_free(routes_entry *x)
{
#if ROUTES_HAVE_REGEX
    regfree(&x->re);
#endif
    gn_free(x);
}

void gni_routes_free(gni_routes *t)
{
    if (!t)
        return;
    for (uint32_t i = 0; i < t->n; i++)
        routes_entry_free(t->e[i]);
    gn_free(t->e);
    gn_free(t);
}

static size_t routes_len(const char *s, size_t max)
{
    size_t n = 0;
    while (s && n <= max && s[n])
        n++;
    return n; /* max + 1 means too long */
}

int gni_routes_add(gni_routes *t, const char *match, const gni_route *route, int weight)
{
    if (!t || !match || !route)
        return GN_EINVAL;
    size_t ml = routes_len(match, GNI_ROUTES_MATCH_MAX);
    size_t hl = routes_len(route->host, GNI_ROUTES_HOST_MAX);
    size_t cl = routes_len(route->cookie, GNI_ROUTES_COOKIE_MAX);
    if (ml == 0 || ml > GNI_ROUTES_MATCH_MAX || hl > GNI_ROUTES_HOST_MAX ||
        cl > GNI_ROUTES_COOKIE_MAX || (route->port == 0 && !route->use_resolver))
        return GN_EINVAL;
#if !ROUTES_HAVE_REGEX
    (void)weight;
    return GN_ENOTSUP;
#else
    for (uint32_t i = 0; i < t->n; i++)
        if (strcmp(t->e[i]->match, match) == 0)
            return GN_EEXIST; /* Ergo keys the table by the pattern text */
    if (t->n >= t->max)
        return GN_ELIMIT;
    routes_entry *x = gn_calloc(1, sizeof *x);
    if (!x)
        return GN_ENOMEM;
    memcpy(x->match, match, ml);
    if (regcomp(&x->re, x->match, REG_EXTENDED | REG_NOSUB) != 0) {
        gn_free(x); /* nothing to regfree after a failed regcomp */
        return GN_EINVAL;
    }
    x->route = *route;
    if (hl)
        memcpy(x->host, route->host, hl);
    if (cl)
        memcpy(x->cookie, route->cookie, cl);
    x->route.host = x->host;
    x->route.cookie = x->cookie;
    x->weight = weight;
    x->seq = t->next_seq++;
    t->e[t->n++] = x;
    return 0;
#endif
}

int gni_routes_remove(gni_routes *t, const char *match)
{
    if (!t || !match)
        return GN_EINVAL;
    for (uint32_t i = 0; i < t->n; i++) {
        if (strcmp(t->e[i]->match, match) == 0) {
            routes_entry_free(t->e[i]);
            t->e[i] = t->e[--t->n];
            t->e[t->n] = NULL;
            return 0;
        }
    }
    return GN_ENOTFOUND;
}

/* true when @a goes before @b: higher weight, then earlier insertion */
static bool routes_before(const routes_entry *a, const routes_entry *b)
{
    return a->weight != b->weight ? a->weight > b->weight : a->seq < b->seq;
}

int gni_routes_lookup(const gni_routes *t, const char *name, const gni_route **out,
                      uint32_t cap, uint32_t *n)
{
    if (!t || !name || !n || (cap && !out) || routes_len(name, GNI_ROUTES_NAME_MAX) >
                                                  GNI_ROUTES_NAME_MAX)
        return GN_EINVAL;
    *n = 0;
#if ROUTES_HAVE_REGEX
    /* insertion sort of the matches into @out: at most max x cap steps */
    const routes_entry *top[GNI_ROUTES_MAX_LIMIT];
    uint32_t k = 0, total = 0;
    for (uint32_t i = 0; i < t->n; i++) {
        const routes_entry *x = t->e[i];
        if (regexec(&x->re, name, 0, NULL, 0) != 0)
            continue;
        total++;
        uint32_t j = k;
        while (j > 0 && routes_before(x, top[j - 1]))
            j--;
        if (j >= cap)
            continue; /* below the cap: counted, not returned */
        uint32_t last = k < cap ? k : cap - 1;
        memmove(&top[j + 1], &top[j], (last - j) * sizeof top[0]);
        top[j] = x;
        if (k < cap)
            k++;
    }
    for (uint32_t i = 0; i < k; i++)
        out[i] = &top[i]->route;
    *n = total;
#endif
    return 0;
}

uint32_t gni_routes_count(const gni_routes *t) { return t ? t->n : 0; }
