/*
 * The control protocol's wire core (ipc/ctl_wire.h): bounds checked on the
 * protobuf encoding before protobuf-c allocates, decode, framed encode.
 * Sans-I/O. Spec: docs/protocols/control.md "Bounds".
 */
#include "ctl_wire.h"

#include "gni_pb.h"
#include "golemnet/err.h"
#include "golemnet/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void ctl_err(char *err, size_t errlen, const char *fmt, ...) GN_PRINTF(3, 4);

static void ctl_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Most fields a message type of control.proto declares (per-field counters). */
#define CTL_MAX_DECLARED 32u

static bool ctl_utf8_ok(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        uint32_t cp;
        if ((c & 0xe0) == 0xc0) {
            k = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            k = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            k = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i <= k) {
            return false;
        }
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return false;
        }
        i += k + 1;
    }
    return true;
}

/* Length (1..4) of the valid UTF-8 character at @s (@n bytes left), 0 if none. */
static size_t ctl_utf8_char(const uint8_t *s, size_t n)
{
    if (n == 0) {
        return 0;
    }
    if (s[0] < 0x80) {
        return 1;
    }
    size_t k = (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
    return k && k <= n && ctl_utf8_ok(s, k) ? k : 0;
}

size_t gni_ctl_utf8_fix(const char *in, size_t n, char *out, size_t cap)
{
    static const char repl[] = "\xef\xbf\xbd"; /* U+FFFD */
    if (!out || cap == 0) {
        return 0;
    }
    size_t o = 0, i = 0;
    const uint8_t *s = (const uint8_t *)in;
    while (in && i < n && s[i] != 0) {
        size_t k = ctl_utf8_char(s + i, n - i);
        const char *src = k ? in + i : repl;
        size_t len = k ? k : 3;
        if (o + len > cap - 1) {
            break; /* whole characters only */
        }
        memcpy(out + o, src, len);
        o += len;
        i += k ? k : 1;
    }
    out[o] = '\0';
    return o;
}

typedef struct ctl_fixed {
    struct ctl_fixed *next;
    char s[];
} ctl_fixed;

/* Replaces *@sp by a fixed copy when it is not valid for the wire. */
static int ctl_fix_str(char **sp, ctl_fixed **keep, int *nfixed)
{
    const char *v = *sp;
    if (!v) {
        return 0;
    }
    size_t n = strlen(v);
    if (n <= GN_CTL_STRING_MAX && ctl_utf8_ok((const uint8_t *)v, n)) {
        return 0;
    }
    size_t cap = GNI_MIN(n * 3, (size_t)GN_CTL_STRING_MAX) + 1;
    ctl_fixed *f = gn_malloc(sizeof *f + cap);
    if (!f) {
        return GN_ENOMEM;
    }
    (void)gni_ctl_utf8_fix(v, n, f->s, cap);
    f->next = *keep;
    *keep = f;
    *sp = f->s;
    (*nfixed)++;
    return 0;
}

static int ctl_sanitize(ProtobufCMessage *m, ctl_fixed **keep, int *nfixed, unsigned depth)
{
    if (!m || depth > GNI_CTL_DEPTH_MAX) {
        return 0;
    }
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[i];
        if (fd->type != PROTOBUF_C_TYPE_STRING && fd->type != PROTOBUF_C_TYPE_MESSAGE) {
            continue;
        }
        char *base = (char *)m;
        if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t which;
            memcpy(&which, base + fd->quantifier_offset, sizeof which);
            if (which != fd->id) {
                continue;
            }
        }
        void **one = (void **)(base + fd->offset);
        size_t n = 1;
        void **arr = one;
        if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            memcpy(&n, base + fd->quantifier_offset, sizeof n);
            arr = *(void ***)one;
            if (!arr) {
                continue;
            }
        }
        for (size_t k = 0; k < n; k++) {
            int rc = fd->type == PROTOBUF_C_TYPE_STRING
                         ? ctl_fix_str((char **)&arr[k], keep, nfixed)
                         : ctl_sanitize(arr[k], keep, nfixed, depth + 1);
            if (rc < 0) {
                return rc;
            }
        }
    }
    return 0;
}

int gni_ctl_sanitize(ProtobufCMessage *m, void **keep)
{
    if (!m || !keep) {
        return GN_EINVAL;
    }
    int nfixed = 0;
    ctl_fixed *k = *keep;
    int rc = ctl_sanitize(m, &k, &nfixed, 1);
    *keep = k;
    return rc < 0 ? rc : nfixed;
}

