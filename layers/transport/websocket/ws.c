/*
 * WebSocket (RFC 6455) sans-I/O core: handshake and framing. See ws.h.
 */
#include "ws.h"

#include "golemnet/err.h"

#include "gni.h"

#include <http_parser.h>
#include <openssl/sha.h>
#include <sodium.h>

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* section 1.3 */
static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* ---------------------------------------------------------------------------
 * Framing
 */

void gni_ws_init(gni_ws *w, bool server, uint64_t max_frame, uint64_t max_msg,
                 const gni_ws_callbacks *cb, void *user_data)
{
    memset(w, 0, sizeof *w);
    w->cb = *cb;
    w->user_data = user_data;
    w->server = server;
    w->max_frame = max_frame;
    w->max_msg = max_msg;
}

unsigned gni_ws_fail_code(const gni_ws *w)
{
    return w->fail_code;
}

bool gni_ws_partial(const gni_ws *w)
{
    return w->hdr_len > 0 || w->in_payload || w->in_msg;
}

void gni_ws_mask(uint8_t *p, size_t len, const uint8_t mask[4], uint64_t off)
{
    for (size_t i = 0; i < len; i++) {
        p[i] ^= mask[(off + i) & 3];
    }
}

size_t gni_ws_frame_header(uint8_t out[GNI_WS_HDR_MAX], unsigned opcode, bool fin, uint64_t len,
                           const uint8_t *mask)
{
    size_t n = 0;
    out[n++] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
    uint8_t m = mask ? 0x80 : 0;
    if (len < 126) {
        out[n++] = (uint8_t)(m | len);
    } else if (len <= 0xffff) {
        out[n++] = (uint8_t)(m | 126);
        out[n++] = (uint8_t)(len >> 8);
        out[n++] = (uint8_t)len;
    } else {
        out[n++] = (uint8_t)(m | 127);
        for (int i = 7; i >= 0; i--) {
            out[n++] = (uint8_t)(len >> (8 * i));
        }
    }
    if (mask) {
        memcpy(out + n, mask, 4);
        n += 4;
    }
    return n;
}

int gni_ws_close_frame(uint8_t *out, unsigned code, const char *reason, size_t reason_len,
                       const uint8_t *mask)
{
    if (code < 1000 || code > 4999 || code == 1005 || code == 1006 || code == 1015 ||
        reason_len > GNI_WS_CTL_MAX - 2 || (reason_len > 0 && !reason)) {
        return GN_EINVAL;
    }
    size_t n = gni_ws_frame_header(out, GNI_WS_OP_CLOSE, true, 2 + reason_len, mask);
    uint8_t *p = out + n;
    p[0] = (uint8_t)(code >> 8);
    p[1] = (uint8_t)code;
    if (reason_len > 0) {
        memcpy(p + 2, reason, reason_len);
    }
    if (mask) {
        gni_ws_mask(p, 2 + reason_len, mask, 0);
    }
    return (int)(n + 2 + reason_len);
}

static int ws_fail(gni_ws *w, int err, unsigned code)
{
    w->fail_code = code;
    w->closed = true; /* no more input after a failure */
    return err;
}

/* Bytes of header needed given what is collected (2 until the length byte is known). */
static size_t ws_hdr_need(const gni_ws *w)
{
    if (w->hdr_len < 2) {
        return 2;
    }
    size_t n = 2;
    uint8_t l7 = w->hdr[1] & 0x7f;
    if (l7 == 126) {
        n += 2;
    } else if (l7 == 127) {
        n += 8;
    }
    if (w->hdr[1] & 0x80) {
        n += 4;
    }
    return n;
}

