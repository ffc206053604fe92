/*
 * ergo_tls_uv_test: Ergo links with TLS over real TCP on 127.0.0.1
 * (protocols/ergo/ergo_uv.c + core/tlsbio.c): a TLS acceptor with a generated
 * certificate and a dialler using the route's TLS flag (pool of 3, every
 * link TLS, frames both ways, a joined link killed and re-joined over TLS),
 * certificate files verified against a trust anchor, an unverifiable
 * certificate refused, a man in the middle with its own certificate refused
 * by the DigestCert fingerprint (and let through when the check is off, as
 * Ergo's DisableTLSFingerprint does), and TLS against plain refused cleanly
 * both ways with messages saying so. Every node closes; the loop ends empty.
 */
#include "gn_test.h"

#include "ergo_tls_config.h"

#if GNI_HAVE_ERGO_TLS

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "gni_tlsbio.h"
#include "ergo_uv.h"
#include "golemnet/edf.h"
#include "golemnet/err.h"

typedef struct side {
    gni_ergo_node *n;
    gni_ergo_conn *c;
    unsigned conns, downs, link_errors, frames;
    int last_err;
    uint64_t last_seq;
    bool out_of_order;
    char diag[256];
} side;

#include "ergo_uv_harness.h"

static gn_edf_registry *reg;
static unsigned mitm_live; /* proxied connections not yet freed */

static void on_frame(gni_ergo_conn *c, const uint8_t *f, size_t len, void *ud)
{
    side *s = ud;
    (void)c;
    if (len != 16)
        return;
    uint64_t seq = 0;
    for (int i = 8; i < 16; i++)
        seq = seq << 8 | f[i];
    if (seq <= s->last_seq)
        s->out_of_order = true;
    s->last_seq = seq;
    s->frames++;
}

static gni_ergo_options opts(const char *node, side *s)
{
    static const gni_ergo_callbacks cb = {.on_conn = on_conn, .on_frame = on_frame,
                                          .on_conn_down = on_down, .on_link_error = on_link_error};
    gni_ergo_options o = ergo_test_options(reg, node, "golem-tls-cookie", &cb, s);
    o.pool_size = 3;
    memset(s, 0, sizeof *s);
    return o;
}

/* a 16-byte ENP frame (type 101 header + an 8-byte sequence number) */
static void send_seq(side *s, uint64_t from, uint64_t seq)
{
    uint8_t f[16] = {0x4e, 0x01, 0, 0, 0, 16, 0, 101};
    f[6] = (uint8_t)(from % 255);
    for (int i = 0; i < 8; i++)
        f[8 + i] = (uint8_t)(seq >> (56 - 8 * i));
    CHECK_OK(gni_ergo_conn_send(s->c, from, true, f, sizeof f));
}

static void setup(void)
{
    ergo_test_block_sigpipe();
    CHECK_OK(uv_loop_init(&loop));
    reg = gn_edf_registry_new();
    CHECK_OK(gn_edf_registry_add_ergo(reg));
    gn_edf_registry_freeze(reg);
    closed = 0;
}

static void close_all(side **sides, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        gni_ergo_node_close(sides[i]->n, on_closed, NULL);
    RUN_UNTIL(closed == n && mitm_live == 0);
    CHECK_EQ(uv_run(&loop, UV_RUN_NOWAIT), 0);
    CHECK_OK(uv_loop_close(&loop));
    gn_edf_registry_free(reg);
}

