/*
 * Kademlia routing table (layers/routing/kad/kad_table.c): bucket placement
 * by common-prefix length, full buckets (liveness check, replacement cache,
 * replacement on a dead check), failures and removal, closest() against a
 * brute-force sort, bounds on entries and addresses, refresh schedule.
 */
#include "kad_table.h"

#include "gn_test.h"
#include "golemnet/err.h"
#include "golemnet/multiaddr.h"
#include "kad_test_util.h"

#include <stdlib.h>

static gni_kad_table *new_table(kt_rng *r, const gni_kad_table_config *cfg, gn_peer_id *self,
                                gn_time now)
{
    gni_kad_table *t = NULL;
    kt_peer(r, self);
    CHECK_OK(gni_kad_table_new(cfg, self, now, &t));
    return t;
}

/* A random peer in bucket @cpl of @t. */
static void peer_in(const gni_kad_table *t, kt_rng *r, unsigned cpl, gn_peer_id *out)
{
    gn_rng g = kt_gn_rng(r);
    CHECK_OK(gni_kad_table_random_peer(t, cpl, &g, 1u << 20, out));
}

static unsigned cpl_of(const gni_kad_table *t, const gn_peer_id *p)
{
    gni_kad_key k;
    gni_kad_key_from_peer(p, &k);
    return gni_kad_table_cpl(t, &k);
}

GN_TEST(config_and_self)
{
    kt_rng r = {1};
    gn_peer_id self, empty;
    memset(&empty, 0, sizeof empty);
    gni_kad_table_config cfg;
    gni_kad_table *t = NULL;
    kt_peer(&r, &self);
    CHECK_EQ(gni_kad_table_new(NULL, &empty, 0, &t), GN_EINVAL);
    gni_kad_table_config_default(&cfg);
    CHECK_EQ(cfg.k, 20);
    cfg.k = 0;
    CHECK_EQ(gni_kad_table_new(&cfg, &self, 0, &t), GN_EINVAL);
    gni_kad_table_config_default(&cfg);
    cfg.max_addrs = GNI_KAD_MAX_ADDRS + 1;
    CHECK_EQ(gni_kad_table_new(&cfg, &self, 0, &t), GN_EINVAL);
    CHECK(t == NULL);
    CHECK_OK(gni_kad_table_new(NULL, &self, 0, &t));
    gni_kad_key sk;
    gni_kad_key_from_peer(&self, &sk);
    CHECK_MEM(gni_kad_table_self(t)->b, sk.b, 32);
    CHECK_EQ(gni_kad_table_cpl(t, &sk), 256);
    CHECK_EQ(gni_kad_table_add(t, &self, NULL, 0, 0, 1, NULL), GN_EINVAL);
    CHECK_EQ(gni_kad_table_add(t, &empty, NULL, 0, 0, 1, NULL), GN_EINVAL);
    CHECK_EQ(gni_kad_table_count(t), 0);
    gni_kad_table_free(t);
    gni_kad_table_free(NULL);
}

