/*
 * /ipfs/kad/1.0.0 wire core (protocols/kad/kad_msg.c): round trips of every
 * message type, known-answer frames derived by hand from the protobuf
 * encoding rules, every bound, truncation, non-minimal lengths and
 * byte-by-byte incremental decoding.
 */
#include "kad_msg.h"

#include "gn_test.h"
#include "golemnet/err.h"
#include "golemnet/identity.h"
#include "golemnet/log.h"
#include "golemnet/multiaddr.h"
#include "golemnet/multiformats.h"

#include <stdlib.h>

/* Peer A: identity multihash (00 24) of the Ed25519 public key protobuf
 * 08 01 12 20 <00..1f>; 38 bytes. */
static const char *PID_A = "002408011220000102030405060708090a0b0c0d0e0f"
                           "101112131415161718191a1b1c1d1e1f";
/* Peer B: sha2-256 multihash (12 20) of 32 bytes 0xaa; 34 bytes. */
static const char *PID_B = "1220aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                           "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
/* /ip4/127.0.0.1/tcp/4001: 04 (ip4) 7f000001, 06 (tcp) 0fa1. */
static const uint8_t MA_TCP[] = {0x04, 0x7f, 0x00, 0x00, 0x01, 0x06, 0x0f, 0xa1};
/* /ip4/10.0.0.2/udp/53: 04 0a000002, 0x91 0x02 (udp, 273) 0035. */
static const uint8_t MA_UDP[] = {0x04, 0x0a, 0x00, 0x00, 0x02, 0x91, 0x02, 0x00, 0x35};

static void pid(const char *hex, gn_peer_id *out)
{
    uint8_t raw[64];
    long n = gn_test_unhex(hex, raw, sizeof raw);
    CHECK(n > 0);
    CHECK_OK(gn_peer_id_from_bytes(raw, (size_t)n, out));
}

/* Encodes @m as a frame into a fresh buffer. */
static uint8_t *frame_of(const gni_kad_msg *m, const gni_kad_limits *lim, size_t *len)
{
    long n = gni_kad_msg_frame_len(m, lim);
    CHECK(n > 0);
    uint8_t *buf = malloc((size_t)n);
    CHECK(buf != NULL);
    CHECK_EQ(gni_kad_msg_encode(m, lim, buf, (size_t)n), n);
    *len = (size_t)n;
    return buf;
}

static void check_peer_eq(const gni_kad_peer *a, const gni_kad_peer *b)
{
    CHECK_EQ(a->id.len, b->id.len);
    CHECK_MEM(a->id.bytes, b->id.bytes, a->id.len);
    CHECK_EQ(a->conn, b->conn);
    CHECK_EQ(a->addr_cnt, b->addr_cnt);
    for (size_t i = 0; i < a->addr_cnt; i++) {
        CHECK_EQ(a->addrs[i].len, b->addrs[i].len);
        CHECK_MEM(a->addrs[i].data, b->addrs[i].data, a->addrs[i].len);
    }
}

static void check_msg_eq(const gni_kad_msg *a, const gni_kad_msg *b)
{
    CHECK_EQ(a->type, b->type);
    CHECK_EQ(a->cluster_level, b->cluster_level);
    CHECK_EQ(a->key.len, b->key.len);
    if (a->key.len)
        CHECK_MEM(a->key.data, b->key.data, a->key.len);
    CHECK_EQ(a->has_record, b->has_record);
    if (a->has_record) {
        CHECK_EQ(a->rec_key.len, b->rec_key.len);
        if (a->rec_key.len)
            CHECK_MEM(a->rec_key.data, b->rec_key.data, a->rec_key.len);
        CHECK_EQ(a->rec_value.len, b->rec_value.len);
        if (a->rec_value.len)
            CHECK_MEM(a->rec_value.data, b->rec_value.data, a->rec_value.len);
        CHECK_STR(a->rec_time ? a->rec_time : "", b->rec_time ? b->rec_time : "");
    }
    CHECK_EQ(a->closer_cnt, b->closer_cnt);
    for (size_t i = 0; i < a->closer_cnt; i++)
        check_peer_eq(&a->closer[i], &b->closer[i]);
    CHECK_EQ(a->provider_cnt, b->provider_cnt);
    for (size_t i = 0; i < a->provider_cnt; i++)
        check_peer_eq(&a->providers[i], &b->providers[i]);
}

