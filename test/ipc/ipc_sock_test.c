/*
 * The IPC socket layer (ipc/gni_ipc.h) on a real libuv loop: address
 * parsing and its refusals, the socket file's mode, stale sockets replaced
 * and live ones refused, the uid allow-list, framed and raw traffic,
 * backpressure, loopback TCP.
 */
#include "gni_ipc.h"

#include "gn_test.h"
#include "gni.h"
#include "golemnet/err.h"

#include <uv.h>

#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/file.h>

static char tmpdir[64];

static void mk_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/gn-ipc-XXXXXX");
    CHECK(mkdtemp(tmpdir) != NULL);
}

static void rm_tmpdir(void)
{
    char p[128];
    snprintf(p, sizeof p, "%s/s.sock", tmpdir);
    unlink(p);
    snprintf(p, sizeof p, "%s/s.sock.lock", tmpdir);
    unlink(p);
    snprintf(p, sizeof p, "%s/f", tmpdir);
    unlink(p);
    rmdir(tmpdir);
}

/* Runs @uvl until @done or 2000 iterations of at most 10 ms. */
static void run_until(uv_loop_t *uvl, const bool *done)
{
    for (int i = 0; i < 2000 && !*done; i++) {
        uv_run(uvl, UV_RUN_NOWAIT);
        if (!*done) {
            usleep(1000);
        }
    }
}

static void drain_loop(uv_loop_t *uvl)
{
    for (int i = 0; i < 100 && uv_run(uvl, UV_RUN_NOWAIT) != 0; i++) {
        usleep(1000);
    }
    CHECK_EQ(uv_loop_alive(uvl), 0);
}

GN_TEST(addr_parse)
{
    gni_ipc_addr a;
    char err[256];
    CHECK_OK(gni_ipc_addr_parse("/tmp/x.sock", &a, err, sizeof err));
    CHECK_EQ(a.kind, GNI_IPC_UNIX);
    CHECK_STR(a.path, "/tmp/x.sock");
    CHECK_OK(gni_ipc_addr_parse("/unix/tmp/y.sock", &a, err, sizeof err));
    CHECK_STR(a.path, "/tmp/y.sock");
    CHECK_OK(gni_ipc_addr_parse("/unix//tmp/y.sock", &a, err, sizeof err));
    CHECK_STR(a.path, "/tmp/y.sock");
    CHECK_OK(gni_ipc_addr_parse("rel.sock", &a, err, sizeof err));
    CHECK_STR(a.path, "rel.sock");
    CHECK_OK(gni_ipc_addr_parse("/ip4/127.0.0.1/tcp/5001", &a, err, sizeof err));
    CHECK_EQ(a.kind, GNI_IPC_TCP);
    CHECK_EQ(a.port, 5001);
    CHECK(!a.v6);
    CHECK_OK(gni_ipc_addr_parse("/ip6/::1/tcp/0", &a, err, sizeof err));
    CHECK(a.v6);
    char txt[64];
    CHECK(gni_ipc_addr_format(&a, txt, sizeof txt) > 0);
    CHECK_STR(txt, "/ip6/::1/tcp/0");

    err[0] = '\0';
    CHECK_EQ(gni_ipc_addr_parse("/ip4/0.0.0.0/tcp/5001", &a, err, sizeof err), GN_EACCES);
    CHECK(strstr(err, "loopback") != NULL);
    CHECK_EQ(gni_ipc_addr_parse("/ip4/192.168.1.2/tcp/1", &a, err, sizeof err), GN_EACCES);
    CHECK_EQ(gni_ipc_addr_parse("/ip6/::/tcp/1", &a, err, sizeof err), GN_EACCES);
    CHECK_EQ(gni_ipc_addr_parse("/ip4/127.0.0.1/udp/1", &a, err, sizeof err), GN_EACCES);
    CHECK_EQ(gni_ipc_addr_parse("/dns4/localhost/tcp/1", &a, err, sizeof err), GN_EACCES);
    CHECK(strstr(err, "Unix socket") != NULL);
    CHECK_EQ(gni_ipc_addr_parse("/ip4/127.0.0.1/tcp/99999", &a, err, sizeof err), GN_EINVAL);
    CHECK_EQ(gni_ipc_addr_parse("/ip4/127.0.0.1/tcp/", &a, err, sizeof err), GN_EINVAL);
    CHECK_EQ(gni_ipc_addr_parse("/ip4/nope/tcp/1", &a, err, sizeof err), GN_EINVAL);
    CHECK_EQ(gni_ipc_addr_parse("", &a, err, sizeof err), GN_EINVAL);
    CHECK_EQ(gni_ipc_addr_parse("/unix/", &a, err, sizeof err), GN_EINVAL);
    char longp[300];
    memset(longp, 'a', sizeof longp - 1);
    longp[0] = '/';
    longp[sizeof longp - 1] = '\0';
    CHECK_EQ(gni_ipc_addr_parse(longp, &a, err, sizeof err), GN_EINVAL);
}

