/*
 * golemnet - multiaddr: string <-> binary conversion and component access.
 *
 * Spec: multiformats/multiaddr README ("Encoding" and "Specification"),
 * protocols.csv and the multicodec table (codes), libp2p/specs
 * peer-ids/peer-ids.md (p2p value string forms).
 *
 * Binary form: a sequence of <code varint><value>, where the value has a
 * fixed size for ip4 (4), ip6 (16), tcp/udp (2, big endian) and memory (8),
 * none for p2p-circuit, ws, wss and utp, and is <length varint><bytes> for
 * the variable-size protocols dns, dns4, dns6, p2p and unix.
 *
 * Protocol notes (choices that the tables leave open):
 *   - memory (0x0309): protocols.csv and the multicodec table list its size
 *     as "V" ("arbitrary"), but rust-libp2p (multiaddr crate, Protocol::Memory
 *     written with write_u64::<BigEndian> after the code, no length prefix)
 *     and go-multiaddr (size 64, TranscoderMemory) both encode it as a fixed
 *     8-byte big-endian u64 with no length prefix, and print it in decimal.
 *     We follow them for wire compatibility: /memory/1234 <-> 8903 00..04d2.
 *   - unix (0x0190) is a "path" protocol: in the string form it consumes the
 *     rest of the string, slash included, so /unix/tmp/x.sock has the value
 *     "/tmp/x.sock" (go-multiaddr and rust-multiaddr behaviour; the newer
 *     percent-encoded form of protocols/unix.md is not implemented). Since a
 *     path cannot be followed by anything in the string form, a binary unix
 *     component must be the last one and its value must start with '/',
 *     otherwise printing and re-parsing would not give back the same bytes.
 *   - p2p (0x01a5, also read under its old name "ipfs"): the binary value is
 *     the peer ID multihash, which must be identity (non-empty digest) or
 *     sha2-256 (32-byte digest). Strings print it in base58btc; input also
 *     accepts the CIDv1 libp2p-key form ("bafz...", multibase 'b' or 'z'), as
 *     peer-ids.md "Decoding" requires.
 *   - dns, dns4, dns6: 1..255 bytes, no '/' (it would end the value).
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

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

enum ma_kind {
    MA_K_NONE,   /* no value */
    MA_K_IP4,    /* 4 bytes */
    MA_K_IP6,    /* 16 bytes */
    MA_K_PORT,   /* 2 bytes, big endian */
    MA_K_MEMORY, /* 8 bytes, big endian */
    MA_K_DNS,    /* length-prefixed host name */
    MA_K_P2P,    /* length-prefixed multihash */
    MA_K_UNIX    /* length-prefixed path, rest of the string */
};

typedef struct ma_proto {
    uint64_t code;
    const char *name;
    enum ma_kind kind;
} ma_proto;

static const ma_proto ma_protos[] = {
    {GN_MA_IP4, "ip4", MA_K_IP4},
    {GN_MA_TCP, "tcp", MA_K_PORT},
    {GN_MA_DNS, "dns", MA_K_DNS},
    {GN_MA_DNS4, "dns4", MA_K_DNS},
    {GN_MA_DNS6, "dns6", MA_K_DNS},
    {GN_MA_UDP, "udp", MA_K_PORT},
    {GN_MA_P2P_CIRCUIT, "p2p-circuit", MA_K_NONE},
    {GN_MA_IP6, "ip6", MA_K_IP6},
    {GN_MA_UTP, "utp", MA_K_NONE},
    {GN_MA_UNIX, "unix", MA_K_UNIX},
    {GN_MA_P2P, "p2p", MA_K_P2P},
    {GN_MA_WS, "ws", MA_K_NONE},
    {GN_MA_WSS, "wss", MA_K_NONE},
    {GN_MA_MEMORY, "memory", MA_K_MEMORY},
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
    default:
        return 0;
    }
}

static bool ma_kind_is_var(enum ma_kind k)
{
    return k == MA_K_DNS || k == MA_K_P2P || k == MA_K_UNIX;
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
        if (c.code == GN_MA_UNIX && off != len)
            return GN_EPARSE; /* a path must be last (see the file comment) */
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

/* Encodes the value string @s (@len bytes) of protocol @pr into @w. */
static int ma_put_value(ma_wbuf *w, const ma_proto *pr, const char *s, size_t len)
{
    char tmp[64];
    uint8_t bin[GN_MA_MAX_BYTES];
    uint64_t v;
    int n;
    switch (pr->kind) {
    case MA_K_IP4:
    case MA_K_IP6:
        if (len >= sizeof tmp)
            return GN_EPARSE;
        memcpy(tmp, s, len);
        tmp[len] = '\0';
        if (inet_pton(pr->kind == MA_K_IP4 ? AF_INET : AF_INET6, tmp, bin) != 1)
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
    case MA_K_DNS:
    case MA_K_UNIX:
        if (!ma_valid_value(pr->kind, (const uint8_t *)s, len))
            return GN_EPARSE;
        if (len > GN_MA_MAX_BYTES)
            return GN_ETOOBIG;
        if ((n = ma_put_varint(w, len)) < 0)
            return n;
        return ma_put(w, s, len);
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
        if (pr->kind == MA_K_UNIX) {
            vs = ne; /* the path keeps its leading '/' */
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
        if (pr->kind != MA_K_UNIX && ma_emit(out, out_len, &o, "/", 1) < 0)
            goto nospc;
        int n = gn_ma_component_value_string(&c, out + o, out_len - o);
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
    /* A unix path is the last component: nothing can follow it. */
    gn_ma_component last;
    if (a->count > 0 && b->count > 0 && ma_get(a, a->count - 1, &last, NULL) == 0 &&
        last.code == GN_MA_UNIX)
        return GN_EPARSE;
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
