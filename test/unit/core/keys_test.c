/*
 * Unit tests for the key types (core/keys.c through include/golemnet/
 * identity.h): RSA, secp256k1 and ECDSA next to Ed25519; PublicKey and
 * PrivateKey encodings, peer IDs, signatures, bad keys and bad signatures,
 * and the key files libp2p's own interop suite ships.
 *
 * Vector sources:
 *  [SPEC]    libp2p/specs peer-ids/peer-ids.md, "Test vectors" table (hex
 *            PrivateKey and PublicKey protobufs of ECDSA, secp256k1 and RSA).
 *  [PY]      Peer IDs derived from the [SPEC] public keys with an independent
 *            Python script (hashlib sha256 + a textbook base58), not this code.
 *  [INTEROP] test/data/interop-keys/: go.*.key and js.*.key from the npm
 *            package @libp2p/interop 14.0.16 (src/resources/keys/); the peer
 *            IDs are what @libp2p/crypto 5.1.23 + @libp2p/peer-id 6.0.15 (the
 *            js harness's lock file) derive from them (keys_peer_ids.mjs).
 */
#include "gn_test.h"

#include "golemnet/err.h"
#include "golemnet/identity.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>


static const char spec_ecdsa_priv_hex[] =
    "08031279307702010104203e5b1fe9712e6c314942a750bd67485de3c1efe85b1bfb520a"
    "e8f9ae3dfa4a4ca00a06082a8648ce3d030107a14403420004de3d300fa36ae0e8f5d530"
    "899d83abab44abf3161f162a4bc901d8e6ecda020e8b6d5f8da30525e71d6851510c098e"
    "5c47c646a597fb4dcec034e9f77c409e62";

static const char spec_ecdsa_pub_hex[] =
    "0803125b3059301306072a8648ce3d020106082a8648ce3d03010703420004de3d300fa3"
    "6ae0e8f5d530899d83abab44abf3161f162a4bc901d8e6ecda020e8b6d5f8da30525e71d"
    "6851510c098e5c47c646a597fb4dcec034e9f77c409e62";

static const char spec_secp_priv_hex[] =
    "0802122053dadf1d5a164d6b4acdb15e24aa4c5b1d3461bdbd42abedb0a4404d56ced8fb";

static const char spec_secp_pub_hex[] =
    "08021221037777e994e452c21604f91de093ce415f5432f701dd8cd1a7a6fea0e630bfca"
    "99";

