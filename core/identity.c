/*
 * Identities: key pairs of every libp2p key type (Ed25519, RSA, secp256k1,
 * ECDSA; the key material is in keys.c), the libp2p PublicKey and PrivateKey
 * protobufs (protobuf-c), peer IDs and their text forms.
 *
 * Spec: libp2p/specs peer-ids/peer-ids.md ("Keys", "Key Types", "Peer Ids",
 * "String representation").
 *
 * Secrets: the 64-byte libsodium secret key (seed || public key, which is
 * also libp2p's Ed25519 private key encoding) and the secp256k1 scalar live
 * in sodium_malloc() memory; RSA and ECDSA keys in OpenSSL's key objects. protobuf-c allocations that may hold private key bytes go through
 * an allocator that wipes every block on free; stack copies are wiped with
 * sodium_memzero() before returning.
 *
 * This file is not a sans-I/O core: gn_identity_save()/gn_identity_load()
 * do file I/O. Everything else is pure and thread-safe (distinct objects).
 */
#include "golemnet/identity.h"
#include "golemnet/multiformats.h"
#include "gni.h"
#include "keys.h"

#include "keys.pb-c.h"

#include <sodium.h>
#include <string.h>
#include <sys/stat.h> /* S_IFMT, S_IFREG (uv_stat_t.st_mode; also in mingw) */
#include <uv.h>

/** Encoded Ed25519 PublicKey protobuf: 08 01 12 20 <32 bytes>. */
#define ID_PUBKEY_PB_LEN 36
/** Largest key file read (and PrivateKey protobuf decoded). */
#define ID_KEYFILE_MAX GN_PRIVKEY_MAX_BYTES
/** Longest public key hashed with the identity multihash (peer-ids "Peer Ids"). */
#define ID_INLINE_KEY_MAX 42
#define ID_SHA256_LEN 32

struct gn_identity {
    /* Ed25519: key.secret is the crypto_sign secret key, seed || public key. */
    gni_privkey key;
    uint8_t pk[GN_ED25519_PUBLICKEYBYTES]; /* Ed25519 only; zero for other types */
    uint8_t *pub_pb;                       /* PublicKey protobuf (gn_malloc) */
    size_t pub_pb_len;
    gn_peer_id pid;
};

/* ---- protobuf-c allocators ------------------------------------------------------ */

static void *id_pb_alloc(void *ud, size_t len)
{
    (void)ud;
    return gn_malloc(len ? len : 1);
}

static void id_pb_free(void *ud, void *p)
{
    (void)ud;
    gn_free(p);
}

/* Routes public-key protobuf allocations through the library hooks. */
static ProtobufCAllocator id_pb_allocator = {id_pb_alloc, id_pb_free, NULL};

/*
 * For PrivateKey decoding: each block carries its size in a header so it can
 * be wiped before it goes back to the allocator.
 */
typedef union id_wipe_hdr {
    size_t len;
    max_align_t align;
} id_wipe_hdr;

static void *id_pb_wipe_alloc(void *ud, size_t len)
{
    (void)ud;
    if (len > SIZE_MAX - sizeof(id_wipe_hdr)) {
        return NULL;
    }
    id_wipe_hdr *h = gn_malloc(sizeof *h + len);
    if (!h) {
        return NULL;
    }
    h->len = len;
    return h + 1;
}

static void id_pb_wipe_free(void *ud, void *p)
{
    (void)ud;
    if (!p) {
        return;
    }
    id_wipe_hdr *h = (id_wipe_hdr *)p - 1;
    sodium_memzero(h, sizeof *h + h->len);
    gn_free(h);
}

static ProtobufCAllocator id_pb_wipe_allocator = {id_pb_wipe_alloc, id_pb_wipe_free, NULL};

/* ---- identities ----------------------------------------------------------------- */

