/*
 * An Ergo link over TCP on libuv: EHS handshake, then ENP frames, with the
 * pool of links per connection (ergo-wire.md b, c). Contract: ergo_uv.h.
 * The protocol logic lives in the cores (ehs.c, enp.c, pool.c); this file
 * only moves bytes, arms timers and keeps the link/connection tables.
 */
#include "ergo_uv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enp.h"
#include "ergo_tls_config.h"
#include "gni.h"
#include "golemnet/err.h"
#include "golemnet/log.h"
#include "pool.h"
#if GNI_HAVE_ERGO_TLS
#include <sodium.h>

#include "ergo_tls.h"
#endif

typedef struct ergo_link ergo_link;

struct ergo_link {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t creq;
    gni_ergo_node *n;
    gni_ergo_conn *c;         /* attached connection */
    gni_ergo_conn *join_conn; /* dialler join: the connection it joins */
    gni_ehs *hs;              /* until the handshake is done */
    gni_enp_splitter sp;
    uint64_t id;
    gni_ehs_role role;
    bool attached, closing;
    int open_handles;
    char peer[256];    /* dial: expected peer name */
    char dsn[64];      /* accept: "ip:port" of the accepting socket */
    char conn_id[64];  /* join: the connection ID */
    ergo_link *next;
    /* TLS (docs/ergo.md "TLS") */
    struct gni_tls *tls;        /* the link's TLS session, or NULL */
    bool tls_want;              /* the link runs TLS (a TLS acceptor, a TLS dial) */
    bool rx_seen;               /* bytes were read (the first tells a TLS peer) */
    char tls_host[256];         /* dial: the name the certificate is verified for */
    uint8_t tls_peer_sha1[20];  /* dial: the acceptor's leaf SHA-1, for DigestCert */
};

struct gni_ergo_conn {
    gni_ergo_node *n;
    gni_pool pool;
    bool dialler;
    gni_ehs_result info;
    char peer_node[256];
    char conn_id[64];
    char dsn[GNI_EHS_DSN_MAX][64];
    gni_ergo_conn *next;
    bool tls; /* its links run TLS (joins too) */
};

struct gni_ergo_node {
    uv_loop_t *loop;
    uv_tcp_t listener;
    gni_ergo_options o;
    uint16_t port;
    ergo_link *links;
    gni_ergo_conn *conns;
    uint64_t next_id;
    bool closing;
    int open_handles;
    void (*close_cb)(void *ud);
    void *close_ud;
    struct gni_tls_ctx *tls_server; /* the acceptor's TLS, or NULL */
    struct gni_tls_ctx *tls_client; /* made by the first TLS dial */
    bool dial_tls;                  /* during gni_ergo_dial_tls: the route's TLS flag */
};

typedef struct ergo_write {
    uv_write_t req;
    uv_buf_t buf;
} ergo_write;

static void link_close(ergo_link *l);

static gn_time ergo_now(const gni_ergo_node *n) { return (gn_time)uv_now(n->loop) * GN_MS; }

static void link_error(ergo_link *l, int err, const char *diag)
{
    if (l->n->o.cb.on_link_error)
        l->n->o.cb.on_link_error(l->n, err, diag, l->n->o.user_data);
    link_close(l);
}

/* Bytes a link may have queued in the kernel's stead before sends push back. */
#define ERGO_LINK_WRITE_MAX (4u << 20)
/* TCP keepalive on every link, as Ergo sets it (ergo-wire.md c). */
#define ERGO_KEEPALIVE_S 15u

static void on_written(uv_write_t *req, int status)
{
    (void)status; /* a failed write shows up as a read error on the link */
    gn_free(req->data);
}

static ergo_write *write_new(size_t len)
{
    ergo_write *w = gn_malloc(sizeof *w + len);
    if (w) {
        w->req.data = w;
        w->buf = uv_buf_init((char *)(w + 1), (unsigned)len);
    }
    return w;
}

/* Hands @w to the socket; it is freed by on_written or here on failure. */
static int link_submit(ergo_link *l, ergo_write *w)
{
    int rc = uv_write(&w->req, (uv_stream_t *)&l->tcp, &w->buf, 1, on_written);
    if (rc < 0) {
        gn_free(w);
        return gni_err_from_uv(rc);
    }
    return 0;
}

static int link_tls_write(ergo_link *l, const uint8_t *p, size_t len);

