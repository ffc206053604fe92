/*
 * Unit tests for core/multiformats.c: unsigned varint, base58btc, base32,
 * multibase, multihash and CIDv1. Each known-answer vector names its source.
 */
#include "golemnet/err.h"
#include "golemnet/multiformats.h"

#include "gn_test.h"
#include "gni.h"

/* ---------------------------------------------------------------- varint */

/* Source: multiformats/unsigned-varint README, "Examples" table. */
static const struct {
    uint64_t v;
    const char *hex;
} varint_vectors[] = {
    {1, "01"},       {127, "7f"},       {128, "8001"},
    {255, "ff01"},   {300, "ac02"},     {16384, "808001"},
    {0, "00"},       /* trivially minimal zero */
    {(UINT64_C(1) << 63) - 1, "ffffffffffffffff7f"}, /* largest value: 9 bytes */
};

GN_TEST(varint_spec_vectors)
{
    for (size_t i = 0; i < sizeof varint_vectors / sizeof varint_vectors[0]; i++) {
        uint8_t want[16], got[16];
        long n = gn_test_unhex(varint_vectors[i].hex, want, sizeof want);
        CHECK(n > 0);
        CHECK_EQ(gn_varint_len(varint_vectors[i].v), n);
        CHECK_EQ(gn_varint_encode(varint_vectors[i].v, got, sizeof got), n);
        CHECK_MEM(got, want, (size_t)n);
        uint64_t v = 12345;
        CHECK_EQ(gn_varint_decode(want, (size_t)n, &v), n);
        CHECK(v == varint_vectors[i].v);
    }
}

GN_TEST(varint_limits)
{
    uint8_t buf[16];
    CHECK_EQ(gn_varint_len(UINT64_C(1) << 63), 10);
    CHECK_EQ(gn_varint_len(UINT64_MAX), 10);
    CHECK_EQ(gn_varint_encode(UINT64_C(1) << 63, buf, sizeof buf), GN_ERANGE);
    CHECK_EQ(gn_varint_encode(UINT64_MAX, buf, sizeof buf), GN_ERANGE);
    /* Too small an output. */
    CHECK_EQ(gn_varint_encode(300, buf, 1), GN_ENOSPC);
    CHECK_EQ(gn_varint_encode(1, buf, 0), GN_ENOSPC);
    /* Trailing bytes after the varint are not consumed. */
    const uint8_t ext[] = {0xac, 0x02, 0xff};
    uint64_t v = 0;
    CHECK_EQ(gn_varint_decode(ext, sizeof ext, &v), 2);
    CHECK_EQ(v, 300);
}

