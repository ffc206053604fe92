/*
 * The node's peer store: a bounded list of peer records, most recently
 * updated first. Linear search is fine at the bound (GNI_PS_MAX_PEERS) for
 * what the node does with it (a lookup per identify or channel open).
 * Loop thread only.
 */
#include "peerstore.h"

#include "gni.h"

#include <stdio.h>
#include <string.h>

typedef struct ps_ent {
    struct ps_ent *next;
    gni_peer_info info;
} ps_ent;

struct gni_peerstore {
    ps_ent *head;
    size_t count;
};

int gni_peerstore_new(gni_peerstore **out)
{
    gni_peerstore *ps = gn_calloc(1, sizeof *ps);
    if (!ps) {
        return GN_ENOMEM;
    }
    *out = ps;
    return 0;
}

static void ps_free_protocols(gni_peer_info *p)
{
    for (size_t i = 0; i < p->nprotocols; i++) {
        gn_free(p->protocols[i]);
    }
    gn_free(p->protocols);
    p->protocols = NULL;
    p->nprotocols = 0;
}

static void ps_ent_free(ps_ent *e)
{
    for (size_t i = 0; i < e->info.naddrs; i++) {
        gn_free(e->info.addrs[i]);
    }
    ps_free_protocols(&e->info);
    gn_free(e);
}

void gni_peerstore_free(gni_peerstore *ps)
{
    if (!ps) {
        return;
    }
    ps_ent *e = ps->head;
    while (e) {
        ps_ent *next = e->next;
        ps_ent_free(e);
        e = next;
    }
    gn_free(ps);
}

static ps_ent *ps_find(const gni_peerstore *ps, const gn_peer_id *id, ps_ent **prev)
{
    ps_ent *p = NULL;
    for (ps_ent *e = ps->head; e; p = e, e = e->next) {
        if (gn_peer_id_equal(&e->info.id, id)) {
            if (prev) {
                *prev = p;
            }
            return e;
        }
    }
    return NULL;
}

/* Finds or creates @id's record and moves it to the front. */
static ps_ent *ps_touch(gni_peerstore *ps, const gn_peer_id *id)
{
    ps_ent *prev = NULL;
    ps_ent *e = ps_find(ps, id, &prev);
    if (e) {
        if (prev) {
            prev->next = e->next;
            e->next = ps->head;
            ps->head = e;
        }
        return e;
    }
    e = gn_calloc(1, sizeof *e);
    if (!e) {
        return NULL;
    }
    e->info.id = *id;
    e->next = ps->head;
    ps->head = e;
    ps->count++;
    if (ps->count > GNI_PS_MAX_PEERS) {
        /* evict the least recently updated (the tail) */
        ps_ent *t = ps->head;
        while (t->next && t->next->next) {
            t = t->next;
        }
        ps_ent_free(t->next);
        t->next = NULL;
        ps->count--;
    }
    return e;
}

const gni_peer_info *gni_peerstore_get(const gni_peerstore *ps, const gn_peer_id *id)
{
    ps_ent *e = ps_find(ps, id, NULL);
    return e ? &e->info : NULL;
}

