/*
 * Resource transfer: content addressing (docs/protocols/transfer.md
 * section 2) and the resume-state format (section 8). The tree is the
 * RFC 6962 / RFC 9162 section 2.1.1 Merkle tree shape (a lone last node is
 * promoted, never duplicated) with BLAKE2b-256 and the 0x00 / 0x01 leaf /
 * node prefixes of that RFC.
 */
#include "xfer.h"

#include "golemnet/err.h"
#include "golemnet/log.h"
#include "golemnet/multiformats.h"

#include <sodium.h>
#include <string.h>

struct gni_xfer_tree {
    uint64_t n;
    unsigned levels;          /* levels stored, leaves included (0 when n == 0) */
    uint64_t off[GNI_XFER_DEPTH_MAX + 2]; /* first hash of each level */
    uint64_t width[GNI_XFER_DEPTH_MAX + 2];
    uint8_t root[GNI_XFER_HASH_LEN];
    uint8_t (*h)[GNI_XFER_HASH_LEN];
};

uint64_t gni_xfer_leaf_count(uint64_t total, uint32_t chunk)
{
    if (chunk == 0)
        return 0;
    return total / chunk + (total % chunk != 0);
}

size_t gni_xfer_chunk_len(const gni_xfer_manifest *m, uint64_t index)
{
    if (!m || index >= m->leaf_count)
        return 0;
    if (index + 1 < m->leaf_count)
        return m->chunk_size;
    return (size_t)(m->total_size - index * (uint64_t)m->chunk_size);
}

void gni_xfer_leaf_hash(uint8_t out[GNI_XFER_HASH_LEN], const uint8_t *data, size_t len)
{
    crypto_generichash_state st;
    static const uint8_t pfx = 0x00;
    crypto_generichash_init(&st, NULL, 0, GNI_XFER_HASH_LEN);
    crypto_generichash_update(&st, &pfx, 1);
    if (len)
        crypto_generichash_update(&st, data, len);
    crypto_generichash_final(&st, out, GNI_XFER_HASH_LEN);
}

void gni_xfer_node_hash(uint8_t out[GNI_XFER_HASH_LEN], const uint8_t l[GNI_XFER_HASH_LEN],
                        const uint8_t r[GNI_XFER_HASH_LEN])
{
    uint8_t in[1 + 2 * GNI_XFER_HASH_LEN];
    in[0] = 0x01;
    memcpy(in + 1, l, GNI_XFER_HASH_LEN);
    memcpy(in + 1 + GNI_XFER_HASH_LEN, r, GNI_XFER_HASH_LEN);
    crypto_generichash(out, GNI_XFER_HASH_LEN, in, sizeof in, NULL, 0);
}

static void xfer_empty_root(uint8_t out[GNI_XFER_HASH_LEN])
{
    crypto_generichash(out, GNI_XFER_HASH_LEN, NULL, 0, NULL, 0);
}

static const uint64_t XFER_LEAVES_MAX = 1ull << GNI_XFER_DEPTH_MAX;

int gni_xfer_tree_new(const uint8_t *leaves, uint64_t n, gni_xfer_tree **out)
{
    if (!out || (n && !leaves) || n > XFER_LEAVES_MAX)
        return GN_EINVAL;
    *out = NULL;
    gni_xfer_tree *t = gn_calloc(1, sizeof *t);
    if (!t)
        return GN_ENOMEM;
    t->n = n;
    if (n == 0) {
        xfer_empty_root(t->root);
        *out = t;
        return 0;
    }
    uint64_t total = 0, w = n;
    unsigned lv = 0;
    for (;;) {
        t->off[lv] = total;
        t->width[lv] = w;
        total += w;
        lv++;
        if (w == 1)
            break;
        w = (w + 1) / 2;
    }
    t->levels = lv;
    if (total > SIZE_MAX / GNI_XFER_HASH_LEN) {
        gn_free(t);
        return GN_ENOMEM;
    }
    t->h = gn_malloc((size_t)total * GNI_XFER_HASH_LEN);
    if (!t->h) {
        gn_free(t);
        return GN_ENOMEM;
    }
    memcpy(t->h, leaves, (size_t)n * GNI_XFER_HASH_LEN);
    for (unsigned k = 1; k < lv; k++) {
        uint8_t(*below)[GNI_XFER_HASH_LEN] = t->h + t->off[k - 1];
        uint8_t(*here)[GNI_XFER_HASH_LEN] = t->h + t->off[k];
        uint64_t bw = t->width[k - 1];
        for (uint64_t j = 0; j < t->width[k]; j++) {
            if (2 * j + 1 < bw)
                gni_xfer_node_hash(here[j], below[2 * j], below[2 * j + 1]);
            else
                memcpy(here[j], below[2 * j], GNI_XFER_HASH_LEN);
        }
    }
    memcpy(t->root, t->h[t->off[lv - 1]], GNI_XFER_HASH_LEN);
    *out = t;
    return 0;
}