/* A complete header is in w->hdr: check it and set up the frame. */
static int ws_hdr_done(gni_ws *w)
{
    uint8_t b0 = w->hdr[0], b1 = w->hdr[1];
    if (b0 & 0x70) {
        return ws_fail(w, GN_EPROTO, GNI_WS_CLOSE_PROTOCOL); /* RSV1-3 without an extension */
    }
    w->fin = (b0 & 0x80) != 0;
    w->opcode = b0 & 0x0f;
    w->masked = (b1 & 0x80) != 0;
    if (w->masked != w->server) {
        /* section 5.1: clients mask every frame, servers none */
        return ws_fail(w, GN_EPROTO, GNI_WS_CLOSE_PROTOCOL);
    }
    uint64_t len = b1 & 0x7f;
    size_t p = 2;
    if (len == 126) {
        len = ((uint64_t)w->hdr[2] << 8) | w->hdr[3];
        p = 4;
    } else if (len == 127) {
        len = 0;
        for (int i = 0; i < 8; i++) {
            len = (len << 8) | w->hdr[2 + i];
        }
        p = 10;
        if (len >> 63) {
            return ws_fail(w, GN_EPROTO, GNI_WS_CLOSE_PROTOCOL); /* section 5.2: MSB must be 0 */
        }
    }
    if (w->masked) {
        memcpy(w->mask, w->hdr + p, 4);
    }
    switch (w->opcode) {
    case GNI_WS_OP_CLOSE:
    case GNI_WS_OP_PING:
    case GNI_WS_OP_PONG:
        if (!w->fin || len > GNI_WS_CTL_MAX) {
            return ws_fail(w, GN_EPROTO, GNI_WS_CLOSE_PROTOCOL); /* section 5.5 */
        }
        if (w->opcode == GNI_WS_OP_CLOSE && len == 1) {
            return ws_fail(w, GN_EPROTO, GNI_WS_CLOSE_PROTOCOL); /* section 5.5.1 */
        }
        w->ctl_len = 0;
        break;
    case GNI_WS_OP_TEXT:
        return ws_fail(w, GN_EPROTO, GNI_WS_CLOSE_UNSUPPORTED);
    case GNI_WS_OP_BINARY:
        if (w->in_msg) {
            return ws_fail(w, GN_EPROTO, GNI_WS_CLOSE_PROTOCOL); /* section 5.4 */
        }
        w->msg_len = 0;
        w->in_msg = !w->fin;
        break;
    case GNI_WS_OP_CONT:
        if (!w->in_msg) {
            return ws_fail(w, GN_EPROTO, GNI_WS_CLOSE_PROTOCOL);
        }
        w->in_msg = !w->fin;
        break;
    default:
        return ws_fail(w, GN_EPROTO, GNI_WS_CLOSE_PROTOCOL); /* reserved opcode */
    }
    if (w->opcode == GNI_WS_OP_BINARY || w->opcode == GNI_WS_OP_CONT) {
        if (len > w->max_frame) {
            return ws_fail(w, GN_EFRAMESIZE, GNI_WS_CLOSE_TOO_BIG);
        }
        if (len > w->max_msg - w->msg_len) {
            return ws_fail(w, GN_EFRAMESIZE, GNI_WS_CLOSE_TOO_BIG);
        }
        w->msg_len += len;
    }
    w->remain = len;
    w->off = 0;
    w->in_payload = true;
    w->hdr_len = 0;
    return 0;
}

/* True when @len bytes at @p are well-formed UTF-8 (RFC 3629: no overlong
 * forms, no surrogates, nothing over U+10FFFF). */
static bool ws_utf8_valid(const uint8_t *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t b = p[i];
        size_t n;
        uint32_t cp;
        if (b < 0x80) {
            i++;
            continue;
        } else if ((b & 0xe0) == 0xc0) {
            n = 1;
            cp = b & 0x1f;
        } else if ((b & 0xf0) == 0xe0) {
            n = 2;
            cp = b & 0x0f;
        } else if ((b & 0xf8) == 0xf0) {
            n = 3;
            cp = b & 0x07;
        } else {
            return false;
        }
        if (len - i - 1 < n) {
            return false;
        }
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        static const uint32_t min[4] = {0, 0x80, 0x800, 0x10000};
        if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return false;
        }
        i += n + 1;
    }
    return true;
}

