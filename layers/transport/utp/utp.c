/*
 * golemnet - uTP (BEP 29) sans-I/O core with LEDBAT (RFC 6817).
 *
 * See utp.h for the contract. Invariants kept here:
 * - out[] holds the packets sent (or queued for resend) and not yet acked,
 *   indexed by seq % GNI_UTP_SLOTS; they span [out_oldest, seq_nr), nout of
 *   them, and nout < GNI_UTP_SLOTS. A slot inside that span with used=false
 *   was acked selectively.
 * - inflight counts the payload bytes of used slots not marked need_resend
 *   (what is on the wire as far as we know).
 * - A sent packet's payload stays in the send ring (sbuf) until every
 *   packet before it is acked too: the ring holds, in order, the retained
 *   bytes [spos_tail, spos_sent) (byte counters since the start, position
 *   % send_buf_max) and then the slen unsent ones; an out[] slot names its
 *   payload by its counter (pos). spos_tail is the pos of the oldest used
 *   slot (spos_sent when none), and (spos_sent - spos_tail) + slen <=
 *   send_buf_max. No allocation or copy per packet on the send side.
 * - in[] holds packets received out of order, seq in (ack_nr+1, ack_nr+SLOTS).
 *   rlen + reorder_bytes <= recv_buf_max, and the advertised window is the
 *   difference, so a peer that respects it never makes us drop data. A
 *   packet out of order is taken only if one largest packet's room stays
 *   free beside it, so the packet at ack_nr + 1 always fits once the
 *   application has read (held data alone can never shut the window).
 * - The oldest unacked packet is resent whatever the peer's window (TCP
 *   and libutp do the same): a peer whose window is shut by data held
 *   above that hole can only open it with this packet.
 * - Every loop runs at most GNI_UTP_SLOTS (or SACK-bit) times.
 */
#include "utp.h"

#include "golemnet/err.h"
#include "golemnet/log.h"

#include <string.h>

#define UTP_BASE_HISTORY 13          /* one-minute minima (libutp DELAY_BASE_HISTORY) */
#define UTP_CUR_FILTER 3             /* current-delay samples, min filter (libutp CUR_DELAY_SIZE) */
#define UTP_DUP_ACKS 3               /* libutp DUPLICATE_ACKS_BEFORE_RESEND */
#define UTP_INIT_RTO (1000 * GN_MS)  /* RFC 6298 2.1 */
#define UTP_CLOCK_G (1 * GN_MS)      /* RFC 6298 clock granularity G */
#define UTP_ZWND_PROBE (1000 * GN_MS)
#define UTP_MINUTE (60 * GN_S)
#define UTP_MAX_EXT 16

typedef struct utp_out {
    uint64_t pos;          /* payload's first byte in the send ring, as a counter */
    uint16_t len;
    uint16_t seq;
    uint8_t type;          /* ST_SYN, ST_DATA or ST_FIN */
    bool used;
    bool need_resend;
    bool fast_marked;      /* already resent by a dup-ack/SACK trigger */
    uint32_t transmissions;
    gn_time sent_at;
} utp_out;

typedef struct utp_in {
    uint8_t *data;
    uint16_t len;
    uint16_t seq;
    bool used;
    bool fin;
} utp_in;

struct gni_utp {
    gni_utp_config cfg;
    gni_utp_state state;
    int err;
    unsigned events;
    bool initiator;
    uint16_t recv_id, send_id;
    uint16_t seq_nr;       /* next sequence number to assign */
    uint16_t ack_nr;       /* last in-order sequence number received */
    uint16_t isn;          /* responder: the SYN-ACK's seq_nr, also when resent */
    size_t mss;            /* payload per packet: cfg.mss, or the smaller size offer */
    bool offer_mss;        /* put our size offer (GNI_UTP_EXT_BITS) on our SYN / SYN-ACK */

    /* send side */
    uint8_t *sbuf;         /* retained (sent, unacked) then unsent bytes, ring of send_buf_max */
    size_t shead, slen;    /* unsent: slen bytes from ring offset shead (= spos_sent % size) */
    uint64_t spos_sent;    /* bytes moved from unsent to sent, ever */
    uint64_t spos_tail;    /* oldest byte still retained for a resend */
    utp_out out[GNI_UTP_SLOTS];
    uint16_t out_oldest;
    uint32_t nout;
    uint32_t nresend;      /* used slots with need_resend */
    size_t inflight;
    bool want_writable;
    bool fin_requested, fin_sent, fin_acked;
    bool ack_pending, synack_pending, reset_pending;

    /* receive side */
    uint8_t *rbuf;         /* in-order bytes, ring of recv_buf_max */
    size_t rhead, rlen;
    utp_in in[GNI_UTP_SLOTS];
    size_t reorder_bytes;
    uint32_t reorder_cnt;
    bool got_fin, eof;
    uint16_t eof_seq;
    uint32_t last_adv_wnd;

    /* timers and RTT (RFC 6298) */
    gn_time srtt, rttvar, rto;
    bool have_rtt;
    gn_time rto_deadline;  /* 0: not armed */
    gn_time syn_start;
    gn_time last_send;
    gn_time zwnd_deadline;
    uint32_t timeouts;
    gn_time last_recv;
    gn_time rto_armed_at;  /* when the retransmission timer last (re)started */
    uint32_t reply_micro;  /* our last one-way delay sample, echoed to the peer */

    /* congestion (LEDBAT) */
    size_t cwnd, ssthresh, peer_wnd;
    bool slow_start;
    gn_time last_loss;
    bool had_loss;
    uint16_t last_ack;
    uint32_t dup_acks;
    uint32_t base_hist[UTP_BASE_HISTORY];
    size_t base_idx;
    gn_time base_minute;
    bool base_init;
    uint32_t cur_hist[UTP_CUR_FILTER];
    size_t cur_idx, cur_n;
    uint32_t base_delay, queue_delay;
    bool have_delay;

    uint64_t sent_packets, resent_packets, recv_packets, dup_packets, sack_packets;
    uint64_t rto_expiries, fast_resends;
};

/* ---- header ---------------------------------------------------------- */

static void utp_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void utp_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint16_t utp_get16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t utp_get32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

