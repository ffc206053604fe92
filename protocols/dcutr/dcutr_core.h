/*
 * golemnet - one DCUtR hole punch as a sans-I/O state machine. Internal.
 *
 * Spec: libp2p/specs relay/DCUtR.md "The Protocol". A connects to B
 * through a relay. The inbound peer of that relayed connection, B, is the
 * one that starts: the core's GNI_DCUTR_ROLE_B opens the stream (the
 * adapter does), sends CONNECT with its addresses, measures the round
 * trip until A's CONNECT, sends SYNC and dials A's addresses RTT/2 later;
 * on failure it starts over on the same stream, at most
 * GNI_DCUTR_ATTEMPTS_MAX attempts in all. GNI_DCUTR_ROLE_A answers a
 * CONNECT with its own and dials B's addresses as soon as the SYNC comes.
 * In the simultaneous TCP open B is the client (it runs the security
 * handshake as initiator) and A the server (it dials with
 * GN_HOST_CONNECT_RESPONDER), as go-libp2p and rust-libp2p do.
 *
 * No I/O: time is an argument, messages come in decoded and go out as
 * actions the adapter performs in order:
 *
 *   feed a message / a dial result / a direct channel / the clock
 *   while (gni_dcutr_core_next(c, &act)) perform act
 *   arm a timer for gni_dcutr_core_deadline(c)
 *
 * The adapter reports a dial's result once for the whole set of addresses
 * it dialled (the first success, or the failure of every address).
 */
#ifndef GNI_DCUTR_CORE_H
#define GNI_DCUTR_CORE_H

#include "golemnet/common.h"
#include "golemnet/multiaddr.h"

#include "dcutr_msg.h"

#include <stdbool.h>

/** Attempts B makes before it gives up (spec: retry twice, 3 in all). */
#define GNI_DCUTR_ATTEMPTS_MAX 3u
/** Longest wait for the peer's next message, by default. */
#define GNI_DCUTR_MSG_TIMEOUT_DEFAULT (10 * GN_S)
/** Longest wait for a dial's result, by default. */
#define GNI_DCUTR_DIAL_TIMEOUT_DEFAULT (5 * GN_S)

typedef enum gni_dcutr_role {
    GNI_DCUTR_ROLE_B = 0, /* inbound peer of the relayed connection: starts, measures, syncs */
    GNI_DCUTR_ROLE_A = 1  /* the peer that dialled through the relay: answers */
} gni_dcutr_role;

typedef enum gni_dcutr_act_kind {
    GNI_DCUTR_ACT_SEND = 1, /* write msg_type: CONNECT with our addresses, or SYNC */
    GNI_DCUTR_ACT_DIAL = 2, /* dial the peer's addresses (gni_dcutr_core_peer_addrs) now */
    GNI_DCUTR_ACT_DONE = 3  /* finished: status 0 (a direct channel) or the error, reason */
} gni_dcutr_act_kind;

typedef struct gni_dcutr_action {
    gni_dcutr_act_kind kind;
    gni_dcutr_type msg_type; /* SEND */
    bool as_responder;       /* DIAL: run the handshake as the responder (role A) */
    unsigned attempt;        /* the attempt (1..) the action belongs to */
    int status;              /* DONE: 0, or a negative gn_err */
    const char *reason;      /* DONE: static text for logs */
} gni_dcutr_action;

typedef struct gni_dcutr_config {
    unsigned attempts;   /* 1..GNI_DCUTR_ATTEMPTS_MAX; 0: GNI_DCUTR_ATTEMPTS_MAX */
    gn_time msg_timeout;  /* 0: default */
    gn_time dial_timeout; /* 0: default */
} gni_dcutr_config;

#define GNI_DCUTR_QUEUE_MAX 4u

