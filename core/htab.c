/* Intrusive uint64-keyed hash table (see gni_htab.h). */
#include "gni_htab.h"

#include "golemnet/err.h"
#include "golemnet/log.h"

static size_t slot(size_t nbuckets, uint64_t key)
{
    return (size_t)((key * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & (nbuckets - 1);
}

int gni_htab_init(gni_htab *t, size_t nbuckets)
{
    if (nbuckets == 0 || (nbuckets & (nbuckets - 1)) != 0) {
        return GN_EINVAL;
    }
    t->buckets = gn_calloc(nbuckets, sizeof *t->buckets);
    if (!t->buckets) {
        return GN_ENOMEM;
    }
    t->nbuckets = nbuckets;
    t->n = 0;
    return 0;
}

void gni_htab_fini(gni_htab *t)
{
    gn_free(t->buckets);
    t->buckets = NULL;
    t->nbuckets = t->n = 0;
}

gni_hnode *gni_htab_find(const gni_htab *t, uint64_t key)
{
    gni_hnode *e = t->buckets[slot(t->nbuckets, key)];
    while (e && e->key != key) {
        e = e->next;
    }
    return e;
}

gni_hnode *gni_htab_find_next(const gni_htab *t, const gni_hnode *e)
{
    (void)t; /* entries with equal keys share a bucket chain */
    gni_hnode *x = e->next;
    while (x && x->key != e->key) {
        x = x->next;
    }
    return x;
}

int gni_htab_insert(gni_htab *t, gni_hnode *e)
{
    if (t->n >= t->nbuckets) {
        size_t nb = t->nbuckets * 2;
        gni_hnode **b = gn_calloc(nb, sizeof *b);
        if (!b) {
            return GN_ENOMEM;
        }
        for (size_t i = 0; i < t->nbuckets; i++) {
            gni_hnode *x = t->buckets[i];
            while (x) {
                gni_hnode *next = x->next;
                size_t k = slot(nb, x->key);
                x->next = b[k];
                b[k] = x;
                x = next;
            }
        }
        gn_free(t->buckets);
        t->buckets = b;
        t->nbuckets = nb;
    }
    size_t k = slot(t->nbuckets, e->key);
    e->next = t->buckets[k];
    t->buckets[k] = e;
    t->n++;
    return 0;
}

void gni_htab_remove(gni_htab *t, gni_hnode *e)
{
    gni_hnode **pp = &t->buckets[slot(t->nbuckets, e->key)];
    while (*pp && *pp != e) {
        pp = &(*pp)->next;
    }
    if (*pp) {
        *pp = e->next;
        e->next = NULL;
        t->n--;
    }
}

gni_hnode *gni_htab_any(const gni_htab *t)
{
    for (size_t i = 0; i < t->nbuckets; i++) {
        if (t->buckets[i]) {
            return t->buckets[i];
        }
    }
    return NULL;
}
