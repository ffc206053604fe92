/*
 * EDF codec tests (protocols/ergo/edf*.c, include/golemnet/edf.h).
 *
 * Known answers: ../shared/vectors/ergo/edf_values.txt (59 values produced
 * by Ergo 3.1.0's own encoder, dictionaries listed at its end), the ENP
 * payloads of enp_send_*.hex, the registrar and handshake bodies, and the
 * dictionaries of caches.txt. Files are read at run time from
 * $GN_SHARED_DIR/vectors/ergo (set by meson), else
 * $GN_SOURCE_DIR/../shared/vectors/ergo.
 */
#include "gn_failalloc.h"
#include "gn_test.h"

#include "golemnet/buf.h"
#include "golemnet/edf.h"
#include "golemnet/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- vector files ---------------------------------------------------------------------- */

static char *read_vector_file(const char *name)
{
    char path[1024];
    const char *dirs[2] = {getenv("GN_SHARED_DIR"), getenv("GN_SOURCE_DIR")};
    for (int i = 0; i < 2; i++) {
        if (!dirs[i]) {
            continue;
        }
        snprintf(path, sizeof path, i == 0 ? "%s/vectors/ergo/%s" : "%s/../shared/vectors/ergo/%s",
                 dirs[i], name);
        FILE *f = fopen(path, "rb");
        if (!f) {
            continue;
        }
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        char *buf = malloc((size_t)n + 1);
        if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n) {
            buf[n] = '\0';
            fclose(f);
            return buf;
        }
        free(buf);
        fclose(f);
    }
    return NULL;
}

#define MAX_VECS 80

typedef struct vec {
    char label[64];
    bool cache;
    uint8_t bytes[512];
    size_t len;
} vec;

static vec vecs[MAX_VECS];
static size_t nvecs;
static gn_edf_dict *vdict; /* the dictionaries at the end of edf_values.txt */
static gn_edf_registry *vreg;

/* Parses edf_values.txt into vecs[] and vdict; returns false when the file is missing. */
static bool load_values(void)
{
    if (nvecs) {
        return true;
    }
    char *text = read_vector_file("edf_values.txt");
    if (!text) {
        return false;
    }
    vdict = gn_edf_dict_new();
    CHECK(vdict != NULL);
    bool next_cache = false;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#') {
            unsigned id;
            char val[4200];
            if (strstr(line, "| cache=yes |")) {
                next_cache = true;
            } else if (strstr(line, "| cache=no |")) {
                next_cache = false;
            } else if (sscanf(line, "# atom %u '%4095[^']'", &id, val) == 2) {
                CHECK_OK(gn_edf_dict_add(vdict, GN_EDF_DICT_ATOM, (uint16_t)id, val, strlen(val)));
            } else if (sscanf(line, "# reg %u %4095s", &id, val) == 2) {
                CHECK_OK(gn_edf_dict_add(vdict, GN_EDF_DICT_TYPE, (uint16_t)id, val, strlen(val)));
            } else if (sscanf(line, "# err %u %4095[^\n]", &id, val) == 2) {
                CHECK_OK(gn_edf_dict_add(vdict, GN_EDF_DICT_ERROR, (uint16_t)id, val, strlen(val)));
            }
            continue;
        }
        char *sp = strchr(line, ' ');
        CHECK(sp != NULL && nvecs < MAX_VECS);
        vec *v = &vecs[nvecs++];
        snprintf(v->label, sizeof v->label, "%.*s", (int)(sp - line), line);
        v->cache = next_cache;
        long n = gn_test_unhex(sp + 1, v->bytes, sizeof v->bytes);
        CHECK(n > 0);
        v->len = (size_t)n;
    }
    free(text);
    return true;
}

static const vec *find_vec(const char *label)
{
    for (size_t i = 0; i < nvecs; i++) {
        if (strcmp(vecs[i].label, label) == 0) {
            return &vecs[i];
        }
    }
    printf("# no vector %s\n", label);
    CHECK(0);
    return NULL;
}

/* The registered types of edf_values.txt, in a registry built like the Go program's. */
static const gn_edf_type *t_point, *t_celsius, *t_pointlist, *t_labels, *t_triple, *t_envelope,
    *t_blob, *t_stamp, *t_flags, *t_version;

static gn_edf_registry *make_registry(void)
{
    gn_edf_registry *r = gn_edf_registry_new();
    CHECK(r != NULL);
    CHECK_OK(gn_edf_registry_add_ergo(r));
    t_version = gn_edf_registry_find(r, "#ergo.services/ergo/gen/Version", 31);
    t_flags = gn_edf_registry_find(r, "#ergo.services/ergo/gen/NetworkFlags", 36);
    CHECK(t_version && t_flags && t_flags->kind == GN_EDF_CUSTOM);
    const gn_edf_field point[] = {{"X", gn_edf_type_basic(GN_EDF_INT32)},
                                  {"Y", gn_edf_type_basic(GN_EDF_INT32)},
                                  {"Label", gn_edf_type_basic(GN_EDF_STRING)}};
    CHECK_OK(gn_edf_register_struct(r, "#golemcap/shared/Point", point, 3, &t_point));
    CHECK_OK(gn_edf_register_type(r, "#main/Celsius", gn_edf_type_basic(GN_EDF_FLOAT64),
                                  &t_celsius));
    gn_edf_arena *tmp = gn_edf_arena_new(0, 0);
    const gn_edf_type *str = gn_edf_type_basic(GN_EDF_STRING);
    const gn_edf_type *any = gn_edf_type_basic(GN_EDF_ANY);
    CHECK_OK(gn_edf_register_type(r, "#main/PointList", gn_edf_type_slice(tmp, t_point),
                                  &t_pointlist));
    CHECK_OK(gn_edf_register_type(r, "#main/Labels", gn_edf_type_map(tmp, str, str), &t_labels));
    CHECK_OK(gn_edf_register_type(
        r, "#main/Triple", gn_edf_type_array(tmp, 3, gn_edf_type_basic(GN_EDF_INT16)), &t_triple));
    const gn_edf_field env[] = {
        {"Tag", gn_edf_type_basic(GN_EDF_ATOM)},
        {"Body", any},
        {"Items", gn_edf_type_slice(tmp, any)},
        {"Meta", gn_edf_type_map(tmp, str, any)},
        {"When", gn_edf_type_basic(GN_EDF_TIME)},
        {"Err", gn_edf_type_basic(GN_EDF_ERROR)},
        {"Pos", t_point},
        {"Flags", t_flags},
    };
    CHECK_OK(gn_edf_register_struct(r, "#main/Envelope", env, 8, &t_envelope));
    gn_edf_arena_free(tmp); /* the registry copied the composites */
    CHECK_OK(gn_edf_register_custom(r, "#main/Blob", &t_blob));
    CHECK_OK(gn_edf_register_custom(r, "#main/Stamp", &t_stamp));
    return r;
}

static void setup(void)
{
    if (!load_values()) {
        SKIP("vectors/ergo/edf_values.txt not found (GN_SHARED_DIR)");
    }
    if (!vreg) {
        vreg = make_registry();
    }
}

static void dec_opts(gn_edf_decode_opts *o, const gn_edf_dict *dict)
{
    gn_edf_decode_opts_default(o);
    o->reg = vreg;
    o->dict = dict;
}

static gn_edf_value decode_ok(gn_edf_arena *a, const vec *v)
{
    gn_edf_decode_opts o;
    dec_opts(&o, v->cache ? vdict : NULL);
    gn_edf_value out;
    size_t used = 0;
    gn_edf_decode_error err;
    int rc = gn_edf_decode(&o, a, v->bytes, v->len, &out, &used, &err);
    if (rc < 0) {
        printf("# %s: %s at %zu tag 0x%x: %s\n", v->label, gn_err_name(rc), err.offset, err.tag,
               err.what);
    }
    CHECK_EQ(rc, 0);
    CHECK_EQ(used, v->len);
    return out;
}

/* Encodes @v with or without the vector dictionaries and compares with @label's bytes. */
static void check_encodes_to(const gn_edf_value *v, const char *label)
{
    const vec *want = find_vec(label);
    gn_edf_encode_opts eo = {.dict = want->cache ? vdict : NULL};
    uint8_t buf[1024];
    gn_buf b;
    gn_buf_init(&b, buf, sizeof buf);
    int n = gn_edf_encode(&eo, v, &b);
    if (n < 0) {
        printf("# %s: encode %s\n", label, gn_err_name(n));
    }
    CHECK_EQ(n, (long long)want->len);
    if (memcmp(buf, want->bytes, want->len) != 0) {
        printf("# %s differs\n", label);
    }
    CHECK_MEM(buf, want->bytes, want->len);
    size_t len = 0;
    CHECK_OK(gn_edf_encoded_len(&eo, v, &len));
    CHECK_EQ(len, want->len);
}

static bool sl_is(gn_slice s, const char *str)
{
    return s.len == strlen(str) && memcmp(s.base, str, s.len) == 0;
}

/* ---- every vector: decode, re-encode, truncations ---------------------------------------- */

GN_TEST(values_decode_and_reencode)
{
    setup();
    CHECK_EQ(nvecs, 59);
    gn_edf_arena *a = gn_edf_arena_new(0, 0);
    for (size_t i = 0; i < nvecs; i++) {
        gn_edf_value v = decode_ok(a, &vecs[i]);
        check_encodes_to(&v, vecs[i].label);
        gn_edf_arena_reset(a);
    }
    gn_edf_arena_free(a);
}

GN_TEST(values_truncated_at_every_offset)
{
    setup();
    gn_edf_arena *a = gn_edf_arena_new(0, 0);
    gn_edf_decode_opts o;
    size_t cases = 0;
    for (size_t i = 0; i < nvecs; i++) {
        dec_opts(&o, vecs[i].cache ? vdict : NULL);
        for (size_t k = 0; k < vecs[i].len; k++) {
            gn_edf_value out;
            gn_edf_decode_error err;
            int rc = gn_edf_decode(&o, a, vecs[i].bytes, k, &out, NULL, &err);
            CHECK_EQ(rc, GN_EPARSE);
            CHECK_EQ(err.code, GN_EPARSE);
            /* a cut slice or map may already fail on its count */
            CHECK(strcmp(err.what, "truncated") == 0 ||
                  strcmp(err.what, "count larger than the remaining bytes") == 0);
            CHECK(err.offset <= k);
            CHECK_EQ(out.kind, GN_EDF_NIL);
            cases++;
        }
        gn_edf_arena_reset(a);
    }
    CHECK_EQ(cases, 1288); /* the byte count of edf_values.txt */
    gn_edf_arena_free(a);
}

