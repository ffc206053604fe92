/*
 * noise.c - sans-I/O Noise core (Noise Protocol Framework rev 34, suite
 * 25519_ChaChaPoly_SHA256), libp2p XX handshake and transport framing.
 * See noise.h for the contract. All primitives are libsodium's.
 */
#include "noise.h"
#include "gni_pb.h"

#include "gni.h"
#include "noise.pb-c.h"

#include <limits.h>
#include <sodium.h>
#include <string.h>

/* ==== primitives (Noise sections 4, 12) ================================================ */

/* ChaChaPoly nonce: 32 bits of zeros, then n as 64-bit little-endian (section 12.3). */
static void noise_nonce(uint8_t nonce[12], uint64_t n)
{
    memset(nonce, 0, 4);
    for (int i = 0; i < 8; i++)
        nonce[4 + i] = (uint8_t)(n >> (8 * i));
}

static void noise_seal(const uint8_t *k, uint64_t n, const uint8_t *ad, size_t ad_len,
                       const uint8_t *in, size_t len, uint8_t *out)
{
    uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
    noise_nonce(nonce, n);
    crypto_aead_chacha20poly1305_ietf_encrypt_detached(out, out + len, NULL, in, len, ad, ad_len,
                                                       NULL, nonce, k);
}

static int noise_open(const uint8_t *k, uint64_t n, const uint8_t *ad, size_t ad_len,
                      const uint8_t *in, size_t len, uint8_t *out)
{
    uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
    noise_nonce(nonce, n);
    if (crypto_aead_chacha20poly1305_ietf_decrypt_detached(out, NULL, in, len - GN_NOISE_TAGBYTES,
                                                           in + len - GN_NOISE_TAGBYTES, ad,
                                                           ad_len, nonce, k) != 0)
        return GN_EDECRYPT;
    return 0;
}

/*
 * Secure memory: pooled slots of sodium_malloc()'d slabs (core/secmem.c),
 * which runs sodium_init() itself and wipes on free. A per-key
 * sodium_malloc() cost several mappings and syscalls per connection.
 */
static void *noise_secure_alloc(size_t len)
{
    return gni_secmem_alloc(len);
}

/* ==== CipherState (section 5.1) ======================================================== */

void gn_noise_cipher_init(gn_noise_cipher *c)
{
    c->k = NULL;
    c->n = 0;
}

int gn_noise_cipher_set_key(gn_noise_cipher *c, const uint8_t key[GN_NOISE_KEYBYTES])
{
    if (!c->k) {
        uint8_t *k = noise_secure_alloc(GN_NOISE_KEYBYTES);
        if (!k)
            return GN_ENOMEM;
        c->k = k;
    }
    memcpy(c->k, key, GN_NOISE_KEYBYTES);
    c->n = 0;
    return 0;
}

void gn_noise_cipher_fini(gn_noise_cipher *c)
{
    if (c->k) {
        gni_secmem_free(c->k); /* wipes */
    }
    c->k = NULL;
    c->n = 0;
}

int gn_noise_cipher_encrypt(gn_noise_cipher *c, const uint8_t *ad, size_t ad_len,
                            const uint8_t *in, size_t len, uint8_t *out)
{
    if (!c->k)
        return GN_ESTATE;
    if (c->n == UINT64_MAX)
        return GN_ENONCE;
    if (len > GN_NOISE_MAX_PLAINTEXT)
        return GN_ETOOBIG;
    noise_seal(c->k, c->n, ad, ad_len, in, len, out);
    c->n++;
    return (int)(len + GN_NOISE_TAGBYTES);
}

int gn_noise_cipher_decrypt(gn_noise_cipher *c, const uint8_t *ad, size_t ad_len,
                            const uint8_t *in, size_t len, uint8_t *out)
{
    if (!c->k)
        return GN_ESTATE;
    if (c->n == UINT64_MAX)
        return GN_ENONCE;
    if (len < GN_NOISE_TAGBYTES)
        return GN_EBADFRAME;
    if (len > GN_NOISE_MAX_MSG_LEN)
        return GN_ETOOBIG;
    int rc = noise_open(c->k, c->n, ad, ad_len, in, len, out);
    if (rc < 0)
        return rc;
    c->n++;
    return (int)(len - GN_NOISE_TAGBYTES);
}

int gn_noise_cipher_rekey(gn_noise_cipher *c)
{
    if (!c->k)
        return GN_ESTATE;
    /* REKEY(k) = first 32 bytes of ENCRYPT(k, 2^64-1, zerolen, zeros) (section 4.2). */
    uint8_t *tmp = noise_secure_alloc(GN_NOISE_KEYBYTES + GN_NOISE_TAGBYTES);
    if (!tmp)
        return GN_ENOMEM;
    memset(tmp, 0, GN_NOISE_KEYBYTES);
    noise_seal(c->k, UINT64_MAX, NULL, 0, tmp, GN_NOISE_KEYBYTES, tmp);
    memcpy(c->k, tmp, GN_NOISE_KEYBYTES);
    gni_secmem_free(tmp); /* wipes */
    return 0;
}

/* ==== handshake patterns (sections 7.4, 7.5, 9.4, 18.1) ================================ */

/*
 * Canonical (Alice-initiated) forms. Messages are separated by '|' and
 * alternate initiator -> responder -> initiator ...
 */
static const struct noise_pattern_def {
    const char *name;
    const char *pre_init;
    const char *pre_resp;
    const char *msgs;
} noise_patterns[] = {
    /* one-way, section 7.4 */
    {"N", "", "s", "e, es"},
    {"K", "s", "s", "e, es, ss"},
    {"X", "", "s", "e, es, s, ss"},
    /* fundamental interactive, section 7.5 */
    {"NN", "", "", "e | e, ee"},
    {"KN", "s", "", "e | e, ee, se"},
    {"NK", "", "s", "e, es | e, ee"},
    {"KK", "s", "s", "e, es, ss | e, ee, se"},
    {"NX", "", "", "e | e, ee, s, es"},
    {"KX", "s", "", "e | e, ee, se, s, es"},
    {"XN", "", "", "e | e, ee | s, se"},
    {"IN", "", "", "e, s | e, ee, se"},
    {"XK", "", "s", "e, es | e, ee | s, se"},
    {"IK", "", "s", "e, es, s, ss | e, ee, se"},
    {"XX", "", "", "e | e, ee, s, es | s, se"},
    {"IX", "", "", "e, s | e, ee, se, s, es"},
    /* deferred, appendix 18.1 */
    {"NK1", "", "s", "e | e, ee, es"},
    {"NX1", "", "", "e | e, ee, s | es"},
    {"X1N", "", "", "e | e, ee | s | se"},
    {"X1K", "", "s", "e, es | e, ee | s | se"},
    {"XK1", "", "s", "e | e, ee, es | s, se"},
    {"X1K1", "", "s", "e | e, ee, es | s | se"},
    {"X1X", "", "", "e | e, ee, s, es | s | se"},
    {"XX1", "", "", "e | e, ee, s | es, s, se"},
    {"X1X1", "", "", "e | e, ee, s | es, s | se"},
    {"K1N", "s", "", "e | e, ee | se"},
    {"K1K", "s", "s", "e, es | e, ee | se"},
    {"KK1", "s", "s", "e | e, ee, se, es"},
    {"K1K1", "s", "s", "e | e, ee, es | se"},
    {"K1X", "s", "", "e | e, ee, s, es | se"},
    {"KX1", "s", "", "e | e, ee, se, s | es"},
    {"K1X1", "s", "", "e | e, ee, s | se, es"},
    {"I1N", "", "", "e, s | e, ee | se"},
    {"I1K", "", "s", "e, es, s | e, ee | se"},
    {"IK1", "", "s", "e, s | e, ee, se, es"},
    {"I1K1", "", "s", "e, s | e, ee, es | se"},
    {"I1X", "", "", "e, s | e, ee, s, es | se"},
    {"IX1", "", "", "e, s | e, ee, se, s | es"},
    {"I1X1", "", "", "e, s | e, ee, s | se, es"},
};

