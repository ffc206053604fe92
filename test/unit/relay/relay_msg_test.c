/*
 * Circuit relay v2 wire core (protocols/relay/relay_msg.c): known-answer
 * messages and a voucher produced by js-libp2p, round trips, framing with
 * gni_lp_reader, voucher checks and malformed input.
 *
 * The hex vectors below were produced by js-libp2p's own encoders:
 *   cd test/interop/js && npm ci && node relay_vectors.mjs
 * (@libp2p/circuit-relay-v2 4.2.13, @libp2p/peer-record's RecordEnvelope;
 * relay key = Ed25519 seed 32 x 0x01, peer key = seed 32 x 0x02,
 * expiration 1767225600 = 2026-01-01T00:00:00Z). Ed25519 signatures are
 * deterministic, so our voucher for the same inputs must equal js's byte
 * for byte.
 */
#include "relay_msg.h"

#include "gn_test.h"
#include "gni.h"
#include "golemnet/err.h"
#include "golemnet/identity.h"
#include "golemnet/log.h"
#include "golemnet/multiaddr.h"

#include <stdlib.h>
#include <string.h>

static const char *RELAY_ID = "0024080112208a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c";
static const char *PEER_ID = "0024080112208139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394";
static const char *HOP_RESERVE = "0800";
static const char *HOP_CONNECT =
    "080112320a260024080112208139770ea87d175f56a35466c34c7ecccb8d8a91"
    "b4ee37a25df60f5b8fc9b3941208047f000001060fa1";
static const char *HOP_STATUS_OK =
    "08021a80020880f2d6ca0612310401020304060fa1a503260024080112208a88"
    "e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c1ac4"
    "010a24080112208a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3"
    "748801b40f6f5c120203021a560a260024080112208a88e3dd7409f195fd52db"
    "2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c1226002408011220813977"
    "0ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b3941880f2"
    "d6ca062a404ff21bc1502122c999629a6a6a47a6461e0c0c9376b6908b6ab34b"
    "07c692a453f7fec5d1b3ac5bc53c38af9e09aa8ae28cc958eb0e79e5a598a42e"
    "50fffb340f22060878108080082864";
static const char *HOP_STATUS_REFUSED = "080228cc01";
static const char *STOP_CONNECT =
    "080012280a260024080112208139770ea87d175f56a35466c34c7ecccb8d8a91"
    "b4ee37a25df60f5b8fc9b3941a06087810808008";
static const char *STOP_STATUS_OK = "08012064";
static const char *VOUCHER =
    "0a24080112208a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf374"
    "8801b40f6f5c120203021a560a260024080112208a88e3dd7409f195fd52db2d"
    "3cba5d72ca6709bf1d94121bf3748801b40f6f5c12260024080112208139770e"
    "a87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b3941880f2d6"
    "ca062a404ff21bc1502122c999629a6a6a47a6461e0c0c9376b6908b6ab34b07"
    "c692a453f7fec5d1b3ac5bc53c38af9e09aa8ae28cc958eb0e79e5a598a42e50"
    "fffb340f";
static const uint64_t EXPIRATION = 1767225600u;

static uint8_t *unhex(const char *hex, size_t *len)
{
    size_t cap = strlen(hex) / 2 + 1;
    uint8_t *b = malloc(cap);
    CHECK(b != NULL);
    long n = gn_test_unhex(hex, b, cap);
    CHECK(n >= 0);
    *len = (size_t)n;
    return b;
}

static void pid_of(const char *hex, gn_peer_id *out)
{
    size_t n;
    uint8_t *b = unhex(hex, &n);
    CHECK_OK(gn_peer_id_from_bytes(b, n, out));
    free(b);
}

static gn_identity *ident(uint8_t fill)
{
    uint8_t seed[GN_ED25519_SEEDBYTES];
    memset(seed, fill, sizeof seed);
    gn_identity *id = NULL;
    CHECK_OK(gn_identity_from_seed(seed, &id));
    return id;
}

