/* identify: core encode/decode against hand-built protobufs, bounds, and the drivers. */
#include "golemnet/golemnet.h"
#include "golemnet/multiformats.h"
#include "identify.h"
#include "identify.pb-c.h"
#include "gni_envelope.h" /* signed envelopes and peer records (core) */
#include "envelope.pb-c.h"

#include "gn_pipe.h"
#include "gn_test.h"
#include "apps_test.h"

/* The PublicKey protobuf of identity seed 1 (08 01 12 20 || key, peer-ids spec). */
static size_t seed_key(uint32_t seed, uint8_t pb[64], gn_peer_id *pid)
{
    gn_identity *id;
    if (gn_identity_from_int_seed(seed, &id) < 0)
        return 0;
    uint8_t pub[32];
    gn_identity_public_key(id, pub);
    int n = gn_pubkey_encode_ed25519(pub, pb, 64);
    if (pid)
        gn_identity_peer_id(id, pid);
    gn_identity_free(id);
    return n > 0 ? (size_t)n : 0;
}

/* Appends raw bytes / hex to a test buffer. */
typedef struct tbuf {
    uint8_t b[4096];
    size_t n;
} tbuf;
static void put(tbuf *t, const void *p, size_t n)
{
    memcpy(t->b + t->n, p, n);
    t->n += n;
}
static void puthex(tbuf *t, const char *hex)
{
    long n = gn_test_unhex(hex, t->b + t->n, sizeof t->b - t->n);
    t->n += (size_t)n;
}
static void putstr(tbuf *t, uint8_t tag, const char *s)
{
    uint8_t h[2] = {tag, (uint8_t)strlen(s)};
    put(t, h, 2);
    put(t, s, strlen(s));
}

typedef struct fixture {
    uint8_t key[64];
    size_t key_len;
    gn_peer_id pid;
    gn_multiaddr *listen;
    gn_multiaddr *observed;
    const char *protos[2];
    gni_identify_info info;
} fixture;

static void fixture_init(fixture *f)
{
    memset(f, 0, sizeof *f);
    f->key_len = seed_key(1, f->key, &f->pid);
    gn_multiaddr_parse("/ip4/127.0.0.1/tcp/4001", &f->listen);
    gn_multiaddr_parse("/ip4/1.2.3.4/tcp/80", &f->observed);
    f->protos[0] = "/ipfs/ping/1.0.0";
    f->protos[1] = "/ipfs/id/1.0.0";
    f->info.agent_version = "golemnet/0.1.0";
    f->info.public_key = gn_slice_of(f->key, f->key_len);
    f->info.listen_addrs = (const gn_multiaddr *const *)&f->listen;
    f->info.listen_addr_cnt = 1;
    f->info.observed_addr = f->observed;
    f->info.protocols = f->protos;
    f->info.protocol_cnt = 2;
}

static void fixture_fini(fixture *f)
{
    gn_multiaddr_free(f->listen);
    gn_multiaddr_free(f->observed);
}

/*
 * The expected message, built by hand from the identify spec's field
 * numbers (protobuf wire format: tag = field << 3 | 2 for bytes/strings),
 * in field-number order as protobuf-c writes it:
 *   1 publicKey, 2 listenAddrs (/ip4/127.0.0.1/tcp/4001 = 04 7f000001 06 0fa1),
 *   3 protocols x2, 4 observedAddr (/ip4/1.2.3.4/tcp/80 = 04 01020304 06 0050),
 *   5 protocolVersion, 6 agentVersion.
 */
static void expected_message(const fixture *f, tbuf *t)
{
    uint8_t h[2] = {0x0a, (uint8_t)f->key_len};
    put(t, h, 2);
    put(t, f->key, f->key_len);
    puthex(t, "12 08 04 7f 00 00 01 06 0f a1");
    putstr(t, 0x1a, "/ipfs/ping/1.0.0");
    putstr(t, 0x1a, "/ipfs/id/1.0.0");
    puthex(t, "22 08 04 01 02 03 04 06 00 50");
    putstr(t, 0x2a, "ipfs/0.1.0");
    putstr(t, 0x32, "golemnet/0.1.0");
}

