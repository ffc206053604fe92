/*
 * The IPC socket layer (ipc/gni_ipc.h): control socket addresses, the
 * listener with its stale-socket and credential checks, and framed/raw
 * connections over libuv pipes and loopback TCP.
 */
#if !defined(_WIN32) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE 1 /* struct ucred (SO_PEERCRED) */
#endif

#include "gni_ipc.h"

#include "gni.h"
#include "golemnet/err.h"
#include "golemnet/log.h"

#include <uv.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef _WIN32
#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>
#endif

#define IPC_LOG "ipc"
#define IPC_READ_CHUNK (64u * 1024u)
#define IPC_FLUSH_TIMEOUT_MS 5000u
/* how long a starting listener waits for PATH.lock (another one starting) */
#define IPC_LOCK_WAIT_MS 2000
/* how long the liveness probe of an existing socket may take */
#define IPC_PROBE_MS 1000

static void ipc_set_err(char *err, size_t errlen, const char *fmt, ...) GN_PRINTF(3, 4);

#include <stdarg.h>
static void ipc_set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------ */
/* Addresses                                                           */

static const char *const ipc_refused_protos[] = {
    "/dns/", "/dns4/", "/dns6/", "/dnsaddr/", "/tcp/", "/udp/", "/p2p/", "/ipfs/",
    "/memory/", "/ws", "/wss", "/quic", "/ip4/", "/ip6/", "/p2p-circuit",
};

static bool ipc_starts(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

static int ipc_parse_tcp(const char *spec, gni_ipc_addr *out, char *err, size_t errlen)
{
    bool v6 = ipc_starts(spec, "/ip6/");
    const char *ip = spec + 5;
    const char *slash = strchr(ip, '/');
    if (!slash || (size_t)(slash - ip) >= sizeof out->ip || slash == ip) {
        ipc_set_err(err, errlen, "control address %s: expected /ip4/127.0.0.1/tcp/PORT or "
                    "/ip6/::1/tcp/PORT", spec);
        return GN_EINVAL;
    }
    char ipbuf[sizeof out->ip];
    memcpy(ipbuf, ip, (size_t)(slash - ip));
    ipbuf[slash - ip] = '\0';
    unsigned char bin[16];
    if (uv_inet_pton(v6 ? AF_INET6 : AF_INET, ipbuf, bin) != 0) {
        ipc_set_err(err, errlen, "control address %s: bad IP address '%s'", spec, ipbuf);
        return GN_EINVAL;
    }
    static const unsigned char v6_loop[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    bool loop = v6 ? memcmp(bin, v6_loop, 16) == 0 : bin[0] == 127;
    if (!loop) {
        ipc_set_err(err, errlen, "control address %s refused: a TCP control address must be "
                    "on loopback (127.0.0.0/8 or ::1); the control protocol has no "
                    "authentication over TCP", spec);
        return GN_EACCES;
    }
    if (!ipc_starts(slash, "/tcp/")) {
        ipc_set_err(err, errlen, "control address %s refused: only /tcp/PORT is supported "
                    "after the IP address", spec);
        return GN_EACCES;
    }
    const char *ps = slash + 5;
    char *end = NULL;
    errno = 0;
    unsigned long port = strtoul(ps, &end, 10);
    if (*ps < '0' || *ps > '9' || errno != 0 || port > 65535 ||
        (*end != '\0' && strcmp(end, "/") != 0)) {
        ipc_set_err(err, errlen, "control address %s: bad TCP port", spec);
        return GN_EINVAL;
    }
    out->kind = GNI_IPC_TCP;
    gni_str_copy(out->ip, sizeof out->ip, ipbuf);
    out->port = (uint16_t)port;
    out->v6 = v6;
    return 0;
}

int gni_ipc_addr_parse(const char *spec, gni_ipc_addr *out, char *err, size_t errlen)
{
    if (!spec || !out || !*spec) {
        ipc_set_err(err, errlen, "empty control address");
        return GN_EINVAL;
    }
    memset(out, 0, sizeof *out);
    if (ipc_starts(spec, "/ip4/") || ipc_starts(spec, "/ip6/")) {
        return ipc_parse_tcp(spec, out, err, errlen);
    }
    const char *path = spec;
    if (ipc_starts(spec, "/unix/")) {
        path = spec + 5; /* keeps the path's leading '/' */
        while (path[0] == '/' && path[1] == '/') {
            path++;
        }
        if (strcmp(path, "/") == 0) {
            ipc_set_err(err, errlen, "control address %s: /unix/ needs a path", spec);
            return GN_EINVAL;
        }
    } else if (!ipc_starts(spec, "\\\\.\\pipe\\")) {
        for (size_t i = 0; i < GNI_ARRAY_LEN(ipc_refused_protos); i++) {
            if (ipc_starts(spec, ipc_refused_protos[i])) {
                ipc_set_err(err, errlen, "control address %s refused: use a Unix socket path, "
                            "/unix/PATH, or loopback TCP (/ip4/127.0.0.1/tcp/N, /ip6/::1/tcp/N)",
                            spec);
                return GN_EACCES;
            }
        }
    }
    size_t n = strlen(path);
    if (n > GNI_IPC_PATH_MAX) {
        ipc_set_err(err, errlen, "control socket path is %zu bytes; at most %u fit a Unix socket "
                    "address", n, GNI_IPC_PATH_MAX);
        return GN_EINVAL;
    }
    out->kind = GNI_IPC_UNIX;
    memcpy(out->path, path, n + 1);
    return 0;
}

int gni_ipc_addr_format(const gni_ipc_addr *a, char *out, size_t cap)
{
    int n;
    if (a->kind == GNI_IPC_TCP) {
        n = snprintf(out, cap, "/%s/%s/tcp/%u", a->v6 ? "ip6" : "ip4", a->ip, (unsigned)a->port);
    } else {
        n = snprintf(out, cap, "%s", a->path);
    }
    if (n < 0 || (size_t)n >= cap) {
        return GN_ENOSPC;
    }
    return n;
}

static bool ipc_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 64) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-')) {
            return false;
        }
    }
    return !(name[0] == '.');
}

