/*
 * The libp2p daemon control protocol: request decoding with bounds and
 * response building (p2pd.h). Sans-I/O: no syscalls, no libuv, no clock.
 * Spec: go-libp2p-daemon specs/CONTROL.md, specs/DHT.md; the messages are
 * p2pd.proto's (wire-compatible with go's pb/p2pd.proto and js's
 * @libp2p/daemon-protocol).
 */
#include "p2pd.h"

#include "gni.h"
#include "gni_pb.h"
#include "p2pd.pb-c.h"

#include "golemnet/err.h"
#include "golemnet/log.h"
#include "golemnet/multiformats.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------ errors */

static int p2pd_fail(char *err, size_t err_len, int rc, const char *fmt, ...) GN_PRINTF(4, 5);
static int p2pd_fail(char *err, size_t err_len, int rc, const char *fmt, ...)
{
    if (err && err_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
    }
    return rc;
}

const char *gni_p2pd_op_name(int op)
{
    static const char *const names[] = {"IDENTIFY",   "CONNECT",     "STREAM_OPEN",
                                        "STREAM_HANDLER", "DHT",     "LIST_PEERS",
                                        "CONNMANAGER", "DISCONNECT", "PUBSUB",
                                        "PEERSTORE"};
    if (op < 0 || (size_t)op >= sizeof names / sizeof names[0]) {
        return "UNKNOWN";
    }
    return names[op];
}

/* ------------------------------------------------------------ field checks */

static int p2pd_peer(const ProtobufCBinaryData *b, bool has, const char *what, gn_peer_id *out,
                     char *err, size_t err_len)
{
    if (!has || b->len == 0) {
        return p2pd_fail(err, err_len, GN_EINVAL, "malformed request: missing %s", what);
    }
    if (b->len > GN_PEER_ID_MAX_BYTES) {
        return p2pd_fail(err, err_len, GN_EINVAL, "malformed request: %s is %zu bytes, not a peer ID",
                         what, b->len);
    }
    if (gn_peer_id_from_bytes(b->data, b->len, out) < 0) {
        return p2pd_fail(err, err_len, GN_EINVAL,
                         "malformed request: %s is not a peer ID (binary multihash)", what);
    }
    return 0;
}

static int p2pd_multiaddr(const ProtobufCBinaryData *b, const char *what, size_t idx,
                          gn_multiaddr **out, char *err, size_t err_len)
{
    if (b->len == 0) {
        return p2pd_fail(err, err_len, GN_EINVAL, "malformed request: %s %zu is empty", what, idx);
    }
    if (b->len > GN_MA_MAX_BYTES) {
        return p2pd_fail(err, err_len, GN_ETOOBIG, "%s %zu is %zu bytes (at most %d)", what, idx,
                         b->len, GN_MA_MAX_BYTES);
    }
    int rc = gn_multiaddr_from_bytes(b->data, b->len, out);
    if (rc == GN_ENOMEM) {
        return p2pd_fail(err, err_len, rc, "out of memory");
    }
    if (rc < 0) {
        return p2pd_fail(err, err_len, GN_EINVAL, "malformed request: %s %zu is not a multiaddr (%s)",
                         what, idx, gn_strerror(rc));
    }
    return 0;
}

/* A protocol id: 1..GN_PROTOCOL_ID_MAX-1 bytes, no control characters. */
static int p2pd_protos(char *const *in, size_t n, bool need_one, gni_p2pd_req *out, char *err,
                       size_t err_len)
{
    if (n == 0 && need_one) {
        return p2pd_fail(err, err_len, GN_EINVAL, "malformed request: no protocol given");
    }
    if (n > GNI_P2PD_PROTOS_MAX) {
        return p2pd_fail(err, err_len, GN_ETOOBIG, "%zu protocols given (at most %u)", n,
                         GNI_P2PD_PROTOS_MAX);
    }
    for (size_t i = 0; i < n; i++) {
        const char *p = in[i] ? in[i] : "";
        size_t len = strlen(p);
        if (len == 0 || len >= GN_PROTOCOL_ID_MAX) {
            return p2pd_fail(err, err_len, len ? GN_ETOOBIG : GN_EINVAL,
                             "protocol %zu is %zu bytes (1 to %d)", i, len, GN_PROTOCOL_ID_MAX - 1);
        }
        for (size_t k = 0; k < len; k++) {
            unsigned char c = (unsigned char)p[k];
            if (c < 0x20 || c == 0x7f) {
                return p2pd_fail(err, err_len, GN_EINVAL,
                                 "malformed request: protocol %zu has a control character", i);
            }
        }
        memcpy(out->protos[i], p, len + 1);
    }
    out->nprotos = n;
    return 0;
}

