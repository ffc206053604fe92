/*
 * Unit tests for the muxer stream-state layer (core/mstate.c) that the yamux
 * and mplex cores share: the stream table and counters, coalesced ordered
 * events, the strict-priority round-robin scheduler, write limits and
 * WRITABLE, local and remote resets with the core's control bits,
 * half-close and FIN, release and deferred free, the refusal ring.
 */
#include "gni_mstate.h"

#include "gn_test.h"
#include "golemnet/err.h"

#include <stdlib.h>
#include <string.h>

/* A core's control bits, as a protocol would define them. */
#define T_OPEN 0x1u
#define T_ACK 0x2u
#define T_FIN 0x4u
#define T_RST 0x8u

typedef struct t_stream {
    gni_mstream b; /* first, as the layer requires */
    int resets;    /* on_reset calls */
} t_stream;

static int g_freed;

static void t_free(gni_mstate *ms, gni_mstream *b)
{
    gni_mstate_remove(ms, b);
    free(b);
    g_freed++;
}

static void t_on_reset(gni_mstate *ms, gni_mstream *b)
{
    (void)ms;
    GNI_MSTREAM_OF(b, t_stream)->resets++;
}

static const gni_mstate_ops t_ops = {
    .stream_free = t_free,
    .on_reset = t_on_reset,
    .ctrl_open = T_OPEN,
    .ctrl_keep = T_ACK,
    .ctrl_reset = T_RST,
    .ctrl_fin = T_FIN,
};

static gni_mstream *t_new(gni_mstate *ms, uint64_t key, bool inbound)
{
    t_stream *st = calloc(1, sizeof(*st));
    CHECK(st != NULL);
    CHECK_OK(gni_mstate_insert(ms, &st->b, key, inbound));
    return &st->b;
}

static uint8_t payload[4096];

static void t_init(gni_mstate *ms, size_t sbm)
{
    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)(i * 7 + 1);
    g_freed = 0;
    CHECK_OK(gni_mstate_init(ms, &t_ops, sbm));
}

GN_TEST(mstate_table_and_counters)
{
    gni_mstate ms;
    t_init(&ms, 1024);
    gni_mstream *a = t_new(&ms, 1, false);
    gni_mstream *b = t_new(&ms, 2, true);
    gni_mstream *c = t_new(&ms, 4, true);
    CHECK_EQ(ms.n_out, 1);
    CHECK_EQ(ms.n_in, 2);
    gni_mstate_set_pending(&ms, b);
    gni_mstate_set_pending(&ms, b); /* counted once */
    CHECK_EQ(ms.n_pending, 1);
    CHECK(gni_mstate_find(&ms, 1) == a);
    CHECK(gni_mstate_find(&ms, 2) == b);
    CHECK(gni_mstate_find(&ms, 3) == NULL);
    CHECK_EQ(gni_mstate_accept(&ms, b), 0);
    CHECK_EQ(gni_mstate_accept(&ms, b), GN_ESTATE);
    CHECK_EQ(ms.n_pending, 0);
    /* A released stream is invisible to the application, not to the core. */
    c->released = true;
    CHECK(gni_mstate_app_find(&ms, 4) == NULL);
    CHECK(gni_mstate_find(&ms, 4) == c);
    /* Many streams: the table grows and every key is found. */
    for (uint64_t k = 100; k < 400; k++)
        t_new(&ms, k, k % 2 == 0);
    for (uint64_t k = 100; k < 400; k++)
        CHECK(gni_mstate_find(&ms, k) != NULL && gni_mstate_find(&ms, k)->hn.key == k);
    CHECK_EQ(ms.n_in + ms.n_out, 303);
    gni_mstate_fini(&ms);
    CHECK_EQ(g_freed, 303);
}

