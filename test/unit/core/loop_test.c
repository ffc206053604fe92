/* Unit tests for gn_loop, gn_timer (core/loop.c) and gn_evq (core/evq.c). */
#include "golemnet/err.h"
#include "golemnet/loop.h"

#include "gn_test.h"
#include "gn_test_msize.h"
#include "gn_test_os.h"
#include "gni.h"

#include <stdatomic.h>
#include <uv.h>

/* ------------------------------------------------------------------ */
/* command queue                                                       */

#define NPROD 4
#define NPER 10000

typedef struct mp_state {
    gn_loop *loop;
    int producer;
    /* written on the loop thread, read after gn_loop_free (join) */
    long last_seq[NPROD];
    long ran[NPROD];
    long order_errors;
    long off_thread;
    /* per producer */
    long eagain;
    int submit_errors;
} mp_state;

static mp_state mp;
static mp_state mp_prod[NPROD];

static void mp_cmd(gn_loop *loop, void *arg)
{
    uintptr_t v = (uintptr_t)arg;
    int p = (int)(v >> 20);
    long seq = (long)(v & 0xFFFFF);
    if (!gn_loop_on_thread(loop))
        mp.off_thread++;
    if (seq != mp.last_seq[p] + 1)
        mp.order_errors++;
    mp.last_seq[p] = seq;
    mp.ran[p]++;
}

static void mp_producer(void *arg)
{
    mp_state *ps = arg;
    for (long i = 0; i < NPER; i++) {
        void *a = (void *)(((uintptr_t)ps->producer << 20) | (uintptr_t)i);
        int rc;
        long tries = 0;
        /* Bounded: give up after ~10 s of consecutive backpressure. */
        while ((rc = gn_loop_submit(ps->loop, mp_cmd, a)) == GN_EAGAIN && tries < 10000000) {
            ps->eagain++;
            tries++;
            if (tries % 64 == 0)
                uv_sleep(1);
        }
        if (rc != 0) {
            ps->submit_errors++;
            return;
        }
    }
}

GN_TEST(loop_submit_multi_producer)
{
    memset(&mp, 0, sizeof mp);
    for (int p = 0; p < NPROD; p++)
        mp.last_seq[p] = -1;
    gn_loop_config cfg;
    gn_loop_config_default(&cfg);
    cfg.cmdq_capacity = 256; /* small, so producers see backpressure */
    CHECK_OK(gn_loop_new(&cfg, &mp.loop));
    CHECK_OK(gn_loop_start_thread(mp.loop));
    CHECK(!gn_loop_on_thread(mp.loop));

    uv_thread_t th[NPROD];
    for (int p = 0; p < NPROD; p++) {
        memset(&mp_prod[p], 0, sizeof mp_prod[p]);
        mp_prod[p].loop = mp.loop;
        mp_prod[p].producer = p;
        CHECK_EQ(uv_thread_create(&th[p], mp_producer, &mp_prod[p]), 0);
    }
    for (int p = 0; p < NPROD; p++)
        uv_thread_join(&th[p]);
    gn_loop_stop(mp.loop); /* pending commands still run */
    gn_loop_free(mp.loop);

    long eagain = 0;
    for (int p = 0; p < NPROD; p++) {
        CHECK_EQ(mp_prod[p].submit_errors, 0);
        CHECK_EQ(mp.ran[p], NPER);
        CHECK_EQ(mp.last_seq[p], NPER - 1);
        eagain += mp_prod[p].eagain;
    }
    CHECK_EQ(mp.order_errors, 0);
    CHECK_EQ(mp.off_thread, 0);
    printf("# %ld EAGAIN retries\n", eagain);
}

static int cnt_ran;
static int cnt_order_err;
static void cnt_cmd(gn_loop *loop, void *arg)
{
    (void)loop;
    if ((intptr_t)arg != cnt_ran)
        cnt_order_err++;
    cnt_ran++;
}

GN_TEST(loop_queue_full_and_closed)
{
    gn_loop *loop;
    gn_loop_config cfg;
    gn_loop_config_default(&cfg);
    cfg.cmdq_capacity = 8;
    cnt_ran = cnt_order_err = 0;
    CHECK_OK(gn_loop_new(&cfg, &loop));
    /* Nobody runs the loop: the ring fills up. */
    for (intptr_t i = 0; i < 8; i++)
        CHECK_EQ(gn_loop_submit(loop, cnt_cmd, (void *)i), 0);
    CHECK_EQ(gn_loop_submit(loop, cnt_cmd, (void *)8), GN_EAGAIN);
    CHECK_EQ(gn_loop_submit(loop, cnt_cmd, (void *)8), GN_EAGAIN);
    CHECK_EQ(cnt_ran, 0);
    gn_loop_stop(loop);
    gn_loop_stop(loop); /* idempotent */
    CHECK_EQ(gn_loop_submit(loop, cnt_cmd, (void *)99), GN_ECLOSED);
    /* free drives the stop: the 8 accepted commands run, in order, once */
    gn_loop_free(loop);
    CHECK_EQ(cnt_ran, 8);
    CHECK_EQ(cnt_order_err, 0);
}

