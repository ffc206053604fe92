/* Fuzzes the plaintext/2.0.0 Exchange parser: any bytes, any split. */
#include "plaintext.h"

#include "golemnet/err.h"

#include <stdlib.h>

static gn_identity *id;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!id && gn_identity_from_int_seed(7, &id) < 0)
        abort();
    gni_plaintext *p;
    if (gni_plaintext_new(id, NULL, &p) < 0)
        abort();
    size_t consumed = 0;
    int rc = gni_plaintext_feed(p, data, size, &consumed);
    if (rc == 0 && consumed > size)
        abort();
    if (rc < 0 && gni_plaintext_status(p) != rc)
        abort();
    if (rc == 0 && consumed > 0) {
        gn_peer_id peer;
        uint8_t pub[32];
        gni_plaintext_remote(p, &peer, pub);
        gn_peer_id again;
        uint8_t pb[64];
        int n = gn_pubkey_encode_ed25519(pub, pb, sizeof pb);
        if (n < 0 || gn_peer_id_from_pubkey(pb, (size_t)n, &again) < 0 ||
            !gn_peer_id_equal(&peer, &again))
            abort(); /* accepted a peer whose id is not its key's */
    }
    gni_plaintext_free(p);
    return 0;
}
