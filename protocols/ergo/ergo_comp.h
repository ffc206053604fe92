/*
 * golemnet - the `ergo` protocol component's internal interface (private
 * to the library): what the Ergo node layer sits on.
 *
 * A node whose protocol_components names "ergo" runs one component
 * (protocols/ergo/ergo_layer.c) with two carriers for Ergo connections:
 *  - TCP: the Ergo acceptor and dialler (ergo_uv.h: EHS handshake, ENP
 *    frames, pool of links), registered with the embedded or etcd registrar,
 *    so Go Ergo nodes connect to it and it to them;
 *  - CHANNEL: /golem/ergo/1.0.0 streams on golemnet channels (Noise +
 *    yamux, relays), opened with one Introduce each way (ergo_open.h) and
 *    then ENP frames, for golemnet nodes that talk Ergo to each other.
 * Both carriers implement one peer interface (gni_ergo_peer): the layer
 * above sends ENP frames to a peer node by name and receives frames and
 * up/down events without knowing which carrier a peer uses. Frames are
 * whole ENP frames (8-byte header included), never decoded here.
 *
 * Names: one peer per Ergo node name. A name is up on at most one carrier
 * at a time; a second connection for a name that is up is refused
 * (docs/protocols/ergo.md "Binding" has the channel rules).
 *
 * Spec: ergo-wire.md b, c; docs/protocols/ergo.md; docs/ergo.md
 * "The ergo component". Thread context: the node's loop thread only; the
 * handler's callbacks run there, never from inside a call of this header
 * except where noted.
 */
#ifndef GNI_ERGO_COMP_H
#define GNI_ERGO_COMP_H

#include "golemnet/edf.h"
#include "golemnet/host.h"
#include "golemnet/identity.h"

#include "ergo_open.h"

typedef struct gni_ergo_comp gni_ergo_comp;
typedef struct gni_ergo_peer gni_ergo_peer;
typedef struct gni_ergo_node gni_ergo_node;

typedef enum gni_ergo_carrier {
    GNI_ERGO_CARRIER_TCP = 1,     /* Ergo's own TCP links (EHS + ENP, pool) */
    GNI_ERGO_CARRIER_CHANNEL = 2, /* a /golem/ergo/1.0.0 stream on a golemnet channel */
} gni_ergo_carrier;

/** What is known of a connected peer node (valid while the peer is up). */
typedef struct gni_ergo_peer_info {
    const char *node;           /* its Ergo name, NUL-terminated */
    gni_ergo_carrier carrier;
    uint64_t flags;             /* its network flags (0: Enable bit clear) */
    int64_t creation;
    uint64_t max_message_size;  /* the largest frame it accepts (0 = unlimited) */
    bool initiator;             /* we opened the connection */
    gn_peer_id peer_id;         /* CHANNEL: its authenticated libp2p identity; TCP: zero */
    /** Its Introduce dictionaries, to decode its ENP payloads (NULL if they did not load). */
    const gn_edf_dict *dict;
} gni_ergo_peer_info;

/** The carrier interface: each carrier's peers point at one such table. */
typedef struct gni_ergo_peer_ops {
    const char *name; /* "tcp", "channel" */
    int (*send)(gni_ergo_peer *p, uint64_t from_id, bool keep_order, const uint8_t *frame,
                size_t len);
    unsigned (*links)(const gni_ergo_peer *p);
    void (*close)(gni_ergo_peer *p);
} gni_ergo_peer_ops;

/** One connected peer node. Owned by the component; fields private to ergo_layer.c. */
struct gni_ergo_peer {
    const gni_ergo_peer_ops *ops;
    gni_ergo_comp *comp;
    gni_ergo_peer_info info;
    char node[256];
    bool up;
    void *carrier; /* the carrier's object (gni_ergo_conn, or the stream state) */
    gni_ergo_peer *next;
};

/**
 * Callbacks for the layer above (every entry may be NULL).
 *  - on_peer_up: @p finished its opening (handshake) and can send.
 *  - on_frame: one whole ENP frame from @p, borrowed for the call.
 *  - on_peer_down: @p is gone; @p is freed after the call. @reason on a
 *    channel: 0 closed by us, GN_EEOF the peer closed, GN_EEXIST replaced
 *    by a duplicate stream that won, a stream, framing (GN_EFRAMESIZE...)
 *    error; on TCP always GN_ECLOSED (the connection's last link ended).
 *  - on_writable: a send to @p met GN_EAGAIN and the carrier drained.
 *  - on_connect_failed: a gni_ergo_comp_connect*() to @node did not come up
 *    (@err, @diag for the log: resolve failure, handshake refusal, ...).
 */
typedef struct gni_ergo_handler {
    void (*on_peer_up)(void *ud, gni_ergo_peer *p);
    void (*on_frame)(void *ud, gni_ergo_peer *p, const uint8_t *frame, size_t len);
    void (*on_peer_down)(void *ud, gni_ergo_peer *p, int reason);
    void (*on_writable)(void *ud, gni_ergo_peer *p);
    void (*on_connect_failed)(void *ud, const char *node, int err, const char *diag);
} gni_ergo_handler;