GN_TEST(bucket_placement_by_cpl)
{
    kt_rng r = {2};
    gn_peer_id self;
    gni_kad_table *t = new_table(&r, NULL, &self, 0);
    /* random peers: each lands in the bucket of its cpl with the local key */
    size_t per_bucket[GNI_KAD_BUCKETS] = {0};
    size_t live = 0;
    for (int i = 0; i < 300; i++) {
        gn_peer_id p;
        kt_peer(&r, &p);
        unsigned cpl = cpl_of(t, &p);
        int rc = gni_kad_table_add(t, &p, NULL, 0, 0, (gn_time)i, NULL);
        CHECK_OK(rc);
        if (rc == GNI_KAD_ADD_INSERTED) {
            per_bucket[cpl]++;
            live++;
            const gni_kad_entry *e = gni_kad_table_find(t, &p);
            CHECK(e != NULL);
            CHECK(gn_peer_id_equal(&e->id, &p));
            CHECK_EQ(e->last_seen, i);
            CHECK_EQ(e->last_ok, 0);
        } else {
            CHECK(per_bucket[cpl] == 20); /* only a full bucket refuses */
        }
    }
    CHECK_EQ(gni_kad_table_count(t), live);
    for (unsigned b = 0; b < GNI_KAD_BUCKETS; b++) {
        CHECK_EQ(gni_kad_table_bucket_count(t, b), per_bucket[b]);
        for (size_t j = 0; j < per_bucket[b]; j++) {
            CHECK_EQ(cpl_of(t, &gni_kad_table_bucket_entry(t, b, j)->id), b);
        }
    }
    CHECK_EQ(per_bucket[0], 20); /* half of 300 random peers have cpl 0 */
    /* peers made for a given cpl land there */
    for (unsigned cpl = 0; cpl < 12; cpl++) {
        gn_peer_id p;
        peer_in(t, &r, cpl, &p);
        CHECK_EQ(cpl_of(t, &p), cpl);
        size_t before = gni_kad_table_bucket_count(t, cpl);
        int rc = gni_kad_table_add(t, &p, NULL, 0, 0, 1000, NULL);
        CHECK_OK(rc);
        if (before < 20) {
            CHECK_EQ(rc, GNI_KAD_ADD_INSERTED);
            CHECK_EQ(gni_kad_table_bucket_count(t, cpl), before + 1);
            CHECK(gn_peer_id_equal(&gni_kad_table_bucket_entry(t, cpl, before)->id, &p));
        }
    }
    gni_kad_table_free(t);
}

