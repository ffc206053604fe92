/*
 * Pooled secure memory for small secrets (declared in core/gni.h).
 *
 * sodium_malloc() gives every allocation its own mapping with guard pages,
 * a read-only size page and mlock: several mmap/mprotect calls and two
 * resident pages for a 32-byte key. Here small secrets share slabs that are
 * themselves sodium_malloc()'d (so the slab as a whole has the guard pages,
 * canary and mlock libsodium gives) and are carved into fixed-size slots of
 * a few size classes. No per-slot sodium_mprotect().
 *
 * Slot layout: a 16-byte header (owning slab, magic, free-list link) then
 * the caller's bytes. Larger requests get sodium_malloc() with the same
 * header whose slab pointer is NULL, so gni_secmem_free() tells them apart.
 *
 * Invariants: a free slot's payload is all zero (wiped on free, zeroed when
 * the slab is created), so allocations always return zeroed memory. Slabs
 * with a free slot sit on their class's list; full slabs are off-list; an
 * empty slab is released unless its class has no spare yet (then it is kept
 * as the spare, off-list), so at most one empty slab per class outlives its
 * last allocation.
 *
 * Thread safety: one uv_mutex per class, held only for list and free-list
 * updates; slab creation (sodium_malloc) and release (sodium_free) run
 * outside it. Initialisation through uv_once.
 */
#include "gni.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define SECMEM_HDR 16u
#define SECMEM_MAGIC_USED 0x5ec3e3a1u
#define SECMEM_MAGIC_FREE 0x5ec3f4eeu
#define SECMEM_MAGIC_BIG 0x5ec3b16bu
#define SECMEM_NONE UINT32_MAX
/*
 * Slab size handed to sodium_malloc(): four 4 KiB pages minus libsodium's
 * 16-byte canary, so the slab fills its unprotected pages exactly.
 */
#define SECMEM_SLAB_BYTES (16384u - 16u)
#define SECMEM_NCLASS 4

struct secmem_slab;

typedef struct secmem_hdr {
    struct secmem_slab *slab; /* NULL: a sodium_malloc() fallback */
    uint32_t magic;
    uint32_t next; /* free-list link (slot index) while free */
} secmem_hdr;

_Static_assert(sizeof(secmem_hdr) <= SECMEM_HDR, "slot header exceeds 16 bytes");

typedef struct secmem_class secmem_class;

/* Lives at the start of its own slab (secure memory: no heap metadata). */
typedef struct secmem_slab {
    secmem_class *cls;
    struct secmem_slab *prev, *next; /* class list of slabs with a free slot */
    uint8_t *slots;                  /* first slot, 64-byte aligned */
    uint32_t cap;                    /* slots in this slab */
    uint32_t used;                   /* slots handed out */
    uint32_t carved;                 /* slots [0, carved) have been handed out once */
    uint32_t free_head;              /* SECMEM_NONE or the first free slot */
    int on_list;
} secmem_slab;

struct secmem_class {
    uv_mutex_t mu;
    size_t slot;        /* slot size including the header */
    secmem_slab *head;  /* slabs with a free slot */
    secmem_slab *spare; /* one empty slab kept off-list, or NULL */
    size_t slabs;       /* slabs alive (including the spare) */
    size_t in_use;      /* slots handed out */
};

static secmem_class secmem_classes[SECMEM_NCLASS] = {
    {.slot = 64}, {.slot = 128}, {.slot = 256}, {.slot = 1024},
};
static uv_once_t secmem_once = UV_ONCE_INIT;
static int secmem_ready; /* 1 after a successful init, -1 after a failed one */
static uv_mutex_t secmem_big_mu;
static size_t secmem_big_cnt;

static void secmem_init(void)
{
    if (sodium_init() < 0) {
        secmem_ready = -1;
        return;
    }
    for (size_t i = 0; i < SECMEM_NCLASS; i++) {
        if (uv_mutex_init(&secmem_classes[i].mu) != 0) {
            secmem_ready = -1;
            return;
        }
    }
    if (uv_mutex_init(&secmem_big_mu) != 0) {
        secmem_ready = -1;
        return;
    }
    secmem_ready = 1;
}

static secmem_hdr *secmem_slot_hdr(const secmem_slab *sl, uint32_t idx)
{
    return (secmem_hdr *)(void *)(sl->slots + (size_t)idx * sl->cls->slot);
}

static void secmem_list_push(secmem_class *c, secmem_slab *sl)
{
    sl->prev = NULL;
    sl->next = c->head;
    if (c->head)
        c->head->prev = sl;
    c->head = sl;
    sl->on_list = 1;
}

static void secmem_list_remove(secmem_class *c, secmem_slab *sl)
{
    if (sl->prev)
        sl->prev->next = sl->next;
    else
        c->head = sl->next;
    if (sl->next)
        sl->next->prev = sl->prev;
    sl->prev = sl->next = NULL;
    sl->on_list = 0;
}

/* A new zeroed slab for @c (not linked), or NULL. No lock needed. */
static secmem_slab *secmem_slab_new(secmem_class *c)
{
    uint8_t *base = sodium_malloc(SECMEM_SLAB_BYTES);
    if (!base)
        return NULL;
    sodium_memzero(base, SECMEM_SLAB_BYTES);
    secmem_slab *sl = (secmem_slab *)(void *)base;
    uintptr_t first = ((uintptr_t)base + sizeof *sl + 63u) & ~(uintptr_t)63u;
    size_t room = SECMEM_SLAB_BYTES - (size_t)(first - (uintptr_t)base);
    sl->cls = c;
    sl->slots = (uint8_t *)first;
    sl->cap = (uint32_t)(room / c->slot);
    sl->free_head = SECMEM_NONE;
    return sl;
}

