/*
 * golemnet - multiaddr: string <-> binary conversion and component access.
 *
 * Spec: multiformats/multiaddr README ("Encoding" and "Specification"),
 * protocols.csv and the multicodec table (codes), libp2p/specs
 * peer-ids/peer-ids.md (p2p value string forms).
 *
 * Binary form: a sequence of <code varint><value>, where the value has a
 * fixed size for ip4 (4), ip6 (16), the ports tcp/udp/dccp/sctp (2, big
 * endian), ipcidr (1), onion (12), onion3 (37) and memory (8), none for the
 * flag protocols (tls, quic-v1, ws, p2p-circuit, ...), and is <length
 * varint><bytes> for the variable-size protocols dns, dns4, dns6, dnsaddr,
 * sni, ip6zone, p2p, unix, http-path, certhash, garlic64 and garlic32.
 * Every row of protocols.csv (multiformats/multiaddr at 9b7b3fab, 2025-04-28)
 * is in the table, plus plaintextv2 (0x706c61), a multiaddr-tagged row of
 * the multicodec table that go-multiaddr also knows: parsing never fails on
 * a protocol golemnet cannot dial (that is GN_ENOTRANSPORT, later).
 *
 * Protocol notes (choices that the tables leave open):
 *   - memory (0x0309): protocols.csv and the multicodec table list its size
 *     as "V" ("arbitrary"), but rust-libp2p (multiaddr crate, Protocol::Memory
 *     written with write_u64::<BigEndian> after the code, no length prefix)
 *     and go-multiaddr (size 64, TranscoderMemory) both encode it as a fixed
 *     8-byte big-endian u64 with no length prefix, and print it in decimal.
 *     We follow them for wire compatibility: /memory/1234 <-> 8903 00..04d2.
 *   - unix (0x0190): a path, always absolute ('/' first) in binary. Two
 *     string forms are read: the percent-encoded single segment of
 *     multiaddr PR 174 ("/unix/%2Ftmp%2Fx.sock", recognised by a value that
 *     starts with "%2F"), which other components may follow, and the older
 *     go-multiaddr form that takes the rest of the string ("/unix/tmp/x.sock",
 *     value "/tmp/x.sock"). Printing writes the older form when the path is
 *     the last component and holds no '%' (so configurations written for
 *     go-multiaddr and earlier golemnet read back the same), else the
 *     percent-encoded one.
 *   - http-path (0x01e1): percent-encoded one segment (protocols/http-path.md);
 *     printing leaves RFC 3986 unreserved characters and "$&+=:@" as they
 *     are, as go-multiaddr does, and encodes the rest ('/' as %2F).
 *   - certhash (0x01d2): a multihash in multibase; read in base64url ('u',
 *     'U'), base64 ('m', 'M'), base32 ('b') or base58btc ('z'), printed 'u'.
 *   - onion, onion3: "<base32 hash>:<port>" (16 / 56 characters, either
 *     case on input, lower case out), port 1..65535; garlic64: I2P base64
 *     (alphabet with '-' and '~', padded), at least 386 bytes; garlic32:
 *     base32 without padding, 32 or at least 35 bytes (go-multiaddr's rules).
 *   - sni, ip6zone, dnsaddr: like dns, 1..255 bytes without '/' or NUL.
 *   - p2p (0x01a5, also read under its old name "ipfs"): the binary value is
 *     the peer ID multihash, which must be identity (non-empty digest) or
 *     sha2-256 (32-byte digest). Strings print it in base58btc; input also
 *     accepts the CIDv1 libp2p-key form ("bafz...", multibase 'b' or 'z'), as
 *     peer-ids.md "Decoding" requires.
 *   - dns, dns4, dns6: 1..255 bytes, no '/' (it would end the value).
 *   - ipcidr: one byte, printed in decimal (0..255, as go-multiaddr).
 *   - A single trailing '/' is accepted on input ("/ip4/1.2.3.4/tcp/1/"),
 *     as go-multiaddr and rust-multiaddr do; empty components are not.
 *   - IPv6 prints in RFC 5952 form (lower case, no leading zeros, the first
 *     longest run of two or more zero groups shortened to "::"), with
 *     IPv4-mapped addresses as ::ffff:a.b.c.d (RFC 5952 section 5).
 *
 * Thread context: pure functions; a gn_multiaddr is immutable once built.
 */
#include "golemnet/multiaddr.h"

#include "golemnet/multiformats.h"
#include "gni.h"
#include "gni_platform.h" /* gni_inet_pton */

#include <sodium.h>
#include <stdio.h>
#include <string.h>

enum ma_kind {
    MA_K_NONE,     /* no value */
    MA_K_IP4,      /* 4 bytes */
    MA_K_IP6,      /* 16 bytes */
    MA_K_PORT,     /* 2 bytes, big endian */
    MA_K_MEMORY,   /* 8 bytes, big endian */
    MA_K_CIDR,     /* 1 byte, decimal */
    MA_K_ONION,    /* 12 bytes: 10-byte hash + port, "<base32>:<port>" */
    MA_K_ONION3,   /* 37 bytes: 35-byte key + port */
    MA_K_DNS,      /* length-prefixed name without '/' (dns*, sni, ip6zone) */
    MA_K_P2P,      /* length-prefixed peer-ID multihash */
    MA_K_UNIX,     /* length-prefixed absolute path */
    MA_K_PCT,      /* length-prefixed bytes, percent-encoded string (http-path) */
    MA_K_CERTHASH, /* length-prefixed multihash, multibase string */
    MA_K_GARLIC64, /* length-prefixed I2P destination, I2P base64 */
    MA_K_GARLIC32  /* length-prefixed I2P hash, base32 */
};

