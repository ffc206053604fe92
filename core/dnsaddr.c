/*
 * golemnet - /dnsaddr walk and /dns* substitution (sans-I/O).
 *
 * Spec: multiformats/multiaddr protocols/DNSADDR.md. Contract and bounds:
 * core/gni_dnsaddr.h. Choices where the spec is silent: a name is queried
 * at most once per walk and suffix (loops end there), results are deduplicated by
 * binary form, and TXT strings are compared after joining a record's
 * character-strings (RFC 1035 section 3.3.14 allows several per record).
 */
#include "gni_dnsaddr.h"

#include "golemnet/err.h"
#include "golemnet/multiformats.h"
#include "gni.h"

#include <string.h>

int gni_dnsaddr_init(gni_dnsaddr *w, const gn_multiaddr *target, const gni_dnsaddr_limits *lim)
{
    if (w == NULL)
        return GN_EINVAL;
    memset(w, 0, sizeof *w);
    w->lim.max_depth = 4;
    w->lim.max_lookups = 32;
    w->lim.max_results = 32;
    if (lim != NULL) {
        w->lim = *lim;
        if (w->lim.max_depth > GNI_DNSADDR_MAX_DEPTH)
            w->lim.max_depth = GNI_DNSADDR_MAX_DEPTH;
        if (w->lim.max_lookups == 0 || w->lim.max_lookups > GNI_DNSADDR_MAX_LOOKUPS)
            w->lim.max_lookups = w->lim.max_lookups ? GNI_DNSADDR_MAX_LOOKUPS : 1;
        if (w->lim.max_results == 0 || w->lim.max_results > GNI_DNSADDR_MAX_RESULTS)
            w->lim.max_results = w->lim.max_results ? GNI_DNSADDR_MAX_RESULTS : 1;
    }
    gn_ma_component c;
    if (target == NULL || gn_multiaddr_component(target, 0, &c) < 0 || c.code != GN_MA_DNSADDR)
        return GN_EINVAL;
    gni_dnsaddr_query *q = &w->q[0];
    memcpy(q->name, "_dnsaddr.", 9);
    memcpy(q->name + 9, c.value, c.value_len); /* <= 255 bytes: multiaddr rule */
    q->name[9 + c.value_len] = '\0';
    if (gn_multiaddr_dup(target, &q->ma) < 0)
        return GN_ENOMEM;
    w->nq = 1;
    return 0;
}

void gni_dnsaddr_fini(gni_dnsaddr *w)
{
    if (w == NULL)
        return;
    for (size_t i = 0; i < w->nq; i++) {
        gn_multiaddr_free(w->q[i].ma);
        w->q[i].ma = NULL;
    }
    for (size_t i = 0; i < w->nres; i++) {
        gn_multiaddr_free(w->res[i]);
        w->res[i] = NULL;
    }
    w->nq = w->nres = 0;
}

int gni_dnsaddr_next(gni_dnsaddr *w, const char **name, uint32_t *id)
{
    for (size_t i = 0; w && i < w->nq; i++) {
        if (!w->q[i].sent) {
            w->q[i].sent = true;
            *name = w->q[i].name;
            *id = (uint32_t)i;
            return 1;
        }
    }
    return 0;
}

bool gni_dnsaddr_done(const gni_dnsaddr *w)
{
    for (size_t i = 0; w && i < w->nq; i++)
        if (!w->q[i].done)
            return false;
    return true;
}

/*
 * True when @e ends with the components of @base after its first one, with
 * at least one component of its own before them: an entry that is only the
 * suffix (/dnsaddr/b under /dnsaddr/a/dnsaddr/b) would become a nested
 * lookup with no suffix left to filter by (found by fuzz_dnsaddr).
 */
