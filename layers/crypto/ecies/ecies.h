/*
 * ecies.h - sans-I/O core of golemnet's ECIES secure channel,
 * /golem/ecies/1.0.0. Private header (never installed).
 *
 * Spec: docs/protocols/ecies.md, part A. Two objects:
 *
 *  - gni_ecies_hs: the 3-message handshake (sections 3-9). Bytes in with
 *    gni_ecies_hs_feed(), bytes out with gni_ecies_hs_drain(), one deadline.
 *  - gni_ecies_session: transport framing (sections 10-11), created from a
 *    finished handshake (or raw keys, for tests and fuzzing). Encoder and
 *    decoder accept arbitrary byte splits.
 *
 * Invariants and context: no I/O, no clock (time is an argument), randomness
 * only from the injected gn_rng, no globals. An object is used from one thread
 * at a time. Every error is sticky: once a call failed with an error, every
 * later feed/drain/send/recv call on the object returns the same error.
 * Secrets (ephemeral keys, DH output, PRK, handshake and transport keys) live
 * in pooled secure memory (gni_secmem: sodium_malloc'd slabs with guard
 * pages) and are wiped when no longer needed.
 */
#ifndef GNI_ECIES_H
#define GNI_ECIES_H

#include "golemnet/common.h"
#include "golemnet/identity.h"

/** Protocol id negotiated by multistream-select. */
#define GNI_ECIES_PROTOCOL_ID "/golem/ecies/1.0.0"
/** Version and suite bytes (spec section 2). */
#define GNI_ECIES_VERSION 0x01
#define GNI_ECIES_SUITE_X25519_ED25519_CHACHAPOLY 0x01
/** Longest extension block (spec section 5). */
#define GNI_ECIES_MAX_EXT 1024
/** Handshake message body bounds (spec section 4). */
#define GNI_ECIES_MSG1_LEN 34
#define GNI_ECIES_MSG2_MIN 148
#define GNI_ECIES_MSG2_MAX (GNI_ECIES_MSG2_MIN + GNI_ECIES_MAX_EXT)
#define GNI_ECIES_MSG3_MIN 114
#define GNI_ECIES_MSG3_MAX (GNI_ECIES_MSG3_MIN + GNI_ECIES_MAX_EXT)
/** Key and hash sizes. */
#define GNI_ECIES_KEYBYTES 32
#define GNI_ECIES_HASHBYTES 32
/** Transport framing (spec section 10). */
#define GNI_ECIES_FRAME_HDR 10   /* u16 len || u64 seq */
#define GNI_ECIES_TAGBYTES 16
#define GNI_ECIES_FRAME_MIN_LEN 25  /* smallest value of the len field */
#define GNI_ECIES_MAX_PAYLOAD 65510 /* payload bytes per frame */
#define GNI_ECIES_FRAME_OVERHEAD (GNI_ECIES_FRAME_HDR + 1 + GNI_ECIES_TAGBYTES) /* 27 */
#define GNI_ECIES_FRAME_DATA 0x00
#define GNI_ECIES_FRAME_CLOSE 0x01
/** Rekey thresholds per direction (spec section 11). */
#define GNI_ECIES_REKEY_FRAMES (1ULL << 20)
#define GNI_ECIES_REKEY_BYTES (1ULL << 30)
/** Default handshake timeout. */
#define GNI_ECIES_DEFAULT_TIMEOUT (10 * GN_S)

typedef struct gni_ecies_hs gni_ecies_hs;
typedef struct gni_ecies_session gni_ecies_session;

/** Handshake parameters; all pointers are borrowed only during _new. */
typedef struct gni_ecies_config {
    bool initiator;
    /** Local identity (required). Borrowed: must outlive the handshake. */
    const gn_identity *identity;
    /** Randomness for the ephemeral key (required). Borrowed: must outlive it. */
    const gn_rng *rng;
    /** Expected remote peer, or NULL to accept any. Copied. */
    const gn_peer_id *expected_peer;
    /** Local extension block (spec section 6), copied; len <= GNI_ECIES_MAX_EXT. */
    gn_slice ext;
    /** Handshake timeout; 0 selects GNI_ECIES_DEFAULT_TIMEOUT. */
    gn_time timeout;
    /**
     * Largest handshake message body accepted from the peer (bytes); 0 or a
     * value above the spec maximum selects the spec maximum for each message.
     */
    size_t max_msg;
} gni_ecies_config;

