/*
 * golemnet-p2pd's sans-I/O core (ipc/p2pd/p2pd.c): requests decoded with
 * their bounds, every refusal named, responses built byte for byte as
 * go-libp2p-daemon and @libp2p/daemon-client read them, and allocation
 * failure at every step.
 */
#include "p2pd.h"
#include "p2pd.pb-c.h"

#include "gni.h"
#include "golemnet/err.h"
#include "golemnet/log.h"
#include "golemnet/multiformats.h"

#include "gn_failalloc.h"
#include "gn_test.h"

#include <string.h>

/* ---- helpers ---- */

static gn_peer_id seed_peer(uint32_t seed)
{
    gn_identity *id = NULL;
    gn_peer_id p;
    memset(&p, 0, sizeof p);
    if (gn_identity_from_int_seed(seed, &id) == 0) {
        gn_identity_peer_id(id, &p);
        gn_identity_free(id);
    }
    return p;
}

static gn_multiaddr *ma(const char *s)
{
    gn_multiaddr *m = NULL;
    if (gn_multiaddr_parse(s, &m) < 0) {
        return NULL;
    }
    return m;
}

/* Packs @m (no length prefix) into @buf; returns the length. */
static size_t pack(const ProtobufCMessage *m, uint8_t *buf, size_t cap)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    if (n > cap) {
        return 0;
    }
    return protobuf_c_message_pack(m, buf);
}

static int decode(const ProtobufCMessage *m, gni_p2pd_req *r, char *err, size_t err_len)
{
    static uint8_t buf[1 << 21];
    size_t n = pack(m, buf, sizeof buf);
    return gni_p2pd_req_decode(buf, n, r, err, err_len);
}

/* Splits a frame: checks the prefix matches the body length; returns the body. */
static const uint8_t *frame_body(const gni_p2pd_frame *f, size_t *len)
{
    uint64_t v = 0;
    int pl = gn_varint_decode(f->data, f->len, &v);
    if (pl <= 0 || v != f->len - (size_t)pl) {
        return NULL;
    }
    *len = (size_t)v;
    return f->data + pl;
}

static Gnp2pd__Response *resp_of(const gni_p2pd_frame *f)
{
    size_t len = 0;
    const uint8_t *b = frame_body(f, &len);
    return b ? gnp2pd__response__unpack(NULL, len, b) : NULL;
}

/* ---- known answers ---- */

GN_TEST(ok_response_bytes)
{
    gni_p2pd_frame f;
    CHECK_OK(gni_p2pd_resp_ok(&f));
    /* Response{type: OK}: the OK (0) is written, go's field is required */
    static const uint8_t want[] = {0x02, 0x08, 0x00};
    CHECK_EQ(f.len, sizeof want);
    CHECK_MEM(f.data, want, sizeof want);
    gn_free(f.data);
}

GN_TEST(error_response_bytes)
{
    gni_p2pd_frame f;
    CHECK_OK(gni_p2pd_resp_error("no", &f));
    static const uint8_t want[] = {0x08, 0x08, 0x01, 0x12, 0x04, 0x0a, 0x02, 'n', 'o'};
    CHECK_EQ(f.len, sizeof want);
    CHECK_MEM(f.data, want, sizeof want);
    gn_free(f.data);
}

GN_TEST(error_response_cut_at_utf8_boundary)
{
    char msg[600];
    memset(msg, 'a', sizeof msg);
    /* a 2-byte sequence straddling the cut (byte 255 of the 255 kept) */
    msg[254] = (char)0xc3;
    msg[255] = (char)0xa9;
    msg[sizeof msg - 1] = '\0';
    gni_p2pd_frame f;
    CHECK_OK(gni_p2pd_resp_error(msg, &f));
    Gnp2pd__Response *r = resp_of(&f);
    CHECK(r && r->has_type && r->type == GNP2PD__RESPONSE__TYPE__ERROR);
    CHECK(r->error && r->error->msg);
    CHECK_EQ(strlen(r->error->msg), 254);
    gnp2pd__response__free_unpacked(r, NULL);
    gn_free(f.data);
    CHECK_OK(gni_p2pd_resp_error("", &f));
    r = resp_of(&f);
    CHECK(r && r->error && !strcmp(r->error->msg, "error"));
    gnp2pd__response__free_unpacked(r, NULL);
    gn_free(f.data);
}

GN_TEST(identify_response)
{
    gn_peer_id p = seed_peer(1);
    gn_multiaddr *a[2] = {ma("/ip4/127.0.0.1/tcp/4001"), ma("/ip6/::1/tcp/4002")};
    CHECK(a[0] && a[1]);
    gni_p2pd_frame f;
    CHECK_OK(gni_p2pd_resp_identify(&p, (const gn_multiaddr *const *)a, 2, &f));
    /* the body starts 08 00 22 (type OK, then field 4 identify) */
    CHECK(f.len > 4 && f.data[1] == 0x08 && f.data[2] == 0x00 && f.data[3] == 0x22);
    Gnp2pd__Response *r = resp_of(&f);
    CHECK(r && r->identify && r->identify->has_id);
    CHECK_EQ(r->identify->id.len, p.len);
    CHECK_MEM(r->identify->id.data, p.bytes, p.len);
    CHECK_EQ(r->identify->n_addrs, 2);
    gn_slice s = gn_multiaddr_bytes(a[1]);
    CHECK_EQ(r->identify->addrs[1].len, s.len);
    CHECK_MEM(r->identify->addrs[1].data, s.base, s.len);
    gnp2pd__response__free_unpacked(r, NULL);
    gn_free(f.data);
    /* no address at all is still a valid answer */
    CHECK_OK(gni_p2pd_resp_identify(&p, NULL, 0, &f));
    r = resp_of(&f);
    CHECK(r && r->identify && r->identify->n_addrs == 0);
    gnp2pd__response__free_unpacked(r, NULL);
    gn_free(f.data);
    gn_multiaddr_free(a[0]);
    gn_multiaddr_free(a[1]);
}

