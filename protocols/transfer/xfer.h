/*
 * golemnet - resource transfer cores (private to the library): content
 * addressing (chunks, Merkle tree, proofs, manifest, CID), the
 * /golem/transfer/1.0.0 codec and its per-stream requester and provider
 * state machines, the multi-source scheduler and the resume-state format.
 *
 * Sans-I/O: bytes in, bytes out, time as an argument (gn_time, monotonic
 * ns); no syscalls, no clock, no global state. The stream driver, the file
 * adapter, the CLI and Python come later (docs/protocols/transfer.md
 * section 9).
 *
 * Spec: docs/protocols/transfer.md (this code implements sections 2-8).
 *
 * Errors (negative gn_err codes, include/golemnet/err.h), used alike by
 * every function here unless its comment says otherwise:
 *   GN_EINVAL      a bad argument (NULL where not allowed, index out of range)
 *   GN_EPARSE      malformed manifest, CID or state file
 *   GN_EVERSION    a manifest version other than 1, an unknown hash
 *   GN_EBADFRAME   a message that is not well formed (section 5)
 *   GN_EFRAMESIZE  a length prefix above the message bound
 *   GN_ETOOBIG     a count above its bound (ranges, proof length, name)
 *   GN_EPROTO      a well-formed message that breaks section 6 (wrong
 *                  direction, unsolicited chunk, range beyond the file)
 *   GN_EWINDOW     a requester above the outstanding-chunk window
 *   GN_EDECRYPT    a chunk or manifest that does not match its hash
 *                  ("tampered or corrupted data")
 *   GN_EAGAIN      an output queue or the credit is full (retry later)
 *   GN_ELIMIT      a scheduler bound (providers, chunks, memory; 7.5)
 *   GN_ETIMEDOUT   a stream timer expired (section 6.5)
 *   GN_ESTATE      a call the object's state does not allow (after a
 *                  fatal error, before the manifest)
 *   GN_ENOSPC      a caller buffer too small; GN_ENOMEM
 * Thread context: an object is used by one thread at a time; the pure
 * functions are thread-safe. Memory comes from gn_malloc and friends.
 */
#ifndef GNI_XFER_H
#define GNI_XFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gni.h"

#define GNI_XFER_PROTO_ID "/golem/transfer/1.0.0"

/* ---- content addressing (transfer.md section 2) ---- */

/** Hash length, bytes: BLAKE2b-256 (libsodium crypto_generichash). */
#define GNI_XFER_HASH_LEN 32
/** Multihash code of blake2b-256 (multicodec table). */
#define GNI_XFER_MH_BLAKE2B_256 0xb220u
/** Multicodec of the CID: raw (0x55), over the manifest bytes. */
#define GNI_XFER_CODEC_RAW 0x55u
/** Chunk size golemnet writes (256 KiB) and the range a manifest may carry. */
#define GNI_XFER_CHUNK_DEFAULT (256u * 1024u)
#define GNI_XFER_CHUNK_MIN (16u * 1024u)
#define GNI_XFER_CHUNK_MAX (1024u * 1024u)
/** Largest resource, bytes: 2^50 (1 PiB). At 16 KiB chunks 2^36 leaves. */
#define GNI_XFER_SIZE_MAX (1ull << 50)
/** Longest proof (sibling hashes): ceil(log2(2^36 leaves)). */
#define GNI_XFER_DEPTH_MAX 36u
/** Longest resource name, bytes (UTF-8, no NUL, no '/', not "." or ".."). */
#define GNI_XFER_NAME_MAX 255u
/** Longest encoded manifest, bytes (1 + 3 + 3*8 + 32 + 2 + 255 fits). */
#define GNI_XFER_MANIFEST_MAX 512u
/** Binary CID length: 0x01, 0x55, 0xa0 0xe4 0x02, 0x20, 32 bytes. */
#define GNI_XFER_CID_LEN 38u
/** Longest CID string (multibase base32 'b' of 38 bytes, NUL included). */
#define GNI_XFER_CID_STR_MAX 64u

