/*
 * Unit tests for core/multiaddr.c. Each known-answer vector names its source.
 */
#include "golemnet/err.h"
#include "golemnet/log.h"
#include "golemnet/multiaddr.h"
#include "golemnet/multiformats.h"

#include "gn_test.h"

#define QMCG "QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC"
#define QMCG_HEX "221220d52ebb89d85b02a284948203a62ff28389c57c9f42beec4ec20db76a68911c0b"
#define ED_PEER "12D3KooWPjceQrSwdWXPyLLeABRXmuqt69Rg3sBYbU1Nft9HyQ6X"
/* base58 decode of ED_PEER, cross-checked with a Python big-integer decoder. */
#define ED_PEER_HEX                                                                          \
    "26002408011220cecc1507dc1ddd7295951c290888f095adb9044d1b73d696e6df065d683bd4fc"

#define CERTHASH_U "uEiDDq4_xNyDorZBH3TlGazyJdOWSwvo4PUo5YHFMrvDE8g"
#define CERTHASH_HEX "221220c3ab8ff13720e8ad9047dd39466b3c8974e592c2fa383d4a3960714caef0c4f2"
/* rust-multiaddr tests/lib.rs construct_success: an I2P destination. */
#define GARLIC64_STR \
    "jT~IyXaoauTni6N4517EG8mrFUKpy0IlgZh-EY9csMAk82Odatmzr~YTZy8Hv7u~wvkg75EFNOyqb~nAPg-khyp2TS~ObUz8" \
    "WlqYAM2VlEzJ7wJB91P-cUlKF18zSzVoJFmsrcQHZCirSbWoOknS6iNmsGRh5KVZsBEfp1Dg3gwTipTRIx7Vl5Vy~1OSKQVj" \
    "YiGZS9q8RL0MF~7xFiKxZDLbPxk0AK9TzGGqm~wMTI2HS0Gm4Ycy8LYPVmLvGonIBYndg2bJC7WLuF6tVjVquiokSVDKFwq7" \
    "0BCUU5AU-EvdOD5KEOAM7mPfw-gJUG4tm1TtvcobrObqoRnmhXPTBTN5H7qDD12AvlwFGnfAlBXjuP4xOUAISL5SRLiulrsM" \
    "SiT4GcugSI80mF6sdB0zWRgL1yyvoVWeTBn1TqjO27alr95DGTluuSqrNAxgpQzCKEWAyzrQkBfo2avGAmmz2NaHaAvYbOg0" \
    "QSJz1PLjv2jdPW~ofiQmrGWM1cd~1cCqAAAA"
#define GARLIC64_HEX \
    "BE0383038D3FC8C976A86AE4E78BA378E75EC41BC9AB1542A9CB422581987E118F5CB0C024F3639D6AD9B3AFF613672F" \
    "07BFBBBFC2F920EF910534ECAA6FF9C03E0FA4872A764D2FCE6D4CFC5A5A9800CD95944CC9EF0241F753FE71494A175F" \
    "334B35682459ACADC4076428AB49B5A83A49D2EA2366B06461E4A559B0111FA750E0DE0C138A94D1231ED5979572FF53" \
    "922905636221994BDABC44BD0C17FEF11622B16432DB3F193400AF53CC61AA9BFC0C4C8D874B41A6E18732F0B60F5662" \
    "EF1A89C80589DD8366C90BB58BB85EAD56356ABA2A244950CA170ABBD01094539014F84BDD383E4A10E00CEE63DFC3E8" \
    "09506E2D9B54EDBDCA1BACE6EAA119E68573D30533791FBA830F5D80BE5C051A77C09415E3B8FE3139400848BE5244B8" \
    "AE96BB0C4A24F819CBA0488F34985EAC741D3359180BD72CAFA1559E4C19F54EA8CEDBB6A5AFDE4319396EB92AAB340C" \
    "60A50CC2284580CB3AD09017E8D9ABC60269B3D8D687680BD86CE834412273D4F2E3BF68DD3D6FE87E2426AC658CD5C7" \
    "7FD5C0AA000000"

