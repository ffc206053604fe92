/*
 * The /golem/msg/1.0.0 protocol component: the node's message service.
 *
 * It registers itself as the host's message service when it starts
 * (gn_host_set_message_service) and carries gn_node_unicast,
 * gn_node_broadcast, gn_channel_send and gn_multicast_* for the node:
 *  - outbound: one stream per channel, opened on the first message and
 *    driven by a gni_msg_writer; messages wait in the channel's queue here
 *    while the stream opens or the writer is full (the node bounds what a
 *    channel holds: GN_HOST_MSG_QUEUE_MAX, GN_EAGAIN to the caller);
 *  - inbound: each peer stream is read by a gni_msg_reader whose messages
 *    become GN_NODE_EV_MESSAGE events through gn_host_msg_deliver(); while
 *    the event queue is full the reader pauses (backpressure to the sender
 *    through the muxer's flow control) until the host calls resume().
 * Every accepted message is completed exactly once with gn_host_msg_done():
 * 0 when the writer took it, or the reason it was lost.
 *
 * Per-channel state lives in a table keyed by channel id, created on the
 * first message either way and removed when the host reports the channel
 * closed (GN_HOST_EV_DISCONNECTED). Message streams are "quiet": they do not
 * keep a channel from its idle timeout; their traffic does.
 *
 * Runs when the node's protocols include GN_NODE_PROTO_MSG (the default).
 * Spec: docs/protocols/msg.md.
 */
#include "golemnet/node.h"
#include "golemnet/protocol.h"
#include "golemnet/registry.h"

#include "gni.h"
#include "gni_htab.h"
#include "msg.h"

#include <inttypes.h>
#include <stdlib.h>

#define MSG_LOG "msg"
/*
 * Priority of receive-buffer reservations: up to ~80 % of each scope's
 * memory limit, leaving the rest for what connections need to progress
 * (muxer windows, handshakes). docs/limits.md "Component limits".
 */
#define MSG_MEM_PRIO GN_RCMGR_PRIO_HIGH

typedef struct msg_svc msg_svc;
typedef struct msg_peer msg_peer;

/* A message accepted from the node: queued (peer->q) until the writer takes
 * it, then waiting (peer->sent) until the writer handed it to the stream. */
typedef struct msg_out {
    gni_list link;
    gn_rcbuf *buf;
    uint64_t req;
} msg_out;

/* One inbound message stream. */
typedef struct msg_in {
    gni_list link;         /* peer->readers */
    msg_peer *peer;
    gni_msg_reader *r;
    gn_rcbuf *cur;         /* a message waiting for room in the event queue */
    bool blocked;
    gni_list blocked_link; /* svc->blocked */
} msg_in;

/* An outbound stream being opened; outlives its peer when that goes first. */
typedef struct msg_open {
    msg_svc *svc;
    msg_peer *peer; /* NULL once the peer went away */
} msg_open;

/* What the service keeps per channel. */
struct msg_peer {
    gni_hnode hn;          /* key: channel id */
    msg_svc *svc;
    gn_channel *ch;        /* held */
    gni_list q;            /* msg_out not yet taken by the writer */
    gni_list sent;         /* msg_out taken by w, in order, not yet reported sent */
    gni_msg_writer *w;
    bool finishing;        /* w is closing gracefully (idle): messages wait */
    gn_time last_send;     /* loop time the writer last took a message */
    msg_open *opening;
    gni_list readers;      /* msg_in */
    gni_list link;         /* svc->all */
};

struct msg_svc {
    gn_protocol *p;
    gn_host *host;
    gni_htab peers;
    bool table_ready;
    gni_list blocked;      /* msg_in */
    gn_host_sub *sub;
    bool running;
    gn_time stall_timeout; /* option msg.stall_timeout_ms; 0: none */
    gn_time writer_idle;   /* option msg.writer_idle_ms; 0: never */
    gni_list all;          /* msg_peer, for the idle check */
    gn_timer idle_timer;
    bool idle_armed;
};

/* ------------------------------------------------------------------------
 * Per-channel state
 */

