/*
 * Fuzzes the embedded registrar core (protocols/ergo/registrar.c): the
 * packet parser and the server's TCP (register) and UDP (resolve) paths.
 * Checks: only documented errors; a parsed packet rebuilds to a packet that
 * parses and rebuilds to the same bytes (a TLS byte other than 1 reads as
 * false, as in Ergo, so the first rebuild may differ from the input there);
 * server replies are well-formed packets of the right type; the table stays
 * within its bounds.
 */
#include "registrar.h"

#include "golemnet/err.h"

#include <stdlib.h>
#include <string.h>

static uint8_t b1[1 << 17], b2[1 << 17];

static bool parse_err_ok(int rc)
{
    return rc == 0 || rc == GN_EAGAIN || rc == GN_EBADFRAME || rc == GN_EPARSE ||
           rc == GN_ENOTFOUND || rc == GN_ENOMEM;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static gn_edf_registry *reg;
    if (!reg) {
        reg = gn_edf_registry_new();
        if (!reg || gn_edf_registry_add_ergo(reg) < 0)
            abort();
        gn_edf_registry_freeze(reg);
    }
    gn_edf_arena *a = gn_edf_arena_new(0, 1 << 22);
    if (!a)
        return 0;
    gni_reg_packet p, q;
    size_t used = 0;
    int rc = gni_reg_parse(reg, a, data, size, false, &p, &used);
    if (!parse_err_ok(rc))
        abort();
    if (rc == 0) {
        gn_buf b;
        gn_buf_init(&b, b1, sizeof b1);
        int w1 = gni_reg_build(reg, a, &p, &b);
        if (w1 < 0 || (size_t)w1 != used)
            abort();
        if (gni_reg_parse(reg, a, b1, (size_t)w1, false, &q, NULL) != 0)
            abort();
        gn_buf_init(&b, b2, sizeof b2);
        int w2 = gni_reg_build(reg, a, &q, &b);
        if (w2 != w1 || memcmp(b1, b2, (size_t)w1) != 0)
            abort();
    }
    gn_edf_arena_free(a);

    gni_reg_server *s;
    if (gni_reg_server_new(reg, 2, 2, &s) < 0)
        return 0;
    gni_reg_route rt = gni_reg_route_ergo(11144, false);
    (void)gni_reg_server_add(s, 0, gn_slice_of("beta@localhost", 14), &rt, 1);
    for (uint64_t lease = 1; lease <= 3; lease++) {
        gn_buf b;
        gn_buf_init(&b, b1, sizeof b1);
        bool close = false;
        rc = gni_reg_server_tcp(s, lease, data, size, &b, &close);
        if (rc != 0 && rc != GN_EEXIST && rc != GN_EINVAL && rc != GN_ELIMIT &&
            !parse_err_ok(rc))
            abort();
        if (gn_buf_len(&b) > 0) {
            gn_edf_arena *ra = gn_edf_arena_new(0, 0);
            if (gni_reg_register_result(reg, ra, b1, gn_buf_len(&b)) != (rc == GN_ELIMIT ? GN_EINVAL : rc))
                abort();
            gn_edf_arena_free(ra);
        }
        if ((rc == 0) == close)
            abort();
    }
    if (gni_reg_server_count(s) > 2)
        abort();
    gn_buf b;
    gn_buf_init(&b, b1, sizeof b1);
    rc = gni_reg_server_udp(s, data, size, &b);
    if (rc > 0) {
        gn_edf_arena *ra = gn_edf_arena_new(0, 0);
        gni_reg_packet rp;
        if (gni_reg_parse(reg, ra, b1, (size_t)rc, false, &rp, NULL) != 0 ||
            rp.type != GNI_REG_RESOLVE_REPLY)
            abort();
        gn_edf_arena_free(ra);
    } else if (!parse_err_ok(rc)) {
        abort();
    }
    gni_reg_server_lease_end(s, 1);
    gni_reg_server_free(s);
    return 0;
}
