/*
 * Resource transfer content addressing (protocols/transfer/xfer_tree.c,
 * docs/protocols/transfer.md section 2 and 8): known-answer vectors for
 * the root, manifest and CID of empty, one-chunk, odd-sized and
 * seven-chunk inputs (computed by test/unit/transfer/xfer_vectors.py with
 * Python's hashlib and RFC 6962's recursive tree hash, independently of
 * the C code), proofs for every leaf of every tree size up to 70, corrupt
 * chunk detection, manifest bounds and canonical form, the state file.
 */
#include "gn_test.h"
#include "xfer.h"

#include "golemnet/err.h"
#include "golemnet/multiformats.h"

#include <sodium.h>

static void unhex(const char *s, uint8_t *out, size_t *n)
{
    size_t k = 0;
    for (; s[0] && s[1]; s += 2) {
        unsigned v;
        sscanf(s, "%2x", &v);
        out[k++] = (uint8_t)v;
    }
    *n = k;
}

/* 0: the KAT pattern of xfer_vectors.py (every 16 KiB chunk alike);
 * otherwise each 16 KiB block differs */
static int gen_salt;

static uint8_t *gen(size_t n)
{
    uint8_t *b = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(i * 7 + 3) ^ (gen_salt ? (uint8_t)(i >> 14) * 31 : 0);
    return b;
}

/* builds leaves, tree and manifest of @n bytes of gen() at @chunk */
typedef struct res {
    uint8_t *data;
    size_t len;
    uint8_t *leaves;
    gni_xfer_tree *t;
    gni_xfer_manifest m;
    uint8_t mb[GNI_XFER_MANIFEST_MAX];
    int mb_len;
    uint8_t cid[GNI_XFER_CID_LEN];
} res;

static void res_make(res *r, size_t n, uint32_t chunk, const char *name)
{
    memset(r, 0, sizeof *r);
    r->data = gen(n);
    r->len = n;
    uint64_t lc = gni_xfer_leaf_count(n, chunk);
    r->leaves = malloc(lc ? lc * 32 : 1);
    for (uint64_t i = 0; i < lc; i++) {
        size_t l = i + 1 < lc ? chunk : n - i * chunk;
        gni_xfer_leaf_hash(r->leaves + i * 32, r->data + i * chunk, l);
    }
    CHECK_EQ(gni_xfer_tree_new(r->leaves, lc, &r->t), 0);
    r->m.total_size = n;
    r->m.chunk_size = chunk;
    r->m.leaf_count = lc;
    memcpy(r->m.root, gni_xfer_tree_root(r->t), 32);
    r->m.name_len = strlen(name);
    memcpy(r->m.name, name, r->m.name_len);
    r->mb_len = gni_xfer_manifest_encode(&r->m, r->mb, sizeof r->mb);
    CHECK(r->mb_len > 0);
    gni_xfer_cid(r->mb, (size_t)r->mb_len, r->cid);
}

static void res_free(res *r)
{
    gni_xfer_tree_free(r->t);
    free(r->leaves);
    free(r->data);
}

static void check_kat(size_t n, uint32_t chunk, const char *name, const char *root_hex,
                      const char *mb_hex, const char *cid_str)
{
    res r;
    uint8_t want[GNI_XFER_MANIFEST_MAX];
    size_t wl;
    char s[GNI_XFER_CID_STR_MAX];
    res_make(&r, n, chunk, name);
    unhex(root_hex, want, &wl);
    CHECK_EQ(wl, 32);
    CHECK_MEM(r.m.root, want, 32);
    unhex(mb_hex, want, &wl);
    CHECK_EQ(r.mb_len, wl);
    CHECK_MEM(r.mb, want, wl);
    CHECK(gni_xfer_cid_string(r.cid, s, sizeof s) > 0);
    CHECK_STR(s, cid_str);
    uint8_t back[GNI_XFER_CID_LEN];
    CHECK_EQ(gni_xfer_cid_parse_string(s, strlen(s), back), 0);
    CHECK_MEM(back, r.cid, GNI_XFER_CID_LEN);
    CHECK_EQ(gni_xfer_cid_verify(r.cid, r.mb, (size_t)r.mb_len), 0);
    gni_xfer_manifest d;
    CHECK_EQ(gni_xfer_manifest_decode(r.mb, (size_t)r.mb_len, &d), 0);
    CHECK_EQ(d.total_size, n);
    CHECK_EQ(d.leaf_count, r.m.leaf_count);
    CHECK_STR(d.name, name);
    res_free(&r);
}