GN_TEST(stream_info_wrapped_and_bare)
{
    gn_peer_id p = seed_peer(2);
    gn_multiaddr *a = ma("/ip4/10.0.0.1/tcp/1");
    gni_p2pd_frame f;
    CHECK_OK(gni_p2pd_stream_info(&p, a, "/echo/1.0.0", true, &f));
    Gnp2pd__Response *r = resp_of(&f);
    CHECK(r && r->type == GNP2PD__RESPONSE__TYPE__OK && r->streaminfo);
    CHECK_STR(r->streaminfo->proto, "/echo/1.0.0");
    CHECK(r->streaminfo->has_peer && r->streaminfo->peer.len == p.len);
    gnp2pd__response__free_unpacked(r, NULL);
    gn_free(f.data);
    /* bare: what the daemon writes first on a handler connection */
    CHECK_OK(gni_p2pd_stream_info(&p, NULL, "/x", false, &f));
    size_t len = 0;
    const uint8_t *b = frame_body(&f, &len);
    CHECK(b);
    Gnp2pd__StreamInfo *si = gnp2pd__stream_info__unpack(NULL, len, b);
    CHECK(si && si->has_peer && si->has_addr && si->addr.len == 0);
    CHECK_MEM(si->peer.data, p.bytes, p.len);
    CHECK_STR(si->proto, "/x");
    gnp2pd__stream_info__free_unpacked(si, NULL);
    gn_free(f.data);
    gn_multiaddr_free(a);
}

GN_TEST(peers_response)
{
    gn_multiaddr *a1 = ma("/ip4/127.0.0.1/tcp/1"), *a2 = ma("/ip4/127.0.0.1/tcp/2");
    gn_multiaddr *l1[1] = {a1};
    gn_multiaddr *l2[2] = {a1, a2};
    gn_router_peer peers[3];
    memset(peers, 0, sizeof peers);
    peers[0].id = seed_peer(1);
    peers[0].addrs = l1;
    peers[0].naddrs = 1;
    peers[1].id = seed_peer(2);
    peers[2].id = seed_peer(3);
    peers[2].addrs = l2;
    peers[2].naddrs = 2;
    gni_p2pd_frame f;
    CHECK_OK(gni_p2pd_resp_peers(peers, 3, &f));
    Gnp2pd__Response *r = resp_of(&f);
    CHECK(r && r->n_peers == 3);
    CHECK_EQ(r->peers[0]->n_addrs, 1);
    CHECK_EQ(r->peers[1]->n_addrs, 0);
    CHECK_EQ(r->peers[2]->n_addrs, 2);
    CHECK_MEM(r->peers[2]->id.data, peers[2].id.bytes, peers[2].id.len);
    gnp2pd__response__free_unpacked(r, NULL);
    gn_free(f.data);
    CHECK_OK(gni_p2pd_resp_peers(NULL, 0, &f));
    static const uint8_t empty[] = {0x02, 0x08, 0x00};
    CHECK_EQ(f.len, sizeof empty);
    CHECK_MEM(f.data, empty, sizeof empty);
    gn_free(f.data);
    gn_multiaddr_free(a1);
    gn_multiaddr_free(a2);
}

GN_TEST(dht_stream_frames)
{
    gni_p2pd_frame f;
    /* BEGIN inside a Response */
    CHECK_OK(gni_p2pd_dht(GNI_P2PD_DHT_BEGIN, NULL, NULL, true, &f));
    static const uint8_t begin[] = {0x06, 0x08, 0x00, 0x2a, 0x02, 0x08, 0x00};
    CHECK_EQ(f.len, sizeof begin);
    CHECK_MEM(f.data, begin, sizeof begin);
    gn_free(f.data);
    /* END alone */
    CHECK_OK(gni_p2pd_dht(GNI_P2PD_DHT_END, NULL, NULL, false, &f));
    static const uint8_t end[] = {0x02, 0x08, 0x02};
    CHECK_EQ(f.len, sizeof end);
    CHECK_MEM(f.data, end, sizeof end);
    gn_free(f.data);
    /* VALUE alone with a peer; VALUE alone with a value */
    gn_multiaddr *a = ma("/ip4/127.0.0.1/tcp/9");
    gn_multiaddr *l[1] = {a};
    gn_router_peer p;
    memset(&p, 0, sizeof p);
    p.id = seed_peer(4);
    p.addrs = l;
    p.naddrs = 1;
    CHECK_OK(gni_p2pd_dht(GNI_P2PD_DHT_VALUE, &p, NULL, false, &f));
    size_t len = 0;
    const uint8_t *b = frame_body(&f, &len);
    Gnp2pd__DHTResponse *d = gnp2pd__dhtresponse__unpack(NULL, len, b);
    CHECK(d && d->has_type && d->type == GNP2PD__DHTRESPONSE__TYPE__VALUE);
    CHECK(d->peer && d->peer->n_addrs == 1 && !d->has_value);
    gnp2pd__dhtresponse__free_unpacked(d, NULL);
    gn_free(f.data);
    gn_slice v = gn_slice_of("hello", 5);
    CHECK_OK(gni_p2pd_dht(GNI_P2PD_DHT_VALUE, NULL, &v, true, &f));
    Gnp2pd__Response *r = resp_of(&f);
    CHECK(r && r->dht && r->dht->has_value && r->dht->value.len == 5);
    CHECK_MEM(r->dht->value.data, "hello", 5);
    gnp2pd__response__free_unpacked(r, NULL);
    gn_free(f.data);
    /* an empty value is present, not absent */
    v = gn_slice_of(NULL, 0);
    CHECK_OK(gni_p2pd_dht(GNI_P2PD_DHT_VALUE, NULL, &v, true, &f));
    r = resp_of(&f);
    CHECK(r && r->dht && r->dht->has_value && r->dht->value.len == 0);
    gnp2pd__response__free_unpacked(r, NULL);
    gn_free(f.data);
    gn_multiaddr_free(a);
}

