/*
 * golemnet - EHS R1, the Ergo handshake (private to the library).
 *
 * Sans-I/O core for the handshake two Ergo Framework 3.1 nodes run on every
 * TCP link before ENP: the message framing (57 01 + u32 body length + an EDF
 * body without dictionaries), the Start sequence on a connection's main link
 * (Hello, Hello, Introduce, Accept + Introduce, Accept), and the short Join
 * sequence that adds the extra pool links (Join, Accept).
 *
 * Spec: shared/specs/ergo-wire.md section b "Handshake (EHS R1)" (framing,
 * messages, start and join sequences, pool, network flags, Introduce
 * contents). Design and limits: docs/ergo.md "Handshake".
 *
 * Digests are lowercase hex SHA-256 (libsodium crypto_hash_sha256) of the
 * colon-joined strings of the spec, compared in constant time. The cookie
 * never travels. Randomness (salts, connection IDs) comes from the gn_rng of
 * the config; time is an argument (the 1-second read deadline of Ergo);
 * there are no syscalls.
 *
 * Errors (negative gn_err): GN_EHANDSHAKE the peer failed authentication or
 * broke the sequence (gni_ehs_why() says which: a cookie mismatch is
 * GNI_EHS_WHY_COOKIE, and the diagnostic says "cookie mismatch");
 * GN_EBADFRAME bad magic or version; GN_EFRAMESIZE a body above 65535;
 * GN_EPARSE a body that is not the expected EDF message; GN_ETIMEDOUT a
 * read deadline passed; GN_EEOF the peer closed mid-handshake; GN_ENOMEM;
 * GN_EINVAL bad arguments. Every failure is sticky: the link must be closed
 * (Ergo sends no error message: it closes the TCP connection).
 *
 * Thread context: no global state; one handshake object is driven by one
 * thread. The registry in the config must be frozen (it may be shared).
 */
#ifndef GNI_EHS_H
#define GNI_EHS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "golemnet/common.h"
#include "golemnet/edf.h"

#define GNI_EHS_MAGIC 87u /* 'W' */
#define GNI_EHS_VERSION 1u
#define GNI_EHS_HEADER_LEN 6u      /* not counted in the body length */
#define GNI_EHS_BODY_MAX 65535u    /* a reader rejects longer bodies */
/** Values one handshake message may decode into (Introduce with full dictionaries: a few thousand). */
#define GNI_EHS_MAX_VALUES 65536u
/** Bytes each of a handshake's decode arenas may hold. */
#define GNI_EHS_ARENA_MAX (4u << 20)
#define GNI_EHS_SALT_BYTES 32u     /* random bytes of a salt (64 hex chars) */
#define GNI_EHS_ID_BYTES 16u       /* random bytes of a connection ID (32 hex chars) */
#define GNI_EHS_DIGEST_LEN 64u     /* hex characters of a digest */
#define GNI_EHS_CERT_SHA1_LEN 20u  /* raw SHA-1 of a leaf certificate (TLS fields) */
#define GNI_EHS_POOL_DEFAULT 3u    /* Ergo's acceptor default */
#define GNI_EHS_POOL_MAX 64u       /* a larger announced PoolSize is clamped to this */
#define GNI_EHS_DSN_MAX 16u        /* PoolDSN entries kept by the initiator */
#define GNI_EHS_TIMEOUT_DEFAULT GN_S /* Ergo: 1 s deadline on every handshake read */

/** Network flags (gen.NetworkFlags, spec b "Network flags"). */
enum {
    GNI_EHS_FLAG_ENABLE = 0x01,
    GNI_EHS_FLAG_REMOTE_SPAWN = 0x02,
    GNI_EHS_FLAG_REMOTE_APP_START = 0x04,
    GNI_EHS_FLAG_FRAGMENTATION = 0x08,
    GNI_EHS_FLAG_PROXY_TRANSIT = 0x10,
    GNI_EHS_FLAG_PROXY_ACCEPT = 0x20,
    GNI_EHS_FLAG_IMPORTANT_DELIVERY = 0x40,
};
#define GNI_EHS_FLAGS_DEFAULT 0x67u

