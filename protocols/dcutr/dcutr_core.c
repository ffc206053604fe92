/*
 * golemnet - one DCUtR hole punch, sans-I/O (dcutr_core.h).
 * Spec: libp2p/specs relay/DCUtR.md "The Protocol".
 */
#include "dcutr_core.h"

#include "golemnet/err.h"

#include <string.h>

enum {
    DC_B_CONNECT_SENT = 1, /* B: CONNECT sent, waiting for A's (RTT clock runs) */
    DC_B_SYNC_WAIT,        /* B: SYNC sent, waiting RTT/2 before dialling */
    DC_B_DIALLING,         /* B: dialled, waiting for the result */
    DC_A_WAIT_CONNECT,     /* A: waiting for B's CONNECT */
    DC_A_WAIT_SYNC,        /* A: answered, waiting for the SYNC */
    DC_A_DIALLING,         /* A: dialled; a new CONNECT (B's retry) may come meanwhile */
    DC_DONE
};

static void push(gni_dcutr_core *c, const gni_dcutr_action *a)
{
    /* At most SEND+DIAL+DONE follow one input; the queue holds four and
     * the adapter drains it after every input. */
    if (c->qlen == GNI_DCUTR_QUEUE_MAX) {
        return;
    }
    c->q[(c->qhead + c->qlen) % GNI_DCUTR_QUEUE_MAX] = *a;
    c->qlen++;
}

static void push_send(gni_dcutr_core *c, gni_dcutr_type t)
{
    gni_dcutr_action a = {.kind = GNI_DCUTR_ACT_SEND, .msg_type = t, .attempt = c->attempt};
    push(c, &a);
}

static void push_dial(gni_dcutr_core *c, gn_time now)
{
    gni_dcutr_action a = {.kind = GNI_DCUTR_ACT_DIAL,
                          .as_responder = c->role == GNI_DCUTR_ROLE_A,
                          .attempt = c->attempt};
    c->dialling = true;
    c->dial_attempt = c->attempt;
    c->deadline = now + c->cfg.dial_timeout;
    push(c, &a);
}

static void finish(gni_dcutr_core *c, int status, const char *reason)
{
    if (c->state == DC_DONE) {
        return;
    }
    gni_dcutr_action a = {.kind = GNI_DCUTR_ACT_DONE, .attempt = c->attempt, .status = status,
                          .reason = reason};
    c->state = DC_DONE;
    c->deadline = GN_TIME_INFINITY;
    push(c, &a);
}

/* B: a new attempt on the same stream (spec step 6 back to step 2). */
static void b_connect(gni_dcutr_core *c, gn_time now)
{
    c->state = DC_B_CONNECT_SENT;
    c->sent_at = now;
    c->deadline = now + c->cfg.msg_timeout;
    push_send(c, GNI_DCUTR_CONNECT);
}

int gni_dcutr_core_init(gni_dcutr_core *c, gni_dcutr_role role, const gni_dcutr_config *cfg,
                        gn_time now)
{
    if (!c || (role != GNI_DCUTR_ROLE_A && role != GNI_DCUTR_ROLE_B)) {
        return GN_EINVAL;
    }
    gni_dcutr_config d = {0};
    if (cfg) {
        d = *cfg;
    }
    if (d.attempts > GNI_DCUTR_ATTEMPTS_MAX) {
        return GN_EINVAL;
    }
    memset(c, 0, sizeof *c);
    c->role = role;
    c->cfg.attempts = d.attempts ? d.attempts : GNI_DCUTR_ATTEMPTS_MAX;
    c->cfg.msg_timeout = d.msg_timeout ? d.msg_timeout : GNI_DCUTR_MSG_TIMEOUT_DEFAULT;
    c->cfg.dial_timeout = d.dial_timeout ? d.dial_timeout : GNI_DCUTR_DIAL_TIMEOUT_DEFAULT;
    c->attempt = 1;
    c->last_err = 0;
    if (role == GNI_DCUTR_ROLE_B) {
        b_connect(c, now);
    } else {
        c->state = DC_A_WAIT_CONNECT;
        c->deadline = now + c->cfg.msg_timeout;
    }
    return 0;
}

void gni_dcutr_core_fini(gni_dcutr_core *c)
{
    if (c) {
        gni_dcutr_msg_clear(&c->peer);
    }
}

