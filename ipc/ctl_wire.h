/*
 * The golemnet control protocol's wire core (sans-I/O): frames of
 * Request / ServerMessage / StreamInfo (ipc/proto/control.proto) checked
 * against the protocol's bounds before protobuf-c allocates anything,
 * decoded, and encoded with their unsigned-varint length prefix.
 * Spec: docs/protocols/control.md. No syscalls, no libuv, no globals:
 * any thread, one object per thread at a time. Internal to the library
 * (the daemon server, the C client, tests, the fuzz target).
 */
#ifndef GNI_CTL_WIRE_H
#define GNI_CTL_WIRE_H

#include "gni.h"
#include "golemnet/ipcd.h"

#include "control.pb-c.h"

#include <stddef.h>
#include <stdint.h>

/** Nesting depth of messages inside a message the check accepts (top level is 1). */
#define GNI_CTL_DEPTH_MAX 6u
/** Fields (of any message, nested ones included) in one message. */
#define GNI_CTL_FIELDS_MAX 65536u

/**
 * Walks the protobuf encoding @buf (@len bytes) of a message of type @d
 * without allocating and checks the bounds: well-formed wire types and
 * lengths, no groups, strings at most GN_CTL_STRING_MAX bytes and valid
 * UTF-8 (proto3), each repeated field at most GN_CTL_REPEATED_MAX entries,
 * nesting at most GNI_CTL_DEPTH_MAX, GNI_CTL_FIELDS_MAX fields in all.
 * Unknown fields are skipped (forward compatibility). When @id is not
 * NULL and a top-level field 1 of varint type was seen before the first
 * error, its value is stored there (the request id for an error reply).
 * Returns 0, GN_EPARSE (malformed: a message in @err) or GN_ETOOBIG (a
 * bound exceeded: which one in @err). @err may be NULL.
 */
int gni_ctl_check(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                  uint64_t *id, char *err, size_t errlen);

/**
 * Checks (gni_ctl_check) and decodes one Request body (no length prefix).
 * *@out receives the request (free it with gni_ctl_request_free()), NULL on
 * error. *@id (may be NULL) receives the request id when it could be read,
 * else 0. Errors: GN_EPARSE, GN_ETOOBIG (as gni_ctl_check), GN_ENOTSUP (no
 * op this version knows: a newer client's op), GN_EINVAL (no op at all),
 * GN_ENOMEM. A message naming the problem goes to @err.
 */
int gni_ctl_request_decode(const uint8_t *buf, size_t len, Gnctl__Request **out, uint64_t *id,
                           char *err, size_t errlen);
void gni_ctl_request_free(Gnctl__Request *r);

/**
 * Checks and decodes one ServerMessage body (clients). Errors: GN_EPARSE,
 * GN_ETOOBIG, GN_ENOTSUP (neither a response nor an event: a newer
 * daemon's message, to be skipped), GN_ENOMEM.
 */
int gni_ctl_server_msg_decode(const uint8_t *buf, size_t len, Gnctl__ServerMessage **out,
                              char *err, size_t errlen);
void gni_ctl_server_msg_free(Gnctl__ServerMessage *m);

/** Checks and decodes a StreamInfo body (a stream handler's first frame). Errors as above. */
int gni_ctl_stream_info_decode(const uint8_t *buf, size_t len, Gnctl__StreamInfo **out,
                               char *err, size_t errlen);
void gni_ctl_stream_info_free(Gnctl__StreamInfo *m);

/**
 * Encodes @m as one frame: unsigned-varint length, then the protobuf
 * bytes, into a new buffer *@out (gn_malloc; the caller gn_free()s it) of
 * *@out_len bytes. The encoding is checked against the bounds as
 * gni_ctl_check() checks a received one, so a peer never receives what it
 * would refuse. Errors: GN_ETOOBIG (longer than GN_CTL_MSG_MAX, or a
 * bound exceeded), GN_EINVAL (NULL arguments), GN_ENOMEM.
 */
int gni_ctl_encode(const ProtobufCMessage *m, uint8_t **out, size_t *out_len);

/**
 * Copies the string @in (at most @n bytes; it ends earlier at a NUL) to
 * @out (@cap bytes, @cap > 0) as valid UTF-8: each byte that does not
 * start a valid character (overlong forms and surrogates included) becomes
 * U+FFFD, and the copy ends before the first character that would not fit
 * in @cap - 1 bytes (never inside a character). @out is NUL-terminated.
 * Returns the copy's length in bytes. @in may be NULL (an empty copy).
 */
size_t gni_ctl_utf8_fix(const char *in, size_t n, char *out, size_t cap);

/**
 * Makes every string field of @m valid for the wire before encoding: each
 * string (singular, repeated, set oneof members, in nested messages too)
 * that is not valid UTF-8 or is longer than GN_CTL_STRING_MAX bytes is
 * replaced by a gni_ctl_utf8_fix() copy of at most GN_CTL_STRING_MAX
 * bytes. @m's string pointers (and the repeated arrays' entries, which
 * must be writable) are changed in place; the copies are chained on
 * *@keep (start with NULL) and freed with gni_ctl_sanitize_free() once
 * @m is encoded. Returns the number of strings replaced, GN_EINVAL (NULL
 * arguments) or GN_ENOMEM (what was replaced so far stays on *@keep).
 */
int gni_ctl_sanitize(ProtobufCMessage *m, void **keep);
void gni_ctl_sanitize_free(void *keep);

/**
 * A stream of framed Requests: gni_lp_reader (core) with the control
 * protocol's message bound.
 */
typedef struct gni_ctl_reader {
    gni_lp_reader lp;
} gni_ctl_reader;

void gni_ctl_reader_init(gni_ctl_reader *r);
void gni_ctl_reader_fini(gni_ctl_reader *r);

/**
 * Feeds @len bytes of @in; *@consumed receives how many were used (fewer
 * than @len when a frame completed). Returns 1 with *@req set (owned by the
 * caller) when a frame decoded, 0 when more bytes are needed, or an error:
 *  - frame intact, message refused (answer with an error Response, go on):
 *    GN_EPARSE, GN_ETOOBIG, GN_ENOTSUP, GN_EINVAL with *@id and @err as
 *    gni_ctl_request_decode(); the frame is consumed;
 *  - framing lost (close the connection): GN_EFRAMESIZE (a length above
 *    GN_CTL_MSG_MAX), GN_EBADFRAME (a bad length varint); the reader must
 *    be re-initialised before further use;
 *  - GN_ENOMEM.
 */
int gni_ctl_reader_feed(gni_ctl_reader *r, const uint8_t *in, size_t len, size_t *consumed,
                        Gnctl__Request **req, uint64_t *id, char *err, size_t errlen);

/** The name of a Request's op ("dial"), "none" when unset. For logs. */
const char *gni_ctl_op_name(const Gnctl__Request *r);

#endif /* GNI_CTL_WIRE_H */