GN_TEST(kat_empty)
{
    check_kat(0, 256 * 1024, "",
              "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
              "01a0e40200808010000e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a800",
              "bafk2bzaceckh3qvdfbe4twjyqwsv7q5nsg2kx2myybiwvahcx3inswyumiq7m");
}

GN_TEST(kat_one_chunk_hello)
{
    /* "hello world\n", 256 KiB chunks, name hello.txt */
    static const char hello[] = "hello world\n";
    uint8_t leaf[32], mb[GNI_XFER_MANIFEST_MAX], want[GNI_XFER_MANIFEST_MAX], cid[38];
    size_t wl;
    char s[64];
    gni_xfer_leaf_hash(leaf, (const uint8_t *)hello, 12);
    gni_xfer_manifest m = {.total_size = 12, .chunk_size = 256 * 1024, .leaf_count = 1,
                           .name_len = 9};
    gni_xfer_root(leaf, 1, m.root);
    memcpy(m.name, "hello.txt", 9);
    unhex("c78de609c00eeb4300c92d166b30dd55eb1c116ea844a654e2dd018a6a2df6c7", want, &wl);
    CHECK_MEM(m.root, want, 32);
    CHECK_MEM(m.root, leaf, 32); /* one leaf: the root is the leaf hash */
    int n = gni_xfer_manifest_encode(&m, mb, sizeof mb);
    unhex("01a0e4020c80801001c78de609c00eeb4300c92d166b30dd55eb1c116ea844a654e2dd018a6a2df6c7"
          "0968656c6c6f2e747874",
          want, &wl);
    CHECK_EQ(n, wl);
    CHECK_MEM(mb, want, wl);
    gni_xfer_cid(mb, (size_t)n, cid);
    CHECK(gni_xfer_cid_string(cid, s, sizeof s) > 0);
    CHECK_STR(s, "bafk2bzaceaslfiee2xasptlm6mlttwsjppf3n3t5jqgvmyjblyohgklcq5na6");
    /* the proof of the only chunk is empty, and verifies */
    CHECK_EQ(gni_xfer_proof_len(1, 0), 0);
    CHECK_EQ(gni_xfer_chunk_verify(&m, 0, (const uint8_t *)hello, 12, NULL, 0), 0);
}

GN_TEST(kat_odd_sized)
{
    check_kat(5 * 16384 + 100, 16384, "",
              "ca1c21ebde238917250038c968410fd1471b0bf5d5555d75e3398a8b4044241f",
              "01a0e402e4800580800106ca1c21ebde238917250038c968410fd1471b0bf5d5555d75e3398a8b4044"
              "241f00",
              "bafk2bzacect25hcf47vcl4xqmff7tqljia5r42sbu6wyhul2adfpdiompbyiy");
}

GN_TEST(kat_seven_chunks)
{
    check_kat(7 * 16384, 16384, "seven.bin",
              "1f106d0425e1ef1e8c97c63844fd654e71fa7bfa8d7739311e87e36e7af37aca",
              "01a0e402808007808001071f106d0425e1ef1e8c97c63844fd654e71fa7bfa8d7739311e87e36e7a"
              "f37aca09736576656e2e62696e",
              "bafk2bzacecjmb6k3pjabmfseuqkeb5pdkjyelg3wslzwac5tjx4w2sxk34xw2");
}

/* every leaf of every tree size 1..70: the stored tree, the O(log n) root
 * and the proofs agree; a proof fails for another leaf, another index, a
 * flipped sibling and a wrong count */
