/*
 * The `autonat` protocol component: AutoNAT v1 (/libp2p/autonat/1.0.0),
 * server and client. docs/autonat.md has the behaviour, options and the
 * decisions taken where the spec leaves room.
 *
 * Server: a DIAL is answered only over a direct (not limited) channel,
 * only when its PeerInfo id is the stream's peer (else E_BAD_REQUEST), and
 * only the addresses whose IP is the IP the requester was observed at
 * (the channel's remote address) are dialled back, never relayed ones
 * (spec "AutoNAT Protocol", RFC 3489 12.1.1). Loopback and private IPs
 * are dialled when the observed IP is itself such an address (a LAN or a
 * test on 127.0.0.1). An address on 0.0.0.0 or :: (a client listening on
 * every interface) is dialled on the observed IP. Targets are dialled one after the other over new
 * direct connections (gn_host_connect_ex NO_REUSE|DIRECT, with the
 * requester's /p2p/ id so the dial proves the same peer answers) within
 * autonat.dial_timeout_ms; the first success ends it: OK with that
 * address, the dial-back channel closed. All failed: E_DIAL_ERROR. No
 * address left after the filter, a rate limit, a request already running
 * for the peer: E_DIAL_REFUSED.
 *
 * Client: probes a few connected peers that announced the protocol (never
 * over limited channels) with our listen, announced and observed
 * addresses (no relayed ones), counts OK and E_DIAL_ERROR answers (other
 * statuses are no votes) and reports gn_host_set_reachability().
 *
 * Options (gn_host_option, component "autonat"), defaults in docs:
 *   server, client (true|false), dial_timeout_ms, max_dials_per_min,
 *   peer_dials_per_min, interval_ms, retry_interval_ms, boot_delay_ms,
 *   peers_per_probe, threshold, request_timeout_ms,
 *   test_addr (repeatable; tests only: the addresses a DIAL carries).
 *
 * Thread context: the host's loop thread.
 */
#include "golemnet/node.h"
#include "golemnet/protocol.h"
#include "golemnet/registry.h"

#include "gni.h"

#include "autonat_msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AN_LOG "autonat"
/* Peers the client tracks (connected, maybe speaking AutoNAT). */
#define AN_PEERS 64u
/* Peers the server remembers for its per-peer limits. */
#define AN_LIMIT_PEERS 128u
/* Most dials a peer may be allowed per minute (peer_dials_per_min bound). */
#define AN_PEER_RATE_MAX 16u
/* Most dial-backs the server allows per minute (max_dials_per_min bound). */
#define AN_GLOBAL_RATE_MAX 1024u
/* Inbound streams served at once; more are reset. */
#define AN_MAX_SERVED 32u
/* How long an inbound stream may take to send its DIAL. */
#define AN_READ_TIMEOUT (10 * GN_S)
/* Addresses a DIAL from us carries. */
#define AN_CLIENT_ADDRS GNI_AUTONAT_MAX_ADDRS
/* A minute: the rate limits' window. */
#define AN_MINUTE (60 * GN_S)

typedef struct an_cfg {
    bool server, client;
    bool dial_observed; /* dial the requester's channel address first (autonat.dial_observed) */
    gn_time dial_timeout, interval, retry_interval, boot_delay, request_timeout;
    uint32_t max_dials_per_min, peer_dials_per_min, peers_per_probe, threshold;
    gn_multiaddr *test_addrs[AN_CLIENT_ADDRS];
    size_t ntest_addrs;
} an_cfg;

/* A peer the client may ask: its direct channels and whether it speaks AutoNAT. */
typedef struct an_peer {
    gn_peer_id id;
    uint32_t channels;
    bool supports;
} an_peer;

/* Per-peer server limits: recent dial times, one request at a time. */
typedef struct an_limit {
    gn_peer_id id;
    gn_time times[AN_PEER_RATE_MAX];
    uint32_t ntimes;
    bool busy;
    bool used;
} an_limit;

typedef struct autonat autonat;

/* One inbound stream being served. */
typedef struct an_serve {
    gni_list link;
    autonat *an; /* NULL once detached (the component stopped) */
    int refs;    /* the stream + a pending write */
    gn_stream *s;
    bool closing;
    gn_peer_id peer;
    uint8_t obs_ip[16]; /* the requester's observed IP */
    size_t obs_ip_len;
    uint64_t obs_code; /* GN_MA_IP4 or GN_MA_IP6 */
    gn_multiaddr *obs_addr; /* the requester's address as the channel sees it, or NULL */
    gni_lp_reader rd;
    bool got_request;
    an_limit *limit; /* busy while dialling */
    gn_multiaddr *targets[GNI_AUTONAT_MAX_ADDRS];
    size_t ntargets, next;
    gn_op *op;
    gn_timer timer;
    gn_time deadline;
    int last_err;
    uint8_t out[GNI_AUTONAT_FRAME_MAX];
} an_serve;

/* One DIAL the client sent. */
typedef struct an_req {
    gni_list link;
    autonat *an; /* NULL once detached */
    int refs;
    uint64_t round;
    gn_peer_id peer;
    gn_op *op;
    gn_stream *s;
    bool closing, answered;
    gni_lp_reader rd;
    gn_timer timer;
    uint8_t out[GNI_AUTONAT_FRAME_MAX];
} an_req;

