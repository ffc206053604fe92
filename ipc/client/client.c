/*
 * The IPC client's calls (include/golemnet/ipc.h) as golemnet control
 * protocol requests (docs/protocols/control.md, ipc/proto/control.proto)
 * and their responses, through the protobuf-c generated code. No I/O:
 * client_uv.c sends, waits and reads (gni_ipcc.h).
 */
#include "gni_ipcc.h"

#include "golemnet/err.h"
#include "golemnet/log.h"
#include "ctl_wire.h"
#include "gni.h"
#include "gni_ipc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ result types */

void gn_ipc_strv_free(gn_ipc_strv *sv)
{
    if (!sv) {
        return;
    }
    for (size_t i = 0; i < sv->n; i++) {
        gn_free(sv->v[i]);
    }
    gn_free(sv->v);
    sv->v = NULL;
    sv->n = 0;
}

void gn_ipc_peer_info_free(gn_ipc_peer_info *info)
{
    if (!info) {
        return;
    }
    gn_ipc_strv_free(&info->addrs);
    gn_ipc_strv_free(&info->protocols);
}

void gn_ipc_dht_result_free(gn_ipc_dht_result *r)
{
    if (!r) {
        return;
    }
    gn_free(r->value);
    for (size_t i = 0; i < r->npeers; i++) {
        gn_ipc_strv_free(&r->peers[i].addrs);
    }
    gn_free(r->peers);
    memset(r, 0, sizeof *r);
}

/* ------------------------------------------------------------------ codec */

int gni_ipcc_encode(void *req, uint64_t id, uint8_t **out, size_t *len)
{
    Gnctl__Request *r = req;
    r->id = id;
    return gni_ctl_encode(&r->base, out, len); /* bounds checked as the daemon checks them */
}

void gni_ipcc_msg_free(void *msg)
{
    if (msg) {
        gni_ctl_server_msg_free(msg);
    }
}

static void ipcc_copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

static void ipcc_peer(const char *s, gn_peer_id *out)
{
    memset(out, 0, sizeof *out);
    if (s && s[0] && gn_peer_id_parse(s, strlen(s), out) < 0) {
        memset(out, 0, sizeof *out);
    }
}

int gni_ipcc_decode(const uint8_t *msg, size_t len, gni_ipcc_in *in)
{
    Gnctl__ServerMessage *m = NULL;
    memset(in, 0, sizeof *in);
    int drc = gni_ctl_server_msg_decode(msg, len, &m, NULL, 0);
    if (drc == GN_ENOTSUP) {
        in->kind = GNI_IPCC_IN_SKIP; /* a newer daemon's kind of message */
        return 0;
    }
    if (drc < 0) {
        return drc == GN_ENOMEM ? GN_ENOMEM : GN_EPROTO;
    }
    if (m->msg_case == GNCTL__SERVER_MESSAGE__MSG_RESPONSE && m->response) {
        in->kind = GNI_IPCC_IN_RESPONSE;
        in->id = m->response->id;
        in->msg = m;
        return 0;
    }
    if (m->msg_case != GNCTL__SERVER_MESSAGE__MSG_EVENT || !m->event) {
        gni_ctl_server_msg_free(m);
        return GN_EPROTO;
    }
    const Gnctl__Event *e = m->event;
    gn_node_event *ev = &in->ev;
    in->kind = e->type == GNCTL__EVENT_TYPE__EV_DISCONNECTING ? GNI_IPCC_IN_BYE
                                                               : GNI_IPCC_IN_EVENT;
    /* the daemon's EV_LOST (it could not send an event) is the client's GN_IPC_EV_LOST */
    bool lost = e->type == GNCTL__EVENT_TYPE__EV_LOST;
    ev->type = in->kind == GNI_IPCC_IN_BYE ? GN_IPC_EV_DISCONNECTED
               : lost                      ? GN_IPC_EV_LOST
                                           : (gn_node_event_type)e->type;
    ev->status = e->status;
    ev->request_id = e->request_id;
    ev->channel_id = e->channel_id;
    ipcc_peer(e->peer, &ev->peer);
    ev->rtt = e->rtt_ns;
    ev->count = e->count;
    ipcc_copy(ev->addr, sizeof ev->addr,
              in->kind == GNI_IPCC_IN_BYE || lost ? e->reason : e->addr);
    ipcc_copy(ev->protocol, sizeof ev->protocol, e->protocol);
    int rc = 0;
    if (e->type == GNCTL__EVENT_TYPE__EV_MESSAGE) {
        ev->message = gn_rcbuf_new(e->data.data, e->data.len);
        if (!ev->message) {
            rc = GN_ENOMEM;
        }
    }
    gni_ctl_server_msg_free(m);
    return rc;
}

