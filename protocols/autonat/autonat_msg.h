/*
 * golemnet - /libp2p/autonat/1.0.0 wire core (private to the library).
 *
 * The AutoNAT v1 Message (protocols/proto/autonat.proto, compiled by
 * protoc-c), carried in one frame per message: an unsigned varint length
 * followed by that many bytes of Message (the framing is read with
 * gni_lp_reader, core/gni.h). This file turns a frame's body into a
 * validated plain C form (gni_autonat_msg) and builds the two messages
 * golemnet sends, length prefix included. No I/O, no global state.
 *
 * Spec: libp2p/specs autonat/autonat-v1.md "RPC messages".
 *
 * Bounds: a body is at most GNI_AUTONAT_MAX_MSG_LEN bytes (the framing
 * refuses longer ones before allocating). A Dial keeps at most
 * GNI_AUTONAT_MAX_ADDRS addresses: the first ones that parse; the rest,
 * and addresses golemnet cannot parse (protocols it does not know), are
 * counted in addrs_skipped and ignored, so a peer with many addresses is
 * still answered. statusText is cut at GNI_AUTONAT_MAX_TEXT bytes and
 * bytes outside printable ASCII become '?'. A response address that does
 * not parse is dropped (addr NULL, addr_bad set).
 *
 * Errors (negative gn_err codes):
 *   GN_EBADFRAME  the body is not a well-formed protobuf Message
 *   GN_EPROTO     a well-formed Message that breaks the spec: no or an
 *                 unknown type; a DIAL without dial.peer or with a peer id
 *                 that is not a valid peer ID; a DIAL_RESPONSE without
 *                 dialResponse or status, or with an unknown status
 *   GN_ETOOBIG    a body longer than GNI_AUTONAT_MAX_MSG_LEN
 *   GN_ENOMEM     allocation failed
 *   GN_EINVAL     bad arguments
 *   GN_ENOSPC     encoder output buffer too small
 *
 * Thread context: pure functions. Memory comes from gn_malloc.
 */
#ifndef GNI_AUTONAT_MSG_H
#define GNI_AUTONAT_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "golemnet/identity.h"
#include "golemnet/multiaddr.h"

/** The protocol id. */
#define GNI_AUTONAT_PROTOCOL_ID "/libp2p/autonat/1.0.0"
/**
 * Longest message body accepted, bytes. go-libp2p's AutoNAT reads at most
 * 4096 bytes, js-libp2p 8192; golemnet sends at most 16 addresses, well
 * under either, and accepts the larger.
 */
#define GNI_AUTONAT_MAX_MSG_LEN 8192u
/** Most addresses a decoded Dial keeps, and an encoded Dial carries. */
#define GNI_AUTONAT_MAX_ADDRS 16u
/** Longest statusText kept or sent, bytes. */
#define GNI_AUTONAT_MAX_TEXT 256u
/** Room an encoded message needs at most: prefix + body. */
#define GNI_AUTONAT_FRAME_MAX (10u + GNI_AUTONAT_MAX_MSG_LEN)

/** Message.MessageType. */
typedef enum gni_autonat_type { GNI_AUTONAT_DIAL = 0, GNI_AUTONAT_DIAL_RESPONSE = 1 } gni_autonat_type;

/** Message.ResponseStatus (the wire values). */
typedef enum gni_autonat_status {
    GNI_AUTONAT_OK = 0,
    GNI_AUTONAT_E_DIAL_ERROR = 100,
    GNI_AUTONAT_E_DIAL_REFUSED = 101,
    GNI_AUTONAT_E_BAD_REQUEST = 200,
    GNI_AUTONAT_E_INTERNAL_ERROR = 300
} gni_autonat_status;

/** A decoded message; release with gni_autonat_msg_fini(). */
typedef struct gni_autonat_msg {
    gni_autonat_type type;
    /* DIAL: dial.peer */
    bool has_peer_id;
    gn_peer_id peer_id;
    gn_multiaddr *addrs[GNI_AUTONAT_MAX_ADDRS]; /* owned, addr_cnt of them */
    size_t addr_cnt;
    size_t addrs_skipped; /* beyond the bound, or not parseable */
    /* DIAL_RESPONSE: dialResponse */
    gni_autonat_status status;
    char status_text[GNI_AUTONAT_MAX_TEXT + 1]; /* "" when absent */
    gn_multiaddr *addr;                         /* owned; NULL when absent or bad */
    bool addr_bad;                              /* present but not parseable */
} gni_autonat_msg;

/** Short name of a status ("OK", "E_DIAL_ERROR", ...; "?" for others). */
const char *gni_autonat_status_name(int status);

/**
 * Decodes the body @in (@len bytes, no length prefix) into *@out, which
 * the function fully initialises (also on failure: then it holds nothing
 * and need not be finalised). Errors as in the file header.
 */
int gni_autonat_decode(const uint8_t *in, size_t len, gni_autonat_msg *out);

/** Frees what @m owns and zeroes it. NULL is a no-op. */
void gni_autonat_msg_fini(gni_autonat_msg *m);

/**
 * Encodes a DIAL for @peer with @n addresses (at most
 * GNI_AUTONAT_MAX_ADDRS, none NULL) into @out (@cap bytes), length prefix
 * included; *@out_len receives the frame's length. Errors: GN_EINVAL (NULL,
 * too many addresses), GN_ENOSPC (@cap too small), GN_ENOMEM.
 */
int gni_autonat_encode_dial(const gn_peer_id *peer, const gn_multiaddr *const *addrs, size_t n,
                            uint8_t *out, size_t cap, size_t *out_len);

/**
 * Encodes a DIAL_RESPONSE with @status, @text (NUL-terminated, NULL or ""
 * for none; cut at GNI_AUTONAT_MAX_TEXT bytes) and @addr (NULL for none)
 * into @out as above. Errors: GN_EINVAL (NULL @out, unknown status),
 * GN_ENOSPC.
 */
int gni_autonat_encode_response(gni_autonat_status status, const char *text,
                                const gn_multiaddr *addr, uint8_t *out, size_t cap,
                                size_t *out_len);

#endif /* GNI_AUTONAT_MSG_H */
