/*
 * Ergo's embedded registrar: packets, server table, client outcomes and the
 * failover rule (ergo-wire.md section a). Contract: registrar.h.
 * Sans-I/O: no sockets, no clock, no globals.
 */
#include "registrar.h"

#include <string.h>

#include "golemnet/err.h"
#include "golemnet/log.h"

static const char *const reg_names[4] = {
    GN_EDF_ERGO_REGISTER_ROUTES, GN_EDF_ERGO_REGISTER_REPLY,
    GN_EDF_ERGO_RESOLVE_ROUTES, GN_EDF_ERGO_RESOLVE_REPLY,
};

static const gn_edf_type *reg_type(const gn_edf_registry *reg, int type)
{
    if (type < GNI_REG_REGISTER || type > GNI_REG_RESOLVE_REPLY)
        return NULL;
    const char *n = reg_names[type - GNI_REG_REGISTER];
    return gn_edf_registry_find(reg, n, strlen(n));
}

static bool reg_sl_eq(gn_slice a, gn_slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.base, b.base, a.len) == 0);
}

gni_reg_route gni_reg_route_ergo(uint16_t port, bool tls)
{
    gni_reg_route r;
    memset(&r, 0, sizeof r);
    r.port = port;
    r.tls = tls;
    r.hs_version[0] = gn_slice_of("EHS", 3);
    r.hs_version[1] = gn_slice_of("R1", 2);
    r.hs_version[3] = gn_slice_of("MIT", 3);
    r.proto_version[0] = gn_slice_of("ENP", 3);
    r.proto_version[1] = gn_slice_of("R1", 2);
    r.proto_version[3] = gn_slice_of("MIT", 3);
    return r;
}

/* ---- packets -------------------------------------------------------------------------- */

static int reg_parse_routes(gn_edf_arena *a, const gn_edf_value *v, gni_reg_packet *p)
{
    p->routes_nil = v->nil;
    p->nroutes = v->nil ? 0 : v->cnt;
    if (!p->nroutes)
        return 0;
    gni_reg_route *r = gn_edf_arena_alloc(a, (size_t)p->nroutes * sizeof *r);
    if (!r)
        return GN_ENOMEM;
    for (uint32_t i = 0; i < p->nroutes; i++) {
        const gn_edf_value *f = v->u.items[i].u.items;
        r[i].host = f[0].u.bytes;
        r[i].port = (uint16_t)f[1].u.u;
        r[i].tls = f[2].u.b;
        for (int k = 0; k < 4; k++) {
            r[i].hs_version[k] = f[3].u.items[k].u.bytes;
            r[i].proto_version[k] = f[4].u.items[k].u.bytes;
        }
    }
    p->routes = r;
    return 0;
}

int gni_reg_parse(const gn_edf_registry *reg, gn_edf_arena *a, const uint8_t *in, size_t len,
                  bool copy, gni_reg_packet *p, size_t *consumed)
{
    if (consumed)
        *consumed = 0;
    if (!reg || !a || !p || (!in && len))
        return GN_EINVAL;
    memset(p, 0, sizeof *p);
    if (len >= 1 && in[0] != GNI_REG_VERSION)
        return GN_EBADFRAME;
    if (len >= 2 && (in[1] < GNI_REG_REGISTER || in[1] > GNI_REG_RESOLVE_REPLY))
        return GN_EBADFRAME;
    if (len < GNI_REG_HEADER_LEN)
        return GN_EAGAIN;
    size_t blen = (size_t)in[2] << 8 | in[3];
    if (len - GNI_REG_HEADER_LEN < blen)
        return GN_EAGAIN;
    const gn_edf_type *t = reg_type(reg, in[1]);
    if (!t)
        return GN_EINVAL; /* registry without the Ergo types */
    gn_edf_decode_opts o;
    gn_edf_decode_opts_default(&o);
    o.reg = reg;
    o.flags = copy ? GN_EDF_DECODE_COPY : 0;
    o.max_depth = 8;
    gn_edf_value v;
    size_t used = 0;
    int rc = gn_edf_decode(&o, a, in + GNI_REG_HEADER_LEN, blen, &v, &used, NULL);
    if (rc == GN_ENOMEM || rc == GN_ENOTFOUND)
        return rc;
    if (rc < 0 || used != blen || v.type != t)
        return GN_EPARSE; /* also: a body of another type than the header says */
    const gn_edf_value *f = v.u.items;
    p->type = (enum gni_reg_type)in[1];
    switch (p->type) {
    case GNI_REG_REGISTER:
        p->node = f[0].u.bytes;
        rc = reg_parse_routes(a, &f[1], p);
        break;
    case GNI_REG_REGISTER_REPLY:
        p->error = f[0].u.bytes;
        p->error_nil = f[0].nil;
        break;
    case GNI_REG_RESOLVE:
        p->node = f[0].u.bytes;
        break;
    case GNI_REG_RESOLVE_REPLY:
        rc = reg_parse_routes(a, &f[0], p);
        p->error = f[1].u.bytes;
        p->error_nil = f[1].nil;
        break;
    }
    if (rc < 0)
        return rc;
    if (consumed)
        *consumed = GNI_REG_HEADER_LEN + blen;
    return 0;
}

