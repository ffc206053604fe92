/*
 * natpmp - private interface between the NAT-PMP component's glue
 * (natpmp_layer.c) and its adapter (natpmp_uv.c, libnatpmp driven on
 * libuv's thread pool by the natd driver).
 */
#ifndef GNI_NATPMP_H
#define GNI_NATPMP_H

#include "../natd_uv.h"

#define GNI_NATPMP_LOG "natpmp"

typedef struct gni_natpmp_opts {
    bool force_gateway;     /* natpmp.gateway given */
    uint8_t gateway[4];     /* its address */
    uint32_t timeout_ms;    /* bound on one request with its retransmissions */
} gni_natpmp_opts;

extern const gni_natd_vtbl gni_natpmp_vtbl;
/** The driver backend; copies @o. NULL on no memory. */
void *gni_natpmp_be_new(const gni_natpmp_opts *o);

#endif /* GNI_NATPMP_H */