static uint8_t noise_token_of(const char *t, size_t n)
{
    static const struct {
        const char *s;
        uint8_t tok;
    } names[] = {{"e", GN_NOISE_TOK_E},   {"s", GN_NOISE_TOK_S},   {"ee", GN_NOISE_TOK_EE},
                 {"es", GN_NOISE_TOK_ES}, {"se", GN_NOISE_TOK_SE}, {"ss", GN_NOISE_TOK_SS},
                 {"psk", GN_NOISE_TOK_PSK}};
    for (size_t i = 0; i < GNI_ARRAY_LEN(names); i++)
        if (strlen(names[i].s) == n && memcmp(names[i].s, t, n) == 0)
            return names[i].tok;
    return GN_NOISE_TOK_END;
}

/* Parses "e, ee | s" into token lists; returns the message count or -1. */
static int noise_parse_tokens(const char *s, uint8_t (*lists)[GN_NOISE_MAX_TOKENS + 1],
                              size_t max_lists)
{
    size_t li = 0, ti = 0;
    if (max_lists == 0)
        return -1;
    memset(lists[0], 0, GN_NOISE_MAX_TOKENS + 1);
    while (*s) {
        if (*s == ' ' || *s == ',') {
            s++;
            continue;
        }
        if (*s == '|') {
            if (++li >= max_lists)
                return -1;
            memset(lists[li], 0, GN_NOISE_MAX_TOKENS + 1);
            ti = 0;
            s++;
            continue;
        }
        size_t n = 0;
        while (s[n] && s[n] != ' ' && s[n] != ',' && s[n] != '|')
            n++;
        uint8_t tok = noise_token_of(s, n);
        if (tok == GN_NOISE_TOK_END || ti >= GN_NOISE_MAX_TOKENS)
            return -1;
        lists[li][ti++] = tok;
        s += n;
    }
    return (int)li + 1;
}

static void noise_parse_pre(const char *s, uint8_t out[3])
{
    size_t i = 0;
    memset(out, 0, 3);
    for (; *s && i < 2; s++) {
        if (*s == 'e')
            out[i++] = GN_NOISE_TOK_E;
        else if (*s == 's')
            out[i++] = GN_NOISE_TOK_S;
    }
}

/* Applies one "pskN" modifier. */
static int noise_apply_psk(gn_noise_pattern *p, unsigned n)
{
    if (p->n_psks >= GN_NOISE_MAX_PSKS)
        return GN_ENOTSUP;
    if (n == 0) {
        uint8_t *m = p->msgs[0];
        size_t len = 0;
        while (m[len])
            len++;
        if (len >= GN_NOISE_MAX_TOKENS)
            return GN_ENOTSUP;
        memmove(m + 1, m, len + 1);
        m[0] = GN_NOISE_TOK_PSK;
    } else {
        if (n > p->n_msgs)
            return GN_ENOTSUP;
        uint8_t *m = p->msgs[n - 1];
        size_t len = 0;
        while (m[len])
            len++;
        if (len >= GN_NOISE_MAX_TOKENS)
            return GN_ENOTSUP;
        m[len] = GN_NOISE_TOK_PSK;
        m[len + 1] = GN_NOISE_TOK_END;
    }
    p->n_psks++;
    return 0;
}

int gn_noise_pattern_find(const char *name, size_t len, gn_noise_pattern *out)
{
    if (!name)
        return GN_ENOTSUP;
    size_t base = 0;
    while (base < len && !(len - base >= 3 && memcmp(name + base, "psk", 3) == 0))
        base++;
    const struct noise_pattern_def *def = NULL;
    for (size_t i = 0; i < GNI_ARRAY_LEN(noise_patterns); i++) {
        if (strlen(noise_patterns[i].name) == base &&
            memcmp(noise_patterns[i].name, name, base) == 0) {
            def = &noise_patterns[i];
            break;
        }
    }
    if (!def)
        return GN_ENOTSUP;
    gn_noise_pattern p;
    memset(&p, 0, sizeof p);
    noise_parse_pre(def->pre_init, p.pre_init);
    noise_parse_pre(def->pre_resp, p.pre_resp);
    int n = noise_parse_tokens(def->msgs, p.msgs, GN_NOISE_MAX_MESSAGES);
    if (n <= 0)
        return GN_EINTERNAL;
    p.n_msgs = (uint8_t)n;
    p.one_way = n == 1;
    /* modifiers: psk<digit>, joined with '+' (section 8.1) */
    size_t i = base;
    while (i < len) {
        if (i != base) {
            if (name[i] != '+')
                return GN_ENOTSUP;
            i++;
        }
        if (len - i < 4 || memcmp(name + i, "psk", 3) != 0 || name[i + 3] < '0' ||
            name[i + 3] > '9')
            return GN_ENOTSUP;
        unsigned k = (unsigned)(name[i + 3] - '0');
        i += 4;
        if (i < len && name[i] >= '0' && name[i] <= '9')
            return GN_ENOTSUP; /* no pattern has 10 messages */
        int rc = noise_apply_psk(&p, k);
        if (rc < 0)
            return rc;
    }
    *out = p;
    return 0;
}

/* ==== SymmetricState and HandshakeState (sections 5.2, 5.3) ============================ */

/* Everything secret of a handshake, in one secure block (noise_secure_alloc). */
typedef struct noise_secrets {
    uint8_t ck[GN_NOISE_HASHLEN];
    uint8_t k[GN_NOISE_KEYBYTES];
    uint8_t s[GN_NOISE_DHLEN];
    uint8_t e[GN_NOISE_DHLEN];
    uint8_t psk[GN_NOISE_MAX_PSKS][GN_NOISE_PSKBYTES];
    uint8_t dh[GN_NOISE_DHLEN];
    uint8_t hk_key[GN_NOISE_HASHLEN]; /* HKDF's temp_key (the PRK) */
    uint8_t hk_out[3][GN_NOISE_HASHLEN];
} noise_secrets;

struct gn_noise_hs {
    noise_secrets *sec;
    const gn_rng *rng;
    gn_noise_pattern pat;
    uint8_t h[GN_NOISE_HASHLEN];
    uint64_t n; /* nonce of the SymmetricState's CipherState */
    bool initiator, psk_mode;
    bool has_k, has_s, has_e, e_fixed, has_rs, has_re;
    bool taken, s_known;
    uint8_t msg_idx, psk_idx;
    int err;
    uint8_t s_pub[GN_NOISE_DHLEN];
    uint8_t e_pub[GN_NOISE_DHLEN];
    uint8_t rs[GN_NOISE_DHLEN];
    uint8_t re[GN_NOISE_DHLEN];
    gn_noise_cipher c1, c2;
};

static void noise_mix_hash(gn_noise_hs *hs, const uint8_t *data, size_t len)
{
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, hs->h, sizeof hs->h);
    crypto_hash_sha256_update(&st, data, len);
    crypto_hash_sha256_final(&st, hs->h);
}

/* HKDF(ck, ikm, n) of section 4.3 into sec->hk_out[0..n-1]; n is 2 or 3.
 * Noise's HKDF is RFC 5869 with salt = ck and empty info: temp_key =
 * HMAC(ck, ikm) is HKDF-Extract, output_i = HMAC(temp_key, output_{i-1} ||
 * byte(i)) is HKDF-Expand, so both come from core/hkdf.c. */
