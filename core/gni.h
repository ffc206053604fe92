/*
 * Internal helpers shared by core and components (never installed).
 * Include only from .c files of this project.
 */
#ifndef GNI_H
#define GNI_H

#include "golemnet/buf.h"
#include "golemnet/err.h"
#include "golemnet/identity.h"
#include "golemnet/log.h"
#include "golemnet/loop.h"

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define GNI_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define GNI_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define GNI_MIN(a, b) ((a) < (b) ? (a) : (b))
#define GNI_MAX(a, b) ((a) > (b) ? (a) : (b))

/*
 * Intrusive doubly linked list. A head is initialised with gni_list_init();
 * an element is "off the list" when zeroed or after gni_list_del(), so
 * calloc'd elements need no initialisation and deleting twice is harmless.
 */
typedef struct gni_list {
    struct gni_list *prev, *next;
} gni_list;

static inline void gni_list_init(gni_list *l) { l->prev = l->next = l; }
static inline bool gni_list_empty(const gni_list *head) { return head->next == head; }
static inline bool gni_list_on(const gni_list *e) { return e->next != NULL && e->next != e; }
static inline void gni_list_add_tail(gni_list *head, gni_list *e)
{
    e->prev = head->prev;
    e->next = head;
    head->prev->next = e;
    head->prev = e;
}
static inline void gni_list_del(gni_list *e)
{
    if (!gni_list_on(e)) {
        return;
    }
    e->prev->next = e->next;
    e->next->prev = e->prev;
    e->prev = e->next = e;
}

/*
 * Copies the string @src into @dst of @cap bytes (> 0), truncated to
 * @cap - 1 bytes and always terminated, as snprintf(dst, cap, "%s", src)
 * does without the formatting machinery (per-stream paths copy protocol
 * ids). Returns the length copied.
 */
static inline size_t gni_str_copy(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
    return n;
}

/**
 * Maps a libuv error (negative errno-style) to a gn_err. Adapters only.
 * Unknown codes map to GN_EIO. Defined in core/uv_glue.c.
 */
int gni_err_from_uv(int uverr);

/*
 * A reserved loop command: caller-owned storage, so submitting it needs
 * neither room in the bounded command ring nor an allocation. For requests
 * that must never be lost (a node's close). Fields are private to the loop
 * (guarded by its mutex) except fn and arg, set once before first use.
 */
typedef struct gni_loop_cmd {
    struct gni_loop_cmd *next;
    gn_loop_fn fn;
    void *arg;
    uint64_t seq; /* ring commands accepted before it */
    bool queued;
} gni_loop_cmd;

/*
 * Queues @cmd to run @cmd->fn(loop, @cmd->arg) on the loop thread, from any
 * thread (the loop thread included: it runs on a later iteration, never
 * from inside this call). It runs after every gn_loop_submit() command
 * accepted before it. Submitting a command that is still queued is a no-op
 * (it runs once); once it started running it may be queued again. The
 * storage must stay valid until it ran or the loop stopped.
 * Errors: GN_EINVAL (NULL @loop, @cmd or fn), GN_ECLOSED (the loop is
 * stopping: the command will not run).
 */
int gni_loop_submit_cmd(gn_loop *loop, gni_loop_cmd *cmd);

/*
 * Per-stream byte queues of the muxer cores (yamux, mplex): adaptive
 * gn_bufq chunks sized for the rest of the frame being stored (256 B ..
 * 16 KiB), so small messages on many streams stay small and bulk data goes
 * in large chunks; no chunk bound and no spare pool (the cores bound what
 * they queue with windows and buffer limits, and idle streams hold no
 * memory).
 */
#define GNI_STREAMQ_CHUNK_MIN 256u
#define GNI_STREAMQ_CHUNK_MAX (16u * 1024u)

static inline void gni_streamq_init(gn_bufq *q)
{
    int rc = gn_bufq_init_adaptive(q, GNI_STREAMQ_CHUNK_MIN, GNI_STREAMQ_CHUNK_MAX, SIZE_MAX, 0);
    assert(rc == 0);
    (void)rc;
}

/* Appends @n bytes (@hint: bytes expected in all); returns the count taken,
 * fewer than @n only when an allocation failed. */
static inline size_t gni_streamq_append(gn_bufq *q, const uint8_t *p, size_t n, size_t hint)
{
    long r = gn_bufq_write_hint(q, p, n, hint);
    return r < 0 ? 0 : (size_t)r;
}

/* gn_bufq_peek() as a slice. */
static inline bool gni_streamq_peek(const gn_bufq *q, gn_slice *out)
{
    return gn_bufq_peek(q, &out->base, &out->len);
}