static msg_peer *peer_find(msg_svc *sv, gn_channel *ch)
{
    gni_hnode *h = gni_htab_find(&sv->peers, gn_channel_id(ch));
    return h ? GNI_CONTAINER_OF(h, msg_peer, hn) : NULL;
}

static msg_peer *peer_get(msg_svc *sv, gn_channel *ch)
{
    msg_peer *pe = peer_find(sv, ch);
    if (pe) {
        return pe;
    }
    pe = gn_calloc(1, sizeof *pe);
    if (!pe) {
        return NULL;
    }
    pe->hn.key = gn_channel_id(ch);
    pe->svc = sv;
    gni_list_init(&pe->link);
    gni_list_init(&pe->q);
    gni_list_init(&pe->sent);
    gni_list_init(&pe->readers);
    if (gni_htab_insert(&sv->peers, &pe->hn) < 0) {
        gn_free(pe);
        return NULL;
    }
    pe->ch = gn_channel_hold(ch);
    gni_list_add_tail(&sv->all, &pe->link);
    return pe;
}

/* Completes every queued message with @status. */
static void peer_fail_queue(msg_peer *pe, int status)
{
    while (!gni_list_empty(&pe->q)) {
        msg_out *mo = GNI_CONTAINER_OF(pe->q.next, msg_out, link);
        gni_list_del(&mo->link);
        gn_host_msg_done(pe->svc->host, pe->ch, mo->req, status);
        gn_rcbuf_rele(mo->buf);
        gn_free(mo);
    }
}

/* Completes every message the writer took but did not report sent. */
static void peer_fail_sent(msg_peer *pe, int status)
{
    while (!gni_list_empty(&pe->sent)) { /* bounded: the writer's ring */
        msg_out *mo = GNI_CONTAINER_OF(pe->sent.next, msg_out, link);
        gni_list_del(&mo->link);
        gn_host_msg_done(pe->svc->host, pe->ch, mo->req, status);
        gn_free(mo);
    }
}

static void in_free(msg_in *mi)
{
    if (mi->blocked) {
        gni_list_del(&mi->blocked_link);
    }
    gni_list_del(&mi->link);
    gn_rcbuf_rele(mi->cur);
    gn_channel_add_quiet_streams(mi->peer->ch, -1);
    gn_free(mi);
}

/* Closes the writer; what it took and did not report sent fails with @status. */
static void writer_drop(msg_peer *pe, bool reset, int status)
{
    if (pe->w) {
        gni_msg_writer_close(pe->w, reset); /* no more callbacks */
        pe->w = NULL;
        pe->finishing = false;
        gn_channel_add_quiet_streams(pe->ch, -1);
    }
    peer_fail_sent(pe, status);
}

/* Ends everything of @pe (queued messages fail with @status) and frees it. */
static void peer_free(msg_peer *pe, int status)
{
    msg_svc *sv = pe->svc;
    /* not a reset: the bytes the muxer already took (reported sent) still
     * go out before its FIN; writes it had not taken are cancelled and
     * reported with @status, the older messages first */
    writer_drop(pe, false, status);
    peer_fail_queue(pe, status);
    if (pe->opening) {
        pe->opening->peer = NULL; /* its callback closes what it gets */
        pe->opening = NULL;
    }
    while (!gni_list_empty(&pe->readers)) {
        msg_in *mi = GNI_CONTAINER_OF(pe->readers.next, msg_in, link);
        gni_msg_reader_close(mi->r, true);
        in_free(mi);
    }
    gni_htab_remove(&sv->peers, &pe->hn);
    gni_list_del(&pe->link);
    gn_channel_rele(pe->ch);
    gn_free(pe);
}

/* ------------------------------------------------------------------------
 * Outbound
 */

static void peer_pump(msg_peer *pe);
static void msg_idle_arm(msg_svc *sv);

static void writer_writable(void *arg)
{
    peer_pump(arg);
}

