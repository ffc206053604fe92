/*
 * Unit tests for the resource manager (core/rcmgr.c): reservation chains,
 * all-or-nothing admission, release, per-IP and per-subnet caps, the
 * transient -> peer and transient -> protocol moves, limits changed at run
 * time, priorities, metrics, bounded scope tables, allocation failure and a
 * long random sequence checked against the manager's invariants.
 */
#include "gni_rcmgr.h"

#include "gn_failalloc.h"
#include "gn_test.h"
#include "golemnet/err.h"
#include "golemnet/log.h"
#include "golemnet/rcmgr.h"

#include <stdlib.h>
#include <string.h>

static const uint8_t IP_A[4] = {192, 0, 2, 1};
static const uint8_t IP_B[4] = {192, 0, 2, 2};     /* same /24 as A */
static const uint8_t IP_C[4] = {198, 51, 100, 1}; /* another /24 */

static gn_peer_id peer_n(unsigned n)
{
    gn_peer_id p;
    memset(&p, 0, sizeof p);
    p.len = 34;
    p.bytes[0] = 0x00; /* identity multihash */
    p.bytes[1] = 32;
    p.bytes[2] = (uint8_t)(n >> 8);
    p.bytes[3] = (uint8_t)n;
    return p;
}

static gn_rcmgr_usage stat_of(const gn_rcmgr *rm, gn_rcmgr_scope_kind kind, const void *key,
                              size_t len)
{
    gn_rcmgr_usage u;
    memset(&u, 0xee, sizeof u);
    int rc = gn_rcmgr_stat(rm, kind, key, len, &u);
    if (rc == GN_ENOTFOUND) {
        memset(&u, 0, sizeof u);
    } else {
        CHECK_EQ(rc, 0);
    }
    return u;
}

#define SYS(rm) stat_of((rm), GN_RCMGR_SCOPE_SYSTEM, NULL, 0)
#define TRANS(rm) stat_of((rm), GN_RCMGR_SCOPE_TRANSIENT, NULL, 0)

static void check_consistent(const gn_rcmgr *rm, bool limits)
{
    char why[256];
    int rc = gni_rcmgr_check(rm, limits, why, sizeof why);
    if (rc != 0) {
        printf("# %s\n", why);
    }
    CHECK_EQ(rc, 0);
}

static void check_empty(const gn_rcmgr *rm)
{
    gn_rcmgr_usage s = SYS(rm), t = TRANS(rm);
    CHECK_EQ(s.memory + s.streams_in + s.streams_out + s.conns_in + s.conns_out +
                 s.conns_upgrading + s.fd,
             0);
    CHECK_EQ(t.memory + t.streams_in + t.streams_out + t.conns_in + t.conns_out +
                 t.conns_upgrading + t.fd,
             0);
    for (int k = GN_RCMGR_SCOPE_PEER; k <= GN_RCMGR_SCOPE_SUBNET; k++) {
        CHECK_EQ(gni_rcmgr_table_len(rm, (gn_rcmgr_scope_kind)k), 0);
    }
    check_consistent(rm, false);
}

GN_TEST(defaults_and_validation)
{
    gn_rcmgr_limits l;
    gn_rcmgr_limits_default(&l);
    CHECK_EQ(l.version, GN_RCMGR_LIMITS_VERSION);
    CHECK_EQ(l.system.memory, 256u * 1024 * 1024);
    CHECK_EQ(l.system.conns, 1024);
    CHECK_EQ(l.transient.conns, 128);
    CHECK_EQ(l.ip.conns_upgrading, 8);
    CHECK_EQ(l.ip.conns, 64);
    CHECK_EQ(l.peer.conns, 8);
    CHECK_EQ(l.ipv4_prefix, 24);
    CHECK_EQ(l.ipv6_prefix, 64);
    /* every narrower scope's memory fits in the system's */
    const gn_rcmgr_limit *all[] = {&l.transient, &l.peer, &l.protocol, &l.ip, &l.subnet, &l.conn,
                                   &l.stream};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        CHECK(all[i]->memory <= l.system.memory);
    }

    gn_rcmgr *rm = NULL;
    gn_rcmgr_limits bad = l;
    bad.version = 99;
    CHECK_EQ(gn_rcmgr_new(&bad, &rm), GN_EINVAL);
    bad = l;
    bad.ipv4_prefix = 33;
    CHECK_EQ(gn_rcmgr_new(&bad, &rm), GN_EINVAL);
    bad = l;
    bad.ipv6_prefix = 0;
    CHECK_EQ(gn_rcmgr_new(&bad, &rm), GN_EINVAL);
    bad = l;
    bad.max_peers = 0;
    CHECK_EQ(gn_rcmgr_new(&bad, &rm), GN_EINVAL);
    CHECK_EQ(gn_rcmgr_new(&l, NULL), GN_EINVAL);
    CHECK(rm == NULL);
    CHECK_OK(gn_rcmgr_new(NULL, &rm));
    gn_rcmgr_limits got;
    gn_rcmgr_get_limits(rm, &got);
    CHECK_MEM(&got, &l, sizeof l);
    CHECK_EQ(gn_rcmgr_set_limits(rm, &bad), GN_EINVAL);
    gn_rcmgr_get_limits(rm, &got);
    CHECK_EQ(got.max_peers, l.max_peers);

    gn_rcmgr_conn *c = NULL;
    gn_rcmgr_stream *s = NULL;
    CHECK_EQ(gn_rcmgr_open_conn(rm, (gn_rcmgr_dir)2, false, NULL, 0, &c), GN_EINVAL);
    CHECK_EQ(gn_rcmgr_open_conn(rm, GN_RCMGR_INBOUND, false, IP_A, 5, &c), GN_EINVAL);
    CHECK_EQ(gn_rcmgr_open_conn(rm, GN_RCMGR_INBOUND, false, NULL, 4, &c), GN_EINVAL);
    CHECK_EQ(gn_rcmgr_open_stream(rm, NULL, NULL, GN_RCMGR_INBOUND, &s), GN_EINVAL);
    CHECK(c == NULL && s == NULL);
    CHECK_EQ(gn_rcmgr_last_refusal(rm, &(gn_rcmgr_refusal){0}), GN_ENOTFOUND);
    CHECK_STR(gn_rcmgr_last_refusal_scope(rm), "");
    CHECK_STR(gn_rcmgr_scope_kind_name(GN_RCMGR_SCOPE_SUBNET), "subnet");
    CHECK_STR(gn_rcmgr_scope_kind_name((gn_rcmgr_scope_kind)42), "unknown");
    CHECK_STR(gn_rcmgr_res_name(GN_RCMGR_RES_CONNS_UPGRADING), "conns_upgrading");
    CHECK_STR(gn_rcmgr_res_name((gn_rcmgr_res)42), "unknown");
    CHECK_STR(gn_err_name(GN_ERESOURCE), "GN_ERESOURCE");
    CHECK(!gn_err_is_fatal(GN_ERESOURCE));
    gn_rcmgr_free(rm);
    gn_rcmgr_free(NULL);
}

GN_TEST(conn_chain_and_move_to_peer)
{
    gn_rcmgr *rm = NULL;
    CHECK_OK(gn_rcmgr_new(NULL, &rm));
    gn_rcmgr_conn *c = NULL;
    CHECK_OK(gn_rcmgr_open_conn(rm, GN_RCMGR_INBOUND, true, IP_A, 4, &c));
    gn_rcmgr_usage u = SYS(rm);
    CHECK_EQ(u.conns_in, 1);
    CHECK_EQ(u.conns_out, 0);
    CHECK_EQ(u.conns_upgrading, 1);
    CHECK_EQ(u.fd, 1);
    u = TRANS(rm);
    CHECK_EQ(u.conns_in, 1);
    CHECK_EQ(u.fd, 1);
    u = stat_of(rm, GN_RCMGR_SCOPE_IP, IP_A, 4);
    CHECK_EQ(u.conns_in, 1);
    CHECK_EQ(u.conns_upgrading, 1);
    CHECK_EQ(u.spans, 1);
    u = stat_of(rm, GN_RCMGR_SCOPE_SUBNET, IP_B, 4); /* any address of the /24 */
    CHECK_EQ(u.conns_in, 1);
    CHECK_EQ(gn_rcmgr_stat(rm, GN_RCMGR_SCOPE_IP, IP_B, 4, &u), GN_ENOTFOUND);
    CHECK_EQ(gn_rcmgr_stat(rm, GN_RCMGR_SCOPE_SUBNET, IP_C, 4, &u), GN_ENOTFOUND);

    /* memory while upgrading: charged to conn, transient, ip, subnet, system */
    CHECK_OK(gn_rcmgr_reserve_memory(gn_rcmgr_conn_span(c), 1000, GN_RCMGR_PRIO_ALWAYS));
    CHECK_EQ(TRANS(rm).memory, 1000);
    CHECK_EQ(stat_of(rm, GN_RCMGR_SCOPE_IP, IP_A, 4).memory, 1000);
    CHECK_EQ(stat_of(rm, GN_RCMGR_SCOPE_SUBNET, IP_A, 4).memory, 1000);
    CHECK_EQ(SYS(rm).memory, 1000);
    check_consistent(rm, true);

    gn_peer_id p = peer_n(1);
    CHECK_OK(gn_rcmgr_conn_set_peer(c, &p));
    CHECK_EQ(gn_rcmgr_conn_set_peer(c, &p), GN_ESTATE);
    u = TRANS(rm);
    CHECK_EQ(u.conns_in + u.fd + u.memory + u.conns_upgrading, 0);
    u = stat_of(rm, GN_RCMGR_SCOPE_PEER, p.bytes, p.len);
    CHECK_EQ(u.conns_in, 1);
    CHECK_EQ(u.fd, 1);
    CHECK_EQ(u.memory, 1000);
    CHECK_EQ(u.conns_upgrading, 0);
    u = SYS(rm);
    CHECK_EQ(u.conns_in, 1);
    CHECK_EQ(u.conns_upgrading, 0);
    CHECK_EQ(stat_of(rm, GN_RCMGR_SCOPE_IP, IP_A, 4).conns_upgrading, 0);
    CHECK_EQ(stat_of(rm, GN_RCMGR_SCOPE_IP, IP_A, 4).conns_in, 1);
    gn_rcmgr_usage own;
    gn_rcmgr_span_stat(gn_rcmgr_conn_span(c), &own);
    CHECK_EQ(own.conns_in, 1);
    CHECK_EQ(own.memory, 1000);
    CHECK_EQ(own.conns_upgrading, 0);
    check_consistent(rm, true);

    gn_rcmgr_conn_done(c);
    check_empty(rm);
    gn_rcmgr_free(rm);
}

