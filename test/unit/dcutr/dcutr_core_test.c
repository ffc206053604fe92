/*
 * One DCUtR hole punch as a state machine (protocols/dcutr/dcutr_core.c)
 * on a fake clock: B's RTT measurement and RTT/2 wait, A's dial on SYNC,
 * the roles of the simultaneous open, retries on the same stream (3
 * attempts in all), timeouts, protocol violations, the address filter.
 */
#include "dcutr_core.h"

#include "gn_test.h"
#include "golemnet/err.h"
#include "golemnet/multiaddr.h"

static gni_dcutr_action act;

/* Pops exactly one action, which must be of @kind. */
static void expect(gni_dcutr_core *c, gni_dcutr_act_kind kind)
{
    CHECK(gni_dcutr_core_next(c, &act));
    CHECK_EQ(act.kind, kind);
}

static void expect_none(gni_dcutr_core *c)
{
    gni_dcutr_action a;
    CHECK(!gni_dcutr_core_next(c, &a));
}

/* A decoded message of @type with @n addresses. */
static gni_dcutr_msg msg(gni_dcutr_type type, size_t n)
{
    gni_dcutr_msg m = {.type = type};
    for (size_t i = 0; i < n; i++) {
        CHECK_OK(gn_multiaddr_parse("/ip4/1.2.3.4/tcp/4001", &m.addrs[i]));
        m.naddrs++;
    }
    return m;
}

static void feed(gni_dcutr_core *c, gni_dcutr_type type, size_t naddrs, gn_time now)
{
    gni_dcutr_msg m = msg(type, naddrs);
    gni_dcutr_core_on_msg(c, &m, now);
    gni_dcutr_msg_clear(&m);
}

#define T0 (1000 * GN_S)

GN_TEST(b_measures_rtt_and_dials_after_half)
{
    gni_dcutr_core c;
    CHECK_OK(gni_dcutr_core_init(&c, GNI_DCUTR_ROLE_B, NULL, T0));
    expect(&c, GNI_DCUTR_ACT_SEND);
    CHECK_EQ(act.msg_type, GNI_DCUTR_CONNECT);
    CHECK_EQ(act.attempt, 1);
    expect_none(&c);
    CHECK_EQ(gni_dcutr_core_deadline(&c), T0 + GNI_DCUTR_MSG_TIMEOUT_DEFAULT);
    /* A answers 80 ms later: RTT 80 ms, SYNC now, dial 40 ms later */
    feed(&c, GNI_DCUTR_CONNECT, 2, T0 + 80 * GN_MS);
    expect(&c, GNI_DCUTR_ACT_SEND);
    CHECK_EQ(act.msg_type, GNI_DCUTR_SYNC);
    expect_none(&c);
    CHECK_EQ(c.rtt, 80 * GN_MS);
    CHECK_EQ(gni_dcutr_core_deadline(&c), T0 + 120 * GN_MS);
    gni_dcutr_core_on_timer(&c, T0 + 119 * GN_MS);
    expect_none(&c);
    gni_dcutr_core_on_timer(&c, T0 + 120 * GN_MS);
    expect(&c, GNI_DCUTR_ACT_DIAL);
    CHECK(!act.as_responder); /* B is the client of the simultaneous open */
    gn_multiaddr *const *addrs;
    CHECK_EQ(gni_dcutr_core_peer_addrs(&c, &addrs), 2);
    CHECK(addrs[0] != NULL);
    CHECK_EQ(gni_dcutr_core_deadline(&c), T0 + 120 * GN_MS + GNI_DCUTR_DIAL_TIMEOUT_DEFAULT);
    gni_dcutr_core_on_dial(&c, 1, 0, T0 + 150 * GN_MS);
    expect(&c, GNI_DCUTR_ACT_DONE);
    CHECK_EQ(act.status, 0);
    CHECK(gni_dcutr_core_done(&c));
    CHECK_EQ(gni_dcutr_core_deadline(&c), GN_TIME_INFINITY);
    gni_dcutr_core_fini(&c);
}