GN_TEST(values_copy_flag_owns_bytes)
{
    setup();
    const vec *v = find_vec("envelope");
    uint8_t copy[512];
    memcpy(copy, v->bytes, v->len);
    gn_edf_arena *a = gn_edf_arena_new(0, 0);
    gn_edf_decode_opts o;
    dec_opts(&o, NULL);
    o.flags = GN_EDF_DECODE_COPY;
    gn_edf_value out;
    CHECK_OK(gn_edf_decode(&o, a, copy, v->len, &out, NULL, NULL));
    memset(copy, 0xee, sizeof copy); /* the decoded value must not read the input any more */
    CHECK(sl_is(out.u.items[0].u.bytes, "env"));
    check_encodes_to(&out, "envelope");
    /* without the flag the same bytes are borrowed from the input */
    dec_opts(&o, NULL);
    CHECK_OK(gn_edf_decode(&o, a, v->bytes, v->len, &out, NULL, NULL));
    CHECK(out.u.items[0].u.bytes.base == v->bytes + 19);
    /* cached atoms and errors borrow the dictionary, or are copied with the flag */
    const vec *vc = find_vec("envelope_cached");
    gn_slice in_dict;
    CHECK_OK(gn_edf_dict_find(vdict, GN_EDF_DICT_ATOM, 256, &in_dict));
    dec_opts(&o, vdict);
    CHECK_OK(gn_edf_decode(&o, a, vc->bytes, vc->len, &out, NULL, NULL));
    CHECK(out.u.items[0].u.bytes.base == in_dict.base);
    o.flags = GN_EDF_DECODE_COPY;
    CHECK_OK(gn_edf_decode(&o, a, vc->bytes, vc->len, &out, NULL, NULL));
    CHECK(out.u.items[0].u.bytes.base != in_dict.base);
    CHECK(sl_is(out.u.items[0].u.bytes, "alpha@localhost"));
    CHECK(sl_is(out.u.items[5].u.bytes, "timed out"));
    gn_edf_arena_free(a);
}

/* ---- decoded values carry the right fields ------------------------------------------------- */

GN_TEST(values_decoded_fields)
{
    setup();
    gn_edf_arena *a = gn_edf_arena_new(0, 0);
    gn_edf_value v;

    v = decode_ok(a, find_vec("int_neg"));
    CHECK(v.kind == GN_EDF_INT && v.u.i == -1);
    v = decode_ok(a, find_vec("int8"));
    CHECK(v.kind == GN_EDF_INT8 && v.u.i == -2);
    v = decode_ok(a, find_vec("int16"));
    CHECK(v.kind == GN_EDF_INT16 && v.u.i == -300);
    v = decode_ok(a, find_vec("int32"));
    CHECK(v.kind == GN_EDF_INT32 && v.u.i == 70000);
    v = decode_ok(a, find_vec("int64"));
    CHECK(v.kind == GN_EDF_INT64 && v.u.i == -1234567890123LL);
    v = decode_ok(a, find_vec("uint64"));
    CHECK(v.kind == GN_EDF_UINT64 && v.u.u == UINT64_MAX);
    v = decode_ok(a, find_vec("uint16"));
    CHECK(v.kind == GN_EDF_UINT16 && v.u.u == 0xffff);
    v = decode_ok(a, find_vec("float32"));
    CHECK(v.kind == GN_EDF_FLOAT32 && v.u.f32 == 1.5f);
    v = decode_ok(a, find_vec("float64"));
    CHECK(v.kind == GN_EDF_FLOAT64 && v.u.f64 == 3.141592653589793);
    v = decode_ok(a, find_vec("bool_true"));
    CHECK(v.kind == GN_EDF_BOOL && v.u.b);
    v = decode_ok(a, find_vec("string_utf8"));
    CHECK(v.kind == GN_EDF_STRING && sl_is(v.u.bytes, "h\xc3\xa9llo"));
    v = decode_ok(a, find_vec("binary"));
    CHECK(v.kind == GN_EDF_BINARY && v.u.bytes.len == 6 && v.u.bytes.base[5] == 0xff);
    v = decode_ok(a, find_vec("atom_empty"));
    CHECK(v.kind == GN_EDF_ATOM && v.u.bytes.len == 0);

    v = decode_ok(a, find_vec("pid_atomcache"));
    CHECK(v.kind == GN_EDF_PID && sl_is(v.u.pid.node, "alpha@localhost"));
    CHECK(v.u.pid.id == 1005 && v.u.pid.creation == 1700000000);
    v = decode_ok(a, find_vec("processid"));
    CHECK(v.kind == GN_EDF_PROCESSID && sl_is(v.u.name.node, "beta@localhost") &&
          sl_is(v.u.name.name, "receiver"));
    v = decode_ok(a, find_vec("event"));
    CHECK(v.kind == GN_EDF_EVENT && sl_is(v.u.name.name, "golem_event"));
    v = decode_ok(a, find_vec("alias"));
    CHECK(v.kind == GN_EDF_ALIAS && v.u.ref.creation == 1700000001 && v.u.ref.id[0] == 0xb &&
          v.u.ref.id[2] == 0x21);
    v = decode_ok(a, find_vec("ref"));
    CHECK(v.kind == GN_EDF_REF && v.u.ref.id[1] == 0x37);
    v = decode_ok(a, find_vec("time_utc"));
    CHECK(v.kind == GN_EDF_TIME && v.u.time.version == 1 && v.u.time.nsec == 6000 &&
          v.u.time.offset_min == -1);
    CHECK_EQ(v.u.time.sec - GN_EDF_TIME_UNIX_OFFSET, 1704164645); /* 2024-01-02T03:04:05Z */
    v = decode_ok(a, find_vec("time_offset"));
    CHECK(v.u.time.offset_min == 120);

    v = decode_ok(a, find_vec("error_registered_cache"));
    CHECK(v.kind == GN_EDF_ERROR && !v.nil && sl_is(v.u.bytes, "timed out"));

    v = decode_ok(a, find_vec("slice_any"));
    CHECK(v.kind == GN_EDF_SLICE && v.type->elem->kind == GN_EDF_ANY && v.cnt == 5);
    CHECK(v.u.items[0].kind == GN_EDF_INT64 && v.u.items[0].u.i == 1);
    CHECK(v.u.items[1].kind == GN_EDF_STRING && sl_is(v.u.items[1].u.bytes, "x"));
    CHECK(v.u.items[2].kind == GN_EDF_BOOL && v.u.items[2].u.b);
    CHECK(v.u.items[3].kind == GN_EDF_NIL && v.u.items[3].type == NULL);
    CHECK(v.u.items[4].kind == GN_EDF_ATOM);
    v = decode_ok(a, find_vec("slice_string_nil"));
    CHECK(v.kind == GN_EDF_SLICE && v.nil && v.cnt == 0);
    v = decode_ok(a, find_vec("array_int32"));
    CHECK(v.kind == GN_EDF_ARRAY && v.type->len == 3 && v.cnt == 3 && v.u.items[2].u.i == 3);
    v = decode_ok(a, find_vec("map_string_int"));
    CHECK(v.kind == GN_EDF_MAP && v.cnt == 1 && sl_is(v.u.items[0].u.bytes, "one") &&
          v.u.items[1].u.i == 1);
    v = decode_ok(a, find_vec("map_empty"));
    CHECK(v.kind == GN_EDF_MAP && !v.nil && v.cnt == 0);

    v = decode_ok(a, find_vec("struct_point_regcache"));
    CHECK(v.kind == GN_EDF_STRUCT && v.type == t_point && v.cnt == 3);
    CHECK(v.u.items[0].u.i == 10 && v.u.items[1].u.i == -20 &&
          sl_is(v.u.items[2].u.bytes, "golem"));
    v = decode_ok(a, find_vec("registered_float"));
    CHECK(v.kind == GN_EDF_FLOAT64 && v.type == t_celsius && v.u.f64 == 36.6);
    v = decode_ok(a, find_vec("registered_slice"));
    CHECK(v.kind == GN_EDF_SLICE && v.type == t_pointlist && v.cnt == 1 &&
          v.u.items[0].type == t_point);
    v = decode_ok(a, find_vec("registered_array"));
    CHECK(v.type == t_triple && v.u.items[1].u.i == -1 && v.u.items[2].u.i == 300);
    v = decode_ok(a, find_vec("marshaler"));
    CHECK(v.kind == GN_EDF_CUSTOM && v.type == t_blob && v.u.bytes.len == 6);
    v = decode_ok(a, find_vec("network_flags"));
    CHECK(v.type == t_flags && v.u.bytes.len == 8 && v.u.bytes.base[7] == 0x67);

    v = decode_ok(a, find_vec("envelope_cached"));
    CHECK(v.type == t_envelope && v.cnt == 8);
    const gn_edf_value *f = v.u.items;
    CHECK(sl_is(f[0].u.bytes, "alpha@localhost"));
    CHECK(f[1].type == t_point && sl_is(f[1].u.items[2].u.bytes, "in-any"));
    CHECK(f[2].kind == GN_EDF_SLICE && f[2].nil);
    CHECK(f[3].kind == GN_EDF_MAP && f[3].nil);
    CHECK(f[5].kind == GN_EDF_ERROR && sl_is(f[5].u.bytes, "timed out"));
    v = decode_ok(a, find_vec("envelope"));
    f = v.u.items;
    CHECK(f[1].kind == GN_EDF_FLOAT32 && f[1].u.f32 == 2.5f);
    CHECK(f[2].cnt == 5 && f[2].u.items[3].kind == GN_EDF_MAP &&
          f[2].u.items[4].type->elem->kind == GN_EDF_INT16);
    CHECK(f[5].kind == GN_EDF_ERROR && f[5].nil);
    gn_edf_arena_free(a);
}

/* ---- values built by hand encode to the vector bytes -------------------------------------------- */

