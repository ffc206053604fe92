/*
 * upnp_uv: the UPnP IGD component's blocking half. Each function below is
 * a natd backend call (natd_uv.h) and runs on a libuv thread-pool thread,
 * one at a time, so the backend state needs no lock; none of them ever
 * runs on the loop thread. They speak to the IGD through Debian's
 * libminiupnpc: SSDP discovery (upnpDiscover), the description
 * (UPNP_GetValidIGD or UPNP_GetIGDFromUrl), and the WANIPConnection:1
 * actions GetExternalIPAddress, AddPortMapping,
 * GetSpecificPortMappingEntry and DeletePortMapping.
 *
 * miniupnpc's own bounds keep every call finite: discovery waits
 * discover_ms, each HTTP exchange has the library's socket timeouts.
 *
 * Spec: UPnP IGD 1.0, WANIPConnection:1 Service Template 1.01.
 */
#include "upnp.h"

#include "gni.h"

#include <miniupnpc/miniupnpc.h>
#include <miniupnpc/upnpcommands.h>
#include <miniupnpc/upnperrors.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#ifndef MINIUPNPC_API_VERSION
#error "miniupnpc.h without MINIUPNPC_API_VERSION"
#endif

typedef struct upnp_be {
    gni_upnp_opts o;
    /* worker state: touched by one job at a time */
    bool have_igd;
    struct UPNPUrls urls;
    struct IGDdatas data;
    char lanaddr[64];
    uint8_t ext_ip[4];
    gni_natd_result fail;   /* the last failed look-up */
    uint64_t fail_at;       /* when (uv_hrtime ns), 0: none */
} upnp_be;

/* A failed look-up is reused this long, so the maps right after a start
 * that found no IGD fail at once instead of searching again. */
#define UPNP_FAIL_REUSE_NS (30ull * 1000000000ull)

void *gni_upnp_be_new(const gni_upnp_opts *o)
{
    upnp_be *be = gn_calloc(1, sizeof *be);
    if (be) {
        be->o = *o;
    }
    return be;
}

static void be_drop_igd(upnp_be *be)
{
    if (be->have_igd) {
        FreeUPNPUrls(&be->urls);
        memset(&be->urls, 0, sizeof be->urls);
        be->have_igd = false;
    }
}

static void upnp_free(void *p)
{
    upnp_be *be = p;
    be_drop_igd(be);
    gn_free(be);
}

/* Sets r->err/code/reason for a failed command @what (rc: miniupnpc's or the IGD's code). */
static void fail_cmd(gni_natd_result *r, int rc, const char *what)
{
    const char *why = NULL;
    r->err = gni_nat_upnp_err(rc, &why);
    r->code = rc;
    const char *lib = strupnperror(rc);
    if (rc > 0) {
        snprintf(r->reason, sizeof r->reason, "%s failed: UPnP error %d (%s)", what, rc,
                 lib ? lib : why);
    } else {
        snprintf(r->reason, sizeof r->reason, "%s failed: miniupnpc error %d (%s)", what, rc, why);
    }
}

/* GetExternalIPAddress into be->ext_ip; false with r set when unusable. */
static bool be_external_ip(upnp_be *be, gni_natd_result *r)
{
    char ext[64] = "";
    int rc = UPNP_GetExternalIPAddress(be->urls.controlURL, be->data.first.servicetype, ext);
    if (rc != UPNPCOMMAND_SUCCESS) {
        fail_cmd(r, rc, "GetExternalIPAddress");
        return false;
    }
    uint8_t ip[4];
    if (gni_nat_ip4_parse(ext, ip) < 0) {
        r->err = GN_EADDRNOTAVAIL;
        snprintf(r->reason, sizeof r->reason,
                 "GetExternalIPAddress gave no usable address (\"%s\"): the IGD has no public "
                 "address",
                 ext);
        return false;
    }
    if (gni_nat_ip4_is_reserved(ip)) {
        r->err = GN_EADDRNOTAVAIL;
        snprintf(r->reason, sizeof r->reason,
                 "the IGD's external address %s is private/reserved: the gateway is itself "
                 "behind NAT, port mapping is impossible",
                 ext);
        return false;
    }
    memcpy(be->ext_ip, ip, 4);
    return true;
}

static void upnp_lookup(upnp_be *be, gni_natd_result *r);

