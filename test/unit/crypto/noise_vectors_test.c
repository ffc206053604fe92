/*
 * Noise core against the Cacophony test vectors.
 *
 * Source: ../shared/vectors/noise/cacophony_25519_ChaChaPoly_SHA256.json,
 * every *_25519_ChaChaPoly_SHA256 vector of the public-domain Cacophony suite
 * (haskell-cryptography/cacophony, vectors/cacophony.txt), unchanged. Each
 * vector gives both sides' keys, prologue and PSKs, every message's payload
 * and ciphertext (handshake messages, then transport messages), and the
 * handshake hash. The file is read at run time from $GN_SHARED_DIR (set by
 * the meson test environment), else $GN_SOURCE_DIR/../shared.
 */
#include "gn_test.h"
#include "noise.h"

#include "golemnet/log.h"

#include <sodium.h>

/* ---- a tiny JSON reader: objects, arrays and escape-free strings ------------------------ */

enum { J_OBJ = 1, J_ARR, J_STR };
#define J_MAX_NODES 8192
#define J_MAX_DEPTH 16

typedef struct jnode {
    int type;
    const char *key; /* member name inside an object, else NULL */
    size_t key_len;
    const char *str; /* J_STR value */
    size_t str_len;
    int child; /* first child index or -1 */
    int next;  /* next sibling or -1 */
} jnode;

typedef struct jdoc {
    const char *p, *end;
    jnode nodes[J_MAX_NODES];
    int n;
    int err;
} jdoc;

static void j_ws(jdoc *d)
{
    while (d->p < d->end && (*d->p == ' ' || *d->p == '\n' || *d->p == '\r' || *d->p == '\t'))
        d->p++;
}

static int j_string(jdoc *d, const char **s, size_t *len)
{
    if (d->p >= d->end || *d->p != '"')
        return -1;
    const char *b = ++d->p;
    while (d->p < d->end && *d->p != '"') {
        if (*d->p == '\\') /* the vector file has no escapes; refuse rather than misread */
            return -1;
        d->p++;
    }
    if (d->p >= d->end)
        return -1;
    *s = b;
    *len = (size_t)(d->p - b);
    d->p++;
    return 0;
}

static int j_value(jdoc *d, int depth);

/* Parses the members/elements of an object or array into children of node @idx. */
static int j_container(jdoc *d, int idx, int depth, int is_obj)
{
    char close = is_obj ? '}' : ']';
    int prev = -1;
    d->p++;
    j_ws(d);
    if (d->p < d->end && *d->p == close) {
        d->p++;
        return 0;
    }
    for (int guard = 0; guard < J_MAX_NODES; guard++) {
        const char *key = NULL;
        size_t key_len = 0;
        j_ws(d);
        if (is_obj) {
            if (j_string(d, &key, &key_len) < 0)
                return -1;
            j_ws(d);
            if (d->p >= d->end || *d->p != ':')
                return -1;
            d->p++;
            j_ws(d);
        }
        int c = j_value(d, depth + 1);
        if (c < 0)
            return -1;
        d->nodes[c].key = key;
        d->nodes[c].key_len = key_len;
        if (prev < 0)
            d->nodes[idx].child = c;
        else
            d->nodes[prev].next = c;
        prev = c;
        j_ws(d);
        if (d->p < d->end && *d->p == ',') {
            d->p++;
            continue;
        }
        if (d->p < d->end && *d->p == close) {
            d->p++;
            return 0;
        }
        return -1;
    }
    return -1;
}

static int j_value(jdoc *d, int depth)
{
    if (depth > J_MAX_DEPTH || d->n >= J_MAX_NODES)
        return -1;
    j_ws(d);
    if (d->p >= d->end)
        return -1;
    int idx = d->n++;
    jnode *nd = &d->nodes[idx];
    memset(nd, 0, sizeof *nd);
    nd->child = nd->next = -1;
    if (*d->p == '{' || *d->p == '[') {
        nd->type = *d->p == '{' ? J_OBJ : J_ARR;
        if (j_container(d, idx, depth, nd->type == J_OBJ) < 0)
            return -1;
        return idx;
    }
    nd->type = J_STR;
    if (j_string(d, &nd->str, &nd->str_len) < 0)
        return -1;
    return idx;
}