static void decode_hex(bool stop, const char *hex, gni_relay_msg *m)
{
    size_t n;
    uint8_t *b = unhex(hex, &n);
    CHECK_OK(gni_relay_msg_decode(stop, b, n, m));
    free(b);
}

/* Encodes @m and checks the body (after the length prefix) equals @hex. */
static void check_encodes_to(const gni_relay_msg *m, const char *hex)
{
    size_t n;
    uint8_t *want = unhex(hex, &n);
    uint8_t *got = NULL;
    size_t got_len = 0;
    CHECK_OK(gni_relay_msg_encode(m, &got, &got_len));
    uint8_t pfx[10];
    size_t pl = gni_lp_prefix(pfx, n);
    CHECK_EQ(got_len, pl + n);
    CHECK_MEM(got, pfx, pl);
    CHECK_MEM(got + pl, want, n);
    gn_free(got);
    free(want);
}

static void check_ma(const gn_multiaddr *ma, const char *str)
{
    char buf[256];
    CHECK(ma != NULL);
    CHECK(gn_multiaddr_to_string(ma, buf, sizeof buf) > 0);
    CHECK_STR(buf, str);
}

GN_TEST(js_hop_messages_decode_and_reencode)
{
    gn_peer_id relay, peer;
    pid_of(RELAY_ID, &relay);
    pid_of(PEER_ID, &peer);
    gni_relay_msg m;

    decode_hex(false, HOP_RESERVE, &m);
    CHECK(!m.stop);
    CHECK_EQ(m.type, GNI_RELAY_HOP_RESERVE);
    CHECK(!m.has_peer && !m.has_reservation && !m.has_limit);
    CHECK_EQ(m.status, 0);
    check_encodes_to(&m, HOP_RESERVE);
    gni_relay_msg_clear(&m);

    decode_hex(false, HOP_CONNECT, &m);
    CHECK_EQ(m.type, GNI_RELAY_HOP_CONNECT);
    CHECK(m.has_peer);
    CHECK(gn_peer_id_equal(&m.peer, &peer));
    CHECK_EQ(m.npeer_addrs, 1u);
    check_ma(m.peer_addrs[0], "/ip4/127.0.0.1/tcp/4001");
    check_encodes_to(&m, HOP_CONNECT);
    gni_relay_msg_clear(&m);

    decode_hex(false, HOP_STATUS_OK, &m);
    CHECK_EQ(m.type, GNI_RELAY_HOP_STATUS);
    CHECK_EQ(m.status, GNI_RELAY_OK);
    CHECK(m.has_reservation);
    CHECK_EQ(m.rsv_expire, EXPIRATION);
    CHECK_EQ(m.nrsv_addrs, 1u);
    check_ma(m.rsv_addrs[0],
             "/ip4/1.2.3.4/tcp/4001/p2p/12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5");
    CHECK(m.has_limit);
    CHECK_EQ(m.limit_duration, 120u);
    CHECK_EQ(m.limit_data, 131072u);
    size_t vl;
    uint8_t *v = unhex(VOUCHER, &vl);
    CHECK_EQ(m.voucher_len, vl);
    CHECK_MEM(m.voucher, v, vl);
    free(v);
    gn_peer_id vp;
    uint64_t exp = 0;
    CHECK_OK(gni_relay_voucher_open(m.voucher, m.voucher_len, &relay, &vp, &exp));
    CHECK(gn_peer_id_equal(&vp, &peer));
    CHECK_EQ(exp, EXPIRATION);
    check_encodes_to(&m, HOP_STATUS_OK);
    gni_relay_msg_clear(&m);
    CHECK(m.voucher == NULL && m.nrsv_addrs == 0);

    decode_hex(false, HOP_STATUS_REFUSED, &m);
    CHECK_EQ(m.type, GNI_RELAY_HOP_STATUS);
    CHECK_EQ(m.status, GNI_RELAY_NO_RESERVATION);
    CHECK_EQ(gni_relay_status_err(m.status), GN_ENOROUTE);
    CHECK_STR(gni_relay_status_name(m.status), "NO_RESERVATION");
    check_encodes_to(&m, HOP_STATUS_REFUSED);
    gni_relay_msg_clear(&m);
}

