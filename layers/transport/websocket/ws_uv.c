/*
 * WebSocket transport component ("websocket"): libp2p /ip4|ip6/.../tcp/P/ws
 * over the TCP transport, with the framing core of ws.c. docs/websocket.md.
 *
 * The component runs a private instance of the tcp transport (found by its
 * name "tcp" in a private registry of the built-ins, so neither tcp's
 * internals nor its register symbol are used) and
 * wraps each of its connections in a WebSocket stream:
 *  - dial: TCP dial, then the client's Upgrade request, the 101 response
 *    checked, then the stream goes to the dialer; listen: TCP accept, the
 *    request checked and answered, then the stream goes to accept_cb. The
 *    handshake is bounded by config.dial_timeout and websocket.max_header.
 *  - write: every consumer write becomes one binary frame (split at
 *    WS_TX_FRAME bytes) in one copy (a client masks its frames, so the
 *    bytes are copied in any case) written below as one slice; the write
 *    completes when the write below does. Backpressure is the TCP
 *    stream's: when it refuses (GN_EAGAIN) the consumer is refused and
 *    its on_writable is forwarded.
 *  - read: frames from below are parsed as they come; payload goes up while
 *    the consumer reads; when it stops, the rest of the chunk is kept
 *    (bounded by WS_RX_MAX) and reading below stops.
 *  - pings are answered with pongs; a close frame from the peer is the
 *    end of its data (on_eof); shutdown sends our close frame (1000) and
 *    shuts TCP down; a protocol violation sends close 1002/1003/1009 and
 *    fails the stream (GN_EPROTO / GN_EFRAMESIZE).
 * /wss and /tls/ws (when built with OpenSSL 3: GNI_WS_HAVE_TLS): TLS runs
 * between TCP and the WebSocket bytes through core/tlsbio.c (OpenSSL behind
 * memory BIOs): ciphertext from below is fed and the plaintext goes the
 * /ws way; WebSocket bytes are encrypted and the ciphertext written below.
 * A write whose ciphertext the TCP stream refuses is kept (c->blocked) and
 * further writes are refused until on_writable. Server certificate and key:
 * websocket.cert_file / websocket.key_file; client trust: websocket.ca_file
 * (default: the system store), websocket.tls_skip_verify (tests only).
 */
#include "golemnet/host.h"
#include "golemnet/log.h"
#include "golemnet/registry.h"
#include "golemnet/transport.h"

#include "gni.h"
#include "ws.h"
#include "ws_config.h"
#if GNI_WS_HAVE_TLS
#include "gni_tlsbio.h"
#endif

#include <sodium.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WS_COMP "websocket"
/* defaults of the websocket.* node options */
#define WS_MAX_HEADER_DEFAULT 8192u
#define WS_MAX_FRAME_DEFAULT (16u << 20)
#define WS_MAX_MSG_DEFAULT (64u << 20)
/* largest frame we send */
#define WS_TX_FRAME (1u << 20)
/* received bytes kept while the consumer does not read */
#define WS_RX_MAX (4u << 20)
/* after the peer's close frame, how long we wait for the consumer's
 * shutdown before sending our close frame ourselves (docs/websocket.md) */
#define WS_CLOSE_WAIT (5 * GN_S)
/* a refused upgrade: how long the response may take to drain and the
 * client to close before we close (at most config.dial_timeout) */
#define WS_REFUSE_LINGER (2 * GN_S)

int gn_transport_websocket_register(gn_registry *reg);

typedef struct ws_state {
    gn_transport *tcp;
#if GNI_WS_HAVE_TLS
    gni_tlsbio_ctx *tls_srv, *tls_cli; /* made at the first wss listen / dial */
#endif
    size_t max_header;
    uint64_t max_frame, max_msg;
    bool host_set;
} ws_state;

typedef struct ws_listener ws_listener;
typedef struct ws_dial ws_dial;

enum { WS_HS = 0, WS_OPEN = 1 };

typedef struct ws_conn {
    gn_stream s; /* first */
    gn_transport *t;
    bool server;
    int phase;
    gni_ws rx;
    /* handshake */
    uint8_t *hs;
    size_t hs_len;
    size_t hs_scan;  /* header bytes searched for the end of the block */
    bool refusing;   /* refusal written, TCP shut down: closing on EOF or the timer */
    int refuse_rc;   /* why the request was refused */
    char key[GNI_WS_KEY_LEN];
    gn_timer timer;
    ws_listener *wl; /* server handshake: the listener that accepted */
    gni_list link;   /* on wl->pending */
    ws_dial *dial;   /* client handshake */
    /* open */
    uint8_t *buf; /* received bytes not yet parsed (consumer stopped) */
    size_t buf_len;
    bool eof_pending, drain_scheduled, free_pending;
    bool close_sent, close_recv, shut_pending;
    bool dead;    /* closing */
    bool counted; /* in t->nconns */
    uint8_t ctl[GNI_WS_HDR_MAX + GNI_WS_CTL_MAX]; /* a pong or close refused by below */
    size_t ctl_len;
    /* At most one internal write (handshake bytes, a pong, a close frame)
     * is answered at a time for a pong: while one is in flight (or a frame
     * waits in ctl, or ciphertext in blocked) a ping only overwrites this
     * slot (the latest ping's payload, RFC 6455 section 5.5.3), sent when
     * the write completes. So a peer that floods pings and never reads
     * costs one slot, not a write per ping. */
    unsigned int_inflight;              /* internal writes accepted below, not completed */
    uint8_t pong[GNI_WS_CTL_MAX];
    size_t pong_len;
    bool pong_pending;
    const char *suffix; /* "/ws", "/wss" or "/tls/ws": how addresses are reported */
#if GNI_WS_HAVE_TLS
    gni_tlsbio *tls;            /* wss: the TLS session, or NULL */
#endif
    struct ws_ct *blocked;   /* wss: ciphertext the stream below refused */
} ws_conn;

struct ws_listener {
    gn_listener l; /* first */
    gn_listener *tcp_l;
    const char *suffix; /* "/ws", "/wss" or "/tls/ws" */
    gni_list pending;     /* server handshakes in progress */
    gn_listener_close_cb close_cb;
    void *close_arg;
};

struct ws_dial {
    gn_op op;
    gn_transport *t;
    gn_op *tcp_op;
    ws_conn *c;
    gn_dial_cb cb;
    void *arg;
    char host[264];       /* Host header: the /sni name (up to 255) or the IP, and the port */
    char ip[256];         /* wss: the name the certificate must carry (/sni name, else the IP) */
    const char *suffix;
    int status; /* why the handshake failed */
    bool canceled;
    bool closing; /* failed: the socket is closing, the callback follows */
};

static const gn_stream_ops ws_stream_ops;

/* ---- addresses ---- */

/*
 * Splits @ma (/ip4|ip6/A/tcp/P then /ws, /wss, /tls/ws or /tls/sni/H/ws,
 * then an optional /p2p/ID) into the TCP address below (*@tcp, caller
 * frees; NULL: only check) and the WebSocket suffix (*@suffix, static;
 * /tls/sni/H/ws gives "/tls/ws"). /wss and /tls/... only with TLS built in.
 * @sni (may be NULL): the server name H, NUL-terminated, or "" without
 * /sni (a resolved /dns*: docs/dns.md); 256 bytes. GN_ENOTRANSPORT if not
 * ours.
 */