/* Keeps @m's addresses as the peer's (the last CONNECT wins). */
static void take_addrs(gni_dcutr_core *c, gni_dcutr_msg *m)
{
    gni_dcutr_msg_clear(&c->peer);
    c->peer = *m;
    memset(m, 0, sizeof *m);
}

void gni_dcutr_core_on_msg(gni_dcutr_core *c, gni_dcutr_msg *m, gn_time now)
{
    if (c->state == DC_DONE) {
        gni_dcutr_msg_clear(m);
        return;
    }
    gni_dcutr_type t = m->type;
    switch (c->state) {
    case DC_B_CONNECT_SENT:
        if (t != GNI_DCUTR_CONNECT) {
            finish(c, GN_EPROTO, "the peer answered CONNECT with SYNC");
            break;
        }
        take_addrs(c, m);
        if (c->peer.naddrs == 0) {
            finish(c, GN_ENOROUTE, "the peer sent no address to dial");
            break;
        }
        c->rtt = now - c->sent_at;
        c->state = DC_B_SYNC_WAIT;
        c->deadline = now + c->rtt / 2;
        push_send(c, GNI_DCUTR_SYNC);
        break;
    case DC_A_WAIT_CONNECT:
    case DC_A_DIALLING:
        if (t != GNI_DCUTR_CONNECT) {
            finish(c, GN_EPROTO, "the peer sent SYNC before CONNECT");
            break;
        }
        if (c->state == DC_A_DIALLING) {
            /* B's retry while our dial of the last attempt is still out */
            if (c->attempt >= c->cfg.attempts) {
                finish(c, GN_EPROTO, "the peer retried more often than the spec allows");
                break;
            }
            c->attempt++;
        }
        take_addrs(c, m);
        c->state = DC_A_WAIT_SYNC;
        c->deadline = now + c->cfg.msg_timeout;
        push_send(c, GNI_DCUTR_CONNECT);
        break;
    case DC_A_WAIT_SYNC:
        if (t != GNI_DCUTR_SYNC) {
            finish(c, GN_EPROTO, "the peer sent CONNECT instead of SYNC");
            break;
        }
        if (c->peer.naddrs == 0) {
            /* nothing to dial; B dials us, and a direct channel it makes
             * still counts (on_direct) */
            c->state = DC_A_DIALLING;
            c->dialling = false;
            c->dial_attempt = c->attempt;
            c->deadline = now + c->cfg.dial_timeout;
            break;
        }
        c->state = DC_A_DIALLING;
        push_dial(c, now);
        break;
    default: /* B waiting or dialling: A has nothing to say */
        finish(c, GN_EPROTO, "unexpected message from the peer");
        break;
    }
    gni_dcutr_msg_clear(m);
}

/* The current attempt's dial failed with @err (or timed out). */
static void attempt_failed(gni_dcutr_core *c, int err, gn_time now)
{
    c->last_err = err;
    c->dialling = false;
    if (c->attempt >= c->cfg.attempts) {
        finish(c, err < 0 ? err : GN_EUNREACHABLE, "every attempt's direct dial failed");
        return;
    }
    if (c->role == GNI_DCUTR_ROLE_B) {
        c->attempt++;
        b_connect(c, now);
    } else {
        c->attempt++;
        c->state = DC_A_WAIT_CONNECT; /* B retries */
        c->deadline = now + c->cfg.msg_timeout;
    }
}

void gni_dcutr_core_on_dial(gni_dcutr_core *c, unsigned attempt, int status, gn_time now)
{
    if (c->state == DC_DONE) {
        return;
    }
    if (status == 0) {
        finish(c, 0, "direct connection established");
        return;
    }
    if (!c->dialling || attempt != c->dial_attempt) {
        return; /* superseded (A: B retried meanwhile) */
    }
    c->dialling = false;
    bool current = (c->role == GNI_DCUTR_ROLE_B && c->state == DC_B_DIALLING) ||
                   (c->role == GNI_DCUTR_ROLE_A && c->state == DC_A_DIALLING);
    if (current) {
        attempt_failed(c, status, now);
    }
}

void gni_dcutr_core_on_direct(gni_dcutr_core *c, gn_time now)
{
    (void)now;
    finish(c, 0, "direct connection established");
}