static atomic_int rsv_ran;
static int rsv_ring_before; /* published by rsv_ran */
static void rsv_cmd(gn_loop *loop, void *arg)
{
    (void)loop;
    (void)arg;
    rsv_ring_before = cnt_ran;
    atomic_fetch_add(&rsv_ran, 1);
}

static void block_cmd(gn_loop *loop, void *arg)
{
    (void)loop;
    uv_sem_t *s = arg;
    uv_sem_post(&s[0]);
    uv_sem_wait(&s[1]);
}

/* A reserved command is accepted with the ring full, runs once (queued
 * twice before it ran), and only after every ring command accepted before
 * it, even when the loop thread's per-wakeup budget ran out part way (a
 * blocking command took one unit of it). */
GN_TEST(loop_reserved_cmd_full_ring)
{
    gn_loop *loop;
    gn_loop_config cfg;
    gn_loop_config_default(&cfg);
    cfg.cmdq_capacity = 8;
    cnt_ran = cnt_order_err = 0;
    atomic_store(&rsv_ran, 0);
    rsv_ring_before = 0;
    CHECK_OK(gn_loop_new(&cfg, &loop));
    CHECK_OK(gn_loop_start_thread(loop));
    uv_sem_t s[2];
    uv_sem_init(&s[0], 0);
    uv_sem_init(&s[1], 0);
    CHECK_OK(gn_loop_submit(loop, block_cmd, s));
    uv_sem_wait(&s[0]); /* the loop thread is inside block_cmd */
    for (intptr_t i = 0; i < 8; i++)
        CHECK_EQ(gn_loop_submit(loop, cnt_cmd, (void *)i), 0);
    CHECK_EQ(gn_loop_submit(loop, cnt_cmd, (void *)8), GN_EAGAIN);
    gni_loop_cmd rc = {.fn = rsv_cmd};
    CHECK_OK(gni_loop_submit_cmd(loop, &rc));
    CHECK_OK(gni_loop_submit_cmd(loop, &rc)); /* still queued: runs once */
    uv_sem_post(&s[1]);
    for (int i = 0; i < 5000 && atomic_load(&rsv_ran) == 0; i++)
        uv_sleep(1);
    uv_sleep(20);
    CHECK_EQ(atomic_load(&rsv_ran), 1);
    CHECK_EQ(rsv_ring_before, 8);
    CHECK_EQ(cnt_ran, 8);
    CHECK_EQ(cnt_order_err, 0);
    /* once it ran it can be queued again */
    CHECK_OK(gni_loop_submit_cmd(loop, &rc));
    for (int i = 0; i < 5000 && atomic_load(&rsv_ran) == 1; i++)
        uv_sleep(1);
    CHECK_EQ(atomic_load(&rsv_ran), 2);
    gn_loop_stop(loop);
    CHECK_EQ(gni_loop_submit_cmd(loop, &rc), GN_ECLOSED);
    CHECK_EQ(gni_loop_submit_cmd(NULL, &rc), GN_EINVAL);
    gn_loop_free(loop);
    uv_sem_destroy(&s[0]);
    uv_sem_destroy(&s[1]);
}

GN_TEST(loop_config_errors)
{
    gn_loop *loop = (gn_loop *)(uintptr_t)1;
    gn_loop_config cfg;
    gn_loop_config_default(&cfg);
    CHECK_EQ(cfg.version, GN_LOOP_CONFIG_VERSION);
    CHECK_EQ(cfg.cmdq_capacity, 4096);
    CHECK(!cfg.virtual_clock);
    cfg.version = 99;
    CHECK_EQ(gn_loop_new(&cfg, &loop), GN_EINVAL);
    gn_loop_config_default(&cfg);
    cfg.cmdq_capacity = 0;
    CHECK_EQ(gn_loop_new(&cfg, &loop), GN_EINVAL);
    CHECK(loop == (gn_loop *)(uintptr_t)1); /* out untouched */
    CHECK_OK(gn_loop_new(NULL, &loop));
    CHECK(!gn_loop_is_virtual(loop));
    CHECK(gn_loop_uv(loop) != NULL);
    CHECK_EQ(gn_loop_advance(loop, GN_MS), GN_ESTATE);
    gn_loop_free(loop); /* never run, never stopped */
}

/* ---- start / stop / free on a thread ---- */

static atomic_int th_ran;
static atomic_int th_on_thread;
static void th_cmd(gn_loop *loop, void *arg)
{
    (void)arg;
    if (gn_loop_on_thread(loop))
        atomic_fetch_add(&th_on_thread, 1);
    atomic_fetch_add(&th_ran, 1);
}

static void th_stop_cmd(gn_loop *loop, void *arg)
{
    (void)arg;
    gn_loop_stop(loop); /* from the loop thread itself */
}