typedef struct ma_proto {
    uint64_t code;
    const char *name;
    enum ma_kind kind;
} ma_proto;

/* Every row of protocols.csv (multiformats/multiaddr 9b7b3fab, 2025-04-28), in its order;
 * then the multicodec table's multiaddr rows that the csv lacks. */
static const ma_proto ma_protos[] = {
    {GN_MA_IP4, "ip4", MA_K_IP4},
    {GN_MA_TCP, "tcp", MA_K_PORT},
    {GN_MA_UDP, "udp", MA_K_PORT},
    {GN_MA_DCCP, "dccp", MA_K_PORT},
    {GN_MA_IP6, "ip6", MA_K_IP6},
    {GN_MA_IP6ZONE, "ip6zone", MA_K_DNS},
    {GN_MA_IPCIDR, "ipcidr", MA_K_CIDR},
    {GN_MA_DNS, "dns", MA_K_DNS},
    {GN_MA_DNS4, "dns4", MA_K_DNS},
    {GN_MA_DNS6, "dns6", MA_K_DNS},
    {GN_MA_DNSADDR, "dnsaddr", MA_K_DNS},
    {GN_MA_SCTP, "sctp", MA_K_PORT},
    {GN_MA_UDT, "udt", MA_K_NONE},
    {GN_MA_UTP, "utp", MA_K_NONE},
    {GN_MA_UNIX, "unix", MA_K_UNIX},
    {GN_MA_P2P, "p2p", MA_K_P2P},
    {GN_MA_ONION, "onion", MA_K_ONION},
    {GN_MA_ONION3, "onion3", MA_K_ONION3},
    {GN_MA_GARLIC64, "garlic64", MA_K_GARLIC64},
    {GN_MA_GARLIC32, "garlic32", MA_K_GARLIC32},
    {GN_MA_TLS, "tls", MA_K_NONE},
    {GN_MA_SNI, "sni", MA_K_DNS},
    {GN_MA_NOISE, "noise", MA_K_NONE},
    {GN_MA_QUIC, "quic", MA_K_NONE},
    {GN_MA_QUIC_V1, "quic-v1", MA_K_NONE},
    {GN_MA_WEBTRANSPORT, "webtransport", MA_K_NONE},
    {GN_MA_CERTHASH, "certhash", MA_K_CERTHASH},
    {GN_MA_HTTP, "http", MA_K_NONE},
    {GN_MA_HTTP_PATH, "http-path", MA_K_PCT},
    {GN_MA_HTTPS, "https", MA_K_NONE},
    {GN_MA_WS, "ws", MA_K_NONE},
    {GN_MA_WSS, "wss", MA_K_NONE},
    {GN_MA_P2P_WEBSOCKET_STAR, "p2p-websocket-star", MA_K_NONE},
    {GN_MA_P2P_STARDUST, "p2p-stardust", MA_K_NONE},
    {GN_MA_P2P_WEBRTC_STAR, "p2p-webrtc-star", MA_K_NONE},
    {GN_MA_P2P_WEBRTC_DIRECT, "p2p-webrtc-direct", MA_K_NONE},
    {GN_MA_WEBRTC_DIRECT, "webrtc-direct", MA_K_NONE},
    {GN_MA_WEBRTC, "webrtc", MA_K_NONE},
    {GN_MA_P2P_CIRCUIT, "p2p-circuit", MA_K_NONE},
    {GN_MA_MEMORY, "memory", MA_K_MEMORY},
    /* not in protocols.csv: the multicodec table's multiaddr rows */
    {GN_MA_PLAINTEXTV2, "plaintextv2", MA_K_NONE},
};

/* Longest DNS name value accepted (RFC 1035 section 2.3.4: 255 octets). */
#define MA_DNS_MAX 255

/* Binary form; @bytes holds @len bytes with @count components. */
struct gn_multiaddr {
    size_t len;
    size_t count;
    uint8_t bytes[];
};

/* ---------------------------------------------------------- protocol table */

static const ma_proto *ma_proto_by_code(uint64_t code)
{
    for (size_t i = 0; i < GNI_ARRAY_LEN(ma_protos); i++)
        if (ma_protos[i].code == code)
            return &ma_protos[i];
    return NULL;
}

static const ma_proto *ma_proto_by_name(const char *name, size_t len)
{
    for (size_t i = 0; i < GNI_ARRAY_LEN(ma_protos); i++)
        if (strlen(ma_protos[i].name) == len && memcmp(ma_protos[i].name, name, len) == 0)
            return &ma_protos[i];
    if (len == 4 && memcmp(name, "ipfs", 4) == 0) /* protocols.csv: alias of p2p */
        return ma_proto_by_code(GN_MA_P2P);
    return NULL;
}

int64_t gn_ma_protocol_code(const char *name)
{
    if (name == NULL)
        return GN_ENOTFOUND;
    const ma_proto *p = ma_proto_by_name(name, strlen(name));
    return p ? (int64_t)p->code : GN_ENOTFOUND;
}

const char *gn_ma_protocol_name(uint64_t code)
{
    const ma_proto *p = ma_proto_by_code(code);
    return p ? p->name : NULL;
}

static size_t ma_fixed_size(enum ma_kind k)
{
    switch (k) {
    case MA_K_IP4:
        return 4;
    case MA_K_IP6:
        return 16;
    case MA_K_PORT:
        return 2;
    case MA_K_MEMORY:
        return 8;
    case MA_K_CIDR:
        return 1;
    case MA_K_ONION:
        return 12;
    case MA_K_ONION3:
        return 37;
    default:
        return 0;
    }
}

