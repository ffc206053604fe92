/*
 * noise.h - sans-I/O Noise Protocol Framework core and the libp2p /noise
 * handshake and transport framing built on it (private header, never
 * installed).
 *
 * Three levels, each usable on its own:
 *
 *  1. gn_noise_cipher / gn_noise_hs: the Noise Protocol Framework revision 34
 *     CipherState, SymmetricState and HandshakeState (sections 5.1-5.3) for
 *     the 25519 / ChaChaPoly / SHA256 suite (section 12), with handshake
 *     patterns kept as data (sections 7.4-7.6 and appendix 18.1) and the pskN
 *     modifiers (section 9). Checked against the Cacophony vectors.
 *
 *  2. gn_noise_xx: the libp2p handshake (libp2p/specs noise/README.md):
 *     Noise_XX_25519_ChaChaPoly_SHA256, empty prologue, 2-byte big-endian
 *     length prefix on every message, NoiseHandshakePayload carrying the
 *     identity key, the identity signature over "noise-libp2p-static-key:" ||
 *     static DH public key, and NoiseExtensions.stream_muxers for early muxer
 *     negotiation (libp2p/specs connections/inlined-muxer-negotiation.md).
 *     Bytes in (feed), bytes out (drain), a deadline and an expiry call.
 *
 *  3. gn_noise_transport: libp2p transport framing (2-byte length, AEAD
 *     ciphertext with 16-byte tag, at most 65535 bytes) with an encoder that
 *     encrypts straight into the caller's buffer and a decoder that accepts
 *     any byte split.
 *
 * Nothing here does I/O, reads a clock or keeps mutable globals; randomness
 * comes from an injected gn_rng. Secrets (cipher keys, chaining key, private
 * keys, PSKs) live in pooled secure memory (gni_secmem: sodium_malloc'd
 * slabs with guard pages) and are wiped when freed.
 *
 * Thread context: every object is single-threaded; distinct objects may be
 * used on distinct threads.
 *
 * Error convention: 0 or a positive count on success, a negative gn_err.
 * Errors of gn_noise_hs and gn_noise_xx are sticky: after one, every later
 * call on the object returns the same code.
 */
#ifndef GN_NOISE_H
#define GN_NOISE_H

#include "golemnet/common.h"
#include "golemnet/crypto.h"
#include "golemnet/err.h"
#include "golemnet/identity.h"

/* ---- sizes (Noise rev 34 sections 3, 4, 12; libp2p noise "Wire Format") ---------------- */

/** X25519 public/private key length (DHLEN). */
#define GN_NOISE_DHLEN 32
/** ChaChaPoly key length. */
#define GN_NOISE_KEYBYTES 32
/** SHA-256 output length (HASHLEN). */
#define GN_NOISE_HASHLEN 32
/** Poly1305 authentication tag length. */
#define GN_NOISE_TAGBYTES 16
/** Pre-shared key length (Noise section 9). */
#define GN_NOISE_PSKBYTES 32
/** Longest Noise message (handshake or transport), section 3. */
#define GN_NOISE_MAX_MSG_LEN 65535
/** libp2p length prefix, big-endian. */
#define GN_NOISE_FRAME_HDR 2
/** Longest framed message: prefix plus the longest Noise message. */
#define GN_NOISE_MAX_FRAME (GN_NOISE_FRAME_HDR + GN_NOISE_MAX_MSG_LEN)
/** Most application bytes one transport frame carries (65535 - 16). */
#define GN_NOISE_MAX_PLAINTEXT (GN_NOISE_MAX_MSG_LEN - GN_NOISE_TAGBYTES)

/** Most messages in a supported handshake pattern (deferred patterns have 4). */
#define GN_NOISE_MAX_MESSAGES 4
/** Most tokens in one message pattern, psk tokens included. */
#define GN_NOISE_MAX_TOKENS 10
/** Most psk tokens in one pattern. */
#define GN_NOISE_MAX_PSKS 4

/** The protocol name libp2p uses. */
#define GN_NOISE_LIBP2P_PROTOCOL "Noise_XX_25519_ChaChaPoly_SHA256"
/** Prefix of the data signed by identity_sig (libp2p noise "The libp2p Handshake Payload"). */
#define GN_NOISE_LIBP2P_SIG_PREFIX "noise-libp2p-static-key:"
/** Default handshake timeout when the config gives 0. */
#define GN_NOISE_DEFAULT_TIMEOUT (10 * GN_S)
/** Most early muxers offered or accepted from the local config. */
#define GN_NOISE_MAX_MUXERS 16