/* Encodes a PublicKey protobuf of @type with Data @d into a gn_malloc'd buffer. */
static int id_pub_pb(gn_key_type type, const uint8_t *d, size_t len, uint8_t **out,
                     size_t *out_len)
{
    Gnpb__PublicKey msg = GNPB__PUBLIC_KEY__INIT;
    msg.type = (Gnpb__KeyType)type;
    msg.data.data = (uint8_t *)(uintptr_t)d; /* protobuf-c only reads it */
    msg.data.len = len;
    size_t need = gnpb__public_key__get_packed_size(&msg);
    if (need > GN_PUBKEY_MAX_BYTES) {
        return GN_EINTERNAL; /* keys.c bounds every public key below this */
    }
    uint8_t *b = gn_malloc(need);
    if (!b) {
        return GN_ENOMEM;
    }
    *out_len = gnpb__public_key__pack(&msg, b);
    *out = b;
    return 0;
}

/* Takes @key (zeroed on success): fills the public forms and the peer ID. */
static int id_from_key(gni_privkey *key, gn_identity **out)
{
    gn_identity *id = gn_calloc(1, sizeof *id);
    if (!id) {
        return GN_ENOMEM;
    }
    int rc = id_pub_pb(key->type, key->pub, key->pub_len, &id->pub_pb, &id->pub_pb_len);
    if (rc < 0) {
        gn_free(id);
        return rc;
    }
    rc = gn_peer_id_from_pubkey(id->pub_pb, id->pub_pb_len, &id->pid);
    if (rc < 0) {
        gn_free(id->pub_pb);
        gn_free(id);
        return rc;
    }
    if (key->type == GN_KEY_ED25519) {
        memcpy(id->pk, key->pub, GN_ED25519_PUBLICKEYBYTES);
    }
    id->key = *key;
    memset(key, 0, sizeof *key);
    *out = id;
    return 0;
}

int gn_identity_generate(gn_identity **out)
{
    return gn_identity_generate_type(GN_KEY_ED25519, 0, out);
}

int gn_identity_generate_type(gn_key_type type, unsigned bits, gn_identity **out)
{
    if (!out) {
        return GN_EINVAL;
    }
    gni_privkey key;
    int rc = gni_privkey_generate(type, bits, &key);
    if (rc < 0) {
        return rc;
    }
    rc = id_from_key(&key, out);
    gni_privkey_fini(&key);
    return rc;
}

int gn_identity_from_seed(const uint8_t seed[GN_ED25519_SEEDBYTES], gn_identity **out)
{
    if (!seed || !out) {
        return GN_EINVAL;
    }
    gni_privkey key;
    int rc = gni_privkey_from_data(GN_KEY_ED25519, seed, GN_ED25519_SEEDBYTES, &key);
    if (rc < 0) {
        return rc == GN_EBADKEY ? GN_EINVAL : rc;
    }
    rc = id_from_key(&key, out);
    gni_privkey_fini(&key);
    return rc;
}

int gn_identity_from_int_seed(uint32_t n, gn_identity **out)
{
    uint8_t seed[GN_ED25519_SEEDBYTES] = {0};
    seed[0] = (uint8_t)(n & 0xff);
    seed[1] = (uint8_t)((n >> 8) & 0xff);
    seed[2] = (uint8_t)((n >> 16) & 0xff);
    seed[3] = (uint8_t)((n >> 24) & 0xff);
    int rc = gn_identity_from_seed(seed, out);
    sodium_memzero(seed, sizeof seed);
    return rc;
}

void gn_identity_free(gn_identity *id)
{
    if (!id) {
        return;
    }
    gni_privkey_fini(&id->key); /* wipes the secrets */
    gn_free(id->pub_pb);
    sodium_memzero(id, sizeof *id);
    gn_free(id);
}

void gn_identity_public_key(const gn_identity *id, uint8_t out[GN_ED25519_PUBLICKEYBYTES])
{
    memcpy(out, id->pk, GN_ED25519_PUBLICKEYBYTES);
}

int gni_identity_x25519_secret(const gn_identity *id, uint8_t out[32])
{
    if (!id || !out) {
        return GN_EINVAL;
    }
    if (id->key.type != GN_KEY_ED25519) {
        return GN_EBADKEY;
    }
    if (crypto_sign_ed25519_sk_to_curve25519(out, id->key.secret) != 0) {
        sodium_memzero(out, 32);
        return GN_EINTERNAL;
    }
    return 0;
}

void gn_identity_peer_id(const gn_identity *id, gn_peer_id *out)
{
    *out = id->pid;
}

