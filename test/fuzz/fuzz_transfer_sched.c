/*
 * Fuzzes the multi-source scheduler (protocols/transfer/xfer_sched.c) with
 * a driver script: each input byte pair is an operation (add a provider,
 * announce all or a range, ask for the next request, deliver / skip one of
 * a provider's requests, drop a provider, take cancels, let time pass).
 * A model of each provider's queue checks: requests go only to live
 * providers that have the chunk, never for a verified chunk, never twice
 * to one provider, never beyond the window; the scheduler's in-flight
 * count equals the model's; cancels name a chunk in flight there; the
 * verified count matches the deliveries; a chunk never has more than
 * max_copies copies in flight that are neither cancelled nor stalled; a
 * new provider takes the slot of the lowest dropped, unbanned one; with a
 * live provider holding everything, the download completes.
 */
#include "xfer.h"

#include "golemnet/err.h"

#include <stdlib.h>
#include <string.h>

#define MAXP 8
#define LEAVES 37

typedef struct mprov {
    int pid;
    bool gone, all, banned;
    uint8_t have[LEAVES];
    uint64_t q[GNI_XFER_WINDOW];
    gn_time sent[GNI_XFER_WINDOW];
    bool canceled[GNI_XFER_WINDOW];
    unsigned qn;
} mprov;

typedef struct model {
    gni_xfer_sched *s;
    mprov p[MAXP + 1]; /* + the fresh provider of the end */
    unsigned np;
    uint8_t done[LEAVES];
    uint64_t done_cnt;
    gn_time now;
    gni_xfer_sched_cfg cfg;
} model;

static void q_del(mprov *p, unsigned k)
{
    memmove(&p->q[k], &p->q[k + 1], (p->qn - k - 1) * sizeof p->q[0]);
    memmove(&p->sent[k], &p->sent[k + 1], (p->qn - k - 1) * sizeof p->sent[0]);
    memmove(&p->canceled[k], &p->canceled[k + 1], (p->qn - k - 1) * sizeof p->canceled[0]);
    p->qn--;
}

/* live copies (neither cancelled nor stalled) never pass max_copies */
static void check_copies(model *m)
{
    for (uint64_t i = 0; i < LEAVES; i++) {
        unsigned n = 0;
        for (unsigned h = 0; h < m->np; h++) {
            const mprov *p = &m->p[h];
            for (unsigned k = 0; !p->gone && k < p->qn; k++)
                if (p->q[k] == i && !p->canceled[k] && m->now - p->sent[k] < m->cfg.stall_time)
                    n++;
        }
        if (n > m->cfg.max_copies)
            abort();
    }
}

/* adds a provider where the scheduler says it goes: the lowest dropped,
 * unbanned slot, else a new one */
static int model_add(model *m)
{
    unsigned want = 0;
    while (want < m->np && !(m->p[want].gone && !m->p[want].banned))
        want++;
    int pid = gni_xfer_sched_add(m->s);
    if (want == MAXP + 1 || (want == m->np && m->np >= GNI_XFER_SCHED_MAX_PROV)) {
        if (pid != GN_ELIMIT)
            abort();
        return -1;
    }
    if (pid != (int)want)
        abort();
    memset(&m->p[want], 0, sizeof m->p[want]);
    m->p[want].pid = pid;
    if (want == m->np)
        m->np++;
    return pid;
}

static void check_inflight(model *m)
{
    for (unsigned i = 0; i < m->np; i++)
        if (gni_xfer_sched_inflight(m->s, m->p[i].pid) != (m->p[i].gone ? 0 : m->p[i].qn))
            abort();
}

static void op_next(model *m)
{
    int pid;
    uint64_t idx;
    for (int guard = 0; guard < 4 * MAXP * (int)GNI_XFER_WINDOW; guard++) {
        int rc = gni_xfer_sched_next(m->s, m->now, &pid, &idx);
        if (rc < 0)
            abort();
        if (rc == 0)
            return;
        if (pid < 0 || (unsigned)pid >= m->np || idx >= LEAVES)
            abort();
        mprov *p = &m->p[pid];
        if (p->gone || m->done[idx] || !(p->all || p->have[idx]) || p->qn >= GNI_XFER_WINDOW)
            abort();
        for (unsigned k = 0; k < p->qn; k++)
            if (p->q[k] == idx)
                abort();
        p->sent[p->qn] = m->now;
        p->canceled[p->qn] = false;
        p->q[p->qn++] = idx;
    }
    abort(); /* more requests than windows exist */
}

static void answer_at(model *m, mprov *p, unsigned k, uint8_t a, bool skip);

static void op_answer(model *m, uint8_t a, bool skip)
{
    if (m->np == 0)
        return;
    mprov *p = &m->p[a % m->np];
    if (p->gone || p->qn == 0)
        return;
    answer_at(m, p, (a >> 3) % p->qn, a, skip);
}

