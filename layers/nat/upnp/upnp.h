/*
 * upnp - private interface between the UPnP IGD component's glue
 * (upnp_layer.c, the gn_nat_ops table and its options) and its adapter
 * (upnp_uv.c, the blocking miniupnpc calls run by the natd driver on
 * libuv's thread pool).
 */
#ifndef GNI_UPNP_H
#define GNI_UPNP_H

#include "../natd_uv.h"

#define GNI_UPNP_LOG "upnp"

/** Options, read on the loop thread before any job runs; read-only after. */
typedef struct gni_upnp_opts {
    char multicastif[64];   /* "" or an interface name/IPv4 address for SSDP */
    char igd_url[512];      /* "" or the IGD's rootDesc URL (skips discovery) */
    uint32_t discover_ms;   /* SSDP wait */
    bool allow_private;     /* go on with an IGD whose external address is private/missing */
} gni_upnp_opts;

/** The driver backend; gni_upnp_be_new() copies @o. NULL on no memory. */
extern const gni_natd_vtbl gni_upnp_vtbl;
void *gni_upnp_be_new(const gni_upnp_opts *o);

#endif /* GNI_UPNP_H */
