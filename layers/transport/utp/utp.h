/*
 * golemnet - uTP (BEP 29) sans-I/O core with LEDBAT (RFC 6817). Private.
 *
 * One gni_utp is one uTP connection. It never touches a socket or a clock:
 * the caller feeds received datagrams (gni_utp_feed), pulls datagrams to
 * send (gni_utp_drain, one per call, until it returns 0), passes the time
 * (gn_time, monotonic ns) into every call, and calls gni_utp_on_timer()
 * when gni_utp_deadline() passes. Application bytes go in with
 * gni_utp_write() and come out with gni_utp_read(). Events (connected,
 * readable, writable, eof, error) accumulate as bits that
 * gni_utp_take_events() returns and clears.
 *
 * Connection ids and initial sequence numbers come from the caller (the
 * adapter draws them at random and keeps them unique per peer address), so
 * the core needs no RNG. Demultiplexing is the caller's: an incoming packet
 * belongs to this connection when its conn_id equals gni_utp_recv_id() (and
 * it came from the peer's address).
 *
 * Wire behaviour follows libutp where BEP 29 is silent or differs: random
 * ISNs, ST_STATE consuming no sequence number (the responder's first
 * ST_DATA reuses the SYN-ACK's seq_nr), SACK bit 0 = ack_nr + 2, three
 * duplicate or SACK-skipping acks trigger a resend, unknown extensions are
 * skipped by their length.
 *
 * Thread context: none; one connection is used by one thread at a time.
 * Spec: BEP 29 (uTP), RFC 6817 (LEDBAT), RFC 6298 (RTO).
 */
#ifndef GNI_UTP_H
#define GNI_UTP_H

#include "golemnet/common.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** The fixed header's length in bytes. */
#define GNI_UTP_HDR_LEN 20
/** Protocol version carried in the low nibble of byte 0. */
#define GNI_UTP_VERSION 1
/** Largest SACK bitmask this core sends or reads (bytes; 128 packets). */
#define GNI_UTP_SACK_MAX 16
/** Largest datagram the core produces (header + SACK + payload). */
#define GNI_UTP_MAX_PACKET 1500
/** Packets kept in flight / in the reorder buffer at most (power of two). */
#define GNI_UTP_SLOTS 1024

/** Packet types (high nibble of byte 0). */
enum {
    GNI_UTP_ST_DATA = 0,
    GNI_UTP_ST_FIN = 1,
    GNI_UTP_ST_STATE = 2,
    GNI_UTP_ST_RESET = 3,
    GNI_UTP_ST_SYN = 4
};

/** Extension types. */
enum { GNI_UTP_EXT_NONE = 0, GNI_UTP_EXT_SACK = 1 };

/**
 * golemnet's packet-size offer (not in BEP 29), carried in BEP 29's
 * extension 2 ("extension bits", 8 bytes): 'g' 'n', 'O' (offer, on a SYN)
 * or 'A' (answer, on the SYN-ACK to a SYN that offered), 0, then the
 * largest payload per packet the sender accepts and may send (2 bytes,
 * big-endian), 0, 0. Both ends then use the smaller value. Sent only when
 * config.mss_max > mss. Extension 2 because libutp drops a SYN with an
 * extension type it does not know (utp-native 2.5.3 did), while it takes
 * type 2 (copies the bits, never answers with them) and libtorrent skips
 * it; neither sends an answer, so with them the MSS stays config.mss.
 */
#define GNI_UTP_EXT_BITS 2
#define GNI_UTP_EXT_BITS_LEN 8
/** Largest mss_max: a 65,507-byte UDP payload minus header, SACK and the offer. */
#define GNI_UTP_MSS_LIMIT 65000
/** Largest datagram for payloads of @mss bytes (header, SACK, size offer). */
#define GNI_UTP_PACKET_FOR(mss) \
    (GNI_UTP_HDR_LEN + 2 + GNI_UTP_SACK_MAX + 2 + GNI_UTP_EXT_BITS_LEN + (mss))

