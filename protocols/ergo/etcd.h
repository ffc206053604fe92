/*
 * golemnet - Ergo's etcd registrar, client side, as a sans-I/O core
 * (private to the library).
 *
 * Ergo's etcd registrar (repository ergo-services/registrar, package etcd)
 * keeps a node's routes in etcd under
 *   services/ergo/cluster/<cluster>/routes/nodes/<node>
 * as base64 (standard alphabet, padded) of the EDF encoding of a top-level
 * []gen.Route (no dictionaries), attached to a lease the node keeps alive.
 * A registration is a transaction "create if the key does not exist";
 * a resolve is a plain get of that key; a watch on the prefix reports
 * nodes joining (PUT) and leaving (DELETE, e.g. when the lease expires).
 *
 * This core speaks to etcd's v3 JSON gateway over HTTP/1.1 (etcd serves it
 * on the client port): it builds requests as bytes (POST /v3/..., JSON
 * bodies with base64 keys and values) and consumes response bytes (parsed
 * with http-parser, bodies with json-c), turning each JSON message into a
 * gni_etcd_result. It also maps keys and values to Ergo's layout. No
 * sockets, no clock, no globals: etcd_uv.c moves the bytes and keeps time.
 *
 * Design, key layout and limits: docs/ergo.md "etcd registrar".
 * Errors: GN_EINVAL, GN_ENOSPC, GN_ENOMEM, GN_EPROTO (not HTTP/1.1, or a
 * response that does not fit the request), GN_EPARSE (malformed JSON, a
 * field of the wrong type, bad base64), GN_ETOOBIG (a message or value
 * over its bound), GN_ELIMIT (too many keys or events in one message),
 * GN_ECALLBACK, GN_ENOTFOUND, GN_EEOF.
 * Thread context: no global state; one object per thread.
 */
#ifndef GNI_ETCD_H
#define GNI_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "golemnet/common.h"
#include "golemnet/edf.h"
#include "registrar.h"

#define GNI_ETCD_PREFIX "services/ergo"             /* Ergo's whole tree */
#define GNI_ETCD_CLUSTER_DEFAULT "default"         /* Ergo: Options.Cluster "" */
#define GNI_ETCD_TTL_DEFAULT 10                    /* lease TTL, seconds (Ergo's default) */
#define GNI_ETCD_MSG_MAX_DEFAULT (4u << 20)        /* one JSON message (Ergo: 4 MB receive) */
#define GNI_ETCD_KVS_MAX_DEFAULT 1024u             /* keys or events in one message */
#define GNI_ETCD_VALUE_MAX (64u << 10)             /* a decoded route value */
#define GNI_ETCD_KEY_MAX 1024u                     /* a key we build or accept */
#define GNI_ETCD_CLUSTER_MAX 255u                  /* cluster name */
#define GNI_ETCD_ERRBODY_MAX 4096u                 /* body kept of a non-200 response */
#define GNI_ETCD_MAX_ROUTES 64u                    /* routes decoded from one value */

/* ---- keys (Ergo's layout) ------------------------------------------------------------- */

/**
 * Appends "services/ergo/cluster/<cluster>/routes/nodes/" to @out (the
 * prefix of every node's key; NUL not written). @cluster: NUL-terminated,
 * NULL or "" = "default", at most GNI_ETCD_CLUSTER_MAX bytes, no '/'.
 * Returns the bytes written; GN_EINVAL (bad cluster); GN_ENOSPC.
 */
int gni_etcd_key_nodes(const char *cluster, gn_buf *out);

/**
 * Appends the key of @node (its full name, name@host) in @cluster:
 * the prefix above + the node name. @node: 1..255 bytes (an atom), no
 * '/'. Returns the bytes written; GN_EINVAL; GN_ENOSPC.
 */
int gni_etcd_key_node(const char *cluster, gn_slice node, gn_buf *out);

/**
 * The range end that makes @prefix a prefix range: @prefix with its last
 * byte below 0xff incremented and the rest cut (etcd's rule). Appends it
 * to @out. Returns the bytes written; GN_EINVAL (empty or all 0xff);
 * GN_ENOSPC.
 */
int gni_etcd_prefix_end(gn_slice prefix, gn_buf *out);

/**
 * If @key is "<nodes prefix of @cluster><node>", sets *@node to the node
 * part (borrowing @key) and returns 0; GN_ENOTFOUND for other keys (an
 * application route, a config item, another cluster); GN_EINVAL.
 */
int gni_etcd_key_to_node(const char *cluster, gn_slice key, gn_slice *node);

/* ---- values: base64(EDF []gen.Route) -------------------------------------------------- */

