/*
 * TLS over OpenSSL 3 memory BIOs, bytes in, bytes out: the engine shared by
 * the components that put TLS under their own framing. Contract and
 * behaviour: gni_tlsbio.h.
 *
 * Each link has one SSL object between two memory BIOs: the adapter's
 * ciphertext goes into the read BIO, what OpenSSL writes collects in the
 * write BIO until drained. OpenSSL does all the cryptography; this file only
 * moves bytes, keeps the plaintext written before the handshake ends, and
 * turns OpenSSL's error queue into one gn_err and a diagnostic line.
 */
#include "gni_tlsbio.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "golemnet/err.h"
#include "golemnet/log.h"

#define TLS_HANDSHAKE_RECORD 0x16u /* a TLS record of type handshake opens every ClientHello */
#define TLS_HOST_MAX 253u          /* longest DNS name */
#define TLS_CERT_DAYS 365L

struct gni_tlsbio_ctx {
    SSL_CTX *ssl;
    bool server;
    uint8_t plain_first;       /* see gni_tlsbio_ctx_config */
    const char *plain_diag;
    const char *verify_hint;
    X509 *leaf; /* server: our leaf certificate */
    uint8_t sha1[GNI_TLSBIO_SHA1_LEN];
};

struct gni_tlsbio {
    gni_tlsbio_ctx *ctx;
    SSL *ssl;
    BIO *rbio, *wbio; /* owned by ssl */
    bool done;        /* handshake completed */
    bool closed;      /* close_notify received */
    bool seen;        /* some ciphertext was fed */
    uint8_t first;    /* the first byte fed */
    int err;
    uint8_t *early; /* plaintext written before the handshake ended */
    size_t early_len, early_cap;
    char diag[256];
};

/* ---- diagnostics ------------------------------------------------------- */

/* OpenSSL's reason for the newest error in the queue, or @dflt. */
static const char *tls_reason(const char *dflt)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    return r ? r : dflt;
}

static void put_diag(char *diag, size_t len, const char *what)
{
    if (diag && len)
        snprintf(diag, len, "TLS: %s: %s", what, tls_reason("unknown OpenSSL error"));
}

/* Sets the sticky error @code with the diagnostic "TLS: " @a @b @c. */
static int tls_set(gni_tlsbio *t, int code, const char *a, const char *b, const char *c)
{
    if (t->err)
        return t->err;
    t->err = code;
    snprintf(t->diag, sizeof t->diag, "TLS: %s%s%s", a, b ? b : "", c ? c : "");
    return code;
}

/* Classifies a failed SSL call (@ssl_err from SSL_get_error). */
static int tls_fail(gni_tlsbio *t, int ssl_err)
{
    if (!t->done) {
        if (t->ctx->server && t->seen && t->ctx->plain_first && t->first == t->ctx->plain_first &&
            t->ctx->plain_diag)
            return tls_set(t, GN_EHANDSHAKE, t->ctx->plain_diag, NULL, NULL);
        if (t->ctx->server && t->seen && t->first != TLS_HANDSHAKE_RECORD)
            return tls_set(t, GN_EHANDSHAKE, "the peer does not speak TLS: ",
                           tls_reason("not a TLS record"), NULL);
        long v = SSL_get_verify_result(t->ssl);
        if (!t->ctx->server && v != X509_V_OK)
            return tls_set(t, GN_EHANDSHAKE, "certificate verification failed: ",
                           X509_verify_cert_error_string(v),
                           t->ctx->verify_hint ? t->ctx->verify_hint
                                                : " (trust its issuer through a CA file; "
                                                  "tls_skip_verify disables the check, tests "
                                                  "only)");
        return tls_set(t, GN_EHANDSHAKE, "handshake failed: ",
                       tls_reason(ssl_err == SSL_ERROR_SYSCALL ? "unexpected end" : "error"),
                       NULL);
    }
    unsigned long e = ERR_peek_last_error();
    if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
        ERR_GET_REASON(e) == SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC)
        return tls_set(t, GN_EDECRYPT, "record authentication failed: ", tls_reason(""), NULL);
    return tls_set(t, GN_EPROTO, "protocol error: ", tls_reason("error"), NULL);
}

/* ---- certificates --------------------------------------------------------- */

