/*
 * libp2p /tls/1.0.0 sans-I/O core over OpenSSL 3 memory BIOs. See tls.h.
 *
 * OpenSSL does all the cryptography (TLS 1.3, X.509, ECDSA, DER); this file
 * builds and checks the libp2p certificate, moves bytes between the caller
 * and the two memory BIOs record by record, and turns OpenSSL's error queue
 * into one gn_err plus an English reason.
 */
#include "tls.h"

#include "gni.h"
#include "golemnet/crypto.h"
#include "golemnet/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* ---- SignedKey ::= SEQUENCE { publicKey OCTET STRING, signature OCTET STRING } */

typedef struct P2PTLS_SIGNED_KEY_st {
    ASN1_OCTET_STRING *pubkey;
    ASN1_OCTET_STRING *sig;
} P2PTLS_SIGNED_KEY;

ASN1_SEQUENCE(P2PTLS_SIGNED_KEY) = {
    ASN1_SIMPLE(P2PTLS_SIGNED_KEY, pubkey, ASN1_OCTET_STRING),
    ASN1_SIMPLE(P2PTLS_SIGNED_KEY, sig, ASN1_OCTET_STRING),
} static_ASN1_SEQUENCE_END(P2PTLS_SIGNED_KEY)

#define SK_ITEM ASN1_ITEM_rptr(P2PTLS_SIGNED_KEY)

static void put_diag(char *diag, size_t len, const char *fmt, ...) GN_PRINTF(3, 4);
static void put_diag(char *diag, size_t len, const char *fmt, ...)
{
    if (diag && len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(diag, len, fmt, ap);
        va_end(ap);
    }
}

static const char *ossl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    return r ? r : "unknown OpenSSL error";
}

/*
 * The signed message: prefix || the SubjectPublicKeyInfo DER of @x, taken
 * from the certificate's own X509_PUBKEY (the received encoding, not one
 * re-derived from an EVP_PKEY). gn_malloc'd.
 */
static int signed_message(X509 *x, uint8_t **msg, size_t *msg_len)
{
    X509_PUBKEY *xpk = X509_get_X509_PUBKEY(x);
    int spki_len = xpk ? i2d_X509_PUBKEY(xpk, NULL) : -1;
    if (spki_len <= 0) {
        return GN_ECRYPTO;
    }
    size_t plen = sizeof GNI_P2PTLS_SIG_PREFIX - 1;
    uint8_t *m = gn_malloc(plen + (size_t)spki_len);
    if (!m) {
        return GN_ENOMEM;
    }
    memcpy(m, GNI_P2PTLS_SIG_PREFIX, plen);
    uint8_t *p = m + plen;
    if (i2d_X509_PUBKEY(xpk, &p) != spki_len) {
        gn_free(m);
        return GN_ECRYPTO;
    }
    *msg = m;
    *msg_len = plen + (size_t)spki_len;
    return 0;
}

/* ---- certificate build ------------------------------------------------------ */

static int add_extension(X509 *x, const gn_identity *id)
{
    uint8_t pb[GN_PUBKEY_MAX_BYTES];
    uint8_t sig[GN_SIG_MAX_BYTES];
    uint8_t *msg = NULL, *der = NULL;
    size_t msg_len = 0;
    P2PTLS_SIGNED_KEY *sk = NULL;
    ASN1_OBJECT *oid = NULL;
    ASN1_OCTET_STRING *val = NULL;
    X509_EXTENSION *ext = NULL;
    int rc = GN_ECRYPTO;

    int pb_len = gn_identity_encode_public(id, pb, sizeof pb);
    if (pb_len < 0) {
        return pb_len;
    }
    if ((rc = signed_message(x, &msg, &msg_len)) < 0) {
        return rc;
    }
    int sig_len = gn_identity_sign_any(id, msg, msg_len, sig, sizeof sig);
    if (sig_len < 0) {
        rc = sig_len;
        goto out;
    }
    rc = GN_ECRYPTO;
    sk = (P2PTLS_SIGNED_KEY *)ASN1_item_new(SK_ITEM);
    if (!sk || !ASN1_OCTET_STRING_set(sk->pubkey, pb, pb_len) ||
        !ASN1_OCTET_STRING_set(sk->sig, sig, sig_len)) {
        goto out;
    }
    int der_len = ASN1_item_i2d((ASN1_VALUE *)sk, &der, SK_ITEM);
    if (der_len <= 0) {
        goto out;
    }
    if (!(oid = OBJ_txt2obj(GNI_P2PTLS_EXT_OID, 1)) || !(val = ASN1_OCTET_STRING_new()) ||
        !ASN1_OCTET_STRING_set(val, der, der_len)) {
        goto out;
    }
    /* critical, as go- and js-libp2p mark it (tls.md: MAY be critical) */
    if (!(ext = X509_EXTENSION_create_by_OBJ(NULL, oid, 1, val)) || !X509_add_ext(x, ext, -1)) {
        goto out;
    }
    rc = 0;
out:
    X509_EXTENSION_free(ext);
    ASN1_OCTET_STRING_free(val);
    ASN1_OBJECT_free(oid);
    OPENSSL_free(der);
    ASN1_item_free((ASN1_VALUE *)sk, SK_ITEM);
    gn_free(msg);
    return rc;
}