static bool da_suffix_matches(const gn_multiaddr *base, const gn_multiaddr *e)
{
    size_t nb = gn_multiaddr_count(base), ne = gn_multiaddr_count(e);
    if (ne < nb)
        return false;
    for (size_t k = 1; k < nb; k++) {
        gn_ma_component cb, ce;
        if (gn_multiaddr_component(base, k, &cb) < 0 ||
            gn_multiaddr_component(e, ne - (nb - k), &ce) < 0)
            return false;
        if (cb.code != ce.code || cb.value_len != ce.value_len ||
            (cb.value_len && memcmp(cb.value, ce.value, cb.value_len) != 0))
            return false;
    }
    return true;
}

/* One TXT string of the lookup @q (depth @depth). */
static int da_entry(gni_dnsaddr *w, const gn_multiaddr *base, uint32_t depth, gn_slice txt)
{
    static const char prefix[] = "dnsaddr=";
    char buf[GNI_DNSADDR_TXT_MAX];
    const size_t plen = sizeof prefix - 1;
    if (txt.len <= plen || txt.len - plen >= sizeof buf || memcmp(txt.base, prefix, plen) != 0) {
        w->skipped++;
        return 0;
    }
    memcpy(buf, (const uint8_t *)txt.base + plen, txt.len - plen);
    buf[txt.len - plen] = '\0';
    if (strlen(buf) != txt.len - plen) { /* a NUL inside */
        w->skipped++;
        return 0;
    }
    gn_multiaddr *e = NULL;
    int rc = gn_multiaddr_parse(buf, &e);
    if (rc == GN_ENOMEM)
        return rc;
    if (rc < 0 || !da_suffix_matches(base, e)) {
        w->skipped++;
        gn_multiaddr_free(e);
        return 0;
    }
    gn_ma_component c;
    if (gn_multiaddr_component(e, 0, &c) == 0 && c.code == GN_MA_DNSADDR) {
        /* nested: queue it once per name and suffix, within the bounds
         * (/dnsaddr/x/p2p/A and /dnsaddr/x/p2p/B both query _dnsaddr.x,
         * each keeping its own peer's entries) */
        char name[GNI_DNSADDR_NAME_MAX];
        memcpy(name, "_dnsaddr.", 9);
        memcpy(name + 9, c.value, c.value_len);
        name[9 + c.value_len] = '\0';
        for (size_t i = 0; i < w->nq; i++) {
            if (strcmp(w->q[i].name, name) == 0 && gn_multiaddr_equal(w->q[i].ma, e)) {
                w->repeated++;
                gn_multiaddr_free(e);
                return 0;
            }
        }
        if (depth + 1 > w->lim.max_depth || w->nq >= w->lim.max_lookups) {
            w->dropped++;
            gn_multiaddr_free(e);
            return 0;
        }
        gni_dnsaddr_query *q = &w->q[w->nq++];
        memset(q, 0, sizeof *q);
        memcpy(q->name, name, sizeof name);
        q->ma = e;
        q->depth = depth + 1;
        return 0;
    }
    for (size_t i = 0; i < w->nres; i++) {
        if (gn_multiaddr_equal(w->res[i], e)) {
            gn_multiaddr_free(e);
            return 0;
        }
    }
    if (w->nres >= w->lim.max_results) {
        w->dropped++;
        gn_multiaddr_free(e);
        return 0;
    }
    w->res[w->nres++] = e;
    return 0;
}

