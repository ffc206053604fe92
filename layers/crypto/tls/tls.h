/*
 * libp2p /tls/1.0.0 sans-I/O core: TLS 1.3 through OpenSSL 3 memory BIOs,
 * the libp2p certificate (build and verify) and the record framing the
 * secure-channel driver needs. Bytes in, bytes out: no sockets, no libuv,
 * no clock (the wall-clock time for certificate validity comes in as an
 * argument).
 *
 * Spec: libp2p/specs tls/tls.md (handshake, "Peer Authentication", "libp2p
 * Public Key Extension", ALPN); connections/inlined-muxer-negotiation.md
 * "Multiplexer Negotiation over TLS". Design notes: docs/tls.md.
 *
 * Thread context: an object is used from one thread at a time. OpenSSL's
 * error queue is per thread; every call here that calls into OpenSSL clears
 * it before returning, on success and on error.
 *
 * Randomness (a deviation from the sans-I/O rule, docs/tls.md): OpenSSL
 * draws its own randomness (the certificate key and serial, TLS key shares
 * and nonces) from its DRBG, seeded by the operating system; it is not
 * passed in. Everything else comes in as arguments.
 * The names use gni_p2ptls_ (libp2p's TLS) to keep them apart from core's
 * generic TLS engine over memory BIOs, gni_tlsbio_ (core/gni_tlsbio.h).
 */
#ifndef GNI_P2PTLS_H
#define GNI_P2PTLS_H

#include "golemnet/buf.h"
#include "golemnet/identity.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Object identifier of the libp2p Public Key Extension (tls.md). */
#define GNI_P2PTLS_EXT_OID "1.3.6.1.4.1.53594.1.1"
/** Prefix of the signed message: prefix || certificate SubjectPublicKeyInfo DER. */
#define GNI_P2PTLS_SIG_PREFIX "libp2p-tls-handshake:"
/** ALPN protocol every libp2p TLS endpoint offers last. */
#define GNI_P2PTLS_ALPN "libp2p"
/** Most muxer ids offered through ALPN (the most preferred first). */
#define GNI_P2PTLS_MAX_MUXERS 8
/** Largest certificate accepted for parsing (bytes of DER). */
#define GNI_P2PTLS_MAX_CERT 8192
/** Largest TLS plaintext record (RFC 8446 5.1). */
#define GNI_P2PTLS_MAX_PLAIN 16384
/** Largest TLS ciphertext record body accepted (RFC 8446 5.2: 2^14 + 256). */
#define GNI_P2PTLS_MAX_RECORD (16384 + 256)
/** Certificate lifetime: valid from now - 1 h until now + 100 years (as go- and js-libp2p). */
#define GNI_P2PTLS_CERT_BACKDATE_S 3600
#define GNI_P2PTLS_CERT_LIFETIME_S (100LL * 365 * 24 * 3600)

/** What a verified certificate proved. */
typedef struct gni_p2ptls_peer {
    gn_peer_id peer;                        /* derived from the host key */
    gn_key_type key_type;                   /* the host key's type */
    uint8_t pubkey_pb[GN_PUBKEY_MAX_BYTES]; /* the host key's PublicKey protobuf */
    size_t pubkey_pb_len;
    uint8_t ed25519[GN_ED25519_PUBLICKEYBYTES]; /* raw key, or zeros for other types */
} gni_p2ptls_peer;

/**
 * Builds a fresh self-signed certificate for @id: a new P-256 key, serial
 * random, validity [@unix_now - 1 h, @unix_now + 100 y], signed with
 * ECDSA-SHA256, carrying the libp2p Public Key Extension (critical, the only
 * extension): SignedKey{PublicKey protobuf of @id, signature by @id over
 * "libp2p-tls-handshake:" || SubjectPublicKeyInfo DER}.
 * @cert_out / @key_out receive an X509 * and an EVP_PKEY * (as void *, so
 * this header needs no OpenSSL include); the caller frees them with
 * X509_free / EVP_PKEY_free. @der_out (NULL allowed) receives a gn_malloc'd
 * DER copy of @der_len bytes (the caller gn_free()s it).
 * Errors: GN_EINVAL (@id NULL), GN_ENOMEM, GN_ECRYPTO (OpenSSL failed).
 */
int gni_p2ptls_cert_new(const gn_identity *id, int64_t unix_now, void **cert_out, void **key_out,
                        uint8_t **der_out, size_t *der_len);

