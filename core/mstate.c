/*
 * Muxer stream state shared by the yamux and mplex cores. See gni_mstate.h.
 *
 * Invariants: ms->buffered is the sum of every stream's rq length and
 * ms->send_queued the sum of every sq length, at most send_max; a stream
 * is on prio[p] iff p == its prio and its sq is not empty (and it is not
 * reset); bit p of prio_mask is set iff prio[p] is not empty; a stream on
 * send_waitq is neither reset nor half-closed (lfin).
 */
#include "gni_mstate.h"
#include "gni_rcmgr.h"

#include "golemnet/log.h"

#include <inttypes.h>
#include <limits.h>
#include <string.h>

#define MS_ST(link, member) GNI_CONTAINER_OF(link, gni_mstream, member)

/* ---- scheduler lists ---------------------------------------------------- */

static void ms_sched_add(gni_mstate *ms, gni_mstream *st)
{
    gni_list_add_tail(&ms->prio[st->prio], &st->data_link);
    ms->prio_mask |= 1u << st->prio;
}

static void ms_sched_del(gni_mstate *ms, gni_mstream *st)
{
    if (!gni_list_on(&st->data_link))
        return;
    gni_list_del(&st->data_link);
    if (gni_list_empty(&ms->prio[st->prio]))
        ms->prio_mask &= ~(1u << st->prio);
}

/* ---- send budget -------------------------------------------------------- */

/* Budget freed or the head changed: tells the head of the wait queue. */
static void ms_budget_kick(gni_mstate *ms)
{
    if (gni_list_empty(&ms->send_waitq) || ms->send_queued >= ms->send_max)
        return;
    gni_mstream *head = MS_ST(ms->send_waitq.next, wait_link);
    if (head->want_writable) {
        /* it keeps its place until it writes */
        head->want_writable = false;
        gni_mstate_raise(ms, head, GNI_MSTATE_EV_WRITABLE);
    }
}

/*
 * @st starts waiting for budget: behind every waiter of its priority class
 * or a higher one, ahead of lower classes (the walk is from the tail; the
 * queue is at most the streams the budget stopped).
 */
static void ms_budget_wait(gni_mstate *ms, gni_mstream *st)
{
    gni_list *pos = ms->send_waitq.prev;
    while (pos != &ms->send_waitq && MS_ST(pos, wait_link)->prio < st->prio)
        pos = pos->prev;
    gni_list_add_tail(pos->next, &st->wait_link); /* right after pos */
}

/* @st stops waiting for budget (reset, half-closed, removed). */
static void ms_budget_leave(gni_mstate *ms, gni_mstream *st)
{
    if (!gni_list_on(&st->wait_link))
        return;
    bool head = ms->send_waitq.next == &st->wait_link;
    gni_list_del(&st->wait_link);
    if (head)
        ms_budget_kick(ms);
}

/*
 * Accounted budget: grows the connection's reservation so that @st may
 * take @want bytes (it has @broom now); returns the new budget room.
 */
static size_t ms_send_grow(gni_mstate *ms, const gni_mstream *st, size_t want, size_t broom)
{
    if (ms->send_max >= ms->send_cap || !ms->rc_conn ||
        (!gni_list_empty(&ms->send_waitq) && ms->send_waitq.next != &st->wait_link))
        return broom;
    size_t step = GNI_MAX(want - broom, GNI_MSTATE_SEND_STEP);
    step = GNI_MIN(step, ms->send_cap - ms->send_max);
    if (gn_rcmgr_reserve_memory(gn_rcmgr_conn_span(ms->rc_conn), step, GN_RCMGR_PRIO_MEDIUM) <
        0) {
        ms->rc_refused++;
        return broom; /* pushed back as at a full budget */
    }
    ms->send_max += step;
    return ms->send_max - ms->send_queued;
}

/*
 * Accounted budget: gives back what is far above what is queued, and all
 * but the first step once nothing is queued.
 */
