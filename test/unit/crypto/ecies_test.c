/*
 * Tests for the /golem/ecies/1.0.0 sans-I/O core (layers/crypto/ecies/ecies.c).
 * Spec: docs/protocols/ecies.md part A.
 *
 * Known-answer vectors (handshake messages, transport keys, frames, rekey)
 * were computed once with an independent implementation written from the spec
 * (Python 3 with the `cryptography` 48.0 package: X25519, Ed25519,
 * ChaCha20Poly1305, HKDFExpand; HMAC from hashlib) and frozen here. Inputs:
 * initiator identity = int seed 1, responder identity = int seed 2
 * (gn_identity_from_int_seed), ephemeral secrets from test_rng (bytes base,
 * base+1, ...) with base 0x10 (initiator) and 0x80 (responder), empty
 * extension blocks. HKDF vectors: RFC 5869 appendix A, test cases 1 and 3.
 */
#include "ecies.h"
#include "gni.h"

#include "gn_test.h"
#include "golemnet/err.h"
#include "golemnet/identity.h"

#include <sodium.h>

#define TMIN(a, b) ((a) < (b) ? (a) : (b))

/* ---- helpers ------------------------------------------------------------------------ */

typedef struct test_rng_state {
    uint8_t base;
    uint32_t ctr;
} test_rng_state;

static void test_rng_fill(void *ud, uint8_t *out, size_t len)
{
    test_rng_state *st = ud;
    for (size_t i = 0; i < len; i++) {
        out[i] = (uint8_t)(st->base + st->ctr++);
    }
}

static uint64_t xs_state = 88172645463325252ULL;
static uint32_t xs_next(void)
{
    xs_state ^= xs_state << 13;
    xs_state ^= xs_state >> 7;
    xs_state ^= xs_state << 17;
    return (uint32_t)xs_state;
}

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    long n = gn_test_unhex(hex, out, cap);
    CHECK(n >= 0);
    return (size_t)n;
}

#define T0 ((gn_time)1000 * GN_S)

typedef struct pair {
    gn_identity *idi, *idr;
    test_rng_state rsi, rsr;
    gn_rng rngi, rngr;
    gni_ecies_hs *i, *r;
} pair;

/* Sets up initiator (seed 1) and responder (seed 2) with deterministic RNGs. */
static void pair_init(pair *p, const gn_peer_id *exp_i, const gn_peer_id *exp_r, gn_slice ext_i,
                      gn_slice ext_r)
{
    memset(p, 0, sizeof *p);
    CHECK_OK(gn_identity_from_int_seed(1, &p->idi));
    CHECK_OK(gn_identity_from_int_seed(2, &p->idr));
    p->rsi.base = 0x10;
    p->rsr.base = 0x80;
    p->rngi.fill = test_rng_fill;
    p->rngi.user_data = &p->rsi;
    p->rngr.fill = test_rng_fill;
    p->rngr.user_data = &p->rsr;
    gni_ecies_config ci = {.initiator = true, .identity = p->idi, .rng = &p->rngi,
                           .expected_peer = exp_i, .ext = ext_i};
    gni_ecies_config cr = {.initiator = false, .identity = p->idr, .rng = &p->rngr,
                           .expected_peer = exp_r, .ext = ext_r};
    CHECK_OK(gni_ecies_hs_new(&ci, T0, &p->i));
    CHECK_OK(gni_ecies_hs_new(&cr, T0, &p->r));
}

static void pair_fini(pair *p)
{
    gni_ecies_hs_free(p->i);
    gni_ecies_hs_free(p->r);
    gn_identity_free(p->idi);
    gn_identity_free(p->idr);
}

/* Drains everything pending from @hs into @buf (cap 4096); returns the length. */
static size_t drain_all(gni_ecies_hs *hs, uint8_t *buf)
{
    gn_buf b;
    gn_buf_init(&b, buf, 4096);
    int rc = gni_ecies_hs_drain(hs, &b, T0);
    CHECK(rc >= 0);
    CHECK_EQ(gni_ecies_hs_pending(hs), 0);
    return gn_buf_len(&b);
}

/* Feeds @len bytes in chunks of @chunk; returns the error or 0; *@used = bytes consumed. */
static int feed_chunks(gni_ecies_hs *hs, const uint8_t *in, size_t len, size_t chunk,
                       size_t *used)
{
    size_t pos = 0;
    int rc = 0;
    for (size_t guard = 0; pos < len && guard < 100000; guard++) {
        size_t n = TMIN(chunk, len - pos);
        size_t c = 0;
        rc = gni_ecies_hs_feed(hs, in + pos, n, &c, T0 + GN_S);
        pos += c;
        if (rc < 0 || c < n) {
            break;
        }
    }
    if (used) {
        *used = pos;
    }
    return rc;
}

/* ---- HKDF (RFC 5869 appendix A) ----------------------------------------------------- */

GN_TEST(hkdf_rfc5869)
{
    uint8_t ikm[22], salt[13], info[10], prk[32], okm[42], exp[64];
    memset(ikm, 0x0b, sizeof ikm);
    for (int i = 0; i < 13; i++) {
        salt[i] = (uint8_t)i;
    }
    for (int i = 0; i < 10; i++) {
        info[i] = (uint8_t)(0xf0 + i);
    }
    /* Test case 1 */
    gni_hkdf_sha256_extract(prk, salt, sizeof salt, ikm, sizeof ikm);
    unhex("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5", exp, 64);
    CHECK_MEM(prk, exp, 32);
    CHECK_OK(gni_hkdf_sha256_expand(okm, 42, prk, 32, info, sizeof info));
    unhex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
          exp, 64);
    CHECK_MEM(okm, exp, 42);
    /* Test case 3: empty salt and info */
    gni_hkdf_sha256_extract(prk, NULL, 0, ikm, sizeof ikm);
    unhex("19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04", exp, 64);
    CHECK_MEM(prk, exp, 32);
    CHECK_OK(gni_hkdf_sha256_expand(okm, 42, prk, 32, NULL, 0));
    unhex("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
          exp, 64);
    CHECK_MEM(okm, exp, 42);
    CHECK_EQ(gni_hkdf_sha256_expand(okm, 255 * 32 + 1, prk, 32, NULL, 0), GN_EINVAL);
}

/* ---- handshake ---------------------------------------------------------------------- */

static const char kat_msg1[] =
    "00220101d89e3bad79437dbed9f843418304f460ff05c7fe81fe4a9577a804cb9367ff66";
static const char kat_msg2[] =
    "00940101493e82fc74464a59268817623d2053c5eb8e2cc4a988b4fee179ec6b010d531d5062bf1ffee955c7"
    "184ecef39ac7627951828f49af4559cddb50116b797de040defb860decb13bc1b3793221cc6a32d32999ec2b"
    "adc44ebb7f0507b2d728820348af41be193fc1bda1548ec72d5f46a79db0716b5a36f6ded7619d69548bdb06"
    "9f18049c890fe4b58d17473ff46d78674831";
