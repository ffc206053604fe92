/*
 * Kademlia record store and provider store (sans-I/O core, private to the
 * library).
 *
 * Three objects, all owned by the router glue:
 *
 *   gni_kad_validators  namespace -> (validate, select) registry. A record
 *                       key is "/<ns>/<rest>" (bytes); only keys whose <ns>
 *                       is registered are accepted (GN_ENOTSUP otherwise, as
 *                       go- and js-libp2p-kad-dht do). "pk" is built in.
 *   gni_kad_records     PUT_VALUE / GET_VALUE storage: validated values with
 *                       their receive time, expiring after a TTL; records
 *                       this node put itself ("local") are kept apart for
 *                       republishing and never expire or give way.
 *   gni_kad_providers   ADD_PROVIDER / GET_PROVIDERS storage: per key, the
 *                       peers that announced it and their addresses,
 *                       expiring after a TTL; plus the list of keys this
 *                       node provides, with when it last announced them.
 *
 * Hostile input: everything a remote peer can put is bounded by the
 * configuration (counts, key and value lengths, bytes); a full store refuses
 * remote puts with GN_ELIMIT instead of evicting, so an attacker cannot push
 * out records that others stored (docs/routing-kad.md, "Record store").
 * Lengths are checked before anything is allocated.
 *
 * Time: calls take @now (gn_time, monotonic ns). @now must not decrease
 * between calls on one store; a smaller value is stored as the largest seen
 * so far (expiry order stays the order of arrival). No I/O, no clock, no
 * globals; memory comes from gn_malloc and friends.
 * Thread context: one thread at a time per object (the router's loop
 * thread); no internal locking. Validator callbacks run inside the call that
 * validates and must not call back into the store.
 * Spec: libp2p/specs kad-dht/README.md "Value storage and retrieval" (entry
 * validation, Validate/Select), "Content provider advertisement and
 * discovery" (provider records expire after 48 h, republished every 22 h:
 * libp2p/specs#451); go-libp2p-kad-dht MaxRecordAge (36 h).
 */
#ifndef GNI_KAD_STORE_H
#define GNI_KAD_STORE_H

#include "golemnet/common.h"
#include "golemnet/identity.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- validators ---- */

/** Namespaces a registry holds at most. */
#define GNI_KAD_NS_MAX 32u
/** Longest namespace name, bytes (without the slashes). */
#define GNI_KAD_NS_NAME_MAX 64u

/**
 * Checks one record: @key (@klen bytes, the whole "/<ns>/<rest>") and
 * @value (@vlen bytes; NULL allowed when 0). Both borrowed for the call.
 * Returns 0 when valid, a negative gn_err when not (it becomes the put's
 * result). Must be a pure function of its inputs.
 */
typedef int (*gni_kad_validate_fn)(void *arg, const uint8_t *key, size_t klen,
                                   const uint8_t *value, size_t vlen);

/**
 * Picks the best of @n >= 2 valid values for @key: values[i] has lens[i]
 * bytes. Returns its index (0..n-1) or a negative gn_err. Decisions must be
 * stable: the store passes the stored value first, so returning 0 on a tie
 * keeps what is stored.
 */
typedef int (*gni_kad_select_fn)(void *arg, const uint8_t *key, size_t klen,
                                 const uint8_t *const *values, const size_t *lens, size_t n);

typedef struct gni_kad_validators gni_kad_validators;

/**
 * Creates a registry holding the built-in "pk" namespace: the value is a
 * libp2p PublicKey protobuf (canonical encoding) and the key is "/pk/"
 * followed by the binary peer ID (multihash) derived from exactly those
 * bytes. The key material of every type (Ed25519, RSA, secp256k1, ECDSA) is
 * checked as gn_pubkey_check() does (since issue 17; before, only Ed25519).
 * pk errors: GN_EPARSE (<rest> is not a peer ID, the value is not a
 * canonical PublicKey protobuf; also when the protobuf decoder runs out of
 * memory), GN_ETOOBIG (value over GN_PUBKEY_MAX_BYTES), GN_EBADKEY (the key
 * is malformed or unsupported), GN_EPEERID (the key is not the one the peer
 * ID names).
 * The pk selector takes index 0 (all valid values are the same key).
 * Errors: GN_EINVAL (@out NULL), GN_ENOMEM. *@out untouched on failure.
 */
