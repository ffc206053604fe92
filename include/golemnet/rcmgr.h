/*
 * golemnet - the resource manager: bounded accounting of memory, streams,
 * connections and file descriptors.
 *
 * The resource manager (rcmgr) is sans-I/O bookkeeping. It allocates
 * nothing on behalf of the caller and never touches a socket: code that is
 * about to accept a connection, open a stream or grow a buffer asks it
 * first, and gives the reservation back when done. A refused reservation
 * returns GN_ERESOURCE and gn_rcmgr_last_refusal() names the scope that
 * refused (for a log line or an error message).
 *
 * Scopes. Usage is counted in scopes, each with its own limits
 * (gn_rcmgr_limit):
 *
 *   system     everything
 *   transient  connections still upgrading (no peer ID yet) and streams
 *              still negotiating their protocol
 *   peer       one per remote peer ID
 *   protocol   one per protocol ID (after gn_rcmgr_stream_set_protocol())
 *   ip         one per remote IP address
 *   subnet     one per remote subnet (IPv4 /24, IPv6 /64 by default)
 *   conn       one per connection span (gn_rcmgr_conn)
 *   stream     one per stream span (gn_rcmgr_stream)
 *
 * A span (a connection or a stream) belongs to a chain of scopes, and every
 * reservation made through it is checked against every scope of the chain
 * before anything is counted: it is made in all of them or in none.
 * Releasing gives it back to all of them.
 *
 *   connection, upgrading:  conn -> transient -> ip -> subnet -> system
 *   connection, with peer:  conn -> peer      -> ip -> subnet -> system
 *   stream, negotiating:    stream -> conn -> peer -> transient -> system
 *   stream, with protocol:  stream -> conn -> peer -> protocol  -> system
 *
 * (The ip and subnet scopes are left out when the connection has no IP
 * address, such as in-memory or relayed connections; the conn scope is
 * left out of a stream opened without a connection span.) A span counts
 * itself in its own scope, so a conn scope holds one connection and the
 * streams and memory of its streams, and a stream scope holds one stream.
 *
 * Keyed scopes (peer, protocol, ip, subnet) exist while a span refers to
 * them: they are created by the first span with their key and freed when
 * the last one is done, and each kind's table is capped (max_peers ...):
 * a key that would need a new scope in a full table is refused
 * (GN_ERESOURCE, resource GN_RCMGR_RES_TABLE). Remote peers therefore
 * cannot grow the manager's own memory beyond the caps.
 *
 * Priorities. Memory reservations carry a priority 0..255: a scope admits
 * a reservation only while its usage stays within (priority + 1) / 256 of
 * its memory limit, so optional buffers (GN_RCMGR_PRIO_LOW, about 40 %)
 * give way early and leave room for the memory a connection needs to make
 * progress (GN_RCMGR_PRIO_ALWAYS, the whole limit). Counts (streams,
 * connections, descriptors) have no priority.
 *
 * Limits may be changed at run time (gn_rcmgr_set_limits()). Nothing
 * already reserved is revoked: a scope above a lowered limit refuses new
 * reservations of that resource until its usage drops below the limit.
 *
 * Thread context: a manager and its spans are used from one thread at a
 * time, normally the loop thread of the node that owns it; no function
 * blocks or calls back except gn_rcmgr_foreach().
 *
 * Model: go-libp2p's p2p/host/resource-manager (the scope DAG, transient
 * scope, priorities), with per-IP and per-subnet scopes from its
 * connection limiter. The defaults and what happens at each limit:
 * docs/limits.md.
 *
 * Since: 0.2
 */
#ifndef GOLEMNET_RCMGR_H
#define GOLEMNET_RCMGR_H

#include "golemnet/common.h"
#include "golemnet/identity.h"

GN_BEGIN_DECLS