struct autonat {
    gn_protocol *p;
    gn_host *h;
    an_cfg cfg;
    bool running;
    gn_host_sub *sub;
    /* server */
    gni_list served;
    size_t nserved;
    gn_time dial_times[AN_GLOBAL_RATE_MAX]; /* ring of dial-back start times */
    size_t dial_head, ndial_times;
    an_limit limits[AN_LIMIT_PEERS];
    /* client */
    an_peer peers[AN_PEERS];
    size_t npeers;
    size_t rr; /* where the next round starts picking */
    gni_list reqs;
    gn_timer tick;
    gn_time tick_at; /* when tick fires, while armed */
    bool round_running;
    uint64_t round;
    size_t round_pending, round_asked, votes_ok, votes_err;
    gn_multiaddr *round_ok_addr;
    gn_time last_round;
};

static gn_time an_now(autonat *an) { return gn_loop_now(gn_host_loop(an->h)); }

/* ------------------------------------------------------------------------
 * Options
 */

static int opt_bool(gn_host *h, const char *key, bool def, bool *out)
{
    const char *v = gn_host_option(h, "autonat", key, 0);
    *out = def;
    if (!v) {
        return 0;
    }
    if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0) {
        *out = true;
    } else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0) {
        *out = false;
    } else {
        GN_LOG(GN_LOG_ERR, AN_LOG, "autonat.%s=%s: want true or false", key, v);
        return GN_EINVAL;
    }
    return 0;
}

static int opt_num(gn_host *h, const char *key, uint64_t def, uint64_t min, uint64_t max,
                   uint64_t *out)
{
    const char *v = gn_host_option(h, "autonat", key, 0);
    *out = def;
    if (!v) {
        return 0;
    }
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    if (*v < '0' || *v > '9' || *end || x < min || x > max) {
        GN_LOG(GN_LOG_ERR, AN_LOG, "autonat.%s=%s: want a whole number from %llu to %llu", key,
               v, (unsigned long long)min, (unsigned long long)max);
        return GN_EINVAL;
    }
    *out = x;
    return 0;
}

static int load_options(autonat *an)
{
    gn_host *h = an->h;
    an_cfg *c = &an->cfg;
    uint64_t v;
    int rc = opt_bool(h, "server", true, &c->server);
    if (rc == 0) {
        rc = opt_bool(h, "client", true, &c->client);
    }
    if (rc == 0) {
        rc = opt_bool(h, "dial_observed", true, &c->dial_observed);
    }
#define NUM(key, def, min, max, dst, mul)                                                  \
    if (rc == 0 && (rc = opt_num(h, key, def, min, max, &v)) == 0) {                       \
        dst = (mul) * v;                                                                   \
    }
    NUM("dial_timeout_ms", 15000, 100, 600000, c->dial_timeout, GN_MS)
    NUM("max_dials_per_min", 30, 1, AN_GLOBAL_RATE_MAX, c->max_dials_per_min, 1)
    NUM("peer_dials_per_min", 3, 1, AN_PEER_RATE_MAX, c->peer_dials_per_min, 1)
    NUM("interval_ms", 15ull * 60 * 1000, 100, 86400000ull, c->interval, GN_MS)
    NUM("retry_interval_ms", 60000, 100, 86400000ull, c->retry_interval, GN_MS)
    NUM("boot_delay_ms", 5000, 0, 3600000, c->boot_delay, GN_MS)
    NUM("peers_per_probe", 3, 1, 8, c->peers_per_probe, 1)
    NUM("threshold", 2, 1, 8, c->threshold, 1)
    NUM("request_timeout_ms", 30000, 100, 600000, c->request_timeout, GN_MS)
#undef NUM
    const char *s;
    for (size_t i = 0; rc == 0 && (s = gn_host_option(h, "autonat", "test_addr", i)); i++) {
        if (c->ntest_addrs == AN_CLIENT_ADDRS) {
            GN_LOG(GN_LOG_ERR, AN_LOG, "autonat.test_addr: at most %u", AN_CLIENT_ADDRS);
            rc = GN_ELIMIT;
        } else if ((rc = gn_multiaddr_parse(s, &c->test_addrs[c->ntest_addrs])) < 0) {
            GN_LOG(GN_LOG_ERR, AN_LOG, "autonat.test_addr=%s: not a multiaddr", s);
        } else {
            c->ntest_addrs++;
        }
    }
    return rc;
}

/* ------------------------------------------------------------------------
 * Address helpers
 */

static bool is_relayed(const gn_multiaddr *ma)
{
    return gn_multiaddr_find(ma, GN_MA_P2P_CIRCUIT, NULL) >= 0;
}

/* The IP of @ma's first component into @ip; its code, or 0 when it has none. */
static uint64_t first_ip(const gn_multiaddr *ma, uint8_t ip[16], size_t *len)
{
    gn_ma_component c;
    if (gn_multiaddr_component(ma, 0, &c) < 0 ||
        (c.code != GN_MA_IP4 && c.code != GN_MA_IP6) || c.value_len > 16) {
        return 0;
    }
    memcpy(ip, c.value, c.value_len);
    *len = c.value_len;
    return c.code;
}