GN_TEST(js_stop_messages_decode_and_reencode)
{
    gn_peer_id peer;
    pid_of(PEER_ID, &peer);
    gni_relay_msg m;
    decode_hex(true, STOP_CONNECT, &m);
    CHECK(m.stop);
    CHECK_EQ(m.type, GNI_RELAY_STOP_CONNECT);
    CHECK(m.has_peer && gn_peer_id_equal(&m.peer, &peer));
    CHECK_EQ(m.npeer_addrs, 0u);
    CHECK(m.has_limit);
    CHECK_EQ(m.limit_duration, 120u);
    CHECK_EQ(m.limit_data, 131072u);
    check_encodes_to(&m, STOP_CONNECT);
    gni_relay_msg_clear(&m);

    decode_hex(true, STOP_STATUS_OK, &m);
    CHECK_EQ(m.type, GNI_RELAY_STOP_STATUS);
    CHECK_EQ(m.status, GNI_RELAY_OK);
    check_encodes_to(&m, STOP_STATUS_OK);
    gni_relay_msg_clear(&m);
}

GN_TEST(voucher_equals_js_and_round_trips)
{
    gn_identity *relay_key = ident(1), *peer_key = ident(2), *other_key = ident(3);
    gn_peer_id relay, peer, other;
    gn_identity_peer_id(relay_key, &relay);
    gn_identity_peer_id(peer_key, &peer);
    gn_identity_peer_id(other_key, &other);
    gn_peer_id want_relay;
    pid_of(RELAY_ID, &want_relay);
    CHECK(gn_peer_id_equal(&relay, &want_relay));

    uint8_t *env = NULL;
    size_t len = 0;
    CHECK_OK(gni_relay_voucher_make(relay_key, &peer, EXPIRATION, &env, &len));
    size_t vl;
    uint8_t *v = unhex(VOUCHER, &vl);
    CHECK_EQ(len, vl);
    CHECK_MEM(env, v, vl);

    gn_peer_id got;
    uint64_t exp = 0;
    CHECK_OK(gni_relay_voucher_open(env, len, &relay, &got, &exp));
    CHECK(gn_peer_id_equal(&got, &peer));
    CHECK_EQ(exp, EXPIRATION);
    CHECK_OK(gni_relay_voucher_open(env, len, &relay, NULL, NULL));

    /* not signed by the relay asked about */
    CHECK_EQ(gni_relay_voucher_open(env, len, &other, NULL, NULL), GN_EPEERID);
    /* a flipped signature byte (the signature is the last 64 bytes) */
    env[len - 1] ^= 1;
    CHECK_EQ(gni_relay_voucher_open(env, len, &relay, NULL, NULL), GN_EBADSIG);
    env[len - 1] ^= 1;
    /* a flipped payload byte: the expiration varint's first byte sits
     * before the signature field (2 + 64 bytes) and its 5 bytes */
    env[len - 66 - 5] ^= 1;
    CHECK_EQ(gni_relay_voucher_open(env, len, &relay, NULL, NULL), GN_EBADSIG);
    env[len - 66 - 5] ^= 1;
    /* payload type 03 02 sits at offset 38 (after the 38-byte key field and
     * its tag 0x12 and length) */
    CHECK_EQ(env[38], 0x12);
    CHECK_EQ(env[40], 0x03);
    env[40] = 0x04;
    CHECK_EQ(gni_relay_voucher_open(env, len, &relay, NULL, NULL), GN_EPROTO);
    env[40] = 0x03;
    /* truncations and garbage */
    for (size_t cut = 0; cut < len; cut += 7) {
        int rc = gni_relay_voucher_open(env, cut, &relay, NULL, NULL);
        CHECK(rc == GN_EPROTO || rc == GN_EBADSIG);
    }
    CHECK_EQ(gni_relay_voucher_open(env, GNI_RELAY_VOUCHER_MAX + 1, &relay, NULL, NULL),
             GN_EPROTO);
    CHECK_EQ(gni_relay_voucher_open(NULL, 1, &relay, NULL, NULL), GN_EINVAL);

    /* a voucher whose payload names another relay, signed by the right key */
    uint8_t payload[200];
    size_t pl = 0;
    payload[pl++] = 0x0a;
    payload[pl++] = other.len;
    memcpy(payload + pl, other.bytes, other.len);
    pl += other.len;
    payload[pl++] = 0x12;
    payload[pl++] = peer.len;
    memcpy(payload + pl, peer.bytes, peer.len);
    pl += peer.len;
    payload[pl++] = 0x18;
    payload[pl++] = 0x01;
    uint8_t *env2 = NULL;
    size_t len2 = 0;
    CHECK_OK(gni_envelope_seal(relay_key, GNI_RELAY_VOUCHER_DOMAIN, gni_relay_voucher_type,
                               GNI_RELAY_VOUCHER_TYPE_LEN, payload, pl, &env2, &len2));
    CHECK_EQ(gni_relay_voucher_open(env2, len2, &relay, NULL, NULL), GN_EPEERID);
    gn_free(env2);
    /* a wrong domain: the signature does not cover what we check */
    CHECK_OK(gni_envelope_seal(relay_key, "libp2p-routing-state", gni_relay_voucher_type,
                               GNI_RELAY_VOUCHER_TYPE_LEN, payload, pl, &env2, &len2));
    CHECK_EQ(gni_relay_voucher_open(env2, len2, &relay, NULL, NULL), GN_EBADSIG);
    gn_free(env2);
    /* a payload missing the expiration */
    CHECK_OK(gni_envelope_seal(relay_key, GNI_RELAY_VOUCHER_DOMAIN, gni_relay_voucher_type,
                               GNI_RELAY_VOUCHER_TYPE_LEN, payload, pl - 2, &env2, &len2));
    CHECK_EQ(gni_relay_voucher_open(env2, len2, &relay, NULL, NULL), GN_EPROTO);
    gn_free(env2);

    free(v);
    gn_free(env);
    gn_identity_free(relay_key);
    gn_identity_free(peer_key);
    gn_identity_free(other_key);
}