int gni_ipcc_response_status(const void *msg, char *err, size_t err_len)
{
    const Gnctl__ServerMessage *m = msg;
    const Gnctl__Response *r = m->response;
    ipcc_copy(err, err_len, r->error);
    if (r->status > 0) {
        return GN_EPROTO; /* not a gn_err */
    }
    return r->status;
}

int gni_ipcc_decode_stream_info(const uint8_t *msg, size_t len, gn_ipc_stream_info *info)
{
    Gnctl__StreamInfo *si = NULL;
    if (gni_ctl_stream_info_decode(msg, len, &si, NULL, 0) < 0) {
        return GN_EPROTO;
    }
    memset(info, 0, sizeof *info);
    info->channel_id = si->channel_id;
    ipcc_peer(si->peer, &info->peer);
    ipcc_copy(info->protocol, sizeof info->protocol, si->protocol);
    ipcc_copy(info->remote_addr, sizeof info->remote_addr, si->addr);
    gni_ctl_stream_info_free(si);
    return 0;
}

/* ------------------------------------------------------------------ calls */

/* The response of a decoded message (the call succeeded: it is one). */
static const Gnctl__Response *ipcc_resp(void *msg)
{
    return ((Gnctl__ServerMessage *)msg)->response;
}

/* Sends @r, waits; *@msg the response (free with gni_ipcc_msg_free()). */
static int ipcc_call(gn_ipc_client *c, Gnctl__Request *r, void **msg)
{
    return gni_ipcc_call(c, r, msg, gni_ipcc_timeout(c), false);
}

/* A result member the daemon must send with status 0; GN_EPROTO when absent. */
static int ipcc_want(gn_ipc_client *c, void *msg, Gnctl__Response__ResultCase rc_case)
{
    if (ipcc_resp(msg)->result_case != rc_case) {
        gni_ipcc_set_error(c, "the daemon's response lacks its result (field %d)", (int)rc_case);
        gni_ipcc_msg_free(msg);
        return GN_EPROTO;
    }
    return 0;
}

static int ipcc_strv_copy(gn_ipc_strv *sv, char **v, size_t n)
{
    sv->v = NULL;
    sv->n = 0;
    if (n == 0) {
        return 0;
    }
    sv->v = gn_calloc(n, sizeof *sv->v);
    if (!sv->v) {
        return GN_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        sv->v[i] = gn_strdup(v[i] ? v[i] : "");
        if (!sv->v[i]) {
            gn_ipc_strv_free(sv);
            return GN_ENOMEM;
        }
        sv->n++;
    }
    return 0;
}

int gni_ipcc_hello(gn_ipc_client *c, char *version, size_t version_len)
{
    Gnctl__Request r = GNCTL__REQUEST__INIT;
    Gnctl__HelloRequest h = GNCTL__HELLO_REQUEST__INIT;
    char client[64];
    snprintf(client, sizeof client, "golemnet-ipc-client/%s", gn_version());
    h.version = GN_IPC_PROTOCOL_VERSION;
    h.client = client;
    r.op_case = GNCTL__REQUEST__OP_HELLO;
    r.hello = &h;
    void *msg = NULL;
    int rc = ipcc_call(c, &r, &msg);
    if (rc < 0 || (rc = ipcc_want(c, msg, GNCTL__RESPONSE__RESULT_HELLO)) < 0) {
        return rc;
    }
    const Gnctl__HelloResponse *hr = ipcc_resp(msg)->hello;
    if (hr->version != GN_IPC_PROTOCOL_VERSION) {
        gni_ipcc_set_error(c, "the daemon speaks control protocol version %u, this client %u",
                           hr->version, GN_IPC_PROTOCOL_VERSION);
        rc = GN_EVERSION;
    }
    ipcc_copy(version, version_len, hr->daemon_version);
    gni_ipcc_msg_free(msg);
    return rc;
}

int gn_ipc_identify(gn_ipc_client *c, gn_peer_id *peer, gn_ipc_strv *addrs)
{
    if (!c || !peer) {
        return GN_EINVAL;
    }
    Gnctl__Request r = GNCTL__REQUEST__INIT;
    Gnctl__IdentifyRequest q = GNCTL__IDENTIFY_REQUEST__INIT;
    r.op_case = GNCTL__REQUEST__OP_IDENTIFY;
    r.identify = &q;
    void *msg = NULL;
    int rc = ipcc_call(c, &r, &msg);
    if (rc < 0 || (rc = ipcc_want(c, msg, GNCTL__RESPONSE__RESULT_IDENTIFY)) < 0) {
        return rc;
    }
    const Gnctl__IdentifyResponse *ir = ipcc_resp(msg)->identify;
    ipcc_peer(ir->peer, peer);
    if (addrs) {
        rc = ipcc_strv_copy(addrs, ir->addrs, ir->n_addrs);
    }
    gni_ipcc_msg_free(msg);
    return rc;
}

