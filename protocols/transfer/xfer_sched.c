/*
 * Resource transfer: the multi-source scheduler (docs/protocols/
 * transfer.md section 7). Which chunk to ask of which provider, endgame
 * duplicates and the cancels of the losers, chunks of a vanished or
 * corrupt provider back to the pool. Sans-I/O: time is an argument.
 *
 * Memory: one byte per chunk (copies in flight), one bit per chunk
 * (verified), one bit per chunk per provider that announced ranges (none
 * for a provider that has everything), and a fixed table of 64 providers
 * with 32 requests each.
 */
#include "xfer.h"

#include "golemnet/err.h"
#include "golemnet/log.h"

#include <string.h>

typedef struct sched_fl {
    uint64_t index;
    gn_time sent;
    bool canceled; /* a CANCEL went out; the provider still answers it */
} sched_fl;

typedef struct sched_prov {
    bool used, gone, banned, all;
    uint8_t *have; /* bitmap, NULL unless ranges were announced */
    sched_fl fl[GNI_XFER_WINDOW]; /* in send order */
    unsigned fl_cnt;
    uint64_t rate; /* bytes/s, EWMA; 0 until the first chunk */
    gn_time last_arrival;
} sched_prov;

typedef struct sched_cancel {
    int pid;
    uint64_t index;
} sched_cancel;

#define SCHED_CANCEL_Q (GNI_XFER_SCHED_MAX_PROV * GNI_XFER_WINDOW)

struct gni_xfer_sched {
    gni_xfer_manifest m;
    gni_xfer_sched_cfg cfg;
    uint8_t *done;   /* bitmap */
    uint8_t *copies; /* per chunk: providers it is in flight at (not canceled) */
    uint64_t done_cnt, done_bytes, low;
    sched_prov p[GNI_XFER_SCHED_MAX_PROV];
    unsigned np, rr;
    sched_cancel cq[SCHED_CANCEL_Q];
    unsigned cq_head, cq_cnt;
};

void gni_xfer_sched_cfg_default(gni_xfer_sched_cfg *c)
{
    c->window_min = 4;
    c->window_max = GNI_XFER_WINDOW;
    c->queue_time = 1 * GN_S;
    c->stall_time = 10 * GN_S;
    c->initial_rate = 1000 * 1000;
    c->max_copies = 2;
}

int gni_xfer_sched_new(const gni_xfer_manifest *m, const uint8_t *done,
                       const gni_xfer_sched_cfg *cfg, gni_xfer_sched **out)
{
    gni_xfer_sched_cfg c;
    if (!m || !out)
        return GN_EINVAL;
    *out = NULL;
    if (cfg)
        c = *cfg;
    else
        gni_xfer_sched_cfg_default(&c);
    if (c.window_min < 1 || c.window_max > GNI_XFER_WINDOW || c.window_min > c.window_max ||
        c.max_copies < 1 || c.max_copies > 255 || c.initial_rate == 0)
        return GN_EINVAL;
    if (m->leaf_count > (1ull << GNI_XFER_DEPTH_MAX) || m->leaf_count > SIZE_MAX / 2)
        return GN_EINVAL;
    gni_xfer_sched *s = gn_calloc(1, sizeof *s);
    if (!s)
        return GN_ENOMEM;
    s->m = *m;
    s->cfg = c;
    size_t bl = gni_xfer_bitmap_len(m->leaf_count);
    s->done = gn_calloc(1, bl ? bl : 1);
    s->copies = gn_calloc(1, m->leaf_count ? (size_t)m->leaf_count : 1);
    if (!s->done || !s->copies) {
        gni_xfer_sched_free(s);
        return GN_ENOMEM;
    }
    if (done && bl) {
        memcpy(s->done, done, bl);
        if (m->leaf_count & 7)
            s->done[bl - 1] &= (uint8_t)((1u << (m->leaf_count & 7)) - 1);
        for (uint64_t i = 0; i < m->leaf_count; i++) {
            if (gni_xfer_bit(s->done, i)) {
                s->done_cnt++;
                s->done_bytes += gni_xfer_chunk_len(m, i);
            }
        }
    }
    *out = s;
    return 0;
}

