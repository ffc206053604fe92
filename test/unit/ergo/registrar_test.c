/*
 * registrar_test: Ergo's embedded registrar cores (protocols/ergo/registrar.c)
 * against the packets captured between live Ergo 3.1.0 nodes
 * ($GN_SHARED_DIR/vectors/ergo/registrar.hex, registrar_failover.hex;
 * ergo-wire.md section a).
 *
 * - every packet parses and rebuilds to the same bytes;
 * - the client builds the recorded Register and Resolve packets; the server
 *   core answers the recorded requests with the recorded replies (register,
 *   resolve hit and miss, the duplicate-name refusal that closes the link);
 * - the client reads the outcomes (GN_EEXIST for "resource is taken",
 *   GN_ENOTFOUND for "unknown");
 * - lease end forgets the node; table bounds; the failover rule;
 * - truncation at every offset and corruption of every byte.
 */
#include "gn_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golemnet/edf.h"
#include "golemnet/err.h"
#include "registrar.h"

typedef struct vpkt {
    uint8_t b[512];
    size_t len;
} vpkt;

static size_t load(const char *name, vpkt *out, size_t cap)
{
    char path[1024];
    const char *dirs[2] = {getenv("GN_SHARED_DIR"), getenv("GN_SOURCE_DIR")};
    FILE *f = NULL;
    for (int i = 0; i < 2 && !f; i++) {
        if (!dirs[i])
            continue;
        snprintf(path, sizeof path, i == 0 ? "%s/vectors/ergo/%s" : "%s/../shared/vectors/ergo/%s",
                 dirs[i], name);
        f = fopen(path, "r");
    }
    if (!f)
        return 0;
    static char line[8192];
    size_t n = 0;
    while (n < cap && fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        char *hex = strrchr(line, ' ');
        if (!hex)
            continue;
        hex[strcspn(hex, "\r\n")] = '\0';
        long k = gn_test_unhex(hex + 1, out[n].b, sizeof out[n].b);
        CHECK(k > 0);
        out[n++].len = (size_t)k;
    }
    fclose(f);
    return n;
}

static gn_edf_registry *make_reg(void)
{
    gn_edf_registry *r = gn_edf_registry_new();
    CHECK(r != NULL);
    CHECK_OK(gn_edf_registry_add_ergo(r));
    gn_edf_registry_freeze(r);
    return r;
}

static gn_slice S(const char *s) { return gn_slice_of(s, strlen(s)); }

static bool sl_is(gn_slice s, const char *str)
{
    return s.len == strlen(str) && (s.len == 0 || memcmp(s.base, str, s.len) == 0);
}

GN_TEST(parse_build_every_packet)
{
    vpkt v[16];
    const char *files[2] = {"registrar.hex", "registrar_failover.hex"};
    const size_t want[2] = {4, 8};
    gn_edf_registry *r = make_reg();
    gn_edf_arena *a = gn_edf_arena_new(0, 0);
    for (int fi = 0; fi < 2; fi++) {
        size_t n = load(files[fi], v, 16);
        if (n == 0) {
            gn_edf_registry_free(r);
            gn_edf_arena_free(a);
            SKIP("vectors not found");
        }
        CHECK_EQ(n, want[fi]);
        for (size_t i = 0; i < n; i++) {
            gni_reg_packet p;
            size_t c = 0;
            CHECK_OK(gni_reg_parse(r, a, v[i].b, v[i].len, false, &p, &c));
            CHECK_EQ(c, v[i].len);
            uint8_t out[512];
            gn_buf b;
            gn_buf_init(&b, out, sizeof out);
            CHECK_EQ(gni_reg_build(r, a, &p, &b), (int)v[i].len);
            CHECK_MEM(out, v[i].b, v[i].len);
            gn_buf_init(&b, out, v[i].len - 1);
            CHECK_EQ(gni_reg_build(r, a, &p, &b), GN_ENOSPC);
            /* every prefix is incomplete, never an error or a success */
            for (size_t k = 0; k < v[i].len; k++)
                CHECK_EQ(gni_reg_parse(r, a, v[i].b, k, false, &p, &c), GN_EAGAIN);
            /* every single-byte corruption: a documented error or another valid packet */
            uint8_t cp[512];
            for (size_t k = 0; k < v[i].len; k++) {
                memcpy(cp, v[i].b, v[i].len);
                cp[k] ^= 0x5a;
                int rc = gni_reg_parse(r, a, cp, v[i].len, false, &p, &c);
                CHECK(rc == 0 || rc == GN_EAGAIN || rc == GN_EBADFRAME || rc == GN_EPARSE ||
                      rc == GN_ENOTFOUND);
                if (rc == 0)
                    CHECK(c <= v[i].len);
            }
            gn_edf_arena_reset(a);
        }
    }
    gn_edf_arena_free(a);
    gn_edf_registry_free(r);
}

