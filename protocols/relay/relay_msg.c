/*
 * golemnet - circuit relay v2 wire core: HopMessage/StopMessage in their
 * owned C form, length-prefixed encoding, and reservation vouchers (signed
 * envelopes). See relay_msg.h and docs/relay.md.
 */
#include "relay_msg.h"
#include "gni_envelope.h"
#include "gni_pb.h"

#include "circuit.pb-c.h"
#include "golemnet/err.h"
#include "golemnet/log.h"
#include "golemnet/multiformats.h"

#include <string.h>

const uint8_t gni_relay_voucher_type[GNI_RELAY_VOUCHER_TYPE_LEN] = {0x03, 0x02};

/* ---- decode ---- */

static void addrs_free(gn_multiaddr **a, size_t *n)
{
    for (size_t i = 0; i < *n; i++) {
        gn_multiaddr_free(a[i]);
        a[i] = NULL;
    }
    *n = 0;
}

void gni_relay_msg_clear(gni_relay_msg *m)
{
    if (!m) {
        return;
    }
    addrs_free(m->peer_addrs, &m->npeer_addrs);
    addrs_free(m->rsv_addrs, &m->nrsv_addrs);
    gn_free(m->voucher);
    memset(m, 0, sizeof *m);
}

/*
 * Keeps the addresses of @src (@n items) that parse, at most
 * GNI_RELAY_MAX_ADDRS. Returns 0 or GN_ENOMEM.
 */
static int addrs_take(const ProtobufCBinaryData *src, size_t n, gn_multiaddr **dst, size_t *cnt)
{
    for (size_t i = 0; i < n && *cnt < GNI_RELAY_MAX_ADDRS; i++) {
        gn_multiaddr *ma = NULL;
        int rc = gn_multiaddr_from_bytes(src[i].data, src[i].len, &ma);
        if (rc == GN_ENOMEM) {
            return rc;
        }
        if (rc < 0) {
            continue; /* the spec's "ignore": an address we cannot use */
        }
        dst[(*cnt)++] = ma;
    }
    return 0;
}

static int peer_take(const Gnpb__Circuit__Peer *p, gni_relay_msg *out)
{
    if (!p->has_id || gn_peer_id_from_bytes(p->id.data, p->id.len, &out->peer) < 0) {
        return GN_EPROTO;
    }
    out->has_peer = true;
    return addrs_take(p->addrs, p->n_addrs, out->peer_addrs, &out->npeer_addrs);
}

static void limit_take(const Gnpb__Circuit__Limit *l, gni_relay_msg *out)
{
    out->has_limit = true;
    out->limit_duration = l->has_duration ? l->duration : 0;
    out->limit_data = l->has_data ? l->data : 0;
}

static int hop_take(const Gnpb__Circuit__HopMessage *h, gni_relay_msg *out)
{
    if (!h->has_type || (int)h->type < GNI_RELAY_HOP_RESERVE || (int)h->type > GNI_RELAY_HOP_STATUS) {
        return GN_EPROTO;
    }
    out->type = (int)h->type;
    int rc;
    if (h->peer && (rc = peer_take(h->peer, out)) < 0) {
        return rc;
    }
    if (h->reservation) {
        const Gnpb__Circuit__Reservation *r = h->reservation;
        out->has_reservation = true;
        out->rsv_expire = r->has_expire ? r->expire : 0;
        if ((rc = addrs_take(r->addrs, r->n_addrs, out->rsv_addrs, &out->nrsv_addrs)) < 0) {
            return rc;
        }
        if (r->has_voucher && r->voucher.len > 0) {
            out->voucher = gn_malloc(r->voucher.len);
            if (!out->voucher) {
                return GN_ENOMEM;
            }
            memcpy(out->voucher, r->voucher.data, r->voucher.len);
            out->voucher_len = r->voucher.len;
        }
    }
    if (h->limit) {
        limit_take(h->limit, out);
    }
    out->status = h->has_status ? (int)h->status : 0;
    return 0;
}

