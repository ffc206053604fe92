/*
 * plaintext/2.0.0 sans-I/O core: the libp2p key exchange without
 * encryption. For tests and debugging only: the component is registered
 * with GN_LAYER_F_EXPLICIT_ONLY and never offered unless a stack names it.
 *
 * Spec: libp2p/specs plaintext/README.md. Each side sends one
 * varint-length-prefixed Exchange{id, pubkey} and reads the peer's; the
 * peer's id must be the peer ID of its key (and the expected one, if given).
 * After the exchange the stream carries application bytes unchanged.
 */
#ifndef GNI_PLAINTEXT_H
#define GNI_PLAINTEXT_H

#include "golemnet/identity.h"

/** Longest Exchange message accepted (bytes, without the length prefix). */
#define GNI_PLAINTEXT_MAX_MSG 4096

typedef struct gni_plaintext gni_plaintext;

/**
 * Creates a handshake for @id (borrowed, outlives the object). @expected may
 * be NULL. Errors: GN_EINVAL, GN_ENOMEM.
 */
int gni_plaintext_new(const gn_identity *id, const gn_peer_id *expected, gni_plaintext **out);
void gni_plaintext_free(gni_plaintext *p);

/**
 * Feeds received bytes. Consumes nothing until a whole Exchange is present,
 * then exactly that message (later bytes are application data).
 * Errors: GN_EFRAMESIZE (length over GNI_PLAINTEXT_MAX_MSG), GN_EPARSE
 * (bad varint), GN_EPROTO (malformed protobuf, missing id or key, id not
 * matching the key), GN_EBADKEY (not an Ed25519 key), GN_EPEERID (not the
 * expected peer), GN_ESTATE (fed after completion).
 */
int gni_plaintext_feed(gni_plaintext *p, const uint8_t *in, size_t len, size_t *consumed);

/** Appends our Exchange once; returns bytes written, 0 later, GN_ENOSPC. */
int gni_plaintext_drain(gni_plaintext *p, gn_buf *out);

/** 0 in progress, 1 done (sent and received), < 0 failed. */
int gni_plaintext_status(const gni_plaintext *p);

/** After completion: the remote peer and its Ed25519 key. */
void gni_plaintext_remote(const gni_plaintext *p, gn_peer_id *peer,
                          uint8_t pub[GN_ED25519_PUBLICKEYBYTES]);

/**
 * After a failure with GN_EPEERID: the peer the remote presented (its id
 * matched its key; plaintext authenticates nothing) and its Ed25519 key.
 * Errors: GN_ESTATE (the exchange did not fail with GN_EPEERID).
 */
int gni_plaintext_mismatched_peer(const gni_plaintext *p, gn_peer_id *peer,
                                  uint8_t pub[GN_ED25519_PUBLICKEYBYTES]);

#endif /* GNI_PLAINTEXT_H */
