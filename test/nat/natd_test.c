/*
 * Unit tests of layers/nat/natd_uv.c, the driver the NAT components share,
 * on a real loop with libuv's thread pool and a scripted backend (the
 * miniupnpc and libnatpmp backends are tested against real and fake
 * gateways in nat_netns_test.sh). Checked: each map completes exactly
 * once and never inside the call; renewals at half the granted lease;
 * unmap deletes; stop cancels pending maps (GN_ECANCELED, on a later
 * turn) and deletes held mappings; a mapping made after its map was
 * cancelled is deleted; freeing with a job in flight cancels the map,
 * finishes the job and frees the backend exactly once; a failed map is neither renewed nor
 * deleted.
 */
#include "golemnet/golemnet.h"

#include "gn_test.h"
#include "natd_uv.h"

#include <string.h>

/* Backend calls, written on the worker thread one job at a time and read
 * on the loop thread after the job's completion (libuv orders the two). */
static struct {
    int gateways, maps, unmaps, frees;
    int map_err;          /* what map answers */
    uint32_t lease_s;     /* what map grants */
    uint16_t last_unmap_port;
} B;

static void be_gateway(void *be, gni_natd_result *r)
{
    (void)be;
    B.gateways++;
    static const uint8_t ip[4] = {203, 0, 113, 7};
    memcpy(r->ext_ip, ip, 4);
    snprintf(r->reason, sizeof r->reason, "scripted");
}

static void be_map(void *be, const gni_nat_target *t, uint32_t lease_s, gni_natd_result *r)
{
    (void)be, (void)lease_s;
    B.maps++;
    if (B.map_err) {
        r->err = B.map_err;
        r->code = 501;
        snprintf(r->reason, sizeof r->reason, "scripted failure");
        return;
    }
    static const uint8_t ip[4] = {203, 0, 113, 7};
    memcpy(r->ext_ip, ip, 4);
    r->ext_port = (uint16_t)(t->port + 1);
    r->lease_s = B.lease_s;
}

static void be_unmap(void *be, const gni_nat_target *t, gni_natd_result *r)
{
    (void)be, (void)r;
    B.unmaps++;
    B.last_unmap_port = t->port;
}

static void be_free(void *be)
{
    B.frees++;
    gn_free(be);
}

static const gni_natd_vtbl vt = {
    .log = "natd-test",
    .gateway = be_gateway,
    .map = be_map,
    .unmap = be_unmap,
    .free = be_free,
};

static struct {
    int results, status, reentrant;
    char ext[128];
} R;
static bool g_in_call;

static void mapped(void *arg, int status, const gn_multiaddr *external)
{
    (void)arg;
    R.results++;
    R.status = status;
    R.reentrant += g_in_call;
    R.ext[0] = '\0';
    if (external)
        gn_multiaddr_to_string(external, R.ext, sizeof R.ext);
}

static bool g_guard;
static void guard_fn(gn_timer *t, void *arg)
{
    (void)t, (void)arg;
    g_guard = true;
}

#define RUN_UNTIL(cond, ms)                                                                  \
    do {                                                                                     \
        gn_timer guard_;                                                                     \
        g_guard = false;                                                                     \
        gn_timer_init(loop, &guard_);                                                        \
        gn_timer_start(&guard_, (gn_time)(ms)*GN_MS, guard_fn, NULL);                       \
        for (long t_ = 0; !(cond) && !g_guard && t_ < 1000000; t_++)                         \
            gn_loop_run(loop, GN_RUN_ONCE);                                                  \
        gn_timer_stop(&guard_);                                                              \
    } while (0)

typedef struct world {
    gn_loop *loop;
    gn_nat nat;
    gni_natd *d;
    gn_multiaddr *ma;
} world;

static gn_loop *loop;

static void up(world *w, uint32_t lease_opt)
{
    memset(&B, 0, sizeof B);
    memset(&R, 0, sizeof R);
    B.lease_s = 2;
    memset(w, 0, sizeof *w);
    CHECK_OK(gn_loop_new(NULL, &w->loop));
    loop = w->loop;
    w->nat.loop = w->loop;
    CHECK_OK(gni_natd_new(&w->nat, &vt, gn_calloc(1, 8), lease_opt, 2, 604800, &w->d));
    CHECK_OK(gn_multiaddr_parse("/ip4/10.77.1.2/tcp/4001", &w->ma));
    CHECK_OK(gni_natd_start(w->d));
}

static void map(world *w)
{
    g_in_call = true;
    CHECK_EQ(gni_natd_map(w->d, w->ma, 60 * 60 * GN_S, mapped, NULL), 0);
    g_in_call = false;
    CHECK_EQ(R.results, 0); /* never inside the call */
}