int gni_ipc_default_path(const char *name, const char *prefix, char *out, size_t cap)
{
    if (!ipc_name_ok(name) || !out || cap == 0 || (prefix && strlen(prefix) > 32)) {
        return GN_EINVAL;
    }
    if (!prefix) {
        prefix = "";
    }
#ifdef _WIN32
    int n = snprintf(out, cap, "\\\\.\\pipe\\golemnet-%s%s", prefix, name);
    return (n < 0 || (size_t)n >= cap) ? GN_ENOSPC : 0;
#else
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    if (xdg && xdg[0] == '/') {
        int n = snprintf(out, cap, "%s/golemnet/%s%s.sock", xdg, prefix, name);
        if (n > 0 && (size_t)n < cap && (size_t)n <= GNI_IPC_PATH_MAX) {
            return 0;
        }
    }
    int n = snprintf(out, cap, "/tmp/golemnet-%u/%s%s.sock", (unsigned)geteuid(), prefix, name);
    if (n < 0 || (size_t)n >= cap || (size_t)n > GNI_IPC_PATH_MAX) {
        return GN_ENOSPC;
    }
    return 0;
#endif
}

int gni_ipc_prepare_dir(const char *path, char *err, size_t errlen)
{
    if (!path) {
        return GN_EINVAL;
    }
#ifdef _WIN32
    (void)err;
    (void)errlen;
    return 0;
#else
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path) {
        return 0;
    }
    char dir[GNI_IPC_PATH_MAX + 1];
    size_t n = (size_t)(slash - path);
    if (n >= sizeof dir) {
        return GN_EINVAL;
    }
    memcpy(dir, path, n);
    dir[n] = '\0';
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno != ENOENT) {
            ipc_set_err(err, errlen, "stat %s: %s", dir, strerror(errno));
            return GN_EIO;
        }
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
            ipc_set_err(err, errlen, "mkdir %s: %s", dir, strerror(errno));
            return errno == EACCES ? GN_EACCES : GN_EIO;
        }
        if (stat(dir, &st) != 0) {
            ipc_set_err(err, errlen, "stat %s: %s", dir, strerror(errno));
            return GN_EIO;
        }
    }
    if (!S_ISDIR(st.st_mode)) {
        ipc_set_err(err, errlen, "%s is not a directory", dir);
        return GN_EACCES;
    }
    if (st.st_uid != geteuid()) {
        ipc_set_err(err, errlen, "%s belongs to uid %u, not to this user (%u)", dir,
                    (unsigned)st.st_uid, (unsigned)geteuid());
        return GN_EACCES;
    }
    if (st.st_mode & 022) {
        ipc_set_err(err, errlen, "%s is writable by group or others (mode %03o)", dir,
                    (unsigned)(st.st_mode & 0777));
        return GN_EACCES;
    }
    return 0;
#endif
}

bool gni_ipc_uid_allowed(uint32_t self_uid, const uint32_t *allow, size_t n, uint32_t peer_uid)
{
    if (peer_uid == self_uid) {
        return true;
    }
    for (size_t i = 0; allow && i < n; i++) {
        if (allow[i] == peer_uid) {
            return true;
        }
    }
    return false;
}

/* ------------------------------------------------------------------ */
/* Connections                                                         */

struct gni_ipc_conn {
    union {
        uv_handle_t h;
        uv_stream_t s;
        uv_pipe_t pipe;
        uv_tcp_t tcp;
    } u;
    uv_timer_t tdefer; /* delivers kept bytes after a read_start, or fail_err */
    int fail_err;      /* set_raw could not keep bytes: on_end(fail_err) from tdefer */
    uv_timer_t tflush; /* bounds a flushing close */
    uv_connect_t creq;
    uv_shutdown_t sreq;
    gni_ipc_connect_fn ccb;
    void *cud;
    gni_ipc_conn_cbs cbs;
    void *ud;
    gni_lp_reader rd;
    size_t write_max;
    size_t queued;
    uint8_t *rbuf;       /* IPC_READ_CHUNK bytes for uv reads */
    uint8_t *keep;       /* bytes received while paused */
    size_t keep_len;
    int open_handles;    /* handles not yet closed (stream + 2 timers) */
    bool tcp;
    bool reading;        /* the owner wants data */
    bool uv_reading;
    bool raw;
    bool ended;
    bool closing;        /* gni_ipc_conn_close() called */
    bool closed;         /* uv_close() issued */
    bool flushing;
    bool shut;           /* shutdown requested */
    bool shut_sent;
    bool write_failed;
    bool want_writable;
    bool connected;
};

typedef struct ipc_wreq {
    uv_write_t req;
    gni_ipc_conn *c;
    size_t len;
    uint8_t data[];
} ipc_wreq;

static void ipc_conn_really_close(gni_ipc_conn *c);
static void ipc_conn_pump(gni_ipc_conn *c, const uint8_t *p, size_t n);

static void ipc_conn_handle_closed(uv_handle_t *h)
{
    gni_ipc_conn *c = h->data;
    if (--c->open_handles > 0) {
        return;
    }
    if (c->cbs.on_close) {
        c->cbs.on_close(c, c->ud);
    }
    gni_lp_reader_clear(&c->rd);
    gn_free(c->rbuf);
    gn_free(c->keep);
    gn_free(c);
}