static int stop_take(const Gnpb__Circuit__StopMessage *s, gni_relay_msg *out)
{
    if (!s->has_type || (int)s->type < GNI_RELAY_STOP_CONNECT || (int)s->type > GNI_RELAY_STOP_STATUS) {
        return GN_EPROTO;
    }
    out->type = (int)s->type;
    int rc;
    if (s->peer && (rc = peer_take(s->peer, out)) < 0) {
        return rc;
    }
    if (s->limit) {
        limit_take(s->limit, out);
    }
    out->status = s->has_status ? (int)s->status : 0;
    return 0;
}

int gni_relay_msg_decode(bool stop, const uint8_t *in, size_t len, gni_relay_msg *out)
{
    static const uint8_t empty[1];
    if (!out || (len && !in)) {
        return GN_EINVAL;
    }
    memset(out, 0, sizeof *out);
    out->stop = stop;
    if (len > GNI_RELAY_MSG_MAX) {
        return GN_EPROTO;
    }
    gni_pb_alloc pa;
    gni_pb_alloc_init(&pa);
    int rc;
    /* A body of at most 4096 bytes bounds what protobuf-c allocates: every
     * repeated element costs at least two wire bytes. */
    if (stop) {
        Gnpb__Circuit__StopMessage *s =
            gnpb__circuit__stop_message__unpack(&pa.a, len, len ? in : empty);
        if (!s) {
            return pa.oom ? GN_ENOMEM : GN_EPROTO;
        }
        rc = stop_take(s, out);
        gnpb__circuit__stop_message__free_unpacked(s, &pa.a);
    } else {
        Gnpb__Circuit__HopMessage *h =
            gnpb__circuit__hop_message__unpack(&pa.a, len, len ? in : empty);
        if (!h) {
            return pa.oom ? GN_ENOMEM : GN_EPROTO;
        }
        rc = hop_take(h, out);
        gnpb__circuit__hop_message__free_unpacked(h, &pa.a);
    }
    if (rc < 0) {
        gni_relay_msg_clear(out);
    }
    return rc;
}

/* ---- encode ---- */

/* Protobuf-c views of one message; point into the gni_relay_msg. */
typedef struct pb_view {
    Gnpb__Circuit__HopMessage hop;
    Gnpb__Circuit__StopMessage stopm;
    Gnpb__Circuit__Peer peer;
    Gnpb__Circuit__Reservation rsv;
    Gnpb__Circuit__Limit limit;
    ProtobufCBinaryData peer_addrs[GNI_RELAY_MAX_ADDRS];
    ProtobufCBinaryData rsv_addrs[GNI_RELAY_MAX_ADDRS];
} pb_view;

static int addrs_view(gn_multiaddr *const *src, size_t n, ProtobufCBinaryData *dst)
{
    if (n > GNI_RELAY_MAX_ADDRS) {
        return GN_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!src[i]) {
            return GN_EINVAL;
        }
        gn_slice s = gn_multiaddr_bytes(src[i]);
        dst[i].data = (uint8_t *)s.base;
        dst[i].len = s.len;
    }
    return 0;
}