int gni_kad_validators_new(gni_kad_validators **out);

/** Frees @v; NULL is a no-op. Stores using @v must be freed first. */
void gni_kad_validators_free(gni_kad_validators *v);

/**
 * Registers namespace @ns (NUL-terminated, 1..GNI_KAD_NS_NAME_MAX bytes, no
 * '/'; copied) with @validate (required), @select (NULL: index 0 always
 * wins, so the stored value is kept) and @arg (passed to both, borrowed
 * until replaced or @v is freed). Registering a name again replaces its
 * entry, the built-in "pk" included.
 * Errors: GN_EINVAL (NULL @v, @ns or @validate; bad name), GN_ELIMIT
 * (GNI_KAD_NS_MAX namespaces already registered).
 */
int gni_kad_validators_register(gni_kad_validators *v, const char *ns,
                                gni_kad_validate_fn validate, gni_kad_select_fn select,
                                void *arg);

/**
 * Validates @value (@vlen bytes) for @key (@klen bytes) with the validator
 * of the key's namespace. Returns 0 or the validator's error.
 * Errors: GN_EINVAL (NULL @v, NULL @key or NULL @value with a nonzero
 * length), GN_ENOTSUP (@key is not "/<ns>/..." with a registered <ns>),
 * GN_ECALLBACK (the validator returned a positive value), any negative
 * code the validator returns.
 */
int gni_kad_validators_validate(const gni_kad_validators *v, const uint8_t *key, size_t klen,
                                const uint8_t *value, size_t vlen);

/**
 * Picks the best of @n values (values[i], lens[i] bytes) for @key with the
 * namespace's selector (for GET_VALUE answers; validate each first) into
 * *@best. @n == 1 gives 0 without calling the selector.
 * Errors: GN_EINVAL (NULL argument, @n 0), GN_ENOTSUP (no namespace),
 * GN_ECALLBACK (selector index out of range or positive), the selector's
 * negative code.
 */
int gni_kad_validators_select(const gni_kad_validators *v, const uint8_t *key, size_t klen,
                              const uint8_t *const *values, const size_t *lens, size_t n,
                              size_t *best);

/* ---- records ---- */

/** Defaults: 1024 records, 16 MiB of key + value bytes, 64 KiB values, 1 KiB keys, 36 h. */
#define GNI_KAD_RECORDS_DEFAULT 1024u
#define GNI_KAD_RECORD_BYTES_DEFAULT (16u * 1024u * 1024u)
#define GNI_KAD_VALUE_LEN_DEFAULT (64u * 1024u)
#define GNI_KAD_STORE_KEY_LEN_DEFAULT 1024u
#define GNI_KAD_RECORD_TTL_DEFAULT (36u * 3600u * GN_S)
/** Largest configurable max_records and max_keys (the indexes are sorted arrays). */
#define GNI_KAD_STORE_COUNT_LIMIT (1u << 20)

/** Record store parameters; fill with gni_kad_records_config_default() first. */
typedef struct gni_kad_records_config {
    size_t max_records;   /* local + remote records, 1..GNI_KAD_STORE_COUNT_LIMIT */
    size_t max_bytes;     /* key + value bytes of all records, >= 1 */
    size_t max_value_len; /* bytes per value, >= 1 */
    size_t max_key_len;   /* bytes per key, >= 1 */
    gn_time ttl;          /* remote records live this long after their last put, > 0 */
} gni_kad_records_config;

typedef struct gni_kad_records gni_kad_records;