GN_TEST(loop_thread_stop_submit_closed)
{
    gn_loop *loop;
    atomic_store(&th_ran, 0);
    atomic_store(&th_on_thread, 0);
    CHECK_OK(gn_loop_new(NULL, &loop));
    CHECK(gn_loop_on_thread(loop)); /* the creator, while nobody runs it */
    CHECK_OK(gn_loop_start_thread(loop));
    CHECK(!gn_loop_on_thread(loop));
    CHECK_EQ(gn_loop_start_thread(loop), GN_ESTATE);
    CHECK_EQ(gn_loop_run(loop, GN_RUN_NOWAIT), GN_ESTATE);
    for (int i = 0; i < 100; i++)
        CHECK_EQ(gn_loop_submit(loop, th_cmd, NULL), 0);
    /* wait (bounded) until they ran, so the thread is known to be live */
    for (int i = 0; i < 5000 && atomic_load(&th_ran) < 100; i++)
        uv_sleep(1);
    CHECK_EQ(atomic_load(&th_ran), 100);
    CHECK_EQ(atomic_load(&th_on_thread), 100);
    for (int i = 0; i < 10; i++)
        CHECK_EQ(gn_loop_submit(loop, th_cmd, NULL), 0);
    gn_loop_stop(loop);
    CHECK_EQ(gn_loop_submit(loop, th_cmd, NULL), GN_ECLOSED);
    gn_loop_free(loop);
    CHECK_EQ(atomic_load(&th_ran), 110); /* accepted before stop: all ran */

    /* stop requested by a command on the loop thread */
    CHECK_OK(gn_loop_new(NULL, &loop));
    CHECK_OK(gn_loop_start_thread(loop));
    CHECK_EQ(gn_loop_submit(loop, th_stop_cmd, NULL), 0);
    int rc = 0;
    for (int i = 0; i < 5000; i++) {
        rc = gn_loop_submit(loop, th_cmd, NULL);
        if (rc == GN_ECLOSED)
            break;
        uv_sleep(1);
    }
    CHECK_EQ(rc, GN_ECLOSED);
    gn_loop_free(loop);
}

/* ---- gn_loop_run on the caller thread ---- */

static void run_stop_cmd(gn_loop *loop, void *arg)
{
    int *flag = arg;
    *flag = 1;
    gn_loop_stop(loop);
}

GN_TEST(loop_run_on_caller)
{
    gn_loop *loop;
    int flag = 0;
    CHECK_OK(gn_loop_new(NULL, &loop));
    CHECK_EQ(gn_loop_submit(loop, run_stop_cmd, &flag), 0);
    /* returns once the stop closed the loop's handles */
    int rc = gn_loop_run(loop, GN_RUN_DEFAULT);
    CHECK_EQ(rc, 0);
    CHECK_EQ(flag, 1);
    CHECK(gn_loop_on_thread(loop));
    CHECK_EQ(gn_loop_defer(loop, th_cmd, NULL), GN_ECLOSED);
    gn_loop_free(loop);
}

/* ---- embedded in an application's loop ---- */

static int emb_timer_fired;
static void emb_timer_cb(gn_timer *t, void *arg)
{
    (void)t;
    (void)arg;
    emb_timer_fired++;
    gn_loop_stop(t->loop);
}

static gn_timer emb_timer;
static void emb_cmd(gn_loop *loop, void *arg)
{
    (void)arg;
    gn_timer_init(loop, &emb_timer);
    gn_timer_start(&emb_timer, 5 * GN_MS, emb_timer_cb, NULL);
}

GN_TEST(loop_embedded)
{
    uv_loop_t app;
    gn_loop *loop;
    CHECK_EQ(uv_loop_init(&app), 0);
    CHECK_OK(gn_loop_new_embedded(&app, NULL, &loop));
    CHECK(gn_loop_uv(loop) == &app);
    CHECK_EQ(gn_loop_start_thread(loop), GN_ESTATE);
    emb_timer_fired = 0;
    CHECK_EQ(gn_loop_submit(loop, emb_cmd, NULL), 0);
    /* the application runs its loop; it returns once golemnet closed its handles */
    uint64_t t0 = uv_hrtime();
    int rc = uv_run(&app, UV_RUN_DEFAULT);
    CHECK_EQ(rc, 0);
    CHECK_EQ(emb_timer_fired, 1);
    CHECK(uv_hrtime() - t0 >= 5 * GN_MS);
    gn_loop_free(loop);
    CHECK_EQ(uv_loop_close(&app), 0); /* nothing of ours left */

    /* freed before the app ran the close: freed in the last close callback */
    CHECK_EQ(uv_loop_init(&app), 0);
    CHECK_OK(gn_loop_new_embedded(&app, NULL, &loop));
    cnt_ran = cnt_order_err = 0;
    CHECK_EQ(gn_loop_submit(loop, cnt_cmd, (void *)0), 0);
    gn_loop_stop(loop);
    gn_loop_free(loop);
    CHECK_EQ(uv_run(&app, UV_RUN_DEFAULT), 0);
    CHECK_EQ(cnt_ran, 1);
    CHECK_EQ(uv_loop_close(&app), 0);
}

/* ------------------------------------------------------------------ */
/* defer                                                               */

static char dlog[64];
static size_t dlog_len;
static int in_defer_call;
static int reentered;

static void dlog_add(char c)
{
    if (dlog_len + 1 < sizeof dlog)
        dlog[dlog_len++] = c;
    dlog[dlog_len] = 0;
}

