/*
 * golemnet - resource transfer: share a file under a content address (a
 * CID), fetch it from one or many providers, verified chunk by chunk,
 * resumable after a crash, with progress events; announce and find
 * providers through the DHT.
 *
 * The transfer component (/golem/transfer/1.0.0, protocols/transfer/)
 * runs on every node built with the meson option `transfer` unless the
 * node's protocol_components list leaves it out; it serves only what was
 * shared with gn_xfer_share() and answers ERROR(NOT_FOUND) otherwise.
 *
 * Thread context: every function here is loop-thread only (the node's
 * loop: call it from a gn_loop_submit() command, a callback, or before
 * gn_node_start() for nothing here, since the component starts with the
 * node). Callbacks run on the loop thread, never from inside the call that
 * started them.
 *
 * Errors common to every function: GN_EINVAL (a NULL argument that is not
 * allowed, not on the loop thread), GN_ENOTSUP (the node runs no transfer
 * component: built without it, or left out by protocol_components),
 * GN_ESTATE (the node is not started or is closing), GN_ENOMEM.
 *
 * Spec: docs/protocols/transfer.md (the protocol, content addressing,
 * resume state) and docs/transfer.md (the user guide). Since: 0.7
 */
#ifndef GOLEMNET_TRANSFER_H
#define GOLEMNET_TRANSFER_H

#include "golemnet/node.h"

GN_BEGIN_DECLS

/** The protocol id. */
#define GN_XFER_PROTOCOL_ID "/golem/transfer/1.0.0"
/** Longest CID text, NUL included (multibase base32 of a 38-byte CIDv1). */
#define GN_XFER_CID_STR_MAX 64u

/**
 * Outcome of gn_xfer_share(): @status 0 with @cid (NUL-terminated text,
 * borrowed for the call) and the file's size in bytes, or an error:
 * GN_EIO (open, stat or read failed: the file is missing or unreadable),
 * GN_ETOOBIG (larger than 2^50 bytes), GN_ECANCELED (node closing), GN_ENOMEM.
 */
typedef void (*gn_xfer_share_cb)(void *arg, int status, const char *cid, uint64_t size);

/**
 * Shares the regular file @path (NUL-terminated; copied): hashes it on
 * libuv's thread pool (256 KiB chunks, BLAKE2b-256 Merkle tree: one read
 * of the whole file), then serves it to any peer that asks for its CID,
 * until gn_xfer_unshare() or the node closes. The provider keeps the
 * Merkle tree in memory (64 bytes per chunk: 256 KiB per GiB) and reads
 * chunks from @path when asked, so a file changed after sharing is served
 * as it is now: requesters then reject the changed chunks (transfer.md
 * 7.4). Sharing the same content twice gives the same CID; the second
 * share replaces the first's path. Immediate errors: the common ones.
 * Spec: docs/protocols/transfer.md section 2.
 */
GN_API int gn_xfer_share(gn_node *n, const char *path, gn_xfer_share_cb cb, void *arg);

/**
 * Stops serving @cid (text). Streams already serving it end with
 * ERROR(NOT_FOUND) at their next request. Errors: the common ones,
 * GN_EPARSE (not a CID), GN_ENOTFOUND (not shared).
 */
GN_API int gn_xfer_unshare(gn_node *n, const char *cid);

/** Outcome of gn_xfer_provide() / gn_xfer_find() (see each). */
typedef void (*gn_xfer_provide_cb)(void *arg, int status);
/**
 * Providers found by gn_xfer_find(): @status 0 (or GN_ETIMEDOUT with those
 * found meanwhile) and @n multiaddrs, each NUL-terminated and ending in
 * /p2p/<peer id>, borrowed for the call; GN_ENOROUTE (no DHT peer to ask),
 * GN_ENOTSUP (no DHT router).
 */
typedef void (*gn_xfer_find_cb)(void *arg, int status, const char *const *addrs, size_t n);

/**
 * Announces this node as a provider of @cid through the DHT: a provider
 * record under the CID's multihash (the 34 bytes after the CID's version
 * and codec), as IPFS does, republished while the node runs
 * (gn_node_dht_provide()). @cb: 0, GN_ENOROUTE (recorded here only),
 * GN_ENOTSUP (no DHT router), GN_ETIMEDOUT. Errors: the common ones,
 * GN_EPARSE (not a CID).
 */
GN_API int gn_xfer_provide(gn_node *n, const char *cid, gn_xfer_provide_cb cb, void *arg);
/**
 * Finds up to @max (1..64) providers of @cid in the DHT. Errors: the
 * common ones, GN_EPARSE. Providers that the DHT knows no address for are
 * left out.
 */
GN_API int gn_xfer_find(gn_node *n, const char *cid, size_t max, gn_xfer_find_cb cb, void *arg);

/** A download's progress; every figure is as of the event. */
typedef struct gn_xfer_progress {
    uint64_t bytes_done;   /* verified and written (resumed chunks included) */
    uint64_t bytes_total;  /* the resource's size; 0 until the manifest came */
    uint64_t bytes_resumed; /* verified chunks found on disk at the start */
    uint64_t chunks_done, chunks_total;
    uint64_t rate;         /* bytes/s over the last few seconds (EWMA) */
    int64_t eta_ms;        /* -1: unknown (no rate yet) */
    unsigned peers;        /* providers with an open stream now */
    unsigned peers_banned; /* providers dropped for a corrupt chunk */
    uint64_t bytes_received; /* chunk bytes received this run, duplicates included */
} gn_xfer_progress;

