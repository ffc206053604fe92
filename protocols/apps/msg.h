/*
 * /golem/msg/1.0.0 (internal): golemnet's message protocol, used by the
 * node's unicast and broadcast. Spec: docs/protocols/msg.md.
 *
 * Wire: one long-lived stream per channel and direction. The opener (the
 * sender) writes the version byte GNI_MSG_VERSION once, then messages, each
 * an unsigned varint length (multiformats unsigned-varint: minimal, at most
 * 9 bytes) followed by that many bytes. The acceptor only reads. The sender
 * half-closes to end the stream; EOF is only clean between messages.
 *
 * msg.c is the sans-I/O core: the frame header encoder and an incremental
 * decoder (any byte split, bounded before allocating) that yields each
 * message as a gn_rcbuf. msg_stream.c has the drivers: a reader that
 * delivers messages to a callback with pause/resume backpressure, and a
 * writer with a bounded queue of gn_rcbufs.
 *
 * Thread context: the core is pure; the drivers are loop-thread only.
 */
#ifndef GNI_MSG_H
#define GNI_MSG_H

#include "apps.h"
#include "gni.h"

#include "golemnet/rcmgr.h"

/** The version byte that opens every stream. */
#define GNI_MSG_VERSION 0x01
/** Default largest message, bytes (gn_node_config.max_message_len). */
#define GNI_MSG_DEFAULT_MAX_LEN (1024u * 1024u)
/** Largest max_len a decoder or writer accepts (256 MiB). */
#define GNI_MSG_MAX_LEN_LIMIT (256u * 1024u * 1024u)
/** Longest frame header: a 9-byte unsigned varint. */
#define GNI_MSG_HEADER_MAX 9
/**
 * A message's storage starts at what has arrived of it (at least this many
 * bytes, at most its length) and doubles as the rest arrives: a peer that
 * announces a length and sends nothing holds at most this much per stream.
 */
#define GNI_MSG_ALLOC_MIN 4096u
/**
 * Default of the option msg.writer_idle_ms: a sender ends its message
 * stream gracefully after this long without a message (well inside the
 * muxer's default stream_idle_timeout of 5 minutes, which would reset it).
 */
#define GNI_MSG_WRITER_IDLE (60 * GN_S)
/** Default writer queue bound, messages. */
#define GNI_MSG_DEFAULT_QUEUE 64u
/**
 * Default stall timeout: a reader resets a stream whose message (its length
 * or its body) is partly received and gets no further byte this long.
 */
#define GNI_MSG_STALL_TIMEOUT (30 * GN_S)

/* ---- core ---- */

/**
 * Writes the frame header for a message of @len bytes into @out. Returns
 * the header length (1..9). Errors: GN_ERANGE (@len >= 2^63).
 */
int gni_msg_header_encode(uint64_t len, uint8_t out[GNI_MSG_HEADER_MAX]);

/** Decoder states. */
typedef enum gni_msg_dec_state {
    GNI_MSG_DEC_VERSION = 0, /* waiting for the version byte */
    GNI_MSG_DEC_LENGTH,      /* between messages or inside a length */
    GNI_MSG_DEC_BODY,        /* inside a message body */
    GNI_MSG_DEC_FAILED
} gni_msg_dec_state;

/**
 * Optional memory accounting of a decoder (gni_msg_decoder_set_mem()): the
 * decoder asks before every allocation of message storage and says when
 * storage it asked for stops being its own.
 */
typedef struct gni_msg_mem {
    /**
     * Called before the decoder allocates or grows the storage of the
     * message being received by @more bytes (> 0), never after. Return 0
     * to allow it; nonzero refuses: nothing is allocated, the message is
     * released (release() gives back what it held) and the decoder fails
     * with GN_ERESOURCE. Must not call back into the decoder.
     */
    int (*reserve)(void *arg, size_t more);
    /**
     * Gives back @len bytes (> 0) that reserve() allowed: the message was
     * handed out by gni_msg_decode() (its caller owns the storage now), or
     * it was released (failure, gni_msg_decoder_fini()). Required with
     * reserve().
     */
    void (*release)(void *arg, size_t len);
    void *arg;
} gni_msg_mem;

/** Incremental decoder. Caller-owned; fields private. */
typedef struct gni_msg_decoder {
    gni_msg_dec_state state;
    int err;
    size_t max_len;
    gni_varint_rd len_rd; /* the length being read (zeroed: multiformats) */
    gn_rcbuf *cur;  /* message being filled */
    size_t need;    /* its length */
    size_t have;    /* bytes filled */
    gn_time stall_timeout; /* 0: none */
    gn_time progress_at;   /* last byte of a partial message (gni_msg_decoder_touch) */
    gni_msg_mem mem;       /* reserve NULL: no accounting */
    size_t reserved;       /* bytes mem.reserve() allowed for cur */
} gni_msg_decoder;

/**
 * Initialises @d for messages of at most @max_len bytes (0: the default,
 * GNI_MSG_DEFAULT_MAX_LEN). @expect_version: the stream starts with the
 * version byte (true for a whole stream; false to decode bare frames).
 * Errors: GN_EINVAL (@max_len > GNI_MSG_MAX_LEN_LIMIT).
 */
