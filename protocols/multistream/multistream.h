/*
 * multistream-select 1.0: sans-I/O negotiation core (internal, never installed).
 *
 * Spec: libp2p/specs connections/README.md, "Protocol Negotiation" and its
 * "multistream-select" subsection; multiformats/multistream-select README
 * ("Protocol", "Listing"). The "ls" response layout and the optimistic
 * ("lazy") initiator follow what rust-libp2p and js-libp2p put on the wire;
 * see docs/protocols/multistream.md.
 *
 * Wire format. Every message is <uvarint N><N bytes>, where the N bytes are
 * the text followed by one '\n' (the newline is counted in N). Both peers
 * first send the header "/multistream/1.0.0". The initiator then proposes
 * protocol ids one at a time; the responder echoes a supported id (selected)
 * or answers "na"; "ls" asks the responder for its list.
 *
 * Model. One gni_ms object negotiates one channel (a raw connection or one
 * stream). It does no I/O, reads no clock and makes no syscalls:
 *   - gni_ms_feed() takes bytes read from the peer,
 *   - gni_ms_drain() hands out bytes to write to the peer,
 *   - gni_ms_get_status() says where the negotiation stands,
 *   - gni_ms_deadline() / gni_ms_expire() implement the optional timeout,
 *   - gni_ms_feed_eof() reports that the peer closed its sending side.
 *
 * Driving loop for an adapter (one gn_stream):
 *     gni_ms_new(&cfg, now, &ms);
 *     loop:
 *       while (gni_ms_pending(ms) > 0) { gni_ms_drain(ms, &buf); write buf; }
 *       on read(data, n):
 *         rc = gni_ms_feed(ms, data, n, &used);        (rc < 0: fail, close)
 *         switch (gni_ms_get_status(ms)):
 *           SELECTED:   drain and write what is pending, then hand the
 *                       stream to the protocol; data[used..n) is
 *                       application data that arrived in the same read
 *                       (the "leftover"): deliver it to the protocol first.
 *           OPTIMISTIC: (lazy initiator only) the protocol may already
 *                       write, after the pending negotiation bytes; reads
 *                       still go through gni_ms_feed() until SELECTED.
 *           LISTED:     (ls-only query) done, close the stream.
 *           PENDING:    keep reading.
 *       on EOF: gni_ms_feed_eof(ms).
 *       on timer: gni_ms_expire(ms, now).
 *
 * The core never consumes a byte beyond the last negotiation message: once
 * the status is SELECTED (or LISTED / FAILED) gni_ms_feed() consumes nothing
 * more, so everything from *consumed on belongs to the application.
 *
 * Thread context: a gni_ms is used by one thread at a time (the loop thread
 * that owns the channel). No function keeps a pointer to caller memory after
 * it returns, except that gni_ms_config.user_data is passed to the match
 * callback. The callback runs inside gni_ms_feed() only and must not call
 * back into the same gni_ms.
 *
 * Errors (all sticky: once a call failed, the object is FAILED and every
 * later feed returns the same code). Output queued before the failure (for
 * example the "na" answering a lazy initiator's proposal) stays drainable:
 * an adapter drains and sends it, then closes the channel.
 *   GN_EPROTO       the peer broke the wire format: the first message is not
 *                   the header, a message has no trailing newline or is
 *                   empty, a varint is not minimal, an initiator got an
 *                   answer that is neither its proposal nor "na", or a
 *                   malformed "ls" response.
 *   GN_EFRAMESIZE   a length prefix above the configured max_msg_len.
 *   GN_ENEGOTIATION the initiator's proposals were all rejected; a lazy
 *                   initiator's protocol was rejected; the responder saw
 *                   more than max_rounds proposals; the responder got
 *                   garbage or EOF right after answering "na" (a lazy peer
 *                   that gave up, as rust-libp2p treats it).
 *   GN_EEOF         the peer closed before the negotiation finished.
 *   GN_ETIMEDOUT    gni_ms_expire() after the deadline.
 *   GN_ECALLBACK    the match callback returned a negative value.
 *   GN_ENOMEM       an allocation failed.
 */
#ifndef GNI_MULTISTREAM_H
#define GNI_MULTISTREAM_H

#include "golemnet/common.h"