int gn_ipc_configure(gn_ipc_client *c, const char *name, const char *value)
{
    if (!c || !name || !value) {
        return GN_EINVAL;
    }
    Gnctl__Request r = GNCTL__REQUEST__INIT;
    Gnctl__ConfigureRequest q = GNCTL__CONFIGURE_REQUEST__INIT;
    q.name = (char *)name;
    q.value = (char *)value;
    r.op_case = GNCTL__REQUEST__OP_CONFIGURE;
    r.configure = &q;
    return ipcc_call(c, &r, NULL);
}

int gn_ipc_listen(gn_ipc_client *c, const char *multiaddr, char *bound, size_t bound_len)
{
    if (!c || !multiaddr) {
        return GN_EINVAL;
    }
    Gnctl__Request r = GNCTL__REQUEST__INIT;
    Gnctl__ListenRequest q = GNCTL__LISTEN_REQUEST__INIT;
    q.addr = (char *)multiaddr;
    r.op_case = GNCTL__REQUEST__OP_LISTEN;
    r.listen = &q;
    void *msg = NULL;
    int rc = ipcc_call(c, &r, &msg);
    if (rc < 0 || (rc = ipcc_want(c, msg, GNCTL__RESPONSE__RESULT_LISTEN)) < 0) {
        return rc;
    }
    if (bound && bound_len) {
        ipcc_copy(bound, bound_len, ipcc_resp(msg)->listen->addr);
    }
    gni_ipcc_msg_free(msg);
    return 0;
}

int gn_ipc_unlisten(gn_ipc_client *c, const char *multiaddr)
{
    if (!c || !multiaddr) {
        return GN_EINVAL;
    }
    Gnctl__Request r = GNCTL__REQUEST__INIT;
    Gnctl__UnlistenRequest q = GNCTL__UNLISTEN_REQUEST__INIT;
    q.addr = (char *)multiaddr;
    r.op_case = GNCTL__REQUEST__OP_UNLISTEN;
    r.unlisten = &q;
    return ipcc_call(c, &r, NULL);
}

static void ipcc_chan_info(const Gnctl__ChannelInfo *ci, gn_channel_info *info)
{
    memset(info, 0, sizeof *info);
    info->id = ci->channel_id;
    info->state = (gn_channel_state)ci->state;
    info->direction = ci->inbound ? GN_DIR_INBOUND : GN_DIR_OUTBOUND;
    ipcc_peer(ci->peer, &info->remote_peer);
    ipcc_copy(info->local_addr, sizeof info->local_addr, ci->local_addr);
    ipcc_copy(info->remote_addr, sizeof info->remote_addr, ci->remote_addr);
    ipcc_copy(info->security, sizeof info->security, ci->security);
    ipcc_copy(info->muxer, sizeof info->muxer, ci->muxer);
    info->limited = ci->limited;
}

int gn_ipc_dial(gn_ipc_client *c, const char *target, gn_ipc_dial_result *res)
{
    if (!c || !target) {
        return GN_EINVAL;
    }
    Gnctl__Request r = GNCTL__REQUEST__INIT;
    Gnctl__DialRequest q = GNCTL__DIAL_REQUEST__INIT;
    q.addr = (char *)target;
    r.op_case = GNCTL__REQUEST__OP_DIAL;
    r.dial = &q;
    void *msg = NULL;
    if (res) {
        memset(res, 0, sizeof *res);
    }
    int rc = gni_ipcc_call(c, &r, &msg, gni_ipcc_timeout(c), true);
    if (!msg) {
        return rc;
    }
    const Gnctl__Response *resp = ipcc_resp(msg);
    if (resp->result_case == GNCTL__RESPONSE__RESULT_CHANNEL && res) {
        /* also on GN_EPEERID: the peer that answered */
        res->channel_id = resp->channel->channel_id;
        ipcc_peer(resp->channel->peer, &res->peer);
        ipcc_copy(res->remote_addr, sizeof res->remote_addr, resp->channel->remote_addr);
    } else if (rc == 0) {
        gni_ipcc_msg_free(msg);
        return ipcc_want(c, NULL, GNCTL__RESPONSE__RESULT_CHANNEL);
    }
    gni_ipcc_msg_free(msg);
    return rc;
}

static int ipcc_send_result(gn_ipc_client *c, Gnctl__Request *r, uint64_t *req_id)
{
    void *msg = NULL;
    if (req_id) {
        *req_id = 0;
    }
    int rc = ipcc_call(c, r, &msg);
    if (rc < 0) {
        return rc;
    }
    const Gnctl__Response *resp = ipcc_resp(msg);
    if (req_id && resp->result_case == GNCTL__RESPONSE__RESULT_SEND) {
        *req_id = resp->send->send_id;
    }
    gni_ipcc_msg_free(msg);
    return 0;
}

