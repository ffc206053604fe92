/*
 * The control protocol's wire core (ipc/ctl_wire.c): known-answer frames
 * (bytes worked out by hand from the protobuf encoding rules,
 * protobuf.dev "Encoding", and docs/protocols/control.md), every bound at
 * and past its limit, errors that keep the framing and errors that lose it.
 */
#include "ctl_wire.h"
#include "client/gni_ipcc.h"

#include "gn_test.h"
#include "golemnet/err.h"

#include <stdlib.h>

/* Request{id: 1, hello{version: 1, client: "t"}} framed */
static const uint8_t kat_hello[] = {0x09, 0x08, 0x01, 0x52, 0x05, 0x08, 0x01, 0x12, 0x01, 0x74};
/* ServerMessage{response{id: 7, status: -7, error: "x"}} framed */
static const uint8_t kat_resp[] = {0x12, 0x0a, 0x10, 0x08, 0x07, 0x10, 0xf9, 0xff, 0xff, 0xff,
                                   0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x1a, 0x01, 0x78};
/* ServerMessage{event{type: EV_MESSAGE, channel_id: 3, data: "hi"}} framed */
static const uint8_t kat_event[] = {0x0a, 0x12, 0x08, 0x08, 0x07, 0x20, 0x03, 0x42, 0x02, 0x68, 0x69};

static int feed_all(gni_ctl_reader *rd, const uint8_t *p, size_t n, Gnctl__Request **r,
                    uint64_t *id, char *err, size_t *used_total)
{
    size_t off = 0;
    int rc = 0;
    while (off < n) {
        size_t used = 0;
        rc = gni_ctl_reader_feed(rd, p + off, n - off, &used, r, id, err, 256);
        off += used;
        if (rc != 0) {
            break;
        }
    }
    *used_total = off;
    return rc;
}

GN_TEST(kat_request_decode_bytewise)
{
    gni_ctl_reader rd;
    gni_ctl_reader_init(&rd);
    Gnctl__Request *r = NULL;
    int rc = 0;
    size_t i = 0;
    for (; i < sizeof kat_hello && rc == 0; i++) {
        size_t used = 0;
        rc = gni_ctl_reader_feed(&rd, kat_hello + i, 1, &used, &r, NULL, NULL, 0);
        CHECK_EQ(used, 1u);
    }
    CHECK_EQ(rc, 1);
    CHECK_EQ(i, sizeof kat_hello);
    CHECK(r != NULL);
    CHECK_EQ(r->id, 1u);
    CHECK_EQ(r->op_case, GNCTL__REQUEST__OP_HELLO);
    CHECK_EQ(r->hello->version, 1u);
    CHECK_STR(r->hello->client, "t");
    CHECK_STR(gni_ctl_op_name(r), "hello");
    gni_ctl_request_free(r);
    gni_ctl_reader_fini(&rd);
}

GN_TEST(kat_request_encode)
{
    Gnctl__Request r = GNCTL__REQUEST__INIT;
    Gnctl__HelloRequest h = GNCTL__HELLO_REQUEST__INIT;
    h.version = 1;
    h.client = "t";
    r.id = 1;
    r.op_case = GNCTL__REQUEST__OP_HELLO;
    r.hello = &h;
    uint8_t *f = NULL;
    size_t n = 0;
    CHECK_OK(gni_ctl_encode(&r.base, &f, &n));
    CHECK_EQ(n, sizeof kat_hello);
    CHECK_MEM(f, kat_hello, n);
    gn_free(f);
}

