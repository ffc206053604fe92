/*
 * The IPC socket layer shared by golemnet's daemons (the control daemon,
 * ipc/ipcd_uv.c, and the libp2p daemon, ipc/p2pd/) and their clients:
 * where a control socket lives, how it is bound and who may connect, and a
 * connection object that carries unsigned-varint framed messages (the
 * framing of core's gni_lp_reader) or, after a switch, raw bytes.
 *
 * Addresses (gni_ipc_addr_parse):
 *   - a Unix socket path ("/run/user/1000/golemnet/x.sock", "./x.sock"),
 *     or the multiaddr form "/unix/PATH" ("/unix/tmp/x.sock"; also
 *     "/unix//tmp/x.sock" with the path's own leading slash kept);
 *   - on Windows a named pipe "\\.\pipe\NAME" (libuv pipes; not built yet);
 *   - "/ip4/127.0.0.1/tcp/N" or "/ip6/::1/tcp/N": TCP on loopback only,
 *     and only where the caller configured it explicitly. Every other
 *     address (other IPs, DNS names, other protocols) is refused with
 *     GN_EACCES and a message saying why.
 *
 * Security of a Unix socket listener: the file gets mode 0600 (or the
 * configured mode) right after bind; in addition every accepted
 * connection's peer credentials (SO_PEERCRED on Linux, getpeereid() on the
 * BSDs and macOS) are checked: the peer's uid must be the listener's
 * effective uid or on the allow-list, else the connection is closed at
 * once (and logged). Where no credential call exists the check is skipped
 * with a warning at bind time. TCP loopback connections carry no
 * credentials: any local user can connect (documented in docs/daemon.md).
 *
 * Stale sockets: when the path exists, gni_ipc_listen() connects to it: a
 * live listener answers and the bind is refused with GN_EADDRINUSE; a
 * refused connection means a stale file, which is unlinked and replaced. A
 * path that exists and is not a socket is never removed (GN_EEXIST).
 *
 * Thread context: every function runs on the thread of the uv_loop_t it
 * is given (the node's loop: gn_loop_uv(gn_node_loop(node))), except the
 * pure helpers marked "any thread". Callbacks run on that loop, never from
 * inside the call that caused them (except as documented for close).
 */
#ifndef GNI_IPC_H
#define GNI_IPC_H

#include "golemnet/common.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct uv_loop_s uv_loop_t;

/** Largest control message (payload bytes, without the length prefix): 4 MiB. */
#define GNI_IPC_MSG_MAX (4u * 1024u * 1024u)
/** Default bound of a connection's write queue (bytes not yet written). */
#define GNI_IPC_WRITE_MAX (8u * 1024u * 1024u)
/** Longest socket path accepted, bytes without the NUL (macOS's sun_path: 104 with it). */
#define GNI_IPC_PATH_MAX 103u
/** The daemon name `golemnet daemon` uses without --name or --socket (GN_IPCD_DEFAULT_NAME). */
#define GNI_IPC_DEFAULT_NAME "default"
/** Longest uid allow-list. */
#define GNI_IPC_ALLOW_MAX 64u

/** Address kinds. */
enum { GNI_IPC_UNIX = 1, GNI_IPC_TCP = 2 };

/** A parsed control address. */
typedef struct gni_ipc_addr {
    int kind;                          /* GNI_IPC_UNIX or GNI_IPC_TCP */
    char path[GNI_IPC_PATH_MAX + 1];   /* UNIX: the socket path (or pipe name) */
    char ip[48];                       /* TCP: "127.0.0.1" or "::1" (textual, loopback) */
    uint16_t port;                     /* TCP: port, 0 = any (listen only) */
    bool v6;                           /* TCP: IPv6 */
} gni_ipc_addr;

/**
 * Parses @spec (NUL-terminated) into @out. @err (may be NULL) receives a
 * message naming what was wrong, @errlen bytes at most.
 * Errors: GN_EINVAL (NULL, empty, malformed, path too long: message in
 * @err), GN_EACCES (a TCP address that is not loopback, or another
 * protocol: message in @err). Any thread.
 */