GN_TEST(default_path)
{
    char p[256];
    char *old = getenv("XDG_RUNTIME_DIR") ? strdup(getenv("XDG_RUNTIME_DIR")) : NULL;
    setenv("XDG_RUNTIME_DIR", "/run/user/42", 1);
    CHECK_OK(gni_ipc_default_path("main", NULL, p, sizeof p));
    CHECK_STR(p, "/run/user/42/golemnet/main.sock");
    CHECK_OK(gni_ipc_default_path("main", "p2pd-", p, sizeof p));
    CHECK_STR(p, "/run/user/42/golemnet/p2pd-main.sock");
    unsetenv("XDG_RUNTIME_DIR");
    CHECK_OK(gni_ipc_default_path("n1", NULL, p, sizeof p));
    char want[64];
    snprintf(want, sizeof want, "/tmp/golemnet-%u/n1.sock", (unsigned)geteuid());
    CHECK_STR(p, want);
    setenv("XDG_RUNTIME_DIR", "relative/dir", 1); /* not absolute: ignored */
    CHECK_OK(gni_ipc_default_path("n1", NULL, p, sizeof p));
    CHECK_STR(p, want);
    CHECK_EQ(gni_ipc_default_path("../x", NULL, p, sizeof p), GN_EINVAL);
    CHECK_EQ(gni_ipc_default_path("", NULL, p, sizeof p), GN_EINVAL);
    CHECK_EQ(gni_ipc_default_path("a/b", NULL, p, sizeof p), GN_EINVAL);
    CHECK_EQ(gni_ipc_default_path("n1", NULL, p, 8), GN_ENOSPC);
    if (old) {
        setenv("XDG_RUNTIME_DIR", old, 1);
        free(old);
    } else {
        unsetenv("XDG_RUNTIME_DIR");
    }
}

GN_TEST(uid_allow_list)
{
    const uint32_t allow[] = {1001, 1002};
    CHECK(gni_ipc_uid_allowed(1000, NULL, 0, 1000));
    CHECK(!gni_ipc_uid_allowed(1000, NULL, 0, 1001));
    CHECK(gni_ipc_uid_allowed(1000, allow, 2, 1002));
    CHECK(!gni_ipc_uid_allowed(1000, allow, 2, 1003)); /* a uid not listed is refused */
    CHECK(!gni_ipc_uid_allowed(1000, allow, 2, 0));    /* root is not implied */
}

GN_TEST(prepare_dir)
{
    mk_tmpdir();
    char p[128], err[256];
    snprintf(p, sizeof p, "%s/sub/x.sock", tmpdir);
    CHECK_OK(gni_ipc_prepare_dir(p, err, sizeof err));
    char d[128];
    snprintf(d, sizeof d, "%s/sub", tmpdir);
    struct stat st;
    CHECK_OK(stat(d, &st));
    CHECK_EQ(st.st_mode & 0777, 0700u);
    CHECK_OK(gni_ipc_prepare_dir(p, err, sizeof err)); /* exists: fine */
    chmod(d, 0777);
    CHECK_EQ(gni_ipc_prepare_dir(p, err, sizeof err), GN_EACCES);
    CHECK(strstr(err, "writable") != NULL);
    rmdir(d);
    rm_tmpdir();
}

/* ---- a server that echoes framed messages; "raw" switches to raw echo ---- */

typedef struct srv {
    gni_ipc_conn *conn;
    int accepted, msgs, closed, ends;
    int end_err;
} srv;

static void srv_on_msg(gni_ipc_conn *c, const uint8_t *msg, size_t len, void *ud)
{
    srv *s = ud;
    s->msgs++;
    CHECK_OK(gni_ipc_conn_write(c, msg, len, true));
    if (len == 3 && memcmp(msg, "raw", 3) == 0) {
        gni_ipc_conn_set_raw(c);
    }
}

static void srv_on_data(gni_ipc_conn *c, const uint8_t *d, size_t len, void *ud)
{
    (void)ud;
    CHECK_OK(gni_ipc_conn_write(c, d, len, false));
}

static void srv_on_end(gni_ipc_conn *c, int err, void *ud)
{
    srv *s = ud;
    s->ends++;
    s->end_err = err;
    gni_ipc_conn_close(c, true);
}

static void srv_on_close(gni_ipc_conn *c, void *ud)
{
    srv *s = ud;
    (void)c;
    s->closed++;
    s->conn = NULL;
}