GN_TEST(peerstore_response)
{
    gn_router_peer p;
    memset(&p, 0, sizeof p);
    p.id = seed_peer(5);
    const char *protos[2] = {"/ipfs/id/1.0.0", "/ipfs/ping/1.0.0"};
    gni_p2pd_frame f;
    CHECK_OK(gni_p2pd_resp_peerstore(NULL, protos, 2, &f));
    Gnp2pd__Response *r = resp_of(&f);
    CHECK(r && r->peerstore && !r->peerstore->peer && r->peerstore->n_protos == 2);
    CHECK_STR(r->peerstore->protos[1], "/ipfs/ping/1.0.0");
    gnp2pd__response__free_unpacked(r, NULL);
    gn_free(f.data);
    CHECK_OK(gni_p2pd_resp_peerstore(&p, NULL, 0, &f));
    r = resp_of(&f);
    CHECK(r && r->peerstore && r->peerstore->peer && r->peerstore->peer->id.len == p.id.len);
    gnp2pd__response__free_unpacked(r, NULL);
    gn_free(f.data);
}

/* ---- requests ---- */

/* What @libp2p/daemon-client 10.0.16 writes for identify(): type 0 explicitly. */
GN_TEST(js_identify_request)
{
    static const uint8_t req[] = {0x08, 0x00};
    gni_p2pd_req r;
    char err[GNI_P2PD_ERRMSG_MAX];
    CHECK_OK(gni_p2pd_req_decode(req, sizeof req, &r, err, sizeof err));
    CHECK_EQ(r.op, GNI_P2PD_IDENTIFY);
    gni_p2pd_req_fini(&r);
    /* no type at all */
    CHECK_EQ(gni_p2pd_req_decode(NULL, 0, &r, err, sizeof err), GN_EINVAL);
    CHECK(strstr(err, "missing type"));
    gni_p2pd_req_fini(&r);
}

GN_TEST(connect_request)
{
    gn_peer_id p = seed_peer(1);
    gn_multiaddr *a = ma("/ip4/127.0.0.1/tcp/4001");
    gn_slice s = gn_multiaddr_bytes(a);
    Gnp2pd__ConnectRequest c;
    gnp2pd__connect_request__init(&c);
    c.has_peer = 1;
    c.peer.data = p.bytes;
    c.peer.len = p.len;
    ProtobufCBinaryData addrs[GNI_P2PD_ADDRS_MAX + 1];
    for (size_t i = 0; i < GNI_P2PD_ADDRS_MAX + 1; i++) {
        addrs[i].data = (uint8_t *)(uintptr_t)s.base;
        addrs[i].len = s.len;
    }
    c.n_addrs = 1;
    c.addrs = addrs;
    Gnp2pd__Request rq;
    gnp2pd__request__init(&rq);
    rq.has_type = 1;
    rq.type = GNP2PD__REQUEST__TYPE__CONNECT;
    rq.connect = &c;
    gni_p2pd_req r;
    char err[GNI_P2PD_ERRMSG_MAX];
    CHECK_OK(decode(&rq.base, &r, err, sizeof err));
    CHECK_EQ(r.op, GNI_P2PD_CONNECT);
    CHECK(gn_peer_id_equal(&r.peer, &p));
    CHECK_EQ(r.naddrs, 1);
    CHECK(gn_multiaddr_equal(r.addrs[0], a));
    CHECK_EQ(r.timeout_s, GNI_P2PD_TIMEOUT_DEFAULT_S);
    gni_p2pd_req_fini(&r);
    /* timeout: seconds, clamped; <= 0 is the default */
    c.has_timeout = 1;
    c.timeout = 5;
    CHECK_OK(decode(&rq.base, &r, err, sizeof err));
    CHECK_EQ(r.timeout_s, 5);
    gni_p2pd_req_fini(&r);
    c.timeout = INT64_MAX;
    CHECK_OK(decode(&rq.base, &r, err, sizeof err));
    CHECK_EQ(r.timeout_s, GNI_P2PD_TIMEOUT_MAX_S);
    gni_p2pd_req_fini(&r);
    c.timeout = -3;
    CHECK_OK(decode(&rq.base, &r, err, sizeof err));
    CHECK_EQ(r.timeout_s, GNI_P2PD_TIMEOUT_DEFAULT_S);
    gni_p2pd_req_fini(&r);
    /* the most addresses, then one more */
    c.n_addrs = GNI_P2PD_ADDRS_MAX;
    CHECK_OK(decode(&rq.base, &r, err, sizeof err));
    CHECK_EQ(r.naddrs, GNI_P2PD_ADDRS_MAX);
    gni_p2pd_req_fini(&r);
    c.n_addrs = GNI_P2PD_ADDRS_MAX + 1;
    CHECK_EQ(decode(&rq.base, &r, err, sizeof err), GN_ETOOBIG);
    CHECK(strstr(err, "33 addresses"));
    gni_p2pd_req_fini(&r);
    /* a bad address after a good one: the good one is freed by fini */
    uint8_t junk[] = {0xff, 0xff, 0x03};
    c.n_addrs = 2;
    addrs[1].data = junk;
    addrs[1].len = sizeof junk;
    CHECK_EQ(decode(&rq.base, &r, err, sizeof err), GN_EINVAL);
    CHECK(strstr(err, "address 1 is not a multiaddr"));
    gni_p2pd_req_fini(&r);
    addrs[1].len = 0;
    CHECK_EQ(decode(&rq.base, &r, err, sizeof err), GN_EINVAL);
    CHECK(strstr(err, "empty"));
    gni_p2pd_req_fini(&r);
    /* no peer; a peer that is not a multihash; no connect message */
    c.n_addrs = 1;
    c.has_peer = 0;
    CHECK_EQ(decode(&rq.base, &r, err, sizeof err), GN_EINVAL);
    CHECK(strstr(err, "missing peer"));
    gni_p2pd_req_fini(&r);
    c.has_peer = 1;
    c.peer.data = junk;
    c.peer.len = sizeof junk;
    CHECK_EQ(decode(&rq.base, &r, err, sizeof err), GN_EINVAL);
    CHECK(strstr(err, "not a peer ID"));
    gni_p2pd_req_fini(&r);
    rq.connect = NULL;
    CHECK_EQ(decode(&rq.base, &r, err, sizeof err), GN_EINVAL);
    gni_p2pd_req_fini(&r);
    gn_multiaddr_free(a);
}

