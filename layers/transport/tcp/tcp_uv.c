/*
 * golemnet - the TCP transport (libuv adapter).
 *
 * Addresses: /ip4/<a>/tcp/<port> and /ip6/<a>/tcp/<port>, optionally
 * followed by /p2p/<id> (ignored here). DNS addresses (/dns, /dns4, /dns6)
 * are not handled yet: handles() is false for them, so the dispatcher
 * answers GN_ENOTRANSPORT.
 *
 * Every connection is a gn_stream (struct tcp_conn embeds it first):
 *  - write    -> uv_write with the caller's iovs (zero copy); completion via
 *                gn_stream_complete_write(). Bytes accepted but not yet
 *                completed are bounded by config.write_queue_max (0 = no
 *                bound): a write that would go over it while something is
 *                queued returns GN_EAGAIN, and on_writable follows once the
 *                queue drained to half the bound.
 *  - read_start/read_stop -> uv_read_start/uv_read_stop; one 64 KiB read
 *                buffer per transport instance (reads are delivered
 *                synchronously, so one buffer suffices).
 *  - shutdown -> uv_shutdown; reset -> uv_tcp_close_reset (SO_LINGER 0, RST);
 *  - close    -> uv_close; libuv completes pending writes with UV_ECANCELED
 *                (-> GN_ECANCELED) before the close callback, which emits
 *                closed and frees the connection.
 * Every event reaches the consumer from a libuv callback, never from inside
 * a gn_stream_*() call.
 *
 * Listening: libuv sets SO_REUSEADDR on every TCP bind on Unix
 * (uv__tcp_bind in src/unix/tcp.c), so a restarted listener can rebind a
 * port whose old connections sit in TIME_WAIT. IPv6 listeners are bound
 * IPV6_V6ONLY so /ip4/0.0.0.0/tcp/N and /ip6/::/tcp/N can coexist.
 *
 * Port reuse (on by default; node option "tcp.port_reuse=false" turns it
 * off, as libp2p's TCP transports allow): listeners also set SO_REUSEPORT
 * (before the bind: the socket is made with uv_tcp_init_ex), and a dial
 * leaves from the port of an open listener of the same IP family, its
 * socket bound with SO_REUSEADDR and SO_REUSEPORT before connect. The
 * peer then observes our listen address, which is what a NAT that keeps
 * ports maps, so hole punching (DCUtR, docs/dcutr.md) can target it, and
 * two nodes dialling each other at once from their listen ports make a TCP
 * simultaneous open. A listener on a specific address lends its port only
 * to dials of the same scope (loopback to loopback, other to other); a
 * wildcard listener to every dial of its family. When the bound socket
 * cannot connect at once (EADDRINUSE, EADDRNOTAVAIL: the same four-tuple
 * exists, for instance the peer's simultaneous connection or one in
 * TIME_WAIT) the dial is retried from an ephemeral port. A listener on a
 * concrete port still fails with GN_EADDRINUSE when anything listens
 * there: a probe socket without SO_REUSEPORT is bound first (another
 * SO_REUSEPORT listener of the same user could otherwise share the port;
 * only a race between the probe and the bind still lets it). A dial to the listen port itself on loopback or on
 * the listener's own IP stays unbound (the socket would connect to
 * itself). Without SO_REUSEPORT (Windows) dials are unbound.
 *
 * Dialing: uv_tcp_connect bounded by config.dial_timeout (GN_ETIMEDOUT).
 * gn_op_cancel() on the dial's handle closes the handle at once (uv_close
 * closes the socket inside the call, so a SYN-dropping peer leaves nothing
 * behind); the connect callback then sees UV_ECANCELED and the close
 * callback reports GN_ECANCELED.
 *
 * Limits: config.max_connections counts open connections plus dials in
 * progress; an inbound connection over it is closed right after accept (the
 * accept callback never sees it), a dial over it fails with GN_ELIMIT.
 *
 * Keepalive: config.keepalive_period > 0 turns on OS keepalive
 * (uv_tcp_keepalive, whole seconds, at least 1). config.app_keepalive_period
 * > 0 with non-empty config.app_keepalive_bytes writes those bytes whenever
 * the connection has not been written to for that long (the application
 * keepalive Ergo's TCP meta-process offers); these writes are internal and
 * not counted in the stream metrics.
 *
 * Thread context: loop thread only.
 */
#include "golemnet/host.h"
#include "golemnet/loop.h"
#include "golemnet/multiaddr.h"
#include "golemnet/registry.h"
#include "golemnet/transport.h"

#include "gni.h"
#include "gni_wq.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <uv.h>
#ifndef _WIN32
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

#define TCP_READ_BUF_LEN (64u * 1024u)
#define TCP_STACK_IOVS 16

typedef struct tcp_listener tcp_listener;

/* Per transport instance (t->state). */
typedef struct tcp_state {
    tcp_listener *listeners; /* open listeners (port reuse: dial sources) */
    uint8_t *rbuf;       /* shared read buffer, TCP_READ_BUF_LEN bytes */
    uint8_t *ka_bytes;   /* copy of config.app_keepalive_bytes */
    size_t ka_len;
    uint32_t ndialing;   /* dials in progress */
    uint32_t nlisteners; /* open listeners */
} tcp_state;