static void srv_accept(gni_ipc_listener *l, gni_ipc_conn *c, void *ud)
{
    srv *s = ud;
    (void)l;
    static const gni_ipc_conn_cbs cbs = {.on_msg = srv_on_msg, .on_data = srv_on_data,
                                         .on_end = srv_on_end, .on_close = srv_on_close};
    s->accepted++;
    s->conn = c;
    gni_ipc_conn_set_cbs(c, &cbs, s);
    CHECK_OK(gni_ipc_conn_read_start(c));
}

typedef struct cli {
    gni_ipc_conn *conn;
    int err;
    bool connected, done, closed;
    uint8_t got[256];
    size_t got_len;
    int msgs;
} cli;

static void cli_on_msg(gni_ipc_conn *c, const uint8_t *msg, size_t len, void *ud)
{
    cli *k = ud;
    (void)c;
    k->msgs++;
    if (len && k->got_len + len <= sizeof k->got) {
        memcpy(k->got + k->got_len, msg, len);
        k->got_len += len;
    }
    if (len == 3 && memcmp(msg, "raw", 3) == 0) {
        gni_ipc_conn_set_raw(c);
    }
}

static void cli_on_data(gni_ipc_conn *c, const uint8_t *d, size_t len, void *ud)
{
    cli *k = ud;
    (void)c;
    if (k->got_len + len <= sizeof k->got) {
        memcpy(k->got + k->got_len, d, len);
        k->got_len += len;
    }
}

static void cli_on_close(gni_ipc_conn *c, void *ud)
{
    cli *k = ud;
    (void)c;
    k->closed = true;
}

static void cli_on_end(gni_ipc_conn *c, int err, void *ud)
{
    cli *k = ud;
    (void)c;
    k->err = err;
    k->done = true;
}

static void cli_connected(gni_ipc_conn *c, int err, void *ud)
{
    cli *k = ud;
    static const gni_ipc_conn_cbs cbs = {.on_msg = cli_on_msg, .on_data = cli_on_data,
                                         .on_end = cli_on_end, .on_close = cli_on_close};
    k->err = err;
    k->connected = true;
    k->conn = c;
    if (c) {
        gni_ipc_conn_set_cbs(c, &cbs, k);
        CHECK_OK(gni_ipc_conn_read_start(c));
    }
}

static void listener_closed(void *ud) { *(bool *)ud = true; }

/* A framed round trip, then raw bytes both ways after the switch. */
static void roundtrip(uv_loop_t *uvl, const char *addr)
{
    cli k = {0};
    char err[256];
    CHECK_OK(gni_ipc_connect(uvl, addr, cli_connected, &k, err, sizeof err));
    run_until(uvl, &k.connected);
    CHECK_EQ(k.err, 0);
    CHECK(k.conn != NULL);
    CHECK_OK(gni_ipc_conn_write(k.conn, (const uint8_t *)"hello", 5, true));
    CHECK_OK(gni_ipc_conn_write(k.conn, (const uint8_t *)"", 0, true));
    CHECK_OK(gni_ipc_conn_write(k.conn, (const uint8_t *)"raw", 3, true));
    CHECK_OK(gni_ipc_conn_write(k.conn, (const uint8_t *)"bytes!", 6, false));
    bool got = false;
    for (int i = 0; i < 2000 && !got; i++) {
        uv_run(uvl, UV_RUN_NOWAIT);
        got = k.got_len >= 14;
        if (!got) {
            usleep(1000);
        }
    }
    CHECK_EQ(k.msgs, 3);
    CHECK_EQ(k.got_len, 14u);
    CHECK_MEM(k.got, "helloraw" "bytes!", 14);
    if (!gni_ipc_conn_is_tcp(k.conn)) {
        uint32_t uid = 99;
        CHECK_OK(gni_ipc_conn_peer_uid(k.conn, &uid));
        CHECK_EQ(uid, (uint32_t)geteuid());
    } else {
        uint32_t uid;
        CHECK_EQ(gni_ipc_conn_peer_uid(k.conn, &uid), GN_ENOTSUP);
    }
    gni_ipc_conn_close(k.conn, false);
    run_until(uvl, &k.closed);
    CHECK(k.closed);
}

