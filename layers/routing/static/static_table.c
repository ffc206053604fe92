/*
 * The static router's table: a bounded array of peers, each with a bounded
 * list of addresses. Lookups are linear: the table is configuration, a few
 * hundred entries at most, and a lookup runs once per dial by peer ID.
 */
#include "static_table.h"

#include "gni.h"

#include <string.h>

typedef struct static_peer {
    gn_peer_id id;
    gn_multiaddr *addrs[GNI_STATIC_MAX_ADDRS];
    size_t naddrs;
} static_peer;

struct gni_static_table {
    static_peer *peers;
    size_t count, cap;
};

int gni_static_table_new(gni_static_table **out)
{
    gni_static_table *t = gn_calloc(1, sizeof *t);
    if (!t) {
        return GN_ENOMEM;
    }
    *out = t;
    return 0;
}

void gni_static_table_free(gni_static_table *t)
{
    if (!t) {
        return;
    }
    for (size_t i = 0; i < t->count; i++) {
        for (size_t j = 0; j < t->peers[i].naddrs; j++) {
            gn_multiaddr_free(t->peers[i].addrs[j]);
        }
    }
    gn_free(t->peers);
    gn_free(t);
}

static static_peer *table_find(const gni_static_table *t, const gn_peer_id *id)
{
    for (size_t i = 0; i < t->count; i++) {
        if (gn_peer_id_equal(&t->peers[i].id, id)) {
            return &t->peers[i];
        }
    }
    return NULL;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

int gni_static_table_add(gni_static_table *t, const char *entry, size_t len)
{
    while (len > 0 && is_blank(entry[0])) {
        entry++;
        len--;
    }
    while (len > 0 && is_blank(entry[len - 1])) {
        len--;
    }
    if (len == 0 || entry[0] == '#') {
        return 0;
    }
    if (len >= GNI_STATIC_MAX_LINE) {
        return GN_ETOOBIG;
    }
    char buf[GNI_STATIC_MAX_LINE];
    memcpy(buf, entry, len);
    buf[len] = '\0';
    gn_multiaddr *ma = NULL, *bare = NULL;
    int rc = gn_multiaddr_parse(buf, &ma);
    if (rc < 0) {
        return rc == GN_ENOMEM ? rc : GN_EPARSE;
    }
    gn_ma_component c;
    size_t n = gn_multiaddr_count(ma);
    gn_peer_id id;
    if (n < 2 || gn_multiaddr_component(ma, n - 1, &c) < 0 || c.code != GN_MA_P2P ||
        gn_peer_id_from_bytes(c.value, c.value_len, &id) < 0) {
        gn_multiaddr_free(ma);
        return GN_EINVAL;
    }
    rc = gn_multiaddr_decapsulate_code(ma, GN_MA_P2P, &bare);
    gn_multiaddr_free(ma);
    if (rc < 0) {
        return rc == GN_ENOMEM ? rc : GN_EINVAL;
    }
    static_peer *p = table_find(t, &id);
    if (p) {
        for (size_t i = 0; i < p->naddrs; i++) {
            if (gn_multiaddr_equal(p->addrs[i], bare)) {
                gn_multiaddr_free(bare);
                return 0;
            }
        }
        if (p->naddrs == GNI_STATIC_MAX_ADDRS) {
            gn_multiaddr_free(bare);
            return GN_ELIMIT;
        }
    } else {
        if (t->count == GNI_STATIC_MAX_PEERS) {
            gn_multiaddr_free(bare);
            return GN_ELIMIT;
        }
        if (t->count == t->cap) {
            size_t cap = t->cap ? t->cap * 2 : 8;
            static_peer *np = gn_realloc(t->peers, cap * sizeof *np);
            if (!np) {
                gn_multiaddr_free(bare);
                return GN_ENOMEM;
            }
            t->peers = np;
            t->cap = cap;
        }
        p = &t->peers[t->count++];
        memset(p, 0, sizeof *p);
        p->id = id;
    }
    p->addrs[p->naddrs++] = bare;
    return 1;
}

int gni_static_table_add_text(gni_static_table *t, const char *text, size_t len, size_t *line)
{
    size_t no = 0;
    while (len > 0) {
        const char *nl = memchr(text, '\n', len);
        size_t l = nl ? (size_t)(nl - text) : len;
        no++;
        int rc = gni_static_table_add(t, text, l);
        if (rc < 0) {
            if (line) {
                *line = no;
            }
            return rc;
        }
        if (!nl) {
            break;
        }
        text = nl + 1;
        len -= l + 1;
    }
    return 0;
}

size_t gni_static_table_find(const gni_static_table *t, const gn_peer_id *peer,
                             gn_multiaddr *const **addrs)
{
    const static_peer *p = table_find(t, peer);
    if (!p) {
        *addrs = NULL;
        return 0;
    }
    *addrs = p->addrs;
    return p->naddrs;
}

size_t gni_static_table_count(const gni_static_table *t)
{
    return t->count;
}
