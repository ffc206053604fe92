/*
 * Fuzz target: libp2p PublicKey decoding (gn_pubkey_decode) and, on the same
 * bytes, PrivateKey decoding (gn_identity_decode_private).
 *
 * Invariants (abort() on violation):
 *  - result codes are the documented ones; GN_ETOOBIG exactly when the input
 *    is longer than GN_PUBKEY_MAX_BYTES;
 *  - an accepted Ed25519 PublicKey is the deterministic encoding: encoding the
 *    decoded key reproduces the input byte for byte;
 *  - the peer ID derived from it embeds the same key;
 *  - GN_EBADKEY reports a known key type;
 *  - an accepted PrivateKey re-encodes to a protobuf that decodes to the same
 *    identity, and its signatures verify under its public key.
 */
#include "golemnet/err.h"
#include "golemnet/identity.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_private(const uint8_t *data, size_t size)
{
    gn_identity *id = NULL, *again = NULL;
    int rc = gn_identity_decode_private(data, size, &id);
    if (rc != 0) {
        if (id != NULL || (rc != GN_EPARSE && rc != GN_EBADKEY && rc != GN_ENOMEM))
            abort();
        return;
    }
    static uint8_t priv[GN_PRIVKEY_MAX_BYTES];
    uint8_t sig[GN_SIG_MAX_BYTES], pub[GN_PUBKEY_MAX_BYTES];
    int n = gn_identity_encode_private(id, priv, sizeof priv);
    if (n <= 0 || gn_identity_decode_private(priv, (size_t)n, &again) != 0)
        abort();
    if (gn_identity_key_type(id) == GN_KEY_ED25519 && n != 68)
        abort();
    gn_peer_id a, b;
    gn_identity_peer_id(id, &a);
    gn_identity_peer_id(again, &b);
    if (!gn_peer_id_equal(&a, &b))
        abort();
    int sl = gn_identity_sign_any(id, data, size, sig, sizeof sig);
    int pl = gn_identity_encode_public(again, pub, sizeof pub);
    if (sl <= 0 || pl <= 0 || gn_pubkey_verify(pub, (size_t)pl, data, size, sig, (size_t)sl) != 0)
        abort();
    gn_identity_free(id);
    gn_identity_free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gn_key_type type = (gn_key_type)-1;
    uint8_t pub[GN_ED25519_PUBLICKEYBYTES], enc[64], back[GN_ED25519_PUBLICKEYBYTES];
    int rc = gn_pubkey_decode(data, size, &type, pub);
    if ((rc == GN_ETOOBIG) != (size > GN_PUBKEY_MAX_BYTES))
        abort();
    if (rc == 0) {
        if (type != GN_KEY_ED25519)
            abort();
        int n = gn_pubkey_encode_ed25519(pub, enc, sizeof enc);
        if (n < 0 || (size_t)n != size || memcmp(enc, data, size) != 0)
            abort();
        gn_peer_id pid;
        if (gn_peer_id_from_pubkey(data, size, &pid) != 0)
            abort();
        if (gn_peer_id_ed25519_key(&pid, back) != 0 || memcmp(back, pub, sizeof pub) != 0)
            abort();
    } else if (rc == GN_EBADKEY) {
        if (type < GN_KEY_RSA || type > GN_KEY_ECDSA)
            abort();
    } else if (rc != GN_EPARSE && rc != GN_ETOOBIG) {
        abort();
    }

    check_private(data, size);
    return 0;
}
