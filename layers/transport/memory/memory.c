/*
 * golemnet - the in-process memory transport.
 *
 * Addresses: /memory/<id> (multicodec 0x0309, a u64), optionally followed by
 * /p2p/<peer id> (ignored). Listening on /memory/0 picks the lowest free
 * id, as port 0 does for TCP. No sockets, no timers: everything moves
 * through the loop's deferred calls, so the transport is deterministic and
 * works unchanged on a virtual clock.
 *
 * Where listeners live: one table per gn_loop (a "domain"), shared by every
 * memory transport instance on that loop, so two instances on one loop
 * reach each other while loops (threads) stay isolated: /memory/1 on loop A
 * and /memory/1 on loop B are different listeners. A domain lives in the
 * loop's local storage (gn_loop_set_local), so there is no global state and
 * no lock; it is touched only from its loop's thread.
 *
 * A connection is two mem_conn ends linked as peers. Per direction A -> B:
 *   A.wq  writes A's consumer made, zero copy (the iovs stay borrowed), at
 *         most config.write_queue_max bytes (GN_EAGAIN beyond that while
 *         anything is queued; on_writable once it drained to half);
 *   B.rx  bytes copied out of A.wq, not yet delivered to B's consumer, at
 *         most config.write_queue_max bytes (B's transport). This plays the
 *         role of the kernel's socket buffers: a write completes with 0 once
 *         all its bytes are in B.rx, and bytes in B.rx survive A's close.
 * B's consumer receives B.rx through on_data only while reading; a stopped
 * reader fills B.rx, then A.wq, then A's writes get GN_EAGAIN.
 *
 * Closing like TCP: shutdown -> the peer gets on_eof after the data before
 * it; close -> pending writes complete with GN_ECANCELED, and the peer gets
 * on_eof (or on_error GN_ECONNRESET when the closing end discarded unread
 * data, as Linux sends RST then); reset -> the peer gets on_error
 * GN_ECONNRESET and loses its unread data. Once its peer is gone, an end's
 * queued writes complete with GN_EPIPE (GN_ECONNRESET after a reset) and new
 * writes return GN_EPIPE.
 *
 * No re-entry: every event and completion runs from a deferred call (one
 * per transport instance and loop turn, serving a FIFO of ends that need
 * work), never from inside a gn_stream_*() or transport call.
 *
 * Dialing happens in the next kick; gn_op_cancel() on a dial before then
 * turns it into a GN_ECANCELED completion in that kick (nothing connects).
 *
 * Limits: config.max_connections counts open ends plus dials in progress.
 * A dial over the dialer's limit fails GN_ELIMIT; a dial to a listener
 * whose transport is full is refused (GN_ECONNREFUSED): the memory
 * transport has no "accepted then closed" state.
 *
 * Thread context: loop thread only.
 */
#include "golemnet/loop.h"
#include "golemnet/multiaddr.h"
#include "golemnet/registry.h"
#include "golemnet/transport.h"

#include "gni.h"
#include "gni_wq.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MEM_CHUNK_MIN (16u * 1024u)
#define MEM_CHUNK_MAX (64u * 1024u)
/* Pull/deliver passes per end and loop turn before yielding. */
#define MEM_PASSES 16
/* Ids handed to dialing ends (their local address); listeners may use any id. */
#define MEM_EPHEMERAL_BASE (UINT64_C(1) << 48)

typedef struct mem_listener mem_listener;
typedef struct mem_conn mem_conn;

/* The listener table of one loop. */
typedef struct mem_domain {
    gn_loop *loop;
    unsigned refs;            /* transport instances on this loop */
    mem_listener *listeners;  /* open listeners */
    uint64_t next_ephemeral;  /* next dialer-side id */
} mem_domain;

/* Key of the per-loop listener table in the loop-local storage. */
static const char mem_domain_key = 0;

struct mem_listener {
    gn_listener base; /* first */
    mem_listener *next;       /* in the domain, or in the closing list */
    uint64_t id;
    bool closing;
    gn_listener_close_cb close_cb;
    void *close_arg;
};

