/*
 * The upgrade pipeline and the connection manager.
 *
 * Outbound: transport dial -> multistream-select of the security protocol
 * (we propose the stack's ids in order) -> the crypto component's
 * handshake (expected peer = the dialed /p2p/ id; early muxers = the
 * stack's muxer ids) -> multistream-select of the muxer unless the
 * handshake agreed one of ours early -> mux session -> open channel.
 * Inbound: the same steps as responder. One timer (upgrade_timeout)
 * bounds the whole pipeline.
 *
 * Cancelling a step: every step (transport dial, negotiation, handshake)
 * is started with a gn_op handle kept in ch->op until its callback. A
 * closing channel (close, node close, upgrade timeout) cancels it with
 * gn_op_cancel(): the step releases what it holds at once (a dial's socket
 * is closed inside the call) and its callback follows with GN_ECANCELED,
 * where the ordinary failure path cleans up.
 *
 * Connection manager: a dial to a peer with an open channel returns it; a
 * dial to a peer or address with an attempt in progress joins that attempt
 * (one dial, many waiters); limits on all channels and per peer give
 * GN_ELIMIT; idle channels are closed by a periodic check.
 *
 * Spec: libp2p/specs connections/README.md ("Upgrading connections",
 * "Protocol Negotiation"); early muxer negotiation: noise README
 * "Extensions".
 */
#include "node_int.h"

#include "golemnet/multiaddr.h"
#include "ms_stream.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define UP_LOG "node"

/* ------------------------------------------------------------------------
 * Lookups
 */

gn_channel *gni_node_find_open(gn_node *n, const gn_peer_id *peer)
{
    for (gni_list *e = n->channels.next; e != &n->channels; e = e->next) {
        gn_channel *ch = GNI_CONTAINER_OF(e, gn_channel, link);
        if (ch->phase == PH_OPEN && gn_peer_id_equal(&ch->info.remote_peer, peer)) {
            return ch;
        }
    }
    return NULL;
}

static gn_channel *find_open_addr(gn_node *n, const char *addr)
{
    for (gni_list *e = n->channels.next; e != &n->channels; e = e->next) {
        gn_channel *ch = GNI_CONTAINER_OF(e, gn_channel, link);
        if (ch->phase == PH_OPEN && ch->outbound && strcmp(ch->dial_addr, addr) == 0) {
            return ch;
        }
    }
    return NULL;
}

/* An outbound attempt in progress to the same peer or address. */
static gn_channel *find_attempt(gn_node *n, const gn_peer_id *peer, const char *addr)
{
    for (gni_list *e = n->channels.next; e != &n->channels; e = e->next) {
        gn_channel *ch = GNI_CONTAINER_OF(e, gn_channel, link);
        if (!ch->outbound || ch->phase >= PH_OPEN) {
            continue;
        }
        if (peer && ch->expect_peer && gn_peer_id_equal(&ch->expected, peer)) {
            return ch;
        }
        if (strcmp(ch->dial_addr, addr) == 0 && (!peer || !ch->expect_peer)) {
            return ch;
        }
    }
    return NULL;
}

/* Channels (not closing) to @peer, open or upgrading, except @skip. */
static uint32_t count_peer(gn_node *n, const gn_peer_id *peer, const gn_channel *skip)
{
    uint32_t k = 0;
    for (gni_list *e = n->channels.next; e != &n->channels; e = e->next) {
        gn_channel *ch = GNI_CONTAINER_OF(e, gn_channel, link);
        if (ch == skip || ch->phase >= PH_CLOSING) {
            continue;
        }
        if ((ch->peer_known && gn_peer_id_equal(&ch->info.remote_peer, peer)) ||
            (!ch->peer_known && ch->expect_peer && gn_peer_id_equal(&ch->expected, peer))) {
            k++;
        }
    }
    return k;
}

static uint32_t count_live(gn_node *n)
{
    uint32_t k = 0;
    for (gni_list *e = n->channels.next; e != &n->channels; e = e->next) {
        if (GNI_CONTAINER_OF(e, gn_channel, link)->phase < PH_CLOSING) {
            k++;
        }
    }
    return k;
}

