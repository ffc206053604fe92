/*
 * The Ergo connection pool: link choice, dialling and end of a connection
 * (ergo-wire.md b "Pool", c "Order byte, links and receive queues").
 * Contract: pool.h. Sans-I/O.
 */
#include "pool.h"

#include <string.h>

#include "golemnet/err.h"

int gni_pool_init(gni_pool *p, bool dialler, uint32_t size, uint32_t ndsn, uint64_t main,
                  gn_time now)
{
    if (!p)
        return GN_EINVAL;
    memset(p, 0, sizeof *p);
    p->dialler = dialler;
    p->size = size < 1 ? 1 : size > GNI_POOL_MAX ? GNI_POOL_MAX : size;
    p->ndsn = ndsn;
    p->link[0] = main;
    p->since[0] = now;
    p->nlinks = 1;
    return 0;
}

/* a link attached after the last failure that stayed up GNI_POOL_STABLE ends the back-off */
static void pool_settle(gni_pool *p, gn_time now)
{
    if (p->fails == 0)
        return;
    for (uint32_t i = 0; i < p->nlinks; i++) {
        if (p->since[i] >= p->fail_at && now - p->since[i] >= GNI_POOL_STABLE) {
            p->fails = 0;
            p->hold_until = 0;
            return;
        }
    }
}

/* a short-lived link or a failed join: the next replacement waits (the first one does
 * not: a single loss is replaced at once, as in Ergo) */
static void pool_failed(gni_pool *p, gn_time now)
{
    if (p->fails < 32)
        p->fails++;
    p->fail_at = now;
    gn_time wait = 0;
    if (p->fails >= 2) {
        uint32_t shift = p->fails - 2;
        wait = shift >= 5 ? GNI_POOL_BACKOFF_MAX : GNI_POOL_BACKOFF_MIN << shift;
        if (wait > GNI_POOL_BACKOFF_MAX)
            wait = GNI_POOL_BACKOFF_MAX;
    }
    p->hold_until = now + wait;
}

/* the dialler has a replacement join to make (ignoring the back-off) */
static bool pool_wants_replacement(const gni_pool *p)
{
    return p->dialler && !p->ended && p->ndsn > 0 && p->nlinks + p->dialing < p->size &&
           p->initial >= p->size - 1;
}

gn_time gni_pool_dial_deadline(const gni_pool *p, gn_time now)
{
    if (!p || !pool_wants_replacement(p) || p->hold_until <= now)
        return GN_TIME_INFINITY;
    return p->hold_until;
}

bool gni_pool_want_dial(gni_pool *p, const gn_rng *rng, gn_time now, uint32_t *dsn_idx)
{
    if (!p || !dsn_idx || !p->dialler || p->ended || p->ndsn == 0 ||
        p->nlinks + p->dialing >= p->size)
        return false;
    pool_settle(p, now);
    if (p->initial >= p->size - 1 && now < p->hold_until)
        return false; /* a replacement held by the back-off */
    if (p->initial < p->size - 1) {
        p->initial++;
        *dsn_idx = p->initial % p->ndsn; /* link i to PoolDSN[i mod len] */
    } else {
        uint8_t r[4] = {0, 0, 0, 0};
        if (rng)
            gn_rng_fill(rng, r, sizeof r);
        uint32_t x = (uint32_t)r[0] << 24 | (uint32_t)r[1] << 16 | (uint32_t)r[2] << 8 | r[3];
        *dsn_idx = x % p->ndsn;
    }
    p->dialing++;
    return true;
}

void gni_pool_dial_failed(gni_pool *p, gn_time now)
{
    if (p && p->dialing) {
        p->dialing--;
        pool_failed(p, now);
    }
}

int gni_pool_attach(gni_pool *p, uint64_t link, gn_time now)
{
    if (!p)
        return GN_EINVAL;
    if (p->ended)
        return GN_ESTATE;
    for (uint32_t i = 0; i < p->nlinks; i++)
        if (p->link[i] == link)
            return GN_EEXIST;
    /* the dialler holds PoolSize links; the acceptor never dials and takes what comes (up
     * to the array), since a replacement may arrive before it saw the lost link's end */
    if (p->nlinks >= (p->dialler ? p->size : GNI_POOL_MAX))
        return GN_ELIMIT;
    if (p->dialler && p->dialing)
        p->dialing--;
    p->since[p->nlinks] = now;
    p->link[p->nlinks++] = link;
    return 0;
}

bool gni_pool_detach(gni_pool *p, uint64_t link, gn_time now)
{
    if (!p || p->ended)
        return false;
    pool_settle(p, now);
    for (uint32_t i = 0; i < p->nlinks; i++) {
        if (p->link[i] == link) {
            if (now - p->since[i] < GNI_POOL_STABLE)
                pool_failed(p, now);
            /* keep the order of the others: a sender's link changes only if it used this one
             * or sits behind it; Ergo's choice also depends on the live link count */
            memmove(&p->link[i], &p->link[i + 1], (p->nlinks - i - 1) * sizeof p->link[0]);
            memmove(&p->since[i], &p->since[i + 1], (p->nlinks - i - 1) * sizeof p->since[0]);
            p->nlinks--;
            if (p->nlinks == 0)
                p->ended = true;
            return p->ended;
        }
    }
    return false;
}

int gni_pool_pick(gni_pool *p, uint64_t from_id, bool keep_order, uint64_t *link)
{
    if (!p || !link)
        return GN_EINVAL;
    if (p->nlinks == 0)
        return GN_ECLOSED;
    uint64_t key = from_id % 255;
    uint32_t i;
    if (keep_order && key != 0) {
        i = (uint32_t)(key % p->nlinks);
    } else {
        i = p->rr++ % p->nlinks;
    }
    *link = p->link[i];
    return 0;
}