static void d_plain(gn_loop *loop, void *arg)
{
    (void)loop;
    if (in_defer_call)
        reentered++;
    dlog_add((char)(intptr_t)arg);
}

static void d_chain(gn_loop *loop, void *arg)
{
    dlog_add((char)(intptr_t)arg);
    in_defer_call = 1;
    int rc = gn_loop_defer(loop, d_plain, (void *)(intptr_t)'D');
    in_defer_call = 0;
    if (rc != 0)
        dlog_add('!');
}

static int self_count;
static void d_self(gn_loop *loop, void *arg)
{
    (void)arg;
    self_count++;
    if (gn_loop_defer(loop, d_self, NULL) != 0)
        self_count += 1000;
}

GN_TEST(loop_defer_order_no_reentry)
{
    gn_loop *loop;
    dlog_len = 0;
    dlog[0] = 0;
    reentered = 0;
    CHECK_OK(gn_loop_new(NULL, &loop));
    in_defer_call = 1;
    CHECK_EQ(gn_loop_defer(loop, d_plain, (void *)(intptr_t)'A'), 0);
    CHECK_EQ(gn_loop_defer(loop, d_chain, (void *)(intptr_t)'B'), 0);
    CHECK_EQ(gn_loop_defer(loop, d_plain, (void *)(intptr_t)'C'), 0);
    in_defer_call = 0;
    CHECK_STR(dlog, ""); /* nothing ran inside gn_loop_defer */

    CHECK_OK(gn_loop_run(loop, GN_RUN_NOWAIT));
    CHECK_STR(dlog, "ABC"); /* D was deferred during this iteration: not yet */
    CHECK_OK(gn_loop_run(loop, GN_RUN_NOWAIT));
    CHECK_STR(dlog, "ABCD");
    CHECK_EQ(reentered, 0);
    CHECK_OK(gn_loop_run(loop, GN_RUN_NOWAIT));
    CHECK_STR(dlog, "ABCD");

    /* a call that re-defers itself runs once per iteration, never spins */
    self_count = 0;
    CHECK_EQ(gn_loop_defer(loop, d_self, NULL), 0);
    for (int i = 0; i < 5; i++)
        CHECK_OK(gn_loop_run(loop, GN_RUN_NOWAIT));
    CHECK_EQ(self_count, 5);
    /* GN_RUN_ONCE must not block while a deferred call is pending */
    uint64_t t0 = uv_hrtime();
    CHECK_OK(gn_loop_run(loop, GN_RUN_ONCE));
    CHECK_EQ(self_count, 6);
    CHECK(uv_hrtime() - t0 < 1 * GN_S);
    gn_loop_free(loop); /* stop: the self-deferring call is cut off after a bound */
    CHECK(self_count < 6 + 2000);
}

/* ------------------------------------------------------------------ */
/* timers: real clock                                                   */

typedef struct rt_rec {
    int order[8];
    int n;
    gn_time fired_at[8];
} rt_rec;

static rt_rec rt;
static gn_time rt_t0;

static void rt_cb(gn_timer *t, void *arg)
{
    (void)t;
    int id = (int)(intptr_t)arg;
    if (rt.n < 8) {
        rt.order[rt.n] = id;
        rt.fired_at[rt.n] = gn_now() - rt_t0;
        rt.n++;
    }
}

GN_TEST(timer_real_clock_order)
{
    gn_loop *loop;
    gn_timer t[4];
    memset(&rt, 0, sizeof rt);
    CHECK_OK(gn_loop_new(NULL, &loop));
    for (int i = 0; i < 4; i++)
        gn_timer_init(loop, &t[i]);
    rt_t0 = gn_now();
    CHECK_OK(gn_timer_start(&t[0], 30 * GN_MS, rt_cb, (void *)(intptr_t)30));
    CHECK_OK(gn_timer_start(&t[1], 10 * GN_MS, rt_cb, (void *)(intptr_t)10));
    CHECK_OK(gn_timer_start(&t[2], 20 * GN_MS, rt_cb, (void *)(intptr_t)20));
    CHECK_OK(gn_timer_start(&t[3], 15 * GN_MS, rt_cb, (void *)(intptr_t)15));
    gn_timer_stop(&t[3]); /* never fires */
    CHECK(!gn_timer_active(&t[3]));
    CHECK(gn_timer_active(&t[0]));
    /* bounded: at most 5 s of wall time */
    while (rt.n < 3 && gn_now() - rt_t0 < 5 * GN_S)
        gn_loop_run(loop, GN_RUN_ONCE);
    CHECK_EQ(rt.n, 3);
    CHECK_EQ(rt.order[0], 10);
    CHECK_EQ(rt.order[1], 20);
    CHECK_EQ(rt.order[2], 30);
    CHECK(rt.fired_at[0] >= 10 * GN_MS);
    CHECK(rt.fired_at[1] >= 20 * GN_MS);
    CHECK(rt.fired_at[2] >= 30 * GN_MS);
    for (int i = 0; i < 4; i++)
        CHECK(!gn_timer_active(&t[i]));
    /* and nothing more fires */
    CHECK_OK(gn_loop_run(loop, GN_RUN_NOWAIT));
    CHECK_EQ(rt.n, 3);
    gn_loop_free(loop);
}

