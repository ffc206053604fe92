/*
 * golemnet - the uTP transport (libuv UDP adapter around utp.c).
 *
 * Addresses: /ip4/<a>/udp/<port>/utp and /ip6/<a>/udp/<port>/utp,
 * optionally followed by /p2p/<id> (ignored here).
 *
 * Sockets: a listener owns one UDP socket that carries every connection it
 * accepted, demultiplexed by (peer address, conn_id) (an ST_RESET may name
 * either id of its connection). A dial gets its own UDP socket, connected
 * to the peer (uv_udp_connect), so the kernel reports ICMP port unreachable
 * as ECONNREFUSED on it: a dial to a closed port fails with
 * GN_ECONNREFUSED, and an established connection whose peer's port closed
 * fails the same way. A socket lives while its listener or any of its
 * connections does (refcount); a closed listener's socket answers SYNs
 * and unknown packets with ST_RESET, so a dial to it is refused too.
 *
 * Inbound: an ST_SYN makes a connection at once (the SYN-ACK goes out and
 * the accept callback gets the stream, so a server may speak first). Until
 * the initiator sends anything after its SYN the connection is half-open;
 * at most config.listen_backlog of them (default 511) per socket exist (further SYNs are
 * answered with ST_RESET: the SYN-flood bound), and one still half-open
 * after config.dial_timeout is reset. config.max_connections refuses the
 * same way.
 *
 * Streams: write() queues the caller's iovs (zero copy, gni_wq, bounded
 * by config.write_queue_max) and a deferred pass copies them into the
 * core's send buffer (1 MiB); a write completes with 0 once all its bytes
 * are in the core, as TCP's do once in the kernel. Reading delivers the
 * core's in-order bytes while the consumer reads; a stopped reader lets the
 * core's receive window (1 MiB) shut, which stops the peer. shutdown()
 * sends ST_FIN after the queued bytes; reset() sends ST_RESET.
 * close(): queued writes complete with GN_ECANCELED, the closed callback
 * follows, and the connection lingers without its stream to deliver what
 * the core holds and exchange FINs (data arriving meanwhile is dropped)
 * until both FINs are acked, the peer resets, the core times out, or the
 * transport is freed.
 *
 * Events reach the consumer from the loop (a deferred pass per connection,
 * the UDP receive callback or the connection's timer), never from inside a
 * gn_stream_*() or transport call.
 *
 * Thread context: loop thread only.
 */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* recvmmsg() and struct mmsghdr (utp_gro_read) */
#endif
#include "golemnet/host.h"
#include "golemnet/loop.h"
#include "golemnet/multiaddr.h"
#include "golemnet/registry.h"
#include "golemnet/transport.h"

#include "gni.h"
#include "gni_htab.h"
#include "gni_wq.h"
#include "utp.h"
#include "utp_uv.h"

#include <assert.h>
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#ifndef _WIN32
#include <netinet/in.h>
#include <sys/socket.h>
#endif
#if defined(__linux__)
#include <linux/errqueue.h>
#include <netinet/udp.h>
#include <unistd.h>
#endif
#if defined(__linux__) && defined(UDP_SEGMENT) && defined(SOL_UDP)
#define UTP_HAVE_GSO 1
#endif
#if defined(__linux__) && defined(UDP_GRO) && defined(SOL_UDP)
#define UTP_HAVE_GRO 1
#endif

#define UTP_RBUF_LEN (64u * 1024u)
/* receive buffer: libuv's recvmmsg takes len / 64 KiB datagrams per call,
 * 20 at most (UV__MMSG_MAXWIDTH); only the pages a datagram lands on are
 * touched */
#define UTP_MMSG_DGRAMS 20u
/* send batching (UDP GSO, Linux >= 4.18): equal-sized datagrams to one
 * peer go out in one sendmsg() with UDP_SEGMENT, the kernel cuts them
 * (the wire sees the same datagrams); at most 64 segments (UDP_MAX_SEGMENTS)
 * and 65,507 bytes (one UDP payload) a call */
#define UTP_GSO_SEGS 64u
#define UTP_GSO_LEN 65000u
/* the batch buffer also holds one datagram of the largest MSS */
#define UTP_GBUF_LEN GNI_UTP_PACKET_FOR(GNI_UTP_MSS_LIMIT)
#define UTP_RECV_LEN (UTP_MMSG_DGRAMS * 64u * 1024u)
/* read budget of one wakeup of a GRO socket's poll handle: stop after this
 * many datagrams (a GRO buffer counts its segments) or bytes; the poll is
 * level-triggered, so what is left is read on the loop's next turn, after
 * the other handles and our own ACKs had their go (libuv's own UDP read
 * stops after about 32 datagrams a wakeup) */
#define UTP_GRO_BUDGET_DGRAMS 64u
#define UTP_GRO_BUDGET_BYTES (256u * 1024u)
/* cmsgs a GRO read has room for (UDP_GRO, and whatever else the socket
 * may be given); a cut control buffer (MSG_CTRUNC) drops the message */
#define UTP_GRO_CMSGS 4u
#define UTP_JUMBO_MTU 9000 /* utp.mss_max=auto offers larger packets from this route MTU */
#define UTP_SOCK_BUF (4 * 1024 * 1024) /* SO_RCVBUF / SO_SNDBUF asked for */
#define UTP_DRAIN_MAX 4096 /* datagrams per pass (the window bounds them anyway) */

typedef struct utp_sock utp_sock;
typedef struct utp_conn utp_conn;
typedef struct utp_listener utp_listener;

typedef struct utp_state {
    gn_transport *t;
    utp_sock *socks;      /* every open socket */
    uint8_t *rbuf;        /* UDP receive buffer, UTP_RECV_LEN */
    uint8_t *dbuf;        /* stream delivery buffer, UTP_RBUF_LEN */
    uint8_t *gbuf;        /* send batch, UTP_GBUF_LEN */
    uint32_t ndialing;
    bool gso_off;         /* a GSO send failed (no UDP_SEGMENT here): one datagram a call */
    /* the core's settings, from the node's utp.* options at the first listen or dial */
    gni_utp_config ccfg;
    size_t mss_cap;       /* utp.mss_max: SIZE_MAX = the route MTU's room ("auto"), 0 = off */
    bool ccfg_ready;
    int ccfg_err;
} utp_state;

struct utp_sock {
    uv_udp_t h;
#ifdef UTP_HAVE_GRO
    uv_poll_t ph;              /* reads the socket when gro (utp_gro_read) */
#endif
    bool ph_open;              /* ph initialised: closes before h */
    /* UDP_GRO on: read through ph only. Nothing may then call
     * uv_udp_recv_start or uv_udp_send on h: either starts h's own io
     * watcher on the same fd, a second epoll registration that fails (no
     * receive at all) or, with both reading, spins; sends go through
     * uv_udp_try_send and sendmsg(), which start no watcher */
    bool gro;
    uint64_t gro_batches;      /* messages read that held more than one datagram */
    uint64_t rx_cut;           /* messages dropped: truncated data or control (MSG_[C]TRUNC) */
    unsigned nhandles;         /* open uv handles; freed when the last closes */
    gn_transport *t;
    utp_sock *next;
    unsigned refs;             /* listener + connections */
    utp_listener *listener;    /* NULL for a dial socket or after listener close */
    utp_conn *conns;           /* every connection, for teardown and ICMP reports */
    /* the demultiplexer: connections by a keyed hash of (peer address,
     * conn_id), once by the id they receive on and once by the id they
     * send on (a resent SYN and a RESET carry the latter); SipHash with a
     * random key per socket, so a peer cannot choose colliding ids */
    gni_htab by_recv, by_send;
    uint8_t hash_key[crypto_shorthash_KEYBYTES];
    uint32_t nhalf_open;
    bool connected;            /* a dial socket (uv_udp_connect) */
    bool gso;                  /* the kernel took UDP_SEGMENT at open (utp_sock_open) */
    bool closing;
    struct sockaddr_storage local;
};

struct utp_listener {
    gn_listener base; /* first */
    utp_sock *sock;
    gn_listener_close_cb close_cb;
    void *close_arg;
};

