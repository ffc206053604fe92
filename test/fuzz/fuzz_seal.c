/*
 * Fuzz target: gn_seal_open() and gn_verify() (docs/protocols/ecies.md
 * sections 15-16) on arbitrary bytes, plus a seal/open round trip of the
 * input.
 *
 * Input: the whole input is tried as a sealed message to identity int seed 1
 * (the recipient of the known-answer vectors in test/unit/core/seal_test.c,
 * so those vectors are the seed corpus), then as signature (65 bytes) ||
 * message under context "golem/test". Invariants (abort()): only the
 * documented errors; an accepted message has exactly size - 50 bytes;
 * seal(input) always opens to the input and fails with a flipped byte.
 */
#include "golemnet/err.h"
#include "golemnet/identity.h"
#include "golemnet/seal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void ctr_fill(void *ud, uint8_t *out, size_t len)
{
    (void)ud;
    for (size_t i = 0; i < len; i++) {
        out[i] = (uint8_t)(0x10 + i);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static gn_identity *id;
    if (!id && gn_identity_from_int_seed(1, &id) != 0) {
        abort();
    }
    uint8_t pub[32];
    gn_identity_public_key(id, pub);
    uint8_t *buf = malloc(size + GN_SEAL_OVERHEAD + 1), *plain = malloc(size + 1);
    if (!buf || !plain) {
        abort();
    }
    size_t n = 0;
    int rc = gn_seal_open(id, data, size, NULL, 0, plain, size, &n);
    if (rc == 0 && n != size - GN_SEAL_OVERHEAD) {
        abort();
    }
    if (rc < 0 && rc != GN_EPARSE && rc != GN_EVERSION && rc != GN_EDECRYPT) {
        abort();
    }
    if (size >= GN_SIGN_BYTES) {
        rc = gn_verify(pub, "golem/test", data + GN_SIGN_BYTES, size - GN_SIGN_BYTES, data);
        if (rc != 0 && rc != GN_EBADSIG && rc != GN_EVERSION) {
            abort();
        }
    }
    const gn_rng rng = {ctr_fill, NULL};
    size_t sl = 0;
    if (gn_seal(pub, data, size, NULL, 0, &rng, buf, size + GN_SEAL_OVERHEAD, &sl) != 0 ||
        sl != size + GN_SEAL_OVERHEAD) {
        abort();
    }
    if (gn_seal_open(id, buf, sl, NULL, 0, plain, size, &n) != 0 || n != size ||
        memcmp(plain, data, size) != 0) {
        abort();
    }
    buf[size % sl] ^= 0x20;
    if (gn_seal_open(id, buf, sl, NULL, 0, plain, size, &n) == 0) {
        abort();
    }
    free(buf);
    free(plain);
    return 0;
}
