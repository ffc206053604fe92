/*
 * golemnet - the one error list.
 *
 * Every function that can fail returns int: 0 (GN_OK) or a positive count on
 * success, a negative gn_err code on failure. The codes come from one X-macro
 * list, which also generates gn_strerror() and gn_err_name(). Codes are
 * grouped in bands (see GN_ERR_BAND_*), so bindings can map a band to an
 * exception class.
 *
 * Component authors: never define a private error enum. Map OS and libuv
 * errors once, in the adapter (gn_err_from_uv()), and pick the code that
 * names what the peer or the system did.
 */
#ifndef GOLEMNET_ERR_H
#define GOLEMNET_ERR_H

#include "golemnet/common.h"

GN_BEGIN_DECLS

/*
 * X(NAME, value, fatal, "message")
 *
 * fatal = 1: the object the call was made on (connection, stream, session,
 * handshake) is unusable afterwards and must be closed; 0: the call may be
 * retried or the object keeps working.
 */
#define GN_ERR_MAP(X)                                                                        \
    /* generic band: -1 .. -99 */                                                            \
    X(GN_EINVAL, -1, 0, "invalid argument")                                                  \
    X(GN_ENOMEM, -2, 1, "out of memory")                                                     \
    X(GN_EAGAIN, -3, 0, "resource temporarily unavailable (queue full, try again later)")    \
    X(GN_ECANCELED, -4, 1, "operation canceled")                                             \
    X(GN_ECLOSED, -5, 1, "object is closed or closing")                                      \
    X(GN_ESTATE, -6, 0, "operation not valid in the current state")                          \
    X(GN_ENOTSUP, -7, 0, "operation or option not supported")                                \
    X(GN_ENOTFOUND, -8, 0, "no such item")                                                   \
    X(GN_EEXIST, -9, 0, "item already exists")                                               \
    X(GN_ERANGE, -10, 0, "value out of range")                                               \
    X(GN_ETOOBIG, -11, 0, "input exceeds the configured limit")                              \
    X(GN_ENOSPC, -12, 0, "output buffer too small")                                          \
    X(GN_ETIMEDOUT, -13, 1, "operation timed out")                                           \
    X(GN_EABI, -14, 0, "component ABI version mismatch")                                     \
    X(GN_ECALLBACK, -15, 1, "application callback failed")                                   \
    X(GN_ELIMIT, -16, 0, "resource limit reached")                                           \
    X(GN_EINTERNAL, -17, 1, "internal error")                                                \
    X(GN_EPARSE, -18, 0, "malformed input")                                                  \
    X(GN_ERESOURCE, -19, 0, "resource manager refused: a scope's limit is reached")          \
    /* I/O band: -100 .. -199 */                                                             \
    X(GN_EIO, -100, 1, "input/output error")                                                 \
    X(GN_EEOF, -101, 1, "end of stream")                                                     \
    X(GN_ECONNREFUSED, -102, 1, "connection refused")                                        \
    X(GN_ECONNRESET, -103, 1, "connection reset by peer")                                    \
    X(GN_EUNREACHABLE, -104, 1, "network or host unreachable")                               \
    X(GN_EADDRINUSE, -105, 0, "address already in use")                                      \
    X(GN_EADDRNOTAVAIL, -106, 0, "address not available")                                    \
    X(GN_EPIPE, -107, 1, "broken pipe (write after shutdown or peer close)")                 \
    X(GN_EACCES, -108, 0, "permission denied")                                               \
    X(GN_ENOTRANSPORT, -109, 0, "no transport can handle this address")                      \
    X(GN_ERESOLVE, -110, 0, "name resolution failed")                                        \
    X(GN_ESTREAMRESET, -111, 1, "stream reset by peer")                                      \
    X(GN_ENOROUTE, -112, 0, "no route to the peer is known (no address, no router found one)") \
    /* crypto band: -200 .. -299 */                                                          \
    X(GN_ECRYPTO, -200, 1, "cryptographic operation failed")                                 \
    X(GN_EDECRYPT, -201, 1, "authentication failed (tampered or corrupted data)")            \
    X(GN_EBADSIG, -202, 1, "bad signature")                                                  \
    X(GN_EBADKEY, -203, 0, "malformed or unsupported key")                                   \
    X(GN_EPEERID, -204, 1, "remote peer ID does not match the expected one")                 \
    X(GN_ENONCE, -205, 1, "nonce space exhausted")                                           \
    X(GN_EREPLAY, -206, 1, "replayed or reordered frame")                                    \
    X(GN_EHANDSHAKE, -207, 1, "handshake failed")                                            \
    /* peer-violation band: -300 .. -399 */                                                  \
    X(GN_EPROTO, -300, 1, "peer violated the protocol")                                      \
    X(GN_EFRAMESIZE, -301, 1, "frame longer than allowed")                                   \
    X(GN_ENEGOTIATION, -302, 1, "protocol negotiation failed (no common protocol)")          \
    X(GN_EWINDOW, -303, 1, "peer exceeded the flow-control window")                          \
    X(GN_ESTREAMLIMIT, -304, 0, "peer exceeded the stream limit")                            \
    X(GN_EGOAWAY, -305, 1, "session is going away")                                          \
    X(GN_EBADFRAME, -306, 1, "malformed frame")                                              \
    X(GN_EVERSION, -307, 1, "unsupported protocol version")

/** The error codes. Since: 0.1 */
typedef enum gn_err {
    GN_OK = 0,
#define GN_ERR_ENUM_(name, val, fatal, msg) name = (val),
    GN_ERR_MAP(GN_ERR_ENUM_)
#undef GN_ERR_ENUM_
} gn_err;

/** Error bands, the hundreds of -code. Since: 0.1 */
enum {
    GN_ERR_BAND_GENERIC = 0,
    GN_ERR_BAND_IO = 1,
    GN_ERR_BAND_CRYPTO = 2,
    GN_ERR_BAND_PEER = 3
};

/**
 * Returns a human-readable, static, NUL-terminated description of @err.
 * Unknown codes give "unknown error"; 0 gives "success". Thread-safe.
 * Since: 0.1
 */
GN_API const char *gn_strerror(int err);

/**
 * Returns the symbolic name of @err ("GN_EAGAIN"), static and NUL-terminated;
 * "GN_OK" for 0 and "GN_EUNKNOWN" for codes not in the list. Thread-safe.
 * Since: 0.1
 */
GN_API const char *gn_err_name(int err);

/**
 * Tells whether @err leaves the object it came from unusable (true), or may
 * be retried / the object keeps working (false). 0 and positive values are
 * not fatal; unknown negative codes are fatal.
 * Since: 0.1
 */
GN_API bool gn_err_is_fatal(int err);

/**
 * Returns the band of @err (GN_ERR_BAND_*), or -1 if @err is not a known
 * error code.
 * Since: 0.1
 */
GN_API int gn_err_band(int err);

GN_END_DECLS

#endif /* GOLEMNET_ERR_H */