/** A decoded manifest (section 2.4). name is NUL-terminated, name_len bytes. */
typedef struct gni_xfer_manifest {
    uint64_t total_size;  /* bytes of the resource */
    uint32_t chunk_size;  /* bytes per chunk, a power of two */
    uint64_t leaf_count;  /* ceil(total_size / chunk_size) */
    uint8_t root[GNI_XFER_HASH_LEN];
    size_t name_len; /* 0: no name */
    char name[GNI_XFER_NAME_MAX + 1];
} gni_xfer_manifest;

/** Leaves of a @total-byte resource at @chunk bytes per chunk (0 for empty). */
uint64_t gni_xfer_leaf_count(uint64_t total, uint32_t chunk);
/** Bytes of chunk @index of @m (the last one may be short); 0 if out of range. */
size_t gni_xfer_chunk_len(const gni_xfer_manifest *m, uint64_t index);
/** Leaf hash: BLAKE2b-256(0x00 || data). */
void gni_xfer_leaf_hash(uint8_t out[GNI_XFER_HASH_LEN], const uint8_t *data, size_t len);
/** Interior node: BLAKE2b-256(0x01 || left || right). */
void gni_xfer_node_hash(uint8_t out[GNI_XFER_HASH_LEN], const uint8_t l[GNI_XFER_HASH_LEN],
                        const uint8_t r[GNI_XFER_HASH_LEN]);

/**
 * The whole tree over @n leaf hashes, every level kept (about 2n hashes,
 * 64 bytes per chunk) so a provider answers proofs in O(log n). Built by
 * gni_xfer_tree_new() from @leaves (@n * 32 bytes, copied). @n may be 0
 * (root: BLAKE2b-256 of the empty string). Errors: GN_EINVAL (n above
 * 2^36), GN_ENOMEM.
 */
typedef struct gni_xfer_tree gni_xfer_tree;
int gni_xfer_tree_new(const uint8_t *leaves, uint64_t n, gni_xfer_tree **out);
void gni_xfer_tree_free(gni_xfer_tree *t);
const uint8_t *gni_xfer_tree_root(const gni_xfer_tree *t);
/** Leaves of @t (0 for NULL). */
uint64_t gni_xfer_tree_leaves(const gni_xfer_tree *t);
/**
 * Writes the sibling path of leaf @index into @proof (room for
 * GNI_XFER_DEPTH_MAX hashes), bottom up; returns the hash count, or
 * GN_EINVAL for an index out of range.
 */
int gni_xfer_tree_proof(const gni_xfer_tree *t, uint64_t index,
                        uint8_t proof[][GNI_XFER_HASH_LEN]);
/** Root of @n leaf hashes without keeping the tree (O(log n) memory). */
void gni_xfer_root(const uint8_t *leaves, uint64_t n, uint8_t out[GNI_XFER_HASH_LEN]);
/** Number of sibling hashes in the proof of @index in a tree of @n leaves. */
unsigned gni_xfer_proof_len(uint64_t n, uint64_t index);
/**
 * Checks that @leaf is leaf @index of the @n-leaf tree with root @root,
 * given @cnt sibling hashes @proof. 0, GN_EDECRYPT (no match), GN_EINVAL
 * (index out of range, @cnt not gni_xfer_proof_len()).
 */
int gni_xfer_proof_verify(const uint8_t root[GNI_XFER_HASH_LEN], uint64_t n, uint64_t index,
                          const uint8_t leaf[GNI_XFER_HASH_LEN], const uint8_t *proof,
                          unsigned cnt) __attribute__((warn_unused_result));
/**
 * Verifies chunk @index of @m: its length, leaf hash and proof. 0 or
 * GN_EDECRYPT (wrong length or hash), GN_EINVAL.
 */
int gni_xfer_chunk_verify(const gni_xfer_manifest *m, uint64_t index, const uint8_t *data,
                          size_t len, const uint8_t *proof, unsigned cnt)
    __attribute__((warn_unused_result));

/**
 * Manifest codec (section 2.4). Encode: returns the length written into
 * @out, GN_ENOSPC, GN_EINVAL (fields inconsistent: leaf count, chunk size,
 * name). Decode: parses all of @in (at most GNI_XFER_MANIFEST_MAX bytes),
 * canonical form only; GN_EPARSE, GN_EVERSION, GN_ETOOBIG.
 */
