/*
 * golemnet-p2pd's server: answers the libp2p daemon control protocol
 * (p2pd.h, go-libp2p-daemon specs/CONTROL.md and DHT.md) on a control
 * socket for a node, through the node's public API (golemnet/node.h,
 * golemnet/host.h) and the shared control-socket layer (../gni_ipc.h).
 * Private to golemnet; tools/p2pd_main.c is the program, docs/p2pd.md
 * the user's description.
 *
 * Each control connection carries requests one at a time (a client
 * usually opens one connection per request); a STREAM_OPEN that succeeds
 * turns its connection into the stream's raw bytes, and each inbound
 * stream of a protocol registered with STREAM_HANDLER gets a connection
 * the server makes to the client's address (a Unix socket or loopback
 * TCP), a StreamInfo message, then raw bytes. Backpressure holds both ways
 * (docs/p2pd.md "Limits").
 *
 * Thread context: the node must run on an application loop (its
 * gn_node_config.loop); every function here runs on that loop's thread,
 * and so do all of the server's callbacks.
 */
#ifndef GNI_P2PD_UV_H
#define GNI_P2PD_UV_H

#include "golemnet/node.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gni_p2pd gni_p2pd;

/** Most control connections at once (the default of max_conns). */
#define GNI_P2PD_CONNS_DEFAULT 256u
/**
 * Most stream-handler connections (inbound streams piped to a client) at
 * once (the default of max_handler_conns). Counted apart from the control
 * connections, so that a remote peer opening streams cannot use up the
 * control connections' room.
 */
#define GNI_P2PD_HANDLER_CONNS_DEFAULT 256u
/**
 * Bytes of answers queued on a control connection past which the server
 * stops reading the next request until the client read half of them.
 */
#define GNI_P2PD_CTL_WRITE_MAX (256u * 1024u)
/** Time a control connection has to send a complete request (default of req_read_timeout_ms). */
#define GNI_P2PD_REQ_READ_TIMEOUT_MS 60000u
/** Bytes a stream pipe buffers each way before it stops reading. */
#define GNI_P2PD_PIPE_WINDOW (256u * 1024u)
/** Most protocols registered with STREAM_HANDLER. */
#define GNI_P2PD_HANDLERS_MAX 32u
/** Most (peer, tag) pairs the CONNMANAGER requests keep. */
#define GNI_P2PD_TAGS_MAX 1024u

/** Server options; zero-initialise, then set the fields. */
typedef struct gni_p2pd_config {
    /** The node (borrowed; outlives the server), created with cfg.loop set. */
    gn_node *node;
    /**
     * Control address: "/unix/PATH", a path, or an explicit loopback
     * "/ip4/127.0.0.1/tcp/N" / "/ip6/::1/tcp/N" (../gni_ipc.h). Copied.
     */
    const char *listen;
    /** The node runs a DHT router: DHT requests are served, else refused. */
    bool dht;
    /** Most control connections at once; 0: GNI_P2PD_CONNS_DEFAULT. */
    size_t max_conns;
    /** Most stream-handler connections at once; 0: GNI_P2PD_HANDLER_CONNS_DEFAULT. */
    size_t max_handler_conns;
    /**
     * Milliseconds a control connection has, from its accept or its last
     * answer, to send a complete request; past it the connection gets an
     * ERROR and is closed. 0: GNI_P2PD_REQ_READ_TIMEOUT_MS.
     */
    uint32_t req_read_timeout_ms;
} gni_p2pd_config;

/**
 * Creates the server and subscribes to the node's connection events (for
 * LIST_PEERS and DISCONNECT): call it before gn_node_start() so that no
 * channel is missed. Loop thread (or before the loop runs).
 * Errors: GN_EINVAL (NULL node or listen address), GN_ENOMEM.
 */
int gni_p2pd_new(const gni_p2pd_config *cfg, gni_p2pd **out);

/**
 * Opens the control socket. @err (may be NULL) receives a message naming
 * the problem. Errors: those of gni_ipc_listen() (GN_EINVAL, GN_EACCES: an
 * address that is neither a Unix socket nor loopback TCP, GN_EADDRINUSE: a
 * live daemon on the path, GN_EEXIST, GN_EIO), GN_ESTATE (started twice).
 */
int gni_p2pd_start(gni_p2pd *d, char *err, size_t errlen);

/**
 * The bound control address as a multiaddr ("/unix/tmp/p2pd.sock",
 * "/ip4/127.0.0.1/tcp/40123"), NUL-terminated, borrowed until the server is
 * freed; "" before gni_p2pd_start().
 */
const char *gni_p2pd_addr(const gni_p2pd *d);

/**
 * Stops the server: the control socket is closed (its file removed),
 * every connection closed (pipes reset, pending operations cancelled), the
 * stream handlers removed from the node. @cb (may be NULL) runs once from
 * the loop when everything is released; then gni_p2pd_free(). Idempotent
 * (the second call's @cb is not called).
 */
void gni_p2pd_close(gni_p2pd *d, void (*cb)(void *arg), void *arg);

/** Frees the server: after the close callback, or when it never started. NULL: no-op. */
void gni_p2pd_free(gni_p2pd *d);

/** Counters for tests and logs. */
typedef struct gni_p2pd_stats {
    uint64_t requests;     /* requests decoded */
    uint64_t errors;       /* ERROR responses sent */
    uint64_t conns_open;   /* connections now open (control and handler) */
    uint64_t conns_refused; /* control connections closed at once: over max_conns */
    uint64_t handler_refused; /* inbound handler streams reset: over max_handler_conns */
    uint64_t read_waits;   /* times the next request waited for the client to read answers */
    uint64_t read_timeouts; /* control connections closed: no complete request in time */
    uint64_t pipes;        /* stream pipes started (STREAM_OPEN and handler) */
} gni_p2pd_stats;

/** Fills @st. */
void gni_p2pd_stats_get(const gni_p2pd *d, gni_p2pd_stats *st);

#endif /* GNI_P2PD_UV_H */
