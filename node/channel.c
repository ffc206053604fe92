/*
 * Open channels: inbound stream handover after multistream-select,
 * outbound streams, snapshots and metrics, and what protocol components
 * use of a channel (gn_channel_host, ...).
 *
 * Streams still negotiating are node-owned and tracked as nstreams; each
 * counts in ch->pending until its close callback, so a closing channel
 * finishes only after every stream the node owns is gone. Streams handed
 * to the application or a component are theirs: the session close resets
 * them and their owner closes them.
 *
 * Messages: the node hands them to the message service (host.c,
 * gn_host_set_message_service), a protocol component.
 */
#include "node_int.h"

#include "golemnet/multiaddr.h"
#include "ms_stream.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define CH_LOG "node"

/* ------------------------------------------------------------------------
 * Life cycle, snapshots
 */

gn_channel *gni_channel_new(gn_node *n, bool outbound)
{
    gn_channel *ch = gn_calloc(1, sizeof *ch);
    if (!ch) {
        return NULL;
    }
    atomic_init(&ch->refs, 1); /* the node's reference */
    atomic_init(&ch->mq_count, 0);
    atomic_init(&ch->want_writable, false);
    atomic_init(&ch->pub_state, outbound ? GN_CHANNEL_DIALING : GN_CHANNEL_UPGRADING);
    uv_mutex_init(&ch->mtx);
    ch->node = n;
    ch->outbound = outbound;
    ch->initiator = outbound;
    ch->phase = outbound ? PH_DIALING : PH_MS_SEC;
    ch->info.id = n->next_channel++;
    ch->info.direction = outbound ? GN_DIR_OUTBOUND : GN_DIR_INBOUND;
    ch->info.state = outbound ? GN_CHANNEL_DIALING : GN_CHANNEL_UPGRADING;
    ch->created_at = gn_loop_now(n->loop);
    gni_list_init(&ch->waiters);
    gni_list_init(&ch->nstreams);
    gn_timer_init(n->loop, &ch->upgrade_timer);
    uv_mutex_lock(&n->chan_mtx); /* gn_node_channel_get() walks the list from any thread */
    gni_list_add_tail(&n->channels, &ch->link);
    uv_mutex_unlock(&n->chan_mtx);
    n->nchannels++;
    return ch;
}

gn_channel *gn_channel_hold(gn_channel *ch)
{
    atomic_fetch_add(&ch->refs, 1);
    return ch;
}

void gn_channel_rele(gn_channel *ch)
{
    if (!ch) {
        return;
    }
    if (atomic_fetch_sub(&ch->refs, 1) == 1) {
        uv_mutex_destroy(&ch->mtx);
        gn_free(ch);
    }
}

static gn_channel_state phase_state(ch_phase p)
{
    switch (p) {
    case PH_DIALING:
        return GN_CHANNEL_DIALING;
    case PH_MS_SEC:
    case PH_HANDSHAKE:
    case PH_MS_MUX:
        return GN_CHANNEL_UPGRADING;
    case PH_OPEN:
        return GN_CHANNEL_OPEN;
    case PH_CLOSING:
        return GN_CHANNEL_CLOSING;
    default:
        return GN_CHANNEL_CLOSED;
    }
}

void gni_channel_publish(gn_channel *ch)
{
    gn_channel_state st = phase_state(ch->phase);
    uv_mutex_lock(&ch->mtx);
    ch->info.state = st;
    uv_mutex_unlock(&ch->mtx);
    atomic_store(&ch->pub_state, (int)st);
}

gn_channel_state gn_channel_state_get(gn_channel *ch, gn_channel_info *info)
{
    uv_mutex_lock(&ch->mtx);
    gn_channel_state st = ch->info.state;
    if (info) {
        *info = ch->info;
    }
    uv_mutex_unlock(&ch->mtx);
    return st;
}

