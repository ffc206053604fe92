/*
 * golemnet-p2pd's sans-I/O core: the libp2p daemon control protocol
 * (go-libp2p-daemon specs/CONTROL.md and specs/DHT.md, messages in
 * p2pd.proto). Private to ipc/p2pd; the server glue is p2pd_uv.c.
 *
 * What it does: decodes one request into a validated
 * gni_p2pd_req (every count and length checked; a refusal comes with a
 * message for the ERROR response), and builds every response frame the
 * daemon sends (length prefix included). It makes no syscalls, includes no
 * libuv and keeps no state besides what the caller passes in.
 *
 * Memory: functions that return a frame allocate it with gn_malloc()
 * (golemnet/log.h allocation hooks); the caller frees it with gn_free().
 * Out of memory is GN_ENOMEM everywhere.
 *
 * Thread context: none; every function is reentrant.
 */
#ifndef GNI_P2PD_H
#define GNI_P2PD_H

#include "golemnet/crypto.h"
#include "golemnet/identity.h"
#include "golemnet/multiaddr.h"
#include "golemnet/router.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- bounds (docs/p2pd.md "Limits") ---- */

/** Longest request frame accepted (bytes, after the length prefix). */
#define GNI_P2PD_REQ_MAX (1u << 20)
/** Longest response frame a client of ours (tests) accepts. */
#define GNI_P2PD_RESP_MAX (4u << 20)
/** Most multiaddrs in a CONNECT request. */
#define GNI_P2PD_ADDRS_MAX 32u
/** Most protocol ids in a STREAM_OPEN / STREAM_HANDLER / PEERSTORE request. */
#define GNI_P2PD_PROTOS_MAX 16u
/** Longest connection manager tag, bytes (without the NUL). */
#define GNI_P2PD_TAG_MAX 64u
/** Longest DHT key or value in a request (the node's bounds). */
#define GNI_P2PD_KEY_MAX 1024u
#define GNI_P2PD_VALUE_MAX (64u * 1024u)
/** FIND_PROVIDERS: default and largest count. */
#define GNI_P2PD_PROVIDERS_DEFAULT 20u
#define GNI_P2PD_PROVIDERS_MAX 1000u
/** Request timeouts: the default and the largest accepted, seconds. */
#define GNI_P2PD_TIMEOUT_DEFAULT_S 60
#define GNI_P2PD_TIMEOUT_MAX_S 3600
/** Longest error message a response carries (bytes, NUL included). */
#define GNI_P2PD_ERRMSG_MAX 256u

/** Request types (Request.Type). */
typedef enum gni_p2pd_op {
    GNI_P2PD_IDENTIFY = 0,
    GNI_P2PD_CONNECT = 1,
    GNI_P2PD_STREAM_OPEN = 2,
    GNI_P2PD_STREAM_HANDLER = 3,
    GNI_P2PD_DHT = 4,
    GNI_P2PD_LIST_PEERS = 5,
    GNI_P2PD_CONNMANAGER = 6,
    GNI_P2PD_DISCONNECT = 7,
    GNI_P2PD_PUBSUB = 8,
    GNI_P2PD_PEERSTORE = 9
} gni_p2pd_op;

/** DHTRequest.Type. */
typedef enum gni_p2pd_dht_op {
    GNI_P2PD_DHT_FIND_PEER = 0,
    GNI_P2PD_DHT_FIND_PEERS_CONNECTED_TO_PEER = 1,
    GNI_P2PD_DHT_FIND_PROVIDERS = 2,
    GNI_P2PD_DHT_GET_CLOSEST_PEERS = 3,
    GNI_P2PD_DHT_GET_PUBLIC_KEY = 4,
    GNI_P2PD_DHT_GET_VALUE = 5,
    GNI_P2PD_DHT_SEARCH_VALUE = 6,
    GNI_P2PD_DHT_PUT_VALUE = 7,
    GNI_P2PD_DHT_PROVIDE = 8
} gni_p2pd_dht_op;