static void ms_send_shrink_slow(gni_mstate *ms)
{
    if (!gni_list_empty(&ms->send_waitq))
        return;
    size_t keep;
    if (ms->send_queued == 0)
        keep = GNI_MSTATE_SEND_STEP;
    else if (ms->send_max > ms->send_queued + 4 * GNI_MSTATE_SEND_STEP)
        keep = ms->send_queued + GNI_MSTATE_SEND_STEP;
    else
        return;
    if (ms->send_max <= keep)
        return;
    size_t drop = ms->send_max - keep;
    (void)gn_rcmgr_release_memory(gn_rcmgr_conn_span(ms->rc_conn), drop);
    ms->send_max = keep;
}

/* Only a budget above its first step can shrink: one comparison per drained chunk. */
static inline void ms_send_shrink(gni_mstate *ms)
{
    if (ms->send_max > GNI_MSTATE_SEND_STEP && ms->rc_conn)
        ms_send_shrink_slow(ms);
}

/* ---- resource accounting ------------------------------------------------- */

static void ms_rc_log(const gni_mstate *ms, const char *what, size_t n)
{
    gn_rcmgr_refusal r;
    if (gn_rcmgr_last_refusal(ms->rm, &r) == 0) {
        GN_LOG(GN_LOG_INFO, "mux",
               "resource manager refused %s (%zu bytes): %s %s in use %" PRIu64 ", limit %" PRIu64,
               what, n, r.name, gn_rcmgr_res_name(r.res), r.used, r.limit);
    }
}

int gni_mstate_set_rcmgr(gni_mstate *ms, gn_rcmgr *rm, gn_rcmgr_conn *conn)
{
    if (!rm) {
        if (ms->rm) {
            if (ms->rc_conn)
                (void)gn_rcmgr_release_memory(gn_rcmgr_conn_span(ms->rc_conn),
                                              ms->send_max + ms->rx_resv);
            ms->rx_resv = 0;
            ms->rx_pressure = false;
            ms->send_max = ms->send_cap;
            ms->rm = NULL;
            ms->rc_conn = NULL;
            ms_budget_kick(ms);
        }
        return 0;
    }
    if (!conn)
        return GN_EINVAL;
    if (ms->rm)
        return GN_ESTATE;
    size_t want = GNI_MIN(GNI_MAX(GNI_MSTATE_SEND_STEP, ms->send_queued), ms->send_max);
    int rc = gn_rcmgr_reserve_memory(gn_rcmgr_conn_span(conn), want, GN_RCMGR_PRIO_ALWAYS);
    if (rc < 0)
        return rc;
    ms->rm = rm;
    ms->rc_conn = conn;
    ms->send_cap = ms->send_max;
    ms->send_max = want;
    return 0;
}

int gni_mstate_rc_stream(gni_mstate *ms, bool inbound, gn_rcmgr_stream **out)
{
    *out = NULL;
    if (!ms->rm)
        return 0;
    gn_rcmgr_stream *rs = NULL;
    size_t mem = 0; /* received data is reserved when it arrives (gni_mstate_rx_reserve) */
    int rc = gni_rcmgr_open_stream_mem(ms->rm, ms->rc_conn,
                                       inbound ? GN_RCMGR_INBOUND : GN_RCMGR_OUTBOUND, mem, &rs);
    if (rc == GN_ENOMEM)
        return rc;
    if (rc < 0) {
        /*
         * Anything else (a connection span without its peer) refuses the
         * stream too: a stream is never let in unaccounted, and the
         * session is not ended for it.
         */
        ms->rc_refused++;
        if (rc == GN_ERESOURCE)
            ms_rc_log(ms, inbound ? "an inbound stream" : "an outbound stream", mem);
        else
            GN_LOG(GN_LOG_WARNING, "mux", "stream span not opened: %s", gn_err_name(rc));
        return GN_ERESOURCE;
    }
    *out = rs;
    return 0;
}