GN_TEST(a_answers_and_dials_on_sync)
{
    gni_dcutr_core c;
    CHECK_OK(gni_dcutr_core_init(&c, GNI_DCUTR_ROLE_A, NULL, T0));
    expect_none(&c);
    feed(&c, GNI_DCUTR_CONNECT, 1, T0 + GN_MS);
    expect(&c, GNI_DCUTR_ACT_SEND);
    CHECK_EQ(act.msg_type, GNI_DCUTR_CONNECT);
    expect_none(&c);
    feed(&c, GNI_DCUTR_SYNC, 0, T0 + 2 * GN_MS);
    expect(&c, GNI_DCUTR_ACT_DIAL); /* at once, no wait */
    CHECK(act.as_responder);        /* A is the server */
    gn_multiaddr *const *addrs;
    CHECK_EQ(gni_dcutr_core_peer_addrs(&c, &addrs), 1); /* B's CONNECT, not the SYNC */
    /* B's dial reached our listener first */
    gni_dcutr_core_on_direct(&c, T0 + 3 * GN_MS);
    expect(&c, GNI_DCUTR_ACT_DONE);
    CHECK_EQ(act.status, 0);
    /* our own dial's late failure changes nothing */
    gni_dcutr_core_on_dial(&c, 1, GN_ECONNREFUSED, T0 + 4 * GN_MS);
    expect_none(&c);
    gni_dcutr_core_fini(&c);
}

GN_TEST(b_retries_then_fails)
{
    gni_dcutr_core c;
    gn_time now = T0;
    CHECK_OK(gni_dcutr_core_init(&c, GNI_DCUTR_ROLE_B, NULL, now));
    for (unsigned k = 1; k <= GNI_DCUTR_ATTEMPTS_MAX; k++) {
        expect(&c, GNI_DCUTR_ACT_SEND);
        CHECK_EQ(act.msg_type, GNI_DCUTR_CONNECT);
        CHECK_EQ(act.attempt, k);
        /* a different RTT each attempt: each is measured afresh */
        gn_time rtt = k * 10 * GN_MS;
        now += rtt;
        feed(&c, GNI_DCUTR_CONNECT, 1, now);
        expect(&c, GNI_DCUTR_ACT_SEND);
        CHECK_EQ(act.msg_type, GNI_DCUTR_SYNC);
        CHECK_EQ(c.rtt, rtt);
        now += rtt / 2;
        gni_dcutr_core_on_timer(&c, now);
        expect(&c, GNI_DCUTR_ACT_DIAL);
        CHECK_EQ(act.attempt, k);
        now += GN_MS;
        gni_dcutr_core_on_dial(&c, k, GN_ECONNREFUSED, now);
    }
    expect(&c, GNI_DCUTR_ACT_DONE);
    CHECK_EQ(act.status, GN_ECONNREFUSED);
    CHECK_EQ(act.attempt, GNI_DCUTR_ATTEMPTS_MAX);
    expect_none(&c);
    gni_dcutr_core_fini(&c);
}

GN_TEST(b_dial_timeout_counts_as_failure)
{
    gni_dcutr_config cfg = {.attempts = 2, .dial_timeout = GN_S};
    gni_dcutr_core c;
    CHECK_OK(gni_dcutr_core_init(&c, GNI_DCUTR_ROLE_B, &cfg, T0));
    expect(&c, GNI_DCUTR_ACT_SEND);
    feed(&c, GNI_DCUTR_CONNECT, 1, T0);
    expect(&c, GNI_DCUTR_ACT_SEND);
    gni_dcutr_core_on_timer(&c, T0); /* RTT 0: dial at once */
    expect(&c, GNI_DCUTR_ACT_DIAL);
    gni_dcutr_core_on_timer(&c, T0 + GN_S);
    expect(&c, GNI_DCUTR_ACT_SEND); /* attempt 2 */
    CHECK_EQ(act.attempt, 2);
    /* attempt 1's dial result, late: a failure is ignored, */
    gni_dcutr_core_on_dial(&c, 1, GN_ETIMEDOUT, T0 + 2 * GN_S);
    expect_none(&c);
    /* a success still counts */
    gni_dcutr_core_on_dial(&c, 1, 0, T0 + 2 * GN_S);
    expect(&c, GNI_DCUTR_ACT_DONE);
    CHECK_EQ(act.status, 0);
    gni_dcutr_core_fini(&c);
}