static gni_ipc_conn *ipc_conn_new(uv_loop_t *uvl, bool tcp)
{
    gni_ipc_conn *c = gn_calloc(1, sizeof *c);
    if (!c) {
        return NULL;
    }
    int rc = tcp ? uv_tcp_init(uvl, &c->u.tcp) : uv_pipe_init(uvl, &c->u.pipe, 0);
    if (rc != 0) {
        gn_free(c);
        return NULL;
    }
    uv_timer_init(uvl, &c->tdefer);
    uv_timer_init(uvl, &c->tflush);
    c->u.h.data = c;
    c->tdefer.data = c;
    c->tflush.data = c;
    c->open_handles = 3;
    c->tcp = tcp;
    c->write_max = GNI_IPC_WRITE_MAX;
    gni_lp_reader_init(&c->rd, GNI_IPC_MSG_MAX);
    return c;
}

void gni_ipc_conn_set_cbs(gni_ipc_conn *c, const gni_ipc_conn_cbs *cbs, void *ud)
{
    if (cbs) {
        c->cbs = *cbs;
    } else {
        memset(&c->cbs, 0, sizeof c->cbs);
    }
    c->ud = ud;
}

void *gni_ipc_conn_get_ud(const gni_ipc_conn *c) { return c->ud; }

int gni_ipc_conn_set_limits(gni_ipc_conn *c, size_t msg_max, size_t write_max)
{
    if (msg_max == 0 || msg_max > GNI_IPC_MSG_MAX) {
        return GN_EINVAL;
    }
    if (c->rd.in_body || gni_varint_rd_busy(&c->rd.vr)) {
        return GN_ESTATE;
    }
    gni_lp_reader_clear(&c->rd);
    gni_lp_reader_init(&c->rd, msg_max);
    if (write_max) {
        c->write_max = write_max;
    }
    return 0;
}

size_t gni_ipc_conn_queued(const gni_ipc_conn *c) { return c->queued; }

bool gni_ipc_conn_is_tcp(const gni_ipc_conn *c) { return c->tcp; }

static void ipc_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    gni_ipc_conn *c = h->data;
    (void)suggested;
    if (!c->rbuf) {
        c->rbuf = gn_malloc(IPC_READ_CHUNK);
    }
    buf->base = (char *)c->rbuf;
    buf->len = c->rbuf ? IPC_READ_CHUNK : 0;
}

static void ipc_conn_end(gni_ipc_conn *c, int err)
{
    if (c->ended || c->closing) {
        return;
    }
    c->ended = true;
    c->reading = false;
    if (c->uv_reading) {
        uv_read_stop(&c->u.s);
        c->uv_reading = false;
    }
    if (c->cbs.on_end) {
        c->cbs.on_end(c, err, c->ud);
    }
}

static void ipc_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    gni_ipc_conn *c = s->data;
    (void)buf;
    if (nread == 0) {
        return;
    }
    if (nread < 0) {
        int err = nread == UV_EOF ? GN_EEOF : gni_err_from_uv((int)nread);
        if (nread == UV_ENOBUFS) {
            err = GN_ENOMEM;
        }
        ipc_conn_end(c, err);
        return;
    }
    ipc_conn_pump(c, (const uint8_t *)buf->base, (size_t)nread);
}

static int ipc_keep(gni_ipc_conn *c, const uint8_t *p, size_t n)
{
    uint8_t *nb = gn_realloc(c->keep, c->keep_len + n);
    if (!nb) {
        return GN_ENOMEM;
    }
    memcpy(nb + c->keep_len, p, n);
    c->keep = nb;
    c->keep_len += n;
    return 0;
}

/* Hands @n bytes to the owner: messages in framed mode, data in raw mode;
 * what is left when the owner pauses is kept. */
static void ipc_conn_pump(gni_ipc_conn *c, const uint8_t *p, size_t n)
{
    size_t off = 0;
    while (off < n && c->reading && !c->closing && !c->ended) {
        if (c->raw) {
            size_t len = n - off;
            off = n;
            if (c->cbs.on_data) {
                c->cbs.on_data(c, p + off - len, len, c->ud);
            }
            break;
        }
        size_t used = 0;
        const uint8_t *msg = NULL;
        size_t mlen = 0;
        int rc = gni_lp_reader_feed(&c->rd, p + off, n - off, &used, &msg, &mlen);
        off += used;
        if (rc < 0) {
            gni_lp_reader_clear(&c->rd);
            GN_LOG(GN_LOG_INFO, IPC_LOG, "framing lost (%s)", gn_err_name(rc));
            ipc_conn_end(c, rc);
            return;
        }
        if (rc == 1) {
            if (c->cbs.on_msg) {
                c->cbs.on_msg(c, msg, mlen, c->ud);
            }
            gni_lp_reader_clear(&c->rd);
        }
    }
    if (off < n && !c->closing && !c->ended) {
        if (ipc_keep(c, p + off, n - off) < 0) {
            ipc_conn_end(c, GN_ENOMEM);
            return;
        }
    }
    if (!c->reading && c->uv_reading) {
        uv_read_stop(&c->u.s);
        c->uv_reading = false;
    }
}

