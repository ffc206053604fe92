/*
 * The /libp2p/dcutr protocol component: upgrades a relayed (limited)
 * channel to a direct one by a synchronised hole punch. The wire core is
 * dcutr_msg.c, one punch's logic dcutr_core.c; this file drives them with
 * the host: events, the stream, the timer and the dials.
 *
 * Runs when the node's protocol_components names it ("dcutr"); explicit
 * only, so that a node that never meets a relay does not announce it.
 * Options (gn_host_option, component "dcutr"), docs/dcutr.md:
 *   allow_private=true      send and dial loopback and private addresses
 *                           (tests, labs behind one NAT); default false
 *   attempts=N              attempts B makes, 1..3 (default 3, the spec's)
 *   addr=<multiaddr>        (repeatable, at most 16) offer exactly these
 *                           addresses in CONNECT instead of the observed and
 *                           listen ones: a known port-preserving mapping
 *   test_treat_all_limited=1  TEST ONLY: the first channel to each peer
 *                           counts as relayed, so the exchange runs over a
 *                           plain connection in tests without a relay
 * Spec: libp2p/specs relay/DCUtR.md.
 */
#include "golemnet/err.h"
#include "golemnet/host.h"
#include "golemnet/log.h"
#include "golemnet/node.h"
#include "golemnet/protocol.h"
#include "golemnet/registry.h"

#include "dcutr_core.h"
#include "dcutr_msg.h"
#include "gni.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DC_LOG "dcutr"
/* Most hole punches in progress at once (both roles); more are refused. */
#define DC_PUNCHES_MAX 64u
/* Peers the test option remembers as already punched (a ring). */
#define DC_SEEN_MAX 64u

typedef struct dcutr_comp dcutr_comp;
typedef struct dc_punch dc_punch;

struct dcutr_comp {
    gn_protocol *p;
    gn_host *h;
    gn_host_sub *sub;
    bool stopped;
    bool allow_private;
    bool test_all_limited;
    unsigned attempts;
    dc_punch *punches;
    size_t npunches;
    gn_multiaddr *addrs[GNI_DCUTR_ADDRS_MAX]; /* dcutr.addr options */
    size_t naddrs;
    gn_peer_id seen[DC_SEEN_MAX]; /* test option: peers whose first channel was used */
    size_t nseen;
    /* counters: hole punches started (both roles), finished with a direct
     * channel, failed; direct dial attempts made */
    uint64_t started, succeeded, failed, dial_rounds;
};

typedef struct dc_dial {
    dc_punch *pu;
    unsigned attempt;
    bool busy; /* the connect is out: its callback has not run */
    gn_op *op;
} dc_dial;

struct dc_punch {
    dcutr_comp *dc; /* NULL once the component stopped (the punch only drains) */
    gn_loop *loop;
    dc_punch *next;
    gn_peer_id peer;
    char peer_str[64];
    gn_channel *relayed; /* held */
    gn_stream *s;        /* NULL before opened and after closed */
    bool opening;        /* B: gn_channel_open_stream pending */
    bool closing;        /* gn_stream_close called, callback pending */
    bool finished;       /* DONE handled */
    bool in_run;         /* punch_run on the stack */
    gni_dcutr_core core;
    gni_lp_reader rd;
    gn_timer timer;
    dc_dial dials[GNI_DCUTR_ADDRS_MAX];
    unsigned dials_out;     /* callbacks still to run, all rounds */
    unsigned round_attempt; /* the attempt of the current round */
    unsigned round_left;    /* dials of the current round without a result */
    int round_err;
};

static void punch_run(dc_punch *pu);

static bool dc_opt_true(gn_host *h, const char *key)
{
    const char *v = gn_host_option(h, "dcutr", key, 0);
    return v && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0);
}

static gn_time pu_now(dc_punch *pu)
{
    return gn_loop_now(pu->loop);
}

/* ---- relayed or not ---- */

static bool dc_seen(dcutr_comp *dc, const gn_peer_id *peer)
{
    for (size_t i = 0; i < dc->nseen && i < DC_SEEN_MAX; i++) {
        if (gn_peer_id_equal(&dc->seen[i], peer)) {
            return true;
        }
    }
    return false;
}