GN_TEST(full_bucket_liveness_check_and_replacement)
{
    kt_rng r = {3};
    gn_peer_id self, p[9], chk;
    gni_kad_table_config cfg;
    gni_kad_table_config_default(&cfg);
    cfg.k = 4;
    cfg.replacement_cnt = 2;
    gni_kad_table *t = new_table(&r, &cfg, &self, 0);
    for (int i = 0; i < 9; i++) {
        peer_in(t, &r, 0, &p[i]);
    }
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(gni_kad_table_add(t, &p[i], NULL, 0, 0, (gn_time)(i + 1), NULL),
                 GNI_KAD_ADD_INSERTED);
    }
    /* known peer: refreshed and moved to the most recently seen end */
    CHECK_EQ(gni_kad_table_add(t, &p[0], NULL, 0, GNI_KAD_F_RESPONDED, 5, NULL),
             GNI_KAD_ADD_UPDATED);
    CHECK(gn_peer_id_equal(&gni_kad_table_bucket_entry(t, 0, 3)->id, &p[0]));
    CHECK_EQ(gni_kad_table_find(t, &p[0])->last_ok, 5);
    /* order now p1 p2 p3 p0: the full bucket asks to check p1, evicts nobody */
    memset(&chk, 0, sizeof chk);
    CHECK_EQ(gni_kad_table_add(t, &p[4], NULL, 0, 0, 6, &chk), GNI_KAD_ADD_CHECK);
    CHECK(gn_peer_id_equal(&chk, &p[1]));
    CHECK(gni_kad_table_find(t, &p[1])->checking);
    CHECK_EQ(gni_kad_table_bucket_count(t, 0), 4);
    CHECK_EQ(gni_kad_table_cached_count(t, 0), 1);
    CHECK(gni_kad_table_find(t, &p[4]) == NULL);
    /* a check is pending: further candidates are only cached, the oldest gives way */
    CHECK_EQ(gni_kad_table_add(t, &p[5], NULL, 0, 0, 7, &chk), GNI_KAD_ADD_CACHED);
    CHECK_EQ(gni_kad_table_add(t, &p[6], NULL, 0, 0, 8, &chk), GNI_KAD_ADD_CACHED);
    CHECK_EQ(gni_kad_table_cached_count(t, 0), 2); /* p5 p6; p4 dropped */
    CHECK_EQ(gni_kad_table_remove(t, &p[4]), GN_ENOTFOUND);
    /* alive: p1 becomes most recently seen, candidates stay cached */
    CHECK_EQ(gni_kad_table_check_result(t, &p[1], true, 9), 0);
    CHECK_EQ(gni_kad_table_check_result(t, &p[1], true, 9), GN_ENOTFOUND);
    CHECK(gn_peer_id_equal(&gni_kad_table_bucket_entry(t, 0, 3)->id, &p[1]));
    CHECK(!gni_kad_table_find(t, &p[1])->checking);
    CHECK_EQ(gni_kad_table_find(t, &p[1])->last_ok, 9);
    CHECK_EQ(gni_kad_table_cached_count(t, 0), 2);
    /* order p2 p3 p0 p1: next candidate asks to check p2 */
    CHECK_EQ(gni_kad_table_add(t, &p[7], NULL, 0, 0, 10, &chk), GNI_KAD_ADD_CHECK);
    CHECK(gn_peer_id_equal(&chk, &p[2])); /* cache now p6 p7 */
    /* dead: p2 goes, the newest candidate (p7) takes its place */
    CHECK_EQ(gni_kad_table_check_result(t, &p[2], false, 11), 1);
    CHECK(gni_kad_table_find(t, &p[2]) == NULL);
    CHECK(gni_kad_table_find(t, &p[7]) != NULL);
    CHECK(gn_peer_id_equal(&gni_kad_table_bucket_entry(t, 0, 3)->id, &p[7]));
    CHECK_EQ(gni_kad_table_bucket_count(t, 0), 4);
    CHECK_EQ(gni_kad_table_cached_count(t, 0), 1);
    CHECK_EQ(gni_kad_table_count(t), 4);
    CHECK_EQ(gni_kad_table_check_result(t, &p[2], false, 11), GN_ENOTFOUND);
    /* a check result for a peer never asked about is refused */
    CHECK_EQ(gni_kad_table_check_result(t, &p[3], false, 11), GN_ENOTFOUND);
    CHECK(gni_kad_table_find(t, &p[3]) != NULL);
    /* removing a live entry promotes the newest cached candidate (p6) */
    CHECK_EQ(gni_kad_table_remove(t, &p[3]), 0);
    CHECK(gni_kad_table_find(t, &p[6]) != NULL);
    CHECK_EQ(gni_kad_table_cached_count(t, 0), 0);
    CHECK_EQ(gni_kad_table_remove(t, &p[6]), 0);
    CHECK_EQ(gni_kad_table_bucket_count(t, 0), 3);
    CHECK_EQ(gni_kad_table_add(t, &p[8], NULL, 0, 0, 12, NULL), GNI_KAD_ADD_INSERTED);
    gni_kad_table_free(t);
}