/* The control frame in w->ctl is complete. Returns the callback's value. */
static int ws_ctl_done(gni_ws *w)
{
    switch (w->opcode) {
    case GNI_WS_OP_PING:
        return w->cb.on_ping ? w->cb.on_ping(w->user_data, w->ctl, w->ctl_len) : 0;
    case GNI_WS_OP_PONG:
        return w->cb.on_pong ? w->cb.on_pong(w->user_data, w->ctl, w->ctl_len) : 0;
    default: { /* close */
        unsigned code = GNI_WS_CLOSE_NO_STATUS;
        if (w->ctl_len >= 2) {
            code = ((unsigned)w->ctl[0] << 8) | w->ctl[1];
            if (code < 1000 || code == 1004 || code == 1005 || code == 1006 || code == 1015 ||
                (code >= 1016 && code < 3000) || code > 4999) {
                /* section 7.4.1: 1004-1006 and 1015 are never sent in a frame */
                return ws_fail(w, GN_EPROTO, GNI_WS_CLOSE_PROTOCOL);
            }
            if (!ws_utf8_valid(w->ctl + 2, w->ctl_len - 2)) {
                /* section 5.5.1: the reason is UTF-8; section 7.4.1: 1007 */
                return ws_fail(w, GN_EPROTO, GNI_WS_CLOSE_INVALID_DATA);
            }
        }
        w->closed = true;
        return w->cb.on_close ? w->cb.on_close(w->user_data, code, w->ctl + 2,
                                               w->ctl_len >= 2 ? w->ctl_len - 2 : 0)
                              : 0;
    }
    }
}

int gni_ws_feed(gni_ws *w, const uint8_t *in, size_t len, size_t *consumed)
{
    size_t off = 0;
    int rc = 0;
    *consumed = 0;
    if (w->closed) {
        return GN_ESTATE;
    }
    while (off < len || (w->in_payload && w->remain == 0)) {
        if (!w->in_payload) {
            size_t need = ws_hdr_need(w);
            while (w->hdr_len < need && off < len) {
                w->hdr[w->hdr_len++] = in[off++];
                need = ws_hdr_need(w);
            }
            if (w->hdr_len < need) {
                break;
            }
            if ((rc = ws_hdr_done(w)) < 0) {
                break;
            }
            continue; /* a zero-length payload completes at once */
        }
        size_t take = (size_t)GNI_MIN((uint64_t)(len - off), w->remain);
        if (w->opcode >= GNI_WS_OP_CLOSE) {
            memcpy(w->ctl + w->ctl_len, in + off, take);
            if (w->masked) {
                gni_ws_mask(w->ctl + w->ctl_len, take, w->mask, w->off);
            }
            w->ctl_len += take;
            w->off += take;
            w->remain -= take;
            off += take;
            if (w->remain == 0) {
                w->in_payload = false;
                rc = ws_ctl_done(w);
                if (rc != 0 || w->closed) {
                    break;
                }
            }
            continue;
        }
        if (take > 0) {
            if (w->masked) {
                uint8_t chunk[4096];
                take = GNI_MIN(take, sizeof chunk);
                memcpy(chunk, in + off, take);
                gni_ws_mask(chunk, take, w->mask, w->off);
                rc = w->cb.on_data(w->user_data, chunk, take);
            } else {
                rc = w->cb.on_data(w->user_data, in + off, take);
            }
            w->off += take;
            w->remain -= take;
            off += take;
        }
        if (w->remain == 0) {
            w->in_payload = false;
        }
        if (rc != 0) {
            break;
        }
    }
    *consumed = off;
    if (rc < 0 && w->fail_code == 0) {
        w->closed = true; /* a callback failed the connection */
    }
    return rc < 0 ? rc : 0;
}