GN_TEST(proofs_all_sizes)
{
    uint8_t leaves[70 * 32], root[32], proof[GNI_XFER_DEPTH_MAX][32];
    for (unsigned i = 0; i < 70; i++)
        crypto_generichash(leaves + i * 32, 32, (const uint8_t *)&i, sizeof i, NULL, 0);
    for (uint64_t n = 1; n <= 70; n++) {
        gni_xfer_tree *t;
        CHECK_EQ(gni_xfer_tree_new(leaves, n, &t), 0);
        gni_xfer_root(leaves, n, root);
        CHECK_MEM(root, gni_xfer_tree_root(t), 32);
        for (uint64_t i = 0; i < n; i++) {
            int pc = gni_xfer_tree_proof(t, i, proof);
            CHECK_EQ(pc, gni_xfer_proof_len(n, i));
            CHECK(pc <= 7);
            CHECK_EQ(gni_xfer_proof_verify(root, n, i, leaves + i * 32, &proof[0][0], (unsigned)pc),
                     0);
            if (n > 1) {
                uint64_t o = (i + 1) % n;
                CHECK_EQ(gni_xfer_proof_verify(root, n, i, leaves + o * 32, &proof[0][0],
                                               (unsigned)pc),
                         GN_EDECRYPT);
                proof[0][5] ^= 1;
                CHECK_EQ(gni_xfer_proof_verify(root, n, i, leaves + i * 32, &proof[0][0],
                                               (unsigned)pc),
                         GN_EDECRYPT);
                proof[0][5] ^= 1;
            }
            CHECK_EQ(gni_xfer_proof_verify(root, n, i, leaves + i * 32, &proof[0][0],
                                           (unsigned)pc + 1),
                     GN_EINVAL);
        }
        CHECK_EQ(gni_xfer_tree_proof(t, n, proof), GN_EINVAL);
        CHECK_EQ(gni_xfer_proof_verify(root, n, n, leaves, &proof[0][0], 0), GN_EINVAL);
        gni_xfer_tree_free(t);
    }
}

GN_TEST(corrupt_chunk_detected)
{
    res r;
    uint8_t proof[GNI_XFER_DEPTH_MAX][32];
    gen_salt = 1;
    res_make(&r, 5 * 16384 + 100, 16384, "");
    gen_salt = 0;
    for (uint64_t i = 0; i < r.m.leaf_count; i++) {
        int pc = gni_xfer_tree_proof(r.t, i, proof);
        uint8_t *c = r.data + i * 16384;
        size_t l = gni_xfer_chunk_len(&r.m, i);
        CHECK_EQ(l, i < 5 ? 16384 : 100);
        CHECK_EQ(gni_xfer_chunk_verify(&r.m, i, c, l, &proof[0][0], (unsigned)pc), 0);
        c[l / 2] ^= 0x40; /* one flipped bit anywhere */
        CHECK_EQ(gni_xfer_chunk_verify(&r.m, i, c, l, &proof[0][0], (unsigned)pc), GN_EDECRYPT);
        c[l / 2] ^= 0x40;
        /* truncated or extended */
        CHECK_EQ(gni_xfer_chunk_verify(&r.m, i, c, l - 1, &proof[0][0], (unsigned)pc), GN_EDECRYPT);
        /* chunk i presented as chunk i^1 */
        if ((i ^ 1) < r.m.leaf_count && l == 16384)
            CHECK(gni_xfer_chunk_verify(&r.m, i ^ 1, c, l, &proof[0][0], (unsigned)pc) != 0);
    }
    res_free(&r);
}