/* Takes a slot from @sl (which has one). Caller holds the class lock. */
static secmem_hdr *secmem_slab_take(secmem_class *c, secmem_slab *sl)
{
    uint32_t idx;
    if (sl->free_head != SECMEM_NONE) {
        idx = sl->free_head;
        sl->free_head = secmem_slot_hdr(sl, idx)->next;
    } else {
        idx = sl->carved++;
    }
    sl->used++;
    c->in_use++;
    if (sl->used == sl->cap && sl->on_list)
        secmem_list_remove(c, sl);
    secmem_hdr *h = secmem_slot_hdr(sl, idx);
    h->slab = sl;
    h->magic = SECMEM_MAGIC_USED;
    h->next = SECMEM_NONE;
    return h;
}

static void *secmem_big_alloc(size_t len)
{
    size_t body = (len + 15u) & ~(size_t)15u; /* keeps the payload 16-byte aligned */
    if (body < len || body > SIZE_MAX - SECMEM_HDR)
        return NULL;
    uint8_t *base = sodium_malloc(SECMEM_HDR + body);
    if (!base)
        return NULL;
    sodium_memzero(base, SECMEM_HDR + body);
    secmem_hdr *h = (secmem_hdr *)(void *)base;
    h->slab = NULL;
    h->magic = SECMEM_MAGIC_BIG;
    uv_mutex_lock(&secmem_big_mu);
    secmem_big_cnt++;
    uv_mutex_unlock(&secmem_big_mu);
    return base + SECMEM_HDR;
}

void *gni_secmem_alloc(size_t len)
{
    uv_once(&secmem_once, secmem_init);
    if (secmem_ready != 1)
        return NULL;
    if (len == 0)
        len = 1;
    secmem_class *c = NULL;
    for (size_t i = 0; i < SECMEM_NCLASS; i++) {
        if (len <= secmem_classes[i].slot - SECMEM_HDR) {
            c = &secmem_classes[i];
            break;
        }
    }
    if (!c)
        return secmem_big_alloc(len);

    secmem_slab *fresh = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        uv_mutex_lock(&c->mu);
        secmem_slab *sl = c->head;
        if (!sl && c->spare) {
            sl = c->spare;
            c->spare = NULL;
            secmem_list_push(c, sl);
        }
        if (!sl && fresh) {
            sl = fresh;
            fresh = NULL;
            c->slabs++;
            secmem_list_push(c, sl);
        }
        secmem_hdr *h = sl ? secmem_slab_take(c, sl) : NULL;
        uv_mutex_unlock(&c->mu);
        if (fresh) /* another thread made room meanwhile */
            sodium_free(fresh);
        if (h)
            return (uint8_t *)h + SECMEM_HDR;
        if (attempt == 0) {
            fresh = secmem_slab_new(c); /* outside the lock: several syscalls */
            if (!fresh)
                return NULL;
        }
    }
    return NULL; /* not reached: the second attempt always has a slab */
}

void gni_secmem_free(void *p)
{
    if (!p)
        return;
    secmem_hdr *h = (secmem_hdr *)(void *)((uint8_t *)p - SECMEM_HDR);
    if (!h->slab) {
        if (h->magic != SECMEM_MAGIC_BIG)
            abort(); /* not ours, or a double free: memory is corrupt */
        uv_mutex_lock(&secmem_big_mu);
        secmem_big_cnt--;
        uv_mutex_unlock(&secmem_big_mu);
        sodium_free(h); /* wipes the whole region */
        return;
    }
    if (h->magic != SECMEM_MAGIC_USED)
        abort();
    secmem_slab *sl = h->slab;
    secmem_class *c = sl->cls;
    /* wipe outside the lock: the slot is still ours */
    sodium_memzero(p, c->slot - SECMEM_HDR);
    uint32_t idx = (uint32_t)(((uint8_t *)h - sl->slots) / c->slot);
    secmem_slab *release = NULL;

    uv_mutex_lock(&c->mu);
    h->magic = SECMEM_MAGIC_FREE;
    h->slab = NULL;
    h->next = sl->free_head;
    sl->free_head = idx;
    sl->used--;
    c->in_use--;
    if (sl->used == 0) {
        if (sl->on_list)
            secmem_list_remove(c, sl);
        if (!c->spare) {
            c->spare = sl;
        } else {
            release = sl;
            c->slabs--;
        }
    } else if (!sl->on_list) {
        secmem_list_push(c, sl);
    }
    uv_mutex_unlock(&c->mu);
    if (release)
        sodium_free(release); /* every slot is zero already; sodium_free wipes anyway */
}

void gni_secmem_get_stats(gni_secmem_stats *out)
{
    memset(out, 0, sizeof *out);
    uv_once(&secmem_once, secmem_init);
    if (secmem_ready != 1)
        return;
    for (size_t i = 0; i < SECMEM_NCLASS; i++) {
        secmem_class *c = &secmem_classes[i];
        uv_mutex_lock(&c->mu);
        out->slabs += c->slabs;
        out->slots_in_use += c->in_use;
        uv_mutex_unlock(&c->mu);
    }
    uv_mutex_lock(&secmem_big_mu);
    out->big_in_use = secmem_big_cnt;
    uv_mutex_unlock(&secmem_big_mu);
}

void gni_secmem_trim(void)
{
    uv_once(&secmem_once, secmem_init);
    if (secmem_ready != 1)
        return;
    for (size_t i = 0; i < SECMEM_NCLASS; i++) {
        secmem_class *c = &secmem_classes[i];
        uv_mutex_lock(&c->mu);
        secmem_slab *sl = c->spare;
        c->spare = NULL;
        if (sl)
            c->slabs--;
        uv_mutex_unlock(&c->mu);
        if (sl)
            sodium_free(sl);
    }
}