/* Fills @m with a message of type @t using the fields the spec gives it. */
static void build(gni_kad_msg *m, gni_kad_type t)
{
    gn_peer_id a, b;
    pid(PID_A, &a);
    pid(PID_B, &b);
    gni_kad_msg_init(m);
    m->type = t;
    gni_kad_peer *p = NULL;
    switch (t) {
    case GNI_KAD_PUT_VALUE:
        CHECK_OK(gni_kad_msg_set_key(m, (const uint8_t *)"/v/hello", 8));
        CHECK_OK(gni_kad_msg_set_record(m, (const uint8_t *)"/v/hello", 8,
                                        (const uint8_t *)"world", 5, NULL));
        break;
    case GNI_KAD_GET_VALUE:
        CHECK_OK(gni_kad_msg_set_key(m, (const uint8_t *)"/v/hello", 8));
        CHECK_OK(gni_kad_msg_set_record(m, (const uint8_t *)"/v/hello", 8,
                                        (const uint8_t *)"world", 5,
                                        "2026-12-04T23:00:00.000000000Z"));
        CHECK_OK(gni_kad_msg_add_peer(m, false, &a, GNI_KAD_CONNECTED, &p));
        CHECK_OK(gni_kad_peer_add_addr(p, MA_TCP, sizeof MA_TCP));
        break;
    case GNI_KAD_ADD_PROVIDER:
        CHECK_OK(gni_kad_msg_set_key(m, (const uint8_t *)"\x12\x20" "0123456789abcdef0123456789abcdef", 34));
        CHECK_OK(gni_kad_msg_add_peer(m, true, &a, GNI_KAD_NOT_CONNECTED, &p));
        CHECK_OK(gni_kad_peer_add_addr(p, MA_TCP, sizeof MA_TCP));
        CHECK_OK(gni_kad_peer_add_addr(p, MA_UDP, sizeof MA_UDP));
        break;
    case GNI_KAD_GET_PROVIDERS:
        CHECK_OK(gni_kad_msg_set_key(m, (const uint8_t *)"\x12\x20" "0123456789abcdef0123456789abcdef", 34));
        CHECK_OK(gni_kad_msg_add_peer(m, true, &b, GNI_KAD_CAN_CONNECT, &p));
        CHECK_OK(gni_kad_peer_add_addr(p, MA_UDP, sizeof MA_UDP));
        CHECK_OK(gni_kad_msg_add_peer(m, false, &a, GNI_KAD_CANNOT_CONNECT, NULL));
        CHECK_OK(gni_kad_msg_add_peer(m, false, &b, GNI_KAD_CONNECTED, &p));
        CHECK_OK(gni_kad_peer_add_addr(p, MA_TCP, sizeof MA_TCP));
        break;
    case GNI_KAD_FIND_NODE:
        CHECK_OK(gni_kad_msg_set_key(m, a.bytes, a.len));
        CHECK_OK(gni_kad_msg_add_peer(m, false, &b, GNI_KAD_CONNECTED, NULL));
        m->cluster_level = 7;
        break;
    case GNI_KAD_PING:
        break;
    }
}

GN_TEST(roundtrip_every_type)
{
    for (int t = GNI_KAD_PUT_VALUE; t <= GNI_KAD_PING; t++) {
        gni_kad_msg m, d;
        build(&m, (gni_kad_type)t);
        size_t len;
        uint8_t *f = frame_of(&m, NULL, &len);
        /* through the frame decoder, whole */
        gni_kad_decoder dec;
        CHECK_OK(gni_kad_decoder_init(&dec, NULL));
        gni_kad_msg_init(&d);
        size_t used = 0;
        CHECK_EQ(gni_kad_decode(&dec, f, len, &used, &d, NULL), 1);
        CHECK_EQ(used, len);
        check_msg_eq(&m, &d);
        CHECK_STR(gni_kad_type_name(d.type), gni_kad_type_name(t));
        CHECK_EQ(gni_kad_decode_eof(&dec), 0);
        gni_kad_decoder_fini(&dec);
        /* re-encoding the decoded form gives the same bytes */
        size_t len2;
        uint8_t *f2 = frame_of(&d, NULL, &len2);
        CHECK_EQ(len2, len);
        CHECK_MEM(f2, f, len);
        free(f2);
        free(f);
        gni_kad_msg_fini(&d);
        gni_kad_msg_fini(&m);
    }
    CHECK_STR(gni_kad_type_name(6), "UNKNOWN");
}

