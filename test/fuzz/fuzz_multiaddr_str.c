/*
 * Fuzz target: multiaddr string parser. A string that parses must print,
 * and the printed form must parse back to the same binary form; the binary
 * form must also be accepted by gn_multiaddr_from_bytes(). Components,
 * value strings, find and decapsulate must agree with it; gn_multiaddr_parse_ex
 * must give the same result and name a part of the input. Violations abort().
 */
#include "golemnet/err.h"
#include "golemnet/multiaddr.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fz_check_ma(const gn_multiaddr *ma)
{
    static char str[GN_MA_MAX_STRLEN];
    static char val[GN_MA_MAX_STRLEN];
    gn_multiaddr *again = NULL, *fromb = NULL;
    int len = gn_multiaddr_to_string(ma, str, sizeof str);
    if (len <= 0 || (size_t)len >= sizeof str || strlen(str) != (size_t)len)
        abort();
    if (gn_multiaddr_parse(str, &again) != 0)
        abort();
    if (!gn_multiaddr_equal(ma, again))
        abort();
    gn_slice b = gn_multiaddr_bytes(ma);
    if (b.len == 0 || b.len > GN_MA_MAX_BYTES)
        abort();
    if (gn_multiaddr_from_bytes(b.base, b.len, &fromb) != 0 || !gn_multiaddr_equal(ma, fromb))
        abort();
    size_t cnt = gn_multiaddr_count(ma);
    if (cnt == 0 || cnt > GN_MA_MAX_COMPONENTS || gn_multiaddr_count(again) != cnt)
        abort();
    size_t total = 0;
    for (size_t i = 0; i < cnt; i++) {
        gn_ma_component c;
        if (gn_multiaddr_component(ma, i, &c) != 0)
            abort();
        if (c.name == NULL || gn_ma_protocol_name(c.code) == NULL ||
            strcmp(c.name, gn_ma_protocol_name(c.code)) != 0)
            abort();
        if (gn_ma_component_value_string(&c, val, sizeof val) < 0)
            abort();
        int idx = gn_multiaddr_find(ma, c.code, NULL);
        if (idx < 0 || (size_t)idx > i)
            abort();
        total += c.value_len;
    }
    if (total >= b.len)
        abort();
    gn_ma_component last;
    if (gn_multiaddr_component(ma, cnt, &last) != GN_ERANGE)
        abort();
    if (gn_multiaddr_component(ma, cnt - 1, &last) != 0)
        abort();
    gn_multiaddr *cut = NULL;
    int rc = gn_multiaddr_decapsulate_code(ma, last.code, &cut);
    if (rc == 0) {
        if (gn_multiaddr_count(cut) >= cnt || gn_multiaddr_bytes(cut).len >= b.len ||
            memcmp(gn_multiaddr_bytes(cut).base, b.base, gn_multiaddr_bytes(cut).len) != 0)
            abort();
        gn_multiaddr_free(cut);
    } else if (rc != GN_EPARSE) {
        abort();
    }
    gn_multiaddr_free(again);
    gn_multiaddr_free(fromb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char s[GN_MA_MAX_STRLEN + 64];
    if (size >= sizeof s)
        size = sizeof s - 1;
    memcpy(s, data, size);
    s[size] = '\0';
    gn_multiaddr *ma = NULL;
    int rc = gn_multiaddr_parse(s, &ma);
    /* gn_multiaddr_parse_ex agrees, and names a part inside the string */
    gn_multiaddr *ma2 = NULL;
    gn_ma_parse_error e;
    int rc2 = gn_multiaddr_parse_ex(s, &ma2, &e);
    size_t slen = strlen(s);
    if (rc2 != rc || (rc == 0) != (e.reason == GN_MA_PARSE_OK))
        abort();
    if (rc < 0 && (e.offset > slen || e.len > slen - e.offset))
        abort();
    if (rc < 0 && e.len > 0 && e.reason != GN_MA_PARSE_SYNTAX && e.reason != GN_MA_PARSE_TOO_LONG &&
        s[e.offset] != '/')
        abort(); /* a component starts with its '/' */
    if (e.protocol != NULL && gn_ma_protocol_code(e.protocol) < 0)
        abort();
    if (rc == 0 && !gn_multiaddr_equal(ma, ma2))
        abort();
    gn_multiaddr_free(ma2);
    if (rc < 0) {
        if (rc != GN_EPARSE && rc != GN_ETOOBIG)
            abort();
        if (ma != NULL)
            abort();
        return 0;
    }
    fz_check_ma(ma);
    gn_multiaddr_free(ma);
    return 0;
}
