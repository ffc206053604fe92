/*
 * golemnet - EDF, the Ergo Data Format (Ergo Framework 3.1.0), as a
 * sans-I/O codec.
 *
 * Spec: ../shared/specs/ergo-wire.md section d) "EDF" (type tags, where tags
 * appear, containers, registered types, dictionaries, limits); the bodies of
 * registrar packets (section a), handshake messages (section b) and ENP
 * payloads (section c) are EDF values encoded with these functions.
 *
 * Pieces:
 *  - gn_edf_arena: bump allocator in growing chunks. Decoded values, built
 *    values and ad-hoc composite types live in one; reset or free it to drop
 *    them all at once (no per-value malloc).
 *  - gn_edf_type: a static type. Basic kinds are static singletons
 *    (gn_edf_type_basic()); unregistered slices, arrays and maps are built
 *    in an arena; registered types (structs, named scalars, named
 *    slices/maps/arrays, custom-marshaled types) live in a gn_edf_registry.
 *  - gn_edf_value: one value, a plain struct the application fills or walks.
 *    Composite values point at an array of child values.
 *  - gn_edf_registry: registered types, atoms and errors with Ergo's
 *    process-wide ids (atoms from 256, types from 4096, errors from 32768,
 *    in registration order). Register everything, then freeze it before the
 *    first handshake (Ergo announces its dictionaries in the Introduce and
 *    never updates them).
 *  - gn_edf_dict: one side's dictionaries (atom, type and error caches) as
 *    announced in a handshake Introduce: id <-> value, both ways. Encode with
 *    your own announced dictionary, decode with the peer's.
 *  - gn_edf_encode() / gn_edf_decode(): one top-level value to / from bytes.
 *
 * Ownership: a value never owns anything. Byte fields (gn_slice) borrow
 * memory the builder chose (building) or, when decoding, the input bytes
 * and the dictionary's strings (atoms and errors given by cache id) by
 * default (zero copy), or copies in the arena with GN_EDF_DECODE_COPY.
 * Child value arrays and decoded composite types live in the arena passed
 * to the call; registered types in their registry.
 *
 * Thread context: no global state. An arena, a registry being filled and a
 * dict being filled belong to one thread. A frozen registry and a dict that
 * is no longer modified may be read (encode/decode/lookups) from any number
 * of threads at once.
 */
#ifndef GOLEMNET_EDF_H
#define GOLEMNET_EDF_H

#include "golemnet/common.h"

GN_BEGIN_DECLS

/* ---- wire constants (ergo-wire.md §d "Type tags" and "Limits") --------------------- */

/** EDF type tags. Since: 0.1 */
enum {
    GN_EDF_TAG_DESCRIPTOR = 0x82, /* folded type descriptor */
    GN_EDF_TAG_REG = 0x83,        /* registered type (name or reg-cache id) */
    GN_EDF_TAG_ANY = 0x84,        /* only inside descriptors */
    GN_EDF_TAG_ATOM = 0x8c,
    GN_EDF_TAG_STRING = 0x8d,
    GN_EDF_TAG_BINARY = 0x8e,
    GN_EDF_TAG_FLOAT32 = 0x8f,
    GN_EDF_TAG_FLOAT64 = 0x90,
    GN_EDF_TAG_BOOL = 0x91,
    GN_EDF_TAG_INT8 = 0x92,
    GN_EDF_TAG_INT16 = 0x93,
    GN_EDF_TAG_INT32 = 0x94,
    GN_EDF_TAG_INT64 = 0x95,
    GN_EDF_TAG_INT = 0x96,
    GN_EDF_TAG_UINT8 = 0x97,
    GN_EDF_TAG_UINT16 = 0x98,
    GN_EDF_TAG_UINT32 = 0x99,
    GN_EDF_TAG_UINT64 = 0x9a,
    GN_EDF_TAG_UINT = 0x9b,
    GN_EDF_TAG_ERROR = 0x9c,
    GN_EDF_TAG_SLICE = 0x9d,
    GN_EDF_TAG_ARRAY = 0x9e,
    GN_EDF_TAG_MAP = 0x9f,
    GN_EDF_TAG_PID = 0xaa,
    GN_EDF_TAG_PROCESSID = 0xab,
    GN_EDF_TAG_ALIAS = 0xac,
    GN_EDF_TAG_EVENT = 0xad,
    GN_EDF_TAG_REF = 0xae,
    GN_EDF_TAG_TIME = 0xaf,
    GN_EDF_TAG_NIL = 0xff
};

