/*
 * bench_edf: EDF encode and decode rates (protocols/ergo/edf.c) as JSON
 * lines, one per shape and direction: values per second and MB/s of
 * encoded bytes, single thread.
 *
 * Shapes (the ENP payloads Ergo benchmarks with, and two common ones):
 *  - binary64:  a 64-byte []byte (Ergo's own benchmark sends these);
 *  - struct:    a registered struct {X int32; Y int32; Label string}
 *               ("golem"), type written as a reg-cache id as on an ENP link;
 *  - map16:     map[string]int with 16 entries (keys "key-00".."key-15");
 *  - envelope:  the nested struct of edf_values.txt (any, []any, map, time,
 *               error, struct, custom), without dictionaries.
 * Encode: gn_edf_encode() of a built value into a reused buffer. Decode:
 * gn_edf_decode() of those bytes into an arena reset after each value
 * (zero-copy: byte fields borrow the input), i.e. the steady state of a
 * receive loop.
 *
 * Usage: bench_edf [seconds per figure, default 1] [shape substring]
 * Not run by the test suite. See docs/performance.md, "EDF codec".
 */
#include "golemnet/golemnet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double secs = 1.0;

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_edf: %s: %s\n", what, gn_err_name(rc));
    exit(1);
}

static void run(const char *shape, const gn_edf_value *v, const gn_edf_encode_opts *eo,
                const gn_edf_decode_opts *dopt)
{
    static uint8_t buf[65536];
    gn_buf b;
    gn_buf_init(&b, buf, sizeof buf);
    int len = gn_edf_encode(eo, v, &b);
    if (len < 0)
        die("encode", len);
    /* encode */
    long n = 0;
    gn_time t0 = gn_now();
    double el;
    do {
        for (int i = 0; i < 1024; i++, n++) {
            gn_buf_reset(&b);
            if (gn_edf_encode(eo, v, &b) != len)
                die("encode", GN_EINTERNAL);
        }
        el = (double)(gn_now() - t0) / 1e9;
    } while (el < secs);
    printf("{\"bench\":\"edf\",\"shape\":\"%s\",\"op\":\"encode\",\"bytes\":%d,"
           "\"values_per_s\":%.0f,\"mb_per_s\":%.1f}\n",
           shape, len, (double)n / el, (double)n * len / el / 1e6);
    /* decode */
    gn_edf_arena *a = gn_edf_arena_new(4096, 0);
    if (!a)
        die("arena", GN_ENOMEM);
    gn_edf_value out;
    n = 0;
    t0 = gn_now();
    do {
        for (int i = 0; i < 1024; i++, n++) {
            gn_edf_arena_reset(a);
            size_t used;
            int rc = gn_edf_decode(dopt, a, buf, (size_t)len, &out, &used, NULL);
            if (rc < 0)
                die("decode", rc);
        }
        el = (double)(gn_now() - t0) / 1e9;
    } while (el < secs);
    if (!gn_edf_value_equal(&out, v))
        die("decoded value differs", GN_EINTERNAL);
    printf("{\"bench\":\"edf\",\"shape\":\"%s\",\"op\":\"decode\",\"bytes\":%d,"
           "\"values_per_s\":%.0f,\"mb_per_s\":%.1f}\n",
           shape, len, (double)n / el, (double)n * len / el / 1e6);
    fflush(stdout);
    gn_edf_arena_free(a);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        secs = atof(argv[1]);
    if (secs <= 0)
        secs = 1.0;
    const char *only = argc > 2 ? argv[2] : NULL;

    gn_edf_registry *reg = gn_edf_registry_new();
    gn_edf_arena *a = gn_edf_arena_new(0, 0);
    if (!reg || !a)
        die("setup", GN_ENOMEM);
    int rc = gn_edf_registry_add_ergo(reg);
    const gn_edf_type *str = gn_edf_type_basic(GN_EDF_STRING);
    const gn_edf_type *any = gn_edf_type_basic(GN_EDF_ANY);
    const gn_edf_field pf[] = {{"X", gn_edf_type_basic(GN_EDF_INT32)},
                               {"Y", gn_edf_type_basic(GN_EDF_INT32)},
                               {"Label", str}};
    const gn_edf_type *point, *env;
    if (rc == 0)
        rc = gn_edf_register_struct(reg, "#golemcap/shared/Point", pf, 3, &point);
    const gn_edf_field ef[] = {
        {"Tag", gn_edf_type_basic(GN_EDF_ATOM)}, {"Body", any},
        {"Items", gn_edf_type_slice(a, any)},     {"Meta", gn_edf_type_map(a, str, any)},
        {"When", gn_edf_type_basic(GN_EDF_TIME)}, {"Err", gn_edf_type_basic(GN_EDF_ERROR)},
        {"Pos", rc == 0 ? point : NULL},
        {"Flags", gn_edf_registry_find(reg, "#ergo.services/ergo/gen/NetworkFlags", 36)},
    };
    if (rc == 0)
        rc = gn_edf_register_struct(reg, "#main/Envelope", ef, 8, &env);
    if (rc < 0)
        die("register", rc);
    gn_edf_registry_freeze(reg);
    /* an ENP link's dictionary: the type names as ids, like Ergo's reg cache */
    gn_edf_dict *dict = gn_edf_dict_new();
    if (!dict || gn_edf_dict_add(dict, GN_EDF_DICT_TYPE, 4215, "#golemcap/shared/Point", 22) < 0)
        die("dict", GN_ENOMEM);

    gn_edf_encode_opts eo_plain = {0}, eo_dict = {.dict = dict};
    gn_edf_decode_opts do_plain, do_dict;
    gn_edf_decode_opts_default(&do_plain);
    do_plain.reg = reg;
    do_dict = do_plain;
    do_dict.dict = dict;

    gn_edf_value v;
    static uint8_t bin[64];
    for (size_t i = 0; i < sizeof bin; i++)
        bin[i] = (uint8_t)i;
    if (!only || strstr("binary64", only)) {
        gn_edf_set_binary(&v, bin, sizeof bin);
        run("binary64", &v, &eo_plain, &do_plain);
    }
    if (!only || strstr("struct", only)) {
        if ((rc = gn_edf_set_composite(&v, a, point, 0)) < 0)
            die("build", rc);
        gn_edf_set_int(&v.u.items[0], GN_EDF_INT32, 10);
        gn_edf_set_int(&v.u.items[1], GN_EDF_INT32, -20);
        gn_edf_set_string(&v.u.items[2], "golem", 5);
        run("struct", &v, &eo_dict, &do_dict);
    }
    static char keys[16][8];
    if (!only || strstr("map16", only)) {
        const gn_edf_type *msi = gn_edf_type_map(a, str, gn_edf_type_basic(GN_EDF_INT));
        if ((rc = gn_edf_set_composite(&v, a, msi, 16)) < 0)
            die("build", rc);
        for (int i = 0; i < 16; i++) {
            snprintf(keys[i], sizeof keys[i], "key-%02d", i);
            gn_edf_set_string(&v.u.items[2 * i], keys[i], strlen(keys[i]));
            gn_edf_set_int(&v.u.items[2 * i + 1], GN_EDF_INT, i * 1000);
        }
        run("map16", &v, &eo_plain, &do_plain);
    }
    if (!only || strstr("envelope", only)) {
        if ((rc = gn_edf_set_composite(&v, a, env, 0)) < 0)
            die("build", rc);
        gn_edf_value *f = v.u.items;
        gn_edf_set_atom(&f[0], "env", 3);
        gn_edf_set_float64(&f[1], 2.5);
        if ((rc = gn_edf_set_composite(&f[2], a, env->fields[2].type, 3)) < 0 ||
            (rc = gn_edf_set_composite(&f[3], a, env->fields[3].type, 1)) < 0 ||
            (rc = gn_edf_set_composite(&f[6], a, point, 0)) < 0)
            die("build", rc);
        gn_edf_set_string(&f[2].u.items[0], "s", 1);
        gn_edf_set_int(&f[2].u.items[1], GN_EDF_INT, 1);
        gn_edf_set_pid(&f[2].u.items[2], "alpha@localhost", 15, 1004, 1795235515);
        gn_edf_set_string(&f[3].u.items[0], "m", 1);
        gn_edf_set_atom(&f[3].u.items[1], "v", 1);
        gn_edf_time t = {.sec = 63840261845, .nsec = 6000, .offset_min = -1, .version = 1};
        gn_edf_set_time(&f[4], &t);
        gn_edf_set_error(&f[5], "timed out", 9);
        gn_edf_set_int(&f[6].u.items[0], GN_EDF_INT32, 1);
        gn_edf_set_int(&f[6].u.items[1], GN_EDF_INT32, 1);
        gn_edf_set_string(&f[6].u.items[2], "", 0);
        static const uint8_t flags[8] = {0, 0, 0, 0, 0, 0, 0, 0x67};
        gn_edf_set_custom(&f[7], gn_edf_registry_find(reg, "#ergo.services/ergo/gen/NetworkFlags", 36),
                          flags, 8);
        run("envelope", &v, &eo_plain, &do_plain);
    }
    gn_edf_dict_free(dict);
    gn_edf_arena_free(a);
    gn_edf_registry_free(reg);
    return 0;
}
