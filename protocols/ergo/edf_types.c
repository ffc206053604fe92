/*
 * EDF: arena, the type model, value setters, dictionaries (caches) and the
 * registry of types, atoms and errors. The codec is in edf.c.
 * Spec: ../shared/specs/ergo-wire.md §d "Registered (custom) types",
 * "Dictionaries (caches)", "Limits"; §b Introduce for the dictionaries.
 */
#include "edf_int.h"

#include "golemnet/err.h"
#include "golemnet/log.h"

#include "gni.h"
#include "gni_htab.h"

#include <stdio.h>
#include <string.h>

/* ---- kinds -------------------------------------------------------------------------- */

#define BASIC(k) {.kind = (k)}
static const gn_edf_type basic_types[GN_EDF_KIND_COUNT] = {
    [GN_EDF_ATOM] = BASIC(GN_EDF_ATOM),       [GN_EDF_STRING] = BASIC(GN_EDF_STRING),
    [GN_EDF_BINARY] = BASIC(GN_EDF_BINARY),   [GN_EDF_FLOAT32] = BASIC(GN_EDF_FLOAT32),
    [GN_EDF_FLOAT64] = BASIC(GN_EDF_FLOAT64), [GN_EDF_BOOL] = BASIC(GN_EDF_BOOL),
    [GN_EDF_INT8] = BASIC(GN_EDF_INT8),       [GN_EDF_INT16] = BASIC(GN_EDF_INT16),
    [GN_EDF_INT32] = BASIC(GN_EDF_INT32),     [GN_EDF_INT64] = BASIC(GN_EDF_INT64),
    [GN_EDF_INT] = BASIC(GN_EDF_INT),         [GN_EDF_UINT8] = BASIC(GN_EDF_UINT8),
    [GN_EDF_UINT16] = BASIC(GN_EDF_UINT16),   [GN_EDF_UINT32] = BASIC(GN_EDF_UINT32),
    [GN_EDF_UINT64] = BASIC(GN_EDF_UINT64),   [GN_EDF_UINT] = BASIC(GN_EDF_UINT),
    [GN_EDF_ERROR] = BASIC(GN_EDF_ERROR),     [GN_EDF_PID] = BASIC(GN_EDF_PID),
    [GN_EDF_PROCESSID] = BASIC(GN_EDF_PROCESSID), [GN_EDF_ALIAS] = BASIC(GN_EDF_ALIAS),
    [GN_EDF_EVENT] = BASIC(GN_EDF_EVENT),     [GN_EDF_REF] = BASIC(GN_EDF_REF),
    [GN_EDF_TIME] = BASIC(GN_EDF_TIME),       [GN_EDF_ANY] = BASIC(GN_EDF_ANY),
};
#undef BASIC

static const uint8_t kind_tags[GN_EDF_KIND_COUNT] = {
    [GN_EDF_ATOM] = GN_EDF_TAG_ATOM,       [GN_EDF_STRING] = GN_EDF_TAG_STRING,
    [GN_EDF_BINARY] = GN_EDF_TAG_BINARY,   [GN_EDF_FLOAT32] = GN_EDF_TAG_FLOAT32,
    [GN_EDF_FLOAT64] = GN_EDF_TAG_FLOAT64, [GN_EDF_BOOL] = GN_EDF_TAG_BOOL,
    [GN_EDF_INT8] = GN_EDF_TAG_INT8,       [GN_EDF_INT16] = GN_EDF_TAG_INT16,
    [GN_EDF_INT32] = GN_EDF_TAG_INT32,     [GN_EDF_INT64] = GN_EDF_TAG_INT64,
    [GN_EDF_INT] = GN_EDF_TAG_INT,         [GN_EDF_UINT8] = GN_EDF_TAG_UINT8,
    [GN_EDF_UINT16] = GN_EDF_TAG_UINT16,   [GN_EDF_UINT32] = GN_EDF_TAG_UINT32,
    [GN_EDF_UINT64] = GN_EDF_TAG_UINT64,   [GN_EDF_UINT] = GN_EDF_TAG_UINT,
    [GN_EDF_ERROR] = GN_EDF_TAG_ERROR,     [GN_EDF_PID] = GN_EDF_TAG_PID,
    [GN_EDF_PROCESSID] = GN_EDF_TAG_PROCESSID, [GN_EDF_ALIAS] = GN_EDF_TAG_ALIAS,
    [GN_EDF_EVENT] = GN_EDF_TAG_EVENT,     [GN_EDF_REF] = GN_EDF_TAG_REF,
    [GN_EDF_TIME] = GN_EDF_TAG_TIME,       [GN_EDF_ANY] = GN_EDF_TAG_ANY,
    [GN_EDF_SLICE] = GN_EDF_TAG_SLICE,     [GN_EDF_ARRAY] = GN_EDF_TAG_ARRAY,
    [GN_EDF_MAP] = GN_EDF_TAG_MAP,         [GN_EDF_NIL] = GN_EDF_TAG_NIL,
};

static const char *const kind_names[GN_EDF_KIND_COUNT] = {
    "nil",    "atom",   "string", "binary",    "float32", "float64", "bool",  "int8",
    "int16",  "int32",  "int64",  "int",       "uint8",   "uint16",  "uint32", "uint64",
    "uint",   "error",  "pid",    "processid", "alias",   "event",   "ref",   "time",
    "any",    "slice",  "array",  "map",       "struct",  "custom",
};

const gn_edf_type *gn_edf_type_basic(gn_edf_kind kind)
{
    if ((unsigned)kind >= GN_EDF_KIND_COUNT || kind == GN_EDF_NIL || kind > GN_EDF_ANY) {
        return NULL;
    }
    return &basic_types[kind];
}

uint8_t gn_edf_kind_tag(gn_edf_kind kind)
{
    return (unsigned)kind < GN_EDF_KIND_COUNT ? kind_tags[kind] : 0;
}

const char *gn_edf_kind_name(gn_edf_kind kind)
{
    return (unsigned)kind < GN_EDF_KIND_COUNT ? kind_names[kind] : "unknown";
}

