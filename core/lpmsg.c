/*
 * Unsigned-varint-length-prefixed messages (core/gni.h, gni_lp_reader):
 * the framing libp2p's protobuf protocols use on streams
 * (libp2p/specs relay/circuit-v2.md "Wire format", autonat, DCUtR).
 * Sans-I/O.
 */
#include "gni.h"

#include "golemnet/err.h"
#include "golemnet/log.h"
#include "golemnet/multiformats.h"

#include <string.h>

void gni_lp_reader_init(gni_lp_reader *r, size_t max)
{
    memset(r, 0, sizeof *r);
    gni_varint_rd_init(&r->vr, GNI_VARINT_MF);
    r->max = max;
}

void gni_lp_reader_clear(gni_lp_reader *r)
{
    gn_free(r->buf);
    gni_lp_reader_init(r, r->max);
}

int gni_lp_reader_feed(gni_lp_reader *r, const uint8_t *in, size_t len, size_t *consumed,
                       const uint8_t **msg, size_t *msg_len)
{
    size_t used = 0;
    *consumed = 0;
    if (r->done) {
        /* the previous message was not taken: start the next one */
        gni_lp_reader_clear(r);
    }
    while (!r->in_body && used < len) {
        uint64_t v = 0;
        int rc = gni_varint_rd_byte(&r->vr, in[used++], &v);
        if (rc < 0) {
            *consumed = used;
            return rc;
        }
        if (rc == 1) {
            if (v > r->max) {
                *consumed = used;
                return GN_EFRAMESIZE;
            }
            r->want = (size_t)v;
            r->in_body = true;
        }
    }
    if (r->in_body) {
        size_t take = r->want - r->have;
        if (take > len - used) {
            take = len - used;
        }
        if (r->have + take > r->cap) {
            /* grow with what arrived, never to the announced length alone */
            size_t cap = r->cap ? r->cap : 1024;
            while (cap < r->have + take) { /* bounded: doubles up to want */
                cap *= 2;
            }
            if (cap > r->want) {
                cap = r->want;
            }
            uint8_t *nb = gn_realloc(r->buf, cap);
            if (!nb) {
                *consumed = used;
                return GN_ENOMEM;
            }
            r->buf = nb;
            r->cap = cap;
        }
        if (take > 0) {
            memcpy(r->buf + r->have, in + used, take);
            r->have += take;
            used += take;
        }
        if (r->have == r->want) {
            r->done = true;
            *msg = r->buf;
            *msg_len = r->want;
            *consumed = used;
            return 1;
        }
    }
    *consumed = used;
    return 0;
}

size_t gni_lp_prefix(uint8_t out[10], size_t len)
{
    int n = gn_varint_encode((uint64_t)len, out, 10);
    return n > 0 ? (size_t)n : 0;
}
