/*
 * The multi-source scheduler (protocols/transfer/xfer_sched.c,
 * docs/protocols/transfer.md section 7) against simulated providers on a
 * fake clock: each provider serves its requests in order at a fixed rate,
 * answers a CANCEL of a request it has not started with SKIP, and may
 * vanish, be corrupt, or lack chunks. Checks: four providers share the
 * work and every chunk arrives once (plus bounded endgame duplicates); a
 * provider vanishing mid-way has its chunks re-asked elsewhere; a slow
 * provider does not hold the tail (endgame duplicates, cancels to the
 * loser); a corrupt provider is banned; resume asks only for missing
 * chunks; a provider's NOT_HAVE is remembered; the per-provider window.
 */
#include "gn_test.h"
#include "xfer.h"

#include "golemnet/err.h"

#define CH 16384u
#define STEP (250 * GN_US)

typedef struct simp {
    gn_time per_chunk; /* service time */
    uint64_t q[GNI_XFER_WINDOW];
    unsigned qn;
    gn_time head_done; /* when q[0] completes (0: not started) */
    gn_time vanish_at; /* 0: never */
    bool gone, corrupt, added;
    uint64_t lo, hi;   /* the chunks it has: [lo, hi); hi 0: every chunk */
    int64_t lacks;     /* a chunk it announced but answers NOT_HAVE (-1: none) */
    uint64_t served, canceled_skips, not_have_skips;
    int pid;
} simp;

typedef struct sim {
    gni_xfer_sched *s;
    gni_xfer_manifest m;
    simp p[8];
    unsigned np;
    uint64_t delivered_new, delivered_dup, cancels;
    gn_time finished;
    uint8_t *got;
} sim;

static void sim_init(sim *x, uint64_t leaves, const uint8_t *done, const gni_xfer_sched_cfg *cfg)
{
    memset(x, 0, sizeof *x);
    x->m.chunk_size = CH;
    x->m.total_size = leaves * CH;
    x->m.leaf_count = leaves;
    x->got = calloc(1, leaves + 1);
    CHECK_EQ(gni_xfer_sched_new(&x->m, done, cfg, &x->s), 0);
}

static simp *sim_add(sim *x, gn_time per_chunk)
{
    simp *p = &x->p[x->np++];
    p->per_chunk = per_chunk;
    p->lacks = -1;
    p->pid = gni_xfer_sched_add(x->s);
    CHECK(p->pid >= 0);
    CHECK_EQ(gni_xfer_sched_have_all(x->s, p->pid), 0);
    return p;
}

/* a provider that announces only [lo, hi) */
static simp *sim_add_part(sim *x, gn_time per_chunk, uint64_t lo, uint64_t hi)
{
    simp *p = &x->p[x->np++];
    p->per_chunk = per_chunk;
    p->lacks = -1;
    p->lo = lo;
    p->hi = hi;
    p->pid = gni_xfer_sched_add(x->s);
    CHECK(p->pid >= 0);
    CHECK_EQ(gni_xfer_sched_have(x->s, p->pid, lo, hi - lo), 0);
    return p;
}

/* the present provider with @pid (a dropped one's id may be reused) */
static simp *sim_by_pid(sim *x, int pid)
{
    for (unsigned i = 0; i < x->np; i++)
        if (x->p[i].pid == pid && !x->p[i].gone)
            return &x->p[i];
    CHECK(0);
    return NULL;
}

