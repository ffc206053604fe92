/*
 * golemnet - Ergo's embedded registrar on libuv (private to the library).
 *
 * Runs the registrar cores (registrar.h) with real sockets: the failover
 * rule decides; this adapter binds TCP 127.0.0.1:port and UDP 0.0.0.0:port
 * to become the server (serving the table: Register over TCP with the
 * connection as the lease, Resolve over UDP), or registers over TCP with
 * the current owner and keeps that lease; when the lease ends it starts
 * over (the first survivor to bind becomes the new server).
 *
 * Spec: ergo-wire.md section a. Design: docs/ergo.md "Registrar".
 * Thread context: the loop's thread. The application blocks SIGPIPE.
 */
#ifndef GNI_REGISTRAR_UV_H
#define GNI_REGISTRAR_UV_H

#include <uv.h>

#include "registrar.h"

typedef struct gni_reg_uv gni_reg_uv;

/**
 * @node (name@host) registers @routes (@nroutes; borrowed for the object's
 * lifetime) on @port (0 = 4499). Deadlines, as Ergo's: a client gives the
 * RegisterReply 1 s from its dial (then the attempt fails and the failover
 * pause follows); the server closes a registration connection whose
 * Register has not arrived 1 s after the accept. @on_role reports every role
 * change (SERVER, CLIENT, FAILED with GN_EEXIST: the name is taken).
 */
typedef struct gni_reg_uv_options {
    const gn_edf_registry *reg;
    const char *node;
    const gni_reg_route *routes;
    uint32_t nroutes;
    uint16_t port;
    void (*on_role)(gni_reg_uv *r, gni_reg_role role, void *user_data);
    void *user_data;
} gni_reg_uv_options;

/** Starts the failover loop. Returns 0, GN_EINVAL, GN_ENOMEM. */
int gni_reg_uv_start(uv_loop_t *loop, const gni_reg_uv_options *o, gni_reg_uv **out);

/** Current role. */
gni_reg_role gni_reg_uv_role(const gni_reg_uv *r);

/**
 * Resolves @node (name@host; host must be an IPv4 literal or "localhost":
 * no DNS here): in-process when we are the server, else one UDP datagram
 * to host:port, one reply awaited 3 s, no retry. Only a datagram from
 * host:port itself is a reply: datagrams from any other address are
 * ignored and the wait goes on. @cb gets 0 and the routes
 * (valid during the call), GN_ENOTFOUND, GN_ETIMEDOUT or another error.
 * Returns 0 or GN_EINVAL / GN_ENOMEM (then @cb is not called).
 */
typedef void (*gni_reg_uv_resolve_cb)(int err, const gni_reg_route *routes, uint32_t n,
                                      void *user_data);
int gni_reg_uv_resolve(gni_reg_uv *r, const char *node, gni_reg_uv_resolve_cb cb, void *ud);

/** Closes every socket; @cb runs when all handles are closed and @r is freed. */
void gni_reg_uv_close(gni_reg_uv *r, void (*cb)(void *ud), void *ud);

#endif /* GNI_REGISTRAR_UV_H */