static int ws_split(const gn_multiaddr *ma, gn_multiaddr **tcp, const char **suffix, char *sni)
{
    size_t n = ma ? gn_multiaddr_count(ma) : 0;
    gn_ma_component c0, c1, c2, c3, c4;
    if (sni) {
        sni[0] = '\0';
    }
    if (n < 3 || n > 6 || gn_multiaddr_component(ma, 0, &c0) < 0 ||
        gn_multiaddr_component(ma, 1, &c1) < 0 || gn_multiaddr_component(ma, 2, &c2) < 0) {
        return GN_ENOTRANSPORT;
    }
    if ((c0.code != GN_MA_IP4 && c0.code != GN_MA_IP6) || c1.code != GN_MA_TCP) {
        return GN_ENOTRANSPORT;
    }
    int64_t tls_code = gn_ma_protocol_code("tls"); /* absent from older multiaddr tables */
    size_t end = 3;
    const char *sfx;
    if (c2.code == GN_MA_WS) {
        sfx = "/ws";
    } else if (GNI_WS_HAVE_TLS && c2.code == GN_MA_WSS) {
        sfx = "/wss";
    } else if (GNI_WS_HAVE_TLS && tls_code > 0 && c2.code == (uint64_t)tls_code && n >= 4 &&
               gn_multiaddr_component(ma, 3, &c3) == 0 && c3.code == GN_MA_WS) {
        sfx = "/tls/ws";
        end = 4;
    } else if (GNI_WS_HAVE_TLS && tls_code > 0 && c2.code == (uint64_t)tls_code && n >= 5 &&
               gn_multiaddr_component(ma, 3, &c3) == 0 && c3.code == GN_MA_SNI &&
               gn_multiaddr_component(ma, 4, &c4) == 0 && c4.code == GN_MA_WS) {
        /* the host name of a resolved /dns*: SNI and the certificate check */
        sfx = "/tls/ws";
        end = 5;
        if (sni) {
            memcpy(sni, c3.value, c3.value_len); /* 1..255 bytes (multiaddr rule) */
            sni[c3.value_len] = '\0';
        }
    } else {
        return GN_ENOTRANSPORT;
    }
    if (n > end + 1 || (n == end + 1 && (gn_multiaddr_component(ma, end, &c3) < 0 ||
                                         c3.code != GN_MA_P2P))) {
        return GN_ENOTRANSPORT;
    }
    if (suffix) {
        *suffix = sfx;
    }
    if (!tcp) {
        return 0;
    }
    gn_multiaddr *m = NULL;
    int rc = n == end + 1 ? gn_multiaddr_decapsulate_code(ma, GN_MA_P2P, &m)
                          : gn_multiaddr_dup(ma, &m);
    if (rc < 0) {
        return rc;
    }
    rc = gn_multiaddr_decapsulate_code(m, c2.code, tcp);
    gn_multiaddr_free(m);
    return rc;
}

static int ws_add_suffix(const gn_multiaddr *tcp, const char *suffix, gn_multiaddr **out)
{
    gn_multiaddr *sfx = NULL;
    int rc = gn_multiaddr_parse(suffix, &sfx);
    if (rc == 0) {
        rc = gn_multiaddr_encapsulate(tcp, sfx, out);
        gn_multiaddr_free(sfx);
    }
    return rc;
}

/* ---- transport ---- */

/* Option websocket.@key in [@lo, @hi] into *@out (@def when absent); GN_EINVAL out of range. */
static int ws_opt(gn_transport *t, const char *key, uint64_t def, uint64_t lo, uint64_t hi,
                  uint64_t *out)
{
    const char *v = t->host ? gn_host_option(t->host, WS_COMP, key, 0) : NULL;
    *out = def;
    if (!v) {
        return 0;
    }
    char *end = NULL;
    unsigned long long x = strtoull(v, &end, 10);
    if (!end || end == v || *end || x < lo || x > hi) {
        GN_LOG(GN_LOG_ERR, WS_COMP, "option websocket.%s=%s: not a number in [%llu, %llu]", key,
               v, (unsigned long long)lo, (unsigned long long)hi);
        return GN_EINVAL;
    }
    *out = x;
    return 0;
}

/* Reads the node options once a host is known (set after init). GN_EINVAL: a bad option. */
static int ws_host_setup(gn_transport *t)
{
    ws_state *st = t->state;
    uint64_t hdr, frame, msg;
    if (st->host_set) {
        return 0;
    }
    st->tcp->host = t->host;
    int rc = ws_opt(t, "max_header", WS_MAX_HEADER_DEFAULT, 1024, 1u << 20, &hdr);
    if (rc == 0) {
        rc = ws_opt(t, "max_frame", WS_MAX_FRAME_DEFAULT, 1024, 1u << 30, &frame);
    }
    if (rc == 0) {
        rc = ws_opt(t, "max_message", WS_MAX_MSG_DEFAULT, 1024, (uint64_t)1 << 40, &msg);
    }
    if (rc < 0) {
        return rc;
    }
    st->host_set = true;
    st->max_header = (size_t)hdr;
    st->max_frame = frame;
    st->max_msg = msg < frame ? frame : msg;
    return 0;
}

static int ws_init(gn_transport *t)
{
    ws_state *st = t->state;
    gn_registry *reg = NULL;
    int rc = gn_registry_new(&reg);
    if (rc < 0) {
        return rc;
    }
    /* the tcp component through core's registry API (the built-in list),
     * not by a symbol of its own: components meet only through ops tables */
    const gn_transport_ops *tcp_ops = NULL;
    if ((rc = gn_registry_add_builtins(reg)) == 0) {
        tcp_ops = (const gn_transport_ops *)gn_registry_find(reg, GN_LAYER_TRANSPORT, "tcp");
    }
    gn_registry_free(reg); /* ops tables are static */
    if (!tcp_ops) {
        return rc < 0 ? rc : GN_ENOTFOUND;
    }
    if ((rc = gn_transport_new(tcp_ops, t->loop, &t->config, &st->tcp)) < 0) {
        return rc;
    }
    st->max_header = WS_MAX_HEADER_DEFAULT;
    st->max_frame = WS_MAX_FRAME_DEFAULT;
    st->max_msg = WS_MAX_MSG_DEFAULT;
    return 0;
}

static void ws_fini(gn_transport *t)
{
    ws_state *st = t->state;
    if (st->tcp) {
        gn_transport_free(st->tcp);
        st->tcp = NULL;
    }
#if GNI_WS_HAVE_TLS
    gni_tlsbio_ctx_free(st->tls_srv);
    gni_tlsbio_ctx_free(st->tls_cli);
    st->tls_srv = st->tls_cli = NULL;
#endif
}

#if GNI_WS_HAVE_TLS
/* Reads the PEM file named by option websocket.@key into *@out (caller frees).
 * 0 (absent option: *@out NULL), GN_EINVAL (unreadable or over 1 MiB). */