/* True when @ch runs through a relay (limited or not). */
static bool dc_relayed_addr(gn_channel *ch)
{
    gn_channel_info info;
    gn_channel_state_get(ch, &info);
    return gn_channel_limited(ch, NULL) || strstr(info.remote_addr, "/p2p-circuit") != NULL;
}

/* True when @ch counts as relayed: a limited channel, one whose remote
 * address runs through a relay or, under the test option, the first
 * channel to a peer not yet punched. */
static bool dc_relayed(dcutr_comp *dc, gn_channel *ch, const gn_peer_id *peer)
{
    if (gn_channel_limited(ch, NULL)) {
        return true;
    }
    gn_channel_info info;
    gn_channel_state_get(ch, &info);
    if (strstr(info.remote_addr, "/p2p-circuit")) {
        return true; /* through a relay that set no limits */
    }
    return dc->test_all_limited && !dc_seen(dc, peer);
}

static dc_punch *dc_find(dcutr_comp *dc, const gn_peer_id *peer)
{
    for (dc_punch *pu = dc->punches; pu; pu = pu->next) {
        if (gn_peer_id_equal(&pu->peer, peer)) {
            return pu;
        }
    }
    return NULL;
}

/* ---- lifetime ---- */

static void punch_maybe_free(dc_punch *pu)
{
    if (!pu->finished || pu->s || pu->opening || pu->closing || pu->dials_out || pu->in_run) {
        return;
    }
    dcutr_comp *dc = pu->dc;
    for (dc_punch **pp = dc ? &dc->punches : NULL; pp && *pp; pp = &(*pp)->next) {
        if (*pp == pu) {
            *pp = pu->next;
            dc->npunches--;
            break;
        }
    }
    gn_timer_stop(&pu->timer);
    gni_lp_reader_clear(&pu->rd);
    gni_dcutr_core_fini(&pu->core);
    gn_channel_rele(pu->relayed);
    gn_free(pu);
}

static void punch_stream_closed(gn_stream *s, void *arg)
{
    (void)s;
    dc_punch *pu = arg;
    pu->closing = false;
    punch_maybe_free(pu);
}

static void punch_close_stream(dc_punch *pu)
{
    if (pu->s) {
        gn_stream *s = pu->s;
        pu->s = NULL;
        pu->closing = true;
        gn_stream_set_handler(s, NULL, NULL);
        gn_stream_close(s, punch_stream_closed, pu);
    }
}

/* The punch ended: log, count, cancel what is pending. */
static void punch_finish(dc_punch *pu, int status, const char *reason, unsigned attempt)
{
    dcutr_comp *dc = pu->dc;
    if (pu->finished) {
        return;
    }
    pu->finished = true;
    gn_timer_stop(&pu->timer);
    const char *role = pu->core.role == GNI_DCUTR_ROLE_B ? "B (initiator)" : "A (responder)";
    uint64_t zero = 0;
    uint64_t *ok = dc ? &dc->succeeded : &zero, *bad = dc ? &dc->failed : &zero;
    if (status == 0) {
        (*ok)++;
        GN_LOG(GN_LOG_INFO, DC_LOG,
               "hole punch with %s succeeded as %s on attempt %u: %s (ok %llu, failed %llu)",
               pu->peer_str, role, attempt, reason, (unsigned long long)*ok,
               (unsigned long long)*bad);
    } else {
        (*bad)++;
        GN_LOG(GN_LOG_NOTICE, DC_LOG,
               "hole punch with %s failed as %s after %u attempt(s): %s (%s); the relayed "
               "channel stays (ok %llu, failed %llu)",
               pu->peer_str, role, attempt, reason, gn_err_name(status),
               (unsigned long long)*ok, (unsigned long long)*bad);
    }
    for (unsigned i = 0; i < GNI_DCUTR_ADDRS_MAX; i++) {
        if (pu->dials[i].busy && pu->dials[i].op) {
            gn_op *op = pu->dials[i].op;
            pu->dials[i].op = NULL;
            gn_op_cancel(op);
        }
    }
    punch_close_stream(pu);
}

/* Stops every punch (the node is closing); those still waiting for a
 * callback (stream close, cancelled dials) are detached from the component
 * and free themselves when it runs. */
