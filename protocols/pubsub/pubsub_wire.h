/*
 * golemnet - libp2p pubsub wire core (private to the library): the RPC of
 * /floodsub/1.0.0 and gossipsub (/meshsub/1.0.0, /meshsub/1.1.0), its
 * framing, message IDs, message signing and verification, and the seen
 * cache. Sans-I/O: bytes in, bytes out, time as an argument; no global
 * state. The router (mesh, gossip, scoring) and the stream driver are not
 * here yet (docs/pubsub.md).
 *
 * Spec: libp2p/specs pubsub/README.md ("The RPC", "The Message", "Message
 * Identification", "Message Signing", "Signature Policy Options");
 * pubsub/gossipsub/gossipsub-v1.0.md "Protobuf"; gossipsub-v1.1.md "Peer
 * Exchange on PRUNE". The schema is protocols/proto/pubsub.proto.
 *
 * Framing: each RPC is a multiformats unsigned varint length followed by
 * that many bytes of RPC protobuf, as go-libp2p-pubsub and js-libp2p write
 * them on the one-way pubsub streams.
 *
 * Bounds (gni_ps_limits): every count and length read from the wire is
 * checked by a scan of the protobuf before protobuf-c allocates anything
 * for it, so a frame within max_rpc_len makes the decoder allocate at most
 * a small multiple of the frame plus the configured counts.
 *
 * Errors (negative gn_err codes, include/golemnet/err.h):
 *   GN_EFRAMESIZE  a frame length above max_rpc_len (refused before any
 *                  storage is allocated for the body)
 *   GN_EBADFRAME   a length prefix that is not a minimal varint of at most
 *                  9 bytes; a body that is not a well-formed protobuf RPC
 *   GN_ETOOBIG     a count or length above its bound (subscriptions,
 *                  messages, control entries, message IDs, PX peers, topic,
 *                  message ID, from, seqno, signature, key, signed peer
 *                  record, fields per (sub)message)
 *   GN_EPROTO      a well-formed RPC that breaks the spec: a message
 *                  without a topic, a topic holding a NUL byte; a stream
 *                  that ends inside a frame; from the verifier, a message
 *                  that breaks the signature policy
 *   GN_EBADSIG     (verifier) a signature that does not verify
 *   GN_EPEERID     (verifier) a key field that is not the from peer's key
 *   GN_ENOMEM, GN_EINVAL (bad arguments; an RPC given to the encoder that
 *                  its own decoder would refuse), GN_ENOSPC (output buffer)
 * A decode error is fatal for the stream it came from: reset it (go and js
 * close the stream on a bad RPC too).
 *
 * Thread context: pure functions; an object is used by one thread at a
 * time. Memory comes from gn_malloc and friends.
 */
#ifndef GNI_PUBSUB_WIRE_H
#define GNI_PUBSUB_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gni.h"
#include "golemnet/identity.h"

#define GNI_FLOODSUB_ID "/floodsub/1.0.0"
#define GNI_MESHSUB_10_ID "/meshsub/1.0.0"
#define GNI_MESHSUB_11_ID "/meshsub/1.1.0"

/** Default largest RPC body, bytes: 1 MiB, go-libp2p-pubsub's DefaultMaxMessageSize. */
#define GNI_PS_DEFAULT_MAX_RPC_LEN (1024u * 1024u)
/** Largest max_rpc_len accepted (64 MiB). */
#define GNI_PS_MAX_RPC_LEN_LIMIT (64u * 1024u * 1024u)
/** Default bound on subscriptions per RPC. */
#define GNI_PS_DEFAULT_MAX_SUBS 1024u
/** Default bound on published messages per RPC. */
#define GNI_PS_DEFAULT_MAX_MSGS 1024u
/** Default bound on control entries (IHAVE + IWANT + GRAFT + PRUNE) per RPC. */
#define GNI_PS_DEFAULT_MAX_CONTROL 1024u
/** Default bound on message IDs per IHAVE or IWANT: go's GossipSubMaxIHaveLength. */
#define GNI_PS_DEFAULT_MAX_IDS 5000u
/** Default bound on message IDs in all IHAVE and IWANT entries of one RPC. */
#define GNI_PS_DEFAULT_MAX_IDS_TOTAL 20000u
/** Default bound on a message ID, bytes (from || seqno is at most 72). */
#define GNI_PS_DEFAULT_MAX_ID_LEN 256u
/** Default bound on a topic, bytes. */
#define GNI_PS_DEFAULT_MAX_TOPIC_LEN 1024u
/** Default bound on peers in one PRUNE's peer exchange (go sends up to 16). */
#define GNI_PS_DEFAULT_MAX_PX 64u
/** Longest signedPeerRecord accepted, bytes. */
#define GNI_PS_MAX_SPR_LEN 8192u
/** Longest seqno accepted on the wire, bytes (publishers send 8). */
#define GNI_PS_MAX_SEQNO_LEN 32u
/** Longest message ID any function may produce, bytes. */
#define GNI_PS_MSG_ID_MAX 1024u
/**
 * Fields tolerated per (sub)message beyond the repeated ones the limits
 * allow (unknown fields, repeated singular fields). Caps protobuf-c's work.
 */