/** ConnManagerRequest.Type. */
typedef enum gni_p2pd_cm_op {
    GNI_P2PD_CM_TAG_PEER = 0,
    GNI_P2PD_CM_UNTAG_PEER = 1,
    GNI_P2PD_CM_TRIM = 2
} gni_p2pd_cm_op;

/** PeerstoreRequest.Type. */
typedef enum gni_p2pd_ps_op {
    GNI_P2PD_PS_UNSPECIFIED = 0,
    GNI_P2PD_PS_GET_PROTOCOLS = 1,
    GNI_P2PD_PS_GET_PEER_INFO = 2
} gni_p2pd_ps_op;

/** DHTResponse.Type. */
typedef enum gni_p2pd_dht_resp {
    GNI_P2PD_DHT_BEGIN = 0,
    GNI_P2PD_DHT_VALUE = 1,
    GNI_P2PD_DHT_END = 2
} gni_p2pd_dht_resp;

/**
 * A decoded, validated request. Which fields are set depends on @op (and
 * @sub); the decoder guarantees the ones each operation needs:
 *  - CONNECT: peer, addrs (0..GNI_P2PD_ADDRS_MAX, each a valid multiaddr;
 *    none: the daemon finds addresses itself), timeout_s;
 *  - STREAM_OPEN: peer, protos (1..GNI_P2PD_PROTOS_MAX), timeout_s;
 *  - STREAM_HANDLER: handler_addr, protos (1..);
 *  - DISCONNECT: peer;
 *  - DHT (sub = gni_p2pd_dht_op): FIND_PEER, GET_PUBLIC_KEY: peer;
 *    FIND_PROVIDERS: key = the CID's multihash, count (1..MAX);
 *    PROVIDE: key = the CID's multihash; GET_CLOSEST_PEERS, GET_VALUE,
 *    SEARCH_VALUE: key; PUT_VALUE: key, value; timeout_s for all;
 *  - CONNMANAGER (sub = gni_p2pd_cm_op): TAG_PEER: peer, tag, weight;
 *    UNTAG_PEER: peer, tag; TRIM: nothing;
 *  - PEERSTORE (sub = gni_p2pd_ps_op): peer (GET_PROTOCOLS,
 *    GET_PEER_INFO), protos (0.., ignored by GET_PEER_INFO);
 *  - PUBSUB (sub = PSRequest.Type): nothing is read (not built);
 *  - IDENTIFY, LIST_PEERS: nothing.
 * Owned memory is released by gni_p2pd_req_fini().
 */
typedef struct gni_p2pd_req {
    gni_p2pd_op op;
    int sub;
    gn_peer_id peer;
    gn_multiaddr *addrs[GNI_P2PD_ADDRS_MAX];
    size_t naddrs;
    gn_multiaddr *handler_addr;
    char protos[GNI_P2PD_PROTOS_MAX][GN_PROTOCOL_ID_MAX];
    size_t nprotos;
    int64_t timeout_s; /* 1..GNI_P2PD_TIMEOUT_MAX_S (the default when absent) */
    uint8_t key[GNI_P2PD_KEY_MAX];
    size_t key_len;
    uint8_t *value; /* gn_malloc'd, @value_len bytes (PUT_VALUE) */
    size_t value_len;
    uint32_t count;
    char tag[GNI_P2PD_TAG_MAX + 1];
    int64_t weight;
} gni_p2pd_req;

/**
 * Decodes the request @msg (@len bytes, one frame's body) into @out (any
 * prior content is overwritten; fini it afterwards in every case).
 * Returns 0, or an error with a message for the client in @err
 * (@err_len bytes, NUL-terminated, may be truncated):
 *  GN_EPARSE    not a Request protobuf;
 *  GN_EINVAL    a field the operation needs is missing or malformed (a
 *               peer ID, a multiaddr, a protocol id, a CID, a key);
 *  GN_ETOOBIG   a count or length past its bound above;
 *  GN_ENOTSUP   an unknown type (Request, DHT, conn manager, peer store),
 *               or FIND_PEERS_CONNECTED_TO_PEER (removed from the spec);
 *  GN_ENOMEM.
 * The framing is intact after every error: the connection may go on.
 */
