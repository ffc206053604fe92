/*
 * Helpers for the Kademlia table and lookup tests: a deterministic RNG
 * (splitmix64) and random sha2-256-multihash peer IDs.
 */
#ifndef KAD_TEST_UTIL_H
#define KAD_TEST_UTIL_H

#include "golemnet/common.h"
#include "golemnet/identity.h"

#include "kad_key.h"

#include <stdint.h>
#include <string.h>

typedef struct kt_rng {
    uint64_t s;
} kt_rng;

static inline uint64_t kt_next(kt_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, n), n > 0 (modulo bias is irrelevant here). */
static inline size_t kt_below(kt_rng *r, size_t n)
{
    return (size_t)(kt_next(r) % n);
}

static inline void kt_fill(void *user, uint8_t *out, size_t len)
{
    kt_rng *r = user;
    for (size_t i = 0; i < len; i += 8) {
        uint64_t v = kt_next(r);
        size_t n = len - i < 8 ? len - i : 8;
        memcpy(out + i, &v, n);
    }
}

static inline gn_rng kt_gn_rng(kt_rng *r)
{
    gn_rng g = {kt_fill, r};
    return g;
}

/* A random peer ID of the sha2-256 multihash form (34 bytes). */
static inline void kt_peer(kt_rng *r, gn_peer_id *out)
{
    memset(out, 0, sizeof *out);
    out->len = 34;
    out->bytes[0] = 0x12;
    out->bytes[1] = 0x20;
    kt_fill(r, out->bytes + 2, 32);
}

static inline void kt_key(kt_rng *r, gni_kad_key *out)
{
    kt_fill(r, out->b, sizeof out->b);
}

#endif /* KAD_TEST_UTIL_H */