/* runs until complete or @limit; returns the finishing time */
static gn_time sim_run(sim *x, gn_time limit)
{
    for (gn_time now = STEP; now <= limit; now += STEP) {
        int pid;
        uint64_t idx;
        for (unsigned i = 0; i < x->np; i++) {
            simp *p = &x->p[i];
            if (p->vanish_at && now >= p->vanish_at && !p->gone) {
                p->gone = true;
                p->qn = 0;
                CHECK_EQ(gni_xfer_sched_drop(x->s, p->pid, GN_ECONNRESET), 0);
            }
        }
        while (gni_xfer_sched_next(x->s, now, &pid, &idx) == 1) {
            simp *p = sim_by_pid(x, pid);
            CHECK(!p->gone);
            CHECK(p->qn < GNI_XFER_WINDOW);
            for (unsigned k = 0; k < p->qn; k++)
                CHECK(p->q[k] != idx); /* never the same chunk twice at one provider */
            /* only what it announced, and never again what it said it lacks */
            CHECK(p->hi == 0 || (idx >= p->lo && idx < p->hi));
            CHECK(!(p->not_have_skips && (int64_t)idx == p->lacks));
            CHECK(!gni_xfer_bit(gni_xfer_sched_bitmap(x->s), idx));
            p->q[p->qn++] = idx;
            CHECK_EQ(gni_xfer_sched_inflight(x->s, pid), p->qn);
        }
        while (gni_xfer_sched_next_cancel(x->s, &pid, &idx) == 1) {
            simp *p = sim_by_pid(x, pid);
            x->cancels++;
            for (unsigned k = 0; k < p->qn; k++) {
                if (p->q[k] != idx)
                    continue;
                if (k == 0 && p->head_done)
                    break; /* already on the wire: it arrives and is a duplicate */
                memmove(&p->q[k], &p->q[k + 1], (p->qn - k - 1) * sizeof p->q[0]);
                p->qn--;
                p->canceled_skips++;
                CHECK_EQ(gni_xfer_sched_skip(x->s, pid, idx, GNI_XFER_SKIP_CANCELED), 0);
                break;
            }
        }
        for (unsigned i = 0; i < x->np; i++) {
            simp *p = &x->p[i];
            if (p->gone || p->qn == 0)
                continue;
            if (!p->head_done)
                p->head_done = now + p->per_chunk;
            if (now < p->head_done)
                continue;
            uint64_t c = p->q[0];
            memmove(&p->q[0], &p->q[1], (p->qn - 1) * sizeof p->q[0]);
            p->qn--;
            /* back to back: the next one was being served meanwhile */
            p->head_done = p->qn ? p->head_done + p->per_chunk : 0;
            if ((int64_t)c == p->lacks) {
                p->not_have_skips++;
                CHECK_EQ(gni_xfer_sched_skip(x->s, p->pid, c, GNI_XFER_SKIP_NOT_HAVE), 0);
                continue;
            }
            if (p->corrupt) {
                /* the stream core says GN_EDECRYPT: drop and ban */
                p->gone = true;
                p->qn = 0;
                CHECK_EQ(gni_xfer_sched_drop(x->s, p->pid, GN_EDECRYPT), 0);
                continue;
            }
            p->served++;
            int rc = gni_xfer_sched_done(x->s, p->pid, c, CH, now);
            CHECK(rc == 0 || rc == 1);
            if (rc == 1) {
                CHECK(!x->got[c]);
                x->got[c] = 1;
                x->delivered_new++;
            } else {
                x->delivered_dup++;
            }
        }
        if (gni_xfer_sched_complete(x->s)) {
            x->finished = now;
            return now;
        }
    }
    return 0;
}

static void sim_fini(sim *x)
{
    gni_xfer_sched_free(x->s);
    free(x->got);
}

GN_TEST(four_providers)
{
    sim x;
    sim_init(&x, 400, NULL, NULL);
    for (int i = 0; i < 4; i++)
        sim_add(&x, 1 * GN_MS);
    gn_time t = sim_run(&x, 10 * GN_S);
    CHECK(t > 0);
    CHECK_EQ(x.delivered_new, 400);
    CHECK_EQ(gni_xfer_sched_done_bytes(x.s), 400 * CH);
    /* the work is shared: each served at least a fifth; about 100 ms total */
    for (int i = 0; i < 4; i++)
        CHECK(x.p[i].served >= 80);
    CHECK(t < 130 * GN_MS);
    /* endgame duplicates are bounded by the tail, not the file */
    CHECK(x.delivered_dup <= 4 * GNI_XFER_WINDOW);
    sim_fini(&x);
}

