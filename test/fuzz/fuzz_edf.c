/*
 * Fuzzes the EDF decoder (protocols/ergo/edf.c, ergo-wire.md §d).
 *
 * Input: one option byte, then the bytes to decode. Option bits: 0x01 decode
 * (and encode) with the dictionaries of ../shared/vectors/ergo/edf_values.txt,
 * 0x02 GN_EDF_DECODE_COPY, 0x04 tight limits (depth 6, 64 values, 256 input
 * bytes), 0x08 a 512-byte bound on the arena. The registry holds the
 * vectors' types (Point, Celsius, PointList, Labels, Triple, Envelope, Blob,
 * Stamp) and Ergo's (Version, NetworkFlags, Route).
 *
 * Checks: a decode consumes no more than the input; every decoded value
 * (except a top-level nil, which Ergo cannot encode) encodes with the same
 * dictionaries to exactly gn_edf_encoded_len() bytes; those bytes decode to
 * an equal value, which encodes to the same bytes again.
 * Seeds: test/fuzz/corpus/edf/ (every edf_values.txt vector and the
 * payloads of a few ENP frames, with their option byte).
 */
#include "golemnet/common.h"
#include "golemnet/edf.h"
#include "golemnet/err.h"

#include <stdlib.h>
#include <string.h>

static gn_edf_registry *reg;
static gn_edf_dict *dict;

static void add(gn_edf_dict_kind k, uint16_t id, const char *s)
{
    if (gn_edf_dict_add(dict, k, id, s, strlen(s)) < 0)
        abort();
}