static int view_build(const gni_relay_msg *m, pb_view *v)
{
    gnpb__circuit__peer__init(&v->peer);
    gnpb__circuit__reservation__init(&v->rsv);
    gnpb__circuit__limit__init(&v->limit);
    if (m->has_peer) {
        if (m->peer.len == 0 || m->peer.len > GN_PEER_ID_MAX_BYTES) {
            return GN_EINVAL;
        }
        v->peer.has_id = true;
        v->peer.id.data = (uint8_t *)m->peer.bytes;
        v->peer.id.len = m->peer.len;
        if (addrs_view(m->peer_addrs, m->npeer_addrs, v->peer_addrs) < 0) {
            return GN_EINVAL;
        }
        v->peer.n_addrs = m->npeer_addrs;
        v->peer.addrs = v->peer_addrs;
    }
    if (m->has_limit) {
        /* zero means "no limit"; written only when set, as go and js do */
        v->limit.has_duration = m->limit_duration != 0;
        v->limit.duration = m->limit_duration;
        v->limit.has_data = m->limit_data != 0;
        v->limit.data = m->limit_data;
    }
    if (m->stop) {
        if (m->type < GNI_RELAY_STOP_CONNECT || m->type > GNI_RELAY_STOP_STATUS ||
            m->has_reservation) {
            return GN_EINVAL;
        }
        gnpb__circuit__stop_message__init(&v->stopm);
        v->stopm.has_type = true;
        v->stopm.type = (Gnpb__Circuit__StopMessage__Type)m->type;
        v->stopm.peer = m->has_peer ? &v->peer : NULL;
        v->stopm.limit = m->has_limit ? &v->limit : NULL;
        v->stopm.has_status = m->status != 0;
        v->stopm.status = (Gnpb__Circuit__Status)m->status;
        return 0;
    }
    if (m->type < GNI_RELAY_HOP_RESERVE || m->type > GNI_RELAY_HOP_STATUS) {
        return GN_EINVAL;
    }
    if (m->has_reservation) {
        v->rsv.has_expire = true;
        v->rsv.expire = m->rsv_expire;
        if (addrs_view(m->rsv_addrs, m->nrsv_addrs, v->rsv_addrs) < 0) {
            return GN_EINVAL;
        }
        v->rsv.n_addrs = m->nrsv_addrs;
        v->rsv.addrs = v->rsv_addrs;
        if (m->voucher && m->voucher_len) {
            v->rsv.has_voucher = true;
            v->rsv.voucher.data = m->voucher;
            v->rsv.voucher.len = m->voucher_len;
        }
    }
    gnpb__circuit__hop_message__init(&v->hop);
    v->hop.has_type = true;
    v->hop.type = (Gnpb__Circuit__HopMessage__Type)m->type;
    v->hop.peer = m->has_peer ? &v->peer : NULL;
    v->hop.reservation = m->has_reservation ? &v->rsv : NULL;
    v->hop.limit = m->has_limit ? &v->limit : NULL;
    v->hop.has_status = m->status != 0;
    v->hop.status = (Gnpb__Circuit__Status)m->status;
    return 0;
}

int gni_relay_msg_encode(const gni_relay_msg *m, uint8_t **out, size_t *out_len)
{
    if (!m || !out || !out_len) {
        return GN_EINVAL;
    }
    pb_view v;
    int rc = view_build(m, &v);
    if (rc < 0) {
        return rc;
    }
    const ProtobufCMessage *pm = m->stop ? &v.stopm.base : &v.hop.base;
    size_t body = protobuf_c_message_get_packed_size(pm);
    if (body > GNI_RELAY_MSG_MAX) {
        return GN_ETOOBIG;
    }
    size_t hl = gn_varint_len(body);
    uint8_t *buf = gn_malloc(hl + body);
    if (!buf) {
        return GN_ENOMEM;
    }
    (void)gn_varint_encode(body, buf, hl);
    if (protobuf_c_message_pack(pm, buf + hl) != body) {
        gn_free(buf);
        return GN_EINTERNAL;
    }
    *out = buf;
    *out_len = hl + body;
    return 0;
}

/* ---- status ---- */

const char *gni_relay_status_name(int status)
{
    switch (status) {
    case GNI_RELAY_OK:
        return "OK";
    case GNI_RELAY_RESERVATION_REFUSED:
        return "RESERVATION_REFUSED";
    case GNI_RELAY_RESOURCE_LIMIT_EXCEEDED:
        return "RESOURCE_LIMIT_EXCEEDED";
    case GNI_RELAY_PERMISSION_DENIED:
        return "PERMISSION_DENIED";
    case GNI_RELAY_CONNECTION_FAILED:
        return "CONNECTION_FAILED";
    case GNI_RELAY_NO_RESERVATION:
        return "NO_RESERVATION";
    case GNI_RELAY_MALFORMED_MESSAGE:
        return "MALFORMED_MESSAGE";
    case GNI_RELAY_UNEXPECTED_MESSAGE:
        return "UNEXPECTED_MESSAGE";
    default:
        return "UNKNOWN";
    }
}

