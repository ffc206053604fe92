/*
 * The IPC client's I/O half (gni_ipcc.h): the control socket, the reader
 * thread, calls waiting for their responses, the bounded event queue,
 * stream connections and handler sockets.
 *
 * Why plain blocking sockets and a thread rather than a libuv loop: the
 * client's calls are synchronous, made from the application's threads,
 * and the stream calls hand the application a connected file descriptor.
 * A loop would need a thread anyway (to read events while no call is
 * made) plus a hand-off per call; a reader thread that owns only the
 * read side costs one wake-up per response. libuv provides the thread,
 * mutex and condition primitives (portable), as in core/evq.c.
 *
 * Locks: @mtx guards the call list, the state and the counters; @wmtx
 * serialises writes on the socket (a write may wait for the daemon to read,
 * and must not hold @mtx meanwhile, which the reader needs to hand over
 * responses). The reader thread never writes.
 */
#include "gni_ipcc.h"

#include "golemnet/err.h"
#include "golemnet/log.h"
#include "golemnet/loop.h"
#include "golemnet/multiaddr.h"
#include "gni.h"
#include "gni_ipc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define IPCC_COMP "ipc-client"

#ifndef MSG_NOSIGNAL
#  define MSG_NOSIGNAL 0 /* macOS: SO_NOSIGPIPE on each socket instead (ipcc_socket) */
#endif
#define IPCC_READ_CHUNK 65536

typedef struct ipcc_call {
    struct ipcc_call *next;
    uint64_t id;
    bool done;
    void *msg; /* the decoded response */
} ipcc_call;

struct gn_ipc_client {
    char addr[GN_MA_MAX_STRLEN];
    gn_ipc_options opt;
    int fd;
    uv_thread_t reader;
    bool reader_started;
    uv_mutex_t mtx;
    uv_mutex_t wmtx;
    uv_cond_t cond;
    uint64_t next_id;
    ipcc_call *calls;
    bool dead;      /* the connection ended (no call can succeed) */
    int dead_status;
    bool freeing;
    gn_evq *evq;
    size_t evq_cap; /* ordinary events; + 2 for LOST markers, + 1 for DISCONNECTED */
    uint64_t lost;  /* events dropped and not yet in a marker (mtx) */
    bool tail_is_marker; /* the newest queued item is a LOST marker (mtx) */
    gn_time timeout;
    gn_ipc_stats st;
    char last_error[GN_IPC_ERROR_MAX];
    char version[64];
};

/* ------------------------------------------------------------------ time */

static gn_time ipcc_deadline(gn_time timeout)
{
    if (timeout == GN_TIME_INFINITY) {
        return GN_TIME_INFINITY;
    }
    gn_time now = gn_now();
    return now + timeout < now ? GN_TIME_INFINITY : now + timeout;
}

/* poll() timeout in ms until @deadline (-1: none), rounded up. */
static int ipcc_poll_ms(gn_time deadline)
{
    if (deadline == GN_TIME_INFINITY) {
        return -1;
    }
    gn_time now = gn_now();
    if (now >= deadline) {
        return 0;
    }
    gn_time ms = (deadline - now + GN_MS - 1) / GN_MS;
    return ms > 1000000 ? 1000000 : (int)ms;
}

static int ipcc_errno(int e)
{
    switch (e) {
    case ENOENT: return GN_ENOTFOUND;
    case ECONNREFUSED: return GN_ECONNREFUSED;
    case EACCES: case EPERM: return GN_EACCES;
    case ECONNRESET: return GN_ECONNRESET;
    case EPIPE: return GN_EPIPE;
    case ENOMEM: case ENOBUFS: return GN_ENOMEM;
    case EADDRINUSE: return GN_EADDRINUSE;
    case ENAMETOOLONG: return GN_EPARSE;
    default: return GN_EIO;
    }
}

/* Waits for @events on @fd until @deadline: 1 ready, GN_ETIMEDOUT, GN_EIO. */
static int ipcc_wait(int fd, short events, gn_time deadline)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = events};
        int rc = poll(&p, 1, ipcc_poll_ms(deadline));
        if (rc > 0) {
            return 1;
        }
        if (rc == 0) {
            if (deadline != GN_TIME_INFINITY && gn_now() >= deadline) {
                return GN_ETIMEDOUT;
            }
            continue; /* rounded early wake */
        }
        if (errno != EINTR) {
            return GN_EIO;
        }
    }
}