GN_TEST(tls_pool_of_three)
{
    setup();
    side a, b;
    gni_ergo_options oa = opts("beta@127.0.0.1", &a);
    oa.tls = true; /* no files: a generated self-signed certificate */
    gni_ergo_options ob = opts("alpha@127.0.0.1", &b);
    ob.tls_skip_verify = true; /* self-signed: Ergo's InsecureSkipVerify */
    CHECK_OK(gni_ergo_node_new(&loop, &oa, &a.n));
    CHECK_OK(gni_ergo_node_new(&loop, &ob, &b.n));
    CHECK(gni_ergo_node_tls(a.n));
    CHECK(!gni_ergo_node_tls(b.n));
    uint16_t port = gni_ergo_node_port(a.n);
    CHECK_OK(gni_ergo_dial_tls(b.n, "127.0.0.1", port, "beta@127.0.0.1", true));
    /* the acceptor takes only TLS, so three links means the joins ran TLS too */
    RUN_UNTIL(a.c && b.c && gni_ergo_conn_links(a.c) == 3 && gni_ergo_conn_links(b.c) == 3);
    CHECK_EQ(a.link_errors + b.link_errors, 0);
    CHECK_EQ(gni_ergo_conn_info(b.c)->pool_size, 3);

    uint64_t sb = 0, sa = 0;
    for (int i = 0; i < 200; i++)
        send_seq(&b, 1001, ++sb);
    for (int i = 0; i < 50; i++)
        send_seq(&a, 2002, ++sa);
    RUN_UNTIL(a.frames == 200 && b.frames == 50);
    CHECK(!a.out_of_order && !b.out_of_order);

    /* a joined link dies: the dialler re-joins over TLS and frames flow again */
    CHECK_OK(gni_ergo_conn_kill_link(a.c, 1));
    RUN_UNTIL(gni_ergo_conn_links(a.c) == 3 && gni_ergo_conn_links(b.c) == 3);
    for (int i = 0; i < 100; i++)
        send_seq(&b, 1001, ++sb);
    RUN_UNTIL(a.frames >= 300);
    CHECK(!a.out_of_order);
    CHECK_EQ(a.conns, 1);
    CHECK_EQ(a.downs + b.downs, 0);
    side *all[] = {&a, &b};
    close_all(all, 2);
    CHECK_EQ(a.downs, 1);
    CHECK_EQ(b.downs, 1);
}

/* ---- certificate files ---------------------------------------------------------------- */

static char tmpdir[64];

static void write_file(const char *path, BIO *b)
{
    char *p = NULL;
    long n = BIO_get_mem_data(b, &p);
    FILE *f = fopen(path, "wb");
    CHECK(f && n > 0);
    CHECK_EQ(fwrite(p, 1, (size_t)n, f), n);
    fclose(f);
}

/* cert.pem + key.pem in tmpdir: ECDSA P-256, self-signed for DNS:localhost */
static void make_files(char *cert, char *key, size_t len)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/gn_ergo_tls_XXXXXX");
    CHECK(mkdtemp(tmpdir) != NULL);
    snprintf(cert, len, "%s/cert.pem", tmpdir);
    snprintf(key, len, "%s/key.pem", tmpdir);
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    CHECK(k && x);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 42);
    X509_set_version(x, 2);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"localhost", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:localhost");
    CHECK(e && X509_add_ext(x, e, -1));
    X509_EXTENSION_free(e);
    e = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:TRUE");
    CHECK(e && X509_add_ext(x, e, -1));
    X509_EXTENSION_free(e);
    CHECK(X509_sign(x, k, EVP_sha256()) > 0);
    BIO *cb = BIO_new(BIO_s_mem()), *kb = BIO_new(BIO_s_mem());
    CHECK(PEM_write_bio_X509(cb, x) == 1);
    CHECK(PEM_write_bio_PrivateKey(kb, k, NULL, NULL, 0, NULL, NULL) == 1);
    write_file(cert, cb);
    write_file(key, kb);
    BIO_free(cb);
    BIO_free(kb);
    X509_free(x);
    EVP_PKEY_free(k);
}

