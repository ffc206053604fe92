/*
 * pool_test: the Ergo connection pool core (protocols/ergo/pool.c;
 * ergo-wire.md b "Pool", c "Order byte, links and receive queues").
 */
#include "gn_test.h"

#include <string.h>

#include "golemnet/err.h"
#include "pool.h"

/* the clock the tests pass to the core (monotonic ns) */
static gn_time T = 1000 * GN_S;

static void fixed_fill(void *ud, uint8_t *out, size_t len)
{
    memset(out, *(uint8_t *)ud, len);
}

GN_TEST(dialler_joins_and_replacements)
{
    gni_pool p;
    CHECK_OK(gni_pool_init(&p, true, 3, 2, 100, T));
    uint32_t d;
    uint8_t seed = 7;
    gn_rng rng = {fixed_fill, &seed};
    /* initial joins: link 1 to DSN[1 mod 2], link 2 to DSN[2 mod 2] */
    CHECK(gni_pool_want_dial(&p, &rng, T, &d));
    CHECK_EQ(d, 1);
    CHECK(gni_pool_want_dial(&p, &rng, T, &d));
    CHECK_EQ(d, 0);
    CHECK(!gni_pool_want_dial(&p, &rng, T, &d)); /* 1 up + 2 in flight = 3 */
    CHECK_OK(gni_pool_attach(&p, 101, T));
    gni_pool_dial_failed(&p, T); /* the second join failed */
    CHECK_EQ(p.dialing, 0);
    /* a replacement goes to a random DSN: 0x07070707 mod 2 = 1 */
    CHECK(gni_pool_want_dial(&p, &rng, T, &d));
    CHECK_EQ(d, 1);
    CHECK_OK(gni_pool_attach(&p, 102, T));
    CHECK_EQ(p.nlinks, 3);
    CHECK_EQ(gni_pool_attach(&p, 103, T), GN_ELIMIT);
    CHECK_EQ(gni_pool_attach(&p, 102, T), GN_EEXIST);
    /* losing a joined link that was up a while: the dialler re-dials one at once */
    T += 10 * GN_S;
    CHECK(!gni_pool_detach(&p, 101, T));
    CHECK(gni_pool_want_dial(&p, &rng, T, &d));
    CHECK(!gni_pool_want_dial(&p, &rng, T, &d));
    CHECK(!gni_pool_detach(&p, 999, T)); /* unknown: ignored */
    CHECK(!gni_pool_detach(&p, 100, T));
    CHECK(gni_pool_detach(&p, 102, T)); /* the last one: connection over */
    CHECK(p.ended);
    CHECK(!gni_pool_want_dial(&p, &rng, T, &d));
    CHECK_EQ(gni_pool_attach(&p, 104, T), GN_ESTATE);
    uint64_t l;
    CHECK_EQ(gni_pool_pick(&p, 1001, true, &l), GN_ECLOSED);
}

GN_TEST(acceptor_never_dials)
{
    gni_pool p;
    CHECK_OK(gni_pool_init(&p, false, 3, 1, 1, T));
    uint32_t d;
    CHECK(!gni_pool_want_dial(&p, NULL, T, &d));
    CHECK_OK(gni_pool_attach(&p, 2, T));
    /* the acceptor takes a replacement before it saw the old link end, up to the array */
    for (uint64_t i = 3; i <= GNI_POOL_MAX; i++)
        CHECK_OK(gni_pool_attach(&p, i, T));
    CHECK_EQ(gni_pool_attach(&p, 1000, T), GN_ELIMIT);
    CHECK(!gni_pool_detach(&p, 1, T));
    CHECK(!gni_pool_want_dial(&p, NULL, T, &d));
    /* size clamps */
    CHECK_OK(gni_pool_init(&p, true, 0, 1, 1, T));
    CHECK_EQ(p.size, 1);
    CHECK(!gni_pool_want_dial(&p, NULL, T, &d));
    CHECK_OK(gni_pool_init(&p, true, 1000, 1, 1, T));
    CHECK_EQ(p.size, GNI_POOL_MAX);
}

GN_TEST(sender_keeps_one_link)
{
    gni_pool p;
    CHECK_OK(gni_pool_init(&p, true, 3, 1, 10, T));
    CHECK_OK(gni_pool_attach(&p, 11, T));
    CHECK_OK(gni_pool_attach(&p, 12, T));
    uint64_t l, first;
    /* from.ID mod 255 mod links: 1004 mod 255 = 239, 239 mod 3 = 2 */
    CHECK_OK(gni_pool_pick(&p, 1004, true, &first));
    CHECK_EQ(first, 12);
    for (int i = 0; i < 100; i++) {
        CHECK_OK(gni_pool_pick(&p, 1004, true, &l));
        CHECK_EQ(l, first);
    }
    /* no ordering, or key 0: round robin over every link */
    uint64_t seen[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        CHECK_OK(gni_pool_pick(&p, 1004, false, &seen[i]));
    }
    CHECK(seen[0] != seen[1] && seen[1] != seen[2] && seen[0] != seen[2]);
    CHECK_OK(gni_pool_pick(&p, 255, true, &l)); /* 255 mod 255 = 0 */
    /* after losing a link the sender still keeps one (now of two) link */
    CHECK(!gni_pool_detach(&p, 11, T));
    CHECK_OK(gni_pool_pick(&p, 1004, true, &first)); /* 239 mod 2 = 1 -> 12 */
    CHECK_EQ(first, 12);
    CHECK_OK(gni_pool_pick(&p, 1004, true, &l));
    CHECK_EQ(l, first);
}