/* @ma with /p2p/@peer appended (a trailing /p2p/ is replaced). */
static int with_peer(const gn_multiaddr *ma, const gn_peer_id *peer, gn_multiaddr **out)
{
    char s[GN_MA_MAX_STRLEN];
    char id[GN_PEER_ID_MAX_STRLEN];
    if (gn_multiaddr_to_string(ma, s, sizeof s) < 0 ||
        gn_peer_id_to_string(peer, id, sizeof id) < 0) {
        return GN_EINVAL;
    }
    char *p2p = strstr(s, "/p2p/");
    if (p2p) {
        *p2p = '\0';
    }
    size_t l = strlen(s);
    if (l + 5 + strlen(id) + 1 > sizeof s) {
        return GN_ETOOBIG;
    }
    snprintf(s + l, sizeof s - l, "/p2p/%s", id);
    return gn_multiaddr_parse(s, out);
}

/* ------------------------------------------------------------------------
 * Server
 */

static void serve_unref(an_serve *sv)
{
    if (--sv->refs > 0) {
        return;
    }
    gni_lp_reader_clear(&sv->rd);
    for (size_t i = 0; i < sv->ntargets; i++) {
        gn_multiaddr_free(sv->targets[i]);
    }
    gn_multiaddr_free(sv->obs_addr);
    gn_free(sv);
}

static void serve_closed(gn_stream *s, void *arg)
{
    (void)s;
    serve_unref(arg);
}

/* Ends @sv: limits released, stream closed (reset when @reset). */
static void serve_end(an_serve *sv, bool reset)
{
    if (sv->closing) {
        return;
    }
    sv->closing = true;
    gn_timer_stop(&sv->timer);
    if (sv->limit) {
        sv->limit->busy = false;
        sv->limit = NULL;
    }
    if (sv->an) {
        gni_list_del(&sv->link);
        sv->an->nserved--;
        sv->an = NULL;
    }
    if (reset) {
        gn_stream_reset(sv->s, serve_closed, sv);
    } else {
        gn_stream_close(sv->s, serve_closed, sv);
    }
}

static void serve_written(void *arg, int status)
{
    an_serve *sv = arg;
    serve_end(sv, status < 0);
    serve_unref(sv);
}

static void serve_answer(an_serve *sv, gni_autonat_status st, const char *text,
                         const gn_multiaddr *addr)
{
    gn_timer_stop(&sv->timer);
    if (sv->limit) {
        sv->limit->busy = false;
        sv->limit = NULL;
    }
    char ps[GN_PEER_ID_MAX_STRLEN] = "?";
    (void)gn_peer_id_to_string(&sv->peer, ps, sizeof ps);
    GN_LOG(GN_LOG_DEBUG, AN_LOG, "answer %s to %s%s%s", gni_autonat_status_name((int)st), ps,
           text ? ": " : "", text ? text : "");
    size_t len;
    if (gni_autonat_encode_response(st, text, addr, sv->out, sizeof sv->out, &len) < 0) {
        serve_end(sv, true);
        return;
    }
    gn_slice iov = gn_slice_of(sv->out, len);
    sv->refs++;
    if (gn_stream_write(sv->s, &iov, 1, serve_written, sv) < 0) {
        sv->refs--;
        serve_end(sv, true);
    }
}

static void serve_next(an_serve *sv);

static void serve_dialled(void *arg, int status, gn_channel *ch)
{
    an_serve *sv = arg;
    sv->op = NULL;
    if (!sv->an || sv->closing) { /* stopped or failed: serve_end ran */
        if (status == 0) {
            gn_channel_close(ch);
        }
        serve_unref(sv);
        return;
    }
    serve_unref(sv);
    gn_timer_stop(&sv->timer);
    if (status == 0) {
        const gn_multiaddr *addr = sv->targets[sv->next - 1];
        gn_channel_close(ch); /* the dial-back proved it; the request's channel stays */
        serve_answer(sv, GNI_AUTONAT_OK, NULL, addr);
        return;
    }
    sv->last_err = status == GN_ECANCELED ? GN_ETIMEDOUT : status; /* our timer */
    serve_next(sv);
}

static void serve_dial_timeout(gn_timer *t, void *arg)
{
    (void)t;
    an_serve *sv = arg;
    if (sv->op) {
        gn_op_cancel(sv->op); /* serve_dialled follows with GN_ECANCELED */
    }
}

/* Dials the next target, or answers E_DIAL_ERROR when none is left. */
static void serve_next(an_serve *sv)
{
    autonat *an = sv->an;
    gn_time now = an_now(an);
    while (sv->next < sv->ntargets && now < sv->deadline) {
        gn_multiaddr *a;
        const gn_multiaddr *t = sv->targets[sv->next++];
        if (with_peer(t, &sv->peer, &a) < 0) {
            continue;
        }
        size_t left = sv->ntargets - sv->next + 1;
        gn_time slot = (sv->deadline - now) / left;
        sv->refs++;
        int rc = gn_host_connect_ex(an->h, a, GN_HOST_CONNECT_NO_REUSE | GN_HOST_CONNECT_DIRECT,
                                    serve_dialled, sv, &sv->op);
        gn_multiaddr_free(a);
        if (rc < 0) {
            sv->refs--;
            sv->last_err = rc;
            continue;
        }
        (void)gn_timer_start(&sv->timer, slot, serve_dial_timeout, sv);
        return;
    }
    char text[96];
    snprintf(text, sizeof text, "dial-back failed: %s",
             now >= sv->deadline ? "timed out" : gn_err_name(sv->last_err));
    serve_answer(sv, GNI_AUTONAT_E_DIAL_ERROR, text, NULL);
}