GN_TEST(manifest_bounds)
{
    res r;
    gni_xfer_manifest d;
    uint8_t b[GNI_XFER_MANIFEST_MAX + 8];
    res_make(&r, 3 * 16384, 16384, "a.bin");
    int n = r.mb_len;
    memcpy(b, r.mb, (size_t)n);
    /* trailing byte, truncation */
    b[n] = 0;
    CHECK_EQ(gni_xfer_manifest_decode(b, (size_t)n + 1, &d), GN_EPARSE);
    for (int k = 0; k < n; k++)
        CHECK(gni_xfer_manifest_decode(b, (size_t)k, &d) < 0);
    /* version 2, another hash */
    b[0] = 2;
    CHECK_EQ(gni_xfer_manifest_decode(b, (size_t)n, &d), GN_EVERSION);
    b[0] = 1;
    b[1] = 0x12; /* sha2-256: one byte instead of three */
    CHECK_EQ(gni_xfer_manifest_decode(b, (size_t)n, &d), GN_EVERSION);
    memcpy(b, r.mb, (size_t)n);
    /* non-minimal varint total size (0x80 0x80 0x03 is minimal; 0x80 0x80 0x83 0x00 is not) */
    uint8_t nm[GNI_XFER_MANIFEST_MAX + 8];
    memcpy(nm, b, 4);
    nm[4] = 0x80, nm[5] = 0x80, nm[6] = 0x83, nm[7] = 0x00;
    CHECK_EQ(b[4], 0x80);
    CHECK_EQ(b[6], 0x03);
    memcpy(nm + 8, b + 7, (size_t)n - 7);
    CHECK_EQ(gni_xfer_manifest_decode(nm, (size_t)n + 1, &d), GN_EPARSE);
    /* leaf count that does not match the size */
    gni_xfer_manifest m = r.m;
    m.leaf_count = 4;
    CHECK_EQ(gni_xfer_manifest_encode(&m, b, sizeof b), GN_EINVAL);
    /* chunk sizes: not a power of two, too small, too large */
    m = r.m;
    m.chunk_size = 20000;
    m.leaf_count = gni_xfer_leaf_count(m.total_size, m.chunk_size);
    CHECK_EQ(gni_xfer_manifest_encode(&m, b, sizeof b), GN_EINVAL);
    m.chunk_size = 8192;
    m.leaf_count = gni_xfer_leaf_count(m.total_size, m.chunk_size);
    CHECK_EQ(gni_xfer_manifest_encode(&m, b, sizeof b), GN_EINVAL);
    m.chunk_size = 2u << 20;
    m.leaf_count = gni_xfer_leaf_count(m.total_size, m.chunk_size);
    CHECK_EQ(gni_xfer_manifest_encode(&m, b, sizeof b), GN_EINVAL);
    /* sizes above 1 PiB */
    m = r.m;
    m.total_size = GNI_XFER_SIZE_MAX + 1;
    m.leaf_count = gni_xfer_leaf_count(m.total_size, m.chunk_size);
    CHECK_EQ(gni_xfer_manifest_encode(&m, b, sizeof b), GN_EINVAL);
    /* names: "..", slash, control, bad UTF-8, 256 bytes; a good UTF-8 one */
    static const char *bad[] = {"..", ".", "a/b", "a\\b", "a\nb", "\xc0\xaf", "\xed\xa0\x80",
                                "\xe2\x82"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        m = r.m;
        m.name_len = strlen(bad[i]);
        memcpy(m.name, bad[i], m.name_len + 1);
        CHECK_EQ(gni_xfer_manifest_encode(&m, b, sizeof b), GN_EINVAL);
    }
    m = r.m;
    m.name_len = 256;
    memset(m.name, 'x', 256);
    CHECK_EQ(gni_xfer_manifest_encode(&m, b, sizeof b), GN_EINVAL);
    m.name_len = 255;
    m.name[255] = 0;
    n = gni_xfer_manifest_encode(&m, b, sizeof b);
    CHECK(n > 0 && n <= (int)GNI_XFER_MANIFEST_MAX);
    CHECK_EQ(gni_xfer_manifest_decode(b, (size_t)n, &d), 0);
    m.name_len = strlen("résumé.pdf");
    memcpy(m.name, "résumé.pdf", m.name_len + 1);
    n = gni_xfer_manifest_encode(&m, b, sizeof b);
    CHECK(n > 0);
    CHECK_EQ(gni_xfer_manifest_decode(b, (size_t)n, &d), 0);
    CHECK_STR(d.name, "résumé.pdf");
    /* the output buffer: every short length is GN_ENOSPC */
    for (int k = 0; k < n; k++)
        CHECK_EQ(gni_xfer_manifest_encode(&m, b, (size_t)k), GN_ENOSPC);
    /* above the manifest bound */
    CHECK_EQ(gni_xfer_manifest_decode(b, GNI_XFER_MANIFEST_MAX + 1, &d), GN_ETOOBIG);
    /* an empty resource must carry the empty root */
    m = (gni_xfer_manifest){.total_size = 0, .chunk_size = 16384, .leaf_count = 0};
    CHECK_EQ(gni_xfer_manifest_encode(&m, b, sizeof b), GN_EINVAL);
    res_free(&r);
}