void gni_xfer_tree_free(gni_xfer_tree *t)
{
    if (!t)
        return;
    gn_free(t->h);
    gn_free(t);
}

const uint8_t *gni_xfer_tree_root(const gni_xfer_tree *t)
{
    return t->root;
}

int gni_xfer_tree_proof(const gni_xfer_tree *t, uint64_t index,
                        uint8_t proof[][GNI_XFER_HASH_LEN])
{
    if (!t || index >= t->n)
        return GN_EINVAL;
    int cnt = 0;
    for (unsigned k = 0; k + 1 < t->levels; k++) {
        uint64_t sib = index ^ 1u;
        if (sib < t->width[k])
            memcpy(proof[cnt++], t->h[t->off[k] + sib], GNI_XFER_HASH_LEN);
        index >>= 1;
    }
    return cnt;
}

void gni_xfer_root(const uint8_t *leaves, uint64_t n, uint8_t out[GNI_XFER_HASH_LEN])
{
    /* a stack of perfect subtrees, sizes strictly decreasing upwards */
    uint8_t st[GNI_XFER_DEPTH_MAX + 2][GNI_XFER_HASH_LEN];
    unsigned ht[GNI_XFER_DEPTH_MAX + 2];
    unsigned sp = 0;
    if (n == 0 || n > XFER_LEAVES_MAX) {
        xfer_empty_root(out);
        return;
    }
    for (uint64_t i = 0; i < n; i++) {
        memcpy(st[sp], leaves + i * GNI_XFER_HASH_LEN, GNI_XFER_HASH_LEN);
        ht[sp++] = 0;
        while (sp >= 2 && ht[sp - 1] == ht[sp - 2]) {
            gni_xfer_node_hash(st[sp - 2], st[sp - 2], st[sp - 1]);
            ht[sp - 2]++;
            sp--;
        }
    }
    while (sp >= 2) {
        gni_xfer_node_hash(st[sp - 2], st[sp - 2], st[sp - 1]);
        sp--;
    }
    memcpy(out, st[0], GNI_XFER_HASH_LEN);
}

unsigned gni_xfer_proof_len(uint64_t n, uint64_t index)
{
    unsigned cnt = 0;
    if (index >= n)
        return 0;
    for (uint64_t w = n; w > 1; w = (w + 1) / 2) {
        if ((index ^ 1u) < w)
            cnt++;
        index >>= 1;
    }
    return cnt;
}

int gni_xfer_proof_verify(const uint8_t root[GNI_XFER_HASH_LEN], uint64_t n, uint64_t index,
                          const uint8_t leaf[GNI_XFER_HASH_LEN], const uint8_t *proof,
                          unsigned cnt)
{
    if (!root || !leaf || index >= n || n > XFER_LEAVES_MAX || cnt != gni_xfer_proof_len(n, index) ||
        (cnt && !proof))
        return GN_EINVAL;
    uint8_t h[GNI_XFER_HASH_LEN];
    memcpy(h, leaf, sizeof h);
    unsigned used = 0;
    for (uint64_t w = n; w > 1; w = (w + 1) / 2) {
        if ((index ^ 1u) < w) {
            const uint8_t *p = proof + (size_t)used++ * GNI_XFER_HASH_LEN;
            if (index & 1u)
                gni_xfer_node_hash(h, p, h);
            else
                gni_xfer_node_hash(h, h, p);
        }
        index >>= 1;
    }
    return sodium_memcmp(h, root, GNI_XFER_HASH_LEN) == 0 ? 0 : GN_EDECRYPT;
}

