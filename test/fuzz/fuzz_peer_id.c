/*
 * Fuzz target: peer ID parsing, both the binary multihash form
 * (gn_peer_id_from_bytes) and the text forms (gn_peer_id_parse).
 *
 * Invariants (abort() on violation):
 *  - a result code is one of the documented ones;
 *  - an accepted binary peer ID is copied verbatim;
 *  - every accepted peer ID prints in both text forms, and each form parses
 *    back to the same peer ID (no lossy or ambiguous encodings);
 *  - an accepted legacy string ("1..."/"Qm...") or base32 CID ("b...") is the
 *    canonical form: printing the parsed ID gives back the input exactly;
 *  - when an Ed25519 key can be extracted, re-deriving the peer ID from it
 *    gives the same ID.
 */
#include "golemnet/err.h"
#include "golemnet/identity.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_round_trips(const gn_peer_id *pid)
{
    char s[GN_PEER_ID_MAX_STRLEN];
    gn_peer_id back;
    int n = gn_peer_id_to_string(pid, s, sizeof s);
    if (n <= 0 || (size_t)n != strlen(s))
        abort();
    if (gn_peer_id_parse(s, (size_t)n, &back) != 0 || !gn_peer_id_equal(pid, &back))
        abort();
    n = gn_peer_id_to_cid_string(pid, s, sizeof s);
    if (n <= 0 || (size_t)n != strlen(s) || s[0] != 'b')
        abort();
    if (gn_peer_id_parse(s, (size_t)n, &back) != 0 || !gn_peer_id_equal(pid, &back))
        abort();
    if (gn_peer_id_from_bytes(pid->bytes, pid->len, &back) != 0 ||
        !gn_peer_id_equal(pid, &back))
        abort();

    uint8_t pub[GN_ED25519_PUBLICKEYBYTES], pb[64];
    int rc = gn_peer_id_ed25519_key(pid, pub);
    if (rc == 0) {
        int len = gn_pubkey_encode_ed25519(pub, pb, sizeof pb);
        if (len != 36 || gn_peer_id_from_pubkey(pb, (size_t)len, &back) != 0 ||
            !gn_peer_id_equal(pid, &back))
            abort();
    } else if (rc != GN_ENOTFOUND && rc != GN_EBADKEY) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gn_peer_id pid;

    /* Binary form. */
    int rc = gn_peer_id_from_bytes(data, size, &pid);
    if (rc == 0) {
        if (pid.len != size || memcmp(pid.bytes, data, size) != 0)
            abort();
        check_round_trips(&pid);
    } else if (rc != GN_EPARSE && rc != GN_ETOOBIG) {
        abort();
    } else if (rc == GN_ETOOBIG && size <= GN_PEER_ID_MAX_BYTES) {
        abort();
    }

    /* Text form. */
    const char *str = (const char *)data;
    rc = gn_peer_id_parse(str, size, &pid);
    if (rc == 0) {
        check_round_trips(&pid);
        char s[GN_PEER_ID_MAX_STRLEN];
        int n = -1;
        if (str[0] == '1' || str[0] == 'Q')
            n = gn_peer_id_to_string(&pid, s, sizeof s);
        else if (str[0] == 'b')
            n = gn_peer_id_to_cid_string(&pid, s, sizeof s);
        if (n >= 0 && ((size_t)n != size || memcmp(s, str, size) != 0))
            abort();
    } else if (rc != GN_EPARSE && rc != GN_ETOOBIG) {
        abort();
    } else if (rc == GN_EPARSE && size >= GN_PEER_ID_MAX_STRLEN) {
        abort(); /* the length bound comes first */
    }
    return 0;
}
