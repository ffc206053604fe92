/*
 * EHS R1, the Ergo handshake: framing, parse/build of the four messages,
 * and the Start/Join/Accept state machines (ergo-wire.md section b).
 * Contract: ehs.h. Sans-I/O: no sockets, no clock, no globals.
 */
#include "ehs.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "golemnet/err.h"
#include "golemnet/log.h"

/* ---- helpers -------------------------------------------------------------------------- */

static bool ehs_sl_eq(gn_slice a, gn_slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.base, b.base, a.len) == 0);
}

/* constant-time comparison of a received digest against the expected hex */
static bool ehs_digest_eq(gn_slice got, const char want[GNI_EHS_DIGEST_LEN])
{
    return got.len == GNI_EHS_DIGEST_LEN &&
           sodium_memcmp(got.base, want, GNI_EHS_DIGEST_LEN) == 0;
}

void gni_ehs_digest(const gn_slice *parts, size_t n, const uint8_t *cert_sha1,
                    char hex[GNI_EHS_DIGEST_LEN])
{
    crypto_hash_sha256_state st;
    uint8_t h[crypto_hash_sha256_BYTES];
    char tmp[2 * crypto_hash_sha256_BYTES + 1];
    crypto_hash_sha256_init(&st);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            crypto_hash_sha256_update(&st, (const uint8_t *)":", 1);
        if (parts[i].len)
            crypto_hash_sha256_update(&st, parts[i].base, parts[i].len);
    }
    if (cert_sha1)
        crypto_hash_sha256_update(&st, cert_sha1, GNI_EHS_CERT_SHA1_LEN);
    crypto_hash_sha256_final(&st, h);
    sodium_bin2hex(tmp, sizeof tmp, h, sizeof h);
    memcpy(hex, tmp, GNI_EHS_DIGEST_LEN);
    sodium_memzero(&st, sizeof st);
}

bool gni_ehs_name_valid(gn_slice name)
{
    if (name.len == 0 || name.len > GN_EDF_ATOM_MAX)
        return false;
    size_t at = 0;
    for (size_t i = 0; i < name.len; i++)
        at += name.base[i] == '@';
    return at == 1;
}

static uint32_t ehs_rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- parse ---------------------------------------------------------------------------- */

static const char *const ehs_type_names[5] = {
    NULL, GN_EDF_ERGO_HELLO, GN_EDF_ERGO_JOIN, GN_EDF_ERGO_INTRODUCE, GN_EDF_ERGO_ACCEPT,
};

static const gn_edf_type *ehs_type(const gn_edf_registry *reg, gni_ehs_kind k)
{
    if (k < GNI_EHS_HELLO || k > GNI_EHS_ACCEPT)
        return NULL;
    return gn_edf_registry_find(reg, ehs_type_names[k], strlen(ehs_type_names[k]));
}

static int ehs_parse_cache(gn_edf_arena *a, const gn_edf_value *v, gni_ehs_msg *m, int which)
{
    m->cache_nil[which] = v->nil;
    m->ncache[which] = v->nil ? 0 : v->cnt;
    m->cache[which] = NULL;
    if (v->nil || v->cnt == 0)
        return 0;
    gni_ehs_cache_entry *e = gn_edf_arena_alloc(a, (size_t)v->cnt * sizeof *e);
    if (!e)
        return GN_ENOMEM;
    for (uint32_t i = 0; i < v->cnt; i++) {
        const gn_edf_value *k = &v->u.items[2 * i], *val = &v->u.items[2 * i + 1];
        if (val->kind == GN_EDF_ERROR && val->nil)
            return GN_EPARSE; /* a nil error in ErrCache has no text to announce */
        e[i].id = (uint16_t)k->u.u;
        e[i].s = val->u.bytes;
    }
    m->cache[which] = e;
    return 0;
}

