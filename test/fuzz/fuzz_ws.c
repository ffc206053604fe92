/*
 * Fuzz target for the WebSocket core (layers/transport/websocket/ws.c).
 *
 * Input: byte 0 = mode: bit 0 server (masked frames expected) or client,
 * bit 1 parse a handshake first (request at a server, response to the
 * fixed key at a client), bits 2-3 on_data pauses (every 1st..3rd call
 * asks gni_ws_feed to return; 0: never); byte 1 = the chunk size (0 read
 * as 1): the rest is fed in chunks of that many bytes (the handshake
 * parser sees growing prefixes of that step too, resuming its search).
 * A violation calls abort():
 *   - the handshake parsers return 0 with 0 < consumed <= len and
 *     consumed <= max_header, or one of their documented errors; parsing
 *     growing prefixes with a resumed search gives the one-shot result;
 *   - gni_ws_feed never consumes more than given, delivers at most the
 *     payload bytes it consumed, reports a close code (1002, 1003 or 1007
 *     with GN_EPROTO, 1009 with GN_EFRAMESIZE) exactly when it fails with
 *     one of those, and refuses input after the close frame or a failure;
 *   - control frame payloads are at most 125 bytes, close codes are ones
 *     that may be sent (section 7.4.1).
 */
#include "golemnet/err.h"
#include "ws.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fz {
    size_t delivered;
    int calls;
    int pause_mod;
    bool closed;
} fz;

static int fz_data(void *ud, const uint8_t *d, size_t n)
{
    fz *f = ud;
    if (n == 0 || !d)
        abort();
    f->delivered += n;
    f->calls++;
    return f->pause_mod && f->calls % f->pause_mod == 0 ? 1 : 0;
}

static int fz_ctl(void *ud, const uint8_t *d, size_t n)
{
    (void)ud;
    (void)d;
    if (n > GNI_WS_CTL_MAX)
        abort();
    return 0;
}

static int fz_close(void *ud, unsigned code, const uint8_t *r, size_t n)
{
    fz *f = ud;
    (void)r;
    if (n > GNI_WS_CTL_MAX - 2 || code < 1000 || code > 4999 || f->closed)
        abort();
    if (code == 1004 || code == 1006 || code == 1015 || (code >= 1016 && code < 3000))
        abort(); /* 1005 is what a frame without a code reports */
    f->closed = true;
    return 0;
}

static const gni_ws_callbacks fz_cbs = {fz_data, fz_ctl, fz_ctl, fz_close};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    bool server = data[0] & 1;
    bool hs = data[0] & 2;
    int pause_mod = (data[0] >> 2) & 3;
    uint8_t step = data[1] ? data[1] : 1;
    data += 2;
    size_t len = size - 2;
    if (hs) {
        size_t used = 0;
        char key[GNI_WS_KEY_LEN];
        static const char ckey[] = "dGhlIHNhbXBsZSBub25jZQ==";
        int rc = server ? gni_ws_parse_request(data, len, 1024, NULL, &used, key)
                        : gni_ws_parse_response(data, len, 1024, NULL, &used, ckey);
        /* the same bytes arriving in chunks of @step, the search resumed */
        size_t scan = 0, used2 = 0;
        int rc2 = GN_EAGAIN;
        size_t n = step < len ? step : len;
        for (;;) {
            char key2[GNI_WS_KEY_LEN];
            rc2 = server ? gni_ws_parse_request(data, n, 1024, &scan, &used2, key2)
                         : gni_ws_parse_response(data, n, 1024, &scan, &used2, ckey);
            if (scan > n + 3)
                abort();
            if (rc2 != GN_EAGAIN || n == len)
                break;
            n = len - n > step ? n + step : len;
        }
        if (rc2 != rc || (rc == 0 && used2 != used))
            abort();
        if (rc == 0) {
            if (used == 0 || used > len || used > 1024)
                abort();
            if (server && strlen(key) != GNI_WS_KEY_LEN - 1)
                abort();
            data += used;
            len -= used;
        } else if (rc != GN_EAGAIN && rc != GN_ETOOBIG && rc != GN_EPARSE && rc != GN_EPROTO &&
                   rc != GN_EVERSION && rc != GN_EHANDSHAKE) {
            abort();
        } else {
            return 0;
        }
    }
    fz f = {.pause_mod = pause_mod};
    gni_ws w;
    gni_ws_init(&w, server, 4096, 16384, &fz_cbs, &f);
    size_t off = 0, fed = 0;
    bool done = false;
    for (int guard = 0; off < len && guard < 100000; guard++) {
        size_t n = len - off < step ? len - off : step;
        size_t used = 0;
        int rc = gni_ws_feed(&w, data + off, n, &used);
        if (used > n)
            abort();
        if (done && rc != GN_ESTATE)
            abort();
        fed += used;
        off += used;
        if (rc < 0) {
            unsigned code = gni_ws_fail_code(&w);
            if (rc == GN_EPROTO && code != 1002 && code != 1003 && code != 1007)
                abort();
            if (rc == GN_EFRAMESIZE && code != 1009)
                abort();
            if (rc != GN_EPROTO && rc != GN_EFRAMESIZE && rc != GN_ESTATE)
                abort();
            done = true;
            if (rc == GN_ESTATE)
                break;
            continue;
        }
        if (f.closed)
            done = true;
        if (used == 0 && !done && n > 0) {
            /* only a pause may consume nothing; resume */
            if (!pause_mod)
                abort();
        }
        if (done && used == 0)
            break;
    }
    if (f.delivered > fed)
        abort();
    return 0;
}