static const char kat_msg3[] =
    "0072689f6a690fa578662b3b36f7e90a8d8994a3eb6daf053d60cb116c94ac7f29182fcce997582ba6742b4d"
    "e3b530c7ce1d72b62f453acaffbba372b028f08336a8b10cb6bc2a9b660a82fa6fc2cf522de571721902b350"
    "e7dd6fced68ff508ef17f0ee54f88ab9576694db5107b9a444c7b18a";
static const char kat_hf[] = "c9dde5192da4d40cf96a1f3793749ee71107b7db7e234c1f8400a3f8a2e7e3e8";
static const char kat_ki2r[] = "1642fabaf549400b0aa2e62d0c832cc6391c1a502c8fc13f7778f71e59d554b5";
static const char kat_kr2i[] = "729e050540bac90ab3799216226abad40a6d6ec7c4645e3fd45cd22d0b7fff62";
static const char kat_ping[] = "001d00000000000000002577b2032845cd80364221393a72f2107ec9c3289f";
static const char kat_pong[] = "001d000000000000000044019cae8e4d5ebf7c6a2c6946da9f5e5d86292ccb";
static const char kat_close1[] = "0019000000000000000108b66b9b2214989cfb33f58cb56d07db05";
static const char kat_rekeyed[] =
    "0024000000000000000169bbff1ac35dbd30d2898a3961662499820a60a05b31255cc71cae7e";
/* Peer ID of int seed 2: identity multihash of the PublicKey protobuf. */
static const char kat_pid_r[] =
    "0024080112206b79c57e6a095239282c04818e96112f3f03a4001ba97a564c23852a3f1ea5fc";

GN_TEST(handshake_kat)
{
    pair p;
    uint8_t buf[4096], exp[512];
    size_t n, used;
    pair_init(&p, NULL, NULL, gn_slice_of(NULL, 0), gn_slice_of(NULL, 0));
    CHECK_EQ(gni_ecies_hs_pending(p.r), 0);

    n = drain_all(p.i, buf);
    CHECK_EQ(n, unhex(kat_msg1, exp, sizeof exp));
    CHECK_MEM(buf, exp, n);
    CHECK_OK(feed_chunks(p.r, buf, n, n, &used));
    CHECK_EQ(used, n);

    n = drain_all(p.r, buf);
    CHECK_EQ(n, unhex(kat_msg2, exp, sizeof exp));
    CHECK_MEM(buf, exp, n);
    CHECK(!gni_ecies_hs_done(p.r));
    CHECK_OK(feed_chunks(p.i, buf, n, n, &used));
    CHECK(gni_ecies_hs_done(p.i));

    n = drain_all(p.i, buf);
    CHECK_EQ(n, unhex(kat_msg3, exp, sizeof exp));
    CHECK_MEM(buf, exp, n);
    CHECK_OK(feed_chunks(p.r, buf, n, n, &used));
    CHECK(gni_ecies_hs_done(p.r));
    CHECK_EQ(gni_ecies_hs_deadline(p.r), GN_TIME_INFINITY);

    gni_ecies_result ri, rr;
    CHECK_OK(gni_ecies_hs_result(p.i, &ri));
    CHECK_OK(gni_ecies_hs_result(p.r, &rr));
    unhex(kat_hf, exp, sizeof exp);
    CHECK_MEM(ri.handshake_hash, exp, 32);
    CHECK_MEM(rr.handshake_hash, exp, 32);
    CHECK_EQ(ri.remote_peer.len, unhex(kat_pid_r, exp, sizeof exp));
    CHECK_MEM(ri.remote_peer.bytes, exp, ri.remote_peer.len);
    gn_peer_id pid1;
    gn_identity_peer_id(p.idi, &pid1);
    CHECK(gn_peer_id_equal(&rr.remote_peer, &pid1));
    CHECK_EQ(ri.remote_ext_len, 0);

    uint8_t itx[32], irx[32], rtx[32], rrx[32];
    CHECK_OK(gni_ecies_hs_keys(p.i, itx, irx));
    CHECK_OK(gni_ecies_hs_keys(p.r, rtx, rrx));
    unhex(kat_ki2r, exp, sizeof exp);
    CHECK_MEM(itx, exp, 32);
    CHECK_MEM(rrx, exp, 32);
    unhex(kat_kr2i, exp, sizeof exp);
    CHECK_MEM(irx, exp, 32);
    CHECK_MEM(rtx, exp, 32);

    /* First transport frames in each direction. */
    gni_ecies_session *si, *sr;
    CHECK_OK(gni_ecies_session_new(p.i, &si));
    CHECK_OK(gni_ecies_session_new(p.r, &sr));
    CHECK_EQ(gni_ecies_session_new(p.i, &si), GN_ESTATE); /* keys moved */
    CHECK_EQ(gni_ecies_hs_keys(p.i, itx, irx), GN_ESTATE);
    gn_buf b;
    gn_buf_init(&b, buf, sizeof buf);
    CHECK_EQ(gni_ecies_session_send(si, (const uint8_t *)"ping", 4, &b), 4);
    CHECK_EQ(gn_buf_len(&b), unhex(kat_ping, exp, sizeof exp));
    CHECK_MEM(b.pos, exp, gn_buf_len(&b));
    gn_buf_reset(&b);
    CHECK_EQ(gni_ecies_session_send(sr, (const uint8_t *)"pong", 4, &b), 4);
    CHECK_EQ(gn_buf_len(&b), unhex(kat_pong, exp, sizeof exp));
    CHECK_MEM(b.pos, exp, gn_buf_len(&b));
    gn_buf_reset(&b);
    CHECK_OK(gni_ecies_session_send_close(si, &b));
    CHECK_EQ(gn_buf_len(&b), unhex(kat_close1, exp, sizeof exp));
    CHECK_MEM(b.pos, exp, gn_buf_len(&b));
    gni_ecies_session_free(si);
    gni_ecies_session_free(sr);
    pair_fini(&p);
}

/* Runs a complete handshake between the two sides, moving bytes in @chunk-sized
 * pieces and draining through buffers of @drain_cap bytes. Returns 0 or the first error
 * (side stored in *@who: 'i' or 'r'). */