/* Member @name of object @obj, or -1. */
static int j_get(const jdoc *d, int obj, const char *name)
{
    if (obj < 0 || d->nodes[obj].type != J_OBJ)
        return -1;
    size_t nl = strlen(name);
    for (int c = d->nodes[obj].child; c >= 0; c = d->nodes[c].next)
        if (d->nodes[c].key_len == nl && memcmp(d->nodes[c].key, name, nl) == 0)
            return c;
    return -1;
}

/* Decodes the hex string node @n into @out; returns the byte count or -1. */
static long j_hex(const jdoc *d, int n, uint8_t *out, size_t cap)
{
    if (n < 0 || d->nodes[n].type != J_STR || d->nodes[n].str_len % 2 != 0 ||
        d->nodes[n].str_len / 2 > cap)
        return -1;
    size_t len = d->nodes[n].str_len / 2;
    if (sodium_hex2bin(out, cap, d->nodes[n].str, d->nodes[n].str_len, NULL, NULL, NULL) != 0)
        return -1;
    return (long)len;
}

/* ---- loading ---------------------------------------------------------------------------- */

static char *vec_text;
static jdoc *vec_doc;
static int vec_root = -1;

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap);
    if (buf) {
        n = fread(buf, 1, cap - 1, f);
        buf[n] = '\0';
    }
    fclose(f);
    *len = n;
    return buf;
}

static void load_vectors(void)
{
    static const char rel[] = "/vectors/noise/cacophony_25519_ChaChaPoly_SHA256.json";
    if (vec_doc)
        return;
    char path[4096];
    const char *shared = getenv("GN_SHARED_DIR");
    const char *src = getenv("GN_SOURCE_DIR");
    size_t len = 0;
    if (shared) {
        snprintf(path, sizeof path, "%s%s", shared, rel);
        vec_text = read_file(path, &len);
    }
    if (!vec_text && src) {
        snprintf(path, sizeof path, "%s/../shared%s", src, rel);
        vec_text = read_file(path, &len);
    }
    if (!vec_text) {
        snprintf(path, sizeof path, "../shared%s", rel);
        vec_text = read_file(path, &len);
    }
    if (!vec_text)
        return;
    vec_doc = calloc(1, sizeof *vec_doc);
    if (!vec_doc)
        return;
    vec_doc->p = vec_text;
    vec_doc->end = vec_text + len;
    vec_root = j_value(vec_doc, 0);
}

/* ---- running one vector ----------------------------------------------------------------- */

#define MAX_MSG 1024

typedef struct side_keys {
    uint8_t s[32], e[32], rs[32], psks[GN_NOISE_MAX_PSKS * 32], prologue[256];
    long s_len, e_len, rs_len, prologue_len;
    size_t n_psks;
} side_keys;

static int load_side(const jdoc *d, int v, const char *pfx, side_keys *k)
{
    char name[64];
    memset(k, 0, sizeof *k);
    snprintf(name, sizeof name, "%s_static", pfx);
    k->s_len = j_hex(d, j_get(d, v, name), k->s, sizeof k->s);
    snprintf(name, sizeof name, "%s_ephemeral", pfx);
    k->e_len = j_hex(d, j_get(d, v, name), k->e, sizeof k->e);
    snprintf(name, sizeof name, "%s_remote_static", pfx);
    k->rs_len = j_hex(d, j_get(d, v, name), k->rs, sizeof k->rs);
    snprintf(name, sizeof name, "%s_prologue", pfx);
    k->prologue_len = j_hex(d, j_get(d, v, name), k->prologue, sizeof k->prologue);
    if (k->prologue_len < 0)
        k->prologue_len = 0;
    snprintf(name, sizeof name, "%s_psks", pfx);
    int arr = j_get(d, v, name);
    if (arr >= 0) {
        for (int c = d->nodes[arr].child; c >= 0; c = d->nodes[c].next) {
            if (k->n_psks >= GN_NOISE_MAX_PSKS ||
                j_hex(d, c, k->psks + 32 * k->n_psks, 32) != 32)
                return -1;
            k->n_psks++;
        }
    }
    return 0;
}

