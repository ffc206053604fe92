/* libp2p perf: sans-I/O state machine. See perf.h. */
#include "perf.h"

#include "gni.h"

#include <string.h>

void gni_perf_header_encode(uint64_t count, uint8_t out[GNI_PERF_HEADER_LEN])
{
    for (int i = GNI_PERF_HEADER_LEN - 1; i >= 0; i--) {
        out[i] = (uint8_t)(count & 0xff);
        count >>= 8;
    }
}

uint64_t gni_perf_header_decode(const uint8_t in[GNI_PERF_HEADER_LEN])
{
    uint64_t v = 0;
    for (int i = 0; i < GNI_PERF_HEADER_LEN; i++) {
        v = (v << 8) | in[i];
    }
    return v;
}

void gni_perf_server_init(gni_perf *p)
{
    memset(p, 0, sizeof *p);
    p->state = GNI_PERF_SRV_HEADER;
}

void gni_perf_client_init(gni_perf *p, uint64_t upload, uint64_t download)
{
    memset(p, 0, sizeof *p);
    p->state = GNI_PERF_CLI_HEADER;
    p->to_send = upload;
    p->to_recv = download;
    p->requested = download;
}

static int perf_fail(gni_perf *p, int err)
{
    p->state = GNI_PERF_FAILED;
    p->err = err;
    return err;
}

int gni_perf_client_header(gni_perf *p, uint8_t out[GNI_PERF_HEADER_LEN])
{
    if (p->state != GNI_PERF_CLI_HEADER) {
        return GN_ESTATE;
    }
    gni_perf_header_encode(p->requested, out);
    if (p->to_send == 0) {
        p->state = GNI_PERF_CLI_DOWNLOAD;
        return 1;
    }
    p->state = GNI_PERF_CLI_UPLOAD;
    return 0;
}

size_t gni_perf_send_budget(const gni_perf *p, size_t max)
{
    if (p->state != GNI_PERF_SRV_SEND && p->state != GNI_PERF_CLI_UPLOAD) {
        return 0;
    }
    return p->to_send < (uint64_t)max ? (size_t)p->to_send : max;
}

int gni_perf_sent(gni_perf *p, size_t n)
{
    if (p->state != GNI_PERF_SRV_SEND && p->state != GNI_PERF_CLI_UPLOAD) {
        return GN_ESTATE;
    }
    if ((uint64_t)n > p->to_send) {
        return GN_ERANGE;
    }
    p->to_send -= n;
    if (p->to_send > 0) {
        return 0;
    }
    p->state = p->state == GNI_PERF_CLI_UPLOAD ? GNI_PERF_CLI_DOWNLOAD : GNI_PERF_DONE;
    return 1;
}

int gni_perf_feed(gni_perf *p, const uint8_t *in, size_t len)
{
    switch (p->state) {
    case GNI_PERF_SRV_HEADER: {
        size_t take = GNI_MIN(len, GNI_PERF_HEADER_LEN - p->hdr_got);
        memcpy(p->hdr + p->hdr_got, in, take);
        p->hdr_got += take;
        if (p->hdr_got == GNI_PERF_HEADER_LEN) {
            p->requested = gni_perf_header_decode(p->hdr);
            p->state = GNI_PERF_SRV_DRAIN;
            p->received += len - take;
        }
        return 0;
    }
    case GNI_PERF_SRV_DRAIN:
        p->received += len;
        return 0;
    case GNI_PERF_CLI_DOWNLOAD:
        if ((uint64_t)len > p->to_recv) {
            return perf_fail(p, GN_EPROTO);
        }
        p->to_recv -= len;
        p->received += len;
        return 0;
    case GNI_PERF_FAILED:
        return p->err;
    case GNI_PERF_DONE:
        return len ? GN_ESTATE : 0;
    default: /* server sending (after EOF), client uploading: the peer spoke early */
        return len ? perf_fail(p, GN_EPROTO) : 0;
    }
}

int gni_perf_feed_eof(gni_perf *p)
{
    switch (p->state) {
    case GNI_PERF_SRV_HEADER:
        return perf_fail(p, GN_EPROTO);
    case GNI_PERF_SRV_DRAIN:
        p->state = GNI_PERF_SRV_SEND;
        p->to_send = p->requested;
        if (p->to_send == 0) {
            p->state = GNI_PERF_DONE; /* nothing to send: close at once */
        }
        return 0;
    case GNI_PERF_CLI_DOWNLOAD:
        if (p->to_recv != 0) {
            return perf_fail(p, GN_EPROTO);
        }
        p->state = GNI_PERF_DONE;
        return 0;
    case GNI_PERF_FAILED:
        return p->err;
    default:
        return perf_fail(p, GN_EPROTO);
    }
}
