/* libp2p identify: sans-I/O encode/decode of the Identify message. See identify.h. */
#include "identify.h"
#include "gni_pb.h"

#include "golemnet/crypto.h"
#include "golemnet/log.h"
#include "golemnet/multiformats.h"
#include "gni.h"
#include "identify.pb-c.h"
#include "gni_envelope.h"

#include <string.h>

/* Identify field numbers (identify spec; signedPeerRecord from go/js). */
enum {
    F_PUBLIC_KEY = 1,
    F_LISTEN_ADDRS = 2,
    F_PROTOCOLS = 3,
};

/* ---- wire-format pre-scan: bounds before protobuf-c allocates ---- */

typedef struct scan_counts {
    size_t addrs;
    size_t protocols;
    bool long_protocol;
} scan_counts;

/* Reads a protobuf varint (up to 10 bytes, non-minimal allowed) at *@pos. */
static int pb_varint(const uint8_t *p, size_t n, size_t *pos, uint64_t *v)
{
    if (*pos >= n) {
        return GN_EPARSE;
    }
    int rc = gni_varint_decode_kind(p + *pos, n - *pos, GNI_VARINT_PB, v);
    if (rc < 0) {
        return GN_EPARSE;
    }
    *pos += (size_t)rc;
    return 0;
}

/* Walks one message's top-level fields; counts the repeated fields we bound. */
static int pb_scan(const uint8_t *p, size_t n, scan_counts *c)
{
    size_t pos = 0;
    while (pos < n) {
        uint64_t key, v;
        if (pb_varint(p, n, &pos, &key) < 0) {
            return GN_EPARSE;
        }
        uint64_t field = key >> 3;
        if (field == 0 || field > 0x1fffffff) {
            return GN_EPARSE;
        }
        switch (key & 7) {
        case 0:
            if (pb_varint(p, n, &pos, &v) < 0) {
                return GN_EPARSE;
            }
            break;
        case 1:
            if (n - pos < 8) {
                return GN_EPARSE;
            }
            pos += 8;
            break;
        case 5:
            if (n - pos < 4) {
                return GN_EPARSE;
            }
            pos += 4;
            break;
        case 2:
            if (pb_varint(p, n, &pos, &v) < 0 || v > n - pos) {
                return GN_EPARSE;
            }
            if (field == F_LISTEN_ADDRS) {
                c->addrs++;
            } else if (field == F_PROTOCOLS) {
                c->protocols++;
                if (v >= GN_PROTOCOL_ID_MAX) {
                    c->long_protocol = true;
                }
            }
            pos += (size_t)v;
            break;
        default: /* groups (3, 4) and reserved types */
            return GN_EPARSE;
        }
    }
    return 0;
}

/*
 * Tries the framed form: 1..GNI_IDENTIFY_MAX_FRAMES varint-prefixed frames
 * covering @in exactly, each a well-formed message. Returns 1 (framed;
 * counts set), 0 (not this form).
 */
static int scan_framed(const uint8_t *in, size_t len, scan_counts *c)
{
    size_t pos = 0;
    unsigned frames = 0;
    scan_counts acc = {0, 0, false};
    while (pos < len) {
        uint64_t flen;
        if (pb_varint(in, len, &pos, &flen) < 0 || flen > len - pos) {
            return 0;
        }
        if (++frames > GNI_IDENTIFY_MAX_FRAMES) {
            return 0;
        }
        if (pb_scan(in + pos, (size_t)flen, &acc) < 0) {
            return 0;
        }
        pos += (size_t)flen;
    }
    if (frames == 0) {
        return 0;
    }
    *c = acc;
    return 1;
}


/* ---- encode ---- */