static size_t ms_round_step(size_t n)
{
    size_t r = n % GNI_MSTATE_SEND_STEP;
    return r ? n + (GNI_MSTATE_SEND_STEP - r) : n;
}

bool gni_mstate_rx_reserve(gni_mstate *ms, size_t len, uint8_t prio, const char *what)
{
    if (!ms->rc_conn)
        return true;
    size_t need = ms->buffered + len;
    if (need > ms->rx_resv) {
        size_t grow = ms_round_step(need - ms->rx_resv);
        if (gn_rcmgr_reserve_memory(gn_rcmgr_conn_span(ms->rc_conn), grow, prio) < 0) {
            ms->rc_refused++;
            if (prio <= GN_RCMGR_PRIO_MEDIUM)
                ms->rx_pressure = true;
            ms_rc_log(ms, what, grow);
            return false;
        }
        ms->rx_resv += grow;
        if (prio >= GN_RCMGR_PRIO_MEDIUM)
            ms->rx_pressure = false;
    }
    ms->rx_expect = len;
    return true;
}

bool gni_mstate_rx_probe(gni_mstate *ms, size_t len, uint8_t prio, const char *what)
{
    if (!ms->rc_conn || len == 0)
        return true;
    gn_rcmgr_span *sp = gn_rcmgr_conn_span(ms->rc_conn);
    if (gn_rcmgr_reserve_memory(sp, len, prio) < 0) {
        ms->rc_refused++;
        ms_rc_log(ms, what, len);
        return false;
    }
    (void)gn_rcmgr_release_memory(sp, len);
    if (prio >= GN_RCMGR_PRIO_MEDIUM)
        ms->rx_pressure = false;
    return true;
}

/*
 * Received bytes were consumed or dropped: gives back what is more than a
 * step above what is still buffered or expected; when nothing is, keeps
 * one step (so that a session receiving small messages does not reserve
 * and release for each of them).
 */
static void ms_rx_shrink_slow(gni_mstate *ms)
{
    size_t keep = ms_round_step(ms->buffered + ms->rx_expect);
    if (keep == 0)
        keep = GNI_MSTATE_SEND_STEP;
    else if (ms->rx_resv <= keep + GNI_MSTATE_SEND_STEP)
        return;
    if (ms->rx_resv <= keep)
        return;
    (void)gn_rcmgr_release_memory(gn_rcmgr_conn_span(ms->rc_conn), ms->rx_resv - keep);
    ms->rx_resv = keep;
}

static inline void ms_rx_shrink(gni_mstate *ms)
{
    if (ms->rx_resv > GNI_MSTATE_SEND_STEP && ms->rc_conn)
        ms_rx_shrink_slow(ms);
}

/* ---- lifetime ----------------------------------------------------------- */

void gni_mstate_config(gn_mux_config *c, const gn_mux_config *in)
{
    if (in) {
        *c = *in;
    } else {
        memset(c, 0, sizeof(*c));
        c->version = GN_MUX_CONFIG_VERSION;
    }
    if (!c->max_inbound_streams)
        c->max_inbound_streams = 1024;
    if (!c->max_outbound_streams)
        c->max_outbound_streams = 1024;
    if (!c->max_pending_streams)
        c->max_pending_streams = 256;
    if (!c->stream_buffer_max)
        c->stream_buffer_max = 1024u * 1024u;
    if (!c->session_buffer_max)
        c->session_buffer_max = (size_t)64u * 1024u * 1024u;
    if (!c->session_send_max)
        c->session_send_max = GN_MUX_SESSION_SEND_MAX_DEFAULT;
}

