/*
 * Fuzzes the identify decoder (framed and bare forms): any bytes. Checks the
 * bounds hold on success and that a decoded result re-encodes and decodes
 * to the same content.
 */
#include "identify.h"

#include "golemnet/err.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gni_identify_result *r = NULL;
    int rc = gni_identify_decode(data, size, NULL, false, &r);
    if (rc < 0) {
        if (r != NULL)
            abort(); /* out-param touched on failure */
        return 0;
    }
    if (r->listen_addr_cnt > GNI_IDENTIFY_MAX_ADDRS || r->protocol_cnt > GNI_IDENTIFY_MAX_PROTOCOLS)
        abort();
    for (size_t i = 0; i < r->protocol_cnt; i++)
        if (strlen(r->protocols[i]) >= GN_PROTOCOL_ID_MAX)
            abort();
    /* the key's peer must be accepted as the expected one */
    if (r->public_key_len > 0) {
        gni_identify_result *again = NULL;
        if (gni_identify_decode(data, size, &r->peer, true, &again) < 0)
            abort();
        gni_identify_result_free(again);
    }
    /* the signed peer record, checked with the key's peer (memo on, twice:
     * the second check must agree, from the memo when the first held) */
    if (r->public_key_len > 0 && r->has_signed_peer_record) {
        static gni_envelope_memo memo; /* the fuzzer's own, one thread */
        int c1 = gni_identify_check_record(r, NULL, &memo);
        bool ok1 = r->signed_peer_record_ok;
        if ((c1 == 0) != ok1 || (ok1 && r->record_addr_cnt > GNI_PEER_RECORD_MAX_ADDRS))
            abort();
        gni_identify_result *again = NULL;
        if (gni_identify_decode(data, size, NULL, false, &again) < 0)
            abort();
        int c2 = gni_identify_check_record(again, NULL, &memo);
        if ((c2 == 0) != (c1 == 0) || again->record_addr_cnt != r->record_addr_cnt)
            abort();
        gni_identify_result_free(again);
    }
    /* re-encode what we understood and decode it again */
    gni_identify_info info = {0};
    info.protocol_version = r->protocol_version;
    info.agent_version = r->agent_version;
    info.public_key = gn_slice_of(r->public_key, r->public_key_len);
    info.listen_addrs = (const gn_multiaddr *const *)r->listen_addrs;
    info.listen_addr_cnt = r->listen_addr_cnt;
    info.observed_addr = r->observed_addr;
    info.protocols = (const char *const *)r->protocols;
    info.protocol_cnt = r->protocol_cnt;
    long n = gni_identify_encoded_len(&info);
    if (n > 0) {
        uint8_t *buf = malloc((size_t)n);
        gn_buf b;
        gn_buf_init(&b, buf, (size_t)n);
        if (!buf || gni_identify_encode(&info, &b) != n)
            abort();
        gni_identify_result *r2 = NULL;
        if (gni_identify_decode(buf, (size_t)n, NULL, false, &r2) < 0)
            abort();
        if (r2->listen_addr_cnt != r->listen_addr_cnt || r2->protocol_cnt != r->protocol_cnt ||
            r2->public_key_len != r->public_key_len)
            abort();
        for (size_t i = 0; i < r->protocol_cnt; i++)
            if (strcmp(r2->protocols[i], r->protocols[i]) != 0)
                abort();
        gni_identify_result_free(r2);
        free(buf);
    } else if (n != GN_ETOOBIG) {
        abort();
    }
    gni_identify_result_free(r);
    return 0;
}