static void set_point(gn_edf_arena *a, gn_edf_value *v, int32_t x, int32_t y, const char *label)
{
    CHECK_OK(gn_edf_set_composite(v, a, t_point, 0));
    gn_edf_set_int(&v->u.items[0], GN_EDF_INT32, x);
    gn_edf_set_int(&v->u.items[1], GN_EDF_INT32, y);
    gn_edf_set_string(&v->u.items[2], label, strlen(label));
}

GN_TEST(built_scalars_encode_to_vectors)
{
    setup();
    gn_edf_value v;
    gn_edf_set_int(&v, GN_EDF_INT, 1);
    check_encodes_to(&v, "int");
    gn_edf_set_int(&v, GN_EDF_INT16, -300);
    check_encodes_to(&v, "int16");
    gn_edf_set_int(&v, GN_EDF_INT64, -1234567890123LL);
    check_encodes_to(&v, "int64");
    gn_edf_set_uint(&v, GN_EDF_UINT32, 0xffffffffu);
    check_encodes_to(&v, "uint32");
    gn_edf_set_uint(&v, GN_EDF_UINT, 7);
    check_encodes_to(&v, "uint");
    gn_edf_set_float32(&v, 1.5f);
    check_encodes_to(&v, "float32");
    gn_edf_set_float64(&v, 3.141592653589793);
    check_encodes_to(&v, "float64");
    gn_edf_set_bool(&v, false);
    check_encodes_to(&v, "bool_false");
    gn_edf_set_string(&v, "hello, golem", 12);
    check_encodes_to(&v, "string");
    static const uint8_t bin[] = {0, 1, 2, 3, 0xfe, 0xff};
    gn_edf_set_binary(&v, bin, sizeof bin);
    check_encodes_to(&v, "binary");
    gn_edf_set_atom(&v, "golem_atom", 10);
    check_encodes_to(&v, "atom");
    gn_edf_set_pid(&v, "alpha@localhost", 15, 0x3ed, 1700000000);
    check_encodes_to(&v, "pid");
    check_encodes_to(&v, "pid_atomcache"); /* same value, atom cache on */
    gn_edf_set_processid(&v, "beta@localhost", 14, "receiver", 8);
    check_encodes_to(&v, "processid");
    gn_edf_set_event(&v, "beta@localhost", 14, "golem_event", 11);
    check_encodes_to(&v, "event");
    const uint64_t aid[3] = {0xb, 0x16, 0x21}, rid[3] = {0x2c, 0x37, 0x42};
    gn_edf_set_alias(&v, "beta@localhost", 14, 1700000001, aid);
    check_encodes_to(&v, "alias");
    gn_edf_set_ref(&v, "beta@localhost", 14, 1700000001, rid);
    check_encodes_to(&v, "ref");
    gn_edf_time t = {.sec = 1704164645 + GN_EDF_TIME_UNIX_OFFSET, .nsec = 6000,
                     .offset_min = -1, .version = 1};
    gn_edf_set_time(&v, &t);
    check_encodes_to(&v, "time_utc");
    gn_edf_set_error(&v, "golem custom error", 18);
    check_encodes_to(&v, "error");
    gn_edf_set_error(&v, "timed out", 9);
    check_encodes_to(&v, "error_registered_nocache");
    check_encodes_to(&v, "error_registered_cache");
    gn_edf_set_float64(&v, 36.6);
    CHECK_OK(gn_edf_set_type(&v, t_celsius));
    check_encodes_to(&v, "registered_float");
    CHECK_EQ(gn_edf_set_type(&v, t_point), GN_EINVAL); /* kinds differ */
    static const uint8_t blob[] = {0x01, 0x02, 'b', 'l', 'o', 'b'};
    CHECK_OK(gn_edf_set_custom(&v, t_blob, blob, sizeof blob));
    check_encodes_to(&v, "marshaler");
    static const uint8_t flags[8] = {0, 0, 0, 0, 0, 0, 0, 0x67};
    CHECK_OK(gn_edf_set_custom(&v, t_flags, flags, 8));
    check_encodes_to(&v, "network_flags");
}

GN_TEST(built_composites_encode_to_vectors)
{
    setup();
    gn_edf_arena *a = gn_edf_arena_new(0, 0);
    const gn_edf_type *str = gn_edf_type_basic(GN_EDF_STRING);
    const gn_edf_type *any = gn_edf_type_basic(GN_EDF_ANY);
    const gn_edf_type *gint = gn_edf_type_basic(GN_EDF_INT);
    gn_edf_value v;

    CHECK_OK(gn_edf_set_composite(&v, a, gn_edf_type_slice(a, gint), 3));
    for (int i = 0; i < 3; i++) {
        gn_edf_set_int(&v.u.items[i], GN_EDF_INT, i + 1);
    }
    check_encodes_to(&v, "slice_int");

    CHECK_OK(gn_edf_set_nil_of(&v, gn_edf_type_slice(a, str)));
    check_encodes_to(&v, "slice_string_nil");

    CHECK_OK(gn_edf_set_composite(&v, a, gn_edf_type_slice(a, any), 5));
    gn_edf_set_int(&v.u.items[0], GN_EDF_INT64, 1);
    gn_edf_set_string(&v.u.items[1], "x", 1);
    gn_edf_set_bool(&v.u.items[2], true);
    /* items[3] stays nil */
    gn_edf_set_atom(&v.u.items[4], "a", 1);
    check_encodes_to(&v, "slice_any");

    CHECK_OK(gn_edf_set_composite(&v, a, gn_edf_type_array(a, 3, gn_edf_type_basic(GN_EDF_INT32)),
                                  0));
    for (int i = 0; i < 3; i++) {
        gn_edf_set_int(&v.u.items[i], GN_EDF_INT32, i + 1);
    }
    check_encodes_to(&v, "array_int32");

    const gn_edf_type *msi = gn_edf_type_map(a, str, gint);
    CHECK_OK(gn_edf_set_composite(&v, a, msi, 1));
    gn_edf_set_string(&v.u.items[0], "one", 3);
    gn_edf_set_int(&v.u.items[1], GN_EDF_INT, 1);
    check_encodes_to(&v, "map_string_int");
    CHECK_OK(gn_edf_set_nil_of(&v, msi));
    check_encodes_to(&v, "map_nil");
    CHECK_OK(gn_edf_set_composite(&v, a, msi, 0));
    check_encodes_to(&v, "map_empty");

    set_point(a, &v, 10, -20, "golem");
    check_encodes_to(&v, "struct_point");
    check_encodes_to(&v, "struct_point_regcache");

    CHECK_OK(gn_edf_set_composite(&v, a, gn_edf_type_slice(a, t_point), 2));
    set_point(a, &v.u.items[0], 1, 2, "a");
    set_point(a, &v.u.items[1], 3, 4, "b");
    check_encodes_to(&v, "slice_point");

    CHECK_OK(gn_edf_set_composite(&v, a, gn_edf_type_map(a, str, t_point), 1));
    gn_edf_set_string(&v.u.items[0], "p", 1);
    set_point(a, &v.u.items[1], 5, 6, "c");
    check_encodes_to(&v, "map_string_point");

    CHECK_OK(gn_edf_set_composite(&v, a, t_pointlist, 1));
    set_point(a, &v.u.items[0], 7, 8, "d");
    check_encodes_to(&v, "registered_slice");
    CHECK_OK(gn_edf_set_nil_of(&v, t_pointlist));
    check_encodes_to(&v, "registered_slice_nil");

    CHECK_OK(gn_edf_set_composite(&v, a, t_labels, 1));
    gn_edf_set_string(&v.u.items[0], "k", 1);
    gn_edf_set_string(&v.u.items[1], "v", 1);
    check_encodes_to(&v, "registered_map");

    CHECK_OK(gn_edf_set_composite(&v, a, t_triple, 0));
    gn_edf_set_int(&v.u.items[0], GN_EDF_INT16, 1);
    gn_edf_set_int(&v.u.items[1], GN_EDF_INT16, -1);
    gn_edf_set_int(&v.u.items[2], GN_EDF_INT16, 300);
    check_encodes_to(&v, "registered_array");

    CHECK_OK(gn_edf_set_composite(&v, a, t_version, 0));
    gn_edf_set_string(&v.u.items[0], "golemcap", 8);
    gn_edf_set_string(&v.u.items[1], "1.0", 3);
    gn_edf_set_string(&v.u.items[2], "", 0);
    gn_edf_set_string(&v.u.items[3], "MIT", 3);
    check_encodes_to(&v, "version");

    /* the nested Envelope, both without and with dictionaries */
    gn_edf_value *f;
    CHECK_OK(gn_edf_set_composite(&v, a, t_envelope, 0));
    f = v.u.items;
    gn_edf_set_atom(&f[0], "env", 3);
    gn_edf_set_float32(&f[1], 2.5f);
    CHECK_OK(gn_edf_set_composite(&f[2], a, t_envelope->fields[2].type, 5));
    gn_edf_value *it = f[2].u.items;
    gn_edf_set_string(&it[0], "s", 1);
    gn_edf_set_int(&it[1], GN_EDF_INT8, 1);
    CHECK_OK(gn_edf_set_composite(&it[3], a, msi, 1));
    gn_edf_set_string(&it[3].u.items[0], "n", 1);
    gn_edf_set_int(&it[3].u.items[1], GN_EDF_INT, 1);
    CHECK_OK(gn_edf_set_composite(&it[4], a, gn_edf_type_slice(a, gn_edf_type_basic(GN_EDF_INT16)),
                                  1));
    gn_edf_set_int(&it[4].u.items[0], GN_EDF_INT16, 1);
    CHECK_OK(gn_edf_set_composite(&f[3], a, t_envelope->fields[3].type, 1));
    gn_edf_set_string(&f[3].u.items[0], "m", 1);
    gn_edf_set_atom(&f[3].u.items[1], "v", 1);
    gn_edf_time t = {.sec = 1704164645 + GN_EDF_TIME_UNIX_OFFSET, .nsec = 6000,
                     .offset_min = -1, .version = 1};
    gn_edf_set_time(&f[4], &t);
    gn_edf_set_error(&f[5], NULL, 0);
    set_point(a, &f[6], 1, 1, "");
    static const uint8_t zero[8] = {0};
    CHECK_OK(gn_edf_set_custom(&f[7], t_flags, zero, 8));
    check_encodes_to(&v, "envelope");

    CHECK_OK(gn_edf_set_composite(&v, a, t_envelope, 0));
    f = v.u.items;
    gn_edf_set_atom(&f[0], "alpha@localhost", 15);
    set_point(a, &f[1], 2, 3, "in-any");
    CHECK_OK(gn_edf_set_nil_of(&f[2], t_envelope->fields[2].type));
    CHECK_OK(gn_edf_set_nil_of(&f[3], t_envelope->fields[3].type));
    gn_edf_set_time(&f[4], &t);
    gn_edf_set_error(&f[5], "timed out", 9);
    set_point(a, &f[6], 0, 0, "");
    static const uint8_t dflt[8] = {0, 0, 0, 0, 0, 0, 0, 0x67};
    CHECK_OK(gn_edf_set_custom(&f[7], t_flags, dflt, 8));
    check_encodes_to(&v, "envelope_cached");

    /* a decoded value equals the built one */
    gn_edf_value d = decode_ok(a, find_vec("envelope_cached"));
    CHECK(gn_edf_value_equal(&d, &v));
    gn_edf_set_error(&f[5], "timed ouT", 9);
    CHECK(!gn_edf_value_equal(&d, &v));
    gn_edf_arena_free(a);
}