GN_TEST(mstate_events_coalesced_and_ordered)
{
    gni_mstate ms;
    int type;
    t_init(&ms, 1024);
    gni_mstream *a = t_new(&ms, 1, true);
    gni_mstream *b = t_new(&ms, 3, true);
    gni_mstate_raise(&ms, b, GNI_MSTATE_EV_DATA);
    gni_mstate_raise(&ms, a, GNI_MSTATE_EV_RESET);
    gni_mstate_raise(&ms, a, GNI_MSTATE_EV_DATA);
    gni_mstate_raise(&ms, a, GNI_MSTATE_EV_OPENED);
    gni_mstate_raise(&ms, b, GNI_MSTATE_EV_DATA); /* coalesced */
    /* b became ready first; per stream OPENED, DATA, WRITABLE, FIN, RESET. */
    CHECK(gni_mstate_next_event(&ms, &type) == b);
    CHECK_EQ(type, GNI_MSTATE_EV_DATA);
    CHECK(gni_mstate_next_event(&ms, &type) == a);
    CHECK_EQ(type, GNI_MSTATE_EV_OPENED);
    CHECK(gni_mstate_next_event(&ms, &type) == a);
    CHECK_EQ(type, GNI_MSTATE_EV_DATA);
    CHECK(gni_mstate_next_event(&ms, &type) == a);
    CHECK_EQ(type, GNI_MSTATE_EV_RESET);
    CHECK(gni_mstate_next_event(&ms, &type) == NULL);
    CHECK_EQ(type, 0);
    /* Released streams raise nothing. */
    a->released = true;
    gni_mstate_raise(&ms, a, GNI_MSTATE_EV_DATA);
    CHECK(gni_mstate_next_event(&ms, &type) == NULL);
    gni_mstate_fini(&ms);
    CHECK_EQ(g_freed, 2);
}

GN_TEST(mstate_scheduler_priority_round_robin)
{
    gni_mstate ms;
    uint8_t buf[64];
    t_init(&ms, 1024);
    gni_mstream *a = t_new(&ms, 1, false);
    gni_mstream *b = t_new(&ms, 3, false);
    gni_mstream *c = t_new(&ms, 5, false);
    CHECK(!gni_mstate_have_data(&ms));
    CHECK(gni_mstate_sched_next(&ms) == NULL);
    CHECK_EQ(gni_mstate_set_priority(&ms, c, 8), GN_ERANGE);
    CHECK_OK(gni_mstate_set_priority(&ms, c, 5));
    CHECK_EQ(gni_mstate_write(&ms, a, payload, 20, UINT64_MAX), 20);
    CHECK_EQ(gni_mstate_write(&ms, b, payload, 20, UINT64_MAX), 20);
    CHECK_EQ(gni_mstate_write(&ms, c, payload, 20, UINT64_MAX), 20);
    CHECK_EQ(ms.send_queued, 60);
    CHECK(gni_mstate_want_drain(&ms));
    /* The higher class goes first until it is empty. */
    CHECK(gni_mstate_sched_next(&ms) == c);
    CHECK_EQ(gni_mstate_sched_take(&ms, c, buf, 10), 10);
    CHECK(gni_mstate_sched_next(&ms) == c);
    CHECK_EQ(gni_mstate_sched_take(&ms, c, buf, 10), 0);
    CHECK_MEM(buf, payload + 10, 10);
    /* Round robin inside class 0, one turn per take. */
    CHECK(gni_mstate_sched_next(&ms) == a);
    CHECK_EQ(gni_mstate_sched_take(&ms, a, buf, 5), 15);
    CHECK(gni_mstate_sched_next(&ms) == b);
    CHECK_EQ(gni_mstate_sched_take(&ms, b, buf, 5), 15);
    CHECK(gni_mstate_sched_next(&ms) == a);
    /* Raising a queued stream moves it ahead at once. */
    CHECK_OK(gni_mstate_set_priority(&ms, b, 7));
    CHECK(gni_mstate_sched_next(&ms) == b);
    CHECK_EQ(gni_mstate_sched_take(&ms, b, buf, 15), 0);
    CHECK(gni_mstate_sched_next(&ms) == a);
    CHECK_EQ(gni_mstate_sched_take(&ms, a, buf, 15), 0);
    CHECK(gni_mstate_sched_next(&ms) == NULL);
    CHECK(!gni_mstate_have_data(&ms));
    CHECK(!gni_mstate_want_drain(&ms));
    CHECK_EQ(ms.send_queued, 0);
    gni_mstate_fini(&ms);
}

