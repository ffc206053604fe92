/*
 * golemnet - ENP R1, the Ergo Network Protocol framing (private to the
 * library).
 *
 * Sans-I/O core for the frames two Ergo Framework 3.1 nodes exchange after
 * the EHS handshake: the 8-byte frame header, a streaming frame splitter
 * (bytes in, whole frames out, MaxMessageSize enforced), parse and build of
 * every message type, the order byte and the receive-queue rule, and the
 * compressed wrapper (type 200: LZW, zlib, gzip). EDF payloads are located
 * and kept as bytes; decoding them is the EDF codec's job.
 *
 * Spec: shared/specs/ergo-wire.md section c "ENP" (frame header, common
 * fields, message types and layouts, MessageAny bodies, order byte and
 * receive queues, compression, MaxMessageSize). Design, limits and why this
 * header is internal: docs/ergo.md "ENP".
 *
 * Layout (all integers big-endian; offsets from the frame start):
 *   [0] u8 magic 78  [1] u8 version 1  [2] u32 frame length (header
 *   included)  [6] u8 order  [7] u8 type  [8..] type-specific fields, then
 *   the payload (everything up to the frame length).
 *
 * Errors (negative gn_err codes, include/golemnet/err.h). Two classes, as
 * Ergo reacts to them:
 *  - link-fatal (gn_err_is_fatal() true; close that TCP link), from the
 *    splitter: GN_EFRAMESIZE a header announcing more than MaxMessageSize;
 *    GN_EBADFRAME bad magic, or a length below 8; GN_EVERSION version != 1.
 *  - frame-level (the frame is dropped, the link stays up), from parse,
 *    build, inflate: GN_EPARSE a frame too short for its fixed fields (or
 *    whose header length is not the slice length), a compressed stream that
 *    is corrupt or does not expand to exactly the announced length, or an
 *    inflated inner frame that is not a well-formed, uncompressed frame;
 *    GN_ENOTSUP an unknown or reserved (201-203) message type, an unknown
 *    compression method; GN_ETOOBIG a length above a bound (inflated size
 *    above the caller's limit, a frame above 4 GiB - 1, a name above 255).
 *  - GN_ENOSPC output buffer too small; GN_EINVAL bad arguments;
 *    GN_ENOMEM allocation failed.
 * Every error can come with a one-line explanation (gni_enp_diag) naming
 * the offending value and its bound, for the log.
 *
 * Thread context: no global state; a splitter is used by one thread at a
 * time; the other functions are pure. Memory comes from gn_malloc.
 */
#ifndef GNI_ENP_H
#define GNI_ENP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "golemnet/common.h"

#define GNI_ENP_MAGIC 78u     /* 'N' */
#define GNI_ENP_VERSION 1u
#define GNI_ENP_HEADER_LEN 8u /* counted in the frame length */
/** Largest frame length the u32 field can hold. */
#define GNI_ENP_MAX_FRAME_LEN UINT32_MAX
/** Longest fixed part (header + fields before the payload): type 122 with a 255-byte name. */
#define GNI_ENP_HEAD_MAX 297u
/** Receive queues per pool link: a connection has 4 x PoolSize (Ergo's recvQueues). */
#define GNI_ENP_QUEUES_PER_LINK 4u

