/*
 * natpmp_uv: the NAT-PMP component's blocking half (RFC 6886) on top of
 * Debian's libnatpmp. Each function is a natd backend call (natd_uv.h) and
 * runs on a libuv thread-pool thread, one at a time; none runs on the
 * loop thread.
 *
 * Why the thread pool and not a uv_poll on libnatpmp's socket: libnatpmp
 * finds the default gateway by reading the routing table and keeps its
 * own retransmission clock (getnatpmprequesttimeout); one request is a
 * short blocking exchange on a private socket, so running it as a job of
 * the same serial queue as the UPnP component keeps one driver for both
 * (renewal, cancellation, deletion at close) and leaves no handle on the
 * loop. The cost: a request in flight is not interrupted at stop; it ends
 * within natpmp.timeout_ms, and the loop waits for it when it closes.
 *
 * Each request is retransmitted on libnatpmp's schedule (250 ms doubling,
 * RFC 6886 section 3.1) until an answer, an error, or timeout_ms.
 */
#include "natpmp.h"

#include "gni.h"
#include "gni_platform.h" /* gni_sock_wait_readable */

#include <errno.h>
#include <natpmp.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

typedef struct pmp_be {
    gni_natpmp_opts o;
    uint8_t ext_ip[4]; /* worker state: the last public address */
    bool have_ext;
    gni_natd_result fail; /* the last failed public address request */
    uint64_t fail_at;     /* when (uv_hrtime ns), 0: none */
} pmp_be;

/* A failed public address request is reused this long (see upnp_uv.c). */
#define PMP_FAIL_REUSE_NS (30ull * 1000000000ull)

void *gni_natpmp_be_new(const gni_natpmp_opts *o)
{
    pmp_be *be = gn_calloc(1, sizeof *be);
    if (be) {
        be->o = *o;
    }
    return be;
}

static void pmp_free(void *p)
{
    gn_free(p);
}

/* Sets r from a libnatpmp error @rc of request @what. */
static void pmp_fail(gni_natd_result *r, int rc, const char *what, const pmp_be *be,
                     uint32_t waited_ms)
{
    const char *why = NULL;
    r->err = gni_nat_pmp_err(rc, false, &why);
    if (rc <= -51 && rc >= -99) { /* libnatpmp's form of result code r: -49 - r */
        r->code = -49 - rc;
        snprintf(r->reason, sizeof r->reason, "%s: NAT-PMP result code %d (%s)", what, r->code,
                 why);
    } else if (rc == NATPMP_ERR_NOGATEWAYSUPPORT) {
        r->code = rc;
        snprintf(r->reason, sizeof r->reason, "%s: no NAT-PMP answer within %u ms", what,
                 waited_ms);
    } else {
        r->code = rc;
        snprintf(r->reason, sizeof r->reason, "%s: libnatpmp error %d (%s)", what, rc, why);
    }
    (void)be;
}

/*
 * One request/answer exchange. @op: 0 public address, else a mapping
 * request (NATPMP_PROTOCOL_*). Returns 0 with *@resp, or fills @r.
 */
