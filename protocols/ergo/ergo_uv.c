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

#include "gni_tlsbio.h"
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
    bool wfail; /* a write failed for good inside link_write: on_flush closes the link */
    int open_handles;
    char peer[256];    /* dial: expected peer name */
    char dsn[64];      /* accept: "ip:port" of the accepting socket */
    char conn_id[64];  /* join: the connection ID */
    struct ergo_write *batch; /* bytes written this loop turn, sent by on_flush */
    struct ergo_write *spare; /* a written batch kept for reuse (no malloc per flush) */
    char cookie[256];  /* dial: the route's cookie ("" = the node's) */
    uint64_t flags;    /* dial: the route's flags (0 = the node's) */
    gni_ergo_dial_options dopt; /* dial: on_result fires once (then cleared) */
    int err;           /* why the link failed, for on_result */
    ergo_link *next;
    /* TLS (docs/ergo.md "TLS") */
    struct gni_tlsbio *tls;        /* the link's TLS session, or NULL */
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
    gn_edf_dict *peer_dict; /* the peer's Introduce caches: decode its ENP payloads */
    char cookie[256]; /* dialler: the route's cookie and flags, for the joins */
    uint64_t flags;
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
    uv_timer_t join_timer; /* replacement joins held by the pool's back-off */
    int open_handles;
    uv_idle_t flush;   /* runs once per loop turn while a link has a batch */
    uint8_t *rbuf;     /* the read buffer every link reads into (one read at a time) */
    bool rbuf_busy;
    void (*close_cb)(void *ud);
    void *close_ud;
    struct gni_tlsbio_ctx *tls_server; /* the acceptor's TLS, or NULL */
    struct gni_tlsbio_ctx *tls_client; /* made by the first TLS dial */
    bool dial_tls;                  /* during gni_ergo_dial_tls: the route's TLS flag */
};

typedef struct ergo_write {
    uv_write_t req;
    uv_buf_t buf;
    size_t cap; /* bytes after the struct; ERGO_BATCH_CAP for a batch */
} ergo_write;

static void link_close(ergo_link *l);

static gn_time ergo_now(const gni_ergo_node *n) { return (gn_time)uv_now(n->loop) * GN_MS; }

static void link_error(ergo_link *l, int err, const char *diag)
{
    l->err = err;
    if (l->n->o.cb.on_link_error)
        l->n->o.cb.on_link_error(l->n, err, diag, l->n->o.user_data);
    link_close(l);
}

/* Bytes a link may have queued in the kernel's stead before sends push back. */
#define ERGO_LINK_WRITE_MAX (4u << 20)
/* TCP keepalive on every link, as Ergo sets it (ergo-wire.md c). */
#define ERGO_KEEPALIVE_S 15u

/*
 * Writes are batched: link_write appends to the link's batch (one
 * ERGO_BATCH_CAP buffer) and the node's idle handle hands every batch to
 * uv_write once per loop turn, so a burst of small frames costs one write
 * request and one syscall instead of one each (docs/performance.md "ENP over
 * a pool"). A frame that does not fit the batch flushes it first; one larger
 * than a batch is written on its own. The 4 MiB bound counts batched bytes.
 */
#define ERGO_BATCH_CAP (64u << 10)

static void on_written(uv_write_t *req, int status)
{
    (void)status; /* a failed write shows up as a read error on the link */
    ergo_write *w = req->data;
    ergo_link *l = req->handle->data; /* alive: uv_close completes writes first */
    if (w->cap == ERGO_BATCH_CAP && !l->spare && !l->closing) {
        l->spare = w;
        return;
    }
    gn_free(w);
}

static ergo_write *write_new(size_t len)
{
    ergo_write *w = gn_malloc(sizeof *w + len);
    if (w) {
        w->req.data = w;
        w->cap = len;
        w->buf = uv_buf_init((char *)(w + 1), (unsigned)len);
    }
    return w;
}