struct tcp_listener {
    gn_listener base; /* first: gn_listener * <-> tcp_listener * */
    uv_tcp_t h;
    tcp_listener *next;          /* in tcp_state.listeners */
    struct sockaddr_storage addr; /* the bound address */
    bool reuseport;               /* bound with SO_REUSEPORT */
    gn_listener_close_cb close_cb;
    void *close_arg;
    bool failed;  /* listener error reported once */
    bool closing;
};

typedef struct tcp_conn {
    gn_stream s; /* first: gn_stream * <-> tcp_conn * */
    uv_tcp_t h;
    gn_transport *t;
    /* addresses, cached when the connection opens */
    struct sockaddr_storage local;
    struct sockaddr_storage remote;
    /* write queue accounting */
    gni_wq wq;           /* stream writes accepted, not completed (libuv holds the iovs) */
    /* state */
    bool open;           /* counted in t->nconns */
    bool closing;
    bool eof;            /* EOF or read error seen: uv reading is over */
    bool shut;           /* shutdown requested */
    /* application keepalive */
    gn_timer ka_timer;
    gn_time last_write;
    bool ka_pending;     /* a keepalive write is in flight */
    /* dialing */
    gn_op op;            /* the dial's cancellation handle */
    uv_connect_t creq;
    gn_timer dial_timer;
    gn_dial_cb dial_cb;
    void *dial_arg;
    int dial_err;
    /* half-close */
    uv_shutdown_t sreq;
} tcp_conn;

/* An internal keepalive write (stream writes are gni_wreq with a uv_write_t
 * in their extra storage). */
typedef struct tcp_ka_req {
    uv_write_t req;
} tcp_ka_req;

static const gn_stream_ops tcp_stream_ops;

/* ---- addresses ---- */

/* Reads @ma as ip4|ip6 + tcp (+ optional trailing p2p) into @ss.
 * Returns 0, GN_ENOTRANSPORT (other shape) or GN_EINVAL (bad value). */
static int tcp_ma_to_sockaddr(const gn_multiaddr *ma, struct sockaddr_storage *ss)
{
    size_t n = gn_multiaddr_count(ma);
    gn_ma_component ip, port;
    if (n < 2 || n > 3) {
        return GN_ENOTRANSPORT;
    }
    if (gn_multiaddr_component(ma, 0, &ip) < 0 || gn_multiaddr_component(ma, 1, &port) < 0) {
        return GN_EINVAL;
    }
    if (port.code != GN_MA_TCP) {
        return GN_ENOTRANSPORT;
    }
    if (n == 3) {
        gn_ma_component p2p;
        if (gn_multiaddr_component(ma, 2, &p2p) < 0 || p2p.code != GN_MA_P2P) {
            return GN_ENOTRANSPORT;
        }
    }
    if (port.value_len != 2) {
        return GN_EINVAL;
    }
    uint16_t p = (uint16_t)((port.value[0] << 8) | port.value[1]);
    memset(ss, 0, sizeof *ss);
    if (ip.code == GN_MA_IP4) {
        if (ip.value_len != 4) {
            return GN_EINVAL;
        }
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        memcpy(&sin->sin_addr, ip.value, 4);
        sin->sin_port = htons(p);
        return 0;
    }
    if (ip.code == GN_MA_IP6) {
        if (ip.value_len != 16) {
            return GN_EINVAL;
        }
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        sin6->sin6_family = AF_INET6;
        memcpy(&sin6->sin6_addr, ip.value, 16);
        sin6->sin6_port = htons(p);
        return 0;
    }
    return GN_ENOTRANSPORT;
}

/* Builds /ip4|ip6/<a>/tcp/<port> in binary form (codes < 0x80: one-byte
 * varints; multiaddr spec, binary packed form) and parses it. */
static int tcp_sockaddr_to_ma(const struct sockaddr_storage *ss, gn_multiaddr **out)
{
    uint8_t b[1 + 16 + 1 + 2];
    size_t n = 0;
    uint16_t port;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
        b[n++] = GN_MA_IP4;
        memcpy(b + n, &sin->sin_addr, 4);
        n += 4;
        port = ntohs(sin->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
        b[n++] = GN_MA_IP6;
        memcpy(b + n, &sin6->sin6_addr, 16);
        n += 16;
        port = ntohs(sin6->sin6_port);
    } else {
        return GN_ENOTSUP;
    }
    b[n++] = GN_MA_TCP;
    b[n++] = (uint8_t)(port >> 8);
    b[n++] = (uint8_t)(port & 0xff);
    return gn_multiaddr_from_bytes(b, n, out);
}

static bool tcp_handles(const gn_transport *t, const gn_multiaddr *ma)
{
    (void)t;
    struct sockaddr_storage ss;
    return ma != NULL && tcp_ma_to_sockaddr(ma, &ss) == 0;
}

/* ---- port reuse ---- */

/* True unless the node's options say "tcp.port_reuse=false" (or 0). */
static bool tcp_reuse_on(const gn_transport *t)
{
#ifdef SO_REUSEPORT
    const char *v = t->host ? gn_host_option(t->host, "tcp", "port_reuse", 0) : NULL;
    return !v || (strcmp(v, "false") != 0 && strcmp(v, "0") != 0);
#else
    (void)t;
    return false;
#endif
}