/* ---- decoding errors --------------------------------------------------------------------------- */

static int decode_hex(const char *hex, const gn_edf_decode_opts *o, gn_edf_decode_error *err,
                      gn_edf_value *out)
{
    static uint8_t in[4096];
    long n = gn_test_unhex(hex, in, sizeof in);
    CHECK(n >= 0);
    gn_edf_arena *a = gn_edf_arena_new(0, 0);
    gn_edf_value tmp;
    int rc = gn_edf_decode(o, a, in, (size_t)n, out ? out : &tmp, NULL, err);
    gn_edf_arena_free(a);
    return rc;
}

GN_TEST(decode_unknown_tags)
{
    setup();
    gn_edf_decode_opts o;
    dec_opts(&o, NULL);
    gn_edf_decode_error err;
    static const char *const bad[] = {"80", "84", "a0", "b0", "00", "9d00000000"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ(decode_hex(bad[i], &o, &err, NULL), GN_EPARSE);
        CHECK_EQ(err.offset, 0);
        CHECK_STR(err.what, "unknown tag");
    }
    /* inside a []any: the third element starts at offset 12 */
    CHECK_EQ(decode_hex("8200029d849d0000000291018e", &o, &err, NULL), GN_EPARSE);
    CHECK_EQ(err.offset, 13);
    CHECK_EQ(err.tag, 0x8e);
    CHECK_STR(err.what, "truncated");
    CHECK_EQ(decode_hex("8200029d849d00000002910180", &o, &err, NULL), GN_EPARSE);
    CHECK_EQ(err.offset, 12);
    CHECK_EQ(err.tag, 0x80);
    CHECK_STR(err.what, "unknown tag");
    /* descriptor tags: 0x80 and 0xff are not types; a folded scalar is refused */
    CHECK_EQ(decode_hex("82000180", &o, &err, NULL), GN_EPARSE);
    CHECK_EQ(err.offset, 3);
    CHECK_EQ(decode_hex("820001950000000000000001", &o, &err, NULL), GN_EPARSE);
    CHECK_EQ(decode_hex("8200039d9696ff", &o, &err, NULL), GN_EPARSE); /* length too long */
    CHECK_STR(err.what, "descriptor shorter than its length");
    CHECK_EQ(decode_hex("8200019d", &o, &err, NULL), GN_EPARSE); /* element cut by the length */
    /* wrong markers */
    CHECK_EQ(decode_hex("8200029d96" "9f00000000", &o, &err, NULL), GN_EPARSE);
    CHECK_STR(err.what, "bad slice marker");
    CHECK_EQ(decode_hex("8200039f8d96" "9d00000000", &o, &err, NULL), GN_EPARSE);
    CHECK_STR(err.what, "bad map marker");
    /* time: wrong length or version */
    CHECK_EQ(decode_hex("af0f020000000edd25742500001770ffff", &o, &err, NULL), GN_EPARSE);
    CHECK_EQ(decode_hex("af0e0100000edd25742500001770ffff", &o, &err, NULL), GN_EPARSE);
    CHECK_EQ(decode_hex("af10020000000edd25742500001770ffff3c", &o, &err, NULL), 0);
}

GN_TEST(decode_counts_and_limits)
{
    setup();
    gn_edf_decode_opts o;
    dec_opts(&o, NULL);
    gn_edf_decode_error err;
    /* a count larger than the remaining bytes is refused before allocating */
    CHECK_EQ(decode_hex("8200029d969dffffffff00", &o, &err, NULL), GN_EPARSE);
    CHECK_STR(err.what, "count larger than the remaining bytes");
    CHECK_EQ(err.offset, 5);
    CHECK_EQ(err.tag, 0x9d);
    CHECK_EQ(decode_hex("8200039f8d969f7fffffff0000", &o, &err, NULL), GN_EPARSE);
    /* an array of 2^32-1 empty structs: the value budget stops it */
    gn_edf_registry *r = gn_edf_registry_new();
    const gn_edf_type *empty;
    CHECK_OK(gn_edf_register_struct(r, "#e/E", NULL, 0, &empty));
    o.reg = r;
    CHECK_EQ(decode_hex("82000c9effffffff830004" "23652f45", &o, &err, NULL), GN_ELIMIT);
    CHECK_STR(err.what, "value count limit (max_values)");
    CHECK_EQ(decode_hex("82000c9e00000003830004" "23652f45", &o, &err, NULL), 0);
    o.reg = vreg;
    gn_edf_registry_free(r);
    /* max_values: 100 ints with a budget of 50 */
    char hex[2048] = "8200029d969d00000064";
    for (int i = 0; i < 100; i++) {
        strcat(hex, "0000000000000001");
    }
    CHECK_EQ(decode_hex(hex, &o, &err, NULL), 0);
    o.max_values = 50;
    CHECK_EQ(decode_hex(hex, &o, &err, NULL), GN_ELIMIT);
    CHECK_EQ(err.offset, 10);
    o.max_values = 101; /* the slice and its descriptor's slice type count too */
    CHECK_EQ(decode_hex(hex, &o, &err, NULL), GN_ELIMIT);
    o.max_values = 102;
    CHECK_EQ(decode_hex(hex, &o, &err, NULL), 0);
    /* max_input: the value needs more bytes than allowed */
    dec_opts(&o, NULL);
    o.max_input = 100;
    CHECK_EQ(decode_hex(hex, &o, &err, NULL), GN_ETOOBIG);
    CHECK_STR(err.what, "value exceeds max_input");
    o.max_input = 10 + 800;
    CHECK_EQ(decode_hex(hex, &o, &err, NULL), 0);
}

/* nested []any: each level is "82 0002 9d84 9d 00000001" + the next level */
static void nest_hex(char *hex, int levels)
{
    hex[0] = '\0';
    for (int i = 0; i < levels; i++) {
        strcat(hex, "8200029d849d00000001");
    }
    strcat(hex, "9101");
}

GN_TEST(decode_depth_limit)
{
    setup();
    gn_edf_decode_opts o;
    dec_opts(&o, NULL);
    gn_edf_decode_error err;
    static char hex[8192];
    nest_hex(hex, 10);
    gn_edf_value v;
    o.max_depth = 64;
    CHECK_EQ(decode_hex(hex, &o, &err, &v), 0);
    o.max_depth = 8;
    CHECK_EQ(decode_hex(hex, &o, &err, NULL), GN_ELIMIT);
    CHECK(strstr(err.what, "depth limit") != NULL);
    CHECK(err.offset > 0);
    /* the default bound holds against a very deep input (no stack exhaustion) */
    nest_hex(hex, 300);
    dec_opts(&o, NULL);
    CHECK_EQ(decode_hex(hex, &o, &err, NULL), GN_ELIMIT);
    /* descriptors nest too */
    strcpy(hex, "820100");
    for (int i = 0; i < 255; i++) {
        strcat(hex, "9d");
    }
    strcat(hex, "96ff");
    CHECK_EQ(decode_hex(hex, &o, &err, NULL), GN_ELIMIT);
    CHECK(strstr(err.what, "descriptor") != NULL);
}

GN_TEST(decode_unregistered_and_uncached)
{
    setup();
    gn_edf_decode_opts o;
    gn_edf_decode_error err;
    gn_edf_decode_opts_default(&o); /* no registry */
    gn_edf_arena *a = gn_edf_arena_new(0, 0);
    gn_edf_value v;
    const vec *p = find_vec("struct_point");
    CHECK_EQ(gn_edf_decode(&o, a, p->bytes, p->len, &v, NULL, &err), GN_ENOTFOUND);
    CHECK_STR(err.what, "unregistered type");
    CHECK_EQ(err.offset, 0);
    CHECK_EQ(err.tag, 0x83);
    /* registered name nested in a descriptor */
    p = find_vec("slice_point");
    CHECK_EQ(gn_edf_decode(&o, a, p->bytes, p->len, &v, NULL, &err), GN_ENOTFOUND);
    CHECK_EQ(err.offset, 4);
    /* ids without (or missing from) the peer's dictionary */
    o.reg = vreg;
    p = find_vec("struct_point_regcache");
    CHECK_EQ(gn_edf_decode(&o, a, p->bytes, p->len, &v, NULL, &err), GN_ENOTFOUND);
    CHECK_STR(err.what, "type id not in the dictionary");
    p = find_vec("pid_atomcache");
    CHECK_EQ(gn_edf_decode(&o, a, p->bytes, p->len, &v, NULL, &err), GN_ENOTFOUND);
    CHECK_STR(err.what, "atom id not in the dictionary");
    CHECK_EQ(err.offset, 1);
    p = find_vec("error_registered_cache");
    CHECK_EQ(gn_edf_decode(&o, a, p->bytes, p->len, &v, NULL, &err), GN_ENOTFOUND);
    CHECK_STR(err.what, "error id not in the dictionary");
    o.dict = vdict;
    CHECK_EQ(decode_hex("9c8fff", &o, &err, NULL), GN_ENOTFOUND);
    /* a known id of a type the registry lacks */
    CHECK_EQ(decode_hex("831002", &o, &err, NULL), GN_ENOTFOUND); /* #.../gen/ProcessState */
    CHECK_STR(err.what, "unregistered type");
    gn_edf_arena_free(a);
}