void gni_dcutr_core_on_stream_end(gni_dcutr_core *c, int status, gn_time now)
{
    (void)now;
    if (c->state == DC_DONE) {
        return;
    }
    bool dial_ahead = (c->role == GNI_DCUTR_ROLE_A && c->state == DC_A_DIALLING && c->dialling) ||
                      (c->role == GNI_DCUTR_ROLE_B &&
                       (c->state == DC_B_SYNC_WAIT || (c->state == DC_B_DIALLING && c->dialling)));
    if (dial_ahead) {
        /* the peer finished first (its dial failed for good, or it
         * succeeded); this attempt's dial still decides, but no retry can
         * follow on a closed stream */
        c->cfg.attempts = c->attempt;
        return;
    }
    finish(c, status < 0 && status != GN_EEOF ? status : GN_ECONNRESET,
           "the hole punch stream ended before a direct connection");
}

void gni_dcutr_core_on_timer(gni_dcutr_core *c, gn_time now)
{
    if (c->state == DC_DONE || c->deadline == GN_TIME_INFINITY || now < c->deadline) {
        return;
    }
    switch (c->state) {
    case DC_B_SYNC_WAIT:
        c->state = DC_B_DIALLING;
        push_dial(c, now);
        break;
    case DC_B_DIALLING:
    case DC_A_DIALLING:
        attempt_failed(c, GN_ETIMEDOUT, now);
        break;
    case DC_B_CONNECT_SENT:
        finish(c, GN_ETIMEDOUT, "no CONNECT answer from the peer in time");
        break;
    case DC_A_WAIT_CONNECT:
        finish(c, c->attempt > 1 && c->last_err ? c->last_err : GN_ETIMEDOUT,
               c->attempt > 1 ? "the direct dial failed and the peer did not retry"
                              : "no CONNECT from the peer in time");
        break;
    case DC_A_WAIT_SYNC:
        finish(c, GN_ETIMEDOUT, "no SYNC from the peer in time");
        break;
    default:
        break;
    }
}

gn_time gni_dcutr_core_deadline(const gni_dcutr_core *c)
{
    return c->state == DC_DONE ? GN_TIME_INFINITY : c->deadline;
}

bool gni_dcutr_core_next(gni_dcutr_core *c, gni_dcutr_action *out)
{
    if (c->qlen == 0) {
        return false;
    }
    *out = c->q[c->qhead];
    c->qhead = (c->qhead + 1) % GNI_DCUTR_QUEUE_MAX;
    c->qlen--;
    return true;
}

bool gni_dcutr_core_done(const gni_dcutr_core *c)
{
    return c->state == DC_DONE;
}

size_t gni_dcutr_core_peer_addrs(const gni_dcutr_core *c, gn_multiaddr *const **out)
{
    *out = c->peer.addrs;
    return c->peer.naddrs;
}

/* ---- address filter ---- */

static bool ip4_private(const uint8_t a[4])
{
    return a[0] == 10 || a[0] == 127 || (a[0] == 172 && (a[1] & 0xf0) == 16) ||
           (a[0] == 192 && a[1] == 168) || (a[0] == 169 && a[1] == 254) ||
           (a[0] == 100 && (a[1] & 0xc0) == 64);
}

static bool ip6_private(const uint8_t a[16])
{
    static const uint8_t loop6[16] = {[15] = 1};
    return memcmp(a, loop6, 16) == 0 || (a[0] & 0xfe) == 0xfc ||
           (a[0] == 0xfe && (a[1] & 0xc0) == 0x80);
}

bool gni_dcutr_addr_usable(const gn_multiaddr *ma, bool allow_private)
{
    gn_ma_component c;
    if (!ma || gn_multiaddr_find(ma, GN_MA_P2P_CIRCUIT, NULL) >= 0 ||
        gn_multiaddr_component(ma, 0, &c) < 0) {
        return false;
    }
    switch (c.code) {
    case GN_MA_IP4: {
        static const uint8_t any4[4];
        if (c.value_len != 4 || memcmp(c.value, any4, 4) == 0) {
            return false;
        }
        return allow_private || !ip4_private(c.value);
    }
    case GN_MA_IP6: {
        static const uint8_t any6[16];
        if (c.value_len != 16 || memcmp(c.value, any6, 16) == 0) {
            return false;
        }
        return allow_private || !ip6_private(c.value);
    }
    case GN_MA_DNS:
    case GN_MA_DNS4:
    case GN_MA_DNS6:
        return true;
    default:
        return false;
    }
}
