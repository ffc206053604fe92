/* The one error list: gn_strerror(), gn_err_name(), gn_err_is_fatal(). */
#include "golemnet/err.h"

const char *gn_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
#define GN_ERR_STR_(name, val, fatal, msg)                                                   \
    case (val):                                                                              \
        return msg;
        GN_ERR_MAP(GN_ERR_STR_)
#undef GN_ERR_STR_
    default:
        return "unknown error";
    }
}

const char *gn_err_name(int err)
{
    switch (err) {
    case 0:
        return "GN_OK";
#define GN_ERR_NAME_(name, val, fatal, msg)                                                  \
    case (val):                                                                              \
        return #name;
        GN_ERR_MAP(GN_ERR_NAME_)
#undef GN_ERR_NAME_
    default:
        return "GN_EUNKNOWN";
    }
}

bool gn_err_is_fatal(int err)
{
    switch (err) {
#define GN_ERR_FATAL_(name, val, fatal, msg)                                                 \
    case (val):                                                                              \
        return (fatal) != 0;
        GN_ERR_MAP(GN_ERR_FATAL_)
#undef GN_ERR_FATAL_
    default:
        return err < 0;
    }
}

static bool err_known(int err)
{
    switch (err) {
#define GN_ERR_KNOWN_(name, val, fatal, msg) case (val):
        GN_ERR_MAP(GN_ERR_KNOWN_)
#undef GN_ERR_KNOWN_
        return true;
    default:
        return false;
    }
}

int gn_err_band(int err)
{
    if (err >= 0 || !err_known(err)) {
        return -1;
    }
    return (-err) / 100;
}