int gni_xfer_manifest_encode(const gni_xfer_manifest *m, uint8_t *out, size_t out_len);
int gni_xfer_manifest_decode(const uint8_t *in, size_t len, gni_xfer_manifest *m);
/** The binary CID of manifest bytes @mb (GNI_XFER_CID_LEN bytes). */
void gni_xfer_cid(const uint8_t *mb, size_t len, uint8_t cid[GNI_XFER_CID_LEN]);
/** CID as multibase base32 text ("bafk..."); returns its length or GN_ENOSPC. */
int gni_xfer_cid_string(const uint8_t cid[GNI_XFER_CID_LEN], char *out, size_t out_len);
/**
 * Parses CID text @s (@len characters, no NUL needed; multibase base32 'b'
 * or base58btc 'z') into the binary @cid. GN_EPARSE (malformed text or
 * CID), GN_ENOTSUP (a CIDv1 of another codec or hash).
 */
int gni_xfer_cid_parse_string(const char *s, size_t len, uint8_t cid[GNI_XFER_CID_LEN]);
/**
 * Checks that @in (@len bytes) is a binary CID of a resource: CIDv1, raw,
 * blake2b-256, nothing after it. 0, GN_EPARSE, GN_ENOTSUP as above.
 */
int gni_xfer_cid_check(const uint8_t *in, size_t len);
/** 0 when @mb (len bytes) hashes to @cid, else GN_EDECRYPT. */
int gni_xfer_cid_verify(const uint8_t cid[GNI_XFER_CID_LEN], const uint8_t *mb, size_t len)
    __attribute__((warn_unused_result));

/* ---- the wire (sections 4-5) ---- */

#define GNI_XFER_T_GET_MANIFEST 1u
#define GNI_XFER_T_MANIFEST 2u
#define GNI_XFER_T_HAVE 3u
#define GNI_XFER_T_WANT 4u
#define GNI_XFER_T_CANCEL 5u
#define GNI_XFER_T_CHUNK 6u
#define GNI_XFER_T_SKIP 7u
#define GNI_XFER_T_ERROR 8u

/** SKIP reasons. */
#define GNI_XFER_SKIP_NOT_HAVE 1u
#define GNI_XFER_SKIP_CANCELED 2u
/** ERROR codes on the wire (section 5.2); 1 .. 2^32-1. */
#define GNI_XFER_ERR_NOT_FOUND 1u
#define GNI_XFER_ERR_PROTOCOL 2u
#define GNI_XFER_ERR_LIMIT 3u
#define GNI_XFER_ERR_BUSY 4u
#define GNI_XFER_ERR_INTERNAL 5u
#define GNI_XFER_ERR_CORRUPT 6u

/** Ranges per HAVE/WANT/CANCEL/SKIP. */
#define GNI_XFER_MAX_RANGES 64u
/** Chunks a requester may have outstanding on one stream (the window). */
#define GNI_XFER_WINDOW 32u
/** Longest ERROR text, bytes. */
#define GNI_XFER_ERRTEXT_MAX 256u
/** Longest message body a requester reads: a largest chunk, its index and its proof. */
#define GNI_XFER_MSG_MAX (GNI_XFER_CHUNK_MAX + 2048u)
/**
 * Longest message body a provider reads (the requester's messages:
 * GET_MANIFEST, WANT/CANCEL with 64 ranges, ERROR; all fit in 1 KiB).
 */
#define GNI_XFER_REQ_MSG_MAX 2048u
/** Stream timeouts, ns (section 6.5): the first answer (MANIFEST, or the
 * provider's GET_MANIFEST); a requester's silence with chunks
 * outstanding; a provider's stream with nothing wanted and no input. */
#define GNI_XFER_MANIFEST_TIMEOUT (10 * GN_S)
#define GNI_XFER_IDLE_TIMEOUT (30 * GN_S)
#define GNI_XFER_PROV_IDLE_TIMEOUT (60 * GN_S)
/** Longest CHUNK header (prefix, type, index, count, proof). */
#define GNI_XFER_CHUNK_HDR_MAX (10u + 1u + 10u + 1u + GNI_XFER_DEPTH_MAX * GNI_XFER_HASH_LEN)