static void p2pd_timeout(bool has, int64_t t, gni_p2pd_req *out)
{
    out->timeout_s = GNI_P2PD_TIMEOUT_DEFAULT_S;
    if (has && t > 0) {
        out->timeout_s = t > GNI_P2PD_TIMEOUT_MAX_S ? GNI_P2PD_TIMEOUT_MAX_S : t;
    }
}

static int p2pd_key(const ProtobufCBinaryData *b, bool has, gni_p2pd_req *out, char *err,
                    size_t err_len)
{
    if (!has || b->len == 0) {
        return p2pd_fail(err, err_len, GN_EINVAL, "malformed request: missing key");
    }
    if (b->len > GNI_P2PD_KEY_MAX) {
        return p2pd_fail(err, err_len, GN_ETOOBIG, "key is %zu bytes (at most %u)", b->len,
                         GNI_P2PD_KEY_MAX);
    }
    memcpy(out->key, b->data, b->len);
    out->key_len = b->len;
    return 0;
}

/* Length of the multihash at the start of @p (code, length, digest), or -1. */
static long p2pd_multihash_len(const uint8_t *p, size_t len)
{
    uint64_t code = 0, dlen = 0;
    int a = gn_varint_decode(p, len, &code);
    if (a <= 0) {
        return -1;
    }
    int b = gn_varint_decode(p + a, len - (size_t)a, &dlen);
    if (b <= 0 || dlen > len - (size_t)a - (size_t)b) {
        return -1;
    }
    return (long)((size_t)a + (size_t)b + dlen);
}

int gni_p2pd_cid_multihash(const uint8_t *cid, size_t len, uint8_t *mh, size_t cap)
{
    if (!cid || len == 0) {
        return GN_EINVAL;
    }
    size_t off = 0;
    /* CIDv0: exactly a sha2-256 multihash (0x12 0x20 + 32 bytes). */
    if (len == 34 && cid[0] == 0x12 && cid[1] == 0x20) {
        off = 0;
    } else {
        uint64_t version = 0, codec = 0;
        int a = gn_varint_decode(cid, len, &version);
        if (a <= 0 || version != 1) {
            return GN_EINVAL;
        }
        int b = gn_varint_decode(cid + a, len - (size_t)a, &codec);
        if (b <= 0) {
            return GN_EINVAL;
        }
        off = (size_t)a + (size_t)b;
    }
    long mhl = p2pd_multihash_len(cid + off, len - off);
    if (mhl < 0 || (size_t)mhl != len - off) {
        return GN_EINVAL;
    }
    if ((size_t)mhl > cap) {
        return GN_ENOSPC;
    }
    memcpy(mh, cid + off, (size_t)mhl);
    return (int)mhl;
}

int gni_p2pd_peer_pubkey(const gn_peer_id *id, gn_slice *out)
{
    /* identity multihash: 0x00, varint length, the PublicKey protobuf */
    if (!id || id->len < 3 || id->bytes[0] != 0x00) {
        return GN_ENOTFOUND;
    }
    uint64_t dlen = 0;
    int a = gn_varint_decode(id->bytes + 1, (size_t)id->len - 1, &dlen);
    if (a <= 0 || dlen != (size_t)id->len - 1 - (size_t)a || dlen == 0) {
        return GN_ENOTFOUND;
    }
    *out = gn_slice_of(id->bytes + 1 + a, (size_t)dlen);
    return 0;
}

/* ------------------------------------------------------------ requests */