/*
 * Incremental unsigned-varint reader: the one varint decoder of the tree.
 * gn_varint_decode() (core/multiformats.c) runs it over a buffer; parsers
 * that receive bytes piecemeal (mplex frame headers, /golem/msg lengths) feed
 * it byte by byte; protobuf walkers use gni_varint_decode_kind(). Two
 * flavours, chosen at init:
 *   GNI_VARINT_MF  multiformats unsigned-varint: at most 9 bytes (63 bits),
 *                  minimal encoding only (no trailing 0x00 byte).
 *   GNI_VARINT_PB  protobuf / Go binary.Uvarint (as mplex and protobuf use):
 *                  at most 10 bytes, value at most 2^64-1, non-minimal
 *                  encodings accepted.
 * State is a plain struct (no allocation); a zeroed reader is a valid MF
 * reader. Pure: any thread, one reader per thread at a time.
 */
enum { GNI_VARINT_MF = 0, GNI_VARINT_PB = 1 };

typedef struct gni_varint_rd {
    uint64_t acc;  /* value bits gathered so far */
    uint8_t n;     /* bytes consumed of the current varint */
    uint8_t kind;  /* GNI_VARINT_MF or GNI_VARINT_PB */
} gni_varint_rd;

/** Resets @rd to read a new varint of flavour @kind. */
static inline void gni_varint_rd_init(gni_varint_rd *rd, unsigned kind)
{
    rd->acc = 0;
    rd->n = 0;
    rd->kind = (uint8_t)kind;
}

/** True while @rd holds the first bytes of an unfinished varint. */
static inline bool gni_varint_rd_busy(const gni_varint_rd *rd) { return rd->n != 0; }

/**
 * Feeds one byte @b to @rd. Returns 1 when @b ends the varint (its value is
 * stored in *@v and @rd is reset for the next one), 0 when more bytes are
 * needed, or GN_EPARSE (too long, above the flavour's range, or - MF only -
 * not minimal); after GN_EPARSE @rd is reset. core/multiformats.c.
 */
int gni_varint_rd_byte(gni_varint_rd *rd, uint8_t b, uint64_t *v);

/*
 * A sans-I/O reader of unsigned-varint-length-prefixed messages, libp2p's
 * framing of protobuf messages on a stream (circuit relay, AutoNAT, DCUtR,
 * identify). It consumes exactly one message and stops, so the bytes that
 * follow it (a relayed connection's first bytes) stay with the caller.
 * Lengths above @max fail before anything is allocated, and the buffer
 * grows with the bytes that arrive (doubling from 1 KiB, at most the
 * announced length), never from the announced length alone: a peer that
 * announces a large message and stops holds what it sent, not what it
 * announced. core/lpmsg.c.
 */
typedef struct gni_lp_reader {
    gni_varint_rd vr;
    size_t max;      /* longest message accepted */
    size_t want;     /* the current message's length, once known */
    size_t have;     /* bytes of it gathered */
    size_t cap;      /* bytes allocated at buf: grows with have, up to want */
    uint8_t *buf;    /* the message's bytes so far (NULL until some arrive) */
    bool in_body;    /* the length is known */
    bool done;       /* a message is complete and not yet taken */
} gni_lp_reader;

/** Sets up @r for messages of at most @max bytes (no allocation). */
void gni_lp_reader_init(gni_lp_reader *r, size_t max);
/**
 * Feeds @len bytes of @in. *@consumed receives how many were used: all of
 * them, or fewer when a message completed (the rest follow it). Returns 1
 * when a message is complete: *@msg and *@msg_len (borrowed until the next
 * feed or clear; *@msg may be NULL for an empty message), 0 when more
 * bytes are needed, or GN_EFRAMESIZE (longer than max), GN_EPARSE (bad
 * varint), GN_ENOMEM; after an error the reader must be cleared.
 */
int gni_lp_reader_feed(gni_lp_reader *r, const uint8_t *in, size_t len, size_t *consumed,
                       const uint8_t **msg, size_t *msg_len);
/** Frees what @r holds and resets it for the next message (same max). */
void gni_lp_reader_clear(gni_lp_reader *r);
/**
 * Writes the varint length prefix of a @len-byte message into @out (at
 * least 10 bytes). Returns its length.
 */
size_t gni_lp_prefix(uint8_t out[10], size_t len);

/*
 * A gn_rcbuf of @len bytes whose contents are not initialised (the caller
 * fills them before sharing). NULL when out of memory.
 */
gn_rcbuf *gni_rcbuf_alloc(size_t len);
/*
 * Resizes *@b (one reference only: not yet shared) to @len bytes, keeping
 * the first min(old, @len) bytes. Errors: GN_ENOMEM (*@b unchanged),
 * GN_EINVAL (shared).
 */
int gni_rcbuf_resize(gn_rcbuf **b, size_t len);

