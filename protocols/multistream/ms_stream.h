/*
 * multistream-select over a gn_stream (internal): drives the sans-I/O core
 * (multistream.h) on a stream until a protocol is selected or the
 * negotiation fails.
 */
#ifndef GNI_MS_STREAM_H
#define GNI_MS_STREAM_H

#include "golemnet/loop.h"
#include "golemnet/stream.h"
#include "multistream.h"

/**
 * Completion: @status 0 and the selected @protocol (NUL-terminated, valid
 * during the call), or an error from the core (GN_ENEGOTIATION, GN_EPROTO,
 * GN_EFRAMESIZE, GN_EEOF, GN_ETIMEDOUT) or from the stream, or
 * GN_ERESOURCE: @s is a mux stream accounted in a resource manager
 * (GN_QUERY_RCMGR_STREAM) and moving its span to the selected protocol's
 * scope (gn_rcmgr_stream_set_protocol) was refused. @s is handed
 * back in every case with no handler installed and reading stopped; bytes
 * that followed the negotiation were pushed back with gn_stream_unread().
 * On failure the caller closes (or resets) @s.
 */
typedef void (*gni_ms_done_cb)(void *arg, int status, gn_stream *s, const char *protocol);

/**
 * Negotiates on @s with @cfg (copied; lazy selection is not used by this
 * adapter: cfg->lazy must be false). The caller keeps owning @s but must not
 * use it until @cb, which runs exactly once, from the loop, never from
 * inside this call. Errors (then @cb does not run): GN_EINVAL, GN_ENOMEM,
 * and the core's configuration errors.
 *
 * @op (NULL allowed) receives the negotiation's handle on 0 (NULL on an
 * error). gn_op_cancel(*@op) before @cb stops the negotiation at once (no
 * more reads or writes by it, its timer and core freed, the handler
 * removed) and @cb follows from the loop with GN_ECANCELED, handing @s back
 * unclosed: the caller then closes or resets it. Bytes of a reply already
 * read are lost, so a cancelled stream is not reusable for another
 * negotiation.
 */
int gni_ms_negotiate(gn_stream *s, const gni_ms_config *cfg, gni_ms_done_cb cb, void *arg,
                     gn_op **op);

#endif /* GNI_MS_STREAM_H */
