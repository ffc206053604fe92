/*
 * ecies.c - sans-I/O core of /golem/ecies/1.0.0: handshake and transport
 * framing. Spec: docs/protocols/ecies.md part A (section numbers below).
 */
#include "ecies.h"

#include "gni.h"

#include <sodium.h>
#include <string.h>

/* ---- small helpers ----------------------------------------------------------------- */

static uint16_t ecies_get16(const uint8_t *p)
{
    return (uint16_t)(((unsigned)p[0] << 8) | p[1]);
}

static void ecies_put16(uint8_t *p, size_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static uint64_t ecies_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

static void ecies_put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

/* nonce(c) = 00 00 00 00 || u64(c) (section 1). */
static void ecies_nonce(uint8_t n[crypto_aead_chacha20poly1305_ietf_NPUBBYTES], uint64_t c)
{
    memset(n, 0, 4);
    ecies_put64(n + 4, c);
}

/* ---- HKDF-SHA256 (RFC 5869, section 1): the shared gni_hkdf_sha256_* of core/hkdf.c */

/* HKDF-Expand(prk, label || extra, 32); @extra may be NULL. */
static void ecies_expand_label(uint8_t out[32], const uint8_t prk[32], const char *label,
                               const uint8_t *extra, size_t extra_len)
{
    uint8_t info[64 + GNI_ECIES_HASHBYTES];
    size_t ll = strlen(label);
    assert(ll <= 64 && extra_len <= GNI_ECIES_HASHBYTES);
    memcpy(info, label, ll);
    if (extra_len) {
        memcpy(info + ll, extra, extra_len);
    }
    int rc = gni_hkdf_sha256_expand(out, 32, prk, 32, info, ll + extra_len);
    assert(rc == 0);
    (void)rc;
}

/* ---- extension blocks (section 6) --------------------------------------------------- */

static bool ecies_ext_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (n - i < 3) {
            return false;
        }
        size_t l = ecies_get16(p + i + 1);
        if (n - i - 3 < l) {
            return false;
        }
        i += 3 + l;
    }
    return true;
}

/* ---- handshake (sections 3-9) ------------------------------------------------------- */

enum ecies_hs_state { HS_I_WAIT_M2, HS_R_WAIT_M1, HS_R_WAIT_M3, HS_DONE, HS_FAILED };

static const char ecies_prologue[] = "\x12" GNI_ECIES_PROTOCOL_ID;
static const char ecies_ctx_resp[] = "golem-ecies/1 responder signature";
static const char ecies_ctx_init[] = "golem-ecies/1 initiator signature";

/* Identity payload plaintext: ID || u16 n || ext || sig. */
#define ECIES_P_FIXED (GN_ED25519_PUBLICKEYBYTES + 2 + GN_ED25519_SIGBYTES) /* 98 */
#define ECIES_P_MAX (ECIES_P_FIXED + GNI_ECIES_MAX_EXT)
#define ECIES_BUF_MAX (2 + GNI_ECIES_MSG2_MAX)

/* Everything secret, in one gni_secmem_alloc() block (pooled secure memory). */
typedef struct ecies_hs_secret {
    uint8_t e_sk[32];  /* own ephemeral secret, wiped after the DH */
    uint8_t dh[32];
    uint8_t prk[32];
    uint8_t k3[32];    /* kept by the responder until msg3 */
    uint8_t k[32];     /* scratch (k2) */
    uint8_t tx[32];
    uint8_t rx[32];
} ecies_hs_secret;

struct gni_ecies_hs {
    bool initiator;
    bool keys_ready;
    bool has_expected;
    int state;
    int err;
    const gn_identity *id;
    const gn_rng *rng;
    gn_peer_id expected;
    gn_time deadline;
    size_t max_msg;
    uint8_t ext[GNI_ECIES_MAX_EXT];
    size_t ext_len;
    uint8_t e_pub[32];
    uint8_t h3[GNI_ECIES_HASHBYTES];
    crypto_hash_sha256_state th;
    ecies_hs_secret *sec;
    gni_ecies_result res;
    uint8_t in[ECIES_BUF_MAX];
    size_t in_len;
    uint8_t out[ECIES_BUF_MAX];
    size_t out_len;
    size_t out_pos;
    uint8_t pt[ECIES_P_MAX];
};

static void ecies_hs_wipe(gni_ecies_hs *hs)
{
    sodium_memzero(hs->sec, sizeof *hs->sec);
    sodium_memzero(&hs->th, sizeof hs->th);
    sodium_memzero(hs->pt, sizeof hs->pt);
}

static int ecies_hs_fail(gni_ecies_hs *hs, int err)
{
    if (hs->state != HS_FAILED) {
        hs->state = HS_FAILED;
        hs->err = err;
        hs->keys_ready = false;
        hs->out_len = hs->out_pos = 0;
        ecies_hs_wipe(hs);
    }
    return hs->err;
}