/**
 * Decodes one varint of flavour @kind from the start of @in (@in_len
 * bytes). Returns the bytes used (1..10) with the value in *@v (@v may be
 * NULL), GN_EAGAIN if @in ends first, GN_EPARSE as gni_varint_rd_byte(), or
 * GN_EINVAL (@in NULL with a length). core/multiformats.c.
 */
int gni_varint_decode_kind(const uint8_t *in, size_t in_len, unsigned kind, uint64_t *v);

/**
 * Steps over the next field of the protobuf in @p (@n bytes) at *@pos, for
 * the bounds scans that run before protobuf-c allocates (kad, pubsub): its
 * number in *@field, its wire type in *@wt (may be NULL) and, for
 * length-delimited fields, the payload in *@sub (base NULL for the other
 * wire types). Returns 1 with *@pos past the field, 0 at the end,
 * GN_EBADFRAME on malformed wire data (truncation, groups, reserved wire
 * types, field 0 or above 2^29 - 1). It only locates fields; decoding is
 * protobuf-c's. core/multiformats.c; any thread.
 */
int gni_pb_next(const uint8_t *p, size_t n, size_t *pos, uint64_t *field, unsigned *wt,
                gn_slice *sub);

/**
 * HKDF-Extract of RFC 5869 section 2.2 with HMAC-SHA256: @prk (32 bytes) =
 * HMAC(@salt, @ikm). A NULL or empty @salt means 32 zero bytes (the RFC's
 * default); @ikm may be NULL when @ikm_len is 0. Cannot fail. Defined in
 * core/hkdf.c; any thread.
 */
void gni_hkdf_sha256_extract(uint8_t prk[32], const uint8_t *salt, size_t salt_len,
                             const uint8_t *ikm, size_t ikm_len);

/**
 * HKDF-Expand of RFC 5869 section 2.3 with HMAC-SHA256: the first @out_len
 * bytes of T(1) || T(2) || ..., T(i) = HMAC(@prk, T(i-1) || @info || u8(i)).
 * @prk is @prk_len bytes (normally 32, any length is accepted as an HMAC
 * key); @info may be NULL when @info_len is 0. Returns 0, or GN_EINVAL
 * (@out_len > 255 * 32, or a NULL pointer with a length). core/hkdf.c.
 */
int gni_hkdf_sha256_expand(uint8_t *out, size_t out_len, const uint8_t *prk, size_t prk_len,
                           const uint8_t *info, size_t info_len);

/**
 * The X25519 secret key of @id's Ed25519 identity key (libsodium
 * crypto_sign_ed25519_sk_to_curve25519, RFC 7748 section 4.1 map), written
 * to @out (32 bytes; a secret: the caller wipes it). Returns 0, or
 * GN_EINVAL (NULL argument), GN_EINTERNAL (conversion failed; @out is then
 * zeroed). Defined in core/identity.c; any thread (reads @id only).
 */
int gni_identity_x25519_secret(const gn_identity *id, uint8_t out[32]);

/**
 * Secure memory for small secrets (keys, handshake state), pooled.
 *
 * Returns @len bytes of zeroed memory, 16-byte aligned, or NULL (out of
 * memory, or libsodium/mutex initialisation failed). Requests up to 1008
 * bytes come from slots of slabs that are themselves sodium_malloc()'d
 * (guard pages, canary, mlock as libsodium does, per slab rather than per
 * secret); larger ones fall back to sodium_malloc() transparently. @len 0
 * is treated as 1. Release only with gni_secmem_free(). Calls
 * sodium_init() itself. Any thread (an internal mutex per size class).
 * Defined in core/secmem.c.
 */
void *gni_secmem_alloc(size_t len);

/**
 * Wipes (sodium_memzero) and releases memory from gni_secmem_alloc(). NULL
 * is a no-op. A slab whose last slot is freed is released, except one spare
 * per size class. A pointer that did not come from gni_secmem_alloc(), or a
 * double free, aborts the process when detected (the header is checked).
 * Any thread. Defined in core/secmem.c.
 */
void gni_secmem_free(void *p);

/** Counters of the secure-memory pool (gni_secmem_get_stats()). */
typedef struct gni_secmem_stats {
    size_t slabs;        /* slabs alive, spares included */
    size_t slots_in_use; /* pooled allocations outstanding */
    size_t big_in_use;   /* sodium_malloc() fallbacks outstanding */
} gni_secmem_stats;

/** Fills @out (non-NULL) with a snapshot of the pool counters. Any thread; tests. */
void gni_secmem_get_stats(gni_secmem_stats *out);

/** Releases the spare empty slab of every size class. Any thread; tests, shutdown. */
void gni_secmem_trim(void);

#endif /* GNI_H */