const gn_edf_type *gni_edf_type_of_tag(uint8_t tag)
{
    if ((tag >= GN_EDF_TAG_ATOM && tag <= GN_EDF_TAG_ERROR) ||
        (tag >= GN_EDF_TAG_PID && tag <= GN_EDF_TAG_TIME)) {
        for (int k = GN_EDF_ATOM; k <= GN_EDF_TIME; k++) {
            if (kind_tags[k] == tag) {
                return &basic_types[k];
            }
        }
    }
    return NULL;
}

/* ---- arena ---------------------------------------------------------------------------- */

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t cap;
    size_t used;
    _Alignas(8) uint8_t data[];
} arena_chunk;

struct gn_edf_arena {
    arena_chunk *head; /* the chunk being filled; older ones follow */
    size_t next_len;
    size_t max_len;
    size_t held; /* bytes of all chunks */
    size_t used;
};

#define ARENA_CHUNK_MAX ((size_t)1 << 20)

gn_edf_arena *gn_edf_arena_new(size_t chunk_len, size_t max_len)
{
    gn_edf_arena *a = gn_calloc(1, sizeof *a);
    if (!a) {
        return NULL;
    }
    a->next_len = chunk_len ? chunk_len : 4096;
    a->max_len = max_len;
    return a;
}

void gn_edf_arena_free(gn_edf_arena *a)
{
    if (!a) {
        return;
    }
    arena_chunk *c = a->head;
    while (c) {
        arena_chunk *n = c->next;
        gn_free(c);
        c = n;
    }
    gn_free(a);
}

void gn_edf_arena_reset(gn_edf_arena *a)
{
    if (!a) {
        return;
    }
    arena_chunk *keep = NULL;
    arena_chunk *c = a->head;
    while (c) {
        arena_chunk *n = c->next;
        if (!keep || c->cap > keep->cap) {
            if (keep) {
                gn_free(keep);
            }
            keep = c;
        } else {
            gn_free(c);
        }
        c = n;
    }
    a->head = keep;
    a->held = 0;
    if (keep) {
        keep->next = NULL;
        keep->used = 0;
        a->held = keep->cap;
    }
    a->used = 0;
}

void *gn_edf_arena_alloc(gn_edf_arena *a, size_t len)
{
    if (!a || len > SIZE_MAX / 2) {
        return NULL;
    }
    len = (len + 7) & ~(size_t)7;
    arena_chunk *c = a->head;
    if (!c || c->cap - c->used < len) {
        size_t cap = a->next_len;
        if (cap < len) {
            cap = len;
        }
        if (a->max_len) {
            size_t room = a->held >= a->max_len ? 0 : a->max_len - a->held;
            if (len > room) {
                return NULL;
            }
            if (cap > room) {
                cap = room; /* the last bytes the bound allows */
            }
        }
        c = gn_malloc(sizeof *c + cap);
        if (!c) {
            return NULL;
        }
        c->cap = cap;
        c->used = 0;
        c->next = a->head;
        a->head = c;
        a->held += cap;
        if (a->next_len < ARENA_CHUNK_MAX) {
            a->next_len *= 2;
        }
    }
    void *p = c->data + c->used;
    c->used += len;
    a->used += len;
    return p;
}

size_t gn_edf_arena_used(const gn_edf_arena *a)
{
    return a ? a->used : 0;
}

size_t gni_edf_arena_held(const gn_edf_arena *a)
{
    return a ? a->held : 0;
}

void *gni_edf_arena_dup(gn_edf_arena *a, const void *p, size_t len)
{
    uint8_t *q = gn_edf_arena_alloc(a, len ? len : 1);
    if (q && len) {
        memcpy(q, p, len);
    }
    return q;
}

/* ---- composite types -------------------------------------------------------------------- */

static gn_edf_type *type_alloc(gn_edf_arena *a, gn_edf_kind kind)
{
    gn_edf_type *t = gn_edf_arena_alloc(a, sizeof *t);
    if (t) {
        memset(t, 0, sizeof *t);
        t->kind = kind;
    }
    return t;
}

const gn_edf_type *gn_edf_type_slice(gn_edf_arena *a, const gn_edf_type *elem)
{
    if (!elem) {
        return NULL;
    }
    gn_edf_type *t = type_alloc(a, GN_EDF_SLICE);
    if (t) {
        t->elem = elem;
    }
    return t;
}

const gn_edf_type *gn_edf_type_array(gn_edf_arena *a, uint32_t n, const gn_edf_type *elem)
{
    if (!elem) {
        return NULL;
    }
    gn_edf_type *t = type_alloc(a, GN_EDF_ARRAY);
    if (t) {
        t->elem = elem;
        t->len = n;
    }
    return t;
}

const gn_edf_type *gn_edf_type_map(gn_edf_arena *a, const gn_edf_type *key, const gn_edf_type *val)
{
    if (!key || !val) {
        return NULL;
    }
    gn_edf_type *t = type_alloc(a, GN_EDF_MAP);
    if (t) {
        t->key = key;
        t->elem = val;
    }
    return t;
}

/* ---- value setters -------------------------------------------------------------------- */

static void set_basic(gn_edf_value *v, gn_edf_kind kind)
{
    memset(v, 0, sizeof *v);
    v->kind = (uint8_t)kind;
    v->type = &basic_types[kind];
}

void gn_edf_set_nil(gn_edf_value *v)
{
    memset(v, 0, sizeof *v);
    v->kind = GN_EDF_NIL;
}

void gn_edf_set_bool(gn_edf_value *v, bool b)
{
    set_basic(v, GN_EDF_BOOL);
    v->u.b = b;
}

int gn_edf_set_int(gn_edf_value *v, gn_edf_kind kind, int64_t i)
{
    if (!v || kind < GN_EDF_INT8 || kind > GN_EDF_INT) {
        return GN_EINVAL;
    }
    set_basic(v, kind);
    v->u.i = i;
    return 0;
}

int gn_edf_set_uint(gn_edf_value *v, gn_edf_kind kind, uint64_t u)
{
    if (!v || kind < GN_EDF_UINT8 || kind > GN_EDF_UINT) {
        return GN_EINVAL;
    }
    set_basic(v, kind);
    v->u.u = u;
    return 0;
}

