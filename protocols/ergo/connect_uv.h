/*
 * golemnet - connecting to an Ergo node by name (private to the library).
 *
 * Ergo's GetConnection order: static routes first (routes.h), highest
 * weight first, each dialled until one connects; a route with
 * use_resolver asks the registrar and dials what it answers with the
 * node's cookie; when a static route matched, the registrar is not asked
 * otherwise. Without a static route: the registrar (registrar_uv.h), then
 * each resolved route with the node's cookie.
 *
 * Hosts: a route's empty host is the host part of the name; "localhost"
 * is 127.0.0.1; other hosts must be IP literals (no DNS here). TLS routes
 * are dialled with TLS (gni_ergo_dial_options.tls).
 *
 * Spec: ergo-wire.md a (resolve); Ergo node/network.go GetConnection.
 * Design: docs/ergo.md "Static routes". Thread context: the loop's thread.
 */
#ifndef GNI_CONNECT_UV_H
#define GNI_CONNECT_UV_H

#include "ergo_uv.h"
#include "registrar_uv.h"
#include "routes.h"

/** Candidates tried per connect: static routes, and routes one resolve returns. */
#define GNI_ERGO_CONNECT_MAX 16u

/**
 * @err 0 and the connection (valid during the call, see on_conn_down), or
 * the error of the last candidate tried, GN_ENOROUTE (nothing to try: no
 * static route and no registrar), GN_ENOTFOUND (the registrar does not
 * know the name), GN_ECANCELED (the node or the registrar closed: no
 * further candidate is tried, so neither is used after its close).
 */
typedef void (*gni_ergo_connect_cb)(int err, gni_ergo_conn *c, void *user_data);

/**
 * Connects @n (running on @loop) to @name (name@host, NUL-terminated, at most 255 bytes)
 * through @routes (NULL = none; borrowed during this call only: matches
 * are copied) and @reg (NULL = no registrar). @cb runs exactly once, from
 * the loop, never from inside this call. @n and @reg must stay open until
 * then (close the node after the registrar, or wait for @cb).
 * Returns 0, or GN_EINVAL (NULL argument, name without '@' or too long) /
 * GN_ENOMEM (then @cb is not called).
 */
int gni_ergo_connect(uv_loop_t *loop, gni_ergo_node *n, const gni_routes *routes,
                     gni_reg_uv *reg, const char *name, gni_ergo_connect_cb cb,
                     void *user_data);

/**
 * A registrar other than the embedded one (the etcd registrar): @resolve
 * asks it for @name's routes, as gni_reg_uv_resolve does (same callback,
 * same contract: 0 then @cb runs once, from the loop or from inside the
 * call; or a negative error and @cb is not called). @ctx is passed back.
 */
typedef struct gni_ergo_resolver {
    int (*resolve)(void *ctx, const char *name, gni_reg_uv_resolve_cb cb, void *ud);
    void *ctx;
} gni_ergo_resolver;

/**
 * gni_ergo_connect with @res (NULL = no registrar; borrowed for this call
 * only, @res->ctx must stay usable until @cb) in place of the embedded
 * registrar. Same order, callback and errors.
 */
int gni_ergo_connect_res(uv_loop_t *loop, gni_ergo_node *n, const gni_routes *routes,
                         const gni_ergo_resolver *res, const char *name,
                         gni_ergo_connect_cb cb, void *user_data);

#endif /* GNI_CONNECT_UV_H */
