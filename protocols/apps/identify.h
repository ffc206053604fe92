/*
 * libp2p identify (internal): /ipfs/id/1.0.0 and /ipfs/id/push/1.0.0.
 *
 * Sans-I/O core (identify.c): encodes an Identify protobuf from a
 * gni_identify_info and decodes one, with bounds, into a
 * gni_identify_result that owns copies of everything.
 *
 * Wire form. The spec (libp2p/specs identify/README.md) only says the
 * responder "returns an Identify message and closes the stream". Every
 * current implementation frames it: js-libp2p (@libp2p/identify, through
 * it-protobuf-stream) and go-libp2p write an unsigned-varint length prefix
 * followed by the protobuf, and read up to 10 such frames (go may split the
 * signed peer record into a second frame), merging them. So:
 *  - gni_identify_encode() writes one varint-length-prefixed message;
 *  - gni_identify_decode() takes everything read until EOF and accepts a
 *    sequence of 1..GNI_IDENTIFY_MAX_FRAMES length-prefixed messages
 *    (merged as protobuf merges concatenated messages) or, failing that, a
 *    bare protobuf without prefix.
 *
 * Stream drivers (identify_stream.c): gni_identify_serve() / _push() write
 * the message and close; gni_identify_request() / _recv_push() read until
 * EOF, decode, call back and close.
 *
 * Thread context: the core is pure (any thread, no shared state); the
 * drivers are loop-thread only.
 */
#ifndef GNI_IDENTIFY_H
#define GNI_IDENTIFY_H

#include "apps.h"

#include "gni_envelope.h"
#include "golemnet/crypto.h"
#include "golemnet/identity.h"
#include "golemnet/multiaddr.h"

/** protocolVersion we send ("the family of protocols", identify spec). */
#define GNI_IDENTIFY_PROTOCOL_VERSION "ipfs/0.1.0"
/** Longest accepted input: all frames and prefixes together, bytes. */
#define GNI_IDENTIFY_MAX_MSG (64u * 1024u)
/** Most listenAddrs entries accepted. */
#define GNI_IDENTIFY_MAX_ADDRS 64u
/** Most protocols entries accepted. */
#define GNI_IDENTIFY_MAX_PROTOCOLS 256u
/** Most length-prefixed frames merged (go-libp2p's and js-libp2p's bound). */
#define GNI_IDENTIFY_MAX_FRAMES 10u
/** Default request timeout used when 0 is passed to the drivers. */
#define GNI_IDENTIFY_TIMEOUT (30 * GN_S)

/**
 * What we tell a peer. Everything is borrowed for the duration of the call
 * that takes it (the drivers copy what they need before returning).
 */
typedef struct gni_identify_info {
    /** NUL-terminated; NULL: GNI_IDENTIFY_PROTOCOL_VERSION. */
    const char *protocol_version;
    /** NUL-terminated; NULL: field omitted. */
    const char *agent_version;
    /** Our libp2p PublicKey protobuf (gn_identity_encode_public()); len 0: omitted. */
    gn_slice public_key;
    /** @listen_addr_cnt (<= GNI_IDENTIFY_MAX_ADDRS) addresses, sent in binary form. */
    const gn_multiaddr *const *listen_addrs;
    size_t listen_addr_cnt;
    /**
     * The address we see the peer at (the connection's remote address).
     * NULL: the drivers fill it from gn_stream_addr(GN_ADDR_REMOTE) when the
     * stream knows it; the core omits the field.
     */
    const gn_multiaddr *observed_addr;
    /** @protocol_cnt (<= GNI_IDENTIFY_MAX_PROTOCOLS) NUL-terminated ids, each < GN_PROTOCOL_ID_MAX bytes. */
    const char *const *protocols;
    size_t protocol_cnt;
    /**
     * gni_identify_serve() only: half-close this long (ns) after writing the
     * reply; 0: right away. js-libp2p 3.x fails the exchange when our reply
     * and our FIN reach it in the same read as the protocol confirmation
     * (its multistream-select pushes the bytes read past the confirmation
     * back onto a stream the FIN already closed: "Cannot push data onto a
     * stream that is closed"); a FIN sent a little later lands in a later
     * read. The node uses GNI_IDENTIFY_FIN_DELAY.
     */
    gn_time fin_delay;
    /**
     * A signed peer record envelope to send as signedPeerRecord (RFC 0002,
     * 0003; gni_envelope_seal() of gni_peer_record_encode()); len 0: omitted.
     */
    gn_slice signed_peer_record;
} gni_identify_info;