static bool ma_kind_is_var(enum ma_kind k)
{
    return k == MA_K_DNS || k == MA_K_P2P || k == MA_K_UNIX || k == MA_K_PCT ||
           k == MA_K_CERTHASH || k == MA_K_GARLIC64 || k == MA_K_GARLIC32;
}

/* ------------------------------------------------------ value validation */

/* A p2p value must be an identity or sha2-256 peer-ID multihash. */
static bool ma_valid_peer_mh(const uint8_t *v, size_t len)
{
    gn_multihash mh;
    if (gn_multihash_decode(v, len, &mh) != 0)
        return false;
    if (mh.code == GN_MH_SHA2_256)
        return mh.digest_len == 32;
    if (mh.code == GN_MH_IDENTITY)
        return mh.digest_len > 0;
    return false;
}

static bool ma_valid_value(enum ma_kind k, const uint8_t *v, size_t len)
{
    switch (k) {
    case MA_K_DNS:
        if (len == 0 || len > MA_DNS_MAX)
            return false;
        for (size_t i = 0; i < len; i++)
            if (v[i] == '/' || v[i] == '\0')
                return false;
        return true;
    case MA_K_UNIX:
        if (len == 0 || v[0] != '/')
            return false;
        return memchr(v, '\0', len) == NULL;
    case MA_K_P2P:
        return ma_valid_peer_mh(v, len);
    case MA_K_PCT:
        return len > 0;
    case MA_K_CERTHASH: {
        gn_multihash mh;
        return gn_multihash_decode(v, len, &mh) == 0;
    }
    case MA_K_GARLIC64:
        /* an I2P destination: at least 386 bytes (go-multiaddr's bound) */
        return len >= 386;
    case MA_K_GARLIC32:
        /* a 32-byte b32 hash, or an encrypted leaseset key (35+ bytes) */
        return len == 32 || len >= 35;
    case MA_K_ONION:
    case MA_K_ONION3:
        /* the port (last 2 bytes) is 1..65535 */
        return len == ma_fixed_size(k) && (v[len - 2] | v[len - 1]) != 0;
    default:
        return len == ma_fixed_size(k);
    }
}

/*
 * Reads one binary component at @p (@len bytes left) into *@c and its byte
 * size into *@used. Returns 0 or GN_EPARSE (bad varint, unknown code,
 * truncated or invalid value).
 */
static int ma_read_component(const uint8_t *p, size_t len, gn_ma_component *c, size_t *used)
{
    uint64_t code, vlen;
    int a = gn_varint_decode(p, len, &code);
    if (a < 0)
        return GN_EPARSE;
    const ma_proto *pr = ma_proto_by_code(code);
    if (pr == NULL)
        return GN_EPARSE;
    size_t off = (size_t)a;
    if (ma_kind_is_var(pr->kind)) {
        int b = gn_varint_decode(p + off, len - off, &vlen);
        if (b < 0)
            return GN_EPARSE;
        off += (size_t)b;
        if (vlen > len - off) /* bounded by the input before use */
            return GN_EPARSE;
    } else {
        vlen = ma_fixed_size(pr->kind);
        if (vlen > len - off)
            return GN_EPARSE;
    }
    if (!ma_valid_value(pr->kind, p + off, (size_t)vlen))
        return GN_EPARSE;
    c->code = code;
    c->name = pr->name;
    c->value = p + off;
    c->value_len = (size_t)vlen;
    *used = off + (size_t)vlen;
    return 0;
}

/*
 * Validates a whole binary multiaddr and counts its components. Returns the
 * count, GN_EPARSE or GN_ETOOBIG (too many components).
 */
static int ma_validate(const uint8_t *p, size_t len)
{
    size_t off = 0, n = 0;
    while (off < len) {
        gn_ma_component c;
        size_t used;
        if (n >= GN_MA_MAX_COMPONENTS)
            return GN_ETOOBIG;
        int rc = ma_read_component(p + off, len - off, &c, &used);
        if (rc < 0)
            return rc;
        off += used;
        n++;
    }
    return (int)n;
}

static int ma_new(const uint8_t *bytes, size_t len, size_t count, gn_multiaddr **out)
{
    gn_multiaddr *ma = gn_malloc(sizeof *ma + len);
    if (ma == NULL)
        return GN_ENOMEM;
    ma->len = len;
    ma->count = count;
    memcpy(ma->bytes, bytes, len);
    *out = ma;
    return 0;
}

/* ------------------------------------------------------------ from bytes */

int gn_multiaddr_from_bytes(const uint8_t *bytes, size_t len, gn_multiaddr **out)
{
    if (out == NULL || (bytes == NULL && len > 0))
        return GN_EINVAL;
    if (len == 0)
        return GN_EPARSE;
    if (len > GN_MA_MAX_BYTES)
        return GN_ETOOBIG;
    int n = ma_validate(bytes, len);
    if (n < 0)
        return n;
    return ma_new(bytes, len, (size_t)n, out);
}

/* ------------------------------------------------------------ from string */

/* Output under construction, bounded by GN_MA_MAX_BYTES. */
typedef struct ma_wbuf {
    uint8_t b[GN_MA_MAX_BYTES];
    size_t len;
} ma_wbuf;

static int ma_put(ma_wbuf *w, const void *p, size_t n)
{
    if (n > sizeof w->b - w->len)
        return GN_ETOOBIG;
    memcpy(w->b + w->len, p, n);
    w->len += n;
    return 0;
}

