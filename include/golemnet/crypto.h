/*
 * golemnet - crypto (security) layer ops: secure a raw stream.
 *
 * A security component runs a handshake over a raw gn_stream (its `below`)
 * and produces a secured gn_stream with the same stream ops, plus the
 * authenticated remote peer ID. multistream-select chooses the component by
 * its name ("/noise", "/golem/ecies/1.0.0", "/plaintext/2.0.0").
 */
#ifndef GOLEMNET_CRYPTO_H
#define GOLEMNET_CRYPTO_H

#include "golemnet/identity.h"
#include "golemnet/layer.h"
#include "golemnet/loop.h"
#include "golemnet/rcmgr.h"
#include "golemnet/stream.h"

GN_BEGIN_DECLS

/**
 * ABI version: (kind << 16) | revision, so a table of another kind never passes.
 * Revision 2 added `caps`; 3, the gn_op handle of secure(); 4, the
 * received peer of a GN_EPEERID failure (gn_secure_cb, and
 * gn_secure_hs_vtbl.mismatched_peer in secure_driver.h).
 */
#define GN_CRYPTO_ABI 0x20004u

/*
 * Capability bits (gn_crypto_ops.caps): what a security component promises.
 * Code that must know what a component offers (the conformance
 * suites) reads these bits, never its name.
 */
/**
 * Every handshake message and transport frame is authenticated: an altered
 * or truncated byte fails the handshake or the secured stream with an error
 * (GN_EDECRYPT, GN_EHANDSHAKE, GN_EPROTO, ...), and altered bytes are never
 * delivered. Since: 0.1.
 */
#define GN_CRYPTO_CAP_INTEGRITY 0x1u
/** Application bytes never appear in clear on the wire. Since: 0.1. */
#define GN_CRYPTO_CAP_CONFIDENTIALITY 0x2u
/**
 * The handshake can agree on a muxer (gn_secure_params.early_muxers,
 * gn_secure_result.early_muxer): when both sides offer muxers, the result
 * names the initiator's first choice the responder also offers, or "" when
 * they share none. Without this bit early_muxer is always "". Since: 0.1.
 */
#define GN_CRYPTO_CAP_EARLY_MUXER 0x4u
/**
 * The end of a secured stream is authenticated: gn_stream_shutdown() sends
 * a close frame, and a stream below that ends without one is reported as an
 * error (GN_EEOF), not as EOF, so a cut cannot pass for a clean end.
 * Without this bit an end of the stream below at a frame boundary is EOF.
 * Since: 0.1.
 */
#define GN_CRYPTO_CAP_AUTH_CLOSE 0x8u
/** Every capability bit this version defines. */
#define GN_CRYPTO_CAP_ALL 0xfu
/** Longest protocol id carried in results. */
#define GN_PROTOCOL_ID_MAX 128

typedef struct gn_crypto gn_crypto;
typedef struct gn_crypto_ops gn_crypto_ops;

/** Options common to security components. */
typedef struct gn_crypto_config {
    uint32_t version;           /* GN_CRYPTO_CONFIG_VERSION */
    gn_time handshake_timeout;  /* default 10 s */
    size_t max_handshake_msg;   /* bytes, default 65535 */
} gn_crypto_config;
#define GN_CRYPTO_CONFIG_VERSION 1
GN_API void gn_crypto_config_default(gn_crypto_config *cfg);

/** A security component instance (one per node and component). */
struct gn_crypto {
    const gn_crypto_ops *ops;
    gn_loop *loop;
    void *state;                  /* ops->state_size bytes, owned by core */
    const gn_identity *identity;  /* borrowed; outlives the instance */
    gn_crypto_config config;
};

/** Per-handshake parameters (borrowed for the duration of secure()). */
typedef struct gn_secure_params {
    bool initiator;
    /** Expected remote peer (from a dialed /p2p/ id); NULL accepts any. */
    const gn_peer_id *expected_peer;
    /** Muxer protocol ids to offer for early negotiation, in preference order. */
    const char *const *early_muxers;
    size_t n_early_muxers;
    /**
     * Optional (NULL: none): the connection's resource manager span
     * (golemnet/rcmgr.h), where the handshake's buffers are accounted;
     * components built on the secure driver pass it to gn_secure_run_ex().
     * Borrowed until the handshake ends. Since: 0.5
     */
    gn_rcmgr_span *span;
} gn_secure_params;