GN_TEST(stream_chain_and_protocol)
{
    gn_rcmgr *rm = NULL;
    CHECK_OK(gn_rcmgr_new(NULL, &rm));
    gn_rcmgr_conn *c = NULL;
    gn_rcmgr_stream *s = NULL, *s2 = NULL;
    gn_peer_id p = peer_n(1), q = peer_n(2);
    CHECK_OK(gn_rcmgr_open_conn(rm, GN_RCMGR_OUTBOUND, false, IP_A, 4, &c));
    CHECK_EQ(gn_rcmgr_open_stream(rm, c, NULL, GN_RCMGR_OUTBOUND, &s), GN_ESTATE);
    CHECK_OK(gn_rcmgr_conn_set_peer(c, &p));
    CHECK_EQ(gn_rcmgr_open_stream(rm, c, &q, GN_RCMGR_OUTBOUND, &s), GN_EINVAL);
    CHECK(s == NULL);
    CHECK_OK(gn_rcmgr_open_stream(rm, c, &p, GN_RCMGR_OUTBOUND, &s));
    CHECK_OK(gn_rcmgr_open_stream(rm, c, NULL, GN_RCMGR_INBOUND, &s2));

    CHECK_EQ(SYS(rm).streams_out, 1);
    CHECK_EQ(SYS(rm).streams_in, 1);
    CHECK_EQ(TRANS(rm).streams_out, 1); /* negotiating */
    CHECK_EQ(stat_of(rm, GN_RCMGR_SCOPE_PEER, p.bytes, p.len).streams_out, 1);
    CHECK_EQ(stat_of(rm, GN_RCMGR_SCOPE_PEER, p.bytes, p.len).spans, 3);
    CHECK_EQ(stat_of(rm, GN_RCMGR_SCOPE_IP, IP_A, 4).streams_out, 0); /* not in a stream's chain */

    CHECK_EQ(gn_rcmgr_stream_set_protocol(s, "/x", 0), GN_EINVAL);
    CHECK_OK(gn_rcmgr_stream_set_protocol(s, "/echo/1.0.0", 11));
    CHECK_EQ(gn_rcmgr_stream_set_protocol(s, "/echo/1.0.0", 11), GN_ESTATE);
    CHECK_EQ(TRANS(rm).streams_out, 0);
    CHECK_EQ(TRANS(rm).streams_in, 1);
    CHECK_EQ(stat_of(rm, GN_RCMGR_SCOPE_PROTOCOL, "/echo/1.0.0", 11).streams_out, 1);

    /* stream memory: stream, conn, peer, protocol, system; not transient, ip or subnet */
    CHECK_OK(gn_rcmgr_reserve_memory(gn_rcmgr_stream_span(s), 4096, GN_RCMGR_PRIO_LOW));
    CHECK_EQ(stat_of(rm, GN_RCMGR_SCOPE_PROTOCOL, "/echo/1.0.0", 11).memory, 4096);
    CHECK_EQ(stat_of(rm, GN_RCMGR_SCOPE_PEER, p.bytes, p.len).memory, 4096);
    CHECK_EQ(SYS(rm).memory, 4096);
    CHECK_EQ(TRANS(rm).memory, 0);
    CHECK_EQ(stat_of(rm, GN_RCMGR_SCOPE_IP, IP_A, 4).memory, 0);
    check_consistent(rm, true);

    gn_rcmgr_usage own;
    gn_rcmgr_span_stat(gn_rcmgr_stream_span(s), &own);
    CHECK_EQ(own.memory, 4096);
    CHECK_EQ(own.streams_out, 1);

    /* a connection may close before its streams; they keep their reservations */
    gn_rcmgr_conn_done(c);
    CHECK_EQ(SYS(rm).conns_out, 0);
    CHECK_EQ(SYS(rm).streams_out, 1);
    CHECK_EQ(stat_of(rm, GN_RCMGR_SCOPE_PEER, p.bytes, p.len).spans, 2);
    check_consistent(rm, true);
    gn_rcmgr_stream_done(s);
    CHECK_EQ(gn_rcmgr_stat(rm, GN_RCMGR_SCOPE_PROTOCOL, "/echo/1.0.0", 11, &own), GN_ENOTFOUND);
    check_consistent(rm, true);
    gn_rcmgr_stream_done(s2);
    check_empty(rm);

    /* a stream without a connection span needs a peer */
    CHECK_OK(gn_rcmgr_open_stream(rm, NULL, &q, GN_RCMGR_INBOUND, &s));
    CHECK_EQ(stat_of(rm, GN_RCMGR_SCOPE_PEER, q.bytes, q.len).streams_in, 1);
    gn_rcmgr_stream_done(s);
    check_empty(rm);
    gn_rcmgr_free(rm);
}

/*
 * The last protocol scope whose streams all ended is kept out of its table
 * for reuse (the muxers' fast path): it exists for nobody meanwhile, and
 * comes back as a new scope would (fresh counters, the override that
 * applies now, the table cap).
 */
GN_TEST(reused_scope_behaves_as_new)
{
    gn_rcmgr_limits l;
    gn_rcmgr_limits_default(&l);
    l.max_protocols = 1;
    gn_rcmgr *rm = NULL;
    CHECK_OK(gn_rcmgr_new(&l, &rm));
    gn_rcmgr_conn *c = NULL;
    gn_peer_id p = peer_n(1);
    CHECK_OK(gn_rcmgr_open_conn(rm, GN_RCMGR_INBOUND, false, NULL, 0, &c));
    CHECK_OK(gn_rcmgr_conn_set_peer(c, &p));
    gn_rcmgr_stream *s = NULL, *s2 = NULL;
    gn_rcmgr_usage u;

    /* one stream of /a (one allowed), a second refused in its scope, both ended */
    gn_rcmgr_limit one = l.protocol;
    one.streams_in = 1;
    CHECK_OK(gn_rcmgr_set_scope_limit(rm, GN_RCMGR_SCOPE_PROTOCOL, "/a", 2, &one));
    CHECK_OK(gn_rcmgr_open_stream(rm, c, NULL, GN_RCMGR_INBOUND, &s));
    CHECK_OK(gn_rcmgr_stream_set_protocol(s, "/a", 2));
    CHECK_OK(gn_rcmgr_open_stream(rm, c, NULL, GN_RCMGR_INBOUND, &s2));
    CHECK_EQ(gn_rcmgr_stream_set_protocol(s2, "/a", 2), GN_ERESOURCE);
    CHECK_EQ(stat_of(rm, GN_RCMGR_SCOPE_PROTOCOL, "/a", 2).refused, 1);
    gn_rcmgr_stream_done(s2);
    gn_rcmgr_stream_done(s);
    CHECK_OK(gn_rcmgr_set_scope_limit(rm, GN_RCMGR_SCOPE_PROTOCOL, "/a", 2, NULL));
    CHECK_EQ(gn_rcmgr_stat(rm, GN_RCMGR_SCOPE_PROTOCOL, "/a", 2, &u), GN_ENOTFOUND);
    CHECK_EQ(gni_rcmgr_table_len(rm, GN_RCMGR_SCOPE_PROTOCOL), 0);
    check_consistent(rm, true);

    /* an override set meanwhile applies when /a comes back */
    gn_rcmgr_limit none = l.protocol;
    none.streams_in = 0;
    CHECK_OK(gn_rcmgr_set_scope_limit(rm, GN_RCMGR_SCOPE_PROTOCOL, "/a", 2, &none));
    CHECK_OK(gn_rcmgr_open_stream(rm, c, NULL, GN_RCMGR_INBOUND, &s));
    CHECK_EQ(gn_rcmgr_stream_set_protocol(s, "/a", 2), GN_ERESOURCE);
    CHECK_EQ(gn_rcmgr_stat(rm, GN_RCMGR_SCOPE_PROTOCOL, "/a", 2, &u), GN_ENOTFOUND);
    CHECK_OK(gn_rcmgr_set_scope_limit(rm, GN_RCMGR_SCOPE_PROTOCOL, "/a", 2, NULL));
    CHECK_OK(gn_rcmgr_stream_set_protocol(s, "/a", 2));
    u = stat_of(rm, GN_RCMGR_SCOPE_PROTOCOL, "/a", 2);
    CHECK_EQ(u.streams_in, 1);
    CHECK_EQ(u.refused, 0); /* a new scope: the refusal before is not its own */

    /* the table cap holds for a scope coming back: /b takes the only slot
     * while /a is parked, so /a is refused until /b is gone */
    gn_rcmgr_stream_done(s);
    CHECK_OK(gn_rcmgr_open_stream(rm, c, NULL, GN_RCMGR_INBOUND, &s));
    CHECK_OK(gn_rcmgr_stream_set_protocol(s, "/b", 2));
    CHECK_OK(gn_rcmgr_open_stream(rm, c, NULL, GN_RCMGR_INBOUND, &s2));
    CHECK_EQ(gn_rcmgr_stream_set_protocol(s2, "/a", 2), GN_ERESOURCE);
    gn_rcmgr_refusal r;
    CHECK_OK(gn_rcmgr_last_refusal(rm, &r));
    CHECK_EQ(r.res, GN_RCMGR_RES_TABLE);
    gn_rcmgr_stream_done(s);
    CHECK_OK(gn_rcmgr_stream_set_protocol(s2, "/a", 2));
    CHECK_EQ(gni_rcmgr_table_len(rm, GN_RCMGR_SCOPE_PROTOCOL), 1);
    check_consistent(rm, true);
    gn_rcmgr_stream_done(s2);
    gn_rcmgr_conn_done(c);
    check_empty(rm);
    gn_rcmgr_free(rm); /* frees the parked scope too (ASan: no leak) */
}