/* ---- CipherState (Noise section 5.1) -------------------------------------------------- */

/**
 * A CipherState: key @k and nonce @n.
 *
 * @k is NULL while the key is empty; otherwise it points at
 * GN_NOISE_KEYBYTES of pooled secure memory (gni_secmem) owned by the cipher. The
 * struct is caller storage: gn_noise_cipher_init() before use,
 * gn_noise_cipher_fini() after. A cipher may be moved by plain struct copy
 * (then only the copy is finalised).
 */
typedef struct gn_noise_cipher {
    uint8_t *k;
    uint64_t n;
} gn_noise_cipher;

/** Makes @c an empty CipherState (no key, n = 0). Allocates nothing. */
void gn_noise_cipher_init(gn_noise_cipher *c) GN_NONNULL(1);

/**
 * InitializeKey(key): copies the GN_NOISE_KEYBYTES bytes at @key into
 * secure memory and sets n = 0. Errors: GN_ENOMEM (@c unchanged).
 */
int gn_noise_cipher_set_key(gn_noise_cipher *c, const uint8_t key[GN_NOISE_KEYBYTES])
    GN_NONNULL(1, 2) GN_WARN_UNUSED;

/** Wipes and frees the key; @c becomes empty. Safe on an empty cipher. */
void gn_noise_cipher_fini(gn_noise_cipher *c) GN_NONNULL(1);

/** HasKey(). */
static inline bool gn_noise_cipher_has_key(const gn_noise_cipher *c) { return c->k != NULL; }

/**
 * SetNonce(n). Noise section 11.4; tests use it to reach nonce exhaustion.
 */
static inline void gn_noise_cipher_set_nonce(gn_noise_cipher *c, uint64_t n) { c->n = n; }

/**
 * EncryptWithAd(ad, plaintext) with a key (section 5.1; ChaChaPoly of
 * section 12.3: nonce = 4 zero bytes || n little-endian).
 *
 * @in: @len bytes; @out: room for @len + 16 bytes; @out may equal @in
 * (in place), other overlaps are not allowed. @ad may be NULL when @ad_len
 * is 0. Returns @len + 16.
 * Errors: GN_ESTATE (no key), GN_ENONCE (n reached 2^64-1: the cipher must
 * be discarded), GN_ETOOBIG (@len > GN_NOISE_MAX_MSG_LEN - 16).
 */
int gn_noise_cipher_encrypt(gn_noise_cipher *c, const uint8_t *ad, size_t ad_len,
                            const uint8_t *in, size_t len, uint8_t *out) GN_NONNULL(1);

/**
 * DecryptWithAd(ad, ciphertext) with a key. @in: @len bytes of ciphertext
 * and tag; @out: room for @len - 16 bytes, may equal @in. Returns @len - 16.
 * On failure n is not incremented and @out holds no plaintext.
 * Errors: GN_ESTATE (no key), GN_ENONCE, GN_EBADFRAME (@len < 16),
 * GN_ETOOBIG (@len > GN_NOISE_MAX_MSG_LEN), GN_EDECRYPT (authentication
 * failed).
 */
int gn_noise_cipher_decrypt(gn_noise_cipher *c, const uint8_t *ad, size_t ad_len,
                            const uint8_t *in, size_t len, uint8_t *out) GN_NONNULL(1);

/**
 * Rekey(): k = first 32 bytes of ENCRYPT(k, 2^64-1, empty, 32 zero bytes)
 * (sections 4.2, 11.3). n is unchanged. Errors: GN_ESTATE (no key).
 */
int gn_noise_cipher_rekey(gn_noise_cipher *c) GN_NONNULL(1);

/* ---- handshake patterns (sections 7, 9, 18.1) ---------------------------------------- */

/** Tokens (section 7.1, plus "psk" of section 9.2). 0 ends a token list. */
enum gn_noise_token {
    GN_NOISE_TOK_END = 0,
    GN_NOISE_TOK_E,
    GN_NOISE_TOK_S,
    GN_NOISE_TOK_EE,
    GN_NOISE_TOK_ES,
    GN_NOISE_TOK_SE,
    GN_NOISE_TOK_SS,
    GN_NOISE_TOK_PSK
};

/**
 * A handshake pattern as data. Messages alternate between initiator and
 * responder starting with the initiator (canonical form, section 7.2).
 * Each token list is 0-terminated.
 */
