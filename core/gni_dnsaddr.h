/*
 * golemnet - /dnsaddr resolution bookkeeping and /dns* substitution: the
 * sans-I/O part of the resolver (core/dnsaddr.c). No sockets, no clock, no
 * libuv: the adapter (core/resolve_uv.c) sends the queries this asks for
 * and feeds back the TXT strings it got.
 *
 * Spec: multiformats/multiaddr protocols/DNSADDR.md (TXT records of
 * _dnsaddr.<domain>, "dnsaddr=<multiaddr>" entries, recursion, suffix
 * matching).
 *
 * A walk starts from one /dnsaddr/<domain>[/<suffix>] address. It queues
 * "_dnsaddr.<domain>"; each TXT string fed back that reads
 * "dnsaddr=<multiaddr>" and ends with the suffix of the address that was
 * looked up (the components after /dnsaddr/<domain>, compared component by
 * component) is kept: another /dnsaddr queues a further lookup (one level
 * deeper), anything else is a result. Bounds: depth (levels of nesting),
 * lookups (names queried in all; a name already queried with the same
 * suffix is not queried again, which also ends loops), results (further ones are counted in
 * 'dropped'). Strings that are not dnsaddr entries, do not parse or do not
 * match are skipped and counted.
 *
 * Thread context: a walk is used by one thread at a time; pure otherwise.
 */
#ifndef GNI_DNSADDR_H
#define GNI_DNSADDR_H

#include "golemnet/common.h"
#include "golemnet/multiaddr.h"

/* Hard caps of the configurable bounds (gn_resolver_config). */
#define GNI_DNSADDR_MAX_LOOKUPS 64
#define GNI_DNSADDR_MAX_RESULTS 64
#define GNI_DNSADDR_MAX_DEPTH 16
/* "_dnsaddr." + a 255-byte name + NUL */
#define GNI_DNSADDR_NAME_MAX (9 + 255 + 1)
/* TXT strings longer than this are skipped (a multiaddr string is shorter). */
#define GNI_DNSADDR_TXT_MAX GN_MA_MAX_STRLEN

typedef struct gni_dnsaddr_limits {
    uint32_t max_depth;   /* 0: only the first name; nested /dnsaddr entries dropped */
    uint32_t max_lookups; /* names queried in all, 1..GNI_DNSADDR_MAX_LOOKUPS */
    uint32_t max_results; /* 1..GNI_DNSADDR_MAX_RESULTS */
} gni_dnsaddr_limits;

typedef struct gni_dnsaddr_query {
    char name[GNI_DNSADDR_NAME_MAX]; /* "_dnsaddr.<domain>" */
    gn_multiaddr *ma;                /* the /dnsaddr address looked up (owns) */
    uint32_t depth;
    bool sent, done;
} gni_dnsaddr_query;

typedef struct gni_dnsaddr {
    gni_dnsaddr_limits lim;
    gni_dnsaddr_query q[GNI_DNSADDR_MAX_LOOKUPS];
    size_t nq;
    gn_multiaddr *res[GNI_DNSADDR_MAX_RESULTS];
    size_t nres;
    /* counters for logs and tests */
    size_t skipped;    /* TXT strings that were no entry, bad or not matching */
    size_t dropped;    /* entries over a bound (depth, lookups, results) */
    size_t repeated;   /* nested names already queried (loops) */
    int first_err;     /* first failed lookup (gn_err), 0 if none */
    char first_err_name[GNI_DNSADDR_NAME_MAX];
} gni_dnsaddr;

/*
 * Starts a walk for @target (its first component must be /dnsaddr), limits
 * clamped to the caps above (NULL: defaults 4, 32, 32). Returns 0,
 * GN_EINVAL (NULL, or no /dnsaddr first) or GN_ENOMEM. After any return
 * gni_dnsaddr_fini() is safe.
 */
int gni_dnsaddr_init(gni_dnsaddr *w, const gn_multiaddr *target, const gni_dnsaddr_limits *lim);

/* Frees what the walk holds (results not taken). */
void gni_dnsaddr_fini(gni_dnsaddr *w);

/*
 * The next name to query: returns 1 with *@name (borrowed, valid until
 * fini) and *@id (for gni_dnsaddr_feed), or 0 when none is waiting.
 */
int gni_dnsaddr_next(gni_dnsaddr *w, const char **name, uint32_t *id);

/*
 * Feeds the outcome of query @id: @status 0 with @n TXT strings (@txt, each
 * one whole record, character-strings joined), or a gn_err (GN_ERESOLVE,
 * GN_ETIMEDOUT, ...; @txt ignored). Returns 0, GN_EINVAL (unknown or
 * already fed @id) or GN_ENOMEM.
 */
int gni_dnsaddr_feed(gni_dnsaddr *w, uint32_t id, int status, const gn_slice *txt, size_t n);

/* True when every queued query was sent and fed. */
bool gni_dnsaddr_done(const gni_dnsaddr *w);

/*
 * Moves the results out: up to @cap into @out (caller frees each), returns
 * how many. The walk no longer holds them.
 */
size_t gni_dnsaddr_take(gni_dnsaddr *w, gn_multiaddr **out, size_t cap);

/*
 * The concrete address for a /dns, /dns4 or /dns6 address @ma (first
 * component) resolved to @ip (4 or 16 bytes): /ip4|ip6/<ip> followed by
 * the rest of @ma, where a security layer that needs the host name gets it
 * as /sni/<host>: "/wss" becomes "/tls/sni/<host>/ws" and a "/tls" not
 * followed by /sni becomes "/tls/sni/<host>" (as go-libp2p's websocket
 * transport does). Returns 0, GN_EINVAL (not /dns*, or bad @ip_len),
 * GN_ETOOBIG, GN_ENOMEM.
 */
int gni_dns_substitute(const gn_multiaddr *ma, const uint8_t *ip, size_t ip_len,
                       gn_multiaddr **out);

#endif /* GNI_DNSADDR_H */