GN_TEST(provider_vanishes)
{
    sim x;
    sim_init(&x, 400, NULL, NULL);
    for (int i = 0; i < 4; i++)
        sim_add(&x, 1 * GN_MS);
    x.p[2].vanish_at = 40 * GN_MS;
    gn_time t = sim_run(&x, 10 * GN_S);
    CHECK(t > 0);
    CHECK_EQ(x.delivered_new, 400);
    CHECK(x.p[2].served > 0 && x.p[2].served < 60);
    CHECK(!gni_xfer_sched_banned(x.s, x.p[2].pid));
    CHECK_EQ(gni_xfer_sched_inflight(x.s, x.p[2].pid), 0);
    /* nothing is asked of it after it is gone (sim_run checks) and the others
     * finish its share: 400 chunks by 3 at 1 ms, about 135 ms */
    CHECK(t < 170 * GN_MS);
    sim_fini(&x);
}

GN_TEST(all_providers_vanish_then_one_returns)
{
    sim x;
    sim_init(&x, 50, NULL, NULL);
    simp *a = sim_add(&x, 1 * GN_MS);
    a->vanish_at = 10 * GN_MS;
    CHECK_EQ(sim_run(&x, 100 * GN_MS), 0);
    CHECK(gni_xfer_sched_done_cnt(x.s) > 0 && gni_xfer_sched_done_cnt(x.s) < 50);
    /* a new provider (the driver found another) picks up the rest */
    sim_add(&x, 1 * GN_MS);
    CHECK(sim_run(&x, 10 * GN_S) > 0);
    CHECK_EQ(x.delivered_new, 50);
    sim_fini(&x);
}

GN_TEST(slow_peer_does_not_hold_the_tail)
{
    sim x;
    sim_init(&x, 64, NULL, NULL);
    simp *fast = sim_add(&x, 1 * GN_MS);
    simp *slow = sim_add(&x, 500 * GN_MS);
    gn_time t = sim_run(&x, 60 * GN_S);
    CHECK(t > 0);
    CHECK_EQ(x.delivered_new, 64);
    /* the slow provider took up to a window of chunks at the start; without
     * endgame they would take 500 ms each (16 s); with it the fast one
     * duplicates them and the slow one's copies are canceled */
    printf("# finished at %llu ms, fast %llu, slow %llu, cancels %llu, dups %llu\n",
           (unsigned long long)(t / GN_MS), (unsigned long long)fast->served,
           (unsigned long long)slow->served, (unsigned long long)x.cancels,
           (unsigned long long)x.delivered_dup);
    CHECK(t < 600 * GN_MS);
    CHECK(fast->served >= 60);
    CHECK(x.cancels > 0);
    CHECK(slow->canceled_skips > 0);
    sim_fini(&x);
    /* three fast sources and one 20 times slower: the slow one still
     * contributes, and the whole takes about what the four rates allow
     * (400 / 3.05 chunks per ms = 131 ms), not the slow one's queue */
    sim_init(&x, 400, NULL, NULL);
    for (int i = 0; i < 3; i++)
        sim_add(&x, 1 * GN_MS);
    slow = sim_add(&x, 20 * GN_MS);
    t = sim_run(&x, 60 * GN_S);
    printf("# 3 fast + 1 slow: %llu ms, slow served %llu, cancels %llu\n",
           (unsigned long long)(t / GN_MS), (unsigned long long)slow->served,
           (unsigned long long)x.cancels);
    CHECK(t > 0 && t < 145 * GN_MS);
    CHECK(slow->served > 0);
    sim_fini(&x);
}

GN_TEST(stalled_peer_duplicated_after_stall_time)
{
    gni_xfer_sched_cfg c;
    gni_xfer_sched_cfg_default(&c);
    c.stall_time = 2 * GN_S;
    c.max_copies = 2;
    sim x;
    sim_init(&x, 8, NULL, &c);
    simp *dead = sim_add(&x, 1000 * GN_S); /* connected, never answers */
    CHECK_EQ(sim_run(&x, 100 * GN_MS), 0);
    CHECK(gni_xfer_sched_inflight(x.s, dead->pid) == 8);
    /* a fast provider arrives: it duplicates the stalled chunks */
    sim_add(&x, 1 * GN_MS);
    gn_time t = sim_run(&x, 30 * GN_S);
    CHECK(t > 0);
    CHECK_EQ(x.delivered_new, 8);
    sim_fini(&x);
}

