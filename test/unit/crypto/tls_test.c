/*
 * libp2p /tls/1.0.0 core (layers/crypto/tls/tls.c): certificate vectors
 * from js-libp2p and from libp2p/specs tls/tls.md (in shared/vectors/tls),
 * our certificates for every key type, rejected certificates, two cores back
 * to back in memory (early muxer, peer ID mismatch, records, close_notify,
 * tampering, split ClientHello), and an OpenSSL client against the core's
 * server (KeyUpdate flood, no certificate, two certificates, TLS 1.2,
 * oversize certificate).
 * Spec: libp2p/specs tls/tls.md. Vectors: test/data/tls/js_*.txt, made by
 * @libp2p/tls 3.1.10's generateCertificate (test/interop/js/tls_gen_certs.mjs).
 */
#include "tls.h"

#include "golemnet/golemnet.h"
#include "gn_test.h"

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- js vectors ------------------------------------------------------------ */

typedef struct vec {
    long long gen_time;
    uint8_t der[4096];
    size_t der_len;
    char peer[GN_PEER_ID_MAX_STRLEN];
} vec;

static int load_vec(const char *name, vec *v)
{
    const char *src = getenv("GN_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/test/data/tls/js_%s.txt", src ? src : "..", name);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    static char hex[9000];
    int ok = fscanf(f, "%lld %8999s %127s", &v->gen_time, hex, v->peer) == 3;
    fclose(f);
    long n = ok ? gn_test_unhex(hex, v->der, sizeof v->der) : -1;
    if (n <= 0)
        return -1;
    v->der_len = (size_t)n;
    return 0;
}

static void check_js_vector(const char *name, gn_key_type type)
{
    vec v;
    if (load_vec(name, &v) < 0)
        SKIP("test/data/tls vectors not found (GN_SOURCE_DIR)");
    gni_p2ptls_peer p;
    char diag[256];
    CHECK_OK(gni_p2ptls_cert_verify(v.der, v.der_len, v.gen_time + 60, &p, diag, sizeof diag));
    CHECK_EQ(p.key_type, type);
    char s[GN_PEER_ID_MAX_STRLEN];
    CHECK(gn_peer_id_to_string(&p.peer, s, sizeof s) > 0);
    CHECK_STR(s, v.peer);
    /* js backdates notBefore by one hour and gives 100 years */
    CHECK_EQ(gni_p2ptls_cert_verify(v.der, v.der_len, v.gen_time - 7200, &p, diag, sizeof diag),
             GN_EHANDSHAKE);
    CHECK(strstr(diag, "not valid yet") != NULL);
    CHECK_EQ(gni_p2ptls_cert_verify(v.der, v.der_len, v.gen_time + 101LL * 365 * 86400, &p, diag,
                                    sizeof diag),
             GN_EHANDSHAKE);
    CHECK(strstr(diag, "expired") != NULL);
    /* any changed byte of the certificate is refused */
    size_t refused = 0;
    for (size_t k = 0; k < v.der_len; k++) {
        uint8_t d[4096];
        memcpy(d, v.der, v.der_len);
        d[k] ^= 0x01;
        if (gni_p2ptls_cert_verify(d, v.der_len, v.gen_time + 60, &p, NULL, 0) < 0)
            refused++;
    }
    printf("# %s: %zu of %zu flipped bytes refused\n", name, refused, v.der_len);
    /* the self-signature covers the TBS part, DER parsing the rest */
    CHECK_EQ(refused, v.der_len);
}

GN_TEST(js_vector_ed25519)
{
    check_js_vector("ed25519", GN_KEY_ED25519);
}

GN_TEST(js_vector_secp256k1)
{
    check_js_vector("secp256k1", GN_KEY_SECP256K1);
}

GN_TEST(js_vector_rsa)
{
    check_js_vector("rsa", GN_KEY_RSA);
}

/* ---- our certificates ------------------------------------------------------- */

#define NOW 1796488952LL /* 2026-12-05 */

static void roundtrip(gn_key_type type, unsigned bits)
{
    gn_identity *id;
    CHECK_OK(gn_identity_generate_type(type, bits, &id));
    void *x, *k;
    uint8_t *der;
    size_t len;
    CHECK_OK(gni_p2ptls_cert_new(id, NOW, &x, &k, &der, &len));
    gni_p2ptls_peer p;
    char diag[256];
    CHECK_OK(gni_p2ptls_cert_verify(der, len, NOW, &p, diag, sizeof diag));
    gn_peer_id want;
    gn_identity_peer_id(id, &want);
    CHECK(gn_peer_id_equal(&p.peer, &want));
    CHECK_EQ(p.key_type, type);
    /* the extension is critical and the only one (js-libp2p reads extensions[0]) */
    CHECK_EQ(X509_get_ext_count(x), 1);
    CHECK(X509_EXTENSION_get_critical(X509_get_ext(x, 0)));
    /* trailing bytes are refused */
    uint8_t *d2 = malloc(len + 1);
    memcpy(d2, der, len);
    d2[len] = 0;
    CHECK_EQ(gni_p2ptls_cert_verify(d2, len + 1, NOW, &p, NULL, 0), GN_EPARSE);
    CHECK_EQ(gni_p2ptls_cert_verify(d2, len / 2, NOW, &p, NULL, 0), GN_EPARSE);
    free(d2);
    gn_free(der);
    X509_free(x);
    EVP_PKEY_free(k);
    gn_identity_free(id);
}

GN_TEST(own_certificate_every_key_type)
{
    roundtrip(GN_KEY_ED25519, 0);
    roundtrip(GN_KEY_SECP256K1, 0);
    roundtrip(GN_KEY_ECDSA, 0);
    roundtrip(GN_KEY_RSA, 2048);
}

/* Re-signs @x with @k and returns its DER (malloc'd). */
static uint8_t *resign(X509 *x, EVP_PKEY *k, size_t *len)
{
    if (X509_sign(x, k, EVP_sha256()) <= 0)
        return NULL;
    int n = i2d_X509(x, NULL);
    uint8_t *d = malloc((size_t)n), *p = d;
    i2d_X509(x, &p);
    *len = (size_t)n;
    return d;
}