int gni_ehs_parse(const gn_edf_registry *reg, gn_edf_arena *a, const uint8_t *in, size_t len,
                  bool copy, gni_ehs_msg *m, size_t *consumed)
{
    if (consumed)
        *consumed = 0;
    if (!reg || !a || !m || (!in && len))
        return GN_EINVAL;
    memset(m, 0, sizeof *m);
    if (len >= 1 && in[0] != GNI_EHS_MAGIC)
        return GN_EBADFRAME;
    if (len >= 2 && in[1] != GNI_EHS_VERSION)
        return GN_EBADFRAME;
    if (len < GNI_EHS_HEADER_LEN)
        return GN_EAGAIN;
    uint32_t blen = ehs_rd32(in + 2);
    if (blen > GNI_EHS_BODY_MAX)
        return GN_EFRAMESIZE;
    if (len - GNI_EHS_HEADER_LEN < blen)
        return GN_EAGAIN;
    gn_edf_decode_opts o;
    gn_edf_decode_opts_default(&o);
    o.reg = reg;
    o.flags = copy ? GN_EDF_DECODE_COPY : 0;
    o.max_depth = 8; /* the deepest message (Introduce) nests 3 levels */
    /* before any cookie check: an empty array costs no bytes on the wire,
     * so the value count (and the arena's cap) bound what a body can make */
    o.max_values = GNI_EHS_MAX_VALUES;
    gn_edf_value v;
    size_t used = 0;
    int rc = gn_edf_decode(&o, a, in + GNI_EHS_HEADER_LEN, blen, &v, &used, NULL);
    if (rc == GN_ENOMEM)
        return rc;
    if (rc == GN_ENOTFOUND)
        return GN_ENOTFOUND;
    if (rc < 0 || used != blen)
        return GN_EPARSE;
    gni_ehs_kind k = 0;
    for (int i = GNI_EHS_HELLO; i <= GNI_EHS_ACCEPT; i++)
        if (v.type == ehs_type(reg, (gni_ehs_kind)i))
            k = (gni_ehs_kind)i;
    if (!k)
        return GN_EPARSE;
    const gn_edf_value *f = v.u.items;
    m->kind = k;
    switch (k) {
    case GNI_EHS_HELLO:
        m->salt = f[0].u.bytes;
        m->digest = f[1].u.bytes;
        m->digest_cert = f[2].u.bytes;
        break;
    case GNI_EHS_JOIN:
        m->node = f[0].u.bytes;
        m->conn_id = f[1].u.bytes;
        m->salt = f[2].u.bytes;
        m->digest = f[3].u.bytes;
        break;
    case GNI_EHS_INTRODUCE:
        m->node = f[0].u.bytes;
        for (int i = 0; i < 4; i++)
            m->version[i] = f[1].u.items[i].u.bytes;
        if (f[2].u.bytes.len != 8)
            return GN_EPARSE;
        m->flags = 0;
        for (int i = 0; i < 8; i++)
            m->flags = m->flags << 8 | f[2].u.bytes.base[i];
        m->creation = f[3].u.i;
        m->max_message_size = f[4].u.i;
        if (m->max_message_size < 0)
            return GN_EPARSE;
        for (int i = 0; i < 3; i++)
            if ((rc = ehs_parse_cache(a, &f[5 + i], m, i)) < 0)
                return rc;
        m->digest = f[8].u.bytes;
        break;
    case GNI_EHS_ACCEPT:
        m->conn_id = f[0].u.bytes;
        m->pool_size = f[1].u.i;
        m->dsn_nil = f[2].nil;
        m->ndsn = f[2].nil ? 0 : f[2].cnt;
        if (m->ndsn) {
            gn_slice *d = gn_edf_arena_alloc(a, (size_t)m->ndsn * sizeof *d);
            if (!d)
                return GN_ENOMEM;
            for (uint32_t i = 0; i < m->ndsn; i++)
                d[i] = f[2].u.items[i].u.bytes;
            m->dsn = d;
        }
        m->digest = f[3].u.bytes;
        m->digest_cert = f[4].u.bytes;
        break;
    }
    if (consumed)
        *consumed = GNI_EHS_HEADER_LEN + blen;
    return 0;
}

/* ---- build ---------------------------------------------------------------------------- */

static int ehs_build_cache(const gn_edf_registry *reg, gn_edf_arena *a, gn_edf_value *v,
                           const gni_ehs_msg *m, int which)
{
    const gn_edf_type *t = ehs_type(reg, GNI_EHS_INTRODUCE)->fields[5 + which].type;
    if (m->cache_nil[which])
        return gn_edf_set_nil_of(v, t);
    int rc = gn_edf_set_composite(v, a, t, m->ncache[which]);
    if (rc < 0)
        return rc;
    for (uint32_t i = 0; i < m->ncache[which]; i++) {
        gn_edf_value *k = &v->u.items[2 * i], *val = &v->u.items[2 * i + 1];
        gn_edf_set_uint(k, GN_EDF_UINT16, m->cache[which][i].id);
        const gni_ehs_cache_entry *e = &m->cache[which][i];
        if (which == GNI_EHS_CACHE_ATOM)
            gn_edf_set_atom(val, (const char *)e->s.base, e->s.len);
        else if (which == GNI_EHS_CACHE_REG)
            gn_edf_set_string(val, (const char *)e->s.base, e->s.len);
        else
            gn_edf_set_error(val, e->s.base ? (const char *)e->s.base : "", e->s.len);
    }
    return 0;
}

static void ehs_set_str(gn_edf_value *v, gn_slice s)
{
    gn_edf_set_string(v, (const char *)s.base, s.len);
}

