/*
 * The control daemon server (include/golemnet/ipcd.h): control sockets
 * (ipc/gni_ipc.h), requests decoded by the wire core (ipc/ctl_wire.c) and
 * run through the node's public API, node events fanned out to
 * subscribers, streams bridged to control connections.
 *
 * Everything runs on the node's loop thread. Invariants:
 *  - a client is on d->clients from accept until its connection's on_close;
 *    `closing` is set once gni_ipc_conn_close() was called;
 *  - an asynchronous request (ipcd_op) is on its client's ops list while
 *    the client lives; when the client (or the server) goes first, the op
 *    is orphaned (client NULL) and frees itself in the node's callback,
 *    touching nothing but the node; listen ops have no node callback and
 *    are freed at once;
 *  - a bridge joins one gn_stream and one control connection; it is freed
 *    once both are closed.
 */
#include "ctl_wire.h"
#include "gni_ipc.h"

#include "gni.h"
#include "golemnet/err.h"
#include "golemnet/host.h"
#include "golemnet/ipcd.h"
#include "golemnet/log.h"
#include "golemnet/multiaddr.h"
#include "golemnet/node.h"
#include "golemnet/router.h"
#include "golemnet/stream.h"

#include <uv.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IPCD_LOG "ipcd"
/* node events popped per loop turn before yielding */
#define IPCD_EVENTS_PER_TURN 256
/* bytes a bridge lets pile up in either direction before it stops reading */
#define IPCD_BRIDGE_MAX (1024u * 1024u)
/* period of the drain check during a graceful close */
#define IPCD_DRAIN_TICK (10 * GN_MS)
/* ids listed per peers response */
#define IPCD_PEERS_MAX GN_CTL_REPEATED_MAX
#define IPCD_PEER_STR GN_PEER_ID_MAX_STRLEN
/* asynchronous requests one client may have running; at the cap its
 * requests are not read until one completes (docs/protocols/control.md) */
#define IPCD_CLIENT_OPS_MAX GN_IPCD_CLIENT_OPS_MAX

typedef struct ipcd_client ipcd_client;
typedef struct ipcd_bridge ipcd_bridge;

enum { OP_LISTEN, OP_DIAL, OP_PING, OP_PING_DIAL, OP_STREAM, OP_STREAM_DIAL, OP_DHT };

typedef struct ipcd_op {
    gni_list link;        /* client->ops */
    ipcd_client *client;  /* NULL: orphaned (client or server gone) */
    gn_node *node;
    uint64_t rid;         /* the request's id */
    uint64_t node_req;    /* OP_LISTEN: gn_node_listen()'s request id */
    int kind;
    int dht_op;
    char proto[GN_PROTOCOL_ID_MAX];
} ipcd_op;

struct ipcd_client {
    gni_list link; /* d->clients */
    gn_ipcd *d;
    gni_ipc_conn *conn;
    gni_list ops;
    uint64_t num;       /* for logs */
    uint64_t mask;      /* subscribed event kinds, bit (1 << type) */
    size_t nops;        /* ops on c->ops: at IPCD_CLIENT_OPS_MAX requests are not read */
    bool paused;        /* output past half the bound: requests not read */
    bool opening;       /* a stream_open is running: requests not read */
    bool closing;
    bool raw;           /* carries a stream now (bridge) */
    ipcd_bridge *bridge;
};

typedef struct ipcd_handler {
    gni_list link; /* d->handlers */
    ipcd_client *owner; /* NULL: kept until unhandled or the server closes */
    char proto[GN_PROTOCOL_ID_MAX];
    char path[GNI_IPC_PATH_MAX + 64];
} ipcd_handler;

struct ipcd_bridge {
    gni_list link; /* d->bridges */
    gn_ipcd *d;
    gn_stream *s;
    gni_ipc_conn *conn;
    ipcd_client *client; /* stream open: the client whose connection this is */
    Gnctl__StreamInfo *info_frame; /* handler: not used after connect */
    uint8_t *held;       /* conn bytes the stream refused (GN_EAGAIN) */
    size_t held_len;
    size_t inflight;     /* conn -> stream bytes not yet completed */
    gn_timer timer;      /* handler: connect deadline */
    uint8_t *hello;      /* handler: the framed StreamInfo to write first */
    size_t hello_len;
    bool connecting;
    bool conn_eof, stream_eof, shut_sent;
    bool stream_closing, stream_closed, conn_closing, conn_closed;
};

struct gn_ipcd {
    gn_node *node;
    gn_loop *loop;
    uv_loop_t *uvl;
    gn_host *host;
    gn_ipcd_config cfg;
    char *address;
    char *tcp_address;
    uint32_t allow[GNI_IPC_ALLOW_MAX];
    gni_ipc_listener *lst[2];
    char bound[2][GNI_IPC_PATH_MAX + 64];
    bool have_bound[2];
    gni_list clients;
    gni_list handlers;
    gni_list bridges;
    size_t nclients;
    size_t nhandlers;
    size_t nbridges;
    size_t nops;       /* ops with a client */
    uint64_t next_client;
    gn_ipcd_stats st;
    uv_poll_t poll;    /* the node's event fd */
    uv_timer_t evtimer; /* yields when a turn did not empty the queue; polls without an fd */
    bool poll_on;
    bool poll_inited;
    int open_handles;  /* poll + evtimer + listeners not yet closed */
    gn_host_sub *hsub;
    /* close */
    gni_loop_cmd close_cmd;
    bool draining;
    bool finishing;
    gn_time drain_timeout;
    gn_time drain_deadline;
    uint64_t drain_last_out; /* channels' bytes_out at the previous drain tick */
    gn_timer drain_timer;
    gn_ipcd_close_cb close_cb;
    void *close_arg;
    bool close_requested;
};

static void client_update_reading(ipcd_client *c);
static void client_close(ipcd_client *c, bool flush);
static void ipcd_maybe_free(gn_ipcd *d);
static void bridge_close(ipcd_bridge *b, int why);

/* ------------------------------------------------------------------ */
/* helpers                                                             */

static void peer_str(const gn_peer_id *p, char out[IPCD_PEER_STR])
{
    out[0] = '\0';
    if (p && p->len > 0 && gn_peer_id_to_string(p, out, IPCD_PEER_STR) < 0) {
        out[0] = '\0';
    }
}

static int parse_peer(const char *s, gn_peer_id *out)
{
    if (!s || !*s) {
        return GN_EINVAL;
    }
    if (!strncmp(s, "/p2p/", 5)) {
        s += 5;
    }
    return gn_peer_id_parse(s, strlen(s), out) < 0 ? GN_EPARSE : 0;
}

static Gnctl__ChannelState ch_state(gn_channel_state s)
{
    switch (s) {
    case GN_CHANNEL_DIALING:
        return GNCTL__CHANNEL_STATE__CH_DIALING;
    case GN_CHANNEL_UPGRADING:
        return GNCTL__CHANNEL_STATE__CH_UPGRADING;
    case GN_CHANNEL_OPEN:
        return GNCTL__CHANNEL_STATE__CH_OPEN;
    case GN_CHANNEL_CLOSING:
        return GNCTL__CHANNEL_STATE__CH_CLOSING;
    default:
        return GNCTL__CHANNEL_STATE__CH_CLOSED;
    }
}

/* Fills @ci from @info; strings point into @info and @peer. */
static void fill_channel(Gnctl__ChannelInfo *ci, gn_channel_state state,
                         const gn_channel_info *info,
                         char peer[IPCD_PEER_STR])
{
    gnctl__channel_info__init(ci);
    peer_str(&info->remote_peer, peer);
    ci->channel_id = info->id;
    ci->peer = peer;
    ci->remote_addr = (char *)info->remote_addr;
    ci->local_addr = (char *)info->local_addr;
    ci->state = ch_state(state);
    ci->inbound = info->direction == GN_DIR_INBOUND;
    ci->security = (char *)info->security;
    ci->muxer = (char *)info->muxer;
    ci->limited = info->limited;
}

/* ------------------------------------------------------------------ */
/* output to clients                                                   */

/*
 * Encodes @m as a frame after making its strings valid for the wire
 * (gni_ctl_sanitize: remote agent versions, addresses and error texts
 * echoing client input may be anything). Errors as gni_ctl_encode().
 */
static int ipcd_encode(ProtobufCMessage *m, uint8_t **f, size_t *n)
{
    void *keep = NULL;
    int rc = gni_ctl_sanitize(m, &keep);
    if (rc >= 0) {
        rc = gni_ctl_encode(m, f, n);
    }
    gni_ctl_sanitize_free(keep);
    return rc;
}

/* Writes one encoded frame to @c and applies the output bound. */
static void client_write_frame(ipcd_client *c, const uint8_t *f, size_t n)
{
    gn_ipcd *d = c->d;
    if (c->closing || c->raw) {
        return;
    }
    int rc = gni_ipc_conn_write_force(c->conn, f, n, false);
    if (rc < 0) {
        client_close(c, false);
        return;
    }
    size_t q = gni_ipc_conn_queued(c->conn);
    if (q > d->cfg.client_queue_max) {
        d->st.clients_slow++;
        char reason[160];
        snprintf(reason, sizeof reason,
                 "client does not read: %zu bytes queued, past the bound of %zu bytes", q,
                 d->cfg.client_queue_max);
        GN_LOG(GN_LOG_WARNING, IPCD_LOG, "client %" PRIu64 ": %s; disconnecting", c->num, reason);
        Gnctl__Event ev = GNCTL__EVENT__INIT;
        ev.type = GNCTL__EVENT_TYPE__EV_DISCONNECTING;
        ev.status = GN_ELIMIT;
        ev.reason = reason;
        Gnctl__ServerMessage sm = GNCTL__SERVER_MESSAGE__INIT;
        sm.msg_case = GNCTL__SERVER_MESSAGE__MSG_EVENT;
        sm.event = &ev;
        uint8_t *fr = NULL;
        size_t fl = 0;
        if (ipcd_encode(&sm.base, &fr, &fl) == 0) {
            (void)gni_ipc_conn_write_force(c->conn, fr, fl, false);
            gn_free(fr);
        }
        client_close(c, true);
        return;
    }
    if (q >= d->cfg.client_queue_max / 2 && !c->paused) {
        c->paused = true;
        client_update_reading(c);
    }
}

static void client_send_response(ipcd_client *c, Gnctl__Response *r)
{
    if (!c || c->closing || c->raw) {
        return;
    }
    Gnctl__ServerMessage sm = GNCTL__SERVER_MESSAGE__INIT;
    sm.msg_case = GNCTL__SERVER_MESSAGE__MSG_RESPONSE;
    sm.response = r;
    uint8_t *f = NULL;
    size_t n = 0;
    int rc = ipcd_encode(&sm.base, &f, &n);
    if (rc < 0) {
        /* a result past the bounds (cannot happen with the caps applied) or
         * out of memory: the request still gets its one answer, an error */
        GN_LOG(GN_LOG_ERR, IPCD_LOG, "client %" PRIu64 ": cannot encode response %" PRIu64
               " (%s); answering with the error", c->num, r->id, gn_err_name(rc));
        Gnctl__Response er = GNCTL__RESPONSE__INIT;
        er.id = r->id;
        er.status = rc == GN_ETOOBIG ? GN_ETOOBIG : rc == GN_ENOMEM ? GN_ENOMEM : GN_EINTERNAL;
        er.error = rc == GN_ETOOBIG ? "result larger than the control protocol's bounds"
                                    : "the daemon could not encode the result";
        sm.response = &er;
        rc = gni_ctl_encode(&sm.base, &f, &n);
    }
    if (rc < 0) {
        /* not even the error fits in memory: the connection cannot go on */
        GN_LOG(GN_LOG_ERR, IPCD_LOG, "client %" PRIu64 ": cannot encode an error response (%s);"
               " closing", c->num, gn_err_name(rc));
        client_close(c, false);
        return;
    }
    client_write_frame(c, f, n);
    gn_free(f);
}

static void reply_err(ipcd_client *c, uint64_t rid, int status, const char *fmt, ...)
    GN_PRINTF(4, 5);

/* The message may echo client input of any length: ipcd_encode trims it to
 * GN_CTL_STRING_MAX bytes of whole UTF-8 characters. */