GN_TEST(certificate_without_extension_refused)
{
    gn_identity *id;
    CHECK_OK(gn_identity_from_int_seed(1, &id));
    void *xv, *k;
    CHECK_OK(gni_p2ptls_cert_new(id, NOW, &xv, &k, NULL, NULL));
    X509 *x = xv;
    X509_EXTENSION_free(X509_delete_ext(x, 0));
    size_t len;
    uint8_t *d = resign(x, k, &len);
    CHECK(d != NULL);
    gni_p2ptls_peer p;
    char diag[256];
    CHECK_EQ(gni_p2ptls_cert_verify(d, len, NOW, &p, diag, sizeof diag), GN_EPROTO);
    CHECK(strstr(diag, "no libp2p public key extension") != NULL);
    free(d);
    X509_free(x);
    EVP_PKEY_free(k);
    gn_identity_free(id);
}

GN_TEST(unknown_critical_extension_refused_noncritical_ignored)
{
    gn_identity *id;
    CHECK_OK(gn_identity_from_int_seed(1, &id));
    void *xv, *k;
    CHECK_OK(gni_p2ptls_cert_new(id, NOW, &xv, &k, NULL, NULL));
    X509 *x = xv;
    ASN1_OBJECT *o = OBJ_txt2obj("1.3.6.1.4.1.99999.1", 1);
    ASN1_OCTET_STRING *v = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING_set(v, (const unsigned char *)"\x05\x00", 2);
    X509_EXTENSION *e = X509_EXTENSION_create_by_OBJ(NULL, o, 0, v);
    CHECK(X509_add_ext(x, e, -1));
    size_t len;
    uint8_t *d = resign(x, k, &len);
    gni_p2ptls_peer p;
    char diag[256];
    CHECK_OK(gni_p2ptls_cert_verify(d, len, NOW, &p, diag, sizeof diag));
    free(d);
    X509_EXTENSION_set_critical(X509_get_ext(x, 1), 1);
    d = resign(x, k, &len);
    CHECK_EQ(gni_p2ptls_cert_verify(d, len, NOW, &p, diag, sizeof diag), GN_EPROTO);
    CHECK(strstr(diag, "unknown critical extension 1.3.6.1.4.1.99999.1") != NULL);
    free(d);
    X509_EXTENSION_free(e);
    ASN1_OCTET_STRING_free(v);
    ASN1_OBJECT_free(o);
    X509_free(x);
    EVP_PKEY_free(k);
    gn_identity_free(id);
}

GN_TEST(wrong_host_signature_refused)
{
    /* cert B carries A's extension: the host key signed A's certificate key */
    gn_identity *id;
    CHECK_OK(gn_identity_from_int_seed(1, &id));
    void *xa, *ka, *xb, *kb;
    CHECK_OK(gni_p2ptls_cert_new(id, NOW, &xa, &ka, NULL, NULL));
    CHECK_OK(gni_p2ptls_cert_new(id, NOW, &xb, &kb, NULL, NULL));
    X509_EXTENSION_free(X509_delete_ext(xb, 0));
    CHECK(X509_add_ext(xb, X509_get_ext(xa, 0), -1));
    size_t len;
    uint8_t *d = resign(xb, kb, &len);
    gni_p2ptls_peer p;
    char diag[256];
    CHECK_EQ(gni_p2ptls_cert_verify(d, len, NOW, &p, diag, sizeof diag), GN_EBADSIG);
    CHECK(strstr(diag, "signature in the libp2p extension does not verify") != NULL);
    /* and a certificate signed by another key fails its self-signature */
    free(d);
    d = resign(xb, ka, &len);
    CHECK_EQ(gni_p2ptls_cert_verify(d, len, NOW, &p, diag, sizeof diag), GN_EBADSIG);
    CHECK(strstr(diag, "self-signature") != NULL);
    free(d);
    X509_free(xa);
    X509_free(xb);
    EVP_PKEY_free(ka);
    EVP_PKEY_free(kb);
    gn_identity_free(id);
}

GN_TEST(garbage_refused)
{
    gni_p2ptls_peer p;
    uint8_t junk[64];
    memset(junk, 0x30, sizeof junk);
    CHECK_EQ(gni_p2ptls_cert_verify(junk, sizeof junk, NOW, &p, NULL, 0), GN_EPARSE);
    CHECK_EQ(gni_p2ptls_cert_verify(junk, 0, NOW, &p, NULL, 0), GN_EPARSE);
    static uint8_t big[GNI_P2PTLS_MAX_CERT + 1];
    CHECK_EQ(gni_p2ptls_cert_verify(big, sizeof big, NOW, &p, NULL, 0), GN_ETOOBIG);
}

/* ---- two cores in memory ------------------------------------------------------ */

/* Moves everything one side has for the other; returns bytes moved. */
static size_t pump(gni_p2ptls *from, gni_p2ptls *to, long flip_at, size_t *pos)
{
    uint8_t buf[32768];
    gn_buf out;
    gn_buf_init(&out, buf, sizeof buf);
    int n = gni_p2ptls_drain(from, &out);
    if (n <= 0)
        return 0;
    for (int i = 0; i < n; i++, (*pos)++)
        if ((long)*pos == flip_at)
            buf[i] ^= 0x01;
    size_t off = 0;
    while (off < (size_t)n && gni_p2ptls_status(to) == 0) {
        size_t c = 0;
        gni_p2ptls_feed(to, buf + off, (size_t)n - off, &c);
        if (c == 0)
            break;
        off += c;
    }
    return (size_t)n;
}

static void run_hs(gni_p2ptls *c, gni_p2ptls *s, long flip_c2s)
{
    size_t pc = 0, ps = 0;
    for (int i = 0; i < 10; i++) {
        size_t a = pump(c, s, flip_c2s, &pc);
        size_t b = pump(s, c, -1, &ps);
        if (a == 0 && b == 0)
            break;
    }
}