/* Split in lines: one literal would pass the 4095 characters C11 promises. */
static const char *const spec_rsa_priv_lines[] = {
    "080012ae123082092a0201000282020100e1beab071d08200bde24eef00d049449b07770",
    "ff9910257b2d7d5dda242ce8f0e2f12e1af4b32d9efd2c090f66b0f29986dbb645dae988",
    "0089704a94e5066d594162ae6ee8892e6ec70701db0a6c445c04778eb3de1293aa1a23c3",
    "825b85c6620a2bc3f82f9b0c309bc0ab3aeb1873282bebd3da03c33e76c21e9beb172fd4",
    "4c9e43be32e2c99827033cf8d0f0c606f4579326c930eb4e854395ad941256542c793902",
    "185153c474bed109d6ff5141ebf9cd256cf58893a37f83729f97e7cb435ec679d2e33901",
    "d27bb35aa0d7e20561da08885ef0abbf8e2fb48d6a5487047a9ecb1ad41fa7ed84f6e3e8",
    "ecd5d98b3982d2a901b4454991766da295ab78822add5612a2df83bcee814cf50973e80d",
    "7ef38111b1bd87da2ae92438a2c8cbcc70b31ee319939a3b9c761dbc13b5c086d6b64bf7",
    "ae7dacc14622375d92a8ff9af7eb962162bbddebf90acb32adb5e4e4029f1c96019949ec",
    "fbfeffd7ac1e3fbcc6b6168c34be3d5a2e5999fcbb39bba7adbca78eab09b9bc39f7fa4b",
    "93411f4cc175e70c0a083e96bfaefb04a9580b4753c1738a6a760ae1afd851a1a4bdad23",
    "1cf56e9284d832483df215a46c1c21bdf0c6cfe951c18f1ee4078c79c13d63edb6e14fea",
    "effabc90ad317e4875fe648101b0864097e998f0ca3025ef9638cd2b0caecd3770ab54a1",
    "d9c6ca959b0f5dcbc90caeefc4135baca6fd475224269bbe1b02030100010282020100a4",
    "72ffa858efd8588ce59ee264b957452f3673acdf5631d7bfd5ba0ef59779c231b0bc838a",
    "8b14cae367b6d9ef572c03c7883b0a3c652f5c24c316b1ccfd979f13d0cd7da20c7d34d9",
    "ec32dfdc81ee7292167e706d705efde5b8f3edfcba41409e642f8897357df5d320d21c43",
    "b33600a7ae4e505db957c1afbc189d73f0b5d972d9aaaeeb232ca20eebd5de6fe7f29d01",
    "470354413cc9a0af1154b7af7c1029adcd67c74b4798afeb69e09f2cb387305e73a1b5f4",
    "50202d54f0ef096fe1bde340219a1194d1ac9026e90b366cce0c59b239d10e4888f52ca1",
    "780824d39ae01a6b9f4dd6059191a7f12b2a3d8db3c2868cd4e5a5862b8b625a4197d52c",
    "6ac77710116ebd3ced81c4d91ad5fdfbed68312ebce7eea45c1833ca3acf7da2052820ea",
    "cf5c6b07d086dabeb893391c71417fd8a4b1829ae2cf60d1749d0e25da19530d889461c2",
    "1da3492a8dc6ccac7de83ac1c2185262c7473c8cc42f547cc9864b02a8073b6aa54a037d",
    "8c0de3914784e6205e83d97918b944f11b877b12084c0dd1d36592f8a4f8b8da5bb404c3",
    "d2c079b22b6ceabfbcb637c0dbe0201f0909d533f8bf308ada47aee641a012a494d31b54",
    "c974e58b87f140258258bb82f31692659db7aa07e17a5b2a0832c24e122d3a8babcc9ee7",
    "4cbb07d3058bb85b15f6f6b2674aba9fd34367be9782d444335fbed31e3c4086c652597c",
    "27104938b47fa10282010100e9fdf843c1550070ca711cb8ff28411466198f0e212511c3",
    "186623890c0071bf6561219682fe7dbdfd81176eba7c4faba21614a20721e0fcd63768e6",
    "d925688ecc90992059ac89256e0524de90bf3d8a052ce6a9f6adafa712f3107a016e20c8",
    "0255c9e37d8206d1bc327e06e66eb24288da866b55904fd8b59e6b2ab31bc5eab47e5970",
    "93c63fab7872102d57b4c589c66077f534a61f5f65127459a33c91f6db61fc431b1ae90b",
    "e92b4149a3255291baf94304e3efb77b1107b5a3bda911359c40a53c347ff9100baf8f36",
    "dc5cd991066b5bdc28b39ed644f404afe9213f4d31c9d4e40f3a5f5e3c39bebeb244e841",
    "37544e1a1839c1c8aaebf0c78a7fad590282010100f6fa1f1e6b803742d5490b7441152f",
    "500970f46feb0b73a6e4baba2aaf3c0e245ed852fc31d86a8e46eb48e90fac409989dfee",
    "45238f97e8f1f8e83a136488c1b04b8a7fb695f37b8616307ff8a8d63e8cfa0b4fb9b916",
    "7ffaebabf111aa5a4344afbabd002ae8961c38c02da76a9149abdde93eb389eb32595c29",
    "ba30d8283a7885218a5a9d33f7f01dbdf85f3aad016c071395491338ec318d39220e1c7b",
    "d69d3d6b520a13a30d745c102b827ad9984b0dd6aed73916ffa82a06c1c111e7047dcd26",
    "68f988a0570a71474992eecf416e068f029ec323d5d635fd24694fc9bf96973c255d26c7",
    "72a95bf8b7f876547a5beabf86f06cd21b67994f944e7a5493028201010095b02fd30069",
    "e547426a8bea58e8a2816f33688dac6c6f6974415af8402244a22133baedf34ce499d703",
    "6f3f19b38eb00897c18949b0c5a25953c71aeeccfc8f6594173157cc854bd98f16dffe8f",
    "28ca13b77eb43a2730585c49fc3f608cd811bb54b03b84bddaa8ef910988567f78301226",
    "6199667a546a18fd88271fbf63a45ae4fd4884706da8befb9117c0a4d73de5172f8640b1",
    "091ed8a4aea3ed4641463f5ff6a5e3401ad7d0c92811f87956d1fd5f9a1d15c7f3839a08",
    "698d9f35f9d966e5000f7cb2655d7b6c4adcd8a9d950ea5f61bb7c9a33c17508f9baa313",
    "eecfee4ae493249ebe05a5d7770bbd3551b2eeb752e3649e0636de08e3d672e66cb90282",
    "010100ad93e4c31072b063fc5ab5fe22afacece775c795d0efdf7c704cfc027bde0d626a",
    "7646fc905bb5a80117e3ca49059af14e0160089f9190065be9bfecf12c3b2145b211c8e8",
    "9e42dd91c38e9aa23ca73697063564f6f6aa6590088a738722df056004d18d7bccac62b3",
    "bafef6172fc2a4b071ea37f31eff7a076bcab7dd144e51a9da8754219352aef2c7347897",
    "1539fa41de4759285ea626fa3c72e7085be47d554d915bbb5149cb6ef835351f23104304",
    "9cd941506a034bf2f8767f3e1e42ead92f91cb3d75549b57ef7d56ac39c2d80d67f6a2b4",
    "ca192974bfc5060e2dd171217971002193dba12e7e4133ab201f07500a90495a38610279",
    "b13a48d54f0c99028201003e3a1ac0c2b67d54ed5c4bbe04a7db99103659d33a4f9d3580",
    "9e1f60c282e5988dddc964527f3b05e6cc890eab3dcb571d66debf3a5527704c87264b39",
    "54d7265f4e8d2c637dd89b491b9cf23f264801f804b90454d65af0c4c830d1aef76f597e",
    "f61b26ca857ecce9cb78d4f6c2218c00d2975d46c2b013fbf59b750c3b92d8d3ed9e6d1f",
    "d0ef1ec091a5c286a3fe2dead292f40f380065731e2079ebb9f2a7ef2c415ecbb488da98",
    "f3a12609ca1b6ec8c734032c8bd513292ff842c375d4acd1b02dfb206b24cd815f8e2f9d",
    "4af8e7dea0370b19c1b23cc531d78b40e06e1119ee2e08f6f31c6e2e8444c568d13c5d45",
    "1a291ae0c9f1d4f27d23b3a00d60ad",
};

static const char spec_rsa_pub_hex[] =
    "080012a60430820222300d06092a864886f70d01010105000382020f003082020a028202"
    "0100e1beab071d08200bde24eef00d049449b07770ff9910257b2d7d5dda242ce8f0e2f1"
    "2e1af4b32d9efd2c090f66b0f29986dbb645dae9880089704a94e5066d594162ae6ee889"
    "2e6ec70701db0a6c445c04778eb3de1293aa1a23c3825b85c6620a2bc3f82f9b0c309bc0"
    "ab3aeb1873282bebd3da03c33e76c21e9beb172fd44c9e43be32e2c99827033cf8d0f0c6"
    "06f4579326c930eb4e854395ad941256542c793902185153c474bed109d6ff5141ebf9cd"
    "256cf58893a37f83729f97e7cb435ec679d2e33901d27bb35aa0d7e20561da08885ef0ab"
    "bf8e2fb48d6a5487047a9ecb1ad41fa7ed84f6e3e8ecd5d98b3982d2a901b4454991766d"
    "a295ab78822add5612a2df83bcee814cf50973e80d7ef38111b1bd87da2ae92438a2c8cb"
    "cc70b31ee319939a3b9c761dbc13b5c086d6b64bf7ae7dacc14622375d92a8ff9af7eb96"
    "2162bbddebf90acb32adb5e4e4029f1c96019949ecfbfeffd7ac1e3fbcc6b6168c34be3d"
    "5a2e5999fcbb39bba7adbca78eab09b9bc39f7fa4b93411f4cc175e70c0a083e96bfaefb"
    "04a9580b4753c1738a6a760ae1afd851a1a4bdad231cf56e9284d832483df215a46c1c21"
    "bdf0c6cfe951c18f1ee4078c79c13d63edb6e14feaeffabc90ad317e4875fe648101b086"
    "4097e998f0ca3025ef9638cd2b0caecd3770ab54a1d9c6ca959b0f5dcbc90caeefc4135b"
    "aca6fd475224269bbe1b0203010001";

