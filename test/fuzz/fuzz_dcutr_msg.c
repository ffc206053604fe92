/*
 * Fuzzes the /libp2p/dcutr wire core (protocols/dcutr/dcutr_msg.c) and the
 * hole punch state machine (dcutr_core.c). The input is a stream of
 * length-prefixed messages, read with the varint framing the component
 * uses. Checks: a decoded message stays within the bounds (CONNECT or
 * SYNC, at most 16 addresses) and re-encodes to a frame that decodes to
 * the same addresses; both roles of the state machine take every decoded
 * message (and a clock step from each byte of its body) without leaving a
 * finished punch with a deadline, and stop after a bounded number of
 * actions.
 */
#include "dcutr_core.h"
#include "dcutr_msg.h"

#include "golemnet/err.h"

#include "gni.h"

#include <stdlib.h>
#include <string.h>

static void check_roundtrip(const gni_dcutr_msg *m)
{
    if ((m->type != GNI_DCUTR_CONNECT && m->type != GNI_DCUTR_SYNC) ||
        m->naddrs > GNI_DCUTR_ADDRS_MAX)
        abort();
    static uint8_t frame[GNI_DCUTR_FRAME_MAX];
    size_t len = 0;
    int rc = gni_dcutr_msg_encode(m->type, (const gn_multiaddr *const *)m->addrs, m->naddrs,
                                  frame, sizeof frame, &len);
    if (rc == GN_ETOOBIG)
        return; /* re-encoding may grow past 4 KiB only if the input was near it: fine */
    if (rc < 0)
        abort();
    gni_lp_reader r;
    gni_lp_reader_init(&r, GNI_DCUTR_MSG_MAX);
    size_t used = 0;
    const uint8_t *body = NULL;
    size_t blen = 0;
    if (gni_lp_reader_feed(&r, frame, len, &used, &body, &blen) != 1 || used != len)
        abort();
    gni_dcutr_msg again;
    if (gni_dcutr_msg_decode(body, blen, &again) < 0)
        abort();
    if (again.type != m->type || again.naddrs != m->naddrs)
        abort();
    for (size_t i = 0; i < m->naddrs; i++) {
        if (!gn_multiaddr_equal(again.addrs[i], m->addrs[i]))
            abort();
    }
    gni_dcutr_msg_clear(&again);
    gni_lp_reader_clear(&r);
}

static void drain(gni_dcutr_core *c)
{
    gni_dcutr_action a;
    int n = 0;
    while (gni_dcutr_core_next(c, &a)) {
        if (++n > 16)
            abort(); /* the queue holds four; each input adds at most three */
        if (a.kind == GNI_DCUTR_ACT_DIAL) {
            gn_multiaddr *const *addrs;
            size_t k = gni_dcutr_core_peer_addrs(c, &addrs);
            for (size_t i = 0; i < k; i++)
                if (!addrs[i])
                    abort();
        }
    }
    if (gni_dcutr_core_done(c) && gni_dcutr_core_deadline(c) != GN_TIME_INFINITY)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gni_dcutr_core roles[2];
    gn_time now = 1000 * GN_S;
    gni_dcutr_core_init(&roles[0], GNI_DCUTR_ROLE_B, NULL, now);
    gni_dcutr_core_init(&roles[1], GNI_DCUTR_ROLE_A, NULL, now);
    drain(&roles[0]);
    drain(&roles[1]);
    gni_lp_reader r;
    gni_lp_reader_init(&r, GNI_DCUTR_MSG_MAX);
    unsigned turns = 0;
    while (size > 0 && turns++ < 64) {
        size_t used = 0;
        const uint8_t *body = NULL;
        size_t blen = 0;
        int rc = gni_lp_reader_feed(&r, data, size, &used, &body, &blen);
        data += used;
        size -= used;
        if (rc <= 0)
            break;
        gni_dcutr_msg m;
        rc = gni_dcutr_msg_decode(body, blen, &m);
        uint8_t step = blen ? body[0] : 0;
        gni_lp_reader_clear(&r);
        if (rc < 0)
            continue;
        check_roundtrip(&m);
        now += (gn_time)step * GN_MS * 10;
        for (int k = 0; k < 2; k++) {
            gni_dcutr_core_on_timer(&roles[k], now);
            drain(&roles[k]);
            gni_dcutr_msg copy = {.type = m.type};
            for (size_t i = 0; i < m.naddrs; i++) {
                if (gn_multiaddr_dup(m.addrs[i], &copy.addrs[copy.naddrs]) == 0)
                    copy.naddrs++;
            }
            gni_dcutr_core_on_msg(&roles[k], &copy, now);
            gni_dcutr_msg_clear(&copy);
            drain(&roles[k]);
            if (step & 1) {
                gni_dcutr_core_on_dial(&roles[k], roles[k].attempt, (step & 2) ? 0 : GN_ECONNREFUSED,
                                       now);
                drain(&roles[k]);
            }
        }
        gni_dcutr_msg_clear(&m);
    }
    gni_lp_reader_clear(&r);
    for (int k = 0; k < 2; k++) {
        gni_dcutr_core_on_stream_end(&roles[k], GN_EEOF, now);
        gni_dcutr_core_on_timer(&roles[k], now + 3600 * GN_S);
        drain(&roles[k]);
        gni_dcutr_core_fini(&roles[k]);
    }
    return 0;
}