/** Message kinds. */
typedef enum gni_ehs_kind {
    GNI_EHS_HELLO = 1,
    GNI_EHS_JOIN = 2,
    GNI_EHS_INTRODUCE = 3,
    GNI_EHS_ACCEPT = 4,
} gni_ehs_kind;

/** One entry of an Introduce dictionary (AtomCache, RegCache, ErrCache). */
typedef struct gni_ehs_cache_entry {
    uint16_t id;
    gn_slice s;
} gni_ehs_cache_entry;

/** The three Introduce dictionaries, in gn_edf_dict_kind order. */
enum { GNI_EHS_CACHE_ATOM = 0, GNI_EHS_CACHE_REG = 1, GNI_EHS_CACHE_ERR = 2 };

/**
 * One handshake message. Fields by kind (others are zero / ignored):
 *   HELLO      salt, digest, digest_cert
 *   JOIN       node, conn_id, salt, digest
 *   INTRODUCE  node, version[4] (Name, Release, Commit, License), flags,
 *              creation, max_message_size, cache[3] (+ ncache, cache_nil),
 *              digest
 *   ACCEPT     conn_id (the ID field), pool_size, dsn (+ ndsn, dsn_nil),
 *              digest, digest_cert
 * Slices borrow the parser's input or arena, or the builder's memory.
 * Map entries keep their wire order (Ergo writes Go map order, random).
 */
typedef struct gni_ehs_msg {
    gni_ehs_kind kind;
    gn_slice node, conn_id, salt, digest, digest_cert;
    gn_slice version[4];
    uint64_t flags;
    int64_t creation;
    int64_t max_message_size;
    int64_t pool_size;
    const gn_slice *dsn;
    uint32_t ndsn;
    bool dsn_nil;
    const gni_ehs_cache_entry *cache[3];
    uint32_t ncache[3];
    bool cache_nil[3];
} gni_ehs_msg;

/**
 * Parses one framed message from @in (@len bytes; bytes after it are not
 * read: *@consumed tells how many were used). @reg must hold the handshake
 * types (gn_edf_registry_add_ergo). The EDF body is decoded into @a; with
 * @copy the byte fields are copied there too, else they borrow @in.
 * Returns 0; GN_EAGAIN (@in holds only part of a message: nothing
 * consumed); GN_EBADFRAME (magic/version); GN_EFRAMESIZE (body > 65535);
 * GN_EPARSE (not exactly one handshake message in the body, malformed
 * fields: flags not 8 bytes, negative sizes); GN_ENOTFOUND (type name
 * unknown to @reg); GN_ENOMEM; GN_EINVAL.
 */
int gni_ehs_parse(const gn_edf_registry *reg, gn_edf_arena *a, const uint8_t *in, size_t len,
                  bool copy, gni_ehs_msg *m, size_t *consumed);

/**
 * Appends the framed message @m to @out (no dictionaries, as the spec
 * says). @a holds the temporary EDF value. Returns the bytes written;
 * GN_ENOSPC (@out too small; @out unchanged); GN_ERANGE (a field above an
 * EDF limit, or a body above 65535); GN_EINVAL; GN_ENOMEM.
 */
int gni_ehs_build(const gn_edf_registry *reg, gn_edf_arena *a, const gni_ehs_msg *m,
                  gn_buf *out);

/**
 * Sets the three caches of the Introduce @m (AtomCache, RegCache,
 * ErrCache) to the entries of @d, in @d's order; the entry arrays live in
 * @a, the strings stay @d's. Returns 0, GN_ENOMEM.
 */
int gni_ehs_intro_set_caches(gni_ehs_msg *m, const gn_edf_dict *d, gn_edf_arena *a);

/**
 * Adds the caches of the parsed Introduce @m to @d (the peer's
 * dictionaries, ergo-wire.md d "Dictionaries"). Returns 0, or
 * gn_edf_dict_add's error (a duplicate id or value: the set is refused).
 */
