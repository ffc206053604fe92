/*
 * Fuzzes the libp2p TLS handshake record feed (layers/crypto/tls/tls.c) as
 * a server: any bytes as the client's first flight, in one piece and split
 * at the first byte's value. The feed never consumes more than given, and a
 * failure is sticky: bytes fed after it are not consumed and leave the status
 * unchanged. Seed: a TLS 1.3 ClientHello offering /yamux/1.0.0 and
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
    int failed = 0;
    /* passes 0 and 1: the input in two pieces; pass 2: all of it again once failed */
    for (int pass = 0; pass < 3; pass++) {
        size_t from = pass == 2 ? 0 : off;
        size_t end = pass == 0 ? split : size;
        if (pass == 2 && !failed)
            break;
        if (end < from)
            continue;
        size_t used = 0;
        if (gni_p2ptls_feed(t, data + from, end - from, &used) != 0 || used > end - from)
            abort();
        if (failed && used != 0)
            abort(); /* nothing is consumed once failed */
        off = from + used;
        uint8_t out[4096];
        gn_buf b;
        gn_buf_init(&b, out, sizeof out);
        while (gni_p2ptls_drain(t, &b) > 0)
            gn_buf_init(&b, out, sizeof out);
        int st = gni_p2ptls_status(t);
        if (failed && st != failed)
            abort(); /* a failure is sticky: more bytes do not change it */
        if (st < 0)
            failed = st;
    }
    gni_p2ptls_free(t);
    return 0;
}
