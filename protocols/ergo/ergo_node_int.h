/*
 * golemnet - Ergo node layer (ergo_node.c), internal test hook.
 *
 * A tap sees every ENP frame the node emits (@out true, after it was built,
 * before the carrier takes it) and every frame it receives (@out false),
 * whole and borrowed for the call, with the remote node's name. Tests use it
 * to compare what golemnet writes with the recorded Go frames. Loop thread.
 */
#ifndef GNI_ERGO_NODE_INT_H
#define GNI_ERGO_NODE_INT_H

#include "golemnet/ergo.h"

typedef void (*gni_ergo_tap_fn)(void *ud, bool out, const char *node, const uint8_t *frame,
                                size_t len);

/** Installs @fn(@ud) on @en (NULL: none). */
void gni_ergo_node_set_tap(gn_ergo_node *en, gni_ergo_tap_fn fn, void *ud);

#endif /* GNI_ERGO_NODE_INT_H */
