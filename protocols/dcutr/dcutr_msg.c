/*
 * golemnet - /libp2p/dcutr wire core (dcutr_msg.h). protobuf-c does the
 * protobuf; this file bounds it and converts the addresses.
 * Spec: libp2p/specs relay/DCUtR.md "RPC messages".
 */
#include "dcutr_msg.h"

#include "golemnet/err.h"
#include "golemnet/log.h"

#include "dcutr.pb-c.h"
#include "gni.h"
#include "gni_pb.h"

#include <string.h>

const char *gni_dcutr_type_name(int type)
{
    switch (type) {
    case GNI_DCUTR_CONNECT:
        return "CONNECT";
    case GNI_DCUTR_SYNC:
        return "SYNC";
    default:
        return "?";
    }
}

void gni_dcutr_msg_clear(gni_dcutr_msg *m)
{
    if (!m) {
        return;
    }
    for (size_t i = 0; i < m->naddrs; i++) {
        gn_multiaddr_free(m->addrs[i]);
    }
    memset(m, 0, sizeof *m);
}

int gni_dcutr_msg_decode(const uint8_t *in, size_t len, gni_dcutr_msg *out)
{
    static const uint8_t empty[1];
    if (!out || (!in && len)) {
        return GN_EINVAL;
    }
    memset(out, 0, sizeof *out);
    if (len > GNI_DCUTR_MSG_MAX) {
        return GN_EFRAMESIZE;
    }
    /* At most 4 KiB of input: protobuf-c's allocations are bounded by it
     * (each ObsAddrs entry takes at least 2 input bytes). */
    gni_pb_alloc pa;
    gni_pb_alloc_init(&pa);
    Gnpb__Dcutr__HolePunch *pb = gnpb__dcutr__hole_punch__unpack(&pa.a, len, len ? in : empty);
    if (!pb) {
        return pa.oom ? GN_ENOMEM : GN_EPROTO;
    }
    int rc = 0;
    if (!pb->has_type || (pb->type != GNPB__DCUTR__HOLE_PUNCH__TYPE__CONNECT &&
                          pb->type != GNPB__DCUTR__HOLE_PUNCH__TYPE__SYNC)) {
        rc = GN_EPROTO;
        goto out;
    }
    out->type = (gni_dcutr_type)pb->type;
    for (size_t i = 0; i < pb->n_obsaddrs; i++) {
        gn_multiaddr *ma = NULL;
        if (out->naddrs == GNI_DCUTR_ADDRS_MAX) {
            out->nskipped++;
            continue;
        }
        int r = gn_multiaddr_from_bytes(pb->obsaddrs[i].data, pb->obsaddrs[i].len, &ma);
        if (r == GN_ENOMEM) {
            rc = r;
            goto out;
        }
        if (r < 0) {
            out->nskipped++;
            continue;
        }
        out->addrs[out->naddrs++] = ma;
    }
out:
    gnpb__dcutr__hole_punch__free_unpacked(pb, &pa.a);
    if (rc < 0) {
        gni_dcutr_msg_clear(out);
    }
    return rc;
}

int gni_dcutr_msg_encode(gni_dcutr_type type, const gn_multiaddr *const *addrs, size_t naddrs,
                         uint8_t *out, size_t cap, size_t *out_len)
{
    if (!out || !out_len || (type != GNI_DCUTR_CONNECT && type != GNI_DCUTR_SYNC) ||
        naddrs > GNI_DCUTR_ADDRS_MAX || (naddrs && !addrs)) {
        return GN_EINVAL;
    }
    ProtobufCBinaryData bins[GNI_DCUTR_ADDRS_MAX];
    for (size_t i = 0; i < naddrs; i++) {
        if (!addrs[i]) {
            return GN_EINVAL;
        }
        gn_slice b = gn_multiaddr_bytes(addrs[i]);
        bins[i].data = (uint8_t *)b.base;
        bins[i].len = b.len;
    }
    Gnpb__Dcutr__HolePunch pb = GNPB__DCUTR__HOLE_PUNCH__INIT;
    pb.has_type = 1;
    pb.type = (Gnpb__Dcutr__HolePunch__Type)type;
    pb.n_obsaddrs = naddrs;
    pb.obsaddrs = naddrs ? bins : NULL;
    size_t mlen = gnpb__dcutr__hole_punch__get_packed_size(&pb);
    if (mlen > GNI_DCUTR_MSG_MAX) {
        return GN_ETOOBIG;
    }
    uint8_t pre[10];
    size_t plen = gni_lp_prefix(pre, mlen);
    if (cap < plen + mlen) {
        return GN_ENOSPC;
    }
    memcpy(out, pre, plen);
    size_t packed = gnpb__dcutr__hole_punch__pack(&pb, out + plen);
    if (packed != mlen) {
        return GN_EINTERNAL;
    }
    *out_len = plen + mlen;
    return 0;
}
