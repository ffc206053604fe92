/*
 * golemnet - TLS over memory BIOs, bytes in / bytes out (private to the
 * library; a shared core module, docs/architecture.md).
 *
 * OpenSSL 3 behind two memory BIOs, so that a libuv adapter can place TLS
 * between a transport stream and its own framing: the adapter feeds the
 * ciphertext it read, drains the ciphertext to write, reads the plaintext
 * for its cores and writes theirs. There are no sockets here and no file
 * access: certificates and keys come in as PEM bytes. Components use it
 * through this header only (docs/architecture.md "Drivers shared by components").
 *
 * Behaviour (that of Go's crypto/tls defaults):
 *  - TLS 1.2 and 1.3 only, no ALPN, no client certificates (a server asks
 *    for none).
 *  - A client sends SNI only for a DNS name (none for an IP address).
 *  - A client verifies the chain and the name unless skip_verify; either
 *    way the caller gets the SHA-1 of the peer's leaf certificate DER
 *    (gni_tlsbio_peer_sha1), for protocols that bind a session to it.
 *  - A server without certificate files generates a self-signed one
 *    (ECDSA P-256, SHA-256, one year, CA:TRUE, serverAuth, the host as a
 *    DNS or IP subjectAltName).
 *
 * Crypto, randomness and certificate validity times come from OpenSSL (its
 * CSPRNG and the system clock): TLS must be the real protocol.
 *
 * Errors (negative gn_err): GN_EHANDSHAKE the TLS handshake failed (bad or
 * unverifiable certificate, no common version or cipher, an alert from the
 * peer, a peer that does not speak TLS); GN_EDECRYPT a record failed
 * authentication after the handshake; GN_EPROTO another TLS protocol error
 * after the handshake; GN_EEOF the peer closed (close_notify) or the stream
 * ended mid-record or mid-handshake; GN_EBADKEY unusable PEM (certificate,
 * key, or a key that does not match the certificate); GN_EAGAIN a plaintext
 * write before the handshake would exceed GNI_TLSBIO_EARLY_MAX; GN_ENOMEM;
 * GN_EINVAL bad arguments. Failures of a link object are sticky (the link
 * must be closed); gni_tlsbio_diag() says why in one line.
 *
 * Thread context: a context may be shared by the links of one loop thread;
 * a link object is driven by one thread. The OpenSSL error queue of the
 * calling thread is cleared by every call.
 */
#ifndef GNI_TLSBIO_H
#define GNI_TLSBIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "golemnet/common.h"

#define GNI_TLSBIO_SHA1_LEN 20u             /* raw SHA-1 of a certificate DER */
#define GNI_TLSBIO_EARLY_MAX (256u << 10)   /* plaintext queued before the handshake ends */
#define GNI_TLSBIO_RECORD_MAX 16384u        /* largest plaintext of one record */

/**
 * A context's configuration. Byte fields are read during gni_tlsbio_ctx_new()
 * only.
 *  - server: the context accepts (an acceptor) rather than dials.
 *  - cert_pem: server: PEM certificates, the leaf first, then its chain;
 *    key_pem: the leaf's private key (PEM, any type OpenSSL reads). Both
 *    empty: a self-signed certificate is generated for @host.
 *  - host: server: the subjectAltName and CN of a generated certificate (a
 *    DNS name or an IP address; NULL, or anything else, = "localhost").
 *  - skip_verify: client: do not verify the peer's chain and name (tests,
 *    or protocols that check the certificate's SHA-1 themselves);
 *    gni_tlsbio_peer_sha1 still works.
 *  - ca_pem: client: trust anchors (PEM certificates) when verifying;
 *    empty = OpenSSL's default verify paths (the system store).
 *  - plain_first, plain_diag: server: when the first byte a peer sends is
 *    plain_first (0: no check) the handshake fails with plain_diag as the
 *    diagnostic (a user's own plaintext protocol spoken to a TLS server).
 *  - verify_hint: client: appended to the diagnostic of a failed
 *    certificate verification (how to fix it with the user's options);
 *    NULL: a generic hint naming a CA file and tls_skip_verify.
 *  The strings are not copied: static, or outliving the context.
 */
typedef struct gni_tlsbio_ctx_config {
    bool server;
    gn_slice cert_pem;
    gn_slice key_pem;
    const char *host;
    bool skip_verify;
    gn_slice ca_pem;
    uint8_t plain_first;
    const char *plain_diag;
    const char *verify_hint;
} gni_tlsbio_ctx_config;

typedef struct gni_tlsbio_ctx gni_tlsbio_ctx;
typedef struct gni_tlsbio gni_tlsbio;

