/*
 * Unit tests for core/dnsaddr.c: the sans-I/O /dnsaddr walk (recursion,
 * suffix filter, loop and bound handling) and the /dns* substitution.
 * The bootstrap example is the one of multiformats/multiaddr
 * protocols/DNSADDR.md.
 */
#include "golemnet/err.h"
#include "golemnet/multiaddr.h"
#include "gni_dnsaddr.h"

#include "gn_failalloc.h"
#include "gn_test.h"

#define QMNN "QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN"
#define QMBL "QmbLHAnMoJPWSCR5Zhtx6BHJX9KiKNN6tpvbUcqanj75Nb"

static gn_multiaddr *ma_of(const char *s)
{
    gn_multiaddr *ma = NULL;
    return gn_multiaddr_parse(s, &ma) == 0 ? ma : NULL;
}

/* Feeds @n C strings to query @id. */
static int feed(gni_dnsaddr *w, uint32_t id, const char *const *txt, size_t n)
{
    gn_slice s[16];
    for (size_t i = 0; i < n; i++)
        s[i] = gn_slice_of(txt[i], strlen(txt[i]));
    return gni_dnsaddr_feed(w, id, 0, s, n);
}

static void result_str(gn_multiaddr *ma, char *out, size_t len)
{
    CHECK(gn_multiaddr_to_string(ma, out, len) > 0);
}

GN_TEST(dnsaddr_spec_example)
{
    /* DNSADDR.md: /dnsaddr/bootstrap.libp2p.io/p2p/QmNnoo... */
    gn_multiaddr *t = ma_of("/dnsaddr/bootstrap.libp2p.io/p2p/" QMNN);
    gni_dnsaddr w;
    CHECK(t != NULL);
    CHECK_EQ(gni_dnsaddr_init(&w, t, NULL), 0);
    const char *name;
    uint32_t id;
    CHECK_EQ(gni_dnsaddr_next(&w, &name, &id), 1);
    CHECK_STR(name, "_dnsaddr.bootstrap.libp2p.io");
    CHECK_EQ(gni_dnsaddr_next(&w, &name, &id), 0); /* one in flight, none waiting */
    CHECK(!gni_dnsaddr_done(&w));
    static const char *const top[] = {
        "dnsaddr=/dnsaddr/ams-2.bootstrap.libp2p.io/tcp/4001/p2p/" QMBL,
        "dnsaddr=/dnsaddr/sjc-1.bootstrap.libp2p.io/tcp/4001/p2p/" QMNN,
        "v=spf1 -all",            /* not an entry */
        "dnsaddr=/ip4/1.2.3.4/tcp/x", /* does not parse */
    };
    CHECK_EQ(feed(&w, 0, top, 4), 0);
    CHECK_EQ(w.skipped, 3); /* ams-2 (other peer), spf, bad */
    CHECK_EQ(gni_dnsaddr_next(&w, &name, &id), 1);
    CHECK_STR(name, "_dnsaddr.sjc-1.bootstrap.libp2p.io");
    CHECK_EQ(id, 1);
    static const char *const sjc[] = {
        "dnsaddr=/ip4/147.75.69.143/tcp/4001/p2p/" QMNN,
        "dnsaddr=/ip6/2604:1380:1000:6000::1/tcp/4001/p2p/" QMNN,
        "dnsaddr=/ip4/147.75.69.143/tcp/4001/p2p/" QMNN, /* duplicate */
    };
    CHECK_EQ(feed(&w, 1, sjc, 3), 0);
    CHECK(gni_dnsaddr_done(&w));
    CHECK_EQ(feed(&w, 1, sjc, 3), GN_EINVAL); /* fed twice */
    gn_multiaddr *res[8];
    char s[256];
    CHECK_EQ(gni_dnsaddr_take(&w, res, 8), 2);
    result_str(res[0], s, sizeof s);
    CHECK_STR(s, "/ip4/147.75.69.143/tcp/4001/p2p/" QMNN);
    result_str(res[1], s, sizeof s);
    CHECK_STR(s, "/ip6/2604:1380:1000:6000::1/tcp/4001/p2p/" QMNN);
    gn_multiaddr_free(res[0]);
    gn_multiaddr_free(res[1]);
    gni_dnsaddr_fini(&w);
    gn_multiaddr_free(t);
}

