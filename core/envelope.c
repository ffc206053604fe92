/*
 * Signed envelopes (libp2p/specs RFC/0002) and signed peer records
 * (RFC/0003): see gni_envelope.h. Sans-I/O.
 */
#include "gni_envelope.h"

#include "gni.h"
#include "gni_pb.h"

#include "envelope.pb-c.h"
#include "golemnet/err.h"
#include "golemnet/multiformats.h"

#include <sodium.h>
#include <stdbool.h>
#include <string.h>

const uint8_t gni_peer_record_type[2] = {0x03, 0x01};

/*
 * The bytes an envelope's signature covers (RFC 0002 "Signature Production
 * / Verification"): varint(len) domain, varint(len) type, varint(len)
 * payload. Returns a new buffer or NULL when out of memory.
 */
static uint8_t *sig_input(const char *domain, const uint8_t *type, size_t type_len,
                          const uint8_t *payload, size_t payload_len, size_t *len)
{
    size_t dl = strlen(domain);
    size_t n = gn_varint_len(dl) + dl + gn_varint_len(type_len) + type_len +
               gn_varint_len(payload_len) + payload_len;
    uint8_t *buf = gn_malloc(n ? n : 1);
    if (!buf) {
        return NULL;
    }
    size_t p = 0;
    p += (size_t)gn_varint_encode(dl, buf + p, n - p);
    memcpy(buf + p, domain, dl);
    p += dl;
    p += (size_t)gn_varint_encode(type_len, buf + p, n - p);
    if (type_len) {
        memcpy(buf + p, type, type_len);
    }
    p += type_len;
    p += (size_t)gn_varint_encode(payload_len, buf + p, n - p);
    if (payload_len) {
        memcpy(buf + p, payload, payload_len);
    }
    *len = n;
    return buf;
}

int gni_envelope_seal(const gn_identity *id, const char *domain, const uint8_t *type,
                      size_t type_len, const uint8_t *payload, size_t payload_len,
                      uint8_t **out, size_t *out_len)
{
    if (!id || !domain || !out || !out_len || (type_len && !type) ||
        (payload_len && !payload)) {
        return GN_EINVAL;
    }
    /* any key type (issue 17): the PublicKey protobuf and its signature */
    uint8_t pk[GN_PUBKEY_MAX_BYTES], sig[GN_SIG_MAX_BYTES];
    int pkl = gn_identity_encode_public(id, pk, sizeof pk);
    if (pkl < 0) {
        return GN_EINTERNAL;
    }
    size_t sl;
    uint8_t *si = sig_input(domain, type, type_len, payload, payload_len, &sl);
    if (!si) {
        return GN_ENOMEM;
    }
    int sgl = gn_identity_sign_any(id, si, sl, sig, sizeof sig);
    gn_free(si);
    if (sgl < 0) {
        return sgl == GN_ENOMEM ? sgl : GN_EINTERNAL;
    }

    Gnpb__Record__Envelope e;
    gnpb__record__envelope__init(&e);
    e.has_public_key = true;
    e.public_key.data = pk;
    e.public_key.len = (size_t)pkl;
    e.has_payload_type = true;
    e.payload_type.data = (uint8_t *)type;
    e.payload_type.len = type_len;
    e.has_payload = true;
    e.payload.data = (uint8_t *)payload;
    e.payload.len = payload_len;
    e.has_signature = true;
    e.signature.data = sig;
    e.signature.len = (size_t)sgl;
    size_t n = gnpb__record__envelope__get_packed_size(&e);
    uint8_t *buf = gn_malloc(n);
    if (!buf) {
        return GN_ENOMEM;
    }
    (void)gnpb__record__envelope__pack(&e, buf);
    *out = buf;
    *out_len = n;
    return 0;
}