int gn_ipc_unicast(gn_ipc_client *c, const char *to, const uint8_t *msg, size_t len,
                   uint64_t *req_id)
{
    if (!c || !to || (!msg && len)) {
        return GN_EINVAL;
    }
    Gnctl__Request r = GNCTL__REQUEST__INIT;
    Gnctl__UnicastRequest q = GNCTL__UNICAST_REQUEST__INIT;
    q.to = (char *)to;
    q.data.data = (uint8_t *)msg;
    q.data.len = len;
    r.op_case = GNCTL__REQUEST__OP_UNICAST;
    r.unicast = &q;
    return ipcc_send_result(c, &r, req_id);
}

int gn_ipc_broadcast(gn_ipc_client *c, const uint8_t *msg, size_t len, uint64_t *req_id)
{
    if (!c || (!msg && len)) {
        return GN_EINVAL;
    }
    Gnctl__Request r = GNCTL__REQUEST__INIT;
    Gnctl__BroadcastRequest q = GNCTL__BROADCAST_REQUEST__INIT;
    q.data.data = (uint8_t *)msg;
    q.data.len = len;
    r.op_case = GNCTL__REQUEST__OP_BROADCAST;
    r.broadcast = &q;
    return ipcc_send_result(c, &r, req_id);
}

int gn_ipc_close_peer(gn_ipc_client *c, const char *peer)
{
    if (!c || !peer) {
        return GN_EINVAL;
    }
    Gnctl__Request r = GNCTL__REQUEST__INIT;
    Gnctl__DisconnectRequest q = GNCTL__DISCONNECT_REQUEST__INIT;
    q.peer = (char *)peer;
    r.op_case = GNCTL__REQUEST__OP_DISCONNECT;
    r.disconnect = &q;
    return ipcc_call(c, &r, NULL);
}

int gn_ipc_channel_send(gn_ipc_client *c, uint64_t channel_id, const uint8_t *msg, size_t len)
{
    if (!c || (!msg && len)) {
        return GN_EINVAL;
    }
    Gnctl__Request r = GNCTL__REQUEST__INIT;
    Gnctl__ChannelSendRequest q = GNCTL__CHANNEL_SEND_REQUEST__INIT;
    q.channel_id = channel_id;
    q.data.data = (uint8_t *)msg;
    q.data.len = len;
    r.op_case = GNCTL__REQUEST__OP_CHANNEL_SEND;
    r.channel_send = &q;
    return ipcc_call(c, &r, NULL);
}

/* channel_close / channel_state / channel_metrics: *@msg the response. */
static int ipcc_channel_op(gn_ipc_client *c, Gnctl__Request__OpCase op, uint64_t channel_id,
                           void **msg)
{
    Gnctl__Request r = GNCTL__REQUEST__INIT;
    Gnctl__ChannelRequest q = GNCTL__CHANNEL_REQUEST__INIT;
    q.channel_id = channel_id;
    r.op_case = op;
    switch (op) {
    case GNCTL__REQUEST__OP_CHANNEL_CLOSE: r.channel_close = &q; break;
    case GNCTL__REQUEST__OP_CHANNEL_STATE: r.channel_state = &q; break;
    default: r.channel_metrics = &q; break;
    }
    return ipcc_call(c, &r, msg);
}

int gn_ipc_channel_close(gn_ipc_client *c, uint64_t channel_id)
{
    if (!c) {
        return GN_EINVAL;
    }
    return ipcc_channel_op(c, GNCTL__REQUEST__OP_CHANNEL_CLOSE, channel_id, NULL);
}

int gn_ipc_channel_state(gn_ipc_client *c, uint64_t channel_id, gn_channel_info *info)
{
    if (!c) {
        return GN_EINVAL;
    }
    void *msg = NULL;
    int rc = ipcc_channel_op(c, GNCTL__REQUEST__OP_CHANNEL_STATE, channel_id, &msg);
    if (rc < 0 || (rc = ipcc_want(c, msg, GNCTL__RESPONSE__RESULT_CHANNEL)) < 0) {
        return rc;
    }
    gn_channel_info tmp;
    ipcc_chan_info(ipcc_resp(msg)->channel, info ? info : &tmp);
    rc = (int)ipcc_resp(msg)->channel->state;
    gni_ipcc_msg_free(msg);
    return rc;
}