/** Limits of the format. Since: 0.1 */
#define GN_EDF_ATOM_MAX 255u          /* bytes of an atom */
#define GN_EDF_STRING_MAX 65535u      /* bytes of a string */
#define GN_EDF_ERROR_MAX 32767u       /* bytes of an error text */
#define GN_EDF_BINARY_MAX 0xffffffffu /* bytes of a []byte (< 4 GiB) */
#define GN_EDF_NAME_MAX 4095u         /* bytes of a registered type name */
#define GN_EDF_DESCRIPTOR_MAX 65535u  /* bytes of a folded type descriptor */
#define GN_EDF_ATOM_ID_MIN 256u       /* atom-cache ids */
#define GN_EDF_ATOM_ID_MAX 64535u
#define GN_EDF_TYPE_ID_MIN 4096u      /* reg-cache ids */
#define GN_EDF_TYPE_ID_MAX 65535u
#define GN_EDF_ERROR_ID_MIN 32768u    /* err-cache ids */
#define GN_EDF_ERROR_ID_MAX 65534u

/** Default decode limits (gn_edf_decode_opts_default()). Since: 0.1 */
#define GN_EDF_DEFAULT_MAX_DEPTH 64u
#define GN_EDF_DEFAULT_MAX_VALUES (1u << 20)
#define GN_EDF_DEFAULT_MAX_INPUT ((size_t)64 << 20)

/* ---- kinds and types --------------------------------------------------------------- */

/**
 * What a type or a value is. The scalar and Ergo kinds map one to one to a
 * type tag; GN_EDF_ANY exists only as a type (an interface position);
 * GN_EDF_STRUCT and GN_EDF_CUSTOM only as registered types.
 * Since: 0.1
 */
typedef enum gn_edf_kind {
    GN_EDF_NIL = 0, /* a nil value in an any position (or a top-level 0xff) */
    GN_EDF_ATOM,
    GN_EDF_STRING,
    GN_EDF_BINARY,
    GN_EDF_FLOAT32,
    GN_EDF_FLOAT64,
    GN_EDF_BOOL,
    GN_EDF_INT8,
    GN_EDF_INT16,
    GN_EDF_INT32,
    GN_EDF_INT64,
    GN_EDF_INT, /* Go int: always 8 bytes */
    GN_EDF_UINT8,
    GN_EDF_UINT16,
    GN_EDF_UINT32,
    GN_EDF_UINT64,
    GN_EDF_UINT, /* Go uint: always 8 bytes */
    GN_EDF_ERROR,
    GN_EDF_PID,
    GN_EDF_PROCESSID,
    GN_EDF_ALIAS,
    GN_EDF_EVENT,
    GN_EDF_REF,
    GN_EDF_TIME,
    GN_EDF_ANY,    /* type only: interface position */
    GN_EDF_SLICE,  /* []T */
    GN_EDF_ARRAY,  /* [N]T */
    GN_EDF_MAP,    /* map[K]V */
    GN_EDF_STRUCT, /* registered struct */
    GN_EDF_CUSTOM, /* registered type with a custom marshaler: u32 length + opaque bytes */
    GN_EDF_KIND_COUNT
} gn_edf_kind;

typedef struct gn_edf_type gn_edf_type;

/** One struct field: its name (informational, not on the wire) and type. Since: 0.1 */
typedef struct gn_edf_field {
    const char *name; /* NUL-terminated */
    const gn_edf_type *type;
} gn_edf_field;

/**
 * A static type. Read-only for applications: build them with the functions
 * below, never by hand.
 *
 * - @name: NULL for unregistered types, else the wire name ("#pkg/Type",
 *   @name_len bytes, NUL-terminated) of a registered type; @id is its
 *   registration id in the registry that owns it (4096...).
 * - @kind: for a named scalar (a registered bool/int/float/string type) the
 *   scalar kind; SLICE/ARRAY/MAP with or without a name; STRUCT; CUSTOM.
 * - @elem: element type (SLICE, ARRAY) or value type (MAP); @key: key type
 *   (MAP); @len: N (ARRAY) or the field count (STRUCT); @fields: STRUCT.
 * Since: 0.1
 */
struct gn_edf_type {
    gn_edf_kind kind;
    uint16_t name_len;
    uint16_t id;
    uint32_t len;
    const char *name;
    const gn_edf_type *key;
    const gn_edf_type *elem;
    const gn_edf_field *fields;
};

/**
 * The type of a basic kind: every scalar, GN_EDF_ERROR, the Ergo kinds
 * (PID ... TIME) and GN_EDF_ANY. Static storage, never freed, thread-safe.
 * Returns NULL for NIL, SLICE, ARRAY, MAP, STRUCT, CUSTOM and out-of-range
 * kinds.
 * Since: 0.1
 */
GN_API const gn_edf_type *gn_edf_type_basic(gn_edf_kind kind);

/** The type tag of a basic kind (GN_EDF_TAG_*), or 0 if @kind has none. Since: 0.1 */
GN_API uint8_t gn_edf_kind_tag(gn_edf_kind kind);

/** A short static name of @kind ("int32", "slice", ...). Since: 0.1 */
GN_API const char *gn_edf_kind_name(gn_edf_kind kind);

