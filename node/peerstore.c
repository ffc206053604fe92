/*
 * The node's peer store: records indexed by a keyed hash of the peer ID
 * (gni_htab; SipHash with a random key per store, so IDs chosen by remote
 * peers cannot pile up in one bucket) and kept on a list from the most to
 * the least recently updated, which gives the eviction order.
 *
 * Every update first finds or builds what it needs, then changes the
 * record: a failed allocation leaves the store as it was. A new record is
 * linked in and the oldest evicted only after the update succeeded.
 * Loop thread only.
 */
#include "peerstore.h"

#include "gni.h"
#include "gni_htab.h"

#include <sodium.h>
#include <string.h>

typedef struct ps_ent {
    gni_hnode hn;                 /* key: ps_hash(id) */
    struct ps_ent *newer, *older; /* update order */
    gni_peer_info info;
} ps_ent;

struct gni_peerstore {
    gni_htab index;
    ps_ent *newest, *oldest;
    size_t count;
    uint8_t hash_key[crypto_shorthash_KEYBYTES];
};

/* Points the empty strings of every extension block. */
static const char ps_empty[] = "";

int gni_peerstore_new(gni_peerstore **out)
{
    gni_peerstore *ps = gn_calloc(1, sizeof *ps);
    if (!ps) {
        return GN_ENOMEM;
    }
    if (gni_htab_init(&ps->index, 8) < 0) {
        gn_free(ps);
        return GN_ENOMEM;
    }
    gn_rng_fill(gn_rng_system(), ps->hash_key, sizeof ps->hash_key);
    *out = ps;
    return 0;
}

static void ps_ent_free(ps_ent *e)
{
    for (size_t i = 0; i < e->info.naddrs; i++) {
        gn_free(e->info.addrs[i].text);
    }
    gn_free(e->info.addrs);
    gn_free(e->info.ext);
    gn_free(e);
}

void gni_peerstore_free(gni_peerstore *ps)
{
    if (!ps) {
        return;
    }
    ps_ent *e = ps->newest;
    while (e) {
        ps_ent *next = e->older;
        ps_ent_free(e);
        e = next;
    }
    gni_htab_fini(&ps->index);
    gn_free(ps);
}

static uint64_t ps_hash(const gni_peerstore *ps, const gn_peer_id *id)
{
    uint8_t h[crypto_shorthash_BYTES];
    size_t len = GNI_MIN((size_t)id->len, sizeof id->bytes);
    crypto_shorthash(h, id->bytes, len, ps->hash_key);
    uint64_t key;
    memcpy(&key, h, sizeof key);
    return key;
}

static ps_ent *ps_find(const gni_peerstore *ps, const gn_peer_id *id, uint64_t key)
{
    for (gni_hnode *h = gni_htab_find(&ps->index, key); h;
         h = gni_htab_find_next(&ps->index, h)) {
        ps_ent *e = GNI_CONTAINER_OF(h, ps_ent, hn);
        if (gn_peer_id_equal(&e->info.id, id)) {
            return e;
        }
    }
    return NULL;
}

static void ps_unlink(gni_peerstore *ps, ps_ent *e)
{
    if (e->newer) {
        e->newer->older = e->older;
    } else {
        ps->newest = e->older;
    }
    if (e->older) {
        e->older->newer = e->newer;
    } else {
        ps->oldest = e->newer;
    }
    e->newer = e->older = NULL;
}

static void ps_link_newest(gni_peerstore *ps, ps_ent *e)
{
    e->newer = NULL;
    e->older = ps->newest;
    if (ps->newest) {
        ps->newest->newer = e;
    } else {
        ps->oldest = e;
    }
    ps->newest = e;
}

/*
 * Finds @id's record, or makes one that is indexed but not yet on the
 * update list (*@created set): the caller then ends with ps_commit() or,
 * when its update failed, ps_abort().
 */
static ps_ent *ps_open(gni_peerstore *ps, const gn_peer_id *id, bool *created)
{
    uint64_t key = ps_hash(ps, id);
    ps_ent *e = ps_find(ps, id, key);
    *created = false;
    if (e) {
        return e;
    }
    if (!(e = gn_calloc(1, sizeof *e))) {
        return NULL;
    }
    e->info.id = *id;
    e->hn.key = key;
    if (gni_htab_insert(&ps->index, &e->hn) < 0) {
        gn_free(e);
        return NULL;
    }
    *created = true;
    return e;
}

/* Undoes ps_open() after a failed update (an existing record is untouched). */
static void ps_abort(gni_peerstore *ps, ps_ent *e, bool created)
{
    if (created) {
        gni_htab_remove(&ps->index, &e->hn);
        ps_ent_free(e);
    }
}