int gni_p2ptls_cert_new(const gn_identity *id, int64_t unix_now, void **cert_out, void **key_out,
                        uint8_t **der_out, size_t *der_len)
{
    if (!id || !cert_out || !key_out) {
        return GN_EINVAL;
    }
    int rc = GN_ECRYPTO;
    X509 *x = NULL;
    BIGNUM *bn = NULL;
    char *dec = NULL;
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (!pkey || !(x = X509_new()) || !X509_set_version(x, X509_VERSION_3)) {
        goto out;
    }
    /* a random positive 63-bit serial; the subject names it, as go-libp2p's does */
    uint8_t rnd[8];
    if (RAND_bytes(rnd, sizeof rnd) != 1) {
        goto out;
    }
    rnd[0] &= 0x7f;
    rnd[0] |= 0x01;
    if (!(bn = BN_bin2bn(rnd, sizeof rnd, NULL)) ||
        !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) || !(dec = BN_bn2dec(bn))) {
        goto out;
    }
    X509_NAME *name = X509_get_subject_name(x);
    if (!X509_NAME_add_entry_by_txt(name, "serialNumber", MBSTRING_ASC, (const unsigned char *)dec,
                                    -1, -1, 0) ||
        !X509_set_issuer_name(x, name)) {
        goto out;
    }
    if (!ASN1_TIME_set(X509_getm_notBefore(x), (time_t)(unix_now - GNI_P2PTLS_CERT_BACKDATE_S)) ||
        !ASN1_TIME_set(X509_getm_notAfter(x), (time_t)(unix_now + GNI_P2PTLS_CERT_LIFETIME_S)) ||
        !X509_set_pubkey(x, pkey)) {
        goto out;
    }
    if ((rc = add_extension(x, id)) < 0) {
        goto out;
    }
    rc = GN_ECRYPTO;
    if (X509_sign(x, pkey, EVP_sha256()) <= 0) {
        goto out;
    }
    if (der_out) {
        int n = i2d_X509(x, NULL);
        uint8_t *d = n > 0 ? gn_malloc((size_t)n) : NULL;
        uint8_t *p = d;
        if (!d || i2d_X509(x, &p) != n) {
            gn_free(d);
            rc = d ? GN_ECRYPTO : GN_ENOMEM;
            goto out;
        }
        *der_out = d;
        *der_len = (size_t)n;
    }
    *cert_out = x;
    *key_out = pkey;
    x = NULL;
    pkey = NULL;
    rc = 0;
out:
    OPENSSL_free(dec);
    BN_free(bn);
    X509_free(x);
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    return rc;
}

/* ---- certificate verify ------------------------------------------------------ */

