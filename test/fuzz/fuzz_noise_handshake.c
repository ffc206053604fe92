/*
 * Fuzz target: the libp2p Noise XX handshake core (gn_noise_xx).
 *
 * Byte 0 picks the mode, byte 1 the feed chunk size; the rest is the input.
 *  mode 0: raw bytes fed to a responder (message 1 and beyond).
 *  mode 1: raw bytes fed to an initiator after it sent message 1.
 *  mode 2: a well-encrypted message 2 whose payload plaintext is the input
 *          (reaches the NoiseHandshakePayload parser and signature checks).
 *  mode 3: a well-encrypted message 3 whose payload plaintext is the input.
 * Deterministic: fixed identities and a counter RNG.
 */
#include "noise.h"

#include "golemnet/identity.h"

#include <stdlib.h>
#include <string.h>

typedef struct fz_rng {
    uint64_t s;
} fz_rng;

static void fz_fill(void *ud, uint8_t *out, size_t len)
{
    fz_rng *r = ud;
    for (size_t i = 0; i < len; i++) {
        r->s = r->s * 6364136223846793005ULL + 1442695040888963407ULL;
        out[i] = (uint8_t)(r->s >> 56);
    }
}

static gn_noise_xx *fz_new(bool initiator, gn_identity *id, gn_rng *rng)
{
    static const char *const mux[] = {"/yamux/1.0.0", "/mplex/6.7.0"};
    gn_noise_xx_config cfg;
    gn_noise_xx *x = NULL;
    memset(&cfg, 0, sizeof cfg);
    cfg.initiator = initiator;
    cfg.identity = id;
    cfg.rng = rng;
    cfg.muxers = mux;
    cfg.n_muxers = 2;
    if (gn_noise_xx_new(&cfg, 0, &x) < 0)
        return NULL;
    return x;
}

/* Feeds @len bytes in chunks; stops at an error or when the core stops consuming. */
static void fz_feed(gn_noise_xx *x, const uint8_t *in, size_t len, size_t chunk)
{
    size_t off = 0;
    while (off < len) {
        size_t n = len - off < chunk ? len - off : chunk, used = 0;
        int rc = gn_noise_xx_feed(x, in + off, n, &used, 1);
        off += used;
        if (rc < 0 || used < n)
            break;
    }
}

static size_t fz_drain(gn_noise_xx *x, uint8_t *buf, size_t cap)
{
    gn_buf b;
    gn_buf_init(&b, buf, cap);
    int rc = gn_noise_xx_drain(x, &b, 1);
    return rc < 0 ? 0 : gn_buf_len(&b);
}

/* Frames a message written by the raw HandshakeState @hs with @payload. */
static size_t fz_write(gn_noise_hs *hs, const uint8_t *payload, size_t plen, uint8_t *out,
                       size_t cap)
{
    int n = gn_noise_hs_write(hs, gn_slice_of(payload, plen), out + 2, cap - 2);
    if (n < 0)
        return 0;
    out[0] = (uint8_t)(n >> 8);
    out[1] = (uint8_t)n;
    return (size_t)n + 2;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    unsigned mode = data[0] % 4;
    size_t chunk = (size_t)data[1] + 1;
    data += 2;
    size -= 2;
    if (size > GN_NOISE_MAX_FRAME)
        size = GN_NOISE_MAX_FRAME;

    static uint8_t buf[GN_NOISE_MAX_FRAME], tmp[GN_NOISE_MAX_FRAME];
    gn_identity *id = NULL;
    if (gn_identity_from_int_seed(mode % 2 ? 1 : 2, &id) < 0)
        return 0;
    fz_rng rs = {mode + 1};
    gn_rng rng = {fz_fill, &rs};
    fz_rng ps = {77};
    gn_rng prng = {fz_fill, &ps};
    uint8_t s[32];
    memset(s, 0x5a, sizeof s);
    gn_noise_hs_params p;
    memset(&p, 0, sizeof p);
    p.protocol_name = GN_NOISE_LIBP2P_PROTOCOL;
    p.s = s;
    p.rng = &prng;
    gn_noise_hs *peer = NULL;
    gn_noise_xx *x = NULL;

    switch (mode) {
    case 0: /* raw bytes to a responder */
        x = fz_new(false, id, &rng);
        if (x) {
            fz_feed(x, data, size, chunk);
            (void)fz_drain(x, buf, sizeof buf);
        }
        break;
    case 1: /* raw bytes to an initiator */
        x = fz_new(true, id, &rng);
        if (x) {
            (void)fz_drain(x, buf, sizeof buf);
            fz_feed(x, data, size, chunk);
            (void)fz_drain(x, buf, sizeof buf);
        }
        break;
    case 2: { /* message 2 with a fuzzed payload */
        x = fz_new(true, id, &rng);
        p.initiator = false;
        if (!x || gn_noise_hs_new(&p, &peer) < 0)
            break;
        size_t n = fz_drain(x, buf, sizeof buf);
        if (n < 2 || gn_noise_hs_read(peer, gn_slice_of(buf + 2, n - 2), tmp, sizeof tmp) < 0)
            break;
        n = fz_write(peer, data, size > 60000 ? 60000 : size, buf, sizeof buf);
        fz_feed(x, buf, n, chunk);
        (void)fz_drain(x, buf, sizeof buf);
        break;
    }
    default: { /* message 3 with a fuzzed payload */
        x = fz_new(false, id, &rng);
        p.initiator = true;
        if (!x || gn_noise_hs_new(&p, &peer) < 0)
            break;
        size_t n = fz_write(peer, NULL, 0, buf, sizeof buf);
        fz_feed(x, buf, n, chunk);
        n = fz_drain(x, buf, sizeof buf);
        if (n < 2 || gn_noise_hs_read(peer, gn_slice_of(buf + 2, n - 2), tmp, sizeof tmp) < 0)
            break;
        n = fz_write(peer, data, size > 60000 ? 60000 : size, buf, sizeof buf);
        fz_feed(x, buf, n, chunk);
        break;
    }
    }
    if (x && gn_noise_xx_done(x)) {
        gn_noise_transport t;
        gn_noise_xx_result res;
        gn_noise_transport_init(&t);
        if (gn_noise_xx_finish(x, &res, &t) == 0 && !memchr(res.early_muxer, '\0', 128))
            abort(); /* the muxer string must be terminated */
        gn_noise_transport_fini(&t);
    }
    gn_noise_hs_free(peer);
    gn_noise_xx_free(x);
    gn_identity_free(id);
    return 0;
}
