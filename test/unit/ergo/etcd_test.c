/*
 * etcd_test: the etcd registrar core (protocols/ergo/etcd.c) on known
 * answers: Ergo's key layout, the stored value (base64 of an EDF
 * []gen.Route, computed by hand from ergo-wire.md section d), the HTTP
 * requests for etcd's v3 JSON gateway, and responses recorded from etcd
 * 3.4.23 (Debian 12) fed whole, byte by byte and broken, with their bounds.
 */
#include "gn_test.h"

#include <stdlib.h>
#include <string.h>

#include "etcd.h"
#include "golemnet/edf.h"
#include "golemnet/err.h"

/* []gen.Route{{Port: 11145, EHS/R1, ENP/R1, MIT}}: 82 0021 9d 83 001d "#ergo.services/ergo/gen/Route"
 * 9d 00000001 0000 2b89 00 0003"EHS" 0002"R1" 0000 0003"MIT" 0003"ENP" 0002"R1" 0000 0003"MIT" */
static const char VALUE1[] = "ggAhnYMAHSNlcmdvLnNlcnZpY2VzL2VyZ28vZ2VuL1JvdXRlnQAAAAEAACuJAAADRUhTAA"
                             "JSMQAAAANNSVQAA0VOUAACUjEAAAADTUlU";
/* two routes: port 15000, and Host "10.0.0.7" port 15001 with TLS */
static const char VALUE2[] = "ggAhnYMAHSNlcmdvLnNlcnZpY2VzL2VyZ28vZ2VuL1JvdXRlnQAAAAIAADqYAAADRUhTAA"
                             "JSMQAAAANNSVQAA0VOUAACUjEAAAADTUlUAAgxMC4wLjAuNzqZAQADRUhTAAJSMQAAAANN"
                             "SVQAA0VOUAACUjEAAAADTUlU";

static gn_edf_registry *ergo_reg(void)
{
    gn_edf_registry *reg = gn_edf_registry_new();
    CHECK(reg != NULL);
    CHECK_OK(gn_edf_registry_add_ergo(reg));
    gn_edf_registry_freeze(reg);
    return reg;
}

static bool buf_is(const gn_buf *b, const char *s)
{
    return gn_buf_len(b) == strlen(s) && memcmp(b->pos, s, strlen(s)) == 0;
}

GN_TEST(keys_in_ergo_layout)
{
    uint8_t m[512];
    gn_buf b;
    gn_buf_init(&b, m, sizeof m);
    CHECK_EQ(gni_etcd_key_nodes(NULL, &b), 43);
    CHECK(buf_is(&b, "services/ergo/cluster/default/routes/nodes/"));
    gn_buf_reset(&b);
    CHECK_OK(gni_etcd_key_node("prod", gn_slice_of("alpha@host1", 11), &b));
    CHECK(buf_is(&b, "services/ergo/cluster/prod/routes/nodes/alpha@host1"));

    gn_slice node;
    CHECK_OK(gni_etcd_key_to_node("prod", gn_slice_of(b.pos, gn_buf_len(&b)), &node));
    CHECK(node.len == 11 && memcmp(node.base, "alpha@host1", 11) == 0);
    static const char app[] = "services/ergo/cluster/prod/routes/applications/app/alpha@host1";
    CHECK_EQ(gni_etcd_key_to_node("prod", gn_slice_of(app, strlen(app)), &node), GN_ENOTFOUND);
    static const char deep[] = "services/ergo/cluster/prod/routes/nodes/a/b";
    CHECK_EQ(gni_etcd_key_to_node("prod", gn_slice_of(deep, strlen(deep)), &node), GN_ENOTFOUND);
    CHECK_EQ(gni_etcd_key_to_node("other", gn_slice_of(b.pos, gn_buf_len(&b)), &node),
             GN_ENOTFOUND);

    gn_buf_reset(&b);
    CHECK_EQ(gni_etcd_key_nodes("a/b", &b), GN_EINVAL);
    CHECK_EQ(gni_etcd_key_node("prod", gn_slice_of("x/y", 3), &b), GN_EINVAL);
    CHECK_EQ(gni_etcd_key_node("prod", gn_slice_of("", 0), &b), GN_EINVAL);
    CHECK_EQ(gn_buf_len(&b), 0);
    gn_buf_init(&b, m, 10);
    CHECK_EQ(gni_etcd_key_node("prod", gn_slice_of("alpha@h", 7), &b), GN_ENOSPC);
    CHECK_EQ(gn_buf_len(&b), 0);

    gn_buf_init(&b, m, sizeof m);
    CHECK_EQ(gni_etcd_prefix_end(gn_slice_of("services/ergo", 13), &b), 13);
    CHECK(buf_is(&b, "services/ergp"));
    gn_buf_reset(&b);
    static const uint8_t ff[] = {'a', 0xff, 0xff};
    CHECK_EQ(gni_etcd_prefix_end(gn_slice_of(ff, 3), &b), 1);
    CHECK_EQ(m[0], 'b');
    static const uint8_t allff[] = {0xff, 0xff};
    CHECK_EQ(gni_etcd_prefix_end(gn_slice_of(allff, 2), &b), GN_EINVAL);
}