/* Hands @w to the socket; it is freed by on_written or here on failure. */
static int link_submit(ergo_link *l, ergo_write *w)
{
    w->req.data = w;
    int rc = uv_write(&w->req, (uv_stream_t *)&l->tcp, &w->buf, 1, on_written);
    if (rc < 0) {
        gn_free(w);
        return gni_err_from_uv(rc);
    }
    return 0;
}

static int link_tls_write(ergo_link *l, const uint8_t *p, size_t len);

/* hands the link's batch to uv_write (the kernel gets it now, or when writable) */
static int link_flush(ergo_link *l)
{
    ergo_write *w = l->batch;
    if (!w)
        return 0;
    l->batch = NULL;
    if (w->buf.len == 0) {
        l->spare = l->spare ? l->spare : w;
        if (l->spare != w)
            gn_free(w);
        return 0;
    }
    if (uv_stream_get_write_queue_size((uv_stream_t *)&l->tcp) == 0) {
        /* nothing queued before it: write now, and keep a request (and the loop turn that
         * reports its completion) only for what the kernel did not take */
        int n = uv_try_write((uv_stream_t *)&l->tcp, &w->buf, 1);
        if (n == (int)w->buf.len) {
            w->buf.len = 0;
            l->spare = l->spare ? l->spare : w;
            if (l->spare != w)
                gn_free(w);
            return 0;
        }
        if (n > 0) { /* the rest goes through a request, in order */
            memmove(w->buf.base, w->buf.base + n, w->buf.len - (size_t)n);
            w->buf.len -= (size_t)n;
        } else if (n != UV_EAGAIN) {
            gn_free(w);
            return gni_err_from_uv(n);
        }
    }
    return link_submit(l, w);
}

static void on_flush(uv_idle_t *h)
{
    gni_ergo_node *n = h->data;
    uv_idle_stop(h);
    for (ergo_link *l = n->links; l; l = l->next) /* bounded: the node's links */
        if (!l->closing && (l->wfail || (l->batch && link_flush(l) < 0)))
            link_close(l); /* the socket is gone: as a read error would */
}

/* a write inside link_write failed for good (EPIPE, ECONNRESET): the batch it held is gone,
 * so the link is closed as on_flush would (pending calls and important sends on it end
 * through the connection going down), from the loop rather than inside the caller's send;
 * until then every write on it fails */
static int link_write_failed(ergo_link *l, int rc)
{
    if (rc == GN_ENOMEM)
        return rc;
    l->wfail = true;
    if (!l->n->closing && !uv_is_active((uv_handle_t *)&l->n->flush))
        uv_idle_start(&l->n->flush, on_flush);
    return GN_ECONNRESET;
}