/* Sets SO_REUSEADDR and SO_REUSEPORT on @h's socket (made by
 * uv_tcp_init_ex). Returns 0 or a uv error. */
static int tcp_set_reuse(uv_tcp_t *h)
{
#ifdef SO_REUSEPORT
    uv_os_fd_t fd;
    int rc = uv_fileno((uv_handle_t *)h, &fd);
    if (rc < 0) {
        return rc;
    }
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
        return uv_translate_sys_error(errno);
    }
    return 0;
#else
    (void)h;
    return UV_ENOTSUP;
#endif
}

static bool tcp_sa_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        const uint8_t *a = (const uint8_t *)&((const struct sockaddr_in *)ss)->sin_addr;
        return a[0] == 127;
    }
    static const uint8_t lo6[16] = {[15] = 1};
    return memcmp(&((const struct sockaddr_in6 *)ss)->sin6_addr, lo6, 16) == 0;
}

static bool tcp_sa_unspecified(const struct sockaddr_storage *ss)
{
    static const uint8_t zero[16];
    if (ss->ss_family == AF_INET) {
        return memcmp(&((const struct sockaddr_in *)ss)->sin_addr, zero, 4) == 0;
    }
    return memcmp(&((const struct sockaddr_in6 *)ss)->sin6_addr, zero, 16) == 0;
}

static bool tcp_sa_same_ip(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family) {
        return false;
    }
    if (a->ss_family == AF_INET) {
        return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
                      &((const struct sockaddr_in *)b)->sin_addr, 4) == 0;
    }
    return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                  &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
}

static uint16_t tcp_sa_port(const struct sockaddr_storage *ss)
{
    return ntohs(ss->ss_family == AF_INET ? ((const struct sockaddr_in *)ss)->sin_port
                                          : ((const struct sockaddr_in6 *)ss)->sin6_port);
}

/* The source address a dial to @dst leaves from under port reuse: an open
 * listener's address of the same family and scope. False: none fits. */
static bool tcp_reuse_source(const gn_transport *t, const struct sockaddr_storage *dst,
                             struct sockaddr_storage *src)
{
    const tcp_state *st = t->state;
    if (!tcp_reuse_on(t)) {
        return false;
    }
    for (const tcp_listener *l = st->listeners; l; l = l->next) {
        if (l->closing || l->failed || !l->reuseport || l->addr.ss_family != dst->ss_family) {
            continue;
        }
        if (!tcp_sa_unspecified(&l->addr) && tcp_sa_loopback(&l->addr) != tcp_sa_loopback(dst)) {
            continue;
        }
        if (tcp_sa_port(&l->addr) == tcp_sa_port(dst) &&
            (tcp_sa_loopback(dst) || tcp_sa_same_ip(&l->addr, dst))) {
            /* our own listener, or one at the same port on this host: a
             * socket bound to the destination would connect to itself */
            continue;
        }
        *src = l->addr;
        return true;
    }
    return false;
}

/* True when a listener of this instance holds @ss's port on an address that
 * overlaps it (SO_REUSEPORT would otherwise let the second bind pass). */
static bool tcp_port_taken(const gn_transport *t, const struct sockaddr_storage *ss)
{
    const tcp_state *st = t->state;
    uint16_t port = tcp_sa_port(ss);
    if (port == 0) {
        return false;
    }
    for (const tcp_listener *l = st->listeners; l; l = l->next) {
        if (l->closing || l->addr.ss_family != ss->ss_family || tcp_sa_port(&l->addr) != port) {
            continue;
        }
        size_t off = ss->ss_family == AF_INET ? offsetof(struct sockaddr_in, sin_addr)
                                              : offsetof(struct sockaddr_in6, sin6_addr);
        size_t len = ss->ss_family == AF_INET ? 4 : 16;
        if (tcp_sa_unspecified(&l->addr) || tcp_sa_unspecified(ss) ||
            memcmp((const uint8_t *)&l->addr + off, (const uint8_t *)ss + off, len) == 0) {
            return true;
        }
    }
    return false;
}

/* With port reuse a listener's SO_REUSEPORT would let it share a concrete
 * port with any other SO_REUSEPORT listener of the same user, silently.
 * A probe socket without SO_REUSEPORT (SO_REUSEADDR only, as libuv binds)
 * is bound first: it fails with EADDRINUSE exactly when something listens
 * there. Returns 0 or GN_EADDRINUSE; other probe failures are left to the
 * real bind. */
static int tcp_probe_listen_port(const struct sockaddr_storage *ss)
{
#ifdef SO_REUSEPORT
    if (tcp_sa_port(ss) == 0) {
        return 0; /* the kernel picks a port no listener holds */
    }
    int fd = socket(ss->ss_family, SOCK_STREAM, 0);
    if (fd < 0) {
        return 0;
    }
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ss->ss_family == AF_INET6) {
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    }
    socklen_t alen = ss->ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                              : sizeof(struct sockaddr_in6);
    int rc = bind(fd, (const struct sockaddr *)ss, alen) < 0 && errno == EADDRINUSE
                 ? GN_EADDRINUSE
                 : 0;
    close(fd);
    return rc;
#else
    (void)ss;
    return 0;
#endif
}

/* ---- transport instance ---- */

