/*
 * golemnet - Ergo's embedded registrar (ESRD R1) as sans-I/O cores
 * (private to the library).
 *
 * - Packets: 01 + type (44 Register, 45 RegisterReply over TCP; 46 Resolve,
 *   47 ResolveReply over UDP) + u16 body length (header not counted) + one
 *   EDF value without dictionaries.
 * - Server: the registrations table of the node that owns port 4499
 *   (bounded), register / duplicate refusal / lease end, resolve answers.
 * - Client: packets to register and resolve, the replies' outcomes
 *   (GN_EEXIST for the duplicate-name refusal, GN_ENOTFOUND for an unknown
 *   node), and the failover rule as a small state machine that tells the
 *   adapter what to do next (bind 4499, register, wait 1 s).
 *
 * Spec: shared/specs/ergo-wire.md section a "Embedded registrar" (roles
 * and transports, packet layout, bodies, failover). Design and limits:
 * docs/ergo.md "Registrar". No sockets, no clock: the adapter binds, dials,
 * reads and passes the time.
 *
 * Errors: GN_EAGAIN (partial packet), GN_EBADFRAME (version not 1, unknown
 * type), GN_EPARSE (body not the message of the type), GN_ENOTFOUND,
 * GN_EEXIST, GN_ELIMIT (table bounds), GN_ENOSPC, GN_ENOMEM, GN_EINVAL.
 * Thread context: no global state; one object per thread.
 */
#ifndef GNI_REGISTRAR_H
#define GNI_REGISTRAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "golemnet/common.h"
#include "golemnet/edf.h"

#define GNI_REG_VERSION 1u
#define GNI_REG_HEADER_LEN 4u
#define GNI_REG_PORT 4499u           /* default port, TCP (localhost) and UDP (all) */
#define GNI_REG_SERVER_READ 4096u    /* server's TCP read and client's UDP read buffer */
#define GNI_REG_SERVER_UDP_READ 1024u /* server's UDP read buffer */
#define GNI_REG_CLIENT_TCP_READ 1024u /* client's read of the RegisterReply */
#define GNI_REG_REGISTER_TIMEOUT GN_S /* deadline of the register read (both sides) */
#define GNI_REG_RESOLVE_TIMEOUT (3 * GN_S) /* client waits this long for a UDP reply */
#define GNI_REG_RETRY (1 * GN_S)      /* failover pause after a failed attempt */
#define GNI_REG_MAX_NODES_DEFAULT 1024u
#define GNI_REG_MAX_ROUTES_DEFAULT 16u

/** Error texts Ergo sends (plain strings: no dictionaries on this wire). */
#define GNI_REG_ERR_TAKEN "resource is taken"
#define GNI_REG_ERR_INCORRECT "incorrect value or argument"
#define GNI_REG_ERR_UNKNOWN "unknown"

enum gni_reg_type {
    GNI_REG_REGISTER = 44,
    GNI_REG_REGISTER_REPLY = 45,
    GNI_REG_RESOLVE = 46,
    GNI_REG_RESOLVE_REPLY = 47,
};

/** gen.Route: Host (empty = the host part of the node name), Port, TLS, versions. */
typedef struct gni_reg_route {
    gn_slice host;
    uint16_t port;
    bool tls;
    gn_slice hs_version[4];    /* Name, Release, Commit, License: {"EHS","R1","","MIT"} */
    gn_slice proto_version[4]; /* {"ENP","R1","","MIT"} */
} gni_reg_route;

/**
 * One packet. REGISTER: node, routes. REGISTER_REPLY: error (error_nil =
 * success). RESOLVE: node. RESOLVE_REPLY: routes (routes_nil), error.
 */
typedef struct gni_reg_packet {
    enum gni_reg_type type;
    gn_slice node;
    const gni_reg_route *routes;
    uint32_t nroutes;
    bool routes_nil;
    gn_slice error;
    bool error_nil;
} gni_reg_packet;

/** A route with Ergo's versions for an acceptor on @port (Host empty). */
gni_reg_route gni_reg_route_ergo(uint16_t port, bool tls);

/**
 * Parses one packet (@reg with gn_edf_registry_add_ergo types). Slices
 * borrow @in, or @a with @copy. Returns 0 and *@consumed; GN_EAGAIN (not
 * all there); GN_EBADFRAME; GN_EPARSE; GN_ENOTFOUND (type name unknown to
 * @reg); GN_ENOMEM; GN_EINVAL.
 */
int gni_reg_parse(const gn_edf_registry *reg, gn_edf_arena *a, const uint8_t *in, size_t len,
                  bool copy, gni_reg_packet *p, size_t *consumed);

/** Appends packet @p to @out. Returns bytes written; GN_ENOSPC; GN_ERANGE; GN_EINVAL. */
int gni_reg_build(const gn_edf_registry *reg, gn_edf_arena *a, const gni_reg_packet *p,
                  gn_buf *out);

/* ---- server ------------------------------------------------------------------------------ */

typedef struct gni_reg_server gni_reg_server;

/**
 * A registrations table: at most @max_nodes nodes (0 = default) with at
 * most @max_routes routes each (0 = default). Returns 0 / GN_EINVAL /
 * GN_ENOMEM.
 */