int gn_ipc_channel_metrics(gn_ipc_client *c, uint64_t channel_id, gn_channel_metrics *m)
{
    if (!c || !m) {
        return GN_EINVAL;
    }
    void *msg = NULL;
    int rc = ipcc_channel_op(c, GNCTL__REQUEST__OP_CHANNEL_METRICS, channel_id, &msg);
    if (rc < 0 || (rc = ipcc_want(c, msg, GNCTL__RESPONSE__RESULT_METRICS)) < 0) {
        return rc;
    }
    const Gnctl__ChannelMetrics *cm = ipcc_resp(msg)->metrics;
    memset(m, 0, sizeof *m);
    m->bytes_in = cm->bytes_in;
    m->bytes_out = cm->bytes_out;
    m->messages_in = cm->messages_in;
    m->messages_out = cm->messages_out;
    m->streams_open = cm->streams_open;
    m->last_rtt = cm->last_rtt_ns;
    m->uptime = cm->uptime_ns;
    gni_ipcc_msg_free(msg);
    return 0;
}

static int ipcc_ping(gn_ipc_client *c, uint64_t channel_id, const char *peer, gn_time *rtt)
{
    Gnctl__Request r = GNCTL__REQUEST__INIT;
    Gnctl__PingRequest q = GNCTL__PING_REQUEST__INIT;
    q.channel_id = channel_id;
    q.peer = (char *)(peer ? peer : "");
    r.op_case = GNCTL__REQUEST__OP_PING;
    r.ping = &q;
    void *msg = NULL;
    int rc = ipcc_call(c, &r, &msg);
    if (rc < 0 || (rc = ipcc_want(c, msg, GNCTL__RESPONSE__RESULT_PING)) < 0) {
        return rc;
    }
    if (rtt) {
        *rtt = ipcc_resp(msg)->ping->rtt_ns;
    }
    gni_ipcc_msg_free(msg);
    return 0;
}

int gn_ipc_channel_ping(gn_ipc_client *c, uint64_t channel_id, gn_time *rtt)
{
    if (!c || channel_id == 0) {
        return GN_EINVAL;
    }
    return ipcc_ping(c, channel_id, NULL, rtt);
}

int gn_ipc_ping(gn_ipc_client *c, const char *target, gn_time *rtt)
{
    if (!c || !target || !target[0]) {
        return GN_EINVAL;
    }
    return ipcc_ping(c, 0, target, rtt);
}

int gn_ipc_peers(gn_ipc_client *c, gn_channel_info **out, size_t *n)
{
    if (!c || !out || !n) {
        return GN_EINVAL;
    }
    *out = NULL;
    *n = 0;
    Gnctl__Request r = GNCTL__REQUEST__INIT;
    Gnctl__PeersRequest q = GNCTL__PEERS_REQUEST__INIT;
    r.op_case = GNCTL__REQUEST__OP_PEERS;
    r.peers = &q;
    void *msg = NULL;
    int rc = ipcc_call(c, &r, &msg);
    if (rc < 0 || (rc = ipcc_want(c, msg, GNCTL__RESPONSE__RESULT_PEERS)) < 0) {
        return rc;
    }
    const Gnctl__PeersResponse *pr = ipcc_resp(msg)->peers;
    if (pr->n_channels) {
        *out = gn_calloc(pr->n_channels, sizeof **out);
        if (!*out) {
            gni_ipcc_msg_free(msg);
            return GN_ENOMEM;
        }
        for (size_t i = 0; i < pr->n_channels; i++) {
            ipcc_chan_info(pr->channels[i], &(*out)[i]);
        }
        *n = pr->n_channels;
    }
    gni_ipcc_msg_free(msg);
    return 0;
}

int gn_ipc_peer_info_get(gn_ipc_client *c, const char *peer, gn_ipc_peer_info *info)
{
    if (!c || !peer || !info) {
        return GN_EINVAL;
    }
    memset(info, 0, sizeof *info);
    Gnctl__Request r = GNCTL__REQUEST__INIT;
    Gnctl__PeerInfoRequest q = GNCTL__PEER_INFO_REQUEST__INIT;
    q.peer = (char *)peer;
    r.op_case = GNCTL__REQUEST__OP_PEER_INFO;
    r.peer_info = &q;
    void *msg = NULL;
    int rc = ipcc_call(c, &r, &msg);
    if (rc < 0 || (rc = ipcc_want(c, msg, GNCTL__RESPONSE__RESULT_PEER_INFO)) < 0) {
        return rc;
    }
    const Gnctl__PeerInfo *pi = ipcc_resp(msg)->peer_info;
    ipcc_peer(pi->peer, &info->peer);
    info->identified = pi->identified;
    ipcc_copy(info->agent_version, sizeof info->agent_version, pi->agent);
    ipcc_copy(info->observed_addr, sizeof info->observed_addr, pi->observed_addr);
    rc = ipcc_strv_copy(&info->addrs, pi->addrs, pi->n_addrs);
    if (rc == 0) {
        rc = ipcc_strv_copy(&info->protocols, pi->protocols, pi->n_protocols);
    }
    gni_ipcc_msg_free(msg);
    if (rc < 0) {
        gn_ipc_peer_info_free(info);
    }
    return rc;
}

