/*
 * /tls/1.0.0 as a crypto-layer component: the sans-I/O core (tls.c) driven
 * by the generic secure-channel driver (include/golemnet/secure_driver.h),
 * then the same TLS object as the transport cipher (one TLS record per
 * frame). Early muxer negotiation rides in ALPN: the node's muxer ids go in
 * gn_secure_params.early_muxers, the agreed one comes back in
 * gn_secure_result.early_muxer, as with Noise.
 *
 * This glue reads the wall clock (time()) for certificate validity; the
 * core takes it as an argument.
 *
 * Spec: libp2p/specs tls/tls.md; docs/tls.md. Thread context: loop thread.
 */
#include "golemnet/registry.h"
#include "gni.h"
#include "golemnet/log.h"
#include "golemnet/secure_driver.h"
#include "tls.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/*
 * Per component instance (node): the shared SSL_CTX with the instance's
 * certificate and P-256 key, built at init and rebuilt by the first
 * handshake a day later (docs/tls.md "Certificates"): connections made
 * before keep the old one through their reference.
 */
#define TL_CERT_REFRESH_S (24 * 3600)

struct tl_state {
    void *ssl_ctx;
    int64_t made; /* wall-clock seconds the certificate was built at */
};

static int tl_init(gn_crypto *c)
{
    struct tl_state *st = c->state;
    st->made = (int64_t)time(NULL);
    return gni_p2ptls_ctx_new(c->identity, st->made, &st->ssl_ctx);
}

/* A new certificate once a day (or when the clock went back by more than the 1 h backdating). */
static void tl_refresh(gn_crypto *c, int64_t now)
{
    struct tl_state *st = c->state;
    if (now - st->made < TL_CERT_REFRESH_S && now - st->made > -GNI_P2PTLS_CERT_BACKDATE_S) {
        return;
    }
    void *fresh = NULL;
    int rc = gni_p2ptls_ctx_new(c->identity, now, &fresh);
    if (rc < 0) {
        GN_LOG(GN_LOG_WARNING, "tls", "certificate refresh failed (%s); keeping the old one",
               gn_err_name(rc));
        return;
    }
    gni_p2ptls_ctx_free(st->ssl_ctx);
    st->ssl_ctx = fresh;
    st->made = now;
}

static void tl_fini(gn_crypto *c)
{
    struct tl_state *st = c->state;
    gni_p2ptls_ctx_free(st->ssl_ctx); /* live connections keep their reference */
    st->ssl_ctx = NULL;
}

typedef struct tl_hs {
    gni_p2ptls *t; /* moved to the cipher by finish */
    bool logged;
} tl_hs;

static int tl_feed(void *hs, const uint8_t *in, size_t len, size_t *consumed, gn_time now)
{
    (void)now;
    tl_hs *h = hs;
    return gni_p2ptls_feed(h->t, in, len, consumed);
}

static int tl_drain(void *hs, gn_buf *out, gn_time now)
{
    (void)now;
    tl_hs *h = hs;
    return gni_p2ptls_drain(h->t, out);
}

static int tl_status(void *hs)
{
    tl_hs *h = hs;
    int st = gni_p2ptls_status(h->t);
    if (st < 0 && !h->logged) {
        h->logged = true;
        GN_LOG(GN_LOG_INFO, "tls", "handshake failed: %s: %s", gn_err_name(st),
               gni_p2ptls_diag(h->t));
    }
    return st;
}

static int tl_seal(void *c, const uint8_t *in, size_t len, uint8_t *out)
{
    return gni_p2ptls_seal(c, in, len, out);
}

static int tl_open(void *c, const uint8_t *in, size_t len, size_t *consumed,
                   const uint8_t **plain, size_t *plain_len)
{
    int rc = gni_p2ptls_open(c, in, len, consumed, plain, plain_len);
    if (rc < 0) {
        GN_LOG(GN_LOG_INFO, "tls", "channel failed: %s: %s", gn_err_name(rc),
               gni_p2ptls_diag(c));
    }
    return rc;
}

static bool tl_partial(void *c)
{
    return gni_p2ptls_partial(c);
}

static void tl_cipher_free(void *c)
{
    gni_p2ptls_free(c);
}

