/*
 * Fuzzes the content-addressing parsers of the transfer core
 * (protocols/transfer/xfer_tree.c): the manifest decoder (a manifest that
 * decodes must re-encode to the same bytes: the form is canonical), the CID
 * text parser (a CID that parses prints back and parses to the same
 * bytes), the resume-state parser (given the CID of the manifest it
 * embeds), and proof verification on fuzzed trees. Byte 0 picks the part.
 */
#include "xfer.h"

#include "golemnet/err.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *in = data + 1;
    size_t len = size - 1;
    switch (data[0] & 3) {
    case 0: {
        gni_xfer_manifest m;
        uint8_t out[GNI_XFER_MANIFEST_MAX];
        if (gni_xfer_manifest_decode(in, len, &m) == 0) {
            int n = gni_xfer_manifest_encode(&m, out, sizeof out);
            if (n != (int)len || memcmp(out, in, len) != 0)
                abort();
            if (m.leaf_count != gni_xfer_leaf_count(m.total_size, m.chunk_size) ||
                strlen(m.name) != m.name_len)
                abort();
        }
        break;
    }
    case 1: {
        uint8_t cid[GNI_XFER_CID_LEN], back[GNI_XFER_CID_LEN];
        char s[GNI_XFER_CID_STR_MAX];
        if (gni_xfer_cid_parse_string((const char *)in, len, cid) == 0) {
            if (gni_xfer_cid_check(cid, sizeof cid) != 0)
                abort();
            int n = gni_xfer_cid_string(cid, s, sizeof s);
            if (n <= 0 || gni_xfer_cid_parse_string(s, (size_t)n, back) != 0 ||
                memcmp(cid, back, sizeof cid) != 0)
                abort();
        }
        break;
    }
    case 2: {
        /* a state file: the CID is taken from the manifest it claims to hold */
        uint8_t cid[GNI_XFER_CID_LEN];
        gni_xfer_manifest m;
        const uint8_t *bm;
        size_t hl;
        size_t ml = len >= 12 ? ((size_t)in[8] << 24 | (size_t)in[9] << 16 | (size_t)in[10] << 8 |
                                 in[11])
                              : 0;
        if (len >= 12 && ml <= len - 12)
            gni_xfer_cid(in + 12, ml, cid);
        else
            memset(cid, 0, sizeof cid);
        if (gni_xfer_state_parse(in, len, cid, &m, &bm, &hl) == 0) {
            if (hl + gni_xfer_bitmap_len(m.leaf_count) != len || bm != in + hl)
                abort();
            for (uint64_t i = 0; i < m.leaf_count; i++)
                (void)gni_xfer_bit(bm, i);
        }
        break;
    }
    default: {
        /* n leaves from the input, then every leaf's proof must verify and
         * the fuzzed proof of leaf 0 must not, unless it is the real one */
        uint64_t n = len / 32;
        if (n == 0 || n > 512)
            break;
        gni_xfer_tree *t;
        uint8_t proof[GNI_XFER_DEPTH_MAX][32], root[32];
        if (gni_xfer_tree_new(in, n, &t) != 0)
            abort();
        gni_xfer_root(in, n, root);
        if (memcmp(root, gni_xfer_tree_root(t), 32) != 0)
            abort();
        for (uint64_t i = 0; i < n; i++) {
            int pc = gni_xfer_tree_proof(t, i, proof);
            if (pc < 0 || gni_xfer_proof_verify(root, n, i, in + i * 32, &proof[0][0],
                                                (unsigned)pc) != 0)
                abort();
        }
        gni_xfer_tree_free(t);
        break;
    }
    }
    return 0;
}