static int link_write(ergo_link *l, const uint8_t *p, size_t len)
{
    if (l->closing)
        return GN_ECLOSED;
    if (l->wfail)
        return GN_ECONNRESET;
    /* a peer that stops reading pushes back instead of growing our queue */
    size_t queued = uv_stream_get_write_queue_size((uv_stream_t *)&l->tcp) +
                    (l->batch ? l->batch->buf.len : 0);
    if (queued + len > ERGO_LINK_WRITE_MAX && queued > 0)
        return GN_EAGAIN;
    if (l->tls) /* records are sealed per frame (TLS links are not batched) */
        return link_tls_write(l, p, len);
    if (l->batch && l->batch->buf.len + len > ERGO_BATCH_CAP) {
        int rc = link_flush(l);
        if (rc < 0)
            return link_write_failed(l, rc);
    }
    if (len > ERGO_BATCH_CAP) { /* a large frame: its own write */
        ergo_write *w = write_new(len);
        if (!w)
            return GN_ENOMEM;
        memcpy(w + 1, p, len);
        int rc = link_submit(l, w);
        return rc < 0 ? link_write_failed(l, rc) : 0;
    }
    if (!l->batch) {
        ergo_write *w = l->spare;
        l->spare = NULL;
        if (!w && !(w = gn_malloc(sizeof *w + ERGO_BATCH_CAP)))
            return GN_ENOMEM;
        w->cap = ERGO_BATCH_CAP;
        w->buf = uv_buf_init((char *)(w + 1), 0);
        l->batch = w;
        if (!l->n->closing && !uv_is_active((uv_handle_t *)&l->n->flush))
            uv_idle_start(&l->n->flush, on_flush);
    }
    memcpy((uint8_t *)(l->batch + 1) + l->batch->buf.len, p, len);
    l->batch->buf.len += len;
    return 0;
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

#define ERGO_READ_LEN 65536u

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    gni_ergo_node *n = ((ergo_link *)h->data)->n;
    (void)suggested;
    /* libuv reads one stream at a time and on_read is done with the bytes before the
     * next read, so every link shares the node's buffer (no malloc per read) */
    if (!n->rbuf_busy) {
        n->rbuf_busy = true;
        buf->base = (char *)n->rbuf;
        buf->len = ERGO_READ_LEN;
        return;
    }
    buf->base = gn_malloc(ERGO_READ_LEN);
    buf->len = buf->base ? ERGO_READ_LEN : 0;
}

static void conn_dial_more(gni_ergo_conn *c);
static void node_arm_joins(gni_ergo_node *n);
static void on_join_timer(uv_timer_t *t);
static int link_dial(gni_ergo_node *n, const char *ip, uint16_t port, gni_ehs_role role,
                     const char *peer, gni_ergo_conn *join, const gni_ergo_dial_options *d);

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
    gn_edf_dict_free(c->peer_dict);
    gn_free(c);
}