/* Checks @x (parsed from a peer) at @unix_now; see gni_p2ptls_cert_verify(). */
static int verify_x509(X509 *x, int64_t unix_now, gni_p2ptls_peer *out, char *diag,
                       size_t diag_len)
{
    int rc;
    P2PTLS_SIGNED_KEY *sk = NULL;
    uint8_t *msg = NULL, *reenc = NULL;
    size_t msg_len = 0;

    if (X509_get_version(x) != X509_VERSION_3) {
        put_diag(diag, diag_len, "certificate is not X.509 v3");
        return GN_EPROTO;
    }
    const ASN1_BIT_STRING *iuid = NULL, *suid = NULL;
    X509_get0_uids(x, &iuid, &suid);
    if (iuid || suid) {
        put_diag(diag, diag_len, "certificate carries the deprecated issuerUniqueID or "
                                 "subjectUniqueID");
        return GN_EPROTO;
    }
    time_t now = (time_t)unix_now;
    int c = ASN1_TIME_cmp_time_t(X509_get0_notBefore(x), now);
    if (c == -2 || c > 0) {
        put_diag(diag, diag_len, "certificate is not valid yet (notBefore is in the future)");
        return GN_EHANDSHAKE;
    }
    c = ASN1_TIME_cmp_time_t(X509_get0_notAfter(x), now);
    if (c == -2 || c < 0) {
        put_diag(diag, diag_len, "certificate has expired (notAfter is in the past)");
        return GN_EHANDSHAKE;
    }
    EVP_PKEY *cert_key = X509_get0_pubkey(x);
    if (!cert_key || X509_verify(x, cert_key) != 1) {
        put_diag(diag, diag_len, "certificate self-signature is invalid");
        return GN_EBADSIG;
    }
    /* extensions: exactly one libp2p extension; no unknown critical one */
    ASN1_OBJECT *oid = OBJ_txt2obj(GNI_P2PTLS_EXT_OID, 1);
    if (!oid) {
        put_diag(diag, diag_len, "out of memory (libp2p extension OID)");
        return GN_ENOMEM;
    }
    const ASN1_OCTET_STRING *val = NULL;
    int n = X509_get_ext_count(x);
    rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        X509_EXTENSION *ext = X509_get_ext(x, i);
        ASN1_OBJECT *eo = X509_EXTENSION_get_object(ext);
        if (OBJ_cmp(eo, oid) == 0) {
            if (val) {
                put_diag(diag, diag_len, "certificate has two libp2p public key extensions");
                rc = GN_EPROTO;
            }
            val = X509_EXTENSION_get_data(ext);
        } else if (X509_EXTENSION_get_critical(ext) && !X509_supported_extension(ext)) {
            char txt[80];
            OBJ_obj2txt(txt, sizeof txt, eo, 1);
            put_diag(diag, diag_len, "certificate has an unknown critical extension %s", txt);
            rc = GN_EPROTO;
        }
    }
    ASN1_OBJECT_free(oid);
    if (rc < 0) {
        return rc;
    }
    if (!val) {
        put_diag(diag, diag_len, "certificate has no libp2p public key extension (OID %s)",
                 GNI_P2PTLS_EXT_OID);
        return GN_EPROTO;
    }
    const unsigned char *p = ASN1_STRING_get0_data(val);
    long vlen = ASN1_STRING_length(val);
    sk = (P2PTLS_SIGNED_KEY *)ASN1_item_d2i(NULL, &p, vlen, SK_ITEM);
    int rlen = sk ? ASN1_item_i2d((ASN1_VALUE *)sk, &reenc, SK_ITEM) : -1;
    /* strict DER: the whole value, and it re-encodes to the same bytes */
    if (!sk || p != ASN1_STRING_get0_data(val) + vlen || rlen != vlen ||
        memcmp(reenc, ASN1_STRING_get0_data(val), (size_t)vlen) != 0) {
        put_diag(diag, diag_len, "libp2p public key extension is not a DER SignedKey");
        rc = GN_EPARSE;
        goto out;
    }
    size_t pb_len = (size_t)ASN1_STRING_length(sk->pubkey);
    if (pb_len > sizeof out->pubkey_pb) {
        put_diag(diag, diag_len, "host public key is too long");
        rc = GN_EBADKEY;
        goto out;
    }
    memcpy(out->pubkey_pb, ASN1_STRING_get0_data(sk->pubkey), pb_len);
    out->pubkey_pb_len = pb_len;
    rc = gn_pubkey_check(out->pubkey_pb, pb_len, &out->key_type);
    if (rc < 0) {
        put_diag(diag, diag_len, "host public key in the extension is malformed or of an "
                                 "unsupported type (%s)", gn_err_name(rc));
        rc = rc == GN_ENOMEM ? rc : GN_EBADKEY;
        goto out;
    }
    memset(out->ed25519, 0, sizeof out->ed25519);
    if (out->key_type == GN_KEY_ED25519 &&
        (rc = gn_pubkey_decode(out->pubkey_pb, pb_len, NULL, out->ed25519)) < 0) {
        put_diag(diag, diag_len, "Ed25519 host public key in the extension does not decode (%s)",
                 gn_err_name(rc));
        rc = GN_EBADKEY;
        goto out;
    }
    if ((rc = gn_peer_id_from_pubkey(out->pubkey_pb, pb_len, &out->peer)) < 0) {
        put_diag(diag, diag_len, "no peer ID derives from the host public key (%s)",
                 gn_err_name(rc));
        rc = GN_EBADKEY;
        goto out;
    }
    if ((rc = signed_message(x, &msg, &msg_len)) < 0) {
        put_diag(diag, diag_len, "certificate SubjectPublicKeyInfo cannot be encoded (%s)",
                 gn_err_name(rc));
        goto out;
    }
    rc = gn_pubkey_verify(out->pubkey_pb, pb_len, msg, msg_len,
                          ASN1_STRING_get0_data(sk->sig), (size_t)ASN1_STRING_length(sk->sig));
    if (rc < 0) {
        put_diag(diag, diag_len, "host key signature in the libp2p extension does not verify "
                                 "(%s)", gn_err_name(rc));
        rc = rc == GN_EBADKEY ? rc : GN_EBADSIG;
        goto out;
    }
    rc = 0;
