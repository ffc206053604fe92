/*
 * /libp2p/autonat/1.0.0 wire core (protocols/autonat/autonat_msg.c):
 * known-answer frames made by js-libp2p, round trips, every bound and
 * malformed input.
 *
 * The known-answer frames were printed by test/interop/js/autonat_vectors.mjs
 * (node autonat_vectors.mjs after npm ci): each is @libp2p/autonat 3.0.28's
 * own protobuf codec (dist/src/pb, protons) output with the unsigned-varint
 * length prefix its pbStream writes. The peer is the Ed25519 key of the seed
 * 32 x 0x07, 12D3KooWRawPbxPtP1eZaJpumGnyWX2DcUyd3RQnydr3eAto4Az7.
 */
#include "autonat_msg.h"

#include "gn_test.h"
#include "gni.h"
#include "golemnet/err.h"
#include "golemnet/identity.h"
#include "golemnet/multiaddr.h"

#include <string.h>

static const char *JS_DIAL =
    "4e0800124a0a480a26002408011220ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea6914"
    "46d22c1208047f000001060fa112142900000000000000000000000000000001060fa2";
static const char *JS_OK = "1008011a0c08001a080401020304060fa1";
static const char *JS_DIAL_ERROR = "1308011a0f0864120b6469616c206661696c6564";
static const char *JS_REFUSED = "1608011a120865120e746f6f206d616e79206469616c73";
static const char *JS_BAD_REQUEST = "0708011a0308c801";
static const char *JS_INTERNAL = "0708011a0308ac02";

static void seed_peer(gn_peer_id *out)
{
    uint8_t seed[GN_ED25519_SEEDBYTES];
    memset(seed, 7, sizeof seed);
    gn_identity *id;
    CHECK_OK(gn_identity_from_seed(seed, &id));
    gn_identity_peer_id(id, out);
    gn_identity_free(id);
}

/* Splits a frame (hex) into its body; returns the body length. */
static size_t frame_body(const char *hex, uint8_t *buf, size_t cap, const uint8_t **body)
{
    long n = gn_test_unhex(hex, buf, cap);
    CHECK(n > 0);
    gni_lp_reader rd;
    gni_lp_reader_init(&rd, GNI_AUTONAT_MAX_MSG_LEN);
    size_t used;
    const uint8_t *msg;
    size_t len;
    CHECK_EQ(gni_lp_reader_feed(&rd, buf, (size_t)n, &used, &msg, &len), 1);
    CHECK_EQ(used, (size_t)n);
    /* the body follows the prefix in @buf */
    *body = buf + (size_t)n - len;
    CHECK_MEM(*body, msg, len);
    gni_lp_reader_clear(&rd);
    return len;
}

static void check_addr(const gn_multiaddr *ma, const char *want)
{
    char s[128];
    CHECK(ma != NULL);
    CHECK(gn_multiaddr_to_string(ma, s, sizeof s) >= 0);
    CHECK_STR(s, want);
}

GN_TEST(known_answer_dial)
{
    uint8_t buf[256];
    const uint8_t *body;
    size_t len = frame_body(JS_DIAL, buf, sizeof buf, &body);
    gni_autonat_msg m;
    CHECK_OK(gni_autonat_decode(body, len, &m));
    CHECK_EQ(m.type, GNI_AUTONAT_DIAL);
    gn_peer_id want;
    seed_peer(&want);
    CHECK(m.has_peer_id);
    CHECK(gn_peer_id_equal(&m.peer_id, &want));
    CHECK_EQ(m.addr_cnt, 2u);
    CHECK_EQ(m.addrs_skipped, 0u);
    check_addr(m.addrs[0], "/ip4/127.0.0.1/tcp/4001");
    check_addr(m.addrs[1], "/ip6/::1/tcp/4002");

    /* our encoder makes the same bytes */
    uint8_t out[GNI_AUTONAT_FRAME_MAX];
    size_t out_len;
    const gn_multiaddr *addrs[2] = {m.addrs[0], m.addrs[1]};
    CHECK_OK(gni_autonat_encode_dial(&want, addrs, 2, out, sizeof out, &out_len));
    uint8_t exp[256];
    long n = gn_test_unhex(JS_DIAL, exp, sizeof exp);
    CHECK_EQ(out_len, (size_t)n);
    CHECK_MEM(out, exp, out_len);
    gni_autonat_msg_fini(&m);
    CHECK_EQ(m.addr_cnt, 0u);
}

/* Decodes the response frame @hex and checks it, then re-encodes it. */
static void check_response(const char *hex, gni_autonat_status st, const char *text,
                           const char *addr)
{
    uint8_t buf[256];
    const uint8_t *body;
    size_t len = frame_body(hex, buf, sizeof buf, &body);
    gni_autonat_msg m;
    CHECK_OK(gni_autonat_decode(body, len, &m));
    CHECK_EQ(m.type, GNI_AUTONAT_DIAL_RESPONSE);
    CHECK_EQ(m.status, st);
    CHECK_STR(m.status_text, text);
    CHECK(!m.addr_bad);
    if (addr) {
        check_addr(m.addr, addr);
    } else {
        CHECK(m.addr == NULL);
    }
    uint8_t out[GNI_AUTONAT_FRAME_MAX];
    size_t out_len;
    CHECK_OK(gni_autonat_encode_response(st, text, m.addr, out, sizeof out, &out_len));
    uint8_t exp[256];
    long n = gn_test_unhex(hex, exp, sizeof exp);
    CHECK_EQ(out_len, (size_t)n);
    CHECK_MEM(out, exp, out_len);
    gni_autonat_msg_fini(&m);
}