GN_TEST(decode_strings_are_bytes)
{
    /* Go strings need not be UTF-8 and Ergo does not check: invalid UTF-8 round-trips */
    gn_edf_decode_opts o;
    gn_edf_decode_opts_default(&o);
    static const uint8_t in[] = {0x8d, 0x00, 0x03, 0xff, 0xfe, 0xc3};
    gn_edf_arena *a = gn_edf_arena_new(0, 0);
    gn_edf_value v;
    CHECK_OK(gn_edf_decode(&o, a, in, sizeof in, &v, NULL, NULL));
    CHECK(v.kind == GN_EDF_STRING && v.u.bytes.len == 3);
    uint8_t out[16];
    gn_buf b;
    gn_buf_init(&b, out, sizeof out);
    CHECK_EQ(gn_edf_encode(NULL, &v, &b), sizeof in);
    CHECK_MEM(out, in, sizeof in);
    /* a bool byte other than 1 reads as false, as in Ergo */
    static const uint8_t b7[] = {0x91, 0x07};
    CHECK_OK(gn_edf_decode(&o, a, b7, 2, &v, NULL, NULL));
    CHECK(v.kind == GN_EDF_BOOL && !v.u.b);
    /* trailing bytes are left to the caller; a top-level ff is a nil */
    static const uint8_t two[] = {0xff, 0x91, 0x01};
    size_t used = 0;
    CHECK_OK(gn_edf_decode(&o, a, two, 3, &v, &used, NULL));
    CHECK(v.kind == GN_EDF_NIL && used == 1);
    CHECK_EQ(gn_edf_decode(&o, a, two, 0, &v, NULL, NULL), GN_EPARSE);
    CHECK_EQ(gn_edf_decode(&o, NULL, two, 3, &v, NULL, NULL), GN_EINVAL);
    gn_edf_arena_free(a);
}

/* ---- encoder errors ---------------------------------------------------------------------------- */

GN_TEST(encode_limits_and_errors)
{
    setup();
    static char big[70000];
    memset(big, 'a', sizeof big);
    uint8_t out[256];
    gn_buf b;
    gn_buf_init(&b, out, sizeof out);
    gn_edf_value v;
    size_t len;

    gn_edf_set_atom(&v, big, 256);
    CHECK_EQ(gn_edf_encoded_len(NULL, &v, &len), GN_ERANGE);
    gn_edf_set_atom(&v, big, 255);
    CHECK_OK(gn_edf_encoded_len(NULL, &v, &len));
    CHECK_EQ(len, 258);
    CHECK_EQ(gn_edf_encode(NULL, &v, &b), GN_ENOSPC); /* 256-byte buffer */
    CHECK(b.last == out);
    gn_edf_set_string(&v, big, 65536);
    CHECK_EQ(gn_edf_encoded_len(NULL, &v, &len), GN_ERANGE);
    gn_edf_set_string(&v, big, 65535);
    CHECK_OK(gn_edf_encoded_len(NULL, &v, &len));
    gn_edf_set_error(&v, big, 32768);
    CHECK_EQ(gn_edf_encoded_len(NULL, &v, &len), GN_ERANGE);
    gn_edf_set_pid(&v, big, 256, 1, 1);
    CHECK_EQ(gn_edf_encoded_len(NULL, &v, &len), GN_ERANGE);
    gn_edf_time t = {.version = 3};
    gn_edf_set_time(&v, &t);
    CHECK_EQ(gn_edf_encoded_len(NULL, &v, &len), GN_ERANGE);

    /* a top-level nil cannot be encoded (Ergo cannot either) */
    gn_edf_set_nil(&v);
    CHECK_EQ(gn_edf_encode(NULL, &v, &b), GN_EINVAL);
    CHECK_EQ(gn_edf_set_int(&v, GN_EDF_UINT8, 1), GN_EINVAL);
    CHECK_EQ(gn_edf_set_uint(&v, GN_EDF_INT8, 1), GN_EINVAL);

    /* a child that does not match its static type */
    gn_edf_arena *a = gn_edf_arena_new(0, 0);
    CHECK_OK(gn_edf_set_composite(&v, a, t_point, 0));
    gn_edf_set_int(&v.u.items[0], GN_EDF_INT32, 1);
    gn_edf_set_int(&v.u.items[1], GN_EDF_INT64, 1);
    gn_edf_set_string(&v.u.items[2], "", 0);
    CHECK_EQ(gn_edf_encode(NULL, &v, &b), GN_EINVAL);
    CHECK(b.last == out);
    /* an array whose item count differs from its type */
    gn_edf_value arr = v;
    arr.type = t_triple;
    arr.kind = GN_EDF_ARRAY;
    arr.cnt = 2;
    CHECK_EQ(gn_edf_encode(NULL, &arr, &b), GN_EINVAL);

    /* a registered name longer than 4095 bytes, and a full descriptor */
    gn_edf_registry *r = gn_edf_registry_new();
    char name[4100];
    memset(name, 'n', sizeof name);
    name[4096] = '\0';
    CHECK_EQ(gn_edf_register_custom(r, name, NULL), GN_ERANGE);
    name[4095] = '\0';
    CHECK_OK(gn_edf_register_custom(r, name, NULL));
    gn_edf_registry_free(r);

    /* encoder depth bound */
    const gn_edf_type *sa = gn_edf_type_slice(a, gn_edf_type_basic(GN_EDF_ANY));
    gn_edf_value root, *cur = &root;
    for (int i = 0; i < 20; i++) {
        CHECK_OK(gn_edf_set_composite(cur, a, sa, 1));
        cur = &cur->u.items[0];
    }
    gn_edf_set_bool(cur, true);
    gn_edf_encode_opts eo = {.max_depth = 8};
    CHECK_EQ(gn_edf_encoded_len(&eo, &root, &len), GN_ELIMIT);
    eo.max_depth = 64;
    CHECK_OK(gn_edf_encoded_len(&eo, &root, &len));
    CHECK_EQ(len, 20 * 10 + 2);
    gn_edf_arena_free(a);
}

/* ---- registry and dictionaries ------------------------------------------------------------------- */

GN_TEST(registry_ids_freeze_and_errors)
{
    gn_edf_registry *r = gn_edf_registry_new();
    CHECK_OK(gn_edf_registry_add_ergo(r));
    const gn_edf_dict *d = gn_edf_registry_dict(r);
    CHECK_EQ(gn_edf_dict_count(d, GN_EDF_DICT_ERROR), 15);
    uint16_t id = 0;
    CHECK_OK(gn_edf_dict_find_id(d, GN_EDF_DICT_ERROR, "timed out", 9, &id));
    CHECK_EQ(id, 32769);
    CHECK_OK(gn_edf_dict_find_id(d, GN_EDF_DICT_ERROR, "panic", 5, &id));
    CHECK_EQ(id, 32782);
    CHECK_OK(gn_edf_dict_find_id(d, GN_EDF_DICT_TYPE, "#ergo.services/ergo/gen/Version", 31, &id));
    CHECK_EQ(id, 4096);
    CHECK_OK(gn_edf_register_error(r, "timed out", 9, &id)); /* again: same id */
    CHECK_EQ(id, 32769);
    CHECK_OK(gn_edf_register_atom(r, "alpha@localhost", 15, &id));
    CHECK_EQ(id, 256);
    CHECK_OK(gn_edf_register_atom(r, "golem", 5, &id));
    CHECK_EQ(id, 257);
    static char big[300];
    memset(big, 'x', sizeof big);
    CHECK_EQ(gn_edf_register_atom(r, big, 256, &id), GN_ERANGE);
    const gn_edf_field f[] = {{"A", gn_edf_type_basic(GN_EDF_ANY)}};
    CHECK_EQ(gn_edf_register_struct(r, "#ergo.services/ergo/gen/Version", f, 1, NULL), GN_EEXIST);
    CHECK_EQ(gn_edf_register_struct(r, "", f, 1, NULL), GN_EINVAL);
    const gn_edf_field nullf[] = {{"A", NULL}};
    CHECK_EQ(gn_edf_register_struct(r, "#x/NullField", nullf, 1, NULL), GN_EINVAL);
    CHECK_EQ(gn_edf_register_type(r, "#x/BadUnder", gn_edf_type_basic(GN_EDF_PID), NULL),
             GN_EINVAL);
    /* a registered field type must come from the same registry */
    gn_edf_registry *other = gn_edf_registry_new();
    const gn_edf_type *foreign;
    CHECK_OK(gn_edf_register_custom(other, "#o/Foreign", &foreign));
    const gn_edf_field ff[] = {{"F", foreign}};
    CHECK_EQ(gn_edf_register_struct(r, "#x/UsesForeign", ff, 1, NULL), GN_EINVAL);
    gn_edf_registry_free(other);
    const gn_edf_type *t;
    CHECK_OK(gn_edf_register_struct(r, "#x/Ok", f, 1, &t));
    CHECK_EQ(t->id, 4139); /* after add_ergo's 11 + 32 types (handshake, registrar, 199 bodies) */
    CHECK(gn_edf_registry_find(r, "#x/Ok", 5) == t);
    CHECK(gn_edf_registry_find(r, "#x/Nope", 7) == NULL);
    CHECK(!gn_edf_registry_frozen(r));
    gn_edf_registry_freeze(r);
    CHECK(gn_edf_registry_frozen(r));
    CHECK_EQ(gn_edf_register_struct(r, "#x/Late", f, 1, NULL), GN_ESTATE);
    CHECK_EQ(gn_edf_register_atom(r, "late", 4, NULL), GN_ESTATE);
    CHECK_EQ(gn_edf_register_error(r, "late", 4, NULL), GN_ESTATE);
    gn_edf_registry_free(r);
}

