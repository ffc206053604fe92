/*
 * Ergo's etcd registrar, client side: keys, values, and etcd's v3 JSON
 * gateway over HTTP/1.1 (requests built as bytes, responses parsed with
 * http-parser and json-c). Contract: etcd.h; design: docs/ergo.md
 * "etcd registrar". Sans-I/O: no sockets, no clock, no globals.
 */
#include "etcd.h"

#include <http_parser.h>
#include <json-c/json.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "golemnet/err.h"
#include "golemnet/log.h"

#define ETCD_NODES_FMT "services/ergo/cluster/%s/routes/nodes/"
#define ETCD_JSON_DEPTH 32

/* ---- keys ----------------------------------------------------------------------------- */

static int etcd_append(gn_buf *out, const void *p, size_t len)
{
    if (gn_buf_left(out) < len)
        return GN_ENOSPC;
    if (len)
        memcpy(out->last, p, len);
    out->last += len;
    return (int)len;
}

static bool etcd_name_ok(const uint8_t *s, size_t len, size_t max)
{
    if (len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '/' || s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

static const char *etcd_cluster(const char *cluster)
{
    return cluster && cluster[0] ? cluster : GNI_ETCD_CLUSTER_DEFAULT;
}

int gni_etcd_key_nodes(const char *cluster, gn_buf *out)
{
    if (!out)
        return GN_EINVAL;
    const char *c = etcd_cluster(cluster);
    size_t cl = strlen(c);
    if (!etcd_name_ok((const uint8_t *)c, cl, GNI_ETCD_CLUSTER_MAX))
        return GN_EINVAL;
    char tmp[GNI_ETCD_CLUSTER_MAX + 64];
    int n = snprintf(tmp, sizeof tmp, ETCD_NODES_FMT, c);
    if (n < 0 || (size_t)n >= sizeof tmp)
        return GN_EINVAL;
    return etcd_append(out, tmp, (size_t)n);
}

int gni_etcd_key_node(const char *cluster, gn_slice node, gn_buf *out)
{
    if (!out || !etcd_name_ok(node.base, node.len, GN_EDF_ATOM_MAX))
        return GN_EINVAL;
    uint8_t *mark = out->last;
    int n = gni_etcd_key_nodes(cluster, out);
    if (n < 0)
        return n;
    int m = etcd_append(out, node.base, node.len);
    if (m < 0) {
        out->last = mark;
        return m;
    }
    return n + m;
}

int gni_etcd_prefix_end(gn_slice prefix, gn_buf *out)
{
    if (!out || prefix.len == 0 || !prefix.base)
        return GN_EINVAL;
    size_t i = prefix.len;
    while (i > 0 && prefix.base[i - 1] == 0xff)
        i--;
    if (i == 0)
        return GN_EINVAL;
    if (gn_buf_left(out) < i)
        return GN_ENOSPC;
    memcpy(out->last, prefix.base, i);
    out->last[i - 1]++;
    out->last += i;
    return (int)i;
}

int gni_etcd_key_to_node(const char *cluster, gn_slice key, gn_slice *node)
{
    if (!node || (!key.base && key.len))
        return GN_EINVAL;
    uint8_t tmp[GNI_ETCD_CLUSTER_MAX + 64];
    gn_buf b;
    gn_buf_init(&b, tmp, sizeof tmp);
    int n = gni_etcd_key_nodes(cluster, &b);
    if (n < 0)
        return n;
    size_t pl = (size_t)n;
    if (key.len <= pl || memcmp(key.base, tmp, pl) != 0)
        return GN_ENOTFOUND;
    if (!etcd_name_ok(key.base + pl, key.len - pl, GN_EDF_ATOM_MAX))
        return GN_ENOTFOUND; /* e.g. a deeper path: not a node key */
    *node = gn_slice_of(key.base + pl, key.len - pl);
    return 0;
}

/* ---- values ----------------------------------------------------------------------------- */

static const gn_edf_type *etcd_route_type(const gn_edf_registry *reg)
{
    return gn_edf_registry_find(reg, GN_EDF_ERGO_ROUTE, strlen(GN_EDF_ERGO_ROUTE));
}

int gni_etcd_routes_encode(const gn_edf_registry *reg, gn_edf_arena *a,
                           const gni_reg_route *routes, uint32_t n, gn_buf *out)
{
    if (!reg || !a || !out || (!routes && n) || n > GNI_ETCD_MAX_ROUTES)
        return GN_EINVAL;
    const gn_edf_type *route_t = etcd_route_type(reg);
    if (!route_t || route_t->kind != GN_EDF_STRUCT || route_t->len != 5)
        return GN_EINVAL;
    const gn_edf_type *slice_t = gn_edf_type_slice(a, route_t);
    if (!slice_t)
        return GN_ENOMEM;
    gn_edf_value v;
    int rc = gn_edf_set_composite(&v, a, slice_t, n);
    if (rc < 0)
        return rc;
    for (uint32_t i = 0; i < n; i++) {
        const gni_reg_route *r = &routes[i];
        gn_edf_value *rv = &v.u.items[i];
        if ((rc = gn_edf_set_composite(rv, a, route_t, 0)) < 0)
            return rc;
        gn_edf_value *f = rv->u.items;
        gn_edf_set_string(&f[0], (const char *)r->host.base, r->host.len);
        if ((rc = gn_edf_set_uint(&f[1], GN_EDF_UINT16, r->port)) < 0)
            return rc;
        gn_edf_set_bool(&f[2], r->tls);
        for (int k = 0; k < 2; k++) {
            const gn_slice *ver = k ? r->proto_version : r->hs_version;
            if ((rc = gn_edf_set_composite(&f[3 + k], a, route_t->fields[3 + k].type, 0)) < 0)
                return rc;
            for (int j = 0; j < 4; j++)
                gn_edf_set_string(&f[3 + k].u.items[j], (const char *)ver[j].base, ver[j].len);
        }
    }
    size_t elen = 0;
    if ((rc = gn_edf_encoded_len(NULL, &v, &elen)) < 0)
        return rc;
    if (elen > GNI_ETCD_VALUE_MAX)
        return GN_ERANGE;
    uint8_t *bin = gn_edf_arena_alloc(a, elen ? elen : 1);
    if (!bin)
        return GN_ENOMEM;
    gn_buf eb;
    gn_buf_init(&eb, bin, elen);
    if ((rc = gn_edf_encode(NULL, &v, &eb)) < 0)
        return rc;
    size_t b64 = sodium_base64_ENCODED_LEN(elen, sodium_base64_VARIANT_ORIGINAL);
    if (gn_buf_left(out) < b64) /* b64 counts the NUL sodium writes */
        return GN_ENOSPC;
    sodium_bin2base64((char *)out->last, b64, bin, elen, sodium_base64_VARIANT_ORIGINAL);
    out->last += b64 - 1;
    return (int)(b64 - 1);
}

/* Decodes standard padded base64 @in into @out (capacity @cap); the whole input must be used. */
static int etcd_unb64(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *outlen)
{
    const char *end = NULL;
    *outlen = 0;
    if (len == 0)
        return 0;
    if (sodium_base642bin(out, cap, (const char *)in, len, NULL, outlen, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        end != (const char *)in + len)
        return GN_EPARSE;
    return 0;
}

int gni_etcd_routes_decode(const gn_edf_registry *reg, gn_edf_arena *a, const uint8_t *text,
                           size_t len, const gni_reg_route **routes, uint32_t *n)
{
    if (!reg || !a || (!text && len) || !routes || !n)
        return GN_EINVAL;
    const gn_edf_type *route_t = etcd_route_type(reg);
    if (!route_t)
        return GN_EINVAL;
    if (len > (GNI_ETCD_VALUE_MAX / 3 + 1) * 4)
        return GN_ETOOBIG;
    if (len == 0)
        return GN_EPARSE;
    size_t cap = len / 4 * 3 + 3, blen = 0;
    uint8_t *bin = gn_edf_arena_alloc(a, cap);
    if (!bin)
        return GN_ENOMEM;
    int rc = etcd_unb64(text, len, bin, cap, &blen);
    if (rc < 0)
        return rc;
    gn_edf_decode_opts o;
    gn_edf_decode_opts_default(&o);
    o.reg = reg;
    o.max_depth = 8;
    o.max_values = 1 + GNI_ETCD_MAX_ROUTES * 14 + 8; /* slice, routes, 5 fields + 2x4 strings */
    o.max_input = GNI_ETCD_VALUE_MAX;
    gn_edf_value v;
    size_t used = 0;
    rc = gn_edf_decode(&o, a, bin, blen, &v, &used, NULL);
    if (rc == GN_ENOMEM || rc == GN_ENOTFOUND)
        return rc;
    if (rc == GN_ELIMIT)
        return GN_ELIMIT;
    if (rc < 0 || used != blen || v.kind != GN_EDF_SLICE || v.nil || !v.type ||
        v.type->elem != route_t)
        return GN_EPARSE;
    if (v.cnt > GNI_ETCD_MAX_ROUTES)
        return GN_ELIMIT;
    gni_reg_route *r = NULL;
    if (v.cnt) {
        r = gn_edf_arena_alloc(a, (size_t)v.cnt * sizeof *r);
        if (!r)
            return GN_ENOMEM;
    }
    for (uint32_t i = 0; i < v.cnt; i++) {
        const gn_edf_value *f = v.u.items[i].u.items;
        r[i].host = f[0].u.bytes;
        r[i].port = (uint16_t)f[1].u.u;
        r[i].tls = f[2].u.b;
        for (int k = 0; k < 4; k++) {
            r[i].hs_version[k] = f[3].u.items[k].u.bytes;
            r[i].proto_version[k] = f[4].u.items[k].u.bytes;
        }
    }
    *routes = r;
    *n = v.cnt;
    return 0;
}

/* ---- requests --------------------------------------------------------------------------- */

/* Appends "<name>":"<base64 of s>" (s non-empty) with a leading comma if @comma. */
static int etcd_json_b64(gn_buf *out, bool comma, const char *name, gn_slice s)
{
    char head[48];
    int n = snprintf(head, sizeof head, "%s\"%s\":\"", comma ? "," : "", name);
    if (n < 0 || (size_t)n >= sizeof head)
        return GN_EINVAL;
    size_t b64 = sodium_base64_ENCODED_LEN(s.len, sodium_base64_VARIANT_ORIGINAL);
    if (gn_buf_left(out) < (size_t)n + b64 + 1)
        return GN_ENOSPC;
    memcpy(out->last, head, (size_t)n);
    out->last += n;
    sodium_bin2base64((char *)out->last, b64, s.base, s.len, sodium_base64_VARIANT_ORIGINAL);
    out->last += b64 - 1; /* without the NUL */
    *out->last++ = '"';
    return 0;
}

/* Appends @pre, the decimal @v, then @post. */
static int etcd_json_raw(gn_buf *out, const char *pre, long long v, const char *post)
{
    char tmp[128];
    int n = snprintf(tmp, sizeof tmp, "%s%lld%s", pre, v, post);
    if (n < 0 || (size_t)n >= sizeof tmp)
        return GN_EINVAL;
    return etcd_append(out, tmp, (size_t)n) < 0 ? GN_ENOSPC : 0;
}

static int etcd_json_put(gn_buf *out, const gni_etcd_req *r, int64_t lease)
{
    int rc;
    if ((rc = etcd_json_b64(out, false, "key", r->key)) < 0 ||
        (r->value.len && (rc = etcd_json_b64(out, true, "value", r->value)) < 0))
        return rc;
    if (lease && (rc = etcd_json_raw(out, ",\"lease\":\"", (long long)lease, "\"")) < 0)
        return rc;
    return 0;
}

/* The JSON body of @r at @out->last. */
static int etcd_body(const gni_etcd_req *r, gn_buf *out, const char **path)
{
    int rc = 0;
    bool kv = r->op == GNI_ETCD_TXN_CREATE || r->op == GNI_ETCD_TXN_OURS ||
              r->op == GNI_ETCD_RANGE || r->op == GNI_ETCD_PUT || r->op == GNI_ETCD_WATCH;
    if (kv && (r->key.len == 0 || r->key.len > GNI_ETCD_KEY_MAX || !r->key.base))
        return GN_EINVAL;
    if (r->value.len && !r->value.base)
        return GN_EINVAL;
    uint8_t endb[GNI_ETCD_KEY_MAX];
    gn_buf eb;
    gn_buf_init(&eb, endb, sizeof endb);
    if (r->prefix && (r->op == GNI_ETCD_RANGE || r->op == GNI_ETCD_WATCH) &&
        (rc = gni_etcd_prefix_end(r->key, &eb)) < 0)
        return rc;
    gn_slice end = gn_slice_of(endb, gn_buf_len(&eb));
    switch (r->op) {
    case GNI_ETCD_GRANT:
        *path = "/v3/lease/grant";
        if (r->ttl_s < 1 || r->ttl_s > 9000000000LL)
            return GN_EINVAL;
        return etcd_json_raw(out, "{\"TTL\":\"", (long long)r->ttl_s, "\"}");
    case GNI_ETCD_KEEPALIVE:
    case GNI_ETCD_REVOKE:
        *path = r->op == GNI_ETCD_KEEPALIVE ? "/v3/lease/keepalive" : "/v3/lease/revoke";
        if (r->lease <= 0)
            return GN_EINVAL;
        return etcd_json_raw(out, "{\"ID\":\"", (long long)r->lease, "\"}");
    case GNI_ETCD_PUT:
        *path = "/v3/kv/put";
        if (r->lease < 0)
            return GN_EINVAL;
        if (etcd_append(out, "{", 1) < 0 || (rc = etcd_json_put(out, r, r->lease)) < 0 ||
            etcd_append(out, "}", 1) < 0)
            return rc < 0 ? rc : GN_ENOSPC;
        return 0;
    case GNI_ETCD_TXN_CREATE:
    case GNI_ETCD_TXN_OURS:
        *path = "/v3/kv/txn";
        if (r->lease <= 0 || (r->op == GNI_ETCD_TXN_OURS && r->old_lease <= 0))
            return GN_EINVAL;
        if (etcd_append(out, "{\"compare\":[{", 13) < 0)
            return GN_ENOSPC;
        if ((rc = etcd_json_b64(out, false, "key", r->key)) < 0)
            return rc;
        if (r->op == GNI_ETCD_TXN_CREATE)
            rc = etcd_json_raw(out, ",\"target\":\"CREATE\",\"result\":\"EQUAL\","
                                    "\"create_revision\":\"", 0, "\"}]");
        else
            rc = etcd_json_raw(out, ",\"target\":\"LEASE\",\"result\":\"EQUAL\",\"lease\":\"",
                               (long long)r->old_lease, "\"}]");
        if (rc < 0)
            return rc;
        if (etcd_append(out, ",\"success\":[{\"request_put\":{", 28) < 0)
            return GN_ENOSPC;
        if ((rc = etcd_json_put(out, r, r->lease)) < 0)
            return rc;
        return etcd_append(out, "}}]}", 4) < 0 ? GN_ENOSPC : 0;
    case GNI_ETCD_RANGE:
        *path = "/v3/kv/range";
        if (etcd_append(out, "{", 1) < 0)
            return GN_ENOSPC;
        if ((rc = etcd_json_b64(out, false, "key", r->key)) < 0)
            return rc;
        if (r->prefix && (rc = etcd_json_b64(out, true, "range_end", end)) < 0)
            return rc;
        if (r->keys_only && etcd_append(out, ",\"keys_only\":true", 17) < 0)
            return GN_ENOSPC;
        return etcd_append(out, "}", 1) < 0 ? GN_ENOSPC : 0;
    case GNI_ETCD_WATCH:
        *path = "/v3/watch";
        if (r->start_revision < 0)
            return GN_EINVAL;
        if (etcd_append(out, "{\"create_request\":{", 19) < 0)
            return GN_ENOSPC;
        if ((rc = etcd_json_b64(out, false, "key", r->key)) < 0)
            return rc;
        if (r->prefix && (rc = etcd_json_b64(out, true, "range_end", end)) < 0)
            return rc;
        if (r->start_revision &&
            (rc = etcd_json_raw(out, ",\"start_revision\":\"", (long long)r->start_revision,
                                "\"")) < 0)
            return rc;
        return etcd_append(out, "}}", 2) < 0 ? GN_ENOSPC : 0;
    }
    return GN_EINVAL;
}

int gni_etcd_build(const gni_etcd_req *r, const char *authority, gn_buf *out)
{
    if (!r || !authority || !out || !authority[0] || strlen(authority) > 255)
        return GN_EINVAL;
    for (const char *p = authority; *p; p++)
        if (*p <= ' ' || *p >= 0x7f)
            return GN_EINVAL;
    /* body first, at the end of the free space, then the head before it */
    uint8_t *mark = out->last;
    const char *path = NULL;
    int rc = etcd_body(r, out, &path);
    if (rc < 0) {
        out->last = mark;
        return rc;
    }
    size_t blen = (size_t)(out->last - mark);
    char head[512];
    int hn = snprintf(head, sizeof head,
                      "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      path, authority, blen);
    if (hn < 0 || (size_t)hn >= sizeof head) {
        out->last = mark;
        return GN_EINVAL;
    }
    if (gn_buf_left(out) < (size_t)hn) {
        out->last = mark;
        return GN_ENOSPC;
    }
    memmove(mark + hn, mark, blen);
    memcpy(mark, head, (size_t)hn);
    out->last = mark + hn + blen;
    return hn + (int)blen;
}

/* ---- responses -------------------------------------------------------------------------- */

enum { RESP_IDLE = 0, RESP_BUSY, RESP_DONE, RESP_FAILED };

struct gni_etcd_resp {
    http_parser hp;
    gni_etcd_limits lim;
    struct json_tokener *tok;
    gni_etcd_op op;
    int state;
    int status;
    bool keep_alive;
    bool pending;     /* non-whitespace bytes of an unfinished JSON message */
    size_t cur;       /* bytes of the current JSON message */
    uint32_t nmsg;    /* JSON messages in this response */
    uint8_t errbody[GNI_ETCD_ERRBODY_MAX];
    size_t errlen;
    gni_etcd_result_cb cb;
    void *ud;
    int err;          /* sticky failure */
    uint8_t *scratch; /* decoded keys and values of one message */
    size_t scap, sused;
    gni_etcd_kv *kvs;
    uint32_t kcap;
    char diag[192];
};

static int resp_fail(gni_etcd_resp *r, int err, const char *what)
{
    if (!r->err) {
        r->err = err;
        snprintf(r->diag, sizeof r->diag, "etcd: %s", what);
    }
    return err;
}

static bool j_int64(json_object *o, int64_t *v)
{
    if (!o)
        return false;
    if (json_object_is_type(o, json_type_int)) {
        *v = json_object_get_int64(o);
        return true;
    }
    if (!json_object_is_type(o, json_type_string))
        return false;
    const char *s = json_object_get_string(o);
    size_t len = (size_t)json_object_get_string_len(o);
    if (len == 0 || len > 20)
        return false;
    bool neg = s[0] == '-';
    if (neg && len == 1)
        return false;
    uint64_t acc = 0;
    for (size_t i = neg; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (acc > (UINT64_MAX - d) / 10)
            return false;
        acc = acc * 10 + d;
    }
    if (acc > (uint64_t)INT64_MAX + (neg ? 1u : 0u))
        return false;
    *v = neg ? (int64_t)(0 - acc) : (int64_t)acc;
    return true;
}

/* Optional int64 field: absent = 0; present with another type = parse error. */
static int f_int64(json_object *obj, const char *name, int64_t *v)
{
    json_object *o = NULL;
    *v = 0;
    if (!json_object_object_get_ex(obj, name, &o) || !o)
        return 0;
    return j_int64(o, v) ? 0 : GN_EPARSE;
}

static int f_bool(json_object *obj, const char *name, bool *v)
{
    json_object *o = NULL;
    *v = false;
    if (!json_object_object_get_ex(obj, name, &o) || !o)
        return 0;
    if (!json_object_is_type(o, json_type_boolean))
        return GN_EPARSE;
    *v = json_object_get_boolean(o);
    return 0;
}

static int f_string(json_object *obj, const char *name, gn_slice *v)
{
    json_object *o = NULL;
    *v = gn_slice_of(NULL, 0);
    if (!json_object_object_get_ex(obj, name, &o) || !o)
        return 0;
    if (!json_object_is_type(o, json_type_string))
        return GN_EPARSE;
    *v = gn_slice_of(json_object_get_string(o), (size_t)json_object_get_string_len(o));
    return 0;
}

/* A base64 field decoded into the scratch area (room was reserved for the whole message). */
static int f_b64(gni_etcd_resp *r, json_object *obj, const char *name, gn_slice *v)
{
    gn_slice s;
    int rc = f_string(obj, name, &s);
    *v = gn_slice_of(NULL, 0);
    if (rc < 0 || s.len == 0)
        return rc;
    size_t need = s.len / 4 * 3 + 3, got = 0;
    if (r->scap - r->sused < need)
        return GN_EINTERNAL;
    uint8_t *dst = r->scratch + r->sused;
    if ((rc = etcd_unb64(s.base, s.len, dst, need, &got)) < 0)
        return rc;
    r->sused += got;
    *v = gn_slice_of(dst, got);
    return 0;
}

static int parse_kv(gni_etcd_resp *r, json_object *o, gni_etcd_kv *kv)
{
    int rc;
    if (!json_object_is_type(o, json_type_object))
        return GN_EPARSE;
    memset(kv, 0, sizeof *kv);
    if ((rc = f_b64(r, o, "key", &kv->key)) < 0 || (rc = f_b64(r, o, "value", &kv->value)) < 0 ||
        (rc = f_int64(o, "lease", &kv->lease)) < 0 ||
        (rc = f_int64(o, "create_revision", &kv->create_revision)) < 0 ||
        (rc = f_int64(o, "mod_revision", &kv->mod_revision)) < 0 ||
        (rc = f_int64(o, "version", &kv->version)) < 0)
        return rc;
    return kv->key.len ? 0 : GN_EPARSE;
}

/* An array field of kvs (RANGE "kvs") or events (WATCH "events"). */
static int parse_list(gni_etcd_resp *r, json_object *body, const char *name, bool events,
                      gni_etcd_result *res)
{
    json_object *arr = NULL;
    if (!json_object_object_get_ex(body, name, &arr) || !arr)
        return 0;
    if (!json_object_is_type(arr, json_type_array))
        return GN_EPARSE;
    size_t n = json_object_array_length(arr);
    if (n > r->lim.kvs_max)
        return GN_ELIMIT;
    if (n > r->kcap) {
        gni_etcd_kv *k = gn_realloc(r->kvs, n * sizeof *k);
        if (!k)
            return GN_ENOMEM;
        r->kvs = k;
        r->kcap = (uint32_t)n;
    }
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(arr, i), *kv = e;
        bool del = false;
        int rc;
        if (events) {
            gn_slice type;
            if (!e || !json_object_is_type(e, json_type_object) ||
                (rc = f_string(e, "type", &type)) < 0)
                return GN_EPARSE;
            if (type.len == 6 && memcmp(type.base, "DELETE", 6) == 0)
                del = true;
            else if (type.len && !(type.len == 3 && memcmp(type.base, "PUT", 3) == 0))
                return GN_EPARSE;
            if (!json_object_object_get_ex(e, "kv", &kv) || !kv)
                return GN_EPARSE;
        }
        if (!kv || (rc = parse_kv(r, kv, &r->kvs[i])) < 0)
            return GN_EPARSE;
        r->kvs[i].deleted = del;
    }
    res->kvs = r->kvs;
    res->nkvs = (uint32_t)n;
    return 0;
}

/* etcd's error bodies: {"error": "...", "message": "...", "code": N} (unary) or, inside a
 * stream, {"error": {"grpc_code": N, "http_code": N, "message": "...", ...}}. */
static void parse_error(json_object *obj, gni_etcd_result *res)
{
    json_object *e = NULL;
    res->err = GN_EPROTO;
    if (json_object_object_get_ex(obj, "error", &e) && e &&
        json_object_is_type(e, json_type_object)) {
        (void)f_string(e, "message", &res->message);
        if (f_int64(e, "grpc_code", &res->code) < 0 || !res->code)
            (void)f_int64(e, "code", &res->code);
        return;
    }
    (void)f_string(obj, "message", &res->message);
    if (!res->message.len)
        (void)f_string(obj, "error", &res->message);
    (void)f_int64(obj, "code", &res->code);
}

static int resp_deliver(gni_etcd_resp *r, gni_etcd_result *res)
{
    if (r->cb && r->cb(res, r->ud) != 0)
        return resp_fail(r, GN_ECALLBACK, "the result callback failed");
    return 0;
}

/* One complete JSON message of a 200 response. */
static int resp_message(gni_etcd_resp *r, json_object *obj, size_t msg_len)
{
    gni_etcd_result res;
    memset(&res, 0, sizeof res);
    res.op = r->op;
    res.status = r->status;
    r->nmsg++;
    if (!json_object_is_type(obj, json_type_object))
        return resp_fail(r, GN_EPARSE, "a response message is not a JSON object");
    bool stream = r->op == GNI_ETCD_KEEPALIVE || r->op == GNI_ETCD_WATCH;
    if (!stream && r->nmsg > 1)
        return resp_fail(r, GN_EPARSE, "more than one JSON message in a unary response");
    if (r->op == GNI_ETCD_KEEPALIVE && r->nmsg > 1)
        return resp_fail(r, GN_EPARSE, "more than one keepalive answer to one request");
    json_object *body = obj, *e = NULL;
    if (json_object_object_get_ex(obj, "error", &e) && e &&
        (stream || !json_object_is_type(e, json_type_string) ||
         json_object_get_string_len(e) > 0)) {
        parse_error(obj, &res);
        return resp_deliver(r, &res);
    }
    if (stream && (!json_object_object_get_ex(obj, "result", &body) || !body ||
                   !json_object_is_type(body, json_type_object)))
        return resp_fail(r, GN_EPARSE, "a stream message without \"result\"");
    /* room for every decoded key and value: never more bytes than the message has */
    if (r->scap < msg_len + 4) {
        uint8_t *s = gn_realloc(r->scratch, msg_len + 4);
        if (!s)
            return resp_fail(r, GN_ENOMEM, "out of memory");
        r->scratch = s;
        r->scap = msg_len + 4;
    }
    r->sused = 0;
    json_object *hdr = NULL;
    int rc = 0;
    if (json_object_object_get_ex(body, "header", &hdr) && hdr) {
        if (!json_object_is_type(hdr, json_type_object) ||
            f_int64(hdr, "revision", &res.revision) < 0)
            return resp_fail(r, GN_EPARSE, "a malformed \"header\"");
    }
    switch (r->op) {
    case GNI_ETCD_GRANT:
    case GNI_ETCD_KEEPALIVE:
        if ((rc = f_int64(body, "ID", &res.lease_id)) < 0 ||
            (rc = f_int64(body, "TTL", &res.ttl_s)) < 0)
            break;
        if (r->op == GNI_ETCD_GRANT && res.lease_id <= 0)
            rc = GN_EPARSE; /* a grant always names its lease */
        break;
    case GNI_ETCD_TXN_CREATE:
    case GNI_ETCD_TXN_OURS:
        rc = f_bool(body, "succeeded", &res.succeeded);
        break;
    case GNI_ETCD_RANGE:
        if ((rc = f_int64(body, "count", &res.count)) < 0)
            break;
        rc = parse_list(r, body, "kvs", false, &res);
        break;
    case GNI_ETCD_WATCH:
        if ((rc = f_int64(body, "watch_id", &res.watch_id)) < 0 ||
            (rc = f_bool(body, "created", &res.created)) < 0 ||
            (rc = f_bool(body, "canceled", &res.canceled)) < 0 ||
            (rc = f_string(body, "cancel_reason", &res.message)) < 0)
            break;
        if (res.canceled)
            res.err = GN_EPROTO;
        rc = parse_list(r, body, "events", true, &res);
        break;
    case GNI_ETCD_PUT:
    case GNI_ETCD_REVOKE:
        break;
    }
    if (rc == GN_ELIMIT)
        return resp_fail(r, rc, "more keys or events in one message than the bound");
    if (rc == GN_ENOMEM)
        return resp_fail(r, rc, "out of memory");
    if (rc < 0)
        return resp_fail(r, GN_EPARSE, "a field of the wrong type or bad base64 in a message");
    return resp_deliver(r, &res);
}

static bool is_ws(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int on_headers_complete(http_parser *p)
{
    gni_etcd_resp *r = p->data;
    r->status = (int)p->status_code;
    if (p->http_major != 1) {
        resp_fail(r, GN_EPROTO, "not an HTTP/1.x response");
        return -1; /* 1 would mean "no body" and still complete the message */
    }
    if (r->status >= 100 && r->status < 200) {
        resp_fail(r, GN_EPROTO, "an interim (1xx) response");
        return -1;
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    gni_etcd_resp *r = p->data;
    const uint8_t *d = (const uint8_t *)at;
    if (r->status != 200) { /* an error body: keep its start for the diagnostic */
        size_t k = len < sizeof r->errbody - r->errlen ? len : sizeof r->errbody - r->errlen;
        memcpy(r->errbody + r->errlen, d, k);
        r->errlen += k;
        return 0;
    }
    while (len > 0) {
        size_t room = r->lim.msg_max - r->cur;
        size_t chunk = len < room + 1 ? len : room + 1; /* one byte over the bound is enough */
        if (chunk > INT_MAX)
            chunk = INT_MAX;
        json_object *obj = json_tokener_parse_ex(r->tok, (const char *)d, (int)chunk);
        enum json_tokener_error je = json_tokener_get_error(r->tok);
        if (obj) {
            size_t used = json_tokener_get_parse_end(r->tok);
            if (used > chunk)
                used = chunk;
            r->cur += used;
            int rc = r->cur > r->lim.msg_max
                         ? resp_fail(r, GN_ETOOBIG, "a JSON message over the size bound")
                         : resp_message(r, obj, r->cur);
            json_object_put(obj);
            json_tokener_reset(r->tok);
            r->cur = 0;
            r->pending = false;
            if (rc < 0)
                return 1;
            d += used;
            len -= used;
            continue;
        }
        if (je != json_tokener_continue) {
            char w[128];
            snprintf(w, sizeof w, "malformed JSON in a response: %s", json_tokener_error_desc(je));
            resp_fail(r, GN_EPARSE, w);
            return 1;
        }
        for (size_t i = 0; i < chunk && !r->pending; i++)
            r->pending = !is_ws(d[i]);
        r->cur += chunk;
        if (r->cur > r->lim.msg_max) {
            resp_fail(r, GN_ETOOBIG, "a JSON message over the size bound");
            return 1;
        }
        d += chunk;
        len -= chunk;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    gni_etcd_resp *r = p->data;
    r->keep_alive = http_should_keep_alive(p) != 0;
    if (r->status != 200) {
        gni_etcd_result res;
        memset(&res, 0, sizeof res);
        res.op = r->op;
        res.status = r->status;
        res.err = GN_EPROTO;
        json_tokener *t = json_tokener_new_ex(8);
        json_object *obj = t && r->errlen ? json_tokener_parse_ex(t, (const char *)r->errbody,
                                                                   (int)r->errlen)
                                          : NULL;
        if (obj && json_object_is_type(obj, json_type_object))
            parse_error(obj, &res);
        else /* e.g. "404 page not found" as text */
            res.message = gn_slice_of(r->errbody, r->errlen);
        res.err = GN_EPROTO;
        int rc = resp_deliver(r, &res);
        json_object_put(obj);
        if (t)
            json_tokener_free(t);
        if (rc < 0)
            return 1;
    } else if (r->pending) {
        resp_fail(r, GN_EPARSE, "the response ended inside a JSON message");
        return 1;
    } else if (r->nmsg == 0) {
        resp_fail(r, GN_EPARSE, "an empty response body");
        return 1;
    }
    r->state = RESP_DONE;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings etcd_hp_settings = {
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

int gni_etcd_resp_new(const gni_etcd_limits *lim, gni_etcd_resp **out)
{
    if (!out)
        return GN_EINVAL;
    *out = NULL;
    gni_etcd_resp *r = gn_calloc(1, sizeof *r);
    if (!r)
        return GN_ENOMEM;
    r->lim.msg_max = lim && lim->msg_max ? lim->msg_max : GNI_ETCD_MSG_MAX_DEFAULT;
    r->lim.kvs_max = lim && lim->kvs_max ? lim->kvs_max : GNI_ETCD_KVS_MAX_DEFAULT;
    if (r->lim.msg_max > (size_t)INT_MAX / 2)
        r->lim.msg_max = (size_t)INT_MAX / 2;
    r->tok = json_tokener_new_ex(ETCD_JSON_DEPTH);
    if (!r->tok) {
        gn_free(r);
        return GN_ENOMEM;
    }
    json_tokener_set_flags(r->tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS);
    *out = r;
    return 0;
}

void gni_etcd_resp_free(gni_etcd_resp *r)
{
    if (!r)
        return;
    json_tokener_free(r->tok);
    gn_free(r->scratch);
    gn_free(r->kvs);
    gn_free(r);
}

int gni_etcd_resp_begin(gni_etcd_resp *r, gni_etcd_op op)
{
    if (!r || op < GNI_ETCD_GRANT || op > GNI_ETCD_WATCH)
        return GN_EINVAL;
    if (r->err || r->state == RESP_BUSY)
        return GN_ESTATE;
    http_parser_init(&r->hp, HTTP_RESPONSE);
    r->hp.data = r;
    json_tokener_reset(r->tok);
    r->op = op;
    r->state = RESP_BUSY;
    r->status = 0;
    r->keep_alive = false;
    r->pending = false;
    r->cur = 0;
    r->nmsg = 0;
    r->errlen = 0;
    return 0;
}

int gni_etcd_resp_feed(gni_etcd_resp *r, const uint8_t *in, size_t len, gni_etcd_result_cb cb,
                       void *user_data, size_t *consumed)
{
    if (consumed)
        *consumed = 0;
    if (!r || (!in && len))
        return GN_EINVAL;
    if (r->err)
        return r->err;
    if (r->state != RESP_BUSY)
        return len ? resp_fail(r, GN_EPROTO, "bytes from the server while no request waits")
                   : GN_ESTATE;
    if (len == 0)
        return 0;
    r->cb = cb;
    r->ud = user_data;
    size_t n = http_parser_execute(&r->hp, &etcd_hp_settings, (const char *)in, len);
    r->cb = NULL;
    r->ud = NULL;
    if (consumed)
        *consumed = n;
    if (r->err)
        return r->err;
    enum http_errno he = HTTP_PARSER_ERRNO(&r->hp);
    if (r->state == RESP_DONE) {
        r->state = RESP_IDLE;
        return 1;
    }
    if (he != HPE_OK) {
        char w[128];
        snprintf(w, sizeof w, "bad HTTP response: %s", http_errno_description(he));
        return resp_fail(r, GN_EPROTO, w);
    }
    return 0;
}

int gni_etcd_resp_eof(gni_etcd_resp *r, gni_etcd_result_cb cb, void *user_data)
{
    if (!r)
        return GN_EINVAL;
    if (r->state != RESP_BUSY)
        return r->err ? r->err : 0;
    r->cb = cb;
    r->ud = user_data;
    /* a zero-length execute tells http-parser about the close (body until EOF) */
    http_parser_execute(&r->hp, &etcd_hp_settings, NULL, 0);
    r->cb = NULL;
    r->ud = NULL;
    if (r->err)
        return r->err;
    if (r->state == RESP_DONE) {
        r->state = RESP_IDLE;
        r->keep_alive = false;
        return 1;
    }
    return resp_fail(r, GN_EEOF, "the connection closed in the middle of a response");
}

bool gni_etcd_resp_keep_alive(const gni_etcd_resp *r)
{
    return r && !r->err && r->keep_alive;
}

const char *gni_etcd_resp_diag(const gni_etcd_resp *r)
{
    return r ? r->diag : "";
}