GN_TEST(failures_and_removal)
{
    kt_rng r = {4};
    gn_peer_id self, p[4];
    gni_kad_table_config cfg;
    gni_kad_table_config_default(&cfg);
    cfg.k = 2;
    cfg.replacement_cnt = 1;
    cfg.max_failures = 2;
    gni_kad_table *t = new_table(&r, &cfg, &self, 0);
    for (int i = 0; i < 4; i++) {
        peer_in(t, &r, 1, &p[i]);
    }
    CHECK_EQ(gni_kad_table_add(t, &p[0], NULL, 0, 0, 1, NULL), GNI_KAD_ADD_INSERTED);
    CHECK_EQ(gni_kad_table_add(t, &p[1], NULL, 0, 0, 2, NULL), GNI_KAD_ADD_INSERTED);
    CHECK_EQ(gni_kad_table_add(t, &p[2], NULL, 0, 0, 3, NULL), GNI_KAD_ADD_CHECK);
    /* one failure counts, a response resets, two in a row remove */
    CHECK_EQ(gni_kad_table_failure(t, &p[1], 4), 0);
    CHECK_EQ(gni_kad_table_find(t, &p[1])->failed, 1);
    CHECK_EQ(gni_kad_table_add(t, &p[1], NULL, 0, GNI_KAD_F_RESPONDED, 5, NULL),
             GNI_KAD_ADD_UPDATED);
    CHECK_EQ(gni_kad_table_find(t, &p[1])->failed, 0);
    CHECK_EQ(gni_kad_table_failure(t, &p[1], 6), 0);
    CHECK_EQ(gni_kad_table_failure(t, &p[1], 7), 1);
    CHECK(gni_kad_table_find(t, &p[1]) == NULL);
    CHECK(gni_kad_table_find(t, &p[2]) != NULL); /* the cached candidate moved in */
    CHECK_EQ(gni_kad_table_count(t), 2);
    CHECK_EQ(gni_kad_table_failure(t, &p[1], 8), GN_ENOTFOUND);
    /* p0's check (asked for when p2 arrived) is still pending: new candidates are only cached */
    CHECK(gni_kad_table_find(t, &p[0])->checking);
    CHECK_EQ(gni_kad_table_check_result(t, &p[0], true, 8), 0);
    /* a failing cached candidate is dropped at once */
    CHECK_EQ(gni_kad_table_add(t, &p[3], NULL, 0, 0, 9, NULL), GNI_KAD_ADD_CHECK);
    CHECK_EQ(gni_kad_table_cached_count(t, 1), 1);
    CHECK_EQ(gni_kad_table_failure(t, &p[3], 10), 1);
    CHECK_EQ(gni_kad_table_cached_count(t, 1), 0);
    /* removing a live entry with an empty cache just shrinks the bucket */
    CHECK_EQ(gni_kad_table_remove(t, &p[0]), 0);
    CHECK_EQ(gni_kad_table_remove(t, &p[0]), GN_ENOTFOUND);
    CHECK_EQ(gni_kad_table_count(t), 1);
    CHECK_EQ(gni_kad_table_remove(t, NULL), GN_EINVAL);
    gni_kad_table_free(t);
}

static const gni_kad_key *sort_target;

static int cmp_entries(const void *a, const void *b)
{
    const gni_kad_entry *x = *(const gni_kad_entry *const *)a;
    const gni_kad_entry *y = *(const gni_kad_entry *const *)b;
    /* brute force: compare the XOR distances byte by byte, independently of
     * gni_kad_cmp_distance */
    for (size_t i = 0; i < GNI_KAD_KEY_BYTES; i++) {
        uint8_t dx = x->key.b[i] ^ sort_target->b[i];
        uint8_t dy = y->key.b[i] ^ sort_target->b[i];
        if (dx != dy) {
            return dx < dy ? -1 : 1;
        }
    }
    return 0;
}

GN_TEST(closest_matches_brute_force_1000)
{
    kt_rng r = {5};
    gn_peer_id self;
    gni_kad_table_config cfg;
    gni_kad_table_config_default(&cfg);
    cfg.k = 200; /* keep most of the 1,000 peers live */
    gni_kad_table *t = new_table(&r, &cfg, &self, 0);
    for (int i = 0; i < 1000; i++) {
        gn_peer_id p;
        kt_peer(&r, &p);
        CHECK_OK(gni_kad_table_add(t, &p, NULL, 0, 0, (gn_time)i, NULL));
    }
    size_t live = gni_kad_table_count(t);
    CHECK(live > 600);
    const gni_kad_entry **all = calloc(live, sizeof *all);
    const gni_kad_entry **got = calloc(live + 5, sizeof *got);
    CHECK(all && got);
    size_t m = 0;
    for (unsigned b = 0; b < GNI_KAD_BUCKETS; b++) {
        for (size_t j = 0; j < gni_kad_table_bucket_count(t, b); j++) {
            all[m++] = gni_kad_table_bucket_entry(t, b, j);
        }
    }
    CHECK_EQ(m, live);
    const size_t ns[] = {1, 3, 20, 100, live, live + 5};
    for (int trial = 0; trial < 50; trial++) {
        gni_kad_key target;
        if (trial % 5 == 0) {
            target = all[kt_below(&r, live)]->key; /* a known peer's own key */
        } else {
            kt_key(&r, &target);
        }
        sort_target = &target;
        qsort(all, live, sizeof *all, cmp_entries);
        for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
            size_t n = ns[ni];
            size_t cnt = gni_kad_table_closest(t, &target, n, got);
            CHECK_EQ(cnt, n < live ? n : live);
            for (size_t i = 0; i < cnt; i++) {
                CHECK(got[i] == all[i]);
            }
        }
        if (trial % 5 == 0) {
            CHECK_MEM(got[0]->key.b, target.b, 32);
        }
    }
    CHECK_EQ(gni_kad_table_closest(t, gni_kad_table_self(t), 0, got), 0);
    free(all);
    free(got);
    gni_kad_table_free(t);
}