struct utp_conn {
    gn_stream s; /* first */
    gn_transport *t;
    utp_sock *sock;
    utp_conn *next;            /* in sock->conns */
    gni_hnode hn_recv, hn_send; /* in sock->by_recv / by_send once indexed */
    bool indexed;
    gni_utp *u;
    struct sockaddr_storage peer;
    gn_timer timer;
    gni_wq wq;
    gn_time created;
    gn_time last_log;          /* debug statistics, once a second */
    bool stream_open;          /* gn_stream live, counted in t->nconns */
    bool stream_closing;       /* close()/reset() called; the pass finishes it */
    bool lingering;            /* stream closed, core still running */
    bool half_open;
    bool half_open_expired;    /* reset for never confirming: the app sees GN_ETIMEDOUT */
    bool shut_req, core_shut;
    bool eof_emitted, err_emitted;
    bool kick_pending;
    bool destroyed;
    bool gso_off;              /* a GSO send to this peer failed with EINVAL */
    /* dialing */
    bool dialing;
    bool dial_canceled;
    gn_op op;
    gn_dial_cb dial_cb;
    void *dial_arg;
};

static const gn_stream_ops utp_stream_ops;
static void utp_conn_run(utp_conn *c);

/* ---- addresses ---- */

static int utp_ma_to_sockaddr(const gn_multiaddr *ma, struct sockaddr_storage *ss)
{
    size_t n = gn_multiaddr_count(ma);
    gn_ma_component ip, port, utp;
    if (n < 3 || n > 4)
        return GN_ENOTRANSPORT;
    if (gn_multiaddr_component(ma, 0, &ip) < 0 || gn_multiaddr_component(ma, 1, &port) < 0 ||
        gn_multiaddr_component(ma, 2, &utp) < 0)
        return GN_EINVAL;
    if (port.code != GN_MA_UDP || utp.code != GN_MA_UTP)
        return GN_ENOTRANSPORT;
    if (n == 4) {
        gn_ma_component p2p;
        if (gn_multiaddr_component(ma, 3, &p2p) < 0 || p2p.code != GN_MA_P2P)
            return GN_ENOTRANSPORT;
    }
    if (port.value_len != 2)
        return GN_EINVAL;
    uint16_t p = (uint16_t)((port.value[0] << 8) | port.value[1]);
    memset(ss, 0, sizeof *ss);
    if (ip.code == GN_MA_IP4 && ip.value_len == 4) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        memcpy(&sin->sin_addr, ip.value, 4);
        sin->sin_port = htons(p);
        return 0;
    }
    if (ip.code == GN_MA_IP6 && ip.value_len == 16) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        sin6->sin6_family = AF_INET6;
        memcpy(&sin6->sin6_addr, ip.value, 16);
        sin6->sin6_port = htons(p);
        return 0;
    }
    return ip.code == GN_MA_IP4 || ip.code == GN_MA_IP6 ? GN_EINVAL : GN_ENOTRANSPORT;
}

/* /ip4|ip6/<a>/udp/<port>/utp in binary form (udp 0x0111 and utp 0x012e
 * are two-byte varints) */
static int utp_sockaddr_to_ma(const struct sockaddr_storage *ss, gn_multiaddr **out)
{
    uint8_t b[1 + 16 + 2 + 2 + 2];
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
    b[n++] = (uint8_t)(0x80 | (GN_MA_UDP & 0x7f));
    b[n++] = (uint8_t)(GN_MA_UDP >> 7);
    b[n++] = (uint8_t)(port >> 8);
    b[n++] = (uint8_t)(port & 0xff);
    b[n++] = (uint8_t)(0x80 | (GN_MA_UTP & 0x7f));
    b[n++] = (uint8_t)(GN_MA_UTP >> 7);
    return gn_multiaddr_from_bytes(b, n, out);
}

static bool utp_handles(const gn_transport *t, const gn_multiaddr *ma)
{
    (void)t;
    struct sockaddr_storage ss;
    return ma != NULL && utp_ma_to_sockaddr(ma, &ss) == 0;
}

static bool utp_sa_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
    }
    return false;
}

/* ---- instance ---- */

static int utp_init(gn_transport *t)
{
    utp_state *st = t->state;
    st->t = t;
    return 0;  /* buffers come with the first socket: a node that never uses uTP pays nothing */
}

static int utp_buffers(utp_state *st)
{
    if (!st->rbuf)
        st->rbuf = gn_malloc(UTP_RECV_LEN);
    if (!st->dbuf)
        st->dbuf = gn_malloc(UTP_RBUF_LEN);
    if (!st->gbuf)
        st->gbuf = gn_malloc(UTP_GBUF_LEN);
    return st->rbuf && st->dbuf && st->gbuf ? 0 : GN_ENOMEM;
}

static void utp_sock_free_cb(uv_handle_t *h)
{
    utp_sock *k = h->data;
    if (--k->nhandles == 0) {
        gni_htab_fini(&k->by_recv);
        gni_htab_fini(&k->by_send);
        gn_free(k);
    }
}

/* Closes @k's handles (the poll handle first: it drops the fd from epoll
 * before the UDP handle closes it); @k is freed after the last callback. */
static void utp_sock_close(utp_sock *k)
{
    k->closing = true;
    k->nhandles = 1;
#ifdef UTP_HAVE_GRO
    if (k->ph_open) {
        k->nhandles++;
        uv_close((uv_handle_t *)&k->ph, utp_sock_free_cb);
    }
#endif
    uv_close((uv_handle_t *)&k->h, utp_sock_free_cb);
}

static void utp_conn_destroy(utp_conn *c);

static void utp_fini(gn_transport *t)
{
    utp_state *st = t->state;
    /* lingering connections (closed streams still exchanging FINs) end here */
    while (st->socks) {
        utp_sock *k = st->socks;
        while (k->conns)
            utp_conn_destroy(k->conns);
        if (st->socks == k) {
            /* destroy released the last ref and unlinked it, unless a
             * listener still holds it, which core forbids at fini */
            st->socks = k->next;
            if (!k->closing)
                utp_sock_close(k);
        }
    }
    gn_free(st->rbuf);
    gn_free(st->dbuf);
    gn_free(st->gbuf);
    st->rbuf = st->dbuf = st->gbuf = NULL;
}

static bool utp_at_limit(const gn_transport *t)
{
    const utp_state *st = t->state;
    return t->config.max_connections > 0 &&
           (uint64_t)t->nconns + st->ndialing >= t->config.max_connections;
}

/* ---- sockets ---- */

static void utp_sock_unlink(utp_sock *k)
{
    utp_state *st = k->t->state;
    for (utp_sock **pp = &st->socks; *pp; pp = &(*pp)->next) {
        if (*pp == k) {
            *pp = k->next;
            return;
        }
    }
}

static void utp_sock_rele(utp_sock *k)
{
    if (--k->refs > 0)
        return;
    utp_sock_unlink(k);
    utp_sock_close(k);
}

/* With IP_RECVERR the kernel returns an ICMP error it queued for an
 * earlier datagram (maybe to another peer) from the next send, which then
 * sends nothing: such a send is worth one retry. @e: a positive errno or
 * -UV_E* code. */
static bool utp_send_pending_err(int e)
{
    return e == -UV_ECONNREFUSED || e == -UV_EHOSTUNREACH || e == -UV_ENETUNREACH ||
           e == -UV_EMSGSIZE
#ifndef _WIN32
           || e == ECONNREFUSED || e == EHOSTUNREACH || e == ENETUNREACH || e == EMSGSIZE
#endif
        ;
}

/* Every datagram leaves through here or utp_send_batch: uv_udp_try_send
 * and sendmsg() only, never uv_udp_send (whose queue would start the
 * handle's io watcher, which a GRO socket must not have: see utp_sock.gro) */
static void utp_send(utp_sock *k, const struct sockaddr_storage *to, const uint8_t *p, size_t n)
{
    if (k->closing)
        return;
    uv_buf_t b = uv_buf_init((char *)(uintptr_t)p, (unsigned)n);
    int rc = uv_udp_try_send(&k->h, &b, 1, k->connected ? NULL : (const struct sockaddr *)to);
    if (utp_send_pending_err(-rc)) /* an earlier ICMP report, not this datagram's */
        rc = uv_udp_try_send(&k->h, &b, 1, k->connected ? NULL : (const struct sockaddr *)to);
    if (rc < 0 && rc != UV_EAGAIN)
        GN_LOG(GN_LOG_DEBUG, "utp", "send: %s", uv_strerror(rc));
    /* UV_EAGAIN: the datagram is lost; retransmission covers it */
}

/* Sends @cnt datagrams of @seg bytes each (the last may be shorter), @len
 * bytes in all, contiguous at @p, to @c's peer: one sendmsg() with
 * UDP_SEGMENT where the kernel has it, else one datagram a call. */