/* [PY] peer IDs of the [SPEC] public keys. */
static const char spec_secp_pid[] = "16Uiu2HAmLhLvBoYaoZfaMUKuibM6ac163GwKY74c5kiSLg5KvLpY";
static const char spec_ecdsa_pid[] = "QmVMT29id3TUASyfZZ6k9hmNyc2nYabCo4uMSpDw4zrgDk";
static const char spec_rsa_pid[] = "QmaeANgBs1DTSxWSrPPtobgQuxW8XTfsS4ydbK4rCHzqxG";

/* [INTEROP] key files and the peer IDs js-libp2p derives from them. */
static const struct {
    const char *file;
    gn_key_type type;
    const char *pid;
} interop_keys[] = {
    {"go.ed25519.key", GN_KEY_ED25519, "12D3KooWRqGdmFVwspgLBajUQacY1TrkBkAUqmjqjbHSFGEoZs9R"},
    {"go.rsa.key", GN_KEY_RSA, "QmWS3xmxj1i659VUoustPU8KGzXkziqzF7BBGXS9fDwyz1"},
    {"go.secp256k1.key", GN_KEY_SECP256K1, "16Uiu2HAmPu9PZESp4keskcfDkdBvDhs1Dra1aLjfeHRCFHgQoD6L"},
    {"js.ed25519.key", GN_KEY_ED25519, "12D3KooWDaHkRyb4Nkf8L6WHbsWB9Krt491NDk8PaPGogXvj2pcY"},
    {"js.rsa.key", GN_KEY_RSA, "QmPFdSzvgd1HbZSd6oX2N2vCSnhSEeocbQZsMB42UG8smE"},
    {"js.secp256k1.key", GN_KEY_SECP256K1, "16Uiu2HAm7txvwZbeK5g3oB3DrRhnARTEjTNorVreWJomfHJHbEu2"},
};

static uint8_t vbuf[8192], vbuf2[8192];

static size_t unhex(const char *hex, uint8_t *out, size_t out_len)
{
    long n = gn_test_unhex(hex, out, out_len);
    if (n < 0) {
        printf("# bad hex vector\n");
        abort();
    }
    return (size_t)n;
}

/* The RSA private key vector as one hex string, joined on first use. */
static const char *spec_rsa_priv(void)
{
    static char hex[8192];
    if (!hex[0]) {
        for (size_t i = 0; i < sizeof spec_rsa_priv_lines / sizeof spec_rsa_priv_lines[0]; i++)
            strcat(hex, spec_rsa_priv_lines[i]);
    }
    return hex;
}

static void pid_str(const gn_identity *id, char *s, size_t cap)
{
    gn_peer_id pid;
    gn_identity_peer_id(id, &pid);
    if (gn_peer_id_to_string(&pid, s, cap) < 0)
        s[0] = '\0';
}

/* Checks one [SPEC] pair: private decodes, re-encodes byte for byte, gives the public key and peer ID. */
static void check_spec_pair(const char *priv_hex, const char *pub_hex, gn_key_type type,
                            const char *want_pid)
{
    size_t pn = unhex(priv_hex, vbuf, sizeof vbuf);
    size_t qn = unhex(pub_hex, vbuf2, sizeof vbuf2);
    gn_identity *id = NULL;
    CHECK_EQ(gn_identity_decode_private(vbuf, pn, &id), 0);
    CHECK_EQ(gn_identity_key_type(id), type);
    uint8_t out[8192];
    int n = gn_identity_encode_public(id, out, sizeof out);
    CHECK_EQ(n, (long long)qn);
    CHECK_MEM(out, vbuf2, qn);
    CHECK_EQ(gn_identity_encode_public(id, out, qn - 1), GN_ENOSPC);
    n = gn_identity_encode_private(id, out, sizeof out);
    CHECK_EQ(n, (long long)pn);
    CHECK_MEM(out, vbuf, pn);
    CHECK_EQ(gn_identity_encode_private(id, out, pn - 1), GN_ENOSPC);
    char s[GN_PEER_ID_MAX_STRLEN];
    pid_str(id, s, sizeof s);
    CHECK_STR(s, want_pid);
    gn_peer_id a, b;
    gn_identity_peer_id(id, &a);
    CHECK_EQ(gn_peer_id_from_pubkey(vbuf2, qn, &b), 0);
    CHECK(gn_peer_id_equal(&a, &b));
    gn_key_type t = (gn_key_type)-1;
    CHECK_EQ(gn_pubkey_check(vbuf2, qn, &t), 0);
    CHECK_EQ(t, type);
    /* A signature made with the private key verifies with the spec's public key. */
    static const uint8_t msg[] = "libp2p key types";
    uint8_t sig[GN_SIG_MAX_BYTES];
    int sl = gn_identity_sign_any(id, msg, sizeof msg, sig, sizeof sig);
    CHECK(sl > 0);
    CHECK_EQ(gn_pubkey_verify(vbuf2, qn, msg, sizeof msg, sig, (size_t)sl), 0);
    CHECK_EQ(gn_pubkey_verify(vbuf2, qn, msg, sizeof msg - 1, sig, (size_t)sl), GN_EBADSIG);
    gn_identity_free(id);
}

GN_TEST(spec_vector_secp256k1)
{
    check_spec_pair(spec_secp_priv_hex, spec_secp_pub_hex, GN_KEY_SECP256K1, spec_secp_pid);
}

GN_TEST(spec_vector_ecdsa)
{
    check_spec_pair(spec_ecdsa_priv_hex, spec_ecdsa_pub_hex, GN_KEY_ECDSA, spec_ecdsa_pid);
}