static int make_hs(const char *proto, bool initiator, const side_keys *k, gn_noise_hs **out)
{
    gn_noise_hs_params p;
    memset(&p, 0, sizeof p);
    p.protocol_name = proto;
    p.initiator = initiator;
    p.prologue = gn_slice_of(k->prologue, (size_t)k->prologue_len);
    p.s = k->s_len == 32 ? k->s : NULL;
    p.e = k->e_len == 32 ? k->e : NULL;
    p.rs = k->rs_len == 32 ? k->rs : NULL;
    p.psks = k->n_psks ? k->psks : NULL;
    p.n_psks = k->n_psks;
    return gn_noise_hs_new(&p, out);
}

static int run_total, run_ok, run_skipped, xx_total, xx_ok;

/*
 * Runs vector @v. Returns 1 when it ran and passed, 0 when skipped
 * (unsupported pattern); a mismatch fails the current test.
 */
static int run_vector(const jdoc *d, int v)
{
    char proto[128];
    int pn = j_get(d, v, "protocol_name");
    CHECK(pn >= 0 && d->nodes[pn].str_len < sizeof proto);
    memcpy(proto, d->nodes[pn].str, d->nodes[pn].str_len);
    proto[d->nodes[pn].str_len] = '\0';

    side_keys ik, rk;
    CHECK(load_side(d, v, "init", &ik) == 0);
    CHECK(load_side(d, v, "resp", &rk) == 0);
    gn_noise_hs *ini = NULL, *res = NULL;
    int rc = make_hs(proto, true, &ik, &ini);
    if (rc == GN_ENOTSUP)
        return 0;
    if (rc < 0)
        printf("# %s: initiator init %s\n", proto, gn_err_name(rc));
    CHECK_OK(rc);
    rc = make_hs(proto, false, &rk, &res);
    if (rc < 0)
        printf("# %s: responder init %s\n", proto, gn_err_name(rc));
    CHECK_OK(rc);

    gn_noise_pattern pat;
    const char *pname = proto + 6;
    CHECK_OK(gn_noise_pattern_find(pname, strlen(pname) - strlen("_25519_ChaChaPoly_SHA256"),
                                   &pat));

    gn_noise_cipher itx, irx, rtx, rrx;
    gn_noise_cipher_init(&itx);
    gn_noise_cipher_init(&irx);
    gn_noise_cipher_init(&rtx);
    gn_noise_cipher_init(&rrx);
    static uint8_t payload[MAX_MSG], expect[MAX_MSG], buf[MAX_MSG], plain[MAX_MSG];
    int msgs = j_get(d, v, "messages");
    CHECK(msgs >= 0);
    int i = 0, n_handshake = 0, n_transport = 0;
    for (int m = d->nodes[msgs].child; m >= 0 && i < 64; m = d->nodes[m].next, i++) {
        long plen = j_hex(d, j_get(d, m, "payload"), payload, sizeof payload);
        long clen = j_hex(d, j_get(d, m, "ciphertext"), expect, sizeof expect);
        CHECK(plen >= 0 && clen >= 0);
        bool from_init = pat.one_way ? true : (i % 2 == 0);
        if (gn_noise_hs_next(ini) != GN_NOISE_HS_DONE || gn_noise_hs_next(res) != GN_NOISE_HS_DONE) {
            gn_noise_hs *w = from_init ? ini : res, *r = from_init ? res : ini;
            CHECK_EQ(gn_noise_hs_next(w), GN_NOISE_HS_WRITE);
            CHECK_EQ(gn_noise_hs_next(r), GN_NOISE_HS_READ);
            CHECK_EQ(gn_noise_hs_write_len(w, (size_t)plen), clen);
            int n = gn_noise_hs_write(w, gn_slice_of(payload, (size_t)plen), buf, sizeof buf);
            CHECK_EQ(n, clen);
            CHECK_MEM(buf, expect, (size_t)clen);
            /* a flipped bit must not authenticate (when the message is encrypted) */
            int got = gn_noise_hs_read(r, gn_slice_of(buf, (size_t)n), plain, sizeof plain);
            CHECK_EQ(got, plen);
            CHECK_MEM(plain, payload, (size_t)plen);
            n_handshake++;
            if (gn_noise_hs_next(ini) == GN_NOISE_HS_DONE) {
                CHECK_EQ(gn_noise_hs_next(res), GN_NOISE_HS_DONE);
                uint8_t h1[32], h2[32], hv[32];
                gn_noise_hs_hash(ini, h1);
                gn_noise_hs_hash(res, h2);
                CHECK(j_hex(d, j_get(d, v, "handshake_hash"), hv, sizeof hv) == 32);
                CHECK_MEM(h1, hv, 32);
                CHECK_MEM(h2, hv, 32);
                CHECK_OK(gn_noise_hs_take_ciphers(ini, &itx, &irx));
                CHECK_OK(gn_noise_hs_take_ciphers(res, &rtx, &rrx));
                CHECK_EQ(gn_noise_hs_take_ciphers(res, &rtx, &rrx), GN_ESTATE);
            }
        } else {
            gn_noise_cipher *tx = from_init ? &itx : &rtx, *rx = from_init ? &rrx : &irx;
            int n = gn_noise_cipher_encrypt(tx, NULL, 0, payload, (size_t)plen, buf);
            CHECK_EQ(n, clen);
            CHECK_MEM(buf, expect, (size_t)clen);
            /* tampering the tag fails and leaves the nonce where it was */
            uint64_t n_before = rx->n;
            buf[n - 1] ^= 1;
            CHECK_EQ(gn_noise_cipher_decrypt(rx, NULL, 0, buf, (size_t)n, plain), GN_EDECRYPT);
            CHECK(rx->n == n_before);
            buf[n - 1] ^= 1;
            CHECK_EQ(gn_noise_cipher_decrypt(rx, NULL, 0, buf, (size_t)n, plain), plen);
            CHECK_MEM(plain, payload, (size_t)plen);
            n_transport++;
        }
    }
    CHECK_EQ(n_handshake, pat.n_msgs);
    CHECK(n_transport > 0);
    gn_noise_cipher_fini(&itx);
    gn_noise_cipher_fini(&irx);
    gn_noise_cipher_fini(&rtx);
    gn_noise_cipher_fini(&rrx);
    gn_noise_hs_free(ini);
    gn_noise_hs_free(res);
    return 1;
}

