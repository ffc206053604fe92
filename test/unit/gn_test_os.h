/*
 * The tests' platform file: the few raw OS calls tests make beside the
 * library (raw sockets for SYN-drop listeners, a readability probe, SIGPIPE,
 * counting open descriptors), in one POSIX and one Windows form, so test
 * files carry no #ifdef of their own (malloc block sizes: gn_test_msize.h).
 * Test-only (never installed).
 */
#ifndef GN_TEST_OS_H
#define GN_TEST_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef _WIN32
#  include <winsock2.h>
#  include <ws2tcpip.h>
#  include <windows.h>

typedef SOCKET gts_sock;
#  define GTS_BAD_SOCK INVALID_SOCKET
/* libuv leaves SO_REUSEADDR off on Windows (there it would let another
 * socket take the port), and Windows has no SO_REUSEPORT, so the TCP
 * transport cannot dial from its listen port. */
#  define GTS_UV_SETS_REUSEADDR 0
#  define GTS_HAVE_REUSEPORT 0

/* Winsock started (libuv starts it too; WSAStartup counts). */
static inline void gts_init(void)
{
    WSADATA w;
    (void)WSAStartup(MAKEWORD(2, 2), &w);
}
static inline void gts_close(gts_sock s) { closesocket(s); }
static inline int gts_set_nonblock(gts_sock s)
{
    u_long on = 1;
    return ioctlsocket(s, FIONBIO, &on) == 0 ? 0 : -1;
}
/* After a non-blocking connect() failed: is it merely in progress? */
static inline bool gts_connect_pending(void)
{
    int e = WSAGetLastError();
    return e == WSAEWOULDBLOCK || e == WSAEINPROGRESS;
}
/* 1 ready, 0 timed out, -1 error; @out: wait for writability, else readability */
static inline int gts_wait(gts_sock s, bool out, int timeout_ms)
{
    WSAPOLLFD p = {.fd = s, .events = out ? POLLWRNORM : POLLRDNORM};
    int r = WSAPoll(&p, 1, timeout_ms);
    return r == SOCKET_ERROR ? -1 : r > 0 ? 1 : 0;
}
static inline void gts_sleep_ms(unsigned ms) { Sleep(ms); }
/* Is a wakeup descriptor (gn_evq_fd(): a loopback socket here, whose byte
 * may land a moment after the push) readable? Waits up to 50 ms. */
static inline bool gts_fd_readable(int fd) { return gts_wait((SOCKET)fd, false, 50) == 1; }
/* Windows has no SIGPIPE: a write to a reset socket just fails. */
static inline void gts_block_sigpipe(void) {}
/* Open descriptors of this process: Windows has no /proc/self/fd, and its
 * handle count includes the runtime's own handles, so none
 * (GTS_HAVE_FD_COUNT 0): tests skip their descriptor-leak checks here. */
#  define GTS_HAVE_FD_COUNT 0
static inline int gts_count_fds(void) { return -1; }

#else /* POSIX */
#  include <arpa/inet.h>
#  include <dirent.h>
#  include <errno.h>
#  include <fcntl.h>
#  include <netinet/in.h>
#  include <poll.h>
#  include <pthread.h>
#  include <signal.h>
#  include <sys/socket.h>
#  include <unistd.h>

typedef int gts_sock;
#  define GTS_BAD_SOCK (-1)
/* libuv sets SO_REUSEADDR when binding; SO_REUSEPORT lets the TCP transport
 * dial from its listen port (layers/transport/tcp/tcp_uv.c). */
#  define GTS_UV_SETS_REUSEADDR 1
#  ifdef SO_REUSEPORT
#    define GTS_HAVE_REUSEPORT 1
#  else
#    define GTS_HAVE_REUSEPORT 0
#  endif

