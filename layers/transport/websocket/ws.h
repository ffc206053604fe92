/*
 * golemnet - WebSocket (RFC 6455) sans-I/O core. Private.
 *
 * Two parts, both free of I/O, clocks and randomness (the caller passes
 * the client's nonce and masks in):
 *
 *  - the opening handshake (RFC 6455 section 4): the client's HTTP/1.1
 *    Upgrade request and the server's 101 response are built here and
 *    parsed with http-parser (Debian libhttp-parser-dev); the
 *    Sec-WebSocket-Accept value is SHA-1 (OpenSSL libcrypto) plus base64
 *    (libsodium) of the key and the RFC's GUID (section 1.3);
 *  - the framing (section 5): gni_ws_feed() takes received bytes and reports
 *    binary payload, pings, pongs and the close frame through callbacks;
 *    gni_ws_frame_header() and gni_ws_mask() build frames to send.
 *
 * Bounds: a handshake header block is at most `max_header` bytes; a frame
 * at most `max_frame` payload bytes and a (fragmented) message at most
 * `max_msg`: over them gni_ws_feed() fails with GN_EFRAMESIZE and close
 * code 1009. Malformed frames (reserved bits, unknown opcodes, a control
 * frame over 125 bytes or fragmented, a continuation without a message, a
 * new message inside a fragmented one, masking the wrong way round, a
 * 64-bit length with the top bit set) fail with GN_EPROTO and code 1002.
 * Text frames fail with GN_EPROTO and code 1003 (section 7.4.1, "a type of
 * data it cannot accept"): libp2p carries binary frames only.
 * A close frame with a code that may not be sent (section 7.4.1: under
 * 1000, 1004-1006, 1015, 1016-2999, over 4999) fails with GN_EPROTO and
 * code 1002; one whose reason is not UTF-8 with GN_EPROTO and code 1007.
 * Payload is streamed: the core never buffers a data frame, only control
 * frames (125 bytes).
 *
 * Thread context: none; one object is used by one thread at a time.
 * Spec: RFC 6455 sections 1.3, 4, 5, 7.
 */
#ifndef GNI_WS_H
#define GNI_WS_H

#include "golemnet/common.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Largest frame header: 2 + 8 (length) + 4 (mask) bytes. */
#define GNI_WS_HDR_MAX 14
/** Largest control frame payload (section 5.5). */
#define GNI_WS_CTL_MAX 125
/** Length of a Sec-WebSocket-Key value (base64 of 16 bytes) plus NUL. */
#define GNI_WS_KEY_LEN 25
/** Length of a Sec-WebSocket-Accept value (base64 of 20 bytes) plus NUL. */
#define GNI_WS_ACCEPT_LEN 29

/** Opcodes (section 5.2). */
enum {
    GNI_WS_OP_CONT = 0x0,
    GNI_WS_OP_TEXT = 0x1,
    GNI_WS_OP_BINARY = 0x2,
    GNI_WS_OP_CLOSE = 0x8,
    GNI_WS_OP_PING = 0x9,
    GNI_WS_OP_PONG = 0xA
};

/** Close status codes used here (section 7.4.1). */
enum {
    GNI_WS_CLOSE_NORMAL = 1000,
    GNI_WS_CLOSE_GOING_AWAY = 1001,
    GNI_WS_CLOSE_PROTOCOL = 1002,
    GNI_WS_CLOSE_UNSUPPORTED = 1003,
    GNI_WS_CLOSE_INVALID_DATA = 1007, /* a close reason that is not UTF-8 */
    GNI_WS_CLOSE_NO_STATUS = 1005, /* reported when a close frame has no code; never sent */
    GNI_WS_CLOSE_TOO_BIG = 1009
};

/**
 * Upward callbacks of gni_ws_feed(). Each returns 0 to go on, a positive
 * value to make gni_ws_feed() return after this call (backpressure: the
 * rest stays unconsumed), or a negative gn_err to fail the feed with it.
 *
 * on_data:  @len > 0 payload bytes of a binary message, unmasked, borrowed
 *           for the call.
 * on_ping:  a ping's payload (0..125 bytes): the caller answers with a pong
 *           carrying the same bytes (section 5.5.2).
 * on_pong:  a pong (may be unsolicited, section 5.5.3).
 * on_close: the peer's close frame: @code (GNI_WS_CLOSE_NO_STATUS when the
 *           frame had none) and the reason (0..123 bytes of valid UTF-8:
 *           other bytes fail the feed with GN_EPROTO and code 1007; a code
 *           outside section 7.4's sendable ones, 1004-1006 and 1015
 *           included, fails it with GN_EPROTO and code 1002). Nothing
 *           after it is parsed: gni_ws_feed() consumes no more bytes.
 */
