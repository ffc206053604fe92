/*
 * Application protocols (internal): identify, ping, echo, perf and
 * golemnet's msg. Shared definitions for their stream drivers.
 *
 * Every driver follows the same rules:
 *  - a driver that is handed a gn_stream owns it from a successful call on
 *    and closes (or resets) it itself; when the call fails, the caller still
 *    owns the stream and must close it;
 *  - completion callbacks run on the loop thread, never from inside the call
 *    that started the operation, and exactly once;
 *  - the driver's memory is released after the stream's close callback, so
 *    write completions that arrive late never touch freed memory.
 *
 * Spec: docs/protocols/apps.md.
 */
#ifndef GNI_APPS_H
#define GNI_APPS_H

#include "golemnet/buf.h"
#include "golemnet/err.h"
#include "golemnet/stream.h"

/** Protocol ids served by the drivers in this directory. */
#define GNI_IDENTIFY_PROTOCOL_ID "/ipfs/id/1.0.0"
#define GNI_IDENTIFY_PUSH_PROTOCOL_ID "/ipfs/id/push/1.0.0"
#define GNI_PING_PROTOCOL_ID "/ipfs/ping/1.0.0"
#define GNI_ECHO_PROTOCOL_ID "/echo/1.0.0"
#define GNI_PERF_PROTOCOL_ID "/perf/1.0.0"
#define GNI_MSG_PROTOCOL_ID "/golem/msg/1.0.0"

/**
 * Completion of a serving driver (identify serve/push, echo, ping serve,
 * perf serve). @status: 0 when the exchange finished as the protocol
 * defines (the stream was half-closed by both sides or fully written), or
 * a negative gn_err: the stream's error (GN_ECONNRESET, GN_ESTREAMRESET,
 * ...), a peer violation (GN_EPROTO), GN_ETIMEDOUT, GN_ENOMEM. The stream is
 * already being closed by the driver when this runs; do not touch it.
 * May be NULL where a driver accepts it.
 */
typedef void (*gni_app_done_cb)(void *arg, int status);

#endif /* GNI_APPS_H */
