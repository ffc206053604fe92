/* plaintext/2.0.0 sans-I/O core. See plaintext.h. */
#include "plaintext.h"

#include "golemnet/multiformats.h"
#include "gni.h"
#include "plaintext.pb-c.h"

#include <string.h>

struct gni_plaintext {
    const gn_identity *id;
    bool has_expected;
    gn_peer_id expected;
    bool sent;
    bool received;
    int failed;
    gn_peer_id remote;
    uint8_t remote_pub[GN_ED25519_PUBLICKEYBYTES];
};

int gni_plaintext_new(const gn_identity *id, const gn_peer_id *expected, gni_plaintext **out)
{
    if (!id || !out) {
        return GN_EINVAL;
    }
    gni_plaintext *p = gn_calloc(1, sizeof *p);
    if (!p) {
        return GN_ENOMEM;
    }
    p->id = id;
    if (expected) {
        p->has_expected = true;
        p->expected = *expected;
    }
    *out = p;
    return 0;
}

void gni_plaintext_free(gni_plaintext *p)
{
    gn_free(p);
}

static int fail(gni_plaintext *p, int rc)
{
    p->failed = rc;
    return rc;
}

int gni_plaintext_feed(gni_plaintext *p, const uint8_t *in, size_t len, size_t *consumed)
{
    *consumed = 0;
    if (p->failed) {
        return p->failed;
    }
    if (p->received) {
        return GN_ESTATE;
    }
    uint64_t mlen;
    int hl = gn_varint_decode(in, len, &mlen);
    if (hl == GN_EAGAIN) {
        return 0;
    }
    if (hl < 0) {
        return fail(p, GN_EPARSE);
    }
    if (mlen > GNI_PLAINTEXT_MAX_MSG) {
        return fail(p, GN_EFRAMESIZE);
    }
    if (len - (size_t)hl < mlen) {
        return 0; /* wait for the whole message */
    }
    Gnpb__Exchange *ex = gnpb__exchange__unpack(NULL, (size_t)mlen, in + hl);
    if (!ex) {
        return fail(p, GN_EPROTO);
    }
    int rc = 0;
    if (!ex->has_id || !ex->pubkey) {
        rc = GN_EPROTO;
        goto out;
    }
    uint8_t keybuf[GN_PUBKEY_MAX_BYTES];
    size_t klen = gnpb__public_key__get_packed_size(ex->pubkey);
    if (klen > sizeof keybuf) {
        rc = GN_EPROTO;
        goto out;
    }
    gnpb__public_key__pack(ex->pubkey, keybuf);
    gn_key_type type;
    /* any libp2p key type; the raw key is kept for Ed25519 only */
    rc = gn_pubkey_check(keybuf, klen, &type);
    if (rc < 0) {
        rc = rc == GN_EBADKEY || rc == GN_ENOMEM ? rc : GN_EPROTO;
        goto out;
    }
    memset(p->remote_pub, 0, sizeof p->remote_pub);
    if (type == GN_KEY_ED25519 && gn_pubkey_decode(keybuf, klen, NULL, p->remote_pub) < 0) {
        rc = GN_EINTERNAL;
        goto out;
    }
    gn_peer_id from_key, claimed;
    if (gn_peer_id_from_pubkey(keybuf, klen, &from_key) < 0 ||
        gn_peer_id_from_bytes(ex->id.data, ex->id.len, &claimed) < 0 ||
        !gn_peer_id_equal(&from_key, &claimed)) {
        rc = GN_EPROTO;
        goto out;
    }
    p->remote = from_key; /* kept on a mismatch: gni_plaintext_mismatched_peer() */
    if (p->has_expected && !gn_peer_id_equal(&p->expected, &from_key)) {
        rc = GN_EPEERID;
        goto out;
    }
    p->received = true;
    *consumed = (size_t)hl + (size_t)mlen;
out:
    gnpb__exchange__free_unpacked(ex, NULL);
    return rc < 0 ? fail(p, rc) : 0;
}

int gni_plaintext_drain(gni_plaintext *p, gn_buf *out)
{
    if (p->sent || p->failed) {
        return 0;
    }
    uint8_t keypb[GN_PUBKEY_MAX_BYTES];
    int kl = gn_identity_encode_public(p->id, keypb, sizeof keypb);
    if (kl < 0) {
        return GN_EINTERNAL;
    }
    /* any key type: our PublicKey protobuf, unpacked to nest it in the Exchange */
    Gnpb__PublicKey *pk = gnpb__public_key__unpack(NULL, (size_t)kl, keypb);
    if (!pk) {
        return GN_ENOMEM;
    }
    gn_peer_id me;
    gn_identity_peer_id(p->id, &me);

    Gnpb__Exchange ex = GNPB__EXCHANGE__INIT;
    ex.has_id = true;
    ex.id.data = me.bytes;
    ex.id.len = me.len;
    ex.pubkey = pk;

    size_t mlen = gnpb__exchange__get_packed_size(&ex);
    size_t need = gn_varint_len(mlen) + mlen;
    if (gn_buf_left(out) < need) {
        gnpb__public_key__free_unpacked(pk, NULL);
        return GN_ENOSPC;
    }
    int hl = gn_varint_encode(mlen, out->last, gn_buf_left(out));
    out->last += hl;
    out->last += gnpb__exchange__pack(&ex, out->last);
    gnpb__public_key__free_unpacked(pk, NULL);
    p->sent = true;
    return (int)need;
}

int gni_plaintext_status(const gni_plaintext *p)
{
    if (p->failed) {
        return p->failed;
    }
    return p->sent && p->received ? 1 : 0;
}

void gni_plaintext_remote(const gni_plaintext *p, gn_peer_id *peer,
                          uint8_t pub[GN_ED25519_PUBLICKEYBYTES])
{
    *peer = p->remote;
    memcpy(pub, p->remote_pub, GN_ED25519_PUBLICKEYBYTES);
}

int gni_plaintext_mismatched_peer(const gni_plaintext *p, gn_peer_id *peer,
                                  uint8_t pub[GN_ED25519_PUBLICKEYBYTES])
{
    if (p->failed != GN_EPEERID) {
        return GN_ESTATE;
    }
    gni_plaintext_remote(p, peer, pub);
    return 0;
}