static int run_hs(pair *p, size_t chunk, size_t drain_cap, char *who)
{
    uint8_t wire[4096];
    gni_ecies_hs *side[2] = {p->i, p->r};
    for (int round = 0; round < 100; round++) {
        bool moved = false;
        for (int s = 0; s < 2; s++) {
            gni_ecies_hs *from = side[s], *to = side[1 - s];
            for (int guard = 0; guard < 10000 && gni_ecies_hs_pending(from) > 0; guard++) {
                gn_buf b;
                gn_buf_init(&b, wire, drain_cap);
                int rc = gni_ecies_hs_drain(from, &b, T0);
                if (rc < 0) {
                    *who = s ? 'r' : 'i';
                    return rc;
                }
                size_t used = 0;
                rc = feed_chunks(to, b.pos, gn_buf_len(&b), chunk, &used);
                if (rc < 0) {
                    *who = s ? 'i' : 'r';
                    return rc;
                }
                CHECK_EQ(used, gn_buf_len(&b));
                moved = true;
            }
        }
        if (!moved) {
            break;
        }
    }
    return 0;
}

GN_TEST(handshake_agree_system_rng)
{
    gn_identity *a, *b;
    CHECK_OK(gn_identity_generate(&a));
    CHECK_OK(gn_identity_generate(&b));
    gn_peer_id pa, pb;
    gn_identity_peer_id(a, &pa);
    gn_identity_peer_id(b, &pb);
    gni_ecies_config ci = {.initiator = true, .identity = a, .rng = gn_rng_system(),
                           .expected_peer = &pb};
    gni_ecies_config cr = {.initiator = false, .identity = b, .rng = gn_rng_system(),
                           .expected_peer = &pa};
    pair p;
    memset(&p, 0, sizeof p);
    CHECK_OK(gni_ecies_hs_new(&ci, T0, &p.i));
    CHECK_OK(gni_ecies_hs_new(&cr, T0, &p.r));
    char who = 0;
    CHECK_OK(run_hs(&p, 4096, 4096, &who));
    CHECK(gni_ecies_hs_done(p.i) && gni_ecies_hs_done(p.r));
    uint8_t itx[32], irx[32], rtx[32], rrx[32];
    CHECK_OK(gni_ecies_hs_keys(p.i, itx, irx));
    CHECK_OK(gni_ecies_hs_keys(p.r, rtx, rrx));
    CHECK_MEM(itx, rrx, 32);
    CHECK_MEM(irx, rtx, 32);
    CHECK(memcmp(itx, irx, 32) != 0);
    gni_ecies_result ri, rr;
    CHECK_OK(gni_ecies_hs_result(p.i, &ri));
    CHECK_OK(gni_ecies_hs_result(p.r, &rr));
    CHECK(gn_peer_id_equal(&ri.remote_peer, &pb));
    CHECK(gn_peer_id_equal(&rr.remote_peer, &pa));
    uint8_t pub[32];
    gn_identity_public_key(b, pub);
    CHECK_MEM(ri.remote_pubkey, pub, 32);
    CHECK_MEM(ri.handshake_hash, rr.handshake_hash, 32);
    gni_ecies_hs_free(p.i);
    gni_ecies_hs_free(p.r);
    gn_identity_free(a);
    gn_identity_free(b);
}

GN_TEST(handshake_byte_by_byte)
{
    pair p;
    pair_init(&p, NULL, NULL, gn_slice_of(NULL, 0), gn_slice_of(NULL, 0));
    char who = 0;
    CHECK_OK(run_hs(&p, 1, 1, &who)); /* 1-byte feeds and 1-byte drain buffers */
    CHECK(gni_ecies_hs_done(p.i) && gni_ecies_hs_done(p.r));
    gni_ecies_result rr;
    CHECK_OK(gni_ecies_hs_result(p.r, &rr));
    uint8_t exp[32];
    unhex(kat_hf, exp, sizeof exp);
    CHECK_MEM(rr.handshake_hash, exp, 32); /* same as the one-shot KAT */
    pair_fini(&p);
}

GN_TEST(handshake_expected_peer)
{
    gn_identity *other;
    CHECK_OK(gn_identity_from_int_seed(3, &other));
    gn_peer_id wrong, pid1, pid2;
    gn_identity_peer_id(other, &wrong);
    gn_identity_free(other);

    /* Right expectations on both sides. */
    pair p;
    CHECK_OK(gn_identity_from_int_seed(1, &other));
    gn_identity_peer_id(other, &pid1);
    gn_identity_free(other);
    CHECK_OK(gn_identity_from_int_seed(2, &other));
    gn_identity_peer_id(other, &pid2);
    gn_identity_free(other);
    pair_init(&p, &pid2, &pid1, gn_slice_of(NULL, 0), gn_slice_of(NULL, 0));
    char who = 0;
    CHECK_OK(run_hs(&p, 7, 4096, &who));
    CHECK(gni_ecies_hs_done(p.i) && gni_ecies_hs_done(p.r));
    pair_fini(&p);

    /* Initiator expects someone else: GN_EPEERID, and msg3 (its identity) is never sent. */
    pair_init(&p, &wrong, NULL, gn_slice_of(NULL, 0), gn_slice_of(NULL, 0));
    CHECK_EQ(run_hs(&p, 4096, 4096, &who), GN_EPEERID);
    CHECK_EQ(who, 'i');
    CHECK_EQ(gni_ecies_hs_pending(p.i), 0);
    CHECK_EQ(gni_ecies_hs_error(p.i), GN_EPEERID);
    gni_ecies_result res;
    CHECK_EQ(gni_ecies_hs_result(p.i, &res), GN_EPEERID);
    size_t c;
    CHECK_EQ(gni_ecies_hs_feed(p.i, (const uint8_t *)"x", 1, &c, T0), GN_EPEERID); /* sticky */
    /* the peer actually reached is reported */
    gn_peer_id got;
    uint8_t got_key[GN_ED25519_PUBLICKEYBYTES];
    CHECK_OK(gni_ecies_hs_mismatched_peer(p.i, &got, got_key));
    CHECK(gn_peer_id_equal(&got, &pid2));
    CHECK_EQ(gni_ecies_hs_mismatched_peer(p.r, &got, got_key), GN_ESTATE);
    pair_fini(&p);

    /* Responder expects someone else. */
    pair_init(&p, NULL, &wrong, gn_slice_of(NULL, 0), gn_slice_of(NULL, 0));
    CHECK_EQ(run_hs(&p, 4096, 4096, &who), GN_EPEERID);
    CHECK_EQ(who, 'r');
    CHECK_OK(gni_ecies_hs_mismatched_peer(p.r, &got, got_key));
    CHECK(gn_peer_id_equal(&got, &pid1));
    CHECK(gni_ecies_hs_done(p.i));
    CHECK(!gni_ecies_hs_done(p.r));
    pair_fini(&p);
}

/* Result of a handshake where message @which (1..3) is altered by @mutate. Stalls are
 * resolved through the deadline (GN_ETIMEDOUT). */