/** gn_xfer_event.type */
typedef enum gn_xfer_event_type {
    GN_XFER_EV_PROGRESS = 1, /* periodic (progress_interval) and at the manifest */
    GN_XFER_EV_PEER_UP,      /* a provider's stream is open and it sent its manifest */
    GN_XFER_EV_PEER_DOWN,    /* a provider went away: status says why */
    GN_XFER_EV_PEER_BANNED,  /* a provider sent a chunk that did not verify */
    GN_XFER_EV_DONE,         /* the end: status 0 (the file is at its path) or an error */
} gn_xfer_event_type;

/** A download event; borrowed for the callback. */
typedef struct gn_xfer_event {
    gn_xfer_event_type type;
    /**
     * DONE: 0, GN_ECANCELED (gn_xfer_fetch_cancel(), node closing),
     * GN_ENOTFOUND (no provider has the resource, or discovery found none),
     * GN_EUNREACHABLE (every provider failed or went away before the end),
     * GN_EIO (a file operation failed: detail names it), GN_EDECRYPT (the
     * partial state on disk is of another resource: remove it). PEER_*:
     * the reason (GN_EDECRYPT for a corrupt chunk).
     */
    int status;
    const gn_xfer_progress *progress;
    const char *peer;   /* PEER_*: the provider's multiaddr; else NULL */
    const char *detail; /* NULL or words about the status */
} gn_xfer_event;

/** Download events (loop thread). After DONE there are no more calls. */
typedef void (*gn_xfer_event_cb)(void *arg, const gn_xfer_event *ev);

/** gn_xfer_fetch() options; fill with gn_xfer_fetch_opts_default() first. */
typedef struct gn_xfer_fetch_opts {
    uint32_t version; /* GN_XFER_FETCH_OPTS_VERSION */
    /**
     * Providers: @n_providers multiaddrs ending in /p2p/<peer id> (copied).
     * None: the DHT is asked (gn_xfer_find(), up to max_providers).
     */
    const char *const *providers;
    size_t n_providers;
    size_t max_providers;     /* 1..64; default 16 */
    gn_time progress_interval; /* default 250 ms; 0: only at the manifest and the end */
    /**
     * Memory bound of the downloader: chunks held in memory at once
     * (received and waiting for the disk, plus asked for and not yet
     * received); default 48 (12 MiB at 256 KiB chunks), 4..256.
     */
    unsigned max_chunks_in_memory;
    /**
     * Download rate cap, bytes/s (chunks asked for, averaged over 250 ms
     * ticks); 0: none (default). For sharing a link politely, and for tests
     * that need a transfer to last.
     */
    uint64_t max_rate;
} gn_xfer_fetch_opts;
#define GN_XFER_FETCH_OPTS_VERSION 1

/** Fills @o with the defaults above. Since: 0.7 */
GN_API void gn_xfer_fetch_opts_default(gn_xfer_fetch_opts *o);

typedef struct gn_xfer_fetch gn_xfer_fetch;

/**
 * Downloads @cid (text) to @path (NUL-terminated; copied). Keeps
 * PATH.part (the bytes, sparse) and PATH.part.state (the manifest and the
 * bitmap of verified chunks) until the end, then renames PATH.part to
 * PATH (replacing it) and removes the state file. A download that finds
 * a state file of the same CID resumes: only chunks whose bit is clear
 * are fetched. Chunks are verified against the manifest's Merkle root
 * before they are written; a provider that sends a bad one is banned for
 * this download (PEER_BANNED) and its chunks are asked of the others.
 * @opts NULL: the defaults. @cb (not NULL) gets the events; the last is
 * DONE, exactly once. *@out: a handle for gn_xfer_fetch_cancel(), valid
 * until DONE was delivered; may be NULL.
 * Immediate errors: the common ones, GN_EPARSE (not a CID, or a provider
 * that is not a multiaddr with /p2p/), GN_EINVAL (options), GN_EEXIST (a
 * download to @path is running).
 * Spec: docs/protocols/transfer.md sections 6-8.
 */
GN_API int gn_xfer_fetch_start(gn_node *n, const char *cid, const char *path,
                               const gn_xfer_fetch_opts *opts, gn_xfer_event_cb cb, void *arg,
                               gn_xfer_fetch **out);

/**
 * Cancels a download: its streams close, the partial state stays on disk
 * (a later fetch resumes it), and DONE with GN_ECANCELED follows from the
 * loop. Calling it after DONE is a bug. Loop thread.
 */
GN_API void gn_xfer_fetch_cancel(gn_xfer_fetch *f);

/** Writes a human-readable byte count ("1.5 MiB") into @out. Any thread. */
GN_API void gn_xfer_format_bytes(uint64_t bytes, char *out, size_t out_len);

GN_END_DECLS

#endif /* GOLEMNET_TRANSFER_H */