static int link_write(ergo_link *l, const uint8_t *p, size_t len)
{
    if (l->closing)
        return GN_ECLOSED;
    /* a peer that stops reading pushes back instead of growing our queue */
    if (uv_stream_get_write_queue_size((uv_stream_t *)&l->tcp) + len > ERGO_LINK_WRITE_MAX &&
        uv_stream_get_write_queue_size((uv_stream_t *)&l->tcp) > 0)
        return GN_EAGAIN;
    if (l->tls)
        return link_tls_write(l, p, len);
    ergo_write *w = write_new(len);
    if (!w)
        return GN_ENOMEM;
    memcpy(w + 1, p, len);
    return link_submit(l, w);
}

static int link_flush_hs(ergo_link *l)
{
    size_t n = gni_ehs_pending(l->hs);
    if (n == 0)
        return 0;
    uint8_t *tmp = gn_malloc(n);
    if (!tmp)
        return GN_ENOMEM;
    gn_buf b;
    gn_buf_init(&b, tmp, n);
    gni_ehs_drain(l->hs, &b);
    int rc = link_write(l, tmp, gn_buf_len(&b));
    gn_free(tmp);
    return rc;
}

static void on_hs_timer(uv_timer_t *t)
{
    ergo_link *l = t->data;
    if (!l->hs)
        return;
    if (gni_ehs_expire(l->hs, ergo_now(l->n)) < 0)
        link_error(l, gni_ehs_error(l->hs), gni_ehs_diag(l->hs));
}

static void link_arm(ergo_link *l)
{
    gn_time d = gni_ehs_deadline(l->hs), now = ergo_now(l->n);
    if (d == GN_TIME_INFINITY) {
        uv_timer_stop(&l->timer);
        return;
    }
    uint64_t ms = d > now ? (d - now + GN_MS - 1) / GN_MS : 0;
    uv_timer_start(&l->timer, on_hs_timer, ms, 0);
}

static ergo_link *node_find_link(gni_ergo_node *n, uint64_t id)
{
    for (ergo_link *l = n->links; l; l = l->next)
        if (l->id == id)
            return l;
    return NULL;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    if (suggested > 65536)
        suggested = 65536;
    buf->base = gn_malloc(suggested);
    buf->len = buf->base ? suggested : 0;
}

static void conn_dial_more(gni_ergo_conn *c);
static int link_dial(gni_ergo_node *n, const char *ip, uint16_t port, gni_ehs_role role,
                     const char *peer, gni_ergo_conn *join);