/* ---- arena --------------------------------------------------------------------------- */

/** A bump allocator. Opaque. Since: 0.1 */
typedef struct gn_edf_arena gn_edf_arena;

/**
 * Creates an arena. @chunk_len: bytes of the first chunk (0 = 4096; later
 * chunks double, up to 1 MiB, or are as large as one request);
 * @max_len: bound on the bytes the arena may hold in all (0 = no bound);
 * allocations past it fail (GN_ELIMIT for the decoder).
 * Returns NULL when out of memory. Free with gn_edf_arena_free().
 * Since: 0.1
 */
GN_API gn_edf_arena *gn_edf_arena_new(size_t chunk_len, size_t max_len);

/** Frees the arena and everything allocated in it. NULL is a no-op. Since: 0.1 */
GN_API void gn_edf_arena_free(gn_edf_arena *a);

/**
 * Drops every allocation but keeps the largest chunk for reuse, so a
 * decode-reset loop allocates nothing once warm. Everything allocated in
 * @a (values, types) becomes invalid.
 * Since: 0.1
 */
GN_API void gn_edf_arena_reset(gn_edf_arena *a);

/**
 * Allocates @len bytes aligned to 8, uninitialised. Returns NULL when out
 * of memory or past the arena's bound. Valid until reset or free.
 * Since: 0.1
 */
GN_API void *gn_edf_arena_alloc(gn_edf_arena *a, size_t len);

/** Bytes handed out since creation or the last reset. Since: 0.1 */
GN_API size_t gn_edf_arena_used(const gn_edf_arena *a);

/**
 * Unregistered composite types, allocated in @a (their element types must
 * outlive them). Return NULL on allocation failure or a NULL element type.
 * Since: 0.1
 */
GN_API const gn_edf_type *gn_edf_type_slice(gn_edf_arena *a, const gn_edf_type *elem);
/** [@n]@elem. Since: 0.1 */
GN_API const gn_edf_type *gn_edf_type_array(gn_edf_arena *a, uint32_t n, const gn_edf_type *elem);
/** map[@key]@val. Since: 0.1 */
GN_API const gn_edf_type *gn_edf_type_map(gn_edf_arena *a, const gn_edf_type *key,
                                          const gn_edf_type *val);

/* ---- values ---------------------------------------------------------------------- */

/**
 * Go's time.Time in its binary form (ergo-wire.md §d): @sec since
 * 0001-01-01T00:00:00Z (subtract GN_EDF_TIME_UNIX_OFFSET for Unix
 * seconds), @nsec, zone offset in minutes (@offset_min, -1 = UTC) and, for
 * @version 2, extra offset seconds. Since: 0.1
 */
typedef struct gn_edf_time {
    int64_t sec;
    int32_t nsec;
    int16_t offset_min;
    int8_t offset_sec;
    uint8_t version; /* 1 (15 bytes on the wire) or 2 (16 bytes) */
} gn_edf_time;

/** Seconds from 0001-01-01 to 1970-01-01. Since: 0.1 */
#define GN_EDF_TIME_UNIX_OFFSET INT64_C(62135596800)

/**
 * One value. @type is its static type (never NULL, except for a nil any:
 * kind NIL, type NULL); @kind repeats @type->kind for speed. Fields by kind:
 *
 * | kind | fields |
 * |---|---|
 * | BOOL | u.b |
 * | INT8..INT | u.i (sign-extended) |
 * | UINT8..UINT | u.u |
 * | FLOAT32 / FLOAT64 | u.f32 / u.f64 |
 * | ATOM, STRING, BINARY, CUSTOM | u.bytes |
 * | ERROR | u.bytes = the text; @nil = nil error |
 * | PID | u.pid (node atom, id, creation) |
 * | PROCESSID, EVENT | u.name (node atom, name atom) |
 * | REF, ALIAS | u.ref (node atom, creation, id[3]) |
 * | TIME | u.time |
 * | SLICE, ARRAY | @cnt items at u.items; SLICE @nil = nil slice |
 * | MAP | @cnt pairs: u.items[2i] key, u.items[2i+1] value; @nil = nil map |
 * | STRUCT | @cnt (= type->len) fields at u.items, in declaration order |
 *
 * Children of an element/key/value/field position have that position's
 * static type, except where it is ANY: there each child carries its own
 * dynamic type (or is a nil value).
 * Since: 0.1
 */
typedef struct gn_edf_value {
    const gn_edf_type *type;
    uint8_t kind; /* gn_edf_kind */
    bool nil;
    uint32_t cnt;
    union {
        bool b;
        int64_t i;
        uint64_t u;
        float f32;
        double f64;
        gn_slice bytes;
        struct {
            gn_slice node;
            uint64_t id;
            int64_t creation;
        } pid;
        struct {
            gn_slice node;
            gn_slice name;
        } name;
        struct {
            gn_slice node;
            int64_t creation;
            uint64_t id[3];
        } ref;
        gn_edf_time time;
        struct gn_edf_value *items;
    } u;
} gn_edf_value;