GN_TEST(stream_requests)
{
    gn_peer_id p = seed_peer(3);
    char *protos[GNI_P2PD_PROTOS_MAX + 1];
    for (size_t i = 0; i <= GNI_P2PD_PROTOS_MAX; i++) {
        protos[i] = (char *)"/echo/1.0.0";
    }
    Gnp2pd__StreamOpenRequest so;
    gnp2pd__stream_open_request__init(&so);
    so.has_peer = 1;
    so.peer.data = p.bytes;
    so.peer.len = p.len;
    so.n_proto = 2;
    so.proto = protos;
    Gnp2pd__Request rq;
    gnp2pd__request__init(&rq);
    rq.has_type = 1;
    rq.type = GNP2PD__REQUEST__TYPE__STREAM_OPEN;
    rq.streamopen = &so;
    gni_p2pd_req r;
    char err[GNI_P2PD_ERRMSG_MAX];
    CHECK_OK(decode(&rq.base, &r, err, sizeof err));
    CHECK_EQ(r.nprotos, 2);
    CHECK_STR(r.protos[1], "/echo/1.0.0");
    gni_p2pd_req_fini(&r);
    so.n_proto = 0;
    CHECK_EQ(decode(&rq.base, &r, err, sizeof err), GN_EINVAL);
    CHECK(strstr(err, "no protocol"));
    gni_p2pd_req_fini(&r);
    so.n_proto = GNI_P2PD_PROTOS_MAX + 1;
    CHECK_EQ(decode(&rq.base, &r, err, sizeof err), GN_ETOOBIG);
    gni_p2pd_req_fini(&r);
    char longp[GN_PROTOCOL_ID_MAX + 1];
    memset(longp, 'p', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    protos[0] = longp;
    so.n_proto = 1;
    CHECK_EQ(decode(&rq.base, &r, err, sizeof err), GN_ETOOBIG);
    gni_p2pd_req_fini(&r);
    longp[GN_PROTOCOL_ID_MAX - 1] = '\0'; /* 127 bytes: the longest */
    CHECK_OK(decode(&rq.base, &r, err, sizeof err));
    CHECK_EQ(strlen(r.protos[0]), GN_PROTOCOL_ID_MAX - 1);
    gni_p2pd_req_fini(&r);
    protos[0] = (char *)"/a\nb";
    CHECK_EQ(decode(&rq.base, &r, err, sizeof err), GN_EINVAL);
    CHECK(strstr(err, "control character"));
    gni_p2pd_req_fini(&r);
    protos[0] = (char *)"";
    CHECK_EQ(decode(&rq.base, &r, err, sizeof err), GN_EINVAL);
    gni_p2pd_req_fini(&r);
    protos[0] = (char *)"/echo/1.0.0";

    /* STREAM_HANDLER: address and protocols */
    gn_multiaddr *a = ma("/unix/tmp/client.sock");
    CHECK(a);
    gn_slice s = gn_multiaddr_bytes(a);
    Gnp2pd__StreamHandlerRequest sh;
    gnp2pd__stream_handler_request__init(&sh);
    sh.has_addr = 1;
    sh.addr.data = (uint8_t *)(uintptr_t)s.base;
    sh.addr.len = s.len;
    sh.n_proto = 1;
    sh.proto = protos;
    gnp2pd__request__init(&rq);
    rq.has_type = 1;
    rq.type = GNP2PD__REQUEST__TYPE__STREAM_HANDLER;
    rq.streamhandler = &sh;
    CHECK_OK(decode(&rq.base, &r, err, sizeof err));
    CHECK(r.handler_addr && gn_multiaddr_equal(r.handler_addr, a));
    CHECK_EQ(r.nprotos, 1);
    gni_p2pd_req_fini(&r);
    CHECK(r.handler_addr == NULL);
    sh.has_addr = 0;
    CHECK_EQ(decode(&rq.base, &r, err, sizeof err), GN_EINVAL);
    CHECK(strstr(err, "handler addr"));
    gni_p2pd_req_fini(&r);
    rq.streamhandler = NULL;
    CHECK_EQ(decode(&rq.base, &r, err, sizeof err), GN_EINVAL);
    gni_p2pd_req_fini(&r);
    gn_multiaddr_free(a);
}

static Gnp2pd__Request dht_req(Gnp2pd__DHTRequest *d, int type)
{
    gnp2pd__dhtrequest__init(d);
    d->has_type = 1;
    d->type = (Gnp2pd__DHTRequest__Type)type;
    Gnp2pd__Request rq;
    gnp2pd__request__init(&rq);
    rq.has_type = 1;
    rq.type = GNP2PD__REQUEST__TYPE__DHT;
    rq.dht = d;
    return rq;
}

GN_TEST(dht_requests)
{
    gni_p2pd_req r;
    char err[GNI_P2PD_ERRMSG_MAX];
    Gnp2pd__DHTRequest d;
    gn_peer_id p = seed_peer(6);

    Gnp2pd__Request rq = dht_req(&d, GNI_P2PD_DHT_FIND_PEER);
    CHECK_EQ(decode(&rq.base, &r, err, sizeof err), GN_EINVAL);
    gni_p2pd_req_fini(&r);
    d.has_peer = 1;
    d.peer.data = p.bytes;
    d.peer.len = p.len;
    d.has_timeout = 1;
    d.timeout = 7;
    CHECK_OK(decode(&rq.base, &r, err, sizeof err));
    CHECK_EQ(r.op, GNI_P2PD_DHT);
    CHECK_EQ(r.sub, GNI_P2PD_DHT_FIND_PEER);
    CHECK_EQ(r.timeout_s, 7);
    CHECK(gn_peer_id_equal(&r.peer, &p));
    gni_p2pd_req_fini(&r);

    rq = dht_req(&d, GNI_P2PD_DHT_FIND_PEERS_CONNECTED_TO_PEER);
    CHECK_EQ(decode(&rq.base, &r, err, sizeof err), GN_ENOTSUP);
    gni_p2pd_req_fini(&r);
    rq = dht_req(&d, 99);
    CHECK_EQ(decode(&rq.base, &r, err, sizeof err), GN_ENOTSUP);
    CHECK(strstr(err, "99"));
    gni_p2pd_req_fini(&r);
    d.has_type = 0;
    CHECK_EQ(decode(&rq.base, &r, err, sizeof err), GN_EINVAL);
    gni_p2pd_req_fini(&r);

    /* FIND_PROVIDERS: a CIDv1 (raw, sha2-256) gives its multihash */
    uint8_t cid[36] = {0x01, 0x55, 0x12, 0x20};
    for (int i = 0; i < 32; i++) {
        cid[4 + i] = (uint8_t)i;
    }
    rq = dht_req(&d, GNI_P2PD_DHT_FIND_PROVIDERS);
    d.has_cid = 1;
    d.cid.data = cid;
    d.cid.len = sizeof cid;
    CHECK_OK(decode(&rq.base, &r, err, sizeof err));
    CHECK_EQ(r.key_len, 34);
    CHECK_MEM(r.key, cid + 2, 34);
    CHECK_EQ(r.count, GNI_P2PD_PROVIDERS_DEFAULT);
    gni_p2pd_req_fini(&r);
    d.has_count = 1;
    d.count = 3;
    CHECK_OK(decode(&rq.base, &r, err, sizeof err));
    CHECK_EQ(r.count, 3);
    gni_p2pd_req_fini(&r);
    d.count = (int32_t)GNI_P2PD_PROVIDERS_MAX + 1;
    CHECK_EQ(decode(&rq.base, &r, err, sizeof err), GN_ETOOBIG);
    gni_p2pd_req_fini(&r);
    d.count = -1; /* go: <= 0 means the default */
    CHECK_OK(decode(&rq.base, &r, err, sizeof err));
    CHECK_EQ(r.count, GNI_P2PD_PROVIDERS_DEFAULT);
    gni_p2pd_req_fini(&r);
    /* a CIDv0 is the multihash itself */
    d.cid.data = cid + 2;
    d.cid.len = 34;
    CHECK_OK(decode(&rq.base, &r, err, sizeof err));
    CHECK_EQ(r.key_len, 34);
    gni_p2pd_req_fini(&r);
    /* truncated: refused */
    d.cid.data = cid;
    d.cid.len = sizeof cid - 1;
    CHECK_EQ(decode(&rq.base, &r, err, sizeof err), GN_EINVAL);
    CHECK(strstr(err, "CID"));
    gni_p2pd_req_fini(&r);

    /* PROVIDE */
    rq = dht_req(&d, GNI_P2PD_DHT_PROVIDE);
    CHECK_EQ(decode(&rq.base, &r, err, sizeof err), GN_EINVAL);
    CHECK(strstr(err, "missing cid"));
    gni_p2pd_req_fini(&r);

    /* GET_VALUE / PUT_VALUE with their bounds */
    static uint8_t big[GNI_P2PD_VALUE_MAX + 1];
    rq = dht_req(&d, GNI_P2PD_DHT_PUT_VALUE);
    d.has_key = 1;
    d.key.data = (uint8_t *)(uintptr_t)"/test/k";
    d.key.len = 7;
    CHECK_EQ(decode(&rq.base, &r, err, sizeof err), GN_EINVAL);
    CHECK(strstr(err, "missing value"));
    gni_p2pd_req_fini(&r);
    d.has_value = 1;
    d.value.data = big;
    d.value.len = GNI_P2PD_VALUE_MAX;
    CHECK_OK(decode(&rq.base, &r, err, sizeof err));
    CHECK_EQ(r.key_len, 7);
    CHECK_EQ(r.value_len, GNI_P2PD_VALUE_MAX);
    gni_p2pd_req_fini(&r);
    d.value.len = GNI_P2PD_VALUE_MAX + 1;
    CHECK_EQ(decode(&rq.base, &r, err, sizeof err), GN_ETOOBIG);
    gni_p2pd_req_fini(&r);
    d.value.len = 0; /* an empty value is a value */
    CHECK_OK(decode(&rq.base, &r, err, sizeof err));
    CHECK_EQ(r.value_len, 0);
    gni_p2pd_req_fini(&r);
    d.key.data = big;
    d.key.len = GNI_P2PD_KEY_MAX + 1;
    CHECK_EQ(decode(&rq.base, &r, err, sizeof err), GN_ETOOBIG);
    gni_p2pd_req_fini(&r);
    rq = dht_req(&d, GNI_P2PD_DHT_GET_VALUE);
    CHECK_EQ(decode(&rq.base, &r, err, sizeof err), GN_EINVAL);
    CHECK(strstr(err, "missing key"));
    gni_p2pd_req_fini(&r);
    rq = dht_req(&d, GNI_P2PD_DHT_GET_CLOSEST_PEERS);
    d.has_key = 1;
    d.key.data = p.bytes;
    d.key.len = p.len;
    CHECK_OK(decode(&rq.base, &r, err, sizeof err));
    CHECK_EQ(r.key_len, p.len);
    gni_p2pd_req_fini(&r);
    rq.dht = NULL;
    CHECK_EQ(decode(&rq.base, &r, err, sizeof err), GN_EINVAL);
    gni_p2pd_req_fini(&r);
}

GN_TEST(other_requests)
{
    gni_p2pd_req r;
    char err[GNI_P2PD_ERRMSG_MAX];
    gn_peer_id p = seed_peer(7);
    Gnp2pd__Request rq;
    gnp2pd__request__init(&rq);
    rq.has_type = 1;

    /* unknown request type: refused by name */
    rq.type = (Gnp2pd__Request__Type)42;
    CHECK_EQ(decode(&rq.base, &r, err, sizeof err), GN_ENOTSUP);
    CHECK(strstr(err, "42"));
    gni_p2pd_req_fini(&r);

    Gnp2pd__DisconnectRequest dc;
    gnp2pd__disconnect_request__init(&dc);
    rq.type = GNP2PD__REQUEST__TYPE__DISCONNECT;
    rq.disconnect = &dc;
    CHECK_EQ(decode(&rq.base, &r, err, sizeof err), GN_EINVAL);
    gni_p2pd_req_fini(&r);
    dc.has_peer = 1;
    dc.peer.data = p.bytes;
    dc.peer.len = p.len;
    CHECK_OK(decode(&rq.base, &r, err, sizeof err));
    CHECK(gn_peer_id_equal(&r.peer, &p));
    gni_p2pd_req_fini(&r);
    rq.disconnect = NULL;

    Gnp2pd__ConnManagerRequest cm;
    gnp2pd__conn_manager_request__init(&cm);
    rq.type = GNP2PD__REQUEST__TYPE__CONNMANAGER;
    rq.connmanager = &cm;
    CHECK_EQ(decode(&rq.base, &r, err, sizeof err), GN_EINVAL);
    gni_p2pd_req_fini(&r);
    cm.has_type = 1;
    cm.type = GNP2PD__CONN_MANAGER_REQUEST__TYPE__TRIM;
    CHECK_OK(decode(&rq.base, &r, err, sizeof err));
    CHECK_EQ(r.sub, GNI_P2PD_CM_TRIM);
    gni_p2pd_req_fini(&r);
    cm.type = GNP2PD__CONN_MANAGER_REQUEST__TYPE__TAG_PEER;
    cm.has_peer = 1;
    cm.peer.data = p.bytes;
    cm.peer.len = p.len;
    cm.tag = (char *)"keep";
    CHECK_EQ(decode(&rq.base, &r, err, sizeof err), GN_EINVAL);
    CHECK(strstr(err, "weight"));
    gni_p2pd_req_fini(&r);
    cm.has_weight = 1;
    cm.weight = 10;
    CHECK_OK(decode(&rq.base, &r, err, sizeof err));
    CHECK_STR(r.tag, "keep");
    CHECK_EQ(r.weight, 10);
    gni_p2pd_req_fini(&r);
    char longtag[GNI_P2PD_TAG_MAX + 2];
    memset(longtag, 't', sizeof longtag - 1);
    longtag[sizeof longtag - 1] = '\0';
    cm.tag = longtag;
    CHECK_EQ(decode(&rq.base, &r, err, sizeof err), GN_ETOOBIG);
    gni_p2pd_req_fini(&r);
    rq.connmanager = NULL;

    Gnp2pd__PeerstoreRequest ps;
    gnp2pd__peerstore_request__init(&ps);
    rq.type = GNP2PD__REQUEST__TYPE__PEERSTORE;
    rq.peerstore = &ps;
    ps.has_type = 1;
    ps.type = GNP2PD__PEERSTORE_REQUEST__TYPE__UNSPECIFIED;
    CHECK_EQ(decode(&rq.base, &r, err, sizeof err), GN_ENOTSUP);
    gni_p2pd_req_fini(&r);
    ps.type = GNP2PD__PEERSTORE_REQUEST__TYPE__GET_PEER_INFO;
    CHECK_EQ(decode(&rq.base, &r, err, sizeof err), GN_EINVAL);
    CHECK(strstr(err, "missing id"));
    gni_p2pd_req_fini(&r);
    ps.has_id = 1;
    ps.id.data = p.bytes;
    ps.id.len = p.len;
    CHECK_OK(decode(&rq.base, &r, err, sizeof err));
    CHECK_EQ(r.sub, GNI_P2PD_PS_GET_PEER_INFO);
    gni_p2pd_req_fini(&r);
    rq.peerstore = NULL;

    /* PUBSUB decodes (the glue answers that it is not built) */
    rq.type = GNP2PD__REQUEST__TYPE__PUBSUB;
    CHECK_OK(decode(&rq.base, &r, err, sizeof err));
    CHECK_EQ(r.op, GNI_P2PD_PUBSUB);
    CHECK_EQ(r.sub, -1);
    gni_p2pd_req_fini(&r);

    /* not a protobuf message */
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff};
    CHECK_EQ(gni_p2pd_req_decode(junk, sizeof junk, &r, err, sizeof err), GN_EPARSE);
    CHECK(strstr(err, "not a Request"));
    gni_p2pd_req_fini(&r);
    /* a request longer than the bound, refused before decoding */
    static uint8_t huge[GNI_P2PD_REQ_MAX + 1];
    CHECK_EQ(gni_p2pd_req_decode(huge, sizeof huge, &r, err, sizeof err), GN_ETOOBIG);
    gni_p2pd_req_fini(&r);
    /* a NULL error buffer is allowed */
    CHECK_EQ(gni_p2pd_req_decode(junk, sizeof junk, &r, NULL, 0), GN_EPARSE);
    gni_p2pd_req_fini(&r);
    CHECK_STR(gni_p2pd_op_name(GNI_P2PD_STREAM_HANDLER), "STREAM_HANDLER");
    CHECK_STR(gni_p2pd_op_name(77), "UNKNOWN");
}