/* ---- tests ------------------------------------------------------------------------------ */

static int vectors_array(void)
{
    load_vectors();
    if (!vec_doc || vec_root < 0)
        return -1;
    return j_get(vec_doc, vec_root, "vectors");
}

GN_TEST(vectors_file_loads)
{
    int arr = vectors_array();
    CHECK(arr >= 0);
    int n = 0;
    for (int c = vec_doc->nodes[arr].child; c >= 0 && n < 10000; c = vec_doc->nodes[c].next)
        n++;
    CHECK_EQ(n, 59); /* README: every 25519_ChaChaPoly_SHA256 vector of the suite */
}

GN_TEST(vectors_all)
{
    int arr = vectors_array();
    CHECK(arr >= 0);
    run_total = run_ok = run_skipped = xx_total = xx_ok = 0;
    for (int c = vec_doc->nodes[arr].child; c >= 0; c = vec_doc->nodes[c].next) {
        int pn = j_get(vec_doc, c, "protocol_name");
        CHECK(pn >= 0);
        bool is_xx = vec_doc->nodes[pn].str_len == strlen(GN_NOISE_LIBP2P_PROTOCOL) &&
                     memcmp(vec_doc->nodes[pn].str, GN_NOISE_LIBP2P_PROTOCOL,
                            vec_doc->nodes[pn].str_len) == 0;
        run_total++;
        xx_total += is_xx;
        int r = run_vector(vec_doc, c);
        if (r == 1) {
            run_ok++;
            xx_ok += is_xx;
        } else {
            run_skipped++;
            printf("# skipped %.*s\n", (int)vec_doc->nodes[pn].str_len, vec_doc->nodes[pn].str);
        }
    }
    printf("# cacophony vectors: %d ran (both sides), %d skipped, of %d\n", run_ok, run_skipped,
           run_total);
    CHECK(xx_total >= 1);
    CHECK_EQ(xx_ok, xx_total);
    /* every pattern in the file is supported by the table */
    CHECK_EQ(run_skipped, 0);
}

