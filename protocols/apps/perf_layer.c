/*
 * The /perf/1.0.0 protocol component: serves inbound perf streams (a client
 * may ask for unbounded work, so it runs only when the node's protocols
 * include GN_NODE_PROTO_PERF), and the client side, gn_channel_perf().
 * Spec: docs/protocols/apps.md "perf" (libp2p perf).
 */
#include "golemnet/node.h"
#include "golemnet/protocol.h"
#include "golemnet/registry.h"

#include "gni.h"

#include "perf.h"

static void perf_on_stream(gn_protocol *p, gn_stream *s, const gn_protocol_stream_info *info)
{
    (void)p, (void)info;
    if (gni_perf_serve(s, NULL, NULL) < 0) {
        gn_stream_reset(s, NULL, NULL);
    }
}

static const gn_protocol_ops perf_ops = {
    .abi = GN_PROTOCOL_ABI,
    .name = GNI_PERF_PROTOCOL_ID,
    .flags = GN_LAYER_F_LIMITED_OK,
    .on_stream = perf_on_stream,
    .node_bit = GN_NODE_PROTO_PERF,
};

int gn_protocol_perf_register(gn_registry *reg);
int gn_protocol_perf_register(gn_registry *reg)
{
    return gn_registry_add(reg, GN_LAYER_PROTOCOL, (const gn_layer_ops *)&perf_ops);
}

/* ---- the client: gn_channel_perf() ---- */

typedef struct perf_req {
    gn_channel *ch; /* held */
    gn_channel_perf_cb cb;
    void *arg;
    uint64_t upload, download;
} perf_req;

static void perf_req_end(perf_req *p, int status, double up, double down)
{
    p->cb(p->arg, gn_channel_map_status(p->ch, status), up, down);
    gn_channel_rele(p->ch);
    gn_free(p);
}

static void perf_result(void *arg, int status, double upload_s, double download_s)
{
    perf_req_end(arg, status, upload_s, download_s);
}

static void perf_opened(void *arg, int status, gn_stream *s)
{
    perf_req *p = arg;
    if (status == 0 && (status = gni_perf_request(s, p->upload, p->download, perf_result, p)) < 0) {
        gn_stream_reset(s, NULL, NULL);
    }
    if (status < 0) {
        perf_req_end(p, status, 0, 0);
    }
}

int gn_channel_perf(gn_channel *ch, uint64_t upload_bytes, uint64_t download_bytes,
                    gn_channel_perf_cb cb, void *arg)
{
    if (!ch || !cb || !gn_loop_on_thread(gn_host_loop(gn_channel_host(ch)))) {
        return GN_EINVAL;
    }
    perf_req *p = gn_calloc(1, sizeof *p);
    if (!p) {
        return GN_ENOMEM;
    }
    p->ch = gn_channel_hold(ch);
    p->cb = cb;
    p->arg = arg;
    p->upload = upload_bytes;
    p->download = download_bytes;
    int rc = gn_channel_open_stream(ch, GNI_PERF_PROTOCOL_ID, perf_opened, p);
    if (rc < 0) {
        gn_channel_rele(p->ch);
        gn_free(p);
    }
    return rc;
}