GN_TEST(mstate_write_limits_and_writable)
{
    gni_mstate ms;
    int type;
    uint8_t buf[256];
    t_init(&ms, 100);
    gni_mstream *a = t_new(&ms, 1, false);
    /* The send buffer bound and the core's credit both clamp. */
    CHECK_EQ(gni_mstate_write(&ms, a, payload, 30, 10), 10);
    CHECK(a->want_writable);
    CHECK_EQ(gni_mstate_write(&ms, a, payload, 200, UINT64_MAX), 90);
    CHECK_EQ(gni_mstate_send_room(&ms, a), 0);
    CHECK_EQ(gni_mstate_write(&ms, a, payload, 1, UINT64_MAX), 0);
    /* No room: no WRITABLE; room but no credit: none either. */
    gni_mstate_check_writable(&ms, a, UINT64_MAX);
    CHECK(gni_mstate_next_event(&ms, &type) == NULL);
    CHECK_EQ(gni_mstate_sched_take(&ms, a, buf, 50), 50);
    gni_mstate_check_writable(&ms, a, 0);
    CHECK(gni_mstate_next_event(&ms, &type) == NULL);
    gni_mstate_check_writable(&ms, a, 1);
    CHECK(gni_mstate_next_event(&ms, &type) == a);
    CHECK_EQ(type, GNI_MSTATE_EV_WRITABLE);
    CHECK(!a->want_writable);
    /* A full write arms nothing. */
    CHECK_EQ(gni_mstate_write(&ms, a, payload, 10, UINT64_MAX), 10);
    CHECK(!a->want_writable);
    /* State errors. */
    gni_mstream *p = t_new(&ms, 2, true);
    gni_mstate_set_pending(&ms, p);
    CHECK_EQ(gni_mstate_write(&ms, p, payload, 1, UINT64_MAX), GN_ESTATE);
    CHECK_EQ(gni_mstate_shutdown(&ms, p), GN_ESTATE);
    CHECK_OK(gni_mstate_shutdown(&ms, a));
    CHECK_EQ(gni_mstate_shutdown(&ms, a), GN_ESTATE);
    CHECK_EQ(gni_mstate_write(&ms, a, payload, 1, UINT64_MAX), GN_EPIPE);
    gni_mstate_reset_local(&ms, p, 0);
    CHECK_EQ(gni_mstate_write(&ms, p, payload, 1, UINT64_MAX), GN_ESTREAMRESET);
    gni_mstate_fini(&ms);
}

GN_TEST(mstate_reset_local_and_remote)
{
    gni_mstate ms;
    int type;
    t_init(&ms, 1024);
    /* Open frame never sent: the peer never heard of it, nothing goes out. */
    gni_mstream *a = t_new(&ms, 1, false);
    gni_mstate_ctrl(&ms, a, T_OPEN);
    CHECK_EQ(gni_mstate_write(&ms, a, payload, 40, UINT64_MAX), 40);
    gni_mstate_reset_local(&ms, a, GN_ETIMEDOUT);
    CHECK(a->reset);
    CHECK_EQ(a->ctrl, 0);
    CHECK(gni_mstate_ctrl_head(&ms) == NULL);
    CHECK(!gni_mstate_have_data(&ms));
    CHECK_EQ(ms.send_queued, 0);
    CHECK_EQ(GNI_MSTREAM_OF(a, t_stream)->resets, 1);
    CHECK(gni_mstate_next_event(&ms, &type) == a);
    CHECK_EQ(type, GNI_MSTATE_EV_RESET);
    CHECK_EQ(a->reset_err, GN_ETIMEDOUT);
    gni_mstate_reset_local(&ms, a, GN_ETIMEDOUT); /* once only */
    CHECK_EQ(GNI_MSTREAM_OF(a, t_stream)->resets, 1);
    CHECK(gni_mstate_next_event(&ms, &type) == NULL);

    /* Pending accept kept, FIN replaced by the reset; no event when err 0. */
    gni_mstream *b = t_new(&ms, 2, true);
    gni_mstate_set_pending(&ms, b);
    CHECK_OK(gni_mstate_accept(&ms, b));
    gni_mstate_ctrl(&ms, b, T_ACK | T_FIN);
    gni_streamq_append(&b->rq, payload, 33, 33);
    ms.buffered += 33;
    gni_mstate_raise(&ms, b, GNI_MSTATE_EV_DATA);
    gni_mstate_reset_local(&ms, b, 0);
    CHECK_EQ(b->ctrl, T_ACK | T_RST);
    CHECK(gni_mstate_ctrl_head(&ms) == b);
    CHECK_EQ(ms.buffered, 0);
    CHECK_EQ(b->reset_err, GN_ECLOSED);
    CHECK(gni_mstate_next_event(&ms, &type) == NULL); /* DATA dropped too */

    /* Remote reset: pending control cleared, RESET event, pending uncounted. */
    gni_mstream *c = t_new(&ms, 4, true);
    gni_mstate_set_pending(&ms, c);
    gni_mstate_ctrl(&ms, c, T_ACK);
    gni_mstate_reset_remote(&ms, c);
    CHECK_EQ(c->ctrl, 0);
    CHECK_EQ(ms.n_pending, 0);
    CHECK(gni_mstate_next_event(&ms, &type) == c);
    CHECK_EQ(type, GNI_MSTATE_EV_RESET);
    CHECK_EQ(c->reset_err, GN_ESTREAMRESET);
    CHECK_EQ(GNI_MSTREAM_OF(c, t_stream)->resets, 1);
    gni_mstate_fini(&ms);
}

