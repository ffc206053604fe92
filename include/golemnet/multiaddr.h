/*
 * golemnet - multiaddr: self-describing network addresses.
 *
 * Spec: multiformats/multiaddr (string and binary forms) and the multicodec
 * table for protocol codes. A gn_multiaddr is an immutable heap object
 * holding the binary form; strings are parsed into and printed from it.
 *
 * Thread context: all functions are pure and thread-safe; a gn_multiaddr may
 * be shared read-only between threads.
 *
 * Encodings worth knowing: /memory/<n> is an 8-byte big-endian integer with
 * no length prefix (as rust-libp2p and go-multiaddr write it). /unix/<path>
 * has two string forms: the percent-encoded one segment of multiaddr PR 174
 * ("/unix/%2Ftmp%2Fx.sock", recognised by its leading "%2F") that other
 * components may follow, and go-multiaddr's older form that takes the rest
 * of the string ("/unix/tmp/x.sock"); a path always starts with '/' in
 * binary; printing uses the older form when the path is the last component
 * and holds no '%', else the percent-encoded one. /http-path/<segment> is
 * percent-encoded (multiaddr protocols/http-path.md). /certhash is a
 * multibase multihash (input: base64url 'u', 'U', base64 'm', 'M', base32
 * 'b', base58btc 'z'; printed as 'u'). /onion and /onion3 are
 * "<base32>:<port>", /garlic64 I2P base64, /garlic32 base32.
 * Every function returns GN_EINVAL for NULL arguments.
 */
#ifndef GOLEMNET_MULTIADDR_H
#define GOLEMNET_MULTIADDR_H

#include "golemnet/common.h"

GN_BEGIN_DECLS

/**
 * Protocol codes from the multicodec table, one per row of multiformats/
 * multiaddr protocols.csv (docs/addresses.md lists them with their value
 * forms and which component dials them). Every one parses and prints;
 * whether golemnet can dial an address is the transports' business
 * (GN_ENOTRANSPORT), never the parser's.
 */
#define GN_MA_IP4 0x0004
#define GN_MA_TCP 0x0006
#define GN_MA_DCCP 0x0021
#define GN_MA_IP6 0x0029
#define GN_MA_IP6ZONE 0x002a
#define GN_MA_IPCIDR 0x002b
#define GN_MA_DNS 0x0035
#define GN_MA_DNS4 0x0036
#define GN_MA_DNS6 0x0037
#define GN_MA_DNSADDR 0x0038
#define GN_MA_SCTP 0x0084
#define GN_MA_UDP 0x0111
#define GN_MA_P2P_WEBRTC_STAR 0x0113
#define GN_MA_P2P_WEBRTC_DIRECT 0x0114
#define GN_MA_P2P_STARDUST 0x0115
#define GN_MA_WEBRTC_DIRECT 0x0118
#define GN_MA_WEBRTC 0x0119
#define GN_MA_P2P_CIRCUIT 0x0122
#define GN_MA_UDT 0x012d
#define GN_MA_UTP 0x012e
#define GN_MA_UNIX 0x0190
#define GN_MA_P2P 0x01a5
#define GN_MA_HTTPS 0x01bb
#define GN_MA_ONION 0x01bc
#define GN_MA_ONION3 0x01bd
#define GN_MA_GARLIC64 0x01be
#define GN_MA_GARLIC32 0x01bf
#define GN_MA_TLS 0x01c0
#define GN_MA_SNI 0x01c1
#define GN_MA_NOISE 0x01c6
#define GN_MA_QUIC 0x01cc
#define GN_MA_QUIC_V1 0x01cd
#define GN_MA_WEBTRANSPORT 0x01d1
#define GN_MA_CERTHASH 0x01d2
#define GN_MA_WS 0x01dd
#define GN_MA_WSS 0x01de
#define GN_MA_P2P_WEBSOCKET_STAR 0x01df
#define GN_MA_HTTP 0x01e0
#define GN_MA_HTTP_PATH 0x01e1
#define GN_MA_MEMORY 0x0309
/** plaintextv2: multicodec table (multiaddr tag), not in protocols.csv. Since: 0.4 */
#define GN_MA_PLAINTEXTV2 0x706c61

/** Limits: binary length, string length (incl. NUL), components. */
#define GN_MA_MAX_BYTES 1024
#define GN_MA_MAX_STRLEN 4096
#define GN_MA_MAX_COMPONENTS 32

typedef struct gn_multiaddr gn_multiaddr;

/**
 * One component: a view into the multiaddr's bytes, valid while it lives.
 * @name is the static protocol name ("tcp"). @value is the binary value
 * (for p2p: the peer-ID multihash bytes; for unix: the path bytes).
 */
typedef struct gn_ma_component {
    uint64_t code;
    const char *name;
    const uint8_t *value;
    size_t value_len;
} gn_ma_component;

/**
 * Parses the string form @str (NUL-terminated, e.g. "/ip4/127.0.0.1/tcp/4001").
 * On success *@out is a new multiaddr the caller frees with gn_multiaddr_free().
 * Errors: GN_EINVAL (NULL args), GN_EPARSE (unknown protocol name, bad value
 * such as an out-of-range port, bad IP, invalid peer ID, missing value,
 * empty string or no leading '/'), GN_ETOOBIG (longer than GN_MA_MAX_STRLEN,
 * more than GN_MA_MAX_COMPONENTS components or a binary form over
 * GN_MA_MAX_BYTES), GN_ENOMEM. *@out is untouched on failure.
 * Since: 0.1
 */
GN_API int gn_multiaddr_parse(const char *str, gn_multiaddr **out);

/**
 * Why gn_multiaddr_parse_ex() refused a string.
 * Since: 0.2
 */
