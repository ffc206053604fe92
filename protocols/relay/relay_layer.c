/*
 * The `relay` protocol component: the circuit relay v2 hop service
 * (/libp2p/circuit/relay/0.2.0/hop). It glues the wire core (relay_msg.h)
 * to the host: reservations in a bounded table, CONNECT through a stop
 * stream to the reserved target, and the splice of the two streams with
 * backpressure, half-close and reset propagation and the circuit limits.
 *
 * Options (gn_host_option, component "relay"), docs/relay.md:
 *   relay.max_reservations         default 128
 *   relay.max_reservations_per_ip  default 8
 *   relay.reservation_ttl          seconds, default 3600
 *   relay.max_circuits             default 16
 *   relay.max_circuits_per_peer    default 4
 *   relay.limit_duration           seconds per circuit, default 120, 0 = none
 *   relay.limit_data               bytes per circuit and direction,
 *                                  default 131072, 0 = none
 *   relay.timeout_ms               request and stop handshake, default 30000
 *   relay.advertise=true|false     provide the CID of "/libp2p/relay" in the
 *                                  DHT, where autorelay routers find relays
 *                                  (default true; nothing without a DHT)
 *
 * Thread context: the host's loop thread.
 * Spec: libp2p/specs relay/circuit-v2.md.
 */
#include "golemnet/node.h"
#include "golemnet/protocol.h"
#include "golemnet/rcmgr.h"
#include "golemnet/registry.h"
#include "golemnet/router.h"

#include "gni.h"
#include "relay_hop.h"
#include "relay_msg.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RELAY_LOG "relay"
/* Hop streams read at a time that are not yet circuits (requests). */
#define RELAY_MAX_REQUESTS 64u
/* Bytes a circuit direction may hold (queued or being written) before it
 * stops reading from its source. */
#define RELAY_WINDOW (256u * 1024u)
#define RELAY_MEM_PRIO GN_RCMGR_PRIO_MEDIUM
/* Upper bounds of the options. */
#define RELAY_MAX_RSV_CAP 65536u
#define RELAY_MAX_CIRCUITS_CAP 65536u

typedef struct relay_cfg {
    size_t max_rsv, max_rsv_per_ip, max_circuits, max_circuits_per_peer;
    uint64_t rsv_ttl_s;
    uint32_t limit_duration_s;
    uint64_t limit_data;
    gn_time timeout;
} relay_cfg;

typedef struct rsv {
    bool used;
    gn_peer_id peer;
    uint8_t ip[16];
    uint8_t iplen;   /* 0: no IP known (memory transport) */
    uint64_t ch_id;  /* the channel it was made or refreshed on */
    gn_time deadline;
    uint64_t expire; /* unix seconds, as told to the peer */
} rsv;

typedef struct relay relay;
typedef struct circ circ;

/* Bytes read from one leg, on their way to the other. */
typedef struct chunk {
    struct chunk *next;
    circ *c;
    int dir; /* the leg they came from */
    size_t len;
    uint8_t data[];
} chunk;

typedef struct leg {
    circ *c;
    int idx; /* 0: hop (initiator), 1: stop (target) */
    gn_stream *s;
    gn_peer_id peer;
    /* the direction from this leg's peer to the other leg */
    uint64_t bytes;      /* received, counted against limit_data */
    size_t inflight;     /* accepted by the other leg's write, not completed */
    size_t queued;       /* in q, not yet accepted */
    chunk *qhead, *qtail;
    bool paused;         /* reading stopped for backpressure */
    bool eof;            /* the peer half-closed */
    bool shut;           /* we shut the other leg down for it */
} leg;

enum { C_REQ, C_OPENING, C_STOP_WAIT, C_SPLICE, C_CLOSING, C_DONE };

struct circ {
    relay *r; /* NULL once ended */
    gni_list link;
    int state;
    int refs;
    bool limited;  /* the hop stream's channel is limited */
    bool counted;  /* holds a circuit slot */
    bool spliced;  /* reached C_SPLICE */
    uint64_t ch_id;
    uint8_t ip[16];
    uint8_t iplen;
    leg leg[2];
    gni_lp_reader rd;
    gn_timer timer;
    gn_op *op;
    gn_rcmgr_stream *span;
    size_t span_mem; /* reserved in span */
};

struct relay {
    gn_protocol *p;
    gn_host *h;
    relay_cfg cfg;
    rsv *rsvs; /* cfg.max_rsv entries */
    size_t nrsv;
    gn_timer rsv_timer;
    gni_list circs;
    size_t ncircs;    /* objects on the list (requests and circuits) */
    size_t ncounted;  /* circuit slots in use */
    gn_host_sub *sub;
    gni_relay_stats st;
    relay *dir_next;  /* the loop's directory of hop services */
    bool started;
    bool advertise;   /* relay.advertise */
    gn_timer adv_timer;
    gn_op *adv_op;    /* the DHT provide running */
    gn_time adv_backoff;
};

/* ---- advertising in the DHT (docs/relay.md "Relay routing") ---- */

/* First provide this long after the start (the DHT bootstraps meanwhile),
 * then again after a failure with a doubling backoff. The kad router
 * republishes what it provides. */
#define RELAY_ADV_FIRST (3 * GN_S)
#define RELAY_ADV_MAX (30 * 60 * GN_S)

static void adv_run(gn_timer *t, void *arg);

