/*
 * ergo_tls_test: the sans-I/O TLS engine of Ergo links (core/tlsbio.c, as
 * ergo_uv.c configures it): a client and a server pumped against each other in memory
 * (handshake, plaintext queued before it, data both ways, the peer
 * certificate's SHA-1), verification against a trust anchor and its
 * failures (self-signed, wrong name, wrong CA), certificates from PEM
 * bytes, a truncated record, a tampered record, a peer that speaks plain
 * EHS, and the bound on plaintext queued before the handshake.
 */
#include "gn_test.h"

#include "ergo_tls_config.h"

#if GNI_HAVE_ERGO_TLS

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ergo_uv.h" /* Ergo's diagnostics for the engine */
#include "gni_tlsbio.h"
#include "golemnet/err.h"

static uint8_t wire[1 << 18];

/* Moves one side's pending ciphertext to the other; returns the bytes moved or < 0. */
static int move(gni_tlsbio *from, gni_tlsbio *to)
{
    gn_buf b;
    gn_buf_init(&b, wire, sizeof wire);
    size_t n = gni_tlsbio_drain(from, &b);
    if (n == 0)
        return 0;
    int rc = gni_tlsbio_feed(to, wire, n);
    return rc < 0 ? rc : (int)n;
}

/* Pumps until both finished the handshake, one failed, or nothing moves (bounded). */
static void pump(gni_tlsbio *c, gni_tlsbio *s)
{
    for (int i = 0; i < 16; i++) {
        int a = move(c, s);
        int b = move(s, c);
        if (a < 0 || b < 0 || (gni_tlsbio_done(c) && gni_tlsbio_done(s) && a == 0 && b == 0))
            return;
        if (a == 0 && b == 0)
            return;
    }
}

static gni_tlsbio_ctx *server_ctx(const char *host)
{
    gni_tlsbio_ctx_config sc = {0};
    sc.server = true;
    sc.host = host;
    sc.plain_first = GNI_ERGO_TLS_PLAIN_FIRST; /* as ergo_uv.c configures it */
    sc.plain_diag = GNI_ERGO_TLS_PLAIN_DIAG;
    gni_tlsbio_ctx *s = NULL;
    char diag[256];
    CHECK_OK(gni_tlsbio_ctx_new(&sc, &s, diag, sizeof diag));
    CHECK(gni_tlsbio_ctx_cert_sha1(s) != NULL);
    return s;
}

static gni_tlsbio_ctx *client_ctx(bool skip, gn_slice ca, int want)
{
    gni_tlsbio_ctx_config cc = {0};
    cc.skip_verify = skip;
    cc.ca_pem = ca;
    cc.verify_hint = GNI_ERGO_TLS_VERIFY_HINT;
    gni_tlsbio_ctx *c = NULL;
    char diag[256];
    CHECK_EQ(gni_tlsbio_ctx_new(&cc, &c, diag, sizeof diag), want);
    if (want == 0)
        CHECK(gni_tlsbio_ctx_cert_sha1(c) == NULL);
    return c;
}