int gni_ehs_build(const gn_edf_registry *reg, gn_edf_arena *a, const gni_ehs_msg *m,
                  gn_buf *out)
{
    if (!reg || !a || !m || !out)
        return GN_EINVAL;
    const gn_edf_type *t = ehs_type(reg, m->kind);
    if (!t)
        return GN_EINVAL;
    gn_edf_value v;
    int rc = gn_edf_set_composite(&v, a, t, 0);
    if (rc < 0)
        return rc;
    gn_edf_value *f = v.u.items;
    uint8_t flags[8];
    switch (m->kind) {
    case GNI_EHS_HELLO:
        ehs_set_str(&f[0], m->salt);
        ehs_set_str(&f[1], m->digest);
        ehs_set_str(&f[2], m->digest_cert);
        break;
    case GNI_EHS_JOIN:
        gn_edf_set_atom(&f[0], (const char *)m->node.base, m->node.len);
        ehs_set_str(&f[1], m->conn_id);
        ehs_set_str(&f[2], m->salt);
        ehs_set_str(&f[3], m->digest);
        break;
    case GNI_EHS_INTRODUCE:
        gn_edf_set_atom(&f[0], (const char *)m->node.base, m->node.len);
        if ((rc = gn_edf_set_composite(&f[1], a, t->fields[1].type, 0)) < 0)
            return rc;
        for (int i = 0; i < 4; i++)
            ehs_set_str(&f[1].u.items[i], m->version[i]);
        for (int i = 0; i < 8; i++)
            flags[i] = (uint8_t)(m->flags >> (56 - 8 * i));
        if ((rc = gn_edf_set_custom(&f[2], t->fields[2].type, flags, 8)) < 0)
            return rc;
        gn_edf_set_int(&f[3], GN_EDF_INT64, m->creation);
        gn_edf_set_int(&f[4], GN_EDF_INT, m->max_message_size);
        for (int i = 0; i < 3; i++)
            if ((rc = ehs_build_cache(reg, a, &f[5 + i], m, i)) < 0)
                return rc;
        ehs_set_str(&f[8], m->digest);
        break;
    case GNI_EHS_ACCEPT:
        ehs_set_str(&f[0], m->conn_id);
        gn_edf_set_int(&f[1], GN_EDF_INT, m->pool_size);
        if (m->dsn_nil) {
            rc = gn_edf_set_nil_of(&f[2], t->fields[2].type);
        } else {
            rc = gn_edf_set_composite(&f[2], a, t->fields[2].type, m->ndsn);
            for (uint32_t i = 0; rc == 0 && i < m->ndsn; i++)
                ehs_set_str(&f[2].u.items[i], m->dsn[i]);
        }
        if (rc < 0)
            return rc;
        ehs_set_str(&f[3], m->digest);
        ehs_set_str(&f[4], m->digest_cert);
        break;
    }
    size_t blen;
    if ((rc = gn_edf_encoded_len(NULL, &v, &blen)) < 0)
        return rc;
    if (blen > GNI_EHS_BODY_MAX)
        return GN_ERANGE;
    if (gn_buf_left(out) < GNI_EHS_HEADER_LEN + blen)
        return GN_ENOSPC;
    uint8_t *h = out->last;
    h[0] = GNI_EHS_MAGIC;
    h[1] = GNI_EHS_VERSION;
    h[2] = 0;
    h[3] = 0;
    h[4] = (uint8_t)(blen >> 8);
    h[5] = (uint8_t)blen;
    out->last += GNI_EHS_HEADER_LEN;
    rc = gn_edf_encode(NULL, &v, out);
    if (rc < 0) {
        out->last = h;
        return rc;
    }
    return (int)(GNI_EHS_HEADER_LEN + blen);
}

/* ---- state machine -------------------------------------------------------------------- */

enum ehs_state {
    EHS_S_WAIT_HELLO,       /* initiator: A's Hello */
    EHS_S_WAIT_ACCEPT,      /* initiator Start: A's Accept; Join: A's Accept */
    EHS_S_WAIT_INTRO,       /* initiator: A's Introduce; acceptor: I's Introduce */
    EHS_S_WAIT_FIRST,       /* acceptor: Hello or Join */
    EHS_S_WAIT_LAST_ACCEPT, /* acceptor: I's empty Accept */
    EHS_S_DONE,
    EHS_S_FAILED,
};

struct gni_ehs {
    gni_ehs_config cfg;
    gni_ehs_role role;
    enum ehs_state st;
    int err;
    gni_ehs_why why;
    char diag[192];
    gn_time deadline;
    gn_edf_arena *arena; /* decoded peer messages (copied) and results */
    gn_edf_arena *tmp;   /* build scratch */
    /* input: one message being collected */
    uint8_t *in;
    size_t in_len, in_cap;
    /* output */
    uint8_t *out;
    size_t out_len, out_pos, out_cap;
    /* secrets of this exchange */
    char my_salt[2 * GNI_EHS_SALT_BYTES];
    char peer_salt[2 * GNI_EHS_SALT_BYTES];
    char my_digest[GNI_EHS_DIGEST_LEN];   /* initiator: dI or dJ */
    char conn_id[2 * GNI_EHS_ID_BYTES];
    gni_ehs_msg peer_intro;
    bool have_intro;
    gni_ehs_result res;
};

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static int ehs_fail(gni_ehs *h, int err, gni_ehs_why why, const char *fmt, ...)
{
    if (h->st == EHS_S_FAILED)
        return h->err;
    h->st = EHS_S_FAILED;
    h->err = err;
    h->why = why;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->diag, sizeof h->diag, fmt, ap);
    va_end(ap);
    h->deadline = GN_TIME_INFINITY;
    return err;
}

static const char *ehs_side(const gni_ehs *h)
{
    return h->role == GNI_EHS_ROLE_ACCEPT ? "initiator" : "acceptor";
}

static void ehs_rand_hex(const gni_ehs *h, char *hex, size_t nbytes)
{
    uint8_t r[GNI_EHS_SALT_BYTES];
    char tmp[2 * GNI_EHS_SALT_BYTES + 1];
    gn_rng_fill(h->cfg.rng, r, nbytes);
    sodium_bin2hex(tmp, sizeof tmp, r, nbytes);
    memcpy(hex, tmp, 2 * nbytes);
}