static void utp_send_batch(utp_conn *c, const uint8_t *p, size_t len, size_t seg, unsigned cnt)
{
    utp_sock *k = c->sock;
    const struct sockaddr_storage *to = &c->peer;
    utp_state *st = k->t->state;
    if (k->closing)
        return;
#ifdef UTP_HAVE_GSO
    uv_os_fd_t fd;
    if (cnt > 1 && k->gso && !st->gso_off && !c->gso_off && uv_fileno((const uv_handle_t *)&k->h, &fd) == 0) {
        struct iovec iov = {.iov_base = (void *)(uintptr_t)p, .iov_len = len};
        union {
            char buf[CMSG_SPACE(sizeof(uint16_t))];
            struct cmsghdr align;
        } ctl;
        memset(&ctl, 0, sizeof ctl);
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                           .msg_controllen = sizeof ctl.buf};
        if (!k->connected) {
            m.msg_name = (void *)(uintptr_t)to;
            m.msg_namelen = to->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                      : sizeof(struct sockaddr_in);
        }
        struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
        cm->cmsg_level = SOL_UDP;
        cm->cmsg_type = UDP_SEGMENT;
        cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        uint16_t gso = (uint16_t)seg;
        memcpy(CMSG_DATA(cm), &gso, sizeof gso);
        ssize_t rc;
        int e = 0;
        for (int tries = 0; tries < 2; tries++) {
            do
                rc = sendmsg(fd, &m, MSG_DONTWAIT);
            while (rc < 0 && errno == EINTR);
            if (rc >= 0)
                return;
            e = errno;
            if (!utp_send_pending_err(e))
                break; /* else: an earlier datagram's ICMP report; once more */
        }
        if (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS)
            return; /* lost; retransmission covers it, as for a single datagram */
        if (e == EINVAL) {
            /* segment + headers above this path's MTU (or a kernel limit):
             * this connection sends one datagram a call; the others keep GSO */
            GN_LOG(GN_LOG_DEBUG, "utp", "UDP GSO refused for one peer (%s)", strerror(e));
            c->gso_off = true;
        } else if (e == EIO) {
            /* the device cannot checksum GSO segments: not on this socket */
            GN_LOG(GN_LOG_INFO, "utp", "UDP GSO unavailable on a socket (%s)", strerror(e));
            k->gso = false;
        } else if (e == ENOPROTOOPT || e == EOPNOTSUPP) {
            /* no UDP GSO on this kernel: one by one from now on */
            GN_LOG(GN_LOG_INFO, "utp", "UDP GSO unavailable (%s): one datagram per call",
                   strerror(e));
            st->gso_off = true;
        } else {
            GN_LOG(GN_LOG_DEBUG, "utp", "send: %s", strerror(e));
            return;
        }
    }
#else
    (void)st;
#endif
    for (unsigned i = 0; i < cnt; i++) {
        size_t n = len - i * seg < seg ? len - i * seg : seg;
        utp_send(k, to, p + i * seg, n);
    }
}

/* An ST_RESET answering @h from @to (unknown connection or refused SYN). */
static void utp_send_reset(utp_sock *k, const struct sockaddr_storage *to, const gni_utp_hdr *h)
{
    uint8_t p[GNI_UTP_HDR_LEN];
    gni_utp_hdr r = {.type = GNI_UTP_ST_RESET, .ver = GNI_UTP_VERSION, .conn_id = h->conn_id,
                     .seq = 0, .ack = h->seq};
    gni_utp_hdr_encode(&r, p);
    utp_send(k, to, p, sizeof p);
}

/* ---- connections ---- */

static void utp_timer_fn(gn_timer *timer, void *arg)
{
    (void)timer;
    utp_conn *c = arg;
    gni_utp_on_timer(c->u, gn_loop_now(c->t->loop));
    utp_conn_run(c);
}

static void utp_kick_fn(gn_loop *loop, void *arg)
{
    (void)loop;
    utp_conn *c = arg;
    c->kick_pending = false;
    if (c->destroyed) {
        gn_free(c);
        return;
    }
    utp_conn_run(c);
}

static void utp_kick(utp_conn *c)
{
    if (c->kick_pending)
        return;
    if (gn_loop_defer(c->t->loop, utp_kick_fn, c) == 0)
        c->kick_pending = true;
}

/* Payload room per packet on the path to @peer: the route's MTU (the
 * interface's: 65,536 on loopback) minus IP, UDP and uTP headers, SACK and
 * the size extension; 0 (no larger packets offered) where it is not above
 * the default MSS or cannot be read. A dial socket is connected to the peer
 * already; for a listener's peer a throwaway socket is connected (no packet
 * is sent). A path whose MTU is below the local route's relies on IP
 * fragmentation (Linux's default for UDP, IP_PMTUDISC_WANT). */
