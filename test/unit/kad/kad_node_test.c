/*
 * The kad router on real nodes: TCP on 127.0.0.1, one loop, kad.mode=server.
 * A line of nodes bootstraps through its first node; the tests put and get
 * records, provide and find providers, find peers and closest peers across
 * it, and check the bounds on what a peer sends (a malformed request, a
 * request flood, a client-mode node that does not advertise the protocol).
 */
#include "../../conformance/conf_node.h"

#include "golemnet/router.h"

#include <string.h>

#define NNODES 6
#define KT_MIN(a, b) ((a) < (b) ? (a) : (b))
#define KT_LEN(a) (sizeof(a) / sizeof((a)[0]))

typedef struct dht_res {
    int calls;
    int status;
    uint8_t value[256];
    size_t value_len;
    gn_peer_id peers[32];
    size_t npeers;
    size_t naddrs0;
} dht_res;

static void on_dht(void *arg, const gn_node_dht_result *res)
{
    dht_res *r = arg;
    r->calls++;
    r->status = res->status;
    r->value_len = KT_MIN(res->value.len, sizeof r->value);
    if (res->value.len) {
        memcpy(r->value, res->value.base, r->value_len);
    }
    r->npeers = KT_MIN(res->npeers, KT_LEN(r->peers));
    for (size_t i = 0; i < r->npeers; i++) {
        r->peers[i] = res->peers[i].id;
    }
    r->naddrs0 = res->npeers ? res->peers[0].naddrs : 0;
}

#define DHT_WAIT(r, ms) CN_RUN_UNTIL((r).calls > 0, ms)

typedef struct net {
    cn_node n[NNODES];
    size_t count;
    char boot_opt[GN_NODE_ADDR_MAX + 32];
} net;

static const char *const lo[] = {"/ip4/127.0.0.1/tcp/0"};
/* An extra option every node of the next net gets (NULL: none). */
static const char *g_extra_opt;

/* Node @i of @w in server mode (@mode NULL) or @mode; nodes after the first
 * bootstrap from node 0. */
static void net_add(net *w, const char *mode)
{
    size_t i = w->count++;
    const char *opts[4];
    size_t no = 0;
    static char mode_opt[64];
    snprintf(mode_opt, sizeof mode_opt, "kad.mode=%s", mode ? mode : "server");
    opts[no++] = mode_opt;
    opts[no++] = "kad.request_timeout_ms=3000";
    if (i > 0) {
        opts[no++] = w->boot_opt;
    }
    if (g_extra_opt) {
        opts[no++] = g_extra_opt;
    }
    cn_up(&w->n[i], 100 + (uint32_t)i,
          &(cn_opts){.routers = "kad", .options = opts, .n_options = no, .listen = lo,
                     .n_listen = 1});
    if (i == 0) {
        snprintf(w->boot_opt, sizeof w->boot_opt, "kad.bootstrap=%s", w->n[0].addr);
    }
}

/* Waits until every node's routing table reached the others: each node
 * closest_peers(its own ID) sees all other nodes. */
static void net_init(net *w)
{
    memset(w, 0, sizeof *w);
    cn_setup();
}

static void net_up(net *w, size_t count)
{
    net_init(w);
    for (size_t i = 0; i < count; i++) {
        net_add(w, NULL);
    }
    /* bootstrapped nodes identify node 0 and it learns them back */
    CN_RUN_FOR(300);
    for (size_t i = 0; i < count; i++) {
        dht_res r = {0};
        CHECK_OK(gn_node_dht_closest_peers(w->n[i].n, w->n[i].pid.bytes, w->n[i].pid.len,
                                           on_dht, &r));
        DHT_WAIT(r, 10000);
        CHECK_EQ(r.status, 0);
    }
}

static void net_down(net *w)
{
    for (size_t i = 0; i < w->count; i++) {
        cn_close(&w->n[i]);
    }
    for (size_t i = 0; i < w->count; i++) {
        cn_free(&w->n[i]);
    }
    cn_finish();
}

