/*
 * golemnet - Ergo's static routes (private to the library).
 *
 * A table of (match pattern, route, weight), as Ergo 3.1's
 * Network().AddRoute / Route / RemoveRoute keep it: looking up a node name
 * gives every route whose pattern matches the name, highest weight first;
 * the node dials those before it asks the registrar, and when a static
 * route matches the registrar is not asked at all (a route may instead say
 * "resolve through the registrar": use_resolver).
 *
 * Matching: a pattern is a POSIX extended regular expression (<regex.h>,
 * REG_EXTENDED | REG_NOSUB) searched anywhere in the name, like Go's
 * regexp.MatchString: anchor with ^...$ for a whole-name match. Ergo uses
 * Go's RE2 syntax; the common subset (literals, ., [], *, +, ?, |, (),
 * ^, $, {m,n}) means the same in both; Perl classes such as \d do not
 * exist in ERE. Platforms without <regex.h> (Windows) get GN_ENOTSUP from
 * gni_routes_add. Patterns are the application's configuration, not wire
 * input: they are bounded in length, not in matching cost.
 *
 * Equal weights keep the order the routes were added (Ergo's order among
 * equal weights is unspecified).
 *
 * No I/O, no clock, no globals. Thread context: one table per thread.
 * Spec: shared/specs/ergo-wire.md section a (resolution order); Ergo
 * node/network.go GetConnection. Design: docs/ergo.md "Registrar",
 * "Static routes".
 */
#ifndef GNI_ROUTES_H
#define GNI_ROUTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "golemnet/common.h"

#define GNI_ROUTES_MAX_DEFAULT 64u  /* routes in a table unless configured */
#define GNI_ROUTES_MAX_LIMIT 1024u  /* the most a table may be configured for */
#define GNI_ROUTES_MATCH_MAX 256u   /* bytes of a pattern, NUL not counted */
#define GNI_ROUTES_NAME_MAX 255u    /* bytes of a looked-up node name (an Ergo atom) */
#define GNI_ROUTES_HOST_MAX 255u    /* bytes of a route's host */
#define GNI_ROUTES_COOKIE_MAX 255u  /* bytes of a route's cookie */

/**
 * One static route (Ergo's gen.NetworkRoute, minus the Go-only fields:
 * certificate manager, atom mapping and log level). Strings are
 * NUL-terminated; gni_routes_add copies them.
 */
typedef struct gni_route {
    const char *host;     /* NULL or "" = the host part of the node name */
    uint16_t port;        /* != 0 unless use_resolver */
    bool tls;             /* dial with TLS (the adapter must support it) */
    bool insecure_skip_verify;
    bool use_resolver;    /* Ergo's Resolver != nil: resolve through the registrar, then dial
                             each resolved route with the node's cookie (Ergo's rule) */
    const char *cookie;   /* NULL or "" = the node's cookie */
    uint64_t flags;       /* Ergo NetworkFlags as on the wire; 0 (Enable bit clear) = the
                             node's flags */
} gni_route;

typedef struct gni_routes gni_routes;

/**
 * A table of at most @max routes (0 = GNI_ROUTES_MAX_DEFAULT). Returns 0
 * and *@out; GN_EINVAL (@out NULL or @max above GNI_ROUTES_MAX_LIMIT);
 * GN_ENOMEM.
 */
int gni_routes_new(uint32_t max, gni_routes **out);

/** Frees @t and every route in it (NULL is fine). */
void gni_routes_free(gni_routes *t);

/**
 * Adds @route under pattern @match (NUL-terminated, 1..GNI_ROUTES_MATCH_MAX
 * bytes) with @weight (higher is tried first). Returns 0; GN_EEXIST (a
 * route with this exact pattern is present: Ergo's ErrTaken); GN_EINVAL
 * (NULL, empty or too long pattern, a pattern regcomp refuses, port 0
 * without use_resolver, host or cookie too long); GN_ELIMIT (table full);
 * GN_ENOTSUP (no <regex.h> on this platform); GN_ENOMEM.
 */
int gni_routes_add(gni_routes *t, const char *match, const gni_route *route, int weight);

/** Removes the route added under exactly @match. Returns 0, GN_ENOTFOUND or GN_EINVAL. */
int gni_routes_remove(gni_routes *t, const char *match);

/**
 * The routes whose pattern matches @name (NUL-terminated, at most
 * GNI_ROUTES_NAME_MAX bytes), highest weight first, equal weights in the
 * order they were added. Writes up to @cap pointers into @out (borrowed
 * from @t until its next add, remove or free) and the number of matches
 * (which may exceed @cap) to *@n. Returns 0 (*@n = 0: no static route,
 * ask the registrar); GN_EINVAL (NULL arguments, @name too long).
 */
int gni_routes_lookup(const gni_routes *t, const char *name, const gni_route **out,
                      uint32_t cap, uint32_t *n);

/** Routes in @t. */
uint32_t gni_routes_count(const gni_routes *t);

#endif /* GNI_ROUTES_H */