static int reg_build_routes(const gn_edf_registry *reg, gn_edf_arena *a, gn_edf_value *v,
                            const gn_edf_type *slice_t, const gni_reg_packet *p)
{
    if (p->routes_nil)
        return gn_edf_set_nil_of(v, slice_t);
    int rc = gn_edf_set_composite(v, a, slice_t, p->nroutes);
    if (rc < 0)
        return rc;
    const gn_edf_type *route_t = slice_t->elem;
    for (uint32_t i = 0; i < p->nroutes; i++) {
        const gni_reg_route *r = &p->routes[i];
        gn_edf_value *rv = &v->u.items[i];
        if ((rc = gn_edf_set_composite(rv, a, route_t, 0)) < 0)
            return rc;
        gn_edf_value *f = rv->u.items;
        gn_edf_set_string(&f[0], (const char *)r->host.base, r->host.len);
        gn_edf_set_uint(&f[1], GN_EDF_UINT16, r->port);
        gn_edf_set_bool(&f[2], r->tls);
        for (int k = 0; k < 2; k++) {
            const gn_slice *ver = k ? r->proto_version : r->hs_version;
            if ((rc = gn_edf_set_composite(&f[3 + k], a, route_t->fields[3 + k].type, 0)) < 0)
                return rc;
            for (int j = 0; j < 4; j++)
                gn_edf_set_string(&f[3 + k].u.items[j], (const char *)ver[j].base, ver[j].len);
        }
    }
    return 0;
}

static void reg_set_error(gn_edf_value *v, const gni_reg_packet *p)
{
    if (p->error_nil)
        gn_edf_set_error(v, NULL, 0);
    else
        gn_edf_set_error(v, p->error.base ? (const char *)p->error.base : "", p->error.len);
}

int gni_reg_build(const gn_edf_registry *reg, gn_edf_arena *a, const gni_reg_packet *p,
                  gn_buf *out)
{
    if (!reg || !a || !p || !out)
        return GN_EINVAL;
    const gn_edf_type *t = reg_type(reg, p->type);
    if (!t)
        return GN_EINVAL;
    gn_edf_value v;
    int rc = gn_edf_set_composite(&v, a, t, 0);
    if (rc < 0)
        return rc;
    gn_edf_value *f = v.u.items;
    switch (p->type) {
    case GNI_REG_REGISTER:
        gn_edf_set_atom(&f[0], (const char *)p->node.base, p->node.len);
        rc = reg_build_routes(reg, a, &f[1], t->fields[1].type, p);
        break;
    case GNI_REG_REGISTER_REPLY:
        reg_set_error(&f[0], p);
        break;
    case GNI_REG_RESOLVE:
        gn_edf_set_atom(&f[0], (const char *)p->node.base, p->node.len);
        break;
    case GNI_REG_RESOLVE_REPLY:
        rc = reg_build_routes(reg, a, &f[0], t->fields[0].type, p);
        reg_set_error(&f[1], p);
        break;
    }
    if (rc < 0)
        return rc;
    size_t blen;
    if ((rc = gn_edf_encoded_len(NULL, &v, &blen)) < 0)
        return rc;
    if (blen > 0xffff)
        return GN_ERANGE;
    if (gn_buf_left(out) < GNI_REG_HEADER_LEN + blen)
        return GN_ENOSPC;
    uint8_t *h = out->last;
    h[0] = GNI_REG_VERSION;
    h[1] = (uint8_t)p->type;
    h[2] = (uint8_t)(blen >> 8);
    h[3] = (uint8_t)blen;
    out->last += GNI_REG_HEADER_LEN;
    if ((rc = gn_edf_encode(NULL, &v, out)) < 0) {
        out->last = h;
        return rc;
    }
    return (int)(GNI_REG_HEADER_LEN + blen);
}