/** The running ergo component of the node of @h, or NULL (not named, not started). */
gni_ergo_comp *gni_ergo_comp_of(gn_host *h);

/** Installs @h (copied; NULL: none) and @ud. */
void gni_ergo_comp_set_handler(gni_ergo_comp *c, const gni_ergo_handler *h, void *ud);

/** Our Ergo node name (ergo.node), NUL-terminated. */
const char *gni_ergo_comp_node(const gni_ergo_comp *c);

/** The frozen registry (Ergo's types) the component's handshakes use. */
const gn_edf_registry *gni_ergo_comp_registry(const gni_ergo_comp *c);

/** Our creation (Unix seconds of the component's start), announced in every Introduce. */
int64_t gni_ergo_comp_creation(const gni_ergo_comp *c);

/** Our network flags (ergo.flags) as every Introduce announces them; 0 for NULL @c. */
uint64_t gni_ergo_comp_flags(const gni_ergo_comp *c);

/**
 * Node-layer hook (ergo_node.c, include/golemnet/ergo.h): called by the
 * component's start after Ergo's types are in @reg and before it is frozen.
 * The Ergo node attached to host @h (if any) registers the application's
 * types in @reg and installs its handler on @c. Returns 0, or an error that
 * fails the start.
 */
int gni_ergo_node_on_comp_start(gn_host *h, gni_ergo_comp *c, gn_edf_registry *reg);

/** The TCP endpoint (acceptor + dialler), or NULL when ergo.acceptor=off. */
gni_ergo_node *gni_ergo_comp_endpoint(gni_ergo_comp *c);

/** The acceptor's bound port (after the port range search), 0 without one. */
uint16_t gni_ergo_comp_port(const gni_ergo_comp *c);

/**
 * TCP: connects to Ergo node @node (name@host) by name, as connect_uv.h's
 * gni_ergo_connect does: the ergo.route static routes that match, by
 * weight (each with its own cookie, flags and TLS flag); only when none
 * matched, the configured registrar (embedded or etcd), each resolved
 * route with the node's cookie and the route's TLS flag. Hosts: IPv4
 * literals or localhost. Outcome (never from inside this call): on_peer_up,
 * or one on_connect_failed (GN_ENOTFOUND: the registrar does not know the
 * name; GN_ENOROUTE: nothing to try; GN_ETIMEDOUT: not up within
 * ergo.open_timeout_ms; else the last dial's error). Returns 0; GN_EINVAL
 * (bad name, no endpoint); GN_EEXIST (@node is up); GN_ENOMEM; GN_ENOTSUP
 * (no static route and ergo.registrar=off: use gni_ergo_comp_connect_addr).
 */
int gni_ergo_comp_connect(gni_ergo_comp *c, const char *node);

/** TCP: connects to @node at @ip:@port. Errors as gni_ergo_comp_connect, and I/O errors. */
int gni_ergo_comp_connect_addr(gni_ergo_comp *c, const char *node, const char *ip,
                               uint16_t port);

/**
 * CHANNEL: opens a /golem/ergo/1.0.0 stream to libp2p peer @peer (dialled
 * as gn_host_new_stream_ex does, relays allowed) and runs the opening
 * exchange; @node (NULL = any) is the Ergo name we expect there.
 * Outcome: on_peer_up or on_connect_failed. Returns 0; GN_EINVAL;
 * GN_EEXIST (@node is up); GN_ENOMEM; GN_ECLOSED (stopping).
 */
int gni_ergo_comp_connect_peer(gni_ergo_comp *c, const gn_peer_id *peer, const char *node);

/** The peer that is up as @node, or NULL. */
gni_ergo_peer *gni_ergo_comp_find(gni_ergo_comp *c, const char *node);

/**
 * Sends one ENP frame (copied; header included) for local process
 * @from_id to peer node @node: gni_ergo_peer_send on gni_ergo_comp_find.
 * GN_ENOTFOUND when @node is not up; otherwise as gni_ergo_peer_send.
 */
int gni_ergo_comp_send(gni_ergo_comp *c, const char *node, uint64_t from_id, bool keep_order,
                       const uint8_t *frame, size_t len);

/**
 * Sends one ENP frame (copied) to @p. Returns 0 (queued); GN_EINVAL (not
 * a whole ENP frame: shorter than 8 bytes, or its header's length is not
 * @len); GN_ETOOBIG (above the peer's MaxMessageSize); GN_EAGAIN (the
 * carrier has 4 MiB queued towards a peer that does not read: nothing
 * taken, on_writable follows); GN_ECLOSED (going down); GN_ENOMEM.
 */
int gni_ergo_peer_send(gni_ergo_peer *p, uint64_t from_id, bool keep_order,
                       const uint8_t *frame, size_t len);

/** @p's facts (borrowed while @p is up). */
const gni_ergo_peer_info *gni_ergo_peer_get_info(const gni_ergo_peer *p);

/** Live links: the TCP pool's link count, 1 for a channel stream. */
unsigned gni_ergo_peer_links(const gni_ergo_peer *p);

/** Closes @p; on_peer_down (reason 0) follows from the loop or at once. */
void gni_ergo_peer_close(gni_ergo_peer *p);

#endif /* GNI_ERGO_COMP_H */
