/*
 * The pubsub protocol component: the stream driver of the sans-I/O router
 * (pubsub_router.h) and the node's group service (golemnet/host.h "the
 * group service"), so gn_node_dial_group() channels run on gossipsub v1.1
 * or floodsub.
 *
 * Streams (libp2p/specs pubsub/README.md "Stream management"): each side
 * opens its own outbound stream to a peer and only writes on it; it only
 * reads the peer's inbound stream. Both carry length-prefixed RPCs
 * (gni_ps_splitter, gni_ps_rpc_encode).
 *  - A peer enters the router when the first pubsub stream with it
 *    negotiates (ours or theirs; the protocol multistream chose tells the
 *    router whether it speaks floodsub, meshsub 1.0 or 1.1). Our stream
 *    is opened when identify says the peer speaks one of our protocols, or
 *    when the peer opens one to us (with the protocol it chose first).
 *    /meshsub/1.1.0, then /meshsub/1.0.0, then /floodsub/1.0.0 are tried.
 *    One inbound stream per peer is read: a newer one replaces (resets)
 *    the older, as go-libp2p-pubsub does.
 *  - Each stream holds its own channel. A closing channel ends only its
 *    streams; our stream is re-opened on another channel the peer is still
 *    connected on (never dialled), and after an error (bounded retries).
 *    A peer leaves the router when no pubsub stream with it is left; it
 *    is congested in the router while it has no outbound stream.
 *  - Output: after every router call its queued RPCs are encoded into the
 *    peer's outbound queue. The RPC in hand is always queued; at the mark
 *    (pubsub.max_out_bytes for the peer, pubsub.max_out_total_bytes for
 *    all) the router is told the peer is congested (it leaves every mesh,
 *    gets no forwards: counted as out_dropped) until the queue has
 *    drained. One write at a time per peer; nothing waits on another peer.
 *  - The heartbeat runs on one timer armed at gni_psr_next_timer().
 * Messages are signed with the node's identity (StrictSign) unless
 * pubsub.sign_policy=strict_no_sign. Options: docs/pubsub.md "Component".
 *
 * Runs when the node's protocol_components names it (explicit only: it
 * opens a stream to every peer that speaks pubsub).
 */
#include "golemnet/node.h"
#include "golemnet/protocol.h"
#include "golemnet/registry.h"

#include "gni.h"
#include "pubsub_router.h"
#include "pubsub_wire.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define PS_LOG "pubsub"
/** Default bound on the bytes queued for one peer's outbound stream. */
#define PS_DEFAULT_MAX_OUT (4u * 1024u * 1024u)
/** Most topics the application may open groups on through one node. */
#define PS_MAX_APP_TOPICS 256u
/** Default bound on the bytes queued for all peers together. */
#define PS_DEFAULT_MAX_OUT_TOTAL (64u * 1024u * 1024u)
/** Re-opens of our outbound stream after errors, before giving up on it. */
#define PS_OUT_RETRIES 4u
/** First re-open delay; doubled per try. */
#define PS_OUT_RETRY_DELAY (100 * GN_MS)

typedef struct ps_svc ps_svc;
typedef struct ps_peer ps_peer;

/* One encoded RPC frame queued for a peer. */
typedef struct ps_frame {
    gni_list link;
    ps_peer *peer; /* NULL once the peer is gone while the write is in flight */
    size_t len;
    size_t reserved; /* bytes reserved in the peer's stream span (0: not accounted) */
    uint8_t data[];
} ps_frame;

/* One inbound stream of a peer. */
typedef struct ps_in {
    gni_list link;
    ps_peer *peer; /* NULL once the peer is gone */
    gn_channel *ch; /* held while in the peer's list: the channel @s runs on */
    gn_stream *s;
    gni_ps_splitter sp;
} ps_in;

/* An outbound stream being opened. */
typedef struct ps_open {
    ps_svc *sv;
    ps_peer *peer; /* NULL once the peer (or the channel) went away */
    gn_channel *ch; /* held: the channel the stream is opened on */
    int proto_idx; /* index in sv->protos */
} ps_open;

struct ps_peer {
    gni_list link;        /* sv->peers */
    ps_svc *sv;
    gn_peer_id id;
    gn_channel *ch;       /* held: the channel our outbound stream runs on (or last ran or
                           * was tried on); NULL once that channel closed */
    bool in_router;
    gn_stream *out;       /* our outbound stream, once negotiated */
    ps_open *opening;
    bool out_failed;      /* no protocol in common, or the re-opens are used up */
    unsigned out_retries; /* re-opens since our stream last carried a write */
    gn_timer retry;       /* the next re-open of our stream */
    gni_list q;           /* ps_frame not yet written */
    size_t q_bytes;
    ps_frame *inflight;
    /* the outbound stream's span in the resource manager (borrowed while
     * pe->out is open; NULL: not accounted): queued frames reserve in it */
    gn_rcmgr_stream *span;
    uint64_t rc_refused;  /* RPCs dropped because the resource manager refused their memory */
    bool congested;       /* the queue reached its high-water mark */
    bool router_congested; /* what the router was told: congested || !out */
    gni_list ins;         /* ps_in (each on its own channel) */
};

typedef struct ps_topic {
    gni_list link;
    char *name;
    uint64_t dup, rej;    /* router counters already reported to the host */
} ps_topic;

struct ps_svc {
    gn_protocol *p;
    gn_host *host;
    gn_loop *loop;
    gni_psr *r;
    gni_psr_config cfg;
    gn_timer timer;
    gn_host_sub *sub;
    gni_list peers;
    gni_list topics;      /* ps_topic the application opened */
    size_t ntopics;
    size_t max_out;
    size_t max_out_total; /* bound on q_total: node-wide */
    size_t q_total;       /* bytes queued for all peers */
    bool floodsub_only;
    bool running;
    const char *protos[3];
    gni_psr_proto proto_kind[3];
    size_t nprotos;
    uint64_t out_dropped, decode_errors;
    uint64_t out_dropped_rep, decode_errors_rep; /* already reported to the host */
};