void gni_ctl_sanitize_free(void *keep)
{
    ctl_fixed *f = keep;
    while (f) {
        ctl_fixed *next = f->next;
        gn_free(f);
        f = next;
    }
}

typedef struct ctl_walk {
    size_t fields;
    uint64_t *id;
    char *err;
    size_t errlen;
} ctl_walk;

static int ctl_walk_msg(ctl_walk *w, const ProtobufCMessageDescriptor *d, const uint8_t *p,
                        size_t len, unsigned depth)
{
    if (depth > GNI_CTL_DEPTH_MAX) {
        ctl_err(w->err, w->errlen, "messages nested deeper than %u", GNI_CTL_DEPTH_MAX);
        return GN_ETOOBIG;
    }
    if (d->n_fields > CTL_MAX_DECLARED) {
        ctl_err(w->err, w->errlen, "internal: %s declares too many fields", d->name);
        return GN_EPARSE;
    }
    uint32_t counts[CTL_MAX_DECLARED] = {0};
    size_t off = 0;
    while (off < len) {
        uint64_t key = 0;
        int rc = gni_varint_decode_kind(p + off, len - off, GNI_VARINT_PB, &key);
        if (rc < 0) {
            ctl_err(w->err, w->errlen, "%s: bad field key", d->short_name);
            return GN_EPARSE;
        }
        off += (size_t)rc;
        uint64_t tag = key >> 3;
        unsigned wt = (unsigned)(key & 7);
        if (tag == 0 || tag > 536870911u) {
            ctl_err(w->err, w->errlen, "%s: bad field number", d->short_name);
            return GN_EPARSE;
        }
        if (++w->fields > GNI_CTL_FIELDS_MAX) {
            ctl_err(w->err, w->errlen, "more than %u fields", GNI_CTL_FIELDS_MAX);
            return GN_ETOOBIG;
        }
        const ProtobufCFieldDescriptor *fd =
            protobuf_c_message_descriptor_get_field(d, (unsigned)tag);
        uint64_t v = 0;
        switch (wt) {
        case 0:
            rc = gni_varint_decode_kind(p + off, len - off, GNI_VARINT_PB, &v);
            if (rc < 0) {
                ctl_err(w->err, w->errlen, "%s: bad varint", d->short_name);
                return GN_EPARSE;
            }
            off += (size_t)rc;
            if (depth == 1 && tag == 1 && w->id) {
                *w->id = v;
            }
            break;
        case 1:
        case 5: {
            size_t n = wt == 1 ? 8 : 4;
            if (len - off < n) {
                ctl_err(w->err, w->errlen, "%s: truncated fixed field", d->short_name);
                return GN_EPARSE;
            }
            off += n;
            break;
        }
        case 2: {
            rc = gni_varint_decode_kind(p + off, len - off, GNI_VARINT_PB, &v);
            if (rc < 0) {
                ctl_err(w->err, w->errlen, "%s: bad length", d->short_name);
                return GN_EPARSE;
            }
            off += (size_t)rc;
            if (v > len - off) {
                ctl_err(w->err, w->errlen, "%s: length past the end", d->short_name);
                return GN_EPARSE;
            }
            const uint8_t *sub = p + off;
            size_t sublen = (size_t)v;
            off += sublen;
            if (!fd) {
                break; /* unknown field: skipped */
            }
            if (fd->type == PROTOBUF_C_TYPE_STRING) {
                if (sublen > GN_CTL_STRING_MAX) {
                    ctl_err(w->err, w->errlen, "%s.%s: %zu bytes, at most %u", d->short_name,
                            fd->name, sublen, GN_CTL_STRING_MAX);
                    return GN_ETOOBIG;
                }
                if (!ctl_utf8_ok(sub, sublen)) {
                    ctl_err(w->err, w->errlen, "%s.%s: not UTF-8", d->short_name, fd->name);
                    return GN_EPARSE;
                }
            } else if (fd->type == PROTOBUF_C_TYPE_MESSAGE) {
                rc = ctl_walk_msg(w, fd->descriptor, sub, sublen, depth + 1);
                if (rc < 0) {
                    return rc;
                }
            } else if (fd->type != PROTOBUF_C_TYPE_BYTES) {
                /* a packed repeated scalar: one entry per final varint byte */
                if (fd->label != PROTOBUF_C_LABEL_REPEATED) {
                    ctl_err(w->err, w->errlen, "%s.%s: wrong wire type", d->short_name, fd->name);
                    return GN_EPARSE;
                }
                size_t entries = 0;
                for (size_t i = 0; i < sublen; i++) {
                    entries += (sub[i] & 0x80) == 0;
                }
                size_t idx = (size_t)(fd - d->fields);
                if (counts[idx] + entries > GN_CTL_REPEATED_MAX) {
                    ctl_err(w->err, w->errlen, "%s.%s: more than %u entries", d->short_name,
                            fd->name, GN_CTL_REPEATED_MAX);
                    return GN_ETOOBIG;
                }
                counts[idx] += (uint32_t)entries;
                continue;
            }
            break;
        }
        default:
            ctl_err(w->err, w->errlen, "%s: wire type %u not allowed", d->short_name, wt);
            return GN_EPARSE;
        }
        if (fd) {
            bool len_type = fd->type == PROTOBUF_C_TYPE_STRING ||
                            fd->type == PROTOBUF_C_TYPE_BYTES ||
                            fd->type == PROTOBUF_C_TYPE_MESSAGE;
            if (len_type != (wt == 2)) {
                ctl_err(w->err, w->errlen, "%s.%s: wrong wire type", d->short_name, fd->name);
                return GN_EPARSE;
            }
            if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
                size_t idx = (size_t)(fd - d->fields);
                if (++counts[idx] > GN_CTL_REPEATED_MAX) {
                    ctl_err(w->err, w->errlen, "%s.%s: more than %u entries", d->short_name,
                            fd->name, GN_CTL_REPEATED_MAX);
                    return GN_ETOOBIG;
                }
            }
        }
    }
    return 0;
}

