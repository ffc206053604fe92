/*
 * Fuzz target for core/multiformats.c decoders. The first input byte picks
 * the decoder (mod 6): varint, base58btc, base32, multibase, multihash, CIDv1;
 * the rest is its input. Every successful decode must re-encode to exactly
 * the bytes consumed (all these encodings are canonical once the decoder's
 * checks pass); a violation calls abort().
 */
#include "golemnet/err.h"
#include "golemnet/multiformats.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fz_varint(const uint8_t *d, size_t n)
{
    uint64_t v = 0;
    uint8_t re[GN_VARINT_MAX_LEN];
    int rc = gn_varint_decode(d, n, &v);
    if (rc < 0) {
        if (rc != GN_EAGAIN && rc != GN_EPARSE)
            abort();
        if (rc == GN_EAGAIN && n >= GN_VARINT_MAX_LEN)
            abort();
        return;
    }
    if (rc < 1 || rc > GN_VARINT_MAX_LEN || (size_t)rc > n)
        abort();
    if (gn_varint_len(v) != (size_t)rc)
        abort();
    if (gn_varint_encode(v, re, sizeof re) != rc || memcmp(re, d, (size_t)rc) != 0)
        abort();
}

static void fz_base(const uint8_t *d, size_t n, int which)
{
    static uint8_t out[1100];
    static char back[2200];
    int rc;
    if (which == 0)
        rc = gn_base58btc_decode((const char *)d, n, out, sizeof out);
    else
        rc = gn_base32_decode((const char *)d, n, out, sizeof out);
    if (rc < 0) {
        if (rc != GN_EPARSE && rc != GN_ETOOBIG)
            abort();
        if (rc == GN_ETOOBIG && n <= 1024)
            abort();
        return;
    }
    int e = which == 0 ? gn_base58btc_encode(out, (size_t)rc, back, sizeof back)
                       : gn_base32_encode(out, (size_t)rc, back, sizeof back);
    if (e < 0 || (size_t)e != n || memcmp(back, d, n) != 0)
        abort();
}

static void fz_multibase(const uint8_t *d, size_t n)
{
    static uint8_t out[1100];
    static char back[2200];
    char base = 0;
    int rc = gn_multibase_decode((const char *)d, n, &base, out, sizeof out);
    if (rc < 0)
        return;
    int e = gn_multibase_encode(base, out, (size_t)rc, back, sizeof back);
    if (e < 0 || (size_t)e != n || memcmp(back, d, n) != 0)
        abort();
}

static void fz_multihash(const uint8_t *d, size_t n)
{
    static uint8_t re[1100];
    gn_multihash mh;
    if (gn_multihash_decode(d, n, &mh) != 0)
        return;
    if (mh.digest < d || mh.digest + mh.digest_len != d + n || mh.digest_len > 1024)
        abort();
    if (mh.code == GN_MH_IDENTITY) {
        int e = gn_multihash_encode(GN_MH_IDENTITY, mh.digest, mh.digest_len, re, sizeof re);
        if (e < 0 || (size_t)e != n || memcmp(re, d, n) != 0)
            abort();
    }
}

static void fz_cid(const uint8_t *d, size_t n)
{
    static uint8_t re[1200];
    uint64_t codec = 0;
    gn_multihash mh;
    if (gn_cid_decode(d, n, &codec, &mh) != 0)
        return;
    /* The multihash starts after <version><codec>. */
    size_t hdr = 1 + gn_varint_len(codec);
    if (hdr > n)
        abort();
    int e = gn_cid_encode(codec, d + hdr, n - hdr, re, sizeof re);
    if (e < 0 || (size_t)e != n || memcmp(re, d, n) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const uint8_t *d = data + 1;
    size_t n = size - 1;
    switch (data[0] % 6) {
    case 0:
        fz_varint(d, n);
        break;
    case 1:
        fz_base(d, n, 0);
        break;
    case 2:
        fz_base(d, n, 1);
        break;
    case 3:
        fz_multibase(d, n);
        break;
    case 4:
        fz_multihash(d, n);
        break;
    default:
        fz_cid(d, n);
        break;
    }
    return 0;
}