/* String <-> binary pairs; the string is also the canonical printed form. */
static const struct {
    const char *str;
    const char *hex;
} ma_vectors[] = {
    /* multiformats/multiaddr test/multiaddr.feature "Simple string form". */
    {"/ip4/192.0.2.42/tcp/443", "04c000022a0601bb"},
    /* go-multiaddr multiaddr_test.go TestStringToBytes. */
    {"/ip4/127.0.0.1/udp/1234", "047f000001910204d2"},
    {"/ip4/127.0.0.1/tcp/4321", "047f0000010610e1"},
    {"/ip4/127.0.0.1/udp/1234/ip4/127.0.0.1/tcp/4321", "047f000001910204d2047f0000010610e1"},
    /* rust-multiaddr tests/lib.rs construct_success. */
    {"/ip4/1.2.3.4", "0401020304"},
    {"/ip4/0.0.0.0", "0400000000"},
    {"/ip6/::1", "2900000000000000000000000000000001"},
    {"/ip6/2601:9:4f81:9700:803e:ca65:66e8:c21", "29260100094f819700803eca6566e80c21"},
    {"/udp/0", "91020000"},
    {"/tcp/0", "060000"},
    {"/udp/65535", "9102ffff"},
    {"/tcp/65535", "06ffff"},
    {"/udp/1234/utp", "910204d2ae02"},
    {"/p2p/" QMCG, "a503" QMCG_HEX},
    {"/p2p/" QMCG "/tcp/1234", "a503" QMCG_HEX "0604d2"},
    {"/ip4/127.0.0.1/p2p/" QMCG "/tcp/1234", "047f000001a503" QMCG_HEX "0604d2"},
    {"/ip6/2001:8a0:7ac5:4201:3ac9:86ff:fe31:7095/tcp/8000/ws/p2p/" QMCG,
     "29200108a07ac542013ac986fffe317095061f40dd03a503" QMCG_HEX},
    {"/ip6/2001:8a0:7ac5:4201:3ac9:86ff:fe31:7095/tcp/8000/wss/p2p/" QMCG,
     "29200108a07ac542013ac986fffe317095061f40de03a503" QMCG_HEX},
    {"/ip4/127.0.0.1/tcp/9090/p2p-circuit/p2p/" QMCG,
     "047f000001062382a202a503" QMCG_HEX},
    /* cpp-libp2p address converter test (BytesToString). */
    {"/ip6/2001:db8::ff00:42:8329", "2920010db8000000000000ff0000428329"},
    /* rust-multiaddr's /dnsaddr/sjc-1.bootstrap.libp2p.io vector with the
     * code replaced by dns4 (0x36), dns6 (0x37) and dns (0x35). */
    {"/dns4/sjc-1.bootstrap.libp2p.io/tcp/1234",
     "3619736a632d312e626f6f7473747261702e6c69627032702e696f0604d2"},
    {"/dns6/sjc-1.bootstrap.libp2p.io", "3719736a632d312e626f6f7473747261702e6c69627032702e696f"},
    {"/dns/sjc-1.bootstrap.libp2p.io", "3519736a632d312e626f6f7473747261702e6c69627032702e696f"},
    /* The brief's Ed25519 peer (identity multihash, 38 bytes). */
    {"/ip4/127.0.0.1/tcp/4001/p2p/" ED_PEER, "047f000001060fa1a503" ED_PEER_HEX},
    /* unix: code 400 = 0x90 0x03, then the length-prefixed path. */
    {"/unix/tmp/p2p.sock", "90030d" "2f746d702f7032702e736f636b"},
    {"/ip4/1.2.3.4/tcp/80/unix/a/b/c/d/e/f", "0401020304060050" "90030c2f612f622f632f642f652f66"},
    /* memory (0x0309 = 0x89 0x06), 8-byte big-endian u64 as rust-libp2p and
     * go-multiaddr write it (see core/multiaddr.c). */
    {"/memory/1234", "890600000000000004d2"},
    {"/memory/18446744073709551615", "8906ffffffffffffffff"},
    /* Every other protocols.csv row (issue 17). rust-multiaddr tests/lib.rs
     * construct_success: */
    {"/ip6/fe80::9700:803e:ca65:66e8:c21/ip6zone/wlan0",
     "29fe80000000009700803eca6566e80c212a05776c616e30"},
    {"/sctp/1234", "840104d2"},
    {"/udp/1234/sctp/1234", "910204d2840104d2"},
    {"/udp/1234/udt", "910204d2ad02"},
    {"/tcp/1234/http", "0604d2e003"},
    {"/tcp/1234/tls/http", "0604d2c003e003"},
    {"/tcp/1234/http/http-path/user", "0604d2e003e1030475736572"},
    {"/tcp/1234/http/http-path/api%2Fv0%2Flogin", "0604d2e003e1030c6170692f76302f6c6f67696e"},
    {"/tcp/1234/http/http-path/a%2520space", "0604d2e003e10309612532307370616365"},
    {"/tcp/1234/https", "0604d2bb03"},
    {"/p2p-webrtc-star/ip4/127.0.0.1/tcp/9090/ws/p2p/" QMCG,
     "9302047f000001062382dd03a503" QMCG_HEX},
    {"/onion/aaimaq4ygg2iegci:80", "bc030010c0439831b48218480050"},
    {"/onion3/vww6ybal4bd7szmgncyruucpgfkqahzddi37ktceo3ah7ngmcopnpyyd:1234",
     "bd03adadec040be047f9658668b11a504f3155001f231a37f54c4476c07fb4cc139ed7e30304d2"},
    {"/garlic64/" GARLIC64_STR, GARLIC64_HEX},
    {"/dnsaddr/sjc-1.bootstrap.libp2p.io",
     "3819736a632d312e626f6f7473747261702e6c69627032702e696f"},
    {"/dnsaddr/sjc-1.bootstrap.libp2p.io/tcp/1234/p2p/"
     "QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN",
     "3819736a632d312e626f6f7473747261702e6c69627032702e696f0604d2a50322122006b3608aa000274049eb"
     "28ad8e793a26ff6fab281a7d3bd77cd18eb745dfaabb"},
    {"/ip4/127.0.0.1/tcp/127/tls/ws", "047f00000106007fc003dd03"},
    {"/ip4/127.0.0.1/tcp/127/noise", "047f00000106007fc603"},
    {"/ip4/127.0.0.1/udp/1234/webrtc-direct", "047f000001910204d29802"},
    {"/ip4/127.0.0.1/udp/1234/webrtc-direct/certhash/" CERTHASH_U,
     "047f000001910204d29802d203" CERTHASH_HEX},
    {"/ip4/127.0.0.1/udp/1234/quic/webtransport", "047f000001910204d2cc03d103"},
    {"/ip4/127.0.0.1/udp/1234/webtransport/certhash/" CERTHASH_U,
     "047f000001910204d2d103d203" CERTHASH_HEX},
    /* Computed with Python from the protocols.csv codes (uvarint code, value
     * as the csv size column says; base32 with base64.b32decode): */
    {"/ip4/127.0.0.1/udp/1/quic-v1", "047f00000191020001cd03"},
    {"/dccp/1234", "2104d2"},
    {"/ip4/1.2.3.0/ipcidr/24", "04010203002b18"},
    {"/dns4/example.com/tcp/443/tls/sni/example.com/ws",
     "360b6578616d706c652e636f6d0601bbc003c1030b6578616d706c652e636f6ddd03"},
    {"/webrtc", "9902"},
    {"/p2p-webrtc-direct", "9402"},
    {"/p2p-websocket-star", "df03"},
    {"/p2p-stardust", "9502"},
    {"/garlic32/566niximlxdzpanmn4qouucvua3k7neniwss47li5r6ugoertzuq",
     "bf0320efbcd45d0c5dc79781ac6f20ea5055a036afb48d45a52e7d68ec7d4338919e69"},
    {"/http-path/.well-known%2Flibp2p", "e103122e77656c6c2d6b6e6f776e2f6c6962703270"},
    /* ';' ',' '?' ' ' encoded, "$&+=:@" kept (go-multiaddr's path escaping). */
    {"/http-path/a%3Bb%2Cc%3Fd%20e$&+=:@", "e1030f613b622c633f64206524262b3d3a40"},
    /* unix in the percent-encoded form when something follows or the path
     * holds a '%' (multiaddr PR 174), the older form when last. */
    {"/unix/%2Ftmp%2Fx.sock/ws", "90030b2f746d702f782e736f636bdd03"},
    {"/unix/%2Fa%25b", "9003042f612562"},
    {"/unix/a b/c", "9003062f6120622f63"},
};