/**
 * Handshake result, valid during the callback. With status GN_EPEERID only
 * remote_peer and remote_pubkey are set (the peer the remote proved, which
 * is not the expected one); stream is NULL and early_muxer "".
 */
typedef struct gn_secure_result {
    gn_stream *stream;          /* the secured stream; the callee owns it */
    gn_peer_id remote_peer;
    /** The remote's raw Ed25519 key; all zero when its identity has another key type. */
    uint8_t remote_pubkey[GN_ED25519_PUBLICKEYBYTES];
    /** Muxer agreed inside the handshake, or "" when none. */
    char early_muxer[GN_PROTOCOL_ID_MAX];
} gn_secure_result;

/**
 * Handshake completion, exactly once, on the loop thread. @status 0 with
 * @res, or: GN_EPEERID, GN_EBADSIG, GN_EHANDSHAKE, GN_EPROTO, GN_EFRAMESIZE,
 * GN_EDECRYPT, GN_EBADKEY (the peer's identity key is malformed, or of a
 * type the component does not take: Noise takes all four libp2p key types),
 * GN_EVERSION, GN_ETIMEDOUT, GN_EEOF, GN_ECONNRESET, GN_ECANCELED
 * (gn_op_cancel() on the handshake's handle). On every error the
 * component has closed the raw stream, and @res is NULL except with
 * GN_EPEERID: then @res, when not NULL, carries the peer the remote proved
 * in remote_peer and remote_pubkey (its stream is NULL). The built-in
 * components always report it; a component on gn_secure_run() reports it
 * when its core implements gn_secure_hs_vtbl.mismatched_peer, and a
 * component may pass NULL (it could not tell). Never called from inside
 * secure() or gn_op_cancel(). Since: 0.1 (the GN_EPEERID result: 0.2,
 * ABI revision 4).
 */
typedef void (*gn_secure_cb)(void *arg, int status, const gn_secure_result *res);

struct gn_crypto_ops {
    GN_LAYER_OPS_HEADER;
    /** GN_CRYPTO_CAP_* bits. */
    uint32_t caps;
    int (*init)(gn_crypto *c);   /* optional */
    void (*fini)(gn_crypto *c);  /* optional */
    /**
     * Required: start a handshake over @below. On return 0 the component owns
     * @below (it becomes the secured stream's `below`, or is closed on
     * failure), sets *@op (never NULL here) to the handshake's cancellation
     * handle, and @cb runs exactly once. Cancelling must close @below at
     * once and complete @cb with GN_ECANCELED from the loop. On an
     * immediate error the caller keeps @below and @cb does not run.
     */
    int (*secure)(gn_crypto *c, gn_stream *below, const gn_secure_params *p, gn_secure_cb cb,
                  void *arg, gn_op **op);
};

/**
 * Creates an instance of @ops for @identity on @loop (@cfg NULL: defaults).
 * Errors: GN_EABI, GN_EINVAL, GN_ENOMEM, init's errors. Loop thread.
 */
GN_API int gn_crypto_new(const gn_crypto_ops *ops, gn_loop *loop, const gn_identity *identity,
                         const gn_crypto_config *cfg, gn_crypto **out);
GN_API void gn_crypto_free(gn_crypto *c);
/**
 * Runs @c's handshake over @below with @p (borrowed during the call); the
 * ops->secure contract: on 0 the component owns @below and @cb runs exactly
 * once; on an immediate error (GN_EINVAL for NULL @below, @p or @cb,
 * GN_ENOMEM, the component's errors) the caller keeps @below.
 * @op (NULL allowed) receives the handshake's handle on 0 (NULL on an
 * error): gn_op_cancel(*@op) before @cb stops the handshake at once, closes
 * @below (a TCP socket is closed inside the call), and @cb follows with
 * GN_ECANCELED. The handshake's own bound is config.handshake_timeout.
 * Loop thread.
 * Since: 0.1
 */
GN_API int gn_crypto_secure(gn_crypto *c, gn_stream *below, const gn_secure_params *p,
                            gn_secure_cb cb, void *arg, gn_op **op);

GN_END_DECLS

#endif /* GOLEMNET_CRYPTO_H */