static void dc_stop_all(dcutr_comp *dc)
{
    dc_punch *pu = dc->punches;
    dc->punches = NULL;
    dc->npunches = 0;
    while (pu) {
        dc_punch *next = pu->next;
        pu->next = NULL;
        punch_finish(pu, GN_ECANCELED, "the node is closing", pu->core.attempt);
        pu->dc = NULL;
        punch_maybe_free(pu);
        pu = next;
    }
}

/* ---- our addresses ---- */

static size_t add_unique(const gn_multiaddr **out, size_t n, const gn_multiaddr *ma, bool priv)
{
    if (n == GNI_DCUTR_ADDRS_MAX || !gni_dcutr_addr_usable(ma, priv)) {
        return n;
    }
    for (size_t i = 0; i < n; i++) {
        if (gn_multiaddr_equal(out[i], ma)) {
            return n;
        }
    }
    out[n] = ma;
    return n + 1;
}

/* Observed first (what NATs map us to), then listen addresses. */
static size_t our_addrs(dcutr_comp *dc, const gn_multiaddr **out)
{
    const gn_multiaddr *tmp[GNI_DCUTR_ADDRS_MAX];
    size_t n = 0;
    if (dc->naddrs) {
        for (size_t i = 0; i < dc->naddrs; i++) {
            n = add_unique(out, n, dc->addrs[i], dc->allow_private);
        }
        return n;
    }
    size_t k = gn_host_observed_addrs(dc->h, tmp, GNI_DCUTR_ADDRS_MAX);
    for (size_t i = 0; i < k; i++) {
        n = add_unique(out, n, tmp[i], dc->allow_private);
    }
    k = gn_host_listen_addrs(dc->h, tmp, GNI_DCUTR_ADDRS_MAX);
    for (size_t i = 0; i < k; i++) {
        n = add_unique(out, n, tmp[i], dc->allow_private);
    }
    return n;
}

/* ---- the stream ---- */

static void punch_written(void *arg, int status)
{
    (void)status; /* a failed write shows as a stream error */
    gn_free(arg);
}

static int punch_send(dc_punch *pu, gni_dcutr_type t)
{
    const gn_multiaddr *addrs[GNI_DCUTR_ADDRS_MAX];
    size_t n = t == GNI_DCUTR_CONNECT ? our_addrs(pu->dc, addrs) : 0;
    uint8_t *buf = gn_malloc(GNI_DCUTR_FRAME_MAX);
    if (!buf) {
        return GN_ENOMEM;
    }
    size_t len = 0;
    int rc = gni_dcutr_msg_encode(t, addrs, n, buf, GNI_DCUTR_FRAME_MAX, &len);
    if (rc == GN_ETOOBIG) {
        /* long DNS names: send fewer */
        while (rc == GN_ETOOBIG && n > 1) {
            rc = gni_dcutr_msg_encode(t, addrs, --n, buf, GNI_DCUTR_FRAME_MAX, &len);
        }
    }
    if (rc == 0 && !pu->s) {
        rc = GN_ECLOSED;
    }
    if (rc == 0) {
        gn_slice iov = {.base = buf, .len = len};
        rc = gn_stream_write(pu->s, &iov, 1, punch_written, buf);
    }
    if (rc < 0) {
        gn_free(buf);
        return rc;
    }
    GN_LOG(GN_LOG_DEBUG, DC_LOG, "sent %s with %zu address(es) to %s", gni_dcutr_type_name(t),
           n, pu->peer_str);
    return 0;
}

static void punch_on_data(gn_stream *s, void *ud, const uint8_t *data, size_t len)
{
    (void)s;
    dc_punch *pu = ud;
    gn_time now = pu_now(pu);
    /* bounded: each turn consumes at least one byte or ends the loop */
    while (len > 0 && !pu->finished) {
        size_t used = 0;
        const uint8_t *msg = NULL;
        size_t mlen = 0;
        int rc = gni_lp_reader_feed(&pu->rd, data, len, &used, &msg, &mlen);
        if (rc < 0) {
            gni_dcutr_core_on_stream_end(&pu->core, rc, now);
            break;
        }
        data += used;
        len -= used;
        if (rc == 0) {
            break;
        }
        gni_dcutr_msg m;
        rc = gni_dcutr_msg_decode(msg, mlen, &m);
        gni_lp_reader_clear(&pu->rd);
        if (rc < 0) {
            GN_LOG(GN_LOG_NOTICE, DC_LOG, "bad message from %s: %s", pu->peer_str,
                   gn_err_name(rc));
            gni_dcutr_core_on_stream_end(&pu->core, rc, now);
            break;
        }
        GN_LOG(GN_LOG_DEBUG, DC_LOG, "got %s with %zu address(es) from %s",
               gni_dcutr_type_name((int)m.type), m.naddrs, pu->peer_str);
        gni_dcutr_core_on_msg(&pu->core, &m, now);
        gni_dcutr_msg_clear(&m);
        punch_run(pu); /* sends before the next message is read */
    }
    punch_run(pu);
}