/* reads everything available from @t into @out; returns the byte count */
static size_t read_all(gni_tlsbio *t, uint8_t *out, size_t cap)
{
    size_t got = 0;
    for (int i = 0; i < 1000 && got < cap; i++) {
        int n = gni_tlsbio_read(t, out + got, cap - got);
        CHECK(n >= 0);
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return got;
}

GN_TEST(handshake_and_data_both_ways)
{
    gni_tlsbio_ctx *sx = server_ctx("127.0.0.1");
    gni_tlsbio_ctx *cx = client_ctx(true, gn_slice_of(NULL, 0), 0);
    gni_tlsbio *c, *s;
    CHECK_OK(gni_tlsbio_new(cx, "127.0.0.1", &c));
    CHECK_OK(gni_tlsbio_new(sx, NULL, &s));
    CHECK(gni_tlsbio_pending(c) > 0); /* the ClientHello */
    CHECK_EQ(gni_tlsbio_pending(s), 0);
    uint8_t sha[GNI_TLSBIO_SHA1_LEN];
    CHECK_EQ(gni_tlsbio_peer_sha1(c, sha), GN_ESTATE);
    /* written before the handshake: queued, sent when it ends (EHS's Hello does this) */
    CHECK_OK(gni_tlsbio_write(c, (const uint8_t *)"W\x01hello", 7));
    uint8_t buf[4096];
    CHECK_EQ(gni_tlsbio_read(c, buf, sizeof buf), 0);
    pump(c, s);
    CHECK(gni_tlsbio_done(c) && gni_tlsbio_done(s));
    CHECK_STR(gni_tlsbio_version(c), "TLSv1.3");
    CHECK_EQ(read_all(s, buf, sizeof buf), 7);
    CHECK_MEM(buf, "W\x01hello", 7);
    /* the client sees the server's leaf: the SHA-1 DigestCert covers */
    CHECK_OK(gni_tlsbio_peer_sha1(c, sha));
    CHECK_MEM(sha, gni_tlsbio_ctx_cert_sha1(sx), GNI_TLSBIO_SHA1_LEN);
    CHECK_EQ(gni_tlsbio_peer_sha1(s, sha), GN_ENOTFOUND); /* no client certificate, as Ergo */

    /* a large write crosses records; the reader gets every byte in order */
    static uint8_t big[100000], back[100000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 7 + 3);
    CHECK_OK(gni_tlsbio_write(s, big, sizeof big));
    CHECK(move(s, c) > (int)sizeof big);
    size_t got = read_all(c, back, sizeof back);
    CHECK_EQ(got, sizeof big);
    CHECK_MEM(back, big, sizeof big);
    CHECK_OK(gni_tlsbio_write(c, big, 1000));
    CHECK(move(c, s) > 1000);
    CHECK_EQ(read_all(s, back, sizeof back), 1000);
    CHECK_MEM(back, big, 1000);
    /* the stream ending between records is clean */
    CHECK_EQ(gni_tlsbio_eof(s), 0);
    CHECK_EQ(gni_tlsbio_error(s), 0);
    gni_tlsbio_free(c);
    gni_tlsbio_free(s);
    gni_tlsbio_ctx_free(cx);
    gni_tlsbio_ctx_free(sx);
}

GN_TEST(verify_against_a_trust_anchor)
{
    gni_tlsbio_ctx *sx = server_ctx("127.0.0.1");
    static char pem[8192];
    gn_buf pb;
    gn_buf_init(&pb, pem, sizeof pem);
    int n = gni_tlsbio_ctx_cert_pem(sx, &pb);
    CHECK(n > 100);
    CHECK(strncmp(pem, "-----BEGIN CERTIFICATE-----", 27) == 0);
    gn_buf tiny;
    gn_buf_init(&tiny, pem, 10);
    CHECK_EQ(gni_tlsbio_ctx_cert_pem(sx, &tiny), GN_ENOSPC);
    gni_tlsbio_ctx *cx = client_ctx(false, gn_slice_of(pem, (size_t)n), 0);
    CHECK_EQ(gni_tlsbio_ctx_cert_pem(cx, &pb), GN_EINVAL);

    /* the right name (an IP SAN) verifies */
    gni_tlsbio *c, *s;
    CHECK_OK(gni_tlsbio_new(cx, "127.0.0.1", &c));
    CHECK_OK(gni_tlsbio_new(sx, NULL, &s));
    pump(c, s);
    CHECK(gni_tlsbio_done(c) && gni_tlsbio_done(s));
    gni_tlsbio_free(c);
    gni_tlsbio_free(s);

    /* another name: refused by the client, which says why; the server gets its alert */
    CHECK_OK(gni_tlsbio_new(cx, "other.example", &c));
    CHECK_OK(gni_tlsbio_new(sx, NULL, &s));
    pump(c, s);
    CHECK(!gni_tlsbio_done(c));
    CHECK_EQ(gni_tlsbio_error(c), GN_EHANDSHAKE);
    CHECK(strstr(gni_tlsbio_diag(c), "certificate verification failed") != NULL);
    CHECK(strstr(gni_tlsbio_diag(c), "mismatch") != NULL);
    move(c, s); /* the alert */
    CHECK_EQ(gni_tlsbio_error(s), GN_EHANDSHAKE);
    CHECK(strstr(gni_tlsbio_diag(s), "alert") != NULL);
    CHECK_EQ(gni_tlsbio_write(c, (const uint8_t *)"x", 1), GN_EHANDSHAKE); /* sticky */
    gni_tlsbio_free(c);
    gni_tlsbio_free(s);
    gni_tlsbio_ctx_free(cx);
    gni_tlsbio_ctx_free(sx);
}

GN_TEST(bad_certificate_refused)
{
    gni_tlsbio_ctx *sx = server_ctx("localhost");
    gni_tlsbio_ctx *other = server_ctx("localhost");
    static char pem[8192];
    gn_buf pb;
    gn_buf_init(&pb, pem, sizeof pem);
    int n = gni_tlsbio_ctx_cert_pem(other, &pb);
    CHECK(n > 0);
    /* trusting another certificate, and trusting the system store only: both refuse a
     * self-signed acceptor (Ergo's default without InsecureSkipVerify) */
    gni_tlsbio_ctx *cxs[2] = {client_ctx(false, gn_slice_of(pem, (size_t)n), 0),
                           client_ctx(false, gn_slice_of(NULL, 0), 0)};
    for (int i = 0; i < 2; i++) {
        gni_tlsbio *c, *s;
        CHECK_OK(gni_tlsbio_new(cxs[i], "localhost", &c));
        CHECK_OK(gni_tlsbio_new(sx, NULL, &s));
        pump(c, s);
        CHECK(!gni_tlsbio_done(c));
        CHECK_EQ(gni_tlsbio_error(c), GN_EHANDSHAKE);
        CHECK(strstr(gni_tlsbio_diag(c), "certificate verification failed") != NULL);
        CHECK(strstr(gni_tlsbio_diag(c), "self-signed") != NULL ||
              strstr(gni_tlsbio_diag(c), "self signed") != NULL);
        CHECK(strstr(gni_tlsbio_diag(c), "tls_skip_verify") != NULL);
        gni_tlsbio_free(c);
        gni_tlsbio_free(s);
        gni_tlsbio_ctx_free(cxs[i]);
    }
    /* a CA PEM without certificates is refused at setup */
    gni_tlsbio_ctx *bad = client_ctx(false, gn_slice_of("not a pem", 9), GN_EBADKEY);
    CHECK(bad == NULL);
    gni_tlsbio_ctx_free(other);
    gni_tlsbio_ctx_free(sx);
}

/* An Ed25519 key and a self-signed certificate for it, as PEM (made with OpenSSL here). */
static void make_pem(char *cert, size_t clen, char *key, size_t klen)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    X509 *x = X509_new();
    CHECK(k && x);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"localhost", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    CHECK(X509_sign(x, k, NULL) > 0);
    BIO *cb = BIO_new(BIO_s_mem()), *kb = BIO_new(BIO_s_mem());
    CHECK(PEM_write_bio_X509(cb, x) == 1);
    CHECK(PEM_write_bio_PrivateKey(kb, k, NULL, NULL, 0, NULL, NULL) == 1);
    int cn = BIO_read(cb, cert, (int)clen - 1), kn = BIO_read(kb, key, (int)klen - 1);
    CHECK(cn > 0 && kn > 0);
    cert[cn] = key[kn] = '\0';
    BIO_free(cb);
    BIO_free(kb);
    X509_free(x);
    EVP_PKEY_free(k);
}