/** What the handshake established, for the layer above. */
typedef struct gni_ecies_result {
    gn_peer_id remote_peer;
    uint8_t remote_pubkey[GN_ED25519_PUBLICKEYBYTES];
    /** The peer's extension block (already checked well-formed). */
    uint8_t remote_ext[GNI_ECIES_MAX_EXT];
    size_t remote_ext_len;
    /** Final handshake hash hf (spec section 7), usable for channel binding. */
    uint8_t handshake_hash[GNI_ECIES_HASHBYTES];
} gni_ecies_result;

/**
 * Creates a handshake started at @now. The initiator's msg1 is queued at once
 * (drain it). The ephemeral key is drawn from cfg->rng here (initiator) or
 * when msg1 arrives (responder).
 * Errors: GN_EINVAL (NULL identity/rng/out, ext too long or not a well-formed
 * extension block), GN_EBADKEY (the identity is not Ed25519: ECIES derives its
 * X25519 key from it), GN_ENOMEM, GN_ECRYPTO (libsodium could not initialise).
 * On failure *@out is untouched.
 */
int gni_ecies_hs_new(const gni_ecies_config *cfg, gn_time now, gni_ecies_hs **out);

/** Wipes and frees @hs; NULL is a no-op. */
void gni_ecies_hs_free(gni_ecies_hs *hs);

/**
 * Feeds @len received bytes. Consumes bytes up to the end of the last
 * handshake message this side expects, never beyond: *@consumed (required)
 * tells how many were taken; the rest belongs to the transport (feed it to
 * gni_ecies_session_recv after creating the session). Feeding after
 * completion consumes nothing and returns 0. May queue output (drain it).
 * Returns 0 or the error of spec section 9: GN_EVERSION, GN_EFRAMESIZE,
 * GN_EPROTO, GN_EBADKEY, GN_EDECRYPT, GN_EBADSIG, GN_EPEERID, GN_ETIMEDOUT
 * (@now past the deadline), GN_EINVAL (NULL arguments). All but GN_EINVAL are
 * sticky; *@consumed is set also on error (bytes examined).
 */
int gni_ecies_hs_feed(gni_ecies_hs *hs, const uint8_t *in, size_t len, size_t *consumed,
                      gn_time now);

/**
 * Moves queued output into @out, as much as fits (partial writes allowed).
 * Returns the number of bytes written (0 when nothing is queued or @out is
 * full), or the sticky error.
 */
int gni_ecies_hs_drain(gni_ecies_hs *hs, gn_buf *out, gn_time now);

/** Number of queued output bytes not yet drained. */
size_t gni_ecies_hs_pending(const gni_ecies_hs *hs);

/** The deadline; GN_TIME_INFINITY once finished or failed. */
gn_time gni_ecies_hs_deadline(const gni_ecies_hs *hs);

/**
 * Timer expiry: returns GN_ETIMEDOUT (and fails the handshake) if @now is at
 * or past the deadline and the handshake is not finished, else 0 (or the
 * sticky error).
 */
int gni_ecies_hs_expire(gni_ecies_hs *hs, gn_time now);

/** True when the keys are established and all messages were processed. */
bool gni_ecies_hs_done(const gni_ecies_hs *hs);

/** The sticky error, or 0. */
int gni_ecies_hs_error(const gni_ecies_hs *hs);

/**
 * Copies the result. Errors: GN_ESTATE before completion, or the sticky error.
 */
int gni_ecies_hs_result(const gni_ecies_hs *hs, gni_ecies_result *res);

/**
 * After a failure with GN_EPEERID: the peer the remote proved (its
 * signature verified) instead of the expected one, into @peer, and its
 * Ed25519 key into @pubkey. Errors: GN_EINVAL (a NULL argument), GN_ESTATE
 * (the handshake did not fail with GN_EPEERID).
 */
int gni_ecies_hs_mismatched_peer(const gni_ecies_hs *hs, gn_peer_id *peer,
                                 uint8_t pubkey[GN_ED25519_PUBLICKEYBYTES]);

/**
 * Test and diagnostic access to the transport keys (@tx for sending, @rx for
 * receiving, from this side's point of view). Secret: wipe after use.
 * Errors: GN_ESTATE before completion or after gni_ecies_session_new took
 * the keys, or the sticky error.
 */
int gni_ecies_hs_keys(const gni_ecies_hs *hs, uint8_t tx[GNI_ECIES_KEYBYTES],
                      uint8_t rx[GNI_ECIES_KEYBYTES]);

/**
 * Creates the transport session from a finished handshake; the keys move to
 * the session and are wiped from @hs. Errors: GN_ESTATE (not finished, or
 * keys already taken), GN_ENOMEM, the sticky error.
 */
int gni_ecies_session_new(gni_ecies_hs *hs, gni_ecies_session **out);