static void noise_hkdf(noise_secrets *x, const uint8_t *ikm, size_t ikm_len, int n)
{
    gni_hkdf_sha256_extract(x->hk_key, x->ck, sizeof x->ck, ikm, ikm_len);
    /* Cannot fail: n * 32 <= 96 and every pointer is set. */
    int rc = gni_hkdf_sha256_expand(&x->hk_out[0][0], (size_t)n * GN_NOISE_HASHLEN, x->hk_key,
                                    sizeof x->hk_key, NULL, 0);
    assert(rc == 0);
    (void)rc;
    sodium_memzero(x->hk_key, sizeof x->hk_key);
}

static void noise_mix_key(gn_noise_hs *hs, const uint8_t *ikm, size_t len)
{
    noise_secrets *x = hs->sec;
    noise_hkdf(x, ikm, len, 2);
    memcpy(x->ck, x->hk_out[0], GN_NOISE_HASHLEN);
    memcpy(x->k, x->hk_out[1], GN_NOISE_KEYBYTES);
    sodium_memzero(x->hk_out, sizeof x->hk_out);
    hs->has_k = true;
    hs->n = 0;
}

static void noise_mix_key_and_hash(gn_noise_hs *hs, const uint8_t *ikm, size_t len)
{
    noise_secrets *x = hs->sec;
    noise_hkdf(x, ikm, len, 3);
    memcpy(x->ck, x->hk_out[0], GN_NOISE_HASHLEN);
    noise_mix_hash(hs, x->hk_out[1], GN_NOISE_HASHLEN);
    memcpy(x->k, x->hk_out[2], GN_NOISE_KEYBYTES);
    sodium_memzero(x->hk_out, sizeof x->hk_out);
    hs->has_k = true;
    hs->n = 0;
}

/* EncryptAndHash: @out may equal @in. Returns the output length or GN_ENONCE. */
static int noise_encrypt_and_hash(gn_noise_hs *hs, const uint8_t *in, size_t len, uint8_t *out)
{
    size_t olen = len;
    if (hs->has_k) {
        if (hs->n == UINT64_MAX)
            return GN_ENONCE;
        noise_seal(hs->sec->k, hs->n, hs->h, sizeof hs->h, in, len, out);
        hs->n++;
        olen += GN_NOISE_TAGBYTES;
    } else if (out != in && len) {
        memmove(out, in, len);
    }
    noise_mix_hash(hs, out, olen);
    return (int)olen;
}

/* DecryptAndHash: @out must not overlap @in. Returns the plaintext length or an error. */
static int noise_decrypt_and_hash(gn_noise_hs *hs, const uint8_t *in, size_t len, uint8_t *out)
{
    size_t olen = len;
    if (hs->has_k) {
        if (hs->n == UINT64_MAX)
            return GN_ENONCE;
        if (len < GN_NOISE_TAGBYTES)
            return GN_EBADFRAME;
        int rc = noise_open(hs->sec->k, hs->n, hs->h, sizeof hs->h, in, len, out);
        if (rc < 0)
            return rc;
        hs->n++;
        olen -= GN_NOISE_TAGBYTES;
    } else if (len) {
        memcpy(out, in, len);
    }
    noise_mix_hash(hs, in, len);
    return (int)olen;
}

/* MixKey(DH(local, remote)) for a DH token (section 5.3). */
static int noise_dh_token(gn_noise_hs *hs, uint8_t tok)
{
    bool local_e, remote_e;
    switch (tok) {
    case GN_NOISE_TOK_EE:
        local_e = true, remote_e = true;
        break;
    case GN_NOISE_TOK_ES:
        local_e = hs->initiator, remote_e = !hs->initiator;
        break;
    case GN_NOISE_TOK_SE:
        local_e = !hs->initiator, remote_e = hs->initiator;
        break;
    default: /* SS */
        local_e = false, remote_e = false;
        break;
    }
    if ((local_e ? !hs->has_e : !hs->has_s) || (remote_e ? !hs->has_re : !hs->has_rs))
        return GN_ESTATE; /* the pattern uses a key this side does not have */
    const uint8_t *priv = local_e ? hs->sec->e : hs->sec->s;
    const uint8_t *pub = remote_e ? hs->re : hs->rs;
    if (crypto_scalarmult_curve25519(hs->sec->dh, priv, pub) != 0) {
        sodium_memzero(hs->sec->dh, sizeof hs->sec->dh);
        return GN_EBADKEY; /* low-order point: all-zero shared secret */
    }
    noise_mix_key(hs, hs->sec->dh, sizeof hs->sec->dh);
    sodium_memzero(hs->sec->dh, sizeof hs->sec->dh);
    return 0;
}

static int noise_split(gn_noise_hs *hs)
{
    noise_secrets *x = hs->sec;
    noise_hkdf(x, NULL, 0, 2);
    int rc = gn_noise_cipher_set_key(&hs->c1, x->hk_out[0]);
    if (rc == 0)
        rc = gn_noise_cipher_set_key(&hs->c2, x->hk_out[1]);
    /* the handshake secrets are no longer needed */
    sodium_memzero(x, sizeof *x);
    hs->has_k = hs->has_s = hs->has_e = false;
    return rc;
}

static bool noise_list_has(const uint8_t *list, uint8_t tok)
{
    for (; *list; list++)
        if (*list == tok)
            return true;
    return false;
}

/* Does the @initiator side send or pre-share token @tok anywhere in @p? */
static bool noise_side_uses(const gn_noise_pattern *p, bool initiator, uint8_t tok)
{
    if (noise_list_has(initiator ? p->pre_init : p->pre_resp, tok))
        return true;
    for (unsigned i = initiator ? 0 : 1; i < p->n_msgs; i += 2)
        if (noise_list_has(p->msgs[i], tok))
            return true;
    return false;
}

/* Mixes the pre-message keys of one side (section 5.3 Initialize). */
static void noise_mix_pre(gn_noise_hs *hs, const uint8_t *pre, bool local)
{
    for (; *pre; pre++) {
        const uint8_t *key;
        if (*pre == GN_NOISE_TOK_E)
            key = local ? hs->e_pub : hs->re;
        else
            key = local ? hs->s_pub : hs->rs;
        noise_mix_hash(hs, key, GN_NOISE_DHLEN);
        if (*pre == GN_NOISE_TOK_E && hs->psk_mode)
            noise_mix_key(hs, key, GN_NOISE_DHLEN); /* section 9.2 */
    }
}

