/*
 * The `upnp` NAT component: maps the node's listen ports on a UPnP
 * Internet Gateway Device (IGD 1.0, WANIPConnection:1) through
 * libminiupnpc, and reports the IGD's external address.
 *
 * Options (gn_host_option, component "upnp"):
 *   upnp.multicastif=<ifname|IPv4>  interface for the SSDP search (default:
 *                                   the system's choice)
 *   upnp.igd_url=<url>              the IGD's rootDesc URL: skip discovery
 *   upnp.discover_ms=<n>            SSDP wait, 100..30000 (default 2000)
 *   upnp.lease=<s>                  lease to ask for, 2..604800 s (default:
 *                                   the node's, 1 h); renewed at half of the
 *                                   lease the IGD grants
 *   upnp.allow_private=1            go on with an IGD whose external address
 *                                   is private/reserved or missing (double
 *                                   NAT, lab networks): the private address
 *                                   is reported; with none, the map fails
 * The blocking miniupnpc calls run on libuv's thread pool (upnp_uv.c via
 * the natd driver); this file only reads the options and forwards.
 * Errors a map reports: see docs/nat.md.
 * Spec: docs/nat.md; UPnP IGD 1.0 WANIPConnection:1.
 */
#include "golemnet/nat.h"
#include "golemnet/registry.h"

#include "gni.h"
#include "upnp.h"

#include <stdio.h>
#include <string.h>

#define UPNP_LEASE_MIN 2u
#define UPNP_LEASE_MAX 604800u

typedef struct upnp_nat {
    gni_natd *d;
} upnp_nat;

static int upnp_opt_u32(gn_nat *n, const char *key, uint32_t min, uint32_t max, uint32_t def,
                        uint32_t *out)
{
    const char *v = gn_host_option(n->host, "upnp", key, 0);
    *out = def;
    if (!v) {
        return 0;
    }
    int rc = gni_nat_parse_u32(v, min, max, out);
    if (rc < 0) {
        GN_LOG(GN_LOG_ERR, GNI_UPNP_LOG, "upnp.%s=%s: want a number %u..%u", key, v, min, max);
        return GN_EINVAL;
    }
    return 0;
}

static int upnp_opt_str(gn_nat *n, const char *key, char *out, size_t len)
{
    const char *v = gn_host_option(n->host, "upnp", key, 0);
    if (!v) {
        out[0] = '\0';
        return 0;
    }
    if (strlen(v) >= len || v[0] == '\0') {
        GN_LOG(GN_LOG_ERR, GNI_UPNP_LOG, "upnp.%s: empty or longer than %zu bytes", key, len - 1);
        return GN_EINVAL;
    }
    memcpy(out, v, strlen(v) + 1);
    return 0;
}

static int upnp_init(gn_nat *n)
{
    upnp_nat *u = n->state;
    gni_upnp_opts o;
    uint32_t lease = 0;
    memset(&o, 0, sizeof o);
    int rc = upnp_opt_str(n, "multicastif", o.multicastif, sizeof o.multicastif);
    if (rc == 0) {
        rc = upnp_opt_str(n, "igd_url", o.igd_url, sizeof o.igd_url);
    }
    if (rc == 0) {
        rc = upnp_opt_u32(n, "discover_ms", 100, 30000, 2000, &o.discover_ms);
    }
    if (rc == 0) {
        rc = upnp_opt_u32(n, "lease", UPNP_LEASE_MIN, UPNP_LEASE_MAX, 0, &lease);
    }
    uint32_t allow = 0;
    if (rc == 0) {
        rc = upnp_opt_u32(n, "allow_private", 0, 1, 0, &allow);
    }
    if (rc < 0) {
        return rc;
    }
    o.allow_private = allow != 0;
    void *be = gni_upnp_be_new(&o);
    if (!be) {
        return GN_ENOMEM;
    }
    return gni_natd_new(n, &gni_upnp_vtbl, be, lease, UPNP_LEASE_MIN, UPNP_LEASE_MAX, &u->d);
}

static void upnp_fini(gn_nat *n)
{
    upnp_nat *u = n->state;
    gni_natd_free(u->d);
    u->d = NULL;
}

static int upnp_start(gn_nat *n)
{
    upnp_nat *u = n->state;
    return gni_natd_start(u->d);
}

static void upnp_stop(gn_nat *n)
{
    upnp_nat *u = n->state;
    gni_natd_stop(u->d);
}

static int upnp_map(gn_nat *n, const gn_multiaddr *internal, gn_time lifetime, gn_nat_map_cb cb,
                    void *arg)
{
    upnp_nat *u = n->state;
    return gni_natd_map(u->d, internal, lifetime, cb, arg);
}

static int upnp_unmap(gn_nat *n, const gn_multiaddr *internal)
{
    upnp_nat *u = n->state;
    return gni_natd_unmap(u->d, internal);
}

static const gn_nat_ops upnp_ops = {
    .abi = GN_NAT_ABI,
    .name = "upnp",
    .state_size = sizeof(upnp_nat),
    .flags = GN_LAYER_F_EXPLICIT_ONLY, /* asks the network's gateway: only when named */
    .init = upnp_init,
    .fini = upnp_fini,
    .start = upnp_start,
    .stop = upnp_stop,
    .map = upnp_map,
    .unmap = upnp_unmap,
};

int gn_nat_upnp_register(gn_registry *reg);
int gn_nat_upnp_register(gn_registry *reg)
{
    return gn_registry_add(reg, GN_LAYER_NAT, (const gn_layer_ops *)&upnp_ops);
}