/* NULL: each endpoint makes its own SSL_CTX; else one per identity (client, server) */
static void *shared_ctx_c, *shared_ctx_s;

static void make_pair(const gn_identity *ic, const gn_identity *is, const gn_peer_id *expect,
                      const char *const *mc, size_t nc, const char *const *ms, size_t ns,
                      gni_p2ptls **c, gni_p2ptls **s)
{
    gni_p2ptls_config cc = {.initiator = true, .identity = ic, .expected_peer = expect,
                            .muxers = mc, .n_muxers = nc, .unix_now = NOW,
                            .ssl_ctx = shared_ctx_c};
    gni_p2ptls_config sc = {.initiator = false, .identity = is, .muxers = ms, .n_muxers = ns,
                            .unix_now = NOW, .ssl_ctx = shared_ctx_s};
    CHECK_OK(gni_p2ptls_new(&cc, c));
    CHECK_OK(gni_p2ptls_new(&sc, s));
}

static void send_recv(gni_p2ptls *a, gni_p2ptls *b, const char *msg)
{
    uint8_t rec[GNI_P2PTLS_MAX_PLAIN + GNI_P2PTLS_OVERHEAD];
    size_t len = strlen(msg);
    int n = gni_p2ptls_seal(a, (const uint8_t *)msg, len, rec);
    CHECK_EQ(n, (int)len + 22);
    /* fed one byte at a time: records are reassembled */
    const uint8_t *plain = NULL;
    size_t plen = 0;
    for (int i = 0; i < n; i++) {
        size_t c;
        CHECK_OK(gni_p2ptls_open(b, rec + i, 1, &c, &plain, &plen));
        CHECK_EQ(c, 1);
        CHECK_EQ(gni_p2ptls_partial(b), i + 1 < n);
        if (i + 1 < n)
            CHECK(plain == NULL);
    }
    CHECK(plain != NULL);
    CHECK_EQ(plen, len);
    CHECK_MEM(plain, msg, len);
}

GN_TEST(handshake_early_muxer_and_records)
{
    gn_identity *ia, *ib;
    CHECK_OK(gn_identity_from_int_seed(1, &ia));
    CHECK_OK(gn_identity_generate_type(GN_KEY_SECP256K1, 0, &ib));
    gn_peer_id pa, pb;
    gn_identity_peer_id(ia, &pa);
    gn_identity_peer_id(ib, &pb);
    const char *mc[] = {"/mplex/6.7.0", "/yamux/1.0.0"};
    const char *ms[] = {"/yamux/1.0.0", "/mplex/6.7.0"};
    gni_p2ptls *c, *s;
    make_pair(ia, ib, &pb, mc, 2, ms, 2, &c, &s);
    run_hs(c, s, -1);
    CHECK_EQ(gni_p2ptls_status(c), 1);
    CHECK_EQ(gni_p2ptls_status(s), 1);
    /* the client's first choice the server also has */
    CHECK_STR(gni_p2ptls_early_muxer(c), "/mplex/6.7.0");
    CHECK_STR(gni_p2ptls_early_muxer(s), "/mplex/6.7.0");
    gni_p2ptls_peer p;
    CHECK_OK(gni_p2ptls_remote(c, &p));
    CHECK(gn_peer_id_equal(&p.peer, &pb));
    CHECK_OK(gni_p2ptls_remote(s, &p));
    CHECK(gn_peer_id_equal(&p.peer, &pa));
    uint8_t raw[32];
    gn_identity_public_key(ia, raw);
    CHECK_MEM(p.ed25519, raw, 32);
    send_recv(c, s, "hello over tls");
    send_recv(s, c, "and back");
    /* close_notify */
    uint8_t rec[GNI_P2PTLS_OVERHEAD];
    int n = gni_p2ptls_seal_close(c, rec);
    CHECK(n > 0);
    size_t used;
    const uint8_t *plain;
    size_t plen;
    CHECK_OK(gni_p2ptls_open(s, rec, (size_t)n, &used, &plain, &plen));
    CHECK(plain == NULL);
    CHECK(gni_p2ptls_closed(s));
    gni_p2ptls_free(c);
    gni_p2ptls_free(s);

    /* no common muxer: "libp2p" is chosen, and no early muxer */
    const char *m3[] = {"/other/1.0.0"};
    make_pair(ia, ib, NULL, mc, 2, m3, 1, &c, &s);
    run_hs(c, s, -1);
    CHECK_EQ(gni_p2ptls_status(c), 1);
    CHECK_EQ(gni_p2ptls_status(s), 1);
    CHECK_STR(gni_p2ptls_early_muxer(c), "");
    CHECK_STR(gni_p2ptls_early_muxer(s), "");
    gni_p2ptls_free(c);
    gni_p2ptls_free(s);
    gn_identity_free(ia);
    gn_identity_free(ib);
}

GN_TEST(expected_peer_mismatch_names_both_ids)
{
    gn_identity *ia, *ib, *ic;
    CHECK_OK(gn_identity_from_int_seed(1, &ia));
    CHECK_OK(gn_identity_from_int_seed(2, &ib));
    CHECK_OK(gn_identity_from_int_seed(3, &ic));
    gn_peer_id pb, pc;
    gn_identity_peer_id(ib, &pb);
    gn_identity_peer_id(ic, &pc);
    gni_p2ptls *c, *s;
    make_pair(ia, ib, &pc, NULL, 0, NULL, 0, &c, &s);
    run_hs(c, s, -1);
    CHECK_EQ(gni_p2ptls_status(c), GN_EPEERID);
    CHECK(gni_p2ptls_status(s) < 0); /* the client's alert ended it */
    char sb[GN_PEER_ID_MAX_STRLEN], sc[GN_PEER_ID_MAX_STRLEN], want[400];
    CHECK(gn_peer_id_to_string(&pb, sb, sizeof sb) > 0);
    CHECK(gn_peer_id_to_string(&pc, sc, sizeof sc) > 0);
    snprintf(want, sizeof want, "received %s, expected %s", sb, sc);
    printf("# %s\n", gni_p2ptls_diag(c));
    CHECK(strstr(gni_p2ptls_diag(c), want) != NULL);
    gni_p2ptls_peer p;
    CHECK_OK(gni_p2ptls_remote(c, &p));
    CHECK(gn_peer_id_equal(&p.peer, &pb));
    gni_p2ptls_free(c);
    gni_p2ptls_free(s);
    gn_identity_free(ia);
    gn_identity_free(ib);
    gn_identity_free(ic);
}