static void ipc_defer_cb(uv_timer_t *t)
{
    gni_ipc_conn *c = t->data;
    if (c->fail_err && !c->closing && !c->ended) {
        ipc_conn_end(c, c->fail_err);
        return;
    }
    if (c->closing || c->ended || !c->reading) {
        return;
    }
    uint8_t *k = c->keep;
    size_t kl = c->keep_len;
    c->keep = NULL;
    c->keep_len = 0;
    if (k) {
        ipc_conn_pump(c, k, kl);
        gn_free(k);
    }
    if (c->reading && !c->uv_reading && !c->closing && !c->ended) {
        int rc = uv_read_start(&c->u.s, ipc_alloc_cb, ipc_read_cb);
        if (rc != 0) {
            ipc_conn_end(c, gni_err_from_uv(rc));
            return;
        }
        c->uv_reading = true;
    }
}

int gni_ipc_conn_read_start(gni_ipc_conn *c)
{
    if (c->closing || c->ended) {
        return GN_ECLOSED;
    }
    if (c->fail_err) {
        return c->fail_err; /* on_end follows */
    }
    if (c->reading) {
        return 0;
    }
    c->reading = true;
    if (c->keep_len > 0) {
        uv_timer_start(&c->tdefer, ipc_defer_cb, 0, 0);
        return 0;
    }
    if (!c->uv_reading) {
        int rc = uv_read_start(&c->u.s, ipc_alloc_cb, ipc_read_cb);
        if (rc != 0) {
            c->reading = false;
            return gni_err_from_uv(rc);
        }
        c->uv_reading = true;
    }
    return 0;
}

void gni_ipc_conn_read_stop(gni_ipc_conn *c)
{
    c->reading = false;
    uv_timer_stop(&c->tdefer);
    if (c->uv_reading) {
        /* inside a pump the rest is kept and reading stops at its end */
        uv_read_stop(&c->u.s);
        c->uv_reading = false;
    }
}

int gni_ipc_conn_set_raw(gni_ipc_conn *c)
{
    c->raw = true;
    /* A message just delivered (inside on_msg) is not data. The bytes of a
     * frame begun and not finished become raw data, ahead of what was kept:
     * its length prefix (re-encoded: the reader accepts minimal varints
     * only, so these are the bytes received) and the body bytes so far, or
     * the prefix bytes of a length not yet complete. */
    int rc = 0;
    if (!c->rd.done && (c->rd.in_body || gni_varint_rd_busy(&c->rd.vr))) {
        uint8_t pre[10];
        size_t plen;
        if (c->rd.in_body) {
            plen = gni_lp_prefix(pre, c->rd.want);
        } else {
            plen = c->rd.vr.n;
            for (size_t i = 0; i < plen; i++) {
                pre[i] = (uint8_t)(((c->rd.vr.acc >> (7 * i)) & 0x7f) | 0x80);
            }
        }
        uint8_t *k = c->keep;
        size_t kl = c->keep_len;
        c->keep = NULL;
        c->keep_len = 0;
        rc = ipc_keep(c, pre, plen);
        if (rc == 0 && c->rd.in_body && c->rd.have > 0) {
            rc = ipc_keep(c, c->rd.buf, c->rd.have);
        }
        if (rc == 0 && k) {
            rc = ipc_keep(c, k, kl);
        }
        gn_free(k);
    }
    gni_lp_reader_clear(&c->rd);
    if (rc < 0) {
        /* bytes of the stream are gone: the connection cannot go on */
        GN_LOG(GN_LOG_WARNING, IPC_LOG, "switching a connection to raw bytes: out of memory; "
               "ending it");
        gn_free(c->keep);
        c->keep = NULL;
        c->keep_len = 0;
        c->fail_err = GN_ENOMEM;
        c->reading = false;
        if (c->uv_reading) {
            uv_read_stop(&c->u.s);
            c->uv_reading = false;
        }
        uv_timer_start(&c->tdefer, ipc_defer_cb, 0, 0);
    }
    return rc;
}

static void ipc_shutdown_cb(uv_shutdown_t *req, int status)
{
    (void)req;
    (void)status;
}

static void ipc_maybe_shutdown(gni_ipc_conn *c)
{
    if (c->shut && !c->shut_sent && c->queued == 0 && !c->closed && !c->write_failed) {
        c->shut_sent = true;
        if (uv_shutdown(&c->sreq, &c->u.s, ipc_shutdown_cb) != 0) {
            c->write_failed = true;
        }
    }
}

static void ipc_write_cb(uv_write_t *req, int status)
{
    ipc_wreq *w = GNI_CONTAINER_OF(req, ipc_wreq, req);
    gni_ipc_conn *c = w->c;
    c->queued -= w->len;
    gn_free(w);
    if (status < 0 && status != UV_ECANCELED) {
        c->write_failed = true;
        GN_LOG(GN_LOG_DEBUG, IPC_LOG, "write failed: %s", uv_strerror(status));
    }
    if (c->closed) {
        return;
    }
    if (c->flushing && (c->queued == 0 || c->write_failed)) {
        ipc_conn_really_close(c);
        return;
    }
    ipc_maybe_shutdown(c);
    if (c->want_writable && c->queued <= c->write_max / 2 && !c->closing) {
        c->want_writable = false;
        if (c->cbs.on_writable) {
            c->cbs.on_writable(c, c->ud);
        }
    }
}