GN_TEST(span_scopes_have_limits)
{
    gn_rcmgr_limits l;
    gn_rcmgr_limits_default(&l);
    l.conn.streams_in = 3;
    gn_rcmgr *rm = NULL;
    CHECK_OK(gn_rcmgr_new(&l, &rm));
    gn_rcmgr_conn *c = NULL;
    gn_peer_id p = peer_n(5);
    CHECK_OK(gn_rcmgr_open_conn(rm, GN_RCMGR_INBOUND, true, IP_A, 4, &c));
    CHECK_OK(gn_rcmgr_conn_set_peer(c, &p));
    gn_rcmgr_stream *s[5] = {0};
    for (int i = 0; i < 3; i++) {
        CHECK_OK(gn_rcmgr_open_stream(rm, c, NULL, GN_RCMGR_INBOUND, &s[i]));
    }
    CHECK_EQ(gn_rcmgr_open_stream(rm, c, NULL, GN_RCMGR_INBOUND, &s[3]), GN_ERESOURCE);
    gn_rcmgr_refusal r;
    CHECK_OK(gn_rcmgr_last_refusal(rm, &r));
    CHECK_EQ(r.scope, GN_RCMGR_SCOPE_CONN);
    CHECK_EQ(r.res, GN_RCMGR_RES_STREAMS_IN);
    CHECK_STR(r.name, "conn:1");
    /* outbound is not capped per connection by default */
    CHECK_OK(gn_rcmgr_open_stream(rm, c, NULL, GN_RCMGR_OUTBOUND, &s[3]));
    /* one stream's memory: 16 MiB */
    CHECK_EQ(gn_rcmgr_reserve_memory(gn_rcmgr_stream_span(s[0]), l.stream.memory + 1,
                                     GN_RCMGR_PRIO_ALWAYS),
             GN_ERESOURCE);
    CHECK_OK(gn_rcmgr_last_refusal(rm, &r));
    CHECK_EQ(r.scope, GN_RCMGR_SCOPE_STREAM);
    CHECK_STR(r.name, "stream:2");
    /* a connection with its streams: 32 MiB */
    for (int i = 0; i < 2; i++) {
        gn_rcmgr_span *sp = gn_rcmgr_stream_span(s[i]);
        CHECK_OK(gn_rcmgr_reserve_memory(sp, l.stream.memory, GN_RCMGR_PRIO_ALWAYS));
    }
    CHECK_EQ(gn_rcmgr_reserve_memory(gn_rcmgr_stream_span(s[2]), 1, GN_RCMGR_PRIO_ALWAYS),
             GN_ERESOURCE);
    CHECK_OK(gn_rcmgr_last_refusal(rm, &r));
    CHECK_EQ(r.scope, GN_RCMGR_SCOPE_CONN);
    CHECK_EQ(r.used, l.conn.memory);
    check_consistent(rm, true);
    for (int i = 0; i < 4; i++) {
        gn_rcmgr_stream_done(s[i]);
    }
    gn_rcmgr_conn_done(c);
    check_empty(rm);
    gn_rcmgr_free(rm);
}

/*
 * A connection's stream span is checked against every scope of its chain,
 * by the per-direction and the total stream limits (the muxers' fast path
 * in gn_rcmgr_open_stream()): refused in each scope in turn, with the
 * refusal naming it and nothing counted.
 */
GN_TEST(conn_stream_limits_each_scope)
{
    static const gn_rcmgr_scope_kind kinds[] = {GN_RCMGR_SCOPE_STREAM, GN_RCMGR_SCOPE_CONN,
                                                GN_RCMGR_SCOPE_PEER, GN_RCMGR_SCOPE_TRANSIENT,
                                                GN_RCMGR_SCOPE_SYSTEM};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        for (int total = 0; total < 2; total++) {
            gn_rcmgr_limits l;
            gn_rcmgr_limits_default(&l);
            gn_rcmgr_limit *lim = kinds[i] == GN_RCMGR_SCOPE_STREAM      ? &l.stream
                                  : kinds[i] == GN_RCMGR_SCOPE_CONN      ? &l.conn
                                  : kinds[i] == GN_RCMGR_SCOPE_PEER      ? &l.peer
                                  : kinds[i] == GN_RCMGR_SCOPE_TRANSIENT ? &l.transient
                                                                         : &l.system;
            /* a stream's own scope never holds more than its one stream */
            uint32_t cap = kinds[i] == GN_RCMGR_SCOPE_STREAM ? 0 : 1;
            if (total) {
                lim->streams = cap;
            } else {
                lim->streams_in = cap;
            }
            gn_rcmgr *rm = NULL;
            CHECK_OK(gn_rcmgr_new(&l, &rm));
            gn_rcmgr_conn *c = NULL;
            gn_peer_id p = peer_n(7);
            CHECK_OK(gn_rcmgr_open_conn(rm, GN_RCMGR_INBOUND, false, NULL, 0, &c));
            CHECK_OK(gn_rcmgr_conn_set_peer(c, &p));
            gn_rcmgr_stream *s = NULL, *s2 = NULL;
            if (cap == 1) {
                CHECK_OK(gn_rcmgr_open_stream(rm, c, NULL, GN_RCMGR_INBOUND, &s));
            }
            gn_rcmgr_usage before = SYS(rm);
            uint32_t refs = stat_of(rm, GN_RCMGR_SCOPE_PEER, p.bytes, p.len).spans;
            CHECK_EQ(gn_rcmgr_open_stream(rm, c, NULL, GN_RCMGR_INBOUND, &s2), GN_ERESOURCE);
            CHECK(s2 == NULL);
            gn_rcmgr_refusal r;
            CHECK_OK(gn_rcmgr_last_refusal(rm, &r));
            CHECK_EQ(r.scope, kinds[i]);
            CHECK_EQ(r.res, total ? GN_RCMGR_RES_STREAMS : GN_RCMGR_RES_STREAMS_IN);
            CHECK_EQ(r.limit, cap);
            gn_rcmgr_usage after = SYS(rm);
            CHECK_EQ(after.streams_in, before.streams_in);
            CHECK_EQ(after.streams_out, before.streams_out);
            CHECK_EQ(stat_of(rm, GN_RCMGR_SCOPE_PEER, p.bytes, p.len).spans, refs);
            /* the other direction is only bound by a total limit */
            if (total) {
                CHECK_EQ(gn_rcmgr_open_stream(rm, c, NULL, GN_RCMGR_OUTBOUND, &s2),
                         GN_ERESOURCE);
            } else if (cap == 1) {
                CHECK_OK(gn_rcmgr_open_stream(rm, c, NULL, GN_RCMGR_OUTBOUND, &s2));
                CHECK_EQ(SYS(rm).streams_out, 1);
            }
            check_consistent(rm, true);
            gn_rcmgr_stream_done(s2);
            gn_rcmgr_stream_done(s);
            gn_rcmgr_conn_done(c);
            check_empty(rm);
            gn_rcmgr_free(rm);
        }
    }
}

/* The move to a protocol checks its total stream limit as well as its direction's. */
GN_TEST(protocol_total_stream_limit)
{
    gn_rcmgr_limits l;
    gn_rcmgr_limits_default(&l);
    l.protocol.streams = 1;
    gn_rcmgr *rm = NULL;
    CHECK_OK(gn_rcmgr_new(&l, &rm));
    gn_rcmgr_conn *c = NULL;
    gn_peer_id p = peer_n(8);
    CHECK_OK(gn_rcmgr_open_conn(rm, GN_RCMGR_OUTBOUND, false, NULL, 0, &c));
    CHECK_OK(gn_rcmgr_conn_set_peer(c, &p));
    gn_rcmgr_stream *s1 = NULL, *s2 = NULL;
    CHECK_OK(gn_rcmgr_open_stream(rm, c, NULL, GN_RCMGR_INBOUND, &s1));
    CHECK_OK(gn_rcmgr_open_stream(rm, c, NULL, GN_RCMGR_OUTBOUND, &s2));
    CHECK_OK(gn_rcmgr_stream_set_protocol(s1, "/p", 2));
    CHECK_EQ(gn_rcmgr_stream_set_protocol(s2, "/p", 2), GN_ERESOURCE);
    gn_rcmgr_refusal r;
    CHECK_OK(gn_rcmgr_last_refusal(rm, &r));
    CHECK_EQ(r.scope, GN_RCMGR_SCOPE_PROTOCOL);
    CHECK_EQ(r.res, GN_RCMGR_RES_STREAMS);
    CHECK_STR(r.name, "protocol:/p");
    gn_rcmgr_usage u = stat_of(rm, GN_RCMGR_SCOPE_PROTOCOL, "/p", 2);
    CHECK_EQ(u.streams_in, 1);
    CHECK_EQ(u.streams_out, 0);
    CHECK_EQ(TRANS(rm).streams_out, 1); /* s2 stays transient */
    CHECK_EQ(TRANS(rm).streams_in, 0);
    check_consistent(rm, true);
    gn_rcmgr_stream_done(s1);
    /* /p is parked now; it comes back for s2 with the same limits */
    CHECK_OK(gn_rcmgr_stream_set_protocol(s2, "/p", 2));
    CHECK_EQ(stat_of(rm, GN_RCMGR_SCOPE_PROTOCOL, "/p", 2).streams_out, 1);
    CHECK_EQ(TRANS(rm).streams_out, 0);
    gn_rcmgr_stream_done(s2);
    gn_rcmgr_conn_done(c);
    check_empty(rm);
    gn_rcmgr_free(rm);
}

