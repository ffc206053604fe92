/*
 * The opening exchange of /golem/ergo/1.0.0: one Introduce each way.
 * Contract: ergo_open.h; spec: docs/protocols/ergo.md. The message bytes
 * are the EHS core's (gni_ehs_build / gni_ehs_parse), so the Introduce is
 * byte-identical to the one an Ergo acceptor sends on TCP with an empty
 * Digest (the known-answer test checks this against a captured message).
 */
#include "ergo_open.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "enp.h"
#include "gni.h"
#include "golemnet/err.h"

struct gni_ergo_open {
    gni_ergo_open_config cfg;
    gn_edf_arena *arena; /* the parsed Introduce */
    uint8_t *out;        /* our Introduce, framed */
    size_t out_len, out_pos;
    uint8_t *in; /* the peer's Introduce, collected */
    size_t in_len, in_cap;
    gni_ehs_msg peer;
    gni_ergo_open_result res;
    gn_time deadline;
    bool done;
    int err;
    char diag[160];
};

GN_PRINTF(3, 4) static int open_fail(gni_ergo_open *o, int err, const char *fmt, ...)
{
    if (o->err)
        return o->err;
    o->err = err;
    o->deadline = GN_TIME_INFINITY;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->diag, sizeof o->diag, fmt, ap);
    va_end(ap);
    return err;
}

static bool sl_eq(gn_slice a, gn_slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.base, b.base, a.len) == 0);
}

/* our Introduce: the EHS message with an empty Digest (no cookie on a channel) */
static int open_build(gni_ergo_open *o)
{
    const gni_ergo_open_config *c = &o->cfg;
    gn_edf_arena *tmp = gn_edf_arena_new(0, GNI_EHS_ARENA_MAX);
    uint8_t *buf = gn_malloc(GNI_EHS_HEADER_LEN + GNI_EHS_BODY_MAX);
    int rc = GN_ENOMEM;
    if (!tmp || !buf)
        goto out;
    gni_ehs_msg m = {.kind = GNI_EHS_INTRODUCE};
    m.node = c->node;
    memcpy(m.version, c->version, sizeof m.version);
    m.flags = c->flags;
    m.creation = c->creation;
    m.max_message_size = (int64_t)(c->max_message_size & INT64_MAX);
    m.digest = gn_slice_of("", 0);
    const gn_edf_dict *d = c->announce ? c->announce : gn_edf_registry_dict(c->reg);
    if (gni_ehs_intro_set_caches(&m, d, tmp) < 0)
        goto out;
    gn_buf b;
    gn_buf_init(&b, buf, GNI_EHS_HEADER_LEN + GNI_EHS_BODY_MAX);
    rc = gni_ehs_build(c->reg, tmp, &m, &b);
    if (rc < 0)
        goto out;
    o->out_len = gn_buf_len(&b);
    o->out = gn_malloc(o->out_len); /* exact size: the 64 KiB scratch goes */
    if (!o->out) {
        rc = GN_ENOMEM;
        goto out;
    }
    memcpy(o->out, buf, o->out_len);
    rc = 0;
out:
    gn_free(buf);
    gn_edf_arena_free(tmp);
    return rc;
}

int gni_ergo_open_new(const gni_ergo_open_config *cfg, gn_time now, gni_ergo_open **out)
{
    if (!cfg || !out || !cfg->reg || !gni_ehs_name_valid(cfg->node))
        return GN_EINVAL;
    if (!gn_edf_registry_find(cfg->reg, GN_EDF_ERGO_INTRODUCE, strlen(GN_EDF_ERGO_INTRODUCE)))
        return GN_EINVAL;
    gni_ergo_open *o = gn_calloc(1, sizeof *o);
    if (!o)
        return GN_ENOMEM;
    o->cfg = *cfg;
    gn_time to = cfg->timeout ? cfg->timeout : GNI_ERGO_OPEN_TIMEOUT_DEFAULT;
    o->deadline = now + to;
    int rc = GN_ENOMEM;
    o->arena = gn_edf_arena_new(0, GNI_EHS_ARENA_MAX);
    if (o->arena)
        rc = open_build(o);
    if (rc < 0) {
        gni_ergo_open_free(o);
        return rc;
    }
    *out = o;
    return 0;
}

void gni_ergo_open_free(gni_ergo_open *o)
{
    if (!o)
        return;
    gn_edf_arena_free(o->arena);
    gn_free(o->out);
    gn_free(o->in);
    gn_free(o);
}