/** The node's gni_identify_info.fin_delay. */
#define GNI_IDENTIFY_FIN_DELAY (100 * GN_MS)

/**
 * What a peer told us. Every pointer is owned by the result and released
 * by gni_identify_result_free(). Absent string fields are NULL.
 */
typedef struct gni_identify_result {
    char *protocol_version;
    char *agent_version;
    /** The PublicKey protobuf as received (NULL, 0 when absent). */
    uint8_t *public_key;
    size_t public_key_len;
    /** The key's type (valid when public_key is set). */
    gn_key_type key_type;
    /** Peer ID derived from public_key (len 0 when absent). */
    gn_peer_id peer;
    /** Listen addresses that parsed; entries that did not are skipped. */
    gn_multiaddr **listen_addrs;
    size_t listen_addr_cnt;
    /** NULL when absent or unparsable. */
    gn_multiaddr *observed_addr;
    char **protocols;
    size_t protocol_cnt;
    /** A signedPeerRecord was present. */
    bool has_signed_peer_record;
    /** The signedPeerRecord envelope as received (NULL, 0: absent or over GNI_ENVELOPE_MAX). */
    uint8_t *signed_peer_record;
    size_t signed_peer_record_len;
    /**
     * Set by gni_identify_check_record() when the envelope verified (issue
     * 17): payload type 03 01, signed by its key (any key type) for
     * "libp2p-peer-record", that key being the peer's (from public_key,
     * else the expected peer), the record naming the peer. False until
     * then; gni_identify_decode() does not check it, and a bad record does
     * not fail the decode.
     */
    bool signed_peer_record_ok;
    /**
     * When signed_peer_record_ok: the record's addresses that parsed (at
     * most GNI_PEER_RECORD_MAX_ADDRS; certified by the peer's key, unlike
     * listen_addrs) and its seq. NULL, 0 otherwise.
     */
    gn_multiaddr **record_addrs;
    size_t record_addr_cnt;
    uint64_t record_seq;
} gni_identify_result;

/**
 * Bytes gni_identify_encode() writes for @info (prefix included), or
 * GN_EINVAL / GN_ETOOBIG as gni_identify_encode().
 */
long gni_identify_encoded_len(const gni_identify_info *info);

/**
 * Appends the varint-length-prefixed Identify message for @info at
 * @out->last. Fields are written in field-number order (protobuf-c), so the
 * output is deterministic. Returns the number of bytes written.
 * Errors: GN_EINVAL (NULL args, too many addresses or protocols, a protocol
 * id of GN_PROTOCOL_ID_MAX bytes or more), GN_ETOOBIG (the message would
 * exceed GNI_IDENTIFY_MAX_MSG), GN_ENOSPC (@out has too little room;
 * nothing written), GN_ENOMEM.
 * Spec: identify/README.md "The Identify Message".
 */
int gni_identify_encode(const gni_identify_info *info, gn_buf *out);

/**
 * Decodes @len bytes (everything the peer sent before EOF) into a new
 * result in *@out (caller frees with gni_identify_result_free()).
 *
 * @expected: when not NULL and the message carries a public key, the key's
 * peer ID must equal it. @require_key: a missing public key is an error
 * (identify replies must carry one; pushes may be partial).
 *
 * Bounds are checked on the wire bytes before anything is allocated.
 * Errors: GN_EFRAMESIZE (@len > GNI_IDENTIFY_MAX_MSG), GN_EPARSE (neither
 * framed nor bare protobuf, or more than GNI_IDENTIFY_MAX_FRAMES frames),
 * GN_ETOOBIG (more than GNI_IDENTIFY_MAX_ADDRS listen addresses or
 * GNI_IDENTIFY_MAX_PROTOCOLS protocols, or a protocol id of
 * GN_PROTOCOL_ID_MAX bytes or more), GN_EPROTO (public key missing while
 * @require_key), GN_EBADKEY (malformed public key), GN_EPEERID (key does
 * not match @expected), GN_ENOMEM.
 * Spec: identify/README.md; framing as js-libp2p/go-libp2p (see above).
 */