static int hs_with_mutation(int which, size_t pos, uint8_t mask, size_t trunc, char *who)
{
    pair p;
    uint8_t buf[4096];
    pair_init(&p, NULL, NULL, gn_slice_of(NULL, 0), gn_slice_of(NULL, 0));
    gni_ecies_hs *from = p.i, *to = p.r;
    int rc = 0;
    *who = 0;
    for (int m = 1; m <= 3; m++) {
        size_t n = drain_all(from, buf);
        CHECK(n > 0);
        if (m == which) {
            if (pos < n) {
                buf[pos] ^= mask;
            }
            if (trunc) {
                n = trunc < n ? n - trunc : 0;
            }
        }
        size_t used = 0;
        rc = feed_chunks(to, buf, n, 3, &used);
        if (rc < 0) {
            *who = to == p.i ? 'i' : 'r';
            break;
        }
        if (gni_ecies_hs_pending(to) == 0) {
            *who = to == p.i ? 'i' : 'r';
            if (gni_ecies_hs_done(to)) {
                rc = 0;
                break;
            }
            /* the receiver is still waiting: a stall, ended by the deadline */
            CHECK_OK(gni_ecies_hs_expire(to, T0 + GN_S));
            CHECK_EQ(gni_ecies_hs_deadline(to), T0 + GNI_ECIES_DEFAULT_TIMEOUT);
            rc = gni_ecies_hs_expire(to, T0 + GNI_ECIES_DEFAULT_TIMEOUT);
            break;
        }
        gni_ecies_hs *t = from;
        from = to;
        to = t;
    }
    CHECK(!(rc == 0 && which != 0 && gni_ecies_hs_done(p.r) && mask));
    pair_fini(&p);
    return rc;
}

GN_TEST(handshake_tamper_every_byte)
{
    static const uint8_t masks[] = {0x01, 0x80, 0xff};
    static const size_t lens[4] = {0, 36, 150, 116};
    for (int which = 1; which <= 3; which++) {
        for (size_t pos = 0; pos < lens[which]; pos++) {
            for (size_t k = 0; k < sizeof masks; k++) {
                char who;
                int rc = hs_with_mutation(which, pos, masks[k], 0, &who);
                if (pos < 2) {
                    /* length prefix: too long, too short, or a stall until the deadline */
                    CHECK(rc == GN_EFRAMESIZE || rc == GN_EPROTO || rc == GN_ETIMEDOUT);
                } else if (which < 3 && pos < 4) {
                    CHECK_EQ(rc, GN_EVERSION);
                } else {
                    /* E_i, E_r or ciphertext: detected by the initiator (msg1, msg2) or
                     * the responder (msg3) as an AEAD failure. */
                    CHECK_EQ(rc, GN_EDECRYPT);
                    CHECK_EQ(who, which == 2 || which == 1 ? 'i' : 'r');
                }
            }
        }
    }
}

GN_TEST(handshake_truncation_and_timeout)
{
    static const size_t lens[4] = {0, 36, 150, 116};
    for (int which = 1; which <= 3; which++) {
        for (size_t cut = 1; cut <= lens[which]; cut++) {
            char who;
            CHECK_EQ(hs_with_mutation(which, 0, 0, cut, &who), GN_ETIMEDOUT);
            CHECK_EQ(who, which == 2 ? 'i' : 'r');
        }
    }
    /* Feeding after the deadline fails too; custom timeout is honoured. */
    gn_identity *id;
    CHECK_OK(gn_identity_from_int_seed(1, &id));
    gni_ecies_config c = {.initiator = false, .identity = id, .rng = gn_rng_system(),
                          .timeout = 5 * GN_S};
    gni_ecies_hs *hs;
    CHECK_OK(gni_ecies_hs_new(&c, T0, &hs));
    CHECK_EQ(gni_ecies_hs_deadline(hs), T0 + 5 * GN_S);
    size_t used;
    CHECK_EQ(gni_ecies_hs_feed(hs, (const uint8_t *)"\x00", 1, &used, T0 + 5 * GN_S),
             GN_ETIMEDOUT);
    CHECK_EQ(gni_ecies_hs_deadline(hs), GN_TIME_INFINITY);
    gni_ecies_hs_free(hs);
    gn_identity_free(id);
}

GN_TEST(handshake_version_suite_length)
{
    gn_identity *id;
    CHECK_OK(gn_identity_from_int_seed(2, &id));
    gni_ecies_config c = {.initiator = false, .identity = id, .rng = gn_rng_system()};
    struct {
        const char *hex;
        int err;
    } cases[] = {
        {"00220201", GN_EVERSION},  /* version 2 */
        {"00220102", GN_EVERSION},  /* suite 2 */
        {"ffff0201", GN_EVERSION},  /* version checked before the length */
        {"00230101", GN_EFRAMESIZE},
        {"ffff0101", GN_EFRAMESIZE},
        {"00210101", GN_EPROTO},
        {"0001", GN_EPROTO},        /* too short to hold a version */
        {"0000", GN_EPROTO},
        /* low-order ephemeral key (all zero): X25519 output is zero */
        {"00220101" "0000000000000000000000000000000000000000000000000000000000000000",
         GN_EBADKEY},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        uint8_t in[64];
        size_t n = unhex(cases[k].hex, in, sizeof in), used;
        gni_ecies_hs *hs;
        CHECK_OK(gni_ecies_hs_new(&c, T0, &hs));
        CHECK_EQ(gni_ecies_hs_feed(hs, in, n, &used, T0), cases[k].err);
        CHECK_EQ(gni_ecies_hs_error(hs), cases[k].err);
        gni_ecies_hs_free(hs);
    }
    /* A configured message limit below the message size gives GN_EFRAMESIZE. */
    c.max_msg = 20;
    gni_ecies_hs *hs;
    CHECK_OK(gni_ecies_hs_new(&c, T0, &hs));
    size_t used;
    CHECK_EQ(gni_ecies_hs_feed(hs, (const uint8_t *)"\x00\x22\x01\x01", 4, &used, T0),
             GN_EFRAMESIZE);
    gni_ecies_hs_free(hs);
    /* Bad configs. */
    uint8_t bad_ext[3] = {0x01, 0x00, 0x05};
    c.max_msg = 0;
    c.ext = gn_slice_of(bad_ext, sizeof bad_ext);
    CHECK_EQ(gni_ecies_hs_new(&c, T0, &hs), GN_EINVAL);
    c.ext = gn_slice_of(NULL, 0);
    c.identity = NULL;
    CHECK_EQ(gni_ecies_hs_new(&c, T0, &hs), GN_EINVAL);
    gn_identity_free(id);
}

