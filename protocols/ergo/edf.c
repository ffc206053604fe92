/*
 * EDF codec: one top-level value to and from bytes, byte for byte as Ergo
 * 3.1.0's net/edf writes it.
 * Spec: ../shared/specs/ergo-wire.md §d: "Type tags", "Where tags appear"
 * (top level = tag + body; statically typed positions = body only; any =
 * top-level form or ff), "Containers", "Registered (custom) types",
 * "Dictionaries (caches)" and "Limits".
 *
 * The encoder walks the value along its static type; the decoder reads a
 * tag, resolves the type (basic tag, 0x83 registered name or reg-cache id,
 * 0x82 folded descriptor) and reads the tagless body along it. Untrusted
 * input is bounded by depth, by a value budget (checked before every
 * allocation of children), by "a count is never larger than the remaining
 * bytes" for slices and maps, and by max_input.
 */
#include "edf_int.h"

#include "golemnet/err.h"

#include <string.h>

/* ---- encoder ------------------------------------------------------------------------------ */

typedef struct enc {
    uint8_t *p;   /* NULL when only counting */
    uint8_t *end;
    size_t n;     /* bytes produced */
    bool overflow;
    const gn_edf_dict *dict;
    uint32_t max_depth;
} enc;

static void put(enc *e, const void *src, size_t k)
{
    e->n += k;
    if (!e->p || e->overflow) {
        return;
    }
    if ((size_t)(e->end - e->p) < k) {
        e->overflow = true;
        return;
    }
    if (k) {
        memcpy(e->p, src, k);
        e->p += k;
    }
}

static void put_u8(enc *e, uint8_t x)
{
    put(e, &x, 1);
}

static void put_u16(enc *e, uint16_t x)
{
    uint8_t b[2] = {(uint8_t)(x >> 8), (uint8_t)x};
    put(e, b, 2);
}

static void put_u32(enc *e, uint32_t x)
{
    uint8_t b[4] = {(uint8_t)(x >> 24), (uint8_t)(x >> 16), (uint8_t)(x >> 8), (uint8_t)x};
    put(e, b, 4);
}

static void put_u64(enc *e, uint64_t x)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++) {
        b[i] = (uint8_t)(x >> (56 - 8 * i));
    }
    put(e, b, 8);
}

static int put_atom(enc *e, gn_slice a)
{
    if (a.len > GN_EDF_ATOM_MAX) {
        return GN_ERANGE;
    }
    uint16_t id;
    if (e->dict && gn_edf_dict_find_id(e->dict, GN_EDF_DICT_ATOM, (const char *)a.base, a.len,
                                       &id) == 0) {
        put_u16(e, id);
        return 0;
    }
    put_u16(e, (uint16_t)a.len);
    put(e, a.base, a.len);
    return 0;
}

/* 0x83 already written: the name or its reg-cache id */
static void put_typeref(enc *e, const gn_edf_type *t)
{
    uint16_t id;
    if (e->dict &&
        gn_edf_dict_find_id(e->dict, GN_EDF_DICT_TYPE, t->name, t->name_len, &id) == 0) {
        put_u16(e, id);
        return;
    }
    put_u16(e, t->name_len);
    put(e, t->name, t->name_len);
}

static int put_descriptor(enc *e, const gn_edf_type *t, uint32_t depth)
{
    if (!t || depth > e->max_depth) {
        return t ? GN_ELIMIT : GN_EINVAL;
    }
    if (t->name) {
        put_u8(e, GN_EDF_TAG_REG);
        put_typeref(e, t);
        return 0;
    }
    int rc;
    switch (t->kind) {
    case GN_EDF_SLICE:
        put_u8(e, GN_EDF_TAG_SLICE);
        return put_descriptor(e, t->elem, depth + 1);
    case GN_EDF_ARRAY:
        put_u8(e, GN_EDF_TAG_ARRAY);
        put_u32(e, t->len);
        return put_descriptor(e, t->elem, depth + 1);
    case GN_EDF_MAP:
        put_u8(e, GN_EDF_TAG_MAP);
        if ((rc = put_descriptor(e, t->key, depth + 1)) < 0) {
            return rc;
        }
        return put_descriptor(e, t->elem, depth + 1);
    case GN_EDF_STRUCT:
    case GN_EDF_CUSTOM:
    case GN_EDF_NIL:
        return GN_EINVAL; /* only as registered types */
    default:
        if ((unsigned)t->kind >= GN_EDF_KIND_COUNT) {
            return GN_EINVAL;
        }
        put_u8(e, gn_edf_kind_tag(t->kind));
        return 0;
    }
}