GN_TEST(known_answer_responses)
{
    check_response(JS_OK, GNI_AUTONAT_OK, "", "/ip4/1.2.3.4/tcp/4001");
    check_response(JS_DIAL_ERROR, GNI_AUTONAT_E_DIAL_ERROR, "dial failed", NULL);
    check_response(JS_REFUSED, GNI_AUTONAT_E_DIAL_REFUSED, "too many dials", NULL);
    check_response(JS_BAD_REQUEST, GNI_AUTONAT_E_BAD_REQUEST, "", NULL);
    check_response(JS_INTERNAL, GNI_AUTONAT_E_INTERNAL_ERROR, "", NULL);
    CHECK_STR(gni_autonat_status_name(GNI_AUTONAT_E_DIAL_REFUSED), "E_DIAL_REFUSED");
    CHECK_STR(gni_autonat_status_name(7), "?");
}

/* Hand-built bodies: field by field protobuf. */
GN_TEST(malformed_and_spec_violations)
{
    gni_autonat_msg m;
    /* empty body: no type */
    CHECK_EQ(gni_autonat_decode(NULL, 0, &m), GN_EPROTO);
    /* truncated varint / field */
    static const uint8_t trunc[] = {0x08};
    CHECK_EQ(gni_autonat_decode(trunc, sizeof trunc, &m), GN_EBADFRAME);
    /* unknown type 2 */
    static const uint8_t badtype[] = {0x08, 0x02};
    CHECK_EQ(gni_autonat_decode(badtype, sizeof badtype, &m), GN_EPROTO);
    /* DIAL without dial */
    static const uint8_t nodial[] = {0x08, 0x00};
    CHECK_EQ(gni_autonat_decode(nodial, sizeof nodial, &m), GN_EPROTO);
    /* DIAL with dial but no peer */
    static const uint8_t nopeer[] = {0x08, 0x00, 0x12, 0x00};
    CHECK_EQ(gni_autonat_decode(nopeer, sizeof nopeer, &m), GN_EPROTO);
    /* DIAL with a peer id that is not a multihash: 3 bytes 01 02 03 */
    static const uint8_t badid[] = {0x08, 0x00, 0x12, 0x07, 0x0a, 0x05, 0x0a, 0x03, 1, 2, 3};
    CHECK_EQ(gni_autonat_decode(badid, sizeof badid, &m), GN_EPROTO);
    /* DIAL with a peer and no id, one unparseable addr (ff ff), one good one */
    static const uint8_t noid[] = {0x08, 0x00, 0x12, 0x0e, 0x0a, 0x0c, 0x12, 0x02, 0xff, 0xff,
                                   0x12, 0x06, 0x04, 10, 0, 0, 1, 0x06};
    /* both addresses are skipped: ff ff and a /tcp without its port */
    CHECK_OK(gni_autonat_decode(noid, sizeof noid, &m));
    CHECK(!m.has_peer_id);
    CHECK_EQ(m.addr_cnt, 0u);
    CHECK_EQ(m.addrs_skipped, 2u);
    gni_autonat_msg_fini(&m);
    /* a field that runs past the body */
    static const uint8_t cut[] = {0x08, 0x00, 0x12, 0x10, 0x0a, 0x0e, 0x12, 0x02, 0xff};
    CHECK_EQ(gni_autonat_decode(cut, sizeof cut, &m), GN_EBADFRAME);
    static const uint8_t noid2[] = {0x08, 0x00, 0x12, 0x10, 0x0a, 0x0e, 0x12, 0x02, 0xff, 0xff,
                                    0x12, 0x08, 0x04, 10, 0, 0, 1, 0x06, 0x0f, 0xa1};
    CHECK_OK(gni_autonat_decode(noid2, sizeof noid2, &m));
    CHECK(!m.has_peer_id);
    CHECK_EQ(m.addr_cnt, 1u);
    CHECK_EQ(m.addrs_skipped, 1u);
    check_addr(m.addrs[0], "/ip4/10.0.0.1/tcp/4001");
    gni_autonat_msg_fini(&m);
    /* DIAL_RESPONSE without dialResponse, without status, unknown status 5 */
    static const uint8_t nores[] = {0x08, 0x01};
    CHECK_EQ(gni_autonat_decode(nores, sizeof nores, &m), GN_EPROTO);
    static const uint8_t nostatus[] = {0x08, 0x01, 0x1a, 0x00};
    CHECK_EQ(gni_autonat_decode(nostatus, sizeof nostatus, &m), GN_EPROTO);
    static const uint8_t badstatus[] = {0x08, 0x01, 0x1a, 0x02, 0x08, 0x05};
    CHECK_EQ(gni_autonat_decode(badstatus, sizeof badstatus, &m), GN_EPROTO);
    /* OK with a bad address and a text with a control byte */
    static const uint8_t badaddr[] = {0x08, 0x01, 0x1a, 0x09, 0x08, 0x00, 0x12, 0x02,
                                      'a',  0x01, 0x1a, 0x01, 0xff};
    CHECK_OK(gni_autonat_decode(badaddr, sizeof badaddr, &m));
    CHECK_EQ(m.status, GNI_AUTONAT_OK);
    CHECK(m.addr == NULL);
    CHECK(m.addr_bad);
    CHECK_STR(m.status_text, "a?");
    gni_autonat_msg_fini(&m);
    /* arguments */
    CHECK_EQ(gni_autonat_decode(NULL, 3, &m), GN_EINVAL);
    CHECK_EQ(gni_autonat_decode(trunc, 1, NULL), GN_EINVAL);
}

