/*
 * The upgrade pipeline: one channel's way from a transport connection to a
 * running mux session.
 *
 * Outbound: transport dial -> multistream-select of the security protocol
 * (we propose the stack's ids in order) -> the crypto component's
 * handshake (expected peer = the dialed /p2p/ id; early muxers = the
 * stack's muxer ids) -> multistream-select of the muxer unless the
 * handshake agreed one of ours early -> mux session. Inbound: the same
 * steps as responder. One timer (upgrade_timeout) bounds the whole
 * pipeline.
 *
 * The pipeline reports once, through its owner's gni_upgrade_cbs: done(0)
 * with the session running, or done(error) when a step failed or the
 * timer fired; secured() lets the owner admit or refuse the proven peer;
 * released() tells the owner that a stream the pipeline held finished
 * closing, or that a step ended after the report. It calls nothing else of
 * the node: connmgr.c starts it, channel.c aborts it.
 *
 * Cancelling a step: every step (transport dial, negotiation, handshake)
 * is started with a gn_op handle kept in ch->op until its callback.
 * gni_upgrade_abort() cancels it with gn_op_cancel(): the step releases
 * what it holds at once (a dial's socket is closed inside the call) and its
 * callback follows with GN_ECANCELED, where the failure path cleans up.
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
 * Closing streams the pipeline owns
 */

static void up_stream_closed(gn_stream *s, void *arg)
{
    (void)s;
    gn_channel *ch = arg;
    ch->pending--;
    ch->up_cbs->released(ch);
}

static void up_close_stream(gn_channel *ch, gn_stream *s)
{
    ch->pending++;
    gn_stream_set_handler(s, NULL, NULL);
    gn_stream_close(s, up_stream_closed, ch);
}

static void up_release(gn_channel *ch)
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
}

/* The one report: 0 (open) or why the upgrade failed. */
static void up_report(gn_channel *ch, int status)
{
    if (ch->up_reported) {
        ch->up_cbs->released(ch);
        return;
    }
    ch->up_reported = true;
    gn_timer_stop(&ch->upgrade_timer);
    ch->up_cbs->done(ch, status);
}

/* A step failed (or the channel is closing): release what the step held,
 * then report (once) or tell the owner a step ended. */
static void up_fail(gn_channel *ch, int status)
{
    up_release(ch);
    up_report(ch, status);
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

/* A connection a third party carries under limits (a relayed one) makes a
 * limited channel (golemnet/host.h "limited connections"). */
static void up_check_limited(gn_channel *ch, gn_stream *conn)
{
    gn_conn_limit lim;
    if (gn_stream_query(conn, GN_QUERY_CONN_LIMIT, &lim, sizeof lim) == (int)sizeof lim) {
        ch->limited = true;
        ch->limit = lim;
        uv_mutex_lock(&ch->mtx);
        ch->info.limited = true;
        uv_mutex_unlock(&ch->mtx);
    }
}

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
    gni_ms_config_default(&cfg, ch->initiator ? GNI_MS_INITIATOR : GNI_MS_RESPONDER);
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
        if (status == GN_EPEERID && res) {
            ch->received = res->remote_peer; /* whom we reached: for the dial's report */
        }
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
        ch->received = res->remote_peer;
        up_fail(ch, GN_EPEERID);
        return;
    }
    int rc = ch->up_cbs->secured(ch, res);
    if (rc < 0) {
        up_fail(ch, rc);
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
        .initiator = ch->initiator,
        .expected_peer = ch->expect_peer ? &ch->expected : NULL,
        .early_muxers = n->mux_ids,
        .n_early_muxers = n->nmux,
        /* the handshake's input buffer, in the transient scope */
        .span = ch->rc ? gn_rcmgr_conn_span(ch->rc) : NULL,
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
    gni_ms_config_default(&cfg, ch->initiator ? GNI_MS_INITIATOR : GNI_MS_RESPONDER);
    cfg.protocols = n->sec_ids;
    cfg.protocol_cnt = n->nsec;
    ch->phase = PH_MS_SEC;
    ch->up_cbs->upgrading(ch);
    ch->busy = ch->raw;
    int rc = gni_ms_negotiate(ch->raw, &cfg, up_on_sec_selected, ch, &ch->op);
    if (rc < 0) {
        ch->busy = NULL;
        up_fail(ch, rc);
    }
}

static void up_on_session_ready(gn_channel *ch, size_t mux_idx)
{
    gn_node *n = ch->node;
    gn_mux_session *ms = NULL;
    int rc = gn_mux_session_new(n->mux[mux_idx], ch->sec, ch->initiator, &ch->up_cbs->session, ch,
                                &ms);
    if (rc < 0) {
        up_fail(ch, rc);
        return;
    }
    ch->session = ms;
    /* streams and buffers under the connection's span (refused: the session ends) */
    (void)gn_mux_session_set_rcmgr(ms, n->rm, ch->rc);
    ch->mux_ops = n->mux[mux_idx]->ops;
    /* ch->sec stays as a read-only view for metrics; the session owns it */
    ch->phase = PH_OPEN;
    uv_mutex_lock(&ch->mtx);
    snprintf(ch->info.muxer, sizeof ch->info.muxer, "%s", n->mux_ids[mux_idx]);
    uv_mutex_unlock(&ch->mtx);
    up_report(ch, 0);
}

static void up_timeout(gn_timer *t, void *arg)
{
    (void)t;
    gn_channel *ch = arg;
    GN_LOG(GN_LOG_INFO, UP_LOG, "channel %" PRIu64 ": upgrade timed out", ch->info.id);
    up_report(ch, GN_ETIMEDOUT); /* the owner's close cancels the step running */
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
        up_report(ch, ch->close_reason);
        return;
    }
    if (status < 0) {
        up_report(ch, status);
        return;
    }
    ch->raw = conn;
    up_set_addrs(ch, conn);
    up_check_limited(ch, conn);
    up_start_sec_ms(ch);
}

/* ------------------------------------------------------------------------
 * Entry points
 */

static void up_begin(gn_channel *ch, const gni_upgrade_cbs *cbs)
{
    ch->up_cbs = cbs;
    ch->up_reported = false;
    gn_timer_start(&ch->upgrade_timer, ch->node->cfg.upgrade_timeout, up_timeout, ch);
}

void gni_upgrade_dial(gn_channel *ch, gn_transport *t, const gn_multiaddr *addr,
                      const gni_upgrade_cbs *cbs)
{
    up_begin(ch, cbs);
    ch->transport = t;
    ch->transport_pending = true;
    int rc = gn_transport_dial(t, addr, up_on_dialed, ch, &ch->op);
    if (rc < 0) {
        ch->transport_pending = false;
        up_report(ch, rc);
    }
}

void gni_upgrade_accept(gn_channel *ch, gn_transport *t, gn_stream *conn,
                        const gni_upgrade_cbs *cbs)
{
    up_begin(ch, cbs);
    ch->transport = t;
    ch->raw = conn;
    up_set_addrs(ch, conn);
    up_check_limited(ch, conn);
    up_start_sec_ms(ch);
}

void gni_upgrade_abort(gn_channel *ch)
{
    ch->up_reported = true; /* the owner decided: nothing more to report */
    gn_timer_stop(&ch->upgrade_timer);
    if (ch->op) {
        /* a dial, negotiation or handshake runs: stop it now; its callback
         * (GN_ECANCELED, from the loop) releases what the step held */
        gn_op_cancel(ch->op);
    } else {
        up_release(ch);
    }
}