typedef struct gni_ws_callbacks {
    int (*on_data)(void *user_data, const uint8_t *data, size_t len);
    int (*on_ping)(void *user_data, const uint8_t *data, size_t len);
    int (*on_pong)(void *user_data, const uint8_t *data, size_t len);
    int (*on_close)(void *user_data, unsigned code, const uint8_t *reason, size_t len);
} gni_ws_callbacks;

/** The receive side of one WebSocket connection. Fields private. */
typedef struct gni_ws {
    gni_ws_callbacks cb;
    void *user_data;
    bool server;        /* receives masked frames (from a client) */
    uint64_t max_frame; /* payload bytes per frame */
    uint64_t max_msg;   /* payload bytes per message, over its fragments */
    uint8_t hdr[GNI_WS_HDR_MAX];
    size_t hdr_len;     /* header bytes collected */
    uint8_t opcode;     /* of the frame being received */
    bool fin;
    bool masked;
    uint8_t mask[4];
    uint64_t remain;    /* payload bytes of the frame still to come */
    uint64_t off;       /* payload bytes of the frame seen (mask index) */
    bool in_payload;    /* header done, payload in progress */
    bool in_msg;        /* a fragmented data message is open */
    uint64_t msg_len;   /* payload bytes of that message so far */
    uint8_t ctl[GNI_WS_CTL_MAX];
    size_t ctl_len;
    bool closed;        /* the close frame arrived */
    unsigned fail_code; /* close code for the last failure (1002, 1003, 1009) */
} gni_ws;

/**
 * Initialises @w for the @server side (true: frames must be masked) or the
 * client side (frames must not be masked), with @max_frame and @max_msg
 * payload bounds in bytes (> 0) and the callbacks @cb (copied; on_data
 * required, others may be NULL) with @user_data.
 */
void gni_ws_init(gni_ws *w, bool server, uint64_t max_frame, uint64_t max_msg,
                 const gni_ws_callbacks *cb, void *user_data);

/**
 * Feeds @len received bytes at @in. Sets *@consumed to the bytes taken
 * (less than @len after a callback asked to pause, after the close frame,
 * or on failure). Returns 0, or: GN_EPROTO (malformed frame; close code
 * 1002, 1003 for a text frame, 1007 for a close reason not UTF-8),
 * GN_EFRAMESIZE (frame or message over its bound; code 1009), GN_ESTATE
 * (called after the close frame), or a callback's negative value. After a failure the object accepts no more
 * input; gni_ws_fail_code() tells the close code to send.
 */
int gni_ws_feed(gni_ws *w, const uint8_t *in, size_t len, size_t *consumed);

/** The close code for the failure gni_ws_feed() last returned (0: none). */
unsigned gni_ws_fail_code(const gni_ws *w);

/** True while a frame is partly received (a truncation if the stream ends). */
bool gni_ws_partial(const gni_ws *w);

/**
 * Writes a frame header for @opcode with FIN set when @fin, a payload of
 * @len bytes, and the masking key @mask (4 bytes; NULL: unmasked, the
 * server's frames) into @out (GNI_WS_HDR_MAX bytes). Returns its length.
 * The caller masks the payload with gni_ws_mask().
 */
size_t gni_ws_frame_header(uint8_t out[GNI_WS_HDR_MAX], unsigned opcode, bool fin, uint64_t len,
                           const uint8_t *mask);

/**
 * XORs @len bytes at @p with @mask, starting at payload offset @off
 * (section 5.3). Masking twice restores the bytes.
 */
void gni_ws_mask(uint8_t *p, size_t len, const uint8_t mask[4], uint64_t off);