int gni_ctl_check(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                  uint64_t *id, char *err, size_t errlen)
{
    if (!d || (!buf && len)) {
        ctl_err(err, errlen, "invalid argument");
        return GN_EPARSE;
    }
    if (len > GN_CTL_MSG_MAX) {
        ctl_err(err, errlen, "message of %zu bytes, at most %u", len, GN_CTL_MSG_MAX);
        return GN_ETOOBIG;
    }
    ctl_walk w = {.id = id, .err = err, .errlen = errlen};
    return ctl_walk_msg(&w, d, buf, len, 1);
}

static int ctl_unpack(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                      ProtobufCMessage **out, uint64_t *id, char *err, size_t errlen)
{
    *out = NULL;
    int rc = gni_ctl_check(d, buf, len, id, err, errlen);
    if (rc < 0) {
        return rc;
    }
    gni_pb_alloc pa;
    gni_pb_alloc_init(&pa);
    ProtobufCMessage *m = protobuf_c_message_unpack(d, &pa.a, len, buf);
    if (!m) {
        if (pa.oom) {
            ctl_err(err, errlen, "out of memory");
            return GN_ENOMEM;
        }
        ctl_err(err, errlen, "%s: undecodable", d->short_name);
        return GN_EPARSE;
    }
    *out = m;
    return 0;
}

static void ctl_free(ProtobufCMessage *m)
{
    if (m) {
        gni_pb_alloc pa;
        gni_pb_alloc_init(&pa);
        protobuf_c_message_free_unpacked(m, &pa.a);
    }
}

int gni_ctl_request_decode(const uint8_t *buf, size_t len, Gnctl__Request **out, uint64_t *id,
                           char *err, size_t errlen)
{
    uint64_t rid = 0;
    ProtobufCMessage *m = NULL;
    *out = NULL;
    int rc = ctl_unpack(&gnctl__request__descriptor, buf, len, &m, &rid, err, errlen);
    if (id) {
        *id = rid;
    }
    if (rc < 0) {
        return rc;
    }
    Gnctl__Request *r = (Gnctl__Request *)m;
    if (r->op_case == GNCTL__REQUEST__OP__NOT_SET) {
        bool unknown = r->base.n_unknown_fields > 0;
        ctl_err(err, errlen, unknown ? "unknown op (a newer protocol version?)"
                                     : "request without an op");
        ctl_free(m);
        return unknown ? GN_ENOTSUP : GN_EINVAL;
    }
    *out = r;
    return 0;
}