static void adv_done(void *arg, int status)
{
    relay *r = arg;
    r->adv_op = NULL;
    if (!r->started) {
        return;
    }
    if (status == 0) {
        GN_LOG(GN_LOG_INFO, RELAY_LOG, "advertised in the DHT as a relay");
        return;
    }
    r->adv_backoff = r->adv_backoff ? r->adv_backoff * 2 : RELAY_ADV_FIRST;
    if (r->adv_backoff > RELAY_ADV_MAX) {
        r->adv_backoff = RELAY_ADV_MAX;
    }
    GN_LOG(GN_LOG_INFO, RELAY_LOG, "advertising in the DHT: %s; again in %" PRIu64 " s",
           gn_err_name(status), r->adv_backoff / GN_S);
    gn_timer_start(&r->adv_timer, r->adv_backoff, adv_run, r);
}

static void adv_run(gn_timer *t, void *arg)
{
    (void)t;
    relay *r = arg;
    static const char ns[] = "/libp2p/relay";
    uint8_t key[34] = {0x12, 32}; /* the multihash of a CIDv1 (raw, sha2-256) */
    crypto_hash_sha256(key + 2, (const uint8_t *)ns, sizeof ns - 1);
    int rc = gn_host_provide(r->h, gn_slice_of(key, sizeof key), adv_done, r, &r->adv_op);
    if (rc == GN_ENOTSUP) {
        GN_LOG(GN_LOG_DEBUG, RELAY_LOG, "no DHT: not advertised");
    } else if (rc < 0) {
        adv_done(r, rc);
    }
}

/* ---- the loop's directory of hop services (for gni_relay_hop_stats) ---- */

static const char relay_dir_key = 0;

static void dir_add(relay *r)
{
    gn_loop *loop = gn_host_loop(r->h);
    r->dir_next = gn_loop_get_local(loop, &relay_dir_key);
    if (gn_loop_set_local(loop, &relay_dir_key, r) < 0) {
        r->dir_next = NULL; /* no slot: stats are not readable, the service runs */
        GN_LOG(GN_LOG_WARNING, RELAY_LOG, "no loop-local slot: relay stats unavailable");
    }
}

static void dir_del(relay *r)
{
    gn_loop *loop = gn_host_loop(r->h);
    relay *head = gn_loop_get_local(loop, &relay_dir_key);
    if (head == r) {
        (void)gn_loop_set_local(loop, &relay_dir_key, r->dir_next);
        return;
    }
    for (relay *x = head; x; x = x->dir_next) {
        if (x->dir_next == r) {
            x->dir_next = r->dir_next;
            return;
        }
    }
}

int gni_relay_hop_stats(gn_host *h, gni_relay_stats *out)
{
    if (!h || !out) {
        return GN_EINVAL;
    }
    for (relay *x = gn_loop_get_local(gn_host_loop(h), &relay_dir_key); x; x = x->dir_next) {
        if (x->h == h) {
            *out = x->st;
            out->reservations = x->nrsv;
            out->circuits = x->ncounted;
            return 0;
        }
    }
    return GN_ENOTFOUND;
}

/* ---- options ---- */

static int opt_num(gn_host *h, const char *key, uint64_t def, uint64_t min, uint64_t max,
                   uint64_t *out)
{
    const char *v = gn_host_option(h, "relay", key, 0);
    *out = def;
    if (!v) {
        return 0;
    }
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    if (*v < '0' || *v > '9' || *end || x < min || x > max) {
        GN_LOG(GN_LOG_ERR, RELAY_LOG, "relay.%s=%s: want a whole number from %llu to %llu", key,
               v, (unsigned long long)min, (unsigned long long)max);
        return GN_EINVAL;
    }
    *out = x;
    return 0;
}

static int cfg_read(gn_host *h, relay_cfg *c)
{
    uint64_t v;
    int rc;
    if ((rc = opt_num(h, "max_reservations", 128, 0, RELAY_MAX_RSV_CAP, &v)) < 0) {
        return rc;
    }
    c->max_rsv = (size_t)v;
    if ((rc = opt_num(h, "max_reservations_per_ip", 8, 1, RELAY_MAX_RSV_CAP, &v)) < 0) {
        return rc;
    }
    c->max_rsv_per_ip = (size_t)v;
    if ((rc = opt_num(h, "reservation_ttl", 3600, 1, 7 * 24 * 3600, &v)) < 0) {
        return rc;
    }
    c->rsv_ttl_s = v;
    if ((rc = opt_num(h, "max_circuits", 16, 0, RELAY_MAX_CIRCUITS_CAP, &v)) < 0) {
        return rc;
    }
    c->max_circuits = (size_t)v;
    if ((rc = opt_num(h, "max_circuits_per_peer", 4, 1, RELAY_MAX_CIRCUITS_CAP, &v)) < 0) {
        return rc;
    }
    c->max_circuits_per_peer = (size_t)v;
    if ((rc = opt_num(h, "limit_duration", 120, 0, UINT32_MAX, &v)) < 0) {
        return rc;
    }
    c->limit_duration_s = (uint32_t)v;
    if ((rc = opt_num(h, "limit_data", 131072, 0, UINT64_MAX, &v)) < 0) {
        return rc;
    }
    c->limit_data = v;
    if ((rc = opt_num(h, "timeout_ms", 30000, 1, 3600000, &v)) < 0) {
        return rc;
    }
    c->timeout = (gn_time)v * GN_MS;
    return 0;
}

/* ---- reservations ---- */

static void rsv_timer_arm(relay *r);

static void rsv_drop(relay *r, rsv *e)
{
    memset(e, 0, sizeof *e);
    r->nrsv--;
}

static void rsv_purge(relay *r)
{
    gn_time now = gn_loop_now(gn_host_loop(r->h));
    for (size_t i = 0; i < r->cfg.max_rsv; i++) {
        if (r->rsvs[i].used && r->rsvs[i].deadline <= now) {
            rsv_drop(r, &r->rsvs[i]);
        }
    }
}