/* Finds or makes @peer's limit entry; NULL when the table is full of recent peers. */
static an_limit *limit_get(autonat *an, const gn_peer_id *peer, gn_time now)
{
    an_limit *free_e = NULL;
    for (size_t i = 0; i < AN_LIMIT_PEERS; i++) {
        an_limit *e = &an->limits[i];
        if (e->used && gn_peer_id_equal(&e->id, peer)) {
            return e;
        }
        bool stale = !e->used || (!e->busy && (e->ntimes == 0 ||
                                               now - e->times[e->ntimes - 1] >= AN_MINUTE));
        if (stale && !free_e) {
            free_e = e;
        }
    }
    if (free_e) {
        memset(free_e, 0, sizeof *free_e);
        free_e->used = true;
        free_e->id = *peer;
    }
    return free_e;
}

/* True when the limits allow a dial-back for @sv's peer now (and records it). */
static const char *limits_take(autonat *an, an_serve *sv)
{
    gn_time now = an_now(an);
    an_limit *e = limit_get(an, &sv->peer, now);
    if (!e) {
        return "too many peers";
    }
    if (e->busy) {
        return "a request of this peer is running";
    }
    /* drop times older than a minute */
    size_t k = 0;
    for (size_t i = 0; i < e->ntimes; i++) {
        if (now - e->times[i] < AN_MINUTE) {
            e->times[k++] = e->times[i];
        }
    }
    e->ntimes = (uint32_t)k;
    if (e->ntimes >= an->cfg.peer_dials_per_min) {
        return "peer rate limit";
    }
    size_t cap = an->cfg.max_dials_per_min;
    if (an->ndial_times >= cap) {
        size_t oldest = (an->dial_head + AN_GLOBAL_RATE_MAX - an->ndial_times) % AN_GLOBAL_RATE_MAX;
        if (now - an->dial_times[oldest] < AN_MINUTE) {
            return "global rate limit";
        }
        an->ndial_times--;
    }
    an->dial_times[an->dial_head] = now;
    an->dial_head = (an->dial_head + 1) % AN_GLOBAL_RATE_MAX;
    an->ndial_times++;
    e->times[e->ntimes++] = now;
    e->busy = true;
    sv->limit = e;
    return NULL;
}

/*
 * An address on the unspecified IP of the observed family (0.0.0.0, ::: a
 * listener on every interface, as a golemnet client announces it) becomes
 * the same address on the observed IP, in place. Only the observed IP is
 * dialled either way.
 */
static void unspecified_to_observed(an_serve *sv, gn_multiaddr **a)
{
    static const uint8_t zero[16] = {0};
    uint8_t ip[16];
    size_t ipl = 0;
    if (first_ip(*a, ip, &ipl) != sv->obs_code || ipl != sv->obs_ip_len ||
        memcmp(ip, zero, ipl) != 0) {
        return;
    }
    gn_slice b = gn_multiaddr_bytes(*a);
    uint8_t buf[GN_MA_MAX_BYTES];
    if (b.len > sizeof buf || b.len < 1 + ipl) {
        return;
    }
    memcpy(buf, b.base, b.len);
    memcpy(buf + 1, sv->obs_ip, ipl); /* ip4 (0x04) and ip6 (0x29) codes are one byte */
    gn_multiaddr *r;
    if (gn_multiaddr_from_bytes(buf, b.len, &r) == 0) {
        gn_multiaddr_free(*a);
        *a = r;
    }
}

/* Keeps the DIAL's addresses that may be dialled back (see the file header).
 * The address the requester's channel comes from is tried first: behind a
 * NAT that keeps the source port (the TCP transport dials from its listen
 * port), it is the NAT's mapping of the requester's listener, an address
 * the requester cannot know itself (go-libp2p's server dials it too). */
static void serve_filter(an_serve *sv, gni_autonat_msg *m)
{
    if (sv->obs_addr && sv->an && sv->an->cfg.dial_observed &&
        sv->ntargets < GNI_AUTONAT_MAX_ADDRS) {
        sv->targets[sv->ntargets++] = sv->obs_addr;
        sv->obs_addr = NULL;
    }
    for (size_t i = 0; i < m->addr_cnt && sv->ntargets < GNI_AUTONAT_MAX_ADDRS; i++) {
        unspecified_to_observed(sv, &m->addrs[i]);
        gn_multiaddr *a = m->addrs[i];
        uint8_t ip[16];
        size_t ipl = 0;
        if (is_relayed(a) || first_ip(a, ip, &ipl) != sv->obs_code || ipl != sv->obs_ip_len ||
            memcmp(ip, sv->obs_ip, ipl) != 0) {
            continue;
        }
        bool dup = false;
        for (size_t j = 0; j < sv->ntargets && !dup; j++) {
            dup = gn_multiaddr_equal(sv->targets[j], a);
        }
        if (!dup) {
            sv->targets[sv->ntargets++] = a;
            m->addrs[i] = NULL;
        }
    }
}

