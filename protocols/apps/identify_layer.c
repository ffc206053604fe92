/*
 * The identify protocol component (/ipfs/id/1.0.0 and /ipfs/id/push/1.0.0):
 * answers identify requests with what the host says of itself, asks every
 * newly connected peer (GN_HOST_EV_CONNECTED), takes pushed updates, and
 * records the results in the host's peer store. Each result is reported to
 * the application as GN_NODE_EV_IDENTIFY and to other components as
 * GN_HOST_EV_IDENTIFIED. Runs when the node's protocols include
 * GN_NODE_PROTO_IDENTIFY (the default). The node does not send identify
 * push. Spec: libp2p/specs identify/README.md; docs/protocols/apps.md.
 */
#include "golemnet/node.h"
#include "golemnet/protocol.h"
#include "golemnet/registry.h"

#include "gni.h"

#include "identify.h"

#include <stdio.h>
#include <string.h>

#define ID_LOG "identify"

typedef struct idp {
    gn_protocol *p;
    gn_host_sub *sub;
    bool running;
} idp;

/* One exchange with one peer: holds the channel until the result. */
typedef struct id_req {
    idp *st;
    gn_channel *ch; /* held */
    gn_peer_id peer;
} id_req;

static void id_record(gn_host *h, gn_channel *ch, const gn_peer_id *peer, int status,
                      gni_identify_result *res)
{
    gn_channel_info info;
    gn_channel_state state = gn_channel_state_get(ch, &info);
    gn_node_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = GN_NODE_EV_IDENTIFY;
    ev.channel_id = info.id;
    ev.peer = *peer;
    ev.status = gn_channel_map_status(ch, status);
    if (status == 0 && res) {
        gn_host_peer_set_protocols(h, peer, (const char *const *)res->protocols,
                                   res->protocol_cnt);
        for (size_t i = 0; i < res->listen_addr_cnt; i++) {
            const gn_multiaddr *a[1] = {res->listen_addrs[i]};
            gn_host_peer_add_addrs(h, peer, a, 1, GN_ADDR_TTL_PERMANENT, GN_ADDR_SRC_IDENTIFY);
        }
        gn_host_peer_set_identified(h, peer, res->agent_version, res->observed_addr);
        snprintf(ev.protocol, sizeof ev.protocol, "%s",
                 res->agent_version ? res->agent_version : "");
        if (res->observed_addr &&
            gn_multiaddr_to_string(res->observed_addr, ev.addr, sizeof ev.addr) < 0) {
            ev.addr[0] = '\0';
        }
    }
    if (state == GN_CHANNEL_OPEN || status == 0) {
        gn_host_emit_event(h, &ev);
    }
    if (status == 0 && res) {
        gn_host_event hev = {.type = GN_HOST_EV_IDENTIFIED, .ch = ch, .peer = peer};
        gn_host_publish(h, &hev);
    }
}

static id_req *id_req_new(idp *st, gn_channel *ch)
{
    id_req *r = gn_calloc(1, sizeof *r);
    if (!r) {
        return NULL;
    }
    gn_channel_info info;
    gn_channel_state_get(ch, &info);
    r->st = st;
    r->ch = gn_channel_hold(ch);
    r->peer = info.remote_peer;
    return r;
}

static void id_req_free(id_req *r)
{
    gn_channel_rele(r->ch);
    gn_free(r);
}

/* ---- asking a new peer ---- */

static void id_result(void *arg, int status, gni_identify_result *res)
{
    id_req *r = arg;
    if (status < 0) {
        GN_LOG(GN_LOG_INFO, ID_LOG, "identify failed: %s", gn_err_name(status));
    }
    id_record(r->st->p->host, r->ch, &r->peer, status, res);
    gni_identify_result_free(res);
    id_req_free(r);
}

static void id_opened(void *arg, int status, gn_stream *s)
{
    id_req *r = arg;
    if (status == 0 && (status = gni_identify_request(s, &r->peer, 0, id_result, r)) < 0) {
        gn_stream_reset(s, NULL, NULL);
    }
    if (status < 0) {
        id_record(r->st->p->host, r->ch, &r->peer, status, NULL);
        id_req_free(r);
    }
}