/** Message types (header byte 7). Spec: ergo-wire.md c "Message types and layouts". */
enum gni_enp_type {
    GNI_ENP_MSG_PID = 101,          /* send to a PID */
    GNI_ENP_MSG_NAME = 102,         /* send to a registered name (inline) */
    GNI_ENP_MSG_NAME_CACHE = 103,   /* send to a name given as an atom-cache id */
    GNI_ENP_MSG_ALIAS = 104,        /* send to an alias */
    GNI_ENP_MSG_EVENT = 105,        /* event published (inline event name) */
    GNI_ENP_MSG_EVENT_CACHE = 106,  /* event published (atom-cache id) */
    GNI_ENP_MSG_EXIT = 107,         /* exit signal to a PID */
    GNI_ENP_REQ_PID = 121,          /* call a PID */
    GNI_ENP_REQ_NAME = 122,         /* call a name */
    GNI_ENP_REQ_NAME_CACHE = 123,   /* call a cached name */
    GNI_ENP_REQ_ALIAS = 124,        /* call an alias */
    GNI_ENP_RESPONSE = 129,         /* call result (a value) */
    GNI_ENP_RESPONSE_ERROR = 130,   /* call result (code / error), important ack */
    GNI_ENP_TERM_PID = 181,         /* a linked/monitored PID terminated */
    GNI_ENP_TERM_NAME = 182,
    GNI_ENP_TERM_NAME_CACHE = 183,
    GNI_ENP_TERM_ALIAS = 184,
    GNI_ENP_TERM_EVENT = 185,
    GNI_ENP_TERM_EVENT_CACHE = 186,
    GNI_ENP_ANY = 199,              /* one registered struct (link, monitor, spawn, ...) */
    GNI_ENP_COMPRESSED = 200,       /* MessageZ: a whole frame, compressed */
    /* 201 encrypted, 202 fragmented, 203 proxy: reserved, refused (GN_ENOTSUP) */
};

/** Flags byte of 101-104 and 121-124: bits 0-1 priority, bit 7 important delivery. */
#define GNI_ENP_PRIO_MASK 0x03u
#define GNI_ENP_FLAG_IMPORTANT 0x80u
enum { GNI_ENP_PRIO_NORMAL = 0, GNI_ENP_PRIO_HIGH = 1, GNI_ENP_PRIO_MAX = 2 };

/** Codes of 130 (MessageResponseError). */
enum {
    GNI_ENP_RC_OK = 0,             /* success / delivered */
    GNI_ENP_RC_UNKNOWN = 1,        /* unknown process */
    GNI_ENP_RC_MAILBOX_FULL = 2,
    GNI_ENP_RC_TERMINATED = 3,
    GNI_ENP_RC_ERROR = 255,        /* an EDF error value follows (the payload) */
};

/** Compression methods (byte 8 of type 200). */
enum { GNI_ENP_Z_LZW = 100, GNI_ENP_Z_ZLIB = 101, GNI_ENP_Z_GZIP = 102 };
/** gzip levels as Ergo's gen.CompressionLevel (zlib always uses its default). */
enum { GNI_ENP_ZLEVEL_DEFAULT = 0, GNI_ENP_ZLEVEL_SPEED = 1, GNI_ENP_ZLEVEL_SIZE = 2 };
/** Ergo's default and smallest compression threshold, frame bytes. */
#define GNI_ENP_Z_THRESHOLD 1024u
/** Fixed part of a type 200 frame: header, method, original length. */
#define GNI_ENP_Z_HEAD_LEN 13u
/**
 * Suggested bound on an inflated frame when no MaxMessageSize is set
 * (Ergo itself allocates whatever the sender announces, up to 4 GiB).
 */
#define GNI_ENP_INFLATE_MAX_DEFAULT (64u * 1024u * 1024u)

/**
 * One frame's fixed fields, decoded. Which members a type uses
 * (unused ones are zero after gni_enp_parse(); builders ignore them):
 *
 *   type      from flags ref       to     name/atom_id  alias  other
 *   101       x    x     [0]=msgref0 x
 *   102/103   x    x     [0]=msgref0      name / atom_id
 *   104       x    x     [0]=msgref0                    x
 *   105/106   x    prio                   name / atom_id        timestamp
 *   107       x    prio              x
 *   121       x    x     [0..2]      x
 *   122/123   x    x     [0..2]           name / atom_id
 *   124       x    x     [0..2]                         x
 *   129       x    prio  [0..2]      x
 *   130       x    prio  [0..2]      x                          code
 *   181       -    prio              x=target ID
 *   182/183        prio                   name / atom_id
 *   184            prio                                 x
 *   185/186        prio                   event name / atom_id
 *   199       (payload only; any_type_* describe its head)
 *   200                                                         method, orig_len
 *
 * @payload is everything after the fixed fields: the EDF value (101-106,
 * 121-124, 129), the reason error (107, 181-186), the error after code 255
 * (130; any trailing bytes otherwise), the registered struct (199), or the
 * compressed stream (200). @name and @payload borrow the parsed bytes.
 *
 * msgref0 (101-104): the 8 bytes at [17..25] carry ref.ID[0] only when the
 * important bit is set; otherwise Ergo leaves stale buffer bytes there. They
 * are kept verbatim in ref[0] so a parsed frame rebuilds to the same bytes;
 * a new frame built from a zeroed struct carries zeros.
 */