int gn_noise_hs_new(const gn_noise_hs_params *p, gn_noise_hs **out)
{
    static const char prefix[] = "Noise_";
    static const char suffix[] = "_25519_ChaChaPoly_SHA256";
    if (!p->protocol_name)
        return GN_EINVAL;
    size_t nlen = strnlen(p->protocol_name, 256);
    if (nlen >= 256 || nlen < sizeof prefix + sizeof suffix - 1 ||
        memcmp(p->protocol_name, prefix, sizeof prefix - 1) != 0 ||
        memcmp(p->protocol_name + nlen - (sizeof suffix - 1), suffix, sizeof suffix - 1) != 0)
        return GN_ENOTSUP;
    gn_noise_pattern pat;
    int rc = gn_noise_pattern_find(p->protocol_name + sizeof prefix - 1,
                                   nlen - (sizeof prefix - 1) - (sizeof suffix - 1), &pat);
    if (rc < 0)
        return rc;

    bool init = p->initiator;
    const uint8_t *pre_local = init ? pat.pre_init : pat.pre_resp;
    const uint8_t *pre_remote = init ? pat.pre_resp : pat.pre_init;
    if (noise_side_uses(&pat, init, GN_NOISE_TOK_S) && !p->s)
        return GN_EINVAL;
    if (noise_list_has(pre_local, GN_NOISE_TOK_E) && !p->e)
        return GN_EINVAL;
    if (noise_list_has(pre_remote, GN_NOISE_TOK_S) && !p->rs)
        return GN_EINVAL;
    if (noise_list_has(pre_remote, GN_NOISE_TOK_E) && !p->re)
        return GN_EINVAL;
    if (p->n_psks != pat.n_psks || (p->n_psks && !p->psks))
        return GN_EINVAL;
    if (!p->e && (!p->rng || !p->rng->fill) && noise_side_uses(&pat, init, GN_NOISE_TOK_E))
        return GN_EINVAL;
    if (p->prologue.len && !p->prologue.base)
        return GN_EINVAL;
    if (sodium_init() < 0)
        return GN_ECRYPTO;

    gn_noise_hs *hs = gn_calloc(1, sizeof *hs);
    if (!hs)
        return GN_ENOMEM;
    hs->sec = noise_secure_alloc(sizeof *hs->sec); /* zeroed */
    if (!hs->sec) {
        gn_free(hs);
        return GN_ENOMEM;
    }
    gn_noise_cipher_init(&hs->c1);
    gn_noise_cipher_init(&hs->c2);
    hs->pat = pat;
    hs->rng = p->rng;
    hs->initiator = init;
    hs->psk_mode = pat.n_psks > 0;
    if (p->s) {
        memcpy(hs->sec->s, p->s, GN_NOISE_DHLEN);
        crypto_scalarmult_curve25519_base(hs->s_pub, hs->sec->s);
        hs->has_s = true;
        hs->s_known = true;
    }
    if (p->e) {
        memcpy(hs->sec->e, p->e, GN_NOISE_DHLEN);
        crypto_scalarmult_curve25519_base(hs->e_pub, hs->sec->e);
        hs->e_fixed = true;
        hs->has_e = noise_list_has(pre_local, GN_NOISE_TOK_E);
    }
    if (p->rs) {
        memcpy(hs->rs, p->rs, GN_NOISE_DHLEN);
        hs->has_rs = noise_list_has(pre_remote, GN_NOISE_TOK_S);
    }
    if (p->re) {
        memcpy(hs->re, p->re, GN_NOISE_DHLEN);
        hs->has_re = noise_list_has(pre_remote, GN_NOISE_TOK_E);
    }
    for (size_t i = 0; i < p->n_psks; i++)
        memcpy(hs->sec->psk[i], p->psks + i * GN_NOISE_PSKBYTES, GN_NOISE_PSKBYTES);

    /* InitializeSymmetric(protocol_name) */
    if (nlen <= GN_NOISE_HASHLEN) {
        memcpy(hs->h, p->protocol_name, nlen);
    } else {
        crypto_hash_sha256(hs->h, (const uint8_t *)p->protocol_name, nlen);
    }
    memcpy(hs->sec->ck, hs->h, GN_NOISE_HASHLEN);
    noise_mix_hash(hs, p->prologue.base ? p->prologue.base : (const uint8_t *)"", p->prologue.len);
    /* pre-messages: the initiator's keys first */
    noise_mix_pre(hs, pat.pre_init, init);
    noise_mix_pre(hs, pat.pre_resp, !init);
    *out = hs;
    return 0;
}

void gn_noise_hs_free(gn_noise_hs *hs)
{
    if (!hs)
        return;
    gn_noise_cipher_fini(&hs->c1);
    gn_noise_cipher_fini(&hs->c2);
    gni_secmem_free(hs->sec); /* wipes */
    sodium_memzero(hs, sizeof *hs);
    gn_free(hs);
}

static bool noise_my_turn(const gn_noise_hs *hs)
{
    return (hs->msg_idx % 2 == 0) == hs->initiator;
}

gn_noise_hs_action gn_noise_hs_next(const gn_noise_hs *hs)
{
    if (hs->err)
        return GN_NOISE_HS_FAILED;
    if (hs->msg_idx >= hs->pat.n_msgs)
        return GN_NOISE_HS_DONE;
    return noise_my_turn(hs) ? GN_NOISE_HS_WRITE : GN_NOISE_HS_READ;
}

/* Byte count of the keys/tags of the current message, and whether its payload is encrypted. */
static size_t noise_msg_overhead(const gn_noise_hs *hs, bool *payload_keyed)
{
    bool k = hs->has_k;
    size_t n = 0;
    for (const uint8_t *t = hs->pat.msgs[hs->msg_idx]; *t; t++) {
        switch (*t) {
        case GN_NOISE_TOK_E:
            n += GN_NOISE_DHLEN;
            if (hs->psk_mode)
                k = true;
            break;
        case GN_NOISE_TOK_S:
            n += GN_NOISE_DHLEN + (k ? GN_NOISE_TAGBYTES : 0);
            break;
        default: /* DH tokens and psk */
            k = true;
            break;
        }
    }
    *payload_keyed = k;
    return n;
}

int gn_noise_hs_write_len(const gn_noise_hs *hs, size_t payload_len)
{
    if (gn_noise_hs_next(hs) != GN_NOISE_HS_WRITE)
        return hs->err ? hs->err : GN_ESTATE;
    bool keyed;
    size_t n = noise_msg_overhead(hs, &keyed) + (keyed ? GN_NOISE_TAGBYTES : 0);
    if (payload_len > GN_NOISE_MAX_MSG_LEN || n + payload_len > GN_NOISE_MAX_MSG_LEN)
        return GN_ETOOBIG;
    return (int)(n + payload_len);
}

static int noise_fail(gn_noise_hs *hs, int err)
{
    hs->err = err;
    return err;
}

static int noise_finish_msg(gn_noise_hs *hs)
{
    hs->msg_idx++;
    if (hs->msg_idx == hs->pat.n_msgs) {
        int rc = noise_split(hs);
        if (rc < 0)
            return noise_fail(hs, rc);
    }
    return 0;
}

int gn_noise_hs_write(gn_noise_hs *hs, gn_slice payload, uint8_t *out, size_t out_len)
{
    int total = gn_noise_hs_write_len(hs, payload.len);
    if (total < 0)
        return total;
    if ((size_t)total > out_len || !out)
        return GN_ENOSPC;
    if (payload.len && !payload.base)
        return GN_EINVAL;
    if (!payload.base)
        payload.base = (const uint8_t *)"";
    size_t pos = 0;
    int rc;
    for (const uint8_t *t = hs->pat.msgs[hs->msg_idx]; *t; t++) {
        switch (*t) {
        case GN_NOISE_TOK_E:
            if (!hs->e_fixed) {
                gn_rng_fill(hs->rng, hs->sec->e, GN_NOISE_DHLEN);
                crypto_scalarmult_curve25519_base(hs->e_pub, hs->sec->e);
            }
            hs->has_e = true;
            memcpy(out + pos, hs->e_pub, GN_NOISE_DHLEN);
            pos += GN_NOISE_DHLEN;
            noise_mix_hash(hs, hs->e_pub, GN_NOISE_DHLEN);
            if (hs->psk_mode)
                noise_mix_key(hs, hs->e_pub, GN_NOISE_DHLEN);
            break;
        case GN_NOISE_TOK_S:
            if (!hs->has_s)
                return noise_fail(hs, GN_ESTATE);
            rc = noise_encrypt_and_hash(hs, hs->s_pub, GN_NOISE_DHLEN, out + pos);
            if (rc < 0)
                return noise_fail(hs, rc);
            pos += (size_t)rc;
            break;
        case GN_NOISE_TOK_PSK:
            noise_mix_key_and_hash(hs, hs->sec->psk[hs->psk_idx], GN_NOISE_PSKBYTES);
            hs->psk_idx++;
            break;
        default:
            rc = noise_dh_token(hs, *t);
            if (rc < 0)
                return noise_fail(hs, rc);
            break;
        }
    }
    rc = noise_encrypt_and_hash(hs, payload.base, payload.len, out + pos);
    if (rc < 0)
        return noise_fail(hs, rc);
    pos += (size_t)rc;
    rc = noise_finish_msg(hs);
    if (rc < 0)
        return rc;
    return (int)pos;
}

