/*
 * Fuzzes the opening exchange of /golem/ergo/1.0.0 (protocols/ergo/
 * ergo_open.c): byte 0 sets the chunk size (1 + byte 0), the rest is what
 * the peer sends. Checks: only documented errors, each sticky and
 * explained; never more consumed than given, and nothing past the peer's
 * Introduce (what follows is ENP); a finished exchange names a valid peer
 * that is neither us nor another name than the one expected; the peer's
 * dictionaries load or fail with a documented error. Seeds: captured
 * handshake messages (test/fuzz/corpus/ergo_open/).
 */
#include "ergo_open.h"

#include "golemnet/err.h"

#include <stdlib.h>
#include <string.h>

static bool documented(int rc)
{
    return rc == 0 || rc == GN_EHANDSHAKE || rc == GN_EBADFRAME || rc == GN_EFRAMESIZE ||
           rc == GN_EPARSE || rc == GN_ENOTFOUND || rc == GN_ENOMEM;
}

static void run(const gn_edf_registry *reg, const char *expect, const uint8_t *p, size_t n,
                size_t chunk)
{
    gni_ergo_open_config c;
    memset(&c, 0, sizeof c);
    c.reg = reg;
    c.node = gn_slice_of("fuzz@localhost", 14);
    c.expect_peer = gn_slice_of(expect, strlen(expect));
    gni_ergo_open *o = NULL;
    if (gni_ergo_open_new(&c, 0, &o) < 0)
        return;
    size_t off = 0;
    int rc = 0;
    while (off < n) { /* bounded: each pass consumes bytes or stops */
        size_t take = n - off < chunk ? n - off : chunk, used = 0;
        rc = gni_ergo_open_feed(o, p + off, take, &used, 1);
        if (!documented(rc) || used > take)
            abort();
        off += used;
        if (rc < 0) {
            if (gni_ergo_open_done(o) || gni_ergo_open_error(o) != rc ||
                !gni_ergo_open_diag(o)[0] || gni_ergo_open_result_get(o))
                abort();
            size_t again = 0;
            if (gni_ergo_open_feed(o, p, n, &again, 1) != rc)
                abort(); /* sticky */
            break;
        }
        if (gni_ergo_open_done(o) || used < take)
            break;
    }
    if (gni_ergo_open_done(o)) {
        const gni_ergo_open_result *r = gni_ergo_open_result_get(o);
        if (!r || !gni_ehs_name_valid(r->peer_node) ||
            (r->peer_node.len == 14 && !memcmp(r->peer_node.base, "fuzz@localhost", 14)))
            abort();
        if (expect[0] && (r->peer_node.len != strlen(expect) ||
                          memcmp(r->peer_node.base, expect, r->peer_node.len)))
            abort();
        size_t used = 1;
        if (gni_ergo_open_feed(o, p, n, &used, 1) != 0 || used != 0)
            abort(); /* nothing is read past the Introduce */
        gn_edf_dict *d = gn_edf_dict_new();
        if (d) {
            int dr = gni_ergo_open_peer_dict(o, d);
            if (dr != 0 && dr != GN_EEXIST && dr != GN_ERANGE && dr != GN_ENOMEM &&
                dr != GN_EINVAL)
                abort();
            gn_edf_dict_free(d);
        }
    } else if (rc == 0 && gni_ergo_open_eof(o) != GN_EEOF) {
        abort();
    }
    gni_ergo_open_free(o);
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
    if (size < 1)
        return 0;
    size_t chunk = 1 + data[0];
    run(reg, "", data + 1, size - 1, chunk);
    run(reg, "beta@localhost", data + 1, size - 1, chunk);
    return 0;
}
