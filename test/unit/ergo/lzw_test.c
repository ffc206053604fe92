/*
 * lzw_test: the LZW codec in Go's compress/lzw format (protocols/ergo/lzw.c).
 * Byte-identity with Go's writer on real traffic is checked in enp_test.c
 * (enp_compress_lzw.hex); here: known answers worked out by hand from the
 * format, round trips across dictionary resets, and the decoder's bounds.
 */
#include "gn_test.h"

#include "golemnet/golemnet.h"
#include "lzw.h"

static uint32_t rng_state = 12345u;
static uint32_t rng(void)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return rng_state >> 8;
}

/* Reads code @i (fixed @width bits, LSB first) out of @p: for known answers. */
static unsigned bits_at(const uint8_t *p, size_t bitpos, unsigned width)
{
    unsigned v = 0;
    for (unsigned b = 0; b < width; b++) {
        size_t k = bitpos + b;
        v |= (unsigned)((p[k / 8] >> (k % 8)) & 1u) << b;
    }
    return v;
}

GN_TEST(lzw_empty_is_clear_then_end)
{
    uint8_t out[16];
    size_t n = 0;
    CHECK_OK(gni_lzw_encode(NULL, 0, out, sizeof out, &n));
    /* 256 (9 bits) then 257 (9 bits), LSB first: 00 03 02 */
    CHECK_EQ(n, 3);
    CHECK_EQ(out[0], 0x00);
    CHECK_EQ(out[1], 0x03);
    CHECK_EQ(out[2], 0x02);
    uint8_t dec[4];
    size_t dn = 99;
    CHECK_OK(gni_lzw_decode(out, n, dec, sizeof dec, &dn));
    CHECK_EQ(dn, 0);
}

GN_TEST(lzw_known_codes_abab)
{
    /*
     * "ABABABA": clear, 'A', 'B', 258 ("AB"), 260 ("ABA"), end. Codes
     * defined: 258=AB, 259=BA, 260=ABA, 261 = ABA + ... (the last code's
     * implied one). All 9 bits wide.
     */
    const uint8_t in[] = "ABABABA";
    uint8_t out[32];
    size_t n = 0;
    CHECK_OK(gni_lzw_encode(in, 7, out, sizeof out, &n));
    const unsigned want[] = {256, 'A', 'B', 258, 260, 257};
    CHECK_EQ(n, (6 * 9 + 7) / 8);
    for (unsigned i = 0; i < 6; i++) {
        CHECK_EQ(bits_at(out, i * 9, 9), want[i]);
    }
    uint8_t dec[16];
    size_t dn = 0;
    CHECK_OK(gni_lzw_decode(out, n, dec, sizeof dec, &dn));
    CHECK_EQ(dn, 7);
    CHECK_MEM(dec, in, 7);
}

GN_TEST(lzw_width_grows_at_512)
{
    /*
     * 300 distinct byte pairs force one code per input byte, so the
     * dictionary reaches code 511 and then 512: after the code that
     * defines 511 is written, the next one is 10 bits wide (Go: hi ==
     * overflow). The stream must still round trip, and its length must be
     * exactly: 1 clear + codes at 9 bits until hi reaches 512, rest at 10.
     */
    uint8_t in[400];
    for (size_t i = 0; i < sizeof in; i++) {
        in[i] = (uint8_t)(i * 7 + (i / 256) * 3); /* rarely repeats a pair */
    }
    uint8_t out[1024];
    size_t n = 0;
    CHECK_OK(gni_lzw_encode(in, sizeof in, out, sizeof out, &n));
    uint8_t dec[400];
    size_t dn = 0;
    CHECK_OK(gni_lzw_decode(out, n, dec, sizeof dec, &dn));
    CHECK_EQ(dn, sizeof in);
    CHECK_MEM(dec, in, sizeof in);
    /* walk the codes with the writer's width rule and find the end code */
    size_t pos = 9; /* after the clear */
    unsigned width = 9, hi = 257, codes = 0;
    unsigned c;
    for (;;) {
        c = bits_at(out, pos, width);
        pos += width;
        if (c == 257)
            break;
        codes++;
        CHECK(codes < 1000);
        hi++;
        if (hi == (1u << width))
            width++;
    }
    CHECK(width == 10); /* it did grow */
    CHECK_EQ(n, (pos + 7) / 8);
}

static void roundtrip(const uint8_t *in, size_t len)
{
    size_t cap = gni_lzw_bound(len);
    uint8_t *z = malloc(cap);
    uint8_t *d = malloc(len + 1);
    CHECK(z && d);
    size_t zn = 0, dn = 0;
    CHECK_OK(gni_lzw_encode(in, len, z, cap, &zn));
    CHECK(zn <= cap);
    CHECK_OK(gni_lzw_decode(z, zn, d, len + 1, &dn));
    CHECK_EQ(dn, len);
    CHECK(len == 0 || memcmp(d, in, len) == 0);
    /* the exact bound: one byte less fails, the exact size works */
    if (len > 0) {
        CHECK_EQ(gni_lzw_decode(z, zn, d, len - 1, &dn), GN_ETOOBIG);
    }
    /* too little output room for the encoder */
    CHECK_EQ(gni_lzw_encode(in, len, z, zn - 1, &dn), GN_ENOSPC);
    free(z);
    free(d);
}

