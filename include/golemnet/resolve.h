/*
 * golemnet - DNS multiaddr resolution: /dns, /dns4, /dns6 and /dnsaddr to
 * concrete /ip4 and /ip6 addresses, asynchronously on a gn_loop.
 *
 * Spec: multiformats/multiaddr protocols.csv (dns, dns4, dns6, dnsaddr)
 * and protocols/DNSADDR.md; RFC 1035 (TXT), RFC 3596 (AAAA).
 *
 * A node owns one resolver and runs every dial through it before it picks
 * a transport (docs/dns.md); applications may use one directly. Queries go
 * through c-ares on the loop thread: c-ares' socket-state callback drives
 * uv_poll handles, one loop timer follows ares_timeout(); nothing blocks
 * the loop on the network. c-ares reads /etc/resolv.conf unless servers
 * are configured, and consults /etc/hosts first for every /dns* name
 * (also when servers are configured): that file is read synchronously, on
 * the loop thread, at each lookup (a local file; keep it small).
 *
 * What a resolution gives (each a new multiaddr):
 *   - /dns4/<h>/<rest>: /ip4/<a>/<rest> for each A record; /dns6: AAAA;
 *     /dns: both (IPv6 first, as c-ares orders them).
 *   - The host name stays available to a security layer that needs it:
 *     /wss becomes /tls/sni/<h>/ws and a /tls not followed by /sni gets
 *     /sni/<h> (so "/dns4/example.com/tcp/443/wss" resolves to
 *     "/ip4/<a>/tcp/443/tls/sni/example.com/ws"). A transport that dials
 *     TLS reads the server name from /sni (SNI and the certificate name
 *     check; the websocket transport does).
 *   - /dnsaddr/<d>[/<suffix>]: the "dnsaddr=<multiaddr>" TXT entries of
 *     _dnsaddr.<d> that end with <suffix> (e.g. /p2p/<id>), nested
 *     /dnsaddr entries followed up to max_depth levels and max_lookups
 *     names (each name once: loops end), /dns* entries then resolved as
 *     above.
 *   - A relayed address (.../p2p-circuit/...): the part before the first
 *     /p2p-circuit is resolved as above, the rest appended to each result.
 *   - Any other address: itself, unchanged (no query).
 * At most max_results addresses; further ones are dropped (logged).
 *
 * Thread context: loop thread only, for every function here.
 * Since: 0.3
 */
#ifndef GOLEMNET_RESOLVE_H
#define GOLEMNET_RESOLVE_H

#include "golemnet/common.h"
#include "golemnet/loop.h"
#include "golemnet/multiaddr.h"

GN_BEGIN_DECLS

typedef struct gn_resolver gn_resolver;

/** Resolver settings; fill with gn_resolver_config_default() first. Since: 0.3 */
typedef struct gn_resolver_config {
    /**
     * Name servers, "addr[:port]" comma-separated ("127.0.0.1:5353",
     * "[::1]:53"), copied; NULL or "": the system's (/etc/resolv.conf).
     */
    const char *servers;
    /** Per query attempt, ms (default 2000; 1..60000). */
    uint32_t timeout_ms;
    /** Attempts per query and server (default 2; 1..10). */
    uint32_t tries;
    /** Levels of nested /dnsaddr followed (default 4; 0..16). */
    uint32_t max_depth;
    /** Names queried for one /dnsaddr in all (default 32; 1..64). */
    uint32_t max_lookups;
    /** Addresses one resolution yields at most (default 32; 1..64). */
    uint32_t max_results;
    /**
     * Bound of one whole resolution, ms (default 10000; 1..600000): every
     * query of a /dnsaddr walk and the /dns* lookups after it. Past it the
     * resolution ends with GN_ETIMEDOUT. Per query, c-ares waits
     * timeout_ms, then doubles it each round of @tries, so without this a
     * walk of several levels could last minutes. Since: 0.3
     */
    uint32_t deadline_ms;
} gn_resolver_config;

/** Defaults as documented per field. Since: 0.3 */
GN_API void gn_resolver_config_default(gn_resolver_config *cfg);

/**
 * Creates a resolver on @loop (not NULL; loop thread). @cfg NULL: defaults.
 * Errors: GN_EINVAL (a field out of range, or @servers not a list of
 * addresses: nothing is created), GN_ENOMEM, GN_EIO (c-ares could not
 * start, e.g. an unreadable resolv.conf). *@out untouched on failure.
 * Since: 0.3
 */
GN_API int gn_resolver_new(gn_loop *loop, const gn_resolver_config *cfg, gn_resolver **out);

/**
 * Closes @r: pending resolutions complete with GN_ECANCELED (from the loop,
 * later), its handles close, and memory is freed once they have. NULL is a
 * no-op. Loop thread.
 * Since: 0.3
 */
GN_API void gn_resolver_free(gn_resolver *r);

/** True when @ma starts with /dns, /dns4, /dns6 or /dnsaddr. Since: 0.3 */
GN_API bool gn_resolver_needed(const gn_multiaddr *ma);

/**
 * A resolution's outcome (loop thread). @status 0: @addrs holds @n (>= 1)
 * multiaddrs, borrowed for the call (gn_multiaddr_dup() to keep one).
 * Else @n is 0 and @status one of: GN_ERESOLVE (the name does not exist
 * (NXDOMAIN), has no record of the asked family, or no dnsaddr entry
 * matched), GN_ETIMEDOUT (no server answered in time, or the whole
 * resolution passed deadline_ms; @detail names the address), GN_EIO (a server
 * failed: SERVFAIL, refused, a network error), GN_ECANCELED (cancelled, or
 * the resolver was freed), GN_ENOMEM. @detail (NUL-terminated, borrowed
 * for the call, never NULL) says in words which name failed and how, e.g.
 * "_dnsaddr.example.test: NXDOMAIN (domain name not found)". On success
 * @detail is the address that was resolved (some names of a walk may
 * have failed meanwhile: logged at info level, not reported here).
 * Since: 0.3
 */
typedef void (*gn_resolve_cb)(void *arg, int status, gn_multiaddr *const *addrs, size_t n,
                              const char *detail);

/**
 * Resolves @ma (copied) as the file comment says. @cb (not NULL) runs
 * exactly once, from the loop, never inside this call (also for an address
 * that needs no query), with one exception: when the loop cannot take a
 * deferred call (out of memory, or the loop is closing) the completion
 * runs at once, inside this call, gn_op_cancel() or gn_resolver_free(). @op: NULL, or receives a handle for gn_op_cancel()
 * (valid until @cb begins). Errors (then @cb does not run): GN_EINVAL,
 * GN_ECLOSED (the resolver is closing), GN_ENOMEM.
 * Since: 0.3
 */
GN_API int gn_resolve(gn_resolver *r, const gn_multiaddr *ma, gn_resolve_cb cb, void *arg,
                      gn_op **op);

GN_END_DECLS

#endif /* GOLEMNET_RESOLVE_H */