#define GNI_PS_EXTRA_FIELDS 32u
/** The signing prefix (pubsub/README.md "Message Signing"). */
#define GNI_PS_SIGN_PREFIX "libp2p-pubsub:"

/** Owned bytes: @data is gn_malloc'd (NULL when @len is 0). */
typedef struct gni_ps_bytes {
    uint8_t *data;
    size_t len;
} gni_ps_bytes;

/**
 * One Message. The has_ flags record presence on the wire (StrictNoSign
 * needs "absent", not "empty"). @topic is NUL-terminated and holds no NUL.
 * @unknown holds the fields of numbers other than 1..6 in wire order, as
 * protobuf-c kept them (ProtobufCMessage.unknown_fields): each a minimal
 * tag varint, then its value bytes as received. They are part of what the
 * signature covers (README "Message Signing") and protobuf-c packs them
 * back after the known fields.
 */
typedef struct gni_ps_msg {
    bool has_from, has_data, has_seqno, has_signature, has_key;
    gni_ps_bytes from, data, seqno, signature, key;
    char *topic;
    gni_ps_bytes unknown;
} gni_ps_msg;

/** SubOpts; has_subscribe: the field is written (the builder always sets it, as go does). */
typedef struct gni_ps_sub {
    bool has_subscribe;
    bool subscribe;
    char *topic; /* NULL when absent */
} gni_ps_sub;

typedef struct gni_ps_ihave {
    char *topic; /* NULL when absent */
    gni_ps_bytes *ids;
    size_t id_cnt;
} gni_ps_ihave;

typedef struct gni_ps_iwant {
    gni_ps_bytes *ids;
    size_t id_cnt;
} gni_ps_iwant;

typedef struct gni_ps_graft {
    char *topic; /* NULL when absent */
} gni_ps_graft;

/** PeerInfo of a PRUNE's peer exchange; empty fields are not written. */
typedef struct gni_ps_px {
    gni_ps_bytes peer_id; /* at most GN_PEER_ID_MAX_BYTES */
    gni_ps_bytes spr;     /* signedPeerRecord envelope, not checked here */
} gni_ps_px;

typedef struct gni_ps_prune {
    char *topic; /* NULL when absent */
    gni_ps_px *peers;
    size_t peer_cnt;
    bool has_backoff;
    uint64_t backoff_s; /* seconds */
} gni_ps_prune;

/**
 * An RPC. Caller-owned storage; everything it points to is owned by it
 * (gn_malloc) and released by gni_ps_rpc_fini(). has_control: a control
 * field was present (possibly empty); the encoder writes one when this is
 * set or any control entry exists.
 */
typedef struct gni_ps_rpc {
    gni_ps_sub *subs;
    size_t sub_cnt;
    gni_ps_msg *msgs;
    size_t msg_cnt;
    bool has_control;
    gni_ps_ihave *ihave;
    size_t ihave_cnt;
    gni_ps_iwant *iwant;
    size_t iwant_cnt;
    gni_ps_graft *graft;
    size_t graft_cnt;
    gni_ps_prune *prune;
    size_t prune_cnt;
} gni_ps_rpc;

