/*
 * golemnet - ENP R1 framing: header, splitter, parse/build, order rules.
 * Contract: enp.h. Compression lives in enp_z.c, LZW in lzw.c.
 * Spec: shared/specs/ergo-wire.md section c.
 *
 * Every message type is described by a short list of fixed fields (the
 * layouts table below, one row per type, in wire order); parse and build
 * walk the same row, so the two cannot disagree about a layout.
 */
#include "enp.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "gni.h"

/* ---- layouts ---- */

enum enp_field {
    F_END = 0,
    F_FROM,  /* u64 -> from */
    F_FLAGS, /* u8 -> flags (flags or priority byte) */
    F_REF1,  /* u64 -> ref[0] (msgref0) */
    F_REF3,  /* 3 x u64 -> ref */
    F_TO,    /* u64 -> to */
    F_NAME,  /* u8 length + bytes -> name */
    F_ATOM,  /* u16 -> atom_id */
    F_ALIAS, /* 3 x u64 -> alias */
    F_TS,    /* i64 -> timestamp */
    F_CODE,  /* u8 -> code */
    F_METHOD, /* u8 -> method */
    F_OLEN,  /* u32 -> orig_len */
};

#define ENP_MAX_FIELDS 5

typedef struct enp_layout {
    uint8_t type;
    const char *name;
    uint8_t fields[ENP_MAX_FIELDS + 1];
} enp_layout;

/* Spec: ergo-wire.md c "Message types and layouts" (offsets follow from the field sizes) */
static const enp_layout enp_layouts[] = {
    {GNI_ENP_MSG_PID, "MessagePID", {F_FROM, F_FLAGS, F_REF1, F_TO}},
    {GNI_ENP_MSG_NAME, "MessageName", {F_FROM, F_FLAGS, F_REF1, F_NAME}},
    {GNI_ENP_MSG_NAME_CACHE, "MessageNameCache", {F_FROM, F_FLAGS, F_REF1, F_ATOM}},
    {GNI_ENP_MSG_ALIAS, "MessageAlias", {F_FROM, F_FLAGS, F_REF1, F_ALIAS}},
    {GNI_ENP_MSG_EVENT, "MessageEvent", {F_FROM, F_FLAGS, F_TS, F_NAME}},
    {GNI_ENP_MSG_EVENT_CACHE, "MessageEventCache", {F_FROM, F_FLAGS, F_TS, F_ATOM}},
    {GNI_ENP_MSG_EXIT, "MessageExit", {F_FROM, F_FLAGS, F_TO}},
    {GNI_ENP_REQ_PID, "RequestPID", {F_FROM, F_FLAGS, F_REF3, F_TO}},
    {GNI_ENP_REQ_NAME, "RequestName", {F_FROM, F_FLAGS, F_REF3, F_NAME}},
    {GNI_ENP_REQ_NAME_CACHE, "RequestNameCache", {F_FROM, F_FLAGS, F_REF3, F_ATOM}},
    {GNI_ENP_REQ_ALIAS, "RequestAlias", {F_FROM, F_FLAGS, F_REF3, F_ALIAS}},
    {GNI_ENP_RESPONSE, "MessageResponse", {F_FROM, F_FLAGS, F_TO, F_REF3}},
    {GNI_ENP_RESPONSE_ERROR, "MessageResponseError", {F_FROM, F_FLAGS, F_TO, F_REF3, F_CODE}},
    {GNI_ENP_TERM_PID, "TerminatePID", {F_FLAGS, F_TO}},
    {GNI_ENP_TERM_NAME, "TerminateName", {F_FLAGS, F_NAME}},
    {GNI_ENP_TERM_NAME_CACHE, "TerminateNameCache", {F_FLAGS, F_ATOM}},
    {GNI_ENP_TERM_ALIAS, "TerminateAlias", {F_FLAGS, F_ALIAS}},
    {GNI_ENP_TERM_EVENT, "TerminateEvent", {F_FLAGS, F_NAME}},
    {GNI_ENP_TERM_EVENT_CACHE, "TerminateEventCache", {F_FLAGS, F_ATOM}},
    {GNI_ENP_ANY, "MessageAny", {F_END}},
    {GNI_ENP_COMPRESSED, "MessageZ", {F_METHOD, F_OLEN}},
};

/* types ENP R1 defines lie in 100..203 */
#define ENP_TYPE_BASE 100u
#define ENP_TYPE_SPAN 104u

