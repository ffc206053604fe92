/*
 * golemnet Python bindings - the thread bridge between a node's loop thread
 * and one consumer thread (the Python thread that runs the asyncio loop).
 *
 * node.h lets any thread dial, send messages and pop events, but streams
 * (gn_stream) and a few channel calls (open_stream, ping, set_handler after
 * the start) are loop-thread only. The bridge gives the consumer thread
 * stream objects it can read, write and close, and completions for those
 * loop-thread calls, without ever blocking the loop thread on the consumer:
 *
 *  - consumer -> loop: requests are queued with gn_loop_submit(). Stream
 *    writes and stream state changes do not post one command each: the
 *    stream is put on the bridge's "kick list" and one command per batch
 *    moves every queued chunk and flag to the loop (coalescing).
 *  - loop -> consumer: completions ("notes") go into the bridge's note list,
 *    an MPSC queue whose wakeup fd (eventfd, or a pipe) is made readable on
 *    the empty -> non-empty transition. A stream has one embedded note that
 *    is queued at most once at a time ("something changed, look again").
 *
 * Bounds and backpressure. Every note is either the answer to one consumer
 * request (bounded by the consumer's outstanding requests), a stream's
 * embedded note (at most one per stream), or an inbound stream (bounded by
 * the node's stream limits). Received bytes wait in a per-stream queue of at
 * most rx_limit bytes: at the limit the loop calls gn_stream_read_stop(), so
 * the muxer's window closes towards the sender; the consumer's read restarts
 * it once the queue fell to half. Written bytes wait in a per-stream queue
 * too; gnb_stream_write() reports when the queued plus in-flight bytes
 * exceed tx_limit, and the consumer then waits for the stream's note that
 * says the bytes drained (that is how "awaiting a write waits for the
 * window" reaches Python).
 *
 * Thread context: functions named "consumer" are called by the consumer
 * thread(s) (any thread, but the bridge serialises nothing above its
 * mutexes: the Python module calls them holding the GIL); the loop-side
 * callbacks are internal. Lock order: stream mutex, then bridge mutexes;
 * the loop thread never waits for the consumer.
 *
 * This is bindings-side code; docs/python.md ("A library stream bridge?")
 * proposes moving a general any-thread stream API into the library.
 */
#ifndef GOLEMNET_PY_BRIDGE_H
#define GOLEMNET_PY_BRIDGE_H

#include "golemnet/golemnet.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct gnb_bridge gnb_bridge;
typedef struct gnb_stream gnb_stream;

/** Note kinds. */
enum {
    GNB_NOTE_DIAL = 1,    /* token, status, ch (held); GN_EPEERID: protocol = the peer ID received, or "" */
    GNB_NOTE_OPEN = 2,    /* token, status, st */
    GNB_NOTE_PING = 3,    /* token, status, rtt */
    GNB_NOTE_INBOUND = 4, /* st, ch (held), protocol */
    GNB_NOTE_STREAM = 5,  /* st: its state changed (data, eof, error, drained, closed) */
    GNB_NOTE_DONE = 6,    /* token, status (handler registration) */
    GNB_NOTE_PEER = 7,    /* token, status, peer (the peer store's entry) */
    GNB_NOTE_DHT = 8,     /* token, status, dht (what the DHT call found, or NULL) */
    /* token, status; xfer: a transfer event or a share/provide/find outcome
     * (gnb_xfer_*; built with the transfer component: GNPY_HAVE_XFER) */
    GNB_NOTE_XFER = 9
};

/**
 * A copy of what the node's peer store holds about one peer
 * (gn_node_peer_info(), gn_node_peer_addr(), gn_node_peer_protocol()):
 * heap memory owned by the note that carries it.
 */
typedef struct gnb_peer {
    gn_peer_info info;
    size_t n_addrs;                          /* entries of addrs */
    size_t n_protocols;                      /* entries of protocols */
    char (*addrs)[GN_NODE_ADDR_MAX];         /* NUL-terminated multiaddrs */
    char (*protocols)[GN_PROTOCOL_ID_MAX];   /* NUL-terminated protocol ids */
} gnb_peer;

/** A peer a DHT call found: its ID and addresses (heap, owned by its gnb_dht). */
typedef struct gnb_dht_peer {
    char id[GN_PEER_ID_MAX_STRLEN];
    size_t n_addrs;
    char (*addrs)[GN_NODE_ADDR_MAX]; /* NUL-terminated multiaddrs */
} gnb_dht_peer;