static size_t utp_path_mss(utp_sock *k, const struct sockaddr_storage *peer)
{
#if defined(__linux__) && defined(IP_MTU) && defined(IPV6_MTU)
    bool v6 = peer->ss_family == AF_INET6;
    int fd = -1, own = -1;
    uv_os_fd_t kfd;
    if (k->connected && uv_fileno((const uv_handle_t *)&k->h, &kfd) == 0) {
        fd = kfd;
    } else {
        own = socket(peer->ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (own < 0)
            return 0;
        socklen_t sl = v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
        if (connect(own, (const struct sockaddr *)peer, sl) < 0) {
            close(own);
            return 0;
        }
        fd = own;
    }
    int mtu = 0;
    socklen_t ol = sizeof mtu;
    int rc = getsockopt(fd, v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_MTU : IP_MTU, &mtu, &ol);
    if (own >= 0)
        close(own);
    /* only a jumbo route (loopback, a 9000-byte LAN): on a 1500-MTU route
     * the gain over 1,400 is a few percent, and a tunnel further on with
     * ICMP filtered would black-hole the full-size packets */
    if (rc < 0 || mtu < UTP_JUMBO_MTU)
        return 0;
    long room = (long)mtu - (v6 ? 40 : 20) - 8 - (long)GNI_UTP_PACKET_FOR(0);
    if (room <= 1400)
        return 0;
    return room > GNI_UTP_MSS_LIMIT ? GNI_UTP_MSS_LIMIT : (size_t)room;
#else
    (void)k, (void)peer;
    return 0;
#endif
}

/* One utp.KEY option as an unsigned number in [lo, hi]; *@out untouched
 * when absent. GN_EINVAL (logged) when present and not such a number. */
static int utp_opt_num(gn_host *h, const char *key, uint64_t lo, uint64_t hi, uint64_t *out)
{
    const char *v = gn_host_option(h, "utp", key, 0);
    if (!v)
        return 0;
    char *end = NULL;
    unsigned long long n = strtoull(v, &end, 10);
    if (!*v || *v == '-' || !end || *end || n < lo || n > hi) {
        GN_LOG(GN_LOG_ERR, "utp", "option utp.%s=%s: want a number in %llu..%llu", key, v,
               (unsigned long long)lo, (unsigned long long)hi);
        return GN_EINVAL;
    }
    *out = n;
    return 0;
}

/* The core's settings for this instance: defaults, then the node's utp.*
 * options (docs/utp.md "Options"), read once, at the first listen or dial
 * (the node sets t->host before either). */
static int utp_load_options(gn_transport *t)
{
    utp_state *st = t->state;
    if (st->ccfg_ready)
        return st->ccfg_err;
    st->ccfg_ready = true;
    gni_utp_config *c = &st->ccfg;
    gni_utp_config_default(c);
    c->connect_timeout = t->config.dial_timeout ? t->config.dial_timeout : 10 * GN_S;
    st->mss_cap = SIZE_MAX;
    if (!t->host)
        return 0;
    uint64_t v;
    int rc = 0;
    v = c->target_delay_us / 1000;
    rc |= utp_opt_num(t->host, "target_delay_ms", 1, 100, &v);
    c->target_delay_us = (uint32_t)v * 1000;
    v = c->mss;
    rc |= utp_opt_num(t->host, "mss", 64, 1400, &v);
    c->mss = (size_t)v;
    v = c->recv_buf_max;
    rc |= utp_opt_num(t->host, "recv_buf", 4096, 64u << 20, &v);
    c->recv_buf_max = (size_t)v;
    v = c->send_buf_max;
    rc |= utp_opt_num(t->host, "send_buf", 4096, 64u << 20, &v);
    c->send_buf_max = (size_t)v;
    v = c->md_above_target;
    rc |= utp_opt_num(t->host, "ledbat_md", 0, 1, &v);
    c->md_above_target = v != 0;
    const char *m = gn_host_option(t->host, "utp", "mss_max", 0);
    if (m && strcmp(m, "auto") != 0) {
        v = 0;
        rc |= utp_opt_num(t->host, "mss_max", 0, GNI_UTP_MSS_LIMIT, &v);
        st->mss_cap = (size_t)v;
    }
    st->ccfg_err = rc ? GN_EINVAL : 0;
    return st->ccfg_err;
}

/* @probe: look the route MTU up for a size offer (a dial, or a SYN that
 * carries an offer; without one the MSS stays cfg.mss anyway). */
static utp_conn *utp_conn_new(utp_sock *k, const struct sockaddr_storage *peer, bool probe)
{
    gn_transport *t = k->t;
    utp_state *st = t->state;
    utp_conn *c = gn_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    gni_utp_config cfg = st->ccfg;
    size_t room = st->mss_cap && probe ? utp_path_mss(k, peer) : 0;
    cfg.mss_max = room < st->mss_cap ? room : st->mss_cap;
    if (cfg.mss_max <= cfg.mss)
        cfg.mss_max = 0;
    c->u = gni_utp_new(&cfg);
    if (!c->u) {
        gn_free(c);
        return NULL;
    }
    c->t = t;
    c->sock = k;
    c->peer = *peer;
    c->created = gn_loop_now(t->loop);
    gni_wq_init(&c->wq, &c->s, t->config.write_queue_max, 0);
    gn_timer_init(t->loop, &c->timer);
    c->next = k->conns;
    k->conns = c;
    k->refs++;
    return c;
}

/* Frees @c's resources; the struct itself goes with the pending kick if any. */
static void utp_conn_destroy(utp_conn *c)
{
    utp_sock *k = c->sock;
    gn_timer_stop(&c->timer);
    if (c->indexed) {
        gni_htab_remove(&k->by_recv, &c->hn_recv);
        gni_htab_remove(&k->by_send, &c->hn_send);
        c->indexed = false;
    }
    for (utp_conn **pp = &k->conns; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    if (c->half_open) {
        c->half_open = false;
        k->nhalf_open--;
    }
    if (c->stream_open) {
        c->stream_open = false;
        c->t->nconns--;
    }
    if (c->dialing) {
        c->dialing = false;
        ((utp_state *)c->t->state)->ndialing--;
    }
    {
        gni_utp_stats st;
        gni_utp_get_stats(c->u, &st);
        GN_LOG(GN_LOG_DEBUG, "utp",
               "conn %u end: sent %llu resent %llu (fast %llu, RTO expiries %llu) recv %llu "
               "dup %llu cwnd %zu srtt %llu us",
               (unsigned)gni_utp_recv_id(c->u), (unsigned long long)st.sent_packets,
               (unsigned long long)st.resent_packets, (unsigned long long)st.fast_resends,
               (unsigned long long)st.rto_expiries, (unsigned long long)st.recv_packets,
               (unsigned long long)st.dup_packets, st.cwnd, (unsigned long long)(st.srtt / 1000));
    }
    gni_utp_free(c->u);
    c->u = NULL;
    gni_wq_fini(&c->wq);
    c->destroyed = true;
    utp_sock_rele(k);
    if (!c->kick_pending)
        gn_free(c);
}

/* Drains the core: runs of equal-sized datagrams (a window of full data
 * packets) are batched into one send (utp_send_batch). */
static void utp_flush(utp_conn *c)
{
    utp_state *st = c->t->state;
    uint8_t *b = st->gbuf;
    gn_time now = gn_loop_now(c->t->loop);
    size_t len = 0, seg = 0, maxp = gni_utp_max_packet(c->u);
    unsigned cnt = 0;
    for (int i = 0; i < UTP_DRAIN_MAX; i++) {
        if (cnt > 0 && (len + maxp > UTP_GSO_LEN || cnt == UTP_GSO_SEGS)) {
            utp_send_batch(c, b, len, seg, cnt);
            len = seg = cnt = 0;
        }
        int n = gni_utp_drain(c->u, b + len, maxp, now);
        if (n <= 0)
            break;
        if (cnt > 0 && (size_t)n > seg) {
            /* longer than the run: the run goes first, this one starts the next */
            utp_send_batch(c, b, len, seg, cnt);
            memmove(b, b + len, (size_t)n);
            len = seg = cnt = 0;
        }
        if (cnt == 0)
            seg = (size_t)n;
        len += (size_t)n;
        cnt++;
        if ((size_t)n < seg) {
            /* shorter: it may end a GSO run, nothing may follow it */
            utp_send_batch(c, b, len, seg, cnt);
            len = seg = cnt = 0;
        }
    }
    if (cnt)
        utp_send_batch(c, b, len, seg, cnt);
}

static void utp_arm(utp_conn *c)
{
    gn_time d = gni_utp_deadline(c->u);
    if (c->half_open && c->created + c->t->config.dial_timeout < d)
        d = c->created + c->t->config.dial_timeout;
    if (d == UINT64_MAX) {
        gn_timer_stop(&c->timer);
        return;
    }
    gn_time now = gn_loop_now(c->t->loop);
    (void)gn_timer_start(&c->timer, d > now ? d - now : 0, utp_timer_fn, c);
}

/* Copies queued writes into the core; completes those fully taken. */
static void utp_pull_writes(utp_conn *c)
{
    while (c->stream_open && !c->stream_closing && !gni_wq_empty(&c->wq)) {
        gni_wreq *w = gni_wq_head(&c->wq);
        gn_slice sl;
        while (gni_wreq_peek(w, &sl)) {
            long n = gni_utp_write(c->u, sl.base, sl.len);
            if (n <= 0)
                break;
            gni_wq_advance(&c->wq, w, (size_t)n);
        }
        if (w->left > 0)
            return;
        gni_wq_complete(&c->wq, w, 0);
    }
    if (c->stream_open && !c->stream_closing && gni_wq_writable_due(&c->wq))
        gn_stream_emit_writable(&c->s);
}

static void utp_dial_done(utp_conn *c, int status)
{
    gn_dial_cb cb = c->dial_cb;
    void *arg = c->dial_arg;
    c->dialing = false;
    ((utp_state *)c->t->state)->ndialing--;
    if (status < 0) {
        utp_conn_destroy(c);
        cb(arg, status, NULL);
        return;
    }
    int rc = gn_stream_init(&c->s, &utp_stream_ops, c->t->loop, NULL);
    if (rc < 0) {
        gni_utp_abort(c->u);
        utp_flush(c);
        utp_conn_destroy(c);
        cb(arg, rc, NULL);
        return;
    }
    c->stream_open = true;
    c->t->nconns++;
    cb(arg, 0, &c->s);
}

/* Finishes close()/reset(): cancels writes, emits closed, lingers or ends. */
static void utp_finish_close(utp_conn *c)
{
    gni_wq_cancel_all(&c->wq, GN_ECANCELED);
    if (gni_utp_get_state(c->u) == GNI_UTP_CONNECTED && !c->core_shut) {
        c->core_shut = true;
        (void)gni_utp_shutdown(c->u);
    }
    c->stream_open = false;
    c->t->nconns--;
    c->lingering = true;
    gn_stream_emit_closed(&c->s);
}

static void utp_conn_run(utp_conn *c)
{
    if (c->destroyed)
        return;
    gn_time now = gn_loop_now(c->t->loop);
    if (c->stream_open && c->stream_closing) {
        utp_finish_close(c);
    }
    if (c->stream_open) {
        utp_pull_writes(c);
        if (!c->stream_open || c->destroyed)
            return;
        if (c->shut_req && !c->core_shut && gni_wq_empty(&c->wq)) {
            c->core_shut = true;
            (void)gni_utp_shutdown(c->u);
        }
    }
    if (c->half_open && now - c->created >= c->t->config.dial_timeout) {
        c->half_open = false;
        c->sock->nhalf_open--;
        c->half_open_expired = true;
        gni_utp_abort(c->u);  /* never confirmed: ST_RESET */
    }
    utp_flush(c);
    if (now - c->last_log >= GN_S && gn_log_enabled(GN_LOG_DEBUG, "utp")) {
        gni_utp_stats st;
        gni_utp_get_stats(c->u, &st);
        c->last_log = now;
        GN_LOG(GN_LOG_DEBUG, "utp",
               "conn %u: cwnd %zu flight %zu peer_wnd %zu queue %u us base %u us srtt %llu us "
               "sent %llu resent %llu%s",
               (unsigned)gni_utp_recv_id(c->u), st.cwnd, st.flight, st.peer_wnd,
               st.queue_delay_us, st.base_delay_us, (unsigned long long)(st.srtt / 1000),
               (unsigned long long)st.sent_packets, (unsigned long long)st.resent_packets,
               st.slow_start ? " slow-start" : "");
    }
    unsigned ev = gni_utp_take_events(c->u);
    gni_utp_state state = gni_utp_get_state(c->u);
    if (c->dialing) {
        if (state == GNI_UTP_ERROR) {
            utp_dial_done(c, gni_utp_error(c->u));
            return;
        }
        if (ev & GNI_UTP_EV_CONNECTED) {
            utp_dial_done(c, 0);
            if (c->destroyed || !c->stream_open)
                return;
        } else {
            utp_arm(c);
            return;
        }
    }
    if (c->lingering) {
        uint8_t *b = ((utp_state *)c->t->state)->dbuf;
        for (int i = 0; i < 1024 && gni_utp_read(c->u, b, UTP_RBUF_LEN) > 0; i++) {
        }
        utp_flush(c);  /* window updates */
        state = gni_utp_get_state(c->u);
        if (state == GNI_UTP_CLOSED || state == GNI_UTP_ERROR) {
            utp_conn_destroy(c);
            return;
        }
        utp_arm(c);
        return;
    }
    if (!c->stream_open)
        return;
    /* deliver */
    uint8_t *b = ((utp_state *)c->t->state)->dbuf;
    bool read_any = false;
    for (int i = 0; i < 64 && gn_stream_is_reading(&c->s) && !c->stream_closing; i++) {
        long n = gni_utp_read(c->u, b, UTP_RBUF_LEN);
        if (n > 0) {
            read_any = true;
            gn_stream_emit_data(&c->s, b, (size_t)n);
            if (c->destroyed)
                return;
            continue;
        }
        if (n == GN_EEOF && !c->eof_emitted) {
            c->eof_emitted = true;
            gn_stream_emit_eof(&c->s);
        }
        break;
    }
    if (c->destroyed || !c->stream_open)
        return;
    if (gni_utp_readable(c->u) && gn_stream_is_reading(&c->s))
        utp_kick(c);  /* more than one pass holds: continue next turn */
    if (state == GNI_UTP_ERROR && !c->err_emitted && !c->stream_closing) {
        int err = c->half_open_expired ? GN_ETIMEDOUT : gni_utp_error(c->u);
        c->err_emitted = true;
        gni_wq_cancel_all(&c->wq, err);
        if (c->stream_open && !c->stream_closing)
            gn_stream_emit_error(&c->s, err);
        return;
    }
    if (ev & GNI_UTP_EV_WRITABLE)
        utp_pull_writes(c);
    if (c->destroyed || !c->stream_open)
        return;
    if (read_any || (ev & GNI_UTP_EV_WRITABLE))
        utp_flush(c);
    if (c->stream_closing) {
        utp_kick(c);
        return;
    }
    utp_arm(c);
}

/* ---- receiving ---- */

static void utp_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    utp_sock *k = h->data;
    utp_state *st = k->t->state;
    buf->base = (char *)st->rbuf;
    buf->len = UTP_RECV_LEN;
}

/* The demultiplexer's key: SipHash-2-4 (libsodium's crypto_shorthash)
 * under the socket's key of the peer's family, port, address and @id. */
static uint64_t utp_conn_key(const utp_sock *k, const struct sockaddr_storage *peer, uint16_t id)
{
    uint8_t in[2 + 2 + 16 + 2];
    size_t n = 0;
    in[n++] = (uint8_t)(peer->ss_family >> 8);
    in[n++] = (uint8_t)peer->ss_family;
    if (peer->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const void *)peer;
        memcpy(in + n, &a->sin6_port, 2);
        memcpy(in + n + 2, &a->sin6_addr, 16);
        n += 18;
    } else {
        const struct sockaddr_in *a = (const void *)peer;
        memcpy(in + n, &a->sin_port, 2);
        memcpy(in + n + 2, &a->sin_addr, 4);
        n += 6;
    }
    in[n++] = (uint8_t)(id >> 8);
    in[n++] = (uint8_t)id;
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, in, n, k->hash_key);
    uint64_t key;
    memcpy(&key, h, sizeof key);
    return key;
}