GN_TEST(encode_matches_hand_built_protobuf)
{
    fixture f;
    fixture_init(&f);
    CHECK_EQ(f.key_len, 36);
    tbuf exp = {.n = 0};
    expected_message(&f, &exp);
    CHECK_EQ(exp.n, 120);
    uint8_t out[512];
    gn_buf b;
    gn_buf_init(&b, out, sizeof out);
    int n = gni_identify_encode(&f.info, &b);
    CHECK_EQ(n, 121);
    CHECK_EQ(gni_identify_encoded_len(&f.info), 121);
    CHECK_EQ(out[0], 120); /* varint length prefix, as js-libp2p / go-libp2p write it */
    CHECK_MEM(out + 1, exp.b, exp.n);
    /* too small: nothing written */
    gn_buf small;
    gn_buf_init(&small, out, 100);
    CHECK_EQ(gni_identify_encode(&f.info, &small), GN_ENOSPC);
    CHECK_EQ(gn_buf_len(&small), 0);
    fixture_fini(&f);
}

GN_TEST(encode_rejects_bad_info)
{
    fixture f;
    fixture_init(&f);
    uint8_t out[512];
    gn_buf b;
    gn_buf_init(&b, out, sizeof out);
    char longp[GN_PROTOCOL_ID_MAX + 1];
    memset(longp, 'a', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    const char *protos[1] = {longp};
    gni_identify_info bad = f.info;
    bad.protocols = protos;
    bad.protocol_cnt = 1;
    CHECK_EQ(gni_identify_encode(&bad, &b), GN_EINVAL);
    bad = f.info;
    bad.protocol_cnt = GNI_IDENTIFY_MAX_PROTOCOLS + 1;
    CHECK_EQ(gni_identify_encode(&bad, &b), GN_EINVAL);
    CHECK_EQ(gni_identify_encode(NULL, &b), GN_EINVAL);
    fixture_fini(&f);
}

static void check_result(const gni_identify_result *r, const fixture *f)
{
    CHECK_STR(r->protocol_version, "ipfs/0.1.0");
    CHECK_STR(r->agent_version, "golemnet/0.1.0");
    CHECK_EQ(r->public_key_len, f->key_len);
    CHECK_MEM(r->public_key, f->key, f->key_len);
    CHECK_EQ(r->key_type, GN_KEY_ED25519);
    CHECK(gn_peer_id_equal(&r->peer, &f->pid));
    CHECK_EQ(r->listen_addr_cnt, 1);
    CHECK(gn_multiaddr_equal(r->listen_addrs[0], f->listen));
    CHECK(r->observed_addr && gn_multiaddr_equal(r->observed_addr, f->observed));
    CHECK_EQ(r->protocol_cnt, 2);
    CHECK_STR(r->protocols[0], "/ipfs/ping/1.0.0");
    CHECK_STR(r->protocols[1], "/ipfs/id/1.0.0");
}

GN_TEST(decode_bare_and_framed)
{
    fixture f;
    fixture_init(&f);
    tbuf t = {.n = 0};
    expected_message(&f, &t);
    gni_identify_result *r = NULL;
    /* bare protobuf (the spec's wording: no prefix) */
    CHECK_OK(gni_identify_decode(t.b, t.n, &f.pid, true, &r));
    check_result(r, &f);
    CHECK(!r->has_signed_peer_record);
    gni_identify_result_free(r);
    /* framed (js-libp2p / go-libp2p) */
    tbuf fr = {.n = 0};
    uint8_t p = (uint8_t)t.n;
    put(&fr, &p, 1);
    put(&fr, t.b, t.n);
    r = NULL;
    CHECK_OK(gni_identify_decode(fr.b, fr.n, &f.pid, true, &r));
    check_result(r, &f);
    gni_identify_result_free(r);
    fixture_fini(&f);
}

GN_TEST(decode_merges_frames_and_ignores_extras)
{
    fixture f;
    fixture_init(&f);
    /* frame 1: key, agent, an unknown varint field 9; frame 2: the rest plus
       a signedPeerRecord (field 8) and a listen address that is not a multiaddr */
    tbuf a = {.n = 0}, b = {.n = 0}, all = {.n = 0};
    uint8_t h[2] = {0x0a, (uint8_t)f.key_len};
    put(&a, h, 2);
    put(&a, f.key, f.key_len);
    putstr(&a, 0x32, "golemnet/0.1.0");
    puthex(&a, "48 96 01"); /* field 9, varint 150 */
    putstr(&b, 0x2a, "ipfs/0.1.0");
    puthex(&b, "12 08 04 7f 00 00 01 06 0f a1");
    puthex(&b, "12 02 ff ff"); /* unparsable address: skipped */
    putstr(&b, 0x1a, "/ipfs/ping/1.0.0");
    putstr(&b, 0x1a, "/ipfs/id/1.0.0");
    puthex(&b, "22 08 04 01 02 03 04 06 00 50");
    puthex(&b, "42 03 01 02 03"); /* signedPeerRecord */
    uint8_t la = (uint8_t)a.n, lb = (uint8_t)b.n;
    put(&all, &la, 1);
    put(&all, a.b, a.n);
    put(&all, &lb, 1);
    put(&all, b.b, b.n);
    gni_identify_result *r = NULL;
    CHECK_OK(gni_identify_decode(all.b, all.n, &f.pid, true, &r));
    check_result(r, &f);
    CHECK(r->has_signed_peer_record);
    gni_identify_result_free(r);
    fixture_fini(&f);
}

GN_TEST(decode_bad_input)
{
    fixture f;
    fixture_init(&f);
    gni_identify_result *r = NULL;
    tbuf t = {.n = 0};
    expected_message(&f, &t);
    /* oversize */
    static uint8_t big[GNI_IDENTIFY_MAX_MSG + 1];
    CHECK_EQ(gni_identify_decode(big, sizeof big, NULL, false, &r), GN_EFRAMESIZE);
    /* garbage: a group wire type */
    static const uint8_t garbage[] = {0x0b, 0xff, 0xff, 0xff};
    CHECK_EQ(gni_identify_decode(garbage, sizeof garbage, NULL, false, &r), GN_EPARSE);
    /* truncated: the last string is cut */
    CHECK_EQ(gni_identify_decode(t.b, t.n - 3, &f.pid, true, &r), GN_EPARSE);
    /* wrong wire type for publicKey (varint): protobuf-c refuses */
    static const uint8_t wt[] = {0x08, 0x01};
    CHECK_EQ(gni_identify_decode(wt, sizeof wt, NULL, false, &r), GN_EPARSE);
    /* missing public key */
    static const uint8_t nokey[] = {0x2a, 0x01, 'x'};
    CHECK_EQ(gni_identify_decode(nokey, sizeof nokey, NULL, true, &r), GN_EPROTO);
    CHECK_EQ(gni_identify_decode(NULL, 0, NULL, true, &r), GN_EPROTO);
    /* ...which a push may omit */
    CHECK_OK(gni_identify_decode(nokey, sizeof nokey, NULL, false, &r));
    CHECK_EQ(r->public_key_len, 0);
    CHECK_EQ(r->peer.len, 0);
    gni_identify_result_free(r);
    r = NULL;
    /* key of another peer */
    gn_peer_id other;
    uint8_t okey[64];
    seed_key(2, okey, &other);
    CHECK_EQ(gni_identify_decode(t.b, t.n, &other, true, &r), GN_EPEERID);
    /* a malformed key (Ed25519 type with 3 data bytes) */
    static const uint8_t badkey[] = {0x0a, 0x07, 0x08, 0x01, 0x12, 0x03, 0x01, 0x02, 0x03};
    CHECK_EQ(gni_identify_decode(badkey, sizeof badkey, NULL, true, &r), GN_EBADKEY);
    /* 65 listen addresses */
    tbuf many = {.n = 0};
    for (unsigned i = 0; i < GNI_IDENTIFY_MAX_ADDRS + 1; i++)
        puthex(&many, "12 08 04 7f 00 00 01 06 0f a1");
    CHECK_EQ(gni_identify_decode(many.b, many.n, NULL, false, &r), GN_ETOOBIG);
    /* 64 are fine */
    CHECK_OK(gni_identify_decode(many.b, many.n - 10, NULL, false, &r));
    CHECK_EQ(r->listen_addr_cnt, 64);
    gni_identify_result_free(r);
    r = NULL;
    /* a protocol id of GN_PROTOCOL_ID_MAX bytes */
    tbuf lp = {.n = 0};
    puthex(&lp, "1a 80 01");
    for (int i = 0; i < GN_PROTOCOL_ID_MAX; i++)
        puthex(&lp, "61");
    CHECK_EQ(gni_identify_decode(lp.b, lp.n, NULL, false, &r), GN_ETOOBIG);
    CHECK(r == NULL);
    fixture_fini(&f);
}

/* ---- drivers over the pipe ---- */

typedef struct id_done {
    int done;
    int status;
    gni_identify_result *res;
    int served;
    int serve_status;
} id_done;

static void on_identify(void *arg, int status, gni_identify_result *res)
{
    id_done *d = arg;
    d->done++;
    d->status = status;
    d->res = res;
}

static void on_served(void *arg, int status)
{
    id_done *d = arg;
    d->served++;
    d->serve_status = status;
}

GN_TEST(driver_round_trip)
{
    fixture f;
    fixture_init(&f);
    f.info.observed_addr = NULL; /* the pipe has no addresses: field omitted */
    gn_stream *a, *b;
    gn_pipe_new(loop, &a, &b);
    id_done d = {0};
    CHECK_OK(gni_identify_request(a, &f.pid, 2 * GN_S, on_identify, &d));
    CHECK_OK(gni_identify_serve(b, &f.info, on_served, &d));
    CHECK_EQ(d.done + d.served, 0); /* never from inside the calls */
    spin_until(&d.done, 200);
    CHECK_EQ(d.done, 1);
    CHECK_EQ(d.status, 0);
    CHECK_EQ(d.served, 1);
    CHECK_EQ(d.serve_status, 0);
    CHECK(d.res != NULL);
    CHECK_STR(d.res->agent_version, "golemnet/0.1.0");
    CHECK(gn_peer_id_equal(&d.res->peer, &f.pid));
    CHECK_EQ(d.res->protocol_cnt, 2);
    CHECK(d.res->observed_addr == NULL);
    gni_identify_result_free(d.res);
    spin(10); /* both ends closed by the drivers */
    fixture_fini(&f);
}

GN_TEST(driver_push_and_wrong_peer)
{
    fixture f;
    fixture_init(&f);
    gn_stream *a, *b;
    /* push: the opener writes, the acceptor reads */
    gn_pipe_new(loop, &a, &b);
    id_done d = {0};
    CHECK_OK(gni_identify_push(a, &f.info, on_served, &d));
    CHECK_OK(gni_identify_recv_push(b, &f.pid, 0, on_identify, &d));
    spin_until(&d.done, 200);
    CHECK_EQ(d.done, 1);
    CHECK_EQ(d.status, 0);
    CHECK_EQ(d.served, 1);
    CHECK(d.res && d.res->observed_addr && gn_multiaddr_equal(d.res->observed_addr, f.observed));
    gni_identify_result_free(d.res);
    spin(10);
    /* a reply whose key is not the connection's peer */
    gn_peer_id other;
    uint8_t okey[64];
    seed_key(3, okey, &other);
    gn_pipe_new(loop, &a, &b);
    id_done e = {0};
    CHECK_OK(gni_identify_request(a, &other, 0, on_identify, &e));
    CHECK_OK(gni_identify_serve(b, &f.info, NULL, NULL));
    spin_until(&e.done, 200);
    CHECK_EQ(e.done, 1);
    CHECK_EQ(e.status, GN_EPEERID);
    CHECK(e.res == NULL);
    spin(10);
    /* no expected peer and a stream that cannot tell: refused up front */
    gn_pipe_new(loop, &a, &b);
    CHECK_EQ(gni_identify_request(a, NULL, 0, on_identify, &e), GN_EINVAL);
    gn_stream_close(a, NULL, NULL);
    gn_stream_close(b, NULL, NULL);
    spin(10);
    fixture_fini(&f);
}

static void w_done(void *arg, int status)
{
    (void)arg;
    (void)status;
}

GN_TEST(driver_oversize_reply_and_timeout)
{
    fixture f;
    fixture_init(&f);
    gn_stream *a, *b;
    gn_pipe_new(loop, &a, &b);
    id_done d = {0};
    CHECK_OK(gni_identify_request(a, &f.pid, 0, on_identify, &d));
    static uint8_t junk[GNI_IDENTIFY_MAX_MSG + 100];
    gn_slice iov = gn_slice_of(junk, sizeof junk);
    CHECK_OK(gn_stream_write(b, &iov, 1, w_done, NULL));
    spin_until(&d.done, 200);
    CHECK_EQ(d.done, 1);
    CHECK_EQ(d.status, GN_EFRAMESIZE);
    gn_stream_close(b, NULL, NULL);
    spin(10);
    /* a responder that never answers */
    gn_pipe_new(loop, &a, &b);
    id_done e = {0};
    CHECK_OK(gni_identify_request(a, &f.pid, 30 * GN_MS, on_identify, &e));
    for (int i = 0; i < 400 && !e.done; i++)
        gn_loop_run(loop, GN_RUN_ONCE);
    CHECK_EQ(e.done, 1);
    CHECK_EQ(e.status, GN_ETIMEDOUT);
    gn_stream_close(b, NULL, NULL);
    spin(10);
    fixture_fini(&f);
}

/* An Identify message (one frame) with @id's public key and @rec as signedPeerRecord. */
static size_t identify_with_record(const gn_identity *id, const uint8_t *rec, size_t rec_len,
                                   uint8_t *out, size_t cap)
{
    uint8_t pk[GN_PUBKEY_MAX_BYTES];
    int kl = gn_identity_encode_public(id, pk, sizeof pk);
    Gnpb__Identify m = GNPB__IDENTIFY__INIT;
    m.has_publickey = 1;
    m.publickey.data = pk;
    m.publickey.len = (size_t)kl;
    m.has_signedpeerrecord = 1;
    m.signedpeerrecord.data = (uint8_t *)(uintptr_t)rec;
    m.signedpeerrecord.len = rec_len;
    size_t n = gnpb__identify__get_packed_size(&m);
    if (kl < 0 || n + 10 > cap)
        abort();
    int hl = gn_varint_encode(n, out, cap);
    return (size_t)hl + gnpb__identify__pack(&m, out + hl);
}

/* signedPeerRecord envelopes are verified for every key type (issue 17). */
GN_TEST(signed_peer_record_verified)
{
    static const gn_key_type types[] = {GN_KEY_ED25519, GN_KEY_RSA, GN_KEY_SECP256K1,
                                        GN_KEY_ECDSA};
    static const uint8_t rec_type[2] = {0x03, 0x01};
    gn_identity *other = NULL;
    CHECK_OK(gn_identity_from_int_seed(44, &other));
    gn_peer_id opid;
    gn_identity_peer_id(other, &opid);
    for (size_t k = 0; k < 4; k++) {
        gn_identity *id = NULL;
        CHECK_OK(gn_identity_generate_type(types[k], 0, &id));
        gn_peer_id pid;
        gn_identity_peer_id(id, &pid);
        /* PeerRecord {peer_id = pid, seq = 7} */
        uint8_t payload[2 + GN_PEER_ID_MAX_BYTES + 2];
        payload[0] = 0x0a;
        payload[1] = pid.len;
        memcpy(payload + 2, pid.bytes, pid.len);
        payload[2 + pid.len] = 0x10;
        payload[3 + pid.len] = 0x07;
        size_t pl = 4 + (size_t)pid.len;
        static uint8_t msg[4096];
        uint8_t *env = NULL;
        size_t el = 0;
        gni_identify_result *r = NULL;
        /* good: signed by the peer's own key */
        CHECK_OK(gni_envelope_seal(id, "libp2p-peer-record", rec_type, 2, payload, pl,
                                   &env, &el));
        size_t n = identify_with_record(id, env, el, msg, sizeof msg);
        CHECK_OK(gni_identify_decode(msg, n, &pid, true, &r));
        CHECK(gn_peer_id_equal(&r->peer, &pid));
        CHECK_OK(gni_identify_check_record(r, &pid, NULL));
        CHECK(r->has_signed_peer_record && r->signed_peer_record_ok);
        gni_identify_result_free(r);
        /* a flipped signature byte (the signature is the envelope's last field) */
        env[el - 1] ^= 1;
        n = identify_with_record(id, env, el, msg, sizeof msg);
        CHECK_OK(gni_identify_decode(msg, n, &pid, true, &r));
        CHECK_EQ(gni_identify_check_record(r, &pid, NULL), GN_EBADSIG);
        CHECK(r->has_signed_peer_record && !r->signed_peer_record_ok);
        gni_identify_result_free(r);
        gn_free(env);
        /* another domain */
        CHECK_OK(gni_envelope_seal(id, "libp2p-relay-rsvp", rec_type, 2, payload, pl,
                                   &env, &el));
        n = identify_with_record(id, env, el, msg, sizeof msg);
        CHECK_OK(gni_identify_decode(msg, n, &pid, true, &r));
        CHECK_EQ(gni_identify_check_record(r, &pid, NULL), GN_EBADSIG);
        CHECK(!r->signed_peer_record_ok);
        gni_identify_result_free(r);
        gn_free(env);
        /* signed by someone else: a valid envelope, not the peer's */
        CHECK_OK(gni_envelope_seal(other, "libp2p-peer-record", rec_type, 2, payload,
                                   pl, &env, &el));
        n = identify_with_record(id, env, el, msg, sizeof msg);
        CHECK_OK(gni_identify_decode(msg, n, &pid, true, &r));
        CHECK_EQ(gni_identify_check_record(r, &pid, NULL), GN_EPEERID);
        CHECK(r->has_signed_peer_record && !r->signed_peer_record_ok);
        gni_identify_result_free(r);
        gn_free(env);
        /* signed by the peer, but the record names another peer (RFC 0003) */
        payload[1] = opid.len;
        memcpy(payload + 2, opid.bytes, opid.len);
        payload[2 + opid.len] = 0x10;
        payload[3 + opid.len] = 0x07;
        CHECK_OK(gni_envelope_seal(id, "libp2p-peer-record", rec_type, 2, payload,
                                   4 + (size_t)opid.len, &env, &el));
        n = identify_with_record(id, env, el, msg, sizeof msg);
        CHECK_OK(gni_identify_decode(msg, n, &pid, true, &r));
        CHECK_EQ(gni_identify_check_record(r, &pid, NULL), GN_EPEERID);
        CHECK(r->has_signed_peer_record && !r->signed_peer_record_ok);
        gni_identify_result_free(r);
        gn_free(env);
        /* signed by the peer, a payload that is not a PeerRecord */
        static const uint8_t junk[] = {0x0a, 0x05, 0x00};
        CHECK_OK(gni_envelope_seal(id, "libp2p-peer-record", rec_type, 2, junk, sizeof junk,
                                   &env, &el));
        n = identify_with_record(id, env, el, msg, sizeof msg);
        CHECK_OK(gni_identify_decode(msg, n, &pid, true, &r));
        CHECK_EQ(gni_identify_check_record(r, &pid, NULL), GN_EPROTO);
        CHECK(r->has_signed_peer_record && !r->signed_peer_record_ok);
        gni_identify_result_free(r);
        gn_free(env);
        gn_identity_free(id);
    }
    gn_identity_free(other);
}

/*
 * Our own signed peer record (RFC 0003) round trip: the PeerRecord bytes
 * against a hand-built protobuf, sealing and opening, and identify carrying
 * it: the decoder keeps the record's (certified) addresses and seq beside
 * listenAddrs. Bounds: a record over GNI_PEER_RECORD_MAX_ADDRS addresses.
 */
GN_TEST(signed_peer_record_addresses)
{
    gn_identity *id = NULL, *other = NULL;
    CHECK_OK(gn_identity_from_int_seed(1, &id));
    CHECK_OK(gn_identity_from_int_seed(2, &other));
    gn_peer_id pid, opid;
    gn_identity_peer_id(id, &pid);
    gn_identity_peer_id(other, &opid);
    gn_multiaddr *a[2];
    CHECK_OK(gn_multiaddr_parse("/ip4/10.0.0.1/tcp/4001", &a[0]));
    CHECK_OK(gn_multiaddr_parse("/ip4/127.0.0.1/tcp/4002", &a[1]));
    uint8_t *pl = NULL;
    size_t pll = 0;
    CHECK_OK(gni_peer_record_encode(&pid, 300, (const gn_multiaddr *const *)a, 2, &pl, &pll));
    /* 1 peer_id, 2 seq = 300 (ac 02), 3 addresses {1 multiaddr} x2 */
    tbuf exp = {.n = 0};
    uint8_t h[2] = {0x0a, (uint8_t)pid.len};
    put(&exp, h, 2);
    put(&exp, pid.bytes, pid.len);
    puthex(&exp, "10 ac 02 1a 0a 0a 08 04 0a 00 00 01 06 0f a1 1a 0a 0a 08 04 7f 00 00 01 06 0f a2");
    CHECK_EQ(pll, exp.n);
    CHECK_MEM(pl, exp.b, exp.n);
    uint8_t *env = NULL;
    size_t el = 0;
    CHECK_OK(gni_envelope_seal(id, GNI_PEER_RECORD_DOMAIN, gni_peer_record_type,
                               GNI_PEER_RECORD_TYPE_LEN, pl, pll, &env, &el));
    gni_peer_record pr;
    CHECK_OK(gni_peer_record_open(env, el, &pid, NULL, &pr));
    CHECK(gn_peer_id_equal(&pr.peer, &pid));
    CHECK_EQ(pr.seq, 300);
    CHECK_EQ(pr.addr_cnt, 2);
    CHECK(gn_multiaddr_equal(pr.addrs[0], a[0]) && gn_multiaddr_equal(pr.addrs[1], a[1]));
    gni_peer_record_clear(&pr);
    gni_peer_record_clear(&pr); /* idempotent */
    CHECK_EQ(gni_peer_record_open(env, el, &opid, NULL, &pr), GN_EPEERID);
    gni_envelope e;
    CHECK_EQ(gni_envelope_open(env, el, "libp2p-relay-rsvp", gni_peer_record_type,
                               GNI_PEER_RECORD_TYPE_LEN, &e), GN_EBADSIG);
    CHECK_EQ(gni_envelope_open(env, el, GNI_PEER_RECORD_DOMAIN, (const uint8_t *)"\x03\x02", 2,
                               &e), GN_EPROTO);
    CHECK_EQ(gni_envelope_open(env, GNI_ENVELOPE_MAX + 1, GNI_PEER_RECORD_DOMAIN,
                               gni_peer_record_type, GNI_PEER_RECORD_TYPE_LEN, &e), GN_EPROTO);

    /* identify carries it: record addresses and seq kept beside listenAddrs */
    gni_envelope_memo memo;
    memset(&memo, 0, sizeof memo);
    fixture f;
    fixture_init(&f);
    uint8_t key[GN_PUBKEY_MAX_BYTES];
    int kl = gn_identity_encode_public(id, key, sizeof key);
    CHECK(kl > 0);
    f.info.public_key = gn_slice_of(key, (size_t)kl);
    f.info.signed_peer_record = gn_slice_of(env, el);
    static uint8_t out[4096];
    gn_buf b;
    gn_buf_init(&b, out, sizeof out);
    int n = gni_identify_encode(&f.info, &b);
    CHECK(n > 0);
    gni_identify_result *r = NULL;
    CHECK_OK(gni_identify_decode(out, (size_t)n, &pid, true, &r));
    CHECK_OK(gni_identify_check_record(r, &pid, &memo));
    CHECK(r->has_signed_peer_record && r->signed_peer_record_ok);
    CHECK_EQ(r->listen_addr_cnt, 1);
    CHECK_EQ(r->record_addr_cnt, 2);
    CHECK_EQ(r->record_seq, 300);
    CHECK(gn_multiaddr_equal(r->record_addrs[1], a[1]));
    CHECK_EQ(memo.used, 1);
    gni_identify_result_free(r);
    /* the same record again: found in the memo, same outcome, no new entry */
    CHECK_OK(gni_identify_decode(out, (size_t)n, &pid, true, &r));
    CHECK(!r->signed_peer_record_ok); /* decode alone does not verify */
    CHECK_OK(gni_identify_check_record(r, &pid, &memo));
    CHECK(r->signed_peer_record_ok && r->record_addr_cnt == 2 && r->record_seq == 300);
    CHECK_EQ(memo.used, 1);
    gni_identify_result_free(r);
    /* the same record from a connection to another peer: not certified */
    gn_buf_init(&b, out, sizeof out);
    f.info.public_key = gn_slice_of(NULL, 0);
    n = gni_identify_encode(&f.info, &b);
    CHECK(n > 0);
    CHECK_OK(gni_identify_decode(out, (size_t)n, &opid, false, &r));
    CHECK_EQ(gni_identify_check_record(r, &opid, &memo), GN_EPEERID);
    CHECK(r->has_signed_peer_record && !r->signed_peer_record_ok);
    CHECK_EQ(r->record_addr_cnt, 0);
    CHECK(r->record_addrs == NULL);
    CHECK_EQ(memo.used, 1);
    gni_identify_result_free(r);
    fixture_fini(&f);
    gn_free(env);
    gn_free(pl);

    /* over the address bound: refused when encoding and when opening */
    gn_multiaddr *many[GNI_PEER_RECORD_MAX_ADDRS + 1];
    for (size_t i = 0; i <= GNI_PEER_RECORD_MAX_ADDRS; i++) {
        many[i] = a[0];
    }
    CHECK_EQ(gni_peer_record_encode(&pid, 1, (const gn_multiaddr *const *)many,
                                    GNI_PEER_RECORD_MAX_ADDRS + 1, &pl, &pll), GN_EINVAL);
    Gnpb__Record__PeerRecord__AddressInfo ai = GNPB__RECORD__PEER_RECORD__ADDRESS_INFO__INIT;
    Gnpb__Record__PeerRecord__AddressInfo *aip[GNI_PEER_RECORD_MAX_ADDRS + 1];
    gn_slice ab = gn_multiaddr_bytes(a[0]);
    ai.has_multiaddr = 1;
    ai.multiaddr.data = (uint8_t *)(uintptr_t)ab.base;
    ai.multiaddr.len = ab.len;
    for (size_t i = 0; i <= GNI_PEER_RECORD_MAX_ADDRS; i++) {
        aip[i] = &ai;
    }
    Gnpb__Record__PeerRecord rec = GNPB__RECORD__PEER_RECORD__INIT;
    rec.has_peer_id = 1;
    rec.peer_id.data = pid.bytes;
    rec.peer_id.len = pid.len;
    rec.n_addresses = GNI_PEER_RECORD_MAX_ADDRS + 1;
    rec.addresses = aip;
    static uint8_t big[8192];
    size_t bl = gnpb__record__peer_record__get_packed_size(&rec);
    CHECK(bl <= sizeof big);
    gnpb__record__peer_record__pack(&rec, big);
    CHECK_OK(gni_envelope_seal(id, GNI_PEER_RECORD_DOMAIN, gni_peer_record_type,
                               GNI_PEER_RECORD_TYPE_LEN, big, bl, &env, &el));
    CHECK_EQ(gni_peer_record_open(env, el, &pid, NULL, &pr), GN_ETOOBIG);
    gn_free(env);
    gn_multiaddr_free(a[0]);
    gn_multiaddr_free(a[1]);
    gn_identity_free(id);
    gn_identity_free(other);
}

APPS_TEST_MAIN(GN_T(encode_matches_hand_built_protobuf), GN_T(encode_rejects_bad_info),
               GN_T(decode_bare_and_framed), GN_T(decode_merges_frames_and_ignores_extras),
               GN_T(decode_bad_input), GN_T(driver_round_trip), GN_T(driver_push_and_wrong_peer),
               GN_T(driver_oversize_reply_and_timeout), GN_T(signed_peer_record_verified),
               GN_T(signed_peer_record_addresses))
