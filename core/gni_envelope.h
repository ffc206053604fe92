/*
 * Signed envelopes and signed peer records: libp2p/specs
 * RFC/0002-signed-envelopes.md and RFC/0003-routing-records.md.
 *
 * A signed envelope carries a payload of a given type, signed with the
 * sender's identity key (any libp2p key type) over a domain string. The
 * circuit relay v2 vouchers (domain "libp2p-relay-rsvp", type 03 02) and
 * identify's signed peer records (domain "libp2p-peer-record", type 03 01)
 * are envelopes. Sans-I/O: bytes in, bytes out, no clock (a record's seq is
 * the caller's), callable from any thread.
 */
#ifndef GNI_ENVELOPE_H
#define GNI_ENVELOPE_H

#include "golemnet/identity.h"
#include "golemnet/multiaddr.h"

#include <stddef.h>
#include <stdint.h>

/** RFC 0003: the signed peer record's domain and payload type. */
#define GNI_PEER_RECORD_DOMAIN "libp2p-peer-record"
extern const uint8_t gni_peer_record_type[2];
#define GNI_PEER_RECORD_TYPE_LEN 2u

/** Most bytes an envelope may have when opened (a 64-address peer record
 * signed with an RSA-8192 key stays well under it). */
#define GNI_ENVELOPE_MAX (16u * 1024u)

/** Most addresses a peer record may carry (as identify's listenAddrs). */
#define GNI_PEER_RECORD_MAX_ADDRS 64u

/**
 * Signs @payload (@payload_len bytes) into a signed envelope with @domain
 * (NUL-terminated) and @type (@type_len bytes), signed by @id (any key type).
 * On success *@out is a new buffer (release with gn_free()) of *@out_len
 * bytes. Errors: GN_EINVAL (NULL where a pointer is needed), GN_ENOMEM,
 * GN_EINTERNAL (the key could not be encoded or sign).
 * Spec: RFC/0002 "Signature Production / Verification", "Wire Format".
 */
int gni_envelope_seal(const gn_identity *id, const char *domain, const uint8_t *type,
                      size_t type_len, const uint8_t *payload, size_t payload_len,
                      uint8_t **out, size_t *out_len);

/** An opened envelope: what gni_envelope_open() found. */
typedef struct gni_envelope {
    gn_peer_id signer;    /* derived from the envelope's public key */
    uint8_t *payload;     /* owned: gni_envelope_clear() releases it */
    size_t payload_len;
} gni_envelope;

/**
 * Parses the envelope @env (@len bytes) and checks it: every field present,
 * the payload type equal to @type (@type_len bytes), a well-formed public
 * key of a supported type, and the signature over @domain, type and payload
 * valid for that key. Fills *@out (call gni_envelope_clear() after a 0
 * return; nothing to release after an error).
 * Errors: GN_EINVAL (NULL @env, @domain, @out or @type with @type_len),
 * GN_EPROTO (empty, over GNI_ENVELOPE_MAX, not an envelope, a missing field,
 * another payload type), GN_EBADKEY (malformed or unsupported key),
 * GN_EBADSIG (the signature does not verify), GN_ENOMEM.
 */
int gni_envelope_open(const uint8_t *env, size_t len, const char *domain, const uint8_t *type,
                      size_t type_len, gni_envelope *out);

/** Releases what gni_envelope_open() put in @e (NULL-safe, idempotent). */
void gni_envelope_clear(gni_envelope *e);

/**
 * Encodes an RFC 0003 PeerRecord payload: @peer, @seq (larger means newer)
 * and @addr_cnt (<= GNI_PEER_RECORD_MAX_ADDRS) addresses. *@out is a new
 * buffer (gn_free()) of *@out_len bytes.
 * Errors: GN_EINVAL (NULL pointers, empty peer, too many addresses), GN_ENOMEM.
 */
int gni_peer_record_encode(const gn_peer_id *peer, uint64_t seq,
                           const gn_multiaddr *const *addrs, size_t addr_cnt, uint8_t **out,
                           size_t *out_len);

/** A decoded PeerRecord; gni_peer_record_clear() releases the addresses. */
typedef struct gni_peer_record {
    gn_peer_id peer;
    uint64_t seq;
    gn_multiaddr **addrs; /* the addresses that parsed, in order */
    size_t addr_cnt;
} gni_peer_record;

/**
 * Decodes a PeerRecord payload (@len bytes). Addresses that do not parse
 * are skipped; more than GNI_PEER_RECORD_MAX_ADDRS is an error.
 * Errors: GN_EINVAL (NULL pointers), GN_EPROTO (not a PeerRecord, no or a
 * malformed peer_id), GN_ETOOBIG (too many addresses), GN_ENOMEM.
 */
int gni_peer_record_decode(const uint8_t *in, size_t len, gni_peer_record *out);

/** Releases what gni_peer_record_decode() put in @r (NULL-safe, idempotent). */
void gni_peer_record_clear(gni_peer_record *r);

/**
 * A memo of envelopes already verified, for peers that send the same record
 * on every connection: BLAKE2b-256 of (signer's peer ID bytes, envelope
 * bytes) in GNI_ENVELOPE_MEMO_SLOTS slots (2 KiB), the oldest replaced
 * first. The same bytes verify the same way, so a hit skips the key and
 * signature checks (an Ed25519 verification is most of an identify
 * exchange's CPU; RSA's more). Zero it to initialize; owned by one thread.
 */
#define GNI_ENVELOPE_MEMO_SLOTS 64u
typedef struct gni_envelope_memo {
    uint8_t hash[GNI_ENVELOPE_MEMO_SLOTS][32];
    unsigned used; /* slots filled, up to GNI_ENVELOPE_MEMO_SLOTS */
    unsigned next; /* the slot the next entry replaces once all are used */
} gni_envelope_memo;

/**
 * Opens a signed peer record envelope (domain GNI_PEER_RECORD_DOMAIN, type
 * 03 01) and decodes its record, which must name the envelope's signer
 * (go-libp2p's ConsumePeerRecord). When @peer is not NULL the signer must
 * be @peer. Errors: as gni_envelope_open() and gni_peer_record_decode(),
 * and GN_EPEERID (the signer is not @peer, or the record names another peer).
 * With @memo (may be NULL) and @peer: an envelope of @peer found in @memo is
 * opened without checking its signature again, and one that verifies is
 * added to it.
 */
int gni_peer_record_open(const uint8_t *env, size_t len, const gn_peer_id *peer,
                         gni_envelope_memo *memo, gni_peer_record *out);

#endif /* GNI_ENVELOPE_H */