/* an acceptor that answers every Join and closes the link at once: replacements back
 * off 0 (the first), 0.2 s, 0.4 s ... 5 s; a link that stays up 2 s resets it */
GN_TEST(replacement_backoff)
{
    gni_pool p;
    uint32_t d;
    T = 5000 * GN_S;
    CHECK_OK(gni_pool_init(&p, true, 2, 1, 1, T));
    CHECK(gni_pool_want_dial(&p, NULL, T, &d)); /* the initial join: never held */
    CHECK_EQ(gni_pool_dial_deadline(&p, T), GN_TIME_INFINITY);
    uint64_t link = 10;
    gn_time expect[] = {0, 200 * GN_MS, 400 * GN_MS, 800 * GN_MS, 1600 * GN_MS, 3200 * GN_MS,
                        5 * GN_S, 5 * GN_S};
    unsigned joins = 1;
    for (unsigned i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        CHECK_OK(gni_pool_attach(&p, link, T));
        T += 5 * GN_MS;
        CHECK(!gni_pool_detach(&p, link++, T)); /* closed after 5 ms */
        if (expect[i] == 0) {
            CHECK_EQ(gni_pool_dial_deadline(&p, T), GN_TIME_INFINITY);
        } else {
            CHECK_EQ(gni_pool_dial_deadline(&p, T), T + expect[i]);
            CHECK(!gni_pool_want_dial(&p, NULL, T, &d));
            CHECK(!gni_pool_want_dial(&p, NULL, T + expect[i] - 1, &d));
            T += expect[i];
        }
        CHECK(gni_pool_want_dial(&p, NULL, T, &d));
        joins++;
        CHECK_EQ(gni_pool_dial_deadline(&p, T), GN_TIME_INFINITY); /* in flight */
    }
    CHECK_EQ(joins, 9);
    /* a failed join counts too */
    gni_pool_dial_failed(&p, T);
    CHECK_EQ(gni_pool_dial_deadline(&p, T), T + 5 * GN_S);
    T += 5 * GN_S;
    CHECK(gni_pool_want_dial(&p, NULL, T, &d));
    /* this one stays up 2 s: the back-off is over, the next loss is replaced at once,
     * and the one after waits from the start again */
    CHECK_OK(gni_pool_attach(&p, link, T));
    T += GNI_POOL_STABLE;
    CHECK(!gni_pool_detach(&p, link++, T));
    CHECK_EQ(p.fails, 0);
    CHECK(gni_pool_want_dial(&p, NULL, T, &d));
    CHECK_OK(gni_pool_attach(&p, link, T));
    CHECK(!gni_pool_detach(&p, link++, T + GN_MS));
    CHECK(gni_pool_want_dial(&p, NULL, T + GN_MS, &d)); /* first short one: at once */
    CHECK_OK(gni_pool_attach(&p, link, T + GN_MS));
    CHECK(!gni_pool_detach(&p, link++, T + 2 * GN_MS));
    CHECK_EQ(gni_pool_dial_deadline(&p, T + 2 * GN_MS), T + 2 * GN_MS + 200 * GN_MS);
    /* stability is also seen without a loss: a link attached after the last failure that
     * has been up 2 s ends the back-off when the pool is next asked */
    gni_pool q;
    T = 9000 * GN_S;
    CHECK_OK(gni_pool_init(&q, true, 3, 1, 1, T));
    CHECK(gni_pool_want_dial(&q, NULL, T, &d));
    CHECK(gni_pool_want_dial(&q, NULL, T, &d));
    CHECK_OK(gni_pool_attach(&q, 2, T));
    gni_pool_dial_failed(&q, T);
    CHECK_OK(gni_pool_attach(&q, 3, T));
    CHECK(!gni_pool_detach(&q, 3, T)); /* second failure: held 0.2 s */
    CHECK(!gni_pool_want_dial(&q, NULL, T, &d));
    CHECK(gni_pool_want_dial(&q, NULL, T + 200 * GN_MS, &d));
    CHECK_OK(gni_pool_attach(&q, 4, T + 200 * GN_MS));
    CHECK(!gni_pool_detach(&q, 2, T + 201 * GN_MS)); /* lived 201 ms: third, held 0.4 s */
    CHECK(!gni_pool_want_dial(&q, NULL, T + 202 * GN_MS, &d));
    /* link 4 was attached before that failure: it does not count as the reset ... */
    CHECK(!gni_pool_want_dial(&q, NULL, T + 500 * GN_MS, &d));
    CHECK(gni_pool_want_dial(&q, NULL, T + 601 * GN_MS, &d));
    CHECK_OK(gni_pool_attach(&q, 5, T + 601 * GN_MS));
    CHECK_EQ(q.fails, 3);
    /* ... link 5, attached after it and up 2 s, does */
    CHECK(!gni_pool_detach(&q, 4, T + 601 * GN_MS + GNI_POOL_STABLE));
    CHECK_EQ(q.fails, 0);
    CHECK(gni_pool_want_dial(&q, NULL, T + 601 * GN_MS + GNI_POOL_STABLE, &d));
}

GN_TEST_MAIN(GN_T(dialler_joins_and_replacements), GN_T(acceptor_never_dials),
             GN_T(sender_keeps_one_link), GN_T(replacement_backoff))