int gni_utp_hdr_encode(const gni_utp_hdr *h, uint8_t out[GNI_UTP_HDR_LEN])
{
    if (h->type > GNI_UTP_ST_SYN)
        return GN_EINVAL;
    out[0] = (uint8_t)((h->type << 4) | (h->ver & 0x0f));
    out[1] = h->ext;
    utp_put16(out + 2, h->conn_id);
    utp_put32(out + 4, h->ts_us);
    utp_put32(out + 8, h->ts_diff_us);
    utp_put32(out + 12, h->wnd);
    utp_put16(out + 16, h->seq);
    utp_put16(out + 18, h->ack);
    return GNI_UTP_HDR_LEN;
}

int gni_utp_parse(const uint8_t *pkt, size_t len, gni_utp_hdr *h)
{
    if (!pkt || len < GNI_UTP_HDR_LEN)
        return GN_EPARSE;
    h->type = (uint8_t)(pkt[0] >> 4);
    h->ver = (uint8_t)(pkt[0] & 0x0f);
    if (h->ver != GNI_UTP_VERSION || h->type > GNI_UTP_ST_SYN)
        return GN_EPARSE;
    h->ext = pkt[1];
    h->conn_id = utp_get16(pkt + 2);
    h->ts_us = utp_get32(pkt + 4);
    h->ts_diff_us = utp_get32(pkt + 8);
    h->wnd = utp_get32(pkt + 12);
    h->seq = utp_get16(pkt + 16);
    h->ack = utp_get16(pkt + 18);
    h->sack = NULL;
    h->sack_len = 0;
    h->gn_mss = 0;
    h->gn_mss_kind = 0;
    size_t pos = GNI_UTP_HDR_LEN;
    uint8_t ext = h->ext;
    for (int n = 0; ext != GNI_UTP_EXT_NONE; n++) {
        if (n >= UTP_MAX_EXT || len - pos < 2)
            return GN_EPARSE;
        uint8_t next = pkt[pos], elen = pkt[pos + 1];
        pos += 2;
        if (len - pos < elen)
            return GN_EPARSE;
        if (ext == GNI_UTP_EXT_SACK && !h->sack && elen >= 4 && elen % 4 == 0 &&
            elen <= GNI_UTP_SACK_MAX) {
            h->sack = pkt + pos;
            h->sack_len = elen;
        } else if (ext == GNI_UTP_EXT_BITS && elen == GNI_UTP_EXT_BITS_LEN &&
                   pkt[pos] == 'g' && pkt[pos + 1] == 'n' &&
                   (pkt[pos + 2] == 'O' || pkt[pos + 2] == 'A')) {
            h->gn_mss_kind = pkt[pos + 2];
            h->gn_mss = utp_get16(pkt + pos + 4);
        }
        pos += elen;
        ext = next;
    }
    return (int)pos;
}

/* ---- config, lifetime ------------------------------------------------ */

void gni_utp_config_default(gni_utp_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->mss = 1400;
    cfg->recv_buf_max = 1u << 20;
    cfg->send_buf_max = 1u << 20;
    cfg->target_delay_us = 100000;
    cfg->gain_bytes = 3000;
    cfg->md_above_target = true;
    cfg->connect_timeout = 3 * GN_S;
    cfg->min_rto = 500 * GN_MS;
    cfg->max_rto = 60 * GN_S;
    cfg->max_timeouts = 6;
    cfg->keepalive = 29 * GN_S;
}

gni_utp *gni_utp_new(const gni_utp_config *cfg)
{
    gni_utp_config c;
    if (cfg)
        c = *cfg;
    else
        gni_utp_config_default(&c);
    if (c.mss_max && (c.mss_max < c.mss || c.mss_max > GNI_UTP_MSS_LIMIT))
        return NULL;
    if (c.mss < 64 || c.mss > 1400 || c.recv_buf_max < c.mss || c.send_buf_max < c.mss ||
        c.recv_buf_max > UINT32_MAX || c.target_delay_us == 0 || c.max_timeouts == 0 ||
        c.min_rto == 0 || c.max_rto < c.min_rto)
        return NULL;
    gni_utp *u = gn_calloc(1, sizeof(*u));
    if (!u)
        return NULL;
    /* at least two packets per window either way, or larger packets would
     * stall against a small buffer */
    if (c.mss_max > c.recv_buf_max / 2)
        c.mss_max = c.recv_buf_max / 2;
    if (c.mss_max > c.send_buf_max / 2)
        c.mss_max = c.send_buf_max / 2;
    if (c.mss_max <= c.mss)
        c.mss_max = 0;
    u->cfg = c;
    u->mss = c.mss;
    u->offer_mss = c.mss_max > c.mss;
    u->sbuf = gn_malloc(c.send_buf_max);
    u->rbuf = gn_malloc(c.recv_buf_max);
    if (!u->sbuf || !u->rbuf) {
        gni_utp_free(u);
        return NULL;
    }
    u->rto = UTP_INIT_RTO;
    u->cwnd = 2 * c.mss;         /* RFC 6817 INIT_CWND = 2 MSS */
    u->ssthresh = c.recv_buf_max;
    u->slow_start = true;
    u->peer_wnd = c.recv_buf_max;
    u->last_adv_wnd = (uint32_t)c.recv_buf_max;
    return u;
}

void gni_utp_free(gni_utp *u)
{
    if (!u)
        return;
    for (size_t i = 0; i < GNI_UTP_SLOTS; i++)
        gn_free(u->in[i].data);
    gn_free(u->sbuf);
    gn_free(u->rbuf);
    gn_free(u);
}

static void utp_set_error(gni_utp *u, int err)
{
    if (u->state == GNI_UTP_ERROR)
        return;
    u->state = GNI_UTP_ERROR;
    u->err = err;
    u->events |= GNI_UTP_EV_ERROR;
    u->rto_deadline = 0;
    u->ack_pending = false;
    u->synack_pending = false;
}

void gni_utp_fail(gni_utp *u, int err)
{
    utp_set_error(u, err < 0 ? err : GN_EIO);
}

