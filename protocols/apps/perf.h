/*
 * libp2p perf (internal): /perf/1.0.0.
 *
 * Wire (libp2p/specs perf/perf.md "Protocol"): the client sends the number
 * of bytes it wants back as a big-endian uint64, uploads any number of
 * bytes, and half-closes. The server reads the 8-byte count, reads until
 * EOF, then sends that many bytes and closes. js-libp2p's @libp2p/perf
 * does exactly this (its server reads the count from the first chunk, so
 * our client writes the 8 bytes as one write, before any payload). The
 * payload content is not specified; we send zeros.
 *
 * perf.c is the sans-I/O state machine (byte accounting, ordering rules);
 * perf_stream.c drives it on a gn_stream with bounded, chunked writes.
 *
 * Thread context: the core is pure; the drivers are loop-thread only.
 */
#ifndef GNI_PERF_H
#define GNI_PERF_H

#include "apps.h"

/** Size of the request header, bytes. */
#define GNI_PERF_HEADER_LEN 8
/** Largest single write of the drivers, bytes. */
#define GNI_PERF_CHUNK (64u * 1024u)
/** Most writes the drivers keep in flight (bounded output: 4 x 64 KiB). */
#define GNI_PERF_INFLIGHT 4u

/** States of the core. */
typedef enum gni_perf_state {
    GNI_PERF_SRV_HEADER = 0, /* server: reading the 8-byte count */
    GNI_PERF_SRV_DRAIN,      /* server: reading the upload until EOF */
    GNI_PERF_SRV_SEND,       /* server: sending the count, then close */
    GNI_PERF_CLI_HEADER,     /* client: header not yet taken */
    GNI_PERF_CLI_UPLOAD,     /* client: sending the upload, then half-close */
    GNI_PERF_CLI_DOWNLOAD,   /* client: reading the download until EOF */
    GNI_PERF_DONE,
    GNI_PERF_FAILED
} gni_perf_state;

/** The state machine. Caller-owned; fields private (read with the getters). */
typedef struct gni_perf {
    gni_perf_state state;
    int err;
    uint8_t hdr[GNI_PERF_HEADER_LEN];
    size_t hdr_got;
    uint64_t to_send;   /* bytes still to send in the current sending phase */
    uint64_t to_recv;   /* client: download bytes still expected */
    uint64_t requested; /* the count from the header */
    uint64_t received;  /* payload bytes received (after the header) */
} gni_perf;

/** Writes @count big-endian into @out. */
void gni_perf_header_encode(uint64_t count, uint8_t out[GNI_PERF_HEADER_LEN]);
/** Reads a big-endian count. */
uint64_t gni_perf_header_decode(const uint8_t in[GNI_PERF_HEADER_LEN]);

/** Server side, waiting for the header. */
void gni_perf_server_init(gni_perf *p);
/** Client side that will upload @upload bytes and ask for @download. */
void gni_perf_client_init(gni_perf *p, uint64_t upload, uint64_t download);

/**
 * Client: takes the header to send first (state CLI_HEADER -> CLI_UPLOAD).
 * Returns 0, or 1 when the upload is empty (state CLI_DOWNLOAD: half-close
 * right after the header). Errors: GN_ESTATE in any other state.
 */
int gni_perf_client_header(gni_perf *p, uint8_t out[GNI_PERF_HEADER_LEN]);

/**
 * How many payload bytes to send next, at most @max: nonzero only in
 * SRV_SEND and CLI_UPLOAD.
 */
size_t gni_perf_send_budget(const gni_perf *p, size_t max);

/**
 * Records that @n payload bytes were handed to the stream. Returns 1 when
 * the sending phase just ended (client: now half-close; server: now
 * half-close and close), 0 otherwise. Errors: GN_ESTATE (not sending),
 * GN_ERANGE (@n exceeds the budget).
 */
int gni_perf_sent(gni_perf *p, size_t n);

/**
 * Feeds received bytes (any split; all are consumed).
 * Errors (sticky, state FAILED): GN_EPROTO (client: bytes while still
 * uploading, or more than requested; server: bytes after EOF or while
 * sending), GN_ESTATE (DONE or FAILED already: the sticky code).
 */
int gni_perf_feed(gni_perf *p, const uint8_t *in, size_t len);

/**
 * Feeds the peer's half-close. Server: SRV_HEADER -> GN_EPROTO (truncated
 * header), SRV_DRAIN -> SRV_SEND. Client: CLI_DOWNLOAD -> DONE when every
 * requested byte arrived, else GN_EPROTO (short download); before the
 * upload ended GN_EPROTO. Returns 0 or the (sticky) error.
 */
int gni_perf_feed_eof(gni_perf *p);

/** The current state. */
static inline gni_perf_state gni_perf_get_state(const gni_perf *p) { return p->state; }
/** Payload bytes received so far. */
static inline uint64_t gni_perf_received(const gni_perf *p) { return p->received; }
/** Server: the count the client asked for (valid from SRV_DRAIN on). */
static inline uint64_t gni_perf_requested(const gni_perf *p) { return p->requested; }

/* ---- drivers (perf_stream.c) ---- */

/**
 * Serves one perf request on @s: reads the count and the upload (discarded)
 * until EOF, sends the count in chunks of GNI_PERF_CHUNK with at most
 * GNI_PERF_INFLIGHT writes in flight (waiting for on_writable after
 * GN_EAGAIN), half-closes and closes. On success the driver owns @s; @cb
 * (may be NULL) runs once with 0, GN_EPROTO (truncated header) or the
 * stream's error (the stream is then reset). Errors (caller still owns
 * @s): GN_EINVAL, GN_ENOMEM, GN_ECLOSED.
 * Security: perf lets a client ask for unbounded work; the node serves it
 * only when configured to (GN_NODE_PROTO_PERF, off by default).
 */
int gni_perf_serve(gn_stream *s, gni_app_done_cb cb, void *arg);

/**
 * Client result (loop thread, exactly once): @status 0 with the upload
 * time (from the call to the completion of the last upload write, seconds)
 * and the download time (from then until the server's EOF), or an error:
 * GN_EPROTO (the server sent early, too much or too little), the stream's
 * error. The stream is already closed (or reset) by the driver.
 */
typedef void (*gni_perf_cb)(void *arg, int status, double upload_s, double download_s);

/**
 * Runs one perf exchange on @s (negotiated for /perf/1.0.0): uploads
 * @upload bytes, asks for @download bytes. Timing uses gn_loop_now(). On
 * success the driver owns @s. Errors (caller still owns @s, @cb does not
 * run): GN_EINVAL, GN_ENOMEM, the stream's write error.
 */
int gni_perf_request(gn_stream *s, uint64_t upload, uint64_t download, gni_perf_cb cb,
                     void *arg);

#endif /* GNI_PERF_H */