void gn_identity_sign(const gn_identity *id, const uint8_t *msg, size_t len,
                      uint8_t sig[GN_ED25519_SIGBYTES])
{
    if (id->key.type != GN_KEY_ED25519 ||
        gni_privkey_sign(&id->key, msg, len, sig, GN_ED25519_SIGBYTES) != GN_ED25519_SIGBYTES) {
        memset(sig, 0, GN_ED25519_SIGBYTES); /* documented: Ed25519 identities only */
    }
}

int gn_identity_sign_any(const gn_identity *id, const uint8_t *msg, size_t len, uint8_t *sig,
                         size_t sig_len)
{
    if (!id || (!msg && len)) {
        return GN_EINVAL;
    }
    return gni_privkey_sign(&id->key, msg, len, sig, sig_len);
}

gn_key_type gn_identity_key_type(const gn_identity *id)
{
    return id->key.type;
}

int gn_identity_encode_public(const gn_identity *id, uint8_t *out, size_t out_len)
{
    if (!id) {
        return GN_EINVAL;
    }
    if (!out || out_len < id->pub_pb_len) {
        return GN_ENOSPC;
    }
    memcpy(out, id->pub_pb, id->pub_pb_len);
    return (int)id->pub_pb_len;
}

const char *gn_key_type_name(gn_key_type type)
{
    switch (type) {
    case GN_KEY_RSA:
        return "rsa";
    case GN_KEY_ED25519:
        return "ed25519";
    case GN_KEY_SECP256K1:
        return "secp256k1";
    case GN_KEY_ECDSA:
        return "ecdsa";
    }
    return "unknown";
}

int gn_key_type_parse(const char *name, gn_key_type *out)
{
    static const gn_key_type all[] = {GN_KEY_RSA, GN_KEY_ED25519, GN_KEY_SECP256K1,
                                      GN_KEY_ECDSA};
    if (!name || !out) {
        return GN_EINVAL;
    }
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        const char *n = gn_key_type_name(all[i]);
        size_t j = 0;
        /* ASCII case-insensitive, so "Ed25519" and "RSA" work too. */
        while (n[j] && name[j] && (name[j] | 0x20) == n[j]) {
            j++;
        }
        if (n[j] == 0 && name[j] == 0) {
            *out = all[i];
            return 0;
        }
    }
    return GN_EINVAL;
}

int gn_ed25519_verify(const uint8_t pub[GN_ED25519_PUBLICKEYBYTES], const uint8_t *msg,
                      size_t len, const uint8_t sig[GN_ED25519_SIGBYTES])
{
    static const uint8_t empty[1] = {0};
    if (!pub || !sig || (!msg && len)) {
        return GN_EBADSIG;
    }
    if (sodium_init() < 0) {
        return GN_EBADSIG;
    }
    if (crypto_sign_verify_detached(sig, msg ? msg : empty, msg ? len : 0, pub) != 0) {
        return GN_EBADSIG;
    }
    return 0;
}

/* ---- key protobufs -------------------------------------------------------------- */

static bool id_key_type_known(int t)
{
    return t >= GN_KEY_RSA && t <= GN_KEY_ECDSA;
}

int gn_pubkey_encode_ed25519(const uint8_t pub[GN_ED25519_PUBLICKEYBYTES], uint8_t *out,
                             size_t out_len)
{
    Gnpb__PublicKey msg = GNPB__PUBLIC_KEY__INIT;
    msg.type = GNPB__KEY_TYPE__Ed25519;
    msg.data.data = (uint8_t *)(uintptr_t)pub; /* protobuf-c only reads it */
    msg.data.len = GN_ED25519_PUBLICKEYBYTES;
    size_t need = gnpb__public_key__get_packed_size(&msg);
    assert(need == ID_PUBKEY_PB_LEN);
    if (!out || out_len < need) {
        return GN_ENOSPC;
    }
    return (int)gnpb__public_key__pack(&msg, out);
}

/*
 * Decodes a PublicKey and checks that @in is its deterministic encoding
 * (peer-ids "Keys": minimal varints, tag order, all fields, nothing else).
 * Accepting other encodings would let one key map to several peer IDs.
 * On success *@msg is the unpacked message (free with id_pub_free()).
 */