static atomic_int tt_fired;
static gn_timer tt_timer;
static void tt_cb(gn_timer *t, void *arg)
{
    (void)arg;
    if (gn_loop_on_thread(t->loop))
        atomic_fetch_add(&tt_fired, 1);
}
static void tt_arm(gn_loop *loop, void *arg)
{
    (void)arg;
    gn_timer_init(loop, &tt_timer);
    gn_timer_start(&tt_timer, 2 * GN_MS, tt_cb, NULL);
}

GN_TEST(timer_on_loop_thread)
{
    gn_loop *loop;
    atomic_store(&tt_fired, 0);
    CHECK_OK(gn_loop_new(NULL, &loop));
    CHECK_OK(gn_loop_start_thread(loop));
    CHECK_EQ(gn_loop_submit(loop, tt_arm, NULL), 0);
    for (int i = 0; i < 5000 && atomic_load(&tt_fired) == 0; i++)
        uv_sleep(1);
    CHECK_EQ(atomic_load(&tt_fired), 1);
    gn_loop_stop(loop);
    gn_loop_free(loop);
}

/* ------------------------------------------------------------------ */
/* timers: virtual clock                                                */

typedef struct vt_ev {
    int id;
    gn_time at;
} vt_ev;

static vt_ev vlog[64];
static int vn;
static gn_loop *vloop;

static void vt_cb(gn_timer *t, void *arg)
{
    (void)t;
    if (vn < 64) {
        vlog[vn].id = (int)(intptr_t)arg;
        vlog[vn].at = gn_loop_now(vloop);
        vn++;
    }
}

static gn_loop *new_virtual(void)
{
    gn_loop_config cfg;
    gn_loop *loop = NULL;
    gn_loop_config_default(&cfg);
    cfg.virtual_clock = true;
    if (gn_loop_new(&cfg, &loop) != 0)
        return NULL;
    return loop;
}

GN_TEST(timer_virtual_due_in_order)
{
    gn_timer t[5];
    vn = 0;
    vloop = new_virtual();
    CHECK(vloop != NULL);
    CHECK(gn_loop_is_virtual(vloop));
    CHECK_EQ(gn_loop_now(vloop), 0);
    for (int i = 0; i < 5; i++)
        gn_timer_init(vloop, &t[i]);
    CHECK_OK(gn_timer_start(&t[0], 50 * GN_MS, vt_cb, (void *)(intptr_t)50));
    CHECK_OK(gn_timer_start(&t[1], 10 * GN_MS, vt_cb, (void *)(intptr_t)10));
    CHECK_OK(gn_timer_start(&t[2], 30 * GN_MS, vt_cb, (void *)(intptr_t)30));
    CHECK_OK(gn_timer_start(&t[3], 100 * GN_MS, vt_cb, (void *)(intptr_t)100));
    CHECK_OK(gn_timer_start(&t[4], 30 * GN_MS, vt_cb, (void *)(intptr_t)31)); /* same deadline, later */

    CHECK_OK(gn_loop_advance(vloop, 9 * GN_MS));
    CHECK_EQ(vn, 0);
    CHECK_EQ(gn_loop_now(vloop), 9 * GN_MS);
    CHECK_OK(gn_loop_advance(vloop, 1 * GN_MS)); /* exactly due */
    CHECK_EQ(vn, 1);
    CHECK_EQ(vlog[0].id, 10);
    CHECK_EQ(vlog[0].at, 10 * GN_MS);

    CHECK_OK(gn_loop_advance(vloop, 40 * GN_MS)); /* to 50 */
    CHECK_EQ(vn, 4);
    CHECK_EQ(vlog[1].id, 30);
    CHECK_EQ(vlog[1].at, 30 * GN_MS); /* callbacks see their own deadline */
    CHECK_EQ(vlog[2].id, 31);         /* FIFO among equal deadlines */
    CHECK_EQ(vlog[3].id, 50);
    CHECK_EQ(vlog[3].at, 50 * GN_MS);
    CHECK_EQ(gn_loop_now(vloop), 50 * GN_MS);
    CHECK(gn_timer_active(&t[3]));
    CHECK(!gn_timer_active(&t[0]));

    /* re-arming an active timer moves it */
    CHECK_OK(gn_timer_start(&t[3], 5 * GN_MS, vt_cb, (void *)(intptr_t)55));
    CHECK_OK(gn_loop_advance(vloop, 60 * GN_MS));
    CHECK_EQ(vn, 5);
    CHECK_EQ(vlog[4].id, 55);
    CHECK_EQ(vlog[4].at, 55 * GN_MS);
    CHECK_EQ(gn_loop_now(vloop), 110 * GN_MS);
    CHECK_OK(gn_loop_advance(vloop, GN_S));
    CHECK_EQ(vn, 5);
    gn_loop_free(vloop);
}

static gn_timer vs_a, vs_b, vs_c, vs_d;
static void vs_stop_others(gn_timer *t, void *arg)
{
    vt_cb(t, arg);
    gn_timer_stop(t); /* own timer: no-op, safe */
    gn_timer_stop(&vs_c); /* another timer, due later in this same advance */
    if (gn_timer_active(t))
        vt_cb(t, (void *)(intptr_t)-1);
}