static int ehs_queue(gni_ehs *h, const gni_ehs_msg *m)
{
    gn_edf_arena_reset(h->tmp);
    for (int attempt = 0; attempt < 2; attempt++) {
        gn_buf b;
        gn_buf_init(&b, h->out + h->out_len, h->out_cap - h->out_len);
        int rc = gni_ehs_build(h->cfg.reg, h->tmp, m, &b);
        if (rc >= 0) {
            h->out_len += (size_t)rc;
            return 0;
        }
        if (rc != GN_ENOSPC || attempt)
            return ehs_fail(h, rc, GNI_EHS_WHY_LOCAL, "cannot build a handshake message");
        size_t need = h->out_len + GNI_EHS_HEADER_LEN + GNI_EHS_BODY_MAX;
        uint8_t *p = gn_realloc(h->out, need);
        if (!p)
            return ehs_fail(h, GN_ENOMEM, GNI_EHS_WHY_LOCAL, "out of memory");
        h->out = p;
        h->out_cap = need;
    }
    return GN_EINTERNAL;
}

static int ehs_send_hello_i(gni_ehs *h)
{
    gn_slice parts[2] = {gn_slice_of(h->my_salt, sizeof h->my_salt), h->cfg.cookie};
    gni_ehs_digest(parts, 2, NULL, h->my_digest);
    gni_ehs_msg m = {.kind = GNI_EHS_HELLO};
    m.salt = gn_slice_of(h->my_salt, sizeof h->my_salt);
    m.digest = gn_slice_of(h->my_digest, GNI_EHS_DIGEST_LEN);
    return ehs_queue(h, &m);
}

static int ehs_send_join(gni_ehs *h)
{
    gn_slice parts[3] = {h->cfg.conn_id, gn_slice_of(h->my_salt, sizeof h->my_salt),
                         h->cfg.cookie};
    gni_ehs_digest(parts, 3, NULL, h->my_digest);
    gni_ehs_msg m = {.kind = GNI_EHS_JOIN};
    m.node = h->cfg.node;
    m.conn_id = h->cfg.conn_id;
    m.salt = gn_slice_of(h->my_salt, sizeof h->my_salt);
    m.digest = gn_slice_of(h->my_digest, GNI_EHS_DIGEST_LEN);
    return ehs_queue(h, &m);
}

/* our Introduce; the dictionaries come from the registry in registration order */
static int ehs_send_intro(gni_ehs *h, gn_slice digest)
{
    gni_ehs_msg m = {.kind = GNI_EHS_INTRODUCE};
    m.node = h->cfg.node;
    memcpy(m.version, h->cfg.version, sizeof m.version);
    m.flags = h->cfg.flags;
    m.creation = h->cfg.creation;
    m.max_message_size = (int64_t)(h->cfg.max_message_size & INT64_MAX);
    m.digest = digest;
    const gn_edf_dict *d = h->cfg.announce ? h->cfg.announce : gn_edf_registry_dict(h->cfg.reg);
    gn_edf_arena_reset(h->tmp);
    /* the cache arrays live in the arena (not tmp: ehs_queue resets tmp) */
    if (gni_ehs_intro_set_caches(&m, d, h->arena) < 0)
        return ehs_fail(h, GN_ENOMEM, GNI_EHS_WHY_LOCAL, "out of memory");
    return ehs_queue(h, &m);
}

int gni_ehs_intro_set_caches(gni_ehs_msg *m, const gn_edf_dict *d, gn_edf_arena *a)
{
    for (int k = 0; k < 3; k++) {
        size_t n = gn_edf_dict_count(d, (gn_edf_dict_kind)k);
        gni_ehs_cache_entry *e = NULL;
        if (n) {
            e = gn_edf_arena_alloc(a, n * sizeof *e);
            if (!e)
                return GN_ENOMEM;
            for (size_t i = 0; i < n; i++)
                gn_edf_dict_entry(d, (gn_edf_dict_kind)k, i, &e[i].id, &e[i].s);
        }
        m->cache[k] = e;
        m->ncache[k] = (uint32_t)n;
    }
    return 0;
}

int gni_ehs_intro_caches_to_dict(const gni_ehs_msg *m, gn_edf_dict *d)
{
    for (int k = 0; k < 3; k++)
        for (uint32_t i = 0; i < m->ncache[k]; i++) {
            int rc = gn_edf_dict_add(d, (gn_edf_dict_kind)k, m->cache[k][i].id,
                                     (const char *)m->cache[k][i].s.base, m->cache[k][i].s.len);
            if (rc < 0)
                return rc;
        }
    return 0;
}