GN_TEST(all_or_nothing)
{
    gn_rcmgr_limits l;
    gn_rcmgr_limits_default(&l);
    l.peer.memory = 10000;
    gn_rcmgr *rm = NULL;
    CHECK_OK(gn_rcmgr_new(&l, &rm));
    gn_rcmgr_conn *c = NULL;
    gn_rcmgr_stream *s = NULL;
    gn_peer_id p = peer_n(7);
    CHECK_OK(gn_rcmgr_open_conn(rm, GN_RCMGR_INBOUND, true, IP_A, 4, &c));
    CHECK_OK(gn_rcmgr_conn_set_peer(c, &p));
    CHECK_OK(gn_rcmgr_open_stream(rm, c, NULL, GN_RCMGR_INBOUND, &s));
    CHECK_OK(gn_rcmgr_reserve_memory(gn_rcmgr_stream_span(s), 6000, GN_RCMGR_PRIO_ALWAYS));

    /* the stream, conn, transient and system scopes would admit 5000 more; the peer refuses */
    gn_rcmgr_usage before_sys = SYS(rm), before_tr = TRANS(rm);
    CHECK_EQ(gn_rcmgr_reserve_memory(gn_rcmgr_stream_span(s), 5000, GN_RCMGR_PRIO_ALWAYS),
             GN_ERESOURCE);
    gn_rcmgr_usage after_sys = SYS(rm), after_tr = TRANS(rm);
    CHECK_EQ(after_sys.memory, before_sys.memory);
    CHECK_EQ(after_tr.memory, before_tr.memory);
    CHECK_EQ(stat_of(rm, GN_RCMGR_SCOPE_PEER, p.bytes, p.len).memory, 6000);
    CHECK_EQ(stat_of(rm, GN_RCMGR_SCOPE_PEER, p.bytes, p.len).refused, 1);
    CHECK_EQ(after_sys.refused, 0);
    gn_rcmgr_usage own;
    gn_rcmgr_span_stat(gn_rcmgr_stream_span(s), &own);
    CHECK_EQ(own.memory, 6000);
    gn_rcmgr_refusal r;
    CHECK_OK(gn_rcmgr_last_refusal(rm, &r));
    CHECK_EQ(r.scope, GN_RCMGR_SCOPE_PEER);
    CHECK_EQ(r.res, GN_RCMGR_RES_MEMORY);
    CHECK_EQ(r.used, 6000);
    CHECK_EQ(r.asked, 5000);
    CHECK_EQ(r.limit, 10000);
    CHECK(strncmp(r.name, "peer:", 5) == 0 && strlen(r.name) > 10);
    CHECK_STR(gn_rcmgr_last_refusal_scope(rm), r.name);
    CHECK_EQ(gn_rcmgr_refusal_count(rm, GN_RCMGR_SCOPE_PEER), 1);
    CHECK_EQ(gn_rcmgr_refusal_count(rm, GN_RCMGR_SCOPE_SYSTEM), 0);
    check_consistent(rm, true);

    /* exactly the rest fits */
    CHECK_OK(gn_rcmgr_reserve_memory(gn_rcmgr_stream_span(s), 4000, GN_RCMGR_PRIO_ALWAYS));
    CHECK_EQ(gn_rcmgr_reserve_memory(gn_rcmgr_conn_span(c), 1, GN_RCMGR_PRIO_ALWAYS), GN_ERESOURCE);
    CHECK_OK(gn_rcmgr_reserve_memory(gn_rcmgr_conn_span(c), 0, GN_RCMGR_PRIO_ALWAYS));

    /* release restores every scope of the chain */
    CHECK_EQ(gn_rcmgr_release_memory(gn_rcmgr_stream_span(s), 10001), GN_EINVAL);
    CHECK_OK(gn_rcmgr_release_memory(gn_rcmgr_stream_span(s), 10000));
    CHECK_EQ(SYS(rm).memory, 0);
    CHECK_EQ(stat_of(rm, GN_RCMGR_SCOPE_PEER, p.bytes, p.len).memory, 0);
    CHECK_EQ(gn_rcmgr_release_memory(gn_rcmgr_stream_span(s), 1), GN_EINVAL);
    check_consistent(rm, true);

    /* done releases everything a span still holds */
    CHECK_OK(gn_rcmgr_reserve_memory(gn_rcmgr_stream_span(s), 3000, GN_RCMGR_PRIO_ALWAYS));
    CHECK_OK(gn_rcmgr_reserve_memory(gn_rcmgr_conn_span(c), 3000, GN_RCMGR_PRIO_ALWAYS));
    gn_rcmgr_stream_done(s);
    CHECK_EQ(SYS(rm).memory, 3000);
    gn_rcmgr_conn_done(c);
    check_empty(rm);
    gn_rcmgr_free(rm);
}

GN_TEST(per_ip_and_subnet_caps)
{
    gn_rcmgr *rm = NULL;
    CHECK_OK(gn_rcmgr_new(NULL, &rm));
    gn_rcmgr_conn *c[200];
    size_t n = 0;
    /* 8 upgrading connections per IP address */
    for (int i = 0; i < 8; i++) {
        CHECK_OK(gn_rcmgr_open_conn(rm, GN_RCMGR_INBOUND, true, IP_A, 4, &c[n++]));
    }
    gn_rcmgr_conn *x = NULL;
    CHECK_EQ(gn_rcmgr_open_conn(rm, GN_RCMGR_INBOUND, true, IP_A, 4, &x), GN_ERESOURCE);
    CHECK(x == NULL);
    gn_rcmgr_refusal r;
    CHECK_OK(gn_rcmgr_last_refusal(rm, &r));
    CHECK_EQ(r.scope, GN_RCMGR_SCOPE_IP);
    CHECK_EQ(r.res, GN_RCMGR_RES_CONNS_UPGRADING);
    CHECK_STR(r.name, "ip:192.0.2.1");
    CHECK_STR(gn_rcmgr_last_refusal_scope(rm), "ip:192.0.2.1");
    /* nothing was reserved by the refused connection */
    CHECK_EQ(SYS(rm).conns_in, 8);
    CHECK_EQ(TRANS(rm).conns_in, 8);
    CHECK_EQ(stat_of(rm, GN_RCMGR_SCOPE_SUBNET, IP_A, 4).conns_in, 8);
    check_consistent(rm, true);

    /* the /24: another 8 from B fill its 16 upgrading; C's subnet is untouched */
    for (int i = 0; i < 8; i++) {
        CHECK_OK(gn_rcmgr_open_conn(rm, GN_RCMGR_INBOUND, true, IP_B, 4, &c[n++]));
    }
    uint8_t ip_b3[4] = {192, 0, 2, 3};
    CHECK_EQ(gn_rcmgr_open_conn(rm, GN_RCMGR_INBOUND, true, ip_b3, 4, &x), GN_ERESOURCE);
    CHECK_OK(gn_rcmgr_last_refusal(rm, &r));
    CHECK_EQ(r.scope, GN_RCMGR_SCOPE_SUBNET);
    CHECK_STR(r.name, "subnet:192.0.2.0/24");
    CHECK_EQ(gn_rcmgr_stat(rm, GN_RCMGR_SCOPE_IP, ip_b3, 4, &(gn_rcmgr_usage){0}), GN_ENOTFOUND);
    CHECK_OK(gn_rcmgr_open_conn(rm, GN_RCMGR_INBOUND, true, IP_C, 4, &c[n++]));
    CHECK_EQ(gni_rcmgr_table_len(rm, GN_RCMGR_SCOPE_IP), 3);
    CHECK_EQ(gni_rcmgr_table_len(rm, GN_RCMGR_SCOPE_SUBNET), 2);

    /* upgraded connections leave room for upgrading ones, up to 64 per IP in all */
    gn_peer_id p;
    for (size_t i = 0; i < 8; i++) {
        p = peer_n((unsigned)i);
        CHECK_OK(gn_rcmgr_conn_set_peer(c[i], &p));
    }
    CHECK_EQ(stat_of(rm, GN_RCMGR_SCOPE_IP, IP_A, 4).conns_upgrading, 0);
    size_t opened = 0;
    int rc = 0;
    for (unsigned i = 8; i < 200 && n < 200; i++) {
        rc = gn_rcmgr_open_conn(rm, GN_RCMGR_INBOUND, true, IP_A, 4, &c[n]);
        if (rc < 0) {
            break;
        }
        p = peer_n(i);
        CHECK_OK(gn_rcmgr_conn_set_peer(c[n++], &p));
        opened++;
    }
    CHECK_EQ(rc, GN_ERESOURCE);
    CHECK_EQ(opened, 56);
    CHECK_OK(gn_rcmgr_last_refusal(rm, &r));
    CHECK_EQ(r.scope, GN_RCMGR_SCOPE_IP);
    CHECK_EQ(r.res, GN_RCMGR_RES_CONNS);
    CHECK_EQ(stat_of(rm, GN_RCMGR_SCOPE_IP, IP_A, 4).conns_in, 64);
    check_consistent(rm, true);
    for (size_t i = 0; i < n; i++) {
        gn_rcmgr_conn_done(c[i]);
    }
    check_empty(rm);

    /* IPv6: one /64 shares the subnet limit, IPv4-mapped addresses count as IPv4 */
    uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1};
    n = 0;
    for (int i = 0; i < 16; i++) {
        v6[15] = (uint8_t)i;
        CHECK_OK(gn_rcmgr_open_conn(rm, GN_RCMGR_INBOUND, false, v6, 16, &c[n++]));
    }
    v6[15] = 99;
    CHECK_EQ(gn_rcmgr_open_conn(rm, GN_RCMGR_INBOUND, false, v6, 16, &x), GN_ERESOURCE);
    CHECK_STR(gn_rcmgr_last_refusal_scope(rm), "subnet:2001:db8:0:1:0:0:0:0/64");
    v6[7] = 2; /* the next /64 */
    CHECK_OK(gn_rcmgr_open_conn(rm, GN_RCMGR_INBOUND, false, v6, 16, &c[n++]));
    const uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1};
    CHECK_OK(gn_rcmgr_open_conn(rm, GN_RCMGR_INBOUND, false, mapped, 16, &c[n++]));
    CHECK_EQ(stat_of(rm, GN_RCMGR_SCOPE_IP, IP_A, 4).conns_in, 1);
    CHECK_EQ(stat_of(rm, GN_RCMGR_SCOPE_IP, mapped, 16).conns_in, 1);
    /* a connection without an address has no ip or subnet scope */
    CHECK_OK(gn_rcmgr_open_conn(rm, GN_RCMGR_OUTBOUND, false, NULL, 0, &c[n++]));
    CHECK_EQ(gni_rcmgr_table_len(rm, GN_RCMGR_SCOPE_IP), 18);
    check_consistent(rm, true);
    for (size_t i = 0; i < n; i++) {
        gn_rcmgr_conn_done(c[i]);
    }
    check_empty(rm);
    gn_rcmgr_free(rm);
}