/* Enters @c in its socket's demultiplexer once the core has its ids (after
 * gni_utp_connect or gni_utp_accept). Errors: GN_ENOMEM (table growth). */
static int utp_conn_index(utp_conn *c)
{
    utp_sock *k = c->sock;
    c->hn_recv.key = utp_conn_key(k, &c->peer, gni_utp_recv_id(c->u));
    c->hn_send.key = utp_conn_key(k, &c->peer, gni_utp_send_id(c->u));
    if (gni_htab_insert(&k->by_recv, &c->hn_recv) < 0)
        return GN_ENOMEM;
    if (gni_htab_insert(&k->by_send, &c->hn_send) < 0) {
        gni_htab_remove(&k->by_recv, &c->hn_recv);
        return GN_ENOMEM;
    }
    c->indexed = true;
    return 0;
}

/* The connection a datagram with header @h from @from belongs to: the one
 * receiving on h->conn_id from that peer; for ST_SYN (resent: an accepted
 * connection) and ST_RESET also the one sending on it. Keys may collide:
 * every candidate's address and id are compared. */
static utp_conn *utp_find(utp_sock *k, const struct sockaddr_storage *from, const gni_utp_hdr *h)
{
    uint64_t key = utp_conn_key(k, from, h->conn_id);
    for (gni_hnode *e = gni_htab_find(&k->by_recv, key); e; e = gni_htab_find_next(&k->by_recv, e)) {
        utp_conn *c = GNI_CONTAINER_OF(e, utp_conn, hn_recv);
        if (!c->destroyed && gni_utp_recv_id(c->u) == h->conn_id && utp_sa_equal(&c->peer, from))
            return c;
    }
    if (h->type != GNI_UTP_ST_RESET && h->type != GNI_UTP_ST_SYN)
        return NULL;
    for (gni_hnode *e = gni_htab_find(&k->by_send, key); e; e = gni_htab_find_next(&k->by_send, e)) {
        utp_conn *c = GNI_CONTAINER_OF(e, utp_conn, hn_send);
        if (!c->destroyed && gni_utp_send_id(c->u) == h->conn_id && utp_sa_equal(&c->peer, from))
            return c;
    }
    return NULL;
}

static void utp_accept_syn(utp_sock *k, const struct sockaddr_storage *from, const gni_utp_hdr *h,
                           const uint8_t *pkt, size_t len)
{
    gn_transport *t = k->t;
    utp_listener *l = k->listener;
    if (!l || k->nhalf_open >= (t->config.listen_backlog ? t->config.listen_backlog : 511) ||
        utp_at_limit(t)) {
        utp_send_reset(k, from, h);
        return;
    }
    utp_conn *c = utp_conn_new(k, from, h->gn_mss_kind == 'O');
    if (!c)
        return;
    uint16_t isn;
    gn_rng_system()->fill(gn_rng_system()->user_data, (uint8_t *)&isn, sizeof isn);
    if (gni_utp_accept(c->u, pkt, len, isn, gn_loop_now(t->loop)) < 0 ||
        utp_conn_index(c) < 0 || gn_stream_init(&c->s, &utp_stream_ops, t->loop, NULL) < 0) {
        utp_conn_destroy(c);
        return;
    }
    c->half_open = true;
    k->nhalf_open++;
    c->stream_open = true;
    t->nconns++;
    utp_flush(c);
    utp_arm(c);
    l->base.accept_cb(l->base.accept_arg, &l->base, 0, &c->s);
}

/* Every socket takes ICMP errors with IP_RECVERR: the kernel queues each
 * with the datagram's destination and the start of the datagram it quotes,
 * and the next receive without data reports the error. Reads the queue
 * (bounded) and hands each port / host / network unreachable report to the
 * connections to that peer (gni_utp_icmp: only the connection whose conn_id
 * and in-flight seq the quoted header carries, and host or network
 * unreachable only in the handshake or once timeouts expire); "too big"
 * and other reports are dropped (IP fragmentation covers the size).
 * Returns the number of reports read. */