static int put_top(enc *e, const gn_edf_value *v, uint32_t depth);

static int put_body(enc *e, const gn_edf_type *t, const gn_edf_value *v, uint32_t depth)
{
    if (!t) {
        return GN_EINVAL;
    }
    if (t->kind == GN_EDF_ANY) {
        if (v->kind == GN_EDF_NIL) {
            put_u8(e, GN_EDF_TAG_NIL);
            return 0;
        }
        return put_top(e, v, depth + 1);
    }
    if (v->kind != t->kind) {
        return GN_EINVAL;
    }
    int rc;
    switch (t->kind) {
    case GN_EDF_ATOM:
        return put_atom(e, v->u.bytes);
    case GN_EDF_STRING:
        if (v->u.bytes.len > GN_EDF_STRING_MAX) {
            return GN_ERANGE;
        }
        put_u16(e, (uint16_t)v->u.bytes.len);
        put(e, v->u.bytes.base, v->u.bytes.len);
        return 0;
    case GN_EDF_BINARY:
    case GN_EDF_CUSTOM:
        if (v->u.bytes.len > GN_EDF_BINARY_MAX) {
            return GN_ERANGE;
        }
        put_u32(e, (uint32_t)v->u.bytes.len);
        put(e, v->u.bytes.base, v->u.bytes.len);
        return 0;
    case GN_EDF_FLOAT32: {
        uint32_t bits;
        memcpy(&bits, &v->u.f32, 4);
        put_u32(e, bits);
        return 0;
    }
    case GN_EDF_FLOAT64: {
        uint64_t bits;
        memcpy(&bits, &v->u.f64, 8);
        put_u64(e, bits);
        return 0;
    }
    case GN_EDF_BOOL:
        put_u8(e, v->u.b ? 1 : 0);
        return 0;
    case GN_EDF_INT8:
    case GN_EDF_UINT8:
        put_u8(e, (uint8_t)v->u.u);
        return 0;
    case GN_EDF_INT16:
    case GN_EDF_UINT16:
        put_u16(e, (uint16_t)v->u.u);
        return 0;
    case GN_EDF_INT32:
    case GN_EDF_UINT32:
        put_u32(e, (uint32_t)v->u.u);
        return 0;
    case GN_EDF_INT64:
    case GN_EDF_INT:
    case GN_EDF_UINT64:
    case GN_EDF_UINT:
        put_u64(e, v->u.u);
        return 0;
    case GN_EDF_ERROR: {
        if (v->nil) {
            put_u16(e, 0xffff);
            return 0;
        }
        if (v->u.bytes.len > GN_EDF_ERROR_MAX) {
            return GN_ERANGE;
        }
        uint16_t id;
        if (e->dict && gn_edf_dict_find_id(e->dict, GN_EDF_DICT_ERROR,
                                           (const char *)v->u.bytes.base, v->u.bytes.len,
                                           &id) == 0) {
            put_u16(e, id);
            return 0;
        }
        put_u16(e, (uint16_t)v->u.bytes.len);
        put(e, v->u.bytes.base, v->u.bytes.len);
        return 0;
    }
    case GN_EDF_PID:
        if ((rc = put_atom(e, v->u.pid.node)) < 0) {
            return rc;
        }
        put_u64(e, v->u.pid.id);
        put_u64(e, (uint64_t)v->u.pid.creation);
        return 0;
    case GN_EDF_PROCESSID:
    case GN_EDF_EVENT:
        if ((rc = put_atom(e, v->u.name.node)) < 0) {
            return rc;
        }
        return put_atom(e, v->u.name.name);
    case GN_EDF_REF:
    case GN_EDF_ALIAS:
        if ((rc = put_atom(e, v->u.ref.node)) < 0) {
            return rc;
        }
        put_u64(e, (uint64_t)v->u.ref.creation);
        for (int i = 0; i < 3; i++) {
            put_u64(e, v->u.ref.id[i]);
        }
        return 0;
    case GN_EDF_TIME: {
        const gn_edf_time *tm = &v->u.time;
        if (tm->version != 1 && tm->version != 2) {
            return GN_ERANGE;
        }
        put_u8(e, tm->version == 1 ? 15 : 16);
        put_u8(e, tm->version);
        put_u64(e, (uint64_t)tm->sec);
        put_u32(e, (uint32_t)tm->nsec);
        put_u16(e, (uint16_t)tm->offset_min);
        if (tm->version == 2) {
            put_u8(e, (uint8_t)tm->offset_sec);
        }
        return 0;
    }
    case GN_EDF_SLICE:
    case GN_EDF_MAP: {
        if (v->nil) {
            put_u8(e, GN_EDF_TAG_NIL);
            return 0;
        }
        if (depth >= e->max_depth) {
            return GN_ELIMIT;
        }
        bool map = t->kind == GN_EDF_MAP;
        put_u8(e, t->name ? GN_EDF_TAG_REG : map ? GN_EDF_TAG_MAP : GN_EDF_TAG_SLICE);
        put_u32(e, v->cnt);
        if (v->cnt && !v->u.items) {
            return GN_EINVAL;
        }
        for (uint32_t i = 0; i < v->cnt; i++) {
            if (map) {
                if ((rc = put_body(e, t->key, &v->u.items[2 * (size_t)i], depth + 1)) < 0 ||
                    (rc = put_body(e, t->elem, &v->u.items[2 * (size_t)i + 1], depth + 1)) < 0) {
                    return rc;
                }
            } else if ((rc = put_body(e, t->elem, &v->u.items[i], depth + 1)) < 0) {
                return rc;
            }
        }
        return 0;
    }
    case GN_EDF_ARRAY:
    case GN_EDF_STRUCT:
        if (v->cnt != t->len || (v->cnt && !v->u.items)) {
            return GN_EINVAL;
        }
        if (depth >= e->max_depth) {
            return GN_ELIMIT;
        }
        for (uint32_t i = 0; i < v->cnt; i++) {
            const gn_edf_type *ft = t->kind == GN_EDF_STRUCT ? t->fields[i].type : t->elem;
            if ((rc = put_body(e, ft, &v->u.items[i], depth + 1)) < 0) {
                return rc;
            }
        }
        return 0;
    default:
        return GN_EINVAL;
    }
}