GN_TEST(corrupt_provider_banned)
{
    sim x;
    sim_init(&x, 200, NULL, NULL);
    sim_add(&x, 1 * GN_MS);
    simp *bad = sim_add(&x, 1 * GN_MS);
    bad->corrupt = true;
    sim_add(&x, 1 * GN_MS);
    gn_time t = sim_run(&x, 10 * GN_S);
    CHECK(t > 0);
    CHECK_EQ(x.delivered_new, 200);
    CHECK(gni_xfer_sched_banned(x.s, bad->pid));
    CHECK_EQ(bad->served, 0);
    sim_fini(&x);
}

GN_TEST(resume_asks_only_missing)
{
    uint8_t done[13] = {0};
    for (unsigned i = 0; i < 100; i += 2)
        done[i >> 3] |= (uint8_t)(1u << (i & 7));
    done[12] |= 0xf0; /* bits past chunk 99 are ignored */
    sim x;
    sim_init(&x, 100, done, NULL);
    CHECK_EQ(gni_xfer_sched_done_cnt(x.s), 50);
    sim_add(&x, 1 * GN_MS);
    CHECK(sim_run(&x, 10 * GN_S) > 0);
    CHECK_EQ(x.delivered_new, 50);
    for (unsigned i = 0; i < 100; i++)
        CHECK_EQ(x.got[i], i % 2);
    sim_fini(&x);
}

GN_TEST(partial_providers_and_not_have)
{
    sim x;
    sim_init(&x, 100, NULL, NULL);
    /* a has chunks 0..59, b has 40..99 but answers NOT_HAVE for 50; the
     * simulation fails if either is asked outside its set or b is asked
     * for 50 again after its SKIP */
    simp *a = sim_add_part(&x, 1 * GN_MS, 0, 60);
    simp *b = sim_add_part(&x, 1 * GN_MS, 40, 100);
    b->lacks = 50;
    CHECK_EQ(gni_xfer_sched_have(x.s, b->pid, 41, 60), GN_EINVAL);
    /* b gets 50 early: the lowest free chunks go round robin, a takes
     * 0.., b 40.. */
    CHECK(sim_run(&x, 10 * GN_S) > 0);
    CHECK_EQ(x.delivered_new, 100);
    CHECK_EQ(b->not_have_skips, 1);
    CHECK(a->served >= 40 && b->served >= 40);
    sim_fini(&x);
    /* a provider that is the only source and lacks a chunk: the download
     * cannot finish, and the scheduler stops asking */
    sim_init(&x, 10, NULL, NULL);
    simp *c = sim_add(&x, 1 * GN_MS);
    c->lacks = 0;
    CHECK_EQ(sim_run(&x, 1 * GN_S), 0);
    CHECK_EQ(c->not_have_skips, 1);
    CHECK_EQ(gni_xfer_sched_done_cnt(x.s), 9);
    int pid;
    uint64_t idx;
    CHECK_EQ(gni_xfer_sched_next(x.s, 2 * GN_S, &pid, &idx), 0);
    sim_fini(&x);
}

/* finding: a stalled holder lifted max_copies, so every provider got a copy */
GN_TEST(max_copies_with_a_stalled_holder)
{
    gni_xfer_sched_cfg c;
    gni_xfer_sched_cfg_default(&c);
    c.stall_time = 2 * GN_S;
    c.max_copies = 2;
    gni_xfer_manifest m = {.chunk_size = CH, .total_size = 4 * CH, .leaf_count = 4};
    gni_xfer_sched *s;
    CHECK_EQ(gni_xfer_sched_new(&m, NULL, &c, &s), 0);
    int dead = gni_xfer_sched_add(s), pid;
    CHECK_EQ(gni_xfer_sched_have_all(s, dead), 0);
    uint64_t idx;
    for (unsigned k = 0; k < 4; k++)
        CHECK_EQ(gni_xfer_sched_next(s, 1 * GN_MS, &pid, &idx), 1);
    CHECK_EQ(gni_xfer_sched_next_deadline(s), 1 * GN_MS + 2 * GN_S);
    for (int k = 0; k < 5; k++)
        CHECK_EQ(gni_xfer_sched_have_all(s, gni_xfer_sched_add(s)), 0);
    /* 10 s later every request of the dead holder is stalled: the five
     * others may duplicate, but each chunk at most max_copies times */
    unsigned per[4] = {0}, n = 0;
    while (n < 100 && gni_xfer_sched_next(s, 10 * GN_S, &pid, &idx) == 1) {
        CHECK(pid != dead);
        per[idx]++;
        n++;
    }
    for (unsigned i = 0; i < 4; i++)
        CHECK_EQ(per[i], c.max_copies);
    /* seen stalled: no deadline from them; the copies make the next one */
    CHECK_EQ(gni_xfer_sched_next_deadline(s), 10 * GN_S + 2 * GN_S);
    gni_xfer_sched_free(s);
}