int gni_mstate_init(gni_mstate *ms, const gni_mstate_ops *ops, size_t stream_buffer_max)
{
    memset(ms, 0, sizeof(*ms));
    /* 8 buckets (64 bytes), doubled as streams are added: most sessions
     * carry a few streams, and a process may hold many thousand sessions */
    if (gni_htab_init(&ms->streams, 8) < 0)
        return GN_ENOMEM;
    ms->ops = ops;
    ms->stream_buffer_max = stream_buffer_max;
    ms->refuse_max = gni_mstate_refuse_bound(1024);
    ms->send_max = GN_MUX_SESSION_SEND_MAX_DEFAULT;
    gni_list_init(&ms->send_waitq);
    gni_list_init(&ms->refuseq);
    gni_list_init(&ms->evq);
    gni_list_init(&ms->ctrlq);
    for (unsigned i = 0; i < GNI_MSTATE_PRIO_CLASSES; i++)
        gni_list_init(&ms->prio[i]);
    return 0;
}

void gni_mstate_fini(gni_mstate *ms)
{
    gni_hnode *h;
    if (!ms->streams.buckets)
        return;
    (void)gni_mstate_set_rcmgr(ms, NULL, NULL); /* the budget's reservation */
    while ((h = gni_htab_any(&ms->streams)) != NULL)
        ms->ops->stream_free(ms, (gni_mstream *)(void *)h);
    gni_htab_fini(&ms->streams);
    while (!gni_list_empty(&ms->refuseq))
        gni_mstate_refuse_pop(ms);
    gni_htab_fini(&ms->refused);
}

int gni_mstate_insert(gni_mstate *ms, gni_mstream *st, uint64_t key, bool inbound)
{
    gni_streamq_init(&st->rq);
    gni_streamq_init(&st->sq);
    st->hn.key = key;
    st->inbound = inbound;
    if (gni_htab_insert(&ms->streams, &st->hn) < 0)
        return GN_ENOMEM;
    if (inbound)
        ms->n_in++;
    else
        ms->n_out++;
    return 0;
}

void gni_mstate_remove(gni_mstate *ms, gni_mstream *st)
{
    gni_htab_remove(&ms->streams, &st->hn);
    gni_list_del(&st->ev_link);
    gni_list_del(&st->ctrl_link);
    ms_sched_del(ms, st);
    ms->buffered -= gn_bufq_len(&st->rq);
    ms->send_queued -= gn_bufq_len(&st->sq);
    gn_bufq_fini(&st->rq);
    gn_bufq_fini(&st->sq);
    ms_budget_leave(ms, st);
    ms_budget_kick(ms);
    if (st->pending)
        ms->n_pending--;
    if (st->inbound)
        ms->n_in--;
    else
        ms->n_out--;
    ms_send_shrink(ms);
    if (st->rs) {
        gn_rcmgr_stream_done(st->rs);
        st->rs = NULL;
    }
}

void gni_mstate_set_pending(gni_mstate *ms, gni_mstream *st)
{
    if (!st->pending) {
        st->pending = true;
        ms->n_pending++;
    }
}

int gni_mstate_accept(gni_mstate *ms, gni_mstream *st)
{
    if (!st->pending)
        return GN_ESTATE;
    st->pending = false;
    ms->n_pending--;
    return 0;
}

/* ---- events ------------------------------------------------------------- */

gni_mstream *gni_mstate_next_event(gni_mstate *ms, int *type)
{
    while (!gni_list_empty(&ms->evq)) {
        gni_mstream *st = MS_ST(ms->evq.next, ev_link);
        if (st->ev) {
            /* lowest set bit first: OPENED, DATA, WRITABLE, FIN, RESET */
            unsigned bit = (unsigned)st->ev & (0u - (unsigned)st->ev);
            int t = 1;
            while ((1u << (t - 1)) != bit)
                t++;
            st->ev &= (uint8_t)~bit;
            if (!st->ev)
                gni_list_del(&st->ev_link);
            *type = t;
            return st;
        }
        gni_list_del(&st->ev_link);
    }
    *type = 0;
    return NULL;
}

