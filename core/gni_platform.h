/*
 * The platform file: the few OS facilities libuv does not offer, one
 * implementation per OS family (core/platform_posix.c, core/platform_win.c;
 * core/meson.build builds the one for the host). Everything else that touches
 * the OS goes through libuv. Components never test _WIN32 for these.
 *
 * Thread context: every function may be called from any thread; one wakeup is
 * guarded by its owner's lock (gn_evq's mutex, the Python bridge's).
 */
#ifndef GNI_PLATFORM_H
#define GNI_PLATFORM_H

#include <stdbool.h>
#include <stdint.h>

/*
 * A wakeup handle: a descriptor that a foreign event loop (select/poll,
 * Python's selectors, asyncio's add_reader) can watch for readability, made
 * readable by gni_wakeup_signal() and unreadable by gni_wakeup_drain().
 *   Linux:   an eventfd (rfd == wfd).
 *   POSIX:   a non-blocking pipe.
 *   Windows: a connected pair of non-blocking loopback TCP sockets (Winsock
 *            select() watches sockets only); rfd is the SOCKET's value as an
 *            int (Windows handles fit 32 bits: "Interprocess Communication
 *            Between 32-bit and 64-bit Applications", Microsoft Learn).
 * Both fields are -1 when closed.
 */
typedef struct gni_wakeup {
    int rfd; /* watched for readability */
    int wfd; /* written by gni_wakeup_signal() */
} gni_wakeup;

/* Opens @w. Returns 0, or GN_EIO when the OS refuses the descriptor(s)
 * (fd or socket limits; on Windows also Winsock startup). @w is left closed
 * (-1, -1) on failure. */
int gni_wakeup_open(gni_wakeup *w);

/* Closes @w (harmless when already closed). */
void gni_wakeup_close(gni_wakeup *w);

/* Makes rfd readable. A full pipe or socket buffer already is readable, so
 * "would block" is success. */
void gni_wakeup_signal(gni_wakeup *w);

/* Reads everything queued on rfd so that it is no longer readable. */
void gni_wakeup_drain(gni_wakeup *w);

/*
 * GNI_WAKEUP_EXACT: 1 when rfd is readable exactly between a signal and the
 * next drain (eventfd, pipe: the write is complete when signal returns), 0
 * when a signal's byte may arrive after a drain already ran (Windows'
 * loopback socket pair: the byte travels through the TCP stack), so that a
 * consumer that finds nothing to do must drain again. gn_evq skips that extra
 * drain (a read() per empty non-blocking pop) where the wakeup is exact.
 */
#ifdef _WIN32
#define GNI_WAKEUP_EXACT 0
#else
#define GNI_WAKEUP_EXACT 1
#endif

/*
 * Waits at most @timeout_ms for @sock (a POSIX fd, or a Windows SOCKET's
 * value) to become readable, for blocking client code on a worker thread
 * (the NAT-PMP query, libnatpmp's socket). Returns 1 (readable or in error),
 * 0 (the time passed; also on EINTR: the caller re-checks its deadline) or
 * GN_EIO (the poll itself failed).
 */
int gni_sock_wait_readable(long long sock, int timeout_ms);

/*
 * Converts the text form of an IPv4 (@v6 false: dotted decimal, four parts,
 * no leading zeros) or IPv6 address (@v6 true: RFC 4291 2.2) into its 4 or 16
 * bytes at @out, for the sans-I/O multiaddr core, which includes no OS or
 * libuv header. The ISC inet_pton rules on every OS: POSIX inet_pton(),
 * libuv's uv_inet_pton() on Windows. An IPv6 "%zone" suffix is not
 * rejected here (the caller does). Returns 0, or GN_EPARSE.
 */
int gni_inet_pton(bool v6, const char *text, uint8_t *out);

#endif /* GNI_PLATFORM_H */