/* ---- server --------------------------------------------------------------------------- */

typedef struct reg_entry {
    uint64_t lease;
    gn_edf_arena *a; /* node name and routes, copied */
    gn_slice node;
    const gni_reg_route *routes;
    uint32_t n;
    uint8_t *reply; /* the encoded ResolveReply, answered as is */
    size_t reply_len;
} reg_entry;

struct gni_reg_server {
    const gn_edf_registry *reg;
    gn_edf_arena *tmp;
    reg_entry *e;
    uint32_t n, max_nodes, max_routes;
};

int gni_reg_server_new(const gn_edf_registry *reg, uint32_t max_nodes, uint32_t max_routes,
                       gni_reg_server **out)
{
    if (!reg || !out)
        return GN_EINVAL;
    for (int t = GNI_REG_REGISTER; t <= GNI_REG_RESOLVE_REPLY; t++)
        if (!reg_type(reg, t))
            return GN_EINVAL;
    gni_reg_server *s = gn_calloc(1, sizeof *s);
    if (!s)
        return GN_ENOMEM;
    s->reg = reg;
    s->max_nodes = max_nodes ? max_nodes : GNI_REG_MAX_NODES_DEFAULT;
    s->max_routes = max_routes ? max_routes : GNI_REG_MAX_ROUTES_DEFAULT;
    s->tmp = gn_edf_arena_new(4096, 0);
    s->e = gn_calloc(s->max_nodes, sizeof *s->e);
    if (!s->tmp || !s->e) {
        gni_reg_server_free(s);
        return GN_ENOMEM;
    }
    *out = s;
    return 0;
}

static void reg_entry_fini(reg_entry *e)
{
    gn_edf_arena_free(e->a);
    gn_free(e->reply);
    memset(e, 0, sizeof *e);
}

void gni_reg_server_free(gni_reg_server *s)
{
    if (!s)
        return;
    for (uint32_t i = 0; s->e && i < s->n; i++)
        reg_entry_fini(&s->e[i]);
    gn_free(s->e);
    gn_edf_arena_free(s->tmp);
    gn_free(s);
}

static reg_entry *reg_find(const gni_reg_server *s, gn_slice node)
{
    for (uint32_t i = 0; i < s->n; i++)
        if (reg_sl_eq(s->e[i].node, node))
            return &s->e[i];
    return NULL;
}

int gni_reg_server_add(gni_reg_server *s, uint64_t lease, gn_slice node,
                       const gni_reg_route *routes, uint32_t n)
{
    if (!s || (!routes && n) || node.len == 0 || node.len > GN_EDF_ATOM_MAX)
        return GN_EINVAL;
    if (reg_find(s, node))
        return GN_EEXIST;
    if (n == 0)
        return GN_EINVAL;
    if (n > s->max_routes || s->n >= s->max_nodes)
        return GN_ELIMIT;
    /* the answer to a resolve must fit the client's 4096-byte UDP read */
    uint8_t buf[GNI_REG_SERVER_READ];
    gn_buf b;
    gn_buf_init(&b, buf, sizeof buf);
    gni_reg_packet rp = {.type = GNI_REG_RESOLVE_REPLY, .routes = routes, .nroutes = n,
                         .error_nil = true};
    gn_edf_arena_reset(s->tmp);
    int rc = gni_reg_build(s->reg, s->tmp, &rp, &b);
    if (rc == GN_ENOSPC || rc == GN_ERANGE)
        return GN_ELIMIT;
    if (rc < 0)
        return rc;
    reg_entry *e = &s->e[s->n];
    memset(e, 0, sizeof *e);
    e->lease = lease;
    e->a = gn_edf_arena_new(512, 0);
    e->reply = gn_malloc((size_t)rc);
    char *nm = e->a ? gn_edf_arena_alloc(e->a, node.len) : NULL;
    if (!e->a || !e->reply || !nm) {
        reg_entry_fini(e);
        return GN_ENOMEM;
    }
    memcpy(e->reply, buf, (size_t)rc);
    e->reply_len = (size_t)rc;
    memcpy(nm, node.base, node.len);
    e->node = gn_slice_of(nm, node.len);
    gni_reg_packet back;
    if ((rc = gni_reg_parse(s->reg, e->a, e->reply, e->reply_len, true, &back, NULL)) < 0) {
        reg_entry_fini(e);
        return rc;
    }
    e->routes = back.routes;
    e->n = back.nroutes;
    s->n++;
    return 0;
}