static const enp_layout *enp_layout_of(unsigned type)
{
    if (type < ENP_TYPE_BASE || type >= ENP_TYPE_BASE + ENP_TYPE_SPAN) {
        return NULL;
    }
    /* the table is short and sorted by type: a binary search keeps it const */
    size_t lo = 0, hi = GNI_ARRAY_LEN(enp_layouts);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (enp_layouts[mid].type == type) {
            return &enp_layouts[mid];
        }
        if (enp_layouts[mid].type < type) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return NULL;
}

static size_t enp_field_size(uint8_t f)
{
    switch (f) {
    case F_FROM:
    case F_REF1:
    case F_TO:
    case F_TS:
        return 8;
    case F_REF3:
    case F_ALIAS:
        return 24;
    case F_ATOM:
        return 2;
    case F_OLEN:
        return 4;
    case F_FLAGS:
    case F_CODE:
    case F_METHOD:
    case F_NAME: /* the length byte; the name follows */
        return 1;
    default:
        return 0;
    }
}

const char *gni_enp_type_name(unsigned type)
{
    const enp_layout *l = enp_layout_of(type);
    return l ? l->name : NULL;
}

GN_PRINTF(2, 3)
static void enp_diag(gni_enp_diag *d, const char *fmt, ...)
{
    if (d == NULL) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->msg, sizeof d->msg, fmt, ap);
    va_end(ap);
}

static inline void enp_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void enp_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline void enp_put64(uint8_t *p, uint64_t v)
{
    enp_put32(p, (uint32_t)(v >> 32));
    enp_put32(p + 4, (uint32_t)v);
}

/* ---- header ---- */

int gni_enp_header_check(const uint8_t hdr[8], uint32_t max_len, uint32_t *frame_len,
                         gni_enp_diag *diag)
{
    if (hdr == NULL || frame_len == NULL) {
        return GN_EINVAL;
    }
    if (hdr[0] != GNI_ENP_MAGIC) {
        enp_diag(diag, "bad ENP magic 0x%02x (want 0x4e): not an ENP stream", hdr[0]);
        return GN_EBADFRAME;
    }
    if (hdr[1] != GNI_ENP_VERSION) {
        enp_diag(diag, "unsupported ENP version %u (want 1)", hdr[1]);
        return GN_EVERSION;
    }
    uint32_t n = gni_enp_get32(hdr + 2);
    if (n < GNI_ENP_HEADER_LEN) {
        enp_diag(diag, "ENP frame length %" PRIu32 " is below the 8-byte header", n);
        return GN_EBADFRAME;
    }
    if (max_len > 0 && n > max_len) {
        enp_diag(diag, "received too long message (len: %" PRIu32 ", limit: %" PRIu32
                       " = MaxMessageSize): closing the link", n, max_len);
        return GN_EFRAMESIZE;
    }
    *frame_len = n;
    return 0;
}

/* ---- splitter ---- */

/* a partial-frame buffer above this is freed once its frame was handed out */
#define ENP_SPLIT_KEEP (64u * 1024u)
#define ENP_SPLIT_MIN (4u * 1024u)

int gni_enp_splitter_init(gni_enp_splitter *s, uint32_t max_len)
{
    if (s == NULL) {
        return GN_EINVAL;
    }
    memset(s, 0, sizeof *s);
    s->max_len = max_len;
    return 0;
}

void gni_enp_splitter_fini(gni_enp_splitter *s)
{
    if (s == NULL) {
        return;
    }
    gn_free(s->buf);
    s->buf = NULL;
    s->cap = s->have = 0;
    s->hdr_have = 0;
    s->need = 0;
}

size_t gni_enp_splitter_pending(const gni_enp_splitter *s)
{
    if (s == NULL) {
        return 0;
    }
    return s->need > 0 ? s->have : s->hdr_have;
}

const char *gni_enp_splitter_diag(const gni_enp_splitter *s)
{
    return s ? s->diag.msg : "";
}

static int enp_split_fail(gni_enp_splitter *s, int err)
{
    s->err = err;
    return err;
}