int gn_noise_hs_read(gn_noise_hs *hs, gn_slice msg, uint8_t *payload, size_t payload_len)
{
    if (gn_noise_hs_next(hs) != GN_NOISE_HS_READ)
        return hs->err ? hs->err : GN_ESTATE;
    if (msg.len && !msg.base)
        return GN_EINVAL;
    if (msg.len > GN_NOISE_MAX_MSG_LEN)
        return noise_fail(hs, GN_ETOOBIG);
    bool keyed;
    size_t fixed = noise_msg_overhead(hs, &keyed);
    size_t tag = keyed ? GN_NOISE_TAGBYTES : 0;
    if (msg.len < fixed + tag)
        return noise_fail(hs, GN_EBADFRAME);
    size_t plen = msg.len - fixed - tag;
    if (plen > payload_len || (plen && !payload))
        return GN_ENOSPC;
    uint8_t dummy[1];
    const uint8_t *mb = msg.base ? msg.base : dummy;
    if (!payload)
        payload = dummy;
    size_t pos = 0;
    int rc;
    for (const uint8_t *t = hs->pat.msgs[hs->msg_idx]; *t; t++) {
        switch (*t) {
        case GN_NOISE_TOK_E:
            memcpy(hs->re, mb + pos, GN_NOISE_DHLEN);
            hs->has_re = true;
            pos += GN_NOISE_DHLEN;
            noise_mix_hash(hs, hs->re, GN_NOISE_DHLEN);
            if (hs->psk_mode)
                noise_mix_key(hs, hs->re, GN_NOISE_DHLEN);
            break;
        case GN_NOISE_TOK_S: {
            size_t n = GN_NOISE_DHLEN + (hs->has_k ? GN_NOISE_TAGBYTES : 0);
            rc = noise_decrypt_and_hash(hs, mb + pos, n, hs->rs);
            if (rc < 0)
                return noise_fail(hs, rc);
            hs->has_rs = true;
            pos += n;
            break;
        }
        case GN_NOISE_TOK_PSK:
            noise_mix_key_and_hash(hs, hs->sec->psk[hs->psk_idx], GN_NOISE_PSKBYTES);
            hs->psk_idx++;
            break;
        default:
            rc = noise_dh_token(hs, *t);
            if (rc < 0)
                return noise_fail(hs, rc);
            break;
        }
    }
    rc = noise_decrypt_and_hash(hs, mb + pos, msg.len - pos, payload);
    if (rc < 0)
        return noise_fail(hs, rc);
    int out_len = rc;
    rc = noise_finish_msg(hs);
    if (rc < 0)
        return rc;
    return out_len;
}

int gn_noise_hs_take_ciphers(gn_noise_hs *hs, gn_noise_cipher *tx, gn_noise_cipher *rx)
{
    if (gn_noise_hs_next(hs) != GN_NOISE_HS_DONE || hs->taken)
        return GN_ESTATE;
    *tx = hs->initiator ? hs->c1 : hs->c2;
    *rx = hs->initiator ? hs->c2 : hs->c1;
    gn_noise_cipher_init(&hs->c1);
    gn_noise_cipher_init(&hs->c2);
    hs->taken = true;
    return 0;
}

void gn_noise_hs_hash(const gn_noise_hs *hs, uint8_t out[GN_NOISE_HASHLEN])
{
    memcpy(out, hs->h, GN_NOISE_HASHLEN);
}

int gn_noise_hs_remote_static(const gn_noise_hs *hs, uint8_t out[GN_NOISE_DHLEN])
{
    if (!hs->has_rs)
        return GN_ENOTFOUND;
    memcpy(out, hs->rs, GN_NOISE_DHLEN);
    return 0;
}

int gn_noise_hs_local_static(const gn_noise_hs *hs, uint8_t out[GN_NOISE_DHLEN])
{
    if (!hs->s_known)
        return GN_ENOTFOUND;
    memcpy(out, hs->s_pub, GN_NOISE_DHLEN);
    return 0;
}

/* ==== transport framing (libp2p noise "Wire Format") ================================== */

void gn_noise_transport_init(gn_noise_transport *t)
{
    memset(t, 0, sizeof *t);
    gn_noise_cipher_init(&t->tx);
    gn_noise_cipher_init(&t->rx);
}

void gn_noise_transport_fini(gn_noise_transport *t)
{
    gn_noise_cipher_fini(&t->tx);
    gn_noise_cipher_fini(&t->rx);
    gn_free(t->body);
    memset(t, 0, sizeof *t);
}

size_t gn_noise_transport_sealed_len(size_t len)
{
    size_t frames = (len + GN_NOISE_MAX_PLAINTEXT - 1) / GN_NOISE_MAX_PLAINTEXT;
    return len + frames * (GN_NOISE_FRAME_HDR + GN_NOISE_TAGBYTES);
}

/* Per-call output cap so byte counts fit in an int. */
#define NOISE_CALL_CAP ((size_t)INT_MAX - GN_NOISE_MAX_FRAME)

int gn_noise_transport_seal(gn_noise_transport *t, gn_slice in, gn_buf *out, size_t *consumed)
{
    const size_t over = GN_NOISE_FRAME_HDR + GN_NOISE_TAGBYTES;
    size_t off = 0, written = 0;
    *consumed = 0;
    if (!t->tx.k)
        return GN_ESTATE;
    if (in.len && !in.base)
        return GN_EINVAL;
    while (off < in.len && written < NOISE_CALL_CAP) {
        size_t left = gn_buf_left(out);
        if (left <= over)
            break;
        size_t chunk = GNI_MIN(in.len - off, GNI_MIN((size_t)GN_NOISE_MAX_PLAINTEXT, left - over));
        uint8_t *f = out->last;
        int rc = gn_noise_cipher_encrypt(&t->tx, NULL, 0, in.base + off, chunk,
                                         f + GN_NOISE_FRAME_HDR);
        if (rc < 0) {
            *consumed = off;
            return rc;
        }
        f[0] = (uint8_t)((unsigned)rc >> 8);
        f[1] = (uint8_t)rc;
        out->last += GN_NOISE_FRAME_HDR + (size_t)rc;
        off += chunk;
        written += GN_NOISE_FRAME_HDR + (size_t)rc;
    }
    *consumed = off;
    if (off == 0 && in.len > 0)
        return GN_ENOSPC;
    return (int)written;
}

int gn_noise_transport_seal_frame(gn_noise_transport *t, const uint8_t *in, size_t len,
                                  uint8_t *out)
{
    if (len > GN_NOISE_MAX_PLAINTEXT)
        return GN_ETOOBIG;
    if (len && !in)
        return GN_EINVAL;
    uint8_t *body = out + GN_NOISE_FRAME_HDR;
    int rc = gn_noise_cipher_encrypt(&t->tx, NULL, 0, in ? in : body, len, body);
    if (rc < 0)
        return rc;
    out[0] = (uint8_t)((unsigned)rc >> 8);
    out[1] = (uint8_t)rc;
    return rc + GN_NOISE_FRAME_HDR;
}

static int noise_rx_fail(gn_noise_transport *t, int err)
{
    t->err = err;
    return err;
}