static void serve_request(an_serve *sv, const uint8_t *body, size_t len)
{
    autonat *an = sv->an;
    gni_autonat_msg m;
    int rc = gni_autonat_decode(body, len, &m);
    if (rc == GN_ENOMEM) {
        serve_answer(sv, GNI_AUTONAT_E_INTERNAL_ERROR, "out of memory", NULL);
        return;
    }
    if (rc < 0 || m.type != GNI_AUTONAT_DIAL) {
        gni_autonat_msg_fini(&m);
        serve_answer(sv, GNI_AUTONAT_E_BAD_REQUEST, "malformed DIAL", NULL);
        return;
    }
    if (!m.has_peer_id || !gn_peer_id_equal(&m.peer_id, &sv->peer)) {
        gni_autonat_msg_fini(&m);
        serve_answer(sv, GNI_AUTONAT_E_BAD_REQUEST, "peer id mismatch", NULL);
        return;
    }
    serve_filter(sv, &m);
    size_t offered = m.addr_cnt;
    for (size_t i = 0; i < m.addr_cnt; i++) {
        gn_multiaddr_free(m.addrs[i]);
    }
    m.addr_cnt = 0;
    gni_autonat_msg_fini(&m);
    if (sv->ntargets == 0) {
        GN_LOG(GN_LOG_DEBUG, AN_LOG, "none of %zu addresses is on the observed IP", offered);
        serve_answer(sv, GNI_AUTONAT_E_DIAL_REFUSED, "no dialable addresses", NULL);
        return;
    }
    const char *why = limits_take(an, sv);
    if (why) {
        serve_answer(sv, GNI_AUTONAT_E_DIAL_REFUSED, why, NULL);
        return;
    }
    sv->deadline = an_now(an) + an->cfg.dial_timeout;
    sv->last_err = GN_ETIMEDOUT;
    serve_next(sv);
}

static void serve_on_data(gn_stream *s, void *ud, const uint8_t *data, size_t len)
{
    an_serve *sv = ud;
    if (sv->closing || sv->got_request) {
        return;
    }
    while (len > 0) {
        size_t used;
        const uint8_t *msg;
        size_t mlen;
        int rc = gni_lp_reader_feed(&sv->rd, data, len, &used, &msg, &mlen);
        if (rc < 0) {
            serve_answer(sv, GNI_AUTONAT_E_BAD_REQUEST, "bad frame", NULL);
            return;
        }
        data += used;
        len -= used;
        if (rc == 1) {
            sv->got_request = true;
            (void)gn_stream_read_stop(s);
            serve_request(sv, msg, mlen);
            return;
        }
    }
}

static void serve_on_end(an_serve *sv)
{
    if (!sv->got_request) {
        serve_end(sv, true);
    }
    /* after the request: the peer half-closed; the answer still goes out */
}

static void serve_on_eof(gn_stream *s, void *ud)
{
    (void)s;
    serve_on_end(ud);
}

static void serve_on_error(gn_stream *s, void *ud, int err)
{
    (void)s, (void)err;
    an_serve *sv = ud;
    if (sv->op) {
        gn_op_cancel(sv->op);
    }
    serve_end(sv, true);
}

static const gn_stream_handler serve_handler = {
    .on_data = serve_on_data,
    .on_eof = serve_on_eof,
    .on_error = serve_on_error,
};

static void serve_read_timeout(gn_timer *t, void *arg)
{
    (void)t;
    serve_end(arg, true);
}

/* The requester's observed IP from @ch's remote address; false when there is none. */
static bool observed_ip(an_serve *sv, gn_channel *ch)
{
    gn_channel_info ci;
    gn_channel_state_get(ch, &ci);
    if (ci.limited) {
        return false;
    }
    gn_multiaddr *ra;
    if (gn_multiaddr_parse(ci.remote_addr, &ra) < 0) {
        return false;
    }
    bool ok = !is_relayed(ra) && first_ip(ra, sv->obs_ip, &sv->obs_ip_len) != 0;
    if (ok) {
        sv->obs_code = sv->obs_ip_len == 4 ? GN_MA_IP4 : GN_MA_IP6;
        sv->obs_addr = ra; /* dialled first (serve_filter) */
        return true;
    }
    gn_multiaddr_free(ra);
    return ok;
}