static void punch_on_eof(gn_stream *s, void *ud)
{
    (void)s;
    dc_punch *pu = ud;
    gni_dcutr_core_on_stream_end(&pu->core, GN_EEOF, pu_now(pu));
    punch_run(pu);
}

static void punch_on_error(gn_stream *s, void *ud, int err)
{
    (void)s;
    dc_punch *pu = ud;
    gni_dcutr_core_on_stream_end(&pu->core, err, pu_now(pu));
    punch_run(pu);
}

static const gn_stream_handler punch_handler = {
    .on_data = punch_on_data,
    .on_eof = punch_on_eof,
    .on_error = punch_on_error,
};

static int punch_attach(dc_punch *pu, gn_stream *s)
{
    pu->s = s;
    gn_stream_set_handler(s, &punch_handler, pu);
    return gn_stream_read_start(s);
}

/* ---- the dials ---- */

static void punch_dialled(void *arg, int status, gn_channel *ch)
{
    (void)ch;
    dc_dial *d = arg;
    dc_punch *pu = d->pu;
    d->op = NULL;
    d->busy = false;
    pu->dials_out--;
    if (!pu->finished) {
        if (status == 0) {
            gni_dcutr_core_on_dial(&pu->core, d->attempt, 0, pu_now(pu));
        } else if (d->attempt == pu->round_attempt && pu->round_left > 0) {
            pu->round_err = status;
            if (--pu->round_left == 0) {
                gni_dcutr_core_on_dial(&pu->core, d->attempt, status, pu_now(pu));
            }
        }
        punch_run(pu);
    }
    punch_maybe_free(pu);
}

/* Dials every usable address of the peer at once; the round's result goes
 * to the core when one succeeds or all failed. */