int gni_p2pd_req_decode(const uint8_t *msg, size_t len, gni_p2pd_req *out, char *err,
                        size_t err_len);

/** Releases what a decoded request owns; safe on a zeroed or failed one. */
void gni_p2pd_req_fini(gni_p2pd_req *r);

/** "IDENTIFY", "DHT", ... for logs; "UNKNOWN" for other values. */
const char *gni_p2pd_op_name(int op);

/*
 * Request framing: core's gni_lp_reader (core/gni.h) with max
 * GNI_P2PD_REQ_MAX reads one varint-delimited request at a time and leaves
 * the bytes after it (the next request, or a stream's first bytes after
 * STREAM_OPEN) with the caller.
 */

/* ---- responses: each returns one frame (varint length + message) ---- */

/** A built frame: gn_malloc'd bytes, the caller frees @data with gn_free(). */
typedef struct gni_p2pd_frame {
    uint8_t *data;
    size_t len;
} gni_p2pd_frame;

/** Response{OK}. Errors: GN_ENOMEM. */
int gni_p2pd_resp_ok(gni_p2pd_frame *out);

/**
 * Response{ERROR, ErrorResponse{msg}}: @msg is NUL-terminated text (bytes
 * past GNI_P2PD_ERRMSG_MAX - 1 are cut at a UTF-8 boundary). Errors:
 * GN_ENOMEM.
 */
int gni_p2pd_resp_error(const char *msg, gni_p2pd_frame *out);

/** Response{OK, IdentifyResponse{id, addrs}}; @addrs: @n borrowed multiaddrs. */
int gni_p2pd_resp_identify(const gn_peer_id *id, const gn_multiaddr *const *addrs, size_t n,
                           gni_p2pd_frame *out);

/**
 * StreamInfo{peer, addr, proto}: wrapped in Response{OK} when @wrap (the
 * STREAM_OPEN answer), alone otherwise (the first message to a stream
 * handler). @addr may be NULL (an empty address is sent). Errors: GN_ENOMEM.
 */
int gni_p2pd_stream_info(const gn_peer_id *peer, const gn_multiaddr *addr, const char *proto,
                         bool wrap, gni_p2pd_frame *out);

/** Response{OK, peers: PeerInfo per entry of @peers (@n)}. */
int gni_p2pd_resp_peers(const gn_router_peer *peers, size_t n, gni_p2pd_frame *out);

/**
 * A DHTResponse of @type with the optional @peer and @value (NULL: absent),
 * wrapped in Response{OK} when @wrap (the first answer to a DHT request)
 * or alone (the VALUE and END messages of a streamed answer).
 */
int gni_p2pd_dht(gni_p2pd_dht_resp type, const gn_router_peer *peer, const gn_slice *value,
                 bool wrap, gni_p2pd_frame *out);

/**
 * Response{OK, PeerstoreResponse{peer?, protos}}: @peer may be NULL;
 * @protos: @n NUL-terminated strings.
 */
int gni_p2pd_resp_peerstore(const gn_router_peer *peer, const char *const *protos, size_t n,
                            gni_p2pd_frame *out);

/* ---- helpers shared by the glue and the tests ---- */

/**
 * The multihash of a binary CID (v0: a bare sha2-256 multihash; v1:
 * version, codec, multihash) into @mh (@cap bytes). Returns its length, or
 * GN_EINVAL (not a CID), GN_ENOSPC.
 */
int gni_p2pd_cid_multihash(const uint8_t *cid, size_t len, uint8_t *mh, size_t cap);

/**
 * The libp2p PublicKey protobuf embedded in an identity-multihash peer ID
 * (Ed25519 and other inline keys), borrowed from @id. Returns 0, or
 * GN_ENOTFOUND (a sha2-256 peer ID: the key is not inside).
 */
int gni_p2pd_peer_pubkey(const gn_peer_id *id, gn_slice *out);

#endif /* GNI_P2PD_H */