/**
 * Creates a session directly from keys (tests, fuzzing). Copies the keys.
 * Errors: GN_EINVAL, GN_ENOMEM, GN_ECRYPTO.
 */
int gni_ecies_session_from_keys(const uint8_t tx[GNI_ECIES_KEYBYTES],
                                const uint8_t rx[GNI_ECIES_KEYBYTES], gni_ecies_session **out);

/** Wipes and frees @s; NULL is a no-op. */
void gni_ecies_session_free(gni_ecies_session *s);

/**
 * Limits the payload of frames this side sends (1..GNI_ECIES_MAX_PAYLOAD);
 * receiving always accepts the spec maximum. Errors: GN_EINVAL.
 */
int gni_ecies_session_set_max_payload(gni_ecies_session *s, size_t max_payload);

/**
 * TEST HOOK: lowers the rekey thresholds (spec section 11) for both
 * directions; both peers must use equal values. 0 keeps the spec value.
 */
void gni_ecies_session_set_rekey_limits(gni_ecies_session *s, uint64_t frames, uint64_t bytes);

/** Current epochs (number of rekeys so far) per direction. */
void gni_ecies_session_epochs(const gni_ecies_session *s, uint64_t *tx_epoch, uint64_t *rx_epoch);

/**
 * Encrypts @len bytes of @data into DATA frames appended to @out. Only whole
 * frames are written; returns the number of input bytes taken (may be fewer
 * than @len when @out fills up; 0 if @len is 0). Frames are as large as
 * allowed. Errors: GN_ENOSPC (@len > 0 and not even a one-byte frame fits),
 * GN_ESTATE (after gni_ecies_session_send_close), GN_ENONCE, GN_EINVAL.
 */
long gni_ecies_session_send(gni_ecies_session *s, const uint8_t *data, size_t len, gn_buf *out);

/**
 * Appends a CLOSE frame (27 bytes); nothing may be sent afterwards.
 * Errors: GN_ENOSPC, GN_ESTATE (already closed), GN_ENONCE.
 */
int gni_ecies_session_send_close(gni_ecies_session *s, gn_buf *out);

/**
 * Decodes received bytes. First flushes plaintext left over from an earlier
 * call into @out, then consumes @in frame by frame, appending plaintext to
 * @out as room allows; a frame whose plaintext does not fit is kept and
 * flushed by the next call (which may pass @len 0). *@consumed (required)
 * tells how many input bytes were taken; the caller keeps the rest.
 * Returns the number of plaintext bytes appended, or (sticky): GN_EFRAMESIZE,
 * GN_EREPLAY, GN_EDECRYPT, GN_EPROTO (bad type, data after CLOSE).
 */
long gni_ecies_session_recv(gni_ecies_session *s, const uint8_t *in, size_t len,
                            size_t *consumed, gn_buf *out);

/**
 * One-frame encoder for frame-at-a-time drivers (include/golemnet/secure_driver.h): writes
 * one DATA frame of @len (<= the max payload) bytes of @in to @out, which
 * must have room for @len + GNI_ECIES_FRAME_OVERHEAD bytes and must not
 * overlap @in. Returns the frame length, or GN_EINVAL, GN_ESTATE (closed),
 * GN_ENONCE, the sticky error.
 */
long gni_ecies_session_seal_one(gni_ecies_session *s, const uint8_t *in, size_t len,
                                uint8_t *out);

/**
 * One-frame decoder: consumes input up to the end of at most one frame
 * (*@consumed). When a frame completes, *@plain / *@plain_len give its
 * payload, borrowed until the next call on @s (an empty DATA frame and the
 * CLOSE frame give a non-NULL *@plain with length 0; tell them apart with
 * gni_ecies_session_rx_closed()); otherwise *@plain is NULL. Do not mix with
 * gni_ecies_session_recv() while plaintext is pending. Returns 0 or the
 * errors of gni_ecies_session_recv().
 */
int gni_ecies_session_open_one(gni_ecies_session *s, const uint8_t *in, size_t len,
                               size_t *consumed, const uint8_t **plain, size_t *plain_len);

/** True while a frame is partly received (EOF now would truncate it). */
bool gni_ecies_session_partial(const gni_ecies_session *s);

/** True once a CLOSE frame was received and all its data delivered. */
bool gni_ecies_session_rx_closed(const gni_ecies_session *s);

/**
 * The underlying stream ended. Returns 0 after a CLOSE frame, GN_EBADFRAME
 * when a partial frame is buffered (truncated frame), GN_EEOF otherwise
 * (truncated stream), or the sticky error.
 */
int gni_ecies_session_recv_eof(gni_ecies_session *s);

#endif /* GNI_ECIES_H */
