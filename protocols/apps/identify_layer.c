/*
 * The identify protocol component (/ipfs/id/1.0.0 and /ipfs/id/push/1.0.0):
 * answers identify requests with what the host says of itself, asks every
 * newly connected peer (GN_HOST_EV_CONNECTED), takes pushed updates, and
 * records the results in the host's peer store. Each result is reported to
 * the application as GN_NODE_EV_IDENTIFY and to other components as
 * GN_HOST_EV_IDENTIFIED. Runs when the node's protocols include
 * GN_NODE_PROTO_IDENTIFY (the default).
 *
 * Push. When the host's listen or observed addresses change
 * (GN_HOST_EV_LISTEN_ADDRS) or the protocols it answers change
 * (GN_HOST_EV_PROTOCOLS), the component waits id.push_delay_ms (default
 * 100 ms; changes in that window are coalesced into one push), then sends
 * a full Identify message on /ipfs/id/push/1.0.0 on every open channel
 * whose peer we identified, that announced the push protocol and that has
 * not seen the current state yet (each change bumps a generation; a
 * channel remembers the generation of the last identify reply or push it
 * got from us, so a peer that asked us after the change gets no push).
 * At most one push per peer is in flight; a change during it is pushed
 * after it. A push that fails is not retried until the next change.
 * id.push=0 turns sending off (receiving stays on).
 * Spec: libp2p/specs identify/README.md; docs/protocols/apps.md.
 */
#include "golemnet/node.h"
#include "golemnet/protocol.h"
#include "golemnet/multiformats.h"
#include "golemnet/registry.h"

#include "gni.h"

#include "identify.h"
#include "gni_envelope.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ID_LOG "identify"

/** Default id.push_delay_ms: changes this close together make one push. */
#define ID_PUSH_DELAY (100 * GN_MS)
/** Most identified channels tracked for push (beyond it, new ones get none). */
#define ID_PUSH_MAX_PEERS 1024u

typedef struct idp {
    gn_protocol *p;
    gn_host_sub *sub;
    bool running;
    bool push_on;        /* option id.push (default on) */
    gn_time push_delay;  /* option id.push_delay_ms */
    gn_timer push_timer; /* armed by the first change, coalesces the rest */
    uint64_t gen;        /* bumped by every change of what we announce */
    gni_list peers;      /* id_peer: channels we answered or identified */
    size_t npeers;
    /* our signed peer record (RFC 0003), resealed when the addresses change */
    uint8_t *rec;        /* the envelope; NULL: none (sealing failed) */
    size_t rec_len;
    uint64_t rec_seq;    /* the last seq used: each record's is larger */
    uint8_t *rec_key;    /* the addresses it holds, their bytes concatenated */
    size_t rec_key_len;
    gni_envelope_memo *memo; /* peers' records already verified (made on first use) */
} idp;

/*
 * A channel we answered identify on or whose peer we identified: where
 * pushes go. Holds the channel. Off the list (gone) but alive while its
 * push is in flight.
 */
typedef struct id_peer {
    gni_list link;
    idp *st;
    gn_channel *ch; /* held */
    gn_peer_id peer;
    uint64_t known_gen; /* the generation the peer last got from us */
    uint64_t push_gen;  /* the generation when the push in flight started */
    bool identified;    /* our identify of the peer succeeded on this channel */
    bool in_flight;     /* a push stream is being opened or written */
    bool gone;          /* the channel closed or the component stopped */
} id_peer;

/* One exchange with one peer: holds the channel until the result. */
typedef struct id_req {
    idp *st;
    gn_channel *ch; /* held */
    gn_peer_id peer;
} id_req;

/*
 * Records a result in the peer store and reports it. @push: a pushed
 * update, whose missing fields mean "unchanged" (identify spec,
 * "identify/push"): an empty protocol list keeps the known one, an absent
 * agent version keeps the known one, listen addresses are added.
 */
/*
 * True when @obs (how a peer sees us) is worth recording as our address: a
 * TCP or UDP address whose port is one we listen on, i.e. a NAT's mapping
 * of our listener when the NAT keeps ports (the TCP transport dials from
 * its listen port). Anything else (an ephemeral port, a relayed address)
 * is one connection's view and useless to other peers.
 */