static void conn_free(gni_ergo_conn *c)
{
    gni_ergo_node *n = c->n;
    for (gni_ergo_conn **pp = &n->conns; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    for (ergo_link *l = n->links; l; l = l->next) {
        if (l->join_conn == c)
            l->join_conn = NULL;
        if (l->c == c)
            l->c = NULL;
    }
    gn_free(c);
}

static gni_ergo_conn *conn_new(ergo_link *l, const gni_ehs_result *r, bool dialler)
{
    gni_ergo_conn *c = gn_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->n = l->n;
    c->dialler = dialler;
    c->info = *r;
    snprintf(c->peer_node, sizeof c->peer_node, "%.*s", (int)r->peer_node.len,
             (const char *)r->peer_node.base);
    snprintf(c->conn_id, sizeof c->conn_id, "%.*s", (int)r->conn_id.len,
             (const char *)r->conn_id.base);
    c->info.peer_node = gn_slice_of(c->peer_node, strlen(c->peer_node));
    c->info.conn_id = gn_slice_of(c->conn_id, strlen(c->conn_id));
    for (uint32_t i = 0; i < r->ndsn; i++) {
        snprintf(c->dsn[i], sizeof c->dsn[i], "%.*s", (int)r->dsn[i].len,
                 (const char *)r->dsn[i].base);
        c->info.dsn[i] = gn_slice_of(c->dsn[i], strlen(c->dsn[i]));
    }
    memset(c->info.peer_version, 0, sizeof c->info.peer_version);
    gni_pool_init(&c->pool, dialler, r->pool_size, dialler ? r->ndsn : 0, l->id);
    c->tls = l->tls != NULL;
    c->next = l->n->conns;
    l->n->conns = c;
    l->c = c;
    l->attached = true;
    return c;
}

/* True while @c is one of @n's connections (a callback may have ended it). */
static bool conn_alive(const gni_ergo_node *n, const gni_ergo_conn *c)
{
    for (const gni_ergo_conn *x = n->conns; x; x = x->next) /* bounded: the list */
        if (x == c)
            return true;
    return false;
}

static gni_ergo_conn *node_find_conn(gni_ergo_node *n, gn_slice id, gn_slice peer, bool dialler)
{
    for (gni_ergo_conn *c = n->conns; c; c = c->next) {
        if (c->dialler != dialler)
            continue;
        if (id.len && (id.len != strlen(c->conn_id) || memcmp(id.base, c->conn_id, id.len)))
            continue;
        if (peer.len != strlen(c->peer_node) || memcmp(peer.base, c->peer_node, peer.len))
            continue;
        return c;
    }
    return NULL;
}

/* the handshake of @l finished: attach it to a connection (or refuse it) */
static void link_hs_done(ergo_link *l)
{
    gni_ergo_node *n = l->n;
    const gni_ehs_result *r = gni_ehs_get_result(l->hs);
    gni_ergo_conn *c = NULL;
    bool fresh = false;
    if (l->role == GNI_EHS_ROLE_START) {
        c = conn_new(l, r, true);
        fresh = true;
    } else if (l->role == GNI_EHS_ROLE_JOIN) {
        c = l->join_conn;
        if (c && gni_pool_attach(&c->pool, l->id) == 0) {
            l->c = c;
            l->attached = true;
            l->join_conn = NULL;
        } else {
            c = NULL;
        }
    } else if (r->join) {
        /* b "Join sequence": the ConnectionID must name the connection */
        c = r->conn_id.len ? node_find_conn(n, r->conn_id, r->peer_node, false) : NULL;
        if (c && gni_pool_attach(&c->pool, l->id) == 0) {
            l->c = c;
            l->attached = true;
        } else {
            c = NULL; /* b "Join sequence" step 3: no such connection: close */
        }
    } else if (node_find_conn(n, gn_slice_of(NULL, 0), r->peer_node, false) ||
               node_find_conn(n, gn_slice_of(NULL, 0), r->peer_node, true)) {
        c = NULL; /* a second full handshake from a peer we are connected to */
    } else {
        c = conn_new(l, r, false);
        fresh = true;
    }
    gni_ehs_free(l->hs);
    l->hs = NULL;
    uv_timer_stop(&l->timer);
    if (!c) {
        link_error(l, GN_EHANDSHAKE, "link refused after the handshake (no such connection, "
                                     "pool full, or already connected)");
        return;
    }
    uint64_t max = n->o.max_message_size > UINT32_MAX ? UINT32_MAX : n->o.max_message_size;
    gni_enp_splitter_init(&l->sp, (uint32_t)max);
    if (fresh) {
        bool dialler = c->dialler;
        if (n->o.cb.on_conn)
            n->o.cb.on_conn(c, n->o.user_data); /* may end c */
        if (dialler && !l->closing && !n->closing && conn_alive(n, c))
            conn_dial_more(c);
    } else if (n->o.cb.on_links) {
        n->o.cb.on_links(c, c->pool.nlinks, n->o.user_data);
    }
}

static void link_feed(ergo_link *l, const uint8_t *p, size_t len)
{
    size_t off = 0;
    if (l->hs) {
        size_t used = 0;
        int rc = gni_ehs_feed(l->hs, p, len, &used, ergo_now(l->n));
        int wr = link_flush_hs(l);
        if (rc < 0 || wr < 0) {
            link_error(l, rc < 0 ? rc : wr, rc < 0 ? gni_ehs_diag(l->hs) : "write failed");
            return;
        }
        off = used;
        if (!gni_ehs_done(l->hs)) {
            link_arm(l);
            return;
        }
        link_hs_done(l);
    }
    while (off < len && !l->closing && l->c) {
        size_t used = 0;
        gn_slice frame;
        int rc = gni_enp_splitter_feed(&l->sp, p + off, len - off, &used, &frame);
        off += used;
        if (rc < 0) {
            link_error(l, rc, gni_enp_splitter_diag(&l->sp));
            return;
        }
        if (rc == 0)
            break;
        if (l->n->o.cb.on_frame)
            l->n->o.cb.on_frame(l->c, frame.base, frame.len, l->n->o.user_data);
    }
}

/* ---- TLS under the handshake (docs/ergo.md "TLS"; ergo_tls.h) ------------------------------
 * A TLS link keeps a gni_tls between the socket and the cores: reads are fed to it and its
 * plaintext goes to link_feed; link_write encrypts through it. Without ergo_tls these are
 * stubs (no link can have TLS: node_new and dial_tls refuse it). */

/* A plain link whose peer opens with a TLS record (alert 0x15, handshake 0x16; EHS opens with
 * 0x57) says so instead of "bad magic". */
static void link_tls_sniff(ergo_link *l, uint8_t first)
{
    if (l->tls_want || (first != 0x15 && first != 0x16))
        return;
    link_error(l, GN_EHANDSHAKE,
               l->role == GNI_EHS_ROLE_ACCEPT
                   ? "the peer dialled with TLS but this acceptor has no TLS (options.tls)"
                   : "the acceptor runs TLS: dial it with TLS (the route's TLS flag)");
}

/* A plain dialler whose acceptor closed before answering: a wrong cookie, or an acceptor that
 * runs TLS (Go's TLS server closes without an alert on a non-TLS first record). */
static bool link_plain_eof(ergo_link *l)
{
    if (!l->hs || l->rx_seen || l->role != GNI_EHS_ROLE_START || gni_ehs_eof(l->hs) == 0)
        return false;
    char d[320];
    snprintf(d, sizeof d, "%s; or the acceptor runs TLS: dial it with TLS (the route's TLS flag)",
             gni_ehs_diag(l->hs));
    link_error(l, gni_ehs_error(l->hs), d);
    return true;
}

#if GNI_HAVE_ERGO_TLS

/* Sends the ciphertext the session has queued. */
static int link_tls_flush(ergo_link *l)
{
    size_t n = gni_tls_pending(l->tls);
    if (n == 0 || l->closing)
        return 0;
    ergo_write *w = write_new(n);
    if (!w)
        return GN_ENOMEM;
    gn_buf b;
    gn_buf_init(&b, w + 1, n);
    w->buf.len = gni_tls_drain(l->tls, &b);
    return link_submit(l, w);
}

static int link_tls_write(ergo_link *l, const uint8_t *p, size_t len)
{
    int rc = gni_tls_write(l->tls, p, len);
    return rc < 0 ? rc : link_tls_flush(l);
}

static void link_tls_recv(ergo_link *l, const uint8_t *p, size_t len)
{
    bool was_done = gni_tls_done(l->tls);
    int rc = gni_tls_feed(l->tls, p, len);
    int wr = link_tls_flush(l); /* handshake answers, or the alert that explains a failure */
    if (rc == 0 && wr == 0 && !was_done && gni_tls_done(l->tls) && l->role != GNI_EHS_ROLE_ACCEPT)
        rc = gni_tls_peer_sha1(l->tls, l->tls_peer_sha1); /* before any EHS message is read */
    if (rc < 0 || wr < 0) {
        link_error(l, rc < 0 ? rc : wr, rc < 0 && gni_tls_diag(l->tls)[0] ? gni_tls_diag(l->tls)
                                                                          : "TLS: write failed");
        return;
    }
    uint8_t plain[GNI_TLS_RECORD_MAX];
    /* bounded: every pass takes a record out of what was fed */
    while (!l->closing) {
        int n = gni_tls_read(l->tls, plain, sizeof plain);
        if (n == GN_EEOF) {
            link_close(l); /* close_notify: the peer ended the link */
            return;
        }
        if (n < 0) {
            link_error(l, n, gni_tls_diag(l->tls));
            return;
        }
        if (n == 0)
            break;
        link_feed(l, plain, (size_t)n);
    }
    if (!l->closing && link_tls_flush(l) < 0) /* a key update's answer */
        link_error(l, GN_EIO, "TLS: write failed");
}

/* The socket ended: true when TLS explains it (the link is then closed with that diagnostic);
 * false leaves it to the EHS core or a plain close. */
static bool link_tls_eof(ergo_link *l)
{
    if (!l->tls)
        return link_plain_eof(l);
    bool done = gni_tls_done(l->tls);
    if (gni_tls_eof(l->tls) == 0 || (done && l->hs))
        return false;
    link_error(l, gni_tls_error(l->tls), gni_tls_diag(l->tls));
    return true;
}

/* Creates the link's session when it runs TLS; on failure the link is closed (< 0). */
static int link_tls_start(ergo_link *l)
{
    if (!l->tls_want)
        return 0;
    gni_ergo_node *n = l->n;
    bool acc = l->role == GNI_EHS_ROLE_ACCEPT;
    int rc = gni_tls_new(acc ? n->tls_server : n->tls_client, acc ? NULL : l->tls_host, &l->tls);
    if (rc < 0)
        link_error(l, rc, "TLS: cannot start a session");
    return rc;
}

static void link_tls_cfg(ergo_link *l, gni_ehs_config *c)
{
    if (!l->tls)
        return;
    if (l->role == GNI_EHS_ROLE_ACCEPT)
        c->cert_sha1 = gni_tls_ctx_cert_sha1(l->n->tls_server);
    else if (!l->n->o.tls_no_fingerprint)
        c->peer_cert_sha1 = l->tls_peer_sha1; /* filled when the TLS handshake ends */
}

static void link_tls_free(ergo_link *l)
{
    gni_tls_free(l->tls);
    l->tls = NULL;
}

#define ERGO_PEM_MAX (1u << 20)

/* Reads a PEM file into gn_malloc'd memory. 0, GN_EIO, GN_ETOOBIG, GN_ENOMEM. */
static int pem_read(const char *path, gn_slice *out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return GN_EIO;
    uint8_t *p = gn_malloc(ERGO_PEM_MAX);
    size_t n = p ? fread(p, 1, ERGO_PEM_MAX, f) : 0;
    int rc = !p ? GN_ENOMEM : ferror(f) ? GN_EIO : n == ERGO_PEM_MAX ? GN_ETOOBIG : 0;
    fclose(f);
    if (rc < 0) {
        gn_free(p);
        return rc;
    }
    *out = gn_slice_of(p, n);
    return 0;
}

static void node_tls_log(const gni_ergo_node *n, const char *what, const char *path,
                         const char *diag)
{
    gn_log(GN_LOG_ERR, "ergo", "%s: %s %s%s%s", n->o.node, what, path ? path : "",
           diag && diag[0] ? ": " : "", diag ? diag : "");
}

/* The acceptor's TLS context, from the PEM files or a generated certificate. */
static int node_tls_setup(gni_ergo_node *n)
{
    const gni_ergo_options *o = &n->o;
    if (!o->tls)
        return 0;
    if (!o->tls_cert_file != !o->tls_key_file)
        return GN_EINVAL;
    gni_tls_ctx_config tc;
    memset(&tc, 0, sizeof tc);
    tc.server = true;
    const char *at = strchr(o->node, '@');
    tc.host = at ? at + 1 : NULL;
    int rc = 0;
    if (o->tls_cert_file) {
        rc = pem_read(o->tls_cert_file, &tc.cert_pem);
        if (rc == 0 && (rc = pem_read(o->tls_key_file, &tc.key_pem)) < 0)
            node_tls_log(n, "cannot read the TLS key", o->tls_key_file, NULL);
        else if (rc < 0)
            node_tls_log(n, "cannot read the TLS certificate", o->tls_cert_file, NULL);
    }
    char diag[256];
    if (rc == 0 && (rc = gni_tls_ctx_new(&tc, &n->tls_server, diag, sizeof diag)) < 0)
        node_tls_log(n, "TLS setup failed", o->tls_cert_file, diag);
    if (tc.key_pem.base)
        sodium_memzero((void *)tc.key_pem.base, tc.key_pem.len); /* a secret */
    gn_free((void *)tc.cert_pem.base);
    gn_free((void *)tc.key_pem.base);
    return rc;
}

/* The dialler's TLS context, made on the first TLS dial. */
static int node_tls_client(gni_ergo_node *n)
{
    if (n->tls_client)
        return 0;
    gni_tls_ctx_config tc;
    memset(&tc, 0, sizeof tc);
    tc.skip_verify = n->o.tls_skip_verify;
    int rc = 0;
    if (!tc.skip_verify && n->o.tls_ca_file && (rc = pem_read(n->o.tls_ca_file, &tc.ca_pem)) < 0)
        node_tls_log(n, "cannot read the TLS CA file", n->o.tls_ca_file, NULL);
    char diag[256];
    if (rc == 0 && (rc = gni_tls_ctx_new(&tc, &n->tls_client, diag, sizeof diag)) < 0)
        node_tls_log(n, "TLS setup failed", n->o.tls_ca_file, diag);
    gn_free((void *)tc.ca_pem.base);
    return rc;
}

static void node_tls_free(gni_ergo_node *n)
{
    gni_tls_ctx_free(n->tls_server);
    gni_tls_ctx_free(n->tls_client);
    n->tls_server = n->tls_client = NULL;
}

#else /* !GNI_HAVE_ERGO_TLS: no link has TLS */

static int link_tls_write(ergo_link *l, const uint8_t *p, size_t len)
{
    (void)l, (void)p, (void)len;
    return GN_ENOTSUP;
}
static void link_tls_recv(ergo_link *l, const uint8_t *p, size_t len)
{
    (void)p, (void)len;
    link_error(l, GN_ENOTSUP, "TLS: not built");
}
static bool link_tls_eof(ergo_link *l) { return link_plain_eof(l); }
static int link_tls_start(ergo_link *l) { return (void)l, 0; }
static void link_tls_cfg(ergo_link *l, gni_ehs_config *c) { (void)l, (void)c; }
static void link_tls_free(ergo_link *l) { (void)l; }
static int node_tls_setup(gni_ergo_node *n) { return n->o.tls ? GN_ENOTSUP : 0; }
static int node_tls_client(gni_ergo_node *n) { return (void)n, GN_ENOTSUP; }
static void node_tls_free(gni_ergo_node *n) { (void)n; }

#endif /* GNI_HAVE_ERGO_TLS */
/* ---- end TLS ---- */

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    ergo_link *l = s->data;
    if (nread > 0 && !l->closing && !l->rx_seen) {
        l->rx_seen = true;
        link_tls_sniff(l, (uint8_t)buf->base[0]);
    }
    if (nread > 0 && !l->closing && l->tls)
        link_tls_recv(l, (const uint8_t *)buf->base, (size_t)nread);
    else if (nread > 0 && !l->closing)
        link_feed(l, (const uint8_t *)buf->base, (size_t)nread);
    gn_free(buf->base);
    if (nread < 0 && !l->closing && !link_tls_eof(l)) {
        if (l->hs && gni_ehs_eof(l->hs) < 0)
            link_error(l, gni_ehs_error(l->hs), gni_ehs_diag(l->hs));
        else
            link_close(l);
    }
}

