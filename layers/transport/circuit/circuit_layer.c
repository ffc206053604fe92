/*
 * The circuit relay v2 transport ("circuit"): connections through a
 * relay (libp2p/specs relay/circuit-v2.md).
 *
 * Dial /<relay address>/p2p/<relay>/p2p-circuit/p2p/<peer>: connect to the
 * relay (a direct connection), open /libp2p/circuit/relay/0.2.0/hop, send
 * HOP CONNECT naming the peer, and on STATUS OK the hop stream is the
 * connection (the node then secures and multiplexes it like any other).
 *
 * Listen on /<relay address>/p2p/<relay>/p2p-circuit: reserve a slot at
 * the relay (HOP RESERVE), announce the relay addresses the reservation
 * gives (gn_host_announce_addr, so identify advertises them), refresh it
 * before it expires, reserve again when the relay connection drops, and
 * answer the relay's STOP CONNECT streams: each one is an inbound
 * connection of the listener. A STOP from a relay without a listener of
 * ours is refused (PERMISSION_DENIED).
 *
 * The relay's Limit makes the connection limited (GN_QUERY_CONN_LIMIT,
 * circuit_conn.c): the node runs only protocols that accept limited
 * connections on it. Relay connections themselves are always direct: a
 * circuit is never built over another circuit.
 *
 * Thread context: the node's loop thread, like every transport.
 */
#include "circuit.h"
#include "relay_msg.h"

#include "golemnet/err.h"
#include "golemnet/log.h"
#include "golemnet/node.h"
#include "golemnet/registry.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define CIRC_LOG "circuit"

/* Time a STOP or HOP message exchange may take. */
#define CIRC_XCHG_TIMEOUT (10 * GN_S)
/* First wait before reserving again after a failure; doubles up to the max. */
#define CIRC_RETRY_MIN (1 * GN_S)
#define CIRC_RETRY_MAX (5 * 60 * GN_S)
/* A reservation is refreshed this long before it expires (or at half its
 * life when that is shorter). */
#define CIRC_REFRESH_MARGIN (2 * 60 * GN_S)
/* Bounds on a reservation's lifetime as the relay states it (seconds): a
 * refresh never comes sooner than half the minimum. */
#define CIRC_LIFE_MIN_S 30u
#define CIRC_LIFE_MAX_S (24u * 3600u)
/* STOP streams answered at once. */
#define CIRC_MAX_ACCEPTS 64u

/* ------------------------------------------------------------------------
 * One message exchange on a hop or stop stream
 */

typedef struct circ_xchg circ_xchg;
/* @status 0 with @msg (the caller clears it), or why it failed. */
typedef void (*xchg_done_fn)(circ_xchg *x, int status, gni_relay_msg *msg);

struct circ_xchg {
    gn_stream *s;
    bool stop;             /* StopMessages on this stream (else HopMessages) */
    bool reading;
    gni_lp_reader rd;
    gn_timer timer;
    xchg_done_fn done;
};

static void x_wrote(void *arg, int status)
{
    (void)status; /* a failed write shows on the stream as an error */
    gn_free(arg);
}

/* Sends @m on x->s. Errors: the encoder's or the stream's. */
static int x_send(circ_xchg *x, const gni_relay_msg *m)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = gni_relay_msg_encode(m, &buf, &len);
    if (rc < 0) {
        return rc;
    }
    gn_slice sl = {buf, len};
    rc = gn_stream_write(x->s, &sl, 1, x_wrote, buf);
    if (rc < 0) {
        gn_free(buf);
    }
    return rc;
}

static void x_finish(circ_xchg *x, int status, gni_relay_msg *msg)
{
    gn_timer_stop(&x->timer);
    if (x->reading) {
        x->reading = false;
        gn_stream_read_stop(x->s);
        gn_stream_set_handler(x->s, NULL, NULL);
    }
    gni_lp_reader_clear(&x->rd);
    x->done(x, status, msg);
}

static void x_on_data(gn_stream *s, void *ud, const uint8_t *data, size_t len)
{
    circ_xchg *x = ud;
    const uint8_t *body = NULL;
    size_t blen = 0, used = 0;
    int rc = gni_lp_reader_feed(&x->rd, data, len, &used, &body, &blen);
    if (rc == 0) {
        return;
    }
    if (rc < 0) {
        x_finish(x, rc == GN_ENOMEM ? rc : GN_EPROTO, NULL);
        return;
    }
    gni_relay_msg m;
    rc = gni_relay_msg_decode(x->stop, body, blen, &m);
    if (rc == 0 && used < len && gn_stream_unread(s, data + used, len - used) < 0) {
        gni_relay_msg_clear(&m);
        rc = GN_ENOMEM;
    }
    x_finish(x, rc, rc == 0 ? &m : NULL);
    if (rc == 0) {
        gni_relay_msg_clear(&m);
    }
}

static void x_on_eof(gn_stream *s, void *ud)
{
    (void)s;
    x_finish(ud, GN_EEOF, NULL);
}

static void x_on_error(gn_stream *s, void *ud, int err)
{
    (void)s;
    x_finish(ud, err, NULL);
}

static const gn_stream_handler x_handler = {x_on_data, x_on_eof, x_on_error, NULL};

