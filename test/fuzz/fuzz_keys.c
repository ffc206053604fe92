/*
 * Fuzz target: libp2p keys of every type (issue 17): PublicKey protobufs
 * (gn_pubkey_check), signature checks (gn_pubkey_verify) and PrivateKey
 * protobufs (gn_identity_decode_private) of RSA, Ed25519, secp256k1, ECDSA.
 *
 * Input: byte 0 picks the mode (low two bits), the rest is
 *   mode 0: a PublicKey protobuf;
 *   mode 1: len16be || PublicKey || siglen8 || signature || message;
 *   mode 2: a PrivateKey protobuf;
 *   mode 3: a PrivateKey protobuf signing the input itself.
 *
 * Invariants (abort() on violation):
 *  - results are the documented codes, and no output on failure;
 *  - a key gn_pubkey_check() accepts derives a peer ID, and gn_pubkey_decode()
 *    agrees on its type; a signature gn_pubkey_verify() accepts is over a key
 *    gn_pubkey_check() accepts;
 *  - an accepted PrivateKey re-encodes to one that decodes to the same peer
 *    ID and type; its signatures verify under its public key, and not over a
 *    changed message.
 */
#include "golemnet/err.h"
#include "golemnet/identity.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_pub(const uint8_t *d, size_t n)
{
    gn_key_type t = (gn_key_type)-1, t2 = (gn_key_type)-1;
    int rc = gn_pubkey_check(d, n, &t);
    if (rc == 0) {
        gn_peer_id pid;
        if (gn_peer_id_from_pubkey(d, n, &pid) != 0)
            abort();
        int rc2 = gn_pubkey_decode(d, n, &t2, NULL);
        if (t2 != t || (rc2 == 0) != (t == GN_KEY_ED25519))
            abort();
    } else if (rc == GN_EBADKEY) {
        if (t < GN_KEY_RSA || t > GN_KEY_ECDSA)
            abort();
    } else if (rc != GN_EPARSE && rc != GN_ETOOBIG) {
        abort();
    }
}

static void fuzz_verify(const uint8_t *d, size_t n)
{
    if (n < 3)
        return;
    size_t kl = ((size_t)d[0] << 8) | d[1];
    if (kl > n - 2)
        return;
    const uint8_t *key = d + 2;
    const uint8_t *rest = key + kl;
    size_t rn = n - 2 - kl;
    if (rn < 1)
        return;
    size_t sl = rest[0];
    if (sl > rn - 1)
        return;
    const uint8_t *sig = rest + 1, *msg = sig + sl;
    size_t ml = rn - 1 - sl;
    int rc = gn_pubkey_verify(key, kl, msg, ml, sig, sl);
    if (rc == 0) {
        if (gn_pubkey_check(key, kl, NULL) != 0)
            abort();
    } else if (rc != GN_EBADSIG && rc != GN_EBADKEY && rc != GN_EPARSE && rc != GN_ETOOBIG) {
        abort();
    }
}

static void fuzz_priv(const uint8_t *d, size_t n, const uint8_t *msg, size_t ml)
{
    gn_identity *id = NULL, *again = NULL;
    int rc = gn_identity_decode_private(d, n, &id);
    if (rc != 0) {
        if (id != NULL || (rc != GN_EPARSE && rc != GN_EBADKEY && rc != GN_ENOMEM))
            abort();
        return;
    }
    static uint8_t priv[GN_PRIVKEY_MAX_BYTES];
    uint8_t pub[GN_PUBKEY_MAX_BYTES], sig[GN_SIG_MAX_BYTES];
    int pn = gn_identity_encode_private(id, priv, sizeof priv);
    if (pn <= 0 || gn_identity_decode_private(priv, (size_t)pn, &again) != 0)
        abort();
    gn_peer_id a, b;
    gn_identity_peer_id(id, &a);
    gn_identity_peer_id(again, &b);
    if (!gn_peer_id_equal(&a, &b) || gn_identity_key_type(id) != gn_identity_key_type(again))
        abort();
    int kl = gn_identity_encode_public(id, pub, sizeof pub);
    if (kl <= 0 || gn_pubkey_check(pub, (size_t)kl, NULL) != 0)
        abort();
    if (msg) {
        int sl = gn_identity_sign_any(again, msg, ml, sig, sizeof sig);
        if (sl <= 0 || gn_pubkey_verify(pub, (size_t)kl, msg, ml, sig, (size_t)sl) != 0)
            abort();
        static const uint8_t other[] = "not the message";
        if (gn_pubkey_verify(pub, (size_t)kl, other, sizeof other, sig, (size_t)sl) == 0 &&
            !(ml == sizeof other && memcmp(msg, other, ml) == 0))
            abort();
    }
    gn_identity_free(id);
    gn_identity_free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *d = data + 1;
    size_t n = size - 1;
    switch (data[0] & 3) {
    case 0:
        fuzz_pub(d, n);
        break;
    case 1:
        fuzz_verify(d, n);
        break;
    case 2:
        fuzz_priv(d, n, NULL, 0);
        break;
    default:
        fuzz_priv(d, n, data, size);
        break;
    }
    return 0;
}