GN_TEST(handshake_extensions)
{
    uint8_t ei[] = {0x80, 0x00, 0x03, 'a', 'b', 'c', 0x81, 0x00, 0x00};
    uint8_t er[GNI_ECIES_MAX_EXT];
    er[0] = 0x90;
    er[1] = (uint8_t)((GNI_ECIES_MAX_EXT - 3) >> 8);
    er[2] = (uint8_t)(GNI_ECIES_MAX_EXT - 3);
    for (size_t k = 3; k < sizeof er; k++) {
        er[k] = (uint8_t)k;
    }
    pair p;
    pair_init(&p, NULL, NULL, gn_slice_of(ei, sizeof ei), gn_slice_of(er, sizeof er));
    char who;
    CHECK_OK(run_hs(&p, 100, 4096, &who));
    gni_ecies_result ri, rr;
    CHECK_OK(gni_ecies_hs_result(p.i, &ri));
    CHECK_OK(gni_ecies_hs_result(p.r, &rr));
    CHECK_EQ(ri.remote_ext_len, sizeof er);
    CHECK_MEM(ri.remote_ext, er, sizeof er);
    CHECK_EQ(rr.remote_ext_len, sizeof ei);
    CHECK_MEM(rr.remote_ext, ei, sizeof ei);
    pair_fini(&p);
    /* An initiator that limits messages below the responder's msg2 size. */
    gn_identity *a, *b;
    CHECK_OK(gn_identity_from_int_seed(1, &a));
    CHECK_OK(gn_identity_from_int_seed(2, &b));
    gni_ecies_config ci = {.initiator = true, .identity = a, .rng = gn_rng_system(),
                           .max_msg = 1000};
    gni_ecies_config cr = {.initiator = false, .identity = b, .rng = gn_rng_system(),
                           .ext = gn_slice_of(er, sizeof er)};
    memset(&p, 0, sizeof p);
    CHECK_OK(gni_ecies_hs_new(&ci, T0, &p.i));
    CHECK_OK(gni_ecies_hs_new(&cr, T0, &p.r));
    CHECK_EQ(run_hs(&p, 4096, 4096, &who), GN_EFRAMESIZE);
    CHECK_EQ(who, 'i');
    gni_ecies_hs_free(p.i);
    gni_ecies_hs_free(p.r);
    gn_identity_free(a);
    gn_identity_free(b);
}

/* Builds a msg2 by hand from the spec (section 5, 7) for an initiator's msg1, with
 * deliberate defects, to reach the checks behind the AEAD. */
enum forge_mode { FORGE_OK, FORGE_BADSIG, FORGE_BADLEN, FORGE_BADTLV, FORGE_WRONGKEY };

static size_t forge_msg2(const uint8_t *msg1, const gn_identity *id, enum forge_mode mode,
                         uint8_t *out)
{
    static const char prologue[] = "\x12/golem/ecies/1.0.0";
    uint8_t e_sk[32], dh[32], prk[32], k2[32], h2[32], h2s[32];
    memset(e_sk, 0x55, sizeof e_sk);
    crypto_hash_sha256_state th;
    crypto_hash_sha256_init(&th);
    crypto_hash_sha256_update(&th, (const uint8_t *)prologue, sizeof prologue - 1);
    crypto_hash_sha256_update(&th, msg1 + 2, 34);
    out[2] = 1;
    out[3] = 1;
    crypto_scalarmult_curve25519_base(out + 4, e_sk);
    crypto_hash_sha256_update(&th, out + 2, 34);
    crypto_hash_sha256_state snap = th;
    crypto_hash_sha256_final(&snap, h2);
    CHECK_EQ(crypto_scalarmult_curve25519(dh, e_sk, msg1 + 4), 0);
    gni_hkdf_sha256_extract(prk, h2, 32, dh, 32);
    CHECK_OK(gni_hkdf_sha256_expand(k2, 32, prk, 32, (const uint8_t *)"golem-ecies/1 hs r2i", 20));
    uint8_t pt[256];
    size_t n = 0;
    gn_identity_public_key(id, pt);
    if (mode == FORGE_WRONGKEY) {
        gn_identity *other;
        CHECK_OK(gn_identity_from_int_seed(9, &other));
        gn_identity_public_key(other, pt);
        gn_identity_free(other);
    }
    size_t ext_len = mode == FORGE_BADTLV ? 4 : 0;
    pt[32] = 0;
    pt[33] = (uint8_t)(mode == FORGE_BADLEN ? 1 : ext_len);
    if (mode == FORGE_BADTLV) {
        memcpy(pt + 34, "\x01\x00\x05" "a", 4); /* record claims 5 bytes, has 1 */
    }
    n = 34 + ext_len;
    crypto_hash_sha256_update(&th, pt, n);
    snap = th;
    crypto_hash_sha256_final(&snap, h2s);
    const char *ctx = mode == FORGE_BADSIG ? "golem-ecies/1 initiator signature"
                                           : "golem-ecies/1 responder signature";
    uint8_t tbs[128];
    size_t cl = strlen(ctx);
    memcpy(tbs, ctx, cl);
    memcpy(tbs + cl, h2s, 32);
    gn_identity_sign(id, tbs, cl + 32, pt + n);
    n += 64;
    uint8_t nonce[12] = {0};
    unsigned long long clen;
    crypto_aead_chacha20poly1305_ietf_encrypt(out + 36, &clen, pt, n, h2, 32, NULL, nonce, k2);
    size_t body = 34 + (size_t)clen;
    out[0] = (uint8_t)(body >> 8);
    out[1] = (uint8_t)body;
    return 2 + body;
}

GN_TEST(handshake_forged_msg2)
{
    static const struct {
        enum forge_mode mode;
        int err;
    } cases[] = {
        {FORGE_OK, 0},
        {FORGE_BADSIG, GN_EBADSIG},   /* signed under the initiator's context */
        {FORGE_WRONGKEY, GN_EBADSIG}, /* ID_r is not the signing key */
        {FORGE_BADLEN, GN_EPROTO},
        {FORGE_BADTLV, GN_EPROTO},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        pair p;
        uint8_t m1[64], m2[512];
        pair_init(&p, NULL, NULL, gn_slice_of(NULL, 0), gn_slice_of(NULL, 0));
        size_t n1 = drain_all(p.i, m1);
        CHECK_EQ(n1, 36);
        size_t n2 = forge_msg2(m1, p.idr, cases[k].mode, m2);
        size_t used;
        CHECK_EQ(feed_chunks(p.i, m2, n2, n2, &used), cases[k].err);
        if (cases[k].err == 0) {
            CHECK(gni_ecies_hs_done(p.i));
            CHECK(gni_ecies_hs_pending(p.i) > 0); /* msg3 */
        } else {
            CHECK_EQ(gni_ecies_hs_pending(p.i), 0);
        }
        pair_fini(&p);
    }
}

