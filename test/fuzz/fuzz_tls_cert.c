/*
 * Fuzzes the libp2p TLS certificate check (layers/crypto/tls/tls.c,
 * gni_p2ptls_cert_verify): any bytes as a peer's DER certificate. It must
 * never crash, and a certificate it accepts must name the peer of the key
 * it carries. Seeds: js-libp2p certificates (test/data/tls).
 */
#include "tls.h"

#include "golemnet/err.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gni_p2ptls_peer p;
    char diag[256];
    /* 2026-12-05: inside the seeds' validity */
    int rc = gni_p2ptls_cert_verify(data, size, 1796488952LL + 60, &p, diag, sizeof diag);
    if (rc > 0)
        abort();
    if (rc == 0) {
        gn_peer_id again;
        if (gn_peer_id_from_pubkey(p.pubkey_pb, p.pubkey_pb_len, &again) < 0 ||
            !gn_peer_id_equal(&again, &p.peer))
            abort();
    } else if (diag[0] == '\0' && rc != GN_ENOMEM) {
        abort(); /* every refusal says why */
    }
    return 0;
}