static int rearm_left;
static void vs_rearm(gn_timer *t, void *arg)
{
    vt_cb(t, arg);
    if (--rearm_left > 0)
        gn_timer_start(t, 15 * GN_MS, vs_rearm, arg);
}

static void vs_arm_new(gn_timer *t, void *arg)
{
    vt_cb(t, arg);
    gn_timer_init(t->loop, &vs_d);
    gn_timer_start(&vs_d, 5 * GN_MS, vt_cb, (void *)(intptr_t)4); /* due within this advance */
}

GN_TEST(timer_virtual_stop_and_rearm_in_callback)
{
    vn = 0;
    vloop = new_virtual();
    CHECK(vloop != NULL);
    gn_timer_init(vloop, &vs_a);
    gn_timer_init(vloop, &vs_b);
    gn_timer_init(vloop, &vs_c);
    rearm_left = 3;
    CHECK_OK(gn_timer_start(&vs_a, 10 * GN_MS, vs_rearm, (void *)(intptr_t)1));     /* 10,25,40 */
    CHECK_OK(gn_timer_start(&vs_b, 20 * GN_MS, vs_stop_others, (void *)(intptr_t)2)); /* 20 */
    CHECK_OK(gn_timer_start(&vs_c, 30 * GN_MS, vt_cb, (void *)(intptr_t)3));         /* stopped */
    CHECK_OK(gn_loop_advance(vloop, 100 * GN_MS));
    CHECK_EQ(vn, 4);
    CHECK_EQ(vlog[0].id, 1);
    CHECK_EQ(vlog[0].at, 10 * GN_MS);
    CHECK_EQ(vlog[1].id, 2);
    CHECK_EQ(vlog[1].at, 20 * GN_MS);
    CHECK_EQ(vlog[2].id, 1);
    CHECK_EQ(vlog[2].at, 25 * GN_MS);
    CHECK_EQ(vlog[3].id, 1);
    CHECK_EQ(vlog[3].at, 40 * GN_MS);
    CHECK(!gn_timer_active(&vs_a));
    CHECK(!gn_timer_active(&vs_c));

    /* a timer armed by a callback fires in the same advance if it falls due */
    vn = 0;
    CHECK_OK(gn_timer_start(&vs_a, 10 * GN_MS, vs_arm_new, (void *)(intptr_t)7));
    CHECK_OK(gn_loop_advance(vloop, 12 * GN_MS)); /* 100 -> 112: a at 110, d at 115 */
    CHECK_EQ(vn, 1);
    CHECK(gn_timer_active(&vs_d));
    CHECK_OK(gn_loop_advance(vloop, 3 * GN_MS));
    CHECK_EQ(vn, 2);
    CHECK_EQ(vlog[1].id, 4);
    CHECK_EQ(vlog[1].at, 115 * GN_MS);

    vn = 0;
    CHECK_OK(gn_timer_start(&vs_a, 10 * GN_MS, vs_arm_new, (void *)(intptr_t)7));
    CHECK_OK(gn_loop_advance(vloop, 20 * GN_MS)); /* a at 125, d at 130 */
    CHECK_EQ(vn, 2);
    CHECK_EQ(vlog[0].at, 125 * GN_MS);
    CHECK_EQ(vlog[1].id, 4);
    CHECK_EQ(vlog[1].at, 130 * GN_MS);

    /* a zeroed timer has no loop: inactive, stop is a no-op, start is refused */
    gn_timer z;
    memset(&z, 0, sizeof z);
    CHECK(!gn_timer_active(&z));
    gn_timer_stop(&z);
    CHECK_EQ(gn_timer_start(&z, 1, vt_cb, NULL), GN_EINVAL);
    gn_loop_free(vloop);
}

/* Heap stress: many timers, pseudo-random deadlines and stops. */
static gn_timer hs[500];
static gn_time hs_last;
static int hs_bad, hs_fired;
static void hs_cb(gn_timer *t, void *arg)
{
    (void)arg;
    if (t->deadline < hs_last || gn_loop_now(t->loop) != t->deadline)
        hs_bad++;
    hs_last = t->deadline;
    hs_fired++;
}

GN_TEST(timer_virtual_heap_stress)
{
    gn_loop *loop = new_virtual();
    CHECK(loop != NULL);
    uint32_t x = 12345;
    int expect = 0;
    hs_last = 0;
    hs_bad = hs_fired = 0;
    for (int i = 0; i < 500; i++) {
        gn_timer_init(loop, &hs[i]);
        x = x * 1103515245u + 12345u;
        CHECK_OK(gn_timer_start(&hs[i], (gn_time)(x >> 8) % 100000, hs_cb, NULL));
    }
    for (int i = 0; i < 500; i += 3) {
        x = x * 1103515245u + 12345u;
        if (x & 0x100)
            gn_timer_stop(&hs[i]);
        else
            CHECK_OK(gn_timer_start(&hs[i], (gn_time)(x >> 8) % 100000, hs_cb, NULL));
    }
    for (int i = 0; i < 500; i++)
        expect += gn_timer_active(&hs[i]);
    for (int step = 0; step < 20; step++)
        CHECK_OK(gn_loop_advance(loop, 5000));
    CHECK_EQ(hs_fired, expect);
    CHECK_EQ(hs_bad, 0);
    for (int i = 0; i < 500; i++)
        CHECK(!gn_timer_active(&hs[i]));
    gn_loop_free(loop);
}