GN_TEST(failed_moves_leave_nothing)
{
    gn_rcmgr_limits l;
    gn_rcmgr_limits_default(&l);
    l.peer.conns = 1;
    l.peer.memory = 5000;
    l.protocol.streams_in = 1;
    gn_rcmgr *rm = NULL;
    CHECK_OK(gn_rcmgr_new(&l, &rm));
    gn_peer_id p = peer_n(1), q = peer_n(2);

    /* a fresh peer scope that refuses is not kept */
    gn_rcmgr_conn *big = NULL;
    CHECK_OK(gn_rcmgr_open_conn(rm, GN_RCMGR_INBOUND, true, IP_A, 4, &big));
    CHECK_OK(gn_rcmgr_reserve_memory(gn_rcmgr_conn_span(big), 6000, GN_RCMGR_PRIO_ALWAYS));
    CHECK_EQ(gn_rcmgr_conn_set_peer(big, &q), GN_ERESOURCE);
    CHECK_EQ(gn_rcmgr_stat(rm, GN_RCMGR_SCOPE_PEER, q.bytes, q.len, &(gn_rcmgr_usage){0}),
             GN_ENOTFOUND);
    CHECK_EQ(gni_rcmgr_table_len(rm, GN_RCMGR_SCOPE_PEER), 0);
    CHECK_EQ(gn_rcmgr_refusal_count(rm, GN_RCMGR_SCOPE_PEER), 1);
    CHECK_EQ(TRANS(rm).memory, 6000);
    CHECK_EQ(TRANS(rm).conns_in, 1);
    CHECK_EQ(SYS(rm).conns_upgrading, 1);
    check_consistent(rm, true);
    gn_rcmgr_conn_done(big);
    check_empty(rm);

    /* an existing peer scope at its limit keeps exactly what it had */
    gn_rcmgr_conn *c1 = NULL, *c2 = NULL;
    CHECK_OK(gn_rcmgr_open_conn(rm, GN_RCMGR_INBOUND, true, IP_A, 4, &c1));
    CHECK_OK(gn_rcmgr_open_conn(rm, GN_RCMGR_INBOUND, true, IP_B, 4, &c2));
    CHECK_OK(gn_rcmgr_reserve_memory(gn_rcmgr_conn_span(c2), 100, GN_RCMGR_PRIO_ALWAYS));
    CHECK_OK(gn_rcmgr_conn_set_peer(c1, &p));
    gn_rcmgr_usage before = stat_of(rm, GN_RCMGR_SCOPE_PEER, p.bytes, p.len);
    CHECK_EQ(gn_rcmgr_conn_set_peer(c2, &p), GN_ERESOURCE);
    gn_rcmgr_refusal r;
    CHECK_OK(gn_rcmgr_last_refusal(rm, &r));
    CHECK_EQ(r.scope, GN_RCMGR_SCOPE_PEER);
    CHECK_EQ(r.res, GN_RCMGR_RES_CONNS);
    gn_rcmgr_usage after = stat_of(rm, GN_RCMGR_SCOPE_PEER, p.bytes, p.len);
    CHECK_EQ(after.conns_in, before.conns_in);
    CHECK_EQ(after.fd, before.fd);
    CHECK_EQ(after.memory, 0);
    CHECK_EQ(after.spans, 1);
    CHECK_EQ(TRANS(rm).conns_in, 1); /* c2 stays transient */
    CHECK_EQ(TRANS(rm).memory, 100);
    CHECK_EQ(stat_of(rm, GN_RCMGR_SCOPE_IP, IP_B, 4).conns_upgrading, 1);
    check_consistent(rm, true);
    gn_rcmgr_conn_done(c2);

    /* the same for a stream whose protocol scope is full */
    gn_rcmgr_stream *s1 = NULL, *s2 = NULL;
    CHECK_OK(gn_rcmgr_open_stream(rm, c1, NULL, GN_RCMGR_INBOUND, &s1));
    CHECK_OK(gn_rcmgr_open_stream(rm, c1, NULL, GN_RCMGR_INBOUND, &s2));
    CHECK_OK(gn_rcmgr_reserve_memory(gn_rcmgr_stream_span(s2), 10, GN_RCMGR_PRIO_ALWAYS));
    CHECK_OK(gn_rcmgr_stream_set_protocol(s1, "/a", 2));
    CHECK_EQ(gn_rcmgr_stream_set_protocol(s2, "/a", 2), GN_ERESOURCE);
    CHECK_OK(gn_rcmgr_last_refusal(rm, &r));
    CHECK_EQ(r.scope, GN_RCMGR_SCOPE_PROTOCOL);
    CHECK_EQ(r.res, GN_RCMGR_RES_STREAMS_IN);
    CHECK_STR(r.name, "protocol:/a");
    CHECK_EQ(stat_of(rm, GN_RCMGR_SCOPE_PROTOCOL, "/a", 2).streams_in, 1);
    CHECK_EQ(stat_of(rm, GN_RCMGR_SCOPE_PROTOCOL, "/a", 2).memory, 0);
    CHECK_EQ(TRANS(rm).streams_in, 1);
    CHECK_EQ(TRANS(rm).memory, 10);
    /* a fresh protocol scope that refuses is dropped */
    gn_rcmgr_limits tight = l;
    tight.protocol.memory = 5;
    CHECK_OK(gn_rcmgr_set_limits(rm, &tight));
    CHECK_EQ(gn_rcmgr_stream_set_protocol(s2, "/b", 2), GN_ERESOURCE);
    CHECK_STR(gn_rcmgr_last_refusal_scope(rm), "protocol:/b");
    CHECK_EQ(gni_rcmgr_table_len(rm, GN_RCMGR_SCOPE_PROTOCOL), 1);
    CHECK_EQ(TRANS(rm).streams_in, 1);
    check_consistent(rm, false);
    CHECK_OK(gn_rcmgr_set_limits(rm, &l));
    CHECK_OK(gn_rcmgr_stream_set_protocol(s2, "/b", 2));
    CHECK_EQ(TRANS(rm).streams_in + TRANS(rm).memory, 0);
    CHECK_EQ(stat_of(rm, GN_RCMGR_SCOPE_PROTOCOL, "/b", 2).memory, 10);
    gn_rcmgr_stream_done(s2);
    CHECK_EQ(gni_rcmgr_table_len(rm, GN_RCMGR_SCOPE_PROTOCOL), 1);
    check_consistent(rm, true);
    gn_rcmgr_stream_done(s1);
    gn_rcmgr_conn_done(c1);
    check_empty(rm);
    gn_rcmgr_free(rm);
}

GN_TEST(limits_at_run_time)
{
    gn_rcmgr *rm = NULL;
    CHECK_OK(gn_rcmgr_new(NULL, &rm));
    gn_rcmgr_limits l;
    gn_rcmgr_get_limits(rm, &l);
    gn_rcmgr_conn *c[4] = {0};
    for (int i = 0; i < 3; i++) {
        CHECK_OK(gn_rcmgr_open_conn(rm, GN_RCMGR_OUTBOUND, false, NULL, 0, &c[i]));
    }
    l.system.conns = 2; /* below what is in use: nothing is revoked, nothing new admitted */
    CHECK_OK(gn_rcmgr_set_limits(rm, &l));
    CHECK_EQ(SYS(rm).conns_out, 3);
    CHECK_EQ(gn_rcmgr_open_conn(rm, GN_RCMGR_OUTBOUND, false, NULL, 0, &c[3]), GN_ERESOURCE);
    CHECK_STR(gn_rcmgr_last_refusal_scope(rm), "system");
    /* other resources of the over-limit scope still work */
    CHECK_OK(gn_rcmgr_reserve_memory(gn_rcmgr_conn_span(c[0]), 10, GN_RCMGR_PRIO_ALWAYS));
    gn_rcmgr_conn_done(c[0]);
    gn_rcmgr_conn_done(c[1]);
    CHECK_OK(gn_rcmgr_open_conn(rm, GN_RCMGR_OUTBOUND, false, NULL, 0, &c[0]));
    CHECK_EQ(gn_rcmgr_open_conn(rm, GN_RCMGR_OUTBOUND, false, NULL, 0, &c[1]), GN_ERESOURCE);
    l.system.conns = GN_RCMGR_UNLIMITED;
    CHECK_OK(gn_rcmgr_set_limits(rm, &l));
    CHECK_OK(gn_rcmgr_open_conn(rm, GN_RCMGR_OUTBOUND, false, NULL, 0, &c[1]));
    check_consistent(rm, true);

    /* a new prefix applies to new connections; old subnet scopes keep theirs */
    gn_rcmgr_conn *a = NULL, *b = NULL;
    CHECK_OK(gn_rcmgr_open_conn(rm, GN_RCMGR_INBOUND, false, IP_A, 4, &a));
    l.ipv4_prefix = 16;
    CHECK_OK(gn_rcmgr_set_limits(rm, &l));
    CHECK_OK(gn_rcmgr_open_conn(rm, GN_RCMGR_INBOUND, false, IP_B, 4, &b));
    CHECK_EQ(gni_rcmgr_table_len(rm, GN_RCMGR_SCOPE_SUBNET), 2);
    CHECK_EQ(stat_of(rm, GN_RCMGR_SCOPE_SUBNET, IP_A, 4).conns_in, 1); /* 192.0.0.0/16 */
    check_consistent(rm, true);
    gn_rcmgr_conn_done(a);
    gn_rcmgr_conn_done(b);

    /* a lowered table cap keeps its scopes and takes no new key */
    l.max_ips = 1;
    CHECK_OK(gn_rcmgr_set_limits(rm, &l));
    CHECK_OK(gn_rcmgr_open_conn(rm, GN_RCMGR_INBOUND, false, IP_A, 4, &a));
    CHECK_OK(gn_rcmgr_open_conn(rm, GN_RCMGR_INBOUND, false, IP_A, 4, &b));
    gn_rcmgr_conn *z = NULL;
    CHECK_EQ(gn_rcmgr_open_conn(rm, GN_RCMGR_INBOUND, false, IP_C, 4, &z), GN_ERESOURCE);
    gn_rcmgr_refusal r;
    CHECK_OK(gn_rcmgr_last_refusal(rm, &r));
    CHECK_EQ(r.res, GN_RCMGR_RES_TABLE);
    CHECK_EQ(r.scope, GN_RCMGR_SCOPE_IP);
    CHECK_STR(r.name, "ip:198.51.100.1");
    CHECK_EQ(r.limit, 1);
    CHECK_EQ(gn_rcmgr_refusal_count(rm, GN_RCMGR_SCOPE_IP), 1);
    gn_rcmgr_conn_done(a);
    gn_rcmgr_conn_done(b);
    CHECK_OK(gn_rcmgr_open_conn(rm, GN_RCMGR_INBOUND, false, IP_C, 4, &z));
    gn_rcmgr_conn_done(z);
    gn_rcmgr_conn_done(c[0]);
    gn_rcmgr_conn_done(c[1]);
    gn_rcmgr_conn_done(c[2]);
    check_empty(rm);
    gn_rcmgr_free(rm);
}