static int id_pub_unpack(const uint8_t *in, size_t len, Gnpb__PublicKey **msgp)
{
    if (len > GN_PUBKEY_MAX_BYTES) {
        return GN_ETOOBIG;
    }
    if (!in || len == 0) {
        return GN_EPARSE;
    }
    Gnpb__PublicKey *msg = gnpb__public_key__unpack(&id_pb_allocator, len, in);
    if (!msg) {
        return GN_EPARSE;
    }
    uint8_t again[GN_PUBKEY_MAX_BYTES];
    int rc = 0;
    if (msg->base.n_unknown_fields != 0 || !id_key_type_known((int)msg->type)) {
        rc = GN_EPARSE;
        goto out;
    }
    /* Canonical form: re-encoding gives back exactly the input. */
    if (gnpb__public_key__get_packed_size(msg) != len) {
        rc = GN_EPARSE;
        goto out;
    }
    size_t n = gnpb__public_key__pack(msg, again);
    if (n != len || memcmp(again, in, len) != 0) {
        rc = GN_EPARSE;
        goto out;
    }
    *msgp = msg;
    return 0;
out:
    gnpb__public_key__free_unpacked(msg, &id_pb_allocator);
    return rc;
}

static void id_pub_free(Gnpb__PublicKey *msg)
{
    gnpb__public_key__free_unpacked(msg, &id_pb_allocator);
}

int gn_pubkey_decode(const uint8_t *in, size_t len, gn_key_type *type,
                     uint8_t pub[GN_ED25519_PUBLICKEYBYTES])
{
    Gnpb__PublicKey *msg = NULL;
    int rc = id_pub_unpack(in, len, &msg);
    if (rc < 0) {
        return rc;
    }
    if (type) {
        *type = (gn_key_type)msg->type;
    }
    if (msg->type != GNPB__KEY_TYPE__Ed25519 ||
        msg->data.len != GN_ED25519_PUBLICKEYBYTES) {
        rc = GN_EBADKEY;
    } else if (pub) {
        memcpy(pub, msg->data.data, GN_ED25519_PUBLICKEYBYTES);
    }
    id_pub_free(msg);
    return rc;
}

int gn_pubkey_check(const uint8_t *in, size_t len, gn_key_type *type)
{
    Gnpb__PublicKey *msg = NULL;
    int rc = id_pub_unpack(in, len, &msg);
    if (rc < 0) {
        return rc;
    }
    if (type) {
        *type = (gn_key_type)msg->type;
    }
    rc = gni_pubkey_check_data((gn_key_type)msg->type, msg->data.data, msg->data.len);
    id_pub_free(msg);
    return rc;
}

int gn_pubkey_verify(const uint8_t *pubkey_pb, size_t pb_len, const uint8_t *msg, size_t len,
                     const uint8_t *sig, size_t sig_len)
{
    Gnpb__PublicKey *m = NULL;
    int rc = id_pub_unpack(pubkey_pb, pb_len, &m);
    if (rc < 0) {
        return rc;
    }
    rc = gni_pubkey_verify_data((gn_key_type)m->type, m->data.data, m->data.len, msg, len, sig,
                                sig_len);
    id_pub_free(m);
    return rc;
}

int gn_identity_encode_private(const gn_identity *id, uint8_t *out, size_t out_len)
{
    if (!id) {
        return GN_EINVAL;
    }
    /* The Data field is secret: build it in wiped secure memory. */
    uint8_t *data = sodium_malloc(GNI_PRIVKEY_DATA_MAX);
    if (!data) {
        return GN_ENOMEM;
    }
    int rc = gni_privkey_to_data(&id->key, data, GNI_PRIVKEY_DATA_MAX);
    if (rc < 0) {
        sodium_free(data);
        return rc == GN_ENOSPC ? GN_EINTERNAL : rc;
    }
    Gnpb__PrivateKey msg = GNPB__PRIVATE_KEY__INIT;
    msg.type = (Gnpb__KeyType)id->key.type;
    msg.data.data = data;
    msg.data.len = (size_t)rc;
    size_t need = gnpb__private_key__get_packed_size(&msg);
    if (!out || out_len < need) {
        rc = GN_ENOSPC;
    } else {
        rc = (int)gnpb__private_key__pack(&msg, out);
    }
    sodium_free(data);
    return rc;
}