GN_TEST(kat_server_messages)
{
    Gnctl__Response resp = GNCTL__RESPONSE__INIT;
    resp.id = 7;
    resp.status = GN_ENOTSUP;
    resp.error = "x";
    Gnctl__ServerMessage sm = GNCTL__SERVER_MESSAGE__INIT;
    sm.msg_case = GNCTL__SERVER_MESSAGE__MSG_RESPONSE;
    sm.response = &resp;
    uint8_t *f = NULL;
    size_t n = 0;
    CHECK_OK(gni_ctl_encode(&sm.base, &f, &n));
    CHECK_EQ(n, sizeof kat_resp);
    CHECK_MEM(f, kat_resp, n);
    gn_free(f);

    Gnctl__Event ev = GNCTL__EVENT__INIT;
    ev.type = GNCTL__EVENT_TYPE__EV_MESSAGE;
    ev.channel_id = 3;
    ev.data.data = (uint8_t *)"hi";
    ev.data.len = 2;
    sm.msg_case = GNCTL__SERVER_MESSAGE__MSG_EVENT;
    sm.event = &ev;
    CHECK_OK(gni_ctl_encode(&sm.base, &f, &n));
    CHECK_EQ(n, sizeof kat_event);
    CHECK_MEM(f, kat_event, n);
    gn_free(f);

    Gnctl__ServerMessage *m = NULL;
    CHECK_OK(gni_ctl_server_msg_decode(kat_resp + 1, sizeof kat_resp - 1, &m, NULL, 0));
    CHECK_EQ(m->msg_case, GNCTL__SERVER_MESSAGE__MSG_RESPONSE);
    CHECK_EQ(m->response->id, 7u);
    CHECK_EQ(m->response->status, GN_ENOTSUP);
    CHECK_STR(m->response->error, "x");
    gni_ctl_server_msg_free(m);
    CHECK_OK(gni_ctl_server_msg_decode(kat_event + 1, sizeof kat_event - 1, &m, NULL, 0));
    CHECK_EQ(m->event->type, GNCTL__EVENT_TYPE__EV_MESSAGE);
    CHECK_EQ(m->event->data.len, 2u);
    CHECK_MEM(m->event->data.data, "hi", 2);
    gni_ctl_server_msg_free(m);
    /* an empty ServerMessage is a newer daemon's: skipped by clients */
    CHECK_EQ(gni_ctl_server_msg_decode(NULL, 0, &m, NULL, 0), GN_ENOTSUP);
    CHECK(m == NULL);
}

GN_TEST(two_frames_and_trailing)
{
    uint8_t wire[64];
    memcpy(wire, kat_hello, sizeof kat_hello);
    size_t n = sizeof kat_hello;
    static const uint8_t ident[] = {0x04, 0x08, 0x02, 0x5a, 0x00}; /* id 2, identify{} */
    memcpy(wire + n, ident, sizeof ident);
    n += sizeof ident;
    wire[n++] = 0x05; /* a frame begun */
    gni_ctl_reader rd;
    gni_ctl_reader_init(&rd);
    Gnctl__Request *r = NULL;
    size_t used = 0;
    CHECK_EQ(gni_ctl_reader_feed(&rd, wire, n, &used, &r, NULL, NULL, 0), 1);
    CHECK_EQ(used, sizeof kat_hello);
    gni_ctl_request_free(r);
    size_t off = used;
    CHECK_EQ(gni_ctl_reader_feed(&rd, wire + off, n - off, &used, &r, NULL, NULL, 0), 1);
    CHECK_EQ(r->id, 2u);
    CHECK_EQ(r->op_case, GNCTL__REQUEST__OP_IDENTIFY);
    gni_ctl_request_free(r);
    off += used;
    CHECK_EQ(gni_ctl_reader_feed(&rd, wire + off, n - off, &used, &r, NULL, NULL, 0), 0);
    CHECK_EQ(used, 1u);
    gni_ctl_reader_fini(&rd);
}

/* Refused messages keep the framing: the reader goes on with the next frame. */
GN_TEST(refused_messages_keep_framing)
{
    static const struct {
        uint8_t bytes[16];
        size_t len;
        int rc;
        uint64_t id;
    } cases[] = {
        {{0x05, 0x08, 0x09, 0x9a, 0x06, 0x00}, 6, GN_ENOTSUP, 9}, /* unknown op 99 */
        {{0x02, 0x08, 0x04}, 3, GN_EINVAL, 4},                    /* no op */
        {{0x03, 0x08, 0x05, 0x52}, 4, GN_EPARSE, 5},              /* truncated field */
        {{0x03, 0x08, 0x06, 0x0b}, 4, GN_EPARSE, 6},              /* group wire type */
        /* hello.client as a varint: wrong wire type */
        {{0x06, 0x08, 0x07, 0x52, 0x02, 0x10, 0x01}, 7, GN_EPARSE, 7},
        /* hello.client = 0xff: not UTF-8 */
        {{0x07, 0x08, 0x08, 0x52, 0x03, 0x12, 0x01, 0xff}, 8, GN_EPARSE, 8},
    };
    for (size_t i = 0; i < GNI_ARRAY_LEN(cases); i++) {
        gni_ctl_reader rd;
        gni_ctl_reader_init(&rd);
        uint8_t wire[64];
        memcpy(wire, cases[i].bytes, cases[i].len);
        memcpy(wire + cases[i].len, kat_hello, sizeof kat_hello);
        Gnctl__Request *r = NULL;
        uint64_t id = 99;
        char err[256] = "";
        size_t used = 0;
        int rc = gni_ctl_reader_feed(&rd, wire, cases[i].len + sizeof kat_hello, &used, &r, &id,
                                     err, sizeof err);
        CHECK_EQ(rc, cases[i].rc);
        CHECK_EQ(id, cases[i].id);
        CHECK(r == NULL);
        CHECK(err[0] != '\0');
        CHECK_EQ(used, cases[i].len);
        CHECK_EQ(gni_ctl_reader_feed(&rd, wire + used, sizeof kat_hello, &used, &r, NULL, NULL, 0),
                 1);
        CHECK_EQ(r->id, 1u);
        gni_ctl_request_free(r);
        gni_ctl_reader_fini(&rd);
    }
}

