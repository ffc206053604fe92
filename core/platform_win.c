/*
 * The platform file for Windows (core/gni_platform.h). Winsock's select()
 * (and so Python's selectors and asyncio's add_reader on Windows) watches
 * sockets only, so the wakeup descriptor is one end of a connected pair of
 * loopback TCP sockets, made the way CPython's socket.socketpair() fallback
 * does it: listen on 127.0.0.1 port 0, connect, accept, check that the
 * accepted peer is the connecting socket.
 */
#include "gni_platform.h"

#include "golemnet/err.h"

#include <winsock2.h>
#include <ws2tcpip.h>

#include <string.h>
#include <uv.h> /* uv_inet_pton */

/* Winsock is started once per process and never stopped (libuv does the
 * same); WSAStartup counts, so calling it beside libuv's is harmless. */
static int plat_wsa_start(void)
{
    WSADATA wsa;
    return WSAStartup(MAKEWORD(2, 2), &wsa) == 0 ? 0 : GN_EIO;
}

static int plat_nonblock(SOCKET s)
{
    u_long on = 1;
    return ioctlsocket(s, FIONBIO, &on) == 0 ? 0 : -1;
}

/* Not inherited by child processes (a CLI or test that spawns one must not
 * hand it the node's wakeup sockets, and a child holding the write end would
 * keep the pair alive). socket() makes inheritable handles; SetHandleInformation
 * works on every Windows version and Wine, unlike WSA_FLAG_NO_HANDLE_INHERIT
 * (Windows 7 SP1 and later). */
static int plat_noinherit(SOCKET s)
{
    return SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT, 0) ? 0 : -1;
}

int gni_wakeup_open(gni_wakeup *w)
{
    w->rfd = w->wfd = -1;
    if (plat_wsa_start() < 0) {
        return GN_EIO;
    }
    SOCKET lsn = INVALID_SOCKET, c = INVALID_SOCKET, a = INVALID_SOCKET;
    struct sockaddr_in addr, caddr, peer;
    int alen = sizeof(addr);
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    lsn = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    if (lsn == INVALID_SOCKET || plat_noinherit(lsn) != 0 || bind(lsn, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
        getsockname(lsn, (struct sockaddr *)&addr, &alen) != 0 || listen(lsn, 1) != 0) {
        goto fail;
    }
    c = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    if (c == INVALID_SOCKET || plat_noinherit(c) != 0 || connect(c, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        goto fail;
    }
    alen = sizeof(peer);
    a = accept(lsn, (struct sockaddr *)&peer, &alen);
    if (a == INVALID_SOCKET || plat_noinherit(a) != 0) {
        goto fail;
    }
    /* Another local process could have connected first: the accepted peer
     * must be our connecting socket. */
    alen = sizeof(caddr);
    if (getsockname(c, (struct sockaddr *)&caddr, &alen) != 0 ||
        caddr.sin_port != peer.sin_port || caddr.sin_addr.s_addr != peer.sin_addr.s_addr) {
        goto fail;
    }
    closesocket(lsn);
    BOOL nodelay = TRUE;
    (void)setsockopt(c, IPPROTO_TCP, TCP_NODELAY, (const char *)&nodelay, sizeof(nodelay));
    if (plat_nonblock(a) != 0 || plat_nonblock(c) != 0) {
        closesocket(a);
        closesocket(c);
        return GN_EIO;
    }
    /* SOCKET values are kernel handles, which fit 32 bits (gni_platform.h) */
    w->rfd = (int)a;
    w->wfd = (int)c;
    return 0;
fail:
    if (lsn != INVALID_SOCKET) {
        closesocket(lsn);
    }
    if (c != INVALID_SOCKET) {
        closesocket(c);
    }
    if (a != INVALID_SOCKET) {
        closesocket(a);
    }
    return GN_EIO;
}

void gni_wakeup_close(gni_wakeup *w)
{
    if (w->rfd >= 0) {
        closesocket((SOCKET)w->rfd);
    }
    if (w->wfd >= 0) {
        closesocket((SOCKET)w->wfd);
    }
    w->rfd = w->wfd = -1;
}

void gni_wakeup_signal(gni_wakeup *w)
{
    if (w->wfd < 0) {
        return;
    }
    char one = 1;
    /* WSAEWOULDBLOCK: the buffers are full, so rfd is readable already */
    (void)send((SOCKET)w->wfd, &one, 1, 0);
}

void gni_wakeup_drain(gni_wakeup *w)
{
    if (w->rfd < 0) {
        return;
    }
    char buf[64];
    for (;;) {
        int n = recv((SOCKET)w->rfd, buf, (int)sizeof(buf), 0);
        if (n < (int)sizeof(buf)) {
            break; /* empty (WSAEWOULDBLOCK), short read, or error */
        }
    }
}

int gni_sock_wait_readable(long long sock, int timeout_ms)
{
    WSAPOLLFD pfd = {.fd = (SOCKET)sock, .events = POLLRDNORM};
    int pr = WSAPoll(&pfd, 1, timeout_ms);
    if (pr == SOCKET_ERROR) {
        return GN_EIO;
    }
    return pr > 0 ? 1 : 0;
}

int gni_inet_pton(bool v6, const char *text, uint8_t *out)
{
    /* libuv's copy of the ISC code: the same rules as glibc's inet_pton */
    return uv_inet_pton(v6 ? AF_INET6 : AF_INET, text, out) == 0 ? 0 : GN_EPARSE;
}