GN_TEST(bounds)
{
    gni_autonat_msg m;
    /* a body over the bound is refused before unpacking */
    static uint8_t big[GNI_AUTONAT_MAX_MSG_LEN + 1];
    CHECK_EQ(gni_autonat_decode(big, sizeof big, &m), GN_ETOOBIG);

    /* 40 addresses: the first 16 kept, the rest counted */
    gn_multiaddr *ma;
    CHECK_OK(gn_multiaddr_parse("/ip4/10.0.0.1/tcp/4001", &ma));
    gn_slice b = gn_multiaddr_bytes(ma);
    uint8_t body[1024];
    size_t n = 0;
    body[n++] = 0x08;
    body[n++] = 0x00;
    size_t per = 2 + b.len;
    size_t peer_len = 40 * per;
    size_t dial_len = 3 + peer_len; /* PeerInfo tag + 2-byte length */
    CHECK(peer_len < 16384 && dial_len < 16384 && 6 + dial_len <= sizeof body);
    body[n++] = 0x12;
    body[n++] = (uint8_t)(0x80 | (dial_len & 0x7f));
    body[n++] = (uint8_t)(dial_len >> 7);
    body[n++] = 0x0a;
    body[n++] = (uint8_t)(0x80 | (peer_len & 0x7f));
    body[n++] = (uint8_t)(peer_len >> 7);
    for (int i = 0; i < 40; i++) {
        body[n++] = 0x12;
        body[n++] = (uint8_t)b.len;
        memcpy(body + n, b.base, b.len);
        n += b.len;
    }
    CHECK_OK(gni_autonat_decode(body, n, &m));
    CHECK_EQ(m.addr_cnt, GNI_AUTONAT_MAX_ADDRS);
    CHECK_EQ(m.addrs_skipped, 40u - GNI_AUTONAT_MAX_ADDRS);
    gni_autonat_msg_fini(&m);

    /* the encoder refuses more than the bound, and a small buffer */
    const gn_multiaddr *addrs[GNI_AUTONAT_MAX_ADDRS + 1];
    for (size_t i = 0; i <= GNI_AUTONAT_MAX_ADDRS; i++) {
        addrs[i] = ma;
    }
    gn_peer_id pid;
    seed_peer(&pid);
    uint8_t out[GNI_AUTONAT_FRAME_MAX];
    size_t out_len;
    CHECK_EQ(gni_autonat_encode_dial(&pid, addrs, GNI_AUTONAT_MAX_ADDRS + 1, out, sizeof out,
                                     &out_len),
             GN_EINVAL);
    CHECK_OK(gni_autonat_encode_dial(&pid, addrs, GNI_AUTONAT_MAX_ADDRS, out, sizeof out,
                                     &out_len));
    CHECK_EQ(gni_autonat_encode_dial(&pid, addrs, 1, out, 10, &out_len), GN_ENOSPC);
    CHECK_EQ(gni_autonat_encode_response((gni_autonat_status)7, NULL, NULL, out, sizeof out,
                                         &out_len),
             GN_EINVAL);
    /* a long text is cut at the bound */
    char text[GNI_AUTONAT_MAX_TEXT + 50];
    memset(text, 'x', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    CHECK_OK(gni_autonat_encode_response(GNI_AUTONAT_E_DIAL_ERROR, text, NULL, out, sizeof out,
                                         &out_len));
    gni_lp_reader rd;
    gni_lp_reader_init(&rd, GNI_AUTONAT_MAX_MSG_LEN);
    size_t used, mlen;
    const uint8_t *msg;
    CHECK_EQ(gni_lp_reader_feed(&rd, out, out_len, &used, &msg, &mlen), 1);
    CHECK_OK(gni_autonat_decode(msg, mlen, &m));
    CHECK_EQ(strlen(m.status_text), (size_t)GNI_AUTONAT_MAX_TEXT);
    gni_autonat_msg_fini(&m);
    gni_lp_reader_clear(&rd);
    gn_multiaddr_free(ma);
}

GN_TEST_MAIN(GN_T(known_answer_dial), GN_T(known_answer_responses),
             GN_T(malformed_and_spec_violations), GN_T(bounds))