static void node_maybe_done(gni_ergo_node *n)
{
    if (n->closing && n->open_handles == 0) {
        void (*cb)(void *) = n->close_cb;
        void *ud = n->close_ud;
        node_tls_free(n);
        gn_free(n);
        if (cb)
            cb(ud);
    }
}

static void on_link_handle_closed(uv_handle_t *h)
{
    ergo_link *l = h->data;
    gni_ergo_node *n = l->n;
    if (--l->open_handles > 0)
        return;
    for (ergo_link **pp = &n->links; *pp; pp = &(*pp)->next)
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    gni_ehs_free(l->hs);
    gni_enp_splitter_fini(&l->sp);
    link_tls_free(l);
    gn_free(l);
    n->open_handles--;
    node_maybe_done(n);
}

static void link_close(ergo_link *l)
{
    if (l->closing)
        return;
    l->closing = true;
    gni_ergo_node *n = l->n;
    gni_ergo_conn *c = l->attached ? l->c : NULL;
    if (!l->attached && l->role == GNI_EHS_ROLE_JOIN && l->join_conn) {
        gni_pool_dial_failed(&l->join_conn->pool);
        l->join_conn = NULL;
    }
    uv_close((uv_handle_t *)&l->tcp, on_link_handle_closed);
    uv_close((uv_handle_t *)&l->timer, on_link_handle_closed);
    if (!c)
        return;
    l->attached = false;
    l->c = NULL;
    if (gni_pool_detach(&c->pool, l->id)) {
        if (n->o.cb.on_conn_down)
            n->o.cb.on_conn_down(c, n->o.user_data);
        conn_free(c);
        return;
    }
    bool dialler = c->dialler;
    if (n->o.cb.on_links)
        n->o.cb.on_links(c, c->pool.nlinks, n->o.user_data); /* may end c */
    if (dialler && !n->closing && conn_alive(n, c))
        conn_dial_more(c); /* replace the lost link: a Join to a random DSN */
}