GN_TEST(value_known_answer)
{
    gn_edf_registry *reg = ergo_reg();
    gn_edf_arena *a = gn_edf_arena_new(0, 1 << 20);
    uint8_t m[1024];
    gn_buf b;
    gn_buf_init(&b, m, sizeof m);
    gni_reg_route r = gni_reg_route_ergo(11145, false);
    CHECK_EQ(gni_etcd_routes_encode(reg, a, &r, 1, &b), (int)strlen(VALUE1));
    CHECK(buf_is(&b, VALUE1));

    gni_reg_route two[2] = {gni_reg_route_ergo(15000, false), gni_reg_route_ergo(15001, true)};
    two[1].host = gn_slice_of("10.0.0.7", 8);
    gn_buf_reset(&b);
    CHECK_OK(gni_etcd_routes_encode(reg, a, two, 2, &b));
    CHECK(buf_is(&b, VALUE2));
    gn_buf_init(&b, m, 20);
    CHECK_EQ(gni_etcd_routes_encode(reg, a, two, 2, &b), GN_ENOSPC);
    CHECK_EQ(gn_buf_len(&b), 0);

    const gni_reg_route *out;
    uint32_t n;
    CHECK_OK(gni_etcd_routes_decode(reg, a, (const uint8_t *)VALUE2, strlen(VALUE2), &out, &n));
    CHECK_EQ(n, 2);
    CHECK_EQ(out[0].port, 15000);
    CHECK(!out[0].tls && out[0].host.len == 0);
    CHECK_EQ(out[1].port, 15001);
    CHECK(out[1].tls);
    CHECK(out[1].host.len == 8 && memcmp(out[1].host.base, "10.0.0.7", 8) == 0);
    CHECK(out[1].hs_version[0].len == 3 && memcmp(out[1].hs_version[0].base, "EHS", 3) == 0);
    CHECK(out[1].proto_version[3].len == 3 &&
          memcmp(out[1].proto_version[3].base, "MIT", 3) == 0);
    CHECK_OK(gni_etcd_routes_decode(reg, a, (const uint8_t *)VALUE1, strlen(VALUE1), &out, &n));
    CHECK_EQ(n, 1);
    CHECK_EQ(out[0].port, 11145);

    /* not a route value: bad base64, a string, a nil []gen.Route, trailing bytes */
    static const char *bad[] = {
        "not base64!", "jQAFaGVsbG8=" /* 8d 0005 "hello" */,
        "ggAhnYMAHSNlcmdvLnNlcnZpY2VzL2VyZ28vZ2VuL1JvdXRl/w==" /* ... ff (nil) */,
        "ggAhnYMAHSNlcmdvLnNlcnZpY2VzL2VyZ28vZ2VuL1JvdXRlnQAAAAAA" /* empty + 00 */,
        "ggAhnYMAHSNlcmdv" /* cut */,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_EQ(gni_etcd_routes_decode(reg, a, (const uint8_t *)bad[i], strlen(bad[i]), &out, &n),
                 GN_EPARSE);
    /* an empty (non-nil) slice is a value with no routes */
    static const char empty[] = "ggAhnYMAHSNlcmdvLnNlcnZpY2VzL2VyZ28vZ2VuL1JvdXRlnQAAAAA=";
    CHECK_OK(gni_etcd_routes_decode(reg, a, (const uint8_t *)empty, strlen(empty), &out, &n));
    CHECK_EQ(n, 0);
    /* bounded before decoding */
    size_t big = GNI_ETCD_VALUE_MAX * 2;
    uint8_t *huge = malloc(big);
    memset(huge, 'A', big);
    CHECK_EQ(gni_etcd_routes_decode(reg, a, huge, big, &out, &n), GN_ETOOBIG);
    free(huge);
    gn_edf_arena_free(a);
    gn_edf_registry_free(reg);
}

static void check_request(const gni_etcd_req *rq, const char *path, const char *body)
{
    uint8_t m[2048];
    gn_buf b;
    gn_buf_init(&b, m, sizeof m);
    int n = gni_etcd_build(rq, "127.0.0.1:2379", &b);
    CHECK(n > 0);
    char want[2048];
    snprintf(want, sizeof want,
             "POST %s HTTP/1.1\r\nHost: 127.0.0.1:2379\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\n\r\n%s",
             path, strlen(body), body);
    if (!buf_is(&b, want))
        printf("# got: %.*s\n", (int)gn_buf_len(&b), (const char *)b.pos);
    CHECK(buf_is(&b, want));
}

GN_TEST(requests)
{
    gni_etcd_req g = {.op = GNI_ETCD_GRANT, .ttl_s = 10};
    check_request(&g, "/v3/lease/grant", "{\"TTL\":\"10\"}");
    gni_etcd_req k = {.op = GNI_ETCD_KEEPALIVE, .lease = 4111120455181972997LL};
    check_request(&k, "/v3/lease/keepalive", "{\"ID\":\"4111120455181972997\"}");
    k.op = GNI_ETCD_REVOKE;
    check_request(&k, "/v3/lease/revoke", "{\"ID\":\"4111120455181972997\"}");
    gni_etcd_req t = {.op = GNI_ETCD_TXN_CREATE, .key = gn_slice_of("a", 1),
                      .value = gn_slice_of("xy", 2), .lease = 7};
    check_request(&t, "/v3/kv/txn",
                  "{\"compare\":[{\"key\":\"YQ==\",\"target\":\"CREATE\",\"result\":\"EQUAL\","
                  "\"create_revision\":\"0\"}],\"success\":[{\"request_put\":{\"key\":\"YQ==\","
                  "\"value\":\"eHk=\",\"lease\":\"7\"}}]}");
    t.op = GNI_ETCD_TXN_OURS;
    t.old_lease = 5;
    check_request(&t, "/v3/kv/txn",
                  "{\"compare\":[{\"key\":\"YQ==\",\"target\":\"LEASE\",\"result\":\"EQUAL\","
                  "\"lease\":\"5\"}],\"success\":[{\"request_put\":{\"key\":\"YQ==\","
                  "\"value\":\"eHk=\",\"lease\":\"7\"}}]}");
    gni_etcd_req r = {.op = GNI_ETCD_RANGE, .key = gn_slice_of("ab", 2), .prefix = true,
                      .keys_only = true};
    check_request(&r, "/v3/kv/range",
                  "{\"key\":\"YWI=\",\"range_end\":\"YWM=\",\"keys_only\":true}");
    gni_etcd_req w = {.op = GNI_ETCD_WATCH, .key = gn_slice_of("ab", 2), .prefix = true,
                      .start_revision = 12};
    check_request(&w, "/v3/watch",
                  "{\"create_request\":{\"key\":\"YWI=\",\"range_end\":\"YWM=\","
                  "\"start_revision\":\"12\"}}");
    gni_etcd_req p = {.op = GNI_ETCD_PUT, .key = gn_slice_of("a", 1), .value = gn_slice_of("x", 1)};
    check_request(&p, "/v3/kv/put", "{\"key\":\"YQ==\",\"value\":\"eA==\"}");

    uint8_t m[64];
    gn_buf b;
    gn_buf_init(&b, m, sizeof m);
    gni_etcd_req bad = {.op = GNI_ETCD_GRANT, .ttl_s = 0};
    CHECK_EQ(gni_etcd_build(&bad, "h:1", &b), GN_EINVAL);
    CHECK_EQ(gni_etcd_build(&t, "h:1", &b), GN_ENOSPC);
    CHECK_EQ(gni_etcd_build(&g, "bad host", &b), GN_EINVAL);
    gni_etcd_req nokey = {.op = GNI_ETCD_RANGE};
    CHECK_EQ(gni_etcd_build(&nokey, "h:1", &b), GN_EINVAL);
    CHECK_EQ(gn_buf_len(&b), 0);
}

/* ---- responses ------------------------------------------------------------------------ */

#define HDR "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nGrpc-Metadata-Content-Type: " \
            "application/grpc\r\nDate: Sat, 05 Dec 2026 10:20:21 GMT\r\n"
#define ETCD_HEADER "\"header\":{\"cluster_id\":\"15118495548433857066\",\"member_id\":" \
                    "\"13668033151171901709\",\"revision\":\"2\",\"raft_term\":\"2\"}"

typedef struct seen {
    int n;
    gni_etcd_result last;
    char keys[8][128];
    char values[8][256];
    bool deleted[8];
    int nkv;
    int stop_after; /* callback fails after this many (0 = never) */
} seen;

static int on_result(const gni_etcd_result *r, void *ud)
{
    seen *s = ud;
    s->n++;
    s->last = *r;
    s->last.kvs = NULL;
    for (uint32_t i = 0; i < r->nkvs && s->nkv < 8; i++, s->nkv++) {
        snprintf(s->keys[s->nkv], 128, "%.*s", (int)r->kvs[i].key.len,
                 (const char *)r->kvs[i].key.base);
        snprintf(s->values[s->nkv], 256, "%.*s", (int)r->kvs[i].value.len,
                 (const char *)r->kvs[i].value.base);
        s->deleted[s->nkv] = r->kvs[i].deleted;
    }
    return s->stop_after && s->n >= s->stop_after ? 1 : 0;
}

static char *with_len(const char *body)
{
    char *m = malloc(strlen(body) + 256);
    if (!m)
        abort();
    sprintf(m, HDR "Content-Length: %zu\r\n\r\n%s", strlen(body), body);
    return m;
}

static char *chunked(const char *const *parts, size_t n)
{
    size_t cap = 512;
    for (size_t i = 0; i < n; i++)
        cap += strlen(parts[i]) + 16;
    char *m = malloc(cap), *p = m;
    if (!m)
        abort();
    p += sprintf(p, HDR "Transfer-Encoding: chunked\r\n\r\n");
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%zx\r\n%s\r\n", strlen(parts[i]), parts[i]);
    sprintf(p, "0\r\n\r\n");
    return m;
}

/* Feeds @m whole (step 0) or in pieces of @step bytes; returns the final feed code. */
static int feed(gni_etcd_resp *r, gni_etcd_op op, const char *m, size_t step, seen *s,
                size_t *total)
{
    size_t len = strlen(m), off = 0;
    CHECK_OK(gni_etcd_resp_begin(r, op));
    int rc = 0;
    while (off < len) {
        size_t k = step && len - off > step ? step : len - off, used = 0;
        rc = gni_etcd_resp_feed(r, (const uint8_t *)m + off, k, on_result, s, &used);
        off += used;
        if (rc != 0)
            break;
        CHECK_EQ(used, k);
    }
    if (total)
        *total = off;
    return rc;
}

GN_TEST(responses_unary)
{
    static const size_t steps[] = {0, 1, 7};
    for (size_t si = 0; si < 3; si++) {
        gni_etcd_resp *r;
        CHECK_OK(gni_etcd_resp_new(NULL, &r));
        seen s;

        char *m = with_len("{" ETCD_HEADER ",\"ID\":\"4111120455181972997\",\"TTL\":\"5\"}");
        memset(&s, 0, sizeof s);
        CHECK_EQ(feed(r, GNI_ETCD_GRANT, m, steps[si], &s, NULL), 1);
        CHECK_EQ(s.n, 1);
        CHECK_EQ(s.last.err, 0);
        CHECK_EQ(s.last.lease_id, 4111120455181972997LL);
        CHECK_EQ(s.last.ttl_s, 5);
        CHECK_EQ(s.last.revision, 2);
        CHECK(gni_etcd_resp_keep_alive(r));
        free(m);

        /* txn: succeeded, then the compare failed (etcd leaves "succeeded" out) */
        m = with_len("{" ETCD_HEADER ",\"succeeded\":true,\"responses\":[{\"response_put\":"
                     "{\"header\":{\"revision\":\"2\"}}}]}");
        memset(&s, 0, sizeof s);
        CHECK_EQ(feed(r, GNI_ETCD_TXN_CREATE, m, steps[si], &s, NULL), 1);
        CHECK(s.last.succeeded);
        free(m);
        m = with_len("{" ETCD_HEADER "}");
        memset(&s, 0, sizeof s);
        CHECK_EQ(feed(r, GNI_ETCD_TXN_CREATE, m, steps[si], &s, NULL), 1);
        CHECK_EQ(s.n, 1);
        CHECK(!s.last.succeeded);
        free(m);

        /* range: one kv (the value is VALUE1, base64 again on the gateway), then none */
        m = with_len("{" ETCD_HEADER ",\"kvs\":[{\"key\":\"c2VydmljZXMvZXJnby9jbHVzdGVyL2Mvcm91"
                     "dGVzL25vZGVzL2FAbG9jYWxob3N0\",\"create_revision\":\"2\",\"mod_revision\":"
                     "\"2\",\"version\":\"1\",\"value\":\"Z2dBaG5ZTUFIU05sY21kdkxuTmxjblpwWTJWekwy"
                     "VnlaMjh2WjJWdUwxSnZkWFJsblFBQUFBRUFBQ3VKQUFBRFJVaFRBQUpTTVFBQUFBTk5TVlFBQTBW"
                     "T1VBQUNVakVBQUFBRFRVbFU=\",\"lease\":\"4111120455181972999\"}],\"count\":\"1\"}");
        memset(&s, 0, sizeof s);
        CHECK_EQ(feed(r, GNI_ETCD_RANGE, m, steps[si], &s, NULL), 1);
        CHECK_EQ(s.last.count, 1);
        CHECK_EQ(s.nkv, 1);
        CHECK_STR(s.keys[0], "services/ergo/cluster/c/routes/nodes/a@localhost");
        CHECK_STR(s.values[0], VALUE1);
        free(m);
        m = with_len("{" ETCD_HEADER "}");
        memset(&s, 0, sizeof s);
        CHECK_EQ(feed(r, GNI_ETCD_RANGE, m, steps[si], &s, NULL), 1);
        CHECK_EQ(s.last.count, 0);
        CHECK_EQ(s.nkv, 0);
        free(m);

        /* keepalive (chunked): alive, then gone (TTL left out) */
        const char *ka[] = {"{\"result\":{" ETCD_HEADER ",\"ID\":\"12\",\"TTL\":\"30\"}}\n"};
        m = chunked(ka, 1);
        memset(&s, 0, sizeof s);
        CHECK_EQ(feed(r, GNI_ETCD_KEEPALIVE, m, steps[si], &s, NULL), 1);
        CHECK_EQ(s.last.ttl_s, 30);
        CHECK_EQ(s.last.lease_id, 12);
        free(m);
        const char *gone[] = {"{\"result\":{" ETCD_HEADER ",\"ID\":\"1234\"}}\n"};
        m = chunked(gone, 1);
        memset(&s, 0, sizeof s);
        CHECK_EQ(feed(r, GNI_ETCD_KEEPALIVE, m, steps[si], &s, NULL), 1);
        CHECK_EQ(s.n, 1);
        CHECK_EQ(s.last.ttl_s, 0);
        free(m);

        /* errors: etcd's JSON error body, and a plain-text 404 */
        const char e400[] = "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
                            "Content-Length: 104\r\n\r\n{\"error\":\"illegal base64 data at input "
                            "byte 0\",\"message\":\"illegal base64 data at input byte 0\",\"code\":3}";
        memset(&s, 0, sizeof s);
        CHECK_EQ(feed(r, GNI_ETCD_RANGE, e400, steps[si], &s, NULL), 1);
        CHECK_EQ(s.last.err, GN_EPROTO);
        CHECK_EQ(s.last.status, 400);
        CHECK_EQ(s.last.code, 3);
        CHECK_EQ(s.last.message.len, 35);
        const char e404[] = "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n"
                            "Content-Length: 10\r\n\r\nNot Found\n";
        memset(&s, 0, sizeof s);
        CHECK_EQ(feed(r, GNI_ETCD_GRANT, e404, steps[si], &s, NULL), 1);
        CHECK_EQ(s.last.err, GN_EPROTO);
        CHECK_EQ(s.last.status, 404);
        CHECK_EQ(s.last.message.len, 10);
        /* a lease that is gone, revoked: 404 + gRPC code 5 */
        const char e5[] = "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
                          "Content-Length: 108\r\n\r\n{\"error\":\"etcdserver: requested lease not "
                          "found\",\"message\":\"etcdserver: requested lease not found\",\"code\":5}";
        memset(&s, 0, sizeof s);
        CHECK_EQ(feed(r, GNI_ETCD_REVOKE, e5, steps[si], &s, NULL), 1);
        CHECK_EQ(s.last.code, 5);
        gni_etcd_resp_free(r);
    }
}

GN_TEST(responses_watch_stream)
{
    const char *parts[] = {
        "{\"result\":{" ETCD_HEADER ",\"created\":true}}\n",
        "{\"result\":{" ETCD_HEADER ",\"events\":[{\"kv\":{\"key\":\"YUBo\",\"create_revision\":"
        "\"3\",\"mod_revision\":\"3\",\"version\":\"1\",\"value\":\"eA==\"}}]}}\n",
        "{\"result\":{\"header\":{\"revision\":\"4\"},\"events\":[{\"type\":\"DELETE\",\"kv\":"
        "{\"key\":\"YUBo\",\"mod_revision\":\"4\"}},{\"type\":\"PUT\",\"kv\":{\"key\":\"YkBo\","
        "\"value\":\"eQ==\",\"lease\":\"9\"}}]}}\n",
    };
    static const size_t steps[] = {0, 1, 5};
    for (size_t si = 0; si < 3; si++) {
        gni_etcd_resp *r;
        CHECK_OK(gni_etcd_resp_new(NULL, &r));
        char *m = chunked(parts, 3);
        size_t len = strlen(m) - 5; /* the stream has not ended: leave out "0\r\n\r\n" */
        seen s;
        memset(&s, 0, sizeof s);
        CHECK_OK(gni_etcd_resp_begin(r, GNI_ETCD_WATCH));
        size_t off = 0;
        while (off < len) {
            size_t k = steps[si] && len - off > steps[si] ? steps[si] : len - off, used = 0;
            CHECK_EQ(gni_etcd_resp_feed(r, (const uint8_t *)m + off, k, on_result, &s, &used), 0);
            CHECK_EQ(used, k);
            off += k;
        }
        CHECK_EQ(s.n, 3);
        CHECK_EQ(s.nkv, 3);
        CHECK_STR(s.keys[0], "a@h");
        CHECK_STR(s.values[0], "x");
        CHECK(!s.deleted[0]);
        CHECK_STR(s.keys[1], "a@h");
        CHECK(s.deleted[1]);
        CHECK_STR(s.values[1], "");
        CHECK_STR(s.keys[2], "b@h");
        CHECK(!s.deleted[2]);
        CHECK_EQ(s.last.revision, 4);
        /* the end of the stream ends the response */
        size_t used = 0;
        CHECK_EQ(gni_etcd_resp_feed(r, (const uint8_t *)m + len, 5, on_result, &s, &used), 1);
        CHECK_EQ(used, 5);
        free(m);
        gni_etcd_resp_free(r);
    }

    /* a canceled watch and an in-stream error */
    const char *cancel[] = {
        "{\"result\":{\"header\":{\"revision\":\"9\"},\"canceled\":true,\"cancel_reason\":"
        "\"etcdserver: mvcc: required revision has been compacted\",\"compact_revision\":\"5\"}}\n",
        "{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":\"unavailable\"}}\n",
    };
    gni_etcd_resp *r;
    CHECK_OK(gni_etcd_resp_new(NULL, &r));
    char *m = chunked(cancel, 2);
    seen s;
    memset(&s, 0, sizeof s);
    s.stop_after = 0;
    CHECK_OK(gni_etcd_resp_begin(r, GNI_ETCD_WATCH));
    size_t used;
    s.n = 0;
    CHECK_EQ(gni_etcd_resp_feed(r, (const uint8_t *)m, strlen(m), on_result, &s, &used), 1);
    CHECK_EQ(s.n, 2);
    CHECK_EQ(s.last.err, GN_EPROTO);
    CHECK_EQ(s.last.code, 14);
    free(m);
    gni_etcd_resp_free(r);
}

GN_TEST(responses_refused)
{
    gni_etcd_resp *r;
    seen s;
    size_t used;
    /* trailing bytes after a response are not consumed */
    CHECK_OK(gni_etcd_resp_new(NULL, &r));
    char *m = with_len("{}");
    size_t ml = strlen(m);
    char *two = malloc(ml + 8);
    memcpy(two, m, ml);
    memcpy(two + ml, "garbage", 8);
    memset(&s, 0, sizeof s);
    CHECK_OK(gni_etcd_resp_begin(r, GNI_ETCD_PUT));
    CHECK_EQ(gni_etcd_resp_feed(r, (const uint8_t *)two, ml + 7, on_result, &s, &used), 1);
    CHECK_EQ(used, ml);
    /* bytes with no request waiting */
    CHECK_EQ(gni_etcd_resp_feed(r, (const uint8_t *)"x", 1, on_result, &s, &used), GN_EPROTO);
    CHECK(strlen(gni_etcd_resp_diag(r)) > 0);
    CHECK_EQ(gni_etcd_resp_begin(r, GNI_ETCD_PUT), GN_ESTATE); /* sticky */
    gni_etcd_resp_free(r);
    free(two);
    free(m);

    struct {
        const char *body;
        gni_etcd_op op;
        int want;
    } cases[] = {
        {"{\"ID\":", GNI_ETCD_GRANT, GN_EPARSE},                       /* cut JSON */
        {"{\"ID\":\"1\"} {\"ID\":\"2\"}", GNI_ETCD_GRANT, GN_EPARSE},  /* two in a unary */
        {"[1,2]", GNI_ETCD_GRANT, GN_EPARSE},                         /* not an object */
        {"{\"ID\":\"x1\"}", GNI_ETCD_GRANT, GN_EPARSE},                /* not a number */
        {"{\"TTL\":\"5\"}", GNI_ETCD_GRANT, GN_EPARSE},                /* no lease */
        {"{\"ID\":\"99999999999999999999\"}", GNI_ETCD_GRANT, GN_EPARSE}, /* overflow */
        {"{\"kvs\":[{\"key\":\"@@@@\"}]}", GNI_ETCD_RANGE, GN_EPARSE}, /* bad base64 */
        {"{\"kvs\":[{\"value\":\"eA==\"}]}", GNI_ETCD_RANGE, GN_EPARSE}, /* no key */
        {"{\"kvs\":{}}", GNI_ETCD_RANGE, GN_EPARSE},
        {"{\"succeeded\":\"yes\"}", GNI_ETCD_TXN_CREATE, GN_EPARSE},
        {"{\"a\":1,}", GNI_ETCD_PUT, GN_EPARSE},                      /* strict JSON */
        {"", GNI_ETCD_PUT, GN_EPARSE},                                /* empty body */
        {"{\"ID\":\"1\"}", GNI_ETCD_KEEPALIVE, GN_EPARSE},             /* no "result" */
        {"{\"result\":{\"events\":[{\"type\":\"NOPE\",\"kv\":{\"key\":\"YQ==\"}}]}}",
         GNI_ETCD_WATCH, GN_EPARSE},
        {"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
         GNI_ETCD_PUT, GN_EPARSE},                                    /* nesting */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK_OK(gni_etcd_resp_new(NULL, &r));
        m = with_len(cases[i].body);
        memset(&s, 0, sizeof s);
        int rc = feed(r, cases[i].op, m, 0, &s, NULL);
        if (rc != cases[i].want)
            printf("# case %zu: %d (%s)\n", i, rc, gni_etcd_resp_diag(r));
        CHECK_EQ(rc, cases[i].want);
        free(m);
        gni_etcd_resp_free(r);
    }

    /* not HTTP */
    CHECK_OK(gni_etcd_resp_new(NULL, &r));
    memset(&s, 0, sizeof s);
    CHECK_EQ(feed(r, GNI_ETCD_PUT, "SSH-2.0-OpenSSH\r\n", 0, &s, NULL), GN_EPROTO);
    gni_etcd_resp_free(r);

    /* bounds: one message over msg_max, too many kvs */
    gni_etcd_limits lim = {.msg_max = 64, .kvs_max = 2};
    CHECK_OK(gni_etcd_resp_new(&lim, &r));
    m = with_len("{\"kvs\":[],\"padding\":\"................................................\"}");
    memset(&s, 0, sizeof s);
    CHECK_EQ(feed(r, GNI_ETCD_RANGE, m, 0, &s, NULL), GN_ETOOBIG);
    CHECK_EQ(s.n, 0);
    free(m);
    gni_etcd_resp_free(r);
    CHECK_OK(gni_etcd_resp_new(&lim, &r));
    m = with_len("{\"kvs\":[{\"key\":\"YQ==\"},{\"key\":\"YQ==\"},{\"key\":\"YQ==\"}]}");
    lim.msg_max = 0;
    gni_etcd_resp_free(r);
    lim.msg_max = 0;
    CHECK_OK(gni_etcd_resp_new(&lim, &r));
    memset(&s, 0, sizeof s);
    CHECK_EQ(feed(r, GNI_ETCD_RANGE, m, 0, &s, NULL), GN_ELIMIT);
    free(m);
    gni_etcd_resp_free(r);
    /* a stream of small messages is never bounded as a whole */
    lim.msg_max = 128;
    lim.kvs_max = 0;
    CHECK_OK(gni_etcd_resp_new(&lim, &r));
    CHECK_OK(gni_etcd_resp_begin(r, GNI_ETCD_WATCH));
    static const char head[] = HDR "Transfer-Encoding: chunked\r\n\r\n";
    CHECK_EQ(gni_etcd_resp_feed(r, (const uint8_t *)head, strlen(head), on_result, &s, &used), 0);
    memset(&s, 0, sizeof s);
    for (int i = 0; i < 200; i++) {
        static const char ev[] = "2e\r\n{\"result\":{\"events\":[{\"kv\":{\"key\":\"YQ==\"}}]}}\n\r\n";
        CHECK_EQ(gni_etcd_resp_feed(r, (const uint8_t *)ev, strlen(ev), on_result, &s, &used), 0);
    }
    CHECK_EQ(s.n, 200);
    /* the connection ends inside the stream */
    CHECK_EQ(gni_etcd_resp_eof(r, on_result, &s), GN_EEOF);
    gni_etcd_resp_free(r);

    /* a body delimited by the end of the connection completes at EOF, and ends keep-alive */
    CHECK_OK(gni_etcd_resp_new(NULL, &r));
    static const char closing[] = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{\"header\":{}}";
    memset(&s, 0, sizeof s);
    CHECK_EQ(feed(r, GNI_ETCD_PUT, closing, 0, &s, NULL), 0);
    CHECK_EQ(s.n, 1); /* the JSON message is whole: reported at once */
    CHECK_EQ(gni_etcd_resp_eof(r, on_result, &s), 1);
    CHECK_EQ(s.n, 1);
    CHECK(!gni_etcd_resp_keep_alive(r));
    gni_etcd_resp_free(r);
    /* a Content-Length body cut by the close */
    CHECK_OK(gni_etcd_resp_new(NULL, &r));
    m = with_len("{\"header\":{}}");
    m[strlen(m) - 3] = 0;
    memset(&s, 0, sizeof s);
    CHECK_EQ(feed(r, GNI_ETCD_PUT, m, 0, &s, NULL), 0);
    CHECK_EQ(gni_etcd_resp_eof(r, on_result, &s), GN_EEOF);
    CHECK_EQ(s.n, 0);
    free(m);
    gni_etcd_resp_free(r);

    /* a failing callback stops the feed */
    CHECK_OK(gni_etcd_resp_new(NULL, &r));
    m = with_len("{}");
    memset(&s, 0, sizeof s);
    s.stop_after = 1;
    CHECK_EQ(feed(r, GNI_ETCD_PUT, m, 0, &s, NULL), GN_ECALLBACK);
    free(m);
    gni_etcd_resp_free(r);
}

GN_TEST_MAIN(GN_T(keys_in_ergo_layout), GN_T(value_known_answer), GN_T(requests),
             GN_T(responses_unary), GN_T(responses_watch_stream), GN_T(responses_refused))