/*
 * FIND_NODE request for peer A (as go-libp2p-kad-dht sends it; proto3 so
 * zero fields are absent):
 *   26            frame length 42 (varint)
 *   08 04         field 1 (type), varint: FIND_NODE = 4
 *   12 26 <A>     field 2 (key), length-delimited, 38 bytes: A's peer ID
 */
GN_TEST(known_answer_find_node_request)
{
    uint8_t exp[64];
    size_t n = 0;
    exp[n++] = 0x2a;
    exp[n++] = 0x08;
    exp[n++] = 0x04;
    exp[n++] = 0x12;
    exp[n++] = 0x26;
    CHECK_EQ(gn_test_unhex(PID_A, exp + n, sizeof exp - n), 38);
    n += 38;
    CHECK_EQ(n, 43u);

    gn_peer_id a;
    pid(PID_A, &a);
    gni_kad_msg m, d;
    gni_kad_msg_init(&m);
    m.type = GNI_KAD_FIND_NODE;
    CHECK_OK(gni_kad_msg_set_key(&m, a.bytes, a.len));
    size_t len;
    uint8_t *f = frame_of(&m, NULL, &len);
    CHECK_EQ(len, n);
    CHECK_MEM(f, exp, n);
    free(f);

    gni_kad_msg_init(&d);
    CHECK_OK(gni_kad_msg_decode(exp + 1, n - 1, NULL, &d, NULL));
    check_msg_eq(&m, &d);
    gni_kad_msg_fini(&d);
    gni_kad_msg_fini(&m);
}

/*
 * FIND_NODE response with one closer peer A, CONNECTED, at
 * /ip4/127.0.0.1/tcp/4001:
 *   38               frame length 56
 *   08 04            type = FIND_NODE
 *   42 34            field 8 (closerPeers) = (8 << 3) | 2, 52 bytes:
 *     0a 26 <A>        Peer field 1 (id), 38 bytes
 *     12 08 <ma>       Peer field 2 (addrs), 8 bytes 04 7f000001 06 0fa1
 *     18 01            Peer field 3 (connection), varint CONNECTED = 1
 */
GN_TEST(known_answer_find_node_response)
{
    uint8_t exp[80];
    size_t n = 0;
    static const uint8_t head[] = {0x38, 0x08, 0x04, 0x42, 0x34, 0x0a, 0x26};
    memcpy(exp, head, sizeof head);
    n = sizeof head;
    CHECK_EQ(gn_test_unhex(PID_A, exp + n, sizeof exp - n), 38);
    n += 38;
    exp[n++] = 0x12;
    exp[n++] = 0x08;
    memcpy(exp + n, MA_TCP, sizeof MA_TCP);
    n += sizeof MA_TCP;
    exp[n++] = 0x18;
    exp[n++] = 0x01;
    CHECK_EQ(n, 57u);

    gn_peer_id a;
    pid(PID_A, &a);
    gni_kad_msg m, d;
    gni_kad_msg_init(&m);
    m.type = GNI_KAD_FIND_NODE;
    gni_kad_peer *p;
    CHECK_OK(gni_kad_msg_add_peer(&m, false, &a, GNI_KAD_CONNECTED, &p));
    CHECK_OK(gni_kad_peer_add_addr(p, MA_TCP, sizeof MA_TCP));
    size_t len;
    uint8_t *f = frame_of(&m, NULL, &len);
    CHECK_EQ(len, n);
    CHECK_MEM(f, exp, n);
    free(f);

    gni_kad_decoder dec;
    CHECK_OK(gni_kad_decoder_init(&dec, NULL));
    gni_kad_msg_init(&d);
    size_t used;
    CHECK_EQ(gni_kad_decode(&dec, exp, n, &used, &d, NULL), 1);
    CHECK_EQ(used, n);
    CHECK_EQ(d.type, GNI_KAD_FIND_NODE);
    CHECK_EQ(d.closer_cnt, 1u);
    CHECK_EQ(d.closer[0].conn, GNI_KAD_CONNECTED);
    CHECK_EQ(d.closer[0].addr_cnt, 1u);
    check_msg_eq(&m, &d);
    gni_kad_decoder_fini(&dec);
    gni_kad_msg_fini(&d);
    gni_kad_msg_fini(&m);
}

