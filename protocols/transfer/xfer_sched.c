/*
 * Resource transfer: the multi-source scheduler (docs/protocols/
 * transfer.md section 7). Which chunk to ask of which provider, endgame
 * duplicates and the cancels of the losers, chunks of a vanished or
 * corrupt provider back to the pool. Sans-I/O: time is an argument.
 *
 * Memory: one byte per chunk (copies in flight), one bit per chunk
 * (verified), one bit per chunk per provider that announced ranges or
 * SKIPped NOT_HAVE (none for a provider that has everything), and a fixed
 * table of 64 providers with 32 requests each; at most GNI_XFER_SCHED_
 * MEM_MAX in all (section 7.5).
 *
 * CPU: a global cursor below which no chunk is free (neither verified nor
 * in flight), a count of free chunks, and per provider a cursor below
 * which it holds nothing missing, so picking a new chunk does not rescan
 * the file; a provider whose last search found nothing is not searched
 * again until a chunk becomes free or it announces more (s->gen), and one
 * resumes after its last pick while no chunk has become free since.
 */
#include "xfer.h"

#include "golemnet/err.h"
#include "golemnet/log.h"

#include <string.h>

typedef struct sched_fl {
    uint64_t index;
    gn_time sent;
    bool canceled; /* a CANCEL went out; the provider still answers it */
    bool stalled;  /* seen older than stall_time by gni_xfer_sched_next() */
} sched_fl;

typedef struct sched_prov {
    bool used, gone, banned, all;
    uint8_t *have; /* bitmap, NULL unless ranges were announced */
    uint64_t cur;  /* every chunk below it is verified or not held */
    uint64_t dry_gen; /* s->gen when a search found nothing (0: none) */
    uint64_t scan, scan_gen; /* after its last pick (at s->gen scan_gen) */
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
    uint64_t cur;      /* no chunk below it is free (missing and not in flight) */
    uint64_t free_cnt; /* chunks missing and not in flight */
    uint64_t gen;      /* bumped when a chunk becomes free or a HAVE adds */
    gn_time stall_at;  /* no open request unseen as stalled stalls before it */
    size_t mem;        /* bytes allocated for the bitmaps and copies */
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
    if (m->leaf_count > (1ull << GNI_XFER_DEPTH_MAX))
        return GN_EINVAL;
    if (m->leaf_count > GNI_XFER_SCHED_LEAVES_MAX)
        return GN_ELIMIT; /* section 7.5: the memory budget */
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
    s->mem = bl + (size_t)m->leaf_count;
    s->gen = 1;
    s->stall_at = GN_TIME_INFINITY;
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
    s->free_cnt = m->leaf_count - s->done_cnt;
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
    if (!s || pid < 0 || (unsigned)pid >= s->np || !s->p[pid].used)
        return NULL;
    return (sched_prov *)&s->p[pid];
}

/* A chunk is free when missing and in flight nowhere (copies == 0). */
static void sched_copy_inc(gni_xfer_sched *s, uint64_t i)
{
    if (s->copies[i] == 0 && !gni_xfer_bit(s->done, i))
        s->free_cnt--;
    s->copies[i]++;
}

static void sched_copy_dec(gni_xfer_sched *s, uint64_t i)
{
    s->copies[i]--;
    if (s->copies[i] == 0 && !gni_xfer_bit(s->done, i)) {
        s->free_cnt++;
        if (i < s->cur)
            s->cur = i;
        s->gen++;
    }
}

static void sched_mark_done(gni_xfer_sched *s, uint64_t i)
{
    if (s->copies[i] == 0)
        s->free_cnt--;
    s->done[i >> 3] |= (uint8_t)(1u << (i & 7));
    s->done_cnt++;
    s->done_bytes += gni_xfer_chunk_len(&s->m, i);
}

static size_t sched_have_len(const gni_xfer_sched *s)
{
    return gni_xfer_bitmap_len(s->m.leaf_count) + 1;
}

/* a have-set for @p filled with @fill, within the memory budget */
static int sched_have_alloc(gni_xfer_sched *s, sched_prov *p, int fill)
{
    size_t bl = sched_have_len(s);
    if (s->mem + bl > GNI_XFER_SCHED_MEM_MAX)
        return GN_ELIMIT;
    p->have = gn_malloc(bl);
    if (!p->have)
        return GN_ENOMEM;
    memset(p->have, fill, bl);
    s->mem += bl;
    return 0;
}

