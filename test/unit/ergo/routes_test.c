/*
 * routes_test: Ergo's static routes table (protocols/ergo/routes.c):
 * patterns matched anywhere in the name (anchors for whole names), the
 * matches highest weight first with equal weights in insertion order,
 * duplicate patterns refused, remove, the bounds and the lookup cap.
 */
#include "gn_test.h"

#include <string.h>

#include "golemnet/err.h"
#include "routes.h"

static gni_route rt(uint16_t port, const char *cookie)
{
    gni_route r;
    memset(&r, 0, sizeof r);
    r.port = port;
    r.cookie = cookie;
    return r;
}

GN_TEST(lookup_orders_by_weight)
{
    gni_routes *t = NULL;
    CHECK_OK(gni_routes_new(0, &t));
    gni_route a = rt(1001, "c1"), b = rt(1002, NULL), c = rt(1003, ""), d = rt(1004, "c4");
    a.host = "10.0.0.1";
    a.flags = 0x3;
    CHECK_OK(gni_routes_add(t, "^beta@", &a, 5));
    CHECK_OK(gni_routes_add(t, "@localhost$", &b, 10));
    CHECK_OK(gni_routes_add(t, "^beta@localhost$", &c, 5));
    CHECK_OK(gni_routes_add(t, "gamma", &d, 100));
    CHECK_EQ(gni_routes_count(t), 4);

    const gni_route *out[8];
    uint32_t n = 99;
    CHECK_OK(gni_routes_lookup(t, "beta@localhost", out, 8, &n));
    CHECK_EQ(n, 3);
    CHECK_EQ(out[0]->port, 1002); /* weight 10 */
    CHECK_EQ(out[1]->port, 1001); /* weight 5, added first */
    CHECK_EQ(out[2]->port, 1003); /* weight 5, added later */
    CHECK_STR(out[1]->host, "10.0.0.1");
    CHECK_STR(out[1]->cookie, "c1");
    CHECK_EQ(out[1]->flags, 0x3);
    CHECK_STR(out[0]->cookie, ""); /* NULL cookie: the node's, stored as "" */
    CHECK_STR(out[0]->host, "");

    /* unanchored: a match anywhere in the name, as Go's MatchString */
    CHECK_OK(gni_routes_lookup(t, "xgammax@h", out, 8, &n));
    CHECK_EQ(n, 1);
    CHECK_EQ(out[0]->port, 1004);
    CHECK_OK(gni_routes_lookup(t, "beta@localhost2", out, 8, &n));
    CHECK_EQ(n, 1); /* only ^beta@ */
    CHECK_EQ(out[0]->port, 1001);
    CHECK_OK(gni_routes_lookup(t, "alpha@127.0.0.1", out, 8, &n));
    CHECK_EQ(n, 0); /* no static route: ask the registrar */

    /* a cap below the match count returns the best ones, counts all */
    CHECK_OK(gni_routes_lookup(t, "beta@localhost", out, 1, &n));
    CHECK_EQ(n, 3);
    CHECK_EQ(out[0]->port, 1002);
    CHECK_OK(gni_routes_lookup(t, "beta@localhost", out, 2, &n));
    CHECK_EQ(out[0]->port, 1002);
    CHECK_EQ(out[1]->port, 1001);
    CHECK_OK(gni_routes_lookup(t, "beta@localhost", NULL, 0, &n));
    CHECK_EQ(n, 3);

    /* the pattern text is the key: the same one is taken, remove by it */
    CHECK_EQ(gni_routes_add(t, "^beta@", &d, 1), GN_EEXIST);
    CHECK_OK(gni_routes_remove(t, "@localhost$"));
    CHECK_EQ(gni_routes_remove(t, "@localhost$"), GN_ENOTFOUND);
    CHECK_OK(gni_routes_lookup(t, "beta@localhost", out, 8, &n));
    CHECK_EQ(n, 2);
    CHECK_EQ(out[0]->port, 1001);
    CHECK_EQ(out[1]->port, 1003);
    /* a re-added pattern goes behind equal weights */
    CHECK_OK(gni_routes_remove(t, "^beta@"));
    CHECK_OK(gni_routes_add(t, "^beta@", &a, 5));
    CHECK_OK(gni_routes_lookup(t, "beta@localhost", out, 8, &n));
    CHECK_EQ(n, 2);
    CHECK_EQ(out[0]->port, 1003);
    CHECK_EQ(out[1]->port, 1001);
    gni_routes_free(t);
}

GN_TEST(bounds_and_refusals)
{
    gni_routes *t = NULL;
    CHECK_EQ(gni_routes_new(GNI_ROUTES_MAX_LIMIT + 1, &t), GN_EINVAL);
    CHECK_EQ(gni_routes_new(2, NULL), GN_EINVAL);
    CHECK_OK(gni_routes_new(2, &t));
    gni_route r = rt(4370, NULL);
    CHECK_EQ(gni_routes_add(t, "", &r, 0), GN_EINVAL);
    CHECK_EQ(gni_routes_add(t, NULL, &r, 0), GN_EINVAL);
    CHECK_EQ(gni_routes_add(t, "a(", &r, 0), GN_EINVAL); /* regcomp refuses */
    char longp[GNI_ROUTES_MATCH_MAX + 2];
    memset(longp, 'a', sizeof longp - 1);
    longp[sizeof longp - 1] = 0;
    CHECK_EQ(gni_routes_add(t, longp, &r, 0), GN_EINVAL);
    longp[GNI_ROUTES_MATCH_MAX] = 0; /* exactly the bound */
    CHECK_OK(gni_routes_add(t, longp, &r, 0));
    CHECK_OK(gni_routes_remove(t, longp));
    char longc[GNI_ROUTES_COOKIE_MAX + 2];
    memset(longc, 'c', sizeof longc - 1);
    longc[sizeof longc - 1] = 0;
    gni_route bad = rt(1, longc);
    CHECK_EQ(gni_routes_add(t, "x", &bad, 0), GN_EINVAL);
    gni_route noport = rt(0, NULL);
    CHECK_EQ(gni_routes_add(t, "x", &noport, 0), GN_EINVAL);
    noport.use_resolver = true; /* the registrar gives the port */
    CHECK_OK(gni_routes_add(t, "x", &noport, 0));
    CHECK_OK(gni_routes_add(t, "y", &r, 0));
    CHECK_EQ(gni_routes_add(t, "z", &r, 0), GN_ELIMIT);
    CHECK_EQ(gni_routes_count(t), 2);

    const gni_route *out[2];
    uint32_t n = 0;
    char longn[GNI_ROUTES_NAME_MAX + 2];
    memset(longn, 'x', sizeof longn - 1);
    longn[sizeof longn - 1] = 0;
    CHECK_EQ(gni_routes_lookup(t, longn, out, 2, &n), GN_EINVAL);
    longn[GNI_ROUTES_NAME_MAX] = 0;
    CHECK_OK(gni_routes_lookup(t, longn, out, 2, &n));
    CHECK_EQ(n, 1);
    CHECK(out[0]->use_resolver);
    CHECK_EQ(gni_routes_lookup(t, "x", NULL, 2, &n), GN_EINVAL);
    gni_routes_free(t);
    gni_routes_free(NULL);
}

GN_TEST_MAIN(GN_T(lookup_orders_by_weight), GN_T(bounds_and_refusals))
