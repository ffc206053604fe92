/*
 * Unit tests of layers/nat/natcore.c, the pure logic of the upnp and
 * natpmp NAT components: reading the internal multiaddr, forming the
 * external one, lease and renewal arithmetic, option parsing, and the
 * UPnP / NAT-PMP code tables.
 */
#include "golemnet/golemnet.h"

#include "gn_test.h"
#include "natcore.h"

#include <string.h>

static gn_multiaddr *ma(const char *s)
{
    gn_multiaddr *m = NULL;
    CHECK_OK(gn_multiaddr_parse(s, &m));
    return m;
}

GN_TEST(target_parse_tcp_udp_and_suffix)
{
    gni_nat_target t;
    gn_multiaddr *m = ma("/ip4/10.77.1.2/tcp/4001");
    CHECK_EQ(gni_nat_target_parse(m, &t), 0);
    CHECK_MEM(t.ip, "\x0a\x4d\x01\x02", 4);
    CHECK_EQ(t.port, 4001);
    CHECK_EQ(t.proto, GNI_NAT_TCP);
    CHECK_STR(t.rest, "");
    gn_multiaddr_free(m);

    m = ma("/ip4/0.0.0.0/udp/65535/utp");
    CHECK_EQ(gni_nat_target_parse(m, &t), 0);
    CHECK_MEM(t.ip, "\0\0\0\0", 4);
    CHECK_EQ(t.port, 65535);
    CHECK_EQ(t.proto, GNI_NAT_UDP);
    CHECK_STR(t.rest, "/utp");
    CHECK_STR(gni_nat_proto_name(t.proto), "UDP");

    gn_multiaddr *ext = NULL;
    static const uint8_t pub[4] = {203, 0, 113, 7};
    CHECK_EQ(gni_nat_external(&t, pub, 40001, &ext), 0);
    char text[128];
    CHECK_OK(gn_multiaddr_to_string(ext, text, sizeof text));
    CHECK_STR(text, "/ip4/203.0.113.7/udp/40001/utp");
    gn_multiaddr_free(ext);
    CHECK_EQ(gni_nat_external(&t, pub, 0, &ext), GN_EINVAL);
    gn_multiaddr_free(m);
}

GN_TEST(target_parse_refuses_what_cannot_be_mapped)
{
    gni_nat_target t;
    static const char *const no[] = {"/ip6/::1/tcp/1", "/dns/example.com/tcp/1",
                                     "/ip4/1.2.3.4", "/ip4/1.2.3.4/p2p-circuit"};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        gn_multiaddr *m = ma(no[i]);
        CHECK_EQ(gni_nat_target_parse(m, &t), GN_ENOTSUP);
        gn_multiaddr_free(m);
    }
    gn_multiaddr *m = ma("/ip4/1.2.3.4/tcp/0");
    CHECK_EQ(gni_nat_target_parse(m, &t), GN_EINVAL);
    gn_multiaddr_free(m);
    CHECK_EQ(gni_nat_target_parse(NULL, &t), GN_EINVAL);
}

GN_TEST(ip4_parse_format_and_reserved)
{
    uint8_t ip[4];
    char buf[16];
    CHECK_EQ(gni_nat_ip4_parse("203.0.113.7", ip), 0);
    CHECK_STR(gni_nat_ip4_format(ip, buf, sizeof buf), "203.0.113.7");
    static const char *const bad[] = {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.4 ",
                                      "a.b.c.d", "1..2.3", "0001.1.1.1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ(gni_nat_ip4_parse(bad[i], ip), GN_EPARSE);
    }
    static const char *const reserved[] = {"10.77.2.1",   "192.168.1.1", "172.16.0.1",
                                           "172.31.255.1", "100.64.0.1", "127.0.0.1",
                                           "169.254.1.1", "0.0.0.0",     "224.0.0.1",
                                           "198.18.0.1",  "198.51.100.1", "192.0.2.1"};
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
        CHECK_EQ(gni_nat_ip4_parse(reserved[i], ip), 0);
        if (!gni_nat_ip4_is_reserved(ip))
            printf("# %s\n", reserved[i]);
        CHECK(gni_nat_ip4_is_reserved(ip));
    }
    static const char *const pub[] = {"203.0.113.7", "8.8.8.8", "172.32.0.1", "100.128.0.1",
                                      "11.0.0.1"};
    for (size_t i = 0; i < sizeof pub / sizeof pub[0]; i++) {
        CHECK_EQ(gni_nat_ip4_parse(pub[i], ip), 0);
        CHECK(!gni_nat_ip4_is_reserved(ip));
    }
}