/**
 * Creates a context. Returns 0 and *@out, or GN_EINVAL (NULL, only one of
 * cert_pem / key_pem, a host that is neither a DNS name nor an IP address),
 * GN_EBADKEY (PEM that does not parse, a key that does not match the
 * certificate, CA PEM without any certificate), GN_ECRYPTO (OpenSSL could
 * not generate or sign), GN_ENOMEM. @diag (NULL allowed, @diag_len bytes)
 * gets a one-line reason on failure.
 */
int gni_tlsbio_ctx_new(const gni_tlsbio_ctx_config *cfg, gni_tlsbio_ctx **out, char *diag,
                    size_t diag_len);

/** Frees @ctx (NULL is a no-op). Links made from it must be freed first. */
void gni_tlsbio_ctx_free(gni_tlsbio_ctx *ctx);

/**
 * A server context's leaf certificate: its SHA-1 (GNI_TLSBIO_SHA1_LEN bytes,
 * valid for the context's life);
 * NULL for a client context.
 */
const uint8_t *gni_tlsbio_ctx_cert_sha1(const gni_tlsbio_ctx *ctx);

/**
 * Appends the PEM of a server context's leaf certificate to @out (to hand a
 * generated certificate to the peers that should trust it). Returns the
 * bytes written, GN_ENOSPC (@out unchanged), GN_EINVAL (client context).
 */
int gni_tlsbio_ctx_cert_pem(const gni_tlsbio_ctx *ctx, gn_buf *out);

/**
 * Creates one link's TLS session on @ctx. Client: @peer_host (NULL
 * allowed) is the name the certificate must carry when verifying (a DNS
 * name, or an IP address) and the SNI when it is a DNS name; the
 * ClientHello is queued at once (gni_tlsbio_drain). Server: @peer_host is
 * ignored. Returns 0 and *@out, GN_EINVAL, GN_ENOMEM.
 */
int gni_tlsbio_new(gni_tlsbio_ctx *ctx, const char *peer_host, gni_tlsbio **out);

/** Frees @t (NULL is a no-op). */
void gni_tlsbio_free(gni_tlsbio *t);

/**
 * Feeds @len bytes of ciphertext read from the peer and advances the
 * handshake. When the handshake completes, plaintext written before it is
 * encrypted (see gni_tlsbio_write). Everything fed is taken (the plaintext
 * waits for gni_tlsbio_read). Returns 0 or a sticky error (header comment).
 */
int gni_tlsbio_feed(gni_tlsbio *t, const uint8_t *in, size_t len);

/**
 * Reads decrypted plaintext into @out (at most @cap bytes; one record is at
 * most GNI_TLSBIO_RECORD_MAX). Returns the bytes read, 0 when no whole record
 * is available (feed more), GN_EEOF once the peer sent close_notify, or a
 * sticky error. Reading may queue ciphertext (a key update answer): drain
 * after reading.
 */
int gni_tlsbio_read(gni_tlsbio *t, uint8_t *out, size_t cap);

/**
 * Encrypts @len plaintext bytes. Before the handshake completes they are
 * queued (at most GNI_TLSBIO_EARLY_MAX bytes in all: GN_EAGAIN, nothing
 * taken) and sent when it does. Returns 0 or a sticky error; the
 * ciphertext waits for gni_tlsbio_drain.
 */
int gni_tlsbio_write(gni_tlsbio *t, const uint8_t *in, size_t len);

/** Ciphertext bytes waiting to be drained. */
size_t gni_tlsbio_pending(const gni_tlsbio *t);

/** Moves pending ciphertext into @out (as much as fits). Returns the bytes moved. */
size_t gni_tlsbio_drain(gni_tlsbio *t, gn_buf *out);

/**
 * The TCP stream ended. Returns 0 when that is a clean end (the handshake
 * completed and no partial record is buffered) or GN_EEOF with the reason
 * in the diagnostic: mid-handshake (for a client: the server may not run
 * TLS) or a truncated record. Sticky when it fails.
 */
int gni_tlsbio_eof(gni_tlsbio *t);

/** True once the handshake completed (the peer's certificate is known). */
bool gni_tlsbio_done(const gni_tlsbio *t);

/**
 * Writes the SHA-1 of the peer's leaf certificate DER to @sha1. Returns 0,
 * GN_ESTATE (handshake not done), GN_ENOTFOUND (the peer sent no
 * certificate: a client seen from a server).
 */
int gni_tlsbio_peer_sha1(const gni_tlsbio *t, uint8_t sha1[GNI_TLSBIO_SHA1_LEN]);

/** The sticky error (0 while none). */
int gni_tlsbio_error(const gni_tlsbio *t);

/** A one-line reason for the sticky error, or "" (never NULL). */
const char *gni_tlsbio_diag(const gni_tlsbio *t);

/** The negotiated version ("TLSv1.3", "TLSv1.2") or "" before the handshake. */
const char *gni_tlsbio_version(const gni_tlsbio *t);

#endif /* GNI_TLSBIO_H */