static int ws_read_pem(gn_transport *t, const char *key, gn_slice *out, uint8_t **owned)
{
    *owned = NULL;
    *out = (gn_slice){0};
    const char *path = t->host ? gn_host_option(t->host, WS_COMP, key, 0) : NULL;
    if (!path) {
        return 0;
    }
    FILE *f = fopen(path, "rb");
    uint8_t *buf = f ? gn_malloc(1u << 20) : NULL;
    size_t n = buf ? fread(buf, 1, 1u << 20, f) : 0;
    bool ok = buf && n > 0 && n < (1u << 20) && !ferror(f);
    if (f) {
        fclose(f);
    }
    if (!ok) {
        GN_LOG(GN_LOG_ERR, WS_COMP, "websocket.%s=%s: cannot read the PEM file (or over 1 MiB)",
               key, path);
        gn_free(buf);
        return GN_EINVAL;
    }
    *owned = buf;
    *out = gn_slice_of(buf, n);
    return 0;
}

/* The server (@server) or client TLS context, made on first use from the options. */
static int ws_tls_ctx(gn_transport *t, bool server, gni_tlsbio_ctx **out)
{
    ws_state *st = t->state;
    gni_tlsbio_ctx **slot = server ? &st->tls_srv : &st->tls_cli;
    if (*slot) {
        *out = *slot;
        return 0;
    }
    gni_tlsbio_ctx_config cfg = {.server = server};
    uint8_t *cert = NULL, *key = NULL, *ca = NULL;
    int rc;
    char diag[200] = "";
    if (server) {
        if ((rc = ws_read_pem(t, "cert_file", &cfg.cert_pem, &cert)) == 0) {
            rc = ws_read_pem(t, "key_file", &cfg.key_pem, &key);
        }
        if (rc == 0 && (!cert || !key)) {
            GN_LOG(GN_LOG_ERR, WS_COMP,
                   "listening on /wss needs the options websocket.cert_file and websocket.key_file");
            rc = GN_EINVAL;
        }
    } else {
        rc = ws_read_pem(t, "ca_file", &cfg.ca_pem, &ca);
        const char *sv = t->host ? gn_host_option(t->host, WS_COMP, "tls_skip_verify", 0) : NULL;
        cfg.skip_verify = sv && (strcmp(sv, "true") == 0 || strcmp(sv, "1") == 0);
        cfg.verify_hint = " (trust its issuer with websocket.ca_file; websocket.tls_skip_verify"
                          " turns the check off, tests only)";
    }
    if (rc == 0) {
        rc = gni_tlsbio_ctx_new(&cfg, slot, diag, sizeof diag);
        if (rc < 0) {
            GN_LOG(GN_LOG_ERR, WS_COMP, "TLS setup failed: %s (%s)", diag, gn_err_name(rc));
        }
    }
    gn_free(cert);
    gn_free(key);
    gn_free(ca);
    if (rc == 0) {
        *out = *slot;
    }
    return rc;
}
#endif

static bool ws_handles(const gn_transport *t, const gn_multiaddr *ma)
{
    (void)t;
    return ws_split(ma, NULL, NULL, NULL) == 0;
}

/* ---- the connection ---- */

static void ws_below_data(gn_stream *below, void *ud, const uint8_t *data, size_t len);
static void ws_below_eof(gn_stream *below, void *ud);
static void ws_below_error(gn_stream *below, void *ud, int err);
static void ws_below_writable(gn_stream *below, void *ud);
static const gn_stream_handler ws_below_handler = {ws_below_data, ws_below_eof, ws_below_error,
                                                   ws_below_writable};

static void ws_ctl_written(ws_conn *c);

/* An internal write (not a consumer's): a heap copy of its bytes. */
typedef struct ws_raw {
    ws_conn *c;
    uint8_t data[];
} ws_raw;

static void ws_copy_done(void *arg, int status)
{
    (void)status;
    ws_raw *r = arg;
    ws_conn *c = r->c;
    gn_free(r);
    ws_ctl_written(c);
}

/* Writes a heap copy of @len bytes below; GN_EAGAIN keeps nothing. */
static int ws_write_raw(ws_conn *c, const void *data, size_t len)
{
    ws_raw *r = gn_malloc(sizeof *r + len);
    if (!r) {
        return GN_ENOMEM;
    }
    r->c = c;
    memcpy(r->data, data, len);
    gn_slice iov = gn_slice_of(r->data, len);
    c->int_inflight++; /* before: a completion may come from inside the write */
    int rc = gn_stream_write(c->s.below, &iov, 1, ws_copy_done, r);
    if (rc < 0) {
        c->int_inflight--;
        gn_free(r);
    }
    return rc;
}

/* A consumer write's frames: completes through ws_write_done. */
typedef struct ws_out {
    ws_conn *c;
    gn_write_cb cb;
    void *arg;
    size_t len;
    uint8_t data[];
} ws_out;

static void ws_write_done(void *arg, int status)
{
    ws_out *o = arg;
    ws_conn *c = o->c;
    gn_write_cb cb = o->cb;
    void *cb_arg = o->arg;
    size_t len = o->len;
    gn_free(o);
    gn_stream_complete_write(&c->s, cb, cb_arg, len, status);
}

/* wss: ciphertext written below, carrying the consumer write @o (or none). */
typedef struct ws_ct {
    ws_out *o;
    ws_conn *c; /* for an internal write (o NULL) */
    size_t len;
    uint8_t data[];
} ws_ct;

static void ws_ct_done(void *arg, int status)
{
    ws_ct *ct = arg;
    ws_out *o = ct->o;
    ws_conn *c = ct->c;
    gn_free(ct);
    if (o) {
        ws_write_done(o, status);
    } else {
        ws_ctl_written(c);
    }
}

#if GNI_WS_HAVE_TLS
/*
 * Writes the pending ciphertext below, with @o completing when it is sent.
 * Returns 0 (written, or kept as c->blocked when below refused), or an
 * error (nothing of @o taken).
 */
static int ws_tls_flush(ws_conn *c, ws_out *o)
{
    size_t n = gni_tlsbio_pending(c->tls);
    if (n == 0) {
        return o ? GN_EINTERNAL : 0;
    }
    ws_ct *ct = gn_malloc(sizeof *ct + n);
    if (!ct) {
        return GN_ENOMEM;
    }
    gn_buf b;
    gn_buf_init(&b, ct->data, n);
    ct->len = gni_tlsbio_drain(c->tls, &b);
    ct->o = o;
    ct->c = c;
    gn_slice sl = gn_slice_of(ct->data, ct->len);
    if (!o) {
        c->int_inflight++;
    }
    int rc = gn_stream_write(c->s.below, &sl, 1, ws_ct_done, ct);
    if (rc == GN_EAGAIN && !c->blocked) {
        c->blocked = ct; /* encrypted already: sent on writable, more writes refused */
        return 0;
    }
    if (rc < 0) {
        if (!o) {
            c->int_inflight--;
        }
        gn_free(ct);
    }
    return rc;
}
#endif

/*
 * Sends @len WebSocket bytes at @data towards the peer; @o (NULL: an
 * internal write, copied) completes with them. Returns 0, GN_EAGAIN (below
 * is full: nothing taken) or an error (nothing of @o taken).
 */