static int open_on_intro(gni_ergo_open *o)
{
    size_t used = 0;
    int rc = gni_ehs_parse(o->cfg.reg, o->arena, o->in, o->in_len, false, &o->peer, &used);
    if (rc < 0 || used != o->in_len)
        return open_fail(o, rc < 0 ? rc : GN_EPARSE,
                         "the peer's opening message is not a valid EHS message (%s)",
                         gn_err_name(rc < 0 ? rc : GN_EPARSE));
    const gni_ehs_msg *m = &o->peer;
    if (m->kind != GNI_EHS_INTRODUCE)
        return open_fail(o, GN_EHANDSHAKE,
                         "the peer sent EHS message kind %d where /golem/ergo/1.0.0 "
                         "expects an Introduce (no Hello, Join or Accept on a channel)",
                         (int)m->kind);
    if (!gni_ehs_name_valid(m->node))
        return open_fail(o, GN_EHANDSHAKE, "the peer introduced an invalid node name");
    if (sl_eq(m->node, o->cfg.node))
        return open_fail(o, GN_EHANDSHAKE, "the peer introduced itself with our own node name");
    if (o->cfg.expect_peer.len && !sl_eq(m->node, o->cfg.expect_peer))
        return open_fail(o, GN_EHANDSHAKE, "the peer is %.*s, not the node %.*s we opened to",
                         (int)(m->node.len > 64 ? 64 : m->node.len), (const char *)m->node.base,
                         (int)(o->cfg.expect_peer.len > 64 ? 64 : o->cfg.expect_peer.len),
                         (const char *)o->cfg.expect_peer.base);
    gni_ergo_open_result *r = &o->res;
    r->peer_node = m->node;
    memcpy(r->peer_version, m->version, sizeof r->peer_version);
    r->peer_flags = (m->flags & GNI_EHS_FLAG_ENABLE) ? m->flags : 0;
    r->peer_creation = m->creation;
    r->peer_max_message_size = (uint64_t)m->max_message_size;
    o->done = true;
    o->deadline = GN_TIME_INFINITY;
    return 0;
}

int gni_ergo_open_feed(gni_ergo_open *o, const uint8_t *in, size_t len, size_t *consumed,
                       gn_time now)
{
    if (consumed)
        *consumed = 0;
    if (!o || (!in && len))
        return GN_EINVAL;
    if (o->err)
        return o->err;
    if (o->done)
        return 0;
    if (now >= o->deadline)
        return open_fail(o, GN_ETIMEDOUT, "no Introduce from the peer within the deadline");
    size_t used = 0;
    /* bounded: each pass takes bytes; at most two passes (header, then body) */
    while (used < len && !o->done) {
        size_t want = GNI_EHS_HEADER_LEN;
        if (o->in_len >= GNI_EHS_HEADER_LEN) {
            uint32_t blen = gni_enp_get32(o->in + 2);
            want += blen;
        }
        if (o->in_cap < want) {
            uint8_t *p = gn_realloc(o->in, want);
            if (!p)
                return open_fail(o, GN_ENOMEM, "out of memory");
            o->in = p;
            o->in_cap = want;
        }
        size_t take = want - o->in_len;
        if (take > len - used)
            take = len - used;
        memcpy(o->in + o->in_len, in + used, take);
        o->in_len += take;
        used += take;
        if (o->in_len == GNI_EHS_HEADER_LEN) {
            /* check the header before the body may be collected */
            if (o->in[0] != GNI_EHS_MAGIC || o->in[1] != GNI_EHS_VERSION)
                return open_fail(o, GN_EBADFRAME,
                                 "the peer's opening message has magic %u version %u, "
                                 "want 87 1 (EHS)",
                                 o->in[0], o->in[1]);
            uint32_t blen = gni_enp_get32(o->in + 2);
            if (blen > GNI_EHS_BODY_MAX)
                return open_fail(o, GN_EFRAMESIZE,
                                 "the peer's Introduce body is %u bytes, limit 65535", blen);
            if (blen > 0)
                continue;
        }
        if (o->in_len >= GNI_EHS_HEADER_LEN &&
            o->in_len == GNI_EHS_HEADER_LEN + gni_enp_get32(o->in + 2)) {
            int rc = open_on_intro(o);
            if (rc < 0) {
                if (consumed)
                    *consumed = used;
                return rc;
            }
        }
    }
    if (consumed)
        *consumed = used;
    return 0;
}

size_t gni_ergo_open_drain(gni_ergo_open *o, gn_buf *out)
{
    if (!o || !out)
        return 0;
    size_t n = o->out_len - o->out_pos;
    if (n > gn_buf_left(out))
        n = gn_buf_left(out);
    memcpy(out->last, o->out + o->out_pos, n);
    out->last += n;
    o->out_pos += n;
    return n;
}

size_t gni_ergo_open_pending(const gni_ergo_open *o) { return o ? o->out_len - o->out_pos : 0; }

int gni_ergo_open_eof(gni_ergo_open *o)
{
    if (!o)
        return GN_EINVAL;
    if (o->done || o->err)
        return o->err;
    return open_fail(o, GN_EEOF, "the peer closed the stream before its Introduce");
}

gn_time gni_ergo_open_deadline(const gni_ergo_open *o)
{
    return o && !o->done && !o->err ? o->deadline : GN_TIME_INFINITY;
}

int gni_ergo_open_expire(gni_ergo_open *o, gn_time now)
{
    if (!o)
        return GN_EINVAL;
    if (o->done || o->err || now < o->deadline)
        return o->err;
    return open_fail(o, GN_ETIMEDOUT, "no Introduce from the peer within the deadline");
}

bool gni_ergo_open_done(const gni_ergo_open *o) { return o && o->done && !o->err; }

int gni_ergo_open_error(const gni_ergo_open *o) { return o ? o->err : GN_EINVAL; }

const char *gni_ergo_open_diag(const gni_ergo_open *o) { return o ? o->diag : ""; }

const gni_ergo_open_result *gni_ergo_open_result_get(const gni_ergo_open *o)
{
    return gni_ergo_open_done(o) ? &o->res : NULL;
}

int gni_ergo_open_peer_dict(const gni_ergo_open *o, gn_edf_dict *d)
{
    if (!o || !d)
        return GN_EINVAL;
    if (!gni_ergo_open_done(o))
        return GN_ESTATE;
    return gni_ehs_intro_caches_to_dict(&o->peer, d);
}