/*
 * Setters: each overwrites *@v completely and sets its type to the basic
 * type of the kind. Byte arguments are borrowed (not copied): they must stay
 * valid as long as the value is used. None allocates; none fails except as
 * stated. Since: 0.1
 */
/** A nil (any position, e.g. a nil element of []any). */
GN_API void gn_edf_set_nil(gn_edf_value *v);
GN_API void gn_edf_set_bool(gn_edf_value *v, bool b);
/**
 * @kind: INT8..INT; @i is stored as given (the encoder writes its low bytes).
 * Returns 0, or GN_EINVAL for another kind (and sets nothing).
 */
GN_API int gn_edf_set_int(gn_edf_value *v, gn_edf_kind kind, int64_t i);
/** @kind: UINT8..UINT. Returns GN_EINVAL for another kind (and sets nothing). */
GN_API int gn_edf_set_uint(gn_edf_value *v, gn_edf_kind kind, uint64_t u);
GN_API void gn_edf_set_float32(gn_edf_value *v, float f);
GN_API void gn_edf_set_float64(gn_edf_value *v, double f);
/** @len bytes at @s (NULL allowed when 0). Limits are checked by the encoder. */
GN_API void gn_edf_set_atom(gn_edf_value *v, const char *s, size_t len);
GN_API void gn_edf_set_string(gn_edf_value *v, const char *s, size_t len);
GN_API void gn_edf_set_binary(gn_edf_value *v, const uint8_t *p, size_t len);
/** An error with text (@s, @len); @s NULL makes a nil error (written ff ff). */
GN_API void gn_edf_set_error(gn_edf_value *v, const char *s, size_t len);
GN_API void gn_edf_set_pid(gn_edf_value *v, const char *node, size_t node_len, uint64_t id,
                           int64_t creation);
GN_API void gn_edf_set_processid(gn_edf_value *v, const char *node, size_t node_len,
                                 const char *name, size_t name_len);
GN_API void gn_edf_set_event(gn_edf_value *v, const char *node, size_t node_len,
                             const char *name, size_t name_len);
GN_API void gn_edf_set_ref(gn_edf_value *v, const char *node, size_t node_len, int64_t creation,
                           const uint64_t id[3]);
GN_API void gn_edf_set_alias(gn_edf_value *v, const char *node, size_t node_len,
                             int64_t creation, const uint64_t id[3]);
GN_API void gn_edf_set_time(gn_edf_value *v, const gn_edf_time *t);
/** A custom-marshaled value of registered type @type (kind CUSTOM): @len opaque bytes. */
GN_API int gn_edf_set_custom(gn_edf_value *v, const gn_edf_type *type, const uint8_t *p,
                             size_t len);

/**
 * Makes *@v a composite of type @type (SLICE, ARRAY, MAP or STRUCT, with or
 * without a name) with @cnt items (pairs for MAP; ignored for ARRAY and
 * STRUCT, which take type->len), allocated zeroed (each child a nil) in @a.
 * The caller then fills the children (gn_edf_items()). Returns 0,
 * GN_EINVAL (NULL argument, @type of another kind), GN_ENOMEM (arena).
 * Since: 0.1
 */
GN_API int gn_edf_set_composite(gn_edf_value *v, gn_edf_arena *a, const gn_edf_type *type,
                                uint32_t cnt);

/** Makes *@v a nil slice or map of type @type. Returns 0 or GN_EINVAL. Since: 0.1 */
GN_API int gn_edf_set_nil_of(gn_edf_value *v, const gn_edf_type *type);

/**
 * Gives a scalar value a registered named type (e.g. Celsius over float64):
 * @type's kind must equal @v->kind. Returns 0 or GN_EINVAL.
 * Since: 0.1
 */
GN_API int gn_edf_set_type(gn_edf_value *v, const gn_edf_type *type);

/** The children of a composite (items, fields, or key/value pairs). Since: 0.1 */
static inline gn_edf_value *gn_edf_items(const gn_edf_value *v) { return v->u.items; }

/* ---- dictionaries (caches) ------------------------------------------------------- */

/** Which dictionary of a gn_edf_dict. Since: 0.1 */
typedef enum gn_edf_dict_kind {
    GN_EDF_DICT_ATOM = 0,  /* ids 256..64535 */
    GN_EDF_DICT_TYPE = 1,  /* ids 4096..65535, values are type names */
    GN_EDF_DICT_ERROR = 2, /* ids 32768..65534, values are error texts */
} gn_edf_dict_kind;