static gn_multiaddr *parse_ok(const char *s)
{
    gn_multiaddr *ma = NULL;
    int rc = gn_multiaddr_parse(s, &ma);
    if (rc != 0)
        printf("# parse(\"%s\") = %s\n", s, gn_err_name(rc));
    return rc == 0 ? ma : NULL;
}

GN_TEST(ma_known_answers)
{
    for (size_t i = 0; i < sizeof ma_vectors / sizeof ma_vectors[0]; i++) {
        uint8_t want[1024];
        char str[2048];
        long n = gn_test_unhex(ma_vectors[i].hex, want, sizeof want);
        CHECK(n > 0);
        gn_multiaddr *ma = parse_ok(ma_vectors[i].str);
        CHECK(ma != NULL);
        gn_slice b = gn_multiaddr_bytes(ma);
        if (b.len != (size_t)n || memcmp(b.base, want, b.len) != 0)
            printf("# vector %zu: %s\n", i, ma_vectors[i].str);
        CHECK_EQ(b.len, n);
        CHECK_MEM(b.base, want, (size_t)n);
        CHECK_EQ(gn_multiaddr_to_string(ma, str, sizeof str), strlen(ma_vectors[i].str));
        CHECK_STR(str, ma_vectors[i].str);
        gn_multiaddr *mb = NULL;
        CHECK_EQ(gn_multiaddr_from_bytes(want, (size_t)n, &mb), 0);
        CHECK(gn_multiaddr_equal(ma, mb));
        CHECK_EQ(gn_multiaddr_count(ma), gn_multiaddr_count(mb));
        gn_multiaddr_free(ma);
        gn_multiaddr_free(mb);
    }
}

GN_TEST(ma_noncanonical_input)
{
    /* Inputs that parse to a vector's bytes but print differently. */
    static const struct {
        const char *in, *printed;
    } cases[] = {
        {"/ip4/127.0.0.1/tcp/1234/", "/ip4/127.0.0.1/tcp/1234"}, /* go/rust: trailing '/' */
        {"/ip4/127.0.0.1/ipfs/" QMCG, "/ip4/127.0.0.1/p2p/" QMCG}, /* protocols.csv alias */
        {"/tcp/0080", "/tcp/80"},
        {"/ip6/2001:0DB8:0000:0000:0000:0000:0000:0001", "/ip6/2001:db8::1"}, /* RFC 5952 4.1, 4.3 */
        {"/ip6/2001:db8:0:0:0:0:2:1", "/ip6/2001:db8::2:1"},     /* RFC 5952 4.2.1 */
        {"/ip6/2001:db8:0:1:1:1:1:1", "/ip6/2001:db8:0:1:1:1:1:1"}, /* 4.2.2: one 0 kept */
        {"/ip6/2001:db8:0:0:1:0:0:1", "/ip6/2001:db8::1:0:0:1"}, /* 4.2.3: first run */
        {"/ip6/2001:0:0:1:0:0:0:1", "/ip6/2001:0:0:1::1"},       /* 4.2.3: longest run */
        {"/ip6/0:0:0:0:0:0:0:0", "/ip6/::"},
        {"/ip6/1:0:0:0:0:0:0:0", "/ip6/1::"},
        {"/ip6/::ffff:c000:0280", "/ip6/::ffff:192.0.2.128"},    /* RFC 5952 section 5 */
        {"/ip6/::1.2.3.4", "/ip6/::102:304"},
        /* certhash in other multibases (Python base64/base32 of CERTHASH_HEX) */
        {"/certhash/bciqmhk4p6e3sb2fnsbd52okgnm6is5hfslbpuob5ji4wa4kmv3ymj4q",
         "/certhash/" CERTHASH_U},
        {"/certhash/UEiDDq4_xNyDorZBH3TlGazyJdOWSwvo4PUo5YHFMrvDE8g==", "/certhash/" CERTHASH_U},
        {"/onion/AAIMAQ4YGG2IEGCI:80", "/onion/aaimaq4ygg2iegci:80"},
        {"/unix/%2ftmp%2fx.sock", "/unix/tmp/x.sock"},
        {"/http-path/%7e%41", "/http-path/~A"},
        {"/ipcidr/024", "/ipcidr/24"},
        {"/p2p/bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe",
         "/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"}, /* peer-ids.md examples */
        {"/p2p/bafzaajaiaejcbtwmcud5yho5okkzkhbjbcepbfnnxece2g3t22lonxyglvudxvh4",
         "/p2p/" ED_PEER},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char str[256];
        gn_multiaddr *ma = parse_ok(cases[i].in);
        CHECK(ma != NULL);
        CHECK_OK(gn_multiaddr_to_string(ma, str, sizeof str));
        CHECK_STR(str, cases[i].printed);
        gn_multiaddr *mb = parse_ok(cases[i].printed);
        CHECK(mb != NULL);
        CHECK(gn_multiaddr_equal(ma, mb));
        gn_multiaddr_free(ma);
        gn_multiaddr_free(mb);
    }
}

GN_TEST(ma_peer_id_brief_vector)
{
    /* 12D3KooWPjce... parses as a p2p value: an identity multihash of the
     * protobuf Ed25519 key (08 01 12 20 || 32 bytes). */
    gn_multiaddr *ma = parse_ok("/p2p/" ED_PEER);
    CHECK(ma != NULL);
    gn_ma_component c;
    CHECK_EQ(gn_multiaddr_find(ma, GN_MA_P2P, &c), 0);
    CHECK_EQ(c.value_len, 38);
    gn_multihash mh;
    CHECK_EQ(gn_multihash_decode(c.value, c.value_len, &mh), 0);
    CHECK(mh.code == GN_MH_IDENTITY);
    CHECK_EQ(mh.digest_len, 36);
    CHECK_MEM(mh.digest, "\x08\x01\x12\x20", 4);
    char s[128];
    CHECK_EQ(gn_ma_component_value_string(&c, s, sizeof s), 52);
    CHECK_STR(s, ED_PEER);
    gn_multiaddr_free(ma);
}