/* ------------------------------------------------------------------- DHT */

/* DHT calls wait at least this long (the daemon's own query bound is 30 s). */
#define IPCC_DHT_MIN_TIMEOUT (60 * GN_S)

static int ipcc_dht(gn_ipc_client *c, Gnctl__DhtOp op, const uint8_t *key, size_t key_len,
                    const uint8_t *value, size_t value_len, const char *peer, uint32_t count,
                    gn_ipc_dht_result *res)
{
    if (res) {
        memset(res, 0, sizeof *res);
    }
    if (op != GNCTL__DHT_OP__DHT_FIND_PEER &&
        (!key || key_len == 0 || key_len > GN_NODE_DHT_KEY_MAX)) {
        gni_ipcc_set_error(c, "a DHT key has 1..%u bytes", GN_NODE_DHT_KEY_MAX);
        return GN_EINVAL;
    }
    if (value_len > GN_NODE_DHT_VALUE_MAX || (!value && value_len)) {
        gni_ipcc_set_error(c, "a DHT value has at most %u bytes", GN_NODE_DHT_VALUE_MAX);
        return GN_EINVAL;
    }
    Gnctl__Request r = GNCTL__REQUEST__INIT;
    Gnctl__DhtRequest q = GNCTL__DHT_REQUEST__INIT;
    q.op = op;
    q.key.data = (uint8_t *)key;
    q.key.len = key ? key_len : 0;
    q.value.data = (uint8_t *)value;
    q.value.len = value_len;
    q.peer = (char *)(peer ? peer : "");
    q.count = count;
    r.op_case = GNCTL__REQUEST__OP_DHT;
    r.dht = &q;
    gn_time t = gni_ipcc_timeout(c);
    if (t < IPCC_DHT_MIN_TIMEOUT) {
        t = IPCC_DHT_MIN_TIMEOUT;
    }
    void *msg = NULL;
    int rc = gni_ipcc_call(c, &r, &msg, t, true);
    if (!msg) {
        return rc;
    }
    const Gnctl__Response *resp = ipcc_resp(msg);
    if (res && resp->result_case == GNCTL__RESPONSE__RESULT_DHT) {
        const Gnctl__DhtResponse *d = resp->dht;
        int e = 0;
        if (d->value.len) {
            res->value = gn_malloc(d->value.len);
            if (res->value) {
                memcpy(res->value, d->value.data, d->value.len);
                res->value_len = d->value.len;
            } else {
                e = GN_ENOMEM;
            }
        }
        if (d->n_peers && e == 0) {
            res->peers = gn_calloc(d->n_peers, sizeof *res->peers);
            for (size_t i = 0; res->peers && i < d->n_peers && e == 0; i++) {
                ipcc_peer(d->peers[i]->peer, &res->peers[i].peer);
                e = ipcc_strv_copy(&res->peers[i].addrs, d->peers[i]->addrs,
                                   d->peers[i]->n_addrs);
                res->npeers = i + 1;
            }
            if (!res->peers) {
                e = GN_ENOMEM;
            }
        }
        if (e < 0) {
            gn_ipc_dht_result_free(res);
            rc = rc < 0 ? rc : e;
        }
    }
    gni_ipcc_msg_free(msg);
    return rc;
}

int gn_ipc_dht_find_peer(gn_ipc_client *c, const char *peer, gn_ipc_dht_result *res)
{
    if (!c || !peer) {
        return GN_EINVAL;
    }
    return ipcc_dht(c, GNCTL__DHT_OP__DHT_FIND_PEER, NULL, 0, NULL, 0, peer, 0, res);
}

int gn_ipc_dht_get(gn_ipc_client *c, const uint8_t *key, size_t key_len, gn_ipc_dht_result *res)
{
    if (!c) {
        return GN_EINVAL;
    }
    return ipcc_dht(c, GNCTL__DHT_OP__DHT_GET, key, key_len, NULL, 0, NULL, 0, res);
}

int gn_ipc_dht_put(gn_ipc_client *c, const uint8_t *key, size_t key_len, const uint8_t *value,
                   size_t value_len)
{
    if (!c) {
        return GN_EINVAL;
    }
    return ipcc_dht(c, GNCTL__DHT_OP__DHT_PUT, key, key_len, value, value_len, NULL, 0, NULL);
}

int gn_ipc_dht_provide(gn_ipc_client *c, const uint8_t *key, size_t key_len)
{
    if (!c) {
        return GN_EINVAL;
    }
    return ipcc_dht(c, GNCTL__DHT_OP__DHT_PROVIDE, key, key_len, NULL, 0, NULL, 0, NULL);
}