static inline void gts_init(void) {}
static inline void gts_close(gts_sock s) { close(s); }
static inline int gts_set_nonblock(gts_sock s)
{
    int fl = fcntl(s, F_GETFL);
    return fl < 0 ? -1 : fcntl(s, F_SETFL, fl | O_NONBLOCK);
}
static inline bool gts_connect_pending(void) { return errno == EINPROGRESS; }
static inline int gts_wait(gts_sock s, bool out, int timeout_ms)
{
    struct pollfd p = {.fd = s, .events = out ? POLLOUT : POLLIN};
    int r = poll(&p, 1, timeout_ms);
    return r < 0 ? -1 : r > 0 ? 1 : 0;
}
static inline void gts_sleep_ms(unsigned ms) { usleep(ms * 1000u); }
/* Is a wakeup descriptor (gn_evq_fd(): eventfd or pipe) readable now? */
static inline bool gts_fd_readable(int fd) { return gts_wait(fd, false, 0) == 1; }
/* A write to a reset socket fails with EPIPE instead of killing the test. */
static inline void gts_block_sigpipe(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}
/* Open file descriptors of this process (Linux /proc/self/fd, elsewhere
 * /dev/fd), or -1 when the directory is missing. GTS_HAVE_FD_COUNT is 1 on
 * every POSIX system, so a test that checks for descriptor leaks fails (its
 * count is -1) instead of skipping when /proc is not mounted. */
#  define GTS_HAVE_FD_COUNT 1
static inline int gts_count_fds(void)
{
#  ifdef __linux__
    DIR *d = opendir("/proc/self/fd");
#  else
    DIR *d = opendir("/dev/fd");
#  endif
    if (!d) {
        return -1;
    }
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        n += e->d_name[0] != '.';
    }
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}
#endif

/* ---- files, through libuv's synchronous calls (the same on every OS) ---- */
#include <stdio.h>
#include <string.h>
#include <uv.h>

/* Makes a fresh directory under the OS's temporary directory, named
 * <prefix>.XXXXXX; its path goes to @out. 0 or a libuv error. */
static inline int gts_mkdtemp(char *out, size_t cap, const char *prefix)
{
    char tmp[200];
    size_t tl = sizeof tmp;
    int rc = uv_os_tmpdir(tmp, &tl);
    if (rc < 0) {
        return rc;
    }
    char tmpl[260];
    snprintf(tmpl, sizeof tmpl, "%s/%s.XXXXXX", tmp, prefix);
    uv_fs_t req;
    rc = uv_fs_mkdtemp(NULL, &req, tmpl, NULL);
    if (rc == 0) {
        snprintf(out, cap, "%s", req.path);
    }
    uv_fs_req_cleanup(&req);
    return rc;
}
static inline int gts_unlink(const char *path)
{
    uv_fs_t req;
    int rc = uv_fs_unlink(NULL, &req, path, NULL);
    uv_fs_req_cleanup(&req);
    return rc;
}
static inline int gts_rmdir(const char *path)
{
    uv_fs_t req;
    int rc = uv_fs_rmdir(NULL, &req, path, NULL);
    uv_fs_req_cleanup(&req);
    return rc;
}
static inline int gts_chmod(const char *path, int mode)
{
    uv_fs_t req;
    int rc = uv_fs_chmod(NULL, &req, path, mode, NULL);
    uv_fs_req_cleanup(&req);
    return rc;
}
/* A file's permission bits and size. 0 or a libuv error. */
static inline int gts_stat(const char *path, unsigned *mode, uint64_t *size)
{
    uv_fs_t req;
    int rc = uv_fs_stat(NULL, &req, path, NULL);
    if (rc == 0) {
        *mode = (unsigned)(req.statbuf.st_mode & 0777);
        *size = req.statbuf.st_size;
    }
    uv_fs_req_cleanup(&req);
    return rc;
}
/* Does the OS keep POSIX mode bits on files (0600 stays 0600)? */
static inline bool gts_has_modes(void)
{
#ifdef _WIN32
    return false;
#else
    return true;
#endif
}
/* Do file permission bits decide access here? POSIX: yes, unless root
 * (which bypasses them). Windows: no (ACLs decide; chmod sets read-only). */
static inline bool gts_perms_enforced(void)
{
#ifdef _WIN32
    return false;
#else
    return geteuid() != 0;
#endif
}

#endif /* GN_TEST_OS_H */
