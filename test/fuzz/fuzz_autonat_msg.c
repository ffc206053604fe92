/*
 * Fuzzes the /libp2p/autonat/1.0.0 wire core (protocols/autonat/autonat_msg.c):
 * the input is a byte stream of length-prefixed frames, read with
 * gni_lp_reader as the component reads a stream. Checks: every decoded
 * message stays within the bounds and re-encodes; the re-encoded frame
 * decodes to the same message.
 */
#include "autonat_msg.h"

#include "gni.h"
#include "golemnet/err.h"

#include <stdlib.h>
#include <string.h>

static void same(const gni_autonat_msg *a, const gni_autonat_msg *b)
{
    if (a->type != b->type)
        abort();
    if (a->type == GNI_AUTONAT_DIAL) {
        if (b->addr_cnt != a->addr_cnt || b->addrs_skipped != 0 ||
            b->has_peer_id != a->has_peer_id)
            abort();
        for (size_t i = 0; i < a->addr_cnt; i++)
            if (!gn_multiaddr_equal(a->addrs[i], b->addrs[i]))
                abort();
        if (a->has_peer_id && !gn_peer_id_equal(&a->peer_id, &b->peer_id))
            abort();
    } else {
        if (a->status != b->status || strcmp(a->status_text, b->status_text) != 0 ||
            (a->addr == NULL) != (b->addr == NULL) ||
            (a->addr && !gn_multiaddr_equal(a->addr, b->addr)))
            abort();
    }
}

static void check(const gni_autonat_msg *m)
{
    static uint8_t out[GNI_AUTONAT_FRAME_MAX];
    size_t len;
    if (m->addr_cnt > GNI_AUTONAT_MAX_ADDRS || strlen(m->status_text) > GNI_AUTONAT_MAX_TEXT)
        abort();
    int rc;
    if (m->type == GNI_AUTONAT_DIAL) {
        if (!m->has_peer_id)
            return; /* we always send an id */
        rc = gni_autonat_encode_dial(&m->peer_id, (const gn_multiaddr *const *)m->addrs,
                                     m->addr_cnt, out, sizeof out, &len);
    } else {
        rc = gni_autonat_encode_response(m->status, m->status_text, m->addr, out, sizeof out,
                                         &len);
    }
    if (rc == GN_ENOMEM)
        return;
    if (rc < 0)
        abort();
    gni_lp_reader rd;
    gni_lp_reader_init(&rd, GNI_AUTONAT_MAX_MSG_LEN);
    size_t used, mlen;
    const uint8_t *msg;
    if (gni_lp_reader_feed(&rd, out, len, &used, &msg, &mlen) != 1 || used != len)
        abort();
    gni_autonat_msg again;
    rc = gni_autonat_decode(msg, mlen, &again);
    if (rc == 0) {
        same(m, &again);
        gni_autonat_msg_fini(&again);
    } else if (rc != GN_ENOMEM) {
        abort();
    }
    gni_lp_reader_clear(&rd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gni_lp_reader rd;
    gni_lp_reader_init(&rd, GNI_AUTONAT_MAX_MSG_LEN);
    for (int frames = 0; size > 0 && frames < 64; frames++) {
        size_t used, mlen;
        const uint8_t *msg;
        int rc = gni_lp_reader_feed(&rd, data, size, &used, &msg, &mlen);
        if (rc < 0)
            break;
        data += used;
        size -= used;
        if (rc == 0)
            break;
        gni_autonat_msg m;
        if (gni_autonat_decode(msg, mlen, &m) == 0) {
            check(&m);
            gni_autonat_msg_fini(&m);
        }
        gni_lp_reader_clear(&rd);
    }
    gni_lp_reader_clear(&rd);
    return 0;
}
