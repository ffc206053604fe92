/*
 * The /echo/1.0.0 protocol component: answers each inbound stream with the
 * echo driver (echo.c). Runs when the node's protocols include
 * GN_NODE_PROTO_ECHO (off by default). Spec: docs/protocols/apps.md "echo".
 */
#include "golemnet/node.h"
#include "golemnet/protocol.h"
#include "golemnet/registry.h"

#include "echo.h"

static void echo_on_stream(gn_protocol *p, gn_stream *s, const gn_protocol_stream_info *info)
{
    (void)p, (void)info;
    if (gni_echo_serve(s, NULL, NULL) < 0) {
        gn_stream_reset(s, NULL, NULL);
    }
}

static const gn_protocol_ops echo_ops = {
    .abi = GN_PROTOCOL_ABI,
    .name = GNI_ECHO_PROTOCOL_ID,
    .flags = GN_LAYER_F_LIMITED_OK,
    .on_stream = echo_on_stream,
    .node_bit = GN_NODE_PROTO_ECHO,
};

int gn_protocol_echo_register(gn_registry *reg);
int gn_protocol_echo_register(gn_registry *reg)
{
    return gn_registry_add(reg, GN_LAYER_PROTOCOL, (const gn_layer_ops *)&echo_ops);
}