/* ---- allocation watch for "bounded before allocating" ---- */

static size_t g_largest_alloc;

static void *watch_malloc(void *ud, size_t len)
{
    (void)ud;
    if (len > g_largest_alloc)
        g_largest_alloc = len;
    return malloc(len);
}

static void *watch_realloc(void *ud, void *p, size_t len)
{
    (void)ud;
    if (len > g_largest_alloc)
        g_largest_alloc = len;
    return realloc(p, len);
}

static void watch_free(void *ud, void *p)
{
    (void)ud;
    free(p);
}

GN_TEST(oversized_frame_refused_before_allocation)
{
    static const gn_allocator watch = {watch_malloc, watch_realloc, watch_free, NULL};
    gn_set_allocator(&watch);
    g_largest_alloc = 0;
    gni_kad_decoder dec;
    CHECK_OK(gni_kad_decoder_init(&dec, NULL));
    /* 4 MiB + 1 = 0x400001: varint 81 80 80 02 */
    static const uint8_t big[] = {0x81, 0x80, 0x80, 0x02, 0x08};
    gni_kad_msg m;
    gni_kad_msg_init(&m);
    size_t used = 99;
    const char *why = NULL;
    CHECK_EQ(gni_kad_decode(&dec, big, sizeof big, &used, &m, &why), GN_EFRAMESIZE);
    CHECK(why != NULL);
    CHECK_EQ(g_largest_alloc, 0u);
    /* sticky */
    CHECK_EQ(gni_kad_decode(&dec, big, 1, &used, &m, NULL), GN_EFRAMESIZE);
    CHECK_EQ(gni_kad_decode_eof(&dec), GN_EFRAMESIZE);
    gni_kad_decoder_fini(&dec);

    /* exactly 4 MiB (80 80 80 02) is announced, 3 bytes arrive: storage is
     * what arrived (at least GNI_KAD_ALLOC_MIN), not 4 MiB */
    CHECK_OK(gni_kad_decoder_init(&dec, NULL));
    static const uint8_t max[] = {0x80, 0x80, 0x80, 0x02, 0x08, 0x04, 0x12};
    CHECK_EQ(gni_kad_decode(&dec, max, sizeof max, &used, &m, NULL), 0);
    CHECK_EQ(used, sizeof max);
    CHECK(g_largest_alloc <= GNI_KAD_ALLOC_MIN);
    CHECK(g_largest_alloc > 0);
    CHECK_EQ(gni_kad_decode_eof(&dec), GN_EPROTO);
    gni_kad_decoder_fini(&dec);

    /* a configured bound */
    gni_kad_limits lim = {.max_msg_len = 16};
    CHECK_OK(gni_kad_decoder_init(&dec, &lim));
    static const uint8_t seventeen[] = {0x11};
    CHECK_EQ(gni_kad_decode(&dec, seventeen, 1, &used, &m, NULL), GN_EFRAMESIZE);
    gni_kad_decoder_fini(&dec);
    lim.max_msg_len = (size_t)GNI_KAD_MAX_MSG_LEN_LIMIT + 1;
    CHECK_EQ(gni_kad_decoder_init(&dec, &lim), GN_EINVAL);
    gn_set_allocator(NULL);

    /* the encoder refuses a body above the bound */
    gni_kad_msg big_m;
    gni_kad_msg_init(&big_m);
    big_m.type = GNI_KAD_PUT_VALUE;
    uint8_t val[64] = {0};
    CHECK_OK(gni_kad_msg_set_record(&big_m, (const uint8_t *)"k", 1, val, sizeof val, NULL));
    lim.max_msg_len = 16;
    CHECK_EQ(gni_kad_msg_frame_len(&big_m, &lim), GN_ETOOBIG);
    uint8_t out[128];
    CHECK_EQ(gni_kad_msg_encode(&big_m, &lim, out, sizeof out), GN_ETOOBIG);
    CHECK_EQ(gni_kad_msg_encode(&big_m, NULL, out, 10), GN_ENOSPC);
    gni_kad_msg_fini(&big_m);
}