typedef struct gni_dcutr_core {
    gni_dcutr_role role;
    gni_dcutr_config cfg;
    int state;         /* private: DC_* in dcutr_core.c */
    unsigned attempt;  /* current attempt, 1.. */
    gn_time sent_at;   /* B: when the attempt's CONNECT was sent */
    gn_time rtt;       /* B: the last attempt's measured round trip */
    gn_time deadline;  /* GN_TIME_INFINITY when none */
    bool dialling;     /* a DIAL was issued and its result is not in */
    unsigned dial_attempt; /* the attempt that DIAL belongs to */
    int last_err;
    gni_dcutr_msg peer;    /* the peer's last CONNECT (its addresses) */
    gni_dcutr_action q[GNI_DCUTR_QUEUE_MAX];
    unsigned qhead, qlen;
} gni_dcutr_core;

/**
 * Starts a hole punch as @role at @now: B queues its first CONNECT (the
 * adapter has opened the stream); A waits for one. @cfg may be NULL
 * (defaults). Errors: GN_EINVAL (NULL @c, an unknown role, attempts out of
 * range).
 */
int gni_dcutr_core_init(gni_dcutr_core *c, gni_dcutr_role role, const gni_dcutr_config *cfg,
                        gn_time now);

/** Frees what @c holds (the peer's addresses). Safe after a failed init of a zeroed @c. */
void gni_dcutr_core_fini(gni_dcutr_core *c);

/**
 * A message from the peer, decoded (@m's addresses move to the core when
 * it keeps them: @m is emptied either way; the caller still may clear it).
 * An unexpected message (a SYNC before a CONNECT, a CONNECT to B while it
 * dials, more CONNECTs than attempts) finishes the punch with GN_EPROTO.
 */
void gni_dcutr_core_on_msg(gni_dcutr_core *c, gni_dcutr_msg *m, gn_time now);

/**
 * The result of the last DIAL action of @attempt: 0 (a direct channel to
 * the peer is open) or the error of the last address. A result for an
 * attempt already superseded is ignored unless it is a success.
 */
void gni_dcutr_core_on_dial(gni_dcutr_core *c, unsigned attempt, int status, gn_time now);

/**
 * A direct channel to the peer appeared, whoever dialled it (the peer's
 * dial reached our listener): the punch succeeded.
 */
void gni_dcutr_core_on_direct(gni_dcutr_core *c, gn_time now);

/**
 * The stream ended: @status GN_EEOF for a clean end by the peer, or its
 * error. Finishes the punch with GN_ECONNRESET (or the error) unless a dial
 * of the current attempt is out or about to start (B waiting RTT/2): then
 * that dial's result decides, without a retry.
 */
void gni_dcutr_core_on_stream_end(gni_dcutr_core *c, int status, gn_time now);

/** Runs the deadlines due at @now (RTT/2 wait, message and dial timeouts). */
void gni_dcutr_core_on_timer(gni_dcutr_core *c, gn_time now);

/** The next deadline (GN_TIME_INFINITY: none; the punch finished or waits on I/O only). */
gn_time gni_dcutr_core_deadline(const gni_dcutr_core *c);

/** Pops the next action into *@out; false when there is none. */
bool gni_dcutr_core_next(gni_dcutr_core *c, gni_dcutr_action *out);

/** True once a DONE action was queued. */
bool gni_dcutr_core_done(const gni_dcutr_core *c);

/** The peer's addresses from its last CONNECT (borrowed until the next input). Returns the count. */
size_t gni_dcutr_core_peer_addrs(const gni_dcutr_core *c, gn_multiaddr *const **out);

/**
 * True when @ma may be sent in a CONNECT or dialled directly: an ip4/ip6
 * (or dns) address without /p2p-circuit, not unspecified, and - unless
 * @allow_private - not loopback, private (RFC 1918, fc00::/7), link-local
 * or CGNAT (100.64.0.0/10).
 */
bool gni_dcutr_addr_usable(const gn_multiaddr *ma, bool allow_private);

#endif /* GNI_DCUTR_CORE_H */