int gni_xfer_chunk_verify(const gni_xfer_manifest *m, uint64_t index, const uint8_t *data,
                          size_t len, const uint8_t *proof, unsigned cnt)
{
    if (!m || index >= m->leaf_count || (len && !data))
        return GN_EINVAL;
    if (len != gni_xfer_chunk_len(m, index))
        return GN_EDECRYPT;
    uint8_t leaf[GNI_XFER_HASH_LEN];
    gni_xfer_leaf_hash(leaf, data, len);
    return gni_xfer_proof_verify(m->root, m->leaf_count, index, leaf, proof, cnt);
}

/* ---- manifest ---- */

/* A resource name: UTF-8 (RFC 3629: no overlongs, surrogates or code
 * points above U+10FFFF), no C0/DEL controls, no '/' or '\\', not "." or "..". */
static bool xfer_name_ok(const uint8_t *s, size_t n)
{
    if (n > GNI_XFER_NAME_MAX)
        return false;
    if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
        return false;
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f || c == '/' || c == '\\')
                return false;
            i++;
            continue;
        }
        size_t k;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) {
            k = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            k = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            k = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (i + k >= n)
            return false;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += k + 1;
    }
    return true;
}

static bool xfer_manifest_ok(const gni_xfer_manifest *m)
{
    uint32_t c = m->chunk_size;
    if (c < GNI_XFER_CHUNK_MIN || c > GNI_XFER_CHUNK_MAX || (c & (c - 1)) != 0)
        return false;
    if (m->total_size > GNI_XFER_SIZE_MAX)
        return false;
    if (m->leaf_count != gni_xfer_leaf_count(m->total_size, c))
        return false;
    if (m->leaf_count == 0) {
        uint8_t e[GNI_XFER_HASH_LEN];
        xfer_empty_root(e);
        if (memcmp(e, m->root, sizeof e) != 0)
            return false;
    }
    return xfer_name_ok((const uint8_t *)m->name, m->name_len);
}

static int xfer_put_varint(uint8_t *out, size_t out_len, size_t *pos, uint64_t v)
{
    int rc = gn_varint_encode(v, out + *pos, out_len - *pos);
    if (rc < 0)
        return rc == GN_ENOSPC ? GN_ENOSPC : GN_EINVAL;
    *pos += (size_t)rc;
    return 0;
}

int gni_xfer_manifest_encode(const gni_xfer_manifest *m, uint8_t *out, size_t out_len)
{
    if (!m || !out)
        return GN_EINVAL;
    if (!xfer_manifest_ok(m))
        return GN_EINVAL;
    size_t pos = 0;
    int rc;
    if ((rc = xfer_put_varint(out, out_len, &pos, 1)) < 0 ||
        (rc = xfer_put_varint(out, out_len, &pos, GNI_XFER_MH_BLAKE2B_256)) < 0 ||
        (rc = xfer_put_varint(out, out_len, &pos, m->total_size)) < 0 ||
        (rc = xfer_put_varint(out, out_len, &pos, m->chunk_size)) < 0 ||
        (rc = xfer_put_varint(out, out_len, &pos, m->leaf_count)) < 0)
        return rc;
    if (out_len - pos < GNI_XFER_HASH_LEN)
        return GN_ENOSPC;
    memcpy(out + pos, m->root, GNI_XFER_HASH_LEN);
    pos += GNI_XFER_HASH_LEN;
    if ((rc = xfer_put_varint(out, out_len, &pos, m->name_len)) < 0)
        return rc;
    if (out_len - pos < m->name_len)
        return GN_ENOSPC;
    memcpy(out + pos, m->name, m->name_len);
    pos += m->name_len;
    return (int)pos;
}

