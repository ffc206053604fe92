/*
 * golemnet - the opening exchange of /golem/ergo/1.0.0 (private to the
 * library).
 *
 * Sans-I/O core for the start of an Ergo stream over a golemnet channel
 * (Noise + yamux, possibly through relays): each side sends one EHS-framed
 * Introduce at once (57 01 + u32 body length + the EDF body of
 * #ergo.services/ergo/net/handshake/MessageIntroduce, no dictionaries:
 * ergo-wire.md b "Framing", "Introduce contents") and reads the peer's.
 * There is no Hello, no cookie and no Accept: the channel already
 * authenticated the peer's libp2p identity, and the Ergo name is bound to
 * that identity by the component (docs/protocols/ergo.md "Binding"). After
 * the peer's Introduce the stream carries ENP frames exactly as a TCP link
 * does (ergo-wire.md c); this core never reads past the Introduce.
 *
 * Spec: docs/protocols/ergo.md. Design: docs/ergo.md "The ergo component".
 *
 * Errors (negative gn_err, sticky: the stream must be reset):
 * GN_EHANDSHAKE the peer sent another message kind (Hello, Join, Accept),
 * an invalid name, our own name, or not the name we meant to reach (diag
 * says which); GN_EBADFRAME bad magic or version; GN_EFRAMESIZE a body
 * above 65535 bytes; GN_EPARSE a body that is not an Introduce value (bad
 * flags length, negative MaxMessageSize, ...); GN_ENOTFOUND a type name
 * unknown to the registry; GN_ETIMEDOUT the exchange's deadline passed;
 * GN_EEOF the peer closed first; GN_ENOMEM; GN_EINVAL bad arguments.
 *
 * Thread context: no global state; one object is driven by one thread.
 */
#ifndef GNI_ERGO_OPEN_H
#define GNI_ERGO_OPEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ehs.h"

/** The protocol id negotiated on the stream. */
#define GNI_ERGO_PROTOCOL_ID "/golem/ergo/1.0.0"
/** Deadline of the whole exchange when the config gives none (relays are slow). */
#define GNI_ERGO_OPEN_TIMEOUT_DEFAULT (10 * GN_S)

/**
 * Configuration; strings are borrowed and must outlive the object.
 *  - reg: frozen registry with gn_edf_registry_add_ergo() types; its
 *    dictionaries are announced unless @announce is set (then that dict's
 *    entries in insertion order: what the ENP encoder of this stream uses).
 *  - node, version (Name, Release, Commit, License), flags, creation,
 *    max_message_size (0 = unlimited; what we accept per frame).
 *  - expect_peer: the name the opener meant to reach (empty = any).
 *  - timeout: deadline of the exchange from gni_ergo_open_new (0 = default).
 */
typedef struct gni_ergo_open_config {
    const gn_edf_registry *reg;
    const gn_edf_dict *announce;
    gn_slice node;
    gn_slice version[4];
    uint64_t flags;
    int64_t creation;
    uint64_t max_message_size;
    gn_slice expect_peer;
    gn_time timeout;
} gni_ergo_open_config;

/** What the peer introduced. Slices point into the object (valid until free). */
typedef struct gni_ergo_open_result {
    gn_slice peer_node;
    gn_slice peer_version[4];
    uint64_t peer_flags; /* 0 when the peer's Enable bit is clear */
    int64_t peer_creation;
    uint64_t peer_max_message_size; /* 0 = unlimited */
} gni_ergo_open_result;

typedef struct gni_ergo_open gni_ergo_open;

/**
 * Creates the exchange at @now and queues our Introduce (gni_ergo_open_drain).
 * Returns 0 and *@out; GN_EINVAL (NULL, no Ergo types in @reg, invalid node
 * name); GN_ERANGE (the Introduce does not fit 65535 bytes: too many
 * dictionary entries); GN_ENOMEM.
 */
int gni_ergo_open_new(const gni_ergo_open_config *cfg, gn_time now, gni_ergo_open **out);

/** Frees @o (NULL is a no-op). */
void gni_ergo_open_free(gni_ergo_open *o);

/**
 * Feeds @len received bytes. Consumes at most up to the end of the peer's
 * Introduce (*@consumed); the rest is ENP and stays with the caller.
 * Returns 0 (more input needed, or done) or a sticky error (header).
 */
int gni_ergo_open_feed(gni_ergo_open *o, const uint8_t *in, size_t len, size_t *consumed,
                       gn_time now);

/** Copies pending output into @out (as much as fits). Returns the bytes copied. */
size_t gni_ergo_open_drain(gni_ergo_open *o, gn_buf *out);

/** Bytes waiting to be drained. */
size_t gni_ergo_open_pending(const gni_ergo_open *o);

/** The peer closed: fails with GN_EEOF unless done. Returns the sticky error or 0. */
int gni_ergo_open_eof(gni_ergo_open *o);

/** When the exchange times out (GN_TIME_INFINITY once done or failed). */
gn_time gni_ergo_open_deadline(const gni_ergo_open *o);

/** Call at or after the deadline: fails with GN_ETIMEDOUT if it passed. */
int gni_ergo_open_expire(gni_ergo_open *o, gn_time now);

/** True once the peer's Introduce was read and accepted. */
bool gni_ergo_open_done(const gni_ergo_open *o);

/** The sticky error (0 while none) and a one-line explanation (never NULL). */
int gni_ergo_open_error(const gni_ergo_open *o);
const char *gni_ergo_open_diag(const gni_ergo_open *o);

/** The peer's Introduce; NULL until done. */
const gni_ergo_open_result *gni_ergo_open_result_get(const gni_ergo_open *o);

/**
 * Fills @d (fresh, empty) with the peer's dictionaries, to decode its ENP
 * payloads. Returns 0, GN_ESTATE (not done), or gn_edf_dict_add's errors.
 */
int gni_ergo_open_peer_dict(const gni_ergo_open *o, gn_edf_dict *d);

#endif /* GNI_ERGO_OPEN_H */