int gni_utp_icmp(gni_utp *u, const uint8_t *quoted, size_t len, int err)
{
    if (u->state != GNI_UTP_SYN_SENT && u->state != GNI_UTP_CONNECTED)
        return 0;
    if (len < GNI_UTP_HDR_LEN || (quoted[0] & 0x0f) != GNI_UTP_VERSION)
        return 0;
    uint8_t type = quoted[0] >> 4;
    uint16_t id = utp_get16(quoted + 2), seq = utp_get16(quoted + 16);
    /* ours: a SYN carries recv_id, every later packet send_id */
    if (id != (type == GNI_UTP_ST_SYN ? u->recv_id : u->send_id))
        return 0;
    /* and recent: a packet not acked yet ([out_oldest, seq_nr)) or an ack
     * (ST_STATE carries seq_nr) */
    if (gni_utp_seq_lt(seq, u->out_oldest) || gni_utp_seq_lt(u->seq_nr, seq))
        return 0;
    /* as TCP (RFC 1122 4.2.3.9): host or network unreachable is a soft
     * error on an established connection unless it is timing out already;
     * port unreachable means no one listens any more */
    if (err != GN_ECONNREFUSED && u->state == GNI_UTP_CONNECTED && u->timeouts == 0)
        return 0;
    utp_set_error(u, err < 0 ? err : GN_EIO);
    return 1;
}

static void utp_check_closed(gni_utp *u)
{
    /* our FIN acked cumulatively (a SACKed FIN may still have holes below) */
    if (u->state == GNI_UTP_CONNECTED && u->eof && u->fin_acked && u->nout == 0) {
        u->state = GNI_UTP_CLOSED;
        u->events |= GNI_UTP_EV_CLOSED;
        u->rto_deadline = 0;
    }
}

static uint32_t utp_adv_wnd(const gni_utp *u)
{
    return (uint32_t)(u->cfg.recv_buf_max - u->rlen - u->reorder_bytes);
}

static uint32_t utp_us(gn_time now)
{
    return (uint32_t)(now / GN_US);
}

/* ---- connect / accept ------------------------------------------------ */

/* The peer's size offer (0: none): with ours, both use the smaller one.
 * A responder answers the extension only when the initiator sent it. */
static void utp_take_mss_offer(gni_utp *u, uint16_t offer)
{
    if (!u->offer_mss)
        return;
    if (offer <= u->cfg.mss) {
        u->offer_mss = u->initiator;  /* an initiator's resent SYN keeps offering */
        return;
    }
    u->mss = offer < u->cfg.mss_max ? offer : u->cfg.mss_max;
    if (u->cwnd < 2 * u->mss)
        u->cwnd = 2 * u->mss;
}

/* Takes a slot for a new packet with seq_nr (nout < SLOTS - 1 checked by caller). */
static utp_out *utp_out_push(gni_utp *u, uint8_t type, uint16_t len)
{
    utp_out *p = &u->out[u->seq_nr % GNI_UTP_SLOTS];
    memset(p, 0, sizeof(*p));
    p->used = true;
    p->type = type;
    p->seq = u->seq_nr;
    p->pos = u->spos_sent;    /* its len bytes were just moved to "sent" */
    p->len = len;
    p->need_resend = true;    /* not yet sent: the send path emits it */
    u->nresend++;
    if (u->nout == 0)
        u->out_oldest = u->seq_nr;
    u->nout++;
    u->seq_nr++;
    return p;
}

int gni_utp_connect(gni_utp *u, uint16_t recv_id, uint16_t isn, gn_time now)
{
    if (u->state != GNI_UTP_IDLE)
        return GN_ESTATE;
    u->initiator = true;
    u->recv_id = recv_id;
    u->send_id = (uint16_t)(recv_id + 1);
    u->seq_nr = isn;
    u->state = GNI_UTP_SYN_SENT;
    u->syn_start = now;
    u->last_send = now;
    utp_out_push(u, GNI_UTP_ST_SYN, 0);
    return 0;
}

int gni_utp_accept(gni_utp *u, const uint8_t *syn, size_t len, uint16_t isn, gn_time now)
{
    if (u->state != GNI_UTP_IDLE)
        return GN_ESTATE;
    gni_utp_hdr h;
    if (gni_utp_parse(syn, len, &h) < 0 || h.type != GNI_UTP_ST_SYN)
        return GN_EPARSE;
    u->initiator = false;
    u->send_id = h.conn_id;
    u->recv_id = (uint16_t)(h.conn_id + 1);
    u->ack_nr = h.seq;
    u->last_ack = (uint16_t)(isn - 1);
    /* The SYN-ACK (ST_STATE) carries isn and consumes nothing: the first
     * ST_DATA reuses it (libutp; the initiator acks isn - 1). */
    u->seq_nr = isn;
    u->isn = isn;
    u->state = GNI_UTP_CONNECTED;
    u->synack_pending = true;
    u->last_send = now;
    /* libtorrent's SYN advertises wnd 0: keep our default guess until
     * the peer's first later packet says otherwise */
    if (h.wnd)
        u->peer_wnd = h.wnd;
    utp_take_mss_offer(u, h.gn_mss_kind == 'O' ? h.gn_mss : 0);
    if (h.ts_us)
        u->reply_micro = utp_us(now) - h.ts_us;
    u->recv_packets++;
    return 0;
}

/* ---- delay and congestion (RFC 6817) --------------------------------- */

/* a < b for 32-bit microsecond clocks that wrap (libutp's rule) */
static bool utp_ts_lt(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) < 0;
}

static void utp_delay_sample(gni_utp *u, uint32_t sample, gn_time now)
{
    if (!u->base_init) {
        for (size_t i = 0; i < UTP_BASE_HISTORY; i++)
            u->base_hist[i] = sample;
        u->base_minute = now;
        u->base_init = true;
    } else if (now - u->base_minute >= UTP_MINUTE) {
        u->base_idx = (u->base_idx + 1) % UTP_BASE_HISTORY;
        u->base_hist[u->base_idx] = sample;
        u->base_minute = now;
    } else if (utp_ts_lt(sample, u->base_hist[u->base_idx])) {
        u->base_hist[u->base_idx] = sample;
    }
    uint32_t base = u->base_hist[0];
    for (size_t i = 1; i < UTP_BASE_HISTORY; i++)
        if (utp_ts_lt(u->base_hist[i], base))
            base = u->base_hist[i];
    u->cur_hist[u->cur_idx] = sample;
    u->cur_idx = (u->cur_idx + 1) % UTP_CUR_FILTER;
    if (u->cur_n < UTP_CUR_FILTER)
        u->cur_n++;
    uint32_t cur = u->cur_hist[0];
    for (size_t i = 1; i < u->cur_n; i++)
        if (utp_ts_lt(u->cur_hist[i], cur))
            cur = u->cur_hist[i];
    u->base_delay = base;
    u->queue_delay = utp_ts_lt(cur, base) ? 0 : cur - base;
    u->have_delay = true;
}