GN_TEST(unix_listener)
{
    mk_tmpdir();
    uv_loop_t uvl;
    CHECK_OK(uv_loop_init(&uvl));
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/s.sock", tmpdir);
    srv s = {0};
    gni_ipc_listener *l = NULL;
    CHECK_OK(gni_ipc_listen(&uvl, path, NULL, srv_accept, &s, &l, err, sizeof err));
    CHECK_STR(gni_ipc_listener_addr(l), path);
    struct stat st;
    CHECK_OK(stat(path, &st));
    CHECK(S_ISSOCK(st.st_mode));
    CHECK_EQ(st.st_mode & 0777, 0600u);

    /* a live listener is not replaced */
    gni_ipc_listener *l2 = NULL;
    err[0] = '\0';
    CHECK_EQ(gni_ipc_listen(&uvl, path, NULL, srv_accept, &s, &l2, err, sizeof err),
             GN_EADDRINUSE);
    CHECK(l2 == NULL);
    CHECK(strstr(err, "listening") != NULL);

    roundtrip(&uvl, path);
    char ma[160];
    snprintf(ma, sizeof ma, "/unix%s", path);
    roundtrip(&uvl, ma);
    CHECK_EQ(s.accepted, 3); /* the live check's probe, then the two clients */
    CHECK_EQ(s.msgs, 6);
    for (int i = 0; i < 200 && s.closed < 3; i++) {
        uv_run(&uvl, UV_RUN_NOWAIT);
        usleep(1000);
    }
    CHECK_EQ(s.closed, 3);
    CHECK_EQ(s.end_err, GN_EEOF);

    bool lclosed = false;
    gni_ipc_listener_close(l, listener_closed, &lclosed);
    run_until(&uvl, &lclosed);
    CHECK(lclosed);
    CHECK(stat(path, &st) != 0); /* the socket file is removed */

    /* nobody listens: connect fails with GN_ENOTFOUND */
    cli k = {0};
    CHECK_OK(gni_ipc_connect(&uvl, path, cli_connected, &k, err, sizeof err));
    run_until(&uvl, &k.connected);
    CHECK_EQ(k.err, GN_ENOTFOUND);
    CHECK(k.conn == NULL);
    drain_loop(&uvl);
    CHECK_OK(uv_loop_close(&uvl));
    rm_tmpdir();
}

GN_TEST(stale_socket_replaced)
{
    mk_tmpdir();
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/s.sock", tmpdir);
    /* a socket file whose listener died: bound, then closed, file left */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    gni_str_copy(sa.sun_path, sizeof sa.sun_path, path);
    CHECK_OK(bind(fd, (struct sockaddr *)&sa, sizeof sa));
    close(fd);
    struct stat st;
    CHECK_OK(stat(path, &st));

    uv_loop_t uvl;
    CHECK_OK(uv_loop_init(&uvl));
    srv s = {0};
    gni_ipc_listener *l = NULL;
    CHECK_OK(gni_ipc_listen(&uvl, path, NULL, srv_accept, &s, &l, err, sizeof err));
    roundtrip(&uvl, path); /* the stale file was replaced by a live socket */

    /* a listener does not remove a file that is no longer its socket */
    unlink(path);
    int keep = open(path, O_CREAT | O_WRONLY, 0600);
    CHECK(keep >= 0);
    close(keep);
    bool lclosed = false;
    gni_ipc_listener_close(l, listener_closed, &lclosed);
    run_until(&uvl, &lclosed);
    CHECK_OK(stat(path, &st));
    CHECK(S_ISREG(st.st_mode));
    /* and a regular file in the way is never removed */
    l = NULL;
    CHECK_EQ(gni_ipc_listen(&uvl, path, NULL, srv_accept, &s, &l, err, sizeof err), GN_EEXIST);
    CHECK(strstr(err, "not a socket") != NULL);
    CHECK_OK(stat(path, &st));
    unlink(path);
    drain_loop(&uvl);
    CHECK_OK(uv_loop_close(&uvl));
    rm_tmpdir();
}

GN_TEST(mode_option)
{
    mk_tmpdir();
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/s.sock", tmpdir);
    uv_loop_t uvl;
    CHECK_OK(uv_loop_init(&uvl));
    srv s = {0};
    const uint32_t allow[] = {12345};
    gni_ipc_listen_opts o = {.mode = 0660, .allow_uids = allow, .allow_cnt = 1};
    gni_ipc_listener *l = NULL;
    CHECK_OK(gni_ipc_listen(&uvl, path, &o, srv_accept, &s, &l, err, sizeof err));
    struct stat st;
    CHECK_OK(stat(path, &st));
    CHECK_EQ(st.st_mode & 0777, 0660u);
    roundtrip(&uvl, path); /* our own uid is always allowed */
    CHECK_EQ(gni_ipc_listener_refused(l), 0u);
    bool lclosed = false;
    gni_ipc_listener_close(l, listener_closed, &lclosed);
    run_until(&uvl, &lclosed);
    o.allow_cnt = GNI_IPC_ALLOW_MAX + 1;
    CHECK_EQ(gni_ipc_listen(&uvl, path, &o, srv_accept, &s, &l, err, sizeof err), GN_EINVAL);
    drain_loop(&uvl);
    CHECK_OK(uv_loop_close(&uvl));
    rm_tmpdir();
}