typedef struct gni_enp_frame {
    uint8_t type;      /* enum gni_enp_type */
    uint8_t order;     /* header byte 6: receive-queue key, 0 = none */
    uint8_t flags;     /* flags (101-104, 121-124) or the plain priority byte */
    uint8_t code;      /* 130: GNI_ENP_RC_* */
    uint8_t method;    /* 200: GNI_ENP_Z_* */
    uint16_t atom_id;  /* 103/123/183: name, 106/186: event, as a sender atom-cache id */
    uint32_t orig_len; /* 200: length of the original frame */
    uint64_t from;     /* sending process ID (producer for 105/106, responder for 129/130) */
    uint64_t to;       /* target process ID; 181: the terminated process */
    uint64_t ref[3];   /* Ref.ID[0..2]; 101-104: msgref0 in ref[0] only */
    uint64_t alias[3]; /* 104/124/184: Alias.ID[0..2] */
    int64_t timestamp; /* 105/106: Unix ns */
    gn_slice name;     /* 102/122/182: process name, 105/185: event name (<= 255 bytes) */
    gn_slice payload;  /* see above */
    /* 199 only, read from the payload head (83 + u16): */
    uint16_t any_type_id; /* >= 4096: a reg-cache id of the sender; 0 otherwise */
    gn_slice any_type_name; /* the inline type name ("#ergo.services/..."), or empty */
} gni_enp_frame;

/** Optional error explanation: one NUL-terminated line for the log. */
typedef struct gni_enp_diag {
    char msg[128];
} gni_enp_diag;

/* ---- header ---- */

/** Reads a big-endian u32 / u64 (helpers shared by the Ergo cores). */
static inline uint32_t gni_enp_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t gni_enp_get64(const uint8_t *p)
{
    return (uint64_t)gni_enp_get32(p) << 32 | gni_enp_get32(p + 4);
}

/**
 * Checks the 8 bytes at @hdr: magic, version, length >= 8, and length <=
 * @max_len (MaxMessageSize; 0 = unlimited). Returns 0 and sets *@frame_len,
 * or GN_EBADFRAME, GN_EVERSION, GN_EFRAMESIZE (all link-fatal); @diag (NULL
 * allowed) explains, e.g. "received too long message (len: 70000, limit:
 * 65536)".
 */
int gni_enp_header_check(const uint8_t hdr[8], uint32_t max_len, uint32_t *frame_len,
                         gni_enp_diag *diag);

/** Name of @type ("MessagePID"), or NULL for a type ENP R1 does not define. */
const char *gni_enp_type_name(unsigned type);

/* ---- splitter: bytes in, whole frames out ---- */

/** Streaming frame splitter for one link. Caller-owned; fields private. */
typedef struct gni_enp_splitter {
    uint32_t max_len;  /* MaxMessageSize, 0 = unlimited */
    uint8_t hdr[8];
    uint32_t hdr_have; /* header bytes collected while a frame is split */
    uint32_t need;     /* frame length once the header is known, else 0 */
    uint8_t *buf;      /* partial frame (only when a frame spans feeds) */
    size_t have, cap;
    int err;           /* sticky error */
    gni_enp_diag diag;
} gni_enp_splitter;

/**
 * Initialises @s for a link whose own MaxMessageSize is @max_len (0 =
 * unlimited, as Ergo). Allocates nothing. Returns 0, GN_EINVAL (@s NULL).
 */
int gni_enp_splitter_init(gni_enp_splitter *s, uint32_t max_len);

/** Frees the partial-frame buffer. Safe on a zeroed or failed splitter. */
void gni_enp_splitter_fini(gni_enp_splitter *s);