/* ---------------------------------------------------------------------------
 * Handshake
 */

int gni_ws_accept_value(const char *key, size_t key_len, char out[GNI_WS_ACCEPT_LEN])
{
    uint8_t buf[64 + sizeof ws_guid];
    uint8_t digest[SHA_DIGEST_LENGTH];
    if (key_len > 64) {
        return GN_EINVAL;
    }
    memcpy(buf, key, key_len);
    memcpy(buf + key_len, ws_guid, sizeof ws_guid - 1);
    if (!SHA1(buf, key_len + sizeof ws_guid - 1, digest)) {
        return GN_ECRYPTO;
    }
    sodium_bin2base64(out, GNI_WS_ACCEPT_LEN, digest, sizeof digest,
                      sodium_base64_VARIANT_ORIGINAL);
    return 0;
}

int gni_ws_build_request(char *out, size_t cap, const char *host, const char *path,
                         const uint8_t nonce[16], char key[GNI_WS_KEY_LEN])
{
    sodium_bin2base64(key, GNI_WS_KEY_LEN, nonce, 16, sodium_base64_VARIANT_ORIGINAL);
    int n = snprintf(out, cap,
                     "GET %s HTTP/1.1\r\n"
                     "Host: %s\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n"
                     "\r\n",
                     path, host, key);
    return n < 0 || (size_t)n >= cap ? GN_ENOSPC : n;
}

int gni_ws_build_response(char *out, size_t cap, const char *key)
{
    char accept[GNI_WS_ACCEPT_LEN];
    int rc = gni_ws_accept_value(key, strlen(key), accept);
    if (rc < 0) {
        return rc;
    }
    int n = snprintf(out, cap,
                     "HTTP/1.1 101 Switching Protocols\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n"
                     "\r\n",
                     accept);
    return n < 0 || (size_t)n >= cap ? GN_ENOSPC : n;
}

int gni_ws_build_refusal(char *out, size_t cap, int err)
{
    const char *status = err == GN_EVERSION   ? "426 Upgrade Required"
                         : err == GN_ETOOBIG ? "431 Request Header Fields Too Large"
                                             : "400 Bad Request";
    int n = snprintf(out, cap,
                     "HTTP/1.1 %s\r\n"
                     "%s"
                     "Content-Length: 0\r\n"
                     "Connection: close\r\n"
                     "\r\n",
                     status, err == GN_EVERSION ? "Sec-WebSocket-Version: 13\r\n" : "");
    return n < 0 || (size_t)n >= cap ? GN_ENOSPC : n;
}

/* Header fields the handshake looks at. */
enum {
    H_NONE,
    H_UPGRADE,
    H_CONNECTION,
    H_KEY,
    H_VERSION,
    H_ACCEPT,
    H_EXTENSIONS,
    H_PROTOCOL,
    H_TRANSFER_ENCODING,
    H_COUNT
};

typedef struct ws_hp {
    int cur;                  /* field being read (H_*) */
    bool in_value;
    char field[32];
    size_t field_len;
    bool field_long;
    char val[H_COUNT][128];
    size_t val_len[H_COUNT];
    bool seen[H_COUNT];
    bool dup;                 /* a field we read came twice */
    bool val_long;            /* a field we read has a value over 127 bytes */
} ws_hp;

static int ws_hp_field_name(ws_hp *h)
{
    static const char *const names[H_COUNT] = {NULL,
                                               "upgrade",
                                               "connection",
                                               "sec-websocket-key",
                                               "sec-websocket-version",
                                               "sec-websocket-accept",
                                               "sec-websocket-extensions",
                                               "sec-websocket-protocol",
                                               "transfer-encoding"};
    if (h->field_long) {
        return H_NONE;
    }
    for (int i = 1; i < H_COUNT; i++) {
        if (strlen(names[i]) == h->field_len && strncasecmp(names[i], h->field, h->field_len) == 0) {
            return i;
        }
    }
    return H_NONE;
}