GN_TEST(mstate_fin_release_and_free)
{
    gni_mstate ms;
    int type;
    uint8_t buf[64];
    t_init(&ms, 1024);
    gni_mstream *a = t_new(&ms, 1, false);
    /* Shutdown with data queued: the core sends the half-close after it. */
    CHECK_EQ(gni_mstate_write(&ms, a, payload, 8, UINT64_MAX), 8);
    CHECK_OK(gni_mstate_shutdown(&ms, a));
    CHECK(gni_mstate_ctrl_head(&ms) == NULL);
    gni_mstream *b = t_new(&ms, 3, false);
    CHECK_OK(gni_mstate_shutdown(&ms, b));
    CHECK(gni_mstate_ctrl_head(&ms) == b);
    CHECK_EQ(b->ctrl, T_FIN);
    /* FIN is reported only after the buffered bytes are consumed. */
    gni_streamq_append(&a->rq, payload, 10, 10);
    ms.buffered += 10;
    a->rfin = true;
    gni_mstate_check_fin(&ms, a);
    CHECK(gni_mstate_next_event(&ms, &type) == NULL);
    CHECK_EQ(gni_mstate_read(&ms, a, buf, 4), 4);
    CHECK_MEM(buf, payload, 4);
    CHECK(gni_mstate_next_event(&ms, &type) == NULL);
    CHECK_EQ(gni_mstate_consume(&ms, a, 100), 6);
    CHECK_EQ(ms.buffered, 0);
    CHECK(gni_mstate_next_event(&ms, &type) == a);
    CHECK_EQ(type, GNI_MSTATE_EV_FIN);
    gni_mstate_check_fin(&ms, a); /* once */
    CHECK(gni_mstate_next_event(&ms, &type) == NULL);
    /* Released while data waits: freed only after it is sent. */
    CHECK_EQ(gni_mstate_release(&ms, a), 0);
    CHECK(!a->reset); /* already half-closed: not reset */
    CHECK(!gni_mstate_maybe_free(&ms, a));
    CHECK_EQ(gni_mstate_sched_take(&ms, a, buf, 8), 0);
    a->lfin_sent = true;
    CHECK(gni_mstate_maybe_free(&ms, a));
    CHECK_EQ(g_freed, 1);
    CHECK(gni_mstate_find(&ms, 1) == NULL);
    /* A writable stream released is reset (its bytes go with the reset). */
    gni_mstream *c = t_new(&ms, 5, false);
    gni_streamq_append(&c->rq, payload, 7, 7);
    ms.buffered += 7;
    CHECK_EQ(gni_mstate_release(&ms, c), 0);
    CHECK(c->reset);
    CHECK_EQ(ms.buffered, 0);
    /* A half-closed one still receiving: its unconsumed bytes are counted. */
    gni_mstream *d = t_new(&ms, 7, false);
    CHECK_OK(gni_mstate_shutdown(&ms, d));
    gni_mstate_ctrl_done(&ms, d);
    d->lfin_sent = true;
    gni_streamq_append(&d->rq, payload, 9, 9);
    ms.buffered += 9;
    CHECK_EQ(gni_mstate_release(&ms, d), 9);
    CHECK(!d->reset);
    CHECK_EQ(ms.buffered, 0);
    CHECK(!gni_mstate_maybe_free(&ms, d)); /* until the peer's FIN */
    d->rfin = true;
    CHECK(gni_mstate_maybe_free(&ms, d));
    CHECK_EQ(g_freed, 2);
    CHECK(!gni_mstate_maybe_free(&ms, c)); /* its reset frame is queued */
    /* Draining the control queue frees released streams. */
    gni_mstate_ctrl_done(&ms, b); /* b not released: stays */
    CHECK_EQ(g_freed, 2);
    CHECK(gni_mstate_ctrl_head(&ms) == c);
    gni_mstate_ctrl_done(&ms, c);
    CHECK_EQ(g_freed, 3);
    CHECK_EQ(ms.n_out, 1);
    gni_mstate_fini(&ms);
    CHECK_EQ(g_freed, 4);
}