static void rsv_timer_fired(gn_timer *t, void *arg)
{
    (void)t;
    relay *r = arg;
    rsv_purge(r);
    rsv_timer_arm(r);
}

static void rsv_timer_arm(relay *r)
{
    gn_time next = 0;
    for (size_t i = 0; i < r->cfg.max_rsv; i++) {
        if (r->rsvs[i].used && (!next || r->rsvs[i].deadline < next)) {
            next = r->rsvs[i].deadline;
        }
    }
    gn_timer_stop(&r->rsv_timer);
    if (next) {
        gn_time now = gn_loop_now(gn_host_loop(r->h));
        (void)gn_timer_start(&r->rsv_timer, next > now ? next - now : 0, rsv_timer_fired, r);
    }
}

static rsv *rsv_find(relay *r, const gn_peer_id *peer)
{
    gn_time now = gn_loop_now(gn_host_loop(r->h));
    for (size_t i = 0; i < r->cfg.max_rsv; i++) {
        rsv *e = &r->rsvs[i];
        if (e->used && e->deadline > now && gn_peer_id_equal(&e->peer, peer)) {
            return e;
        }
    }
    return NULL;
}

static void on_host_event(void *arg, const gn_host_event *ev)
{
    relay *r = arg;
    if (ev->type != GN_HOST_EV_DISCONNECTED || !ev->ch) {
        return;
    }
    uint64_t id = gn_channel_id(ev->ch);
    bool changed = false;
    for (size_t i = 0; i < r->cfg.max_rsv; i++) {
        if (r->rsvs[i].used && r->rsvs[i].ch_id == id) {
            rsv_drop(r, &r->rsvs[i]);
            changed = true;
        }
    }
    if (changed) {
        rsv_timer_arm(r);
    }
}

/* ---- circuits: lifetime ---- */

static void circ_unref(circ *c)
{
    if (--c->refs > 0) {
        return;
    }
    gn_free(c);
}

static void queue_free(circ *c, leg *l)
{
    chunk *k = l->qhead;
    while (k) {
        chunk *n = k->next;
        gn_free(k);
        k = n;
    }
    l->qhead = l->qtail = NULL;
    l->queued = 0;
    (void)c;
}

/*
 * Ends @c: resets (or, @reset false, closes) its streams, cancels the stop
 * stream's open, gives back its circuit slot and accounting. The object
 * lives on until its last write completes.
 */
static void circ_end(circ *c, bool reset)
{
    if (c->state == C_DONE) {
        return;
    }
    c->state = C_DONE;
    for (int i = 0; i < 2; i++) {
        leg *l = &c->leg[i];
        if (l->s) {
            gn_stream *s = l->s;
            l->s = NULL;
            if (reset) {
                gn_stream_reset(s, NULL, NULL);
            } else {
                gn_stream_close(s, NULL, NULL);
            }
        }
        queue_free(c, l);
    }
    if (c->op) {
        gn_op_cancel(c->op); /* its callback drops the op's reference */
        c->op = NULL;
    }
    gn_timer_stop(&c->timer);
    gni_lp_reader_clear(&c->rd);
    relay *r = c->r;
    if (r) {
        if (c->counted) {
            r->ncounted--;
        }
        gni_list_del(&c->link);
        r->ncircs--;
    }
    c->r = NULL;
    c->counted = false;
    gn_rcmgr_stream_done(c->span); /* releases what is still reserved */
    c->span = NULL;
    c->span_mem = 0;
    circ_unref(c);
}

/* ---- writing relay messages ---- */

typedef struct wmsg {
    circ *c;
    int leg;
    bool close; /* end the circuit (gracefully) once written */
    uint8_t *buf;
} wmsg;

static void msg_written(void *arg, int status)
{
    wmsg *w = arg;
    circ *c = w->c;
    gn_free(w->buf);
    if (c->state != C_DONE && (status < 0 || w->close)) {
        circ_end(c, status < 0);
    }
    gn_free(w);
    circ_unref(c);
}

static int send_msg(circ *c, int li, const gni_relay_msg *m, bool close)
{
    leg *l = &c->leg[li];
    wmsg *w = gn_calloc(1, sizeof *w);
    if (!w) {
        return GN_ENOMEM;
    }
    size_t len;
    int rc = gni_relay_msg_encode(m, &w->buf, &len);
    if (rc < 0) {
        gn_free(w);
        return rc;
    }
    w->c = c;
    w->leg = li;
    w->close = close;
    gn_slice sl = {w->buf, len};
    rc = l->s ? gn_stream_write(l->s, &sl, 1, msg_written, w) : GN_ECLOSED;
    if (rc < 0) {
        gn_free(w->buf);
        gn_free(w);
        return rc;
    }
    c->refs++;
    return 0;
}

static void timeout_fired(gn_timer *t, void *arg);

static void count_refusal(relay *r, int status)
{
    int i;
    switch (status) {
    case GNI_RELAY_RESERVATION_REFUSED:
        i = GNI_RELAY_REFUSED_RESERVATION;
        break;
    case GNI_RELAY_RESOURCE_LIMIT_EXCEEDED:
        i = GNI_RELAY_REFUSED_RESOURCE;
        break;
    case GNI_RELAY_PERMISSION_DENIED:
        i = GNI_RELAY_REFUSED_PERMISSION;
        break;
    case GNI_RELAY_CONNECTION_FAILED:
        i = GNI_RELAY_REFUSED_CONNECTION;
        break;
    case GNI_RELAY_NO_RESERVATION:
        i = GNI_RELAY_REFUSED_NO_RSV;
        break;
    default:
        i = GNI_RELAY_REFUSED_MALFORMED;
        break;
    }
    r->st.refused[i]++;
}