typedef struct gn_noise_pattern {
    uint8_t pre_init[3];   /* initiator's pre-message: tokens E and/or S */
    uint8_t pre_resp[3];   /* responder's pre-message */
    uint8_t n_msgs;
    uint8_t n_psks;        /* psk tokens in the messages */
    bool one_way;          /* N, K, X and their psk variants (section 7.4) */
    uint8_t msgs[GN_NOISE_MAX_MESSAGES][GN_NOISE_MAX_TOKENS + 1];
} gn_noise_pattern;

/**
 * Looks up a pattern name: a fundamental or deferred pattern ("XX", "NK1",
 * "X1X1", one-way "N", "K", "X") optionally followed by psk modifiers
 * joined with '+' ("NNpsk0", "XXpsk0+psk3"). @name is @len bytes, not
 * necessarily NUL-terminated.
 * Errors: GN_ENOTSUP (unknown pattern or modifier, or a modifier that does
 * not fit the pattern, e.g. psk5 on a 2-message pattern).
 */
int gn_noise_pattern_find(const char *name, size_t len, gn_noise_pattern *out) GN_NONNULL(3);

/* ---- HandshakeState (section 5.3) ---------------------------------------------------- */

typedef struct gn_noise_hs gn_noise_hs;

/** Parameters of gn_noise_hs_new(); everything is copied during the call. */
typedef struct gn_noise_hs_params {
    /** Full protocol name, NUL-terminated: "Noise_<pattern>_25519_ChaChaPoly_SHA256". */
    const char *protocol_name;
    bool initiator;
    /** Prologue bytes (section 6); may be empty. */
    gn_slice prologue;
    /** Local static private key (32 bytes) or NULL. Required if the pattern sends or pre-shares "s". */
    const uint8_t *s;
    /**
     * Local ephemeral private key (32 bytes) or NULL to generate one from
     * @rng when the "e" token is written (GENERATE_KEYPAIR). Tests pass fixed
     * keys; real use leaves it NULL.
     */
    const uint8_t *e;
    /** Remote static public key for pre-messages, or NULL. */
    const uint8_t *rs;
    /** Remote ephemeral public key for pre-messages (fallback patterns), or NULL. */
    const uint8_t *re;
    /** @n_psks pre-shared keys of 32 bytes each, in the order the psk tokens use them. */
    const uint8_t *psks;
    size_t n_psks;
    /** Randomness for ephemeral keys; required when @e is NULL. Borrowed: must outlive the hs. */
    const gn_rng *rng;
} gn_noise_hs_params;

/** What a HandshakeState expects next. */
typedef enum gn_noise_hs_action {
    GN_NOISE_HS_WRITE = 1,  /* call gn_noise_hs_write() */
    GN_NOISE_HS_READ = 2,   /* call gn_noise_hs_read() */
    GN_NOISE_HS_DONE = 3,   /* handshake complete: take the ciphers */
    GN_NOISE_HS_FAILED = 4  /* a call failed; the hs is unusable */
} gn_noise_hs_action;

/**
 * Initialize(handshake_pattern, initiator, prologue, s, e, rs, re) plus PSKs
 * (sections 5.3, 9): InitializeSymmetric(protocol_name), MixHash(prologue),
 * pre-message keys hashed (initiator's first).
 *
 * On success *@out owns a new HandshakeState; free it with gn_noise_hs_free().
 * Errors: GN_EINVAL (NULL params or name, a key the pattern needs is
 * missing, wrong PSK count, @e and @rng both NULL), GN_ENOTSUP (protocol name
 * not Noise_*_25519_ChaChaPoly_SHA256 or unknown pattern), GN_ECRYPTO
 * (libsodium unusable), GN_ENOMEM.
 */
int gn_noise_hs_new(const gn_noise_hs_params *p, gn_noise_hs **out) GN_NONNULL(1, 2);

/** Wipes and frees @hs (and ciphers not yet taken). NULL is a no-op. */
void gn_noise_hs_free(gn_noise_hs *hs);

/** The next expected call. */
gn_noise_hs_action gn_noise_hs_next(const gn_noise_hs *hs) GN_NONNULL(1);

/**
 * Bytes gn_noise_hs_write() will produce for a payload of @payload_len
 * bytes, or a negative error (GN_ESTATE when it is not this side's turn).
 */
int gn_noise_hs_write_len(const gn_noise_hs *hs, size_t payload_len) GN_NONNULL(1);