static int p2pd_decode_dht(const Gnp2pd__DHTRequest *d, gni_p2pd_req *out, char *err,
                           size_t err_len)
{
    if (!d) {
        return p2pd_fail(err, err_len, GN_EINVAL, "malformed request: DHT request without dht");
    }
    if (!d->has_type) {
        return p2pd_fail(err, err_len, GN_EINVAL, "malformed request: DHT request without type");
    }
    out->sub = (int)d->type;
    p2pd_timeout(d->has_timeout, d->timeout, out);
    int rc;
    switch (out->sub) {
    case GNI_P2PD_DHT_FIND_PEER:
    case GNI_P2PD_DHT_GET_PUBLIC_KEY:
        return p2pd_peer(&d->peer, d->has_peer, "peer", &out->peer, err, err_len);
    case GNI_P2PD_DHT_FIND_PEERS_CONNECTED_TO_PEER:
        return p2pd_fail(err, err_len, GN_ENOTSUP,
                         "FIND_PEERS_CONNECTED_TO_PEER is not supported (removed from the spec)");
    case GNI_P2PD_DHT_FIND_PROVIDERS:
    case GNI_P2PD_DHT_PROVIDE: {
        if (!d->has_cid || d->cid.len == 0) {
            return p2pd_fail(err, err_len, GN_EINVAL, "malformed request: missing cid");
        }
        if (d->cid.len > GNI_P2PD_KEY_MAX) {
            return p2pd_fail(err, err_len, GN_ETOOBIG, "cid is %zu bytes (at most %u)", d->cid.len,
                             GNI_P2PD_KEY_MAX);
        }
        rc = gni_p2pd_cid_multihash(d->cid.data, d->cid.len, out->key, sizeof out->key);
        if (rc < 0) {
            return p2pd_fail(err, err_len, GN_EINVAL,
                             "malformed request: cid is not a binary CID (v0 or v1)");
        }
        out->key_len = (size_t)rc;
        out->count = GNI_P2PD_PROVIDERS_DEFAULT;
        if (out->sub == GNI_P2PD_DHT_FIND_PROVIDERS && d->has_count && d->count > 0) {
            if ((uint32_t)d->count > GNI_P2PD_PROVIDERS_MAX) {
                return p2pd_fail(err, err_len, GN_ETOOBIG, "count %d (at most %u)", (int)d->count,
                                 GNI_P2PD_PROVIDERS_MAX);
            }
            out->count = (uint32_t)d->count;
        }
        return 0;
    }
    case GNI_P2PD_DHT_GET_CLOSEST_PEERS:
    case GNI_P2PD_DHT_GET_VALUE:
    case GNI_P2PD_DHT_SEARCH_VALUE:
        return p2pd_key(&d->key, d->has_key, out, err, err_len);
    case GNI_P2PD_DHT_PUT_VALUE:
        if ((rc = p2pd_key(&d->key, d->has_key, out, err, err_len)) < 0) {
            return rc;
        }
        if (!d->has_value) {
            return p2pd_fail(err, err_len, GN_EINVAL, "malformed request: missing value");
        }
        if (d->value.len > GNI_P2PD_VALUE_MAX) {
            return p2pd_fail(err, err_len, GN_ETOOBIG, "value is %zu bytes (at most %u)",
                             d->value.len, GNI_P2PD_VALUE_MAX);
        }
        out->value = gn_malloc(d->value.len ? d->value.len : 1);
        if (!out->value) {
            return p2pd_fail(err, err_len, GN_ENOMEM, "out of memory");
        }
        if (d->value.len) {
            memcpy(out->value, d->value.data, d->value.len);
        }
        out->value_len = d->value.len;
        return 0;
    default:
        return p2pd_fail(err, err_len, GN_ENOTSUP, "unknown DHT request type %d", out->sub);
    }
}

