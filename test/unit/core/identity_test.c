/*
 * Unit tests for core/identity.c: Ed25519 identities, libp2p key protobufs,
 * peer IDs and key files.
 *
 * Vector sources:
 *  [SPEC]  libp2p/specs peer-ids/peer-ids.md, "Test vectors" table (Ed25519,
 *          secp256k1 and ECDSA key protobufs) and the "Decoding" examples.
 *  [RFC]   RFC 8032 section 7.1, TEST 1 and TEST 2.
 *  [RUST]  rust-libp2p --secret-key-seed convention: seed 1 peer ID given in
 *          include/golemnet/identity.h; seeds 2 and 3 as listed by a
 *          rust-libp2p program ("Seed N peer id: ..." comment table).
 *  [GO]    go-libp2p test asserting the marshalled PrivateKey of the all-zero
 *          seed (08011240 00..00 3b6a27bc...).
 *  [PY]    Values derived from the [SPEC] bytes with an independent Python
 *          script (hashlib + a textbook base58/base32), not with this code.
 */
#include "gn_test.h"

#include "golemnet/err.h"
#include "golemnet/identity.h"
#include "golemnet/multiformats.h"

#include "gn_test_os.h" /* temporary directories, modes: through libuv */

#include <sodium.h>

/* [SPEC] Ed25519 private key (PrivateKey protobuf, 68 bytes). */
static const char spec_ed_priv_hex[] =
    "080112407e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d"
    "1ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e";
/* [SPEC] Ed25519 public key (PublicKey protobuf, 36 bytes). */
static const char spec_ed_pub_hex[] =
    "080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e";
/* [PY] peer ID of spec_ed_pub (identity multihash), both text forms. */
static const char spec_ed_pid[] = "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq";
static const char spec_ed_cid[] =
    "bafzaajaiaejcahwr5d5ofrfbis4l5d6uwr57hu5tjodrypfm6yaq6dsc2r2pzyt6";
/* [SPEC] secp256k1 public and private keys. */
static const char spec_secp_pub_hex[] =
    "08021221037777e994e452c21604f91de093ce415f5432f701dd8cd1a7a6fea0e630bfca99";
static const char spec_secp_priv_hex[] =
    "0802122053DADF1D5A164D6B4ACDB15E24AA4C5B1D3461BDBD42ABEDB0A4404D56CED8FB";
/* [PY] its peer ID (37 bytes <= 42: identity multihash). */
static const char spec_secp_pid[] = "16Uiu2HAmLhLvBoYaoZfaMUKuibM6ac163GwKY74c5kiSLg5KvLpY";
/* [SPEC] ECDSA public key (95 bytes > 42: sha2-256 peer ID). */
static const char spec_ecdsa_pub_hex[] =
    "0803125b3059301306072a8648ce3d020106082a8648ce3d03010703420004de3d300fa3"
    "6ae0e8f5d530899d83abab44abf3161f162a4bc901d8e6ecda020e8b6d5f8da30525e71d"
    "6851510c098e5c47c646a597fb4dcec034e9f77c409e62";
static const char spec_ecdsa_pid[] = "QmVMT29id3TUASyfZZ6k9hmNyc2nYabCo4uMSpDw4zrgDk"; /* [PY] */

/* [SPEC] "Decoding" examples: the same sha256 peer ID in both forms, and an Ed25519 one. */
static const char spec_qm[] = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N";
static const char spec_bafz[] = "bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe";
static const char spec_12d3[] = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA";

static size_t unhex(const char *hex, uint8_t *out, size_t out_len)
{
    long n = gn_test_unhex(hex, out, out_len);
    if (n < 0) {
        printf("# bad hex vector\n");
        abort();
    }
    return (size_t)n;
}

static int parse_str(const char *s, gn_peer_id *pid)
{
    return gn_peer_id_parse(s, strlen(s), pid);
}

/* ---- known answers ---------------------------------------------------------------- */