static bool has_peer(const dht_res *r, const gn_peer_id *p)
{
    for (size_t i = 0; i < r->npeers; i++) {
        if (gn_peer_id_equal(&r->peers[i], p)) {
            return true;
        }
    }
    return false;
}

static int test_validate(void *arg, gn_slice key, gn_slice value)
{
    (void)arg, (void)key;
    return value.len > 0 && value.base[0] == 'x' ? GN_EINVAL : 0; /* "x..." is invalid */
}

static size_t test_select(void *arg, gn_slice key, const gn_slice *values, size_t n)
{
    (void)arg, (void)key;
    size_t best = 0; /* the lexicographically largest wins */
    for (size_t i = 1; i < n; i++) {
        size_t m = KT_MIN(values[i].len, values[best].len);
        int c = memcmp(values[i].base, values[best].base, m);
        if (c > 0 || (c == 0 && values[i].len > values[best].len)) {
            best = i;
        }
    }
    return best;
}

static const gn_router_validator test_ns = {"test", test_validate, test_select, NULL};

static void set_validators(net *w)
{
    for (size_t i = 0; i < w->count; i++) {
        dht_res r = {0};
        CHECK_OK(gn_node_dht_set_validator(w->n[i].n, &test_ns, on_dht, &r));
        DHT_WAIT(r, 2000);
        CHECK_EQ(r.status, 0);
    }
}

GN_TEST(find_peer_and_closest_peers_across_a_line)
{
    net w;
    net_up(&w, NNODES);
    /* the last node finds the second; closest_peers of a key lists everyone it knows */
    dht_res r = {0};
    CHECK_OK(gn_node_dht_find_peer(w.n[NNODES - 1].n, &w.n[1].pid, on_dht, &r));
    DHT_WAIT(r, 10000);
    CHECK_EQ(r.status, 0);
    CHECK_EQ(r.npeers, 1);
    CHECK(gn_peer_id_equal(&r.peers[0], &w.n[1].pid));
    CHECK(r.naddrs0 >= 1);
    dht_res c = {0};
    CHECK_OK(gn_node_dht_closest_peers(w.n[2].n, (const uint8_t *)"some key", 8, on_dht, &c));
    DHT_WAIT(c, 10000);
    CHECK_EQ(c.status, 0);
    CHECK_EQ(c.npeers, NNODES - 1); /* everyone but itself: fewer than k exist */
    for (size_t i = 0; i < NNODES; i++) {
        CHECK_EQ(has_peer(&c, &w.n[i].pid), i != 2);
    }
    net_down(&w);
}

GN_TEST(disjoint_paths_find_the_same_peers)
{
    net w;
    g_extra_opt = "kad.disjoint_paths=3";
    net_up(&w, NNODES);
    g_extra_opt = NULL;
    dht_res c = {0};
    CHECK_OK(gn_node_dht_closest_peers(w.n[3].n, (const uint8_t *)"other key", 9, on_dht, &c));
    DHT_WAIT(c, 10000);
    CHECK_EQ(c.status, 0);
    CHECK_EQ(c.npeers, NNODES - 1);
    for (size_t i = 0; i < NNODES; i++) {
        CHECK_EQ(has_peer(&c, &w.n[i].pid), i != 3);
    }
    dht_res r = {0};
    CHECK_OK(gn_node_dht_find_peer(w.n[NNODES - 1].n, &w.n[0].pid, on_dht, &r));
    DHT_WAIT(r, 10000);
    CHECK_EQ(r.status, 0);
    net_down(&w);
}