static int put_top(enc *e, const gn_edf_value *v, uint32_t depth)
{
    if (depth > e->max_depth) {
        return GN_ELIMIT;
    }
    const gn_edf_type *t = v->type;
    if (v->kind == GN_EDF_NIL || !t || t->kind != v->kind) {
        return GN_EINVAL;
    }
    if (t->name) {
        put_u8(e, GN_EDF_TAG_REG);
        put_typeref(e, t);
        return put_body(e, t, v, depth);
    }
    switch (t->kind) {
    case GN_EDF_SLICE:
    case GN_EDF_ARRAY:
    case GN_EDF_MAP: {
        put_u8(e, GN_EDF_TAG_DESCRIPTOR);
        uint8_t *lenp = e->p;
        size_t n0 = e->n;
        put_u16(e, 0);
        int rc = put_descriptor(e, t, depth);
        if (rc < 0) {
            return rc;
        }
        size_t dlen = e->n - n0 - 2;
        if (dlen > GN_EDF_DESCRIPTOR_MAX) {
            return GN_ERANGE;
        }
        if (lenp && !e->overflow) {
            lenp[0] = (uint8_t)(dlen >> 8);
            lenp[1] = (uint8_t)dlen;
        }
        return put_body(e, t, v, depth);
    }
    case GN_EDF_ANY:
    case GN_EDF_STRUCT:
    case GN_EDF_CUSTOM:
        return GN_EINVAL;
    default:
        if ((unsigned)t->kind >= GN_EDF_KIND_COUNT) {
            return GN_EINVAL;
        }
        put_u8(e, gn_edf_kind_tag(t->kind));
        return put_body(e, t, v, depth);
    }
}