GN_TEST(tampered_client_hello_and_bad_records)
{
    gn_identity *ia, *ib;
    CHECK_OK(gn_identity_from_int_seed(1, &ia));
    CHECK_OK(gn_identity_from_int_seed(2, &ib));
    /* the record version byte, a ClientHello byte, the key share */
    long at[] = {1, 2, 20, 100};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        gni_p2ptls *c, *s;
        make_pair(ia, ib, NULL, NULL, 0, NULL, 0, &c, &s);
        run_hs(c, s, at[i]);
        CHECK(gni_p2ptls_status(c) < 0 || gni_p2ptls_status(s) < 0);
        CHECK(!(gni_p2ptls_status(c) == 1 && gni_p2ptls_status(s) == 1));
        gni_p2ptls_free(c);
        gni_p2ptls_free(s);
    }
    /* an oversized record header */
    gni_p2ptls *c, *s;
    make_pair(ia, ib, NULL, NULL, 0, NULL, 0, &c, &s);
    uint8_t hdr[5] = {0x16, 0x03, 0x01, 0xff, 0xff};
    size_t used;
    CHECK_OK(gni_p2ptls_feed(s, hdr, sizeof hdr, &used));
    CHECK_EQ(gni_p2ptls_status(s), GN_EFRAMESIZE);
    gni_p2ptls_free(c);
    gni_p2ptls_free(s);
    /* after the handshake: a flipped record byte fails authentication */
    make_pair(ia, ib, NULL, NULL, 0, NULL, 0, &c, &s);
    run_hs(c, s, -1);
    CHECK_EQ(gni_p2ptls_status(s), 1);
    uint8_t rec[64 + GNI_P2PTLS_OVERHEAD];
    int n = gni_p2ptls_seal(c, (const uint8_t *)"0123456789", 10, rec);
    CHECK(n > 0);
    rec[10] ^= 1;
    const uint8_t *plain;
    size_t plen;
    CHECK_EQ(gni_p2ptls_open(s, rec, (size_t)n, &used, &plain, &plen), GN_EDECRYPT);
    gni_p2ptls_free(c);
    gni_p2ptls_free(s);
    gn_identity_free(ia);
    gn_identity_free(ib);
}

GN_TEST(client_without_libp2p_alpn_refused)
{
    /* a plain TLS 1.3 client offering only "h2" (tls.md "ALPN": the server aborts) */
    gn_identity *ib;
    CHECK_OK(gn_identity_from_int_seed(2, &ib));
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    CHECK(ctx != NULL);
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL *ssl = SSL_new(ctx);
    BIO *r = BIO_new(BIO_s_mem()), *w = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl, r, w);
    CHECK_EQ(SSL_set_alpn_protos(ssl, (const unsigned char *)"\x02h2", 3), 0);
    SSL_set_connect_state(ssl);
    (void)SSL_do_handshake(ssl);
    uint8_t hello[4096];
    int n = BIO_read(w, hello, sizeof hello);
    CHECK(n > 0);
    gni_p2ptls_config sc = {.initiator = false, .identity = ib, .unix_now = NOW};
    gni_p2ptls *s;
    CHECK_OK(gni_p2ptls_new(&sc, &s));
    size_t used;
    CHECK_OK(gni_p2ptls_feed(s, hello, (size_t)n, &used));
    CHECK_EQ(gni_p2ptls_status(s), GN_ENEGOTIATION);
    CHECK(strstr(gni_p2ptls_diag(s), "no ALPN protocol") != NULL);
    /* the alert goes back to the client */
    uint8_t out[256];
    gn_buf b;
    gn_buf_init(&b, out, sizeof out);
    CHECK(gni_p2ptls_drain(s, &b) > 0);
    CHECK_EQ(out[0], 0x15);
    gni_p2ptls_free(s);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    gn_identity_free(ib);
}

/* ---- an OpenSSL peer in memory against the core's server ---------------------- */

/* A TLS client context: @max TLS version, ALPN "libp2p", certificate @x/@k (NULL: none). */
static SSL *raw_client(int max_version, X509 *x, EVP_PKEY *k, X509 *chain_extra)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    CHECK(ctx != NULL);
    SSL_CTX_set_max_proto_version(ctx, max_version);
    if (x) {
        CHECK_EQ(SSL_CTX_use_certificate(ctx, x), 1);
        CHECK_EQ(SSL_CTX_use_PrivateKey(ctx, k), 1);
    }
    if (chain_extra)
        CHECK_EQ(SSL_CTX_add1_chain_cert(ctx, chain_extra), 1);
    SSL *ssl = SSL_new(ctx);
    SSL_CTX_free(ctx); /* ssl holds a reference */
    BIO *r = BIO_new(BIO_s_mem()), *w = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(r, -1);
    SSL_set_bio(ssl, r, w);
    CHECK_EQ(SSL_set_alpn_protos(ssl, (const unsigned char *)"\x06libp2p", 7), 0);
    SSL_set_connect_state(ssl);
    return ssl;
}