GN_TEST(a_follows_b_retries)
{
    gni_dcutr_core c;
    CHECK_OK(gni_dcutr_core_init(&c, GNI_DCUTR_ROLE_A, NULL, T0));
    for (unsigned k = 1; k <= GNI_DCUTR_ATTEMPTS_MAX; k++) {
        feed(&c, GNI_DCUTR_CONNECT, 1, T0);
        expect(&c, GNI_DCUTR_ACT_SEND);
        CHECK_EQ(act.attempt, k);
        feed(&c, GNI_DCUTR_SYNC, 0, T0);
        expect(&c, GNI_DCUTR_ACT_DIAL);
        CHECK_EQ(act.attempt, k);
        if (k == 2) {
            /* B's retry comes before our dial failed: answered anyway */
            continue;
        }
        gni_dcutr_core_on_dial(&c, k, GN_ECONNREFUSED, T0);
        if (k < GNI_DCUTR_ATTEMPTS_MAX) {
            expect_none(&c); /* waits for B's retry */
        }
    }
    /* the last attempt failed: done */
    expect(&c, GNI_DCUTR_ACT_DONE);
    CHECK_EQ(act.status, GN_ECONNREFUSED);
    gni_dcutr_core_fini(&c);

    /* a fourth CONNECT is a protocol violation */
    CHECK_OK(gni_dcutr_core_init(&c, GNI_DCUTR_ROLE_A, NULL, T0));
    for (unsigned k = 1; k <= GNI_DCUTR_ATTEMPTS_MAX; k++) {
        feed(&c, GNI_DCUTR_CONNECT, 1, T0);
        expect(&c, GNI_DCUTR_ACT_SEND);
        feed(&c, GNI_DCUTR_SYNC, 0, T0);
        expect(&c, GNI_DCUTR_ACT_DIAL);
    }
    feed(&c, GNI_DCUTR_CONNECT, 1, T0);
    expect(&c, GNI_DCUTR_ACT_DONE);
    CHECK_EQ(act.status, GN_EPROTO);
    gni_dcutr_core_fini(&c);
}

GN_TEST(timeouts_and_violations)
{
    gni_dcutr_core c;
    /* B: no answer */
    CHECK_OK(gni_dcutr_core_init(&c, GNI_DCUTR_ROLE_B, NULL, T0));
    expect(&c, GNI_DCUTR_ACT_SEND);
    gni_dcutr_core_on_timer(&c, T0 + GNI_DCUTR_MSG_TIMEOUT_DEFAULT);
    expect(&c, GNI_DCUTR_ACT_DONE);
    CHECK_EQ(act.status, GN_ETIMEDOUT);
    gni_dcutr_core_fini(&c);
    /* B: the answer has no address */
    CHECK_OK(gni_dcutr_core_init(&c, GNI_DCUTR_ROLE_B, NULL, T0));
    expect(&c, GNI_DCUTR_ACT_SEND);
    feed(&c, GNI_DCUTR_CONNECT, 0, T0);
    expect(&c, GNI_DCUTR_ACT_DONE);
    CHECK_EQ(act.status, GN_ENOROUTE);
    gni_dcutr_core_fini(&c);
    /* B: SYNC instead of CONNECT */
    CHECK_OK(gni_dcutr_core_init(&c, GNI_DCUTR_ROLE_B, NULL, T0));
    expect(&c, GNI_DCUTR_ACT_SEND);
    feed(&c, GNI_DCUTR_SYNC, 0, T0);
    expect(&c, GNI_DCUTR_ACT_DONE);
    CHECK_EQ(act.status, GN_EPROTO);
    gni_dcutr_core_fini(&c);
    /* B: the stream ends */
    CHECK_OK(gni_dcutr_core_init(&c, GNI_DCUTR_ROLE_B, NULL, T0));
    expect(&c, GNI_DCUTR_ACT_SEND);
    gni_dcutr_core_on_stream_end(&c, GN_EEOF, T0);
    expect(&c, GNI_DCUTR_ACT_DONE);
    CHECK_EQ(act.status, GN_ECONNRESET);
    gni_dcutr_core_fini(&c);
    /* A: SYNC first; no SYNC in time */
    CHECK_OK(gni_dcutr_core_init(&c, GNI_DCUTR_ROLE_A, NULL, T0));
    feed(&c, GNI_DCUTR_SYNC, 0, T0);
    expect(&c, GNI_DCUTR_ACT_DONE);
    CHECK_EQ(act.status, GN_EPROTO);
    gni_dcutr_core_fini(&c);
    CHECK_OK(gni_dcutr_core_init(&c, GNI_DCUTR_ROLE_A, NULL, T0));
    feed(&c, GNI_DCUTR_CONNECT, 1, T0);
    expect(&c, GNI_DCUTR_ACT_SEND);
    gni_dcutr_core_on_timer(&c, T0 + GNI_DCUTR_MSG_TIMEOUT_DEFAULT);
    expect(&c, GNI_DCUTR_ACT_DONE);
    CHECK_EQ(act.status, GN_ETIMEDOUT);
    gni_dcutr_core_fini(&c);
    /* A: the stream ends while our dial is out: its result decides */
    CHECK_OK(gni_dcutr_core_init(&c, GNI_DCUTR_ROLE_A, NULL, T0));
    feed(&c, GNI_DCUTR_CONNECT, 1, T0);
    expect(&c, GNI_DCUTR_ACT_SEND);
    feed(&c, GNI_DCUTR_SYNC, 0, T0);
    expect(&c, GNI_DCUTR_ACT_DIAL);
    gni_dcutr_core_on_stream_end(&c, GN_EEOF, T0);
    expect_none(&c);
    gni_dcutr_core_on_dial(&c, 1, GN_ECONNREFUSED, T0);
    expect(&c, GNI_DCUTR_ACT_DONE);
    CHECK_EQ(act.status, GN_ECONNREFUSED);
    gni_dcutr_core_fini(&c);
    /* B: A ended the stream (it gave up) while B's last dial is out */
    CHECK_OK(gni_dcutr_core_init(&c, GNI_DCUTR_ROLE_B, NULL, T0));
    expect(&c, GNI_DCUTR_ACT_SEND);
    feed(&c, GNI_DCUTR_CONNECT, 1, T0 + 2 * GN_MS);
    expect(&c, GNI_DCUTR_ACT_SEND);
    gni_dcutr_core_on_stream_end(&c, GN_EEOF, T0 + 2 * GN_MS); /* during the RTT/2 wait */
    expect_none(&c);
    gni_dcutr_core_on_timer(&c, T0 + 3 * GN_MS);
    expect(&c, GNI_DCUTR_ACT_DIAL);
    gni_dcutr_core_on_dial(&c, 1, GN_ECONNREFUSED, T0 + 4 * GN_MS);
    expect(&c, GNI_DCUTR_ACT_DONE); /* no retry on a closed stream */
    CHECK_EQ(act.status, GN_ECONNREFUSED);
    gni_dcutr_core_fini(&c);
    /* bad arguments */
    gni_dcutr_config bad = {.attempts = GNI_DCUTR_ATTEMPTS_MAX + 1};
    CHECK_EQ(gni_dcutr_core_init(&c, GNI_DCUTR_ROLE_B, &bad, T0), GN_EINVAL);
    CHECK_EQ(gni_dcutr_core_init(&c, (gni_dcutr_role)5, NULL, T0), GN_EINVAL);
}