static int ws_emit(ws_conn *c, const uint8_t *data, size_t len, ws_out *o)
{
#if GNI_WS_HAVE_TLS
    if (c->tls) {
        if (c->blocked) {
            return GN_EAGAIN;
        }
        int rc = gni_tlsbio_write(c->tls, data, len);
        return rc < 0 ? rc : ws_tls_flush(c, o);
    }
#endif
    if (o) {
        gn_slice sl = gn_slice_of(data, len);
        return gn_stream_write(c->s.below, &sl, 1, ws_write_done, o);
    }
    return ws_write_raw(c, data, len);
}

static const uint8_t *ws_new_mask(ws_conn *c, uint8_t mask[4])
{
    if (c->server) {
        return NULL;
    }
    randombytes_buf(mask, 4); /* section 5.3: a fresh unpredictable key per frame */
    return mask;
}

/* Sends a control frame; keeps it for on_writable when below is full. */
static int ws_send_ctl(ws_conn *c, unsigned opcode, const uint8_t *payload, size_t len)
{
    uint8_t frame[GNI_WS_HDR_MAX + GNI_WS_CTL_MAX];
    uint8_t m[4];
    const uint8_t *mask = ws_new_mask(c, m);
    size_t n = gni_ws_frame_header(frame, opcode, true, len, mask);
    memcpy(frame + n, payload, len);
    if (mask) {
        gni_ws_mask(frame + n, len, mask, 0);
    }
    int rc = c->ctl_len ? GN_EAGAIN : ws_emit(c, frame, n + len, NULL);
    if (rc == GN_EAGAIN) {
        if (c->ctl_len && opcode == GNI_WS_OP_PONG) {
            /* a frame waits (ws_on_ping sends pongs only when none does) */
            memcpy(c->pong, payload, len);
            c->pong_len = len;
            c->pong_pending = true;
            return 0;
        }
        memcpy(c->ctl, frame, n + len);
        c->ctl_len = n + len;
        return 0;
    }
    return rc;
}

static int ws_send_close(ws_conn *c, unsigned code)
{
    if (c->close_sent) {
        return 0;
    }
    uint8_t payload[2] = {(uint8_t)(code >> 8), (uint8_t)code};
    c->close_sent = true;
    return ws_send_ctl(c, GNI_WS_OP_CLOSE, payload, 2);
}

/* Core callbacks while open. */
static int ws_on_data(void *ud, const uint8_t *data, size_t len)
{
    ws_conn *c = ud;
    gn_stream_emit_data(&c->s, data, len);
    return c->dead || !gn_stream_is_reading(&c->s) ? 1 : 0;
}

static int ws_on_ping(void *ud, const uint8_t *data, size_t len)
{
    ws_conn *c = ud;
    if (c->close_sent) {
        return 0;
    }
    if (c->int_inflight > 0 || c->ctl_len || c->blocked) {
        /* one pong at a time: this ping's answer replaces any unsent one
         * (section 5.5.3: answering the latest ping only is allowed) */
        memcpy(c->pong, data, len);
        c->pong_len = len;
        c->pong_pending = true;
        return 0;
    }
    int rc = ws_send_ctl(c, GNI_WS_OP_PONG, data, len);
    return rc < 0 ? rc : 0;
}

/* Sends the pending pong once no internal write is in flight or waiting. */
static void ws_pong_flush(ws_conn *c)
{
    if (!c->pong_pending || c->dead || c->close_sent || c->int_inflight > 0 || c->ctl_len ||
        c->blocked || c->phase != WS_OPEN || (c->s.flags & GN_STREAM_ERRORED)) {
        if (c->close_sent) {
            c->pong_pending = false; /* no pong after our close frame (section 5.5.1) */
        }
        return;
    }
    c->pong_pending = false;
    int rc = ws_send_ctl(c, GNI_WS_OP_PONG, c->pong, c->pong_len);
    if (rc < 0) {
        gn_stream_emit_error(&c->s, rc);
    }
}

/* An internal write completed (or was cancelled): the next pong may go. */
static void ws_ctl_written(ws_conn *c)
{
    if (c->int_inflight > 0) {
        c->int_inflight--;
    }
    ws_pong_flush(c);
}

/*
 * The peer's close frame came and the consumer has not shut down within
 * WS_CLOSE_WAIT: section 5.5.1 wants our close frame "as soon as
 * practical"; send it (1000) and shut TCP down. Writes fail (GN_EPIPE).
 */
static void ws_close_wait_timeout(gn_timer *tm, void *arg)
{
    (void)tm;
    ws_conn *c = arg;
    if (c->dead || c->close_sent || (c->s.flags & GN_STREAM_ERRORED)) {
        return;
    }
    GN_LOG(GN_LOG_DEBUG, WS_COMP, "answering the peer's close frame after %d ms",
           (int)(WS_CLOSE_WAIT / GN_MS));
    int rc = ws_send_close(c, GNI_WS_CLOSE_NORMAL);
    if (rc < 0) {
        gn_stream_emit_error(&c->s, rc);
    } else if (c->ctl_len) {
        c->shut_pending = true; /* after the close frame */
    } else {
        (void)gn_stream_shutdown(c->s.below);
    }
}

static int ws_on_close(void *ud, unsigned code, const uint8_t *reason, size_t len)
{
    ws_conn *c = ud;
    c->close_recv = true;
    GN_LOG(GN_LOG_DEBUG, WS_COMP, "peer sent close %u (%.*s)", code, (int)GNI_MIN(len, 64),
           (const char *)reason);
    if (c->close_sent) {
        (void)gn_stream_shutdown(c->s.below); /* both close frames went: end TCP */
    } else {
        /* libp2p half-close: the consumer may still write until it shuts
         * down, but not for ever (docs/websocket.md "Closing") */
        (void)gn_timer_start(&c->timer, WS_CLOSE_WAIT, ws_close_wait_timeout, c);
    }
    gn_stream_emit_eof(&c->s);
    return 1;
}

static const gni_ws_callbacks ws_core_cbs = {ws_on_data, ws_on_ping, NULL, ws_on_close};

/* Parses @len bytes while the consumer reads; returns the bytes consumed. */
static size_t ws_process(ws_conn *c, const uint8_t *in, size_t len)
{
    size_t off = 0;
    while (off < len && !c->dead && !c->close_recv && gn_stream_is_reading(&c->s) &&
           !(c->s.flags & GN_STREAM_ERRORED)) {
        size_t used = 0;
        int rc = gni_ws_feed(&c->rx, in + off, len - off, &used);
        off += used;
        if (rc < 0) {
            unsigned code = gni_ws_fail_code(&c->rx);
            GN_LOG(GN_LOG_INFO, WS_COMP, "closing connection: %s (close code %u)",
                   gn_err_name(rc), code);
            if (code) {
                (void)ws_send_close(c, code);
            }
            gn_stream_read_stop(c->s.below);
            gn_stream_emit_error(&c->s, rc);
            return len;
        }
        if (used == 0) {
            break;
        }
    }
    if (c->close_recv) {
        return len; /* nothing after the close frame counts */
    }
    return off;
}