int gn_identity_decode_private(const uint8_t *in, size_t len, gn_identity **out)
{
    if (!out) {
        return GN_EINVAL;
    }
    /* No PrivateKey comes near this; bound before protobuf-c allocates. */
    if (!in || len == 0 || len > ID_KEYFILE_MAX) {
        return GN_EPARSE;
    }
    Gnpb__PrivateKey *msg = gnpb__private_key__unpack(&id_pb_wipe_allocator, len, in);
    if (!msg) {
        return GN_EPARSE;
    }
    int rc;
    if (!id_key_type_known((int)msg->type)) {
        rc = GN_EBADKEY;
        goto out;
    }
    gni_privkey key;
    rc = gni_privkey_from_data((gn_key_type)msg->type, msg->data.data, msg->data.len, &key);
    if (rc < 0) {
        goto out;
    }
    rc = id_from_key(&key, out);
    gni_privkey_fini(&key);
out:
    gnpb__private_key__free_unpacked(msg, &id_pb_wipe_allocator);
    return rc;
}

/* ---- key files ------------------------------------------------------------------ */

/* Key files go through libuv's synchronous file calls (a NULL loop): the same
 * code on POSIX and Windows (UTF-8 paths, 0600 where the OS has modes). */
static int id_err_from_uv(int e)
{
    switch (e) {
    case UV_EEXIST:
        return GN_EEXIST;
    case UV_EACCES:
    case UV_EPERM:
    case UV_EROFS:
        return GN_EACCES;
    case UV_ENOENT:
    case UV_ENOTDIR:
        return GN_ENOTFOUND;
    case UV_ENOMEM:
        return GN_ENOMEM;
    default:
        return GN_EIO;
    }
}

/* One synchronous uv_fs call's result, its request cleaned up. */
static int64_t id_fs_done(uv_fs_t *req, int rc)
{
    int64_t r = rc < 0 ? rc : (int64_t)req->result;
    uv_fs_req_cleanup(req);
    return r;
}

int gn_identity_save(const gn_identity *id, const char *path)
{
    if (!id || !path) {
        return GN_EINVAL;
    }
    uint8_t *buf = sodium_malloc(ID_KEYFILE_MAX);
    if (!buf) {
        return GN_ENOMEM;
    }
    int n = gn_identity_encode_private(id, buf, ID_KEYFILE_MAX);
    if (n < 0) {
        sodium_free(buf);
        return n;
    }
    uv_fs_t req;
    /* O_EXCL: never replace a key; O_NOFOLLOW where the OS has it (libuv
     * defines UV_FS_O_NOFOLLOW as 0 elsewhere, e.g. Windows) */
    int flags = UV_FS_O_WRONLY | UV_FS_O_CREAT | UV_FS_O_EXCL | UV_FS_O_NOFOLLOW;
    int64_t fd = id_fs_done(&req, uv_fs_open(NULL, &req, path, flags, 0600, NULL));
    if (fd < 0) {
        sodium_free(buf);
        return id_err_from_uv((int)fd);
    }
    int rc = 0;
    size_t done = 0;
    while (done < (size_t)n) {
        uv_buf_t b = uv_buf_init((char *)buf + done, (unsigned)((size_t)n - done));
        int64_t w = id_fs_done(&req, uv_fs_write(NULL, &req, (uv_file)fd, &b, 1, -1, NULL));
        if (w <= 0) {
            rc = w < 0 ? id_err_from_uv((int)w) : GN_EIO;
            break;
        }
        done += (size_t)w;
    }
    sodium_free(buf);
    if (rc == 0 && id_fs_done(&req, uv_fs_fsync(NULL, &req, (uv_file)fd, NULL)) < 0) {
        rc = GN_EIO;
    }
    if (id_fs_done(&req, uv_fs_close(NULL, &req, (uv_file)fd, NULL)) < 0 && rc == 0) {
        rc = GN_EIO;
    }
    if (rc < 0) {
        /* we created it (O_EXCL): drop the partial file */
        (void)id_fs_done(&req, uv_fs_unlink(NULL, &req, path, NULL));
    }
    return rc;
}