static void punch_dial(dc_punch *pu, const gni_dcutr_action *a)
{
    dcutr_comp *dc = pu->dc;
    gn_multiaddr *const *addrs;
    size_t n = gni_dcutr_core_peer_addrs(&pu->core, &addrs);
    uint32_t flags = GN_HOST_CONNECT_NO_REUSE | GN_HOST_CONNECT_DIRECT |
                     (a->as_responder ? GN_HOST_CONNECT_RESPONDER : 0);
    char p2p[96];
    gn_multiaddr *tail = NULL;
    int rc = 0;
    snprintf(p2p, sizeof p2p, "/p2p/%s", pu->peer_str);
    if (gn_multiaddr_parse(p2p, &tail) < 0) {
        tail = NULL;
    }
    pu->round_attempt = a->attempt;
    pu->round_left = 0;
    pu->round_err = GN_ENOROUTE;
    dc->dial_rounds++;
    /* the addresses dialled this round, without their /p2p/ part */
    gn_multiaddr *done[GNI_DCUTR_ADDRS_MAX];
    size_t ndone = 0;
    for (size_t i = 0; i < n && tail; i++) {
        /* some implementations (js-libp2p) send their addresses with a
         * trailing /p2p/<id>: dial the address without it, with ours */
        gn_multiaddr *bare = NULL;
        if (gn_multiaddr_find(addrs[i], GN_MA_P2P, NULL) < 0) {
            rc = gn_multiaddr_dup(addrs[i], &bare);
        } else {
            rc = gn_multiaddr_decapsulate_code(addrs[i], GN_MA_P2P, &bare);
        }
        bool skip = rc < 0 || !gni_dcutr_addr_usable(bare, dc->allow_private) ||
                    gn_multiaddr_find(bare, GN_MA_P2P, NULL) >= 0;
        for (size_t k = 0; !skip && k < ndone; k++) {
            skip = gn_multiaddr_equal(done[k], bare);
        }
        if (skip) {
            gn_multiaddr_free(bare);
            continue;
        }
        done[ndone++] = bare;
        dc_dial *d = NULL;
        for (unsigned k = 0; k < GNI_DCUTR_ADDRS_MAX && !d; k++) {
            d = pu->dials[k].busy ? NULL : &pu->dials[k];
        }
        if (!d) {
            break;
        }
        gn_multiaddr *full = NULL;
        if ((rc = gn_multiaddr_encapsulate(bare, tail, &full)) < 0) {
            continue;
        }
        d->pu = pu;
        d->attempt = a->attempt;
        d->op = NULL;
        char s[160];
        if (gn_multiaddr_to_string(bare, s, sizeof s) < 0) {
            strcpy(s, "?");
        }
        rc = gn_host_connect_ex(dc->h, full, flags, punch_dialled, d, &d->op);
        gn_multiaddr_free(full);
        if (rc < 0) {
            GN_LOG(GN_LOG_DEBUG, DC_LOG, "dial %s of %s: %s", s, pu->peer_str, gn_err_name(rc));
            pu->round_err = rc;
            d->op = NULL;
            continue;
        }
        GN_LOG(GN_LOG_DEBUG, DC_LOG, "attempt %u: dialling %s of %s as %s", a->attempt, s,
               pu->peer_str, a->as_responder ? "responder" : "initiator");
        d->busy = true;
        pu->dials_out++;
        pu->round_left++;
    }
    gn_multiaddr_free(tail);
    for (size_t k = 0; k < ndone; k++) {
        gn_multiaddr_free(done[k]);
    }
    if (pu->round_left == 0) {
        gni_dcutr_core_on_dial(&pu->core, a->attempt, pu->round_err, pu_now(pu));
    }
}

/* ---- the driver ---- */

static void punch_timer(gn_timer *t, void *arg)
{
    (void)t;
    dc_punch *pu = arg;
    gni_dcutr_core_on_timer(&pu->core, pu_now(pu));
    punch_run(pu);
    punch_maybe_free(pu);
}

/* Performs the core's actions, then arms the timer for its deadline. */
static void punch_run(dc_punch *pu)
{
    if (pu->in_run) {
        return; /* the outer run picks the new actions up */
    }
    pu->in_run = true;
    gni_dcutr_action a;
    /* bounded: every action comes from an input; a failed send or an
     * empty dial round feeds the core once more, which ends in DONE */
    for (unsigned guard = 0; guard < 64 && gni_dcutr_core_next(&pu->core, &a); guard++) {
        if (pu->finished) {
            continue;
        }
        switch (a.kind) {
        case GNI_DCUTR_ACT_SEND: {
            int rc = punch_send(pu, a.msg_type);
            if (rc < 0) {
                gni_dcutr_core_on_stream_end(&pu->core, rc, pu_now(pu));
            }
            break;
        }
        case GNI_DCUTR_ACT_DIAL:
            punch_dial(pu, &a);
            break;
        case GNI_DCUTR_ACT_DONE:
            punch_finish(pu, a.status, a.reason, a.attempt);
            break;
        }
    }
    pu->in_run = false;
    if (!pu->finished) {
        gn_time d = gni_dcutr_core_deadline(&pu->core);
        if (d == GN_TIME_INFINITY) {
            gn_timer_stop(&pu->timer);
        } else {
            gn_time now = pu_now(pu);
            if (gn_timer_start(&pu->timer, d > now ? d - now : 0, punch_timer, pu) < 0) {
                punch_finish(pu, GN_ENOMEM, "cannot arm the timer", pu->core.attempt);
            }
        }
    }
}