static void ws_finish_eof(ws_conn *c)
{
    if (c->close_recv) {
        return; /* on_eof went with the close frame */
    }
    if (gni_ws_partial(&c->rx)) {
        gn_stream_emit_error(&c->s, GN_EBADFRAME); /* cut inside a frame */
    } else {
        gn_stream_emit_eof(&c->s); /* TCP ended without a close frame: still the end */
    }
}

static int ws_buf_keep(ws_conn *c, const uint8_t *data, size_t len)
{
    if (len > WS_RX_MAX - c->buf_len) {
        return GN_ETOOBIG;
    }
    uint8_t *nb = gn_realloc(c->buf, c->buf_len + len);
    if (!nb) {
        return GN_ENOMEM;
    }
    memcpy(nb + c->buf_len, data, len);
    c->buf = nb;
    c->buf_len += len;
    return 0;
}

static void ws_drain(gn_loop *loop, void *arg)
{
    (void)loop;
    ws_conn *c = arg;
    c->drain_scheduled = false;
    if (c->free_pending) {
        gn_free(c);
        return;
    }
    if (c->dead || !gn_stream_is_reading(&c->s)) {
        return;
    }
    size_t n = ws_process(c, c->buf, c->buf_len);
    if (n >= c->buf_len) {
        gn_free(c->buf);
        c->buf = NULL;
        c->buf_len = 0;
    } else {
        memmove(c->buf, c->buf + n, c->buf_len - n);
        c->buf_len -= n;
    }
    if (c->buf_len == 0 && gn_stream_is_reading(&c->s) && !c->dead &&
        !(c->s.flags & GN_STREAM_ERRORED)) {
        if (c->eof_pending) {
            c->eof_pending = false;
            ws_finish_eof(c);
        } else if (!c->close_recv) {
            gn_stream_read_start(c->s.below);
        }
    }
}

static void ws_schedule_drain(ws_conn *c)
{
    if (!c->drain_scheduled && gn_loop_defer(c->s.loop, ws_drain, c) == 0) {
        c->drain_scheduled = true;
    }
}

/* ---- handshake ---- */

static void ws_listener_done(ws_listener *wl, ws_conn *c, int status);
static void ws_hs_timeout(gn_timer *tm, void *arg);
static void ws_dial_done(ws_dial *d, int status);

/* The handshake ended: hand the stream over or fail. */
static void ws_hs_end(ws_conn *c, int status)
{
    if (c->refusing) {
        status = c->refuse_rc; /* EOF, error or linger timeout after a refusal */
    }
    gn_timer_stop(&c->timer);
    gn_free(c->hs);
    c->hs = NULL;
    if (status == 0) {
        c->phase = WS_OPEN;
        ws_state *st = c->t->state;
        gni_ws_init(&c->rx, c->server, st->max_frame, st->max_msg, &ws_core_cbs, c);
        gn_stream_read_stop(c->s.below); /* until the consumer reads */
    }
    if (c->server) {
        ws_listener_done(c->wl, c, status);
    } else {
        ws_dial_done(c->dial, status);
    }
}

static void ws_hs_input(ws_conn *c, const uint8_t *data, size_t len)
{
    ws_state *st = c->t->state;
    if (c->refusing) {
        return; /* refused: input is read only to see the client's EOF */
    }
    /* c->hs_len < max_header here (past it the parse ended the handshake), so
     * the buffer stays under max_header plus one read from below (64 KiB) */
    uint8_t *nb = gn_realloc(c->hs, c->hs_len + len);
    if (!nb) {
        ws_hs_end(c, GN_ENOMEM);
        return;
    }
    c->hs = nb;
    memcpy(c->hs + c->hs_len, data, len);
    c->hs_len += len;
    size_t used = 0;
    int rc;
    if (c->server) {
        rc = gni_ws_parse_request(c->hs, c->hs_len, st->max_header, &c->hs_scan, &used, c->key);
        if (rc == 0) {
            char resp[256];
            int n = gni_ws_build_response(resp, sizeof resp, c->key);
            rc = n < 0 ? n : ws_emit(c, (const uint8_t *)resp, (size_t)n, NULL);
        } else if (rc != GN_EAGAIN) {
            char resp[256];
            int n = gni_ws_build_refusal(resp, sizeof resp, rc);
            GN_LOG(GN_LOG_INFO, WS_COMP, "refusing an upgrade request: %s", gn_err_name(rc));
            if (n > 0 && ws_emit(c, (const uint8_t *)resp, (size_t)n, NULL) == 0) {
                /* The response must reach the client: closing now would
                 * cancel it, or reset the connection on unread input. Shut
                 * TCP down behind it (FIN after the bytes), discard input,
                 * and close on the client's EOF or after the linger time. */
                c->refusing = true;
                c->refuse_rc = rc;
                gn_free(c->hs);
                c->hs = NULL;
                c->hs_len = 0;
                gn_time linger = GNI_MIN(c->t->config.dial_timeout, WS_REFUSE_LINGER);
                gn_timer_stop(&c->timer);
                if (gn_stream_shutdown(c->s.below) == 0 &&
                    gn_timer_start(&c->timer, linger, ws_hs_timeout, c) == 0) {
                    return;
                }
            }
        }
    } else {
        rc = gni_ws_parse_response(c->hs, c->hs_len, st->max_header, &c->hs_scan, &used, c->key);
        if (rc < 0 && rc != GN_EAGAIN) {
            GN_LOG(GN_LOG_INFO, WS_COMP, "server refused the upgrade: %s", gn_err_name(rc));
        }
    }
    if (rc == GN_EAGAIN) {
        return;
    }
    if (rc == 0 && used < c->hs_len) {
        /* frames right behind the header block: parsed once the consumer reads */
        rc = ws_buf_keep(c, c->hs + used, c->hs_len - used);
    }
    ws_hs_end(c, rc);
}

static void ws_hs_timeout(gn_timer *tm, void *arg)
{
    (void)tm;
    ws_conn *c = arg;
    if (!c->refusing) {
        GN_LOG(GN_LOG_INFO, WS_COMP, "WebSocket handshake timed out");
    }
    ws_hs_end(c, GN_ETIMEDOUT);
}

static ws_conn *ws_conn_new(gn_transport *t, gn_stream *below, bool server)
{
    ws_conn *c = gn_calloc(1, sizeof *c);
    if (!c) {
        return NULL;
    }
    if (gn_stream_init(&c->s, &ws_stream_ops, t->loop, below) < 0) {
        gn_free(c);
        return NULL;
    }
    c->t = t;
    c->server = server;
    gn_timer_init(t->loop, &c->timer);
    gn_stream_set_handler(below, &ws_below_handler, c);
    t->nconns++;
    c->counted = true;
    return c;
}

/* Releases what a connection holds besides itself; its below stream has closed. */
static void ws_conn_release(ws_conn *c)
{
    gn_timer_stop(&c->timer); /* never freed while in the timer heap */
    if (c->counted) {
        c->t->nconns--;
        c->counted = false;
    }
    if (c->blocked) {
        ws_ct *ct = c->blocked;
        c->blocked = NULL;
        ws_ct_done(ct, GN_ECANCELED);
    }
    gn_free(c->buf);
    c->buf = NULL;
    gn_free(c->hs);
    c->hs = NULL;
#if GNI_WS_HAVE_TLS
    gni_tlsbio_free(c->tls);
    c->tls = NULL;
#endif
}