static int tcp_init(gn_transport *t)
{
    tcp_state *st = t->state;
    st->rbuf = gn_malloc(TCP_READ_BUF_LEN);
    if (!st->rbuf) {
        return GN_ENOMEM;
    }
    const gn_slice ka = t->config.app_keepalive_bytes;
    if (t->config.app_keepalive_period > 0 && ka.len > 0) {
        if (!ka.base) {
            gn_free(st->rbuf);
            st->rbuf = NULL;
            return GN_EINVAL;
        }
        st->ka_bytes = gn_malloc(ka.len);
        if (!st->ka_bytes) {
            gn_free(st->rbuf);
            st->rbuf = NULL;
            return GN_ENOMEM;
        }
        memcpy(st->ka_bytes, ka.base, ka.len);
        st->ka_len = ka.len;
    }
    /* the borrowed slice is not valid after init */
    t->config.app_keepalive_bytes = gn_slice_of(st->ka_bytes, st->ka_len);
    return 0;
}

static void tcp_fini(gn_transport *t)
{
    tcp_state *st = t->state;
    assert(st->ndialing == 0 && st->nlisteners == 0 && t->nconns == 0);
    gn_free(st->rbuf);
    gn_free(st->ka_bytes);
    st->rbuf = NULL;
    st->ka_bytes = NULL;
}

static bool tcp_at_limit(const gn_transport *t)
{
    const tcp_state *st = t->state;
    return t->config.max_connections > 0 &&
           (uint64_t)t->nconns + st->ndialing >= t->config.max_connections;
}

/* ---- connection ---- */

static void tcp_ka_timer_fn(gn_timer *timer, void *arg);

/* Applies socket options and starts the connection's life as a stream. */
static int tcp_conn_open(tcp_conn *c)
{
    gn_transport *t = c->t;
    int len = (int)sizeof c->local;
    int rc;
    if (t->config.nodelay) {
        (void)uv_tcp_nodelay(&c->h, 1);
    }
    if (t->config.keepalive_period > 0) {
        gn_time secs = t->config.keepalive_period / GN_S;
        if (secs < 1) {
            secs = 1;
        }
        if (secs > 0x7fffffff) {
            secs = 0x7fffffff;
        }
        (void)uv_tcp_keepalive(&c->h, 1, (unsigned)secs);
    }
    if ((rc = uv_tcp_getsockname(&c->h, (struct sockaddr *)&c->local, &len)) < 0) {
        GN_LOG(GN_LOG_DEBUG, "tcp", "getsockname: %s", uv_strerror(rc));
        memset(&c->local, 0, sizeof c->local);
    }
    len = (int)sizeof c->remote;
    if ((rc = uv_tcp_getpeername(&c->h, (struct sockaddr *)&c->remote, &len)) < 0) {
        GN_LOG(GN_LOG_DEBUG, "tcp", "getpeername: %s", uv_strerror(rc));
        memset(&c->remote, 0, sizeof c->remote);
    }
    rc = gn_stream_init(&c->s, &tcp_stream_ops, t->loop, NULL);
    if (rc < 0) {
        return rc;
    }
    c->open = true;
    t->nconns++;
    tcp_state *st = t->state;
    gn_timer_init(t->loop, &c->ka_timer);
    c->last_write = gn_loop_now(t->loop);
    if (t->config.app_keepalive_period > 0 && st->ka_len > 0) {
        rc = gn_timer_start(&c->ka_timer, t->config.app_keepalive_period, tcp_ka_timer_fn, c);
        if (rc < 0) {
            GN_LOG(GN_LOG_WARNING, "tcp", "keepalive timer: %s", gn_strerror(rc));
        }
    }
    return 0;
}

static tcp_conn *tcp_conn_alloc(gn_transport *t)
{
    tcp_conn *c = gn_calloc(1, sizeof *c);
    if (!c) {
        return NULL;
    }
    c->t = t;
    gni_wq_init(&c->wq, &c->s, t->config.write_queue_max, 0);
    gn_timer_init(t->loop, &c->ka_timer);
    gn_timer_init(t->loop, &c->dial_timer);
    c->h.data = c;
    return c;
}

static void tcp_conn_closed_cb(uv_handle_t *h)
{
    tcp_conn *c = h->data;
    gn_timer_stop(&c->ka_timer);
    if (c->open) {
        c->open = false;
        assert(c->t->nconns > 0);
        c->t->nconns--;
    }
    gn_stream_emit_closed(&c->s);
    gni_wq_fini(&c->wq); /* libuv completed every write before this callback */
    gn_free(c);
}

/* Close callback for a handle that never became a stream. */
static void tcp_conn_free_cb(uv_handle_t *h)
{
    gn_free(h->data);
}

static void tcp_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    tcp_conn *c = h->data;
    tcp_state *st = c->t->state;
    buf->base = (char *)st->rbuf;
    buf->len = TCP_READ_BUF_LEN;
}

static void tcp_read_cb(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
    tcp_conn *c = h->data;
    if (nread > 0) {
        if (!c->closing && gn_stream_is_reading(&c->s)) {
            gn_stream_emit_data(&c->s, (const uint8_t *)buf->base, (size_t)nread);
        }
        return;
    }
    if (nread == 0 || c->closing) {
        return; /* EAGAIN */
    }
    c->eof = true;
    (void)uv_read_stop(h);
    if (nread == UV_EOF) {
        gn_stream_emit_eof(&c->s);
    } else {
        GN_LOG(GN_LOG_DEBUG, "tcp", "read: %s", uv_strerror((int)nread));
        gn_stream_emit_error(&c->s, gni_err_from_uv((int)nread));
    }
}

