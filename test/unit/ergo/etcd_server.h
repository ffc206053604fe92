/*
 * etcd_server.h: a real etcd for the Ergo tests (etcd_uv_test, ergo_comp_wire_test),
 * started on 127.0.0.1 with free client and peer ports and a data dir in a fresh
 * temp dir; etcd_stop() kills it and removes the dir (register it with atexit).
 * The child gets SIGKILL if the test dies (Linux). Use find_etcd() to skip when
 * no `etcd` binary is installed (apt-get install etcd-server).
 *
 * Include after gn_test.h, in a file that defines _XOPEN_SOURCE 700 before any
 * include (nftw). Needs the etcd core (etcd.h: built with ergo_etcd): the readiness
 * probe is a lease grant through it. After etcd_start(), `endpoint` is
 * "127.0.0.1:<client port>" and `client_port` the port.
 */
#ifndef GN_TEST_ETCD_SERVER_H
#define GN_TEST_ETCD_SERVER_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "etcd.h"

static char tmpdir[256];
static pid_t etcd_pid;
static uint16_t client_port;
static char endpoint[64];

static const char *find_etcd(void)
{
    static char path[512];
    const char *env = getenv("PATH");
    char dirs[2048];
    snprintf(dirs, sizeof dirs, "%s:/usr/bin:/usr/local/bin", env ? env : "");
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(path, sizeof path, "%s/etcd", d);
        if (access(path, X_OK) == 0)
            return path;
    }
    return NULL;
}

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    CHECK(fd >= 0);
    CHECK_OK(bind(fd, (struct sockaddr *)&sa, sizeof sa));
    CHECK_OK(getsockname(fd, (struct sockaddr *)&sa, &sl));
    close(fd);
    return ntohs(sa.sin_port);
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st, (void)flag, (void)f;
    return remove(p);
}

static void etcd_stop(void)
{
    if (etcd_pid > 0) {
        kill(etcd_pid, SIGTERM);
        int status;
        for (int i = 0; i < 100 && waitpid(etcd_pid, &status, WNOHANG) == 0; i++)
            usleep(50000);
        if (waitpid(etcd_pid, &status, WNOHANG) == 0) {
            kill(etcd_pid, SIGKILL);
            waitpid(etcd_pid, &status, 0);
        }
        etcd_pid = 0;
    }
    if (tmpdir[0]) {
        nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        tmpdir[0] = 0;
    }
}

static int tcp_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
        return fd;
    if (fd >= 0)
        close(fd);
    return -1;
}

/* One blocking call through the core (as a Go node's client would make it). */
typedef struct raw_res {
    int n;
    int64_t lease;
    bool succeeded;
    int err;
} raw_res;

static int raw_cb(const gni_etcd_result *r, void *ud)
{
    raw_res *x = ud;
    x->n++;
    x->err = r->err;
    x->lease = r->lease_id;
    x->succeeded = r->succeeded;
    return 0;
}

static raw_res raw_call(const gni_etcd_req *rq)
{
    raw_res x;
    memset(&x, 0, sizeof x);
    static uint8_t m[16384];
    gn_buf b;
    gn_buf_init(&b, m, sizeof m);
    int len = gni_etcd_build(rq, endpoint, &b);
    CHECK(len > 0);
    int fd = tcp_connect(client_port);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, m, (size_t)len), len);
    gni_etcd_resp *r;
    CHECK_OK(gni_etcd_resp_new(NULL, &r));
    CHECK_OK(gni_etcd_resp_begin(r, rq->op));
    int rc = 0;
    for (int i = 0; i < 1000 && rc == 0; i++) {
        ssize_t n = read(fd, m, sizeof m);
        if (n <= 0) {
            rc = gni_etcd_resp_eof(r, raw_cb, &x);
            break;
        }
        rc = gni_etcd_resp_feed(r, m, (size_t)n, raw_cb, &x, NULL);
    }
    CHECK_EQ(rc, 1);
    gni_etcd_resp_free(r);
    close(fd);
    return x;
}

static bool etcd_start(void)
{
    const char *bin = find_etcd();
    if (!bin)
        return false;
    snprintf(tmpdir, sizeof tmpdir, "%s/gn-etcd-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    CHECK(mkdtemp(tmpdir) != NULL);
    client_port = free_port();
    uint16_t peer_port = free_port();
    CHECK(peer_port != client_port);
    char data[512], logf[512], curl[64], purl[64], cluster[96];
    snprintf(data, sizeof data, "%s/data", tmpdir);
    snprintf(logf, sizeof logf, "%s/etcd.log", tmpdir);
    snprintf(curl, sizeof curl, "http://127.0.0.1:%u", client_port);
    snprintf(purl, sizeof purl, "http://127.0.0.1:%u", peer_port);
    snprintf(cluster, sizeof cluster, "gn=%s", purl);
    snprintf(endpoint, sizeof endpoint, "127.0.0.1:%u", client_port);
    etcd_pid = fork();
    CHECK(etcd_pid >= 0);
    if (etcd_pid == 0) {
#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a test killed by its timeout */
#endif
        int fd = open(logf, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(bin, bin, "--name", "gn", "--data-dir", data, "--listen-client-urls", curl,
              "--advertise-client-urls", curl, "--listen-peer-urls", purl,
              "--initial-advertise-peer-urls", purl, "--initial-cluster", cluster,
              "--log-level", "error", (char *)NULL);
        _exit(127);
    }
    /* ready when a grant works (bounded: 20 s) */
    for (int i = 0; i < 200; i++) {
        int fd = tcp_connect(client_port);
        if (fd >= 0) {
            close(fd);
            gni_etcd_req g = {.op = GNI_ETCD_GRANT, .ttl_s = 5};
            raw_res x = raw_call(&g);
            if (x.n == 1 && x.err == 0 && x.lease > 0)
                return true;
        }
        int status;
        if (waitpid(etcd_pid, &status, WNOHANG) == etcd_pid) {
            etcd_pid = 0;
            printf("# etcd exited at start; see its log\n");
            CHECK(0);
        }
        usleep(100000);
    }
    CHECK(0);
    return false;
}

#endif /* GN_TEST_ETCD_SERVER_H */