/* Fills @m from @info; @addrs and @protos are the caller's storage. */
static int build(const gni_identify_info *info, Gnpb__Identify *m,
                 ProtobufCBinaryData addrs[GNI_IDENTIFY_MAX_ADDRS],
                 char *protos[GNI_IDENTIFY_MAX_PROTOCOLS])
{
    if (!info || info->listen_addr_cnt > GNI_IDENTIFY_MAX_ADDRS ||
        info->protocol_cnt > GNI_IDENTIFY_MAX_PROTOCOLS ||
        (info->listen_addr_cnt > 0 && !info->listen_addrs) ||
        (info->protocol_cnt > 0 && !info->protocols) ||
        (info->public_key.len > 0 && !info->public_key.base)) {
        return GN_EINVAL;
    }
    gnpb__identify__init(m);
    m->protocolversion = (char *)(info->protocol_version ? info->protocol_version
                                                         : GNI_IDENTIFY_PROTOCOL_VERSION);
    m->agentversion = (char *)info->agent_version;
    if (info->public_key.len > 0) {
        m->has_publickey = 1;
        m->publickey.data = (uint8_t *)info->public_key.base;
        m->publickey.len = info->public_key.len;
    }
    for (size_t i = 0; i < info->listen_addr_cnt; i++) {
        if (!info->listen_addrs[i]) {
            return GN_EINVAL;
        }
        gn_slice b = gn_multiaddr_bytes(info->listen_addrs[i]);
        addrs[i].data = (uint8_t *)b.base;
        addrs[i].len = b.len;
    }
    m->n_listenaddrs = info->listen_addr_cnt;
    m->listenaddrs = info->listen_addr_cnt ? addrs : NULL;
    if (info->observed_addr) {
        gn_slice b = gn_multiaddr_bytes(info->observed_addr);
        m->has_observedaddr = 1;
        m->observedaddr.data = (uint8_t *)b.base;
        m->observedaddr.len = b.len;
    }
    for (size_t i = 0; i < info->protocol_cnt; i++) {
        if (!info->protocols[i] || strlen(info->protocols[i]) >= GN_PROTOCOL_ID_MAX) {
            return GN_EINVAL;
        }
        protos[i] = (char *)info->protocols[i];
    }
    m->n_protocols = info->protocol_cnt;
    m->protocols = info->protocol_cnt ? protos : NULL;
    if (info->signed_peer_record.len > 0) {
        if (!info->signed_peer_record.base) {
            return GN_EINVAL;
        }
        m->has_signedpeerrecord = 1;
        m->signedpeerrecord.data = (uint8_t *)info->signed_peer_record.base;
        m->signedpeerrecord.len = info->signed_peer_record.len;
    }
    return 0;
}

long gni_identify_encoded_len(const gni_identify_info *info)
{
    Gnpb__Identify m;
    ProtobufCBinaryData addrs[GNI_IDENTIFY_MAX_ADDRS];
    char *protos[GNI_IDENTIFY_MAX_PROTOCOLS];
    int rc = build(info, &m, addrs, protos);
    if (rc < 0) {
        return rc;
    }
    size_t n = gnpb__identify__get_packed_size(&m);
    size_t total = gn_varint_len(n) + n;
    if (total > GNI_IDENTIFY_MAX_MSG) {
        return GN_ETOOBIG;
    }
    return (long)total;
}

int gni_identify_encode(const gni_identify_info *info, gn_buf *out)
{
    if (!out) {
        return GN_EINVAL;
    }
    Gnpb__Identify m;
    ProtobufCBinaryData addrs[GNI_IDENTIFY_MAX_ADDRS];
    char *protos[GNI_IDENTIFY_MAX_PROTOCOLS];
    int rc = build(info, &m, addrs, protos);
    if (rc < 0) {
        return rc;
    }
    size_t n = gnpb__identify__get_packed_size(&m);
    size_t hl = gn_varint_len(n);
    if (hl + n > GNI_IDENTIFY_MAX_MSG) {
        return GN_ETOOBIG;
    }
    if (gn_buf_left(out) < hl + n) {
        return GN_ENOSPC;
    }
    rc = gn_varint_encode(n, out->last, hl);
    if (rc < 0) {
        return rc;
    }
    size_t packed = gnpb__identify__pack(&m, out->last + hl);
    if (packed != n) {
        return GN_EINTERNAL;
    }
    out->last += hl + n;
    return (int)(hl + n);
}

/* ---- decode ---- */

