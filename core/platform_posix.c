/*
 * The platform file for Linux, macOS and the BSDs (core/gni_platform.h):
 * the wakeup descriptor is an eventfd on Linux and a non-blocking pipe
 * elsewhere.
 */
#include "gni_platform.h"

#include "golemnet/err.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <unistd.h>

#if defined(__linux__)
#  include <sys/eventfd.h>
#  define GNI_WAKEUP_EVENTFD 1
#endif

int gni_wakeup_open(gni_wakeup *w)
{
    w->rfd = w->wfd = -1;
#if defined(GNI_WAKEUP_EVENTFD)
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) {
        return GN_EIO;
    }
    w->rfd = w->wfd = fd;
#else
    int p[2];
    if (pipe(p) != 0) {
        return GN_EIO;
    }
    for (int i = 0; i < 2; i++) {
        int fl = fcntl(p[i], F_GETFL);
        if (fl < 0 || fcntl(p[i], F_SETFL, fl | O_NONBLOCK) != 0 ||
            fcntl(p[i], F_SETFD, FD_CLOEXEC) != 0) {
            close(p[0]);
            close(p[1]);
            return GN_EIO;
        }
    }
    w->rfd = p[0];
    w->wfd = p[1];
#endif
    return 0;
}

void gni_wakeup_close(gni_wakeup *w)
{
    if (w->rfd >= 0) {
        close(w->rfd);
    }
    if (w->wfd >= 0 && w->wfd != w->rfd) {
        close(w->wfd);
    }
    w->rfd = w->wfd = -1;
}

void gni_wakeup_signal(gni_wakeup *w)
{
    if (w->wfd < 0) {
        return;
    }
#if defined(GNI_WAKEUP_EVENTFD)
    uint64_t one = 1;
#else
    uint8_t one = 1;
#endif
    ssize_t n;
    do {
        n = write(w->wfd, &one, sizeof(one));
    } while (n < 0 && errno == EINTR);
    /* EAGAIN: the descriptor is already readable, which is what we want. */
}

void gni_wakeup_drain(gni_wakeup *w)
{
    if (w->rfd < 0) {
        return;
    }
    uint8_t buf[64]; /* an eventfd read needs >= 8 bytes and empties it */
    ssize_t n;
    for (;;) {
        n = read(w->rfd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < (ssize_t)sizeof(buf)) {
            break;
        }
    }
}

int gni_sock_wait_readable(long long sock, int timeout_ms)
{
    struct pollfd pfd = {.fd = (int)sock, .events = POLLIN};
    int pr = poll(&pfd, 1, timeout_ms);
    if (pr < 0) {
        return errno == EINTR ? 0 : GN_EIO;
    }
    return pr > 0 ? 1 : 0;
}

int gni_inet_pton(bool v6, const char *text, uint8_t *out)
{
    return inet_pton(v6 ? AF_INET6 : AF_INET, text, out) == 1 ? 0 : GN_EPARSE;
}
