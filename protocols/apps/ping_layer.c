/*
 * The /ipfs/ping/1.0.0 protocol component: answers inbound ping streams
 * (GN_NODE_PROTO_PING, on by default), and the client side,
 * gn_channel_ping(). Spec: libp2p/specs ping/ping.md.
 */
#include "golemnet/node.h"
#include "golemnet/protocol.h"
#include "golemnet/registry.h"

#include "gni.h"

#include "ping.h"

#include <string.h>

static void ping_on_stream(gn_protocol *p, gn_stream *s, const gn_protocol_stream_info *info)
{
    (void)p, (void)info;
    if (gni_ping_serve(s, NULL, NULL) < 0) {
        gn_stream_reset(s, NULL, NULL);
    }
}

static const gn_protocol_ops ping_ops = {
    .abi = GN_PROTOCOL_ABI,
    .name = GNI_PING_PROTOCOL_ID,
    .flags = GN_LAYER_F_LIMITED_OK,
    .on_stream = ping_on_stream,
    .node_bit = GN_NODE_PROTO_PING,
};

int gn_protocol_ping_register(gn_registry *reg);
int gn_protocol_ping_register(gn_registry *reg)
{
    return gn_registry_add(reg, GN_LAYER_PROTOCOL, (const gn_layer_ops *)&ping_ops);
}

/* ---- the client: gn_channel_ping() ---- */

typedef struct ping_req {
    gn_channel *ch; /* held */
    gn_channel_ping_cb cb;
    void *arg;
    gni_pinger *pinger;
} ping_req;

/* Reports to the callback, or as a GN_NODE_EV_PING event without one. */
static void ping_end(ping_req *p, int status, gn_time rtt)
{
    gn_channel *ch = p->ch;
    status = gn_channel_map_status(ch, status);
    if (status == 0) {
        gn_channel_record_rtt(ch, rtt);
    }
    if (p->cb) {
        p->cb(p->arg, status, status == 0 ? rtt : 0);
    } else {
        gn_channel_info info;
        gn_channel_state_get(ch, &info);
        gn_node_event ev;
        memset(&ev, 0, sizeof ev);
        ev.type = GN_NODE_EV_PING;
        ev.status = status;
        ev.channel_id = info.id;
        ev.peer = info.remote_peer;
        ev.rtt = status == 0 ? rtt : 0;
        gn_host_emit_event(gn_channel_host(ch), &ev);
    }
    gn_channel_rele(ch);
    gn_free(p);
}

static void ping_result(void *arg, int status, gn_time rtt)
{
    ping_req *p = arg;
    gni_pinger_close(p->pinger);
    ping_end(p, status, rtt);
}

static void ping_opened(void *arg, int status, gn_stream *s)
{
    ping_req *p = arg;
    if (status == 0 && (status = gni_pinger_new(s, gn_rng_system(), &p->pinger)) < 0) {
        gn_stream_reset(s, NULL, NULL);
    }
    if (status == 0 && (status = gni_pinger_ping(p->pinger, 0, ping_result, p)) < 0) {
        gni_pinger_close(p->pinger);
    }
    if (status < 0) {
        ping_end(p, status, 0);
    }
}

int gn_channel_ping(gn_channel *ch, gn_channel_ping_cb cb, void *arg)
{
    if (!ch || !gn_loop_on_thread(gn_host_loop(gn_channel_host(ch)))) {
        return GN_EINVAL;
    }
    ping_req *p = gn_calloc(1, sizeof *p);
    if (!p) {
        return GN_ENOMEM;
    }
    p->ch = gn_channel_hold(ch);
    p->cb = cb;
    p->arg = arg;
    int rc = gn_channel_open_stream(ch, GNI_PING_PROTOCOL_ID, ping_opened, p);
    if (rc < 0) {
        gn_channel_rele(p->ch);
        gn_free(p);
    }
    return rc;
}
