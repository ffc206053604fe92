/*
 * Fuzzes the control protocol's wire core (ipc/ctl_wire.c). Byte 0: low
 * nibble picks a split size for feeding, bit 4 picks the input kind:
 * 0 = a stream of framed Requests (the daemon's reader), 1 = one
 * ServerMessage body (the client's decoder). Checks: the outcome is the
 * same fed whole or in pieces; every decoded message re-encodes within the
 * bounds, and decoding that encoding and encoding again gives the same
 * bytes.
 */
#include "ctl_wire.h"

#include "golemnet/err.h"

#include <stdlib.h>
#include <string.h>

#define MAXMSG 64

typedef struct run {
    uint32_t sums[MAXMSG];
    int codes[MAXMSG];
    size_t cnt;
    int status;
} run;

static uint32_t checksum(const uint8_t *p, size_t n)
{
    uint32_t s = 2166136261u;
    for (size_t i = 0; i < n; i++)
        s = (s ^ p[i]) * 16777619u;
    return s;
}

static uint32_t reencode_request(const Gnctl__Request *r)
{
    uint8_t *f1 = NULL, *f2 = NULL;
    size_t l1 = 0, l2 = 0;
    if (gni_ctl_encode(&r->base, &f1, &l1) != 0)
        abort(); /* what decoded within the bounds encodes within them */
    gni_ctl_reader rd;
    gni_ctl_reader_init(&rd);
    size_t used = 0;
    Gnctl__Request *again = NULL;
    if (gni_ctl_reader_feed(&rd, f1, l1, &used, &again, NULL, NULL, 0) != 1 || used != l1)
        abort();
    if (gni_ctl_encode(&again->base, &f2, &l2) != 0 || l1 != l2 || memcmp(f1, f2, l1) != 0)
        abort();
    uint32_t s = checksum(f1, l1);
    gni_ctl_request_free(again);
    gni_ctl_reader_fini(&rd);
    gn_free(f1);
    gn_free(f2);
    return s;
}

static void run_requests(const uint8_t *p, size_t n, size_t split, run *out)
{
    gni_ctl_reader rd;
    gni_ctl_reader_init(&rd);
    memset(out, 0, sizeof *out);
    size_t off = 0;
    while (off < n && out->cnt < MAXMSG) {
        size_t take = n - off;
        if (split && take > split)
            take = split;
        size_t used = 0;
        Gnctl__Request *r = NULL;
        uint64_t id = 0;
        char err[128];
        int rc = gni_ctl_reader_feed(&rd, p + off, take, &used, &r, &id, err, sizeof err);
        if (used > take)
            abort();
        off += used;
        if (rc == 1) {
            out->codes[out->cnt] = 1;
            out->sums[out->cnt++] = reencode_request(r);
            gni_ctl_request_free(r);
        } else if (rc == GN_EFRAMESIZE || rc == GN_EBADFRAME || rc == GN_ENOMEM) {
            out->status = rc; /* framing lost: the connection would close */
            break;
        } else if (rc < 0) {
            if (r)
                abort();
            out->codes[out->cnt] = rc;
            out->sums[out->cnt++] = (uint32_t)id;
        } else if (used == 0 && take > 0) {
            abort(); /* no progress */
        }
    }
    gni_ctl_reader_fini(&rd);
}

static void server_body(const uint8_t *p, size_t n)
{
    Gnctl__ServerMessage *m = NULL;
    int rc = gni_ctl_server_msg_decode(p, n, &m, NULL, 0);
    if (rc < 0) {
        if (m)
            abort();
        return;
    }
    uint8_t *f1 = NULL, *f2 = NULL;
    size_t l1 = 0, l2 = 0;
    if (gni_ctl_encode(&m->base, &f1, &l1) != 0)
        abort();
    /* skip the prefix */
    uint64_t len = 0;
    int pl = gni_varint_decode_kind(f1, l1, GNI_VARINT_MF, &len);
    if (pl <= 0 || (size_t)pl + len != l1)
        abort();
    Gnctl__ServerMessage *again = NULL;
    if (gni_ctl_server_msg_decode(f1 + pl, (size_t)len, &again, NULL, 0) != 0)
        abort();
    if (gni_ctl_encode(&again->base, &f2, &l2) != 0 || l1 != l2 || memcmp(f1, f2, l1) != 0)
        abort();
    gni_ctl_server_msg_free(again);
    gni_ctl_server_msg_free(m);
    gn_free(f1);
    gn_free(f2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t ctl = data[0];
    data++;
    size--;
    if (ctl & 0x10) {
        server_body(data, size);
        return 0;
    }
    static const size_t splits[16] = {0, 1, 2, 3, 4, 5, 7, 8, 13, 16, 31, 64, 100, 255, 1024, 4096};
    run *whole = malloc(sizeof *whole), *parts = malloc(sizeof *parts);
    if (!whole || !parts)
        abort();
    run_requests(data, size, 0, whole);
    run_requests(data, size, splits[ctl & 15], parts);
    if (whole->status != parts->status || whole->cnt != parts->cnt ||
        memcmp(whole->sums, parts->sums, whole->cnt * sizeof whole->sums[0]) != 0 ||
        memcmp(whole->codes, parts->codes, whole->cnt * sizeof whole->codes[0]) != 0)
        abort();
    free(whole);
    free(parts);
    return 0;
}