GN_TEST(ma_components)
{
    gn_multiaddr *ma = parse_ok("/ip4/127.0.0.1/tcp/4001/ws/p2p/" QMCG);
    CHECK(ma != NULL);
    CHECK_EQ(gn_multiaddr_count(ma), 4);
    gn_ma_component c;
    char s[128];
    static const struct {
        uint64_t code;
        const char *name, *value;
    } want[] = {
        {GN_MA_IP4, "ip4", "127.0.0.1"},
        {GN_MA_TCP, "tcp", "4001"},
        {GN_MA_WS, "ws", ""},
        {GN_MA_P2P, "p2p", QMCG},
    };
    for (size_t i = 0; i < 4; i++) {
        CHECK_EQ(gn_multiaddr_component(ma, i, &c), 0);
        CHECK(c.code == want[i].code);
        CHECK_STR(c.name, want[i].name);
        CHECK_EQ(gn_ma_component_value_string(&c, s, sizeof s), strlen(want[i].value));
        CHECK_STR(s, want[i].value);
    }
    CHECK_EQ(gn_multiaddr_component(ma, 1, &c), 0);
    CHECK_EQ(c.value_len, 2);
    CHECK_MEM(c.value, "\x0f\xa1", 2);
    CHECK_EQ(gn_ma_component_value_string(&c, s, 4), GN_ENOSPC); /* "4001" + NUL */
    CHECK_EQ(gn_ma_component_value_string(&c, s, 5), 4);
    CHECK_EQ(gn_multiaddr_component(ma, 4, &c), GN_ERANGE);
    CHECK_EQ(gn_multiaddr_find(ma, GN_MA_WS, NULL), 2);
    CHECK_EQ(gn_multiaddr_find(ma, GN_MA_UDP, &c), GN_ENOTFOUND);
    /* to_string: exact fit and one byte short. */
    char full[256];
    int len = gn_multiaddr_to_string(ma, full, sizeof full);
    CHECK_EQ(len, (int)strlen("/ip4/127.0.0.1/tcp/4001/ws/p2p/" QMCG));
    CHECK_EQ(gn_multiaddr_to_string(ma, full, (size_t)len + 1), len);
    CHECK_EQ(gn_multiaddr_to_string(ma, full, (size_t)len), GN_ENOSPC);
    CHECK_STR(full, "");
    CHECK_EQ(gn_multiaddr_to_string(ma, full, 0), GN_ENOSPC);
    gn_multiaddr_free(ma);
}

GN_TEST(ma_protocol_table)
{
    /* Codes: multicodec table.csv (multiaddr tag). */
    static const struct {
        const char *name;
        int64_t code;
    } t[] = {
        {"ip4", 0x04},   {"tcp", 0x06},          {"dns", 0x35},   {"dns4", 0x36},
        {"dns6", 0x37},  {"ip6", 0x29},          {"udp", 0x0111}, {"p2p-circuit", 0x0122},
        {"utp", 0x012e}, {"unix", 0x0190},       {"p2p", 0x01a5}, {"ws", 0x01dd},
        {"wss", 0x01de}, {"memory", 0x0309}, {"plaintextv2", 0x706c61},
        /* protocols.csv, 2025-04 (decimal codes there) */
        {"dccp", 33}, {"ip6zone", 42}, {"ipcidr", 43}, {"dnsaddr", 56}, {"sctp", 132},
        {"udt", 301}, {"onion", 444}, {"onion3", 445}, {"garlic64", 446}, {"garlic32", 447},
        {"tls", 448}, {"sni", 449}, {"noise", 454}, {"quic", 460}, {"quic-v1", 461},
        {"webtransport", 465}, {"certhash", 466}, {"http", 480}, {"http-path", 481},
        {"https", 443}, {"p2p-websocket-star", 479}, {"p2p-stardust", 277},
        {"p2p-webrtc-star", 275}, {"p2p-webrtc-direct", 276}, {"webrtc-direct", 280},
        {"webrtc", 281},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        CHECK_EQ(gn_ma_protocol_code(t[i].name), t[i].code);
        CHECK_STR(gn_ma_protocol_name((uint64_t)t[i].code), t[i].name);
    }
    CHECK_EQ(gn_ma_protocol_code("ipfs"), 0x01a5);
    CHECK_EQ(gn_ma_protocol_code("quic-v2"), GN_ENOTFOUND);
    CHECK_EQ(gn_ma_protocol_code("TCP"), GN_ENOTFOUND);
    CHECK_EQ(gn_ma_protocol_code(""), GN_ENOTFOUND);
    CHECK_EQ(gn_ma_protocol_code(NULL), GN_ENOTFOUND);
    CHECK(gn_ma_protocol_name(0x01ff) == NULL);
}

GN_TEST(ma_encapsulate_decapsulate)
{
    gn_multiaddr *a = parse_ok("/ip4/1.2.3.4/tcp/80");
    gn_multiaddr *b = parse_ok("/p2p/" QMCG);
    gn_multiaddr *ab = NULL, *back = NULL, *dup = NULL, *none = NULL;
    char s[256];
    CHECK(a && b);
    CHECK_EQ(gn_multiaddr_encapsulate(a, b, &ab), 0);
    CHECK_EQ(gn_multiaddr_count(ab), 3);
    CHECK_OK(gn_multiaddr_to_string(ab, s, sizeof s));
    CHECK_STR(s, "/ip4/1.2.3.4/tcp/80/p2p/" QMCG);
    CHECK_EQ(gn_multiaddr_decapsulate_code(ab, GN_MA_P2P, &back), 0);
    CHECK(gn_multiaddr_equal(back, a));
    CHECK_EQ(gn_multiaddr_count(back), 2);
    CHECK_EQ(gn_multiaddr_decapsulate_code(ab, GN_MA_WS, &none), GN_ENOTFOUND);
    CHECK_EQ(gn_multiaddr_decapsulate_code(ab, GN_MA_IP4, &none), GN_EPARSE);
    CHECK(none == NULL);
    /* The last matching component is the cut point. */
    gn_multiaddr *relay = parse_ok("/ip4/1.2.3.4/tcp/80/p2p/" QMCG "/p2p-circuit/p2p/" ED_PEER);
    gn_multiaddr *cut = NULL;
    CHECK(relay != NULL);
    CHECK_EQ(gn_multiaddr_decapsulate_code(relay, GN_MA_P2P, &cut), 0);
    CHECK_OK(gn_multiaddr_to_string(cut, s, sizeof s));
    CHECK_STR(s, "/ip4/1.2.3.4/tcp/80/p2p/" QMCG "/p2p-circuit");
    CHECK_EQ(gn_multiaddr_dup(relay, &dup), 0);
    CHECK(gn_multiaddr_equal(dup, relay));
    CHECK(!gn_multiaddr_equal(dup, cut));
    CHECK(!gn_multiaddr_equal(dup, NULL));
    CHECK(gn_multiaddr_equal(NULL, NULL));
    gn_multiaddr_free(a);
    gn_multiaddr_free(b);
    gn_multiaddr_free(ab);
    gn_multiaddr_free(back);
    gn_multiaddr_free(relay);
    gn_multiaddr_free(cut);
    gn_multiaddr_free(dup);
    gn_multiaddr_free(NULL);
}

