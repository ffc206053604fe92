/*
 * bench_enp_frame.h - the frame of Ergo's 64-byte benchmark, shared by
 * bench_enp.c and bench_enp_pool.c: a MessagePID (101) from process 1004
 * carrying an EDF []byte of 64 bytes (a 102-byte frame).
 */
#ifndef GN_BENCH_ENP_FRAME_H
#define GN_BENCH_ENP_FRAME_H

#include <string.h>

#include "enp.h"

/* fills @payload (the EDF value) and returns the frame to process @to */
static inline gni_enp_frame bench_enp_send64(uint8_t payload[69], uint64_t to)
{
    payload[0] = 0x8e; /* EDF []byte, u32 length 64 */
    payload[1] = payload[2] = payload[3] = 0;
    payload[4] = 64;
    for (int i = 0; i < 64; i++)
        payload[5 + i] = (uint8_t)(i * 7);
    gni_enp_frame f;
    memset(&f, 0, sizeof f);
    f.type = GNI_ENP_MSG_PID;
    f.from = 1004;
    f.to = to;
    f.order = gni_enp_order_of(to);
    f.payload = gn_slice_of(payload, 69);
    return f;
}

#endif /* GN_BENCH_ENP_FRAME_H */
