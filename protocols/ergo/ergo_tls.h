/*
 * golemnet - TLS for Ergo links, bytes in / bytes out (private to the library).
 *
 * An Ergo acceptor may run TLS under the EHS handshake (ergo-wire.md b
 * "Start sequence" steps 2-3, "Join sequence" step 2: the DigestCert
 * fields). This wrapper puts OpenSSL 3 behind memory BIOs so that the libuv
 * adapter (ergo_uv.c) can place it between the TCP socket and the EHS/ENP
 * cores: the adapter feeds the ciphertext it read, drains the ciphertext to
 * write, reads the plaintext for the cores and writes theirs. There are no
 * sockets here and no file access: certificates and keys come in as PEM
 * bytes. Design and options: docs/ergo.md "TLS".
 *
 * What it does as Ergo (Go crypto/tls) does:
 *  - TLS 1.2 and 1.3 only (Go's defaults for clients and servers), no ALPN,
 *    no client certificates (an Ergo acceptor asks for none).
 *  - A client sends SNI only for a DNS name (Go sends none for an IP).
 *  - A client verifies the chain and the name unless skip_verify (Ergo's
 *    InsecureSkipVerify); either way the caller gets the SHA-1 of the
 *    peer's leaf certificate DER for the EHS DigestCert check, which binds
 *    the TLS session to the cookie.
 *  - A server without certificate files generates a self-signed one
 *    (ECDSA P-256, SHA-256, one year, CA:TRUE, serverAuth, the host as a
 *    DNS or IP subjectAltName), the shape of Ergo's lib.GenerateSelfSignedCert
 *    (which uses P-521).
 *
 * Crypto, randomness and certificate validity times come from OpenSSL (its
 * CSPRNG and the system clock): this is the one place golemnet uses OpenSSL
 * rather than libsodium, because TLS must be the real protocol.
 *
 * Errors (negative gn_err): GN_EHANDSHAKE the TLS handshake failed (bad or
 * unverifiable certificate, no common version or cipher, an alert from the
 * peer, a peer that does not speak TLS); GN_EDECRYPT a record failed
 * authentication after the handshake; GN_EPROTO another TLS protocol error
 * after the handshake; GN_EEOF the peer closed (close_notify) or the stream
 * ended mid-record or mid-handshake; GN_EBADKEY unusable PEM (certificate,
 * key, or a key that does not match the certificate); GN_EAGAIN a plaintext
 * write before the handshake would exceed GNI_TLS_EARLY_MAX; GN_ENOMEM;
 * GN_EINVAL bad arguments. Failures of a link object are sticky (the link
 * must be closed); gni_tls_diag() says why in one line.
 *
 * Thread context: a context may be shared by the links of one loop thread;
 * a link object is driven by one thread. The OpenSSL error queue of the
 * calling thread is cleared by every call.
 */
#ifndef GNI_ERGO_TLS_H
#define GNI_ERGO_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "golemnet/common.h"

#define GNI_TLS_SHA1_LEN 20u             /* raw SHA-1 of a certificate DER */
#define GNI_TLS_EARLY_MAX (256u << 10)   /* plaintext queued before the handshake ends */
#define GNI_TLS_RECORD_MAX 16384u        /* largest plaintext of one record */

/**
 * A context's configuration. Byte fields are read during gni_tls_ctx_new()
 * only.
 *  - server: the context accepts (an acceptor) rather than dials.
 *  - cert_pem: server: PEM certificates, the leaf first, then its chain;
 *    key_pem: the leaf's private key (PEM, any type OpenSSL reads). Both
 *    empty: a self-signed certificate is generated for @host.
 *  - host: server: the subjectAltName and CN of a generated certificate (a
 *    DNS name or an IP address; NULL, or anything else, = "localhost").
 *  - skip_verify: client: do not verify the peer's chain and name (Ergo's
 *    InsecureSkipVerify); the DigestCert check still works.
 *  - ca_pem: client: trust anchors (PEM certificates) when verifying;
 *    empty = OpenSSL's default verify paths (the system store).
 */
typedef struct gni_tls_ctx_config {
    bool server;
    gn_slice cert_pem;
    gn_slice key_pem;
    const char *host;
    bool skip_verify;
    gn_slice ca_pem;
} gni_tls_ctx_config;

typedef struct gni_tls_ctx gni_tls_ctx;
typedef struct gni_tls gni_tls;