static void tcp_ka_write_cb(uv_write_t *req, int status)
{
    (void)status;
    tcp_conn *c = req->handle->data;
    c->ka_pending = false;
    gn_free(GNI_CONTAINER_OF(req, tcp_ka_req, req));
}

static void tcp_write_cb(uv_write_t *req, int status)
{
    gni_wreq *w = gni_wreq_of_extra(req);
    tcp_conn *c = req->handle->data;
    int st = status < 0 ? gni_err_from_uv(status) : 0;
    if (status < 0 && status != UV_ECANCELED) {
        GN_LOG(GN_LOG_DEBUG, "tcp", "write: %s", uv_strerror(status));
    }
    gni_wq_complete(&c->wq, w, st);
    /* c stays valid: it is freed only by the close callback, which libuv
     * runs after every write callback of the handle. */
    if (c->closing) {
        return;
    }
    if (status < 0 && status != UV_ECANCELED) {
        gn_stream_emit_error(&c->s, st);
        return;
    }
    if (gni_wq_writable_due(&c->wq)) {
        gn_stream_emit_writable(&c->s);
    }
}

static void tcp_ka_timer_fn(gn_timer *timer, void *arg)
{
    (void)timer;
    tcp_conn *c = arg;
    gn_transport *t = c->t;
    tcp_state *st = t->state;
    gn_time period = t->config.app_keepalive_period;
    gn_time now = gn_loop_now(t->loop);
    if (c->closing) {
        return;
    }
    if (c->shut || (gn_stream_flags(&c->s) & GN_STREAM_ERRORED)) {
        return; /* nothing more may be written */
    }
    if (!gni_wq_empty(&c->wq) || c->ka_pending) {
        c->last_write = now; /* writing is in progress: not idle */
    }
    gn_time idle = now - c->last_write;
    if (idle >= period) {
        tcp_ka_req *w = gn_calloc(1, sizeof *w);
        if (w) {
            uv_buf_t b = uv_buf_init((char *)st->ka_bytes, (unsigned)st->ka_len);
            int rc = uv_write(&w->req, (uv_stream_t *)&c->h, &b, 1, tcp_ka_write_cb);
            if (rc < 0) {
                GN_LOG(GN_LOG_DEBUG, "tcp", "keepalive write: %s", uv_strerror(rc));
                gn_free(w);
            } else {
                c->ka_pending = true;
            }
        }
        c->last_write = now;
        idle = 0;
    }
    (void)gn_timer_start(&c->ka_timer, period - idle, tcp_ka_timer_fn, c);
}

/* ---- stream ops ---- */

static int tcp_s_write(gn_stream *s, const gn_slice *iov, size_t iovcnt, gn_write_cb cb,
                       void *arg)
{
    tcp_conn *c = (tcp_conn *)s;
    size_t len = 0;
    int rc = gni_wq_admit(&c->wq, iov, iovcnt, &len);
    if (rc < 0) {
        return rc;
    }
    if (iovcnt > UINT32_MAX) {
        return GN_EINVAL;
    }
    uv_buf_t small[TCP_STACK_IOVS];
    uv_buf_t *bufs = small;
    if (iovcnt > TCP_STACK_IOVS) {
        bufs = gn_calloc(iovcnt, sizeof *bufs);
        if (!bufs) {
            return GN_ENOMEM;
        }
    }
    for (size_t i = 0; i < iovcnt; i++) {
        /* libuv only reads the bytes; the cast drops const for uv_buf_t */
        bufs[i].base = (char *)(uintptr_t)iov[i].base;
        bufs[i].len = iov[i].len;
    }
    gni_wreq *w;
    rc = gni_wq_push(&c->wq, iov, iovcnt, len, cb, arg, false, sizeof(uv_write_t), &w);
    if (rc == 0) {
        /* libuv copies the uv_buf_t array; the bytes stay borrowed */
        uv_write_t *req = gni_wreq_extra(w);
        int urc = uv_write(req, (uv_stream_t *)&c->h, bufs, (unsigned)iovcnt, tcp_write_cb);
        if (urc < 0) {
            GN_LOG(GN_LOG_DEBUG, "tcp", "uv_write: %s", uv_strerror(urc));
            gni_wq_drop(&c->wq, w);
            rc = gni_err_from_uv(urc);
        } else {
            c->last_write = gn_loop_now(c->t->loop);
        }
    }
    if (bufs != small) {
        gn_free(bufs);
    }
    return rc;
}

static int tcp_s_read_start(gn_stream *s)
{
    tcp_conn *c = (tcp_conn *)s;
    if (c->eof) {
        return 0; /* nothing more will come; the core flag is enough */
    }
    int rc = uv_read_start((uv_stream_t *)&c->h, tcp_alloc_cb, tcp_read_cb);
    if (rc == UV_EALREADY) {
        return 0;
    }
    return rc < 0 ? gni_err_from_uv(rc) : 0;
}

static int tcp_s_read_stop(gn_stream *s)
{
    tcp_conn *c = (tcp_conn *)s;
    (void)uv_read_stop((uv_stream_t *)&c->h);
    return 0;
}