static ergo_link *link_new(gni_ergo_node *n, gni_ehs_role role)
{
    ergo_link *l = gn_calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->n = n;
    l->role = role;
    l->id = ++n->next_id;
    if (uv_tcp_init(n->loop, &l->tcp) < 0) {
        gn_free(l);
        return NULL;
    }
    uv_timer_init(n->loop, &l->timer);
    l->tcp.data = l->timer.data = l;
    l->open_handles = 2;
    n->open_handles++;
    l->next = n->links;
    n->links = l;
    return l;
}

static gni_ehs_config link_cfg(ergo_link *l)
{
    const gni_ergo_options *o = &l->n->o;
    gni_ehs_config c;
    memset(&c, 0, sizeof c);
    c.reg = o->reg;
    c.cookie = gn_slice_of(o->cookie, strlen(o->cookie));
    c.node = gn_slice_of(o->node, strlen(o->node));
    c.version[0] = gn_slice_of("golemnet", 8);
    c.version[1] = gn_slice_of("0.1", 3);
    c.version[3] = gn_slice_of("MIT", 3);
    c.flags = o->flags;
    c.creation = o->creation;
    c.max_message_size = o->max_message_size;
    c.pool_size = o->pool_size;
    c.pool_dsn = gn_slice_of(l->dsn, strlen(l->dsn));
    c.expect_peer = gn_slice_of(l->peer, strlen(l->peer));
    c.conn_id = gn_slice_of(l->conn_id, strlen(l->conn_id));
    link_tls_cfg(l, &c);
    return c;
}

