/*
 * Fuzz target: the Kademlia routing table (layers/routing/kad/kad_table.c).
 * The first bytes pick a small configuration (k, replacement cache, total
 * bound, addresses per entry) so buckets fill; the rest is a sequence of
 * operations on a pool of 48 peers (some forced into low buckets): add (with
 * addresses and flags), liveness-check results, failures, removals,
 * closest() and refresh queries, each followed by a full invariant check.
 * Violations abort().
 */
#include "golemnet/err.h"
#include "golemnet/multiaddr.h"

#include "kad_table.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* abort() with the violated line on stderr (the compiler merges bare aborts) */
#define FZ_FAIL()                                                                            \
    do {                                                                                     \
        fprintf(stderr, "fuzz_kad_table: invariant at line %d\n", __LINE__);                \
        abort();                                                                             \
    } while (0)

enum { POOL = 48, NADDR = 3, MAX_OPS = 2000 };

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

/* Pool peer @i: a sha2-256-multihash-shaped ID derived from @i and @salt. */
static void fz_peer(unsigned i, uint8_t salt, gn_peer_id *out)
{
    memset(out, 0, sizeof *out);
    out->len = 34;
    out->bytes[0] = 0x12;
    out->bytes[1] = 0x20;
    for (unsigned j = 0; j < 32; j++) {
        out->bytes[2 + j] = (uint8_t)(i * 131u + j * 7u + salt);
    }
}

static void fz_check(const gni_kad_table *t, const gni_kad_table_config *cfg)
{
    size_t live = 0, total = 0;
    for (unsigned b = 0; b < GNI_KAD_BUCKETS; b++) {
        size_t n = gni_kad_table_bucket_count(t, b), c = gni_kad_table_cached_count(t, b);
        if (n > cfg->k || c > cfg->replacement_cnt) {
            FZ_FAIL();
        }
        if (c > 0 && n < cfg->k) {
            FZ_FAIL(); /* a candidate waits only while its bucket is full */
        }
        size_t checking = 0;
        for (size_t i = 0; i < n; i++) {
            const gni_kad_entry *e = gni_kad_table_bucket_entry(t, b, i);
            gni_kad_key key;
            gni_kad_key_from_peer(&e->id, &key);
            if (memcmp(key.b, e->key.b, sizeof key.b) != 0 || gni_kad_table_cpl(t, &key) != b ||
                e->naddrs > cfg->max_addrs || gni_kad_table_find(t, &e->id) != e) {
                FZ_FAIL();
            }
            checking += e->checking;
        }
        if (checking > 1 || gni_kad_table_bucket_entry(t, b, n) != NULL) {
            FZ_FAIL();
        }
        live += n;
        total += n + c;
    }
    if (live != gni_kad_table_count(t) || total > cfg->max_entries) {
        FZ_FAIL();
    }
}