/* makes room for @want bytes in the partial-frame buffer (want <= need) */
static int enp_split_reserve(gni_enp_splitter *s, size_t want)
{
    if (want <= s->cap) {
        return 0;
    }
    size_t ncap = s->cap < ENP_SPLIT_MIN ? ENP_SPLIT_MIN : s->cap;
    while (ncap < want) {
        ncap = ncap > SIZE_MAX / 2 ? SIZE_MAX : ncap * 2;
    }
    if (ncap > s->need) {
        ncap = s->need; /* never more than the frame itself */
    }
    uint8_t *nb = gn_realloc(s->buf, ncap);
    if (nb == NULL) {
        enp_diag(&s->diag, "no memory for a %zu-byte partial ENP frame", ncap);
        return GN_ENOMEM;
    }
    s->buf = nb;
    s->cap = ncap;
    return 0;
}

int gni_enp_splitter_feed(gni_enp_splitter *s, const uint8_t *in, size_t len, size_t *consumed,
                          gn_slice *frame)
{
    if (s == NULL || consumed == NULL || frame == NULL || (in == NULL && len > 0)) {
        return GN_EINVAL;
    }
    *consumed = 0;
    if (s->err != 0) {
        return s->err;
    }
    if (s->need == 0 && s->hdr_have == 0 && s->cap > ENP_SPLIT_KEEP) {
        /* the big frame handed out last time is no longer borrowed */
        gn_free(s->buf);
        s->buf = NULL;
        s->cap = 0;
    }
    size_t used = 0;
    /* fast path: a whole frame at the start of @in, nothing pending: no copy */
    if (s->hdr_have == 0 && len >= GNI_ENP_HEADER_LEN) {
        uint32_t n;
        int rc = gni_enp_header_check(in, s->max_len, &n, &s->diag);
        if (rc < 0) {
            return enp_split_fail(s, rc);
        }
        if (len >= n) {
            *frame = gn_slice_of(in, n);
            *consumed = n;
            return 1;
        }
    }
    while (used < len) {
        if (s->hdr_have < GNI_ENP_HEADER_LEN) {
            size_t take = GNI_MIN(GNI_ENP_HEADER_LEN - s->hdr_have, len - used);
            memcpy(s->hdr + s->hdr_have, in + used, take);
            s->hdr_have += (uint32_t)take;
            used += take;
            if (s->hdr_have < GNI_ENP_HEADER_LEN) {
                break;
            }
            uint32_t n;
            int rc = gni_enp_header_check(s->hdr, s->max_len, &n, &s->diag);
            if (rc < 0) {
                *consumed = used;
                return enp_split_fail(s, rc);
            }
            s->need = n;
            rc = enp_split_reserve(s, GNI_MIN((size_t)n, (size_t)ENP_SPLIT_MIN));
            if (rc < 0) {
                *consumed = used;
                return enp_split_fail(s, rc);
            }
            memcpy(s->buf, s->hdr, GNI_ENP_HEADER_LEN);
            s->have = GNI_ENP_HEADER_LEN;
        } else {
            size_t take = GNI_MIN((size_t)s->need - s->have, len - used);
            int rc = enp_split_reserve(s, s->have + take);
            if (rc < 0) {
                *consumed = used;
                return enp_split_fail(s, rc);
            }
            memcpy(s->buf + s->have, in + used, take);
            s->have += take;
            used += take;
        }
        if (s->have == s->need) {
            *frame = gn_slice_of(s->buf, s->need);
            s->hdr_have = 0;
            s->need = 0;
            s->have = 0;
            *consumed = used;
            return 1;
        }
    }
    *consumed = used;
    return 0;
}

/* ---- parse ---- */

static void enp_any_head(gni_enp_frame *f)
{
    const uint8_t *p = f->payload.base;
    if (f->payload.len < 3 || p[0] != 0x83) {
        return; /* not a registered type: the EDF decoder will say what it is */
    }
    uint16_t n = (uint16_t)(p[1] << 8 | p[2]);
    if (n >= 4096) {
        f->any_type_id = n;
    } else if ((size_t)n <= f->payload.len - 3) {
        f->any_type_name = gn_slice_of(p + 3, n);
    }
}