/** A run of chunks [start, start + count). count >= 1. */
typedef struct gni_xfer_range {
    uint64_t start, count;
} gni_xfer_range;

/**
 * One decoded message. Borrowed fields point into the body given to
 * gni_xfer_msg_decode(); ranges are written into the caller's array.
 */
typedef struct gni_xfer_msg {
    unsigned type;
    gn_slice bytes; /* GET_MANIFEST: CID; MANIFEST: manifest; CHUNK: data; ERROR: text */
    uint64_t index;  /* CHUNK */
    const uint8_t *proof; /* CHUNK: proof_cnt * 32 bytes */
    unsigned proof_cnt;
    unsigned code;   /* SKIP: reason; ERROR: code; HAVE: 1 = has every chunk */
    gni_xfer_range *ranges; /* HAVE, WANT, CANCEL, SKIP */
    size_t range_cnt;
} gni_xfer_msg;

/**
 * Decodes one message body (@len bytes, without its length prefix) into
 * @m; @ranges has room for GNI_XFER_MAX_RANGES. 0 or GN_EBADFRAME (unknown
 * type, truncation, trailing bytes, a non-minimal varint, ranges that are
 * empty, overlap, are out of order or overflow, an ERROR code of 0 or
 * above 2^32-1, ERROR text that is not valid UTF-8), GN_ETOOBIG (counts,
 * CID, manifest, text or proof above their bounds), GN_EFRAMESIZE (@len
 * above GNI_XFER_MSG_MAX). Spec: section 5.
 */
int gni_xfer_msg_decode(const uint8_t *body, size_t len, gni_xfer_msg *m,
                        gni_xfer_range ranges[GNI_XFER_MAX_RANGES]);
/**
 * Encodes @m with its length prefix into @out. Returns bytes written,
 * GN_ENOSPC, GN_EINVAL (what gni_xfer_msg_decode would refuse).
 */
int gni_xfer_msg_encode(const gni_xfer_msg *m, uint8_t *out, size_t out_len);

/* ---- requester, one stream (section 6) ---- */

enum {
    GNI_XFER_EV_NONE = 0,
    GNI_XFER_EV_MANIFEST, /* the manifest arrived and matched the CID: ev.manifest */
    GNI_XFER_EV_HAVE,     /* ev.all or ev.ranges */
    GNI_XFER_EV_CHUNK,    /* a chunk: ev.index, ev.data; ev.verified (see
                           * gni_xfer_req_set_defer_verify()) */
    GNI_XFER_EV_SKIP,     /* wanted chunks that will not come: ev.code, ev.ranges */
    GNI_XFER_EV_ERROR,    /* the peer sent ERROR: ev.code, ev.data (text); stream over */
};

/** A requester event; borrowed parts are valid until the next feed. */
typedef struct gni_xfer_ev {
    int type;
    const gni_xfer_manifest *manifest;
    uint64_t index;
    gn_slice data;
    unsigned code;
    bool all;
    const gni_xfer_range *ranges;
    size_t range_cnt;
    bool verified;          /* CHUNK: false only in deferred mode */
    const uint8_t *proof;   /* CHUNK: its proof (proof_cnt * 32 bytes), for deferred mode */
    unsigned proof_cnt;
} gni_xfer_ev;

typedef struct gni_xfer_req gni_xfer_req;
/**
 * A requester for the resource @cid (GNI_XFER_CID_LEN bytes). Queues
 * GET_MANIFEST. Errors: GN_EINVAL, GN_ENOMEM.
 */
int gni_xfer_req_new(const uint8_t cid[GNI_XFER_CID_LEN], gni_xfer_req **out);
void gni_xfer_req_free(gni_xfer_req *r);
/**
 * Feeds received bytes. *@consumed: bytes used (all, or fewer when an
 * event is returned: feed the rest next). Returns 1 with *@ev filled, 0
 * when all bytes were used without an event, or a fatal error (the
 * requester has queued an ERROR; drain it, then close the stream): every
 * section 6 violation, GN_EDECRYPT for a manifest or chunk that fails
 * verification (the provider is to be dropped for this resource),
 * GN_EFRAMESIZE (a length above GNI_XFER_MSG_MAX), GN_ENOMEM (no memory
 * for the message being read), GN_ESTATE after any of these.
 */
