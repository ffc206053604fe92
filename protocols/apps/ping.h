/*
 * libp2p ping (internal): /ipfs/ping/1.0.0.
 *
 * The dialer sends 32 random bytes; the listener echoes them; the dialer
 * checks they came back unchanged and takes the round-trip time. Both sides
 * may repeat on the same stream. Spec: libp2p/specs ping/ping.md.
 *
 * ping.c holds both the sans-I/O core (gni_ping_core_*: payload, matching
 * at any byte split, RTT from times given as arguments) and the stream
 * drivers (gni_ping_serve, gni_pinger_*), which read the loop clock
 * (gn_loop_now) and pass it to the core.
 *
 * Thread context: the core is pure; the drivers are loop-thread only.
 */
#ifndef GNI_PING_H
#define GNI_PING_H

#include "apps.h"

#include "golemnet/loop.h"

/** Payload size, bytes (ping spec). */
#define GNI_PING_SIZE 32
/** Default per-ping timeout (0 passed to gni_pinger_ping()). */
#define GNI_PING_TIMEOUT (20 * GN_S)

/* ---- core ---- */

/** Dialer-side state of one outstanding ping. Caller-owned; fields private. */
typedef struct gni_ping_core {
    uint8_t payload[GNI_PING_SIZE];
    size_t got;       /* echoed bytes matched so far */
    bool outstanding; /* a ping was started and not yet answered */
    gn_time sent_at;
} gni_ping_core;

/** Initialises @p (nothing outstanding). */
void gni_ping_core_init(gni_ping_core *p);

/**
 * Starts a ping: draws GNI_PING_SIZE bytes from @rng into @out (the bytes
 * to send) and remembers them with @now. Errors: GN_ESTATE (a ping is
 * already outstanding), GN_EINVAL (NULL args).
 */
int gni_ping_core_start(gni_ping_core *p, const gn_rng *rng, gn_time now,
                        uint8_t out[GNI_PING_SIZE]);

/**
 * Feeds echoed bytes (any split). Consumes at most the bytes the
 * outstanding ping still needs (*@consumed). Returns 1 when the echo is
 * complete (then *@rtt = @now - start time, at least 1 ns, and the core is
 * idle again), 0 when more bytes are needed, or an error: GN_EPROTO (a byte
 * differs from what was sent, or bytes arrived with no ping outstanding).
 */
int gni_ping_core_feed(gni_ping_core *p, const uint8_t *in, size_t len, size_t *consumed,
                       gn_time now, gn_time *rtt);

/* ---- drivers ---- */

/**
 * Listener side: echoes every complete 32-byte block until the peer
 * half-closes, then half-closes and closes @s (a trailing partial block is
 * dropped, as the spec's implementations do). At most one block is written
 * at a time; reading stops while it is in flight. On success the driver
 * owns @s; @cb (may be NULL) runs once with 0 (the peer half-closed) or an
 * error (the stream's, GN_ENOMEM). Errors (caller still owns @s): GN_EINVAL,
 * GN_ECLOSED.
 */
int gni_ping_serve(gn_stream *s, gni_app_done_cb cb, void *arg);

/** A dialer-side ping session over one stream. Opaque. */
typedef struct gni_pinger gni_pinger;

/**
 * Ping result (loop thread). @status 0 and the round trip @rtt (ns, > 0),
 * or GN_EPROTO (the echo differed), GN_ETIMEDOUT, GN_EEOF (the peer closed
 * its side), GN_ECANCELED (gni_pinger_close() with the ping outstanding) or
 * the stream's error. After a failure the session only fails further
 * pings with the same code: close it.
 */
typedef void (*gni_ping_cb)(void *arg, int status, gn_time rtt);

/**
 * Takes over @s (a stream negotiated for /ipfs/ping/1.0.0) and starts a
 * session. @rng (borrowed; must outlive the session; NULL: gn_rng_system())
 * draws the payloads. On success the session owns @s. Errors (caller still
 * owns @s): GN_EINVAL, GN_ENOMEM, GN_ECLOSED.
 */
int gni_pinger_new(gn_stream *s, const gn_rng *rng, gni_pinger **out);

/**
 * Sends one ping; @cb runs once with the result, from the loop, never from
 * inside this call. @timeout ns, 0 = GNI_PING_TIMEOUT. Errors (@cb does not
 * run): GN_ESTATE (a ping is outstanding: one at a time), the session's
 * earlier failure code, or the stream's write error.
 */
int gni_pinger_ping(gni_pinger *p, gn_time timeout, gni_ping_cb cb, void *arg);

/**
 * Ends the session: an outstanding ping completes with GN_ECANCELED, the
 * stream is half-closed and closed, and the memory is released once the
 * stream's close completes. @p must not be used afterwards. Safe inside a
 * gni_ping_cb. NULL is a no-op.
 */
void gni_pinger_close(gni_pinger *p);

#endif /* GNI_PING_H */