/* Relays with RSA, secp256k1 and ECDSA identities sign vouchers that open (issue 17). */
GN_TEST(voucher_key_types)
{
    static const gn_key_type types[] = {GN_KEY_RSA, GN_KEY_SECP256K1, GN_KEY_ECDSA};
    gn_identity *peer_key = ident(2);
    gn_peer_id peer;
    gn_identity_peer_id(peer_key, &peer);
    for (size_t k = 0; k < 3; k++) {
        gn_identity *relay_key = NULL;
        /* 4096 bits: the key and signature of a big RSA relay fit the bound */
        CHECK_OK(gn_identity_generate_type(types[k], types[k] == GN_KEY_RSA ? 4096 : 0,
                                           &relay_key));
        gn_peer_id relay, got;
        gn_identity_peer_id(relay_key, &relay);
        uint8_t *env = NULL;
        size_t len = 0;
        uint64_t exp = 0;
        CHECK_OK(gni_relay_voucher_make(relay_key, &peer, EXPIRATION, &env, &len));
        CHECK(len <= GNI_RELAY_VOUCHER_MAX);
        CHECK_OK(gni_relay_voucher_open(env, len, &relay, &got, &exp));
        CHECK(gn_peer_id_equal(&got, &peer));
        CHECK_EQ(exp, EXPIRATION);
        /* the signature is the last field: flip its last byte */
        env[len - 1] ^= 1;
        CHECK_EQ(gni_relay_voucher_open(env, len, &relay, NULL, NULL), GN_EBADSIG);
        gn_free(env);
        gn_identity_free(relay_key);
    }
    gn_identity_free(peer_key);
}