GN_TEST(spec_vector_rsa)
{
    check_spec_pair(spec_rsa_priv(), spec_rsa_pub_hex, GN_KEY_RSA, spec_rsa_pid);
}

/* secp256k1 signatures are deterministic (RFC 6979): same key, same message, same bytes. */
GN_TEST(secp256k1_signature_deterministic)
{
    size_t pn = unhex(spec_secp_priv_hex, vbuf, sizeof vbuf);
    gn_identity *id = NULL;
    CHECK_EQ(gn_identity_decode_private(vbuf, pn, &id), 0);
    uint8_t s1[GN_SIG_MAX_BYTES], s2[GN_SIG_MAX_BYTES];
    int a = gn_identity_sign_any(id, (const uint8_t *)"m", 1, s1, sizeof s1);
    int b = gn_identity_sign_any(id, (const uint8_t *)"m", 1, s2, sizeof s2);
    CHECK(a > 8 && a <= 72);
    CHECK_EQ(a, b);
    CHECK_MEM(s1, s2, (size_t)a);
    CHECK_EQ(s1[0], 0x30); /* DER SEQUENCE */
    CHECK_EQ(gn_identity_sign_any(id, (const uint8_t *)"m", 1, s1, 8), GN_ENOSPC);
    gn_identity_free(id);
}

/* Every type: generate, sign, verify; key file round trip; tampering fails. */
GN_TEST(generate_each_type)
{
    static const gn_key_type types[] = {GN_KEY_ED25519, GN_KEY_RSA, GN_KEY_SECP256K1,
                                        GN_KEY_ECDSA};
    static const char *const prefix[] = {"12D3KooW", "Qm", "16Uiu2HA", "Qm"};
    for (size_t i = 0; i < 4; i++) {
        gn_identity *id = NULL, *back = NULL;
        CHECK_EQ(gn_identity_generate_type(types[i], 0, &id), 0);
        CHECK_EQ(gn_identity_key_type(id), types[i]);
        char s[GN_PEER_ID_MAX_STRLEN];
        pid_str(id, s, sizeof s);
        CHECK(strncmp(s, prefix[i], strlen(prefix[i])) == 0);
        uint8_t pub[GN_PUBKEY_MAX_BYTES], sig[GN_SIG_MAX_BYTES], msg[100];
        randombytes_buf(msg, sizeof msg);
        int pl = gn_identity_encode_public(id, pub, sizeof pub);
        CHECK(pl > 0);
        int sl = gn_identity_sign_any(id, msg, sizeof msg, sig, sizeof sig);
        CHECK(sl > 0);
        CHECK_EQ(gn_pubkey_verify(pub, (size_t)pl, msg, sizeof msg, sig, (size_t)sl), 0);
        sig[sl / 2] ^= 0x01;
        CHECK_EQ(gn_pubkey_verify(pub, (size_t)pl, msg, sizeof msg, sig, (size_t)sl), GN_EBADSIG);
        sig[sl / 2] ^= 0x01;
        msg[0] ^= 0x80;
        CHECK_EQ(gn_pubkey_verify(pub, (size_t)pl, msg, sizeof msg, sig, (size_t)sl), GN_EBADSIG);
        CHECK_EQ(gn_pubkey_verify(pub, (size_t)pl, msg, sizeof msg, sig, 0), GN_EBADSIG);
        CHECK_EQ(gn_pubkey_verify(pub, (size_t)pl, msg, sizeof msg, NULL, 0), GN_EBADSIG);
        /* Private key round trip. */
        int n = gn_identity_encode_private(id, vbuf, sizeof vbuf);
        CHECK(n > 0 && n <= GN_PRIVKEY_MAX_BYTES);
        CHECK_EQ(gn_identity_decode_private(vbuf, (size_t)n, &back), 0);
        gn_peer_id a, b;
        gn_identity_peer_id(id, &a);
        gn_identity_peer_id(back, &b);
        CHECK(gn_peer_id_equal(&a, &b));
        /* The legacy Ed25519-only calls refuse quietly (documented zero output). */
        if (types[i] != GN_KEY_ED25519) {
            uint8_t raw[GN_ED25519_PUBLICKEYBYTES], zero[GN_ED25519_PUBLICKEYBYTES] = {0};
            gn_identity_public_key(id, raw);
            CHECK_MEM(raw, zero, sizeof raw);
            uint8_t esig[GN_ED25519_SIGBYTES];
            gn_identity_sign(id, msg, sizeof msg, esig);
            CHECK_EQ(esig[0] | esig[63], 0);
        }
        gn_identity_free(id);
        gn_identity_free(back);
    }
}

GN_TEST(generate_arguments)
{
    gn_identity *id = NULL;
    CHECK_EQ(gn_identity_generate_type(GN_KEY_RSA, 1024, &id), GN_EINVAL);
    CHECK_EQ(gn_identity_generate_type(GN_KEY_RSA, 8200, &id), GN_EINVAL);
    CHECK_EQ(gn_identity_generate_type(GN_KEY_ECDSA, 256, &id), GN_EINVAL);
    CHECK_EQ(gn_identity_generate_type((gn_key_type)7, 0, &id), GN_ENOTSUP);
    CHECK_EQ(gn_identity_generate_type(GN_KEY_ED25519, 0, NULL), GN_EINVAL);
    CHECK(id == NULL);
    CHECK_EQ(gn_identity_generate_type(GN_KEY_RSA, 3072, &id), 0);
    uint8_t pub[GN_PUBKEY_MAX_BYTES], sig[GN_SIG_MAX_BYTES];
    int pl = gn_identity_encode_public(id, pub, sizeof pub);
    int sl = gn_identity_sign_any(id, NULL, 0, sig, sizeof sig);
    CHECK_EQ(sl, 384);
    CHECK_EQ(gn_pubkey_verify(pub, (size_t)pl, NULL, 0, sig, (size_t)sl), 0);
    gn_identity_free(id);
}