out:
    OPENSSL_free(reenc);
    gn_free(msg);
    ASN1_item_free((ASN1_VALUE *)sk, SK_ITEM);
    return rc;
}

int gni_p2ptls_cert_verify(const uint8_t *der, size_t len, int64_t unix_now,
                           gni_p2ptls_peer *out, char *diag, size_t diag_len)
{
    if (!der || !out) {
        return GN_EINVAL;
    }
    if (diag && diag_len) {
        diag[0] = '\0';
    }
    memset(out, 0, sizeof *out);
    if (len > GNI_P2PTLS_MAX_CERT) {
        put_diag(diag, diag_len, "certificate of %zu bytes (over %d)", len, GNI_P2PTLS_MAX_CERT);
        return GN_ETOOBIG;
    }
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    int rc;
    if (!x || p != der + len) {
        put_diag(diag, diag_len, "not one DER X.509 certificate (%s)", x ? "trailing bytes" : ossl_reason());
        rc = GN_EPARSE;
    } else {
        rc = verify_x509(x, unix_now, out, diag, diag_len);
    }
    X509_free(x);
    ERR_clear_error();
    return rc;
}

/* ---- handshake engine ---------------------------------------------------------- */

struct gni_p2ptls {
    SSL_CTX *ctx;
    SSL *ssl;
    BIO *rbio, *wbio; /* owned by ssl */
    bool initiator;
    bool done;
    bool verified;   /* a certificate was checked (remote is set) */
    bool closed;     /* close_notify received */
    int err;
    bool has_expected;
    gn_peer_id expected;
    int64_t unix_now;
    gni_p2ptls_peer remote;
    char muxers[GNI_P2PTLS_MAX_MUXERS][GN_PROTOCOL_ID_MAX]; /* copies: the config is borrowed */
    size_t n_muxers;
    char early_muxer[GN_PROTOCOL_ID_MAX];
    /* record assembly in the transport phase */
    uint8_t hdr[5];
    size_t hdr_have;
    size_t body_left;
    uint8_t plain[GNI_P2PTLS_MAX_PLAIN];
    char diag[400];
};

static int set_err(gni_p2ptls *t, int code, const char *fmt, ...) GN_PRINTF(3, 4);
static int set_err(gni_p2ptls *t, int code, const char *fmt, ...)
{
    if (!t->err) {
        t->err = code;
        if (!t->diag[0]) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(t->diag, sizeof t->diag, fmt, ap);
            va_end(ap);
        }
    }
    return t->err;
}