static void tcp_shutdown_cb(uv_shutdown_t *req, int status)
{
    tcp_conn *c = GNI_CONTAINER_OF(req, tcp_conn, sreq);
    if (status < 0 && status != UV_ECANCELED && !c->closing) {
        GN_LOG(GN_LOG_DEBUG, "tcp", "shutdown: %s", uv_strerror(status));
        gn_stream_emit_error(&c->s, gni_err_from_uv(status));
    }
}

static int tcp_s_shutdown(gn_stream *s)
{
    tcp_conn *c = (tcp_conn *)s;
    int rc = uv_shutdown(&c->sreq, (uv_stream_t *)&c->h, tcp_shutdown_cb);
    if (rc < 0) {
        return gni_err_from_uv(rc);
    }
    c->shut = true;
    return 0;
}

static void tcp_s_close(gn_stream *s)
{
    tcp_conn *c = (tcp_conn *)s;
    c->closing = true;
    gn_timer_stop(&c->ka_timer);
    uv_close((uv_handle_t *)&c->h, tcp_conn_closed_cb);
}

static void tcp_s_reset(gn_stream *s)
{
    tcp_conn *c = (tcp_conn *)s;
    c->closing = true;
    gn_timer_stop(&c->ka_timer);
    /* fails (UV_EINVAL) while a shutdown is pending: then a plain close */
    if (uv_tcp_close_reset(&c->h, tcp_conn_closed_cb) < 0) {
        uv_close((uv_handle_t *)&c->h, tcp_conn_closed_cb);
    }
}

static int tcp_s_addr(gn_stream *s, gn_stream_addr_kind kind, gn_multiaddr **out)
{
    tcp_conn *c = (tcp_conn *)s;
    const struct sockaddr_storage *ss = kind == GN_ADDR_LOCAL ? &c->local : &c->remote;
    if (ss->ss_family != AF_INET && ss->ss_family != AF_INET6) {
        return GN_ENOTSUP;
    }
    return tcp_sockaddr_to_ma(ss, out);
}

static const gn_stream_ops tcp_stream_ops = {
    .abi = GN_STREAM_ABI,
    .name = "tcp",
    .write = tcp_s_write,
    .read_start = tcp_s_read_start,
    .read_stop = tcp_s_read_stop,
    .shutdown = tcp_s_shutdown,
    .reset = tcp_s_reset,
    .close = tcp_s_close,
    .addr = tcp_s_addr,
};

/* ---- listening ---- */

static void tcp_connection_cb(uv_stream_t *server, int status)
{
    tcp_listener *l = server->data;
    gn_transport *t = l->base.transport;
    if (l->closing || l->failed) {
        return;
    }
    if (status < 0) {
        GN_LOG(GN_LOG_WARNING, "tcp", "listener: %s", uv_strerror(status));
        l->failed = true;
        l->base.accept_cb(l->base.accept_arg, &l->base, gni_err_from_uv(status), NULL);
        return;
    }
    tcp_conn *c = tcp_conn_alloc(t);
    if (!c) {
        GN_LOG(GN_LOG_WARNING, "tcp", "accept: out of memory");
        return; /* the connection stays in the backlog */
    }
    int rc = uv_tcp_init(gn_loop_uv(t->loop), &c->h);
    if (rc < 0) {
        gn_free(c);
        return;
    }
    c->h.data = c;
    rc = uv_accept(server, (uv_stream_t *)&c->h);
    if (rc < 0 || tcp_at_limit(t)) {
        if (rc < 0) {
            GN_LOG(GN_LOG_DEBUG, "tcp", "uv_accept: %s", uv_strerror(rc));
        } else {
            GN_LOG(GN_LOG_INFO, "tcp", "inbound connection over max_connections closed");
        }
        uv_close((uv_handle_t *)&c->h, tcp_conn_free_cb);
        return;
    }
    rc = tcp_conn_open(c);
    if (rc < 0) {
        uv_close((uv_handle_t *)&c->h, tcp_conn_free_cb);
        return;
    }
    l->base.accept_cb(l->base.accept_arg, &l->base, 0, &c->s);
}

static void tcp_listener_free_cb(uv_handle_t *h)
{
    gn_free(h->data);
}

