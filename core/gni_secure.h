/*
 * Generic secure-channel driver (internal).
 *
 * Security components (Noise, ECIES, plaintext) have sans-I/O cores. This
 * driver runs any such handshake core over the raw gn_stream below, and
 * then provides the secured gn_stream over any transport-phase frame
 * cipher. A component's *_layer.c only adapts its core to the two small
 * vtables here.
 *
 * Thread context: loop thread only. Core names no component here.
 */
#ifndef GNI_SECURE_H
#define GNI_SECURE_H

#include "golemnet/crypto.h"
#include "golemnet/loop.h"

/**
 * A handshake core as the driver sees it. @hs is the component's object.
 *
 * feed:   consume received bytes; sets *consumed (may be less than @len when
 *         the handshake completed and the rest is transport data). Returns 0
 *         or a gn_err (the handshake failed).
 * drain:  append bytes to send to @out; return the count (0: nothing now),
 *         GN_ENOSPC if @out has too little room (the driver grows it), or
 *         an error.
 * status: 0 in progress, 1 complete, < 0 failed with that code.
 * finish: after status 1: fill @res (remote peer, key, early muxer; not
 *         .stream) and hand over the transport cipher (*cipher, *cipher_obj).
 * free:   release @hs (always called once, success or not).
 */
typedef struct gni_cipher_vtbl gni_cipher_vtbl;
typedef struct gni_hs_vtbl {
    int (*feed)(void *hs, const uint8_t *in, size_t len, size_t *consumed, gn_time now);
    int (*drain)(void *hs, gn_buf *out, gn_time now);
    int (*status)(void *hs);
    int (*finish)(void *hs, gn_secure_result *res, const gni_cipher_vtbl **cipher,
                  void **cipher_obj);
    void (*free)(void *hs);
} gni_hs_vtbl;

/**
 * A transport-phase cipher.
 *
 * max_plain: most plaintext bytes per frame; overhead: frame bytes added to
 * the plaintext (length prefix + tag).
 * seal:    encrypt @len <= max_plain bytes into @out (room for len +
 *          overhead); return bytes written or an error (GN_ENONCE).
 * open:    feed received bytes; consumes up to one frame. When a frame is
 *          complete, *plain / *plain_len point at its plaintext (borrowed
 *          until the next call; length may be 0). Sets *consumed. Returns
 *          0, or an error (GN_EDECRYPT, GN_EBADFRAME, GN_EREPLAY, ...).
 * partial: true while a frame is half received (truncation at EOF).
 * free:    release the cipher (wipes keys).
 * seal_close (optional): write an authenticated end-of-stream frame into
 *          @out (room for overhead bytes); return bytes written or an error.
 *          Called once on shutdown, before the stream below is shut down.
 * closed (optional): true once an authenticated end-of-stream frame was
 *          opened. With it, EOF from below without such a frame is a
 *          truncation (the consumer gets GN_EEOF as an error), and the
 *          frame itself ends the stream (on_eof) even before the EOF below.
 */
struct gni_cipher_vtbl {
    size_t max_plain;
    size_t overhead;
    int (*seal)(void *c, const uint8_t *in, size_t len, uint8_t *out);
    int (*open)(void *c, const uint8_t *in, size_t len, size_t *consumed, const uint8_t **plain,
                size_t *plain_len);
    bool (*partial)(void *c);
    void (*free)(void *c);
    int (*seal_close)(void *c, uint8_t *out);
    bool (*closed)(void *c);
};

/**
 * Runs the handshake @hs over @below for the component instance @c.
 * On return 0 the driver owns @below and @hs, and @cb runs exactly once
 * (from the loop, never from inside this call): with the secured stream on
 * success, or with an error after @below was closed. On an immediate error
 * the caller keeps @below and @hs.
 * The handshake is bounded by c->config.handshake_timeout (GN_ETIMEDOUT)
 * and c->config.max_handshake_msg bytes of buffered input.
 * On 0, *@op (NULL allowed) is the handshake's gn_op: cancelling it frees
 * the core, starts closing @below (its socket closes inside the call) and
 * @cb follows with GN_ECANCELED once @below is closed. A component passes
 * its secure() @op straight through.
 */
int gni_secure_run(gn_crypto *c, gn_stream *below, const gni_hs_vtbl *hv, void *hs,
                   gn_secure_cb cb, void *arg, gn_op **op);

#endif /* GNI_SECURE_H */
