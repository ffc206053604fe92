/*
 * Fuzzes the EHS R1 handshake core (protocols/ergo/ehs.c): the message
 * parser and the acceptor / initiator state machines. Checks: the parser
 * returns only documented errors, consumes exactly one framed message, and
 * every message it accepts rebuilds to exactly its bytes; the cores, fed the
 * input in chunks of 1 + byte 0, only fail with documented errors, never read
 * past the handshake, and never finish without the digests of the spec
 * (with random input only an acceptor-side Join with a valid digest could,
 * which the fuzzer cannot forge).
 */
#include "ehs.h"

#include "golemnet/err.h"

#include <stdlib.h>
#include <string.h>

static uint8_t rebuilt[GNI_EHS_HEADER_LEN + GNI_EHS_BODY_MAX];

static void zero_fill(void *ud, uint8_t *out, size_t len)
{
    (void)ud;
    memset(out, 0x5a, len);
}

static bool documented(int rc)
{
    return rc == 0 || rc == GN_EHANDSHAKE || rc == GN_EBADFRAME || rc == GN_EFRAMESIZE ||
           rc == GN_EPARSE || rc == GN_ENOMEM;
}

static void run_core(const gn_edf_registry *reg, gni_ehs_role role, const uint8_t *p, size_t n,
                     size_t chunk)
{
    gn_rng rng = {zero_fill, NULL};
    gni_ehs_config c = {0};
    c.reg = reg;
    c.rng = &rng;
    c.cookie = gn_slice_of("golem-test-cookie", 17);
    c.node = gn_slice_of("fuzz@localhost", 14);
    c.pool_dsn = gn_slice_of("127.0.0.1:1", 11);
    c.conn_id = gn_slice_of("00000000000000000000000000000000", 32);
    gni_ehs *h = NULL;
    if (gni_ehs_new(&c, role, 0, &h) < 0)
        return;
    uint8_t out[256];
    size_t off = 0;
    while (off < n) {
        size_t take = n - off < chunk ? n - off : chunk, used = 0;
        gn_buf b;
        gn_buf_init(&b, out, sizeof out);
        while (gni_ehs_drain(h, &b) > 0)
            gn_buf_init(&b, out, sizeof out);
        int rc = gni_ehs_feed(h, p + off, take, &used, 0);
        if (!documented(rc) || used > take)
            abort();
        if (rc < 0) {
            if (gni_ehs_done(h) || gni_ehs_error(h) != rc || !gni_ehs_diag(h)[0])
                abort();
            break;
        }
        off += used;
        if (gni_ehs_done(h) || used < take)
            break;
    }
    if (gni_ehs_done(h) && role != GNI_EHS_ROLE_ACCEPT)
        abort(); /* an initiator cannot finish without the cookie's digests */
    (void)gni_ehs_eof(h);
    gni_ehs_free(h);
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
    const uint8_t *p = data + 1;
    size_t n = size - 1;

    gn_edf_arena *a = gn_edf_arena_new(0, 1 << 22);
    if (!a)
        return 0;
    gni_ehs_msg m;
    size_t used = 0;
    int rc = gni_ehs_parse(reg, a, p, n, false, &m, &used);
    if (rc != 0 && rc != GN_EAGAIN && rc != GN_EBADFRAME && rc != GN_EFRAMESIZE &&
        rc != GN_EPARSE && rc != GN_ENOTFOUND && rc != GN_ENOMEM)
        abort();
    if (rc == 0) {
        gn_buf b;
        gn_buf_init(&b, rebuilt, sizeof rebuilt);
        int w = gni_ehs_build(reg, a, &m, &b);
        if (used < GNI_EHS_HEADER_LEN || used > n || w != (int)used ||
            memcmp(rebuilt, p, used) != 0)
            abort();
    } else if (used != 0) {
        abort();
    }
    gn_edf_arena_free(a);

    run_core(reg, GNI_EHS_ROLE_ACCEPT, p, n, chunk);
    run_core(reg, GNI_EHS_ROLE_START, p, n, chunk);
    run_core(reg, GNI_EHS_ROLE_JOIN, p, n, chunk);
    return 0;
}
