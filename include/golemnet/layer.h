/*
 * golemnet - what every layer ops table has in common.
 *
 * Each layer kind (transport, crypto, mux, protocol, router, discovery,
 * nat) has one ops table type, gn_<kind>_ops, declared in <golemnet/KIND.h>.
 * A component is one `static const` table of that type. Every table starts
 * with GN_LAYER_OPS_HEADER, so the registry can read the common fields:
 *
 *   abi        the kind's ABI version the component was built against
 *              (GN_<KIND>_ABI); the registry refuses a mismatch (GN_EABI).
 *   name       the protocol id multistream-select matches ("/noise",
 *              "/yamux/1.0.0") or, for transports, a short name ("tcp").
 *   state_size bytes of per-instance state core allocates, zeroed, for
 *              the component (0: none).
 *   flags      GN_LAYER_F_* bits.
 *
 * Optional entries are NULL, which means the documented default
 * (usually pass-through). Required entries are asserted at registration.
 */
#ifndef GOLEMNET_LAYER_H
#define GOLEMNET_LAYER_H

#include "golemnet/common.h"

GN_BEGIN_DECLS

/** Layer kinds. */
typedef enum gn_layer_kind {
    GN_LAYER_TRANSPORT = 0,
    GN_LAYER_CRYPTO = 1,
    GN_LAYER_MUX = 2,
    GN_LAYER_PROTOCOL = 3,
    GN_LAYER_ROUTER = 4,
    GN_LAYER_DISCOVERY = 5,
    GN_LAYER_NAT = 6,
    GN_LAYER_KIND_COUNT = 7
} gn_layer_kind;

/** Never offered in negotiation unless the stack names it explicitly. */
#define GN_LAYER_F_EXPLICIT_ONLY 0x1u
/**
 * A protocol component whose stream handler (its name) also runs on
 * limited channels (golemnet/host.h, GN_HOST_HANDLER_LIMITED_OK): ping,
 * identify. Since: 0.4
 */
#define GN_LAYER_F_LIMITED_OK 0x2u

#define GN_LAYER_OPS_HEADER                                                                  \
    uint32_t abi;                                                                            \
    const char *name;                                                                        \
    size_t state_size;                                                                       \
    uint32_t flags

/** The common initial fields, for code that handles any kind. */
typedef struct gn_layer_ops {
    GN_LAYER_OPS_HEADER;
} gn_layer_ops;

/** Static name of a kind ("transport", "crypto", ...), or NULL. */
GN_API const char *gn_layer_kind_name(gn_layer_kind kind);

GN_END_DECLS

#endif /* GOLEMNET_LAYER_H */
