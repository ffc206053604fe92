/*
 * Fuzz target: the /golem/ecies/1.0.0 transport decoder (docs/protocols/
 * ecies.md sections 10-11) with fixed keys (the K_i2r / K_r2i known-answer
 * keys of test/unit/crypto/ecies_test.c; this side receives with K_i2r).
 *
 * Input: byte 0 = input chunk size - 1, byte 1 = output room - 1, byte 2 =
 * rekey frame threshold (0: the spec value), then the received stream.
 * Invariants (abort()): only the documented errors; errors are sticky;
 * plaintext never exceeds the room given; the one-frame API agrees with the
 * streaming API on the same input.
 */
#include "ecies.h"

#include "golemnet/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t k_i2r[32] = {
    0x16, 0x42, 0xfa, 0xba, 0xf5, 0x49, 0x40, 0x0b, 0x0a, 0xa2, 0xe6, 0x2d, 0x0c, 0x83, 0x2c, 0xc6,
    0x39, 0x1c, 0x1a, 0x50, 0x2c, 0x8f, 0xc1, 0x3f, 0x77, 0x78, 0xf7, 0x1e, 0x59, 0xd5, 0x54, 0xb5};
static const uint8_t k_r2i[32] = {
    0x72, 0x9e, 0x05, 0x05, 0x40, 0xba, 0xc9, 0x0a, 0xb3, 0x79, 0x92, 0x16, 0x22, 0x6a, 0xba, 0xd4,
    0x0a, 0x6d, 0x6e, 0xc7, 0xc4, 0x64, 0x5e, 0x3f, 0xd4, 0x5c, 0xd2, 0x2d, 0x0b, 0x7f, 0xff, 0x62};

static bool tr_err_ok(long rc)
{
    return rc == GN_EFRAMESIZE || rc == GN_EREPLAY || rc == GN_EDECRYPT || rc == GN_EPROTO;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3) {
        return 0;
    }
    size_t chunk = (size_t)data[0] + 1, room = (size_t)data[1] * 64 + 1;
    uint64_t rekey = data[2];
    data += 3;
    size -= 3;
    gni_ecies_session *s = NULL, *s1 = NULL;
    if (gni_ecies_session_from_keys(k_r2i, k_i2r, &s) != 0 ||
        gni_ecies_session_from_keys(k_r2i, k_i2r, &s1) != 0) {
        abort();
    }
    gni_ecies_session_set_rekey_limits(s, rekey, 0);
    gni_ecies_session_set_rekey_limits(s1, rekey, 0);
    /* Plaintext never exceeds the input, so both accumulators fit. */
    uint8_t *acc = malloc(size + 1), *acc1 = malloc(size + 1);
    if (!acc || !acc1) {
        abort();
    }
    static uint8_t plain[16384];
    size_t pos = 0, total = 0;
    long rc = 0;
    for (size_t guard = 0; guard < 4 * size + 16; guard++) {
        gn_buf o;
        gn_buf_init(&o, plain, room < sizeof plain ? room : sizeof plain);
        size_t n = size - pos < chunk ? size - pos : chunk, used = 0;
        rc = gni_ecies_session_recv(s, data + pos, n, &used, &o);
        if (rc < 0) {
            if (!tr_err_ok(rc) || gni_ecies_session_recv(s, NULL, 0, &used, &o) != rc) {
                abort();
            }
            break;
        }
        if ((size_t)rc != gn_buf_len(&o) || used > n || total + (size_t)rc > size) {
            abort();
        }
        memcpy(acc + total, plain, (size_t)rc);
        total += (size_t)rc;
        pos += used;
        if (pos == size && rc == 0) {
            break;
        }
    }
    /* The one-frame API over the whole input gives the same verdict and bytes. */
    size_t pos1 = 0, total1 = 0;
    int rc1 = 0;
    for (size_t guard = 0; guard <= size && pos1 < size; guard++) {
        const uint8_t *pl;
        size_t pn, used;
        rc1 = gni_ecies_session_open_one(s1, data + pos1, size - pos1, &used, &pl, &pn);
        if (rc1 < 0) {
            break;
        }
        pos1 += used;
        if (pl) {
            if (total1 + pn > size) {
                abort();
            }
            memcpy(acc1 + total1, pl, pn);
            total1 += pn;
        }
    }
    if ((rc < 0) != (rc1 < 0) || (rc < 0 && rc != rc1)) {
        abort();
    }
    if (rc >= 0 && (total != total1 || memcmp(acc, acc1, total) != 0)) {
        abort();
    }
    free(acc);
    free(acc1);
    (void)gni_ecies_session_recv_eof(s);
    gni_ecies_session_free(s);
    gni_ecies_session_free(s1);
    return 0;
}