/**
 * Creates a context. Returns 0 and *@out, or GN_EINVAL (NULL, only one of
 * cert_pem / key_pem, a host that is neither a DNS name nor an IP address),
 * GN_EBADKEY (PEM that does not parse, a key that does not match the
 * certificate, CA PEM without any certificate), GN_ECRYPTO (OpenSSL could
 * not generate or sign), GN_ENOMEM. @diag (NULL allowed, @diag_len bytes)
 * gets a one-line reason on failure.
 */
int gni_tls_ctx_new(const gni_tls_ctx_config *cfg, gni_tls_ctx **out, char *diag,
                    size_t diag_len);

/** Frees @ctx (NULL is a no-op). Links made from it must be freed first. */
void gni_tls_ctx_free(gni_tls_ctx *ctx);

/**
 * A server context's leaf certificate: its SHA-1 (the @cert_sha1 of the EHS
 * acceptor config, GNI_TLS_SHA1_LEN bytes, valid for the context's life);
 * NULL for a client context.
 */
const uint8_t *gni_tls_ctx_cert_sha1(const gni_tls_ctx *ctx);

/**
 * Appends the PEM of a server context's leaf certificate to @out (to hand a
 * generated certificate to the peers that should trust it). Returns the
 * bytes written, GN_ENOSPC (@out unchanged), GN_EINVAL (client context).
 */
int gni_tls_ctx_cert_pem(const gni_tls_ctx *ctx, gn_buf *out);

/**
 * Creates one link's TLS session on @ctx. Client: @peer_host (NULL
 * allowed) is the name the certificate must carry when verifying (a DNS
 * name, or an IP address) and the SNI when it is a DNS name; the
 * ClientHello is queued at once (gni_tls_drain). Server: @peer_host is
 * ignored. Returns 0 and *@out, GN_EINVAL, GN_ENOMEM.
 */
int gni_tls_new(gni_tls_ctx *ctx, const char *peer_host, gni_tls **out);

/** Frees @t (NULL is a no-op). */
void gni_tls_free(gni_tls *t);

/**
 * Feeds @len bytes of ciphertext read from the peer and advances the
 * handshake. When the handshake completes, plaintext written before it is
 * encrypted (see gni_tls_write). Everything fed is taken (the plaintext
 * waits for gni_tls_read). Returns 0 or a sticky error (header comment).
 */
int gni_tls_feed(gni_tls *t, const uint8_t *in, size_t len);

/**
 * Reads decrypted plaintext into @out (at most @cap bytes; one record is at
 * most GNI_TLS_RECORD_MAX). Returns the bytes read, 0 when no whole record
 * is available (feed more), GN_EEOF once the peer sent close_notify, or a
 * sticky error. Reading may queue ciphertext (a key update answer): drain
 * after reading.
 */
int gni_tls_read(gni_tls *t, uint8_t *out, size_t cap);

/**
 * Encrypts @len plaintext bytes. Before the handshake completes they are
 * queued (at most GNI_TLS_EARLY_MAX bytes in all: GN_EAGAIN, nothing
 * taken) and sent when it does. Returns 0 or a sticky error; the
 * ciphertext waits for gni_tls_drain.
 */
int gni_tls_write(gni_tls *t, const uint8_t *in, size_t len);

/** Ciphertext bytes waiting to be drained. */
size_t gni_tls_pending(const gni_tls *t);

/** Moves pending ciphertext into @out (as much as fits). Returns the bytes moved. */
size_t gni_tls_drain(gni_tls *t, gn_buf *out);

/**
 * The TCP stream ended. Returns 0 when that is a clean end (the handshake
 * completed and no partial record is buffered) or GN_EEOF with the reason
 * in the diagnostic: mid-handshake (for a client: the acceptor may not run
 * TLS) or a truncated record. Sticky when it fails.
 */
int gni_tls_eof(gni_tls *t);

/** True once the handshake completed (the peer's certificate is known). */
bool gni_tls_done(const gni_tls *t);

/**
 * Writes the SHA-1 of the peer's leaf certificate DER to @sha1 (what Ergo's
 * DigestCert covers). Returns 0, GN_ESTATE (handshake not done), GN_ENOTFOUND
 * (the peer sent no certificate: a client seen from a server).
 */
int gni_tls_peer_sha1(const gni_tls *t, uint8_t sha1[GNI_TLS_SHA1_LEN]);

/** The sticky error (0 while none). */
int gni_tls_error(const gni_tls *t);

/** A one-line reason for the sticky error, or "" (never NULL). */
const char *gni_tls_diag(const gni_tls *t);

/** The negotiated version ("TLSv1.3", "TLSv1.2") or "" before the handshake. */
const char *gni_tls_version(const gni_tls *t);

#endif /* GNI_ERGO_TLS_H */