int gni_identify_decode(const uint8_t *in, size_t len, const gn_peer_id *expected,
                        bool require_key, gni_identify_result **out);

/** Frees @r and everything it owns. NULL is a no-op. */
void gni_identify_result_free(gni_identify_result *r);

/**
 * Verifies @r's signedPeerRecord (RFC 0002/0003) and, when it holds, sets
 * signed_peer_record_ok and fills record_addrs, record_addr_cnt and
 * record_seq. The key must be @r's public key, or @expected's when @r has
 * none. @memo (may be NULL): envelopes of that peer verified before (the
 * same bytes) skip the signature check; new ones are added. Loop thread of
 * @memo's owner. Returns 0 (also when already verified), GN_ENOTFOUND (no
 * record), GN_EPROTO (no key to check it with, not an envelope or record,
 * over GNI_ENVELOPE_MAX), GN_EBADKEY, GN_EBADSIG, GN_EPEERID (signed by or
 * naming another peer), GN_ETOOBIG (over GNI_PEER_RECORD_MAX_ADDRS
 * addresses), GN_ENOMEM, GN_EINVAL (NULL @r).
 */
int gni_identify_check_record(gni_identify_result *r, const gn_peer_id *expected,
                              gni_envelope_memo *memo);

/* ---- stream drivers (identify_stream.c) ---- */

/**
 * Identify result callback (loop thread, exactly once). @status 0 and @res
 * (ownership passes to the callee: free it with gni_identify_result_free()),
 * or a negative code and @res NULL: the decode errors above, GN_EFRAMESIZE
 * (the peer sent more than GNI_IDENTIFY_MAX_MSG), GN_ETIMEDOUT, or the
 * stream's error (GN_ECONNRESET, GN_ESTREAMRESET, ...). The stream is
 * already closed (or being closed) by the driver.
 */
typedef void (*gni_identify_cb)(void *arg, int status, gni_identify_result *res);

/**
 * Responder side of /ipfs/id/1.0.0: writes our Identify message (observed
 * address filled from the stream's remote address when @info has none),
 * half-closes (@info->fin_delay later, right away when 0), and closes @s
 * once the write completed and the FIN is queued. Input from the peer is
 * ignored. @info is copied before the call returns.
 * On success the driver owns @s; @cb (may be NULL) runs once with 0 or the
 * write's error. Errors (the caller still owns @s, @cb does not run):
 * the gni_identify_encode() errors, the stream's write error (GN_ECLOSED,
 * GN_EPIPE, ...).
 */
int gni_identify_serve(gn_stream *s, const gni_identify_info *info, gni_app_done_cb cb,
                       void *arg);

/**
 * Initiator side of /ipfs/id/push/1.0.0: the same as gni_identify_serve()
 * on a stream we opened (push the message, half-close, close).
 */
int gni_identify_push(gn_stream *s, const gni_identify_info *info, gni_app_done_cb cb,
                      void *arg);

/**
 * Initiator side of /ipfs/id/1.0.0: reads until EOF (at most
 * GNI_IDENTIFY_MAX_MSG bytes; more resets the stream with GN_EFRAMESIZE),
 * decodes with the key required, closes @s and calls @cb. A stream error
 * after a complete reply still delivers that reply (status 0).
 * @expected: the peer ID the public key must match; NULL: asked from the
 * stream (GN_QUERY_REMOTE_PEER_ID). @timeout: ns, 0 = GNI_IDENTIFY_TIMEOUT.
 * On success the driver owns @s. Errors (the caller still owns @s, @cb does
 * not run): GN_EINVAL (NULL @s or @cb, or no @expected and the stream does
 * not know its remote peer), GN_ENOMEM, GN_ECLOSED.
 */
int gni_identify_request(gn_stream *s, const gn_peer_id *expected, gn_time timeout,
                         gni_identify_cb cb, void *arg);

/**
 * Responder side of /ipfs/id/push/1.0.0: as gni_identify_request() but the
 * public key may be absent (a partial update). When present it must match
 * @expected (or the stream's remote peer; when neither is known the key is
 * not checked and res->peer says whose it is).
 */
int gni_identify_recv_push(gn_stream *s, const gn_peer_id *expected, gn_time timeout,
                           gni_identify_cb cb, void *arg);

#endif /* GNI_IDENTIFY_H */