static void an_on_stream(gn_protocol *p, gn_stream *s, const gn_protocol_stream_info *info)
{
    autonat *an = p->state;
    if (!an->running || !an->cfg.server || an->nserved >= AN_MAX_SERVED) {
        gn_stream_reset(s, NULL, NULL);
        return;
    }
    an_serve *sv = gn_calloc(1, sizeof *sv);
    if (!sv) {
        gn_stream_reset(s, NULL, NULL);
        return;
    }
    sv->an = an;
    sv->refs = 1;
    sv->s = s;
    sv->peer = info->remote_peer;
    gni_lp_reader_init(&sv->rd, GNI_AUTONAT_MAX_MSG_LEN);
    gn_timer_init(gn_host_loop(an->h), &sv->timer);
    gni_list_add_tail(&an->served, &sv->link);
    an->nserved++;
    gn_stream_set_handler(s, &serve_handler, sv);
    if (!info->channel || !observed_ip(sv, info->channel)) {
        /* spec: never over a relayed connection, whose IP cannot be checked */
        sv->got_request = true;
        serve_answer(sv, GNI_AUTONAT_E_DIAL_REFUSED, "no direct connection", NULL);
        return;
    }
    (void)gn_timer_start(&sv->timer, AN_READ_TIMEOUT, serve_read_timeout, sv);
    if (gn_stream_read_start(s) < 0) {
        serve_end(sv, true);
    }
}

/* ------------------------------------------------------------------------
 * Client
 */

static an_peer *peer_find(autonat *an, const gn_peer_id *id)
{
    for (size_t i = 0; i < an->npeers; i++) {
        if (gn_peer_id_equal(&an->peers[i].id, id)) {
            return &an->peers[i];
        }
    }
    return NULL;
}

static void tick_arm(autonat *an, gn_time delay);
static void round_end(autonat *an);

static void req_unref(an_req *r)
{
    if (--r->refs > 0) {
        return;
    }
    gni_lp_reader_clear(&r->rd);
    gn_free(r);
}

static void req_closed(gn_stream *s, void *arg)
{
    (void)s;
    req_unref(arg);
}

/* Records @r's outcome (status < 0: no vote) and ends it. */
static void req_done(an_req *r, int status, const gn_multiaddr *addr)
{
    if (r->answered) {
        return;
    }
    r->answered = true;
    gn_timer_stop(&r->timer);
    autonat *an = r->an;
    if (r->s && !r->closing) {
        r->closing = true;
        gn_stream_close(r->s, req_closed, r);
    }
    if (!an) {
        return;
    }
    r->an = NULL;
    gni_list_del(&r->link);
    char ps[GN_PEER_ID_MAX_STRLEN] = "?";
    (void)gn_peer_id_to_string(&r->peer, ps, sizeof ps);
    GN_LOG(GN_LOG_DEBUG, AN_LOG, "%s answered %s", ps,
           status >= 0 ? gni_autonat_status_name(status) : gn_err_name(status));
    if (r->round == an->round) {
        if (status == GNI_AUTONAT_OK) {
            an->votes_ok++;
            if (addr && !an->round_ok_addr) {
                (void)gn_multiaddr_dup(addr, &an->round_ok_addr);
            }
        } else if (status == GNI_AUTONAT_E_DIAL_ERROR) {
            an->votes_err++;
        }
        if (an->round_pending > 0 && --an->round_pending == 0) {
            round_end(an);
        }
    }
}

static void req_on_data(gn_stream *s, void *ud, const uint8_t *data, size_t len)
{
    (void)s;
    an_req *r = ud;
    while (len > 0 && !r->answered) {
        size_t used;
        const uint8_t *msg;
        size_t mlen;
        int rc = gni_lp_reader_feed(&r->rd, data, len, &used, &msg, &mlen);
        if (rc < 0) {
            req_done(r, rc, NULL);
            return;
        }
        data += used;
        len -= used;
        if (rc == 1) {
            gni_autonat_msg m;
            rc = gni_autonat_decode(msg, mlen, &m);
            if (rc == 0 && m.type != GNI_AUTONAT_DIAL_RESPONSE) {
                rc = GN_EPROTO;
            }
            req_done(r, rc < 0 ? rc : (int)m.status, rc == 0 ? m.addr : NULL);
            gni_autonat_msg_fini(&m);
            return;
        }
    }
}

static void req_on_eof(gn_stream *s, void *ud)
{
    (void)s;
    req_done(ud, GN_EPROTO, NULL);
}

static void req_on_error(gn_stream *s, void *ud, int err)
{
    (void)s;
    req_done(ud, err, NULL);
}

static const gn_stream_handler req_handler = {
    .on_data = req_on_data,
    .on_eof = req_on_eof,
    .on_error = req_on_error,
};

static void req_timeout(gn_timer *t, void *arg)
{
    (void)t;
    an_req *r = arg;
    if (r->op) {
        gn_op_cancel(r->op); /* req_opened follows */
        return;
    }
    req_done(r, GN_ETIMEDOUT, NULL);
}

static void req_written(void *arg, int status)
{
    an_req *r = arg;
    if (status < 0) {
        req_done(r, status, NULL);
    }
    req_unref(r);
}