/* Runs the handshake between @ssl (client) and the core server @s (bounded rounds). */
static void raw_handshake(SSL *ssl, gni_p2ptls *s)
{
    for (int round = 0; round < 10; round++) {
        (void)SSL_do_handshake(ssl);
        uint8_t buf[32768];
        int n = BIO_read(SSL_get_wbio(ssl), buf, sizeof buf);
        size_t off = 0;
        while (n > 0 && off < (size_t)n && gni_p2ptls_status(s) == 0) {
            size_t c = 0;
            gni_p2ptls_feed(s, buf + off, (size_t)n - off, &c);
            if (c == 0)
                break;
            off += c;
        }
        gn_buf out;
        gn_buf_init(&out, buf, sizeof buf);
        int m = gni_p2ptls_drain(s, &out);
        if (m > 0)
            BIO_write(SSL_get_rbio(ssl), buf, m);
        if (n <= 0 && m <= 0)
            break;
    }
    (void)SSL_do_handshake(ssl);
}

static void free_raw(SSL *ssl)
{
    SSL_free(ssl);
}

/* A client identity's certificate, for raw clients. */
static void client_cert(int seed, X509 **x, EVP_PKEY **k, gn_identity **id)
{
    CHECK_OK(gn_identity_from_int_seed(seed, id));
    void *xv, *kv;
    CHECK_OK(gni_p2ptls_cert_new(*id, NOW, &xv, &kv, NULL, NULL));
    *x = xv;
    *k = kv;
}

static gni_p2ptls *core_server(const gn_identity *id)
{
    gni_p2ptls_config sc = {.initiator = false, .identity = id, .unix_now = NOW};
    gni_p2ptls *s;
    CHECK_OK(gni_p2ptls_new(&sc, &s));
    return s;
}

GN_TEST(keyupdate_requests_bounded)
{
    /* RFC 8446 4.6.3: each update_requested makes OpenSSL queue an answer that only
     * seal sends; more than two unanswered requests end the connection (tls.h) */
    gn_identity *ic, *is;
    X509 *x;
    EVP_PKEY *k;
    client_cert(1, &x, &k, &ic);
    CHECK_OK(gn_identity_from_int_seed(2, &is));
    gni_p2ptls *s = core_server(is);
    SSL *ssl = raw_client(TLS1_3_VERSION, x, k, NULL);
    raw_handshake(ssl, s);
    CHECK_EQ(gni_p2ptls_status(s), 1);
    CHECK_EQ(SSL_is_init_finished(ssl), 1);
    for (int cycle = 0; cycle < 3; cycle++) {
        /* two requests: consumed, answered by the next seal */
        for (int i = 0; i < 2; i++) {
            CHECK_EQ(SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED), 1);
            CHECK_EQ(SSL_do_handshake(ssl), 1);
            uint8_t rec[256];
            int n = BIO_read(SSL_get_wbio(ssl), rec, sizeof rec);
            CHECK(n > 0);
            size_t used;
            const uint8_t *plain;
            size_t plen;
            CHECK_OK(gni_p2ptls_open(s, rec, (size_t)n, &used, &plain, &plen));
            CHECK_EQ(used, (size_t)n);
            CHECK(plain == NULL);
        }
        uint8_t out[64 + GNI_P2PTLS_OVERHEAD];
        int n = gni_p2ptls_seal(s, (const uint8_t *)"after updates", 13, out);
        printf("# cycle %d: seal wrote %d bytes (13 + 22 + KeyUpdate answers)\n", cycle, n);
        CHECK(n > 13 + 22);
        BIO_write(SSL_get_rbio(ssl), out, n);
        char got[64];
        size_t r = 0;
        CHECK_EQ(SSL_read_ex(ssl, got, sizeof got, &r), 1);
        CHECK_EQ(r, 13);
        CHECK_MEM(got, "after updates", 13);
    }
    /* three unanswered requests: the third fails with a clear error */
    int rc = 0;
    for (int i = 0; i < 3 && rc == 0; i++) {
        CHECK_EQ(SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED), 1);
        CHECK_EQ(SSL_do_handshake(ssl), 1);
        uint8_t rec[256];
        int n = BIO_read(SSL_get_wbio(ssl), rec, sizeof rec);
        CHECK(n > 0);
        size_t used;
        const uint8_t *plain;
        size_t plen;
        rc = gni_p2ptls_open(s, rec, (size_t)n, &used, &plain, &plen);
        if (i < 2)
            CHECK_OK(rc);
    }
    CHECK_EQ(rc, GN_EPROTO);
    printf("# %s\n", gni_p2ptls_diag(s));
    CHECK(strstr(gni_p2ptls_diag(s), "KeyUpdate") != NULL);
    uint8_t out[64 + GNI_P2PTLS_OVERHEAD];
    CHECK_EQ(gni_p2ptls_seal(s, (const uint8_t *)"x", 1, out), GN_EPROTO);
    free_raw(ssl);
    gni_p2ptls_free(s);
    X509_free(x);
    EVP_PKEY_free(k);
    gn_identity_free(ic);
    gn_identity_free(is);
}

GN_TEST(client_without_certificate_refused)
{
    gn_identity *is;
    CHECK_OK(gn_identity_from_int_seed(2, &is));
    gni_p2ptls *s = core_server(is);
    SSL *ssl = raw_client(TLS1_3_VERSION, NULL, NULL, NULL);
    raw_handshake(ssl, s);
    printf("# %s: %s\n", gn_err_name(gni_p2ptls_status(s)), gni_p2ptls_diag(s));
    CHECK_EQ(gni_p2ptls_status(s), GN_EHANDSHAKE);
    CHECK(strstr(gni_p2ptls_diag(s), "certificate") != NULL);
    uint8_t rec[64 + GNI_P2PTLS_OVERHEAD];
    CHECK(gni_p2ptls_seal(s, (const uint8_t *)"x", 1, rec) < 0);
    free_raw(ssl);
    gni_p2ptls_free(s);
    gn_identity_free(is);
}

