/*
 * golemnet - /ipfs/kad/1.0.0 wire core (private to the library).
 *
 * The Kademlia RPC message: a protobuf (protocols/proto/kad.proto, compiled
 * by protoc-c) carried in frames, each an unsigned varint length
 * (multiformats unsigned-varint: minimal, at most 9 bytes) followed by that
 * many bytes of Message. This file turns frames into an owned, validated C
 * form (gni_kad_msg) and back. It does no I/O and keeps no global state:
 * the stream drivers and the protocol and router components sit above it.
 *
 * Spec: libp2p/specs kad-dht/README.md "RPC messages"; framing per
 * multiformats/unsigned-varint. docs/protocols/kad.md has the wire format as
 * implemented, every bound and its default.
 *
 * Bounds (gni_kad_limits): every length and count read from the wire is
 * checked against a configured maximum before storage is allocated for it.
 * Repeated fields are counted by a wire scan before protobuf-c unpacks the
 * message, so a frame within max_msg_len cannot make the decoder allocate
 * more than a small multiple of the configured peer and address counts.
 *
 * Errors (negative gn_err codes, include/golemnet/err.h):
 *   GN_EFRAMESIZE  a frame length above max_msg_len (refused before any
 *                  storage is allocated for the body)
 *   GN_EBADFRAME   a length prefix that is not minimal or longer than 9
 *                  bytes; a body that is not a well-formed protobuf Message
 *   GN_EPROTO      a well-formed Message that breaks the spec: unknown
 *                  message type, peer ID that is not a valid multihash,
 *                  address that is not a parseable binary multiaddr; or a
 *                  stream that ends inside a frame
 *   GN_ETOOBIG     a count or length above its bound: closer peers, provider
 *                  peers, addresses per peer, key or record key length,
 *                  timeReceived length, fields per (sub)message
 *   GN_ENOMEM      allocation failed
 *   GN_EINVAL      bad arguments (also: a message given to the encoder that
 *                  would not pass its own decoder's checks)
 *   GN_ENOSPC      encoder output buffer too small
 * Every decode error is fatal for the stream it came from: reset it.
 *
 * Thread context: pure functions; a decoder or message is used by one
 * thread at a time. Memory comes from gn_malloc and friends.
 */
#ifndef GNI_KAD_MSG_H
#define GNI_KAD_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gni.h"
#include "golemnet/identity.h"

/** Protocol ID of the libp2p (IPFS) Amino DHT. */
#define GNI_KAD_PROTOCOL_ID "/ipfs/kad/1.0.0"

/**
 * Default largest message body, bytes: 4 MiB, the size go-libp2p's
 * network.MessageSizeMax (1 << 22) gives go-libp2p-kad-dht's reader and the
 * usual libp2p limit for protobuf RPCs (docs/protocols/kad.md).
 */
#define GNI_KAD_DEFAULT_MAX_MSG_LEN (4u * 1024u * 1024u)
/** Largest max_msg_len accepted (64 MiB). */
#define GNI_KAD_MAX_MSG_LEN_LIMIT (64u * 1024u * 1024u)
/** Default bound on closerPeers per message (k = 20 is what peers send). */
#define GNI_KAD_DEFAULT_MAX_CLOSER 64u
/** Default bound on providerPeers per message. */
#define GNI_KAD_DEFAULT_MAX_PROVIDERS 64u
/** Default bound on addresses per peer entry. */
#define GNI_KAD_DEFAULT_MAX_ADDRS 32u
/** Default bound on the key and the record key, bytes. */
#define GNI_KAD_DEFAULT_MAX_KEY_LEN 1024u
/** Longest timeReceived string, bytes (RFC 3339 with nanoseconds is 35). */
#define GNI_KAD_MAX_TIME_LEN 128u
/**
 * Fields (known, unknown or repeated) tolerated per message level beyond
 * the repeated ones the limits allow: Message gets max_closer +
 * max_providers + this many, a Peer max_addrs + this many, a Record this
 * many. Caps the work protobuf-c does per frame.
 */
#define GNI_KAD_EXTRA_FIELDS 32u
/** Longest frame header: a 9-byte unsigned varint. */
#define GNI_KAD_HEADER_MAX 9
/**
 * A frame's storage starts at what has arrived of it (at least this many
 * bytes, at most its length) and doubles as the rest arrives.
 */
