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
    bool ext_known;         /* ext_ip holds the IGD's address (maybe private) */
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

/*
 * Decides whether the IGD in be->urls can give us a public address:
 * GetStatusInfo says "Connected" and GetExternalIPAddress gives an IPv4
 * address that gni_nat_ip4_is_reserved() accepts (golemnet's own list;
 * miniupnpc's also rejects TEST-NET-3, which the tests' fake IGD uses).
 * @how names the way the IGD was found, @st UPNP_GetValidIGD's answer (or
 * 1). With upnp.allow_private=1 a private or missing address is accepted
 * (be->ext_known tells which). False with @r set otherwise.
 */
static bool be_evaluate(upnp_be *be, const char *how, int st, gni_natd_result *r)
{
    char ext[64] = "", status[64] = "", lasterr[64] = "";
    unsigned uptime = 0;
    int src = UPNP_GetStatusInfo(be->urls.controlURL, be->data.first.servicetype, status, &uptime,
                                 lasterr);
    bool connected = src == UPNPCOMMAND_SUCCESS && strcmp(status, "Connected") == 0;
    int xrc = UPNP_GetExternalIPAddress(be->urls.controlURL, be->data.first.servicetype, ext);
    if (xrc == UPNPCOMMAND_HTTP_ERROR || src == UPNPCOMMAND_HTTP_ERROR) {
        fail_cmd(r, UPNPCOMMAND_HTTP_ERROR, xrc ? "GetExternalIPAddress" : "GetStatusInfo");
        return false;
    }
    uint8_t ip[4];
    bool parsed = xrc == UPNPCOMMAND_SUCCESS && gni_nat_ip4_parse(ext, ip) == 0;
    bool pub = parsed && !gni_nat_ip4_is_reserved(ip);
    const char *root = be->urls.rootdescURL ? be->urls.rootdescURL : "?";
    char detail[200];
    if (!connected) {
        snprintf(detail, sizeof detail, "is not connected (GetStatusInfo: \"%.40s\", rc %d)",
                 status, src);
    } else if (!parsed) {
        snprintf(detail, sizeof detail,
                 "reports no external address (GetExternalIPAddress: \"%.40s\", rc %d): its WAN "
                 "address is private/reserved, it is itself behind NAT",
                 ext, xrc);
    } else {
        snprintf(detail, sizeof detail,
                 "is behind NAT: its external address %.16s is private/reserved", ext);
    }
    be->ext_known = parsed;
    memset(be->ext_ip, 0, 4);
    if (parsed) {
        memcpy(be->ext_ip, ip, 4);
    }
    if (connected && pub) {
        snprintf(r->reason, sizeof r->reason, "IGD %.120s (our LAN address %.16s)", root,
                 be->lanaddr);
        return true;
    }
    if (be->o.allow_private) {
        snprintf(r->reason, sizeof r->reason, "IGD %.100s %s; going on (upnp.allow_private=1)",
                 root, detail);
        return true;
    }
    r->err = GN_EADDRNOTAVAIL;
    r->code = st;
    snprintf(r->reason, sizeof r->reason, "%s=%d: the IGD at %.100s %s; port mapping is "
             "impossible", how, st, root, detail);
    return false;
}

static void upnp_lookup(upnp_be *be, gni_natd_result *r);

static void upnp_gateway(void *p, gni_natd_result *r)
{
    upnp_be *be = p;
    uint64_t now = uv_hrtime();
    if (be->have_igd) {
        if (be_evaluate(be, "refresh", 1, r)) {
            memcpy(r->ext_ip, be->ext_ip, 4);
            return;
        }
        be_drop_igd(be); /* look again */
        memset(r, 0, sizeof *r);
    }
    if (be->fail_at && now - be->fail_at < UPNP_FAIL_REUSE_NS) {
        *r = be->fail;
        return;
    }
    upnp_lookup(be, r);
    if (r->err < 0) {
        be_drop_igd(be);
        be->fail = *r;
        be->fail_at = now;
    } else {
        memcpy(r->ext_ip, be->ext_ip, 4);
        be->fail_at = 0;
    }
}