GN_TEST(framing_lost)
{
    gni_ctl_reader rd;
    gni_ctl_reader_init(&rd);
    /* GN_CTL_MSG_MAX + 1 = 0x400001 */
    static const uint8_t big[] = {0x81, 0x80, 0x80, 0x02};
    Gnctl__Request *r = NULL;
    char err[256];
    size_t used = 0;
    CHECK_EQ(feed_all(&rd, big, sizeof big, &r, NULL, err, &used), GN_EFRAMESIZE);
    CHECK(strstr(err, "longer") != NULL);
    gni_ctl_reader_fini(&rd);
    gni_ctl_reader_init(&rd);
    /* exactly the bound is a length the reader accepts (it waits for the body) */
    static const uint8_t max[] = {0x80, 0x80, 0x80, 0x02};
    CHECK_EQ(feed_all(&rd, max, sizeof max, &r, NULL, err, &used), 0);
    gni_ctl_reader_fini(&rd);
    gni_ctl_reader_init(&rd);
    static const uint8_t badv[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    CHECK_EQ(feed_all(&rd, badv, sizeof badv, &r, NULL, err, &used), GN_EBADFRAME);
    gni_ctl_reader_fini(&rd);
}

/* A StreamHandlerRequest with @n protocols of @len bytes each, encoded. */
static int handler_req(size_t n, size_t len, uint8_t **out, size_t *out_len)
{
    char *s = malloc(len + 1);
    char **v = malloc(n * sizeof *v);
    memset(s, 'p', len);
    s[len] = '\0';
    for (size_t i = 0; i < n; i++) {
        v[i] = s;
    }
    Gnctl__StreamHandlerRequest h = GNCTL__STREAM_HANDLER_REQUEST__INIT;
    h.n_protocols = n;
    h.protocols = v;
    h.path = "/tmp/x";
    Gnctl__Request r = GNCTL__REQUEST__INIT;
    r.id = 5;
    r.op_case = GNCTL__REQUEST__OP_STREAM_HANDLER;
    r.stream_handler = &h;
    /* pack without the encoder's own check to test the decoder */
    size_t sz = protobuf_c_message_get_packed_size(&r.base);
    *out = malloc(sz);
    *out_len = protobuf_c_message_pack(&r.base, *out);
    int enc = 0;
    uint8_t *f = NULL;
    size_t fl = 0;
    enc = gni_ctl_encode(&r.base, &f, &fl);
    gn_free(f);
    free(v);
    free(s);
    return enc;
}

GN_TEST(bounds)
{
    uint8_t *b = NULL;
    size_t n = 0;
    Gnctl__Request *r = NULL;
    char err[256];
    uint64_t id = 0;
    /* strings: GN_CTL_STRING_MAX bytes accepted, one more refused, both ways */
    CHECK_OK(handler_req(1, GN_CTL_STRING_MAX, &b, &n));
    CHECK_OK(gni_ctl_request_decode(b, n, &r, &id, err, sizeof err));
    CHECK_EQ(strlen(r->stream_handler->protocols[0]), (size_t)GN_CTL_STRING_MAX);
    gni_ctl_request_free(r);
    free(b);
    CHECK_EQ(handler_req(1, GN_CTL_STRING_MAX + 1, &b, &n), GN_ETOOBIG);
    CHECK_EQ(gni_ctl_request_decode(b, n, &r, &id, err, sizeof err), GN_ETOOBIG);
    CHECK(strstr(err, "protocols") != NULL);
    CHECK_EQ(id, 5u);
    free(b);
    /* repeated: GN_CTL_REPEATED_MAX entries accepted, one more refused */
    CHECK_OK(handler_req(GN_CTL_REPEATED_MAX, 1, &b, &n));
    CHECK_OK(gni_ctl_request_decode(b, n, &r, NULL, err, sizeof err));
    CHECK_EQ(r->stream_handler->n_protocols, (size_t)GN_CTL_REPEATED_MAX);
    gni_ctl_request_free(r);
    free(b);
    CHECK_EQ(handler_req(GN_CTL_REPEATED_MAX + 1, 1, &b, &n), GN_ETOOBIG);
    CHECK_EQ(gni_ctl_request_decode(b, n, &r, NULL, err, sizeof err), GN_ETOOBIG);
    CHECK(strstr(err, "entries") != NULL);
    free(b);
    /* bytes: a payload may fill the message; the message bound applies */
    size_t big = GN_CTL_MSG_MAX - 16;
    uint8_t *payload = calloc(1, GN_CTL_MSG_MAX + 1);
    Gnctl__BroadcastRequest bc = GNCTL__BROADCAST_REQUEST__INIT;
    bc.data.data = payload;
    bc.data.len = big;
    Gnctl__Request req = GNCTL__REQUEST__INIT;
    req.op_case = GNCTL__REQUEST__OP_BROADCAST;
    req.broadcast = &bc;
    uint8_t *f = NULL;
    size_t fl = 0;
    CHECK_OK(gni_ctl_encode(&req.base, &f, &fl));
    gni_ctl_reader rd;
    gni_ctl_reader_init(&rd);
    size_t used = 0;
    CHECK_EQ(feed_all(&rd, f, fl, &r, NULL, err, &used), 1);
    CHECK_EQ(r->broadcast->data.len, big);
    gni_ctl_request_free(r);
    gni_ctl_reader_fini(&rd);
    gn_free(f);
    bc.data.len = GN_CTL_MSG_MAX;
    CHECK_EQ(gni_ctl_encode(&req.base, &f, &fl), GN_ETOOBIG);
    CHECK(f == NULL);
    free(payload);
    /* an error string too long is refused by the encoder */
    char *longs = malloc(GN_CTL_STRING_MAX + 2);
    memset(longs, 'e', GN_CTL_STRING_MAX + 1);
    longs[GN_CTL_STRING_MAX + 1] = '\0';
    Gnctl__Response resp = GNCTL__RESPONSE__INIT;
    resp.error = longs;
    Gnctl__ServerMessage sm = GNCTL__SERVER_MESSAGE__INIT;
    sm.msg_case = GNCTL__SERVER_MESSAGE__MSG_RESPONSE;
    sm.response = &resp;
    CHECK_EQ(gni_ctl_encode(&sm.base, &f, &fl), GN_ETOOBIG);
    free(longs);
}

/* Fields this version does not know are skipped, not refused. */
GN_TEST(unknown_fields_skipped)
{
    /* id 3, identify{field 15: varint 1}, top-level field 200: bytes "zz" */
    static const uint8_t body[] = {0x08, 0x03, 0x5a, 0x02, 0x78, 0x01, 0xc2, 0x0c, 0x02, 0x7a, 0x7a};
    Gnctl__Request *r = NULL;
    CHECK_OK(gni_ctl_request_decode(body, sizeof body, &r, NULL, NULL, 0));
    CHECK_EQ(r->op_case, GNCTL__REQUEST__OP_IDENTIFY);
    CHECK_EQ(r->id, 3u);
    gni_ctl_request_free(r);
}

GN_TEST(stream_info)
{
    Gnctl__StreamInfo si = GNCTL__STREAM_INFO__INIT;
    si.channel_id = 9;
    si.peer = "12D3KooWabc";
    si.protocol = "/echo/1.0.0";
    uint8_t *f = NULL;
    size_t n = 0;
    CHECK_OK(gni_ctl_encode(&si.base, &f, &n));
    CHECK_EQ(f[0], n - 1);
    Gnctl__StreamInfo *d = NULL;
    CHECK_OK(gni_ctl_stream_info_decode(f + 1, n - 1, &d, NULL, 0));
    CHECK_EQ(d->channel_id, 9u);
    CHECK_STR(d->protocol, "/echo/1.0.0");
    gni_ctl_stream_info_free(d);
    gn_free(f);
}

/* strings the daemon did not write itself (remote agent versions, echoed input) */
GN_TEST(utf8_fix_and_sanitize)
{
    char out[8];
    /* a cut never splits a character: "aé€" is 1 + 2 + 3 bytes */
    CHECK_EQ(gni_ctl_utf8_fix("a\xc3\xa9\xe2\x82\xac", 6, out, 7), 6u);
    CHECK_EQ(gni_ctl_utf8_fix("a\xc3\xa9\xe2\x82\xac", 6, out, 6), 3u);
    CHECK_STR(out, "a\xc3\xa9");
    CHECK_EQ(gni_ctl_utf8_fix("a\xc3\xa9", 3, out, 3), 1u);
    /* invalid bytes, an overlong form and a surrogate become U+FFFD */
    CHECK_EQ(gni_ctl_utf8_fix("\xff", 1, out, sizeof out), 3u);
    CHECK_STR(out, "\xef\xbf\xbd");
    CHECK_EQ(gni_ctl_utf8_fix("\xc0\xafz", 3, out, sizeof out), 7u);
    CHECK_STR(out, "\xef\xbf\xbd\xef\xbf\xbdz");
    CHECK_EQ(gni_ctl_utf8_fix("\xed\xa0\x80", 3, out, 4), 3u);
    CHECK_EQ(gni_ctl_utf8_fix(NULL, 3, out, sizeof out), 0u);
    CHECK_STR(out, "");

    /* a response with a bad agent string, a too-long error and a bad
     * repeated entry: refused as it is, encoded once sanitised */
    static char agent[300];
    memset(agent, 'a', sizeof agent - 1);
    agent[254] = '\xc3'; /* a character cut at 255 bytes */
    agent[255] = '\0';
    static char longerr[3000];
    memset(longerr, 'e', sizeof longerr - 1);
    char bad[] = "/ip4/\xfe";
    char *protos[2] = {"/ok/1", bad};
    Gnctl__PeerInfo pi = GNCTL__PEER_INFO__INIT;
    pi.agent = agent;
    pi.protocols = protos;
    pi.n_protocols = 2;
    Gnctl__Response r = GNCTL__RESPONSE__INIT;
    r.id = 3;
    r.error = longerr;
    r.result_case = GNCTL__RESPONSE__RESULT_PEER_INFO;
    r.peer_info = &pi;
    Gnctl__ServerMessage sm = GNCTL__SERVER_MESSAGE__INIT;
    sm.msg_case = GNCTL__SERVER_MESSAGE__MSG_RESPONSE;
    sm.response = &r;
    uint8_t *f = NULL;
    size_t n = 0;
    CHECK(gni_ctl_encode(&sm.base, &f, &n) < 0);
    void *keep = NULL;
    CHECK_EQ(gni_ctl_sanitize(&sm.base, &keep), 3);
    CHECK_EQ(strlen(r.error), (size_t)GN_CTL_STRING_MAX);
    CHECK_EQ(strlen(pi.agent), 254u + 3u);
    CHECK_STR(protos[0], "/ok/1");
    CHECK_STR(protos[1], "/ip4/\xef\xbf\xbd");
    CHECK_OK(gni_ctl_encode(&sm.base, &f, &n));
    gn_free(f);
    void *keep2 = NULL;
    CHECK_EQ(gni_ctl_sanitize(&sm.base, &keep2), 0); /* nothing left to fix */
    CHECK(keep2 == NULL);
    gni_ctl_sanitize_free(keep);
}

/* the C client maps the daemon's EV_LOST to GN_IPC_EV_LOST with its status and reason */
GN_TEST(client_decodes_ev_lost)
{
    Gnctl__Event e = GNCTL__EVENT__INIT;
    e.type = GNCTL__EVENT_TYPE__EV_LOST;
    e.status = GN_ETOOBIG;
    e.count = 1;
    e.channel_id = 7;
    e.reason = "an event of type 7 could not be sent";
    Gnctl__ServerMessage sm = GNCTL__SERVER_MESSAGE__INIT;
    sm.msg_case = GNCTL__SERVER_MESSAGE__MSG_EVENT;
    sm.event = &e;
    uint8_t *f = NULL;
    size_t n = 0;
    CHECK_OK(gni_ctl_encode(&sm.base, &f, &n));
    gni_ipcc_in in;
    memset(&in, 0, sizeof in);
    CHECK_OK(gni_ipcc_decode(f + 1, n - 1, &in)); /* a one-byte length prefix */
    gn_free(f);
    CHECK_EQ(in.kind, GNI_IPCC_IN_EVENT);
    CHECK_EQ(in.ev.type, GN_IPC_EV_LOST);
    CHECK_EQ(in.ev.status, GN_ETOOBIG);
    CHECK_EQ(in.ev.count, 1u);
    CHECK_EQ(in.ev.channel_id, 7u);
    CHECK_STR(in.ev.addr, "an event of type 7 could not be sent");
}

GN_TEST_MAIN(GN_T(kat_request_decode_bytewise), GN_T(kat_request_encode), GN_T(kat_server_messages),
             GN_T(two_frames_and_trailing), GN_T(refused_messages_keep_framing), GN_T(framing_lost),
             GN_T(bounds), GN_T(unknown_fields_skipped), GN_T(stream_info),
             GN_T(utf8_fix_and_sanitize), GN_T(client_decodes_ev_lost))