/* finding: the 64-provider limit counted every provider ever added */
GN_TEST(provider_slots_reused)
{
    gni_xfer_manifest m = {.chunk_size = CH, .total_size = 4 * CH, .leaf_count = 4};
    gni_xfer_sched *s;
    CHECK_EQ(gni_xfer_sched_new(&m, NULL, NULL, &s), 0);
    for (unsigned i = 0; i < GNI_XFER_SCHED_MAX_PROV; i++)
        CHECK_EQ(gni_xfer_sched_add(s), (int)i);
    CHECK_EQ(gni_xfer_sched_add(s), GN_ELIMIT);
    CHECK_EQ(gni_xfer_sched_have(s, 7, 0, 2), 0);
    CHECK_EQ(gni_xfer_sched_drop(s, 7, GN_ECONNRESET), 0);
    CHECK_EQ(gni_xfer_sched_drop(s, 9, GN_EDECRYPT), 0);
    int id = gni_xfer_sched_add(s);
    CHECK_EQ(id, 7); /* the vanished one's slot, fresh: nothing announced */
    CHECK(!gni_xfer_sched_banned(s, 7));
    int pid;
    uint64_t idx;
    CHECK_EQ(gni_xfer_sched_next(s, 1, &pid, &idx), 0);
    CHECK_EQ(gni_xfer_sched_add(s), GN_ELIMIT); /* the banned one keeps its slot */
    CHECK(gni_xfer_sched_banned(s, 9));
    gni_xfer_sched_free(s);
}

/* finding: the cancel queue had no bound check; stale entries overwrote live ones */
GN_TEST(cancel_queue_bounded)
{
    enum { N = 3000 };
    gni_xfer_manifest m = {.chunk_size = CH, .total_size = (uint64_t)N * CH, .leaf_count = N};
    gni_xfer_sched *s;
    CHECK_EQ(gni_xfer_sched_new(&m, NULL, NULL, &s), 0);
    int a = gni_xfer_sched_add(s), b = gni_xfer_sched_add(s), pid;
    CHECK_EQ(gni_xfer_sched_have_all(s, a), 0);
    uint64_t idx;
    /* chunk 0 at a, delivered by b: a live CANCEL for a, never drained */
    CHECK_EQ(gni_xfer_sched_next(s, 1, &pid, &idx), 1);
    CHECK(pid == a && idx == 0);
    CHECK_EQ(gni_xfer_sched_done(s, b, 0, CH, 2), 1);
    /* then thousands of cancels that a answers with SKIP (stale) */
    for (unsigned i = 1; i < N; i++) {
        CHECK_EQ(gni_xfer_sched_next(s, 3, &pid, &idx), 1);
        CHECK(pid == a && idx == i);
        CHECK_EQ(gni_xfer_sched_done(s, b, i, CH, 4), 1);
        CHECK_EQ(gni_xfer_sched_skip(s, a, i, GNI_XFER_SKIP_CANCELED), 0);
    }
    CHECK_EQ(gni_xfer_sched_next_cancel(s, &pid, &idx), 1);
    CHECK(pid == a && idx == 0);
    CHECK_EQ(gni_xfer_sched_next_cancel(s, &pid, &idx), 0);
    CHECK(gni_xfer_sched_complete(s));
    gni_xfer_sched_free(s);
}