static int xfer_get_varint(const uint8_t *in, size_t len, size_t *pos, uint64_t *v)
{
    int rc = gn_varint_decode(in + *pos, len - *pos, v);
    if (rc < 0)
        return GN_EPARSE;
    *pos += (size_t)rc;
    return 0;
}

int gni_xfer_manifest_decode(const uint8_t *in, size_t len, gni_xfer_manifest *m)
{
    if (!m || (len && !in))
        return GN_EINVAL;
    if (len > GNI_XFER_MANIFEST_MAX)
        return GN_ETOOBIG;
    memset(m, 0, sizeof *m);
    size_t pos = 0;
    uint64_t ver, hash, total, chunk, leaves, nlen;
    if (xfer_get_varint(in, len, &pos, &ver) < 0)
        return GN_EPARSE;
    if (ver != 1)
        return GN_EVERSION;
    if (xfer_get_varint(in, len, &pos, &hash) < 0)
        return GN_EPARSE;
    if (hash != GNI_XFER_MH_BLAKE2B_256)
        return GN_EVERSION;
    if (xfer_get_varint(in, len, &pos, &total) < 0 || xfer_get_varint(in, len, &pos, &chunk) < 0 ||
        xfer_get_varint(in, len, &pos, &leaves) < 0)
        return GN_EPARSE;
    if (len - pos < GNI_XFER_HASH_LEN)
        return GN_EPARSE;
    memcpy(m->root, in + pos, GNI_XFER_HASH_LEN);
    pos += GNI_XFER_HASH_LEN;
    if (xfer_get_varint(in, len, &pos, &nlen) < 0)
        return GN_EPARSE;
    if (nlen > GNI_XFER_NAME_MAX)
        return GN_ETOOBIG;
    if (len - pos != nlen)
        return GN_EPARSE;
    if (chunk > GNI_XFER_CHUNK_MAX || total > GNI_XFER_SIZE_MAX)
        return GN_EPARSE;
    m->total_size = total;
    m->chunk_size = (uint32_t)chunk;
    m->leaf_count = leaves;
    m->name_len = (size_t)nlen;
    memcpy(m->name, in + pos, (size_t)nlen);
    m->name[nlen] = '\0';
    if (!xfer_manifest_ok(m))
        return GN_EPARSE;
    return 0;
}

/* ---- CID ---- */

void gni_xfer_cid(const uint8_t *mb, size_t len, uint8_t cid[GNI_XFER_CID_LEN])
{
    cid[0] = GN_CID_VERSION_1;
    cid[1] = GNI_XFER_CODEC_RAW;
    cid[2] = 0xa0; /* varint 0xb220 */
    cid[3] = 0xe4;
    cid[4] = 0x02;
    cid[5] = GNI_XFER_HASH_LEN;
    crypto_generichash(cid + 6, GNI_XFER_HASH_LEN, mb, len, NULL, 0);
}

int gni_xfer_cid_string(const uint8_t cid[GNI_XFER_CID_LEN], char *out, size_t out_len)
{
    if (!cid || !out)
        return GN_EINVAL;
    return gn_multibase_encode(GN_MULTIBASE_BASE32, cid, GNI_XFER_CID_LEN, out, out_len);
}

int gni_xfer_cid_check(const uint8_t *in, size_t len)
{
    uint64_t codec;
    gn_multihash mh;
    if (!in || gn_cid_decode(in, len, &codec, &mh) < 0)
        return GN_EPARSE;
    if (codec != GNI_XFER_CODEC_RAW || mh.code != GNI_XFER_MH_BLAKE2B_256 ||
        mh.digest_len != GNI_XFER_HASH_LEN || len != GNI_XFER_CID_LEN)
        return GN_ENOTSUP;
    return 0;
}