int gni_msg_decoder_init(gni_msg_decoder *d, size_t max_len, bool expect_version);

/**
 * Installs memory accounting (@mem copied; NULL or a NULL reserve: none).
 * Call before the first gni_msg_decode(). Storage is accounted in payload
 * bytes (the buffer's capacity), not allocator overhead.
 */
void gni_msg_decoder_set_mem(gni_msg_decoder *d, const gni_msg_mem *mem);

/** Releases a partly received message (and its reservation). @d may be re-initialised. */
void gni_msg_decoder_fini(gni_msg_decoder *d);

/**
 * Decodes from @in (@len bytes). Stops after the first complete message:
 * returns 1 with *@msg set (the caller owns one reference) and *@consumed
 * bytes used; call again with the rest. Returns 0 when every byte was
 * consumed without completing a message. A message's storage grows with
 * the bytes that arrived (GNI_MSG_ALLOC_MIN), never from the announced
 * length alone, so its pointer may change while it is being filled. With
 * memory accounting (gni_msg_decoder_set_mem()) each allocation and growth
 * is reserved first, and a returned message's reservation is released.
 * Errors (sticky: later calls return the same code): GN_EVERSION (the
 * first byte is not GNI_MSG_VERSION), GN_EFRAMESIZE (a length above
 * max_len), GN_EBADFRAME (a length varint that is not minimal or longer
 * than 9 bytes), GN_ERESOURCE (mem.reserve() refused storage for the
 * message: nothing more was allocated and the partial message is
 * released), GN_ENOMEM.
 */
int gni_msg_decode(gni_msg_decoder *d, const uint8_t *in, size_t len, size_t *consumed,
                   gn_rcbuf **msg);

/** True while a message (its length varint or its body) is partly received. */
bool gni_msg_decoder_partial(const gni_msg_decoder *d);

/**
 * Sets the stall timeout (ns; 0: none, the default of a bare decoder):
 * how long a partly received message may go without a new byte.
 */
void gni_msg_decoder_set_stall_timeout(gni_msg_decoder *d, gn_time timeout);

/**
 * Bytes were fed at @now (the driver's clock, ns): a partial message made
 * progress. Call after each gni_msg_decode() batch, and when the driver
 * starts waiting again after a pause of its own (the stall is then not
 * the peer's).
 */
void gni_msg_decoder_touch(gni_msg_decoder *d, gn_time now);

/**
 * When the partial message expires (ns, the driver's clock), or
 * GN_TIME_INFINITY: no partial message, no timeout, or failed.
 */
gn_time gni_msg_decoder_deadline(const gni_msg_decoder *d);

/**
 * Checks the stall timeout at @now. Returns 0 (not expired) or
 * GN_ETIMEDOUT: a partial message got no byte for the stall timeout; the
 * decoder fails (sticky, the message is released).
 */
int gni_msg_decoder_expire(gni_msg_decoder *d, gn_time now);

/**
 * The peer half-closed. Returns 0 when that happened between messages,
 * GN_EPROTO when inside a length or body (truncated message; sticky), or
 * the earlier sticky error. A stream that ends before its version byte is
 * a clean, empty stream (0).
 */
int gni_msg_decode_eof(gni_msg_decoder *d);

/* ---- reader driver (msg_stream.c) ---- */

/** Return values of gni_msg_reader_cbs.on_message. */
#define GNI_MSG_CONTINUE 0
#define GNI_MSG_PAUSE 1

typedef struct gni_msg_reader gni_msg_reader;

/** Reader callbacks (loop thread). */
typedef struct gni_msg_reader_cbs {
    /**
     * One message; the callee owns the reference to @msg. Return
     * GNI_MSG_CONTINUE, GNI_MSG_PAUSE (no more messages and no more reads
     * from the stream until gni_msg_reader_resume(): backpressure reaches
     * the sender through the muxer's flow control), or a negative value to
     * abort (the stream is reset and on_end gets GN_ECALLBACK).
     * gni_msg_reader_close() may be called from inside.
     */
    int (*on_message)(void *arg, gn_rcbuf *msg);
    /**
     * The reader ended by itself, exactly once unless gni_msg_reader_close()
     * came first: 0 = the sender half-closed between messages (the stream is
     * closed); or GN_EFRAMESIZE, GN_EVERSION, GN_EBADFRAME, GN_EPROTO
     * (truncated), GN_ETIMEDOUT (a partly received message stalled longer
     * than the stall timeout), GN_ERESOURCE (the resource manager refused
     * memory for a message: gni_msg_reader_account()), GN_ECALLBACK, GN_ENOMEM, the stream's error
     * (the stream is reset). The reader is released after this returns; do
     * not use it.
     */
    void (*on_end)(void *arg, int status);
} gni_msg_reader_cbs;

/**
 * Starts reading messages of at most @max_len bytes (0: default) from @s,
 * an accepted /golem/msg/1.0.0 stream. The acceptor sends nothing: its
 * write side is half-closed at once. @cbs is copied. On success the reader
 * owns @s and *@out is the handle. Errors (caller still owns @s): GN_EINVAL,
 * GN_ENOMEM, GN_ECLOSED.
 */