/**
 * One side's atom, type and error caches (ergo-wire.md §b Introduce
 * AtomCache/RegCache/ErrCache, §d "Dictionaries"). Opaque. Since: 0.1
 */
typedef struct gn_edf_dict gn_edf_dict;

/** Creates an empty dictionary set. NULL when out of memory. Since: 0.1 */
GN_API gn_edf_dict *gn_edf_dict_new(void);
/** Frees it (and the strings it copied). NULL is a no-op. Since: 0.1 */
GN_API void gn_edf_dict_free(gn_edf_dict *d);

/**
 * Adds @id <-> @len bytes at @s (copied) to dictionary @kind. Returns 0;
 * GN_EINVAL (NULL, unknown @kind); GN_ERANGE (@id outside the kind's range,
 * or @s longer than the kind allows: atom 255, type name 4095, error
 * 32767); GN_EEXIST (the id, or the value, is already in that dictionary);
 * GN_ENOMEM.
 * Since: 0.1
 */
GN_API int gn_edf_dict_add(gn_edf_dict *d, gn_edf_dict_kind kind, uint16_t id, const char *s,
                           size_t len);

/**
 * Looks up the id of a value. Returns 0 and sets *@id, or GN_ENOTFOUND
 * (also for a NULL @d).
 * Since: 0.1
 */
GN_API int gn_edf_dict_find_id(const gn_edf_dict *d, gn_edf_dict_kind kind, const char *s,
                               size_t len, uint16_t *id);

/**
 * Looks up the value of an id. Returns 0 and sets *@out (borrowed from @d,
 * valid until gn_edf_dict_free()), or GN_ENOTFOUND.
 * Since: 0.1
 */
GN_API int gn_edf_dict_find(const gn_edf_dict *d, gn_edf_dict_kind kind, uint16_t id,
                            gn_slice *out);

/** Number of entries of one dictionary. Since: 0.1 */
GN_API size_t gn_edf_dict_count(const gn_edf_dict *d, gn_edf_dict_kind kind);

/**
 * The @idx-th entry (insertion order) of one dictionary, to write a
 * handshake Introduce. Returns 0, or GN_ENOTFOUND past the end.
 * Since: 0.1
 */
GN_API int gn_edf_dict_entry(const gn_edf_dict *d, gn_edf_dict_kind kind, size_t idx,
                             uint16_t *id, gn_slice *out);

/* ---- registry ------------------------------------------------------------------------ */

/**
 * Registered types, atoms and errors (Ergo's edf.RegisterTypeOf,
 * RegisterAtom, RegisterError). Opaque. Since: 0.1
 */
typedef struct gn_edf_registry gn_edf_registry;

/** Creates an empty registry. NULL when out of memory. Since: 0.1 */
GN_API gn_edf_registry *gn_edf_registry_new(void);
/** Frees it and every type it registered. NULL is a no-op. Since: 0.1 */
GN_API void gn_edf_registry_free(gn_edf_registry *r);

/**
 * Registers a struct type named @name (NUL-terminated, "#" + Go import path
 * + "/" + type name, at most 4095 bytes) with @nfields fields in wire
 * order. Field types must be basic types, types registered in @r before, or
 * unregistered composites of those (deep-copied into @r, so they may be
 * temporary); field names are copied. The type gets the next reg id (4096,
 * 4097, ...). *@out (optional) receives the type, valid until
 * gn_edf_registry_free().
 * Returns 0; GN_EINVAL (NULL, empty name, a NULL field type, a field of kind
 * NIL, a registered field type from another registry); GN_ERANGE (name too
 * long, ids exhausted); GN_EEXIST (name taken); GN_ESTATE (registry
 * frozen); GN_ENOMEM.
 * Spec: ergo-wire.md §d "Registered (custom) types".
 * Since: 0.1
 */
GN_API int gn_edf_register_struct(gn_edf_registry *r, const char *name,
                                  const gn_edf_field *fields, size_t nfields,
                                  const gn_edf_type **out);

/**
 * Registers a named type over @under: a scalar kind (BOOL, INT*, UINT*,
 * FLOAT*, STRING) gives a named scalar; an unregistered SLICE, MAP or ARRAY
 * gives a registered slice/map/array (written with the 0x83 marker and no
 * descriptor). Errors as gn_edf_register_struct(); GN_EINVAL also for
 * another kind of @under.
 * Since: 0.1
 */
GN_API int gn_edf_register_type(gn_edf_registry *r, const char *name, const gn_edf_type *under,
                                const gn_edf_type **out);

/**
 * Registers a type with a custom marshaler (Go MarshalEDF/MarshalBinary):
 * its body is u32 length + opaque bytes (kind CUSTOM). gen.NetworkFlags is
 * one. Errors as gn_edf_register_struct().
 * Since: 0.1
 */
GN_API int gn_edf_register_custom(gn_edf_registry *r, const char *name,
                                  const gn_edf_type **out);