/* ------------------------------------------------------------------ */
/* gn_evq                                                               */

static bool fd_readable(int fd)
{
    return gts_fd_readable(fd);
}

GN_TEST(evq_basic_and_fd)
{
    gn_evq *q;
    uint32_t v;
    CHECK_EQ(gn_evq_new(0, 4, &q), GN_EINVAL);
    CHECK_EQ(gn_evq_new(4, 0, &q), GN_EINVAL);
    CHECK_OK(gn_evq_new(3, sizeof(uint32_t), &q));
    int fd = gn_evq_fd(q);
    CHECK(fd >= 0);
    CHECK(!fd_readable(fd));
    CHECK_EQ(gn_evq_pop(q, &v, 0), GN_EAGAIN);

    v = 11;
    CHECK_EQ(gn_evq_push(q, &v), 0);
    CHECK(fd_readable(fd));
    v = 22;
    CHECK_EQ(gn_evq_push(q, &v), 0);
    v = 33;
    CHECK_EQ(gn_evq_push(q, &v), 0);
    v = 44;
    CHECK_EQ(gn_evq_push(q, &v), GN_EAGAIN);
    CHECK_EQ(gn_evq_len(q), 3);

    CHECK_EQ(gn_evq_pop(q, &v, 0), 0);
    CHECK_EQ(v, 11);
    CHECK(fd_readable(fd)); /* still non-empty */
    v = 44;
    CHECK_EQ(gn_evq_push(q, &v), 0); /* wraps around the ring */
    uint32_t want[] = {22, 33, 44};
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(gn_evq_pop(q, &v, 0), 0);
        CHECK_EQ(v, want[i]);
    }
    CHECK_EQ(gn_evq_len(q), 0);
    CHECK(!fd_readable(fd)); /* drained when empty */

    /* timeout */
    gn_time t0 = gn_now();
    CHECK_EQ(gn_evq_pop(q, &v, 20 * GN_MS), GN_ETIMEDOUT);
    CHECK(gn_now() - t0 >= 20 * GN_MS);

    /* close: queued items still pop, then GN_ECLOSED; pushes fail */
    v = 55;
    CHECK_EQ(gn_evq_push(q, &v), 0);
    gn_evq_close(q);
    gn_evq_close(q);
    CHECK_EQ(gn_evq_push(q, &v), GN_ECLOSED);
    CHECK(fd_readable(fd));
    CHECK_EQ(gn_evq_pop(q, &v, GN_TIME_INFINITY), 0);
    CHECK_EQ(v, 55);
    CHECK_EQ(gn_evq_pop(q, &v, GN_TIME_INFINITY), GN_ECLOSED);
    CHECK_EQ(gn_evq_pop(q, &v, 0), GN_ECLOSED);
    CHECK(fd_readable(fd)); /* a watcher wakes up and learns of the close */
    gn_evq_free(q);
}

/* Live bytes through the allocator hooks (malloc_usable_size: frees of
 * memory allocated before the hooks were installed balance too). */
static long long evq_live;

static void *evq_cnt_malloc(void *ud, size_t len)
{
    (void)ud;
    void *p = malloc(len);
    evq_live += p ? (long long)gts_malloc_usable_size(p) : 0;
    return p;
}

static void *evq_cnt_realloc(void *ud, void *ptr, size_t len)
{
    (void)ud;
    long long old = ptr ? (long long)gts_malloc_usable_size(ptr) : 0;
    void *p = realloc(ptr, len);
    if (p) {
        evq_live += (long long)gts_malloc_usable_size(p) - old;
    }
    return p;
}

static void evq_cnt_free(void *ud, void *ptr)
{
    (void)ud;
    evq_live -= ptr ? (long long)gts_malloc_usable_size(ptr) : 0;
    free(ptr);
}

static const gn_allocator evq_cnt_allocator = {evq_cnt_malloc, evq_cnt_realloc, evq_cnt_free,
                                               NULL};

/* A large capacity costs memory only when used; growing keeps FIFO order,
 * also when the ring has wrapped, and the bound stays exact. */