/* Our addresses for a DIAL: listen, announced, observed; no relayed ones. */
static size_t our_addrs(autonat *an, const gn_multiaddr **out, size_t max)
{
    if (an->cfg.ntest_addrs) {
        size_t n = GNI_MIN(max, an->cfg.ntest_addrs);
        for (size_t i = 0; i < n; i++) {
            out[i] = an->cfg.test_addrs[i];
        }
        return n;
    }
    const gn_multiaddr *all[3 * AN_CLIENT_ADDRS];
    size_t k = gn_host_listen_addrs(an->h, all, AN_CLIENT_ADDRS);
    k += gn_host_announced_addrs(an->h, all + k, AN_CLIENT_ADDRS);
    k += gn_host_observed_addrs(an->h, all + k, AN_CLIENT_ADDRS);
    size_t n = 0;
    for (size_t i = 0; i < k && n < max; i++) {
        if (is_relayed(all[i])) {
            continue;
        }
        bool dup = false;
        for (size_t j = 0; j < n && !dup; j++) {
            dup = gn_multiaddr_equal(out[j], all[i]);
        }
        if (!dup) {
            out[n++] = all[i];
        }
    }
    return n;
}

static void req_opened(void *arg, int status, gn_channel *ch, gn_stream *s)
{
    (void)ch;
    an_req *r = arg;
    r->op = NULL;
    if (status < 0) {
        req_done(r, status, NULL);
        req_unref(r);
        return;
    }
    r->s = s;
    gn_stream_set_handler(s, &req_handler, r);
    if (!r->an || r->answered) {
        r->closing = true;
        gn_stream_reset(s, req_closed, r); /* the op's reference goes with the stream */
        return;
    }
    const gn_multiaddr *addrs[AN_CLIENT_ADDRS];
    size_t n = our_addrs(r->an, addrs, AN_CLIENT_ADDRS);
    gn_peer_id self;
    gn_host_peer_id(r->an->h, &self);
    size_t len;
    int rc = gni_autonat_encode_dial(&self, addrs, n, r->out, sizeof r->out, &len);
    if (rc == 0) {
        gn_slice iov = gn_slice_of(r->out, len);
        r->refs++;
        if ((rc = gn_stream_write(s, &iov, 1, req_written, r)) < 0) {
            r->refs--;
        }
    }
    if (rc == 0) {
        rc = gn_stream_read_start(s);
    }
    if (rc < 0) {
        req_done(r, rc, NULL);
    }
}

static void req_start(autonat *an, const gn_peer_id *peer)
{
    an_req *r = gn_calloc(1, sizeof *r);
    if (!r) {
        return;
    }
    r->an = an;
    r->refs = 1; /* the open, then the stream */
    r->round = an->round;
    r->peer = *peer;
    gni_lp_reader_init(&r->rd, GNI_AUTONAT_MAX_MSG_LEN);
    gn_timer_init(gn_host_loop(an->h), &r->timer);
    gni_list_add_tail(&an->reqs, &r->link);
    an->round_pending++;
    an->round_asked++;
    int rc = gn_host_new_stream_ex(an->h, peer, GNI_AUTONAT_PROTOCOL_ID, 0, req_opened, r, &r->op);
    if (rc < 0) {
        r->answered = true;
        gni_list_del(&r->link);
        an->round_pending--;
        an->round_asked--;
        gn_free(r);
        return;
    }
    (void)gn_timer_start(&r->timer, an->cfg.request_timeout, req_timeout, r);
}

/* The round's verdict (docs/autonat.md "Thresholds"). */
static void round_end(autonat *an)
{
    an->round_running = false;
    size_t need = GNI_MIN((size_t)an->cfg.threshold, an->round_asked);
    if (need == 0) {
        need = 1;
    }
    gn_reachability r = gn_host_reachability(an->h);
    if (an->votes_ok >= need) {
        r = GN_REACH_PUBLIC;
    } else if (an->votes_err >= need) {
        r = GN_REACH_PRIVATE;
    }
    GN_LOG(GN_LOG_INFO, AN_LOG, "round %llu: %zu asked, %zu OK, %zu E_DIAL_ERROR -> %s",
           (unsigned long long)an->round, an->round_asked, an->votes_ok, an->votes_err,
           r == GN_REACH_PUBLIC ? "public" : r == GN_REACH_PRIVATE ? "private" : "unknown");
    if (r != GN_REACH_UNKNOWN) {
        (void)gn_host_set_reachability(an->h, r,
                                       r == GN_REACH_PUBLIC ? an->round_ok_addr : NULL);
    }
    gn_multiaddr_free(an->round_ok_addr);
    an->round_ok_addr = NULL;
    tick_arm(an, gn_host_reachability(an->h) == GN_REACH_UNKNOWN ? an->cfg.retry_interval
                                                                  : an->cfg.interval);
}

static void round_start(autonat *an)
{
    an->round++;
    an->round_pending = an->round_asked = an->votes_ok = an->votes_err = 0;
    an->last_round = an_now(an);
    an->round_running = true;
    size_t picked = 0;
    for (size_t i = 0; i < an->npeers && picked < an->cfg.peers_per_probe; i++) {
        an_peer *p = &an->peers[(an->rr + i) % an->npeers];
        if (p->channels > 0 && p->supports) {
            req_start(an, &p->id);
            picked++;
        }
    }
    an->rr = an->npeers ? (an->rr + 1) % an->npeers : 0;
    if (an->round_asked == 0) {
        an->round_running = false; /* nobody to ask: an identified one comes sooner */
        GN_LOG(GN_LOG_DEBUG, AN_LOG, "no AutoNAT server connected");
        tick_arm(an, gn_host_reachability(an->h) == GN_REACH_UNKNOWN ? an->cfg.retry_interval
                                                                      : an->cfg.interval);
    }
}

