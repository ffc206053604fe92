/* Version, system RNG and the monotonic clock. */
#include "golemnet/common.h"

#include <sodium.h>
#include <uv.h>

static void rng_sodium_fill(void *ud, uint8_t *out, size_t len)
{
    (void)ud;
    randombytes_buf(out, len);
}

static const gn_rng rng_system = {rng_sodium_fill, NULL};

const gn_rng *gn_rng_system(void)
{
    return &rng_system;
}

gn_time gn_now(void)
{
    return (gn_time)uv_hrtime();
}

const char *gn_version(void)
{
    return GN_VERSION_STRING;
}

uint32_t gn_version_number(void)
{
    return ((uint32_t)GN_VERSION_MAJOR << 16) | ((uint32_t)GN_VERSION_MINOR << 8) |
           (uint32_t)GN_VERSION_PATCH;
}