/* ------------------------------------------------------------------------
 * Dial requests
 */

void gni_dial_req_complete(gn_node *n, dial_req *r, int status, gn_channel *ch)
{
    if (r->internal) {
        r->internal(n, r, status, ch);
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
        }
        gni_node_push_event(n, &ev);
    }
    gn_free(r);
}

static void complete_waiters(gn_channel *ch, int status)
{
    gn_node *n = ch->node;
    while (!gni_list_empty(&ch->waiters)) {
        dial_req *r = GNI_CONTAINER_OF(ch->waiters.next, dial_req, link);
        gni_list_del(&r->link);
        gni_dial_req_complete(n, r, status, status == 0 ? ch : NULL);
    }
}

/* ------------------------------------------------------------------------
 * Closing streams the pipeline owns
 */

static void up_stream_closed(gn_stream *s, void *arg)
{
    (void)s;
    gn_channel *ch = arg;
    ch->pending--;
    gni_channel_check_done(ch);
}

static void up_close_stream(gn_channel *ch, gn_stream *s)
{
    ch->pending++;
    gn_stream_set_handler(s, NULL, NULL);
    gn_stream_close(s, up_stream_closed, ch);
}

/* A step failed (or the channel is closing): release what the step held. */
static void up_fail(gn_channel *ch, int status)
{
    if (ch->raw) {
        gn_stream *s = ch->raw;
        ch->raw = NULL;
        up_close_stream(ch, s);
    }
    if (ch->sec) {
        gn_stream *s = ch->sec;
        ch->sec = NULL;
        up_close_stream(ch, s);
    }
    if (ch->phase < PH_CLOSING) {
        gni_channel_begin_close(ch, status);
    } else {
        gni_channel_check_done(ch);
    }
}

/* ------------------------------------------------------------------------
 * The pipeline
 */

static void up_set_addrs(gn_channel *ch, gn_stream *s)
{
    gn_multiaddr *ma = NULL;
    char local[GN_NODE_ADDR_MAX] = "", remote[GN_NODE_ADDR_MAX] = "";
    if (gn_stream_addr(s, GN_ADDR_LOCAL, &ma) == 0) {
        if (gn_multiaddr_to_string(ma, local, sizeof local) < 0) {
            local[0] = '\0';
        }
        gn_multiaddr_free(ma);
    }
    ma = NULL;
    if (gn_stream_addr(s, GN_ADDR_REMOTE, &ma) == 0) {
        if (gn_multiaddr_to_string(ma, remote, sizeof remote) < 0) {
            remote[0] = '\0';
        }
        gn_multiaddr_free(ma);
    }
    if (!remote[0] && ch->outbound) {
        snprintf(remote, sizeof remote, "%s", ch->dial_addr);
    }
    uv_mutex_lock(&ch->mtx);
    snprintf(ch->info.local_addr, sizeof ch->info.local_addr, "%s", local);
    snprintf(ch->info.remote_addr, sizeof ch->info.remote_addr, "%s", remote);
    uv_mutex_unlock(&ch->mtx);
}

static void up_on_session_ready(gn_channel *ch, size_t mux_idx);

static void up_on_mux_selected(void *arg, int status, gn_stream *s, const char *proto)
{
    gn_channel *ch = arg;
    gn_node *n = ch->node;
    ch->busy = NULL;
    ch->op = NULL;
    (void)s;
    if (status < 0 || ch->phase != PH_MS_MUX) {
        up_fail(ch, status < 0 ? status : ch->close_reason);
        return;
    }
    for (size_t i = 0; i < n->nmux; i++) {
        if (strcmp(n->mux_ids[i], proto) == 0) {
            up_on_session_ready(ch, i);
            return;
        }
    }
    up_fail(ch, GN_ENEGOTIATION);
}