GN_TEST(round_trip_with_framing)
{
    gn_peer_id peer;
    pid_of(PEER_ID, &peer);
    gni_relay_msg m = {0};
    m.type = GNI_RELAY_HOP_STATUS;
    m.status = GNI_RELAY_OK;
    m.has_reservation = true;
    m.rsv_expire = UINT64_MAX;
    for (size_t i = 0; i < GNI_RELAY_MAX_ADDRS; i++) {
        char s[64];
        snprintf(s, sizeof s, "/ip4/10.0.0.%zu/tcp/%zu/ws", i + 1, 1000 + i);
        CHECK_OK(gn_multiaddr_parse(s, &m.rsv_addrs[i]));
    }
    m.nrsv_addrs = GNI_RELAY_MAX_ADDRS;
    m.voucher = gn_malloc(3);
    memcpy(m.voucher, "abc", 3);
    m.voucher_len = 3;
    m.has_limit = true;
    m.limit_duration = UINT32_MAX;
    m.limit_data = 0; /* none: not written */
    m.has_peer = true;
    m.peer = peer;
    CHECK_OK(gn_multiaddr_parse("/dns4/example.com/tcp/443/wss", &m.peer_addrs[0]));
    m.npeer_addrs = 1;

    uint8_t *buf = NULL;
    size_t len = 0;
    CHECK_OK(gni_relay_msg_encode(&m, &buf, &len));
    /* the frame followed by relayed bytes: the reader stops after it */
    uint8_t *stream = malloc(len + 5);
    CHECK(stream != NULL);
    memcpy(stream, buf, len);
    memcpy(stream + len, "hello", 5);
    gni_lp_reader rd;
    gni_lp_reader_init(&rd, GNI_RELAY_MSG_MAX);
    size_t pos = 0;
    const uint8_t *body = NULL;
    size_t body_len = 0;
    int rc = 0;
    while (pos < len + 5 && rc == 0) { /* byte by byte */
        size_t used = 0;
        rc = gni_lp_reader_feed(&rd, stream + pos, 1, &used, &body, &body_len);
        CHECK(rc >= 0);
        pos += used;
    }
    CHECK_EQ(rc, 1);
    CHECK_EQ(pos, len);
    gni_relay_msg got;
    CHECK_OK(gni_relay_msg_decode(false, body, body_len, &got));
    gni_lp_reader_clear(&rd);
    CHECK_EQ(got.type, GNI_RELAY_HOP_STATUS);
    CHECK_EQ(got.status, GNI_RELAY_OK);
    CHECK(got.has_reservation);
    CHECK_EQ(got.rsv_expire, UINT64_MAX);
    CHECK_EQ(got.nrsv_addrs, (size_t)GNI_RELAY_MAX_ADDRS);
    for (size_t i = 0; i < GNI_RELAY_MAX_ADDRS; i++) {
        CHECK(gn_multiaddr_equal(got.rsv_addrs[i], m.rsv_addrs[i]));
    }
    CHECK_EQ(got.voucher_len, 3u);
    CHECK_MEM(got.voucher, "abc", 3);
    CHECK(got.has_limit);
    CHECK_EQ(got.limit_duration, UINT32_MAX);
    CHECK_EQ(got.limit_data, 0u);
    CHECK(got.has_peer && gn_peer_id_equal(&got.peer, &peer));
    CHECK_EQ(got.npeer_addrs, 1u);
    check_ma(got.peer_addrs[0], "/dns4/example.com/tcp/443/wss");
    gni_relay_msg_clear(&got);
    gni_relay_msg_clear(&m);
    free(stream);
    gn_free(buf);

    /* a StopMessage round trip */
    gni_relay_msg s = {.stop = true, .type = GNI_RELAY_STOP_STATUS,
                       .status = GNI_RELAY_CONNECTION_FAILED};
    CHECK_OK(gni_relay_msg_encode(&s, &buf, &len));
    CHECK_OK(gni_relay_msg_decode(true, buf + 1, len - 1, &got));
    CHECK(got.stop);
    CHECK_EQ(got.type, GNI_RELAY_STOP_STATUS);
    CHECK_EQ(got.status, GNI_RELAY_CONNECTION_FAILED);
    gni_relay_msg_clear(&got);
    gn_free(buf);
}