static void upnp_gateway(void *p, gni_natd_result *r)
{
    upnp_be *be = p;
    uint64_t now = uv_hrtime();
    if (!be->have_igd && be->fail_at && now - be->fail_at < UPNP_FAIL_REUSE_NS) {
        *r = be->fail;
        return;
    }
    upnp_lookup(be, r);
    if (r->err < 0) {
        be->fail = *r;
        be->fail_at = now;
    } else {
        be->fail_at = 0;
    }
}

/* Finds the IGD (discovery or upnp.igd_url) and its external address. */
static void upnp_lookup(upnp_be *be, gni_natd_result *r)
{
    if (be->have_igd) {
        if (be_external_ip(be, r)) {
            memcpy(r->ext_ip, be->ext_ip, 4);
            snprintf(r->reason, sizeof r->reason, "IGD %s", be->urls.rootdescURL);
            return;
        }
        be_drop_igd(be); /* look again */
        memset(r, 0, sizeof *r);
    }
    be->lanaddr[0] = '\0';
    if (be->o.igd_url[0]) {
        if (UPNP_GetIGDFromUrl(be->o.igd_url, &be->urls, &be->data, be->lanaddr,
                               (int)sizeof be->lanaddr) != 1) {
            r->err = GN_ENOTSUP;
            snprintf(r->reason, sizeof r->reason, "no IGD description at upnp.igd_url=%.150s",
                     be->o.igd_url);
            return;
        }
        be->have_igd = true;
    } else {
        int derr = 0;
        /* IGD:1 only: IGD:2 devices answer it too (UDA 1.1 section 1.2.2),
         * and each further search type would cost another discover_ms */
        struct UPNPDev *devs = upnpDiscoverDevice(
            "urn:schemas-upnp-org:device:InternetGatewayDevice:1", (int)be->o.discover_ms,
            be->o.multicastif[0] ? be->o.multicastif : NULL, NULL, UPNP_LOCAL_PORT_ANY, 0, 2,
            &derr);
        if (!devs) {
            r->err = GN_ENOTSUP;
            r->code = derr;
            snprintf(r->reason, sizeof r->reason,
                     "no UPnP device answered the SSDP search within %u ms%s%s (upnpDiscover: %d)",
                     be->o.discover_ms, be->o.multicastif[0] ? " on " : "", be->o.multicastif,
                     derr);
            return;
        }
#if MINIUPNPC_API_VERSION >= 18
        char wan[64] = "";
        int st = UPNP_GetValidIGD(devs, &be->urls, &be->data, be->lanaddr,
                                  (int)sizeof be->lanaddr, wan, (int)sizeof wan);
        /* 1 connected, 2 connected with a reserved address, 3 not connected, 4 not an IGD */
        int st_private = 2, st_unconnected = 3, st_not_igd = 4;
#else
        int st = UPNP_GetValidIGD(devs, &be->urls, &be->data, be->lanaddr,
                                  (int)sizeof be->lanaddr);
        /* 1 connected, 2 "not connected" (also: external address reserved), 3 not an IGD */
        int st_private = 2, st_unconnected = -1, st_not_igd = 3;
#endif
        freeUPNPDevlist(devs);
        r->code = st;
        if (st == 0) {
            r->err = GN_ENOTSUP;
            snprintf(r->reason, sizeof r->reason, "UPnP devices answered, none is an IGD");
            return;
        }
        be->have_igd = true; /* urls are set for every nonzero answer */
        if (st == st_not_igd) {
            r->err = GN_ENOTSUP;
            snprintf(r->reason, sizeof r->reason,
                     "the UPnP device at %s is not an Internet Gateway Device",
                     be->urls.rootdescURL ? be->urls.rootdescURL : "?");
            be_drop_igd(be);
            return;
        }
        if (st == st_private || st == st_unconnected) {
            /* Ask anyway, to say which of the two it is. */
            char ext[64] = "";
            int rc = UPNP_GetExternalIPAddress(be->urls.controlURL, be->data.first.servicetype,
                                               ext);
            uint8_t ip[4];
            bool addr = rc == UPNPCOMMAND_SUCCESS && gni_nat_ip4_parse(ext, ip) == 0;
            r->err = GN_EADDRNOTAVAIL;
            snprintf(r->reason, sizeof r->reason,
                     "UPNP_GetValidIGD()=%d: the IGD at %s %s%s%s; port mapping is impossible "
                     "(the gateway is itself behind NAT or offline)",
                     st, be->urls.rootdescURL ? be->urls.rootdescURL : "?",
                     addr ? "has a private/reserved external address " : "reports no external "
                                                                        "address (not connected "
                                                                        "or private)",
                     addr ? ext : "", "");
            be_drop_igd(be);
            return;
        }
    }
    if (!be_external_ip(be, r)) {
        be_drop_igd(be);
        return;
    }
    memcpy(r->ext_ip, be->ext_ip, 4);
    snprintf(r->reason, sizeof r->reason, "IGD %s (control %s, our LAN address %s)",
             be->urls.rootdescURL ? be->urls.rootdescURL : "?", be->urls.controlURL,
             be->lanaddr);
}