static int ipc_conn_write(gni_ipc_conn *c, const uint8_t *data, size_t len, bool framed, bool force)
{
    if (!c || (!data && len)) {
        return GN_EINVAL;
    }
    if (c->closing || c->shut || c->write_failed || c->closed) {
        return GN_ECLOSED;
    }
    if (framed && len > GNI_IPC_MSG_MAX) {
        return GN_ETOOBIG;
    }
    if (!force && c->queued >= c->write_max) {
        c->want_writable = true;
        return GN_EAGAIN;
    }
    uint8_t pre[10];
    size_t plen = framed ? gni_lp_prefix(pre, len) : 0;
    if (plen + len == 0) {
        return 0;
    }
    ipc_wreq *w = gn_malloc(sizeof *w + plen + len);
    if (!w) {
        return GN_ENOMEM;
    }
    w->c = c;
    w->len = plen + len;
    memcpy(w->data, pre, plen);
    if (len) {
        memcpy(w->data + plen, data, len);
    }
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)w->len);
    int rc = uv_write(&w->req, &c->u.s, &b, 1, ipc_write_cb);
    if (rc != 0) {
        gn_free(w);
        c->write_failed = true;
        return GN_ECLOSED;
    }
    c->queued += w->len;
    if (c->queued >= c->write_max) {
        c->want_writable = true; /* on_writable at half, forced writes included */
    }
    return 0;
}

int gni_ipc_conn_write(gni_ipc_conn *c, const uint8_t *data, size_t len, bool framed)
{
    return ipc_conn_write(c, data, len, framed, false);
}

int gni_ipc_conn_write_force(gni_ipc_conn *c, const uint8_t *data, size_t len, bool framed)
{
    return ipc_conn_write(c, data, len, framed, true);
}

void gni_ipc_conn_shutdown(gni_ipc_conn *c)
{
    if (c->closing || c->shut) {
        return;
    }
    c->shut = true;
    ipc_maybe_shutdown(c);
}

static void ipc_conn_really_close(gni_ipc_conn *c)
{
    if (c->closed) {
        return;
    }
    c->closed = true;
    c->flushing = false;
    uv_timer_stop(&c->tdefer);
    uv_timer_stop(&c->tflush);
    if (c->uv_reading) {
        uv_read_stop(&c->u.s);
        c->uv_reading = false;
    }
    uv_close(&c->u.h, ipc_conn_handle_closed);
    uv_close((uv_handle_t *)&c->tdefer, ipc_conn_handle_closed);
    uv_close((uv_handle_t *)&c->tflush, ipc_conn_handle_closed);
}

static void ipc_flush_timeout(uv_timer_t *t)
{
    gni_ipc_conn *c = t->data;
    GN_LOG(GN_LOG_INFO, IPC_LOG, "closing with %zu bytes unwritten after %u ms", c->queued,
           IPC_FLUSH_TIMEOUT_MS);
    ipc_conn_really_close(c);
}

void gni_ipc_conn_close(gni_ipc_conn *c, bool flush)
{
    if (!c || c->closed) {
        return;
    }
    c->reading = false;
    if (c->uv_reading) {
        uv_read_stop(&c->u.s);
        c->uv_reading = false;
    }
    uv_timer_stop(&c->tdefer);
    if (flush && c->queued > 0 && !c->write_failed) {
        if (!c->closing) {
            c->closing = true;
            c->flushing = true;
            uv_timer_start(&c->tflush, ipc_flush_timeout, IPC_FLUSH_TIMEOUT_MS, 0);
        }
        return;
    }
    c->closing = true;
    ipc_conn_really_close(c);
}

int gni_ipc_conn_peer_uid(const gni_ipc_conn *c, uint32_t *uid)
{
    if (c->tcp) {
        return GN_ENOTSUP;
    }
#if defined(__linux__) && defined(SO_PEERCRED)
    uv_os_fd_t fd;
    if (uv_fileno(&c->u.h, &fd) != 0) {
        return GN_EIO;
    }
    struct ucred cr;
    socklen_t len = sizeof cr;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0) {
        return GN_EIO;
    }
    *uid = (uint32_t)cr.uid;
    return 0;
#elif defined(__APPLE__) || defined(__FreeBSD__) || defined(__OpenBSD__) || defined(__NetBSD__)
    uv_os_fd_t fd;
    if (uv_fileno(&c->u.h, &fd) != 0) {
        return GN_EIO;
    }
    uid_t u;
    gid_t g;
    if (getpeereid(fd, &u, &g) != 0) {
        return GN_EIO;
    }
    *uid = (uint32_t)u;
    return 0;
#else
    (void)uid;
    return GN_ENOTSUP;
#endif
}

/* ------------------------------------------------------------------ */
/* Listener                                                            */

struct gni_ipc_listener {
    union {
        uv_handle_t h;
        uv_stream_t s;
        uv_pipe_t pipe;
        uv_tcp_t tcp;
    } u;
    gni_ipc_addr addr;
    char bound[GNI_IPC_PATH_MAX + 64];
    uint32_t allow[GNI_IPC_ALLOW_MAX];
    size_t allow_cnt;
    uint32_t self_uid;
    uint64_t refused;
    gni_ipc_accept_fn on_accept;
    void *ud;
    void (*close_cb)(void *ud);
    void *close_ud;
#ifndef _WIN32
    dev_t dev;
    ino_t ino;
#endif
    bool have_ino;
    bool check_creds;
    /* a connection that cannot get a gni_ipc_conn (out of memory) is
     * accepted into this handle and closed: libuv stops watching a
     * listener whose pending connection is not accepted */
    union {
        uv_handle_t h;
        uv_stream_t s;
        uv_pipe_t pipe;
        uv_tcp_t tcp;
    } spare;
    bool spare_busy;   /* spare is open or closing */
    bool drop_again;   /* another connection waits for the spare */
    bool closing;      /* gni_ipc_listener_close() was called */
    bool free_pending; /* the listener's handle closed while spare was busy */
};

const char *gni_ipc_listener_addr(const gni_ipc_listener *l) { return l->bound; }

uint64_t gni_ipc_listener_refused(const gni_ipc_listener *l) { return l->refused; }

static void ipc_drop_pending(gni_ipc_listener *l);