static int encode(const gn_edf_encode_opts *o, const gn_edf_value *v, enc *e)
{
    if (!v || v->kind == GN_EDF_NIL) {
        return GN_EINVAL; /* Ergo cannot encode a top-level nil */
    }
    e->dict = o ? o->dict : NULL;
    e->max_depth = o && o->max_depth ? o->max_depth : GN_EDF_DEFAULT_MAX_DEPTH;
    return put_top(e, v, 0);
}

int gn_edf_encode(const gn_edf_encode_opts *o, const gn_edf_value *v, gn_buf *out)
{
    if (!out) {
        return GN_EINVAL;
    }
    enc e = {.p = out->last, .end = out->end};
    int rc = encode(o, v, &e);
    if (rc < 0) {
        return rc;
    }
    if (e.overflow) {
        return GN_ENOSPC;
    }
    if (e.n > (size_t)INT32_MAX) {
        return GN_ERANGE; /* the byte count must fit the return value */
    }
    out->last = e.p;
    return (int)e.n;
}

int gn_edf_encoded_len(const gn_edf_encode_opts *o, const gn_edf_value *v, size_t *len)
{
    if (!len) {
        return GN_EINVAL;
    }
    enc e = {0};
    int rc = encode(o, v, &e);
    if (rc < 0) {
        return rc;
    }
    *len = e.n;
    return 0;
}

/* ---- decoder ------------------------------------------------------------------------------ */

typedef struct dec {
    const uint8_t *base;
    const uint8_t *p;
    const uint8_t *end;
    bool capped; /* end was cut by max_input */
    const gn_edf_decode_opts *o;
    gn_edf_arena *a;
    uint64_t values;
    gn_edf_decode_error *err;
} dec;

static int fail_at(dec *d, const uint8_t *at, int code, int tag, const char *what)
{
    if (d->err) {
        d->err->code = code;
        d->err->offset = (size_t)(at - d->base);
        d->err->tag = tag;
        d->err->what = what;
    }
    return code;
}

/* at least @k bytes left, else truncated (or past max_input) */
static int need(dec *d, size_t k, int tag)
{
    if ((size_t)(d->end - d->p) >= k) {
        return 0;
    }
    if (d->capped) {
        return fail_at(d, d->p, GN_ETOOBIG, tag, "value exceeds max_input");
    }
    return fail_at(d, d->p, GN_EPARSE, tag, "truncated");
}

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static uint64_t rd64(const uint8_t *p)
{
    return ((uint64_t)rd32(p) << 32) | rd32(p + 4);
}

/* @len raw bytes into *out (borrowed, or copied with GN_EDF_DECODE_COPY) */
static int get_bytes(dec *d, size_t len, gn_slice *out, int tag)
{
    int rc = need(d, len, tag);
    if (rc < 0) {
        return rc;
    }
    if ((d->o->flags & GN_EDF_DECODE_COPY) && len) {
        void *c = gni_edf_arena_dup(d->a, d->p, len);
        if (!c) {
            return fail_at(d, d->p, GN_ENOMEM, tag, "arena exhausted");
        }
        *out = gn_slice_of(c, len);
    } else {
        *out = gn_slice_of(len ? d->p : NULL, len);
    }
    d->p += len;
    return 0;
}

static int get_cached(dec *d, gn_edf_dict_kind kind, uint16_t id, gn_slice *out, int tag,
                      const char *what)
{
    if (gn_edf_dict_find(d->o->dict, kind, id, out) < 0) {
        return fail_at(d, d->p - 2, GN_ENOTFOUND, tag, what);
    }
    if ((d->o->flags & GN_EDF_DECODE_COPY) && out->len) {
        void *c = gni_edf_arena_dup(d->a, out->base, out->len);
        if (!c) {
            return fail_at(d, d->p - 2, GN_ENOMEM, tag, "arena exhausted");
        }
        out->base = c;
    }
    return 0;
}