GN_TEST(unassign_and_limits)
{
    gni_xfer_manifest m = {.chunk_size = CH, .total_size = 100 * CH, .leaf_count = 100};
    gni_xfer_sched *s;
    CHECK_EQ(gni_xfer_sched_new(&m, NULL, NULL, &s), 0);
    int a = gni_xfer_sched_add(s), pid;
    uint64_t idx;
    CHECK_EQ(gni_xfer_sched_next_deadline(s), GN_TIME_INFINITY);
    CHECK_EQ(gni_xfer_sched_have(s, a, 3, 21), 0); /* bits 3..23: partial and whole bytes */
    CHECK_EQ(gni_xfer_sched_next(s, 5, &pid, &idx), 1);
    CHECK(pid == a && idx == 3);
    /* the WANT could not be sent: back to the pool, asked again */
    CHECK_EQ(gni_xfer_sched_unassign(s, a, 3), 0);
    CHECK_EQ(gni_xfer_sched_unassign(s, a, 3), GN_ENOTFOUND);
    CHECK_EQ(gni_xfer_sched_inflight(s, a), 0);
    CHECK_EQ(gni_xfer_sched_next_deadline(s), GN_TIME_INFINITY);
    unsigned n = 0;
    while (gni_xfer_sched_next(s, 6, &pid, &idx) == 1) {
        CHECK(idx == 3 + n);
        n++;
    }
    CHECK_EQ(n, 21); /* all it holds (its window is 32 at 1 MB/s) */
    CHECK_EQ(gni_xfer_sched_skip(s, a, 4, 9), GN_EINVAL);
    for (uint64_t i = 3; i < 24; i++)
        CHECK_EQ(gni_xfer_sched_done(s, a, i, CH, 7), 1);
    CHECK_EQ(gni_xfer_sched_next(s, 8, &pid, &idx), 0); /* it holds nothing else */
    CHECK_EQ(gni_xfer_sched_done_cnt(s), 21);
    gni_xfer_sched_free(s);
    /* the chunk-count cap (section 7.5) */
    m.leaf_count = GNI_XFER_SCHED_LEAVES_MAX + 1;
    m.chunk_size = GNI_XFER_CHUNK_MIN;
    m.total_size = m.leaf_count * m.chunk_size;
    CHECK_EQ(gni_xfer_sched_new(&m, NULL, NULL, &s), GN_ELIMIT);
}

GN_TEST(window_follows_rate)
{
    gni_xfer_sched_cfg c;
    gni_xfer_sched_cfg_default(&c);
    c.initial_rate = 16384; /* one chunk a second: window_min */
    sim x;
    sim_init(&x, 1000, NULL, &c);
    simp *p = sim_add(&x, 1 * GN_MS);
    int pid;
    uint64_t idx;
    unsigned n = 0;
    while (gni_xfer_sched_next(x.s, STEP, &pid, &idx) == 1)
        p->q[p->qn++] = idx, n++;
    CHECK_EQ(n, c.window_min);
    /* after it has measured 16 MB/s the window opens to the maximum */
    CHECK(sim_run(&x, 10 * GN_S) > 0);
    CHECK_EQ(x.delivered_new, 1000);
    /* a bad configuration */
    gni_xfer_sched *s;
    c.window_max = GNI_XFER_WINDOW + 1;
    CHECK_EQ(gni_xfer_sched_new(&x.m, NULL, &c, &s), GN_EINVAL);
    sim_fini(&x);
}

GN_TEST(provider_limit)
{
    sim x;
    sim_init(&x, 4, NULL, NULL);
    for (unsigned i = 0; i < GNI_XFER_SCHED_MAX_PROV; i++)
        CHECK_EQ(gni_xfer_sched_add(x.s), (int)i);
    CHECK_EQ(gni_xfer_sched_add(x.s), GN_ELIMIT);
    CHECK_EQ(gni_xfer_sched_have_all(x.s, GNI_XFER_SCHED_MAX_PROV), GN_EINVAL);
    sim_fini(&x);
}

GN_TEST_MAIN(GN_T(four_providers), GN_T(provider_vanishes),
             GN_T(all_providers_vanish_then_one_returns), GN_T(slow_peer_does_not_hold_the_tail),
             GN_T(stalled_peer_duplicated_after_stall_time), GN_T(corrupt_provider_banned),
             GN_T(resume_asks_only_missing), GN_T(partial_providers_and_not_have),
             GN_T(window_follows_rate), GN_T(provider_limit),
             GN_T(max_copies_with_a_stalled_holder), GN_T(provider_slots_reused),
             GN_T(cancel_queue_bounded), GN_T(unassign_and_limits))
