/*
 * The IPC client's I/O half (gni_ipcc.h) on Windows: NOT IMPLEMENTED YET
 * (issue 20 gap). client_uv.c speaks to the daemon over AF_UNIX or TCP with
 * blocking POSIX sockets and hands out connected file descriptors; its
 * Windows form needs the daemon's named pipe (the daemon issue) and Winsock
 * handles, which is the next step. Until then every way in, gn_ipc_connect()
 * first, fails with GN_ENOTSUP and a message saying so, so the library, the
 * CLI and everything that links the client build for Windows.
 */
#include "gni_ipcc.h"

#include "golemnet/err.h"

#include <stdio.h>
#include <string.h>

#define IPCC_WIN_MSG "the IPC client is not implemented on Windows yet (issue 20)"

int gni_ipcc_sock_connect(const char *addr, gn_time timeout, char *err, size_t err_len)
{
    (void)addr, (void)timeout;
    if (err && err_len) {
        snprintf(err, err_len, "%s", IPCC_WIN_MSG);
    }
    return GN_ENOTSUP;
}
int gni_ipcc_sock_read_msg(int fd, gn_time timeout, uint8_t **msg, size_t *len)
{
    (void)fd, (void)timeout, (void)msg, (void)len;
    return GN_ENOTSUP;
}
int gni_ipcc_sock_exchange(int fd, void *req, uint64_t id, gn_time timeout, gni_ipcc_in *out)
{
    (void)fd, (void)req, (void)id, (void)timeout, (void)out;
    return GN_ENOTSUP;
}
void gni_ipcc_set_error(gn_ipc_client *c, const char *fmt, ...) { (void)c, (void)fmt; }
size_t gn_ipc_last_error(gn_ipc_client *c, char *out, size_t out_len)
{
    (void)c;
    if (out && out_len) {
        snprintf(out, out_len, "%s", IPCC_WIN_MSG);
    }
    return strlen(IPCC_WIN_MSG);
}
int gn_ipc_next_event(gn_ipc_client *c, gn_node_event *ev, gn_time timeout)
{
    (void)c, (void)ev, (void)timeout;
    return GN_ENOTSUP;
}
int gn_ipc_event_fd(const gn_ipc_client *c) { (void)c; return -1; }
int gn_ipc_stats_get(gn_ipc_client *c, gn_ipc_stats *st)
{
    (void)c, (void)st;
    return GN_ENOTSUP;
}
uint64_t gni_ipcc_next_id(gn_ipc_client *c) { (void)c; return 0; }
gn_time gni_ipcc_timeout(gn_ipc_client *c) { (void)c; return 0; }
const char *gni_ipcc_addr(const gn_ipc_client *c) { (void)c; return ""; }
int gni_ipcc_call(gn_ipc_client *c, void *req, void **resp, gn_time timeout, bool keep_failed)
{
    (void)c, (void)req, (void)resp, (void)timeout, (void)keep_failed;
    return GN_ENOTSUP;
}
void gn_ipc_options_default(gn_ipc_options *opt)
{
    if (!opt) {
        return;
    }
    memset(opt, 0, sizeof *opt);
    opt->version = GN_IPC_OPTIONS_VERSION;
    opt->timeout = 30 * GN_S;
    opt->event_queue_capacity = 4096;
    opt->max_message_len = GN_IPC_MSG_MAX;
}
int gn_ipc_connect(const char *addr, const gn_ipc_options *opt, gn_ipc_client **out)
{
    (void)addr, (void)opt;
    if (out) {
        *out = NULL;
    }
    return GN_ENOTSUP;
}
void gn_ipc_free(gn_ipc_client *c) { (void)c; }
void gn_ipc_set_timeout(gn_ipc_client *c, gn_time timeout) { (void)c, (void)timeout; }
const char *gn_ipc_daemon_version(const gn_ipc_client *c) { (void)c; return ""; }
int gni_ipcc_stream_new(int fd, const gn_ipc_stream_info *info, gn_ipc_stream **out)
{
    (void)fd, (void)info, (void)out;
    return GN_ENOTSUP;
}
int gn_ipc_stream_fd(const gn_ipc_stream *s) { (void)s; return -1; }
const gn_ipc_stream_info *gn_ipc_stream_get_info(const gn_ipc_stream *s) { (void)s; return NULL; }
int gn_ipc_stream_read(gn_ipc_stream *s, uint8_t *buf, size_t len, gn_time timeout)
{
    (void)s, (void)buf, (void)len, (void)timeout;
    return GN_ENOTSUP;
}
int gn_ipc_stream_write(gn_ipc_stream *s, const uint8_t *buf, size_t len, gn_time timeout)
{
    (void)s, (void)buf, (void)len, (void)timeout;
    return GN_ENOTSUP;
}
int gn_ipc_stream_shutdown(gn_ipc_stream *s) { (void)s; return GN_ENOTSUP; }
void gn_ipc_stream_free(gn_ipc_stream *s) { (void)s; }
int gni_ipcc_listen_path(const char *path, char *err, size_t err_len)
{
    (void)path;
    if (err && err_len) {
        snprintf(err, err_len, "%s", IPCC_WIN_MSG);
    }
    return GN_ENOTSUP;
}
int gni_ipcc_accept(int lfd, gn_time timeout)
{
    (void)lfd, (void)timeout;
    return GN_ENOTSUP;
}
void gni_ipcc_unlisten(int fd, const char *path) { (void)fd, (void)path; }
int gn_ipc_default_socket(char *out, size_t out_len)
{
    (void)out, (void)out_len;
    return GN_ENOTSUP;
}
