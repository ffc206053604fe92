/*
 * Fuzz target: the Noise transport framing (gn_noise_transport).
 *
 * Byte 0: mode; byte 1: chunk size for feeding; byte 2: output window;
 * byte 3: position of a byte to flip (0: none). The rest is the input.
 *  even mode: the input is raw wire bytes for the decoder (both decoders).
 *  odd mode:  the input is plaintext, sealed with the matching key; the wire
 *             is decoded with splits and must round-trip exactly (or fail
 *             with GN_EDECRYPT / GN_EBADFRAME when a byte was flipped).
 */
#include "noise.h"

#include <stdlib.h>
#include <string.h>

static void fz_pair(gn_noise_transport *a, gn_noise_transport *b)
{
    uint8_t k[32];
    memset(k, 0x33, sizeof k);
    gn_noise_transport_init(a);
    gn_noise_transport_init(b);
    if (gn_noise_cipher_set_key(&a->tx, k) < 0 || gn_noise_cipher_set_key(&b->rx, k) < 0)
        abort();
}

/* Decodes @len wire bytes into @out; returns the plaintext length or an error. */
static long fz_open(gn_noise_transport *t, const uint8_t *in, size_t len, size_t chunk,
                    size_t window, uint8_t *out, size_t cap)
{
    size_t off = 0, got = 0;
    for (size_t guard = 0; guard < 4 * len + 16; guard++) {
        size_t n = len - off < chunk ? len - off : chunk, used = 0;
        size_t w = cap - got < window ? cap - got : window;
        gn_buf o;
        gn_buf_init(&o, out + got, w);
        int rc = gn_noise_transport_open(t, in + off, n, &used, &o);
        if (rc < 0)
            return rc;
        off += used;
        got += gn_buf_len(&o);
        if (off == len && !gn_noise_transport_rx_pending(t))
            break;
        if (used == 0 && gn_buf_len(&o) == 0) {
            if (window >= GN_NOISE_MAX_PLAINTEXT)
                break; /* a partial frame at the end of the input */
            window = GN_NOISE_MAX_PLAINTEXT; /* a frame waits for room */
        }
    }
    return (long)got;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    unsigned mode = data[0];
    size_t chunk = (size_t)data[1] * 64 + 1;
    size_t window = (size_t)data[2] * 512 + 1;
    size_t flip = data[3];
    data += 4;
    size -= 4;
    if (size > 200000)
        size = 200000;
    gn_noise_transport a, b;
    fz_pair(&a, &b);
    size_t wcap = gn_noise_transport_sealed_len(size) + 64;
    uint8_t *wire = malloc(wcap), *out = malloc(size + 65536);
    if (!wire || !out)
        abort();

    if (mode % 2 == 0) {
        (void)fz_open(&b, data, size, chunk, window, out, size + 65536);
        /* the one-frame API on a fresh decoder */
        gn_noise_transport c, d;
        fz_pair(&c, &d);
        size_t off = 0;
        for (size_t guard = 0; off < size && guard < size + 1; guard++) {
            const uint8_t *plain;
            size_t plen, used;
            size_t n = size - off < chunk ? size - off : chunk;
            if (gn_noise_transport_open_frame(&d, data + off, n, &used, &plain, &plen) < 0)
                break;
            if (plain && plen > GN_NOISE_MAX_PLAINTEXT)
                abort();
            off += used;
        }
        gn_noise_transport_fini(&c);
        gn_noise_transport_fini(&d);
    } else {
        gn_buf w;
        gn_buf_init(&w, wire, wcap);
        size_t used;
        int n = gn_noise_transport_seal(&a, gn_slice_of(data, size), &w, &used);
        if (size && (n < 0 || used != size || (size_t)n != gn_noise_transport_sealed_len(size)))
            abort();
        size_t wl = gn_buf_len(&w);
        if (flip && flip - 1 < wl)
            wire[flip - 1] ^= 0x80;
        long got = fz_open(&b, wire, wl, chunk, window, out, size + 65536);
        if (!flip || flip - 1 >= wl) {
            if (got != (long)size || (size && memcmp(out, data, size) != 0))
                abort(); /* an untouched stream must round-trip */
        } else if (got >= 0 && flip - 1 >= 2) {
            /* a flipped ciphertext byte cannot authenticate */
            if (got == (long)size)
                abort();
        }
    }
    free(wire);
    free(out);
    gn_noise_transport_fini(&a);
    gn_noise_transport_fini(&b);
    return 0;
}