/* Decodes the body @hex (no frame) with @lim; returns the code. */
static int decode_hex(const char *hex, const gni_kad_limits *lim, const char **why)
{
    uint8_t buf[512];
    long n = gn_test_unhex(hex, buf, sizeof buf);
    CHECK(n >= 0);
    gni_kad_msg m;
    gni_kad_msg_init(&m);
    int rc = gni_kad_msg_decode(buf, (size_t)n, lim, &m, why);
    gni_kad_msg_fini(&m);
    return rc;
}

GN_TEST(too_many_peers_and_addrs)
{
    gn_peer_id a;
    pid(PID_A, &a);
    gni_kad_msg m, d;
    gni_kad_msg_init(&m);
    m.type = GNI_KAD_GET_PROVIDERS;
    gni_kad_peer *p;
    for (int i = 0; i < 3; i++) {
        CHECK_OK(gni_kad_msg_add_peer(&m, false, &a, GNI_KAD_CONNECTED, &p));
        CHECK_OK(gni_kad_peer_add_addr(p, MA_TCP, sizeof MA_TCP));
        CHECK_OK(gni_kad_peer_add_addr(p, MA_UDP, sizeof MA_UDP));
    }
    CHECK_OK(gni_kad_msg_add_peer(&m, true, &a, GNI_KAD_CONNECTED, NULL));
    CHECK_OK(gni_kad_msg_add_peer(&m, true, &a, GNI_KAD_CONNECTED, NULL));
    size_t len;
    uint8_t *f = frame_of(&m, NULL, &len);
    uint64_t blen = 0;
    int hl = gn_varint_decode(f, len, &blen);
    CHECK(hl > 0);
    CHECK_EQ(blen, len - (size_t)hl);
    const uint8_t *body = f + hl;
    gni_kad_msg_init(&d);
    const char *why = NULL;

    gni_kad_limits lim = {.max_closer = 2};
    CHECK_EQ(gni_kad_msg_decode(body, blen, &lim, &d, &why), GN_ETOOBIG);
    CHECK_STR(why, "too many closerPeers");
    lim = (gni_kad_limits){.max_providers = 1};
    CHECK_EQ(gni_kad_msg_decode(body, blen, &lim, &d, &why), GN_ETOOBIG);
    CHECK_STR(why, "too many providerPeers");
    lim = (gni_kad_limits){.max_addrs = 1};
    CHECK_EQ(gni_kad_msg_decode(body, blen, &lim, &d, &why), GN_ETOOBIG);
    CHECK_STR(why, "too many addrs in a peer");
    /* at the bounds: accepted */
    lim = (gni_kad_limits){.max_closer = 3, .max_providers = 2, .max_addrs = 2};
    CHECK_OK(gni_kad_msg_decode(body, blen, &lim, &d, &why));
    CHECK_EQ(d.closer_cnt, 3u);
    CHECK_EQ(d.provider_cnt, 2u);
    gni_kad_msg_fini(&d);
    /* the encoder holds itself to the same bounds */
    lim = (gni_kad_limits){.max_closer = 2};
    CHECK_EQ(gni_kad_msg_frame_len(&m, &lim), GN_EINVAL);
    free(f);
    gni_kad_msg_fini(&m);

    /* defaults: 65 empty closer peers (42 00 each) are refused by the scan */
    char hex[65 * 4 + 1];
    for (int i = 0; i < 65; i++)
        memcpy(hex + i * 4, "4200", 4);
    hex[65 * 4] = 0;
    CHECK_EQ(decode_hex(hex, NULL, &why), GN_ETOOBIG);
    CHECK_STR(why, "too many closerPeers");
    /* many unknown fields: bounded too (field 15 varint 0: 78 00) */
    char unk[(64 + 64 + 33) * 4 + 1];
    for (int i = 0; i < 64 + 64 + 33; i++)
        memcpy(unk + i * 4, "7800", 4);
    unk[sizeof unk - 1] = 0;
    CHECK_EQ(decode_hex(unk, NULL, &why), GN_ETOOBIG);
    CHECK_STR(why, "too many fields in the message");
    /* ... in a Peer (bound max_addrs + 32) and in a Record (32): with
     * max_addrs 1, a peer of 34 unknown fields is refused, 33 accepted */
    gni_kad_limits one = {.max_addrs = 1};
    char peer_hex[8 + 34 * 4 + 1];
    for (int cnt = 33; cnt <= 34; cnt++) {
        snprintf(peer_hex, sizeof peer_hex, "0804" "42%02x", cnt * 2);
        for (int i = 0; i < cnt; i++)
            memcpy(peer_hex + 8 + i * 4, "7800", 4);
        peer_hex[8 + cnt * 4] = 0;
        /* 33: within the field bound, then refused for its missing peer ID */
        CHECK_EQ(decode_hex(peer_hex, &one, &why), cnt == 33 ? GN_EPROTO : GN_ETOOBIG);
        CHECK_STR(why, cnt == 33 ? "peer ID is not a valid multihash"
                                 : "too many fields in a sub-message");
    }
    char rec_hex[8 + 33 * 4 + 1];
    for (int cnt = 32; cnt <= 33; cnt++) {
        snprintf(rec_hex, sizeof rec_hex, "0800" "1a%02x", cnt * 2);
        for (int i = 0; i < cnt; i++)
            memcpy(rec_hex + 8 + i * 4, "7800", 4);
        rec_hex[8 + cnt * 4] = 0;
        CHECK_EQ(decode_hex(rec_hex, NULL, &why), cnt == 32 ? 0 : GN_ETOOBIG);
    }
}

