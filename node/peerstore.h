/*
 * The node's peer store (internal): what the node learned about peers from
 * handshakes, dials, identify, discovery and routers. A bounded table
 * indexed by peer ID; loop thread only.
 *
 * A record is small because a simulation keeps thousands of nodes with
 * hundreds of peers each in one process: the peer ID, two pointers and the
 * index links inline (120 bytes), addresses in an array that grows with
 * them, and everything only a peer we connected to has (public key, RTT,
 * agent, observed address, protocols) in one optional block.
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
/** Longest address kept, including the NUL; longer agents and observed
 *  addresses are cut to GNI_PS_STR_MAX - 1 bytes. */
#define GNI_PS_STR_MAX 256u

typedef struct gni_peerstore gni_peerstore;

/** One address of a peer. */
typedef struct gni_ps_addr {
    char *text;     /* multiaddr string, NUL-terminated, < GNI_PS_STR_MAX bytes */
    gn_time expiry; /* loop time it expires; GN_TIME_INFINITY never */
    uint8_t src;    /* gn_addr_source */
} gni_ps_addr;

/**
 * What a connection taught about a peer, in one allocation with its
 * strings (read it through the gni_peer_* accessors below).
 */
typedef struct gni_peer_ext {
    gn_time latency;               /* moving average of recorded RTTs; 0 unknown */
    bool has_pubkey;
    uint16_t nprotocols;
    uint8_t pubkey[GN_ED25519_PUBLICKEYBYTES];
    const char *agent;             /* agent version, "" unknown; never NULL */
    const char *observed;          /* how the peer sees us, "" unknown; never NULL */
    const char *const *protocols;  /* nprotocols ids announced by identify */
} gni_peer_ext;

/**
 * One peer's record. Owned by the store; the record stays where it is
 * until it is evicted or the store freed, but the arrays and strings it
 * points to are valid only until the next store call.
 */
typedef struct gni_peer_info {
    gn_peer_id id;
    bool identified;     /* an identify reply was recorded */
    uint8_t naddrs;      /* entries in addrs */
    uint8_t addr_cap;    /* room in addrs (store-internal) */
    gni_ps_addr *addrs;  /* naddrs addresses, oldest first; NULL when none */
    gni_peer_ext *ext;   /* NULL until a key, RTT, agent, observed address or
                            protocol list is recorded */
} gni_peer_info;

/** @p's Ed25519 public key (GN_ED25519_PUBLICKEYBYTES), or NULL when unknown. */
static inline const uint8_t *gni_peer_pubkey(const gni_peer_info *p)
{
    return p->ext && p->ext->has_pubkey ? p->ext->pubkey : NULL;
}
/** @p's moving average RTT (ns), 0 when unknown. */
static inline gn_time gni_peer_latency(const gni_peer_info *p)
{
    return p->ext ? p->ext->latency : 0;
}
/** @p's agent version, "" when unknown. */
static inline const char *gni_peer_agent(const gni_peer_info *p)
{
    return p->ext ? p->ext->agent : "";
}
/** How @p sees us (a multiaddr string), "" when unknown. */
static inline const char *gni_peer_observed(const gni_peer_info *p)
{
    return p->ext ? p->ext->observed : "";
}
/** Number of protocol ids @p announced. */
static inline size_t gni_peer_nprotocols(const gni_peer_info *p)
{
    return p->ext ? p->ext->nprotocols : 0;
}
/** @p's @i-th protocol id (@i < gni_peer_nprotocols()). */
static inline const char *gni_peer_protocol(const gni_peer_info *p, size_t i)
{
    return p->ext->protocols[i];
}

/** Creates an empty store. Errors: GN_ENOMEM. */
int gni_peerstore_new(gni_peerstore **out);
/** Frees the store and every record. NULL is a no-op. */
void gni_peerstore_free(gni_peerstore *ps);

/** The record of @id, or NULL when unknown. Does not count as an update. */
const gni_peer_info *gni_peerstore_get(const gni_peerstore *ps, const gn_peer_id *id);

/*
 * The calls below create @id's record when unknown and make it the most
 * recently updated; beyond GNI_PS_MAX_PEERS records the least recently
 * updated one goes. A call that fails leaves the store as it was (no
 * record created, none evicted, the order unchanged).
 */

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
/** Records an RTT sample of @id (ns): latency = 7/8 latency + 1/8 sample. Errors: GN_ENOMEM. */
int gni_peerstore_record_latency(gni_peerstore *ps, const gn_peer_id *id, gn_time rtt);
/** Records @id's Ed25519 public key. Errors: GN_ENOMEM. */
int gni_peerstore_set_pubkey(gni_peerstore *ps, const gn_peer_id *id,
                             const uint8_t pub[GN_ED25519_PUBLICKEYBYTES]);
/**
 * Replaces @id's protocol list with @n ids (NUL-terminated strings; at most
 * GNI_PS_MAX_PROTOCOLS are kept). Errors: GN_ENOMEM (the old list is kept).
 */
int gni_peerstore_set_protocols(gni_peerstore *ps, const gn_peer_id *id,
                                const char *const *protocols, size_t n);
/**
 * Records identify's observed address and agent (NULL: unchanged; each cut
 * to GNI_PS_STR_MAX - 1 bytes); marks identified. Errors: GN_ENOMEM
 * (nothing changed).
 */
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