GN_TEST(vector_xx_tampered_handshake)
{
    /* Noise_XX vector: flipping any byte of message 2 must fail at the reader. */
    int arr = vectors_array();
    CHECK(arr >= 0);
    int v = -1;
    for (int c = vec_doc->nodes[arr].child; c >= 0; c = vec_doc->nodes[c].next) {
        int pn = j_get(vec_doc, c, "protocol_name");
        if (vec_doc->nodes[pn].str_len == strlen(GN_NOISE_LIBP2P_PROTOCOL) &&
            memcmp(vec_doc->nodes[pn].str, GN_NOISE_LIBP2P_PROTOCOL, vec_doc->nodes[pn].str_len) ==
                0)
            v = c;
    }
    CHECK(v >= 0);
    side_keys ik, rk;
    CHECK(load_side(vec_doc, v, "init", &ik) == 0);
    CHECK(load_side(vec_doc, v, "resp", &rk) == 0);
    int msgs = j_get(vec_doc, v, "messages");
    int m1 = vec_doc->nodes[msgs].child, m2 = vec_doc->nodes[m1].next;
    uint8_t p1[MAX_MSG], c1[MAX_MSG], c2[MAX_MSG], plain[MAX_MSG];
    long pl1 = j_hex(vec_doc, j_get(vec_doc, m1, "payload"), p1, sizeof p1);
    long l1 = j_hex(vec_doc, j_get(vec_doc, m1, "ciphertext"), c1, sizeof c1);
    CHECK(pl1 >= 0);
    long l2 = j_hex(vec_doc, j_get(vec_doc, m2, "ciphertext"), c2, sizeof c2);
    CHECK(l1 > 0 && l2 > 48);
    for (long pos = 0; pos < l2; pos++) {
        gn_noise_hs *ini = NULL;
        CHECK_OK(make_hs(GN_NOISE_LIBP2P_PROTOCOL, true, &ik, &ini));
        uint8_t out[MAX_MSG];
        CHECK_EQ(gn_noise_hs_write(ini, gn_slice_of(p1, (size_t)pl1), out, sizeof out), l1);
        c2[pos] ^= 0x40;
        int rc = gn_noise_hs_read(ini, gn_slice_of(c2, (size_t)l2), plain, sizeof plain);
        c2[pos] ^= 0x40;
        /* bytes 0..31 are re: a different re changes every key, so the static key fails */
        CHECK_EQ(rc, GN_EDECRYPT);
        CHECK_EQ(gn_noise_hs_next(ini), GN_NOISE_HS_FAILED);
        CHECK_EQ(gn_noise_hs_read(ini, gn_slice_of(c2, (size_t)l2), plain, sizeof plain),
                 GN_EDECRYPT);
        gn_noise_hs_free(ini);
    }
    /* truncated below the keys and tags */
    gn_noise_hs *ini = NULL;
    CHECK_OK(make_hs(GN_NOISE_LIBP2P_PROTOCOL, true, &ik, &ini));
    uint8_t out[MAX_MSG];
    CHECK_EQ(gn_noise_hs_write(ini, gn_slice_of(p1, (size_t)pl1), out, sizeof out), l1);
    CHECK_EQ(gn_noise_hs_read(ini, gn_slice_of(c2, 32 + 48 + 15), plain, sizeof plain),
             GN_EBADFRAME);
    gn_noise_hs_free(ini);
}