int gni_ipc_addr_parse(const char *spec, gni_ipc_addr *out, char *err, size_t errlen);

/**
 * Writes @a as text into @out (@cap bytes): the path for UNIX (as given),
 * "/ip4/127.0.0.1/tcp/N" or "/ip6/::1/tcp/N" for TCP. Returns the length,
 * or GN_ENOSPC. Any thread.
 */
int gni_ipc_addr_format(const gni_ipc_addr *a, char *out, size_t cap);

/**
 * The default control socket path of daemon @name (NUL-terminated, 1..64
 * bytes of [A-Za-z0-9._-]) for the calling user:
 * "$XDG_RUNTIME_DIR/golemnet/<name>.sock" when XDG_RUNTIME_DIR is set, an
 * absolute path and the result fits; else "/tmp/golemnet-<uid>/<name>.sock";
 * on Windows "\\.\pipe\golemnet-<name>". Written to @out (@cap bytes).
 * @prefix, when not NULL, is placed before <name> ("p2pd-" gives
 * p2pd-<name>.sock). Returns 0, or GN_EINVAL (bad name), GN_ENOSPC.
 * Reads the environment: any thread that does not change it.
 */
int gni_ipc_default_path(const char *name, const char *prefix, char *out, size_t cap);

/**
 * Creates the directory holding socket @path, if it is missing, with mode
 * 0700 (only the parent itself, not its ancestors), and checks an existing
 * one: it must be a directory owned by the caller's effective uid and not
 * writable by group or others, else GN_EACCES (a message in @err). A path
 * without a directory part is accepted as is. Errors: GN_EACCES, GN_EIO
 * (mkdir/stat failed; message in @err), GN_EINVAL. Blocking (set-up only).
 */
int gni_ipc_prepare_dir(const char *path, char *err, size_t errlen);

/**
 * The credential check of a Unix socket listener: true when @peer_uid is
 * @self_uid or one of the @n uids of @allow (@allow may be NULL when @n is
 * 0). Pure; any thread.
 */
bool gni_ipc_uid_allowed(uint32_t self_uid, const uint32_t *allow, size_t n, uint32_t peer_uid);

/* ------------------------------------------------------------------ */
/* Connections                                                          */

typedef struct gni_ipc_conn gni_ipc_conn;

/**
 * Callbacks of a connection; set with gni_ipc_conn_set_cbs(). Each may be
 * NULL (the event is then ignored), @ud is passed back.
 *
 * on_msg: framed mode only: one complete message (@msg, @len bytes,
 *   borrowed for the call; @msg may be NULL when @len is 0). The callback
 *   may write, switch to raw mode, stop reading or close the connection;
 *   the bytes following the message are then kept for later (raw data or
 *   the next message once reading restarts).
 * on_data: raw mode only: @len bytes (borrowed for the call).
 * on_end: the peer closed its side (@err GN_EEOF), reading failed (a
 *   gn_err: GN_ECONNRESET, GN_EIO...) or the framing was lost (GN_EFRAMESIZE:
 *   a length above the bound, GN_EPARSE: a bad varint). Reading has
 *   stopped; the owner closes the connection (or, on GN_EEOF, may still
 *   write and then close).
 * on_writable: the write queue fell to half its bound after a write was
 *   refused with GN_EAGAIN or a write (forced ones included) reached it.
 * on_close: after gni_ipc_conn_close(): the last callback; the connection
 *   is freed right after it returns.
 */
typedef struct gni_ipc_conn_cbs {
    void (*on_msg)(gni_ipc_conn *c, const uint8_t *msg, size_t len, void *ud);
    void (*on_data)(gni_ipc_conn *c, const uint8_t *data, size_t len, void *ud);
    void (*on_end)(gni_ipc_conn *c, int err, void *ud);
    void (*on_writable)(gni_ipc_conn *c, void *ud);
    void (*on_close)(gni_ipc_conn *c, void *ud);
} gni_ipc_conn_cbs;

