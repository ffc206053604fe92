/*
 * The Kademlia simulation (bench/kad_sim.h) at a few hundred nodes: the
 * same code bench_kad runs at 10,000, here with assertions on success rates
 * and bounds. 200 golemnet nodes on one virtual-clock loop over the memory
 * transport with plaintext security.
 */
#include "../../../bench/kad_sim.h"

#include "gn_test.h"

#include <stdio.h>

GN_TEST(two_hundred_nodes)
{
    kad_sim_config cfg;
    kad_sim_config_default(&cfg);
    cfg.nodes = 200;
    cfg.wave = 100;
    cfg.lookups = 200;
    cfg.records = 40;
    cfg.gets = 200;
    cfg.churn = 0.2;
    cfg.concurrency = 50;
    kad_sim_result r;
    CHECK_OK(kad_sim_run(&cfg, &r));
    printf("# join %.1f s (virtual %.1f s); tables %zu..%zu (median %zu); "
           "find %zu/%zu hops %.0f msgs %.1f; get %zu/%zu; after churn find %zu/%zu get %zu/%zu; "
           "peak RSS %ld KiB\n",
           r.join_wall_s, r.join_virtual_s, r.table_min, r.table_max, r.table_median, r.find.ok,
           r.find.runs, r.find.hops_median, r.find.msgs_mean, r.get.ok, r.get.runs,
           r.churn_find.ok, r.churn_find.runs, r.churn_get.ok, r.churn_get.runs, r.hwm_kib);
    CHECK_EQ(r.joins_failed, 0);
    CHECK_EQ(r.alive, 160);
    /* every node knows peers; k = 20 bounds what a lookup needs */
    CHECK(r.table_min >= 10);
    CHECK(r.table_max <= 200);
    /* every lookup and every get succeeds, in few hops and bounded messages */
    CHECK_EQ(r.find.runs, 200);
    CHECK_EQ(r.find.ok, 200);
    CHECK(r.find.hops_median <= 4);
    CHECK(r.find.msgs_mean <= 60);
    CHECK_EQ(r.puts_ok, 40);
    CHECK_EQ(r.get.ok, 200);
    CHECK(r.get.hops_median <= 4);
    /* after 20 % of the nodes left: lookups of live nodes still succeed, and
     * records (stored at k = 20 peers) are still found */
    CHECK(r.churn_find.ok >= 198);
    CHECK(r.churn_get.ok >= 198);
    CHECK(r.churn_find.hops_median <= 4);
}

int main(int argc, char **argv)
{
    static const gn_test_case cases[] = {
        GN_T(two_hundred_nodes),
    };
    return gn_test_run(cases, sizeof cases / sizeof cases[0], argc, argv);
}