static int tl_seal_close(void *c, uint8_t *out)
{
    return gni_p2ptls_seal_close(c, out);
}

static const gn_secure_cipher_vtbl tl_cipher = {
    .max_plain = GNI_P2PTLS_MAX_PLAIN,
    .overhead = GNI_P2PTLS_OVERHEAD,
    .seal = tl_seal,
    .open = tl_open,
    .partial = tl_partial,
    .free = tl_cipher_free,
    /* close_notify is sent on shutdown, but its absence is not treated as a
     * truncation (no GN_CRYPTO_CAP_AUTH_CLOSE): peers (js-libp2p) may end the
     * TCP stream without it. docs/tls.md "Limits". */
    .seal_close = tl_seal_close,
    .closed = NULL,
};

static int tl_finish(void *hs, gn_secure_result *res, const gn_secure_cipher_vtbl **cipher,
                     void **cipher_obj)
{
    tl_hs *h = hs;
    gni_p2ptls_peer peer;
    int rc = gni_p2ptls_remote(h->t, &peer);
    if (rc < 0) {
        return GN_EHANDSHAKE;
    }
    res->remote_peer = peer.peer;
    memcpy(res->remote_pubkey, peer.ed25519, sizeof res->remote_pubkey);
    snprintf(res->early_muxer, sizeof res->early_muxer, "%s", gni_p2ptls_early_muxer(h->t));
    *cipher = &tl_cipher;
    *cipher_obj = h->t;
    h->t = NULL;
    return 0;
}

static void tl_free(void *hs)
{
    tl_hs *h = hs;
    gni_p2ptls_free(h->t);
    gn_free(h);
}

static int tl_mismatched_peer(void *hs, gn_peer_id *peer, uint8_t pubkey[GN_ED25519_PUBLICKEYBYTES])
{
    tl_hs *h = hs;
    gni_p2ptls_peer p;
    if (gni_p2ptls_status(h->t) != GN_EPEERID || gni_p2ptls_remote(h->t, &p) < 0) {
        return GN_ESTATE;
    }
    *peer = p.peer;
    memcpy(pubkey, p.ed25519, GN_ED25519_PUBLICKEYBYTES);
    return 0;
}

static const gn_secure_hs_vtbl tl_hs_vtbl = {
    .feed = tl_feed,
    .drain = tl_drain,
    .status = tl_status,
    .finish = tl_finish,
    .free = tl_free,
    .mismatched_peer = tl_mismatched_peer,
};

static int tl_secure(gn_crypto *c, gn_stream *below, const gn_secure_params *p, gn_secure_cb cb,
                     void *arg, gn_op **op)
{
    gni_p2ptls_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.initiator = p->initiator;
    cfg.identity = c->identity;
    cfg.expected_peer = p->expected_peer;
    cfg.muxers = p->early_muxers;
    cfg.n_muxers = p->early_muxers ? p->n_early_muxers : 0;
    cfg.unix_now = (int64_t)time(NULL);
    tl_refresh(c, cfg.unix_now);
    cfg.ssl_ctx = ((struct tl_state *)c->state)->ssl_ctx;
    tl_hs *h = gn_calloc(1, sizeof *h);
    if (!h) {
        return GN_ENOMEM;
    }
    int rc = gni_p2ptls_new(&cfg, &h->t);
    if (rc < 0) {
        gn_free(h);
        return rc;
    }
    rc = gn_secure_run_ex(c, below, &tl_hs_vtbl, h, p->span, cb, arg, op);
    if (rc < 0) {
        tl_free(h);
    }
    return rc;
}

static const gn_crypto_ops tls_ops = {
    .abi = GN_CRYPTO_ABI,
    .name = "/tls/1.0.0",
    .state_size = sizeof(struct tl_state),
    .caps = GN_CRYPTO_CAP_INTEGRITY | GN_CRYPTO_CAP_CONFIDENTIALITY | GN_CRYPTO_CAP_EARLY_MUXER,
    .init = tl_init,
    .fini = tl_fini,
    .secure = tl_secure,
};

int gn_crypto_tls_register(gn_registry *reg);
int gn_crypto_tls_register(gn_registry *reg)
{
    return gn_registry_add(reg, GN_LAYER_CRYPTO, (const gn_layer_ops *)&tls_ops);
}