static void up_start_mux_ms(gn_channel *ch)
{
    gn_node *n = ch->node;
    gni_ms_config cfg;
    gni_ms_config_default(&cfg, ch->outbound ? GNI_MS_INITIATOR : GNI_MS_RESPONDER);
    cfg.protocols = n->mux_ids;
    cfg.protocol_cnt = n->nmux;
    ch->phase = PH_MS_MUX;
    ch->busy = ch->sec;
    int rc = gni_ms_negotiate(ch->sec, &cfg, up_on_mux_selected, ch, &ch->op);
    if (rc < 0) {
        ch->busy = NULL;
        up_fail(ch, rc);
    }
}

static void up_on_secured(void *arg, int status, const gn_secure_result *res)
{
    gn_channel *ch = arg;
    gn_node *n = ch->node;
    ch->busy = NULL;
    ch->op = NULL;
    if (status < 0) {
        /* the component closed the raw stream */
        GN_LOG(GN_LOG_INFO, UP_LOG, "channel %" PRIu64 ": handshake failed: %s", ch->info.id,
               gn_err_name(status));
        up_fail(ch, ch->phase == PH_HANDSHAKE ? status : ch->close_reason);
        return;
    }
    ch->sec = res->stream;
    uv_mutex_lock(&ch->mtx);
    ch->info.remote_peer = res->remote_peer;
    uv_mutex_unlock(&ch->mtx);
    ch->peer_known = true;
    memcpy(ch->remote_pubkey, res->remote_pubkey, sizeof ch->remote_pubkey);
    if (ch->phase != PH_HANDSHAKE) {
        up_fail(ch, ch->close_reason);
        return;
    }
    if (ch->expect_peer && !gn_peer_id_equal(&ch->expected, &res->remote_peer)) {
        /* the component should have refused it already; never trust that */
        up_fail(ch, GN_EPEERID);
        return;
    }
    gni_peerstore_set_pubkey(n->ps, &res->remote_peer, res->remote_pubkey);
    if (ch->outbound && ch->dial_addr[0]) {
        gni_peerstore_add_addr_ttl(n->ps, &res->remote_peer, ch->dial_addr, GN_TIME_INFINITY,
                                   GN_ADDR_SRC_DIAL);
    }
    if (count_peer(n, &res->remote_peer, ch) >= n->max_per_peer) {
        GN_LOG(GN_LOG_INFO, UP_LOG, "channel %" PRIu64 ": per-peer limit reached", ch->info.id);
        up_fail(ch, GN_ELIMIT);
        return;
    }
    if (res->early_muxer[0]) {
        for (size_t i = 0; i < n->nmux; i++) {
            if (strcmp(n->mux_ids[i], res->early_muxer) == 0) {
                up_on_session_ready(ch, i);
                return;
            }
        }
    }
    up_start_mux_ms(ch);
}

static void up_on_sec_selected(void *arg, int status, gn_stream *s, const char *proto)
{
    gn_channel *ch = arg;
    gn_node *n = ch->node;
    ch->busy = NULL;
    ch->op = NULL;
    (void)s;
    if (status < 0 || ch->phase != PH_MS_SEC) {
        up_fail(ch, status < 0 ? status : ch->close_reason);
        return;
    }
    gn_crypto *c = NULL;
    for (size_t i = 0; i < n->nsec; i++) {
        if (strcmp(n->sec_ids[i], proto) == 0) {
            c = n->sec[i];
        }
    }
    if (!c) {
        up_fail(ch, GN_ENEGOTIATION);
        return;
    }
    uv_mutex_lock(&ch->mtx);
    snprintf(ch->info.security, sizeof ch->info.security, "%s", proto);
    uv_mutex_unlock(&ch->mtx);
    gn_secure_params p = {
        .initiator = ch->outbound,
        .expected_peer = ch->expect_peer ? &ch->expected : NULL,
        .early_muxers = n->mux_ids,
        .n_early_muxers = n->nmux,
    };
    ch->phase = PH_HANDSHAKE;
    gn_stream *raw = ch->raw;
    ch->busy = raw;
    int rc = gn_crypto_secure(c, raw, &p, up_on_secured, ch, &ch->op);
    if (rc < 0) {
        ch->busy = NULL;
        up_fail(ch, rc);
        return;
    }
    ch->raw = NULL; /* the component owns it now; ch->busy reaches it until the callback */
}