GN_TEST(put_get_with_a_validator_and_selector)
{
    net w;
    net_up(&w, NNODES);
    set_validators(&w);
    static const uint8_t key[] = "/test/k1";
    dht_res p = {0};
    CHECK_OK(gn_node_dht_put(w.n[1].n, key, sizeof key - 1, (const uint8_t *)"b-value", 7, on_dht,
                             &p));
    DHT_WAIT(p, 10000);
    CHECK_EQ(p.status, 0);
    for (size_t i = 0; i < NNODES; i++) {
        dht_res g = {0};
        CHECK_OK(gn_node_dht_get(w.n[i].n, key, sizeof key - 1, on_dht, &g));
        DHT_WAIT(g, 10000);
        CHECK_EQ(g.status, 0);
        CHECK_EQ(g.value_len, 7);
        CHECK(memcmp(g.value, "b-value", 7) == 0);
    }
    /* a better value (the selector prefers "c...") replaces it everywhere */
    dht_res p2 = {0};
    CHECK_OK(gn_node_dht_put(w.n[4].n, key, sizeof key - 1, (const uint8_t *)"c-value", 7, on_dht,
                             &p2));
    DHT_WAIT(p2, 10000);
    CHECK_EQ(p2.status, 0);
    dht_res g2 = {0};
    CHECK_OK(gn_node_dht_get(w.n[0].n, key, sizeof key - 1, on_dht, &g2));
    DHT_WAIT(g2, 10000);
    CHECK_EQ(g2.status, 0);
    CHECK(g2.value_len == 7 && memcmp(g2.value, "c-value", 7) == 0);
    /* an invalid value is refused locally; an unknown namespace too */
    dht_res bad = {0};
    CHECK_OK(gn_node_dht_put(w.n[2].n, key, sizeof key - 1, (const uint8_t *)"x", 1, on_dht,
                             &bad));
    DHT_WAIT(bad, 5000);
    CHECK_EQ(bad.status, GN_EINVAL);
    dht_res ns = {0};
    CHECK_OK(gn_node_dht_put(w.n[2].n, (const uint8_t *)"/nope/k", 7, (const uint8_t *)"v", 1,
                             on_dht, &ns));
    DHT_WAIT(ns, 5000);
    CHECK_EQ(ns.status, GN_ENOTSUP);
    /* a key nobody stored */
    dht_res none = {0};
    CHECK_OK(gn_node_dht_get(w.n[3].n, (const uint8_t *)"/test/none", 10, on_dht, &none));
    DHT_WAIT(none, 10000);
    CHECK_EQ(none.status, GN_ENOTFOUND);
    net_down(&w);
}

GN_TEST(pk_records_validate_against_the_key)
{
    net w;
    net_up(&w, 3);
    /* "/pk/<peer id bytes>" -> the peer's public key protobuf */
    uint8_t key[4 + GN_PEER_ID_MAX_BYTES];
    memcpy(key, "/pk/", 4);
    memcpy(key + 4, w.n[1].pid.bytes, w.n[1].pid.len);
    size_t klen = 4 + w.n[1].pid.len;
    uint8_t pub[GN_ED25519_PUBLICKEYBYTES], pb[64];
    gn_identity_public_key(w.n[1].id, pub);
    int pblen = gn_pubkey_encode_ed25519(pub, pb, sizeof pb);
    CHECK(pblen > 0);
    dht_res p = {0};
    CHECK_OK(gn_node_dht_put(w.n[1].n, key, klen, pb, (size_t)pblen, on_dht, &p));
    DHT_WAIT(p, 10000);
    CHECK_EQ(p.status, 0);
    dht_res g = {0};
    CHECK_OK(gn_node_dht_get(w.n[2].n, key, klen, on_dht, &g));
    DHT_WAIT(g, 10000);
    CHECK_EQ(g.status, 0);
    CHECK(g.value_len == (size_t)pblen && memcmp(g.value, pb, g.value_len) == 0);
    /* node 2's key under node 1's ID does not validate */
    gn_identity_public_key(w.n[2].id, pub);
    pblen = gn_pubkey_encode_ed25519(pub, pb, sizeof pb);
    dht_res bad = {0};
    CHECK_OK(gn_node_dht_put(w.n[0].n, key, klen, pb, (size_t)pblen, on_dht, &bad));
    DHT_WAIT(bad, 5000);
    CHECK(bad.status < 0);
    net_down(&w);
}