static int get_atom(dec *d, gn_slice *out, int tag)
{
    int rc = need(d, 2, tag);
    if (rc < 0) {
        return rc;
    }
    uint16_t n = rd16(d->p);
    d->p += 2;
    if (n > GN_EDF_ATOM_MAX) {
        return get_cached(d, GN_EDF_DICT_ATOM, n, out, tag, "atom id not in the dictionary");
    }
    return get_bytes(d, n, out, tag);
}

static int budget(dec *d, uint64_t n, int tag)
{
    if (n > d->o->max_values || d->values + n > d->o->max_values) {
        return fail_at(d, d->p, GN_ELIMIT, tag, "value count limit (max_values)");
    }
    d->values += n;
    return 0;
}

static int get_typeref(dec *d, const gn_edf_type **out)
{
    const uint8_t *at = d->p - 1;
    int rc = need(d, 2, GN_EDF_TAG_REG);
    if (rc < 0) {
        return rc;
    }
    uint16_t n = rd16(d->p);
    d->p += 2;
    gn_slice name;
    if (n > GN_EDF_NAME_MAX) {
        rc = get_cached(d, GN_EDF_DICT_TYPE, n, &name, GN_EDF_TAG_REG,
                        "type id not in the dictionary");
    } else {
        rc = need(d, n, GN_EDF_TAG_REG);
        name = gn_slice_of(d->p, n);
        d->p += rc < 0 ? 0 : n;
    }
    if (rc < 0) {
        return rc;
    }
    const gn_edf_type *t = gn_edf_registry_find(d->o->reg, (const char *)name.base, name.len);
    if (!t) {
        return fail_at(d, at, GN_ENOTFOUND, GN_EDF_TAG_REG, "unregistered type");
    }
    *out = t;
    return 0;
}

static int get_descriptor(dec *d, const gn_edf_type **out, uint32_t depth)
{
    int rc = need(d, 1, GN_EDF_TAG_DESCRIPTOR);
    if (rc < 0) {
        return rc;
    }
    const uint8_t *at = d->p;
    uint8_t tag = *d->p++;
    if (depth > d->o->max_depth) {
        return fail_at(d, at, GN_ELIMIT, tag, "depth limit (max_depth) in a descriptor");
    }
    const gn_edf_type *t = gni_edf_type_of_tag(tag);
    if (t) {
        *out = t;
        return 0;
    }
    if (tag == GN_EDF_TAG_ANY) {
        *out = gn_edf_type_basic(GN_EDF_ANY);
        return 0;
    }
    if (tag == GN_EDF_TAG_REG) {
        return get_typeref(d, out);
    }
    if (tag != GN_EDF_TAG_SLICE && tag != GN_EDF_TAG_ARRAY && tag != GN_EDF_TAG_MAP) {
        return fail_at(d, at, GN_EPARSE, tag, "tag not allowed in a descriptor");
    }
    if ((rc = budget(d, 1, tag)) < 0) {
        return rc;
    }
    gn_edf_type *c = gn_edf_arena_alloc(d->a, sizeof *c);
    if (!c) {
        return fail_at(d, at, GN_ENOMEM, tag, "arena exhausted");
    }
    memset(c, 0, sizeof *c);
    if (tag == GN_EDF_TAG_SLICE) {
        c->kind = GN_EDF_SLICE;
    } else if (tag == GN_EDF_TAG_ARRAY) {
        c->kind = GN_EDF_ARRAY;
        if ((rc = need(d, 4, tag)) < 0) {
            return rc;
        }
        c->len = rd32(d->p);
        d->p += 4;
    } else {
        c->kind = GN_EDF_MAP;
        if ((rc = get_descriptor(d, &c->key, depth + 1)) < 0) {
            return rc;
        }
    }
    if ((rc = get_descriptor(d, &c->elem, depth + 1)) < 0) {
        return rc;
    }
    *out = c;
    return 0;
}

static int get_top(dec *d, gn_edf_value *v, uint32_t depth);