/** A resource manager. Opaque; gn_rcmgr_new() / gn_rcmgr_free(). Since: 0.2 */
typedef struct gn_rcmgr gn_rcmgr;
/** A connection span. Opaque; gn_rcmgr_open_conn() / gn_rcmgr_conn_done(). Since: 0.2 */
typedef struct gn_rcmgr_conn gn_rcmgr_conn;
/** A stream span. Opaque; gn_rcmgr_open_stream() / gn_rcmgr_stream_done(). Since: 0.2 */
typedef struct gn_rcmgr_stream gn_rcmgr_stream;
/**
 * Either kind of span, for memory reservations and statistics; get one
 * with gn_rcmgr_conn_span() or gn_rcmgr_stream_span(). It is valid as long
 * as its connection or stream span. Since: 0.2
 */
typedef struct gn_rcmgr_span gn_rcmgr_span;

/** No limit, for the 32-bit count fields of gn_rcmgr_limit. Since: 0.2 */
#define GN_RCMGR_UNLIMITED UINT32_MAX
/** No limit, for gn_rcmgr_limit.memory. Since: 0.2 */
#define GN_RCMGR_UNLIMITED_MEMORY UINT64_MAX
/** Longest protocol ID gn_rcmgr_stream_set_protocol() accepts (bytes). Since: 0.2 */
#define GN_RCMGR_PROTOCOL_MAX 1024
/** Size of gn_rcmgr_refusal.name and gn_rcmgr_scope_info names, with the NUL. Since: 0.2 */
#define GN_RCMGR_NAME_MAX 160

/** Memory priorities: the share of a scope's memory limit a reservation may use. Since: 0.2 */
#define GN_RCMGR_PRIO_LOW 101    /* up to 102/256 (~40 %) of each limit */
#define GN_RCMGR_PRIO_MEDIUM 152 /* ~60 % */
#define GN_RCMGR_PRIO_HIGH 203   /* ~80 % */
#define GN_RCMGR_PRIO_ALWAYS 255 /* the whole limit */

/** Direction of a connection or stream: who opened it. Since: 0.2 */
typedef enum gn_rcmgr_dir {
    GN_RCMGR_INBOUND = 0, /* the remote peer */
    GN_RCMGR_OUTBOUND = 1 /* we did */
} gn_rcmgr_dir;

/** Scope kinds. Since: 0.2 */
typedef enum gn_rcmgr_scope_kind {
    GN_RCMGR_SCOPE_SYSTEM = 0,
    GN_RCMGR_SCOPE_TRANSIENT = 1,
    GN_RCMGR_SCOPE_PEER = 2,
    GN_RCMGR_SCOPE_PROTOCOL = 3,
    GN_RCMGR_SCOPE_IP = 4,
    GN_RCMGR_SCOPE_SUBNET = 5,
    GN_RCMGR_SCOPE_CONN = 6,
    GN_RCMGR_SCOPE_STREAM = 7
} gn_rcmgr_scope_kind;
#define GN_RCMGR_SCOPE_KINDS 8

/** Resources, as named in refusals. Since: 0.2 */
typedef enum gn_rcmgr_res {
    GN_RCMGR_RES_MEMORY = 0,          /* bytes */
    GN_RCMGR_RES_STREAMS_IN = 1,      /* inbound streams */
    GN_RCMGR_RES_STREAMS_OUT = 2,     /* outbound streams */
    GN_RCMGR_RES_STREAMS = 3,         /* streams in both directions */
    GN_RCMGR_RES_CONNS_IN = 4,        /* inbound connections */
    GN_RCMGR_RES_CONNS_OUT = 5,       /* outbound connections */
    GN_RCMGR_RES_CONNS = 6,           /* connections in both directions */
    GN_RCMGR_RES_CONNS_UPGRADING = 7, /* connections without a peer ID yet */
    GN_RCMGR_RES_FD = 8,              /* file descriptors */
    GN_RCMGR_RES_TABLE = 9            /* room for one more scope of a keyed kind */
} gn_rcmgr_res;

/**
 * The limits of one scope. Every field is a maximum of what the scope may
 * hold at once; GN_RCMGR_UNLIMITED (GN_RCMGR_UNLIMITED_MEMORY) means none.
 * A field that a scope kind never counts is ignored (streams of an ip
 * scope). Since: 0.2
 */
