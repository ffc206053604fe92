/*
 * golemnet - composable network stacks, wire-compatible with libp2p.
 *
 * The umbrella header: include this, or only the area headers you need.
 */
#ifndef GOLEMNET_GOLEMNET_H
#define GOLEMNET_GOLEMNET_H

#include "golemnet/common.h"
#include "golemnet/err.h"
#include "golemnet/log.h"
#include "golemnet/buf.h"
#include "golemnet/multiformats.h"
#include "golemnet/multiaddr.h"
#include "golemnet/resolve.h"
#include "golemnet/identity.h"
#include "golemnet/loop.h"
#include "golemnet/stream.h"
#include "golemnet/layer.h"
#include "golemnet/host.h"
#include "golemnet/transport.h"
#include "golemnet/crypto.h"
#include "golemnet/secure_driver.h"
#include "golemnet/mux.h"
#include "golemnet/mux_driver.h"
#include "golemnet/protocol.h"
#include "golemnet/router.h"
#include "golemnet/discovery.h"
#include "golemnet/nat.h"
#include "golemnet/registry.h"
#include "golemnet/seal.h"
#include "golemnet/rcmgr.h"
#include "golemnet/edf.h"
#include "golemnet/node.h"

#endif /* GOLEMNET_GOLEMNET_H */