GN_TEST(encode_refuses_bad_messages)
{
    uint8_t *buf = (uint8_t *)0x1;
    size_t len = 0;
    gni_relay_msg m = {0};
    m.type = 3;
    CHECK_EQ(gni_relay_msg_encode(&m, &buf, &len), GN_EINVAL);
    m.type = -1;
    CHECK_EQ(gni_relay_msg_encode(&m, &buf, &len), GN_EINVAL);
    m = (gni_relay_msg){.stop = true, .type = GNI_RELAY_STOP_STATUS + 1};
    CHECK_EQ(gni_relay_msg_encode(&m, &buf, &len), GN_EINVAL);
    m = (gni_relay_msg){.stop = true, .type = GNI_RELAY_STOP_STATUS, .has_reservation = true};
    CHECK_EQ(gni_relay_msg_encode(&m, &buf, &len), GN_EINVAL);
    m = (gni_relay_msg){.type = GNI_RELAY_HOP_CONNECT, .has_peer = true}; /* empty peer id */
    CHECK_EQ(gni_relay_msg_encode(&m, &buf, &len), GN_EINVAL);
    m = (gni_relay_msg){.type = GNI_RELAY_HOP_STATUS, .has_reservation = true, .nrsv_addrs = 1};
    CHECK_EQ(gni_relay_msg_encode(&m, &buf, &len), GN_EINVAL); /* NULL address */
    m = (gni_relay_msg){.type = GNI_RELAY_HOP_STATUS, .has_reservation = true,
                        .voucher_len = GNI_RELAY_MSG_MAX + 1};
    m.voucher = calloc(1, m.voucher_len);
    CHECK_EQ(gni_relay_msg_encode(&m, &buf, &len), GN_ETOOBIG);
    free(m.voucher);
    CHECK(buf == (uint8_t *)0x1);
    CHECK_EQ(gni_relay_msg_encode(NULL, &buf, &len), GN_EINVAL);
}

GN_TEST(decode_refuses_malformed_input)
{
    gni_relay_msg m;
    /* no type */
    CHECK_EQ(gni_relay_msg_decode(false, NULL, 0, &m), GN_EPROTO);
    CHECK_EQ(gni_relay_msg_decode(true, (const uint8_t *)"\x20\x64", 2, &m), GN_EPROTO);
    /* types outside the enums */
    CHECK_EQ(gni_relay_msg_decode(false, (const uint8_t *)"\x08\x03", 2, &m), GN_EPROTO);
    CHECK_EQ(gni_relay_msg_decode(true, (const uint8_t *)"\x08\x02", 2, &m), GN_EPROTO);
    /* truncated varint, truncated length-delimited field, wire type 7 */
    CHECK_EQ(gni_relay_msg_decode(false, (const uint8_t *)"\x08\x80", 2, &m), GN_EPROTO);
    CHECK_EQ(gni_relay_msg_decode(false, (const uint8_t *)"\x08\x01\x12\x05\x0a", 5, &m),
             GN_EPROTO);
    CHECK_EQ(gni_relay_msg_decode(false, (const uint8_t *)"\x08\x01\x0f", 3, &m), GN_EPROTO);
    /* a Peer without an id, and with an id that is not a multihash */
    CHECK_EQ(gni_relay_msg_decode(false, (const uint8_t *)"\x08\x01\x12\x00", 4, &m), GN_EPROTO);
    CHECK_EQ(gni_relay_msg_decode(false, (const uint8_t *)"\x08\x01\x12\x04\x0a\x02\x99\x01", 8,
                                  &m),
             GN_EPROTO);
    CHECK(!m.has_peer && m.npeer_addrs == 0);
    /* longer than the maximum */
    uint8_t *big = calloc(1, GNI_RELAY_MSG_MAX + 1);
    big[0] = 0x08;
    CHECK_EQ(gni_relay_msg_decode(false, big, GNI_RELAY_MSG_MAX + 1, &m), GN_EPROTO);
    free(big);
    CHECK_EQ(gni_relay_msg_decode(false, NULL, 1, &m), GN_EINVAL);

    /* unknown fields and unknown status codes are kept going; addresses
     * that do not parse are skipped, the 17th and later are dropped */
    gn_peer_id peer;
    pid_of(PEER_ID, &peer);
    uint8_t msg[GNI_RELAY_MSG_MAX];
    size_t n = 0, pn;
    msg[n++] = 0x08;
    msg[n++] = 0x01;
    msg[n++] = 0x12; /* peer */
    size_t peer_len_at = n;
    n += 2; /* a two-byte length varint */
    msg[n++] = 0x0a;
    msg[n++] = peer.len;
    memcpy(msg + n, peer.bytes, peer.len);
    n += peer.len;
    msg[n++] = 0x12; /* a bad address */
    msg[n++] = 0x02;
    msg[n++] = 0xff;
    msg[n++] = 0xff;
    for (int i = 0; i < 20; i++) { /* /ip4/127.0.0.1/tcp/4001 x 20 */
        static const uint8_t ma[] = {0x04, 0x7f, 0x00, 0x00, 0x01, 0x06, 0x0f, 0xa1};
        msg[n++] = 0x12;
        msg[n++] = sizeof ma;
        memcpy(msg + n, ma, sizeof ma);
        n += sizeof ma;
    }
    pn = n - peer_len_at - 2;
    CHECK(pn >= 0x80 && pn < 0x4000);
    msg[peer_len_at] = (uint8_t)(0x80 | (pn & 0x7f));
    msg[peer_len_at + 1] = (uint8_t)(pn >> 7);
    msg[n++] = 0x28; /* status 999 */
    msg[n++] = 0xe7;
    msg[n++] = 0x07;
    msg[n++] = 0x78; /* field 15, varint: unknown */
    msg[n++] = 0x01;
    CHECK_OK(gni_relay_msg_decode(false, msg, n, &m));
    CHECK_EQ(m.npeer_addrs, (size_t)GNI_RELAY_MAX_ADDRS);
    check_ma(m.peer_addrs[0], "/ip4/127.0.0.1/tcp/4001");
    CHECK_EQ(m.status, 999);
    CHECK_STR(gni_relay_status_name(m.status), "UNKNOWN");
    CHECK_EQ(gni_relay_status_err(m.status), GN_EPROTO);
    gni_relay_msg_clear(&m);
}