static int p2pd_decode_op(const Gnp2pd__Request *rq, gni_p2pd_req *out, char *err,
                          size_t err_len)
{
    int rc;
    switch (out->op) {
    case GNI_P2PD_IDENTIFY:
    case GNI_P2PD_LIST_PEERS:
        return 0;
    case GNI_P2PD_CONNECT: {
        const Gnp2pd__ConnectRequest *c = rq->connect;
        if (!c) {
            return p2pd_fail(err, err_len, GN_EINVAL, "malformed request: CONNECT without connect");
        }
        if ((rc = p2pd_peer(&c->peer, c->has_peer, "peer", &out->peer, err, err_len)) < 0) {
            return rc;
        }
        if (c->n_addrs > GNI_P2PD_ADDRS_MAX) {
            return p2pd_fail(err, err_len, GN_ETOOBIG, "%zu addresses given (at most %u)",
                             c->n_addrs, GNI_P2PD_ADDRS_MAX);
        }
        for (size_t i = 0; i < c->n_addrs; i++) {
            if ((rc = p2pd_multiaddr(&c->addrs[i], "address", i, &out->addrs[i], err, err_len)) <
                0) {
                return rc;
            }
            out->naddrs = i + 1;
        }
        p2pd_timeout(c->has_timeout, c->timeout, out);
        return 0;
    }
    case GNI_P2PD_STREAM_OPEN: {
        const Gnp2pd__StreamOpenRequest *s = rq->streamopen;
        if (!s) {
            return p2pd_fail(err, err_len, GN_EINVAL,
                             "malformed request: STREAM_OPEN without streamOpen");
        }
        if ((rc = p2pd_peer(&s->peer, s->has_peer, "peer", &out->peer, err, err_len)) < 0) {
            return rc;
        }
        p2pd_timeout(s->has_timeout, s->timeout, out);
        return p2pd_protos(s->proto, s->n_proto, true, out, err, err_len);
    }
    case GNI_P2PD_STREAM_HANDLER: {
        const Gnp2pd__StreamHandlerRequest *h = rq->streamhandler;
        if (!h) {
            return p2pd_fail(err, err_len, GN_EINVAL,
                             "malformed request: STREAM_HANDLER without streamHandler");
        }
        if (!h->has_addr) {
            return p2pd_fail(err, err_len, GN_EINVAL, "malformed request: missing handler addr");
        }
        if ((rc = p2pd_multiaddr(&h->addr, "handler address", 0, &out->handler_addr, err,
                                 err_len)) < 0) {
            return rc;
        }
        return p2pd_protos(h->proto, h->n_proto, true, out, err, err_len);
    }
    case GNI_P2PD_DHT:
        return p2pd_decode_dht(rq->dht, out, err, err_len);
    case GNI_P2PD_DISCONNECT: {
        const Gnp2pd__DisconnectRequest *d = rq->disconnect;
        if (!d) {
            return p2pd_fail(err, err_len, GN_EINVAL,
                             "malformed request: DISCONNECT without disconnect");
        }
        return p2pd_peer(&d->peer, d->has_peer, "peer", &out->peer, err, err_len);
    }
    case GNI_P2PD_CONNMANAGER: {
        const Gnp2pd__ConnManagerRequest *c = rq->connmanager;
        if (!c || !c->has_type) {
            return p2pd_fail(err, err_len, GN_EINVAL,
                             "malformed request: CONNMANAGER without connManager type");
        }
        out->sub = (int)c->type;
        if (out->sub == GNI_P2PD_CM_TRIM) {
            return 0;
        }
        if (out->sub != GNI_P2PD_CM_TAG_PEER && out->sub != GNI_P2PD_CM_UNTAG_PEER) {
            return p2pd_fail(err, err_len, GN_ENOTSUP, "unknown CONNMANAGER request type %d",
                             out->sub);
        }
        if ((rc = p2pd_peer(&c->peer, c->has_peer, "peer", &out->peer, err, err_len)) < 0) {
            return rc;
        }
        size_t tl = c->tag ? strlen(c->tag) : 0;
        if (tl == 0) {
            return p2pd_fail(err, err_len, GN_EINVAL, "malformed request: missing tag");
        }
        if (tl > GNI_P2PD_TAG_MAX) {
            return p2pd_fail(err, err_len, GN_ETOOBIG, "tag is %zu bytes (at most %u)", tl,
                             GNI_P2PD_TAG_MAX);
        }
        memcpy(out->tag, c->tag, tl + 1);
        if (out->sub == GNI_P2PD_CM_TAG_PEER) {
            if (!c->has_weight) {
                return p2pd_fail(err, err_len, GN_EINVAL, "malformed request: missing weight");
            }
            out->weight = c->weight;
        }
        return 0;
    }
    case GNI_P2PD_PUBSUB:
        out->sub = rq->pubsub && rq->pubsub->has_type ? (int)rq->pubsub->type : -1;
        return 0;
    case GNI_P2PD_PEERSTORE: {
        const Gnp2pd__PeerstoreRequest *p = rq->peerstore;
        if (!p || !p->has_type) {
            return p2pd_fail(err, err_len, GN_EINVAL,
                             "malformed request: PEERSTORE without peerStore type");
        }
        out->sub = (int)p->type;
        if (out->sub != GNI_P2PD_PS_GET_PROTOCOLS && out->sub != GNI_P2PD_PS_GET_PEER_INFO) {
            return p2pd_fail(err, err_len, GN_ENOTSUP, "unknown PEERSTORE request type %d",
                             out->sub);
        }
        if ((rc = p2pd_peer(&p->id, p->has_id, "id", &out->peer, err, err_len)) < 0) {
            return rc;
        }
        return p2pd_protos(p->protos, p->n_protos, false, out, err, err_len);
    }
    default:
        return p2pd_fail(err, err_len, GN_ENOTSUP, "unknown request type %d", (int)out->op);
    }
}