GN_TEST(tcp_loopback)
{
    uv_loop_t uvl;
    CHECK_OK(uv_loop_init(&uvl));
    char err[256];
    srv s = {0};
    gni_ipc_listener *l = NULL;
    CHECK_EQ(gni_ipc_listen(&uvl, "/ip4/10.1.2.3/tcp/0", NULL, srv_accept, &s, &l, err,
                            sizeof err), GN_EACCES);
    CHECK(strstr(err, "loopback") != NULL);
    CHECK(l == NULL);
    CHECK_OK(gni_ipc_listen(&uvl, "/ip4/127.0.0.1/tcp/0", NULL, srv_accept, &s, &l, err,
                            sizeof err));
    const char *a = gni_ipc_listener_addr(l);
    CHECK(strncmp(a, "/ip4/127.0.0.1/tcp/", 19) == 0);
    CHECK(strcmp(a, "/ip4/127.0.0.1/tcp/0") != 0);
    char addr[64];
    snprintf(addr, sizeof addr, "%s", a);
    roundtrip(&uvl, addr);
    bool lclosed = false;
    gni_ipc_listener_close(l, listener_closed, &lclosed);
    run_until(&uvl, &lclosed);
    drain_loop(&uvl);
    CHECK_OK(uv_loop_close(&uvl));
}