static size_t utp_min_cwnd(const gni_utp *u)
{
    return 2 * u->mss;  /* RFC 6817 MIN_CWND = 2 MSS */
}

static size_t utp_max_cwnd(const gni_utp *u)
{
    return (GNI_UTP_SLOTS - 2) * u->mss;
}

/* RFC 6817 2.4.2, with libutp's gain scaling: GAIN is gain_bytes per RTT at
 * zero queuing delay, negative above target; slow start as TCP until the
 * queuing delay nears the target (libutp leaves it at 0.9 target). */
static void utp_ledbat_on_ack(gni_utp *u, size_t acked, size_t flight_before)
{
    if (acked == 0)
        return;
    int64_t cwnd = (int64_t)u->cwnd;
    int64_t target = u->cfg.target_delay_us;
    int64_t qd = u->have_delay ? (int64_t)u->queue_delay : 0;
    int64_t off = target - qd;
    if (off < -target)
        off = -target;  /* bound the decrease per ack, as libutp clamps */
    int64_t a = (int64_t)acked;
    int64_t wf_num = a < cwnd ? a : cwnd, wf_den = a > cwnd ? a : cwnd;
    int64_t gain = (int64_t)u->cfg.gain_bytes * wf_num * off / (wf_den * target);
    if (qd > target && u->cfg.md_above_target) {
        /* Multiplicative decrease above the target (LEDBAT++, draft-irtf-
         * iccrg-ledbat-plus-plus-01 section 4.2: per RTT W += max(GAIN -
         * W * (delay / target - 1), -W / 2)), applied per ack pro rata to
         * the bytes acked. RFC 6817's linear rule takes GAIN * off_target
         * MSS per RTT (libutp's gain_bytes * off_target): a few KB per
         * RTT against the hundreds of KB a window holds, so uTP took tens
         * of seconds to give way to a TCP flow that had filled the queue
         * past the target (test/netns/utp_ledbat_test.sh). This way the
         * window shrinks by the fraction the delay exceeds the target, at
         * most by half per RTT. */
        int64_t dec = a * (qd - target) / target;
        if (dec > a / 2)
            dec = a / 2;
        int64_t g = (int64_t)u->cfg.gain_bytes * wf_num / wf_den;
        gain = g - dec > -(a / 2) ? g - dec : -(a / 2);
    }
    int64_t next = cwnd + gain;
    if (u->slow_start) {
        int64_t ss = cwnd + a;
        if (qd * 10 > target * 9) {
            u->slow_start = false;
            u->ssthresh = u->cwnd;
        } else if ((size_t)ss > u->ssthresh) {
            u->slow_start = false;
            if ((int64_t)u->ssthresh > next)
                next = (int64_t)u->ssthresh;  /* up to the threshold, not short of it */
        } else if (ss > next) {
            next = ss;
        }
    }
    /* ALLOWED_INCREASE = 1 MSS over the flight before this ack */
    int64_t cap = (int64_t)flight_before + (int64_t)u->mss;
    if (cap < cwnd)
        cap = cwnd;
    if (next > cap)
        next = cap;
    if (next < (int64_t)utp_min_cwnd(u))
        next = (int64_t)utp_min_cwnd(u);
    if (next > (int64_t)utp_max_cwnd(u))
        next = (int64_t)utp_max_cwnd(u);
    u->cwnd = (size_t)next;
}

static void utp_on_loss(gni_utp *u, gn_time now)
{
    gn_time rtt = u->have_rtt ? u->srtt : u->rto;
    if (u->had_loss && now - u->last_loss < rtt)
        return;  /* once per RTT (RFC 6817 2.4.2) */
    u->had_loss = true;
    u->last_loss = now;
    size_t half = u->cwnd / 2;
    if (half < utp_min_cwnd(u))
        half = utp_min_cwnd(u);
    if (half < u->cwnd)
        u->cwnd = half;
    u->ssthresh = u->cwnd;
    u->slow_start = false;
}

static void utp_rtt_sample(gni_utp *u, gn_time r)
{
    if (!u->have_rtt) {
        u->srtt = r;
        u->rttvar = r / 2;
        u->have_rtt = true;
    } else {
        gn_time d = u->srtt > r ? u->srtt - r : r - u->srtt;
        u->rttvar = (3 * u->rttvar + d) / 4;
        u->srtt = (7 * u->srtt + r) / 8;
    }
    gn_time k = 4 * u->rttvar;
    u->rto = u->srtt + (k > UTP_CLOCK_G ? k : UTP_CLOCK_G);
    if (u->rto < u->cfg.min_rto)
        u->rto = u->cfg.min_rto;
    if (u->rto > u->cfg.max_rto)
        u->rto = u->cfg.max_rto;
}

/* ---- acks ------------------------------------------------------------ */

static void utp_mark_resend(gni_utp *u, utp_out *p)
{
    if (!p->used || p->need_resend)
        return;
    p->need_resend = true;
    u->nresend++;
    u->inflight -= p->len;
}

/* Acks one packet; returns its payload length + 1 (so a bare SYN/FIN counts). */
static size_t utp_ack_one(gni_utp *u, uint16_t seq, gn_time now)
{
    utp_out *p = &u->out[seq % GNI_UTP_SLOTS];
    if (!p->used || p->seq != seq)
        return 0;
    if (p->transmissions == 1)
        utp_rtt_sample(u, now - p->sent_at);  /* Karn: never from a resent packet */
    if (p->need_resend)
        u->nresend--;
    else
        u->inflight -= p->len;
    if (p->type == GNI_UTP_ST_FIN)
        u->fin_acked = true;
    size_t n = (size_t)p->len + 1;
    memset(p, 0, sizeof(*p));
    return n;
}

/* Releases the ring bytes before the oldest packet still unacked (a
 * SACKed packet's bytes wait for those before it). The scan stops at the
 * first used slot: the oldest, unless the peer SACKed past a hole it then
 * filled, so it is short. */