/** Decoder and encoder bounds. A zero field means its default (GNI_PS_DEFAULT_*). */
typedef struct gni_ps_limits {
    size_t max_rpc_len;   /* RPC body bytes */
    size_t max_subs;      /* subscriptions per RPC */
    size_t max_msgs;      /* published messages per RPC */
    size_t max_control;   /* IHAVE + IWANT + GRAFT + PRUNE entries per RPC */
    size_t max_ids;       /* message IDs per IHAVE or IWANT */
    size_t max_ids_total; /* message IDs per RPC */
    size_t max_id_len;    /* bytes per message ID (at most GNI_PS_MSG_ID_MAX) */
    size_t max_topic_len; /* bytes per topic */
    size_t max_px;        /* PeerInfo entries per PRUNE */
} gni_ps_limits;

/** @lim with every zero field replaced by its default (@lim NULL = all defaults). */
gni_ps_limits gni_ps_limits_resolve(const gni_ps_limits *lim);

/* ---- owned values ---- */

/** Zeroes @r: an empty RPC. */
void gni_ps_rpc_init(gni_ps_rpc *r);
/** Releases everything @r owns and re-initialises it. NULL is a no-op. */
void gni_ps_rpc_fini(gni_ps_rpc *r);
/** Zeroes @m. */
void gni_ps_msg_init(gni_ps_msg *m);
/** Releases everything @m owns and re-initialises it. NULL is a no-op. */
void gni_ps_msg_fini(gni_ps_msg *m);

/**
 * Sets @m's topic (NUL-terminated copy), data (@len bytes; present even
 * when empty) and, when @seqno is not NULL, seqno (8 bytes, big-endian as
 * the spec says). Errors: GN_EINVAL, GN_ENOMEM (@m unchanged).
 */
int gni_ps_msg_set(gni_ps_msg *m, const char *topic, const uint8_t *data, size_t len,
                   const uint64_t *seqno);

/**
 * Appends to @r: a subscription, a message (moved: @m is re-initialised on
 * success and keeps its contents on failure), an IHAVE or IWANT (@ids:
 * @cnt pointers to IDs of @lens bytes, copied), a GRAFT, a PRUNE (*@out,
 * NULL allowed, points at it until the next PRUNE append) and a PX peer of
 * a PRUNE. @topic NULL = absent. Errors: GN_EINVAL, GN_ENOMEM.
 */
int gni_ps_rpc_add_sub(gni_ps_rpc *r, bool subscribe, const char *topic);
int gni_ps_rpc_add_msg(gni_ps_rpc *r, gni_ps_msg *m);
int gni_ps_rpc_add_ihave(gni_ps_rpc *r, const char *topic, const uint8_t *const *ids,
                         const size_t *lens, size_t cnt);
int gni_ps_rpc_add_iwant(gni_ps_rpc *r, const uint8_t *const *ids, const size_t *lens,
                         size_t cnt);
int gni_ps_rpc_add_graft(gni_ps_rpc *r, const char *topic);
int gni_ps_rpc_add_prune(gni_ps_rpc *r, const char *topic, bool has_backoff, uint64_t backoff_s,
                         gni_ps_prune **out);
int gni_ps_prune_add_px(gni_ps_prune *p, const uint8_t *peer_id, size_t id_len,
                        const uint8_t *spr, size_t spr_len);

/* ---- bodies and frames ---- */

/**
 * Decodes and checks one RPC body (@len bytes at @in, no length prefix)
 * into @out (initialised; old contents released). @lim NULL = defaults.
 * *@why (NULL allowed) gets a static description of the failed check. On
 * failure @out is empty. Errors: GN_EFRAMESIZE, GN_EBADFRAME, GN_ETOOBIG,
 * GN_EPROTO, GN_ENOMEM, GN_EINVAL (see the file comment).
 */
int gni_ps_rpc_decode(const uint8_t *in, size_t len, const gni_ps_limits *lim, gni_ps_rpc *out,
                      const char **why);

/**
 * Length in bytes of @r as a frame (varint prefix + body), or GN_EINVAL
 * (@r breaks a bound of @lim or holds a topic with a NUL or a message
 * without a topic), GN_ETOOBIG (body above max_rpc_len), GN_ENOMEM (the
 * protobuf-c view of @r, one block freed before return, could not be
 * allocated).
 */
