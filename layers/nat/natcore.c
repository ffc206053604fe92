/*
 * natcore: see natcore.h. Pure functions, no I/O.
 */
#include "natcore.h"

#include "golemnet/err.h"
#include "golemnet/log.h"

#include <stdio.h>
#include <string.h>

int gni_nat_target_parse(const gn_multiaddr *internal, gni_nat_target *out)
{
    if (!internal || !out) {
        return GN_EINVAL;
    }
    memset(out, 0, sizeof *out);
    gn_ma_component ip, tp;
    if (gn_multiaddr_component(internal, 0, &ip) < 0 ||
        gn_multiaddr_component(internal, 1, &tp) < 0) {
        return GN_ENOTSUP;
    }
    if (ip.code != GN_MA_IP4 || ip.value_len != 4) {
        return GN_ENOTSUP;
    }
    if ((tp.code != GN_MA_TCP && tp.code != GN_MA_UDP) || tp.value_len != 2) {
        return GN_ENOTSUP;
    }
    memcpy(out->ip, ip.value, 4);
    out->port = (uint16_t)((tp.value[0] << 8) | tp.value[1]);
    out->proto = tp.code == GN_MA_TCP ? GNI_NAT_TCP : GNI_NAT_UDP;
    if (out->port == 0) {
        return GN_EINVAL;
    }
    /* the rest, as text: skip "/ip4/<a>/<t>/<port>" (four slashes) */
    char text[GN_MA_MAX_STRLEN];
    if (gn_multiaddr_to_string(internal, text, sizeof text) < 0) {
        return GN_ENOSPC;
    }
    const char *p = text;
    for (int slashes = 0; *p; p++) {
        if (*p == '/' && ++slashes == 5) {
            break;
        }
    }
    if (strlen(p) >= sizeof out->rest) {
        return GN_ENOSPC;
    }
    memcpy(out->rest, p, strlen(p) + 1);
    return 0;
}

const char *gni_nat_proto_name(gni_nat_proto p)
{
    return p == GNI_NAT_UDP ? "UDP" : "TCP";
}

char *gni_nat_ip4_format(const uint8_t ip[4], char *buf, size_t len)
{
    snprintf(buf, len, "%u.%u.%u.%u", ip[0], ip[1], ip[2], ip[3]);
    return buf;
}

int gni_nat_external(const gni_nat_target *t, const uint8_t ext_ip[4], uint16_t ext_port,
                     gn_multiaddr **out)
{
    if (!t || !ext_ip || !out || ext_port == 0) {
        return GN_EINVAL;
    }
    char ip[16], text[GN_MA_MAX_STRLEN];
    int n = snprintf(text, sizeof text, "/ip4/%s/%s/%u%s", gni_nat_ip4_format(ext_ip, ip, sizeof ip),
                     t->proto == GNI_NAT_UDP ? "udp" : "tcp", ext_port, t->rest);
    if (n < 0 || (size_t)n >= sizeof text) {
        return GN_EPARSE;
    }
    return gn_multiaddr_parse(text, out);
}

int gni_nat_ip4_parse(const char *text, uint8_t out[4])
{
    if (!text || !out) {
        return GN_EPARSE;
    }
    const char *p = text;
    for (int i = 0; i < 4; i++) {
        unsigned v = 0;
        int digits = 0;
        while (*p >= '0' && *p <= '9' && digits < 4) {
            v = v * 10 + (unsigned)(*p++ - '0');
            digits++;
        }
        if (digits == 0 || digits > 3 || v > 255) {
            return GN_EPARSE;
        }
        out[i] = (uint8_t)v;
        if (i < 3 && *p++ != '.') {
            return GN_EPARSE;
        }
    }
    return *p == '\0' ? 0 : GN_EPARSE;
}

bool gni_nat_ip4_is_reserved(const uint8_t ip[4])
{
    uint8_t a = ip[0], b = ip[1], c = ip[2];
    return a == 0 || a == 10 || a == 127 || a >= 224 || (a == 100 && (b & 0xc0) == 64) ||
           (a == 169 && b == 254) || (a == 172 && (b & 0xf0) == 16) ||
           (a == 192 && b == 0 && (c == 0 || c == 2)) || (a == 192 && b == 168) ||
           (a == 198 && (b & 0xfe) == 18) || (a == 198 && b == 51 && c == 100);
}

