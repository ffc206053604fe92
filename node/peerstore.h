/*
 * The node's peer store (internal): what the node learned about peers from
 * handshakes, dials and identify. A small bounded table; loop thread only.
 */
#ifndef GNI_PEERSTORE_H
#define GNI_PEERSTORE_H

#include "golemnet/identity.h"

#include "golemnet/common.h"

#include <stdbool.h>
#include <stddef.h>

/** Most peers kept (the least recently updated is evicted beyond). */
#define GNI_PS_MAX_PEERS 4096u
/** Most addresses kept per peer (the oldest is dropped beyond). */
#define GNI_PS_MAX_ADDRS 16u
/** Most protocol ids kept per peer (extra ones are ignored). */
#define GNI_PS_MAX_PROTOCOLS 256u
/** Longest address or agent string kept, including the NUL. */
#define GNI_PS_STR_MAX 256u

typedef struct gni_peerstore gni_peerstore;

/** One peer's record. Owned by the store; valid until the next store call. */
typedef struct gni_peer_info {
    gn_peer_id id;
    bool has_pubkey;
    uint8_t pubkey[GN_ED25519_PUBLICKEYBYTES];
    char *addrs[GNI_PS_MAX_ADDRS];  /* multiaddr strings, oldest first */
    gn_time addr_expiry[GNI_PS_MAX_ADDRS]; /* loop time it expires; GN_TIME_INFINITY never */
    uint8_t addr_src[GNI_PS_MAX_ADDRS];    /* gn_addr_source */
    size_t naddrs;
    gn_time latency;                /* moving average of recorded RTTs; 0 unknown */
    char **protocols;               /* protocol ids (identify) */
    size_t nprotocols;
    char observed[GNI_PS_STR_MAX];  /* how the peer sees us ("" unknown) */
    char agent[GNI_PS_STR_MAX];     /* agent version ("" unknown) */
    bool identified;                /* an identify reply was recorded */
} gni_peer_info;

/** Creates an empty store. Errors: GN_ENOMEM. */
int gni_peerstore_new(gni_peerstore **out);
/** Frees the store and every record. NULL is a no-op. */
void gni_peerstore_free(gni_peerstore *ps);

/** The record of @id, or NULL when unknown. */
const gni_peer_info *gni_peerstore_get(const gni_peerstore *ps, const gn_peer_id *id);

/**
 * Adds @addr (a multiaddr string, < GNI_PS_STR_MAX bytes) to @id's
 * addresses, permanent, source "manual" (gni_peerstore_add_addr_ttl).
 */
int gni_peerstore_add_addr(gni_peerstore *ps, const gn_peer_id *id, const char *addr);
/**
 * Adds @addr to @id's addresses, expiring at @expiry (loop time;
 * GN_TIME_INFINITY: never), from @src (gn_addr_source). An address already
 * known moves to the newest place and keeps the later expiry. Beyond
 * GNI_PS_MAX_ADDRS the oldest goes. Errors: GN_EINVAL (empty), GN_ETOOBIG
 * (too long), GN_ENOMEM.
 */
int gni_peerstore_add_addr_ttl(gni_peerstore *ps, const gn_peer_id *id, const char *addr,
                               gn_time expiry, int src);
/** Records an RTT sample of @id (ns): latency = 7/8 latency + 1/8 sample. */
int gni_peerstore_record_latency(gni_peerstore *ps, const gn_peer_id *id, gn_time rtt);
/** Records @id's Ed25519 public key. Errors: GN_ENOMEM. */
int gni_peerstore_set_pubkey(gni_peerstore *ps, const gn_peer_id *id,
                             const uint8_t pub[GN_ED25519_PUBLICKEYBYTES]);
/**
 * Replaces @id's protocol list with @n ids (at most GNI_PS_MAX_PROTOCOLS are
 * kept). Errors: GN_ENOMEM (the old list is kept).
 */
int gni_peerstore_set_protocols(gni_peerstore *ps, const gn_peer_id *id,
                                const char *const *protocols, size_t n);
/** Records identify's observed address and agent (NULL: unchanged); marks identified. */
int gni_peerstore_set_identify(gni_peerstore *ps, const gn_peer_id *id, const char *observed,
                               const char *agent);
/** True when @id announced @protocol. */
bool gni_peerstore_supports(const gni_peerstore *ps, const gn_peer_id *id, const char *protocol);
/** Number of peers. */
size_t gni_peerstore_count(const gni_peerstore *ps);

typedef struct gn_node gn_node;
/** The store of a node (tests and the CLI; loop thread only). */
const gni_peerstore *gni_node_peerstore(gn_node *n);

#endif /* GNI_PEERSTORE_H */