GN_TEST(dnsaddr_loop_and_bounds)
{
    /* a -> b -> a (loop) and a -> c -> d -> e (depth 2 stops at d) */
    gn_multiaddr *t = ma_of("/dnsaddr/a.test");
    gni_dnsaddr_limits lim = {2, 8, 3};
    gni_dnsaddr w;
    const char *name;
    uint32_t id;
    CHECK_EQ(gni_dnsaddr_init(&w, t, &lim), 0);
    CHECK_EQ(gni_dnsaddr_next(&w, &name, &id), 1);
    static const char *const a[] = {"dnsaddr=/dnsaddr/b.test", "dnsaddr=/dnsaddr/c.test",
                                    "dnsaddr=/ip4/10.0.0.1/tcp/1"};
    CHECK_EQ(feed(&w, id, a, 3), 0);
    uint32_t ib, ic;
    CHECK_EQ(gni_dnsaddr_next(&w, &name, &ib), 1);
    CHECK_STR(name, "_dnsaddr.b.test");
    CHECK_EQ(gni_dnsaddr_next(&w, &name, &ic), 1);
    CHECK_STR(name, "_dnsaddr.c.test");
    static const char *const b[] = {"dnsaddr=/dnsaddr/a.test"};
    CHECK_EQ(feed(&w, ib, b, 1), 0);
    CHECK_EQ(w.repeated, 1);
    static const char *const c[] = {"dnsaddr=/dnsaddr/d.test", "dnsaddr=/ip4/10.0.0.2/tcp/1",
                                    "dnsaddr=/dns4/x.test/tcp/1", "dnsaddr=/ip4/10.0.0.3/tcp/1"};
    CHECK_EQ(feed(&w, ic, c, 4), 0);
    uint32_t idd;
    CHECK_EQ(gni_dnsaddr_next(&w, &name, &idd), 1); /* d is depth 2: allowed */
    static const char *const d[] = {"dnsaddr=/dnsaddr/e.test"};
    CHECK_EQ(gni_dnsaddr_feed(&w, idd, 0, NULL, 0), 0); /* no record at all */
    CHECK_EQ(gni_dnsaddr_next(&w, &name, &idd), 0);
    (void)d;
    CHECK(gni_dnsaddr_done(&w));
    /* results: 10.0.0.1, 10.0.0.2, /dns4/x.test (max 3), 10.0.0.3 dropped */
    CHECK_EQ(w.nres, 3);
    CHECK_EQ(w.dropped, 1);
    gni_dnsaddr_fini(&w);
    gn_multiaddr_free(t);

    /* depth 0: nested entries are dropped */
    t = ma_of("/dnsaddr/a.test");
    gni_dnsaddr_limits l0 = {0, 8, 8};
    CHECK_EQ(gni_dnsaddr_init(&w, t, &l0), 0);
    CHECK_EQ(gni_dnsaddr_next(&w, &name, &id), 1);
    CHECK_EQ(feed(&w, id, a, 3), 0);
    CHECK_EQ(gni_dnsaddr_next(&w, &name, &id), 0);
    CHECK_EQ(w.dropped, 2);
    CHECK_EQ(w.nres, 1);
    gni_dnsaddr_fini(&w);
    gn_multiaddr_free(t);
}

GN_TEST(dnsaddr_errors)
{
    gn_multiaddr *t = ma_of("/dnsaddr/gone.test/p2p/" QMNN), *ip = ma_of("/ip4/1.2.3.4");
    gni_dnsaddr w;
    const char *name;
    uint32_t id;
    CHECK_EQ(gni_dnsaddr_init(&w, ip, NULL), GN_EINVAL); /* not /dnsaddr */
    gni_dnsaddr_fini(&w);
    CHECK_EQ(gni_dnsaddr_init(&w, t, NULL), 0);
    CHECK_EQ(gni_dnsaddr_feed(&w, 0, 0, NULL, 0), GN_EINVAL); /* not sent yet */
    CHECK_EQ(gni_dnsaddr_next(&w, &name, &id), 1);
    CHECK_EQ(gni_dnsaddr_feed(&w, 7, 0, NULL, 0), GN_EINVAL);
    CHECK_EQ(gni_dnsaddr_feed(&w, id, GN_ERESOLVE, NULL, 0), 0);
    CHECK_EQ(w.first_err, GN_ERESOLVE);
    CHECK_STR(w.first_err_name, "_dnsaddr.gone.test");
    CHECK(gni_dnsaddr_done(&w));
    CHECK_EQ(w.nres, 0);
    /* an entry with a NUL inside is skipped */
    gni_dnsaddr_fini(&w);
    CHECK_EQ(gni_dnsaddr_init(&w, t, NULL), 0);
    CHECK_EQ(gni_dnsaddr_next(&w, &name, &id), 1);
    static const char nul[] = "dnsaddr=/ip4/1.2.3.4\0/tcp/1";
    gn_slice s = gn_slice_of(nul, sizeof nul - 1);
    CHECK_EQ(gni_dnsaddr_feed(&w, id, 0, &s, 1), 0);
    CHECK_EQ(w.skipped, 1);
    gni_dnsaddr_fini(&w);
    gn_multiaddr_free(t);
    gn_multiaddr_free(ip);
}