int gni_xfer_req_feed(gni_xfer_req *r, const uint8_t *in, size_t len, size_t *consumed,
                      gni_xfer_ev *ev);
/**
 * Timers (section 6.5). gni_xfer_req_start() starts the MANIFEST timeout
 * (call it when the stream opens; without it the requester has no
 * deadline). gni_xfer_req_feed_at() is gni_xfer_req_feed() that also
 * records @now as the time bytes last arrived. gni_xfer_req_next_deadline():
 * start + GNI_XFER_MANIFEST_TIMEOUT until MANIFEST, then, while chunks are
 * outstanding, last arrival + GNI_XFER_IDLE_TIMEOUT, else GN_TIME_INFINITY.
 * gni_xfer_req_on_expiry(): at or after the deadline queues ERROR(LIMIT,
 * "timeout: ...") and returns GN_ETIMEDOUT (drain, close, and drop the
 * provider); before it returns 0. All times monotonic ns.
 */
void gni_xfer_req_start(gni_xfer_req *r, gn_time now);
int gni_xfer_req_feed_at(gni_xfer_req *r, const uint8_t *in, size_t len, size_t *consumed,
                         gni_xfer_ev *ev, gn_time now);
gn_time gni_xfer_req_next_deadline(const gni_xfer_req *r);
int gni_xfer_req_on_expiry(gni_xfer_req *r, gn_time now);
/**
 * Asks for chunks [start, start+count). Needs the manifest (GN_ESTATE
 * before, or after a fatal error), count within the free credit
 * (GN_EAGAIN), the range in the file (GN_ERANGE), none of them already
 * outstanding on this stream (GN_EEXIST), output room (GN_EAGAIN);
 * GN_EINVAL for count 0. On failure nothing is queued (with the
 * scheduler: gni_xfer_sched_unassign()).
 */
int gni_xfer_req_want(gni_xfer_req *r, uint64_t start, uint64_t count);
/** Cancels outstanding chunk @index (GN_ENOTFOUND if not outstanding). */
int gni_xfer_req_cancel(gni_xfer_req *r, uint64_t index);
/**
 * Deferred verification (default off): CHUNK events then come with
 * ev.verified false once the length and the proof's length are checked;
 * the caller must run gni_xfer_chunk_verify() (pure, thread-safe: a
 * worker thread may do it, on copies of ev.data and ev.proof, which are
 * only borrowed until the next feed)
 * before it writes or serves the chunk, and on GN_EDECRYPT call
 * gni_xfer_req_abort(r, GNI_XFER_ERR_CORRUPT, ...) and drop the provider.
 * This lets a driver hash on another core than the one doing the I/O.
 */
void gni_xfer_req_set_defer_verify(gni_xfer_req *r, bool on);
/** Free credit: chunks that may still be wanted. */
unsigned gni_xfer_req_credit(const gni_xfer_req *r);
/** Chunks wanted and not yet answered (cancelled ones included). */
unsigned gni_xfer_req_outstanding(const gni_xfer_req *r);
/** Copies queued output into @out; returns the bytes copied (0: none). */
size_t gni_xfer_req_drain(gni_xfer_req *r, gn_buf *out);
/**
 * Queues ERROR(@code, @text) and stops the requester. @code >= 1; @text
 * NUL-terminated or NULL, cut to GNI_XFER_ERRTEXT_MAX bytes of whole
 * UTF-8 characters (and at its first invalid byte). GN_EINVAL (code 0).
 */
int gni_xfer_req_abort(gni_xfer_req *r, unsigned code, const char *text);

/* ---- provider, one stream (section 6) ---- */

typedef struct gni_xfer_prov gni_xfer_prov;
/**
 * A provider serving the resource of manifest bytes @mb (@mb_len bytes,
 * copied) with its whole tree @t (borrowed: it must outlive the
 * provider). In 1.0.0 only complete copies serve (section 5.1): @have is
 * reserved and must be NULL. Errors: GN_EINVAL (NULL @mb, @t or @out,
 * @have not NULL, @t of another root or another leaf count than the
 * manifest's), GN_EPARSE (@mb not a manifest), GN_ENOMEM.
 */
