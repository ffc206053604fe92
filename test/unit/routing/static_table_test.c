/*
 * The static router's table core: entry and routes-file parsing, bounds,
 * lookups. No loop, no I/O.
 */
#include "golemnet/golemnet.h"

#include "gn_test.h"
#include "static_table.h"

#define P1 "12D3KooWPjceQrSwdWXPyLLeABRXmuqt69Rg3sBYbU1Nft9HyQ6X"

static gn_peer_id pid(const char *s)
{
    gn_peer_id id;
    CHECK_EQ(gn_peer_id_parse(s, strlen(s), &id), 0);
    return id;
}

static int add(gni_static_table *t, const char *s)
{
    return gni_static_table_add(t, s, strlen(s));
}

GN_TEST(entries_and_lookups)
{
    gni_static_table *t;
    CHECK_EQ(gni_static_table_new(&t), 0);
    CHECK_EQ(add(t, "/ip4/127.0.0.1/tcp/4001/p2p/" P1), 1);
    CHECK_EQ(add(t, "  /ip4/127.0.0.1/tcp/4001/p2p/" P1 "\r"), 0); /* known */
    CHECK_EQ(add(t, "/ip6/::1/tcp/4002/p2p/" P1), 1);
    CHECK_EQ(add(t, ""), 0);
    CHECK_EQ(add(t, "   # a comment"), 0);
    gn_peer_id p1 = pid(P1);
    gn_multiaddr *const *addrs;
    CHECK_EQ(gni_static_table_find(t, &p1, &addrs), 2);
    char s[128];
    CHECK(gn_multiaddr_to_string(addrs[0], s, sizeof s) > 0);
    CHECK_STR(s, "/ip4/127.0.0.1/tcp/4001");
    CHECK(gn_multiaddr_to_string(addrs[1], s, sizeof s) > 0);
    CHECK_STR(s, "/ip6/::1/tcp/4002");
    gn_identity *other;
    CHECK_EQ(gn_identity_from_int_seed(2, &other), 0);
    gn_peer_id p2;
    gn_identity_peer_id(other, &p2);
    gn_identity_free(other);
    CHECK_EQ(gni_static_table_find(t, &p2, &addrs), 0);
    CHECK_EQ(gni_static_table_count(t), 1);
    gni_static_table_free(t);
}

GN_TEST(bad_entries_say_what_is_wrong)
{
    gni_static_table *t;
    CHECK_EQ(gni_static_table_new(&t), 0);
    CHECK_EQ(add(t, "not a multiaddr"), GN_EPARSE);
    CHECK_EQ(add(t, "/ip4/127.0.0.1/tcp/4001"), GN_EINVAL);      /* no peer */
    CHECK_EQ(add(t, "/p2p/" P1), GN_EINVAL);                      /* no address */
    CHECK_EQ(add(t, "/p2p/" P1 "/ip4/127.0.0.1/tcp/1"), GN_EINVAL); /* peer not last */
    char big[GNI_STATIC_MAX_LINE + 8];
    memset(big, 'a', sizeof big - 1);
    big[0] = '/';
    big[sizeof big - 1] = '\0';
    CHECK_EQ(add(t, big), GN_ETOOBIG);
    CHECK_EQ(gni_static_table_count(t), 0);
    gni_static_table_free(t);
}

GN_TEST(routes_file_text_reports_the_bad_line)
{
    gni_static_table *t;
    CHECK_EQ(gni_static_table_new(&t), 0);
    const char text[] = "# routes\n"
                        "/ip4/10.0.0.1/tcp/1/p2p/" P1 "\n"
                        "\n"
                        "/ip4/10.0.0.1/tcp/oops/p2p/" P1 "\n"
                        "/ip4/10.0.0.2/tcp/2/p2p/" P1 "\n";
    size_t line = 0;
    CHECK_EQ(gni_static_table_add_text(t, text, strlen(text), &line), GN_EPARSE);
    CHECK_EQ(line, 4);
    gn_peer_id p1 = pid(P1);
    gn_multiaddr *const *addrs;
    CHECK_EQ(gni_static_table_find(t, &p1, &addrs), 1); /* what came before stays */
    const char ok[] = "/ip4/10.0.0.2/tcp/2/p2p/" P1; /* no final newline */
    CHECK_EQ(gni_static_table_add_text(t, ok, strlen(ok), NULL), 0);
    CHECK_EQ(gni_static_table_find(t, &p1, &addrs), 2);
    gni_static_table_free(t);
}

GN_TEST(bounds_per_peer_and_in_total)
{
    gni_static_table *t;
    CHECK_EQ(gni_static_table_new(&t), 0);
    char e[256];
    for (unsigned i = 0; i < GNI_STATIC_MAX_ADDRS; i++) {
        snprintf(e, sizeof e, "/ip4/10.0.0.1/tcp/%u/p2p/" P1, 1000 + i);
        CHECK_EQ(add(t, e), 1);
    }
    snprintf(e, sizeof e, "/ip4/10.0.0.1/tcp/999/p2p/" P1);
    CHECK_EQ(add(t, e), GN_ELIMIT);
    for (uint32_t i = 0; i < GNI_STATIC_MAX_PEERS; i++) {
        gn_identity *id;
        CHECK_EQ(gn_identity_from_int_seed(100 + i, &id), 0);
        gn_peer_id p;
        gn_identity_peer_id(id, &p);
        gn_identity_free(id);
        char ps[GN_PEER_ID_MAX_STRLEN];
        gn_peer_id_to_string(&p, ps, sizeof ps);
        snprintf(e, sizeof e, "/ip4/10.0.0.1/tcp/1/p2p/%s", ps);
        int rc = add(t, e);
        CHECK_EQ(rc, i + 1 < GNI_STATIC_MAX_PEERS ? 1 : GN_ELIMIT); /* P1 is one of them */
    }
    CHECK_EQ(gni_static_table_count(t), GNI_STATIC_MAX_PEERS);
    gni_static_table_free(t);
}

GN_TEST_MAIN(GN_T(entries_and_lookups), GN_T(bad_entries_say_what_is_wrong),
             GN_T(routes_file_text_reports_the_bad_line), GN_T(bounds_per_peer_and_in_total))