static void an_tick(gn_timer *t, void *arg)
{
    (void)t;
    autonat *an = arg;
    if (an->running && !an->round_running) {
        round_start(an);
    }
}

static void tick_arm(autonat *an, gn_time delay)
{
    an->tick_at = an_now(an) + delay;
    (void)gn_timer_start(&an->tick, delay, an_tick, an);
}

/* A probe soon (boot_delay), unless one runs or comes sooner. */
static void probe_soon(autonat *an)
{
    if (!an->cfg.client || an->round_running) {
        return;
    }
    gn_time now = an_now(an);
    if (gn_timer_active(&an->tick) && an->tick_at <= now + an->cfg.boot_delay) {
        return;
    }
    tick_arm(an, an->cfg.boot_delay);
}

static void on_host_event(void *arg, const gn_host_event *ev)
{
    autonat *an = arg;
    if (!an->running || !ev->peer) {
        return;
    }
    an_peer *p = peer_find(an, ev->peer);
    switch (ev->type) {
    case GN_HOST_EV_CONNECTED:
        if (gn_channel_limited(ev->ch, NULL)) {
            return;
        }
        if (!p && an->npeers < AN_PEERS) {
            p = &an->peers[an->npeers++];
            memset(p, 0, sizeof *p);
            p->id = *ev->peer;
        }
        if (p) {
            p->channels++;
        }
        break;
    case GN_HOST_EV_DISCONNECTED:
        if (!p || gn_channel_limited(ev->ch, NULL) || p->channels == 0) {
            return;
        }
        if (--p->channels == 0) {
            *p = an->peers[--an->npeers];
        }
        break;
    case GN_HOST_EV_IDENTIFIED:
        if (p) {
            bool was = p->supports;
            p->supports = gn_host_peer_supports(an->h, ev->peer, GNI_AUTONAT_PROTOCOL_ID);
            if (p->supports && !was && gn_host_reachability(an->h) == GN_REACH_UNKNOWN) {
                probe_soon(an);
            }
        }
        break;
    default:
        break;
    }
}

/* ------------------------------------------------------------------------
 * Component
 */

static int an_init(gn_protocol *p)
{
    autonat *an = p->state;
    an->p = p;
    an->h = p->host;
    gni_list_init(&an->served);
    gni_list_init(&an->reqs);
    gn_timer_init(p->loop, &an->tick);
    return 0;
}

static void an_fini(gn_protocol *p)
{
    autonat *an = p->state;
    for (size_t i = 0; i < an->cfg.ntest_addrs; i++) {
        gn_multiaddr_free(an->cfg.test_addrs[i]);
    }
    an->cfg.ntest_addrs = 0;
    gn_multiaddr_free(an->round_ok_addr);
    an->round_ok_addr = NULL;
}

static int an_start(gn_protocol *p)
{
    autonat *an = p->state;
    int rc = load_options(an);
    if (rc < 0) {
        return rc;
    }
    if (an->cfg.client) {
        rc = gn_host_subscribe(an->h,
                               GN_HOST_EV_CONNECTED | GN_HOST_EV_DISCONNECTED |
                                   GN_HOST_EV_IDENTIFIED,
                               on_host_event, an, &an->sub);
        if (rc < 0) {
            return rc;
        }
    }
    if (!an->cfg.server) {
        /* client only: do not announce the protocol (the node registered it) */
        (void)gn_host_remove_handler(an->h, GNI_AUTONAT_PROTOCOL_ID);
    }
    an->running = true;
    return 0;
}

static void an_stop(gn_protocol *p)
{
    autonat *an = p->state;
    if (!an->running) {
        return;
    }
    an->running = false;
    gn_timer_stop(&an->tick);
    gn_host_unsubscribe(an->sub);
    an->sub = NULL;
    while (!gni_list_empty(&an->served)) {
        an_serve *sv = GNI_CONTAINER_OF(an->served.next, an_serve, link);
        if (sv->op) {
            gn_op_cancel(sv->op); /* its callback sees the detached state */
        }
        serve_end(sv, true);
    }
    an->round++; /* answers still arriving are no votes */
    while (!gni_list_empty(&an->reqs)) {
        an_req *r = GNI_CONTAINER_OF(an->reqs.next, an_req, link);
        gni_list_del(&r->link);
        r->an = NULL;
        if (r->op) {
            gn_op_cancel(r->op); /* req_opened frees it */
        } else {
            req_done(r, GN_ECANCELED, NULL);
        }
    }
}

static const gn_protocol_ops autonat_ops = {
    .abi = GN_PROTOCOL_ABI,
    .name = GNI_AUTONAT_PROTOCOL_ID,
    .flags = GN_LAYER_F_EXPLICIT_ONLY,
    .state_size = sizeof(autonat),
    .init = an_init,
    .fini = an_fini,
    .start = an_start,
    .stop = an_stop,
    .on_stream = an_on_stream,
};

int gn_protocol_autonat_register(gn_registry *reg);
int gn_protocol_autonat_register(gn_registry *reg)
{
    return gn_registry_add(reg, GN_LAYER_PROTOCOL, (const gn_layer_ops *)&autonat_ops);
}