/** What a DHT call answered (gn_node_dht_result, copied off the loop thread). */
typedef struct gnb_dht {
    uint8_t *value; /* get: the record's value */
    size_t value_len;
    gnb_dht_peer *peers; /* find_peer, find_providers, closest_peers */
    size_t n_peers;
} gnb_dht;

/** Frees a gnb_dht taken from a note. NULL is a no-op. */
void gnb_dht_free(gnb_dht *d);

/** The most addresses and protocol ids gnb_peer_lookup() copies of a peer. */
#define GNB_PEER_LIST_MAX 256

/**
 * One completion, copied out by gnb_bridge_poll(). The receiver owns one
 * reference to @ch (gn_channel_rele) and to @st (gnb_stream_rele) when set;
 * gnb_note_release() drops whatever it did not take.
 */
/*
 * A resource-transfer note (golemnet/transfer.h): @type is a
 * gn_xfer_event_type for fetch events, or GNB_XFER_SHARED (text: the CID,
 * size: bytes), GNB_XFER_PROVIDED, GNB_XFER_FOUND (addrs: the providers).
 */
enum { GNB_XFER_SHARED = 100, GNB_XFER_PROVIDED = 101, GNB_XFER_FOUND = 102 };
typedef struct gnb_xfer {
    int type;
    uint64_t v[10]; /* bytes_done, bytes_total, bytes_resumed, chunks_done, chunks_total,
                     * rate, eta_ms (+1; 0 unknown), peers, peers_banned, bytes_received */
    char *peer;     /* NULL or text */
    char *detail;   /* NULL or text (SHARED: the CID) */
    char **addrs;   /* FOUND */
    size_t n_addrs;
} gnb_xfer;

typedef struct gnb_note {
    struct gnb_note *next; /* private */
    int kind;
    int status;
    uint64_t token;
    gn_channel *ch;
    gnb_stream *st;
    gn_time rtt;
    char protocol[GN_PROTOCOL_ID_MAX];
    gnb_peer *peer; /* GNB_NOTE_PEER on success; the receiver may take it (then NULL it) */
    gnb_dht *dht;   /* GNB_NOTE_DHT: what was found (also with GN_ETIMEDOUT), or NULL */
    gnb_xfer *xfer; /* GNB_NOTE_XFER, or NULL (out of memory) */
} gnb_note;

/** Frees a gnb_peer taken from a note. NULL is a no-op. */
void gnb_peer_free(gnb_peer *p);

/** Releases the references and memory a polled note still carries (ch, st, peer, dht). */
void gnb_note_release(gnb_note *note);

/**
 * Creates the bridge of node @n (created, not necessarily started) with
 * per-stream bounds @rx_limit and @tx_limit (bytes; 0 = 1 MiB / 4 MiB).
 * Consumer thread. Errors: GN_ENOMEM, GN_EIO (no wakeup fd).
 */
int gnb_bridge_new(gn_node *n, size_t rx_limit, size_t tx_limit, gnb_bridge **out);

/**
 * Marks the node gone: later requests fail with GN_ECLOSED. Call before
 * gn_node_free(); the loop may still deliver notes until that returns.
 */
void gnb_bridge_detach(gnb_bridge *br);

/** Drops the consumer's reference (streams keep the bridge alive). */
void gnb_bridge_rele(gnb_bridge *br);

/** The wakeup fd: readable while notes are queued. Do not read or close it. */
int gnb_bridge_fd(const gnb_bridge *br);

/**
 * Takes up to @max queued notes into @out (oldest first); returns the count.
 * Clears the wakeup fd when the list becomes empty. Consumer thread.
 */
size_t gnb_bridge_poll(gnb_bridge *br, gnb_note *out, size_t max);

/**
 * Registers (@add) or removes the bridge's stream handler for @protocol_id on
 * the node. Before gn_node_start() it runs here and returns its result;
 * afterwards it is queued (returns 1) and completes with a GNB_NOTE_DONE
 * note carrying @token. Errors: those of gn_node_set_handler(), GN_EAGAIN
 * (command queue full), GN_ECLOSED, GN_ENOMEM.
 */