GN_TEST(provide_and_find_providers)
{
    net w;
    net_up(&w, NNODES);
    /* a sha2-256 multihash as the key, as a CID's */
    uint8_t mh[34] = {0x12, 0x20};
    for (int i = 0; i < 32; i++) {
        mh[2 + i] = (uint8_t)(i * 7 + 1);
    }
    dht_res p = {0};
    CHECK_OK(gn_node_dht_provide(w.n[3].n, mh, sizeof mh, on_dht, &p));
    DHT_WAIT(p, 10000);
    CHECK_EQ(p.status, 0);
    dht_res p2 = {0};
    CHECK_OK(gn_node_dht_provide(w.n[5].n, mh, sizeof mh, on_dht, &p2));
    DHT_WAIT(p2, 10000);
    CHECK_EQ(p2.status, 0);
    for (size_t i = 0; i < NNODES; i++) {
        dht_res f = {0};
        CHECK_OK(gn_node_dht_find_providers(w.n[i].n, mh, sizeof mh, 10, on_dht, &f));
        DHT_WAIT(f, 10000);
        CHECK_EQ(f.status, 0);
        CHECK_EQ(f.npeers, 2);
        CHECK(has_peer(&f, &w.n[3].pid));
        CHECK(has_peer(&f, &w.n[5].pid));
        CHECK(f.naddrs0 >= 1);
    }
    /* max 1 stops at the first */
    dht_res one = {0};
    CHECK_OK(gn_node_dht_find_providers(w.n[0].n, mh, sizeof mh, 1, on_dht, &one));
    DHT_WAIT(one, 10000);
    CHECK_EQ(one.status, 0);
    CHECK_EQ(one.npeers, 1);
    /* nobody provides this one */
    mh[5] ^= 0xff;
    dht_res none = {0};
    CHECK_OK(gn_node_dht_find_providers(w.n[0].n, mh, sizeof mh, 10, on_dht, &none));
    DHT_WAIT(none, 10000);
    CHECK_EQ(none.status, 0);
    CHECK_EQ(none.npeers, 0);
    net_down(&w);
}

GN_TEST(client_mode_does_not_advertise_and_is_not_added)
{
    net w;
    net_init(&w);
    net_add(&w, NULL);
    net_add(&w, "client");
    CN_RUN_FOR(300);
    /* the client knows the server (it bootstrapped from it) ... */
    dht_res c = {0};
    CHECK_OK(gn_node_dht_closest_peers(w.n[1].n, (const uint8_t *)"k", 1, on_dht, &c));
    DHT_WAIT(c, 5000);
    CHECK_EQ(c.status, 0);
    CHECK(has_peer(&c, &w.n[0].pid));
    /* ... the server does not know the client: no peer to ask */
    dht_res s = {0};
    CHECK_OK(gn_node_dht_closest_peers(w.n[0].n, (const uint8_t *)"k", 1, on_dht, &s));
    DHT_WAIT(s, 5000);
    CHECK_EQ(s.status, GN_ENOROUTE);
    CHECK_EQ(s.npeers, 0);
    /* and the client answers no kad stream */
    gn_host *h = gn_node_host(w.n[1].n);
    const char *ids[64];
    size_t n = gn_host_protocols(h, ids, 64);
    for (size_t i = 0; i < n; i++) {
        CHECK(strcmp(ids[i], "/ipfs/kad/1.0.0") != 0);
    }
    net_down(&w);
}

typedef struct raw_res {
    int calls, status;
    gn_stream *s;
    int errors, eofs;
    size_t bytes;
} raw_res;

static void raw_opened(void *arg, int status, gn_channel *ch, gn_stream *s)
{
    (void)ch;
    raw_res *r = arg;
    r->calls++;
    r->status = status;
    r->s = s;
}

static void raw_data(gn_stream *s, void *ud, const uint8_t *d, size_t len)
{
    (void)s, (void)d;
    ((raw_res *)ud)->bytes += len;
}

static void raw_eof(gn_stream *s, void *ud)
{
    (void)s;
    ((raw_res *)ud)->eofs++;
}

static void raw_error(gn_stream *s, void *ud, int err)
{
    (void)s, (void)err;
    ((raw_res *)ud)->errors++;
}

static const gn_stream_handler raw_handler = {raw_data, raw_eof, raw_error, NULL};