static void writer_sent(void *arg, int status)
{
    msg_peer *pe = arg;
    if (gni_list_empty(&pe->sent)) {
        return; /* cannot happen: one report per message taken */
    }
    msg_out *mo = GNI_CONTAINER_OF(pe->sent.next, msg_out, link);
    gni_list_del(&mo->link);
    gn_host_msg_done(pe->svc->host, pe->ch, mo->req,
                     status < 0 ? gn_channel_map_status(pe->ch, status) : 0);
    gn_free(mo);
}

static void writer_end(void *arg, int status)
{
    msg_peer *pe = arg;
    GN_LOG(GN_LOG_DEBUG, MSG_LOG, "channel %" PRIu64 ": message writer ended: %s",
           gn_channel_id(pe->ch), gn_err_name(status));
    /* what it took and did not report sent was lost with it */
    peer_fail_sent(pe, gn_channel_map_status(pe->ch, status < 0 ? status : GN_ECLOSED));
    pe->w = NULL;
    pe->finishing = false;
    gn_channel_add_quiet_streams(pe->ch, -1);
    if (gn_channel_state_get(pe->ch, NULL) != GN_CHANNEL_OPEN) {
        peer_fail_queue(pe, gn_channel_map_status(pe->ch, status < 0 ? status : GN_ECLOSED));
    } else if (!gni_list_empty(&pe->q)) {
        peer_pump(pe); /* reopen for what is still queued */
    }
}

static const gni_msg_writer_cbs writer_cbs = {writer_writable, writer_end, writer_sent};

static void peer_opened(void *arg, int status, gn_stream *s)
{
    msg_open *op = arg;
    msg_peer *pe = op->peer;
    gn_free(op);
    if (!pe) {
        if (s) {
            gn_stream_reset(s, NULL, NULL);
        }
        return;
    }
    pe->opening = NULL;
    if (status < 0) {
        peer_fail_queue(pe, gn_channel_map_status(pe->ch, status));
        return;
    }
    int rc = gni_msg_writer_new(s, gn_host_max_message_len(pe->svc->host), 0, &writer_cbs, pe,
                                &pe->w);
    if (rc < 0) {
        gn_stream_reset(s, NULL, NULL);
        peer_fail_queue(pe, rc);
        return;
    }
    gn_channel_add_quiet_streams(pe->ch, 1);
    msg_idle_arm(pe->svc);
    peer_pump(pe);
}

static void peer_pump(msg_peer *pe)
{
    msg_svc *sv = pe->svc;
    if (!pe->w) {
        if (pe->opening || gni_list_empty(&pe->q)) {
            return;
        }
        msg_open *op = gn_malloc(sizeof *op);
        if (!op) {
            peer_fail_queue(pe, GN_ENOMEM);
            return;
        }
        op->svc = sv;
        op->peer = pe;
        pe->opening = op;
        int rc = gn_channel_open_stream(pe->ch, GNI_MSG_PROTOCOL_ID, peer_opened, op);
        if (rc < 0) {
            pe->opening = NULL;
            gn_free(op);
            peer_fail_queue(pe, rc);
        }
        return;
    }
    if (pe->finishing) {
        return; /* the idle stream is closing: writer_end reopens for these */
    }
    pe->last_send = gn_loop_now(gn_host_loop(sv->host));
    /* pe->w may end inside a send (writer_end, when it cannot defer) */
    while (pe->w && !gni_list_empty(&pe->q)) {
        msg_out *mo = GNI_CONTAINER_OF(pe->q.next, msg_out, link);
        int rc = gni_msg_writer_send(pe->w, mo->buf);
        if (rc == GN_EAGAIN) {
            return; /* writer_writable resumes */
        }
        gni_list_del(&mo->link);
        gn_rcbuf_rele(mo->buf); /* the writer holds it while it needs it */
        mo->buf = NULL;
        if (rc == 0) {
            gni_list_add_tail(&pe->sent, &mo->link); /* done when written */
            continue;
        }
        gn_host_msg_done(sv->host, pe->ch, mo->req, rc);
        gn_free(mo);
        if (rc != GN_ETOOBIG) {
            /* the writer is unusable: drop it; the next message reopens */
            writer_drop(pe, true, gn_channel_map_status(pe->ch, rc));
            peer_pump(pe);
            return;
        }
    }
}