GN_TEST(certificate_from_pem)
{
    static char cert[4096], key[4096], cert2[4096], key2[4096];
    make_pem(cert, sizeof cert, key, sizeof key);
    make_pem(cert2, sizeof cert2, key2, sizeof key2);
    gni_tlsbio_ctx_config sc = {0};
    sc.server = true;
    sc.cert_pem = gn_slice_of(cert, strlen(cert));
    sc.key_pem = gn_slice_of(key, strlen(key));
    gni_tlsbio_ctx *sx = NULL;
    char diag[256];
    CHECK_OK(gni_tlsbio_ctx_new(&sc, &sx, diag, sizeof diag));
    /* the SHA-1 is over the DER we gave */
    uint8_t der[2048], want[EVP_MAX_MD_SIZE];
    BIO *b = BIO_new_mem_buf(cert, -1);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    unsigned wl = 0;
    CHECK(x && X509_digest(x, EVP_sha1(), want, &wl) == 1 && wl == 20);
    CHECK(i2d_X509(x, NULL) < (int)sizeof der);
    X509_free(x);
    BIO_free(b);
    CHECK_MEM(gni_tlsbio_ctx_cert_sha1(sx), want, 20);
    /* an Ed25519 server handshakes with a client */
    gni_tlsbio_ctx *cx = client_ctx(true, gn_slice_of(NULL, 0), 0);
    gni_tlsbio *c, *s;
    CHECK_OK(gni_tlsbio_new(cx, "localhost", &c));
    CHECK_OK(gni_tlsbio_new(sx, NULL, &s));
    pump(c, s);
    CHECK(gni_tlsbio_done(c) && gni_tlsbio_done(s));
    uint8_t sha[20];
    CHECK_OK(gni_tlsbio_peer_sha1(c, sha));
    CHECK_MEM(sha, want, 20);
    gni_tlsbio_free(c);
    gni_tlsbio_free(s);
    gni_tlsbio_ctx_free(sx);
    gni_tlsbio_ctx_free(cx);

    /* a key of another certificate, garbage, and half a configuration are refused */
    sx = NULL;
    sc.key_pem = gn_slice_of(key2, strlen(key2));
    CHECK_EQ(gni_tlsbio_ctx_new(&sc, &sx, diag, sizeof diag), GN_EBADKEY);
    CHECK(strstr(diag, "does not match") != NULL);
    sc.cert_pem = gn_slice_of("garbage", 7);
    CHECK_EQ(gni_tlsbio_ctx_new(&sc, &sx, diag, sizeof diag), GN_EBADKEY);
    CHECK(strstr(diag, "no certificate") != NULL);
    sc.key_pem = gn_slice_of(NULL, 0);
    CHECK_EQ(gni_tlsbio_ctx_new(&sc, &sx, diag, sizeof diag), GN_EINVAL);
    CHECK(sx == NULL);
    CHECK_EQ(gni_tlsbio_ctx_new(NULL, &sx, NULL, 0), GN_EINVAL);
}