GN_TEST(handshake_leftover_is_transport)
{
    /* msg3 and the initiator's first frame arrive in one read. */
    pair p;
    uint8_t buf[4096], wire[4096];
    pair_init(&p, NULL, NULL, gn_slice_of(NULL, 0), gn_slice_of(NULL, 0));
    size_t n = drain_all(p.i, buf), used;
    CHECK_OK(feed_chunks(p.r, buf, n, n, &used));
    n = drain_all(p.r, buf);
    /* msg2 followed by garbage: the initiator must stop at msg2's end. */
    memcpy(buf + n, "XYZ", 3);
    CHECK_OK(feed_chunks(p.i, buf, n + 3, n + 3, &used));
    CHECK_EQ(used, n);
    n = drain_all(p.i, wire);
    gni_ecies_session *si, *sr;
    CHECK_OK(gni_ecies_session_new(p.i, &si));
    gn_buf b;
    gn_buf_init(&b, wire + n, sizeof wire - n);
    CHECK_EQ(gni_ecies_session_send(si, (const uint8_t *)"early", 5, &b), 5);
    size_t total = n + gn_buf_len(&b);
    CHECK_OK(gni_ecies_hs_feed(p.r, wire, total, &used, T0));
    CHECK_EQ(used, n);
    CHECK(gni_ecies_hs_done(p.r));
    CHECK_OK(gni_ecies_session_new(p.r, &sr));
    uint8_t plain[64];
    gn_buf o;
    gn_buf_init(&o, plain, sizeof plain);
    size_t c;
    CHECK_EQ(gni_ecies_session_recv(sr, wire + used, total - used, &c, &o), 5);
    CHECK_EQ(c, total - used);
    CHECK_MEM(plain, "early", 5);
    gni_ecies_session_free(si);
    gni_ecies_session_free(sr);
    pair_fini(&p);
}

/* ---- transport ---------------------------------------------------------------------- */

static void mk_sessions(gni_ecies_session **a, gni_ecies_session **b)
{
    uint8_t k1[32], k2[32];
    unhex(kat_ki2r, k1, sizeof k1);
    unhex(kat_kr2i, k2, sizeof k2);
    CHECK_OK(gni_ecies_session_from_keys(k1, k2, a));
    CHECK_OK(gni_ecies_session_from_keys(k2, k1, b));
}

/* Sends @len bytes a->b with random input splits, receive splits and output room. */
static void transfer(gni_ecies_session *a, gni_ecies_session *b, const uint8_t *data, size_t len,
                     uint8_t *wire, size_t wire_cap, uint8_t *got)
{
    size_t sent = 0, wlen = 0, rpos = 0, glen = 0;
    for (size_t guard = 0; guard < 1000000 && glen < len; guard++) {
        /* (random values in variables: TMIN evaluates its arguments twice) */
        size_t r_room = 1 + xs_next() % 70000, r_send = 1 + xs_next() % 100000;
        size_t r_in = xs_next() % 20000, r_out = xs_next() % 30000;
        if (sent < len && wlen < wire_cap) {
            gn_buf w;
            gn_buf_init(&w, wire + wlen, TMIN(wire_cap - wlen, r_room));
            size_t n = TMIN(len - sent, r_send);
            long rc = gni_ecies_session_send(a, data + sent, n, &w);
            CHECK(rc >= 0 || rc == GN_ENOSPC);
            if (rc > 0) {
                sent += (size_t)rc;
                wlen += gn_buf_len(&w);
            }
        }
        size_t in = TMIN(wlen - rpos, r_in);
        gn_buf o;
        gn_buf_init(&o, got + glen, TMIN(len - glen, r_out));
        size_t c = 0;
        long rc = gni_ecies_session_recv(b, wire + rpos, in, &c, &o);
        CHECK(rc >= 0);
        CHECK_EQ((size_t)rc, gn_buf_len(&o));
        rpos += c;
        glen += (size_t)rc;
        if (rpos == wlen) {
            rpos = wlen = 0;
        } else if (rpos > wire_cap / 2) {
            memmove(wire, wire + rpos, wlen - rpos);
            wlen -= rpos;
            rpos = 0;
        }
    }
    CHECK_EQ(glen, len);
    CHECK_MEM(got, data, len);
}

GN_TEST(transport_large_fragmented)
{
    gni_ecies_session *a, *b;
    mk_sessions(&a, &b);
    size_t len = 3u << 20;
    uint8_t *data = malloc(len), *got = malloc(len), *wire = malloc(1u << 20);
    CHECK(data && got && wire);
    for (size_t k = 0; k < len; k++) {
        data[k] = (uint8_t)(k * 7 + (k >> 11));
    }
    transfer(a, b, data, len, wire, 1u << 20, got);
    transfer(b, a, data, len / 3, wire, 1u << 20, got);
    /* Small frames: 100-byte payload limit. */
    CHECK_OK(gni_ecies_session_set_max_payload(a, 100));
    CHECK_EQ(gni_ecies_session_set_max_payload(a, GNI_ECIES_MAX_PAYLOAD + 1), GN_EINVAL);
    gn_buf w;
    gn_buf_init(&w, wire, 1u << 20);
    CHECK_EQ(gni_ecies_session_send(a, data, 10000, &w), 10000);
    CHECK_EQ(gn_buf_len(&w), 10000 + 100 * GNI_ECIES_FRAME_OVERHEAD);
    gn_buf o;
    gn_buf_init(&o, got, len);
    size_t c;
    CHECK_EQ(gni_ecies_session_recv(b, wire, gn_buf_len(&w), &c, &o), 10000);
    CHECK_MEM(got, data, 10000);
    /* Maximum frame is exactly 65535 + 2 bytes on the wire. */
    CHECK_OK(gni_ecies_session_set_max_payload(a, GNI_ECIES_MAX_PAYLOAD));
    gn_buf_init(&w, wire, 1u << 20);
    CHECK_EQ(gni_ecies_session_send(a, data, GNI_ECIES_MAX_PAYLOAD, &w), GNI_ECIES_MAX_PAYLOAD);
    CHECK_EQ(gn_buf_len(&w), 65537);
    CHECK_EQ(wire[0], 0xff);
    CHECK_EQ(wire[1], 0xff);
    /* Output room limits: only whole frames, GN_ENOSPC below one byte of payload. */
    gn_buf_init(&w, wire, GNI_ECIES_FRAME_OVERHEAD);
    CHECK_EQ(gni_ecies_session_send(a, data, 5, &w), GN_ENOSPC);
    gn_buf_init(&w, wire, GNI_ECIES_FRAME_OVERHEAD + 3);
    CHECK_EQ(gni_ecies_session_send(a, data, 5, &w), 3);
    free(data);
    free(got);
    free(wire);
    gni_ecies_session_free(a);
    gni_ecies_session_free(b);
}