GN_TEST(ma_encapsulate_limits)
{
    /* 17 + 16 components exceed GN_MA_MAX_COMPONENTS (32). */
    char s17[128] = "", s16[128] = "";
    for (int i = 0; i < 17; i++)
        strcat(s17, "/ws");
    for (int i = 0; i < 16; i++)
        strcat(s16, "/ws");
    gn_multiaddr *a = parse_ok(s17), *b = parse_ok(s16), *c = NULL, *one = parse_ok("/ws");
    CHECK(a && b && one);
    CHECK_EQ(gn_multiaddr_encapsulate(a, b, &c), GN_ETOOBIG);
    CHECK(c == NULL);
    CHECK_EQ(gn_multiaddr_encapsulate(b, b, &c), 0);
    CHECK_EQ(gn_multiaddr_count(c), 32);
    gn_multiaddr_free(c);
    c = NULL;
    /* Byte limit: four 255-byte dns names (4 * 258 = 1032 > 1024). */
    char name[300], dnsx2[700];
    memset(name, 'a', 255);
    name[255] = '\0';
    snprintf(dnsx2, sizeof dnsx2, "/dns/%s/dns/%s", name, name);
    gn_multiaddr *d = parse_ok(dnsx2);
    CHECK(d != NULL);
    CHECK_EQ(gn_multiaddr_encapsulate(d, d, &c), GN_ETOOBIG);
    /* A unix path may be followed by more: it then prints percent-encoded. */
    gn_multiaddr *u = parse_ok("/unix/tmp/x");
    char us[64];
    CHECK(u != NULL);
    CHECK_EQ(gn_multiaddr_encapsulate(u, one, &c), 0);
    CHECK(gn_multiaddr_to_string(c, us, sizeof us) > 0);
    CHECK_STR(us, "/unix/%2Ftmp%2Fx/ws");
    gn_multiaddr_free(c);
    c = NULL;
    CHECK_EQ(gn_multiaddr_encapsulate(one, u, &c), 0);
    CHECK(gn_multiaddr_to_string(c, us, sizeof us) > 0);
    CHECK_STR(us, "/ws/unix/tmp/x");
    gn_multiaddr_free(c);
    gn_multiaddr_free(a);
    gn_multiaddr_free(b);
    gn_multiaddr_free(d);
    gn_multiaddr_free(u);
    gn_multiaddr_free(one);
}

/* Parse must fail with exactly @want and leave the out pointer alone. */
static int parse_err(const char *s)
{
    gn_multiaddr *sentinel = (gn_multiaddr *)&sentinel, *ma = sentinel;
    int rc = gn_multiaddr_parse(s, &ma);
    if (ma != sentinel)
        return 1000; /* out-param touched */
    return rc;
}