GN_TEST(certificate_files_and_verification)
{
    setup();
    char cert[128], key[128], missing[160];
    make_files(cert, key, sizeof cert);
    side a, b, c, d;
    gni_ergo_options oa = opts("beta@localhost", &a);
    oa.tls = true;
    oa.tls_cert_file = cert;
    oa.tls_key_file = key;
    /* configuration errors first: a missing file, a certificate without its key */
    snprintf(missing, sizeof missing, "%s/none.pem", tmpdir);
    gni_ergo_options bad = oa;
    bad.tls_key_file = missing;
    CHECK_EQ(gni_ergo_node_new(&loop, &bad, &a.n), GN_EIO);
    bad.tls_key_file = NULL;
    CHECK_EQ(gni_ergo_node_new(&loop, &bad, &a.n), GN_EINVAL);
    bad = oa;
    bad.tls_key_file = cert; /* no key in it */
    CHECK_EQ(gni_ergo_node_new(&loop, &bad, &a.n), GN_EBADKEY);
    CHECK_OK(gni_ergo_node_new(&loop, &oa, &a.n));
    uint16_t port = gni_ergo_node_port(a.n);

    /* B trusts the certificate: verified for the host of the node name (localhost) */
    gni_ergo_options ob = opts("alpha@localhost", &b);
    ob.tls_ca_file = cert;
    CHECK_OK(gni_ergo_node_new(&loop, &ob, &b.n));
    CHECK_OK(gni_ergo_dial_tls(b.n, "127.0.0.1", port, "beta@localhost", true));
    RUN_UNTIL(b.c && gni_ergo_conn_links(b.c) == 3 && a.c && gni_ergo_conn_links(a.c) == 3);
    CHECK_EQ(a.link_errors + b.link_errors, 0);

    /* C verifies with the system store only: the self-signed certificate is refused,
     * and the refusal says why */
    gni_ergo_options oc = opts("gamma@localhost", &c);
    CHECK_OK(gni_ergo_node_new(&loop, &oc, &c.n));
    CHECK_OK(gni_ergo_dial_tls(c.n, "127.0.0.1", port, "beta@localhost", true));
    RUN_UNTIL(c.link_errors > 0);
    CHECK(strstr(c.diag, "certificate verification failed") != NULL);
    CHECK_EQ(c.conns, 0);

    /* D's CA file is missing: the dial itself fails */
    gni_ergo_options od = opts("delta@localhost", &d);
    od.tls_ca_file = missing;
    CHECK_OK(gni_ergo_node_new(&loop, &od, &d.n));
    CHECK_EQ(gni_ergo_dial_tls(d.n, "127.0.0.1", port, "beta@localhost", true), GN_EIO);

    side *all[] = {&a, &b, &c, &d};
    close_all(all, 4);
    unlink(cert);
    unlink(key);
    rmdir(tmpdir);
}

/* ---- a man in the middle: TLS to the dialler with its own certificate, TLS to the
 * acceptor, plaintext relayed between them --------------------------------------------- */

typedef struct mitm_conn {
    uv_tcp_t down, up;
    uv_connect_t creq;
    gni_tlsbio *td, *tu; /* server towards the dialler, client towards the acceptor */
    int open;
    bool closing;
} mitm_conn;

typedef struct mitm {
    uv_tcp_t listener;
    gni_tlsbio_ctx *sx, *cx;
    struct sockaddr_in target;
    mitm_conn *mc;
    unsigned accepted;
} mitm;

static void mc_write_done(uv_write_t *w, int st)
{
    (void)st;
    free(w);
}

static void mc_flush(gni_tlsbio *t, uv_tcp_t *to)
{
    size_t n = gni_tlsbio_pending(t);
    if (n == 0 || uv_is_closing((uv_handle_t *)to))
        return;
    uv_write_t *w = malloc(sizeof *w + n);
    gn_buf b;
    gn_buf_init(&b, w + 1, n);
    uv_buf_t ub = uv_buf_init((char *)(w + 1), (unsigned)gni_tlsbio_drain(t, &b));
    if (uv_write(w, (uv_stream_t *)to, &ub, 1, mc_write_done) < 0)
        free(w);
}

static void mc_closed(uv_handle_t *h)
{
    mitm_conn *mc = h->data;
    if (--mc->open == 0) {
        mitm_live--;
        gni_tlsbio_free(mc->td);
        gni_tlsbio_free(mc->tu);
        free(mc);
    }
}

static void mc_close(mitm_conn *mc)
{
    if (mc->closing)
        return;
    mc->closing = true;
    uv_close((uv_handle_t *)&mc->down, mc_closed);
    uv_close((uv_handle_t *)&mc->up, mc_closed);
}

static void mc_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    (void)h;
    b->base = malloc(sz);
    b->len = sz;
}

/* ciphertext from one side: decrypt, re-encrypt towards the other */
static void mc_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    mitm_conn *mc = s->data;
    bool from_down = s == (uv_stream_t *)&mc->down;
    gni_tlsbio *in = from_down ? mc->td : mc->tu, *out = from_down ? mc->tu : mc->td;
    uv_tcp_t *back = from_down ? &mc->down : &mc->up, *fwd = from_down ? &mc->up : &mc->down;
    if (nread > 0 && !mc->closing) {
        uint8_t plain[GNI_TLSBIO_RECORD_MAX];
        int n = gni_tlsbio_feed(in, (const uint8_t *)buf->base, (size_t)nread);
        mc_flush(in, back);
        for (int i = 0; n >= 0 && i < 1000; i++) { /* bounded: what was fed */
            n = gni_tlsbio_read(in, plain, sizeof plain);
            if (n <= 0)
                break;
            gni_tlsbio_write(out, plain, (size_t)n);
        }
        mc_flush(out, fwd);
        if (n < 0)
            mc_close(mc);
    }
    free(buf->base);
    if (nread < 0)
        mc_close(mc);
}