void gni_xfer_sched_free(gni_xfer_sched *s)
{
    if (!s)
        return;
    for (unsigned i = 0; i < s->np; i++)
        gn_free(s->p[i].have);
    gn_free(s->done);
    gn_free(s->copies);
    gn_free(s);
}

static sched_prov *sched_get(const gni_xfer_sched *s, int pid)
{
    if (!s || pid < 0 || (unsigned)pid >= s->np)
        return NULL;
    return (sched_prov *)&s->p[pid];
}

int gni_xfer_sched_add(gni_xfer_sched *s)
{
    if (!s)
        return GN_EINVAL;
    if (s->np == GNI_XFER_SCHED_MAX_PROV)
        return GN_ELIMIT;
    sched_prov *p = &s->p[s->np];
    memset(p, 0, sizeof *p);
    p->used = true;
    return (int)s->np++;
}

int gni_xfer_sched_have_all(gni_xfer_sched *s, int pid)
{
    sched_prov *p = sched_get(s, pid);
    if (!p)
        return GN_EINVAL;
    p->all = true;
    gn_free(p->have);
    p->have = NULL;
    return 0;
}

int gni_xfer_sched_have(gni_xfer_sched *s, int pid, uint64_t start, uint64_t count)
{
    sched_prov *p = sched_get(s, pid);
    if (!p || start > s->m.leaf_count || count > s->m.leaf_count - start)
        return GN_EINVAL;
    if (p->all)
        return 0;
    if (!p->have) {
        p->have = gn_calloc(1, gni_xfer_bitmap_len(s->m.leaf_count) + 1);
        if (!p->have)
            return GN_ENOMEM;
    }
    for (uint64_t i = start; i < start + count; i++)
        p->have[i >> 3] |= (uint8_t)(1u << (i & 7));
    return 0;
}

static bool sched_has(const sched_prov *p, uint64_t i)
{
    return p->all || (p->have && gni_xfer_bit(p->have, i));
}

static bool sched_live(const sched_prov *p)
{
    return p->used && !p->gone && (p->all || p->have);
}

static uint64_t sched_rate(const gni_xfer_sched *s, const sched_prov *p)
{
    return p->rate ? p->rate : s->cfg.initial_rate;
}

static unsigned sched_window(const gni_xfer_sched *s, const sched_prov *p)
{
    uint64_t w = (sched_rate(s, p) * (s->cfg.queue_time / GN_MS) / 1000 + s->m.chunk_size - 1) /
                 s->m.chunk_size;
    if (w < s->cfg.window_min)
        w = s->cfg.window_min;
    if (w > s->cfg.window_max)
        w = s->cfg.window_max;
    return (unsigned)w;
}

/* time, ns, @p needs for @k chunks */
static gn_time sched_eta(const gni_xfer_sched *s, const sched_prov *p, unsigned k)
{
    return (gn_time)((double)k * s->m.chunk_size * 1e9 / (double)sched_rate(s, p));
}

static int sched_find_fl(const sched_prov *p, uint64_t index)
{
    for (unsigned i = 0; i < p->fl_cnt; i++)
        if (p->fl[i].index == index)
            return (int)i;
    return -1;
}

static void sched_assign(gni_xfer_sched *s, sched_prov *p, uint64_t index, gn_time now)
{
    p->fl[p->fl_cnt++] = (sched_fl){index, now, false};
    s->copies[index]++;
}

/* the first unassigned missing chunk @p has, from s->low on */
static bool sched_pick_new(gni_xfer_sched *s, const sched_prov *p, uint64_t *index)
{
    for (uint64_t i = s->low; i < s->m.leaf_count; i++) {
        if (!gni_xfer_bit(s->done, i) && s->copies[i] == 0 && sched_has(p, i)) {
            *index = i;
            return true;
        }
    }
    return false;
}