int gni_p2pd_req_decode(const uint8_t *msg, size_t len, gni_p2pd_req *out, char *err,
                        size_t err_len)
{
    memset(out, 0, sizeof *out);
    out->timeout_s = GNI_P2PD_TIMEOUT_DEFAULT_S;
    if (err && err_len) {
        err[0] = '\0';
    }
    if (len > GNI_P2PD_REQ_MAX) {
        return p2pd_fail(err, err_len, GN_ETOOBIG, "request is %zu bytes (at most %u)", len,
                         GNI_P2PD_REQ_MAX);
    }
    gni_pb_alloc pa;
    gni_pb_alloc_init(&pa);
    Gnp2pd__Request *rq = gnp2pd__request__unpack(&pa.a, len, msg);
    if (!rq) {
        return pa.oom ? p2pd_fail(err, err_len, GN_ENOMEM, "out of memory")
                      : p2pd_fail(err, err_len, GN_EPARSE,
                                  "malformed request: not a Request protobuf message");
    }
    int rc;
    if (!rq->has_type) {
        rc = p2pd_fail(err, err_len, GN_EINVAL, "malformed request: missing type");
    } else {
        out->op = (gni_p2pd_op)rq->type;
        rc = p2pd_decode_op(rq, out, err, err_len);
    }
    gnp2pd__request__free_unpacked(rq, &pa.a);
    return rc;
}

void gni_p2pd_req_fini(gni_p2pd_req *r)
{
    if (!r) {
        return;
    }
    for (size_t i = 0; i < r->naddrs && i < GNI_P2PD_ADDRS_MAX; i++) {
        gn_multiaddr_free(r->addrs[i]);
        r->addrs[i] = NULL;
    }
    r->naddrs = 0;
    gn_multiaddr_free(r->handler_addr);
    r->handler_addr = NULL;
    gn_free(r->value);
    r->value = NULL;
    r->value_len = 0;
}

/* ------------------------------------------------------------ responses */

static int p2pd_pack(const ProtobufCMessage *m, gni_p2pd_frame *out)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t pre[10];
    size_t pl = gni_lp_prefix(pre, n);
    uint8_t *buf = gn_malloc(pl + n);
    if (!buf) {
        out->data = NULL;
        out->len = 0;
        return GN_ENOMEM;
    }
    memcpy(buf, pre, pl);
    size_t w = protobuf_c_message_pack(m, buf + pl);
    out->data = buf;
    out->len = pl + w;
    return 0;
}

static ProtobufCBinaryData p2pd_bin(const void *p, size_t len)
{
    ProtobufCBinaryData b;
    b.data = (uint8_t *)(uintptr_t)p; /* packing only reads it */
    b.len = len;
    return b;
}

