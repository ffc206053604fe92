/*
 * Fuzz target: the Kademlia record and provider stores
 * (layers/routing/kad/kad_store.c). The first bytes pick small bounds so
 * the stores fill; the rest is a sequence of operations: record puts
 * (remote or local, namespace "t" with a byte-comparing selector, "pk" with
 * arbitrary bytes, unregistered namespaces), gets, removals, expiry; provider
 * adds with addresses, gets, local keys, expiry; the clock moves forward
 * (sometimes back). After every step the bounds and the documented results
 * are checked. Violations abort().
 */
#include "golemnet/err.h"

#include "kad_store.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_FAIL()                                                                            \
    do {                                                                                     \
        fprintf(stderr, "fuzz_kad_store: invariant at line %d\n", __LINE__);                \
        abort();                                                                             \
    } while (0)

enum { MAX_OPS = 3000, KEYS = 12, PEERS = 10, OUT_MAX = 64 };

typedef struct fz_in {
    const uint8_t *p;
    size_t n;
} fz_in;

static uint8_t fz_byte(fz_in *in)
{
    if (in->n == 0) {
        return 0;
    }
    in->n--;
    return *in->p++;
}

/* Up to @max bytes of input (fewer at the end). */
static size_t fz_take(fz_in *in, uint8_t *out, size_t max)
{
    size_t n = max < in->n ? max : in->n;
    memcpy(out, in->p, n);
    in->p += n;
    in->n -= n;
    return n;
}

/* "t": a value is valid when its first byte is odd; the larger second byte wins. */
static int fz_validate(void *arg, const uint8_t *key, size_t klen, const uint8_t *value,
                       size_t vlen)
{
    (void)arg, (void)key, (void)klen;
    return vlen >= 2 && (value[0] & 1) ? 0 : GN_EPARSE;
}

static int fz_select(void *arg, const uint8_t *key, size_t klen, const uint8_t *const *values,
                     const size_t *lens, size_t n)
{
    (void)arg, (void)key, (void)klen, (void)lens;
    size_t best = 0;
    for (size_t i = 1; i < n; i++) {
        if (values[i][1] > values[best][1]) {
            best = i;
        }
    }
    return (int)best;
}

/* Key @i of the pool: mostly "/t/<i>", some "/pk/...", some unregistered. */
static size_t fz_key(unsigned i, uint8_t *out)
{
    if (i % 6 == 5) {
        memcpy(out, "/pk/\x00\x04", 6);
        out[6] = (uint8_t)i;
        memset(out + 7, 1, 3);
        return 10;
    }
    if (i % 6 == 4) {
        memcpy(out, "/zz/", 4);
        out[4] = (uint8_t)i;
        return 5;
    }
    memcpy(out, "/t/", 3);
    out[3] = (uint8_t)('a' + i);
    return 4;
}

static void fz_peer(unsigned i, gn_peer_id *out)
{
    memset(out, 0, sizeof *out);
    out->len = 34;
    out->bytes[0] = 0x12;
    out->bytes[1] = 0x20;
    out->bytes[2] = (uint8_t)i;
}

static void fz_check_records(const gni_kad_records *rs, const gni_kad_records_config *cfg,
                             gn_time now)
{
    size_t cnt = gni_kad_records_count(rs), loc = gni_kad_records_local_count(rs);
    size_t bytes = gni_kad_records_bytes(rs), lbytes = 0;
    if (cnt > cfg->max_records || bytes > cfg->max_bytes || loc > cnt) {
        FZ_FAIL();
    }
    for (size_t i = 0; i < loc; i++) {
        gn_slice k, v, got;
        gn_time at = 0;
        if (gni_kad_records_local_at(rs, i, &k, &v, &at) != 0 || k.len > cfg->max_key_len ||
            v.len > cfg->max_value_len) {
            FZ_FAIL();
        }
        /* local records never expire */
        if (gni_kad_records_get(rs, k.base, k.len, now + cfg->ttl * 4, &got, NULL) != 0 ||
            got.base != v.base || got.len != v.len) {
            FZ_FAIL();
        }
        lbytes += k.len + v.len;
    }
    if (lbytes > bytes || gni_kad_records_local_at(rs, loc, NULL, NULL, NULL) != GN_ENOTFOUND) {
        FZ_FAIL();
    }
}