/* Answers the hop stream with STATUS @status and ends the circuit. */
static void refuse(circ *c, int status)
{
    relay *r = c->r;
    if (r) {
        count_refusal(r, status);
        GN_LOG(GN_LOG_DEBUG, RELAY_LOG, "hop request refused: %s",
               gni_relay_status_name(status));
    }
    if (c->leg[1].s) {
        gn_stream *s = c->leg[1].s;
        c->leg[1].s = NULL;
        gn_stream_reset(s, NULL, NULL);
    }
    if (c->op) {
        gn_op_cancel(c->op);
        c->op = NULL;
    }
    /* the answer is written and the stream closed, or it is reset then */
    (void)gn_timer_start(&c->timer, c->r ? c->r->cfg.timeout : GN_S, timeout_fired, c);
    c->state = C_CLOSING;
    if (c->leg[0].s) {
        (void)gn_stream_read_stop(c->leg[0].s);
    }
    gni_relay_msg m = {.type = GNI_RELAY_HOP_STATUS, .status = status};
    if (send_msg(c, 0, &m, true) < 0) {
        circ_end(c, true);
    }
}

/* The limits told to both ends, when there are any. */
static void put_limit(const relay *r, gni_relay_msg *m)
{
    if (r->cfg.limit_duration_s || r->cfg.limit_data) {
        m->has_limit = true;
        m->limit_duration = r->cfg.limit_duration_s;
        m->limit_data = r->cfg.limit_data;
    }
}

/* ---- the splice ---- */

static void splice_flush(circ *c, int dir);

static void limit_reset(circ *c, const char *which)
{
    if (c->r) {
        c->r->st.limit_resets++;
    }
    GN_LOG(GN_LOG_INFO, RELAY_LOG, "circuit reached its %s limit: reset", which);
    circ_end(c, true);
}

/* Ends the circuit once both directions are finished and written. */
static void splice_maybe_done(circ *c)
{
    if (c->state != C_SPLICE) {
        return;
    }
    for (int i = 0; i < 2; i++) {
        const leg *l = &c->leg[i];
        if (!l->eof || !l->shut || l->inflight || l->queued) {
            return;
        }
    }
    circ_end(c, false);
}

/* Shuts the other leg down once @dir's source ended and its bytes are taken. */
static void splice_maybe_shut(circ *c, int dir)
{
    leg *from = &c->leg[dir], *to = &c->leg[!dir];
    if (c->state != C_SPLICE || !from->eof || from->shut || from->queued || !to->s) {
        return;
    }
    from->shut = true;
    int rc = gn_stream_shutdown(to->s);
    if (rc < 0 && rc != GN_ESTATE) {
        circ_end(c, true);
        return;
    }
    splice_maybe_done(c);
}

static void splice_maybe_resume(circ *c, int dir)
{
    leg *from = &c->leg[dir];
    if (c->state == C_SPLICE && from->paused && !from->eof && from->s &&
        from->queued + from->inflight < RELAY_WINDOW / 2) {
        from->paused = false;
        if (gn_stream_read_start(from->s) < 0) {
            circ_end(c, true);
        }
    }
}

static void chunk_written(void *arg, int status)
{
    chunk *k = arg;
    circ *c = k->c;
    leg *from = &c->leg[k->dir];
    from->inflight -= k->len;
    if (c->span && c->span_mem >= k->len) {
        (void)gn_rcmgr_release_memory(gn_rcmgr_stream_span(c->span), k->len);
        c->span_mem -= k->len;
    }
    if (status == 0 && c->r) {
        c->r->st.bytes_relayed += k->len;
    }
    int dir = k->dir;
    gn_free(k);
    if (c->state == C_SPLICE) {
        if (status < 0) {
            circ_end(c, true);
        } else {
            splice_maybe_resume(c, dir);
            splice_maybe_done(c);
        }
    }
    circ_unref(c);
}

/* Hands @dir's queued chunks to the other leg until it pushes back. */
static void splice_flush(circ *c, int dir)
{
    leg *from = &c->leg[dir], *to = &c->leg[!dir];
    while (c->state == C_SPLICE && from->qhead && to->s) {
        chunk *k = from->qhead;
        gn_slice sl = {k->data, k->len};
        int rc = gn_stream_write(to->s, &sl, 1, chunk_written, k);
        if (rc == GN_EAGAIN) {
            break; /* on_writable of the other leg calls us again */
        }
        if (rc < 0) {
            circ_end(c, true);
            return;
        }
        from->qhead = k->next;
        if (!from->qhead) {
            from->qtail = NULL;
        }
        from->queued -= k->len;
        from->inflight += k->len;
        c->refs++;
    }
    if (c->state != C_SPLICE) {
        return;
    }
    if (!from->paused && from->s && from->queued + from->inflight >= RELAY_WINDOW) {
        from->paused = true;
        (void)gn_stream_read_stop(from->s);
    }
    splice_maybe_shut(c, dir);
}