int gn_ipc_dht_find_providers(gn_ipc_client *c, const uint8_t *key, size_t key_len, size_t max,
                              gn_ipc_dht_result *res)
{
    if (!c || max == 0 || max > UINT32_MAX) {
        return GN_EINVAL;
    }
    return ipcc_dht(c, GNCTL__DHT_OP__DHT_FIND_PROVIDERS, key, key_len, NULL, 0, NULL,
                    (uint32_t)max, res);
}

int gn_ipc_dht_closest_peers(gn_ipc_client *c, const uint8_t *key, size_t key_len,
                             gn_ipc_dht_result *res)
{
    if (!c) {
        return GN_EINVAL;
    }
    return ipcc_dht(c, GNCTL__DHT_OP__DHT_CLOSEST_PEERS, key, key_len, NULL, 0, NULL, 0, res);
}

/* ----------------------------------------------------------------- events */

int gn_ipc_subscribe(gn_ipc_client *c, uint64_t mask)
{
    if (!c) {
        return GN_EINVAL;
    }
    Gnctl__Request r = GNCTL__REQUEST__INIT;
    Gnctl__SubscribeRequest q = GNCTL__SUBSCRIBE_REQUEST__INIT;
    q.mask = mask;
    r.op_case = GNCTL__REQUEST__OP_SUBSCRIBE;
    r.subscribe = &q;
    return ipcc_call(c, &r, NULL);
}

/* ---------------------------------------------------------------- streams */

int gn_ipc_stream_open(gn_ipc_client *c, const char *target, uint64_t channel_id,
                       const char *protocol_id, gn_ipc_stream **out)
{
    if (!c || !protocol_id || !out || (!target && channel_id == 0)) {
        return GN_EINVAL;
    }
    *out = NULL;
    char err[GN_IPC_ERROR_MAX];
    err[0] = '\0';
    gn_time t = gni_ipcc_timeout(c);
    int fd = gni_ipcc_sock_connect(gni_ipcc_addr(c), t, err, sizeof err);
    if (fd < 0) {
        gni_ipcc_set_error(c, "%s", err);
        return fd;
    }
    Gnctl__Request r = GNCTL__REQUEST__INIT;
    Gnctl__StreamOpenRequest q = GNCTL__STREAM_OPEN_REQUEST__INIT;
    q.channel_id = channel_id;
    q.peer = (char *)(target ? target : "");
    q.protocol = (char *)protocol_id;
    r.op_case = GNCTL__REQUEST__OP_STREAM_OPEN;
    r.stream_open = &q;
    gni_ipcc_in in;
    int rc = gni_ipcc_sock_exchange(fd, &r, gni_ipcc_next_id(c), t, &in);
    if (rc < 0) {
        gni_ipcc_set_error(c, "stream open: %s", rc == GN_ETIMEDOUT ? "no answer in time"
                                                 : gn_strerror(rc));
        close(fd);
        return rc;
    }
    rc = gni_ipcc_response_status(in.msg, err, sizeof err);
    const Gnctl__Response *resp = ipcc_resp(in.msg);
    if (rc == 0 && resp->result_case != GNCTL__RESPONSE__RESULT_STREAM) {
        snprintf(err, sizeof err, "the daemon's stream response lacks its StreamInfo");
        rc = GN_EPROTO;
    }
    if (rc < 0) {
        gni_ipcc_set_error(c, "%s", err[0] ? err : gn_strerror(rc));
        gni_ipcc_msg_free(in.msg);
        close(fd);
        return rc;
    }
    gn_ipc_stream_info info;
    memset(&info, 0, sizeof info);
    info.channel_id = resp->stream->channel_id;
    ipcc_peer(resp->stream->peer, &info.peer);
    ipcc_copy(info.protocol, sizeof info.protocol,
              resp->stream->protocol && resp->stream->protocol[0] ? resp->stream->protocol
                                                                  : protocol_id);
    ipcc_copy(info.remote_addr, sizeof info.remote_addr, resp->stream->addr);
    gni_ipcc_msg_free(in.msg);
    return gni_ipcc_stream_new(fd, &info, out);
}

/* ---------------------------------------------------------------- handlers */

struct gn_ipc_handler {
    gn_ipc_client *c;
    int fd;
    char path[GN_IPC_PATH_MAX];
    char protocol[GN_PROTOCOL_ID_MAX];
};