long gni_ps_rpc_frame_len(const gni_ps_rpc *r, const gni_ps_limits *lim);

/**
 * Writes @r as one frame into @out (@cap bytes), packed by protobuf-c
 * (gnpb__pubsub__rpc__pack() over a view of @r, no copies of values):
 * known fields in field number order, a message's unknown fields after its
 * known ones. Returns the bytes written. Errors: as
 * gni_ps_rpc_frame_len(), GN_ENOSPC.
 */
long gni_ps_rpc_encode(const gni_ps_rpc *r, const gni_ps_limits *lim, uint8_t *out, size_t cap);

/**
 * Streaming frame splitter: bytes of a pubsub stream in any split, whole
 * RPC bodies out. Holds at most one body (storage grows with the bytes
 * that arrived, never from the announced length alone; at most
 * max_rpc_len). Caller-owned; fields private.
 */
typedef struct gni_ps_splitter {
    gni_lp_reader rd;
    int err;          /* sticky error, 0 while healthy */
    const char *why;
} gni_ps_splitter;

/** Sets up @s for bodies of at most @max_rpc_len bytes (0 = default). GN_EINVAL above the limit. */
int gni_ps_splitter_init(gni_ps_splitter *s, size_t max_rpc_len);
/** Releases @s's buffer. NULL is a no-op. */
void gni_ps_splitter_fini(gni_ps_splitter *s);

/**
 * Feeds @len bytes at @in. Returns 1 when a body is complete: *@body and
 * *@body_len (borrowed until the next call; *@body may be NULL when the
 * length is 0) with *@consumed the bytes used (call again with the rest);
 * 0 when every byte was consumed without completing one. Errors (sticky,
 * *@why names the check): GN_EFRAMESIZE, GN_EBADFRAME, GN_ENOMEM,
 * GN_EINVAL.
 */
int gni_ps_splitter_feed(gni_ps_splitter *s, const uint8_t *in, size_t len, size_t *consumed,
                         const uint8_t **body, size_t *body_len, const char **why);

/** The stream ended: 0 between frames, GN_EPROTO inside one (sticky), or the earlier error. */
int gni_ps_splitter_eof(gni_ps_splitter *s);

/* ---- message IDs ---- */

/**
 * A message ID function (README "Message Identification"): writes the ID
 * of @m into @out (@cap bytes, GNI_PS_MSG_ID_MAX) and returns its length
 * (1..@cap), or a negative gn_err. @user_data as given.
 */
typedef long (*gni_ps_msg_id_fn)(const gni_ps_msg *m, uint8_t *out, size_t cap, void *user_data);

/**
 * The default ID, from || seqno (go-libp2p-pubsub DefaultMsgIdFn, js
 * msgIdFnStrictSign). Errors: GN_EINVAL (from or seqno absent: StrictNoSign
 * topics need a custom function), GN_ENOSPC.
 */
long gni_ps_msg_id_default(const gni_ps_msg *m, uint8_t *out, size_t cap, void *user_data);

/**
 * Computes @m's ID with @fn (NULL = the default) into @out
 * (GNI_PS_MSG_ID_MAX bytes). Returns its length. Errors: the function's,
 * GN_EINVAL when it returns 0 or more than @cap.
 */
long gni_ps_msg_id(gni_ps_msg_id_fn fn, void *user_data, const gni_ps_msg *m, uint8_t *out,
                   size_t cap);

/* ---- signing ---- */

/** Signature policies (README "Signature Policy Options"); Lax* are not offered. */
typedef enum gni_ps_sign_policy {
    GNI_PS_STRICT_SIGN = 0,
    GNI_PS_STRICT_NO_SIGN = 1
} gni_ps_sign_policy;

/**
 * The bytes a signature covers: "libp2p-pubsub:" then @m encoded without
 * signature and key (from, data, seqno, topic in order, then the unknown
 * fields), packed by protobuf-c from a copy of @m with has_signature and
 * has_key cleared. Writes into @out (@cap bytes; NULL with @cap 0 to learn
 * the length). Returns the length; allocates nothing. Errors: GN_EINVAL
 * (no topic, or @unknown is not well-formed fields numbered above 6 within
 * the field bound), GN_ENOSPC.
 */