int gni_enp_parse(const uint8_t *buf, size_t len, gni_enp_frame *out, gni_enp_diag *diag)
{
    if (buf == NULL || out == NULL) {
        return GN_EINVAL;
    }
    memset(out, 0, sizeof *out);
    if (len < GNI_ENP_HEADER_LEN) {
        enp_diag(diag, "ENP frame of %zu bytes is shorter than its 8-byte header", len);
        return GN_EPARSE;
    }
    if (buf[0] != GNI_ENP_MAGIC || buf[1] != GNI_ENP_VERSION) {
        enp_diag(diag, "not an ENP R1 frame (magic 0x%02x, version %u)", buf[0], buf[1]);
        return GN_EPARSE;
    }
    uint32_t n = gni_enp_get32(buf + 2);
    if (n != len) {
        enp_diag(diag, "ENP header length %" PRIu32 " is not the frame's %zu bytes", n, len);
        return GN_EPARSE;
    }
    out->order = buf[6];
    out->type = buf[7];
    const enp_layout *l = enp_layout_of(buf[7]);
    if (l == NULL) {
        if (buf[7] >= 201 && buf[7] <= 203) {
            enp_diag(diag, "ENP message type %u (%s) is reserved and not implemented", buf[7],
                     buf[7] == 201 ? "encrypted" : buf[7] == 202 ? "fragmented" : "proxy");
        } else {
            enp_diag(diag, "unknown ENP message type %u (frame of %zu bytes dropped)", buf[7], len);
        }
        return GN_ENOTSUP;
    }
    size_t p = GNI_ENP_HEADER_LEN;
    for (const uint8_t *fp = l->fields; *fp != F_END; fp++) {
        size_t sz = enp_field_size(*fp);
        if (len - p < sz) {
            goto short_frame;
        }
        const uint8_t *q = buf + p;
        switch (*fp) {
        case F_FROM:
            out->from = gni_enp_get64(q);
            break;
        case F_FLAGS:
            out->flags = q[0];
            break;
        case F_REF1:
            out->ref[0] = gni_enp_get64(q);
            break;
        case F_REF3:
            for (int i = 0; i < 3; i++) {
                out->ref[i] = gni_enp_get64(q + 8 * i);
            }
            break;
        case F_TO:
            out->to = gni_enp_get64(q);
            break;
        case F_NAME:
            if (len - p - 1 < q[0]) {
                goto short_frame;
            }
            out->name = gn_slice_of(q + 1, q[0]);
            sz += q[0];
            break;
        case F_ATOM:
            out->atom_id = (uint16_t)(q[0] << 8 | q[1]);
            break;
        case F_ALIAS:
            for (int i = 0; i < 3; i++) {
                out->alias[i] = gni_enp_get64(q + 8 * i);
            }
            break;
        case F_TS:
            out->timestamp = (int64_t)gni_enp_get64(q);
            break;
        case F_CODE:
            out->code = q[0];
            break;
        case F_METHOD:
            out->method = q[0];
            break;
        case F_OLEN:
            out->orig_len = gni_enp_get32(q);
            break;
        default:
            break;
        }
        p += sz;
    }
    out->payload = gn_slice_of(buf + p, len - p);
    if (out->type == GNI_ENP_ANY) {
        if (out->payload.len == 0) {
            goto short_frame; /* Ergo: 199 needs at least 9 bytes */
        }
        enp_any_head(out);
    }
    return 0;
short_frame:
    enp_diag(diag, "ENP %s frame of %zu bytes is too short for its fixed fields", l->name, len);
    memset(out, 0, sizeof *out);
    return GN_EPARSE;
}

/* ---- build ---- */

static long enp_head_len(const gni_enp_frame *f, const enp_layout **lp)
{
    const enp_layout *l = enp_layout_of(f->type);
    if (l == NULL) {
        return GN_ENOTSUP;
    }
    size_t n = GNI_ENP_HEADER_LEN;
    for (const uint8_t *fp = l->fields; *fp != F_END; fp++) {
        n += enp_field_size(*fp);
        if (*fp == F_NAME) {
            if (f->name.len > 255) {
                return GN_ETOOBIG;
            }
            n += f->name.len;
        }
    }
    *lp = l;
    return (long)n;
}

size_t gni_enp_frame_len(const gni_enp_frame *f)
{
    const enp_layout *l;
    if (f == NULL) {
        return 0;
    }
    long h = enp_head_len(f, &l);
    if (h < 0 || f->payload.len > GNI_ENP_MAX_FRAME_LEN - (size_t)h) {
        return 0;
    }
    return (size_t)h + f->payload.len;
}