/**
 * Feeds @len bytes at @in. Consumes input until one whole frame is
 * available or the input ends; *@consumed tells how many bytes were taken.
 * Returns 1 with *@frame set to the frame (header included; pointing into
 * @in when the frame arrived in one piece, else into the splitter's buffer;
 * valid until the next call on @s), 0 when all input was taken and no frame
 * is complete yet, or a link-fatal error (GN_EFRAMESIZE, GN_EBADFRAME,
 * GN_EVERSION; gni_enp_splitter_diag() explains) which every later call
 * returns again, or GN_ENOMEM (the partial frame buffer could not grow;
 * also sticky), GN_EINVAL. The header is checked as soon as its 8 bytes are
 * in, before the body is buffered. The buffer grows with the bytes that
 * actually arrive (never to the announced length at once), so a header
 * that announces 4 GiB costs nothing until the bytes come.
 */
int gni_enp_splitter_feed(gni_enp_splitter *s, const uint8_t *in, size_t len, size_t *consumed,
                          gn_slice *frame);

/** Bytes of a frame held back (0 between frames). For the link's EOF check. */
size_t gni_enp_splitter_pending(const gni_enp_splitter *s);

/** The explanation of the sticky error ("" when none). */
const char *gni_enp_splitter_diag(const gni_enp_splitter *s);

/* ---- parse and build ---- */

/**
 * Parses one whole frame (@len bytes at @buf, header included; the header
 * length must equal @len, magic and version must be right) into @out. Fixed
 * fields are decoded; @out->name and @out->payload point into @buf. Returns
 * 0, GN_EPARSE (too short for the type's fixed fields, a name running past
 * the end, header length != @len, bad magic or version), GN_ENOTSUP
 * (unknown type, reserved 201-203), GN_EINVAL. @diag (NULL allowed)
 * explains. Ergo drops such frames and keeps the link.
 */
int gni_enp_parse(const uint8_t *buf, size_t len, gni_enp_frame *out, gni_enp_diag *diag);

/**
 * Length of the frame @f describes (header, fixed fields, @f->payload), or
 * 0 when @f cannot be built (unknown type, name longer than 255 bytes,
 * total above GNI_ENP_MAX_FRAME_LEN).
 */
size_t gni_enp_frame_len(const gni_enp_frame *f);

/**
 * Writes the header and fixed fields of @f (everything but the payload)
 * into @out (@cap bytes); the length field counts @f->payload.len, so the
 * payload can follow in a separate write (zero copy). Returns the bytes
 * written (<= GNI_ENP_HEAD_MAX), or GN_ENOTSUP (unknown type), GN_ETOOBIG
 * (name > 255 bytes, frame above 4 GiB - 1), GN_ENOSPC, GN_EINVAL.
 */
long gni_enp_build_head(const gni_enp_frame *f, uint8_t *out, size_t cap);

/**
 * gni_enp_build_head() followed by the payload: the whole frame. Returns its
 * length, or the errors of gni_enp_build_head().
 */
long gni_enp_build(const gni_enp_frame *f, uint8_t *out, size_t cap);

/** Priority of a parsed frame: flags & 3 for 101-104/121-124, else the priority byte. */
static inline unsigned gni_enp_priority(const gni_enp_frame *f)
{
    bool flagged = (f->type >= 101 && f->type <= 104) || (f->type >= 121 && f->type <= 124);
    return flagged ? (f->flags & GNI_ENP_PRIO_MASK) : f->flags;
}

/** Important delivery requested (bit 7 of the flags of 101-104/121-124). */
static inline bool gni_enp_important(const gni_enp_frame *f)
{
    bool flagged = (f->type >= 101 && f->type <= 104) || (f->type >= 121 && f->type <= 124);
    return flagged && (f->flags & GNI_ENP_FLAG_IMPORTANT) != 0;
}

/* ---- MessageAny (199) bodies ---- */