GN_TEST(bounds_entries_and_addresses)
{
    kt_rng r = {6};
    gn_peer_id self, p;
    gni_kad_table_config cfg;
    gni_kad_table_config_default(&cfg);
    cfg.k = 3;
    cfg.replacement_cnt = 2;
    cfg.max_entries = 10;
    cfg.max_addrs = 2;
    gni_kad_table *t = new_table(&r, &cfg, &self, 0);
    /* fill to the total bound with random peers, then everything new is refused */
    size_t accepted = 0;
    int refused = 0;
    for (int i = 0; i < 200; i++) {
        kt_peer(&r, &p);
        int rc = gni_kad_table_add(t, &p, NULL, 0, 0, 1, NULL);
        if (rc == GN_ELIMIT) {
            refused++;
        } else {
            CHECK_OK(rc);
            accepted++;
        }
        size_t total = 0;
        for (unsigned b = 0; b < GNI_KAD_BUCKETS; b++) {
            CHECK(gni_kad_table_bucket_count(t, b) <= 3);
            CHECK(gni_kad_table_cached_count(t, b) <= 2);
            total += gni_kad_table_bucket_count(t, b) + gni_kad_table_cached_count(t, b);
        }
        CHECK(total <= 10);
    }
    CHECK(refused > 0);
    gni_kad_table_free(t);

    /* addresses: merged without duplicates, the oldest dropped, oversized skipped */
    t = new_table(&r, &cfg, &self, 0);
    gn_multiaddr *a[4] = {NULL, NULL, NULL, NULL};
    CHECK_OK(gn_multiaddr_parse("/ip4/10.0.0.1/tcp/1", &a[0]));
    CHECK_OK(gn_multiaddr_parse("/ip4/10.0.0.2/tcp/2", &a[1]));
    CHECK_OK(gn_multiaddr_parse("/ip4/10.0.0.3/tcp/3", &a[2]));
    char big[400];
    memset(big, 0, sizeof big);
    strcpy(big, "/dns4/");
    memset(big + 6, 'a', 200);
    strcat(big, "/tcp/4/dns4/");
    memset(big + strlen(big), 'b', 100);
    CHECK_OK(gn_multiaddr_parse(big, &a[3]));
    CHECK(gn_multiaddr_bytes(a[3]).len > GNI_KAD_ADDR_MAX_BYTES);
    kt_peer(&r, &p);
    CHECK_EQ(gni_kad_table_add(t, &p, a, 2, 0, 1, NULL), GNI_KAD_ADD_INSERTED);
    const gni_kad_entry *e = gni_kad_table_find(t, &p);
    CHECK_EQ(e->naddrs, 2);
    CHECK_EQ(gni_kad_table_add(t, &p, a, 1, 0, 2, NULL), GNI_KAD_ADD_UPDATED); /* known */
    e = gni_kad_table_find(t, &p);
    CHECK_EQ(e->naddrs, 2);
    CHECK(gn_multiaddr_equal(e->addrs[0], a[0]));
    CHECK_EQ(gni_kad_table_add(t, &p, a + 2, 2, 0, 3, NULL), GNI_KAD_ADD_UPDATED);
    e = gni_kad_table_find(t, &p);
    CHECK_EQ(e->naddrs, 2); /* a0 dropped, a3 too long */
    CHECK(gn_multiaddr_equal(e->addrs[0], a[1]));
    CHECK(gn_multiaddr_equal(e->addrs[1], a[2]));
    CHECK_EQ(gni_kad_table_add(t, &p, NULL, 1, 0, 3, NULL), GN_EINVAL);
    for (int i = 0; i < 4; i++) {
        gn_multiaddr_free(a[i]);
    }
    gni_kad_table_free(t);
}

