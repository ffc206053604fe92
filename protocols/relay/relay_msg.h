/*
 * golemnet - circuit relay v2 wire core (private to the library).
 *
 * The hop and stop protocol messages (protocols/proto/circuit.proto,
 * compiled by protoc-c) in an owned, validated C form, their encoding with
 * the unsigned-varint length prefix libp2p puts before protobuf messages on
 * a stream, and the reservation voucher (a signed envelope). No I/O and no
 * global state: the hop service (relay_layer.c) and the circuit transport
 * (layers/transport/circuit) sit above it. On streams, read messages with
 * core's gni_lp_reader (core/gni.h) set to GNI_RELAY_MSG_MAX: it stops after
 * one message, so a relayed connection's first bytes stay with the caller.
 *
 * Spec: libp2p/specs relay/circuit-v2.md ("Hop Protocol", "Stop Protocol",
 * "Reservation Vouchers", "Protobuf"); RFC/0002-signed-envelopes.md.
 * docs/relay.md has what is decided where the spec is silent.
 *
 * Thread context: pure functions; a gni_relay_msg is used by one thread at
 * a time. Memory comes from gn_malloc and friends.
 */
#ifndef GNI_RELAY_MSG_H
#define GNI_RELAY_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "golemnet/identity.h"
#include "golemnet/multiaddr.h"
#include "gni_envelope.h" /* the vouchers are signed envelopes (core) */

#define GNI_RELAY_HOP_ID "/libp2p/circuit/relay/0.2.0/hop"
#define GNI_RELAY_STOP_ID "/libp2p/circuit/relay/0.2.0/stop"
/** Longest HopMessage/StopMessage body accepted, bytes (go-libp2p: 4096). */
#define GNI_RELAY_MSG_MAX 4096
/**
 * Most addresses kept per address list (Peer.addrs, Reservation.addrs);
 * decode keeps the first ones that parse and ignores the rest.
 */
#define GNI_RELAY_MAX_ADDRS 16

/** The reservation voucher's signed-envelope domain and payload type. */
#define GNI_RELAY_VOUCHER_DOMAIN "libp2p-relay-rsvp"
/*
 * The payload type bytes: the spec names multicodec 0x0302; go-libp2p and
 * js-libp2p write the two bytes 03 02 (not its varint, 82 06), and so do we.
 */
#define GNI_RELAY_VOUCHER_TYPE_LEN 2
extern const uint8_t gni_relay_voucher_type[GNI_RELAY_VOUCHER_TYPE_LEN];
/**
 * Longest voucher envelope accepted by gni_relay_voucher_open(), bytes: an
 * RSA-8192 relay's key and signature take about 2.1 kB (issue 17; was 1024).
 */
#define GNI_RELAY_VOUCHER_MAX 2560

/** Status codes (circuit.proto Status). */
typedef enum gni_relay_status {
    GNI_RELAY_OK = 100,
    GNI_RELAY_RESERVATION_REFUSED = 200,
    GNI_RELAY_RESOURCE_LIMIT_EXCEEDED = 201,
    GNI_RELAY_PERMISSION_DENIED = 202,
    GNI_RELAY_CONNECTION_FAILED = 203,
    GNI_RELAY_NO_RESERVATION = 204,
    GNI_RELAY_MALFORMED_MESSAGE = 400,
    GNI_RELAY_UNEXPECTED_MESSAGE = 401
} gni_relay_status;

/** Message types: HopMessage.Type, StopMessage.Type. */
typedef enum gni_relay_type {
    GNI_RELAY_HOP_RESERVE = 0,
    GNI_RELAY_HOP_CONNECT = 1,
    GNI_RELAY_HOP_STATUS = 2,
    GNI_RELAY_STOP_CONNECT = 0,
    GNI_RELAY_STOP_STATUS = 1
} gni_relay_type;

/**
 * One HopMessage or StopMessage. Zero-initialise before filling it for
 * encode; decode fills it and gni_relay_msg_clear() frees what it owns.
 */
typedef struct gni_relay_msg {
    bool stop;  /* a StopMessage (else a HopMessage) */
    int type;   /* gni_relay_type value */
    bool has_peer;
    gn_peer_id peer;
    size_t npeer_addrs;
    gn_multiaddr *peer_addrs[GNI_RELAY_MAX_ADDRS]; /* owned */
    bool has_reservation;                           /* HopMessage only */
    uint64_t rsv_expire;                            /* unix seconds */
    size_t nrsv_addrs;
    gn_multiaddr *rsv_addrs[GNI_RELAY_MAX_ADDRS]; /* owned */
    uint8_t *voucher;                             /* owned: the signed envelope bytes */
    size_t voucher_len;
    bool has_limit;
    uint32_t limit_duration; /* seconds, 0 = none */
    uint64_t limit_data;     /* bytes per direction, 0 = none */
    int status;              /* gni_relay_status, 0 = absent */
} gni_relay_msg;