int gni_relay_status_err(int status)
{
    switch (status) {
    case GNI_RELAY_OK:
        return 0;
    case GNI_RELAY_RESERVATION_REFUSED:
        return GN_ECONNREFUSED;
    case GNI_RELAY_RESOURCE_LIMIT_EXCEEDED:
        return GN_ELIMIT;
    case GNI_RELAY_PERMISSION_DENIED:
        return GN_EACCES;
    case GNI_RELAY_CONNECTION_FAILED:
        return GN_EUNREACHABLE;
    case GNI_RELAY_NO_RESERVATION:
        return GN_ENOROUTE;
    default:
        return GN_EPROTO;
    }
}

/* ---- vouchers (signed envelopes: core/envelope.c) ---- */

int gni_relay_voucher_make(const gn_identity *relay, const gn_peer_id *peer, uint64_t expire,
                           uint8_t **out, size_t *out_len)
{
    if (!relay || !peer || !out || !out_len || peer->len == 0 ||
        peer->len > GN_PEER_ID_MAX_BYTES) {
        return GN_EINVAL;
    }
    gn_peer_id self;
    gn_identity_peer_id(relay, &self);
    Gnpb__Circuit__Voucher v;
    gnpb__circuit__voucher__init(&v);
    v.has_relay = true;
    v.relay.data = self.bytes;
    v.relay.len = self.len;
    v.has_peer = true;
    v.peer.data = (uint8_t *)peer->bytes;
    v.peer.len = peer->len;
    v.has_expiration = true;
    v.expiration = expire;
    /* two peer IDs of at most 64 bytes and a varint: well under 256 */
    uint8_t payload[256];
    size_t pl = gnpb__circuit__voucher__get_packed_size(&v);
    if (pl > sizeof payload) {
        return GN_EINTERNAL;
    }
    (void)gnpb__circuit__voucher__pack(&v, payload);
    return gni_envelope_seal(relay, GNI_RELAY_VOUCHER_DOMAIN, gni_relay_voucher_type,
                             GNI_RELAY_VOUCHER_TYPE_LEN, payload, pl, out, out_len);
}

int gni_relay_voucher_open(const uint8_t *env, size_t len, const gn_peer_id *relay,
                           gn_peer_id *peer, uint64_t *expire)
{
    if (!env || !relay) {
        return GN_EINVAL;
    }
    if (len == 0 || len > GNI_RELAY_VOUCHER_MAX) {
        return GN_EPROTO;
    }
    gni_envelope e;
    int rc = gni_envelope_open(env, len, GNI_RELAY_VOUCHER_DOMAIN, gni_relay_voucher_type,
                               GNI_RELAY_VOUCHER_TYPE_LEN, &e);
    if (rc < 0) {
        return rc;
    }
    if (!gn_peer_id_equal(&e.signer, relay)) {
        gni_envelope_clear(&e);
        return GN_EPEERID;
    }
    gni_pb_alloc pa;
    gni_pb_alloc_init(&pa);
    Gnpb__Circuit__Voucher *v =
        gnpb__circuit__voucher__unpack(&pa.a, e.payload_len, e.payload);
    if (!v) {
        rc = pa.oom ? GN_ENOMEM : GN_EPROTO;
    }
    gn_peer_id vr, vp;
    if (rc == 0 && (!v->has_relay || !v->has_peer || !v->has_expiration ||
                    gn_peer_id_from_bytes(v->relay.data, v->relay.len, &vr) < 0 ||
                    gn_peer_id_from_bytes(v->peer.data, v->peer.len, &vp) < 0)) {
        rc = GN_EPROTO;
    }
    if (rc == 0 && !gn_peer_id_equal(&vr, relay)) {
        rc = GN_EPEERID;
    }
    if (rc == 0) {
        if (peer) {
            *peer = vp;
        }
        if (expire) {
            *expire = v->expiration;
        }
    }
    if (v) {
        gnpb__circuit__voucher__free_unpacked(v, &pa.a);
    }
    gni_envelope_clear(&e);
    return rc;
}