GN_TEST(mstate_refused_set)
{
    gni_mstate ms;
    uint64_t id, key;
    uint32_t count;
    int reason;
    t_init(&ms, 1024);
    CHECK_EQ(ms.refuse_max, 1024 + GNI_MSTATE_REFUSE_MARGIN);
    CHECK_EQ(gni_mstate_refuse_bound(UINT32_MAX - 1), UINT32_MAX);
    ms.refuse_max = gni_mstate_refuse_bound(100);
    CHECK(!gni_mstate_refused_event(&ms, &key, &count, &reason));
    CHECK(!gni_mstate_refuse_peek(&ms, &id));
    CHECK(!gni_mstate_refused_has(&ms, 1)); /* no table yet */
    CHECK(!gni_mstate_refuse_cancel(&ms, 1));
    /* wire id i, key 2i + 1, up to the bound; then the peer floods */
    const unsigned max = 100 + GNI_MSTATE_REFUSE_MARGIN;
    for (unsigned i = 0; i < max; i++)
        CHECK_OK(gni_mstate_refuse(&ms, i, i * 2 + 1, GN_ESTREAMLIMIT));
    CHECK_EQ(ms.refuse_cnt, max);
    CHECK_EQ(gni_mstate_refuse(&ms, 999, 999, GN_ESTREAMLIMIT), GN_ESTREAMLIMIT);
    /* a key already waiting is not queued twice (and not counted) */
    CHECK_OK(gni_mstate_refuse(&ms, 7, 15, GN_ESTREAMLIMIT));
    CHECK_EQ(ms.refuse_cnt, max);
    CHECK(gni_mstate_want_drain(&ms));
    CHECK(gni_mstate_refused_event(&ms, &key, &count, &reason));
    CHECK_EQ(count, max);
    CHECK_EQ(key, (max - 1) * 2 + 1);
    CHECK_EQ(reason, GN_ESTREAMLIMIT);
    CHECK(!gni_mstate_refused_event(&ms, &key, &count, &reason));
    /* the peer reset two of them itself: no reset owed, room again */
    CHECK(gni_mstate_refused_has(&ms, 3));
    CHECK(gni_mstate_refuse_cancel(&ms, 3));  /* wire id 1 */
    CHECK(gni_mstate_refuse_cancel(&ms, 21)); /* wire id 10 */
    CHECK(!gni_mstate_refuse_cancel(&ms, 21));
    CHECK(!gni_mstate_refused_has(&ms, 3));
    CHECK_EQ(ms.refuse_cnt, max - 2);
    /* FIFO without the cancelled ones */
    uint64_t want[] = {0, 2, 3, 4, 5, 6, 7, 8, 9, 11};
    for (unsigned i = 0; i < GNI_ARRAY_LEN(want); i++) {
        CHECK(gni_mstate_refuse_peek(&ms, &id));
        CHECK_EQ(id, want[i]);
        gni_mstate_refuse_pop(&ms);
    }
    CHECK(!gni_mstate_refused_has(&ms, 1)); /* popped: written */
    CHECK_OK(gni_mstate_refuse(&ms, 5000, 5000, GN_EGOAWAY));
    CHECK(gni_mstate_refused_event(&ms, &key, &count, &reason));
    CHECK_EQ(count, 1);
    CHECK_EQ(key, 5000);
    CHECK_EQ(reason, GN_EGOAWAY);
    unsigned n = 0;
    uint64_t last = 0;
    while (gni_mstate_refuse_peek(&ms, &id) && n < 1000) {
        last = id;
        gni_mstate_refuse_pop(&ms);
        n++;
    }
    CHECK_EQ(n, max - 2 - GNI_ARRAY_LEN(want) + 1);
    CHECK_EQ(last, 5000);
    CHECK_EQ(ms.refused_total, max + 1);
    CHECK_EQ(ms.refuse_cnt, 0);
    CHECK(!gni_mstate_want_drain(&ms));
    /* entries still waiting are freed by fini (ASan: no leak) */
    CHECK_OK(gni_mstate_refuse(&ms, 1, 1, GN_ESTREAMLIMIT));
    CHECK_OK(gni_mstate_refuse(&ms, 2, 2, GN_ESTREAMLIMIT));
    gni_mstate_fini(&ms);
}