static void utp_send_release(gni_utp *u)
{
    uint64_t tail = u->spos_sent;
    for (uint32_t i = 0; i < u->nout; i++) {
        const utp_out *p = &u->out[(uint16_t)(u->out_oldest + i) % GNI_UTP_SLOTS];
        if (p->used) {
            tail = p->pos;
            break;
        }
    }
    u->spos_tail = tail;
}

/* Bytes the send ring holds: retained for resend plus unsent. */
static size_t utp_send_used(const gni_utp *u)
{
    return (size_t)(u->spos_sent - u->spos_tail) + u->slen;
}

static void utp_trim_oldest(gni_utp *u)
{
    while (u->nout > 0 && !u->out[u->out_oldest % GNI_UTP_SLOTS].used) {
        u->out_oldest++;
        u->nout--;
    }
}

static void utp_process_ack(gni_utp *u, const gni_utp_hdr *h, gn_time now)
{
    /* acceptable: out_oldest - 1 .. seq_nr - 1 */
    uint16_t behind = (uint16_t)(u->seq_nr - 1 - h->ack);
    if (behind > u->nout)
        return;
    size_t flight_before = u->inflight;
    size_t newly = 0;
    bool loss = false;
    while (u->nout > 0 && !gni_utp_seq_lt(h->ack, u->out_oldest)) {
        newly += utp_ack_one(u, u->out_oldest, now);
        u->out_oldest++;
        u->nout--;
    }
    if (h->sack)
        u->sack_packets++;
    if (h->sack && u->nout > 0) {
        int bits = h->sack_len * 8;
        int sacked_above = 0;
        /* from the highest bit down: a packet with >= 3 SACKed packets
         * above it is taken as lost (libutp) */
        for (int i = bits - 1; i >= -1; i--) {
            uint16_t seq = (uint16_t)(h->ack + 2 + i);
            bool set = i >= 0 && (h->sack[i / 8] >> (i % 8)) & 1;
            uint16_t off = (uint16_t)(seq - u->out_oldest);
            if (off >= u->nout)
                continue;
            utp_out *p = &u->out[seq % GNI_UTP_SLOTS];
            if (set) {
                sacked_above++;
                newly += utp_ack_one(u, seq, now);
            } else if (p->used && sacked_above >= UTP_DUP_ACKS && !p->fast_marked &&
                       !p->need_resend) {
                p->fast_marked = true;
                utp_mark_resend(u, p);
                u->fast_resends++;
                loss = true;
            }
        }
        utp_trim_oldest(u);
    }
    if (newly == 0 && h->type == GNI_UTP_ST_STATE && h->ack == u->last_ack && u->nout > 0) {
        if (++u->dup_acks >= UTP_DUP_ACKS) {
            utp_out *p = &u->out[u->out_oldest % GNI_UTP_SLOTS];
            if (p->used && !p->fast_marked && !p->need_resend) {
                p->fast_marked = true;
                utp_mark_resend(u, p);
                u->fast_resends++;
                loss = true;
            }
        }
    } else if (newly > 0) {
        u->dup_acks = 0;
    }
    u->last_ack = h->ack;
    if (loss)
        utp_on_loss(u, now);
    /* the ring bytes before the oldest unacked packet are free again (also
     * when a cumulative ack only passed packets SACKed earlier) */
    utp_send_release(u);
    if (u->want_writable && utp_send_used(u) < u->cfg.send_buf_max) {
        u->want_writable = false;
        u->events |= GNI_UTP_EV_WRITABLE;
    }
    if (newly > 0) {
        u->timeouts = 0;
        u->rto_deadline = u->nout > 0 ? now + u->rto : 0;
        u->rto_armed_at = now;
        utp_ledbat_on_ack(u, newly, flight_before);
        utp_check_closed(u);
    }
}

/* ---- incoming data --------------------------------------------------- */

static void utp_ring_put(uint8_t *ring, size_t cap, size_t head, size_t used, const uint8_t *d,
                         size_t n)
{
    size_t tail = (head + used) % cap;
    size_t first = cap - tail < n ? cap - tail : n;
    memcpy(ring + tail, d, first);
    memcpy(ring, d + first, n - first);
}

static void utp_ring_get(const uint8_t *ring, size_t cap, size_t head, uint8_t *d, size_t n)
{
    size_t first = cap - head < n ? cap - head : n;
    memcpy(d, ring + head, first);
    memcpy(d + first, ring, n - first);
}

static void utp_deliver(gni_utp *u, const uint8_t *d, size_t n, bool fin)
{
    u->ack_nr++;
    if (fin) {
        u->eof = true;
        u->events |= GNI_UTP_EV_EOF;
        return;
    }
    if (n) {
        utp_ring_put(u->rbuf, u->cfg.recv_buf_max, u->rhead, u->rlen, d, n);
        u->rlen += n;
        u->events |= GNI_UTP_EV_READABLE;
    }
}