void gni_channel_refresh(gn_channel *ch)
{
    gn_channel_metrics m;
    memset(&m, 0, sizeof m);
    if (ch->session && ch->phase == PH_OPEN) {
        gn_mux_metrics mm;
        gn_mux_get_metrics(ch->session, &mm);
        m.streams_open = mm.streams_open;
        if (mm.last_rtt && !ch->last_rtt) {
            m.last_rtt = mm.last_rtt;
        }
    }
    if (ch->sec && ch->phase == PH_OPEN) {
        gn_stream_metrics sm;
        gn_stream_get_metrics(ch->sec, &sm);
        m.bytes_in = sm.bytes_in;
        m.bytes_out = sm.bytes_out;
    }
    m.messages_in = ch->messages_in;
    m.messages_out = ch->messages_out;
    if (ch->last_rtt) {
        m.last_rtt = ch->last_rtt;
    }
    if (ch->opened_at && ch->phase == PH_OPEN) {
        m.uptime = gn_loop_now(ch->node->loop) - ch->opened_at;
    }
    uv_mutex_lock(&ch->mtx);
    if (ch->phase != PH_OPEN) {
        /* keep the last byte counters and uptime of a channel that closed */
        m.bytes_in = GNI_MAX(m.bytes_in, ch->cache.bytes_in);
        m.bytes_out = GNI_MAX(m.bytes_out, ch->cache.bytes_out);
        m.uptime = ch->cache.uptime;
    }
    ch->cache = m;
    uv_mutex_unlock(&ch->mtx);
}

uint32_t gni_channel_user_streams(gn_channel *ch)
{
    if (!ch->session) {
        return 0;
    }
    gn_mux_metrics mm;
    gn_mux_get_metrics(ch->session, &mm);
    return mm.streams_open > ch->quiet_streams ? mm.streams_open - ch->quiet_streams : 0;
}

void gn_channel_metrics_get(gn_channel *ch, gn_channel_metrics *m)
{
    /* a closed channel may outlive its node: touch only the snapshot */
    if (atomic_load(&ch->pub_state) != GN_CHANNEL_CLOSED &&
        gn_loop_on_thread(ch->node->loop) && ch->phase == PH_OPEN) {
        gni_channel_refresh(ch);
    }
    uv_mutex_lock(&ch->mtx);
    *m = ch->cache;
    uv_mutex_unlock(&ch->mtx);
}

/* gn_channel_metrics_refresh() from another thread: the waiter and the
 * loop job share it; the last of the two frees it. */
typedef struct metrics_wait {
    _Atomic uint32_t refs;
    uv_mutex_t mtx;
    uv_cond_t cond;
    bool done; /* mtx */
    gn_channel *ch; /* held */
} metrics_wait;

static void metrics_wait_rele(metrics_wait *w)
{
    if (atomic_fetch_sub(&w->refs, 1) == 1) {
        gn_channel_rele(w->ch);
        uv_cond_destroy(&w->cond);
        uv_mutex_destroy(&w->mtx);
        gn_free(w);
    }
}

static void metrics_refresh_run(gn_loop *loop, void *arg)
{
    (void)loop;
    metrics_wait *w = arg;
    gn_channel *ch = w->ch;
    if (atomic_load(&ch->pub_state) != GN_CHANNEL_CLOSED && ch->phase == PH_OPEN) {
        gni_channel_refresh(ch);
    }
    uv_mutex_lock(&w->mtx);
    w->done = true;
    uv_cond_signal(&w->cond);
    uv_mutex_unlock(&w->mtx);
    metrics_wait_rele(w);
}