static int pmp_exchange(pmp_be *be, int op, uint16_t port, uint16_t pub_port, uint32_t lifetime,
                        natpmpresp_t *resp, gni_natd_result *r, const char *what)
{
    natpmp_t pmp;
    in_addr_t gw = 0;
    if (be->o.force_gateway) {
        memcpy(&gw, be->o.gateway, 4);
    }
    int rc = initnatpmp(&pmp, be->o.force_gateway ? 1 : 0, gw);
    if (rc < 0) {
        pmp_fail(r, rc, what, be, 0);
        return r->err;
    }
    rc = op == 0 ? sendpublicaddressrequest(&pmp)
                 : sendnewportmappingrequest(&pmp, op, port, pub_port, lifetime);
    uint64_t start = uv_hrtime();
    uint64_t deadline = start + (uint64_t)be->o.timeout_ms * 1000000u;
    while (rc >= 0) {
        struct timeval tv;
        if (getnatpmprequesttimeout(&pmp, &tv) < 0) {
            tv.tv_sec = 0;
            tv.tv_usec = 0;
        }
        uint64_t now = uv_hrtime();
        if (now >= deadline) {
            rc = NATPMP_ERR_NOGATEWAYSUPPORT;
            break;
        }
        uint64_t wait_ms = (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
        uint64_t left_ms = (deadline - now) / 1000000u + 1;
        if (wait_ms > left_ms) {
            wait_ms = left_ms;
        }
        if (gni_sock_wait_readable((long long)pmp.s, (int)wait_ms) < 0) {
            rc = NATPMP_ERR_RECVFROM;
            break;
        }
        rc = readnatpmpresponseorretry(&pmp, resp);
        if (rc != NATPMP_TRYAGAIN) {
            break;
        }
        rc = 0;
    }
    uint32_t waited = (uint32_t)((uv_hrtime() - start) / 1000000u);
    closenatpmp(&pmp);
    if (rc < 0) {
        pmp_fail(r, rc, what, be, waited);
        return r->err;
    }
    return 0;
}

static void pmp_ask_gateway(pmp_be *be, gni_natd_result *r);

static void pmp_gateway(void *p, gni_natd_result *r)
{
    pmp_be *be = p;
    uint64_t now = uv_hrtime();
    if (be->fail_at && now - be->fail_at < PMP_FAIL_REUSE_NS) {
        *r = be->fail;
        return;
    }
    pmp_ask_gateway(be, r);
    if (r->err < 0) {
        be->fail = *r;
        be->fail_at = now;
    } else {
        be->fail_at = 0;
    }
}

static void pmp_ask_gateway(pmp_be *be, gni_natd_result *r)
{
    natpmpresp_t resp;
    memset(&resp, 0, sizeof resp);
    if (pmp_exchange(be, 0, 0, 0, 0, &resp, r, "public address request") < 0) {
        return;
    }
    uint8_t ip[4];
    memcpy(ip, &resp.pnu.publicaddress.addr, 4);
    char text[16];
    gni_nat_ip4_format(ip, text, sizeof text);
    if (gni_nat_ip4_is_reserved(ip)) {
        r->err = GN_EADDRNOTAVAIL;
        snprintf(r->reason, sizeof r->reason,
                 "the gateway's public address %s is private/reserved: it is itself behind NAT",
                 text);
        return;
    }
    memcpy(be->ext_ip, ip, 4);
    be->have_ext = true;
    memcpy(r->ext_ip, ip, 4);
    snprintf(r->reason, sizeof r->reason, "NAT-PMP gateway, epoch %u s", (unsigned)resp.epoch);
}

static void pmp_map(void *p, const gni_nat_target *t, uint32_t lease_s, gni_natd_result *r)
{
    pmp_be *be = p;
    pmp_gateway(be, r); /* the public address, fresh for each (re)mapping */
    if (r->err < 0) {
        return;
    }
    memset(r, 0, sizeof *r);
    natpmpresp_t resp;
    memset(&resp, 0, sizeof resp);
    char what[96];
    snprintf(what, sizeof what, "mapping request %s %u, lifetime %u s",
             gni_nat_proto_name(t->proto), t->port, lease_s);
    int op = t->proto == GNI_NAT_UDP ? NATPMP_PROTOCOL_UDP : NATPMP_PROTOCOL_TCP;
    if (pmp_exchange(be, op, t->port, t->port, lease_s, &resp, r, what) < 0) {
        return;
    }
    if (resp.pnu.newportmapping.privateport != t->port ||
        resp.pnu.newportmapping.mappedpublicport == 0) {
        r->err = GN_EPROTO;
        snprintf(r->reason, sizeof r->reason, "%s: answer for private port %u, public port %u",
                 what, resp.pnu.newportmapping.privateport,
                 resp.pnu.newportmapping.mappedpublicport);
        return;
    }
    memcpy(r->ext_ip, be->ext_ip, 4);
    r->ext_port = resp.pnu.newportmapping.mappedpublicport;
    r->lease_s = resp.pnu.newportmapping.lifetime;
    if (r->lease_s == 0) { /* a zero lifetime would mean "deleted": treat as refused */
        r->err = GN_EPROTO;
        snprintf(r->reason, sizeof r->reason, "%s: granted lifetime 0", what);
    }
}

static void pmp_unmap(void *p, const gni_nat_target *t, gni_natd_result *r)
{
    pmp_be *be = p;
    natpmpresp_t resp;
    char what[64];
    snprintf(what, sizeof what, "delete request %s %u", gni_nat_proto_name(t->proto), t->port);
    int op = t->proto == GNI_NAT_UDP ? NATPMP_PROTOCOL_UDP : NATPMP_PROTOCOL_TCP;
    /* RFC 6886 section 3.4: lifetime 0 and suggested public port 0 delete it */
    pmp_exchange(be, op, t->port, 0, 0, &resp, r, what);
}

const gni_natd_vtbl gni_natpmp_vtbl = {
    .log = GNI_NATPMP_LOG,
    .gateway = pmp_gateway,
    .map = pmp_map,
    .unmap = pmp_unmap,
    .free = pmp_free,
};