static void utp_process_data(gni_utp *u, const gni_utp_hdr *h, const uint8_t *pl, size_t n)
{
    bool fin = h->type == GNI_UTP_ST_FIN;
    if (fin)
        n = 0;
    /* more than the agreed size (default: a 1500-byte packet) is not one
     * packet from a real peer: e.g. a batch of datagrams a kernel without
     * UDP GSO sent glued into one; taking it as payload would corrupt the
     * stream, dropping it lets the peer's retransmission recover */
    if (n > gni_utp_max_packet(u) - GNI_UTP_HDR_LEN)
        return;
    u->ack_pending = true;  /* every data packet, even a duplicate, gets an ack */
    uint16_t off = (uint16_t)(h->seq - (uint16_t)(u->ack_nr + 1));
    if (off >= 0x8000u) {   /* already delivered */
        u->dup_packets++;
        return;
    }
    if (off >= GNI_UTP_SLOTS - 1 || u->eof)
        return;
    if (u->got_fin && !gni_utp_seq_lt(h->seq, (uint16_t)(u->eof_seq + 1)))
        return;             /* beyond the peer's FIN */
    if (fin && !u->got_fin) {
        u->got_fin = true;
        u->eof_seq = h->seq;
    }
    if (u->rlen + u->reorder_bytes + n > u->cfg.recv_buf_max)
        return;             /* peer ignored our window: drop, it will resend */
    /* a packet out of order must leave one packet's room free: what is
     * held above the hole never takes the space of the packet that fills
     * it (else neither side could move until the application reads, and
     * with everything read the hole still would not fit) */
    if (off > 0 && u->rlen + u->reorder_bytes + n +
                           (gni_utp_max_packet(u) - GNI_UTP_HDR_LEN) > u->cfg.recv_buf_max)
        return;             /* the peer resends it after the hole */
    if (off > 0) {
        utp_in *s = &u->in[h->seq % GNI_UTP_SLOTS];
        if (s->used) {
            u->dup_packets++;
            return;
        }
        uint8_t *copy = NULL;
        if (n) {
            copy = gn_malloc(n);
            if (!copy)
                return;
            memcpy(copy, pl, n);
        }
        s->data = copy;
        s->len = (uint16_t)n;
        s->seq = h->seq;
        s->fin = fin;
        s->used = true;
        u->reorder_bytes += n;
        u->reorder_cnt++;
        return;
    }
    utp_deliver(u, pl, n, fin);
    for (uint32_t i = 0; i < GNI_UTP_SLOTS && !u->eof; i++) {
        utp_in *s = &u->in[(uint16_t)(u->ack_nr + 1) % GNI_UTP_SLOTS];
        if (!s->used || s->seq != (uint16_t)(u->ack_nr + 1))
            break;
        u->reorder_bytes -= s->len;
        u->reorder_cnt--;
        utp_deliver(u, s->data, s->len, s->fin);
        gn_free(s->data);
        memset(s, 0, sizeof(*s));
    }
    if (u->eof) {
        /* anything still held lies beyond the FIN: release it */
        for (size_t i = 0; i < GNI_UTP_SLOTS && u->reorder_cnt; i++) {
            if (u->in[i].used) {
                u->reorder_bytes -= u->in[i].len;
                u->reorder_cnt--;
                gn_free(u->in[i].data);
                memset(&u->in[i], 0, sizeof(u->in[i]));
            }
        }
        utp_check_closed(u);
    }
}

int gni_utp_feed(gni_utp *u, const uint8_t *pkt, size_t len, gn_time now)
{
    gni_utp_hdr h;
    int off = gni_utp_parse(pkt, len, &h);
    if (off < 0)
        return off;
    if (u->state == GNI_UTP_IDLE || u->state == GNI_UTP_ERROR)
        return 0;
    if (h.type == GNI_UTP_ST_SYN) {
        /* a resent SYN of our peer: answer it again */
        if (!u->initiator && h.conn_id == u->send_id && u->state == GNI_UTP_CONNECTED)
            u->synack_pending = true;
        return 0;
    }
    /* a RESET may name either id (libutp answers unknown packets with their own conn_id) */
    if (h.conn_id != u->recv_id && !(h.type == GNI_UTP_ST_RESET && h.conn_id == u->send_id))
        return 0;
    u->recv_packets++;
    u->last_recv = now;
    if (h.ts_us)
        u->reply_micro = utp_us(now) - h.ts_us;
    if (h.type == GNI_UTP_ST_RESET) {
        utp_set_error(u, u->state == GNI_UTP_SYN_SENT ? GN_ECONNREFUSED : GN_ECONNRESET);
        return 0;
    }
    if (!u->initiator)
        u->offer_mss = false;  /* the initiator has our SYN-ACK: its answer is done */
    if (u->state == GNI_UTP_SYN_SENT) {
        if (h.type != GNI_UTP_ST_STATE || h.ack != (uint16_t)(u->seq_nr - 1))
            return 0;
        /* the responder's first ST_DATA reuses this seq_nr (libutp) */
        u->ack_nr = (uint16_t)(h.seq - 1);
        /* only an answer counts: a peer echoing our offer back is no golemnet */
        utp_take_mss_offer(u, h.gn_mss_kind == 'A' ? h.gn_mss : 0);
        u->offer_mss = false;
        u->last_ack = (uint16_t)(h.ack - 1);
        u->state = GNI_UTP_CONNECTED;
        u->events |= GNI_UTP_EV_CONNECTED | GNI_UTP_EV_WRITABLE;
        /* ack the SYN-ACK at once: the responder learns the connection is
         * not a half-open one even if we have nothing to send */
        u->ack_pending = true;
    }
    u->peer_wnd = h.wnd;
    if (h.wnd >= u->mss)
        u->zwnd_deadline = 0;
    if (h.ts_diff_us)
        utp_delay_sample(u, h.ts_diff_us, now);
    utp_process_ack(u, &h, now);
    if (u->state != GNI_UTP_CONNECTED && u->state != GNI_UTP_CLOSED)
        return 0;
    if (h.type == GNI_UTP_ST_DATA || h.type == GNI_UTP_ST_FIN)
        utp_process_data(u, &h, pkt + off, len - (size_t)off);
    return 0;
}

/* ---- output ---------------------------------------------------------- */

static size_t utp_sack_len(const gni_utp *u)
{
    if (!u->reorder_cnt)
        return 0;
    uint32_t top = 0;  /* highest held offset from ack_nr + 2 */
    for (uint32_t i = 0; i < GNI_UTP_SACK_MAX * 8; i++) {
        const utp_in *s = &u->in[(uint16_t)(u->ack_nr + 2 + i) % GNI_UTP_SLOTS];
        if (s->used && s->seq == (uint16_t)(u->ack_nr + 2 + i))
            top = i + 1;
    }
    if (!top)
        return 0;
    return ((top - 1) / 32 + 1) * 4;
}