static void up_start_sec_ms(gn_channel *ch)
{
    gn_node *n = ch->node;
    gni_ms_config cfg;
    gni_ms_config_default(&cfg, ch->outbound ? GNI_MS_INITIATOR : GNI_MS_RESPONDER);
    cfg.protocols = n->sec_ids;
    cfg.protocol_cnt = n->nsec;
    ch->phase = PH_MS_SEC;
    gni_channel_publish(ch);
    ch->busy = ch->raw;
    int rc = gni_ms_negotiate(ch->raw, &cfg, up_on_sec_selected, ch, &ch->op);
    if (rc < 0) {
        ch->busy = NULL;
        up_fail(ch, rc);
    }
}

static const gn_mux_session_cbs up_session_cbs = {gni_channel_on_stream, gni_channel_on_end};

static void up_on_session_ready(gn_channel *ch, size_t mux_idx)
{
    gn_node *n = ch->node;
    gn_mux_session *ms = NULL;
    int rc = gn_mux_session_new(n->mux[mux_idx], ch->sec, ch->outbound, &up_session_cbs, ch, &ms);
    if (rc < 0) {
        up_fail(ch, rc);
        return;
    }
    ch->session = ms;
    ch->mux_ops = n->mux[mux_idx]->ops;
    /* ch->sec stays as a read-only view for metrics; the session owns it */
    ch->phase = PH_OPEN;
    gn_timer_stop(&ch->upgrade_timer);
    ch->opened_at = gn_loop_now(n->loop);
    ch->last_active = ch->opened_at;
    uv_mutex_lock(&ch->mtx);
    snprintf(ch->info.muxer, sizeof ch->info.muxer, "%s", n->mux_ids[mux_idx]);
    uv_mutex_unlock(&ch->mtx);
    gni_channel_publish(ch);
    char peer[GN_PEER_ID_MAX_STRLEN];
    gn_peer_id_to_string(&ch->info.remote_peer, peer, sizeof peer);
    GN_LOG(GN_LOG_INFO, UP_LOG, "channel %" PRIu64 " open: %s %s, %s, %s", ch->info.id,
           ch->outbound ? "to" : "from", peer, ch->info.security, ch->info.muxer);
    gni_channel_on_open(ch);
    complete_waiters(ch, 0);
}

static void up_timeout(gn_timer *t, void *arg)
{
    (void)t;
    gn_channel *ch = arg;
    GN_LOG(GN_LOG_INFO, UP_LOG, "channel %" PRIu64 ": upgrade timed out", ch->info.id);
    gni_channel_begin_close(ch, GN_ETIMEDOUT);
}

static void up_on_dialed(void *arg, int status, gn_stream *conn)
{
    gn_channel *ch = arg;
    ch->transport_pending = false;
    ch->op = NULL;
    if (ch->phase != PH_DIALING) {
        if (conn) {
            up_close_stream(ch, conn);
        }
        gni_channel_check_done(ch);
        return;
    }
    if (status < 0) {
        gni_channel_begin_close(ch, status);
        return;
    }
    ch->raw = conn;
    up_set_addrs(ch, conn);
    up_start_sec_ms(ch);
}

/* The newest unexpired address of @peer in the store that a transport handles. */
static int known_addr(gn_node *n, const gn_peer_id *peer, gn_multiaddr **out)
{
    const gni_peer_info *pi = gni_peerstore_get(n->ps, peer);
    gn_time now = gn_loop_now(n->loop);
    for (size_t i = pi ? pi->naddrs : 0; i-- > 0;) {
        gn_multiaddr *ma = NULL;
        if (pi->addr_expiry[i] <= now || gn_multiaddr_parse(pi->addrs[i], &ma) < 0) {
            continue;
        }
        for (size_t t = 0; t < n->ntr; t++) {
            if (gn_transport_handles(n->tr[t], ma)) {
                *out = ma;
                return 0;
            }
        }
        gn_multiaddr_free(ma);
    }
    return GN_ENOTFOUND;
}

