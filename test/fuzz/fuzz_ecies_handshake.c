/*
 * Fuzz target: the /golem/ecies/1.0.0 handshake core (docs/protocols/ecies.md
 * sections 4-9), then the transport decoder on the bytes that follow.
 *
 * Input: byte 0 selects the role (bit 0: 0 initiator, 1 responder) and byte 1
 * the feed chunk size (1..256); the rest is what the peer sends. Identities
 * are int seeds 1 (initiator) and 2 (responder) and ephemeral keys come from
 * a counter RNG (bases 0x10 / 0x80), exactly as in the known-answer test of
 * test/unit/crypto/ecies_test.c, so the seed corpus holds the real msg2 (for
 * the initiator) and msg1 + msg3 (for the responder) and reaches every state.
 * Invariants (abort() on violation): only the documented errors; consumed
 * never exceeds the input; a finished handshake yields a session.
 */
#include "ecies.h"

#include "golemnet/err.h"
#include "golemnet/identity.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct ctr_rng {
    uint8_t base;
    uint32_t ctr;
} ctr_rng;

static void ctr_fill(void *ud, uint8_t *out, size_t len)
{
    ctr_rng *st = ud;
    for (size_t i = 0; i < len; i++) {
        out[i] = (uint8_t)(st->base + st->ctr++);
    }
}

static bool hs_err_ok(int rc)
{
    switch (rc) {
    case GN_EVERSION: case GN_EFRAMESIZE: case GN_EPROTO: case GN_EBADKEY:
    case GN_EDECRYPT: case GN_EBADSIG: case GN_EPEERID:
        return true;
    default:
        return false;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) {
        return 0;
    }
    bool responder = data[0] & 1;
    size_t chunk = (size_t)data[1] + 1;
    data += 2;
    size -= 2;

    gn_identity *id = NULL;
    if (gn_identity_from_int_seed(responder ? 2 : 1, &id) != 0) {
        abort();
    }
    ctr_rng st = {responder ? 0x80 : 0x10, 0};
    gn_rng rng = {ctr_fill, &st};
    gni_ecies_config cfg = {.initiator = !responder, .identity = id, .rng = &rng};
    gni_ecies_hs *hs = NULL;
    if (gni_ecies_hs_new(&cfg, 0, &hs) != 0) {
        abort();
    }
    static uint8_t out[4096];
    size_t pos = 0;
    int rc = 0;
    for (size_t guard = 0; guard <= size && pos < size && !gni_ecies_hs_done(hs); guard++) {
        gn_buf b;
        gn_buf_init(&b, out, sizeof out);
        if (gni_ecies_hs_drain(hs, &b, 1) < 0) {
            abort(); /* drain fails only after a feed failed */
        }
        size_t n = size - pos < chunk ? size - pos : chunk, used = 0;
        rc = gni_ecies_hs_feed(hs, data + pos, n, &used, 1);
        if (used > n) {
            abort();
        }
        pos += used;
        if (rc < 0) {
            if (!hs_err_ok(rc) || gni_ecies_hs_error(hs) != rc) {
                abort();
            }
            break;
        }
        if (used < n && !gni_ecies_hs_done(hs)) {
            abort(); /* stops early only at the end of the handshake */
        }
    }
    if (gni_ecies_hs_done(hs)) {
        gni_ecies_session *s = NULL;
        if (gni_ecies_session_new(hs, &s) != 0) {
            abort();
        }
        static uint8_t plain[70000];
        for (size_t guard = 0; guard <= size && pos < size; guard++) {
            gn_buf o;
            gn_buf_init(&o, plain, sizeof plain);
            size_t used = 0;
            long r = gni_ecies_session_recv(s, data + pos, size - pos, &used, &o);
            if (r < 0) {
                break;
            }
            pos += used;
            if (used == 0) {
                break;
            }
        }
        (void)gni_ecies_session_recv_eof(s);
        gni_ecies_session_free(s);
    } else {
        (void)gni_ecies_hs_expire(hs, GN_TIME_INFINITY - 1);
    }
    gni_ecies_hs_free(hs);
    gn_identity_free(id);
    return 0;
}