static int tcp_listen(gn_transport *t, const gn_multiaddr *ma, gn_accept_cb cb, void *arg,
                      gn_listener **out)
{
    struct sockaddr_storage ss;
    int rc = tcp_ma_to_sockaddr(ma, &ss);
    if (rc < 0) {
        return rc == GN_ENOTRANSPORT ? GN_EINVAL : rc;
    }
    tcp_listener *l = gn_calloc(1, sizeof *l);
    if (!l) {
        return GN_ENOMEM;
    }
    l->base.transport = t;
    l->base.accept_cb = cb;
    l->base.accept_arg = arg;
    bool reuse = tcp_reuse_on(t);
    if (reuse && (tcp_port_taken(t, &ss) || tcp_probe_listen_port(&ss) < 0)) {
        gn_free(l);
        return GN_EADDRINUSE;
    }
    /* with port reuse the socket is made now, so SO_REUSEPORT is set
     * before the bind */
    rc = reuse ? uv_tcp_init_ex(gn_loop_uv(t->loop), &l->h, ss.ss_family)
               : uv_tcp_init(gn_loop_uv(t->loop), &l->h);
    if (rc < 0) {
        gn_free(l);
        return gni_err_from_uv(rc);
    }
    l->h.data = l;
    if (reuse) {
        rc = tcp_set_reuse(&l->h);
        if (rc < 0) {
            GN_LOG(GN_LOG_DEBUG, "tcp", "listener SO_REUSEPORT: %s", uv_strerror(rc));
            rc = 0; /* listen without it; dials then stay unbound */
        } else {
            l->reuseport = true;
        }
    }
    /* SO_REUSEADDR is set by libuv's bind on Unix */
    unsigned flags = ss.ss_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0;
    rc = uv_tcp_bind(&l->h, (const struct sockaddr *)&ss, flags);
    if (rc == 0) {
        unsigned backlog = t->config.listen_backlog ? t->config.listen_backlog : 511;
        if (backlog > 0x7fffffff) {
            backlog = 0x7fffffff;
        }
        /* a bind EADDRINUSE is reported here (libuv delays it) */
        rc = uv_listen((uv_stream_t *)&l->h, (int)backlog, tcp_connection_cb);
    }
    if (rc < 0) {
        GN_LOG(GN_LOG_DEBUG, "tcp", "listen: %s", uv_strerror(rc));
        uv_close((uv_handle_t *)&l->h, tcp_listener_free_cb);
        return gni_err_from_uv(rc);
    }
    int alen = (int)sizeof l->addr;
    if (uv_tcp_getsockname(&l->h, (struct sockaddr *)&l->addr, &alen) < 0) {
        l->addr = ss;
    }
    tcp_state *st = t->state;
    st->nlisteners++;
    l->next = st->listeners;
    st->listeners = l;
    *out = &l->base;
    return 0;
}

static int tcp_listener_addr(gn_listener *gl, gn_multiaddr **out)
{
    tcp_listener *l = (tcp_listener *)gl;
    struct sockaddr_storage ss;
    int len = (int)sizeof ss;
    int rc = uv_tcp_getsockname(&l->h, (struct sockaddr *)&ss, &len);
    if (rc < 0) {
        return gni_err_from_uv(rc);
    }
    return tcp_sockaddr_to_ma(&ss, out);
}

static void tcp_listener_closed_cb(uv_handle_t *h)
{
    tcp_listener *l = h->data;
    tcp_state *st = l->base.transport->state;
    assert(st->nlisteners > 0);
    st->nlisteners--;
    for (tcp_listener **pp = &st->listeners; *pp; pp = &(*pp)->next) {
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    }
    if (l->close_cb) {
        l->close_cb(&l->base, l->close_arg);
    }
    gn_free(l);
}

static void tcp_listener_close(gn_listener *gl, gn_listener_close_cb cb, void *arg)
{
    tcp_listener *l = (tcp_listener *)gl;
    assert(!l->closing);
    l->closing = true;
    l->close_cb = cb;
    l->close_arg = arg;
    uv_close((uv_handle_t *)&l->h, tcp_listener_closed_cb);
}

/* ---- dialing ---- */

/* The dial failed and the handle is closed: report and free. */
static void tcp_dial_failed_cb(uv_handle_t *h)
{
    tcp_conn *c = h->data;
    tcp_state *st = c->t->state;
    assert(st->ndialing > 0);
    st->ndialing--;
    gn_dial_cb cb = c->dial_cb;
    void *arg = c->dial_arg;
    int err = c->dial_err < 0 ? c->dial_err : GN_EIO;
    gn_free(c);
    cb(arg, err, NULL);
}

static void tcp_dial_fail(tcp_conn *c, int err)
{
    gn_timer_stop(&c->dial_timer);
    if (c->dial_err == 0) {
        c->dial_err = err;
    }
    if (!uv_is_closing((uv_handle_t *)&c->h)) {
        uv_close((uv_handle_t *)&c->h, tcp_dial_failed_cb);
    }
}

/* gn_op_cancel() on a dial: uv_close() closes the socket right away (the
 * fd is closed inside the call); the connect callback then runs with
 * UV_ECANCELED and the close callback reports GN_ECANCELED. */
static void tcp_dial_cancel(gn_op *op)
{
    tcp_conn *c = GNI_CONTAINER_OF(op, tcp_conn, op);
    GN_LOG(GN_LOG_DEBUG, "tcp", "dial cancelled");
    c->dial_err = GN_ECANCELED; /* also over a failure not reported yet */
    tcp_dial_fail(c, GN_ECANCELED);
}

static void tcp_dial_timeout_fn(gn_timer *timer, void *arg)
{
    (void)timer;
    tcp_conn *c = arg;
    GN_LOG(GN_LOG_DEBUG, "tcp", "dial timed out");
    /* closing the handle makes libuv run the connect callback with
     * UV_ECANCELED, then the close callback reports GN_ETIMEDOUT */
    tcp_dial_fail(c, GN_ETIMEDOUT);
}