GN_TEST(dict_both_ways)
{
    gn_edf_dict *d = gn_edf_dict_new();
    CHECK_OK(gn_edf_dict_add(d, GN_EDF_DICT_ATOM, 300, "b", 1));
    CHECK_OK(gn_edf_dict_add(d, GN_EDF_DICT_ATOM, 256, "a", 1));
    CHECK_EQ(gn_edf_dict_add(d, GN_EDF_DICT_ATOM, 255, "c", 1), GN_ERANGE);
    CHECK_EQ(gn_edf_dict_add(d, GN_EDF_DICT_ATOM, 64536, "c", 1), GN_ERANGE);
    CHECK_EQ(gn_edf_dict_add(d, GN_EDF_DICT_TYPE, 4095, "#c", 2), GN_ERANGE);
    CHECK_EQ(gn_edf_dict_add(d, GN_EDF_DICT_ERROR, 65535, "c", 1), GN_ERANGE);
    CHECK_EQ(gn_edf_dict_add(d, GN_EDF_DICT_ATOM, 256, "c", 1), GN_EEXIST);
    CHECK_EQ(gn_edf_dict_add(d, GN_EDF_DICT_ATOM, 257, "a", 1), GN_EEXIST);
    CHECK_OK(gn_edf_dict_add(d, GN_EDF_DICT_ERROR, 32768, "a", 1)); /* kinds are separate */
    uint16_t id;
    gn_slice s;
    CHECK_OK(gn_edf_dict_find_id(d, GN_EDF_DICT_ATOM, "b", 1, &id));
    CHECK_EQ(id, 300);
    CHECK_OK(gn_edf_dict_find(d, GN_EDF_DICT_ATOM, 256, &s));
    CHECK(sl_is(s, "a"));
    CHECK_EQ(gn_edf_dict_find(d, GN_EDF_DICT_ATOM, 257, &s), GN_ENOTFOUND);
    CHECK_EQ(gn_edf_dict_find_id(d, GN_EDF_DICT_TYPE, "b", 1, &id), GN_ENOTFOUND);
    CHECK_EQ(gn_edf_dict_count(d, GN_EDF_DICT_ATOM), 2);
    CHECK_OK(gn_edf_dict_entry(d, GN_EDF_DICT_ATOM, 0, &id, &s));
    CHECK(id == 300 && sl_is(s, "b"));
    CHECK_EQ(gn_edf_dict_entry(d, GN_EDF_DICT_ATOM, 2, &id, &s), GN_ENOTFOUND);
    /* many entries: the tables grow */
    char name[16];
    for (unsigned i = 0; i < 2000; i++) {
        snprintf(name, sizeof name, "t%u", i);
        CHECK_OK(gn_edf_dict_add(d, GN_EDF_DICT_TYPE, (uint16_t)(5000 + i), name, strlen(name)));
    }
    CHECK_OK(gn_edf_dict_find_id(d, GN_EDF_DICT_TYPE, "t1234", 5, &id));
    CHECK_EQ(id, 6234);
    gn_edf_dict_free(d);
}

/* caches.txt: both nodes' announced tables load into dictionaries */
static gn_edf_dict *load_caches(const char *node)
{
    char *text = read_vector_file("caches.txt");
    if (!text) {
        return NULL;
    }
    gn_edf_dict *d = gn_edf_dict_new();
    bool in = false;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "###", 3) == 0) {
            in = strstr(line, node) != NULL;
            continue;
        }
        unsigned id;
        char kind[8], val[4200];
        if (!in || line[0] == '#' || sscanf(line, "%7s %u %4095[^\n]", kind, &id, val) != 3) {
            continue;
        }
        gn_edf_dict_kind k = kind[0] == 'a'   ? GN_EDF_DICT_ATOM
                             : kind[0] == 'r' ? GN_EDF_DICT_TYPE
                                              : GN_EDF_DICT_ERROR;
        CHECK_OK(gn_edf_dict_add(d, k, (uint16_t)id, val, strlen(val)));
    }
    free(text);
    return d;
}

/* ---- EDF inside real frames -------------------------------------------------------------------------- */

/* The first data line of @file whose frame starts with @prefix (hex), decoded into @out. */
static size_t frame_of(const char *file, const char *prefix, uint8_t *out, size_t cap)
{
    char *text = read_vector_file(file);
    if (!text) {
        return 0;
    }
    size_t n = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#') {
            continue;
        }
        char *hex = strrchr(line, ' ');
        if (hex && strncmp(hex + 1, prefix, strlen(prefix)) == 0) {
            long k = gn_test_unhex(hex + 1, out, cap);
            n = k > 0 ? (size_t)k : 0;
            break;
        }
    }
    free(text);
    return n;
}

static void check_enp_payload(gn_edf_arena *a, const gn_edf_dict *peer, const char *file,
                              gn_edf_value *out)
{
    static uint8_t frame[4096];
    size_t n = frame_of(file, "4e01", frame, sizeof frame);
    CHECK(n > 33);
    CHECK_EQ(frame[7], 101); /* MessagePID: payload at [33] (ergo-wire.md §c) */
    gn_edf_decode_opts o;
    dec_opts(&o, peer);
    size_t used = 0;
    gn_edf_decode_error err;
    int rc = gn_edf_decode(&o, a, frame + 33, n - 33, out, &used, &err);
    if (rc < 0) {
        printf("# %s: %s at %zu: %s\n", file, gn_err_name(rc), err.offset + 33, err.what);
    }
    CHECK_EQ(rc, 0);
    CHECK_EQ(used, n - 33);
    /* re-encoding with the same dictionary gives the frame's payload back */
    uint8_t buf[4096];
    gn_buf b;
    gn_buf_init(&b, buf, sizeof buf);
    gn_edf_encode_opts eo = {.dict = peer};
    CHECK_EQ(gn_edf_encode(&eo, out, &b), (long long)(n - 33));
    CHECK_MEM(buf, frame + 33, n - 33);
}

GN_TEST(enp_payloads_decode)
{
    setup();
    gn_edf_dict *alpha = load_caches("alpha");
    if (!alpha) {
        SKIP("caches.txt not found");
    }
    CHECK_EQ(gn_edf_dict_count(alpha, GN_EDF_DICT_TYPE), 125);
    CHECK_EQ(gn_edf_dict_count(alpha, GN_EDF_DICT_ERROR), 15);
    gn_edf_arena *a = gn_edf_arena_new(0, 0);
    gn_edf_value v;
    check_enp_payload(a, alpha, "enp_send_map.hex", &v);
    CHECK(v.kind == GN_EDF_MAP && v.cnt == 2);
    for (int i = 0; i < 2; i++) {
        gn_slice k = v.u.items[2 * i].u.bytes;
        int64_t want = sl_is(k, "one") ? 1 : sl_is(k, "two") ? 2 : -1;
        CHECK_EQ(v.u.items[2 * i + 1].u.i, want);
    }
    check_enp_payload(a, alpha, "enp_send_struct.hex", &v);
    CHECK(v.type == t_point && v.u.items[0].u.i == 10 && v.u.items[1].u.i == -20 &&
          sl_is(v.u.items[2].u.bytes, "golem"));
    check_enp_payload(a, alpha, "enp_send_error_registered.hex", &v);
    CHECK(v.kind == GN_EDF_ERROR && sl_is(v.u.bytes, "timed out"));
    check_enp_payload(a, alpha, "enp_send_pid.hex", &v);
    CHECK(v.kind == GN_EDF_PID && sl_is(v.u.pid.node, "alpha@localhost"));
    check_enp_payload(a, alpha, "enp_send_binary.hex", &v);
    CHECK(v.kind == GN_EDF_BINARY);
    check_enp_payload(a, alpha, "enp_send_float64.hex", &v);
    CHECK(v.kind == GN_EDF_FLOAT64);
    gn_edf_arena_free(a);
    gn_edf_dict_free(alpha);
}

/* Offset of the EDF payload of an ENP frame (ergo-wire.md §c "Message types and layouts"),
 * or 0 for frames without one (199 is handled by the caller, 200 is compressed). */
static size_t enp_payload_at(const uint8_t *f, size_t n)
{
    switch (f[7]) {
    case 101: return 33;
    case 102: return n > 25 ? 26 + (size_t)f[25] : 0;
    case 103: return 27;
    case 104: return 49;
    case 105: return n > 25 ? 26 + (size_t)f[25] : 0;
    case 106: return 27;
    case 107: return 25;
    case 121: return 49;
    case 122: return n > 41 ? 42 + (size_t)f[41] : 0;
    case 123: return 43;
    case 124: return 65;
    case 129: return 49;
    case 130: return n > 49 && f[49] == 255 ? 50 : 0;
    case 181: return 17;
    case 182: return n > 9 ? 10 + (size_t)f[9] : 0;
    case 183: return 11;
    case 184: return 33;
    case 185: return n > 9 ? 10 + (size_t)f[9] : 0;
    case 186: return 11;
    case 199: return 8;
    default: return 0;
    }
}

/* gn_edf_registry_add_ergo() registers the proto types of every MessageAny body
 * (ergo-wire.md §c "MessageAny (199) bodies"), Spawn and ApplicationStart included. */
static gn_edf_registry *make_proto_registry(void)
{
    /* make_registry() points the t_* globals at its types: keep setup()'s */
    const gn_edf_type *saved[] = {t_point, t_celsius, t_pointlist, t_labels, t_triple,
                                  t_envelope, t_blob, t_stamp, t_flags, t_version};
    gn_edf_registry *r = make_registry();
    t_point = saved[0], t_celsius = saved[1], t_pointlist = saved[2], t_labels = saved[3];
    t_triple = saved[4], t_envelope = saved[5], t_blob = saved[6], t_stamp = saved[7];
    t_flags = saved[8], t_version = saved[9];
    return r;
}

/* Every EDF payload of every ENP frame of the captures (compressed ones excepted), decoded
 * with the sender's dictionaries and re-encoded to the same bytes. */
