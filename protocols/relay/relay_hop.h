/*
 * golemnet - the circuit relay v2 hop service (private to the library).
 *
 * The protocol component `relay` (/libp2p/circuit/relay/0.2.0/hop,
 * explicit-only: a node relays only when its protocol_components list
 * names it, e.g. "relay"). It admits reservations, and for CONNECT opens
 * the stop stream to the reserved target and splices the two streams under
 * the configured limits. relay_layer.c; options and decisions: docs/relay.md.
 *
 * Spec: libp2p/specs relay/circuit-v2.md "Hop Protocol".
 * Thread context: the host's loop thread.
 */
#ifndef GNI_RELAY_HOP_H
#define GNI_RELAY_HOP_H

#include "golemnet/host.h"

#include <stdint.h>

/** Index of gni_relay_stats.refused for each refusal status. */
enum {
    GNI_RELAY_REFUSED_RESERVATION = 0, /* RESERVATION_REFUSED */
    GNI_RELAY_REFUSED_RESOURCE = 1,    /* RESOURCE_LIMIT_EXCEEDED */
    GNI_RELAY_REFUSED_PERMISSION = 2,  /* PERMISSION_DENIED */
    GNI_RELAY_REFUSED_CONNECTION = 3,  /* CONNECTION_FAILED */
    GNI_RELAY_REFUSED_NO_RSV = 4,      /* NO_RESERVATION */
    GNI_RELAY_REFUSED_MALFORMED = 5,   /* MALFORMED_MESSAGE, UNEXPECTED_MESSAGE */
    GNI_RELAY_REFUSED_COUNT = 6
};

/** Counters of a hop service since its start. */
typedef struct gni_relay_stats {
    uint64_t reservations;       /* held now */
    uint64_t reservations_total; /* accepted, refreshes included */
    uint64_t circuits;           /* splicing or being set up now */
    uint64_t circuits_total;     /* that reached splicing */
    uint64_t bytes_relayed;      /* both directions, bytes handed to the other stream */
    uint64_t limit_resets;       /* circuits reset by the data or duration limit */
    uint64_t refused[GNI_RELAY_REFUSED_COUNT]; /* answers other than OK, by status */
} gni_relay_stats;

/**
 * Copies the counters of the hop service running on @h into *@out.
 * Errors: GN_EINVAL (NULL), GN_ENOTFOUND (no hop service runs on @h).
 * Loop thread only.
 */
int gni_relay_hop_stats(gn_host *h, gni_relay_stats *out);

#endif /* GNI_RELAY_HOP_H */