static void ecies_th_snapshot(const gni_ecies_hs *hs, uint8_t h[GNI_ECIES_HASHBYTES])
{
    crypto_hash_sha256_state copy = hs->th;
    crypto_hash_sha256_final(&copy, h);
}

static void ecies_th_add(gni_ecies_hs *hs, const void *p, size_t n)
{
    crypto_hash_sha256_update(&hs->th, (const uint8_t *)p, n);
}

/* Fresh ephemeral key pair from the injected RNG. */
static void ecies_gen_ephemeral(gni_ecies_hs *hs)
{
    gn_rng_fill(hs->rng, hs->sec->e_sk, sizeof hs->sec->e_sk);
    crypto_scalarmult_curve25519_base(hs->e_pub, hs->sec->e_sk);
}

/* dh = X25519(e, peer); derives prk, k2 (sec->k) and k3 from salt h2 (section 7). */
static int ecies_derive_hs_keys(gni_ecies_hs *hs, const uint8_t peer_e[32],
                                const uint8_t h2[GNI_ECIES_HASHBYTES])
{
    ecies_hs_secret *s = hs->sec;
    int rc = crypto_scalarmult_curve25519(s->dh, s->e_sk, peer_e);
    sodium_memzero(s->e_sk, sizeof s->e_sk);
    if (rc != 0) {
        return GN_EBADKEY;
    }
    gni_hkdf_sha256_extract(s->prk, h2, GNI_ECIES_HASHBYTES, s->dh, sizeof s->dh);
    sodium_memzero(s->dh, sizeof s->dh);
    ecies_expand_label(s->k, s->prk, "golem-ecies/1 hs r2i", NULL, 0);
    ecies_expand_label(s->k3, s->prk, "golem-ecies/1 hs i2r", NULL, 0);
    return 0;
}

/* Builds P = ID || u16 n || ext || sig into hs->pt; absorbs it into the transcript.
 * Returns the plaintext length. */
static size_t ecies_build_payload(gni_ecies_hs *hs, const char *ctx)
{
    uint8_t *p = hs->pt;
    gn_identity_public_key(hs->id, p);
    ecies_put16(p + 32, hs->ext_len);
    if (hs->ext_len) {
        memcpy(p + 34, hs->ext, hs->ext_len);
    }
    size_t body = 34 + hs->ext_len;
    ecies_th_add(hs, p, body);
    uint8_t tbs[64 + GNI_ECIES_HASHBYTES];
    size_t cl = strlen(ctx);
    memcpy(tbs, ctx, cl);
    ecies_th_snapshot(hs, tbs + cl);
    gn_identity_sign(hs->id, tbs, cl + GNI_ECIES_HASHBYTES, p + body);
    ecies_th_add(hs, p + body, GN_ED25519_SIGBYTES);
    return body + GN_ED25519_SIGBYTES;
}

/* Parses and checks a decrypted P in hs->pt (@n bytes) signed under @ctx;
 * absorbs it into the transcript and fills the result (section 9). */
static int ecies_check_payload(gni_ecies_hs *hs, size_t n, const char *ctx)
{
    const uint8_t *p = hs->pt;
    size_t ext_len = ecies_get16(p + 32);
    if (ext_len != n - ECIES_P_FIXED || !ecies_ext_valid(p + 34, ext_len)) {
        return GN_EPROTO;
    }
    size_t body = 34 + ext_len;
    ecies_th_add(hs, p, body);
    uint8_t tbs[64 + GNI_ECIES_HASHBYTES];
    size_t cl = strlen(ctx);
    memcpy(tbs, ctx, cl);
    ecies_th_snapshot(hs, tbs + cl);
    if (gn_ed25519_verify(p, tbs, cl + GNI_ECIES_HASHBYTES, p + body) != 0) {
        return GN_EBADSIG;
    }
    uint8_t pb[64];
    gn_peer_id pid;
    int len = gn_pubkey_encode_ed25519(p, pb, sizeof pb);
    if (len < 0) {
        return GN_EINTERNAL;
    }
    int rc = gn_peer_id_from_pubkey(pb, (size_t)len, &pid);
    if (rc < 0) {
        return GN_EINTERNAL;
    }
    /* kept on a mismatch too: gni_ecies_hs_mismatched_peer() reports it */
    hs->res.remote_peer = pid;
    memcpy(hs->res.remote_pubkey, p, GN_ED25519_PUBLICKEYBYTES);
    if (hs->has_expected && !gn_peer_id_equal(&pid, &hs->expected)) {
        return GN_EPEERID;
    }
    ecies_th_add(hs, p + body, GN_ED25519_SIGBYTES);
    memcpy(hs->res.remote_ext, p + 34, ext_len);
    hs->res.remote_ext_len = ext_len;
    return 0;
}