static void ipc_spare_closed(uv_handle_t *h)
{
    gni_ipc_listener *l = h->data;
    l->spare_busy = false;
    if (l->free_pending) {
        if (l->close_cb) {
            l->close_cb(l->close_ud);
        }
        gn_free(l);
        return;
    }
    if (l->drop_again && !l->closing) {
        l->drop_again = false;
        ipc_drop_pending(l);
    }
}

/* Accepts the pending connection into the spare handle and closes it. */
static void ipc_drop_pending(gni_ipc_listener *l)
{
    if (l->spare_busy) {
        l->drop_again = true; /* libuv waits for an accept meanwhile */
        return;
    }
    int rc = l->addr.kind == GNI_IPC_TCP ? uv_tcp_init(l->u.h.loop, &l->spare.tcp)
                                         : uv_pipe_init(l->u.h.loop, &l->spare.pipe, 0);
    if (rc != 0) {
        GN_LOG(GN_LOG_ERR, IPC_LOG, "%s: cannot drop a connection (%s); no more accepted",
               l->bound, uv_strerror(rc));
        return;
    }
    l->spare_busy = true;
    l->spare.h.data = l;
    rc = uv_accept(&l->u.s, &l->spare.s);
    if (rc != 0) {
        GN_LOG(GN_LOG_WARNING, IPC_LOG, "accept on %s: %s", l->bound, uv_strerror(rc));
    }
    uv_close(&l->spare.h, ipc_spare_closed);
}

static void ipc_on_connection(uv_stream_t *server, int status)
{
    gni_ipc_listener *l = server->data;
    if (status < 0) {
        GN_LOG(GN_LOG_WARNING, IPC_LOG, "accept on %s: %s", l->bound, uv_strerror(status));
        return;
    }
    gni_ipc_conn *c = ipc_conn_new(server->loop, l->addr.kind == GNI_IPC_TCP);
    if (!c) {
        GN_LOG(GN_LOG_WARNING, IPC_LOG, "accept on %s: out of memory; the connection is closed",
               l->bound);
        l->refused++;
        ipc_drop_pending(l);
        return;
    }
    c->connected = true;
    int rc = uv_accept(server, &c->u.s);
    if (rc != 0) {
        GN_LOG(GN_LOG_WARNING, IPC_LOG, "accept on %s: %s", l->bound, uv_strerror(rc));
        gni_ipc_conn_close(c, false);
        return;
    }
    if (l->check_creds) {
        uint32_t uid = 0;
        rc = gni_ipc_conn_peer_uid(c, &uid);
        if (rc < 0 || !gni_ipc_uid_allowed(l->self_uid, l->allow, l->allow_cnt, uid)) {
            l->refused++;
            if (rc < 0) {
                GN_LOG(GN_LOG_WARNING, IPC_LOG, "%s: refused a connection: peer credentials "
                       "unavailable (%s)", l->bound, gn_err_name(rc));
            } else {
                GN_LOG(GN_LOG_WARNING, IPC_LOG, "%s: refused a connection from uid %u (not the "
                       "daemon's uid %u nor on the allow-list)", l->bound, (unsigned)uid,
                       (unsigned)l->self_uid);
            }
            gni_ipc_conn_close(c, false);
            return;
        }
    }
    l->on_accept(l, c, l->ud);
}

#ifndef _WIN32
/* Unix: is a listener alive on @path? 1 live, 0 stale (or gone), <0 error. */
static int ipc_probe(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        return errno == ENOENT ? 0 : GN_EIO;
    }
    if (!S_ISSOCK(st.st_mode)) {
        ipc_set_err(err, errlen, "%s exists and is not a socket; not removing it", path);
        return GN_EEXIST;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) {
        ipc_set_err(err, errlen, "socket: %s", strerror(errno));
        return GN_EIO;
    }
    /* non-blocking: a live listener with a full backlog must not hang us */
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        ipc_set_err(err, errlen, "fcntl: %s", strerror(errno));
        close(fd);
        return GN_EIO;
    }
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    gni_str_copy(sa.sun_path, sizeof sa.sun_path, path);
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    int e = errno;
    if (rc != 0 && e == EINPROGRESS) {
        /* some systems queue the connect: wait for it, bounded */
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int pr = poll(&pfd, 1, IPC_PROBE_MS);
        if (pr > 0) {
            socklen_t el = sizeof e;
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) != 0) {
                e = errno;
            }
            rc = e == 0 ? 0 : -1;
        } else {
            e = EAGAIN; /* no answer in time: someone holds it; not stale */
        }
    }
    close(fd);
    if (rc == 0 || e == EAGAIN || e == EWOULDBLOCK) {
        /* connected, or a listener whose backlog is full: alive either way */
        ipc_set_err(err, errlen, "%s: another daemon is listening there", path);
        return 1;
    }
    if (e == ECONNREFUSED || e == ENOENT) {
        return 0;
    }
    ipc_set_err(err, errlen, "%s: cannot tell whether it is in use (%s)", path, strerror(e));
    return e == EACCES ? GN_EACCES : GN_EIO;
}
#endif

static void ipc_listener_freed(uv_handle_t *h)
{
    gni_ipc_listener *l = h->data;
    if (l->spare_busy) {
        l->free_pending = true; /* ipc_spare_closed finishes */
        return;
    }
    if (l->close_cb) {
        l->close_cb(l->close_ud);
    }
    gn_free(l);
}

#ifndef _WIN32
/*
 * Takes an exclusive flock on "@path.lock" (created 0600 if needed, left in
 * place: removing it would race with the next starter), waiting at most
 * IPC_LOCK_WAIT_MS. Returns the lock's fd (close() releases it) or an error:
 * GN_EADDRINUSE (held that long by another process starting up), GN_EACCES,
 * GN_EIO.
 */