int gn_channel_metrics_refresh(gn_channel *ch, gn_channel_metrics *m, gn_time timeout)
{
    if (!ch || !m) {
        return GN_EINVAL;
    }
    int rc = 0;
    /* a closed channel may outlive its node: its last snapshot is final */
    if (atomic_load(&ch->pub_state) == GN_CHANNEL_CLOSED ||
        gn_loop_on_thread(ch->node->loop)) {
        gn_channel_metrics_get(ch, m); /* refreshes at once on the loop thread */
        return 0;
    }
    metrics_wait *w = gn_calloc(1, sizeof *w);
    if (!w) {
        rc = GN_ENOMEM;
        goto out;
    }
    atomic_init(&w->refs, 2);
    uv_mutex_init(&w->mtx);
    uv_cond_init(&w->cond);
    w->ch = gn_channel_hold(ch);
    rc = gn_loop_submit(ch->node->loop, metrics_refresh_run, w);
    if (rc < 0) {
        atomic_store(&w->refs, 1);
        metrics_wait_rele(w);
        goto out;
    }
    uint64_t start = uv_hrtime();
    uv_mutex_lock(&w->mtx);
    /* bounded by @timeout: every pass waits for the time left */
    while (!w->done) {
        if (timeout == GN_TIME_INFINITY) {
            uv_cond_wait(&w->cond, &w->mtx);
            continue;
        }
        uint64_t spent = uv_hrtime() - start;
        if (spent >= (uint64_t)timeout) {
            break;
        }
        /* a timed wait can end early (Windows: whole milliseconds, rounded
         * down, so under 1 ms it returns at once and this loop would spin),
         * so its timeout is not trusted: the loop re-checks the time, and
         * each wait is at least 1 ms (the deadline may pass by under 1 ms;
         * no OS test in a component) */
        uint64_t left = (uint64_t)timeout - spent;
        (void)uv_cond_timedwait(&w->cond, &w->mtx, left < GN_MS ? (uint64_t)GN_MS : left);
    }
    rc = w->done ? 0 : GN_ETIMEDOUT;
    uv_mutex_unlock(&w->mtx);
    metrics_wait_rele(w);
out:
    uv_mutex_lock(&ch->mtx);
    *m = ch->cache;
    uv_mutex_unlock(&ch->mtx);
    return rc;
}

static void ch_finalize(gn_loop *loop, void *arg)
{
    (void)loop;
    gn_channel *ch = arg;
    gn_node *n = ch->node;
    gni_channel_refresh(ch);
    ch->phase = PH_CLOSED;
    gni_channel_publish(ch);
    if (ch->was_open) {
        gn_node_event ev;
        gni_node_event_init(&ev, GN_NODE_EV_CHANNEL_CLOSED);
        ev.channel_id = ch->info.id;
        ev.peer = ch->info.remote_peer;
        ev.status = ch->close_reason;
        snprintf(ev.addr, sizeof ev.addr, "%s", ch->info.remote_addr);
        gni_node_push_event(n, &ev);
        gni_host_emit(n, GN_HOST_EV_DISCONNECTED, ch, &ch->info.remote_peer, ch->close_reason);
    }
    gn_timer_stop(&ch->upgrade_timer);
    gn_rcmgr_conn_done(ch->rc);
    ch->rc = NULL;
    uv_mutex_lock(&n->chan_mtx);
    gni_list_del(&ch->link);
    uv_mutex_unlock(&n->chan_mtx);
    n->nchannels--;
    gn_channel_rele(ch);
    gni_node_maybe_finish_close(n);
}

void gni_channel_check_done(gn_channel *ch)
{
    if (ch->phase != PH_CLOSING || ch->finalizing || ch->transport_pending || ch->busy ||
        ch->pending > 0 || ch->session || ch->raw) {
        return;
    }
    ch->finalizing = true;
    if (gn_loop_defer(ch->node->loop, ch_finalize, ch) < 0) {
        ch_finalize(ch->node->loop, ch);
    }
}

/* ------------------------------------------------------------------------
 * Waiters: the dial requests that wait for this channel's outcome
 */

/* Completes @r: @ch on success; @received (NULL: unknown) the peer the
 * remote proved when the dial failed with GN_EPEERID. */
static void dial_req_finish(gn_node *n, dial_req *r, int status, gn_channel *ch,
                            const gn_peer_id *received)
{
    if (r->internal) {
        r->internal(n, r, status, ch);
    } else if (r->result_cb) {
        gn_node_dial_result res;
        memset(&res, 0, sizeof res);
        res.status = status;
        if (status == 0 && ch) {
            res.ch = ch;
            res.peer = ch->info.remote_peer;
        } else if (status == GN_EPEERID && received) {
            res.peer = *received;
        }
        /* the words of an earlier attempt (a stored address that did not
         * resolve) do not explain a later, different failure */
        res.detail = status < 0 && r->detail[0] && r->detail_status == status ? r->detail : NULL;
        r->result_cb(r->arg, &res);
    } else if (r->cb) {
        r->cb(r->arg, status, status == 0 ? ch : NULL);
    } else {
        gn_node_event ev;
        gni_node_event_init(&ev, GN_NODE_EV_DIAL);
        ev.status = status;
        ev.request_id = r->req_id;
        if (status == 0 && ch) {
            ev.channel_id = ch->info.id;
            ev.peer = ch->info.remote_peer;
            snprintf(ev.addr, sizeof ev.addr, "%s", ch->info.remote_addr);
            snprintf(ev.protocol, sizeof ev.protocol, "%s", ch->info.muxer);
        } else if (status == GN_EPEERID && received) {
            ev.peer = *received;
        }
        gni_node_push_event(n, &ev);
    }
    gn_free(r);
}