GN_TEST(priorities)
{
    gn_rcmgr_limits l;
    gn_rcmgr_limits_default(&l);
    l.system.memory = 25600; /* 100 per 1/256 */
    gn_rcmgr *rm = NULL;
    CHECK_OK(gn_rcmgr_new(&l, &rm));
    gn_rcmgr_conn *c = NULL;
    CHECK_OK(gn_rcmgr_open_conn(rm, GN_RCMGR_OUTBOUND, false, NULL, 0, &c));
    gn_rcmgr_span *sp = gn_rcmgr_conn_span(c);
    /* low: up to 102/256 of the limit */
    CHECK_OK(gn_rcmgr_reserve_memory(sp, 10200, GN_RCMGR_PRIO_LOW));
    CHECK_EQ(gn_rcmgr_reserve_memory(sp, 1, GN_RCMGR_PRIO_LOW), GN_ERESOURCE);
    gn_rcmgr_refusal r;
    CHECK_OK(gn_rcmgr_last_refusal(rm, &r));
    CHECK_EQ(r.limit, 10200);
    CHECK_OK(gn_rcmgr_reserve_memory(sp, 5100, GN_RCMGR_PRIO_MEDIUM)); /* 153/256 */
    CHECK_EQ(gn_rcmgr_reserve_memory(sp, 1, GN_RCMGR_PRIO_MEDIUM), GN_ERESOURCE);
    CHECK_OK(gn_rcmgr_reserve_memory(sp, 5100, GN_RCMGR_PRIO_HIGH)); /* 204/256 */
    CHECK_EQ(gn_rcmgr_reserve_memory(sp, 1, GN_RCMGR_PRIO_HIGH), GN_ERESOURCE);
    CHECK_OK(gn_rcmgr_reserve_memory(sp, 5200, GN_RCMGR_PRIO_ALWAYS));
    CHECK_EQ(gn_rcmgr_reserve_memory(sp, 1, GN_RCMGR_PRIO_ALWAYS), GN_ERESOURCE);
    CHECK_EQ(SYS(rm).memory, 25600);
    CHECK_EQ(SYS(rm).refused, 4);
    /* a huge request does not wrap around */
    CHECK_OK(gn_rcmgr_release_memory(sp, 25600));
    CHECK_EQ(gn_rcmgr_reserve_memory(sp, SIZE_MAX, GN_RCMGR_PRIO_ALWAYS), GN_ERESOURCE);
    CHECK_EQ(SYS(rm).memory, 0);
    gn_rcmgr_conn_done(c);
    check_empty(rm);
    gn_rcmgr_free(rm);
}

typedef struct walk {
    int n;
    int stop_at;
    uint64_t conns, memory;
    char names[8][GN_RCMGR_NAME_MAX];
} walk;

static int walk_cb(void *ud, const gn_rcmgr_scope_info *info)
{
    walk *w = ud;
    if (w->n < 8) {
        snprintf(w->names[w->n], sizeof w->names[0], "%s", info->name);
    }
    w->n++;
    w->conns += info->stat.conns_in + info->stat.conns_out;
    w->memory += info->stat.memory;
    if (info->kind == GN_RCMGR_SCOPE_IP) {
        CHECK_EQ(info->key_len, 4);
        CHECK(info->limit->conns == 64);
    }
    return w->n == w->stop_at ? 7 : 0;
}

GN_TEST(metrics)
{
    gn_rcmgr *rm = NULL;
    CHECK_OK(gn_rcmgr_new(NULL, &rm));
    gn_rcmgr_conn *c[3];
    CHECK_OK(gn_rcmgr_open_conn(rm, GN_RCMGR_INBOUND, true, IP_A, 4, &c[0]));
    CHECK_OK(gn_rcmgr_open_conn(rm, GN_RCMGR_INBOUND, true, IP_B, 4, &c[1]));
    CHECK_OK(gn_rcmgr_open_conn(rm, GN_RCMGR_OUTBOUND, true, IP_C, 4, &c[2]));
    CHECK_OK(gn_rcmgr_reserve_memory(gn_rcmgr_conn_span(c[1]), 500, GN_RCMGR_PRIO_ALWAYS));
    gn_peer_id p = peer_n(3);
    CHECK_OK(gn_rcmgr_conn_set_peer(c[2], &p));
    gn_rcmgr_stream *s = NULL;
    CHECK_OK(gn_rcmgr_open_stream(rm, c[2], NULL, GN_RCMGR_OUTBOUND, &s));
    CHECK_OK(gn_rcmgr_stream_set_protocol(s, "/ipfs/id/1.0.0", 14));

    walk w;
    memset(&w, 0, sizeof w);
    CHECK_EQ(gn_rcmgr_foreach(rm, GN_RCMGR_SCOPE_IP, walk_cb, &w), 0);
    CHECK_EQ(w.n, 3);
    CHECK_EQ(w.conns, 3);
    CHECK_EQ(w.memory, 500);
    CHECK_STR(w.names[0], "ip:192.0.2.1"); /* creation order */
    CHECK_STR(w.names[2], "ip:198.51.100.1");
    memset(&w, 0, sizeof w);
    CHECK_EQ(gn_rcmgr_foreach(rm, GN_RCMGR_SCOPE_SUBNET, walk_cb, &w), 0);
    CHECK_EQ(w.n, 2);
    CHECK_STR(w.names[0], "subnet:192.0.2.0/24");
    memset(&w, 0, sizeof w);
    CHECK_EQ(gn_rcmgr_foreach(rm, GN_RCMGR_SCOPE_CONN, walk_cb, &w), 0);
    CHECK_EQ(w.n, 3);
    CHECK_EQ(w.conns, 3);
    CHECK(strncmp(w.names[0], "conn:", 5) == 0);
    memset(&w, 0, sizeof w);
    CHECK_EQ(gn_rcmgr_foreach(rm, GN_RCMGR_SCOPE_STREAM, walk_cb, &w), 0);
    CHECK_EQ(w.n, 1);
    memset(&w, 0, sizeof w);
    CHECK_EQ(gn_rcmgr_foreach(rm, GN_RCMGR_SCOPE_PROTOCOL, walk_cb, &w), 0);
    CHECK_STR(w.names[0], "protocol:/ipfs/id/1.0.0");
    memset(&w, 0, sizeof w);
    CHECK_EQ(gn_rcmgr_foreach(rm, GN_RCMGR_SCOPE_PEER, walk_cb, &w), 0);
    CHECK_EQ(w.n, 1);
    CHECK(strncmp(w.names[0], "peer:", 5) == 0);
    memset(&w, 0, sizeof w);
    CHECK_EQ(gn_rcmgr_foreach(rm, GN_RCMGR_SCOPE_SYSTEM, walk_cb, &w), 0);
    CHECK_EQ(w.conns, 3);
    CHECK_STR(w.names[0], "system");
    memset(&w, 0, sizeof w);
    CHECK_EQ(gn_rcmgr_foreach(rm, GN_RCMGR_SCOPE_TRANSIENT, walk_cb, &w), 0);
    CHECK_EQ(w.conns, 2);
    /* a nonzero return stops the walk */
    memset(&w, 0, sizeof w);
    w.stop_at = 2;
    CHECK_EQ(gn_rcmgr_foreach(rm, GN_RCMGR_SCOPE_CONN, walk_cb, &w), 7);
    CHECK_EQ(w.n, 2);
    CHECK_EQ(gn_rcmgr_foreach(rm, (gn_rcmgr_scope_kind)9, walk_cb, &w), GN_EINVAL);
    CHECK_EQ(gn_rcmgr_foreach(rm, GN_RCMGR_SCOPE_CONN, NULL, &w), GN_EINVAL);

    gn_rcmgr_usage u;
    CHECK_EQ(gn_rcmgr_stat(rm, GN_RCMGR_SCOPE_CONN, NULL, 0, &u), GN_EINVAL);
    CHECK_EQ(gn_rcmgr_stat(rm, GN_RCMGR_SCOPE_SYSTEM, IP_A, 4, &u), GN_EINVAL);
    CHECK_EQ(gn_rcmgr_stat(rm, GN_RCMGR_SCOPE_IP, IP_A, 3, &u), GN_EINVAL);
    CHECK_EQ(gn_rcmgr_stat(rm, GN_RCMGR_SCOPE_PEER, NULL, 0, &u), GN_EINVAL);

    gn_rcmgr_stream_done(s);
    for (int i = 0; i < 3; i++) {
        gn_rcmgr_conn_done(c[i]);
    }
    check_empty(rm);
    memset(&w, 0, sizeof w);
    CHECK_EQ(gn_rcmgr_foreach(rm, GN_RCMGR_SCOPE_IP, walk_cb, &w), 0);
    CHECK_EQ(w.n, 0);
    gn_rcmgr_free(rm);
}