/* Replaces OpenSSL's chain verification: one self-signed libp2p certificate. */
static int verify_cb(X509_STORE_CTX *sctx, void *arg)
{
    (void)arg;
    SSL *ssl = X509_STORE_CTX_get_ex_data(sctx, SSL_get_ex_data_X509_STORE_CTX_idx());
    gni_p2ptls *t = ssl ? SSL_get_app_data(ssl) : NULL;
    X509 *leaf = X509_STORE_CTX_get0_cert(sctx);
    if (!t || !leaf) {
        X509_STORE_CTX_set_error(sctx, X509_V_ERR_UNSPECIFIED);
        return 0;
    }
    STACK_OF(X509) *chain = X509_STORE_CTX_get0_untrusted(sctx);
    if (chain && sk_X509_num(chain) > 1) {
        set_err(t, GN_EPROTO, "peer sent %d certificates (exactly one allowed)", sk_X509_num(chain));
        X509_STORE_CTX_set_error(sctx, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    /* 6: the size cap gni_p2ptls_cert_verify() applies to DER input */
    int der_len = i2d_X509(leaf, NULL);
    if (der_len <= 0 || der_len > GNI_P2PTLS_MAX_CERT) {
        set_err(t, der_len <= 0 ? GN_EPARSE : GN_ETOOBIG,
                "peer certificate rejected: %d bytes of DER (at most %d)", der_len,
                GNI_P2PTLS_MAX_CERT);
        X509_STORE_CTX_set_error(sctx, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    char why[240] = "no reason given";
    int rc = verify_x509(leaf, t->unix_now, &t->remote, why, sizeof why);
    if (rc < 0) {
        set_err(t, rc, "peer certificate rejected: %s", why);
        X509_STORE_CTX_set_error(sctx, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    t->verified = true;
    if (t->has_expected && !gn_peer_id_equal(&t->expected, &t->remote.peer)) {
        char got[GN_PEER_ID_MAX_STRLEN], want[GN_PEER_ID_MAX_STRLEN];
        if (gn_peer_id_to_string(&t->remote.peer, got, sizeof got) < 0) {
            snprintf(got, sizeof got, "?");
        }
        if (gn_peer_id_to_string(&t->expected, want, sizeof want) < 0) {
            snprintf(want, sizeof want, "?");
        }
        set_err(t, GN_EPEERID, "peer ID mismatch: received %s, expected %s", got, want);
        X509_STORE_CTX_set_error(sctx, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    return 1;
}

/* both arrays are GN_PROTOCOL_ID_MAX bytes and the copies NUL-terminated */
static void set_early(gni_p2ptls *t, size_t idx)
{
    memcpy(t->early_muxer, t->muxers[idx], sizeof t->early_muxer);
}

static bool offered(const gni_p2ptls *t, const unsigned char *p, size_t len, size_t *idx)
{
    for (size_t i = 0; i < t->n_muxers; i++) {
        if (strlen(t->muxers[i]) == len && memcmp(t->muxers[i], p, len) == 0) {
            *idx = i;
            return true;
        }
    }
    return false;
}

/* Server: the client's first muxer we also have, else "libp2p" (inlined-muxer-negotiation.md). */
static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)arg;
    gni_p2ptls *t = SSL_get_app_data(ssl);
    if (!t) {
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    const unsigned char *libp2p = NULL;
    size_t lp_len = sizeof GNI_P2PTLS_ALPN - 1;
    for (unsigned int off = 0; off < inlen;) {
        unsigned int l = in[off];
        if (l == 0 || l > inlen - off - 1) {
            break; /* OpenSSL checked the list; be safe anyway */
        }
        const unsigned char *p = in + off + 1;
        size_t idx;
        if (offered(t, p, l, &idx)) {
            set_early(t, idx);
            *out = p;
            *outlen = (unsigned char)l;
            return SSL_TLSEXT_ERR_OK;
        }
        if (l == lp_len && memcmp(p, GNI_P2PTLS_ALPN, lp_len) == 0) {
            libp2p = p;
        }
        off += 1 + l;
    }
    if (libp2p) {
        *out = libp2p;
        *outlen = (unsigned char)lp_len;
        return SSL_TLSEXT_ERR_OK;
    }
    set_err(t, GN_ENEGOTIATION, "client offered no ALPN protocol we support (%s missing)",
            GNI_P2PTLS_ALPN);
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static int alpn_list(const gni_p2ptls *t, unsigned char *buf, size_t cap, size_t *len)
{
    size_t off = 0;
    for (size_t i = 0; i <= t->n_muxers; i++) {
        const char *s = i < t->n_muxers ? (const char *)t->muxers[i] : GNI_P2PTLS_ALPN;
        size_t l = strlen(s);
        if (l == 0 || l > 255 || off + 1 + l > cap) {
            return GN_EINVAL;
        }
        buf[off++] = (unsigned char)l;
        memcpy(buf + off, s, l);
        off += l;
    }
    *len = off;
    return 0;
}

/* Classifies a failed SSL call, unless a more precise error was set. */
static int ssl_fail(gni_p2ptls *t, int ssl_err)
{
    if (t->err) {
        return t->err;
    }
    if (!t->done) {
        return set_err(t, GN_EHANDSHAKE, "TLS handshake failed: %s",
                       ssl_err == SSL_ERROR_SYSCALL ? "unexpected end" : ossl_reason());
    }
    unsigned long e = ERR_peek_last_error();
    if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
        ERR_GET_REASON(e) == SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC) {
        return set_err(t, GN_EDECRYPT, "TLS record authentication failed: %s", ossl_reason());
    }
    return set_err(t, GN_EPROTO, "TLS protocol error: %s", ossl_reason());
}

int gni_p2ptls_ctx_new(const gn_identity *id, int64_t unix_now, void **out)
{
    if (!id || !out) {
        return GN_EINVAL;
    }
    void *cert = NULL, *key = NULL;
    int rc = gni_p2ptls_cert_new(id, unix_now, &cert, &key, NULL, NULL);
    if (rc < 0) {
        return rc;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
        !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ||
        SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1) {
        SSL_CTX_free(ctx);
        X509_free(cert);
        EVP_PKEY_free(key);
        ERR_clear_error();
        return GN_ECRYPTO;
    }
    X509_free(cert); /* the SSL_CTX holds references */
    EVP_PKEY_free(key);
    /*
     * Bound the Certificate message before parsing: one certificate of at
     * most GNI_P2PTLS_MAX_CERT bytes plus its framing; 2x leaves room for a
     * (refused, but named) second certificate. verify_cb checks the leaf.
     */
    SSL_CTX_set_max_cert_list(ctx, 2 * GNI_P2PTLS_MAX_CERT);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    SSL_CTX_set_cert_verify_callback(ctx, verify_cb, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, NULL); /* used by servers only */
    ERR_clear_error();
    *out = ctx;
    return 0;
}

void gni_p2ptls_ctx_free(void *ctx)
{
    SSL_CTX_free(ctx);
}

int gni_p2ptls_new(const gni_p2ptls_config *cfg, gni_p2ptls **out)
{
    if (!cfg || !cfg->identity || !out || (cfg->n_muxers && !cfg->muxers)) {
        return GN_EINVAL;
    }
    gni_p2ptls *t = gn_calloc(1, sizeof *t);
    if (!t) {
        return GN_ENOMEM;
    }
    int rc = GN_ECRYPTO;
    t->initiator = cfg->initiator;
    t->unix_now = cfg->unix_now;
    if (cfg->expected_peer) {
        t->has_expected = true;
        t->expected = *cfg->expected_peer;
    }
    for (size_t i = 0; i < cfg->n_muxers && t->n_muxers < GNI_P2PTLS_MAX_MUXERS; i++) {
        size_t l = cfg->muxers[i] ? strlen(cfg->muxers[i]) : 0;
        if (l > 0 && l < 256 && l < GN_PROTOCOL_ID_MAX) {
            memcpy(t->muxers[t->n_muxers++], cfg->muxers[i], l + 1);
        }
    }
    if (cfg->ssl_ctx) {
        if (!SSL_CTX_up_ref(cfg->ssl_ctx)) {
            goto fail;
        }
        t->ctx = cfg->ssl_ctx;
    } else if ((rc = gni_p2ptls_ctx_new(cfg->identity, cfg->unix_now, (void **)&t->ctx)) < 0) {
        goto fail;
    }
    rc = GN_ECRYPTO;
    if (!(t->ssl = SSL_new(t->ctx)) || !(t->rbio = BIO_new(BIO_s_mem())) ||
        !(t->wbio = BIO_new(BIO_s_mem()))) {
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        t->rbio = t->wbio = NULL;
        goto fail;
    }
    BIO_set_mem_eof_return(t->rbio, -1); /* empty = "retry", never EOF */
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    SSL_set_app_data(t->ssl, t);
    if (t->initiator) {
        unsigned char alpn[(GNI_P2PTLS_MAX_MUXERS + 1) * 256];
        size_t alen;
        if ((rc = alpn_list(t, alpn, sizeof alpn, &alen)) < 0) {
            goto fail;
        }
        rc = GN_ECRYPTO;
        if (SSL_set_alpn_protos(t->ssl, alpn, (unsigned int)alen) != 0) { /* 0 = success */
            goto fail;
        }
        SSL_set_connect_state(t->ssl);
        int r = SSL_do_handshake(t->ssl); /* writes the ClientHello */
        if (r != 1 && SSL_get_error(t->ssl, r) != SSL_ERROR_WANT_READ) {
            goto fail;
        }
    } else {
        SSL_set_accept_state(t->ssl);
    }
    ERR_clear_error();
    *out = t;
    return 0;
fail:
    gni_p2ptls_free(t);
    ERR_clear_error();
    return rc;
}

void gni_p2ptls_free(gni_p2ptls *t)
{
    if (!t) {
        return;
    }
    SSL_free(t->ssl); /* frees the BIOs */
    SSL_CTX_free(t->ctx);
    OPENSSL_cleanse(t->plain, sizeof t->plain);
    gn_free(t);
}

static size_t record_len(const uint8_t *h)
{
    return ((size_t)h[3] << 8) | h[4];
}

/*
 * True until this endpoint has processed the ServerHello (client) or
 * produced it (server): the records of a ClientHello, which may be split
 * over several records, are the ones that may carry 0x0301.
 */
static bool before_server_hello(const gni_p2ptls *t)
{
    switch (SSL_get_state(t->ssl)) {
    case TLS_ST_BEFORE:
    case TLS_ST_CW_CLNT_HELLO:
    case TLS_ST_SR_CLNT_HELLO:
        return true;
    default:
        return false;
    }
}

/*
 * RFC 8446 5.1 says legacy_record_version MUST be ignored by receivers; we
 * accept 0x0303 always and 0x0301 (what senders use for a ClientHello, in
 * every record of it) until the ServerHello was processed, and refuse the
 * rest: no real TLS 1.3 stack sends anything else, and a checked field
 * leaves no handshake byte an attacker can change unnoticed (docs/tls.md).
 */
static int record_version_ok(gni_p2ptls *t, const uint8_t *h, bool early)
{
    if (h[1] == 3 && (h[2] == 3 || (early && h[2] == 1))) {
        return 0;
    }
    return set_err(t, GN_EPROTO,
                   "TLS record with version 0x%02x%02x (0x0303 expected; 0x0301 only before "
                   "the ServerHello)", h[1], h[2]);
}

int gni_p2ptls_feed(gni_p2ptls *t, const uint8_t *in, size_t len, size_t *consumed)
{
    size_t off = 0;
    while (!t->err && !t->done && len - off >= 5) {
        size_t rl = record_len(in + off);
        if (rl > GNI_P2PTLS_MAX_RECORD) {
            set_err(t, GN_EFRAMESIZE, "TLS record of %zu bytes (over 2^14 + 256)", rl);
            break;
        }
        if (len - off < 5 + rl) {
            break;
        }
        if (record_version_ok(t, in + off, before_server_hello(t)) < 0) {
            break;
        }
        if (BIO_write(t->rbio, in + off, (int)(5 + rl)) != (int)(5 + rl)) {
            set_err(t, GN_ENOMEM, "out of memory");
            break;
        }
        off += 5 + rl;
        int r = SSL_do_handshake(t->ssl);
        if (r == 1) {
            t->done = true;
            if (t->initiator) {
                const unsigned char *sel = NULL;
                unsigned int sl = 0;
                size_t idx;
                SSL_get0_alpn_selected(t->ssl, &sel, &sl);
                if (sel && offered(t, sel, sl, &idx)) {
                    set_early(t, idx);
                }
            }
            if (!t->verified) {
                set_err(t, GN_EPROTO, "TLS handshake ended without a peer certificate");
            }
        } else {
            int e = SSL_get_error(t->ssl, r);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                ssl_fail(t, e);
            }
        }
    }
    ERR_clear_error();
    *consumed = off;
    return 0;
}

int gni_p2ptls_drain(gni_p2ptls *t, gn_buf *out)
{
    size_t pend = BIO_ctrl_pending(t->wbio);
    if (pend == 0) {
        return 0;
    }
    size_t room = gn_buf_left(out);
    if (room == 0) {
        return GN_ENOSPC;
    }
    size_t n = GNI_MIN(pend, room);
    int r = BIO_read(t->wbio, out->last, (int)n);
    ERR_clear_error();
    if (r <= 0) {
        return GN_EINTERNAL;
    }
    out->last += r;
    return r;
}

int gni_p2ptls_status(const gni_p2ptls *t)
{
    if (t->err) {
        return t->err;
    }
    return t->done ? 1 : 0;
}

const char *gni_p2ptls_diag(const gni_p2ptls *t)
{
    return t->diag;
}

int gni_p2ptls_remote(const gni_p2ptls *t, gni_p2ptls_peer *out)
{
    if (!t->verified && t->err != GN_EPEERID) {
        return GN_ESTATE;
    }
    if (!t->remote.pubkey_pb_len) {
        return GN_ESTATE;
    }
    *out = t->remote;
    return 0;
}

const char *gni_p2ptls_early_muxer(const gni_p2ptls *t)
{
    return t->early_muxer;
}

/* ---- transport phase ------------------------------------------------------------ */

/*
 * Moves the pending TLS output into @out. gni_p2ptls_open() keeps what is
 * pending between calls at most GNI_P2PTLS_MAX_PENDING bytes, so @cap (the
 * record plus GNI_P2PTLS_OVERHEAD) always suffices; the check stays as a
 * guard against an OpenSSL that writes more than we accounted for.
 */
static int take_output(gni_p2ptls *t, uint8_t *out, size_t cap)
{
    size_t pend = BIO_ctrl_pending(t->wbio);
    if (pend > cap) {
        return set_err(t, GN_EPROTO, "TLS output of %zu bytes pending (at most %zu fit): too "
                                     "many post-handshake messages to answer", pend, cap);
    }
    if (pend == 0) {
        return 0;
    }
    int r = BIO_read(t->wbio, out, (int)pend);
    return r == (int)pend ? r : set_err(t, GN_EINTERNAL, "memory BIO read failed");
}

int gni_p2ptls_seal(gni_p2ptls *t, const uint8_t *in, size_t len, uint8_t *out)
{
    if (!t->done || t->err || len == 0 || len > GNI_P2PTLS_MAX_PLAIN) {
        return t->err ? t->err : GN_ESTATE;
    }
    size_t w = 0;
    int r = SSL_write_ex(t->ssl, in, len, &w);
    int rc = r == 1 && w == len ? take_output(t, out, len + GNI_P2PTLS_OVERHEAD)
                                : ssl_fail(t, SSL_get_error(t->ssl, r));
    ERR_clear_error();
    return rc;
}

int gni_p2ptls_open(gni_p2ptls *t, const uint8_t *in, size_t len, size_t *consumed,
                    const uint8_t **plain, size_t *plain_len)
{
    *consumed = 0;
    *plain = NULL;
    *plain_len = 0;
    if (t->err) {
        return t->err;
    }
    size_t off = 0;
    if (t->hdr_have < 5) {
        size_t take = GNI_MIN(5 - t->hdr_have, len);
        memcpy(t->hdr + t->hdr_have, in, take);
        t->hdr_have += take;
        off += take;
        if (t->hdr_have < 5) {
            *consumed = off;
            return 0;
        }
        if (t->closed) {
            return set_err(t, GN_EPROTO, "TLS record after close_notify");
        }
        if (record_version_ok(t, t->hdr, false) < 0) {
            return t->err;
        }
        t->body_left = record_len(t->hdr);
        if (t->body_left > GNI_P2PTLS_MAX_RECORD) {
            return set_err(t, GN_EFRAMESIZE, "TLS record of %zu bytes (over 2^14 + 256)", t->body_left);
        }
        if (BIO_write(t->rbio, t->hdr, 5) != 5) {
            ERR_clear_error();
            return set_err(t, GN_ENOMEM, "out of memory (TLS record buffer)");
        }
    }
    size_t take = GNI_MIN(t->body_left, len - off);
    if (take > 0 && BIO_write(t->rbio, in + off, (int)take) != (int)take) {
        ERR_clear_error();
        return set_err(t, GN_ENOMEM, "out of memory (TLS record buffer)");
    }
    off += take;
    t->body_left -= take;
    *consumed = off;
    if (t->body_left > 0) {
        return 0;
    }
    t->hdr_have = 0; /* the record is complete in rbio: open it */
    size_t n = 0;
    int r = SSL_read_ex(t->ssl, t->plain, sizeof t->plain, &n);
    int rc = 0;
    if (r != 1) {
        int e = SSL_get_error(t->ssl, r);
        if (e == SSL_ERROR_ZERO_RETURN) {
            t->closed = true;
        } else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            rc = ssl_fail(t, e);
        }
    }
    /*
     * A KeyUpdate with update_requested makes OpenSSL write its answer into
     * the write BIO, which only gni_p2ptls_seal() empties: a peer that keeps
     * asking while we do not write would grow it without bound. RFC 8446
     * 4.6.3 lets an endpoint that is silent answer many requests with one
     * update; we allow GNI_P2PTLS_MAX_PENDING bytes (one answer written,
     * OpenSSL defers the next to its next read or write: two in all) and
     * end the connection past that.
     */
    size_t pend = BIO_ctrl_pending(t->wbio);
    if (rc == 0 && pend > GNI_P2PTLS_MAX_PENDING) {
        rc = set_err(t, GN_EPROTO, "peer sent more KeyUpdate requests than we answer before "
                                   "writing (%zu bytes of answers pending, at most %d)",
                     pend, GNI_P2PTLS_MAX_PENDING);
    }
    ERR_clear_error();
    if (rc == 0 && r == 1) {
        *plain = t->plain;
        *plain_len = n;
    }
    return rc;
}

bool gni_p2ptls_partial(const gni_p2ptls *t)
{
    return t->hdr_have > 0;
}

int gni_p2ptls_seal_close(gni_p2ptls *t, uint8_t *out)
{
    if (!t->done) {
        return GN_ESTATE;
    }
    (void)SSL_shutdown(t->ssl); /* queues close_notify; the answer is not awaited */
    int rc = take_output(t, out, GNI_P2PTLS_OVERHEAD);
    ERR_clear_error();
    return rc;
}

bool gni_p2ptls_closed(const gni_p2ptls *t)
{
    return t->closed;
}