GN_TEST(dns_substitute_sni)
{
    static const struct {
        const char *in, *out;
    } v[] = {
        {"/dns4/example.com/tcp/443/wss/p2p/" QMNN,
         "/ip4/192.0.2.1/tcp/443/tls/sni/example.com/ws/p2p/" QMNN},
        {"/dns4/example.com/tcp/443/tls/ws", "/ip4/192.0.2.1/tcp/443/tls/sni/example.com/ws"},
        {"/dns4/example.com/tcp/443/tls/sni/other.org/ws",
         "/ip4/192.0.2.1/tcp/443/tls/sni/other.org/ws"},
        {"/dns/example.com/tcp/4001", "/ip4/192.0.2.1/tcp/4001"},
        {"/dns4/example.com", "/ip4/192.0.2.1"},
        {"/dns4/example.com/udp/1/quic-v1/webtransport/certhash/"
         "uEiDDq4_xNyDorZBH3TlGazyJdOWSwvo4PUo5YHFMrvDE8g/unix/%2Fa%2Fb",
         "/ip4/192.0.2.1/udp/1/quic-v1/webtransport/certhash/"
         "uEiDDq4_xNyDorZBH3TlGazyJdOWSwvo4PUo5YHFMrvDE8g/unix/a/b"},
    };
    const uint8_t ip4[4] = {192, 0, 2, 1};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        gn_multiaddr *in = ma_of(v[i].in), *out = NULL;
        char s[512];
        CHECK(in != NULL);
        CHECK_EQ(gni_dns_substitute(in, ip4, 4, &out), 0);
        result_str(out, s, sizeof s);
        if (strcmp(s, v[i].out) != 0)
            printf("# %s -> %s\n", v[i].in, s);
        CHECK_STR(s, v[i].out);
        gn_multiaddr_free(in);
        gn_multiaddr_free(out);
    }
    const uint8_t ip6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
    gn_multiaddr *in = ma_of("/dns6/h.test/tcp/1"), *out = NULL, *ip = ma_of("/ip4/1.2.3.4");
    char s[128];
    CHECK_EQ(gni_dns_substitute(in, ip6, 16, &out), 0);
    result_str(out, s, sizeof s);
    CHECK_STR(s, "/ip6/2001:db8::1/tcp/1");
    gn_multiaddr_free(out);
    CHECK_EQ(gni_dns_substitute(in, ip6, 5, &out), GN_EINVAL);
    CHECK_EQ(gni_dns_substitute(ip, ip4, 4, &out), GN_EINVAL);
    gn_multiaddr_free(in);
    gn_multiaddr_free(ip);
}

/* The spec example again, then each result substituted; any failed
 * allocation must come back as GN_ENOMEM with nothing left allocated. */