/** Results of gni_kad_records_put() (positive; errors are negative). */
enum {
    GNI_KAD_PUT_STORED = 1, /* new key, or a better value replaced the stored one */
    GNI_KAD_PUT_SAME = 2,   /* the same bytes were stored: receive time refreshed */
    GNI_KAD_PUT_KEPT = 3    /* the stored value is as good or better: the new one was NOT stored */
};

/** Fills @cfg with the defaults above. */
void gni_kad_records_config_default(gni_kad_records_config *cfg);

/**
 * Creates an empty record store checking puts with @v (borrowed: it must
 * outlive the store; later registrations apply at once). @cfg NULL selects
 * the defaults; it is copied.
 * Errors: GN_EINVAL (NULL @v or @out, a @cfg field out of range),
 * GN_ENOMEM. *@out untouched on failure.
 */
int gni_kad_records_new(const gni_kad_records_config *cfg, const gni_kad_validators *v,
                        gni_kad_records **out);

/** Frees the store and every record; NULL is a no-op. */
void gni_kad_records_free(gni_kad_records *rs);

/**
 * Stores a copy of @value (@vlen bytes) under @key (@klen bytes) received
 * at @now, after the key's namespace validator accepts it. First the remote
 * records expired by @now are freed (as gni_kad_records_expire()), so dead
 * records neither fill the store nor compete with new values. When the key
 * already holds a value, identical bytes only refresh the receive time
 * (GNI_KAD_PUT_SAME); otherwise the namespace's selector sees {stored, new}
 * and the new value replaces the stored one only when it picks index 1.
 * @local: this node puts the record itself. A local record is listed by
 * gni_kad_records_local_at(), never expires, and stays local when a better
 * remote value later replaces its value. When the store is full, a local
 * put evicts the least recently received remote records to make room; a
 * remote put is refused (nothing is ever evicted for a remote peer).
 * Returns GNI_KAD_PUT_STORED, GNI_KAD_PUT_SAME or GNI_KAD_PUT_KEPT (a put
 * that loses changes nothing: a remote record stays remote even when the
 * losing put was local).
 * Errors: GN_EINVAL (NULL @rs, @klen 0, NULL @key or NULL @value with a
 * nonzero length), GN_ETOOBIG (@klen > max_key_len, @vlen > max_value_len),
 * GN_ENOTSUP (no validator for the key's namespace), the validator's or
 * selector's error (GN_ECALLBACK when either breaks its contract),
 * GN_ELIMIT (max_records or max_bytes would be exceeded: a remote put, or a
 * local put with not enough remote records to evict), GN_ENOMEM. On error
 * the store is unchanged apart from that expiry (none when validation fails).
 */
int gni_kad_records_put(gni_kad_records *rs, const uint8_t *key, size_t klen,
                        const uint8_t *value, size_t vlen, gn_time now, bool local);

/**
 * Looks up @key (@klen bytes). On success *@value (NULL allowed) borrows the
 * stored bytes until the store next changes, *@received (NULL allowed) gets
 * the time of the last put.
 * Errors: GN_EINVAL (NULL @rs, NULL @key with @klen > 0), GN_ENOTFOUND (no
 * record, or a remote one whose TTL ran out by @now; expire() frees it).
 */
int gni_kad_records_get(const gni_kad_records *rs, const uint8_t *key, size_t klen, gn_time now,
                        gn_slice *value, gn_time *received);

/**
 * Removes the record of @key, local or remote (this node stops publishing it).
 * Errors: GN_EINVAL (NULL @rs, NULL @key with @klen > 0), GN_ENOTFOUND.
 */
int gni_kad_records_remove(gni_kad_records *rs, const uint8_t *key, size_t klen);

/** Frees the remote records whose TTL ran out by @now; returns how many. */
size_t gni_kad_records_expire(gni_kad_records *rs, gn_time now);

/** When the next remote record expires (arm the timer), GN_TIME_INFINITY when none. */
gn_time gni_kad_records_next_expiry(const gni_kad_records *rs);