/* gni_envelope_open(), with the key and signature checks skipped when !@verify. */
static int envelope_open(const uint8_t *env, size_t len, const char *domain,
                         const uint8_t *type, size_t type_len, bool verify, gni_envelope *out)
{
    if (!env || !domain || !out || (type_len && !type)) {
        return GN_EINVAL;
    }
    memset(out, 0, sizeof *out);
    if (len == 0 || len > GNI_ENVELOPE_MAX) {
        return GN_EPROTO;
    }
    gni_pb_alloc pa;
    gni_pb_alloc_init(&pa);
    Gnpb__Record__Envelope *e = gnpb__record__envelope__unpack(&pa.a, len, env);
    if (!e) {
        return pa.oom ? GN_ENOMEM : GN_EPROTO;
    }
    int rc = GN_EPROTO;
    uint8_t *si = NULL;
    if (!e->has_public_key || !e->has_payload_type || !e->has_payload || !e->has_signature ||
        e->payload_type.len != type_len ||
        (type_len && memcmp(e->payload_type.data, type, type_len) != 0)) {
        goto out;
    }
    /* any key type (issue 17), checked in full (unless these very bytes were) */
    gn_key_type kt;
    rc = verify ? gn_pubkey_check(e->public_key.data, e->public_key.len, &kt) : 0;
    if (rc < 0) {
        rc = rc == GN_EBADKEY || rc == GN_ENOMEM ? rc : GN_EPROTO;
        goto out;
    }
    if (gn_peer_id_from_pubkey(e->public_key.data, e->public_key.len, &out->signer) < 0) {
        rc = GN_EPROTO;
        goto out;
    }
    if (verify) {
        size_t sl;
        si = sig_input(domain, e->payload_type.data, e->payload_type.len, e->payload.data,
                       e->payload.len, &sl);
        if (!si) {
            rc = GN_ENOMEM;
            goto out;
        }
        rc = gn_pubkey_verify(e->public_key.data, e->public_key.len, si, sl,
                              e->signature.data, e->signature.len);
        if (rc < 0) {
            rc = rc == GN_EBADKEY || rc == GN_ENOMEM ? rc : GN_EBADSIG;
            goto out;
        }
    }
    out->payload = gn_malloc(e->payload.len ? e->payload.len : 1);
    if (!out->payload) {
        rc = GN_ENOMEM;
        goto out;
    }
    if (e->payload.len) {
        memcpy(out->payload, e->payload.data, e->payload.len);
    }
    out->payload_len = e->payload.len;
    rc = 0;
out:
    gn_free(si);
    gnpb__record__envelope__free_unpacked(e, &pa.a);
    if (rc < 0) {
        memset(out, 0, sizeof *out);
    }
    return rc;
}

int gni_envelope_open(const uint8_t *env, size_t len, const char *domain, const uint8_t *type,
                      size_t type_len, gni_envelope *out)
{
    return envelope_open(env, len, domain, type, type_len, true, out);
}

void gni_envelope_clear(gni_envelope *e)
{
    if (e) {
        gn_free(e->payload);
        memset(e, 0, sizeof *e);
    }
}

int gni_peer_record_encode(const gn_peer_id *peer, uint64_t seq,
                           const gn_multiaddr *const *addrs, size_t addr_cnt, uint8_t **out,
                           size_t *out_len)
{
    if (!peer || peer->len == 0 || peer->len > GN_PEER_ID_MAX_BYTES || !out || !out_len ||
        (addr_cnt && !addrs) || addr_cnt > GNI_PEER_RECORD_MAX_ADDRS) {
        return GN_EINVAL;
    }
    Gnpb__Record__PeerRecord__AddressInfo ai[GNI_PEER_RECORD_MAX_ADDRS];
    Gnpb__Record__PeerRecord__AddressInfo *aip[GNI_PEER_RECORD_MAX_ADDRS];
    for (size_t i = 0; i < addr_cnt; i++) {
        if (!addrs[i]) {
            return GN_EINVAL;
        }
        gnpb__record__peer_record__address_info__init(&ai[i]);
        gn_slice b = gn_multiaddr_bytes(addrs[i]);
        ai[i].has_multiaddr = true;
        ai[i].multiaddr.data = (uint8_t *)b.base;
        ai[i].multiaddr.len = b.len;
        aip[i] = &ai[i];
    }
    Gnpb__Record__PeerRecord r;
    gnpb__record__peer_record__init(&r);
    r.has_peer_id = true;
    r.peer_id.data = (uint8_t *)peer->bytes;
    r.peer_id.len = peer->len;
    r.has_seq = true;
    r.seq = seq;
    r.n_addresses = addr_cnt;
    r.addresses = addr_cnt ? aip : NULL;
    size_t n = gnpb__record__peer_record__get_packed_size(&r);
    uint8_t *buf = gn_malloc(n ? n : 1);
    if (!buf) {
        return GN_ENOMEM;
    }
    (void)gnpb__record__peer_record__pack(&r, buf);
    *out = buf;
    *out_len = n;
    return 0;
}

void gni_peer_record_clear(gni_peer_record *r)
{
    if (!r) {
        return;
    }
    for (size_t i = 0; i < r->addr_cnt; i++) {
        gn_multiaddr_free(r->addrs[i]);
    }
    gn_free(r->addrs);
    memset(r, 0, sizeof *r);
}