void gni_mstate_check_fin(gni_mstate *ms, gni_mstream *st)
{
    if (st->rfin && !st->fin_evented && !st->reset && gn_bufq_len(&st->rq) == 0) {
        st->fin_evented = true;
        gni_mstate_raise(ms, st, GNI_MSTATE_EV_FIN);
    }
}

void gni_mstate_check_writable(gni_mstate *ms, gni_mstream *st, uint64_t credit)
{
    if (!st->want_writable || st->reset || st->lfin || credit == 0 ||
        gni_mstate_stream_room(ms, st) == 0)
        return;
    if (gni_mstate_budget_room(ms, st) > 0) {
        st->want_writable = false;
        gni_mstate_raise(ms, st, GNI_MSTATE_EV_WRITABLE);
    } else if (!gni_list_on(&st->wait_link)) {
        ms_budget_wait(ms, st); /* only the budget is missing */
        ms_budget_kick(ms);     /* a higher class may have gone ahead of the head */
    }
}

/* ---- control and data --------------------------------------------------- */

bool gni_mstate_maybe_free(gni_mstate *ms, gni_mstream *st)
{
    if (!st->released || gni_list_on(&st->ctrl_link) || gni_list_on(&st->data_link))
        return false;
    if (!st->reset && !(st->lfin_sent && st->rfin))
        return false;
    ms->ops->stream_free(ms, st);
    return true;
}

void gni_mstate_ctrl_done(gni_mstate *ms, gni_mstream *st)
{
    st->ctrl = 0;
    gni_list_del(&st->ctrl_link);
    gni_mstate_maybe_free(ms, st);
}

gni_mstream *gni_mstate_sched_next(const gni_mstate *ms)
{
    if (!ms->prio_mask)
        return NULL;
    unsigned p = GNI_MSTATE_PRIO_CLASSES - 1;
    while (!(ms->prio_mask & (1u << p)))
        p--;
    return MS_ST(ms->prio[p].next, data_link);
}

size_t gni_mstate_sched_take(gni_mstate *ms, gni_mstream *st, uint8_t *dst, size_t n)
{
    gn_bufq_read(&st->sq, dst, n);
    ms->send_queued -= n;
    if (!gni_list_empty(&ms->send_waitq))
        ms_budget_kick(ms);
    else
        ms_send_shrink(ms);
    size_t left = gn_bufq_len(&st->sq);
    gni_list_del(&st->data_link);
    if (left > 0)
        gni_list_add_tail(&ms->prio[st->prio], &st->data_link); /* round robin */
    else if (gni_list_empty(&ms->prio[st->prio]))
        ms->prio_mask &= ~(1u << st->prio);
    return left;
}

/* ---- refused streams ---------------------------------------------------- */

struct gni_mrefused {
    gni_hnode hn;  /* first; hn.key = the stream key */
    gni_list link; /* ms->refuseq, oldest first */
    uint64_t wire_id;
};

static gni_mrefused *ms_refused_find(const gni_mstate *ms, uint64_t key)
{
    if (!ms->refuse_cnt)
        return NULL; /* also: no buckets before the first refusal */
    return (gni_mrefused *)(void *)gni_htab_find(&ms->refused, key);
}

static void ms_refused_drop(gni_mstate *ms, gni_mrefused *r)
{
    gni_htab_remove(&ms->refused, &r->hn);
    gni_list_del(&r->link);
    ms->refuse_cnt--;
    gn_free(r);
}