/* Frees a connection whose below stream has closed (handshake failures). */
static void ws_conn_discard_closed(gn_stream *below, void *arg)
{
    (void)below;
    ws_conn *c = arg;
    ws_conn_release(c);
    gn_free(c);
}

/* ---- below events ---- */

static void ws_plain_input(ws_conn *c, const uint8_t *data, size_t len);
static void ws_plain_eof(ws_conn *c);

#if GNI_WS_HAVE_TLS
/* A failure under the WebSocket layer (TLS): ends the handshake or fails the stream. */
static void ws_fail_below(ws_conn *c, int err)
{
    if (c->phase == WS_HS) {
        ws_hs_end(c, err);
    } else if (!(c->s.flags & GN_STREAM_ERRORED)) {
        gn_stream_read_stop(c->s.below);
        gn_stream_emit_error(&c->s, err);
    }
}
#endif

static void ws_below_data(gn_stream *below, void *ud, const uint8_t *data, size_t len)
{
    (void)below;
    ws_conn *c = ud;
    if (c->dead) {
        return;
    }
#if GNI_WS_HAVE_TLS
    if (c->tls) {
        int rc = gni_tlsbio_feed(c->tls, data, len);
        if (rc == 0 && !c->blocked) {
            /* handshake messages, key update answers; while a record is held
             * (blocked) they stay in the TLS session, in order, and go from
             * ws_below_writable once it has gone */
            rc = ws_tls_flush(c, NULL);
        }
        while (rc == 0 && !c->dead && !(c->s.flags & GN_STREAM_ERRORED)) {
            uint8_t pt[GNI_TLSBIO_RECORD_MAX];
            int n = gni_tlsbio_read(c->tls, pt, sizeof pt);
            if (n == 0) {
                break;
            }
            if (n == GN_EEOF) {
                ws_plain_eof(c); /* close_notify */
                return;
            }
            if (n < 0) {
                rc = n;
                break;
            }
            ws_plain_input(c, pt, (size_t)n);
            if (!c->dead && c->tls && !c->blocked) {
                rc = ws_tls_flush(c, NULL);
            }
        }
        if (rc < 0 && !c->dead) {
            GN_LOG(GN_LOG_INFO, WS_COMP, "TLS failed: %s (%s)", gni_tlsbio_diag(c->tls),
                   gn_err_name(rc));
            ws_fail_below(c, rc);
        }
        return;
    }
#endif
    ws_plain_input(c, data, len);
}

/* WebSocket bytes from the peer (after TLS for wss). */
static void ws_plain_input(ws_conn *c, const uint8_t *data, size_t len)
{
    if (c->dead) {
        return;
    }
    if (c->phase == WS_HS) {
        ws_hs_input(c, data, len);
        return;
    }
    size_t n = 0;
    if (c->buf_len == 0) {
        n = ws_process(c, data, len);
    }
    if (n < len && !c->dead && !(c->s.flags & GN_STREAM_ERRORED) && !c->close_recv) {
        int rc = ws_buf_keep(c, data + n, len - n);
        gn_stream_read_stop(c->s.below);
        if (rc < 0) {
            gn_stream_emit_error(&c->s, rc);
        }
    }
}

static void ws_below_eof(gn_stream *below, void *ud)
{
    (void)below;
    ws_conn *c = ud;
    if (c->dead) {
        return;
    }
#if GNI_WS_HAVE_TLS
    if (c->tls) {
        int rc = gni_tlsbio_eof(c->tls);
        if (rc < 0) {
            GN_LOG(GN_LOG_INFO, WS_COMP, "TLS ended badly: %s", gni_tlsbio_diag(c->tls));
            ws_fail_below(c, rc);
            return;
        }
    }
#endif
    ws_plain_eof(c);
}

/* The peer's bytes ended (TCP FIN, or TLS close_notify for wss). */
static void ws_plain_eof(ws_conn *c)
{
    if (c->dead || (c->s.flags & GN_STREAM_ERRORED)) {
        return;
    }
    if (c->phase == WS_HS) {
        ws_hs_end(c, GN_EEOF);
        return;
    }
    if (c->buf_len > 0) {
        c->eof_pending = true;
        return;
    }
    ws_finish_eof(c);
}

static void ws_below_error(gn_stream *below, void *ud, int err)
{
    (void)below;
    ws_conn *c = ud;
    if (c->dead) {
        return;
    }
    if (c->phase == WS_HS) {
        ws_hs_end(c, err);
        return;
    }
    gn_stream_emit_error(&c->s, err);
}

static void ws_below_writable(gn_stream *below, void *ud)
{
    ws_conn *c = ud;
    if (c->dead) {
        return;
    }
    if (c->blocked) {
        ws_ct *ct = c->blocked;
        gn_slice sl = gn_slice_of(ct->data, ct->len);
        int rc = gn_stream_write(below, &sl, 1, ws_ct_done, ct);
        if (rc == GN_EAGAIN) {
            return;
        }
        c->blocked = NULL;
        if (rc < 0) {
            ws_ct_done(ct, rc);
            if (c->phase == WS_OPEN) {
                gn_stream_emit_error(&c->s, rc);
            }
            return;
        }
    }
#if GNI_WS_HAVE_TLS
    if (c->tls) {
        /* ciphertext queued in the session while the held record waited */
        int rc = ws_tls_flush(c, NULL);
        if (rc < 0) {
            ws_fail_below(c, rc);
            return;
        }
        if (c->blocked) {
            return;
        }
    }
#endif
    if (c->phase == WS_HS) {
        return;
    }
    if (c->ctl_len) {
        int rc = ws_emit(c, c->ctl, c->ctl_len, NULL);
        if (rc == GN_EAGAIN) {
            return;
        }
        c->ctl_len = 0;
        if (rc < 0) {
            gn_stream_emit_error(&c->s, rc);
            return;
        }
        if (c->shut_pending) {
            c->shut_pending = false;
            (void)gn_stream_shutdown(below);
        }
    }
    ws_pong_flush(c);
    gn_stream_emit_writable(&c->s);
}

/* ---- gn_stream ops ---- */