GN_TEST(mstate_key_calls)
{
    gni_mstate ms;
    gn_slice sl;
    uint8_t buf[16];
    int type;
    t_init(&ms, 64);
    gni_mstream *a = t_new(&ms, 10, false);
    /* Unknown and released keys are GN_ENOTFOUND for every call. */
    CHECK_EQ(gni_mstate_stream_shutdown(&ms, 11), GN_ENOTFOUND);
    CHECK_EQ(gni_mstate_stream_reset(&ms, 11), GN_ENOTFOUND);
    CHECK_EQ(gni_mstate_stream_peek(&ms, 11, &sl), GN_ENOTFOUND);
    CHECK_EQ(gni_mstate_stream_set_user_data(&ms, 11, &ms), GN_ENOTFOUND);
    CHECK_EQ(gni_mstate_stream_set_priority(&ms, 11, 1), GN_ENOTFOUND);
    CHECK_EQ(gni_mstate_stream_write(&ms, 11, payload, 1), GN_ENOTFOUND);
    CHECK_EQ(gni_mstate_stream_consume(&ms, 11, 1), GN_ENOTFOUND);
    CHECK_EQ(gni_mstate_stream_read(&ms, 11, buf, 1), GN_ENOTFOUND);
    CHECK_EQ(gni_mstate_stream_write_space(&ms, 11), 0);
    /* The calls reach the stream. */
    CHECK_OK(gni_mstate_stream_set_user_data(&ms, 10, &ms));
    CHECK(a->user_data == &ms);
    CHECK_EQ(gni_mstate_stream_set_priority(&ms, 10, 9), GN_ERANGE);
    CHECK_OK(gni_mstate_stream_set_priority(&ms, 10, 3));
    CHECK_EQ(a->prio, 3);
    CHECK_EQ(gni_mstate_stream_write_space(&ms, 10), 64);
    CHECK_EQ(gni_mstate_stream_write(&ms, 10, payload, 100), 64); /* no credit limit */
    CHECK_EQ(gni_mstate_stream_write_space(&ms, 10), 0);
    CHECK_EQ(gni_mstate_stream_peek(&ms, 10, &sl), 0);
    gni_streamq_append(&a->rq, payload, 12, 12);
    ms.buffered += 12;
    CHECK_EQ(gni_mstate_stream_peek(&ms, 10, &sl), 1);
    CHECK_EQ(sl.len, 12);
    CHECK_MEM(sl.base, payload, 12);
    CHECK_EQ(gni_mstate_stream_read(&ms, 10, buf, 5), 5);
    CHECK_MEM(buf, payload, 5);
    CHECK_OK(gni_mstate_stream_consume(&ms, 10, 100));
    CHECK_EQ(ms.buffered, 0);
    CHECK_OK(gni_mstate_stream_shutdown(&ms, 10));
    CHECK_EQ(gni_mstate_stream_shutdown(&ms, 10), GN_ESTATE);
    CHECK_OK(gni_mstate_stream_reset(&ms, 10));
    CHECK_OK(gni_mstate_stream_reset(&ms, 10)); /* already reset: 0 */
    CHECK(a->reset && (a->ctrl & T_RST));
    CHECK(gni_mstate_next_event(&ms, &type) == NULL); /* local reset: no event */
    /* After the session ended, calls that change a stream are GN_ECLOSED. */
    gni_mstream *b = t_new(&ms, 12, false);
    (void)b;
    ms.err = GN_EPROTO;
    CHECK_EQ(gni_mstate_stream_shutdown(&ms, 12), GN_ECLOSED);
    CHECK_EQ(gni_mstate_stream_reset(&ms, 12), GN_ECLOSED);
    CHECK_EQ(gni_mstate_stream_write(&ms, 12, payload, 1), GN_ECLOSED);
    CHECK_EQ(gni_mstate_stream_write_space(&ms, 12), 0);
    CHECK_OK(gni_mstate_stream_consume(&ms, 12, 1)); /* reading stays possible */
    /* Released streams are gone for the application. */
    a->released = true;
    CHECK_EQ(gni_mstate_stream_peek(&ms, 10, &sl), GN_ENOTFOUND);
    gni_mstate_fini(&ms);
    CHECK_EQ(g_freed, 2);
}

/*
 * The session send budget: the total queued stays within send_max; the
 * streams it stops wait in arrival order; a stream its own bound stopped
 * queues behind them when it comes back; a waiter that goes away (reset,
 * removed) passes its turn on.
 */