GN_TEST(client_builds_recorded_packets)
{
    vpkt v[8];
    if (load("registrar.hex", v, 8) != 4)
        SKIP("vectors not found");
    gn_edf_registry *r = make_reg();
    gn_edf_arena *a = gn_edf_arena_new(0, 0);
    gni_reg_route rt = gni_reg_route_ergo(11145, false);
    gni_reg_packet p = {.type = GNI_REG_REGISTER, .node = S("alpha@localhost"), .routes = &rt,
                        .nroutes = 1};
    uint8_t out[512];
    gn_buf b;
    gn_buf_init(&b, out, sizeof out);
    CHECK_EQ(gni_reg_build(r, a, &p, &b), (int)v[0].len);
    CHECK_MEM(out, v[0].b, v[0].len);
    gni_reg_packet q = {.type = GNI_REG_RESOLVE, .node = S("beta@localhost")};
    gn_buf_init(&b, out, sizeof out);
    CHECK_EQ(gni_reg_build(r, a, &q, &b), (int)v[2].len);
    CHECK_MEM(out, v[2].b, v[2].len);
    /* outcomes of the recorded replies */
    CHECK_OK(gni_reg_register_result(r, a, v[1].b, v[1].len));
    const gni_reg_route *routes;
    uint32_t n;
    CHECK_OK(gni_reg_resolve_result(r, a, v[3].b, v[3].len, &routes, &n));
    CHECK_EQ(n, 1);
    CHECK_EQ(routes[0].port, 11144);
    CHECK_EQ(routes[0].host.len, 0);
    CHECK(!routes[0].tls);
    CHECK(sl_is(routes[0].hs_version[0], "EHS") && sl_is(routes[0].hs_version[1], "R1"));
    CHECK(sl_is(routes[0].proto_version[0], "ENP") && sl_is(routes[0].proto_version[3], "MIT"));
    gn_edf_arena_free(a);
    gn_edf_registry_free(r);
}