GN_TEST(spec_ed25519_private_vector)
{
    uint8_t priv[128], pub_pb[64], out[128];
    size_t priv_len = unhex(spec_ed_priv_hex, priv, sizeof priv);
    size_t pub_len = unhex(spec_ed_pub_hex, pub_pb, sizeof pub_pb);
    CHECK_EQ(priv_len, 68);
    CHECK_EQ(pub_len, 36);

    gn_identity *id = NULL;
    CHECK_EQ(gn_identity_decode_private(priv, priv_len, &id), 0);
    CHECK(id != NULL);

    /* The spec: "Implementations SHOULD check that they can produce the
     * provided public key from the private key." */
    uint8_t pk[GN_ED25519_PUBLICKEYBYTES];
    gn_identity_public_key(id, pk);
    CHECK_MEM(pk, pub_pb + 4, 32);
    CHECK_EQ(gn_pubkey_encode_ed25519(pk, out, sizeof out), 36);
    CHECK_MEM(out, pub_pb, 36);

    /* Deterministic re-encoding of the private key. */
    CHECK_EQ(gn_identity_encode_private(id, out, sizeof out), 68);
    CHECK_MEM(out, priv, 68);

    gn_peer_id pid;
    char s[GN_PEER_ID_MAX_STRLEN];
    gn_identity_peer_id(id, &pid);
    CHECK_EQ(pid.len, 38);
    CHECK_EQ(pid.bytes[0], 0x00);
    CHECK_EQ(pid.bytes[1], 36);
    CHECK_MEM(pid.bytes + 2, pub_pb, 36);
    CHECK_EQ(gn_peer_id_to_string(&pid, s, sizeof s), (int)strlen(spec_ed_pid));
    CHECK_STR(s, spec_ed_pid);
    CHECK_EQ(gn_peer_id_to_cid_string(&pid, s, sizeof s), (int)strlen(spec_ed_cid));
    CHECK_STR(s, spec_ed_cid);

    gn_peer_id pid2;
    CHECK_EQ(gn_peer_id_from_pubkey(pub_pb, pub_len, &pid2), 0);
    CHECK(gn_peer_id_equal(&pid, &pid2));
    sodium_memzero(out, sizeof out);
    gn_identity_free(id);
}

GN_TEST(int_seed_peer_ids)
{
    /* [RUST] */
    static const char *const want[] = {
        "12D3KooWPjceQrSwdWXPyLLeABRXmuqt69Rg3sBYbU1Nft9HyQ6X",
        "12D3KooWH3uVF6wv47WnArKHk5p6cvgCJEb74UTmxztmQDc298L3",
        "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo",
    };
    for (uint32_t n = 1; n <= 3; n++) {
        gn_identity *id = NULL;
        CHECK_EQ(gn_identity_from_int_seed(n, &id), 0);
        gn_peer_id pid;
        char s[GN_PEER_ID_MAX_STRLEN];
        gn_identity_peer_id(id, &pid);
        CHECK_OK(gn_peer_id_to_string(&pid, s, sizeof s));
        gn_identity_free(id);
        CHECK_STR(s, want[n - 1]);
    }
}

GN_TEST(int_seed_layout)
{
    /* Seed bytes 0..3 = n little-endian, the rest zero. */
    uint8_t seed[32] = {0x04, 0x03, 0x02, 0x01};
    gn_identity *a = NULL, *b = NULL;
    CHECK_EQ(gn_identity_from_int_seed(0x01020304u, &a), 0);
    CHECK_EQ(gn_identity_from_seed(seed, &b), 0);
    uint8_t pa[32], pb[32];
    gn_identity_public_key(a, pa);
    gn_identity_public_key(b, pb);
    gn_identity_free(a);
    gn_identity_free(b);
    CHECK_MEM(pa, pb, 32);
}

GN_TEST(zero_seed_private_encoding)
{
    /* [GO] go-libp2p marshals the all-zero-seed Ed25519 key as this. */
    uint8_t want[80], out[80];
    size_t n = unhex("0801124000000000000000000000000000000000000000000000000000000000000000"
                     "003b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29",
                     want, sizeof want);
    CHECK_EQ(n, 68);
    gn_identity *id = NULL;
    CHECK_EQ(gn_identity_from_int_seed(0, &id), 0);
    int len = gn_identity_encode_private(id, out, sizeof out);
    gn_identity_free(id);
    CHECK_EQ(len, 68);
    CHECK_MEM(out, want, 68);
}

