/*
 * golemnet - /libp2p/dcutr wire core: the HolePunch message (CONNECT with
 * the sender's addresses, SYNC), its bounded decode and its length-prefixed
 * encode. Sans-I/O: no syscalls, no loop. Internal.
 *
 * Spec: libp2p/specs relay/DCUtR.md "RPC messages" (a message is at most
 * 4 KiB, length prefix excluded; each is preceded by its length as an
 * unsigned varint).
 */
#ifndef GNI_DCUTR_MSG_H
#define GNI_DCUTR_MSG_H

#include "golemnet/multiaddr.h"

#include <stddef.h>
#include <stdint.h>

/** The protocol id. */
#define GNI_DCUTR_PROTOCOL_ID "/libp2p/dcutr"
/** Longest message accepted or sent, bytes, length prefix excluded (spec: 4 KiB). */
#define GNI_DCUTR_MSG_MAX 4096u
/** Most addresses a decoded message keeps (the rest are counted and dropped). */
#define GNI_DCUTR_ADDRS_MAX 16u
/** Longest encoded frame: a varint of GNI_DCUTR_MSG_MAX (2 bytes) and the message. */
#define GNI_DCUTR_FRAME_MAX (GNI_DCUTR_MSG_MAX + 2u)

/** HolePunch.Type; the values are the spec's. */
typedef enum gni_dcutr_type {
    GNI_DCUTR_CONNECT = 100,
    GNI_DCUTR_SYNC = 300
} gni_dcutr_type;

/** A decoded message; owns its addresses. */
typedef struct gni_dcutr_msg {
    gni_dcutr_type type;
    size_t naddrs;
    gn_multiaddr *addrs[GNI_DCUTR_ADDRS_MAX];
    /* ObsAddrs entries not kept: malformed multiaddrs, or past GNI_DCUTR_ADDRS_MAX */
    size_t nskipped;
} gni_dcutr_msg;

/**
 * Decodes one message of @len bytes (without its length prefix) into *@out,
 * which needs no set-up and must be cleared with gni_dcutr_msg_clear() on
 * success. An ObsAddrs entry that is not a valid binary multiaddr is
 * skipped (counted in nskipped), as are entries past the first
 * GNI_DCUTR_ADDRS_MAX valid ones. Errors (then *@out holds nothing):
 * GN_EINVAL (NULL @out, or NULL @in with a length), GN_EFRAMESIZE (@len >
 * GNI_DCUTR_MSG_MAX), GN_EPROTO (malformed protobuf, no type, or a type
 * other than CONNECT and SYNC), GN_ENOMEM.
 */
int gni_dcutr_msg_decode(const uint8_t *in, size_t len, gni_dcutr_msg *out);

/** Frees what @m owns and empties it. NULL is a no-op. */
void gni_dcutr_msg_clear(gni_dcutr_msg *m);

/**
 * Encodes a @type message with @naddrs addresses (binary multiaddr form,
 * in order; may be 0, @addrs then may be NULL) into @out (@cap bytes), its
 * varint length prefix first. *@out_len receives the frame's length.
 * Errors (nothing meaningful in @out): GN_EINVAL (NULL, an unknown @type,
 * more than GNI_DCUTR_ADDRS_MAX addresses or a NULL one), GN_ETOOBIG (the
 * message would exceed GNI_DCUTR_MSG_MAX), GN_ENOSPC (@cap too small;
 * GNI_DCUTR_FRAME_MAX always suffices), GN_ENOMEM.
 */
int gni_dcutr_msg_encode(gni_dcutr_type type, const gn_multiaddr *const *addrs, size_t naddrs,
                         uint8_t *out, size_t cap, size_t *out_len);

/** "CONNECT", "SYNC" or "?" for logs. */
const char *gni_dcutr_type_name(int type);

#endif /* GNI_DCUTR_MSG_H */