/**
 * Appends the value Ergo stores for @routes (@n of them, n may be 0: an
 * empty non-nil slice): the EDF top-level value `82` + descriptor
 * `9d 83 "#ergo.services/ergo/gen/Route"` + `9d` u32 count + routes, no
 * dictionaries, as base64 text (standard alphabet with padding). @reg has
 * the Ergo types (gn_edf_registry_add_ergo); @a holds temporaries.
 * Returns the text length; GN_EINVAL; GN_ERANGE (a string over EDF's
 * limits); GN_ENOSPC; GN_ENOMEM.
 */
int gni_etcd_routes_encode(const gn_edf_registry *reg, gn_edf_arena *a,
                           const gni_reg_route *routes, uint32_t n, gn_buf *out);

/**
 * Decodes a stored value (the base64 text, as the etcd value holds it)
 * into routes allocated in @a (strings copied into @a too). A value that
 * is not a []gen.Route (or a nil one) is GN_EPARSE, as Ergo's resolver
 * answers "no route" for it. Returns 0 and *@routes / *@n (n may be 0);
 * GN_EPARSE (bad base64, not EDF, another type, trailing bytes);
 * GN_ETOOBIG (value over GNI_ETCD_VALUE_MAX); GN_ELIMIT (more than
 * GNI_ETCD_MAX_ROUTES routes); GN_ENOTFOUND (a type name @reg lacks);
 * GN_ENOMEM; GN_EINVAL.
 */
int gni_etcd_routes_decode(const gn_edf_registry *reg, gn_edf_arena *a, const uint8_t *text,
                           size_t len, const gni_reg_route **routes, uint32_t *n);

/* ---- requests -------------------------------------------------------------------------- */

/** The gateway calls this client makes (each one path, one JSON body). */
typedef enum gni_etcd_op {
    GNI_ETCD_GRANT = 1,    /* /v3/lease/grant {TTL}: a new lease */
    GNI_ETCD_TXN_CREATE,   /* /v3/kv/txn: if create_revision(key) == 0: put(key, value, lease) */
    GNI_ETCD_TXN_OURS,     /* /v3/kv/txn: if lease(key) == old_lease then put(key, value, lease) */
    GNI_ETCD_KEEPALIVE,    /* /v3/lease/keepalive {ID}: one renewal (one-message stream) */
    GNI_ETCD_RANGE,        /* /v3/kv/range {key[, range_end, keys_only]}: get a key or prefix */
    GNI_ETCD_PUT,          /* /v3/kv/put {key, value[, lease]} (tests; Ergo writes with TXN) */
    GNI_ETCD_REVOKE,       /* /v3/lease/revoke {ID}: drop the lease and its keys */
    GNI_ETCD_WATCH,        /* /v3/watch {create_request}: a stream of event messages */
} gni_etcd_op;

/** One request. Only the fields its op uses are read. */
typedef struct gni_etcd_req {
    gni_etcd_op op;
    gn_slice key;           /* TXN_*, RANGE, PUT, WATCH (1..GNI_ETCD_KEY_MAX bytes) */
    gn_slice value;         /* TXN_*, PUT (raw bytes; base64 is applied here) */
    int64_t lease;          /* TXN_* / PUT (0: none), KEEPALIVE, REVOKE */
    int64_t old_lease;      /* TXN_OURS */
    int64_t ttl_s;          /* GRANT, seconds >= 1 */
    bool prefix;            /* RANGE, WATCH: every key that starts with @key */
    bool keys_only;         /* RANGE */
    int64_t start_revision; /* WATCH: 0 = from now */
} gni_etcd_req;

/**
 * Appends the whole HTTP/1.1 request for @r to @out: "POST /v3/... HTTP/1.1",
 * Host @authority (host:port, NUL-terminated, printable, no spaces), a JSON
 * Content-Type and Content-Length, keep-alive, and the JSON body. On failure
 * @out is unchanged. Returns the bytes written; GN_EINVAL (unknown op, a
 * key, ttl or lease out of range, bad authority); GN_ENOSPC.
 */
int gni_etcd_build(const gni_etcd_req *r, const char *authority, gn_buf *out);

/* ---- responses ------------------------------------------------------------------------- */

/** A key-value (RANGE) or an event (WATCH). Slices are valid during the callback. */
typedef struct gni_etcd_kv {
    gn_slice key;      /* decoded from base64 */
    gn_slice value;    /* decoded from base64; empty for DELETE events and keys_only */
    int64_t lease;     /* 0 = none */
    int64_t create_revision, mod_revision, version;
    bool deleted;      /* WATCH: a DELETE event (a key removed or its lease expired) */
} gni_etcd_kv;

