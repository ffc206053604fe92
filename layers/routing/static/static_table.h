/*
 * The static router's table (sans-I/O core): peer ID -> multiaddrs, filled
 * from "<multiaddr>/p2p/<peer-id>" entries (configuration options or the
 * lines of a routes file). Bounded: GNI_STATIC_MAX_PEERS peers,
 * GNI_STATIC_MAX_ADDRS addresses per peer.
 *
 * Routes file format (docs/components.md): UTF-8 text, one entry per line;
 * blank lines and lines whose first non-blank character is '#' are
 * ignored; leading and trailing blanks are trimmed; an entry is a
 * multiaddr that ends in /p2p/<peer-id> and has a transport part before it.
 */
#ifndef GNI_STATIC_TABLE_H
#define GNI_STATIC_TABLE_H

#include "golemnet/identity.h"
#include "golemnet/multiaddr.h"

#define GNI_STATIC_MAX_PEERS 1024u
#define GNI_STATIC_MAX_ADDRS 16u
/** Longest line of a routes file, including the newline. */
#define GNI_STATIC_MAX_LINE 1024u

typedef struct gni_static_table gni_static_table;

/** Creates an empty table. Errors: GN_ENOMEM. */
int gni_static_table_new(gni_static_table **out);
/** Frees it; NULL is a no-op. */
void gni_static_table_free(gni_static_table *t);

/**
 * Adds one entry (@len bytes, not NUL-terminated, no newline). Returns 1
 * when an address was added, 0 for a blank or comment line or an address
 * already known. Errors: GN_EPARSE (not a multiaddr), GN_EINVAL (no
 * /p2p/<id> at the end, or nothing before it), GN_ELIMIT (too many peers or
 * addresses for the peer), GN_ETOOBIG (longer than GNI_STATIC_MAX_LINE),
 * GN_ENOMEM.
 */
int gni_static_table_add(gni_static_table *t, const char *entry, size_t len);

/**
 * Adds every line of @text (@len bytes). On an error, *@line (may be NULL)
 * receives the 1-based number of the bad line; entries before it stay.
 * Errors: those of gni_static_table_add.
 */
int gni_static_table_add_text(gni_static_table *t, const char *text, size_t len, size_t *line);

/**
 * @peer's addresses (without /p2p/), borrowed until the table changes;
 * returns the count, 0 when unknown.
 */
size_t gni_static_table_find(const gni_static_table *t, const gn_peer_id *peer,
                             gn_multiaddr *const **addrs);

/** Number of peers. */
size_t gni_static_table_count(const gni_static_table *t);

#endif /* GNI_STATIC_TABLE_H */