GN_TEST(mstate_send_budget_fifo)
{
    gni_mstate ms;
    int type;
    uint8_t buf[256];
    t_init(&ms, 60);
    CHECK_EQ(ms.send_max, GN_MUX_SESSION_SEND_MAX_DEFAULT); /* until the core sets it */
    ms.send_max = 100;
    gni_mstream *a = t_new(&ms, 1, false);
    gni_mstream *b = t_new(&ms, 3, false);
    gni_mstream *c = t_new(&ms, 5, false);
    gni_mstream *d = t_new(&ms, 7, false);
    CHECK_EQ(gni_mstate_write(&ms, a, payload, 60, UINT64_MAX), 60); /* a: own bound full */
    CHECK_EQ(gni_mstate_write(&ms, b, payload, 60, UINT64_MAX), 40); /* b: the budget stops it */
    CHECK_EQ(ms.send_queued, 100);
    CHECK_EQ(gni_mstate_write(&ms, c, payload, 10, UINT64_MAX), 0); /* c waits behind b */
    CHECK_EQ(gni_mstate_write(&ms, a, payload, 5, UINT64_MAX), 0);  /* a: its own bound */
    CHECK_EQ(gni_mstate_send_room(&ms, d), 0);
    CHECK(gni_mstate_next_event(&ms, &type) == NULL);
    /* 30 bytes of a drain: b (waiting longest) is told, nobody else */
    CHECK(gni_mstate_sched_next(&ms) == a);
    CHECK_EQ(gni_mstate_sched_take(&ms, a, buf, 30), 30);
    gni_mstate_check_writable(&ms, a, UINT64_MAX); /* a has room again: it queues after c */
    CHECK(gni_mstate_next_event(&ms, &type) == b);
    CHECK_EQ(type, GNI_MSTATE_EV_WRITABLE);
    CHECK(gni_mstate_next_event(&ms, &type) == NULL);
    CHECK_EQ(gni_mstate_send_room(&ms, b), 20); /* its own bound: 60 - 40 */
    CHECK_EQ(gni_mstate_send_room(&ms, c), 0);
    CHECK_EQ(gni_mstate_send_room(&ms, a), 0);
    CHECK_EQ(gni_mstate_write(&ms, d, payload, 1, UINT64_MAX), 0); /* d queues last */
    CHECK_EQ(gni_mstate_write(&ms, c, payload, 10, UINT64_MAX), 0); /* not its turn yet */
    /* b takes what it may and leaves; c is next with the 10 bytes left */
    CHECK_EQ(gni_mstate_write(&ms, b, payload, 60, UINT64_MAX), 20);
    CHECK(gni_mstate_next_event(&ms, &type) == c);
    CHECK_EQ(type, GNI_MSTATE_EV_WRITABLE);
    CHECK_EQ(gni_mstate_write(&ms, c, payload, 10, UINT64_MAX), 10);
    CHECK_EQ(ms.send_queued, 100);
    CHECK(gni_mstate_next_event(&ms, &type) == NULL); /* a is head, the budget is full */
    /* c is reset: its 10 bytes free up and a (head) is told */
    gni_mstate_reset_local(&ms, c, 0);
    CHECK(gni_mstate_next_event(&ms, &type) == a);
    CHECK_EQ(type, GNI_MSTATE_EV_WRITABLE);
    /* a goes away before writing: its turn passes to d */
    gni_mstate_reset_local(&ms, a, 0);
    CHECK(gni_mstate_next_event(&ms, &type) == d);
    CHECK_EQ(type, GNI_MSTATE_EV_WRITABLE);
    CHECK_EQ(ms.send_queued, 60);
    CHECK_EQ(gni_mstate_write(&ms, d, payload, 100, UINT64_MAX), 40);
    CHECK_EQ(ms.send_queued, 100);
    /* d, stopped by the budget again, waits at the back (alone: the head) */
    CHECK(!gni_list_empty(&ms.send_waitq));
    CHECK_EQ(gni_mstate_shutdown(&ms, d), 0); /* a half-close ends the wait */
    CHECK(gni_list_empty(&ms.send_waitq));
    CHECK(gni_mstate_next_event(&ms, &type) == NULL);
    gni_mstate_fini(&ms);
    CHECK_EQ(g_freed, 4);
}

/*
 * A higher priority class waits ahead of lower ones (strict priority, as
 * the drain), first come first served inside a class; a notified head that
 * a higher class overtook gets 0 and is told again when its turn comes.
 */