GN_TEST(key_type_names)
{
    gn_key_type t;
    CHECK_STR(gn_key_type_name(GN_KEY_RSA), "rsa");
    CHECK_STR(gn_key_type_name(GN_KEY_ECDSA), "ecdsa");
    CHECK_STR(gn_key_type_name((gn_key_type)9), "unknown");
    CHECK_EQ(gn_key_type_parse("Ed25519", &t), 0);
    CHECK_EQ(t, GN_KEY_ED25519);
    CHECK_EQ(gn_key_type_parse("SECP256K1", &t), 0);
    CHECK_EQ(t, GN_KEY_SECP256K1);
    CHECK_EQ(gn_key_type_parse("rsa2", &t), GN_EINVAL);
    CHECK_EQ(gn_key_type_parse("", &t), GN_EINVAL);
    CHECK_EQ(gn_key_type_parse(NULL, &t), GN_EINVAL);
}

/* Wraps @d in a PublicKey (or PrivateKey: same layout) protobuf of @type. */
static size_t wrap_pb(int type, const uint8_t *d, size_t len, uint8_t *out)
{
    size_t n = 0;
    out[n++] = 0x08;
    out[n++] = (uint8_t)type;
    out[n++] = 0x12;
    size_t l = len;
    while (l >= 0x80) {
        out[n++] = (uint8_t)(l | 0x80);
        l >>= 7;
    }
    out[n++] = (uint8_t)l;
    memcpy(out + n, d, len);
    return n + len;
}

/* An OpenSSL key's SPKI or type-specific private DER wrapped as a libp2p protobuf. */
static size_t pkey_pb(EVP_PKEY *k, int type, bool priv, uint8_t *out)
{
    unsigned char *der = NULL;
    int n = priv ? i2d_PrivateKey(k, &der) : i2d_PUBKEY(k, &der);
    if (n <= 0)
        abort();
    size_t r = wrap_pb(type, der, (size_t)n, out);
    OPENSSL_free(der);
    return r;
}

GN_TEST(rsa_bad_keys)
{
    uint8_t pb[4096];
    gn_identity *id = NULL;
    /* 1024 bits: well-formed but below 2048 (go-libp2p's ErrRsaKeyTooSmall). */
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    CHECK(k != NULL);
    size_t n = pkey_pb(k, GN_KEY_RSA, false, pb);
    gn_key_type t;
    CHECK_EQ(gn_pubkey_check(pb, n, &t), GN_EBADKEY);
    CHECK_EQ(t, GN_KEY_RSA);
    uint8_t sig[128] = {1};
    CHECK_EQ(gn_pubkey_verify(pb, n, sig, 1, sig, sizeof sig), GN_EBADKEY);
    n = pkey_pb(k, GN_KEY_RSA, true, pb);
    CHECK_EQ(gn_identity_decode_private(pb, n, &id), GN_EBADKEY);
    /* An RSA key labelled ECDSA, and the reverse. */
    n = pkey_pb(k, GN_KEY_ECDSA, false, pb);
    CHECK_EQ(gn_pubkey_check(pb, n, NULL), GN_EBADKEY);
    EVP_PKEY_free(k);
    size_t qn = unhex(spec_ecdsa_pub_hex, vbuf, sizeof vbuf);
    vbuf[1] = GN_KEY_RSA;
    CHECK_EQ(gn_pubkey_check(vbuf, qn, NULL), GN_EBADKEY);
    /* Spec RSA public key with a flipped byte inside the DER header, or truncated DER. */
    qn = unhex(spec_rsa_pub_hex, vbuf, sizeof vbuf);
    vbuf[6] ^= 0x01;
    CHECK_EQ(gn_pubkey_check(vbuf, qn, NULL), GN_EBADKEY);
    vbuf[6] ^= 0x01;
    CHECK_EQ(gn_pubkey_check(vbuf, qn, NULL), 0);
    /* A valid key with trailing garbage inside Data is not canonical. */
    size_t pre = 5; /* 08 00 12 a6 04 */
    memcpy(vbuf2, vbuf + pre, qn - pre);
    vbuf2[qn - pre] = 0x00;
    n = wrap_pb(GN_KEY_RSA, vbuf2, qn - pre + 1, pb);
    CHECK_EQ(gn_pubkey_check(pb, n, NULL), GN_EBADKEY);
    /* Spec RSA private key with a changed modulus byte: the halves no longer match. */
    size_t pn = unhex(spec_rsa_priv(), vbuf, sizeof vbuf);
    vbuf[40] ^= 0x10;
    CHECK_EQ(gn_identity_decode_private(vbuf, pn, &id), GN_EBADKEY);
    CHECK(id == NULL);
    /* A wrong-size RSA signature. */
    qn = unhex(spec_rsa_pub_hex, vbuf, sizeof vbuf);
    uint8_t big[GN_SIG_MAX_BYTES + 1] = {0};
    CHECK_EQ(gn_pubkey_verify(vbuf, qn, big, 1, big, 100), GN_EBADSIG);
    CHECK_EQ(gn_pubkey_verify(vbuf, qn, big, 1, big, sizeof big), GN_EBADSIG);
}

/* A public RSA key with @mod's modulus and the exponent @e_hex, as a libp2p protobuf. */
static size_t rsa_pub_with_e(EVP_PKEY *mod, const char *e_hex, uint8_t *out)
{
    BIGNUM *nn = NULL, *e = NULL;
    if (EVP_PKEY_get_bn_param(mod, OSSL_PKEY_PARAM_RSA_N, &nn) != 1 || !BN_hex2bn(&e, e_hex))
        abort();
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_N, nn);
    OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_E, e);
    OSSL_PARAM *prm = OSSL_PARAM_BLD_to_param(b);
    EVP_PKEY_CTX *cx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    EVP_PKEY *k = NULL;
    if (!prm || !cx || EVP_PKEY_fromdata_init(cx) != 1 ||
        EVP_PKEY_fromdata(cx, &k, EVP_PKEY_PUBLIC_KEY, prm) != 1)
        abort();
    size_t n = pkey_pb(k, GN_KEY_RSA, false, out);
    EVP_PKEY_free(k);
    EVP_PKEY_CTX_free(cx);
    OSSL_PARAM_free(prm);
    OSSL_PARAM_BLD_free(b);
    BN_free(nn);
    BN_free(e);
    return n;
}