static void x_timeout(gn_timer *t, void *arg)
{
    (void)t;
    x_finish(arg, GN_ETIMEDOUT, NULL);
}

/* Waits for one message on @s (borrowed) within @timeout; @done runs once. */
static int x_expect(circ_xchg *x, gn_loop *loop, gn_stream *s, bool stop, gn_time timeout,
                    xchg_done_fn done)
{
    x->s = s;
    x->stop = stop;
    x->done = done;
    gni_lp_reader_init(&x->rd, GNI_RELAY_MSG_MAX);
    gn_timer_init(loop, &x->timer);
    gn_stream_set_handler(s, &x_handler, x);
    int rc = gn_stream_read_start(s);
    if (rc < 0) {
        gn_stream_set_handler(s, NULL, NULL);
        return rc;
    }
    x->reading = true;
    gn_timer_start(&x->timer, timeout, x_timeout, x);
    return 0;
}

/* Stops an exchange without calling its done (the owner is going away). */
static void x_abort(circ_xchg *x)
{
    gn_timer_stop(&x->timer);
    if (x->reading) {
        x->reading = false;
        gn_stream_set_handler(x->s, NULL, NULL);
    }
    gni_lp_reader_clear(&x->rd);
}

/* ------------------------------------------------------------------------
 * Addresses
 */

/* The parts of a circuit address: what precedes /p2p-circuit (it must end
 * in /p2p/<relay>), the relay, and the target after it (if any). */
typedef struct circ_addr {
    gn_multiaddr *relay_ma;  /* /.../p2p/<relay> */
    gn_peer_id relay;
    bool has_target;
    gn_peer_id target;
} circ_addr;

static void circ_addr_free(circ_addr *a)
{
    gn_multiaddr_free(a->relay_ma);
    a->relay_ma = NULL;
}

static int circ_addr_parse(const gn_multiaddr *ma, circ_addr *out)
{
    memset(out, 0, sizeof *out);
    int idx = gn_multiaddr_find(ma, GN_MA_P2P_CIRCUIT, NULL);
    size_t cnt = gn_multiaddr_count(ma);
    gn_ma_component c;
    if (idx < 1 || gn_multiaddr_component(ma, (size_t)idx - 1, &c) < 0 || c.code != GN_MA_P2P ||
        gn_peer_id_from_bytes(c.value, c.value_len, &out->relay) < 0) {
        return GN_EINVAL; /* no relay named before /p2p-circuit */
    }
    if ((size_t)idx + 1 < cnt) {
        gn_ma_component t;
        if ((size_t)idx + 2 != cnt || gn_multiaddr_component(ma, (size_t)idx + 1, &t) < 0 ||
            t.code != GN_MA_P2P || gn_peer_id_from_bytes(t.value, t.value_len, &out->target) < 0) {
            return GN_EINVAL; /* only /p2p/<peer> may follow /p2p-circuit */
        }
        out->has_target = true;
    }
    /* relay_ma: the first idx components */
    gn_multiaddr *rest = NULL;
    gn_multiaddr *cur = NULL;
    int rc = gn_multiaddr_dup(ma, &cur);
    while (rc == 0 && gn_multiaddr_count(cur) > (size_t)idx) {
        size_t n = gn_multiaddr_count(cur);
        gn_ma_component last;
        rc = gn_multiaddr_component(cur, n - 1, &last);
        if (rc == 0) {
            rc = gn_multiaddr_decapsulate_code(cur, last.code, &rest);
        }
        gn_multiaddr_free(cur);
        cur = rest;
        rest = NULL;
    }
    if (rc < 0) {
        gn_multiaddr_free(cur);
        return rc == GN_ENOMEM ? rc : GN_EINVAL;
    }
    out->relay_ma = cur;
    return 0;
}

/* /p2p/<id> as a multiaddr. */
static int ma_p2p(const gn_peer_id *id, gn_multiaddr **out)
{
    char text[GN_PEER_ID_MAX_STRLEN + 8];
    char pid[GN_PEER_ID_MAX_STRLEN];
    if (gn_peer_id_to_string(id, pid, sizeof pid) < 0) {
        return GN_EINVAL;
    }
    snprintf(text, sizeof text, "/p2p/%s", pid);
    return gn_multiaddr_parse(text, out);
}

/* /p2p/<relay>/p2p-circuit[/p2p/<peer>]: how either side names a circuit
 * (no relay IP, so the node never counts relayed peers by the relay's IP). */
static int ma_circuit(const gn_peer_id *relay, const gn_peer_id *peer, gn_multiaddr **out)
{
    char text[2 * GN_PEER_ID_MAX_STRLEN + 32];
    char r[GN_PEER_ID_MAX_STRLEN], p[GN_PEER_ID_MAX_STRLEN] = "";
    if (gn_peer_id_to_string(relay, r, sizeof r) < 0 ||
        (peer && gn_peer_id_to_string(peer, p, sizeof p) < 0)) {
        return GN_EINVAL;
    }
    snprintf(text, sizeof text, "/p2p/%s/p2p-circuit%s%s", r, peer ? "/p2p/" : "", p);
    return gn_multiaddr_parse(text, out);
}

static bool msg_limit(const gni_relay_msg *m, gn_conn_limit *out)
{
    if (!m->has_limit || (m->limit_duration == 0 && m->limit_data == 0)) {
        return false;
    }
    out->duration = (gn_time)m->limit_duration * GN_S;
    out->data = m->limit_data;
    return true;
}