int gni_dnsaddr_feed(gni_dnsaddr *w, uint32_t id, int status, const gn_slice *txt, size_t n)
{
    if (w == NULL || id >= w->nq || !w->q[id].sent || w->q[id].done || (n > 0 && txt == NULL))
        return GN_EINVAL;
    gni_dnsaddr_query *q = &w->q[id];
    q->done = true;
    if (status < 0) {
        if (w->first_err == 0) {
            w->first_err = status;
            memcpy(w->first_err_name, q->name, sizeof q->name);
        }
        return 0;
    }
    /* @q may move? No: q[] is a fixed array; entries are only appended. */
    const gn_multiaddr *base = q->ma;
    uint32_t depth = q->depth;
    for (size_t i = 0; i < n; i++) {
        int rc = da_entry(w, base, depth, txt[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

size_t gni_dnsaddr_take(gni_dnsaddr *w, gn_multiaddr **out, size_t cap)
{
    size_t k = 0;
    for (; w && k < w->nres && k < cap; k++) {
        out[k] = w->res[k];
        w->res[k] = NULL;
    }
    for (size_t i = k; w && i < w->nres; i++) { /* beyond @cap: dropped */
        gn_multiaddr_free(w->res[i]);
        w->res[i] = NULL;
    }
    if (w)
        w->nres = 0;
    return k;
}

int gni_dns_substitute(const gn_multiaddr *ma, const uint8_t *ip, size_t ip_len,
                       gn_multiaddr **out)
{
    gn_ma_component c;
    if (ma == NULL || ip == NULL || out == NULL || (ip_len != 4 && ip_len != 16) ||
        gn_multiaddr_component(ma, 0, &c) < 0 ||
        (c.code != GN_MA_DNS && c.code != GN_MA_DNS4 && c.code != GN_MA_DNS6))
        return GN_EINVAL;
    /* built as binary: <code><value>... */
    uint8_t b[GN_MA_MAX_BYTES];
    size_t o = 0;
    const char *host = (const char *)c.value;
    size_t host_len = c.value_len;
    b[o++] = ip_len == 4 ? GN_MA_IP4 : GN_MA_IP6;
    memcpy(b + o, ip, ip_len);
    o += ip_len;
    size_t cnt = gn_multiaddr_count(ma);
#define DA_PUT_CODE(code)                                                                    \
    do {                                                                                     \
        int n_ = gn_varint_encode((code), b + o, sizeof b - o);                              \
        if (n_ < 0)                                                                          \
            return GN_ETOOBIG;                                                               \
        o += (size_t)n_;                                                                     \
    } while (0)
#define DA_PUT_BYTES(p, len)                                                                 \
    do {                                                                                     \
        if ((len) > sizeof b - o)                                                            \
            return GN_ETOOBIG;                                                               \
        memcpy(b + o, (p), (len));                                                           \
        o += (len);                                                                          \
    } while (0)
#define DA_PUT_SNI()                                                                         \
    do {                                                                                     \
        DA_PUT_CODE(GN_MA_SNI);                                                              \
        DA_PUT_CODE(host_len);                                                               \
        DA_PUT_BYTES(host, host_len);                                                        \
    } while (0)
    /* component i spans from the end of component i-1 to the end of its value */
    gn_slice all = gn_multiaddr_bytes(ma);
    const uint8_t *base = all.base;
    size_t prev_end = (size_t)(c.value + c.value_len - base);
    for (size_t i = 1; i < cnt; i++) {
        gn_ma_component k, next;
        if (gn_multiaddr_component(ma, i, &k) < 0)
            return GN_EINTERNAL;
        /* (value points just past the code, or the length, even when empty) */
        size_t end = (size_t)(k.value + k.value_len - base);
        bool next_is_sni = i + 1 < cnt && gn_multiaddr_component(ma, i + 1, &next) == 0 &&
                           next.code == GN_MA_SNI;
        if (k.code == GN_MA_WSS) {
            DA_PUT_CODE(GN_MA_TLS);
            DA_PUT_SNI();
            DA_PUT_CODE(GN_MA_WS);
        } else {
            DA_PUT_BYTES(base + prev_end, end - prev_end);
            if (k.code == GN_MA_TLS && !next_is_sni)
                DA_PUT_SNI();
        }
        prev_end = end;
    }
#undef DA_PUT_CODE
#undef DA_PUT_BYTES
#undef DA_PUT_SNI
    return gn_multiaddr_from_bytes(b, o, out);
}