long gni_enp_build_head(const gni_enp_frame *f, uint8_t *out, size_t cap)
{
    const enp_layout *l;
    if (f == NULL || (out == NULL && cap > 0) || (f->payload.base == NULL && f->payload.len > 0) ||
        (f->name.base == NULL && f->name.len > 0)) {
        return GN_EINVAL;
    }
    long h = enp_head_len(f, &l);
    if (h < 0) {
        return h;
    }
    if (f->payload.len > GNI_ENP_MAX_FRAME_LEN - (size_t)h) {
        return GN_ETOOBIG;
    }
    if (cap < (size_t)h) {
        return GN_ENOSPC;
    }
    out[0] = GNI_ENP_MAGIC;
    out[1] = GNI_ENP_VERSION;
    enp_put32(out + 2, (uint32_t)((size_t)h + f->payload.len));
    out[6] = f->order;
    out[7] = f->type;
    uint8_t *q = out + GNI_ENP_HEADER_LEN;
    for (const uint8_t *fp = l->fields; *fp != F_END; fp++) {
        switch (*fp) {
        case F_FROM:
            enp_put64(q, f->from);
            break;
        case F_FLAGS:
            q[0] = f->flags;
            break;
        case F_REF1:
            enp_put64(q, f->ref[0]);
            break;
        case F_REF3:
            for (int i = 0; i < 3; i++) {
                enp_put64(q + 8 * i, f->ref[i]);
            }
            break;
        case F_TO:
            enp_put64(q, f->to);
            break;
        case F_NAME:
            q[0] = (uint8_t)f->name.len;
            if (f->name.len > 0) {
                memcpy(q + 1, f->name.base, f->name.len);
            }
            q += f->name.len;
            break;
        case F_ATOM:
            enp_put16(q, f->atom_id);
            break;
        case F_ALIAS:
            for (int i = 0; i < 3; i++) {
                enp_put64(q + 8 * i, f->alias[i]);
            }
            break;
        case F_TS:
            enp_put64(q, (uint64_t)f->timestamp);
            break;
        case F_CODE:
            q[0] = f->code;
            break;
        case F_METHOD:
            q[0] = f->method;
            break;
        case F_OLEN:
            enp_put32(q, f->orig_len);
            break;
        default:
            break;
        }
        q += enp_field_size(*fp);
    }
    return h;
}

long gni_enp_build(const gni_enp_frame *f, uint8_t *out, size_t cap)
{
    long h = gni_enp_build_head(f, out, cap);
    if (h < 0) {
        return h;
    }
    if (cap - (size_t)h < f->payload.len) {
        return GN_ENOSPC;
    }
    if (f->payload.len > 0) {
        memcpy(out + h, f->payload.base, f->payload.len);
    }
    return h + (long)f->payload.len;
}

/* ---- MessageAny kinds ---- */

#define ENP_PROTO_PREFIX "#ergo.services/ergo/net/proto/"

static const char *const enp_any_names[GNI_ENP_ANY_KIND_COUNT] = {
    [GNI_ENP_ANY_LINK_PID] = ENP_PROTO_PREFIX "MessageLinkPID",
    [GNI_ENP_ANY_UNLINK_PID] = ENP_PROTO_PREFIX "MessageUnlinkPID",
    [GNI_ENP_ANY_LINK_PROCESSID] = ENP_PROTO_PREFIX "MessageLinkProcessID",
    [GNI_ENP_ANY_UNLINK_PROCESSID] = ENP_PROTO_PREFIX "MessageUnlinkProcessID",
    [GNI_ENP_ANY_LINK_ALIAS] = ENP_PROTO_PREFIX "MessageLinkAlias",
    [GNI_ENP_ANY_UNLINK_ALIAS] = ENP_PROTO_PREFIX "MessageUnlinkAlias",
    [GNI_ENP_ANY_LINK_EVENT] = ENP_PROTO_PREFIX "MessageLinkEvent",
    [GNI_ENP_ANY_UNLINK_EVENT] = ENP_PROTO_PREFIX "MessageUnlinkEvent",
    [GNI_ENP_ANY_MONITOR_PID] = ENP_PROTO_PREFIX "MessageMonitorPID",
    [GNI_ENP_ANY_DEMONITOR_PID] = ENP_PROTO_PREFIX "MessageDemonitorPID",
    [GNI_ENP_ANY_MONITOR_PROCESSID] = ENP_PROTO_PREFIX "MessageMonitorProcessID",
    [GNI_ENP_ANY_DEMONITOR_PROCESSID] = ENP_PROTO_PREFIX "MessageDemonitorProcessID",
    [GNI_ENP_ANY_MONITOR_ALIAS] = ENP_PROTO_PREFIX "MessageMonitorAlias",
    [GNI_ENP_ANY_DEMONITOR_ALIAS] = ENP_PROTO_PREFIX "MessageDemonitorAlias",
    [GNI_ENP_ANY_MONITOR_EVENT] = ENP_PROTO_PREFIX "MessageMonitorEvent",
    [GNI_ENP_ANY_DEMONITOR_EVENT] = ENP_PROTO_PREFIX "MessageDemonitorEvent",
    [GNI_ENP_ANY_SPAWN] = ENP_PROTO_PREFIX "MessageSpawn",
    [GNI_ENP_ANY_APPLICATION_START] = ENP_PROTO_PREFIX "MessageApplicationStart",
    [GNI_ENP_ANY_UPDATE_CACHE] = ENP_PROTO_PREFIX "MessageUpdateCache",
    [GNI_ENP_ANY_RESULT] = ENP_PROTO_PREFIX "MessageResult",
};