static bool host_is_dns(const char *h)
{
    size_t n = strlen(h);
    if (n == 0 || n > TLS_HOST_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = h[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_'))
            return false;
    }
    return true;
}

static bool host_is_ip(const char *h)
{
    ASN1_OCTET_STRING *ip = a2i_IPADDRESS(h);
    ASN1_OCTET_STRING_free(ip);
    return ip != NULL;
}

static int add_ext(X509 *x, X509V3_CTX *v3, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, v3, nid, value);
    if (!ext)
        return -1;
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

/* A self-signed ECDSA P-256 certificate for @host (CA, serverAuth, the
 * host as a SAN): the usual shape of a generated server certificate. */
static int tls_self_signed(const char *host, X509 **xo, EVP_PKEY **ko)
{
    bool ip = host && host_is_ip(host);
    if (!host || (!ip && !host_is_dns(host)))
        host = "localhost";
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    BIGNUM *bn = NULL;
    int rc = GN_ECRYPTO;
    if (!k || !x)
        goto out;
    uint8_t serial[16];
    if (RAND_bytes(serial, sizeof serial) != 1)
        goto out;
    serial[0] &= 0x7f; /* a positive serial */
    bn = BN_bin2bn(serial, sizeof serial, NULL);
    if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) || !X509_set_version(x, 2) ||
        !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), TLS_CERT_DAYS * 24 * 3600) ||
        !X509_set_pubkey(x, k))
        goto out;
    X509_NAME *nm = X509_get_subject_name(x);
    if (!X509_NAME_add_entry_by_txt(nm, "O", MBSTRING_ASC, (const unsigned char *)"golemnet", -1,
                                    -1, 0) ||
        !X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)host, -1, -1,
                                    0) ||
        !X509_set_issuer_name(x, nm))
        goto out;
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    char san[TLS_HOST_MAX + 8];
    snprintf(san, sizeof san, "%s:%s", ip ? "IP" : "DNS", host);
    if (add_ext(x, &v3, NID_basic_constraints, "critical,CA:TRUE") < 0 ||
        add_ext(x, &v3, NID_key_usage, "critical,digitalSignature,keyCertSign") < 0 ||
        add_ext(x, &v3, NID_ext_key_usage, "serverAuth") < 0 ||
        add_ext(x, &v3, NID_subject_key_identifier, "hash") < 0 ||
        add_ext(x, &v3, NID_subject_alt_name, san) < 0)
        goto out;
    if (X509_sign(x, k, EVP_sha256()) <= 0)
        goto out;
    *xo = x;
    *ko = k;
    x = NULL;
    k = NULL;
    rc = 0;
out:
    BN_free(bn);
    X509_free(x);
    EVP_PKEY_free(k);
    return rc;
}

/* Loads the server's leaf, chain and key from PEM bytes into @c. */
static int tls_load_pem(gni_tlsbio_ctx *c, const gni_tlsbio_ctx_config *cfg, char *diag, size_t dl)
{
    int rc = GN_EBADKEY;
    BIO *cb = BIO_new_mem_buf(cfg->cert_pem.base, (int)cfg->cert_pem.len);
    BIO *kb = BIO_new_mem_buf(cfg->key_pem.base, (int)cfg->key_pem.len);
    EVP_PKEY *k = NULL;
    if (!cb || !kb) {
        rc = GN_ENOMEM;
        goto out;
    }
    c->leaf = PEM_read_bio_X509(cb, NULL, NULL, NULL);
    if (!c->leaf) {
        put_diag(diag, dl, "no certificate in the certificate PEM");
        goto out;
    }
    /* bounded: the PEM's length */
    for (X509 *ch; (ch = PEM_read_bio_X509(cb, NULL, NULL, NULL)) != NULL;) {
        if (!SSL_CTX_add0_chain_cert(c->ssl, ch)) {
            X509_free(ch);
            put_diag(diag, dl, "chain certificate refused");
            goto out;
        }
    }
    ERR_clear_error(); /* the loop ends on "no start line" */
    k = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);
    if (!k) {
        put_diag(diag, dl, "no private key in the key PEM");
        goto out;
    }
    if (SSL_CTX_use_certificate(c->ssl, c->leaf) != 1 || SSL_CTX_use_PrivateKey(c->ssl, k) != 1 ||
        SSL_CTX_check_private_key(c->ssl) != 1) {
        put_diag(diag, dl, "the key does not match the certificate");
        goto out;
    }
    rc = 0;
out:
    EVP_PKEY_free(k);
    BIO_free(cb);
    BIO_free(kb);
    return rc;
}