static int ma_put_varint(ma_wbuf *w, uint64_t v)
{
    uint8_t tmp[GN_VARINT_MAX_LEN];
    int n = gn_varint_encode(v, tmp, sizeof tmp);
    if (n < 0)
        return GN_EPARSE;
    return ma_put(w, tmp, (size_t)n);
}

/* Decimal digits only (no sign, no spaces), at most @max. */
static int ma_parse_uint(const char *s, size_t len, uint64_t max, uint64_t *v)
{
    uint64_t acc = 0;
    if (len == 0 || len > 20)
        return GN_EPARSE;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return GN_EPARSE;
        unsigned d = (unsigned)(s[i] - '0');
        if (acc > (max - d) / 10)
            return GN_EPARSE;
        acc = acc * 10 + d;
    }
    *v = acc;
    return 0;
}

/*
 * Peer ID string -> multihash bytes (libp2p/specs peer-ids.md "Decoding"):
 * "1..." or "Qm..." is bare base58btc; otherwise a multibase CIDv1 with the
 * libp2p-key codec. Returns the multihash length or GN_EPARSE.
 */
static int ma_parse_peer(const char *s, size_t len, uint8_t *out, size_t out_len)
{
    if (len == 0)
        return GN_EPARSE;
    if (s[0] == '1' || (len >= 2 && s[0] == 'Q' && s[1] == 'm')) {
        int n = gn_base58btc_decode(s, len, out, out_len);
        if (n < 0 || !ma_valid_peer_mh(out, (size_t)n))
            return GN_EPARSE;
        return n;
    }
    uint8_t cid[GN_MA_MAX_BYTES];
    int n = gn_multibase_decode(s, len, NULL, cid, sizeof cid);
    if (n < 0)
        return GN_EPARSE;
    uint64_t codec;
    gn_multihash mh;
    if (gn_cid_decode(cid, (size_t)n, &codec, &mh) != 0 || codec != GN_CODEC_LIBP2P_KEY)
        return GN_EPARSE;
    /* The multihash is the tail of the CID, from its code varint on (the
     * decoder accepted only minimal varints, so their lengths are known). */
    const uint8_t *mh_start = mh.digest - gn_varint_len(mh.digest_len) - gn_varint_len(mh.code);
    size_t mh_len = (size_t)(cid + n - mh_start);
    if (mh_len > out_len || !ma_valid_peer_mh(mh_start, mh_len))
        return GN_EPARSE;
    memcpy(out, mh_start, mh_len);
    return (int)mh_len;
}

/* ------------------------------------------------------ value encodings */

static int ma_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Percent-decodes one path segment (RFC 3986 section 2.1): "%XX" is a byte,
 * any other character stands for itself ('/' cannot occur: it ended the
 * segment). Returns the byte count, GN_EPARSE (a '%' not followed by two hex
 * digits) or GN_ETOOBIG.
 */
static int ma_pct_decode(const char *s, size_t len, uint8_t *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            int h, l;
            if (len - i < 3)
                return GN_EPARSE;
            if ((h = ma_hexval(s[i + 1])) < 0 || (l = ma_hexval(s[i + 2])) < 0)
                return GN_EPARSE;
            c = (h << 4) | l;
            i += 2;
        }
        if (o >= cap)
            return GN_ETOOBIG;
        out[o++] = (uint8_t)c;
    }
    return (int)o;
}

/*
 * Characters left as they are in a percent-encoded segment: RFC 3986
 * unreserved plus "$&+=:@" (what go-multiaddr's http-path writes, Go's
 * url.PathEscape set); everything else, '/' and '%' included, becomes %XX.
 */
static bool ma_pct_plain(uint8_t c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != 0 && strchr("-._~$&+=:@", c) != NULL;
}

/* Percent-encodes @len bytes into @out (NUL-terminated); length or GN_ENOSPC. */
static int ma_pct_encode(const uint8_t *v, size_t len, char *out, size_t out_len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        size_t need = ma_pct_plain(v[i]) ? 1 : 3;
        if (need >= out_len - o)
            return GN_ENOSPC;
        if (need == 1) {
            out[o++] = (char)v[i];
        } else {
            out[o++] = '%';
            out[o++] = hex[v[i] >> 4];
            out[o++] = hex[v[i] & 15];
        }
    }
    out[o] = '\0';
    return (int)o;
}

/* base64 of libsodium's @variant; returns the byte count or GN_EPARSE. */
static int ma_b64_decode(const char *s, size_t len, int variant, uint8_t *out, size_t cap)
{
    size_t n = 0;
    if (sodium_base642bin(out, cap, s, len, NULL, &n, NULL, variant) != 0)
        return GN_EPARSE;
    return (int)n;
}

/* base64 of @variant into @out, NUL-terminated; length or GN_ENOSPC. */
static int ma_b64_encode(const uint8_t *v, size_t len, int variant, char *out, size_t out_len)
{
    if (sodium_base64_ENCODED_LEN(len, variant) > out_len)
        return GN_ENOSPC;
    sodium_bin2base64(out, out_len, v, len, variant);
    return (int)strlen(out);
}

/* I2P's base64 alphabet: '-' and '~' instead of '+' and '/', with padding. */
static int ma_garlic64_decode(const char *s, size_t len, uint8_t *out, size_t cap)
{
    char tmp[GN_MA_MAX_STRLEN];
    if (len >= sizeof tmp)
        return GN_EPARSE;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '+' || s[i] == '/')
            return GN_EPARSE;
        tmp[i] = s[i] == '-' ? '+' : s[i] == '~' ? '/' : s[i];
    }
    return ma_b64_decode(tmp, len, sodium_base64_VARIANT_ORIGINAL, out, cap);
}