void gni_ctl_request_free(Gnctl__Request *r) { ctl_free((ProtobufCMessage *)r); }

int gni_ctl_server_msg_decode(const uint8_t *buf, size_t len, Gnctl__ServerMessage **out,
                              char *err, size_t errlen)
{
    ProtobufCMessage *m = NULL;
    *out = NULL;
    int rc = ctl_unpack(&gnctl__server_message__descriptor, buf, len, &m, NULL, err, errlen);
    if (rc < 0) {
        return rc;
    }
    Gnctl__ServerMessage *s = (Gnctl__ServerMessage *)m;
    if (s->msg_case == GNCTL__SERVER_MESSAGE__MSG__NOT_SET) {
        ctl_err(err, errlen, "server message neither a response nor an event");
        ctl_free(m);
        return GN_ENOTSUP;
    }
    *out = s;
    return 0;
}

void gni_ctl_server_msg_free(Gnctl__ServerMessage *m) { ctl_free((ProtobufCMessage *)m); }

int gni_ctl_stream_info_decode(const uint8_t *buf, size_t len, Gnctl__StreamInfo **out,
                               char *err, size_t errlen)
{
    ProtobufCMessage *m = NULL;
    int rc = ctl_unpack(&gnctl__stream_info__descriptor, buf, len, &m, NULL, err, errlen);
    *out = (Gnctl__StreamInfo *)m;
    return rc;
}

void gni_ctl_stream_info_free(Gnctl__StreamInfo *m) { ctl_free((ProtobufCMessage *)m); }

int gni_ctl_encode(const ProtobufCMessage *m, uint8_t **out, size_t *out_len)
{
    if (!m || !out || !out_len) {
        return GN_EINVAL;
    }
    *out = NULL;
    *out_len = 0;
    size_t n = protobuf_c_message_get_packed_size(m);
    if (n > GN_CTL_MSG_MAX) {
        return GN_ETOOBIG;
    }
    uint8_t pre[10];
    size_t plen = gni_lp_prefix(pre, n);
    uint8_t *buf = gn_malloc(plen + n + 1);
    if (!buf) {
        return GN_ENOMEM;
    }
    memcpy(buf, pre, plen);
    size_t got = protobuf_c_message_pack(m, buf + plen);
    if (got != n) {
        gn_free(buf);
        return GN_EINTERNAL;
    }
    int rc = gni_ctl_check(m->descriptor, buf + plen, n, NULL, NULL, 0);
    if (rc < 0) {
        gn_free(buf);
        return rc == GN_ETOOBIG ? GN_ETOOBIG : GN_EINVAL;
    }
    *out = buf;
    *out_len = plen + n;
    return 0;
}

void gni_ctl_reader_init(gni_ctl_reader *r) { gni_lp_reader_init(&r->lp, GN_CTL_MSG_MAX); }

void gni_ctl_reader_fini(gni_ctl_reader *r)
{
    gni_lp_reader_clear(&r->lp);
}

int gni_ctl_reader_feed(gni_ctl_reader *r, const uint8_t *in, size_t len, size_t *consumed,
                        Gnctl__Request **req, uint64_t *id, char *err, size_t errlen)
{
    const uint8_t *msg = NULL;
    size_t mlen = 0;
    *req = NULL;
    if (id) {
        *id = 0;
    }
    int rc = gni_lp_reader_feed(&r->lp, in, len, consumed, &msg, &mlen);
    if (rc == GN_EPARSE) {
        ctl_err(err, errlen, "bad frame length");
        return GN_EBADFRAME;
    }
    if (rc == GN_EFRAMESIZE) {
        ctl_err(err, errlen, "frame longer than %u bytes", GN_CTL_MSG_MAX);
        return rc;
    }
    if (rc <= 0) {
        return rc;
    }
    rc = gni_ctl_request_decode(msg, mlen, req, id, err, errlen);
    gni_lp_reader_clear(&r->lp);
    return rc < 0 ? rc : 1;
}

const char *gni_ctl_op_name(const Gnctl__Request *r)
{
    if (!r || r->op_case == GNCTL__REQUEST__OP__NOT_SET) {
        return "none";
    }
    const ProtobufCFieldDescriptor *fd =
        protobuf_c_message_descriptor_get_field(&gnctl__request__descriptor, (unsigned)r->op_case);
    return fd ? fd->name : "unknown";
}