static int tls_load_ca(gni_tlsbio_ctx *c, gn_slice pem, char *diag, size_t dl)
{
    BIO *b = BIO_new_mem_buf(pem.base, (int)pem.len);
    if (!b)
        return GN_ENOMEM;
    X509_STORE *st = SSL_CTX_get_cert_store(c->ssl);
    unsigned n = 0;
    int rc = 0;
    /* bounded: the PEM's length */
    for (X509 *x; (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL; X509_free(x)) {
        if (X509_STORE_add_cert(st, x) != 1) {
            put_diag(diag, dl, "CA certificate refused");
            rc = GN_EBADKEY;
        }
        n++;
    }
    BIO_free(b);
    if (rc == 0 && n == 0) {
        put_diag(diag, dl, "no certificate in the CA PEM");
        rc = GN_EBADKEY;
    }
    ERR_clear_error();
    return rc;
}

/* ---- contexts ------------------------------------------------------------- */

int gni_tlsbio_ctx_new(const gni_tlsbio_ctx_config *cfg, gni_tlsbio_ctx **out, char *diag,
                       size_t dl)
{
    if (diag && dl)
        diag[0] = '\0';
    if (!cfg || !out || (cfg->cert_pem.len == 0) != (cfg->key_pem.len == 0) ||
        cfg->cert_pem.len > INT_MAX || cfg->key_pem.len > INT_MAX || cfg->ca_pem.len > INT_MAX)
        return GN_EINVAL;
    ERR_clear_error();
    gni_tlsbio_ctx *c = gn_calloc(1, sizeof *c);
    if (!c)
        return GN_ENOMEM;
    c->server = cfg->server;
    c->plain_first = cfg->plain_first;
    c->plain_diag = cfg->plain_diag;
    c->verify_hint = cfg->verify_hint;
    int rc = GN_ENOMEM;
    c->ssl = SSL_CTX_new(cfg->server ? TLS_server_method() : TLS_client_method());
    if (!c->ssl)
        goto fail;
    /* Go's crypto/tls defaults: TLS 1.2 .. 1.3, no renegotiation, no resumption */
    if (!SSL_CTX_set_min_proto_version(c->ssl, TLS1_2_VERSION) ||
        !SSL_CTX_set_max_proto_version(c->ssl, TLS1_3_VERSION))
        goto fail;
    SSL_CTX_set_options(c->ssl, SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_session_cache_mode(c->ssl, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_mode(c->ssl, SSL_MODE_RELEASE_BUFFERS);
    if (cfg->server) {
        SSL_CTX_set_num_tickets(c->ssl, 0);
        SSL_CTX_set_verify(c->ssl, SSL_VERIFY_NONE, NULL); /* no client certificates asked */
        if (cfg->cert_pem.len) {
            rc = tls_load_pem(c, cfg, diag, dl);
        } else {
            EVP_PKEY *k = NULL;
            rc = tls_self_signed(cfg->host, &c->leaf, &k);
            if (rc == 0 && (SSL_CTX_use_certificate(c->ssl, c->leaf) != 1 ||
                            SSL_CTX_use_PrivateKey(c->ssl, k) != 1))
                rc = GN_ECRYPTO;
            EVP_PKEY_free(k);
            if (rc < 0)
                put_diag(diag, dl, "cannot generate a self-signed certificate");
        }
        if (rc < 0)
            goto fail;
        unsigned len = 0;
        if (X509_digest(c->leaf, EVP_sha1(), c->sha1, &len) != 1 || len != GNI_TLSBIO_SHA1_LEN) {
            rc = GN_ECRYPTO;
            goto fail;
        }
    } else if (cfg->skip_verify) {
        SSL_CTX_set_verify(c->ssl, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_CTX_set_verify(c->ssl, SSL_VERIFY_PEER, NULL);
        if (cfg->ca_pem.len) {
            rc = tls_load_ca(c, cfg->ca_pem, diag, dl);
            if (rc < 0)
                goto fail;
        } else if (SSL_CTX_set_default_verify_paths(c->ssl) != 1) {
            ERR_clear_error(); /* no system store: every verification fails, clearly */
        }
    }
    ERR_clear_error(); /* e.g. a2i_IPADDRESS's refusal of a DNS name */
    *out = c;
    return 0;
fail:
    gni_tlsbio_ctx_free(c);
    ERR_clear_error();
    return rc;
}

void gni_tlsbio_ctx_free(gni_tlsbio_ctx *ctx)
{
    if (!ctx)
        return;
    X509_free(ctx->leaf);
    SSL_CTX_free(ctx->ssl);
    gn_free(ctx);
}

const uint8_t *gni_tlsbio_ctx_cert_sha1(const gni_tlsbio_ctx *ctx)
{
    return ctx && ctx->server ? ctx->sha1 : NULL;
}

int gni_tlsbio_ctx_cert_pem(const gni_tlsbio_ctx *ctx, gn_buf *out)
{
    if (!ctx || !ctx->server || !out)
        return GN_EINVAL;
    BIO *b = BIO_new(BIO_s_mem());
    if (!b)
        return GN_ENOMEM;
    int rc = GN_ENOMEM;
    char *p = NULL;
    if (PEM_write_bio_X509(b, ctx->leaf) == 1) {
        long n = BIO_get_mem_data(b, &p);
        if (n > 0 && (size_t)n > gn_buf_left(out)) {
            rc = GN_ENOSPC;
        } else if (n > 0) {
            memcpy(out->last, p, (size_t)n);
            out->last += n;
            rc = (int)n;
        }
    }
    BIO_free(b);
    ERR_clear_error();
    return rc;
}

/* ---- links ---------------------------------------------------------------- */

int gni_tlsbio_new(gni_tlsbio_ctx *ctx, const char *peer_host, gni_tlsbio **out)
{
    if (!ctx || !out)
        return GN_EINVAL;
    ERR_clear_error();
    gni_tlsbio *t = gn_calloc(1, sizeof *t);
    if (!t)
        return GN_ENOMEM;
    t->ctx = ctx;
    t->ssl = SSL_new(ctx->ssl);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->rbio || !t->wbio) {
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        t->rbio = t->wbio = NULL;
        gni_tlsbio_free(t);
        return GN_ENOMEM;
    }
    /* an empty read BIO means "more later", not end of stream */
    BIO_set_mem_eof_return(t->rbio, -1);
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    int rc = 0;
    if (ctx->server) {
        SSL_set_accept_state(t->ssl);
    } else {
        SSL_set_connect_state(t->ssl);
        if (peer_host && peer_host[0]) {
            X509_VERIFY_PARAM *vp = SSL_get0_param(t->ssl);
            if (host_is_ip(peer_host)) {
                if (X509_VERIFY_PARAM_set1_ip_asc(vp, peer_host) != 1)
                    rc = GN_EINVAL;
            } else if (SSL_set_tlsext_host_name(t->ssl, peer_host) != 1 ||
                       X509_VERIFY_PARAM_set1_host(vp, peer_host, 0) != 1) {
                rc = GN_EINVAL;
            }
        }
        if (rc == 0) {
            int r = SSL_do_handshake(t->ssl); /* queues the ClientHello */
            if (r != 1 && SSL_get_error(t->ssl, r) != SSL_ERROR_WANT_READ)
                rc = GN_ENOMEM;
        }
    }
    ERR_clear_error();
    if (rc < 0) {
        gni_tlsbio_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

void gni_tlsbio_free(gni_tlsbio *t)
{
    if (!t)
        return;
    SSL_free(t->ssl); /* frees the BIOs */
    gn_free(t->early);
    gn_free(t);
}

static int tls_write_now(gni_tlsbio *t, const uint8_t *in, size_t len)
{
    size_t w = 0;
    ERR_clear_error();
    if (SSL_write_ex(t->ssl, in, len, &w) == 1 && w == len)
        return 0;
    return tls_fail(t, SSL_get_error(t->ssl, 0));
}

static int tls_advance(gni_tlsbio *t)
{
    if (t->done)
        return 0;
    ERR_clear_error();
    int r = SSL_do_handshake(t->ssl);
    if (r != 1) {
        int e = SSL_get_error(t->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            return 0;
        return tls_fail(t, e);
    }
    t->done = true;
    int rc = 0;
    if (t->early_len)
        rc = tls_write_now(t, t->early, t->early_len);
    gn_free(t->early);
    t->early = NULL;
    t->early_len = t->early_cap = 0;
    return rc;
}

int gni_tlsbio_feed(gni_tlsbio *t, const uint8_t *in, size_t len)
{
    if (!t || (!in && len))
        return GN_EINVAL;
    if (t->err)
        return t->err;
    if (len && !t->seen) {
        t->seen = true;
        t->first = in[0];
    }
    /* bounded: len shrinks by at least one byte each pass */
    while (len) {
        int n = BIO_write(t->rbio, in, len > INT_MAX ? INT_MAX : (int)len);
        if (n <= 0)
            return tls_set(t, GN_ENOMEM, "cannot buffer received bytes", NULL, NULL);
        in += n;
        len -= (size_t)n;
    }
    return tls_advance(t);
}

int gni_tlsbio_read(gni_tlsbio *t, uint8_t *out, size_t cap)
{
    if (!t || (!out && cap))
        return GN_EINVAL;
    if (t->err)
        return t->err;
    if (t->closed)
        return GN_EEOF;
    if (!t->done || cap == 0)
        return 0;
    if (cap > INT_MAX)
        cap = INT_MAX;
    size_t got = 0;
    ERR_clear_error();
    if (SSL_read_ex(t->ssl, out, cap, &got) == 1)
        return (int)got;
    int e = SSL_get_error(t->ssl, 0);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    if (e == SSL_ERROR_ZERO_RETURN) {
        t->closed = true;
        snprintf(t->diag, sizeof t->diag, "TLS: the peer closed the session (close_notify)");
        return GN_EEOF;
    }
    return tls_fail(t, e);
}

int gni_tlsbio_write(gni_tlsbio *t, const uint8_t *in, size_t len)
{
    if (!t || (!in && len))
        return GN_EINVAL;
    if (t->err)
        return t->err;
    if (len == 0)
        return 0;
    if (t->done)
        return tls_write_now(t, in, len);
    if (len > GNI_TLSBIO_EARLY_MAX - t->early_len)
        return GN_EAGAIN;
    if (t->early_len + len > t->early_cap) {
        size_t cap = t->early_cap ? t->early_cap : 4096;
        while (cap < t->early_len + len) /* bounded: doubles up to GNI_TLSBIO_EARLY_MAX */
            cap *= 2;
        if (cap > GNI_TLSBIO_EARLY_MAX)
            cap = GNI_TLSBIO_EARLY_MAX;
        uint8_t *p = gn_realloc(t->early, cap);
        if (!p)
            return GN_ENOMEM;
        t->early = p;
        t->early_cap = cap;
    }
    memcpy(t->early + t->early_len, in, len);
    t->early_len += len;
    return 0;
}

size_t gni_tlsbio_pending(const gni_tlsbio *t) { return t ? BIO_ctrl_pending(t->wbio) : 0; }

size_t gni_tlsbio_drain(gni_tlsbio *t, gn_buf *out)
{
    if (!t || !out)
        return 0;
    size_t room = gn_buf_left(out), moved = 0;
    /* bounded: each pass moves at least one byte or stops */
    while (room > moved && BIO_ctrl_pending(t->wbio) > 0) {
        size_t want = room - moved;
        int n = BIO_read(t->wbio, out->last, want > INT_MAX ? INT_MAX : (int)want);
        if (n <= 0)
            break;
        out->last += n;
        moved += (size_t)n;
    }
    return moved;
}

int gni_tlsbio_eof(gni_tlsbio *t)
{
    if (!t)
        return GN_EINVAL;
    if (t->err)
        return t->err;
    if (t->closed)
        return 0;
    if (!t->done)
        return tls_set(t, GN_EEOF, "the peer closed the link during the TLS handshake",
                       t->ctx->server ? NULL : " (does the acceptor run TLS?)", NULL);
    if (BIO_ctrl_pending(t->rbio) > 0 || SSL_has_pending(t->ssl))
        return tls_set(t, GN_EEOF, "the stream ended inside a record (truncated)", NULL, NULL);
    return 0;
}

bool gni_tlsbio_done(const gni_tlsbio *t) { return t && t->done; }

int gni_tlsbio_peer_sha1(const gni_tlsbio *t, uint8_t sha1[GNI_TLSBIO_SHA1_LEN])
{
    if (!t || !sha1)
        return GN_EINVAL;
    if (!t->done)
        return GN_ESTATE;
    X509 *x = SSL_get0_peer_certificate(t->ssl);
    if (!x)
        return GN_ENOTFOUND;
    unsigned len = 0;
    int ok = X509_digest(x, EVP_sha1(), sha1, &len) == 1 && len == GNI_TLSBIO_SHA1_LEN;
    ERR_clear_error();
    return ok ? 0 : GN_ECRYPTO;
}

int gni_tlsbio_error(const gni_tlsbio *t) { return t ? t->err : GN_EINVAL; }

const char *gni_tlsbio_diag(const gni_tlsbio *t) { return t ? t->diag : ""; }

const char *gni_tlsbio_version(const gni_tlsbio *t)
{
    return t && t->done ? SSL_get_version(t->ssl) : "";
}