static void fz_closest(const gni_kad_table *t, const gni_kad_key *target, size_t n)
{
    const gni_kad_entry *out[POOL + 8];
    size_t cnt = gni_kad_table_closest(t, target, n, out);
    size_t live = gni_kad_table_count(t);
    if (cnt != (n < live ? n : live)) {
        FZ_FAIL();
    }
    for (size_t i = 0; i < cnt; i++) {
        if (gni_kad_table_find(t, &out[i]->id) != out[i]) {
            FZ_FAIL();
        }
        if (i > 0 && gni_kad_cmp_distance(target, &out[i - 1]->key, &out[i]->key) >= 0) {
            FZ_FAIL();
        }
    }
    /* nothing left out is closer than the farthest returned */
    if (cnt > 0 && cnt < live) {
        for (unsigned b = 0; b < GNI_KAD_BUCKETS; b++) {
            for (size_t i = 0; i < gni_kad_table_bucket_count(t, b); i++) {
                const gni_kad_entry *e = gni_kad_table_bucket_entry(t, b, i);
                bool in = false;
                for (size_t j = 0; j < cnt && !in; j++) {
                    in = out[j] == e;
                }
                if (!in && gni_kad_cmp_distance(target, &e->key, &out[cnt - 1]->key) < 0) {
                    FZ_FAIL();
                }
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    gni_kad_table_config cfg;
    gni_kad_table_config_default(&cfg);
    cfg.k = 1u + fz_byte(&in) % 6u;
    cfg.replacement_cnt = fz_byte(&in) % 4u;
    cfg.max_entries = 1u + fz_byte(&in) % 40u;
    cfg.max_addrs = fz_byte(&in) % 4u;
    cfg.max_failures = 1u + fz_byte(&in) % 3u;
    cfg.refresh_interval = 100;
    uint8_t salt = fz_byte(&in);

    gn_peer_id self, pool[POOL];
    fz_peer(1000, salt, &self);
    gni_kad_table *t = NULL;
    if (gni_kad_table_new(&cfg, &self, 0, &t) < 0) {
        FZ_FAIL();
    }
    for (unsigned i = 0; i < POOL; i++) {
        fz_peer(i, salt, &pool[i]);
    }
    gn_multiaddr *addrs[NADDR] = {NULL, NULL, NULL};
    const char *astr[NADDR] = {"/ip4/1.2.3.4/tcp/1", "/ip6/::1/tcp/2", "/dns4/x.y/tcp/3"};
    for (int i = 0; i < NADDR; i++) {
        if (gn_multiaddr_parse(astr[i], &addrs[i]) < 0) {
            FZ_FAIL();
        }
    }
    gn_time now = 1;
    for (int op = 0; op < MAX_OPS && in.n > 0; op++) {
        uint8_t code = fz_byte(&in);
        const gn_peer_id *p = &pool[fz_byte(&in) % POOL];
        now += fz_byte(&in);
        int rc = 0;
        switch (code % 7) {
        case 0:
        case 1: {
            uint8_t a = fz_byte(&in);
            gn_peer_id chk;
            size_t na = a % (NADDR + 1);
            unsigned flags = a & 0x8 ? GNI_KAD_F_RESPONDED : 0;
            rc = gni_kad_table_add(t, p, addrs + (a >> 4) % (NADDR - na + 1), na, flags, now,
                                   &chk);
            if (rc == GNI_KAD_ADD_CHECK) {
                const gni_kad_entry *e = gni_kad_table_find(t, &chk);
                if (!e || !e->checking || gni_kad_table_find(t, p) != NULL) {
                    FZ_FAIL();
                }
            } else if (rc == GNI_KAD_ADD_INSERTED || rc == GNI_KAD_ADD_UPDATED) {
                const gni_kad_entry *e = gni_kad_table_find(t, p);
                if (!e || e->last_seen != now) {
                    FZ_FAIL();
                }
            } else if (rc != GNI_KAD_ADD_CACHED && rc != GN_ELIMIT) {
                FZ_FAIL();
            }
            break;
        }
        case 2:
            rc = gni_kad_table_check_result(t, p, code & 0x80, now);
            if (rc == 1 && gni_kad_table_find(t, p) != NULL) {
                FZ_FAIL();
            }
            if (rc != 0 && rc != 1 && rc != GN_ENOTFOUND) {
                FZ_FAIL();
            }
            break;
        case 3:
            rc = gni_kad_table_failure(t, p, now);
            if (rc == 1 && gni_kad_table_find(t, p) != NULL) {
                FZ_FAIL();
            }
            break;
        case 4:
            rc = gni_kad_table_remove(t, p);
            if ((rc == 0 || rc == GN_ENOTFOUND) && gni_kad_table_find(t, p) != NULL) {
                FZ_FAIL();
            }
            break;
        case 5: {
            gni_kad_key target;
            gni_kad_key_from_peer(p, &target);
            if (code & 0x80) {
                target.b[0] ^= fz_byte(&in);
            }
            fz_closest(t, &target, fz_byte(&in) % (POOL + 4));
            break;
        }
        default: {
            unsigned cpls[4];
            size_t due = gni_kad_table_refresh_due(t, now, cpls, 4);
            for (size_t i = 0; i < due && i < 4; i++) {
                if (cpls[i] > GNI_KAD_REFRESH_MAX_CPL) {
                    FZ_FAIL();
                }
                gni_kad_table_refreshed(t, cpls[i], now);
            }
            if (due <= 4 && gni_kad_table_refresh_due(t, now, NULL, 0) != 0) {
                FZ_FAIL();
            }
            break;
        }
        }
        (void)rc;
        fz_check(t, &cfg);
    }
    for (int i = 0; i < NADDR; i++) {
        gn_multiaddr_free(addrs[i]);
    }
    gni_kad_table_free(t);
    return 0;
}