static int utp_sock_errqueue(utp_sock *k)
{
    int nread = 0;
#if defined(__linux__) && defined(IP_RECVERR) && defined(IPV6_RECVERR)
    uv_os_fd_t fd;
    if (uv_fileno((const uv_handle_t *)&k->h, &fd) != 0)
        return 0;
    for (int i = 0; i < 64 && !k->closing; i++) {
        struct sockaddr_storage dst;
        uint8_t body[64];
        union {
            char buf[512];
            struct cmsghdr align;
        } ctl;
        struct iovec iov = {.iov_base = body, .iov_len = sizeof body};
        struct msghdr m = {.msg_name = &dst, .msg_namelen = sizeof dst, .msg_iov = &iov,
                           .msg_iovlen = 1, .msg_control = ctl.buf,
                           .msg_controllen = sizeof ctl.buf};
        memset(&dst, 0, sizeof dst);
        ssize_t blen = recvmsg(fd, &m, MSG_ERRQUEUE | MSG_DONTWAIT);
        if (blen < 0)
            return nread;
        nread++;
        int err = 0;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm)) {
            if ((cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_RECVERR) ||
                (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_RECVERR)) {
                struct sock_extended_err ee;
                memcpy(&ee, CMSG_DATA(cm), sizeof ee);
                if (ee.ee_origin == SO_EE_ORIGIN_ICMP || ee.ee_origin == SO_EE_ORIGIN_ICMP6) {
                    if (ee.ee_errno == ECONNREFUSED)
                        err = GN_ECONNREFUSED;
                    else if (ee.ee_errno == EHOSTUNREACH || ee.ee_errno == ENETUNREACH)
                        err = GN_EUNREACHABLE;
                }
            }
        }
        if (!err)
            continue;
        for (utp_conn *c = k->conns, *next; c; c = next) {
            next = c->next;
            if (c->destroyed || (!k->connected && !utp_sa_equal(&c->peer, &dst)))
                continue;
            if (gni_utp_icmp(c->u, body, (size_t)blen, err)) {
                GN_LOG(GN_LOG_DEBUG, "utp", "ICMP %s: connection failed", gn_err_name(err));
                utp_kick(c);  /* the pass reports it, from the loop */
            }
        }
    }
    return nread;
#else
    (void)k;
    return 0;
#endif
}

/* A receive error on @k (@uverr: a UV_E* code): a connected (dial) socket
 * reports ICMP errors this way. */
static void utp_recv_error(utp_sock *k, int uverr)
{
    int err = gni_err_from_uv(uverr);
    GN_LOG(GN_LOG_DEBUG, "utp", "recv: %s", uv_strerror(uverr));
    if (utp_sock_errqueue(k) == 0 && k->connected && k->conns && !k->conns->destroyed) {
        /* no error queue (not Linux): the kernel matched the connected
         * address; unreachable is fatal only in the handshake */
        utp_conn *c = k->conns;
        if (err == GN_ECONNREFUSED || gni_utp_get_state(c->u) == GNI_UTP_SYN_SENT) {
            gni_utp_fail(c->u, err == GN_ECONNREFUSED ? GN_ECONNREFUSED : GN_EUNREACHABLE);
            utp_conn_run(c);
        }
    }
}

/* One datagram of @len bytes at @pkt from @from (zero-padded) on @k. */
static void utp_recv_dgram(utp_sock *k, const struct sockaddr_storage *from, const uint8_t *pkt,
                           size_t len)
{
    gni_utp_hdr hdr;
    if (gni_utp_parse(pkt, len, &hdr) < 0)
        return;
    utp_conn *c = utp_find(k, from, &hdr);
    if (!c) {
        if (hdr.type == GNI_UTP_ST_SYN)
            utp_accept_syn(k, from, &hdr, pkt, len);
        else if (hdr.type != GNI_UTP_ST_RESET)
            utp_send_reset(k, from, &hdr);
        return;
    }
    (void)gni_utp_feed(c->u, pkt, len, gn_loop_now(k->t->loop));
    if (c->half_open && hdr.type != GNI_UTP_ST_SYN) {
        c->half_open = false;
        k->nhalf_open--;
    }
    /* the pass runs once per loop turn, after every datagram read in this
     * one: one ACK (and one delivery) covers the whole batch */
    utp_kick(c);
}

/* @addr as a zero-padded sockaddr_storage (utp_sa_equal compares it). */
static void utp_sa_copy(struct sockaddr_storage *to, const struct sockaddr *addr)
{
    memset(to, 0, sizeof *to);
    memcpy(to, addr, addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                 : sizeof(struct sockaddr_in));
}

static void utp_recv_cb(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                        const struct sockaddr *addr, unsigned flags)
{
    (void)flags;
    utp_sock *k = h->data;
    if (k->closing)
        return;
    if (nread < 0) {
        utp_recv_error(k, (int)nread);
        return;
    }
    if (nread == 0 || !addr) {
        /* the end of a read burst (EAGAIN): an error a send consumed leaves
         * its queue entry, and POLLERR, behind; read them here so the loop
         * does not keep waking up */
        if (!addr)
            (void)utp_sock_errqueue(k);
        return;
    }
    struct sockaddr_storage from;
    utp_sa_copy(&from, addr);
    utp_recv_dgram(k, &from, (const uint8_t *)buf->base, (size_t)nread);
}

#ifdef UTP_HAVE_GRO
/* Receive with UDP GRO (Linux >= 5.0): the kernel hands a GSO batch (from
 * a sender on loopback or a veth, or aggregated by a NIC's GRO) to the
 * socket as one buffer with the segment size in a UDP_GRO cmsg, instead of
 * cutting it into one skb and one recvmmsg slot per datagram. libuv 1.44's
 * receive callback gives no cmsg, so these sockets are read here, from a
 * uv_poll_t on the socket's fd (the uv_udp_t only sends). One wakeup reads
 * at most UTP_GRO_BUDGET_DGRAMS datagrams or UTP_GRO_BUDGET_BYTES bytes
 * (each recvmmsg call asks for no more 64 KiB buffers than the bytes left
 * allow, so one call cannot overshoot the byte budget by more than a
 * buffer). A message whose data or control was cut (MSG_TRUNC, MSG_CTRUNC:
 * the UDP_GRO cmsg may be the part lost, and a batch taken for one
 * datagram would corrupt the stream) is dropped and counted; the peer's
 * retransmission recovers it. */
static void utp_gro_read(utp_sock *k)
{
    utp_state *st = k->t->state;
    assert(!uv_is_active((const uv_handle_t *)&k->h)); /* see utp_sock.gro */
    uv_os_fd_t fd;
    if (uv_fileno((const uv_handle_t *)&k->h, &fd) != 0)
        return;
    struct mmsghdr mm[UTP_MMSG_DGRAMS];
    struct iovec iov[UTP_MMSG_DGRAMS];
    struct sockaddr_storage from[UTP_MMSG_DGRAMS];
    /* CMSG_SPACE is a multiple of the header's alignment: every row is aligned */
    _Alignas(struct cmsghdr) char ctl[UTP_MMSG_DGRAMS][UTP_GRO_CMSGS * CMSG_SPACE(sizeof(int))];
    size_t dgrams = 0, bytes = 0;
    while (dgrams < UTP_GRO_BUDGET_DGRAMS && bytes < UTP_GRO_BUDGET_BYTES && !k->closing) {
        unsigned vlen = (unsigned)((UTP_GRO_BUDGET_BYTES - bytes) / UTP_RBUF_LEN);
        if (vlen > UTP_GRO_BUDGET_DGRAMS - dgrams)
            vlen = (unsigned)(UTP_GRO_BUDGET_DGRAMS - dgrams);
        if (vlen > UTP_MMSG_DGRAMS)
            vlen = UTP_MMSG_DGRAMS;
        if (vlen == 0)
            vlen = 1;
        for (unsigned i = 0; i < vlen; i++) {
            iov[i].iov_base = st->rbuf + (size_t)i * UTP_RBUF_LEN;
            iov[i].iov_len = UTP_RBUF_LEN;
            memset(&mm[i], 0, sizeof mm[i]);
            mm[i].msg_hdr.msg_name = &from[i];
            mm[i].msg_hdr.msg_namelen = sizeof from[i];
            mm[i].msg_hdr.msg_iov = &iov[i];
            mm[i].msg_hdr.msg_iovlen = 1;
            mm[i].msg_hdr.msg_control = ctl[i];
            mm[i].msg_hdr.msg_controllen = sizeof ctl[i];
        }
        int n;
        do
            n = recvmmsg(fd, mm, vlen, MSG_DONTWAIT, NULL);
        while (n < 0 && errno == EINTR);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            utp_recv_error(k, -errno); /* an ICMP report (sk_err); the data stays queued */
            dgrams++;                  /* counts against the budget: no endless loop */
            continue;
        }
        for (int i = 0; i < n && !k->closing; i++) {
            struct msghdr *m = &mm[i].msg_hdr;
            size_t len = mm[i].msg_len;
            bytes += len;
            if (m->msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
                dgrams++;
                k->rx_cut++;
                GN_LOG(GN_LOG_DEBUG, "utp", "receive: message cut (flags 0x%x), dropped",
                       (unsigned)m->msg_flags);
                continue;
            }
            if (len == 0 || m->msg_namelen == 0) {
                dgrams++;
                continue;
            }
            int seg = 0;
            for (struct cmsghdr *cm = CMSG_FIRSTHDR(m); cm; cm = CMSG_NXTHDR(m, cm)) {
                if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO)
                    memcpy(&seg, CMSG_DATA(cm), sizeof seg);
            }
            struct sockaddr_storage sa;
            utp_sa_copy(&sa, (const struct sockaddr *)&from[i]);
            const uint8_t *p = iov[i].iov_base;
            if (seg <= 0 || (size_t)seg >= len) {
                dgrams++;
                utp_recv_dgram(k, &sa, p, len);
                continue;
            }
            /* the batch's datagrams: seg bytes each, the last may be shorter */
            k->gro_batches++;
            dgrams += (len + (size_t)seg - 1) / (size_t)seg;
            for (size_t off = 0; off < len && !k->closing; off += (size_t)seg)
                utp_recv_dgram(k, &sa, p + off, len - off < (size_t)seg ? len - off : (size_t)seg);
        }
        if (n < (int)vlen)
            return; /* the queue is empty */
    }
}