struct mem_conn {
    gn_stream s; /* first */
    gn_transport *t;
    mem_conn *peer;   /* NULL once the peer finished closing */
    uint64_t local_id;
    uint64_t remote_id;
    /* outbound */
    gni_wq wq;        /* the consumer's writes (zero copy), bytes not yet moved */
    bool shut;        /* our consumer shut down writing */
    bool fin_sent;    /* that EOF was handed to the peer */
    /* inbound */
    gn_bufq rx;       /* received, not delivered (adaptive chunks, each delivered whole) */
    bool fin_recv;    /* the peer's EOF is behind rx */
    bool eof_emitted;
    bool rst_recv;    /* the peer reset */
    bool rst_emitted;
    /* lifecycle */
    bool closing;
    bool reset;       /* closing abortively */
    bool queued;      /* in the transport's ready list */
    mem_conn *next_ready;
};

typedef struct mem_dialreq {
    gn_op op;        /* the dial's cancellation handle */
    struct mem_dialreq *next;
    gn_transport *t; /* the dialing instance */
    uint64_t id;
    gn_dial_cb cb;
    void *arg;
    bool cancelled;  /* gn_op_cancel(): complete with GN_ECANCELED */
} mem_dialreq;

/* Per transport instance (t->state). */
typedef struct mem_state {
    gn_transport *t;
    mem_domain *dom;
    mem_conn *ready_head, *ready_tail;
    mem_dialreq *dials_head, *dials_tail;
    mem_listener *closing_head, *closing_tail;
    bool kick_scheduled;
    uint32_t ndialing;
    uint32_t nlisteners;
} mem_state;

static const gn_stream_ops mem_stream_ops;

/* ---- domains ---- */

static mem_domain *mem_domain_hold(gn_loop *loop)
{
    mem_domain *d = gn_loop_get_local(loop, &mem_domain_key);
    if (!d) {
        d = gn_calloc(1, sizeof *d);
        if (!d) {
            return NULL;
        }
        d->loop = loop;
        d->next_ephemeral = MEM_EPHEMERAL_BASE;
        if (gn_loop_set_local(loop, &mem_domain_key, d) < 0) {
            gn_free(d);
            return NULL;
        }
    }
    d->refs++;
    return d;
}

static void mem_domain_rele(mem_domain *d)
{
    assert(d->refs > 0);
    if (--d->refs == 0) {
        assert(d->listeners == NULL);
        gn_loop_set_local(d->loop, &mem_domain_key, NULL);
        gn_free(d);
    }
}

static mem_listener *mem_domain_find(mem_domain *d, uint64_t id)
{
    for (mem_listener *l = d->listeners; l; l = l->next) {
        if (l->id == id) {
            return l;
        }
    }
    return NULL;
}

/* ---- addresses ---- */

/* Reads /memory/<id>[/p2p/..]. Returns 0, GN_ENOTRANSPORT or GN_EINVAL. */
static int mem_ma_id(const gn_multiaddr *ma, uint64_t *id)
{
    size_t n = gn_multiaddr_count(ma);
    gn_ma_component c;
    char buf[32];
    if (n < 1 || n > 2 || gn_multiaddr_component(ma, 0, &c) < 0 || c.code != GN_MA_MEMORY) {
        return GN_ENOTRANSPORT;
    }
    if (n == 2) {
        gn_ma_component p2p;
        if (gn_multiaddr_component(ma, 1, &p2p) < 0 || p2p.code != GN_MA_P2P) {
            return GN_ENOTRANSPORT;
        }
    }
    int len = gn_ma_component_value_string(&c, buf, sizeof buf);
    if (len <= 0) {
        return GN_EINVAL;
    }
    char *end = NULL;
    unsigned long long v = strtoull(buf, &end, 10);
    if (!end || *end != '\0' || buf[0] == '-') {
        return GN_EINVAL;
    }
    *id = (uint64_t)v;
    return 0;
}

static int mem_id_to_ma(uint64_t id, gn_multiaddr **out)
{
    char buf[48];
    snprintf(buf, sizeof buf, "/memory/%" PRIu64, id);
    return gn_multiaddr_parse(buf, out);
}

static bool mem_handles(const gn_transport *t, const gn_multiaddr *ma)
{
    (void)t;
    uint64_t id;
    return ma != NULL && mem_ma_id(ma, &id) == 0;
}

/* ---- scheduling ---- */

static void mem_kick(gn_loop *loop, void *arg);

static void mem_schedule_kick(mem_state *st)
{
    if (st->kick_scheduled) {
        return;
    }
    int rc = gn_loop_defer(st->t->loop, mem_kick, st);
    if (rc < 0) {
        /* retried by the next schedule call */
        GN_LOG(GN_LOG_ERR, "memory", "cannot defer: %s", gn_strerror(rc));
        return;
    }
    st->kick_scheduled = true;
}