int gni_msg_reader_new(gn_stream *s, size_t max_len, const gni_msg_reader_cbs *cbs, void *arg,
                       gni_msg_reader **out);

/**
 * Sets the reader's stall timeout (ns; default GNI_MSG_STALL_TIMEOUT; 0:
 * none): a message partly received that gets no byte for this long while
 * the reader is not paused resets the stream, logs GN_ETIMEDOUT and ends
 * the reader with it. Takes effect from the next bytes received.
 */
void gni_msg_reader_set_stall_timeout(gni_msg_reader *r, gn_time timeout);

/**
 * Accounts the reader's message storage in @span, a stream span of @rm:
 * every allocation and growth of a message's buffer is reserved first
 * with gn_rcmgr_reserve_memory() at @prio, and released when the message
 * is handed to on_message (the callee owns the buffer from then on) or
 * dropped. A refused reservation is logged with the refusing scope
 * (gn_rcmgr_last_refusal()), resets the stream and ends the reader with
 * GN_ERESOURCE. On success the reader owns @span and calls
 * gn_rcmgr_stream_done() when it is released (after the stream's close).
 * Call right after gni_msg_reader_new(), before bytes arrive.
 * Errors (caller still owns @span): GN_EINVAL (NULL argument, already
 * accounted, the reader ended, or a message is partly received).
 */
int gni_msg_reader_account(gni_msg_reader *r, gn_rcmgr *rm, gn_rcmgr_stream *span, uint8_t prio);

/**
 * Resumes after GNI_MSG_PAUSE. Buffered bytes are delivered from the loop,
 * never from inside this call. No-op when not paused. Errors: GN_ECLOSED.
 */
int gni_msg_reader_resume(gni_msg_reader *r);

/**
 * Stops the reader: closes the stream (reset when @reset), no more
 * callbacks, memory released after the stream's close. NULL is a no-op.
 */
void gni_msg_reader_close(gni_msg_reader *r, bool reset);

/* ---- writer driver (msg_stream.c) ---- */

typedef struct gni_msg_writer gni_msg_writer;

/** Writer callbacks (loop thread). Both may be NULL. */
typedef struct gni_msg_writer_cbs {
    /** The queue has room again after gni_msg_writer_send() returned GN_EAGAIN. */
    void (*on_writable)(void *arg);
    /**
     * The writer ended by itself, exactly once unless gni_msg_writer_close()
     * came first: 0 after gni_msg_writer_finish() flushed everything and
     * half-closed; or the stream's error (GN_ESTREAMRESET, GN_ECONNRESET, a
     * write error), GN_EPROTO (the acceptor sent data). Queued messages that
     * were not written are released. The writer is released after this
     * returns; do not use it.
     */
    void (*on_end)(void *arg, int status);
    /**
     * Optional (NULL: not reported): one call per message
     * gni_msg_writer_send() took, in the order they were sent, once its
     * bytes were handed to the stream below (its write completed): 0, or
     * the write's error. Never after on_end or gni_msg_writer_close(): the
     * messages not reported by then were not sent (the owner counts them
     * lost). The owner may send from inside it.
     */
    void (*on_sent)(void *arg, int status);
} gni_msg_writer_cbs;

/**
 * Starts a writer on @s, an opened /golem/msg/1.0.0 stream: writes the
 * version byte; @max_len (0: default) bounds each message; @max_queue (0:
 * GNI_MSG_DEFAULT_QUEUE) bounds the messages queued or in flight. @cbs is
 * copied. On success the writer owns @s. Errors (caller still owns @s):
 * GN_EINVAL, GN_ENOMEM, the stream's write error.
 */
int gni_msg_writer_new(gn_stream *s, size_t max_len, size_t max_queue,
                       const gni_msg_writer_cbs *cbs, void *arg, gni_msg_writer **out);

/**
 * Queues @msg; the writer takes its own reference on success (the caller
 * keeps its reference either way: fan-out shares one buffer). Bytes are
 * written zero-copy from the buffer. Errors: GN_ETOOBIG (longer than
 * max_len), GN_EAGAIN (max_queue messages pending: wait for on_writable),
 * GN_ESTATE (after finish), GN_ECLOSED (the writer ended), GN_EINVAL.
 */
int gni_msg_writer_send(gni_msg_writer *w, gn_rcbuf *msg);

/** Messages queued or in flight. */
size_t gni_msg_writer_queued(const gni_msg_writer *w);

/**
 * Graceful end: once every queued message is written, half-close, close,
 * and report on_end(0). Errors: GN_ESTATE (already finishing), GN_ECLOSED.
 */
int gni_msg_writer_finish(gni_msg_writer *w);

/**
 * Abortive end: closes the stream now (reset when @reset), releases
 * queued messages, no more callbacks. NULL is a no-op.
 */
void gni_msg_writer_close(gni_msg_writer *w, bool reset);

#endif /* GNI_MSG_H */