int gni_xfer_prov_new(const uint8_t *mb, size_t mb_len, const gni_xfer_tree *t,
                      const uint8_t *have, gni_xfer_prov **out);
void gni_xfer_prov_free(gni_xfer_prov *p);
/**
 * Feeds received bytes; same contract as gni_xfer_req_feed(), with the
 * smaller message bound GNI_XFER_REQ_MSG_MAX (GN_EFRAMESIZE above it).
 * Events: none but GNI_XFER_EV_ERROR (the peer's ERROR). GET_MANIFEST for
 * another CID queues ERROR(NOT_FOUND) and returns GN_ENOTFOUND.
 * GN_EAGAIN (nothing consumed) while less than 4 KiB of the output queue
 * is free: drain, then feed again (section 6.4).
 */
int gni_xfer_prov_feed(gni_xfer_prov *p, const uint8_t *in, size_t len, size_t *consumed,
                       gni_xfer_ev *ev);
/**
 * The next chunk to send: returns 1 with *@index (the caller reads its
 * bytes and calls gni_xfer_prov_chunk_header(), or on a read error
 * gni_xfer_prov_skip_head()), 0 when none is wanted. From then on the
 * chunk is "being sent": a CANCEL leaves it, and it arrives as CHUNK
 * (section 6.2).
 */
int gni_xfer_prov_next(gni_xfer_prov *p, uint64_t *index);
/**
 * Writes the frame header of CHUNK @index (prefix, type, index, proof)
 * into @out (GNI_XFER_CHUNK_HDR_MAX bytes); the chunk's bytes follow it on
 * the stream. Marks the chunk answered. Returns the header length,
 * GN_ESTATE if @index is not the one gni_xfer_prov_next() gave.
 */
int gni_xfer_prov_chunk_header(gni_xfer_prov *p, uint64_t index, uint8_t *out, size_t out_len);
/**
 * Answers the head of the queue (the chunk gni_xfer_prov_next() gave)
 * with SKIP(@reason) instead of CHUNK, e.g. SKIP(NOT_HAVE) when reading it
 * failed. GN_EINVAL (bad @reason), GN_ESTATE (nothing wanted, or after an
 * error), GN_EAGAIN (output full: drain, retry).
 */
int gni_xfer_prov_skip_head(gni_xfer_prov *p, unsigned reason);
/**
 * Reserved: the later HAVE of a provider that is itself downloading. In
 * 1.0.0 only complete copies serve (section 5.1), so this returns
 * GN_ENOTSUP (GN_EINVAL for NULL @p).
 */
int gni_xfer_prov_announce(gni_xfer_prov *p, uint64_t start, uint64_t count);
/**
 * Timers (section 6.5), as the requester's: gni_xfer_prov_start() when the
 * stream opens; gni_xfer_prov_feed_at() records @now as the last input;
 * the deadline is start + GNI_XFER_MANIFEST_TIMEOUT until GET_MANIFEST,
 * then, while nothing is wanted, last input + GNI_XFER_PROV_IDLE_TIMEOUT,
 * else GN_TIME_INFINITY; gni_xfer_prov_on_expiry() at or after it queues
 * ERROR(LIMIT, "timeout: ...") and returns GN_ETIMEDOUT (drain, close).
 */
void gni_xfer_prov_start(gni_xfer_prov *p, gn_time now);
int gni_xfer_prov_feed_at(gni_xfer_prov *p, const uint8_t *in, size_t len, size_t *consumed,
                          gni_xfer_ev *ev, gn_time now);
gn_time gni_xfer_prov_next_deadline(const gni_xfer_prov *p);
int gni_xfer_prov_on_expiry(gni_xfer_prov *p, gn_time now);
/** Copies queued control output (MANIFEST, HAVE, SKIP, ERROR) into @out. */
size_t gni_xfer_prov_drain(gni_xfer_prov *p, gn_buf *out);
/** Queues ERROR(@code, @text) and stops the provider; as gni_xfer_req_abort(). */
int gni_xfer_prov_abort(gni_xfer_prov *p, unsigned code, const char *text);