/* Produces three frames (payloads "one", "two", "three") from a fresh a. */
static size_t three_frames(gni_ecies_session *a, uint8_t *wire, size_t off[4])
{
    gn_buf w;
    gn_buf_init(&w, wire, 512);
    static const char *p[3] = {"one", "two", "three"};
    off[0] = 0;
    for (int k = 0; k < 3; k++) {
        CHECK_EQ(gni_ecies_session_send(a, (const uint8_t *)p[k], strlen(p[k]), &w),
                 (long)strlen(p[k]));
        off[k + 1] = gn_buf_len(&w);
    }
    return gn_buf_len(&w);
}

static long recv_all(gni_ecies_session *b, const uint8_t *in, size_t len, uint8_t *out,
                     size_t cap)
{
    gn_buf o;
    gn_buf_init(&o, out, cap);
    size_t c;
    return gni_ecies_session_recv(b, in, len, &c, &o);
}

GN_TEST(transport_replay_reorder_truncate)
{
    uint8_t wire[512], out[512];
    size_t off[4];
    gni_ecies_session *a, *b;

    /* Replay of frame 0 after frame 0. */
    mk_sessions(&a, &b);
    three_frames(a, wire, off);
    CHECK_EQ(recv_all(b, wire, off[1], out, sizeof out), 3);
    CHECK_EQ(recv_all(b, wire, off[1], out, sizeof out), GN_EREPLAY);
    CHECK_EQ(recv_all(b, wire + off[1], off[2] - off[1], out, sizeof out), GN_EREPLAY);
    gni_ecies_session_free(a);
    gni_ecies_session_free(b);

    /* Reorder: frame 1 before frame 0; dropped frame: 0 then 2. */
    mk_sessions(&a, &b);
    three_frames(a, wire, off);
    CHECK_EQ(recv_all(b, wire + off[1], off[2] - off[1], out, sizeof out), GN_EREPLAY);
    gni_ecies_session_free(b);
    uint8_t k1[32], k2[32];
    unhex(kat_ki2r, k1, sizeof k1);
    unhex(kat_kr2i, k2, sizeof k2);
    CHECK_OK(gni_ecies_session_from_keys(k2, k1, &b));
    CHECK_EQ(recv_all(b, wire, off[1], out, sizeof out), 3);
    CHECK_EQ(recv_all(b, wire + off[2], off[3] - off[2], out, sizeof out), GN_EREPLAY);
    gni_ecies_session_free(a);
    gni_ecies_session_free(b);

    /* Truncated frame at EOF, truncated stream, clean close, data after close. */
    for (size_t cut = 1; cut < off[1]; cut++) {
        mk_sessions(&a, &b);
        three_frames(a, wire, off);
        CHECK_EQ(recv_all(b, wire, off[1] - cut, out, sizeof out), 0);
        CHECK(gni_ecies_session_partial(b));
        CHECK_EQ(gni_ecies_session_recv_eof(b), GN_EBADFRAME);
        gni_ecies_session_free(a);
        gni_ecies_session_free(b);
    }
    mk_sessions(&a, &b);
    size_t n = three_frames(a, wire, off);
    CHECK_EQ(recv_all(b, wire, n, out, sizeof out), 11);
    CHECK_MEM(out, "onetwothree", 11);
    CHECK_EQ(gni_ecies_session_recv_eof(b), GN_EEOF);
    gni_ecies_session_free(b);
    CHECK_OK(gni_ecies_session_from_keys(k2, k1, &b));
    gn_buf w;
    gn_buf_init(&w, wire + n, sizeof wire - n);
    CHECK_OK(gni_ecies_session_send_close(a, &w));
    CHECK_EQ(gni_ecies_session_send_close(a, &w), GN_ESTATE);
    CHECK_EQ(gni_ecies_session_send(a, (const uint8_t *)"x", 1, &w), GN_ESTATE);
    size_t total = n + GNI_ECIES_FRAME_OVERHEAD;
    CHECK_EQ(recv_all(b, wire, total, out, sizeof out), 11);
    CHECK(gni_ecies_session_rx_closed(b));
    CHECK_OK(gni_ecies_session_recv_eof(b));
    CHECK_EQ(recv_all(b, wire, 1, out, sizeof out), GN_EPROTO);
    gni_ecies_session_free(a);
    gni_ecies_session_free(b);
}

GN_TEST(transport_tamper_every_byte)
{
    uint8_t wire[512], out[512];
    size_t off[4];
    for (size_t pos = 0; pos < 40; pos++) { /* frame 0 is 30 bytes, frame 1 starts at 30 */
        for (int mask = 1; mask < 256; mask <<= 1) {
            gni_ecies_session *a, *b;
            mk_sessions(&a, &b);
            size_t n = three_frames(a, wire, off);
            CHECK_EQ(off[1], 30);
            wire[pos] ^= (uint8_t)mask;
            long rc = recv_all(b, wire, n, out, sizeof out);
            if (pos == 0 || pos == 1 || pos == 30 || pos == 31) {
                /* length: too short, a mis-split stream, or a stall */
                if (rc >= 0) {
                    CHECK(rc <= 3);
                    CHECK(gni_ecies_session_recv_eof(b) == GN_EBADFRAME);
                } else {
                    CHECK(rc == GN_EFRAMESIZE || rc == GN_EDECRYPT || rc == GN_EREPLAY);
                }
            } else if ((pos >= 2 && pos < 10) || (pos >= 32 && pos < 40)) {
                CHECK_EQ(rc, GN_EREPLAY);
            } else {
                CHECK_EQ(rc, GN_EDECRYPT);
            }
            gni_ecies_session_free(a);
            gni_ecies_session_free(b);
        }
    }
}

GN_TEST(transport_bad_frames)
{
    uint8_t k1[32], k2[32], out[64];
    unhex(kat_ki2r, k1, sizeof k1);
    unhex(kat_kr2i, k2, sizeof k2);
    gni_ecies_session *b;
    /* len below 25 */
    CHECK_OK(gni_ecies_session_from_keys(k2, k1, &b));
    CHECK_EQ(recv_all(b, (const uint8_t *)"\x00\x18", 2, out, sizeof out), GN_EFRAMESIZE);
    CHECK_EQ(recv_all(b, (const uint8_t *)"\x00\x00", 2, out, sizeof out), GN_EFRAMESIZE);
    gni_ecies_session_free(b);
    /* unknown type / non-empty CLOSE: forge with the sender key */
    for (int k = 0; k < 2; k++) {
        uint8_t f[64] = {0};
        size_t plen = k == 0 ? 1 : 2;
        uint8_t pt[2] = {(uint8_t)(k == 0 ? 0x02 : 0x01), 'x'};
        f[0] = 0;
        f[1] = (uint8_t)(8 + plen + 16);
        uint8_t nonce[12] = {0};
        unsigned long long clen;
        crypto_aead_chacha20poly1305_ietf_encrypt(f + 10, &clen, pt, plen, f, 10, NULL, nonce,
                                                  k1);
        CHECK_OK(gni_ecies_session_from_keys(k2, k1, &b));
        CHECK_EQ(recv_all(b, f, 10 + (size_t)clen, out, sizeof out), GN_EPROTO);
        CHECK_EQ(recv_all(b, f, 0, out, sizeof out), GN_EPROTO); /* sticky */
        gni_ecies_session_free(b);
    }
}

