/*
 * Kademlia iterative lookup: one array of candidates sorted by XOR distance
 * to the target (binary search by distance finds a peer, since distinct
 * keys have distinct distances), bounded by max_candidates.
 */
#include "kad_lookup.h"

#include "gni.h"

#include <string.h>

enum { CAND_HEARD = 0, CAND_WAITING, CAND_OK, CAND_FAILED };

typedef struct kad_cand {
    gn_peer_id id;
    gni_kad_key key;
    uint8_t state;
    bool timed_out; /* failed by timeout: a late answer is still welcome */
    uint16_t hops;
    gn_time deadline; /* while CAND_WAITING */
} kad_cand;

struct gni_kad_lookup {
    gni_kad_lookup_config cfg;
    gni_kad_key target;
    gn_peer_id self;
    bool has_self;
    kad_cand *c;
    size_t n;
    size_t inflight;
    gn_time query_deadline;
    bool done;
    int status;
    gni_kad_lookup_stats st;
};

void gni_kad_lookup_config_default(gni_kad_lookup_config *cfg)
{
    cfg->k = GNI_KAD_LOOKUP_K_DEFAULT;
    cfg->alpha = GNI_KAD_ALPHA_DEFAULT;
    cfg->max_candidates = GNI_KAD_CANDIDATES_DEFAULT;
    cfg->request_timeout = GNI_KAD_REQUEST_TIMEOUT_DEFAULT;
    cfg->query_timeout = GNI_KAD_QUERY_TIMEOUT_DEFAULT;
}

int gni_kad_lookup_new(const gni_kad_lookup_config *cfg, const gni_kad_key *target,
                       const gn_peer_id *self, gn_time now, gni_kad_lookup **out)
{
    gni_kad_lookup_config c;
    if (!target || !out) {
        return GN_EINVAL;
    }
    if (cfg) {
        c = *cfg;
    } else {
        gni_kad_lookup_config_default(&c);
    }
    if (c.k == 0 || c.alpha == 0 || c.max_candidates < c.k ||
        c.max_candidates > GNI_KAD_CANDIDATES_MAX || c.request_timeout == 0 ||
        c.query_timeout == 0) {
        return GN_EINVAL;
    }
    gni_kad_lookup *l = gn_calloc(1, sizeof *l);
    if (!l) {
        return GN_ENOMEM;
    }
    l->c = gn_calloc(c.max_candidates, sizeof *l->c);
    if (!l->c) {
        gn_free(l);
        return GN_ENOMEM;
    }
    l->cfg = c;
    l->target = *target;
    if (self && self->len > 0) {
        l->self = *self;
        l->has_self = true;
    }
    l->query_deadline =
        now > GN_TIME_INFINITY - c.query_timeout ? GN_TIME_INFINITY : now + c.query_timeout;
    l->status = GN_EAGAIN;
    *out = l;
    return 0;
}

void gni_kad_lookup_free(gni_kad_lookup *l)
{
    if (!l) {
        return;
    }
    gn_free(l->c);
    gn_free(l);
}

