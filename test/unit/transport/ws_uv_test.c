/*
 * WebSocket adapter (layers/transport/websocket/ws_uv.c) on a real loop,
 * against a raw TCP peer written byte by byte: bad upgrade requests get 400
 * / 426 and no accept, a silent peer is dropped at dial_timeout, a ping is
 * answered, a text frame and an oversized frame get close 1003 / 1009 and
 * an error on the stream, and a dialler refuses a wrong Accept value.
 * (Transfers, half-close, backpressure: the transport conformance suite.)
 */
#include "transport/tr_harness.h"

#include "ws.h"

#include <string.h>

static const char k_req[] = "GET / HTTP/1.1\r\n"
                            "Host: 127.0.0.1\r\n"
                            "Upgrade: websocket\r\n"
                            "Connection: Upgrade\r\n"
                            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                            "Sec-WebSocket-Version: 13\r\n"
                            "\r\n";

/* A websocket server (E.srv) and a raw tcp client (E.cli) on one loop. */
static void env_raw(gn_time dial_timeout)
{
    gn_transport_config cfg;
    gn_transport_config_default(&cfg);
    if (dial_timeout) {
        cfg.dial_timeout = dial_timeout;
    }
    tr_env_init("websocket", &cfg, NULL, false);
    const gn_transport_ops *tcp =
        (const gn_transport_ops *)gn_registry_find(E.reg, GN_LAYER_TRANSPORT, "tcp");
    CHECK(tcp != NULL);
    gn_transport_free(E.cli);
    CHECK_OK(gn_transport_new(tcp, E.loop, NULL, &E.cli));
}

/* Listens with E.srv; dials its TCP address raw into a new tconn. */
static tconn *raw_connect(gn_listener **l)
{
    gn_multiaddr *la = NULL, *tcpa = NULL;
    CHECK_OK(tr_listen(E.srv, "/ip4/127.0.0.1/tcp/0/ws", l));
    CHECK_OK(gn_listener_addr(*l, &la));
    CHECK_OK(gn_multiaddr_decapsulate_code(la, GN_MA_WS, &tcpa));
    tconn *c = tc_new(&(tr_profile){.rx_cap = 4096}, false);
    CHECK_OK(tr_dial_ma(E.cli, tcpa, c));
    RUN_UNTIL(c->s != NULL, 5000);
    gn_multiaddr_free(la);
    gn_multiaddr_free(tcpa);
    return c;
}

static bool rx_has(const tconn *c, const void *needle, size_t n)
{
    for (size_t i = 0; i + n <= c->rx_len; i++) {
        if (memcmp(c->rx + i, needle, n) == 0) {
            return true;
        }
    }
    return false;
}

static void refused_with(const char *req, const char *status)
{
    env_raw(0);
    gn_listener *l;
    tconn *c = raw_connect(&l);
    CHECK_OK(tc_send(c, req, strlen(req)));
    RUN_UNTIL(c->eofs + c->errors > 0, 5000);
    CHECK(c->rx_len > strlen(status));
    CHECK_MEM(c->rx, status, strlen(status));
    CHECK_EQ(E.accepts, 0);
    tr_listener_close(l);
    tr_env_fini();
}

GN_TEST(ws_uv_bad_request_400)
{
    refused_with("GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400 ");
}

GN_TEST(ws_uv_old_version_426)
{
    refused_with("GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
                 "HTTP/1.1 426 ");
}

GN_TEST(ws_uv_silent_peer_dropped)
{
    env_raw(200 * GN_MS);
    gn_listener *l;
    tconn *c = raw_connect(&l);
    RUN_UNTIL(c->eofs + c->errors > 0, 3000);
    CHECK_EQ(E.accepts, 0);
    CHECK_EQ(c->rx_len, 0);
    RUN_UNTIL(E.srv->nconns == 0, 2000);
    tr_listener_close(l);
    tr_env_fini();
}

