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
 * Resources: every connection holds a span of the node's resource manager
 * (golemnet/rcmgr.h) from before it is accepted or dialled until the
 * channel is finished: upgrading connections count in the transient scope
 * and their remote IP's and subnet's scopes, and move into their peer's
 * scope when the handshake proves it. An inbound connection that the
 * transient budget refuses first evicts the oldest upgrading inbound
 * connection that has sent nothing yet, so silent connections cannot lock
 * legitimate peers out; the rest of the refusals close the new connection
 * at once. Inbound connections that send nothing for first_byte_timeout
 * are closed.
 *
 * Water marks: when more than conn_high channels are open, the least
 * valuable (no streams of their own, least recently active) that are older
 * than conn_grace and not protected are closed down to conn_low; at
 * max_connections one such channel is closed to admit a new inbound one.
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
#include <stdlib.h>
#include <string.h>

#define CM_LOG "node"

/* Most protected peers. */
#define CM_MAX_PROTECTED 256u

/* The IP address of @ma (4 or 16 bytes into @ip); 0 when it has none. */
static size_t cm_ip_of(const gn_multiaddr *ma, uint8_t ip[16])
{
    gn_ma_component c;
    if (ma && gn_multiaddr_find(ma, GN_MA_IP4, &c) >= 0 && c.value_len == 4) {
        memcpy(ip, c.value, 4);
        return 4;
    }
    if (ma && gn_multiaddr_find(ma, GN_MA_IP6, &c) >= 0 && c.value_len == 16) {
        memcpy(ip, c.value, 16);
        return 16;
    }
    return 0;
}

static void cm_log_refusal(gn_node *n, const char *what)
{
    gn_rcmgr_refusal r;
    if (gn_rcmgr_last_refusal(n->rm, &r) == 0) {
        GN_LOG(GN_LOG_INFO, CM_LOG, "%s: %s limit of %s reached (%" PRIu64 " of %" PRIu64 ")",
               what, gn_rcmgr_res_name(r.res), r.name, r.used, r.limit);
    }
}

static bool cm_protected(const gn_node *n, const gn_peer_id *peer)
{
    for (size_t i = 0; i < n->nprotected; i++) {
        if (gn_peer_id_equal(&n->protected_peers[i], peer)) {
            return true;
        }
    }
    return false;
}

/* Bytes received on an upgrading channel's connection so far. */
static uint64_t cm_bytes_in(const gn_channel *ch)
{
    gn_stream *s = ch->raw ? ch->raw : ch->busy;
    if (!s || ch->peer_known) {
        return 1; /* past the raw connection or the handshake: it spoke */
    }
    gn_stream_metrics m;
    gn_stream_get_metrics(s, &m);
    return m.bytes_in;
}

/* ------------------------------------------------------------------------
 * Lookups
 */

gn_channel *gni_node_find_open_ex(gn_node *n, const gn_peer_id *peer, bool direct)
{
    gn_channel *limited = NULL;
    for (gni_list *e = n->channels.next; e != &n->channels; e = e->next) {
        gn_channel *ch = GNI_CONTAINER_OF(e, gn_channel, link);
        if (ch->phase == PH_OPEN && gn_peer_id_equal(&ch->info.remote_peer, peer)) {
            if (!ch->limited) {
                return ch;
            }
            limited = limited ? limited : ch;
        }
    }
    return direct ? NULL : limited;
}