/*
 * A multibase string to bytes: base64url ('u', 'U' padded), base64 ('m',
 * 'M' padded), else what gn_multibase_decode() knows (base32 'b',
 * base58btc 'z'). Returns the byte count or GN_EPARSE.
 */
static int ma_multibase_decode(const char *s, size_t len, uint8_t *out, size_t cap)
{
    if (len < 2)
        return GN_EPARSE;
    int variant;
    switch (s[0]) {
    case 'u':
        variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
        break;
    case 'U':
        variant = sodium_base64_VARIANT_URLSAFE;
        break;
    case 'm':
        variant = sodium_base64_VARIANT_ORIGINAL_NO_PADDING;
        break;
    case 'M':
        variant = sodium_base64_VARIANT_ORIGINAL;
        break;
    default: {
        int n = gn_multibase_decode(s, len, NULL, out, cap);
        return n < 0 ? GN_EPARSE : n;
    }
    }
    return ma_b64_decode(s + 1, len - 1, variant, out, cap);
}

/* "<base32 of @hash_len bytes>:<port 1..65535>" (onion, onion3). */
static int ma_onion_parse(const char *s, size_t len, size_t hash_len, uint8_t *out)
{
    const char *colon = memchr(s, ':', len);
    size_t b32_len = (hash_len * 8 + 4) / 5;
    if (colon == NULL || (size_t)(colon - s) != b32_len)
        return GN_EPARSE;
    char low[64];
    for (size_t i = 0; i < b32_len; i++)
        low[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
    if (gn_base32_decode(low, b32_len, out, hash_len) != (int)hash_len)
        return GN_EPARSE;
    uint64_t port;
    if (ma_parse_uint(colon + 1, len - b32_len - 1, 65535, &port) < 0 || port == 0)
        return GN_EPARSE;
    out[hash_len] = (uint8_t)(port >> 8);
    out[hash_len + 1] = (uint8_t)port;
    return (int)hash_len + 2;
}

/* Encodes the value string @s (@len bytes) of protocol @pr into @w. */
static int ma_put_value(ma_wbuf *w, const ma_proto *pr, const char *s, size_t len)
{
    char tmp[64];
    uint8_t bin[GN_MA_MAX_BYTES];
    uint64_t v;
    int n, rc0;
    switch (pr->kind) {
    case MA_K_IP4:
    case MA_K_IP6:
        if (len >= sizeof tmp)
            return GN_EPARSE;
        memcpy(tmp, s, len);
        tmp[len] = '\0';
        /* inet_pton may drop an IPv6 "%zone" suffix; a zone is /ip6zone */
        if (memchr(tmp, '%', len) != NULL)
            return GN_EPARSE;
        if (gni_inet_pton(pr->kind == MA_K_IP6, tmp, bin) != 0)
            return GN_EPARSE;
        return ma_put(w, bin, pr->kind == MA_K_IP4 ? 4 : 16);
    case MA_K_PORT:
        if (ma_parse_uint(s, len, 65535, &v) < 0)
            return GN_EPARSE;
        bin[0] = (uint8_t)(v >> 8);
        bin[1] = (uint8_t)v;
        return ma_put(w, bin, 2);
    case MA_K_MEMORY:
        if (ma_parse_uint(s, len, UINT64_MAX, &v) < 0)
            return GN_EPARSE;
        for (int i = 0; i < 8; i++)
            bin[i] = (uint8_t)(v >> (56 - 8 * i));
        return ma_put(w, bin, 8);
    case MA_K_CIDR:
        if (ma_parse_uint(s, len, 255, &v) < 0)
            return GN_EPARSE;
        bin[0] = (uint8_t)v;
        return ma_put(w, bin, 1);
    case MA_K_ONION:
    case MA_K_ONION3:
        n = ma_onion_parse(s, len, pr->kind == MA_K_ONION ? 10 : 35, bin);
        if (n < 0)
            return n;
        return ma_put(w, bin, (size_t)n);
    case MA_K_UNIX:
        if (len > 0 && s[0] == '%') {
            /* the percent-encoded one-segment form "%2Ftmp%2Fx.sock" */
            n = ma_pct_decode(s, len, bin, sizeof bin);
            if (n < 0)
                return n;
            s = (const char *)bin;
            len = (size_t)n;
        }
        /* fall through */
    case MA_K_DNS:
        if (!ma_valid_value(pr->kind, (const uint8_t *)s, len))
            return GN_EPARSE;
        if (len > GN_MA_MAX_BYTES)
            return GN_ETOOBIG;
        if ((n = ma_put_varint(w, len)) < 0)
            return n;
        return ma_put(w, s, len);
    case MA_K_PCT:
    case MA_K_CERTHASH:
    case MA_K_GARLIC64:
    case MA_K_GARLIC32:
        if (pr->kind == MA_K_PCT)
            n = ma_pct_decode(s, len, bin, sizeof bin);
        else if (pr->kind == MA_K_CERTHASH)
            n = ma_multibase_decode(s, len, bin, sizeof bin);
        else if (pr->kind == MA_K_GARLIC64)
            n = ma_garlic64_decode(s, len, bin, sizeof bin);
        else
            n = gn_base32_decode(s, len, bin, sizeof bin);
        if (n < 0)
            return n == GN_ETOOBIG ? GN_ETOOBIG : GN_EPARSE;
        if (!ma_valid_value(pr->kind, bin, (size_t)n))
            return GN_EPARSE;
        if ((rc0 = ma_put_varint(w, (uint64_t)n)) < 0)
            return rc0;
        return ma_put(w, bin, (size_t)n);
    case MA_K_P2P:
        n = ma_parse_peer(s, len, bin, sizeof bin);
        if (n < 0)
            return n;
        int rc = ma_put_varint(w, (uint64_t)n);
        if (rc < 0)
            return rc;
        return ma_put(w, bin, (size_t)n);
    case MA_K_NONE:
    default:
        return GN_EINTERNAL;
    }
}

/* Records where and why parsing failed (when the caller asked). */
static int ma_bad(gn_ma_parse_error *err, int rc, gn_ma_parse_reason reason, size_t offset,
                  size_t len, const ma_proto *pr)
{
    if (err != NULL) {
        err->reason = reason;
        err->offset = offset;
        err->len = len;
        err->protocol = pr ? pr->name : NULL;
    }
    return rc;
}

int gn_multiaddr_parse(const char *str, gn_multiaddr **out)
{
    return gn_multiaddr_parse_ex(str, out, NULL);
}

int gn_multiaddr_parse_ex(const char *str, gn_multiaddr **out, gn_ma_parse_error *err)
{
    (void)ma_bad(err, 0, GN_MA_PARSE_OK, 0, 0, NULL);
    if (str == NULL || out == NULL)
        return GN_EINVAL;
    /* Bounded scan: never read past GN_MA_MAX_STRLEN bytes. */
    size_t slen = 0;
    while (slen < GN_MA_MAX_STRLEN && str[slen] != '\0')
        slen++;
    if (slen >= GN_MA_MAX_STRLEN)
        return ma_bad(err, GN_ETOOBIG, GN_MA_PARSE_TOO_LONG, 0, slen, NULL);
    if (slen == 0 || str[0] != '/')
        return ma_bad(err, GN_EPARSE, GN_MA_PARSE_SYNTAX, 0, slen, NULL);

    ma_wbuf wb, *w = &wb;
    w->len = 0;
    size_t pos = 0, count = 0;
    int rc = 0;
    while (pos < slen) {
        /* str[pos] == '/' here: the component spans [pos, its value's end). */
        size_t ns = pos + 1, ne = ns;
        while (ne < slen && str[ne] != '/')
            ne++;
        if (ne == ns) {
            /* Empty name: allowed only as one trailing '/' after a component. */
            if (ns == slen && count > 0)
                rc = 0;
            else
                rc = ma_bad(err, GN_EPARSE, GN_MA_PARSE_SYNTAX, pos, 1, NULL);
            break;
        }
        const ma_proto *pr = ma_proto_by_name(str + ns, ne - ns);
        if (pr == NULL) {
            rc = ma_bad(err, GN_EPARSE, GN_MA_PARSE_PROTOCOL, pos, ne - pos, NULL);
            break;
        }
        if (count >= GN_MA_MAX_COMPONENTS) {
            rc = ma_bad(err, GN_ETOOBIG, GN_MA_PARSE_TOO_LONG, pos, ne - pos, pr);
            break;
        }
        count++;
        if ((rc = ma_put_varint(w, pr->code)) < 0) {
            rc = ma_bad(err, rc, GN_MA_PARSE_TOO_LONG, pos, ne - pos, pr);
            break;
        }
        if (pr->kind == MA_K_NONE) {
            pos = ne;
            continue;
        }
        if (ne >= slen) {
            rc = ma_bad(err, GN_EPARSE, GN_MA_PARSE_MISSING_VALUE, pos, ne - pos, pr);
            break;
        }
        size_t vs, ve;
        if (pr->kind == MA_K_UNIX && !(slen - ne > 3 && str[ne + 1] == '%' &&
                                       str[ne + 2] == '2' && (str[ne + 3] | 0x20) == 'f')) {
            vs = ne; /* the older form: the rest, keeping its leading '/' */
            ve = slen;
        } else {
            vs = ne + 1;
            ve = vs;
            while (ve < slen && str[ve] != '/')
                ve++;
            if (ve == vs) {
                rc = ma_bad(err, GN_EPARSE, GN_MA_PARSE_MISSING_VALUE, pos, ve - pos, pr);
                break;
            }
        }
        if ((rc = ma_put_value(w, pr, str + vs, ve - vs)) < 0) {
            rc = ma_bad(err, rc,
                        rc == GN_ETOOBIG ? GN_MA_PARSE_TOO_LONG : GN_MA_PARSE_VALUE, pos,
                        ve - pos, pr);
            break;
        }
        pos = ve;
    }
    if (rc == 0 && count == 0)
        rc = ma_bad(err, GN_EPARSE, GN_MA_PARSE_SYNTAX, 0, slen, NULL);
    if (rc == 0) {
        /* Re-check the result as a binary multiaddr (value rules, unix last). */
        int n = ma_validate(w->b, w->len);
        if (n < 0)
            rc = ma_bad(err, n, GN_MA_PARSE_SYNTAX, 0, slen, NULL);
        else if ((size_t)n != count)
            rc = GN_EINTERNAL;
        else
            rc = ma_new(w->b, w->len, count, out);
    }
    return rc;
}

/* --------------------------------------------------------------- access */

void gn_multiaddr_free(gn_multiaddr *ma)
{
    gn_free(ma);
}

int gn_multiaddr_dup(const gn_multiaddr *ma, gn_multiaddr **out)
{
    if (ma == NULL || out == NULL)
        return GN_EINVAL;
    return ma_new(ma->bytes, ma->len, ma->count, out);
}

gn_slice gn_multiaddr_bytes(const gn_multiaddr *ma)
{
    if (ma == NULL)
        return gn_slice_of(NULL, 0);
    return gn_slice_of(ma->bytes, ma->len);
}

bool gn_multiaddr_equal(const gn_multiaddr *a, const gn_multiaddr *b)
{
    if (a == b)
        return true;
    if (a == NULL || b == NULL)
        return false;
    return a->len == b->len && memcmp(a->bytes, b->bytes, a->len) == 0;
}

size_t gn_multiaddr_count(const gn_multiaddr *ma)
{
    return ma ? ma->count : 0;
}

/* Component @idx and its byte offset; the multiaddr was validated on creation. */
static int ma_get(const gn_multiaddr *ma, size_t idx, gn_ma_component *c, size_t *offset)
{
    size_t off = 0;
    for (size_t i = 0; i < ma->count; i++) {
        gn_ma_component cur;
        size_t used;
        if (ma_read_component(ma->bytes + off, ma->len - off, &cur, &used) < 0)
            return GN_EINTERNAL;
        if (i == idx) {
            if (c)
                *c = cur;
            if (offset)
                *offset = off;
            return 0;
        }
        off += used;
    }
    return GN_ERANGE;
}

int gn_multiaddr_component(const gn_multiaddr *ma, size_t idx, gn_ma_component *c)
{
    if (ma == NULL || c == NULL)
        return GN_EINVAL;
    if (idx >= ma->count)
        return GN_ERANGE;
    return ma_get(ma, idx, c, NULL);
}

int gn_multiaddr_find(const gn_multiaddr *ma, uint64_t code, gn_ma_component *c)
{
    if (ma == NULL)
        return GN_EINVAL;
    size_t off = 0;
    for (size_t i = 0; i < ma->count; i++) {
        gn_ma_component cur;
        size_t used;
        if (ma_read_component(ma->bytes + off, ma->len - off, &cur, &used) < 0)
            return GN_EINTERNAL;
        if (cur.code == code) {
            if (c)
                *c = cur;
            return (int)i;
        }
        off += used;
    }
    return GN_ENOTFOUND;
}

/* -------------------------------------------------------------- printing */

/* RFC 5952 text for 16 address bytes; @out has at least 46 bytes. */
static size_t ma_ip6_string(const uint8_t *a, char *out, size_t out_len)
{
    static const uint8_t mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    int n;
    if (memcmp(a, mapped_prefix, 12) == 0) {
        /* RFC 5952 section 5: IPv4-mapped addresses keep the dotted quad. */
        n = snprintf(out, out_len, "::ffff:%u.%u.%u.%u", a[12], a[13], a[14], a[15]);
        return n > 0 ? (size_t)n : 0;
    }
    unsigned g[8];
    for (int i = 0; i < 8; i++)
        g[i] = ((unsigned)a[2 * i] << 8) | a[2 * i + 1];
    /* First longest run of zero groups, length >= 2 (RFC 5952 4.2.2, 4.2.3). */
    int best = -1, best_len = 0;
    for (int i = 0; i < 8;) {
        if (g[i] != 0) {
            i++;
            continue;
        }
        int j = i;
        while (j < 8 && g[j] == 0)
            j++;
        if (j - i > best_len) {
            best = i;
            best_len = j - i;
        }
        i = j;
    }
    if (best_len < 2)
        best = -1;
    size_t o = 0;
    for (int i = 0; i < 8; i++) {
        if (i == best) {
            o += (size_t)snprintf(out + o, out_len - o, "::");
            i += best_len - 1;
            continue;
        }
        bool after_gap = best >= 0 && i == best + best_len;
        o += (size_t)snprintf(out + o, out_len - o, "%s%x", (i == 0 || after_gap) ? "" : ":",
                              g[i]);
    }
    return o;
}

/* Writes @n bytes to @out at *@o, keeping room for the NUL. */
static int ma_emit(char *out, size_t out_len, size_t *o, const char *s, size_t n)
{
    if (n >= out_len - *o)
        return GN_ENOSPC;
    memcpy(out + *o, s, n);
    *o += n;
    out[*o] = '\0';
    return 0;
}

int gn_ma_component_value_string(const gn_ma_component *c, char *out, size_t out_len)
{
    if (c == NULL || out == NULL || (c->value == NULL && c->value_len > 0))
        return GN_EINVAL;
    if (out_len == 0)
        return GN_ENOSPC;
    out[0] = '\0';
    const ma_proto *pr = ma_proto_by_code(c->code);
    if (pr == NULL)
        return GN_EINVAL;
    if (pr->kind != MA_K_NONE && !ma_valid_value(pr->kind, c->value, c->value_len))
        return GN_EINVAL;
    const uint8_t *v = c->value;
    char tmp[64];
    size_t n = 0, o = 0;
    switch (pr->kind) {
    case MA_K_NONE:
        return 0;
    case MA_K_IP4:
        n = (size_t)snprintf(tmp, sizeof tmp, "%u.%u.%u.%u", v[0], v[1], v[2], v[3]);
        break;
    case MA_K_IP6:
        n = ma_ip6_string(v, tmp, sizeof tmp);
        break;
    case MA_K_PORT:
        n = (size_t)snprintf(tmp, sizeof tmp, "%u", ((unsigned)v[0] << 8) | v[1]);
        break;
    case MA_K_MEMORY: {
        uint64_t x = 0;
        for (int i = 0; i < 8; i++)
            x = (x << 8) | v[i];
        n = (size_t)snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)x);
        break;
    }
    case MA_K_DNS:
    case MA_K_UNIX:
        if (ma_emit(out, out_len, &o, (const char *)v, c->value_len) < 0) {
            out[0] = '\0';
            return GN_ENOSPC;
        }
        return (int)o;
    case MA_K_P2P: {
        int rc = gn_base58btc_encode(v, c->value_len, out, out_len);
        if (rc < 0)
            out[0] = '\0';
        return rc;
    }
    case MA_K_CIDR:
        n = (size_t)snprintf(tmp, sizeof tmp, "%u", v[0]);
        break;
    case MA_K_ONION:
    case MA_K_ONION3: {
        size_t hl = c->value_len - 2;
        int b = gn_base32_encode(v, hl, tmp, sizeof tmp);
        if (b < 0)
            return GN_EINTERNAL;
        n = (size_t)b;
        n += (size_t)snprintf(tmp + n, sizeof tmp - n, ":%u", ((unsigned)v[hl] << 8) | v[hl + 1]);
        break;
    }
    case MA_K_PCT:
    case MA_K_CERTHASH:
    case MA_K_GARLIC64:
    case MA_K_GARLIC32: {
        int rc;
        if (pr->kind == MA_K_PCT) {
            rc = ma_pct_encode(v, c->value_len, out, out_len);
        } else if (pr->kind == MA_K_CERTHASH) {
            /* multibase base64url, as go- and js-multiaddr print it */
            if (out_len < 2)
                return GN_ENOSPC;
            out[0] = 'u';
            rc = ma_b64_encode(v, c->value_len, sodium_base64_VARIANT_URLSAFE_NO_PADDING,
                               out + 1, out_len - 1);
            rc = rc < 0 ? rc : rc + 1;
        } else if (pr->kind == MA_K_GARLIC64) {
            rc = ma_b64_encode(v, c->value_len, sodium_base64_VARIANT_ORIGINAL, out, out_len);
            for (int i = 0; i < rc; i++)
                out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '~' : out[i];
        } else {
            rc = gn_base32_encode(v, c->value_len, out, out_len);
        }
        if (rc < 0) {
            out[0] = '\0';
            return GN_ENOSPC;
        }
        return rc;
    }
    }
    if (ma_emit(out, out_len, &o, tmp, n) < 0) {
        out[0] = '\0';
        return GN_ENOSPC;
    }
    return (int)o;
}