/**
 * Registers an atom (@len <= 255 bytes, copied) or an error text (<= 32767
 * bytes) and gives it the next id (atoms 256..64535, errors 32768..65534);
 * *@id (optional) receives it. Registering the same text again returns its
 * id. Returns 0, GN_EINVAL, GN_ERANGE (too long, ids exhausted), GN_ESTATE
 * (frozen), GN_ENOMEM.
 * Since: 0.1
 */
GN_API int gn_edf_register_atom(gn_edf_registry *r, const char *s, size_t len, uint16_t *id);
/** See gn_edf_register_atom(). Since: 0.1 */
GN_API int gn_edf_register_error(gn_edf_registry *r, const char *s, size_t len, uint16_t *id);

/** Wire names of the Ergo types gn_edf_registry_add_ergo() registers. Since: 0.1 */
#define GN_EDF_ERGO_VERSION "#ergo.services/ergo/gen/Version"
#define GN_EDF_ERGO_NETWORK_FLAGS "#ergo.services/ergo/gen/NetworkFlags"
#define GN_EDF_ERGO_ROUTE "#ergo.services/ergo/gen/Route"
#define GN_EDF_ERGO_HELLO "#ergo.services/ergo/net/handshake/MessageHello"
#define GN_EDF_ERGO_JOIN "#ergo.services/ergo/net/handshake/MessageJoin"
#define GN_EDF_ERGO_INTRODUCE "#ergo.services/ergo/net/handshake/MessageIntroduce"
#define GN_EDF_ERGO_ACCEPT "#ergo.services/ergo/net/handshake/MessageAccept"
#define GN_EDF_ERGO_REGISTER_ROUTES "#ergo.services/ergo/net/registrar/MessageRegisterRoutes"
#define GN_EDF_ERGO_REGISTER_REPLY "#ergo.services/ergo/net/registrar/MessageRegisterReply"
#define GN_EDF_ERGO_RESOLVE_ROUTES "#ergo.services/ergo/net/registrar/MessageResolveRoutes"
#define GN_EDF_ERGO_RESOLVE_REPLY "#ergo.services/ergo/net/registrar/MessageResolveReply"
/* the MessageAny (199) bodies and what they carry (ergo-wire.md §c "MessageAny (199) bodies") */
#define GN_EDF_ERGO_ENV "#ergo.services/ergo/gen/Env"
#define GN_EDF_ERGO_LOG_LEVEL "#ergo.services/ergo/gen/LogLevel"
#define GN_EDF_ERGO_COMPRESSION_TYPE "#ergo.services/ergo/gen/CompressionType"
#define GN_EDF_ERGO_COMPRESSION_LEVEL "#ergo.services/ergo/gen/CompressionLevel"
#define GN_EDF_ERGO_MESSAGE_PRIORITY "#ergo.services/ergo/gen/MessagePriority"
#define GN_EDF_ERGO_APPLICATION_MODE "#ergo.services/ergo/gen/ApplicationMode"
#define GN_EDF_ERGO_COMPRESSION "#ergo.services/ergo/gen/Compression"
#define GN_EDF_ERGO_PROCESS_FALLBACK "#ergo.services/ergo/gen/ProcessFallback"
#define GN_EDF_ERGO_PROCESS_OPTIONS "#ergo.services/ergo/gen/ProcessOptions"
#define GN_EDF_ERGO_APPLICATION_OPTIONS "#ergo.services/ergo/gen/ApplicationOptions"
#define GN_EDF_ERGO_PROCESS_OPTIONS_EXTRA "#ergo.services/ergo/gen/ProcessOptionsExtra"
#define GN_EDF_ERGO_APPLICATION_OPTIONS_EXTRA "#ergo.services/ergo/gen/ApplicationOptionsExtra"
#define GN_EDF_ERGO_MESSAGE_EVENT "#ergo.services/ergo/gen/MessageEvent"
/** Prefix of the proto types: GN_EDF_ERGO_PROTO_PREFIX "MessageLinkPID" etc. */
#define GN_EDF_ERGO_PROTO_PREFIX "#ergo.services/ergo/net/proto/"
#define GN_EDF_ERGO_MESSAGE_SPAWN GN_EDF_ERGO_PROTO_PREFIX "MessageSpawn"
#define GN_EDF_ERGO_MESSAGE_APPLICATION_START GN_EDF_ERGO_PROTO_PREFIX "MessageApplicationStart"
#define GN_EDF_ERGO_MESSAGE_RESULT GN_EDF_ERGO_PROTO_PREFIX "MessageResult"