/* Final transport keys from hf (section 7). */
static void ecies_finish(gni_ecies_hs *hs)
{
    ecies_hs_secret *s = hs->sec;
    uint8_t hf[GNI_ECIES_HASHBYTES];
    crypto_hash_sha256_final(&hs->th, hf);
    ecies_expand_label(hs->initiator ? s->tx : s->rx, s->prk, "golem-ecies/1 data i2r", hf,
                       sizeof hf);
    ecies_expand_label(hs->initiator ? s->rx : s->tx, s->prk, "golem-ecies/1 data r2i", hf,
                       sizeof hf);
    memcpy(hs->res.handshake_hash, hf, sizeof hf);
    sodium_memzero(s->prk, sizeof s->prk);
    sodium_memzero(s->k, sizeof s->k);
    sodium_memzero(s->k3, sizeof s->k3);
    sodium_memzero(hs->pt, sizeof hs->pt);
    hs->keys_ready = true;
    hs->state = HS_DONE;
    hs->deadline = GN_TIME_INFINITY;
}

/* Responder: msg1 in hs->in, queue msg2. */
static int ecies_on_msg1(gni_ecies_hs *hs)
{
    const uint8_t *body = hs->in + 2;
    ecies_th_add(hs, body, GNI_ECIES_MSG1_LEN);
    ecies_gen_ephemeral(hs);
    uint8_t *o = hs->out;
    o[2] = GNI_ECIES_VERSION;
    o[3] = GNI_ECIES_SUITE_X25519_ED25519_CHACHAPOLY;
    memcpy(o + 4, hs->e_pub, 32);
    ecies_th_add(hs, o + 2, 34);
    uint8_t h2[GNI_ECIES_HASHBYTES];
    ecies_th_snapshot(hs, h2);
    int rc = ecies_derive_hs_keys(hs, body + 2, h2);
    if (rc < 0) {
        return rc;
    }
    size_t n = ecies_build_payload(hs, ecies_ctx_resp);
    ecies_th_snapshot(hs, hs->h3);
    uint8_t nonce[12];
    ecies_nonce(nonce, 0);
    unsigned long long clen = 0;
    crypto_aead_chacha20poly1305_ietf_encrypt(o + 36, &clen, hs->pt, n, h2, sizeof h2, NULL,
                                              nonce, hs->sec->k);
    sodium_memzero(hs->sec->k, sizeof hs->sec->k);
    sodium_memzero(hs->pt, sizeof hs->pt);
    ecies_put16(o, 34 + (size_t)clen);
    hs->out_len = 2 + 34 + (size_t)clen;
    hs->out_pos = 0;
    hs->state = HS_R_WAIT_M3;
    return 0;
}

/* Initiator: msg2 in hs->in, queue msg3, finish. */
static int ecies_on_msg2(gni_ecies_hs *hs)
{
    size_t blen = ecies_get16(hs->in);
    const uint8_t *body = hs->in + 2;
    ecies_th_add(hs, body, 34);
    uint8_t h2[GNI_ECIES_HASHBYTES];
    ecies_th_snapshot(hs, h2);
    int rc = ecies_derive_hs_keys(hs, body + 2, h2);
    if (rc < 0) {
        return rc;
    }
    uint8_t nonce[12];
    ecies_nonce(nonce, 0);
    unsigned long long plen = 0;
    if (crypto_aead_chacha20poly1305_ietf_decrypt(hs->pt, &plen, NULL, body + 34, blen - 34, h2,
                                                  sizeof h2, nonce, hs->sec->k) != 0) {
        return GN_EDECRYPT;
    }
    sodium_memzero(hs->sec->k, sizeof hs->sec->k);
    rc = ecies_check_payload(hs, (size_t)plen, ecies_ctx_resp);
    if (rc < 0) {
        return rc;
    }
    uint8_t h3[GNI_ECIES_HASHBYTES];
    ecies_th_snapshot(hs, h3);
    size_t n = ecies_build_payload(hs, ecies_ctx_init);
    unsigned long long clen = 0;
    crypto_aead_chacha20poly1305_ietf_encrypt(hs->out + 2, &clen, hs->pt, n, h3, sizeof h3,
                                              NULL, nonce, hs->sec->k3);
    ecies_put16(hs->out, (size_t)clen);
    hs->out_len = 2 + (size_t)clen;
    hs->out_pos = 0;
    ecies_finish(hs);
    return 0;
}

