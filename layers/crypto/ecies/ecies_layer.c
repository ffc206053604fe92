/*
 * /golem/ecies/1.0.0 as a crypto-layer component: the ECIES handshake core
 * (gni_ecies_hs) and its transport session (gni_ecies_session, one frame at
 * a time) adapted to the generic secure-channel driver (include/golemnet/secure_driver.h).
 *
 * Spec: docs/protocols/ecies.md part A. The CLOSE frame (section 10) is the
 * driver's authenticated end of stream: shutdown sends it, receiving it ends
 * the stream, and EOF from below without it is reported as an error.
 * Version 1 defines no extension record, so no early muxer is negotiated
 * (the result's early_muxer stays "").
 *
 * Thread context: loop thread only (the driver's).
 */
#include "golemnet/registry.h"
#include "ecies.h"
#include "gni.h"
#include "golemnet/secure_driver.h"

#include <sodium.h>
#include <string.h>

/* ---- handshake ---------------------------------------------------------- */

static int el_feed(void *hs, const uint8_t *in, size_t len, size_t *consumed, gn_time now)
{
    return gni_ecies_hs_feed(hs, in, len, consumed, now);
}

static int el_drain(void *hs, gn_buf *out, gn_time now)
{
    if (gni_ecies_hs_pending(hs) > 0 && gn_buf_left(out) == 0) {
        return GN_ENOSPC;
    }
    return gni_ecies_hs_drain(hs, out, now);
}

static int el_status(void *hs)
{
    int err = gni_ecies_hs_error(hs);
    if (err < 0) {
        return err;
    }
    /* done once the keys exist and the last message (msg3) went out */
    return gni_ecies_hs_done(hs) && gni_ecies_hs_pending(hs) == 0 ? 1 : 0;
}

/* ---- transport cipher (section 10) ----------------------------------------- */

static int el_seal(void *c, const uint8_t *in, size_t len, uint8_t *out)
{
    return (int)gni_ecies_session_seal_one(c, in, len, out);
}

static int el_open(void *c, const uint8_t *in, size_t len, size_t *consumed,
                   const uint8_t **plain, size_t *plain_len)
{
    return gni_ecies_session_open_one(c, in, len, consumed, plain, plain_len);
}

static bool el_partial(void *c)
{
    return gni_ecies_session_partial(c);
}

static void el_cipher_free(void *c)
{
    gni_ecies_session_free(c);
}

static int el_seal_close(void *c, uint8_t *out)
{
    gn_buf b;
    gn_buf_init(&b, out, GNI_ECIES_FRAME_OVERHEAD);
    int rc = gni_ecies_session_send_close(c, &b);
    return rc < 0 ? rc : (int)gn_buf_len(&b);
}

static bool el_closed(void *c)
{
    return gni_ecies_session_rx_closed(c);
}

static const gn_secure_cipher_vtbl el_cipher = {
    .max_plain = GNI_ECIES_MAX_PAYLOAD,     /* 65510 */
    .overhead = GNI_ECIES_FRAME_OVERHEAD,   /* 27 */
    .seal = el_seal,
    .open = el_open,
    .partial = el_partial,
    .free = el_cipher_free,
    .seal_close = el_seal_close,
    .closed = el_closed,
};

static int el_finish(void *hs, gn_secure_result *res, const gn_secure_cipher_vtbl **cipher,
                     void **cipher_obj)
{
    gni_ecies_result *r = gn_malloc(sizeof *r);
    if (!r) {
        return GN_ENOMEM;
    }
    int rc = gni_ecies_hs_result(hs, r);
    gni_ecies_session *s = NULL;
    if (rc == 0) {
        rc = gni_ecies_session_new(hs, &s);
    }
    if (rc == 0) {
        res->remote_peer = r->remote_peer;
        memcpy(res->remote_pubkey, r->remote_pubkey, sizeof res->remote_pubkey);
        res->early_muxer[0] = '\0';
        *cipher = &el_cipher;
        *cipher_obj = s;
    }
    sodium_memzero(r, sizeof *r);
    gn_free(r);
    return rc;
}

static void el_free(void *hs)
{
    gni_ecies_hs_free(hs);
}

static int el_mismatched_peer(void *hs, gn_peer_id *peer, uint8_t pubkey[GN_ED25519_PUBLICKEYBYTES])
{
    return gni_ecies_hs_mismatched_peer(hs, peer, pubkey);
}

static const gn_secure_hs_vtbl el_hs = {
    .feed = el_feed,
    .drain = el_drain,
    .status = el_status,
    .finish = el_finish,
    .free = el_free,
    .mismatched_peer = el_mismatched_peer,
};

/* ---- component ------------------------------------------------------------ */

static int el_secure(gn_crypto *c, gn_stream *below, const gn_secure_params *p, gn_secure_cb cb,
                     void *arg, gn_op **op)
{
    gni_ecies_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.initiator = p->initiator;
    cfg.identity = c->identity;
    cfg.rng = gn_rng_system();
    cfg.expected_peer = p->expected_peer;
    cfg.ext = gn_slice_of(NULL, 0); /* version 1 defines no record */
    cfg.timeout = c->config.handshake_timeout;
    cfg.max_msg = c->config.max_handshake_msg; /* above the spec maximum: the maximum */
    gni_ecies_hs *hs;
    int rc = gni_ecies_hs_new(&cfg, gn_loop_now(c->loop), &hs);
    if (rc < 0) {
        return rc;
    }
    rc = gn_secure_run_ex(c, below, &el_hs, hs, p->span, cb, arg, op);
    if (rc < 0) {
        gni_ecies_hs_free(hs);
    }
    return rc;
}

static const gn_crypto_ops ecies_ops = {
    .abi = GN_CRYPTO_ABI,
    .name = GNI_ECIES_PROTOCOL_ID,
    .caps = GN_CRYPTO_CAP_INTEGRITY | GN_CRYPTO_CAP_CONFIDENTIALITY | GN_CRYPTO_CAP_AUTH_CLOSE,
    .secure = el_secure,
};

int gn_crypto_ecies_register(gn_registry *reg);
int gn_crypto_ecies_register(gn_registry *reg)
{
    return gn_registry_add(reg, GN_LAYER_CRYPTO, (const gn_layer_ops *)&ecies_ops);
}