GN_TEST(transport_rekey)
{
    uint8_t wire[8192], out[8192], exp[128];
    gni_ecies_session *a, *b;

    /* KAT: with a 1-frame limit, frame 1 uses HKDF-Expand(K, "golem-ecies/1 rekey"). */
    mk_sessions(&a, &b);
    gni_ecies_session_set_rekey_limits(a, 1, 0);
    gn_buf w;
    gn_buf_init(&w, wire, sizeof wire);
    CHECK_EQ(gni_ecies_session_send(a, (const uint8_t *)"ping", 4, &w), 4);
    size_t f0 = gn_buf_len(&w);
    CHECK_EQ(gni_ecies_session_send(a, (const uint8_t *)"after rekey", 11, &w), 11);
    CHECK_EQ(gn_buf_len(&w) - f0, unhex(kat_rekeyed, exp, sizeof exp));
    CHECK_MEM(wire + f0, exp, gn_buf_len(&w) - f0);
    gni_ecies_session_free(a);
    gni_ecies_session_free(b);

    /* Frame threshold 3: 10 frames -> 3 rekeys on both sides, data intact. */
    mk_sessions(&a, &b);
    gni_ecies_session_set_rekey_limits(a, 3, 0);
    gni_ecies_session_set_rekey_limits(b, 3, 0);
    CHECK_OK(gni_ecies_session_set_max_payload(a, 10));
    uint8_t data[100];
    for (int k = 0; k < 100; k++) {
        data[k] = (uint8_t)k;
    }
    gn_buf_init(&w, wire, sizeof wire);
    CHECK_EQ(gni_ecies_session_send(a, data, 100, &w), 100);
    uint64_t te, re;
    gni_ecies_session_epochs(a, &te, NULL);
    CHECK_EQ(te, 3);
    CHECK_EQ(recv_all(b, wire, gn_buf_len(&w), out, sizeof out), 100);
    CHECK_MEM(out, data, 100);
    gni_ecies_session_epochs(b, NULL, &re);
    CHECK_EQ(re, 3);
    gni_ecies_session_free(a);
    gni_ecies_session_free(b);

    /* Byte threshold 25 with 10-byte frames: rekey after every 3rd frame as well. */
    mk_sessions(&a, &b);
    gni_ecies_session_set_rekey_limits(a, 0, 25);
    gni_ecies_session_set_rekey_limits(b, 0, 25);
    CHECK_OK(gni_ecies_session_set_max_payload(a, 10));
    gn_buf_init(&w, wire, sizeof wire);
    CHECK_EQ(gni_ecies_session_send(a, data, 100, &w), 100);
    gni_ecies_session_epochs(a, &te, NULL);
    CHECK_EQ(te, 3);
    /* Deliver byte by byte. */
    size_t got = 0;
    for (size_t k = 0; k < gn_buf_len(&w); k++) {
        long rc = recv_all(b, wire + k, 1, out + got, sizeof out - got);
        CHECK(rc >= 0);
        got += (size_t)rc;
    }
    CHECK_EQ(got, 100);
    CHECK_MEM(out, data, 100);
    gni_ecies_session_epochs(b, NULL, &re);
    CHECK_EQ(re, 3);
    gni_ecies_session_free(a);
    gni_ecies_session_free(b);

    /* Mismatched thresholds desynchronise: the receiver fails authentication. */
    mk_sessions(&a, &b);
    gni_ecies_session_set_rekey_limits(a, 2, 0);
    gn_buf_init(&w, wire, sizeof wire);
    CHECK_OK(gni_ecies_session_set_max_payload(a, 10));
    CHECK_EQ(gni_ecies_session_send(a, data, 30, &w), 30);
    CHECK_EQ(recv_all(b, wire, gn_buf_len(&w), out, sizeof out), GN_EDECRYPT);
    gni_ecies_session_free(a);
    gni_ecies_session_free(b);
}

GN_TEST(transport_one_frame_api)
{
    gni_ecies_session *a, *b;
    mk_sessions(&a, &b);
    uint8_t wire[256], exp[64];
    CHECK_EQ(gni_ecies_session_seal_one(a, (const uint8_t *)"ping", 4, wire), 31);
    CHECK_EQ(unhex(kat_ping, exp, sizeof exp), 31);
    CHECK_MEM(wire, exp, 31);
    CHECK_EQ(gni_ecies_session_seal_one(a, NULL, 0, wire + 31), 27);
    const uint8_t *pl;
    size_t pn, c;
    CHECK_OK(gni_ecies_session_open_one(b, wire, 20, &c, &pl, &pn));
    CHECK_EQ(c, 20);
    CHECK(pl == NULL);
    CHECK(gni_ecies_session_partial(b));
    CHECK_OK(gni_ecies_session_open_one(b, wire + 20, 38, &c, &pl, &pn));
    CHECK_EQ(c, 11); /* stops at the end of the first frame */
    CHECK(pl != NULL);
    CHECK_EQ(pn, 4);
    CHECK_MEM(pl, "ping", 4);
    CHECK_OK(gni_ecies_session_open_one(b, wire + 31, 27, &c, &pl, &pn));
    CHECK_EQ(c, 27);
    CHECK(pl != NULL);
    CHECK_EQ(pn, 0);
    CHECK(!gni_ecies_session_rx_closed(b));
    CHECK(!gni_ecies_session_partial(b));
    gni_ecies_session_free(a);
    gni_ecies_session_free(b);
}

GN_TEST_MAIN(GN_T(hkdf_rfc5869), GN_T(handshake_kat), GN_T(handshake_agree_system_rng),
             GN_T(handshake_byte_by_byte), GN_T(handshake_expected_peer),
             GN_T(handshake_tamper_every_byte), GN_T(handshake_truncation_and_timeout),
             GN_T(handshake_version_suite_length), GN_T(handshake_extensions),
             GN_T(handshake_forged_msg2), GN_T(handshake_leftover_is_transport),
             GN_T(transport_large_fragmented), GN_T(transport_replay_reorder_truncate),
             GN_T(transport_tamper_every_byte), GN_T(transport_bad_frames),
             GN_T(transport_rekey), GN_T(transport_one_frame_api))