void gni_dial_req_complete(gn_node *n, dial_req *r, int status, gn_channel *ch)
{
    dial_req_finish(n, r, status, ch, NULL);
}

static void complete_waiters(gn_channel *ch, int status)
{
    gn_node *n = ch->node;
    const gn_peer_id *received =
        status == GN_EPEERID && ch->received.len > 0 ? &ch->received : NULL;
    while (!gni_list_empty(&ch->waiters)) {
        dial_req *r = GNI_CONTAINER_OF(ch->waiters.next, dial_req, link);
        gni_list_del(&r->link);
        if (status < 0 && r->ntried > 0 && ch->expect_peer && status != GN_EPEERID &&
            gni_dial_next_addr(n, r, &ch->expected, status)) {
            continue; /* the peer's next address is being dialled for it */
        }
        dial_req_finish(n, r, status, status == 0 ? ch : NULL, received);
    }
}

/* ------------------------------------------------------------------------
 * Closing a channel
 */

static void ch_session_closed(gn_mux_session *ms, void *arg)
{
    (void)ms;
    gn_channel *ch = arg;
    ch->session = NULL;
    ch->sec = NULL;
    ch->pending--;
    gni_channel_check_done(ch);
}

void gni_channel_begin_close(gn_channel *ch, int reason)
{
    if (ch->phase >= PH_CLOSING) {
        return;
    }
    ch_phase prev = ch->phase;
    ch->phase = PH_CLOSING;
    ch->close_reason = reason < 0 ? reason : GN_ECLOSED;
    gn_timer_stop(&ch->upgrade_timer);
    /* a closing channel no longer counts against the connection limits
     * (the connection manager's count of live channels agrees) */
    gn_channel_hold(ch); /* keep it alive through the callbacks below */
    if (ch->session) {
        (void)gn_mux_session_set_rcmgr(ch->session, NULL, NULL); /* before the span ends */
    }
    if (prev != PH_OPEN) {
        /* before the span ends too: a handshake releases its buffers
         * inside the cancel (its completion follows from the loop) */
        gni_upgrade_abort(ch);
    }
    gn_rcmgr_conn_done(ch->rc);
    ch->rc = NULL;
    gni_channel_publish(ch);
    complete_waiters(ch, ch->close_reason);
    if (prev == PH_OPEN) {
        gni_pmap_del(ch);
        gni_channel_teardown_streams(ch);
        if (ch->session) {
            ch->pending++;
            gn_mux_session_close(ch->session, ch_session_closed, ch);
        }
    }
    gni_channel_check_done(ch);
    gn_channel_rele(ch);
}

/* ------------------------------------------------------------------------
 * Node-owned streams
 */

static int ch_closed_status(const gn_channel *ch)
{
    return ch->close_reason == GN_ECANCELED ? GN_ECANCELED : GN_ECLOSED;
}

/* The status to report for an operation that ended with @status. */
static int ch_status(const gn_channel *ch, int status)
{
    if (status < 0 && ch->phase >= PH_CLOSING) {
        return ch_closed_status(ch);
    }
    return status;
}

static nstream *ns_new(gn_channel *ch, gn_stream *s)
{
    nstream *ns = gn_calloc(1, sizeof *ns);
    if (!ns) {
        return NULL;
    }
    ns->ch = ch;
    ns->s = s;
    gni_list_add_tail(&ch->nstreams, &ns->link);
    ch->pending++;
    return ns;
}

/* Frees the record (its stream is closed or owned elsewhere). The caller
 * then calls gni_channel_check_done(). */
static void ns_release(nstream *ns)
{
    gn_channel *ch = ns->ch;
    gni_list_del(&ns->link);
    gn_free(ns);
    ch->pending--;
}

static void ns_closed(gn_stream *s, void *arg)
{
    (void)s;
    nstream *ns = arg;
    gn_channel *ch = ns->ch;
    ns_release(ns);
    gni_channel_check_done(ch);
}