static void on_connected(uv_connect_t *req, int status)
{
    ergo_link *l = req->data;
    if (l->closing)
        return;
    if (status < 0) {
        link_error(l, gni_err_from_uv(status), "connect failed");
        return;
    }
    if (link_tls_start(l) < 0)
        return;
    gni_ehs_config cfg = link_cfg(l);
    int rc = gni_ehs_new(&cfg, l->role, ergo_now(l->n), &l->hs);
    if (rc == 0)
        rc = link_flush_hs(l);
    (void)uv_tcp_keepalive(&l->tcp, 1, ERGO_KEEPALIVE_S); /* c: a vanished peer is noticed */
    if (rc == 0)
        rc = gni_err_from_uv(uv_read_start((uv_stream_t *)&l->tcp, on_alloc, on_read));
    if (rc < 0) {
        link_error(l, rc, "cannot start the handshake");
        return;
    }
    link_arm(l);
}

static int link_dial(gni_ergo_node *n, const char *ip, uint16_t port, gni_ehs_role role,
                     const char *peer, gni_ergo_conn *join)
{
    struct sockaddr_storage ss;
    if (uv_ip4_addr(ip, port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(ip, port, (struct sockaddr_in6 *)&ss) != 0)
        return GN_EINVAL;
    ergo_link *l = link_new(n, role);
    if (!l)
        return GN_ENOMEM;
    if (peer)
        snprintf(l->peer, sizeof l->peer, "%s", peer);
    if (join) {
        l->join_conn = join;
        snprintf(l->conn_id, sizeof l->conn_id, "%s", join->conn_id);
    }
    l->tls_want = join ? join->tls : n->dial_tls;
    const char *at = peer ? strchr(peer, '@') : NULL; /* verify the node's host, else the IP */
    snprintf(l->tls_host, sizeof l->tls_host, "%s", at ? at + 1 : ip);
    l->creq.data = l;
    int rc = uv_tcp_connect(&l->creq, &l->tcp, (const struct sockaddr *)&ss, on_connected);
    if (rc < 0) {
        l->join_conn = NULL; /* the caller accounts for the failed dial */
        link_close(l);
        return gni_err_from_uv(rc);
    }
    return 0;
}

static void conn_dial_more(gni_ergo_conn *c)
{
    uint32_t idx;
    /* bounded: want_dial stops at PoolSize links + joins in flight */
    while (gni_pool_want_dial(&c->pool, gn_rng_system(), &idx)) {
        char ip[64];
        const char *d = c->dsn[idx], *colon = strrchr(d, ':');
        int rc = GN_EINVAL;
        if (colon && (size_t)(colon - d) < sizeof ip) {
            snprintf(ip, sizeof ip, "%.*s", (int)(colon - d), d);
            rc = link_dial(c->n, ip, (uint16_t)atoi(colon + 1), GNI_EHS_ROLE_JOIN, c->peer_node, c);
        }
        if (rc < 0) {
            gni_pool_dial_failed(&c->pool);
            break;
        }
    }
}

static void on_connection(uv_stream_t *srv, int status)
{
    gni_ergo_node *n = srv->data;
    if (status < 0 || n->closing)
        return;
    ergo_link *l = link_new(n, GNI_EHS_ROLE_ACCEPT);
    if (!l)
        return;
    if (uv_accept(srv, (uv_stream_t *)&l->tcp) < 0) {
        link_close(l);
        return;
    }
    /* PoolDSN: the local address of the accepting socket (b "Pool") */
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    char ip[48] = "127.0.0.1";
    uint16_t port = n->port;
    if (uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        } else {
            uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        }
    }
    snprintf(l->dsn, sizeof l->dsn, "%s:%u", ip, (unsigned)port);
    l->tls_want = n->tls_server != NULL;
    if (link_tls_start(l) < 0)
        return;
    gni_ehs_config cfg = link_cfg(l);
    int rc = gni_ehs_new(&cfg, GNI_EHS_ROLE_ACCEPT, ergo_now(n), &l->hs);
    (void)uv_tcp_keepalive(&l->tcp, 1, ERGO_KEEPALIVE_S); /* c: a vanished peer is noticed */
    if (rc == 0)
        rc = gni_err_from_uv(uv_read_start((uv_stream_t *)&l->tcp, on_alloc, on_read));
    if (rc < 0) {
        link_error(l, rc, "cannot start the handshake");
        return;
    }
    link_arm(l);
}