GN_TEST(server_answers_recorded_requests)
{
    vpkt v[8], w[8];
    if (load("registrar.hex", v, 8) != 4 || load("registrar_failover.hex", w, 8) != 8)
        SKIP("vectors not found");
    gn_edf_registry *r = make_reg();
    gn_edf_arena *a = gn_edf_arena_new(0, 0);
    uint8_t out[4096];
    gn_buf b;
    bool close;
    /* run A: beta owns the registrar; its own routes are in-process */
    gni_reg_server *s;
    CHECK_OK(gni_reg_server_new(r, 0, 0, &s));
    gni_reg_route rb = gni_reg_route_ergo(11144, false);
    CHECK_OK(gni_reg_server_add(s, 0, S("beta@localhost"), &rb, 1));
    gn_buf_init(&b, out, sizeof out);
    CHECK_OK(gni_reg_server_tcp(s, 7, v[0].b, v[0].len, &b, &close));
    CHECK(!close);
    CHECK_EQ(gn_buf_len(&b), v[1].len);
    CHECK_MEM(out, v[1].b, v[1].len);
    gn_buf_init(&b, out, sizeof out);
    CHECK_EQ(gni_reg_server_udp(s, v[2].b, v[2].len, &b), (int)v[3].len);
    CHECK_MEM(out, v[3].b, v[3].len);
    CHECK_EQ(gni_reg_server_count(s), 2);
    /* the lease ends: alpha is forgotten, beta stays */
    gni_reg_server_lease_end(s, 7);
    CHECK_EQ(gni_reg_server_count(s), 1);
    const gni_reg_route *routes;
    uint32_t n;
    CHECK_EQ(gni_reg_server_find(s, S("alpha@localhost"), &routes, &n), GN_ENOTFOUND);
    CHECK_OK(gni_reg_server_find(s, S("beta@localhost"), &routes, &n));
    CHECK_EQ(routes[0].port, 11144);
    gni_reg_server_free(s);

    /* failover: alpha now owns it */
    CHECK_OK(gni_reg_server_new(r, 0, 0, &s));
    gni_reg_route ra = gni_reg_route_ergo(11145, false);
    CHECK_OK(gni_reg_server_add(s, 0, S("alpha@localhost"), &ra, 1));
    gn_buf_init(&b, out, sizeof out);
    CHECK_OK(gni_reg_server_tcp(s, 4, w[0].b, w[0].len, &b, &close)); /* gamma */
    CHECK(!close);
    CHECK_MEM(out, w[1].b, w[1].len);
    for (int i = 2; i <= 4; i += 2) { /* resolve alpha; resolve nobody */
        gn_buf_init(&b, out, sizeof out);
        CHECK_EQ(gni_reg_server_udp(s, w[i].b, w[i].len, &b), (int)w[i + 1].len);
        CHECK_MEM(out, w[i + 1].b, w[i + 1].len);
    }
    CHECK_EQ(gni_reg_resolve_result(r, a, w[5].b, w[5].len, &routes, &n), GN_ENOTFOUND);
    /* the duplicate alpha: "resource is taken", and the link is closed */
    gn_buf_init(&b, out, sizeof out);
    CHECK_EQ(gni_reg_server_tcp(s, 5, w[6].b, w[6].len, &b, &close), GN_EEXIST);
    CHECK(close);
    CHECK_EQ(gn_buf_len(&b), w[7].len);
    CHECK_MEM(out, w[7].b, w[7].len);
    CHECK_EQ(gni_reg_register_result(r, a, w[7].b, w[7].len), GN_EEXIST);
    CHECK_EQ(gni_reg_server_count(s), 2);
    gni_reg_server_lease_end(s, 5); /* the refused link's end removes nothing */
    CHECK_EQ(gni_reg_server_count(s), 2);
    /* a Resolve over TCP, a Register over UDP, half a packet: no reply */
    gn_buf_init(&b, out, sizeof out);
    CHECK_EQ(gni_reg_server_tcp(s, 9, w[2].b, w[2].len, &b, &close), GN_EPARSE);
    CHECK(close);
    CHECK_EQ(gn_buf_len(&b), 0);
    CHECK_EQ(gni_reg_server_udp(s, w[0].b, w[0].len, &b), GN_EPARSE);
    CHECK_EQ(gni_reg_server_tcp(s, 9, w[0].b, 20, &b, &close), GN_EAGAIN);
    CHECK_EQ(gn_buf_len(&b), 0);
    gni_reg_server_free(s);
    gn_edf_arena_free(a);
    gn_edf_registry_free(r);
}

GN_TEST(server_bounds)
{
    gn_edf_registry *r = make_reg();
    gn_edf_arena *a = gn_edf_arena_new(0, 0);
    gni_reg_server *s;
    CHECK_OK(gni_reg_server_new(r, 2, 2, &s));
    gni_reg_route rt[3] = {gni_reg_route_ergo(1, false), gni_reg_route_ergo(2, true),
                           gni_reg_route_ergo(3, false)};
    CHECK_OK(gni_reg_server_add(s, 1, S("a@h"), rt, 2));
    CHECK_EQ(gni_reg_server_add(s, 2, S("b@h"), rt, 3), GN_ELIMIT); /* routes */
    CHECK_EQ(gni_reg_server_add(s, 2, S("b@h"), rt, 0), GN_EINVAL);  /* no routes */
    CHECK_EQ(gni_reg_server_add(s, 2, S("a@h"), rt, 1), GN_EEXIST);
    CHECK_OK(gni_reg_server_add(s, 2, S("b@h"), rt, 1));
    CHECK_EQ(gni_reg_server_add(s, 3, S("c@h"), rt, 1), GN_ELIMIT); /* nodes */
    /* a route whose resolve answer would not fit the client's 4096-byte read */
    static char host[5000];
    memset(host, 'h', sizeof host);
    gni_reg_route big = gni_reg_route_ergo(9, false);
    big.host = gn_slice_of(host, sizeof host);
    gni_reg_server_lease_end(s, 2);
    CHECK_EQ(gni_reg_server_add(s, 3, S("c@h"), &big, 1), GN_ELIMIT);
    /* over TCP a refused registration gets "incorrect value or argument" and a close */
    uint8_t req[512], out[512];
    gn_buf b;
    gni_reg_packet p = {.type = GNI_REG_REGISTER, .node = S("d@h"), .routes_nil = true};
    gn_buf_init(&b, out, sizeof out);
    bool close;
    CHECK_EQ(gni_reg_server_tcp(s, 4, req, 0, &b, &close), GN_EAGAIN); /* empty read */
    CHECK(close);
    gn_buf rb;
    gn_buf_init(&rb, req, sizeof req);
    int len = gni_reg_build(r, a, &p, &rb);
    CHECK(len > 0);
    CHECK_EQ(gni_reg_server_tcp(s, 4, req, (size_t)len, &b, &close), GN_EINVAL);
    CHECK(close);
    CHECK_EQ(gni_reg_register_result(r, a, out, gn_buf_len(&b)), GN_EINVAL);
    CHECK_EQ(gni_reg_server_count(s), 1);
    gni_reg_server_free(s);
    gn_edf_arena_free(a);
    gn_edf_registry_free(r);
}