/* a handshaken pair */
static void pair(gni_tlsbio_ctx **cx, gni_tlsbio_ctx **sx, gni_tlsbio **c, gni_tlsbio **s)
{
    *sx = server_ctx("localhost");
    *cx = client_ctx(true, gn_slice_of(NULL, 0), 0);
    CHECK_OK(gni_tlsbio_new(*cx, "localhost", c));
    CHECK_OK(gni_tlsbio_new(*sx, NULL, s));
    pump(*c, *s);
    CHECK(gni_tlsbio_done(*c) && gni_tlsbio_done(*s));
}

static void unpair(gni_tlsbio_ctx *cx, gni_tlsbio_ctx *sx, gni_tlsbio *c, gni_tlsbio *s)
{
    gni_tlsbio_free(c);
    gni_tlsbio_free(s);
    gni_tlsbio_ctx_free(cx);
    gni_tlsbio_ctx_free(sx);
}

GN_TEST(truncated_and_tampered_records)
{
    gni_tlsbio_ctx *cx, *sx;
    gni_tlsbio *c, *s;
    pair(&cx, &sx, &c, &s);
    uint8_t buf[256];
    CHECK_OK(gni_tlsbio_write(c, (const uint8_t *)"hello, acceptor", 15));
    gn_buf b;
    gn_buf_init(&b, wire, sizeof wire);
    size_t n = gni_tlsbio_drain(c, &b);
    CHECK(n > 15);
    /* half a record: nothing to read yet; the stream ending now is a truncation */
    CHECK_OK(gni_tlsbio_feed(s, wire, n / 2));
    CHECK_EQ(gni_tlsbio_read(s, buf, sizeof buf), 0);
    CHECK_EQ(gni_tlsbio_eof(s), GN_EEOF);
    CHECK(strstr(gni_tlsbio_diag(s), "truncated") != NULL);
    CHECK_EQ(gni_tlsbio_read(s, buf, sizeof buf), GN_EEOF); /* sticky */
    unpair(cx, sx, c, s);

    /* a flipped bit in a record: authentication fails */
    pair(&cx, &sx, &c, &s);
    CHECK_OK(gni_tlsbio_write(c, (const uint8_t *)"hello, acceptor", 15));
    gn_buf_init(&b, wire, sizeof wire);
    n = gni_tlsbio_drain(c, &b);
    wire[n - 3] ^= 0x10;
    CHECK_OK(gni_tlsbio_feed(s, wire, n));
    CHECK_EQ(gni_tlsbio_read(s, buf, sizeof buf), GN_EDECRYPT);
    CHECK(strstr(gni_tlsbio_diag(s), "authentication") != NULL);
    unpair(cx, sx, c, s);

    /* the record arriving a byte at a time is read whole once complete */
    pair(&cx, &sx, &c, &s);
    CHECK_OK(gni_tlsbio_write(c, (const uint8_t *)"hello, acceptor", 15));
    gn_buf_init(&b, wire, sizeof wire);
    n = gni_tlsbio_drain(c, &b);
    for (size_t i = 0; i + 1 < n; i++) {
        CHECK_OK(gni_tlsbio_feed(s, wire + i, 1));
        CHECK_EQ(gni_tlsbio_read(s, buf, sizeof buf), 0);
    }
    CHECK_OK(gni_tlsbio_feed(s, wire + n - 1, 1));
    CHECK_EQ(gni_tlsbio_read(s, buf, sizeof buf), 15);
    CHECK_MEM(buf, "hello, acceptor", 15);
    unpair(cx, sx, c, s);
}