int gn_multiaddr_to_string(const gn_multiaddr *ma, char *out, size_t out_len)
{
    if (ma == NULL || out == NULL)
        return GN_EINVAL;
    if (out_len == 0)
        return GN_ENOSPC;
    out[0] = '\0';
    size_t o = 0, off = 0;
    for (size_t i = 0; i < ma->count; i++) {
        gn_ma_component c;
        size_t used;
        if (ma_read_component(ma->bytes + off, ma->len - off, &c, &used) < 0) {
            out[0] = '\0';
            return GN_EINTERNAL;
        }
        off += used;
        if (ma_emit(out, out_len, &o, "/", 1) < 0 ||
            ma_emit(out, out_len, &o, c.name, strlen(c.name)) < 0)
            goto nospc;
        const ma_proto *pr = ma_proto_by_code(c.code);
        if (pr->kind == MA_K_NONE)
            continue;
        int n;
        if (pr->kind == MA_K_UNIX) {
            /* the older rest-of-string form when it reads back the same */
            if (i + 1 == ma->count && memchr(c.value, '%', c.value_len) == NULL) {
                n = gn_ma_component_value_string(&c, out + o, out_len - o);
            } else {
                if (ma_emit(out, out_len, &o, "/", 1) < 0)
                    goto nospc;
                n = ma_pct_encode(c.value, c.value_len, out + o, out_len - o);
            }
            if (n < 0)
                goto nospc;
            o += (size_t)n;
            continue;
        }
        if (ma_emit(out, out_len, &o, "/", 1) < 0)
            goto nospc;
        n = gn_ma_component_value_string(&c, out + o, out_len - o);
        if (n < 0)
            goto nospc;
        o += (size_t)n;
    }
    return (int)o;
nospc:
    out[0] = '\0';
    return GN_ENOSPC;
}