/* ---- multi-source scheduler (section 7) ---- */

/** Most providers of one download at a time (slots of dropped ones are reused). */
#define GNI_XFER_SCHED_MAX_PROV 64u
/**
 * Most chunks a scheduler takes: 2^24 (4 TiB at 256 KiB chunks, 256 GiB at
 * 16 KiB). Its fixed memory is about 1.125 bytes per chunk (18 MiB here).
 */
#define GNI_XFER_SCHED_LEAVES_MAX (1ull << 24)
/** Memory budget of one scheduler, bytes: fixed part plus have-sets (7.5). */
#define GNI_XFER_SCHED_MEM_MAX (64u * 1024u * 1024u)

typedef struct gni_xfer_sched_cfg {
    unsigned window_min, window_max; /* per-provider outstanding chunks (1..GNI_XFER_WINDOW) */
    gn_time queue_time;   /* data worth this much time kept queued at each provider */
    gn_time stall_time;   /* a request older than this may be duplicated anywhere */
    uint64_t initial_rate; /* bytes/s assumed before a provider's first chunk */
    unsigned max_copies;  /* endgame: live copies of one chunk in flight (1..255) */
} gni_xfer_sched_cfg;

/** Fills @c with the defaults (4, 32, 1 s, 10 s, 1 MB/s, 2). */
void gni_xfer_sched_cfg_default(gni_xfer_sched_cfg *c);

typedef struct gni_xfer_sched gni_xfer_sched;
/**
 * A scheduler for @m's chunks. @done: NULL or a bitmap of chunks already
 * verified (resume; gni_xfer_bitmap_len(m->leaf_count) bytes, copied).
 * @cfg: NULL for the defaults. Errors: GN_EINVAL (NULL @m or @out, a bad
 * config), GN_ELIMIT (more than GNI_XFER_SCHED_LEAVES_MAX chunks, section
 * 7.5), GN_ENOMEM.
 */
int gni_xfer_sched_new(const gni_xfer_manifest *m, const uint8_t *done,
                       const gni_xfer_sched_cfg *cfg, gni_xfer_sched **out);
void gni_xfer_sched_free(gni_xfer_sched *s);
/**
 * Adds a provider; returns its id (0..63). The slot of a provider dropped
 * without a ban is reused, so after gni_xfer_sched_drop() the driver must
 * forget that id. GN_ELIMIT when 64 providers are present or banned,
 * GN_EINVAL.
 */
int gni_xfer_sched_add(gni_xfer_sched *s);
/**
 * Provider @pid has every chunk / chunks [start, start+count) (only adds).
 * GN_EINVAL (unknown @pid, range beyond the file), and for ranges
 * GN_ELIMIT (its have-set would pass GNI_XFER_SCHED_MEM_MAX: drop it) or
 * GN_ENOMEM.
 */
int gni_xfer_sched_have_all(gni_xfer_sched *s, int pid);
int gni_xfer_sched_have(gni_xfer_sched *s, int pid, uint64_t start, uint64_t count);
/**
 * Next request to send: returns 1 with *@pid and *@index (the driver
 * sends WANT on that provider's stream; the chunk counts as in flight
 * there; if the WANT cannot be sent, gni_xfer_sched_unassign()), 0 when
 * nothing should be asked now. Endgame duplicates come from here too.
 * @now: monotonic ns. GN_EINVAL.
 */
int gni_xfer_sched_next(gni_xfer_sched *s, gn_time now, int *pid, uint64_t *index);
/**
 * When gni_xfer_sched_next() may have new work without any event: the
 * oldest open request's send time + stall_time (it then becomes a
 * candidate for an endgame duplicate), or GN_TIME_INFINITY. A request is
 * counted until a gni_xfer_sched_next() call at or after its deadline has
 * seen it stalled. Spec: section 7.2.
 */
gn_time gni_xfer_sched_next_deadline(const gni_xfer_sched *s);
/** Next CANCEL to send (a chunk another provider delivered): 1 or 0. */
int gni_xfer_sched_next_cancel(gni_xfer_sched *s, int *pid, uint64_t *index);
/**
 * Provider @pid delivered verified chunk @index (@len bytes) at @now.
 * Returns 1 if new (write it), 0 if a duplicate (discard it), GN_EINVAL.
 */
