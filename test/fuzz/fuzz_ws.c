/*
 * Fuzz target for the WebSocket core (layers/transport/websocket/ws.c).
 *
 * Input: byte 0 = mode: bit 0 server (masked frames expected) or client,
 * bit 1 parse a handshake first (request at a server, response to the
 * fixed key at a client), bits 2-3 a pause pattern for on_data; then the
 * rest is split at byte values of byte 1 (a chunking knob) and fed.
 * A violation calls abort():
 *   - the handshake parsers return 0 with 0 < consumed <= len, or one of
 *     their documented errors, never more than max_header read;
 *   - gni_ws_feed never consumes more than given, delivers at most the
 *     payload bytes it consumed, reports a close code (1002, 1003, 1009)
 *     exactly when it fails with GN_EPROTO or GN_EFRAMESIZE, and refuses
 *     input after the close frame or a failure;
 *   - control frame payloads are at most 125 bytes, close codes valid.
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
        int rc = server ? gni_ws_parse_request(data, len, 1024, &used, key)
                        : gni_ws_parse_response(data, len, 1024, &used, "dGhlIHNhbXBsZSBub25jZQ==");
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
            if (rc == GN_EPROTO && code != 1002 && code != 1003)
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