/* Responder: msg3 in hs->in, finish. */
static int ecies_on_msg3(gni_ecies_hs *hs)
{
    size_t blen = ecies_get16(hs->in);
    uint8_t nonce[12];
    ecies_nonce(nonce, 0);
    unsigned long long plen = 0;
    if (crypto_aead_chacha20poly1305_ietf_decrypt(hs->pt, &plen, NULL, hs->in + 2, blen, hs->h3,
                                                  sizeof hs->h3, nonce, hs->sec->k3) != 0) {
        return GN_EDECRYPT;
    }
    int rc = ecies_check_payload(hs, (size_t)plen, ecies_ctx_init);
    if (rc < 0) {
        return rc;
    }
    ecies_finish(hs);
    return 0;
}

int gni_ecies_hs_new(const gni_ecies_config *cfg, gn_time now, gni_ecies_hs **out)
{
    if (!cfg || !out || !cfg->identity || !cfg->rng || !cfg->rng->fill ||
        cfg->ext.len > GNI_ECIES_MAX_EXT || (cfg->ext.len && !cfg->ext.base) ||
        !ecies_ext_valid(cfg->ext.base, cfg->ext.len)) {
        return GN_EINVAL;
    }
    if (gn_identity_key_type(cfg->identity) != GN_KEY_ED25519) {
        return GN_EBADKEY; /* ECIES keys are Ed25519's (docs/protocols/ecies.md) */
    }
    if (sodium_init() < 0) {
        return GN_ECRYPTO;
    }
    gni_ecies_hs *hs = gn_calloc(1, sizeof *hs);
    if (!hs) {
        return GN_ENOMEM;
    }
    hs->sec = gni_secmem_alloc(sizeof *hs->sec); /* zeroed */
    if (!hs->sec) {
        gn_free(hs);
        return GN_ENOMEM;
    }
    hs->initiator = cfg->initiator;
    hs->id = cfg->identity;
    hs->rng = cfg->rng;
    if (cfg->expected_peer) {
        hs->has_expected = true;
        hs->expected = *cfg->expected_peer;
    }
    if (cfg->ext.len) {
        memcpy(hs->ext, cfg->ext.base, cfg->ext.len);
    }
    hs->ext_len = cfg->ext.len;
    gn_time timeout = cfg->timeout ? cfg->timeout : GNI_ECIES_DEFAULT_TIMEOUT;
    hs->deadline = now > GN_TIME_INFINITY - timeout ? GN_TIME_INFINITY - 1 : now + timeout;
    hs->max_msg = cfg->max_msg;
    crypto_hash_sha256_init(&hs->th);
    ecies_th_add(hs, ecies_prologue, sizeof ecies_prologue - 1);
    if (hs->initiator) {
        ecies_gen_ephemeral(hs);
        uint8_t *o = hs->out;
        ecies_put16(o, GNI_ECIES_MSG1_LEN);
        o[2] = GNI_ECIES_VERSION;
        o[3] = GNI_ECIES_SUITE_X25519_ED25519_CHACHAPOLY;
        memcpy(o + 4, hs->e_pub, 32);
        ecies_th_add(hs, o + 2, GNI_ECIES_MSG1_LEN);
        hs->out_len = 2 + GNI_ECIES_MSG1_LEN;
        hs->state = HS_I_WAIT_M2;
    } else {
        hs->state = HS_R_WAIT_M1;
    }
    *out = hs;
    return 0;
}

void gni_ecies_hs_free(gni_ecies_hs *hs)
{
    if (!hs) {
        return;
    }
    gni_secmem_free(hs->sec); /* wipes */
    sodium_memzero(hs, sizeof *hs);
    gn_free(hs);
}

/* Bounds of the message expected in @state (section 4). */
static void ecies_expect(const gni_ecies_hs *hs, size_t *min, size_t *max, bool *versioned)
{
    switch (hs->state) {
    case HS_R_WAIT_M1:
        *min = *max = GNI_ECIES_MSG1_LEN;
        *versioned = true;
        break;
    case HS_I_WAIT_M2:
        *min = GNI_ECIES_MSG2_MIN;
        *max = GNI_ECIES_MSG2_MAX;
        *versioned = true;
        break;
    default:
        *min = GNI_ECIES_MSG3_MIN;
        *max = GNI_ECIES_MSG3_MAX;
        *versioned = false;
        break;
    }
    if (hs->max_msg && hs->max_msg < *max) {
        *max = hs->max_msg;
    }
}

/* Copies up to @want total buffered bytes from the input; returns false when short. */
static bool ecies_fill(gni_ecies_hs *hs, size_t want, const uint8_t *in, size_t len,
                       size_t *pos)
{
    if (hs->in_len < want) {
        size_t n = GNI_MIN(want - hs->in_len, len - *pos);
        memcpy(hs->in + hs->in_len, in + *pos, n);
        hs->in_len += n;
        *pos += n;
    }
    return hs->in_len >= want;
}