static void raw_written(void *arg, int status)
{
    (void)arg, (void)status;
}

GN_TEST(malformed_request_resets_only_its_stream)
{
    net w;
    net_up(&w, 3);
    gn_host *h = gn_node_host(w.n[1].n);
    raw_res r = {0};
    CHECK_OK(gn_host_new_stream(h, &w.n[0].pid, "/ipfs/kad/1.0.0", raw_opened, &r, NULL));
    CN_RUN_UNTIL(r.calls > 0, 5000);
    CHECK_EQ(r.status, 0);
    gn_stream_set_handler(r.s, &raw_handler, &r);
    gn_stream_read_start(r.s);
    /* a frame whose body is not a protobuf Message */
    static const uint8_t junk[] = {0x03, 0xff, 0xff, 0xff};
    gn_slice iov = gn_slice_of(junk, sizeof junk);
    CHECK_OK(gn_stream_write(r.s, &iov, 1, raw_written, NULL));
    CN_RUN_UNTIL(r.errors > 0 || r.eofs > 0, 5000);
    CHECK_EQ(r.errors, 1); /* reset, not a graceful end */
    CHECK_EQ(r.bytes, 0);
    gn_stream_close(r.s, NULL, NULL);
    /* the node still answers on a new stream */
    dht_res c = {0};
    CHECK_OK(gn_node_dht_find_peer(w.n[1].n, &w.n[2].pid, on_dht, &c));
    DHT_WAIT(c, 5000);
    CHECK_EQ(c.status, 0);
    net_down(&w);
}

GN_TEST(request_flood_is_rate_limited)
{
    net w;
    net_init(&w);
    /* node 0 allows 5 requests a second with a burst of 5 */
    const char *opts[] = {"kad.mode=server", "kad.rate=5", "kad.burst=5"};
    w.count = 1;
    cn_up(&w.n[0], 100, &(cn_opts){.routers = "kad", .options = opts, .n_options = 3,
                                    .listen = lo, .n_listen = 1});
    snprintf(w.boot_opt, sizeof w.boot_opt, "kad.bootstrap=%s", w.n[0].addr);
    net_add(&w, NULL);
    CN_RUN_FOR(300);
    int ok = 0, failed = 0;
    for (int i = 0; i < 12; i++) {
        dht_res c = {0};
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        CHECK_OK(gn_node_dht_closest_peers(w.n[1].n, (const uint8_t *)key, strlen(key), on_dht,
                                           &c));
        DHT_WAIT(c, 5000);
        if (c.status == 0 && has_peer(&c, &w.n[0].pid)) {
            ok++;
        } else {
            failed++;
        }
    }
    printf("# %d answered, %d refused\n", ok, failed);
    CHECK(ok >= 3 && ok <= 7);
    CHECK(failed >= 5);
    net_down(&w);
}

typedef struct found_set {
    gn_peer_id peers[16];
    size_t n;
} found_set;

static void on_found(void *arg, const gn_host_event *ev)
{
    found_set *f = arg;
    for (size_t i = 0; i < f->n; i++) {
        if (gn_peer_id_equal(&f->peers[i], ev->peer)) {
            return;
        }
    }
    if (f->n < KT_LEN(f->peers)) {
        f->peers[f->n++] = *ev->peer;
    }
}

GN_TEST(random_walk_reports_peers_beyond_the_bootstrap_peer)
{
    net w;
    net_up(&w, 4);
    /* a fifth node that knows only node 0 and walks */
    const char *opts[] = {"kad.mode=server", w.boot_opt, "kad.walk_first_ms=200"};
    cn_node *x = &w.n[w.count++];
    cn_up(x, 200, &(cn_opts){.routers = "kad", .discovery = "kad", .options = opts,
                             .n_options = 3, .listen = lo, .n_listen = 1});
    found_set f = {0};
    gn_host_sub *sub = NULL;
    CHECK_OK(gn_host_subscribe(gn_node_host(x->n), GN_HOST_EV_PEER_FOUND, on_found, &f, &sub));
    CN_RUN_UNTIL(f.n >= 4, 10000);
    for (size_t i = 0; i < 4; i++) {
        bool hit = false;
        for (size_t j = 0; j < f.n; j++) {
            hit = hit || gn_peer_id_equal(&f.peers[j], &w.n[i].pid);
        }
        CHECK(hit);
    }
    gn_host_unsubscribe(sub);
    net_down(&w);
}