/* @e was updated: it becomes the newest; a new record may evict the oldest. */
static void ps_commit(gni_peerstore *ps, ps_ent *e, bool created)
{
    if (!created) {
        if (ps->newest != e) {
            ps_unlink(ps, e);
            ps_link_newest(ps, e);
        }
        return;
    }
    ps_link_newest(ps, e);
    ps->count++;
    if (ps->count > GNI_PS_MAX_PEERS) {
        ps_ent *old = ps->oldest; /* not e: the bound is at least 1 */
        ps_unlink(ps, old);
        gni_htab_remove(&ps->index, &old->hn);
        ps_ent_free(old);
        ps->count--;
    }
}

const gni_peer_info *gni_peerstore_get(const gni_peerstore *ps, const gn_peer_id *id)
{
    ps_ent *e = ps_find(ps, id, ps_hash(ps, id));
    return e ? &e->info : NULL;
}

int gni_peerstore_add_addr(gni_peerstore *ps, const gn_peer_id *id, const char *addr)
{
    return gni_peerstore_add_addr_ttl(ps, id, addr, GN_TIME_INFINITY, 0);
}

/* Takes @p's address @i out of the array (its string stays with the caller). */
static void ps_addr_remove(gni_peer_info *p, size_t i)
{
    memmove(&p->addrs[i], &p->addrs[i + 1], (p->naddrs - i - 1) * sizeof p->addrs[0]);
    p->naddrs--;
}

int gni_peerstore_add_addr_ttl(gni_peerstore *ps, const gn_peer_id *id, const char *addr,
                               gn_time expiry, int src)
{
    size_t len = addr ? strlen(addr) : 0;
    if (len == 0) {
        return GN_EINVAL;
    }
    if (len >= GNI_PS_STR_MAX) {
        return GN_ETOOBIG;
    }
    bool created;
    ps_ent *e = ps_open(ps, id, &created);
    if (!e) {
        return GN_ENOMEM;
    }
    gni_peer_info *p = &e->info;
    size_t known = p->naddrs;
    for (size_t i = 0; i < p->naddrs; i++) {
        if (strcmp(p->addrs[i].text, addr) == 0) {
            known = i;
            break;
        }
    }
    if (known < p->naddrs) {
        /* known: it goes to the newest place, keeping the later expiry */
        gni_ps_addr a = p->addrs[known];
        ps_addr_remove(p, known);
        a.expiry = GNI_MAX(expiry, a.expiry);
        a.src = (uint8_t)src;
        p->addrs[p->naddrs++] = a;
        ps_commit(ps, e, created);
        return 0;
    }
    char *copy = gn_malloc(len + 1);
    if (!copy) {
        ps_abort(ps, e, created);
        return GN_ENOMEM;
    }
    memcpy(copy, addr, len + 1);
    if (p->naddrs == GNI_PS_MAX_ADDRS) {
        gn_free(p->addrs[0].text); /* the oldest goes */
        ps_addr_remove(p, 0);
    } else if (p->naddrs == p->addr_cap) {
        size_t cap = p->addr_cap ? GNI_MIN(2u * p->addr_cap, GNI_PS_MAX_ADDRS) : 1u;
        gni_ps_addr *grown = gn_realloc(p->addrs, cap * sizeof *grown);
        if (!grown) {
            gn_free(copy);
            ps_abort(ps, e, created);
            return GN_ENOMEM;
        }
        p->addrs = grown;
        p->addr_cap = (uint8_t)cap;
    }
    p->addrs[p->naddrs++] = (gni_ps_addr){copy, expiry, (uint8_t)src};
    ps_commit(ps, e, created);
    return 0;
}

/* Length of @s cut to @max bytes. */
static size_t ps_strlen_max(const char *s, size_t max)
{
    size_t n = 0;
    while (n < max && s[n]) {
        n++;
    }
    return n;
}

/* Copies @len bytes of @s and a NUL to *@at (advanced); "" needs no room. */
static const char *ps_put_str(char **at, const char *s, size_t len)
{
    if (len == 0) {
        return ps_empty;
    }
    char *out = *at;
    memcpy(out, s, len);
    out[len] = '\0';
    *at += len + 1;
    return out;
}

/*
 * A new extension block: @old's key and RTT (when @old is not NULL) with
 * @agent, @observed and the @n @protocols, all copied into the block.
 * NULL on allocation failure.
 */