int gnb_set_handler(gnb_bridge *br, const char *protocol_id, bool add, bool started,
                    uint64_t token);

/**
 * Dials @multiaddr (gn_node_dial_ex()); the outcome is a GNB_NOTE_DIAL
 * note with @token. Errors (immediate, no note): those of
 * gn_node_dial_ex(), GN_ECLOSED.
 */
int gnb_dial(gnb_bridge *br, const char *multiaddr, uint64_t token);

/** Pings over @ch (borrowed); GNB_NOTE_PING note. Errors: GN_EAGAIN, GN_ECLOSED, GN_ENOMEM. */
int gnb_ping(gnb_bridge *br, gn_channel *ch, uint64_t token);

/**
 * Refreshes @ch's metrics snapshot on the loop thread (other threads read
 * the last snapshot, which the node takes only at messages, pings and idle
 * checks); GNB_NOTE_DONE note with @token once gn_channel_metrics_get()
 * returns fresh values. Errors: GN_EAGAIN, GN_ECLOSED, GN_ENOMEM.
 */
int gnb_refresh_metrics(gnb_bridge *br, gn_channel *ch, uint64_t token);

/**
 * Copies the peer store's entry for @peer on the loop thread (at most
 * GNB_PEER_LIST_MAX addresses and protocol ids each); GNB_NOTE_PEER note
 * with @token: status 0 and note->peer, or GN_ENOTFOUND (the node knows
 * nothing of @peer), GN_ENOMEM. Errors (immediate, no note): GN_EAGAIN
 * (command queue full), GN_ECLOSED, GN_ENOMEM.
 */
int gnb_peer_lookup(gnb_bridge *br, const gn_peer_id *peer, uint64_t token);

/** DHT calls of gnb_dht_call(). */
enum {
    GNB_DHT_FIND_PEER = 1, /* @peer */
    GNB_DHT_GET = 2,       /* @key */
    GNB_DHT_PUT = 3,       /* @key, @value */
    GNB_DHT_PROVIDE = 4,   /* @key */
    GNB_DHT_FIND_PROVIDERS = 5, /* @key, @max */
    GNB_DHT_CLOSEST = 6,   /* @key */
    GNB_DHT_ALLOW = 7      /* @key: a namespace (NUL-terminated), given a permissive validator */
};

/**
 * Runs one gn_node_dht_* call (node.h "the DHT"); the outcome is a
 * GNB_NOTE_DHT note with @token: the status and, in note->dht, the value or
 * the peers found. GNB_DHT_ALLOW registers a validator that accepts every
 * record of the namespace @key (gn_node_dht_set_validator(); allowed before
 * the node starts, then the note comes once it runs). The validator is C on
 * the loop thread: no Python validator runs there, because the loop thread
 * must never wait for the GIL (bridge rule: it never waits for the
 * consumer). Any consumer thread; the arguments are copied. Errors
 * (immediate, no note): those of the gn_node_dht_* call (GN_EINVAL,
 * GN_EAGAIN, GN_ENOMEM, GN_ECLOSED), GN_ECLOSED (node gone).
 */
/*
 * Resource transfer through the bridge (golemnet/transfer.h; built with the
 * transfer component, else GN_ENOTSUP). Each queues a loop command;
 * outcomes come as GNB_NOTE_XFER notes with @token: share: one note
 * (GNB_XFER_SHARED); provide: GNB_XFER_PROVIDED; find: GNB_XFER_FOUND;
 * fetch: a note per event until GN_XFER_EV_DONE (also when starting it
 * failed: DONE with the error). gnb_xfer_cancel() cancels the fetch of
 * @token (no note of its own: its DONE says GN_ECANCELED). Immediate
 * errors: GN_ECLOSED (node gone), GN_EAGAIN, GN_ENOMEM, GN_ENOTSUP.
 * Consumer thread.
 */
int gnb_xfer_share(gnb_bridge *br, const char *path, uint64_t token);
int gnb_xfer_provide(gnb_bridge *br, const char *cid, uint64_t token);
int gnb_xfer_find(gnb_bridge *br, const char *cid, size_t max, uint64_t token);
int gnb_xfer_fetch(gnb_bridge *br, const char *cid, const char *path,
                   const char *const *providers, size_t n_providers, unsigned mem_chunks,
                   gn_time progress_interval, uint64_t token);