void gn_edf_set_float32(gn_edf_value *v, float f)
{
    set_basic(v, GN_EDF_FLOAT32);
    v->u.f32 = f;
}

void gn_edf_set_float64(gn_edf_value *v, double f)
{
    set_basic(v, GN_EDF_FLOAT64);
    v->u.f64 = f;
}

static void set_bytes(gn_edf_value *v, gn_edf_kind kind, const void *p, size_t len)
{
    set_basic(v, kind);
    v->u.bytes = gn_slice_of(p, len);
}

void gn_edf_set_atom(gn_edf_value *v, const char *s, size_t len)
{
    set_bytes(v, GN_EDF_ATOM, s, len);
}

void gn_edf_set_string(gn_edf_value *v, const char *s, size_t len)
{
    set_bytes(v, GN_EDF_STRING, s, len);
}

void gn_edf_set_binary(gn_edf_value *v, const uint8_t *p, size_t len)
{
    set_bytes(v, GN_EDF_BINARY, p, len);
}

void gn_edf_set_error(gn_edf_value *v, const char *s, size_t len)
{
    set_bytes(v, GN_EDF_ERROR, s, s ? len : 0);
    v->nil = s == NULL;
}

void gn_edf_set_pid(gn_edf_value *v, const char *node, size_t node_len, uint64_t id,
                    int64_t creation)
{
    set_basic(v, GN_EDF_PID);
    v->u.pid.node = gn_slice_of(node, node_len);
    v->u.pid.id = id;
    v->u.pid.creation = creation;
}

static void set_name(gn_edf_value *v, gn_edf_kind kind, const char *node, size_t node_len,
                     const char *name, size_t name_len)
{
    set_basic(v, kind);
    v->u.name.node = gn_slice_of(node, node_len);
    v->u.name.name = gn_slice_of(name, name_len);
}

void gn_edf_set_processid(gn_edf_value *v, const char *node, size_t node_len, const char *name,
                          size_t name_len)
{
    set_name(v, GN_EDF_PROCESSID, node, node_len, name, name_len);
}

void gn_edf_set_event(gn_edf_value *v, const char *node, size_t node_len, const char *name,
                      size_t name_len)
{
    set_name(v, GN_EDF_EVENT, node, node_len, name, name_len);
}

static void set_ref(gn_edf_value *v, gn_edf_kind kind, const char *node, size_t node_len,
                    int64_t creation, const uint64_t id[3])
{
    set_basic(v, kind);
    v->u.ref.node = gn_slice_of(node, node_len);
    v->u.ref.creation = creation;
    memcpy(v->u.ref.id, id, sizeof v->u.ref.id);
}

void gn_edf_set_ref(gn_edf_value *v, const char *node, size_t node_len, int64_t creation,
                    const uint64_t id[3])
{
    set_ref(v, GN_EDF_REF, node, node_len, creation, id);
}

void gn_edf_set_alias(gn_edf_value *v, const char *node, size_t node_len, int64_t creation,
                      const uint64_t id[3])
{
    set_ref(v, GN_EDF_ALIAS, node, node_len, creation, id);
}

void gn_edf_set_time(gn_edf_value *v, const gn_edf_time *t)
{
    set_basic(v, GN_EDF_TIME);
    v->u.time = *t;
}

int gn_edf_set_custom(gn_edf_value *v, const gn_edf_type *type, const uint8_t *p, size_t len)
{
    if (!v || !type || type->kind != GN_EDF_CUSTOM) {
        return GN_EINVAL;
    }
    memset(v, 0, sizeof *v);
    v->kind = GN_EDF_CUSTOM;
    v->type = type;
    v->u.bytes = gn_slice_of(p, len);
    return 0;
}

int gn_edf_set_composite(gn_edf_value *v, gn_edf_arena *a, const gn_edf_type *type, uint32_t cnt)
{
    if (!v || !a || !type) {
        return GN_EINVAL;
    }
    size_t n;
    switch (type->kind) {
    case GN_EDF_SLICE:
        n = cnt;
        break;
    case GN_EDF_MAP:
        n = (size_t)cnt * 2;
        break;
    case GN_EDF_ARRAY:
    case GN_EDF_STRUCT:
        cnt = type->len;
        n = cnt;
        break;
    default:
        return GN_EINVAL;
    }
    gn_edf_value *items = NULL;
    if (n) {
        if (n > SIZE_MAX / sizeof *items) {
            return GN_ENOMEM;
        }
        items = gn_edf_arena_alloc(a, n * sizeof *items);
        if (!items) {
            return GN_ENOMEM;
        }
        memset(items, 0, n * sizeof *items);
    }
    memset(v, 0, sizeof *v);
    v->kind = (uint8_t)type->kind;
    v->type = type;
    v->cnt = cnt;
    v->u.items = items;
    return 0;
}

int gn_edf_set_nil_of(gn_edf_value *v, const gn_edf_type *type)
{
    if (!v || !type || (type->kind != GN_EDF_SLICE && type->kind != GN_EDF_MAP)) {
        return GN_EINVAL;
    }
    memset(v, 0, sizeof *v);
    v->kind = (uint8_t)type->kind;
    v->type = type;
    v->nil = true;
    return 0;
}

int gn_edf_set_type(gn_edf_value *v, const gn_edf_type *type)
{
    if (!v || !type || v->kind != type->kind || v->kind == GN_EDF_NIL) {
        return GN_EINVAL;
    }
    v->type = type;
    return 0;
}

/* ---- equality -------------------------------------------------------------------------------- */

static bool type_equal(const gn_edf_type *a, const gn_edf_type *b, unsigned depth)
{
    if (a == b) {
        return true;
    }
    if (!a || !b || a->kind != b->kind || depth > 256) {
        return false;
    }
    if (a->name || b->name) {
        return a->name && b->name && a->name_len == b->name_len &&
               memcmp(a->name, b->name, a->name_len) == 0;
    }
    switch (a->kind) {
    case GN_EDF_SLICE:
        return type_equal(a->elem, b->elem, depth + 1);
    case GN_EDF_ARRAY:
        return a->len == b->len && type_equal(a->elem, b->elem, depth + 1);
    case GN_EDF_MAP:
        return type_equal(a->key, b->key, depth + 1) && type_equal(a->elem, b->elem, depth + 1);
    default:
        return true; /* basic kinds */
    }
}