typedef struct gn_rcmgr_limit {
    uint64_t memory;          /* bytes */
    uint32_t streams;         /* inbound + outbound */
    uint32_t streams_in;
    uint32_t streams_out;
    uint32_t conns;           /* inbound + outbound */
    uint32_t conns_in;
    uint32_t conns_out;
    uint32_t conns_upgrading; /* connections without a peer ID (either direction) */
    uint32_t fd;
} gn_rcmgr_limit;

/**
 * The limits of a manager. Fill with gn_rcmgr_limits_default() first, then
 * change what you need. The defaults, their reasons and what happens at
 * each: docs/limits.md.
 * Since: 0.2
 */
typedef struct gn_rcmgr_limits {
    uint32_t version; /* GN_RCMGR_LIMITS_VERSION */
    gn_rcmgr_limit system;
    gn_rcmgr_limit transient;
    gn_rcmgr_limit peer;     /* each peer */
    gn_rcmgr_limit protocol; /* each protocol ID */
    gn_rcmgr_limit ip;       /* each remote IP address */
    gn_rcmgr_limit subnet;   /* each remote subnet */
    gn_rcmgr_limit conn;     /* each connection (with its streams) */
    gn_rcmgr_limit stream;   /* each stream */
    /** Subnet prefix lengths in bits: IPv4 1..32 (default 24), IPv6 1..128 (default 64). */
    uint8_t ipv4_prefix;
    uint8_t ipv6_prefix;
    /** Caps of the keyed scope tables (scopes alive at once), each >= 1. */
    uint32_t max_peers;     /* default 2048 */
    uint32_t max_protocols; /* default 256 */
    uint32_t max_ips;       /* default 1024 */
    uint32_t max_subnets;   /* default 1024 */
} gn_rcmgr_limits;
#define GN_RCMGR_LIMITS_VERSION 1

/**
 * What a scope or span holds. Totals are the sums of the in and out
 * fields. Since: 0.2
 */
typedef struct gn_rcmgr_usage {
    uint64_t memory; /* bytes */
    uint32_t streams_in;
    uint32_t streams_out;
    uint32_t conns_in;
    uint32_t conns_out;
    uint32_t conns_upgrading;
    uint32_t fd;
    /** Keyed scopes: spans referring to the scope (it is freed at 0); else 0. */
    uint32_t spans;
    /** Reservations this scope refused since it was created. */
    uint64_t refused;
} gn_rcmgr_usage;

/**
 * The last refusal of a manager: which scope refused which resource.
 * Since: 0.2
 */
typedef struct gn_rcmgr_refusal {
    gn_rcmgr_scope_kind scope;
    gn_rcmgr_res res;
    uint64_t used;  /* what the scope held (the table's size for GN_RCMGR_RES_TABLE) */
    uint64_t asked; /* what the reservation wanted to add */
    uint64_t limit; /* the limit it hit (after the priority share, for memory) */
    /**
     * The scope, NUL-terminated: "system", "transient", "peer:12D3KooW...",
     * "protocol:/ipfs/id/1.0.0", "ip:192.0.2.1", "subnet:192.0.2.0/24",
     * "conn:7", "stream:12" (protocol IDs are cut to fit).
     */
    char name[GN_RCMGR_NAME_MAX];
} gn_rcmgr_refusal;

/**
 * Fills @limits with the defaults (docs/limits.md): 256 MiB of system
 * memory, 1024 connections (768 inbound) of which 128 upgrading, 768 file
 * descriptors, 8 connections per peer, 64 per IP address (8 upgrading) and
 * 128 per subnet (16 upgrading), 512 streams per connection and 1024 per
 * peer. @limits must not be NULL. Any thread.
 * Since: 0.2
 */
GN_API void gn_rcmgr_limits_default(gn_rcmgr_limits *limits);

/**
 * Creates a resource manager with a copy of @limits (NULL: the defaults).
 * Its hash tables are keyed with 16 bytes from gn_rng_system(), drawn
 * once, so remote peers cannot choose colliding keys.
 * @out: receives the manager; untouched on failure. Free it with
 * gn_rcmgr_free().
 * Errors: GN_EINVAL (@out NULL, wrong @limits->version, a prefix out of
 * range, a table cap of 0), GN_ENOMEM, GN_EINTERNAL (libsodium failed to
 * initialise).
 * Thread context: any thread; afterwards, the thread that uses it.
 * Since: 0.2
 */