/*
 * Endgame: a chunk in flight elsewhere that @c would deliver sooner than
 * its holder; the one whose holder would be latest wins.
 */
static bool sched_pick_dup(gni_xfer_sched *s, int cid, gn_time now, uint64_t *index)
{
    const sched_prov *c = &s->p[cid];
    gn_time mine = now + sched_eta(s, c, c->fl_cnt + 1), best = 0;
    bool found = false;
    for (unsigned h = 0; h < s->np; h++) {
        const sched_prov *hp = &s->p[h];
        if ((int)h == cid || !hp->used || hp->gone)
            continue;
        unsigned ahead = 0;
        for (unsigned k = 0; k < hp->fl_cnt; k++) {
            const sched_fl *f = &hp->fl[k];
            if (f->canceled)
                continue;
            ahead++;
            uint64_t i = f->index;
            /* a stalled request is presumed lost: it does not count
             * against max_copies (else stalled holders could block a
             * chunk for ever) */
            bool stalled = now - f->sent > s->cfg.stall_time;
            if (gni_xfer_bit(s->done, i) || (!stalled && s->copies[i] >= s->cfg.max_copies) ||
                !sched_has(c, i) || sched_find_fl(c, i) >= 0)
                continue;
            gn_time theirs = stalled ? UINT64_MAX : now + sched_eta(s, hp, ahead);
            if (mine < theirs && (!found || theirs > best)) {
                best = theirs;
                *index = i;
                found = true;
            }
        }
    }
    return found;
}

int gni_xfer_sched_next(gni_xfer_sched *s, gn_time now, int *pid, uint64_t *index)
{
    if (!s || !pid || !index)
        return GN_EINVAL;
    while (s->low < s->m.leaf_count && gni_xfer_bit(s->done, s->low))
        s->low++;
    if (s->low >= s->m.leaf_count)
        return 0;
    /* new chunks first, to every provider with credit, round robin */
    for (unsigned k = 0; k < s->np; k++) {
        unsigned id = (s->rr + k) % s->np;
        sched_prov *p = &s->p[id];
        if (!sched_live(p) || p->fl_cnt >= sched_window(s, p))
            continue;
        uint64_t i;
        if (sched_pick_new(s, p, &i)) {
            sched_assign(s, p, i, now);
            s->rr = (id + 1) % s->np;
            *pid = (int)id;
            *index = i;
            return 1;
        }
    }
    /* endgame: every missing chunk is in flight; duplicate the late ones */
    for (unsigned k = 0; k < s->np; k++) {
        unsigned id = (s->rr + k) % s->np;
        sched_prov *p = &s->p[id];
        if (!sched_live(p) || p->fl_cnt >= sched_window(s, p))
            continue;
        uint64_t i;
        if (sched_pick_dup(s, (int)id, now, &i)) {
            sched_assign(s, p, i, now);
            s->rr = (id + 1) % s->np;
            *pid = (int)id;
            *index = i;
            return 1;
        }
    }
    return 0;
}

int gni_xfer_sched_next_cancel(gni_xfer_sched *s, int *pid, uint64_t *index)
{
    if (!s || !pid || !index)
        return GN_EINVAL;
    while (s->cq_cnt) {
        sched_cancel c = s->cq[s->cq_head];
        s->cq_head = (s->cq_head + 1) % SCHED_CANCEL_Q;
        s->cq_cnt--;
        const sched_prov *p = &s->p[c.pid];
        int k = sched_find_fl(p, c.index);
        /* gone, or it answered meanwhile (the copy arrived or was skipped) */
        if (p->gone || k < 0 || !p->fl[k].canceled)
            continue;
        *pid = c.pid;
        *index = c.index;
        return 1;
    }
    return 0;
}

static void sched_unfl(sched_prov *p, int k)
{
    memmove(&p->fl[k], &p->fl[k + 1], (p->fl_cnt - (unsigned)k - 1) * sizeof p->fl[0]);
    p->fl_cnt--;
}