static bool slice_eq(gn_slice a, gn_slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.base, b.base, a.len) == 0);
}

static bool value_equal(const gn_edf_value *a, const gn_edf_value *b, unsigned depth)
{
    if (a->kind != b->kind || depth > 1024) {
        return false;
    }
    if (a->kind == GN_EDF_NIL) {
        return true;
    }
    if (!type_equal(a->type, b->type, 0) || a->nil != b->nil) {
        return false;
    }
    switch ((gn_edf_kind)a->kind) {
    case GN_EDF_BOOL:
        return a->u.b == b->u.b;
    case GN_EDF_INT8:
    case GN_EDF_INT16:
    case GN_EDF_INT32:
    case GN_EDF_INT64:
    case GN_EDF_INT:
        return a->u.i == b->u.i;
    case GN_EDF_UINT8:
    case GN_EDF_UINT16:
    case GN_EDF_UINT32:
    case GN_EDF_UINT64:
    case GN_EDF_UINT:
        return a->u.u == b->u.u;
    case GN_EDF_FLOAT32:
        return memcmp(&a->u.f32, &b->u.f32, sizeof a->u.f32) == 0;
    case GN_EDF_FLOAT64:
        return memcmp(&a->u.f64, &b->u.f64, sizeof a->u.f64) == 0;
    case GN_EDF_ATOM:
    case GN_EDF_STRING:
    case GN_EDF_BINARY:
    case GN_EDF_CUSTOM:
    case GN_EDF_ERROR:
        return slice_eq(a->u.bytes, b->u.bytes);
    case GN_EDF_PID:
        return slice_eq(a->u.pid.node, b->u.pid.node) && a->u.pid.id == b->u.pid.id &&
               a->u.pid.creation == b->u.pid.creation;
    case GN_EDF_PROCESSID:
    case GN_EDF_EVENT:
        return slice_eq(a->u.name.node, b->u.name.node) &&
               slice_eq(a->u.name.name, b->u.name.name);
    case GN_EDF_REF:
    case GN_EDF_ALIAS:
        return slice_eq(a->u.ref.node, b->u.ref.node) &&
               a->u.ref.creation == b->u.ref.creation &&
               memcmp(a->u.ref.id, b->u.ref.id, sizeof a->u.ref.id) == 0;
    case GN_EDF_TIME:
        return a->u.time.sec == b->u.time.sec && a->u.time.nsec == b->u.time.nsec &&
               a->u.time.offset_min == b->u.time.offset_min &&
               a->u.time.offset_sec == b->u.time.offset_sec &&
               a->u.time.version == b->u.time.version;
    case GN_EDF_SLICE:
    case GN_EDF_ARRAY:
    case GN_EDF_MAP:
    case GN_EDF_STRUCT: {
        if (a->cnt != b->cnt) {
            return false;
        }
        size_t n = a->kind == GN_EDF_MAP ? (size_t)a->cnt * 2 : a->cnt;
        for (size_t i = 0; i < n; i++) {
            if (!value_equal(&a->u.items[i], &b->u.items[i], depth + 1)) {
                return false;
            }
        }
        return true;
    }
    default:
        return false;
    }
}

bool gn_edf_value_equal(const gn_edf_value *a, const gn_edf_value *b)
{
    if (!a || !b) {
        return a == b;
    }
    return value_equal(a, b, 0);
}

/* ---- dictionaries ---------------------------------------------------------------------------- */

typedef struct dict_ent {
    gni_hnode by_id;
    gni_hnode by_val;
    uint16_t id;
    uint32_t len;
    const char *s;
} dict_ent;

typedef struct dict_tab {
    gni_htab ids;
    gni_htab vals;
    dict_ent **ents; /* insertion order */
    size_t n, cap;
} dict_tab;

struct gn_edf_dict {
    gn_edf_arena *arena;
    dict_tab tab[3];
};

static const struct {
    uint16_t min, max;
    size_t len_max;
} dict_limits[3] = {
    [GN_EDF_DICT_ATOM] = {GN_EDF_ATOM_ID_MIN, GN_EDF_ATOM_ID_MAX, GN_EDF_ATOM_MAX},
    [GN_EDF_DICT_TYPE] = {GN_EDF_TYPE_ID_MIN, GN_EDF_TYPE_ID_MAX, GN_EDF_NAME_MAX},
    [GN_EDF_DICT_ERROR] = {GN_EDF_ERROR_ID_MIN, GN_EDF_ERROR_ID_MAX, GN_EDF_ERROR_MAX},
};

