/*
 * The IPC client's private interface (include/golemnet/ipc.h is the
 * public one). Two halves:
 *
 *  - client_uv.c: sockets, the reader thread, waiting calls, the event
 *    queue (OS I/O and threads; libuv only for its thread primitives);
 *  - client.c: the public calls as control-protocol requests and their
 *    responses, through ipcd's ctl_wire and the protobuf-c generated code
 *    (no I/O).
 *
 * Requests and responses cross between them as opaque pointers to the
 * protobuf-c structs (Request, ServerMessage), so client_uv.c knows no
 * message layout.
 *
 * Thread context: client_uv.c's functions may be called from any thread
 * unless noted; the codec hooks run on whichever thread needs them (the
 * reader thread decodes, callers encode) and keep no state.
 */
#ifndef GNI_IPCC_H
#define GNI_IPCC_H

#include "golemnet/ipc.h"

#include <stddef.h>
#include <stdint.h>

/* ---- codec hooks (client.c) ---- */

/** What the reader thread made of one message from the daemon. */
typedef struct gni_ipcc_in {
    enum {
        GNI_IPCC_IN_SKIP = 0,
        GNI_IPCC_IN_RESPONSE = 1,
        GNI_IPCC_IN_EVENT = 2,
        GNI_IPCC_IN_BYE = 3
    } kind;
    uint64_t id;      /* RESPONSE: the request id it answers */
    void *msg;        /* RESPONSE: the decoded message, owned (gni_ipcc_msg_free()) */
    gn_node_event ev; /* EVENT: the event (ev.message owned); BYE: status and reason in addr */
} gni_ipcc_in;

/**
 * Decodes one control message (@len bytes, framing removed) into @in,
 * through ctl_wire (bounds checked before protobuf-c allocates). Returns
 * 0 (kind SKIP: a newer daemon's kind of message, to be ignored),
 * GN_EPROTO (undecodable, over a bound, or an event-less message), GN_ENOMEM.
 */
int gni_ipcc_decode(const uint8_t *msg, size_t len, gni_ipcc_in *in);

/** Frees a decoded message (RESPONSE's msg; NULL: no-op). */
void gni_ipcc_msg_free(void *msg);

/**
 * Serialises request @req (a protobuf-c Request) with id @id, framed
 * (varint length first), into a new buffer *@out of *@len bytes (gn_free()).
 * Errors: GN_ETOOBIG (over GN_IPC_MSG_MAX), GN_ENOMEM.
 */
int gni_ipcc_encode(void *req, uint64_t id, uint8_t **out, size_t *len);

/**
 * The status and error message a decoded response carries: returns its
 * status (0 or a negative gn_err) and copies the message into @err.
 */
int gni_ipcc_response_status(const void *msg, char *err, size_t err_len);

/** Decodes a StreamInfo (@len bytes) into @info. Returns 0 or GN_EPROTO. */
int gni_ipcc_decode_stream_info(const uint8_t *msg, size_t len, gn_ipc_stream_info *info);

/* ---- I/O (client_uv.c) ---- */

/**
 * Sends @req and waits for its response: 0 with *@resp the decoded
 * message (gni_ipcc_msg_free()) when the daemon answered status 0; else
 * the daemon's status (*@resp NULL, the message recorded for
 * gn_ipc_last_error()) or the client's own error (GN_ETIMEDOUT,
 * GN_ECLOSED, GN_EIO, ...). @resp may be NULL when the caller wants only
 * the status. @timeout: this call's bound (ns). Any thread.
 * With @keep_failed, a failed response is handed back too (*@resp set).
 */
int gni_ipcc_call(gn_ipc_client *c, void *req, void **resp, gn_time timeout, bool keep_failed);

/** The client's call timeout. */
gn_time gni_ipcc_timeout(gn_ipc_client *c);

/** Records @msg as the client's last error (truncated). */
void gni_ipcc_set_error(gn_ipc_client *c, const char *fmt, ...) GN_PRINTF(2, 3);

/** The address the client connected to (for stream connections). */
const char *gni_ipcc_addr(const gn_ipc_client *c);

/**
 * Opens a fresh connection to @addr (as gn_ipc_connect() accepts), a
 * blocking socket, within @timeout. Returns the fd (>= 0) or an error;
 * @err receives a message naming what was wrong.
 */
int gni_ipcc_sock_connect(const char *addr, gn_time timeout, char *err, size_t err_len);

/**
 * On a blocking socket @fd: writes the framed request @req (id @id) and
 * reads exactly one framed message back, no byte more (what follows
 * belongs to the stream), within @timeout. *@out: the decoded message
 * (gni_ipcc_msg_free()). Errors: GN_ETIMEDOUT, GN_ECLOSED (EOF), GN_EIO,
 * GN_EPROTO, GN_EFRAMESIZE, GN_ENOMEM.
 */
int gni_ipcc_sock_exchange(int fd, void *req, uint64_t id, gn_time timeout, gni_ipcc_in *out);

/**
 * Reads exactly one framed message from @fd (no byte more) within
 * @timeout into a new buffer *@msg of *@len bytes (gn_free()). Errors as
 * gni_ipcc_sock_exchange().
 */
int gni_ipcc_sock_read_msg(int fd, gn_time timeout, uint8_t **msg, size_t *len);

/** A new stream object owning @fd (closed on failure too). */
int gni_ipcc_stream_new(int fd, const gn_ipc_stream_info *info, gn_ipc_stream **out);

/** A fresh request id of @c (for stream connections, which share ids). */
uint64_t gni_ipcc_next_id(gn_ipc_client *c);

/** Listens on Unix socket @path (mode 0600; a stale file replaced): the fd or an error. */
int gni_ipcc_listen_path(const char *path, char *err, size_t err_len);

/** Accepts one connection on @lfd within @timeout (0: do not wait): a blocking fd or an error. */
int gni_ipcc_accept(int lfd, gn_time timeout);

/** Closes listener @fd (if >= 0) and unlinks @path (if set). */
void gni_ipcc_unlisten(int fd, const char *path);

/** The hello exchange right after connecting; @version gets the daemon's. */
int gni_ipcc_hello(gn_ipc_client *c, char *version, size_t version_len);

/** The control protocol version this client speaks. */
#define GN_IPC_PROTOCOL_VERSION 1u

#endif /* GNI_IPCC_H */