static void ps_pump(ps_svc *sv);
static void ps_peer_flush(ps_peer *pe);
static void ps_open_out(ps_peer *pe, gn_channel *ch, int idx);
static void ps_out_retry(ps_peer *pe);

static gn_time ps_now(ps_svc *sv)
{
    return gn_loop_now(sv->loop);
}

/* Gives back what @f reserved in @pe's stream span. */
static void ps_frame_unreserve(ps_peer *pe, ps_frame *f)
{
    if (pe && pe->span && f->reserved) {
        (void)gn_rcmgr_release_memory(gn_rcmgr_stream_span(pe->span), f->reserved);
    }
    f->reserved = 0;
}

static int ps_proto_index(ps_svc *sv, const char *id)
{
    for (size_t i = 0; i < sv->nprotos; i++) {
        if (strcmp(sv->protos[i], id) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static ps_peer *ps_peer_find(ps_svc *sv, const gn_peer_id *id)
{
    for (gni_list *e = sv->peers.next; e != &sv->peers; e = e->next) {
        ps_peer *pe = GNI_CONTAINER_OF(e, ps_peer, link);
        if (gn_peer_id_equal(&pe->id, id)) {
            return pe;
        }
    }
    return NULL;
}

static ps_peer *ps_peer_get(ps_svc *sv, const gn_peer_id *id)
{
    ps_peer *pe = ps_peer_find(sv, id);
    if (pe) {
        return pe;
    }
    pe = gn_calloc(1, sizeof *pe);
    if (!pe) {
        return NULL;
    }
    pe->sv = sv;
    pe->id = *id;
    gn_timer_init(sv->loop, &pe->retry);
    gni_list_init(&pe->q);
    gni_list_init(&pe->ins);
    gni_list_add_tail(&sv->peers, &pe->link);
    return pe;
}

static void ps_in_closed(gn_stream *s, void *arg)
{
    (void)s;
    ps_in *in = arg;
    gni_ps_splitter_fini(&in->sp);
    gn_free(in);
}

static bool ps_channel_open(gn_channel *ch)
{
    gn_channel_info info;
    return ch && gn_channel_state_get(ch, &info) == GN_CHANNEL_OPEN;
}

/* An open channel to @pe's peer: our stream's, else one of its inbound streams'. */
static gn_channel *ps_peer_any_channel(ps_peer *pe)
{
    if (ps_channel_open(pe->ch)) {
        return pe->ch;
    }
    for (gni_list *e = pe->ins.prev; e != &pe->ins; e = e->prev) {
        ps_in *in = GNI_CONTAINER_OF(e, ps_in, link);
        if (ps_channel_open(in->ch)) {
            return in->ch;
        }
    }
    return NULL;
}

/* The router sees @pe congested while its queue is over the mark or it has no outbound stream. */
static void ps_peer_sync(ps_peer *pe)
{
    bool want = pe->congested || !pe->out;
    if (!pe->in_router || want == pe->router_congested) {
        return;
    }
    pe->router_congested = want;
    (void)gni_psr_peer_congested(pe->sv->r, &pe->id, want, ps_now(pe->sv));
}

static void ps_in_end(ps_in *in, bool reset)
{
    gni_list_del(&in->link);
    if (in->peer) {
        gn_channel_add_quiet_streams(in->ch, -1);
        gn_channel_rele(in->ch);
        in->ch = NULL;
    }
    in->peer = NULL;
    if (reset) {
        gn_stream_reset(in->s, ps_in_closed, in);
    } else {
        gn_stream_close(in->s, ps_in_closed, in);
    }
}

/* Drops our outbound stream (the queue stays for the next one). */
static void ps_out_drop(ps_peer *pe)
{
    /* the stream's span ends with it and settles what its frames reserved:
     * frames kept for the next stream are no longer accounted */
    for (gni_list *it = pe->q.next; it != &pe->q; it = it->next) {
        GNI_CONTAINER_OF(it, ps_frame, link)->reserved = 0;
    }
    if (pe->inflight) {
        pe->inflight->reserved = 0;
        pe->inflight->peer = NULL; /* freed by its write callback */
        pe->inflight = NULL;
    }
    pe->span = NULL;
    if (pe->out) {
        gn_channel_add_quiet_streams(pe->ch, -1);
        gn_stream_close(pe->out, NULL, NULL);
        pe->out = NULL;
    }
}

/* Frees @pe: closes its streams, drops what is queued, leaves the router. */
static void ps_peer_free(ps_peer *pe)
{
    ps_svc *sv = pe->sv;
    gni_list_del(&pe->link);
    gn_timer_stop(&pe->retry);
    if (pe->in_router) {
        gni_psr_peer_remove(sv->r, &pe->id, ps_now(sv));
    }
    if (pe->opening) {
        pe->opening->peer = NULL;
    }
    while (!gni_list_empty(&pe->ins)) {
        ps_in_end(GNI_CONTAINER_OF(pe->ins.next, ps_in, link), false);
    }
    while (!gni_list_empty(&pe->q)) {
        ps_frame *f = GNI_CONTAINER_OF(pe->q.next, ps_frame, link);
        gni_list_del(&f->link);
        sv->q_total -= f->len;
        gn_free(f);
    }
    ps_out_drop(pe);
    if (pe->ch) {
        gn_channel_rele(pe->ch);
    }
    gn_free(pe);
}

/* Frees @pe when no pubsub stream with its peer is left or coming; true when freed. */
static bool ps_peer_check(ps_peer *pe)
{
    if (!gni_list_empty(&pe->ins) || pe->out || pe->opening || gn_timer_active(&pe->retry)) {
        return false;
    }
    ps_peer_free(pe);
    return true;
}

static int ps_router_add(ps_peer *pe, gni_psr_proto kind, bool outbound)
{
    if (pe->in_router) {
        return 0;
    }
    int rc = gni_psr_peer_add(pe->sv->r, &pe->id, kind, outbound, NULL, 0, ps_now(pe->sv));
    if (rc < 0) {
        GN_LOG(GN_LOG_WARNING, PS_LOG, "router refused a peer: %s", gn_err_name(rc));
        return rc;
    }
    pe->in_router = true;
    return 0;
}

/* ---- outbound ---- */

static void ps_out_on_error(gn_stream *s, void *ud, int err)
{
    (void)s;
    ps_peer *pe = ud;
    ps_svc *sv = pe->sv;
    GN_LOG(GN_LOG_DEBUG, PS_LOG, "outbound stream failed: %s (re-opened)", gn_err_name(err));
    ps_out_drop(pe);
    ps_peer_sync(pe);
    ps_out_retry(pe);
    if (!ps_peer_check(pe)) {
        ps_pump(sv);
    }
}

static void ps_on_retry(gn_timer *t, void *arg)
{
    (void)t;
    ps_peer *pe = arg;
    gn_channel *ch = ps_peer_any_channel(pe);
    if (ch) {
        ps_open_out(pe, ch, 0);
    }
    (void)ps_peer_check(pe);
}

/* Schedules a re-open of our outbound stream with backoff, PS_OUT_RETRIES times at most. */
static void ps_out_retry(ps_peer *pe)
{
    if (pe->out || pe->opening || pe->out_failed || gn_timer_active(&pe->retry) ||
        !pe->sv->running) {
        return;
    }
    if (pe->out_retries >= PS_OUT_RETRIES) {
        GN_LOG(GN_LOG_INFO, PS_LOG, "outbound stream to a peer failed %u times: not re-opened",
               pe->out_retries);
        pe->out_failed = true;
        return;
    }
    gn_time delay = PS_OUT_RETRY_DELAY << pe->out_retries;
    pe->out_retries++;
    int rc = gn_timer_start(&pe->retry, delay, ps_on_retry, pe);
    if (rc < 0) {
        GN_LOG(GN_LOG_ERR, PS_LOG, "re-open timer refused: %s", gn_err_name(rc));
        pe->out_failed = true;
    }
}

static void ps_out_on_writable(gn_stream *s, void *ud)
{
    (void)s;
    ps_peer_flush(ud);
}

static const gn_stream_handler ps_out_handler = {
    .on_error = ps_out_on_error,
    .on_writable = ps_out_on_writable,
};

static void ps_write_done(void *arg, int status)
{
    ps_frame *f = arg;
    ps_peer *pe = f->peer;
    ps_frame_unreserve(pe, f);
    gn_free(f);
    if (!pe) {
        return;
    }
    pe->inflight = NULL;
    if (status < 0) {
        return; /* on_error follows */
    }
    pe->out_retries = 0;
    if (pe->ch) {
        gn_channel_touch(pe->ch);
    }
    ps_peer_flush(pe);
    if (pe->congested && gni_list_empty(&pe->q)) {
        pe->congested = false; /* drained */
        ps_peer_sync(pe);
        ps_pump(pe->sv); /* what the router held for the peer */
    }
}

static void ps_peer_flush(ps_peer *pe)
{
    ps_svc *sv = pe->sv;
    if (!pe->out || pe->inflight || gni_list_empty(&pe->q)) {
        return;
    }
    ps_frame *f = GNI_CONTAINER_OF(pe->q.next, ps_frame, link);
    gn_slice iov = {f->data, f->len};
    int rc = gn_stream_write(pe->out, &iov, 1, ps_write_done, f);
    if (rc == GN_EAGAIN) {
        return; /* on_writable */
    }
    gni_list_del(&f->link);
    pe->q_bytes -= f->len;
    sv->q_total -= f->len;
    if (rc < 0) {
        ps_frame_unreserve(pe, f);
        gn_free(f);
        GN_LOG(GN_LOG_DEBUG, PS_LOG, "write refused: %s", gn_err_name(rc));
        return;
    }
    f->peer = pe;
    pe->inflight = f;
}

static void ps_open_done(void *arg, int status, gn_stream *s)
{
    ps_open *op = arg;
    ps_svc *sv = op->sv;
    ps_peer *pe = op->peer;
    gn_channel *ch = op->ch;
    int idx = op->proto_idx;
    gn_free(op);
    if (!pe) {
        if (status == 0) {
            gn_stream_reset(s, NULL, NULL);
        }
        gn_channel_rele(ch);
        return;
    }
    pe->opening = NULL;
    if (pe->ch != ch) { /* the channel our stream runs on, or was last tried on */
        if (pe->ch) {
            gn_channel_rele(pe->ch);
        }
        pe->ch = ch;
    } else {
        gn_channel_rele(ch);
    }
    if (status == GN_ENEGOTIATION && (size_t)idx + 1 < sv->nprotos) {
        ps_open_out(pe, pe->ch, idx + 1);
        return;
    }
    if (status < 0) {
        GN_LOG(GN_LOG_DEBUG, PS_LOG, "no pubsub stream to a peer: %s", gn_err_name(status));
        if (status == GN_ENEGOTIATION) {
            pe->out_failed = true; /* no protocol in common */
        } else {
            ps_out_retry(pe);
        }
        (void)ps_peer_check(pe);
        return;
    }
    pe->out = s;
    gn_rcmgr_stream *span = NULL;
    if (gn_stream_query(s, GN_QUERY_RCMGR_STREAM, &span, sizeof span) >= 0 && span) {
        pe->span = span; /* frames queued from now on are accounted */
    }
    gn_channel_add_quiet_streams(pe->ch, 1);
    gn_stream_set_handler(s, &ps_out_handler, pe);
    if (ps_router_add(pe, sv->proto_kind[idx], true) < 0) {
        ps_peer_free(pe);
        return;
    }
    ps_peer_sync(pe);
    ps_pump(sv);
    ps_peer_flush(pe);
}

/* Opens our outbound stream on @ch (never dials: the peer is connected on it). */
static void ps_open_out(ps_peer *pe, gn_channel *ch, int idx)
{
    ps_svc *sv = pe->sv;
    if (pe->out || pe->opening || !ch || idx < 0 || (size_t)idx >= sv->nprotos) {
        return;
    }
    gn_timer_stop(&pe->retry);
    ps_open *op = gn_calloc(1, sizeof *op);
    if (!op) {
        ps_out_retry(pe);
        return;
    }
    op->sv = sv;
    op->peer = pe;
    op->ch = gn_channel_hold(ch);
    op->proto_idx = idx;
    int rc = gn_channel_open_stream(ch, sv->protos[idx], ps_open_done, op);
    if (rc < 0) {
        GN_LOG(GN_LOG_DEBUG, PS_LOG, "pubsub stream not opened: %s", gn_err_name(rc));
        gn_channel_rele(op->ch);
        gn_free(op);
        ps_out_retry(pe);
        return;
    }
    pe->opening = op;
}

/*
 * Queues @rpc for @to. The RPC in hand is always taken (a queue overshoots
 * its bound by one RPC at most); at the high-water mark (max_out bytes for
 * the peer, or max_out_total for all peers) the peer is marked congested:
 * the router holds further output for it until its queue has drained
 * (ps_write_done).
 */
static void ps_queue_rpc(ps_svc *sv, const gn_peer_id *to, const gni_ps_rpc *rpc)
{
    ps_peer *pe = ps_peer_find(sv, to);
    if (!pe) {
        return;
    }
    long len = gni_ps_rpc_frame_len(rpc, &sv->cfg.limits);
    if (len < 0) {
        GN_LOG(GN_LOG_WARNING, PS_LOG, "router output not encodable: %s", gn_err_name((int)len));
        return;
    }
    /* accounted before allocating (docs/limits.md): a refusal drops the
     * RPC for this peer and, with frames still queued, marks it congested
     * (cleared when the queue drains) */
    if (pe->span && gn_rcmgr_reserve_memory(gn_rcmgr_stream_span(pe->span), (size_t)len,
                                            GN_RCMGR_PRIO_MEDIUM) < 0) {
        sv->out_dropped++;
        pe->rc_refused++;
        GN_LOG(GN_LOG_INFO, PS_LOG, "resource manager refused %ld bytes for a peer's queue", len);
        if (!pe->congested && !gni_list_empty(&pe->q)) {
            pe->congested = true;
            ps_peer_sync(pe);
        }
        return;
    }
    ps_frame *f = gn_malloc(sizeof *f + (size_t)len);
    if (!f) {
        if (pe->span) {
            (void)gn_rcmgr_release_memory(gn_rcmgr_stream_span(pe->span), (size_t)len);
        }
        sv->out_dropped++;
        return;
    }
    f->reserved = pe->span ? (size_t)len : 0;
    long w = gni_ps_rpc_encode(rpc, &sv->cfg.limits, f->data, (size_t)len);
    if (w < 0) {
        ps_frame_unreserve(pe, f);
        gn_free(f);
        return;
    }
    f->len = (size_t)w;
    f->peer = pe;
    gni_list_add_tail(&pe->q, &f->link);
    pe->q_bytes += f->len;
    sv->q_total += f->len;
    ps_peer_flush(pe);
    if (!pe->congested && !gni_list_empty(&pe->q) &&
        (pe->q_bytes >= sv->max_out || sv->q_total >= sv->max_out_total)) {
        pe->congested = true;
        GN_LOG(GN_LOG_INFO, PS_LOG,
               "peer's outbound queue at its mark (%zu bytes; %zu for all peers): congested",
               pe->q_bytes, sv->q_total);
        ps_peer_sync(pe);
    }
}

/* ---- router outputs, counters, the timer ---- */

static void ps_deliver(ps_svc *sv, gni_psr_event *ev)
{
    if (ev->local || !ev->msg.topic) {
        return; /* own publishes are not echoed to the application */
    }
    gn_peer_id from = {0};
    if (ev->msg.has_from) {
        (void)gn_peer_id_from_bytes(ev->msg.from.data, ev->msg.from.len, &from);
    }
    ps_peer *pe = ps_peer_find(sv, &ev->from);
    gn_channel *ch = NULL; /* the peer's newest inbound stream's, else our stream's */
    if (pe) {
        ch = gni_list_empty(&pe->ins) ? pe->ch
                                      : GNI_CONTAINER_OF(pe->ins.prev, ps_in, link)->ch;
    }
    (void)gn_host_group_deliver(sv->host, ev->msg.topic, &from, ch,
                                ev->msg.data.data, ev->msg.data.len);
}

static void ps_report_topics(ps_svc *sv)
{
    gni_psr_stats rs;
    gni_psr_get_stats(sv->r, &rs);
    uint64_t od = sv->out_dropped + rs.out_dropped;
    if (od > sv->out_dropped_rep) {
        gn_host_group_count(sv->host, NULL, GN_GROUP_OUT_DROPPED, od - sv->out_dropped_rep);
        sv->out_dropped_rep = od;
    }
    if (sv->decode_errors > sv->decode_errors_rep) {
        gn_host_group_count(sv->host, NULL, GN_GROUP_DECODE_ERRORS,
                            sv->decode_errors - sv->decode_errors_rep);
        sv->decode_errors_rep = sv->decode_errors;
    }
    for (gni_list *e = sv->topics.next; e != &sv->topics; e = e->next) {
        ps_topic *t = GNI_CONTAINER_OF(e, ps_topic, link);
        gni_psr_topic_stats st;
        if (gni_psr_get_topic_stats(sv->r, t->name, &st) < 0) {
            continue;
        }
        if (st.duplicates > t->dup) {
            gn_host_group_count(sv->host, t->name, GN_GROUP_DUPLICATE, st.duplicates - t->dup);
            t->dup = st.duplicates;
        }
        if (st.rejected > t->rej) {
            gn_host_group_count(sv->host, t->name, GN_GROUP_REJECTED, st.rejected - t->rej);
            t->rej = st.rejected;
        }
    }
}

static void ps_snapshot_peers(ps_svc *sv)
{
    for (gni_list *e = sv->topics.next; e != &sv->topics; e = e->next) {
        ps_topic *t = GNI_CONTAINER_OF(e, ps_topic, link);
        size_t nt = gni_psr_topic_peers(sv->r, t->name, NULL, 0);
        size_t nm = gni_psr_mesh_peers(sv->r, t->name, NULL, 0);
        nt = GNI_MIN(nt, (size_t)GN_GROUP_PEERS_MAX);
        nm = GNI_MIN(nm, (size_t)GN_GROUP_PEERS_MAX);
        gn_peer_id *tp = gn_calloc(nt + nm + 1, sizeof *tp);
        if (!tp) {
            continue;
        }
        nt = GNI_MIN(nt, gni_psr_topic_peers(sv->r, t->name, tp, nt));
        nm = GNI_MIN(nm, gni_psr_mesh_peers(sv->r, t->name, tp + nt, nm));
        if (sv->floodsub_only) {
            /* floodsub has no mesh: every topic peer gets every message */
            gn_host_group_set_peers(sv->host, t->name, tp, nt, tp, nt);
        } else {
            gn_host_group_set_peers(sv->host, t->name, tp, nt, tp + nt, nm);
        }
        gn_free(tp);
    }
}

static void ps_on_timer(gn_timer *t, void *arg)
{
    (void)t;
    ps_svc *sv = arg;
    if (!sv->running) {
        return;
    }
    (void)gni_psr_heartbeat(sv->r, ps_now(sv));
    ps_pump(sv);
    ps_snapshot_peers(sv);
}

static void ps_pump(ps_svc *sv)
{
    gni_ps_rpc rpc;
    gni_ps_rpc_init(&rpc);
    gn_peer_id to;
    while (gni_psr_next_out(sv->r, &to, &rpc) == 1) {
        ps_queue_rpc(sv, &to, &rpc);
        gni_ps_rpc_fini(&rpc);
    }
    gni_psr_event ev;
    memset(&ev, 0, sizeof ev);
    while (gni_psr_next_event(sv->r, &ev) == 1) {
        if (ev.kind == GNI_PSR_EV_DELIVER) {
            ps_deliver(sv, &ev);
        }
        /* VALIDATE: no deferring validator is installed; PX: candidates are
         * not dialled yet (docs/pubsub.md) */
        gni_psr_event_fini(&ev);
    }
    ps_report_topics(sv);
    if (sv->running) {
        gn_time now = ps_now(sv), at = gni_psr_next_timer(sv->r);
        int rc = gn_timer_start(&sv->timer, at > now ? at - now : 0, ps_on_timer, sv);
        if (rc < 0) {
            GN_LOG(GN_LOG_ERR, PS_LOG, "heartbeat timer refused: %s", gn_err_name(rc));
        }
    }
}

/* ---- inbound ---- */

static void ps_in_on_data(gn_stream *s, void *ud, const uint8_t *data, size_t len)
{
    (void)s;
    ps_in *in = ud;
    ps_peer *pe = in->peer;
    if (!pe) {
        return;
    }
    ps_svc *sv = pe->sv;
    gn_channel *ch = gn_channel_hold(in->ch); /* @in may end below */
    gni_ps_rpc rpc;
    gni_ps_rpc_init(&rpc);
    while (len > 0) {
        size_t used = 0, blen = 0;
        const uint8_t *body = NULL;
        const char *why = NULL;
        int rc = gni_ps_splitter_feed(&in->sp, data, len, &used, &body, &blen, &why);
        if (rc >= 0) {
            data += used;
            len -= used;
        }
        if (rc == 1) {
            int drc = gni_ps_rpc_decode(body, blen, &sv->cfg.limits, &rpc, &why);
            if (drc == 0 && pe->in_router) {
                (void)gni_psr_rpc_in(sv->r, &pe->id, &rpc, ps_now(sv));
            }
            gni_ps_rpc_fini(&rpc);
            rc = drc < 0 ? drc : 1;
        }
        if (rc < 0) {
            sv->decode_errors++;
            GN_LOG(GN_LOG_INFO, PS_LOG, "bad RPC from a peer (%s: %s): stream reset",
                   gn_err_name(rc), why ? why : "?");
            ps_in_end(in, true);
            break;
        }
        if (rc == 0) {
            break;
        }
    }
    gn_channel_touch(ch);
    gn_channel_rele(ch);
    ps_pump(sv);
}

static void ps_in_on_eof(gn_stream *s, void *ud)
{
    (void)s;
    ps_in *in = ud;
    int rc = gni_ps_splitter_eof(&in->sp);
    ps_in_end(in, rc < 0);
}

static void ps_in_on_error(gn_stream *s, void *ud, int err)
{
    (void)s;
    (void)err;
    ps_in_end(ud, false);
}

static const gn_stream_handler ps_in_handler = {
    .on_data = ps_in_on_data,
    .on_eof = ps_in_on_eof,
    .on_error = ps_in_on_error,
};

static void ps_on_stream_any(ps_svc *sv, gn_channel *ch, gn_stream *s, const char *protocol_id)
{
    int idx = ps_proto_index(sv, protocol_id);
    gn_channel_info info;
    if (!sv->running || idx < 0 || gn_channel_state_get(ch, &info) != GN_CHANNEL_OPEN) {
        gn_stream_reset(s, NULL, NULL);
        return;
    }
    ps_peer *pe = ps_peer_get(sv, &info.remote_peer);
    ps_in *in = pe ? gn_calloc(1, sizeof *in) : NULL;
    if (!in || gni_ps_splitter_init(&in->sp, sv->cfg.limits.max_rpc_len) < 0 ||
        ps_router_add(pe, sv->proto_kind[idx], info.direction == GN_DIR_OUTBOUND) < 0) {
        gn_free(in);
        gn_stream_reset(s, NULL, NULL);
        if (pe) {
            (void)ps_peer_check(pe); /* a peer made for this stream goes */
        }
        return;
    }
    /* one inbound stream per peer (as go-libp2p-pubsub): a newer one
     * replaces the older, so a peer holds at most one splitter buffer */
    while (!gni_list_empty(&pe->ins)) {
        GN_LOG(GN_LOG_DEBUG, PS_LOG, "a second inbound stream from a peer: the older is closed");
        ps_in_end(GNI_CONTAINER_OF(pe->ins.next, ps_in, link), true);
    }
    in->peer = pe;
    in->ch = gn_channel_hold(ch);
    in->s = s;
    gni_list_add_tail(&pe->ins, &in->link);
    gn_channel_add_quiet_streams(ch, 1);
    gn_stream_set_handler(s, &ps_in_handler, in);
    gn_stream_read_start(s);
    ps_peer_sync(pe); /* congested in the router until our stream is open */
    /* answer on the protocol the peer chose, on this channel */
    if (!pe->out && !pe->opening && !pe->out_failed) {
        ps_open_out(pe, ch, idx);
    }
    ps_pump(sv);
}

static void ps_on_stream(gn_protocol *p, gn_stream *s, const gn_protocol_stream_info *info)
{
    ps_on_stream_any(p->state, info->channel, s, info->protocol_id);
}

static void ps_handler(void *arg, gn_channel *ch, gn_stream *s, const char *protocol_id)
{
    ps_on_stream_any(arg, ch, s, protocol_id);
}

static void ps_on_host_event(void *arg, const gn_host_event *ev)
{
    ps_svc *sv = arg;
    if (!sv->running || !ev->peer) {
        return;
    }
    if (ev->type == GN_HOST_EV_DISCONNECTED) {
        /* only this channel's streams go; the peer may be connected on another */
        ps_peer *pe = ps_peer_find(sv, ev->peer);
        if (!pe) {
            return;
        }
        for (gni_list *e = pe->ins.next; e != &pe->ins;) {
            ps_in *in = GNI_CONTAINER_OF(e, ps_in, link);
            e = e->next;
            if (in->ch == ev->ch) {
                ps_in_end(in, false);
            }
        }
        if (pe->opening && pe->opening->ch == ev->ch) {
            pe->opening->peer = NULL;
            pe->opening = NULL;
        }
        if (pe->ch && pe->ch == ev->ch) {
            ps_out_drop(pe);
            gn_channel_rele(pe->ch);
            pe->ch = NULL;
            ps_peer_sync(pe);
            gn_channel *other = ps_peer_any_channel(pe);
            if (other && !pe->out_failed) {
                ps_open_out(pe, other, 0); /* still connected: our stream again */
            }
        }
        (void)ps_peer_check(pe);
        ps_pump(sv);
        return;
    }
    if (ev->type != GN_HOST_EV_IDENTIFIED || !ev->ch) {
        return;
    }
    ps_peer *pe = ps_peer_find(sv, ev->peer);
    if (pe && (pe->out || pe->opening)) {
        return;
    }
    for (size_t i = 0; i < sv->nprotos; i++) {
        if (gn_host_peer_supports(sv->host, ev->peer, sv->protos[i])) {
            pe = pe ? pe : ps_peer_get(sv, ev->peer);
            if (pe) {
                pe->out_failed = false;
                pe->out_retries = 0;
                ps_open_out(pe, ev->ch, (int)i);
                (void)ps_peer_check(pe);
            }
            return;
        }
    }
}

/* ---- the group service ---- */

static ps_topic *ps_topic_find(ps_svc *sv, const char *name)
{
    for (gni_list *e = sv->topics.next; e != &sv->topics; e = e->next) {
        ps_topic *t = GNI_CONTAINER_OF(e, ps_topic, link);
        if (strcmp(t->name, name) == 0) {
            return t;
        }
    }
    return NULL;
}

static int ps_group_join(void *svc, const char *topic)
{
    ps_svc *sv = svc;
    if (ps_topic_find(sv, topic)) {
        return 0;
    }
    if (sv->ntopics >= PS_MAX_APP_TOPICS) {
        return GN_ELIMIT;
    }
    ps_topic *t = gn_calloc(1, sizeof *t);
    size_t len = strlen(topic);
    if (!t || !(t->name = gn_malloc(len + 1))) {
        gn_free(t);
        return GN_ENOMEM;
    }
    memcpy(t->name, topic, len + 1);
    int rc = gni_psr_subscribe(sv->r, topic, ps_now(sv));
    if (rc < 0) {
        gn_free(t->name);
        gn_free(t);
        return rc;
    }
    gni_list_add_tail(&sv->topics, &t->link);
    sv->ntopics++;
    ps_pump(sv);
    ps_snapshot_peers(sv);
    return 0;
}

static void ps_topic_free(ps_svc *sv, ps_topic *t)
{
    gni_list_del(&t->link);
    sv->ntopics--;
    gn_free(t->name);
    gn_free(t);
}

static void ps_group_leave(void *svc, const char *topic)
{
    ps_svc *sv = svc;
    ps_topic *t = ps_topic_find(sv, topic);
    if (t) {
        ps_topic_free(sv, t);
    }
    (void)gni_psr_unsubscribe(sv->r, topic, ps_now(sv));
    ps_pump(sv);
}

static int ps_group_publish(void *svc, const char *topic, const uint8_t *data, size_t len)
{
    ps_svc *sv = svc;
    int rc = gni_psr_publish(sv->r, topic, data, len, ps_now(sv), NULL, NULL);
    ps_pump(sv);
    return rc;
}

static const gn_host_group_ops ps_group_ops = {
    .join = ps_group_join,
    .leave = ps_group_leave,
    .publish = ps_group_publish,
};

/* ---- options, start, stop ---- */

static long ps_msg_id_nosign(const gni_ps_msg *m, uint8_t *out, size_t cap, void *ud)
{
    (void)ud;
    if (cap < crypto_hash_sha256_BYTES) {
        return GN_ENOSPC;
    }
    crypto_hash_sha256(out, m->data.data ? m->data.data : (const uint8_t *)"", m->data.len);
    return crypto_hash_sha256_BYTES;
}

/* An unsigned option: *@out keeps its value when absent. */
static int ps_opt_uint(ps_svc *sv, const char *key, unsigned long long max,
                       unsigned long long *out)
{
    const char *v = gn_host_option(sv->host, "pubsub", key, 0);
    if (!v) {
        return 0;
    }
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    if (*v < '0' || *v > '9' || *end || x > max) {
        GN_LOG(GN_LOG_ERR, PS_LOG, "pubsub.%s=%s: want an integer, 0 to %llu", key, v, max);
        return GN_EINVAL;
    }
    *out = x;
    return 0;
}

static int ps_opt_uns(ps_svc *sv, const char *key, unsigned *field)
{
    unsigned long long x = *field;
    int rc = ps_opt_uint(sv, key, 1000, &x);
    *field = (unsigned)x;
    return rc;
}

/* The router's synchronous validator: the application's, through the host (gn_multicast_set_validator). */
static gni_psr_verdict ps_validate(void *ud, const char *topic, const gni_ps_msg *m,
                                   const gn_peer_id *fwd)
{
    (void)fwd;
    ps_svc *sv = ud;
    gn_peer_id from = {0};
    if (m->has_from) {
        (void)gn_peer_id_from_bytes(m->from.data, m->from.len, &from);
    }
    switch (gn_host_group_validate(sv->host, topic, &from, m->data.data, m->data.len)) {
    case GN_GROUP_VERDICT_ACCEPT:
        return GNI_PSR_ACCEPT;
    case GN_GROUP_VERDICT_REJECT:
        return GNI_PSR_REJECT;
    default:
        return GNI_PSR_IGNORE;
    }
}

static int ps_configure(ps_svc *sv)
{
    gni_psr_config *c = &sv->cfg;
    gni_psr_config_default(c);
    c->identity = gn_host_identity(sv->host);
    c->validate = ps_validate;
    c->validate_user_data = sv;
    const char *v = gn_host_option(sv->host, "pubsub", "router", 0);
    if (v && strcmp(v, "gossipsub") != 0 && strcmp(v, "floodsub") != 0) {
        GN_LOG(GN_LOG_ERR, PS_LOG, "pubsub.router=%s: want gossipsub or floodsub", v);
        return GN_EINVAL;
    }
    sv->floodsub_only = v && strcmp(v, "floodsub") == 0;
    v = gn_host_option(sv->host, "pubsub", "sign_policy", 0);
    if (v && strcmp(v, "strict_sign") != 0 && strcmp(v, "strict_no_sign") != 0) {
        GN_LOG(GN_LOG_ERR, PS_LOG, "pubsub.sign_policy=%s: want strict_sign or strict_no_sign",
               v);
        return GN_EINVAL;
    }
    if (v && strcmp(v, "strict_no_sign") == 0) {
        c->sign_policy = GNI_PS_STRICT_NO_SIGN;
        c->msg_id = ps_msg_id_nosign; /* sha256(data), as js's msgIdFnStrictNoSign */
    }
    v = gn_host_option(sv->host, "pubsub", "flood_publish", 0);
    if (v && strcmp(v, "true") != 0 && strcmp(v, "false") != 0) {
        GN_LOG(GN_LOG_ERR, PS_LOG, "pubsub.flood_publish=%s: want true or false", v);
        return GN_EINVAL;
    }
    if (v) {
        c->flood_publish = strcmp(v, "true") == 0;
    }
    unsigned long long hb = c->heartbeat_interval / GN_MS, maxout = PS_DEFAULT_MAX_OUT;
    unsigned long long maxmsg = 0, maxtotal = PS_DEFAULT_MAX_OUT_TOTAL;
    int rc = 0;
    if ((rc = ps_opt_uns(sv, "D", &c->d)) < 0 || (rc = ps_opt_uns(sv, "D_lo", &c->d_lo)) < 0 ||
        (rc = ps_opt_uns(sv, "D_hi", &c->d_hi)) < 0 ||
        (rc = ps_opt_uns(sv, "D_lazy", &c->d_lazy)) < 0 ||
        (rc = ps_opt_uns(sv, "D_out", &c->d_out)) < 0 ||
        (rc = ps_opt_uint(sv, "heartbeat_ms", 3600000, &hb)) < 0 ||
        (rc = ps_opt_uint(sv, "max_out_bytes", 1ull << 30, &maxout)) < 0 ||
        (rc = ps_opt_uint(sv, "max_rpc_len", GNI_PS_MAX_RPC_LEN_LIMIT, &maxmsg)) < 0 ||
        (rc = ps_opt_uint(sv, "max_out_total_bytes", 1ull << 34, &maxtotal)) < 0) {
        return rc;
    }
    if (hb == 0 || maxout < 4096) {
        GN_LOG(GN_LOG_ERR, PS_LOG, "pubsub.heartbeat_ms must be > 0, pubsub.max_out_bytes >= 4096");
        return GN_EINVAL;
    }
    /* one RPC and its length prefix must fit a peer's queue and the node's */
    unsigned long long rpcmax = maxmsg ? maxmsg : GNI_PS_DEFAULT_MAX_RPC_LEN;
    if (maxout < rpcmax + 10 || maxtotal < maxout) {
        GN_LOG(GN_LOG_ERR, PS_LOG,
               "pubsub.max_out_bytes=%llu must be >= pubsub.max_rpc_len (%llu) + 10, and "
               "pubsub.max_out_total_bytes=%llu >= pubsub.max_out_bytes",
               maxout, rpcmax, maxtotal);
        return GN_EINVAL;
    }
    sv->max_out_total = (size_t)maxtotal;
    c->heartbeat_interval = (gn_time)hb * GN_MS;
    c->limits.max_rpc_len = (size_t)maxmsg;
    c->max_out_bytes_per_peer = (size_t)maxout;
    sv->max_out = (size_t)maxout;
    if (sv->floodsub_only) {
        sv->protos[0] = GNI_FLOODSUB_ID;
        sv->proto_kind[0] = GNI_PSR_FLOODSUB;
        sv->nprotos = 1;
    } else {
        sv->protos[0] = GNI_MESHSUB_11_ID;
        sv->proto_kind[0] = GNI_PSR_MESHSUB11;
        sv->protos[1] = GNI_MESHSUB_10_ID;
        sv->proto_kind[1] = GNI_PSR_MESHSUB10;
        sv->protos[2] = GNI_FLOODSUB_ID;
        sv->proto_kind[2] = GNI_PSR_FLOODSUB;
        sv->nprotos = 3;
    }
    return 0;
}

static int ps_init(gn_protocol *p)
{
    ps_svc *sv = p->state;
    sv->p = p;
    sv->host = p->host;
    sv->loop = gn_host_loop(p->host);
    gni_list_init(&sv->peers);
    gni_list_init(&sv->topics);
    gn_timer_init(sv->loop, &sv->timer);
    return 0;
}

static void ps_fini(gn_protocol *p)
{
    ps_svc *sv = p->state;
    gni_psr_free(sv->r);
    sv->r = NULL;
}

static int ps_start(gn_protocol *p)
{
    ps_svc *sv = p->state;
    int rc = ps_configure(sv);
    if (rc == 0) {
        rc = gni_psr_new(&sv->cfg, ps_now(sv), &sv->r);
        if (rc < 0) {
            GN_LOG(GN_LOG_ERR, PS_LOG, "router parameters refused: %s (check pubsub.D*)",
                   gn_err_name(rc));
        }
    }
    /* the node registered our name (/meshsub/1.1.0); the others here */
    for (size_t i = 0; rc == 0 && i < sv->nprotos; i++) {
        if (strcmp(sv->protos[i], GNI_MESHSUB_11_ID) != 0) {
            rc = gn_host_set_handler(sv->host, sv->protos[i], ps_handler, sv);
        }
    }
    if (rc == 0 && sv->floodsub_only) {
        (void)gn_host_remove_handler(sv->host, GNI_MESHSUB_11_ID);
    }
    if (rc == 0) {
        rc = gn_host_subscribe(sv->host, GN_HOST_EV_IDENTIFIED | GN_HOST_EV_DISCONNECTED,
                               ps_on_host_event, sv, &sv->sub);
    }
    sv->running = rc == 0;
    if (rc == 0) {
        rc = gn_host_set_group_service(sv->host, &ps_group_ops, sv, sv->protos[0]);
        if (rc < 0) {
            sv->running = false;
            gn_host_unsubscribe(sv->sub);
            sv->sub = NULL;
        }
    }
    if (rc == 0) {
        ps_pump(sv);
    }
    return rc;
}

static void ps_stop(gn_protocol *p)
{
    ps_svc *sv = p->state;
    if (!sv->running) {
        return;
    }
    sv->running = false;
    gn_timer_stop(&sv->timer);
    for (size_t i = 0; i < sv->nprotos; i++) {
        (void)gn_host_remove_handler(sv->host, sv->protos[i]);
    }
    gn_host_set_group_service(sv->host, NULL, sv, NULL);
    gn_host_unsubscribe(sv->sub);
    sv->sub = NULL;
    while (!gni_list_empty(&sv->peers)) {
        ps_peer_free(GNI_CONTAINER_OF(sv->peers.next, ps_peer, link));
    }
    while (!gni_list_empty(&sv->topics)) {
        ps_topic_free(sv, GNI_CONTAINER_OF(sv->topics.next, ps_topic, link));
    }
}

static const gn_protocol_ops ps_ops = {
    .abi = GN_PROTOCOL_ABI,
    .name = GNI_MESHSUB_11_ID,
    .flags = GN_LAYER_F_EXPLICIT_ONLY, /* a stream to every pubsub peer: only when named */
    .state_size = sizeof(ps_svc),
    .init = ps_init,
    .fini = ps_fini,
    .start = ps_start,
    .stop = ps_stop,
    .on_stream = ps_on_stream,
};

int gn_protocol_meshsub_register(gn_registry *reg);
int gn_protocol_meshsub_register(gn_registry *reg)
{
    return gn_registry_add(reg, GN_LAYER_PROTOCOL, (const gn_layer_ops *)&ps_ops);
}