#define GNI_KAD_ALLOC_MIN 4096u

/** Message types (Message.MessageType). */
typedef enum gni_kad_type {
    GNI_KAD_PUT_VALUE = 0,
    GNI_KAD_GET_VALUE = 1,
    GNI_KAD_ADD_PROVIDER = 2,
    GNI_KAD_GET_PROVIDERS = 3,
    GNI_KAD_FIND_NODE = 4,
    GNI_KAD_PING = 5
} gni_kad_type;

/** Connection hints (Message.ConnectionType). */
typedef enum gni_kad_conn {
    GNI_KAD_NOT_CONNECTED = 0,
    GNI_KAD_CONNECTED = 1,
    GNI_KAD_CAN_CONNECT = 2,
    GNI_KAD_CANNOT_CONNECT = 3
} gni_kad_conn;

/** Owned bytes: @data is gn_malloc'd (NULL when @len is 0). */
typedef struct gni_kad_bytes {
    uint8_t *data;
    size_t len;
} gni_kad_bytes;

/** One Message.Peer: a validated peer ID and its binary multiaddrs. */
typedef struct gni_kad_peer {
    gn_peer_id id;
    gni_kad_bytes *addrs; /* addr_cnt binary multiaddrs, each parseable */
    size_t addr_cnt;
    gni_kad_conn conn;
} gni_kad_peer;

/**
 * A decoded or to-be-encoded Message. Caller-owned storage; everything it
 * points to is owned by it and released by gni_kad_msg_fini().
 */
typedef struct gni_kad_msg {
    gni_kad_type type;
    int32_t cluster_level; /* clusterLevelRaw: unused, round-tripped */
    gni_kad_bytes key;
    bool has_record;
    gni_kad_bytes rec_key;
    gni_kad_bytes rec_value;
    char *rec_time; /* timeReceived, NUL-terminated; NULL when empty */
    gni_kad_peer *closer;
    size_t closer_cnt;
    gni_kad_peer *providers;
    size_t provider_cnt;
} gni_kad_msg;

/** Decoder and encoder bounds. A zero field means its default. */
typedef struct gni_kad_limits {
    size_t max_msg_len;   /* body bytes; default GNI_KAD_DEFAULT_MAX_MSG_LEN */
    size_t max_closer;    /* closerPeers; default GNI_KAD_DEFAULT_MAX_CLOSER */
    size_t max_providers; /* providerPeers; default GNI_KAD_DEFAULT_MAX_PROVIDERS */
    size_t max_addrs;     /* addrs per peer; default GNI_KAD_DEFAULT_MAX_ADDRS */
    size_t max_key_len;   /* key, record key; default GNI_KAD_DEFAULT_MAX_KEY_LEN */
} gni_kad_limits;

/* ---- the message ---- */

/** Zeroes @m: an empty PUT_VALUE with no record and no peers. */
void gni_kad_msg_init(gni_kad_msg *m);

/** Releases everything @m owns and re-initialises it. NULL is a no-op. */
void gni_kad_msg_fini(gni_kad_msg *m);

/** Copies @len bytes at @key into m->key. Errors: GN_EINVAL, GN_ENOMEM. */
int gni_kad_msg_set_key(gni_kad_msg *m, const uint8_t *key, size_t len);

/**
 * Sets the record: copies @key (@key_len bytes), @value (@value_len bytes)
 * and @time (NUL-terminated timeReceived, NULL for none). Errors:
 * GN_EINVAL, GN_ENOMEM (the old record is kept).
 */
int gni_kad_msg_set_record(gni_kad_msg *m, const uint8_t *key, size_t key_len,
                           const uint8_t *value, size_t value_len, const char *time);

/**
 * Appends a peer with ID @id and hint @conn to closerPeers (@provider
 * false) or providerPeers (true); *@out (may be NULL) points at it until
 * the next append to the same list. Errors: GN_EINVAL, GN_ENOMEM.
 */
int gni_kad_msg_add_peer(gni_kad_msg *m, bool provider, const gn_peer_id *id, gni_kad_conn conn,
                         gni_kad_peer **out);