GN_TEST(two_certificate_chain_refused)
{
    gn_identity *ic, *is, *i3;
    X509 *x, *x3;
    EVP_PKEY *k, *k3;
    client_cert(1, &x, &k, &ic);
    client_cert(3, &x3, &k3, &i3);
    CHECK_OK(gn_identity_from_int_seed(2, &is));
    gni_p2ptls *s = core_server(is);
    SSL *ssl = raw_client(TLS1_3_VERSION, x, k, x3);
    raw_handshake(ssl, s);
    printf("# %s: %s\n", gn_err_name(gni_p2ptls_status(s)), gni_p2ptls_diag(s));
    CHECK_EQ(gni_p2ptls_status(s), GN_EPROTO);
    CHECK(strstr(gni_p2ptls_diag(s), "2 certificates") != NULL);
    free_raw(ssl);
    gni_p2ptls_free(s);
    X509_free(x);
    X509_free(x3);
    EVP_PKEY_free(k);
    EVP_PKEY_free(k3);
    gn_identity_free(ic);
    gn_identity_free(i3);
    gn_identity_free(is);
}

GN_TEST(tls12_only_client_refused)
{
    /* tls.md "Handshake Protocol": endpoints MUST NOT negotiate lower TLS versions */
    gn_identity *ic, *is;
    X509 *x;
    EVP_PKEY *k;
    client_cert(1, &x, &k, &ic);
    CHECK_OK(gn_identity_from_int_seed(2, &is));
    gni_p2ptls *s = core_server(is);
    SSL *ssl = raw_client(TLS1_2_VERSION, x, k, NULL);
    raw_handshake(ssl, s);
    printf("# %s: %s\n", gn_err_name(gni_p2ptls_status(s)), gni_p2ptls_diag(s));
    CHECK_EQ(gni_p2ptls_status(s), GN_EHANDSHAKE);
    CHECK(SSL_is_init_finished(ssl) != 1);
    free_raw(ssl);
    gni_p2ptls_free(s);
    X509_free(x);
    EVP_PKEY_free(k);
    gn_identity_free(ic);
    gn_identity_free(is);
}

GN_TEST(oversize_certificate_refused_in_handshake)
{
    /* a valid libp2p certificate padded past GNI_P2PTLS_MAX_CERT by a non-critical extension */
    gn_identity *ic, *is;
    X509 *x;
    EVP_PKEY *k;
    client_cert(1, &x, &k, &ic);
    static uint8_t pad[GNI_P2PTLS_MAX_CERT];
    memset(pad, 0x5a, sizeof pad);
    ASN1_OBJECT *o = OBJ_txt2obj("1.3.6.1.4.1.99999.2", 1);
    ASN1_OCTET_STRING *v = ASN1_OCTET_STRING_new();
    CHECK(ASN1_OCTET_STRING_set(v, pad, (int)sizeof pad));
    X509_EXTENSION *e = X509_EXTENSION_create_by_OBJ(NULL, o, 0, v);
    CHECK(X509_add_ext(x, e, -1));
    size_t len;
    uint8_t *d = resign(x, k, &len);
    CHECK(len > GNI_P2PTLS_MAX_CERT && len < 2 * GNI_P2PTLS_MAX_CERT);
    free(d);
    CHECK_OK(gn_identity_from_int_seed(2, &is));
    gni_p2ptls *s = core_server(is);
    SSL *ssl = raw_client(TLS1_3_VERSION, x, k, NULL);
    raw_handshake(ssl, s);
    printf("# %s: %s\n", gn_err_name(gni_p2ptls_status(s)), gni_p2ptls_diag(s));
    CHECK_EQ(gni_p2ptls_status(s), GN_ETOOBIG);
    CHECK(strstr(gni_p2ptls_diag(s), "at most 8192") != NULL);
    free_raw(ssl);
    gni_p2ptls_free(s);
    X509_EXTENSION_free(e);
    ASN1_OCTET_STRING_free(v);
    ASN1_OBJECT_free(o);
    X509_free(x);
    EVP_PKEY_free(k);
    gn_identity_free(ic);
    gn_identity_free(is);
}

GN_TEST(client_hello_split_over_records)
{
    /* RFC 8446 5.1: a ClientHello may span records, each may carry 0x0301 */
    gn_identity *ia, *ib;
    CHECK_OK(gn_identity_from_int_seed(1, &ia));
    CHECK_OK(gn_identity_from_int_seed(2, &ib));
    gni_p2ptls *c, *s;
    make_pair(ia, ib, NULL, NULL, 0, NULL, 0, &c, &s);
    uint8_t hello[4096], split[4096 + 10];
    gn_buf b;
    gn_buf_init(&b, hello, sizeof hello);
    int n = gni_p2ptls_drain(c, &b);
    CHECK(n > 100);
    CHECK_EQ(hello[0], 0x16);
    size_t body = (size_t)n - 5, first = body / 3;
    size_t parts[2] = {first, body - first};
    size_t at = 0, from = 5;
    for (int i = 0; i < 2; i++) {
        split[at++] = 0x16;
        split[at++] = 0x03;
        split[at++] = 0x01;
        split[at++] = (uint8_t)(parts[i] >> 8);
        split[at++] = (uint8_t)parts[i];
        memcpy(split + at, hello + from, parts[i]);
        at += parts[i];
        from += parts[i];
    }
    size_t used;
    CHECK_OK(gni_p2ptls_feed(s, split, at, &used));
    CHECK_EQ(used, at);
    CHECK_EQ(gni_p2ptls_status(s), 0);
    run_hs(c, s, -1);
    CHECK_EQ(gni_p2ptls_status(c), 1);
    CHECK_EQ(gni_p2ptls_status(s), 1);
    gni_p2ptls_free(c);
    gni_p2ptls_free(s);
    /* 0x0301 on the ServerHello record is accepted, on the records after it refused */
    for (int second = 0; second < 2; second++) {
        make_pair(ia, ib, NULL, NULL, 0, NULL, 0, &c, &s);
        gn_buf_init(&b, hello, sizeof hello);
        n = gni_p2ptls_drain(c, &b);
        CHECK_OK(gni_p2ptls_feed(s, hello, (size_t)n, &used));
        gn_buf_init(&b, hello, sizeof hello);
        n = gni_p2ptls_drain(s, &b); /* ServerHello, then the rest of the flight */
        size_t r2 = 5 + (((size_t)hello[3] << 8) | hello[4]);
        CHECK((size_t)n > r2 + 5);
        hello[second ? r2 + 2 : 2] = 0x01;
        CHECK_OK(gni_p2ptls_feed(c, hello, (size_t)n, &used));
        if (second) {
            CHECK_EQ(gni_p2ptls_status(c), GN_EPROTO);
            CHECK(strstr(gni_p2ptls_diag(c), "version 0x0301 (0x0303 expected") != NULL);
        } else {
            CHECK_EQ(gni_p2ptls_status(c), 1);
        }
        gni_p2ptls_free(c);
        gni_p2ptls_free(s);
    }
    gn_identity_free(ia);
    gn_identity_free(ib);
}