static ProtobufCBinaryData p2pd_ma_bin(const gn_multiaddr *ma)
{
    gn_slice s = ma ? gn_multiaddr_bytes(ma) : gn_slice_of(NULL, 0);
    return p2pd_bin(s.base, s.len);
}

/*
 * PeerInfo messages for @n peers in storage the caller frees with one
 * gn_free(*mem): @infos[i] and @ptrs[i] (pointers to them) and the address
 * arrays.
 */
static int p2pd_peer_infos(const gn_router_peer *peers, size_t n, Gnp2pd__PeerInfo **infos_out,
                           Gnp2pd__PeerInfo ***ptrs_out, void **mem)
{
    size_t total_addrs = 0;
    for (size_t i = 0; i < n; i++) {
        if (peers[i].naddrs > SIZE_MAX / 4 - total_addrs) {
            return GN_ENOMEM;
        }
        total_addrs += peers[i].naddrs;
    }
    size_t sz_infos = n * sizeof(Gnp2pd__PeerInfo);
    size_t sz_ptrs = n * sizeof(Gnp2pd__PeerInfo *);
    size_t sz_addrs = total_addrs * sizeof(ProtobufCBinaryData);
    if (n > SIZE_MAX / 4 / (sizeof(Gnp2pd__PeerInfo) + sizeof(void *))) {
        return GN_ENOMEM;
    }
    uint8_t *m = gn_malloc(sz_infos + sz_ptrs + sz_addrs + 1);
    if (!m) {
        return GN_ENOMEM;
    }
    Gnp2pd__PeerInfo *infos = (Gnp2pd__PeerInfo *)(void *)m;
    Gnp2pd__PeerInfo **ptrs = (Gnp2pd__PeerInfo **)(void *)(m + sz_infos);
    ProtobufCBinaryData *addrs = (ProtobufCBinaryData *)(void *)(m + sz_infos + sz_ptrs);
    size_t a = 0;
    for (size_t i = 0; i < n; i++) {
        gnp2pd__peer_info__init(&infos[i]);
        infos[i].has_id = 1;
        infos[i].id = p2pd_bin(peers[i].id.bytes, peers[i].id.len);
        infos[i].n_addrs = peers[i].naddrs;
        infos[i].addrs = peers[i].naddrs ? &addrs[a] : NULL;
        for (size_t k = 0; k < peers[i].naddrs; k++) {
            addrs[a++] = p2pd_ma_bin(peers[i].addrs[k]);
        }
        ptrs[i] = &infos[i];
    }
    *infos_out = infos;
    *ptrs_out = ptrs;
    *mem = m;
    return 0;
}

static void p2pd_resp_init(Gnp2pd__Response *r, bool ok)
{
    gnp2pd__response__init(r);
    r->has_type = 1; /* OK is 0: written anyway (go's field is required) */
    r->type = ok ? GNP2PD__RESPONSE__TYPE__OK : GNP2PD__RESPONSE__TYPE__ERROR;
}

int gni_p2pd_resp_ok(gni_p2pd_frame *out)
{
    Gnp2pd__Response r;
    p2pd_resp_init(&r, true);
    return p2pd_pack(&r.base, out);
}

int gni_p2pd_resp_error(const char *msg, gni_p2pd_frame *out)
{
    char text[GNI_P2PD_ERRMSG_MAX];
    size_t len = msg ? strlen(msg) : 0;
    if (len >= sizeof text) {
        len = sizeof text - 1;
        /* do not cut a UTF-8 sequence: back up over continuation bytes */
        while (len > 0 && ((unsigned char)msg[len] & 0xc0) == 0x80) {
            len--;
        }
    }
    if (len) {
        memcpy(text, msg, len);
    }
    text[len] = '\0';
    if (len == 0) {
        snprintf(text, sizeof text, "error");
    }
    Gnp2pd__ErrorResponse e;
    gnp2pd__error_response__init(&e);
    e.msg = text;
    Gnp2pd__Response r;
    p2pd_resp_init(&r, false);
    r.error = &e;
    return p2pd_pack(&r.base, out);
}