static void sched_have_free(gni_xfer_sched *s, sched_prov *p)
{
    if (p->have) {
        gn_free(p->have);
        p->have = NULL;
        s->mem -= sched_have_len(s);
    }
}

static int sched_find_fl(const sched_prov *p, uint64_t index)
{
    for (unsigned i = 0; i < p->fl_cnt; i++)
        if (p->fl[i].index == index)
            return (int)i;
    return -1;
}

/* a CANCEL still to send: its provider is there and the request is open */
static bool sched_cancel_live(const gni_xfer_sched *s, sched_cancel c)
{
    const sched_prov *p = &s->p[c.pid];
    int k = sched_find_fl(p, c.index);
    return p->used && !p->gone && k >= 0 && p->fl[k].canceled;
}

/* keeps the live cancels, in order, except those of @pid (-1: none) */
static void sched_cq_compact(gni_xfer_sched *s, int pid)
{
    unsigned n = 0;
    for (unsigned k = 0; k < s->cq_cnt; k++) {
        sched_cancel c = s->cq[(s->cq_head + k) % SCHED_CANCEL_Q];
        if (c.pid != pid && sched_cancel_live(s, c))
            s->cq[(s->cq_head + n++) % SCHED_CANCEL_Q] = c;
    }
    s->cq_cnt = n;
}

int gni_xfer_sched_add(gni_xfer_sched *s)
{
    if (!s)
        return GN_EINVAL;
    /* the slot of a dropped provider is reused; a banned one's is kept so
     * gni_xfer_sched_banned() keeps answering */
    unsigned id;
    for (id = 0; id < s->np; id++)
        if (s->p[id].gone && !s->p[id].banned)
            break;
    if (id == s->np) {
        if (s->np == GNI_XFER_SCHED_MAX_PROV)
            return GN_ELIMIT;
        s->np++;
    }
    sched_prov *p = &s->p[id];
    sched_have_free(s, p);
    memset(p, 0, sizeof *p);
    p->used = true;
    return (int)id;
}

int gni_xfer_sched_have_all(gni_xfer_sched *s, int pid)
{
    sched_prov *p = sched_get(s, pid);
    if (!p)
        return GN_EINVAL;
    p->all = true;
    sched_have_free(s, p);
    p->cur = 0;
    p->dry_gen = 0;
    return 0;
}

/* sets bits [start, start+count) of @b, whole bytes with memset */
static void sched_bits_set(uint8_t *b, uint64_t start, uint64_t count)
{
    uint64_t i = start, end = start + count;
    while (i < end && (i & 7))
        b[i >> 3] |= (uint8_t)(1u << (i & 7)), i++;
    if (end - i >= 8) {
        uint64_t nb = (end - i) >> 3;
        memset(b + (i >> 3), 0xff, (size_t)nb);
        i += nb << 3;
    }
    while (i < end)
        b[i >> 3] |= (uint8_t)(1u << (i & 7)), i++;
}