int gnb_xfer_cancel(gnb_bridge *br, uint64_t token);
void gnb_xfer_free(gnb_xfer *x);

int gnb_dht_call(gnb_bridge *br, int op, const uint8_t *key, size_t key_len,
                 const uint8_t *value, size_t value_len, const gn_peer_id *peer, size_t max,
                 uint64_t token);

/**
 * Opens a stream on @ch negotiating @protocol_id; GNB_NOTE_OPEN note.
 * Errors: GN_EINVAL (bad id), GN_EAGAIN, GN_ECLOSED, GN_ENOMEM.
 */
int gnb_open_stream(gnb_bridge *br, gn_channel *ch, const char *protocol_id, uint64_t token);

/**
 * Re-posts the kick command after a GN_EAGAIN from a stream call (the
 * command queue was full). Returns 0 or GN_EAGAIN / GN_ECLOSED.
 */
int gnb_bridge_kick(gnb_bridge *br);

/** True when stream work waits for a kick whose post failed (retry it). */
bool gnb_bridge_kick_failed(gnb_bridge *br);

/* ---- streams (consumer side) ---- */

gnb_stream *gnb_stream_hold(gnb_stream *st);
void gnb_stream_rele(gnb_stream *st);

/** The consumer's pointer slot (the Python wrapper); consumer thread only. */
void *gnb_stream_user(const gnb_stream *st);
void gnb_stream_set_user(gnb_stream *st, void *user);

/** Negotiated protocol id and the channel (borrowed; valid while @st lives). */
const char *gnb_stream_protocol(const gnb_stream *st);
gn_channel *gnb_stream_channel(const gnb_stream *st);

/** Read results beside a byte count. */
#define GNB_WOULD_BLOCK (-1000) /* no data yet: wait for the stream's note */

/**
 * Copies up to @max bytes of received data into @out. Returns the count
 * (> 0), 0 at end of stream (remote half-closed, all data read),
 * GNB_WOULD_BLOCK (nothing yet; the stream's note will follow), or the
 * stream's error (GN_ECLOSED after gnb_stream_close(), GN_ESTREAMRESET,
 * GN_ECANCELED, ...) once the buffered data is consumed. May queue a
 * resume (gn_stream_read_start) and then return GN_EAGAIN only if the
 * command queue is full (retry with gnb_bridge_kick()).
 */
long gnb_stream_read(gnb_stream *st, uint8_t *out, size_t max);

/** Bytes buffered for reading now. */
size_t gnb_stream_readable(gnb_stream *st);

/**
 * Queues @iovcnt slices (copied into one chunk) for writing. Returns 0 when
 * the stream's queued + in-flight bytes stay within tx_limit, 1 when they
 * exceed it (the consumer should wait for the stream's note and then
 * gnb_stream_write_ready()), GN_EAGAIN when the kick could not be posted
 * (the bytes ARE queued: call gnb_bridge_kick() later), or an error with
 * nothing queued: GN_ECLOSED (closed or closing), GN_EPIPE (after
 * gnb_stream_shutdown), the stream's error, GN_ENOMEM.
 */
int gnb_stream_write(gnb_stream *st, const gn_slice *iov, size_t iovcnt);

/**
 * Returns 1 when queued + in-flight bytes are within tx_limit (or @all:
 * zero), 0 (not yet: the stream's note will follow) or the stream's error.
 */
int gnb_stream_write_ready(gnb_stream *st, bool all);

/** Half-close after the queued writes. Errors: GN_ECLOSED, GN_ESTATE (twice). */
int gnb_stream_shutdown(gnb_stream *st);

/**
 * Closes the stream after the queued writes were written (@reset: at once,
 * with RST). Idempotent. Returns 0 or GN_EAGAIN (kick later).
 */
int gnb_stream_close(gnb_stream *st, bool reset);

/** True once the loop ran the stream's close callback. */
bool gnb_stream_is_closed(gnb_stream *st);

/** The first error the stream failed with, or 0. */
int gnb_stream_error(gnb_stream *st);

/** True when the remote half-closed (data may still be buffered). */
bool gnb_stream_eof(gnb_stream *st);

/** Counters (bytes read by the consumer, bytes written and completed). */
void gnb_stream_counters(gnb_stream *st, uint64_t *bytes_in, uint64_t *bytes_out);

#endif /* GOLEMNET_PY_BRIDGE_H */
