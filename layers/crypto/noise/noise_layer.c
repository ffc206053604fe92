/*
 * /noise as a crypto-layer component: the libp2p XX handshake core
 * (gn_noise_xx) and the transport framing (gn_noise_transport) adapted to
 * the generic secure-channel driver (include/golemnet/secure_driver.h).
 *
 * Spec: libp2p/specs noise/README.md; early muxer negotiation:
 * connections/inlined-muxer-negotiation.md. Noise has no authenticated end
 * of stream, so the cipher leaves seal_close/closed unset: EOF from below
 * at a frame boundary is a clean end, inside a frame an error.
 *
 * Thread context: loop thread only (the driver's).
 */
#include "golemnet/registry.h"
#include "gni.h"
#include "golemnet/secure_driver.h"
#include "noise.h"

#include <sodium.h>
#include <string.h>

/* ---- handshake ---------------------------------------------------------- */

static int nl_feed(void *hs, const uint8_t *in, size_t len, size_t *consumed, gn_time now)
{
    return gn_noise_xx_feed(hs, in, len, consumed, now);
}

static int nl_drain(void *hs, gn_buf *out, gn_time now)
{
    return gn_noise_xx_drain(hs, out, now);
}

static int nl_status(void *hs)
{
    int err = gn_noise_xx_error(hs);
    if (err < 0) {
        return err;
    }
    return gn_noise_xx_done(hs) ? 1 : 0;
}

/* ---- transport cipher (libp2p noise "Wire Format") ------------------------ */

static int nl_seal(void *c, const uint8_t *in, size_t len, uint8_t *out)
{
    return gn_noise_transport_seal_frame(c, in, len, out);
}

static int nl_open(void *c, const uint8_t *in, size_t len, size_t *consumed,
                   const uint8_t **plain, size_t *plain_len)
{
    return gn_noise_transport_open_frame(c, in, len, consumed, plain, plain_len);
}

static bool nl_partial(void *c)
{
    return gn_noise_transport_rx_pending(c);
}

static void nl_cipher_free(void *c)
{
    if (c) {
        gn_noise_transport_fini(c);
        gn_free(c);
    }
}

static const gn_secure_cipher_vtbl nl_cipher = {
    .max_plain = GN_NOISE_MAX_PLAINTEXT,                   /* 65519 */
    .overhead = GN_NOISE_FRAME_HDR + GN_NOISE_TAGBYTES,    /* 18 */
    .seal = nl_seal,
    .open = nl_open,
    .partial = nl_partial,
    .free = nl_cipher_free,
    .seal_close = NULL, /* Noise has no authenticated close */
    .closed = NULL,
};

static int nl_finish(void *hs, gn_secure_result *res, const gn_secure_cipher_vtbl **cipher,
                     void **cipher_obj)
{
    gn_noise_transport *t = gn_malloc(sizeof *t);
    if (!t) {
        return GN_ENOMEM;
    }
    gn_noise_transport_init(t);
    gn_noise_xx_result r;
    int rc = gn_noise_xx_finish(hs, &r, t);
    if (rc < 0) {
        nl_cipher_free(t);
        return rc;
    }
    res->remote_peer = r.remote_peer;
    memcpy(res->remote_pubkey, r.remote_pubkey, sizeof res->remote_pubkey);
    memcpy(res->early_muxer, r.early_muxer, sizeof res->early_muxer);
    sodium_memzero(&r, sizeof r);
    *cipher = &nl_cipher;
    *cipher_obj = t;
    return 0;
}

static void nl_free(void *hs)
{
    gn_noise_xx_free(hs);
}

static int nl_mismatched_peer(void *hs, gn_peer_id *peer, uint8_t pubkey[GN_ED25519_PUBLICKEYBYTES])
{
    return gn_noise_xx_mismatched_peer(hs, peer, pubkey);
}

static const gn_secure_hs_vtbl nl_hs = {
    .feed = nl_feed,
    .drain = nl_drain,
    .status = nl_status,
    .finish = nl_finish,
    .free = nl_free,
    .mismatched_peer = nl_mismatched_peer,
};

/* ---- component ------------------------------------------------------------ */

static int nl_secure(gn_crypto *c, gn_stream *below, const gn_secure_params *p, gn_secure_cb cb,
                     void *arg, gn_op **op)
{
    gn_noise_xx_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.initiator = p->initiator;
    cfg.identity = c->identity;
    cfg.expected_peer = p->expected_peer;
    cfg.muxers = p->early_muxers;
    /* offer the most preferred ones when the list is longer than the core takes */
    cfg.n_muxers = p->early_muxers ? GNI_MIN(p->n_early_muxers, (size_t)GN_NOISE_MAX_MUXERS) : 0;
    cfg.rng = gn_rng_system();
    cfg.timeout = c->config.handshake_timeout;
    /* a Noise message is at most 65535 bytes whatever the config allows */
    cfg.max_msg = GNI_MIN(c->config.max_handshake_msg, (size_t)GN_NOISE_MAX_MSG_LEN);
    gn_noise_xx *x;
    int rc = gn_noise_xx_new(&cfg, gn_loop_now(c->loop), &x);
    if (rc < 0) {
        return rc;
    }
    rc = gn_secure_run_ex(c, below, &nl_hs, x, p->span, cb, arg, op);
    if (rc < 0) {
        gn_noise_xx_free(x);
    }
    return rc;
}

static const gn_crypto_ops noise_ops = {
    .abi = GN_CRYPTO_ABI,
    .name = "/noise",
    .caps = GN_CRYPTO_CAP_INTEGRITY | GN_CRYPTO_CAP_CONFIDENTIALITY | GN_CRYPTO_CAP_EARLY_MUXER,
    .secure = nl_secure,
};

int gn_crypto_noise_register(gn_registry *reg);
int gn_crypto_noise_register(gn_registry *reg)
{
    return gn_registry_add(reg, GN_LAYER_CRYPTO, (const gn_layer_ops *)&noise_ops);
}