int gni_xfer_sched_have(gni_xfer_sched *s, int pid, uint64_t start, uint64_t count)
{
    sched_prov *p = sched_get(s, pid);
    if (!p || start > s->m.leaf_count || count > s->m.leaf_count - start)
        return GN_EINVAL;
    if (p->all || p->gone || count == 0)
        return 0;
    if (!p->have) {
        int rc = sched_have_alloc(s, p, 0);
        if (rc < 0)
            return rc;
    }
    sched_bits_set(p->have, start, count);
    if (start < p->cur)
        p->cur = start;
    p->dry_gen = 0;
    p->scan_gen = 0;
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

static bool sched_is_stalled(const gni_xfer_sched *s, const sched_fl *f, gn_time now)
{
    return now >= f->sent && now - f->sent >= s->cfg.stall_time;
}

static void sched_assign(gni_xfer_sched *s, sched_prov *p, uint64_t index, gn_time now)
{
    p->fl[p->fl_cnt++] = (sched_fl){index, now, false, false};
    sched_copy_inc(s, index);
    gn_time at = now > GN_TIME_INFINITY - s->cfg.stall_time ? GN_TIME_INFINITY
                                                             : now + s->cfg.stall_time;
    if (at < s->stall_at)
        s->stall_at = at;
}

/*
 * The lowest free chunk @p has. The global cursor skips what is verified
 * or in flight (amortised: it moves back only when a chunk becomes free);
 * p->cur skips what @p does not hold or is verified; a search that finds
 * nothing is not repeated until s->gen changes or @p announces more.
 */
static bool sched_pick_new(gni_xfer_sched *s, sched_prov *p, uint64_t *index)
{
    uint64_t n = s->m.leaf_count;
    if (s->free_cnt == 0 || (p->dry_gen && p->dry_gen == s->gen))
        return false;
    while (s->cur < n) {
        if ((s->cur & 7) == 0 && s->cur + 8 <= n && s->done[s->cur >> 3] == 0xff) {
            s->cur += 8;
            continue;
        }
        if (!gni_xfer_bit(s->done, s->cur) && s->copies[s->cur] == 0)
            break;
        s->cur++;
    }
    if (p->all) {
        if (s->cur < n) {
            *index = s->cur;
            return true;
        }
        p->dry_gen = s->gen;
        return false;
    }
    if (!p->have)
        return false;
    uint64_t i = p->cur > s->cur ? p->cur : s->cur;
    bool adv = i == p->cur;
    /* nothing became free since its last pick: what it passed then is
     * still verified, in flight or not held */
    if (p->scan_gen == s->gen && p->scan > i) {
        i = p->scan;
        adv = false;
    }
    while (i < n) {
        if ((i & 7) == 0 && i + 8 <= n && (p->have[i >> 3] & (uint8_t)~s->done[i >> 3]) == 0) {
            i += 8;
            if (adv)
                p->cur = i;
            continue;
        }
        if (gni_xfer_bit(p->have, i) && !gni_xfer_bit(s->done, i)) {
            if (s->copies[i] == 0) {
                *index = i;
                p->scan = i + 1;
                p->scan_gen = s->gen;
                return true;
            }
            adv = false; /* in flight: it may come back */
        }
        i++;
        if (adv)
            p->cur = i;
    }
    p->dry_gen = s->gen;
    return false;
}

/* copies of @i in flight that are neither cancelled nor stalled */
static unsigned sched_live_copies(const gni_xfer_sched *s, uint64_t i, gn_time now)
{
    unsigned n = 0;
    for (unsigned h = 0; h < s->np; h++) {
        const sched_prov *hp = &s->p[h];
        if (!hp->used || hp->gone)
            continue;
        int k = sched_find_fl(hp, i);
        if (k >= 0 && !hp->fl[k].canceled && !sched_is_stalled(s, &hp->fl[k], now))
            n++;
    }
    return n;
}

/*
 * Endgame: a chunk in flight elsewhere that @c would deliver sooner than
 * its holder; the one whose holder would be latest wins. A chunk has at
 * most max_copies live copies (neither cancelled nor stalled: a stalled
 * request is presumed lost, so a dead holder cannot block a chunk, and
 * the limit still holds among the others).
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
            if (gni_xfer_bit(s->done, i) || !sched_has(c, i) || sched_find_fl(c, i) >= 0)
                continue;
            gn_time theirs =
                sched_is_stalled(s, f, now) ? GN_TIME_INFINITY : now + sched_eta(s, hp, ahead);
            if (mine < theirs && (!found || theirs > best) &&
                sched_live_copies(s, i, now) < s->cfg.max_copies) {
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
    /* requests seen stalled no longer make a deadline; the pass runs only
     * when one may have stalled (s->stall_at is a lower bound) */
    if (now >= s->stall_at) {
        gn_time next = GN_TIME_INFINITY;
        for (unsigned h = 0; h < s->np; h++) {
            for (unsigned k = 0; k < s->p[h].fl_cnt; k++) {
                sched_fl *f = &s->p[h].fl[k];
                if (f->stalled)
                    continue;
                if (sched_is_stalled(s, f, now))
                    f->stalled = true;
                else if (f->sent + s->cfg.stall_time < next)
                    next = f->sent + s->cfg.stall_time;
            }
        }
        s->stall_at = next;
    }
    /* new chunks first, to every provider with credit, round robin */
    for (unsigned k = 0; s->free_cnt && k < s->np; k++) {
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

gn_time gni_xfer_sched_next_deadline(const gni_xfer_sched *s)
{
    gn_time d = GN_TIME_INFINITY;
    if (!s)
        return d;
    for (unsigned h = 0; h < s->np; h++) {
        const sched_prov *p = &s->p[h];
        if (!p->used || p->gone)
            continue;
        for (unsigned k = 0; k < p->fl_cnt; k++) {
            const sched_fl *f = &p->fl[k];
            if (f->canceled || f->stalled || gni_xfer_bit(s->done, f->index))
                continue;
            gn_time t = f->sent > GN_TIME_INFINITY - s->cfg.stall_time
                            ? GN_TIME_INFINITY
                            : f->sent + s->cfg.stall_time;
            if (t < d)
                d = t;
        }
    }
    return d;
}

int gni_xfer_sched_next_cancel(gni_xfer_sched *s, int *pid, uint64_t *index)
{
    if (!s || !pid || !index)
        return GN_EINVAL;
    while (s->cq_cnt) {
        sched_cancel c = s->cq[s->cq_head];
        s->cq_head = (s->cq_head + 1) % SCHED_CANCEL_Q;
        s->cq_cnt--;
        /* gone, or it answered meanwhile (the copy arrived or was skipped) */
        if (!sched_cancel_live(s, c))
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
    bool fresh = !gni_xfer_bit(s->done, index);
    if (fresh)
        sched_mark_done(s, index);
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
            sched_copy_dec(s, index);
        sched_unfl(p, k);
    }
    if (!fresh)
        return 0;
    for (unsigned h = 0; h < s->np; h++) {
        sched_prov *o = &s->p[h];
        if (!o->used || o->gone)
            continue;
        int j = sched_find_fl(o, index);
        if (j < 0 || o->fl[j].canceled)
            continue;
        o->fl[j].canceled = true;
        sched_copy_dec(s, index);
        /* live cancels are distinct open requests, so they fit once the
         * stale ones are gone; if not, the copy arrives as a duplicate */
        if (s->cq_cnt == SCHED_CANCEL_Q)
            sched_cq_compact(s, -1);
        if (s->cq_cnt < SCHED_CANCEL_Q)
            s->cq[(s->cq_head + s->cq_cnt++) % SCHED_CANCEL_Q] = (sched_cancel){(int)h, index};
    }
    return 1;
}

int gni_xfer_sched_skip(gni_xfer_sched *s, int pid, uint64_t index, unsigned reason)
{
    sched_prov *p = sched_get(s, pid);
    if (!p || index >= s->m.leaf_count ||
        (reason != GNI_XFER_SKIP_NOT_HAVE && reason != GNI_XFER_SKIP_CANCELED))
        return GN_EINVAL;
    int k = sched_find_fl(p, index);
    if (k < 0)
        return GN_ENOTFOUND;
    if (reason == GNI_XFER_SKIP_NOT_HAVE && p->all) {
        /* remember what it lacks: a have-set of everything but @index */
        int rc = sched_have_alloc(s, p, 0xff);
        if (rc < 0) {
            (void)gni_xfer_sched_drop(s, pid, rc);
            return rc;
        }
        p->all = false;
    }
    if (reason == GNI_XFER_SKIP_NOT_HAVE && p->have)
        p->have[index >> 3] &= (uint8_t)~(1u << (index & 7));
    bool canceled = p->fl[k].canceled;
    sched_unfl(p, k);
    if (!canceled)
        sched_copy_dec(s, index);
    return 0;
}

int gni_xfer_sched_unassign(gni_xfer_sched *s, int pid, uint64_t index)
{
    sched_prov *p = sched_get(s, pid);
    if (!p || index >= s->m.leaf_count)
        return GN_EINVAL;
    int k = sched_find_fl(p, index);
    if (k < 0)
        return GN_ENOTFOUND;
    bool canceled = p->fl[k].canceled;
    sched_unfl(p, k);
    if (!canceled)
        sched_copy_dec(s, index);
    return 0;
}

int gni_xfer_sched_drop(gni_xfer_sched *s, int pid, int why)
{
    sched_prov *p = sched_get(s, pid);
    if (!p)
        return GN_EINVAL;
    for (unsigned k = 0; k < p->fl_cnt; k++)
        if (!p->fl[k].canceled)
            sched_copy_dec(s, p->fl[k].index);
    p->fl_cnt = 0;
    p->gone = true;
    p->all = false;
    sched_have_free(s, p);
    if (why == GN_EDECRYPT)
        p->banned = true;
    sched_cq_compact(s, pid);
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
