/* Built without the ping component (-Dping=disabled): the client call stays. */
#include "golemnet/node.h"

int gn_channel_ping(gn_channel *ch, gn_channel_ping_cb cb, void *arg)
{
    (void)ch, (void)cb, (void)arg;
    return GN_ENOTSUP;
}