static void mc_connected(uv_connect_t *r, int st)
{
    mitm_conn *mc = r->data;
    if (st < 0 || mc->closing) {
        mc_close(mc);
        return;
    }
    mc_flush(mc->tu, &mc->up); /* the ClientHello */
    uv_read_start((uv_stream_t *)&mc->up, mc_alloc, mc_read);
}

static void mitm_accept(uv_stream_t *srv, int st)
{
    mitm *m = srv->data;
    if (st < 0)
        return;
    mitm_conn *mc = calloc(1, sizeof *mc);
    uv_tcp_init(&loop, &mc->down);
    uv_tcp_init(&loop, &mc->up);
    mc->down.data = mc->up.data = mc->creq.data = mc;
    mc->open = 2;
    mitm_live++;
    m->accepted++;
    if (uv_accept(srv, (uv_stream_t *)&mc->down) < 0 || gni_tlsbio_new(m->sx, NULL, &mc->td) < 0 ||
        gni_tlsbio_new(m->cx, NULL, &mc->tu) < 0 ||
        uv_tcp_connect(&mc->creq, &mc->up, (const struct sockaddr *)&m->target,
                       mc_connected) < 0) {
        mc_close(mc);
        return;
    }
    uv_read_start((uv_stream_t *)&mc->down, mc_alloc, mc_read);
}

static uint16_t mitm_start(mitm *m, uint16_t target_port)
{
    memset(m, 0, sizeof *m);
    gni_tlsbio_ctx_config sc = {0}, cc = {0};
    sc.server = true;
    sc.host = "127.0.0.1";
    cc.skip_verify = true;
    CHECK_OK(gni_tlsbio_ctx_new(&sc, &m->sx, NULL, 0));
    CHECK_OK(gni_tlsbio_ctx_new(&cc, &m->cx, NULL, 0));
    CHECK_OK(uv_ip4_addr("127.0.0.1", target_port, &m->target));
    struct sockaddr_in any;
    CHECK_OK(uv_ip4_addr("127.0.0.1", 0, &any));
    CHECK_OK(uv_tcp_init(&loop, &m->listener));
    m->listener.data = m;
    CHECK_OK(uv_tcp_bind(&m->listener, (const struct sockaddr *)&any, 0));
    CHECK_OK(uv_listen((uv_stream_t *)&m->listener, 8, mitm_accept));
    struct sockaddr_in got;
    int gl = sizeof got;
    uv_tcp_getsockname(&m->listener, (struct sockaddr *)&got, &gl);
    return ntohs(got.sin_port);
}

static void mitm_listener_closed(uv_handle_t *h)
{
    mitm *m = h->data;
    gni_tlsbio_ctx_free(m->sx);
    gni_tlsbio_ctx_free(m->cx);
    closed++;
}

GN_TEST(fingerprint_mismatch_refused)
{
    setup();
    side a, b, c;
    gni_ergo_options oa = opts("beta@127.0.0.1", &a);
    oa.tls = true;
    gni_ergo_options ob = opts("alpha@127.0.0.1", &b);
    ob.tls_skip_verify = true; /* only the fingerprint protects this dialler */
    CHECK_OK(gni_ergo_node_new(&loop, &oa, &a.n));
    CHECK_OK(gni_ergo_node_new(&loop, &ob, &b.n));
    mitm m;
    uint16_t mport = mitm_start(&m, gni_ergo_node_port(a.n));

    /* the acceptor's DigestCert names its certificate, not the one B sees: refused */
    CHECK_OK(gni_ergo_dial_tls(b.n, "127.0.0.1", mport, "beta@127.0.0.1", true));
    RUN_UNTIL(b.link_errors > 0);
    CHECK(strstr(b.diag, "TLS fingerprint mismatch") != NULL);
    CHECK_EQ(b.conns, 0);
    CHECK_EQ(m.accepted, 1);
    RUN_UNTIL(a.link_errors > 0); /* the acceptor saw the link go mid-handshake */
    CHECK_EQ(a.conns, 0);

    /* with the check off (Ergo's DisableTLSFingerprint) the same path is let through */
    gni_ergo_options oc = opts("gamma@127.0.0.1", &c);
    oc.tls_skip_verify = true;
    oc.tls_no_fingerprint = true;
    CHECK_OK(gni_ergo_node_new(&loop, &oc, &c.n));
    CHECK_OK(gni_ergo_dial_tls(c.n, "127.0.0.1", mport, "beta@127.0.0.1", true));
    RUN_UNTIL(c.c && a.c && gni_ergo_conn_links(c.c) == 3);
    CHECK_EQ(c.link_errors, 0);

    uv_close((uv_handle_t *)&m.listener, mitm_listener_closed);
    RUN_UNTIL(closed == 1);
    closed = 0;
    side *all[] = {&a, &b, &c};
    close_all(all, 3);
}

