/*
 * WebSocket core (layers/transport/websocket/ws.c): RFC 6455 known answers
 * (section 1.3 key/accept, section 5.7 frame examples), the opening
 * handshake built and parsed, every framing violation with its close code,
 * fragmentation, control frames, bounds and byte-by-byte feeding.
 */
#include "../gn_test.h"
#include "golemnet/err.h"
#include "ws.h"

#include <stdlib.h>
#include <string.h>

/* What the callbacks saw. */
typedef struct rec {
    uint8_t data[70000];
    size_t data_len;
    int data_calls;
    uint8_t ping[GNI_WS_CTL_MAX];
    size_t ping_len;
    int pings, pongs, closes;
    unsigned close_code;
    char reason[GNI_WS_CTL_MAX];
    int pause_after; /* on_data returns 1 after this many calls (0: never) */
} rec;

static int r_data(void *ud, const uint8_t *d, size_t n)
{
    rec *r = ud;
    CHECK(n > 0 && r->data_len + n <= sizeof r->data);
    memcpy(r->data + r->data_len, d, n);
    r->data_len += n;
    r->data_calls++;
    return r->pause_after && r->data_calls >= r->pause_after ? 1 : 0;
}

static int r_ping(void *ud, const uint8_t *d, size_t n)
{
    rec *r = ud;
    memcpy(r->ping, d, n);
    r->ping_len = n;
    r->pings++;
    return 0;
}

static int r_pong(void *ud, const uint8_t *d, size_t n)
{
    (void)d;
    (void)n;
    ((rec *)ud)->pongs++;
    return 0;
}

static int r_close(void *ud, unsigned code, const uint8_t *reason, size_t n)
{
    rec *r = ud;
    r->closes++;
    r->close_code = code;
    memcpy(r->reason, reason, n);
    r->reason[n] = '\0';
    return 0;
}

static const gni_ws_callbacks r_cbs = {r_data, r_ping, r_pong, r_close};

static rec R;

static void ws_setup(gni_ws *w, bool server)
{
    memset(&R, 0, sizeof R);
    gni_ws_init(w, server, 1u << 20, 4u << 20, &r_cbs, &R);
}

/* Feeds @len bytes; returns feed's result, *@used the consumed count. */
static int feed_all(gni_ws *w, const uint8_t *in, size_t len, size_t *used)
{
    size_t u = 0;
    int rc = gni_ws_feed(w, in, len, &u);
    if (used) {
        *used = u;
    }
    return rc;
}

/* ---- section 1.3 ---- */

