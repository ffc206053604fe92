/*
 * ergo_uv_harness.h - what the tests of the Ergo libuv adapter
 * (protocols/ergo/ergo_uv.c) share: one loop, a bounded run-until, the
 * endpoint options, the connection callbacks, sequence frames, and the
 * node-close counter. Include once per test program, after gn_test.h and
 * after the test's own `side` type, which must have the members
 *   gni_ergo_conn *c; unsigned conns, downs, link_errors; int last_err;
 *   char diag[256];
 * (the callbacks' user_data is a side).
 */
#ifndef GN_ERGO_UV_HARNESS_H
#define GN_ERGO_UV_HARNESS_H

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <uv.h>

#include "ergo_uv.h"

static uv_loop_t loop;

static void ergo_test_tick(uv_timer_t *t) { (void)t; }

/* runs the loop until @cond or 10 s of loop time (a 50 ms tick keeps the loop from
 * blocking when nothing happens); returns whether cond held */
#define RUN_UNTIL(cond)                                                                      \
    do {                                                                                     \
        uv_timer_t tick_;                                                                    \
        uv_timer_init(&loop, &tick_);                                                        \
        uv_timer_start(&tick_, ergo_test_tick, 50, 50);                                      \
        uint64_t t0_ = uv_now(&loop);                                                        \
        while (!(cond) && uv_now(&loop) - t0_ < 10000) {                                     \
            uv_run(&loop, UV_RUN_ONCE);                                                      \
            uv_update_time(&loop);                                                           \
        }                                                                                    \
        uv_close((uv_handle_t *)&tick_, NULL);                                               \
        uv_run(&loop, UV_RUN_NOWAIT); /* the tick's close completes */                       \
        CHECK(cond);                                                                         \
    } while (0)

/* runs the loop for @ms of loop time */
#define RUN_FOR(ms)                                                                          \
    do {                                                                                     \
        uint64_t t1_ = uv_now(&loop);                                                        \
        RUN_UNTIL(uv_now(&loop) - t1_ >= (ms));                                              \
    } while (0)

/* writes to a link the peer closed must fail, not kill the test */
static inline void ergo_test_block_sigpipe(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

/* An endpoint on 127.0.0.1 (any port) with Ergo's default flags and @cb / @ud. */
static inline gni_ergo_options ergo_test_options(const gn_edf_registry *r, const char *node,
                                                 const char *cookie, const gni_ergo_callbacks *cb,
                                                 void *ud)
{
    gni_ergo_options o;
    memset(&o, 0, sizeof o);
    o.reg = r;
    o.node = node;
    o.cookie = cookie;
    o.flags = GNI_EHS_FLAGS_DEFAULT;
    o.creation = 1795235514;
    o.cb = *cb;
    o.user_data = ud;
    return o;
}

/* The 42-byte 101 frame (to 1004) that carries sender @from's sequence number @seq
 * as an EDF int64 at [33]; the order byte is @from mod 255. */
static inline void frame101(uint8_t f[42], uint64_t from, int64_t seq)
{
    static const uint8_t head[8] = {0x4e, 0x01, 0, 0, 0, 42, 0, 101};
    memset(f, 0, 42);
    memcpy(f, head, 8);
    f[6] = (uint8_t)(from % 255);
    for (int i = 0; i < 8; i++) {
        f[8 + i] = (uint8_t)(from >> (56 - 8 * i));
        f[25 + i] = (uint8_t)((uint64_t)1004 >> (56 - 8 * i));
        f[34 + i] = (uint8_t)((uint64_t)seq >> (56 - 8 * i));
    }
    f[33] = 0x95; /* EDF int64 */
}

/* @per_sender rounds of one frame101 from each of the @nsend senders 1001.. on @c */
static inline void ergo_test_send_batch(gni_ergo_conn *c, int64_t *seq, unsigned nsend,
                                        unsigned per_sender)
{
    uint8_t f[42];
    for (unsigned i = 0; i < per_sender; i++)
        for (unsigned k = 0; k < nsend; k++) {
            frame101(f, 1001 + k, ++seq[k]);
            CHECK_OK(gni_ergo_conn_send(c, 1001 + k, true, f, sizeof f));
        }
}

static void on_conn(gni_ergo_conn *c, void *ud)
{
    side *s = ud;
    s->c = c;
    s->conns++;
}

static void on_down(gni_ergo_conn *c, void *ud)
{
    side *s = ud;
    if (s->c == c)
        s->c = NULL;
    s->downs++;
}

static void on_link_error(gni_ergo_node *n, int err, const char *diag, void *ud)
{
    side *s = ud;
    (void)n;
    s->link_errors++;
    s->last_err = err;
    snprintf(s->diag, sizeof s->diag, "%s", diag);
}

static unsigned closed; /* nodes whose close finished */
static inline void on_closed(void *ud)
{
    (void)ud;
    closed++;
}

#endif /* GN_ERGO_UV_HARNESS_H */