/** Appends a copy of the binary multiaddr @addr (@len bytes) to @p. Errors: GN_EINVAL, GN_ENOMEM. */
int gni_kad_peer_add_addr(gni_kad_peer *p, const uint8_t *addr, size_t len);

/** The name of @t ("FIND_NODE"), or "UNKNOWN". */
const char *gni_kad_type_name(int t);

/* ---- bodies (no framing) ---- */

/**
 * Decodes and validates one Message body (@len bytes at @in) into @out,
 * which must be initialised (its old contents are released first).
 * @lim NULL = defaults. *@why (NULL allowed) gets a static description of
 * the failed check. On failure @out is empty. Errors: see the file comment
 * (GN_EBADFRAME, GN_EPROTO, GN_ETOOBIG, GN_ENOMEM, GN_EINVAL).
 */
int gni_kad_msg_decode(const uint8_t *in, size_t len, const gni_kad_limits *lim,
                       gni_kad_msg *out, const char **why);

/* ---- frames ---- */

/**
 * Length in bytes of @m as a frame (header + body), or GN_EINVAL (@m does
 * not pass the decoder's checks: unknown type or connection, bad peer ID or
 * multiaddr, a bound of @lim exceeded) or GN_ETOOBIG (body above
 * max_msg_len). @lim NULL = defaults.
 */
long gni_kad_msg_frame_len(const gni_kad_msg *m, const gni_kad_limits *lim);

/**
 * Writes @m as one frame into @out (@cap bytes). Returns the bytes written.
 * Errors: as gni_kad_msg_frame_len(), GN_ENOSPC (@cap too small; nothing
 * useful written), GN_ENOMEM.
 */
long gni_kad_msg_encode(const gni_kad_msg *m, const gni_kad_limits *lim, uint8_t *out,
                        size_t cap);

/** Decoder states. */
typedef enum gni_kad_dec_state {
    GNI_KAD_DEC_LENGTH = 0, /* between frames or inside a length */
    GNI_KAD_DEC_BODY,       /* inside a body */
    GNI_KAD_DEC_FAILED
} gni_kad_dec_state;

/** Incremental frame decoder. Caller-owned; fields private. */
typedef struct gni_kad_decoder {
    gni_kad_dec_state state;
    int err;
    const char *why;
    gni_kad_limits lim;
    gni_varint_rd len_rd; /* zeroed: multiformats flavour */
    uint8_t *buf;         /* body being filled */
    size_t cap;           /* its storage */
    size_t need;          /* its length */
    size_t have;          /* bytes filled */
} gni_kad_decoder;

/**
 * Initialises @d with bounds @lim (NULL = defaults; copied). Errors:
 * GN_EINVAL (@d NULL, max_msg_len above GNI_KAD_MAX_MSG_LEN_LIMIT).
 */
int gni_kad_decoder_init(gni_kad_decoder *d, const gni_kad_limits *lim);

/** Releases a partly received frame. @d may be re-initialised. NULL is a no-op. */
void gni_kad_decoder_fini(gni_kad_decoder *d);

/**
 * Feeds @len bytes at @in (any split of the stream). Stops after the first
 * complete frame: decodes it into @out (initialised by the caller; old
 * contents released) and returns 1 with *@consumed bytes used; call again
 * with the rest. Returns 0 when every byte was consumed without completing
 * a frame. Storage for a body grows with the bytes that arrived
 * (GNI_KAD_ALLOC_MIN, then doubling), never from the announced length
 * alone. Errors are sticky (later calls return the same code); *@why (NULL
 * allowed) describes the check that failed: GN_EFRAMESIZE, GN_EBADFRAME,
 * GN_EPROTO, GN_ETOOBIG, GN_ENOMEM, GN_EINVAL.
 */
int gni_kad_decode(gni_kad_decoder *d, const uint8_t *in, size_t len, size_t *consumed,
                   gni_kad_msg *out, const char **why);

/**
 * The peer half-closed. Returns 0 between frames, GN_EPROTO inside a length
 * or body (truncated frame; sticky), or the earlier sticky error.
 */
int gni_kad_decode_eof(gni_kad_decoder *d);

#endif /* GNI_KAD_MSG_H */