GN_TEST(ma_bad_strings)
{
    static const struct {
        const char *s;
        int err;
    } bad[] = {
        {"", GN_EPARSE},
        {"ip4/1.2.3.4", GN_EPARSE},
        {" /ip4/1.2.3.4", GN_EPARSE},
        {"/", GN_EPARSE},
        {"//", GN_EPARSE},
        {"/ip4/8.8.8.8//", GN_EPARSE},
        {"/ip4//tcp/1", GN_EPARSE},
        /* rust-multiaddr tests/lib.rs construct_fail (protocols we know). */
        {"/ip4", GN_EPARSE},
        {"/ip4/::1", GN_EPARSE},
        {"/ip4/fdpsofodsajfdoisa", GN_EPARSE},
        {"/ip6", GN_EPARSE},
        {"/udp", GN_EPARSE},
        {"/tcp", GN_EPARSE},
        {"/udp/65536", GN_EPARSE},
        {"/tcp/65536", GN_EPARSE},
        {"/udp/1234/utp/1234", GN_EPARSE},
        {"/ip4/127.0.0.1/udp/jfodsajfidosajfoidsa", GN_EPARSE},
        {"/ip4/127.0.0.1/udp", GN_EPARSE},
        {"/ip4/127.0.0.1/tcp/jfodsajfidosajfoidsa", GN_EPARSE},
        {"/ip4/127.0.0.1/tcp", GN_EPARSE},
        {"/ip4/127.0.0.1/p2p", GN_EPARSE},
        {"/ip4/127.0.0.1/p2p/tcp", GN_EPARSE},
        {"/p2p-circuit/50", GN_EPARSE},
        {"/unknown/1.2.3.4", GN_EPARSE},
        /* Numbers. */
        {"/tcp/-1", GN_EPARSE},
        {"/tcp/+1", GN_EPARSE},
        {"/tcp/ 1", GN_EPARSE},
        {"/tcp/0x10", GN_EPARSE},
        {"/tcp/99999999999999999999999", GN_EPARSE},
        {"/memory/18446744073709551616", GN_EPARSE},
        {"/memory/-1", GN_EPARSE},
        {"/memory", GN_EPARSE},
        /* Addresses. */
        {"/ip4/1.2.3", GN_EPARSE},
        {"/ip4/1.2.3.4.5", GN_EPARSE},
        {"/ip4/256.1.1.1", GN_EPARSE},
        {"/ip6/1:2:3:4:5:6:7:8:9", GN_EPARSE},
        {"/ip6/1::2::3", GN_EPARSE},
        {"/ip6/fe80::1%eth0", GN_EPARSE},
        {"/ip6/0000000000000000000000000000000000000000000000000000000000000000001", GN_EPARSE},
        {"/dns4", GN_EPARSE},
        {"/unix", GN_EPARSE},
        /* Peer IDs: truncated, bad character, wrong codec, CIDv0 in CID slot. */
        {"/p2p/QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNK", GN_EPARSE},
        {"/p2p/QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNK0", GN_EPARSE},
        {"/p2p/12D3KooWPjceQrSwdWXPyLLeABRXmuqt69Rg3sBYbU1Nft9HyQ6", GN_EPARSE},
        {"/p2p/bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi", GN_EPARSE},
        {"/p2p/bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqx", GN_EPARSE},
        {"/p2p/mAXIAAA", GN_EPARSE},
        {"/p2p/zz", GN_EPARSE},
        {"/p2p/1", GN_EPARSE},
        {"/p2p/11", GN_EPARSE}, /* identity multihash with empty digest */
        {"/p2p/Qm", GN_EPARSE},
        /* The other protocols.csv rows (rust-multiaddr tests/lib.rs
         * construct_fail, and our own rules). */
        {"/ip6/fe80::9700:803e:ca65:66e8:c21/ip6zone", GN_EPARSE},
        {"/onion/9imaq4ygg2iegci7:80", GN_EPARSE},
        {"/onion/aaimaq4ygg2iegci7:80", GN_EPARSE},
        {"/onion/aaimaq4ygg2iegci:0", GN_EPARSE},
        {"/onion/aaimaq4ygg2iegci:-1", GN_EPARSE},
        {"/onion/aaimaq4ygg2iegci", GN_EPARSE},
        {"/onion/aaimaq4ygg2iegc@:666", GN_EPARSE},
        {"/onion3/vww6ybal4bd7szmgncyruucpgfkqahzddi37ktceo3ah7ngmcopnpyyd7:80", GN_EPARSE},
        {"/onion3/vww6ybal4bd7szmgncyruucpgfkqahzddi37ktceo3ah7ngmcopnpyyd:0", GN_EPARSE},
        {"/onion3/vww6ybal4bd7szmgncyruucpgfkqahzddi37ktceo3ah7ngmcopnpyyd", GN_EPARSE},
        {"/garlic64/jT~", GN_EPARSE},
        {"/garlic32/566niximlxdzpanmn4qouucvua3k7neniwss47li5r6ugoertzu", GN_EPARSE},
        {"/garlic32/566niximlxdzpanmn4qouucvua3k7neniwss47li5r6ugoertzu77", GN_EPARSE},
        {"/garlic32/566niximlxdzpanmn4qouucvua3k7neniwss47li5r6ugoertzu:80", GN_EPARSE},
        {"/udp/1234/udt/1234", GN_EPARSE},
        {"/p2p-circuit/50", GN_EPARSE},
        {"/quic-v1/1", GN_EPARSE},
        {"/ip4/127.0.0.1/udp/1234/webrtc-direct/certhash", GN_EPARSE},
        {"/ip4/127.0.0.1/udp/1234/webrtc-direct/certhash/b2uaraocy6yrdblb4sfptaddgimjmmp",
         GN_EPARSE},
        {"/certhash/uAA", GN_EPARSE},   /* not a multihash */
        {"/certhash/xabc", GN_EPARSE},  /* unknown multibase */
        {"/tcp/1234/http/http-path/a/b", GN_EPARSE},
        {"/http-path/%zz", GN_EPARSE},
        {"/http-path/a%2", GN_EPARSE},
        {"/ipcidr/256", GN_EPARSE},
        {"/sni", GN_EPARSE},
        {"/unix/%2Ftmp/x.sock", GN_EPARSE}, /* "x.sock" is no protocol */
        {"/unix/%2F%00", GN_EPARSE},        /* NUL in a path */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = parse_err(bad[i].s);
        if (rc != bad[i].err)
            printf("# \"%s\" -> %d\n", bad[i].s, rc);
        CHECK_EQ(rc, bad[i].err);
    }
    gn_multiaddr *ma = NULL;
    CHECK_EQ(gn_multiaddr_parse(NULL, &ma), GN_EINVAL);
    CHECK_EQ(gn_multiaddr_parse("/ws", NULL), GN_EINVAL);
}

GN_TEST(ma_string_limits)
{
    static char s[GN_MA_MAX_STRLEN + 64];
    /* Too long a string: GN_MA_MAX_STRLEN counts the NUL, so 4095 chars is
     * the longest allowed. */
    memset(s, 0, sizeof s);
    strcpy(s, "/unix/");
    memset(s + 6, 'a', GN_MA_MAX_STRLEN - 6);
    CHECK_EQ(strlen(s), GN_MA_MAX_STRLEN);
    CHECK_EQ(parse_err(s), GN_ETOOBIG);
    /* 4095 characters passes the string check but its binary form does not fit. */
    s[GN_MA_MAX_STRLEN - 1] = '\0';
    CHECK_EQ(parse_err(s), GN_ETOOBIG);
    /* Path of exactly the largest size that fits: 1024 - 2 (code) - 2 (len). */
    memset(s, 0, sizeof s);
    strcpy(s, "/unix/");
    memset(s + 6, 'p', 1019);
    gn_multiaddr *ma = parse_ok(s);
    CHECK(ma != NULL);
    CHECK_EQ(gn_multiaddr_bytes(ma).len, GN_MA_MAX_BYTES);
    gn_multiaddr_free(ma);
    s[6 + 1019] = 'p';
    CHECK_EQ(parse_err(s), GN_ETOOBIG);
    /* Components: 32 allowed, 33 not. */
    memset(s, 0, sizeof s);
    for (int i = 0; i < 32; i++)
        strcat(s, "/ws");
    ma = parse_ok(s);
    CHECK(ma != NULL);
    CHECK_EQ(gn_multiaddr_count(ma), 32);
    gn_multiaddr_free(ma);
    strcat(s, "/ws");
    CHECK_EQ(parse_err(s), GN_ETOOBIG);
    /* dns name of 256 bytes is invalid (at most 255). */
    memset(s, 0, sizeof s);
    strcpy(s, "/dns/");
    memset(s + 5, 'd', 256);
    CHECK_EQ(parse_err(s), GN_EPARSE);
    s[5 + 255] = '\0';
    ma = parse_ok(s);
    CHECK(ma != NULL);
    gn_multiaddr_free(ma);
    /* A 2000-character peer ID is an invalid peer ID, not a crash. */
    memset(s, 0, sizeof s);
    strcpy(s, "/p2p/Qm");
    memset(s + 7, 'z', 2000);
    CHECK_EQ(parse_err(s), GN_EPARSE);
}