/** The registered structs a 199 frame carries (#ergo.services/ergo/net/proto/<Name>). */
enum gni_enp_any_kind {
    GNI_ENP_ANY_UNKNOWN = 0,
    GNI_ENP_ANY_LINK_PID, GNI_ENP_ANY_UNLINK_PID,
    GNI_ENP_ANY_LINK_PROCESSID, GNI_ENP_ANY_UNLINK_PROCESSID,
    GNI_ENP_ANY_LINK_ALIAS, GNI_ENP_ANY_UNLINK_ALIAS,
    GNI_ENP_ANY_LINK_EVENT, GNI_ENP_ANY_UNLINK_EVENT,
    GNI_ENP_ANY_MONITOR_PID, GNI_ENP_ANY_DEMONITOR_PID,
    GNI_ENP_ANY_MONITOR_PROCESSID, GNI_ENP_ANY_DEMONITOR_PROCESSID,
    GNI_ENP_ANY_MONITOR_ALIAS, GNI_ENP_ANY_DEMONITOR_ALIAS,
    GNI_ENP_ANY_MONITOR_EVENT, GNI_ENP_ANY_DEMONITOR_EVENT,
    GNI_ENP_ANY_SPAWN, GNI_ENP_ANY_APPLICATION_START,
    GNI_ENP_ANY_UPDATE_CACHE, GNI_ENP_ANY_RESULT,
    GNI_ENP_ANY_KIND_COUNT
};

/**
 * The kind whose full EDF type name is @name (e.g.
 * "#ergo.services/ergo/net/proto/MessageLinkPID"), GNI_ENP_ANY_UNKNOWN for
 * any other name. The caller resolves a reg-cache id to the name first
 * (with the sender's RegCache).
 */
enum gni_enp_any_kind gni_enp_any_kind_of(gn_slice name);

/** The full EDF type name of @kind, or NULL for GNI_ENP_ANY_UNKNOWN/out of range. */
const char *gni_enp_any_type_name(enum gni_enp_any_kind kind);

/* ---- order byte and queues ---- */

/** Ergo's order key of a process or alias ID: @id mod 255 (0 .. 254). */
static inline uint8_t gni_enp_order_of(uint64_t id) { return (uint8_t)(id % 255u); }

/**
 * The order byte Ergo 3.1.0 writes in the header of @f (types other than
 * 199 and 200): to.ID for 101, 107, 121, 129, 130; alias.ID[1] for 104,
 * 124; from.ID for 102, 103, 105, 106, 122, 123; 0 for 181-186. With
 * @keep_order false (process option KeepNetworkOrder off) 0, except for 107.
 * 129/130 written by the network layer (important acks, routing failures)
 * carry 0: the caller passes @keep_order false for those. 199 and 200 give
 * 0 (199: depends on the EDF body, ergo-wire.md c "Order byte"; 200 copies
 * the inner frame's byte).
 */
uint8_t gni_enp_default_order(const gni_enp_frame *f, bool keep_order);

/**
 * The order byte Ergo 3.1.0 writes on a 199 frame (independent of
 * KeepNetworkOrder). A request of @kind: Link/Unlink PID -> @id = the
 * target PID's ID; Link/Unlink/Monitor/Demonitor Alias -> @id = the alias's
 * ID[1]; every other request 0 (@id ignored). The MessageResult answering a
 * request of @kind (@result true): @id = the request's Source PID ID, or
 * for Spawn the ParentPID's ID; 0 for ApplicationStart and UpdateCache.
 * Each id is taken mod 255. Spec: ergo-wire.md c "Order byte".
 */
uint8_t gni_enp_any_order(enum gni_enp_any_kind kind, bool result, uint64_t id);

/**
 * Receive-queue index of a frame with header order byte @order that is the
 * @link_seq-th frame (counting from 1) read on its link, for a connection
 * with @nqueues queues (GNI_ENP_QUEUES_PER_LINK x pool size, > 0): @order
 * mod @nqueues when @order > 0, else @link_seq mod @nqueues (frames without
 * an order key rotate over the queues per link). Frames with the same order
 * byte land in the same queue and are handled in arrival order.
 */
static inline unsigned gni_enp_queue_index(uint8_t order, uint64_t link_seq, unsigned nqueues)
{
    if (nqueues == 0) {
        return 0;
    }
    return order > 0 ? (unsigned)(order % nqueues) : (unsigned)(link_seq % nqueues);
}

/**
 * gni_enp_queue_index() for a whole frame as the splitter returns it (@frame
 * at least the 8 header bytes; its order byte is header byte 6). The
 * inflated inner frame of a type 200 frame has the same order byte, so the
 * wrapper can be queued before it is inflated.
 */