/* Closes a stream the node still owns (a failed negotiation). */
static void ns_close(nstream *ns, bool reset)
{
    if (ns->closing) {
        return;
    }
    ns->closing = true;
    gn_stream_set_handler(ns->s, NULL, NULL);
    if (reset) {
        gn_stream_reset(ns->s, ns_closed, ns);
    } else {
        gn_stream_close(ns->s, ns_closed, ns);
    }
}

void gni_channel_teardown_streams(gn_channel *ch)
{
    for (gni_list *e = ch->nstreams.next; e != &ch->nstreams;) {
        nstream *ns = GNI_CONTAINER_OF(e, nstream, link);
        e = e->next;
        if (!ns->closing) {
            /* cancelled: its callback (GN_ECANCELED, from the loop) closes */
            gn_op_cancel(ns->op);
        }
    }
}

/* ------------------------------------------------------------------------
 * Opening outbound streams
 */

typedef struct open_fail {
    gn_channel *ch;
    open_done_fn done;
    void *arg;
    int status;
} open_fail;

static void open_fail_run(gn_loop *loop, void *arg)
{
    (void)loop;
    open_fail *f = arg;
    gn_channel *ch = f->ch;
    f->done(ch, f->arg, f->status, NULL);
    gn_free(f);
    ch->pending--;
    gni_channel_check_done(ch);
}

/* Reports @status to @done from the loop (never from inside the caller).
 * Returns 0, or GN_ENOMEM when the report cannot be arranged: then @done
 * will not run and the caller reports the failure itself. */
static int open_fail_defer(gn_channel *ch, open_done_fn done, void *arg, int status)
{
    open_fail *f = gn_malloc(sizeof *f);
    if (!f) {
        return GN_ENOMEM;
    }
    f->ch = ch;
    f->done = done;
    f->arg = arg;
    f->status = status;
    ch->pending++; /* keeps a closing channel until the report ran */
    if (gn_loop_defer(ch->node->loop, open_fail_run, f) < 0) {
        ch->pending--;
        gn_free(f);
        return GN_ENOMEM;
    }
    return 0;
}

static void ns_out_negotiated(void *arg, int status, gn_stream *s, const char *proto)
{
    (void)proto;
    nstream *ns = arg;
    gn_channel *ch = ns->ch;
    ns->op = NULL;
    open_done_fn done = ns->done;
    void *darg = ns->done_arg;
    ns->done = NULL;
    if (status == 0 && ch->phase != PH_OPEN) {
        status = ch_closed_status(ch);
    }
    status = ch_status(ch, status);
    if (status < 0) {
        ch->pending++; /* hold the channel through the callback */
        ns_close(ns, status != GN_ENEGOTIATION);
        done(ch, darg, status, NULL);
        ch->pending--;
        gni_channel_check_done(ch);
        return;
    }
    ns_release(ns); /* handed over */
    ch->pending++;
    done(ch, darg, 0, s);
    ch->pending--;
    gni_channel_check_done(ch);
}

int gni_channel_open_internal(gn_channel *ch, const char *proto, open_done_fn done, void *arg)
{
    if (ch->phase != PH_OPEN || !ch->session) {
        return open_fail_defer(ch, done, arg,
                               ch->phase >= PH_CLOSING ? ch_closed_status(ch) : GN_ESTATE);
    }
    gn_stream *s = NULL;
    int rc = gn_mux_open_stream(ch->session, &s);
    if (rc < 0) {
        return open_fail_defer(ch, done, arg, rc);
    }
    nstream *ns = ns_new(ch, s);
    if (!ns) {
        gn_stream_reset(s, NULL, NULL);
        return open_fail_defer(ch, done, arg, GN_ENOMEM);
    }
    ns->done = done;
    ns->done_arg = arg;
    gni_str_copy(ns->protocol, sizeof ns->protocol, proto);
    ch->last_active = gn_loop_now(ch->node->loop);
    gni_ms_config cfg;
    gni_ms_config_default(&cfg, GNI_MS_INITIATOR);
    const char *ids[1] = {ns->protocol};
    cfg.protocols = ids;
    cfg.protocol_cnt = 1;
    cfg.timeout = ch->node->cfg.upgrade_timeout;
    rc = gni_ms_negotiate(s, &cfg, ns_out_negotiated, ns, &ns->op);
    if (rc < 0) {
        ns->done = NULL;
        ns_close(ns, true);
        return open_fail_defer(ch, done, arg, rc);
    }
    return 0;
}

