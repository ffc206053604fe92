/*
 * Kademlia RPC over streams (private to the library): the thin driver
 * between the wire core (protocols/kad/kad_msg.h) and gn_stream.
 *
 * Requests: one stream per request, as js-libp2p and rust-libp2p do
 * (go-libp2p-kad-dht reuses streams; every answer here comes on the stream
 * that asked, so both work): open a stream for the protocol through the
 * host, write one frame, read one frame back (none for ADD_PROVIDER, which
 * has no reply), close. One timer bounds the whole exchange.
 *
 * Serving: an inbound stream carries requests one after another (go sends
 * several per stream); each is answered before the next is read, so a
 * stream holds at most one frame's decoder storage and one reply. The
 * stream ends at the peer's EOF, after an idle period, or at the first
 * malformed frame (reset, with the decoder's reason in the log).
 *
 * Thread context: the host's loop thread.
 * Spec: libp2p/specs kad-dht/README.md "RPC messages"; docs/routing-kad.md.
 */
#ifndef GNI_KAD_RPC_H
#define GNI_KAD_RPC_H

#include "golemnet/host.h"
#include "golemnet/stream.h"

#include "kad_msg.h"

typedef struct gni_kad_rpc gni_kad_rpc;

/** Most explicit addresses a request tries. */
#define GNI_KAD_RPC_ADDRS 4u

/**
 * A request's outcome: @status 0 with the reply @resp (borrowed for the
 * call; NULL for a request that has no reply), or GN_ETIMEDOUT, a stream
 * or dial error, GN_ENEGOTIATION (the peer does not speak the protocol),
 * GN_EEOF (the stream ended without a reply) or the decoder's error
 * (GN_EPROTO, GN_ETOOBIG, GN_EFRAMESIZE, GN_EBADFRAME).
 */
typedef void (*gni_kad_rpc_cb)(void *arg, int status, gni_kad_msg *resp);

/**
 * Sends @req to @peer on a new stream for @protocol_id (a string that
 * outlives the request) and waits at most @timeout for the reply (none
 * when @want_reply is false: the request then completes when its frame is
 * written). When the host can reach @peer by itself (gn_host_peer_dialable)
 * the stream is opened through it; otherwise the request connects to
 * @addrs (@naddrs, at most GNI_KAD_RPC_ADDRS used, in order; copied; a
 * /p2p/<peer> is appended so the handshake checks the peer) and opens the
 * stream on that channel -- addresses that remote peers reported reach the
 * peer store only when a connection to them succeeded. @req and @lim (NULL
 * = defaults) are used during the call only. @cb runs exactly once unless cancelled,
 * never from inside the call. *@out (may be NULL) receives the handle for
 * gni_kad_rpc_cancel(); it is valid until @cb runs.
 * Errors (@cb will not run): GN_EINVAL, GN_ENOMEM, GN_ENOROUTE (not
 * reachable and no usable address), the encoder's error,
 * gn_host_new_stream()'s or gn_host_connect()'s.
 */
int gni_kad_rpc_send(gn_host *h, const char *protocol_id, const gn_peer_id *peer,
                     gn_multiaddr *const *addrs, size_t naddrs, const gni_kad_msg *req,
                     bool want_reply, const gni_kad_limits *lim, gn_time timeout,
                     gni_kad_rpc_cb cb, void *arg, gni_kad_rpc **out);

/** Cancels @r: its callback will not run. The stream, if any, is reset. */
void gni_kad_rpc_cancel(gni_kad_rpc *r);

/**
 * A request on an inbound stream: fill @resp (initialised, empty) and
 * return 1 to send it, 0 to send nothing (ADD_PROVIDER), or a negative
 * gn_err to reset the stream (a request refused: rate limit, bad record).
 */
typedef int (*gni_kad_serve_fn)(void *arg, const gn_peer_id *peer, const gni_kad_msg *req,
                                gni_kad_msg *resp);
/** The served stream ended (@status 0: EOF or idle, else why). */
typedef void (*gni_kad_serve_end_fn)(void *arg, const gn_peer_id *peer, int status);

typedef struct gni_kad_srv gni_kad_srv;

/**
 * Serves requests on the inbound stream @s (owned from here on) from
 * @peer until it ends: @fn per request, @end once at the end (not when
 * this call fails, nor after gni_kad_serve_abort()). @idle bounds the wait
 * for a request. *@out (may be NULL) receives the handle, valid until
 * @end runs. Errors (the caller still owns @s): GN_EINVAL, GN_ENOMEM.
 */
int gni_kad_serve(gn_stream *s, const gn_peer_id *peer, const gni_kad_limits *lim, gn_time idle,
                  gni_kad_serve_fn fn, gni_kad_serve_end_fn end, void *arg, gni_kad_srv **out);

/** Resets the served stream; neither @fn nor @end runs again. */
void gni_kad_serve_abort(gni_kad_srv *sv);

#endif /* GNI_KAD_RPC_H */
