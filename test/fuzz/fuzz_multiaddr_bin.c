/*
 * Fuzz target: multiaddr binary parser. Bytes that parse must print to a
 * string that parses back to exactly the same bytes; dup, components and
 * encapsulation must stay consistent. Violations abort().
 */
#include "golemnet/err.h"
#include "golemnet/multiaddr.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char str[GN_MA_MAX_STRLEN];
    gn_multiaddr *ma = NULL, *again = NULL, *dup = NULL, *two = NULL;
    int rc = gn_multiaddr_from_bytes(data, size, &ma);
    if (rc < 0) {
        if (rc != GN_EPARSE && rc != GN_ETOOBIG)
            abort();
        /* 32 whole components take at least 2 bytes each (every 1-byte code
         * carries a value); the 33rd is refused as soon as its code byte */
        if (rc == GN_ETOOBIG && size <= GN_MA_MAX_BYTES && size < 2 * GN_MA_MAX_COMPONENTS + 1)
            abort();
        return 0;
    }
    gn_slice b = gn_multiaddr_bytes(ma);
    if (b.len != size || memcmp(b.base, data, size) != 0)
        abort();
    int len = gn_multiaddr_to_string(ma, str, sizeof str);
    if (len <= 0 || (size_t)len >= sizeof str)
        abort();
    if (gn_multiaddr_parse(str, &again) != 0)
        abort();
    gn_slice b2 = gn_multiaddr_bytes(again);
    if (b2.len != size || memcmp(b2.base, data, size) != 0)
        abort();
    if (gn_multiaddr_count(again) != gn_multiaddr_count(ma))
        abort();
    if (gn_multiaddr_dup(ma, &dup) != 0 || !gn_multiaddr_equal(dup, ma))
        abort();
    rc = gn_multiaddr_encapsulate(ma, ma, &two);
    if (rc == 0) {
        if (gn_multiaddr_bytes(two).len != 2 * size ||
            gn_multiaddr_count(two) != 2 * gn_multiaddr_count(ma))
            abort();
        gn_multiaddr_free(two);
    } else if (rc != GN_ETOOBIG && rc != GN_EPARSE) {
        abort();
    }
    for (size_t i = 0; i < gn_multiaddr_count(ma); i++) {
        gn_ma_component c;
        char v[GN_MA_MAX_STRLEN];
        if (gn_multiaddr_component(ma, i, &c) != 0)
            abort();
        if (c.value_len > 0 && (c.value < b.base || c.value + c.value_len > b.base + b.len))
            abort();
        if (gn_ma_component_value_string(&c, v, sizeof v) < 0)
            abort();
    }
    gn_multiaddr_free(ma);
    gn_multiaddr_free(again);
    gn_multiaddr_free(dup);
    return 0;
}
