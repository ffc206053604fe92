/*
 * Fuzzes the circuit relay v2 wire core (protocols/relay/relay_msg.c).
 * Byte 0: bit 0 picks StopMessage (else HopMessage); bit 1 treats the rest
 * as a voucher envelope instead. Checks: a decoded message stays within its
 * bounds, re-encodes, and the re-encoded frame decodes and re-encodes to
 * the same bytes; a voucher opens only with one of the documented errors.
 */
#include "relay_msg.h"

#include "golemnet/err.h"
#include "golemnet/log.h"

#include <stdlib.h>
#include <string.h>

/* The relay of the unit test's js vectors (seed 32 x 0x01). */
static const uint8_t RELAY_ID[] = {
    0x00, 0x24, 0x08, 0x01, 0x12, 0x20, 0x8a, 0x88, 0xe3, 0xdd, 0x74, 0x09, 0xf1,
    0x95, 0xfd, 0x52, 0xdb, 0x2d, 0x3c, 0xba, 0x5d, 0x72, 0xca, 0x67, 0x09, 0xbf,
    0x1d, 0x94, 0x12, 0x1b, 0xf3, 0x74, 0x88, 0x01, 0xb4, 0x0f, 0x6f, 0x5c};

static void check_voucher(const uint8_t *p, size_t n)
{
    gn_peer_id relay, peer;
    uint64_t exp;
    if (gn_peer_id_from_bytes(RELAY_ID, sizeof RELAY_ID, &relay) < 0)
        abort();
    int rc = gni_relay_voucher_open(p, n, &relay, &peer, &exp);
    if (rc != 0 && rc != GN_EBADSIG && rc != GN_EPEERID && rc != GN_EPROTO &&
        rc != GN_EBADKEY && rc != GN_ENOMEM)
        abort();
    if (rc == 0 && (peer.len == 0 || peer.len > GN_PEER_ID_MAX_BYTES))
        abort();
}

/* Skips the length prefix of @frame; returns the body offset. */
static size_t body_at(const uint8_t *frame, size_t n)
{
    size_t hl = 0;
    while (hl < n && (frame[hl] & 0x80))
        hl++;
    return hl + 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool stop = data[0] & 1;
    if (data[0] & 2) {
        check_voucher(data + 1, size - 1);
        return 0;
    }
    gni_relay_msg m;
    int rc = gni_relay_msg_decode(stop, size > 1 ? data + 1 : NULL, size - 1, &m);
    if (rc == GN_ENOMEM)
        return 0;
    if (rc < 0) {
        if (rc != GN_EPROTO || m.npeer_addrs || m.nrsv_addrs || m.voucher)
            abort();
        return 0;
    }
    if (m.npeer_addrs > GNI_RELAY_MAX_ADDRS || m.nrsv_addrs > GNI_RELAY_MAX_ADDRS ||
        m.stop != stop || m.type < 0 || m.type > (stop ? 1 : 2) || (stop && m.has_reservation))
        abort();
    uint8_t *a = NULL, *b = NULL;
    size_t al = 0, bl = 0;
    rc = gni_relay_msg_encode(&m, &a, &al);
    gni_relay_msg_clear(&m);
    if (rc == GN_ENOMEM)
        return 0;
    if (rc < 0)
        abort(); /* a decoded message always encodes */
    size_t h = body_at(a, al);
    gni_relay_msg again;
    rc = gni_relay_msg_decode(stop, a + h, al - h, &again);
    if (rc == 0) {
        rc = gni_relay_msg_encode(&again, &b, &bl);
        gni_relay_msg_clear(&again);
    }
    if (rc == 0 && (al != bl || memcmp(a, b, al) != 0))
        abort();
    if (rc < 0 && rc != GN_ENOMEM)
        abort();
    gn_free(a);
    gn_free(b);
    return 0;
}
