/*
 * golemnet - uTP libuv adapter (utp_uv.c): internal hooks for tests.
 * Not part of the public API.
 */
#ifndef GNI_UTP_UV_H
#define GNI_UTP_UV_H

#include "golemnet/transport.h"

#include <stdint.h>

/* Receive counters of a uTP transport @t (made by the "utp" ops), summed
 * over its open sockets (a closed socket's counts are gone).
 * @gro_batches: messages read that held more than one datagram (UDP GRO);
 * @cut: messages dropped because their data or control was cut
 * (MSG_TRUNC / MSG_CTRUNC). Either may be NULL. Returns how many of the
 * sockets read with UDP GRO on (0 where the kernel refused UDP_GRO or
 * lacks it). Loop thread only. */
unsigned gni_utp_uv_rx_counts(gn_transport *t, uint64_t *gro_batches, uint64_t *cut);

#endif /* GNI_UTP_UV_H */