int gni_peer_record_decode(const uint8_t *in, size_t len, gni_peer_record *out)
{
    if ((!in && len) || !out) {
        return GN_EINVAL;
    }
    memset(out, 0, sizeof *out);
    gni_pb_alloc pa;
    gni_pb_alloc_init(&pa);
    Gnpb__Record__PeerRecord *r = gnpb__record__peer_record__unpack(&pa.a, len, in);
    if (!r) {
        return pa.oom ? GN_ENOMEM : GN_EPROTO;
    }
    int rc = 0;
    if (!r->has_peer_id || gn_peer_id_from_bytes(r->peer_id.data, r->peer_id.len, &out->peer) < 0) {
        rc = GN_EPROTO;
        goto out;
    }
    out->seq = r->has_seq ? r->seq : 0;
    if (r->n_addresses > GNI_PEER_RECORD_MAX_ADDRS) {
        rc = GN_ETOOBIG;
        goto out;
    }
    if (r->n_addresses) {
        out->addrs = gn_calloc(r->n_addresses, sizeof *out->addrs);
        if (!out->addrs) {
            rc = GN_ENOMEM;
            goto out;
        }
    }
    for (size_t i = 0; i < r->n_addresses; i++) {
        const Gnpb__Record__PeerRecord__AddressInfo *a = r->addresses[i];
        gn_multiaddr *ma;
        if (!a || !a->has_multiaddr) {
            continue;
        }
        int mrc = gn_multiaddr_from_bytes(a->multiaddr.data, a->multiaddr.len, &ma);
        if (mrc == GN_ENOMEM) {
            rc = mrc;
            goto out;
        }
        if (mrc == 0) {
            out->addrs[out->addr_cnt++] = ma;
        }
    }
out:
    gnpb__record__peer_record__free_unpacked(r, &pa.a);
    if (rc < 0) {
        gni_peer_record_clear(out);
    }
    return rc;
}

/* True when @hash is in @m. */
static bool memo_has(const gni_envelope_memo *m, const uint8_t hash[32])
{
    for (unsigned i = 0; i < m->used; i++) {
        if (sodium_memcmp(m->hash[i], hash, 32) == 0) {
            return true;
        }
    }
    return false;
}

static void memo_add(gni_envelope_memo *m, const uint8_t hash[32])
{
    unsigned i;
    if (m->used < GNI_ENVELOPE_MEMO_SLOTS) {
        i = m->used++;
    } else {
        i = m->next;
        m->next = (m->next + 1) % GNI_ENVELOPE_MEMO_SLOTS;
    }
    memcpy(m->hash[i], hash, 32);
}

int gni_peer_record_open(const uint8_t *env, size_t len, const gn_peer_id *peer,
                         gni_envelope_memo *memo, gni_peer_record *out)
{
    if (!env || !out) {
        return GN_EINVAL;
    }
    memset(out, 0, sizeof *out);
    uint8_t hash[32];
    bool known = false;
    if (memo && peer && len <= GNI_ENVELOPE_MAX) {
        crypto_generichash_state st;
        crypto_generichash_init(&st, NULL, 0, sizeof hash);
        crypto_generichash_update(&st, (const uint8_t *)&peer->len, sizeof peer->len);
        crypto_generichash_update(&st, peer->bytes, peer->len);
        crypto_generichash_update(&st, env, len);
        crypto_generichash_final(&st, hash, sizeof hash);
        known = memo_has(memo, hash);
    }
    gni_envelope e;
    int rc = envelope_open(env, len, GNI_PEER_RECORD_DOMAIN, gni_peer_record_type,
                           GNI_PEER_RECORD_TYPE_LEN, !known, &e);
    if (rc < 0) {
        return rc;
    }
    if (peer && !gn_peer_id_equal(&e.signer, peer)) {
        gni_envelope_clear(&e);
        return GN_EPEERID;
    }
    rc = gni_peer_record_decode(e.payload, e.payload_len, out);
    /* RFC 0003: the record must name its signer (go's ConsumePeerRecord) */
    if (rc == 0 && !gn_peer_id_equal(&out->peer, &e.signer)) {
        gni_peer_record_clear(out);
        rc = GN_EPEERID;
    }
    if (rc == 0 && memo && peer && !known) {
        memo_add(memo, hash);
    }
    gni_envelope_clear(&e);
    return rc;
}