int gni_ehs_new(const gni_ehs_config *cfg, gni_ehs_role role, gn_time now, gni_ehs **out)
{
    if (!cfg || !out || !cfg->reg || cfg->cookie.len == 0 || !gni_ehs_name_valid(cfg->node))
        return GN_EINVAL;
    if (role != GNI_EHS_ROLE_START && role != GNI_EHS_ROLE_JOIN && role != GNI_EHS_ROLE_ACCEPT)
        return GN_EINVAL;
    for (int k = GNI_EHS_HELLO; k <= GNI_EHS_ACCEPT; k++)
        if (!ehs_type(cfg->reg, (gni_ehs_kind)k))
            return GN_EINVAL;
    if (role == GNI_EHS_ROLE_JOIN && cfg->conn_id.len == 0)
        return GN_EINVAL;
    if (role == GNI_EHS_ROLE_ACCEPT && cfg->pool_dsn.len == 0)
        return GN_EINVAL;
    gni_ehs *h = gn_calloc(1, sizeof *h);
    if (!h)
        return GN_ENOMEM;
    h->cfg = *cfg;
    if (!h->cfg.rng)
        h->cfg.rng = gn_rng_system();
    if (!h->cfg.timeout)
        h->cfg.timeout = GNI_EHS_TIMEOUT_DEFAULT;
    h->role = role;
    h->arena = gn_edf_arena_new(4096, GNI_EHS_ARENA_MAX);
    h->tmp = gn_edf_arena_new(4096, GNI_EHS_ARENA_MAX);
    h->out_cap = 512;
    h->out = gn_malloc(h->out_cap);
    if (!h->arena || !h->tmp || !h->out) {
        gni_ehs_free(h);
        return GN_ENOMEM;
    }
    h->deadline = now > GN_TIME_INFINITY - h->cfg.timeout ? GN_TIME_INFINITY : now + h->cfg.timeout;
    int rc = 0;
    switch (role) {
    case GNI_EHS_ROLE_START:
        h->st = EHS_S_WAIT_HELLO;
        ehs_rand_hex(h, h->my_salt, GNI_EHS_SALT_BYTES);
        rc = ehs_send_hello_i(h);
        break;
    case GNI_EHS_ROLE_JOIN:
        h->st = EHS_S_WAIT_ACCEPT;
        ehs_rand_hex(h, h->my_salt, GNI_EHS_SALT_BYTES);
        rc = ehs_send_join(h);
        break;
    case GNI_EHS_ROLE_ACCEPT:
        h->st = EHS_S_WAIT_FIRST;
        break;
    }
    if (rc < 0) {
        gni_ehs_free(h);
        return rc;
    }
    *out = h;
    return 0;
}

void gni_ehs_free(gni_ehs *h)
{
    if (!h)
        return;
    gn_edf_arena_free(h->arena);
    gn_edf_arena_free(h->tmp);
    gn_free(h->in);
    gn_free(h->out);
    sodium_memzero(h, sizeof *h);
    gn_free(h);
}

static int ehs_expect(gni_ehs *h, const gni_ehs_msg *m, gni_ehs_kind k, const char *what)
{
    if (m->kind != k)
        return ehs_fail(h, GN_EHANDSHAKE, GNI_EHS_WHY_SEQUENCE,
                        "unexpected handshake message: expected %s", what);
    return 0;
}

static int ehs_check_intro(gni_ehs *h, const gni_ehs_msg *m)
{
    if (!gni_ehs_name_valid(m->node))
        return ehs_fail(h, GN_EHANDSHAKE, GNI_EHS_WHY_NAME,
                        "the %s introduced an invalid node name", ehs_side(h));
    if (ehs_sl_eq(m->node, h->cfg.node))
        return ehs_fail(h, GN_EHANDSHAKE, GNI_EHS_WHY_NAME,
                        "the %s introduced itself with our own node name", ehs_side(h));
    if (h->cfg.expect_peer.len && !ehs_sl_eq(m->node, h->cfg.expect_peer))
        return ehs_fail(h, GN_EHANDSHAKE, GNI_EHS_WHY_NAME,
                        "the %s is not the node we dialled", ehs_side(h));
    h->peer_intro = *m;
    h->have_intro = true;
    gni_ehs_result *r = &h->res;
    r->peer_node = m->node;
    memcpy(r->peer_version, m->version, sizeof r->peer_version);
    r->peer_flags = (m->flags & GNI_EHS_FLAG_ENABLE) ? m->flags : 0;
    r->peer_creation = m->creation;
    r->peer_max_message_size = (uint64_t)m->max_message_size;
    return 0;
}

static int ehs_done(gni_ehs *h)
{
    h->st = EHS_S_DONE;
    h->deadline = GN_TIME_INFINITY;
    return 0;
}

/* initiator: A's Hello. Checks H(sA:dI:c) and, on TLS, DigestCert. */
static int ehs_on_hello_i(gni_ehs *h, const gni_ehs_msg *m)
{
    char want[GNI_EHS_DIGEST_LEN];
    if (m->salt.len == 0 || m->salt.len > sizeof h->peer_salt)
        return ehs_fail(h, GN_EHANDSHAKE, GNI_EHS_WHY_FRAMING,
                        "the acceptor's Hello has a malformed salt");
    gn_slice parts[3] = {m->salt, gn_slice_of(h->my_digest, GNI_EHS_DIGEST_LEN), h->cfg.cookie};
    gni_ehs_digest(parts, 3, NULL, want);
    if (!ehs_digest_eq(m->digest, want))
        return ehs_fail(h, GN_EHANDSHAKE, GNI_EHS_WHY_COOKIE,
                        "cookie mismatch: the acceptor's Hello digest is not "
                        "sha256(salt:our digest:cookie)");
    if (h->cfg.peer_cert_sha1) {
        gn_slice cp[3] = {m->salt, gn_slice_of(h->my_salt, sizeof h->my_salt), h->cfg.cookie};
        gni_ehs_digest(cp, 3, h->cfg.peer_cert_sha1, want);
        if (!ehs_digest_eq(m->digest_cert, want))
            return ehs_fail(h, GN_EHANDSHAKE, GNI_EHS_WHY_CERT,
                            "TLS fingerprint mismatch: DigestCert does not match the "
                            "acceptor's certificate");
    }
    memcpy(h->peer_salt, m->salt.base, m->salt.len);
    gn_slice dp[2] = {m->salt, h->cfg.cookie};
    char d[GNI_EHS_DIGEST_LEN];
    gni_ehs_digest(dp, 2, NULL, d);
    h->st = EHS_S_WAIT_ACCEPT;
    return ehs_send_intro(h, gn_slice_of(d, sizeof d));
}