static bool observed_is_ours(gn_host *h, const gn_multiaddr *obs)
{
    gn_ma_component ip, port;
    if (gn_multiaddr_count(obs) < 2 || gn_multiaddr_component(obs, 0, &ip) < 0 ||
        gn_multiaddr_component(obs, 1, &port) < 0 ||
        (ip.code != GN_MA_IP4 && ip.code != GN_MA_IP6) ||
        gn_multiaddr_find(obs, GN_MA_P2P_CIRCUIT, NULL) >= 0) {
        return false;
    }
    const gn_multiaddr *ls[16];
    size_t n = gn_host_listen_addrs(h, ls, 16);
    for (size_t i = 0; i < n; i++) {
        gn_ma_component lp;
        if (gn_multiaddr_count(ls[i]) >= 2 && gn_multiaddr_component(ls[i], 1, &lp) == 0 &&
            lp.code == port.code && lp.value_len == port.value_len &&
            memcmp(lp.value, port.value, lp.value_len) == 0) {
            return true;
        }
    }
    return false;
}

static void id_record(idp *st, gn_channel *ch, const gn_peer_id *peer, int status,
                      gni_identify_result *res, bool push)
{
    gn_host *h = st->p->host;
    gn_channel_info info;
    gn_channel_state state = gn_channel_state_get(ch, &info);
    gn_node_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = GN_NODE_EV_IDENTIFY;
    ev.channel_id = info.id;
    ev.peer = *peer;
    ev.status = gn_channel_map_status(ch, status);
    if (status == 0 && res) {
        if (!push || res->protocol_cnt > 0) {
            gn_host_peer_set_protocols(h, peer, (const char *const *)res->protocols,
                                       res->protocol_cnt);
        }
        /*
         * A verified signed peer record's addresses are certified by the
         * peer's key and take the place of the plain listenAddrs (as
         * go-libp2p's identify does); without one, listenAddrs.
         */
        if (!st->memo && res->has_signed_peer_record) {
            st->memo = gn_calloc(1, sizeof *st->memo); /* NULL: verify every time */
        }
        int rrc = gni_identify_check_record(res, peer, st->memo);
        if (rrc < 0 && rrc != GN_ENOTFOUND) {
            GN_LOG(GN_LOG_INFO, ID_LOG, "signed peer record not taken: %s", gn_err_name(rrc));
        }
        bool certified = res->signed_peer_record_ok && res->record_addr_cnt > 0;
        gn_multiaddr *const *addrs = certified ? res->record_addrs : res->listen_addrs;
        size_t naddrs = certified ? res->record_addr_cnt : res->listen_addr_cnt;
        for (size_t i = 0; i < naddrs; i++) {
            const gn_multiaddr *a[1] = {addrs[i]};
            gn_host_peer_add_addrs(h, peer, a, 1, GN_ADDR_TTL_PERMANENT, GN_ADDR_SRC_IDENTIFY);
        }
        gn_host_peer_set_identified(h, peer, res->agent_version, res->observed_addr);
        if (res->observed_addr && !info.limited && observed_is_ours(h, res->observed_addr)) {
            gn_host_add_observed_addr(h, res->observed_addr);
        }
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

/* ---- what we say of ourselves ---- */

typedef struct id_self {
    uint8_t pb[GN_PUBKEY_MAX_BYTES]; /* any key type (issue 17) */
    const gn_multiaddr *addrs[GNI_IDENTIFY_MAX_ADDRS];
    const char *protos[GNI_IDENTIFY_MAX_PROTOCOLS];
    gni_identify_info info;
} id_self;

/*
 * Fills @me (borrowing the host's addresses and ids until the loop turns):
 * our key, the listen addresses then the observed and announced ones not
 * already listed (NAT mappings, relay reservations: how peers reach us),
 * the protocols.
 */
/*
 * Our signed peer record for @addrs: the cached one while the addresses
 * stay the same, else a new one with a larger seq (wall-clock nanoseconds,
 * as go-libp2p, or the last seq + 1 when the clock went back). Sealing
 * signs with the identity key (about 1 ms for RSA-2048), hence the cache.
 * On failure the record is left out of identify (logged).
 */
/* True when the cached record's key (varint-length-prefixed address bytes)
 * is @addrs: compared in place, so an unchanged address set costs no
 * allocation on every identify reply. */
static bool id_record_key_is(const idp *st, const gn_multiaddr *const *addrs, size_t naddrs,
                             size_t kl)
{
    if (!st->rec || st->rec_key_len != kl) {
        return false;
    }
    size_t p = 0;
    for (size_t i = 0; i < naddrs; i++) {
        gn_slice b = gn_multiaddr_bytes(addrs[i]);
        uint8_t lp[10];
        int ll = gn_varint_encode(b.len, lp, sizeof lp);
        if (ll < 0 || memcmp(st->rec_key + p, lp, (size_t)ll) != 0 ||
            memcmp(st->rec_key + p + ll, b.base, b.len) != 0) {
            return false;
        }
        p += (size_t)ll + b.len;
    }
    return true;
}

static gn_slice id_self_record(idp *st, const gn_multiaddr *const *addrs, size_t naddrs)
{
    size_t kl = 0;
    for (size_t i = 0; i < naddrs; i++) {
        size_t bl = gn_multiaddr_bytes(addrs[i]).len;
        kl += gn_varint_len(bl) + bl;
    }
    if (id_record_key_is(st, addrs, naddrs, kl)) {
        return gn_slice_of(st->rec, st->rec_len);
    }
    uint8_t *key = gn_malloc(kl ? kl : 1);
    if (!key) {
        return gn_slice_of(st->rec, st->rec ? st->rec_len : 0);
    }
    size_t p = 0;
    for (size_t i = 0; i < naddrs; i++) {
        gn_slice b = gn_multiaddr_bytes(addrs[i]);
        p += (size_t)gn_varint_encode(b.len, key + p, kl - p); /* keeps the joins apart */
        memcpy(key + p, b.base, b.len);
        p += b.len;
    }
    gn_host *h = st->p->host;
    gn_peer_id self;
    gn_identity_peer_id(gn_host_identity(h), &self);
    uint64_t seq = (uint64_t)time(NULL) * 1000000000u;
    if (seq <= st->rec_seq) {
        seq = st->rec_seq + 1;
    }
    uint8_t *payload = NULL, *env = NULL;
    size_t pl = 0, el = 0;
    int rc = gni_peer_record_encode(&self, seq, addrs, naddrs, &payload, &pl);
    if (rc == 0) {
        rc = gni_envelope_seal(gn_host_identity(h), GNI_PEER_RECORD_DOMAIN,
                               gni_peer_record_type, GNI_PEER_RECORD_TYPE_LEN, payload, pl,
                               &env, &el);
    }
    gn_free(payload);
    if (rc < 0) {
        GN_LOG(GN_LOG_WARNING, ID_LOG, "signed peer record not sealed: %s", gn_err_name(rc));
        gn_free(key);
        return gn_slice_of(st->rec, st->rec ? st->rec_len : 0);
    }
    gn_free(st->rec);
    gn_free(st->rec_key);
    st->rec = env;
    st->rec_len = el;
    st->rec_seq = seq;
    st->rec_key = key;
    st->rec_key_len = kl;
    return gn_slice_of(st->rec, st->rec_len);
}

static void id_self_fill(idp *st, id_self *me)
{
    gn_host *h = st->p->host;
    int pblen = gn_identity_encode_public(gn_host_identity(h), me->pb, sizeof me->pb);
    size_t naddrs = gn_host_listen_addrs(h, me->addrs, GNI_ARRAY_LEN(me->addrs));
    const gn_multiaddr *obs[GN_HOST_MAX_OBSERVED + GN_HOST_MAX_ANNOUNCED];
    size_t nobs = gn_host_observed_addrs(h, obs, GN_HOST_MAX_OBSERVED);
    nobs += gn_host_announced_addrs(h, obs + nobs, GN_HOST_MAX_ANNOUNCED);
    for (size_t i = 0; i < nobs && naddrs < GNI_ARRAY_LEN(me->addrs); i++) {
        bool dup = false;
        for (size_t j = 0; j < naddrs && !dup; j++) {
            dup = gn_multiaddr_equal(me->addrs[j], obs[i]);
        }
        if (!dup) {
            me->addrs[naddrs++] = obs[i];
        }
    }
    size_t nprotos = gn_host_protocols(h, me->protos, GNI_ARRAY_LEN(me->protos));
    me->info = (gni_identify_info){
        .protocol_version = NULL,
        .agent_version = gn_host_agent_version(h),
        .public_key = gn_slice_of(me->pb, pblen > 0 ? (size_t)pblen : 0),
        .listen_addrs = me->addrs,
        .listen_addr_cnt = naddrs,
        .observed_addr = NULL, /* the drivers take the stream's remote address */
        .protocols = me->protos,
        .protocol_cnt = nprotos,
        .fin_delay = 0,
        .signed_peer_record = id_self_record(st, me->addrs, naddrs),
    };
}

/* ---- push: the peers to tell ---- */

static void id_peer_free(id_peer *e)
{
    gn_channel_rele(e->ch);
    gn_free(e);
}

/* Takes @e off the list; frees it unless its push is in flight (then the
 * push's completion does). */
static void id_peer_drop(id_peer *e)
{
    gni_list_del(&e->link);
    e->st->npeers--;
    e->gone = true;
    if (!e->in_flight) {
        id_peer_free(e);
    }
}

static id_peer *id_peer_find(idp *st, const gn_channel *ch)
{
    for (gni_list *l = st->peers.next; l != &st->peers; l = l->next) {
        id_peer *e = GNI_CONTAINER_OF(l, id_peer, link);
        if (e->ch == ch) {
            return e;
        }
    }
    return NULL;
}

/* The entry of @ch, made when missing; NULL when stopped, full or out of memory. */
static id_peer *id_peer_get(idp *st, gn_channel *ch, const gn_peer_id *peer)
{
    if (!st->running || !ch) {
        return NULL;
    }
    id_peer *e = id_peer_find(st, ch);
    if (e) {
        return e;
    }
    if (st->npeers >= ID_PUSH_MAX_PEERS) {
        GN_LOG(GN_LOG_INFO, ID_LOG, "push: %u channels tracked, not this one",
               ID_PUSH_MAX_PEERS);
        return NULL;
    }
    e = gn_calloc(1, sizeof *e);
    if (!e) {
        return NULL;
    }
    e->st = st;
    e->ch = gn_channel_hold(ch);
    e->peer = *peer;
    gni_list_add_tail(&st->peers, &e->link);
    st->npeers++;
    return e;
}

static void id_push_due(gn_timer *t, void *arg);

/* Arms the push timer unless it runs (the changes until it fires make one push). */
static void id_push_arm(idp *st)
{
    if (st->running && st->push_on && !gn_timer_active(&st->push_timer) &&
        gn_timer_start(&st->push_timer, st->push_delay, id_push_due, st) < 0) {
        GN_LOG(GN_LOG_INFO, ID_LOG, "push: no timer, the change is not pushed");
    }
}

/* ---- push: sending ---- */

static void id_push_done(id_peer *e, int status)
{
    e->in_flight = false;
    if (status < 0) {
        /* not retried before the next change */
        GN_LOG(GN_LOG_DEBUG, ID_LOG, "push failed: %s", gn_err_name(status));
        e->known_gen = GNI_MAX(e->known_gen, e->push_gen);
    }
    if (e->gone) {
        id_peer_free(e);
    } else if (e->known_gen != e->st->gen) {
        id_push_arm(e->st); /* changed while in flight */
    }
}

static void id_push_written(void *arg, int status)
{
    id_push_done(arg, status);
}

static void id_push_opened(void *arg, int status, gn_stream *s)
{
    id_peer *e = arg;
    if (status == 0 && (e->gone || !e->st->running)) {
        gn_stream_reset(s, NULL, NULL);
        status = GN_ECANCELED;
    }
    if (status == 0) {
        /* built now, so changes made while the stream opened are in it */
        id_self me;
        id_self_fill(e->st, &me);
        if ((status = gni_identify_push(s, &me.info, id_push_written, e)) < 0) {
            gn_stream_reset(s, NULL, NULL);
        } else {
            e->known_gen = e->st->gen;
        }
    }
    if (status < 0) {
        id_push_done(e, status);
    }
}

static void id_push_start(id_peer *e)
{
    e->push_gen = e->st->gen;
    e->in_flight = true;
    int rc = gn_channel_open_stream(e->ch, GNI_IDENTIFY_PUSH_PROTOCOL_ID, id_push_opened, e);
    if (rc < 0) {
        e->in_flight = false;
        GN_LOG(GN_LOG_DEBUG, ID_LOG, "push: no stream: %s", gn_err_name(rc));
    }
}

/* True when another tracked channel of @e's peer has a push in flight. */
static bool id_peer_busy(idp *st, const id_peer *e)
{
    for (gni_list *l = st->peers.next; l != &st->peers; l = l->next) {
        const id_peer *o = GNI_CONTAINER_OF(l, id_peer, link);
        if (o != e && o->in_flight && gn_peer_id_equal(&o->peer, &e->peer)) {
            return true;
        }
    }
    return false;
}

/* The coalesced change is due: push to every peer that takes pushes. */
static void id_push_due(gn_timer *t, void *arg)
{
    (void)t;
    idp *st = arg;
    if (!st->running) {
        return;
    }
    gn_host *h = st->p->host;
    for (gni_list *l = st->peers.next; l != &st->peers; l = l->next) {
        id_peer *e = GNI_CONTAINER_OF(l, id_peer, link);
        if (e->in_flight || !e->identified || e->known_gen == st->gen ||
            gn_channel_state_get(e->ch, NULL) != GN_CHANNEL_OPEN ||
            !gn_host_peer_supports(h, &e->peer, GNI_IDENTIFY_PUSH_PROTOCOL_ID)) {
            continue; /* an entry in flight is looked at again when it ends */
        }
        if (id_peer_busy(st, e)) {
            continue; /* likewise, through the other channel's entry */
        }
        id_push_start(e); /* completes later: the list is not changed here */
    }
}

/* ---- asking a new peer ---- */

static void id_result(void *arg, int status, gni_identify_result *res)
{
    id_req *r = arg;
    if (status < 0) {
        GN_LOG(GN_LOG_INFO, ID_LOG, "identify failed: %s", gn_err_name(status));
    }
    id_record(r->st, r->ch, &r->peer, status, res, false);
    id_peer *e = status == 0 && res ? id_peer_get(r->st, r->ch, &r->peer) : NULL;
    if (e) {
        e->identified = true;
        if (e->known_gen != r->st->gen) {
            id_push_arm(r->st); /* it asked us before a change, or never */
        }
    }
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
        id_record(r->st, r->ch, &r->peer, status, NULL, false);
        id_req_free(r);
    }
}

static void id_on_connected(idp *st, const gn_host_event *ev)
{
    if (!ev->ch) {
        return;
    }
    id_req *r = id_req_new(st, ev->ch);
    if (!r) {
        return;
    }
    int rc = gn_channel_open_stream(ev->ch, GNI_IDENTIFY_PROTOCOL_ID, id_opened, r);
    if (rc < 0) {
        id_record(st, r->ch, &r->peer, rc, NULL, false);
        id_req_free(r);
    }
}

static void id_on_host_event(void *arg, const gn_host_event *ev)
{
    idp *st = arg;
    if (!st->running) {
        return;
    }
    switch (ev->type) {
    case GN_HOST_EV_CONNECTED:
        id_on_connected(st, ev);
        break;
    case GN_HOST_EV_DISCONNECTED: {
        id_peer *e = ev->ch ? id_peer_find(st, ev->ch) : NULL;
        if (e) {
            id_peer_drop(e);
        }
        break;
    }
    case GN_HOST_EV_LISTEN_ADDRS:
    case GN_HOST_EV_PROTOCOLS:
        st->gen++;
        id_push_arm(st);
        break;
    default:
        break;
    }
}

/* ---- answering ---- */

static void id_on_stream(gn_protocol *p, gn_stream *s, const gn_protocol_stream_info *sinfo)
{
    idp *st = p->state;
    id_self me;
    id_self_fill(st, &me);
    me.info.fin_delay = GNI_IDENTIFY_FIN_DELAY; /* js-libp2p 3.x: see identify.h */
    if (gni_identify_serve(s, &me.info, NULL, NULL) < 0) {
        gn_stream_reset(s, NULL, NULL);
        return;
    }
    /* the peer now knows the current generation: no push for it */
    id_peer *e = sinfo ? id_peer_get(st, sinfo->channel, &sinfo->remote_peer) : NULL;
    if (e) {
        e->known_gen = st->gen;
    }
}

static void id_push_result(void *arg, int status, gni_identify_result *res)
{
    id_req *r = arg;
    if (status == 0 && res) {
        id_record(r->st, r->ch, &r->peer, 0, res, true);
    } else {
        GN_LOG(GN_LOG_INFO, ID_LOG, "push from a peer failed: %s", gn_err_name(status));
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

/* Options: id.push=0|1 (default 1), id.push_delay_ms=0..60000 (default 100). */
static int id_options(idp *st)
{
    gn_host *h = st->p->host;
    st->push_on = true;
    st->push_delay = ID_PUSH_DELAY;
    const char *v = gn_host_option(h, "id", "push", 0);
    if (v) {
        if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0) {
            GN_LOG(GN_LOG_ERR, ID_LOG, "id.push=%s: want 0 or 1", v);
            return GN_EINVAL;
        }
        st->push_on = v[0] == '1';
    }
    v = gn_host_option(h, "id", "push_delay_ms", 0);
    if (v) {
        char *end;
        unsigned long ms = strtoul(v, &end, 10);
        if (*v < '0' || *v > '9' || *end || ms > 60000) {
            GN_LOG(GN_LOG_ERR, ID_LOG, "id.push_delay_ms=%s: want 0 to 60000", v);
            return GN_EINVAL;
        }
        st->push_delay = (gn_time)ms * GN_MS;
    }
    return 0;
}

static int id_start(gn_protocol *p)
{
    idp *st = p->state;
    st->p = p;
    gni_list_init(&st->peers);
    st->npeers = 0;
    st->gen = 0;
    gn_timer_init(gn_host_loop(p->host), &st->push_timer);
    int rc = id_options(st);
    if (rc < 0) {
        return rc;
    }
    rc = gn_host_set_handler_ex(p->host, GNI_IDENTIFY_PUSH_PROTOCOL_ID,
                                GN_HOST_HANDLER_LIMITED_OK, id_on_push, st);
    if (rc < 0) {
        return rc;
    }
    rc = gn_host_subscribe(p->host,
                           GN_HOST_EV_CONNECTED | GN_HOST_EV_DISCONNECTED |
                               GN_HOST_EV_LISTEN_ADDRS | GN_HOST_EV_PROTOCOLS,
                           id_on_host_event, st, &st->sub);
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
    gn_timer_stop(&st->push_timer);
    gn_host_unsubscribe(st->sub);
    st->sub = NULL;
    gn_host_remove_handler(p->host, GNI_IDENTIFY_PUSH_PROTOCOL_ID);
    /* pushes in flight end with the channels (the node closes them before
     * it frees the component) and free their entries then */
    while (!gni_list_empty(&st->peers)) {
        id_peer_drop(GNI_CONTAINER_OF(st->peers.next, id_peer, link));
    }
    gn_free(st->rec);
    gn_free(st->rec_key);
    gn_free(st->memo);
    st->memo = NULL;
    st->rec = st->rec_key = NULL;
    st->rec_len = st->rec_key_len = 0;
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