GN_TEST(muxer_ids_copied)
{
    /* gn_secure_params lends the muxer strings only during the call */
    gn_identity *ia, *ib;
    CHECK_OK(gn_identity_from_int_seed(1, &ia));
    CHECK_OK(gn_identity_from_int_seed(2, &ib));
    char mc[2][32], ms[2][32];
    snprintf(mc[0], sizeof mc[0], "/yamux/1.0.0");
    snprintf(mc[1], sizeof mc[1], "/mplex/6.7.0");
    snprintf(ms[0], sizeof ms[0], "/mplex/6.7.0");
    snprintf(ms[1], sizeof ms[1], "/yamux/1.0.0");
    const char *pc[] = {mc[0], mc[1]}, *ps[] = {ms[0], ms[1]};
    gni_p2ptls *c, *s;
    make_pair(ia, ib, NULL, pc, 2, ps, 2, &c, &s);
    memset(mc, 'x', sizeof mc);
    memset(ms, 'y', sizeof ms);
    mc[0][31] = mc[1][31] = ms[0][31] = ms[1][31] = '\0';
    run_hs(c, s, -1);
    CHECK_EQ(gni_p2ptls_status(c), 1);
    CHECK_EQ(gni_p2ptls_status(s), 1);
    CHECK_STR(gni_p2ptls_early_muxer(c), "/yamux/1.0.0");
    CHECK_STR(gni_p2ptls_early_muxer(s), "/yamux/1.0.0");
    gni_p2ptls_free(c);
    gni_p2ptls_free(s);
    /* an id too long for GN_PROTOCOL_ID_MAX is skipped, not truncated */
    char longid[GN_PROTOCOL_ID_MAX + 8];
    memset(longid, 'a', sizeof longid - 1);
    longid[0] = '/';
    longid[sizeof longid - 1] = '\0';
    const char *pl[] = {longid, "/yamux/1.0.0"};
    make_pair(ia, ib, NULL, pl, 2, pl, 2, &c, &s);
    run_hs(c, s, -1);
    CHECK_EQ(gni_p2ptls_status(s), 1);
    CHECK_STR(gni_p2ptls_early_muxer(s), "/yamux/1.0.0");
    gni_p2ptls_free(c);
    gni_p2ptls_free(s);
    gn_identity_free(ia);
    gn_identity_free(ib);
}

GN_TEST(shared_ctx_reuses_certificate)
{
    /* one certificate per component instance: two handshakes show the same one */
    gn_identity *ia, *ib;
    CHECK_OK(gn_identity_from_int_seed(1, &ia));
    CHECK_OK(gn_identity_from_int_seed(2, &ib));
    CHECK_OK(gni_p2ptls_ctx_new(ib, NOW, &shared_ctx_s));
    gn_identity *bad = NULL;
    CHECK_EQ(gni_p2ptls_ctx_new(bad, NOW, &shared_ctx_c), GN_EINVAL);
    uint8_t first[4096];
    size_t first_len = 0;
    for (int i = 0; i < 2; i++) {
        X509 *x;
        EVP_PKEY *k;
        gn_identity *ic;
        client_cert(1, &x, &k, &ic);
        gni_p2ptls_config sc = {.initiator = false, .identity = ib, .unix_now = NOW,
                                .ssl_ctx = shared_ctx_s};
        gni_p2ptls *s;
        CHECK_OK(gni_p2ptls_new(&sc, &s));
        SSL *cl = raw_client(TLS1_3_VERSION, x, k, NULL);
        raw_handshake(cl, s);
        CHECK_EQ(gni_p2ptls_status(s), 1);
        X509 *peer = SSL_get1_peer_certificate(cl);
        CHECK(peer != NULL);
        uint8_t *p = first;
        int n = i2d_X509(peer, NULL);
        CHECK(n > 0 && n <= (int)sizeof first);
        if (i == 0) {
            first_len = (size_t)i2d_X509(peer, &p);
        } else {
            uint8_t again[4096];
            p = again;
            CHECK_EQ((size_t)i2d_X509(peer, &p), first_len);
            CHECK_MEM(again, first, first_len);
        }
        X509_free(peer);
        free_raw(cl);
        gni_p2ptls_free(s);
        X509_free(x);
        EVP_PKEY_free(k);
        gn_identity_free(ic);
    }
    gni_p2ptls_ctx_free(shared_ctx_s);
    shared_ctx_s = NULL;
    gn_identity_free(ia);
    gn_identity_free(ib);
}

/* ---- libp2p/specs tls/tls.md "Test vectors" ---------------------------------- */

/*
 * The spec's four certificates (Ed25519, ECDSA, secp256k1, and one whose
 * host signature does not match), read from
 * $GN_SHARED_DIR/vectors/tls/libp2p_spec_vectors.txt: lines "name peer-id hex"
 * ("-" as the peer ID of the invalid one). Skipped when absent.
 */