static int ws_write(gn_stream *s, const gn_slice *iov, size_t iovcnt, gn_write_cb cb, void *arg)
{
    ws_conn *c = (ws_conn *)s;
    if (c->close_sent) {
        return GN_EPIPE;
    }
    if (c->ctl_len || c->blocked) {
        return GN_EAGAIN; /* a control frame or ciphertext waits for room: on_writable follows */
    }
    size_t total = 0;
    for (size_t i = 0; i < iovcnt; i++) {
        if (iov[i].len > SIZE_MAX / 2 - total) {
            return GN_ETOOBIG;
        }
        total += iov[i].len;
    }
    size_t frames = total == 0 ? 1 : (total + WS_TX_FRAME - 1) / WS_TX_FRAME;
    ws_out *o = gn_malloc(sizeof *o + total + frames * GNI_WS_HDR_MAX);
    if (!o) {
        return GN_ENOMEM;
    }
    o->c = c;
    o->cb = cb;
    o->arg = arg;
    o->len = total;
    size_t pos = 0, vi = 0, voff = 0, left = total;
    do {
        size_t flen = GNI_MIN(left, WS_TX_FRAME);
        uint8_t m[4];
        const uint8_t *mask = ws_new_mask(c, m);
        pos += gni_ws_frame_header(o->data + pos, GNI_WS_OP_BINARY, true, flen, mask);
        size_t got = 0;
        while (got < flen) {
            size_t take = GNI_MIN(flen - got, iov[vi].len - voff);
            memcpy(o->data + pos + got, iov[vi].base + voff, take);
            got += take;
            voff += take;
            if (voff == iov[vi].len) {
                vi++;
                voff = 0;
            }
        }
        if (mask) {
            gni_ws_mask(o->data + pos, flen, mask, 0);
        }
        pos += flen;
        left -= flen;
    } while (left > 0);
    int rc = ws_emit(c, o->data, pos, o);
    if (rc < 0) {
        gn_free(o); /* GN_EAGAIN: nothing taken; below's on_writable is forwarded */
    }
    return rc;
}

static int ws_read_start(gn_stream *s)
{
    ws_conn *c = (ws_conn *)s;
    if (c->buf_len > 0 || c->eof_pending) {
        ws_schedule_drain(c);
        return 0;
    }
    if (c->close_recv) {
        return 0;
    }
    return gn_stream_read_start(s->below);
}

static int ws_read_stop(gn_stream *s)
{
    return gn_stream_read_stop(s->below);
}

static int ws_shutdown(gn_stream *s)
{
    ws_conn *c = (ws_conn *)s;
    gn_timer_stop(&c->timer); /* no close-wait timeout once the consumer shut down */
    int rc = ws_send_close(c, GNI_WS_CLOSE_NORMAL);
    if (rc < 0) {
        return rc;
    }
    if (c->ctl_len) {
        c->shut_pending = true; /* after the close frame */
        return 0;
    }
    return gn_stream_shutdown(s->below);
}

static void ws_below_closed(gn_stream *below, void *arg)
{
    (void)below;
    ws_conn *c = arg;
    ws_conn_release(c);
    gn_stream_emit_closed(&c->s);
    if (c->drain_scheduled) {
        c->free_pending = true; /* the queued drain frees */
    } else {
        gn_free(c);
    }
}

static void ws_close(gn_stream *s)
{
    ws_conn *c = (ws_conn *)s;
    c->dead = true;
    if (!c->close_sent && !(s->flags & GN_STREAM_ERRORED)) {
        (void)ws_send_close(c, c->close_recv ? GNI_WS_CLOSE_NORMAL : GNI_WS_CLOSE_GOING_AWAY);
    }
    gn_stream_close(s->below, ws_below_closed, c);
}

static void ws_reset(gn_stream *s)
{
    ws_conn *c = (ws_conn *)s;
    c->dead = true;
    gn_stream_reset(s->below, ws_below_closed, c);
}

static int ws_addr(gn_stream *s, gn_stream_addr_kind kind, gn_multiaddr **out)
{
    gn_multiaddr *tcp = NULL;
    int rc = gn_stream_addr(s->below, kind, &tcp);
    if (rc < 0) {
        return rc;
    }
    rc = ws_add_suffix(tcp, ((ws_conn *)s)->suffix, out);
    gn_multiaddr_free(tcp);
    return rc;
}

static const gn_stream_ops ws_stream_ops = {
    .abi = GN_STREAM_ABI,
    .name = "websocket",
    .write = ws_write,
    .read_start = ws_read_start,
    .read_stop = ws_read_stop,
    .shutdown = ws_shutdown,
    .reset = ws_reset,
    .close = ws_close,
    .addr = ws_addr,
};

/* ---- listen ---- */

static void ws_listener_done(ws_listener *wl, ws_conn *c, int status)
{
    gni_list_del(&c->link);
    c->wl = NULL;
    if (status < 0) {
        GN_LOG(GN_LOG_INFO, WS_COMP, "inbound handshake failed: %s", gn_err_name(status));
        c->dead = true;
        gn_stream_close(c->s.below, ws_conn_discard_closed, c);
        return;
    }
    wl->l.accept_cb(wl->l.accept_arg, &wl->l, 0, &c->s);
}

static void ws_tcp_accept(void *arg, gn_listener *tl, int status, gn_stream *conn)
{
    (void)tl;
    ws_listener *wl = arg;
    if (status < 0) {
        wl->l.accept_cb(wl->l.accept_arg, &wl->l, status, NULL);
        return;
    }
    ws_conn *c = ws_conn_new(wl->l.transport, conn, true);
    if (!c) {
        gn_stream_close(conn, NULL, NULL);
        return;
    }
    c->wl = wl;
    c->suffix = wl->suffix;
    gni_list_add_tail(&wl->pending, &c->link);
    int rc = 0;
#if GNI_WS_HAVE_TLS
    ws_state *st = wl->l.transport->state;
    if (strcmp(wl->suffix, "/ws") != 0) {
        rc = gni_tlsbio_new(st->tls_srv, NULL, &c->tls);
    }
#endif
    if (rc == 0) {
        rc = gn_timer_start(&c->timer, wl->l.transport->config.dial_timeout, ws_hs_timeout, c);
    }
    if (rc == 0) {
        rc = gn_stream_read_start(conn);
    }
    if (rc < 0) {
        ws_hs_end(c, rc); /* stops the timer if it started, then ws_listener_done */
    }
}

static int ws_listen(gn_transport *t, const gn_multiaddr *ma, gn_accept_cb cb, void *arg,
                     gn_listener **out)
{
    ws_state *st = t->state;
    int rc = ws_host_setup(t);
    if (rc < 0) {
        return rc;
    }
    gn_multiaddr *tcp = NULL;
    const char *suffix = NULL;
    rc = ws_split(ma, &tcp, &suffix, NULL);
    if (rc < 0) {
        return rc == GN_ENOTRANSPORT ? GN_EINVAL : rc;
    }
#if GNI_WS_HAVE_TLS
    if (strcmp(suffix, "/ws") != 0) {
        gni_tlsbio_ctx *ctx;
        if ((rc = ws_tls_ctx(t, true, &ctx)) < 0) {
            gn_multiaddr_free(tcp);
            return rc;
        }
    }
#endif
    ws_listener *wl = gn_calloc(1, sizeof *wl);
    if (!wl) {
        gn_multiaddr_free(tcp);
        return GN_ENOMEM;
    }
    gni_list_init(&wl->pending);
    wl->suffix = suffix;
    wl->l.transport = t;
    wl->l.accept_cb = cb;
    wl->l.accept_arg = arg;
    rc = gn_transport_listen(st->tcp, tcp, ws_tcp_accept, wl, &wl->tcp_l);
    gn_multiaddr_free(tcp);
    if (rc < 0) {
        gn_free(wl);
        return rc;
    }
    *out = &wl->l;
    return 0;
}

static int ws_listener_addr(gn_listener *l, gn_multiaddr **out)
{
    ws_listener *wl = (ws_listener *)l;
    gn_multiaddr *tcp = NULL;
    int rc = gn_listener_addr(wl->tcp_l, &tcp);
    if (rc < 0) {
        return rc;
    }
    rc = ws_add_suffix(tcp, wl->suffix, out);
    gn_multiaddr_free(tcp);
    return rc;
}