bool gni_node_has_route(gn_node *n, const gn_peer_id *peer)
{
    gn_multiaddr *ma = NULL;
    if (known_addr(n, peer, &ma) < 0) {
        return false;
    }
    gn_multiaddr_free(ma);
    return true;
}

void gni_node_dial_run(gn_node *n, gn_multiaddr *ma, dial_req *r)
{
    int rc = 0;
    gn_peer_id peer;
    bool has_peer = false;
    gn_multiaddr *bare = NULL;
    char addr[GN_NODE_ADDR_MAX] = "";
    gn_channel *ch = NULL;
    gn_ma_component c;

    if (n->closing) {
        rc = GN_ECANCELED;
        goto fail;
    }
    if (gn_multiaddr_find(ma, GN_MA_P2P, &c) >= 0) {
        if (gn_peer_id_from_bytes(c.value, c.value_len, &peer) < 0) {
            rc = GN_EPARSE;
            goto fail;
        }
        has_peer = true;
        if (gn_peer_id_equal(&peer, &n->self)) {
            rc = GN_EINVAL; /* dialing ourselves */
            goto fail;
        }
        if ((ch = gni_node_find_open(n, &peer))) {
            goto reuse;
        }
        rc = gn_multiaddr_decapsulate_code(ma, GN_MA_P2P, &bare);
        if (rc == GN_EPARSE) {
            /* a bare /p2p/<id>: the newest live address of the peer that a
             * transport handles, else the routers */
            rc = known_addr(n, &peer, &bare);
            if (rc == GN_ENOTFOUND) {
                rc = gni_host_route_dial(n, ma, &peer, r);
                if (rc == 0) {
                    return; /* the lookup owns @ma and @r */
                }
            }
        }
        if (rc < 0) {
            goto fail;
        }
    } else if ((rc = gn_multiaddr_dup(ma, &bare)) < 0) {
        goto fail;
    }
    if (gn_multiaddr_to_string(bare, addr, sizeof addr) < 0) {
        rc = GN_ETOOBIG;
        goto fail;
    }
    if (!has_peer && (ch = find_open_addr(n, addr))) {
        goto reuse;
    }
    if ((ch = find_attempt(n, has_peer ? &peer : NULL, addr))) {
        r->ch = ch;
        gni_list_add_tail(&ch->waiters, &r->link);
        gn_multiaddr_free(bare);
        gn_multiaddr_free(ma);
        return;
    }
    if (count_live(n) >= n->max_conns || (has_peer && count_peer(n, &peer, NULL) >= n->max_per_peer)) {
        rc = GN_ELIMIT;
        goto fail;
    }
    gn_transport *t = NULL;
    for (size_t i = 0; i < n->ntr && !t; i++) {
        if (gn_transport_handles(n->tr[i], bare)) {
            t = n->tr[i];
        }
    }
    if (!t) {
        rc = GN_ENOTRANSPORT;
        goto fail;
    }
    ch = gni_channel_new(n, true);
    if (!ch) {
        rc = GN_ENOMEM;
        goto fail;
    }
    snprintf(ch->dial_addr, sizeof ch->dial_addr, "%s", addr);
    ch->expect_peer = has_peer;
    if (has_peer) {
        ch->expected = peer;
    }
    ch->transport = t;
    r->ch = ch;
    gni_list_add_tail(&ch->waiters, &r->link);
    gni_channel_publish(ch);
    gn_timer_start(&ch->upgrade_timer, n->cfg.upgrade_timeout, up_timeout, ch);
    ch->transport_pending = true;
    rc = gn_transport_dial(t, bare, up_on_dialed, ch, &ch->op);
    gn_multiaddr_free(bare);
    gn_multiaddr_free(ma);
    if (rc < 0) {
        ch->transport_pending = false;
        gni_channel_begin_close(ch, rc);
    }
    return;

reuse:
    gn_multiaddr_free(bare);
    gn_multiaddr_free(ma);
    gni_dial_req_complete(n, r, 0, ch);
    return;
fail:
    gn_multiaddr_free(bare);
    gn_multiaddr_free(ma);
    gni_dial_req_complete(n, r, rc, NULL);
}