typedef struct user_open {
    gn_channel_stream_cb cb;
    void *arg;
} user_open;

static void user_open_done(gn_channel *ch, void *arg, int status, gn_stream *s)
{
    (void)ch;
    user_open *u = arg;
    gn_channel_stream_cb cb = u->cb;
    void *uarg = u->arg;
    gn_free(u);
    cb(uarg, status, s);
}

int gn_channel_open_stream(gn_channel *ch, const char *protocol_id, gn_channel_stream_cb cb,
                           void *arg)
{
    if (!ch || !protocol_id || !cb) {
        return GN_EINVAL;
    }
    size_t len = strlen(protocol_id);
    if (len == 0 || len >= GN_PROTOCOL_ID_MAX || strchr(protocol_id, '\n') ||
        !gn_loop_on_thread(ch->node->loop)) {
        return GN_EINVAL;
    }
    user_open *u = gn_malloc(sizeof *u);
    if (!u) {
        return GN_ENOMEM;
    }
    u->cb = cb;
    u->arg = arg;
    int rc = gni_channel_open_internal(ch, protocol_id, user_open_done, u);
    if (rc < 0) {
        gn_free(u); /* the failure could not be reported later: say it now */
    }
    return rc;
}

/* ------------------------------------------------------------------------
 * Messages: handed to the message service
 */

int gni_channel_enqueue(gn_channel *ch, gn_rcbuf *buf, uint64_t req_id)
{
    gn_node *n = ch->node;
    int rc;
    if (ch->phase != PH_OPEN) {
        rc = ch->phase >= PH_CLOSING ? ch_closed_status(ch) : GN_ESTATE;
    } else if (!n->msg_ops) {
        rc = GN_ENOTSUP;
    } else {
        rc = n->msg_ops->send(n->msg_svc, ch, buf, req_id);
        if (rc == 0) {
            return 0; /* gn_host_msg_done() releases the slot */
        }
    }
    gni_channel_mq_release(ch);
    return rc;
}

int gni_channel_mq_reserve(gn_channel *ch)
{
    /* bounded: each turn either takes a slot or leaves the flag for the loop */
    for (int turn = 0; turn < 4; turn++) {
        if (atomic_fetch_add(&ch->mq_count, 1) < GN_HOST_MSG_QUEUE_MAX) {
            return 0;
        }
        atomic_store(&ch->want_writable, true);
        atomic_fetch_sub(&ch->mq_count, 1);
        if (atomic_load(&ch->mq_count) > GNI_MQ_LOW_WATER) {
            return GN_EAGAIN; /* the loop sees the flag when it drains to the mark */
        }
        /* it drained to the mark before the flag was up: try again and
         * leave the flag up (another sender may wait on it; at worst one
         * WRITABLE more than needed) */
    }
    atomic_store(&ch->want_writable, true);
    return GN_EAGAIN;
}

void gni_channel_mq_release(gn_channel *ch)
{
    uint32_t left = atomic_fetch_sub(&ch->mq_count, 1) - 1;
    if (left > GNI_MQ_LOW_WATER || !atomic_load_explicit(&ch->want_writable, memory_order_relaxed) ||
        !atomic_exchange(&ch->want_writable, false)) {
        return;
    }
    if (ch->phase != PH_OPEN) {
        return; /* closing: CHANNEL_CLOSED is what the sender waits for */
    }
    gn_node *n = ch->node;
    atomic_fetch_add(&n->st_writable, 1);
    gn_node_event ev;
    gni_node_event_init(&ev, GN_NODE_EV_WRITABLE);
    ev.channel_id = ch->info.id;
    ev.peer = ch->info.remote_peer;
    gni_node_push_event(n, &ev);
}

/* ------------------------------------------------------------------------
 * The peer map (any-thread lookups of open channels)
 */

static uint64_t pmap_hash(const gn_peer_id *p)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a: a table key, not security */
    for (size_t i = 0; i < p->len; i++) {
        h = (h ^ p->bytes[i]) * 1099511628211ull;
    }
    return h;
}