/* ---------------------------------------------------------- composition */

int gn_multiaddr_encapsulate(const gn_multiaddr *a, const gn_multiaddr *b, gn_multiaddr **out)
{
    if (a == NULL || b == NULL || out == NULL)
        return GN_EINVAL;
    if (a->len + b->len > GN_MA_MAX_BYTES || a->count + b->count > GN_MA_MAX_COMPONENTS)
        return GN_ETOOBIG;
    gn_multiaddr *ma = gn_malloc(sizeof *ma + a->len + b->len);
    if (ma == NULL)
        return GN_ENOMEM;
    ma->len = a->len + b->len;
    ma->count = a->count + b->count;
    memcpy(ma->bytes, a->bytes, a->len);
    memcpy(ma->bytes + a->len, b->bytes, b->len);
    *out = ma;
    return 0;
}

int gn_multiaddr_decapsulate_code(const gn_multiaddr *ma, uint64_t code, gn_multiaddr **out)
{
    if (ma == NULL || out == NULL)
        return GN_EINVAL;
    size_t found_idx = 0, found_off = 0, off = 0;
    bool found = false;
    for (size_t i = 0; i < ma->count; i++) {
        gn_ma_component c;
        size_t used;
        if (ma_read_component(ma->bytes + off, ma->len - off, &c, &used) < 0)
            return GN_EINTERNAL;
        if (c.code == code) {
            found = true;
            found_idx = i;
            found_off = off;
        }
        off += used;
    }
    if (!found)
        return GN_ENOTFOUND;
    if (found_idx == 0)
        return GN_EPARSE;
    return ma_new(ma->bytes, found_off, found_idx, out);
}