GN_TEST(pattern_table)
{
    gn_noise_pattern p;
    /* XX (Noise section 7.5): -> e; <- e, ee, s, es; -> s, se */
    CHECK_OK(gn_noise_pattern_find("XX", 2, &p));
    CHECK_EQ(p.n_msgs, 3);
    CHECK_EQ(p.n_psks, 0);
    CHECK(!p.one_way);
    const uint8_t xx1[] = {GN_NOISE_TOK_E, GN_NOISE_TOK_EE, GN_NOISE_TOK_S, GN_NOISE_TOK_ES, 0};
    CHECK_MEM(p.msgs[1], xx1, sizeof xx1);
    /* XXpsk0+psk3: psk first in message 1 and last in message 3 (section 9.4) */
    CHECK_OK(gn_noise_pattern_find("XXpsk0+psk3", 11, &p));
    CHECK_EQ(p.n_psks, 2);
    CHECK_EQ(p.msgs[0][0], GN_NOISE_TOK_PSK);
    CHECK_EQ(p.msgs[0][1], GN_NOISE_TOK_E);
    CHECK_EQ(p.msgs[2][2], GN_NOISE_TOK_PSK);
    /* one-way N: <- s ... -> e, es */
    CHECK_OK(gn_noise_pattern_find("N", 1, &p));
    CHECK(p.one_way);
    CHECK_EQ(p.pre_resp[0], GN_NOISE_TOK_S);
    /* X1X1 (appendix 18.1) has four messages */
    CHECK_OK(gn_noise_pattern_find("X1X1", 4, &p));
    CHECK_EQ(p.n_msgs, 4);
    CHECK_EQ(gn_noise_pattern_find("XY", 2, &p), GN_ENOTSUP);
    CHECK_EQ(gn_noise_pattern_find("XXpsk4", 6, &p), GN_ENOTSUP);
    CHECK_EQ(gn_noise_pattern_find("XXpsk", 5, &p), GN_ENOTSUP);
    CHECK_EQ(gn_noise_pattern_find("XXpsk1psk2", 10, &p), GN_ENOTSUP);
    CHECK_EQ(gn_noise_pattern_find("XXpsk12", 7, &p), GN_ENOTSUP);
}

GN_TEST(hs_params_checked)
{
    gn_noise_hs *hs = NULL;
    gn_noise_hs_params p;
    uint8_t key[32] = {1};
    memset(&p, 0, sizeof p);
    p.protocol_name = "Noise_XX_25519_AESGCM_SHA256";
    p.initiator = true;
    p.e = key;
    CHECK_EQ(gn_noise_hs_new(&p, &hs), GN_ENOTSUP);
    p.protocol_name = "Noise_XX_25519_ChaChaPoly_SHA256";
    CHECK_EQ(gn_noise_hs_new(&p, &hs), GN_EINVAL); /* XX needs a static key */
    p.protocol_name = "Noise_NK_25519_ChaChaPoly_SHA256";
    CHECK_EQ(gn_noise_hs_new(&p, &hs), GN_EINVAL); /* NK needs rs */
    p.protocol_name = "Noise_NNpsk0_25519_ChaChaPoly_SHA256";
    CHECK_EQ(gn_noise_hs_new(&p, &hs), GN_EINVAL); /* one PSK expected */
    p.psks = key;
    p.n_psks = 1;
    CHECK_OK(gn_noise_hs_new(&p, &hs));
    CHECK_EQ(gn_noise_hs_next(hs), GN_NOISE_HS_WRITE);
    uint8_t buf[8];
    CHECK_EQ(gn_noise_hs_write(hs, gn_slice_of(NULL, 0), buf, sizeof buf), GN_ENOSPC);
    CHECK_EQ(gn_noise_hs_read(hs, gn_slice_of(buf, 8), buf, sizeof buf), GN_ESTATE);
    gn_noise_hs_free(hs);
}

