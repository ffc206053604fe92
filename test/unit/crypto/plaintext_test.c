/* plaintext/2.0.0 core: exchange, checks and known bytes. Spec: libp2p/specs plaintext. */
#include "plaintext.h"

#include "golemnet/golemnet.h"
#include "gn_test.h"

static int exchange(gni_plaintext *from, gni_plaintext *to, uint8_t *wire, size_t *wire_len)
{
    uint8_t buf[512];
    gn_buf out;
    gn_buf_init(&out, buf, sizeof buf);
    int n = gni_plaintext_drain(from, &out);
    if (n <= 0)
        return n < 0 ? n : GN_ESTATE;
    memcpy(wire, buf, (size_t)n);
    *wire_len = (size_t)n;
    size_t consumed = 0;
    int rc = gni_plaintext_feed(to, buf, (size_t)n, &consumed);
    if (rc < 0)
        return rc;
    return consumed == (size_t)n ? 0 : GN_EINTERNAL;
}

GN_TEST(exchange_both_ways_and_known_bytes)
{
    gn_identity *a, *b;
    CHECK_OK(gn_identity_from_int_seed(1, &a));
    CHECK_OK(gn_identity_from_int_seed(2, &b));
    gn_peer_id pa, pb;
    gn_identity_peer_id(a, &pa);
    gn_identity_peer_id(b, &pb);
    gni_plaintext *ca, *cb;
    CHECK_OK(gni_plaintext_new(a, &pb, &ca));
    CHECK_OK(gni_plaintext_new(b, NULL, &cb));
    uint8_t wire[512];
    size_t wl;
    CHECK_OK(exchange(ca, cb, wire, &wl));
    /* varint(78) || Exchange{1: 38-byte peer id, 2: PublicKey{1: 1, 2: 32 bytes}} */
    CHECK_EQ(wl, 79);
    CHECK_EQ(wire[0], 78);
    CHECK_EQ(wire[1], 0x0a);
    CHECK_EQ(wire[2], 38);
    CHECK_MEM(wire + 3, pa.bytes, 38);
    CHECK_EQ(wire[41], 0x12);
    CHECK_EQ(wire[42], 36);
    CHECK_EQ(wire[43], 0x08);
    CHECK_EQ(wire[44], 0x01);
    CHECK_EQ(wire[45], 0x12);
    CHECK_EQ(wire[46], 32);
    CHECK_EQ(gni_plaintext_status(cb), 0); /* b has not sent yet */
    CHECK_OK(exchange(cb, ca, wire, &wl));
    CHECK_EQ(gni_plaintext_status(ca), 1);
    CHECK_EQ(gni_plaintext_status(cb), 1);
    gn_peer_id got;
    uint8_t pub[32], want[32];
    gni_plaintext_remote(ca, &got, pub);
    CHECK(gn_peer_id_equal(&got, &pb));
    gn_identity_public_key(b, want);
    CHECK_MEM(pub, want, 32);
    gni_plaintext_free(ca);
    gni_plaintext_free(cb);
    gn_identity_free(a);
    gn_identity_free(b);
}

GN_TEST(partial_input_waits_and_leftover_stays)
{
    gn_identity *a, *b;
    CHECK_OK(gn_identity_from_int_seed(1, &a));
    CHECK_OK(gn_identity_from_int_seed(2, &b));
    gni_plaintext *ca, *cb;
    CHECK_OK(gni_plaintext_new(a, NULL, &ca));
    CHECK_OK(gni_plaintext_new(b, NULL, &cb));
    uint8_t buf[600];
    gn_buf out;
    gn_buf_init(&out, buf, sizeof buf);
    int n = gni_plaintext_drain(ca, &out);
    CHECK(n > 0);
    memcpy(buf + n, "app-data", 8);
    size_t consumed;
    for (int k = 0; k < n; k++) {
        CHECK_OK(gni_plaintext_feed(cb, buf, (size_t)k, &consumed));
        CHECK_EQ(consumed, 0);
    }
    CHECK_OK(gni_plaintext_feed(cb, buf, (size_t)n + 8, &consumed));
    CHECK_EQ(consumed, n); /* the application bytes are left for the stream */
    CHECK_EQ(gni_plaintext_feed(cb, buf, 1, &consumed), GN_ESTATE);
    gni_plaintext_free(ca);
    gni_plaintext_free(cb);
    gn_identity_free(a);
    gn_identity_free(b);
}

GN_TEST(bad_input_codes)
{
    gn_identity *a, *b, *c;
    CHECK_OK(gn_identity_from_int_seed(1, &a));
    CHECK_OK(gn_identity_from_int_seed(2, &b));
    CHECK_OK(gn_identity_from_int_seed(3, &c));
    gn_peer_id pc;
    gn_identity_peer_id(c, &pc);
    uint8_t good[600];
    gn_buf out;
    gni_plaintext *ca;
    CHECK_OK(gni_plaintext_new(a, NULL, &ca));
    gn_buf_init(&out, good, sizeof good);
    int n = gni_plaintext_drain(ca, &out);
    CHECK(n > 0);
    gni_plaintext_free(ca);

    struct {
        const char *what;
        int expect;
    } cases[] = {{"oversize length", GN_EFRAMESIZE}, {"bad varint", GN_EPARSE},
                 {"garbage protobuf", GN_EPROTO},    {"id of another key", GN_EPROTO},
                 {"unexpected peer", GN_EPEERID},    {"missing key", GN_EPROTO}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gni_plaintext *cb;
        uint8_t in[600];
        size_t len = (size_t)n;
        memcpy(in, good, len);
        const gn_peer_id *expect = NULL;
        switch (i) {
        case 0: in[0] = 0x81; in[1] = 0x40; len = 2; break; /* 8193 bytes */
        case 1: memset(in, 0xff, 10); len = 10; break;
        case 2: memset(in + 1, 0xff, len - 1); break;
        case 3: in[10] ^= 0x01; break;                       /* inside the peer id */
        case 4: expect = &pc; break;
        case 5: in[0] = 40; len = 41; break;                 /* only the id field */
        }
        CHECK_OK(gni_plaintext_new(b, expect, &cb));
        size_t consumed = 0;
        int rc = gni_plaintext_feed(cb, in, len, &consumed);
        if (rc != cases[i].expect)
            printf("# %s: got %s\n", cases[i].what, gn_err_name(rc));
        CHECK_EQ(rc, cases[i].expect);
        CHECK_EQ(gni_plaintext_status(cb), cases[i].expect);
        gni_plaintext_free(cb);
    }
    gn_identity_free(a);
    gn_identity_free(b);
    gn_identity_free(c);
}

GN_TEST_MAIN(GN_T(exchange_both_ways_and_known_bytes), GN_T(partial_input_waits_and_leftover_stays),
             GN_T(bad_input_codes))