GN_TEST(libp2p_spec_vectors)
{
    const char *dirs[2] = {getenv("GN_SHARED_DIR"), getenv("GN_SOURCE_DIR")};
    FILE *f = NULL;
    for (int i = 0; i < 2 && !f; i++) {
        if (!dirs[i])
            continue;
        char path[1024];
        snprintf(path, sizeof path,
                 i == 0 ? "%s/vectors/tls/libp2p_spec_vectors.txt"
                        : "%s/../shared/vectors/tls/libp2p_spec_vectors.txt",
                 dirs[i]);
        f = fopen(path, "r");
    }
    if (!f)
        SKIP("libp2p spec TLS vectors not found "
             "($GN_SHARED_DIR/vectors/tls/libp2p_spec_vectors.txt)");
    static char hex[9000];
    char name[32], peer[GN_PEER_ID_MAX_STRLEN];
    int seen = 0, invalid = 0;
    while (fscanf(f, "%31s %127s %8999s", name, peer, hex) == 3) {
        static uint8_t der[4500];
        long n = gn_test_unhex(hex, der, sizeof der);
        CHECK(n > 0);
        gni_p2ptls_peer p;
        char diag[256];
        int rc = gni_p2ptls_cert_verify(der, (size_t)n, NOW, &p, diag, sizeof diag);
        printf("# %s: %s %s\n", name, gn_err_name(rc), rc < 0 ? diag : "");
        if (strcmp(peer, "-") == 0) {
            CHECK_EQ(rc, GN_EBADSIG);
            CHECK(strstr(diag, "does not verify") != NULL);
            invalid++;
        } else {
            CHECK_OK(rc);
            char s[GN_PEER_ID_MAX_STRLEN];
            CHECK(gn_peer_id_to_string(&p.peer, s, sizeof s) > 0);
            CHECK_STR(s, peer);
        }
        seen++;
    }
    fclose(f);
    CHECK_EQ(seen, 4);
    CHECK_EQ(invalid, 1);
}

/* process CPU time: the measure is CPU, not wall time on a loaded VM */
static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

GN_TEST(handshake_cost)
{
    /* measured, not asserted beyond "completes": CPU time of both sides */
    {
        gn_identity *id;
        CHECK_OK(gn_identity_from_int_seed(1, &id));
        double t0 = now_ms();
        for (int i = 0; i < 50; i++) {
            void *x, *k;
            CHECK_OK(gni_p2ptls_cert_new(id, NOW, &x, &k, NULL, NULL));
            X509_free(x);
            EVP_PKEY_free(k);
        }
        double t1 = now_ms();
        for (int i = 0; i < 50; i++) {
            SSL_CTX *ctx = SSL_CTX_new(TLS_method());
            CHECK(ctx != NULL);
            SSL_CTX_free(ctx);
        }
        double t2 = now_ms();
        printf("# Ed25519 identity: %.3f ms CPU per certificate (P-256 key, extension, "
               "signatures), %.3f ms per SSL_CTX_new()\n",
               (t1 - t0) / 50, (t2 - t1) / 50);
        gn_identity_free(id);
    }
    gn_key_type types[] = {GN_KEY_ED25519, GN_KEY_SECP256K1, GN_KEY_RSA};
    const char *names[] = {"Ed25519", "secp256k1", "RSA-2048"};
    for (size_t t = 0; t < 3; t++) {
        gn_identity *ia, *ib;
        CHECK_OK(gn_identity_generate_type(types[t], types[t] == GN_KEY_RSA ? 2048 : 0, &ia));
        CHECK_OK(gn_identity_generate_type(types[t], types[t] == GN_KEY_RSA ? 2048 : 0, &ib));
        const int rounds = 20;
        for (int shared = 0; shared < 2; shared++) {
            if (shared) {
                CHECK_OK(gni_p2ptls_ctx_new(ia, NOW, &shared_ctx_c));
                CHECK_OK(gni_p2ptls_ctx_new(ib, NOW, &shared_ctx_s));
            }
            double t0 = now_ms();
            for (int i = 0; i < rounds; i++) {
                gni_p2ptls *c, *s;
                make_pair(ia, ib, NULL, NULL, 0, NULL, 0, &c, &s);
                if (shared && i == 0) {
                    /* the endpoints hold references: freeing early is allowed */
                    gni_p2ptls_ctx_free(shared_ctx_c);
                    gni_p2ptls_ctx_free(shared_ctx_s);
                    shared_ctx_c = shared_ctx_s = NULL;
                    CHECK_OK(gni_p2ptls_ctx_new(ia, NOW, &shared_ctx_c));
                    CHECK_OK(gni_p2ptls_ctx_new(ib, NOW, &shared_ctx_s));
                }
                run_hs(c, s, -1);
                CHECK_EQ(gni_p2ptls_status(c), 1);
                CHECK_EQ(gni_p2ptls_status(s), 1);
                gni_p2ptls_free(c);
                gni_p2ptls_free(s);
            }
            printf("# %s identities, %s: %.2f ms CPU per handshake (both sides)\n", names[t],
                   shared ? "shared SSL_CTX + certificate" : "own SSL_CTX + certificate",
                   (now_ms() - t0) / rounds);
            gni_p2ptls_ctx_free(shared_ctx_c);
            gni_p2ptls_ctx_free(shared_ctx_s);
            shared_ctx_c = shared_ctx_s = NULL;
        }
        gn_identity_free(ia);
        gn_identity_free(ib);
    }
}

GN_TEST_MAIN(GN_T(js_vector_ed25519), GN_T(js_vector_secp256k1), GN_T(js_vector_rsa),
             GN_T(own_certificate_every_key_type), GN_T(certificate_without_extension_refused),
             GN_T(unknown_critical_extension_refused_noncritical_ignored),
             GN_T(wrong_host_signature_refused), GN_T(garbage_refused),
             GN_T(handshake_early_muxer_and_records), GN_T(expected_peer_mismatch_names_both_ids),
             GN_T(tampered_client_hello_and_bad_records),
             GN_T(client_without_libp2p_alpn_refused), GN_T(keyupdate_requests_bounded),
             GN_T(client_without_certificate_refused), GN_T(two_certificate_chain_refused),
             GN_T(tls12_only_client_refused), GN_T(oversize_certificate_refused_in_handshake),
             GN_T(client_hello_split_over_records), GN_T(muxer_ids_copied),
             GN_T(shared_ctx_reuses_certificate), GN_T(libp2p_spec_vectors),
             GN_T(handshake_cost))