GN_TEST(cipher_rekey_and_nonce)
{
    gn_noise_cipher a, b;
    uint8_t key[32], msg[5] = {'h', 'e', 'l', 'l', 'o'}, ct[64], pt[64];
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)i;
    gn_noise_cipher_init(&a);
    gn_noise_cipher_init(&b);
    CHECK_EQ(gn_noise_cipher_encrypt(&a, NULL, 0, msg, 5, ct), GN_ESTATE);
    CHECK_OK(gn_noise_cipher_set_key(&a, key));
    CHECK_OK(gn_noise_cipher_set_key(&b, key));
    /* Noise section 12.3: nonce is 32 zero bits || n LE; n = 0 -> libsodium with 12 zero bytes */
    uint8_t ref[64], nonce[12] = {0};
    unsigned long long rl;
    crypto_aead_chacha20poly1305_ietf_encrypt(ref, &rl, msg, 5, NULL, 0, NULL, nonce, key);
    CHECK_EQ(gn_noise_cipher_encrypt(&a, NULL, 0, msg, 5, ct), 21);
    CHECK_MEM(ct, ref, 21);
    /* n = 1 -> byte 4 of the nonce is 1 */
    nonce[4] = 1;
    crypto_aead_chacha20poly1305_ietf_encrypt(ref, &rl, msg, 5, NULL, 0, NULL, nonce, key);
    CHECK_EQ(gn_noise_cipher_encrypt(&a, NULL, 0, msg, 5, ct), 21);
    CHECK_MEM(ct, ref, 21);
    /* Rekey on both sides keeps them in step */
    CHECK_OK(gn_noise_cipher_rekey(&a));
    CHECK_OK(gn_noise_cipher_rekey(&b));
    CHECK(memcmp(a.k, key, 32) != 0);
    gn_noise_cipher_set_nonce(&b, 2);
    CHECK_EQ(gn_noise_cipher_encrypt(&a, NULL, 0, msg, 5, ct), 21);
    CHECK_EQ(gn_noise_cipher_decrypt(&b, NULL, 0, ct, 21, pt), 5);
    CHECK_MEM(pt, msg, 5);
    /* 2^64-2 is the last usable nonce */
    gn_noise_cipher_set_nonce(&a, UINT64_MAX - 1);
    CHECK_EQ(gn_noise_cipher_encrypt(&a, NULL, 0, msg, 5, ct), 21);
    CHECK_EQ(gn_noise_cipher_encrypt(&a, NULL, 0, msg, 5, ct), GN_ENONCE);
    CHECK_EQ(gn_noise_cipher_decrypt(&a, NULL, 0, ct, 21, pt), GN_ENONCE);
    CHECK_EQ(gn_noise_cipher_decrypt(&b, NULL, 0, ct, 15, pt), GN_EBADFRAME);
    gn_noise_cipher_fini(&a);
    gn_noise_cipher_fini(&b);
    CHECK(a.k == NULL);
}

GN_TEST_MAIN(GN_T(vectors_file_loads), GN_T(vectors_all), GN_T(vector_xx_tampered_handshake),
             GN_T(pattern_table), GN_T(hs_params_checked), GN_T(cipher_rekey_and_nonce))