int gni_ecies_hs_feed(gni_ecies_hs *hs, const uint8_t *in, size_t len, size_t *consumed,
                      gn_time now)
{
    if (!hs || !consumed || (!in && len)) {
        return GN_EINVAL;
    }
    *consumed = 0;
    if (hs->state == HS_FAILED) {
        return hs->err;
    }
    if (hs->state == HS_DONE) {
        return 0;
    }
    if (now >= hs->deadline) {
        return ecies_hs_fail(hs, GN_ETIMEDOUT);
    }
    size_t pos = 0;
    int rc = 0;
    while (pos < len && hs->state != HS_DONE) {
        size_t min, max;
        bool versioned;
        ecies_expect(hs, &min, &max, &versioned);
        if (!ecies_fill(hs, 2, in, len, &pos)) {
            break;
        }
        size_t blen = ecies_get16(hs->in);
        if (versioned && blen >= 2) {
            if (!ecies_fill(hs, 4, in, len, &pos)) {
                break;
            }
            if (hs->in[2] != GNI_ECIES_VERSION ||
                hs->in[3] != GNI_ECIES_SUITE_X25519_ED25519_CHACHAPOLY) {
                rc = GN_EVERSION;
                break;
            }
        }
        if (blen > max) {
            rc = GN_EFRAMESIZE;
            break;
        }
        if (blen < min) {
            rc = GN_EPROTO;
            break;
        }
        if (!ecies_fill(hs, 2 + blen, in, len, &pos)) {
            break;
        }
        switch (hs->state) {
        case HS_R_WAIT_M1:
            rc = ecies_on_msg1(hs);
            break;
        case HS_I_WAIT_M2:
            rc = ecies_on_msg2(hs);
            break;
        default:
            rc = ecies_on_msg3(hs);
            break;
        }
        hs->in_len = 0;
        if (rc < 0) {
            break;
        }
    }
    *consumed = pos;
    if (rc < 0) {
        return ecies_hs_fail(hs, rc);
    }
    return 0;
}

int gni_ecies_hs_drain(gni_ecies_hs *hs, gn_buf *out, gn_time now)
{
    (void)now;
    if (!hs || !out) {
        return GN_EINVAL;
    }
    if (hs->state == HS_FAILED) {
        return hs->err;
    }
    size_t n = GNI_MIN(hs->out_len - hs->out_pos, gn_buf_left(out));
    memcpy(out->last, hs->out + hs->out_pos, n);
    out->last += n;
    hs->out_pos += n;
    if (hs->out_pos == hs->out_len) {
        hs->out_pos = hs->out_len = 0;
    }
    return (int)n;
}

size_t gni_ecies_hs_pending(const gni_ecies_hs *hs)
{
    return hs->out_len - hs->out_pos;
}

gn_time gni_ecies_hs_deadline(const gni_ecies_hs *hs)
{
    return (hs->state == HS_DONE || hs->state == HS_FAILED) ? GN_TIME_INFINITY : hs->deadline;
}

int gni_ecies_hs_expire(gni_ecies_hs *hs, gn_time now)
{
    if (hs->state == HS_FAILED) {
        return hs->err;
    }
    if (hs->state != HS_DONE && now >= hs->deadline) {
        return ecies_hs_fail(hs, GN_ETIMEDOUT);
    }
    return 0;
}

bool gni_ecies_hs_done(const gni_ecies_hs *hs)
{
    return hs->state == HS_DONE;
}

int gni_ecies_hs_error(const gni_ecies_hs *hs)
{
    return hs->state == HS_FAILED ? hs->err : 0;
}

int gni_ecies_hs_mismatched_peer(const gni_ecies_hs *hs, gn_peer_id *peer,
                                 uint8_t pubkey[GN_ED25519_PUBLICKEYBYTES])
{
    if (!hs || !peer || !pubkey) {
        return GN_EINVAL;
    }
    if (hs->state != HS_FAILED || hs->err != GN_EPEERID) {
        return GN_ESTATE;
    }
    *peer = hs->res.remote_peer;
    memcpy(pubkey, hs->res.remote_pubkey, GN_ED25519_PUBLICKEYBYTES);
    return 0;
}

int gni_ecies_hs_result(const gni_ecies_hs *hs, gni_ecies_result *res)
{
    if (!hs || !res) {
        return GN_EINVAL;
    }
    if (hs->state == HS_FAILED) {
        return hs->err;
    }
    if (hs->state != HS_DONE) {
        return GN_ESTATE;
    }
    *res = hs->res;
    return 0;
}

int gni_ecies_hs_keys(const gni_ecies_hs *hs, uint8_t tx[GNI_ECIES_KEYBYTES],
                      uint8_t rx[GNI_ECIES_KEYBYTES])
{
    if (hs->state == HS_FAILED) {
        return hs->err;
    }
    if (hs->state != HS_DONE || !hs->keys_ready) {
        return GN_ESTATE;
    }
    memcpy(tx, hs->sec->tx, GNI_ECIES_KEYBYTES);
    memcpy(rx, hs->sec->rx, GNI_ECIES_KEYBYTES);
    return 0;
}