/*
 * Writes all of @buf on @fd (blocking or not) by @deadline. *@written (may
 * be NULL) receives how many bytes went out, also on failure.
 */
static int ipcc_write_all_n(int fd, const uint8_t *buf, size_t len, gn_time deadline,
                            size_t *written)
{
    size_t off = 0;
    int rc = 0;
    while (off < len) {
        ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            rc = ipcc_wait(fd, POLLOUT, deadline);
            if (rc < 0) {
                break;
            }
            rc = 0;
            continue;
        }
        rc = n < 0 && (errno == EPIPE || errno == ECONNRESET) ? GN_EPIPE : GN_EIO;
        break;
    }
    if (written) {
        *written = off;
    }
    return rc;
}

static int ipcc_write_all(int fd, const uint8_t *buf, size_t len, gn_time deadline)
{
    return ipcc_write_all_n(fd, buf, len, deadline, NULL);
}

/* Reads exactly @len bytes by @deadline. GN_ECLOSED at EOF. */
static int ipcc_read_exact(int fd, uint8_t *buf, size_t len, gn_time deadline)
{
    size_t off = 0;
    while (off < len) {
        int rc = ipcc_wait(fd, POLLIN, deadline);
        if (rc < 0) {
            return rc;
        }
        ssize_t n = recv(fd, buf + off, len - off, MSG_DONTWAIT);
        if (n > 0) {
            off += (size_t)n;
        } else if (n == 0) {
            return GN_ECLOSED;
        } else if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
            return errno == ECONNRESET ? GN_ECONNRESET : GN_EIO;
        }
    }
    return 0;
}

/* A close-on-exec stream socket that raises no SIGPIPE where the system allows. */
static int ipcc_socket(int domain)
{
#ifdef SOCK_CLOEXEC
    int fd = socket(domain, SOCK_STREAM | SOCK_CLOEXEC, 0);
#else
    int fd = socket(domain, SOCK_STREAM, 0);
    if (fd >= 0) {
        (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
#endif
#ifdef SO_NOSIGPIPE
    if (fd >= 0) {
        int one = 1;
        (void)setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
    }
#endif
    return fd;
}

/* ------------------------------------------------------------ addresses */

/*
 * Fills @ss from @addr, parsed by the daemons' own rules (gni_ipc.h,
 * gni_ipc_addr_parse: a path, /unix/PATH, or loopback /ip4|ip6/.../tcp/N).
 * Returns 0 or GN_EPARSE / GN_EACCES with a message in @err.
 */
static int ipcc_parse_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *sl,
                           char *err, size_t err_len)
{
    gni_ipc_addr a;
    memset(ss, 0, sizeof *ss);
    int rc = gni_ipc_addr_parse(addr, &a, err, err_len);
    if (rc < 0) {
        return rc == GN_EACCES ? GN_EACCES : GN_EPARSE;
    }
    if (a.kind == GNI_IPC_TCP) {
        if (a.port == 0) {
            snprintf(err, err_len, "control address '%s': port 0 cannot be connected to", addr);
            return GN_EPARSE;
        }
        if (a.v6) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
            s6->sin6_family = AF_INET6;
            s6->sin6_port = htons(a.port);
            if (inet_pton(AF_INET6, a.ip, &s6->sin6_addr) != 1) {
                snprintf(err, err_len, "control address '%s': bad IPv6 address", addr);
                return GN_EPARSE;
            }
            *sl = sizeof *s6;
        } else {
            struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
            s4->sin_family = AF_INET;
            s4->sin_port = htons(a.port);
            if (inet_pton(AF_INET, a.ip, &s4->sin_addr) != 1) {
                snprintf(err, err_len, "control address '%s': bad IPv4 address", addr);
                return GN_EPARSE;
            }
            *sl = sizeof *s4;
        }
        return 0;
    }
    struct sockaddr_un *su = (struct sockaddr_un *)ss;
    size_t n = strlen(a.path);
    if (n == 0 || n >= sizeof su->sun_path) {
        snprintf(err, err_len, "control socket path '%s' is too long for a Unix socket", a.path);
        return GN_EPARSE;
    }
    su->sun_family = AF_UNIX;
    memcpy(su->sun_path, a.path, n + 1);
    *sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
}