GN_TEST(bad_peer_id_bad_multiaddr_unknown_type)
{
    const char *why = NULL;
    /* closer peer with id 12 05 (sha2-256 claiming 5 bytes): 42 04 0a 02 12 05 */
    CHECK_EQ(decode_hex("0804" "4204" "0a021205", NULL, &why), GN_EPROTO);
    CHECK_STR(why, "peer ID is not a valid multihash");
    /* closer peer with no id at all */
    CHECK_EQ(decode_hex("0804" "4202" "1801", NULL, &why), GN_EPROTO);
    /* provider peer A with address 04 7f00 (ip4 truncated) */
    char hex[256];
    snprintf(hex, sizeof hex, "0802" "4a2d" "0a26%s" "1203047f00", PID_A);
    CHECK_EQ(decode_hex(hex, NULL, &why), GN_EPROTO);
    CHECK_STR(why, "address is not a valid binary multiaddr");
    snprintf(hex, sizeof hex, "0802" "4a30" "0a26%s" "1206" "04060fa17f00", PID_A);
    /* 04 06 0f a1 7f 00 is /ip4/6.15.161.127 then protocol code 0: invalid */
    CHECK_EQ(decode_hex(hex, NULL, &why), GN_EPROTO);
    /* the same peer with a valid address passes */
    snprintf(hex, sizeof hex, "0802" "4a32" "0a26%s" "1208" "047f000001060fa1", PID_A);
    CHECK_OK(decode_hex(hex, NULL, &why));
    /* unknown type 6, and a negative one (10-byte varint of -1) */
    CHECK_EQ(decode_hex("0806", NULL, &why), GN_EPROTO);
    CHECK_STR(why, "unknown message type");
    CHECK_EQ(decode_hex("08ffffffffffffffffff01", NULL, &why), GN_EPROTO);
    /* unknown connection hint reads as NOT_CONNECTED */
    snprintf(hex, sizeof hex, "0804" "422a" "0a26%s" "1809", PID_A);
    uint8_t buf[256];
    long n = gn_test_unhex(hex, buf, sizeof buf);
    gni_kad_msg m;
    gni_kad_msg_init(&m);
    CHECK_OK(gni_kad_msg_decode(buf, (size_t)n, NULL, &m, NULL));
    CHECK_EQ(m.closer_cnt, 1u);
    CHECK_EQ(m.closer[0].conn, GNI_KAD_NOT_CONNECTED);
    gni_kad_msg_fini(&m);
    /* key above its bound; record key above its bound */
    gni_kad_limits lim = {.max_key_len = 3};
    CHECK_EQ(decode_hex("0801" "120461626364", &lim, &why), GN_ETOOBIG);
    CHECK_STR(why, "key longer than the bound");
    CHECK_OK(decode_hex("0801" "1203616263", &lim, &why));
    CHECK_EQ(decode_hex("0800" "1a06" "0a0461626364", &lim, &why), GN_ETOOBIG);
    CHECK_STR(why, "record key longer than the bound");
    /* the encoder refuses what the decoder would */
    gni_kad_msg e;
    gni_kad_msg_init(&e);
    e.type = (gni_kad_type)6;
    CHECK_EQ(gni_kad_msg_frame_len(&e, NULL), GN_EINVAL);
    e.type = GNI_KAD_FIND_NODE;
    gn_peer_id a;
    pid(PID_A, &a);
    gni_kad_peer *p;
    CHECK_OK(gni_kad_msg_add_peer(&e, false, &a, GNI_KAD_CONNECTED, &p));
    static const uint8_t bad_ma[] = {0x04, 0x7f};
    CHECK_OK(gni_kad_peer_add_addr(p, bad_ma, sizeof bad_ma));
    CHECK_EQ(gni_kad_msg_frame_len(&e, NULL), GN_EINVAL);
    gni_kad_msg_fini(&e);
    CHECK_EQ(gni_kad_msg_add_peer(&e, false, NULL, GNI_KAD_CONNECTED, NULL), GN_EINVAL);
    CHECK_EQ(gni_kad_msg_set_key(&e, NULL, 3), GN_EINVAL);
    CHECK_EQ(gni_kad_msg_set_record(&e, NULL, 1, NULL, 0, NULL), GN_EINVAL);
    CHECK_EQ(gni_kad_peer_add_addr(NULL, MA_TCP, sizeof MA_TCP), GN_EINVAL);
    CHECK(!e.has_record);
}