GN_TEST(refresh_schedule)
{
    kt_rng r = {7};
    gn_peer_id self, p;
    const gn_time t0 = 1000 * GN_S, iv = GNI_KAD_REFRESH_DEFAULT;
    gni_kad_table *t = new_table(&r, NULL, &self, t0);
    unsigned cpls[8];
    CHECK_EQ(gni_kad_table_refresh_due(t, t0 + 10 * iv, cpls, 8), 0); /* empty */
    CHECK_EQ(gni_kad_table_next_refresh(t), GN_TIME_INFINITY);
    peer_in(t, &r, 3, &p);
    CHECK_EQ(gni_kad_table_add(t, &p, NULL, 0, 0, t0, NULL), GNI_KAD_ADD_INSERTED);
    /* buckets 0..3 (up to the highest non-empty one) are refreshed */
    CHECK_EQ(gni_kad_table_next_refresh(t), t0 + iv);
    CHECK_EQ(gni_kad_table_refresh_due(t, t0 + iv - 1, cpls, 8), 0);
    CHECK_EQ(gni_kad_table_refresh_due(t, t0 + iv, cpls, 8), 4);
    for (unsigned i = 0; i < 4; i++) {
        CHECK_EQ(cpls[i], i);
    }
    CHECK_EQ(gni_kad_table_refresh_due(t, t0 + iv, cpls, 2), 4); /* count beyond max */
    gni_kad_table_refreshed(t, 2, t0 + iv);
    CHECK_EQ(gni_kad_table_refresh_due(t, t0 + iv, cpls, 8), 3);
    CHECK_EQ(cpls[2], 3);
    for (unsigned i = 0; i < 4; i++) {
        gni_kad_table_refreshed(t, i, t0 + iv + i);
    }
    CHECK_EQ(gni_kad_table_refresh_due(t, t0 + iv, cpls, 8), 0);
    CHECK_EQ(gni_kad_table_next_refresh(t), t0 + 2 * iv);
    gn_peer_id far;
    gn_rng g = kt_gn_rng(&r);
    CHECK_EQ(gni_kad_table_random_peer(t, GNI_KAD_REFRESH_MAX_CPL + 1, &g, 10, &far), GN_EINVAL);
    gni_kad_table_free(t);
}

GN_TEST(random_peer_has_the_cpl)
{
    kt_rng r = {8};
    gn_peer_id self, p;
    gni_kad_table *t = new_table(&r, NULL, &self, 0);
    gn_rng g = kt_gn_rng(&r);
    for (unsigned cpl = 0; cpl <= 10; cpl++) {
        CHECK_OK(gni_kad_table_random_peer(t, cpl, &g, 1u << 16, &p));
        CHECK_EQ(cpl_of(t, &p), cpl);
        CHECK_EQ(p.len, 34);
    }
    gni_kad_table_free(t);
}

GN_TEST_MAIN(GN_T(config_and_self), GN_T(bucket_placement_by_cpl),
             GN_T(full_bucket_liveness_check_and_replacement), GN_T(failures_and_removal),
             GN_T(closest_matches_brute_force_1000), GN_T(bounds_entries_and_addresses),
             GN_T(refresh_schedule), GN_T(random_peer_has_the_cpl))
