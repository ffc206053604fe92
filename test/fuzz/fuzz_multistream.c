/*
 * Fuzz target: multistream-select core (protocols/multistream/).
 *
 * Input layout: byte 0 = option bits, byte 1 = max_msg_len selector, the
 * rest is what the peer sends. The same bytes go to an initiator and to a
 * responder, fed in chunks whose size the option bits pick; pending output
 * is drained in small pieces between feeds. Invariants are checked with
 * abort() so libFuzzer (or the standalone replayer) reports them; an
 * allocator hook aborts on any single allocation or live total above
 * FUZZ_MAX_LIVE, which catches peer-sized allocations.
 *
 *   bit 0  lazy (initiator)       bit 1  request_ls (initiator)
 *   bit 2  answer_ls (responder)  bit 3  match callback (responder)
 *   bit 4  timeout + expiry       bits 5-7 chunk size selector
 */
#include "multistream.h"

#include "golemnet/err.h"
#include "golemnet/log.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_LIVE (512u * 1024u)

/* Harness-only state: the allocator hook needs a counter. */
static size_t fuzz_live;

static void *fz_malloc(void *ud, size_t n)
{
    (void)ud;
    if (n > FUZZ_MAX_LIVE || fuzz_live + n > FUZZ_MAX_LIVE) {
        abort();
    }
    size_t *p = malloc(n + sizeof(size_t) * 2);
    if (!p) {
        return NULL;
    }
    p[0] = n;
    fuzz_live += n;
    return p + 2;
}

static void fz_free(void *ud, void *ptr)
{
    (void)ud;
    if (ptr) {
        size_t *p = (size_t *)ptr - 2;
        fuzz_live -= p[0];
        free(p);
    }
}

static void *fz_realloc(void *ud, void *ptr, size_t n)
{
    if (!ptr) {
        return fz_malloc(ud, n);
    }
    size_t *p = (size_t *)ptr - 2;
    size_t old = p[0];
    if (n > FUZZ_MAX_LIVE || fuzz_live - old + n > FUZZ_MAX_LIVE) {
        abort();
    }
    size_t *q = realloc(p, n + sizeof(size_t) * 2);
    if (!q) {
        return NULL;
    }
    q[0] = n;
    fuzz_live = fuzz_live - old + n;
    return q + 2;
}

static int fz_match(void *ud, const char *proto, size_t len)
{
    (void)ud;
    if (strlen(proto) != len || len == 0 || memchr(proto, '\n', len)) {
        abort();
    }
    if (len >= 4 && memcmp(proto, "/bad", 4) == 0) {
        return -1;
    }
    return proto[len - 1] == '1' ? 1 : 0;
}

static void drain_some(gni_ms *ms)
{
    uint8_t out[97];
    for (int guard = 0; guard < 100000; guard++) {
        size_t before = gni_ms_pending(ms);
        if (before == 0) {
            return;
        }
        gn_buf b;
        gn_buf_init(&b, out, sizeof out);
        int n = gni_ms_drain(ms, &b);
        if (n <= 0 || (size_t)n > sizeof out || gni_ms_pending(ms) != before - (size_t)n) {
            abort();
        }
    }
    abort();
}

static void run_one(gni_ms_role role, uint8_t flags, size_t max_msg, const uint8_t *in,
                    size_t len)
{
    static const char *const protos[] = {"/yamux/1.0.0", "/mplex/6.7.0", "/noise", "/p1"};
    static const size_t chunks[] = {1, 2, 3, 7, 16, 64, 512, (size_t)-1};
    gni_ms_config cfg;
    gni_ms_config_default(&cfg, role);
    cfg.protocols = protos;
    cfg.protocol_cnt = 4;
    cfg.max_msg_len = max_msg;
    cfg.max_rounds = 8;
    cfg.lazy = flags & 1;
    cfg.request_ls = flags & 2;
    if (role == GNI_MS_INITIATOR && cfg.request_ls && (flags & 8)) {
        cfg.protocol_cnt = 0; /* ls-only query */
    }
    cfg.answer_ls = flags & 4;
    if (flags & 8) {
        cfg.match = fz_match;
    }
    if (flags & 16) {
        cfg.timeout = 1000;
    }
    gni_ms *ms = NULL;
    int rc = gni_ms_new(&cfg, 0, &ms);
    if (rc < 0) {
        if (rc != GN_ENOMEM) {
            abort();
        }
        return;
    }
    size_t chunk = chunks[flags >> 5];
    size_t off = 0;
    gn_time now = 0;
    while (off < len) {
        size_t n = len - off < chunk ? len - off : chunk;
        size_t used = (size_t)-7;
        rc = gni_ms_feed(ms, in + off, n, &used);
        gni_ms_status st = gni_ms_get_status(ms);
        if (rc < 0) {
            if (used != (size_t)-7 || st != GNI_MS_FAILED || gni_ms_get_error(ms) != rc) {
                abort();
            }
            /* Peer input yields only these codes. */
            if (rc != GN_EPROTO && rc != GN_EFRAMESIZE && rc != GN_ENEGOTIATION &&
                rc != GN_ECALLBACK && rc != GN_ENOMEM) {
                abort();
            }
            break;
        }
        if (used > n) {
            abort();
        }
        off += used;
        if (used < n && st != GNI_MS_SELECTED && st != GNI_MS_LISTED) {
            abort();
        }
        if (st == GNI_MS_SELECTED || st == GNI_MS_OPTIMISTIC) {
            const char *p = gni_ms_get_protocol(ms);
            int idx = gni_ms_get_index(ms);
            if (!p || (idx >= 0 && strcmp(p, protos[idx]) != 0)) {
                abort();
            }
            if (role == GNI_MS_INITIATOR && idx < 0) {
                abort();
            }
        }
        drain_some(ms);
        if (st == GNI_MS_SELECTED || st == GNI_MS_LISTED) {
            break;
        }
        if (flags & 16) {
            now += 100;
            if (gni_ms_expire(ms, now) < 0) {
                if (gni_ms_get_error(ms) != GN_ETIMEDOUT) {
                    abort();
                }
                break;
            }
        }
    }
    size_t cnt = gni_ms_ls_count(ms);
    if (cnt > max_msg / 3) {
        abort();
    }
    for (size_t i = 0; i < cnt; i++) {
        gn_slice s;
        if (gni_ms_ls_get(ms, i, &s) != 0 || s.len == 0 || memchr(s.base, '\n', s.len)) {
            abort();
        }
    }
    (void)gni_ms_feed_eof(ms);
    drain_some(ms);
    gni_ms_free(ms);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool installed;
    if (!installed) {
        static const gn_allocator a = {fz_malloc, fz_realloc, fz_free, NULL};
        gn_set_allocator(&a);
        installed = true;
    }
    if (size < 2) {
        return 0;
    }
    uint8_t flags = data[0];
    size_t max_msg = data[1] == 0 ? GNI_MS_DEFAULT_MAX_MSG_LEN
                                  : GNI_MS_MIN_MAX_MSG_LEN + (size_t)data[1] * 4u;
    run_one(GNI_MS_INITIATOR, flags, max_msg, data + 2, size - 2);
    run_one(GNI_MS_RESPONDER, flags, max_msg, data + 2, size - 2);
    if (fuzz_live != 0) {
        abort(); /* leak */
    }
    return 0;
}
