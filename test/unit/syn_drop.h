/*
 * A loopback TCP listener that drops SYNs, for dial timeout and cancel
 * tests: a socket listening with backlog 0 that never accepts, whose accept
 * queue is then filled with connections, so Linux drops further SYNs and a
 * connect() to it stays in SYN_SENT. Loopback only. Test-only (never
 * installed).
 */
#ifndef GN_TEST_SYN_DROP_H
#define GN_TEST_SYN_DROP_H

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#define SYN_DROP_MAX_FILL 16

typedef struct syn_drop {
    int lfd;
    int fill[SYN_DROP_MAX_FILL];
    int nfill;
    unsigned port;
} syn_drop;

/* Opens the listener and fills its queue until a connect hangs for 100 ms.
 * Returns false when the kernel keeps completing handshakes (then skip). */
static inline bool syn_drop_open(syn_drop *sd)
{
    sd->nfill = 0;
    sd->lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (sd->lfd < 0) {
        return false;
    }
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sin;
    if (bind(sd->lfd, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(sd->lfd, 0) != 0 ||
        getsockname(sd->lfd, (struct sockaddr *)&sin, &sl) != 0) {
        return false;
    }
    sd->port = ntohs(sin.sin_port);
    while (sd->nfill < SYN_DROP_MAX_FILL) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) {
            return false;
        }
        sd->fill[sd->nfill++] = fd;
        fcntl(fd, F_SETFL, O_NONBLOCK);
        if (connect(fd, (struct sockaddr *)&sin, sizeof sin) == 0) {
            continue;
        }
        if (errno != EINPROGRESS) {
            return false;
        }
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (poll(&p, 1, 100) == 0) {
            return true; /* this SYN was dropped: the queue is full */
        }
    }
    return false;
}

static inline void syn_drop_close(syn_drop *sd)
{
    for (int i = 0; i < sd->nfill; i++) {
        close(sd->fill[i]);
    }
    sd->nfill = 0;
    if (sd->lfd >= 0) {
        close(sd->lfd);
    }
    sd->lfd = -1;
}

/* Open file descriptors of this process (Linux /proc), or -1. */
static inline int syn_drop_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
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

#endif /* GN_TEST_SYN_DROP_H */
