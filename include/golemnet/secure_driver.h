/*
 * golemnet - the generic secure-channel driver, for security components.
 *
 * A security component (Noise, ECIES, plaintext, or one built out of tree)
 * has a sans-I/O handshake core and a transport-phase frame cipher. This
 * driver runs any such handshake over the raw gn_stream below and then
 * provides the secured gn_stream (the full gn_stream contract: zero-copy
 * writes that complete exactly once, reads with backpressure, shutdown,
 * close) over the cipher. A component's gn_crypto_ops.secure therefore only
 * adapts its core to the two small tables here and calls gn_secure_run().
 *
 * Thread context: everything here runs on the loop thread of the
 * gn_crypto instance. The driver never calls a table entry re-entrantly
 * (from inside another entry of the same object).
 *
 * Spec: docs/architecture.md, "Drivers shared by components".
 * Since: 0.1
 */
#ifndef GOLEMNET_SECURE_DRIVER_H
#define GOLEMNET_SECURE_DRIVER_H

#include "golemnet/crypto.h"
#include "golemnet/loop.h"
#include "golemnet/rcmgr.h"

GN_BEGIN_DECLS

typedef struct gn_secure_cipher_vtbl gn_secure_cipher_vtbl;

/**
 * A handshake core as the driver sees it. @hs is the component's object,
 * passed back as the first argument of every entry.
 *
 * feed:   consumes @len received bytes at @in (borrowed for the call) at
 *         time @now; sets *@consumed (may be less than @len when the
 *         handshake completed and the rest is transport data, which the
 *         driver then hands to the cipher). Returns 0 or a negative gn_err:
 *         the handshake failed with that code.
 * drain:  appends bytes to send to @out (a driver-owned buffer); returns
 *         the count appended (0: nothing now), GN_ENOSPC if @out has too
 *         little room (the driver grows it and calls again), or another
 *         negative gn_err (the handshake failed).
 * status: 0 while in progress, 1 once complete, < 0 failed with that code.
 * finish: called once after status returned 1: fills @res (remote peer,
 *         security protocol, early muxer; not res->stream, which the driver
 *         sets) and hands over the transport cipher: *@cipher its table,
 *         *@cipher_obj its object, owned by the driver from then on (it
 *         calls cipher->free). Returns 0 or a negative gn_err.
 * free:   releases @hs; called exactly once, on success or failure, after
 *         which the driver never touches @hs again.
 * mismatched_peer: optional (NULL: not reported). Called at most once,
 *         just before free, when the handshake failed with GN_EPEERID:
 *         fills @peer with the peer ID the remote proved instead of the
 *         expected one, and @pubkey with its Ed25519 key. Returns 0, or a
 *         negative gn_err when the core cannot tell (then the driver
 *         reports GN_EPEERID with no result). Since: 0.2 (ABI revision 4;
 *         a table built against an older revision must be rebuilt, which
 *         leaves this entry NULL).
 *
 * Only feed, drain, status, finish and free are required.
 */
typedef struct gn_secure_hs_vtbl {
    int (*feed)(void *hs, const uint8_t *in, size_t len, size_t *consumed, gn_time now);
    int (*drain)(void *hs, gn_buf *out, gn_time now);
    int (*status)(void *hs);
    int (*finish)(void *hs, gn_secure_result *res, const gn_secure_cipher_vtbl **cipher,
                  void **cipher_obj);
    void (*free)(void *hs);
    int (*mismatched_peer)(void *hs, gn_peer_id *peer,
                           uint8_t pubkey[GN_ED25519_PUBLICKEYBYTES]);
} gn_secure_hs_vtbl;

/**
 * A transport-phase frame cipher. @c is the cipher object handed over by
 * gn_secure_hs_vtbl.finish.
 *
 * max_plain:  most plaintext bytes per frame (> 0).
 * overhead:   frame bytes added to the plaintext (length prefix + tag).
 * seal:       encrypts @len (<= max_plain) bytes at @in into @out, which has
 *             room for @len + overhead bytes; returns the bytes written or a
 *             negative gn_err (GN_ENONCE: nonce space exhausted).
 * open:       consumes received bytes at @in (@len bytes, borrowed), up to
 *             one frame; sets *@consumed. When a frame is complete,
 *             *@plain / *@plain_len give its plaintext (borrowed until the
 *             next call on @c; the length may be 0); otherwise *@plain is
 *             NULL. Returns 0 or a negative gn_err (GN_EDECRYPT,
 *             GN_EBADFRAME, GN_EREPLAY, ...), which fails the stream.
 * partial:    true while a frame is half received (a truncation at EOF).
 * free:       releases the cipher and wipes its keys.
 * seal_close: optional (NULL: none). Writes an authenticated end-of-stream
 *             frame into @out (room for overhead bytes); returns the bytes
 *             written or a negative gn_err. Called once on shutdown, before
 *             the stream below is shut down.
 * closed:     optional (NULL: none). True once an authenticated
 *             end-of-stream frame was opened. With it, EOF from below
 *             without such a frame is a truncation (the consumer gets
 *             on_error(GN_EEOF)), and the frame itself ends the stream
 *             (on_eof) even before the EOF below.
 */