static int ws_on_field(http_parser *p, const char *at, size_t len)
{
    ws_hp *h = p->data;
    if (h->in_value) {
        h->in_value = false;
        h->field_len = 0;
        h->field_long = false;
    }
    if (len > sizeof h->field - h->field_len) {
        h->field_long = true;
    } else {
        memcpy(h->field + h->field_len, at, len);
        h->field_len += len;
    }
    return 0;
}

static int ws_on_value(http_parser *p, const char *at, size_t len)
{
    ws_hp *h = p->data;
    if (!h->in_value) {
        h->in_value = true;
        h->cur = ws_hp_field_name(h);
        if (h->cur != H_NONE) {
            if (h->seen[h->cur] && (h->cur == H_UPGRADE || h->cur == H_CONNECTION)) {
                /* list-valued fields: repeated lines are one list (RFC 9110 5.3) */
                if (2 >= sizeof h->val[0] - h->val_len[h->cur]) {
                    h->val_long = true;
                    h->cur = H_NONE;
                    return 0;
                }
                memcpy(h->val[h->cur] + h->val_len[h->cur], ", ", 3);
                h->val_len[h->cur] += 2;
            } else {
                if (h->seen[h->cur]) {
                    h->dup = true;
                }
                h->val_len[h->cur] = 0;
            }
            h->seen[h->cur] = true;
        }
    }
    if (h->cur == H_NONE) {
        return 0;
    }
    if (len >= sizeof h->val[0] - h->val_len[h->cur]) {
        h->val_long = true;
        return 0;
    }
    memcpy(h->val[h->cur] + h->val_len[h->cur], at, len);
    h->val_len[h->cur] += len;
    h->val[h->cur][h->val_len[h->cur]] = '\0';
    return 0;
}

/* True when the comma-separated list @v names @token (case-insensitive). */
static bool ws_has_token(const char *v, const char *token)
{
    size_t tl = strlen(token);
    const char *p = v;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',') {
            p++;
        }
        const char *s = p;
        while (*p && *p != ',') {
            p++;
        }
        const char *e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t')) {
            e--;
        }
        if ((size_t)(e - s) == tl && strncasecmp(s, token, tl) == 0) {
            return true;
        }
    }
    return false;
}

/* Drops trailing spaces and tabs of field @f (http-parser drops the leading ones). */
static void ws_hp_trim(ws_hp *h, int f)
{
    while (h->val_len[f] > 0 &&
           (h->val[f][h->val_len[f] - 1] == ' ' || h->val[f][h->val_len[f] - 1] == '\t')) {
        h->val[f][--h->val_len[f]] = '\0';
    }
}

/*
 * Finds the end of the header block; GN_EAGAIN / GN_ETOOBIG / 0 with *@hlen.
 * *@scan (NULL: none) is where the search resumes: bytes before it were
 * searched already; it is moved past what this call searched.
 */
static int ws_header_block(const uint8_t *in, size_t len, size_t max_header, size_t *scan,
                           size_t *hlen)
{
    size_t lim = GNI_MIN(len, max_header);
    size_t i = scan && *scan > 3 ? *scan : 3;
    for (; i < lim; i++) {
        if (in[i - 3] == '\r' && in[i - 2] == '\n' && in[i - 1] == '\r' && in[i] == '\n') {
            *hlen = i + 1;
            return 0;
        }
    }
    if (scan) {
        *scan = i;
    }
    return len >= max_header ? GN_ETOOBIG : GN_EAGAIN;
}

/* Runs http-parser over the header block; fills @h. */
static int ws_parse(const uint8_t *in, size_t hlen, enum http_parser_type type, http_parser *p,
                    ws_hp *h)
{
    http_parser_settings st;
    memset(&st, 0, sizeof st);
    st.on_header_field = ws_on_field;
    st.on_header_value = ws_on_value;
    memset(h, 0, sizeof *h);
    http_parser_init(p, type);
    p->data = h;
    size_t n = http_parser_execute(p, &st, (const char *)in, hlen);
    if (HTTP_PARSER_ERRNO(p) != HPE_OK || n == 0) {
        return GN_EPARSE;
    }
    if (p->http_major != 1 || p->http_minor < 1) {
        return GN_EPARSE; /* section 4.1: HTTP/1.1 or higher */
    }
    return 0;
}