static int ipc_lock(const char *path, char *err, size_t errlen)
{
    char lp[GNI_IPC_PATH_MAX + 64];
    if ((size_t)snprintf(lp, sizeof lp, "%s.lock", path) >= sizeof lp) {
        ipc_set_err(err, errlen, "%s: path too long for its .lock file", path);
        return GN_EINVAL;
    }
    int fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        int e = errno;
        ipc_set_err(err, errlen, "open %s: %s", lp, strerror(e));
        return e == EACCES || e == EPERM ? GN_EACCES : GN_EIO;
    }
    for (int waited = 0;; waited += 10) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            return fd;
        }
        if (errno != EWOULDBLOCK && errno != EINTR) {
            ipc_set_err(err, errlen, "flock %s: %s", lp, strerror(errno));
            close(fd);
            return GN_EIO;
        }
        if (waited >= IPC_LOCK_WAIT_MS) {
            ipc_set_err(err, errlen, "%s is locked by another process setting up %s", lp, path);
            close(fd);
            return GN_EADDRINUSE;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}
#endif

static int ipc_listen_unix_locked(uv_loop_t *uvl, gni_ipc_listener *l,
                                  const gni_ipc_listen_opts *o, char *err, size_t errlen);

/*
 * The probe of an existing file, its removal when stale and the bind run
 * under "PATH.lock": two listeners starting together on one path cannot
 * remove each other's live socket.
 */
static int ipc_listen_unix(uv_loop_t *uvl, gni_ipc_listener *l, const gni_ipc_listen_opts *o,
                           char *err, size_t errlen)
{
#ifndef _WIN32
    int lk = ipc_lock(l->addr.path, err, errlen);
    if (lk < 0) {
        return lk;
    }
    int rc = ipc_listen_unix_locked(uvl, l, o, err, errlen);
    close(lk);
    return rc;
#else
    return ipc_listen_unix_locked(uvl, l, o, err, errlen);
#endif
}

static int ipc_listen_unix_locked(uv_loop_t *uvl, gni_ipc_listener *l,
                                  const gni_ipc_listen_opts *o, char *err, size_t errlen)
{
    const char *path = l->addr.path;
    int rc;
#ifndef _WIN32
    rc = ipc_probe(path, err, errlen);
    if (rc == 1) {
        return GN_EADDRINUSE;
    }
    if (rc < 0) {
        return rc;
    }
    if (unlink(path) == 0) {
        GN_LOG(GN_LOG_INFO, IPC_LOG, "removed stale socket %s", path);
    }
#endif
    rc = uv_pipe_init(uvl, &l->u.pipe, 0);
    if (rc != 0) {
        return gni_err_from_uv(rc);
    }
    l->u.h.data = l;
    rc = uv_pipe_bind(&l->u.pipe, path);
    if (rc != 0) {
        ipc_set_err(err, errlen, "bind %s: %s", path, uv_strerror(rc));
        return rc == UV_EADDRINUSE ? GN_EADDRINUSE : rc == UV_EACCES ? GN_EACCES : GN_EIO;
    }
#ifndef _WIN32
    /* libuv unlinks a bound pipe's path on close whatever file is there by
     * then; the listener removes it itself, only while it is still its
     * socket. pipe_fname is libuv's strdup (the default allocator: nothing
     * in golemnet calls uv_replace_allocator). */
    free((char *)l->u.pipe.pipe_fname);
    l->u.pipe.pipe_fname = NULL;
    unsigned mode = o && o->mode ? o->mode : 0600;
    if (chmod(path, (mode_t)(mode & 0777)) != 0) {
        ipc_set_err(err, errlen, "chmod %s %03o: %s", path, mode & 0777, strerror(errno));
        unlink(path);
        return GN_EACCES;
    }
    struct stat st;
    if (stat(path, &st) == 0) {
        l->dev = st.st_dev;
        l->ino = st.st_ino;
        l->have_ino = true;
    }
    l->self_uid = (uint32_t)geteuid();
#if (defined(__linux__) && defined(SO_PEERCRED)) || defined(__APPLE__) || defined(__FreeBSD__) || \
    defined(__OpenBSD__) || defined(__NetBSD__)
    l->check_creds = true;
#else
    GN_LOG(GN_LOG_WARNING, IPC_LOG, "%s: no peer credential call on this system: only the file "
           "mode protects the socket", path);
#endif
#endif
    gni_str_copy(l->bound, sizeof l->bound, path);
    return 0;
}

static int ipc_listen_tcp(uv_loop_t *uvl, gni_ipc_listener *l, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    int rc = l->addr.v6 ? uv_ip6_addr(l->addr.ip, l->addr.port, (struct sockaddr_in6 *)&ss)
                        : uv_ip4_addr(l->addr.ip, l->addr.port, (struct sockaddr_in *)&ss);
    if (rc != 0) {
        ipc_set_err(err, errlen, "bad address %s", l->addr.ip);
        return GN_EINVAL;
    }
    rc = uv_tcp_init(uvl, &l->u.tcp);
    if (rc != 0) {
        return gni_err_from_uv(rc);
    }
    l->u.h.data = l;
    rc = uv_tcp_bind(&l->u.tcp, (const struct sockaddr *)&ss, 0);
    if (rc == 0) {
        int len = (int)sizeof ss;
        rc = uv_tcp_getsockname(&l->u.tcp, (struct sockaddr *)&ss, &len);
    }
    if (rc != 0) {
        ipc_set_err(err, errlen, "bind %s port %u: %s", l->addr.ip, (unsigned)l->addr.port,
                    uv_strerror(rc));
        return rc == UV_EADDRINUSE ? GN_EADDRINUSE : gni_err_from_uv(rc);
    }
    l->addr.port = ntohs(l->addr.v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                    : ((struct sockaddr_in *)&ss)->sin_port);
    gni_ipc_addr_format(&l->addr, l->bound, sizeof l->bound);
    return 0;
}

