/*
 * The length-prefixed message reader (core/lpmsg.c): one message at a
 * time, split anywhere, the bytes after a message left to the caller, the
 * length bound checked before allocating, bad varints refused.
 */
#include "gni.h"

#include "gn_test.h"

#include <stdlib.h>
#include "golemnet/err.h"

/* Two messages and trailing bytes, fed one byte at a time. */
GN_TEST(byte_by_byte)
{
    uint8_t wire[64];
    size_t n = gni_lp_prefix(wire, 3);
    memcpy(wire + n, "abc", 3);
    n += 3;
    n += gni_lp_prefix(wire + n, 0);
    memcpy(wire + n, "tail", 4);
    n += 4;
    gni_lp_reader r;
    gni_lp_reader_init(&r, 16);
    const uint8_t *msg = NULL;
    size_t mlen = 99, used = 0, pos = 0;
    int got = 0;
    while (pos < n && got < 2) {
        int rc = gni_lp_reader_feed(&r, wire + pos, 1, &used, &msg, &mlen);
        CHECK(rc >= 0);
        pos += used;
        if (rc == 1) {
            if (got == 0) {
                CHECK_EQ(mlen, 3u);
                CHECK_MEM(msg, "abc", 3);
            } else {
                CHECK_EQ(mlen, 0u);
            }
            got++;
        }
    }
    CHECK_EQ(got, 2);
    CHECK_EQ(n - pos, 4u); /* "tail" is the caller's */
    CHECK_MEM(wire + pos, "tail", 4);
    gni_lp_reader_clear(&r);
}

/* A whole buffer: the reader stops right after the first message. */
GN_TEST(stops_after_message)
{
    uint8_t wire[32];
    size_t n = gni_lp_prefix(wire, 2);
    memcpy(wire + n, "hi", 2);
    n += 2;
    memcpy(wire + n, "rest", 4);
    n += 4;
    gni_lp_reader r;
    gni_lp_reader_init(&r, 8);
    const uint8_t *msg;
    size_t mlen, used;
    CHECK_EQ(gni_lp_reader_feed(&r, wire, n, &used, &msg, &mlen), 1);
    CHECK_EQ(used, n - 4);
    CHECK_MEM(msg, "hi", 2);
    /* the next feed starts a new message */
    CHECK_EQ(gni_lp_reader_feed(&r, wire + used, 0, &used, &msg, &mlen), 0);
    gni_lp_reader_clear(&r);
}

/* Over-long and malformed prefixes are refused before allocation. */
GN_TEST(bounds)
{
    uint8_t wire[16];
    size_t n = gni_lp_prefix(wire, 1000);
    gni_lp_reader r;
    gni_lp_reader_init(&r, 999);
    const uint8_t *msg;
    size_t mlen, used;
    CHECK_EQ(gni_lp_reader_feed(&r, wire, n, &used, &msg, &mlen), GN_EFRAMESIZE);
    CHECK(r.buf == NULL);
    gni_lp_reader_clear(&r);
    const uint8_t bad[] = {0x80, 0x00}; /* not minimal */
    CHECK_EQ(gni_lp_reader_feed(&r, bad, sizeof bad, &used, &msg, &mlen), GN_EPARSE);
    gni_lp_reader_clear(&r);
    const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    CHECK(gni_lp_reader_feed(&r, huge, sizeof huge, &used, &msg, &mlen) < 0);
    gni_lp_reader_clear(&r);
}

/* An announced length allocates nothing; the buffer grows with what arrives. */
GN_TEST(buffer_grows_with_the_bytes)
{
    const size_t big = 1u << 20;
    uint8_t wire[16];
    size_t n = gni_lp_prefix(wire, big);
    gni_lp_reader r;
    gni_lp_reader_init(&r, big);
    const uint8_t *msg;
    size_t mlen, used;
    CHECK_EQ(gni_lp_reader_feed(&r, wire, n, &used, &msg, &mlen), 0);
    CHECK_EQ(used, n);
    CHECK(r.buf == NULL); /* 1 MiB announced, nothing sent: nothing held */
    CHECK_EQ(r.cap, 0);
    uint8_t *body = malloc(big);
    for (size_t i = 0; i < big; i++)
        body[i] = (uint8_t)(i * 31 + (i >> 9));
    CHECK_EQ(gni_lp_reader_feed(&r, body, 10, &used, &msg, &mlen), 0);
    CHECK_EQ(r.cap, 1024); /* ten bytes sent: the first step */
    CHECK_EQ(gni_lp_reader_feed(&r, body + 10, 3000, &used, &msg, &mlen), 0);
    CHECK_EQ(r.cap, 4096); /* doubled to hold 3010 */
    /* the rest in uneven pieces: the message arrives whole and intact */
    size_t off = 3010;
    int rc = 0;
    for (size_t step = 1; off < big && rc == 0; step = step * 3 + 1) {
        size_t k = step % 70000 + 1;
        if (k > big - off)
            k = big - off;
        rc = gni_lp_reader_feed(&r, body + off, k, &used, &msg, &mlen);
        CHECK_EQ(used, k);
        off += k;
    }
    CHECK_EQ(rc, 1);
    CHECK_EQ(mlen, big);
    CHECK_EQ(r.cap, big); /* never beyond the announced length */
    CHECK_MEM(msg, body, big);
    gni_lp_reader_clear(&r);
    free(body);
}

GN_TEST_MAIN(GN_T(byte_by_byte), GN_T(stops_after_message), GN_T(bounds),
             GN_T(buffer_grows_with_the_bytes))
