/*
 * multistream-select over a gn_stream (internal): drives the sans-I/O core
 * (multistream.h) on a stream until a protocol is selected or the
 * negotiation fails.
 */
#ifndef GNI_MS_STREAM_H
#define GNI_MS_STREAM_H

#include "golemnet/stream.h"
#include "multistream.h"

/**
 * Completion: @status 0 and the selected @protocol (NUL-terminated, valid
 * during the call), or an error from the core (GN_ENEGOTIATION, GN_EPROTO,
 * GN_EFRAMESIZE, GN_EEOF, GN_ETIMEDOUT) or from the stream. @s is handed
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
 */
int gni_ms_negotiate(gn_stream *s, const gni_ms_config *cfg, gni_ms_done_cb cb, void *arg);

#endif /* GNI_MS_STREAM_H */