/**
 * Decodes one message body @in (@len bytes, no length prefix) into *@out
 * (overwritten, not freed first). @stop picks StopMessage or HopMessage.
 * Accepted: a type within the message's enum (a missing type is refused:
 * the spec requires senders to set it); a Peer, when present, with an id
 * that is a valid peer ID; any status value (unknown ones are kept, the
 * caller treats them as failures); a reservation in a StopMessage is not a
 * field there and is skipped as unknown. Addresses that do not parse as
 * binary multiaddrs, and those beyond GNI_RELAY_MAX_ADDRS, are skipped
 * (the spec's "ignore"). A voucher is kept as bytes, not checked here.
 * Errors: GN_EPROTO (not a well-formed message, @len above
 * GNI_RELAY_MSG_MAX, missing or unknown type, Peer without a valid id),
 * GN_ENOMEM, GN_EINVAL (NULL @out, or NULL @in with a length). On error
 * *@out is zeroed and owns nothing.
 */
int gni_relay_msg_decode(bool stop, const uint8_t *in, size_t len, gni_relay_msg *out);

/** Frees what @m owns (addresses, voucher) and zeroes it. NULL is a no-op. */
void gni_relay_msg_clear(gni_relay_msg *m);

/**
 * Encodes @m, with its unsigned-varint length prefix, into a new buffer
 * (*@out, freed with gn_free; *@out_len bytes). Fields are written when
 * their has_ flag (or count, voucher pointer, nonzero status) says so.
 * Errors: GN_EINVAL (NULL arguments, type outside the message's enum,
 * address counts above GNI_RELAY_MAX_ADDRS, NULL address, a reservation
 * in a StopMessage), GN_ETOOBIG (body longer than GNI_RELAY_MSG_MAX),
 * GN_ENOMEM. *@out is untouched on error.
 */
int gni_relay_msg_encode(const gni_relay_msg *m, uint8_t **out, size_t *out_len);

/** The spec's name of @status ("NO_RESERVATION"), "UNKNOWN" otherwise; static. */
const char *gni_relay_status_name(int status);

/**
 * The gn_err a failed relay request reports for a status:
 *   OK                      -> 0
 *   RESERVATION_REFUSED     -> GN_ECONNREFUSED (the relay turned us down)
 *   RESOURCE_LIMIT_EXCEEDED -> GN_ELIMIT
 *   PERMISSION_DENIED       -> GN_EACCES
 *   CONNECTION_FAILED       -> GN_EUNREACHABLE (the relay could not reach
 *                              the target)
 *   NO_RESERVATION          -> GN_ENOROUTE (the target holds no
 *                              reservation: no route through this relay)
 *   MALFORMED_MESSAGE, UNEXPECTED_MESSAGE, 0 (absent) and unknown codes
 *                           -> GN_EPROTO
 */
int gni_relay_status_err(int status);

/**
 * Makes the reservation voucher for @peer: a signed envelope (domain
 * GNI_RELAY_VOUCHER_DOMAIN, payload type gni_relay_voucher_type) whose
 * payload is the canonical Voucher{relay: @relay's peer ID, peer, expiration:
 * @expire (unix seconds)}, signed with @relay's key. Writes a new buffer
 * (*@out, gn_free; *@out_len bytes). Errors: GN_EINVAL (NULL arguments,
 * empty peer ID), GN_ENOMEM. Spec: circuit-v2.md "Reservation Vouchers".
 */
int gni_relay_voucher_make(const gn_identity *relay, const gn_peer_id *peer, uint64_t expire,
                           uint8_t **out, size_t *out_len);

/**
 * Opens the voucher envelope @env (@len bytes) issued by @relay: checks the
 * domain-separated signature with the envelope's public key, that the key
 * is @relay's (its peer ID derived from the key bytes) and that the payload
 * names @relay; returns the reserving peer in *@peer and the expiration
 * (unix seconds) in *@expire (either may be NULL). Expiry is not checked
 * against a clock (the caller has one).
 * Errors: GN_EBADSIG (signature does not verify), GN_EPEERID (key or
 * payload relay is not @relay), GN_EPROTO (not a well-formed envelope or
 * voucher, wrong payload type, missing field, @len above
 * GNI_RELAY_VOUCHER_MAX), GN_EBADKEY (a malformed or unsupported key; every
 * libp2p key type verifies since issue 17), GN_ENOMEM, GN_EINVAL (NULL @env or @relay).
 */
int gni_relay_voucher_open(const uint8_t *env, size_t len, const gn_peer_id *relay,
                           gn_peer_id *peer, uint64_t *expire);

/* gni_envelope_seal() (the envelope itself) is core/gni_envelope.h. */

#endif /* GNI_RELAY_MSG_H */
