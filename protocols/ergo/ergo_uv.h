/*
 * golemnet - an Ergo link over TCP on libuv (private to the library).
 *
 * A thin adapter around the sans-I/O cores: it owns the sockets and
 * timers, runs the EHS handshake (ehs.h) on each TCP link, then splits
 * ENP frames (enp.h) and hands them up whole; the pool core (pool.h)
 * decides which link a frame goes out on, when the dialler joins extra
 * links, and when a connection is over.
 *
 * An endpoint (gni_ergo_node) is an acceptor configured like Ergo's
 * AcceptorOptions (port, cookie, flags, max message size, pool size) and a
 * dialler (gni_ergo_dial). It does not decode payloads: frames go up as
 * bytes, to the Ergo node layer of the next issue.
 *
 * Spec: ergo-wire.md b (handshake, pool) and c (ENP, MaxMessageSize).
 * Thread context: the loop's thread only. Callbacks run from the loop.
 * As everywhere in golemnet, the application blocks or ignores SIGPIPE.
 */
#ifndef GNI_ERGO_UV_H
#define GNI_ERGO_UV_H

#include <uv.h>

#include "ehs.h"

typedef struct gni_ergo_node gni_ergo_node;
typedef struct gni_ergo_conn gni_ergo_conn;

typedef struct gni_ergo_callbacks {
    /* a connection finished its Start handshake (either side) */
    void (*on_conn)(gni_ergo_conn *c, void *user_data);
    /* one whole ENP frame (header included), valid during the call */
    void (*on_frame)(gni_ergo_conn *c, const uint8_t *frame, size_t len, void *user_data);
    /* the number of live links of @c changed (joins, losses) */
    void (*on_links)(gni_ergo_conn *c, unsigned nlinks, void *user_data);
    /* the connection is over (its last link closed); @c is freed after the call */
    void (*on_conn_down)(gni_ergo_conn *c, void *user_data);
    /* a link failed its handshake or framing (@err, @diag), for logs and tests */
    void (*on_link_error)(gni_ergo_node *n, int err, const char *diag, void *user_data);
} gni_ergo_callbacks;

/**
 * The endpoint's options (Ergo's AcceptorOptions plus the node's identity).
 * Strings are borrowed for the endpoint's lifetime. @reg: frozen registry
 * with the Ergo types. @host: bind address (NULL = 127.0.0.1); @port 0 =
 * any free port. @pool_size 0 = 3. @max_message_size 0 = unlimited.
 */
typedef struct gni_ergo_options {
    const gn_edf_registry *reg;
    const char *node;
    const char *cookie;
    const char *host;
    uint16_t port;
    uint16_t port_range; /* Ergo's PortRange: try port..port+range-1 (0 or 1: only port) */
    uint64_t flags;
    uint64_t max_message_size;
    uint32_t pool_size;
    int64_t creation;
    gni_ergo_callbacks cb;
    void *user_data;
    /*
     * TLS (docs/ergo.md "TLS"; needs the ergo_tls build option, else
     * gni_ergo_node_new answers GN_ENOTSUP when @tls is set).
     *  - tls: the acceptor runs TLS under the handshake (Ergo: the acceptor
     *    has a CertManager) and its DigestCert fields are filled.
     *  - tls_cert_file / tls_key_file: PEM files (leaf first, then its
     *    chain; its key). NULL with @tls: a self-signed ECDSA P-256
     *    certificate for the host part of @node is generated.
     *  - dialler (gni_ergo_dial_tls): tls_skip_verify does not verify the
     *    acceptor's chain and name (Ergo's InsecureSkipVerify; needed for a
     *    self-signed acceptor not in tls_ca_file); tls_ca_file: PEM trust
     *    anchors (NULL = the system's); tls_no_fingerprint does not check
     *    DigestCert (Ergo's handshake DisableTLSFingerprint).
     */
    bool tls;
    const char *tls_cert_file;
    const char *tls_key_file;
    bool tls_skip_verify;
    const char *tls_ca_file;
    bool tls_no_fingerprint;
} gni_ergo_options;

/**
 * Creates an endpoint listening on @o->host:@o->port, or with a
 * @o->port_range above 1 on the first port of port..port+range-1 that
 * binds (a port in use is skipped; GN_EADDRINUSE when none is free). 0,
 * GN_EINVAL, GN_ENOMEM, I/O errors; with @o->tls also GN_ENOTSUP (built
 * without ergo_tls), GN_EIO (a PEM file unreadable), GN_EBADKEY (PEM
 * unusable, key not matching), GN_ECRYPTO (no certificate could be
 * generated).
 */
int gni_ergo_node_new(uv_loop_t *loop, const gni_ergo_options *o, gni_ergo_node **out);

/** The port the acceptor listens on. */
uint16_t gni_ergo_node_port(const gni_ergo_node *n);

/**
 * Closes every link and the listener; @cb runs once every handle is
 * closed, after which @n is freed. Connections end (on_conn_down) first.
 */
void gni_ergo_node_close(gni_ergo_node *n, void (*cb)(void *ud), void *ud);