GN_TEST(tls_and_plain_refused_cleanly)
{
    setup();
    side a, p, b, d;
    gni_ergo_options oa = opts("beta@127.0.0.1", &a);
    oa.tls = true;
    gni_ergo_options op = opts("plain@127.0.0.1", &p);
    gni_ergo_options ob = opts("alpha@127.0.0.1", &b);
    gni_ergo_options od = opts("delta@127.0.0.1", &d);
    od.tls_skip_verify = true;
    CHECK_OK(gni_ergo_node_new(&loop, &oa, &a.n));
    CHECK_OK(gni_ergo_node_new(&loop, &op, &p.n));
    CHECK_OK(gni_ergo_node_new(&loop, &ob, &b.n));
    CHECK_OK(gni_ergo_node_new(&loop, &od, &d.n));

    /* a plain dialler at a TLS acceptor: both sides say what happened */
    CHECK_OK(gni_ergo_dial(b.n, "127.0.0.1", gni_ergo_node_port(a.n), "beta@127.0.0.1"));
    RUN_UNTIL(a.link_errors > 0 && b.link_errors > 0);
    CHECK(strstr(a.diag, "plain Ergo handshake on a TLS acceptor") != NULL);
    CHECK(strstr(b.diag, "the acceptor runs TLS") != NULL);
    CHECK_EQ(a.conns + b.conns, 0);

    /* a TLS dialler at a plain acceptor */
    CHECK_OK(gni_ergo_dial_tls(d.n, "127.0.0.1", gni_ergo_node_port(p.n), "plain@127.0.0.1",
                               true));
    RUN_UNTIL(p.link_errors > 0 && d.link_errors > 0);
    CHECK(strstr(p.diag, "dialled with TLS but this acceptor has no TLS") != NULL);
    CHECK(strstr(d.diag, "does the acceptor run TLS?") != NULL);
    CHECK_EQ(p.conns + d.conns, 0);

    side *all[] = {&a, &p, &b, &d};
    close_all(all, 4);
}

GN_TEST_MAIN(GN_T(tls_pool_of_three), GN_T(certificate_files_and_verification),
             GN_T(fingerprint_mismatch_refused), GN_T(tls_and_plain_refused_cleanly))

#else /* built without ergo_tls */

#include <uv.h>

#include "ergo_uv.h"
#include "golemnet/edf.h"
#include "golemnet/err.h"

/* without OpenSSL, TLS is refused up front, never half-done */
GN_TEST(tls_not_built_is_refused)
{
    uv_loop_t loop;
    CHECK_OK(uv_loop_init(&loop));
    gn_edf_registry *reg = gn_edf_registry_new();
    CHECK_OK(gn_edf_registry_add_ergo(reg));
    gn_edf_registry_freeze(reg);
    gni_ergo_options o;
    memset(&o, 0, sizeof o);
    o.reg = reg;
    o.node = "alpha@127.0.0.1";
    o.cookie = "golem-tls-cookie";
    o.tls = true;
    gni_ergo_node *n = NULL;
    CHECK_EQ(gni_ergo_node_new(&loop, &o, &n), GN_ENOTSUP);
    o.tls = false;
    CHECK_OK(gni_ergo_node_new(&loop, &o, &n));
    CHECK_EQ(gni_ergo_dial_tls(n, "127.0.0.1", 1, NULL, true), GN_ENOTSUP);
    CHECK(!gni_ergo_node_tls(n));
    gni_ergo_node_close(n, NULL, NULL);
    CHECK_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
    CHECK_OK(uv_loop_close(&loop));
    gn_edf_registry_free(reg);
}
GN_TEST_MAIN(GN_T(tls_not_built_is_refused))

#endif