/* initiator Start: A's Accept (ID, PoolSize, PoolDSN) */
static int ehs_on_accept_start(gni_ehs *h, const gni_ehs_msg *m)
{
    if (m->conn_id.len == 0 || m->conn_id.len > sizeof h->conn_id)
        return ehs_fail(h, GN_EHANDSHAKE, GNI_EHS_WHY_FRAMING,
                        "the acceptor's Accept carries no valid connection ID");
    memcpy(h->conn_id, m->conn_id.base, m->conn_id.len);
    h->res.conn_id = gn_slice_of(h->conn_id, m->conn_id.len);
    /* Ergo would divide by zero on PoolSize 0 (spec b "Pool"); we read it as 1 */
    int64_t ps = m->pool_size < 1 ? 1 : m->pool_size;
    h->res.pool_size = ps > GNI_EHS_POOL_MAX ? GNI_EHS_POOL_MAX : (uint32_t)ps;
    h->res.ndsn = m->ndsn > GNI_EHS_DSN_MAX ? GNI_EHS_DSN_MAX : m->ndsn;
    for (uint32_t i = 0; i < h->res.ndsn; i++)
        h->res.dsn[i] = m->dsn[i]; /* copied into h->arena by the decoder */
    h->st = EHS_S_WAIT_INTRO;
    return 0;
}

/* acceptor: first message, a Hello (Start) or a Join */
static int ehs_on_first(gni_ehs *h, const gni_ehs_msg *m)
{
    char want[GNI_EHS_DIGEST_LEN];
    if (m->kind == GNI_EHS_HELLO) {
        gn_slice p[2] = {m->salt, h->cfg.cookie};
        gni_ehs_digest(p, 2, NULL, want);
        if (!ehs_digest_eq(m->digest, want))
            return ehs_fail(h, GN_EHANDSHAKE, GNI_EHS_WHY_COOKIE,
                            "cookie mismatch: the initiator's Hello digest is not "
                            "sha256(salt:cookie)");
        if (m->salt.len == 0 || m->salt.len > sizeof h->peer_salt)
            return ehs_fail(h, GN_EHANDSHAKE, GNI_EHS_WHY_FRAMING,
                            "the initiator's Hello has a malformed salt");
        memcpy(h->peer_salt, m->salt.base, m->salt.len);
        size_t psl = m->salt.len;
        memcpy(h->my_digest, want, sizeof want); /* dI */
        ehs_rand_hex(h, h->my_salt, GNI_EHS_SALT_BYTES);
        gn_slice ms = gn_slice_of(h->my_salt, sizeof h->my_salt);
        gn_slice dp[3] = {ms, gn_slice_of(h->my_digest, GNI_EHS_DIGEST_LEN), h->cfg.cookie};
        char d[GNI_EHS_DIGEST_LEN], dc[GNI_EHS_DIGEST_LEN];
        gni_ehs_digest(dp, 3, NULL, d);
        gni_ehs_msg r = {.kind = GNI_EHS_HELLO, .salt = ms, .digest = gn_slice_of(d, sizeof d)};
        if (h->cfg.cert_sha1) {
            gn_slice cp[3] = {ms, gn_slice_of(h->peer_salt, psl), h->cfg.cookie};
            gni_ehs_digest(cp, 3, h->cfg.cert_sha1, dc);
            r.digest_cert = gn_slice_of(dc, sizeof dc);
        }
        h->st = EHS_S_WAIT_INTRO;
        return ehs_queue(h, &r);
    }
    if (m->kind == GNI_EHS_JOIN) {
        gn_slice p[3] = {m->conn_id, m->salt, h->cfg.cookie};
        gni_ehs_digest(p, 3, NULL, want);
        if (!ehs_digest_eq(m->digest, want))
            return ehs_fail(h, GN_EHANDSHAKE, GNI_EHS_WHY_COOKIE,
                            "cookie mismatch: the initiator's Join digest is not "
                            "sha256(id:salt:cookie)");
        if (!gni_ehs_name_valid(m->node))
            return ehs_fail(h, GN_EHANDSHAKE, GNI_EHS_WHY_NAME,
                            "the Join names an invalid node");
        gn_slice ap[2] = {m->digest, h->cfg.cookie};
        char d[GNI_EHS_DIGEST_LEN], dc[GNI_EHS_DIGEST_LEN];
        gni_ehs_digest(ap, 2, NULL, d);
        gni_ehs_msg r = {.kind = GNI_EHS_ACCEPT, .dsn_nil = true,
                         .digest = gn_slice_of(d, sizeof d)};
        if (h->cfg.cert_sha1) {
            gn_slice cp[3] = {m->digest, m->salt, h->cfg.cookie};
            gni_ehs_digest(cp, 3, h->cfg.cert_sha1, dc);
            r.digest_cert = gn_slice_of(dc, sizeof dc);
        }
        h->res.join = true;
        h->res.peer_node = m->node; /* in h->arena */
        h->res.conn_id = m->conn_id;
        int rc = ehs_queue(h, &r);
        return rc < 0 ? rc : ehs_done(h);
    }
    return ehs_fail(h, GN_EHANDSHAKE, GNI_EHS_WHY_SEQUENCE,
                    "unexpected handshake message: expected Hello or Join");
}