/* A fresh socket path for a handler: beside the daemon's socket when that is a path. */
static int ipcc_handler_path(gn_ipc_client *c, char *out, size_t cap)
{
    static unsigned counter;
    char dir[GN_IPC_PATH_MAX] = "";
    gni_ipc_addr a;
    if (gni_ipc_addr_parse(gni_ipcc_addr(c), &a, NULL, 0) == 0 && a.kind == GNI_IPC_UNIX) {
        const char *slash = strrchr(a.path, '/');
        if (slash && (size_t)(slash - a.path) < sizeof dir) {
            memcpy(dir, a.path, (size_t)(slash - a.path));
            dir[slash - a.path] = '\0';
        }
    }
    if (!dir[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s", tmp && tmp[0] == '/' ? tmp : "/tmp");
    }
    unsigned k = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
    uint32_t rnd = 0;
    gn_rng_fill(gn_rng_system(), (uint8_t *)&rnd, sizeof rnd);
    int n = snprintf(out, cap, "%s/h-%ld-%u-%08x.sock", dir, (long)getpid(), k, (unsigned)rnd);
    return n > 0 && (size_t)n < cap ? 0 : GN_ENOSPC;
}

int gn_ipc_handler_new(gn_ipc_client *c, const char *protocol_id, const char *path,
                       gn_ipc_handler **out)
{
    if (!c || !protocol_id || !protocol_id[0] || !out ||
        strlen(protocol_id) >= GN_PROTOCOL_ID_MAX) {
        return GN_EINVAL;
    }
    *out = NULL;
    gn_ipc_handler *h = gn_calloc(1, sizeof *h);
    if (!h) {
        return GN_ENOMEM;
    }
    h->c = c;
    h->fd = -1;
    ipcc_copy(h->protocol, sizeof h->protocol, protocol_id);
    int rc = 0;
    if (path) {
        if (strlen(path) >= sizeof h->path) {
            gni_ipcc_set_error(c, "handler socket path '%s' is too long", path);
            gn_free(h);
            return GN_EPARSE;
        }
        ipcc_copy(h->path, sizeof h->path, path);
    } else if ((rc = ipcc_handler_path(c, h->path, sizeof h->path)) < 0) {
        gni_ipcc_set_error(c, "no room for a handler socket path");
        gn_free(h);
        return rc;
    }
    char err[GN_IPC_ERROR_MAX];
    err[0] = '\0';
    h->fd = gni_ipcc_listen_path(h->path, err, sizeof err);
    if (h->fd < 0) {
        rc = h->fd;
        gni_ipcc_set_error(c, "%s", err);
        gn_free(h);
        return rc;
    }
    Gnctl__Request r = GNCTL__REQUEST__INIT;
    Gnctl__StreamHandlerRequest q = GNCTL__STREAM_HANDLER_REQUEST__INIT;
    char *protos[1] = {h->protocol};
    q.protocols = protos;
    q.n_protocols = 1;
    q.path = h->path;
    r.op_case = GNCTL__REQUEST__OP_STREAM_HANDLER;
    r.stream_handler = &q;
    rc = ipcc_call(c, &r, NULL);
    if (rc < 0) {
        gni_ipcc_unlisten(h->fd, h->path);
        gn_free(h);
        return rc;
    }
    *out = h;
    return 0;
}

int gn_ipc_handler_fd(const gn_ipc_handler *h)
{
    return h ? h->fd : -1;
}

const char *gn_ipc_handler_path(const gn_ipc_handler *h)
{
    return h ? h->path : "";
}

int gn_ipc_handler_accept(gn_ipc_handler *h, gn_ipc_stream **out, gn_time timeout)
{
    if (!h || !out) {
        return GN_EINVAL;
    }
    *out = NULL;
    int fd = gni_ipcc_accept(h->fd, timeout);
    if (fd < 0) {
        return fd;
    }
    uint8_t *msg = NULL;
    size_t len = 0;
    /* the daemon writes the StreamInfo at once; bound the wait anyway */
    int rc = gni_ipcc_sock_read_msg(fd, timeout == 0 || timeout > 10 * GN_S ? 10 * GN_S : timeout,
                                    &msg, &len);
    gn_ipc_stream_info info;
    if (rc == 0) {
        rc = gni_ipcc_decode_stream_info(msg, len, &info);
        gn_free(msg);
    }
    if (rc < 0) {
        close(fd);
        return rc == GN_ECLOSED || rc == GN_EFRAMESIZE ? GN_EPROTO : rc;
    }
    if (!info.protocol[0]) {
        ipcc_copy(info.protocol, sizeof info.protocol, h->protocol);
    }
    return gni_ipcc_stream_new(fd, &info, out);
}

void gn_ipc_handler_free(gn_ipc_handler *h)
{
    if (!h) {
        return;
    }
    Gnctl__Request r = GNCTL__REQUEST__INIT;
    Gnctl__StreamUnhandleRequest q = GNCTL__STREAM_UNHANDLE_REQUEST__INIT;
    char *protos[1] = {h->protocol};
    q.protocols = protos;
    q.n_protocols = 1;
    r.op_case = GNCTL__REQUEST__OP_STREAM_UNHANDLE;
    r.stream_unhandle = &q;
    (void)ipcc_call(h->c, &r, NULL); /* GN_ECLOSED when the client's connection ended */
    gni_ipcc_unlisten(h->fd, h->path);
    gn_free(h);
}
