/*
 * /libp2p/dcutr wire core (protocols/dcutr/dcutr_msg.c): frames compared
 * with js-libp2p's encoder output (dcutr_kat.h), decode of those frames,
 * the 4 KiB and 16-address bounds, malformed input.
 */
#include "dcutr_msg.h"

#include "gn_test.h"
#include "golemnet/err.h"
#include "golemnet/multiaddr.h"

#include "dcutr_kat.h"
#include "gni.h"

#include <stdio.h>
#include <stdlib.h>

static uint8_t kat_buf[GNI_DCUTR_FRAME_MAX + 16];

static size_t kat(const char *const *hex)
{
    size_t n = 0;
    for (size_t i = 0; hex[i]; i++) {
        long k = gn_test_unhex(hex[i], kat_buf + n, sizeof kat_buf - n);
        CHECK(k > 0);
        n += (size_t)k;
    }
    return n;
}

static gn_multiaddr *ma(const char *s)
{
    gn_multiaddr *m = NULL;
    CHECK_OK(gn_multiaddr_parse(s, &m));
    return m;
}

/* The frame body after its length prefix; checks the prefix. */
static const uint8_t *body_of(const uint8_t *frame, size_t len, size_t *blen)
{
    gni_lp_reader r;
    gni_lp_reader_init(&r, GNI_DCUTR_MSG_MAX);
    size_t used = 0;
    const uint8_t *msg = NULL;
    size_t mlen = 0;
    CHECK_EQ(gni_lp_reader_feed(&r, frame, len, &used, &msg, &mlen), 1);
    CHECK_EQ(used, len);
    *blen = mlen;
    /* the reader's copy lives until clear: return a pointer into @frame */
    gni_lp_reader_clear(&r);
    return frame + (len - mlen);
}

static void check_encode(gni_dcutr_type t, gn_multiaddr **addrs, size_t n,
                         const char *const *hex)
{
    uint8_t out[GNI_DCUTR_FRAME_MAX];
    size_t len = 0;
    size_t want = kat(hex);
    CHECK_OK(gni_dcutr_msg_encode(t, (const gn_multiaddr *const *)addrs, n, out, sizeof out,
                                  &len));
    CHECK_EQ(len, want);
    CHECK_MEM(out, kat_buf, want);
}

GN_TEST(encode_matches_js)
{
    check_encode(GNI_DCUTR_SYNC, NULL, 0, KAT_SYNC);
    check_encode(GNI_DCUTR_CONNECT, NULL, 0, KAT_CONNECT_EMPTY);
    gn_multiaddr *two[2] = {ma("/ip4/1.2.3.4/tcp/4001"), ma("/ip6/2001:db8::1/tcp/4002")};
    check_encode(GNI_DCUTR_CONNECT, two, 2, KAT_CONNECT_TWO);
    gn_multiaddr *big[16];
    char name[300];
    for (int i = 0; i < 16; i++) {
        char host[240];
        memset(host, 'h', 230);
        snprintf(host + 230, sizeof host - 230, "%x", i);
        snprintf(name, sizeof name, "/dns4/%s/tcp/%d", host, 1000 + i);
        big[i] = ma(name);
    }
    /* a body over 127 bytes: a two-byte length prefix */
    check_encode(GNI_DCUTR_CONNECT, big, 16, KAT_CONNECT_BIG);
    CHECK_EQ(kat_buf[0] & 0x80, 0x80);
    for (int i = 0; i < 16; i++) {
        gn_multiaddr_free(big[i]);
    }
    gn_multiaddr_free(two[0]);
    gn_multiaddr_free(two[1]);
}

GN_TEST(decode_js_frames)
{
    gni_dcutr_msg m;
    size_t blen, n = kat(KAT_SYNC);
    const uint8_t *b = body_of(kat_buf, n, &blen);
    CHECK_OK(gni_dcutr_msg_decode(b, blen, &m));
    CHECK_EQ(m.type, GNI_DCUTR_SYNC);
    CHECK_EQ(m.naddrs, 0);
    gni_dcutr_msg_clear(&m);

    n = kat(KAT_CONNECT_TWO);
    b = body_of(kat_buf, n, &blen);
    CHECK_OK(gni_dcutr_msg_decode(b, blen, &m));
    CHECK_EQ(m.type, GNI_DCUTR_CONNECT);
    CHECK_EQ(m.naddrs, 2);
    CHECK_EQ(m.nskipped, 0);
    char s[128];
    CHECK_OK(gn_multiaddr_to_string(m.addrs[0], s, sizeof s));
    CHECK_STR(s, "/ip4/1.2.3.4/tcp/4001");
    CHECK_OK(gn_multiaddr_to_string(m.addrs[1], s, sizeof s));
    CHECK_STR(s, "/ip6/2001:db8::1/tcp/4002");
    gni_dcutr_msg_clear(&m);

    n = kat(KAT_CONNECT_BIG);
    b = body_of(kat_buf, n, &blen);
    CHECK_OK(gni_dcutr_msg_decode(b, blen, &m));
    CHECK_EQ(m.naddrs, 16);
    char big[320];
    CHECK_OK(gn_multiaddr_to_string(m.addrs[15], big, sizeof big));
    CHECK(strstr(big, "hhhf/tcp/1015") != NULL);
    gni_dcutr_msg_clear(&m);
}