static dc_punch *punch_new(dcutr_comp *dc, gn_channel *ch, const gn_peer_id *peer,
                           gni_dcutr_role role)
{
    if (dc->npunches >= DC_PUNCHES_MAX) {
        GN_LOG(GN_LOG_NOTICE, DC_LOG, "%u hole punches in progress: refusing another",
               DC_PUNCHES_MAX);
        return NULL;
    }
    dc_punch *pu = gn_calloc(1, sizeof *pu);
    if (!pu) {
        return NULL;
    }
    pu->dc = dc;
    pu->loop = gn_host_loop(dc->h);
    pu->peer = *peer;
    if (gn_peer_id_to_string(peer, pu->peer_str, sizeof pu->peer_str) < 0) {
        strcpy(pu->peer_str, "?");
    }
    gni_dcutr_config cfg = {.attempts = dc->attempts};
    if (gni_dcutr_core_init(&pu->core, role, &cfg, pu_now(pu)) < 0) {
        gn_free(pu);
        return NULL;
    }
    pu->relayed = gn_channel_hold(ch);
    gni_lp_reader_init(&pu->rd, GNI_DCUTR_MSG_MAX);
    gn_timer_init(gn_host_loop(dc->h), &pu->timer);
    pu->next = dc->punches;
    dc->punches = pu;
    dc->npunches++;
    dc->started++;
    if (dc->test_all_limited && !dc_seen(dc, peer)) {
        dc->seen[dc->nseen++ % DC_SEEN_MAX] = *peer;
    }
    return pu;
}

/* ---- role A: the inbound stream ---- */

static void dc_on_stream(gn_protocol *p, gn_stream *s, const gn_protocol_stream_info *info)
{
    dcutr_comp *dc = p->state;
    dc_punch *pu = dc->stopped ? NULL : punch_new(dc, info->channel, &info->remote_peer,
                                                  GNI_DCUTR_ROLE_A);
    if (!pu) {
        gn_stream_reset(s, NULL, NULL);
        return;
    }
    GN_LOG(GN_LOG_DEBUG, DC_LOG, "hole punch requested by %s", pu->peer_str);
    if (punch_attach(pu, s) < 0) {
        punch_finish(pu, GN_ECLOSED, "the stream closed at once", 1);
    }
    punch_run(pu);
    punch_maybe_free(pu);
}

/* ---- role B: we start on a relayed channel we accepted ---- */

static void punch_opened(void *arg, int status, gn_stream *s)
{
    dc_punch *pu = arg;
    pu->opening = false;
    if (status == 0 && pu->finished) {
        gn_stream_reset(s, NULL, NULL);
    } else if (status == 0) {
        if (punch_attach(pu, s) < 0) {
            gni_dcutr_core_on_stream_end(&pu->core, GN_ECLOSED, pu_now(pu));
        }
        punch_run(pu); /* the first CONNECT */
    } else if (!pu->finished) {
        punch_finish(pu, status, "the peer does not speak /libp2p/dcutr on the relayed channel",
                     1);
    }
    punch_maybe_free(pu);
}

static void dc_maybe_start(dcutr_comp *dc, gn_channel *ch, const gn_peer_id *peer)
{
    gn_channel_info info;
    if (!ch || gn_channel_state_get(ch, &info) != GN_CHANNEL_OPEN ||
        info.direction != GN_DIR_INBOUND || !dc_relayed(dc, ch, peer) || dc_find(dc, peer)) {
        return;
    }
    const gn_multiaddr *mine[GNI_DCUTR_ADDRS_MAX];
    if (our_addrs(dc, mine) == 0) {
        GN_LOG(GN_LOG_INFO, DC_LOG,
               "no public address of ours to offer: no hole punch over the relayed channel");
        return;
    }
    dc_punch *pu = punch_new(dc, ch, peer, GNI_DCUTR_ROLE_B);
    if (!pu) {
        return;
    }
    /* the core queued the first CONNECT: it waits for the stream */
    pu->opening = true;
    int rc = gn_channel_open_stream(ch, GNI_DCUTR_PROTOCOL_ID, punch_opened, pu);
    if (rc < 0) {
        pu->opening = false;
        punch_finish(pu, rc, "cannot open a stream", 1);
        punch_maybe_free(pu);
        return;
    }
    GN_LOG(GN_LOG_DEBUG, DC_LOG, "starting a hole punch with %s", pu->peer_str);
}