GN_TEST(many_keys_table_bounded)
{
    gn_rcmgr_limits l;
    gn_rcmgr_limits_default(&l);
    l.max_peers = 16;
    l.max_ips = 32;
    l.max_subnets = 8;
    gn_rcmgr *rm = NULL;
    CHECK_OK(gn_rcmgr_new(&l, &rm));
    /* 1000 attacker-chosen peer IDs: only 16 peer scopes ever exist */
    static gn_rcmgr_stream *s[1000];
    size_t ok = 0;
    for (unsigned i = 0; i < 1000; i++) {
        gn_peer_id p = peer_n(i);
        s[i] = NULL;
        int rc = gn_rcmgr_open_stream(rm, NULL, &p, GN_RCMGR_INBOUND, &s[i]);
        if (rc == 0) {
            ok++;
        } else {
            CHECK_EQ(rc, GN_ERESOURCE);
            CHECK(s[i] == NULL);
        }
        CHECK(gni_rcmgr_table_len(rm, GN_RCMGR_SCOPE_PEER) <= 16);
    }
    CHECK_EQ(ok, 16);
    gn_rcmgr_refusal r;
    CHECK_OK(gn_rcmgr_last_refusal(rm, &r));
    CHECK_EQ(r.res, GN_RCMGR_RES_TABLE);
    CHECK_EQ(r.used, 16);
    CHECK_EQ(gn_rcmgr_refusal_count(rm, GN_RCMGR_SCOPE_PEER), 984);
    /* a known peer still gets streams */
    gn_peer_id p0 = peer_n(0);
    gn_rcmgr_stream *extra = NULL;
    CHECK_OK(gn_rcmgr_open_stream(rm, NULL, &p0, GN_RCMGR_OUTBOUND, &extra));
    gn_rcmgr_stream_done(extra);
    for (unsigned i = 0; i < 1000; i++) {
        gn_rcmgr_stream_done(s[i]);
    }
    check_empty(rm); /* every scope was collected */

    /* 1000 addresses in 250 /24s: at most 32 ip and 8 subnet scopes */
    static gn_rcmgr_conn *c[1000];
    ok = 0;
    for (unsigned i = 0; i < 1000; i++) {
        uint8_t ip[4] = {10, 0, (uint8_t)(i >> 2), (uint8_t)(i & 3)};
        c[i] = NULL;
        if (gn_rcmgr_open_conn(rm, GN_RCMGR_INBOUND, true, ip, 4, &c[i]) == 0) {
            ok++;
        }
        CHECK(gni_rcmgr_table_len(rm, GN_RCMGR_SCOPE_IP) <= 32);
        CHECK(gni_rcmgr_table_len(rm, GN_RCMGR_SCOPE_SUBNET) <= 8);
    }
    CHECK_EQ(ok, 32); /* 4 addresses in each of 8 subnets */
    check_consistent(rm, true);
    for (unsigned i = 0; i < 1000; i++) {
        gn_rcmgr_conn_done(c[i]);
    }
    check_empty(rm);
    gn_rcmgr_free(rm);
}

static int limit_cb(void *ud, const gn_rcmgr_scope_info *info)
{
    *(uint32_t *)ud = info->limit->streams_in;
    return 0;
}

GN_TEST(per_key_overrides)
{
    gn_rcmgr *rm = NULL;
    CHECK_OK(gn_rcmgr_new(NULL, &rm));
    gn_rcmgr_limits l;
    gn_rcmgr_get_limits(rm, &l);
    gn_peer_id p = peer_n(1), q = peer_n(2);

    /* a trusted peer gets more connections than the per-peer default (8) */
    gn_rcmgr_limit more = l.peer;
    more.conns = 12;
    CHECK_OK(gn_rcmgr_set_scope_limit(rm, GN_RCMGR_SCOPE_PEER, p.bytes, p.len, &more));
    gn_rcmgr_conn *c[40];
    size_t n = 0, np = 0, nq = 0;
    for (int i = 0; i < 20; i++) {
        uint8_t ip[4] = {10, 1, (uint8_t)i, 1};
        CHECK_OK(gn_rcmgr_open_conn(rm, GN_RCMGR_INBOUND, false, ip, 4, &c[n]));
        int rc = gn_rcmgr_conn_set_peer(c[n++], &p);
        np += rc == 0;
        CHECK_OK(gn_rcmgr_open_conn(rm, GN_RCMGR_INBOUND, false, ip, 4, &c[n]));
        rc = gn_rcmgr_conn_set_peer(c[n++], &q);
        nq += rc == 0;
    }
    CHECK_EQ(np, 12);
    CHECK_EQ(nq, 8);
    /* set_limits keeps overrides */
    CHECK_OK(gn_rcmgr_set_limits(rm, &l));
    gn_rcmgr_conn *x = NULL;
    CHECK_OK(gn_rcmgr_open_conn(rm, GN_RCMGR_INBOUND, false, NULL, 0, &x));
    CHECK_EQ(gn_rcmgr_conn_set_peer(x, &p), GN_ERESOURCE);
    /* raising an existing scope's override applies at once */
    more.conns = 13;
    CHECK_OK(gn_rcmgr_set_scope_limit(rm, GN_RCMGR_SCOPE_PEER, p.bytes, p.len, &more));
    CHECK_OK(gn_rcmgr_conn_set_peer(x, &p));
    /* removing it brings back the kind's limits; nothing is revoked */
    CHECK_OK(gn_rcmgr_set_scope_limit(rm, GN_RCMGR_SCOPE_PEER, p.bytes, p.len, NULL));
    CHECK_EQ(gn_rcmgr_set_scope_limit(rm, GN_RCMGR_SCOPE_PEER, p.bytes, p.len, NULL), GN_ENOTFOUND);
    CHECK_EQ(stat_of(rm, GN_RCMGR_SCOPE_PEER, p.bytes, p.len).conns_in, 13);
    check_consistent(rm, false);
    gn_rcmgr_conn_done(x);
    for (size_t i = 0; i < n; i++) {
        gn_rcmgr_conn_done(c[i]);
    }
    check_empty(rm);

    /* an expensive protocol gets less; foreach reports the override */
    gn_rcmgr_limit less = l.protocol;
    less.streams_in = 1;
    CHECK_OK(gn_rcmgr_set_scope_limit(rm, GN_RCMGR_SCOPE_PROTOCOL, "/x", 2, &less));
    gn_rcmgr_stream *s1 = NULL, *s2 = NULL;
    CHECK_OK(gn_rcmgr_open_stream(rm, NULL, &q, GN_RCMGR_INBOUND, &s1));
    CHECK_OK(gn_rcmgr_open_stream(rm, NULL, &q, GN_RCMGR_INBOUND, &s2));
    CHECK_OK(gn_rcmgr_stream_set_protocol(s1, "/x", 2));
    CHECK_EQ(gn_rcmgr_stream_set_protocol(s2, "/x", 2), GN_ERESOURCE);
    uint32_t seen = 0;
    CHECK_OK(gn_rcmgr_foreach(rm, GN_RCMGR_SCOPE_PROTOCOL, limit_cb, &seen));
    CHECK_EQ(seen, 1);
    CHECK_OK(gn_rcmgr_set_scope_limit(rm, GN_RCMGR_SCOPE_PROTOCOL, "/x", 2, NULL));
    CHECK_OK(gn_rcmgr_foreach(rm, GN_RCMGR_SCOPE_PROTOCOL, limit_cb, &seen));
    CHECK_EQ(seen, l.protocol.streams_in);
    CHECK_OK(gn_rcmgr_stream_set_protocol(s2, "/x", 2));
    gn_rcmgr_stream_done(s1);
    gn_rcmgr_stream_done(s2);
    check_empty(rm);

    /* a trusted subnet (any address in it) and IP get more upgrading connections */
    gn_rcmgr_limit ipl = l.ip, snl = l.subnet;
    ipl.conns_upgrading = 20;
    snl.conns_upgrading = 20;
    CHECK_OK(gn_rcmgr_set_scope_limit(rm, GN_RCMGR_SCOPE_IP, IP_A, 4, &ipl));
    CHECK_OK(gn_rcmgr_set_scope_limit(rm, GN_RCMGR_SCOPE_SUBNET, IP_B, 4, &snl));
    n = 0;
    while (n < 40 && gn_rcmgr_open_conn(rm, GN_RCMGR_INBOUND, false, IP_A, 4, &c[n]) == 0) {
        n++;
    }
    CHECK_EQ(n, 20);
    CHECK_EQ(gn_rcmgr_last_refusal(rm, &(gn_rcmgr_refusal){0}), 0);
    CHECK_STR(gn_rcmgr_last_refusal_scope(rm), "ip:192.0.2.1");
    for (size_t i = 0; i < n; i++) {
        gn_rcmgr_conn_done(c[i]);
    }
    check_empty(rm);

    /* bad calls */
    CHECK_EQ(gn_rcmgr_set_scope_limit(rm, GN_RCMGR_SCOPE_SYSTEM, NULL, 0, &less), GN_EINVAL);
    CHECK_EQ(gn_rcmgr_set_scope_limit(rm, GN_RCMGR_SCOPE_IP, IP_A, 5, &less), GN_EINVAL);
    CHECK_EQ(gn_rcmgr_set_scope_limit(rm, GN_RCMGR_SCOPE_PEER, NULL, 3, &less), GN_EINVAL);
    /* bounded: GN_RCMGR_MAX_OVERRIDES in all (two exist) */
    int rc = 0;
    size_t added = 0;
    for (unsigned i = 0; i < 100; i++) {
        gn_peer_id k = peer_n(100 + i);
        rc = gn_rcmgr_set_scope_limit(rm, GN_RCMGR_SCOPE_PEER, k.bytes, k.len, &more);
        if (rc < 0) {
            break;
        }
        added++;
    }
    CHECK_EQ(rc, GN_ELIMIT);
    CHECK_EQ(added, GN_RCMGR_MAX_OVERRIDES - 2);
    gn_rcmgr_free(rm); /* frees the overrides */
}