GN_TEST(lzw_roundtrip_random_and_repetitive)
{
    size_t sizes[] = {1, 2, 3, 255, 256, 4096, 70000};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        uint8_t *buf = malloc(sizes[s]);
        CHECK(buf);
        /* random bytes: many codes, dictionary resets every 3837 codes */
        for (size_t i = 0; i < sizes[s]; i++)
            buf[i] = (uint8_t)rng();
        roundtrip(buf, sizes[s]);
        /* a small alphabet: long strings, KwKwK codes */
        for (size_t i = 0; i < sizes[s]; i++)
            buf[i] = (uint8_t)('a' + rng() % 3);
        roundtrip(buf, sizes[s]);
        /* one repeated byte: the code == next-code case on every step */
        memset(buf, 'z', sizes[s]);
        roundtrip(buf, sizes[s]);
        free(buf);
    }
}

GN_TEST(lzw_full_dictionary_clears)
{
    /* random data over 3837 codes: the writer must emit a clear code mid-stream */
    size_t len = 20000;
    uint8_t *in = malloc(len);
    uint8_t *z = malloc(gni_lzw_bound(len));
    CHECK(in && z);
    for (size_t i = 0; i < len; i++)
        in[i] = (uint8_t)rng();
    size_t zn = 0;
    CHECK_OK(gni_lzw_encode(in, len, z, gni_lzw_bound(len), &zn));
    size_t pos = 9;
    unsigned width = 9, hi = 257, clears = 0;
    bool first = true;
    for (size_t guard = 0; guard < len + 100; guard++) {
        unsigned c = bits_at(z, pos, width);
        pos += width;
        CHECK(pos <= zn * 8);
        if (c == 257)
            break;
        if (c == 256) {
            clears++;
            width = 9;
            hi = 257;
            first = true;
            continue;
        }
        CHECK(first ? c < 256 : c <= hi);
        first = false;
        hi++;
        if (hi == (1u << width))
            width++;
        CHECK(width <= 12);
        if (hi == 4095) {
            /* the writer clears instead of defining 4095: the next code is a clear */
            CHECK_EQ(bits_at(z, pos, width), 256);
        }
    }
    CHECK(clears >= 2);
    free(in);
    free(z);
}

GN_TEST(lzw_decoder_refuses_bad_streams)
{
    uint8_t out[64];
    size_t n = 0;
    /* truncated: a clear and half a code, no end code */
    const uint8_t trunc[] = {0x00, 0x01};
    CHECK_EQ(gni_lzw_decode(trunc, sizeof trunc, out, sizeof out, &n), GN_EPARSE);
    /* nothing at all */
    CHECK_EQ(gni_lzw_decode(NULL, 0, out, sizeof out, &n), GN_EPARSE);
    /* clear, then code 300 that is not defined */
    uint8_t bad[4] = {0};
    unsigned codes[] = {256, 300};
    size_t pos = 0;
    for (int i = 0; i < 2; i++, pos += 9)
        for (unsigned b = 0; b < 9; b++)
            if (codes[i] >> b & 1u)
                bad[(pos + b) / 8] |= (uint8_t)(1u << ((pos + b) % 8));
    CHECK_EQ(gni_lzw_decode(bad, sizeof bad, out, sizeof out, &n), GN_EPARSE);
    /* first code after a clear may not be a dictionary code (258 = "next" with no last) */
    memset(bad, 0, sizeof bad);
    codes[1] = 258;
    pos = 0;
    for (int i = 0; i < 2; i++, pos += 9)
        for (unsigned b = 0; b < 9; b++)
            if (codes[i] >> b & 1u)
                bad[(pos + b) / 8] |= (uint8_t)(1u << ((pos + b) % 8));
    CHECK_EQ(gni_lzw_decode(bad, sizeof bad, out, sizeof out, &n), GN_EPARSE);
    /* bytes after the end code are ignored */
    uint8_t z[32];
    size_t zn = 0;
    CHECK_OK(gni_lzw_encode((const uint8_t *)"hello", 5, z, sizeof z, &zn));
    z[zn] = 0xff;
    z[zn + 1] = 0xee;
    CHECK_OK(gni_lzw_decode(z, zn + 2, out, sizeof out, &n));
    CHECK_EQ(n, 5);
    CHECK_MEM(out, "hello", 5);
    /* argument checks */
    CHECK_EQ(gni_lzw_decode(NULL, 3, out, sizeof out, &n), GN_EINVAL);
    CHECK_EQ(gni_lzw_encode(NULL, 3, out, sizeof out, &n), GN_EINVAL);
}

GN_TEST(lzw_decoder_output_bound_is_exact)
{
    /* a repetitive input expands a lot: the decoder stops at the bound */
    uint8_t in[5000];
    memset(in, 'q', sizeof in);
    uint8_t z[256];
    size_t zn = 0;
    CHECK_OK(gni_lzw_encode(in, sizeof in, z, sizeof z, &zn));
    CHECK(zn < 200);
    uint8_t *out = malloc(sizeof in);
    CHECK(out);
    size_t n = 0;
    for (size_t cap = 0; cap < sizeof in; cap += 97)
        CHECK_EQ(gni_lzw_decode(z, zn, out, cap, &n), GN_ETOOBIG);
    CHECK_OK(gni_lzw_decode(z, zn, out, sizeof in, &n));
    CHECK_EQ(n, sizeof in);
    free(out);
}

GN_TEST_MAIN(GN_T(lzw_empty_is_clear_then_end), GN_T(lzw_known_codes_abab),
             GN_T(lzw_width_grows_at_512), GN_T(lzw_roundtrip_random_and_repetitive),
             GN_T(lzw_full_dictionary_clears), GN_T(lzw_decoder_refuses_bad_streams),
             GN_T(lzw_decoder_output_bound_is_exact))