/* First index whose distance is not below @key's; *found when it is @key. */
static size_t kad_search(const gni_kad_lookup *l, const gni_kad_key *key, bool *found)
{
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (gni_kad_cmp_distance(&l->target, &l->c[mid].key, key) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *found = lo < l->n && memcmp(l->c[lo].key.b, key->b, GNI_KAD_KEY_BYTES) == 0;
    return lo;
}

static kad_cand *kad_find(gni_kad_lookup *l, const gn_peer_id *id)
{
    gni_kad_key key;
    bool found;
    gni_kad_key_from_peer(id, &key);
    size_t i = kad_search(l, &key, &found);
    return found && gn_peer_id_equal(&l->c[i].id, id) ? &l->c[i] : NULL;
}

/* Adds @id as heard of; returns true when it was added. */
static bool kad_add(gni_kad_lookup *l, const gn_peer_id *id, uint16_t hops)
{
    if (id->len == 0 || id->len > GN_PEER_ID_MAX_BYTES ||
        (l->has_self && gn_peer_id_equal(id, &l->self))) {
        return false;
    }
    gni_kad_key key;
    bool found;
    gni_kad_key_from_peer(id, &key);
    size_t pos = kad_search(l, &key, &found);
    if (found) {
        return false;
    }
    if (l->n == l->cfg.max_candidates) {
        /* displace the farthest never-queried candidate, if farther than @id */
        size_t f = l->n;
        while (f > pos && l->c[f - 1].state != CAND_HEARD) {
            f--;
        }
        l->st.dropped++;
        if (f == pos) {
            return false;
        }
        f--;
        memmove(&l->c[f], &l->c[f + 1], (l->n - f - 1) * sizeof *l->c);
        l->n--;
    }
    memmove(&l->c[pos + 1], &l->c[pos], (l->n - pos) * sizeof *l->c);
    kad_cand *c = &l->c[pos];
    memset(c, 0, sizeof *c);
    c->id = *id;
    c->key = key;
    c->state = CAND_HEARD;
    c->hops = hops;
    l->n++;
    return true;
}

static void kad_finish(gni_kad_lookup *l, int status)
{
    l->done = true;
    l->status = status;
}

/* Ends the lookup when the k closest not-failed candidates have all answered. */
static void kad_check_done(gni_kad_lookup *l)
{
    if (l->done) {
        return;
    }
    size_t cnt = 0, ok = 0;
    for (size_t i = 0; i < l->n && cnt < l->cfg.k; i++) {
        switch (l->c[i].state) {
        case CAND_FAILED:
            continue;
        case CAND_OK:
            ok++;
            cnt++;
            break;
        default:
            return;
        }
    }
    kad_finish(l, ok > 0 ? 0 : GN_ENOROUTE);
}

int gni_kad_lookup_seed(gni_kad_lookup *l, const gn_peer_id *peers, size_t n)
{
    if (!l || (n > 0 && !peers)) {
        return GN_EINVAL;
    }
    if (l->done) {
        return GN_ESTATE;
    }
    int added = 0;
    for (size_t i = 0; i < n; i++) {
        added += kad_add(l, &peers[i], 1);
    }
    return added;
}

int gni_kad_lookup_next(gni_kad_lookup *l, gn_time now, gn_peer_id *peer)
{
    if (!l || !peer) {
        return GN_EINVAL;
    }
    kad_check_done(l);
    if (l->done || l->inflight >= l->cfg.alpha) {
        return 0;
    }
    size_t cnt = 0;
    for (size_t i = 0; i < l->n && cnt < l->cfg.k; i++) {
        kad_cand *c = &l->c[i];
        if (c->state == CAND_FAILED) {
            continue;
        }
        cnt++;
        if (c->state == CAND_HEARD) {
            c->state = CAND_WAITING;
            c->deadline = now > GN_TIME_INFINITY - l->cfg.request_timeout
                              ? GN_TIME_INFINITY
                              : now + l->cfg.request_timeout;
            l->inflight++;
            l->st.requests++;
            *peer = c->id;
            return 1;
        }
    }
    return 0;
}

int gni_kad_lookup_response(gni_kad_lookup *l, const gn_peer_id *peer,
                            const gn_peer_id *closer, size_t n, gn_time now)
{
    (void)now;
    if (!l || !peer || (n > 0 && !closer)) {
        return GN_EINVAL;
    }
    if (l->done) {
        return GN_ESTATE;
    }
    kad_cand *c = kad_find(l, peer);
    if (!c || !(c->state == CAND_WAITING || (c->state == CAND_FAILED && c->timed_out))) {
        return GN_ENOTFOUND;
    }
    if (c->state == CAND_WAITING) {
        l->inflight--;
    }
    c->state = CAND_OK;
    c->timed_out = false;
    l->st.responses++;
    uint16_t hops = c->hops < UINT16_MAX ? (uint16_t)(c->hops + 1) : UINT16_MAX;
    int added = 0; /* c may move from here on */
    for (size_t i = 0; i < n; i++) {
        added += kad_add(l, &closer[i], hops);
    }
    kad_check_done(l);
    return added;
}

int gni_kad_lookup_failure(gni_kad_lookup *l, const gn_peer_id *peer, gn_time now)
{
    (void)now;
    if (!l || !peer) {
        return GN_EINVAL;
    }
    if (l->done) {
        return GN_ESTATE;
    }
    kad_cand *c = kad_find(l, peer);
    if (!c || c->state != CAND_WAITING) {
        return GN_ENOTFOUND;
    }
    c->state = CAND_FAILED;
    l->inflight--;
    l->st.failures++;
    kad_check_done(l);
    return 0;
}

void gni_kad_lookup_tick(gni_kad_lookup *l, gn_time now)
{
    if (!l || l->done) {
        return;
    }
    if (now >= l->query_deadline) {
        kad_finish(l, GN_ETIMEDOUT);
        return;
    }
    for (size_t i = 0; i < l->n && l->inflight > 0; i++) {
        kad_cand *c = &l->c[i];
        if (c->state == CAND_WAITING && c->deadline <= now) {
            c->state = CAND_FAILED;
            c->timed_out = true;
            l->inflight--;
            l->st.timeouts++;
        }
    }
    kad_check_done(l);
}

gn_time gni_kad_lookup_deadline(const gni_kad_lookup *l)
{
    if (!l || l->done) {
        return GN_TIME_INFINITY;
    }
    gn_time d = l->query_deadline;
    for (size_t i = 0; i < l->n; i++) {
        if (l->c[i].state == CAND_WAITING && l->c[i].deadline < d) {
            d = l->c[i].deadline;
        }
    }
    return d;
}

bool gni_kad_lookup_done(const gni_kad_lookup *l)
{
    return !l || l->done;
}

int gni_kad_lookup_status(const gni_kad_lookup *l)
{
    return l ? l->status : GN_EINVAL;
}

size_t gni_kad_lookup_results(const gni_kad_lookup *l, gn_peer_id *out, size_t max)
{
    size_t cnt = 0;
    if (!l || !out) {
        return 0;
    }
    for (size_t i = 0; i < l->n && cnt < max; i++) {
        if (l->c[i].state == CAND_OK) {
            out[cnt++] = l->c[i].id;
        }
    }
    return cnt;
}

void gni_kad_lookup_stats_get(const gni_kad_lookup *l, gni_kad_lookup_stats *st)
{
    if (!l || !st) {
        return;
    }
    *st = l->st;
    st->hops = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (l->c[i].state == CAND_OK) {
            st->hops = l->c[i].hops;
            break;
        }
    }
}