GN_TEST(helpers)
{
    gn_identity *id = NULL;
    CHECK_OK(gn_identity_from_int_seed(9, &id));
    gn_peer_id p;
    gn_identity_peer_id(id, &p);
    uint8_t pub[GN_ED25519_PUBLICKEYBYTES], enc[64];
    gn_identity_public_key(id, pub);
    int n = gn_pubkey_encode_ed25519(pub, enc, sizeof enc);
    CHECK(n > 0);
    gn_slice s;
    CHECK_OK(gni_p2pd_peer_pubkey(&p, &s));
    CHECK_EQ(s.len, (size_t)n);
    CHECK_MEM(s.base, enc, (size_t)n);
    gn_identity_free(id);
    /* a sha2-256 peer ID does not hold the key */
    gn_peer_id q;
    memset(&q, 0, sizeof q);
    q.len = 34;
    q.bytes[0] = 0x12;
    q.bytes[1] = 0x20;
    CHECK_EQ(gni_p2pd_peer_pubkey(&q, &s), GN_ENOTFOUND);
    uint8_t mh[8];
    uint8_t cid[] = {0x01, 0x55, 0x00, 0x03, 'a', 'b', 'c'}; /* identity multihash */
    CHECK_EQ(gni_p2pd_cid_multihash(cid, sizeof cid, mh, sizeof mh), 5);
    CHECK_MEM(mh, cid + 2, 5);
    CHECK_EQ(gni_p2pd_cid_multihash(cid, sizeof cid, mh, 4), GN_ENOSPC);
    uint8_t v2[] = {0x02, 0x55, 0x00, 0x00};
    CHECK_EQ(gni_p2pd_cid_multihash(v2, sizeof v2, mh, sizeof mh), GN_EINVAL);
    CHECK_EQ(gni_p2pd_cid_multihash(NULL, 0, mh, sizeof mh), GN_EINVAL);
}