typedef enum gn_ma_parse_reason {
    GN_MA_PARSE_OK = 0,            /* parsed, or failed for GN_EINVAL / GN_ENOMEM */
    GN_MA_PARSE_SYNTAX = 1,        /* empty string, no leading '/', or an empty component ("//") */
    GN_MA_PARSE_PROTOCOL = 2,      /* unknown protocol name */
    GN_MA_PARSE_MISSING_VALUE = 3, /* the protocol takes a value and none follows */
    GN_MA_PARSE_VALUE = 4,         /* the value is not valid for the protocol */
    GN_MA_PARSE_TOO_LONG = 5       /* over GN_MA_MAX_STRLEN, _COMPONENTS or _BYTES */
} gn_ma_parse_reason;

/**
 * Where and why a string did not parse: the offending component is the
 * @len bytes of the input at @offset, starting with its '/' ("/ip4/1.2.3"
 * in "/ip4/1.2.3/tcp/1"; for a unix path, the rest of the string). For
 * GN_MA_PARSE_SYNTAX and a too long string it is the whole input (or the
 * empty component). @protocol is the static name of the component's
 * protocol ("ip4"), NULL when unknown or not applicable.
 * Since: 0.2
 */
typedef struct gn_ma_parse_error {
    gn_ma_parse_reason reason;
    size_t offset; /* bytes from the start of the string */
    size_t len;    /* bytes */
    const char *protocol;
} gn_ma_parse_error;

/**
 * gn_multiaddr_parse() that also tells which component is wrong and why.
 * @err: NULL, or filled on every call (reason GN_MA_PARSE_OK on success
 * and for GN_EINVAL / GN_ENOMEM). Returns and errors as
 * gn_multiaddr_parse(); GN_EPARSE comes with reason SYNTAX, PROTOCOL,
 * MISSING_VALUE or VALUE, GN_ETOOBIG with TOO_LONG. Pure, thread-safe.
 * Since: 0.2
 */
GN_API int gn_multiaddr_parse_ex(const char *str, gn_multiaddr **out, gn_ma_parse_error *err);

/**
 * Parses the binary form (@len bytes, copied). Errors: GN_EPARSE (unknown
 * code, truncated value, bad varint, invalid value), GN_ETOOBIG, GN_ENOMEM.
 * An empty input is GN_EPARSE.
 * Since: 0.1
 */
GN_API int gn_multiaddr_from_bytes(const uint8_t *bytes, size_t len, gn_multiaddr **out);

/** Frees @ma; NULL is a no-op. Since: 0.1 */
GN_API void gn_multiaddr_free(gn_multiaddr *ma);

/** Returns a copy in *@out, or GN_ENOMEM. Since: 0.1 */
GN_API int gn_multiaddr_dup(const gn_multiaddr *ma, gn_multiaddr **out);

/** The binary form, borrowed from @ma. Since: 0.1 */
GN_API gn_slice gn_multiaddr_bytes(const gn_multiaddr *ma);

/**
 * Writes the string form, NUL-terminated, into @out (@out_len bytes).
 * Returns the string length, or GN_ENOSPC (then @out holds "" if @out_len>0).
 * Peer IDs print in base58btc; IPv6 in RFC 5952 form.
 * Since: 0.1
 */
GN_API int gn_multiaddr_to_string(const gn_multiaddr *ma, char *out, size_t out_len);

/** True when both have the same binary form. Since: 0.1 */
GN_API bool gn_multiaddr_equal(const gn_multiaddr *a, const gn_multiaddr *b);

/** Number of components. Since: 0.1 */
GN_API size_t gn_multiaddr_count(const gn_multiaddr *ma);

/**
 * Fetches component @idx (0-based) into *@c. Returns 0 or GN_ERANGE.
 * Since: 0.1
 */
GN_API int gn_multiaddr_component(const gn_multiaddr *ma, size_t idx, gn_ma_component *c);

/**
 * Finds the first component with @code; returns its index (>= 0) and fills
 * *@c (may be NULL), or GN_ENOTFOUND.
 * Since: 0.1
 */
GN_API int gn_multiaddr_find(const gn_multiaddr *ma, uint64_t code, gn_ma_component *c);

/**
 * Writes the string form of one component's value (e.g. "4001", "::1",
 * "12D3KooW...") into @out, NUL-terminated. Returns the length or GN_ENOSPC.
 * Since: 0.1
 */
GN_API int gn_ma_component_value_string(const gn_ma_component *c, char *out, size_t out_len);

/**
 * *@out = @a followed by @b. Errors: GN_ETOOBIG, GN_ENOMEM. (Since 0.3 a
 * unix path may be followed by other components; it then prints in its
 * percent-encoded form.)
 * Since: 0.1
 */
GN_API int gn_multiaddr_encapsulate(const gn_multiaddr *a, const gn_multiaddr *b,
                                    gn_multiaddr **out);

/**
 * *@out = @ma truncated before the last component with @code (e.g.
 * GN_MA_P2P strips a trailing /p2p/<id>). GN_ENOTFOUND if there is none;
 * GN_EPARSE if nothing would remain.
 * Since: 0.1
 */
GN_API int gn_multiaddr_decapsulate_code(const gn_multiaddr *ma, uint64_t code,
                                         gn_multiaddr **out);

/**
 * Looks a protocol up by name or by code. Return its code / static name, or
 * GN_ENOTFOUND / NULL.
 * Since: 0.1
 */
GN_API int64_t gn_ma_protocol_code(const char *name);
GN_API const char *gn_ma_protocol_name(uint64_t code);

GN_END_DECLS

#endif /* GOLEMNET_MULTIADDR_H */