uint32_t gni_nat_lease_s(gn_time requested, uint32_t option_s, uint32_t min_s, uint32_t max_s)
{
    uint64_t s = option_s ? option_s : (uint64_t)((requested + GN_S - 1) / GN_S);
    if (s < min_s) {
        s = min_s;
    }
    if (s > max_s) {
        s = max_s;
    }
    return (uint32_t)s;
}

gn_time gni_nat_renew_delay(uint32_t granted_s)
{
    if (granted_s == 0) {
        return 0;
    }
    gn_time d = (gn_time)granted_s * GN_S / 2;
    return d < GN_S ? GN_S : d;
}

int gni_nat_parse_u32(const char *text, uint32_t min, uint32_t max, uint32_t *out)
{
    if (!text || !out) {
        return GN_EINVAL;
    }
    uint64_t v = 0;
    const char *p = text;
    if (*p == '\0') {
        return GN_EPARSE;
    }
    for (; *p; p++) {
        if (*p < '0' || *p > '9') {
            return GN_EPARSE;
        }
        v = v * 10 + (uint64_t)(*p - '0');
        if (v > UINT32_MAX) {
            return GN_ERANGE;
        }
    }
    if (v < min || v > max) {
        return GN_ERANGE;
    }
    *out = (uint32_t)v;
    return 0;
}

int gni_nat_upnp_err(int code, const char **reason)
{
    const char *r;
    int e;
    switch (code) {
    case 0: r = "success"; e = 0; break;
    case -1: r = "unknown error"; e = GN_EIO; break;
    case -2: r = "invalid arguments (client side)"; e = GN_EINVAL; break;
    case -3: r = "HTTP error talking to the IGD"; e = GN_EUNREACHABLE; break;
    case -4: r = "invalid response from the IGD"; e = GN_EPROTO; break;
    case -5: r = "out of memory"; e = GN_ENOMEM; break;
    case 401: r = "Invalid Action"; e = GN_ENOTSUP; break;
    case 402: r = "Invalid Args"; e = GN_EINVAL; break;
    case 501: r = "Action Failed"; e = GN_EIO; break;
    case 606: r = "Action not authorized"; e = GN_EACCES; break;
    case 714: r = "NoSuchEntryInArray"; e = GN_ENOTFOUND; break;
    case 715: r = "WildCardNotPermittedInSrcIP"; e = GN_ENOTSUP; break;
    case 716: r = "WildCardNotPermittedInExtPort"; e = GN_ENOTSUP; break;
    case 718: r = "ConflictInMappingEntry"; e = GN_EADDRINUSE; break;
    case 724: r = "SamePortValuesRequired"; e = GN_EADDRINUSE; break;
    case 725: r = "OnlyPermanentLeasesSupported"; e = GN_ENOTSUP; break;
    case 726: r = "RemoteHostOnlySupportsWildcard"; e = GN_ENOTSUP; break;
    case 727: r = "ExternalPortOnlySupportsWildcard"; e = GN_ENOTSUP; break;
    case 728: r = "NoPortMapsAvailable"; e = GN_ELIMIT; break;
    default: r = "UPnP error"; e = GN_EIO; break;
    }
    if (reason) {
        *reason = r;
    }
    return e;
}

int gni_nat_pmp_err(int code, bool is_result, const char **reason)
{
    /* libnatpmp reports result code r (2..) as -49 - r; -49 is "undefined" */
    int result = is_result ? code : (code <= -51 && code >= -99 ? -49 - code : -1);
    if (is_result && code == 0) {
        if (reason) {
            *reason = "success";
        }
        return 0;
    }
    const char *r;
    int e;
    if (!is_result && code == -14) {
        result = 1;
    } else if (!is_result && code == -15) {
        result = 5;
    }
    switch (result) {
    case 1: r = "unsupported version"; e = GN_ENOTSUP; break;
    case 2: r = "not authorized/refused"; e = GN_EACCES; break;
    case 3: r = "network failure (the gateway has no usable public address)";
        e = GN_EADDRNOTAVAIL; break;
    case 4: r = "out of resources"; e = GN_ELIMIT; break;
    case 5: r = "unsupported opcode"; e = GN_ENOTSUP; break;
    default:
        if (is_result) {
            r = "unknown result code"; e = GN_EIO;
        } else if (code == -7) {
            r = "no answer from the gateway"; e = GN_ETIMEDOUT;
        } else if (code == -3) {
            r = "no default gateway"; e = GN_ENOTSUP;
        } else if (code == -9) {
            r = "answer from another address"; e = GN_EPROTO;
        } else {
            r = "libnatpmp error"; e = GN_EIO;
        }
        break;
    }
    if (reason) {
        *reason = r;
    }
    return e;
}