static void init(void)
{
    reg = gn_edf_registry_new();
    dict = gn_edf_dict_new();
    gn_edf_arena *tmp = gn_edf_arena_new(0, 0);
    if (!reg || !dict || !tmp || gn_edf_registry_add_ergo(reg) < 0)
        abort();
    const gn_edf_type *str = gn_edf_type_basic(GN_EDF_STRING);
    const gn_edf_type *any = gn_edf_type_basic(GN_EDF_ANY);
    const gn_edf_type *point, *flags = gn_edf_registry_find(reg, "#ergo.services/ergo/gen/NetworkFlags", 36);
    const gn_edf_field pf[] = {{"X", gn_edf_type_basic(GN_EDF_INT32)},
                               {"Y", gn_edf_type_basic(GN_EDF_INT32)},
                               {"Label", str}};
    const gn_edf_field ef[] = {
        {"Tag", gn_edf_type_basic(GN_EDF_ATOM)}, {"Body", any},
        {"Items", gn_edf_type_slice(tmp, any)},   {"Meta", gn_edf_type_map(tmp, str, any)},
        {"When", gn_edf_type_basic(GN_EDF_TIME)}, {"Err", gn_edf_type_basic(GN_EDF_ERROR)},
        {"Pos", NULL},                             {"Flags", flags},
    };
    gn_edf_field efc[8];
    memcpy(efc, ef, sizeof ef);
    if (gn_edf_register_struct(reg, "#golemcap/shared/Point", pf, 3, &point) < 0)
        abort();
    efc[6].type = point;
    if (gn_edf_register_type(reg, "#main/Celsius", gn_edf_type_basic(GN_EDF_FLOAT64), NULL) < 0 ||
        gn_edf_register_type(reg, "#main/PointList", gn_edf_type_slice(tmp, point), NULL) < 0 ||
        gn_edf_register_type(reg, "#main/Labels", gn_edf_type_map(tmp, str, str), NULL) < 0 ||
        gn_edf_register_type(reg, "#main/Triple",
                             gn_edf_type_array(tmp, 3, gn_edf_type_basic(GN_EDF_INT16)), NULL) < 0 ||
        gn_edf_register_struct(reg, "#main/Envelope", efc, 8, NULL) < 0 ||
        gn_edf_register_custom(reg, "#main/Blob", NULL) < 0 ||
        gn_edf_register_custom(reg, "#main/Stamp", NULL) < 0)
        abort();
    gn_edf_registry_freeze(reg);
    gn_edf_arena_free(tmp);
    /* the ids of edf_values.txt (a subset of its 125 types) */
    add(GN_EDF_DICT_ATOM, 256, "alpha@localhost");
    add(GN_EDF_DICT_ATOM, 257, "beta@localhost");
    add(GN_EDF_DICT_TYPE, 4106, "#ergo.services/ergo/gen/Version");
    add(GN_EDF_DICT_TYPE, 4124, "#ergo.services/ergo/gen/NetworkFlags");
    add(GN_EDF_DICT_TYPE, 4131, "#ergo.services/ergo/gen/Route");
    add(GN_EDF_DICT_TYPE, 4215, "#golemcap/shared/Point");
    add(GN_EDF_DICT_TYPE, 4216, "#main/Celsius");
    add(GN_EDF_DICT_TYPE, 4217, "#main/PointList");
    add(GN_EDF_DICT_TYPE, 4218, "#main/Labels");
    add(GN_EDF_DICT_TYPE, 4219, "#main/Triple");
    add(GN_EDF_DICT_TYPE, 4220, "#main/Envelope");
    add(GN_EDF_DICT_TYPE, 4221, "#main/Blob");
    add(GN_EDF_DICT_TYPE, 4222, "#main/Stamp");
    add(GN_EDF_DICT_ERROR, 32768, "incorrect value or argument");
    add(GN_EDF_DICT_ERROR, 32769, "timed out");
    add(GN_EDF_DICT_ERROR, 32779, "normal");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!reg)
        init();
    if (size < 1)
        return 0;
    uint8_t opt = data[0];
    data++;
    size--;
    gn_edf_decode_opts o;
    gn_edf_decode_opts_default(&o);
    o.reg = reg;
    o.dict = (opt & 1) ? dict : NULL;
    o.flags = (opt & 2) ? GN_EDF_DECODE_COPY : 0;
    if (opt & 4) {
        o.max_depth = 6;
        o.max_values = 64;
        o.max_input = 256;
    }
    gn_edf_arena *a = gn_edf_arena_new(256, (opt & 8) ? 512 : 0);
    gn_edf_arena *b = gn_edf_arena_new(256, 0);
    if (!a || !b)
        abort();
    gn_edf_value v;
    size_t used = 0;
    gn_edf_decode_error err;
    int rc = gn_edf_decode(&o, a, data, size, &v, &used, &err);
    if (rc < 0) {
        if (err.code != rc || !err.what || err.offset > size || v.kind != GN_EDF_NIL)
            abort();
        goto out;
    }
    if (used == 0 || used > size)
        abort();
    if (v.kind == GN_EDF_NIL) {
        if (used != 1 || data[0] != GN_EDF_TAG_NIL)
            abort();
        goto out;
    }
    gn_edf_encode_opts eo = {.dict = o.dict, .max_depth = o.max_depth};
    size_t len = 0;
    if (gn_edf_encoded_len(&eo, &v, &len) < 0)
        abort();
    uint8_t *buf1 = malloc(len ? len : 1), *buf2 = malloc(len ? len : 1);
    if (!buf1 || !buf2)
        abort();
    gn_buf w;
    gn_buf_init(&w, buf1, len);
    if (gn_edf_encode(&eo, &v, &w) != (int)len)
        abort();
    /* the re-encoding decodes (without input or arena caps) to an equal value */
    gn_edf_decode_opts o2 = o;
    o2.max_input = len;
    gn_edf_value v2;
    if (gn_edf_decode(&o2, b, buf1, len, &v2, &used, NULL) < 0 || used != len ||
        !gn_edf_value_equal(&v, &v2))
        abort();
    gn_buf_init(&w, buf2, len);
    if (gn_edf_encode(&eo, &v2, &w) != (int)len || memcmp(buf1, buf2, len) != 0)
        abort();
    free(buf1);
    free(buf2);
out:
    gn_edf_arena_free(a);
    gn_edf_arena_free(b);
    return 0;
}
