/*
 * /libp2p/autonat/1.0.0 wire core: decode into gni_autonat_msg, encode the
 * DIAL and DIAL_RESPONSE messages. See autonat_msg.h.
 */
#include "autonat_msg.h"

#include "gni.h"
#include "gni_pb.h"
#include "golemnet/err.h"
#include "golemnet/log.h"

#include "autonat.pb-c.h"

#include <string.h>

const char *gni_autonat_status_name(int status)
{
    switch (status) {
    case GNI_AUTONAT_OK:
        return "OK";
    case GNI_AUTONAT_E_DIAL_ERROR:
        return "E_DIAL_ERROR";
    case GNI_AUTONAT_E_DIAL_REFUSED:
        return "E_DIAL_REFUSED";
    case GNI_AUTONAT_E_BAD_REQUEST:
        return "E_BAD_REQUEST";
    case GNI_AUTONAT_E_INTERNAL_ERROR:
        return "E_INTERNAL_ERROR";
    default:
        return "?";
    }
}

static bool status_known(int s)
{
    return s == GNI_AUTONAT_OK || s == GNI_AUTONAT_E_DIAL_ERROR ||
           s == GNI_AUTONAT_E_DIAL_REFUSED || s == GNI_AUTONAT_E_BAD_REQUEST ||
           s == GNI_AUTONAT_E_INTERNAL_ERROR;
}

void gni_autonat_msg_fini(gni_autonat_msg *m)
{
    if (!m) {
        return;
    }
    for (size_t i = 0; i < m->addr_cnt; i++) {
        gn_multiaddr_free(m->addrs[i]);
    }
    gn_multiaddr_free(m->addr);
    memset(m, 0, sizeof *m);
}

/* Parses one binary multiaddr: 0 with *out, 1 when it does not parse, or GN_ENOMEM. */
static int take_addr(const ProtobufCBinaryData *b, gn_multiaddr **out)
{
    *out = NULL;
    if (b->len == 0) {
        return 1;
    }
    int rc = gn_multiaddr_from_bytes(b->data, b->len, out);
    if (rc == GN_ENOMEM) {
        return rc;
    }
    return rc < 0 ? 1 : 0;
}

static int take_dial(gni_autonat_msg *out, const Gnpb__Autonat__Message *pb)
{
    if (!pb->dial || !pb->dial->peer) {
        return GN_EPROTO;
    }
    const Gnpb__Autonat__Message__PeerInfo *pi = pb->dial->peer;
    if (pi->has_id) {
        if (gn_peer_id_from_bytes(pi->id.data, pi->id.len, &out->peer_id) < 0) {
            return GN_EPROTO;
        }
        out->has_peer_id = true;
    }
    for (size_t i = 0; i < pi->n_addrs; i++) {
        if (out->addr_cnt == GNI_AUTONAT_MAX_ADDRS) {
            out->addrs_skipped += pi->n_addrs - i;
            break;
        }
        gn_multiaddr *ma;
        int rc = take_addr(&pi->addrs[i], &ma);
        if (rc < 0) {
            return rc;
        }
        if (rc > 0) {
            out->addrs_skipped++;
            continue;
        }
        out->addrs[out->addr_cnt++] = ma;
    }
    return 0;
}