enum gni_enp_any_kind gni_enp_any_kind_of(gn_slice name)
{
    if (name.base == NULL) {
        return GNI_ENP_ANY_UNKNOWN;
    }
    for (int k = 1; k < GNI_ENP_ANY_KIND_COUNT; k++) {
        const char *s = enp_any_names[k];
        if (strlen(s) == name.len && memcmp(s, name.base, name.len) == 0) {
            return (enum gni_enp_any_kind)k;
        }
    }
    return GNI_ENP_ANY_UNKNOWN;
}

const char *gni_enp_any_type_name(enum gni_enp_any_kind kind)
{
    if ((int)kind <= GNI_ENP_ANY_UNKNOWN || (int)kind >= GNI_ENP_ANY_KIND_COUNT) {
        return NULL;
    }
    return enp_any_names[kind];
}

/* ---- order byte ---- */

uint8_t gni_enp_default_order(const gni_enp_frame *f, bool keep_order)
{
    if (f == NULL) {
        return 0;
    }
    if (!keep_order && f->type != GNI_ENP_MSG_EXIT) {
        return 0;
    }
    switch (f->type) {
    case GNI_ENP_MSG_PID:
    case GNI_ENP_MSG_EXIT:
    case GNI_ENP_REQ_PID:
    case GNI_ENP_RESPONSE:
    case GNI_ENP_RESPONSE_ERROR:
        return gni_enp_order_of(f->to);
    case GNI_ENP_MSG_ALIAS:
    case GNI_ENP_REQ_ALIAS:
        return gni_enp_order_of(f->alias[1]);
    case GNI_ENP_MSG_NAME:
    case GNI_ENP_MSG_NAME_CACHE:
    case GNI_ENP_MSG_EVENT:
    case GNI_ENP_MSG_EVENT_CACHE:
    case GNI_ENP_REQ_NAME:
    case GNI_ENP_REQ_NAME_CACHE:
        return gni_enp_order_of(f->from);
    default:
        return 0;
    }
}

uint8_t gni_enp_any_order(enum gni_enp_any_kind kind, bool result, uint64_t id)
{
    if (result) {
        switch (kind) {
        case GNI_ENP_ANY_APPLICATION_START:
        case GNI_ENP_ANY_UPDATE_CACHE:
        case GNI_ENP_ANY_RESULT:
        case GNI_ENP_ANY_UNKNOWN:
            return 0;
        default:
            return gni_enp_order_of(id); /* Source.ID, or ParentPID.ID for Spawn */
        }
    }
    switch (kind) {
    case GNI_ENP_ANY_LINK_PID:
    case GNI_ENP_ANY_UNLINK_PID:
    case GNI_ENP_ANY_LINK_ALIAS:
    case GNI_ENP_ANY_UNLINK_ALIAS:
    case GNI_ENP_ANY_MONITOR_ALIAS:
    case GNI_ENP_ANY_DEMONITOR_ALIAS:
        return gni_enp_order_of(id);
    default:
        return 0;
    }
}

/* ---- MaxMessageSize (sender) ---- */

int gni_enp_check_send_size(uint8_t type, size_t plain_len, size_t final_len, uint32_t peer_max)
{
    if (final_len > GNI_ENP_MAX_FRAME_LEN || plain_len > GNI_ENP_MAX_FRAME_LEN) {
        return GN_ETOOBIG;
    }
    if (peer_max == 0) {
        return 0;
    }
    if (final_len > peer_max) {
        return GN_ETOOBIG;
    }
    bool plain_too = (type >= GNI_ENP_MSG_NAME && type <= GNI_ENP_MSG_EVENT_CACHE) ||
                     type == GNI_ENP_RESPONSE;
    if (plain_too && plain_len > peer_max) {
        return GN_ETOOBIG;
    }
    return 0;
}