/** A decoded header. sack points into the parsed datagram (NULL if none). */
typedef struct gni_utp_hdr {
    uint8_t type;          /* GNI_UTP_ST_* */
    uint8_t ver;           /* GNI_UTP_VERSION */
    uint8_t ext;           /* type of the first extension, 0 = none */
    uint16_t conn_id;
    uint32_t ts_us;        /* sender's clock when sent, microseconds */
    uint32_t ts_diff_us;   /* sender's last measured one-way delay sample */
    uint32_t wnd;          /* sender's advertised receive window, bytes */
    uint16_t seq;
    uint16_t ack;
    const uint8_t *sack;   /* selective-ACK bitmask (bit 0 = ack + 2) */
    uint8_t sack_len;      /* bytes, a multiple of 4, 4..GNI_UTP_SACK_MAX */
    uint16_t gn_mss;       /* golemnet's size offer or answer (extension 2), 0 if none */
    uint8_t gn_mss_kind;   /* 'O' offer, 'A' answer, 0 none */
} gni_utp_hdr;

/**
 * Writes the 20-byte header @h (ext byte as given; no extension bodies) into
 * @out. Returns GNI_UTP_HDR_LEN, or GN_EINVAL for a type > 4.
 */
int gni_utp_hdr_encode(const gni_utp_hdr *h, uint8_t out[GNI_UTP_HDR_LEN]);

/**
 * Parses the datagram @pkt (@len bytes): header, then the extension chain
 * (SACK kept, every other type skipped by its length). Returns the payload's
 * offset in @pkt (>= 20), or GN_EPARSE (too short, version not 1, type > 4,
 * an extension running past the end, more than 16 extensions), leaving *@h
 * unspecified. A SACK whose length is not a multiple of 4 in 4..16 is
 * ignored (h->sack NULL), as libutp ignores what it cannot use.
 */
int gni_utp_parse(const uint8_t *pkt, size_t len, gni_utp_hdr *h);

/** Wrap-aware comparison of 16-bit sequence numbers: a < b. */
static inline bool gni_utp_seq_lt(uint16_t a, uint16_t b)
{
    return a != b && (uint16_t)(b - a) < 0x8000u;
}

/** Tunables. Fill with gni_utp_config_default(). */
typedef struct gni_utp_config {
    size_t mss;               /* payload bytes per packet; default 1400 (libutp sends <= 1435 on wire) */
    size_t mss_max;           /* larger payloads this end may use (the path MTU's room, from the
                               * adapter), offered on the SYN (GNI_UTP_EXT_BITS) and used when the
                               * peer offers too; mss..GNI_UTP_MSS_LIMIT, 0 = off (default);
                               * lowered to half of either buffer */
    size_t recv_buf_max;      /* receive buffer = largest advertised window; default 1 MiB;
                               * packets held out of order leave one packet's room of it free
                               * (for the packet that fills the hole) */
    size_t send_buf_max;      /* bytes write() may queue (unsent + unacked); default 1 MiB */
    uint32_t target_delay_us; /* LEDBAT TARGET; default 100000 (RFC 6817 MUST <= 100 ms) */
    uint32_t gain_bytes;      /* cwnd increase per RTT at zero queuing delay; default 3000 (libutp) */
    bool md_above_target;     /* above the target, shrink cwnd by the excess fraction per RTT
                               * (at most half; LEDBAT++) instead of RFC 6817's linear rule;
                               * default true (see utp.c) */
    gn_time connect_timeout;  /* no SYN-ACK within this: GN_ETIMEDOUT; default 3 s */
    gn_time min_rto;          /* RTO floor; default 500 ms (libtorrent utp_min_timeout) */
    gn_time max_rto;          /* RTO ceiling; default 60 s (RFC 6298 2.5) */
    uint32_t max_timeouts;    /* consecutive RTO expiries before GN_ETIMEDOUT; default 6 */
    gn_time keepalive;        /* ST_STATE after this long without sending; default 29 s; 0 = off */
} gni_utp_config;

void gni_utp_config_default(gni_utp_config *cfg);