int gni_xfer_sched_done(gni_xfer_sched *s, int pid, uint64_t index, size_t len, gn_time now)
{
    sched_prov *p = sched_get(s, pid);
    if (!p || index >= s->m.leaf_count)
        return GN_EINVAL;
    int k = sched_find_fl(p, index);
    if (k >= 0) {
        sched_fl f = p->fl[k];
        gn_time since = f.sent > p->last_arrival ? f.sent : p->last_arrival;
        if (now > since) {
            uint64_t sample = (uint64_t)((double)len * 1e9 / (double)(now - since));
            if (sample == 0)
                sample = 1; /* 0 means "not measured yet" */
            p->rate = p->rate ? (p->rate * 3 + sample) / 4 : sample;
        }
        p->last_arrival = now;
        if (!f.canceled)
            s->copies[index]--;
        sched_unfl(p, k);
    }
    if (gni_xfer_bit(s->done, index))
        return 0;
    s->done[index >> 3] |= (uint8_t)(1u << (index & 7));
    s->done_cnt++;
    s->done_bytes += gni_xfer_chunk_len(&s->m, index);
    for (unsigned h = 0; h < s->np; h++) {
        sched_prov *o = &s->p[h];
        int j = sched_find_fl(o, index);
        if (j < 0 || o->fl[j].canceled || o->gone)
            continue;
        o->fl[j].canceled = true;
        s->copies[index]--;
        s->cq[(s->cq_head + s->cq_cnt++) % SCHED_CANCEL_Q] = (sched_cancel){(int)h, index};
    }
    return 1;
}

int gni_xfer_sched_skip(gni_xfer_sched *s, int pid, uint64_t index, unsigned reason)
{
    sched_prov *p = sched_get(s, pid);
    if (!p || index >= s->m.leaf_count)
        return GN_EINVAL;
    int k = sched_find_fl(p, index);
    if (k < 0)
        return GN_ENOTFOUND;
    if (!p->fl[k].canceled)
        s->copies[index]--;
    sched_unfl(p, k);
    if (reason == GNI_XFER_SKIP_NOT_HAVE) {
        if (p->all) {
            size_t bl = gni_xfer_bitmap_len(s->m.leaf_count);
            p->have = gn_malloc(bl + 1);
            if (!p->have)
                return GN_ENOMEM;
            memset(p->have, 0xff, bl + 1);
            p->all = false;
        }
        if (p->have)
            p->have[index >> 3] &= (uint8_t)~(1u << (index & 7));
    }
    return 0;
}

int gni_xfer_sched_drop(gni_xfer_sched *s, int pid, int why)
{
    sched_prov *p = sched_get(s, pid);
    if (!p)
        return GN_EINVAL;
    for (unsigned k = 0; k < p->fl_cnt; k++)
        if (!p->fl[k].canceled)
            s->copies[p->fl[k].index]--;
    p->fl_cnt = 0;
    p->gone = true;
    if (why == GN_EDECRYPT)
        p->banned = true;
    return 0;
}

bool gni_xfer_sched_banned(const gni_xfer_sched *s, int pid)
{
    const sched_prov *p = sched_get(s, pid);
    return p && p->banned;
}

uint64_t gni_xfer_sched_done_cnt(const gni_xfer_sched *s)
{
    return s ? s->done_cnt : 0;
}

uint64_t gni_xfer_sched_done_bytes(const gni_xfer_sched *s)
{
    return s ? s->done_bytes : 0;
}

bool gni_xfer_sched_complete(const gni_xfer_sched *s)
{
    return s && s->done_cnt == s->m.leaf_count;
}

unsigned gni_xfer_sched_inflight(const gni_xfer_sched *s, int pid)
{
    const sched_prov *p = sched_get(s, pid);
    return p ? p->fl_cnt : 0;
}

const uint8_t *gni_xfer_sched_bitmap(const gni_xfer_sched *s)
{
    return s ? s->done : NULL;
}