int gni_p2pd_resp_identify(const gn_peer_id *id, const gn_multiaddr *const *addrs, size_t n,
                           gni_p2pd_frame *out)
{
    ProtobufCBinaryData *bins = gn_calloc(n ? n : 1, sizeof *bins);
    if (!bins) {
        return GN_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        bins[i] = p2pd_ma_bin(addrs[i]);
    }
    Gnp2pd__IdentifyResponse ir;
    gnp2pd__identify_response__init(&ir);
    ir.has_id = 1;
    ir.id = p2pd_bin(id->bytes, id->len);
    ir.n_addrs = n;
    ir.addrs = bins;
    Gnp2pd__Response r;
    p2pd_resp_init(&r, true);
    r.identify = &ir;
    int rc = p2pd_pack(&r.base, out);
    gn_free(bins);
    return rc;
}

int gni_p2pd_stream_info(const gn_peer_id *peer, const gn_multiaddr *addr, const char *proto,
                         bool wrap, gni_p2pd_frame *out)
{
    Gnp2pd__StreamInfo si;
    gnp2pd__stream_info__init(&si);
    si.has_peer = 1;
    si.peer = p2pd_bin(peer->bytes, peer->len);
    si.has_addr = 1;
    si.addr = p2pd_ma_bin(addr);
    si.proto = (char *)(uintptr_t)(proto ? proto : "");
    if (!wrap) {
        return p2pd_pack(&si.base, out);
    }
    Gnp2pd__Response r;
    p2pd_resp_init(&r, true);
    r.streaminfo = &si;
    return p2pd_pack(&r.base, out);
}

int gni_p2pd_resp_peers(const gn_router_peer *peers, size_t n, gni_p2pd_frame *out)
{
    Gnp2pd__PeerInfo *infos = NULL;
    Gnp2pd__PeerInfo **ptrs = NULL;
    void *mem = NULL;
    int rc = p2pd_peer_infos(peers, n, &infos, &ptrs, &mem);
    if (rc < 0) {
        return rc;
    }
    Gnp2pd__Response r;
    p2pd_resp_init(&r, true);
    r.n_peers = n;
    r.peers = n ? ptrs : NULL;
    rc = p2pd_pack(&r.base, out);
    gn_free(mem);
    return rc;
}

int gni_p2pd_dht(gni_p2pd_dht_resp type, const gn_router_peer *peer, const gn_slice *value,
                 bool wrap, gni_p2pd_frame *out)
{
    Gnp2pd__PeerInfo *infos = NULL;
    Gnp2pd__PeerInfo **ptrs = NULL;
    void *mem = NULL;
    Gnp2pd__DHTResponse d;
    gnp2pd__dhtresponse__init(&d);
    d.has_type = 1;
    d.type = (Gnp2pd__DHTResponse__Type)type;
    if (peer) {
        int rc = p2pd_peer_infos(peer, 1, &infos, &ptrs, &mem);
        if (rc < 0) {
            return rc;
        }
        d.peer = infos;
    }
    if (value) {
        d.has_value = 1;
        d.value = p2pd_bin(value->base, value->len);
    }
    int rc;
    if (wrap) {
        Gnp2pd__Response r;
        p2pd_resp_init(&r, true);
        r.dht = &d;
        rc = p2pd_pack(&r.base, out);
    } else {
        rc = p2pd_pack(&d.base, out);
    }
    gn_free(mem);
    return rc;
}

int gni_p2pd_resp_peerstore(const gn_router_peer *peer, const char *const *protos, size_t n,
                            gni_p2pd_frame *out)
{
    Gnp2pd__PeerInfo *infos = NULL;
    Gnp2pd__PeerInfo **ptrs = NULL;
    void *mem = NULL;
    Gnp2pd__PeerstoreResponse ps;
    gnp2pd__peerstore_response__init(&ps);
    if (peer) {
        int rc = p2pd_peer_infos(peer, 1, &infos, &ptrs, &mem);
        if (rc < 0) {
            return rc;
        }
        ps.peer = infos;
    }
    ps.n_protos = n;
    ps.protos = n ? (char **)(uintptr_t)protos : NULL;
    Gnp2pd__Response r;
    p2pd_resp_init(&r, true);
    r.peerstore = &ps;
    int rc = p2pd_pack(&r.base, out);
    gn_free(mem);
    return rc;
}