GN_API int gn_rcmgr_new(const gn_rcmgr_limits *limits, gn_rcmgr **out);

/**
 * Frees the manager and every span still open (their handles become
 * invalid). NULL is ignored.
 * Since: 0.2
 */
GN_API void gn_rcmgr_free(gn_rcmgr *rm);

/**
 * Replaces the limits with a copy of @limits (per-key overrides set with
 * gn_rcmgr_set_scope_limit() stay). They apply to the next
 * reservations; nothing reserved is revoked (a scope over a lowered limit
 * refuses more of that resource until it drops below), and a keyed table
 * above a lowered cap keeps its scopes and takes no new key until it
 * shrinks below the cap. New prefix lengths apply to connections opened
 * from now on; open connections keep their subnet scope.
 * Errors: GN_EINVAL (NULL argument or invalid @limits, as gn_rcmgr_new();
 * nothing changes).
 * Since: 0.2
 */
GN_API int gn_rcmgr_set_limits(gn_rcmgr *rm, const gn_rcmgr_limits *limits);

/** Copies the current limits into @out. Both must not be NULL. Since: 0.2 */
GN_API void gn_rcmgr_get_limits(const gn_rcmgr *rm, gn_rcmgr_limits *out);

/** Most per-key limit overrides a manager keeps (gn_rcmgr_set_scope_limit()). Since: 0.2 */
#define GN_RCMGR_MAX_OVERRIDES 64

/**
 * Sets the limits of one keyed scope, overriding the kind's limits in
 * gn_rcmgr_limits: more for a bootstrap or relay peer, less for an
 * expensive protocol. The override applies whether or not the scope exists
 * now, to reservations made from now on (nothing reserved is revoked), and
 * stays until removed, gn_rcmgr_set_limits() does not change it. It never
 * lifts the limits of the other scopes of a chain (system, transient ...).
 * @kind, @key, @key_len: PEER, PROTOCOL, IP or SUBNET, keyed as for
 * gn_rcmgr_stat() (a subnet key is masked with the current prefix
 * length); borrowed for the call.
 * @limit: the limits, copied; NULL removes the override.
 * Errors: GN_EINVAL (NULL @rm, another kind, a bad key), GN_ELIMIT
 * (GN_RCMGR_MAX_OVERRIDES overrides exist already), GN_ENOTFOUND (@limit
 * NULL and no override for the key), GN_ENOMEM.
 * Since: 0.2
 */
GN_API int gn_rcmgr_set_scope_limit(gn_rcmgr *rm, gn_rcmgr_scope_kind kind, const void *key,
                                    size_t key_len, const gn_rcmgr_limit *limit);

/**
 * Opens a connection span: before accepting an inbound connection or
 * dialing, so a refusal costs no socket work. It reserves one connection
 * of @dir, one upgrading connection and, when @fd, one file descriptor in
 * the chain conn -> transient -> ip -> subnet -> system.
 * @rm: the manager. @dir: who opens it. @fd: true when the connection
 * holds a file descriptor (TCP), false otherwise (in-memory).
 * @ip, @ip_len: the remote address in network byte order: 4 bytes (IPv4)
 * or 16 (IPv6; IPv4-mapped ::ffff:a.b.c.d counts as IPv4), borrowed for
 * the call; NULL and 0 when there is none (relayed, in-memory), which
 * leaves the ip and subnet scopes out.
 * @out: receives the span; untouched on failure.
 * Errors: GN_EINVAL (NULL @rm or @out, bad @dir, @ip_len not 0, 4 or 16,
 * @ip NULL with @ip_len > 0), GN_ERESOURCE (a limit or a table cap: see
 * gn_rcmgr_last_refusal(); nothing is reserved), GN_ENOMEM.
 * Since: 0.2
 */
GN_API int gn_rcmgr_open_conn(gn_rcmgr *rm, gn_rcmgr_dir dir, bool fd, const uint8_t *ip,
                              size_t ip_len, gn_rcmgr_conn **out);