/* The public exponent: odd, 3 <= e <= 2^31 - 1; a huge e is a CPU DoS on verification. */
GN_TEST(rsa_public_exponent)
{
    uint8_t pb[4096];
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    CHECK(k != NULL);
    CHECK_EQ(gn_pubkey_check(pb, rsa_pub_with_e(k, "10001", pb), NULL), 0);
    CHECK_EQ(gn_pubkey_check(pb, rsa_pub_with_e(k, "3", pb), NULL), 0);
    CHECK_EQ(gn_pubkey_check(pb, rsa_pub_with_e(k, "7FFFFFFF", pb), NULL), 0);
    CHECK_EQ(gn_pubkey_check(pb, rsa_pub_with_e(k, "1", pb), NULL), GN_EBADKEY);
    CHECK_EQ(gn_pubkey_check(pb, rsa_pub_with_e(k, "10000", pb), NULL), GN_EBADKEY);
    CHECK_EQ(gn_pubkey_check(pb, rsa_pub_with_e(k, "80000001", pb), NULL), GN_EBADKEY);
    /* About the modulus' length: the DoS case. */
    size_t n = rsa_pub_with_e(k, "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"
                                 "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"
                                 "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
                          pb);
    CHECK_EQ(gn_pubkey_check(pb, n, NULL), GN_EBADKEY);
    uint8_t sig[256] = {1};
    CHECK_EQ(gn_pubkey_verify(pb, n, sig, 1, sig, sizeof sig), GN_EBADKEY);
    EVP_PKEY_free(k);
    /* A private key with e = 2^32 + 1 is refused too. */
    EVP_PKEY_CTX *cx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    BIGNUM *e = NULL;
    CHECK(BN_hex2bn(&e, "100000001") > 0);
    k = NULL;
    CHECK(cx && EVP_PKEY_keygen_init(cx) == 1 && EVP_PKEY_CTX_set_rsa_keygen_bits(cx, 2048) == 1 &&
          EVP_PKEY_CTX_set1_rsa_keygen_pubexp(cx, e) == 1 && EVP_PKEY_generate(cx, &k) == 1);
    gn_identity *id = NULL;
    n = pkey_pb(k, GN_KEY_RSA, true, pb);
    CHECK_EQ(gn_identity_decode_private(pb, n, &id), GN_EBADKEY);
    CHECK(id == NULL);
    EVP_PKEY_free(k);
    EVP_PKEY_CTX_free(cx);
    BN_free(e);
}

GN_TEST(ecdsa_bad_keys_and_curves)
{
    uint8_t pb[1024], sig[GN_SIG_MAX_BYTES];
    gn_identity *id = NULL;
    /* P-384 keys from peers are accepted (go-libp2p can make them). */
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    CHECK(k != NULL);
    size_t n = pkey_pb(k, GN_KEY_ECDSA, false, pb);
    CHECK_EQ(gn_pubkey_check(pb, n, NULL), 0);
    size_t pn = pkey_pb(k, GN_KEY_ECDSA, true, vbuf);
    CHECK_EQ(gn_identity_decode_private(vbuf, pn, &id), 0);
    int sl = gn_identity_sign_any(id, pb, n, sig, sizeof sig);
    CHECK(sl > 0);
    CHECK_EQ(gn_pubkey_verify(pb, n, pb, n, sig, (size_t)sl), 0);
    gn_identity_free(id);
    id = NULL;
    EVP_PKEY_free(k);
    /* A secp256k1 key in ECDSA clothing is not a supported curve. */
    k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
    CHECK(k != NULL);
    n = pkey_pb(k, GN_KEY_ECDSA, false, pb);
    CHECK_EQ(gn_pubkey_check(pb, n, NULL), GN_EBADKEY);
    pn = pkey_pb(k, GN_KEY_ECDSA, true, vbuf);
    CHECK_EQ(gn_identity_decode_private(vbuf, pn, &id), GN_EBADKEY);
    EVP_PKEY_free(k);
    /* Spec ECDSA public key with the point moved off the curve. */
    size_t qn = unhex(spec_ecdsa_pub_hex, vbuf, sizeof vbuf);
    vbuf[qn - 1] ^= 0x01;
    CHECK_EQ(gn_pubkey_check(vbuf, qn, NULL), GN_EBADKEY);
    vbuf[qn - 1] ^= 0x01;
    /* DER signature with a trailing byte, or not DER at all. */
    pn = unhex(spec_ecdsa_priv_hex, vbuf2, sizeof vbuf2);
    CHECK_EQ(gn_identity_decode_private(vbuf2, pn, &id), 0);
    sl = gn_identity_sign_any(id, (const uint8_t *)"x", 1, sig, sizeof sig);
    CHECK(sl > 0);
    CHECK_EQ(gn_pubkey_verify(vbuf, qn, (const uint8_t *)"x", 1, sig, (size_t)sl), 0);
    sig[sl] = 0x00;
    CHECK_EQ(gn_pubkey_verify(vbuf, qn, (const uint8_t *)"x", 1, sig, (size_t)sl + 1), GN_EBADSIG);
    memset(sig, 0x42, 64);
    CHECK_EQ(gn_pubkey_verify(vbuf, qn, (const uint8_t *)"x", 1, sig, 64), GN_EBADSIG);
    gn_identity_free(id);
    /* SEC1 private key whose embedded public point belongs to another key. */
    pn = unhex(spec_ecdsa_priv_hex, vbuf2, sizeof vbuf2);
    vbuf2[12] ^= 0x01; /* a byte of the private scalar */
    id = NULL;
    CHECK_EQ(gn_identity_decode_private(vbuf2, pn, &id), GN_EBADKEY);
    CHECK(id == NULL);
}

