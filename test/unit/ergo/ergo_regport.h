/*
 * ergo_regport.h - a registrar port for the Ergo node tests: free_reg_port()
 * finds a port free for both UDP and TCP right now (the embedded registrar
 * binds both), so test programs that run at the same time do not share a
 * registrar. Include once per test program, after gn_test.h.
 */
#ifndef GN_ERGO_REGPORT_H
#define GN_ERGO_REGPORT_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

static uint16_t free_reg_port(void)
{
    for (int i = 0; i < 20; i++) {
        int ufd = socket(AF_INET, SOCK_DGRAM, 0), tfd = socket(AF_INET, SOCK_STREAM, 0);
        CHECK(ufd >= 0 && tfd >= 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
        sa.sin_addr.s_addr = htonl(INADDR_ANY);
        socklen_t sl = sizeof sa;
        CHECK_OK(bind(ufd, (struct sockaddr *)&sa, sizeof sa));
        CHECK_OK(getsockname(ufd, (struct sockaddr *)&sa, &sl));
        bool ok = bind(tfd, (struct sockaddr *)&sa, sizeof sa) == 0;
        close(ufd);
        close(tfd);
        if (ok)
            return ntohs(sa.sin_port);
    }
    CHECK(!"no free registrar port");
    return 0;
}

#endif