/** Connection states. */
typedef enum gni_utp_state {
    GNI_UTP_IDLE = 0,     /* made, neither connect nor accept yet */
    GNI_UTP_SYN_SENT,     /* initiator waiting for the SYN-ACK */
    GNI_UTP_CONNECTED,    /* data flows (FINs may be in progress) */
    GNI_UTP_CLOSED,       /* both FINs exchanged and ours acked */
    GNI_UTP_ERROR         /* reset, refused, timed out or aborted: see gni_utp_error() */
} gni_utp_state;

/** Event bits returned by gni_utp_take_events(). */
enum {
    GNI_UTP_EV_CONNECTED = 0x1,  /* SYN-ACK arrived (initiator) */
    GNI_UTP_EV_READABLE = 0x2,   /* gni_utp_read() has bytes */
    GNI_UTP_EV_WRITABLE = 0x4,   /* send buffer space freed */
    GNI_UTP_EV_EOF = 0x8,        /* the peer's FIN arrived in order; all its data was delivered */
    GNI_UTP_EV_ERROR = 0x10,     /* the state became GNI_UTP_ERROR */
    GNI_UTP_EV_CLOSED = 0x20     /* the state became GNI_UTP_CLOSED */
};

typedef struct gni_utp gni_utp;

/**
 * Makes a connection with @cfg (NULL: defaults; copied). Returns NULL on
 * allocation failure or a config with mss outside 64..1400 or empty buffers.
 */
gni_utp *gni_utp_new(const gni_utp_config *cfg);
/** Frees @u (NULL allowed). Sends nothing: call gni_utp_abort() and drain first to reset the peer. */
void gni_utp_free(gni_utp *u);

/**
 * Starts an outgoing connection: the SYN carries conn_id @recv_id and
 * sequence number @isn; later packets carry recv_id + 1. GN_ESTATE unless
 * IDLE. Drain to get the SYN.
 */
int gni_utp_connect(gni_utp *u, uint16_t recv_id, uint16_t isn, gn_time now);

/**
 * Accepts the ST_SYN datagram @syn (@len bytes): the connection answers on
 * conn_id syn.conn_id and receives on syn.conn_id + 1, and its SYN-ACK (and
 * first ST_DATA) carries sequence number @isn. Returns 0, GN_EPARSE (not a
 * well-formed SYN) or GN_ESTATE (not IDLE). Drain to get the SYN-ACK.
 */
int gni_utp_accept(gni_utp *u, const uint8_t *syn, size_t len, uint16_t isn, gn_time now);

/**
 * Processes one received datagram for this connection. Returns 0, or
 * GN_EPARSE for a malformed datagram (ignored, the connection is unharmed).
 * Packets for another conn_id are ignored (0); an ST_RESET may carry
 * either of our ids. Never fails fatally: state
 * changes show in gni_utp_state() and the event bits.
 */
int gni_utp_feed(gni_utp *u, const uint8_t *pkt, size_t len, gn_time now);

/**
 * Writes the next datagram to send into @out (@cap bytes, at least
 * gni_utp_max_packet() recommended; a smaller @cap limits the payload).
 * Returns its length, 0 when nothing is due, or GN_ENOSPC (@cap below
 * header + SACK). Call until it returns 0 after every feed, write, read,
 * shutdown, abort and on_timer. Each call emits at most one datagram and the
 * number of datagrams due at once is bounded by the window.
 */
int gni_utp_drain(gni_utp *u, uint8_t *out, size_t cap, gn_time now);

/**
 * Queues up to @len bytes of @data for sending (copied). Returns the count
 * accepted (possibly less than @len), GN_EAGAIN when the send buffer is full
 * (EV_WRITABLE follows when space frees), GN_EPIPE after shutdown,
 * GN_ESTATE before connect/accept, or the connection's error once it failed.
 */
long gni_utp_write(gni_utp *u, const uint8_t *data, size_t len);

/**
 * Copies up to @cap received in-order bytes into @out and opens the window
 * by as much. Returns the count (> 0), 0 if nothing is buffered yet,
 * GN_EEOF after the peer's FIN once everything was read, or the
 * connection's error.
 */