int gni_mstate_refuse(gni_mstate *ms, uint64_t wire_id, uint64_t key, int reason)
{
    if (ms_refused_find(ms, key))
        return 0;
    if (ms->refuse_cnt >= ms->refuse_max)
        return GN_ESTREAMLIMIT;
    if (!ms->refused.buckets && gni_htab_init(&ms->refused, 16) < 0)
        return GN_ENOMEM;
    gni_mrefused *r = gn_calloc(1, sizeof(*r));
    if (!r)
        return GN_ENOMEM;
    r->hn.key = key;
    r->wire_id = wire_id;
    if (gni_htab_insert(&ms->refused, &r->hn) < 0) {
        gn_free(r);
        return GN_ENOMEM;
    }
    gni_list_add_tail(&ms->refuseq, &r->link);
    ms->refuse_cnt++;
    ms->refused_total++;
    ms->refused_ev_cnt++;
    ms->refused_ev_key = key;
    ms->refused_ev_err = reason;
    ms->refused_ev = true;
    return 0;
}

bool gni_mstate_refused_has(const gni_mstate *ms, uint64_t key)
{
    return ms_refused_find(ms, key) != NULL;
}

bool gni_mstate_refuse_cancel(gni_mstate *ms, uint64_t key)
{
    gni_mrefused *r = ms_refused_find(ms, key);
    if (!r)
        return false;
    ms_refused_drop(ms, r);
    return true;
}

bool gni_mstate_refuse_peek(const gni_mstate *ms, uint64_t *wire_id)
{
    if (gni_list_empty(&ms->refuseq))
        return false;
    *wire_id = GNI_CONTAINER_OF(ms->refuseq.next, gni_mrefused, link)->wire_id;
    return true;
}

void gni_mstate_refuse_pop(gni_mstate *ms)
{
    if (!gni_list_empty(&ms->refuseq))
        ms_refused_drop(ms, GNI_CONTAINER_OF(ms->refuseq.next, gni_mrefused, link));
}

bool gni_mstate_refused_event(gni_mstate *ms, uint64_t *key, uint32_t *count, int *reason)
{
    if (!ms->refused_ev)
        return false;
    ms->refused_ev = false;
    *key = ms->refused_ev_key;
    *count = ms->refused_ev_cnt;
    *reason = ms->refused_ev_err;
    ms->refused_ev_cnt = 0;
    return true;
}

/* ---- stream calls ------------------------------------------------------- */

static void ms_drop_queues(gni_mstate *ms, gni_mstream *st)
{
    ms->buffered -= gn_bufq_len(&st->rq);
    ms->send_queued -= gn_bufq_len(&st->sq);
    gn_bufq_fini(&st->rq);
    ms_rx_shrink(ms);
    gn_bufq_fini(&st->sq);
    ms_sched_del(ms, st);
    ms_budget_leave(ms, st);
    ms_budget_kick(ms);
    if (st->pending) {
        st->pending = false;
        ms->n_pending--;
    }
    st->ev &= (uint8_t)~(GNI_MSTATE_BIT(GNI_MSTATE_EV_DATA) |
                         GNI_MSTATE_BIT(GNI_MSTATE_EV_WRITABLE) |
                         GNI_MSTATE_BIT(GNI_MSTATE_EV_FIN));
}

void gni_mstate_reset_local(gni_mstate *ms, gni_mstream *st, int event_err)
{
    const gni_mstate_ops *ops = ms->ops;
    if (st->reset)
        return;
    st->reset = true;
    st->reset_err = event_err ? event_err : GN_ECLOSED;
    ms_drop_queues(ms, st);
    if (st->ctrl & ops->ctrl_open) {
        st->ctrl = 0; /* the peer never heard of it */
        gni_list_del(&st->ctrl_link);
    } else {
        st->ctrl &= ops->ctrl_keep;
        gni_mstate_ctrl(ms, st, ops->ctrl_reset);
    }
    if (ops->on_reset)
        ops->on_reset(ms, st);
    if (event_err)
        gni_mstate_raise(ms, st, GNI_MSTATE_EV_RESET);
}