static int get_body(dec *d, const gn_edf_type *t, gn_edf_value *v, uint32_t depth)
{
    int tag = gn_edf_kind_tag(t->kind);
    if (t->kind == GN_EDF_ANY) {
        return get_top(d, v, depth + 1);
    }
    memset(v, 0, sizeof *v);
    v->type = t;
    v->kind = (uint8_t)t->kind;
    static const uint8_t widths[GN_EDF_KIND_COUNT] = {
        [GN_EDF_FLOAT32] = 4, [GN_EDF_FLOAT64] = 8, [GN_EDF_BOOL] = 1,
        [GN_EDF_INT8] = 1,    [GN_EDF_INT16] = 2,   [GN_EDF_INT32] = 4,
        [GN_EDF_INT64] = 8,   [GN_EDF_INT] = 8,     [GN_EDF_UINT8] = 1,
        [GN_EDF_UINT16] = 2,  [GN_EDF_UINT32] = 4,  [GN_EDF_UINT64] = 8,
        [GN_EDF_UINT] = 8,
    };
    int rc;
    size_t w = widths[t->kind];
    if (w) {
        if ((rc = need(d, w, tag)) < 0) {
            return rc;
        }
        const uint8_t *p = d->p;
        d->p += w;
        switch (t->kind) {
        case GN_EDF_FLOAT32: {
            uint32_t bits = rd32(p);
            memcpy(&v->u.f32, &bits, 4);
            return 0;
        }
        case GN_EDF_FLOAT64: {
            uint64_t bits = rd64(p);
            memcpy(&v->u.f64, &bits, 8);
            return 0;
        }
        case GN_EDF_BOOL:
            v->u.b = p[0] == 1; /* anything else is false, as in Ergo */
            return 0;
        case GN_EDF_INT8:
            v->u.i = (int8_t)p[0];
            return 0;
        case GN_EDF_INT16:
            v->u.i = (int16_t)rd16(p);
            return 0;
        case GN_EDF_INT32:
            v->u.i = (int32_t)rd32(p);
            return 0;
        case GN_EDF_UINT8:
            v->u.u = p[0];
            return 0;
        case GN_EDF_UINT16:
            v->u.u = rd16(p);
            return 0;
        case GN_EDF_UINT32:
            v->u.u = rd32(p);
            return 0;
        default: /* 8-byte integers */
            v->u.u = rd64(p);
            return 0;
        }
    }
    switch (t->kind) {
    case GN_EDF_ATOM:
        return get_atom(d, &v->u.bytes, tag);
    case GN_EDF_STRING:
        if ((rc = need(d, 2, tag)) < 0) {
            return rc;
        }
        d->p += 2;
        return get_bytes(d, rd16(d->p - 2), &v->u.bytes, tag);
    case GN_EDF_BINARY:
    case GN_EDF_CUSTOM:
        if ((rc = need(d, 4, tag)) < 0) {
            return rc;
        }
        d->p += 4;
        return get_bytes(d, rd32(d->p - 4), &v->u.bytes, tag);
    case GN_EDF_ERROR: {
        if ((rc = need(d, 2, tag)) < 0) {
            return rc;
        }
        uint16_t n = rd16(d->p);
        d->p += 2;
        if (n == 0xffff) {
            v->nil = true;
            return 0;
        }
        if (n > GN_EDF_ERROR_MAX) {
            return get_cached(d, GN_EDF_DICT_ERROR, n, &v->u.bytes, tag,
                              "error id not in the dictionary");
        }
        return get_bytes(d, n, &v->u.bytes, tag);
    }
    case GN_EDF_PID:
        if ((rc = get_atom(d, &v->u.pid.node, tag)) < 0 || (rc = need(d, 16, tag)) < 0) {
            return rc;
        }
        v->u.pid.id = rd64(d->p);
        v->u.pid.creation = (int64_t)rd64(d->p + 8);
        d->p += 16;
        return 0;
    case GN_EDF_PROCESSID:
    case GN_EDF_EVENT:
        if ((rc = get_atom(d, &v->u.name.node, tag)) < 0) {
            return rc;
        }
        return get_atom(d, &v->u.name.name, tag);
    case GN_EDF_REF:
    case GN_EDF_ALIAS:
        if ((rc = get_atom(d, &v->u.ref.node, tag)) < 0 || (rc = need(d, 32, tag)) < 0) {
            return rc;
        }
        v->u.ref.creation = (int64_t)rd64(d->p);
        for (int i = 0; i < 3; i++) {
            v->u.ref.id[i] = rd64(d->p + 8 + 8 * i);
        }
        d->p += 32;
        return 0;
    case GN_EDF_TIME: {
        if ((rc = need(d, 1, tag)) < 0) {
            return rc;
        }
        const uint8_t *at = d->p;
        uint8_t l = d->p[0];
        if ((rc = need(d, 1 + (size_t)l, tag)) < 0) {
            return rc;
        }
        const uint8_t *p = d->p + 1;
        if (!((l == 15 && p[0] == 1) || (l == 16 && p[0] == 2))) {
            return fail_at(d, at, GN_EPARSE, tag, "malformed time: bad length or version");
        }
        v->u.time.version = p[0];
        v->u.time.sec = (int64_t)rd64(p + 1);
        v->u.time.nsec = (int32_t)rd32(p + 9);
        v->u.time.offset_min = (int16_t)rd16(p + 13);
        v->u.time.offset_sec = l == 16 ? (int8_t)p[15] : 0;
        d->p += 1 + (size_t)l;
        return 0;
    }
    case GN_EDF_SLICE:
    case GN_EDF_MAP: {
        if ((rc = need(d, 1, tag)) < 0) {
            return rc;
        }
        const uint8_t *at = d->p;
        uint8_t m = *d->p++;
        if (m == GN_EDF_TAG_NIL) {
            v->nil = true;
            return 0;
        }
        bool map = t->kind == GN_EDF_MAP;
        uint8_t want = t->name ? GN_EDF_TAG_REG : map ? GN_EDF_TAG_MAP : GN_EDF_TAG_SLICE;
        if (m != want) {
            return fail_at(d, at, GN_EPARSE, m, map ? "bad map marker" : "bad slice marker");
        }
        if ((rc = need(d, 4, m)) < 0) {
            return rc;
        }
        uint32_t cnt = rd32(d->p);
        d->p += 4;
        if (cnt > (size_t)(d->end - d->p)) {
            if (d->capped) {
                return fail_at(d, at, GN_ETOOBIG, m, "value exceeds max_input");
            }
            return fail_at(d, at, GN_EPARSE, m, "count larger than the remaining bytes");
        }
        if (depth >= d->o->max_depth) {
            return fail_at(d, at, GN_ELIMIT, m, "depth limit (max_depth)");
        }
        size_t n = map ? (size_t)cnt * 2 : cnt;
        if ((rc = budget(d, n, m)) < 0) {
            return rc;
        }
        v->cnt = cnt;
        if (n) {
            v->u.items = gn_edf_arena_alloc(d->a, n * sizeof *v->u.items);
            if (!v->u.items) {
                return fail_at(d, at, GN_ENOMEM, m, "arena exhausted");
            }
        }
        for (uint32_t i = 0; i < cnt; i++) {
            if (map) {
                if ((rc = get_body(d, t->key, &v->u.items[2 * (size_t)i], depth + 1)) < 0 ||
                    (rc = get_body(d, t->elem, &v->u.items[2 * (size_t)i + 1], depth + 1)) < 0) {
                    return rc;
                }
            } else if ((rc = get_body(d, t->elem, &v->u.items[i], depth + 1)) < 0) {
                return rc;
            }
        }
        return 0;
    }
    case GN_EDF_ARRAY:
    case GN_EDF_STRUCT: {
        if (depth >= d->o->max_depth) {
            return fail_at(d, d->p, GN_ELIMIT, tag, "depth limit (max_depth)");
        }
        uint32_t cnt = t->len;
        if ((rc = budget(d, cnt, tag)) < 0) {
            return rc;
        }
        v->cnt = cnt;
        if (cnt) {
            v->u.items = gn_edf_arena_alloc(d->a, (size_t)cnt * sizeof *v->u.items);
            if (!v->u.items) {
                return fail_at(d, d->p, GN_ENOMEM, tag, "arena exhausted");
            }
        }
        for (uint32_t i = 0; i < cnt; i++) {
            const gn_edf_type *ft = t->kind == GN_EDF_STRUCT ? t->fields[i].type : t->elem;
            if ((rc = get_body(d, ft, &v->u.items[i], depth + 1)) < 0) {
                return rc;
            }
        }
        return 0;
    }
    default:
        return fail_at(d, d->p, GN_EPARSE, tag, "type cannot be decoded");
    }
}