static void down(world *w)
{
    gni_natd_free(w->d);
    gn_loop_free(w->loop); /* finishes the jobs left */
    gn_multiaddr_free(w->ma);
    CHECK_EQ(B.frees, 1);
    CHECK_EQ(R.reentrant, 0);
}

GN_TEST(map_renew_unmap)
{
    world w;
    up(&w, 0);
    map(&w);
    RUN_UNTIL(R.results == 1, 5000);
    CHECK_EQ(R.results, 1);
    CHECK_EQ(R.status, 0);
    CHECK_STR(R.ext, "/ip4/203.0.113.7/tcp/4002");
    CHECK_EQ(B.gateways, 1);
    /* granted 2 s: renewed after 1 s, then again */
    RUN_UNTIL(B.maps >= 3, 5000);
    CHECK(B.maps >= 3);
    CHECK_EQ(R.results, 1); /* renewals do not answer again */
    CHECK_EQ(gni_natd_unmap(w.d, w.ma), 0);
    CHECK_EQ(gni_natd_unmap(w.d, w.ma), GN_ENOTFOUND);
    RUN_UNTIL(B.unmaps == 1, 5000);
    CHECK_EQ(B.unmaps, 1);
    CHECK_EQ(B.last_unmap_port, 4001);
    int maps = B.maps;
    RUN_UNTIL(false, 1500); /* no renewal after unmap */
    CHECK_EQ(B.maps, maps);
    gni_natd_stop(w.d);
    down(&w);
    CHECK_EQ(B.unmaps, 1);
}

GN_TEST(stop_cancels_pending_and_deletes_what_was_made)
{
    world w;
    up(&w, 0);
    map(&w);
    gni_natd_stop(w.d); /* before the job ran or answered */
    CHECK_EQ(R.results, 0); /* not inside stop */
    RUN_UNTIL(R.results == 1, 5000);
    CHECK_EQ(R.results, 1);
    CHECK_EQ(R.status, GN_ECANCELED);
    CHECK_EQ(gni_natd_map(w.d, w.ma, GN_S, mapped, NULL), GN_ESTATE);
    down(&w);
    CHECK_EQ(R.results, 1);
    /* if the gateway made it anyway, it was deleted */
    CHECK_EQ(B.unmaps, B.maps);
}

GN_TEST(stop_deletes_held_mappings)
{
    world w;
    up(&w, 3600);
    map(&w);
    RUN_UNTIL(R.results == 1, 5000);
    CHECK_EQ(R.status, 0);
    gni_natd_stop(w.d);
    RUN_UNTIL(B.unmaps == 1, 5000);
    CHECK_EQ(B.unmaps, 1);
    down(&w);
}

GN_TEST(free_with_a_job_in_flight)
{
    world w;
    up(&w, 0);
    map(&w);
    down(&w); /* no loop turn: the jobs run while the loop closes */
    CHECK_EQ(R.results, 1); /* free stops first: the pending map is cancelled, once */
    CHECK_EQ(R.status, GN_ECANCELED);
    CHECK_EQ(B.unmaps, B.maps > 0 ? 1 : 0);
}

GN_TEST(failed_map_is_neither_renewed_nor_deleted)
{
    world w;
    up(&w, 0);
    B.map_err = GN_EIO;
    map(&w);
    RUN_UNTIL(R.results == 1, 5000);
    CHECK_EQ(R.status, GN_EIO);
    RUN_UNTIL(false, 1500);
    CHECK_EQ(B.maps, 1);
    CHECK_EQ(gni_natd_unmap(w.d, w.ma), GN_ENOTFOUND);
    gni_natd_stop(w.d);
    down(&w);
    CHECK_EQ(B.unmaps, 0);
    CHECK_EQ(R.results, 1);
}

GN_TEST(unmappable_address_is_refused_at_once)
{
    world w;
    up(&w, 0);
    gn_multiaddr *m6 = NULL;
    CHECK_OK(gn_multiaddr_parse("/ip6/::1/tcp/1", &m6));
    CHECK_EQ(gni_natd_map(w.d, m6, GN_S, mapped, NULL), GN_ENOTSUP);
    gn_multiaddr_free(m6);
    gni_natd_stop(w.d);
    down(&w);
    CHECK_EQ(R.results, 0);
    CHECK_EQ(B.maps, 0);
}

GN_TEST_MAIN(GN_T(map_renew_unmap), GN_T(stop_cancels_pending_and_deletes_what_was_made),
             GN_T(stop_deletes_held_mappings), GN_T(free_with_a_job_in_flight),
             GN_T(failed_map_is_neither_renewed_nor_deleted),
             GN_T(unmappable_address_is_refused_at_once))
