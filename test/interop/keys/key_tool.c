/*
 * Test-only tool for the key interop test (test/interop/js/keys_interop.sh):
 * signs and verifies with golemnet's key code so js-libp2p's @libp2p/crypto
 * can check the other side of every key type.
 *
 *   key_tool sign KEYFILE MESSAGE
 *       prints "<PublicKey protobuf hex> <signature hex> <key type>"
 *   key_tool verify PUBKEY_HEX MESSAGE SIGNATURE_HEX
 *       exit 0 when the signature verifies, 1 (and the error name) when not
 *   key_tool record KEYFILE ENVELOPE_HEX
 *       decodes an Identify message carrying the key's public key and the
 *       envelope as signedPeerRecord (gni_identify_decode, then
 *       gni_identify_check_record); exit 0 when the record verified, 1 (and
 *       the error name) when not
 *
 * MESSAGE is the argument's bytes. Exit 2 on usage or load errors.
 */
#include "golemnet/err.h"
#include "golemnet/identity.h"
#include "golemnet/multiformats.h"
#include "identify.h"
#include "identify.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put_hex(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        printf("%02x", b[i]);
}

static long unhex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = strlen(s);
    if (n % 2 || n / 2 > cap)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (uint8_t)v;
    }
    return (long)(n / 2);
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "sign")) {
        gn_identity *id = NULL;
        int rc = gn_identity_load(argv[2], &id);
        if (rc < 0) {
            fprintf(stderr, "key_tool: %s: %s\n", argv[2], gn_err_name(rc));
            return 2;
        }
        uint8_t pub[GN_PUBKEY_MAX_BYTES], sig[GN_SIG_MAX_BYTES];
        int pl = gn_identity_encode_public(id, pub, sizeof pub);
        int sl = gn_identity_sign_any(id, (const uint8_t *)argv[3], strlen(argv[3]), sig,
                                      sizeof sig);
        if (pl < 0 || sl < 0) {
            fprintf(stderr, "key_tool: sign: %s\n", gn_err_name(pl < 0 ? pl : sl));
            gn_identity_free(id);
            return 2;
        }
        put_hex(pub, (size_t)pl);
        printf(" ");
        put_hex(sig, (size_t)sl);
        printf(" %s\n", gn_key_type_name(gn_identity_key_type(id)));
        gn_identity_free(id);
        return 0;
    }
    if (argc == 5 && !strcmp(argv[1], "verify")) {
        static uint8_t pub[GN_PUBKEY_MAX_BYTES], sig[GN_SIG_MAX_BYTES];
        long pl = unhex(argv[2], pub, sizeof pub), sl = unhex(argv[4], sig, sizeof sig);
        if (pl < 0 || sl < 0) {
            fprintf(stderr, "key_tool: bad hex\n");
            return 2;
        }
        int rc = gn_pubkey_verify(pub, (size_t)pl, (const uint8_t *)argv[3], strlen(argv[3]), sig,
                                  (size_t)sl);
        if (rc < 0) {
            printf("%s\n", gn_err_name(rc));
            return 1;
        }
        printf("ok\n");
        return 0;
    }
    if (argc == 4 && !strcmp(argv[1], "record")) {
        gn_identity *id = NULL;
        int rc = gn_identity_load(argv[2], &id);
        static uint8_t env[8192], pk[GN_PUBKEY_MAX_BYTES], msg[16384];
        long el = unhex(argv[3], env, sizeof env);
        if (rc < 0 || el < 0) {
            fprintf(stderr, "key_tool: bad key file or hex\n");
            gn_identity_free(id);
            return 2;
        }
        int kl = gn_identity_encode_public(id, pk, sizeof pk);
        gn_peer_id pid;
        gn_identity_peer_id(id, &pid);
        gn_identity_free(id);
        Gnpb__Identify m = GNPB__IDENTIFY__INIT;
        m.has_publickey = 1;
        m.publickey.data = pk;
        m.publickey.len = (size_t)kl;
        m.has_signedpeerrecord = 1;
        m.signedpeerrecord.data = env;
        m.signedpeerrecord.len = (size_t)el;
        size_t n = gnpb__identify__get_packed_size(&m);
        if (kl < 0 || n + 10 > sizeof msg)
            return 2;
        int hl = gn_varint_encode(n, msg, sizeof msg);
        n = (size_t)hl + gnpb__identify__pack(&m, msg + hl);
        gni_identify_result *r = NULL;
        rc = gni_identify_decode(msg, n, &pid, true, &r);
        if (rc < 0) {
            printf("%s\n", gn_err_name(rc));
            return 1;
        }
        int crc = gni_identify_check_record(r, &pid, NULL);
        bool ok = crc == 0 && r->signed_peer_record_ok;
        gni_identify_result_free(r);
        printf("%s\n", ok ? "ok" : crc < 0 ? gn_err_name(crc) : "not verified");
        return ok ? 0 : 1;
    }
    fprintf(stderr, "usage: key_tool sign KEYFILE MESSAGE | verify PUBHEX MESSAGE SIGHEX | "
                    "record KEYFILE ENVHEX\n");
    return 2;
}
