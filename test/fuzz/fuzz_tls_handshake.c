/*
 * Fuzzes the libp2p TLS handshake record feed (layers/crypto/tls/tls.c) as
 * a server: any bytes as the client's first flight, in one piece and split
 * at the first byte's value. The feed never consumes more than given, and a
 * failure is sticky. Seed: a TLS 1.3 ClientHello offering /yamux/1.0.0 and
 * libp2p.
 */
#include "tls.h"

#include "golemnet/err.h"
#include "golemnet/identity.h"

#include <stdlib.h>

static gn_identity *id;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!id && gn_identity_from_int_seed(9, &id) < 0)
        abort();
    static const char *const muxers[] = {"/yamux/1.0.0"};
    gni_p2ptls_config cfg = {.initiator = false, .identity = id, .muxers = muxers,
                             .n_muxers = 1, .unix_now = 1796488952LL};
    gni_p2ptls *t;
    if (gni_p2ptls_new(&cfg, &t) < 0)
        abort();
    size_t split = size ? data[0] % (size + 1) : 0;
    size_t off = 0;
    for (int pass = 0; pass < 2 && off < size; pass++) {
        size_t end = pass == 0 ? split : size;
        size_t used = 0;
        if (end < off)
            continue;
        if (gni_p2ptls_feed(t, data + off, end - off, &used) != 0 || used > end - off)
            abort();
        off += used;
        uint8_t out[4096];
        gn_buf b;
        gn_buf_init(&b, out, sizeof out);
        while (gni_p2ptls_drain(t, &b) > 0)
            gn_buf_init(&b, out, sizeof out);
        int st = gni_p2ptls_status(t);
        if (st < 0 && gni_p2ptls_status(t) != st)
            abort();
    }
    gni_p2ptls_free(t);
    return 0;
}