static int get_top(dec *d, gn_edf_value *v, uint32_t depth)
{
    gn_edf_set_nil(v);
    int rc = need(d, 1, -1);
    if (rc < 0) {
        return rc;
    }
    const uint8_t *at = d->p;
    uint8_t tag = *d->p++;
    if (depth > d->o->max_depth) {
        return fail_at(d, at, GN_ELIMIT, tag, "depth limit (max_depth)");
    }
    const gn_edf_type *t = gni_edf_type_of_tag(tag);
    if (!t) {
        switch (tag) {
        case GN_EDF_TAG_NIL:
            return 0;
        case GN_EDF_TAG_REG:
            if ((rc = get_typeref(d, &t)) < 0) {
                return rc;
            }
            break;
        case GN_EDF_TAG_DESCRIPTOR: {
            if ((rc = need(d, 2, tag)) < 0) {
                return rc;
            }
            size_t dlen = rd16(d->p);
            d->p += 2;
            if ((rc = need(d, dlen, tag)) < 0) {
                return rc;
            }
            const uint8_t *dend = d->p + dlen;
            const uint8_t *save_end = d->end;
            bool save_capped = d->capped;
            d->end = dend; /* the descriptor may not read past its length */
            d->capped = false;
            rc = get_descriptor(d, &t, depth);
            d->end = save_end;
            d->capped = save_capped;
            if (rc < 0) {
                return rc;
            }
            if (d->p != dend) {
                return fail_at(d, d->p, GN_EPARSE, tag, "descriptor shorter than its length");
            }
            if (t->name || (t->kind != GN_EDF_SLICE && t->kind != GN_EDF_ARRAY &&
                            t->kind != GN_EDF_MAP)) {
                return fail_at(d, at, GN_EPARSE, tag,
                               "folded descriptor of a type that is not a slice, array or map");
            }
            break;
        }
        default:
            return fail_at(d, at, GN_EPARSE, tag, "unknown tag");
        }
    }
    return get_body(d, t, v, depth);
}