/**
 * Dials @ip:@port and runs the Start handshake expecting @peer_node (NULL
 * = any); then joins PoolSize - 1 links. on_conn reports success;
 * on_link_error a failure. Returns 0 or GN_EINVAL / GN_ENOMEM / I/O.
 */
int gni_ergo_dial(gni_ergo_node *n, const char *ip, uint16_t port, const char *peer_node);

/**
 * A Start dial through a route (Ergo's NetworkRoute): its own cookie and
 * flags, used by the Start handshake and by every Join of the connection.
 * @cookie: NUL-terminated, at most 255 bytes, copied; NULL or "" = the
 * node's. @flags: 0 = the node's. @on_result runs exactly once from the
 * loop: err 0 and the connection (before on_conn; it may end it), or a
 * negative error and NULL (connect failed, handshake refused or timed
 * out, GN_ECANCELED when the node closed first).
 */
typedef struct gni_ergo_dial_options {
    const char *cookie;
    uint64_t flags;
    bool tls; /* the route's TLS flag: as gni_ergo_dial_tls() */
    void (*on_result)(int err, gni_ergo_conn *c, void *user_data);
    void *user_data;
} gni_ergo_dial_options;

/**
 * gni_ergo_dial with @d. Returns 0 (then on_result will run), or
 * GN_EINVAL (NULL argument, cookie too long, @ip not a literal, node
 * closing) / GN_ENOMEM / I/O errors, and with @d->tls the errors of
 * gni_ergo_dial_tls() (then on_result is not called).
 */
int gni_ergo_dial_with(gni_ergo_node *n, const char *ip, uint16_t port, const char *peer_node,
                       const gni_ergo_dial_options *d);

/**
 * gni_ergo_dial() with the route's TLS flag (gen.Route.TLS; the registrar
 * reports it): with @tls every link of the connection, joins included, runs
 * TLS, verified as the options say against the host part of @peer_node
 * (else @ip), and the acceptor's DigestCert is checked unless
 * tls_no_fingerprint. Returns what gni_ergo_dial does, and GN_ENOTSUP (built
 * without ergo_tls), GN_EIO / GN_EBADKEY (tls_ca_file unreadable or without
 * certificates: the first TLS dial loads it).
 */
int gni_ergo_dial_tls(gni_ergo_node *n, const char *ip, uint16_t port, const char *peer_node,
                      bool tls);

/** Whether the acceptor runs TLS (the TLS flag of the routes it registers). */
bool gni_ergo_node_tls(const gni_ergo_node *n);

/**
 * Sends one ENP frame (copied) for local process @from_id on the pool link
 * the pool core picks (keep_order: Ergo's KeepNetworkOrder). The frame joins
 * the link's write batch and reaches the socket at the end of the current
 * loop turn (one uv_write per link and turn). Returns 0,
 * GN_ETOOBIG (above the peer's MaxMessageSize), GN_EAGAIN (that link has
 * 4 MiB queued: the peer is not reading; nothing taken, retry later),
 * GN_ECLOSED, GN_ENOMEM.
 */
int gni_ergo_conn_send(gni_ergo_conn *c, uint64_t from_id, bool keep_order,
                       const uint8_t *frame, size_t len);

/** Live links of @c. */
unsigned gni_ergo_conn_links(const gni_ergo_conn *c);

/** The handshake result of the connection's main link (peer name, ID, pool). */
const gni_ehs_result *gni_ergo_conn_info(const gni_ergo_conn *c);

/**
 * The peer's dictionaries (atom, type and error caches of its Introduce,
 * ergo-wire.md d "Dictionaries"): pass as gn_edf_decode_opts.dict to decode
 * the EDF payloads @c's peer sends. Owned by @c, valid until on_conn_down
 * returns; never changes during the connection. NULL only for a NULL @c.
 * Encode our own payloads with gn_edf_registry_dict(reg) instead.
 */
const gn_edf_dict *gni_ergo_conn_peer_dict(const gni_ergo_conn *c);

/** Aborts link @idx (0 = main) of @c, as a lost TCP link. Returns 0 or GN_ENOTFOUND. */
int gni_ergo_conn_kill_link(gni_ergo_conn *c, unsigned idx);

/*
 * Ergo's diagnostics for the shared TLS engine (core/gni_tlsbio.h): an EHS
 * message opens with 0x57 ('W', ergo-wire.md b), so a TLS acceptor that
 * sees it says the peer dialled without TLS; a failed verification names
 * Ergo's options.
 */
#define GNI_ERGO_TLS_PLAIN_FIRST 0x57u
#define GNI_ERGO_TLS_PLAIN_DIAG                                                                    \
    "the peer started a plain Ergo handshake on a TLS acceptor (it must dial with TLS: the "    \
    "route's TLS flag)"
#define GNI_ERGO_TLS_VERIFY_HINT                                                                   \
    " (Ergo's InsecureSkipVerify is tls_skip_verify; or trust it with tls_ca_file)"

#endif /* GNI_ERGO_UV_H */