GN_TEST(enp_every_payload)
{
    setup();
    gn_edf_dict *dicts[2] = {load_caches("'alpha@"), load_caches("'beta@")};
    if (!dicts[0] || !dicts[1]) {
        SKIP("caches.txt not found");
    }
    CHECK_EQ(gn_edf_dict_count(dicts[1], GN_EDF_DICT_ATOM), 3);
    gn_edf_arena *a = gn_edf_arena_new(0, 0);
    gn_edf_registry *r = make_proto_registry();
    static const char *const files[] = {
        "enp_call_alias.hex", "enp_call_important_unknown.hex", "enp_call_pid.hex",
        "enp_call_processid.hex", "enp_compress_below_threshold.hex",
        "enp_event_cached_monitor_fire_down.hex", "enp_event_monitor_fire_down.hex",
        "enp_exit_signal.hex", "enp_link_processid.hex", "enp_link_terminate.hex",
        "enp_link_terminate_samecreation.hex", "enp_link_unlink.hex",
        "enp_monitor_alias_down.hex", "enp_monitor_alias_down_samecreation.hex",
        "enp_monitor_demonitor.hex", "enp_monitor_down.hex", "enp_monitor_down_samecreation.hex",
        "enp_monitor_processid_cached_down.hex", "enp_monitor_processid_down.hex",
        "enp_remote_app_start.hex", "enp_remote_spawn.hex", "enp_send_alias.hex",
        "enp_send_atom.hex", "enp_send_binary.hex", "enp_send_bool.hex", "enp_send_error.hex",
        "enp_send_error_registered.hex", "enp_send_float64.hex", "enp_send_important.hex",
        "enp_send_int64.hex", "enp_send_map.hex", "enp_send_pid.hex",
        "enp_send_priority_max.hex", "enp_send_processid.hex", "enp_send_processid_cached.hex",
        "enp_send_string.hex", "enp_send_struct.hex",
    };
    size_t decoded = 0, any_bodies = 0;
    static uint8_t frame[16384], out[16384];
    for (size_t fi = 0; fi < sizeof files / sizeof files[0]; fi++) {
        char *text = read_vector_file(files[fi]);
        CHECK(text != NULL);
        char *save = NULL;
        for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            char *hex = strrchr(line, ' ');
            if (line[0] == '#' || !hex || strncmp(hex + 1, "4e01", 4) != 0) {
                continue;
            }
            long n = gn_test_unhex(hex + 1, frame, sizeof frame);
            CHECK(n >= 8);
            size_t at = enp_payload_at(frame, (size_t)n);
            if (at == 0 || at >= (size_t)n) {
                continue; /* no payload (130 with a code, 200 compressed) */
            }
            gn_edf_decode_opts o;
            dec_opts(&o, dicts[strncmp(line, "alpha>", 6) == 0 ? 0 : 1]);
            o.reg = r;
            gn_edf_value v;
            size_t used = 0;
            gn_edf_decode_error err;
            int rc = gn_edf_decode(&o, a, frame + at, (size_t)n - at, &v, &used, &err);
            if (frame[7] == 199) {
                any_bodies++;
            }
            if (rc < 0) {
                printf("# %s type %u: %s at %zu: %s\n", files[fi], frame[7], gn_err_name(rc),
                       err.offset + at, err.what);
            }
            CHECK_EQ(rc, 0);
            CHECK_EQ(used, (size_t)n - at);
            if (frame[7] == 107 || (frame[7] >= 181 && frame[7] <= 186) || frame[7] == 130) {
                CHECK_EQ(v.kind, GN_EDF_ERROR); /* reasons must be errors (§c) */
            }
            gn_edf_encode_opts eo = {.dict = o.dict};
            gn_buf b;
            gn_buf_init(&b, out, sizeof out);
            CHECK_EQ(gn_edf_encode(&eo, &v, &b), (long long)used);
            CHECK_MEM(out, frame + at, used);
            gn_edf_arena_reset(a);
            decoded++;
        }
        free(text);
    }
    printf("# %zu payloads decoded, %zu of them MessageAny bodies\n", decoded, any_bodies);
    CHECK(decoded >= 100);
    CHECK(any_bodies >= 20);
    gn_edf_registry_free(r);
    gn_edf_arena_free(a);
    gn_edf_dict_free(dicts[0]);
    gn_edf_dict_free(dicts[1]);
}

/* Decodes the 199 payload of the first frame of @file that starts with @prefix. */
static void any_payload(gn_edf_arena *a, const gn_edf_registry *r, const gn_edf_dict *peer,
                        const char *file, const char *prefix, gn_edf_value *out)
{
    static uint8_t frame[4096];
    size_t n = frame_of(file, prefix, frame, sizeof frame);
    CHECK(n > 8);
    CHECK_EQ(frame[7], 199);
    gn_edf_decode_opts o;
    dec_opts(&o, peer);
    o.reg = r;
    size_t used = 0;
    gn_edf_decode_error err;
    CHECK_OK(gn_edf_decode(&o, a, frame + 8, n - 8, out, &used, &err));
    CHECK_EQ(used, n - 8);
}

/* Remote spawn and application start (ergo-wire.md §c "MessageAny (199) bodies"): the
 * option structs gn_edf_registry_add_ergo() registers decode to the captured values. */
GN_TEST(remote_spawn_and_app_start_values)
{
    setup();
    gn_edf_dict *alpha = load_caches("'alpha@"), *beta = load_caches("'beta@");
    if (!alpha || !beta) {
        SKIP("caches.txt not found");
    }
    gn_edf_registry *r = make_proto_registry();
    gn_edf_arena *a = gn_edf_arena_new(0, 0);
    gn_edf_value v;
    any_payload(a, r, alpha, "enp_remote_spawn.hex", "4e01000000cd", &v);
    CHECK(v.type == gn_edf_registry_find(r, GN_EDF_ERGO_MESSAGE_SPAWN,
                                         strlen(GN_EDF_ERGO_MESSAGE_SPAWN)));
    CHECK_EQ(v.cnt, 3);
    CHECK(sl_is(v.u.items[0].u.bytes, "remote_worker"));
    const gn_edf_value *ox = &v.u.items[1]; /* ProcessOptionsExtra */
    CHECK_EQ(ox->cnt, 8);
    CHECK_EQ(ox->u.items[0].cnt, 10);                 /* ProcessOptions */
    CHECK(ox->u.items[0].u.items[2].nil);             /* Env: nil map */
    CHECK_EQ(ox->u.items[0].u.items[3].cnt, 4);       /* Compression */
    CHECK(sl_is(ox->u.items[1].u.pid.node, "alpha@localhost")); /* ParentPID */
    CHECK_EQ(ox->u.items[1].u.pid.id, 1004);
    const gn_edf_value *args = &ox->u.items[7];
    CHECK_EQ(args->kind, GN_EDF_SLICE);
    CHECK_EQ(args->cnt, 2);
    CHECK(args->u.items[0].kind == GN_EDF_STRING && sl_is(args->u.items[0].u.bytes, "golem-arg"));
    CHECK(args->u.items[1].kind == GN_EDF_INT && args->u.items[1].u.i == 42);
    CHECK_EQ(v.u.items[2].kind, GN_EDF_REF);
    /* the result carries the new PID */
    any_payload(a, r, beta, "enp_remote_spawn.hex", "4e0100000051", &v);
    CHECK(v.type == gn_edf_registry_find(r, GN_EDF_ERGO_MESSAGE_RESULT,
                                         strlen(GN_EDF_ERGO_MESSAGE_RESULT)));
    CHECK(v.u.items[0].nil);
    CHECK(v.u.items[1].kind == GN_EDF_PID && v.u.items[1].u.pid.id == 0x3f5);
    CHECK(sl_is(v.u.items[1].u.pid.node, "beta@localhost"));

    any_payload(a, r, alpha, "enp_remote_app_start.hex", "4e0100000064", &v);
    CHECK(v.type == gn_edf_registry_find(r, GN_EDF_ERGO_MESSAGE_APPLICATION_START,
                                         strlen(GN_EDF_ERGO_MESSAGE_APPLICATION_START)));
    CHECK_EQ(v.cnt, 4);
    CHECK(sl_is(v.u.items[0].u.bytes, "golem_app"));
    CHECK_EQ(v.u.items[1].u.i, 0); /* Mode */
    const gn_edf_value *ax = &v.u.items[2]; /* ApplicationOptionsExtra */
    CHECK_EQ(ax->cnt, 4);
    CHECK(sl_is(ax->u.items[1].u.pid.node, "alpha@localhost")); /* CorePID */
    CHECK_EQ(ax->u.items[1].u.pid.id, 1);
    any_payload(a, r, beta, "enp_remote_app_start.hex", "4e010000003f", &v);
    CHECK(v.u.items[0].nil && v.u.items[1].kind == GN_EDF_NIL);
    gn_edf_arena_free(a);
    gn_edf_registry_free(r);
    gn_edf_dict_free(alpha);
    gn_edf_dict_free(beta);
}

/* The registrar Register body (ergo-wire.md §a): a struct with a []gen.Route, no caches. */
GN_TEST(registrar_body_roundtrip)
{
    gn_edf_registry *r = gn_edf_registry_new();
    CHECK_OK(gn_edf_registry_add_ergo(r));
    gn_edf_arena *a = gn_edf_arena_new(0, 0);
    const gn_edf_type *route = gn_edf_registry_find(r, GN_EDF_ERGO_ROUTE, strlen(GN_EDF_ERGO_ROUTE));
    CHECK(route != NULL);
    gn_edf_registry_freeze(r);
    static uint8_t pkt[1024];
    size_t n = frame_of("registrar.hex", "012c", pkt, sizeof pkt);
    if (n == 0) {
        SKIP("registrar.hex not found");
    }
    CHECK_EQ(n, 4 + ((size_t)pkt[2] << 8 | pkt[3]));
    gn_edf_decode_opts o;
    gn_edf_decode_opts_default(&o);
    o.reg = r;
    gn_edf_value v;
    size_t used = 0;
    CHECK_OK(gn_edf_decode(&o, a, pkt + 4, n - 4, &v, &used, NULL));
    CHECK_EQ(used, n - 4);
    CHECK(sl_is(v.u.items[0].u.bytes, "alpha@localhost"));
    const gn_edf_value *routes = &v.u.items[1];
    CHECK(routes->cnt == 1);
    const gn_edf_value *rt = &routes->u.items[0];
    CHECK(rt->type == route && rt->u.items[1].u.u == 11145 && !rt->u.items[2].u.b);
    CHECK(sl_is(rt->u.items[3].u.items[0].u.bytes, "EHS"));
    CHECK(sl_is(rt->u.items[4].u.items[3].u.bytes, "MIT"));
    uint8_t buf[1024];
    gn_buf b;
    gn_buf_init(&b, buf, sizeof buf);
    CHECK_EQ(gn_edf_encode(NULL, &v, &b), (long long)(n - 4));
    CHECK_MEM(buf, pkt + 4, n - 4);
    gn_edf_arena_free(a);
    gn_edf_registry_free(r);
}