static gni_ergo_conn *conn_new(ergo_link *l, const gni_ehs_result *r, bool dialler)
{
    gni_ergo_conn *c = gn_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    /* bounded by the Introduce body (65535 bytes, GNI_EHS_MAX_VALUES values) */
    c->peer_dict = gn_edf_dict_new();
    if (!c->peer_dict || gni_ehs_peer_dict(l->hs, c->peer_dict) < 0) {
        gn_edf_dict_free(c->peer_dict);
        gn_free(c);
        return NULL;
    }
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
    gni_pool_init(&c->pool, dialler, r->pool_size, dialler ? r->ndsn : 0, l->id, ergo_now(l->n));
    memcpy(c->cookie, l->cookie, sizeof c->cookie);
    c->flags = l->flags;
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
        if (c && gni_pool_attach(&c->pool, l->id, ergo_now(n)) == 0) {
            l->c = c;
            l->attached = true;
            l->join_conn = NULL;
        } else {
            c = NULL;
        }
    } else if (r->join) {
        /* b "Join sequence": the ConnectionID must name the connection */
        c = r->conn_id.len ? node_find_conn(n, r->conn_id, r->peer_node, false) : NULL;
        if (c && gni_pool_attach(&c->pool, l->id, ergo_now(n)) == 0) {
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
                                     "pool full, already connected, or the peer's "
                                     "dictionaries refused)");
        return;
    }
    uint64_t max = n->o.max_message_size > UINT32_MAX ? UINT32_MAX : n->o.max_message_size;
    gni_enp_splitter_init(&l->sp, (uint32_t)max);
    if (fresh) {
        bool dialler = c->dialler;
        gni_ergo_dial_options d = l->dopt;
        l->dopt.on_result = NULL;
        if (d.on_result)
            d.on_result(0, c, d.user_data); /* may end c */
        if (n->o.cb.on_conn && !l->closing && conn_alive(n, c))
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

/* ---- TLS under the handshake (docs/ergo.md "TLS"; core/gni_tlsbio.h) -------------------------
 * A TLS link keeps a gni_tlsbio between the socket and the cores: reads are fed to it and its
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
    size_t n = gni_tlsbio_pending(l->tls);
    if (n == 0 || l->closing)
        return 0;
    ergo_write *w = write_new(n);
    if (!w)
        return GN_ENOMEM;
    gn_buf b;
    gn_buf_init(&b, w + 1, n);
    w->buf.len = gni_tlsbio_drain(l->tls, &b);
    return link_submit(l, w);
}

static int link_tls_write(ergo_link *l, const uint8_t *p, size_t len)
{
    int rc = gni_tlsbio_write(l->tls, p, len);
    return rc < 0 ? rc : link_tls_flush(l);
}

/* TLS answers the peer asks for (handshake, key updates) are bounded like frames: a peer that
 * keeps asking and never reads loses the link instead of growing our queue. */
static bool link_tls_overfull(ergo_link *l)
{
    if (uv_stream_get_write_queue_size((uv_stream_t *)&l->tcp) <= ERGO_LINK_WRITE_MAX)
        return false;
    link_error(l, GN_ELIMIT, "TLS: the peer does not read our answers (more than 4 MiB queued)");
    return true;
}

static void link_tls_recv(ergo_link *l, const uint8_t *p, size_t len)
{
    bool was_done = gni_tlsbio_done(l->tls);
    int rc = gni_tlsbio_feed(l->tls, p, len);
    int wr = link_tls_flush(l); /* handshake answers, or the alert that explains a failure */
    if (rc == 0 && wr == 0 && !was_done && gni_tlsbio_done(l->tls) && l->role != GNI_EHS_ROLE_ACCEPT)
        rc = gni_tlsbio_peer_sha1(l->tls, l->tls_peer_sha1); /* before any EHS message is read */
    if (rc < 0 || wr < 0) {
        link_error(l, rc < 0 ? rc : wr, rc < 0 && gni_tlsbio_diag(l->tls)[0] ? gni_tlsbio_diag(l->tls)
                                                                          : "TLS: write failed");
        return;
    }
    if (link_tls_overfull(l))
        return;
    uint8_t plain[GNI_TLSBIO_RECORD_MAX];
    /* bounded: every pass takes a record out of what was fed */
    while (!l->closing) {
        int n = gni_tlsbio_read(l->tls, plain, sizeof plain);
        if (n == GN_EEOF) { /* close_notify: the peer ended the link */
            if (l->hs && gni_ehs_eof(l->hs) < 0) /* during the handshake: say why, as on TCP */
                link_error(l, gni_ehs_error(l->hs), gni_ehs_diag(l->hs));
            else
                link_close(l);
            return;
        }
        if (n < 0) {
            link_error(l, n, gni_tlsbio_diag(l->tls));
            return;
        }
        if (n == 0)
            break;
        link_feed(l, plain, (size_t)n);
    }
    if (!l->closing && link_tls_flush(l) < 0) /* a key update's answer */
        link_error(l, GN_EIO, "TLS: write failed");
    else if (!l->closing)
        (void)link_tls_overfull(l);
}

/* The socket ended: true when TLS explains it (the link is then closed with that diagnostic);
 * false leaves it to the EHS core or a plain close. */
static bool link_tls_eof(ergo_link *l)
{
    if (!l->tls)
        return link_plain_eof(l);
    bool done = gni_tlsbio_done(l->tls);
    if (gni_tlsbio_eof(l->tls) == 0 || (done && l->hs))
        return false;
    link_error(l, gni_tlsbio_error(l->tls), gni_tlsbio_diag(l->tls));
    return true;
}

/* Creates the link's session when it runs TLS; on failure the link is closed (< 0). */
static int link_tls_start(ergo_link *l)
{
    if (!l->tls_want)
        return 0;
    gni_ergo_node *n = l->n;
    bool acc = l->role == GNI_EHS_ROLE_ACCEPT;
    int rc = gni_tlsbio_new(acc ? n->tls_server : n->tls_client, acc ? NULL : l->tls_host, &l->tls);
    if (rc < 0)
        link_error(l, rc, "TLS: cannot start a session");
    return rc;
}

static void link_tls_cfg(ergo_link *l, gni_ehs_config *c)
{
    if (!l->tls)
        return;
    if (l->role == GNI_EHS_ROLE_ACCEPT)
        c->cert_sha1 = gni_tlsbio_ctx_cert_sha1(l->n->tls_server);
    else if (!l->n->o.tls_no_fingerprint)
        c->peer_cert_sha1 = l->tls_peer_sha1; /* filled when the TLS handshake ends */
}

static void link_tls_free(ergo_link *l)
{
    gni_tlsbio_free(l->tls);
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
    gni_tlsbio_ctx_config tc;
    memset(&tc, 0, sizeof tc);
    tc.server = true;
    tc.plain_first = GNI_ERGO_TLS_PLAIN_FIRST;
    tc.plain_diag = GNI_ERGO_TLS_PLAIN_DIAG;
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
    if (rc == 0 && (rc = gni_tlsbio_ctx_new(&tc, &n->tls_server, diag, sizeof diag)) < 0)
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
    gni_tlsbio_ctx_config tc;
    memset(&tc, 0, sizeof tc);
    tc.skip_verify = n->o.tls_skip_verify;
    tc.verify_hint = GNI_ERGO_TLS_VERIFY_HINT;
    int rc = 0;
    if (!tc.skip_verify && n->o.tls_ca_file && (rc = pem_read(n->o.tls_ca_file, &tc.ca_pem)) < 0)
        node_tls_log(n, "cannot read the TLS CA file", n->o.tls_ca_file, NULL);
    char diag[256];
    if (rc == 0 && (rc = gni_tlsbio_ctx_new(&tc, &n->tls_client, diag, sizeof diag)) < 0)
        node_tls_log(n, "TLS setup failed", n->o.tls_ca_file, diag);
    gn_free((void *)tc.ca_pem.base);
    return rc;
}

static void node_tls_free(gni_ergo_node *n)
{
    gni_tlsbio_ctx_free(n->tls_server);
    gni_tlsbio_ctx_free(n->tls_client);
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
    if (buf->base == (char *)l->n->rbuf)
        l->n->rbuf_busy = false;
    else
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
        gn_free(n->rbuf);
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
    gn_free(l->batch);
    gn_free(l->spare);
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
    if (l->batch && l->batch->buf.len) /* best effort, as an immediate write was before */
        (void)uv_try_write((uv_stream_t *)&l->tcp, &l->batch->buf, 1);
    if (!l->attached && l->role == GNI_EHS_ROLE_JOIN && l->join_conn) {
        gni_pool_dial_failed(&l->join_conn->pool, ergo_now(n));
        l->join_conn = NULL;
        if (!n->closing)
            node_arm_joins(n); /* retried after the back-off, not only at the next loss */
    }
    uv_close((uv_handle_t *)&l->tcp, on_link_handle_closed);
    uv_close((uv_handle_t *)&l->timer, on_link_handle_closed);
    if (l->dopt.on_result) { /* a Start dial that never made a connection */
        gni_ergo_dial_options d = l->dopt;
        l->dopt.on_result = NULL;
        d.on_result(l->err ? l->err : GN_ECANCELED, NULL, d.user_data);
    }
    if (!c)
        return;
    l->attached = false;
    l->c = NULL;
    if (gni_pool_detach(&c->pool, l->id, ergo_now(n))) {
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
    const char *cookie = l->cookie[0] ? l->cookie : o->cookie; /* a route's own cookie */
    c.cookie = gn_slice_of(cookie, strlen(cookie));
    c.node = gn_slice_of(o->node, strlen(o->node));
    c.version[0] = gn_slice_of("golemnet", 8);
    c.version[1] = gn_slice_of("0.1", 3);
    c.version[3] = gn_slice_of("MIT", 3);
    c.flags = l->flags ? l->flags : o->flags;
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
                     const char *peer, gni_ergo_conn *join, const gni_ergo_dial_options *d)
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
    if (d) { /* Start dial through a route: its cookie and flags, a result callback */
        snprintf(l->cookie, sizeof l->cookie, "%s", d->cookie ? d->cookie : "");
        l->flags = d->flags;
        l->dopt = *d;
    }
    if (join) {
        l->join_conn = join;
        snprintf(l->conn_id, sizeof l->conn_id, "%s", join->conn_id);
        memcpy(l->cookie, join->cookie, sizeof l->cookie); /* joins use the route's cookie */
        l->flags = join->flags;
    }
    l->tls_want = join ? join->tls : n->dial_tls;
    const char *at = peer ? strchr(peer, '@') : NULL; /* verify the node's host, else the IP */
    snprintf(l->tls_host, sizeof l->tls_host, "%s", at ? at + 1 : ip);
    l->creq.data = l;
    int rc = uv_tcp_connect(&l->creq, &l->tcp, (const struct sockaddr *)&ss, on_connected);
    if (rc < 0) {
        l->join_conn = NULL; /* the caller accounts for the failed dial */
        l->dopt.on_result = NULL; /* and gets the error returned, not called back */
        link_close(l);
        return gni_err_from_uv(rc);
    }
    return 0;
}

/* one timer per node for the replacement joins the pools' back-off holds */
static void node_arm_joins(gni_ergo_node *n)
{
    if (n->closing)
        return;
    gn_time now = ergo_now(n), next = GN_TIME_INFINITY;
    for (gni_ergo_conn *c = n->conns; c; c = c->next) { /* bounded: the list */
        gn_time d = gni_pool_dial_deadline(&c->pool, now);
        next = d < next ? d : next;
    }
    if (next == GN_TIME_INFINITY)
        uv_timer_stop(&n->join_timer);
    else
        uv_timer_start(&n->join_timer, on_join_timer, (next - now + GN_MS - 1) / GN_MS, 0);
}

static void on_join_timer(uv_timer_t *t)
{
    gni_ergo_node *n = t->data;
    /* conn_dial_more runs no callback (a failed dial only counts), so the list holds */
    for (gni_ergo_conn *c = n->conns; c && !n->closing; c = c->next)
        if (c->dialler)
            conn_dial_more(c);
}

static void conn_dial_more(gni_ergo_conn *c)
{
    uint32_t idx;
    /* bounded: want_dial stops at PoolSize links + joins in flight */
    while (gni_pool_want_dial(&c->pool, gn_rng_system(), ergo_now(c->n), &idx)) {
        char ip[64];
        const char *d = c->dsn[idx], *colon = strrchr(d, ':');
        int rc = GN_EINVAL;
        char *end = NULL;
        unsigned long port = colon ? strtoul(colon + 1, &end, 10) : 0;
        if (colon && (size_t)(colon - d) < sizeof ip && end != colon + 1 && !*end && port &&
            port <= UINT16_MAX) { /* a PoolDSN entry the peer sent: "ip:port" */
            snprintf(ip, sizeof ip, "%.*s", (int)(colon - d), d);
            rc = link_dial(c->n, ip, (uint16_t)port, GNI_EHS_ROLE_JOIN, c->peer_node, c, NULL);
        }
        if (rc < 0) {
            gni_pool_dial_failed(&c->pool, ergo_now(c->n));
            break;
        }
    }
    node_arm_joins(c->n); /* replacements the back-off holds */
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
    if (!n || !(n->rbuf = gn_malloc(ERGO_READ_LEN))) {
        gn_free(n);
        return GN_ENOMEM;
    }
    n->loop = loop;
    n->o = *o;
    if (!n->o.host)
        n->o.host = "127.0.0.1";
    int rc = node_tls_setup(n);
    if (rc < 0) {
        gn_free(n->rbuf);
        gn_free(n);
        return rc;
    }
    struct sockaddr_in sa;
    rc = uv_ip4_addr(n->o.host, o->port, &sa);
    if (rc == 0)
        rc = uv_tcp_init(loop, &n->listener);
    if (rc < 0) {
        gn_free(n->rbuf);
        node_tls_free(n);
        gn_free(n);
        return gni_err_from_uv(rc);
    }
    n->listener.data = n;
    uv_idle_init(loop, &n->flush);
    n->flush.data = n;
    n->open_handles = 2;
    /* PortRange: a port in use fails bind (reported by uv_listen) and the socket stays
     * unbound, so the next port is tried on the same handle; bounded by the range */
    uint32_t range = o->port && o->port_range > 1 ? o->port_range : 1;
    for (uint32_t i = 0; i < range && (uint32_t)o->port + i <= UINT16_MAX; i++) {
        sa.sin_port = htons((uint16_t)(o->port + i));
        rc = uv_tcp_bind(&n->listener, (const struct sockaddr *)&sa, 0);
        if (rc == 0)
            rc = uv_listen((uv_stream_t *)&n->listener, 128, on_connection);
        if (rc != UV_EADDRINUSE)
            break;
    }
    if (rc < 0) {
        n->closing = true;
        uv_close((uv_handle_t *)&n->listener, on_listener_closed);
        uv_close((uv_handle_t *)&n->flush, on_listener_closed);
        return gni_err_from_uv(rc);
    }
    struct sockaddr_in got;
    int gl = sizeof got;
    uv_tcp_getsockname(&n->listener, (struct sockaddr *)&got, &gl);
    n->port = ntohs(got.sin_port);
    uv_timer_init(loop, &n->join_timer);
    n->join_timer.data = n;
    n->open_handles++; /* closed like the listener */
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
    uv_close((uv_handle_t *)&n->join_timer, on_listener_closed);
    uv_close((uv_handle_t *)&n->listener, on_listener_closed);
    uv_close((uv_handle_t *)&n->flush, on_listener_closed);
}

/* a Start dial, over TLS when @tls (the client context is made on the first TLS dial) */
static int dial_start(gni_ergo_node *n, const char *ip, uint16_t port, const char *peer_node,
                      const gni_ergo_dial_options *d, bool tls)
{
    if (!n || !ip || n->closing)
        return GN_EINVAL;
    if (tls) {
        int rc = node_tls_client(n);
        if (rc < 0)
            return rc;
    }
    n->dial_tls = tls; /* read by link_dial for this dial only */
    int rc = link_dial(n, ip, port, GNI_EHS_ROLE_START, peer_node, NULL, d);
    n->dial_tls = false;
    return rc;
}

int gni_ergo_dial(gni_ergo_node *n, const char *ip, uint16_t port, const char *peer_node)
{
    return dial_start(n, ip, port, peer_node, NULL, false);
}

int gni_ergo_dial_with(gni_ergo_node *n, const char *ip, uint16_t port, const char *peer_node,
                       const gni_ergo_dial_options *d)
{
    if (!d || (d->cookie && strlen(d->cookie) > 255))
        return GN_EINVAL;
    return dial_start(n, ip, port, peer_node, d, d->tls);
}

int gni_ergo_conn_send(gni_ergo_conn *c, uint64_t from_id, bool keep_order,
                       const uint8_t *frame, size_t len)
{
    if (!c || !frame || len < GNI_ENP_HEADER_LEN)
        return GN_EINVAL;
    if (len > UINT32_MAX) /* the ENP header's length is a u32 */
        return GN_ETOOBIG;
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

const gn_edf_dict *gni_ergo_conn_peer_dict(const gni_ergo_conn *c)
{
    return c ? c->peer_dict : NULL;
}

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
    return dial_start(n, ip, port, peer_node, NULL, tls);
}

bool gni_ergo_node_tls(const gni_ergo_node *n) { return n && n->tls_server; }
