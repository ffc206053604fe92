/*
 * Identities: Ed25519 key pairs (libsodium), the libp2p PublicKey and
 * PrivateKey protobufs (protobuf-c), peer IDs and their text forms.
 *
 * Spec: libp2p/specs peer-ids/peer-ids.md ("Keys", "Key Types: Ed25519",
 * "Peer Ids", "String representation").
 *
 * Secrets: the 64-byte libsodium secret key (seed || public key, which is
 * also libp2p's Ed25519 private key encoding) lives in sodium_malloc()
 * memory. protobuf-c allocations that may hold private key bytes go through
 * an allocator that wipes every block on free; stack copies are wiped with
 * sodium_memzero() before returning.
 *
 * This file is not a sans-I/O core: gn_identity_save()/gn_identity_load()
 * do file I/O. Everything else is pure and thread-safe (distinct objects).
 */
#include "golemnet/identity.h"
#include "golemnet/multiformats.h"
#include "gni.h"

#include "keys.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef O_CLOEXEC
#  define O_CLOEXEC 0
#endif
#ifndef O_NOFOLLOW
#  define O_NOFOLLOW 0
#endif

/** Encoded Ed25519 PublicKey protobuf: 08 01 12 20 <32 bytes>. */
#define ID_PUBKEY_PB_LEN 36
/** Encoded Ed25519 PrivateKey protobuf: 08 01 12 40 <64 bytes>. */
#define ID_PRIVKEY_PB_LEN 68
/** Largest key file read (and PrivateKey protobuf decoded). */
#define ID_KEYFILE_MAX 4096
/** Longest public key hashed with the identity multihash (peer-ids "Peer Ids"). */
#define ID_INLINE_KEY_MAX 42
#define ID_SHA256_LEN 32