int gni_ipc_listen(uv_loop_t *uvl, const char *addr, const gni_ipc_listen_opts *opts,
                   gni_ipc_accept_fn on_accept, void *ud, gni_ipc_listener **out, char *err,
                   size_t errlen)
{
    if (!uvl || !on_accept || !out) {
        ipc_set_err(err, errlen, "invalid argument");
        return GN_EINVAL;
    }
    *out = NULL;
    if (opts && (opts->allow_cnt > GNI_IPC_ALLOW_MAX || (opts->allow_cnt && !opts->allow_uids))) {
        ipc_set_err(err, errlen, "at most %u uids on the allow-list", GNI_IPC_ALLOW_MAX);
        return GN_EINVAL;
    }
    gni_ipc_listener *l = gn_calloc(1, sizeof *l);
    if (!l) {
        return GN_ENOMEM;
    }
    int rc = gni_ipc_addr_parse(addr, &l->addr, err, errlen);
    if (rc < 0) {
        gn_free(l);
        return rc;
    }
    l->on_accept = on_accept;
    l->ud = ud;
    if (opts && opts->allow_cnt) {
        memcpy(l->allow, opts->allow_uids, opts->allow_cnt * sizeof *l->allow);
        l->allow_cnt = opts->allow_cnt;
    }
    bool inited = false;
    if (l->addr.kind == GNI_IPC_TCP) {
        rc = ipc_listen_tcp(uvl, l, err, errlen);
    } else {
        rc = ipc_listen_unix(uvl, l, opts, err, errlen);
    }
    inited = l->u.h.data == l;
    if (rc == 0) {
        rc = uv_listen(&l->u.s, opts && opts->backlog > 0 ? opts->backlog : 128, ipc_on_connection);
        if (rc != 0) {
            ipc_set_err(err, errlen, "listen %s: %s", l->bound, uv_strerror(rc));
            rc = rc == UV_EADDRINUSE ? GN_EADDRINUSE : GN_EIO;
#ifndef _WIN32
            if (l->addr.kind == GNI_IPC_UNIX) {
                unlink(l->addr.path);
            }
#endif
        }
    }
    if (rc < 0) {
        if (inited) {
            uv_close(&l->u.h, ipc_listener_freed);
        } else {
            gn_free(l);
        }
        return rc;
    }
    *out = l;
    return 0;
}

void gni_ipc_listener_close(gni_ipc_listener *l, void (*cb)(void *ud), void *ud)
{
    if (!l) {
        return;
    }
#ifndef _WIN32
    if (l->addr.kind == GNI_IPC_UNIX && l->have_ino) {
        struct stat st;
        if (lstat(l->addr.path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == l->dev &&
            st.st_ino == l->ino) {
            unlink(l->addr.path);
        }
    }
#endif
    l->close_cb = cb;
    l->close_ud = ud;
    l->closing = true;
    uv_close(&l->u.h, ipc_listener_freed);
}

/* ------------------------------------------------------------------ */
/* Connect                                                             */

static void ipc_connect_cb(uv_connect_t *req, int status)
{
    gni_ipc_conn *c = req->data;
    gni_ipc_connect_fn cb = c->ccb;
    void *ud = c->cud;
    if (status < 0) {
        int err = gni_err_from_uv(status);
        if (status == UV_ENOENT) {
            err = GN_ENOTFOUND;
        }
        gni_ipc_conn_close(c, false);
        cb(NULL, err, ud);
        return;
    }
    c->connected = true;
    cb(c, 0, ud);
}

int gni_ipc_connect(uv_loop_t *uvl, const char *addr, gni_ipc_connect_fn cb, void *ud, char *err,
                    size_t errlen)
{
    if (!uvl || !cb) {
        return GN_EINVAL;
    }
    gni_ipc_addr a;
    int rc = gni_ipc_addr_parse(addr, &a, err, errlen);
    if (rc < 0) {
        return rc;
    }
    struct sockaddr_storage ss;
    if (a.kind == GNI_IPC_TCP) {
        rc = a.v6 ? uv_ip6_addr(a.ip, a.port, (struct sockaddr_in6 *)&ss)
                  : uv_ip4_addr(a.ip, a.port, (struct sockaddr_in *)&ss);
        if (rc != 0 || a.port == 0) {
            ipc_set_err(err, errlen, "control address %s: needs an IP and a port", addr);
            return GN_EINVAL;
        }
    }
    gni_ipc_conn *c = ipc_conn_new(uvl, a.kind == GNI_IPC_TCP);
    if (!c) {
        return GN_ENOMEM;
    }
    c->ccb = cb;
    c->cud = ud;
    c->creq.data = c;
    if (a.kind == GNI_IPC_TCP) {
        rc = uv_tcp_connect(&c->creq, &c->u.tcp, (const struct sockaddr *)&ss, ipc_connect_cb);
        if (rc != 0) {
            ipc_set_err(err, errlen, "connect %s: %s", addr, uv_strerror(rc));
            gni_ipc_conn_close(c, false);
            return gni_err_from_uv(rc);
        }
    } else {
        uv_pipe_connect(&c->creq, &c->u.pipe, a.path, ipc_connect_cb);
    }
    return 0;
}