static void tcp_connect_cb(uv_connect_t *req, int status)
{
    tcp_conn *c = GNI_CONTAINER_OF(req, tcp_conn, creq);
    gn_transport *t = c->t;
    tcp_state *st = t->state;
    gn_timer_stop(&c->dial_timer);
    if (c->dial_err < 0) {
        return; /* already failing (timeout); the close callback reports */
    }
    if (status < 0) {
        GN_LOG(GN_LOG_DEBUG, "tcp", "connect: %s", uv_strerror(status));
        tcp_dial_fail(c, gni_err_from_uv(status));
        return;
    }
    /* this dial no longer counts as "dialing"; an inbound connection may
     * have taken the last slot meanwhile */
    st->ndialing--;
    if (tcp_at_limit(t)) {
        st->ndialing++;
        tcp_dial_fail(c, GN_ELIMIT);
        return;
    }
    int rc = tcp_conn_open(c);
    if (rc < 0) {
        st->ndialing++;
        tcp_dial_fail(c, rc);
        return;
    }
    c->dial_cb(c->dial_arg, 0, &c->s);
}

/* Makes a dial's connection and starts its connect to @dst; with @src the
 * socket is first bound there with SO_REUSEADDR and SO_REUSEPORT (bind(2)
 * on the fd: libuv's bind would report EADDRINUSE only later, from the
 * connect). *@out: the connection (NULL when its handle could not be made,
 * then the result is a uv error). Returns 0 or the bind's or connect's
 * synchronous uv error with *@out set: the caller closes or reports it. */
static int tcp_dial_try(gn_transport *t, const struct sockaddr_storage *dst,
                        const struct sockaddr_storage *src, tcp_conn **out)
{
    *out = NULL;
    tcp_conn *c = tcp_conn_alloc(t);
    if (!c) {
        return UV_ENOMEM;
    }
    int rc = src ? uv_tcp_init_ex(gn_loop_uv(t->loop), &c->h, dst->ss_family)
                 : uv_tcp_init(gn_loop_uv(t->loop), &c->h);
    if (rc < 0) {
        gn_free(c);
        return rc;
    }
    c->h.data = c;
    *out = c;
#ifdef SO_REUSEPORT
    if (src) {
        if ((rc = tcp_set_reuse(&c->h)) < 0) {
            return rc;
        }
        uv_os_fd_t fd;
        if ((rc = uv_fileno((uv_handle_t *)&c->h, &fd)) < 0) {
            return rc;
        }
        socklen_t alen = src->ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                                   : sizeof(struct sockaddr_in6);
        if (bind(fd, (const struct sockaddr *)src, alen) < 0) {
            return uv_translate_sys_error(errno);
        }
    }
#endif
    return uv_tcp_connect(&c->creq, &c->h, (const struct sockaddr *)dst, tcp_connect_cb);
}

static int tcp_dial(gn_transport *t, const gn_multiaddr *ma, gn_dial_cb cb, void *arg,
                    gn_op **op)
{
    struct sockaddr_storage ss;
    tcp_state *st = t->state;
    int rc = tcp_ma_to_sockaddr(ma, &ss);
    if (rc < 0) {
        return rc;
    }
    if (!cb) {
        return GN_EINVAL;
    }
    if (tcp_at_limit(t)) {
        return GN_ELIMIT;
    }
    struct sockaddr_storage src;
    bool reuse = tcp_reuse_source(t, &ss, &src);
    tcp_conn *c = NULL;
    rc = tcp_dial_try(t, &ss, reuse ? &src : NULL, &c);
    if (rc < 0 && c && reuse) {
        /* the bound socket cannot be used (the four-tuple exists): an
         * ephemeral port instead */
        GN_LOG(GN_LOG_DEBUG, "tcp", "dial from the listen port %u: %s; from another port",
               (unsigned)tcp_sa_port(&src), uv_strerror(rc));
        uv_close((uv_handle_t *)&c->h, tcp_conn_free_cb);
        c = NULL;
        rc = tcp_dial_try(t, &ss, NULL, &c);
    }
    if (!c) {
        return rc == UV_ENOMEM ? GN_ENOMEM : gni_err_from_uv(rc);
    }
    c->dial_cb = cb;
    c->dial_arg = arg;
    c->op.cancel = tcp_dial_cancel;
    *op = &c->op;
    st->ndialing++;
    if (rc < 0) {
        /* report through the callback, after the handle closed */
        GN_LOG(GN_LOG_DEBUG, "tcp", "uv_tcp_connect: %s", uv_strerror(rc));
        tcp_dial_fail(c, gni_err_from_uv(rc));
        return 0;
    }
    if (t->config.dial_timeout > 0) {
        rc = gn_timer_start(&c->dial_timer, t->config.dial_timeout, tcp_dial_timeout_fn, c);
        if (rc < 0) {
            tcp_dial_fail(c, rc);
        }
    }
    return 0;
}

static const gn_transport_ops tcp_ops = {
    .abi = GN_TRANSPORT_ABI,
    .name = "tcp",
    .state_size = sizeof(tcp_state),
    .flags = 0,
    .caps = GN_TRANSPORT_CAP_RELIABLE,
    .test_listen_addr = "/ip4/127.0.0.1/tcp/0",
    .init = tcp_init,
    .fini = tcp_fini,
    .handles = tcp_handles,
    .listen = tcp_listen,
    .listener_addr = tcp_listener_addr,
    .listener_close = tcp_listener_close,
    .dial = tcp_dial,
};

int gn_transport_tcp_register(gn_registry *reg);

int gn_transport_tcp_register(gn_registry *reg)
{
    return gn_registry_add(reg, GN_LAYER_TRANSPORT, (const gn_layer_ops *)&tcp_ops);
}