/* The handshake Introduce (ergo-wire.md §b): its three dictionaries are caches.txt's. */
GN_TEST(handshake_introduce_dictionaries)
{
    gn_edf_registry *r = gn_edf_registry_new();
    CHECK_OK(gn_edf_registry_add_ergo(r));
    gn_edf_arena *a = gn_edf_arena_new(0, 0);
    /* the third handshake message is alpha's Introduce */
    char *text = read_vector_file("handshake.hex");
    if (!text) {
        SKIP("handshake.hex not found");
    }
    static uint8_t msg[16384];
    size_t n = 0;
    int seen = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *hex = strrchr(line, ' ');
        if (line[0] != '#' && hex && strncmp(hex + 1, "5701", 4) == 0 && ++seen == 3) {
            long k = gn_test_unhex(hex + 1, msg, sizeof msg);
            CHECK(k > 6);
            n = (size_t)k;
            break;
        }
    }
    free(text);
    CHECK(n > 6);
    gn_edf_decode_opts o;
    gn_edf_decode_opts_default(&o);
    o.reg = r;
    gn_edf_value v;
    gn_edf_decode_error err;
    int rc = gn_edf_decode(&o, a, msg + 6, n - 6, &v, NULL, &err);
    if (rc < 0) {
        printf("# %s at %zu: %s\n", gn_err_name(rc), err.offset, err.what);
    }
    CHECK_EQ(rc, 0);
    CHECK(sl_is(v.u.items[0].u.bytes, "alpha@localhost"));
    /* fill a dictionary from the announced caches and compare with caches.txt */
    gn_edf_dict *got = gn_edf_dict_new();
    for (int k = 0; k < 3; k++) {
        const gn_edf_value *m = &v.u.items[5 + k];
        for (uint32_t i = 0; i < m->cnt; i++) {
            gn_slice s = m->u.items[2 * i + 1].u.bytes;
            CHECK_OK(gn_edf_dict_add(got, (gn_edf_dict_kind)k, (uint16_t)m->u.items[2 * i].u.u,
                                     (const char *)s.base, s.len));
        }
    }
    gn_edf_dict *want = load_caches("alpha");
    for (int k = 0; k < 3; k++) {
        CHECK_EQ(gn_edf_dict_count(got, (gn_edf_dict_kind)k),
                 gn_edf_dict_count(want, (gn_edf_dict_kind)k));
        for (size_t i = 0; i < gn_edf_dict_count(want, (gn_edf_dict_kind)k); i++) {
            uint16_t id;
            gn_slice ws, gs;
            CHECK_OK(gn_edf_dict_entry(want, (gn_edf_dict_kind)k, i, &id, &ws));
            CHECK_OK(gn_edf_dict_find(got, (gn_edf_dict_kind)k, id, &gs));
            CHECK(ws.len == gs.len && memcmp(ws.base, gs.base, ws.len) == 0);
        }
    }
    uint8_t *buf = malloc(n);
    gn_buf b;
    gn_buf_init(&b, buf, n);
    CHECK_EQ(gn_edf_encode(NULL, &v, &b), (long long)(n - 6));
    CHECK_MEM(buf, msg + 6, n - 6);
    free(buf);
    gn_edf_dict_free(got);
    gn_edf_dict_free(want);
    gn_edf_arena_free(a);
    gn_edf_registry_free(r);
}

/* Every registrar packet and handshake message of the captures decodes with the types of
 * gn_edf_registry_add_ergo() and re-encodes to the same bytes (ergo-wire.md §a, §b). */
static size_t bodies_roundtrip(const gn_edf_registry *r, const char *file, size_t hdr)
{
    char *text = read_vector_file(file);
    if (!text) {
        return 0;
    }
    gn_edf_arena *a = gn_edf_arena_new(0, 0);
    static uint8_t msg[16384], out[16384];
    size_t n = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *hex = strrchr(line, ' ');
        if (line[0] == '#' || !hex) {
            continue;
        }
        long k = gn_test_unhex(hex + 1, msg, sizeof msg);
        CHECK(k > (long)hdr);
        gn_edf_decode_opts o;
        gn_edf_decode_opts_default(&o);
        o.reg = r;
        gn_edf_value v;
        size_t used = 0;
        gn_edf_decode_error err;
        int rc = gn_edf_decode(&o, a, msg + hdr, (size_t)k - hdr, &v, &used, &err);
        if (rc < 0) {
            printf("# %s line %zu: %s at %zu: %s\n", file, n, gn_err_name(rc), err.offset,
                   err.what);
        }
        CHECK_EQ(rc, 0);
        CHECK_EQ(used, (size_t)k - hdr);
        CHECK(v.kind == GN_EDF_STRUCT && v.type->name != NULL);
        gn_buf b;
        gn_buf_init(&b, out, sizeof out);
        CHECK_EQ(gn_edf_encode(NULL, &v, &b), (long long)used);
        CHECK_MEM(out, msg + hdr, used);
        gn_edf_arena_reset(a);
        n++;
    }
    gn_edf_arena_free(a);
    free(text);
    return n;
}

GN_TEST(ergo_bodies_every_message)
{
    gn_edf_registry *r = gn_edf_registry_new();
    CHECK_OK(gn_edf_registry_add_ergo(r));
    gn_edf_registry_freeze(r);
    size_t n = bodies_roundtrip(r, "registrar.hex", 4);
    if (n == 0) {
        gn_edf_registry_free(r);
        SKIP("registrar.hex not found");
    }
    CHECK_EQ(n, 4); /* register, reply, resolve, reply */
    CHECK_EQ(bodies_roundtrip(r, "registrar_failover.hex", 4), 8);
    CHECK_EQ(bodies_roundtrip(r, "handshake.hex", 6), 6);
    CHECK_EQ(bodies_roundtrip(r, "handshake_join.hex", 6), 4);
    CHECK_EQ(bodies_roundtrip(r, "handshake_b.hex", 6), 10);
    gn_edf_registry_free(r);
}

/* ---- arena, allocation failure --------------------------------------------------------------------- */

GN_TEST(arena_reset_reuses_and_bounds)
{
    setup();
    gn_edf_arena *a = gn_edf_arena_new(256, 0);
    const vec *v = find_vec("envelope");
    gn_edf_decode_opts o;
    dec_opts(&o, NULL);
    gn_edf_value out;
    for (int i = 0; i < 3; i++) {
        CHECK_OK(gn_edf_decode(&o, a, v->bytes, v->len, &out, NULL, NULL));
        CHECK(gn_edf_arena_used(a) > 0);
        gn_edf_arena_reset(a);
        CHECK_EQ(gn_edf_arena_used(a), 0);
    }
    gn_edf_arena_free(a);
    /* a bounded arena fails the decode with GN_ENOMEM, not a crash */
    a = gn_edf_arena_new(64, 128);
    gn_edf_decode_error err;
    CHECK_EQ(gn_edf_decode(&o, a, v->bytes, v->len, &out, NULL, &err), GN_ENOMEM);
    CHECK_STR(err.what, "arena exhausted");
    gn_edf_arena_free(a);
}

static int alloc_scenario(void)
{
    int rc = GN_ENOMEM;
    gn_edf_registry *r = gn_edf_registry_new();
    gn_edf_arena *a = gn_edf_arena_new(64, 0);
    gn_edf_dict *d = gn_edf_dict_new();
    if (!r || !a || !d) {
        goto out;
    }
    const gn_edf_field f[] = {{"X", gn_edf_type_basic(GN_EDF_INT32)},
                              {"L", gn_edf_type_slice(a, gn_edf_type_basic(GN_EDF_ANY))}};
    if (!f[1].type) {
        goto out;
    }
    if ((rc = gn_edf_registry_add_ergo(r)) < 0 ||
        (rc = gn_edf_register_struct(r, "#t/S", f, 2, NULL)) < 0 ||
        (rc = gn_edf_register_atom(r, "a@b", 3, NULL)) < 0 ||
        (rc = gn_edf_dict_add(d, GN_EDF_DICT_ATOM, 256, "a@b", 3)) < 0) {
        goto out;
    }
    /* #t/S{X: 1, L: []any{"s", atom a@b (cached)}} */
    static const uint8_t in[] = {0x83, 0x00, 0x04, '#', 't', '/', 'S', 0, 0, 0, 1,
                                 0x9d, 0, 0, 0, 2, 0x8d, 0, 1, 's', 0x8c, 0x01, 0x00};
    gn_edf_decode_opts o;
    gn_edf_decode_opts_default(&o);
    o.reg = r;
    o.dict = d;
    o.flags = GN_EDF_DECODE_COPY;
    gn_edf_value v;
    if ((rc = gn_edf_decode(&o, a, in, sizeof in, &v, NULL, NULL)) < 0) {
        goto out;
    }
    CHECK(sl_is(v.u.items[1].u.items[1].u.bytes, "a@b"));
out:
    gn_edf_dict_free(d);
    gn_edf_arena_free(a);
    gn_edf_registry_free(r);
    return rc;
}

GN_TEST(allocation_failure_every_k)
{
    size_t failed = fa_every_k(alloc_scenario, 200);
    CHECK(failed > 5);
}

GN_TEST_MAIN(GN_T(values_decode_and_reencode), GN_T(values_truncated_at_every_offset),
             GN_T(values_copy_flag_owns_bytes), GN_T(values_decoded_fields),
             GN_T(built_scalars_encode_to_vectors), GN_T(built_composites_encode_to_vectors),
             GN_T(decode_unknown_tags), GN_T(decode_counts_and_limits), GN_T(decode_depth_limit),
             GN_T(decode_unregistered_and_uncached), GN_T(decode_strings_are_bytes),
             GN_T(encode_limits_and_errors), GN_T(registry_ids_freeze_and_errors),
             GN_T(dict_both_ways), GN_T(enp_payloads_decode), GN_T(enp_every_payload), GN_T(remote_spawn_and_app_start_values), GN_T(registrar_body_roundtrip), GN_T(ergo_bodies_every_message),
             GN_T(handshake_introduce_dictionaries), GN_T(arena_reset_reuses_and_bounds),
             GN_T(allocation_failure_every_k))