static const char *peer_str(const gn_peer_id *id, char *buf, size_t len)
{
    if (gn_peer_id_to_string(id, buf, len) < 0) {
        snprintf(buf, len, "?");
    }
    return buf;
}


/* 1 with *@id when the last component of @ma is /p2p/<id>, else 0. */
static int ma_last_p2p(const gn_multiaddr *ma, gn_peer_id *id)
{
    size_t cnt = gn_multiaddr_count(ma);
    gn_ma_component c;
    if (cnt == 0 || gn_multiaddr_component(ma, cnt - 1, &c) < 0 || c.code != GN_MA_P2P ||
        gn_peer_id_from_bytes(c.value, c.value_len, id) < 0) {
        return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------------
 * Listeners: reservations
 */

typedef enum rsv_phase {
    RSV_IDLE = 0,   /* waiting for the retry timer */
    RSV_CONNECT,    /* connecting to the relay */
    RSV_OPEN,       /* opening the hop stream */
    RSV_WAIT,       /* RESERVE sent, waiting for STATUS */
    RSV_OK          /* reserved; the refresh timer runs */
} rsv_phase;

typedef struct circ_listener {
    gn_listener base;
    gni_list link;           /* st->listeners */
    circ_state *st;
    gn_multiaddr *addr;      /* as listened on: /.../p2p/<relay>/p2p-circuit */
    circ_addr ca;
    rsv_phase phase;
    gn_op *op;               /* the connect or stream open running */
    gn_stream *hop;          /* while RSV_WAIT */
    circ_xchg x;
    gn_timer timer;          /* retry or refresh */
    gn_time backoff;
    uint64_t expire;         /* unix seconds */
    gn_multiaddr *ann[GNI_RELAY_MAX_ADDRS]; /* announced relay addresses */
    size_t nann;
    gn_host_sub *sub;
    bool protected_relay;
    bool closing;
    bool close_deferred;
    uint32_t pending;        /* host callbacks and stream closes outstanding */
    gn_listener_close_cb close_cb;
    void *close_arg;
} circ_listener;

static void l_reserve(circ_listener *l);

static void l_maybe_free(circ_listener *l)
{
    if (!l->closing || l->pending > 0 || l->close_deferred) {
        return;
    }
    gn_listener_close_cb cb = l->close_cb;
    void *arg = l->close_arg;
    gni_list_del(&l->link);
    circ_addr_free(&l->ca);
    gn_multiaddr_free(l->addr);
    if (cb) {
        cb(&l->base, arg);
    }
    gn_free(l);
}

static void l_withdraw(circ_listener *l)
{
    gn_host *h = l->st->t->host;
    for (size_t i = 0; i < l->nann; i++) {
        gn_host_announce_addr(h, l->ann[i], false);
        gn_multiaddr_free(l->ann[i]);
    }
    l->nann = 0;
}

static void l_timer(gn_timer *t, void *arg)
{
    (void)t;
    circ_listener *l = arg;
    if (!l->closing) {
        l_reserve(l);
    }
}

static void l_retry(circ_listener *l, int why)
{
    char rid[GN_PEER_ID_MAX_STRLEN];
    l_withdraw(l); /* a failed refresh: the reservation is as good as gone */
    l->phase = RSV_IDLE;
    l->backoff = l->backoff ? l->backoff * 2 : CIRC_RETRY_MIN;
    if (l->backoff > CIRC_RETRY_MAX) {
        l->backoff = CIRC_RETRY_MAX;
    }
    GN_LOG(GN_LOG_WARNING, CIRC_LOG, "reservation at relay %s failed: %s; again in %" PRIu64 " ms",
           peer_str(&l->ca.relay, rid, sizeof rid), gn_err_name(why), l->backoff / GN_MS);
    gn_timer_start(&l->timer, l->backoff, l_timer, l);
}

static void l_hop_closed(gn_stream *s, void *arg)
{
    (void)s;
    circ_listener *l = arg;
    l->pending--;
    l_maybe_free(l);
}

static void l_close_hop(circ_listener *l, bool reset)
{
    if (!l->hop) {
        return;
    }
    gn_stream *s = l->hop;
    l->hop = NULL;
    l->pending++;
    if (reset) {
        gn_stream_reset(s, l_hop_closed, l);
    } else {
        gn_stream_close(s, l_hop_closed, l);
    }
}

/* Announces each reservation address + /p2p-circuit. */
static void l_announce(circ_listener *l, const gni_relay_msg *m)
{
    gn_host *h = l->st->t->host;
    l_withdraw(l);
    for (size_t i = 0; i < m->nrsv_addrs && l->nann < GNI_RELAY_MAX_ADDRS; i++) {
        const gn_multiaddr *ra = m->rsv_addrs[i];
        gn_multiaddr *p2p = NULL, *with = NULL, *tail = NULL, *circ = NULL;
        gn_peer_id in_addr;
        int rc;
        if (gn_multiaddr_find(ra, GN_MA_P2P_CIRCUIT, NULL) >= 0) {
            continue;
        }
        if (ma_last_p2p(ra, &in_addr)) {
            if (!gn_peer_id_equal(&in_addr, &l->ca.relay)) {
                continue; /* names another peer */
            }
            rc = gn_multiaddr_dup(ra, &with);
        } else {
            rc = ma_p2p(&l->ca.relay, &p2p);
            if (rc == 0) {
                rc = gn_multiaddr_encapsulate(ra, p2p, &with);
            }
        }
        if (rc == 0) {
            rc = gn_multiaddr_parse("/p2p-circuit", &tail);
        }
        if (rc == 0) {
            rc = gn_multiaddr_encapsulate(with, tail, &circ);
        }
        if (rc == 0 && gn_host_announce_addr(h, circ, true) == 0) {
            l->ann[l->nann++] = circ;
            circ = NULL;
        }
        gn_multiaddr_free(p2p);
        gn_multiaddr_free(with);
        gn_multiaddr_free(tail);
        gn_multiaddr_free(circ);
    }
}

/* The relay's answer to RESERVE. */
static void l_reserved(circ_xchg *x, int status, gni_relay_msg *m)
{
    circ_listener *l = GNI_CONTAINER_OF(x, circ_listener, x);
    gn_host *h = l->st->t->host;
    char rid[GN_PEER_ID_MAX_STRLEN];
    peer_str(&l->ca.relay, rid, sizeof rid);
    l->pending--; /* the exchange */
    if (status == 0 && (m->type != GNI_RELAY_HOP_STATUS || m->status != GNI_RELAY_OK)) {
        GN_LOG(GN_LOG_WARNING, CIRC_LOG, "relay %s refused the reservation: %s", rid,
               gni_relay_status_name(m->status));
        status = m->type == GNI_RELAY_HOP_STATUS ? gni_relay_status_err(m->status) : GN_EPROTO;
        if (status == 0) {
            status = GN_EPROTO;
        }
    } else if (status == 0 && !m->has_reservation) {
        GN_LOG(GN_LOG_WARNING, CIRC_LOG, "relay %s answered OK without a reservation", rid);
        status = GN_EPROTO;
    }
    if (status == 0 && m->voucher) {
        gn_peer_id who, self;
        uint64_t exp = 0;
        gn_host_peer_id(h, &self);
        int vrc = gni_relay_voucher_open(m->voucher, m->voucher_len, &l->ca.relay, &who, &exp);
        if (vrc == 0 && !gn_peer_id_equal(&who, &self)) {
            vrc = GN_EPEERID;
        }
        if (vrc < 0) {
            GN_LOG(GN_LOG_WARNING, CIRC_LOG,
                   "relay %s: the reservation voucher does not verify: %s", rid, gn_err_name(vrc));
            status = vrc;
        }
    }
    l_close_hop(l, status < 0);
    if (l->closing) {
        l_maybe_free(l);
        return;
    }
    if (status < 0) {
        l_retry(l, status);
        return;
    }
    l_announce(l, m);
    l->phase = RSV_OK;
    l->backoff = 0;
    l->expire = m->rsv_expire;
    if (!l->protected_relay) {
        gn_host_protect_peer(h, &l->ca.relay, true);
        l->protected_relay = true;
    }
    /* the relay's clock and word are not trusted: a lifetime out of
     * [CIRC_LIFE_MIN, CIRC_LIFE_MAX] is taken as the nearest bound */
    uint64_t now = (uint64_t)time(NULL);
    uint64_t secs = l->expire > now ? l->expire - now : 0;
    if (secs < CIRC_LIFE_MIN_S) {
        secs = CIRC_LIFE_MIN_S;
    } else if (secs > CIRC_LIFE_MAX_S) {
        secs = CIRC_LIFE_MAX_S;
    }
    gn_time life = (gn_time)secs * GN_S;
    gn_time wait = life > 2 * CIRC_REFRESH_MARGIN ? life - CIRC_REFRESH_MARGIN : life / 2;
    GN_LOG(GN_LOG_INFO, CIRC_LOG,
           "reserved at relay %s: %zu address(es) announced, expires in %" PRIu64 " s%s", rid,
           l->nann, life / GN_S, m->has_limit ? ", circuits limited" : "");
    gn_timer_start(&l->timer, wait, l_timer, l);
}

static void l_hop_opened(void *arg, int status, gn_channel *ch, gn_stream *s)
{
    (void)ch;
    circ_listener *l = arg;
    l->op = NULL;
    l->pending--;
    if (status == 0 && l->closing) {
        gn_stream_reset(s, NULL, NULL);
        status = GN_ECANCELED;
    }
    if (status < 0) {
        if (l->closing) {
            l_maybe_free(l);
        } else {
            l_retry(l, status);
        }
        return;
    }
    l->hop = s;
    l->phase = RSV_WAIT;
    gni_relay_msg m;
    memset(&m, 0, sizeof m);
    m.type = GNI_RELAY_HOP_RESERVE;
    int rc = x_expect(&l->x, l->st->t->loop, s, false, CIRC_XCHG_TIMEOUT, l_reserved);
    if (rc == 0 && (rc = x_send(&l->x, &m)) < 0) {
        x_abort(&l->x);
    }
    if (rc < 0) {
        l_close_hop(l, true);
        l_retry(l, rc);
        return;
    }
    l->pending++; /* the exchange */
}

static void l_connected(void *arg, int status, gn_channel *ch)
{
    (void)ch;
    circ_listener *l = arg;
    l->op = NULL;
    l->pending--;
    if (l->closing) {
        l_maybe_free(l);
        return;
    }
    if (status < 0) {
        l_retry(l, status);
        return;
    }
    l->phase = RSV_OPEN;
    l->pending++;
    int rc = gn_host_new_stream_ex(l->st->t->host, &l->ca.relay, GNI_RELAY_HOP_ID, 0,
                                   l_hop_opened, l, &l->op);
    if (rc < 0) {
        l->pending--;
        l_retry(l, rc);
    }
}

static void l_reserve(circ_listener *l)
{
    l->phase = RSV_CONNECT;
    l->pending++;
    int rc = gn_host_connect_ex(l->st->t->host, l->ca.relay_ma, GN_HOST_CONNECT_DIRECT,
                                l_connected, l, &l->op);
    if (rc < 0) {
        l->pending--;
        l_retry(l, rc);
    }
}

/* The relay connection closed: the reservation went with it. */
static void l_on_event(void *arg, const gn_host_event *ev)
{
    circ_listener *l = arg;
    if (l->closing || ev->type != GN_HOST_EV_DISCONNECTED || !ev->peer ||
        !gn_peer_id_equal(ev->peer, &l->ca.relay) || l->phase != RSV_OK) {
        return;
    }
    char rid[GN_PEER_ID_MAX_STRLEN];
    GN_LOG(GN_LOG_INFO, CIRC_LOG, "relay %s disconnected: reserving again",
           peer_str(&l->ca.relay, rid, sizeof rid));
    gn_timer_stop(&l->timer);
    l_withdraw(l);
    l->phase = RSV_IDLE;
    l->backoff = 0;
    gn_timer_start(&l->timer, CIRC_RETRY_MIN, l_timer, l);
}

static circ_listener *find_listener(circ_state *st, const gn_peer_id *relay)
{
    circ_listener *any = NULL;
    for (gni_list *e = st->listeners.next; e != &st->listeners; e = e->next) {
        circ_listener *l = GNI_CONTAINER_OF(e, circ_listener, link);
        if (!l->closing && gn_peer_id_equal(&l->ca.relay, relay)) {
            if (l->phase == RSV_OK) {
                return l;
            }
            any = any ? any : l;
        }
    }
    return any;
}

/* ------------------------------------------------------------------------
 * STOP: a relay brings a connection
 */

typedef struct circ_accept {
    gni_list link;         /* st->accepts */
    circ_state *st;
    gn_stream *s;
    gn_peer_id relay;
    circ_xchg x;
} circ_accept;

static void acc_free(circ_accept *a)
{
    gni_list_del(&a->link);
    gn_free(a);
}

static void acc_refuse(circ_accept *a, int status)
{
    gni_relay_msg m;
    memset(&m, 0, sizeof m);
    m.stop = true;
    m.type = GNI_RELAY_STOP_STATUS;
    m.status = status;
    if (x_send(&a->x, &m) == 0) {
        gn_stream_close(a->s, NULL, NULL); /* the answer goes out first */
    } else {
        gn_stream_reset(a->s, NULL, NULL);
    }
}

static void acc_got(circ_xchg *x, int status, gni_relay_msg *m)
{
    circ_accept *a = GNI_CONTAINER_OF(x, circ_accept, x);
    circ_state *st = a->st;
    char rid[GN_PEER_ID_MAX_STRLEN];
    peer_str(&a->relay, rid, sizeof rid);
    if (status < 0) {
        GN_LOG(GN_LOG_INFO, CIRC_LOG, "STOP from relay %s failed: %s", rid, gn_err_name(status));
        gn_stream_reset(a->s, NULL, NULL);
        acc_free(a);
        return;
    }
    if (m->type != GNI_RELAY_STOP_CONNECT || !m->has_peer) {
        GN_LOG(GN_LOG_INFO, CIRC_LOG, "STOP from relay %s: %s", rid,
               m->type != GNI_RELAY_STOP_CONNECT ? "not a CONNECT" : "CONNECT without a peer");
        acc_refuse(a, m->type != GNI_RELAY_STOP_CONNECT ? GNI_RELAY_UNEXPECTED_MESSAGE
                                                         : GNI_RELAY_MALFORMED_MESSAGE);
        acc_free(a);
        return;
    }
    circ_listener *l = find_listener(st, &a->relay);
    if (!l) {
        GN_LOG(GN_LOG_INFO, CIRC_LOG, "STOP from relay %s: no reservation there any more", rid);
        acc_refuse(a, GNI_RELAY_PERMISSION_DENIED);
        acc_free(a);
        return;
    }
    gn_conn_limit lim;
    bool limited = msg_limit(m, &lim);
    gn_multiaddr *local = NULL, *remote = NULL;
    gn_stream *conn = NULL;
    int rc = ma_circuit(&a->relay, NULL, &local);
    if (rc == 0) {
        rc = ma_circuit(&a->relay, &m->peer, &remote);
    }
    gni_relay_msg ok;
    memset(&ok, 0, sizeof ok);
    ok.stop = true;
    ok.type = GNI_RELAY_STOP_STATUS;
    ok.status = GNI_RELAY_OK;
    if (rc == 0) {
        rc = x_send(&a->x, &ok);
    }
    if (rc == 0) {
        rc = gni_circ_conn_new(st, a->s, local, remote, limited ? &lim : NULL, &conn);
    }
    gn_multiaddr_free(local);
    gn_multiaddr_free(remote);
    if (rc < 0) {
        gn_stream_reset(a->s, NULL, NULL);
        acc_free(a);
        return;
    }
    char pid[GN_PEER_ID_MAX_STRLEN];
    GN_LOG(GN_LOG_DEBUG, CIRC_LOG, "relayed connection from %s through %s",
           peer_str(&m->peer, pid, sizeof pid), rid);
    acc_free(a);
    l->base.accept_cb(l->base.accept_arg, &l->base, 0, conn);
}

static void on_stop(void *arg, gn_channel *ch, gn_stream *s, const char *protocol_id)
{
    (void)protocol_id;
    circ_state *st = arg;
    gn_channel_info info;
    size_t n = 0;
    for (gni_list *e = st->accepts.next; e != &st->accepts; e = e->next) {
        n++;
    }
    gn_channel_state_get(ch, &info);
    if (n >= CIRC_MAX_ACCEPTS || gn_channel_limited(ch, NULL)) {
        gn_stream_reset(s, NULL, NULL); /* too many at once, or a relay over a relay */
        return;
    }
    circ_accept *a = gn_calloc(1, sizeof *a);
    if (!a) {
        gn_stream_reset(s, NULL, NULL);
        return;
    }
    a->st = st;
    a->s = s;
    a->relay = info.remote_peer;
    gni_list_add_tail(&st->accepts, &a->link);
    if (x_expect(&a->x, st->t->loop, s, true, CIRC_XCHG_TIMEOUT, acc_got) < 0) {
        gn_stream_reset(s, NULL, NULL);
        acc_free(a);
    }
}

/* ------------------------------------------------------------------------
 * Dials
 */

typedef enum dial_phase { D_CONNECT = 0, D_OPEN, D_WAIT, D_DONE } dial_phase;

typedef struct circ_dial {
    gn_op op;                /* given to the node */
    gni_list link;           /* st->dials */
    circ_state *st;
    circ_addr ca;
    dial_phase phase;
    gn_op *sub;              /* the host connect or stream open running */
    gn_stream *hop;          /* while D_WAIT */
    circ_xchg x;
    bool xchg_running;
    gn_timer timer;          /* the dial timeout */
    gn_dial_cb cb;
    void *arg;
    bool delivered;
    uint32_t pending;        /* host callbacks outstanding + the deferred delivery */
    int result;
    gn_stream *conn;
} circ_dial;

static void d_maybe_free(circ_dial *d)
{
    if (d->pending > 0 || !d->delivered) {
        return;
    }
    gni_list_del(&d->link);
    circ_addr_free(&d->ca);
    gn_free(d);
}

static void d_deliver_deferred(gn_loop *loop, void *arg)
{
    (void)loop;
    circ_dial *d = arg;
    gn_stream *conn = d->conn;
    d->conn = NULL;
    d->pending--;
    d->cb(d->arg, d->result, conn);
    d_maybe_free(d);
}

/* Ends the dial with @status (and @conn on 0); the callback runs from the loop. */
static void d_finish(circ_dial *d, int status, gn_stream *conn)
{
    if (d->delivered) {
        if (conn) {
            gn_stream_close(conn, NULL, NULL);
        }
        if (status == GN_ECANCELED && d->conn) {
            /* cancelled after the connection was queued for the callback:
             * released at once, as a cancel promises */
            gn_stream_close(d->conn, NULL, NULL);
            d->conn = NULL;
            d->result = GN_ECANCELED;
        }
        return;
    }
    d->delivered = true;
    d->result = status;
    d->conn = conn;
    gn_timer_stop(&d->timer);
    if (d->xchg_running) {
        d->xchg_running = false;
        x_abort(&d->x);
    }
    if (d->hop) {
        gn_stream_reset(d->hop, NULL, NULL);
        d->hop = NULL;
    }
    if (d->sub) {
        gn_op *q = d->sub;
        d->sub = NULL;
        gn_op_cancel(q); /* its callback follows with GN_ECANCELED */
    }
    d->pending++;
    if (gn_loop_defer(d->st->t->loop, d_deliver_deferred, d) < 0) {
        d->pending--;
        d->conn = NULL;
        d->cb(d->arg, status, conn); /* no memory to defer: the one exception */
        d_maybe_free(d);
    }
}

static void d_answer(circ_xchg *x, int status, gni_relay_msg *m)
{
    circ_dial *d = GNI_CONTAINER_OF(x, circ_dial, x);
    d->xchg_running = false;
    char tid[GN_PEER_ID_MAX_STRLEN], rid[GN_PEER_ID_MAX_STRLEN];
    peer_str(&d->ca.target, tid, sizeof tid);
    peer_str(&d->ca.relay, rid, sizeof rid);
    if (status == 0 && m->type != GNI_RELAY_HOP_STATUS) {
        status = GN_EPROTO;
    } else if (status == 0 && m->status != GNI_RELAY_OK) {
        GN_LOG(GN_LOG_WARNING, CIRC_LOG, "relay %s refused the circuit to %s: %s", rid, tid,
               gni_relay_status_name(m->status));
        status = gni_relay_status_err(m->status);
        if (status == 0) {
            status = GN_EPROTO;
        }
    }
    if (status < 0) {
        d_finish(d, status, NULL);
        return;
    }
    gn_conn_limit lim;
    bool limited = msg_limit(m, &lim);
    gn_multiaddr *local = NULL, *remote = NULL;
    gn_stream *conn = NULL;
    int rc = ma_circuit(&d->ca.relay, NULL, &local);
    if (rc == 0) {
        rc = ma_circuit(&d->ca.relay, &d->ca.target, &remote);
    }
    if (rc == 0) {
        rc = gni_circ_conn_new(d->st, d->hop, local, remote, limited ? &lim : NULL, &conn);
    }
    gn_multiaddr_free(local);
    gn_multiaddr_free(remote);
    if (rc < 0) {
        d_finish(d, rc, NULL);
        return;
    }
    d->hop = NULL; /* the connection owns it */
    d_finish(d, 0, conn);
}

static void d_opened(void *arg, int status, gn_channel *ch, gn_stream *s)
{
    (void)ch;
    circ_dial *d = arg;
    d->sub = NULL;
    d->pending--;
    if (d->delivered) {
        if (status == 0) {
            gn_stream_reset(s, NULL, NULL);
        }
        d_maybe_free(d);
        return;
    }
    if (status < 0) {
        d_finish(d, status == GN_ENEGOTIATION ? GN_ENOTSUP : status, NULL);
        return;
    }
    d->hop = s;
    d->phase = D_WAIT;
    gni_relay_msg m;
    memset(&m, 0, sizeof m);
    m.type = GNI_RELAY_HOP_CONNECT;
    m.has_peer = true;
    m.peer = d->ca.target;
    int rc = x_expect(&d->x, d->st->t->loop, s, false, CIRC_XCHG_TIMEOUT, d_answer);
    if (rc == 0 && (rc = x_send(&d->x, &m)) < 0) {
        x_abort(&d->x);
    }
    if (rc < 0) {
        d_finish(d, rc, NULL);
        return;
    }
    d->xchg_running = true;
}

static void d_connected(void *arg, int status, gn_channel *ch)
{
    (void)ch;
    circ_dial *d = arg;
    d->sub = NULL;
    d->pending--;
    if (d->delivered) {
        d_maybe_free(d);
        return;
    }
    if (status < 0) {
        d_finish(d, status, NULL);
        return;
    }
    d->phase = D_OPEN;
    d->pending++;
    int rc = gn_host_new_stream_ex(d->st->t->host, &d->ca.relay, GNI_RELAY_HOP_ID, 0, d_opened,
                                   d, &d->sub);
    if (rc < 0) {
        d->pending--;
        d_finish(d, rc, NULL);
    }
}

static void d_timeout(gn_timer *t, void *arg)
{
    (void)t;
    d_finish(arg, GN_ETIMEDOUT, NULL);
}

static void d_cancel(gn_op *op)
{
    circ_dial *d = GNI_CONTAINER_OF(op, circ_dial, op);
    d_finish(d, GN_ECANCELED, NULL);
}

/* ------------------------------------------------------------------------
 * The transport
 */

static int circ_init(gn_transport *t)
{
    circ_state *st = t->state;
    st->t = t;
    gni_list_init(&st->listeners);
    gni_list_init(&st->dials);
    gni_list_init(&st->accepts);
    return 0;
}

static void circ_fini(gn_transport *t)
{
    circ_state *st = t->state;
    if (st->stop_registered && t->host) {
        gn_host_remove_handler(t->host, GNI_RELAY_STOP_ID);
        st->stop_registered = false;
    }
    while (!gni_list_empty(&st->accepts)) {
        circ_accept *a = GNI_CONTAINER_OF(st->accepts.next, circ_accept, link);
        x_abort(&a->x);
        gn_stream_reset(a->s, NULL, NULL);
        acc_free(a);
    }
}

static bool circ_handles(const gn_transport *t, const gn_multiaddr *ma)
{
    (void)t;
    circ_addr ca;
    if (!ma || circ_addr_parse(ma, &ca) < 0) {
        return false;
    }
    circ_addr_free(&ca);
    return true;
}

static int circ_listen(gn_transport *t, const gn_multiaddr *ma, gn_accept_cb cb, void *arg,
                       gn_listener **out)
{
    circ_state *st = t->state;
    if (!t->host) {
        return GN_ENOTSUP; /* a relay transport needs a node */
    }
    circ_listener *l = gn_calloc(1, sizeof *l);
    if (!l) {
        return GN_ENOMEM;
    }
    int rc = circ_addr_parse(ma, &l->ca);
    if (rc == 0 && l->ca.has_target) {
        rc = GN_EINVAL; /* listen on /.../p2p/<relay>/p2p-circuit, without a peer after it */
    }
    gn_peer_id self;
    gn_host_peer_id(t->host, &self);
    if (rc == 0 && gn_peer_id_equal(&self, &l->ca.relay)) {
        rc = GN_EINVAL; /* a reservation at ourselves */
    }
    circ_listener *other = rc == 0 ? find_listener(st, &l->ca.relay) : NULL;
    if (other) {
        char rid[GN_PEER_ID_MAX_STRLEN];
        GN_LOG(GN_LOG_WARNING, CIRC_LOG, "already listening through relay %s",
               peer_str(&l->ca.relay, rid, sizeof rid));
        rc = GN_EADDRINUSE; /* one reservation per relay: its addresses, its protection */
    }
    if (rc == 0) {
        rc = gn_multiaddr_dup(ma, &l->addr);
    }
    if (rc == 0 && !st->stop_registered) {
        rc = gn_host_set_handler_ex(t->host, GNI_RELAY_STOP_ID, 0, on_stop, st);
        st->stop_registered = rc == 0;
    }
    if (rc == 0) {
        rc = gn_host_subscribe(t->host, GN_HOST_EV_DISCONNECTED, l_on_event, l, &l->sub);
    }
    if (rc < 0) {
        circ_addr_free(&l->ca);
        gn_multiaddr_free(l->addr);
        gn_free(l);
        return rc;
    }
    l->base.transport = t;
    l->base.accept_cb = cb;
    l->base.accept_arg = arg;
    l->st = st;
    gn_timer_init(t->loop, &l->timer);
    gni_list_add_tail(&st->listeners, &l->link);
    /* reserve from the loop: the node finishes its listen first */
    gn_timer_start(&l->timer, 0, l_timer, l);
    *out = &l->base;
    return 0;
}

static int circ_listener_addr(gn_listener *gl, gn_multiaddr **out)
{
    circ_listener *l = (circ_listener *)gl;
    return gn_multiaddr_dup(l->addr, out);
}

static void l_close_deferred(gn_loop *loop, void *arg)
{
    (void)loop;
    circ_listener *l = arg;
    l->close_deferred = false;
    l_maybe_free(l);
}

static void circ_listener_close(gn_listener *gl, gn_listener_close_cb cb, void *arg)
{
    circ_listener *l = (circ_listener *)gl;
    gn_host *h = l->st->t->host;
    l->closing = true;
    l->close_cb = cb;
    l->close_arg = arg;
    gn_timer_stop(&l->timer);
    gn_host_unsubscribe(l->sub);
    l->sub = NULL;
    l_withdraw(l);
    if (l->protected_relay) {
        gn_host_protect_peer(h, &l->ca.relay, false);
        l->protected_relay = false;
    }
    if (l->hop) {
        x_abort(&l->x);
        l->pending--; /* the exchange ends here */
        l_close_hop(l, true);
    }
    if (l->op) {
        gn_op *q = l->op;
        l->op = NULL;
        gn_op_cancel(q); /* its callback follows and ends the wait */
    }
    l->close_deferred = true; /* never from inside this call */
    if (gn_loop_defer(l->st->t->loop, l_close_deferred, l) < 0) {
        l->close_deferred = false;
    }
}

static int circ_dial_op(gn_transport *t, const gn_multiaddr *ma, gn_dial_cb cb, void *arg,
                        gn_op **op)
{
    circ_state *st = t->state;
    if (!t->host) {
        return GN_ENOTSUP;
    }
    circ_dial *d = gn_calloc(1, sizeof *d);
    if (!d) {
        return GN_ENOMEM;
    }
    int rc = circ_addr_parse(ma, &d->ca);
    if (rc == 0 && !d->ca.has_target) {
        rc = GN_EINVAL; /* no /p2p/<peer> after /p2p-circuit */
    }
    gn_peer_id self;
    gn_host_peer_id(t->host, &self);
    if (rc == 0 && (gn_peer_id_equal(&self, &d->ca.relay) ||
                    gn_peer_id_equal(&d->ca.relay, &d->ca.target))) {
        rc = GN_EINVAL; /* through ourselves, or a relay to itself */
    }
    if (rc < 0) {
        circ_addr_free(&d->ca);
        gn_free(d);
        return rc;
    }
    d->op.cancel = d_cancel;
    d->st = st;
    d->cb = cb;
    d->arg = arg;
    gn_timer_init(t->loop, &d->timer);
    gni_list_add_tail(&st->dials, &d->link);
    d->pending++;
    rc = gn_host_connect_ex(t->host, d->ca.relay_ma, GN_HOST_CONNECT_DIRECT, d_connected, d,
                            &d->sub);
    if (rc < 0) {
        d->pending--;
        gni_list_del(&d->link);
        circ_addr_free(&d->ca);
        gn_free(d);
        return rc;
    }
    if (t->config.dial_timeout > 0) {
        gn_timer_start(&d->timer, t->config.dial_timeout, d_timeout, d);
    }
    *op = &d->op;
    return 0;
}

static const gn_transport_ops circ_transport_ops = {
    .abi = GN_TRANSPORT_ABI,
    .name = "circuit", /* the stack entry; its addresses say /p2p-circuit */
    .state_size = sizeof(circ_state),
    .flags = 0,
    .caps = GN_TRANSPORT_CAP_RELIABLE,
    .test_listen_addr = NULL, /* needs a relay */
    .init = circ_init,
    .fini = circ_fini,
    .handles = circ_handles,
    .listen = circ_listen,
    .listener_addr = circ_listener_addr,
    .listener_close = circ_listener_close,
    .dial = circ_dial_op,
};

int gn_transport_circuit_register(gn_registry *reg);
int gn_transport_circuit_register(gn_registry *reg)
{
    return gn_registry_add(reg, GN_LAYER_TRANSPORT, (const gn_layer_ops *)&circ_transport_ops);
}