void gni_mstate_reset_remote(gni_mstate *ms, gni_mstream *st)
{
    if (st->reset)
        return;
    st->reset = true;
    st->reset_err = GN_ESTREAMRESET;
    ms_drop_queues(ms, st);
    st->ctrl = 0;
    gni_list_del(&st->ctrl_link);
    if (ms->ops->on_reset)
        ms->ops->on_reset(ms, st);
    gni_mstate_raise(ms, st, GNI_MSTATE_EV_RESET);
}

long gni_mstate_write(gni_mstate *ms, gni_mstream *st, const uint8_t *data, size_t len,
                      uint64_t credit)
{
    if (st->reset)
        return GN_ESTREAMRESET;
    if (st->pending)
        return GN_ESTATE;
    if (st->lfin)
        return GN_EPIPE;
    size_t sroom = gni_mstate_stream_room(ms, st);
    size_t broom = gni_mstate_budget_room(ms, st);
    if (ms->rc_conn && broom < len && broom < sroom && (uint64_t)broom < credit)
        broom = ms_send_grow(ms, st, (size_t)GNI_MIN((uint64_t)GNI_MIN(len, sroom), credit),
                             broom);
    size_t n = GNI_MIN(len, GNI_MIN(sroom, broom));
    n = (size_t)GNI_MIN((uint64_t)n, credit);
    n = GNI_MIN(n, (size_t)LONG_MAX);
    if (n > 0) {
        size_t got = gni_streamq_append(&st->sq, data, n, n);
        ms->send_queued += got;
        if (got > 0 && !gni_list_on(&st->data_link))
            ms_sched_add(ms, st);
        if (got == 0)
            return GN_ENOMEM;
        n = got;
    }
    bool waiting = gni_list_on(&st->wait_link);
    if (waiting && (n > 0 || n == len)) {
        /* the head had its turn (only the head gets budget while others wait) */
        gni_list_del(&st->wait_link);
        waiting = false;
    }
    if (n < len) {
        st->want_writable = true;
        /* stopped by the budget alone: wait for it, behind whoever waits already */
        if (!waiting && n == broom && n < sroom && (uint64_t)n < credit)
            ms_budget_wait(ms, st);
    }
    if (!gni_list_empty(&ms->send_waitq))
        ms_budget_kick(ms);
    return (long)n;
}

int gni_mstate_shutdown(gni_mstate *ms, gni_mstream *st)
{
    if (st->lfin || st->reset || st->pending)
        return GN_ESTATE;
    st->lfin = true;
    st->want_writable = false;
    st->ev &= (uint8_t)~GNI_MSTATE_BIT(GNI_MSTATE_EV_WRITABLE);
    ms_budget_leave(ms, st);
    if (gn_bufq_len(&st->sq) == 0)
        gni_mstate_ctrl(ms, st, ms->ops->ctrl_fin);
    return 0;
}

size_t gni_mstate_consume(gni_mstate *ms, gni_mstream *st, size_t n)
{
    n = GNI_MIN(n, gn_bufq_len(&st->rq));
    gn_bufq_skip(&st->rq, n);
    ms->buffered -= n;
    ms_rx_shrink(ms);
    gni_mstate_check_fin(ms, st);
    return n;
}

size_t gni_mstate_read(gni_mstate *ms, gni_mstream *st, uint8_t *out, size_t len)
{
    size_t n = gn_bufq_read(&st->rq, out, len);
    ms->buffered -= n;
    ms_rx_shrink(ms);
    gni_mstate_check_fin(ms, st);
    return n;
}

size_t gni_mstate_release(gni_mstate *ms, gni_mstream *st)
{
    if (st->pending || (!st->reset && !st->lfin))
        gni_mstate_reset_local(ms, st, 0);
    st->released = true;
    st->user_data = NULL;
    st->ev = 0;
    gni_list_del(&st->ev_link);
    size_t dropped = gn_bufq_len(&st->rq);
    ms->buffered -= dropped;
    gn_bufq_fini(&st->rq);
    ms_rx_shrink(ms);
    return dropped;
}