GN_TEST(failover_rule)
{
    gni_reg_failover f = {0};
    gn_time t = 10 * GN_S;
    CHECK_EQ(gni_reg_failover_deadline(&f), 0);
    CHECK_EQ(gni_reg_failover_next(&f, t), GNI_REG_ACT_BIND);
    CHECK_EQ(gni_reg_failover_next(&f, t), GNI_REG_ACT_NONE); /* waiting for bound() */
    gni_reg_failover_bound(&f, false, t);                      /* someone owns 4499 */
    CHECK_EQ(gni_reg_failover_next(&f, t), GNI_REG_ACT_REGISTER);
    gni_reg_failover_registered(&f, GN_ECONNREFUSED, t); /* owner vanished meanwhile */
    CHECK_EQ(gni_reg_failover_deadline(&f), t + GNI_REG_RETRY);
    CHECK_EQ(gni_reg_failover_next(&f, t + GNI_REG_RETRY - 1), GNI_REG_ACT_NONE);
    CHECK_EQ(gni_reg_failover_next(&f, t + GNI_REG_RETRY), GNI_REG_ACT_BIND);
    gni_reg_failover_bound(&f, false, t);
    CHECK_EQ(gni_reg_failover_next(&f, t), GNI_REG_ACT_REGISTER);
    gni_reg_failover_registered(&f, 0, t);
    CHECK_EQ(f.role, GNI_REG_ROLE_CLIENT);
    CHECK_EQ(gni_reg_failover_deadline(&f), GN_TIME_INFINITY);
    /* the server node dies: EOF on the lease, try to become the server at once */
    gni_reg_failover_lease_lost(&f, 20 * GN_S);
    CHECK_EQ(f.role, GNI_REG_ROLE_NONE);
    CHECK_EQ(gni_reg_failover_next(&f, 20 * GN_S), GNI_REG_ACT_BIND);
    gni_reg_failover_bound(&f, true, 20 * GN_S);
    CHECK_EQ(f.role, GNI_REG_ROLE_SERVER);
    CHECK_EQ(gni_reg_failover_next(&f, 30 * GN_S), GNI_REG_ACT_NONE);
    CHECK_EQ(f.attempts, 3);
    /* a taken name is final */
    gni_reg_failover g = {0};
    CHECK_EQ(gni_reg_failover_next(&g, 0), GNI_REG_ACT_BIND);
    gni_reg_failover_bound(&g, false, 0);
    CHECK_EQ(gni_reg_failover_next(&g, 0), GNI_REG_ACT_REGISTER);
    gni_reg_failover_registered(&g, GN_EEXIST, 0);
    CHECK_EQ(g.role, GNI_REG_ROLE_FAILED);
    CHECK_EQ(gni_reg_failover_next(&g, 100 * GN_S), GNI_REG_ACT_NONE);
}

GN_TEST_MAIN(GN_T(parse_build_every_packet), GN_T(client_builds_recorded_packets),
             GN_T(server_answers_recorded_requests), GN_T(server_bounds), GN_T(failover_rule))