gn_channel *gni_node_find_open(gn_node *n, const gn_peer_id *peer)
{
    return gni_node_find_open_ex(n, peer, false);
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

/* An outbound attempt in progress to the same peer or address (never a
 * relayed one for a @direct request). */
static gn_channel *find_attempt(gn_node *n, const gn_peer_id *peer, const char *addr, bool direct)
{
    for (gni_list *e = n->channels.next; e != &n->channels; e = e->next) {
        gn_channel *ch = GNI_CONTAINER_OF(e, gn_channel, link);
        if (!ch->outbound || ch->phase >= PH_OPEN || ch->no_reuse || (direct && ch->relayed)) {
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

/* Channels not closing (@open_only: only those open). */
static uint32_t count_channels(gn_node *n, bool open_only)
{
    uint32_t k = 0;
    for (gni_list *e = n->channels.next; e != &n->channels; e = e->next) {
        ch_phase ph = GNI_CONTAINER_OF(e, gn_channel, link)->phase;
        k += open_only ? ph == PH_OPEN : ph < PH_CLOSING;
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
    static const uint8_t no_key[GN_ED25519_PUBLICKEYBYTES];
    /* all zero: the peer's identity is not Ed25519 (issue 17), no raw key to keep */
    if (memcmp(res->remote_pubkey, no_key, sizeof no_key) != 0)
        gni_peerstore_set_pubkey(n->ps, &res->remote_peer, res->remote_pubkey);
    if (ch->outbound && ch->dial_addr[0]) {
        gni_peerstore_add_addr_ttl(n->ps, &res->remote_peer, ch->dial_addr, GN_TIME_INFINITY,
                                   GN_ADDR_SRC_DIAL);
    }
    if (count_peer(n, &res->remote_peer, ch) >= n->max_per_peer) {
        GN_LOG(GN_LOG_INFO, CM_LOG, "channel %" PRIu64 ": per-peer limit reached", ch->info.id);
        return GN_ELIMIT;
    }
    if (ch->rc && gn_rcmgr_conn_set_peer(ch->rc, &res->remote_peer) < 0) {
        cm_log_refusal(n, "refusing a connection after its handshake");
        return GN_ERESOURCE;
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

int gni_ma_target_peer(const gn_multiaddr *ma, gn_peer_id *peer)
{
    size_t cnt = gn_multiaddr_count(ma);
    gn_ma_component c;
    if (cnt == 0 || gn_multiaddr_component(ma, cnt - 1, &c) < 0 || c.code != GN_MA_P2P) {
        return 0;
    }
    return gn_peer_id_from_bytes(c.value, c.value_len, peer) < 0 ? GN_EPARSE : 1;
}

bool gni_ma_is_relayed(const gn_multiaddr *ma)
{
    return ma && gn_multiaddr_find(ma, GN_MA_P2P_CIRCUIT, NULL) >= 0;
}

/* The hash a dial request records an address it tried under. */
static uint64_t dial_addr_hash(const char *addr)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const char *p = addr; *p; p++) {
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    }
    return h;
}

/* True when @r (may be NULL) tried @addr, a peer store address string. */
static bool dial_tried(const dial_req *r, const char *addr)
{
    uint64_t h = dial_addr_hash(addr);
    for (size_t i = 0; r && i < r->ntried; i++) {
        if (r->tried[i] == h) {
            return true;
        }
    }
    return false;
}

/* The newest unexpired address of @peer in the store that a transport
 * handles and @r (may be NULL) did not try, a direct one before any
 * relayed one (or only direct ones with @direct); recorded as tried in
 * @record (NULL: nowhere). */
static int known_addr_ex(gn_node *n, const gn_peer_id *peer, bool direct, const dial_req *r,
                         dial_req *record, gn_multiaddr **out)
{
    const gni_peer_info *pi = gni_peerstore_get(n->ps, peer);
    gn_time now = gn_loop_now(n->loop);
    if (r && r->ntried >= GNI_DIAL_MAX_TRIES) {
        return GN_ENOTFOUND;
    }
    for (int pass = 0; pass < (direct ? 1 : 2); pass++) {
        for (size_t i = pi ? pi->naddrs : 0; i-- > 0;) {
            gn_multiaddr *ma = NULL;
            if (pi->addrs[i].expiry <= now || dial_tried(r, pi->addrs[i].text) ||
                gn_multiaddr_parse(pi->addrs[i].text, &ma) < 0) {
                continue;
            }
            if (gni_ma_is_relayed(ma) != (pass == 1)) {
                gn_multiaddr_free(ma);
                continue;
            }
            /* a /dns* or /dnsaddr address (a bootstrap list's) is resolved
             * when dialled: taken as handled here */
            for (size_t t = 0; t < n->ntr; t++) {
                if (gn_resolver_needed(ma) || gn_transport_handles(n->tr[t], ma)) {
                    if (record) {
                        record->tried[record->ntried++] = dial_addr_hash(pi->addrs[i].text);
                    }
                    *out = ma;
                    return 0;
                }
            }
            gn_multiaddr_free(ma);
        }
    }
    return GN_ENOTFOUND;
}

static int known_addr(gn_node *n, const gn_peer_id *peer, bool direct, gn_multiaddr **out)
{
    return known_addr_ex(n, peer, direct, NULL, NULL, out);
}

bool gni_node_has_untried_route(gn_node *n, const gn_peer_id *peer, const dial_req *r)
{
    gn_multiaddr *ma = NULL;
    if (known_addr_ex(n, peer, (r->flags & GN_HOST_CONNECT_DIRECT) != 0, r, NULL, &ma) < 0) {
        return false;
    }
    gn_multiaddr_free(ma);
    return true;
}

bool gni_dial_next_addr(gn_node *n, dial_req *r, const gn_peer_id *peer, int status)
{
    if (r->ntried == 0 || r->abandoned || n->closing || status == GN_ECANCELED ||
        status == GN_ECLOSED ||
        status == GN_EINVAL || status == GN_ENOMEM) {
        return false; /* not a dial of a bare peer ID, or not worth another address */
    }
    r->last_err = status;
    if (r->ntried >= GNI_DIAL_MAX_TRIES ||
        (!gni_node_has_untried_route(n, peer, r) && (r->routed || n->nrouters == 0))) {
        return false;
    }
    char text[GN_PEER_ID_MAX_STRLEN + 8], pid[GN_PEER_ID_MAX_STRLEN];
    gn_multiaddr *ma = NULL;
    if (gn_peer_id_to_string(peer, pid, sizeof pid) < 0) {
        return false;
    }
    snprintf(text, sizeof text, "/p2p/%s", pid);
    if (gn_multiaddr_parse(text, &ma) < 0) {
        return false;
    }
    r->ch = NULL;
    GN_LOG(GN_LOG_INFO, CM_LOG, "dial %s: %s; trying its next address", pid,
           gn_err_name(status));
    gni_node_dial_run(n, ma, r);
    return true;
}

bool gni_node_has_route(gn_node *n, const gn_peer_id *peer)
{
    return gni_node_has_route_ex(n, peer, false);
}

bool gni_node_has_route_ex(gn_node *n, const gn_peer_id *peer, bool direct)
{
    gn_multiaddr *ma = NULL;
    if (known_addr(n, peer, direct, &ma) < 0) {
        return false;
    }
    gn_multiaddr_free(ma);
    return true;
}

/* ------------------------------------------------------------------------
 * DNS: /dns, /dns4, /dns6 and /dnsaddr are resolved before a transport is
 * chosen (docs/dns.md). The node owns one resolver (core/resolve_uv.c).
 */

/* A dns.<key> number option in [lo, hi]; GN_EINVAL names it when bad. */
static int cm_dns_u32(gn_node *n, const char *key, uint32_t lo, uint32_t hi, uint32_t *v)
{
    const char *s = gn_host_option(&n->host, "dns", key, 0);
    if (!s) {
        return 0;
    }
    char *end = NULL;
    unsigned long x = strtoul(s, &end, 10);
    if (!*s || *end || x < lo || x > hi || s[0] == '-') {
        GN_LOG(GN_LOG_ERR, CM_LOG, "option dns.%s=%s: want a number from %u to %u", key, s, lo,
               hi);
        return GN_EINVAL;
    }
    *v = (uint32_t)x;
    return 0;
}

int gni_node_make_resolver(gn_node *n)
{
    gn_resolver_config cfg;
    gn_resolver_config_default(&cfg);
    /* dns.server may repeat; each value may itself be a comma list */
    char servers[512] = "";
    for (size_t i = 0; gn_host_option(&n->host, "dns", "server", i); i++) {
        const char *v = gn_host_option(&n->host, "dns", "server", i);
        size_t used = strlen(servers);
        int w = snprintf(servers + used, sizeof servers - used, "%s%s", used ? "," : "", v);
        if (w < 0 || (size_t)w >= sizeof servers - used) {
            GN_LOG(GN_LOG_ERR, CM_LOG, "option dns.server: the list is longer than %zu bytes",
                   sizeof servers - 1);
            return GN_EINVAL;
        }
    }
    int rc = 0;
    if (rc == 0) rc = cm_dns_u32(n, "timeout_ms", 1, 60000, &cfg.timeout_ms);
    if (rc == 0) rc = cm_dns_u32(n, "tries", 1, 10, &cfg.tries);
    if (rc == 0) rc = cm_dns_u32(n, "max_depth", 0, 16, &cfg.max_depth);
    if (rc == 0) rc = cm_dns_u32(n, "max_lookups", 1, 64, &cfg.max_lookups);
    if (rc == 0) rc = cm_dns_u32(n, "max_results", 1, 64, &cfg.max_results);
    if (rc == 0) rc = cm_dns_u32(n, "deadline_ms", 1, 600000, &cfg.deadline_ms);
    if (rc < 0) {
        return rc;
    }
    cfg.servers = servers[0] ? servers : NULL;
    rc = gn_resolver_new(n->loop, &cfg, &n->resolver);
    if (rc == GN_EIO) {
        /* c-ares could not start (the system configuration): the node runs,
         * DNS addresses fail their dials (GN_ERESOLVE, saying why) */
        GN_LOG(GN_LOG_WARNING, CM_LOG, "no DNS resolver (c-ares did not start): /dns* and "
               "/dnsaddr addresses will fail");
        n->resolver = NULL;
        return 0;
    }
    if (rc < 0) {
        GN_LOG(GN_LOG_ERR, CM_LOG, "DNS resolver (servers '%s'): %s", servers[0] ? servers : "system",
               gn_err_name(rc));
    }
    return rc;
}

typedef struct cm_resolve {
    gn_node *n;
    dial_req *r;
    bool has_peer;
    gn_peer_id peer;
} cm_resolve;

/* TTL of resolved addresses in the peer store. */
#define CM_DNS_ADDR_TTL (10 * 60 * GN_S)

/* @r's detail for a name whose @cnt (>= 1) results no transport handles. */
static void cm_not_handled(dial_req *r, gn_multiaddr *const *addrs, size_t cnt)
{
    char text[GN_NODE_ADDR_MAX];
    if (gn_multiaddr_to_string(addrs[0], text, sizeof text) < 0) {
        text[0] = '\0';
    }
    snprintf(r->detail, sizeof r->detail, "resolved to %.120s (and %zu more), "
             "which no transport handles", text, cnt - 1);
    r->detail_status = GN_ENOTRANSPORT;
}

static void cm_resolved(void *arg, int status, gn_multiaddr *const *addrs, size_t cnt,
                        const char *detail)
{
    cm_resolve *x = arg;
    gn_node *n = x->n;
    dial_req *r = x->r;
    n->dns_pending--;
    r->dns_op = NULL;
    if (status == 0 && (n->closing || r->abandoned)) {
        status = GN_ECANCELED; /* the node closes, or the dial was cancelled */
    }
    if (status < 0) {
        if (status != GN_ECANCELED) {
            GN_LOG(GN_LOG_WARNING, CM_LOG, "dial: resolving failed: %s", detail);
            snprintf(r->detail, sizeof r->detail, "resolving failed: %s", detail);
            r->detail_status = status;
        }
        bool has_peer = x->has_peer;
        gn_peer_id peer = x->peer;
        gn_free(x);
        if (status != GN_ECANCELED && has_peer && r->ntried > 0 &&
            gni_dial_next_addr(n, r, &peer, status)) {
            return; /* a stored address of the peer failed to resolve: its next one */
        }
        gni_dial_req_complete(n, r, status, NULL);
        gni_node_maybe_finish_close(n);
        return;
    }
    gn_multiaddr *next = NULL;
    int rc = 0;
    if (x->has_peer) {
        /* the peer's addresses: the bare-peer dial tries them one after the
         * other (and any it knew already) */
        gn_time exp = gn_loop_now(n->loop) + CM_DNS_ADDR_TTL;
        char text[GN_NODE_ADDR_MAX], pid[GN_PEER_ID_MAX_STRLEN];
        size_t dialable = 0;
        for (size_t i = cnt; i-- > 0;) { /* the first result ends newest */
            gn_multiaddr *bare = NULL;
            gn_peer_id p;
            if (gni_ma_target_peer(addrs[i], &p) != 1 || !gn_peer_id_equal(&p, &x->peer) ||
                gn_multiaddr_decapsulate_code(addrs[i], GN_MA_P2P, &bare) < 0) {
                continue;
            }
            for (size_t t = 0; t < n->ntr; t++) {
                if (gn_transport_handles(n->tr[t], bare)) {
                    dialable++;
                    break;
                }
            }
            if (gn_multiaddr_to_string(bare, text, sizeof text) > 0) {
                (void)gni_peerstore_add_addr_ttl(n->ps, &x->peer, text, exp,
                                                 GN_ADDR_SRC_DISCOVERY);
            }
            gn_multiaddr_free(bare);
        }
        if (dialable == 0) {
            /* nothing of the name's to dial: the peer's other stored
             * addresses if any are left, else GN_ENOTRANSPORT saying so
             * (not the routers' GN_ENOROUTE: the address was given) */
            cm_not_handled(r, addrs, cnt);
            r->last_err = GN_ENOTRANSPORT;
            if (r->ntried == 0 || !gni_node_has_untried_route(n, &x->peer, r)) {
                rc = GN_ENOTRANSPORT;
            }
        }
        if (rc == 0) {
            snprintf(text, sizeof text, "/p2p/%s",
                     gn_peer_id_to_string(&x->peer, pid, sizeof pid) >= 0 ? pid : "");
            rc = gn_multiaddr_parse(text, &next);
        }
    } else {
        /* no peer to collect addresses for: the first one a transport handles */
        for (size_t i = 0; i < cnt && !next; i++) {
            for (size_t t = 0; t < n->ntr; t++) {
                if (gn_transport_handles(n->tr[t], addrs[i])) {
                    rc = gn_multiaddr_dup(addrs[i], &next);
                    break;
                }
            }
        }
        if (!next && rc == 0) {
            cm_not_handled(r, addrs, cnt);
            rc = GN_ENOTRANSPORT;
        }
    }
    gn_free(x);
    if (rc < 0) {
        gni_dial_req_complete(n, r, rc, NULL);
        gni_node_maybe_finish_close(n);
        return;
    }
    gni_node_dial_run(n, next, r);
}

/* Resolves @ma (taken) for @r, then dials the result. */
static void cm_dial_resolve(gn_node *n, gn_multiaddr *ma, dial_req *r)
{
    cm_resolve *x = gn_calloc(1, sizeof *x);
    int rc = x ? 0 : GN_ENOMEM;
    if (rc == 0) {
        x->n = n;
        x->r = r;
        rc = gni_ma_target_peer(ma, &x->peer);
        x->has_peer = rc == 1;
        rc = rc < 0 ? rc : 0;
    }
    if (rc == 0 && !n->resolver) {
        rc = n->closing ? GN_ECANCELED : GN_ERESOLVE;
        snprintf(r->detail, sizeof r->detail, "no DNS resolver (c-ares did not start; see the log)");
        r->detail_status = rc;
    }
    if (rc == 0) {
        rc = gn_resolve(n->resolver, ma, cm_resolved, x, &r->dns_op);
    }
    gn_multiaddr_free(ma);
    if (rc < 0) {
        gn_free(x);
        gni_dial_req_complete(n, r, rc, NULL);
        return;
    }
    n->dns_pending++;
}

void gni_node_dial_run(gn_node *n, gn_multiaddr *ma, dial_req *r)
{
    int rc = 0;
    gn_peer_id peer;
    bool has_peer = false;
    gn_multiaddr *bare = NULL;
    char addr[GN_NODE_ADDR_MAX] = "";
    gn_channel *ch = NULL;

    if (n->closing) {
        rc = GN_ECANCELED;
        goto fail;
    }
    const bool direct = (r->flags & GN_HOST_CONNECT_DIRECT) != 0;
    const bool reuse_ok = !(r->flags & GN_HOST_CONNECT_NO_REUSE);
    if (gn_resolver_needed(ma)) {
        /* /dns4/.../p2p/<id>: an open connection to the peer serves
         * without asking DNS (as for an IP address with /p2p/<id>) */
        if (reuse_ok && gni_ma_target_peer(ma, &peer) == 1 &&
            !gn_peer_id_equal(&peer, &n->self) &&
            (ch = gni_node_find_open_ex(n, &peer, direct))) {
            goto reuse;
        }
        cm_dial_resolve(n, ma, r);
        return;
    }
    if (direct && gni_ma_is_relayed(ma)) {
        rc = GN_EINVAL; /* a direct connection asked for through a relay */
        goto fail;
    }
    rc = gni_ma_target_peer(ma, &peer);
    if (rc < 0) {
        goto fail;
    }
    if (rc == 1) {
        has_peer = true;
        if (gn_peer_id_equal(&peer, &n->self)) {
            rc = GN_EINVAL; /* dialing ourselves */
            goto fail;
        }
        if (reuse_ok && (ch = gni_node_find_open_ex(n, &peer, direct))) {
            goto reuse;
        }
        rc = gn_multiaddr_decapsulate_code(ma, GN_MA_P2P, &bare);
        if (rc == GN_EPARSE) {
            /* a bare /p2p/<id>: the newest live address of the peer that a
             * transport handles, else the routers */
            rc = known_addr_ex(n, &peer, direct, r, r, &bare);
            if (rc == GN_ENOTFOUND) {
                rc = gni_host_route_dial(n, ma, &peer, r);
                if (rc == 0) {
                    return; /* the lookup owns @ma and @r */
                }
                if (r->ntried > 0 && r->last_err < 0) {
                    rc = r->last_err; /* every address failed: the last reason */
                }
            }
        }
        if (rc < 0) {
            goto fail;
        }
        if (gn_resolver_needed(bare)) {
            /* a stored /dns* or /dnsaddr address of the peer: resolve it
             * with the peer's /p2p/<id>, whose results join the store */
            gn_multiaddr *p2p = NULL, *full = NULL;
            char text[GN_PEER_ID_MAX_STRLEN + 8], pid[GN_PEER_ID_MAX_STRLEN];
            rc = gn_peer_id_to_string(&peer, pid, sizeof pid);
            if (rc >= 0) {
                snprintf(text, sizeof text, "/p2p/%s", pid);
                rc = gn_multiaddr_parse(text, &p2p);
            }
            if (rc >= 0) {
                rc = gn_multiaddr_encapsulate(bare, p2p, &full);
            }
            gn_multiaddr_free(p2p);
            if (rc < 0) {
                goto fail;
            }
            gn_multiaddr_free(bare);
            gn_multiaddr_free(ma);
            cm_dial_resolve(n, full, r);
            return;
        }
    } else if ((rc = gn_multiaddr_dup(ma, &bare)) < 0) {
        goto fail;
    }
    if (gn_multiaddr_to_string(bare, addr, sizeof addr) < 0) {
        rc = GN_ETOOBIG;
        goto fail;
    }
    if (reuse_ok && !has_peer && (ch = find_open_addr(n, addr))) {
        goto reuse;
    }
    if (reuse_ok && (ch = find_attempt(n, has_peer ? &peer : NULL, addr, direct))) {
        r->ch = ch;
        gni_list_add_tail(&ch->waiters, &r->link);
        gn_multiaddr_free(bare);
        gn_multiaddr_free(ma);
        return;
    }
    if (count_channels(n, false) >= n->max_conns ||
        (has_peer && count_peer(n, &peer, NULL) >= n->max_per_peer)) {
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
    uint8_t ip[16];
    size_t iplen = cm_ip_of(bare, ip);
    gn_rcmgr_conn *rcc = NULL;
    rc = gn_rcmgr_open_conn(n->rm, GN_RCMGR_OUTBOUND, iplen > 0, ip, iplen, &rcc);
    if (rc < 0) {
        cm_log_refusal(n, "refusing a dial");
        goto fail;
    }
    ch = gni_channel_new(n, true);
    if (!ch) {
        gn_rcmgr_conn_done(rcc);
        rc = GN_ENOMEM;
        goto fail;
    }
    ch->rc = rcc;
    ch->no_reuse = !reuse_ok;
    ch->relayed = gni_ma_is_relayed(bare);
    ch->initiator = !(r->flags & GN_HOST_CONNECT_RESPONDER);
    snprintf(ch->dial_addr, sizeof ch->dial_addr, "%s", addr);
    ch->expect_peer = has_peer;
    if (has_peer) {
        ch->expected = peer;
    }
    r->ch = ch;
    gni_list_add_tail(&ch->waiters, &r->link);
    gni_channel_publish(ch);
    /* a relay transport needs the target peer: the address with /p2p/<peer> */
    gn_multiaddr *full = NULL;
    if (has_peer && gni_ma_is_relayed(bare)) {
        char text[GN_PEER_ID_MAX_STRLEN + 8], pid[GN_PEER_ID_MAX_STRLEN];
        gn_multiaddr *p2p = NULL;
        if (gn_peer_id_to_string(&peer, pid, sizeof pid) >= 0) {
            snprintf(text, sizeof text, "/p2p/%s", pid);
            if (gn_multiaddr_parse(text, &p2p) == 0 &&
                gn_multiaddr_encapsulate(bare, p2p, &full) < 0) {
                full = NULL;
            }
        }
        gn_multiaddr_free(p2p);
    }
    gni_upgrade_dial(ch, t, full ? full : bare, &cm_upgrade_cbs);
    gn_multiaddr_free(full);
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

/* Closes the oldest upgrading inbound channel that has sent nothing. */
static bool cm_evict_silent(gn_node *n)
{
    gn_channel *victim = NULL;
    for (gni_list *e = n->channels.next; e != &n->channels; e = e->next) {
        gn_channel *ch = GNI_CONTAINER_OF(e, gn_channel, link);
        if (!ch->outbound && ch->phase < PH_OPEN && cm_bytes_in(ch) == 0 &&
            (!victim || ch->created_at < victim->created_at)) {
            victim = ch;
        }
    }
    if (!victim) {
        return false;
    }
    GN_LOG(GN_LOG_INFO, CM_LOG, "channel %" PRIu64 ": evicted (silent while upgrading)",
           victim->info.id);
    n->evicted++;
    gni_channel_begin_close(victim, GN_ERESOURCE);
    return true;
}

static int cm_trim(gn_node *n, uint32_t want, gn_time now);

void gni_node_accept(gn_node *n, gn_transport *t, gn_stream *conn)
{
    gn_channel *ch = NULL;
    gn_rcmgr_conn *rcc = NULL;
    uint8_t ip[16];
    gn_multiaddr *remote = NULL;
    size_t iplen = 0;
    if (gn_stream_addr(conn, GN_ADDR_REMOTE, &remote) == 0) {
        iplen = cm_ip_of(remote, ip);
        gn_multiaddr_free(remote);
    }
    int rc = n->closing ? GN_ECANCELED : 0;
    if (rc == 0) {
        /* the manager decides first: a connection its per-address limits
         * refuse must not cost an open channel its place */
        rc = gn_rcmgr_open_conn(n->rm, GN_RCMGR_INBOUND, iplen > 0, ip, iplen, &rcc);
        gn_rcmgr_refusal r;
        memset(&r, 0, sizeof r);
        if (rc == GN_ERESOURCE && gn_rcmgr_last_refusal(n->rm, &r) == 0) {
            bool room = false;
            if (r.scope == GN_RCMGR_SCOPE_TRANSIENT) {
                room = cm_evict_silent(n);
            } else if (r.scope == GN_RCMGR_SCOPE_SYSTEM) {
                /* full: a silent upgrading connection goes first, else the
                 * least valuable open channel past its grace period */
                room = cm_evict_silent(n) || cm_trim(n, 1, gn_loop_now(n->loop)) > 0;
            }
            if (room) {
                rc = gn_rcmgr_open_conn(n->rm, GN_RCMGR_INBOUND, iplen > 0, ip, iplen, &rcc);
            }
        }
        if (rc == 0 && count_channels(n, false) >= n->max_conns) {
            gn_rcmgr_conn_done(rcc); /* channels without a span still count */
            rcc = NULL;
            rc = GN_ELIMIT;
        }
    }
    if (rc == 0) {
        ch = gni_channel_new(n, false);
        if (!ch) {
            gn_rcmgr_conn_done(rcc);
        }
    } else if (rc == GN_ERESOURCE) {
        cm_log_refusal(n, "refusing an inbound connection");
    } else {
        GN_LOG(GN_LOG_INFO, CM_LOG, "refusing an inbound connection: %s",
               n->closing ? "closing" : "connection limit");
    }
    if (!ch) {
        n->refused++;
        n->nstray++;
        gn_stream_close(conn, cm_stray_closed, n);
        return;
    }
    ch->rc = rcc;
    gni_upgrade_accept(ch, t, conn, &cm_upgrade_cbs);
}

/* ------------------------------------------------------------------------
 * Water marks and protection
 */

typedef struct cm_cand {
    gn_channel *ch;
    uint32_t streams;
} cm_cand;

static int cm_cand_cmp(const void *a, const void *b)
{
    const cm_cand *x = a, *y = b;
    if (x->streams != y->streams) {
        return x->streams < y->streams ? -1 : 1;
    }
    if (x->ch->last_active != y->ch->last_active) {
        return x->ch->last_active < y->ch->last_active ? -1 : 1;
    }
    return x->ch->info.id < y->ch->info.id ? -1 : 1;
}

/*
 * Closes up to @want open channels, least valuable first: not protected,
 * older than the grace period; fewest streams of their own, then least
 * recently active. Returns how many it closed.
 */
static int cm_trim(gn_node *n, uint32_t want, gn_time now)
{
    if (want == 0 || n->nchannels == 0) {
        return 0;
    }
    cm_cand *c = gn_malloc(n->nchannels * sizeof *c);
    if (!c) {
        return 0;
    }
    size_t k = 0;
    for (gni_list *e = n->channels.next; e != &n->channels; e = e->next) {
        gn_channel *ch = GNI_CONTAINER_OF(e, gn_channel, link);
        if (ch->phase == PH_OPEN && now - ch->opened_at >= n->conn_grace &&
            !cm_protected(n, &ch->info.remote_peer)) {
            c[k].ch = ch;
            c[k].streams = gni_channel_user_streams(ch);
            k++;
        }
    }
    qsort(c, k, sizeof *c, cm_cand_cmp);
    int closed = 0;
    for (size_t i = 0; i < k && (uint32_t)closed < want; i++) {
        GN_LOG(GN_LOG_INFO, CM_LOG, "channel %" PRIu64 ": trimmed (connection manager)",
               c[i].ch->info.id);
        gni_channel_begin_close(c[i].ch, GN_ELIMIT);
        closed++;
    }
    n->trimmed += (uint64_t)closed;
    gn_free(c);
    return closed;
}

void gni_connmgr_configure(gn_node *n, int opt, uint64_t value)
{
    gn_rcmgr_limits l;
    gn_rcmgr_get_limits(n->rm, &l);
    switch ((gn_node_option)opt) {
    case GN_NODE_OPT_CONN_HIGH_WATER:
        n->conn_high = (uint32_t)value;
        return;
    case GN_NODE_OPT_CONN_LOW_WATER:
        n->conn_low = (uint32_t)value;
        return;
    case GN_NODE_OPT_CONN_GRACE_MS:
        n->conn_grace = value * GN_MS;
        return;
    case GN_NODE_OPT_FIRST_BYTE_TIMEOUT_MS:
        n->first_byte_timeout = value * GN_MS;
        return;
    case GN_NODE_OPT_MAX_UPGRADING:
        l.transient.conns = l.transient.conns_in = l.transient.conns_out =
            l.transient.conns_upgrading = l.transient.fd = (uint32_t)value;
        l.system.conns_upgrading = (uint32_t)value;
        break;
    case GN_NODE_OPT_MAX_CONNECTIONS_PER_IP: {
        /* a subnet holds twice an address's share (the defaults' ratio) */
        uint32_t v = (uint32_t)value, sub = v > UINT32_MAX / 2 ? UINT32_MAX : 2 * v;
        l.ip.conns = l.ip.conns_in = l.ip.conns_out = l.ip.fd = v;
        l.subnet.conns = l.subnet.conns_in = l.subnet.conns_out = l.subnet.fd = sub;
        break;
    }
    case GN_NODE_OPT_MAX_UPGRADING_PER_IP: {
        uint32_t v = (uint32_t)value;
        l.ip.conns_upgrading = v;
        l.subnet.conns_upgrading = v > UINT32_MAX / 2 ? UINT32_MAX : 2 * v;
        break;
    }
    default:
        return;
    }
    gn_rcmgr_set_limits(n->rm, &l);
}

void gni_connmgr_protect(gn_node *n, const gn_peer_id *peer, bool protect)
{
    for (size_t i = 0; i < n->nprotected; i++) {
        if (gn_peer_id_equal(&n->protected_peers[i], peer)) {
            if (!protect) {
                n->protected_peers[i] = n->protected_peers[--n->nprotected];
            }
            return;
        }
    }
    if (!protect) {
        return;
    }
    if (n->nprotected == CM_MAX_PROTECTED) {
        GN_LOG(GN_LOG_WARNING, CM_LOG, "connection manager: %u peers protected already: ignored",
               CM_MAX_PROTECTED);
        return;
    }
    if (n->nprotected == n->cap_protected) {
        size_t cap = n->cap_protected ? n->cap_protected * 2 : 8;
        gn_peer_id *p = gn_realloc(n->protected_peers, cap * sizeof *p);
        if (!p) {
            GN_LOG(GN_LOG_ERR, CM_LOG, "connection manager: out of memory protecting a peer");
            return;
        }
        n->protected_peers = p;
        n->cap_protected = cap;
    }
    n->protected_peers[n->nprotected++] = *peer;
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
    if (n->conn_high > 0) {
        uint32_t open = count_channels(n, true);
        if (open > n->conn_high) {
            /* a low mark at or above the high one acts as the high one */
            cm_trim(n, open - GNI_MIN(n->conn_low, n->conn_high), now);
        }
    }
    for (gni_list *e = n->channels.next; e != &n->channels;) {
        gn_channel *ch = GNI_CONTAINER_OF(e, gn_channel, link);
        e = e->next;
        if (ch->phase < PH_OPEN && !ch->outbound && n->first_byte_timeout > 0 &&
            now - ch->created_at >= n->first_byte_timeout && cm_bytes_in(ch) == 0) {
            GN_LOG(GN_LOG_INFO, CM_LOG, "channel %" PRIu64 ": nothing received in %" PRIu64
                   " ms: closing", ch->info.id, (uint64_t)(n->first_byte_timeout / GN_MS));
            gni_channel_begin_close(ch, GN_ETIMEDOUT);
            continue;
        }
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