static uint64_t str_hash(const char *s, size_t len)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325); /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)s[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

gn_edf_dict *gn_edf_dict_new(void)
{
    gn_edf_dict *d = gn_calloc(1, sizeof *d);
    if (!d) {
        return NULL;
    }
    d->arena = gn_edf_arena_new(4096, 0);
    if (!d->arena) {
        gn_free(d);
        return NULL;
    }
    for (int k = 0; k < 3; k++) {
        if (gni_htab_init(&d->tab[k].ids, 16) < 0 || gni_htab_init(&d->tab[k].vals, 16) < 0) {
            gn_edf_dict_free(d);
            return NULL;
        }
    }
    return d;
}

void gn_edf_dict_free(gn_edf_dict *d)
{
    if (!d) {
        return;
    }
    for (int k = 0; k < 3; k++) {
        if (d->tab[k].ids.buckets) {
            gni_htab_fini(&d->tab[k].ids);
        }
        if (d->tab[k].vals.buckets) {
            gni_htab_fini(&d->tab[k].vals);
        }
        gn_free(d->tab[k].ents);
    }
    gn_edf_arena_free(d->arena);
    gn_free(d);
}

static dict_ent *dict_by_val(const dict_tab *t, const char *s, size_t len)
{
    gni_hnode *e = gni_htab_find(&t->vals, str_hash(s, len));
    while (e) {
        dict_ent *x = GNI_CONTAINER_OF(e, dict_ent, by_val);
        if (x->len == len && (len == 0 || memcmp(x->s, s, len) == 0)) {
            return x;
        }
        e = gni_htab_find_next(&t->vals, e);
    }
    return NULL;
}

int gn_edf_dict_add(gn_edf_dict *d, gn_edf_dict_kind kind, uint16_t id, const char *s, size_t len)
{
    if (!d || (unsigned)kind > GN_EDF_DICT_ERROR || (!s && len)) {
        return GN_EINVAL;
    }
    if (id < dict_limits[kind].min || id > dict_limits[kind].max ||
        len > dict_limits[kind].len_max) {
        return GN_ERANGE;
    }
    if (!s) {
        s = "";
    }
    dict_tab *t = &d->tab[kind];
    if (gni_htab_find(&t->ids, id) || dict_by_val(t, s, len)) {
        return GN_EEXIST;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        dict_ent **ents = gn_realloc(t->ents, cap * sizeof *ents);
        if (!ents) {
            return GN_ENOMEM;
        }
        t->ents = ents;
        t->cap = cap;
    }
    dict_ent *x = gn_edf_arena_alloc(d->arena, sizeof *x);
    char *copy = gn_edf_arena_alloc(d->arena, len + 1);
    if (!x || !copy) {
        return GN_ENOMEM;
    }
    memcpy(copy, s, len);
    copy[len] = '\0';
    memset(x, 0, sizeof *x);
    x->id = id;
    x->len = (uint32_t)len;
    x->s = copy;
    x->by_id.key = id;
    x->by_val.key = str_hash(s, len);
    if (gni_htab_insert(&t->ids, &x->by_id) < 0) {
        return GN_ENOMEM;
    }
    if (gni_htab_insert(&t->vals, &x->by_val) < 0) {
        gni_htab_remove(&t->ids, &x->by_id);
        return GN_ENOMEM;
    }
    t->ents[t->n++] = x;
    return 0;
}

int gn_edf_dict_find_id(const gn_edf_dict *d, gn_edf_dict_kind kind, const char *s, size_t len,
                        uint16_t *id)
{
    if (!d || (unsigned)kind > GN_EDF_DICT_ERROR || d->tab[kind].n == 0 || (!s && len)) {
        return GN_ENOTFOUND;
    }
    const dict_ent *x = dict_by_val(&d->tab[kind], s ? s : "", len);
    if (!x) {
        return GN_ENOTFOUND;
    }
    if (id) {
        *id = x->id;
    }
    return 0;
}

int gn_edf_dict_find(const gn_edf_dict *d, gn_edf_dict_kind kind, uint16_t id, gn_slice *out)
{
    if (!d || (unsigned)kind > GN_EDF_DICT_ERROR) {
        return GN_ENOTFOUND;
    }
    gni_hnode *e = gni_htab_find(&d->tab[kind].ids, id);
    if (!e) {
        return GN_ENOTFOUND;
    }
    const dict_ent *x = GNI_CONTAINER_OF(e, dict_ent, by_id);
    if (out) {
        *out = gn_slice_of(x->s, x->len);
    }
    return 0;
}

size_t gn_edf_dict_count(const gn_edf_dict *d, gn_edf_dict_kind kind)
{
    if (!d || (unsigned)kind > GN_EDF_DICT_ERROR) {
        return 0;
    }
    return d->tab[kind].n;
}

int gn_edf_dict_entry(const gn_edf_dict *d, gn_edf_dict_kind kind, size_t idx, uint16_t *id,
                      gn_slice *out)
{
    if (!d || (unsigned)kind > GN_EDF_DICT_ERROR || idx >= d->tab[kind].n) {
        return GN_ENOTFOUND;
    }
    const dict_ent *x = d->tab[kind].ents[idx];
    if (id) {
        *id = x->id;
    }
    if (out) {
        *out = gn_slice_of(x->s, x->len);
    }
    return 0;
}

/* ---- registry -------------------------------------------------------------------------------- */

struct gn_edf_registry {
    gn_edf_arena *arena;
    gn_edf_dict *dict;        /* atoms, type names, errors with their ids */
    const gn_edf_type **types; /* by id - GN_EDF_TYPE_ID_MIN */
    size_t ntypes, cap;
    bool frozen;
};

gn_edf_registry *gn_edf_registry_new(void)
{
    gn_edf_registry *r = gn_calloc(1, sizeof *r);
    if (!r) {
        return NULL;
    }
    r->arena = gn_edf_arena_new(4096, 0);
    r->dict = gn_edf_dict_new();
    if (!r->arena || !r->dict) {
        gn_edf_registry_free(r);
        return NULL;
    }
    return r;
}

void gn_edf_registry_free(gn_edf_registry *r)
{
    if (!r) {
        return;
    }
    gn_edf_arena_free(r->arena);
    gn_edf_dict_free(r->dict);
    gn_free(r->types);
    gn_free(r);
}

const gn_edf_type *gn_edf_registry_find(const gn_edf_registry *r, const char *name, size_t len)
{
    uint16_t id;
    if (!r || gn_edf_dict_find_id(r->dict, GN_EDF_DICT_TYPE, name, len, &id) < 0) {
        return NULL;
    }
    return r->types[id - GN_EDF_TYPE_ID_MIN];
}

void gn_edf_registry_freeze(gn_edf_registry *r)
{
    if (r) {
        r->frozen = true;
    }
}

bool gn_edf_registry_frozen(const gn_edf_registry *r)
{
    return r && r->frozen;
}

const gn_edf_dict *gn_edf_registry_dict(const gn_edf_registry *r)
{
    return r ? r->dict : NULL;
}

/* A field/element type usable inside @r: basic, registered in @r, or an unregistered
 * composite of those (copied into @r's arena). */
static int reg_adopt(gn_edf_registry *r, const gn_edf_type *t, const gn_edf_type **out,
                     unsigned depth)
{
    if (!t || depth > 64) {
        return GN_EINVAL;
    }
    if (t->name) {
        if (gn_edf_registry_find(r, t->name, t->name_len) != t) {
            return GN_EINVAL;
        }
        *out = t;
        return 0;
    }
    if (t->kind != GN_EDF_NIL && gn_edf_type_basic(t->kind) == t) {
        *out = t;
        return 0;
    }
    if ((unsigned)t->kind < GN_EDF_KIND_COUNT && gn_edf_type_basic(t->kind)) {
        *out = gn_edf_type_basic(t->kind); /* a basic kind built elsewhere */
        return 0;
    }
    if (t->kind != GN_EDF_SLICE && t->kind != GN_EDF_ARRAY && t->kind != GN_EDF_MAP) {
        return GN_EINVAL;
    }
    gn_edf_type *c = type_alloc(r->arena, t->kind);
    if (!c) {
        return GN_ENOMEM;
    }
    c->len = t->len;
    int rc = reg_adopt(r, t->elem, &c->elem, depth + 1);
    if (rc == 0 && t->kind == GN_EDF_MAP) {
        rc = reg_adopt(r, t->key, &c->key, depth + 1);
    }
    if (rc < 0) {
        return rc;
    }
    *out = c;
    return 0;
}

static int reg_begin(gn_edf_registry *r, const char *name, size_t *len)
{
    if (!r || !name || !name[0]) {
        return GN_EINVAL;
    }
    if (r->frozen) {
        return GN_ESTATE;
    }
    *len = strlen(name);
    if (*len > GN_EDF_NAME_MAX ||
        r->ntypes > (size_t)(GN_EDF_TYPE_ID_MAX - GN_EDF_TYPE_ID_MIN)) {
        return GN_ERANGE;
    }
    if (gn_edf_registry_find(r, name, *len)) {
        return GN_EEXIST;
    }
    if (r->ntypes == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 32;
        const gn_edf_type **types = gn_realloc(r->types, cap * sizeof *types);
        if (!types) {
            return GN_ENOMEM;
        }
        r->types = types;
        r->cap = cap;
    }
    return 0;
}

static int reg_commit(gn_edf_registry *r, gn_edf_type *t, const char *name, size_t len,
                      const gn_edf_type **out)
{
    uint16_t id = (uint16_t)(GN_EDF_TYPE_ID_MIN + r->ntypes);
    char *copy = gni_edf_arena_dup(r->arena, name, len + 1);
    if (!copy) {
        return GN_ENOMEM;
    }
    t->name = copy;
    t->name_len = (uint16_t)len;
    t->id = id;
    int rc = gn_edf_dict_add(r->dict, GN_EDF_DICT_TYPE, id, name, len);
    if (rc < 0) {
        return rc;
    }
    r->types[r->ntypes++] = t;
    if (out) {
        *out = t;
    }
    return 0;
}

int gn_edf_register_struct(gn_edf_registry *r, const char *name, const gn_edf_field *fields,
                           size_t nfields, const gn_edf_type **out)
{
    size_t len;
    int rc = reg_begin(r, name, &len);
    if (rc < 0) {
        return rc;
    }
    if ((nfields && !fields) || nfields > UINT32_MAX) {
        return GN_EINVAL;
    }
    gn_edf_type *t = type_alloc(r->arena, GN_EDF_STRUCT);
    gn_edf_field *f = nfields ? gn_edf_arena_alloc(r->arena, nfields * sizeof *f) : NULL;
    if (!t || (nfields && !f)) {
        return GN_ENOMEM;
    }
    for (size_t i = 0; i < nfields; i++) {
        const char *fname = fields[i].name ? fields[i].name : "";
        f[i].name = gni_edf_arena_dup(r->arena, fname, strlen(fname) + 1);
        if (!f[i].name) {
            return GN_ENOMEM;
        }
        if ((rc = reg_adopt(r, fields[i].type, &f[i].type, 0)) < 0) {
            return rc;
        }
    }
    t->len = (uint32_t)nfields;
    t->fields = f;
    return reg_commit(r, t, name, len, out);
}

int gn_edf_register_type(gn_edf_registry *r, const char *name, const gn_edf_type *under,
                         const gn_edf_type **out)
{
    size_t len;
    int rc = reg_begin(r, name, &len);
    if (rc < 0) {
        return rc;
    }
    if (!under || under->name) {
        return GN_EINVAL;
    }
    gn_edf_type *t;
    switch (under->kind) {
    case GN_EDF_BOOL:
    case GN_EDF_INT8:
    case GN_EDF_INT16:
    case GN_EDF_INT32:
    case GN_EDF_INT64:
    case GN_EDF_INT:
    case GN_EDF_UINT8:
    case GN_EDF_UINT16:
    case GN_EDF_UINT32:
    case GN_EDF_UINT64:
    case GN_EDF_UINT:
    case GN_EDF_FLOAT32:
    case GN_EDF_FLOAT64:
    case GN_EDF_STRING:
        t = type_alloc(r->arena, under->kind);
        if (!t) {
            return GN_ENOMEM;
        }
        break;
    case GN_EDF_SLICE:
    case GN_EDF_ARRAY:
    case GN_EDF_MAP: {
        const gn_edf_type *c;
        if ((rc = reg_adopt(r, under, &c, 0)) < 0) {
            return rc;
        }
        t = (gn_edf_type *)c; /* a fresh copy in our arena */
        break;
    }
    default:
        return GN_EINVAL;
    }
    return reg_commit(r, t, name, len, out);
}

int gn_edf_register_custom(gn_edf_registry *r, const char *name, const gn_edf_type **out)
{
    size_t len;
    int rc = reg_begin(r, name, &len);
    if (rc < 0) {
        return rc;
    }
    gn_edf_type *t = type_alloc(r->arena, GN_EDF_CUSTOM);
    if (!t) {
        return GN_ENOMEM;
    }
    return reg_commit(r, t, name, len, out);
}

static int reg_text(gn_edf_registry *r, gn_edf_dict_kind kind, const char *s, size_t len,
                    uint16_t *id)
{
    if (!r || (!s && len)) {
        return GN_EINVAL;
    }
    if (r->frozen) {
        return GN_ESTATE;
    }
    if (len > dict_limits[kind].len_max) {
        return GN_ERANGE;
    }
    uint16_t have;
    if (gn_edf_dict_find_id(r->dict, kind, s ? s : "", len, &have) == 0) {
        if (id) {
            *id = have;
        }
        return 0;
    }
    size_t n = gn_edf_dict_count(r->dict, kind);
    if (n > (size_t)(dict_limits[kind].max - dict_limits[kind].min)) {
        return GN_ERANGE;
    }
    uint16_t nid = (uint16_t)(dict_limits[kind].min + n);
    int rc = gn_edf_dict_add(r->dict, kind, nid, s, len);
    if (rc == 0 && id) {
        *id = nid;
    }
    return rc;
}

int gn_edf_register_atom(gn_edf_registry *r, const char *s, size_t len, uint16_t *id)
{
    return reg_text(r, GN_EDF_DICT_ATOM, s, len, id);
}

int gn_edf_register_error(gn_edf_registry *r, const char *s, size_t len, uint16_t *id)
{
    return reg_text(r, GN_EDF_DICT_ERROR, s, len, id);
}

/* The MessageAny (199) bodies and the gen types they carry (ergo-wire.md §c "MessageAny
 * (199) bodies"), nested types first. "int-kind" fields are registered named ints. */
static int edf_add_ergo_proto(gn_edf_registry *r)
{
    const gn_edf_type *str = gn_edf_type_basic(GN_EDF_STRING);
    const gn_edf_type *gint = gn_edf_type_basic(GN_EDF_INT);
    const gn_edf_type *any = gn_edf_type_basic(GN_EDF_ANY);
    const gn_edf_type *atom = gn_edf_type_basic(GN_EDF_ATOM);
    const gn_edf_type *boolean = gn_edf_type_basic(GN_EDF_BOOL);
    const gn_edf_type *pid = gn_edf_type_basic(GN_EDF_PID);
    const gn_edf_type *ref = gn_edf_type_basic(GN_EDF_REF);
    const gn_edf_type *env, *loglevel, *ctype, *clevel, *prio, *mode, *comp, *fallback, *popts,
        *aopts;
    int rc;
    if ((rc = gn_edf_register_type(r, GN_EDF_ERGO_ENV, str, &env)) < 0 ||
        (rc = gn_edf_register_type(r, GN_EDF_ERGO_LOG_LEVEL, gint, &loglevel)) < 0 ||
        (rc = gn_edf_register_type(r, GN_EDF_ERGO_COMPRESSION_TYPE, str, &ctype)) < 0 ||
        (rc = gn_edf_register_type(r, GN_EDF_ERGO_COMPRESSION_LEVEL, gint, &clevel)) < 0 ||
        (rc = gn_edf_register_type(r, GN_EDF_ERGO_MESSAGE_PRIORITY, gint, &prio)) < 0 ||
        (rc = gn_edf_register_type(r, GN_EDF_ERGO_APPLICATION_MODE, gint, &mode)) < 0) {
        return rc;
    }
    const gn_edf_type envmap = {.kind = GN_EDF_MAP, .key = env, .elem = any};
    const gn_edf_type args = {.kind = GN_EDF_SLICE, .elem = any};
    const gn_edf_field compression[] = {
        {"Enable", boolean}, {"Type", ctype}, {"Level", clevel}, {"Threshold", gint}};
    const gn_edf_field fb[] = {{"Enable", boolean}, {"Name", atom}, {"Tag", str}};
    if ((rc = gn_edf_register_struct(r, GN_EDF_ERGO_COMPRESSION, compression, 4, &comp)) < 0 ||
        (rc = gn_edf_register_struct(r, GN_EDF_ERGO_PROCESS_FALLBACK, fb, 3, &fallback)) < 0) {
        return rc;
    }
    const gn_edf_field po[] = {
        {"MailboxSize", gn_edf_type_basic(GN_EDF_INT64)},
        {"Leader", pid},
        {"Env", &envmap},
        {"Compression", comp},
        {"SendPriority", prio},
        {"ImportantDelivery", boolean},
        {"Fallback", fallback},
        {"LinkParent", boolean},
        {"LinkChild", boolean},
        {"LogLevel", loglevel},
    };
    const gn_edf_field ao[] = {{"Env", &envmap}, {"LogLevel", loglevel}};
    if ((rc = gn_edf_register_struct(r, GN_EDF_ERGO_PROCESS_OPTIONS, po, 10, &popts)) < 0 ||
        (rc = gn_edf_register_struct(r, GN_EDF_ERGO_APPLICATION_OPTIONS, ao, 2, &aopts)) < 0) {
        return rc;
    }
    const gn_edf_field pox[] = {
        {"ProcessOptions", popts}, {"ParentPID", pid},       {"ParentLeader", pid},
        {"ParentEnv", &envmap},    {"ParentLogLevel", loglevel}, {"Register", atom},
        {"Application", atom},     {"Args", &args},
    };
    const gn_edf_field aox[] = {{"ApplicationOptions", aopts},
                                {"CorePID", pid},
                                {"CoreEnv", &envmap},
                                {"CoreLogLevel", loglevel}};
    const gn_edf_type *tpox, *taox;
    if ((rc = gn_edf_register_struct(r, GN_EDF_ERGO_PROCESS_OPTIONS_EXTRA, pox, 8, &tpox)) < 0 ||
        (rc = gn_edf_register_struct(r, GN_EDF_ERGO_APPLICATION_OPTIONS_EXTRA, aox, 4, &taox)) <
            0) {
        return rc;
    }
    const gn_edf_field ev[] = {{"Event", gn_edf_type_basic(GN_EDF_EVENT)},
                               {"Timestamp", gn_edf_type_basic(GN_EDF_INT64)},
                               {"Message", any}};
    if ((rc = gn_edf_register_struct(r, GN_EDF_ERGO_MESSAGE_EVENT, ev, 3, NULL)) < 0) {
        return rc;
    }
    /* Link/Unlink/Monitor/Demonitor x PID/ProcessID/Alias/Event: {Source PID, Target, Ref} */
    static const char *const verbs[] = {"Link", "Unlink", "Monitor", "Demonitor"};
    static const char *const targets[] = {"PID", "ProcessID", "Alias", "Event"};
    static const gn_edf_kind tkinds[] = {GN_EDF_PID, GN_EDF_PROCESSID, GN_EDF_ALIAS,
                                         GN_EDF_EVENT};
    char name[96];
    for (size_t v = 0; v < 4; v++) {
        for (size_t t = 0; t < 4; t++) {
            const gn_edf_field f[] = {
                {"Source", pid}, {"Target", gn_edf_type_basic(tkinds[t])}, {"Ref", ref}};
            snprintf(name, sizeof name, "%sMessage%s%s", GN_EDF_ERGO_PROTO_PREFIX, verbs[v],
                     targets[t]);
            if ((rc = gn_edf_register_struct(r, name, f, 3, NULL)) < 0) {
                return rc;
            }
        }
    }
    const gn_edf_field spawn[] = {{"Name", atom}, {"Options", tpox}, {"Ref", ref}};
    const gn_edf_field start[] = {{"Name", atom}, {"Mode", mode}, {"Options", taox}, {"Ref", ref}};
    const gn_edf_field result[] = {
        {"Error", gn_edf_type_basic(GN_EDF_ERROR)}, {"Result", any}, {"Ref", ref}};
    if ((rc = gn_edf_register_struct(r, GN_EDF_ERGO_MESSAGE_SPAWN, spawn, 3, NULL)) < 0 ||
        (rc = gn_edf_register_struct(r, GN_EDF_ERGO_MESSAGE_APPLICATION_START, start, 4, NULL)) <
            0 ||
        (rc = gn_edf_register_struct(r, GN_EDF_ERGO_MESSAGE_RESULT, result, 3, NULL)) < 0) {
        return rc;
    }
    return 0;
}

int gn_edf_registry_add_ergo(gn_edf_registry *r)
{
    static const char *const errors[] = {
        "incorrect value or argument", "timed out", "not supported", "unknown",
        "unknown name", "not allowed", "unknown process", "process terminated",
        "unknown meta process", "unknown application", "resource is taken", "normal",
        "shutdown", "kill", "panic",
    };
    int rc;
    for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++) {
        if ((rc = gn_edf_register_error(r, errors[i], strlen(errors[i]), NULL)) < 0) {
            return rc;
        }
    }
    const gn_edf_type *str = gn_edf_type_basic(GN_EDF_STRING);
    const gn_edf_field version[] = {
        {"Name", str}, {"Release", str}, {"Commit", str}, {"License", str}};
    const gn_edf_type *tv;
    if ((rc = gn_edf_register_struct(r, GN_EDF_ERGO_VERSION, version, 4, &tv)) <
        0) {
        return rc;
    }
    if ((rc = gn_edf_register_custom(r, GN_EDF_ERGO_NETWORK_FLAGS, NULL)) < 0) {
        return rc;
    }
    const gn_edf_field route[] = {
        {"Host", str},
        {"Port", gn_edf_type_basic(GN_EDF_UINT16)},
        {"TLS", gn_edf_type_basic(GN_EDF_BOOL)},
        {"HandshakeVersion", tv},
        {"ProtoVersion", tv},
    };
    const gn_edf_type *troute;
    if ((rc = gn_edf_register_struct(r, GN_EDF_ERGO_ROUTE, route, 5, &troute)) < 0) {
        return rc;
    }
    /* composite field types, built on the stack: registration copies them */
    const gn_edf_type *atom = gn_edf_type_basic(GN_EDF_ATOM);
    const gn_edf_type *gint = gn_edf_type_basic(GN_EDF_INT);
    const gn_edf_type *err = gn_edf_type_basic(GN_EDF_ERROR);
    const gn_edf_type *u16 = gn_edf_type_basic(GN_EDF_UINT16);
    const gn_edf_type atom_cache = {.kind = GN_EDF_MAP, .key = u16, .elem = atom};
    const gn_edf_type reg_cache = {.kind = GN_EDF_MAP, .key = u16, .elem = str};
    const gn_edf_type err_cache = {.kind = GN_EDF_MAP, .key = u16, .elem = err};
    const gn_edf_type strings = {.kind = GN_EDF_SLICE, .elem = str};
    const gn_edf_type routes = {.kind = GN_EDF_SLICE, .elem = troute};
    const gn_edf_field hello[] = {{"Salt", str}, {"Digest", str}, {"DigestCert", str}};
    const gn_edf_field join[] = {
        {"Node", atom}, {"ConnectionID", str}, {"Salt", str}, {"Digest", str}};
    const gn_edf_field intro[] = {
        {"Node", atom},
        {"Version", tv},
        {"Flags", gn_edf_registry_find(r, GN_EDF_ERGO_NETWORK_FLAGS,
                                       sizeof GN_EDF_ERGO_NETWORK_FLAGS - 1)},
        {"Creation", gn_edf_type_basic(GN_EDF_INT64)},
        {"MaxMessageSize", gint},
        {"AtomCache", &atom_cache},
        {"RegCache", &reg_cache},
        {"ErrCache", &err_cache},
        {"Digest", str},
    };
    const gn_edf_field accept[] = {{"ID", str},           {"PoolSize", gint},
                                   {"PoolDSN", &strings}, {"Digest", str},
                                   {"DigestCert", str}};
    const gn_edf_field reg_routes[] = {{"Node", atom}, {"Routes", &routes}};
    const gn_edf_field reg_reply[] = {{"Error", err}};
    const gn_edf_field resolve[] = {{"Node", atom}};
    const gn_edf_field resolve_reply[] = {{"Routes", &routes}, {"Error", err}};
    const struct {
        const char *name;
        const gn_edf_field *fields;
        size_t n;
    } msgs[] = {
        {GN_EDF_ERGO_HELLO, hello, 3},
        {GN_EDF_ERGO_JOIN, join, 4},
        {GN_EDF_ERGO_INTRODUCE, intro, 9},
        {GN_EDF_ERGO_ACCEPT, accept, 5},
        {GN_EDF_ERGO_REGISTER_ROUTES, reg_routes, 2},
        {GN_EDF_ERGO_REGISTER_REPLY, reg_reply, 1},
        {GN_EDF_ERGO_RESOLVE_ROUTES, resolve, 1},
        {GN_EDF_ERGO_RESOLVE_REPLY, resolve_reply, 2},
    };
    for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
        if ((rc = gn_edf_register_struct(r, msgs[i].name, msgs[i].fields, msgs[i].n, NULL)) < 0) {
            return rc;
        }
    }
    return edf_add_ergo_proto(r);
}
