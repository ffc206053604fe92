/*
 * golemnet - Kademlia key space: SHA-256 keys, XOR distance, common-prefix
 * length. See kad_key.h.
 */
#include "kad_key.h"

#include <sodium.h>

void gni_kad_key_from_bytes(const uint8_t *bytes, size_t len, gni_kad_key *out)
{
    static const uint8_t empty[1] = {0};
    if (bytes == NULL) {
        bytes = empty;
        len = 0;
    }
    crypto_hash_sha256(out->b, bytes, (unsigned long long)len);
}

void gni_kad_key_from_peer(const gn_peer_id *pid, gni_kad_key *out)
{
    gni_kad_key_from_bytes(pid->bytes, pid->len, out);
}

void gni_kad_distance(const gni_kad_key *a, const gni_kad_key *b, gni_kad_key *out)
{
    for (size_t i = 0; i < GNI_KAD_KEY_BYTES; i++)
        out->b[i] = (uint8_t)(a->b[i] ^ b->b[i]);
}

int gni_kad_cmp_distance(const gni_kad_key *target, const gni_kad_key *a, const gni_kad_key *b)
{
    for (size_t i = 0; i < GNI_KAD_KEY_BYTES; i++) {
        uint8_t da = (uint8_t)(a->b[i] ^ target->b[i]);
        uint8_t db = (uint8_t)(b->b[i] ^ target->b[i]);
        if (da != db)
            return da < db ? -1 : 1;
    }
    return 0;
}

unsigned gni_kad_cpl(const gni_kad_key *a, const gni_kad_key *b)
{
    for (size_t i = 0; i < GNI_KAD_KEY_BYTES; i++) {
        uint8_t x = (uint8_t)(a->b[i] ^ b->b[i]);
        if (x != 0) {
            unsigned n = 0;
            while ((x & 0x80u) == 0) { /* at most 7 steps: x != 0 */
                x = (uint8_t)(x << 1);
                n++;
            }
            return (unsigned)(i * 8) + n;
        }
    }
    return GNI_KAD_KEY_BITS;
}