/* acceptor: I's Introduce; answers Accept + Introduce */
static int ehs_on_intro_a(gni_ehs *h, const gni_ehs_msg *m)
{
    char want[GNI_EHS_DIGEST_LEN];
    gn_slice p[2] = {gn_slice_of(h->my_salt, sizeof h->my_salt), h->cfg.cookie};
    gni_ehs_digest(p, 2, NULL, want);
    if (!ehs_digest_eq(m->digest, want))
        return ehs_fail(h, GN_EHANDSHAKE, GNI_EHS_WHY_COOKIE,
                        "cookie mismatch: the initiator's Introduce digest is not "
                        "sha256(our salt:cookie)");
    int rc = ehs_check_intro(h, m);
    if (rc < 0)
        return rc;
    ehs_rand_hex(h, h->conn_id, GNI_EHS_ID_BYTES);
    h->res.conn_id = gn_slice_of(h->conn_id, sizeof h->conn_id);
    uint32_t ps = h->cfg.pool_size < 1 ? GNI_EHS_POOL_DEFAULT : h->cfg.pool_size;
    if (ps > GNI_EHS_POOL_MAX)
        ps = GNI_EHS_POOL_MAX;
    h->res.pool_size = ps;
    gni_ehs_msg a = {.kind = GNI_EHS_ACCEPT, .conn_id = h->res.conn_id, .pool_size = ps,
                     .dsn = &h->cfg.pool_dsn, .ndsn = 1};
    if ((rc = ehs_queue(h, &a)) < 0)
        return rc;
    if ((rc = ehs_send_intro(h, gn_slice_of(NULL, 0))) < 0)
        return rc;
    h->st = EHS_S_WAIT_LAST_ACCEPT;
    return 0;
}

static int ehs_on_msg(gni_ehs *h, const gni_ehs_msg *m)
{
    int rc;
    switch (h->st) {
    case EHS_S_WAIT_FIRST:
        return ehs_on_first(h, m);
    case EHS_S_WAIT_HELLO:
        if ((rc = ehs_expect(h, m, GNI_EHS_HELLO, "Hello")) < 0)
            return rc;
        return ehs_on_hello_i(h, m);
    case EHS_S_WAIT_ACCEPT:
        if ((rc = ehs_expect(h, m, GNI_EHS_ACCEPT, "Accept")) < 0)
            return rc;
        if (h->role == GNI_EHS_ROLE_START)
            return ehs_on_accept_start(h, m);
        {
            /* Join: Accept.Digest = H(dJ:c), DigestCert on TLS = H(dJ:sJ:c + sha1) */
            char want[GNI_EHS_DIGEST_LEN];
            gn_slice dj = gn_slice_of(h->my_digest, GNI_EHS_DIGEST_LEN);
            gn_slice p[2] = {dj, h->cfg.cookie};
            gni_ehs_digest(p, 2, NULL, want);
            if (!ehs_digest_eq(m->digest, want))
                return ehs_fail(h, GN_EHANDSHAKE, GNI_EHS_WHY_COOKIE,
                                "cookie mismatch: the acceptor's Accept digest is not "
                                "sha256(join digest:cookie)");
            if (h->cfg.peer_cert_sha1) {
                gn_slice cp[3] = {dj, gn_slice_of(h->my_salt, sizeof h->my_salt),
                                  h->cfg.cookie};
                gni_ehs_digest(cp, 3, h->cfg.peer_cert_sha1, want);
                if (!ehs_digest_eq(m->digest_cert, want))
                    return ehs_fail(h, GN_EHANDSHAKE, GNI_EHS_WHY_CERT,
                                    "TLS fingerprint mismatch in the join Accept");
            }
            h->res.join = true;
            h->res.conn_id = h->cfg.conn_id;
            h->res.peer_node = h->cfg.expect_peer;
            return ehs_done(h);
        }
    case EHS_S_WAIT_INTRO:
        if ((rc = ehs_expect(h, m, GNI_EHS_INTRODUCE, "Introduce")) < 0)
            return rc;
        if (h->role == GNI_EHS_ROLE_ACCEPT)
            return ehs_on_intro_a(h, m);
        if ((rc = ehs_check_intro(h, m)) < 0)
            return rc;
        {
            gni_ehs_msg a = {.kind = GNI_EHS_ACCEPT, .dsn_nil = true};
            if ((rc = ehs_queue(h, &a)) < 0)
                return rc;
        }
        return ehs_done(h);
    case EHS_S_WAIT_LAST_ACCEPT:
        if ((rc = ehs_expect(h, m, GNI_EHS_ACCEPT, "Accept")) < 0)
            return rc;
        return ehs_done(h);
    default:
        return GN_ESTATE;
    }
}