static void splice_data(circ *c, int dir, const uint8_t *d, size_t n)
{
    leg *from = &c->leg[dir];
    uint64_t lim = c->r ? c->r->cfg.limit_data : 0;
    if (lim && (from->bytes > lim || n > lim - from->bytes)) {
        limit_reset(c, "data");
        return;
    }
    from->bytes += n;
    if (c->span) {
        if (gn_rcmgr_reserve_memory(gn_rcmgr_stream_span(c->span), n, RELAY_MEM_PRIO) < 0) {
            GN_LOG(GN_LOG_INFO, RELAY_LOG, "circuit buffer refused by the resource manager");
            circ_end(c, true);
            return;
        }
        c->span_mem += n;
    }
    chunk *k = gn_malloc(sizeof *k + n);
    if (!k) {
        circ_end(c, true);
        return;
    }
    k->next = NULL;
    k->c = c;
    k->dir = dir;
    k->len = n;
    memcpy(k->data, d, n);
    if (from->qtail) {
        from->qtail->next = k;
    } else {
        from->qhead = k;
    }
    from->qtail = k;
    from->queued += n;
    splice_flush(c, dir);
}

static void duration_fired(gn_timer *t, void *arg)
{
    (void)t;
    limit_reset(arg, "duration");
}

static void splice_start(circ *c)
{
    relay *r = c->r;
    c->state = C_SPLICE;
    c->spliced = true;
    r->st.circuits_total++;
    gn_timer_stop(&c->timer);
    if (r->cfg.limit_duration_s) {
        (void)gn_timer_start(&c->timer, (gn_time)r->cfg.limit_duration_s * GN_S, duration_fired,
                             c);
    }
    for (int i = 0; i < 2; i++) {
        if (c->leg[i].s && gn_stream_read_start(c->leg[i].s) < 0) {
            circ_end(c, true);
            return;
        }
    }
    for (int i = 0; i < 2 && c->state == C_SPLICE; i++) {
        splice_maybe_shut(c, i); /* a half-close that came before the splice */
    }
}

/* ---- stream events ---- */

static void on_hop_request(circ *c, const uint8_t *msg, size_t len);
static void on_stop_answer(circ *c, const uint8_t *msg, size_t len);

/* Reads one framed message of leg @l and acts on it; the bytes after it go
 * back to the stream for the splice. A framing error refuses the request. */
static void read_message(leg *l, const uint8_t *d, size_t n)
{
    circ *c = l->c;
    size_t used = 0;
    const uint8_t *msg = NULL;
    size_t mlen = 0;
    int rc = gni_lp_reader_feed(&c->rd, d, n, &used, &msg, &mlen);
    if (rc < 0) {
        if (l->idx == 0 && c->state == C_REQ) {
            refuse(c, GNI_RELAY_MALFORMED_MESSAGE);
        } else {
            refuse(c, GNI_RELAY_CONNECTION_FAILED);
        }
        return;
    }
    if (rc == 0) {
        return;
    }
    /* bytes after the message belong to the relayed connection: they are
     * given back to the stream and read again once the splice runs */
    if (used < n && gn_stream_unread(l->s, d + used, n - used) < 0) {
        circ_end(c, true);
        return;
    }
    (void)gn_stream_read_stop(l->s);
    c->refs++; /* the handlers below may end the circuit */
    if (l->idx == 0) {
        on_hop_request(c, msg, mlen);
    } else {
        on_stop_answer(c, msg, mlen);
    }
    if (c->state != C_DONE) {
        gni_lp_reader_clear(&c->rd);
    }
    circ_unref(c);
}

static void leg_on_data(gn_stream *s, void *ud, const uint8_t *d, size_t n)
{
    (void)s;
    leg *l = ud;
    circ *c = l->c;
    if (c->state == C_SPLICE) {
        splice_data(c, l->idx, d, n);
    } else if ((c->state == C_REQ && l->idx == 0) || (c->state == C_STOP_WAIT && l->idx == 1)) {
        read_message(l, d, n);
    } else if (c->state == C_OPENING || c->state == C_STOP_WAIT) {
        /* early relayed bytes: keep them for the splice */
        if (gn_stream_unread(l->s, d, n) < 0) {
            circ_end(c, true);
        } else {
            (void)gn_stream_read_stop(l->s);
        }
    }
    /* C_CLOSING: ignored */
}

static void leg_on_eof(gn_stream *s, void *ud)
{
    (void)s;
    leg *l = ud;
    circ *c = l->c;
    l->eof = true;
    switch (c->state) {
    case C_SPLICE:
        splice_maybe_shut(c, l->idx);
        break;
    case C_REQ:
        circ_end(c, false); /* ended before a whole request */
        break;
    case C_STOP_WAIT:
        if (l->idx == 1) {
            refuse(c, GNI_RELAY_CONNECTION_FAILED);
        }
        break;
    default:
        break; /* the initiator's half-close is forwarded once the splice runs */
    }
}

static void leg_on_error(gn_stream *s, void *ud, int err)
{
    (void)s;
    leg *l = ud;
    circ *c = l->c;
    if (c->state == C_STOP_WAIT && l->idx == 1) {
        refuse(c, GNI_RELAY_CONNECTION_FAILED);
        return;
    }
    GN_LOG(GN_LOG_DEBUG, RELAY_LOG, "circuit stream failed: %s", gn_err_name(err));
    circ_end(c, true); /* a reset on one side resets the other */
}

static void leg_on_writable(gn_stream *s, void *ud)
{
    (void)s;
    leg *l = ud;
    /* this leg accepts writes again: flush the other direction into it */
    splice_flush(l->c, !l->idx);
}

static const gn_stream_handler leg_handler = {
    .on_data = leg_on_data,
    .on_eof = leg_on_eof,
    .on_error = leg_on_error,
    .on_writable = leg_on_writable,
};

/* ---- requests ---- */

static void timeout_fired(gn_timer *t, void *arg)
{
    (void)t;
    circ *c = arg;
    if (c->state == C_OPENING || c->state == C_STOP_WAIT) {
        refuse(c, GNI_RELAY_CONNECTION_FAILED);
    } else {
        circ_end(c, true);
    }
}