void gni_pmap_add(gn_channel *ch)
{
    gn_node *n = ch->node;
    uv_mutex_lock(&n->pmap_mtx);
    if (n->pmap_n == n->pmap_cap) {
        size_t cap = n->pmap_cap ? n->pmap_cap * 2 : 16;
        pmap_ent *m = gn_realloc(n->pmap, cap * sizeof *m);
        if (!m) {
            uv_mutex_unlock(&n->pmap_mtx);
            /* unicasts to it take the loop's path: reported, not pushed back */
            GN_LOG(GN_LOG_WARNING, CH_LOG, "channel %" PRIu64 ": peer map: out of memory",
                   ch->info.id);
            return;
        }
        n->pmap = m;
        n->pmap_cap = cap;
    }
    pmap_ent *e = &n->pmap[n->pmap_n++];
    e->peer = ch->info.remote_peer;
    e->hash = pmap_hash(&e->peer);
    e->ch = gn_channel_hold(ch);
    snprintf(e->addr, sizeof e->addr, "%s", ch->outbound ? ch->dial_addr : "");
    uv_mutex_unlock(&n->pmap_mtx);
}

void gni_pmap_del(gn_channel *ch)
{
    gn_node *n = ch->node;
    gn_channel *found = NULL;
    uv_mutex_lock(&n->pmap_mtx);
    for (size_t i = 0; i < n->pmap_n; i++) {
        if (n->pmap[i].ch == ch) {
            found = ch;
            /* keep the order: the oldest open channel to a peer is found first */
            memmove(&n->pmap[i], &n->pmap[i + 1], (n->pmap_n - i - 1) * sizeof *n->pmap);
            n->pmap_n--;
            break;
        }
    }
    uv_mutex_unlock(&n->pmap_mtx);
    if (found) {
        gn_channel_rele(found);
    }
}

gn_channel *gni_pmap_find(gn_node *n, const gn_peer_id *peer, const char *addr)
{
    gn_channel *ch = NULL;
    uint64_t h = peer ? pmap_hash(peer) : 0;
    uv_mutex_lock(&n->pmap_mtx);
    for (size_t i = 0; i < n->pmap_n && !ch; i++) {
        const pmap_ent *e = &n->pmap[i];
        if (peer ? e->hash == h && gn_peer_id_equal(&e->peer, peer)
                 : (addr && e->addr[0] && strcmp(e->addr, addr) == 0)) {
            ch = gn_channel_hold(e->ch);
        }
    }
    uv_mutex_unlock(&n->pmap_mtx);
    return ch;
}

void gni_pmap_fini(gn_node *n)
{
    for (size_t i = 0; i < n->pmap_n; i++) {
        gn_channel_rele(n->pmap[i].ch);
    }
    gn_free(n->pmap);
    n->pmap = NULL;
    n->pmap_n = n->pmap_cap = 0;
}

/* ------------------------------------------------------------------------
 * What protocol components use of a channel
 */

gn_host *gn_channel_host(gn_channel *ch)
{
    return ch ? &ch->node->host : NULL;
}

int gn_channel_map_status(gn_channel *ch, int status)
{
    return ch ? ch_status(ch, status) : status;
}

void gn_channel_record_rtt(gn_channel *ch, gn_time rtt)
{
    if (!ch) {
        return;
    }
    ch->last_rtt = rtt;
    ch->last_active = gn_loop_now(ch->node->loop);
    gni_peerstore_record_latency(ch->node->ps, &ch->info.remote_peer, rtt);
    gni_channel_refresh(ch);
}

void gn_channel_add_quiet_streams(gn_channel *ch, int delta)
{
    if (!ch) {
        return;
    }
    if (delta < 0 && (uint32_t)-delta > ch->quiet_streams) {
        ch->quiet_streams = 0; /* a component's miscount must not wrap */
    } else {
        ch->quiet_streams += (uint32_t)delta;
    }
}

void gn_channel_touch(gn_channel *ch)
{
    if (ch) {
        ch->last_active = gn_loop_now(ch->node->loop);
    }
}

uint64_t gn_channel_id(const gn_channel *ch)
{
    return ch ? ch->info.id : 0; /* set at creation, never changed */
}