GN_TEST(rfc8032_sign_verify)
{
    /* [RFC] TEST 1 (empty message) and TEST 2 (one byte 0x72). */
    static const struct {
        const char *seed, *pub, *msg, *sig;
    } v[] = {
        {"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
         "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
         "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e"
         "39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
        {"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
         "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
         "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f"
         "3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint8_t seed[32], pub[32], msg[8], sig[64], got[64], pk[32];
        CHECK_EQ(unhex(v[i].seed, seed, sizeof seed), 32);
        CHECK_EQ(unhex(v[i].pub, pub, sizeof pub), 32);
        size_t mlen = unhex(v[i].msg, msg, sizeof msg);
        CHECK_EQ(unhex(v[i].sig, sig, sizeof sig), 64);

        gn_identity *id = NULL;
        CHECK_EQ(gn_identity_from_seed(seed, &id), 0);
        gn_identity_public_key(id, pk);
        CHECK_MEM(pk, pub, 32);
        gn_identity_sign(id, mlen ? msg : NULL, mlen, got);
        gn_identity_free(id);
        CHECK_MEM(got, sig, 64);

        CHECK_EQ(gn_ed25519_verify(pub, msg, mlen, sig), 0);
        got[i * 7] ^= 0x01; /* corrupt one signature bit */
        CHECK_EQ(gn_ed25519_verify(pub, msg, mlen, got), GN_EBADSIG);
        uint8_t other[9] = {0x72, 0x00};
        CHECK_EQ(gn_ed25519_verify(pub, other, mlen + 1, sig), GN_EBADSIG);
    }
}

GN_TEST(verify_rejects_bad_keys)
{
    uint8_t sig[64], msg[3] = {1, 2, 3};
    gn_identity *id = NULL;
    CHECK_EQ(gn_identity_from_int_seed(7, &id), 0);
    gn_identity_sign(id, msg, sizeof msg, sig);
    uint8_t pk[32];
    gn_identity_public_key(id, pk);
    gn_identity_free(id);
    CHECK_EQ(gn_ed25519_verify(pk, msg, sizeof msg, sig), 0);

    /* Another identity's key. */
    uint8_t pk2[32];
    CHECK_EQ(gn_identity_from_int_seed(8, &id), 0);
    gn_identity_public_key(id, pk2);
    gn_identity_free(id);
    CHECK_EQ(gn_ed25519_verify(pk2, msg, sizeof msg, sig), GN_EBADSIG);

    /* Small-order / identity-point public key (all zero but the first byte). */
    uint8_t small[32] = {1};
    CHECK_EQ(gn_ed25519_verify(small, msg, sizeof msg, sig), GN_EBADSIG);
    /* NULL message with non-zero length. */
    CHECK_EQ(gn_ed25519_verify(pk, NULL, 3, sig), GN_EBADSIG);
}

GN_TEST(generate_is_random_and_consistent)
{
    gn_identity *a = NULL, *b = NULL;
    CHECK_EQ(gn_identity_generate(&a), 0);
    CHECK_EQ(gn_identity_generate(&b), 0);
    gn_peer_id pa, pb;
    gn_identity_peer_id(a, &pa);
    gn_identity_peer_id(b, &pb);
    CHECK(!gn_peer_id_equal(&pa, &pb));
    CHECK(gn_peer_id_equal(&pa, &pa));

    char s[GN_PEER_ID_MAX_STRLEN];
    CHECK_OK(gn_peer_id_to_string(&pa, s, sizeof s));
    CHECK(strncmp(s, "12D3KooW", 8) == 0);
    CHECK_EQ(strlen(s), 52);

    uint8_t pk[32], pk_from_pid[32], sig[64];
    gn_identity_public_key(a, pk);
    CHECK_EQ(gn_peer_id_ed25519_key(&pa, pk_from_pid), 0);
    CHECK_MEM(pk, pk_from_pid, 32);
    gn_identity_sign(a, (const uint8_t *)"hello", 5, sig);
    CHECK_EQ(gn_ed25519_verify(pk, (const uint8_t *)"hello", 5, sig), 0);

    /* Private key round trip. */
    uint8_t priv[68];
    CHECK_EQ(gn_identity_encode_private(a, priv, sizeof priv), 68);
    gn_identity *c = NULL;
    CHECK_EQ(gn_identity_decode_private(priv, sizeof priv, &c), 0);
    gn_peer_id pc;
    gn_identity_peer_id(c, &pc);
    CHECK(gn_peer_id_equal(&pa, &pc));
    sodium_memzero(priv, sizeof priv);
    gn_identity_free(a);
    gn_identity_free(b);
    gn_identity_free(c);
    gn_identity_free(NULL);
}

GN_TEST(invalid_arguments)
{
    gn_identity *id = (gn_identity *)(uintptr_t)0x1;
    CHECK_EQ(gn_identity_from_seed(NULL, &id), GN_EINVAL);
    CHECK(id == (gn_identity *)(uintptr_t)0x1); /* untouched on failure */
    uint8_t seed[32] = {0};
    CHECK_EQ(gn_identity_from_seed(seed, NULL), GN_EINVAL);
    CHECK_EQ(gn_identity_generate(NULL), GN_EINVAL);
}

GN_TEST(encode_nospc)
{
    uint8_t pk[32] = {9}, out[68];
    CHECK_EQ(gn_pubkey_encode_ed25519(pk, out, 35), GN_ENOSPC);
    CHECK_EQ(gn_pubkey_encode_ed25519(pk, out, 36), 36);
    gn_identity *id = NULL;
    CHECK_EQ(gn_identity_from_int_seed(1, &id), 0);
    CHECK_EQ(gn_identity_encode_private(id, out, 67), GN_ENOSPC);
    CHECK_EQ(gn_identity_encode_private(id, out, 68), 68);
    sodium_memzero(out, sizeof out);

    gn_peer_id pid;
    gn_identity_peer_id(id, &pid);
    gn_identity_free(id);
    char s[GN_PEER_ID_MAX_STRLEN];
    CHECK_EQ(gn_peer_id_to_string(&pid, s, 52), GN_ENOSPC); /* no room for the NUL */
    CHECK_EQ(gn_peer_id_to_string(&pid, s, 53), 52);
    int n = gn_peer_id_to_cid_string(&pid, s, sizeof s);
    CHECK(n > 0);
    CHECK_EQ(gn_peer_id_to_cid_string(&pid, s, (size_t)n), GN_ENOSPC);
    CHECK_EQ(gn_peer_id_to_cid_string(&pid, s, (size_t)n + 1), n);
}

/* ---- PublicKey decoding ---------------------------------------------------------- */

GN_TEST(pubkey_decode_spec_vectors)
{
    uint8_t in[128], pk[32];
    gn_key_type t = (gn_key_type)99;
    size_t n = unhex(spec_ed_pub_hex, in, sizeof in);
    CHECK_EQ(gn_pubkey_decode(in, n, &t, pk), 0);
    CHECK_EQ(t, GN_KEY_ED25519);
    CHECK_MEM(pk, in + 4, 32);

    n = unhex(spec_secp_pub_hex, in, sizeof in);
    CHECK_EQ(gn_pubkey_decode(in, n, &t, pk), GN_EBADKEY);
    CHECK_EQ(t, GN_KEY_SECP256K1);

    n = unhex(spec_ecdsa_pub_hex, in, sizeof in);
    CHECK_EQ(n, 95);
    CHECK_EQ(gn_pubkey_decode(in, n, &t, pk), GN_EBADKEY);
    CHECK_EQ(t, GN_KEY_ECDSA);

    /* RSA type with opaque data: well-formed, not Ed25519. */
    static const uint8_t rsa[] = {0x08, 0x00, 0x12, 0x03, 0x30, 0x01, 0x00};
    CHECK_EQ(gn_pubkey_decode(rsa, sizeof rsa, &t, pk), GN_EBADKEY);
    CHECK_EQ(t, GN_KEY_RSA);
}

GN_TEST(pubkey_decode_bad_input)
{
    uint8_t good[36], buf[GN_PUBKEY_MAX_BYTES + 8], pk[32];
    gn_key_type t;
    CHECK_EQ(unhex(spec_ed_pub_hex, good, sizeof good), 36);

    /* Every truncation is malformed. */
    for (size_t len = 0; len < 36; len++)
        CHECK_EQ(gn_pubkey_decode(good, len, &t, pk), GN_EPARSE);

    /* Oversized. */
    memset(buf, 0, sizeof buf);
    CHECK_EQ(gn_pubkey_decode(buf, GN_PUBKEY_MAX_BYTES + 1, &t, pk), GN_ETOOBIG);

    /* Garbage. */
    memset(buf, 0xff, 16);
    CHECK_EQ(gn_pubkey_decode(buf, 16, &t, pk), GN_EPARSE);

    /* Extra unknown field (3: varint 0) after a valid key. */
    memcpy(buf, good, 36);
    buf[36] = 0x18;
    buf[37] = 0x00;
    CHECK_EQ(gn_pubkey_decode(buf, 38, &t, pk), GN_EPARSE);

    /* Trailing garbage byte. */
    buf[36] = 0x00;
    CHECK_EQ(gn_pubkey_decode(buf, 37, &t, pk), GN_EPARSE);

    /* Fields in reverse order: Data then Type (not deterministic). */
    memcpy(buf, good + 2, 34);
    buf[34] = 0x08;
    buf[35] = 0x01;
    CHECK_EQ(gn_pubkey_decode(buf, 36, &t, pk), GN_EPARSE);

    /* Non-minimal varint for Type (0x81 0x00 = 1). */
    buf[0] = 0x08;
    buf[1] = 0x81;
    buf[2] = 0x00;
    memcpy(buf + 3, good + 2, 34);
    CHECK_EQ(gn_pubkey_decode(buf, 37, &t, pk), GN_EPARSE);

    /* Duplicate Type field. */
    buf[0] = 0x08;
    buf[1] = 0x01;
    memcpy(buf + 2, good, 36);
    CHECK_EQ(gn_pubkey_decode(buf, 38, &t, pk), GN_EPARSE);

    /* Unknown key type 7. */
    memcpy(buf, good, 36);
    buf[1] = 0x07;
    CHECK_EQ(gn_pubkey_decode(buf, 36, &t, pk), GN_EPARSE);

    /* Missing Data. */
    static const uint8_t no_data[] = {0x08, 0x01};
    CHECK_EQ(gn_pubkey_decode(no_data, sizeof no_data, &t, pk), GN_EPARSE);
    /* Missing Type. */
    CHECK_EQ(gn_pubkey_decode(good + 2, 34, &t, pk), GN_EPARSE);

    /* Ed25519 with a 31-byte key: well-formed, wrong size; type still set. */
    buf[0] = 0x08;
    buf[1] = 0x01;
    buf[2] = 0x12;
    buf[3] = 31;
    memcpy(buf + 4, good + 4, 31);
    t = (gn_key_type)99;
    CHECK_EQ(gn_pubkey_decode(buf, 35, &t, pk), GN_EBADKEY);
    CHECK_EQ(t, GN_KEY_ED25519);

    /* Length prefix larger than the input. */
    memcpy(buf, good, 36);
    buf[3] = 0x21;
    CHECK_EQ(gn_pubkey_decode(buf, 36, &t, pk), GN_EPARSE);
}

/* ---- PrivateKey decoding ---------------------------------------------------------- */

GN_TEST(private_decode_forms_and_errors)
{
    uint8_t priv[128], buf[4200];
    size_t n = unhex(spec_ed_priv_hex, priv, sizeof priv);
    gn_identity *id = NULL, *id2 = NULL;

    /* 32-byte seed-only form gives the same identity. */
    buf[0] = 0x08;
    buf[1] = 0x01;
    buf[2] = 0x12;
    buf[3] = 32;
    memcpy(buf + 4, priv + 4, 32);
    CHECK_EQ(gn_identity_decode_private(buf, 36, &id), 0);
    CHECK_EQ(gn_identity_decode_private(priv, n, &id2), 0);
    gn_peer_id a, b;
    gn_identity_peer_id(id, &a);
    gn_identity_peer_id(id2, &b);
    gn_identity_free(id);
    gn_identity_free(id2);
    CHECK(gn_peer_id_equal(&a, &b));

    /* Embedded public key that does not match the seed. */
    id = NULL;
    memcpy(buf, priv, n);
    buf[n - 1] ^= 0x01;
    CHECK_EQ(gn_identity_decode_private(buf, n, &id), GN_EBADKEY);
    CHECK(id == NULL);

    /* Truncations. */
    for (size_t len = 0; len < n; len++)
        CHECK_EQ(gn_identity_decode_private(priv, len, &id), GN_EPARSE);

    /* Other key types decode since 0.2 (keys_test.c has their vectors). */
    size_t sn = unhex(spec_secp_priv_hex, buf, sizeof buf);
    CHECK_EQ(gn_identity_decode_private(buf, sn, &id), 0);
    CHECK_EQ(gn_identity_key_type(id), GN_KEY_SECP256K1);
    gn_identity_free(id);
    id = NULL;
    /* An unknown key type is a bad key. */
    static const uint8_t type9[] = {0x08, 0x09, 0x12, 0x01, 0x00};
    CHECK_EQ(gn_identity_decode_private(type9, sizeof type9, &id), GN_EBADKEY);

    /* Ed25519 with the legacy 96-byte Data (spec "Ed25519"): seed || pk || pk. */
    buf[0] = 0x08;
    buf[1] = 0x01;
    buf[2] = 0x12;
    buf[3] = 96;
    memcpy(buf + 4, priv + 4, 64);
    memcpy(buf + 68, priv + 36, 32);
    CHECK_EQ(gn_identity_decode_private(buf, 100, &id), 0);
    gn_identity_peer_id(id, &b);
    gn_identity_free(id);
    id = NULL;
    CHECK(gn_peer_id_equal(&a, &b));
    /* ... whose two public key copies differ: rejected. */
    buf[99] ^= 0x01;
    CHECK_EQ(gn_identity_decode_private(buf, 100, &id), GN_EBADKEY);
    CHECK(id == NULL);
    /* ... and a 33-byte Data is not an Ed25519 key. */
    buf[3] = 33;
    CHECK_EQ(gn_identity_decode_private(buf, 37, &id), GN_EBADKEY);

    /* Garbage and oversized input. */
    memset(buf, 0xff, 40);
    CHECK_EQ(gn_identity_decode_private(buf, 40, &id), GN_EPARSE);
    memset(buf, 0, sizeof buf);
    CHECK_EQ(gn_identity_decode_private(buf, 4097, &id), GN_EPARSE);
    CHECK(id == NULL);
    sodium_memzero(priv, sizeof priv);
    sodium_memzero(buf, sizeof buf);
}

/* ---- peer IDs ------------------------------------------------------------------- */

GN_TEST(peer_id_from_pubkey_threshold)
{
    uint8_t key[GN_PUBKEY_MAX_BYTES + 1];
    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (uint8_t)(i * 7 + 1);
    gn_peer_id pid;

    /* 42 bytes: identity multihash, inline. */
    CHECK_EQ(gn_peer_id_from_pubkey(key, 42, &pid), 0);
    CHECK_EQ(pid.len, 44);
    CHECK_EQ(pid.bytes[0], 0x00);
    CHECK_EQ(pid.bytes[1], 42);
    CHECK_MEM(pid.bytes + 2, key, 42);

    /* 43 bytes: sha2-256 multihash. */
    uint8_t digest[32];
    crypto_hash_sha256(digest, key, 43);
    CHECK_EQ(gn_peer_id_from_pubkey(key, 43, &pid), 0);
    CHECK_EQ(pid.len, 34);
    CHECK_EQ(pid.bytes[0], 0x12);
    CHECK_EQ(pid.bytes[1], 0x20);
    CHECK_MEM(pid.bytes + 2, digest, 32);

    CHECK_EQ(gn_peer_id_from_pubkey(key, 0, &pid), GN_EINVAL);
    CHECK_EQ(gn_peer_id_from_pubkey(key, GN_PUBKEY_MAX_BYTES + 1, &pid), GN_ETOOBIG);
    CHECK_EQ(gn_peer_id_from_pubkey(key, GN_PUBKEY_MAX_BYTES, &pid), 0);
}

GN_TEST(peer_id_other_key_types)
{
    uint8_t in[128], pk[32];
    char s[GN_PEER_ID_MAX_STRLEN];
    gn_peer_id pid, back;

    size_t n = unhex(spec_secp_pub_hex, in, sizeof in);
    CHECK_EQ(gn_peer_id_from_pubkey(in, n, &pid), 0);
    CHECK_OK(gn_peer_id_to_string(&pid, s, sizeof s));
    CHECK_STR(s, spec_secp_pid);
    CHECK_EQ(gn_peer_id_ed25519_key(&pid, pk), GN_EBADKEY);
    CHECK_EQ(parse_str(s, &back), 0);
    CHECK(gn_peer_id_equal(&pid, &back));

    n = unhex(spec_ecdsa_pub_hex, in, sizeof in);
    CHECK_EQ(gn_peer_id_from_pubkey(in, n, &pid), 0);
    CHECK_OK(gn_peer_id_to_string(&pid, s, sizeof s));
    CHECK_STR(s, spec_ecdsa_pid);
    CHECK_EQ(gn_peer_id_ed25519_key(&pid, pk), GN_ENOTFOUND);
}

GN_TEST(peer_id_parse_spec_examples)
{
    gn_peer_id qm, bafz, ed;
    char s[GN_PEER_ID_MAX_STRLEN];
    CHECK_EQ(parse_str(spec_qm, &qm), 0);
    CHECK_EQ(qm.len, 34);
    CHECK_EQ(qm.bytes[0], 0x12);
    CHECK_EQ(parse_str(spec_bafz, &bafz), 0);
    CHECK(gn_peer_id_equal(&qm, &bafz));
    CHECK_OK(gn_peer_id_to_cid_string(&qm, s, sizeof s));
    CHECK_STR(s, spec_bafz);
    CHECK_OK(gn_peer_id_to_string(&bafz, s, sizeof s));
    CHECK_STR(s, spec_qm);

    uint8_t pk[32];
    CHECK_EQ(gn_peer_id_ed25519_key(&qm, pk), GN_ENOTFOUND);

    CHECK_EQ(parse_str(spec_12d3, &ed), 0);
    CHECK_EQ(ed.len, 38);
    CHECK_EQ(gn_peer_id_ed25519_key(&ed, pk), 0);
    /* Rebuild the peer ID from the extracted key. */
    uint8_t pb[36];
    gn_peer_id again;
    CHECK_EQ(gn_pubkey_encode_ed25519(pk, pb, sizeof pb), 36);
    CHECK_EQ(gn_peer_id_from_pubkey(pb, sizeof pb, &again), 0);
    CHECK(gn_peer_id_equal(&ed, &again));
    CHECK_OK(gn_peer_id_to_string(&ed, s, sizeof s));
    CHECK_STR(s, spec_12d3);

    /* The CID form of an Ed25519 peer ID parses back to the same ID. */
    gn_peer_id e2;
    CHECK_EQ(parse_str(spec_ed_cid, &e2), 0);
    CHECK_OK(gn_peer_id_to_string(&e2, s, sizeof s));
    CHECK_STR(s, spec_ed_pid);
    /* Length argument, not NUL: a longer buffer parsed with the right length. */
    char longer[80];
    snprintf(longer, sizeof longer, "%sXYZ", spec_12d3);
    CHECK_EQ(gn_peer_id_parse(longer, strlen(spec_12d3), &e2), 0);
    CHECK(gn_peer_id_equal(&ed, &e2));
}

GN_TEST(peer_id_parse_bad_input)
{
    gn_peer_id pid;
    pid.len = 0xAB;
    char s[300];

    CHECK_EQ(gn_peer_id_parse("", 0, &pid), GN_EPARSE);
    memset(s, 'Q', sizeof s);
    CHECK_EQ(gn_peer_id_parse(s, GN_PEER_ID_MAX_STRLEN, &pid), GN_ETOOBIG);
    CHECK_EQ(gn_peer_id_parse(s, sizeof s, &pid), GN_ETOOBIG);
    CHECK_EQ(pid.len, 0xAB); /* untouched */

    /* Every truncation of a sha2-256 peer ID is rejected. (Identity peer IDs
     * may have short prefixes that are themselves well-formed identity
     * multihashes: "12D3KooWD3ec" is 00 07 <7 bytes>. Those never equal the
     * original.) */
    gn_peer_id full;
    CHECK_EQ(parse_str(spec_12d3, &full), 0);
    for (size_t len = 0; len < strlen(spec_12d3); len++) {
        gn_peer_id t;
        if (gn_peer_id_parse(spec_12d3, len, &t) == 0)
            CHECK(!gn_peer_id_equal(&t, &full));
    }
    CHECK_EQ(gn_peer_id_parse(spec_12d3, 12, &full), 0);
    CHECK_EQ(full.len, 9);
    for (size_t len = 0; len < strlen(spec_qm); len++)
        CHECK(gn_peer_id_parse(spec_qm, len, &pid) < 0);
    for (size_t len = 0; len < strlen(spec_bafz); len++)
        CHECK(gn_peer_id_parse(spec_bafz, len, &pid) < 0);
    CHECK_EQ(pid.len, 0xAB);

    /* Characters outside the alphabets. */
    snprintf(s, sizeof s, "%s", spec_12d3);
    s[10] = '0';
    CHECK_EQ(parse_str(s, &pid), GN_EPARSE);
    snprintf(s, sizeof s, "%s", spec_bafz);
    s[10] = '1';
    CHECK_EQ(parse_str(s, &pid), GN_EPARSE);
    /* Upper-case base32 multibase 'B' is not supported. */
    CHECK_EQ(parse_str("BAFZBEIE5745RPV2M6TJYUUGYWY4D5EWRQGQQHFNF445HE3OMZPJBX5XQXE", &pid),
             GN_EPARSE);
    /* Hex multibase, unsupported. */
    CHECK_EQ(parse_str("f017212209dff3b17d74cf4d38a50d8b6383e92d181a10395a5e73a726dcccbd2"
                       "1bf6f0b9",
                       &pid),
             GN_EPARSE);
    /* A CIDv1 with the dag-pb codec (0x70), not libp2p-key: "bafybei..." */
    CHECK_EQ(parse_str("bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi", &pid),
             GN_EPARSE);
    /* Extra character after a valid peer ID. */
    snprintf(s, sizeof s, "%sa", spec_qm);
    CHECK_EQ(parse_str(s, &pid), GN_EPARSE);
    /* Not a known form at all. */
    CHECK_EQ(parse_str("hello", &pid), GN_EPARSE);
    CHECK_EQ(parse_str("Qm", &pid), GN_EPARSE);
    CHECK_EQ(parse_str("1", &pid), GN_EPARSE);
    CHECK_EQ(pid.len, 0xAB);
}

GN_TEST(peer_id_from_bytes_rules)
{
    uint8_t b[80];
    gn_peer_id pid;
    memset(b, 0x5a, sizeof b);

    /* sha2-256 with 32 bytes ok, other digest sizes not. */
    b[0] = 0x12;
    b[1] = 0x20;
    CHECK_EQ(gn_peer_id_from_bytes(b, 34, &pid), 0);
    CHECK_EQ(pid.len, 34);
    CHECK_MEM(pid.bytes, b, 34);
    b[1] = 0x10;
    CHECK_EQ(gn_peer_id_from_bytes(b, 18, &pid), GN_EPARSE);
    /* Trailing byte, truncated digest. */
    b[1] = 0x20;
    CHECK_EQ(gn_peer_id_from_bytes(b, 35, &pid), GN_EPARSE);
    CHECK_EQ(gn_peer_id_from_bytes(b, 33, &pid), GN_EPARSE);
    /* sha1 (0x11) is not a peer ID multihash. */
    b[0] = 0x11;
    b[1] = 0x14;
    CHECK_EQ(gn_peer_id_from_bytes(b, 22, &pid), GN_EPARSE);
    /* identity up to 42 bytes, not 43. */
    b[0] = 0x00;
    b[1] = 42;
    CHECK_EQ(gn_peer_id_from_bytes(b, 44, &pid), 0);
    b[1] = 43;
    CHECK_EQ(gn_peer_id_from_bytes(b, 45, &pid), GN_EPARSE);
    /* Too long / empty. */
    CHECK_EQ(gn_peer_id_from_bytes(b, GN_PEER_ID_MAX_BYTES + 1, &pid), GN_ETOOBIG);
    CHECK_EQ(gn_peer_id_from_bytes(b, 0, &pid), GN_EPARSE);
    /* Bad varint length. */
    b[0] = 0x12;
    b[1] = 0xa0;
    CHECK_EQ(gn_peer_id_from_bytes(b, 2, &pid), GN_EPARSE);
    CHECK_EQ(pid.len, 44); /* the last success */
}

/* ---- key files -------------------------------------------------------------------- */

static char tmpdir[200];

static void path_in(char *out, size_t out_len, const char *name)
{
    snprintf(out, out_len, "%s/%s", tmpdir, name);
}

static void write_file(const char *path, const uint8_t *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    CHECK_EQ(fwrite(data, 1, len, f), len);
    CHECK_EQ(fclose(f), 0);
}

GN_TEST(key_file_round_trip)
{
    CHECK_EQ(gts_mkdtemp(tmpdir, sizeof tmpdir, "gn_identity_test"), 0);
    char key[240], big[240], small[240], junk[240], nodir[260];
    path_in(key, sizeof key, "node.key");
    path_in(big, sizeof big, "big.key");
    path_in(small, sizeof small, "short.key");
    path_in(junk, sizeof junk, "junk.key");
    path_in(nodir, sizeof nodir, "missing/dir/node.key");

    gn_identity *id = NULL, *back = NULL;
    CHECK_EQ(gn_identity_from_int_seed(42, &id), 0);
    CHECK_EQ(gn_identity_save(id, key), 0);

    unsigned mode = 0;
    uint64_t size = 0;
    CHECK_EQ(gts_stat(key, &mode, &size), 0);
    if (gts_has_modes()) { /* Windows has ACLs, no mode bits */
        CHECK_EQ(mode, 0600);
    }
    CHECK_EQ(size, 68);

    /* The file holds exactly the PrivateKey protobuf. */
    uint8_t want[68], got[80];
    CHECK_EQ(gn_identity_encode_private(id, want, sizeof want), 68);
    FILE *f = fopen(key, "rb");
    CHECK(f != NULL);
    size_t n = fread(got, 1, sizeof got, f);
    fclose(f);
    CHECK_EQ(n, 68);
    CHECK_MEM(got, want, 68);

    CHECK_EQ(gn_identity_load(key, &back), 0);
    gn_peer_id a, b;
    gn_identity_peer_id(id, &a);
    gn_identity_peer_id(back, &b);
    CHECK(gn_peer_id_equal(&a, &b));
    gn_identity_free(back);
    back = NULL;

    /* Never overwrites. */
    CHECK_EQ(gn_identity_save(id, key), GN_EEXIST);
    CHECK_EQ(gn_identity_load(key, &back), 0);
    gn_identity_free(back);
    back = NULL;

    /* Missing files and directories. */
    CHECK_EQ(gn_identity_save(id, nodir), GN_ENOTFOUND);
    CHECK_EQ(gn_identity_load(nodir, &back), GN_ENOTFOUND);
    CHECK_EQ(gn_identity_load(tmpdir, &back), GN_EIO);

    /* Over the 4096-byte bound (a valid key followed by padding). */
    uint8_t pad[4097];
    memset(pad, 0, sizeof pad);
    memcpy(pad, want, 68);
    write_file(big, pad, sizeof pad);
    CHECK_EQ(gn_identity_load(big, &back), GN_EPARSE);

    /* Truncated key, garbage key. */
    write_file(small, want, 40);
    CHECK_EQ(gn_identity_load(small, &back), GN_EPARSE);
    memset(pad, 0xee, 64);
    write_file(junk, pad, 64);
    CHECK_EQ(gn_identity_load(junk, &back), GN_EPARSE);
    CHECK(back == NULL);

    /* Unreadable file (root bypasses permissions, so only as a normal user). */
    if (gts_perms_enforced()) {
        CHECK_EQ(gts_chmod(key, 0), 0);
        CHECK_EQ(gn_identity_load(key, &back), GN_EACCES);
        CHECK(back == NULL);
    }

    sodium_memzero(want, sizeof want);
    sodium_memzero(got, sizeof got);
    gn_identity_free(id);
    CHECK_EQ(gts_unlink(key), 0);
    CHECK_EQ(gts_unlink(big), 0);
    CHECK_EQ(gts_unlink(small), 0);
    CHECK_EQ(gts_unlink(junk), 0);
    CHECK_EQ(gts_rmdir(tmpdir), 0);
    tmpdir[0] = '\0';
}

GN_TEST(key_file_unwritable_dir)
{
    if (!gts_perms_enforced())
        SKIP("running as root or on Windows: directory permission bits are not enforced");
    CHECK_EQ(gts_mkdtemp(tmpdir, sizeof tmpdir, "gn_identity_test"), 0);
    char key[240];
    path_in(key, sizeof key, "node.key");
    CHECK_EQ(gts_chmod(tmpdir, 0500), 0);
    gn_identity *id = NULL;
    CHECK_EQ(gn_identity_from_int_seed(1, &id), 0);
    int rc = gn_identity_save(id, key);
    gn_identity_free(id);
    CHECK_EQ(gts_chmod(tmpdir, 0700), 0);
    CHECK_EQ(gts_rmdir(tmpdir), 0);
    CHECK_EQ(rc, GN_EACCES);
}

GN_TEST_MAIN(GN_T(spec_ed25519_private_vector), GN_T(int_seed_peer_ids),
             GN_T(int_seed_layout), GN_T(zero_seed_private_encoding),
             GN_T(rfc8032_sign_verify), GN_T(verify_rejects_bad_keys),
             GN_T(generate_is_random_and_consistent), GN_T(invalid_arguments),
             GN_T(encode_nospc), GN_T(pubkey_decode_spec_vectors), GN_T(pubkey_decode_bad_input),
             GN_T(private_decode_forms_and_errors), GN_T(peer_id_from_pubkey_threshold),
             GN_T(peer_id_other_key_types), GN_T(peer_id_parse_spec_examples),
             GN_T(peer_id_parse_bad_input), GN_T(peer_id_from_bytes_rules),
             GN_T(key_file_round_trip), GN_T(key_file_unwritable_dir))