static bool addr_usable(const gn_multiaddr *ma)
{
    gn_ma_component comp;
    if (gn_multiaddr_find(ma, GN_MA_P2P_CIRCUIT, &comp) == 0) {
        return false;
    }
    static const uint8_t zero[16];
    if (gn_multiaddr_find(ma, GN_MA_IP4, &comp) == 0 && comp.value_len == 4 &&
        memcmp(comp.value, zero, 4) == 0) {
        return false;
    }
    if (gn_multiaddr_find(ma, GN_MA_IP6, &comp) == 0 && comp.value_len == 16 &&
        memcmp(comp.value, zero, 16) == 0) {
        return false;
    }
    return true;
}

/* Fills m->rsv_addrs with the relay's public addresses, each with /p2p/<relay>. */
static int rsv_addrs(relay *r, gni_relay_msg *m)
{
    gn_peer_id self;
    gn_host_peer_id(r->h, &self);
    char sp[GN_PEER_ID_MAX_STRLEN + 8] = "/p2p/";
    if (gn_peer_id_to_string(&self, sp + 5, sizeof sp - 5) < 0) {
        return GN_EINTERNAL;
    }
    gn_multiaddr *p2p = NULL;
    int rc = gn_multiaddr_parse(sp, &p2p);
    if (rc < 0) {
        return rc;
    }
    const gn_multiaddr *all[3 * GNI_RELAY_MAX_ADDRS];
    size_t n = gn_host_listen_addrs(r->h, all, GNI_RELAY_MAX_ADDRS);
    n += gn_host_observed_addrs(r->h, all + n, GNI_RELAY_MAX_ADDRS);
    n += gn_host_announced_addrs(r->h, all + n, GNI_RELAY_MAX_ADDRS);
    for (size_t i = 0; i < n && m->nrsv_addrs < GNI_RELAY_MAX_ADDRS; i++) {
        if (!addr_usable(all[i])) {
            continue;
        }
        gn_multiaddr *full = NULL;
        gn_ma_component comp;
        if (gn_multiaddr_find(all[i], GN_MA_P2P, &comp) == 0) {
            rc = gn_multiaddr_dup(all[i], &full);
        } else {
            rc = gn_multiaddr_encapsulate(all[i], p2p, &full);
        }
        if (rc == GN_ENOMEM) {
            break;
        }
        if (rc < 0) {
            rc = 0;
            continue;
        }
        bool dup = false;
        for (size_t j = 0; j < m->nrsv_addrs && !dup; j++) {
            dup = gn_multiaddr_equal(m->rsv_addrs[j], full);
        }
        if (dup) {
            gn_multiaddr_free(full);
        } else {
            m->rsv_addrs[m->nrsv_addrs++] = full;
        }
    }
    gn_multiaddr_free(p2p);
    return rc;
}

static void on_reserve(circ *c)
{
    relay *r = c->r;
    const gn_peer_id *peer = &c->leg[0].peer;
    if (c->limited) {
        refuse(c, GNI_RELAY_PERMISSION_DENIED); /* spec: not over relayed connections */
        return;
    }
    rsv_purge(r);
    rsv *e = rsv_find(r, peer);
    if (!e) {
        size_t same_ip = 0;
        for (size_t i = 0; i < r->cfg.max_rsv && c->iplen; i++) {
            same_ip += r->rsvs[i].used && r->rsvs[i].iplen == c->iplen &&
                       memcmp(r->rsvs[i].ip, c->ip, c->iplen) == 0;
        }
        if (r->nrsv >= r->cfg.max_rsv || same_ip >= r->cfg.max_rsv_per_ip) {
            refuse(c, GNI_RELAY_RESERVATION_REFUSED);
            return;
        }
        for (size_t i = 0; i < r->cfg.max_rsv; i++) {
            if (!r->rsvs[i].used) {
                e = &r->rsvs[i];
                break;
            }
        }
        if (!e) {
            refuse(c, GNI_RELAY_RESERVATION_REFUSED);
            return;
        }
    }
    uint64_t expire = (uint64_t)time(NULL) + r->cfg.rsv_ttl_s;
    gni_relay_msg m = {.type = GNI_RELAY_HOP_STATUS, .status = GNI_RELAY_OK};
    m.has_reservation = true;
    m.rsv_expire = expire;
    int rc = rsv_addrs(r, &m);
    if (rc == 0) {
        rc = gni_relay_voucher_make(gn_host_identity(r->h), peer, expire, &m.voucher,
                                    &m.voucher_len);
    }
    put_limit(r, &m);
    if (rc < 0) {
        gni_relay_msg_clear(&m);
        refuse(c, GNI_RELAY_RESERVATION_REFUSED);
        return;
    }
    if (!e->used) {
        e->used = true;
        e->peer = *peer;
        memcpy(e->ip, c->ip, sizeof e->ip);
        e->iplen = c->iplen;
        r->nrsv++;
    }
    e->ch_id = c->ch_id;
    e->deadline = gn_loop_now(gn_host_loop(r->h)) + (gn_time)r->cfg.rsv_ttl_s * GN_S;
    e->expire = expire;
    r->st.reservations_total++;
    rsv_timer_arm(r);
    (void)gn_timer_start(&c->timer, r->cfg.timeout, timeout_fired, c);
    c->state = C_CLOSING;
    rc = send_msg(c, 0, &m, true);
    gni_relay_msg_clear(&m);
    if (rc < 0) {
        circ_end(c, true);
    }
}