GN_TEST(status_names_and_errors)
{
    CHECK_EQ(gni_relay_status_err(GNI_RELAY_OK), 0);
    CHECK_EQ(gni_relay_status_err(GNI_RELAY_RESERVATION_REFUSED), GN_ECONNREFUSED);
    CHECK_EQ(gni_relay_status_err(GNI_RELAY_RESOURCE_LIMIT_EXCEEDED), GN_ELIMIT);
    CHECK_EQ(gni_relay_status_err(GNI_RELAY_PERMISSION_DENIED), GN_EACCES);
    CHECK_EQ(gni_relay_status_err(GNI_RELAY_CONNECTION_FAILED), GN_EUNREACHABLE);
    CHECK_EQ(gni_relay_status_err(GNI_RELAY_MALFORMED_MESSAGE), GN_EPROTO);
    CHECK_EQ(gni_relay_status_err(GNI_RELAY_UNEXPECTED_MESSAGE), GN_EPROTO);
    CHECK_EQ(gni_relay_status_err(0), GN_EPROTO);
    CHECK_STR(gni_relay_status_name(GNI_RELAY_OK), "OK");
    CHECK_STR(gni_relay_status_name(GNI_RELAY_RESOURCE_LIMIT_EXCEEDED), "RESOURCE_LIMIT_EXCEEDED");
    CHECK_STR(gni_relay_status_name(GNI_RELAY_UNEXPECTED_MESSAGE), "UNEXPECTED_MESSAGE");
}

GN_TEST_MAIN(GN_T(js_hop_messages_decode_and_reencode), GN_T(js_stop_messages_decode_and_reencode),
             GN_T(voucher_equals_js_and_round_trips), GN_T(voucher_key_types),
             GN_T(round_trip_with_framing),
             GN_T(encode_refuses_bad_messages), GN_T(decode_refuses_malformed_input),
             GN_T(status_names_and_errors))