int gni_identify_check_record(gni_identify_result *r, const gn_peer_id *expected,
                              gni_envelope_memo *memo)
{
    if (!r) {
        return GN_EINVAL;
    }
    if (!r->has_signed_peer_record) {
        return GN_ENOTFOUND;
    }
    if (r->signed_peer_record_ok) {
        return 0;
    }
    /*
     * RFC 0002/0003 (issue 17): signed by the envelope's key, of any type,
     * that key being the peer's (from publicKey, else the one expected),
     * and the record naming that peer.
     */
    const gn_peer_id *who = r->public_key ? &r->peer : expected;
    if (!who || who->len == 0 || !r->signed_peer_record) {
        return GN_EPROTO;
    }
    gni_peer_record pr;
    int rc = gni_peer_record_open(r->signed_peer_record, r->signed_peer_record_len, who, memo,
                                  &pr);
    if (rc < 0) {
        return rc;
    }
    r->signed_peer_record_ok = true;
    r->record_addrs = pr.addrs;
    r->record_addr_cnt = pr.addr_cnt;
    r->record_seq = pr.seq;
    return 0;
}

void gni_identify_result_free(gni_identify_result *r)
{
    if (!r) {
        return;
    }
    gn_free(r->protocol_version);
    gn_free(r->agent_version);
    gn_free(r->public_key);
    for (size_t i = 0; i < r->listen_addr_cnt; i++) {
        gn_multiaddr_free(r->listen_addrs[i]);
    }
    gn_free(r->listen_addrs);
    for (size_t i = 0; i < r->record_addr_cnt; i++) {
        gn_multiaddr_free(r->record_addrs[i]);
    }
    gn_free(r->record_addrs);
    gn_free(r->signed_peer_record);
    gn_multiaddr_free(r->observed_addr);
    for (size_t i = 0; i < r->protocol_cnt; i++) {
        gn_free(r->protocols[i]);
    }
    gn_free(r->protocols);
    gn_free(r);
}

static int dup_str(const char *s, char **out)
{
    if (!s) {
        *out = NULL;
        return 0;
    }
    *out = gn_strdup(s);
    return *out ? 0 : GN_ENOMEM;
}

/* Checks the public key and derives the peer ID into @r. */
static int take_key(gni_identify_result *r, const ProtobufCBinaryData *k, const gn_peer_id *expected)
{
    gn_key_type type = GN_KEY_RSA;
    /* every key type (RSA, Ed25519, secp256k1, ECDSA), checked in full (issue 17) */
    int rc = gn_pubkey_check(k->data, k->len, &type);
    if (rc < 0) {
        return rc == GN_ENOMEM ? rc : GN_EBADKEY;
    }
    gn_peer_id pid;
    rc = gn_peer_id_from_pubkey(k->data, k->len, &pid);
    if (rc < 0) {
        return GN_EBADKEY;
    }
    if (expected && !gn_peer_id_equal(&pid, expected)) {
        return GN_EPEERID;
    }
    r->public_key = gn_malloc(k->len);
    if (!r->public_key) {
        return GN_ENOMEM;
    }
    memcpy(r->public_key, k->data, k->len);
    r->public_key_len = k->len;
    r->key_type = type;
    r->peer = pid;
    return 0;
}