static int from_bytes_err(const char *hex)
{
    static uint8_t b[4096];
    long n = gn_test_unhex(hex, b, sizeof b);
    if (n < 0)
        return 2000;
    gn_multiaddr *sentinel = (gn_multiaddr *)&sentinel, *ma = sentinel;
    int rc = gn_multiaddr_from_bytes(b, (size_t)n, &ma);
    if (ma != sentinel) {
        if (rc == 0)
            gn_multiaddr_free(ma);
        return 1000;
    }
    return rc;
}

GN_TEST(ma_bad_bytes)
{
    static const struct {
        const char *hex;
        int err;
    } bad[] = {
        {"", GN_EPARSE},
        {"01020304", GN_EPARSE},       /* rust-multiaddr from_bytes_fail: code 1 unknown */
        {"07", GN_EPARSE},             /* unknown code */
        {"80", GN_EPARSE},             /* truncated varint */
        {"8000", GN_EPARSE},           /* non-minimal varint */
        {"ffffffffffffffffff01", GN_EPARSE}, /* 10-byte varint */
        {"047f0000", GN_EPARSE},       /* truncated ip4 */
        {"29000000", GN_EPARSE},       /* truncated ip6 */
        {"0604", GN_EPARSE},           /* truncated port */
        {"8906000000", GN_EPARSE},     /* truncated memory */
        {"047f000001a503", GN_EPARSE}, /* p2p without a length */
        {"a50322122000", GN_EPARSE},   /* p2p value truncated */
        {"a50380", GN_EPARSE},         /* p2p length varint truncated */
        {"a503ffffffffffffffff7f", GN_EPARSE}, /* huge length, bounded before use */
        {"a503021200", GN_EPARSE},     /* sha2-256 with 0-byte digest */
        {"a503031301aa", GN_EPARSE},   /* sha2-512 code not a peer ID */
        {"a5030200" "00", GN_EPARSE},  /* identity with empty digest (2 bytes) */
        {"a503040012aabb", GN_EPARSE}, /* multihash length != value length */
        {"350161", GN_OK},             /* control: /dns/a is fine */
        {"3500", GN_EPARSE},           /* empty dns name */
        {"35032f6162", GN_EPARSE},     /* '/' inside a dns name */
        {"3503610062", GN_EPARSE},     /* NUL inside a dns name */
        {"90030161", GN_EPARSE},       /* unix path without a leading '/' */
        {"9003022f00", GN_EPARSE},     /* NUL in a unix path */
        {"9003022f61dd03", GN_OK},     /* unix followed by another component */
        {"2b", GN_EPARSE},             /* ipcidr without its byte */
        {"bc030010c0439831b48218480000", GN_EPARSE}, /* onion port 0 */
        {"d2030112", GN_EPARSE},       /* certhash: truncated multihash */
        {"e10300", GN_EPARSE},         /* empty http-path */
        {"bf0321" "00000000000000000000000000000000000000000000000000000000000000000000",
         GN_EPARSE},                   /* garlic32 of 33 bytes */
        {"be030100", GN_EPARSE},       /* garlic64 too short */
        {"0401020304dd", GN_EPARSE},   /* trailing partial code */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = from_bytes_err(bad[i].hex);
        if (bad[i].err == GN_OK) {
            CHECK_EQ(rc, 1000); /* accepted: out was written */
            continue;
        }
        if (rc != bad[i].err)
            printf("# %s -> %d\n", bad[i].hex, rc);
        CHECK_EQ(rc, bad[i].err);
    }
    /* Oversized: 1025 bytes; 33 components. */
    static uint8_t big[2048];
    for (size_t i = 0; i + 1 < sizeof big; i += 2) {
        big[i] = 0xdd;
        big[i + 1] = 0x03;
    }
    gn_multiaddr *ma = NULL;
    CHECK_EQ(gn_multiaddr_from_bytes(big, GN_MA_MAX_BYTES + 1, &ma), GN_ETOOBIG);
    CHECK_EQ(gn_multiaddr_from_bytes(big, 33 * 2, &ma), GN_ETOOBIG);
    CHECK_EQ(gn_multiaddr_from_bytes(big, 32 * 2, &ma), 0);
    CHECK_EQ(gn_multiaddr_count(ma), 32);
    gn_multiaddr_free(ma);
    CHECK_EQ(gn_multiaddr_from_bytes(NULL, 2, &ma), GN_EINVAL);
    CHECK_EQ(gn_multiaddr_from_bytes(big, 2, NULL), GN_EINVAL);
}

GN_TEST(ma_value_string_bad_component)
{
    gn_ma_component c = {GN_MA_IP4, "ip4", (const uint8_t *)"\x01\x02\x03", 3};
    char s[64];
    CHECK_EQ(gn_ma_component_value_string(&c, s, sizeof s), GN_EINVAL); /* wrong size */
    c.code = 0x99;
    CHECK_EQ(gn_ma_component_value_string(&c, s, sizeof s), GN_EINVAL); /* unknown code */
    c.code = GN_MA_MEMORY;
    c.value = (const uint8_t *)"\x00\x00\x00\x00\x00\x00\x01\x00";
    c.value_len = 8;
    CHECK_EQ(gn_ma_component_value_string(&c, s, sizeof s), 3);
    CHECK_STR(s, "256");
    CHECK_EQ(gn_ma_component_value_string(&c, s, 0), GN_ENOSPC);
}

/* Allocator that fails every allocation after the first @budget ones. */
typedef struct fail_alloc {
    int budget;
    int live;
} fail_alloc;

static void *fa_malloc(void *ud, size_t len)
{
    fail_alloc *fa = ud;
    if (fa->budget-- <= 0)
        return NULL;
    void *p = malloc(len);
    if (p)
        fa->live++;
    return p;
}

static void *fa_realloc(void *ud, void *ptr, size_t len)
{
    fail_alloc *fa = ud;
    if (ptr == NULL)
        return fa_malloc(ud, len);
    if (fa->budget-- <= 0)
        return NULL;
    return realloc(ptr, len);
}

static void fa_free(void *ud, void *ptr)
{
    fail_alloc *fa = ud;
    if (ptr) {
        fa->live--;
        free(ptr);
    }
}

