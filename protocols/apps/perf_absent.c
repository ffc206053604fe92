/* Built without the perf component (-Dperf=disabled): the client call stays. */
#include "golemnet/node.h"

int gn_channel_perf(gn_channel *ch, uint64_t upload_bytes, uint64_t download_bytes,
                    gn_channel_perf_cb cb, void *arg)
{
    (void)ch, (void)upload_bytes, (void)download_bytes, (void)cb, (void)arg;
    return GN_ENOTSUP;
}