int gni_ehs_intro_caches_to_dict(const gni_ehs_msg *m, gn_edf_dict *d);

/**
 * Digest helper: writes the 64 lowercase hex characters of SHA-256 over the
 * @n strings of @parts joined with ':' (then, if @cert_sha1 is not NULL,
 * its 20 raw bytes) to @hex. Spec b "Start sequence" / "Join sequence".
 */
void gni_ehs_digest(const gn_slice *parts, size_t n, const uint8_t *cert_sha1,
                    char hex[GNI_EHS_DIGEST_LEN]);

/** Roles. */
typedef enum gni_ehs_role {
    GNI_EHS_ROLE_START = 1,  /* initiator, main link: Start sequence */
    GNI_EHS_ROLE_JOIN = 2,   /* initiator, extra pool link: Join sequence */
    GNI_EHS_ROLE_ACCEPT = 3, /* acceptor: answers a Hello (Start) or a Join */
} gni_ehs_role;

/** Why a handshake failed (with GN_EHANDSHAKE and the others). */
typedef enum gni_ehs_why {
    GNI_EHS_WHY_NONE = 0,
    GNI_EHS_WHY_COOKIE,       /* a digest did not match: the cookies differ */
    GNI_EHS_WHY_CERT,         /* TLS: DigestCert does not match the peer's certificate */
    GNI_EHS_WHY_SEQUENCE,     /* unexpected message kind for the state */
    GNI_EHS_WHY_NAME,         /* peer's name invalid, equal to ours, or not the one dialled */
    GNI_EHS_WHY_FRAMING,      /* bad magic/version/length, undecodable body */
    GNI_EHS_WHY_TIMEOUT,      /* a read deadline passed */
    GNI_EHS_WHY_CLOSED,       /* the peer closed the link mid-handshake */
    GNI_EHS_WHY_LOCAL,        /* out of memory, bad config */
} gni_ehs_why;

/**
 * Configuration; strings are borrowed and must outlive the handshake.
 *  - reg: frozen registry with gn_edf_registry_add_ergo() types; its
 *    dictionaries (gn_edf_registry_dict) are announced in our Introduce,
 *    unless announce is set: then that dict's entries, in insertion order
 *    (a subset, or a replayed capture's order; it must be what the ENP
 *    encoder of this connection uses).
 *  - cookie: the shared secret (never sent).
 *  - rng: salts and connection IDs (NULL = gn_rng_system()).
 *  - node: our name (name@host); version: the application's version
 *    (Name, Release, Commit, License; informational); flags
 *    (GNI_EHS_FLAGS_DEFAULT if unsure); creation (Unix seconds);
 *    max_message_size (0 = unlimited) of this link's receiver.
 *  - acceptor: pool_size (0 = 3) and pool_dsn ("ip:port" of the socket that
 *    accepted the link) sent in its Accept; cert_sha1 (NULL = no TLS):
 *    SHA-1 of our leaf certificate DER, for DigestCert.
 *  - initiator: expect_peer (empty = any) the name it meant to reach;
 *    peer_cert_sha1 (NULL = no TLS or fingerprint check disabled);
 *    Join: conn_id, the ID the acceptor gave on the main link.
 *  - timeout: per-read deadline (0 = GNI_EHS_TIMEOUT_DEFAULT).
 */
typedef struct gni_ehs_config {
    const gn_edf_registry *reg;
    const gn_edf_dict *announce;
    gn_slice cookie;
    const gn_rng *rng;
    gn_slice node;
    gn_slice version[4];
    uint64_t flags;
    int64_t creation;
    uint64_t max_message_size;
    uint32_t pool_size;
    gn_slice pool_dsn;
    const uint8_t *cert_sha1;
    gn_slice expect_peer;
    const uint8_t *peer_cert_sha1;
    gn_slice conn_id;
    gn_time timeout;
} gni_ehs_config;