static void reply_err(ipcd_client *c, uint64_t rid, int status, const char *fmt, ...)
{
    char msg[2 * GN_CTL_STRING_MAX + 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    Gnctl__Response r = GNCTL__RESPONSE__INIT;
    r.id = rid;
    r.status = status;
    r.error = msg;
    client_send_response(c, &r);
}

static void reply_status(ipcd_client *c, uint64_t rid, int status, const char *what)
{
    if (status == 0) {
        Gnctl__Response r = GNCTL__RESPONSE__INIT;
        r.id = rid;
        client_send_response(c, &r);
    } else {
        reply_err(c, rid, status, "%s: %s", what, gn_strerror(status));
    }
}

/* ------------------------------------------------------------------ */
/* ops                                                                 */

static ipcd_op *op_new(ipcd_client *c, uint64_t rid, int kind)
{
    ipcd_op *op = gn_calloc(1, sizeof *op);
    if (!op) {
        return NULL;
    }
    op->client = c;
    op->node = c->d->node;
    op->rid = rid;
    op->kind = kind;
    gni_list_add_tail(&c->ops, &op->link);
    c->d->nops++;
    c->d->st.ops_now = c->d->nops;
    if (++c->nops == IPCD_CLIENT_OPS_MAX) {
        c->d->st.clients_ops_paused++;
        client_update_reading(c);
    }
    return op;
}

/* Detaches @op from its client (completed or orphaned). */
static ipcd_client *op_detach(ipcd_op *op)
{
    ipcd_client *c = op->client;
    if (c) {
        gni_list_del(&op->link);
        c->d->nops--;
        c->d->st.ops_now = c->d->nops;
        op->client = NULL;
        if (c->nops-- == IPCD_CLIENT_OPS_MAX) {
            client_update_reading(c); /* below the cap again */
        }
    }
    return c;
}

/* The client's ops are orphaned; listen ops are freed. */
static void client_orphan_ops(ipcd_client *c, bool answer)
{
    while (!gni_list_empty(&c->ops)) {
        ipcd_op *op = GNI_CONTAINER_OF(c->ops.next, ipcd_op, link);
        /* off the list before replying: a failing write closes the client,
         * which orphans (and frees) what is still listed */
        op_detach(op);
        uint64_t rid = op->rid;
        if (op->kind == OP_LISTEN) {
            gn_free(op);
        }
        if (answer) {
            reply_err(c, rid, GN_ECANCELED, "the daemon is stopping");
        }
    }
}

/* ------------------------------------------------------------------ */
/* events                                                              */

static bool client_wants(const ipcd_client *c, unsigned type)
{
    return !c->closing && !c->raw && type < 64 && (c->mask & ((uint64_t)1 << type));
}

/* Tells the clients that wanted @ev that it could not be sent (@why). */
static void fanout_lost(gn_ipcd *d, const Gnctl__Event *ev, int why)
{
    char reason[256];
    snprintf(reason, sizeof reason, "an event of type %d could not be sent: %s%s", (int)ev->type,
             gn_strerror(why),
             why == GN_ETOOBIG ? " (larger than the control protocol's message bound)" : "");
    Gnctl__Event lost = GNCTL__EVENT__INIT;
    lost.type = GNCTL__EVENT_TYPE__EV_LOST;
    lost.status = why;
    lost.count = 1;
    lost.channel_id = ev->channel_id;
    lost.peer = ev->peer;
    lost.request_id = ev->request_id;
    lost.reason = reason;
    Gnctl__ServerMessage sm = GNCTL__SERVER_MESSAGE__INIT;
    sm.msg_case = GNCTL__SERVER_MESSAGE__MSG_EVENT;
    sm.event = &lost;
    uint8_t *f = NULL;
    size_t n = 0;
    int rc = ipcd_encode(&sm.base, &f, &n);
    gni_list *e = d->clients.next;
    while (e != &d->clients) {
        ipcd_client *c = GNI_CONTAINER_OF(e, ipcd_client, link);
        e = e->next;
        if (!client_wants(c, (unsigned)ev->type)) {
            continue;
        }
        d->st.events_lost++;
        if (rc == 0) {
            client_write_frame(c, f, n);
        } else {
            /* not even the notice: the client cannot know, so it must go */
            GN_LOG(GN_LOG_ERR, IPCD_LOG, "client %" PRIu64 ": an event is lost and the notice "
                   "cannot be encoded (%s); closing", c->num, gn_err_name(rc));
            client_close(c, false);
        }
    }
    gn_free(f);
}

static void fanout(gn_ipcd *d, const Gnctl__Event *ev)
{
    bool any = false;
    for (gni_list *e = d->clients.next; e != &d->clients; e = e->next) {
        ipcd_client *c = GNI_CONTAINER_OF(e, ipcd_client, link);
        if (client_wants(c, (unsigned)ev->type)) {
            any = true;
            break;
        }
    }
    if (!any) {
        return;
    }
    Gnctl__Event evc = *ev; /* ipcd_encode may repoint its strings (freed after) */
    Gnctl__ServerMessage sm = GNCTL__SERVER_MESSAGE__INIT;
    sm.msg_case = GNCTL__SERVER_MESSAGE__MSG_EVENT;
    sm.event = &evc;
    uint8_t *f = NULL;
    size_t n = 0;
    int rc = ipcd_encode(&sm.base, &f, &n);
    if (rc < 0) {
        GN_LOG(GN_LOG_WARNING, IPCD_LOG, "cannot encode an event of type %d (%s); sending "
               "EV_LOST", (int)ev->type, gn_err_name(rc));
        fanout_lost(d, ev, rc);
        return;
    }
    gni_list *e = d->clients.next;
    while (e != &d->clients) {
        ipcd_client *c = GNI_CONTAINER_OF(e, ipcd_client, link);
        e = e->next; /* client_write_frame may close c (it stays listed until on_close) */
        if (client_wants(c, (unsigned)ev->type)) {
            d->st.events_sent++;
            client_write_frame(c, f, n);
        }
    }
    gn_free(f);
}

/* Answers the listen op waiting for node request @req, if any. */
static void listen_done(gn_ipcd *d, const gn_node_event *ev)
{
    for (gni_list *e = d->clients.next; e != &d->clients; e = e->next) {
        ipcd_client *c = GNI_CONTAINER_OF(e, ipcd_client, link);
        for (gni_list *o = c->ops.next; o != &c->ops; o = o->next) {
            ipcd_op *op = GNI_CONTAINER_OF(o, ipcd_op, link);
            if (op->kind != OP_LISTEN || op->node_req != ev->request_id) {
                continue;
            }
            op_detach(op);
            if (ev->type == GN_NODE_EV_LISTENING) {
                Gnctl__Response r = GNCTL__RESPONSE__INIT;
                Gnctl__ListenResponse lr = GNCTL__LISTEN_RESPONSE__INIT;
                lr.addr = (char *)ev->addr;
                r.id = op->rid;
                r.result_case = GNCTL__RESPONSE__RESULT_LISTEN;
                r.listen = &lr;
                client_send_response(c, &r);
            } else {
                reply_err(c, op->rid, ev->status, "listen on %s failed: %s", ev->addr,
                          gn_strerror(ev->status));
            }
            gn_free(op);
            return;
        }
    }
}

static void node_event(gn_ipcd *d, gn_node_event *ev)
{
    if ((ev->type == GN_NODE_EV_LISTENING || ev->type == GN_NODE_EV_LISTEN_FAILED) &&
        ev->request_id != 0) {
        listen_done(d, ev);
    }
    if (ev->type == GN_NODE_EV_LISTENING) {
        GN_LOG(GN_LOG_INFO, IPCD_LOG, "node listening on %s", ev->addr);
    } else if (ev->type == GN_NODE_EV_SEND_FAILED && d->draining) {
        GN_LOG(GN_LOG_WARNING, IPCD_LOG, "message %" PRIu64 " (x%" PRIu64 ") not delivered: %s",
               ev->request_id, ev->count, gn_strerror(ev->status));
    }
    char peer[IPCD_PEER_STR];
    peer_str(&ev->peer, peer);
    Gnctl__Event e = GNCTL__EVENT__INIT;
    e.type = (Gnctl__EventType)ev->type;
    e.status = ev->status;
    e.request_id = ev->request_id;
    e.channel_id = ev->channel_id;
    e.peer = peer;
    e.addr = ev->addr;
    e.protocol = ev->protocol;
    e.rtt_ns = (uint64_t)ev->rtt;
    e.count = ev->count;
    if (ev->message) {
        gn_slice sl = gn_rcbuf_slice(ev->message);
        e.data.data = (uint8_t *)sl.base;
        e.data.len = sl.len;
    }
    fanout(d, &e);
    if (ev->message) {
        gn_rcbuf_rele(ev->message);
        ev->message = NULL;
    }
}

/* Pops up to a turn's worth of node events; true when the queue is empty. */
static bool pump_events(gn_ipcd *d)
{
    gn_node_event ev;
    for (int i = 0; i < IPCD_EVENTS_PER_TURN; i++) {
        if (gn_node_next_event(d->node, &ev, 0) != 0) {
            return true;
        }
        node_event(d, &ev);
    }
    return false;
}

static void evtimer_cb(uv_timer_t *t)
{
    gn_ipcd *d = t->data;
    bool empty = pump_events(d);
    if (!d->poll_on || !empty) {
        /* no fd to watch, or more to do: come back soon (after other I/O) */
        uv_timer_start(&d->evtimer, evtimer_cb, empty ? 10 : 0, 0);
    }
}

static void poll_cb(uv_poll_t *p, int status, int events)
{
    gn_ipcd *d = p->data;
    (void)events;
    if (status < 0) {
        GN_LOG(GN_LOG_ERR, IPCD_LOG, "event fd: %s; polling instead", uv_strerror(status));
        uv_poll_stop(&d->poll);
        d->poll_on = false;
        uv_timer_start(&d->evtimer, evtimer_cb, 10, 0);
        return;
    }
    if (!pump_events(d) && !uv_is_active((uv_handle_t *)&d->evtimer)) {
        uv_timer_start(&d->evtimer, evtimer_cb, 0, 0);
    }
}

static void host_event(void *arg, const gn_host_event *hev)
{
    gn_ipcd *d = arg;
    char peer[IPCD_PEER_STR];
    peer_str(hev->peer, peer);
    Gnctl__Event e = GNCTL__EVENT__INIT;
    switch (hev->type) {
    case GN_HOST_EV_PEER_FOUND:
        e.type = GNCTL__EVENT_TYPE__EV_PEER_FOUND;
        break;
    case GN_HOST_EV_LISTEN_ADDRS:
        e.type = GNCTL__EVENT_TYPE__EV_LISTEN_ADDRS;
        break;
    case GN_HOST_EV_PROTOCOLS:
        e.type = GNCTL__EVENT_TYPE__EV_PROTOCOLS;
        break;
    default:
        return;
    }
    e.peer = peer;
    e.status = hev->status;
    fanout(d, &e);
}

/* ------------------------------------------------------------------ */
/* bridges: a gn_stream <-> a control connection carrying raw bytes     */

static void bridge_maybe_free(ipcd_bridge *b)
{
    if (!b->stream_closed || !b->conn_closed || b->connecting || b->inflight > 0) {
        return;
    }
    gn_ipcd *d = b->d;
    gn_timer_stop(&b->timer);
    gni_list_del(&b->link);
    d->nbridges--;
    d->st.streams_now = d->nbridges;
    gn_free(b->held);
    gn_free(b->hello);
    gn_free(b);
    ipcd_maybe_free(d);
}

static void bridge_stream_closed(gn_stream *s, void *arg)
{
    ipcd_bridge *b = arg;
    (void)s;
    b->stream_closed = true;
    b->s = NULL;
    bridge_maybe_free(b);
}

static void bridge_close_stream(ipcd_bridge *b, bool reset)
{
    if (!b->s || b->stream_closing) {
        if (!b->s && !b->stream_closing) {
            b->stream_closed = true;
        }
        return;
    }
    b->stream_closing = true;
    gn_stream_set_handler(b->s, NULL, NULL);
    if (reset) {
        gn_stream_reset(b->s, bridge_stream_closed, b);
    } else {
        gn_stream_close(b->s, bridge_stream_closed, b);
    }
}

static void bridge_close_conn(ipcd_bridge *b, bool flush)
{
    if (b->conn && !b->conn_closing) {
        b->conn_closing = true;
        gni_ipc_conn_close(b->conn, flush);
    } else if (!b->conn && !b->connecting) {
        b->conn_closed = true;
    }
}

/* Ends the bridge: @why 0 is an orderly end (both sides done), else an error. */
static void bridge_close(ipcd_bridge *b, int why)
{
    if (why != 0 && why != GN_EEOF) {
        GN_LOG(GN_LOG_DEBUG, IPCD_LOG, "stream bridge ends: %s", gn_err_name(why));
    }
    bridge_close_stream(b, why != 0 && why != GN_EEOF);
    bridge_close_conn(b, true);
    bridge_maybe_free(b);
}

/* Both directions ended and every byte went through: close. */
static void bridge_check_done(ipcd_bridge *b)
{
    if (b->conn_eof && b->stream_eof && b->inflight == 0 && b->held_len == 0) {
        bridge_close(b, 0);
    }
}

static void bridge_update_conn_reading(ipcd_bridge *b)
{
    if (!b->conn || b->conn_closing || b->conn_eof) {
        return;
    }
    if (b->held_len == 0 && b->inflight < IPCD_BRIDGE_MAX / 2 && !b->connecting) {
        (void)gni_ipc_conn_read_start(b->conn);
    } else if (b->held_len > 0 || b->inflight >= IPCD_BRIDGE_MAX) {
        gni_ipc_conn_read_stop(b->conn);
    }
}

typedef struct bridge_wr {
    ipcd_bridge *b;
    size_t len;
    uint8_t data[];
} bridge_wr;

static void bridge_wrote(void *arg, int status)
{
    bridge_wr *w = arg;
    ipcd_bridge *b = w->b;
    b->inflight -= w->len;
    gn_free(w);
    if (status < 0 && status != GN_ECANCELED && !b->stream_closing) {
        bridge_close(b, status);
        return;
    }
    if (b->stream_closing) {
        bridge_maybe_free(b);
        return;
    }
    bridge_update_conn_reading(b);
    bridge_check_done(b);
}

/* Offers @len bytes to the stream; 0, GN_EAGAIN (kept in held) or an error. */
static int bridge_to_stream(ipcd_bridge *b, const uint8_t *p, size_t len)
{
    bridge_wr *w = gn_malloc(sizeof *w + len);
    if (!w) {
        return GN_ENOMEM;
    }
    w->b = b;
    w->len = len;
    memcpy(w->data, p, len);
    gn_slice sl = {.base = w->data, .len = len};
    int rc = gn_stream_write(b->s, &sl, 1, bridge_wrote, w);
    if (rc == 0) {
        b->inflight += len;
        return 0;
    }
    gn_free(w);
    if (rc == GN_EAGAIN) {
        uint8_t *h = gn_realloc(b->held, b->held_len + len);
        if (!h) {
            return GN_ENOMEM;
        }
        memcpy(h + b->held_len, p, len);
        b->held = h;
        b->held_len += len;
        return GN_EAGAIN;
    }
    return rc;
}

static void bridge_conn_data(gni_ipc_conn *c, const uint8_t *p, size_t len, void *ud)
{
    ipcd_bridge *b = ud;
    (void)c;
    if (!b->s || b->stream_closing) {
        return;
    }
    if (b->held_len > 0) {
        /* order: behind what is held */
        uint8_t *h = gn_realloc(b->held, b->held_len + len);
        if (!h) {
            bridge_close(b, GN_ENOMEM);
            return;
        }
        memcpy(h + b->held_len, p, len);
        b->held = h;
        b->held_len += len;
    } else {
        int rc = bridge_to_stream(b, p, len);
        if (rc < 0 && rc != GN_EAGAIN) {
            bridge_close(b, rc);
            return;
        }
    }
    bridge_update_conn_reading(b);
}

static void bridge_conn_end(gni_ipc_conn *c, int err, void *ud)
{
    ipcd_bridge *b = ud;
    (void)c;
    if (err != GN_EEOF) {
        /* the client went away abruptly: reset the stream */
        bridge_close(b, err);
        return;
    }
    b->conn_eof = true;
    if (b->s && !b->stream_closing && b->held_len == 0 && !b->shut_sent) {
        b->shut_sent = true;
        (void)gn_stream_shutdown(b->s);
    }
    bridge_check_done(b);
}

static void bridge_conn_writable(gni_ipc_conn *c, void *ud)
{
    ipcd_bridge *b = ud;
    (void)c;
    if (b->s && !b->stream_closing && !b->stream_eof) {
        (void)gn_stream_read_start(b->s);
    }
}

static void bridge_conn_closed(gni_ipc_conn *c, void *ud)
{
    ipcd_bridge *b = ud;
    (void)c;
    b->conn = NULL;
    b->conn_closed = true;
    if (b->client) {
        /* the stream-open client's connection: the client ends with it */
        ipcd_client *cl = b->client;
        b->client = NULL;
        gni_list_del(&cl->link);
        cl->d->nclients--;
        cl->d->st.clients_now = cl->d->nclients;
        gn_free(cl);
    }
    if (!b->stream_closing) {
        bridge_close_stream(b, !(b->conn_eof && b->stream_eof));
    }
    bridge_maybe_free(b);
}

static const gni_ipc_conn_cbs bridge_conn_cbs = {
    .on_data = bridge_conn_data,
    .on_end = bridge_conn_end,
    .on_writable = bridge_conn_writable,
    .on_close = bridge_conn_closed,
};

static void bridge_stream_data(gn_stream *s, void *ud, const uint8_t *p, size_t len)
{
    ipcd_bridge *b = ud;
    if (!b->conn || b->conn_closing) {
        return;
    }
    if (gni_ipc_conn_write_force(b->conn, p, len, false) < 0) {
        bridge_close(b, GN_EPIPE);
        return;
    }
    if (gni_ipc_conn_queued(b->conn) >= IPCD_BRIDGE_MAX) {
        (void)gn_stream_read_stop(s); /* on_writable of the connection resumes */
    }
}

static void bridge_stream_eof(gn_stream *s, void *ud)
{
    ipcd_bridge *b = ud;
    (void)s;
    b->stream_eof = true;
    if (b->conn && !b->conn_closing) {
        gni_ipc_conn_shutdown(b->conn);
    }
    bridge_check_done(b);
}

static void bridge_stream_error(gn_stream *s, void *ud, int err)
{
    ipcd_bridge *b = ud;
    (void)s;
    bridge_close(b, err);
}

static void bridge_stream_writable(gn_stream *s, void *ud)
{
    ipcd_bridge *b = ud;
    (void)s;
    if (b->held_len == 0 || b->stream_closing) {
        return;
    }
    uint8_t *h = b->held;
    size_t n = b->held_len;
    b->held = NULL;
    b->held_len = 0;
    int rc = bridge_to_stream(b, h, n);
    gn_free(h);
    if (rc < 0 && rc != GN_EAGAIN) {
        bridge_close(b, rc);
        return;
    }
    if (b->held_len == 0 && b->conn_eof && !b->shut_sent) {
        b->shut_sent = true;
        (void)gn_stream_shutdown(b->s);
    }
    bridge_update_conn_reading(b);
}

static const gn_stream_handler bridge_stream_handler = {
    .on_data = bridge_stream_data,
    .on_eof = bridge_stream_eof,
    .on_error = bridge_stream_error,
    .on_writable = bridge_stream_writable,
};

static ipcd_bridge *bridge_new(gn_ipcd *d, gn_stream *s)
{
    ipcd_bridge *b = gn_calloc(1, sizeof *b);
    if (!b) {
        return NULL;
    }
    b->d = d;
    b->s = s;
    gn_timer_init(d->loop, &b->timer);
    gni_list_add_tail(&d->bridges, &b->link);
    d->nbridges++;
    d->st.streams_now = d->nbridges;
    return b;
}

/* Starts moving bytes both ways. */
static void bridge_start(ipcd_bridge *b)
{
    gni_ipc_conn_set_cbs(b->conn, &bridge_conn_cbs, b);
    gni_ipc_conn_set_raw(b->conn);
    (void)gni_ipc_conn_set_limits(b->conn, GN_CTL_MSG_MAX, IPCD_BRIDGE_MAX);
    gn_stream_set_handler(b->s, &bridge_stream_handler, b);
    (void)gn_stream_read_start(b->s);
    bridge_update_conn_reading(b);
}

/* ---- stream handlers: the daemon connects to the client per stream ---- */

static void handler_connect_timeout(gn_timer *t, void *arg)
{
    ipcd_bridge *b = arg;
    (void)t;
    GN_LOG(GN_LOG_WARNING, IPCD_LOG, "stream handler connection not accepted in time");
    bridge_close_stream(b, true);
    /* the connect completes later: closed then */
}

static void handler_connected(gni_ipc_conn *c, int err, void *ud)
{
    ipcd_bridge *b = ud;
    b->connecting = false;
    gn_timer_stop(&b->timer);
    if (err < 0 || b->stream_closing || !b->s) {
        if (err < 0) {
            GN_LOG(GN_LOG_WARNING, IPCD_LOG, "stream handler: cannot connect to the client (%s)",
                   gn_err_name(err));
        }
        if (c) {
            b->conn = c;
            gni_ipc_conn_set_cbs(c, &bridge_conn_cbs, b);
            bridge_close_conn(b, false);
        } else {
            b->conn_closed = true;
        }
        bridge_close_stream(b, true);
        bridge_maybe_free(b);
        return;
    }
    b->conn = c;
    gni_ipc_conn_set_cbs(c, &bridge_conn_cbs, b);
    if (gni_ipc_conn_write_force(c, b->hello, b->hello_len, false) < 0) {
        bridge_close(b, GN_EPIPE);
        return;
    }
    gn_free(b->hello);
    b->hello = NULL;
    bridge_start(b);
}

static ipcd_handler *handler_find(gn_ipcd *d, const char *proto)
{
    for (gni_list *e = d->handlers.next; e != &d->handlers; e = e->next) {
        ipcd_handler *h = GNI_CONTAINER_OF(e, ipcd_handler, link);
        if (!strcmp(h->proto, proto)) {
            return h;
        }
    }
    return NULL;
}

static void handler_stream(void *arg, gn_channel *ch, gn_stream *s, const char *protocol_id)
{
    gn_ipcd *d = arg;
    ipcd_handler *h = handler_find(d, protocol_id);
    if (!h || d->draining || d->nbridges >= d->cfg.max_streams) {
        GN_LOG(GN_LOG_INFO, IPCD_LOG, "inbound %s stream refused (%s)", protocol_id,
               !h ? "no handler" : d->draining ? "stopping" : "max_streams");
        gn_stream_reset(s, NULL, NULL);
        return;
    }
    ipcd_bridge *b = bridge_new(d, s);
    if (!b) {
        gn_stream_reset(s, NULL, NULL);
        return;
    }
    (void)gn_stream_read_stop(s);
    gn_channel_info info;
    gn_channel_state_get(ch, &info);
    char peer[IPCD_PEER_STR];
    peer_str(&info.remote_peer, peer);
    Gnctl__StreamInfo si = GNCTL__STREAM_INFO__INIT;
    si.channel_id = info.id;
    si.peer = peer;
    si.addr = info.remote_addr;
    si.protocol = (char *)protocol_id;
    char err[256];
    int rc = ipcd_encode(&si.base, &b->hello, &b->hello_len);
    if (rc == 0) {
        b->connecting = true;
        rc = gni_ipc_connect(d->uvl, h->path, handler_connected, b, err, sizeof err);
        if (rc < 0) {
            b->connecting = false;
            GN_LOG(GN_LOG_WARNING, IPCD_LOG, "stream handler %s: %s", h->path, err);
        }
    }
    if (rc < 0) {
        b->conn_closed = true;
        bridge_close_stream(b, true);
        bridge_maybe_free(b);
        return;
    }
    (void)gn_timer_start(&b->timer, d->cfg.handler_connect_timeout, handler_connect_timeout, b);
}

static void handler_remove(gn_ipcd *d, ipcd_handler *h)
{
    (void)gn_node_set_handler(d->node, h->proto, NULL, NULL);
    gni_list_del(&h->link);
    d->nhandlers--;
    gn_free(h);
}

/* Removes the stream handlers @c registered without keep (the client ends
 * or its connection becomes a stream). */
static void client_drop_handlers(ipcd_client *c)
{
    gn_ipcd *d = c->d;
    gni_list *e = d->handlers.next;
    while (e != &d->handlers) {
        ipcd_handler *h = GNI_CONTAINER_OF(e, ipcd_handler, link);
        e = e->next;
        if (h->owner == c) {
            handler_remove(d, h);
        }
    }
}

/* ------------------------------------------------------------------ */
/* requests                                                            */

static void op_dial_done(void *arg, const gn_node_dial_result *res);
static void op_ping_done(void *arg, int status, gn_time rtt);
static void op_stream_opened(void *arg, int status, gn_stream *s);
static void op_host_stream_opened(void *arg, int status, gn_channel *ch, gn_stream *s);

static void do_hello(ipcd_client *c, const Gnctl__Request *r)
{
    gn_ipcd *d = c->d;
    if (r->hello->client && r->hello->client[0]) {
        GN_LOG(GN_LOG_INFO, IPCD_LOG, "client %" PRIu64 " is %s (protocol %u)", c->num,
               r->hello->client, r->hello->version);
    }
    gn_peer_id me;
    gn_node_peer_id(d->node, &me);
    char peer[IPCD_PEER_STR];
    peer_str(&me, peer);
    gn_router_stats rs;
    char *features[2];
    size_t nf = 0;
    if (gn_node_dht_stats(d->node, &rs) != GN_ENOTSUP) {
        features[nf++] = "dht";
    }
    Gnctl__HelloResponse h = GNCTL__HELLO_RESPONSE__INIT;
    h.version = GN_CTL_VERSION;
    h.daemon_version = (char *)gn_version();
    h.peer = peer;
    h.max_message = GN_CTL_MSG_MAX;
    h.features = features;
    h.n_features = nf;
    Gnctl__Response resp = GNCTL__RESPONSE__INIT;
    resp.id = r->id;
    resp.result_case = GNCTL__RESPONSE__RESULT_HELLO;
    resp.hello = &h;
    client_send_response(c, &resp);
}

static void do_identify(ipcd_client *c, const Gnctl__Request *r)
{
    gn_ipcd *d = c->d;
    gn_peer_id me;
    gn_node_peer_id(d->node, &me);
    char peer[IPCD_PEER_STR];
    peer_str(&me, peer);
    const gn_multiaddr *mas[64];
    size_t nma = gn_host_listen_addrs(d->host, mas, GNI_ARRAY_LEN(mas));
    if (nma > GNI_ARRAY_LEN(mas)) {
        nma = GNI_ARRAY_LEN(mas);
    }
    char(*astr)[GN_NODE_ADDR_MAX] = gn_calloc(nma ? nma : 1, GN_NODE_ADDR_MAX);
    char **addrs = gn_calloc(nma ? nma : 1, sizeof *addrs);
    const char *protos[256];
    size_t np = gn_host_protocols(d->host, protos, GNI_ARRAY_LEN(protos));
    if (np > GNI_ARRAY_LEN(protos)) {
        np = GNI_ARRAY_LEN(protos);
    }
    if (!astr || !addrs) {
        gn_free(astr);
        gn_free(addrs);
        reply_err(c, r->id, GN_ENOMEM, "identify: out of memory");
        return;
    }
    size_t na = 0;
    for (size_t i = 0; i < nma; i++) {
        if (gn_multiaddr_to_string(mas[i], astr[na], GN_NODE_ADDR_MAX) >= 0) {
            addrs[na] = astr[na];
            na++;
        }
    }
    Gnctl__IdentifyResponse id = GNCTL__IDENTIFY_RESPONSE__INIT;
    id.peer = peer;
    id.addrs = addrs;
    id.n_addrs = na;
    id.protocols = (char **)protos;
    id.n_protocols = np;
    id.agent = (char *)gn_host_agent_version(d->host);
    Gnctl__Response resp = GNCTL__RESPONSE__INIT;
    resp.id = r->id;
    resp.result_case = GNCTL__RESPONSE__RESULT_IDENTIFY;
    resp.identify = &id;
    client_send_response(c, &resp);
    gn_free(astr);
    gn_free(addrs);
}

static const struct {
    const char *name;
    gn_node_option opt;
} ipcd_options[] = {
    {"max_connections", GN_NODE_OPT_MAX_CONNECTIONS},
    {"max_connections_per_peer", GN_NODE_OPT_MAX_CONNECTIONS_PER_PEER},
    {"idle_timeout_ms", GN_NODE_OPT_IDLE_TIMEOUT_MS},
    {"max_message_len", GN_NODE_OPT_MAX_MESSAGE_LEN},
    {"conn_high_water", GN_NODE_OPT_CONN_HIGH_WATER},
    {"conn_low_water", GN_NODE_OPT_CONN_LOW_WATER},
    {"conn_grace_ms", GN_NODE_OPT_CONN_GRACE_MS},
    {"max_upgrading", GN_NODE_OPT_MAX_UPGRADING},
    {"max_connections_per_ip", GN_NODE_OPT_MAX_CONNECTIONS_PER_IP},
    {"max_upgrading_per_ip", GN_NODE_OPT_MAX_UPGRADING_PER_IP},
    {"first_byte_timeout_ms", GN_NODE_OPT_FIRST_BYTE_TIMEOUT_MS},
};

static void do_configure(ipcd_client *c, const Gnctl__Request *r)
{
    const char *name = r->configure->name, *val = r->configure->value;
    size_t k = 0;
    while (k < GNI_ARRAY_LEN(ipcd_options) && strcmp(ipcd_options[k].name, name) != 0) {
        k++;
    }
    if (k == GNI_ARRAY_LEN(ipcd_options)) {
        reply_err(c, r->id, GN_ENOTSUP, "configure: unknown option '%s' (see "
                  "docs/protocols/control.md)", name);
        return;
    }
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(val, &end, 10);
    if (!val[0] || val[0] < '0' || val[0] > '9' || *end != '\0') {
        reply_err(c, r->id, GN_EINVAL, "configure %s: '%s' is not a decimal integer", name, val);
        return;
    }
    if (errno == ERANGE || v > UINT64_MAX) {
        reply_err(c, r->id, GN_EINVAL, "configure %s: '%s' is out of range (at most %" PRIu64 ")",
                  name, val, UINT64_MAX);
        return;
    }
    int rc = gn_node_configure(c->d->node, ipcd_options[k].opt, (uint64_t)v);
    if (rc < 0) {
        reply_err(c, r->id, rc, "configure %s=%s: %s", name, val, gn_strerror(rc));
        return;
    }
    reply_status(c, r->id, 0, "configure");
}

static void do_listen(ipcd_client *c, const Gnctl__Request *r)
{
    ipcd_op *op = op_new(c, r->id, OP_LISTEN);
    if (!op) {
        reply_err(c, r->id, GN_ENOMEM, "listen: out of memory");
        return;
    }
    int rc = gn_node_listen(c->d->node, r->listen->addr, &op->node_req);
    if (rc < 0) {
        op_detach(op);
        gn_free(op);
        reply_err(c, r->id, rc, "listen on '%s': %s", r->listen->addr, gn_strerror(rc));
    }
}

static void do_unlisten(ipcd_client *c, const Gnctl__Request *r)
{
    gn_multiaddr *ma = NULL;
    int rc = gn_multiaddr_parse(r->unlisten->addr, &ma);
    if (rc == 0) {
        rc = gn_host_unlisten(c->d->host, ma);
        gn_multiaddr *bare = NULL;
        /* the listen response's address ends with /p2p/<id>; the listener's does not */
        if (rc == GN_ENOTFOUND && gn_multiaddr_decapsulate_code(ma, GN_MA_P2P, &bare) == 0 &&
            bare) {
            rc = gn_host_unlisten(c->d->host, bare);
        }
        gn_multiaddr_free(bare);
        gn_multiaddr_free(ma);
    }
    if (rc < 0) {
        reply_err(c, r->id, rc, "unlisten '%s': %s%s", r->unlisten->addr, gn_strerror(rc),
                  rc == GN_ENOTFOUND ? " (give a bound address, as the listen response or "
                                       "identify gave it)" : "");
        return;
    }
    reply_status(c, r->id, 0, "unlisten");
}

static void do_dial(ipcd_client *c, const Gnctl__Request *r, int kind)
{
    const char *target = kind == OP_DIAL ? r->dial->addr
                         : kind == OP_PING_DIAL ? r->ping->peer
                                                : r->stream_open->peer;
    ipcd_op *op = op_new(c, r->id, kind);
    if (!op) {
        reply_err(c, r->id, GN_ENOMEM, "dial: out of memory");
        return;
    }
    if (kind == OP_STREAM_DIAL) {
        gni_str_copy(op->proto, sizeof op->proto, r->stream_open->protocol);
    }
    int rc = gn_node_dial_ex(c->d->node, target, op_dial_done, op, NULL);
    if (rc < 0) {
        op_detach(op);
        gn_free(op);
        reply_err(c, r->id, rc, "dial '%s': %s", target, gn_strerror(rc));
        if (kind == OP_STREAM_DIAL) {
            c->opening = false;
            client_update_reading(c);
        }
    }
}

static void stream_open_failed(ipcd_client *c, uint64_t rid, int status, const char *proto)
{
    reply_err(c, rid, status, "stream open %s: %s", proto, gn_strerror(status));
    c->opening = false;
    client_update_reading(c);
}

/* Opens @proto on @ch for @op (OP_STREAM). Returns 0 or an error (op untouched). */
static int start_stream_on(ipcd_op *op, gn_channel *ch)
{
    op->kind = OP_STREAM;
    return gn_channel_open_stream(ch, op->proto, op_stream_opened, op);
}

static void op_dial_done(void *arg, const gn_node_dial_result *res)
{
    ipcd_op *op = arg;
    ipcd_client *c = op->client;
    if (!c) {
        gn_free(op);
        return;
    }
    if (res->status != 0) {
        char got[IPCD_PEER_STR];
        peer_str(&res->peer, got);
        op_detach(op);
        if (op->kind == OP_STREAM_DIAL) {
            stream_open_failed(c, op->rid, res->status, op->proto);
        } else {
            reply_err(c, op->rid, res->status, "dial failed: %s%s%s", gn_strerror(res->status),
                      got[0] ? "; the peer that answered is " : "", got);
        }
        gn_free(op);
        return;
    }
    if (op->kind == OP_DIAL) {
        op_detach(op);
        gn_channel_info info;
        gn_channel_state st = gn_channel_state_get(res->ch, &info);
        char peer[IPCD_PEER_STR];
        Gnctl__ChannelInfo ci;
        fill_channel(&ci, st, &info, peer);
        Gnctl__Response resp = GNCTL__RESPONSE__INIT;
        resp.id = op->rid;
        resp.result_case = GNCTL__RESPONSE__RESULT_CHANNEL;
        resp.channel = &ci;
        client_send_response(c, &resp);
        gn_free(op);
        return;
    }
    int rc;
    if (op->kind == OP_PING_DIAL) {
        op->kind = OP_PING;
        rc = gn_channel_ping(res->ch, op_ping_done, op);
    } else {
        op->node_req = gn_channel_id(res->ch);
        rc = start_stream_on(op, res->ch);
    }
    if (rc < 0) {
        op_detach(op);
        if (op->kind == OP_STREAM) {
            stream_open_failed(c, op->rid, rc, op->proto);
        } else {
            reply_err(c, op->rid, rc, "ping: %s", gn_strerror(rc));
        }
        gn_free(op);
    }
}

static void op_ping_done(void *arg, int status, gn_time rtt)
{
    ipcd_op *op = arg;
    ipcd_client *c = op_detach(op);
    if (c) {
        if (status == 0) {
            Gnctl__PingResponse pr = GNCTL__PING_RESPONSE__INIT;
            pr.rtt_ns = (uint64_t)rtt;
            Gnctl__Response resp = GNCTL__RESPONSE__INIT;
            resp.id = op->rid;
            resp.result_case = GNCTL__RESPONSE__RESULT_PING;
            resp.ping = &pr;
            client_send_response(c, &resp);
        } else {
            reply_err(c, op->rid, status, "ping failed: %s", gn_strerror(status));
        }
    }
    gn_free(op);
}

static void do_ping(ipcd_client *c, const Gnctl__Request *r)
{
    if (r->ping->channel_id == 0) {
        if (!r->ping->peer[0]) {
            reply_err(c, r->id, GN_EINVAL, "ping needs channel_id or peer");
            return;
        }
        do_dial(c, r, OP_PING_DIAL);
        return;
    }
    gn_channel *ch = gn_node_channel_find(c->d->node, r->ping->channel_id);
    if (!ch) {
        reply_err(c, r->id, GN_ENOTFOUND, "ping: no channel %" PRIu64, r->ping->channel_id);
        return;
    }
    ipcd_op *op = op_new(c, r->id, OP_PING);
    if (!op) {
        reply_err(c, r->id, GN_ENOMEM, "ping: out of memory");
        return;
    }
    int rc = gn_channel_ping(ch, op_ping_done, op);
    if (rc < 0) {
        op_detach(op);
        gn_free(op);
        reply_err(c, r->id, rc, "ping: %s", gn_strerror(rc));
    }
}

/* The stream is open for @c: answer, then the connection carries it. */
static void stream_ready(ipcd_client *c, ipcd_op *op, gn_channel *ch, gn_stream *s)
{
    gn_ipcd *d = c->d;
    gn_channel_info info;
    memset(&info, 0, sizeof info);
    if (ch) {
        gn_channel_state_get(ch, &info);
    }
    char peer[IPCD_PEER_STR];
    peer_str(&info.remote_peer, peer);
    ipcd_bridge *b = c->closing ? NULL : bridge_new(d, s);
    if (!b) {
        gn_stream_close(s, NULL, NULL);
        stream_open_failed(c, op->rid, c->closing ? GN_ECLOSED : GN_ENOMEM, op->proto);
        return;
    }
    Gnctl__StreamInfo si = GNCTL__STREAM_INFO__INIT;
    si.channel_id = info.id;
    si.peer = peer;
    si.addr = info.remote_addr;
    si.protocol = op->proto;
    Gnctl__Response resp = GNCTL__RESPONSE__INIT;
    resp.id = op->rid;
    resp.result_case = GNCTL__RESPONSE__RESULT_STREAM;
    resp.stream = &si;
    client_send_response(c, &resp);
    if (c->closing) {
        /* the response passed the output bound */
        b->conn_closed = true;
        bridge_close(b, GN_ECLOSED);
        return;
    }
    /* from here on the connection belongs to the bridge; the client's
     * handlers end with its control use (client_close never runs for it) */
    client_orphan_ops(c, false);
    client_drop_handlers(c);
    c->raw = true;
    c->opening = false;
    c->bridge = b;
    b->client = c;
    b->conn = c->conn;
    bridge_start(b);
}

static void op_stream_opened(void *arg, int status, gn_stream *s)
{
    ipcd_op *op = arg;
    ipcd_client *c = op_detach(op);
    if (!c) {
        if (status == 0) {
            gn_stream_close(s, NULL, NULL);
        }
        gn_free(op);
        return;
    }
    if (status < 0) {
        stream_open_failed(c, op->rid, status, op->proto);
    } else {
        stream_ready(c, op, gn_node_channel_find(c->d->node, op->node_req), s);
    }
    gn_free(op);
}

static void op_host_stream_opened(void *arg, int status, gn_channel *ch, gn_stream *s)
{
    ipcd_op *op = arg;
    ipcd_client *c = op_detach(op);
    if (!c) {
        if (status == 0) {
            gn_stream_close(s, NULL, NULL);
        }
        gn_free(op);
        return;
    }
    if (status < 0) {
        stream_open_failed(c, op->rid, status, op->proto);
    } else {
        stream_ready(c, op, ch, s);
    }
    gn_free(op);
}

static void do_stream_open(ipcd_client *c, const Gnctl__Request *r)
{
    gn_ipcd *d = c->d;
    const Gnctl__StreamOpenRequest *so = r->stream_open;
    if (!so->protocol[0] || strlen(so->protocol) >= GN_PROTOCOL_ID_MAX) {
        reply_err(c, r->id, GN_EINVAL, "stream open: a protocol id of 1..%d bytes is needed",
                  GN_PROTOCOL_ID_MAX - 1);
        return;
    }
    if (d->nbridges >= d->cfg.max_streams) {
        reply_err(c, r->id, GN_ELIMIT, "stream open: %zu streams carried already (max_streams)",
                  d->nbridges);
        return;
    }
    /* what the client sends next belongs to the stream if it opens */
    c->opening = true;
    client_update_reading(c);
    if (so->channel_id == 0) {
        gn_peer_id pid;
        if (!so->peer[0]) {
            stream_open_failed(c, r->id, GN_EINVAL, so->protocol);
            return;
        }
        if (so->peer[0] != '/' || !strncmp(so->peer, "/p2p/", 5)) {
            if (parse_peer(so->peer, &pid) < 0) {
                reply_err(c, r->id, GN_EPARSE, "stream open: '%s' is not a peer ID", so->peer);
                c->opening = false;
                client_update_reading(c);
                return;
            }
            ipcd_op *op = op_new(c, r->id, OP_STREAM);
            if (!op) {
                stream_open_failed(c, r->id, GN_ENOMEM, so->protocol);
                return;
            }
            gni_str_copy(op->proto, sizeof op->proto, so->protocol);
            int rc = gn_host_new_stream(d->host, &pid, so->protocol, op_host_stream_opened, op,
                                        NULL);
            if (rc < 0) {
                op_detach(op);
                gn_free(op);
                stream_open_failed(c, r->id, rc, so->protocol);
            }
            return;
        }
        do_dial(c, r, OP_STREAM_DIAL);
        return;
    }
    gn_channel *ch = gn_node_channel_find(d->node, so->channel_id);
    if (!ch) {
        reply_err(c, r->id, GN_ENOTFOUND, "stream open: no channel %" PRIu64, so->channel_id);
        c->opening = false;
        client_update_reading(c);
        return;
    }
    ipcd_op *op = op_new(c, r->id, OP_STREAM);
    if (!op) {
        stream_open_failed(c, r->id, GN_ENOMEM, so->protocol);
        return;
    }
    gni_str_copy(op->proto, sizeof op->proto, so->protocol);
    op->node_req = so->channel_id;
    int rc = start_stream_on(op, ch);
    if (rc < 0) {
        op_detach(op);
        gn_free(op);
        stream_open_failed(c, r->id, rc, so->protocol);
    }
}

static void do_stream_handler(ipcd_client *c, const Gnctl__Request *r)
{
    gn_ipcd *d = c->d;
    const Gnctl__StreamHandlerRequest *sh = r->stream_handler;
    gni_ipc_addr a;
    char err[256];
    int rc = gni_ipc_addr_parse(sh->path, &a, err, sizeof err);
    if (rc < 0) {
        reply_err(c, r->id, rc, "stream handler path: %s", err);
        return;
    }
    if (a.kind == GNI_IPC_TCP && a.port == 0) {
        reply_err(c, r->id, GN_EINVAL, "stream handler path: a TCP address needs its port");
        return;
    }
    if (sh->n_protocols == 0) {
        reply_err(c, r->id, GN_EINVAL, "stream handler: no protocol given");
        return;
    }
    if (d->nhandlers + sh->n_protocols > d->cfg.max_handlers) {
        reply_err(c, r->id, GN_ELIMIT, "stream handler: at most %zu handlers (max_handlers)",
                  d->cfg.max_handlers);
        return;
    }
    size_t done = 0;
    for (; done < sh->n_protocols; done++) {
        const char *p = sh->protocols[done];
        if (!p[0] || strlen(p) >= GN_PROTOCOL_ID_MAX) {
            rc = GN_EINVAL;
            snprintf(err, sizeof err, "protocol id of %zu bytes", strlen(p));
            break;
        }
        if (handler_find(d, p)) {
            rc = GN_EEXIST;
            snprintf(err, sizeof err, "%s is handled already by a client", p);
            break;
        }
        ipcd_handler *h = gn_calloc(1, sizeof *h);
        if (!h) {
            rc = GN_ENOMEM;
            snprintf(err, sizeof err, "out of memory");
            break;
        }
        gni_str_copy(h->proto, sizeof h->proto, p);
        gni_str_copy(h->path, sizeof h->path, sh->path);
        h->owner = sh->keep ? NULL : c;
        rc = gn_node_set_handler(d->node, p, handler_stream, d);
        if (rc < 0) {
            gn_free(h);
            snprintf(err, sizeof err, "%s: %s%s", p, gn_strerror(rc),
                     rc == GN_EEXIST ? " (a protocol the node serves itself)" : "");
            break;
        }
        gni_list_add_tail(&d->handlers, &h->link);
        d->nhandlers++;
    }
    if (rc < 0) {
        for (size_t i = 0; i < done; i++) {
            ipcd_handler *h = handler_find(d, sh->protocols[i]);
            if (h) {
                handler_remove(d, h);
            }
        }
        reply_err(c, r->id, rc, "stream handler: %s", err);
        return;
    }
    reply_status(c, r->id, 0, "stream handler");
}

static void do_stream_unhandle(ipcd_client *c, const Gnctl__Request *r)
{
    gn_ipcd *d = c->d;
    const Gnctl__StreamUnhandleRequest *su = r->stream_unhandle;
    for (size_t i = 0; i < su->n_protocols; i++) {
        ipcd_handler *h = handler_find(d, su->protocols[i]);
        if (!h || (h->owner && h->owner != c)) {
            reply_err(c, r->id, GN_ENOTFOUND, "stream unhandle: %s is not handled%s",
                      su->protocols[i], h ? " by this client" : "");
            return;
        }
    }
    for (size_t i = 0; i < su->n_protocols; i++) {
        ipcd_handler *h = handler_find(d, su->protocols[i]);
        if (h) {
            handler_remove(d, h);
        }
    }
    reply_status(c, r->id, 0, "stream unhandle");
}

static void op_dht_done(void *arg, const gn_node_dht_result *res)
{
    ipcd_op *op = arg;
    ipcd_client *c = op_detach(op);
    if (!c) {
        gn_free(op);
        return;
    }
    if (res->status != 0 && !(res->status == GN_ETIMEDOUT && res->npeers > 0)) {
        reply_err(c, op->rid, res->status, "dht: %s%s", gn_strerror(res->status),
                  res->status == GN_ENOTSUP ? " (the node has no DHT router: run it with "
                                              "--router kad)"
                                            : "");
        gn_free(op);
        return;
    }
    size_t np = GNI_MIN(res->npeers, (size_t)GN_CTL_REPEATED_MAX);
    Gnctl__PeerAddrs *pa = gn_calloc(np ? np : 1, sizeof *pa);
    Gnctl__PeerAddrs **pp = gn_calloc(np ? np : 1, sizeof *pp);
    char(*ids)[IPCD_PEER_STR] = gn_calloc(np ? np : 1, IPCD_PEER_STR);
    size_t total_addrs = 0;
    for (size_t i = 0; i < np; i++) {
        total_addrs += GNI_MIN(res->peers[i].naddrs, (size_t)64);
    }
    char(*astr)[GN_NODE_ADDR_MAX] = gn_calloc(total_addrs ? total_addrs : 1, GN_NODE_ADDR_MAX);
    char **aptr = gn_calloc(total_addrs ? total_addrs : 1, sizeof *aptr);
    if (!pa || !pp || !ids || !astr || !aptr) {
        reply_err(c, op->rid, GN_ENOMEM, "dht: out of memory");
    } else {
        size_t k = 0;
        for (size_t i = 0; i < np; i++) {
            gnctl__peer_addrs__init(&pa[i]);
            peer_str(&res->peers[i].id, ids[i]);
            pa[i].peer = ids[i];
            pa[i].addrs = aptr + k;
            size_t na = GNI_MIN(res->peers[i].naddrs, (size_t)64);
            for (size_t j = 0; j < na; j++) {
                if (gn_multiaddr_to_string(res->peers[i].addrs[j], astr[k], GN_NODE_ADDR_MAX) >=
                    0) {
                    aptr[k] = astr[k];
                    k++;
                    pa[i].n_addrs++;
                }
            }
            pp[i] = &pa[i];
        }
        Gnctl__DhtResponse dr = GNCTL__DHT_RESPONSE__INIT;
        dr.value.data = (uint8_t *)res->value.base;
        dr.value.len = res->value.len;
        dr.peers = pp;
        dr.n_peers = np;
        Gnctl__Response resp = GNCTL__RESPONSE__INIT;
        resp.id = op->rid;
        resp.status = res->status;
        resp.error = res->status ? "timed out; partial result" : "";
        resp.result_case = GNCTL__RESPONSE__RESULT_DHT;
        resp.dht = &dr;
        client_send_response(c, &resp);
    }
    gn_free(pa);
    gn_free(pp);
    gn_free(ids);
    gn_free(astr);
    gn_free(aptr);
    gn_free(op);
}

static void do_dht(ipcd_client *c, const Gnctl__Request *r)
{
    gn_ipcd *d = c->d;
    const Gnctl__DhtRequest *q = r->dht;
    gn_router_stats rs;
    if (gn_node_dht_stats(d->node, &rs) == GN_ENOTSUP) {
        reply_err(c, r->id, GN_ENOTSUP, "dht: the node has no DHT router (start the daemon with "
                  "--router kad)");
        return;
    }
    if (q->op != GNCTL__DHT_OP__DHT_FIND_PEER &&
        (q->key.len == 0 || q->key.len > GN_NODE_DHT_KEY_MAX)) {
        reply_err(c, r->id, GN_EINVAL, "dht: a key of 1..%u bytes is needed", GN_NODE_DHT_KEY_MAX);
        return;
    }
    ipcd_op *op = op_new(c, r->id, OP_DHT);
    if (!op) {
        reply_err(c, r->id, GN_ENOMEM, "dht: out of memory");
        return;
    }
    int rc;
    gn_peer_id pid;
    switch (q->op) {
    case GNCTL__DHT_OP__DHT_FIND_PEER:
        rc = parse_peer(q->peer, &pid);
        if (rc == 0) {
            rc = gn_node_dht_find_peer(d->node, &pid, op_dht_done, op);
        }
        break;
    case GNCTL__DHT_OP__DHT_GET:
        rc = gn_node_dht_get(d->node, q->key.data, q->key.len, op_dht_done, op);
        break;
    case GNCTL__DHT_OP__DHT_PUT:
        rc = q->value.len > GN_NODE_DHT_VALUE_MAX
                 ? GN_ETOOBIG
                 : gn_node_dht_put(d->node, q->key.data, q->key.len, q->value.data, q->value.len,
                                   op_dht_done, op);
        break;
    case GNCTL__DHT_OP__DHT_PROVIDE:
        rc = gn_node_dht_provide(d->node, q->key.data, q->key.len, op_dht_done, op);
        break;
    case GNCTL__DHT_OP__DHT_FIND_PROVIDERS:
        rc = gn_node_dht_find_providers(d->node, q->key.data, q->key.len,
                                        q->count ? GNI_MIN(q->count, 1000u) : 20u, op_dht_done,
                                        op);
        break;
    case GNCTL__DHT_OP__DHT_CLOSEST_PEERS:
        rc = gn_node_dht_closest_peers(d->node, q->key.data, q->key.len, op_dht_done, op);
        break;
    default:
        rc = GN_ENOTSUP;
        break;
    }
    if (rc < 0) {
        op_detach(op);
        gn_free(op);
        reply_err(c, r->id, rc, "dht: %s%s", gn_strerror(rc),
                  q->op == GNCTL__DHT_OP__DHT_FIND_PEER && rc == GN_EPARSE ? " (bad peer ID)" :
                  rc == GN_ENOTSUP ? " (unknown DHT op)" : "");
    }
}

static void do_peers(ipcd_client *c, const Gnctl__Request *r)
{
    gn_ipcd *d = c->d;
    uint64_t *ids = gn_calloc(IPCD_PEERS_MAX, sizeof *ids);
    gn_channel_info *infos = gn_calloc(IPCD_PEERS_MAX, sizeof *infos);
    Gnctl__ChannelInfo *cis = gn_calloc(IPCD_PEERS_MAX, sizeof *cis);
    Gnctl__ChannelInfo **cp = gn_calloc(IPCD_PEERS_MAX, sizeof *cp);
    char(*peers)[IPCD_PEER_STR] = gn_calloc(IPCD_PEERS_MAX, IPCD_PEER_STR);
    if (!ids || !infos || !cis || !cp || !peers) {
        reply_err(c, r->id, GN_ENOMEM, "peers: out of memory");
        goto out;
    }
    int total = gn_node_channel_ids(d->node, ids, IPCD_PEERS_MAX);
    size_t n = total < 0 ? 0 : GNI_MIN((size_t)total, (size_t)IPCD_PEERS_MAX), k = 0;
    for (size_t i = 0; i < n; i++) {
        gn_channel *ch = gn_node_channel_find(d->node, ids[i]);
        if (!ch) {
            continue;
        }
        gn_channel_state st = gn_channel_state_get(ch, &infos[k]);
        if (st == GN_CHANNEL_CLOSED) {
            continue;
        }
        fill_channel(&cis[k], st, &infos[k], peers[k]);
        cp[k] = &cis[k];
        k++;
    }
    Gnctl__PeersResponse pr = GNCTL__PEERS_RESPONSE__INIT;
    pr.channels = cp;
    pr.n_channels = k;
    pr.truncated = total > (int)IPCD_PEERS_MAX;
    Gnctl__Response resp = GNCTL__RESPONSE__INIT;
    resp.id = r->id;
    resp.result_case = GNCTL__RESPONSE__RESULT_PEERS;
    resp.peers = &pr;
    client_send_response(c, &resp);
out:
    gn_free(ids);
    gn_free(infos);
    gn_free(cis);
    gn_free(cp);
    gn_free(peers);
}

static void do_peer_info(ipcd_client *c, const Gnctl__Request *r)
{
    gn_ipcd *d = c->d;
    gn_peer_id pid;
    if (parse_peer(r->peer_info->peer, &pid) < 0) {
        reply_err(c, r->id, GN_EPARSE, "peer info: '%s' is not a peer ID", r->peer_info->peer);
        return;
    }
    gn_peer_info pi;
    int rc = gn_node_peer_info(d->node, &pid, &pi);
    if (rc < 0) {
        reply_err(c, r->id, rc, "peer info %s: %s", r->peer_info->peer,
                  rc == GN_ENOTFOUND ? "not in the peer store" : gn_strerror(rc));
        return;
    }
    size_t na = GNI_MIN(pi.n_addrs, (size_t)256), np = GNI_MIN(pi.n_protocols, (size_t)256);
    char(*buf)[GN_NODE_ADDR_MAX] = gn_calloc(na + np + 1, GN_NODE_ADDR_MAX);
    char **ptr = gn_calloc(na + np + 1, sizeof *ptr);
    if (!buf || !ptr) {
        gn_free(buf);
        gn_free(ptr);
        reply_err(c, r->id, GN_ENOMEM, "peer info: out of memory");
        return;
    }
    size_t ka = 0, kp = 0;
    for (size_t i = 0; i < na; i++) {
        if (gn_node_peer_addr(d->node, &pid, i, buf[ka], GN_NODE_ADDR_MAX) >= 0) {
            ptr[ka] = buf[ka];
            ka++;
        }
    }
    for (size_t i = 0; i < np; i++) {
        if (gn_node_peer_protocol(d->node, &pid, i, buf[ka + kp], GN_NODE_ADDR_MAX) >= 0) {
            ptr[ka + kp] = buf[ka + kp];
            kp++;
        }
    }
    char peer[IPCD_PEER_STR];
    peer_str(&pid, peer);
    Gnctl__PeerInfo info = GNCTL__PEER_INFO__INIT;
    info.peer = peer;
    info.identified = pi.identified;
    info.agent = pi.agent_version;
    info.observed_addr = pi.observed_addr;
    info.addrs = ptr;
    info.n_addrs = ka;
    info.protocols = ptr + ka;
    info.n_protocols = kp;
    info.latency_ns = (uint64_t)gn_host_peer_latency(d->host, &pid);
    Gnctl__Response resp = GNCTL__RESPONSE__INIT;
    resp.id = r->id;
    resp.result_case = GNCTL__RESPONSE__RESULT_PEER_INFO;
    resp.peer_info = &info;
    client_send_response(c, &resp);
    gn_free(buf);
    gn_free(ptr);
}

static gn_channel *find_channel(ipcd_client *c, uint64_t rid, uint64_t id, const char *what)
{
    gn_channel *ch = id ? gn_node_channel_find(c->d->node, id) : NULL;
    if (!ch) {
        reply_err(c, rid, GN_ENOTFOUND, "%s: no channel %" PRIu64, what, id);
    }
    return ch;
}

static void do_channel(ipcd_client *c, const Gnctl__Request *r)
{
    switch (r->op_case) {
    case GNCTL__REQUEST__OP_CHANNEL_CLOSE: {
        gn_channel *ch = find_channel(c, r->id, r->channel_close->channel_id, "channel close");
        if (ch) {
            gn_channel_close(ch);
            reply_status(c, r->id, 0, "channel close");
        }
        break;
    }
    case GNCTL__REQUEST__OP_CHANNEL_SEND: {
        gn_channel *ch = find_channel(c, r->id, r->channel_send->channel_id, "channel send");
        if (ch) {
            int rc = gn_channel_send(ch, r->channel_send->data.data, r->channel_send->data.len);
            if (rc < 0) {
                reply_err(c, r->id, rc, "channel send: %s%s", gn_strerror(rc),
                          rc == GN_EAGAIN ? " (wait for EV_WRITABLE on this channel)" : "");
            } else {
                reply_status(c, r->id, 0, "channel send");
            }
        }
        break;
    }
    case GNCTL__REQUEST__OP_CHANNEL_STATE: {
        gn_channel *ch = find_channel(c, r->id, r->channel_state->channel_id, "channel state");
        if (ch) {
            gn_channel_info info;
            gn_channel_state st = gn_channel_state_get(ch, &info);
            char peer[IPCD_PEER_STR];
            Gnctl__ChannelInfo ci;
            fill_channel(&ci, st, &info, peer);
            Gnctl__Response resp = GNCTL__RESPONSE__INIT;
            resp.id = r->id;
            resp.result_case = GNCTL__RESPONSE__RESULT_CHANNEL;
            resp.channel = &ci;
            client_send_response(c, &resp);
        }
        break;
    }
    default: {
        gn_channel *ch =
            find_channel(c, r->id, r->channel_metrics->channel_id, "channel metrics");
        if (ch) {
            gn_channel_metrics m;
            gn_channel_metrics_get(ch, &m);
            Gnctl__ChannelMetrics cm = GNCTL__CHANNEL_METRICS__INIT;
            cm.bytes_in = m.bytes_in;
            cm.bytes_out = m.bytes_out;
            cm.messages_in = m.messages_in;
            cm.messages_out = m.messages_out;
            cm.streams_open = m.streams_open;
            cm.last_rtt_ns = (uint64_t)m.last_rtt;
            cm.uptime_ns = (uint64_t)m.uptime;
            Gnctl__Response resp = GNCTL__RESPONSE__INIT;
            resp.id = r->id;
            resp.result_case = GNCTL__RESPONSE__RESULT_METRICS;
            resp.metrics = &cm;
            client_send_response(c, &resp);
        }
        break;
    }
    }
}

static void reply_send(ipcd_client *c, uint64_t rid, int rc, uint64_t send_id, const char *what)
{
    if (rc < 0) {
        reply_err(c, rid, rc, "%s: %s%s", what, gn_strerror(rc),
                  rc == GN_EAGAIN ? " (the channel's queue is full: wait for EV_WRITABLE)" : "");
        return;
    }
    Gnctl__SendResponse sr = GNCTL__SEND_RESPONSE__INIT;
    sr.send_id = send_id;
    Gnctl__Response resp = GNCTL__RESPONSE__INIT;
    resp.id = rid;
    resp.result_case = GNCTL__RESPONSE__RESULT_SEND;
    resp.send = &sr;
    client_send_response(c, &resp);
}

static void do_disconnect(ipcd_client *c, const Gnctl__Request *r)
{
    gn_ipcd *d = c->d;
    gn_peer_id pid;
    if (parse_peer(r->disconnect->peer, &pid) < 0) {
        reply_err(c, r->id, GN_EPARSE, "disconnect: '%s' is not a peer ID", r->disconnect->peer);
        return;
    }
    uint64_t ids[256];
    int total = gn_node_channel_ids(d->node, ids, GNI_ARRAY_LEN(ids));
    size_t n = total < 0 ? 0 : GNI_MIN((size_t)total, GNI_ARRAY_LEN(ids)), closed = 0;
    for (size_t i = 0; i < n; i++) {
        gn_channel *ch = gn_node_channel_find(d->node, ids[i]);
        gn_channel_info info;
        if (ch && gn_channel_state_get(ch, &info) != GN_CHANNEL_CLOSED &&
            gn_peer_id_equal(&info.remote_peer, &pid)) {
            gn_channel_close(ch);
            closed++;
        }
    }
    if (closed == 0) {
        reply_err(c, r->id, GN_ENOTFOUND, "disconnect: no channel to %s", r->disconnect->peer);
        return;
    }
    reply_status(c, r->id, 0, "disconnect");
}

static void do_subscribe(ipcd_client *c, const Gnctl__Request *r)
{
    c->mask = r->subscribe->mask;
    Gnctl__SubscribeResponse sr = GNCTL__SUBSCRIBE_RESPONSE__INIT;
    sr.mask = c->mask;
    sr.queue_max = (uint32_t)GNI_MIN(c->d->cfg.client_queue_max, (size_t)UINT32_MAX);
    Gnctl__Response resp = GNCTL__RESPONSE__INIT;
    resp.id = r->id;
    resp.result_case = GNCTL__RESPONSE__RESULT_SUBSCRIBE;
    resp.subscribe = &sr;
    client_send_response(c, &resp);
}

static void dispatch(ipcd_client *c, const Gnctl__Request *r)
{
    gn_ipcd *d = c->d;
    uint64_t send_id = 0;
    int rc;
    switch (r->op_case) {
    case GNCTL__REQUEST__OP_HELLO:
        do_hello(c, r);
        break;
    case GNCTL__REQUEST__OP_IDENTIFY:
        do_identify(c, r);
        break;
    case GNCTL__REQUEST__OP_CONFIGURE:
        do_configure(c, r);
        break;
    case GNCTL__REQUEST__OP_LISTEN:
        do_listen(c, r);
        break;
    case GNCTL__REQUEST__OP_UNLISTEN:
        do_unlisten(c, r);
        break;
    case GNCTL__REQUEST__OP_DIAL:
        if (!r->dial->addr[0]) {
            reply_err(c, r->id, GN_EINVAL, "dial: an address or peer ID is needed");
        } else {
            do_dial(c, r, OP_DIAL);
        }
        break;
    case GNCTL__REQUEST__OP_UNICAST:
        rc = gn_node_unicast(d->node, r->unicast->to, r->unicast->data.data, r->unicast->data.len,
                             &send_id);
        reply_send(c, r->id, rc, send_id, "unicast");
        break;
    case GNCTL__REQUEST__OP_BROADCAST:
        rc = gn_node_broadcast(d->node, r->broadcast->data.data, r->broadcast->data.len, &send_id);
        reply_send(c, r->id, rc, send_id, "broadcast");
        break;
    case GNCTL__REQUEST__OP_CHANNEL_CLOSE:
    case GNCTL__REQUEST__OP_CHANNEL_SEND:
    case GNCTL__REQUEST__OP_CHANNEL_STATE:
    case GNCTL__REQUEST__OP_CHANNEL_METRICS:
        do_channel(c, r);
        break;
    case GNCTL__REQUEST__OP_PEERS:
        do_peers(c, r);
        break;
    case GNCTL__REQUEST__OP_PEER_INFO:
        do_peer_info(c, r);
        break;
    case GNCTL__REQUEST__OP_PING:
        do_ping(c, r);
        break;
    case GNCTL__REQUEST__OP_STREAM_OPEN:
        do_stream_open(c, r);
        break;
    case GNCTL__REQUEST__OP_STREAM_HANDLER:
        do_stream_handler(c, r);
        break;
    case GNCTL__REQUEST__OP_STREAM_UNHANDLE:
        do_stream_unhandle(c, r);
        break;
    case GNCTL__REQUEST__OP_DHT:
        do_dht(c, r);
        break;
    case GNCTL__REQUEST__OP_SUBSCRIBE:
        do_subscribe(c, r);
        break;
    case GNCTL__REQUEST__OP_PUBSUB:
        reply_err(c, r->id, GN_ENOTSUP, "pubsub: no pubsub component is built into this golemnet");
        break;
    case GNCTL__REQUEST__OP_DISCONNECT:
        do_disconnect(c, r);
        break;
    default:
        reply_err(c, r->id, GN_ENOTSUP, "unknown op");
        break;
    }
}

/* ------------------------------------------------------------------ */
/* clients                                                             */

static void client_update_reading(ipcd_client *c)
{
    if (c->closing || c->raw) {
        return;
    }
    if (!c->paused && !c->opening && !c->d->draining && c->nops < IPCD_CLIENT_OPS_MAX) {
        (void)gni_ipc_conn_read_start(c->conn);
    } else {
        gni_ipc_conn_read_stop(c->conn);
    }
}

static void client_on_msg(gni_ipc_conn *conn, const uint8_t *msg, size_t len, void *ud)
{
    ipcd_client *c = ud;
    gn_ipcd *d = c->d;
    (void)conn;
    if (c->closing || c->raw) {
        return;
    }
    Gnctl__Request *r = NULL;
    uint64_t id = 0;
    char err[GN_CTL_STRING_MAX];
    int rc = gni_ctl_request_decode(msg, len, &r, &id, err, sizeof err);
    if (rc < 0) {
        d->st.bad_requests++;
        GN_LOG(GN_LOG_INFO, IPCD_LOG, "client %" PRIu64 ": bad request %" PRIu64 ": %s", c->num,
               id, err);
        reply_err(c, id, rc, "bad request: %s", err);
        return;
    }
    d->st.requests++;
    GN_LOG(GN_LOG_DEBUG, IPCD_LOG, "client %" PRIu64 ": %s (id %" PRIu64 ")", c->num,
           gni_ctl_op_name(r), r->id);
    dispatch(c, r);
    gni_ctl_request_free(r);
}

static void client_on_end(gni_ipc_conn *conn, int err, void *ud)
{
    ipcd_client *c = ud;
    gn_ipcd *d = c->d;
    (void)conn;
    if (err == GN_EFRAMESIZE || err == GN_EPARSE) {
        d->st.framing_lost++;
        GN_LOG(GN_LOG_INFO, IPCD_LOG, "client %" PRIu64 ": framing lost (%s); closing", c->num,
               gn_err_name(err));
        if (err == GN_EFRAMESIZE) {
            reply_err(c, 0, err, "frame longer than %u bytes; closing the connection",
                      GN_CTL_MSG_MAX);
        } else {
            reply_err(c, 0, GN_EBADFRAME, "bad frame length (varint); closing the connection");
        }
    } else if (err != GN_EEOF) {
        GN_LOG(GN_LOG_DEBUG, IPCD_LOG, "client %" PRIu64 ": %s", c->num, gn_err_name(err));
    }
    client_close(c, true);
}

static void client_on_writable(gni_ipc_conn *conn, void *ud)
{
    ipcd_client *c = ud;
    (void)conn;
    if (c->paused && gni_ipc_conn_queued(c->conn) <= c->d->cfg.client_queue_max / 2) {
        c->paused = false;
        client_update_reading(c);
    }
}

static void client_on_close(gni_ipc_conn *conn, void *ud)
{
    ipcd_client *c = ud;
    gn_ipcd *d = c->d;
    (void)conn;
    gni_list_del(&c->link);
    d->nclients--;
    d->st.clients_now = d->nclients;
    GN_LOG(GN_LOG_DEBUG, IPCD_LOG, "client %" PRIu64 " gone", c->num);
    gn_free(c);
    ipcd_maybe_free(d);
}

static const gni_ipc_conn_cbs client_cbs = {
    .on_msg = client_on_msg,
    .on_end = client_on_end,
    .on_writable = client_on_writable,
    .on_close = client_on_close,
};

static void client_close(ipcd_client *c, bool flush)
{
    if (c->closing) {
        return;
    }
    c->closing = true;
    client_orphan_ops(c, false);
    client_drop_handlers(c);
    gni_ipc_conn_close(c->conn, flush);
}

static void on_accept(gni_ipc_listener *l, gni_ipc_conn *conn, void *ud)
{
    gn_ipcd *d = ud;
    (void)l;
    if (d->draining || d->nclients >= d->cfg.max_clients) {
        d->st.clients_refused++;
        GN_LOG(GN_LOG_WARNING, IPCD_LOG, "refusing a client: %s",
               d->draining ? "stopping" : "max_clients reached");
        gni_ipc_conn_close(conn, false);
        return;
    }
    ipcd_client *c = gn_calloc(1, sizeof *c);
    if (!c) {
        gni_ipc_conn_close(conn, false);
        return;
    }
    c->d = d;
    c->conn = conn;
    c->num = ++d->next_client;
    gni_list_init(&c->ops);
    gni_list_add_tail(&d->clients, &c->link);
    d->nclients++;
    d->st.clients_accepted++;
    d->st.clients_now = d->nclients;
    gni_ipc_conn_set_cbs(conn, &client_cbs, c);
    (void)gni_ipc_conn_set_limits(conn, GN_CTL_MSG_MAX, d->cfg.client_queue_max / 2);
    GN_LOG(GN_LOG_DEBUG, IPCD_LOG, "client %" PRIu64 " connected%s", c->num,
           gni_ipc_conn_is_tcp(conn) ? " (tcp)" : "");
    if (gni_ipc_conn_read_start(conn) < 0) {
        client_close(c, false);
    }
}

/* ------------------------------------------------------------------ */
/* life cycle                                                          */

void gn_ipcd_config_default(gn_ipcd_config *cfg)
{
    if (!cfg) {
        return;
    }
    memset(cfg, 0, sizeof *cfg);
    cfg->version = GN_IPCD_CONFIG_VERSION;
    cfg->max_clients = 64;
    cfg->client_queue_max = 4u * 1024u * 1024u;
    cfg->max_handlers = 64;
    cfg->max_streams = 1024;
    cfg->handler_connect_timeout = 5 * GN_S;
}

int gn_ipcd_default_address(const char *name, char *out, size_t cap)
{
    return gni_ipc_default_path(name, NULL, out, cap);
}

const char *gn_ipcd_address(const gn_ipcd *d, int which)
{
    if (!d || which < 0 || which > 1 || !d->have_bound[which]) {
        return NULL;
    }
    return d->bound[which];
}

int gn_ipcd_stats_get(const gn_ipcd *d, gn_ipcd_stats *st)
{
    if (!d || !st) {
        return GN_EINVAL;
    }
    *st = d->st;
    for (size_t i = 0; i < 2; i++) {
        if (d->lst[i]) {
            st->clients_refused += gni_ipc_listener_refused(d->lst[i]);
        }
    }
    return 0;
}

static void ipcd_handle_closed(uv_handle_t *h)
{
    gn_ipcd *d = h->data;
    d->open_handles--;
    ipcd_maybe_free(d);
}

static void ipcd_listener_closed(void *ud)
{
    gn_ipcd *d = ud;
    d->open_handles--;
    ipcd_maybe_free(d);
}

static void ipcd_free_now(gn_ipcd *d)
{
    gn_free(d->address);
    gn_free(d->tcp_address);
    gn_free(d);
}

/* After the final close steps: frees the server once every part is closed. */
static void ipcd_maybe_free(gn_ipcd *d)
{
    if (!d->finishing || d->open_handles > 0 || d->nclients > 0 || d->nbridges > 0) {
        return;
    }
    gn_ipcd_close_cb cb = d->close_cb;
    void *arg = d->close_arg;
    GN_LOG(GN_LOG_INFO, IPCD_LOG, "control server stopped");
    d->finishing = false; /* once */
    ipcd_free_now(d);
    if (cb) {
        cb(arg);
    }
}

static void ipcd_finish(gn_ipcd *d)
{
    gn_timer_stop(&d->drain_timer);
    /* the events that arrived meanwhile (send failures) go out first */
    for (int i = 0; i < 64 && !pump_events(d); i++) {
    }
    gn_host_unsubscribe(d->hsub);
    d->hsub = NULL;
    while (!gni_list_empty(&d->handlers)) {
        handler_remove(d, GNI_CONTAINER_OF(d->handlers.next, ipcd_handler, link));
    }
    for (gni_list *e = d->clients.next; e != &d->clients; e = e->next) {
        ipcd_client *c = GNI_CONTAINER_OF(e, ipcd_client, link);
        if (!c->closing && !c->raw) {
            client_orphan_ops(c, true);
        }
    }
    gni_list *e = d->bridges.next;
    while (e != &d->bridges) {
        ipcd_bridge *b = GNI_CONTAINER_OF(e, ipcd_bridge, link);
        e = e->next;
        bridge_close(b, GN_ECANCELED);
    }
    e = d->clients.next;
    while (e != &d->clients) {
        ipcd_client *c = GNI_CONTAINER_OF(e, ipcd_client, link);
        e = e->next;
        if (!c->raw) {
            client_close(c, true);
        }
    }
    if (d->poll_on) {
        uv_poll_stop(&d->poll);
        d->poll_on = false;
    }
    uv_timer_stop(&d->evtimer);
    if (d->poll_inited) {
        uv_close((uv_handle_t *)&d->poll, ipcd_handle_closed);
    }
    uv_close((uv_handle_t *)&d->evtimer, ipcd_handle_closed);
    d->finishing = true;
    ipcd_maybe_free(d);
}

/*
 * Over every channel (loop thread: current values): *@out receives the
 * bytes written so far, *@connecting how many are dialing or upgrading
 * (unicasts to a peer wait for such a channel outside
 * gn_node_pending_messages()).
 */
static void ipcd_channels_scan(gn_ipcd *d, uint64_t *out, size_t *connecting)
{
    uint64_t small[256], *ids = small;
    *out = 0;
    *connecting = 0;
    int total = gn_node_channel_ids(d->node, ids, GNI_ARRAY_LEN(small));
    size_t n = total < 0 ? 0 : (size_t)total;
    if (n > GNI_ARRAY_LEN(small)) {
        ids = gn_calloc(n, sizeof *ids);
        int again = ids ? gn_node_channel_ids(d->node, ids, n) : -1;
        if (again < 0) {
            gn_free(ids);
            ids = small; /* out of memory: the first 256 (and not quiet, below) */
            n = GNI_ARRAY_LEN(small);
            *connecting = 1;
        } else {
            n = GNI_MIN(n, (size_t)again);
        }
    }
    for (size_t i = 0; i < n; i++) {
        gn_channel *ch = gn_node_channel_find(d->node, ids[i]);
        if (ch) {
            gn_channel_info info;
            gn_channel_state st = gn_channel_state_get(ch, &info);
            if (st == GN_CHANNEL_DIALING || st == GN_CHANNEL_UPGRADING) {
                (*connecting)++;
            }
            gn_channel_metrics m;
            gn_channel_metrics_get(ch, &m);
            *out += m.bytes_out;
        }
    }
    if (ids != small) {
        gn_free(ids);
    }
}

/*
 * Drained: no accepted message is queued in the node, no request runs, no
 * channel is still dialing or upgrading (a unicast may wait for it), and
 * the channels wrote nothing during the last tick (a message handed to a
 * channel's writer still has to pass the muxer and the security layer).
 */
static void ipcd_drain_tick(gn_timer *t, void *arg)
{
    gn_ipcd *d = arg;
    (void)t;
    pump_events(d);
    uint64_t pending = gn_node_pending_messages(d->node);
    uint64_t out;
    size_t connecting;
    ipcd_channels_scan(d, &out, &connecting);
    bool quiet = out == d->drain_last_out;
    d->drain_last_out = out;
    bool due = gn_loop_now(d->loop) >= d->drain_deadline;
    if ((pending == 0 && d->nops == 0 && connecting == 0 && quiet) || due) {
        if (due && (pending || d->nops || connecting)) {
            GN_LOG(GN_LOG_WARNING, IPCD_LOG,
                   "drain time over: %" PRIu64 " messages still queued, %zu requests running, "
                   "%zu channels still connecting", pending, d->nops, connecting);
        }
        ipcd_finish(d);
        return;
    }
    if (gn_timer_start(&d->drain_timer, IPCD_DRAIN_TICK, ipcd_drain_tick, d) < 0) {
        ipcd_finish(d);
    }
}

static void ipcd_close_on_loop(gn_loop *loop, void *arg)
{
    gn_ipcd *d = arg;
    (void)loop;
    if (d->draining) {
        return;
    }
    d->draining = true;
    GN_LOG(GN_LOG_INFO, IPCD_LOG, "control server stopping");
    for (size_t i = 0; i < 2; i++) {
        if (d->lst[i]) {
            gni_ipc_listener_close(d->lst[i], ipcd_listener_closed, d);
            d->lst[i] = NULL;
        }
    }
    for (gni_list *e = d->clients.next; e != &d->clients; e = e->next) {
        client_update_reading(GNI_CONTAINER_OF(e, ipcd_client, link));
    }
    d->drain_deadline = gn_loop_now(d->loop) + d->drain_timeout;
    d->drain_last_out = UINT64_MAX; /* the first tick is never quiet */
    gn_timer_init(d->loop, &d->drain_timer);
    ipcd_drain_tick(&d->drain_timer, d);
}

void gn_ipcd_close(gn_ipcd *d, gn_time drain_timeout, gn_ipcd_close_cb cb, void *arg)
{
    if (!d || d->close_requested) {
        return;
    }
    d->close_requested = true;
    d->close_cb = cb;
    d->close_arg = arg;
    d->drain_timeout = drain_timeout;
    d->close_cmd.fn = ipcd_close_on_loop;
    d->close_cmd.arg = d;
    if (gni_loop_submit_cmd(d->loop, &d->close_cmd) < 0) {
        GN_LOG(GN_LOG_ERR, IPCD_LOG, "close: the loop is stopping; the server is left as it is");
    }
}

typedef struct ipcd_start {
    gn_ipcd *d;
    int rc;
    char *err;
    size_t errlen;
    uv_sem_t sem;
} ipcd_start;

static int ipcd_start_on_loop(gn_ipcd *d, char *err, size_t errlen)
{
    d->uvl = gn_loop_uv(d->loop);
    gni_ipc_listen_opts o = {.mode = d->cfg.socket_mode,
                             .allow_uids = d->allow,
                             .allow_cnt = d->cfg.n_allow_uids};
    const char *addrs[2] = {d->address, d->tcp_address};
    int rc = 0;
    gni_ipc_addr a0;
    if (d->cfg.create_dir && gni_ipc_addr_parse(d->address, &a0, NULL, 0) == 0 &&
        a0.kind == GNI_IPC_UNIX) {
        rc = gni_ipc_prepare_dir(a0.path, err, errlen);
        if (rc < 0) {
            return rc;
        }
    }
    for (size_t i = 0; i < 2 && rc == 0; i++) {
        if (!addrs[i]) {
            continue;
        }
        if (i == 1) {
            gni_ipc_addr a;
            rc = gni_ipc_addr_parse(addrs[i], &a, err, errlen);
            if (rc == 0 && a.kind != GNI_IPC_TCP) {
                snprintf(err, errlen, "the TCP control address must be /ip4/127.0.0.1/tcp/N or "
                         "/ip6/::1/tcp/N");
                rc = GN_EINVAL;
            }
            if (rc < 0) {
                break;
            }
        }
        rc = gni_ipc_listen(d->uvl, addrs[i], &o, on_accept, d, &d->lst[i], err, errlen);
        if (rc == 0) {
            d->open_handles++;
            gni_str_copy(d->bound[i], sizeof d->bound[i], gni_ipc_listener_addr(d->lst[i]));
            d->have_bound[i] = true;
        }
    }
    if (rc == 0) {
        rc = gn_host_subscribe(d->host, GN_HOST_EV_PEER_FOUND | GN_HOST_EV_LISTEN_ADDRS |
                               GN_HOST_EV_PROTOCOLS, host_event, d, &d->hsub);
        if (rc < 0) {
            snprintf(err, errlen, "subscribing to host events: %s", gn_strerror(rc));
        }
    }
    if (rc < 0) {
        for (size_t i = 0; i < 2; i++) {
            if (d->lst[i]) {
                gni_ipc_listener_close(d->lst[i], NULL, NULL);
                d->lst[i] = NULL;
            }
        }
        return rc;
    }
    uv_timer_init(d->uvl, &d->evtimer);
    d->evtimer.data = d;
    d->open_handles++;
    int fd = gn_node_event_fd(d->node);
    if (fd >= 0 && uv_poll_init(d->uvl, &d->poll, fd) == 0) {
        d->poll.data = d;
        d->poll_inited = true;
        d->open_handles++;
        uv_poll_start(&d->poll, UV_READABLE, poll_cb);
        d->poll_on = true;
    }
    /* events queued before we started; without an fd (Windows) it polls */
    uv_timer_start(&d->evtimer, evtimer_cb, 0, 0);
    GN_LOG(GN_LOG_NOTICE, IPCD_LOG, "control server listening on %s%s%s", d->bound[0],
           d->have_bound[1] ? " and " : "", d->have_bound[1] ? d->bound[1] : "");
    return 0;
}

static void ipcd_start_cmd(gn_loop *loop, void *arg)
{
    ipcd_start *s = arg;
    (void)loop;
    s->rc = ipcd_start_on_loop(s->d, s->err, s->errlen);
    uv_sem_post(&s->sem);
}

int gn_ipcd_new(gn_node *node, const gn_ipcd_config *cfg, gn_ipcd **out, char *err, size_t errlen)
{
    char dummy[8];
    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    if (!node || !cfg || !out || !cfg->address || !cfg->address[0]) {
        snprintf(err, errlen, "a node, a config and a control address are needed");
        return GN_EINVAL;
    }
    *out = NULL;
    if (cfg->version != GN_IPCD_CONFIG_VERSION || cfg->max_clients == 0 ||
        cfg->client_queue_max < 64u * 1024u || cfg->client_queue_max > 256u * 1024u * 1024u ||
        cfg->n_allow_uids > GNI_IPC_ALLOW_MAX || (cfg->n_allow_uids && !cfg->allow_uids) ||
        cfg->max_streams == 0) {
        snprintf(err, errlen, "bad server config (version, max_clients, client_queue_max "
                 "64 KiB..256 MiB, at most %u allowed uids, max_streams)", GNI_IPC_ALLOW_MAX);
        return GN_EINVAL;
    }
    gn_ipcd *d = gn_calloc(1, sizeof *d);
    if (!d) {
        return GN_ENOMEM;
    }
    d->node = node;
    d->loop = gn_node_loop(node);
    d->host = gn_node_host(node);
    d->cfg = *cfg;
    d->address = gn_strdup(cfg->address);
    d->tcp_address = cfg->tcp_address ? gn_strdup(cfg->tcp_address) : NULL;
    if (!d->address || (cfg->tcp_address && !d->tcp_address)) {
        ipcd_free_now(d);
        return GN_ENOMEM;
    }
    d->cfg.address = d->address;
    d->cfg.tcp_address = d->tcp_address;
    if (cfg->n_allow_uids) {
        memcpy(d->allow, cfg->allow_uids, cfg->n_allow_uids * sizeof *d->allow);
    }
    d->cfg.allow_uids = d->allow;
    if (d->cfg.handler_connect_timeout == 0) {
        d->cfg.handler_connect_timeout = 5 * GN_S;
    }
    gni_list_init(&d->clients);
    gni_list_init(&d->handlers);
    gni_list_init(&d->bridges);
    int rc;
    if (gn_loop_on_thread(d->loop)) {
        rc = ipcd_start_on_loop(d, err, errlen);
    } else {
        ipcd_start s = {.d = d, .rc = GN_EINTERNAL, .err = err, .errlen = errlen};
        if (uv_sem_init(&s.sem, 0) != 0) {
            ipcd_free_now(d);
            return GN_ENOMEM;
        }
        rc = gn_loop_submit(d->loop, ipcd_start_cmd, &s);
        if (rc == 0) {
            uv_sem_wait(&s.sem);
            rc = s.rc;
        } else {
            snprintf(err, errlen, "the node's loop refused the command: %s", gn_strerror(rc));
        }
        uv_sem_destroy(&s.sem);
    }
    if (rc < 0) {
        ipcd_free_now(d);
        return rc;
    }
    *out = d;
    return 0;
}