int gni_reg_server_new(const gn_edf_registry *reg, uint32_t max_nodes, uint32_t max_routes,
                       gni_reg_server **out);
void gni_reg_server_free(gni_reg_server *s);

/**
 * Registers the server node's own routes (in-process, no bytes; spec a:
 * "stores its own routes in memory"). Lease @lease 0. Errors as below.
 */
int gni_reg_server_add(gni_reg_server *s, uint64_t lease, gn_slice node,
                       const gni_reg_route *routes, uint32_t n);

/**
 * The first read on a registration TCP connection @lease (the adapter's
 * id, != 0). Writes the RegisterReply to @reply and sets *@close when the
 * adapter must close the connection after sending it (refusals: duplicate
 * name "resource is taken", no routes "incorrect value or argument", table
 * full; or a read that is not one whole Register packet: then nothing is
 * written). On success the connection is the lease: keep it open, ignore
 * further bytes, call gni_reg_server_lease_end() when it ends.
 * Returns 0 (registered), GN_EEXIST, GN_EINVAL (no routes), GN_ELIMIT,
 * GN_EPARSE / GN_EBADFRAME / GN_EAGAIN (close without reply), GN_ENOSPC.
 */
int gni_reg_server_tcp(gni_reg_server *s, uint64_t lease, const uint8_t *in, size_t len,
                       gn_buf *reply, bool *close);

/** The lease connection @lease ended: its node is forgotten. */
void gni_reg_server_lease_end(gni_reg_server *s, uint64_t lease);

/**
 * One UDP datagram: a Resolve gets a ResolveReply in @reply (the routes, or
 * nil routes + "unknown"). Returns the reply length, or a negative error
 * for a datagram that gets no answer (GN_EPARSE, GN_EBADFRAME, GN_EAGAIN,
 * a packet of another type), GN_ENOSPC.
 */
int gni_reg_server_udp(gni_reg_server *s, const uint8_t *in, size_t len, gn_buf *reply);

/** In-process resolve: routes of @node (borrowed from @s) or GN_ENOTFOUND. */
int gni_reg_server_find(const gni_reg_server *s, gn_slice node, const gni_reg_route **routes,
                        uint32_t *n);

/** Registered nodes. */
size_t gni_reg_server_count(const gni_reg_server *s);

/* ---- client ------------------------------------------------------------------------------ */

/**
 * Outcome of a RegisterReply: 0 registered; GN_EEXIST the name is taken
 * (Ergo: the node fails to start); GN_EINVAL routes refused; GN_EPROTO
 * another error text; parse errors as gni_reg_parse (GN_EAGAIN included).
 */
int gni_reg_register_result(const gn_edf_registry *reg, gn_edf_arena *a, const uint8_t *in,
                            size_t len);

/**
 * Outcome of a ResolveReply: 0 and the routes (in @a); GN_ENOTFOUND
 * ("unknown"); GN_EPROTO another error; parse errors.
 */
int gni_reg_resolve_result(const gn_edf_registry *reg, gn_edf_arena *a, const uint8_t *in,
                           size_t len, const gni_reg_route **routes, uint32_t *n);

/** What the failover state machine wants the adapter to do now. */
typedef enum gni_reg_action {
    GNI_REG_ACT_NONE = 0, /* wait: for a result, a lease end, or the deadline */
    GNI_REG_ACT_BIND,     /* try to bind TCP localhost:4499 and UDP :4499; report bound() */
    GNI_REG_ACT_REGISTER, /* dial localhost:4499, send Register; report registered() */
} gni_reg_action;

typedef enum gni_reg_role {
    GNI_REG_ROLE_NONE = 0,
    GNI_REG_ROLE_SERVER, /* we own port 4499: serve the table (our routes in-process) */
    GNI_REG_ROLE_CLIENT, /* registered with the owner; the lease connection is open */
    GNI_REG_ROLE_FAILED, /* our name is taken: the node must not start */
} gni_reg_role;

/**
 * The failover rule (spec a "Failover"): try to become the server, else
 * register as a client; on a lost lease start over; after a failure pause
 * GNI_REG_RETRY. Plain struct: zero it, then call gni_reg_failover_next().
 */
typedef struct gni_reg_failover {
    int state;
    gni_reg_role role;
    gn_time retry_at;
    uint32_t attempts;
} gni_reg_failover;

/** The next action at @now (GNI_REG_ACT_NONE while waiting). */
gni_reg_action gni_reg_failover_next(gni_reg_failover *f, gn_time now);
/** Result of ACT_BIND: both sockets bound (server) or not. */
void gni_reg_failover_bound(gni_reg_failover *f, bool ok, gn_time now);
/** Result of ACT_REGISTER: 0, GN_EEXIST (fatal), or any failure (retry). */
void gni_reg_failover_registered(gni_reg_failover *f, int rc, gn_time now);
/** The lease connection ended (EOF: the server node is gone). */
void gni_reg_failover_lease_lost(gni_reg_failover *f, gn_time now);
/** When gni_reg_failover_next() has something to do (GN_TIME_INFINITY: never). */
gn_time gni_reg_failover_deadline(const gni_reg_failover *f);

#endif /* GNI_REGISTRAR_H */
