/*
 * golemnet - Kademlia key space (private to the library).
 *
 * Every Kademlia key is the SHA-256 of the bytes it names: a peer ID's binary
 * multihash, or a record key as sent on the wire. Distance is the XOR of two
 * keys read as a 256-bit big-endian unsigned integer; the common-prefix
 * length (cpl) is the number of leading bits two keys share, which selects
 * the routing-table bucket.
 *
 * Spec: libp2p/specs kad-dht/README.md, "Kademlia routing table" and
 * "Distance" (the XOR metric over SHA-256 of the key).
 *
 * Pure functions: no allocation, no state, callable from any thread.
 * This header is used by layers/routing/kad; keep it small and stable.
 */
#ifndef GNI_KAD_KEY_H
#define GNI_KAD_KEY_H

#include <stddef.h>
#include <stdint.h>

#include "golemnet/identity.h"

/** Bytes in a Kademlia key (SHA-256 output). */
#define GNI_KAD_KEY_BYTES 32
/** Bits in a Kademlia key; the largest value gni_kad_cpl() returns. */
#define GNI_KAD_KEY_BITS 256

/** A point of the Kademlia key space: 32 bytes, most significant first. */
typedef struct {
    uint8_t b[GNI_KAD_KEY_BYTES];
} gni_kad_key;

/**
 * Sets *@out to SHA-256 of @len bytes at @bytes (@bytes may be NULL when
 * @len is 0). Used for record keys and provider keys (CIDs' multihashes).
 * @out must not be NULL.
 */
void gni_kad_key_from_bytes(const uint8_t *bytes, size_t len, gni_kad_key *out);

/**
 * Sets *@out to SHA-256 of the binary peer ID @pid (its pid->len multihash
 * bytes). Both pointers non-NULL.
 */
void gni_kad_key_from_peer(const gn_peer_id *pid, gni_kad_key *out);

/** *@out = @a XOR @b. @out may alias @a or @b. */
void gni_kad_distance(const gni_kad_key *a, const gni_kad_key *b, gni_kad_key *out);

/**
 * Compares the distances of @a and @b to @target: negative when @a is
 * closer, 0 when equally far (only when @a equals @b), positive when @b is
 * closer. Suitable for qsort-style ordering.
 */
int gni_kad_cmp_distance(const gni_kad_key *target, const gni_kad_key *a, const gni_kad_key *b);

/**
 * Common-prefix length of @a and @b: the number of leading bits (most
 * significant bit of b[0] first) in which they agree, 0..256; 256 when the
 * keys are equal.
 */
unsigned gni_kad_cpl(const gni_kad_key *a, const gni_kad_key *b);

#endif /* GNI_KAD_KEY_H */
