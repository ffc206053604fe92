/*
 * golemnet - application protocol ops: handlers for negotiated streams.
 *
 * A protocol component answers streams whose protocol id (its name, e.g.
 * "/ipfs/ping/1.0.0") was selected by multistream-select. Built-in
 * protocols arrive with the node issue (identify, ping, echo, perf).
 */
#ifndef GOLEMNET_PROTOCOL_H
#define GOLEMNET_PROTOCOL_H

#include "golemnet/identity.h"
#include "golemnet/layer.h"
#include "golemnet/stream.h"

GN_BEGIN_DECLS

/** ABI version: (kind << 16) | revision, so a table of another kind never passes. */
#define GN_PROTOCOL_ABI 0x40001u

typedef struct gn_protocol gn_protocol;
typedef struct gn_protocol_ops gn_protocol_ops;

/** A protocol instance (one per node and component). */
struct gn_protocol {
    const gn_protocol_ops *ops;
    gn_loop *loop;
    void *state;
    void *host;  /* the node that runs it (gn_node *), opaque here */
};

/** What is known about an inbound stream. Valid during on_stream. */
typedef struct gn_protocol_stream_info {
    const char *protocol_id;  /* the negotiated id */
    gn_peer_id remote_peer;
    bool initiator;           /* true if we opened the stream */
} gn_protocol_stream_info;

struct gn_protocol_ops {
    GN_LAYER_OPS_HEADER;
    int (*init)(gn_protocol *p);   /* optional */
    void (*fini)(gn_protocol *p);  /* optional */
    /** Required: a negotiated stream for this protocol; the callee owns @s. */
    void (*on_stream)(gn_protocol *p, gn_stream *s, const gn_protocol_stream_info *info);
};

GN_END_DECLS

#endif /* GOLEMNET_PROTOCOL_H */
