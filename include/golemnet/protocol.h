/*
 * golemnet - application protocol ops: components that answer and open
 * negotiated streams.
 *
 * A protocol component answers inbound streams whose protocol id (its
 * name, e.g. "/ipfs/ping/1.0.0") multistream-select agreed on. The node
 * creates one instance per protocol component in its stack, registers
 * @name as a handler that calls on_stream(), and calls start()/stop() with
 * the node. Through the host (golemnet/host.h) an instance may answer
 * more ids, open streams to peers, read the peer store and subscribe to
 * events. The seed's rule holds: a protocol knows nothing of how the
 * connection was made (transport, security, routing).
 *
 * Thread context: every entry runs on the host's loop thread.
 * Spec: docs/architecture.md "Layer kinds"; the protocol's own spec.
 * Since: 0.1 (host and start/stop: 0.2)
 */
#ifndef GOLEMNET_PROTOCOL_H
#define GOLEMNET_PROTOCOL_H

#include "golemnet/host.h"
#include "golemnet/identity.h"
#include "golemnet/layer.h"
#include "golemnet/stream.h"

GN_BEGIN_DECLS

/** ABI version: (kind << 16) | revision, so a table of another kind never passes. */
#define GN_PROTOCOL_ABI 0x40002u

typedef struct gn_protocol gn_protocol;
typedef struct gn_protocol_ops gn_protocol_ops;

/** A protocol instance (one per node and component). Created by core. */
struct gn_protocol {
    const gn_protocol_ops *ops;
    gn_loop *loop;
    void *state;   /* ops->state_size zeroed bytes, or NULL */
    gn_host *host; /* the node that runs it */
};

/** What is known about an inbound stream. Valid during on_stream. */
typedef struct gn_protocol_stream_info {
    const char *protocol_id;  /* the negotiated id */
    gn_peer_id remote_peer;
    gn_channel *channel;      /* borrowed: gn_channel_hold() to keep it */
} gn_protocol_stream_info;

struct gn_protocol_ops {
    GN_LAYER_OPS_HEADER;
    /** Optional: called by gn_protocol_new(); a negative gn_err refuses the instance. */
    int (*init)(gn_protocol *p);
    /** Optional: called by gn_protocol_free(). */
    void (*fini)(gn_protocol *p);
    /**
     * Optional: the node started (listeners are being opened); register
     * further handlers, subscribe to host events. A negative gn_err stops
     * the node's start.
     */
    int (*start)(gn_protocol *p);
    /** Optional: the node is closing; cancel what is pending. No host calls after it. */
    void (*stop)(gn_protocol *p);
    /** Required: a negotiated inbound stream for @name; the callee owns @s. */
    void (*on_stream)(gn_protocol *p, gn_stream *s, const gn_protocol_stream_info *info);
    /**
     * The gn_node_config.protocols bit (GN_NODE_PROTO_*) that turns the
     * component on or off when the node has no protocol_components list;
     * 0: the component runs unless it is GN_LAYER_F_EXPLICIT_ONLY.
     */
    uint32_t node_bit;
};

/**
 * Creates an instance of @ops for @host on @loop (calls ops->init).
 * Errors: GN_EINVAL (NULL), GN_EABI (ops->abi is not GN_PROTOCOL_ABI),
 * GN_ENOMEM, or init's error.
 */
GN_API int gn_protocol_new(const gn_protocol_ops *ops, gn_host *host, gn_loop *loop,
                           gn_protocol **out);
/** Frees @p (calls ops->fini). NULL is a no-op. */
GN_API void gn_protocol_free(gn_protocol *p);

GN_END_DECLS

#endif /* GOLEMNET_PROTOCOL_H */