GN_TEST(plain_peer_and_early_close)
{
    gni_tlsbio_ctx *sx = server_ctx("localhost");
    gni_tlsbio_ctx *cx = client_ctx(true, gn_slice_of(NULL, 0), 0);
    gni_tlsbio *s, *c;
    /* an EHS Hello (57 01 ...) sent to a TLS acceptor */
    static const uint8_t ehs[16] = {0x57, 0x01, 0, 0, 0, 10, 0x83, 0, 8, '#', 'e', 'r', 'g', 'o'};
    CHECK_OK(gni_tlsbio_new(sx, NULL, &s));
    CHECK_EQ(gni_tlsbio_feed(s, ehs, sizeof ehs), GN_EHANDSHAKE);
    CHECK(strstr(gni_tlsbio_diag(s), "plain Ergo handshake") != NULL);
    gni_tlsbio_free(s);
    /* something else that is not TLS */
    CHECK_OK(gni_tlsbio_new(sx, NULL, &s));
    CHECK_EQ(gni_tlsbio_feed(s, (const uint8_t *)"GET / HTTP/1.1\r\n\r\n", 18), GN_EHANDSHAKE);
    CHECK(strstr(gni_tlsbio_diag(s), "does not speak TLS") != NULL);
    gni_tlsbio_free(s);
    /* the acceptor closing during the handshake (a plain acceptor does) */
    CHECK_OK(gni_tlsbio_new(cx, "localhost", &c));
    CHECK_EQ(gni_tlsbio_eof(c), GN_EEOF);
    CHECK(strstr(gni_tlsbio_diag(c), "does the acceptor run TLS?") != NULL);
    gni_tlsbio_free(c);
    /* plaintext queued before the handshake is bounded */
    CHECK_OK(gni_tlsbio_new(cx, "localhost", &c));
    static uint8_t big[GNI_TLSBIO_EARLY_MAX];
    CHECK_OK(gni_tlsbio_write(c, big, GNI_TLSBIO_EARLY_MAX - 1));
    CHECK_OK(gni_tlsbio_write(c, big, 1));
    CHECK_EQ(gni_tlsbio_write(c, big, 1), GN_EAGAIN);
    CHECK_EQ(gni_tlsbio_error(c), 0);
    CHECK_OK(gni_tlsbio_new(sx, NULL, &s));
    pump(c, s); /* the queue goes out after the handshake */
    CHECK(gni_tlsbio_done(c) && gni_tlsbio_done(s));
    static uint8_t back[GNI_TLSBIO_EARLY_MAX];
    size_t got = 0;
    for (int i = 0; i < 100 && got < sizeof back; i++) { /* bounded by the pump's 256 KiB */
        got += read_all(s, back + got, sizeof back - got);
        if (move(c, s) <= 0)
            break;
    }
    got += read_all(s, back + got, sizeof back - got);
    CHECK_EQ(got, GNI_TLSBIO_EARLY_MAX);
    gni_tlsbio_free(c);
    gni_tlsbio_free(s);
    gni_tlsbio_ctx_free(cx);
    gni_tlsbio_ctx_free(sx);
}

GN_TEST_MAIN(GN_T(handshake_and_data_both_ways), GN_T(verify_against_a_trust_anchor),
             GN_T(bad_certificate_refused), GN_T(certificate_from_pem),
             GN_T(truncated_and_tampered_records), GN_T(plain_peer_and_early_close))

#else /* built without ergo_tls */

GN_TEST(not_built) { SKIP("built without ergo_tls (OpenSSL 3)"); }
GN_TEST_MAIN(GN_T(not_built))

#endif