/* Asks for mem_conn_run(@c) in a coming loop turn. */
static void mem_schedule(mem_conn *c)
{
    if (c->queued) {
        return;
    }
    mem_state *st = c->t->state;
    c->queued = true;
    c->next_ready = NULL;
    if (st->ready_tail) {
        st->ready_tail->next_ready = c;
    } else {
        st->ready_head = c;
    }
    st->ready_tail = c;
    mem_schedule_kick(st);
}

static bool mem_at_limit(const gn_transport *t, uint32_t extra)
{
    const mem_state *st = t->state;
    return t->config.max_connections > 0 &&
           (uint64_t)t->nconns + st->ndialing + extra >= t->config.max_connections;
}

/* ---- data movement ---- */

static size_t mem_rx_cap(const mem_conn *c)
{
    size_t max = c->t->config.write_queue_max;
    return max ? max : SIZE_MAX;
}

/* Completes every queued write of @c with @status (callbacks run). */
static void mem_fail_writes(mem_conn *c, int status)
{
    gni_wq_cancel_all(&c->wq, status);
}

static void mem_rx_discard(mem_conn *c)
{
    gn_bufq_fini(&c->rx); /* empty, and usable again */
}

/* Copies up to @len bytes into @c's rx; returns the count (0: no memory). */
static size_t mem_rx_append(mem_conn *c, const uint8_t *data, size_t len)
{
    long n = gn_bufq_write(&c->rx, data, len);
    return n < 0 ? 0 : (size_t)n;
}

/*
 * Moves bytes from the peer's write queue into @c's rx, completing the
 * peer's writes as they are fully moved. Returns true if anything moved or
 * completed. Callbacks run: the caller re-checks the state afterwards.
 */
static bool mem_pull(mem_conn *c)
{
    mem_conn *p = c->peer;
    bool progress = false;
    size_t cap = mem_rx_cap(c);
    while (p && !p->closing && !c->closing && !gni_wq_empty(&p->wq)) {
        gni_wreq *w = gni_wq_head(&p->wq);
        gn_slice sl;
        while (gn_bufq_len(&c->rx) < cap && gni_wreq_peek(w, &sl)) {
            size_t n = GNI_MIN(sl.len, cap - gn_bufq_len(&c->rx));
            n = mem_rx_append(c, sl.base, n);
            if (n == 0) {
                return progress; /* out of memory: retry on the next event */
            }
            gni_wq_advance(&p->wq, w, n);
            progress = true;
        }
        if (w->left > 0) {
            break; /* rx full */
        }
        progress = true;
        gni_wq_complete(&p->wq, w, 0);
        p = c->peer; /* the callback may have closed either end */
    }
    if (p && !p->closing && !c->closing) {
        if (gni_wq_empty(&p->wq) && p->shut && !p->fin_sent) {
            p->fin_sent = true;
            c->fin_recv = true;
            progress = true;
        }
        if (gni_wq_writable_due(&p->wq)) {
            progress = true;
            gn_stream_emit_writable(&p->s);
        }
    }
    return progress;
}

/* Delivers rx to the consumer while it reads. Returns true on progress. */
static bool mem_deliver(mem_conn *c)
{
    bool progress = false;
    const uint8_t *data;
    size_t n;
    while (!c->closing && gn_stream_is_reading(&c->s) && gn_bufq_peek(&c->rx, &data, &n)) {
        /* rx changes only here and in mem_pull, both run by this end's
         * task, so the chunk outlives the callback */
        progress = true;
        gn_stream_emit_data(&c->s, data, n);
        gn_bufq_skip(&c->rx, n);
    }
    if (!c->closing && gn_bufq_len(&c->rx) == 0 && c->fin_recv && !c->eof_emitted &&
        gn_stream_is_reading(&c->s)) {
        c->eof_emitted = true;
        progress = true;
        gn_stream_emit_eof(&c->s);
    }
    return progress;
}