/* ---- randomized sequence */

static uint64_t lcg_state;
static uint32_t rnd(uint32_t n)
{
    lcg_state = lcg_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(lcg_state >> 33) % n;
}

typedef struct live_stream {
    gn_rcmgr_stream *s;
    size_t mem;
} live_stream;
typedef struct live_conn {
    gn_rcmgr_conn *c;
    size_t mem;
    bool has_peer;
} live_conn;

GN_TEST(random_sequence_keeps_invariants)
{
    gn_rcmgr_limits l;
    gn_rcmgr_limits_default(&l);
    /* small limits so every scope is hit often */
    l.system.memory = 1 << 20;
    l.system.conns = 40;
    l.system.conns_in = 30;
    l.system.fd = 32;
    l.system.streams = 120;
    l.transient.conns = 12;
    l.transient.streams = 20;
    l.transient.memory = 100000;
    l.peer.conns = 3;
    l.peer.streams = 16;
    l.peer.memory = 200000;
    l.protocol.streams_in = 20;
    l.protocol.memory = 300000;
    l.ip.conns = 6;
    l.ip.conns_upgrading = 3;
    l.subnet.conns = 10;
    l.subnet.conns_upgrading = 5;
    l.conn.memory = 120000;
    l.conn.streams = 8;
    l.stream.memory = 50000;
    l.max_peers = 10;
    l.max_protocols = 3;
    l.max_ips = 12;
    l.max_subnets = 5;
    gn_rcmgr *rm = NULL;
    CHECK_OK(gn_rcmgr_new(&l, &rm));
    enum { MAXC = 64, MAXS = 256 };
    static live_conn conns[MAXC];
    static live_stream streams[MAXS];
    size_t nc = 0, ns = 0;
    uint64_t mem_total = 0;
    size_t refusals = 0, okays = 0;
    static const char *const protos[] = {"/a", "/b", "/c", "/d", "/e"};
    lcg_state = 12345;
    for (int step = 0; step < 20000; step++) {
        uint32_t op = rnd(10);
        int rc = 0;
        if (op == 0 && nc < MAXC) {
            uint8_t ip[4] = {10, 0, (uint8_t)rnd(8), (uint8_t)rnd(4)};
            gn_rcmgr_conn *c = NULL;
            rc = gn_rcmgr_open_conn(rm, (gn_rcmgr_dir)rnd(2), rnd(2) == 0, ip, rnd(5) ? 4 : 0, &c);
            if (rc == 0) {
                conns[nc++] = (live_conn){c, 0, false};
            }
        } else if (op == 1 && nc > 0) {
            live_conn *lc = &conns[rnd((uint32_t)nc)];
            if (!lc->has_peer) {
                gn_peer_id p = peer_n(rnd(14));
                rc = gn_rcmgr_conn_set_peer(lc->c, &p);
                lc->has_peer = rc == 0;
            }
        } else if (op == 2 && nc > 0 && ns < MAXS) {
            live_conn *lc = &conns[rnd((uint32_t)nc)];
            gn_rcmgr_stream *s = NULL;
            if (lc->has_peer) {
                rc = gn_rcmgr_open_stream(rm, lc->c, NULL, (gn_rcmgr_dir)rnd(2), &s);
            } else {
                gn_peer_id p = peer_n(rnd(14));
                rc = gn_rcmgr_open_stream(rm, NULL, &p, (gn_rcmgr_dir)rnd(2), &s);
            }
            if (rc == 0) {
                streams[ns++] = (live_stream){s, 0};
            }
        } else if (op == 3 && ns > 0) {
            const char *id = protos[rnd(5)];
            rc = gn_rcmgr_stream_set_protocol(streams[rnd((uint32_t)ns)].s, id, strlen(id));
            if (rc == GN_ESTATE) {
                rc = 0;
            }
        } else if ((op == 4 || op == 5) && (nc > 0 || ns > 0)) {
            size_t len = rnd(30000) + 1;
            uint8_t prio = (uint8_t)rnd(256);
            if (ns > 0 && (nc == 0 || rnd(2))) {
                live_stream *ls = &streams[rnd((uint32_t)ns)];
                rc = gn_rcmgr_reserve_memory(gn_rcmgr_stream_span(ls->s), len, prio);
                if (rc == 0) {
                    ls->mem += len;
                }
            } else {
                live_conn *lc = &conns[rnd((uint32_t)nc)];
                rc = gn_rcmgr_reserve_memory(gn_rcmgr_conn_span(lc->c), len, prio);
                if (rc == 0) {
                    lc->mem += len;
                }
            }
            if (rc == 0) {
                mem_total += len;
            }
        } else if (op == 6 && ns > 0) {
            live_stream *ls = &streams[rnd((uint32_t)ns)];
            size_t len = ls->mem ? rnd((uint32_t)ls->mem) + 1 : 0;
            CHECK_OK(gn_rcmgr_release_memory(gn_rcmgr_stream_span(ls->s), len));
            ls->mem -= len;
            mem_total -= len;
        } else if (op == 7 && ns > 0) {
            size_t i = rnd((uint32_t)ns);
            mem_total -= streams[i].mem;
            gn_rcmgr_stream_done(streams[i].s);
            streams[i] = streams[--ns];
        } else if (op == 8 && nc > 0) {
            size_t i = rnd((uint32_t)nc);
            mem_total -= conns[i].mem;
            gn_rcmgr_conn_done(conns[i].c);
            conns[i] = conns[--nc];
            /* streams on it stay valid (conn_done before stream_done) */
        }
        if (rc == GN_ERESOURCE) {
            refusals++;
        } else {
            CHECK_EQ(rc, 0);
            okays++;
        }
        check_consistent(rm, true);
        gn_rcmgr_usage u = SYS(rm);
        CHECK_EQ(u.memory, mem_total);
        CHECK(u.memory <= l.system.memory);
        CHECK_EQ(u.conns_in + u.conns_out, nc);
        CHECK(u.conns_in + u.conns_out <= l.system.conns);
        CHECK_EQ(u.streams_in + u.streams_out, ns);
        CHECK(gni_rcmgr_table_len(rm, GN_RCMGR_SCOPE_PEER) <= l.max_peers);
    }
    CHECK(refusals > 1000);
    CHECK(okays > 1000);
    for (size_t i = 0; i < nc; i++) {
        gn_rcmgr_conn_done(conns[i].c);
    }
    for (size_t i = 0; i < ns; i++) {
        gn_rcmgr_stream_done(streams[i].s);
    }
    check_empty(rm);
    gn_rcmgr_free(rm);
}

/* ---- allocation failure */

/* Opens and moves spans; every step either works or fails with GN_ENOMEM and changes nothing. */
static int fa_scenario(void)
{
    gn_rcmgr *rm = NULL;
    int rc = gn_rcmgr_new(NULL, &rm);
    if (rc < 0) {
        CHECK(rm == NULL);
        return rc;
    }
    gn_rcmgr_conn *c[20] = {0};
    gn_rcmgr_stream *s[20] = {0};
    int err = 0;
    for (int i = 0; i < 20 && err == 0; i++) {
        uint8_t ip[4] = {10, 0, (uint8_t)i, 1};
        gn_peer_id p = peer_n((unsigned)i);
        if ((err = gn_rcmgr_open_conn(rm, GN_RCMGR_INBOUND, true, ip, 4, &c[i])) < 0) {
            CHECK(c[i] == NULL);
            break;
        }
        if ((err = gn_rcmgr_conn_set_peer(c[i], &p)) < 0) {
            break;
        }
        if ((err = gn_rcmgr_open_stream(rm, c[i], NULL, GN_RCMGR_INBOUND, &s[i])) < 0) {
            break;
        }
        char id[8];
        snprintf(id, sizeof id, "/p%d", i);
        if ((err = gn_rcmgr_stream_set_protocol(s[i], id, strlen(id))) < 0) {
            break;
        }
    }
    check_consistent(rm, true);
    for (int i = 0; i < 20; i++) {
        gn_rcmgr_stream_done(s[i]);
        gn_rcmgr_conn_done(c[i]);
    }
    check_empty(rm);
    gn_rcmgr_free(rm);
    return err;
}

GN_TEST(allocation_failure_every_k)
{
    size_t failures = fa_every_k(fa_scenario, 500);
    CHECK(failures > 40);
}

GN_TEST_MAIN(GN_T(defaults_and_validation), GN_T(conn_chain_and_move_to_peer),
             GN_T(stream_chain_and_protocol), GN_T(reused_scope_behaves_as_new),
             GN_T(span_scopes_have_limits), GN_T(conn_stream_limits_each_scope),
             GN_T(protocol_total_stream_limit), GN_T(all_or_nothing),
             GN_T(per_ip_and_subnet_caps), GN_T(failed_moves_leave_nothing),
             GN_T(limits_at_run_time), GN_T(priorities), GN_T(metrics), GN_T(per_key_overrides),
             GN_T(many_keys_table_bounded), GN_T(random_sequence_keeps_invariants),
             GN_T(allocation_failure_every_k))