long gni_ps_msg_signing_bytes(const gni_ps_msg *m, uint8_t *out, size_t cap);

/**
 * StrictSign publishing: sets from to @id's peer ID, key to its encoded
 * public key when the peer ID does not embed it (RSA; never for Ed25519
 * and secp256k1), and signature (gn_identity_sign_any()). @m must have a
 * topic and a seqno. Errors: GN_EINVAL, GN_ENOMEM, GN_ECRYPTO (@m's
 * from, key and signature are then absent).
 */
int gni_ps_msg_sign(gni_ps_msg *m, const gn_identity *id);

/**
 * Checks @m against @policy. StrictSign: from (a valid peer ID), seqno (8
 * bytes) and signature present; the key is the key field (whose peer ID
 * must be from) or, without one, the key from embeds; the signature must
 * verify (gn_pubkey_verify(), any key type). StrictNoSign: from, seqno,
 * signature and key absent. Returns 0. Errors: GN_EPROTO (a field present
 * or absent against the policy; a from that is no peer ID; no key
 * available), GN_EPEERID (the key field is another peer's), GN_EBADKEY
 * (malformed key), GN_EBADSIG, GN_ENOMEM, GN_EINVAL. *@why (NULL allowed)
 * names the check.
 */
int gni_ps_msg_verify(const gni_ps_msg *m, gni_ps_sign_policy policy, const char **why);

/* ---- the seen cache ---- */

/**
 * IDs of messages seen in the last @ttl, at most @max_entries of them
 * (the oldest is forgotten first when full, and counted). Sans-I/O: time
 * is an argument (monotonic ns; a time earlier than one already given is
 * taken as that one). Lookups hash with SipHash (libsodium
 * crypto_shorthash) keyed by the caller, so a peer cannot aim IDs at one
 * bucket. Caller-owned; fields private.
 */
typedef struct gni_ps_seen {
    struct gni_ps_seen_ent **buckets;
    size_t nbuckets; /* power of two; doubles as entries come, up to max_buckets */
    size_t max_buckets;
    gni_list fifo;   /* oldest first */
    size_t cnt, max_entries, max_id_len;
    gn_time ttl, last_now;
    uint8_t key[16];
    uint64_t evicted; /* forgotten before their TTL because the cache was full */
} gni_ps_seen;

/**
 * Sets up @s: @max_entries (> 0), @ttl (> 0, ns), IDs up to @max_id_len
 * bytes (0 = GNI_PS_DEFAULT_MAX_ID_LEN), @hash_key 16 random bytes.
 * Errors: GN_EINVAL, GN_ENOMEM.
 */
int gni_ps_seen_init(gni_ps_seen *s, size_t max_entries, gn_time ttl, size_t max_id_len,
                     const uint8_t hash_key[16]);
/** Releases everything. NULL is a no-op. */
void gni_ps_seen_fini(gni_ps_seen *s);
/**
 * Records @id (@len bytes) seen at @now after expiring old entries.
 * Returns 1 when it was new, 0 when it is a duplicate within the TTL (its
 * time is not refreshed, as go's first-seen cache). Errors: GN_EINVAL
 * (@len 0 or above max_id_len), GN_ENOMEM.
 */
int gni_ps_seen_add(gni_ps_seen *s, const uint8_t *id, size_t len, gn_time now);
/** True when @id was recorded less than ttl before @now. */
bool gni_ps_seen_has(gni_ps_seen *s, const uint8_t *id, size_t len, gn_time now);
/** Forgets entries recorded ttl or more before @now. Returns how many. */
size_t gni_ps_seen_expire(gni_ps_seen *s, gn_time now);
/** When the oldest entry expires (ns), or UINT64_MAX when empty. */
gn_time gni_ps_seen_next_expiry(const gni_ps_seen *s);
/** Entries held. */
size_t gni_ps_seen_count(const gni_ps_seen *s);

#endif /* GNI_PUBSUB_WIRE_H */