int gn_identity_load(const char *path, gn_identity **out)
{
    if (!path || !out) {
        return GN_EINVAL;
    }
    uv_fs_t req;
    int64_t fd = id_fs_done(&req, uv_fs_open(NULL, &req, path, UV_FS_O_RDONLY, 0, NULL));
    if (fd < 0) {
        return id_err_from_uv((int)fd);
    }
    int rc = uv_fs_fstat(NULL, &req, (uv_file)fd, NULL);
    bool regular = rc == 0 && (req.statbuf.st_mode & S_IFMT) == S_IFREG;
    uv_fs_req_cleanup(&req);
    if (!regular) {
        (void)id_fs_done(&req, uv_fs_close(NULL, &req, (uv_file)fd, NULL));
        return GN_EIO; /* a directory, FIFO or device is not a key file */
    }
    /* One byte more than the bound tells "too long" from "exactly the bound". */
    uint8_t buf[ID_KEYFILE_MAX + 1];
    size_t len = 0;
    rc = 0;
    while (len < sizeof buf) {
        uv_buf_t b = uv_buf_init((char *)buf + len, (unsigned)(sizeof buf - len));
        int64_t r = id_fs_done(&req, uv_fs_read(NULL, &req, (uv_file)fd, &b, 1, -1, NULL));
        if (r == UV_EINTR) {
            continue; /* libuv retries every call on EINTR but read (and close) */
        }
        if (r < 0) {
            rc = id_err_from_uv((int)r); /* EISDIR and the like give GN_EIO */
            break;
        }
        if (r == 0) {
            break;
        }
        len += (size_t)r;
    }
    (void)id_fs_done(&req, uv_fs_close(NULL, &req, (uv_file)fd, NULL));
    if (rc == 0) {
        /* A longer file is not a key file we wrote or accept. */
        rc = len > ID_KEYFILE_MAX ? GN_EPARSE : gn_identity_decode_private(buf, len, out);
    }
    sodium_memzero(buf, len);
    return rc;
}

/* ---- peer IDs ------------------------------------------------------------------- */

int gn_peer_id_from_pubkey(const uint8_t *pubkey_pb, size_t len, gn_peer_id *out)
{
    if (!pubkey_pb || len == 0 || !out) {
        return GN_EINVAL;
    }
    if (len > GN_PUBKEY_MAX_BYTES) {
        return GN_ETOOBIG;
    }
    uint8_t mh[GN_PEER_ID_MAX_BYTES];
    uint64_t code = len <= ID_INLINE_KEY_MAX ? GN_MH_IDENTITY : GN_MH_SHA2_256;
    int n = gn_multihash_encode(code, pubkey_pb, len, mh, sizeof mh);
    if (n < 0) {
        return GN_EINTERNAL; /* cannot happen: both fit in 64 bytes */
    }
    out->len = (uint8_t)n;
    memcpy(out->bytes, mh, (size_t)n);
    memset(out->bytes + n, 0, sizeof out->bytes - (size_t)n);
    return 0;
}

/* Accepts a multihash as a peer ID: sha2-256 with 32 bytes or identity up to 42. */
static int id_check_multihash(const uint8_t *in, size_t len)
{
    gn_multihash mh;
    if (gn_multihash_decode(in, len, &mh) != 0) {
        return GN_EPARSE;
    }
    if (mh.code == GN_MH_SHA2_256) {
        return mh.digest_len == ID_SHA256_LEN ? 0 : GN_EPARSE;
    }
    if (mh.code == GN_MH_IDENTITY) {
        return mh.digest_len <= ID_INLINE_KEY_MAX ? 0 : GN_EPARSE;
    }
    return GN_EPARSE;
}

int gn_peer_id_from_bytes(const uint8_t *in, size_t len, gn_peer_id *out)
{
    if (len > GN_PEER_ID_MAX_BYTES) {
        return GN_ETOOBIG;
    }
    if (!in || len == 0 || !out) {
        return GN_EPARSE;
    }
    int rc = id_check_multihash(in, len);
    if (rc < 0) {
        return rc;
    }
    out->len = (uint8_t)len;
    memcpy(out->bytes, in, len);
    memset(out->bytes + len, 0, sizeof out->bytes - len);
    return 0;
}