static int take_response(gni_autonat_msg *out, const Gnpb__Autonat__Message *pb)
{
    const Gnpb__Autonat__Message__DialResponse *r = pb->dialresponse;
    if (!r || !r->has_status || !status_known((int)r->status)) {
        return GN_EPROTO;
    }
    out->status = (gni_autonat_status)r->status;
    if (r->statustext) {
        size_t i = 0;
        for (; i < GNI_AUTONAT_MAX_TEXT && r->statustext[i]; i++) {
            unsigned char c = (unsigned char)r->statustext[i];
            out->status_text[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
        }
        out->status_text[i] = '\0';
    }
    if (r->has_addr) {
        int rc = take_addr(&r->addr, &out->addr);
        if (rc < 0) {
            return rc;
        }
        out->addr_bad = rc > 0;
    }
    return 0;
}

int gni_autonat_decode(const uint8_t *in, size_t len, gni_autonat_msg *out)
{
    if (!out) {
        return GN_EINVAL;
    }
    memset(out, 0, sizeof *out);
    if (!in && len) {
        return GN_EINVAL;
    }
    if (len > GNI_AUTONAT_MAX_MSG_LEN) {
        return GN_ETOOBIG;
    }
    gni_pb_alloc pa;
    gni_pb_alloc_init(&pa);
    static const uint8_t empty[1] = {0};
    Gnpb__Autonat__Message *pb = gnpb__autonat__message__unpack(&pa.a, len, len ? in : empty);
    if (!pb) {
        return pa.oom ? GN_ENOMEM : GN_EBADFRAME;
    }
    int rc = GN_EPROTO;
    if (pb->has_type && pb->type == GNPB__AUTONAT__MESSAGE__MESSAGE_TYPE__DIAL) {
        out->type = GNI_AUTONAT_DIAL;
        rc = take_dial(out, pb);
    } else if (pb->has_type && pb->type == GNPB__AUTONAT__MESSAGE__MESSAGE_TYPE__DIAL_RESPONSE) {
        out->type = GNI_AUTONAT_DIAL_RESPONSE;
        rc = take_response(out, pb);
    }
    gnpb__autonat__message__free_unpacked(pb, &pa.a);
    if (rc < 0) {
        gni_autonat_msg_fini(out);
    }
    return rc;
}

/* Packs @m with its length prefix into @out. */
static int pack_frame(const Gnpb__Autonat__Message *m, uint8_t *out, size_t cap, size_t *out_len)
{
    size_t body = gnpb__autonat__message__get_packed_size(m);
    uint8_t pre[10];
    size_t pl = gni_lp_prefix(pre, body);
    if (body > GNI_AUTONAT_MAX_MSG_LEN) {
        return GN_EINVAL; /* our own peer would refuse it */
    }
    if (cap < pl + body) {
        return GN_ENOSPC;
    }
    memcpy(out, pre, pl);
    size_t packed = gnpb__autonat__message__pack(m, out + pl);
    if (packed != body) {
        return GN_EINVAL; /* cannot happen: the size was just computed */
    }
    *out_len = pl + body;
    return 0;
}

int gni_autonat_encode_dial(const gn_peer_id *peer, const gn_multiaddr *const *addrs, size_t n,
                            uint8_t *out, size_t cap, size_t *out_len)
{
    if (!peer || !out || !out_len || (n && !addrs) || n > GNI_AUTONAT_MAX_ADDRS ||
        peer->len == 0 || peer->len > sizeof peer->bytes) {
        return GN_EINVAL;
    }
    ProtobufCBinaryData bins[GNI_AUTONAT_MAX_ADDRS];
    for (size_t i = 0; i < n; i++) {
        if (!addrs[i]) {
            return GN_EINVAL;
        }
        gn_slice s = gn_multiaddr_bytes(addrs[i]);
        bins[i].data = (uint8_t *)s.base;
        bins[i].len = s.len;
    }
    Gnpb__Autonat__Message__PeerInfo pi = GNPB__AUTONAT__MESSAGE__PEER_INFO__INIT;
    pi.has_id = 1;
    pi.id.data = (uint8_t *)peer->bytes;
    pi.id.len = peer->len;
    pi.n_addrs = n;
    pi.addrs = n ? bins : NULL;
    Gnpb__Autonat__Message__Dial d = GNPB__AUTONAT__MESSAGE__DIAL__INIT;
    d.peer = &pi;
    Gnpb__Autonat__Message m = GNPB__AUTONAT__MESSAGE__INIT;
    m.has_type = 1;
    m.type = GNPB__AUTONAT__MESSAGE__MESSAGE_TYPE__DIAL;
    m.dial = &d;
    return pack_frame(&m, out, cap, out_len);
}

int gni_autonat_encode_response(gni_autonat_status status, const char *text,
                                const gn_multiaddr *addr, uint8_t *out, size_t cap,
                                size_t *out_len)
{
    if (!out || !out_len || !status_known((int)status)) {
        return GN_EINVAL;
    }
    char buf[GNI_AUTONAT_MAX_TEXT + 1];
    Gnpb__Autonat__Message__DialResponse r = GNPB__AUTONAT__MESSAGE__DIAL_RESPONSE__INIT;
    r.has_status = 1;
    r.status = (Gnpb__Autonat__Message__ResponseStatus)status;
    if (text && text[0]) {
        size_t l = strnlen(text, GNI_AUTONAT_MAX_TEXT);
        memcpy(buf, text, l);
        buf[l] = '\0';
        r.statustext = buf;
    }
    if (addr) {
        gn_slice s = gn_multiaddr_bytes(addr);
        r.has_addr = 1;
        r.addr.data = (uint8_t *)s.base;
        r.addr.len = s.len;
    }
    Gnpb__Autonat__Message m = GNPB__AUTONAT__MESSAGE__INIT;
    m.has_type = 1;
    m.type = GNPB__AUTONAT__MESSAGE__MESSAGE_TYPE__DIAL_RESPONSE;
    m.dialresponse = &r;
    return pack_frame(&m, out, cap, out_len);
}
