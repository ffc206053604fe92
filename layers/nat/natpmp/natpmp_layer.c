/*
 * The `natpmp` NAT component: maps the node's listen ports through a
 * NAT-PMP gateway (RFC 6886) with libnatpmp and reports the gateway's
 * public address.
 *
 * Options (gn_host_option, component "natpmp"):
 *   natpmp.gateway=<IPv4>   the gateway to ask (default: libnatpmp's
 *                           default-gateway lookup in the routing table)
 *   natpmp.lease=<s>        lifetime to ask for, 2..604800 s (default: the
 *                           node's, 1 h); renewed at half the granted one
 *   natpmp.timeout_ms=<n>   bound on one request with its retransmissions,
 *                           250..64000 ms (default 4000)
 * The mapping is asked for the listen address's transport (TCP, or UDP
 * for /udp addresses) with the same public port suggested; the gateway
 * may grant another port, which then is the one reported.
 * Spec: docs/nat.md; RFC 6886.
 */
#include "golemnet/nat.h"
#include "golemnet/registry.h"

#include "gni.h"
#include "natpmp.h"

#include <string.h>

#define PMP_LEASE_MIN 2u
#define PMP_LEASE_MAX 604800u

typedef struct pmp_nat {
    gni_natd *d;
} pmp_nat;

static int pmp_opt_u32(gn_nat *n, const char *key, uint32_t min, uint32_t max, uint32_t def,
                       uint32_t *out)
{
    const char *v = gn_host_option(n->host, "natpmp", key, 0);
    *out = def;
    if (v && gni_nat_parse_u32(v, min, max, out) < 0) {
        GN_LOG(GN_LOG_ERR, GNI_NATPMP_LOG, "natpmp.%s=%s: want a number %u..%u", key, v, min,
               max);
        return GN_EINVAL;
    }
    return 0;
}

static int pmp_init(gn_nat *n)
{
    pmp_nat *s = n->state;
    gni_natpmp_opts o;
    uint32_t lease = 0;
    memset(&o, 0, sizeof o);
    const char *gw = gn_host_option(n->host, "natpmp", "gateway", 0);
    if (gw) {
        if (gni_nat_ip4_parse(gw, o.gateway) < 0) {
            GN_LOG(GN_LOG_ERR, GNI_NATPMP_LOG, "natpmp.gateway=%s: want an IPv4 address", gw);
            return GN_EINVAL;
        }
        o.force_gateway = true;
    }
    int rc = pmp_opt_u32(n, "timeout_ms", 250, 64000, 4000, &o.timeout_ms);
    if (rc == 0) {
        rc = pmp_opt_u32(n, "lease", PMP_LEASE_MIN, PMP_LEASE_MAX, 0, &lease);
    }
    if (rc < 0) {
        return rc;
    }
    void *be = gni_natpmp_be_new(&o);
    if (!be) {
        return GN_ENOMEM;
    }
    return gni_natd_new(n, &gni_natpmp_vtbl, be, lease, PMP_LEASE_MIN, PMP_LEASE_MAX, &s->d);
}

static void pmp_fini(gn_nat *n)
{
    pmp_nat *s = n->state;
    gni_natd_free(s->d);
    s->d = NULL;
}

static int pmp_start(gn_nat *n)
{
    pmp_nat *s = n->state;
    return gni_natd_start(s->d);
}

static void pmp_stop(gn_nat *n)
{
    pmp_nat *s = n->state;
    gni_natd_stop(s->d);
}

static int pmp_map(gn_nat *n, const gn_multiaddr *internal, gn_time lifetime, gn_nat_map_cb cb,
                   void *arg)
{
    pmp_nat *s = n->state;
    return gni_natd_map(s->d, internal, lifetime, cb, arg);
}

static int pmp_unmap(gn_nat *n, const gn_multiaddr *internal)
{
    pmp_nat *s = n->state;
    return gni_natd_unmap(s->d, internal);
}

static const gn_nat_ops natpmp_ops = {
    .abi = GN_NAT_ABI,
    .name = "natpmp",
    .state_size = sizeof(pmp_nat),
    .flags = GN_LAYER_F_EXPLICIT_ONLY, /* asks the network's gateway: only when named */
    .init = pmp_init,
    .fini = pmp_fini,
    .start = pmp_start,
    .stop = pmp_stop,
    .map = pmp_map,
    .unmap = pmp_unmap,
};

int gn_nat_natpmp_register(gn_registry *reg);
int gn_nat_natpmp_register(gn_registry *reg)
{
    return gn_registry_add(reg, GN_LAYER_NAT, (const gn_layer_ops *)&natpmp_ops);
}