struct gn_identity {
    /* crypto_sign secret key: seed (32) || public key (32); sodium_malloc'd. */
    unsigned char *sk;
    uint8_t pk[GN_ED25519_PUBLICKEYBYTES];
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

static int id_sodium_ready(void)
{
    /* sodium_init() is idempotent and thread-safe; 1 means "already done". */
    return sodium_init() < 0 ? GN_ECRYPTO : 0;
}

static gn_identity *id_alloc(void)
{
    gn_identity *id = gn_calloc(1, sizeof *id);
    if (!id) {
        return NULL;
    }
    id->sk = sodium_malloc(crypto_sign_SECRETKEYBYTES);
    if (!id->sk) {
        gn_free(id);
        return NULL;
    }
    return id;
}

/* Fills id->pk from id->sk and derives the peer ID. */
static void id_finish(gn_identity *id)
{
    uint8_t pb[ID_PUBKEY_PB_LEN];
    crypto_sign_ed25519_sk_to_pk(id->pk, id->sk);
    int n = gn_pubkey_encode_ed25519(id->pk, pb, sizeof pb);
    assert(n == ID_PUBKEY_PB_LEN);
    int rc = gn_peer_id_from_pubkey(pb, (size_t)n, &id->pid);
    assert(rc == 0);
    (void)rc;
}

int gn_identity_generate(gn_identity **out)
{
    if (!out) {
        return GN_EINVAL;
    }
    int rc = id_sodium_ready();
    if (rc < 0) {
        return rc;
    }
    gn_identity *id = id_alloc();
    if (!id) {
        return GN_ENOMEM;
    }
    crypto_sign_keypair(id->pk, id->sk);
    id_finish(id);
    *out = id;
    return 0;
}

int gn_identity_from_seed(const uint8_t seed[GN_ED25519_SEEDBYTES], gn_identity **out)
{
    if (!seed || !out) {
        return GN_EINVAL;
    }
    int rc = id_sodium_ready();
    if (rc < 0) {
        return rc;
    }
    gn_identity *id = id_alloc();
    if (!id) {
        return GN_ENOMEM;
    }
    crypto_sign_seed_keypair(id->pk, id->sk, seed);
    id_finish(id);
    *out = id;
    return 0;
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
    sodium_free(id->sk); /* wipes before unmapping */
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
    if (crypto_sign_ed25519_sk_to_curve25519(out, id->sk) != 0) {
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
    static const uint8_t empty[1] = {0};
    crypto_sign_detached(sig, NULL, msg ? msg : empty, msg ? len : 0, id->sk);
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
 */
int gn_pubkey_decode(const uint8_t *in, size_t len, gn_key_type *type,
                     uint8_t pub[GN_ED25519_PUBLICKEYBYTES])
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
    if (type) {
        *type = (gn_key_type)msg->type;
    }
    if (msg->type != GNPB__KEY_TYPE__Ed25519 ||
        msg->data.len != GN_ED25519_PUBLICKEYBYTES) {
        rc = GN_EBADKEY;
        goto out;
    }
    if (pub) {
        memcpy(pub, msg->data.data, GN_ED25519_PUBLICKEYBYTES);
    }
out:
    gnpb__public_key__free_unpacked(msg, &id_pb_allocator);
    return rc;
}

int gn_identity_encode_private(const gn_identity *id, uint8_t *out, size_t out_len)
{
    Gnpb__PrivateKey msg = GNPB__PRIVATE_KEY__INIT;
    msg.type = GNPB__KEY_TYPE__Ed25519;
    msg.data.data = id->sk; /* seed || public key: libp2p's 64-byte form */
    msg.data.len = crypto_sign_SECRETKEYBYTES;
    size_t need = gnpb__private_key__get_packed_size(&msg);
    assert(need == ID_PRIVKEY_PB_LEN);
    if (!out || out_len < need) {
        return GN_ENOSPC;
    }
    return (int)gnpb__private_key__pack(&msg, out);
}

int gn_identity_decode_private(const uint8_t *in, size_t len, gn_identity **out)
{
    if (!out) {
        return GN_EINVAL;
    }
    /* No Ed25519 PrivateKey comes near this; bound before protobuf-c allocates. */
    if (!in || len == 0 || len > ID_KEYFILE_MAX) {
        return GN_EPARSE;
    }
    int rc = id_sodium_ready();
    if (rc < 0) {
        return rc;
    }
    Gnpb__PrivateKey *msg = gnpb__private_key__unpack(&id_pb_wipe_allocator, len, in);
    if (!msg) {
        return GN_EPARSE;
    }
    gn_identity *id = NULL;
    if (msg->type != GNPB__KEY_TYPE__Ed25519 ||
        (msg->data.len != GN_ED25519_SEEDBYTES &&
         msg->data.len != crypto_sign_SECRETKEYBYTES)) {
        rc = GN_EBADKEY;
        goto out;
    }
    id = id_alloc();
    if (!id) {
        rc = GN_ENOMEM;
        goto out;
    }
    /* The first 32 bytes are the seed in both forms. */
    crypto_sign_seed_keypair(id->pk, id->sk, msg->data.data);
    if (msg->data.len == crypto_sign_SECRETKEYBYTES &&
        sodium_memcmp(id->pk, msg->data.data + GN_ED25519_SEEDBYTES,
                      GN_ED25519_PUBLICKEYBYTES) != 0) {
        rc = GN_EBADKEY;
        goto out;
    }
    id_finish(id);
    *out = id;
    id = NULL;
out:
    gn_identity_free(id);
    gnpb__private_key__free_unpacked(msg, &id_pb_wipe_allocator);
    return rc;
}

/* ---- key files ------------------------------------------------------------------ */

static int id_err_from_errno(int e)
{
    switch (e) {
    case EEXIST:
        return GN_EEXIST;
    case EACCES:
    case EPERM:
    case EROFS:
        return GN_EACCES;
    case ENOENT:
    case ENOTDIR:
        return GN_ENOTFOUND;
    case ENOMEM:
        return GN_ENOMEM;
    default:
        return GN_EIO;
    }
}

int gn_identity_save(const gn_identity *id, const char *path)
{
    if (!id || !path) {
        return GN_EINVAL;
    }
    uint8_t buf[ID_PRIVKEY_PB_LEN];
    int n = gn_identity_encode_private(id, buf, sizeof buf);
    if (n < 0) {
        return n;
    }
    int fd;
    do {
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        int rc = id_err_from_errno(errno);
        sodium_memzero(buf, sizeof buf);
        return rc;
    }
    int rc = 0;
    size_t done = 0;
    while (done < (size_t)n) {
        ssize_t w = write(fd, buf + done, (size_t)n - done);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            rc = w < 0 ? id_err_from_errno(errno) : GN_EIO;
            break;
        }
        done += (size_t)w;
    }
    sodium_memzero(buf, sizeof buf);
    if (rc == 0 && fsync(fd) != 0) {
        rc = GN_EIO;
    }
    if (close(fd) != 0 && rc == 0) {
        rc = GN_EIO;
    }
    if (rc < 0) {
        (void)unlink(path); /* we created it (O_EXCL): drop the partial file */
    }
    return rc;
}

int gn_identity_load(const char *path, gn_identity **out)
{
    if (!path || !out) {
        return GN_EINVAL;
    }
    int fd;
    do {
        fd = open(path, O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        return id_err_from_errno(errno);
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        (void)close(fd);
        return GN_EIO; /* a directory, FIFO or device is not a key file */
    }
    /* One byte more than the bound tells "too long" from "exactly the bound". */
    uint8_t buf[ID_KEYFILE_MAX + 1];
    size_t len = 0;
    int rc = 0;
    while (len < sizeof buf) {
        ssize_t r = read(fd, buf + len, sizeof buf - len);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            rc = id_err_from_errno(errno); /* EISDIR and the like give GN_EIO */
            break;
        }
        if (r == 0) {
            break;
        }
        len += (size_t)r;
    }
    (void)close(fd);
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