GN_TEST(varint_bad_input)
{
    uint64_t v = 777;
    /* Truncated: continuation bit set on the last byte given. */
    CHECK_EQ(gn_varint_decode((const uint8_t *)"", 0, &v), GN_EAGAIN);
    CHECK_EQ(gn_varint_decode((const uint8_t *)"\x80", 1, &v), GN_EAGAIN);
    const uint8_t eight[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    CHECK_EQ(gn_varint_decode(eight, sizeof eight, &v), GN_EAGAIN);
    /* Oversized: nine continuation bytes (spec: at most 9 bytes). */
    const uint8_t nine[10] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    CHECK_EQ(gn_varint_decode(nine, sizeof nine, &v), GN_EPARSE);
    CHECK_EQ(gn_varint_decode(nine, 9, &v), GN_EPARSE);
    /* Not minimal (spec: "0x80 0x00" for 0, "0x81 0x00" for 1). */
    CHECK_EQ(gn_varint_decode((const uint8_t *)"\x80\x00", 2, &v), GN_EPARSE);
    CHECK_EQ(gn_varint_decode((const uint8_t *)"\x81\x00", 2, &v), GN_EPARSE);
    CHECK_EQ(gn_varint_decode((const uint8_t *)"\xff\x80\x00", 3, &v), GN_EPARSE);
    CHECK_EQ(v, 777); /* untouched on failure */
}

GN_TEST(varint_roundtrip_sweep)
{
    /* Every power of two and its neighbours below 2^63. */
    for (unsigned s = 0; s < 63; s++) {
        uint64_t base = UINT64_C(1) << s;
        uint64_t cand[3] = {base - 1, base, base + 1};
        for (int k = 0; k < 3; k++) {
            uint8_t buf[GN_VARINT_MAX_LEN];
            uint64_t back = 0;
            int n = gn_varint_encode(cand[k], buf, sizeof buf);
            CHECK(n >= 1 && n <= GN_VARINT_MAX_LEN);
            CHECK_EQ((size_t)n, gn_varint_len(cand[k]));
            CHECK_EQ(gn_varint_decode(buf, (size_t)n, &back), n);
            CHECK(back == cand[k]);
            if (n > 1)
                CHECK_EQ(gn_varint_decode(buf, (size_t)n - 1, &back), GN_EAGAIN);
        }
    }
}

/* ------------------------------------------------------------- base58btc */

static const struct {
    const char *hex;
    const char *b58;
} b58_vectors[] = {
    /* multiformats/multibase tests/basic.csv, leading_zero.csv,
     * two_leading_zeros.csv ("yes mani !" with 0, 1 and 2 zero bytes). */
    {"796573206d616e692021", "7paNL19xttacUY"},
    {"00796573206d616e692021", "17paNL19xttacUY"},
    {"0000796573206d616e692021", "117paNL19xttacUY"},
    /* draft-msporny-base58-02 section 5 ("Hello World!", 0x0000287fb4cd). */
    {"48656c6c6f20576f726c6421", "2NEpo7TZRRrLZSi2U"},
    {"0000287fb4cd", "11233QC4"},
    /* libp2p/specs peer-ids/peer-ids.md examples (legacy string form);
     * digest bytes cross-checked with a Python big-integer decoder. */
    {"12209dff3b17d74cf4d38a50d8b6383e92d181a10395a5e73a726dcccbd21bf6f0b9",
     "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"},
    {"0024080112202ffa35a99d3a3cfbb17bb7c1dc5561b18a8dcca4df38dc613ea859c37eb1336b",
     "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"},
    {"", ""},
    {"00", "1"},
};

GN_TEST(base58_vectors)
{
    for (size_t i = 0; i < sizeof b58_vectors / sizeof b58_vectors[0]; i++) {
        uint8_t raw[128], dec[128];
        char enc[256];
        long n = gn_test_unhex(b58_vectors[i].hex, raw, sizeof raw);
        CHECK(n >= 0);
        size_t slen = strlen(b58_vectors[i].b58);
        CHECK_EQ(gn_base58btc_encode(raw, (size_t)n, enc, sizeof enc), slen);
        CHECK_STR(enc, b58_vectors[i].b58);
        CHECK_EQ(gn_base58btc_decode(b58_vectors[i].b58, slen, dec, sizeof dec), n);
        CHECK_MEM(dec, raw, (size_t)n);
        /* Exact-size output works; one byte less does not. */
        CHECK_EQ(gn_base58btc_encode(raw, (size_t)n, enc, slen + 1), slen);
        CHECK_EQ(gn_base58btc_encode(raw, (size_t)n, enc, slen), GN_ENOSPC);
        CHECK_STR(enc, "");
        if (n > 0) {
            CHECK_EQ(gn_base58btc_decode(b58_vectors[i].b58, slen, dec, (size_t)n), n);
            CHECK_EQ(gn_base58btc_decode(b58_vectors[i].b58, slen, dec, (size_t)n - 1),
                     GN_ENOSPC);
        }
    }
}

GN_TEST(base58_bad_input)
{
    uint8_t out[64];
    memset(out, 0xaa, sizeof out);
    /* Characters outside the Bitcoin alphabet: 0, O, I, l, '+', space, NUL. */
    CHECK_EQ(gn_base58btc_decode("0", 1, out, sizeof out), GN_EPARSE);
    CHECK_EQ(gn_base58btc_decode("abcO", 4, out, sizeof out), GN_EPARSE);
    CHECK_EQ(gn_base58btc_decode("I", 1, out, sizeof out), GN_EPARSE);
    CHECK_EQ(gn_base58btc_decode("l", 1, out, sizeof out), GN_EPARSE);
    CHECK_EQ(gn_base58btc_decode("2N+", 3, out, sizeof out), GN_EPARSE);
    CHECK_EQ(gn_base58btc_decode("2N ", 3, out, sizeof out), GN_EPARSE);
    CHECK_EQ(gn_base58btc_decode("2N\0a", 4, out, sizeof out), GN_EPARSE);
    CHECK_EQ(out[0], 0xaa); /* untouched on failure */
    /* Oversized input: more than 1024 characters. */
    static char big[1100];
    memset(big, 'z', sizeof big);
    CHECK_EQ(gn_base58btc_decode(big, 1025, out, sizeof out), GN_ETOOBIG);
    /* 1024 characters is allowed, but does not fit 64 bytes. */
    CHECK_EQ(gn_base58btc_decode(big, 1024, out, sizeof out), GN_ENOSPC);
    static uint8_t huge[1024];
    int n = gn_base58btc_decode(big, 1024, huge, sizeof huge);
    CHECK(n > 700 && n <= 1024);
    /* And it encodes back to the same string. */
    static char back[1100];
    CHECK_EQ(gn_base58btc_encode(huge, (size_t)n, back, sizeof back), 1024);
    CHECK_MEM(back, big, 1024);
    /* Output too small for the encoder. */
    char tiny[1];
    CHECK_EQ(gn_base58btc_encode((const uint8_t *)"x", 1, tiny, 1), GN_ENOSPC);
    CHECK_EQ(gn_base58btc_encode((const uint8_t *)"x", 1, tiny, 0), GN_ENOSPC);
}

/* ---------------------------------------------------------------- base32 */

static const struct {
    const char *raw;
    size_t len;
    const char *b32;
} b32_vectors[] = {
    /* RFC 4648 section 10, lower-cased, padding removed. */
    {"", 0, ""},
    {"f", 1, "my"},
    {"fo", 2, "mzxq"},
    {"foo", 3, "mzxw6"},
    {"foob", 4, "mzxw6yq"},
    {"fooba", 5, "mzxw6ytb"},
    {"foobar", 6, "mzxw6ytboi"},
    /* multiformats/multibase basic.csv, leading_zero.csv, two_leading_zeros.csv ("base32" rows). */
    {"yes mani !", 10, "pfsxgidnmfxgsibb"},
    {"\0yes mani !", 11, "ab4wk4zanvqw42jaee"},
    {"\0\0yes mani !", 12, "aaahszltebwwc3tjeaqq"},
};

GN_TEST(base32_vectors)
{
    for (size_t i = 0; i < sizeof b32_vectors / sizeof b32_vectors[0]; i++) {
        char enc[64];
        uint8_t dec[64];
        size_t slen = strlen(b32_vectors[i].b32);
        CHECK_EQ(gn_base32_encode((const uint8_t *)b32_vectors[i].raw, b32_vectors[i].len, enc,
                                  sizeof enc),
                 slen);
        CHECK_STR(enc, b32_vectors[i].b32);
        CHECK_EQ(gn_base32_decode(b32_vectors[i].b32, slen, dec, sizeof dec),
                 b32_vectors[i].len);
        CHECK_MEM(dec, b32_vectors[i].raw, b32_vectors[i].len);
        CHECK_EQ(gn_base32_encode((const uint8_t *)b32_vectors[i].raw, b32_vectors[i].len, enc,
                                  slen),
                 GN_ENOSPC);
        if (b32_vectors[i].len > 0)
            CHECK_EQ(gn_base32_decode(b32_vectors[i].b32, slen, dec, b32_vectors[i].len - 1),
                     GN_ENOSPC);
    }
}

GN_TEST(base32_bad_input)
{
    uint8_t out[64];
    memset(out, 0x55, sizeof out);
    CHECK_EQ(gn_base32_decode("MZXW6", 5, out, sizeof out), GN_EPARSE); /* upper case */
    CHECK_EQ(gn_base32_decode("my======", 8, out, sizeof out), GN_EPARSE); /* padding */
    CHECK_EQ(gn_base32_decode("my=", 3, out, sizeof out), GN_EPARSE);
    CHECK_EQ(gn_base32_decode("m1", 2, out, sizeof out), GN_EPARSE); /* '1' not in alphabet */
    CHECK_EQ(gn_base32_decode("m8", 2, out, sizeof out), GN_EPARSE);
    /* Impossible lengths (1, 3, 6 characters mod 8). */
    CHECK_EQ(gn_base32_decode("m", 1, out, sizeof out), GN_EPARSE);
    CHECK_EQ(gn_base32_decode("mzx", 3, out, sizeof out), GN_EPARSE);
    CHECK_EQ(gn_base32_decode("mzxw6y", 6, out, sizeof out), GN_EPARSE);
    /* Non-zero trailing bits: "mz" leaves 2 bits; 'z' = 25 = 0b11001. */
    CHECK_EQ(gn_base32_decode("mz", 2, out, sizeof out), GN_EPARSE);
    CHECK_EQ(gn_base32_decode("mzxw7", 5, out, sizeof out), GN_EPARSE);
    CHECK_EQ(out[0], 0x55);
    static char big[1100];
    memset(big, 'a', sizeof big);
    CHECK_EQ(gn_base32_decode(big, 1025, out, sizeof out), GN_ETOOBIG);
    CHECK_EQ(gn_base32_decode(big, 1024, out, sizeof out), GN_ENOSPC);
}

/* ------------------------------------------------------------- multibase */

GN_TEST(multibase_vectors)
{
    /* multiformats/multibase tests/basic.csv: base58btc and base32 rows. */
    char out[64];
    uint8_t dec[64];
    char base = 0;
    CHECK_EQ(gn_multibase_encode(GN_MULTIBASE_BASE58BTC, (const uint8_t *)"yes mani !", 10,
                                 out, sizeof out),
             15);
    CHECK_STR(out, "z7paNL19xttacUY");
    CHECK_EQ(gn_multibase_encode(GN_MULTIBASE_BASE32, (const uint8_t *)"yes mani !", 10, out,
                                 sizeof out),
             17);
    CHECK_STR(out, "bpfsxgidnmfxgsibb");
    CHECK_EQ(gn_multibase_decode("z7paNL19xttacUY", 15, &base, dec, sizeof dec), 10);
    CHECK_EQ(base, 'z');
    CHECK_MEM(dec, "yes mani !", 10);
    CHECK_EQ(gn_multibase_decode("bpfsxgidnmfxgsibb", 17, &base, dec, sizeof dec), 10);
    CHECK_EQ(base, 'b');
    CHECK_MEM(dec, "yes mani !", 10);
    /* two_leading_zeros.csv */
    CHECK_EQ(gn_multibase_decode("z117paNL19xttacUY", 17, NULL, dec, sizeof dec), 12);
    CHECK_MEM(dec, "\0\0yes mani !", 12);
    CHECK_EQ(gn_multibase_decode("baaahszltebwwc3tjeaqq", 21, NULL, dec, sizeof dec), 12);
    CHECK_MEM(dec, "\0\0yes mani !", 12);
}

GN_TEST(multibase_bad_input)
{
    char out[8];
    uint8_t dec[16];
    char base = 'q';
    /* basic.csv "base64" row: unsupported prefix 'm'. */
    CHECK_EQ(gn_multibase_decode("meWVzIG1hbmkgIQ", 15, &base, dec, sizeof dec), GN_ENOTSUP);
    CHECK_EQ(gn_multibase_decode("F796573206D616E692021", 21, &base, dec, sizeof dec),
             GN_ENOTSUP);
    CHECK_EQ(gn_multibase_decode("", 0, &base, dec, sizeof dec), GN_EPARSE);
    CHECK_EQ(gn_multibase_decode("z0", 2, &base, dec, sizeof dec), GN_EPARSE);
    CHECK_EQ(gn_multibase_decode("bMY", 3, &base, dec, sizeof dec), GN_EPARSE);
    CHECK_EQ(gn_multibase_decode("z7paNL19xttacUY", 15, &base, dec, 9), GN_ENOSPC);
    CHECK_EQ(base, 'q');
    CHECK_EQ(gn_multibase_encode('m', (const uint8_t *)"x", 1, out, sizeof out), GN_ENOTSUP);
    CHECK_EQ(gn_multibase_encode('z', (const uint8_t *)"yes mani !", 10, out, sizeof out),
             GN_ENOSPC);
    CHECK_STR(out, "");
    CHECK_EQ(gn_multibase_encode('b', (const uint8_t *)"", 0, out, 1), GN_ENOSPC);
    CHECK_EQ(gn_multibase_encode('b', (const uint8_t *)"", 0, out, 2), 1);
    CHECK_STR(out, "b");
}

/* ------------------------------------------------------------- multihash */

GN_TEST(multihash_sha256_vectors)
{
    uint8_t out[64], want[64];
    gn_multihash mh;
    /* FIPS 180-2 appendix B.1 ("abc") with the multihash header 0x12 0x20. */
    long n = gn_test_unhex("1220ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                           want, sizeof want);
    CHECK_EQ(gn_multihash_encode(GN_MH_SHA2_256, (const uint8_t *)"abc", 3, out, sizeof out),
             n);
    CHECK_MEM(out, want, (size_t)n);
    /* SHA-256 of the empty string (FIPS 180-4 / NIST CAVP SHA256ShortMsg Len=0). */
    n = gn_test_unhex("1220e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                      want, sizeof want);
    CHECK_EQ(gn_multihash_encode(GN_MH_SHA2_256, NULL, 0, out, sizeof out), n);
    CHECK_MEM(out, want, (size_t)n);
    CHECK_EQ(gn_multihash_decode(out, (size_t)n, &mh), 0);
    CHECK(mh.code == GN_MH_SHA2_256);
    CHECK_EQ(mh.digest_len, 32);
    CHECK(mh.digest == out + 2);
    CHECK_EQ(gn_multihash_encode(GN_MH_SHA2_256, (const uint8_t *)"abc", 3, out, 33), GN_ENOSPC);
    CHECK_EQ(gn_multihash_encode(GN_MH_SHA2_256, (const uint8_t *)"abc", 3, out, 34), 34);
    CHECK_EQ(gn_multihash_encode(0x13, (const uint8_t *)"abc", 3, out, sizeof out), GN_ENOTSUP);
}

GN_TEST(multihash_identity_peer_id)
{
    /* libp2p/specs peer-ids.md: 12D3KooWD3eck... is the identity multihash of
     * the protobuf-encoded Ed25519 public key (08 01 12 20 || key). */
    uint8_t mhb[64], pub[64], out[64];
    long n = gn_test_unhex(
        "0024080112202ffa35a99d3a3cfbb17bb7c1dc5561b18a8dcca4df38dc613ea859c37eb1336b", mhb,
        sizeof mhb);
    CHECK_EQ(n, 38);
    gn_multihash mh;
    CHECK_EQ(gn_multihash_decode(mhb, (size_t)n, &mh), 0);
    CHECK(mh.code == GN_MH_IDENTITY);
    CHECK_EQ(mh.digest_len, 36);
    memcpy(pub, mh.digest, mh.digest_len);
    CHECK_EQ(gn_multihash_encode(GN_MH_IDENTITY, pub, 36, out, sizeof out), 38);
    CHECK_MEM(out, mhb, 38);
    CHECK_EQ(gn_multihash_encode(GN_MH_IDENTITY, pub, 36, out, 37), GN_ENOSPC);
    /* Two-byte length varint for a 200-byte identity digest. */
    static uint8_t big_in[200], big_out[256];
    memset(big_in, 7, sizeof big_in);
    CHECK_EQ(gn_multihash_encode(GN_MH_IDENTITY, big_in, 200, big_out, sizeof big_out), 203);
    CHECK_EQ(big_out[0], 0x00);
    CHECK_EQ(big_out[1], 0xc8);
    CHECK_EQ(big_out[2], 0x01);
}

GN_TEST(multihash_bad_input)
{
    gn_multihash mh = {99, NULL, 99};
    static uint8_t b[2048];
    /* Empty, truncated header, truncated digest, trailing byte. */
    CHECK_EQ(gn_multihash_decode(b, 0, &mh), GN_EPARSE);
    CHECK_EQ(gn_multihash_decode((const uint8_t *)"\x12", 1, &mh), GN_EPARSE);
    CHECK_EQ(gn_multihash_decode((const uint8_t *)"\x12\x20\x01", 3, &mh), GN_EPARSE);
    CHECK_EQ(gn_multihash_decode((const uint8_t *)"\x00\x01\x41\x42", 4, &mh), GN_EPARSE);
    /* Bad varints: non-minimal code, overlong length. */
    CHECK_EQ(gn_multihash_decode((const uint8_t *)"\x80\x00\x00", 3, &mh), GN_EPARSE);
    const uint8_t longlen[] = {0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    CHECK_EQ(gn_multihash_decode(longlen, sizeof longlen, &mh), GN_EPARSE);
    /* Digest length over 1024, rejected before reading it. */
    CHECK_EQ(gn_multihash_decode((const uint8_t *)"\x00\x81\x08", 3, &mh), GN_ETOOBIG);
    memset(b, 0, sizeof b);
    b[0] = 0x00;
    b[1] = 0x80; /* 1024 = 0x80 0x08 */
    b[2] = 0x08;
    CHECK_EQ(gn_multihash_decode(b, 3 + 1024, &mh), 0);
    CHECK_EQ(mh.digest_len, 1024);
    mh.code = 99;
    CHECK_EQ(gn_multihash_decode(b, 3 + 1023, &mh), GN_EPARSE);
    CHECK_EQ(mh.code, 99);
}

/* ------------------------------------------------------------------- CID */

GN_TEST(cid_peer_id_vectors)
{
    /* libp2p/specs peer-ids.md: the CID form of QmYyQSo1c1Ym7... */
    const char *cid_str = "bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe";
    uint8_t bin[64], mhb[64], enc[64];
    char base = 0, str[128];
    int n = gn_multibase_decode(cid_str, strlen(cid_str), &base, bin, sizeof bin);
    CHECK_EQ(n, 36);
    CHECK_EQ(base, 'b');
    uint64_t codec = 0;
    gn_multihash mh;
    CHECK_EQ(gn_cid_decode(bin, (size_t)n, &codec, &mh), 0);
    CHECK(codec == GN_CODEC_LIBP2P_KEY);
    CHECK(mh.code == GN_MH_SHA2_256);
    CHECK_EQ(mh.digest_len, 32);
    long m = gn_test_unhex("12209dff3b17d74cf4d38a50d8b6383e92d181a10395a5e73a726dcccbd21bf6f0b9",
                           mhb, sizeof mhb);
    CHECK_MEM(mh.digest, mhb + 2, 32);
    /* Re-encode: CID then multibase base32 gives the spec's string back. */
    CHECK_EQ(gn_cid_encode(GN_CODEC_LIBP2P_KEY, mhb, (size_t)m, enc, sizeof enc), 36);
    CHECK_MEM(enc, bin, 36);
    CHECK_EQ(gn_multibase_encode('b', enc, 36, str, sizeof str), (int)strlen(cid_str));
    CHECK_STR(str, cid_str);
    CHECK_EQ(gn_cid_encode(GN_CODEC_LIBP2P_KEY, mhb, (size_t)m, enc, 35), GN_ENOSPC);
}

GN_TEST(cid_ed25519_peer)
{
    /* 12D3KooWPjce... (brief) as a CIDv1 libp2p-key, base32. Expected string
     * computed independently with Python's base64.b32encode. */
    uint8_t mhb[64], bin[64];
    char str[128];
    int n = gn_base58btc_decode("12D3KooWPjceQrSwdWXPyLLeABRXmuqt69Rg3sBYbU1Nft9HyQ6X", 52, mhb,
                                sizeof mhb);
    CHECK_EQ(n, 38);
    int c = gn_cid_encode(GN_CODEC_LIBP2P_KEY, mhb, (size_t)n, bin, sizeof bin);
    CHECK_EQ(c, 40);
    CHECK_OK(gn_multibase_encode('b', bin, (size_t)c, str, sizeof str));
    CHECK_STR(str, "bafzaajaiaejcbtwmcud5yho5okkzkhbjbcepbfnnxece2g3t22lonxyglvudxvh4");
}

/* The incremental reader (gni_varint_rd) is the one decoder: byte by byte it
 * agrees with gn_varint_decode() on every prefix of every input. */
GN_TEST(varint_reader_matches_buffer_decoder)
{
    static const char *inputs[] = {
        "00", "01", "7f", "8001", "ff01", "ac02", "808001", "ffffffffffffffff7f",
        "8000", "ff80808080808080808001", "ffffffffffffffffff01", "80",
    };
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        uint8_t in[16];
        long n = gn_test_unhex(inputs[i], in, sizeof in);
        CHECK(n > 0);
        uint64_t vb = 0, vr = 0;
        int whole = gn_varint_decode(in, (size_t)n, &vb);
        gni_varint_rd rd;
        gni_varint_rd_init(&rd, GNI_VARINT_MF);
        int rc = 0;
        long used = 0;
        while (used < n && rc == 0) {
            rc = gni_varint_rd_byte(&rd, in[used++], &vr);
        }
        if (whole > 0) {
            CHECK_EQ(rc, 1);
            CHECK_EQ(used, whole);
            CHECK(vr == vb);
            CHECK(!gni_varint_rd_busy(&rd));
        } else if (whole == GN_EAGAIN) {
            CHECK_EQ(rc, 0);
            CHECK(gni_varint_rd_busy(&rd));
        } else {
            CHECK_EQ(whole, GN_EPARSE);
            CHECK_EQ(rc, GN_EPARSE);
            CHECK(!gni_varint_rd_busy(&rd)); /* reset after an error */
        }
    }
}

/* The protobuf / Go uvarint flavour (mplex headers, protobuf fields): ten
 * bytes, the full 64-bit range, non-minimal encodings accepted. */
GN_TEST(varint_reader_protobuf_flavour)
{
    uint8_t max[10], over[10], eleven[11];
    uint64_t v = 0;
    gn_test_unhex("ffffffffffffffffff01", max, sizeof max);
    CHECK_EQ(gni_varint_decode_kind(max, sizeof max, GNI_VARINT_PB, &v), 10);
    CHECK(v == UINT64_MAX);
    CHECK_EQ(gn_varint_decode(max, sizeof max, &v), GN_EPARSE); /* MF: 9 bytes at most */
    gn_test_unhex("ffffffffffffffffff02", over, sizeof over);
    CHECK_EQ(gni_varint_decode_kind(over, sizeof over, GNI_VARINT_PB, &v), GN_EPARSE);
    gn_test_unhex("ffffffffffffffffff8100", eleven, sizeof eleven);
    CHECK_EQ(gni_varint_decode_kind(eleven, sizeof eleven, GNI_VARINT_PB, &v), GN_EPARSE);
    /* Non-minimal: 0x80 0x00 is zero for protobuf, refused by MF. */
    CHECK_EQ(gni_varint_decode_kind((const uint8_t *)"\x80\x00", 2, GNI_VARINT_PB, &v), 2);
    CHECK(v == 0);
    CHECK_EQ(gni_varint_decode_kind((const uint8_t *)"\x80\x00", 2, GNI_VARINT_MF, &v), GN_EPARSE);
    CHECK_EQ(gni_varint_decode_kind((const uint8_t *)"\x80\x80", 2, GNI_VARINT_PB, &v), GN_EAGAIN);
    CHECK_EQ(gni_varint_decode_kind(NULL, 1, GNI_VARINT_PB, &v), GN_EINVAL);
    CHECK_EQ(gni_varint_decode_kind(NULL, 0, GNI_VARINT_PB, &v), GN_EAGAIN);
    /* Byte by byte, with a value straddling two feeds. */
    gni_varint_rd rd;
    gni_varint_rd_init(&rd, GNI_VARINT_PB);
    CHECK_EQ(gni_varint_rd_byte(&rd, 0xac, &v), 0);
    CHECK(gni_varint_rd_busy(&rd));
    CHECK_EQ(gni_varint_rd_byte(&rd, 0x02, &v), 1);
    CHECK(v == 300);
    CHECK_EQ(gni_varint_rd_byte(&rd, 0x05, &v), 1);
    CHECK(v == 5);
}

GN_TEST(cid_bad_input)
{
    uint64_t codec = 5;
    gn_multihash mh;
    uint8_t b[64] = {0};
    CHECK_EQ(gn_cid_decode(b, 0, &codec, &mh), GN_EPARSE);
    /* CIDv0 (a bare sha2-256 multihash) reads as version 0x12. */
    long n = gn_test_unhex("12209dff3b17d74cf4d38a50d8b6383e92d181a10395a5e73a726dcccbd21bf6f0b9",
                           b, sizeof b);
    CHECK_EQ(gn_cid_decode(b, (size_t)n, &codec, &mh), GN_EVERSION);
    CHECK_EQ(gn_cid_decode((const uint8_t *)"\x02\x72\x00\x00", 4, &codec, &mh), GN_EVERSION);
    CHECK_EQ(gn_cid_decode((const uint8_t *)"\x01", 1, &codec, &mh), GN_EPARSE);
    CHECK_EQ(gn_cid_decode((const uint8_t *)"\x01\x72", 2, &codec, &mh), GN_EPARSE);
    CHECK_EQ(gn_cid_decode((const uint8_t *)"\x01\xf2", 2, &codec, &mh), GN_EPARSE);
    CHECK_EQ(gn_cid_decode((const uint8_t *)"\x01\x72\x00\x02\x41", 5, &codec, &mh), GN_EPARSE);
    CHECK_EQ(gn_cid_decode((const uint8_t *)"\x81\x00\x72\x00\x00", 5, &codec, &mh), GN_EPARSE);
    CHECK_EQ(codec, 5);
    /* Minimal valid: identity multihash with an empty digest. */
    CHECK_EQ(gn_cid_decode((const uint8_t *)"\x01\x72\x00\x00", 4, &codec, &mh), 0);
    CHECK(codec == 0x72);
    CHECK_EQ(mh.digest_len, 0);
}

GN_TEST_MAIN(GN_T(varint_spec_vectors), GN_T(varint_limits), GN_T(varint_bad_input),
             GN_T(varint_roundtrip_sweep), GN_T(varint_reader_matches_buffer_decoder),
             GN_T(varint_reader_protobuf_flavour), GN_T(base58_vectors), GN_T(base58_bad_input),
             GN_T(base32_vectors), GN_T(base32_bad_input), GN_T(multibase_vectors),
             GN_T(multibase_bad_input), GN_T(multihash_sha256_vectors),
             GN_T(multihash_identity_peer_id), GN_T(multihash_bad_input),
             GN_T(cid_peer_id_vectors), GN_T(cid_ed25519_peer), GN_T(cid_bad_input))