static int take_fields(gni_identify_result *r, const Gnpb__Identify *m, const gn_peer_id *expected,
                       bool require_key)
{
    int rc;
    if (m->has_publickey) {
        if ((rc = take_key(r, &m->publickey, expected)) < 0) {
            return rc;
        }
    } else if (require_key) {
        return GN_EPROTO;
    }
    if ((rc = dup_str(m->protocolversion, &r->protocol_version)) < 0 ||
        (rc = dup_str(m->agentversion, &r->agent_version)) < 0) {
        return rc;
    }
    if (m->n_listenaddrs > 0) {
        r->listen_addrs = gn_calloc(m->n_listenaddrs, sizeof *r->listen_addrs);
        if (!r->listen_addrs) {
            return GN_ENOMEM;
        }
        for (size_t i = 0; i < m->n_listenaddrs; i++) {
            gn_multiaddr *ma = NULL;
            rc = gn_multiaddr_from_bytes(m->listenaddrs[i].data, m->listenaddrs[i].len, &ma);
            if (rc == GN_ENOMEM) {
                return rc;
            }
            if (rc == 0) {
                r->listen_addrs[r->listen_addr_cnt++] = ma;
            } /* an address we cannot parse is skipped, as go/js do */
        }
    }
    if (m->has_observedaddr) {
        rc = gn_multiaddr_from_bytes(m->observedaddr.data, m->observedaddr.len,
                                     &r->observed_addr);
        if (rc == GN_ENOMEM) {
            return rc;
        }
        if (rc < 0) {
            r->observed_addr = NULL;
        }
    }
    if (m->n_protocols > 0) {
        r->protocols = gn_calloc(m->n_protocols, sizeof *r->protocols);
        if (!r->protocols) {
            return GN_ENOMEM;
        }
        for (size_t i = 0; i < m->n_protocols; i++) {
            if (!m->protocols[i] || strlen(m->protocols[i]) >= GN_PROTOCOL_ID_MAX) {
                return GN_ETOOBIG;
            }
            if ((rc = dup_str(m->protocols[i], &r->protocols[r->protocol_cnt])) < 0) {
                return rc;
            }
            r->protocol_cnt++;
        }
    }
    r->has_signed_peer_record = m->has_signedpeerrecord != 0;
    if (r->has_signed_peer_record) {
        /* kept for gni_identify_check_record(); over the bound it cannot verify */
        if (m->signedpeerrecord.len > 0 && m->signedpeerrecord.len <= GNI_ENVELOPE_MAX) {
            r->signed_peer_record = gn_malloc(m->signedpeerrecord.len);
            if (!r->signed_peer_record) {
                return GN_ENOMEM;
            }
            memcpy(r->signed_peer_record, m->signedpeerrecord.data, m->signedpeerrecord.len);
            r->signed_peer_record_len = m->signedpeerrecord.len;
        }
    }
    return 0;
}

int gni_identify_decode(const uint8_t *in, size_t len, const gn_peer_id *expected,
                        bool require_key, gni_identify_result **out)
{
    if ((!in && len > 0) || !out) {
        return GN_EINVAL;
    }
    if (len > GNI_IDENTIFY_MAX_MSG) {
        return GN_EFRAMESIZE;
    }
    scan_counts c = {0, 0, false};
    const uint8_t *msg = in;
    size_t msg_len = len;
    uint8_t *joined = NULL;
    if (scan_framed(in, len, &c) == 1) {
        /* concatenate the frame payloads: protobuf merges concatenated messages */
        joined = gn_malloc(len ? len : 1);
        if (!joined) {
            return GN_ENOMEM;
        }
        size_t pos = 0;
        msg_len = 0;
        while (pos < len) {
            uint64_t flen = 0;
            (void)pb_varint(in, len, &pos, &flen); /* validated by scan_framed */
            memcpy(joined + msg_len, in + pos, (size_t)flen);
            msg_len += (size_t)flen;
            pos += (size_t)flen;
        }
        msg = joined;
    } else {
        c = (scan_counts){0, 0, false};
        if (pb_scan(in, len, &c) < 0) {
            return GN_EPARSE;
        }
    }
    int rc = 0;
    Gnpb__Identify *m = NULL;
    gni_identify_result *r = NULL;
    gni_pb_alloc pa;
    gni_pb_alloc_init(&pa);
    if (c.addrs > GNI_IDENTIFY_MAX_ADDRS || c.protocols > GNI_IDENTIFY_MAX_PROTOCOLS ||
        c.long_protocol) {
        rc = GN_ETOOBIG;
        goto out;
    }
    m = gnpb__identify__unpack(&pa.a, msg_len, msg);
    if (!m) {
        rc = pa.oom ? GN_ENOMEM : GN_EPARSE;
        goto out;
    }
    r = gn_calloc(1, sizeof *r);
    if (!r) {
        rc = GN_ENOMEM;
        goto out;
    }
    rc = take_fields(r, m, expected, require_key);
    if (rc < 0) {
        gni_identify_result_free(r);
        r = NULL;
        goto out;
    }
    *out = r;
out:
    if (m) {
        gnpb__identify__free_unpacked(m, &pa.a);
    }
    gn_free(joined);
    return rc;
}