static void ws_tcp_listener_closed(gn_listener *tl, void *arg)
{
    (void)tl;
    ws_listener *wl = arg;
    while (!gni_list_empty(&wl->pending)) {
        ws_conn *c = (ws_conn *)((char *)wl->pending.next - offsetof(ws_conn, link));
        gn_timer_stop(&c->timer);
        ws_listener_done(wl, c, GN_ECANCELED);
    }
    if (wl->close_cb) {
        wl->close_cb(&wl->l, wl->close_arg);
    }
    gn_free(wl);
}

static void ws_listener_close(gn_listener *l, gn_listener_close_cb cb, void *arg)
{
    ws_listener *wl = (ws_listener *)l;
    wl->close_cb = cb;
    wl->close_arg = arg;
    gn_listener_close(wl->tcp_l, ws_tcp_listener_closed, wl);
}

/* ---- dial ---- */

static void ws_dial_finish_closed(gn_stream *below, void *arg)
{
    ws_dial *d = arg;
    ws_conn *c = d->c;
    ws_conn_discard_closed(below, c);
    d->cb(d->arg, d->canceled ? GN_ECANCELED : d->status, NULL);
    gn_free(d);
}

static void ws_dial_done(ws_dial *d, int status)
{
    ws_conn *c = d->c;
    if (status == 0) {
        c->dial = NULL;
        gn_dial_cb cb = d->cb;
        void *arg = d->arg;
        gn_free(d);
        cb(arg, 0, &c->s);
        return;
    }
    GN_LOG(GN_LOG_INFO, WS_COMP, "outbound handshake failed: %s", gn_err_name(status));
    gn_timer_stop(&c->timer);
    c->dead = true;
    d->closing = true;
    /* the dial's status reaches the callback after the socket closed */
    d->status = status;
    gn_stream_close(c->s.below, ws_dial_finish_closed, d);
}

static void ws_dial_cancel(gn_op *op)
{
    ws_dial *d = (ws_dial *)op;
    if (d->canceled) {
        return;
    }
    d->canceled = true;
    if (d->tcp_op) {
        gn_op_cancel(d->tcp_op); /* ws_tcp_dialed follows with GN_ECANCELED */
        return;
    }
    if (d->c && !d->closing) {
        ws_dial_done(d, GN_ECANCELED); /* closes the socket now; the callback follows */
    }
}

static void ws_tcp_dialed(void *arg, int status, gn_stream *conn)
{
    ws_dial *d = arg;
    d->tcp_op = NULL;
    if (status < 0 || d->canceled) {
        if (conn) {
            gn_stream_close(conn, NULL, NULL);
        }
        d->cb(d->arg, d->canceled ? GN_ECANCELED : status, NULL);
        gn_free(d);
        return;
    }
    ws_conn *c = ws_conn_new(d->t, conn, false);
    if (!c) {
        gn_stream_close(conn, NULL, NULL);
        d->cb(d->arg, GN_ENOMEM, NULL);
        gn_free(d);
        return;
    }
    c->dial = d;
    c->suffix = d->suffix;
    d->c = c;
    int rc = 0;
#if GNI_WS_HAVE_TLS
    ws_state *st = d->t->state;
    if (strcmp(d->suffix, "/ws") != 0) {
        rc = gni_tlsbio_new(st->tls_cli, d->ip, &c->tls); /* the ClientHello is queued */
        if (rc < 0) {
            ws_dial_done(d, rc);
            return;
        }
    }
#endif
    uint8_t nonce[16];
    char req[256];
    randombytes_buf(nonce, sizeof nonce);
    int n = gni_ws_build_request(req, sizeof req, d->host, "/", nonce, c->key);
    rc = n < 0 ? n : ws_emit(c, (const uint8_t *)req, (size_t)n, NULL);
    if (rc == 0) {
        rc = gn_timer_start(&c->timer, d->t->config.dial_timeout, ws_hs_timeout, c);
    }
    if (rc == 0) {
        rc = gn_stream_read_start(conn);
    }
    if (rc < 0) {
        ws_dial_done(d, rc);
    }
}

static int ws_dial_start(gn_transport *t, const gn_multiaddr *ma, gn_dial_cb cb, void *arg, gn_op **op)
{
    ws_state *st = t->state;
    int rc = ws_host_setup(t);
    if (rc < 0) {
        return rc;
    }
    gn_multiaddr *tcp = NULL;
    const char *suffix = NULL;
    char sni[256];
    rc = ws_split(ma, &tcp, &suffix, sni);
    if (rc < 0) {
        return rc;
    }
#if GNI_WS_HAVE_TLS
    if (strcmp(suffix, "/ws") != 0) {
        gni_tlsbio_ctx *ctx;
        if ((rc = ws_tls_ctx(t, false, &ctx)) < 0) {
            gn_multiaddr_free(tcp);
            return rc;
        }
    }
#endif
    ws_dial *d = gn_calloc(1, sizeof *d);
    if (!d) {
        gn_multiaddr_free(tcp);
        return GN_ENOMEM;
    }
    d->t = t;
    d->cb = cb;
    d->arg = arg;
    d->op.cancel = ws_dial_cancel;
    d->suffix = suffix;
    /* Host header (RFC 6455 4.1 item 4): the address dialled */
    gn_ma_component ip, port;
    char ipbuf[64] = "", portbuf[8] = "";
    (void)gn_multiaddr_component(tcp, 0, &ip);
    (void)gn_multiaddr_component(tcp, 1, &port);
    (void)gn_ma_component_value_string(&ip, ipbuf, sizeof ipbuf);
    (void)gn_ma_component_value_string(&port, portbuf, sizeof portbuf);
    snprintf(d->host, sizeof d->host, ip.code == GN_MA_IP6 && !sni[0] ? "[%s]:%s" : "%s:%s",
             sni[0] ? sni : ipbuf, portbuf);
    /* the certificate must carry the /sni name when there is one, else the IP */
    snprintf(d->ip, sizeof d->ip, "%s", sni[0] ? sni : ipbuf);
    rc = gn_transport_dial(st->tcp, tcp, ws_tcp_dialed, d, &d->tcp_op);
    gn_multiaddr_free(tcp);
    if (rc < 0) {
        gn_free(d);
        return rc;
    }
    *op = &d->op;
    return 0;
}

static const gn_transport_ops ws_ops = {
    .abi = GN_TRANSPORT_ABI,
    .name = "websocket",
    .state_size = sizeof(ws_state),
    .caps = GN_TRANSPORT_CAP_RELIABLE,
    .test_listen_addr = "/ip4/127.0.0.1/tcp/0/ws",
    .init = ws_init,
    .fini = ws_fini,
    .handles = ws_handles,
    .listen = ws_listen,
    .listener_addr = ws_listener_addr,
    .listener_close = ws_listener_close,
    .dial = ws_dial_start,
};

int gn_transport_websocket_register(gn_registry *reg)
{
    return gn_registry_add(reg, GN_LAYER_TRANSPORT, (const gn_layer_ops *)&ws_ops);
}