/** The multistream-select 1.0 protocol id and header line (no newline). */
#define GNI_MS_PROTOCOL_ID "/multistream/1.0.0"
/** Default and bounds of gni_ms_config.max_msg_len (bytes incl. '\n'). */
#define GNI_MS_DEFAULT_MAX_MSG_LEN 1024u
#define GNI_MS_MIN_MAX_MSG_LEN 64u
#define GNI_MS_MAX_MAX_MSG_LEN 65536u
/** Default of gni_ms_config.max_rounds (proposals + ls a peer may send). */
#define GNI_MS_DEFAULT_MAX_ROUNDS 16u
/** Most protocol ids one gni_ms_config may list. */
#define GNI_MS_MAX_PROTOCOLS 1024u

/** Which side of the negotiation this object plays. */
typedef enum gni_ms_role {
    GNI_MS_INITIATOR = 0, /* dialer / stream opener: proposes */
    GNI_MS_RESPONDER = 1  /* listener / stream acceptor: answers */
} gni_ms_role;

/** Where a negotiation stands (gni_ms_get_status()). */
typedef enum gni_ms_status {
    /** Still negotiating: feed what the peer sends, drain what is pending. */
    GNI_MS_PENDING = 0,
    /**
     * Lazy initiator only: the last proposal was sent optimistically. The
     * application may write (after the pending negotiation bytes), while
     * received bytes must still go through gni_ms_feed() until the peer's
     * confirmation turns the status into SELECTED (or FAILED on "na").
     */
    GNI_MS_OPTIMISTIC = 1,
    /** Done: gni_ms_get_protocol() names the protocol. */
    GNI_MS_SELECTED = 2,
    /** Initiator with request_ls and no proposals: the list arrived. */
    GNI_MS_LISTED = 3,
    /** Failed: gni_ms_get_error() gives the code. */
    GNI_MS_FAILED = 4
} gni_ms_status;

/**
 * Responder match callback: decides whether the proposal is supported.
 *
 * @user_data: gni_ms_config.user_data. @proto: the proposed id, @len bytes,
 * NUL-terminated, never empty and free of '\n' and NUL; valid only during
 * the call. Returns 1 to select it (it is echoed back), 0 to answer "na", a
 * negative value to abort the negotiation with GN_ECALLBACK.
 * Thread context: inside gni_ms_feed(); must not call into this gni_ms.
 */
typedef int (*gni_ms_match_fn)(void *user_data, const char *proto, size_t len);

/**
 * Negotiation options. Fill with gni_ms_config_default() first, then set
 * the fields you need.
 */
typedef struct gni_ms_config {
    gni_ms_role role;
    /**
     * NUL-terminated protocol ids, @protocol_cnt of them (at most
     * GNI_MS_MAX_PROTOCOLS). Initiator: proposals, most preferred first.
     * Responder: the supported ids, matched exactly unless @match is set,
     * and the list sent in answer to "ls". Each id is 1..max_msg_len-1
     * bytes, contains no '\n' and is not "na" or "ls". Copied by
     * gni_ms_new(); the caller keeps ownership.
     */
    const char *const *protocols;
    size_t protocol_cnt;
    /** Largest message accepted from the peer, bytes incl. '\n' (default 1024). */
    size_t max_msg_len;
    /** Responder: most proposals/ls the peer may send (default 16). */
    size_t max_rounds;
    /** Negotiation timeout from gni_ms_new()'s @now; 0 = no deadline (default). */
    gn_time timeout;
    /** Initiator: send the last proposal optimistically ("V1Lazy"). Default false. */
    bool lazy;
    /** Initiator: send "ls" after the header and keep the answer. Default false. */
    bool request_ls;
    /** Responder: answer "ls" with the list (else "na"). Default true. */
    bool answer_ls;
    /** Responder: optional match callback (NULL = exact match on @protocols). */
    gni_ms_match_fn match;
    void *user_data;
} gni_ms_config;

typedef struct gni_ms gni_ms;

/**
 * Fills @cfg with the defaults for @role: no protocols, max_msg_len 1024,
 * max_rounds 16, no timeout, lazy false, request_ls false, answer_ls true,
 * no callback. @cfg must not be NULL.
 */
void gni_ms_config_default(gni_ms_config *cfg, gni_ms_role role);