static void id_on_connected(void *arg, const gn_host_event *ev)
{
    idp *st = arg;
    if (!st->running || !ev->ch) {
        return;
    }
    id_req *r = id_req_new(st, ev->ch);
    if (!r) {
        return;
    }
    int rc = gn_channel_open_stream(ev->ch, GNI_IDENTIFY_PROTOCOL_ID, id_opened, r);
    if (rc < 0) {
        id_record(st->p->host, r->ch, &r->peer, rc, NULL);
        id_req_free(r);
    }
}

/* ---- answering ---- */

static void id_on_stream(gn_protocol *p, gn_stream *s, const gn_protocol_stream_info *sinfo)
{
    gn_host *h = p->host;
    (void)sinfo;
    uint8_t pub[GN_ED25519_PUBLICKEYBYTES];
    uint8_t pb[64];
    gn_identity_public_key(gn_host_identity(h), pub);
    int pblen = gn_pubkey_encode_ed25519(pub, pb, sizeof pb);
    const gn_multiaddr *addrs[GNI_IDENTIFY_MAX_ADDRS];
    size_t naddrs = gn_host_listen_addrs(h, addrs, GNI_ARRAY_LEN(addrs));
    const char *protos[GNI_IDENTIFY_MAX_PROTOCOLS];
    size_t nprotos = gn_host_protocols(h, protos, GNI_ARRAY_LEN(protos));
    gni_identify_info info = {
        .protocol_version = NULL,
        .agent_version = gn_host_agent_version(h),
        .public_key = gn_slice_of(pb, pblen > 0 ? (size_t)pblen : 0),
        .listen_addrs = addrs,
        .listen_addr_cnt = naddrs,
        .observed_addr = NULL,
        .protocols = protos,
        .protocol_cnt = nprotos,
        .fin_delay = GNI_IDENTIFY_FIN_DELAY, /* js-libp2p 3.x: see identify.h */
    };
    if (gni_identify_serve(s, &info, NULL, NULL) < 0) {
        gn_stream_reset(s, NULL, NULL);
    }
}

static void id_push_result(void *arg, int status, gni_identify_result *res)
{
    id_req *r = arg;
    if (status == 0 && res) {
        id_record(r->st->p->host, r->ch, &r->peer, 0, res);
    }
    gni_identify_result_free(res);
    id_req_free(r);
}

static void id_on_push(void *arg, gn_channel *ch, gn_stream *s, const char *protocol_id)
{
    idp *st = arg;
    (void)protocol_id;
    id_req *r = id_req_new(st, ch);
    if (!r || gni_identify_recv_push(s, &r->peer, 0, id_push_result, r) < 0) {
        gn_stream_reset(s, NULL, NULL);
        if (r) {
            id_req_free(r);
        }
    }
}

static int id_start(gn_protocol *p)
{
    idp *st = p->state;
    st->p = p;
    int rc = gn_host_set_handler_ex(p->host, GNI_IDENTIFY_PUSH_PROTOCOL_ID,
                                    GN_HOST_HANDLER_LIMITED_OK, id_on_push, st);
    if (rc < 0) {
        return rc;
    }
    rc = gn_host_subscribe(p->host, GN_HOST_EV_CONNECTED, id_on_connected, st, &st->sub);
    if (rc < 0) {
        gn_host_remove_handler(p->host, GNI_IDENTIFY_PUSH_PROTOCOL_ID);
        return rc;
    }
    st->running = true;
    return 0;
}

static void id_stop(gn_protocol *p)
{
    idp *st = p->state;
    if (!st->running) {
        return;
    }
    st->running = false;
    gn_host_unsubscribe(st->sub);
    st->sub = NULL;
    gn_host_remove_handler(p->host, GNI_IDENTIFY_PUSH_PROTOCOL_ID);
}

static const gn_protocol_ops identify_ops = {
    .abi = GN_PROTOCOL_ABI,
    .name = GNI_IDENTIFY_PROTOCOL_ID,
    .flags = GN_LAYER_F_LIMITED_OK,
    .state_size = sizeof(idp),
    .start = id_start,
    .stop = id_stop,
    .on_stream = id_on_stream,
    .node_bit = GN_NODE_PROTO_IDENTIFY,
};

int gn_protocol_id_register(gn_registry *reg);
int gn_protocol_id_register(gn_registry *reg)
{
    return gn_registry_add(reg, GN_LAYER_PROTOCOL, (const gn_layer_ops *)&identify_ops);
}