/**
 * Moves an upgrading connection into the scope of its peer, once the
 * security handshake proved @peer: its connection, descriptor and memory
 * leave the transient scope for the peer scope, and it stops counting as
 * upgrading. All or nothing: on failure the connection stays transient,
 * unchanged, and the peer scope holds nothing for it (close it).
 * @peer: borrowed for the call.
 * Errors: GN_EINVAL (NULL argument, empty @peer), GN_ESTATE (the peer is
 * already set), GN_ERESOURCE (the peer scope's limits or the peer table
 * cap), GN_ENOMEM.
 * Since: 0.2
 */
GN_API int gn_rcmgr_conn_set_peer(gn_rcmgr_conn *conn, const gn_peer_id *peer);

/**
 * Closes a connection span: releases what it reserved itself (its
 * connection, descriptor and memory) from every scope of its chain, and
 * its references to keyed scopes. Its stream spans stay valid and keep
 * their own reservations, and the conn scope, until they are done (it is
 * still listed by gn_rcmgr_foreach(), holding their usage). The handle is
 * invalid afterwards. NULL is ignored.
 * Since: 0.2
 */
GN_API void gn_rcmgr_conn_done(gn_rcmgr_conn *conn);

/**
 * Opens a stream span, before opening or accepting a stream. It reserves
 * one stream of @dir in stream -> conn -> peer -> transient -> system.
 * @conn: the connection span it runs on (its peer must be set), or NULL.
 * @peer: the remote peer; NULL to take @conn's. Required without @conn.
 * Borrowed for the call.
 * @out: receives the span; untouched on failure.
 * Errors: GN_EINVAL (NULL @rm or @out, bad @dir, no peer, @peer differs
 * from @conn's, @conn from another manager), GN_ESTATE (@conn has no peer
 * yet), GN_ERESOURCE (a limit or the peer table cap), GN_ENOMEM.
 * Since: 0.2
 */
GN_API int gn_rcmgr_open_stream(gn_rcmgr *rm, gn_rcmgr_conn *conn, const gn_peer_id *peer,
                                gn_rcmgr_dir dir, gn_rcmgr_stream **out);

/**
 * Moves a stream from the transient scope to the scope of protocol @id,
 * once negotiation picked it. All or nothing: on failure the stream stays
 * transient and unchanged (reset it).
 * @id, @len: the protocol ID bytes (no NUL needed), borrowed for the call.
 * Errors: GN_EINVAL (NULL argument, @len 0 or above
 * GN_RCMGR_PROTOCOL_MAX), GN_ESTATE (the protocol is already set),
 * GN_ERESOURCE (the protocol scope's limits or the protocol table cap),
 * GN_ENOMEM.
 * Since: 0.2
 */
GN_API int gn_rcmgr_stream_set_protocol(gn_rcmgr_stream *stream, const char *id, size_t len);

/**
 * Closes a stream span, releasing everything it holds from every scope of
 * its chain. The handle is invalid afterwards. NULL is ignored.
 * Since: 0.2
 */
GN_API void gn_rcmgr_stream_done(gn_rcmgr_stream *stream);

/** The span of a connection (not NULL). Since: 0.2 */
GN_API gn_rcmgr_span *gn_rcmgr_conn_span(gn_rcmgr_conn *conn);
/** The span of a stream (not NULL). Since: 0.2 */
GN_API gn_rcmgr_span *gn_rcmgr_stream_span(gn_rcmgr_stream *stream);

/**
 * Reserves @len bytes of memory in every scope of @span's chain, before
 * allocating them. Each scope admits it only if its memory usage stays
 * within (@prio + 1) / 256 of its memory limit (GN_RCMGR_PRIO_*). @len 0
 * succeeds and changes nothing.
 * Errors: GN_EINVAL (NULL @span), GN_ERESOURCE (nothing reserved; see
 * gn_rcmgr_last_refusal()).
 * Since: 0.2
 */
GN_API int gn_rcmgr_reserve_memory(gn_rcmgr_span *span, size_t len, uint8_t prio);

/**
 * Gives back @len bytes that @span reserved, in every scope of its chain.
 * Errors: GN_EINVAL (NULL @span, or @len more than the span holds:
 * nothing is released).
 * Since: 0.2
 */