/**
 * Creates a negotiation and queues its first output: the header, plus the
 * "ls" request and the first proposal for an initiator.
 *
 * @cfg: options (read during the call only). @now: current time, the
 * start of the optional timeout. @out: receives the object, owned by the
 * caller (gni_ms_free()); untouched on failure.
 * Returns 0; GN_EINVAL for a NULL argument, an unknown role, max_msg_len
 * outside [GNI_MS_MIN_MAX_MSG_LEN, GNI_MS_MAX_MAX_MSG_LEN], max_rounds 0,
 * too many protocols, an invalid protocol id, an initiator with no protocol
 * (unless request_ls), a responder with neither protocols nor a match
 * callback; GN_ENOMEM.
 * A lazy initiator with one protocol starts in GNI_MS_OPTIMISTIC.
 * Spec: connections/README.md "multistream-select" (header, proposal).
 */
int gni_ms_new(const gni_ms_config *cfg, gn_time now, gni_ms **out);

/** Frees @ms and everything it owns. NULL is allowed. */
void gni_ms_free(gni_ms *ms);

/**
 * Feeds bytes received from the peer.
 *
 * @in: @len bytes (NULL allowed when @len is 0), borrowed for the call.
 * @consumed: receives how many bytes were used; untouched on failure.
 * Consumption stops right after the message that completes the
 * negotiation: when the status becomes SELECTED or LISTED, the bytes from
 * @in + *@consumed on are application data (the leftover). In those states
 * (and with @len 0) a call consumes nothing and returns 0.
 * Returns 0, or a negative error (see the file comment), after which the
 * status is FAILED; answers queued for earlier messages stay pending. Called
 * in FAILED it returns the stored error again.
 * Spec: connections/README.md "multistream-select"; multistream-select
 * README "Listing".
 */
int gni_ms_feed(gni_ms *ms, const uint8_t *in, size_t len, size_t *consumed);

/**
 * Reports that the peer closed its sending side (EOF).
 * Returns 0 if the negotiation was already SELECTED or LISTED (nothing
 * changes); otherwise the status becomes FAILED and the return value is
 * GN_ENEGOTIATION for a responder whose last answer was "na" (the peer gave
 * up), the stored error if already FAILED, GN_EEOF in every other case.
 */
int gni_ms_feed_eof(gni_ms *ms);

/**
 * Moves pending output into @out's free space [last, end), advancing
 * @out->last. What does not fit stays queued for the next call.
 * Returns the number of bytes written (0 if nothing is pending or @out is
 * full); GN_EINVAL if @ms or @out is NULL. Never fails otherwise, and works
 * in every status (after a failure it returns what was queued before it).
 */
int gni_ms_drain(gni_ms *ms, gn_buf *out);

/** Bytes waiting for gni_ms_drain(). */
size_t gni_ms_pending(const gni_ms *ms);

/** Current status (see gni_ms_status). */
gni_ms_status gni_ms_get_status(const gni_ms *ms);

/** The failure code when FAILED, else 0. */
int gni_ms_get_error(const gni_ms *ms);

/**
 * The protocol selected (SELECTED) or optimistically chosen (OPTIMISTIC),
 * NUL-terminated and owned by @ms until gni_ms_free(); NULL otherwise.
 */
const char *gni_ms_get_protocol(const gni_ms *ms);

/**
 * Index in gni_ms_config.protocols of the protocol returned by
 * gni_ms_get_protocol(); GN_ENOTFOUND when there is none or a responder's
 * match callback accepted an id that is not in the list.
 */
int gni_ms_get_index(const gni_ms *ms);

/**
 * Initiator with request_ls: number of ids in the peer's "ls" answer (0
 * before it arrived, or if the peer answered "na"). At most
 * max_msg_len / 3 entries.
 */
size_t gni_ms_ls_count(const gni_ms *ms);

/**
 * Initiator with request_ls: entry @i of the peer's list as borrowed bytes
 * (valid until gni_ms_free(); no NUL terminator; never empty, no '\n').
 * Returns 0 and fills *@out; GN_ERANGE if @i >= gni_ms_ls_count().
 */
int gni_ms_ls_get(const gni_ms *ms, size_t i, gn_slice *out);

/**
 * The time at which gni_ms_expire() fails the negotiation:
 * GN_TIME_INFINITY without a timeout or once SELECTED / LISTED / FAILED.
 */
gn_time gni_ms_deadline(const gni_ms *ms);

/**
 * Expiry call: if @now has reached the deadline while PENDING or
 * OPTIMISTIC, fails with GN_ETIMEDOUT (returned). Otherwise returns 0 (or
 * the stored error if already FAILED).
 */
int gni_ms_expire(gni_ms *ms, gn_time now);

#endif /* GNI_MULTISTREAM_H */