/**
 * Builds a whole close frame with @code (1000..4999, not 1005/1006/1015)
 * and an optional @reason (@reason_len <= 123 bytes) into @out (room for
 * GNI_WS_HDR_MAX + GNI_WS_CTL_MAX bytes), masked with @mask (NULL: not).
 * Returns its length, or GN_EINVAL (bad code or reason too long).
 */
int gni_ws_close_frame(uint8_t *out, unsigned code, const char *reason, size_t reason_len,
                       const uint8_t *mask);

/**
 * The Sec-WebSocket-Accept value for the key @key (@key_len bytes) into
 * @out (NUL-terminated): base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-
 * C5AB0DC85B11")), section 1.3 / 4.2.2. Returns 0, GN_EINVAL (@key_len
 * over 64) or GN_ECRYPTO.
 */
int gni_ws_accept_value(const char *key, size_t key_len, char out[GNI_WS_ACCEPT_LEN]);

/**
 * Builds the client's Upgrade request (section 4.1) for @host (the Host
 * header value, NUL-terminated, e.g. "127.0.0.1:4001") and @path
 * (NUL-terminated, starting with '/') with the key made from the 16
 * random bytes @nonce, into @out (@cap bytes). The key goes to @key
 * (NUL-terminated), for gni_ws_parse_response(). Returns the request's
 * length or GN_ENOSPC.
 */
int gni_ws_build_request(char *out, size_t cap, const char *host, const char *path,
                         const uint8_t nonce[16], char key[GNI_WS_KEY_LEN]);

/**
 * Parses a client's request at @in (@len bytes; may hold frames after it).
 * @scan (NULL allowed) carries the search for the end of the header block
 * across calls on a growing buffer: set it to 0 before the first call and
 * pass it back unchanged, so each byte is searched once (not O(n^2)).
 * Returns GN_EAGAIN while the header block is incomplete and shorter than
 * @max_header; 0 with *@consumed = the header block's length and the
 * client's key in @key once it is a valid WebSocket Upgrade (GET,
 * HTTP/1.1, "Upgrade: websocket", "Connection" naming "upgrade",
 * "Sec-WebSocket-Version: 13", a Sec-WebSocket-Key of 16 bytes in base64,
 * section 4.2.1; repeated Upgrade or Connection lines are joined as one
 * list, trailing blanks of the Version and Key values ignored);
 * GN_ETOOBIG (no end of headers within @max_header bytes), GN_EPARSE (not
 * HTTP/1.1), GN_EVERSION (another Sec-WebSocket-Version: the server
 * answers 426 with gni_ws_build_refusal()), GN_EPROTO (any other missing,
 * repeated or wrong header, or a body announced: Content-Length over 0 or
 * Transfer-Encoding).
 */
int gni_ws_parse_request(const uint8_t *in, size_t len, size_t max_header, size_t *scan,
                         size_t *consumed, char key[GNI_WS_KEY_LEN]);

/** Builds the server's 101 response for the client's @key into @out. Length or GN_ENOSPC. */
int gni_ws_build_response(char *out, size_t cap, const char *key);

/**
 * Builds a refusal for a request gni_ws_parse_request() rejected with
 * @err: 426 Upgrade Required with "Sec-WebSocket-Version: 13" for
 * GN_EVERSION, 400 Bad Request otherwise (431 for GN_ETOOBIG). Length or
 * GN_ENOSPC.
 */
int gni_ws_build_refusal(char *out, size_t cap, int err);

/**
 * Parses the server's response at @in (@len bytes) to the request made with
 * @key; @scan as for gni_ws_parse_request(). Returns GN_EAGAIN
 * (incomplete, under @max_header), 0 with *@consumed = the header block's
 * length (bytes after it are frames) when it is "101" with Upgrade,
 * Connection and the right Sec-WebSocket-Accept (section 4.2.2 / 4.1 client
 * checks), GN_ETOOBIG, GN_EPARSE (not HTTP), GN_EHANDSHAKE (another status,
 * a wrong or missing Accept / Upgrade / Connection, or a
 * Sec-WebSocket-Extensions or Sec-WebSocket-Protocol the request did not
 * ask for: section 4.1, client items 5 and 6).
 */
int gni_ws_parse_response(const uint8_t *in, size_t len, size_t max_header, size_t *scan,
                          size_t *consumed, const char *key);

#endif /* GNI_WS_H */