/** Records in all (local and remote), local ones, and key + value bytes in all. */
size_t gni_kad_records_count(const gni_kad_records *rs);
size_t gni_kad_records_local_count(const gni_kad_records *rs);
size_t gni_kad_records_bytes(const gni_kad_records *rs);

/**
 * The @i-th local record (0..local_count-1, in the order they became
 * local), for republishing: *@key, *@value (borrowed until the store next
 * changes) and *@put_at (time of its last put); each out-pointer may be NULL.
 * Errors: GN_EINVAL (NULL @rs), GN_ENOTFOUND (@i out of range).
 */
int gni_kad_records_local_at(const gni_kad_records *rs, size_t i, gn_slice *key, gn_slice *value,
                             gn_time *put_at);

/* ---- providers ---- */

/** Largest configurable max_addrs per provider. */
#define GNI_KAD_PROV_ADDRS_MAX 8u
/** Binary multiaddrs longer than this are not stored. */
#define GNI_KAD_PROV_ADDR_BYTES 256u
/** Defaults: 64 per key, 4096 keys, 16384 entries, 4 addresses, 256-byte keys, 48 h. */
#define GNI_KAD_PROV_PER_KEY_DEFAULT 64u
#define GNI_KAD_PROV_KEYS_DEFAULT 4096u
#define GNI_KAD_PROV_TOTAL_DEFAULT 16384u
#define GNI_KAD_PROV_ADDRS_DEFAULT 4u
#define GNI_KAD_PROV_KEY_LEN_DEFAULT 256u
#define GNI_KAD_PROV_TTL_DEFAULT (48u * 3600u * GN_S)
/** Spec republish interval for provider records (22 h): the glue's timer, not used here. */
#define GNI_KAD_PROV_REPUBLISH (22u * 3600u * GN_S)

/** Provider store parameters; fill with gni_kad_providers_config_default() first. */
typedef struct gni_kad_providers_config {
    size_t max_per_key; /* providers per key, 1..4096 */
    size_t max_keys;    /* keys with providers; also local keys; 1..GNI_KAD_STORE_COUNT_LIMIT */
    size_t max_total;   /* provider entries over all keys, >= 1 */
    size_t max_addrs;   /* addresses kept per provider, 0..GNI_KAD_PROV_ADDRS_MAX */
    size_t max_key_len; /* bytes per key, >= 1 */
    gn_time ttl;        /* an entry lives this long after its last announcement, > 0 */
} gni_kad_providers_config;

/** One provider of a key. Read-only; borrowed until the store next changes. */
typedef struct gni_kad_provider {
    gn_peer_id id;
    gn_time added; /* last announcement (add or refresh) */
    size_t naddrs;
    gn_slice addrs[GNI_KAD_PROV_ADDRS_MAX]; /* binary multiaddrs, owned by the store */
} gni_kad_provider;

typedef struct gni_kad_providers gni_kad_providers;

/** Results of gni_kad_providers_add() and gni_kad_providers_local_add(). */
enum {
    GNI_KAD_PROV_ADDED = 1,     /* new entry */
    GNI_KAD_PROV_REFRESHED = 2, /* known entry: announcement time and addresses updated */
    GNI_KAD_PROV_REPLACED = 3   /* key was full: its oldest entry gave way to the new one */
};

/** Fills @cfg with the defaults above. */
void gni_kad_providers_config_default(gni_kad_providers_config *cfg);

/**
 * Creates an empty provider store. @cfg NULL selects the defaults; copied.
 * Errors: GN_EINVAL (NULL @out, a @cfg field out of range), GN_ENOMEM.
 * *@out untouched on failure.
 */
int gni_kad_providers_new(const gni_kad_providers_config *cfg, gni_kad_providers **out);

/** Frees the store; NULL is a no-op. */
void gni_kad_providers_free(gni_kad_providers *ps);