int gni_ipcc_sock_connect(const char *addr, gn_time timeout, char *err, size_t err_len)
{
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    int rc = ipcc_parse_addr(addr, &ss, &sl, err, err_len);
    if (rc < 0) {
        return rc;
    }
    int fd = ipcc_socket(ss.ss_family);
    if (fd < 0) {
        snprintf(err, err_len, "socket: %s", strerror(errno));
        return ipcc_errno(errno);
    }
    int fl = fcntl(fd, F_GETFL);
    (void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    rc = connect(fd, (struct sockaddr *)&ss, sl);
    if (rc < 0 && (errno == EINPROGRESS || errno == EAGAIN)) {
        rc = ipcc_wait(fd, POLLOUT, ipcc_deadline(timeout));
        if (rc == GN_ETIMEDOUT) {
            snprintf(err, err_len, "connect to '%s' timed out", addr);
            close(fd);
            return rc;
        }
        int soerr = 0;
        socklen_t el = sizeof soerr;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &el);
        errno = soerr;
        rc = soerr ? -1 : 0;
    }
    if (rc < 0) {
        int e = errno;
        int gerr = ipcc_errno(e);
        const char *hint = "";
        if (gerr == GN_ENOTFOUND) {
            hint = " (no socket there: is 'golemnet daemon' running? see --socket)";
        } else if (gerr == GN_ECONNREFUSED) {
            hint = " (nobody listens: the daemon is not running, or the socket file is stale)";
        }
        snprintf(err, err_len, "cannot connect to daemon at '%s': %s%s", addr, strerror(e),
                 hint);
        close(fd);
        return gerr;
    }
    (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    if (ss.ss_family != AF_UNIX) {
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

int gni_ipcc_sock_read_msg(int fd, gn_time timeout, uint8_t **msg, size_t *len)
{
    gn_time deadline = ipcc_deadline(timeout);
    uint64_t v = 0;
    *msg = NULL;
    *len = 0;
    /* the varint byte by byte, so not a byte of what follows is taken */
    for (unsigned i = 0;; i++) {
        uint8_t b = 0;
        if (i >= 9) {
            return GN_EPROTO;
        }
        int rc = ipcc_read_exact(fd, &b, 1, deadline);
        if (rc < 0) {
            return rc;
        }
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            break;
        }
    }
    if (v > GN_IPC_MSG_MAX) {
        return GN_EFRAMESIZE;
    }
    uint8_t *buf = gn_malloc(v ? (size_t)v : 1);
    if (!buf) {
        return GN_ENOMEM;
    }
    int rc = ipcc_read_exact(fd, buf, (size_t)v, deadline);
    if (rc < 0) {
        gn_free(buf);
        return rc;
    }
    *msg = buf;
    *len = (size_t)v;
    return 0;
}

int gni_ipcc_sock_exchange(int fd, void *req, uint64_t id, gn_time timeout, gni_ipcc_in *out)
{
    gn_time deadline = ipcc_deadline(timeout);
    uint8_t *frame = NULL;
    size_t flen = 0;
    memset(out, 0, sizeof *out);
    int rc = gni_ipcc_encode(req, id, &frame, &flen);
    if (rc < 0) {
        return rc;
    }
    rc = ipcc_write_all(fd, frame, flen, deadline);
    gn_free(frame);
    if (rc < 0) {
        return rc;
    }
    for (int guard = 0; guard < 1024; guard++) {
        uint8_t *msg = NULL;
        size_t len = 0;
        gn_time now = gn_now();
        rc = gni_ipcc_sock_read_msg(fd, deadline == GN_TIME_INFINITY ? GN_TIME_INFINITY
                                        : deadline > now ? deadline - now : 0,
                                    &msg, &len);
        if (rc < 0) {
            return rc;
        }
        rc = gni_ipcc_decode(msg, len, out);
        gn_free(msg);
        if (rc < 0) {
            return rc;
        }
        if (out->kind == GNI_IPCC_IN_RESPONSE && out->id == id) {
            return 0;
        }
        /* an event (or a newer daemon's message) on a stream connection: skip it */
        if (out->kind == GNI_IPCC_IN_RESPONSE) {
            gni_ipcc_msg_free(out->msg);
        } else if (out->ev.message) {
            gn_rcbuf_rele(out->ev.message);
        }
        if (out->kind == GNI_IPCC_IN_BYE) {
            return out->ev.status < 0 ? out->ev.status : GN_ECLOSED;
        }
        memset(out, 0, sizeof *out);
    }
    return GN_EPROTO;
}

/* ---------------------------------------------------------------- errors */

void gni_ipcc_set_error(gn_ipc_client *c, const char *fmt, ...)
{
    char tmp[GN_IPC_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    uv_mutex_lock(&c->mtx);
    memcpy(c->last_error, tmp, sizeof tmp);
    uv_mutex_unlock(&c->mtx);
}

size_t gn_ipc_last_error(gn_ipc_client *c, char *out, size_t out_len)
{
    if (!c || !out || out_len == 0) {
        return 0;
    }
    uv_mutex_lock(&c->mtx);
    size_t n = strlen(c->last_error);
    if (n >= out_len) {
        n = out_len - 1;
    }
    memcpy(out, c->last_error, n);
    out[n] = '\0';
    uv_mutex_unlock(&c->mtx);
    return n;
}

/* ---------------------------------------------------------------- events */

/*
 * The bounded event queue. The gn_evq holds evq_cap events plus room for
 * LOST markers and the final DISCONNECTED (evq_cap + 3 slots). An event
 * that finds evq_cap or more queued is dropped and counted in @lost; the
 * first drop after an event queues a marker at once (so the application
 * sees it in order, even if nothing more arrives), later drops are added to
 * it when it is popped while nothing follows it, or become a new marker in
 * front of the next event that fits. @mtx guards lost, tail_is_marker and
 * the check-then-push sequence.
 */

static void ipcc_push_marker_locked(gn_ipc_client *c)
{
    gn_node_event lost;
    memset(&lost, 0, sizeof lost);
    lost.type = GN_IPC_EV_LOST;
    lost.count = c->lost;
    if (gn_evq_push(c->evq, &lost) == 0) {
        c->lost = 0;
        c->tail_is_marker = true;
    }
}

/* Queues @ev (reader thread; takes its message reference either way). */
static void ipcc_push_event(gn_ipc_client *c, gn_node_event *ev)
{
    uv_mutex_lock(&c->mtx);
    c->st.events_received++;
    size_t len = gn_evq_len(c->evq);
    if (len < c->evq_cap) {
        if (c->lost > 0) {
            ipcc_push_marker_locked(c);
        }
        if (gn_evq_push(c->evq, ev) == 0) {
            c->tail_is_marker = false;
            uv_mutex_unlock(&c->mtx);
            return;
        }
    }
    if (ev->message) {
        gn_rcbuf_rele(ev->message);
        ev->message = NULL;
    }
    c->lost++;
    c->st.events_dropped++;
    if (!c->tail_is_marker) {
        ipcc_push_marker_locked(c);
    }
    uv_mutex_unlock(&c->mtx);
}

int gn_ipc_next_event(gn_ipc_client *c, gn_node_event *ev, gn_time timeout)
{
    if (!c || !ev) {
        return GN_EINVAL;
    }
    int rc = gn_evq_pop(c->evq, ev, timeout);
    if (rc == 0 && ev->type == GN_IPC_EV_LOST && ev->status == 0) {
        /* a marker of this client's drops (the daemon's EV_LOST has a status) */
        uv_mutex_lock(&c->mtx);
        if (gn_evq_len(c->evq) == 0) {
            /* it was the tail: every drop since happened right here */
            ev->count += c->lost;
            c->lost = 0;
            c->tail_is_marker = false;
        }
        uv_mutex_unlock(&c->mtx);
    }
    return rc;
}

int gn_ipc_event_fd(const gn_ipc_client *c)
{
    return c ? gn_evq_fd(c->evq) : -1;
}

int gn_ipc_stats_get(gn_ipc_client *c, gn_ipc_stats *st)
{
    if (!c || !st) {
        return GN_EINVAL;
    }
    uv_mutex_lock(&c->mtx);
    *st = c->st;
    uv_mutex_unlock(&c->mtx);
    return 0;
}

/* ---------------------------------------------------------- reader thread */

/* The connection ended with @status: fail every call, queue the last event. */
static void ipcc_die(gn_ipc_client *c, int status, const char *reason)
{
    uv_mutex_lock(&c->mtx);
    bool was = c->dead;
    c->dead = true;
    if (!was) {
        c->dead_status = status;
    }
    uv_cond_broadcast(&c->cond);
    if (was) {
        uv_mutex_unlock(&c->mtx);
        return;
    }
    gn_node_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = GN_IPC_EV_DISCONNECTED;
    ev.status = status;
    snprintf(ev.addr, sizeof ev.addr, "%s", reason ? reason : "");
    if (c->lost > 0) {
        ipcc_push_marker_locked(c); /* a slot is reserved for it */
    }
    c->tail_is_marker = false;
    uv_mutex_unlock(&c->mtx);
    (void)gn_evq_push(c->evq, &ev); /* its slot is reserved */
    gn_evq_close(c->evq);
}

/* Hands one decoded message over. Returns false when the connection must end. */
static bool ipcc_dispatch(gn_ipc_client *c, gni_ipcc_in *in)
{
    if (in->kind == GNI_IPCC_IN_SKIP) {
        return true;
    }
    if (in->kind == GNI_IPCC_IN_EVENT) {
        ipcc_push_event(c, &in->ev);
        return true;
    }
    if (in->kind == GNI_IPCC_IN_BYE) {
        ipcc_die(c, in->ev.status < 0 ? in->ev.status : GN_ECLOSED, in->ev.addr);
        return false;
    }
    uv_mutex_lock(&c->mtx);
    ipcc_call *k = c->calls;
    while (k && k->id != in->id) {
        k = k->next;
    }
    if (k && !k->done) {
        k->msg = in->msg;
        k->done = true;
        in->msg = NULL;
        uv_cond_broadcast(&c->cond);
    } else {
        c->st.late_responses++;
    }
    uv_mutex_unlock(&c->mtx);
    gni_ipcc_msg_free(in->msg);
    return true;
}

static void ipcc_reader_main(void *arg)
{
    gn_ipc_client *c = arg;
    gni_lp_reader lp;
    gni_lp_reader_init(&lp, c->opt.max_message_len);
    uint8_t *buf = gn_malloc(IPCC_READ_CHUNK);
    int status = GN_ENOMEM;
    const char *reason = "out of memory";
    while (buf) {
        ssize_t n = recv(c->fd, buf, IPCC_READ_CHUNK, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            uv_mutex_lock(&c->mtx);
            bool freeing = c->freeing;
            uv_mutex_unlock(&c->mtx);
            status = freeing ? GN_ECLOSED : n == 0 ? GN_EEOF : ipcc_errno(errno);
            reason = freeing ? "client freed" : n == 0 ? "the daemon closed the connection"
                                                       : "read error";
            break;
        }
        size_t off = 0;
        bool ok = true;
        while (ok && off < (size_t)n) {
            size_t used = 0;
            const uint8_t *msg = NULL;
            size_t mlen = 0;
            int rc = gni_lp_reader_feed(&lp, buf + off, (size_t)n - off, &used, &msg, &mlen);
            off += used;
            if (rc < 0) {
                status = rc == GN_ENOMEM ? GN_ENOMEM : GN_EPROTO;
                reason = rc == GN_EFRAMESIZE ? "the daemon sent a message over the size bound"
                                             : "the daemon broke the framing";
                ok = false;
                break;
            }
            if (rc == 0) {
                break;
            }
            gni_ipcc_in in;
            memset(&in, 0, sizeof in);
            rc = gni_ipcc_decode(msg, mlen, &in);
            gni_lp_reader_clear(&lp);
            if (rc < 0) {
                status = rc;
                reason = "the daemon sent an undecodable message";
                ok = false;
                break;
            }
            if (!ipcc_dispatch(c, &in)) {
                gni_lp_reader_clear(&lp);
                gn_free(buf);
                return;
            }
        }
        if (!ok) {
            break;
        }
    }
    gni_lp_reader_clear(&lp);
    gn_free(buf);
    gn_log(GN_LOG_INFO, IPCC_COMP, "connection to %s ended: %s", c->addr, reason);
    ipcc_die(c, status, reason);
}

/* ----------------------------------------------------------------- calls */

uint64_t gni_ipcc_next_id(gn_ipc_client *c)
{
    uv_mutex_lock(&c->mtx);
    uint64_t id = ++c->next_id;
    uv_mutex_unlock(&c->mtx);
    return id;
}

gn_time gni_ipcc_timeout(gn_ipc_client *c)
{
    uv_mutex_lock(&c->mtx);
    gn_time t = c->timeout;
    uv_mutex_unlock(&c->mtx);
    return t;
}

const char *gni_ipcc_addr(const gn_ipc_client *c)
{
    return c->addr;
}

int gni_ipcc_call(gn_ipc_client *c, void *req, void **resp, gn_time timeout, bool keep_failed)
{
    if (resp) {
        *resp = NULL;
    }
    ipcc_call call;
    memset(&call, 0, sizeof call);
    uv_mutex_lock(&c->mtx);
    if (c->dead) {
        int st = c->dead_status;
        uv_mutex_unlock(&c->mtx);
        gni_ipcc_set_error(c, "the connection to the daemon is closed (%s)", gn_err_name(st));
        return GN_ECLOSED;
    }
    call.id = ++c->next_id;
    call.next = c->calls;
    c->calls = &call;
    c->st.calls++;
    uv_mutex_unlock(&c->mtx);

    gn_time deadline = ipcc_deadline(timeout);
    uint8_t *frame = NULL;
    size_t flen = 0;
    int rc = gni_ipcc_encode(req, call.id, &frame, &flen);
    if (rc == 0) {
        size_t done = 0;
        uv_mutex_lock(&c->wmtx);
        rc = ipcc_write_all_n(c->fd, frame, flen, deadline, &done);
        if (rc < 0 && done > 0) {
            /* part of a frame went out: the framing is lost, end the connection */
            shutdown(c->fd, SHUT_RDWR);
        }
        uv_mutex_unlock(&c->wmtx);
        gn_free(frame);
        if (rc == GN_EPIPE) {
            rc = GN_ECLOSED;
        }
    }
    uv_mutex_lock(&c->mtx);
    while (rc == 0 && !call.done && !c->dead) {
        if (deadline == GN_TIME_INFINITY) {
            uv_cond_wait(&c->cond, &c->mtx);
            continue;
        }
        gn_time now = gn_now();
        if (now >= deadline || uv_cond_timedwait(&c->cond, &c->mtx, deadline - now) != 0) {
            if (!call.done && gn_now() >= deadline) {
                rc = GN_ETIMEDOUT;
            }
        }
    }
    if (rc == 0 && !call.done) {
        rc = GN_ECLOSED; /* died */
    }
    for (ipcc_call **pp = &c->calls; *pp; pp = &(*pp)->next) {
        if (*pp == &call) {
            *pp = call.next;
            break;
        }
    }
    uv_mutex_unlock(&c->mtx);
    if (rc < 0) {
        gni_ipcc_msg_free(call.msg);
        if (rc == GN_ETIMEDOUT) {
            gni_ipcc_set_error(c, "no answer from the daemon within %llu ms",
                               (unsigned long long)(timeout / GN_MS));
        } else if (rc == GN_ECLOSED) {
            gni_ipcc_set_error(c, "the connection to the daemon is closed");
        } else if (rc == GN_ETOOBIG) {
            gni_ipcc_set_error(c, "request longer than %u bytes", GN_IPC_MSG_MAX);
        } else {
            gni_ipcc_set_error(c, "writing to the daemon failed: %s", gn_strerror(rc));
        }
        return rc;
    }
    char err[GN_IPC_ERROR_MAX];
    err[0] = '\0';
    int status = gni_ipcc_response_status(call.msg, err, sizeof err);
    if (status < 0) {
        gni_ipcc_set_error(c, "%s", err[0] ? err : gn_strerror(status));
        if (keep_failed && resp) {
            *resp = call.msg;
        } else {
            gni_ipcc_msg_free(call.msg);
        }
        return status;
    }
    if (resp) {
        *resp = call.msg;
    } else {
        gni_ipcc_msg_free(call.msg);
    }
    return 0;
}

/* -------------------------------------------------------- client life */

void gn_ipc_options_default(gn_ipc_options *opt)
{
    if (!opt) {
        return;
    }
    memset(opt, 0, sizeof *opt);
    opt->version = GN_IPC_OPTIONS_VERSION;
    opt->timeout = 30 * GN_S;
    opt->event_queue_capacity = 4096;
    opt->max_message_len = GN_IPC_MSG_MAX;
}

int gn_ipc_connect(const char *addr, const gn_ipc_options *opt, gn_ipc_client **out)
{
    gn_ipc_options def;
    char defaddr[GN_IPC_PATH_MAX];
    if (!out) {
        return GN_EINVAL;
    }
    *out = NULL;
    if (!opt) {
        gn_ipc_options_default(&def);
        opt = &def;
    }
    if (opt->version != GN_IPC_OPTIONS_VERSION || opt->event_queue_capacity == 0 ||
        opt->event_queue_capacity > (1u << 24) || opt->max_message_len < 64 ||
        opt->max_message_len > GN_IPC_MSG_MAX) {
        return GN_EINVAL;
    }
    if (!addr) {
        int rc = gn_ipc_default_socket(defaddr, sizeof defaddr);
        if (rc < 0) {
            return rc;
        }
        addr = defaddr;
    }
    if (strlen(addr) >= GN_MA_MAX_STRLEN) {
        return GN_EPARSE;
    }
    gn_ipc_client *c = gn_calloc(1, sizeof *c);
    if (!c) {
        return GN_ENOMEM;
    }
    c->fd = -1;
    c->opt = *opt;
    c->timeout = opt->timeout;
    snprintf(c->addr, sizeof c->addr, "%s", addr);
    int rc = GN_ENOMEM;
    if (uv_mutex_init(&c->mtx) != 0) {
        gn_free(c);
        return GN_ENOMEM;
    }
    if (uv_mutex_init(&c->wmtx) != 0) {
        uv_mutex_destroy(&c->mtx);
        gn_free(c);
        return GN_ENOMEM;
    }
    if (uv_cond_init(&c->cond) != 0) {
        uv_mutex_destroy(&c->wmtx);
        uv_mutex_destroy(&c->mtx);
        gn_free(c);
        return GN_ENOMEM;
    }
    c->evq_cap = opt->event_queue_capacity;
    rc = gn_evq_new(c->evq_cap + 3, sizeof(gn_node_event), &c->evq);
    if (rc < 0) {
        goto fail;
    }
    char err[GN_IPC_ERROR_MAX];
    err[0] = '\0';
    rc = gni_ipcc_sock_connect(addr, opt->timeout, err, sizeof err);
    if (rc < 0) {
        gn_log(GN_LOG_INFO, IPCC_COMP, "%s", err);
        goto fail;
    }
    c->fd = rc;
    if (uv_thread_create(&c->reader, ipcc_reader_main, c) != 0) {
        rc = GN_ENOMEM;
        goto fail;
    }
    c->reader_started = true;
    rc = gni_ipcc_hello(c, c->version, sizeof c->version);
    if (rc < 0) {
        char msg[GN_IPC_ERROR_MAX];
        gn_ipc_last_error(c, msg, sizeof msg);
        gn_log(GN_LOG_INFO, IPCC_COMP, "hello to %s failed: %s", addr, msg);
        goto fail;
    }
    *out = c;
    return 0;
fail:
    gn_ipc_free(c);
    return rc;
}

void gn_ipc_free(gn_ipc_client *c)
{
    if (!c) {
        return;
    }
    uv_mutex_lock(&c->mtx);
    c->freeing = true;
    uv_mutex_unlock(&c->mtx);
    if (c->fd >= 0) {
        shutdown(c->fd, SHUT_RDWR); /* wakes the reader */
    }
    if (c->reader_started) {
        uv_thread_join(&c->reader);
    }
    /* calls still waiting were woken by ipcc_die() with GN_ECLOSED */
    if (c->fd >= 0) {
        close(c->fd);
    }
    if (c->evq) {
        gn_node_event ev;
        gn_evq_close(c->evq);
        while (gn_evq_pop(c->evq, &ev, 0) == 0) {
            if (ev.message) {
                gn_rcbuf_rele(ev.message);
            }
        }
        gn_evq_free(c->evq);
    }
    uv_cond_destroy(&c->cond);
    uv_mutex_destroy(&c->wmtx);
    uv_mutex_destroy(&c->mtx);
    gn_free(c);
}

void gn_ipc_set_timeout(gn_ipc_client *c, gn_time timeout)
{
    if (!c) {
        return;
    }
    uv_mutex_lock(&c->mtx);
    c->timeout = timeout;
    uv_mutex_unlock(&c->mtx);
}

const char *gn_ipc_daemon_version(const gn_ipc_client *c)
{
    return c ? c->version : "";
}

/* -------------------------------------------------------------- streams */

struct gn_ipc_stream {
    int fd;
    gn_ipc_stream_info info;
};

int gni_ipcc_stream_new(int fd, const gn_ipc_stream_info *info, gn_ipc_stream **out)
{
    gn_ipc_stream *s = gn_calloc(1, sizeof *s);
    if (!s) {
        close(fd);
        return GN_ENOMEM;
    }
    s->fd = fd;
    s->info = *info;
    *out = s;
    return 0;
}

int gn_ipc_stream_fd(const gn_ipc_stream *s)
{
    return s ? s->fd : -1;
}

const gn_ipc_stream_info *gn_ipc_stream_get_info(const gn_ipc_stream *s)
{
    return s ? &s->info : NULL;
}

int gn_ipc_stream_read(gn_ipc_stream *s, uint8_t *buf, size_t len, gn_time timeout)
{
    if (!s || (!buf && len)) {
        return GN_EINVAL;
    }
    if (len > INT32_MAX) {
        len = INT32_MAX;
    }
    gn_time deadline = ipcc_deadline(timeout);
    for (;;) {
        int rc = ipcc_wait(s->fd, POLLIN, deadline);
        if (rc < 0) {
            return rc;
        }
        ssize_t n = recv(s->fd, buf, len, MSG_DONTWAIT);
        if (n >= 0) {
            return (int)n;
        }
        if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
            return errno == ECONNRESET ? GN_ECONNRESET : GN_EIO;
        }
    }
}

int gn_ipc_stream_write(gn_ipc_stream *s, const uint8_t *buf, size_t len, gn_time timeout)
{
    if (!s || (!buf && len)) {
        return GN_EINVAL;
    }
    return ipcc_write_all(s->fd, buf, len, ipcc_deadline(timeout));
}

int gn_ipc_stream_shutdown(gn_ipc_stream *s)
{
    if (!s) {
        return GN_EINVAL;
    }
    return shutdown(s->fd, SHUT_WR) == 0 ? 0 : GN_EIO;
}

void gn_ipc_stream_free(gn_ipc_stream *s)
{
    if (!s) {
        return;
    }
    close(s->fd);
    gn_free(s);
}

/* ------------------------------------------------------------- handlers */

int gni_ipcc_listen_path(const char *path, char *err, size_t err_len)
{
    struct sockaddr_un su;
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof su.sun_path || n >= GN_IPC_PATH_MAX) {
        snprintf(err, err_len, "handler socket path '%s' is %s", path,
                 n == 0 ? "empty" : "too long for a Unix socket");
        return GN_EPARSE;
    }
    memset(&su, 0, sizeof su);
    su.sun_family = AF_UNIX;
    memcpy(su.sun_path, path, n + 1);
    int fd = ipcc_socket(AF_UNIX);
    if (fd < 0) {
        snprintf(err, err_len, "socket: %s", strerror(errno));
        return ipcc_errno(errno);
    }
    (void)fchmod(fd, 0600);
    mode_t old = umask(0177);
    int rc = bind(fd, (struct sockaddr *)&su, sizeof su);
    if (rc < 0 && errno == EADDRINUSE) {
        /* live or stale? a live listener accepts a connection */
        int probe = ipcc_socket(AF_UNIX);
        bool live = probe >= 0 && connect(probe, (struct sockaddr *)&su, sizeof su) == 0;
        if (probe >= 0) {
            close(probe);
        }
        if (live) {
            umask(old);
            close(fd);
            snprintf(err, err_len, "handler socket '%s' is in use by a live listener", path);
            return GN_EADDRINUSE;
        }
        (void)unlink(path);
        rc = bind(fd, (struct sockaddr *)&su, sizeof su);
    }
    umask(old);
    if (rc < 0 || listen(fd, 64) < 0) {
        int e = errno;
        snprintf(err, err_len, "cannot listen on '%s': %s", path, strerror(e));
        close(fd);
        return ipcc_errno(e);
    }
    (void)chmod(path, 0600);
    int fl = fcntl(fd, F_GETFL);
    (void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    return fd;
}

int gni_ipcc_accept(int lfd, gn_time timeout)
{
    gn_time deadline = ipcc_deadline(timeout);
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd >= 0) {
            (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
            int fl = fcntl(fd, F_GETFL);
            (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
            return fd;
        }
        if (errno == EINTR || errno == ECONNABORTED) {
            continue;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            return ipcc_errno(errno);
        }
        if (timeout == 0) {
            return GN_EAGAIN;
        }
        int rc = ipcc_wait(lfd, POLLIN, deadline);
        if (rc < 0) {
            return rc;
        }
    }
}

void gni_ipcc_unlisten(int fd, const char *path)
{
    if (fd >= 0) {
        close(fd);
    }
    if (path && path[0]) {
        (void)unlink(path);
    }
}

/* ------------------------------------------------------- default socket */

/* The daemon's default socket: gni_ipc.h's rule with `golemnet daemon`'s default name. */
int gn_ipc_default_socket(char *out, size_t out_len)
{
    if (!out) {
        return GN_EINVAL;
    }
    int rc = gni_ipc_default_path(GNI_IPC_DEFAULT_NAME, NULL, out, out_len);
    if (rc < 0) {
        return rc == GN_EINVAL ? GN_EINVAL : GN_ENOSPC;
    }
    return (int)strlen(out);
}