GN_TEST(truncated_and_malformed_frames)
{
    gni_kad_decoder dec;
    gni_kad_msg m;
    gni_kad_msg_init(&m);
    size_t used;
    const char *why;
    /* EOF inside the length */
    CHECK_OK(gni_kad_decoder_init(&dec, NULL));
    static const uint8_t part_len[] = {0x80};
    CHECK_EQ(gni_kad_decode(&dec, part_len, 1, &used, &m, NULL), 0);
    CHECK_EQ(gni_kad_decode_eof(&dec), GN_EPROTO);
    gni_kad_decoder_fini(&dec);
    /* EOF inside the body */
    CHECK_OK(gni_kad_decoder_init(&dec, NULL));
    static const uint8_t part_body[] = {0x04, 0x08, 0x04};
    CHECK_EQ(gni_kad_decode(&dec, part_body, sizeof part_body, &used, &m, NULL), 0);
    CHECK_EQ(used, sizeof part_body);
    CHECK_EQ(gni_kad_decode_eof(&dec), GN_EPROTO);
    gni_kad_decoder_fini(&dec);
    /* a whole frame whose protobuf is truncated: key claims 5 bytes, has 1 */
    CHECK_OK(gni_kad_decoder_init(&dec, NULL));
    static const uint8_t trunc_pb[] = {0x05, 0x08, 0x04, 0x12, 0x05, 0xaa};
    CHECK_EQ(gni_kad_decode(&dec, trunc_pb, sizeof trunc_pb, &used, &m, &why), GN_EBADFRAME);
    CHECK_STR(why, "malformed protobuf");
    CHECK_EQ(gni_kad_decode_eof(&dec), GN_EBADFRAME);
    gni_kad_decoder_fini(&dec);
    /* non-minimal length: 0x82 0x00 encodes 2 with a trailing zero byte */
    CHECK_OK(gni_kad_decoder_init(&dec, NULL));
    static const uint8_t nonmin[] = {0x82, 0x00, 0x08, 0x04};
    CHECK_EQ(gni_kad_decode(&dec, nonmin, sizeof nonmin, &used, &m, &why), GN_EBADFRAME);
    CHECK_STR(why, "length prefix not minimal or too long");
    gni_kad_decoder_fini(&dec);
    /* groups (wire type 3) are refused */
    const char *w;
    CHECK_EQ(decode_hex("0b0c", NULL, &w), GN_EBADFRAME);
    /* an empty frame is an empty PUT_VALUE (proto3 defaults) */
    CHECK_OK(gni_kad_decoder_init(&dec, NULL));
    static const uint8_t empty[] = {0x00};
    CHECK_EQ(gni_kad_decode(&dec, empty, 1, &used, &m, NULL), 1);
    CHECK_EQ(m.type, GNI_KAD_PUT_VALUE);
    CHECK_EQ(m.key.len, 0u);
    CHECK(!m.has_record);
    CHECK_EQ(gni_kad_decode_eof(&dec), 0);
    gni_kad_decoder_fini(&dec);
    gni_kad_msg_fini(&m);
    /* bad arguments */
    CHECK_EQ(gni_kad_decode(NULL, empty, 1, &used, &m, NULL), GN_EINVAL);
    CHECK_EQ(gni_kad_msg_decode(NULL, 3, NULL, &m, NULL), GN_EINVAL);
}