/* The framing the glue uses: core's reader bounded at GNI_P2PD_REQ_MAX. */
GN_TEST(request_framing)
{
    gni_lp_reader rd;
    gni_lp_reader_init(&rd, GNI_P2PD_REQ_MAX);
    /* two requests and raw bytes, in one read */
    static const uint8_t in[] = {0x02, 0x08, 0x00, 0x02, 0x08, 0x05, 'r', 'a', 'w'};
    size_t off = 0, used = 0, mlen = 0;
    const uint8_t *m = NULL;
    CHECK_EQ(gni_lp_reader_feed(&rd, in, sizeof in, &used, &m, &mlen), 1);
    CHECK_EQ(used, 3);
    gni_p2pd_req r;
    CHECK_OK(gni_p2pd_req_decode(m, mlen, &r, NULL, 0));
    CHECK_EQ(r.op, GNI_P2PD_IDENTIFY);
    gni_p2pd_req_fini(&r);
    off += used;
    CHECK_EQ(gni_lp_reader_feed(&rd, in + off, sizeof in - off, &used, &m, &mlen), 1);
    CHECK_OK(gni_p2pd_req_decode(m, mlen, &r, NULL, 0));
    CHECK_EQ(r.op, GNI_P2PD_LIST_PEERS);
    gni_p2pd_req_fini(&r);
    off += used;
    CHECK_EQ(sizeof in - off, 3); /* the raw bytes stay with the caller */
    gni_lp_reader_clear(&rd);
    /* a length over the bound fails before any allocation */
    uint8_t pre[10];
    size_t pl = gni_lp_prefix(pre, GNI_P2PD_REQ_MAX + 1);
    CHECK_EQ(gni_lp_reader_feed(&rd, pre, pl, &used, &m, &mlen), GN_EFRAMESIZE);
    gni_lp_reader_clear(&rd);
}