static int svc_send(void *arg, gn_channel *ch, gn_rcbuf *msg, uint64_t req)
{
    msg_svc *sv = arg;
    if (!sv->running) {
        return GN_ECANCELED;
    }
    msg_peer *pe = peer_get(sv, ch);
    msg_out *mo = pe ? gn_malloc(sizeof *mo) : NULL;
    if (!mo) {
        return GN_ENOMEM;
    }
    mo->buf = gn_rcbuf_hold(msg);
    mo->req = req;
    gni_list_add_tail(&pe->q, &mo->link);
    peer_pump(pe);
    return 0;
}

/* ------------------------------------------------------------------------
 * Inbound
 */

static void mark_blocked(msg_in *mi)
{
    if (!mi->blocked) {
        mi->blocked = true;
        gni_list_add_tail(&mi->peer->svc->blocked, &mi->blocked_link);
    }
}

static int reader_message(void *arg, gn_rcbuf *msg)
{
    msg_in *mi = arg;
    if (gn_host_msg_deliver(mi->peer->svc->host, mi->peer->ch, msg) == 0) {
        return GNI_MSG_CONTINUE;
    }
    /* the event queue is full: keep it and stop reading (backpressure) */
    mi->cur = msg;
    mark_blocked(mi);
    return GNI_MSG_PAUSE;
}

static void reader_end(void *arg, int status)
{
    msg_in *mi = arg;
    if (status < 0) {
        GN_LOG(GN_LOG_INFO, MSG_LOG, "channel %" PRIu64 ": message stream ended: %s",
               gn_channel_id(mi->peer->ch), gn_err_name(status));
    }
    in_free(mi);
}

static const gni_msg_reader_cbs reader_cbs = {reader_message, reader_end};

static void svc_resume(void *arg)
{
    msg_svc *sv = arg;
    /* take the list: a reader that blocks again goes onto a fresh one */
    gni_list todo;
    gni_list_init(&todo);
    if (!gni_list_empty(&sv->blocked)) {
        todo.next = sv->blocked.next;
        todo.prev = sv->blocked.prev;
        todo.next->prev = &todo;
        todo.prev->next = &todo;
        gni_list_init(&sv->blocked);
    }
    while (!gni_list_empty(&todo)) {
        msg_in *mi = GNI_CONTAINER_OF(todo.next, msg_in, blocked_link);
        gni_list_del(&mi->blocked_link);
        mi->blocked = false;
        if (mi->cur) {
            if (gn_host_msg_deliver(sv->host, mi->peer->ch, mi->cur) < 0) {
                mark_blocked(mi);
                break; /* the host resumes us again when there is room */
            }
            mi->cur = NULL;
        }
        gni_msg_reader_resume(mi->r);
    }
    /* readers still in todo (after a GN_EAGAIN above) wait with the rest */
    while (!gni_list_empty(&todo)) {
        msg_in *mi = GNI_CONTAINER_OF(todo.next, msg_in, blocked_link);
        gni_list_del(&mi->blocked_link);
        mi->blocked = false;
        mark_blocked(mi);
    }
}

