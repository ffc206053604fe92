/*
 * plaintext/2.0.0 as a crypto-layer component: the core driven by the
 * generic secure-channel driver, with an identity "cipher" afterwards.
 */
#include "golemnet/registry.h"
#include "gni.h"
#include "golemnet/secure_driver.h"
#include "plaintext.h"

#include <string.h>

static int pt_feed(void *hs, const uint8_t *in, size_t len, size_t *consumed, gn_time now)
{
    (void)now;
    return gni_plaintext_feed(hs, in, len, consumed);
}

static int pt_drain(void *hs, gn_buf *out, gn_time now)
{
    (void)now;
    return gni_plaintext_drain(hs, out);
}

static int pt_status(void *hs)
{
    return gni_plaintext_status(hs);
}

/* Identity transport: bytes pass unchanged. */
static int pt_seal(void *c, const uint8_t *in, size_t len, uint8_t *out)
{
    (void)c;
    memcpy(out, in, len);
    return (int)len;
}

static int pt_open(void *c, const uint8_t *in, size_t len, size_t *consumed,
                   const uint8_t **plain, size_t *plain_len)
{
    (void)c;
    *consumed = len;
    *plain = in;
    *plain_len = len;
    return 0;
}

static void pt_cipher_free(void *c)
{
    (void)c;
}

static const gn_secure_cipher_vtbl pt_cipher = {
    .max_plain = 1u << 20,
    .overhead = 0,
    .seal = pt_seal,
    .open = pt_open,
    .partial = NULL,
    .free = pt_cipher_free,
};

static int pt_finish(void *hs, gn_secure_result *res, const gn_secure_cipher_vtbl **cipher,
                     void **cipher_obj)
{
    gni_plaintext_remote(hs, &res->remote_peer, res->remote_pubkey);
    res->early_muxer[0] = '\0';
    *cipher = &pt_cipher;
    *cipher_obj = NULL;
    return 0;
}

static void pt_free(void *hs)
{
    gni_plaintext_free(hs);
}

static int pt_mismatched_peer(void *hs, gn_peer_id *peer, uint8_t pubkey[GN_ED25519_PUBLICKEYBYTES])
{
    return gni_plaintext_mismatched_peer(hs, peer, pubkey);
}

static const gn_secure_hs_vtbl pt_hs = {
    .feed = pt_feed,
    .drain = pt_drain,
    .status = pt_status,
    .finish = pt_finish,
    .free = pt_free,
    .mismatched_peer = pt_mismatched_peer,
};

static int pt_secure(gn_crypto *c, gn_stream *below, const gn_secure_params *p, gn_secure_cb cb,
                     void *arg, gn_op **op)
{
    gni_plaintext *hs;
    int rc = gni_plaintext_new(c->identity, p->expected_peer, &hs);
    if (rc < 0) {
        return rc;
    }
    rc = gn_secure_run_ex(c, below, &pt_hs, hs, p->span, cb, arg, op);
    if (rc < 0) {
        gni_plaintext_free(hs);
    }
    return rc;
}

static const gn_crypto_ops plaintext_ops = {
    .abi = GN_CRYPTO_ABI,
    .name = "/plaintext/2.0.0",
    .flags = GN_LAYER_F_EXPLICIT_ONLY,
    .caps = 0, /* no integrity, no secrecy: tests and trusted links only */
    .secure = pt_secure,
};

int gn_crypto_plaintext_register(gn_registry *reg);
int gn_crypto_plaintext_register(gn_registry *reg)
{
    return gn_registry_add(reg, GN_LAYER_CRYPTO, (const gn_layer_ops *)&plaintext_ops);
}