/* Final teardown of a closing end, from its task. */
static void mem_finalize(mem_conn *c)
{
    mem_conn *p = c->peer;
    if (p) {
        /* as TCP: RST when resetting or dropping unread data, else FIN */
        if (c->reset || gn_bufq_len(&c->rx) > 0) {
            p->rst_recv = true;
        } else if (!c->fin_sent) {
            c->fin_sent = true;
            p->fin_recv = true;
        }
        p->peer = NULL;
        c->peer = NULL;
        mem_schedule(p);
    }
    mem_rx_discard(c);
    mem_fail_writes(c, GN_ECANCELED);
    assert(!c->queued);
    gn_transport *t = c->t;
    assert(t->nconns > 0);
    t->nconns--;
    gn_stream_emit_closed(&c->s);
    gni_wq_fini(&c->wq);
    gn_free(c);
}

/* Everything an end has to do; runs from the kick. */
static void mem_conn_run(mem_conn *c)
{
    if (c->closing) {
        mem_finalize(c);
        return;
    }
    if (c->rst_recv && !c->rst_emitted) {
        c->rst_emitted = true;
        mem_rx_discard(c);
        c->fin_recv = false;
        if (!gni_wq_empty(&c->wq)) {
            mem_fail_writes(c, GN_ECONNRESET);
            if (c->closing) {
                return;
            }
        }
        gn_stream_emit_error(&c->s, GN_ECONNRESET);
        return;
    }
    if (!c->peer && !gni_wq_empty(&c->wq)) {
        mem_fail_writes(c, c->rst_recv ? GN_ECONNRESET : GN_EPIPE);
        if (c->closing) {
            return;
        }
    }
    /* each pass moves or delivers something; a busy pair yields to the
     * rest of the loop after MEM_PASSES passes and continues next turn */
    for (int pass = 0; pass < MEM_PASSES; pass++) {
        bool progress = mem_pull(c);
        if (c->closing) {
            return;
        }
        progress |= mem_deliver(c);
        if (c->closing || !progress) {
            return;
        }
    }
    mem_schedule(c);
}

static void mem_conn_link(mem_conn *a, mem_conn *b)
{
    a->peer = b;
    b->peer = a;
}

static mem_conn *mem_conn_new(gn_transport *t, uint64_t local_id, uint64_t remote_id)
{
    mem_conn *c = gn_calloc(1, sizeof *c);
    if (!c) {
        return NULL;
    }
    if (gn_stream_init(&c->s, &mem_stream_ops, t->loop, NULL) < 0) {
        gn_free(c);
        return NULL;
    }
    c->t = t;
    gni_wq_init(&c->wq, &c->s, t->config.write_queue_max, 0);
    (void)gn_bufq_init_adaptive(&c->rx, MEM_CHUNK_MIN, MEM_CHUNK_MAX, SIZE_MAX, 0);
    c->local_id = local_id;
    c->remote_id = remote_id;
    return c;
}

/* ---- the kick: one deferred call serving this instance's work ---- */

static void mem_dial_run(mem_dialreq *d);
static void mem_listener_finish(mem_listener *l);

static void mem_kick(gn_loop *loop, void *arg)
{
    (void)loop;
    mem_state *st = arg;
    st->kick_scheduled = false;
    /* take this turn's work; work queued by callbacks goes to the next turn */
    mem_dialreq *dials = st->dials_head;
    mem_listener *lcl = st->closing_head;
    mem_conn *ready = st->ready_head;
    st->dials_head = st->dials_tail = NULL;
    st->closing_head = st->closing_tail = NULL;
    st->ready_head = st->ready_tail = NULL;
    /* From here on st is not touched: a callback may free the transport
     * once nothing of it is left. */
    while (dials) {
        mem_dialreq *d = dials;
        dials = d->next;
        mem_dial_run(d);
    }
    while (lcl) {
        mem_listener *l = lcl;
        lcl = l->next;
        mem_listener_finish(l);
    }
    while (ready) {
        mem_conn *c = ready;
        ready = c->next_ready;
        c->queued = false;
        c->next_ready = NULL;
        mem_conn_run(c);
    }
}

/* ---- stream ops ---- */

static int mem_s_write(gn_stream *s, const gn_slice *iov, size_t iovcnt, gn_write_cb cb,
                       void *arg)
{
    mem_conn *c = (mem_conn *)s;
    if (!c->peer || c->rst_recv) {
        return c->rst_recv ? GN_ECONNRESET : GN_EPIPE;
    }
    size_t len = 0;
    int rc = gni_wq_admit(&c->wq, iov, iovcnt, &len);
    if (rc < 0) {
        return rc;
    }
    gni_wreq *w;
    if ((rc = gni_wq_push(&c->wq, iov, iovcnt, len, cb, arg, true, 0, &w)) < 0) {
        return rc;
    }
    /* the receiving end pulls; it completes the write */
    mem_schedule(c->peer);
    return 0;
}