int gni_ws_parse_request(const uint8_t *in, size_t len, size_t max_header, size_t *scan,
                         size_t *consumed, char key[GNI_WS_KEY_LEN])
{
    size_t hlen;
    int rc = ws_header_block(in, len, max_header, scan, &hlen);
    if (rc < 0) {
        return rc;
    }
    http_parser p;
    ws_hp h;
    if ((rc = ws_parse(in, hlen, HTTP_REQUEST, &p, &h)) < 0) {
        return rc;
    }
    if (p.method != HTTP_GET || h.dup || h.val_long) {
        return GN_EPROTO;
    }
    if (h.seen[H_TRANSFER_ENCODING] ||
        (p.content_length > 0 && p.content_length != UINT64_MAX)) {
        return GN_EPROTO; /* a GET with a body: 400 (section 4.1: the handshake is a plain GET) */
    }
    ws_hp_trim(&h, H_VERSION);
    ws_hp_trim(&h, H_KEY);
    if (!h.seen[H_VERSION]) {
        return GN_EPROTO; /* not a WebSocket request: 400 */
    }
    if (strcmp(h.val[H_VERSION], "13") != 0) {
        return GN_EVERSION; /* section 4.2.2: 426 naming the version we speak */
    }
    if (!h.seen[H_UPGRADE] || !ws_has_token(h.val[H_UPGRADE], "websocket") ||
        !h.seen[H_CONNECTION] || !ws_has_token(h.val[H_CONNECTION], "upgrade") ||
        !h.seen[H_KEY] || h.val_len[H_KEY] != GNI_WS_KEY_LEN - 1) {
        return GN_EPROTO;
    }
    uint8_t nonce[18];
    size_t nlen = 0;
    if (sodium_base642bin(nonce, sizeof nonce, h.val[H_KEY], h.val_len[H_KEY], NULL, &nlen, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        nlen != 16) {
        return GN_EPROTO; /* section 4.2.1 item 5: 16 bytes in base64 */
    }
    memcpy(key, h.val[H_KEY], GNI_WS_KEY_LEN);
    *consumed = hlen;
    return 0;
}

int gni_ws_parse_response(const uint8_t *in, size_t len, size_t max_header, size_t *scan,
                          size_t *consumed, const char *key)
{
    size_t hlen;
    int rc = ws_header_block(in, len, max_header, scan, &hlen);
    if (rc < 0) {
        return rc;
    }
    http_parser p;
    ws_hp h;
    if ((rc = ws_parse(in, hlen, HTTP_RESPONSE, &p, &h)) < 0) {
        return rc;
    }
    ws_hp_trim(&h, H_ACCEPT);
    char want[GNI_WS_ACCEPT_LEN];
    if ((rc = gni_ws_accept_value(key, strlen(key), want)) < 0) {
        return rc;
    }
    if (p.status_code != 101 || h.dup || h.val_long || !h.seen[H_UPGRADE] ||
        !ws_has_token(h.val[H_UPGRADE], "websocket") || !h.seen[H_CONNECTION] ||
        !ws_has_token(h.val[H_CONNECTION], "upgrade") || !h.seen[H_ACCEPT] ||
        strcmp(h.val[H_ACCEPT], want) != 0) {
        return GN_EHANDSHAKE;
    }
    if (h.seen[H_EXTENSIONS] || h.seen[H_PROTOCOL]) {
        return GN_EHANDSHAKE; /* section 4.1 items 5-6: we asked for neither */
    }
    *consumed = hlen;
    return 0;
}
