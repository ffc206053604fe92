/*
 * Fuzz target: the sans-I/O /dnsaddr walk (core/dnsaddr.c). The input is
 * lines: the first is the /dnsaddr address to resolve (a default one when
 * it does not parse as one); the rest are TXT strings, fed in order to the
 * queries the walk asks for, up to a '\0'-only line ("\n\n") that ends one
 * query's answer; a line "!" fails the query instead. Invariants (abort()
 * on violation): bounds on lookups, depth and results hold, every name is
 * queried once, every result is a valid multiaddr that ends with the
 * target's suffix, and /dns* substitution of each works or refuses cleanly.
 */
#include "golemnet/err.h"
#include "golemnet/multiaddr.h"
#include "gni_dnsaddr.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    const char *nl = memchr(p, '\n', size);
    size_t first = nl ? (size_t)(nl - p) : size;
    char tgt[512];
    gn_multiaddr *t = NULL;
    if (first < sizeof tgt) {
        memcpy(tgt, p, first);
        tgt[first] = '\0';
        if (gn_multiaddr_parse(tgt, &t) == 0) {
            gn_ma_component c;
            if (gn_multiaddr_component(t, 0, &c) < 0 || c.code != GN_MA_DNSADDR) {
                gn_multiaddr_free(t);
                t = NULL;
            }
        }
    }
    if (t == NULL && gn_multiaddr_parse("/dnsaddr/a.test", &t) != 0)
        abort();
    p = nl ? nl + 1 : end;
    gni_dnsaddr_limits lim = {2, 6, 5};
    gni_dnsaddr w;
    if (gni_dnsaddr_init(&w, t, &lim) != 0)
        abort();
    const char *name;
    uint32_t id;
    size_t rounds = 0;
    while (gni_dnsaddr_next(&w, &name, &id) == 1) {
        if (++rounds > lim.max_lookups)
            abort();
        gn_slice txt[32];
        size_t n = 0;
        int status = 0;
        while (p < end) {
            const char *e = memchr(p, '\n', (size_t)(end - p));
            size_t len = e ? (size_t)(e - p) : (size_t)(end - p);
            const char *line = p;
            p = e ? e + 1 : end;
            if (len == 0)
                break;
            if (len == 1 && line[0] == '!') {
                status = GN_ETIMEDOUT;
                continue;
            }
            if (n < 32)
                txt[n++] = gn_slice_of(line, len);
        }
        if (gni_dnsaddr_feed(&w, id, status, txt, n) != 0)
            abort();
        if (gni_dnsaddr_feed(&w, id, 0, NULL, 0) != GN_EINVAL)
            abort();
    }
    if (!gni_dnsaddr_done(&w) || w.nq > lim.max_lookups || w.nres > lim.max_results)
        abort();
    for (size_t i = 0; i < w.nq; i++) {
        if (w.q[i].depth > lim.max_depth)
            abort();
        for (size_t j = 0; j < i; j++)
            if (strcmp(w.q[i].name, w.q[j].name) == 0 && gn_multiaddr_equal(w.q[i].ma, w.q[j].ma))
                abort(); /* one query per name and suffix */
    }
    gn_multiaddr *res[8];
    size_t n = gni_dnsaddr_take(&w, res, 8);
    size_t tc = gn_multiaddr_count(t);
    static const uint8_t ip[4] = {127, 0, 0, 1};
    for (size_t i = 0; i < n; i++) {
        size_t rc = gn_multiaddr_count(res[i]);
        gn_ma_component a, b;
        if (rc + 1 < tc)
            abort();
        for (size_t k = 1; k < tc; k++) {
            if (gn_multiaddr_component(t, k, &a) != 0 ||
                gn_multiaddr_component(res[i], rc - (tc - k), &b) != 0 || a.code != b.code ||
                a.value_len != b.value_len ||
                (a.value_len > 0 && memcmp(a.value, b.value, a.value_len) != 0))
                abort(); /* every result ends with the target's suffix, values too */
        }
        gn_multiaddr *s = NULL;
        int r = gni_dns_substitute(res[i], ip, 4, &s);
        if (r != 0 && r != GN_EINVAL && r != GN_ETOOBIG)
            abort();
        gn_multiaddr_free(s);
        gn_multiaddr_free(res[i]);
    }
    gni_dnsaddr_fini(&w);
    gn_multiaddr_free(t);
    return 0;
}