int gni_xfer_cid_parse_string(const char *s, size_t len, uint8_t cid[GNI_XFER_CID_LEN])
{
    uint8_t buf[GNI_XFER_CID_STR_MAX];
    if (!s || !cid || len < 2 || len >= GNI_XFER_CID_STR_MAX * 2)
        return GN_EPARSE;
    if (s[0] != GN_MULTIBASE_BASE32 && s[0] != GN_MULTIBASE_BASE58BTC)
        return GN_EPARSE;
    int n = gn_multibase_decode(s, len, NULL, buf, sizeof buf);
    if (n < 0)
        return GN_EPARSE;
    int rc = gni_xfer_cid_check(buf, (size_t)n);
    if (rc < 0)
        return rc;
    memcpy(cid, buf, GNI_XFER_CID_LEN);
    return 0;
}

int gni_xfer_cid_verify(const uint8_t cid[GNI_XFER_CID_LEN], const uint8_t *mb, size_t len)
{
    uint8_t c[GNI_XFER_CID_LEN];
    if (!cid || (len && !mb))
        return GN_EINVAL;
    gni_xfer_cid(mb, len, c);
    return sodium_memcmp(c, cid, GNI_XFER_CID_LEN) == 0 ? 0 : GN_EDECRYPT;
}

/* ---- resume state ---- */

uint64_t gni_xfer_tree_leaves(const gni_xfer_tree *t)
{
    return t ? t->n : 0;
}

size_t gni_xfer_bitmap_len(uint64_t leaves)
{
    uint64_t n = leaves / 8 + ((leaves & 7) != 0);
    return n > SIZE_MAX ? SIZE_MAX : (size_t)n; /* SIZE_MAX: does not fit (32-bit) */
}

int gni_xfer_state_header(const uint8_t *mb, size_t mb_len, uint8_t *out, size_t out_len)
{
    if (!mb || !out || mb_len > GNI_XFER_MANIFEST_MAX)
        return GN_EINVAL;
    if (out_len < 12 + mb_len)
        return GN_ENOSPC;
    memcpy(out, GNI_XFER_STATE_MAGIC, 8);
    out[8] = (uint8_t)(mb_len >> 24);
    out[9] = (uint8_t)(mb_len >> 16);
    out[10] = (uint8_t)(mb_len >> 8);
    out[11] = (uint8_t)mb_len;
    memcpy(out + 12, mb, mb_len);
    return (int)(12 + mb_len);
}

int gni_xfer_state_parse(const uint8_t *in, size_t len, const uint8_t cid[GNI_XFER_CID_LEN],
                         gni_xfer_manifest *m, const uint8_t **bitmap, size_t *hdr_len)
{
    if (!in || !cid || !m || !bitmap || !hdr_len)
        return GN_EINVAL;
    if (len < 12 || memcmp(in, GNI_XFER_STATE_MAGIC, 8) != 0)
        return GN_EPARSE;
    size_t ml = ((size_t)in[8] << 24) | ((size_t)in[9] << 16) | ((size_t)in[10] << 8) | in[11];
    if (ml > GNI_XFER_MANIFEST_MAX || len - 12 < ml)
        return GN_EPARSE;
    int rc = gni_xfer_manifest_decode(in + 12, ml, m);
    if (rc < 0)
        return rc;
    if (gni_xfer_cid_verify(cid, in + 12, ml) != 0)
        return GN_EDECRYPT;
    if (m->leaf_count / 8 >= SIZE_MAX - 12 - GNI_XFER_MANIFEST_MAX)
        return GN_ELIMIT; /* a bitmap this platform cannot address */
    size_t bl = gni_xfer_bitmap_len(m->leaf_count);
    if (len - 12 - ml != bl)
        return GN_EPARSE;
    const uint8_t *bm = in + 12 + ml;
    unsigned tail = (unsigned)(m->leaf_count & 7);
    if (tail && (bm[bl - 1] >> tail) != 0)
        return GN_EPARSE;
    *bitmap = bm;
    *hdr_len = 12 + ml;
    return 0;
}

uint64_t gni_xfer_state_bit(size_t hdr_len, uint64_t index, uint8_t *mask)
{
    if (mask)
        *mask = (uint8_t)(1u << (index & 7));
    return (uint64_t)hdr_len + (index >> 3);
}