int gn_noise_transport_open(gn_noise_transport *t, const uint8_t *in, size_t len,
                            size_t *consumed, gn_buf *out)
{
    size_t off = 0, produced = 0;
    int rc;
    *consumed = 0;
    if (t->err)
        return t->err;
    if (!t->rx.k)
        return GN_ESTATE;
    if (len && !in)
        return GN_EINVAL;
    while (produced < NOISE_CALL_CAP) {
        if (t->hdr_have < GN_NOISE_FRAME_HDR) {
            if (off == len)
                break;
            if (t->hdr_have == 0 && len - off >= GN_NOISE_FRAME_HDR) {
                /* fast path: a whole frame in the input decrypts straight into @out */
                size_t flen = ((size_t)in[off] << 8) | in[off + 1];
                if (flen < GN_NOISE_TAGBYTES)
                    return *consumed = off, noise_rx_fail(t, GN_EBADFRAME);
                if (len - off - GN_NOISE_FRAME_HDR >= flen &&
                    gn_buf_left(out) >= flen - GN_NOISE_TAGBYTES) {
                    rc = gn_noise_cipher_decrypt(&t->rx, NULL, 0, in + off + GN_NOISE_FRAME_HDR,
                                                 flen, out->last);
                    if (rc < 0)
                        return *consumed = off, noise_rx_fail(t, rc);
                    out->last += rc;
                    produced += (size_t)rc;
                    off += GN_NOISE_FRAME_HDR + flen;
                    continue;
                }
            }
            t->hdr[t->hdr_have++] = in[off++];
            if (t->hdr_have == GN_NOISE_FRAME_HDR) {
                t->frame_len = ((uint32_t)t->hdr[0] << 8) | t->hdr[1];
                t->body_have = 0;
                if (t->frame_len < GN_NOISE_TAGBYTES)
                    return *consumed = off, noise_rx_fail(t, GN_EBADFRAME);
            }
            continue;
        }
        if (t->body_have < t->frame_len) {
            if (off == len)
                break;
            if (!t->body) {
                t->body = gn_malloc(GN_NOISE_MAX_MSG_LEN);
                if (!t->body)
                    return *consumed = off, GN_ENOMEM;
            }
            size_t n = GNI_MIN(len - off, t->frame_len - t->body_have);
            memcpy(t->body + t->body_have, in + off, n);
            t->body_have += n;
            off += n;
            if (t->body_have < t->frame_len)
                break;
        }
        /* a complete frame waits in the reassembly buffer */
        if (gn_buf_left(out) < t->frame_len - GN_NOISE_TAGBYTES)
            break;
        rc = gn_noise_cipher_decrypt(&t->rx, NULL, 0, t->body, t->frame_len, out->last);
        if (rc < 0)
            return *consumed = off, noise_rx_fail(t, rc);
        out->last += rc;
        produced += (size_t)rc;
        t->hdr_have = 0;
        t->body_have = 0;
    }
    *consumed = off;
    return (int)produced;
}

int gn_noise_transport_open_frame(gn_noise_transport *t, const uint8_t *in, size_t len,
                                  size_t *consumed, const uint8_t **plain, size_t *plain_len)
{
    size_t off = 0;
    int rc;
    *consumed = 0;
    *plain = NULL;
    *plain_len = 0;
    if (t->err)
        return t->err;
    if (!t->rx.k)
        return GN_ESTATE;
    if (len && !in)
        return GN_EINVAL;
    if (!t->body) {
        t->body = gn_malloc(GN_NOISE_MAX_MSG_LEN);
        if (!t->body)
            return GN_ENOMEM;
    }
    const uint8_t *src = NULL;
    while (t->hdr_have < GN_NOISE_FRAME_HDR && off < len) {
        if (t->hdr_have == 0 && len - off >= GN_NOISE_FRAME_HDR) {
            size_t flen = ((size_t)in[off] << 8) | in[off + 1];
            if (flen >= GN_NOISE_TAGBYTES && len - off - GN_NOISE_FRAME_HDR >= flen) {
                /* whole frame in the input: decrypt from there, no copy */
                t->frame_len = (uint32_t)flen;
                src = in + off + GN_NOISE_FRAME_HDR;
                off += GN_NOISE_FRAME_HDR + flen;
                break;
            }
        }
        t->hdr[t->hdr_have++] = in[off++];
        if (t->hdr_have == GN_NOISE_FRAME_HDR) {
            t->frame_len = ((uint32_t)t->hdr[0] << 8) | t->hdr[1];
            t->body_have = 0;
        }
    }
    if (!src) {
        if (t->hdr_have < GN_NOISE_FRAME_HDR)
            return *consumed = off, 0;
        if (t->frame_len < GN_NOISE_TAGBYTES)
            return *consumed = off, noise_rx_fail(t, GN_EBADFRAME);
        size_t n = GNI_MIN(len - off, t->frame_len - t->body_have);
        if (n) {
            memcpy(t->body + t->body_have, in + off, n);
            t->body_have += n;
            off += n;
        }
        if (t->body_have < t->frame_len)
            return *consumed = off, 0;
        src = t->body;
    }
    rc = gn_noise_cipher_decrypt(&t->rx, NULL, 0, src, t->frame_len, t->body);
    *consumed = off;
    if (rc < 0)
        return noise_rx_fail(t, rc);
    t->hdr_have = 0;
    t->body_have = 0;
    *plain = t->body;
    *plain_len = (size_t)rc;
    return 0;
}

bool gn_noise_transport_rx_pending(const gn_noise_transport *t)
{
    return t->hdr_have > 0;
}

/* ==== libp2p XX handshake ============================================================= */

#define XX_SIG_PREFIX_LEN (sizeof GN_NOISE_LIBP2P_SIG_PREFIX - 1)
/* Smallest max_msg that can carry our messages: keys, tags and a payload. */
#define XX_MIN_MSG 1024

struct gn_noise_xx {
    gn_noise_hs *hs;
    const gn_identity *id;
    bool initiator;
    bool has_expected;
    bool taken;
    uint8_t step; /* handshake messages sent or received: 0..3 */
    int err;
    gn_peer_id expected;
    size_t n_muxers;
    char muxers[GN_NOISE_MAX_MUXERS][GN_PROTOCOL_ID_MAX];
    size_t max_msg;
    gn_time deadline;
    /* outgoing framed message */
    uint8_t *out;
    size_t out_len, out_off;
    /* incoming message */
    uint8_t hdr[2];
    uint8_t hdr_have;
    uint8_t *in;
    size_t in_len, in_have;
    /* result */
    gn_peer_id remote_peer;
    uint8_t remote_pub[GN_ED25519_PUBLICKEYBYTES];
    char muxer[GN_PROTOCOL_ID_MAX];
    uint8_t hash[GN_NOISE_HASHLEN];
};


static int xx_fail(gn_noise_xx *x, int err)
{
    if (!x->err)
        x->err = err;
    return x->err;
}

static bool xx_my_turn_to_read(const gn_noise_xx *x)
{
    /* initiator reads message 2 (step 1); responder reads 1 and 3 (steps 0, 2) */
    return x->initiator ? x->step == 1 : (x->step == 0 || x->step == 2);
}

/* Builds the signed NoiseHandshakePayload into a gn_malloc'd buffer. */
static int xx_build_payload(gn_noise_xx *x, uint8_t **out, size_t *out_len)
{
    uint8_t spub[GN_NOISE_DHLEN];
    uint8_t keypb[GN_PUBKEY_MAX_BYTES], tosign[XX_SIG_PREFIX_LEN + GN_NOISE_DHLEN];
    uint8_t sig[GN_SIG_MAX_BYTES];
    int rc = gn_noise_hs_local_static(x->hs, spub);
    if (rc < 0)
        return GN_EINTERNAL;
    /* any key type (peer-ids.md "Key Types"): PublicKey protobuf and its signature */
    int kl = gn_identity_encode_public(x->id, keypb, sizeof keypb);
    if (kl < 0)
        return GN_EINTERNAL;
    memcpy(tosign, GN_NOISE_LIBP2P_SIG_PREFIX, XX_SIG_PREFIX_LEN);
    memcpy(tosign + XX_SIG_PREFIX_LEN, spub, GN_NOISE_DHLEN);
    int sl = gn_identity_sign_any(x->id, tosign, sizeof tosign, sig, sizeof sig);
    if (sl < 0)
        return sl == GN_ENOMEM ? sl : GN_EINTERNAL;

    Gnpb__NoiseHandshakePayload pl = GNPB__NOISE_HANDSHAKE_PAYLOAD__INIT;
    Gnpb__NoiseExtensions ext = GNPB__NOISE_EXTENSIONS__INIT;
    char *mux[GN_NOISE_MAX_MUXERS];
    pl.has_identity_key = 1;
    pl.identity_key.data = keypb;
    pl.identity_key.len = (size_t)kl;
    pl.has_identity_sig = 1;
    pl.identity_sig.data = sig;
    pl.identity_sig.len = (size_t)sl;
    if (x->n_muxers) {
        for (size_t i = 0; i < x->n_muxers; i++)
            mux[i] = x->muxers[i];
        ext.n_stream_muxers = x->n_muxers;
        ext.stream_muxers = mux;
        pl.extensions = &ext;
    }
    size_t sz = gnpb__noise_handshake_payload__get_packed_size(&pl);
    uint8_t *buf = gn_malloc(sz ? sz : 1);
    if (!buf)
        return GN_ENOMEM;
    gnpb__noise_handshake_payload__pack(&pl, buf);
    *out = buf;
    *out_len = sz;
    return 0;
}