/**
 * Registers what golemnet needs of Ergo 3.1.0's own registrations, in this
 * order:
 *  - the 15 framework errors in Ergo's order (on a fresh registry they get
 *    Ergo's ids 32768 "incorrect value or argument" ... 32782 "panic",
 *    ergo-wire.md §d);
 *  - GN_EDF_ERGO_VERSION {Name, Release, Commit, License string},
 *    GN_EDF_ERGO_NETWORK_FLAGS (custom: u32 8 + u64 bitmask),
 *    GN_EDF_ERGO_ROUTE {Host string, Port uint16, TLS bool,
 *    HandshakeVersion, ProtoVersion Version} (§a);
 *  - the handshake messages (§b, fields in wire order):
 *    Hello {Salt, Digest, DigestCert string};
 *    Join {Node atom, ConnectionID, Salt, Digest string};
 *    Introduce {Node atom, Version, Flags, Creation int64,
 *    MaxMessageSize int, AtomCache map[uint16]atom, RegCache
 *    map[uint16]string, ErrCache map[uint16]error, Digest string};
 *    Accept {ID string, PoolSize int, PoolDSN []string, Digest,
 *    DigestCert string};
 *  - the registrar messages (§a): RegisterRoutes {Node atom, Routes
 *    []Route}; RegisterReply {Error error}; ResolveRoutes {Node atom};
 *    ResolveReply {Routes []Route, Error error};
 *  - what the MessageAny (199) bodies carry (§c "MessageAny (199) bodies"):
 *    the named types Env (string), LogLevel, CompressionType (string),
 *    CompressionLevel, MessagePriority, ApplicationMode (int); the structs
 *    Compression {Enable bool, Type, Level, Threshold int}, ProcessFallback
 *    {Enable bool, Name atom, Tag string}, ProcessOptions {MailboxSize
 *    int64, Leader PID, Env map[Env]any, Compression, SendPriority,
 *    ImportantDelivery bool, Fallback, LinkParent, LinkChild bool,
 *    LogLevel}, ApplicationOptions {Env map[Env]any, LogLevel},
 *    ProcessOptionsExtra {ProcessOptions, ParentPID, ParentLeader PID,
 *    ParentEnv map[Env]any, ParentLogLevel, Register, Application atom,
 *    Args []any}, ApplicationOptionsExtra {ApplicationOptions, CorePID
 *    PID, CoreEnv map[Env]any, CoreLogLevel}, MessageEvent {Event,
 *    Timestamp int64, Message any};
 *  - the 199 bodies (GN_EDF_ERGO_PROTO_PREFIX + name): Message{Link,
 *    Unlink,Monitor,Demonitor}{PID,ProcessID,Alias,Event} {Source PID,
 *    Target, Ref}, MessageSpawn {Name atom, Options ProcessOptionsExtra,
 *    Ref}, MessageApplicationStart {Name atom, Mode ApplicationMode,
 *    Options ApplicationOptionsExtra, Ref}, MessageResult {Error error,
 *    Result any, Ref}. (MessageUpdateCache is not registered: Ergo never
 *    sends it.)
 * Types take the next type ids (4096... on a fresh registry); they need not
 * equal Ergo's, since a peer decodes with the announced table. Errors as
 * gn_edf_register_struct() (GN_EEXIST if one is already registered).
 * Since: 0.1
 */
GN_API int gn_edf_registry_add_ergo(gn_edf_registry *r);

/**
 * The registered type named @name (@len bytes), or NULL.
 * Since: 0.1
 */
GN_API const gn_edf_type *gn_edf_registry_find(const gn_edf_registry *r, const char *name,
                                               size_t len);

/**
 * Freezes the registry: further registrations fail with GN_ESTATE. Call it
 * before the first handshake announces the dictionaries; from then on the
 * registry may be shared by threads. Idempotent.
 * Since: 0.1
 */
GN_API void gn_edf_registry_freeze(gn_edf_registry *r);

/** Whether gn_edf_registry_freeze() was called. Since: 0.1 */
GN_API bool gn_edf_registry_frozen(const gn_edf_registry *r);

/**
 * The registry's own dictionaries: every registered atom, type name and
 * error with its registration id, i.e. what an Ergo node announces in its
 * Introduce and then encodes with. Owned by @r.
 * Since: 0.1
 */
GN_API const gn_edf_dict *gn_edf_registry_dict(const gn_edf_registry *r);

/* ---- encoding -------------------------------------------------------------------------- */

/** Encoder options. Zero-initialised = no dictionaries, default depth. Since: 0.1 */
typedef struct gn_edf_encode_opts {
    /* Dictionaries the peer was told about (ours): atoms, type names and errors found in it
     * are written as ids. NULL: none (handshake and registrar bodies). */
    const gn_edf_dict *dict;
    /* Nesting bound (0 = GN_EDF_DEFAULT_MAX_DEPTH). */
    uint32_t max_depth;
} gn_edf_encode_opts;