GN_TEST(mstate_send_budget_priority)
{
    gni_mstate ms;
    int type;
    uint8_t buf[256];
    t_init(&ms, 1000);
    ms.send_max = 100;
    gni_mstream *a = t_new(&ms, 1, false);
    gni_mstream *lo1 = t_new(&ms, 3, false);
    gni_mstream *lo2 = t_new(&ms, 5, false);
    gni_mstream *hi1 = t_new(&ms, 7, false);
    gni_mstream *hi2 = t_new(&ms, 9, false);
    CHECK_OK(gni_mstate_set_priority(&ms, hi1, 5));
    CHECK_OK(gni_mstate_set_priority(&ms, hi2, 5));
    CHECK_EQ(gni_mstate_write(&ms, a, payload, 100, UINT64_MAX), 100);
    CHECK_EQ(gni_mstate_write(&ms, lo1, payload, 10, UINT64_MAX), 0);
    CHECK_EQ(gni_mstate_sched_take(&ms, a, buf, 10), 90);
    CHECK(gni_mstate_next_event(&ms, &type) == lo1); /* alone: told */
    CHECK_EQ(gni_mstate_write(&ms, lo2, payload, 10, UINT64_MAX), 0);
    /* hi1 comes later but goes ahead of lo1 (told, not written yet) and lo2 */
    CHECK_EQ(gni_mstate_write(&ms, hi1, payload, 10, UINT64_MAX), 0);
    CHECK(gni_mstate_next_event(&ms, &type) == hi1);
    CHECK_EQ(type, GNI_MSTATE_EV_WRITABLE);
    CHECK_EQ(gni_mstate_write(&ms, hi2, payload, 10, UINT64_MAX), 0); /* behind hi1 */
    CHECK_EQ(gni_mstate_write(&ms, lo1, payload, 10, UINT64_MAX), 0); /* overtaken: waits */
    CHECK_EQ(gni_mstate_write(&ms, hi1, payload, 10, UINT64_MAX), 10);
    CHECK(gni_mstate_next_event(&ms, &type) == NULL); /* the budget is full again */
    CHECK_EQ(gni_mstate_sched_take(&ms, a, buf, 30), 60);
    CHECK(gni_mstate_next_event(&ms, &type) == hi2);
    CHECK_EQ(gni_mstate_write(&ms, hi2, payload, 10, UINT64_MAX), 10);
    CHECK(gni_mstate_next_event(&ms, &type) == lo1); /* then the classes below, in order */
    CHECK_EQ(gni_mstate_write(&ms, lo1, payload, 10, UINT64_MAX), 10);
    CHECK(gni_mstate_next_event(&ms, &type) == lo2);
    CHECK_EQ(gni_mstate_write(&ms, lo2, payload, 20, UINT64_MAX), 10); /* the last 10 */
    CHECK_EQ(ms.send_queued, 100);
    CHECK(gni_list_on(&lo2->wait_link)); /* the budget stopped it: it waits again */
    gni_mstate_fini(&ms);
    CHECK_EQ(g_freed, 5);
}

GN_TEST(mstate_config_defaults)
{
    gn_mux_config c, in;
    gni_mstate_config(&c, NULL);
    CHECK_EQ(c.version, GN_MUX_CONFIG_VERSION);
    CHECK_EQ(c.max_inbound_streams, 1024);
    CHECK_EQ(c.max_outbound_streams, 1024);
    CHECK_EQ(c.max_pending_streams, 256);
    CHECK_EQ(c.stream_buffer_max, 1024 * 1024);
    CHECK_EQ(c.session_buffer_max, 64 * 1024 * 1024);
    CHECK_EQ(c.session_send_max, 16 * 1024 * 1024);
    CHECK_EQ(c.session_send_max, GN_MUX_SESSION_SEND_MAX_DEFAULT);
    CHECK_EQ(c.max_frame_len, 0); /* the core's to choose */
    memset(&in, 0, sizeof(in));
    in.version = GN_MUX_CONFIG_VERSION;
    in.max_inbound_streams = 3;
    in.stream_buffer_max = 100;
    in.keepalive_interval = 7;
    gni_mstate_config(&c, &in);
    CHECK_EQ(c.max_inbound_streams, 3);
    CHECK_EQ(c.max_outbound_streams, 1024);
    CHECK_EQ(c.stream_buffer_max, 100);
    CHECK_EQ(c.keepalive_interval, 7); /* copied as given */
}

GN_TEST_MAIN(GN_T(mstate_table_and_counters), GN_T(mstate_events_coalesced_and_ordered),
             GN_T(mstate_scheduler_priority_round_robin), GN_T(mstate_write_limits_and_writable),
             GN_T(mstate_reset_local_and_remote), GN_T(mstate_fin_release_and_free),
             GN_T(mstate_refused_set), GN_T(mstate_key_calls), GN_T(mstate_send_budget_fifo),
             GN_T(mstate_send_budget_priority), GN_T(mstate_config_defaults))