static int reg_reply_error(gni_reg_server *s, const char *text, gn_buf *reply)
{
    gni_reg_packet p = {.type = GNI_REG_REGISTER_REPLY};
    if (text)
        p.error = gn_slice_of(text, strlen(text));
    else
        p.error_nil = true;
    gn_edf_arena_reset(s->tmp);
    int rc = gni_reg_build(s->reg, s->tmp, &p, reply);
    return rc < 0 ? rc : 0;
}

int gni_reg_server_tcp(gni_reg_server *s, uint64_t lease, const uint8_t *in, size_t len,
                       gn_buf *reply, bool *close)
{
    if (!s || !reply || !close || lease == 0)
        return GN_EINVAL;
    *close = true;
    gn_edf_arena *a = gn_edf_arena_new(1024, 1u << 20);
    if (!a)
        return GN_ENOMEM;
    gni_reg_packet p;
    int rc = gni_reg_parse(s->reg, a, in, len, false, &p, NULL);
    if (rc == 0 && p.type != GNI_REG_REGISTER)
        rc = GN_EPARSE; /* TCP carries only Register */
    if (rc < 0) {
        gn_edf_arena_free(a);
        return rc == GN_ENOTFOUND ? GN_EPARSE : rc; /* closed without a reply */
    }
    rc = gni_reg_server_add(s, lease, p.node, p.routes, p.nroutes);
    gn_edf_arena_free(a);
    const char *text = NULL;
    if (rc == GN_EEXIST)
        text = GNI_REG_ERR_TAKEN;
    else if (rc == GN_EINVAL || rc == GN_ELIMIT)
        text = GNI_REG_ERR_INCORRECT;
    else if (rc < 0)
        return rc;
    int wr = reg_reply_error(s, text, reply);
    if (wr < 0)
        return wr;
    *close = rc < 0;
    return rc;
}

void gni_reg_server_lease_end(gni_reg_server *s, uint64_t lease)
{
    if (!s || lease == 0)
        return;
    for (uint32_t i = 0; i < s->n;) {
        if (s->e[i].lease == lease) {
            reg_entry_fini(&s->e[i]);
            s->e[i] = s->e[--s->n];
            memset(&s->e[s->n], 0, sizeof s->e[s->n]);
        } else {
            i++;
        }
    }
}

int gni_reg_server_udp(gni_reg_server *s, const uint8_t *in, size_t len, gn_buf *reply)
{
    if (!s || !reply)
        return GN_EINVAL;
    if (len > GNI_REG_SERVER_UDP_READ)
        len = GNI_REG_SERVER_UDP_READ; /* what Ergo's 1024-byte read would see */
    gn_edf_arena *a = gn_edf_arena_new(1024, 1u << 20);
    if (!a)
        return GN_ENOMEM;
    gni_reg_packet p;
    int rc = gni_reg_parse(s->reg, a, in, len, false, &p, NULL);
    if (rc == 0 && p.type != GNI_REG_RESOLVE)
        rc = GN_EPARSE; /* UDP carries only Resolve */
    if (rc < 0) {
        gn_edf_arena_free(a);
        return rc == GN_ENOTFOUND ? GN_EPARSE : rc;
    }
    const reg_entry *e = reg_find(s, p.node);
    gn_edf_arena_free(a);
    if (e) {
        if (gn_buf_left(reply) < e->reply_len)
            return GN_ENOSPC;
        memcpy(reply->last, e->reply, e->reply_len);
        reply->last += e->reply_len;
        return (int)e->reply_len;
    }
    gni_reg_packet miss = {.type = GNI_REG_RESOLVE_REPLY, .routes_nil = true,
                           .error = gn_slice_of(GNI_REG_ERR_UNKNOWN, strlen(GNI_REG_ERR_UNKNOWN))};
    gn_edf_arena_reset(s->tmp);
    return gni_reg_build(s->reg, s->tmp, &miss, reply);
}

int gni_reg_server_find(const gni_reg_server *s, gn_slice node, const gni_reg_route **routes,
                        uint32_t *n)
{
    if (!s || !routes || !n)
        return GN_EINVAL;
    const reg_entry *e = reg_find(s, node);
    if (!e)
        return GN_ENOTFOUND;
    *routes = e->routes;
    *n = e->n;
    return 0;
}