/* Builds the next outgoing message (framed) when it is this side's turn. */
static int xx_build_msg(gn_noise_xx *x)
{
    uint8_t *payload = NULL;
    size_t plen = 0;
    int rc;
    if (x->step != 0) { /* messages 2 and 3 carry the signed payload */
        rc = xx_build_payload(x, &payload, &plen);
        if (rc < 0)
            return rc;
    }
    rc = gn_noise_hs_write_len(x->hs, plen);
    if (rc >= 0 && (size_t)rc > x->max_msg)
        rc = GN_ETOOBIG;
    if (rc < 0) {
        gn_free(payload);
        return rc;
    }
    size_t mlen = (size_t)rc;
    uint8_t *buf = gn_malloc(GN_NOISE_FRAME_HDR + mlen);
    if (!buf) {
        gn_free(payload);
        return GN_ENOMEM;
    }
    rc = gn_noise_hs_write(x->hs, gn_slice_of(payload, plen), buf + GN_NOISE_FRAME_HDR, mlen);
    gn_free(payload);
    if (rc < 0) {
        gn_free(buf);
        return rc;
    }
    buf[0] = (uint8_t)(mlen >> 8);
    buf[1] = (uint8_t)mlen;
    gn_free(x->out);
    x->out = buf;
    x->out_len = GN_NOISE_FRAME_HDR + mlen;
    x->out_off = 0;
    x->step++;
    if (gn_noise_hs_next(x->hs) == GN_NOISE_HS_DONE)
        gn_noise_hs_hash(x->hs, x->hash);
    return 0;
}

/* Early muxer: the first of the initiator's list the responder also supports. */
static void xx_pick_muxer(gn_noise_xx *x, char **remote, size_t n_remote)
{
    x->muxer[0] = '\0';
    if (x->initiator) {
        for (size_t i = 0; i < x->n_muxers; i++)
            for (size_t j = 0; j < n_remote; j++)
                if (remote[j] && strcmp(x->muxers[i], remote[j]) == 0) {
                    memcpy(x->muxer, x->muxers[i], strlen(x->muxers[i]) + 1);
                    return;
                }
    } else {
        for (size_t j = 0; j < n_remote; j++) {
            if (!remote[j])
                continue;
            for (size_t i = 0; i < x->n_muxers; i++)
                if (strcmp(x->muxers[i], remote[j]) == 0) {
                    memcpy(x->muxer, x->muxers[i], strlen(x->muxers[i]) + 1);
                    return;
                }
        }
    }
}

/* Checks the peer's NoiseHandshakePayload (libp2p noise "The libp2p Handshake Payload"). */
static int xx_verify_payload(gn_noise_xx *x, const uint8_t *pl, size_t len)
{
    gni_pb_alloc pa;
    gni_pb_alloc_init(&pa);
    Gnpb__NoiseHandshakePayload *m = gnpb__noise_handshake_payload__unpack(&pa.a, len, pl);
    if (!m)
        return pa.oom ? GN_ENOMEM : GN_EPROTO;
    int rc;
    gn_key_type type;
    uint8_t pub[GN_ED25519_PUBLICKEYBYTES] = {0}, rs[GN_NOISE_DHLEN];
    uint8_t tosign[XX_SIG_PREFIX_LEN + GN_NOISE_DHLEN];
    gn_peer_id pid;
    if (!m->has_identity_key || !m->has_identity_sig) {
        rc = GN_EPROTO;
        goto out;
    }
    /* any key type: the protobuf must be canonical and the key well-formed */
    rc = gn_pubkey_check(m->identity_key.data, m->identity_key.len, &type);
    if (rc < 0) {
        rc = rc == GN_EBADKEY || rc == GN_ENOMEM ? rc : GN_EPROTO;
        goto out;
    }
    if (gn_noise_hs_remote_static(x->hs, rs) < 0) {
        rc = GN_EINTERNAL;
        goto out;
    }
    memcpy(tosign, GN_NOISE_LIBP2P_SIG_PREFIX, XX_SIG_PREFIX_LEN);
    memcpy(tosign + XX_SIG_PREFIX_LEN, rs, GN_NOISE_DHLEN);
    rc = gn_pubkey_verify(m->identity_key.data, m->identity_key.len, tosign, sizeof tosign,
                          m->identity_sig.data, m->identity_sig.len);
    if (rc < 0) {
        /* GN_EPARSE here is the protobuf decoder out of memory (it was checked above) */
        rc = (rc == GN_EBADKEY || rc == GN_EBADSIG) ? rc : GN_EPROTO;
        goto out;
    }
    /* the peer ID of the (canonical, checked) encoding of the verified key */
    if (gn_peer_id_from_pubkey(m->identity_key.data, m->identity_key.len, &pid) < 0) {
        rc = GN_EINTERNAL;
        goto out;
    }
    /* the raw key is reported for Ed25519 only (gn_secure_result.remote_pubkey) */
    if (type == GN_KEY_ED25519 &&
        gn_pubkey_decode(m->identity_key.data, m->identity_key.len, NULL, pub) < 0) {
        rc = GN_EPROTO; /* checked above: only the decoder running out of memory */
        goto out;
    }
    /* kept on a mismatch too: gn_noise_xx_mismatched_peer() reports it */
    x->remote_peer = pid;
    memcpy(x->remote_pub, pub, sizeof pub);
    if (x->has_expected && !gn_peer_id_equal(&pid, &x->expected)) {
        rc = GN_EPEERID;
        goto out;
    }
    if (m->extensions)
        xx_pick_muxer(x, m->extensions->stream_muxers, m->extensions->n_stream_muxers);
    else
        x->muxer[0] = '\0';
    rc = 0;
out:
    gnpb__noise_handshake_payload__free_unpacked(m, &pa.a);
    return rc;
}

/* Processes one complete incoming message in x->in. */
static int xx_process_msg(gn_noise_xx *x)
{
    uint8_t *payload = gn_malloc(x->in_len ? x->in_len : 1);
    if (!payload)
        return GN_ENOMEM;
    int rc = gn_noise_hs_read(x->hs, gn_slice_of(x->in, x->in_len), payload, x->in_len);
    if (rc >= 0) {
        size_t plen = (size_t)rc;
        rc = 0;
        /* message 1's payload is unencrypted and carries nothing: ignored */
        if (x->step != 0)
            rc = xx_verify_payload(x, payload, plen);
    }
    sodium_memzero(payload, x->in_len ? x->in_len : 1);
    gn_free(payload);
    if (rc < 0)
        return rc;
    x->step++;
    if (gn_noise_hs_next(x->hs) == GN_NOISE_HS_DONE) {
        gn_noise_hs_hash(x->hs, x->hash);
        return 0;
    }
    return xx_build_msg(x);
}