GN_TEST(dial_by_peer_id_through_the_dht)
{
    net w;
    net_up(&w, 4);
    /* a fifth node that knows only node 0 dials node 2 by its bare peer ID:
     * no address in its peer store, so the host asks the kad router */
    const char *opts[] = {"kad.mode=server", w.boot_opt};
    cn_node *x = &w.n[w.count++];
    cn_up(x, 300, &(cn_opts){.routers = "kad", .options = opts, .n_options = 2, .listen = lo,
                             .n_listen = 1});
    CN_RUN_FOR(200);
    char target[GN_NODE_ADDR_MAX];
    snprintf(target, sizeof target, "/p2p/%s", w.n[2].pid_str);
    gn_channel *ch = NULL;
    CHECK_EQ(cn_dial(x, target, &ch), 0);
    gn_channel_info info;
    gn_channel_state_get(ch, &info);
    CHECK(gn_peer_id_equal(&info.remote_peer, &w.n[2].pid));
    gn_channel_rele(ch);
    net_down(&w);
}

static size_t stat_records(cn_node *t)
{
    gn_router_stats st;
    return gn_node_dht_stats(t->n, &st) == 0 ? st.records : 0;
}

static size_t stat_providers(cn_node *t)
{
    gn_router_stats st;
    return gn_node_dht_stats(t->n, &st) == 0 ? st.providers : 0;
}

GN_TEST(republishing_reaches_a_node_that_joined_later)
{
    net w;
    g_extra_opt = "kad.republish_ms=600";
    net_up(&w, 3);
    set_validators(&w);
    static const uint8_t key[] = "/test/republished";
    dht_res p = {0};
    CHECK_OK(gn_node_dht_put(w.n[1].n, key, sizeof key - 1, (const uint8_t *)"v", 1, on_dht, &p));
    DHT_WAIT(p, 10000);
    CHECK_EQ(p.status, 0);
    uint8_t mh[34] = {0x12, 0x20, 7};
    dht_res pr = {0};
    CHECK_OK(gn_node_dht_provide(w.n[1].n, mh, sizeof mh, on_dht, &pr));
    DHT_WAIT(pr, 10000);
    CHECK_EQ(pr.status, 0);
    /* a node that joins afterwards has neither ... */
    net_add(&w, NULL);
    g_extra_opt = NULL;
    cn_node *late = &w.n[w.count - 1];
    dht_res v = {0};
    CHECK_OK(gn_node_dht_set_validator(late->n, &test_ns, on_dht, &v));
    DHT_WAIT(v, 2000);
    CN_RUN_FOR(100);
    CHECK_EQ(stat_records(late), 0);
    CHECK_EQ(stat_providers(late), 0);
    /* ... until node 1 republishes to the closest peers, which now include it */
    CN_RUN_UNTIL(stat_records(late) == 1 && stat_providers(late) == 1, 10000);
    net_down(&w);
}

int main(int argc, char **argv)
{
    static const gn_test_case cases[] = {
        GN_T(find_peer_and_closest_peers_across_a_line),
        GN_T(disjoint_paths_find_the_same_peers),
        GN_T(put_get_with_a_validator_and_selector),
        GN_T(pk_records_validate_against_the_key),
        GN_T(provide_and_find_providers),
        GN_T(client_mode_does_not_advertise_and_is_not_added),
        GN_T(malformed_request_resets_only_its_stream),
        GN_T(request_flood_is_rate_limited),
        GN_T(random_walk_reports_peers_beyond_the_bootstrap_peer),
        GN_T(dial_by_peer_id_through_the_dht),
        GN_T(republishing_reaches_a_node_that_joined_later),
    };
    return gn_test_run(cases, sizeof cases / sizeof cases[0], argc, argv);
}