size_t gni_reg_server_count(const gni_reg_server *s) { return s ? s->n : 0; }

/* ---- client --------------------------------------------------------------------------- */

static bool reg_err_is(const gni_reg_packet *p, const char *text)
{
    return !p->error_nil && reg_sl_eq(p->error, gn_slice_of(text, strlen(text)));
}

int gni_reg_register_result(const gn_edf_registry *reg, gn_edf_arena *a, const uint8_t *in,
                            size_t len)
{
    gni_reg_packet p;
    int rc = gni_reg_parse(reg, a, in, len, false, &p, NULL);
    if (rc < 0)
        return rc;
    if (p.type != GNI_REG_REGISTER_REPLY)
        return GN_EPARSE;
    if (p.error_nil)
        return 0;
    if (reg_err_is(&p, GNI_REG_ERR_TAKEN))
        return GN_EEXIST;
    if (reg_err_is(&p, GNI_REG_ERR_INCORRECT))
        return GN_EINVAL;
    return GN_EPROTO;
}

int gni_reg_resolve_result(const gn_edf_registry *reg, gn_edf_arena *a, const uint8_t *in,
                           size_t len, const gni_reg_route **routes, uint32_t *n)
{
    if (!routes || !n)
        return GN_EINVAL;
    gni_reg_packet p;
    int rc = gni_reg_parse(reg, a, in, len, true, &p, NULL);
    if (rc < 0)
        return rc;
    if (p.type != GNI_REG_RESOLVE_REPLY)
        return GN_EPARSE;
    if (!p.error_nil)
        return reg_err_is(&p, GNI_REG_ERR_UNKNOWN) ? GN_ENOTFOUND : GN_EPROTO;
    if (p.nroutes == 0)
        return GN_ENOTFOUND;
    *routes = p.routes;
    *n = p.nroutes;
    return 0;
}

/* ---- failover ------------------------------------------------------------------------- */

enum { REG_F_START = 0, REG_F_BINDING, REG_F_NEED_REGISTER, REG_F_REGISTERING, REG_F_SETTLED,
       REG_F_WAIT };

gni_reg_action gni_reg_failover_next(gni_reg_failover *f, gn_time now)
{
    if (!f)
        return GNI_REG_ACT_NONE;
    switch (f->state) {
    case REG_F_WAIT:
        if (now < f->retry_at)
            return GNI_REG_ACT_NONE;
        /* fall through */
    case REG_F_START:
        f->state = REG_F_BINDING;
        f->attempts++;
        return GNI_REG_ACT_BIND;
    case REG_F_NEED_REGISTER:
        f->state = REG_F_REGISTERING;
        return GNI_REG_ACT_REGISTER;
    default:
        return GNI_REG_ACT_NONE;
    }
}

void gni_reg_failover_bound(gni_reg_failover *f, bool ok, gn_time now)
{
    (void)now;
    if (!f || f->state != REG_F_BINDING)
        return;
    if (ok) {
        f->state = REG_F_SETTLED;
        f->role = GNI_REG_ROLE_SERVER;
    } else {
        f->state = REG_F_NEED_REGISTER;
    }
}

void gni_reg_failover_registered(gni_reg_failover *f, int rc, gn_time now)
{
    if (!f || f->state != REG_F_REGISTERING)
        return;
    if (rc == 0) {
        f->state = REG_F_SETTLED;
        f->role = GNI_REG_ROLE_CLIENT;
    } else if (rc == GN_EEXIST) {
        f->state = REG_F_SETTLED;
        f->role = GNI_REG_ROLE_FAILED;
    } else {
        f->state = REG_F_WAIT;
        f->role = GNI_REG_ROLE_NONE;
        f->retry_at = now + GNI_REG_RETRY;
    }
}

void gni_reg_failover_lease_lost(gni_reg_failover *f, gn_time now)
{
    if (!f || f->role != GNI_REG_ROLE_CLIENT)
        return;
    /* start over at once: the first survivor to bind becomes the server */
    f->state = REG_F_WAIT;
    f->role = GNI_REG_ROLE_NONE;
    f->retry_at = now;
}

gn_time gni_reg_failover_deadline(const gni_reg_failover *f)
{
    if (!f)
        return GN_TIME_INFINITY;
    if (f->state == REG_F_START || f->state == REG_F_NEED_REGISTER)
        return 0;
    return f->state == REG_F_WAIT ? f->retry_at : GN_TIME_INFINITY;
}