/* Writes header (+ SACK) for @type/@seq into @out; returns its length. */
static size_t utp_emit_header(gni_utp *u, uint8_t *out, uint8_t type, uint16_t seq, size_t sack,
                              gn_time now)
{
    bool mss_ext = u->offer_mss && (type == GNI_UTP_ST_SYN || (type == GNI_UTP_ST_STATE &&
                                                               !u->initiator && seq == u->isn));
    gni_utp_hdr h = {
        .type = type,
        .ver = GNI_UTP_VERSION,
        .ext = mss_ext ? GNI_UTP_EXT_BITS : sack ? GNI_UTP_EXT_SACK : 0,
        .conn_id = type == GNI_UTP_ST_SYN ? u->recv_id : u->send_id,
        .ts_us = utp_us(now),
        .ts_diff_us = u->reply_micro,
        .wnd = utp_adv_wnd(u),
        .seq = seq,
        .ack = type == GNI_UTP_ST_SYN ? 0 : u->ack_nr,
    };
    gni_utp_hdr_encode(&h, out);
    size_t n = GNI_UTP_HDR_LEN;
    if (mss_ext) {
        out[n++] = sack ? GNI_UTP_EXT_SACK : 0;
        out[n++] = GNI_UTP_EXT_BITS_LEN;
        out[n++] = 'g';
        out[n++] = 'n';
        out[n++] = type == GNI_UTP_ST_SYN ? 'O' : 'A';
        out[n++] = 0;
        utp_put16(out + n, (uint16_t)u->cfg.mss_max);
        n += 2;
        out[n++] = 0;
        out[n++] = 0;
    }
    if (sack) {
        out[n++] = 0;
        out[n++] = (uint8_t)sack;
        memset(out + n, 0, sack);
        for (uint32_t i = 0; i < sack * 8; i++) {
            const utp_in *s = &u->in[(uint16_t)(u->ack_nr + 2 + i) % GNI_UTP_SLOTS];
            if (s->used && s->seq == (uint16_t)(u->ack_nr + 2 + i))
                out[n + i / 8] |= (uint8_t)(1u << (i % 8));
        }
        n += sack;
    }
    u->last_adv_wnd = h.wnd;
    u->ack_pending = false;
    u->last_send = now;
    u->sent_packets++;
    return n;
}

static bool utp_window_allows(const gni_utp *u, size_t len)
{
    if (u->inflight + len > u->peer_wnd)
        return false;
    return u->inflight == 0 || u->inflight + len <= u->cwnd;
}

/* A resend of @p: the oldest unacked packet (the hole at the peer's
 * ack_nr + 1) goes out whatever the peer's window says, as TCP and libutp
 * retransmit the head: the peer keeps room for it (utp_process_data), and
 * while its window is filled by what it holds above the hole, only this
 * packet can open it again. The congestion window still applies. */
static bool utp_resend_allows(const gni_utp *u, const utp_out *p)
{
    if (p->seq != u->out_oldest)
        return utp_window_allows(u, p->len);
    return u->inflight == 0 || u->inflight + p->len <= u->cwnd;
}

static int utp_emit_packet(gni_utp *u, utp_out *p, uint8_t *out, size_t sack, gn_time now)
{
    size_t n = utp_emit_header(u, out, p->type, p->seq, sack, now);
    if (p->len)
        utp_ring_get(u->sbuf, u->cfg.send_buf_max, (size_t)(p->pos % u->cfg.send_buf_max),
                     out + n, p->len);
    n += p->len;
    if (p->transmissions++)
        u->resent_packets++;
    p->sent_at = now;
    p->need_resend = false;
    u->nresend--;
    u->inflight += p->len;
    if (!u->rto_deadline) {
        u->rto_deadline = now + u->rto;
        u->rto_armed_at = now;
    }
    return (int)n;
}

int gni_utp_drain(gni_utp *u, uint8_t *out, size_t cap, gn_time now)
{
    if (u->reset_pending) {
        if (cap < GNI_UTP_HDR_LEN)
            return GN_ENOSPC;
        u->reset_pending = false;
        gni_utp_hdr h = {.type = GNI_UTP_ST_RESET, .ver = GNI_UTP_VERSION,
                         .conn_id = u->send_id, .ts_us = utp_us(now),
                         .ts_diff_us = u->reply_micro, .seq = u->seq_nr, .ack = u->ack_nr};
        return gni_utp_hdr_encode(&h, out);
    }
    if (u->state == GNI_UTP_IDLE || u->state == GNI_UTP_ERROR)
        return 0;
    size_t sack = utp_sack_len(u);
    size_t hdr = GNI_UTP_HDR_LEN + (sack ? 2 + sack : 0) +
                 (u->offer_mss ? 2 + GNI_UTP_EXT_BITS_LEN : 0);
    if (cap < hdr)
        return GN_ENOSPC;
    if (u->synack_pending) {
        u->synack_pending = false;
        /* always the original ISN: the initiator derives ack_nr from it */
        return (int)utp_emit_header(u, out, GNI_UTP_ST_STATE, u->isn, sack, now);
    }
    if (u->nresend) {
        for (uint32_t i = 0; i < u->nout; i++) {
            utp_out *p = &u->out[(uint16_t)(u->out_oldest + i) % GNI_UTP_SLOTS];
            if (!p->used || !p->need_resend)
                continue;
            if (p->type != GNI_UTP_ST_SYN && !utp_resend_allows(u, p))
                break;
            if (cap - hdr < p->len)
                return GN_ENOSPC;
            return utp_emit_packet(u, p, out, sack, now);
        }
    }
    if (u->state == GNI_UTP_CONNECTED && u->nout < GNI_UTP_SLOTS - 1) {
        if (u->slen > 0) {
            size_t n = u->slen < u->mss ? u->slen : u->mss;
            if (n > cap - hdr)
                n = cap - hdr;
            if (n > 0 && utp_window_allows(u, n)) {
                /* the bytes stay where they are: unsent becomes retained */
                utp_out *p = utp_out_push(u, GNI_UTP_ST_DATA, (uint16_t)n);
                u->shead = (u->shead + n) % u->cfg.send_buf_max;
                u->slen -= n;
                u->spos_sent += n;
                return utp_emit_packet(u, p, out, sack, now);
            } else if (n > 0 && u->inflight == 0 && u->peer_wnd < n && !u->zwnd_deadline) {
                u->zwnd_deadline = now + UTP_ZWND_PROBE;
            }
        } else if (u->fin_requested && !u->fin_sent) {
            u->fin_sent = true;
            utp_out *p = utp_out_push(u, GNI_UTP_ST_FIN, 0);
            return utp_emit_packet(u, p, out, sack, now);
        }
    }
    if (u->ack_pending && u->state != GNI_UTP_SYN_SENT)
        return (int)utp_emit_header(u, out, GNI_UTP_ST_STATE, u->seq_nr, sack, now);
    return 0;
}

/* ---- application side ------------------------------------------------ */

long gni_utp_write(gni_utp *u, const uint8_t *data, size_t len)
{
    if (u->state == GNI_UTP_IDLE)
        return GN_ESTATE;
    if (u->state == GNI_UTP_ERROR)
        return u->err;
    if (u->fin_requested || u->state == GNI_UTP_CLOSED)
        return GN_EPIPE;
    size_t room = u->cfg.send_buf_max - utp_send_used(u);
    if (room == 0) {
        u->want_writable = true;
        return len ? GN_EAGAIN : 0;
    }
    size_t n = len < room ? len : room;
    if (n > 0x7fffffff)
        n = 0x7fffffff;
    utp_ring_put(u->sbuf, u->cfg.send_buf_max, u->shead, u->slen, data, n);
    u->slen += n;
    if (n < len)
        u->want_writable = true;
    return (long)n;
}