static void msg_on_stream(gn_protocol *p, gn_stream *s, const gn_protocol_stream_info *info)
{
    msg_svc *sv = p->state;
    msg_peer *pe = sv->running ? peer_get(sv, info->channel) : NULL;
    msg_in *mi = pe ? gn_calloc(1, sizeof *mi) : NULL;
    if (!mi) {
        gn_stream_reset(s, NULL, NULL);
        return;
    }
    mi->peer = pe;
    gni_list_init(&mi->blocked_link);
    /* the stream's receive buffers are accounted before they are allocated */
    gn_rcmgr *rm = gn_host_rcmgr(sv->host);
    gn_rcmgr_stream *span = NULL;
    int rc = gn_rcmgr_open_stream(rm, gn_channel_rcmgr_conn(info->channel), &info->remote_peer,
                                  GN_RCMGR_INBOUND, &span);
    if (rc == 0) {
        rc = gn_rcmgr_stream_set_protocol(span, GNI_MSG_PROTOCOL_ID,
                                          sizeof GNI_MSG_PROTOCOL_ID - 1);
    }
    if (rc < 0) {
        gn_rcmgr_refusal ref;
        if (rc == GN_ERESOURCE && gn_rcmgr_last_refusal(rm, &ref) == 0) {
            GN_LOG(GN_LOG_INFO, MSG_LOG,
                   "channel %" PRIu64 ": %s stream refused by %s (%s: %" PRIu64
                   " used, limit %" PRIu64 ")",
                   gn_channel_id(info->channel), GNI_MSG_PROTOCOL_ID, ref.name,
                   gn_rcmgr_res_name(ref.res), ref.used, ref.limit);
        }
    } else {
        rc = gni_msg_reader_new(s, gn_host_max_message_len(sv->host), &reader_cbs, mi, &mi->r);
    }
    if (rc == 0) {
        rc = gni_msg_reader_account(mi->r, rm, span, MSG_MEM_PRIO);
        if (rc == 0) {
            span = NULL; /* the reader's */
        } else {
            gni_msg_reader_close(mi->r, true);
        }
    }
    if (rc < 0) {
        GN_LOG(GN_LOG_INFO, MSG_LOG, "channel %" PRIu64 ": serving %s: %s",
               gn_channel_id(info->channel), GNI_MSG_PROTOCOL_ID, gn_err_name(rc));
        if (!mi->r) {
            gn_stream_reset(s, NULL, NULL);
        }
        gn_rcmgr_stream_done(span);
        gn_free(mi);
        return;
    }
    gni_msg_reader_set_stall_timeout(mi->r, sv->stall_timeout);
    gni_list_add_tail(&pe->readers, &mi->link);
    gn_channel_add_quiet_streams(pe->ch, 1);
}

/* ------------------------------------------------------------------------
 * Life cycle
 */

static void msg_on_host_event(void *arg, const gn_host_event *ev)
{
    msg_svc *sv = arg;
    msg_peer *pe = ev->ch ? peer_find(sv, ev->ch) : NULL;
    if (pe) {
        peer_free(pe, gn_channel_map_status(ev->ch, ev->status < 0 ? ev->status : GN_ECLOSED));
    }
}

static const gn_host_msg_ops svc_ops = {svc_send, svc_resume};

static int msg_init(gn_protocol *p)
{
    msg_svc *sv = p->state;
    sv->p = p;
    sv->host = p->host;
    gni_list_init(&sv->blocked);
    gni_list_init(&sv->all);
    gn_timer_init(gn_host_loop(sv->host), &sv->idle_timer);
    int rc = gni_htab_init(&sv->peers, 16);
    sv->table_ready = rc == 0;
    return rc;
}

static void msg_fini(gn_protocol *p)
{
    msg_svc *sv = p->state;
    if (sv->table_ready) {
        gni_hnode *h;
        while ((h = gni_htab_any(&sv->peers)) != NULL) {
            peer_free(GNI_CONTAINER_OF(h, msg_peer, hn), GN_ECANCELED);
        }
        gni_htab_fini(&sv->peers);
    }
}

/*
 * Idle outbound streams are ended by their sender, gracefully (half-close
 * after everything was written), before the muxer's stream_idle_timeout
 * could reset them with a message in flight; the next message opens a new
 * stream. Checked every half idle period while some writer exists.
 */
