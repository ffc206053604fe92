/* ping: the core with a deterministic RNG, and the drivers over the pipe. */
#include "golemnet/golemnet.h"
#include "ping.h"

#include "gn_pipe.h"
#include "gn_test.h"
#include "apps_test.h"

GN_TEST(core_payload_split_and_rtt)
{
    counter_rng c = {0x10};
    gn_rng rng = {counter_fill, &c};
    gni_ping_core p;
    gni_ping_core_init(&p);
    uint8_t out[GNI_PING_SIZE];
    CHECK_OK(gni_ping_core_start(&p, &rng, 1000, out));
    /* the payload is the RNG's next 32 bytes: 10 11 ... 2f */
    for (int i = 0; i < GNI_PING_SIZE; i++)
        CHECK_EQ(out[i], 0x10 + i);
    CHECK_EQ(gni_ping_core_start(&p, &rng, 1000, out), GN_ESTATE);
    size_t used = 0;
    gn_time rtt = 0;
    /* echoed in 3 pieces */
    CHECK_EQ(gni_ping_core_feed(&p, out, 5, &used, 1100, &rtt), 0);
    CHECK_EQ(used, 5);
    CHECK_EQ(gni_ping_core_feed(&p, out + 5, 20, &used, 1200, &rtt), 0);
    CHECK_EQ(used, 20);
    /* the last piece carries 3 extra bytes: only 7 are consumed */
    uint8_t tail[10];
    memcpy(tail, out + 25, 7);
    memset(tail + 7, 0xee, 3);
    CHECK_EQ(gni_ping_core_feed(&p, tail, 10, &used, 1500, &rtt), 1);
    CHECK_EQ(used, 7);
    CHECK_EQ(rtt, 500);
    /* same clock reading: rtt is still > 0 */
    CHECK_OK(gni_ping_core_start(&p, &rng, 2000, out));
    CHECK_EQ(out[0], 0x30);
    CHECK_EQ(gni_ping_core_feed(&p, out, GNI_PING_SIZE, &used, 2000, &rtt), 1);
    CHECK_EQ(rtt, 1);
}

GN_TEST(core_bad_echo)
{
    counter_rng c = {0};
    gn_rng rng = {counter_fill, &c};
    gni_ping_core p;
    gni_ping_core_init(&p);
    uint8_t out[GNI_PING_SIZE];
    size_t used = 7;
    gn_time rtt = 0;
    /* nothing outstanding */
    CHECK_EQ(gni_ping_core_feed(&p, out, 1, &used, 0, &rtt), GN_EPROTO);
    CHECK_EQ(used, 0);
    CHECK_OK(gni_ping_core_start(&p, &rng, 0, out));
    out[31] ^= 0x80;
    CHECK_EQ(gni_ping_core_feed(&p, out, 31, &used, 0, &rtt), 0);
    CHECK_EQ(gni_ping_core_feed(&p, out + 31, 1, &used, 0, &rtt), GN_EPROTO);
}

typedef struct pings {
    int done;
    int ok;
    int status;
    gn_time rtt[8];
    gni_pinger *p;
    int want;
    int served;
    int serve_status;
} pings;

static void on_ping(void *arg, int status, gn_time rtt)
{
    pings *t = arg;
    t->status = status;
    if (status == 0) {
        t->rtt[t->ok++] = rtt;
        if (t->ok < t->want) {
            if (gni_pinger_ping(t->p, 0, on_ping, t) == 0)
                return;
        }
    }
    t->done = 1;
}

static void on_served(void *arg, int status)
{
    pings *t = arg;
    t->served++;
    t->serve_status = status;
}

GN_TEST(driver_five_pings_on_one_stream)
{
    gn_stream *a, *b;
    gn_pipe *pp = gn_pipe_new(loop, &a, &b);
    pp->chunk = 7; /* deliver in odd pieces */
    pings t = {0};
    t.want = 5;
    CHECK_OK(gni_ping_serve(b, on_served, &t));
    CHECK_OK(gni_pinger_new(a, NULL, &t.p));
    CHECK_OK(gni_pinger_ping(t.p, 2 * GN_S, on_ping, &t));
    CHECK_EQ(gni_pinger_ping(t.p, 0, on_ping, &t), GN_ESTATE); /* one at a time */
    CHECK_EQ(t.done, 0);
    spin_until(&t.done, 1000);
    CHECK_EQ(t.status, 0);
    CHECK_EQ(t.ok, 5);
    for (int i = 0; i < 5; i++)
        CHECK(t.rtt[i] > 0);
    gni_pinger_close(t.p);
    spin_until(&t.served, 100);
    CHECK_EQ(t.served, 1);
    CHECK_EQ(t.serve_status, 0); /* our half-close ended the server cleanly */
    spin(10);
}

GN_TEST(driver_bad_echo_and_cancel)
{
    gn_stream *a, *b;
    /* a "server" that answers with 32 zero bytes */
    gn_pipe_new(loop, &a, &b);
    counter_rng c = {1};
    gn_rng rng = {counter_fill, &c};
    pings t = {0};
    t.want = 1;
    CHECK_OK(gni_pinger_new(a, &rng, &t.p));
    CHECK_OK(gni_pinger_ping(t.p, 0, on_ping, &t));
    static const uint8_t zeros[GNI_PING_SIZE];
    gn_slice iov = gn_slice_of(zeros, sizeof zeros);
    CHECK_OK(gn_stream_write(b, &iov, 1, NULL, NULL));
    spin_until(&t.done, 100);
    CHECK_EQ(t.status, GN_EPROTO);
    CHECK_EQ(gni_pinger_ping(t.p, 0, on_ping, &t), GN_EPROTO); /* sticky */
    gni_pinger_close(t.p);
    gn_stream_close(b, NULL, NULL);
    spin(10);
    /* close with a ping outstanding: GN_ECANCELED, from the loop */
    gn_pipe_new(loop, &a, &b);
    pings u = {0};
    u.want = 1;
    CHECK_OK(gni_pinger_new(a, NULL, &u.p));
    CHECK_OK(gni_pinger_ping(u.p, 0, on_ping, &u));
    gni_pinger_close(u.p);
    CHECK_EQ(u.done, 0);
    spin_until(&u.done, 100);
    CHECK_EQ(u.status, GN_ECANCELED);
    gn_stream_close(b, NULL, NULL);
    spin(10);
    /* the peer closes: GN_EEOF */
    gn_pipe_new(loop, &a, &b);
    pings v = {0};
    v.want = 1;
    CHECK_OK(gni_pinger_new(a, NULL, &v.p));
    CHECK_OK(gni_pinger_ping(v.p, 0, on_ping, &v));
    gn_stream_close(b, NULL, NULL);
    spin_until(&v.done, 100);
    CHECK_EQ(v.status, GN_EEOF);
    gni_pinger_close(v.p);
    spin(10);
}

APPS_TEST_MAIN(GN_T(core_payload_split_and_rtt), GN_T(core_bad_echo),
               GN_T(driver_five_pings_on_one_stream), GN_T(driver_bad_echo_and_cancel))