/** Installs @cbs (copied) and @ud. The connection does not read until gni_ipc_conn_read_start(). */
void gni_ipc_conn_set_cbs(gni_ipc_conn *c, const gni_ipc_conn_cbs *cbs, void *ud);

/** The user data given to gni_ipc_conn_set_cbs(). */
void *gni_ipc_conn_get_ud(const gni_ipc_conn *c);

/**
 * Sets the largest message accepted in framed mode (default
 * GNI_IPC_MSG_MAX; 1..GNI_IPC_MSG_MAX) and the write queue bound in bytes
 * (0 keeps the current one; default GNI_IPC_WRITE_MAX). Errors: GN_EINVAL,
 * GN_ESTATE (a message is being read).
 */
int gni_ipc_conn_set_limits(gni_ipc_conn *c, size_t msg_max, size_t write_max);

/**
 * Starts (or resumes) delivering what arrives. Bytes kept from an earlier
 * pause are delivered first, from the loop (not inside this call).
 * Errors: GN_ECLOSED (closing or ended), GN_EIO.
 */
int gni_ipc_conn_read_start(gni_ipc_conn *c);

/** Stops delivery (backpressure); idempotent. What arrives meanwhile stays in the kernel. */
void gni_ipc_conn_read_stop(gni_ipc_conn *c);

/**
 * Switches the connection to raw mode: from now on every byte is handed to
 * on_data, beginning with the bytes that followed the last message. One
 * way. Call it from on_msg or while framed reading is paused.
 * Returns 0, or GN_ENOMEM when the bytes of a frame begun could not be
 * kept: they are lost, so the connection stops reading and on_end(GN_ENOMEM)
 * follows from the loop (never from inside this call); read_start then
 * returns GN_ENOMEM.
 */
int gni_ipc_conn_set_raw(gni_ipc_conn *c);

/**
 * Queues @len bytes of @data (copied) for writing. With @framed the bytes
 * are prefixed with their unsigned-varint length (one message; @len at most
 * GNI_IPC_MSG_MAX). The bytes are written in order.
 * Errors: GN_EAGAIN (the queue holds write_max bytes or more: nothing
 * queued; on_writable follows at half), GN_ETOOBIG (@framed and @len above
 * GNI_IPC_MSG_MAX), GN_ECLOSED (closing, shut down, or a write failed),
 * GN_ENOMEM, GN_EINVAL.
 */
int gni_ipc_conn_write(gni_ipc_conn *c, const uint8_t *data, size_t len, bool framed);

/**
 * As gni_ipc_conn_write() but ignores the queue bound (for a bounded number
 * of small messages that must not be refused: an error reply, a final
 * reason). Errors: GN_ETOOBIG, GN_ECLOSED, GN_ENOMEM, GN_EINVAL.
 */
int gni_ipc_conn_write_force(gni_ipc_conn *c, const uint8_t *data, size_t len, bool framed);

/** Bytes queued and not yet written. */
size_t gni_ipc_conn_queued(const gni_ipc_conn *c);

/**
 * Half-closes: after the queued bytes are written, the write side is shut
 * down (the peer reads EOF). Further writes fail with GN_ECLOSED.
 */
void gni_ipc_conn_shutdown(gni_ipc_conn *c);

/**
 * Closes the connection. With @flush the queued bytes are written first
 * (bounded: at most 5 s, then the connection is closed anyway); without,
 * they are dropped. Reading stops at once; on_close runs once, later, from
 * the loop; then the memory is freed. Idempotent (a second call may turn a
 * flushing close into an immediate one when @flush is false).
 */
void gni_ipc_conn_close(gni_ipc_conn *c, bool flush);

/**
 * The peer's uid from the socket credentials, in *@uid. Errors: GN_ENOTSUP
 * (TCP, or no credential call on this system), GN_EIO.
 */
int gni_ipc_conn_peer_uid(const gni_ipc_conn *c, uint32_t *uid);