bool gn_channel_limited(gn_channel *ch, gn_conn_limit *out)
{
    if (!ch || !ch->limited) {
        return false;
    }
    if (out) {
        *out = ch->limit;
    }
    return true;
}

/* ------------------------------------------------------------------------
 * Inbound streams
 */

static void ns_in_negotiated(void *arg, int status, gn_stream *s, const char *proto)
{
    nstream *ns = arg;
    gn_channel *ch = ns->ch;
    gn_node *n = ch->node;
    ns->op = NULL;
    if (status < 0 || ch->phase != PH_OPEN) {
        ns_close(ns, status != GN_ENEGOTIATION);
        return;
    }
    ch->last_active = gn_loop_now(n->loop);
    const handler_ent *h = gni_node_find_handler(n, proto);
    if (h && (!ch->limited || h->limited_ok)) {
        gn_node_stream_cb cb = h->cb;
        void *harg = h->arg;
        char id[GN_PROTOCOL_ID_MAX];
        gni_str_copy(id, sizeof id, proto);
        ns_release(ns);
        ch->pending++; /* hold the channel through the callback */
        cb(harg, ch, s, id);
        ch->pending--;
        gni_channel_check_done(ch);
        return;
    }
    /* the handler was removed while negotiating */
    ns->s = s;
    ns_close(ns, true);
}

void gni_channel_on_stream(gn_mux_session *ms, void *ud, gn_stream *s)
{
    (void)ms;
    gn_channel *ch = ud;
    gn_node *n = ch->node;
    nstream *ns = ch->phase == PH_OPEN ? ns_new(ch, s) : NULL;
    if (!ns) {
        gn_stream_reset(s, NULL, NULL);
        return;
    }
    ns->inbound = true;
    const char *ids[GNI_NODE_MAX_HANDLERS + 8];
    size_t cnt = gni_node_protocols_for(n, ch, ids, GNI_ARRAY_LEN(ids));
    gni_ms_config cfg;
    gni_ms_config_default(&cfg, GNI_MS_RESPONDER);
    cfg.protocols = ids;
    cfg.protocol_cnt = cnt;
    cfg.timeout = n->cfg.upgrade_timeout;
    int rc = cnt > 0 ? gni_ms_negotiate(s, &cfg, ns_in_negotiated, ns, &ns->op) : GN_ENEGOTIATION;
    if (rc < 0) {
        ns_close(ns, true);
    }
}

void gni_channel_on_end(gn_mux_session *ms, void *ud, int err)
{
    (void)ms;
    gn_channel *ch = ud;
    GN_LOG(GN_LOG_INFO, CH_LOG, "channel %" PRIu64 " ended: %s", ch->info.id, gn_err_name(err));
    gni_channel_begin_close(ch, err < 0 ? err : GN_ECLOSED);
}

/* ------------------------------------------------------------------------
 * Open: the upgrade pipeline succeeded (the session runs)
 */

void gni_channel_opened(gn_channel *ch)
{
    gn_node *n = ch->node;
    ch->opened_at = gn_loop_now(n->loop);
    ch->last_active = ch->opened_at;
    gni_channel_publish(ch);
    char peer[GN_PEER_ID_MAX_STRLEN];
    gn_peer_id_to_string(&ch->info.remote_peer, peer, sizeof peer);
    GN_LOG(GN_LOG_INFO, CH_LOG, "channel %" PRIu64 " open: %s %s, %s, %s", ch->info.id,
           ch->outbound ? "to" : "from", peer, ch->info.security, ch->info.muxer);
    ch->was_open = true;
    gni_channel_refresh(ch);
    gni_pmap_add(ch);
    gn_node_event ev;
    gni_node_event_init(&ev, GN_NODE_EV_CHANNEL_OPENED);
    ev.channel_id = ch->info.id;
    ev.peer = ch->info.remote_peer;
    snprintf(ev.addr, sizeof ev.addr, "%s", ch->info.remote_addr);
    snprintf(ev.protocol, sizeof ev.protocol, "%s", ch->info.muxer);
    gni_node_push_event(n, &ev);
    gni_host_emit(n, GN_HOST_EV_CONNECTED, ch, &ch->info.remote_peer, 0);
    complete_waiters(ch, 0);
}