long gni_utp_read(gni_utp *u, uint8_t *out, size_t cap)
{
    if (u->state == GNI_UTP_ERROR)
        return u->err;
    if (u->rlen == 0)
        return u->eof ? GN_EEOF : 0;
    size_t n = u->rlen < cap ? u->rlen : cap;
    if (n > 0x7fffffff)
        n = 0x7fffffff;
    utp_ring_get(u->rbuf, u->cfg.recv_buf_max, u->rhead, out, n);
    u->rhead = (u->rhead + n) % u->cfg.recv_buf_max;
    u->rlen -= n;
    /* window update when the window we last advertised was nearly shut */
    if (u->last_adv_wnd < 2 * u->mss && utp_adv_wnd(u) >= 2 * u->mss && !u->eof)
        u->ack_pending = true;
    return (long)n;
}

size_t gni_utp_readable(const gni_utp *u)
{
    return u->rlen;
}

int gni_utp_shutdown(gni_utp *u)
{
    if (u->state == GNI_UTP_IDLE || u->state == GNI_UTP_ERROR)
        return GN_ESTATE;
    u->fin_requested = true;
    return 0;
}

void gni_utp_abort(gni_utp *u)
{
    if (u->state == GNI_UTP_CONNECTED || u->state == GNI_UTP_CLOSED)
        u->reset_pending = true;
    utp_set_error(u, GN_ECANCELED);
}

size_t gni_utp_max_packet(const gni_utp *u)
{
    return u->mss > u->cfg.mss ? GNI_UTP_PACKET_FOR(u->mss) : GNI_UTP_MAX_PACKET;
}

/* ---- timers ---------------------------------------------------------- */

gn_time gni_utp_deadline(const gni_utp *u)
{
    gn_time d = UINT64_MAX;
    if (u->state == GNI_UTP_IDLE || u->state == GNI_UTP_ERROR || u->state == GNI_UTP_CLOSED)
        return d;
    if (u->nout > 0 && u->rto_deadline && u->rto_deadline < d)
        d = u->rto_deadline;
    if (u->state == GNI_UTP_SYN_SENT && u->syn_start + u->cfg.connect_timeout < d)
        d = u->syn_start + u->cfg.connect_timeout;
    if (u->state == GNI_UTP_CONNECTED && u->cfg.keepalive &&
        u->last_send + u->cfg.keepalive < d)
        d = u->last_send + u->cfg.keepalive;
    if (u->zwnd_deadline && u->zwnd_deadline < d)
        d = u->zwnd_deadline;
    return d;
}

void gni_utp_on_timer(gni_utp *u, gn_time now)
{
    if (u->state == GNI_UTP_IDLE || u->state == GNI_UTP_ERROR || u->state == GNI_UTP_CLOSED)
        return;
    if (u->state == GNI_UTP_SYN_SENT && now - u->syn_start >= u->cfg.connect_timeout) {
        utp_set_error(u, GN_ETIMEDOUT);
        return;
    }
    if (u->nout > 0 && u->rto_deadline && now >= u->rto_deadline) {
        if (u->state == GNI_UTP_CONNECTED) {
            /* a peer that answers (zero window, acks) is alive: count only
             * silent expiries */
            if (u->last_recv <= u->rto_armed_at && ++u->timeouts >= u->cfg.max_timeouts) {
                utp_set_error(u, GN_ETIMEDOUT);
                return;
            }
            size_t half = u->cwnd / 2;
            u->ssthresh = half > utp_min_cwnd(u) ? half : utp_min_cwnd(u);
            u->cwnd = u->mss;  /* RFC 6817: one packet after a timeout */
            u->slow_start = true;
        }
        u->rto_expiries++;
        u->rto = u->rto * 2 < u->cfg.max_rto ? u->rto * 2 : u->cfg.max_rto;
        for (uint32_t i = 0; i < u->nout; i++)
            utp_mark_resend(u, &u->out[(uint16_t)(u->out_oldest + i) % GNI_UTP_SLOTS]);
        u->rto_deadline = now + u->rto;
        u->rto_armed_at = now;
    }
    if (u->state == GNI_UTP_CONNECTED && u->cfg.keepalive &&
        now - u->last_send >= u->cfg.keepalive)
        u->ack_pending = true;
    if (u->zwnd_deadline && now >= u->zwnd_deadline) {
        u->zwnd_deadline = 0;
        if (u->peer_wnd < u->mss)
            u->peer_wnd = u->mss;  /* probe: one packet into a shut window */
    }
}

/* ---- queries --------------------------------------------------------- */

unsigned gni_utp_take_events(gni_utp *u)
{
    unsigned e = u->events;
    u->events = 0;
    return e;
}

gni_utp_state gni_utp_get_state(const gni_utp *u)
{
    return u->state;
}

int gni_utp_error(const gni_utp *u)
{
    return u->state == GNI_UTP_ERROR ? u->err : 0;
}

uint16_t gni_utp_recv_id(const gni_utp *u)
{
    return u->recv_id;
}

uint16_t gni_utp_send_id(const gni_utp *u)
{
    return u->send_id;
}

void gni_utp_get_stats(const gni_utp *u, gni_utp_stats *st)
{
    memset(st, 0, sizeof(*st));
    st->cwnd = u->cwnd;
    st->flight = u->inflight;
    st->peer_wnd = u->peer_wnd;
    st->srtt = u->srtt;
    st->rttvar = u->rttvar;
    st->rto = u->rto;
    st->base_delay_us = u->base_delay;
    st->queue_delay_us = u->queue_delay;
    st->sent_packets = u->sent_packets;
    st->resent_packets = u->resent_packets;
    st->rto_expiries = u->rto_expiries;
    st->fast_resends = u->fast_resends;
    st->recv_packets = u->recv_packets;
    st->dup_packets = u->dup_packets;
    st->sack_packets = u->sack_packets;
    st->slow_start = u->slow_start;
    st->mss = u->mss;
}