static void msg_idle_tick(gn_timer *t, void *arg)
{
    (void)t;
    msg_svc *sv = arg;
    sv->idle_armed = false;
    if (!sv->running || sv->writer_idle == 0) {
        return;
    }
    gn_time now = gn_loop_now(gn_host_loop(sv->host));
    bool writers = false;
    for (gni_list *e = sv->all.next; e != &sv->all; e = e->next) {
        msg_peer *pe = GNI_CONTAINER_OF(e, msg_peer, link);
        if (!pe->w || pe->finishing) {
            writers = writers || pe->w;
            continue;
        }
        writers = true;
        if (gni_list_empty(&pe->q) && gni_msg_writer_queued(pe->w) == 0 &&
            now - pe->last_send >= sv->writer_idle && gni_msg_writer_finish(pe->w) == 0) {
            pe->finishing = true; /* writer_end follows */
        }
    }
    if (writers && gn_timer_start(&sv->idle_timer, sv->writer_idle / 2, msg_idle_tick, sv) == 0) {
        sv->idle_armed = true;
    }
}

static void msg_idle_arm(msg_svc *sv)
{
    if (!sv->idle_armed && sv->running && sv->writer_idle > 0 &&
        gn_timer_start(&sv->idle_timer, sv->writer_idle / 2, msg_idle_tick, sv) == 0) {
        sv->idle_armed = true;
    }
}

/* A millisecond option "msg.@key" in 0..86400000 (@def when absent). */
static int msg_ms_option(msg_svc *sv, const char *key, gn_time def, gn_time *out)
{
    const char *v = gn_host_option(sv->host, "msg", key, 0);
    *out = def;
    if (!v) {
        return 0;
    }
    char *end;
    unsigned long long ms = strtoull(v, &end, 10);
    if (*v < '0' || *v > '9' || *end || ms > 24ull * 3600 * 1000) {
        GN_LOG(GN_LOG_ERR, MSG_LOG, "msg.%s=%s: want milliseconds, 0 to 86400000", key, v);
        return GN_EINVAL;
    }
    *out = (gn_time)ms * GN_MS;
    return 0;
}

static int msg_start(gn_protocol *p)
{
    msg_svc *sv = p->state;
    /* msg.stall_timeout_ms (default 30 s), msg.writer_idle_ms (60 s); 0: never */
    int rc = msg_ms_option(sv, "stall_timeout_ms", GNI_MSG_STALL_TIMEOUT, &sv->stall_timeout);
    if (rc == 0) {
        rc = msg_ms_option(sv, "writer_idle_ms", GNI_MSG_WRITER_IDLE, &sv->writer_idle);
    }
    if (rc < 0) {
        return rc;
    }
    rc = gn_host_subscribe(sv->host, GN_HOST_EV_DISCONNECTED, msg_on_host_event, sv, &sv->sub);
    if (rc == 0) {
        rc = gn_host_set_message_service(sv->host, &svc_ops, sv, GNI_MSG_PROTOCOL_ID);
        if (rc < 0) {
            gn_host_unsubscribe(sv->sub);
            sv->sub = NULL;
        }
    }
    sv->running = rc == 0;
    return rc;
}

static void msg_stop(gn_protocol *p)
{
    msg_svc *sv = p->state;
    if (!sv->running) {
        return;
    }
    sv->running = false;
    gn_timer_stop(&sv->idle_timer);
    sv->idle_armed = false;
    gn_host_set_message_service(sv->host, NULL, sv, NULL);
    gn_host_unsubscribe(sv->sub);
    sv->sub = NULL;
    /* the node is closing: what is queued is lost, and said so */
    gni_hnode *h;
    while ((h = gni_htab_any(&sv->peers)) != NULL) {
        peer_free(GNI_CONTAINER_OF(h, msg_peer, hn), GN_ECANCELED);
    }
}

static const gn_protocol_ops msg_ops = {
    .abi = GN_PROTOCOL_ABI,
    .name = GNI_MSG_PROTOCOL_ID,
    .flags = GN_LAYER_F_LIMITED_OK,
    .state_size = sizeof(msg_svc),
    .init = msg_init,
    .fini = msg_fini,
    .start = msg_start,
    .stop = msg_stop,
    .on_stream = msg_on_stream,
    .node_bit = GN_NODE_PROTO_MSG,
};

int gn_protocol_msg_register(gn_registry *reg);
int gn_protocol_msg_register(gn_registry *reg)
{
    return gn_registry_add(reg, GN_LAYER_PROTOCOL, (const gn_layer_ops *)&msg_ops);
}