/** True for a TCP connection (loopback), false for a Unix socket or pipe. */
bool gni_ipc_conn_is_tcp(const gni_ipc_conn *c);

/* ------------------------------------------------------------------ */
/* Listening                                                            */

typedef struct gni_ipc_listener gni_ipc_listener;

/** Listener options; zero-initialise, then set what you need. */
typedef struct gni_ipc_listen_opts {
    unsigned mode;              /* Unix socket file mode; 0 = 0600 */
    const uint32_t *allow_uids; /* extra uids allowed besides the effective uid (copied) */
    size_t allow_cnt;           /* entries of allow_uids, at most GNI_IPC_ALLOW_MAX */
    int backlog;                /* listen backlog; 0 = 128 */
} gni_ipc_listen_opts;

/**
 * A new connection, not yet reading: install callbacks
 * (gni_ipc_conn_set_cbs) and start reading, or close it. The connection
 * belongs to the callee.
 */
typedef void (*gni_ipc_accept_fn)(gni_ipc_listener *l, gni_ipc_conn *c, void *ud);

/**
 * Listens on @addr (a string as gni_ipc_addr_parse() takes) on @uvl.
 * Unix: the stale-socket check (see top), bind, chmod to the mode, listen;
 * the file is removed again by gni_ipc_listener_close() (when it is still
 * the one bound). Connections whose peer uid is not allowed are closed
 * before @on_accept and counted (gni_ipc_listener_refused()); so are
 * connections accepted while out of memory (the listener keeps accepting).
 * @opts may be NULL (defaults). @err (may be NULL) receives a message.
 * Errors: GN_EINVAL, GN_EACCES (address refused, or chmod failed),
 * GN_EADDRINUSE (a live listener answers on the path, or the TCP port is
 * taken), GN_EEXIST (the path exists and is not a socket), GN_ENOMEM,
 * GN_EIO (bind/listen failed otherwise; the uv error in @err).
 */
int gni_ipc_listen(uv_loop_t *uvl, const char *addr, const gni_ipc_listen_opts *opts,
                   gni_ipc_accept_fn on_accept, void *ud, gni_ipc_listener **out, char *err,
                   size_t errlen);

/**
 * The address actually bound (a TCP port 0 resolved), as text:
 * "/ip4/127.0.0.1/tcp/N" or the socket path. Borrowed until close.
 */
const char *gni_ipc_listener_addr(const gni_ipc_listener *l);

/** Connections refused so far: by the credential check, or closed at once
 * because no connection object could be allocated (out of memory). */
uint64_t gni_ipc_listener_refused(const gni_ipc_listener *l);

/**
 * Stops listening, removes the socket file (Unix; only if it is still the
 * socket this listener bound), and calls @cb(@ud) (may be NULL) from the
 * loop once the handle is closed; then frees the listener. Connections
 * already accepted are not affected.
 */
void gni_ipc_listener_close(gni_ipc_listener *l, void (*cb)(void *ud), void *ud);

/* ------------------------------------------------------------------ */
/* Connecting (clients, and the daemon's stream-handler connections)    */

/**
 * Completion of gni_ipc_connect(): @c is the connected connection (owned by
 * the callee; not reading yet) or NULL with @err: GN_ECONNREFUSED (nobody
 * listens), GN_ENOTFOUND (no such socket file), GN_EACCES, GN_ECANCELED
 * (the loop is closing), GN_EIO.
 */
typedef void (*gni_ipc_connect_fn)(gni_ipc_conn *c, int err, void *ud);

/**
 * Connects to @addr (gni_ipc_addr_parse() syntax; TCP only to loopback) on
 * @uvl; @cb runs exactly once, later, from the loop, unless this returns
 * an error (then never). Errors: GN_EINVAL, GN_EACCES (as parse; message in
 * @err), GN_ENOMEM.
 */
int gni_ipc_connect(uv_loop_t *uvl, const char *addr, gni_ipc_connect_fn cb, void *ud, char *err,
                    size_t errlen);

#endif /* GNI_IPC_H */