static size_t circuits_of(relay *r, const gn_peer_id *peer)
{
    size_t n = 0;
    for (gni_list *it = r->circs.next; it != &r->circs; it = it->next) {
        circ *x = GNI_CONTAINER_OF(it, circ, link);
        n += x->counted && (gn_peer_id_equal(&x->leg[0].peer, peer) ||
                            gn_peer_id_equal(&x->leg[1].peer, peer));
    }
    return n;
}

static void stop_opened(void *arg, int status, gn_channel *ch, gn_stream *s)
{
    (void)ch;
    circ *c = arg;
    c->op = NULL;
    if (c->state != C_OPENING || !c->r) {
        if (status == 0) {
            gn_stream_reset(s, NULL, NULL);
        }
        circ_unref(c);
        return;
    }
    if (status < 0) {
        GN_LOG(GN_LOG_DEBUG, RELAY_LOG, "stop stream to the target: %s", gn_err_name(status));
        refuse(c, GNI_RELAY_CONNECTION_FAILED);
        circ_unref(c);
        return;
    }
    relay *r = c->r;
    c->leg[1].s = s;
    gn_stream_set_handler(s, &leg_handler, &c->leg[1]);
    gni_relay_msg m = {.stop = true, .type = GNI_RELAY_STOP_CONNECT, .has_peer = true};
    m.peer = c->leg[0].peer;
    put_limit(r, &m);
    c->state = C_STOP_WAIT;
    gni_lp_reader_init(&c->rd, GNI_RELAY_MSG_MAX);
    if (send_msg(c, 1, &m, false) < 0 || gn_stream_read_start(s) < 0) {
        refuse(c, GNI_RELAY_CONNECTION_FAILED);
    }
    circ_unref(c);
}

static void on_connect(circ *c, const gni_relay_msg *req)
{
    relay *r = c->r;
    if (c->limited) {
        refuse(c, GNI_RELAY_PERMISSION_DENIED); /* no relaying of relayed connections */
        return;
    }
    if (!req->has_peer) {
        refuse(c, GNI_RELAY_MALFORMED_MESSAGE);
        return;
    }
    const gn_peer_id *src = &c->leg[0].peer, *dst = &req->peer;
    if (gn_peer_id_equal(src, dst) || !rsv_find(r, dst)) {
        refuse(c, GNI_RELAY_NO_RESERVATION);
        return;
    }
    if (r->ncounted >= r->cfg.max_circuits ||
        circuits_of(r, src) >= r->cfg.max_circuits_per_peer ||
        circuits_of(r, dst) >= r->cfg.max_circuits_per_peer) {
        refuse(c, GNI_RELAY_RESOURCE_LIMIT_EXCEEDED);
        return;
    }
    c->leg[1].peer = *dst;
    c->counted = true;
    r->ncounted++;
    c->state = C_OPENING;
    c->refs++; /* the open's */
    /* the relay's connection to the target is a direct one: flags 0 */
    int rc = gn_host_new_stream_ex(r->h, dst, GNI_RELAY_STOP_ID, 0, stop_opened, c, &c->op);
    if (rc < 0) {
        c->refs--;
        c->op = NULL;
        refuse(c, GNI_RELAY_CONNECTION_FAILED);
    }
}

static void on_hop_request(circ *c, const uint8_t *msg, size_t len)
{
    gni_relay_msg m;
    int rc = gni_relay_msg_decode(false, msg, len, &m);
    if (rc < 0) {
        refuse(c, GNI_RELAY_MALFORMED_MESSAGE);
        return;
    }
    if (m.type == GNI_RELAY_HOP_RESERVE) {
        on_reserve(c);
    } else if (m.type == GNI_RELAY_HOP_CONNECT) {
        on_connect(c, &m);
    } else {
        refuse(c, GNI_RELAY_UNEXPECTED_MESSAGE);
    }
    gni_relay_msg_clear(&m);
}

static void on_stop_answer(circ *c, const uint8_t *msg, size_t len)
{
    gni_relay_msg m;
    int rc = gni_relay_msg_decode(true, msg, len, &m);
    if (rc < 0 || m.type != GNI_RELAY_STOP_STATUS || m.status != GNI_RELAY_OK) {
        GN_LOG(GN_LOG_DEBUG, RELAY_LOG, "target refused the circuit: %s",
               rc < 0 ? gn_err_name(rc) : gni_relay_status_name(m.status));
        if (rc == 0) {
            gni_relay_msg_clear(&m);
        }
        refuse(c, GNI_RELAY_CONNECTION_FAILED);
        return;
    }
    gni_relay_msg_clear(&m);
    gni_relay_msg ok = {.type = GNI_RELAY_HOP_STATUS, .status = GNI_RELAY_OK};
    put_limit(c->r, &ok);
    if (send_msg(c, 0, &ok, false) < 0) {
        circ_end(c, true);
        return;
    }
    splice_start(c);
}