static void on_listener_closed(uv_handle_t *h)
{
    gni_ergo_node *n = h->data;
    n->open_handles--;
    node_maybe_done(n);
}

int gni_ergo_node_new(uv_loop_t *loop, const gni_ergo_options *o, gni_ergo_node **out)
{
    if (!loop || !o || !out || !o->reg || !o->node || !o->cookie || !o->cookie[0])
        return GN_EINVAL;
    if (!gni_ehs_name_valid(gn_slice_of(o->node, strlen(o->node))))
        return GN_EINVAL;
    gni_ergo_node *n = gn_calloc(1, sizeof *n);
    if (!n)
        return GN_ENOMEM;
    n->loop = loop;
    n->o = *o;
    if (!n->o.host)
        n->o.host = "127.0.0.1";
    int rc = node_tls_setup(n);
    if (rc < 0) {
        gn_free(n);
        return rc;
    }
    struct sockaddr_in sa;
    rc = uv_ip4_addr(n->o.host, o->port, &sa);
    if (rc == 0)
        rc = uv_tcp_init(loop, &n->listener);
    if (rc < 0) {
        node_tls_free(n);
        gn_free(n);
        return gni_err_from_uv(rc);
    }
    n->listener.data = n;
    n->open_handles = 1;
    rc = uv_tcp_bind(&n->listener, (const struct sockaddr *)&sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&n->listener, 128, on_connection);
    if (rc < 0) {
        n->closing = true;
        uv_close((uv_handle_t *)&n->listener, on_listener_closed);
        return gni_err_from_uv(rc);
    }
    struct sockaddr_in got;
    int gl = sizeof got;
    uv_tcp_getsockname(&n->listener, (struct sockaddr *)&got, &gl);
    n->port = ntohs(got.sin_port);
    *out = n;
    return 0;
}