/**
 * WriteMessage(payload, message_buffer) (section 5.3). Writes the message
 * into @out (@out_len bytes of room; must not overlap @payload) and returns
 * its length. After the last message the transport ciphers are split and
 * gn_noise_hs_next() returns GN_NOISE_HS_DONE.
 * Errors: GN_ESTATE (not this side's turn, or failed earlier), GN_ENOSPC
 * (@out_len too small; the hs is unchanged), GN_ETOOBIG (message would exceed
 * 65535 bytes; unchanged), GN_EBADKEY (a DH gave the all-zero output), GN_ENONCE.
 */
int gn_noise_hs_write(gn_noise_hs *hs, gn_slice payload, uint8_t *out, size_t out_len)
    GN_NONNULL(1);

/**
 * ReadMessage(message, payload_buffer) (section 5.3). Decrypts the payload
 * of @msg into @payload (room @payload_len; must not overlap @msg) and
 * returns its length.
 * Errors: GN_ESTATE (not this side's turn), GN_ETOOBIG (@msg longer than
 * 65535), GN_EBADFRAME (@msg shorter than the keys and tags its tokens
 * need), GN_EDECRYPT (a static key or the payload failed authentication),
 * GN_EBADKEY (a DH with a peer key gave the all-zero output), GN_ENOSPC
 * (@payload_len too small; the hs is unchanged). Errors other than
 * GN_ESTATE/GN_ENOSPC leave the hs failed.
 */
int gn_noise_hs_read(gn_noise_hs *hs, gn_slice msg, uint8_t *payload, size_t payload_len)
    GN_NONNULL(1);

/**
 * Moves the Split() ciphers out (section 5.2): @tx encrypts this side's
 * messages, @rx decrypts the peer's (initiator: tx = c1, rx = c2). Both
 * must be empty or uninitialised caller storage; they are initialised here.
 * Errors: GN_ESTATE (handshake not done, or ciphers already taken).
 */
int gn_noise_hs_take_ciphers(gn_noise_hs *hs, gn_noise_cipher *tx, gn_noise_cipher *rx)
    GN_NONNULL(1, 2, 3);

/** GetHandshakeHash(): copies h (meaningful once done; section 11.2). */
void gn_noise_hs_hash(const gn_noise_hs *hs, uint8_t out[GN_NOISE_HASHLEN]) GN_NONNULL(1, 2);

/** Copies rs. Errors: GN_ENOTFOUND (not known yet). */
int gn_noise_hs_remote_static(const gn_noise_hs *hs, uint8_t out[GN_NOISE_DHLEN])
    GN_NONNULL(1, 2);

/** Copies the local static public key. Errors: GN_ENOTFOUND (no static key). */
int gn_noise_hs_local_static(const gn_noise_hs *hs, uint8_t out[GN_NOISE_DHLEN])
    GN_NONNULL(1, 2);

/* ---- transport framing (libp2p noise "Wire Format") ---------------------------------- */

/**
 * A secured channel's framing state: the two CipherStates and the frame
 * decoder. Caller storage: gn_noise_transport_init(), then fill @tx/@rx
 * (gn_noise_xx_finish() does), gn_noise_transport_fini() at the end.
 * Decoder fields are private.
 */
typedef struct gn_noise_transport {
    gn_noise_cipher tx;
    gn_noise_cipher rx;
    /* decoder */
    uint8_t *body;       /* reassembly buffer, GN_NOISE_MAX_MSG_LEN bytes, lazily allocated */
    size_t body_have;
    uint32_t frame_len;  /* length of the frame being read, when hdr_have == 2 */
    uint8_t hdr[2];
    uint8_t hdr_have;
    int err;             /* sticky decoder error */
} gn_noise_transport;

/** Empty state (no keys). Allocates nothing. */
void gn_noise_transport_init(gn_noise_transport *t) GN_NONNULL(1);
/** Wipes keys and frees buffers; @t may be re-initialised. */
void gn_noise_transport_fini(gn_noise_transport *t) GN_NONNULL(1);

/** Framed bytes gn_noise_transport_seal() produces for @len application bytes. */
size_t gn_noise_transport_sealed_len(size_t len);

/**
 * Encrypts application bytes into frames appended to @out: each frame is a
 * 2-byte big-endian length then the ciphertext and tag, carrying at most
 * GN_NOISE_MAX_PLAINTEXT bytes. Encrypts straight from @in into @out (no
 * intermediate copy). Stops when @out has no room for a frame with at least
 * one byte of payload; *@consumed tells how much of @in was taken.
 * Returns the number of bytes appended to @out.
 * Errors: GN_ESTATE (no tx key), GN_EINVAL (@in.base NULL with a length),
 * GN_ENOSPC (@in not empty and not even a 1-byte frame fits), GN_ENONCE
 * (nonce space exhausted, and on every later call: the channel must be
 * closed). Frames written before an error stay in @out and count in
 * *@consumed.
 */