int gn_peer_id_parse(const char *str, size_t len, gn_peer_id *out)
{
    if (len >= GN_PEER_ID_MAX_STRLEN) {
        return GN_ETOOBIG;
    }
    if (!str || len == 0 || !out) {
        return GN_EPARSE;
    }
    uint8_t bin[GN_PEER_ID_MAX_STRLEN];
    /* peer-ids "Decoding": '1...' or 'Qm...' is a bare base58btc multihash. */
    if (str[0] == '1' || (len >= 2 && str[0] == 'Q' && str[1] == 'm')) {
        int n = gn_base58btc_decode(str, len, bin, sizeof bin);
        if (n < 0) {
            return GN_EPARSE;
        }
        if ((size_t)n > GN_PEER_ID_MAX_BYTES) {
            return GN_ETOOBIG;
        }
        return gn_peer_id_from_bytes(bin, (size_t)n, out);
    }
    /* Otherwise a multibase CIDv1 with the libp2p-key codec. */
    int n = gn_multibase_decode(str, len, NULL, bin, sizeof bin);
    if (n < 0) {
        return GN_EPARSE;
    }
    uint64_t codec = 0;
    gn_multihash mh;
    if (gn_cid_decode(bin, (size_t)n, &codec, &mh) != 0 || codec != GN_CODEC_LIBP2P_KEY) {
        return GN_EPARSE;
    }
    /* CIDv1 = <version 0x01><codec varint><multihash>: the rest is the peer ID. */
    size_t hdr = 1 + gn_varint_len(codec);
    if ((size_t)n <= hdr) {
        return GN_EPARSE;
    }
    const uint8_t *mh_start = bin + hdr;
    size_t mh_len = (size_t)n - hdr;
    if (mh_len > GN_PEER_ID_MAX_BYTES) {
        return GN_ETOOBIG;
    }
    return gn_peer_id_from_bytes(mh_start, mh_len, out);
}

int gn_peer_id_to_string(const gn_peer_id *pid, char *out, size_t out_len)
{
    if (!pid || pid->len == 0 || pid->len > GN_PEER_ID_MAX_BYTES) {
        return GN_EINVAL;
    }
    int n = gn_base58btc_encode(pid->bytes, pid->len, out, out_len);
    return n < 0 ? GN_ENOSPC : n;
}

int gn_peer_id_to_cid_string(const gn_peer_id *pid, char *out, size_t out_len)
{
    if (!pid || pid->len == 0 || pid->len > GN_PEER_ID_MAX_BYTES) {
        return GN_EINVAL;
    }
    uint8_t cid[GN_PEER_ID_MAX_BYTES + 8];
    int n = gn_cid_encode(GN_CODEC_LIBP2P_KEY, pid->bytes, pid->len, cid, sizeof cid);
    if (n < 0) {
        return GN_EINTERNAL; /* cannot happen: the buffer fits any peer ID */
    }
    int m = gn_multibase_encode(GN_MULTIBASE_BASE32, cid, (size_t)n, out, out_len);
    return m < 0 ? GN_ENOSPC : m;
}

bool gn_peer_id_equal(const gn_peer_id *a, const gn_peer_id *b)
{
    return a->len == b->len && a->len <= GN_PEER_ID_MAX_BYTES &&
           memcmp(a->bytes, b->bytes, a->len) == 0;
}

int gn_peer_id_ed25519_key(const gn_peer_id *pid, uint8_t pub[GN_ED25519_PUBLICKEYBYTES])
{
    if (!pid || pid->len == 0 || pid->len > GN_PEER_ID_MAX_BYTES) {
        return GN_EINVAL;
    }
    gn_multihash mh;
    if (gn_multihash_decode(pid->bytes, pid->len, &mh) != 0) {
        return GN_EBADKEY;
    }
    if (mh.code == GN_MH_SHA2_256) {
        return GN_ENOTFOUND;
    }
    if (mh.code != GN_MH_IDENTITY) {
        return GN_EBADKEY;
    }
    gn_key_type type;
    uint8_t key[GN_ED25519_PUBLICKEYBYTES];
    if (gn_pubkey_decode(mh.digest, mh.digest_len, &type, key) != 0) {
        return GN_EBADKEY;
    }
    memcpy(pub, key, sizeof key);
    return 0;
}