/**
 * Verifies a peer certificate (@len bytes of DER at @der, untrusted) as
 * tls.md "Peer Authentication" requires, at wall-clock time @unix_now
 * (seconds since 1970): one DER certificate and nothing after it, X.509 v3
 * without issuer/subject unique IDs, valid at @unix_now, a correct
 * self-signature, exactly one libp2p Public Key Extension (critical or not),
 * no other critical extension OpenSSL does not understand, a strict-DER
 * SignedKey whose key is a supported libp2p host key (Ed25519, secp256k1,
 * RSA, ECDSA) and whose signature over "libp2p-tls-handshake:" || SPKI DER
 * is valid. Fills @out (the peer is set from the extension's key even when
 * the signature fails, never after a parse error). @diag (@diag_len bytes,
 * NULL allowed) receives a NUL-terminated English reason on error.
 * Errors: GN_EINVAL (NULL @der/@out), GN_ETOOBIG (> GNI_P2PTLS_MAX_CERT),
 * GN_EPARSE (not a DER certificate, trailing bytes, malformed SignedKey),
 * GN_EPROTO (v1/v2, unique IDs, missing or repeated extension, unknown
 * critical extension), GN_EHANDSHAKE (not yet valid or expired),
 * GN_EBADSIG (bad self-signature or host-key signature), GN_EBADKEY
 * (malformed or unsupported host key), GN_ENOMEM.
 */
int gni_p2ptls_cert_verify(const uint8_t *der, size_t len, int64_t unix_now,
                           gni_p2ptls_peer *out, char *diag, size_t diag_len) GN_WARN_UNUSED;

/** Handshake parameters (borrowed during gni_p2ptls_new(); the core copies what it keeps). */
typedef struct gni_p2ptls_config {
    bool initiator;                   /* TLS client */
    const gn_identity *identity;      /* borrowed: outlives the object */
    const gn_peer_id *expected_peer;  /* NULL: any peer */
    /** Early muxers, preference order (NULL: none); copied: the first
     *  GNI_P2PTLS_MAX_MUXERS ids of 1..min(255, GN_PROTOCOL_ID_MAX - 1)
     *  bytes are used, others skipped. */
    const char *const *muxers;
    size_t n_muxers;
    int64_t unix_now;                 /* wall-clock seconds: certificate build and check */
    /** Optional shared SSL_CTX from gni_p2ptls_ctx_new() for the same
     *  @identity (NULL: a private one with a certificate of its own). */
    void *ssl_ctx;
} gni_p2ptls_config;

/**
 * Creates the SSL_CTX (as void *) the endpoints of identity @id share: TLS
 * 1.3 only, peer certificate required and checked by
 * gni_p2ptls_cert_verify()'s rules (certificate message at most
 * 2 x GNI_P2PTLS_MAX_CERT bytes, the leaf at most GNI_P2PTLS_MAX_CERT), no
 * tickets or session cache, the ALPN choice of the server, and one
 * certificate with its P-256 key built by gni_p2ptls_cert_new(@id,
 * @unix_now) that every endpoint made from it presents (tls.md allows
 * reuse; the certificate is valid for 100 years from @unix_now - 1 h).
 * No per-connection state: endpoints on one thread share it; each endpoint
 * takes a reference, so gni_p2ptls_ctx_free() may come before the endpoints
 * are freed. Saves SSL_CTX_new() and a certificate per handshake (both
 * measured in docs/tls.md). Errors: GN_EINVAL (@id or @out NULL), GN_ENOMEM,
 * GN_ECRYPTO.
 */
int gni_p2ptls_ctx_new(const gn_identity *id, int64_t unix_now, void **out);
/** Drops the caller's reference (NULL allowed). */
void gni_p2ptls_ctx_free(void *ctx);

typedef struct gni_p2ptls gni_p2ptls;

/**
 * Creates one TLS 1.3 endpoint (ALPN: the muxers, then "libp2p"; no SNI; no
 * session tickets) with the certificate of @cfg->ssl_ctx, or, without one,
 * a private SSL_CTX and a fresh certificate. A client's ClientHello is ready
 * to drain at once. Errors: GN_EINVAL, GN_ENOMEM, GN_ECRYPTO.
 */
int gni_p2ptls_new(const gni_p2ptls_config *cfg, gni_p2ptls **out);
/**
 * Frees @t (NULL allowed): wipes its plaintext buffer (OPENSSL_cleanse);
 * OpenSSL clears its own keys.
 */
void gni_p2ptls_free(gni_p2ptls *t);