GN_TEST(ws_accept_rfc_1_3)
{
    char out[GNI_WS_ACCEPT_LEN];
    static const char key[] = "dGhlIHNhbXBsZSBub25jZQ==";
    CHECK_OK(gni_ws_accept_value(key, strlen(key), out));
    CHECK_STR(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

/* ---- section 5.7 ---- */

GN_TEST(ws_frames_rfc_5_7_build)
{
    static const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    uint8_t h[GNI_WS_HDR_MAX + 8];
    /* a single-frame unmasked text message "Hello" */
    size_t n = gni_ws_frame_header(h, GNI_WS_OP_TEXT, true, 5, NULL);
    memcpy(h + n, "Hello", 5);
    CHECK_EQ(n, 2);
    CHECK_MEM(h, "\x81\x05\x48\x65\x6c\x6c\x6f", 7);
    /* a single-frame masked text message "Hello" */
    n = gni_ws_frame_header(h, GNI_WS_OP_TEXT, true, 5, mask);
    memcpy(h + n, "Hello", 5);
    gni_ws_mask(h + n, 5, mask, 0);
    CHECK_EQ(n, 6);
    CHECK_MEM(h, "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11);
    /* a fragmented unmasked text message: "Hel" then "lo" */
    n = gni_ws_frame_header(h, GNI_WS_OP_TEXT, false, 3, NULL);
    CHECK_MEM(h, "\x01\x03", n);
    n = gni_ws_frame_header(h, GNI_WS_OP_CONT, true, 2, NULL);
    CHECK_MEM(h, "\x80\x02", n);
    /* unmasked ping, masked pong */
    n = gni_ws_frame_header(h, GNI_WS_OP_PING, true, 5, NULL);
    CHECK_MEM(h, "\x89\x05", n);
    n = gni_ws_frame_header(h, GNI_WS_OP_PONG, true, 5, mask);
    CHECK_MEM(h, "\x8a\x85\x37\xfa\x21\x3d", n);
    /* 256 bytes and 64 KiB binary messages in a single unmasked frame */
    n = gni_ws_frame_header(h, GNI_WS_OP_BINARY, true, 256, NULL);
    CHECK_EQ(n, 4);
    CHECK_MEM(h, "\x82\x7e\x01\x00", 4);
    n = gni_ws_frame_header(h, GNI_WS_OP_BINARY, true, 65536, NULL);
    CHECK_EQ(n, 10);
    CHECK_MEM(h, "\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);
}

GN_TEST(ws_frames_rfc_5_7_parse)
{
    gni_ws w;
    size_t used;
    /* the unmasked ping "Hello" at a client */
    ws_setup(&w, false);
    CHECK_OK(feed_all(&w, (const uint8_t *)"\x89\x05Hello", 7, &used));
    CHECK_EQ(used, 7);
    CHECK_EQ(R.pings, 1);
    CHECK_MEM(R.ping, "Hello", 5);
    /* the masked pong "Hello" at a server */
    ws_setup(&w, true);
    CHECK_OK(feed_all(&w, (const uint8_t *)"\x8a\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11,
                      &used));
    CHECK_EQ(R.pongs, 1);
    /* the fragmented example, as binary (libp2p sends binary): "Hel" + "lo" */
    ws_setup(&w, false);
    CHECK_OK(feed_all(&w, (const uint8_t *)"\x02\x03Hel\x80\x02lo", 9, &used));
    CHECK_EQ(used, 9);
    CHECK_EQ(R.data_len, 5);
    CHECK_MEM(R.data, "Hello", 5);
    CHECK(!gni_ws_partial(&w));
    /* a control frame between fragments is allowed (section 5.4) */
    ws_setup(&w, false);
    CHECK_OK(feed_all(&w, (const uint8_t *)"\x02\x03Hel\x89\x00\x80\x02lo", 11, &used));
    CHECK_EQ(R.pings, 1);
    CHECK_MEM(R.data, "Hello", 5);
    /* the text examples are refused with 1003 (libp2p carries binary) */
    ws_setup(&w, false);
    CHECK_EQ(feed_all(&w, (const uint8_t *)"\x81\x05Hello", 7, &used), GN_EPROTO);
    CHECK_EQ(gni_ws_fail_code(&w), GNI_WS_CLOSE_UNSUPPORTED);
    CHECK_EQ(R.data_len, 0);
}

GN_TEST(ws_lengths_and_masking)
{
    static uint8_t frame[GNI_WS_HDR_MAX + 65536];
    static uint8_t want[65536];
    static const uint8_t mask[4] = {1, 2, 3, 0xfe};
    for (size_t i = 0; i < sizeof want; i++) {
        want[i] = (uint8_t)(i * 7 + 3);
    }
    const size_t lens[] = {0, 1, 125, 126, 127, 256, 65535, 65536};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        for (int server = 0; server < 2; server++) {
            gni_ws w;
            ws_setup(&w, server);
            size_t n = gni_ws_frame_header(frame, GNI_WS_OP_BINARY, true, lens[k],
                                           server ? mask : NULL);
            memcpy(frame + n, want, lens[k]);
            if (server) {
                gni_ws_mask(frame + n, lens[k], mask, 0);
            }
            size_t used;
            CHECK_OK(feed_all(&w, frame, n + lens[k], &used));
            CHECK_EQ(used, n + lens[k]);
            CHECK_EQ(R.data_len, lens[k]);
            CHECK_MEM(R.data, want, lens[k]);
            CHECK(!gni_ws_partial(&w));
            /* again one byte at a time */
            ws_setup(&w, server);
            for (size_t i = 0; i < n + lens[k]; i++) {
                CHECK_OK(feed_all(&w, frame + i, 1, &used));
                CHECK_EQ(used, 1);
            }
            CHECK_EQ(R.data_len, lens[k]);
            CHECK_MEM(R.data, want, lens[k]);
        }
    }
}

GN_TEST(ws_pause_and_resume)
{
    gni_ws w;
    ws_setup(&w, false);
    R.pause_after = 1;
    size_t used;
    const uint8_t two[] = "\x82\x02" "ab" "\x82\x02" "cd";
    CHECK_OK(feed_all(&w, two, 8, &used));
    CHECK_EQ(used, 4); /* paused after the first frame's payload */
    CHECK_OK(feed_all(&w, two + used, 8 - used, &used));
    CHECK_EQ(used, 4);
    CHECK_MEM(R.data, "abcd", 4);
}

GN_TEST(ws_close_frames)
{
    uint8_t f[GNI_WS_HDR_MAX + GNI_WS_CTL_MAX];
    gni_ws w;
    size_t used;
    int n = gni_ws_close_frame(f, 1000, "bye", 3, NULL);
    CHECK_EQ(n, 7);
    CHECK_MEM(f, "\x88\x05\x03\xe8" "bye", 7);
    ws_setup(&w, false);
    uint8_t buf[16];
    memcpy(buf, f, 7);
    memcpy(buf + 7, "\x82\x01x", 3); /* nothing after close is parsed */
    CHECK_OK(feed_all(&w, buf, 10, &used));
    CHECK_EQ(used, 7);
    CHECK_EQ(R.closes, 1);
    CHECK_EQ(R.close_code, 1000);
    CHECK_STR(R.reason, "bye");
    CHECK_EQ(R.data_len, 0);
    CHECK_EQ(feed_all(&w, buf + 7, 3, &used), GN_ESTATE);
    /* masked, at a server; an empty close reports 1005 */
    static const uint8_t mask[4] = {9, 8, 7, 6};
    n = gni_ws_close_frame(f, 1002, NULL, 0, mask);
    CHECK_EQ(n, 8);
    ws_setup(&w, true);
    CHECK_OK(feed_all(&w, f, (size_t)n, &used));
    CHECK_EQ(R.close_code, 1002);
    ws_setup(&w, false);
    CHECK_OK(feed_all(&w, (const uint8_t *)"\x88\x00", 2, &used));
    CHECK_EQ(R.close_code, GNI_WS_CLOSE_NO_STATUS);
    /* codes that must not be sent */
    CHECK_EQ(gni_ws_close_frame(f, 1005, NULL, 0, NULL), GN_EINVAL);
    CHECK_EQ(gni_ws_close_frame(f, 999, NULL, 0, NULL), GN_EINVAL);
    char longr[130];
    memset(longr, 'r', sizeof longr);
    CHECK_EQ(gni_ws_close_frame(f, 1000, longr, 124, NULL), GN_EINVAL);
}

/* One malformed input and the code it must get. */
static void expect_violation(bool server, const char *bytes, size_t len, int err, unsigned code)
{
    gni_ws w;
    size_t used;
    ws_setup(&w, server);
    w.max_frame = 1000;
    w.max_msg = 1500;
    CHECK_EQ(feed_all(&w, (const uint8_t *)bytes, len, &used), err);
    CHECK_EQ(gni_ws_fail_code(&w), code);
    /* the object refuses more input afterwards */
    CHECK_EQ(feed_all(&w, (const uint8_t *)"\x82\x00", 2, &used), GN_ESTATE);
}

GN_TEST(ws_violations)
{
    /* RSV1 set without an extension */
    expect_violation(false, "\xc2\x00", 2, GN_EPROTO, 1002);
    /* an unmasked frame to a server, a masked one to a client (section 5.1) */
    expect_violation(true, "\x82\x01x", 3, GN_EPROTO, 1002);
    expect_violation(false, "\x82\x81\x00\x00\x00\x00x", 7, GN_EPROTO, 1002);
    /* reserved opcodes */
    expect_violation(false, "\x83\x00", 2, GN_EPROTO, 1002);
    expect_violation(false, "\x8b\x00", 2, GN_EPROTO, 1002);
    /* control frames: over 125 bytes, fragmented, a close with 1 byte */
    expect_violation(false, "\x89\x7e\x00\x7e", 4, GN_EPROTO, 1002);
    expect_violation(false, "\x09\x00", 2, GN_EPROTO, 1002);
    expect_violation(false, "\x88\x01\x03", 3, GN_EPROTO, 1002);
    /* close codes that may not appear on the wire */
    expect_violation(false, "\x88\x02\x03\xed", 4, GN_EPROTO, 1002);  /* 1005 */
    expect_violation(false, "\x88\x02\x03\xe7", 4, GN_EPROTO, 1002);  /* 999 */
    /* a continuation without a message, a new message inside one */
    expect_violation(false, "\x80\x01x", 3, GN_EPROTO, 1002);
    expect_violation(false, "\x02\x01x\x82\x01y", 6, GN_EPROTO, 1002);
    /* a 64-bit length with the top bit set */
    expect_violation(false, "\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x00", 10, GN_EPROTO, 1002);
    /* bounds: a frame over max_frame (1000), a message over max_msg (1500) */
    expect_violation(false, "\x82\x7e\x03\xe9", 4, GN_EFRAMESIZE, 1009);
    {
        static uint8_t m[2000];
        size_t n = gni_ws_frame_header(m, GNI_WS_OP_BINARY, false, 1000, NULL);
        n += 1000;
        n += gni_ws_frame_header(m + n, GNI_WS_OP_CONT, true, 501, NULL);
        expect_violation(false, (const char *)m, n, GN_EFRAMESIZE, 1009);
        CHECK_EQ(R.data_len, 1000); /* the first fragment was delivered */
    }
    /* a huge declared length is refused before any payload */
    expect_violation(false, "\x82\x7f\x00\x00\x01\x00\x00\x00\x00\x00", 10, GN_EFRAMESIZE, 1009);
}

/* ---- the opening handshake ---- */

GN_TEST(ws_handshake_roundtrip)
{
    static const uint8_t nonce[16] = "the sample nonce";
    char req[512], resp[512], key[GNI_WS_KEY_LEN], skey[GNI_WS_KEY_LEN];
    int n = gni_ws_build_request(req, sizeof req, "127.0.0.1:4001", "/", nonce, key);
    CHECK(n > 0);
    CHECK_STR(key, "dGhlIHNhbXBsZSBub25jZQ==");
    size_t used = 0;
    /* incomplete, then complete with a frame behind it */
    CHECK_EQ(gni_ws_parse_request((const uint8_t *)req, (size_t)n - 1, 8192, NULL, &used, skey),
             GN_EAGAIN);
    memcpy(req + n, "\x82\x81", 2);
    CHECK_OK(gni_ws_parse_request((const uint8_t *)req, (size_t)n + 2, 8192, NULL, &used, skey));
    CHECK_EQ(used, (size_t)n);
    CHECK_STR(skey, key);
    int m = gni_ws_build_response(resp, sizeof resp, skey);
    CHECK(m > 0);
    CHECK(strstr(resp, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n") != NULL);
    CHECK_EQ(gni_ws_parse_response((const uint8_t *)resp, (size_t)m - 2, 8192, NULL, &used, key),
             GN_EAGAIN);
    CHECK_OK(gni_ws_parse_response((const uint8_t *)resp, (size_t)m, 8192, NULL, &used, key));
    CHECK_EQ(used, (size_t)m);
    /* another key's accept value is refused */
    CHECK_EQ(gni_ws_parse_response((const uint8_t *)resp, (size_t)m, 8192, NULL, &used,
                                   "AAAAAAAAAAAAAAAAAAAAAA=="),
             GN_EHANDSHAKE);
}

GN_TEST(ws_handshake_rfc_sample_request)
{
    /* section 1.3's client handshake, with the extra headers it shows */
    static const char req[] = "GET /chat HTTP/1.1\r\n"
                              "Host: server.example.com\r\n"
                              "Upgrade: websocket\r\n"
                              "Connection: keep-alive, Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Origin: http://example.com\r\n"
                              "Sec-WebSocket-Protocol: chat, superchat\r\n"
                              "Sec-WebSocket-Version: 13\r\n"
                              "\r\n";
    char key[GNI_WS_KEY_LEN];
    size_t used;
    CHECK_OK(gni_ws_parse_request((const uint8_t *)req, sizeof req - 1, 8192, NULL, &used, key));
    CHECK_EQ(used, sizeof req - 1);
    CHECK_STR(key, "dGhlIHNhbXBsZSBub25jZQ==");
    /* section 1.3's server handshake */
    static const char resp[] = "HTTP/1.1 101 Switching Protocols\r\n"
                               "Upgrade: websocket\r\n"
                               "Connection: Upgrade\r\n"
                               "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                               "Sec-WebSocket-Protocol: chat\r\n"
                               "\r\n";
    /* golemnet's client offers no subprotocol, so the sample's answer naming
     * one is refused (section 4.1, client item 6); without it, accepted */
    CHECK_EQ(gni_ws_parse_response((const uint8_t *)resp, sizeof resp - 1, 8192, NULL, &used, key),
             GN_EHANDSHAKE);
    static const char plain[] = "HTTP/1.1 101 Switching Protocols\r\n"
                                "Upgrade: websocket\r\n"
                                "Connection: Upgrade\r\n"
                                "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                                "\r\n";
    CHECK_OK(gni_ws_parse_response((const uint8_t *)plain, sizeof plain - 1, 8192, NULL, &used,
                                   key));
    CHECK_EQ(used, sizeof plain - 1);
}

GN_TEST(ws_handshake_refused)
{
    char key[GNI_WS_KEY_LEN];
    size_t used;
    struct {
        const char *req;
        int err;
    } cases[] = {
        {"POST / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
         GN_EPROTO},
        {"GET / HTTP/1.1\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
         GN_EPROTO},
        {"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: close\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
         GN_EPROTO},
        {"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
         GN_EVERSION},
        {"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
         GN_EPROTO}, /* a key that is not 16 bytes */
        {"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
         GN_EPROTO}, /* twice */
        {"GET / HTTP/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
         GN_EPARSE},
        {"\x16\x03\x01\x02\x05hello\r\n\r\n", GN_EPARSE}, /* a TLS record, not HTTP */
        {"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
         GN_EPROTO}, /* no version at all: not a WebSocket request (400, not 426) */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        printf("# case %zu\n", i);
        CHECK_EQ(gni_ws_parse_request((const uint8_t *)cases[i].req, strlen(cases[i].req), 8192,
                                      NULL, &used, key),
                 cases[i].err);
    }
    /* no end of headers within the bound */
    char big[300];
    memset(big, 'a', sizeof big);
    CHECK_EQ(gni_ws_parse_request((const uint8_t *)big, sizeof big, 256, NULL, &used, key), GN_ETOOBIG);
    CHECK_EQ(gni_ws_parse_request((const uint8_t *)big, 200, 256, NULL, &used, key), GN_EAGAIN);
    /* refusals */
    char out[256];
    CHECK(gni_ws_build_refusal(out, sizeof out, GN_EVERSION) > 0);
    CHECK(strncmp(out, "HTTP/1.1 426 ", 13) == 0 && strstr(out, "Sec-WebSocket-Version: 13"));
    CHECK(gni_ws_build_refusal(out, sizeof out, GN_EPROTO) > 0);
    CHECK(strncmp(out, "HTTP/1.1 400 ", 13) == 0);
    /* a server that does not switch */
    static const char no[] = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
    CHECK_EQ(gni_ws_parse_response((const uint8_t *)no, sizeof no - 1, 8192, NULL, &used,
                                   "dGhlIHNhbXBsZSBub25jZQ=="),
             GN_EHANDSHAKE);
    CHECK_EQ(gni_ws_build_request(out, 10, "h", "/", (const uint8_t *)"0123456789abcdef", key),
             GN_ENOSPC);
}

/* Every edge of section 7.4's close codes: the sendable ones are reported, the others fail with 1002. */
GN_TEST(ws_close_code_edges)
{
    static const struct {
        unsigned code;
        bool ok;
    } cases[] = {{999, false},  {1000, true},  {1003, true},  {1004, false}, {1005, false},
                 {1006, false}, {1007, true},  {1011, true},  {1014, true},  {1015, false},
                 {1016, false}, {2999, false}, {3000, true},  {4999, true},  {5000, false},
                 {65535, false}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        printf("# close code %u\n", cases[i].code);
        uint8_t f[4] = {0x88, 0x02, (uint8_t)(cases[i].code >> 8), (uint8_t)cases[i].code};
        if (cases[i].ok) {
            gni_ws w;
            size_t used;
            ws_setup(&w, false);
            CHECK_OK(feed_all(&w, f, sizeof f, &used));
            CHECK_EQ(R.closes, 1);
            CHECK_EQ(R.close_code, cases[i].code);
        } else {
            expect_violation(false, (const char *)f, sizeof f, GN_EPROTO, 1002);
        }
    }
    /* the builder refuses what may not be sent */
    uint8_t out[GNI_WS_HDR_MAX + GNI_WS_CTL_MAX];
    CHECK_EQ(gni_ws_close_frame(out, 1015, NULL, 0, NULL), GN_EINVAL);
    CHECK_EQ(gni_ws_close_frame(out, 1006, NULL, 0, NULL), GN_EINVAL);
    CHECK_EQ(gni_ws_close_frame(out, 5000, NULL, 0, NULL), GN_EINVAL);
    CHECK(gni_ws_close_frame(out, 4999, NULL, 0, NULL) > 0);
}

/* The close reason must be UTF-8 (section 5.5.1): otherwise 1007. */
GN_TEST(ws_close_reason_utf8)
{
    gni_ws w;
    size_t used;
    ws_setup(&w, false);
    /* "bye" + U+00E9 + U+20AC + U+1F600 */
    static const uint8_t ok[] = {0x88, 14, 0x03, 0xe8, 'b', 'y', 'e', 0xc3, 0xa9,
                                 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80};
    CHECK_OK(feed_all(&w, ok, sizeof ok, &used));
    CHECK_EQ(R.closes, 1);
    expect_violation(false, "\x88\x03\x03\xe8\xff", 5, GN_EPROTO, 1007);          /* not UTF-8 */
    expect_violation(false, "\x88\x04\x03\xe8\xc0\xaf", 6, GN_EPROTO, 1007);      /* overlong */
    expect_violation(false, "\x88\x05\x03\xe8\xed\xa0\x80", 7, GN_EPROTO, 1007);  /* surrogate */
    expect_violation(false, "\x88\x04\x03\xe8\xe2\x82", 6, GN_EPROTO, 1007);      /* cut */
    expect_violation(false, "\x88\x06\x03\xe8\xf4\x90\x80\x80", 8, GN_EPROTO, 1007); /* > U+10FFFF */
}

/* Request headers: keys, repeated list fields, trailing blanks, a body. */
GN_TEST(ws_handshake_request_edges)
{
    char key[GNI_WS_KEY_LEN];
    size_t used;
#define WS_REQ(extra, key_line)                                                                   \
    "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" key_line                     \
    "Sec-WebSocket-Version: 13\r\n" extra "\r\n"
    struct {
        const char *req;
        int err;
    } cases[] = {
        /* 24 base64 characters that decode to 17 bytes, not 16 */
        {WS_REQ("", "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAA=\r\n"), GN_EPROTO},
        /* 24 characters with one outside base64 */
        {WS_REQ("", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ*=\r\n"), GN_EPROTO},
        /* the sample key with trailing blanks: accepted */
        {WS_REQ("", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ== \t\r\n"), 0},
        /* a body announced */
        {WS_REQ("Content-Length: 5\r\n", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"),
         GN_EPROTO},
        {WS_REQ("Transfer-Encoding: chunked\r\n", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"),
         GN_EPROTO},
        {WS_REQ("Content-Length: 0\r\n", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"), 0},
        /* repeated Connection and Upgrade lines are one list each */
        {"GET / HTTP/1.1\r\nUpgrade: foo\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n"
         "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
         "Sec-WebSocket-Version: 13 \r\n\r\n",
         0},
    };
#undef WS_REQ
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        printf("# case %zu\n", i);
        CHECK_EQ(gni_ws_parse_request((const uint8_t *)cases[i].req, strlen(cases[i].req), 8192,
                                      NULL, &used, key),
                 cases[i].err);
        if (cases[i].err == 0) {
            CHECK_EQ(used, strlen(cases[i].req));
            CHECK_MEM(key, "dGhlIHNhbXBsZSBub25jZQ==", GNI_WS_KEY_LEN);
        }
    }
    /* the search for the end of the headers resumes where it stopped */
    static const char req[] = "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n";
    size_t scan = 0;
    for (size_t n = 1; n < sizeof req - 1; n++) {
        CHECK_EQ(gni_ws_parse_request((const uint8_t *)req, n, 8192, &scan, &used, key),
                 GN_EAGAIN);
        CHECK(scan <= (n < 3 ? 3 : n));
        CHECK(scan + 3 >= n); /* nothing searched twice but the last three bytes */
    }
    CHECK_OK(gni_ws_parse_request((const uint8_t *)req, sizeof req - 1, 8192, &scan, &used, key));
    CHECK_EQ(used, sizeof req - 1);
}

/* A 101 with an extension or subprotocol the client did not ask for is refused. */
GN_TEST(ws_handshake_response_unasked)
{
    size_t used;
    static const char base[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                               "Connection: Upgrade\r\n"
                               "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n";
    const char *extra[] = {"", "Sec-WebSocket-Extensions: permessage-deflate\r\n",
                           "Sec-WebSocket-Protocol: chat\r\n"};
    for (size_t i = 0; i < 3; i++) {
        char resp[512];
        int n = snprintf(resp, sizeof resp, "%s%s\r\n", base, extra[i]);
        CHECK_EQ(gni_ws_parse_response((const uint8_t *)resp, (size_t)n, 8192, NULL, &used,
                                       "dGhlIHNhbXBsZSBub25jZQ=="),
                 i == 0 ? 0 : GN_EHANDSHAKE);
    }
}

GN_TEST_MAIN(GN_T(ws_accept_rfc_1_3), GN_T(ws_frames_rfc_5_7_build), GN_T(ws_frames_rfc_5_7_parse),
             GN_T(ws_lengths_and_masking), GN_T(ws_pause_and_resume), GN_T(ws_close_frames),
             GN_T(ws_violations), GN_T(ws_handshake_roundtrip),
             GN_T(ws_handshake_rfc_sample_request), GN_T(ws_handshake_refused),
             GN_T(ws_close_code_edges), GN_T(ws_close_reason_utf8),
             GN_T(ws_handshake_request_edges), GN_T(ws_handshake_response_unasked))
