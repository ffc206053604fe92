/*
 * Intrusive hash table keyed by uint64 (internal): chained buckets, the
 * bucket count doubles when the table holds as many entries as buckets.
 * The muxer cores keep their streams in it. Not thread-safe.
 */
#ifndef GNI_HTAB_H
#define GNI_HTAB_H

#include "golemnet/common.h"

typedef struct gni_hnode {
    struct gni_hnode *next;
    uint64_t key; /* set before gni_htab_insert(), constant while inserted */
} gni_hnode;

typedef struct gni_htab {
    gni_hnode **buckets;
    size_t nbuckets; /* a power of two */
    size_t n;        /* entries */
} gni_htab;

/** Allocates @nbuckets (a power of two) buckets. Errors: GN_EINVAL, GN_ENOMEM. */
int gni_htab_init(gni_htab *t, size_t nbuckets);
/** Frees the buckets (not the entries). */
void gni_htab_fini(gni_htab *t);
/** The entry with @key, or NULL. */
gni_hnode *gni_htab_find(const gni_htab *t, uint64_t key);
/**
 * The next entry after @e (inserted) with @e's key, or NULL: with
 * gni_htab_find() it visits every entry of a key, for tables whose keys are
 * hashes that may collide.
 */
gni_hnode *gni_htab_find_next(const gni_htab *t, const gni_hnode *e);
/** Inserts @e (keys are not checked for duplicates). Errors: GN_ENOMEM (growth). */
int gni_htab_insert(gni_htab *t, gni_hnode *e);
/** Removes @e if present. */
void gni_htab_remove(gni_htab *t, gni_hnode *e);
/** Some entry, or NULL when empty (for teardown loops). */
gni_hnode *gni_htab_any(const gni_htab *t);

#endif /* GNI_HTAB_H */