GN_TEST(evq_grows_lazily_in_order)
{
    gn_set_allocator(&evq_cnt_allocator);
    long long live0 = evq_live;
    gn_evq *q;
    CHECK_OK(gn_evq_new(4096, 512, &q));
    long long empty = evq_live - live0;
    uint8_t item[512], out[512];
    uint32_t next_in = 0, next_out = 0;
    /* wrap the initial ring, then grow while wrapped */
    for (int i = 0; i < 5; i++, next_in++) {
        memset(item, 0, sizeof item);
        memcpy(item, &next_in, sizeof next_in);
        CHECK_OK(gn_evq_push(q, item));
    }
    for (int i = 0; i < 3; i++, next_out++) {
        CHECK_OK(gn_evq_pop(q, out, 0));
        CHECK(memcmp(out, &next_out, sizeof next_out) == 0);
    }
    while (gn_evq_len(q) < 4096) {
        memset(item, 0, sizeof item);
        memcpy(item, &next_in, sizeof next_in);
        item[511] = (uint8_t)next_in;
        CHECK_OK(gn_evq_push(q, item));
        next_in++;
    }
    CHECK_EQ(gn_evq_push(q, item), GN_EAGAIN);
    long long full = evq_live - live0;
    while (next_out < next_in) {
        CHECK_OK(gn_evq_pop(q, out, 0));
        CHECK(memcmp(out, &next_out, sizeof next_out) == 0);
        CHECK(next_out < 5 || out[511] == (uint8_t)next_out);
        next_out++;
    }
    CHECK_EQ(gn_evq_pop(q, out, 0), GN_EAGAIN);
    gn_evq_free(q);
    gn_set_allocator(NULL);
    printf("# evq(4096 x 512 B): %lld bytes empty, %lld full\n", empty, full);
    CHECK(empty < 16 * 1024);          /* was 2 MiB up front */
    CHECK(full >= 4096LL * 512);
}

#define EVQ_N 20000

typedef struct evq_prod {
    gn_evq *q;
    int errors;
} evq_prod;

static void evq_producer(void *arg)
{
    evq_prod *p = arg;
    for (uint32_t i = 0; i < EVQ_N; i++) {
        int rc;
        long tries = 0;
        while ((rc = gn_evq_push(p->q, &i)) == GN_EAGAIN && tries++ < 10000000) {
            if (tries % 64 == 0)
                uv_sleep(1);
        }
        if (rc != 0) {
            p->errors++;
            return;
        }
    }
}

GN_TEST(evq_across_threads)
{
    gn_evq *q;
    evq_prod p;
    CHECK_OK(gn_evq_new(64, sizeof(uint32_t), &q));
    p.q = q;
    p.errors = 0;
    uv_thread_t th;
    CHECK_EQ(uv_thread_create(&th, evq_producer, &p), 0);
    uint32_t expect = 0;
    int bad = 0, rc = 0;
    while (expect < EVQ_N) {
        uint32_t v;
        rc = gn_evq_pop(q, &v, 5 * GN_S); /* bounded wait */
        if (rc != 0)
            break;
        if (v != expect)
            bad++;
        expect++;
    }
    uv_thread_join(&th);
    CHECK_EQ(rc, 0);
    CHECK_EQ(p.errors, 0);
    CHECK_EQ(expect, EVQ_N);
    CHECK_EQ(bad, 0);
    CHECK_EQ(gn_evq_len(q), 0);
    CHECK(!fd_readable(gn_evq_fd(q)));
    gn_evq_free(q);
}

typedef struct evq_waiter {
    gn_evq *q;
    atomic_int started;
    int rc;
    gn_time waited;
} evq_waiter;

static void evq_blocked_pop(void *arg)
{
    evq_waiter *w = arg;
    uint64_t v;
    atomic_store(&w->started, 1);
    gn_time t0 = gn_now();
    /* bounded: a close that fails to wake us shows up as GN_ETIMEDOUT after 10 s */
    w->rc = gn_evq_pop(w->q, &v, 10 * GN_S);
    w->waited = gn_now() - t0;
}

GN_TEST(evq_close_wakes_popper)
{
    gn_evq *q;
    evq_waiter w;
    CHECK_OK(gn_evq_new(4, sizeof(uint64_t), &q));
    w.q = q;
    atomic_init(&w.started, 0);
    w.rc = 1;
    w.waited = 0;
    uv_thread_t th;
    CHECK_EQ(uv_thread_create(&th, evq_blocked_pop, &w), 0);
    for (int i = 0; i < 5000 && !atomic_load(&w.started); i++)
        uv_sleep(1);
    uv_sleep(50); /* let it block in the wait */
    gn_evq_close(q);
    uv_thread_join(&th);
    CHECK_EQ(w.rc, GN_ECLOSED);
    CHECK(w.waited >= 40 * GN_MS);
    CHECK(w.waited < 5 * GN_S); /* woken by the close, not by the timeout */
    gn_evq_free(q);
}

GN_TEST_MAIN(GN_T(evq_grows_lazily_in_order), GN_T(loop_submit_multi_producer), GN_T(loop_queue_full_and_closed),
             GN_T(loop_reserved_cmd_full_ring),
             GN_T(loop_config_errors), GN_T(loop_thread_stop_submit_closed),
             GN_T(loop_run_on_caller), GN_T(loop_embedded), GN_T(loop_defer_order_no_reentry),
             GN_T(timer_real_clock_order), GN_T(timer_on_loop_thread),
             GN_T(timer_virtual_due_in_order), GN_T(timer_virtual_stop_and_rearm_in_callback),
             GN_T(timer_virtual_heap_stress), GN_T(evq_basic_and_fd), GN_T(evq_across_threads),
             GN_T(evq_close_wakes_popper))