int gni_xfer_sched_done(gni_xfer_sched *s, int pid, uint64_t index, size_t len, gn_time now);
/**
 * Provider @pid answered @index with SKIP (@reason GNI_XFER_SKIP_*).
 * NOT_HAVE removes @index from its have-set, so it is not asked of @pid
 * again (unless a later HAVE adds it). GN_EINVAL (bad @pid, @index or
 * @reason), GN_ENOTFOUND (not in flight there), GN_ELIMIT/GN_ENOMEM (no
 * memory for the have-set of a provider that had announced everything:
 * the provider has been dropped, close its stream).
 */
int gni_xfer_sched_skip(gni_xfer_sched *s, int pid, uint64_t index, unsigned reason);
/**
 * Takes back request @index of @pid that gni_xfer_sched_next() gave but
 * the driver could not send (gni_xfer_req_want() failed): it is no longer
 * in flight there and goes back to the pool. GN_EINVAL, GN_ENOTFOUND (not
 * in flight at @pid). Spec: section 9.
 */
int gni_xfer_sched_unassign(gni_xfer_sched *s, int pid, uint64_t index);
/**
 * Provider @pid is gone (@why: GN_EDECRYPT for a corrupt chunk, which
 * bans it for this resource; anything else: vanished). Its chunks in
 * flight go back to the pool, its pending CANCELs are forgotten and, if
 * not banned, its slot may be reused by gni_xfer_sched_add().
 */
int gni_xfer_sched_drop(gni_xfer_sched *s, int pid, int why);
/** True when @pid was dropped for a corrupt chunk. */
bool gni_xfer_sched_banned(const gni_xfer_sched *s, int pid);
/** Chunks verified so far; bytes verified so far. */
uint64_t gni_xfer_sched_done_cnt(const gni_xfer_sched *s);
uint64_t gni_xfer_sched_done_bytes(const gni_xfer_sched *s);
/** True when every chunk is verified. */
bool gni_xfer_sched_complete(const gni_xfer_sched *s);
/** Chunks in flight at @pid (duplicates and cancelled-unanswered included). */
unsigned gni_xfer_sched_inflight(const gni_xfer_sched *s, int pid);
/** The verified-chunk bitmap (ceil(leaf_count / 8) bytes; LSB first). */
const uint8_t *gni_xfer_sched_bitmap(const gni_xfer_sched *s);

/* ---- resume state (section 8) ---- */

/** "GNXFERS1": the state file's magic. */
#define GNI_XFER_STATE_MAGIC "GNXFERS1"
/** Bitmap bytes of @leaves chunks; SIZE_MAX when they do not fit a size_t (32-bit). */
size_t gni_xfer_bitmap_len(uint64_t leaves);
/**
 * Writes the state file's header (magic, manifest length, manifest) into
 * @out; the bitmap follows it. Returns the header length or GN_ENOSPC.
 */
int gni_xfer_state_header(const uint8_t *mb, size_t mb_len, uint8_t *out, size_t out_len);
/**
 * Parses a whole state file @in against the expected @cid: on success the
 * manifest in *@m, the bitmap in *@bitmap (borrowed from @in) and the
 * header length in *@hdr_len. GN_EPARSE (magic, lengths, bits past the
 * last chunk set), GN_EDECRYPT (manifest of another CID), GN_ELIMIT (a
 * bitmap too large to address on this platform), errors of
 * gni_xfer_manifest_decode().
 */
int gni_xfer_state_parse(const uint8_t *in, size_t len, const uint8_t cid[GNI_XFER_CID_LEN],
                         gni_xfer_manifest *m, const uint8_t **bitmap, size_t *hdr_len);
/** File offset of the bitmap byte holding chunk @index's bit, and its mask. */
uint64_t gni_xfer_state_bit(size_t hdr_len, uint64_t index, uint8_t *mask);

static inline bool gni_xfer_bit(const uint8_t *bm, uint64_t i)
{
    return (bm[i >> 3] >> (i & 7)) & 1u;
}

#endif /* GNI_XFER_H */