GN_API int gn_rcmgr_release_memory(gn_rcmgr_span *span, size_t len);

/**
 * What @span reserved itself (memory, its connection or stream, its
 * descriptor) into @out. For the conn scope, streams and their memory
 * included, use gn_rcmgr_foreach() with GN_RCMGR_SCOPE_CONN.
 * Both must not be NULL. Since: 0.2
 */
GN_API void gn_rcmgr_span_stat(const gn_rcmgr_span *span, gn_rcmgr_usage *out);

/**
 * Reads the usage of one scope.
 * @kind: SYSTEM or TRANSIENT (@key NULL, @key_len 0), PEER (@key: the
 * binary peer ID, gn_peer_id.bytes), PROTOCOL (the ID bytes), IP (4 or 16
 * address bytes), SUBNET (4 or 16 bytes of any address in the subnet; the
 * current prefix length selects it). Connection and stream scopes: see
 * gn_rcmgr_span_stat() and gn_rcmgr_foreach().
 * Errors: GN_EINVAL (NULL @rm or @out, bad @kind or key),
 * GN_ENOTFOUND (no scope has this key: nothing is in use for it).
 * Since: 0.2
 */
GN_API int gn_rcmgr_stat(const gn_rcmgr *rm, gn_rcmgr_scope_kind kind, const void *key,
                         size_t key_len, gn_rcmgr_usage *out);

/** One scope, as gn_rcmgr_foreach() reports it; valid during the callback. Since: 0.2 */
typedef struct gn_rcmgr_scope_info {
    gn_rcmgr_scope_kind kind;
    const char *name;   /* as in gn_rcmgr_refusal.name */
    /** The key as gn_rcmgr_stat() takes it (subnet: the masked address); NULL if unkeyed. */
    const uint8_t *key;
    size_t key_len;
    gn_rcmgr_usage stat;
    const gn_rcmgr_limit *limit; /* the limits that apply to it */
} gn_rcmgr_scope_info;

/**
 * Calls @cb for every scope of @kind alive now, in creation order, for
 * metrics. @cb may call gn_rcmgr_stat(), gn_rcmgr_span_stat() and
 * gn_rcmgr_last_refusal(), and nothing that opens, moves or closes a span
 * or changes limits. A nonzero return from @cb stops the walk and is
 * returned.
 * Errors: GN_EINVAL (NULL @rm or @cb, bad @kind).
 * Returns: 0 after the last scope, or @cb's nonzero value.
 * Since: 0.2
 */
GN_API int gn_rcmgr_foreach(const gn_rcmgr *rm, gn_rcmgr_scope_kind kind,
                            int (*cb)(void *user_data, const gn_rcmgr_scope_info *info),
                            void *user_data);

/**
 * Copies the manager's last refusal (the latest GN_ERESOURCE it returned)
 * into @out.
 * Errors: GN_EINVAL (NULL argument), GN_ENOTFOUND (nothing refused yet).
 * Since: 0.2
 */
GN_API int gn_rcmgr_last_refusal(const gn_rcmgr *rm, gn_rcmgr_refusal *out);

/**
 * Refusals by scopes of @kind since the manager was created, table caps
 * included (a count that outlives the keyed scopes, for metrics); 0 for a
 * bad @kind. Since: 0.2
 */
GN_API uint64_t gn_rcmgr_refusal_count(const gn_rcmgr *rm, gn_rcmgr_scope_kind kind);

/**
 * The name of the scope that refused last ("peer:12D3KooW..."), for
 * messages; "" when nothing was refused. Valid until the next call on @rm.
 * Since: 0.2
 */
GN_API const char *gn_rcmgr_last_refusal_scope(const gn_rcmgr *rm);

/** "system", "transient", "peer", ...; "unknown" otherwise. Static. Since: 0.2 */
GN_API const char *gn_rcmgr_scope_kind_name(gn_rcmgr_scope_kind kind);
/** "memory", "streams_in", ..., "table"; "unknown" otherwise. Static. Since: 0.2 */
GN_API const char *gn_rcmgr_res_name(gn_rcmgr_res res);

GN_END_DECLS

#endif /* GOLEMNET_RCMGR_H */