int gni_ehs_feed(gni_ehs *h, const uint8_t *in, size_t len, size_t *consumed, gn_time now)
{
    if (consumed)
        *consumed = 0;
    if (!h || (!in && len))
        return GN_EINVAL;
    if (h->st == EHS_S_FAILED)
        return h->err;
    size_t used = 0;
    while (used < len && h->st != EHS_S_DONE && h->st != EHS_S_FAILED) {
        /* collect the header, then exactly the body: never read past the message */
        size_t want = GNI_EHS_HEADER_LEN;
        if (h->in_len >= GNI_EHS_HEADER_LEN)
            want += ehs_rd32(h->in + 2);
        if (h->in_cap < want) {
            uint8_t *p = gn_realloc(h->in, want);
            if (!p)
                return ehs_fail(h, GN_ENOMEM, GNI_EHS_WHY_LOCAL, "out of memory");
            h->in = p;
            h->in_cap = want;
        }
        size_t take = want - h->in_len;
        if (take > len - used)
            take = len - used;
        memcpy(h->in + h->in_len, in + used, take);
        h->in_len += take;
        used += take;
        if (h->in_len >= 1 && h->in[0] != GNI_EHS_MAGIC)
            return ehs_fail(h, GN_EBADFRAME, GNI_EHS_WHY_FRAMING,
                            "not a handshake message from the %s (bad magic)", ehs_side(h));
        if (h->in_len >= 2 && h->in[1] != GNI_EHS_VERSION)
            return ehs_fail(h, GN_EBADFRAME, GNI_EHS_WHY_FRAMING,
                            "unsupported handshake version from the %s", ehs_side(h));
        if (h->in_len == GNI_EHS_HEADER_LEN && ehs_rd32(h->in + 2) > GNI_EHS_BODY_MAX)
            return ehs_fail(h, GN_EFRAMESIZE, GNI_EHS_WHY_FRAMING,
                            "handshake message from the %s longer than 65535 bytes",
                            ehs_side(h));
        if (h->in_len < GNI_EHS_HEADER_LEN || h->in_len < GNI_EHS_HEADER_LEN + ehs_rd32(h->in + 2))
            continue;
        gni_ehs_msg m;
        size_t c;
        int rc = gni_ehs_parse(h->cfg.reg, h->arena, h->in, h->in_len, true, &m, &c);
        h->in_len = 0;
        if (rc < 0) {
            if (consumed)
                *consumed = used;
            return ehs_fail(h, rc == GN_ENOMEM ? rc : GN_EPARSE,
                            rc == GN_ENOMEM ? GNI_EHS_WHY_LOCAL : GNI_EHS_WHY_FRAMING,
                            "undecodable handshake message from the %s", ehs_side(h));
        }
        if ((rc = ehs_on_msg(h, &m)) < 0) {
            if (consumed)
                *consumed = used;
            return rc;
        }
        if (h->st != EHS_S_DONE)
            h->deadline = now > GN_TIME_INFINITY - h->cfg.timeout ? GN_TIME_INFINITY
                                                                  : now + h->cfg.timeout;
    }
    if (consumed)
        *consumed = used;
    return 0;
}

size_t gni_ehs_drain(gni_ehs *h, gn_buf *out)
{
    if (!h || !out)
        return 0;
    size_t n = h->out_len - h->out_pos;
    if (n > gn_buf_left(out))
        n = gn_buf_left(out);
    if (n) {
        memcpy(out->last, h->out + h->out_pos, n);
        out->last += n;
        h->out_pos += n;
    }
    if (h->out_pos == h->out_len)
        h->out_pos = h->out_len = 0;
    return n;
}

size_t gni_ehs_pending(const gni_ehs *h) { return h ? h->out_len - h->out_pos : 0; }

int gni_ehs_eof(gni_ehs *h)
{
    if (!h)
        return GN_EINVAL;
    if (h->st == EHS_S_DONE)
        return 0;
    /* Ergo answers a bad cookie by closing the link without a message */
    if (h->role != GNI_EHS_ROLE_ACCEPT &&
        (h->st == EHS_S_WAIT_HELLO || (h->role == GNI_EHS_ROLE_JOIN && h->st == EHS_S_WAIT_ACCEPT)))
        return ehs_fail(h, GN_EEOF, GNI_EHS_WHY_CLOSED,
                        "the acceptor closed the link before answering (refused: cookie "
                        "mismatch or unknown connection)");
    return ehs_fail(h, GN_EEOF, GNI_EHS_WHY_CLOSED,
                    "the %s closed the link during the handshake", ehs_side(h));
}

gn_time gni_ehs_deadline(const gni_ehs *h) { return h ? h->deadline : GN_TIME_INFINITY; }

int gni_ehs_expire(gni_ehs *h, gn_time now)
{
    if (!h)
        return GN_EINVAL;
    if (h->st == EHS_S_FAILED)
        return h->err;
    if (h->st == EHS_S_DONE || now < h->deadline)
        return 0;
    return ehs_fail(h, GN_ETIMEDOUT, GNI_EHS_WHY_TIMEOUT,
                    "no handshake message from the %s within the read deadline", ehs_side(h));
}

bool gni_ehs_done(const gni_ehs *h) { return h && h->st == EHS_S_DONE; }
int gni_ehs_error(const gni_ehs *h) { return h ? h->err : GN_EINVAL; }
gni_ehs_why gni_ehs_why_failed(const gni_ehs *h) { return h ? h->why : GNI_EHS_WHY_LOCAL; }
const char *gni_ehs_diag(const gni_ehs *h) { return h ? h->diag : "no handshake"; }

const gni_ehs_result *gni_ehs_get_result(const gni_ehs *h)
{
    return h && h->st == EHS_S_DONE ? &h->res : NULL;
}

int gni_ehs_peer_dict(const gni_ehs *h, gn_edf_dict *d)
{
    if (!h || !d)
        return GN_EINVAL;
    if (h->st != EHS_S_DONE || !h->have_intro)
        return GN_ESTATE;
    return gni_ehs_intro_caches_to_dict(&h->peer_intro, d);
}