void gn_edf_decode_opts_default(gn_edf_decode_opts *o)
{
    if (!o) {
        return;
    }
    memset(o, 0, sizeof *o);
    o->max_depth = GN_EDF_DEFAULT_MAX_DEPTH;
    o->max_values = GN_EDF_DEFAULT_MAX_VALUES;
    o->max_input = GN_EDF_DEFAULT_MAX_INPUT;
}

int gn_edf_decode(const gn_edf_decode_opts *o, gn_edf_arena *a, const uint8_t *in, size_t len,
                  gn_edf_value *out, size_t *consumed, gn_edf_decode_error *err)
{
    gn_edf_decode_opts defaults;
    if (!o) {
        gn_edf_decode_opts_default(&defaults);
        o = &defaults;
    }
    dec d = {.base = in, .p = in, .end = in, .o = o, .a = a, .err = err};
    if (err) {
        err->code = 0;
        err->offset = 0;
        err->tag = -1;
        err->what = NULL;
    }
    if (!a || !out || (!in && len)) {
        if (out) {
            gn_edf_set_nil(out);
        }
        return fail_at(&d, in, GN_EINVAL, -1, "invalid argument");
    }
    if (len > o->max_input) {
        len = o->max_input;
        d.capped = true;
    }
    d.end = in + len;
    int rc = budget(&d, 1, -1);
    if (rc == 0) {
        rc = get_top(&d, out, 0);
    }
    if (rc < 0) {
        gn_edf_set_nil(out);
        return rc;
    }
    if (consumed) {
        *consumed = (size_t)(d.p - in);
    }
    return 0;
}
