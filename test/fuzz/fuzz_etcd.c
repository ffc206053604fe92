/*
 * Fuzzes the etcd registrar core (protocols/ergo/etcd.c): the response
 * reader (HTTP/1.1 through http-parser, JSON messages through json-c) and
 * the route value decoder. Input: byte 0 picks the op the response answers
 * (low 3 bits) and the piece size (high bits: 0 = whole); the rest is the
 * server's bytes, fed in pieces. Then the same bytes are decoded as a
 * stored route value. Checks: only documented errors; every slice a result
 * hands out lies inside the reader's memory and within bounds; a feed never
 * consumes more than it was given and stops at the end of a response; a
 * decoded value re-encodes to a value that decodes to the same routes.
 */
#include "etcd.h"

#include "golemnet/err.h"

#include <stdlib.h>
#include <string.h>

static bool feed_err_ok(int rc)
{
    return rc == 0 || rc == 1 || rc == GN_EPROTO || rc == GN_EPARSE || rc == GN_ETOOBIG ||
           rc == GN_ELIMIT || rc == GN_ENOMEM || rc == GN_EEOF;
}

static int on_result(const gni_etcd_result *r, void *ud)
{
    size_t *total = ud;
    if (r->nkvs > 64 || (r->nkvs && !r->kvs))
        abort();
    for (uint32_t i = 0; i < r->nkvs; i++) {
        const gni_etcd_kv *kv = &r->kvs[i];
        if (kv->key.len == 0 || kv->key.len > (1u << 16) || kv->value.len > (1u << 16))
            abort();
        volatile uint8_t sink = 0; /* ASan checks the bytes are readable */
        for (size_t k = 0; k < kv->key.len; k++)
            sink ^= kv->key.base[k];
        for (size_t k = 0; k < kv->value.len; k++)
            sink ^= kv->value.base[k];
        (void)sink;
    }
    if (r->message.len > (1u << 16))
        abort();
    if (r->err != 0 && r->err != GN_EPROTO)
        abort();
    (*total)++;
    return 0;
}

static void routes_roundtrip(const gn_edf_registry *reg, const uint8_t *data, size_t size)
{
    gn_edf_arena *a = gn_edf_arena_new(0, 1 << 22);
    if (!a)
        return;
    const gni_reg_route *r = NULL, *r2 = NULL;
    uint32_t n = 0, n2 = 0;
    int rc = gni_etcd_routes_decode(reg, a, data, size, &r, &n);
    if (rc != 0 && rc != GN_EPARSE && rc != GN_ETOOBIG && rc != GN_ELIMIT &&
        rc != GN_ENOTFOUND && rc != GN_ENOMEM)
        abort();
    if (rc == 0) {
        static uint8_t out[1 << 18];
        gn_buf b;
        gn_buf_init(&b, out, sizeof out);
        int w = gni_etcd_routes_encode(reg, a, r, n, &b);
        if (w < 0 && w != GN_ERANGE)
            abort();
        if (w >= 0) {
            if (gni_etcd_routes_decode(reg, a, out, (size_t)w, &r2, &n2) != 0 || n2 != n)
                abort();
            for (uint32_t i = 0; i < n; i++)
                if (r[i].port != r2[i].port || r[i].tls != r2[i].tls ||
                    r[i].host.len != r2[i].host.len ||
                    (r[i].host.len && memcmp(r[i].host.base, r2[i].host.base, r[i].host.len)))
                    abort();
        }
    }
    gn_edf_arena_free(a);
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
    gni_etcd_op op = (gni_etcd_op)(GNI_ETCD_GRANT + (data[0] & 7) % 8);
    size_t step = data[0] >> 3;
    data++;
    size--;

    gni_etcd_limits lim = {.msg_max = 1 << 16, .kvs_max = 64};
    gni_etcd_resp *r = NULL;
    if (gni_etcd_resp_new(&lim, &r) < 0)
        return 0;
    size_t results = 0, off = 0;
    int rc = gni_etcd_resp_begin(r, op);
    if (rc < 0)
        abort();
    while (off < size) {
        size_t k = step && size - off > step ? step : size - off, used = 0;
        rc = gni_etcd_resp_feed(r, data + off, k, on_result, &results, &used);
        if (!feed_err_ok(rc) || used > k)
            abort();
        off += used;
        if (rc != 0)
            break;
        if (used != k)
            abort(); /* a feed that wants more has taken everything */
    }
    if (rc == 0) {
        rc = gni_etcd_resp_eof(r, on_result, &results);
        if (!feed_err_ok(rc))
            abort();
    }
    if (rc == 1 && op != GNI_ETCD_WATCH && results != 1)
        abort(); /* a finished response reported exactly once (stream or not) */
    gni_etcd_resp_free(r);

    routes_roundtrip(reg, data, size);
    return 0;
}