static int da_scenario(void)
{
    static const char *const top[] = {
        "dnsaddr=/dnsaddr/sjc-1.bootstrap.libp2p.io/tcp/4001/p2p/" QMNN,
        "dnsaddr=/dnsaddr/ams-2.bootstrap.libp2p.io/tcp/4001/p2p/" QMBL,
    };
    static const char *const sjc[] = {
        "dnsaddr=/ip4/147.75.69.143/tcp/4001/p2p/" QMNN,
        "dnsaddr=/dns4/sjc-1.example/tcp/4001/p2p/" QMNN,
    };
    static const uint8_t ip[4] = {192, 0, 2, 1};
    gn_multiaddr *t = NULL;
    int rc = gn_multiaddr_parse("/dnsaddr/bootstrap.libp2p.io/p2p/" QMNN, &t);
    if (rc < 0)
        return rc;
    gni_dnsaddr w;
    const char *name;
    uint32_t id;
    rc = gni_dnsaddr_init(&w, t, NULL);
    if (rc == 0 && gni_dnsaddr_next(&w, &name, &id) == 1)
        rc = feed(&w, id, top, 2);
    if (rc == 0 && gni_dnsaddr_next(&w, &name, &id) == 1)
        rc = feed(&w, id, sjc, 2);
    if (rc == 0) {
        gn_multiaddr *res[4];
        size_t n = gni_dnsaddr_take(&w, res, 4);
        if (n != 2)
            rc = GN_EINTERNAL;
        for (size_t i = 0; i < n; i++) {
            gn_multiaddr *o = NULL;
            gn_ma_component c;
            if (rc == 0 && gn_multiaddr_component(res[i], 0, &c) == 0 && c.code == GN_MA_DNS4)
                rc = gni_dns_substitute(res[i], ip, 4, &o);
            gn_multiaddr_free(o);
            gn_multiaddr_free(res[i]);
        }
    }
    gni_dnsaddr_fini(&w);
    gn_multiaddr_free(t);
    return rc;
}

GN_TEST(dnsaddr_alloc_failure)
{
    size_t failures = fa_every_k(da_scenario, 64);
    CHECK(failures >= 4); /* target, walk copy, entries, substitution */
}

/* Two nested entries of one name with different suffixes (peers A and B
 * behind one _dnsaddr.x) are both followed, each keeping its own peer's
 * entries; the same name and suffix again is a repeat. */
GN_TEST(dnsaddr_same_name_other_suffix)
{
    gn_multiaddr *t = ma_of("/dnsaddr/root.test");
    gni_dnsaddr w;
    const char *name;
    uint32_t id, i1, i2;
    CHECK_EQ(gni_dnsaddr_init(&w, t, NULL), 0);
    CHECK_EQ(gni_dnsaddr_next(&w, &name, &id), 1);
    static const char *const root[] = {"dnsaddr=/dnsaddr/x.test/p2p/" QMNN,
                                       "dnsaddr=/dnsaddr/x.test/p2p/" QMBL,
                                       "dnsaddr=/dnsaddr/x.test/p2p/" QMBL};
    CHECK_EQ(feed(&w, id, root, 3), 0);
    CHECK_EQ(w.repeated, 1);
    CHECK_EQ(gni_dnsaddr_next(&w, &name, &i1), 1);
    CHECK_STR(name, "_dnsaddr.x.test");
    CHECK_EQ(gni_dnsaddr_next(&w, &name, &i2), 1);
    CHECK_STR(name, "_dnsaddr.x.test");
    static const char *const x[] = {"dnsaddr=/ip4/10.0.0.1/tcp/1/p2p/" QMNN,
                                    "dnsaddr=/ip4/10.0.0.2/tcp/1/p2p/" QMBL};
    CHECK_EQ(feed(&w, i1, x, 2), 0);
    CHECK_EQ(feed(&w, i2, x, 2), 0);
    CHECK(gni_dnsaddr_done(&w));
    gn_multiaddr *res[4];
    char s[256];
    CHECK_EQ(gni_dnsaddr_take(&w, res, 4), 2);
    result_str(res[0], s, sizeof s);
    CHECK_STR(s, "/ip4/10.0.0.1/tcp/1/p2p/" QMNN);
    result_str(res[1], s, sizeof s);
    CHECK_STR(s, "/ip4/10.0.0.2/tcp/1/p2p/" QMBL);
    gn_multiaddr_free(res[0]);
    gn_multiaddr_free(res[1]);
    gni_dnsaddr_fini(&w);
    gn_multiaddr_free(t);
}

GN_TEST_MAIN(GN_T(dnsaddr_spec_example), GN_T(dnsaddr_loop_and_bounds), GN_T(dnsaddr_errors),
             GN_T(dns_substitute_sni), GN_T(dnsaddr_alloc_failure),
             GN_T(dnsaddr_same_name_other_suffix))