int gn_noise_transport_seal(gn_noise_transport *t, gn_slice in, gn_buf *out, size_t *consumed)
    GN_NONNULL(1, 3, 4);

/**
 * Encrypts one frame: @len <= GN_NOISE_MAX_PLAINTEXT bytes at @in become
 * the 2-byte prefix, ciphertext and tag at @out (room for @len + 18 bytes).
 * @in may be exactly @out + 2 (encrypt in place, zero copies); other
 * overlaps are not allowed. Returns the frame length (@len + 18).
 * Errors: GN_ETOOBIG, GN_ESTATE (no tx key), GN_ENONCE.
 */
int gn_noise_transport_seal_frame(gn_noise_transport *t, const uint8_t *in, size_t len,
                                  uint8_t *out) GN_NONNULL(1, 4);

/**
 * Decodes frames from @len bytes at @in, split anywhere, and appends the
 * plaintext to @out. A frame whole in @in is decrypted straight into @out;
 * a partial one is kept (bounded: one frame) until the rest arrives. A
 * complete frame whose plaintext does not fit in @out stays in the decoder:
 * make room and call again (@len may be 0). *@consumed tells how much of @in
 * was taken; with GN_NOISE_MAX_PLAINTEXT free bytes in @out every byte is
 * taken. Returns the number of plaintext bytes appended.
 * Errors: GN_EBADFRAME (a frame shorter than the 16-byte tag), GN_EDECRYPT
 * (tampered, truncated-then-completed, reordered or replayed frame),
 * GN_ENONCE (sticky, all three); GN_ESTATE (no rx key), GN_EINVAL (@in NULL
 * with a length), GN_ENOMEM (reassembly buffer). Plaintext of frames before
 * the failing one stays in @out.
 */
int gn_noise_transport_open(gn_noise_transport *t, const uint8_t *in, size_t len,
                            size_t *consumed, gn_buf *out) GN_NONNULL(1, 4, 5);

/**
 * Decodes at most one frame: consumes bytes of @in until a frame is
 * complete, then decrypts it into the decoder's own buffer and points
 * *@plain / *@plain_len at the plaintext (borrowed until the next call on
 * @t; the length may be 0). When no frame completed, *@plain is NULL.
 * *@consumed tells how much of @in was taken. Returns 0.
 * Errors (sticky): as gn_noise_transport_open().
 */
int gn_noise_transport_open_frame(gn_noise_transport *t, const uint8_t *in, size_t len,
                                  size_t *consumed, const uint8_t **plain, size_t *plain_len)
    GN_NONNULL(1, 4, 5, 6);

/** True when the decoder holds part of a frame or an undelivered frame. */
bool gn_noise_transport_rx_pending(const gn_noise_transport *t) GN_NONNULL(1);

/* ---- libp2p XX handshake (libp2p/specs noise/README.md) ------------------------------- */

typedef struct gn_noise_xx gn_noise_xx;

/** Configuration of one libp2p handshake; copied by gn_noise_xx_new() except where noted. */
typedef struct gn_noise_xx_config {
    bool initiator;
    /** Local identity; borrowed, must outlive the handshake object. Required. */
    const gn_identity *identity;
    /** Expected remote peer, or NULL to accept any authenticated peer. */
    const gn_peer_id *expected_peer;
    /** Muxer protocol ids to offer (early negotiation), preference order; may be empty. */
    const char *const *muxers;
    size_t n_muxers;
    /** Randomness for the ephemeral (and static, see below) keys; borrowed. Required. */
    const gn_rng *rng;
    /** Handshake timeout from creation; 0 means GN_NOISE_DEFAULT_TIMEOUT, GN_TIME_INFINITY none. */
    gn_time timeout;
    /** Longest handshake message accepted or sent (bytes); 0 means 65535. */
    size_t max_msg;
    /** Optional 32-byte static DH private key; NULL generates one from @rng per handshake. */
    const uint8_t *static_key;
} gn_noise_xx_config;