static void utp_poll_cb(uv_poll_t *ph, int status, int events)
{
    (void)events;
    utp_sock *k = ph->data;
    if (k->closing)
        return;
    if (status < 0) {
        /* POLLERR: an ICMP report is pending (IP_RECVERR) and libuv has
         * stopped the handle. The data first: a receive returns the
         * socket's pending error, and utp_recv_error reads the queue that
         * explains it (read before, an empty queue would look like a
         * system without one); then what a send's error left queued; then
         * poll again */
        utp_gro_read(k);
        if (!k->closing)
            (void)utp_sock_errqueue(k);
        if (!k->closing) {
            int rc = uv_poll_start(&k->ph, UV_READABLE, utp_poll_cb);
            if (rc < 0)
                GN_LOG(GN_LOG_ERR, "utp", "poll restart: %s", uv_strerror(rc));
        }
        return;
    }
    utp_gro_read(k);
}

/* Turns UDP GRO on for @k and starts reading it through a uv_poll_t;
 * 0, or < 0 (nothing changed, the caller uses uv_udp_recv_start). */
static int utp_gro_start(utp_sock *k)
{
    uv_os_fd_t fd;
    if (uv_fileno((const uv_handle_t *)&k->h, &fd) != 0)
        return -1;
    int one = 1, zero = 0;
    if (setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof one) != 0)
        return -1;
    if (uv_poll_init_socket(gn_loop_uv(k->t->loop), &k->ph, fd) < 0) {
        (void)setsockopt(fd, SOL_UDP, UDP_GRO, &zero, sizeof zero);
        return -1;
    }
    k->ph.data = k;
    k->ph_open = true;
    int rc = uv_poll_start(&k->ph, UV_READABLE, utp_poll_cb);
    if (rc < 0) {
        /* the poll handle closes with the socket */
        (void)setsockopt(fd, SOL_UDP, UDP_GRO, &zero, sizeof zero);
        return rc;
    }
    k->gro = true;
    return 0;
}
#endif

static int utp_sock_open(gn_transport *t, const struct sockaddr_storage *bind_to,
                         const struct sockaddr_storage *connect_to, utp_sock **out)
{
    utp_state *st = t->state;
    if (utp_buffers(st) < 0)
        return GN_ENOMEM;
    utp_sock *k = gn_calloc(1, sizeof *k);
    if (!k)
        return GN_ENOMEM;
    k->t = t;
    k->h.data = k;
    /* a dial socket carries one connection, a listener's grows (doubling) */
    if (gni_htab_init(&k->by_recv, connect_to ? 1 : 16) < 0 ||
        gni_htab_init(&k->by_send, connect_to ? 1 : 16) < 0) {
        gni_htab_fini(&k->by_recv);
        gn_free(k);
        return GN_ENOMEM;
    }
    gn_rng_fill(gn_rng_system(), k->hash_key, sizeof k->hash_key);
    int fam = (bind_to ? bind_to : connect_to)->ss_family;
    /* batched receive (recvmmsg) where libuv offers it (>= 1.40, Linux) */
    unsigned flags = (unsigned)fam;
#if UV_VERSION_HEX >= 0x012800
    flags |= UV_UDP_RECVMMSG;
#endif
    int rc = uv_udp_init_ex(gn_loop_uv(t->loop), &k->h, flags);
    if (rc < 0) {
        gni_htab_fini(&k->by_recv);
        gni_htab_fini(&k->by_send);
        gn_free(k);
        return gni_err_from_uv(rc);
    }
    if (bind_to) {
        rc = uv_udp_bind(&k->h, (const struct sockaddr *)bind_to,
                         fam == AF_INET6 ? UV_UDP_IPV6ONLY : 0);
    } else {
        rc = uv_udp_connect(&k->h, (const struct sockaddr *)connect_to);
        k->connected = rc == 0;
    }
#if defined(__linux__) && defined(IP_RECVERR) && defined(IPV6_RECVERR)
    uv_os_fd_t efd;
    if (rc == 0 && uv_fileno((const uv_handle_t *)&k->h, &efd) == 0) {
        /* ICMP errors with the datagram they quote (utp_sock_errqueue) */
        int one = 1;
        (void)setsockopt(efd, fam == AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP,
                         fam == AF_INET6 ? IPV6_RECVERR : IP_RECVERR, &one, sizeof one);
    }
#endif
#ifdef UTP_HAVE_GSO
    uv_os_fd_t gfd;
    if (rc == 0 && uv_fileno((const uv_handle_t *)&k->h, &gfd) == 0) {
        /* UDP GSO only where the kernel knows the option (>= 4.18): an
         * older kernel, or a sandbox, may ignore the cmsg and send a batch
         * as one datagram. 0 keeps per-socket segmentation off; each
         * batch asks for it with its cmsg. */
        int zero = 0;
        k->gso = setsockopt(gfd, SOL_UDP, UDP_SEGMENT, &zero, sizeof zero) == 0;
    }
#endif
    if (rc == 0) {
        int len = (int)sizeof k->local;
        rc = uv_udp_getsockname(&k->h, (struct sockaddr *)&k->local, &len);
    }
    if (rc == 0) {
        /* room for a full window of datagrams (the kernel caps it at
         * net.core.rmem_max / wmem_max); overflow would be loss */
        int sz = UTP_SOCK_BUF;
        (void)uv_recv_buffer_size((uv_handle_t *)&k->h, &sz);
        sz = UTP_SOCK_BUF;
        (void)uv_send_buffer_size((uv_handle_t *)&k->h, &sz);
#ifdef UTP_HAVE_GRO
        if (utp_gro_start(k) == 0)
            rc = 0;
        else
#endif
        {
            assert(!k->gro); /* a second watcher on a GRO socket's fd: see utp_sock.gro */
            rc = uv_udp_recv_start(&k->h, utp_alloc_cb, utp_recv_cb);
        }
    }
    if (rc < 0) {
        utp_sock_close(k);
        return gni_err_from_uv(rc);
    }
    k->next = st->socks;
    st->socks = k;
    *out = k;
    return 0;
}

/* ---- listening ---- */

static int utp_listen(gn_transport *t, const gn_multiaddr *ma, gn_accept_cb cb, void *arg,
                      gn_listener **out)
{
    struct sockaddr_storage ss;
    int rc = utp_ma_to_sockaddr(ma, &ss);
    if (rc < 0)
        return rc == GN_ENOTRANSPORT ? GN_EINVAL : rc;
    if ((rc = utp_load_options(t)) < 0)
        return rc;
    utp_listener *l = gn_calloc(1, sizeof *l);
    if (!l)
        return GN_ENOMEM;
    utp_sock *k;
    rc = utp_sock_open(t, &ss, NULL, &k);
    if (rc < 0) {
        gn_free(l);
        return rc;
    }
    k->refs = 1;
    k->listener = l;
    l->sock = k;
    l->base.transport = t;
    l->base.accept_cb = cb;
    l->base.accept_arg = arg;
    *out = &l->base;
    return 0;
}