static void fz_check_providers(const gni_kad_providers *ps, const gni_kad_providers_config *cfg,
                               gn_time now)
{
    size_t total = gni_kad_providers_count(ps), keys = gni_kad_providers_key_count(ps);
    if (total > cfg->max_total || keys > cfg->max_keys || keys > total ||
        gni_kad_providers_local_count(ps) > cfg->max_keys) {
        FZ_FAIL();
    }
    size_t seen = 0;
    for (unsigned i = 0; i < KEYS; i++) {
        uint8_t key[16];
        size_t klen = fz_key(i, key);
        const gni_kad_provider *out[OUT_MAX];
        size_t n = gni_kad_providers_get(ps, key, klen, now, out, OUT_MAX);
        if (n > cfg->max_per_key) {
            FZ_FAIL();
        }
        for (size_t j = 0; j < n; j++) {
            const gni_kad_provider *p = out[j];
            if (p->naddrs > cfg->max_addrs || now >= p->added + cfg->ttl ||
                (j > 0 && out[j - 1]->added < p->added)) {
                FZ_FAIL();
            }
            for (size_t a = 0; a < p->naddrs; a++) {
                if (p->addrs[a].len == 0 || p->addrs[a].len > GNI_KAD_PROV_ADDR_BYTES) {
                    FZ_FAIL();
                }
            }
            for (size_t k = 0; k < j; k++) {
                if (gn_peer_id_equal(&out[k]->id, &p->id)) {
                    FZ_FAIL();
                }
            }
        }
        seen += n;
    }
    if (seen > total) {
        FZ_FAIL();
    }
    gn_time prev = 0;
    for (size_t i = 0; i < gni_kad_providers_local_count(ps); i++) {
        gn_slice k;
        gn_time at;
        if (gni_kad_providers_local_at(ps, i, &k, &at) != 0 || at < prev ||
            k.len > cfg->max_key_len) {
            FZ_FAIL();
        }
        prev = at;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    gni_kad_records_config rc;
    gni_kad_records_config_default(&rc);
    rc.max_records = 1u + fz_byte(&in) % 8u;
    rc.max_bytes = 4u + fz_byte(&in) % 64u;
    rc.max_value_len = 1u + fz_byte(&in) % 24u;
    rc.max_key_len = 4u + fz_byte(&in) % 8u;
    rc.ttl = 1u + fz_byte(&in) % 200u;
    gni_kad_providers_config pc;
    gni_kad_providers_config_default(&pc);
    pc.max_per_key = 1u + fz_byte(&in) % 5u;
    pc.max_keys = 1u + fz_byte(&in) % 6u;
    pc.max_total = 1u + fz_byte(&in) % 16u;
    pc.max_addrs = fz_byte(&in) % (GNI_KAD_PROV_ADDRS_MAX + 1u);
    pc.max_key_len = 4u + fz_byte(&in) % 8u;
    pc.ttl = 1u + fz_byte(&in) % 200u;

    gni_kad_validators *v = NULL;
    gni_kad_records *rs = NULL;
    gni_kad_providers *ps = NULL;
    if (gni_kad_validators_new(&v) != 0 ||
        gni_kad_validators_register(v, "t", fz_validate, fz_select, NULL) != 0 ||
        gni_kad_records_new(&rc, v, &rs) != 0 || gni_kad_providers_new(&pc, &ps) != 0) {
        FZ_FAIL();
    }
    gn_time now = 1;
    for (int op = 0; op < MAX_OPS && in.n > 0; op++) {
        uint8_t code = fz_byte(&in);
        uint8_t key[16];
        size_t klen = fz_key(fz_byte(&in) % KEYS, key);
        uint8_t t = fz_byte(&in);
        gn_time at = now;
        if (t & 0x80) {
            at = now > (t & 0x0f) ? now - (t & 0x0f) : 0; /* a clock going back */
        } else {
            now += t;
            at = now;
        }
        switch (code % 9) {
        case 0:
        case 1:
        case 2: {
            uint8_t val[32];
            size_t want = fz_byte(&in) % (rc.max_value_len + 3u);
            size_t vlen = fz_take(&in, val, want < sizeof val ? want : sizeof val);
            bool local = code & 0x40;
            gni_kad_records_expire(rs, now); /* what the put does first */
            size_t cnt = gni_kad_records_count(rs), bytes = gni_kad_records_bytes(rs);
            gn_slice before;
            bool had = gni_kad_records_get(rs, key, klen, at, &before, NULL) == 0;
            uint8_t prev[32];
            size_t prev_len = had ? before.len : 0;
            if (had) {
                memcpy(prev, before.base, prev_len);
            }
            int r = gni_kad_records_put(rs, key, klen, val, vlen, at, local);
            gn_slice got;
            int g = gni_kad_records_get(rs, key, klen, at, &got, NULL);
            if (r == GNI_KAD_PUT_STORED || r == GNI_KAD_PUT_SAME) {
                if (g != 0 || got.len != vlen || (vlen > 0 && memcmp(got.base, val, vlen) != 0)) {
                    FZ_FAIL();
                }
            } else if (r == GNI_KAD_PUT_KEPT) {
                if (g != 0 || (got.len == vlen && memcmp(got.base, val, vlen) == 0)) {
                    FZ_FAIL();
                }
            } else if (r < 0) {
                if (gni_kad_records_count(rs) != cnt || gni_kad_records_bytes(rs) != bytes) {
                    FZ_FAIL(); /* a refused put changes nothing */
                }
                if (had && (g != 0 || got.len != prev_len ||
                            (prev_len > 0 && memcmp(got.base, prev, prev_len) != 0))) {
                    FZ_FAIL();
                }
                if (r == GN_ELIMIT && !local && had == false && g == 0) {
                    FZ_FAIL();
                }
            } else {
                FZ_FAIL();
            }
            break;
        }
        case 3:
            if (gni_kad_records_remove(rs, key, klen) == 0 &&
                gni_kad_records_get(rs, key, klen, at, NULL, NULL) != GN_ENOTFOUND) {
                FZ_FAIL();
            }
            break;
        case 4: {
            size_t cnt = gni_kad_records_count(rs);
            size_t gone = gni_kad_records_expire(rs, at);
            if (gni_kad_records_count(rs) != cnt - gone ||
                gni_kad_records_next_expiry(rs) <= at) {
                FZ_FAIL();
            }
            gone = gni_kad_providers_expire(ps, at);
            if (gni_kad_providers_next_expiry(ps) <= at) {
                FZ_FAIL();
            }
            (void)gone;
            break;
        }
        case 5:
        case 6: {
            gn_peer_id p;
            fz_peer(fz_byte(&in) % PEERS, &p);
            uint8_t abuf[GNI_KAD_PROV_ADDRS_MAX + 2][8];
            gn_slice addrs[GNI_KAD_PROV_ADDRS_MAX + 2];
            size_t na = fz_byte(&in) % (GNI_KAD_PROV_ADDRS_MAX + 3u);
            for (size_t i = 0; i < na; i++) {
                size_t len = fz_take(&in, abuf[i], fz_byte(&in) % 9u);
                addrs[i] = gn_slice_of(abuf[i], len);
            }
            gni_kad_providers_expire(ps, now); /* what the add does first */
            size_t total = gni_kad_providers_count(ps);
            int r = gni_kad_providers_add(ps, key, klen, &p, addrs, na, at);
            const gni_kad_provider *out[OUT_MAX];
            size_t n = gni_kad_providers_get(ps, key, klen, at, out, OUT_MAX);
            if (r == GNI_KAD_PROV_ADDED || r == GNI_KAD_PROV_REFRESHED ||
                r == GNI_KAD_PROV_REPLACED) {
                if (n == 0 || !gn_peer_id_equal(&out[0]->id, &p) || out[0]->added < at) {
                    FZ_FAIL(); /* the announcement is the newest */
                }
                size_t want = r == GNI_KAD_PROV_ADDED ? total + 1 : total;
                if (gni_kad_providers_count(ps) != want) {
                    FZ_FAIL();
                }
            } else if (r == GN_ELIMIT || r == GN_ETOOBIG) {
                if (gni_kad_providers_count(ps) != total) {
                    FZ_FAIL();
                }
            } else {
                FZ_FAIL();
            }
            break;
        }
        case 7:
            if (code & 0x40) {
                int r = gni_kad_providers_local_remove(ps, key, klen);
                if (r != 0 && r != GN_ENOTFOUND) {
                    FZ_FAIL();
                }
            } else {
                int r = gni_kad_providers_local_add(ps, key, klen, at);
                if (r != GNI_KAD_PROV_ADDED && r != GNI_KAD_PROV_REFRESHED && r != GN_ELIMIT &&
                    r != GN_ETOOBIG) {
                    FZ_FAIL();
                }
            }
            break;
        default: {
            /* validate/select directly on input bytes (pk parser included) */
            uint8_t val[64];
            size_t vlen = fz_take(&in, val, fz_byte(&in) % sizeof val);
            int r = gni_kad_validators_validate(v, key, klen, val, vlen);
            if (r > 0) {
                FZ_FAIL();
            }
            break;
        }
        }
        fz_check_records(rs, &rc, now);
        fz_check_providers(ps, &pc, now);
    }
    gni_kad_providers_free(ps);
    gni_kad_records_free(rs);
    gni_kad_validators_free(v);
    return 0;
}