static void upnp_map(void *p, const gni_nat_target *t, uint32_t lease_s, gni_natd_result *r)
{
    upnp_be *be = p;
    upnp_gateway(be, r);
    if (r->err < 0) {
        return;
    }
    memset(r, 0, sizeof *r);
    char port[8], lease[16], client[16], what[160];
    snprintf(port, sizeof port, "%u", t->port);
    snprintf(lease, sizeof lease, "%u", lease_s);
    bool any = memcmp(t->ip, "\0\0\0\0", 4) == 0;
    if (any) {
        snprintf(client, sizeof client, "%.15s", be->lanaddr);
    } else {
        gni_nat_ip4_format(t->ip, client, sizeof client);
    }
    const char *proto = gni_nat_proto_name(t->proto);
    int rc = UPNP_AddPortMapping(be->urls.controlURL, be->data.first.servicetype, port, port,
                                 client, "golemnet", proto, NULL, lease);
    if (rc == 725 && lease_s != 0) { /* OnlyPermanentLeasesSupported */
        lease_s = 0;
        snprintf(lease, sizeof lease, "0");
        rc = UPNP_AddPortMapping(be->urls.controlURL, be->data.first.servicetype, port, port,
                                 client, "golemnet", proto, NULL, lease);
    }
    if (rc != UPNPCOMMAND_SUCCESS) {
        snprintf(what, sizeof what, "AddPortMapping(%s %s -> %s:%s, lease %u s)", proto, port,
                 client, port, lease_s);
        fail_cmd(r, rc, what);
        if (rc == UPNPCOMMAND_HTTP_ERROR) {
            be_drop_igd(be); /* discover again next time */
        }
        return;
    }
    /* What the IGD holds now: the lease it granted (it may shorten it). */
    char in_client[16] = "", in_port[6] = "", desc[80] = "", enabled[4] = "", dur[16] = "";
    rc = UPNP_GetSpecificPortMappingEntry(be->urls.controlURL, be->data.first.servicetype, port,
                                          proto, NULL, in_client, in_port, desc, enabled, dur);
    uint32_t granted = lease_s;
    if (rc == UPNPCOMMAND_SUCCESS) {
        uint32_t v;
        if (gni_nat_parse_u32(dur, 0, UINT32_MAX, &v) == 0 && v <= lease_s) {
            granted = v == 0 ? lease_s : v; /* some IGDs report 0 for "as asked" */
        }
        if (strcmp(in_client, client) != 0 || strcmp(in_port, port) != 0) {
            r->err = GN_EADDRINUSE;
            snprintf(r->reason, sizeof r->reason,
                     "the IGD maps %s %s to %s:%s, not to us (%s:%s)", proto, port, in_client,
                     in_port, client, port);
            return;
        }
    }
    memcpy(r->ext_ip, be->ext_ip, 4);
    r->ext_port = t->port;
    r->lease_s = granted;
}

static void upnp_unmap(void *p, const gni_nat_target *t, gni_natd_result *r)
{
    upnp_be *be = p;
    if (!be->have_igd) {
        upnp_gateway(be, r);
        if (r->err < 0) {
            return;
        }
        memset(r, 0, sizeof *r);
    }
    char port[8], what[64];
    snprintf(port, sizeof port, "%u", t->port);
    const char *proto = gni_nat_proto_name(t->proto);
    int rc = UPNP_DeletePortMapping(be->urls.controlURL, be->data.first.servicetype, port, proto,
                                    NULL);
    if (rc != UPNPCOMMAND_SUCCESS) {
        snprintf(what, sizeof what, "DeletePortMapping(%s %s)", proto, port);
        fail_cmd(r, rc, what);
    }
}

const gni_natd_vtbl gni_upnp_vtbl = {
    .log = GNI_UPNP_LOG,
    .gateway = upnp_gateway,
    .map = upnp_map,
    .unmap = upnp_unmap,
    .free = upnp_free,
};