/* ---- transport (sections 10-11) ----------------------------------------------------- */

typedef struct ecies_dir {
    uint64_t seq;    /* next frame counter */
    uint64_t frames; /* frames under the current key */
    uint64_t bytes;  /* payload bytes under the current key */
    uint64_t epoch;
    bool closed;
} ecies_dir;

struct gni_ecies_session {
    uint8_t *keys; /* gni_secmem_alloc: tx[32] || rx[32] */
    ecies_dir tx;
    ecies_dir rx;
    uint64_t rekey_frames;
    uint64_t rekey_bytes;
    size_t max_payload;
    int err;
    uint8_t *frame; /* 2 + 65535 bytes: the frame being received */
    size_t frame_len;
    size_t pt_off; /* undelivered plaintext in frame[pt_off, pt_off + pt_len) */
    size_t pt_len;
};

int gni_ecies_session_from_keys(const uint8_t tx[GNI_ECIES_KEYBYTES],
                                const uint8_t rx[GNI_ECIES_KEYBYTES], gni_ecies_session **out)
{
    if (!tx || !rx || !out) {
        return GN_EINVAL;
    }
    if (sodium_init() < 0) {
        return GN_ECRYPTO;
    }
    gni_ecies_session *s = gn_calloc(1, sizeof *s);
    if (!s) {
        return GN_ENOMEM;
    }
    s->frame = gn_malloc(2 + 65535);
    s->keys = gni_secmem_alloc(2 * GNI_ECIES_KEYBYTES);
    if (!s->frame || !s->keys) {
        gn_free(s->frame);
        gni_secmem_free(s->keys); /* NULL is a no-op */
        gn_free(s);
        return GN_ENOMEM;
    }
    memcpy(s->keys, tx, GNI_ECIES_KEYBYTES);
    memcpy(s->keys + GNI_ECIES_KEYBYTES, rx, GNI_ECIES_KEYBYTES);
    s->rekey_frames = GNI_ECIES_REKEY_FRAMES;
    s->rekey_bytes = GNI_ECIES_REKEY_BYTES;
    s->max_payload = GNI_ECIES_MAX_PAYLOAD;
    *out = s;
    return 0;
}

int gni_ecies_session_new(gni_ecies_hs *hs, gni_ecies_session **out)
{
    if (!hs || !out) {
        return GN_EINVAL;
    }
    if (hs->state == HS_FAILED) {
        return hs->err;
    }
    if (hs->state != HS_DONE || !hs->keys_ready) {
        return GN_ESTATE;
    }
    int rc = gni_ecies_session_from_keys(hs->sec->tx, hs->sec->rx, out);
    if (rc == 0) {
        sodium_memzero(hs->sec->tx, sizeof hs->sec->tx);
        sodium_memzero(hs->sec->rx, sizeof hs->sec->rx);
        hs->keys_ready = false;
    }
    return rc;
}

void gni_ecies_session_free(gni_ecies_session *s)
{
    if (!s) {
        return;
    }
    gni_secmem_free(s->keys); /* wipes */
    if (s->frame) {
        sodium_memzero(s->frame, 2 + 65535);
    }
    gn_free(s->frame);
    gn_free(s);
}

int gni_ecies_session_set_max_payload(gni_ecies_session *s, size_t max_payload)
{
    if (!s || max_payload == 0 || max_payload > GNI_ECIES_MAX_PAYLOAD) {
        return GN_EINVAL;
    }
    s->max_payload = max_payload;
    return 0;
}

void gni_ecies_session_set_rekey_limits(gni_ecies_session *s, uint64_t frames, uint64_t bytes)
{
    s->rekey_frames = frames ? frames : GNI_ECIES_REKEY_FRAMES;
    s->rekey_bytes = bytes ? bytes : GNI_ECIES_REKEY_BYTES;
}

void gni_ecies_session_epochs(const gni_ecies_session *s, uint64_t *tx_epoch, uint64_t *rx_epoch)
{
    if (tx_epoch) {
        *tx_epoch = s->tx.epoch;
    }
    if (rx_epoch) {
        *rx_epoch = s->rx.epoch;
    }
}

/* Counts a frame under @key and rekeys when a threshold is reached (section 11). */
static void ecies_account(gni_ecies_session *s, ecies_dir *d, uint8_t *key, size_t payload)
{
    d->seq++;
    d->frames++;
    d->bytes += payload;
    if (d->frames >= s->rekey_frames || d->bytes >= s->rekey_bytes) {
        uint8_t next[GNI_ECIES_KEYBYTES];
        ecies_expand_label(next, key, "golem-ecies/1 rekey", NULL, 0);
        memcpy(key, next, sizeof next);
        sodium_memzero(next, sizeof next);
        d->frames = 0;
        d->bytes = 0;
        d->epoch++;
    }
}

