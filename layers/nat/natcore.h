/*
 * natcore - the pure logic the NAT components (upnp, natpmp) share: what
 * to map (an internal multiaddr read as address, transport and port), the
 * external address to report, lease and renewal arithmetic, option
 * parsing, and the translation of UPnP error codes and NAT-PMP result
 * codes into gn_err values with a reason text for the log.
 *
 * Sans-I/O: no syscalls, no clock, no libuv; every function is pure and
 * thread-safe (the adapters call some of them on libuv's thread pool).
 * Spec: UPnP IGD 1.0 WANIPConnection:1 (error codes, section 2.4);
 * RFC 6886 (NAT-PMP), sections 3.5 (result codes) and 3.3 (renewal).
 */
#ifndef GNI_NATCORE_H
#define GNI_NATCORE_H

#include "golemnet/multiaddr.h"
#include "golemnet/loop.h"

#include <stdbool.h>
#include <stdint.h>

/** Transport of a mapping. */
typedef enum gni_nat_proto { GNI_NAT_TCP = 1, GNI_NAT_UDP = 2 } gni_nat_proto;

/** Longest suffix kept after /ip4/<a>/<tcp|udp>/<port> (e.g. "/quic-v1"). */
#define GNI_NAT_REST_MAX 256

/** What to map: read from an internal multiaddr by gni_nat_target_parse(). */
typedef struct gni_nat_target {
    uint8_t ip[4];          /* internal IPv4 address; 0.0.0.0: this host's LAN address */
    uint16_t port;          /* internal port, also asked as the external port */
    gni_nat_proto proto;
    char rest[GNI_NAT_REST_MAX]; /* text of the components after the port, or "" */
} gni_nat_target;

/**
 * Reads @internal as /ip4/<a>/<tcp|udp>/<port>[/...] into @out.
 * Errors: GN_EINVAL (NULL argument, port 0), GN_ENOTSUP (not IPv4, or not
 * TCP/UDP: IGD 1.0 and NAT-PMP map IPv4 ports only), GN_ENOSPC (suffix
 * longer than GNI_NAT_REST_MAX - 1 bytes).
 */
int gni_nat_target_parse(const gn_multiaddr *internal, gni_nat_target *out);

/**
 * Builds /ip4/<@ext_ip>/<proto>/<@ext_port><rest> into *@out (the caller
 * frees it). Errors: GN_EINVAL, GN_ENOMEM, GN_EPARSE.
 */
int gni_nat_external(const gni_nat_target *t, const uint8_t ext_ip[4], uint16_t ext_port,
                     gn_multiaddr **out);

/** "TCP" or "UDP" (the UPnP NewProtocol values). */
const char *gni_nat_proto_name(gni_nat_proto p);

/** Formats @ip as dotted decimal into @buf (at least 16 bytes). Returns @buf. */
char *gni_nat_ip4_format(const uint8_t ip[4], char *buf, size_t len);

/**
 * Parses dotted-decimal IPv4 text (exactly four decimal octets, no
 * leading/trailing junk). Returns 0 or GN_EPARSE.
 */
int gni_nat_ip4_parse(const char *text, uint8_t out[4]);

/**
 * True for addresses a gateway cannot offer as its public one: 0/8, 10/8,
 * 100.64/10, 127/8, 169.254/16, 172.16/12, 192.0.0/24, 192.0.2/24,
 * 192.168/16, 198.18/15, 198.51.100/24, 224/4 and above. 203.0.113/24
 * (TEST-NET-3) is accepted on purpose: the tests' fake gateways use it.
 */
bool gni_nat_ip4_is_reserved(const uint8_t ip[4]);

/**
 * The lease to ask for, in seconds: @option_s when nonzero, else
 * @requested ns rounded up to seconds; then clamped to [@min_s, @max_s].
 */
uint32_t gni_nat_lease_s(gn_time requested, uint32_t option_s, uint32_t min_s, uint32_t max_s);

/**
 * When to renew a mapping granted for @granted_s seconds: after half of it
 * (RFC 6886 section 3.3; the same rule is used for UPnP leases), at least
 * 1 s. 0 for a permanent mapping (@granted_s 0: no renewal).
 */
gn_time gni_nat_renew_delay(uint32_t granted_s);

/**
 * Parses the decimal option value @text into @out within [@min, @max].
 * Returns 0, GN_EINVAL (NULL), GN_EPARSE (not a number) or GN_ERANGE.
 */
int gni_nat_parse_u32(const char *text, uint32_t min, uint32_t max, uint32_t *out);

/**
 * Maps the result of a miniupnpc command (@code: 0, UPNPCOMMAND_* -1..-5,
 * or a UPnP error code from the IGD's SOAP fault) to a gn_err and sets
 * *@reason (static text, may be NULL) to its meaning:
 *   402, -2             GN_EINVAL      invalid arguments
 *   401, 606            GN_EACCES      action not authorized
 *   501                 GN_EIO         Action Failed (e.g. miniupnpd with a
 *                                      private WAN address)
 *   714                 GN_ENOTFOUND   NoSuchEntryInArray
 *   718, 724            GN_EADDRINUSE  conflict / external and internal
 *                                      ports must be the same
 *   716, 725, 726, 727  GN_ENOTSUP     the gateway refuses this form of
 *                                      mapping (wildcards, lease, ...)
 *   728                 GN_ELIMIT      NoPortMapsAvailable
 *   -3                  GN_EUNREACHABLE HTTP error talking to the IGD
 *   -4                  GN_EPROTO      invalid response
 *   -5                  GN_ENOMEM
 *   anything else       GN_EIO
 * 0 gives 0 and "success".
 */
int gni_nat_upnp_err(int code, const char **reason);

/**
 * Maps a NAT-PMP result code (RFC 6886 section 3.5) or a libnatpmp error
 * (NATPMP_ERR_*, negative; result code r arrives as -49 - r) to a gn_err;
 * *@reason as above:
 *   result 1 / -14  GN_ENOTSUP      unsupported version
 *   result 2 / -51  GN_EACCES       not authorized/refused
 *   result 3 / -52  GN_EADDRNOTAVAIL network failure (the gateway has no
 *                                    usable public address, e.g. its WAN
 *                                    address is private)
 *   result 4 / -53  GN_ELIMIT       out of resources
 *   result 5 / -15  GN_ENOTSUP      unsupported opcode
 *   -7              GN_ETIMEDOUT    no answer from the gateway
 *   -3              GN_ENOTSUP      no default gateway known
 *   -9              GN_EPROTO       answer from another address
 *   other           GN_EIO
 * @is_result: true when @code is an on-the-wire result code (0..5+).
 */
int gni_nat_pmp_err(int code, bool is_result, const char **reason);

#endif /* GNI_NATCORE_H */
