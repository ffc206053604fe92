/*
 * /echo/1.0.0 (internal): the listener sends back every byte it receives,
 * in order, until the peer half-closes; then it half-closes too. Used by
 * interop and conformance tests (it is the protocol of libp2p's echo
 * examples). Spec: docs/protocols/apps.md "echo".
 *
 * There is no wire format to parse, so there is no separate core: echo.c is
 * only a stream driver. Thread context: loop thread only.
 */
#ifndef GNI_ECHO_H
#define GNI_ECHO_H

#include "apps.h"

/** Bytes buffered per half of the driver's double buffer. */
#define GNI_ECHO_BUF (64u * 1024u)

/**
 * Echoes @s until EOF, then half-closes and closes it. Backpressure: at
 * most 2 * GNI_ECHO_BUF bytes are held (one half being written, one being
 * filled); when both are busy, reading stops (bytes beyond are pushed back
 * with gn_stream_unread()) until the write completes. On success the driver
 * owns @s; @cb (may be NULL) runs once: 0 after the half-close, or the
 * stream's error (the stream is then reset). Errors (caller still owns @s):
 * GN_EINVAL, GN_ENOMEM, GN_ECLOSED.
 */
int gni_echo_serve(gn_stream *s, gni_app_done_cb cb, void *arg);

#endif /* GNI_ECHO_H */
