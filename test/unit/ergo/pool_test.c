/*
 * pool_test: the Ergo connection pool core (protocols/ergo/pool.c;
 * ergo-wire.md b "Pool", c "Order byte, links and receive queues").
 */
#include "gn_test.h"

#include <string.h>

#include "golemnet/err.h"
#include "pool.h"

static void fixed_fill(void *ud, uint8_t *out, size_t len)
{
    memset(out, *(uint8_t *)ud, len);
}

GN_TEST(dialler_joins_and_replacements)
{
    gni_pool p;
    CHECK_OK(gni_pool_init(&p, true, 3, 2, 100));
    uint32_t d;
    uint8_t seed = 7;
    gn_rng rng = {fixed_fill, &seed};
    /* initial joins: link 1 to DSN[1 mod 2], link 2 to DSN[2 mod 2] */
    CHECK(gni_pool_want_dial(&p, &rng, &d));
    CHECK_EQ(d, 1);
    CHECK(gni_pool_want_dial(&p, &rng, &d));
    CHECK_EQ(d, 0);
    CHECK(!gni_pool_want_dial(&p, &rng, &d)); /* 1 up + 2 in flight = 3 */
    CHECK_OK(gni_pool_attach(&p, 101));
    gni_pool_dial_failed(&p); /* the second join failed */
    CHECK_EQ(p.dialing, 0);
    /* a replacement goes to a random DSN: 0x07070707 mod 2 = 1 */
    CHECK(gni_pool_want_dial(&p, &rng, &d));
    CHECK_EQ(d, 1);
    CHECK_OK(gni_pool_attach(&p, 102));
    CHECK_EQ(p.nlinks, 3);
    CHECK_EQ(gni_pool_attach(&p, 103), GN_ELIMIT);
    CHECK_EQ(gni_pool_attach(&p, 102), GN_EEXIST);
    /* losing a joined link: the dialler re-dials one */
    CHECK(!gni_pool_detach(&p, 101));
    CHECK(gni_pool_want_dial(&p, &rng, &d));
    CHECK(!gni_pool_want_dial(&p, &rng, &d));
    CHECK(!gni_pool_detach(&p, 999)); /* unknown: ignored */
    CHECK(!gni_pool_detach(&p, 100));
    CHECK(gni_pool_detach(&p, 102)); /* the last one: connection over */
    CHECK(p.ended);
    CHECK(!gni_pool_want_dial(&p, &rng, &d));
    CHECK_EQ(gni_pool_attach(&p, 104), GN_ESTATE);
    uint64_t l;
    CHECK_EQ(gni_pool_pick(&p, 1001, true, &l), GN_ECLOSED);
}

GN_TEST(acceptor_never_dials)
{
    gni_pool p;
    CHECK_OK(gni_pool_init(&p, false, 3, 1, 1));
    uint32_t d;
    CHECK(!gni_pool_want_dial(&p, NULL, &d));
    CHECK_OK(gni_pool_attach(&p, 2));
    /* the acceptor takes a replacement before it saw the old link end, up to the array */
    for (uint64_t i = 3; i <= GNI_POOL_MAX; i++)
        CHECK_OK(gni_pool_attach(&p, i));
    CHECK_EQ(gni_pool_attach(&p, 1000), GN_ELIMIT);
    CHECK(!gni_pool_detach(&p, 1));
    CHECK(!gni_pool_want_dial(&p, NULL, &d));
    /* size clamps */
    CHECK_OK(gni_pool_init(&p, true, 0, 1, 1));
    CHECK_EQ(p.size, 1);
    CHECK(!gni_pool_want_dial(&p, NULL, &d));
    CHECK_OK(gni_pool_init(&p, true, 1000, 1, 1));
    CHECK_EQ(p.size, GNI_POOL_MAX);
}

GN_TEST(sender_keeps_one_link)
{
    gni_pool p;
    CHECK_OK(gni_pool_init(&p, true, 3, 1, 10));
    CHECK_OK(gni_pool_attach(&p, 11));
    CHECK_OK(gni_pool_attach(&p, 12));
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
    CHECK(!gni_pool_detach(&p, 11));
    CHECK_OK(gni_pool_pick(&p, 1004, true, &first)); /* 239 mod 2 = 1 -> 12 */
    CHECK_EQ(first, 12);
    CHECK_OK(gni_pool_pick(&p, 1004, true, &l));
    CHECK_EQ(l, first);
}

GN_TEST_MAIN(GN_T(dialler_joins_and_replacements), GN_T(acceptor_never_dials),
             GN_T(sender_keeps_one_link))