struct gn_secure_cipher_vtbl {
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
 * Runs the handshake @hs (driven through @hv) over @below for the security
 * component instance @c, then provides the secured stream. The driver
 * sends the core's first output at once, starts reading @below and feeds
 * it what arrives.
 *
 * @c:     the component instance (not NULL); its config bounds the
 *         handshake: c->config.handshake_timeout (ns) and
 *         c->config.max_handshake_msg bytes of buffered handshake input.
 * @below: the raw stream (not NULL); on 0 the driver owns it.
 * @hv:    the handshake table (not NULL; kept by pointer: static storage).
 * @hs:    the handshake object; on 0 the driver owns it and calls
 *         hv->free exactly once.
 * @cb:    completion (not NULL), called exactly once from the loop, never
 *         from inside this call. On success: status 0 and @res (borrowed
 *         for the call; res->stream is the secured stream, owned by the
 *         callee, who must gn_stream_close() it; it reads once the callee
 *         calls gn_stream_read_start()). On failure, after @below was
 *         closed, with @res NULL (except for GN_EPEERID: the peer the
 *         remote proved, from hv->mismatched_peer, when the core reports
 *         it; res->stream NULL) and status: the core's error (from feed,
 *         drain, status or finish), GN_ETIMEDOUT (handshake_timeout
 *         passed), GN_EFRAMESIZE (more than max_handshake_msg bytes
 *         buffered), GN_EEOF (the peer closed first), an error @below
 *         reported, GN_ENOMEM, or GN_EHANDSHAKE (a core reported failure
 *         without a code).
 * @arg:   passed to @cb.
 * @op:    NULL, or receives the handshake's cancellation handle (gn_op,
 *         golemnet/loop.h) on 0, NULL on an error: gn_op_cancel() frees
 *         the core, starts closing @below (a socket closes inside the call)
 *         and @cb follows with GN_ECANCELED once @below is closed. A
 *         component passes its secure() @op straight through.
 *
 * Returns 0 (the handshake is running), or, with nothing taken (the caller
 * keeps @below and @hs, and @cb never runs): GN_ENOMEM, the core's error
 * from its first drain (GN_ETOOBIG for a core whose output never ends), or
 * @below's error from gn_stream_read_start() (GN_ECLOSED when @below is
 * closing).
 * Thread context: the loop thread of @c.
 * Since: 0.1
 */
GN_API int gn_secure_run(gn_crypto *c, gn_stream *below, const gn_secure_hs_vtbl *hv, void *hs,
                         gn_secure_cb cb, void *arg, gn_op **op);

/**
 * gn_secure_run() with the handshake's input buffer accounted in @span (a
 * connection span in the transient scope, as gn_secure_params.span gives
 * it; NULL: not accounted). The buffer grows with what the peer sends, at
 * most c->config.max_handshake_msg bytes; each growth is reserved first,
 * at GN_RCMGR_PRIO_MEDIUM, and a refusal fails the handshake with
 * GN_ERESOURCE. Everything is released when the handshake ends (before
 * @cb runs). @span is borrowed: it must stay valid until the handshake
 * ends or is cancelled. Everything else as gn_secure_run(). A component
 * passes its secure() params' span here.
 * Since: 0.5
 */
GN_API int gn_secure_run_ex(gn_crypto *c, gn_stream *below, const gn_secure_hs_vtbl *hv,
                            void *hs, gn_rcmgr_span *span, gn_secure_cb cb, void *arg,
                            gn_op **op);

/**
 * Accounts the buffers of a secured stream (one gn_secure_run() provided)
 * in a resource manager span, or stops accounting them (@span NULL). What
 * is reserved: one frame of the cipher (max_plain + overhead), the received
 * ciphertext not yet opened (reserved before that buffer grows, at
 * GN_RCMGR_PRIO_MEDIUM: a refusal fails the stream with GN_ERESOURCE), the
 * scratch frame, and the sealed copies of writes in flight plus the one
 * kept for reuse (reserved before a write is sealed: a refusal fails that
 * gn_stream_write() with GN_ERESOURCE, nothing taken). Attaching reserves
 * what the stream holds at once, at GN_RCMGR_PRIO_ALWAYS; a stream attached
 * to another span is moved (released there first). Everything is released
 * when the stream is detached or closed. The mux driver (gn_muxd_set_rcmgr)
 * attaches the stream below a session to the session's connection span, so
 * a muxer built on it needs no call of its own.
 *
 * @s:    a secured stream (not NULL).
 * @span: the span (borrowed: it must stay valid until the stream is
 *        detached or closed), or NULL to detach.
 *
 * Returns 0, or GN_EINVAL (@s NULL), GN_ENOTSUP (@s is not a stream of
 * this driver: nothing accounted), GN_ECLOSED (@s is closing; detaching
 * still returns 0), GN_ERESOURCE (the span refused what the stream holds:
 * it stays detached).
 * Thread context: the loop thread of @s.
 * Since: 0.5
 */
GN_API int gn_secure_set_rcmgr(gn_stream *s, gn_rcmgr_span *span);

GN_END_DECLS

#endif /* GOLEMNET_SECURE_DRIVER_H */