/** What a successful handshake established. */
typedef struct gn_noise_xx_result {
    gn_peer_id remote_peer;
    uint8_t remote_pubkey[GN_ED25519_PUBLICKEYBYTES];
    /** Agreed early muxer, NUL-terminated, or "" (fall back to multistream-select). */
    char early_muxer[GN_PROTOCOL_ID_MAX];
    /** The Noise handshake hash (channel binding). */
    uint8_t handshake_hash[GN_NOISE_HASHLEN];
} gn_noise_xx_result;

/**
 * Creates a libp2p XX handshake at time @now. The initiator has message 1
 * ready to drain at once.
 * Errors: GN_EINVAL (missing identity or rng, more than GN_NOISE_MAX_MUXERS
 * muxers, an empty or >= GN_PROTOCOL_ID_MAX-byte muxer id, max_msg > 65535
 * or too small for a handshake), GN_ECRYPTO, GN_ENOMEM.
 */
int gn_noise_xx_new(const gn_noise_xx_config *cfg, gn_time now, gn_noise_xx **out)
    GN_NONNULL(1, 3);

/** Wipes and frees @x (NULL is a no-op). Result ciphers not taken are wiped too. */
void gn_noise_xx_free(gn_noise_xx *x);

/**
 * Feeds bytes received from the peer. Consumes only the bytes of handshake
 * messages this side expects: bytes after the final handshake message (the
 * peer's first transport frames) are left unconsumed for the transport
 * decoder. A complete message is processed at once; the reply it calls for
 * is built then and waits for gn_noise_xx_drain(). *@consumed is set on
 * success and failure.
 * Errors (sticky): GN_ETIMEDOUT (@now past the deadline), GN_EFRAMESIZE
 * (length prefix above max_msg), GN_EBADFRAME (message too short for its
 * keys and tags), GN_EDECRYPT (authentication failed), GN_EPROTO (payload
 * not a NoiseHandshakePayload, identity_key or identity_sig missing),
 * GN_EBADKEY (identity key not Ed25519, or a low-order DH key),
 * GN_EBADSIG (identity_sig does not verify), GN_EPEERID (authenticated
 * peer is not the expected one), GN_ETOOBIG (own reply over max_msg),
 * GN_ENOMEM.
 */
int gn_noise_xx_feed(gn_noise_xx *x, const uint8_t *in, size_t len, size_t *consumed,
                     gn_time now) GN_NONNULL(1, 4);

/**
 * Appends pending handshake bytes (framed) to @out, as many as fit; returns
 * the number appended (0 when nothing is pending).
 * Errors: GN_ENOSPC (bytes are pending and @out has no free byte; not
 * sticky), GN_ETIMEDOUT (sticky).
 */
int gn_noise_xx_drain(gn_noise_xx *x, gn_buf *out, gn_time now) GN_NONNULL(1, 2);

/** Bytes waiting to be drained. */
size_t gn_noise_xx_pending(const gn_noise_xx *x) GN_NONNULL(1);

/** The handshake deadline (GN_TIME_INFINITY when none, or once done/failed). */
gn_time gn_noise_xx_deadline(const gn_noise_xx *x) GN_NONNULL(1);

/**
 * Expiry call: at or after the deadline an unfinished handshake fails with
 * GN_ETIMEDOUT (returned, and sticky). Returns 0 otherwise.
 */
int gn_noise_xx_expire(gn_noise_xx *x, gn_time now) GN_NONNULL(1);

/** True once the handshake completed and everything was drained. */
bool gn_noise_xx_done(const gn_noise_xx *x) GN_NONNULL(1);

/** The sticky error, or 0. */
int gn_noise_xx_error(const gn_noise_xx *x) GN_NONNULL(1);

/**
 * After a failure with GN_EPEERID: the peer the remote proved (its
 * identity_sig verified) instead of the expected one, into @peer and its
 * Ed25519 key into @pubkey. Errors: GN_ESTATE (the handshake did not fail
 * with GN_EPEERID).
 */
int gn_noise_xx_mismatched_peer(const gn_noise_xx *x, gn_peer_id *peer,
                                uint8_t pubkey[GN_ED25519_PUBLICKEYBYTES]) GN_NONNULL(1, 2, 3);

/**
 * Takes the result: fills @res (may be NULL) and moves the transport
 * ciphers into @t, which must be initialised and empty (its old ciphers are
 * finalised). Callable once, after gn_noise_xx_done().
 * Errors: GN_ESTATE (not done, failed, or already taken).
 */
int gn_noise_xx_finish(gn_noise_xx *x, gn_noise_xx_result *res, gn_noise_transport *t)
    GN_NONNULL(1, 3);

#endif /* GN_NOISE_H */
