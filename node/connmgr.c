/*
 * The connection manager: which connections a node makes and keeps.
 *
 * A dial to a peer with an open channel returns it; a dial to a peer or
 * address with an attempt in progress joins that attempt (one dial, many
 * waiters); a bare /p2p/<id> uses the newest live address of the peer
 * store, else the routers (host.c); limits on all channels and per peer
 * give GN_ELIMIT; inbound connections past the limit are closed at once;
 * idle channels are closed by a periodic check.
 *
 * It creates channels (channel.c) and hands their connections to the
 * upgrade pipeline (upgrade.c) with cm_upgrade_cbs: the pipeline reports
 * once, and the channel either opens (gni_channel_opened) or closes
 * (gni_channel_begin_close).
 *
 * Spec: libp2p/specs connections/README.md ("Connection Management").
 */
#include "node_int.h"

#include "golemnet/multiaddr.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define CM_LOG "node"

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
 * What the upgrade pipeline reports
 */

static void cm_upgrading(gn_channel *ch)
{
    gni_channel_publish(ch);
}

/* The handshake proved the peer: record it, then apply the per-peer limit. */
static int cm_secured(gn_channel *ch, const gn_secure_result *res)
{
    gn_node *n = ch->node;
    gni_peerstore_set_pubkey(n->ps, &res->remote_peer, res->remote_pubkey);
    if (ch->outbound && ch->dial_addr[0]) {
        gni_peerstore_add_addr_ttl(n->ps, &res->remote_peer, ch->dial_addr, GN_TIME_INFINITY,
                                   GN_ADDR_SRC_DIAL);
    }
    if (count_peer(n, &res->remote_peer, ch) >= n->max_per_peer) {
        GN_LOG(GN_LOG_INFO, CM_LOG, "channel %" PRIu64 ": per-peer limit reached", ch->info.id);
        return GN_ELIMIT;
    }
    return 0;
}

static void cm_upgraded(gn_channel *ch, int status)
{
    if (status == 0) {
        gni_channel_opened(ch);
    } else {
        gni_channel_begin_close(ch, status);
    }
}

static const gni_upgrade_cbs cm_upgrade_cbs = {
    .upgrading = cm_upgrading,
    .secured = cm_secured,
    .done = cm_upgraded,
    .released = gni_channel_check_done,
    .session = {gni_channel_on_stream, gni_channel_on_end},
};

/* ------------------------------------------------------------------------
 * Dials
 */

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
    r->ch = ch;
    gni_list_add_tail(&ch->waiters, &r->link);
    gni_channel_publish(ch);
    gni_upgrade_dial(ch, t, bare, &cm_upgrade_cbs);
    gn_multiaddr_free(bare);
    gn_multiaddr_free(ma);
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

static void cm_stray_closed(gn_stream *s, void *arg)
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
        GN_LOG(GN_LOG_INFO, CM_LOG, "refusing an inbound connection: %s",
               n->closing ? "closing" : "connection limit");
    }
    if (!ch) {
        n->nstray++;
        gn_stream_close(conn, cm_stray_closed, n);
        return;
    }
    gni_upgrade_accept(ch, t, conn, &cm_upgrade_cbs);
}

/* ------------------------------------------------------------------------
 * Idle trimming
 */

static void cm_idle_tick(gn_timer *t, void *arg)
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
            GN_LOG(GN_LOG_INFO, CM_LOG, "channel %" PRIu64 " idle: closing", ch->info.id);
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
    if (gn_timer_start(&n->idle_timer, period, cm_idle_tick, n) == 0) {
        n->idle_armed = true;
    }
}