/**
 * Records that @peer provides @key (@klen bytes; the caller has checked it
 * is a multihash and that @peer sent the announcement) at @now, after
 * freeing the entries expired by @now (as gni_kad_providers_expire()), with @naddrs
 * binary multiaddrs @addrs (borrowed; the caller has parsed them): the
 * first max_addrs distinct ones of 1..GNI_KAD_PROV_ADDR_BYTES bytes are
 * copied, others skipped. A known entry is refreshed: its time becomes @now,
 * it becomes the key's newest, and its addresses are replaced when @addrs
 * holds any storable one (kept otherwise). A new entry for a key holding
 * max_per_key replaces the key's oldest (least recently announced) entry.
 * Returns GNI_KAD_PROV_ADDED, GNI_KAD_PROV_REFRESHED or GNI_KAD_PROV_REPLACED.
 * Errors: GN_EINVAL (NULL @ps or @peer, empty @peer, @klen 0, NULL @key,
 * NULL @addrs with @naddrs > 0), GN_ETOOBIG (@klen > max_key_len),
 * GN_ELIMIT (a new key with max_keys keys held, or a new entry with
 * max_total entries held), GN_ENOMEM. On error the store is unchanged
 * apart from that expiry (none when the arguments are refused).
 */
int gni_kad_providers_add(gni_kad_providers *ps, const uint8_t *key, size_t klen,
                          const gn_peer_id *peer, const gn_slice *addrs, size_t naddrs,
                          gn_time now);

/**
 * The providers of @key (@klen bytes) not expired at @now, newest
 * announcement first: writes up to @max pointers into @out (borrowed until
 * the store next changes) and returns how many it wrote. 0 for an unknown
 * key or NULL arguments.
 */
size_t gni_kad_providers_get(const gni_kad_providers *ps, const uint8_t *key, size_t klen,
                             gn_time now, const gni_kad_provider **out, size_t max);

/** Frees the entries whose TTL ran out by @now (and keys left empty); returns how many entries. */
size_t gni_kad_providers_expire(gni_kad_providers *ps, gn_time now);

/** When the next entry expires, GN_TIME_INFINITY when none. */
gn_time gni_kad_providers_next_expiry(const gni_kad_providers *ps);

/** Entries over all keys, and keys with at least one entry. */
size_t gni_kad_providers_count(const gni_kad_providers *ps);
size_t gni_kad_providers_key_count(const gni_kad_providers *ps);

/**
 * Notes that this node provides @key (@klen bytes) and announced it at @now
 * (call again after each republish). Local keys never expire; they are
 * listed least recently announced first by gni_kad_providers_local_at().
 * (Whether this node also appears among the key's providers is the
 * caller's choice: gni_kad_providers_add() with its own peer ID.)
 * Returns GNI_KAD_PROV_ADDED or GNI_KAD_PROV_REFRESHED.
 * Errors: GN_EINVAL (NULL @ps or @key, @klen 0), GN_ETOOBIG (@klen >
 * max_key_len), GN_ELIMIT (max_keys local keys held), GN_ENOMEM.
 * O(local keys).
 */
int gni_kad_providers_local_add(gni_kad_providers *ps, const uint8_t *key, size_t klen,
                                gn_time now);

/** Stops providing @key. Errors: GN_EINVAL (NULL argument), GN_ENOTFOUND. */
int gni_kad_providers_local_remove(gni_kad_providers *ps, const uint8_t *key, size_t klen);

/** Local keys held. */
size_t gni_kad_providers_local_count(const gni_kad_providers *ps);

/**
 * The @i-th local key, least recently announced first: *@key (borrowed
 * until the store next changes) and *@provided_at (NULL allowed). The
 * republisher walks i = 0, 1, ... while provided_at + GNI_KAD_PROV_REPUBLISH
 * <= now. Errors: GN_EINVAL (NULL @ps), GN_ENOTFOUND (@i out of range).
 */
int gni_kad_providers_local_at(const gni_kad_providers *ps, size_t i, gn_slice *key,
                               gn_time *provided_at);

#endif /* GNI_KAD_STORE_H */