/* A raw body: type, then @n ObsAddrs entries of /ip4/1.2.3.4/tcp/4001. */
static size_t raw_body(uint8_t *out, size_t cap, unsigned type, size_t n, bool bad_first)
{
    static const uint8_t a[] = {0x04, 1, 2, 3, 4, 0x06, 0x0f, 0xa1};
    size_t k = 0;
    out[k++] = 0x08;
    if (type >= 128) {
        out[k++] = (uint8_t)(0x80 | (type & 0x7f));
        out[k++] = (uint8_t)(type >> 7);
    } else {
        out[k++] = (uint8_t)type;
    }
    for (size_t i = 0; i < n && k + 10 <= cap; i++) {
        out[k++] = 0x12;
        out[k++] = sizeof a;
        memcpy(out + k, a, sizeof a);
        if (i == 0 && bad_first) {
            out[k] = 0x7f; /* no such protocol code */
        }
        k += sizeof a;
    }
    return k;
}

GN_TEST(decode_bounds)
{
    uint8_t body[GNI_DCUTR_MSG_MAX + 64];
    gni_dcutr_msg m;
    /* 20 addresses, the first malformed: 16 kept, 4 skipped */
    size_t n = raw_body(body, sizeof body, 100, 20, true);
    CHECK_OK(gni_dcutr_msg_decode(body, n, &m));
    CHECK_EQ(m.naddrs, 16);
    CHECK_EQ(m.nskipped, 4);
    gni_dcutr_msg_clear(&m);
    /* 4 KiB is accepted, one byte more is not */
    memset(body, 0, sizeof body);
    n = raw_body(body, sizeof body, 300, 0, false);
    /* pad with one unknown bytes field 15 up to exactly GNI_DCUTR_MSG_MAX */
    size_t pad = GNI_DCUTR_MSG_MAX - n - 3;
    body[n++] = 0x7a; /* field 15, length-delimited */
    body[n++] = (uint8_t)(0x80 | (pad & 0x7f));
    body[n++] = (uint8_t)(pad >> 7);
    n += pad;
    CHECK_EQ(n, GNI_DCUTR_MSG_MAX);
    CHECK_OK(gni_dcutr_msg_decode(body, n, &m));
    CHECK_EQ(m.type, GNI_DCUTR_SYNC);
    gni_dcutr_msg_clear(&m);
    CHECK_EQ(gni_dcutr_msg_decode(body, n + 1, &m), GN_EFRAMESIZE);
    CHECK_EQ(m.naddrs, 0);
}

GN_TEST(decode_malformed)
{
    gni_dcutr_msg m;
    uint8_t body[64] = {0};
    /* no type */
    CHECK_EQ(gni_dcutr_msg_decode(body, 0, &m), GN_EPROTO);
    /* unknown type 0 and 200 */
    size_t n = raw_body(body, sizeof body, 0, 1, false);
    CHECK_EQ(gni_dcutr_msg_decode(body, n, &m), GN_EPROTO);
    n = raw_body(body, sizeof body, 200, 1, false);
    CHECK_EQ(gni_dcutr_msg_decode(body, n, &m), GN_EPROTO);
    /* truncated address entry */
    n = raw_body(body, sizeof body, 100, 1, false);
    CHECK_EQ(gni_dcutr_msg_decode(body, n - 1, &m), GN_EPROTO);
    CHECK_EQ(m.naddrs, 0);
    CHECK_EQ(gni_dcutr_msg_decode(NULL, 3, &m), GN_EINVAL);
    CHECK_EQ(gni_dcutr_msg_decode(body, n, NULL), GN_EINVAL);
}

GN_TEST(encode_errors)
{
    uint8_t out[GNI_DCUTR_FRAME_MAX];
    size_t len;
    gn_multiaddr *a[17];
    for (int i = 0; i < 17; i++) {
        a[i] = ma("/ip4/1.2.3.4/tcp/4001");
    }
    const gn_multiaddr *const *ca = (const gn_multiaddr *const *)a;
    CHECK_EQ(gni_dcutr_msg_encode((gni_dcutr_type)7, ca, 1, out, sizeof out, &len), GN_EINVAL);
    CHECK_EQ(gni_dcutr_msg_encode(GNI_DCUTR_CONNECT, ca, 17, out, sizeof out, &len), GN_EINVAL);
    CHECK_EQ(gni_dcutr_msg_encode(GNI_DCUTR_CONNECT, NULL, 1, out, sizeof out, &len), GN_EINVAL);
    CHECK_EQ(gni_dcutr_msg_encode(GNI_DCUTR_CONNECT, ca, 1, out, 5, &len), GN_ENOSPC);
    CHECK_OK(gni_dcutr_msg_encode(GNI_DCUTR_CONNECT, ca, 16, out, sizeof out, &len));
    CHECK_EQ(len, 2 + 2 + 16 * 10); /* 162-byte body: two-byte prefix */
    for (int i = 0; i < 17; i++) {
        gn_multiaddr_free(a[i]);
    }
    /* 16 addresses of 256 bytes (a 250-byte name): 4146 bytes, over 4 KiB */
    gn_multiaddr *big[16];
    char s[300] = "/dns4/";
    memset(s + 6, 'x', 250);
    strcpy(s + 256, "/tcp/1");
    for (int i = 0; i < 16; i++) {
        big[i] = ma(s);
    }
    CHECK_EQ(gni_dcutr_msg_encode(GNI_DCUTR_CONNECT, (const gn_multiaddr *const *)big, 16, out,
                                  sizeof out, &len),
             GN_ETOOBIG);
    for (int i = 0; i < 16; i++) {
        gn_multiaddr_free(big[i]);
    }
}

int main(int argc, char **argv)
{
    static const gn_test_case cases[] = {
        GN_T(encode_matches_js), GN_T(decode_js_frames), GN_T(decode_bounds),
        GN_T(decode_malformed), GN_T(encode_errors),
    };
    return gn_test_run(cases, sizeof cases / sizeof cases[0], argc, argv);
}