int gn_noise_xx_new(const gn_noise_xx_config *cfg, gn_time now, gn_noise_xx **out)
{
    if (!cfg->identity || !cfg->rng || !cfg->rng->fill || cfg->n_muxers > GN_NOISE_MAX_MUXERS ||
        (cfg->n_muxers && !cfg->muxers))
        return GN_EINVAL;
    size_t max_msg = cfg->max_msg ? cfg->max_msg : GN_NOISE_MAX_MSG_LEN;
    if (max_msg > GN_NOISE_MAX_MSG_LEN || max_msg < XX_MIN_MSG)
        return GN_EINVAL;
    for (size_t i = 0; i < cfg->n_muxers; i++) {
        size_t l = cfg->muxers[i] ? strnlen(cfg->muxers[i], GN_PROTOCOL_ID_MAX) : 0;
        if (l == 0 || l >= GN_PROTOCOL_ID_MAX)
            return GN_EINVAL;
    }
    gn_noise_xx *x = gn_calloc(1, sizeof *x);
    if (!x)
        return GN_ENOMEM;
    uint8_t *skey = noise_secure_alloc(GN_NOISE_DHLEN);
    if (!skey) {
        gn_free(x);
        return GN_ENOMEM;
    }
    if (cfg->static_key)
        memcpy(skey, cfg->static_key, GN_NOISE_DHLEN);
    else
        gn_rng_fill(cfg->rng, skey, GN_NOISE_DHLEN);
    gn_noise_hs_params p;
    memset(&p, 0, sizeof p);
    p.protocol_name = GN_NOISE_LIBP2P_PROTOCOL;
    p.initiator = cfg->initiator;
    p.prologue = gn_slice_of(NULL, 0);
    p.s = skey;
    p.rng = cfg->rng;
    int rc = gn_noise_hs_new(&p, &x->hs);
    gni_secmem_free(skey); /* wipes */
    if (rc < 0) {
        gn_free(x);
        return rc;
    }
    x->id = cfg->identity;
    x->initiator = cfg->initiator;
    if (cfg->expected_peer) {
        x->has_expected = true;
        x->expected = *cfg->expected_peer;
    }
    x->n_muxers = cfg->n_muxers;
    for (size_t i = 0; i < cfg->n_muxers; i++)
        memcpy(x->muxers[i], cfg->muxers[i], strlen(cfg->muxers[i]) + 1);
    x->max_msg = max_msg;
    gn_time timeout = cfg->timeout ? cfg->timeout : GN_NOISE_DEFAULT_TIMEOUT;
    x->deadline = (timeout == GN_TIME_INFINITY || now > GN_TIME_INFINITY - timeout)
                      ? GN_TIME_INFINITY
                      : now + timeout;
    if (x->initiator) {
        rc = xx_build_msg(x);
        if (rc < 0) {
            gn_noise_xx_free(x);
            return rc;
        }
    }
    *out = x;
    return 0;
}

void gn_noise_xx_free(gn_noise_xx *x)
{
    if (!x)
        return;
    gn_noise_hs_free(x->hs);
    gn_free(x->out);
    gn_free(x->in);
    sodium_memzero(x, sizeof *x);
    gn_free(x);
}

static bool xx_complete(const gn_noise_xx *x)
{
    return x->step == 3 && !x->err;
}

/* Applies the deadline; returns the sticky error, if any. */
static int xx_check(gn_noise_xx *x, gn_time now)
{
    if (x->err)
        return x->err;
    if (!xx_complete(x) && x->deadline != GN_TIME_INFINITY && now >= x->deadline)
        return xx_fail(x, GN_ETIMEDOUT);
    return 0;
}

int gn_noise_xx_feed(gn_noise_xx *x, const uint8_t *in, size_t len, size_t *consumed, gn_time now)
{
    size_t off = 0;
    *consumed = 0;
    int rc = xx_check(x, now);
    if (rc < 0)
        return rc;
    if (len && !in)
        return GN_EINVAL;
    while (off < len && xx_my_turn_to_read(x)) {
        if (x->hdr_have < GN_NOISE_FRAME_HDR) {
            x->hdr[x->hdr_have++] = in[off++];
            if (x->hdr_have == GN_NOISE_FRAME_HDR) {
                x->in_len = ((size_t)x->hdr[0] << 8) | x->hdr[1];
                x->in_have = 0;
                if (x->in_len > x->max_msg) {
                    *consumed = off;
                    return xx_fail(x, GN_EFRAMESIZE);
                }
                x->in = gn_malloc(x->in_len ? x->in_len : 1);
                if (!x->in) {
                    *consumed = off;
                    return xx_fail(x, GN_ENOMEM);
                }
            }
        } else {
            size_t n = GNI_MIN(len - off, x->in_len - x->in_have);
            memcpy(x->in + x->in_have, in + off, n);
            x->in_have += n;
            off += n;
        }
        if (x->hdr_have == GN_NOISE_FRAME_HDR && x->in_have == x->in_len) {
            rc = xx_process_msg(x);
            gn_free(x->in);
            x->in = NULL;
            x->hdr_have = 0;
            x->in_len = x->in_have = 0;
            if (rc < 0) {
                *consumed = off;
                return xx_fail(x, rc);
            }
        }
    }
    *consumed = off;
    return 0;
}

int gn_noise_xx_drain(gn_noise_xx *x, gn_buf *out, gn_time now)
{
    int rc = xx_check(x, now);
    if (rc < 0)
        return rc;
    if (x->out_len > x->out_off && gn_buf_left(out) == 0)
        return GN_ENOSPC;
    size_t n = GNI_MIN(x->out_len - x->out_off, gn_buf_left(out));
    if (n) {
        memcpy(out->last, x->out + x->out_off, n);
        out->last += n;
        x->out_off += n;
    }
    if (x->out && x->out_off == x->out_len) {
        gn_free(x->out);
        x->out = NULL;
        x->out_len = x->out_off = 0;
    }
    return (int)n;
}

size_t gn_noise_xx_pending(const gn_noise_xx *x)
{
    return x->out_len - x->out_off;
}

gn_time gn_noise_xx_deadline(const gn_noise_xx *x)
{
    if (x->err || xx_complete(x))
        return GN_TIME_INFINITY;
    return x->deadline;
}

int gn_noise_xx_expire(gn_noise_xx *x, gn_time now)
{
    return xx_check(x, now);
}

bool gn_noise_xx_done(const gn_noise_xx *x)
{
    return xx_complete(x) && x->out_off == x->out_len;
}

int gn_noise_xx_error(const gn_noise_xx *x)
{
    return x->err;
}

int gn_noise_xx_mismatched_peer(const gn_noise_xx *x, gn_peer_id *peer,
                                uint8_t pubkey[GN_ED25519_PUBLICKEYBYTES])
{
    if (x->err != GN_EPEERID)
        return GN_ESTATE;
    *peer = x->remote_peer;
    memcpy(pubkey, x->remote_pub, GN_ED25519_PUBLICKEYBYTES);
    return 0;
}

int gn_noise_xx_finish(gn_noise_xx *x, gn_noise_xx_result *res, gn_noise_transport *t)
{
    if (!gn_noise_xx_done(x) || x->taken)
        return GN_ESTATE;
    gn_noise_cipher tx, rx;
    int rc = gn_noise_hs_take_ciphers(x->hs, &tx, &rx);
    if (rc < 0)
        return rc;
    gn_noise_cipher_fini(&t->tx);
    gn_noise_cipher_fini(&t->rx);
    t->tx = tx;
    t->rx = rx;
    if (res) {
        memset(res, 0, sizeof *res);
        res->remote_peer = x->remote_peer;
        memcpy(res->remote_pubkey, x->remote_pub, sizeof res->remote_pubkey);
        memcpy(res->early_muxer, x->muxer, sizeof res->early_muxer);
        memcpy(res->handshake_hash, x->hash, sizeof res->handshake_hash);
    }
    x->taken = true;
    gn_noise_hs_free(x->hs);
    x->hs = NULL;
    return 0;
}