static int utp_listener_addr(gn_listener *gl, gn_multiaddr **out)
{
    utp_listener *l = (utp_listener *)gl;
    return utp_sockaddr_to_ma(&l->sock->local, out);
}

static void utp_listener_closed_fn(gn_loop *loop, void *arg)
{
    (void)loop;
    utp_listener *l = arg;
    if (l->close_cb)
        l->close_cb(&l->base, l->close_arg);
    gn_free(l);
}

static void utp_listener_close(gn_listener *gl, gn_listener_close_cb cb, void *arg)
{
    utp_listener *l = (utp_listener *)gl;
    l->close_cb = cb;
    l->close_arg = arg;
    utp_sock *k = l->sock;
    k->listener = NULL;
    l->sock = NULL;
    utp_sock_rele(k);  /* the socket stays while accepted connections use it */
    if (gn_loop_defer(gl->transport->loop, utp_listener_closed_fn, l) < 0)
        utp_listener_closed_fn(NULL, l);
}

/* ---- dialing ---- */

typedef struct utp_cancel_rec {
    gn_dial_cb cb;
    void *arg;
} utp_cancel_rec;

static void utp_dial_cancel_fn(gn_loop *loop, void *arg)
{
    (void)loop;
    utp_cancel_rec r = *(utp_cancel_rec *)arg;
    gn_free(arg);
    r.cb(r.arg, GN_ECANCELED, NULL);
}

static void utp_dial_cancel(gn_op *op)
{
    utp_conn *c = GNI_CONTAINER_OF(op, utp_conn, op);
    if (!c->dialing || c->destroyed)
        return;
    utp_cancel_rec *r = gn_calloc(1, sizeof *r);
    gn_loop *loop = c->t->loop;
    gn_dial_cb cb = c->dial_cb;
    void *arg = c->dial_arg;
    /* close the socket now (c may be freed); the callback follows from the loop */
    utp_conn_destroy(c);
    if (!r) {
        GN_LOG(GN_LOG_ERR, "utp", "dial cancel: out of memory, completing late");
        return;
    }
    r->cb = cb;
    r->arg = arg;
    if (gn_loop_defer(loop, utp_dial_cancel_fn, r) < 0) {
        gn_free(r);
        GN_LOG(GN_LOG_ERR, "utp", "dial cancel: cannot defer the completion");
    }
}

static int utp_dial(gn_transport *t, const gn_multiaddr *ma, gn_dial_cb cb, void *arg, gn_op **op)
{
    utp_state *st = t->state;
    struct sockaddr_storage ss;
    int rc = utp_ma_to_sockaddr(ma, &ss);
    if (rc < 0)
        return rc;
    if ((rc = utp_load_options(t)) < 0)
        return rc;
    if (utp_at_limit(t))
        return GN_ELIMIT;
    utp_sock *k;
    rc = utp_sock_open(t, NULL, &ss, &k);
    if (rc < 0)
        return rc == GN_EINVAL ? GN_EADDRNOTAVAIL : rc;
    k->refs = 0;
    utp_conn *c = utp_conn_new(k, &ss, true);
    if (!c) {
        k->refs = 1;
        utp_sock_rele(k);
        return GN_ENOMEM;
    }
    uint16_t r[2];
    gn_rng_system()->fill(gn_rng_system()->user_data, (uint8_t *)r, sizeof r);
    (void)gni_utp_connect(c->u, r[0], r[1], gn_loop_now(t->loop));
    if (utp_conn_index(c) < 0) {
        utp_conn_destroy(c);
        return GN_ENOMEM;
    }
    c->dialing = true;
    st->ndialing++;
    c->dial_cb = cb;
    c->dial_arg = arg;
    c->op.cancel = utp_dial_cancel;
    *op = &c->op;
    utp_kick(c);
    if (!c->kick_pending) {
        *op = NULL;
        c->dialing = false;
        st->ndialing--;
        utp_conn_destroy(c);
        return GN_ENOMEM;
    }
    return 0;
}

/* ---- stream ops ---- */

static int utp_s_write(gn_stream *s, const gn_slice *iov, size_t iovcnt, gn_write_cb cb,
                       void *arg)
{
    utp_conn *c = (utp_conn *)s;
    if (c->shut_req)
        return GN_EPIPE;
    int err = gni_utp_error(c->u);
    if (err < 0)
        return err == GN_ECANCELED ? GN_EPIPE : err;
    if (gni_utp_get_state(c->u) == GNI_UTP_CLOSED)
        return GN_EPIPE;
    size_t len = 0;
    int rc = gni_wq_admit(&c->wq, iov, iovcnt, &len);
    if (rc < 0)
        return rc;
    gni_wreq *w;
    rc = gni_wq_push(&c->wq, iov, iovcnt, len, cb, arg, true, 0, &w);
    if (rc < 0)
        return rc;
    utp_kick(c);
    return 0;
}

static int utp_s_read_start(gn_stream *s)
{
    utp_kick((utp_conn *)s);
    return 0;
}

static int utp_s_read_stop(gn_stream *s)
{
    (void)s;
    return 0;
}

static int utp_s_shutdown(gn_stream *s)
{
    utp_conn *c = (utp_conn *)s;
    int err = gni_utp_error(c->u);
    if (err < 0)
        return err;
    c->shut_req = true;
    utp_kick(c);
    return 0;
}

static void utp_s_close(gn_stream *s)
{
    utp_conn *c = (utp_conn *)s;
    c->stream_closing = true;
    utp_kick(c);
}

static void utp_s_reset(gn_stream *s)
{
    utp_conn *c = (utp_conn *)s;
    gni_utp_abort(c->u);
    c->stream_closing = true;
    utp_kick(c);
}

static int utp_s_addr(gn_stream *s, gn_stream_addr_kind kind, gn_multiaddr **out)
{
    utp_conn *c = (utp_conn *)s;
    return utp_sockaddr_to_ma(kind == GN_ADDR_LOCAL ? &c->sock->local : &c->peer, out);
}

static int utp_s_query(gn_stream *s, int key, void *out, size_t out_len)
{
    utp_conn *c = (utp_conn *)s;
    if (key == GN_QUERY_RTT && out_len >= sizeof(gn_time)) {
        gni_utp_stats st;
        gni_utp_get_stats(c->u, &st);
        memcpy(out, &st.srtt, sizeof st.srtt);
        return 0;
    }
    return GN_ENOTSUP;
}

static const gn_stream_ops utp_stream_ops = {
    .abi = GN_STREAM_ABI,
    .name = "utp",
    .write = utp_s_write,
    .read_start = utp_s_read_start,
    .read_stop = utp_s_read_stop,
    .shutdown = utp_s_shutdown,
    .reset = utp_s_reset,
    .close = utp_s_close,
    .addr = utp_s_addr,
    .query = utp_s_query,
};

static const gn_transport_ops utp_ops = {
    .abi = GN_TRANSPORT_ABI,
    .name = "utp",
    .state_size = sizeof(utp_state),
    .flags = 0,
    .caps = GN_TRANSPORT_CAP_RELIABLE,
    .test_listen_addr = "/ip4/127.0.0.1/udp/0/utp",
    .init = utp_init,
    .fini = utp_fini,
    .handles = utp_handles,
    .listen = utp_listen,
    .listener_addr = utp_listener_addr,
    .listener_close = utp_listener_close,
    .dial = utp_dial,
};

unsigned gni_utp_uv_rx_counts(gn_transport *t, uint64_t *gro_batches, uint64_t *cut)
{
    utp_state *st = t->state;
    uint64_t b = 0, c = 0;
    unsigned ngro = 0;
    for (utp_sock *k = st ? st->socks : NULL; k; k = k->next) {
        b += k->gro_batches;
        c += k->rx_cut;
        ngro += k->gro;
    }
    if (gro_batches)
        *gro_batches = b;
    if (cut)
        *cut = c;
    return ngro;
}

int gn_transport_utp_register(gn_registry *reg);

int gn_transport_utp_register(gn_registry *reg)
{
    return gn_registry_add(reg, GN_LAYER_TRANSPORT, (const gn_layer_ops *)&utp_ops);
}