static void dc_on_event(void *arg, const gn_host_event *ev)
{
    dcutr_comp *dc = arg;
    if (dc->stopped || !ev->peer || !ev->ch) {
        return;
    }
    if (ev->type == GN_HOST_EV_IDENTIFIED) {
        dc_maybe_start(dc, ev->ch, ev->peer);
        return;
    }
    if (ev->type == GN_HOST_EV_CONNECTED) {
        dc_punch *pu = dc_find(dc, ev->peer);
        if (pu && !pu->finished && ev->ch != pu->relayed && !dc_relayed_addr(ev->ch)) {
            gni_dcutr_core_on_direct(&pu->core, pu_now(pu));
            punch_run(pu);
            punch_maybe_free(pu);
        }
    }
}

/* ---- the component ---- */

static void dc_fini(gn_protocol *p);

static int dc_start(gn_protocol *p)
{
    dcutr_comp *dc = p->state;
    dc_fini(p); /* a restarted node reads its options afresh */
    dc->stopped = false;
    dc->p = p;
    dc->h = p->host;
    dc->allow_private = dc_opt_true(p->host, "allow_private");
    dc->test_all_limited = dc_opt_true(p->host, "test_treat_all_limited");
    dc->attempts = GNI_DCUTR_ATTEMPTS_MAX;
    const char *v = gn_host_option(p->host, "dcutr", "attempts", 0);
    if (v) {
        char *end;
        unsigned long x = strtoul(v, &end, 10);
        if (*v < '0' || *v > '9' || *end || x < 1 || x > GNI_DCUTR_ATTEMPTS_MAX) {
            GN_LOG(GN_LOG_ERR, DC_LOG, "dcutr.attempts=%s: want 1 to %u", v,
                   GNI_DCUTR_ATTEMPTS_MAX);
            return GN_EINVAL;
        }
        dc->attempts = (unsigned)x;
    }
    for (size_t i = 0; (v = gn_host_option(p->host, "dcutr", "addr", i)); i++) {
        gn_multiaddr *ma = NULL;
        int rc = i < GNI_DCUTR_ADDRS_MAX ? gn_multiaddr_parse(v, &ma) : GN_ELIMIT;
        if (rc < 0) {
            GN_LOG(GN_LOG_ERR, DC_LOG, "dcutr.addr=%s: %s (at most %u valid multiaddrs)", v,
                   gn_err_name(rc), GNI_DCUTR_ADDRS_MAX);
            return rc;
        }
        dc->addrs[dc->naddrs++] = ma;
    }
    if (dc->test_all_limited) {
        GN_LOG(GN_LOG_WARNING, DC_LOG,
               "dcutr.test_treat_all_limited is set: a test option, never for real nodes");
    }
    return gn_host_subscribe(p->host, GN_HOST_EV_IDENTIFIED | GN_HOST_EV_CONNECTED, dc_on_event,
                             dc, &dc->sub);
}

static void dc_stop(gn_protocol *p)
{
    dcutr_comp *dc = p->state;
    dc->stopped = true;
    gn_host_unsubscribe(dc->sub);
    dc->sub = NULL;
    dc_stop_all(dc);
    GN_LOG(GN_LOG_DEBUG, DC_LOG,
           "stopped: %llu hole punches (%llu ok, %llu failed), %llu dial rounds",
           (unsigned long long)dc->started, (unsigned long long)dc->succeeded,
           (unsigned long long)dc->failed, (unsigned long long)dc->dial_rounds);
}

static void dc_fini(gn_protocol *p)
{
    dcutr_comp *dc = p->state;
    for (size_t i = 0; i < dc->naddrs; i++) {
        gn_multiaddr_free(dc->addrs[i]);
    }
    dc->naddrs = 0;
}

static const gn_protocol_ops dcutr_ops = {
    .abi = GN_PROTOCOL_ABI,
    .name = GNI_DCUTR_PROTOCOL_ID,
    .flags = GN_LAYER_F_EXPLICIT_ONLY | GN_LAYER_F_LIMITED_OK,
    .state_size = sizeof(dcutr_comp),
    .fini = dc_fini,
    .start = dc_start,
    .stop = dc_stop,
    .on_stream = dc_on_stream,
};

int gn_protocol_dcutr_register(gn_registry *reg);
int gn_protocol_dcutr_register(gn_registry *reg)
{
    return gn_registry_add(reg, GN_LAYER_PROTOCOL, (const gn_layer_ops *)&dcutr_ops);
}