int gni_peerstore_add_addr(gni_peerstore *ps, const gn_peer_id *id, const char *addr)
{
    return gni_peerstore_add_addr_ttl(ps, id, addr, GN_TIME_INFINITY, 0);
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
    ps_ent *e = ps_touch(ps, id);
    if (!e) {
        return GN_ENOMEM;
    }
    gni_peer_info *p = &e->info;
    char *copy = NULL;
    for (size_t i = 0; i < p->naddrs; i++) {
        if (strcmp(p->addrs[i], addr) == 0) {
            /* known: take it out, it goes back in as the newest */
            copy = p->addrs[i];
            expiry = GNI_MAX(expiry, p->addr_expiry[i]);
            size_t tail = p->naddrs - i - 1;
            memmove(&p->addrs[i], &p->addrs[i + 1], tail * sizeof p->addrs[0]);
            memmove(&p->addr_expiry[i], &p->addr_expiry[i + 1], tail * sizeof p->addr_expiry[0]);
            memmove(&p->addr_src[i], &p->addr_src[i + 1], tail * sizeof p->addr_src[0]);
            p->naddrs--;
            break;
        }
    }
    if (!copy && !(copy = gn_strdup(addr))) {
        return GN_ENOMEM;
    }
    if (p->naddrs == GNI_PS_MAX_ADDRS) {
        gn_free(p->addrs[0]);
        size_t tail = GNI_PS_MAX_ADDRS - 1;
        memmove(&p->addrs[0], &p->addrs[1], tail * sizeof p->addrs[0]);
        memmove(&p->addr_expiry[0], &p->addr_expiry[1], tail * sizeof p->addr_expiry[0]);
        memmove(&p->addr_src[0], &p->addr_src[1], tail * sizeof p->addr_src[0]);
        p->naddrs--;
    }
    p->addrs[p->naddrs] = copy;
    p->addr_expiry[p->naddrs] = expiry;
    p->addr_src[p->naddrs] = (uint8_t)src;
    p->naddrs++;
    return 0;
}

int gni_peerstore_record_latency(gni_peerstore *ps, const gn_peer_id *id, gn_time rtt)
{
    ps_ent *e = ps_touch(ps, id);
    if (!e) {
        return GN_ENOMEM;
    }
    e->info.latency = e->info.latency ? e->info.latency - e->info.latency / 8 + rtt / 8 : rtt;
    return 0;
}

int gni_peerstore_set_pubkey(gni_peerstore *ps, const gn_peer_id *id,
                             const uint8_t pub[GN_ED25519_PUBLICKEYBYTES])
{
    ps_ent *e = ps_touch(ps, id);
    if (!e) {
        return GN_ENOMEM;
    }
    memcpy(e->info.pubkey, pub, GN_ED25519_PUBLICKEYBYTES);
    e->info.has_pubkey = true;
    return 0;
}

int gni_peerstore_set_protocols(gni_peerstore *ps, const gn_peer_id *id,
                                const char *const *protocols, size_t n)
{
    ps_ent *e = ps_touch(ps, id);
    if (!e) {
        return GN_ENOMEM;
    }
    n = GNI_MIN(n, (size_t)GNI_PS_MAX_PROTOCOLS);
    char **list = n ? gn_calloc(n, sizeof(char *)) : NULL;
    if (n && !list) {
        return GN_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (!(list[i] = gn_strdup(protocols[i]))) {
            for (size_t j = 0; j < i; j++) {
                gn_free(list[j]);
            }
            gn_free(list);
            return GN_ENOMEM;
        }
    }
    ps_free_protocols(&e->info);
    e->info.protocols = list;
    e->info.nprotocols = n;
    return 0;
}

int gni_peerstore_set_identify(gni_peerstore *ps, const gn_peer_id *id, const char *observed,
                               const char *agent)
{
    ps_ent *e = ps_touch(ps, id);
    if (!e) {
        return GN_ENOMEM;
    }
    if (observed) {
        snprintf(e->info.observed, sizeof e->info.observed, "%s", observed);
    }
    if (agent) {
        snprintf(e->info.agent, sizeof e->info.agent, "%s", agent);
    }
    e->info.identified = true;
    return 0;
}

bool gni_peerstore_supports(const gni_peerstore *ps, const gn_peer_id *id, const char *protocol)
{
    const gni_peer_info *p = gni_peerstore_get(ps, id);
    if (!p) {
        return false;
    }
    for (size_t i = 0; i < p->nprotocols; i++) {
        if (strcmp(p->protocols[i], protocol) == 0) {
            return true;
        }
    }
    return false;
}

size_t gni_peerstore_count(const gni_peerstore *ps)
{
    return ps->count;
}