/**
 * One JSON message of a response, interpreted for the request's op.
 * @err is 0 for a successful call, else why not: GN_EPROTO with @status
 * (an HTTP status other than 200, e.g. 404 for a path this etcd lacks) and
 * etcd's @message / @code (gRPC code: 5 "not found" for a lease that is
 * gone, 3 invalid argument, ...) when the body said so; also a watch that
 * the server canceled (@canceled, @message = its reason). Fields etcd
 * leaves out are zero (its gateway omits false, 0 and empty values): a
 * KEEPALIVE with @ttl_s 0 means the lease no longer exists; a TXN with
 * @succeeded false means the compare failed; a RANGE with @count 0 found
 * nothing.
 */
typedef struct gni_etcd_result {
    gni_etcd_op op;
    int err;
    int status;                 /* HTTP status */
    int64_t code;               /* gRPC status code from an error body */
    gn_slice message;           /* error text or cancel reason; may be empty */
    int64_t revision;           /* header.revision */
    int64_t lease_id, ttl_s;    /* GRANT, KEEPALIVE */
    bool succeeded;             /* TXN_* */
    int64_t count;              /* RANGE: keys that matched */
    const gni_etcd_kv *kvs;     /* RANGE: kvs; WATCH: events */
    uint32_t nkvs;
    bool created, canceled;     /* WATCH */
    int64_t watch_id;           /* WATCH */
} gni_etcd_result;

/** Called per message; nonzero stops the feed with GN_ECALLBACK (sticky). */
typedef int (*gni_etcd_result_cb)(const gni_etcd_result *r, void *user_data);

/** Bounds of a response reader (zero = the defaults). */
typedef struct gni_etcd_limits {
    size_t msg_max;   /* bytes of one JSON message (default GNI_ETCD_MSG_MAX_DEFAULT) */
    uint32_t kvs_max; /* kvs or events in one message (default GNI_ETCD_KVS_MAX_DEFAULT) */
} gni_etcd_limits;

/**
 * Reads the responses of one HTTP/1.1 connection, one request at a time.
 * Headers are bounded by http-parser (80 KiB), each JSON message by
 * msg_max, its nesting by 32 levels, decoded keys and values by the
 * message size.
 */
typedef struct gni_etcd_resp gni_etcd_resp;

/** Returns 0 and a reader in *@out; GN_ENOMEM; GN_EINVAL. @lim NULL = defaults. */
int gni_etcd_resp_new(const gni_etcd_limits *lim, gni_etcd_resp **out);
void gni_etcd_resp_free(gni_etcd_resp *r);

/**
 * Expect the response to a request of @op (the one just sent). Only valid
 * when no response is in progress. Returns 0; GN_ESTATE (a response is in
 * progress, or the reader failed: make a new one with a new connection);
 * GN_EINVAL.
 */
int gni_etcd_resp_begin(gni_etcd_resp *r, gni_etcd_op op);

/**
 * Consumes response bytes; calls @cb for each complete JSON message (a
 * unary call has one; KEEPALIVE one; WATCH any number, as they arrive).
 * Stops after the end of the response: *@consumed tells how much was used,
 * bytes after it belong to no request (the caller treats them as a
 * protocol error). Returns 1 when the response ended (the connection may
 * carry the next request if gni_etcd_resp_keep_alive()), 0 when more bytes
 * are needed, or a sticky error: GN_ESTATE (no begin), GN_EPROTO (not an
 * HTTP/1.1 response), GN_EPARSE (a body that is not the JSON messages
 * expected), GN_ETOOBIG (a message over msg_max), GN_ELIMIT (kvs_max),
 * GN_ENOMEM, GN_ECALLBACK. gni_etcd_resp_diag() says what was wrong.
 */
int gni_etcd_resp_feed(gni_etcd_resp *r, const uint8_t *in, size_t len, gni_etcd_result_cb cb,
                       void *user_data, size_t *consumed);

/**
 * The connection ended. Returns 1 if that completed the response (a body
 * delimited by the close), GN_EEOF if a response was in progress and is
 * cut, 0 if none was expected.
 */
int gni_etcd_resp_eof(gni_etcd_resp *r, gni_etcd_result_cb cb, void *user_data);

/** After a response ended: may the connection carry the next request? */
bool gni_etcd_resp_keep_alive(const gni_etcd_resp *r);

/** A static or reader-owned one-line description of the last failure ("" if none). */
const char *gni_etcd_resp_diag(const gni_etcd_resp *r);

#endif /* GNI_ETCD_H */
