/* The one place libuv error codes become gn_err codes. */
#include "gni.h"

#include <uv.h>

int gni_err_from_uv(int uverr)
{
    if (uverr >= 0) {
        return uverr;
    }
    switch (uverr) {
    case UV_EAGAIN:
        return GN_EAGAIN;
    case UV_ENOMEM:
    case UV_ENOBUFS:
        return GN_ENOMEM;
    case UV_EINVAL:
        return GN_EINVAL;
    case UV_ECANCELED:
        return GN_ECANCELED;
    case UV_ETIMEDOUT:
        return GN_ETIMEDOUT;
    case UV_EOF:
        return GN_EEOF;
    case UV_ECONNREFUSED:
        return GN_ECONNREFUSED;
    case UV_ECONNRESET:
    case UV_ECONNABORTED:
        return GN_ECONNRESET;
    case UV_ENETUNREACH:
    case UV_EHOSTUNREACH:
    case UV_ENETDOWN:
        return GN_EUNREACHABLE;
    case UV_EADDRINUSE:
        return GN_EADDRINUSE;
    case UV_EADDRNOTAVAIL:
        return GN_EADDRNOTAVAIL;
    case UV_EPIPE:
    case UV_ESHUTDOWN:
        return GN_EPIPE;
    case UV_EACCES:
    case UV_EPERM:
        return GN_EACCES;
    case UV_ENOENT:
        return GN_ENOTFOUND;
    case UV_EEXIST:
        return GN_EEXIST;
    case UV_ENOTSUP:
    case UV_EAFNOSUPPORT:
        return GN_ENOTSUP;
    case UV_EAI_NONAME:
    case UV_EAI_AGAIN:
    case UV_EAI_FAIL:
        return GN_ERESOLVE;
    case UV_EMFILE:
    case UV_ENFILE:
        return GN_ELIMIT;
    default:
        return GN_EIO;
    }
}