/* One EC key, one peer ID: compressed points and explicit curve parameters are refused. */
GN_TEST(ecdsa_one_encoding)
{
    uint8_t pb[1024], canon[1024], mine[1024];
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    CHECK(k != NULL);
    size_t cn = pkey_pb(k, GN_KEY_ECDSA, false, canon);
    CHECK_EQ(gn_pubkey_check(canon, cn, NULL), 0);
    static const char *const forms[][2] = {
        {OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, "compressed"},
        {OSSL_PKEY_PARAM_EC_ENCODING, "explicit"},
    };
    for (size_t i = 0; i < 2; i++) {
        CHECK_EQ(EVP_PKEY_set_utf8_string_param(k, forms[i][0], forms[i][1]), 1);
        size_t n = pkey_pb(k, GN_KEY_ECDSA, false, pb);
        CHECK(n != cn || memcmp(pb, canon, n) != 0);
        CHECK_EQ(gn_pubkey_check(pb, n, NULL), GN_EBADKEY);
        /* A private key so encoded loads, and its public key is the canonical one. */
        gn_identity *id = NULL;
        n = pkey_pb(k, GN_KEY_ECDSA, true, pb);
        CHECK_EQ(gn_identity_decode_private(pb, n, &id), 0);
        int ml = gn_identity_encode_public(id, mine, sizeof mine);
        CHECK_EQ(ml, (int)cn);
        CHECK_MEM(mine, canon, cn);
        gn_identity_free(id);
    }
    EVP_PKEY_free(k);
}

/* Builds the high-S twin (n - s) of a DER secp256k1 signature with OpenSSL's BN. */
static int high_s(const uint8_t *sig, size_t len, uint8_t *out)
{
    const unsigned char *p = sig;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)len);
    BIGNUM *order = NULL, *s2 = BN_new();
    BN_hex2bn(&order, "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141");
    const BIGNUM *r = NULL, *s = NULL;
    ECDSA_SIG_get0(es, &r, &s);
    BN_sub(s2, order, s);
    BIGNUM *r2 = BN_dup(r);
    ECDSA_SIG_set0(es, r2, s2);
    unsigned char *q = out;
    int n = i2d_ECDSA_SIG(es, &q);
    ECDSA_SIG_free(es);
    BN_free(order);
    return n;
}

GN_TEST(secp256k1_bad_keys_and_signatures)
{
    size_t qn = unhex(spec_secp_pub_hex, vbuf, sizeof vbuf);
    size_t pn = unhex(spec_secp_priv_hex, vbuf2, sizeof vbuf2);
    gn_identity *id = NULL;
    CHECK_EQ(gn_identity_decode_private(vbuf2, pn, &id), 0);
    uint8_t sig[GN_SIG_MAX_BYTES], hs[GN_SIG_MAX_BYTES];
    int sl = gn_identity_sign_any(id, (const uint8_t *)"hi", 2, sig, sizeof sig);
    CHECK(sl > 0);
    /* High-S form: accepted (go-libp2p does), though we only make low-S. */
    int hl = high_s(sig, (size_t)sl, hs);
    CHECK(hl > 0);
    CHECK(hl != sl || memcmp(hs, sig, (size_t)sl) != 0);
    CHECK_EQ(gn_pubkey_verify(vbuf, qn, (const uint8_t *)"hi", 2, hs, (size_t)hl), 0);
    /* Non-strict DER: a trailing byte; a compact 64-byte signature. */
    sig[sl] = 0;
    CHECK_EQ(gn_pubkey_verify(vbuf, qn, (const uint8_t *)"hi", 2, sig, (size_t)sl + 1), GN_EBADSIG);
    CHECK_EQ(gn_pubkey_verify(vbuf, qn, (const uint8_t *)"hi", 2, sig + 4, 64), GN_EBADSIG);
    gn_identity_free(id);
    id = NULL;
    /* Public key: hybrid prefix 0x06, x not on the curve, 32 bytes. */
    uint8_t bad[40];
    memcpy(bad, vbuf, qn);
    bad[4] = 0x06;
    CHECK_EQ(gn_pubkey_check(bad, qn, NULL), GN_EBADKEY);
    memcpy(bad, vbuf, qn);
    memset(bad + 5, 0xff, 32); /* x >= p */
    CHECK_EQ(gn_pubkey_check(bad, qn, NULL), GN_EBADKEY);
    CHECK_EQ(gn_pubkey_verify(bad, qn, (const uint8_t *)"hi", 2, hs, (size_t)hl), GN_EBADKEY);
    size_t n = wrap_pb(GN_KEY_SECP256K1, vbuf + 5, 32, bad);
    CHECK_EQ(gn_pubkey_check(bad, n, NULL), GN_EBADKEY);
    /* Private key: zero, the group order, wrong length. */
    uint8_t z[32] = {0};
    n = wrap_pb(GN_KEY_SECP256K1, z, 32, bad);
    CHECK_EQ(gn_identity_decode_private(bad, n, &id), GN_EBADKEY);
    unhex("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141", z, 32);
    n = wrap_pb(GN_KEY_SECP256K1, z, 32, bad);
    CHECK_EQ(gn_identity_decode_private(bad, n, &id), GN_EBADKEY);
    n = wrap_pb(GN_KEY_SECP256K1, vbuf2 + 4, 31, bad);
    CHECK_EQ(gn_identity_decode_private(bad, n, &id), GN_EBADKEY);
    CHECK(id == NULL);
}

/* secp256k1 on the wire: only the 33-byte compressed point; the 65-byte form would be a second ID. */
GN_TEST(secp256k1_compressed_only)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
    CHECK(k != NULL);
    uint8_t pt[80], pb[100];
    size_t pl = 0;
    CHECK_EQ(EVP_PKEY_set_utf8_string_param(k, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                            "compressed"), 1);
    CHECK_EQ(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt,
                                             &pl), 1);
    CHECK_EQ(pl, 33u);
    CHECK_EQ(gn_pubkey_check(pb, wrap_pb(GN_KEY_SECP256K1, pt, pl, pb), NULL), 0);
    CHECK_EQ(EVP_PKEY_set_utf8_string_param(k, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                            "uncompressed"), 1);
    CHECK_EQ(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt,
                                             &pl), 1);
    CHECK_EQ(pl, 65u);
    CHECK_EQ(pt[0], 0x04);
    size_t n = wrap_pb(GN_KEY_SECP256K1, pt, pl, pb);
    CHECK_EQ(gn_pubkey_check(pb, n, NULL), GN_EBADKEY);
    uint8_t sig[72] = {0x30};
    CHECK_EQ(gn_pubkey_verify(pb, n, sig, 1, sig, sizeof sig), GN_EBADKEY);
    EVP_PKEY_free(k);
}

