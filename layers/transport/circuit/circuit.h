/*
 * The circuit relay v2 transport (internal): dials and listens through
 * relays (libp2p/specs relay/circuit-v2.md). circuit_layer.c is the transport
 * (dial with HOP CONNECT, listen with RESERVE and the STOP handler);
 * circuit_conn.c is the connection it hands to the node.
 */
#ifndef GNI_CIRCUIT_H
#define GNI_CIRCUIT_H

#include "golemnet/host.h"
#include "golemnet/transport.h"

#include "gni.h"

typedef struct circ_state circ_state;

/* The transport instance's state (gn_transport.state). */
struct circ_state {
    gn_transport *t;
    gni_list listeners;    /* circ_listener */
    gni_list dials;        /* circ_dial not yet completed */
    gni_list accepts;      /* circ_accept: STOP streams being answered */
    bool stop_registered;  /* the STOP handler is set on the host */
};

/* A relayed connection (circuit_conn.c). */
typedef struct circ_conn {
    gn_stream s;           /* handed to the node */
    circ_state *st;
    gn_stream *inner;      /* the hop or stop stream the relay splices */
    gn_multiaddr *local, *remote;
    bool limited;
    gn_conn_limit limit;
} circ_conn;

/*
 * Wraps @inner (taken; bytes after the handshake already pushed back into
 * it) as a connection with the given addresses (copied; may be NULL) and
 * limits (NULL: the relay set none). Errors: GN_ENOMEM (then @inner is
 * still the caller's).
 */
int gni_circ_conn_new(circ_state *st, gn_stream *inner, const gn_multiaddr *local,
                      const gn_multiaddr *remote, const gn_conn_limit *limit, gn_stream **out);

#endif /* GNI_CIRCUIT_H */