long gni_utp_read(gni_utp *u, uint8_t *out, size_t cap);

/** Bytes gni_utp_read() would return now. */
size_t gni_utp_readable(const gni_utp *u);

/**
 * Half-close: an ST_FIN follows the queued bytes. Idempotent. GN_ESTATE
 * before connect/accept or after an error.
 */
int gni_utp_shutdown(gni_utp *u);

/**
 * Aborts: the next drain emits one ST_RESET (if the connection got as far
 * as having a peer), then the state is GNI_UTP_ERROR with GN_ECANCELED.
 */
void gni_utp_abort(gni_utp *u);

/**
 * The largest datagram gni_utp_drain() may produce now: GNI_UTP_MAX_PACKET,
 * or more once both ends offered larger packets (GNI_UTP_EXT_BITS).
 */
size_t gni_utp_max_packet(const gni_utp *u);

/** Earliest time gni_utp_on_timer() must run, or UINT64_MAX for none. */
gn_time gni_utp_deadline(const gni_utp *u);
/** Runs the timers due at @now: SYN and data retransmission, keepalive, zero-window probe. */
void gni_utp_on_timer(gni_utp *u, gn_time now);

/** Returns and clears the GNI_UTP_EV_* bits raised since the last call. */
unsigned gni_utp_take_events(gni_utp *u);

gni_utp_state gni_utp_get_state(const gni_utp *u);
/**
 * The error once the state is GNI_UTP_ERROR: GN_ECONNRESET (peer's
 * ST_RESET), GN_ECONNREFUSED (ST_RESET answering our SYN), GN_ETIMEDOUT
 * (no SYN-ACK within connect_timeout, or max_timeouts RTO expiries),
 * GN_ECANCELED (gni_utp_abort()), GN_EUNREACHABLE (gni_utp_fail()). 0 otherwise.
 */
int gni_utp_error(const gni_utp *u);
/** Fails the connection with @err (the adapter's ICMP unreachable report); no packet is sent. */
void gni_utp_fail(gni_utp *u, int err);
/**
 * An ICMP error the adapter read for a datagram sent to this connection's
 * peer: @quoted is the start of the datagram the ICMP message quotes (the
 * UDP payload, @len bytes, at least the 20-byte header to count), @err
 * GN_ECONNREFUSED (port unreachable) or GN_EUNREACHABLE (host or network).
 * Fails the connection with @err and returns 1 only when the quoted header
 * is this connection's (conn_id) with a sequence number still in flight,
 * and either @err is GN_ECONNREFUSED, the handshake is in progress
 * (GNI_UTP_SYN_SENT) or retransmission timeouts have expired since the
 * last ack; else returns 0 and changes nothing (a forged or stale report,
 * or a soft error: the retransmission timer decides).
 */
int gni_utp_icmp(gni_utp *u, const uint8_t *quoted, size_t len, int err);

/** conn_id of packets this connection receives, and of those it sends after the SYN. */
uint16_t gni_utp_recv_id(const gni_utp *u);
uint16_t gni_utp_send_id(const gni_utp *u);

/** Statistics and congestion state, for tests and diagnostics. */
typedef struct gni_utp_stats {
    size_t cwnd;             /* LEDBAT congestion window, bytes */
    size_t flight;           /* bytes sent and not acked */
    size_t peer_wnd;         /* peer's last advertised window */
    gn_time srtt, rttvar, rto;
    uint32_t base_delay_us;  /* minimum one-way delay over the history */
    uint32_t queue_delay_us; /* filtered current delay minus base delay */
    uint64_t sent_packets, resent_packets, recv_packets, dup_packets;
    uint64_t rto_expiries;  /* retransmission timeouts (each resends the window) */
    uint64_t fast_resends;  /* packets resent on duplicate acks / SACK */
    uint64_t sack_packets;   /* packets received with a SACK extension (BEP 29 selective acks) */
    bool slow_start;
    size_t mss;              /* payload bytes per packet in use */
} gni_utp_stats;

void gni_utp_get_stats(const gni_utp *u, gni_utp_stats *st);

#endif /* GNI_UTP_H */