/* Lost framing (a length above the bound) ends the connection with GN_EFRAMESIZE. */
GN_TEST(framing_lost)
{
    mk_tmpdir();
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/s.sock", tmpdir);
    uv_loop_t uvl;
    CHECK_OK(uv_loop_init(&uvl));
    srv s = {0};
    gni_ipc_listener *l = NULL;
    CHECK_OK(gni_ipc_listen(&uvl, path, NULL, srv_accept, &s, &l, err, sizeof err));
    cli k = {0};
    CHECK_OK(gni_ipc_connect(&uvl, path, cli_connected, &k, err, sizeof err));
    run_until(&uvl, &k.connected);
    CHECK(k.conn != NULL);
    CHECK_OK(gni_ipc_conn_set_limits(k.conn, 16, 0));
    CHECK_EQ(gni_ipc_conn_set_limits(k.conn, GNI_IPC_MSG_MAX + 1, 0), GN_EINVAL);
    /* 0xffffffff 0x0f = a 32-bit length well above 4 MiB */
    static const uint8_t bad[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    CHECK_OK(gni_ipc_conn_write(k.conn, bad, sizeof bad, false));
    for (int i = 0; i < 2000 && s.ends == 0; i++) {
        uv_run(&uvl, UV_RUN_NOWAIT);
        usleep(500);
    }
    CHECK_EQ(s.ends, 1);
    CHECK_EQ(s.end_err, GN_EFRAMESIZE);
    run_until(&uvl, &k.done); /* the server closed: the client reads EOF */
    CHECK_EQ(k.err, GN_EEOF);
    gni_ipc_conn_close(k.conn, false);
    run_until(&uvl, &k.closed);
    bool lclosed = false;
    gni_ipc_listener_close(l, listener_closed, &lclosed);
    run_until(&uvl, &lclosed);
    drain_loop(&uvl);
    CHECK_OK(uv_loop_close(&uvl));
    rm_tmpdir();
}

/* A paused reader keeps what arrived after the message it handled. */
typedef struct pauser {
    int msgs;
    gni_ipc_conn *c;
} pauser;

static void pause_on_msg(gni_ipc_conn *c, const uint8_t *msg, size_t len, void *ud)
{
    pauser *p = ud;
    (void)msg;
    (void)len;
    p->msgs++;
    gni_ipc_conn_read_stop(c);
}

static void pause_accept(gni_ipc_listener *l, gni_ipc_conn *c, void *ud)
{
    pauser *p = ud;
    (void)l;
    static const gni_ipc_conn_cbs cbs = {.on_msg = pause_on_msg};
    p->c = c;
    gni_ipc_conn_set_cbs(c, &cbs, p);
    CHECK_OK(gni_ipc_conn_read_start(c));
}

GN_TEST(pause_and_backpressure)
{
    mk_tmpdir();
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/s.sock", tmpdir);
    uv_loop_t uvl;
    CHECK_OK(uv_loop_init(&uvl));
    pauser p = {0};
    gni_ipc_listener *l = NULL;
    CHECK_OK(gni_ipc_listen(&uvl, path, NULL, pause_accept, &p, &l, err, sizeof err));
    cli k = {0};
    CHECK_OK(gni_ipc_connect(&uvl, path, cli_connected, &k, err, sizeof err));
    run_until(&uvl, &k.connected);
    CHECK(k.conn != NULL);
    /* three messages in one write */
    uint8_t wire[16] = {1, 'a', 1, 'b', 1, 'c'};
    CHECK_OK(gni_ipc_conn_write(k.conn, wire, 6, false));
    for (int r = 1; r <= 3; r++) {
        for (int i = 0; i < 2000 && p.msgs < r; i++) {
            uv_run(&uvl, UV_RUN_NOWAIT);
            usleep(200);
        }
        CHECK_EQ(p.msgs, r);
        for (int i = 0; i < 20; i++) {
            uv_run(&uvl, UV_RUN_NOWAIT); /* paused: nothing more arrives */
        }
        CHECK_EQ(p.msgs, r);
        CHECK_OK(gni_ipc_conn_read_start(p.c));
    }
    /* the write bound: the client stops reading, the server writes until refused */
    gni_ipc_conn_read_stop(k.conn);
    CHECK_OK(gni_ipc_conn_set_limits(p.c, GNI_IPC_MSG_MAX, 64 * 1024));
    static uint8_t big[16 * 1024];
    int rc = 0, n = 0;
    for (n = 0; n < 10000 && (rc = gni_ipc_conn_write(p.c, big, sizeof big, true)) == 0; n++) {
        uv_run(&uvl, UV_RUN_NOWAIT);
    }
    CHECK_EQ(rc, GN_EAGAIN);
    CHECK(gni_ipc_conn_queued(p.c) >= 64 * 1024);
    CHECK_OK(gni_ipc_conn_write_force(p.c, big, 10, true)); /* forced past the bound */
    gni_ipc_conn_close(p.c, false);
    gni_ipc_conn_close(k.conn, false);
    run_until(&uvl, &k.closed);
    bool lclosed = false;
    gni_ipc_listener_close(l, listener_closed, &lclosed);
    run_until(&uvl, &lclosed);
    drain_loop(&uvl);
    CHECK_OK(uv_loop_close(&uvl));
    rm_tmpdir();
}

/* Switching to raw: a message delivered is not data; a frame begun is. */
typedef struct switcher {
    gni_ipc_conn *c;
    int msgs;
    uint8_t data[64];
    size_t len;
    int end_err;
} switcher;

static void sw_on_end(gni_ipc_conn *c, int err, void *ud)
{
    (void)c;
    ((switcher *)ud)->end_err = err;
}

static void sw_on_msg(gni_ipc_conn *c, const uint8_t *msg, size_t len, void *ud)
{
    switcher *w = ud;
    (void)msg;
    (void)len;
    w->msgs++;
    gni_ipc_conn_read_stop(c); /* what follows is kept */
}

static void sw_on_data(gni_ipc_conn *c, const uint8_t *d, size_t len, void *ud)
{
    switcher *w = ud;
    (void)c;
    CHECK(w->len + len <= sizeof w->data);
    memcpy(w->data + w->len, d, len);
    w->len += len;
}

static void sw_accept(gni_ipc_listener *l, gni_ipc_conn *c, void *ud)
{
    switcher *w = ud;
    (void)l;
    static const gni_ipc_conn_cbs cbs = {.on_msg = sw_on_msg, .on_data = sw_on_data,
                                         .on_end = sw_on_end};
    w->c = c;
    gni_ipc_conn_set_cbs(c, &cbs, w);
    CHECK_OK(gni_ipc_conn_read_start(c));
}

GN_TEST(raw_switch_keeps_frame_begun)
{
    mk_tmpdir();
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/s.sock", tmpdir);
    uv_loop_t uvl;
    CHECK_OK(uv_loop_init(&uvl));
    for (int variant = 0; variant < 2; variant++) {
        switcher w = {0};
        gni_ipc_listener *l = NULL;
        CHECK_OK(gni_ipc_listen(&uvl, path, NULL, sw_accept, &w, &l, err, sizeof err));
        cli k = {0};
        CHECK_OK(gni_ipc_connect(&uvl, path, cli_connected, &k, err, sizeof err));
        run_until(&uvl, &k.connected);
        CHECK(k.conn != NULL);
        /* variant 0: a body begun (length 5, 2 bytes); 1: a two-byte length begun */
        static const uint8_t wire0[] = {3, 'a', 'b', 'c', 5, 'h', 'e'};
        static const uint8_t wire1[] = {3, 'a', 'b', 'c', 0x81};
        const uint8_t *wire = variant ? wire1 : wire0;
        size_t wl = variant ? sizeof wire1 : sizeof wire0;
        CHECK_OK(gni_ipc_conn_write(k.conn, wire, wl, false));
        for (int i = 0; i < 2000 && w.msgs == 0; i++) {
            uv_run(&uvl, UV_RUN_NOWAIT);
            usleep(200);
        }
        CHECK_EQ(w.msgs, 1);
        for (int i = 0; i < 50; i++) {
            uv_run(&uvl, UV_RUN_NOWAIT); /* the rest arrives and is kept */
            usleep(200);
        }
        gni_ipc_conn_set_raw(w.c);
        CHECK_OK(gni_ipc_conn_read_start(w.c));
        CHECK_OK(gni_ipc_conn_write(k.conn, (const uint8_t *)"XY", 2, false));
        size_t want = wl - 4 + 2;
        for (int i = 0; i < 2000 && w.len < want; i++) {
            uv_run(&uvl, UV_RUN_NOWAIT);
            usleep(200);
        }
        CHECK_EQ(w.len, want);
        CHECK_MEM(w.data, wire + 4, wl - 4);
        CHECK_MEM(w.data + wl - 4, "XY", 2);
        gni_ipc_conn_close(w.c, false);
        gni_ipc_conn_close(k.conn, false);
        run_until(&uvl, &k.closed);
        bool lclosed = false;
        gni_ipc_listener_close(l, listener_closed, &lclosed);
        run_until(&uvl, &lclosed);
    }
    drain_loop(&uvl);
    CHECK_OK(uv_loop_close(&uvl));
    rm_tmpdir();
}

/* the probe of a live socket whose backlog is full answers at once; a
 * listener starting on a path another one is setting up (PATH.lock held)
 * waits a bounded time and neither removes nor binds */
GN_TEST(probe_bounded_and_lock_held)
{
    mk_tmpdir();
    char path[128], lpath[160], err[256];
    snprintf(path, sizeof path, "%s/s.sock", tmpdir);
    snprintf(lpath, sizeof lpath, "%s.lock", path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    gni_str_copy(sa.sun_path, sizeof sa.sun_path, path);
    CHECK_OK(bind(fd, (struct sockaddr *)&sa, sizeof sa));
    CHECK_OK(listen(fd, 0));
    /* fill the backlog: never accepted */
    int cl[64];
    int ncl = 0;
    for (; ncl < 64; ncl++) {
        cl[ncl] = socket(AF_UNIX, SOCK_STREAM, 0);
        CHECK(cl[ncl] >= 0);
        CHECK_OK(fcntl(cl[ncl], F_SETFL, fcntl(cl[ncl], F_GETFL) | O_NONBLOCK));
        if (connect(cl[ncl], (struct sockaddr *)&sa, sizeof sa) != 0) {
            close(cl[ncl]);
            break;
        }
    }
    CHECK(ncl < 64); /* the backlog is full now */
    uv_loop_t uvl;
    CHECK_OK(uv_loop_init(&uvl));
    srv s = {0};
    gni_ipc_listener *l = NULL;
    uint64_t t0 = uv_hrtime();
    CHECK_EQ(gni_ipc_listen(&uvl, path, NULL, srv_accept, &s, &l, err, sizeof err),
             GN_EADDRINUSE);
    CHECK(uv_hrtime() - t0 < 3000000000ull);
    CHECK(strstr(err, "another daemon") != NULL);
    struct stat st;
    CHECK_OK(stat(path, &st)); /* the live socket stays */
    CHECK(S_ISSOCK(st.st_mode));
    CHECK_OK(stat(lpath, &st)); /* the lock file stays too */
    for (int i = 0; i < ncl; i++) {
        close(cl[i]);
    }
    close(fd);

    /* the file is stale now, but another starter holds the lock */
    int lk = open(lpath, O_RDWR);
    CHECK(lk >= 0);
    CHECK_OK(flock(lk, LOCK_EX | LOCK_NB));
    CHECK_EQ(gni_ipc_listen(&uvl, path, NULL, srv_accept, &s, &l, err, sizeof err),
             GN_EADDRINUSE);
    CHECK(strstr(err, "locked") != NULL);
    CHECK_OK(stat(path, &st)); /* not removed while locked */
    close(lk);
    /* released: the stale file is replaced */
    CHECK_OK(gni_ipc_listen(&uvl, path, NULL, srv_accept, &s, &l, err, sizeof err));
    roundtrip(&uvl, path);
    bool lclosed = false;
    gni_ipc_listener_close(l, listener_closed, &lclosed);
    run_until(&uvl, &lclosed);
    drain_loop(&uvl);
    CHECK_OK(uv_loop_close(&uvl));
    rm_tmpdir();
}

/* out of memory at accept: that connection is closed, the next is accepted */
static bool oom;
static void *oom_malloc(void *ud, size_t n) { (void)ud; return oom ? NULL : malloc(n); }
static void *oom_realloc(void *ud, void *p, size_t n)
{
    (void)ud;
    return oom ? NULL : realloc(p, n);
}
static void oom_free(void *ud, void *p) { (void)ud; free(p); }

GN_TEST(accept_out_of_memory)
{
    static const gn_allocator fa = {oom_malloc, oom_realloc, oom_free, NULL};
    gn_set_allocator(&fa);
    mk_tmpdir();
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/s.sock", tmpdir);
    uv_loop_t uvl;
    CHECK_OK(uv_loop_init(&uvl));
    srv s = {0};
    gni_ipc_listener *l = NULL;
    CHECK_OK(gni_ipc_listen(&uvl, path, NULL, srv_accept, &s, &l, err, sizeof err));
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    gni_str_copy(sa.sun_path, sizeof sa.sun_path, path);
    CHECK_OK(connect(fd, (struct sockaddr *)&sa, sizeof sa));
    CHECK_OK(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK));
    oom = true;
    ssize_t got = -1;
    for (int i = 0; i < 2000 && got != 0; i++) {
        uv_run(&uvl, UV_RUN_NOWAIT);
        char b;
        got = read(fd, &b, 1);
        if (got != 0) {
            usleep(1000);
        }
    }
    oom = false;
    CHECK_EQ(got, 0); /* closed by the listener */
    close(fd);
    CHECK_EQ(s.accepted, 0);
    CHECK_EQ(gni_ipc_listener_refused(l), 1u);
    roundtrip(&uvl, path); /* the listener still accepts */
    CHECK_EQ(s.accepted, 1);
    bool lclosed = false;
    gni_ipc_listener_close(l, listener_closed, &lclosed);
    run_until(&uvl, &lclosed);
    drain_loop(&uvl);
    CHECK_OK(uv_loop_close(&uvl));
    rm_tmpdir();
    gn_set_allocator(NULL);
}

/* out of memory while switching to raw with a frame begun: the connection
 * ends with GN_ENOMEM (the bytes cannot be kept), never silently short */
GN_TEST(raw_switch_out_of_memory)
{
    static const gn_allocator fa = {oom_malloc, oom_realloc, oom_free, NULL};
    gn_set_allocator(&fa);
    mk_tmpdir();
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/s.sock", tmpdir);
    uv_loop_t uvl;
    CHECK_OK(uv_loop_init(&uvl));
    switcher w = {0};
    gni_ipc_listener *l = NULL;
    CHECK_OK(gni_ipc_listen(&uvl, path, NULL, sw_accept, &w, &l, err, sizeof err));
    cli k = {0};
    CHECK_OK(gni_ipc_connect(&uvl, path, cli_connected, &k, err, sizeof err));
    run_until(&uvl, &k.connected);
    CHECK(k.conn != NULL);
    static const uint8_t wire[] = {3, 'a', 'b', 'c', 5, 'h', 'e'};
    CHECK_OK(gni_ipc_conn_write(k.conn, wire, sizeof wire, false));
    for (int i = 0; i < 2000 && w.msgs == 0; i++) {
        uv_run(&uvl, UV_RUN_NOWAIT);
        usleep(200);
    }
    CHECK_EQ(w.msgs, 1);
    for (int i = 0; i < 50; i++) {
        uv_run(&uvl, UV_RUN_NOWAIT); /* the rest arrives (kept) */
        usleep(200);
    }
    /* reading again feeds the kept bytes to the frame reader: a frame begun */
    CHECK_OK(gni_ipc_conn_read_start(w.c));
    for (int i = 0; i < 50; i++) {
        uv_run(&uvl, UV_RUN_NOWAIT);
        usleep(200);
    }
    gni_ipc_conn_read_stop(w.c);
    CHECK_EQ(w.msgs, 1);
    oom = true;
    int rc = gni_ipc_conn_set_raw(w.c);
    oom = false;
    CHECK_EQ(rc, GN_ENOMEM);
    CHECK_EQ(gni_ipc_conn_read_start(w.c), GN_ENOMEM);
    CHECK_EQ(w.end_err, 0); /* not from inside the call */
    for (int i = 0; i < 2000 && w.end_err == 0; i++) {
        uv_run(&uvl, UV_RUN_NOWAIT);
        usleep(200);
    }
    CHECK_EQ(w.end_err, GN_ENOMEM);
    CHECK_EQ(w.len, 0u);
    gni_ipc_conn_close(w.c, false);
    gni_ipc_conn_close(k.conn, false);
    run_until(&uvl, &k.closed);
    bool lclosed = false;
    gni_ipc_listener_close(l, listener_closed, &lclosed);
    run_until(&uvl, &lclosed);
    drain_loop(&uvl);
    CHECK_OK(uv_loop_close(&uvl));
    rm_tmpdir();
    gn_set_allocator(NULL);
}

GN_TEST_MAIN(GN_T(addr_parse), GN_T(default_path), GN_T(uid_allow_list), GN_T(prepare_dir),
             GN_T(unix_listener), GN_T(stale_socket_replaced), GN_T(probe_bounded_and_lock_held),
             GN_T(accept_out_of_memory), GN_T(raw_switch_out_of_memory), GN_T(mode_option),
             GN_T(tcp_loopback), GN_T(framing_lost), GN_T(pause_and_backpressure),
             GN_T(raw_switch_keeps_frame_begun))