static gni_peer_ext *ps_ext_build(const gni_peer_ext *old, const char *agent,
                                  const char *observed, const char *const *protocols, size_t n)
{
    size_t agent_len = ps_strlen_max(agent, GNI_PS_STR_MAX - 1);
    size_t obs_len = ps_strlen_max(observed, GNI_PS_STR_MAX - 1);
    size_t size = sizeof(gni_peer_ext) + n * sizeof(char *);
    size += agent_len ? agent_len + 1 : 0;
    size += obs_len ? obs_len + 1 : 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(protocols[i]);
        if (len > SIZE_MAX - size - 1) {
            return NULL;
        }
        size += len ? len + 1 : 0;
    }
    gni_peer_ext *x = gn_malloc(size);
    if (!x) {
        return NULL;
    }
    memset(x, 0, sizeof *x);
    if (old) {
        x->latency = old->latency;
        x->has_pubkey = old->has_pubkey;
        memcpy(x->pubkey, old->pubkey, sizeof x->pubkey);
    }
    const char **list = (const char **)(void *)(x + 1);
    char *at = (char *)(list + n);
    x->agent = ps_put_str(&at, agent, agent_len);
    x->observed = ps_put_str(&at, observed, obs_len);
    for (size_t i = 0; i < n; i++) {
        list[i] = ps_put_str(&at, protocols[i], strlen(protocols[i]));
    }
    x->protocols = n ? list : NULL;
    x->nprotocols = (uint16_t)n;
    return x;
}

/* @p's extension block, made empty when it has none. NULL: no memory. */
static gni_peer_ext *ps_ext(gni_peer_info *p)
{
    if (!p->ext) {
        p->ext = ps_ext_build(NULL, ps_empty, ps_empty, NULL, 0);
    }
    return p->ext;
}

int gni_peerstore_record_latency(gni_peerstore *ps, const gn_peer_id *id, gn_time rtt)
{
    bool created;
    ps_ent *e = ps_open(ps, id, &created);
    gni_peer_ext *x = e ? ps_ext(&e->info) : NULL;
    if (!x) {
        if (e) {
            ps_abort(ps, e, created);
        }
        return GN_ENOMEM;
    }
    x->latency = x->latency ? x->latency - x->latency / 8 + rtt / 8 : rtt;
    ps_commit(ps, e, created);
    return 0;
}

int gni_peerstore_set_pubkey(gni_peerstore *ps, const gn_peer_id *id,
                             const uint8_t pub[GN_ED25519_PUBLICKEYBYTES])
{
    bool created;
    ps_ent *e = ps_open(ps, id, &created);
    gni_peer_ext *x = e ? ps_ext(&e->info) : NULL;
    if (!x) {
        if (e) {
            ps_abort(ps, e, created);
        }
        return GN_ENOMEM;
    }
    memcpy(x->pubkey, pub, GN_ED25519_PUBLICKEYBYTES);
    x->has_pubkey = true;
    ps_commit(ps, e, created);
    return 0;
}

int gni_peerstore_set_protocols(gni_peerstore *ps, const gn_peer_id *id,
                                const char *const *protocols, size_t n)
{
    bool created;
    ps_ent *e = ps_open(ps, id, &created);
    if (!e) {
        return GN_ENOMEM;
    }
    const gni_peer_info *p = &e->info;
    n = GNI_MIN(n, (size_t)GNI_PS_MAX_PROTOCOLS);
    gni_peer_ext *x = ps_ext_build(p->ext, gni_peer_agent(p), gni_peer_observed(p), protocols, n);
    if (!x) {
        ps_abort(ps, e, created);
        return GN_ENOMEM;
    }
    gn_free(e->info.ext);
    e->info.ext = x;
    ps_commit(ps, e, created);
    return 0;
}

int gni_peerstore_set_identify(gni_peerstore *ps, const gn_peer_id *id, const char *observed,
                               const char *agent)
{
    bool created;
    ps_ent *e = ps_open(ps, id, &created);
    if (!e) {
        return GN_ENOMEM;
    }
    gni_peer_info *p = &e->info;
    const gni_peer_ext *old = p->ext;
    gni_peer_ext *x = ps_ext_build(old, agent ? agent : gni_peer_agent(p),
                                   observed ? observed : gni_peer_observed(p),
                                   old ? old->protocols : NULL, gni_peer_nprotocols(p));
    if (!x) {
        ps_abort(ps, e, created);
        return GN_ENOMEM;
    }
    gn_free(p->ext);
    p->ext = x;
    p->identified = true;
    ps_commit(ps, e, created);
    return 0;
}

bool gni_peerstore_supports(const gni_peerstore *ps, const gn_peer_id *id, const char *protocol)
{
    const gni_peer_info *p = gni_peerstore_get(ps, id);
    size_t n = p ? gni_peer_nprotocols(p) : 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(gni_peer_protocol(p, i), protocol) == 0) {
            return true;
        }
    }
    return false;
}

size_t gni_peerstore_count(const gni_peerstore *ps)
{
    return ps->count;
}