static inline unsigned gni_enp_frame_queue(gn_slice frame, uint64_t link_seq, unsigned nqueues)
{
    uint8_t order = frame.len > 6 ? frame.base[6] : 0;
    return gni_enp_queue_index(order, link_seq, nqueues);
}

/**
 * The pool link a sender uses: @key mod @nlinks when @key > 0 (Ergo's key is
 * from.ID mod 255 while KeepNetworkOrder is on), else round robin through
 * *@rr (incremented first, as Ergo's counter). @nlinks > 0.
 */
static inline unsigned gni_enp_link_index(uint8_t key, uint32_t *rr, unsigned nlinks)
{
    if (nlinks == 0) {
        return 0;
    }
    if (key > 0) {
        return key % nlinks;
    }
    return ++*rr % nlinks;
}

/* ---- MaxMessageSize, sender side ---- */

/**
 * Checks a frame before sending to a peer whose announced MaxMessageSize is
 * @peer_max (0 = unlimited): the final frame (@final_len, compressed or not)
 * must fit, and for types 102-106 and 129 also the uncompressed frame
 * (@plain_len) as Ergo checks. Returns 0 or GN_ETOOBIG (nothing may be
 * sent; Ergo's sender returns ErrTooLarge locally).
 */
int gni_enp_check_send_size(uint8_t type, size_t plain_len, size_t final_len, uint32_t peer_max);

/* ---- compression (enp_z.c) ---- */

/** A sending process's compression options (gen.Compression). */
typedef struct gni_enp_zopts {
    bool enable;        /* default off */
    uint8_t method;     /* GNI_ENP_Z_*; 0 = gzip (Ergo's default) */
    uint8_t level;      /* GNI_ENP_ZLEVEL_* (gzip only) */
    uint32_t threshold; /* frame bytes; values below 1024 act as 1024 */
} gni_enp_zopts;

/**
 * The threshold rule: true when a frame of @type and @frame_len bytes
 * (header included) built from a process's options @z must be sent
 * compressed: compression enabled, @type one of 101-106, 121-124, 129, 130,
 * and @frame_len strictly greater than the threshold. Never for 107,
 * 181-186, 199, 200, nor for acks the network layer writes itself (the
 * caller does not ask for those).
 */
bool gni_enp_should_compress(uint8_t type, size_t frame_len, const gni_enp_zopts *z);

/** Upper bound of gni_enp_compress()'s output for a @frame_len-byte frame, any method. */
size_t gni_enp_compress_bound(size_t frame_len);

/**
 * Wraps the whole frame at @frame (@len bytes, header included) into a
 * type 200 frame in @out (@cap bytes): header with the inner frame's order
 * byte, @method (GNI_ENP_Z_*; 0 = gzip), the original length, and the
 * compressed stream (gzip at @level, zlib at zlib's default level, or LZW
 * byte-identical to Go's). Returns the frame length, or GN_EPARSE (@frame is
 * not a whole frame), GN_ENOTSUP (method), GN_ENOSPC (@cap below what this
 * frame needs; gni_enp_compress_bound() always suffices), GN_ETOOBIG
 * (frame above 4 GiB - 1), GN_ENOMEM, GN_EINVAL.
 */
long gni_enp_compress(const uint8_t *frame, size_t len, uint8_t method, uint8_t level, uint8_t *out,
                      size_t cap);

/**
 * Inflates a parsed type 200 frame @z into @out (@cap bytes: the caller's
 * bound; z->orig_len above @cap is refused before any work). The stream must
 * expand to exactly z->orig_len bytes, and these must be a well-formed frame
 * of that length whose type is not 200 (no nesting). gzip accepts
 * concatenated members as Go's reader does; bytes after a zlib or LZW
 * stream's end are ignored. Returns z->orig_len, or GN_ETOOBIG (orig_len >
 * @cap), GN_ENOTSUP (method), GN_EPARSE (corrupt stream, size mismatch, bad
 * inner frame), GN_ENOMEM, GN_EINVAL; @diag (NULL allowed) explains.
 */
long gni_enp_inflate(const gni_enp_frame *z, uint8_t *out, size_t cap, gni_enp_diag *diag);

#endif /* GNI_ENP_H */