/* Bad keys and signatures from peers leave nothing on OpenSSL's per-thread error queue. */
GN_TEST(openssl_error_queue_clean)
{
    ERR_clear_error();
    size_t qn = unhex(spec_rsa_pub_hex, vbuf, sizeof vbuf);
    vbuf[6] ^= 0x01; /* broken DER header */
    CHECK_EQ(gn_pubkey_check(vbuf, qn, NULL), GN_EBADKEY);
    CHECK_EQ(ERR_peek_error(), 0ul);
    vbuf[6] ^= 0x01;
    uint8_t sig[256];
    memset(sig, 0x5a, sizeof sig);
    CHECK_EQ(gn_pubkey_verify(vbuf, qn, sig, 1, sig, sizeof sig), GN_EBADSIG);
    CHECK_EQ(ERR_peek_error(), 0ul);
    qn = unhex(spec_ecdsa_pub_hex, vbuf, sizeof vbuf);
    vbuf[qn - 1] ^= 0x01; /* off the curve */
    CHECK_EQ(gn_pubkey_check(vbuf, qn, NULL), GN_EBADKEY);
    CHECK_EQ(ERR_peek_error(), 0ul);
    vbuf[qn - 1] ^= 0x01;
    CHECK_EQ(gn_pubkey_verify(vbuf, qn, sig, 1, sig, 70), GN_EBADSIG);
    CHECK_EQ(ERR_peek_error(), 0ul);
    size_t pn = unhex(spec_rsa_priv(), vbuf, sizeof vbuf);
    vbuf[40] ^= 0x10;
    gn_identity *id = NULL;
    CHECK_EQ(gn_identity_decode_private(vbuf, pn, &id), GN_EBADKEY);
    CHECK_EQ(ERR_peek_error(), 0ul);
    /* An error already queued by the application stays. */
    ERR_raise(ERR_LIB_USER, 42);
    unsigned long mine = ERR_peek_last_error();
    CHECK_EQ(gn_identity_decode_private(vbuf, pn, &id), GN_EBADKEY);
    CHECK_EQ(ERR_peek_last_error(), mine);
    ERR_clear_error();
}

/* An Ed25519 signature never verifies under another key type and vice versa. */
GN_TEST(cross_type_signatures)
{
    gn_identity *ed = NULL, *secp = NULL;
    CHECK_EQ(gn_identity_from_int_seed(1, &ed), 0);
    size_t pn = unhex(spec_secp_priv_hex, vbuf2, sizeof vbuf2);
    CHECK_EQ(gn_identity_decode_private(vbuf2, pn, &secp), 0);
    uint8_t epub[64], spub[64], esig[GN_SIG_MAX_BYTES], ssig[GN_SIG_MAX_BYTES];
    int el = gn_identity_encode_public(ed, epub, sizeof epub);
    int ql = gn_identity_encode_public(secp, spub, sizeof spub);
    CHECK_EQ(el, 36);
    CHECK_EQ(ql, 37);
    int a = gn_identity_sign_any(ed, (const uint8_t *)"z", 1, esig, sizeof esig);
    int b = gn_identity_sign_any(secp, (const uint8_t *)"z", 1, ssig, sizeof ssig);
    CHECK_EQ(a, 64);
    /* Same bytes as the legacy Ed25519 call. */
    uint8_t old[GN_ED25519_SIGBYTES];
    gn_identity_sign(ed, (const uint8_t *)"z", 1, old);
    CHECK_MEM(old, esig, 64);
    CHECK_EQ(gn_pubkey_verify(epub, (size_t)el, (const uint8_t *)"z", 1, ssig, (size_t)b), GN_EBADSIG);
    CHECK_EQ(gn_pubkey_verify(spub, (size_t)ql, (const uint8_t *)"z", 1, esig, (size_t)a), GN_EBADSIG);
    /* Malformed protobufs come back as the protobuf errors. */
    CHECK_EQ(gn_pubkey_verify(epub, 3, (const uint8_t *)"z", 1, esig, (size_t)a), GN_EPARSE);
    CHECK_EQ(gn_pubkey_verify(epub, GN_PUBKEY_MAX_BYTES + 1, (const uint8_t *)"z", 1, esig, 64),
             GN_ETOOBIG);
    gn_identity_free(ed);
    gn_identity_free(secp);
}

/* [INTEROP] The key files of @libp2p/interop load with js-libp2p's peer IDs. */
GN_TEST(interop_key_files)
{
    const char *src = getenv("GN_SOURCE_DIR");
    if (!src)
        SKIP("GN_SOURCE_DIR not set (run through meson test)");
    for (size_t i = 0; i < sizeof interop_keys / sizeof interop_keys[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/test/data/interop-keys/%s", src, interop_keys[i].file);
        gn_identity *id = NULL;
        int rc = gn_identity_load(path, &id);
        if (rc != 0)
            printf("# %s: %s\n", interop_keys[i].file, gn_err_name(rc));
        CHECK_EQ(rc, 0);
        CHECK_EQ(gn_identity_key_type(id), interop_keys[i].type);
        char s[GN_PEER_ID_MAX_STRLEN];
        pid_str(id, s, sizeof s);
        CHECK_STR(s, interop_keys[i].pid);
        gn_identity_free(id);
    }
}

GN_TEST_MAIN(GN_T(spec_vector_secp256k1), GN_T(spec_vector_ecdsa), GN_T(spec_vector_rsa),
             GN_T(secp256k1_signature_deterministic), GN_T(generate_each_type),
             GN_T(generate_arguments), GN_T(key_type_names), GN_T(rsa_bad_keys), GN_T(rsa_public_exponent),
             GN_T(ecdsa_bad_keys_and_curves), GN_T(ecdsa_one_encoding), GN_T(secp256k1_bad_keys_and_signatures),
             GN_T(secp256k1_compressed_only), GN_T(openssl_error_queue_clean), GN_T(cross_type_signatures), GN_T(interop_key_files))