GN_TEST(ma_alloc_failure)
{
    /* Every allocation made to fail in turn (STYLE.md section 10). */
    gn_multiaddr *base = parse_ok("/ip4/1.2.3.4/tcp/80/p2p/" QMCG);
    CHECK(base != NULL);
    gn_slice b = gn_multiaddr_bytes(base);
    /* Each call below allocates once: budget k lets the first k succeed. */
    for (int k = 0; k <= 5; k++) {
        fail_alloc fa = {k, 0};
        gn_allocator al = {fa_malloc, fa_realloc, fa_free, &fa};
        gn_multiaddr *sentinel = (gn_multiaddr *)&sentinel;
        gn_multiaddr *o1 = sentinel, *o2 = sentinel, *o3 = sentinel, *o4 = sentinel,
                     *o5 = sentinel;
        gn_set_allocator(&al);
        int r1 = gn_multiaddr_parse("/ip4/1.2.3.4/tcp/80/p2p/" QMCG, &o1);
        int r2 = gn_multiaddr_from_bytes(b.base, b.len, &o2);
        int r3 = gn_multiaddr_dup(base, &o3);
        int r4 = gn_multiaddr_encapsulate(base, base, &o4);
        int r5 = gn_multiaddr_decapsulate_code(base, GN_MA_P2P, &o5);
        gn_multiaddr *outs[5] = {o1, o2, o3, o4, o5};
        int rcs[5] = {r1, r2, r3, r4, r5};
        for (int i = 0; i < 5; i++) {
            if (i < k) {
                CHECK_EQ(rcs[i], 0);
                CHECK(outs[i] != sentinel);
                gn_multiaddr_free(outs[i]);
            } else {
                CHECK_EQ(rcs[i], GN_ENOMEM);
                CHECK(outs[i] == sentinel);
            }
        }
        gn_set_allocator(NULL);
        CHECK_EQ(fa.live, 0);
    }
    gn_multiaddr_free(base);
}

/* gn_multiaddr_parse_ex names the offending component and the reason. */
GN_TEST(ma_parse_error_detail)
{
    static const struct {
        const char *s;
        int rc;
        gn_ma_parse_reason reason;
        const char *part;  /* the offending component, as a substring */
        const char *proto; /* NULL: none */
    } v[] = {
        {"/ip4/1.2.3/tcp/1", GN_EPARSE, GN_MA_PARSE_VALUE, "/ip4/1.2.3", "ip4"},
        {"/ip4/1.2.3.4/tcp/65536", GN_EPARSE, GN_MA_PARSE_VALUE, "/tcp/65536", "tcp"},
        {"/ip4/1.2.3.4/tcp", GN_EPARSE, GN_MA_PARSE_MISSING_VALUE, "/tcp", "tcp"},
        {"/ip4/1.2.3.4/tcp/", GN_EPARSE, GN_MA_PARSE_MISSING_VALUE, "/tcp/", "tcp"},
        {"/ip4/1.2.3.4/foo/1", GN_EPARSE, GN_MA_PARSE_PROTOCOL, "/foo", NULL},
        {"/ip4/1.2.3.4//tcp/1", GN_EPARSE, GN_MA_PARSE_SYNTAX, "/", NULL},
        {"ip4/1.2.3.4", GN_EPARSE, GN_MA_PARSE_SYNTAX, "ip4/1.2.3.4", NULL},
        {"/ip4/1.2.3.4/tcp/1/p2p/Qm", GN_EPARSE, GN_MA_PARSE_VALUE, "/p2p/Qm", "p2p"},
        {"/ip6/1::2::3/udp/1", GN_EPARSE, GN_MA_PARSE_VALUE, "/ip6/1::2::3", "ip6"},
        {"/ip4/1.2.3.4/tcp/80", 0, GN_MA_PARSE_OK, "", NULL},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        gn_multiaddr *ma = NULL;
        gn_ma_parse_error e;
        memset(&e, 0xa5, sizeof e);
        int rc = gn_multiaddr_parse_ex(v[i].s, &ma, &e);
        CHECK_EQ(rc, v[i].rc);
        CHECK_EQ(e.reason, v[i].reason);
        if (rc == 0) {
            CHECK(ma != NULL);
            gn_multiaddr_free(ma);
            CHECK(e.protocol == NULL);
            continue;
        }
        CHECK(ma == NULL);
        const char *want = strstr(v[i].s, v[i].part);
        if (v[i].part[0] == '/' && v[i].reason == GN_MA_PARSE_SYNTAX)
            want = strstr(v[i].s, "//"); /* the empty component, "/" */
        CHECK(want != NULL);
        CHECK_EQ(e.offset, (size_t)(want - v[i].s));
        CHECK_EQ(e.len, strlen(v[i].part));
        if (v[i].proto == NULL)
            CHECK(e.protocol == NULL);
        else
            CHECK(e.protocol != NULL && strcmp(e.protocol, v[i].proto) == 0);
    }
    /* too many components: the 33rd is named */
    char s[200] = "";
    for (int i = 0; i < 33; i++)
        strcat(s, "/ws");
    gn_multiaddr *ma = NULL;
    gn_ma_parse_error e;
    CHECK_EQ(gn_multiaddr_parse_ex(s, &ma, &e), GN_ETOOBIG);
    CHECK_EQ(e.reason, GN_MA_PARSE_TOO_LONG);
    CHECK_EQ(e.offset, 32 * 3);
    CHECK_EQ(e.len, 3);
    /* NULL @err is allowed; NULL input is GN_EINVAL with reason OK */
    CHECK_EQ(gn_multiaddr_parse_ex("/tcp/x", &ma, NULL), GN_EPARSE);
    CHECK_EQ(gn_multiaddr_parse_ex(NULL, &ma, &e), GN_EINVAL);
    CHECK_EQ(e.reason, GN_MA_PARSE_OK);
}

GN_TEST_MAIN(GN_T(ma_known_answers), GN_T(ma_noncanonical_input), GN_T(ma_peer_id_brief_vector),
             GN_T(ma_components), GN_T(ma_protocol_table), GN_T(ma_encapsulate_decapsulate),
             GN_T(ma_encapsulate_limits), GN_T(ma_bad_strings), GN_T(ma_string_limits),
             GN_T(ma_bad_bytes), GN_T(ma_value_string_bad_component), GN_T(ma_alloc_failure),
             GN_T(ma_parse_error_detail))