static bool usable(const char *s, bool allow_private)
{
    gn_multiaddr *m = NULL;
    CHECK_OK(gn_multiaddr_parse(s, &m));
    bool r = gni_dcutr_addr_usable(m, allow_private);
    gn_multiaddr_free(m);
    return r;
}

GN_TEST(address_filter)
{
    CHECK(usable("/ip4/1.2.3.4/tcp/4001", false));
    CHECK(usable("/ip6/2001:db8::1/tcp/4001", false));
    CHECK(usable("/dns4/example.com/tcp/4001", false));
    CHECK(!usable("/ip4/127.0.0.1/tcp/4001", false));
    CHECK(usable("/ip4/127.0.0.1/tcp/4001", true));
    CHECK(!usable("/ip4/10.1.2.3/tcp/4001", false));
    CHECK(!usable("/ip4/172.16.0.1/tcp/4001", false));
    CHECK(usable("/ip4/172.32.0.1/tcp/4001", false));
    CHECK(!usable("/ip4/192.168.1.1/tcp/4001", false));
    CHECK(!usable("/ip4/100.64.0.1/tcp/4001", false));
    CHECK(!usable("/ip4/169.254.0.1/tcp/4001", false));
    CHECK(!usable("/ip6/::1/tcp/4001", false));
    CHECK(!usable("/ip6/fd00::1/tcp/4001", false));
    CHECK(!usable("/ip6/fe80::1/tcp/4001", false));
    CHECK(!usable("/ip4/0.0.0.0/tcp/4001", true));
    CHECK(!usable("/ip6/::/tcp/4001", true));
    CHECK(!usable("/ip4/1.2.3.4/tcp/4001/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA/p2p-circuit", true));
    CHECK(!usable("/memory/7", true));
    CHECK(!gni_dcutr_addr_usable(NULL, true));
}

int main(int argc, char **argv)
{
    static const gn_test_case cases[] = {
        GN_T(b_measures_rtt_and_dials_after_half), GN_T(a_answers_and_dials_on_sync),
        GN_T(b_retries_then_fails),                GN_T(b_dial_timeout_counts_as_failure),
        GN_T(a_follows_b_retries),                 GN_T(timeouts_and_violations),
        GN_T(address_filter),
    };
    return gn_test_run(cases, sizeof cases / sizeof cases[0], argc, argv);
}