/* Writes one frame of @type with @n payload bytes at out->last (room checked). */
static void ecies_write_frame(gni_ecies_session *s, uint8_t type, const uint8_t *data, size_t n,
                              gn_buf *out)
{
    uint8_t *f = out->last;
    uint8_t nonce[12];
    ecies_put16(f, 8 + 1 + n + GNI_ECIES_TAGBYTES);
    ecies_put64(f + 2, s->tx.seq);
    f[GNI_ECIES_FRAME_HDR] = type;
    if (n) {
        memmove(f + GNI_ECIES_FRAME_HDR + 1, data, n);
    }
    ecies_nonce(nonce, s->tx.seq);
    unsigned long long clen = 0;
    crypto_aead_chacha20poly1305_ietf_encrypt(f + GNI_ECIES_FRAME_HDR, &clen,
                                              f + GNI_ECIES_FRAME_HDR, 1 + n, f,
                                              GNI_ECIES_FRAME_HDR, NULL, nonce, s->keys);
    out->last += GNI_ECIES_FRAME_HDR + (size_t)clen;
    ecies_account(s, &s->tx, s->keys, n);
}

long gni_ecies_session_send(gni_ecies_session *s, const uint8_t *data, size_t len, gn_buf *out)
{
    if (!s || !out || (!data && len)) {
        return GN_EINVAL;
    }
    if (s->err) {
        return s->err;
    }
    if (s->tx.closed) {
        return GN_ESTATE;
    }
    size_t taken = 0;
    while (taken < len) {
        if (s->tx.seq == UINT64_MAX) {
            if (taken == 0) {
                return GN_ENONCE;
            }
            break;
        }
        size_t room = gn_buf_left(out);
        if (room < GNI_ECIES_FRAME_OVERHEAD + 1) {
            break;
        }
        size_t n = GNI_MIN(len - taken, s->max_payload);
        n = GNI_MIN(n, room - GNI_ECIES_FRAME_OVERHEAD);
        ecies_write_frame(s, GNI_ECIES_FRAME_DATA, data + taken, n, out);
        taken += n;
    }
    if (len && !taken) {
        return GN_ENOSPC;
    }
    return (long)taken;
}

int gni_ecies_session_send_close(gni_ecies_session *s, gn_buf *out)
{
    if (!s || !out) {
        return GN_EINVAL;
    }
    if (s->err) {
        return s->err;
    }
    if (s->tx.closed) {
        return GN_ESTATE;
    }
    if (s->tx.seq == UINT64_MAX) {
        return GN_ENONCE;
    }
    if (gn_buf_left(out) < GNI_ECIES_FRAME_OVERHEAD) {
        return GN_ENOSPC;
    }
    ecies_write_frame(s, GNI_ECIES_FRAME_CLOSE, NULL, 0, out);
    s->tx.closed = true;
    return 0;
}

static size_t ecies_flush(gni_ecies_session *s, gn_buf *out)
{
    size_t n = GNI_MIN(s->pt_len, gn_buf_left(out));
    if (n) {
        memcpy(out->last, s->frame + s->pt_off, n);
        out->last += n;
        s->pt_off += n;
        s->pt_len -= n;
    }
    return n;
}

static int ecies_session_fail(gni_ecies_session *s, int err)
{
    if (!s->err) {
        s->err = err;
        sodium_memzero(s->keys, 2 * GNI_ECIES_KEYBYTES);
        s->pt_len = 0;
    }
    return s->err;
}

/* A whole frame is in s->frame: check, decrypt in place, account (section 10). */
static int ecies_open_frame(gni_ecies_session *s)
{
    uint8_t *f = s->frame;
    size_t flen = ecies_get16(f);
    uint8_t nonce[12];
    uint8_t *rxkey = s->keys + GNI_ECIES_KEYBYTES;
    ecies_nonce(nonce, s->rx.seq);
    unsigned long long mlen = 0;
    if (crypto_aead_chacha20poly1305_ietf_decrypt(f + GNI_ECIES_FRAME_HDR, &mlen, NULL,
                                                  f + GNI_ECIES_FRAME_HDR, flen - 8, f,
                                                  GNI_ECIES_FRAME_HDR, nonce, rxkey) != 0) {
        return GN_EDECRYPT;
    }
    uint8_t type = f[GNI_ECIES_FRAME_HDR];
    size_t plen = (size_t)mlen - 1;
    if (type == GNI_ECIES_FRAME_CLOSE) {
        if (plen != 0) {
            return GN_EPROTO;
        }
        s->rx.closed = true;
    } else if (type != GNI_ECIES_FRAME_DATA) {
        return GN_EPROTO;
    }
    ecies_account(s, &s->rx, rxkey, plen);
    s->pt_off = GNI_ECIES_FRAME_HDR + 1;
    s->pt_len = plen;
    return 0;
}