/* ------------------------------------------------------------------------
 * Inbound
 */

static void up_stray_closed(gn_stream *s, void *arg)
{
    (void)s;
    gn_node *n = arg;
    n->nstray--;
    gni_node_maybe_finish_close(n);
}

void gni_node_accept(gn_node *n, gn_transport *t, gn_stream *conn)
{
    gn_channel *ch = NULL;
    if (!n->closing && count_live(n) < n->max_conns) {
        ch = gni_channel_new(n, false);
    } else {
        GN_LOG(GN_LOG_INFO, UP_LOG, "refusing an inbound connection: %s",
               n->closing ? "closing" : "connection limit");
    }
    if (!ch) {
        n->nstray++;
        gn_stream_close(conn, up_stray_closed, n);
        return;
    }
    ch->transport = t;
    ch->raw = conn;
    up_set_addrs(ch, conn);
    gn_timer_start(&ch->upgrade_timer, n->cfg.upgrade_timeout, up_timeout, ch);
    up_start_sec_ms(ch);
}

/* ------------------------------------------------------------------------
 * Closing a channel
 */

static void up_session_closed(gn_mux_session *ms, void *arg)
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
    gni_channel_publish(ch);
    gn_channel_hold(ch); /* keep it alive through the callbacks below */
    complete_waiters(ch, ch->close_reason);
    if (prev == PH_OPEN) {
        gni_channel_teardown_streams(ch);
        if (ch->session) {
            ch->pending++;
            gn_mux_session_close(ch->session, up_session_closed, ch);
        }
    } else if (ch->op) {
        /* a dial, negotiation or handshake runs: stop it now; its callback
         * (GN_ECANCELED, from the loop) releases what the step held */
        gn_op_cancel(ch->op);
    } else {
        up_fail(ch, ch->close_reason);
    }
    gni_channel_check_done(ch);
    gn_channel_rele(ch);
}

/* ------------------------------------------------------------------------
 * Idle trimming
 */

static void up_idle_tick(gn_timer *t, void *arg)
{
    (void)t;
    gn_node *n = arg;
    n->idle_armed = false;
    if (n->closing) {
        return;
    }
    gn_time now = gn_loop_now(n->loop);
    for (gni_list *e = n->channels.next; e != &n->channels;) {
        gn_channel *ch = GNI_CONTAINER_OF(e, gn_channel, link);
        e = e->next;
        if (ch->phase != PH_OPEN) {
            continue;
        }
        gni_channel_refresh(ch);
        if (gni_channel_user_streams(ch) > 0) {
            ch->last_active = now;
        } else if (n->idle_timeout > 0 && now - ch->last_active >= n->idle_timeout) {
            GN_LOG(GN_LOG_INFO, UP_LOG, "channel %" PRIu64 " idle: closing", ch->info.id);
            gni_channel_begin_close(ch, GN_ETIMEDOUT);
        }
    }
    gni_node_idle_arm(n);
}

/*
 * The tick also refreshes every open channel's metrics snapshot, so other
 * threads see counters at most a second old; without an idle timeout it
 * runs once a second for that alone.
 */
void gni_node_idle_arm(gn_node *n)
{
    if (n->closing) {
        gn_timer_stop(&n->idle_timer);
        n->idle_armed = false;
        return;
    }
    gn_time period = n->idle_timeout > 0 ? n->idle_timeout / 4 : 1 * GN_S;
    period = GNI_MAX(period, 10 * GN_MS);
    period = GNI_MIN(period, 1 * GN_S);
    if (gn_timer_start(&n->idle_timer, period, up_idle_tick, n) == 0) {
        n->idle_armed = true;
    }
}