GN_TEST(lease_and_renewal)
{
    CHECK_EQ(gni_nat_lease_s(60 * 60 * GN_S, 0, 2, 604800), 3600);
    CHECK_EQ(gni_nat_lease_s(1500 * GN_MS, 0, 2, 604800), 2);      /* rounded up, then min */
    CHECK_EQ(gni_nat_lease_s(2500 * GN_MS, 0, 1, 604800), 3);      /* rounded up */
    CHECK_EQ(gni_nat_lease_s(60 * 60 * GN_S, 4, 2, 604800), 4);    /* the option wins */
    CHECK_EQ(gni_nat_lease_s(30ull * 86400 * GN_S, 0, 2, 604800), 604800);
    CHECK_EQ(gni_nat_renew_delay(0), 0);                          /* permanent */
    CHECK_EQ(gni_nat_renew_delay(1), GN_S);                       /* at least 1 s */
    CHECK_EQ(gni_nat_renew_delay(4), 2 * GN_S);
    CHECK_EQ(gni_nat_renew_delay(7200), 3600 * GN_S);             /* RFC 6886 3.3: half */
}

GN_TEST(parse_u32)
{
    uint32_t v = 7;
    CHECK_EQ(gni_nat_parse_u32("2000", 100, 30000, &v), 0);
    CHECK_EQ(v, 2000);
    CHECK_EQ(gni_nat_parse_u32("99", 100, 30000, &v), GN_ERANGE);
    CHECK_EQ(gni_nat_parse_u32("99999999999", 0, UINT32_MAX, &v), GN_ERANGE);
    CHECK_EQ(gni_nat_parse_u32("", 0, 10, &v), GN_EPARSE);
    CHECK_EQ(gni_nat_parse_u32("1x", 0, 10, &v), GN_EPARSE);
    CHECK_EQ(gni_nat_parse_u32("-1", 0, 10, &v), GN_EPARSE);
    CHECK_EQ(v, 2000); /* untouched on failure */
}

GN_TEST(upnp_codes)
{
    const char *why = NULL;
    CHECK_EQ(gni_nat_upnp_err(0, &why), 0);
    CHECK_EQ(gni_nat_upnp_err(501, &why), GN_EIO);
    CHECK_STR(why, "Action Failed");
    CHECK_EQ(gni_nat_upnp_err(718, &why), GN_EADDRINUSE);
    CHECK_STR(why, "ConflictInMappingEntry");
    CHECK_EQ(gni_nat_upnp_err(606, NULL), GN_EACCES);
    CHECK_EQ(gni_nat_upnp_err(714, NULL), GN_ENOTFOUND);
    CHECK_EQ(gni_nat_upnp_err(725, NULL), GN_ENOTSUP);
    CHECK_EQ(gni_nat_upnp_err(728, NULL), GN_ELIMIT);
    CHECK_EQ(gni_nat_upnp_err(-3, &why), GN_EUNREACHABLE);
    CHECK_EQ(gni_nat_upnp_err(-4, NULL), GN_EPROTO);
    CHECK_EQ(gni_nat_upnp_err(899, &why), GN_EIO);
    CHECK_STR(why, "UPnP error");
}

GN_TEST(natpmp_codes)
{
    const char *why = NULL;
    CHECK_EQ(gni_nat_pmp_err(0, true, &why), 0);
    CHECK_EQ(gni_nat_pmp_err(3, true, &why), GN_EADDRNOTAVAIL);
    CHECK(strstr(why, "network failure") != NULL);
    /* libnatpmp's -50 - result form gives the same */
    CHECK_EQ(gni_nat_pmp_err(-52, false, &why), GN_EADDRNOTAVAIL);
    CHECK_EQ(gni_nat_pmp_err(2, true, NULL), GN_EACCES);
    CHECK_EQ(gni_nat_pmp_err(-51, false, NULL), GN_EACCES);
    CHECK_EQ(gni_nat_pmp_err(4, true, NULL), GN_ELIMIT);
    CHECK_EQ(gni_nat_pmp_err(1, true, NULL), GN_ENOTSUP);
    CHECK_EQ(gni_nat_pmp_err(-14, false, NULL), GN_ENOTSUP);
    CHECK_EQ(gni_nat_pmp_err(-15, false, NULL), GN_ENOTSUP);
    CHECK_EQ(gni_nat_pmp_err(-7, false, &why), GN_ETIMEDOUT);
    CHECK_STR(why, "no answer from the gateway");
    CHECK_EQ(gni_nat_pmp_err(-3, false, NULL), GN_ENOTSUP);
    CHECK_EQ(gni_nat_pmp_err(-9, false, NULL), GN_EPROTO);
    CHECK_EQ(gni_nat_pmp_err(-2, false, NULL), GN_EIO);
    CHECK_EQ(gni_nat_pmp_err(9, true, NULL), GN_EIO);
}

GN_TEST_MAIN(GN_T(target_parse_tcp_udp_and_suffix), GN_T(target_parse_refuses_what_cannot_be_mapped),
             GN_T(ip4_parse_format_and_reserved), GN_T(lease_and_renewal), GN_T(parse_u32),
             GN_T(upnp_codes), GN_T(natpmp_codes))