static void answer_at(model *m, mprov *p, unsigned k, uint8_t a, bool skip)
{
    uint64_t idx = p->q[k];
    bool was_canceled = p->canceled[k];
    q_del(p, k);
    if (skip) {
        /* CANCELED answers only a cancelled request (the requester core
         * refuses anything else) */
        unsigned reason = (a & 0x80) || !was_canceled ? GNI_XFER_SKIP_NOT_HAVE
                                                        : GNI_XFER_SKIP_CANCELED;
        if (gni_xfer_sched_skip(m->s, p->pid, idx, reason) != 0)
            abort();
        if (reason == GNI_XFER_SKIP_NOT_HAVE) {
            if (p->all) {
                p->all = false;
                memset(p->have, 1, sizeof p->have);
            }
            p->have[idx] = 0;
        }
        return;
    }
    int rc = gni_xfer_sched_done(m->s, p->pid, idx, 16384, m->now);
    if (rc != (m->done[idx] ? 0 : 1))
        abort();
    if (rc == 1) {
        m->done[idx] = 1;
        m->done_cnt++;
        /* every other copy is cancelled */
        for (unsigned h = 0; h < m->np; h++)
            for (unsigned j = 0; j < m->p[h].qn; j++)
                if (m->p[h].q[j] == idx)
                    m->p[h].canceled[j] = true;
    }
}

static void op_cancels(model *m)
{
    int pid;
    uint64_t idx;
    while (gni_xfer_sched_next_cancel(m->s, &pid, &idx) == 1) {
        if (pid < 0 || (unsigned)pid >= m->np || !m->done[idx])
            abort();
        mprov *p = &m->p[pid];
        unsigned k = 0;
        while (k < p->qn && p->q[k] != idx)
            k++;
        if (k == p->qn || p->gone)
            abort();
        /* the provider had not started it: SKIP(CANCELED) */
        q_del(p, k);
        if (gni_xfer_sched_skip(m->s, p->pid, idx, GNI_XFER_SKIP_CANCELED) != 0)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    model m;
    memset(&m, 0, sizeof m);
    gni_xfer_manifest mf = {.total_size = LEAVES * 16384ull - 7, .chunk_size = 16384,
                            .leaf_count = LEAVES};
    gni_xfer_sched_cfg cfg;
    gni_xfer_sched_cfg_default(&cfg);
    if (size > 0) {
        cfg.window_min = 1 + data[0] % 4;
        cfg.max_copies = 1 + (data[0] >> 4) % 3;
    }
    if (gni_xfer_sched_new(&mf, NULL, &cfg, &m.s) != 0)
        abort();
    m.cfg = cfg;
    for (size_t i = 1; i + 1 < size; i += 2) {
        uint8_t op = data[i], a = data[i + 1];
        m.now += (gn_time)(op >> 4) * GN_MS * 50;
        switch (op & 7) {
        case 0:
            if (m.np < MAXP)
                (void)model_add(&m);
            break;
        case 1:
            if (m.np) {
                mprov *p = &m.p[a % m.np];
                if (gni_xfer_sched_have_all(m.s, p->pid) != 0)
                    abort();
                p->all = true;
            }
            break;
        case 2:
            if (m.np) {
                mprov *p = &m.p[a % m.np];
                uint64_t st = (a >> 3) % LEAVES, cnt = 1 + (a & 7);
                if (st + cnt > LEAVES)
                    cnt = LEAVES - st;
                if (gni_xfer_sched_have(m.s, p->pid, st, cnt) != 0)
                    abort();
                for (uint64_t k = st; k < st + cnt; k++)
                    p->have[k] = 1;
            }
            break;
        case 3:
            op_next(&m);
            break;
        case 4:
        case 5:
            op_answer(&m, a, (op & 7) == 5);
            break;
        case 6:
            if (m.np) {
                mprov *p = &m.p[a % m.np];
                if (!p->gone) {
                    if (gni_xfer_sched_drop(m.s, p->pid, (a & 1) ? GN_EDECRYPT : GN_EEOF) != 0)
                        abort();
                    p->gone = true;
                    p->banned = a & 1;
                    p->qn = 0;
                    if (gni_xfer_sched_banned(m.s, p->pid) != (bool)(a & 1))
                        abort();
                }
            }
            break;
        default:
            op_cancels(&m);
            break;
        }
        check_inflight(&m);
        check_copies(&m);
        if (gni_xfer_sched_done_cnt(m.s) != m.done_cnt)
            abort();
    }
    /* finish: a fresh provider with everything completes the download */
    int pid = model_add(&m);
    if (pid >= 0) {
        m.p[pid].all = true;
        gni_xfer_sched_have_all(m.s, pid);
        for (int round = 0; round < 4 * LEAVES && !gni_xfer_sched_complete(m.s); round++) {
            m.now += GN_S * 20; /* past stall_time: duplicates anywhere */
            op_cancels(&m);
            op_next(&m);
            check_copies(&m);
            mprov *p = &m.p[pid];
            while (p->qn)
                answer_at(&m, p, 0, 0, false);
        }
        if (!gni_xfer_sched_complete(m.s) || m.done_cnt != LEAVES)
            abort();
    }
    gni_xfer_sched_free(m.s);
    return 0;
}