static void hop_on_stream(gn_protocol *p, gn_stream *s, const gn_protocol_stream_info *info)
{
    relay *r = p->state;
    if (!r->started || r->ncircs >= r->cfg.max_circuits + RELAY_MAX_REQUESTS) {
        gn_stream_reset(s, NULL, NULL);
        return;
    }
    circ *c = gn_calloc(1, sizeof *c);
    if (!c) {
        gn_stream_reset(s, NULL, NULL);
        return;
    }
    gn_rcmgr *rm = gn_host_rcmgr(r->h);
    int rc = 0;
    if (rm) {
        rc = gn_rcmgr_open_stream(rm, gn_channel_rcmgr_conn(info->channel), &info->remote_peer,
                                  GN_RCMGR_INBOUND, &c->span);
        if (rc == 0) {
            rc = gn_rcmgr_stream_set_protocol(c->span, GNI_RELAY_HOP_ID,
                                              sizeof GNI_RELAY_HOP_ID - 1);
        }
    }
    if (rc < 0) {
        GN_LOG(GN_LOG_INFO, RELAY_LOG, "hop stream refused by the resource manager: %s",
               gn_err_name(rc));
        gn_rcmgr_stream_done(c->span);
        gn_free(c);
        gn_stream_reset(s, NULL, NULL);
        return;
    }
    c->r = r;
    c->refs = 1;
    c->state = C_REQ;
    c->limited = gn_channel_limited(info->channel, NULL);
    c->ch_id = gn_channel_id(info->channel);
    for (int i = 0; i < 2; i++) {
        c->leg[i].c = c;
        c->leg[i].idx = i;
    }
    c->leg[0].s = s;
    c->leg[0].peer = info->remote_peer;
    gn_multiaddr *ra = NULL;
    gn_ma_component comp;
    if (gn_stream_addr(s, GN_ADDR_REMOTE, &ra) == 0 &&
        ((gn_multiaddr_find(ra, GN_MA_IP4, &comp) == 0 && comp.value_len == 4) ||
         (gn_multiaddr_find(ra, GN_MA_IP6, &comp) == 0 && comp.value_len == 16))) {
        memcpy(c->ip, comp.value, comp.value_len);
        c->iplen = (uint8_t)comp.value_len;
    }
    gn_multiaddr_free(ra);
    gni_lp_reader_init(&c->rd, GNI_RELAY_MSG_MAX);
    gn_timer_init(gn_host_loop(r->h), &c->timer);
    gni_list_add_tail(&r->circs, &c->link);
    r->ncircs++;
    gn_stream_set_handler(s, &leg_handler, &c->leg[0]);
    if (gn_timer_start(&c->timer, r->cfg.timeout, timeout_fired, c) < 0 ||
        gn_stream_read_start(s) < 0) {
        circ_end(c, true);
    }
}

/* ---- the component ---- */

static int hop_start(gn_protocol *p)
{
    relay *r = p->state;
    r->p = p;
    r->h = p->host;
    gni_list_init(&r->circs);
    gn_timer_init(gn_host_loop(r->h), &r->rsv_timer);
    int rc = cfg_read(r->h, &r->cfg);
    if (rc < 0) {
        return rc;
    }
    const char *adv = gn_host_option(r->h, "relay", "advertise", 0);
    if (adv && strcmp(adv, "true") != 0 && strcmp(adv, "false") != 0) {
        GN_LOG(GN_LOG_ERR, RELAY_LOG, "relay.advertise=%s: want true or false", adv);
        return GN_EINVAL;
    }
    r->advertise = !adv || strcmp(adv, "true") == 0;
    gn_timer_init(gn_host_loop(r->h), &r->adv_timer);
    if (r->cfg.max_rsv) {
        r->rsvs = gn_calloc(r->cfg.max_rsv, sizeof *r->rsvs);
        if (!r->rsvs) {
            return GN_ENOMEM;
        }
    }
    rc = gn_host_subscribe(r->h, GN_HOST_EV_DISCONNECTED, on_host_event, r, &r->sub);
    if (rc < 0) {
        gn_free(r->rsvs);
        r->rsvs = NULL;
        return rc;
    }
    dir_add(r);
    r->started = true;
    if (r->advertise) {
        gn_timer_start(&r->adv_timer, RELAY_ADV_FIRST, adv_run, r);
    }
    GN_LOG(GN_LOG_INFO, RELAY_LOG,
           "hop service: %zu reservations (%zu per IP, %" PRIu64 " s), %zu circuits (%zu per "
           "peer), limits %" PRIu32 " s / %" PRIu64 " bytes",
           r->cfg.max_rsv, r->cfg.max_rsv_per_ip, r->cfg.rsv_ttl_s, r->cfg.max_circuits,
           r->cfg.max_circuits_per_peer, r->cfg.limit_duration_s, r->cfg.limit_data);
    return 0;
}

static void hop_stop(gn_protocol *p)
{
    relay *r = p->state;
    if (!r->started) {
        return;
    }
    r->started = false;
    while (!gni_list_empty(&r->circs)) {
        circ_end(GNI_CONTAINER_OF(r->circs.next, circ, link), true);
    }
    gn_timer_stop(&r->rsv_timer);
    gn_timer_stop(&r->adv_timer);
    if (r->adv_op) {
        gn_op *q = r->adv_op;
        r->adv_op = NULL;
        gn_op_cancel(q); /* adv_done follows and sees started false */
    }
    gn_host_unsubscribe(r->sub);
    r->sub = NULL;
    dir_del(r);
}

static void hop_fini(gn_protocol *p)
{
    relay *r = p->state;
    if (r) {
        gn_free(r->rsvs);
        r->rsvs = NULL;
    }
}

static const gn_protocol_ops hop_ops = {
    .abi = GN_PROTOCOL_ABI,
    .name = GNI_RELAY_HOP_ID,
    .flags = GN_LAYER_F_EXPLICIT_ONLY, /* not LIMITED_OK: no relaying over relayed channels */
    .state_size = sizeof(relay),
    .start = hop_start,
    .stop = hop_stop,
    .fini = hop_fini,
    .on_stream = hop_on_stream,
};

int gn_protocol_relay_register(gn_registry *reg);
int gn_protocol_relay_register(gn_registry *reg)
{
    return gn_registry_add(reg, GN_LAYER_PROTOCOL, (const gn_layer_ops *)&hop_ops);
}