/**
 * Handshake input: consumes whole TLS records from @in (@len bytes) while
 * the handshake runs and stops after the record that completes it (the
 * rest is application data). Always returns 0: a failure is reported by
 * gni_p2ptls_status() once the alert it produced was drained. Bounds: a
 * record body over GNI_P2PTLS_MAX_RECORD fails with GN_EFRAMESIZE. Record
 * version (RFC 8446 5.1): 0x0303, or 0x0301 on any record until the
 * ServerHello was processed (a ClientHello may span records); anything else
 * fails with GN_EPROTO.
 */
int gni_p2ptls_feed(gni_p2ptls *t, const uint8_t *in, size_t len, size_t *consumed);

/**
 * Moves TLS output (handshake flights, alerts) into @out. Returns the bytes
 * appended (0: none), GN_ENOSPC when @out has no room and bytes wait.
 */
int gni_p2ptls_drain(gni_p2ptls *t, gn_buf *out);

/**
 * 0 running, 1 handshake complete and the peer verified, or the failure:
 * GN_EPEERID (the peer proved another ID: gni_p2ptls_remote() has it),
 * GN_EBADSIG, GN_EBADKEY, GN_EPARSE, GN_EPROTO (bad certificate or TLS
 * violation), GN_EFRAMESIZE, GN_ENEGOTIATION (no common ALPN protocol),
 * GN_EHANDSHAKE (other TLS failure, e.g. the peer's alert).
 */
int gni_p2ptls_status(const gni_p2ptls *t);

/** The English reason of the failure ("" when none). */
const char *gni_p2ptls_diag(const gni_p2ptls *t);

/**
 * The verified remote (after status 1) or the mismatched one (after
 * GN_EPEERID). Errors: GN_ESTATE (no certificate was verified).
 */
int gni_p2ptls_remote(const gni_p2ptls *t, gni_p2ptls_peer *out);

/** The muxer agreed through ALPN, or "" ("libp2p" or no ALPN). Valid after status 1. */
const char *gni_p2ptls_early_muxer(const gni_p2ptls *t);

/* ---- transport phase (after status 1) ---- */

/** Bytes seal adds to a record: 22 per record, plus room for pending KeyUpdate answers or close. */
#define GNI_P2PTLS_OVERHEAD 96
/**
 * Most TLS output gni_p2ptls_open() lets wait for the next seal: one
 * KeyUpdate answer of 27 bytes. OpenSSL writes the answer to a request
 * when it next reads or writes, so this allows two unanswered requests
 * (a third before we write fails with GN_EPROTO); the next seal then
 * writes 2 x 27 bytes before its record (22) or close_notify (24), within
 * GNI_P2PTLS_OVERHEAD.
 */
#define GNI_P2PTLS_MAX_PENDING 27

/**
 * Encrypts @len (1..GNI_P2PTLS_MAX_PLAIN) bytes at @in into @out (room for
 * @len + GNI_P2PTLS_OVERHEAD bytes): one application-data record, preceded
 * by any TLS output pending (KeyUpdate answers, at most
 * GNI_P2PTLS_MAX_PENDING bytes). Returns bytes written or GN_ESTATE
 * (handshake not done), the sticky failure, GN_EPROTO (TLS refused the
 * write), GN_EINTERNAL (memory BIO failure).
 */
int gni_p2ptls_seal(gni_p2ptls *t, const uint8_t *in, size_t len, uint8_t *out);

/**
 * Record input: consumes @in up to the end of one record (it keeps partial
 * records itself). When a record completed and carried application data,
 * *@plain and *@plain_len give it (borrowed until the next call), else *@plain
 * is NULL (a post-handshake message, or close_notify: gni_p2ptls_closed()).
 * Errors (fatal): GN_EFRAMESIZE (record too long), GN_EDECRYPT (record
 * authentication failed), GN_EPROTO (any other TLS violation, data after
 * close_notify, KeyUpdate requests whose answers would exceed
 * GNI_P2PTLS_MAX_PENDING bytes before the next seal: RFC 8446 4.6.3).
 */
int gni_p2ptls_open(gni_p2ptls *t, const uint8_t *in, size_t len, size_t *consumed,
                    const uint8_t **plain, size_t *plain_len);
/** True while a record is half received. */
bool gni_p2ptls_partial(const gni_p2ptls *t);
/** Writes close_notify into @out (room GNI_P2PTLS_OVERHEAD); returns bytes or an error. */
int gni_p2ptls_seal_close(gni_p2ptls *t, uint8_t *out);
/** True once the peer's close_notify was read. */
bool gni_p2ptls_closed(const gni_p2ptls *t);

#endif /* GNI_P2PTLS_H */