GN_TEST(cid_parse)
{
    res r;
    char s[64];
    uint8_t c[38], raw[64];
    res_make(&r, 100, 16384, "");
    CHECK(gni_xfer_cid_string(r.cid, s, sizeof s) > 0);
    CHECK(strncmp(s, "bafk2bzace", 10) == 0);
    /* base58btc form */
    char z[80];
    CHECK(gn_multibase_encode('z', r.cid, 38, z, sizeof z) > 0);
    CHECK_EQ(gni_xfer_cid_parse_string(z, strlen(z), c), 0);
    CHECK_MEM(c, r.cid, 38);
    /* a peer ID CID (libp2p-key, identity): another codec */
    memcpy(raw, r.cid, 38);
    raw[1] = 0x72;
    CHECK(gn_multibase_encode('b', raw, 38, s, sizeof s) > 0);
    CHECK_EQ(gni_xfer_cid_parse_string(s, strlen(s), c), GN_ENOTSUP);
    /* sha2-256 instead of blake2b-256 */
    uint8_t sh[36] = {0x01, 0x55, 0x12, 0x20};
    CHECK(gn_multibase_encode('b', sh, 36, s, sizeof s) > 0);
    CHECK_EQ(gni_xfer_cid_parse_string(s, strlen(s), c), GN_ENOTSUP);
    CHECK_EQ(gni_xfer_cid_parse_string("bafk", 4, c), GN_EPARSE);
    CHECK_EQ(gni_xfer_cid_parse_string("Qmfoo", 5, c), GN_EPARSE);
    /* a manifest with one byte changed does not match */
    r.mb[r.mb_len - 1] ^= 1;
    CHECK_EQ(gni_xfer_cid_verify(r.cid, r.mb, (size_t)r.mb_len), GN_EDECRYPT);
    res_free(&r);
}

GN_TEST(state_file)
{
    res r;
    uint8_t f[1024];
    res_make(&r, 11 * 16384 + 1, 16384, "s.bin"); /* 12 chunks: 2 bitmap bytes */
    int h = gni_xfer_state_header(r.mb, (size_t)r.mb_len, f, sizeof f);
    CHECK_EQ(h, 12 + r.mb_len);
    CHECK_MEM(f, "GNXFERS1", 8);
    f[h] = 0x05;
    f[h + 1] = 0x08; /* chunks 0, 2 and 11 */
    gni_xfer_manifest m;
    const uint8_t *bm;
    size_t hl;
    CHECK_EQ(gni_xfer_state_parse(f, (size_t)h + 2, r.cid, &m, &bm, &hl), 0);
    CHECK_EQ(hl, (size_t)h);
    CHECK(gni_xfer_bit(bm, 0) && !gni_xfer_bit(bm, 1) && gni_xfer_bit(bm, 2) &&
          gni_xfer_bit(bm, 11));
    uint8_t mask;
    CHECK_EQ(gni_xfer_state_bit(hl, 11, &mask), (uint64_t)h + 1);
    CHECK_EQ(mask, 0x08);
    /* a bit past the last chunk, a short or long file, another CID, bad magic */
    f[h + 1] = 0x18;
    CHECK_EQ(gni_xfer_state_parse(f, (size_t)h + 2, r.cid, &m, &bm, &hl), GN_EPARSE);
    f[h + 1] = 0x08;
    CHECK_EQ(gni_xfer_state_parse(f, (size_t)h + 1, r.cid, &m, &bm, &hl), GN_EPARSE);
    CHECK_EQ(gni_xfer_state_parse(f, (size_t)h + 3, r.cid, &m, &bm, &hl), GN_EPARSE);
    uint8_t other[38];
    memcpy(other, r.cid, 38);
    other[37] ^= 1;
    CHECK_EQ(gni_xfer_state_parse(f, (size_t)h + 2, other, &m, &bm, &hl), GN_EDECRYPT);
    f[0] = 'X';
    CHECK_EQ(gni_xfer_state_parse(f, (size_t)h + 2, r.cid, &m, &bm, &hl), GN_EPARSE);
    /* a manifest length above the bound */
    memcpy(f, "GNXFERS1\x00\x00\x10\x00", 12);
    CHECK_EQ(gni_xfer_state_parse(f, sizeof f, r.cid, &m, &bm, &hl), GN_EPARSE);
    res_free(&r);
}

GN_TEST_MAIN(GN_T(kat_empty), GN_T(kat_one_chunk_hello), GN_T(kat_odd_sized),
             GN_T(kat_seven_chunks), GN_T(proofs_all_sizes), GN_T(corrupt_chunk_detected),
             GN_T(manifest_bounds), GN_T(cid_parse), GN_T(state_file))
