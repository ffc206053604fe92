/*
 * A loopback TCP listener that drops SYNs, for dial timeout and cancel
 * tests: a socket listening with backlog 0 that never accepts, whose accept
 * queue is then filled with connections, so Linux drops further SYNs and a
 * connect() to it stays in SYN_SENT. Loopback only. Test-only (never
 * installed).
 */
#ifndef GN_TEST_SYN_DROP_H
#define GN_TEST_SYN_DROP_H

#include "gn_test_os.h"

#include <stdbool.h>
#include <stdio.h>

#define SYN_DROP_MAX_FILL 16

typedef struct syn_drop {
    gts_sock lfd;
    gts_sock fill[SYN_DROP_MAX_FILL];
    int nfill;
    unsigned port;
} syn_drop;

/* Opens the listener and fills its queue until a connect hangs for 100 ms.
 * Returns false when the kernel keeps completing handshakes (then skip). */
static inline bool syn_drop_open(syn_drop *sd)
{
    sd->nfill = 0;
    gts_init();
    sd->lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (sd->lfd == GTS_BAD_SOCK) {
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
        gts_sock fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd == GTS_BAD_SOCK) {
            return false;
        }
        sd->fill[sd->nfill++] = fd;
        gts_set_nonblock(fd);
        if (connect(fd, (struct sockaddr *)&sin, sizeof sin) == 0) {
            continue;
        }
        if (!gts_connect_pending()) {
            return false;
        }
        if (gts_wait(fd, true, 100) == 0) {
            return true; /* this SYN was dropped: the queue is full */
        }
    }
    return false;
}

static inline void syn_drop_close(syn_drop *sd)
{
    for (int i = 0; i < sd->nfill; i++) {
        gts_close(sd->fill[i]);
    }
    sd->nfill = 0;
    if (sd->lfd != GTS_BAD_SOCK) {
        gts_close(sd->lfd);
    }
    sd->lfd = GTS_BAD_SOCK;
}

/* Open file descriptors of this process, or -1 where unknown (GTS_HAVE_FD_COUNT). */
static inline int syn_drop_count_fds(void)
{
    return gts_count_fds();
}

#endif /* GN_TEST_SYN_DROP_H */