uint16_t gni_ergo_node_port(const gni_ergo_node *n) { return n ? n->port : 0; }

void gni_ergo_node_close(gni_ergo_node *n, void (*cb)(void *ud), void *ud)
{
    if (!n || n->closing)
        return;
    n->closing = true;
    n->close_cb = cb;
    n->close_ud = ud;
    /* bounded: every pass closes one more link; closed links stay listed until their
     * handles close, so walk to the first one not yet closing */
    for (;;) {
        ergo_link *l = n->links;
        while (l && l->closing)
            l = l->next;
        if (!l)
            break;
        link_close(l);
    }
    uv_close((uv_handle_t *)&n->listener, on_listener_closed);
}

int gni_ergo_dial(gni_ergo_node *n, const char *ip, uint16_t port, const char *peer_node)
{
    if (!n || !ip || n->closing)
        return GN_EINVAL;
    return link_dial(n, ip, port, GNI_EHS_ROLE_START, peer_node, NULL);
}

int gni_ergo_conn_send(gni_ergo_conn *c, uint64_t from_id, bool keep_order,
                       const uint8_t *frame, size_t len)
{
    if (!c || !frame || len < GNI_ENP_HEADER_LEN)
        return GN_EINVAL;
    if (c->info.peer_max_message_size && len > c->info.peer_max_message_size)
        return GN_ETOOBIG;
    uint64_t id;
    int rc = gni_pool_pick(&c->pool, from_id, keep_order, &id);
    if (rc < 0)
        return rc;
    ergo_link *l = node_find_link(c->n, id);
    if (!l)
        return GN_ECLOSED;
    return link_write(l, frame, len);
}

unsigned gni_ergo_conn_links(const gni_ergo_conn *c) { return c ? c->pool.nlinks : 0; }

const gni_ehs_result *gni_ergo_conn_info(const gni_ergo_conn *c) { return c ? &c->info : NULL; }

int gni_ergo_conn_kill_link(gni_ergo_conn *c, unsigned idx)
{
    if (!c || idx >= c->pool.nlinks)
        return GN_ENOTFOUND;
    ergo_link *l = node_find_link(c->n, c->pool.link[idx]);
    if (!l)
        return GN_ENOTFOUND;
    link_close(l);
    return 0;
}

int gni_ergo_dial_tls(gni_ergo_node *n, const char *ip, uint16_t port, const char *peer_node,
                      bool tls)
{
    if (!tls)
        return gni_ergo_dial(n, ip, port, peer_node);
    if (!n || !ip || n->closing)
        return GN_EINVAL;
    int rc = node_tls_client(n);
    if (rc < 0)
        return rc;
    n->dial_tls = true; /* read by link_dial for this dial only */
    rc = link_dial(n, ip, port, GNI_EHS_ROLE_START, peer_node, NULL);
    n->dial_tls = false;
    return rc;
}

bool gni_ergo_node_tls(const gni_ergo_node *n) { return n && n->tls_server; }