/* Consumes input towards one frame. Returns 1 when a frame was completed and
 * opened (its plaintext is pending), 0 when more input is needed, or an error. */
static int ecies_rx_step(gni_ecies_session *s, const uint8_t *in, size_t len, size_t *pos)
{
    while (*pos < len) {
        if (s->rx.closed) {
            return GN_EPROTO; /* nothing may follow a CLOSE frame */
        }
        size_t want;
        if (s->frame_len < 2) {
            want = 2;
        } else if (s->frame_len < GNI_ECIES_FRAME_HDR) {
            want = GNI_ECIES_FRAME_HDR; /* header first, to check seq early */
        } else {
            want = 2 + (size_t)ecies_get16(s->frame);
        }
        size_t n = GNI_MIN(want - s->frame_len, len - *pos);
        memcpy(s->frame + s->frame_len, in + *pos, n);
        s->frame_len += n;
        *pos += n;
        if (s->frame_len < want) {
            return 0;
        }
        if (s->frame_len == 2) {
            if (ecies_get16(s->frame) < GNI_ECIES_FRAME_MIN_LEN) {
                return GN_EFRAMESIZE;
            }
            continue;
        }
        if (s->frame_len == GNI_ECIES_FRAME_HDR) {
            if (s->rx.seq == UINT64_MAX) {
                return GN_ENONCE;
            }
            if (ecies_get64(s->frame + 2) != s->rx.seq) {
                return GN_EREPLAY;
            }
            continue; /* a frame is always longer than its header */
        }
        int rc = ecies_open_frame(s);
        s->frame_len = 0;
        return rc < 0 ? rc : 1;
    }
    return 0;
}

long gni_ecies_session_recv(gni_ecies_session *s, const uint8_t *in, size_t len,
                            size_t *consumed, gn_buf *out)
{
    if (!s || !consumed || !out || (!in && len)) {
        return GN_EINVAL;
    }
    *consumed = 0;
    if (s->err) {
        return s->err;
    }
    size_t produced = ecies_flush(s, out);
    size_t pos = 0;
    int rc = 0;
    while (s->pt_len == 0 && pos < len) {
        rc = ecies_rx_step(s, in, len, &pos);
        if (rc < 0) {
            break;
        }
        produced += ecies_flush(s, out);
    }
    *consumed = pos;
    if (rc < 0) {
        return ecies_session_fail(s, rc);
    }
    return (long)produced;
}

long gni_ecies_session_seal_one(gni_ecies_session *s, const uint8_t *in, size_t len,
                                uint8_t *out)
{
    if (!s || !out || (!in && len) || len > s->max_payload) {
        return GN_EINVAL;
    }
    if (s->err) {
        return s->err;
    }
    if (s->tx.closed) {
        return GN_ESTATE;
    }
    if (s->tx.seq == UINT64_MAX) {
        return GN_ENONCE;
    }
    gn_buf b;
    gn_buf_init(&b, out, len + GNI_ECIES_FRAME_OVERHEAD);
    ecies_write_frame(s, GNI_ECIES_FRAME_DATA, in, len, &b);
    return (long)gn_buf_len(&b);
}

int gni_ecies_session_open_one(gni_ecies_session *s, const uint8_t *in, size_t len,
                               size_t *consumed, const uint8_t **plain, size_t *plain_len)
{
    if (!s || !consumed || !plain || !plain_len || (!in && len)) {
        return GN_EINVAL;
    }
    *consumed = 0;
    *plain = NULL;
    *plain_len = 0;
    if (s->err) {
        return s->err;
    }
    s->pt_len = 0; /* the previous frame's plaintext was borrowed until now */
    size_t pos = 0;
    int rc = ecies_rx_step(s, in, len, &pos);
    *consumed = pos;
    if (rc < 0) {
        return ecies_session_fail(s, rc);
    }
    if (rc == 1) {
        *plain = s->frame + s->pt_off;
        *plain_len = s->pt_len;
        s->pt_len = 0;
    }
    return 0;
}

bool gni_ecies_session_partial(const gni_ecies_session *s)
{
    return s->frame_len > 0;
}

bool gni_ecies_session_rx_closed(const gni_ecies_session *s)
{
    return s->rx.closed && s->pt_len == 0;
}

int gni_ecies_session_recv_eof(gni_ecies_session *s)
{
    if (s->err) {
        return s->err;
    }
    if (s->frame_len > 0) {
        return ecies_session_fail(s, GN_EBADFRAME);
    }
    if (!s->rx.closed) {
        return ecies_session_fail(s, GN_EEOF);
    }
    return 0;
}