/* ---- allocation failure at every step ---- */

static gn_peer_id scenario_peer;

static int scenario(void)
{
    gn_peer_id p = scenario_peer;
    gn_multiaddr *a = ma("/ip4/127.0.0.1/tcp/1");
    if (!a) {
        return GN_ENOMEM;
    }
    int rc = 0;
    gni_p2pd_frame f = {NULL, 0};
    gn_slice s = gn_multiaddr_bytes(a);
    Gnp2pd__ConnectRequest c;
    gnp2pd__connect_request__init(&c);
    c.has_peer = 1;
    c.peer.data = p.bytes;
    c.peer.len = p.len;
    ProtobufCBinaryData addrs[3];
    for (int i = 0; i < 3; i++) {
        addrs[i].data = (uint8_t *)(uintptr_t)s.base;
        addrs[i].len = s.len;
    }
    c.n_addrs = 3;
    c.addrs = addrs;
    Gnp2pd__Request rq;
    gnp2pd__request__init(&rq);
    rq.has_type = 1;
    rq.type = GNP2PD__REQUEST__TYPE__CONNECT;
    rq.connect = &c;
    gni_p2pd_req r;
    char err[GNI_P2PD_ERRMSG_MAX];
    uint8_t buf[512];
    size_t n = pack(&rq.base, buf, sizeof buf);
    rc = gni_p2pd_req_decode(buf, n, &r, err, sizeof err);
    gni_p2pd_req_fini(&r);
    if (rc < 0) {
        goto out;
    }
    Gnp2pd__DHTRequest d;
    rq = dht_req(&d, GNI_P2PD_DHT_PUT_VALUE);
    d.has_key = 1;
    d.key.data = (uint8_t *)(uintptr_t)"/k/1";
    d.key.len = 4;
    d.has_value = 1;
    d.value.data = (uint8_t *)(uintptr_t)"v";
    d.value.len = 1;
    n = pack(&rq.base, buf, sizeof buf);
    rc = gni_p2pd_req_decode(buf, n, &r, err, sizeof err);
    gni_p2pd_req_fini(&r);
    if (rc < 0) {
        goto out;
    }
    gn_multiaddr *l[1] = {a};
    gn_router_peer peer;
    memset(&peer, 0, sizeof peer);
    peer.id = p;
    peer.addrs = l;
    peer.naddrs = 1;
    const char *protos[1] = {"/x"};
    gn_slice v = gn_slice_of("v", 1);
    if ((rc = gni_p2pd_resp_ok(&f)) < 0) {
        goto out;
    }
    gn_free(f.data);
    if ((rc = gni_p2pd_resp_error("e", &f)) < 0) {
        goto out;
    }
    gn_free(f.data);
    if ((rc = gni_p2pd_resp_identify(&p, (const gn_multiaddr *const *)l, 1, &f)) < 0) {
        goto out;
    }
    gn_free(f.data);
    if ((rc = gni_p2pd_stream_info(&p, a, "/x", true, &f)) < 0) {
        goto out;
    }
    gn_free(f.data);
    if ((rc = gni_p2pd_resp_peers(&peer, 1, &f)) < 0) {
        goto out;
    }
    gn_free(f.data);
    if ((rc = gni_p2pd_dht(GNI_P2PD_DHT_VALUE, &peer, &v, true, &f)) < 0) {
        goto out;
    }
    gn_free(f.data);
    if ((rc = gni_p2pd_resp_peerstore(&peer, protos, 1, &f)) < 0) {
        goto out;
    }
    gn_free(f.data);
out:
    gn_multiaddr_free(a);
    return rc;
}

GN_TEST(alloc_failure_every_step)
{
    scenario_peer = seed_peer(1);
    CHECK(fa_every_k(scenario, 500) > 10); /* it did fail at many steps */
}

GN_TEST_MAIN(GN_T(ok_response_bytes), GN_T(error_response_bytes),
             GN_T(error_response_cut_at_utf8_boundary), GN_T(identify_response),
             GN_T(stream_info_wrapped_and_bare), GN_T(peers_response), GN_T(dht_stream_frames),
             GN_T(peerstore_response), GN_T(js_identify_request), GN_T(connect_request),
             GN_T(stream_requests), GN_T(dht_requests), GN_T(other_requests), GN_T(helpers),
             GN_T(request_framing), GN_T(alloc_failure_every_step))