int gni_mstate_set_priority(gni_mstate *ms, gni_mstream *st, uint8_t prio)
{
    if (prio >= GNI_MSTATE_PRIO_CLASSES)
        return GN_ERANGE;
    if (st->prio != prio && gni_list_on(&st->data_link)) {
        ms_sched_del(ms, st);
        st->prio = prio;
        ms_sched_add(ms, st);
    }
    st->prio = prio;
    return 0;
}

int gni_mstate_stream_state(const gni_mstream *st)
{
    if (st->reset)
        return GNI_MSTATE_ST_RESET;
    if (st->pending)
        return GNI_MSTATE_ST_PENDING;
    if (st->lfin && st->rfin)
        return GNI_MSTATE_ST_CLOSED;
    if (st->lfin)
        return GNI_MSTATE_ST_HALF_CLOSED_LOCAL;
    if (st->rfin)
        return GNI_MSTATE_ST_HALF_CLOSED_REMOTE;
    return GNI_MSTATE_ST_ESTABLISHED;
}

/* ---- the same calls by stream key --------------------------------------- */

int gni_mstate_stream_shutdown(gni_mstate *ms, uint64_t key)
{
    if (ms->err)
        return GN_ECLOSED;
    gni_mstream *st = gni_mstate_app_find(ms, key);
    return st ? gni_mstate_shutdown(ms, st) : GN_ENOTFOUND;
}

int gni_mstate_stream_reset(gni_mstate *ms, uint64_t key)
{
    if (ms->err)
        return GN_ECLOSED;
    gni_mstream *st = gni_mstate_app_find(ms, key);
    if (!st)
        return GN_ENOTFOUND;
    gni_mstate_reset_local(ms, st, 0);
    return 0;
}

int gni_mstate_stream_peek(const gni_mstate *ms, uint64_t key, gn_slice *out)
{
    const gni_mstream *st = gni_mstate_app_find(ms, key);
    if (!st)
        return GN_ENOTFOUND;
    return gni_streamq_peek(&st->rq, out) ? 1 : 0;
}

int gni_mstate_stream_set_user_data(gni_mstate *ms, uint64_t key, void *user_data)
{
    gni_mstream *st = gni_mstate_app_find(ms, key);
    if (!st)
        return GN_ENOTFOUND;
    st->user_data = user_data;
    return 0;
}

int gni_mstate_stream_set_priority(gni_mstate *ms, uint64_t key, uint8_t prio)
{
    gni_mstream *st = gni_mstate_app_find(ms, key);
    return st ? gni_mstate_set_priority(ms, st, prio) : GN_ENOTFOUND;
}

long gni_mstate_stream_write(gni_mstate *ms, uint64_t key, const uint8_t *data, size_t len)
{
    if (ms->err)
        return GN_ECLOSED;
    gni_mstream *st = gni_mstate_app_find(ms, key);
    return st ? gni_mstate_write(ms, st, data, len, UINT64_MAX) : GN_ENOTFOUND;
}

size_t gni_mstate_stream_write_space(const gni_mstate *ms, uint64_t key)
{
    const gni_mstream *st = gni_mstate_app_find(ms, key);
    if (ms->err || !st || st->reset || st->pending || st->lfin)
        return 0;
    return gni_mstate_send_room(ms, st);
}

int gni_mstate_stream_consume(gni_mstate *ms, uint64_t key, size_t n)
{
    gni_mstream *st = gni_mstate_app_find(ms, key);
    if (!st)
        return GN_ENOTFOUND;
    gni_mstate_consume(ms, st, n);
    return 0;
}

long gni_mstate_stream_read(gni_mstate *ms, uint64_t key, uint8_t *out, size_t len)
{
    gni_mstream *st = gni_mstate_app_find(ms, key);
    if (!st)
        return GN_ENOTFOUND;
    return (long)gni_mstate_read(ms, st, out, GNI_MIN(len, (size_t)LONG_MAX));
}