/* A raw client that completed the upgrade, and the server's accepted side. */
static tconn *upgraded(gn_listener **l, tconn **srv)
{
    env_raw(0);
    E.srv_prof = (tr_profile){.rx_cap = 4096};
    tconn *c = raw_connect(l);
    CHECK_OK(tc_send(c, k_req, sizeof k_req - 1));
    RUN_UNTIL(E.last_accepted != NULL && c->rx_len > 0 && rx_has(c, "\r\n\r\n", 4), 5000);
    CHECK_MEM(c->rx, "HTTP/1.1 101 ", 13);
    CHECK(rx_has(c, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n", 51));
    c->rx_len = 0;
    *srv = E.last_accepted;
    return c;
}

GN_TEST(ws_uv_ping_pong_binary_text)
{
    gn_listener *l;
    tconn *s;
    tconn *c = upgraded(&l, &s);
    /* masked with a zero key: the payload reads as is */
    CHECK_OK(tc_send(c, "\x89\x83\0\0\0\0" "abc", 9));
    RUN_UNTIL(c->rx_len >= 5, 5000);
    CHECK_MEM(c->rx, "\x8a\x03" "abc", 5); /* the pong, unmasked */
    c->rx_len = 0;
    /* binary, fragmented, with the key applied */
    static const uint8_t frag[] = {0x02, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2,
                                   0x80, 0x81, 9, 9, 9, 9, '!' ^ 9};
    CHECK_OK(tc_send(c, frag, sizeof frag));
    RUN_UNTIL(s->rx_len == 3, 5000);
    CHECK_MEM(s->rx, "hi!", 3);
    /* the server's data is one unmasked binary frame */
    CHECK_OK(tc_send(s, "yo", 2));
    RUN_UNTIL(c->rx_len >= 4, 5000);
    CHECK_MEM(c->rx, "\x82\x02" "yo", 4);
    c->rx_len = 0;
    /* a text frame: close 1003 and GN_EPROTO on the stream */
    CHECK_OK(tc_send(c, "\x81\x81\0\0\0\0x", 7));
    RUN_UNTIL(s->errors == 1 && c->rx_len >= 4, 5000);
    CHECK_EQ(s->last_err, GN_EPROTO);
    CHECK_MEM(c->rx, "\x88\x02\x03\xeb", 4);
    CHECK_EQ(s->rx_len, 3);
    tr_listener_close(l);
    tr_env_fini();
}

GN_TEST(ws_uv_oversized_frame_1009)
{
    gn_listener *l;
    tconn *s;
    tconn *c = upgraded(&l, &s);
    /* declares 1 GiB: refused on the header, before any payload */
    CHECK_OK(tc_send(c, "\x82\xff\0\0\0\0\x40\0\0\0\0\0\0\0", 14));
    RUN_UNTIL(s->errors == 1 && c->rx_len >= 4, 5000);
    CHECK_EQ(s->last_err, GN_EFRAMESIZE);
    CHECK_MEM(c->rx, "\x88\x02\x03\xf1", 4);
    tr_listener_close(l);
    tr_env_fini();
}

GN_TEST(ws_uv_clean_close_is_eof)
{
    gn_listener *l;
    tconn *s;
    tconn *c = upgraded(&l, &s);
    CHECK_OK(tc_send(c, "\x82\x81\0\0\0\0z\x88\x82\0\0\0\0\x03\xe8", 15));
    RUN_UNTIL(s->eofs == 1, 5000);
    CHECK_EQ(s->errors, 0);
    CHECK_MEM(s->rx, "z", 1);
    /* our shutdown answers with our close frame (1000) */
    CHECK_OK(tc_shutdown(s));
    RUN_UNTIL(c->rx_len >= 4, 5000);
    CHECK_MEM(c->rx, "\x88\x02\x03\xe8", 4);
    tr_listener_close(l);
    tr_env_fini();
}

/*
 * A peer that floods pings and never reads (RFC 6455 section 5.5.3): at most
 * one pong is in flight below, so the server's write queue stays within one
 * control frame while 16 MiB of pings (128 Ki pongs' worth) go through, and
 * the pong that finally goes answers the latest ping.
 */
GN_TEST(ws_uv_ping_flood_bounded)
{
    enum { PING = 6 + 125, PER = 500, TOTAL = 16 << 20 };
    static uint8_t flood[PING * PER];
    for (size_t i = 0; i < PER; i++) {
        uint8_t *f = flood + i * PING;
        f[0] = 0x89;
        f[1] = 0x80 | 125;
        memset(f + 2, 0, 4); /* zero mask key */
        memset(f + 6, 'p', 125);
    }
    gn_listener *l;
    tconn *s;
    tconn *c = upgraded(&l, &s);
    free(c->rx);
    c->p.rx_cap = 20u << 20; /* keeps every pong for the last check */
    c->rx = calloc(1, c->p.rx_cap);
    CHECK(c->rx != NULL);
    CHECK_OK(tc_read_stop(c));
    gn_stream *below = s->s->below;
    uint64_t start_in = below->metrics.bytes_in, max_queued = 0;
    size_t sent = 0;
    for (int turns = 0; sent < TOTAL && turns < 200000; turns++) {
        int rc = tc_send(c, flood, sizeof flood);
        if (rc == 0) {
            sent += sizeof flood;
        } else {
            CHECK_EQ(rc, GN_EAGAIN);
            tr_run_for(1);
        }
        if (below->metrics.write_queued > max_queued) {
            max_queued = below->metrics.write_queued;
        }
    }
    CHECK(sent >= (size_t)TOTAL);
    static const uint8_t last[] = {0x89, 0x84, 0, 0, 0, 0, 'l', 'a', 's', 't'};
    CHECK_OK(tc_send(c, last, sizeof last));
    for (int turns = 0; turns < 2000 &&
                        below->metrics.bytes_in - start_in < (uint64_t)sent + sizeof last;
         turns++) {
        tr_run_for(5);
        if (below->metrics.write_queued > max_queued) {
            max_queued = below->metrics.write_queued;
        }
    }
    CHECK_EQ(below->metrics.bytes_in - start_in, (uint64_t)sent + sizeof last);
    printf("# most bytes queued below the server during the flood: %llu\n",
           (unsigned long long)max_queued);
    CHECK(max_queued <= 2 + GNI_WS_CTL_MAX);
    CHECK_EQ(s->errors, 0);
    /* the client reads at last: the final pong answers the final ping */
    CHECK_OK(tc_read_start(c));
    RUN_UNTIL(c->rx_len >= 6 && memcmp(c->rx + c->rx_len - 6, "\x8a\x04last", 6) == 0, 10000);
    CHECK_MEM(c->rx, "\x8a\x7d", 2);
    tr_listener_close(l);
    tr_env_fini();
}

/*
 * A refusal is not cut short: the 400 goes out, then a FIN; bytes the client
 * sends afterwards are read and dropped (no reset), and the server closes on
 * the client's EOF.
 */
GN_TEST(ws_uv_refusal_lingers)
{
    env_raw(0);
    gn_listener *l;
    tconn *c = raw_connect(&l);
    static const char bad[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK_OK(tc_send(c, bad, sizeof bad - 1));
    RUN_UNTIL(c->eofs == 1, 5000);
    CHECK_MEM(c->rx, "HTTP/1.1 400 ", 13);
    CHECK_EQ(E.srv->nconns, 1); /* lingering for the client's EOF */
    static const char more[] = "more bytes from a client that did not listen";
    CHECK_OK(tc_send(c, more, sizeof more - 1));
    tr_run_for(100);
    CHECK_EQ(c->errors, 0); /* no reset */
    CHECK_OK(tc_shutdown(c));
    RUN_UNTIL(E.srv->nconns == 0, 1000); /* well before the 2 s linger bound */
    CHECK_EQ(E.accepts, 0);
    tr_listener_close(l);
    tr_env_fini();
}

/*
 * The peer's close frame when the consumer never shuts down: after 5 s
 * (section 5.5.1, "as soon as practical") the server sends close 1000 and
 * shuts TCP down itself; further writes fail with GN_EPIPE.
 */
GN_TEST(ws_uv_close_answered_after_wait)
{
    gn_listener *l;
    tconn *s;
    tconn *c = upgraded(&l, &s);
    CHECK_OK(tc_send(c, "\x88\x82\0\0\0\0\x03\xe8", 8));
    RUN_UNTIL(s->eofs == 1, 5000);
    /* half-close: the consumer may still write */
    CHECK_OK(tc_send(s, "late", 4));
    RUN_UNTIL(c->rx_len >= 6, 5000);
    CHECK_MEM(c->rx, "\x82\x04late", 6);
    tr_run_for(4000);
    CHECK_EQ(c->rx_len, 6); /* nothing before the wait is over */
    RUN_UNTIL(c->rx_len >= 10 && c->eofs == 1, 3000);
    CHECK_MEM(c->rx + 6, "\x88\x02\x03\xe8", 4);
    CHECK_EQ(tc_send(s, "x", 1), GN_EPIPE);
    tr_listener_close(l);
    tr_env_fini();
}

/* The dialler against a raw server answering with the wrong Accept value. */
GN_TEST(ws_uv_dial_refuses_wrong_accept)
{
    tr_env_init("websocket", NULL, NULL, false);
    /* E.srv: a raw tcp listener; E.cli: the websocket dialler */
    const gn_transport_ops *tcp =
        (const gn_transport_ops *)gn_registry_find(E.reg, GN_LAYER_TRANSPORT, "tcp");
    gn_transport_free(E.srv);
    CHECK_OK(gn_transport_new(tcp, E.loop, NULL, &E.srv));
    E.srv_prof = (tr_profile){.rx_cap = 4096};
    gn_listener *l;
    gn_multiaddr *la = NULL, *ws = NULL, *wsa = NULL;
    CHECK_OK(tr_listen(E.srv, "/ip4/127.0.0.1/tcp/0", &l));
    CHECK_OK(gn_listener_addr(l, &la));
    CHECK_OK(gn_multiaddr_parse("/ws", &ws));
    CHECK_OK(gn_multiaddr_encapsulate(la, ws, &wsa));
    CHECK_OK(tr_dial_ma(E.cli, wsa, NULL));
    RUN_UNTIL(E.last_accepted && E.last_accepted->rx_len > 0 &&
                  rx_has(E.last_accepted, "\r\n\r\n", 4),
              5000);
    tconn *s = E.last_accepted;
    CHECK_MEM(s->rx, "GET / HTTP/1.1\r\n", 16);
    CHECK(rx_has(s, "Sec-WebSocket-Version: 13\r\n", 27));
    static const char resp[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                               "Connection: Upgrade\r\n"
                               "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    CHECK_OK(tc_send(s, resp, sizeof resp - 1));
    RUN_UNTIL(E.dials_failed == 1, 5000);
    CHECK_EQ(E.last_dial_err, GN_EHANDSHAKE);
    CHECK_EQ(E.dials_ok, 0);
    RUN_UNTIL(s->eofs + s->errors > 0, 5000);
    gn_multiaddr_free(la);
    gn_multiaddr_free(ws);
    gn_multiaddr_free(wsa);
    tr_listener_close(l);
    tr_env_fini();
}

/* Cancelling a dial in the TCP phase and in the upgrade phase: GN_ECANCELED, once, later. */
GN_TEST(ws_uv_dial_cancel)
{
    tr_env_init("websocket", NULL, NULL, false);
    const gn_transport_ops *tcp =
        (const gn_transport_ops *)gn_registry_find(E.reg, GN_LAYER_TRANSPORT, "tcp");
    gn_transport_free(E.srv);
    CHECK_OK(gn_transport_new(tcp, E.loop, NULL, &E.srv));
    E.srv_prof = (tr_profile){.rx_cap = 4096};
    gn_listener *l;
    gn_multiaddr *la = NULL, *ws = NULL, *wsa = NULL;
    CHECK_OK(tr_listen(E.srv, "/ip4/127.0.0.1/tcp/0", &l));
    CHECK_OK(gn_listener_addr(l, &la));
    CHECK_OK(gn_multiaddr_parse("/ws", &ws));
    CHECK_OK(gn_multiaddr_encapsulate(la, ws, &wsa));
    for (int phase = 0; phase < 2; phase++) {
        gn_op *op = NULL;
        int before = E.dials_failed;
        TR_ENTER();
        CHECK_OK(gn_transport_dial(E.cli, wsa, tr_dial_cb, NULL, &op));
        TR_LEAVE();
        CHECK(op != NULL);
        if (phase == 1) {
            /* the request reached the raw server: the upgrade is in progress */
            RUN_UNTIL(E.last_accepted && rx_has(E.last_accepted, "\r\n\r\n", 4), 5000);
        }
        TR_ENTER();
        gn_op_cancel(op);
        gn_op_cancel(op); /* a second cancel before the callback is a no-op */
        TR_LEAVE();
        CHECK_EQ(E.dials_failed, before); /* never from inside the cancel */
        RUN_UNTIL(E.dials_failed == before + 1, 5000);
        CHECK_EQ(E.last_dial_err, GN_ECANCELED);
        tr_run_for(50);
        CHECK_EQ(E.dials_failed, before + 1);
        CHECK_EQ(E.dials_ok, 0);
        RUN_UNTIL(E.cli->nconns == 0, 2000);
    }
    gn_multiaddr_free(la);
    gn_multiaddr_free(ws);
    gn_multiaddr_free(wsa);
    tr_listener_close(l);
    tr_env_fini();
}

GN_TEST_MAIN(GN_T(ws_uv_bad_request_400), GN_T(ws_uv_old_version_426),
             GN_T(ws_uv_silent_peer_dropped), GN_T(ws_uv_ping_pong_binary_text),
             GN_T(ws_uv_oversized_frame_1009), GN_T(ws_uv_clean_close_is_eof),
             GN_T(ws_uv_dial_refuses_wrong_accept), GN_T(ws_uv_dial_cancel),
             GN_T(ws_uv_ping_flood_bounded), GN_T(ws_uv_refusal_lingers),
             GN_T(ws_uv_close_answered_after_wait))