GN_TEST(byte_by_byte_stream_of_frames)
{
    /* every type, back to back in one stream */
    uint8_t *stream = NULL;
    size_t total = 0;
    gni_kad_msg want[6];
    for (int t = 0; t < 6; t++) {
        build(&want[t], (gni_kad_type)t);
        size_t len;
        uint8_t *f = frame_of(&want[t], NULL, &len);
        uint8_t *ns = realloc(stream, total + len);
        CHECK(ns != NULL);
        stream = ns;
        memcpy(stream + total, f, len);
        total += len;
        free(f);
    }
    for (size_t piece = 1; piece <= 7; piece += 3) {
        gni_kad_decoder dec;
        CHECK_OK(gni_kad_decoder_init(&dec, NULL));
        gni_kad_msg got;
        gni_kad_msg_init(&got);
        size_t pos = 0, cnt = 0;
        while (pos < total) {
            size_t end = GNI_MIN(total, pos + piece);
            while (pos < end) {
                size_t used = 0;
                int rc = gni_kad_decode(&dec, stream + pos, end - pos, &used, &got, NULL);
                CHECK(rc >= 0);
                CHECK(used <= end - pos);
                pos += used;
                if (rc == 1) {
                    CHECK(cnt < 6);
                    check_msg_eq(&want[cnt], &got);
                    cnt++;
                } else {
                    CHECK_EQ(pos, end);
                }
            }
        }
        CHECK_EQ(cnt, 6u);
        CHECK_EQ(gni_kad_decode_eof(&dec), 0);
        gni_kad_msg_fini(&got);
        gni_kad_decoder_fini(&dec);
    }
    for (int t = 0; t < 6; t++)
        gni_kad_msg_fini(&want[t]);
    free(stream);
}

GN_TEST_MAIN(GN_T(roundtrip_every_type), GN_T(known_answer_find_node_request),
             GN_T(known_answer_find_node_response), GN_T(oversized_frame_refused_before_allocation),
             GN_T(too_many_peers_and_addrs), GN_T(bad_peer_id_bad_multiaddr_unknown_type),
             GN_T(truncated_and_malformed_frames), GN_T(byte_by_byte_stream_of_frames))