/**
 * What a finished handshake learned. Slices point into the handshake
 * object (valid until gni_ehs_free()).
 *  - join: the link is a pool link (acceptor: the peer sent a Join; the
 *    caller must attach it to its connection with @peer_node and @conn_id,
 *    or close it: spec b "Join sequence" step 3).
 *  - peer_node: the peer's name (Start: from its Introduce; Join acceptor:
 *    from the Join).
 *  - conn_id: the connection ID (acceptor generated it, initiator got it).
 *  - pool_size: the pool size both sides use (acceptor's, clamped to
 *    1..GNI_EHS_POOL_MAX); dsn/ndsn: where the initiator dials the extra
 *    links (Start initiator only).
 *  - peer_*: the peer's Introduce (Start only); peer_flags already reads 0
 *    when the peer's Enable bit is clear.
 */
typedef struct gni_ehs_result {
    bool join;
    gn_slice peer_node;
    gn_slice conn_id;
    uint32_t pool_size;
    gn_slice dsn[GNI_EHS_DSN_MAX];
    uint32_t ndsn;
    gn_slice peer_version[4];
    uint64_t peer_flags;
    int64_t peer_creation;
    uint64_t peer_max_message_size;
} gni_ehs_result;

typedef struct gni_ehs gni_ehs;

/**
 * Creates a handshake in @role at time @now. A Start or Join initiator
 * queues its first message at once (gni_ehs_drain). Returns 0 and *@out, or
 * GN_EINVAL (NULL, no registry / types, empty cookie or node, Join without
 * conn_id, acceptor without pool_dsn), GN_ENOMEM.
 */
int gni_ehs_new(const gni_ehs_config *cfg, gni_ehs_role role, gn_time now, gni_ehs **out);

/** Frees @h (NULL is a no-op). Wipes the digests it kept. */
void gni_ehs_free(gni_ehs *h);

/**
 * Feeds @len received bytes. Consumes at most up to the end of the last
 * handshake message: after completion the remaining bytes are ENP and are
 * left to the caller (*@consumed). Returns 0 (more input needed, or done:
 * see gni_ehs_done) or a sticky error (header comment). Bytes fed after
 * done are not consumed.
 */
int gni_ehs_feed(gni_ehs *h, const uint8_t *in, size_t len, size_t *consumed, gn_time now);

/** Copies pending output into @out (as much as fits). Returns the bytes copied. */
size_t gni_ehs_drain(gni_ehs *h, gn_buf *out);

/** Bytes waiting to be drained. */
size_t gni_ehs_pending(const gni_ehs *h);

/** The peer closed the link: fails (GN_EEOF, WHY_CLOSED) unless already done. */
int gni_ehs_eof(gni_ehs *h);

/** When the current read times out (GN_TIME_INFINITY when done or failed). */
gn_time gni_ehs_deadline(const gni_ehs *h);

/** Call at or after the deadline: fails with GN_ETIMEDOUT if it passed. */
int gni_ehs_expire(gni_ehs *h, gn_time now);

/** True once the handshake succeeded and all output was queued. */
bool gni_ehs_done(const gni_ehs *h);

/** The sticky error (0 while none). */
int gni_ehs_error(const gni_ehs *h);

/** Why it failed, and a one-line explanation for the log (never NULL). */
gni_ehs_why gni_ehs_why_failed(const gni_ehs *h);
const char *gni_ehs_diag(const gni_ehs *h);

/** The outcome; NULL until done. */
const gni_ehs_result *gni_ehs_get_result(const gni_ehs *h);

/**
 * Fills @d (fresh, empty) with the peer's announced dictionaries, to decode
 * its ENP frames (spec d "Dictionaries"). Start handshakes only. Returns
 * 0, GN_ESTATE (not done, or a join), or gn_edf_dict_add's errors.
 */
int gni_ehs_peer_dict(const gni_ehs *h, gn_edf_dict *d);

/** Checks a node name: 1..255 bytes with exactly one '@'. */
bool gni_ehs_name_valid(gn_slice name);

#endif /* GNI_EHS_H */