static int mem_s_read_start(gn_stream *s)
{
    mem_schedule((mem_conn *)s);
    return 0;
}

static int mem_s_read_stop(gn_stream *s)
{
    (void)s;
    return 0;
}

static int mem_s_shutdown(gn_stream *s)
{
    mem_conn *c = (mem_conn *)s;
    c->shut = true;
    if (c->peer) {
        mem_schedule(c->peer);
    }
    return 0;
}

static void mem_s_close(gn_stream *s)
{
    mem_conn *c = (mem_conn *)s;
    c->closing = true;
    mem_schedule(c);
}

static void mem_s_reset(gn_stream *s)
{
    mem_conn *c = (mem_conn *)s;
    c->reset = true;
    c->closing = true;
    mem_schedule(c);
}

static int mem_s_addr(gn_stream *s, gn_stream_addr_kind kind, gn_multiaddr **out)
{
    mem_conn *c = (mem_conn *)s;
    return mem_id_to_ma(kind == GN_ADDR_LOCAL ? c->local_id : c->remote_id, out);
}

static const gn_stream_ops mem_stream_ops = {
    .abi = GN_STREAM_ABI,
    .name = "memory",
    .write = mem_s_write,
    .read_start = mem_s_read_start,
    .read_stop = mem_s_read_stop,
    .shutdown = mem_s_shutdown,
    .reset = mem_s_reset,
    .close = mem_s_close,
    .addr = mem_s_addr,
};

/* ---- transport instance ---- */

static int mem_init(gn_transport *t)
{
    mem_state *st = t->state;
    st->t = t;
    st->dom = mem_domain_hold(t->loop);
    if (!st->dom) {
        return GN_ENOMEM;
    }
    /* nothing of the borrowed keepalive slice is kept */
    t->config.app_keepalive_bytes = gn_slice_of(NULL, 0);
    return 0;
}

static void mem_fini(gn_transport *t)
{
    mem_state *st = t->state;
    assert(t->nconns == 0 && st->ndialing == 0 && st->nlisteners == 0);
    assert(!st->kick_scheduled);
    if (st->dom) {
        mem_domain_rele(st->dom);
        st->dom = NULL;
    }
}

/* ---- listening ---- */

static int mem_listen(gn_transport *t, const gn_multiaddr *ma, gn_accept_cb cb, void *arg,
                      gn_listener **out)
{
    mem_state *st = t->state;
    uint64_t id;
    int rc = mem_ma_id(ma, &id);
    if (rc < 0) {
        return GN_EINVAL;
    }
    if (id == 0) {
        id = 1;
        while (mem_domain_find(st->dom, id)) {
            id++;
        }
    } else if (mem_domain_find(st->dom, id)) {
        return GN_EADDRINUSE;
    }
    mem_listener *l = gn_calloc(1, sizeof *l);
    if (!l) {
        return GN_ENOMEM;
    }
    l->base.transport = t;
    l->base.accept_cb = cb;
    l->base.accept_arg = arg;
    l->id = id;
    l->next = st->dom->listeners;
    st->dom->listeners = l;
    st->nlisteners++;
    *out = &l->base;
    return 0;
}

static int mem_listener_addr(gn_listener *gl, gn_multiaddr **out)
{
    return mem_id_to_ma(((mem_listener *)gl)->id, out);
}

static void mem_listener_close(gn_listener *gl, gn_listener_close_cb cb, void *arg)
{
    mem_listener *l = (mem_listener *)gl;
    mem_state *st = gl->transport->state;
    assert(!l->closing);
    l->closing = true;
    l->close_cb = cb;
    l->close_arg = arg;
    /* unreachable from now on */
    mem_listener **pp = &st->dom->listeners;
    while (*pp && *pp != l) {
        pp = &(*pp)->next;
    }
    if (*pp) {
        *pp = l->next;
    }
    l->next = NULL;
    if (st->closing_tail) {
        st->closing_tail->next = l;
    } else {
        st->closing_head = l;
    }
    st->closing_tail = l;
    mem_schedule_kick(st);
}