/* Finds the IGD (discovery or upnp.igd_url) and judges it (be_evaluate). */
static void upnp_lookup(upnp_be *be, gni_natd_result *r)
{
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
        be_evaluate(be, "UPNP_GetIGDFromUrl()", 1, r);
        return;
    }
    int derr = 0;
    /* IGD:1 only: IGD:2 devices answer it too (UDA 1.1 section 1.2.2), and
     * each further search type would cost another discover_ms */
    struct UPNPDev *devs = upnpDiscoverDevice(
        "urn:schemas-upnp-org:device:InternetGatewayDevice:1", (int)be->o.discover_ms,
        be->o.multicastif[0] ? be->o.multicastif : NULL, NULL, UPNP_LOCAL_PORT_ANY, 0, 2, &derr);
    if (!devs) {
        r->err = GN_ENOTSUP;
        r->code = derr;
        snprintf(r->reason, sizeof r->reason,
                 "no IGD answered the SSDP search within %u ms%s%.64s (upnpDiscover: %d)",
                 be->o.discover_ms, be->o.multicastif[0] ? " on " : "", be->o.multicastif, derr);
        return;
    }
#if MINIUPNPC_API_VERSION >= 18
    char wan[64] = "";
    int st = UPNP_GetValidIGD(devs, &be->urls, &be->data, be->lanaddr, (int)sizeof be->lanaddr,
                              wan, (int)sizeof wan);
    /* 1 connected, 2 connected with a reserved address, 3 not connected, 4 not an IGD */
    int st_not_igd = 4;
#else
    int st = UPNP_GetValidIGD(devs, &be->urls, &be->data, be->lanaddr, (int)sizeof be->lanaddr);
    /* 1 connected, 2 "not connected" (also: its external address is reserved), 3 not an IGD */
    int st_not_igd = 3;
#endif
    freeUPNPDevlist(devs);
    if (st == 0) {
        r->err = GN_ENOTSUP;
        snprintf(r->reason, sizeof r->reason, "UPnP devices answered, none is an IGD");
        return;
    }
    be->have_igd = true; /* urls are set for every nonzero answer */
    if (st == st_not_igd) {
        r->err = GN_ENOTSUP;
        r->code = st;
        snprintf(r->reason, sizeof r->reason, "the UPnP device at %.150s is not an IGD",
                 be->urls.rootdescURL ? be->urls.rootdescURL : "?");
        return;
    }
    /* 1, and the "not connected / reserved" answers: judge it ourselves */
    be_evaluate(be, "UPNP_GetValidIGD()", st, r);
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
    if (!be->ext_known) { /* upnp.allow_private=1 and no address: nothing to report */
        UPNP_DeletePortMapping(be->urls.controlURL, be->data.first.servicetype, port, proto, NULL);
        r->err = GN_EADDRNOTAVAIL;
        snprintf(r->reason, sizeof r->reason,
                 "AddPortMapping(%s %s) succeeded but the IGD has no external address; deleted",
                 proto, port);
        return;
    }
    /* What the IGD holds now: the lease it granted (it may shorten it). */
    char in_client[16] = "", in_port[6] = "", desc[80] = "", enabled[4] = "", dur[16] = "";
    rc = UPNP_GetSpecificPortMappingEntry(be->urls.controlURL, be->data.first.servicetype, port,
                                          proto, NULL, in_client, in_port, desc, enabled, dur);
    uint32_t granted = lease_s;
    if (rc == UPNPCOMMAND_SUCCESS) {
        uint32_t v;
        if (gni_nat_parse_u32(dur, 0, UINT32_MAX, &v) == 0 && v != 0 && v <= lease_s) {
            granted = v; /* some IGDs report 0 for "as asked" */
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