/**
 * Encodes @v as one top-level value (tag + body; registered types as 0x83 +
 * name or id; unregistered slices/arrays/maps as 0x82 + descriptor), appended
 * at @out->last. On failure @out is unchanged.
 * @o: NULL = defaults. Returns the number of bytes written, or: GN_EINVAL
 * (NULL @v/@out, a top-level nil — Ergo cannot encode one —, a value whose
 * kind or child count does not match its type, a NULL child type in an any
 * position, an ANY or NIL kind where a concrete type is needed); GN_ERANGE
 * (a limit of §d "Limits": atom > 255, string > 65535, error > 32767,
 * binary or count >= 2^32, name > 4095, descriptor > 65535 bytes, time
 * version not 1/2; also an encoding longer than INT32_MAX bytes, whose
 * length the return value cannot carry); GN_ELIMIT (deeper than
 * max_depth); GN_ENOSPC (@out too small; gn_edf_encoded_len() tells the
 * size).
 * Spec: ergo-wire.md §d.
 * Thread context: any thread; reads @o->dict.
 * Since: 0.1
 */
GN_API int gn_edf_encode(const gn_edf_encode_opts *o, const gn_edf_value *v, gn_buf *out);

/**
 * Computes the exact length gn_edf_encode() would write, into *@len.
 * Returns 0 or the same errors (never GN_ENOSPC).
 * Since: 0.1
 */
GN_API int gn_edf_encoded_len(const gn_edf_encode_opts *o, const gn_edf_value *v, size_t *len);

/* ---- decoding -------------------------------------------------------------------------- */

/**
 * Decode flag: copy every byte field (atoms, strings, binaries, error texts,
 * custom bytes, and the atoms and errors given by cache id) into the arena,
 * so the value depends only on the arena and the registry. Since: 0.1
 */
#define GN_EDF_DECODE_COPY 0x1u

/** Decoder options; fill with gn_edf_decode_opts_default(). Since: 0.1 */
typedef struct gn_edf_decode_opts {
    const gn_edf_registry *reg; /* registered types by name; NULL = none known */
    const gn_edf_dict *dict;    /* the PEER's dictionaries; NULL = no ids accepted */
    uint32_t max_depth;         /* nesting levels (containers, structs, any) */
    uint32_t max_values;        /* values in all (top level, children, and the composite types
                                 * of folded descriptors) */
    size_t max_input;           /* bytes a top-level value may span */
    unsigned flags;             /* GN_EDF_DECODE_* */
} gn_edf_decode_opts;

/** Fills @o with NULL registry/dict, the GN_EDF_DEFAULT_* limits and no flags. Since: 0.1 */
GN_API void gn_edf_decode_opts_default(gn_edf_decode_opts *o);

/** Why a decode failed. Since: 0.1 */
typedef struct gn_edf_decode_error {
    int code;         /* the gn_err returned */
    size_t offset;    /* input offset of the field that failed */
    int tag;          /* tag (or descriptor tag) being decoded there, -1 if none */
    const char *what; /* static description ("truncated", "depth limit", ...) */
} gn_edf_decode_error;

/**
 * Decodes one top-level value from the @len bytes at @in into *@out.
 * Children, decoded descriptor types and (with GN_EDF_DECODE_COPY) byte
 * fields are allocated in @a; otherwise byte fields borrow @in (and the
 * dict's strings for cached atoms/errors). Bytes after the value are not
 * read: *@consumed (optional) tells how many were used.
 * @o: NULL = defaults. @err (optional) receives the reason on failure.
 * Returns 0, or: GN_EINVAL (NULL @in with @len > 0, NULL @a/@out);
 * GN_ETOOBIG (@len > max_input); GN_EPARSE (truncated input, unknown tag, a
 * tag where a descriptor needs another, a count larger than the remaining
 * bytes, a malformed time, a descriptor whose length does not match);
 * GN_ENOTFOUND (unregistered type name, or an atom/type/error id absent
 * from @o->dict); GN_ELIMIT (max_depth or max_values exceeded); GN_ENOMEM
 * (arena). On failure *@out is a nil value and the arena keeps what was
 * allocated (reset it).
 * Strings are bytes: the format has no UTF-8 rule (Go strings), so none is
 * applied.
 * Spec: ergo-wire.md §d.
 * Thread context: any thread, one arena per thread.
 * Since: 0.1
 */
GN_API int gn_edf_decode(const gn_edf_decode_opts *o, gn_edf_arena *a, const uint8_t *in,
                         size_t len, gn_edf_value *out, size_t *consumed,
                         gn_edf_decode_error *err);

/**
 * Structural equality of two values (kinds, types by identity or
 * structure, bytes, children in order). For tests and applications that
 * compare decoded and built values. Floats compare by bit pattern.
 * Since: 0.1
 */
GN_API bool gn_edf_value_equal(const gn_edf_value *a, const gn_edf_value *b);

GN_END_DECLS

#endif /* GOLEMNET_EDF_H */