static void mem_listener_finish(mem_listener *l)
{
    mem_state *st = l->base.transport->state;
    assert(st->nlisteners > 0);
    st->nlisteners--;
    gn_listener_close_cb cb = l->close_cb;
    void *arg = l->close_arg;
    /* the callback may free the transport: nothing is touched after it */
    if (cb) {
        cb(&l->base, arg);
    }
    gn_free(l);
}

/* ---- dialing ---- */

/* gn_op_cancel() on a dial: nothing is connected before the kick, so the
 * queued request only turns into a GN_ECANCELED completion (next turn). */
static void mem_dial_cancel(gn_op *op)
{
    mem_dialreq *d = GNI_CONTAINER_OF(op, mem_dialreq, op);
    d->cancelled = true;
    mem_schedule_kick(d->t->state); /* normally already scheduled */
}

static int mem_dial(gn_transport *t, const gn_multiaddr *ma, gn_dial_cb cb, void *arg,
                    gn_op **op)
{
    mem_state *st = t->state;
    uint64_t id;
    int rc = mem_ma_id(ma, &id);
    if (rc < 0) {
        return rc;
    }
    if (!cb) {
        return GN_EINVAL;
    }
    if (mem_at_limit(t, 0)) {
        return GN_ELIMIT;
    }
    mem_dialreq *d = gn_calloc(1, sizeof *d);
    if (!d) {
        return GN_ENOMEM;
    }
    d->t = t;
    d->id = id;
    d->cb = cb;
    d->arg = arg;
    d->op.cancel = mem_dial_cancel;
    *op = &d->op;
    if (st->dials_tail) {
        st->dials_tail->next = d;
    } else {
        st->dials_head = d;
    }
    st->dials_tail = d;
    st->ndialing++;
    mem_schedule_kick(st);
    return 0;
}

static void mem_dial_run(mem_dialreq *d)
{
    gn_transport *t = d->t;
    mem_state *st = t->state;
    gn_dial_cb cb = d->cb;
    void *arg = d->arg;
    uint64_t id = d->id;
    bool cancelled = d->cancelled;
    gn_free(d);
    assert(st->ndialing > 0);
    st->ndialing--;
    if (cancelled) {
        cb(arg, GN_ECANCELED, NULL);
        return;
    }

    mem_listener *l = mem_domain_find(st->dom, id);
    if (!l) {
        cb(arg, GN_ECONNREFUSED, NULL);
        return;
    }
    gn_transport *lt = l->base.transport;
    if (mem_at_limit(lt, 0)) {
        GN_LOG(GN_LOG_INFO, "memory", "dial to /memory/%" PRIu64 " refused: listener full", id);
        cb(arg, GN_ECONNREFUSED, NULL);
        return;
    }
    if (mem_at_limit(t, lt == t ? 1 : 0)) {
        cb(arg, GN_ELIMIT, NULL);
        return;
    }
    uint64_t eph = st->dom->next_ephemeral++;
    mem_conn *dc = mem_conn_new(t, eph, id);
    mem_conn *ac = mem_conn_new(lt, id, eph);
    if (!dc || !ac) {
        gn_free(dc);
        gn_free(ac);
        cb(arg, GN_ENOMEM, NULL);
        return;
    }
    mem_conn_link(dc, ac);
    t->nconns++;
    lt->nconns++;
    /* the acceptor first, as a TCP listener sees the SYN first */
    l->base.accept_cb(l->base.accept_arg, &l->base, 0, &ac->s);
    cb(arg, 0, &dc->s);
}

static const gn_transport_ops mem_ops = {
    .abi = GN_TRANSPORT_ABI,
    .name = "memory",
    .state_size = sizeof(mem_state),
    .flags = 0,
    .caps = GN_TRANSPORT_CAP_RELIABLE | GN_TRANSPORT_CAP_IN_PROCESS,
    .test_listen_addr = "/memory/0",
    .init = mem_init,
    .fini = mem_fini,
    .handles = mem_handles,
    .listen = mem_listen,
    .listener_addr = mem_listener_addr,
    .listener_close = mem_listener_close,
    .dial = mem_dial,
};

int gn_transport_memory_register(gn_registry *reg);

int gn_transport_memory_register(gn_registry *reg)
{
    return gn_registry_add(reg, GN_LAYER_TRANSPORT, (const gn_layer_ops *)&mem_ops);
}
