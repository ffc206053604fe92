/*
 * golemnet - /ipfs/kad/1.0.0 wire core: the owned message form, protobuf-c
 * encode/decode with bounds, and the incremental frame decoder. See
 * kad_msg.h and docs/protocols/kad.md.
 */
#include "kad_msg.h"
#include "gni_pb.h"

#include "golemnet/err.h"
#include "golemnet/log.h"
#include "golemnet/multiaddr.h"
#include "golemnet/multiformats.h"
#include "kad.pb-c.h"

#include <string.h>

/* Message field numbers (kad.proto). */
enum {
    F_MSG_RECORD = 3,
    F_MSG_CLOSER = 8,
    F_MSG_PROVIDER = 9,
    F_PEER_ADDRS = 2,
};

static gni_kad_limits limits_resolve(const gni_kad_limits *lim)
{
    gni_kad_limits l = {0};
    if (lim) {
        l = *lim;
    }
    if (!l.max_msg_len) {
        l.max_msg_len = GNI_KAD_DEFAULT_MAX_MSG_LEN;
    }
    if (!l.max_closer) {
        l.max_closer = GNI_KAD_DEFAULT_MAX_CLOSER;
    }
    if (!l.max_providers) {
        l.max_providers = GNI_KAD_DEFAULT_MAX_PROVIDERS;
    }
    if (!l.max_addrs) {
        l.max_addrs = GNI_KAD_DEFAULT_MAX_ADDRS;
    }
    if (!l.max_key_len) {
        l.max_key_len = GNI_KAD_DEFAULT_MAX_KEY_LEN;
    }
    return l;
}

static void set_why(const char **why, const char *s)
{
    if (why) {
        *why = s;
    }
}

/* ---- the owned message ---- */

static void bytes_free(gni_kad_bytes *b)
{
    gn_free(b->data);
    b->data = NULL;
    b->len = 0;
}

static int bytes_copy(gni_kad_bytes *dst, const uint8_t *src, size_t len)
{
    dst->data = NULL;
    dst->len = 0;
    if (len == 0) {
        return 0;
    }
    dst->data = gn_malloc(len);
    if (!dst->data) {
        return GN_ENOMEM;
    }
    memcpy(dst->data, src, len);
    dst->len = len;
    return 0;
}

static void peers_free(gni_kad_peer *p, size_t cnt)
{
    for (size_t i = 0; i < cnt; i++) {
        for (size_t j = 0; j < p[i].addr_cnt; j++) {
            bytes_free(&p[i].addrs[j]);
        }
        gn_free(p[i].addrs);
    }
    gn_free(p);
}

void gni_kad_msg_init(gni_kad_msg *m)
{
    if (m) {
        memset(m, 0, sizeof *m);
    }
}

void gni_kad_msg_fini(gni_kad_msg *m)
{
    if (!m) {
        return;
    }
    bytes_free(&m->key);
    bytes_free(&m->rec_key);
    bytes_free(&m->rec_value);
    gn_free(m->rec_time);
    peers_free(m->closer, m->closer_cnt);
    peers_free(m->providers, m->provider_cnt);
    gni_kad_msg_init(m);
}

int gni_kad_msg_set_key(gni_kad_msg *m, const uint8_t *key, size_t len)
{
    if (!m || (len && !key)) {
        return GN_EINVAL;
    }
    gni_kad_bytes b;
    if (bytes_copy(&b, key, len) < 0) {
        return GN_ENOMEM;
    }
    bytes_free(&m->key);
    m->key = b;
    return 0;
}

int gni_kad_msg_set_record(gni_kad_msg *m, const uint8_t *key, size_t key_len,
                           const uint8_t *value, size_t value_len, const char *time)
{
    if (!m || (key_len && !key) || (value_len && !value)) {
        return GN_EINVAL;
    }
    gni_kad_bytes k = {0}, v = {0};
    char *t = NULL;
    if (time && time[0]) {
        size_t tl = strlen(time);
        t = gn_malloc(tl + 1);
        if (!t) {
            return GN_ENOMEM;
        }
        memcpy(t, time, tl + 1);
    }
    if (bytes_copy(&k, key, key_len) < 0 || bytes_copy(&v, value, value_len) < 0) {
        bytes_free(&k);
        gn_free(t);
        return GN_ENOMEM;
    }
    bytes_free(&m->rec_key);
    bytes_free(&m->rec_value);
    gn_free(m->rec_time);
    m->rec_key = k;
    m->rec_value = v;
    m->rec_time = t;
    m->has_record = true;
    return 0;
}

int gni_kad_msg_add_peer(gni_kad_msg *m, bool provider, const gn_peer_id *id, gni_kad_conn conn,
                         gni_kad_peer **out)
{
    if (!m || !id || id->len == 0 || id->len > GN_PEER_ID_MAX_BYTES) {
        return GN_EINVAL;
    }
    gni_kad_peer **arr = provider ? &m->providers : &m->closer;
    size_t *cnt = provider ? &m->provider_cnt : &m->closer_cnt;
    gni_kad_peer *n = gn_realloc(*arr, (*cnt + 1) * sizeof **arr);
    if (!n) {
        return GN_ENOMEM;
    }
    *arr = n;
    gni_kad_peer *p = &n[*cnt];
    memset(p, 0, sizeof *p);
    p->id = *id;
    p->conn = conn;
    (*cnt)++;
    if (out) {
        *out = p;
    }
    return 0;
}

int gni_kad_peer_add_addr(gni_kad_peer *p, const uint8_t *addr, size_t len)
{
    if (!p || !addr || len == 0) {
        return GN_EINVAL;
    }
    gni_kad_bytes *n = gn_realloc(p->addrs, (p->addr_cnt + 1) * sizeof *n);
    if (!n) {
        return GN_ENOMEM;
    }
    p->addrs = n;
    if (bytes_copy(&n[p->addr_cnt], addr, len) < 0) {
        return GN_ENOMEM;
    }
    p->addr_cnt++;
    return 0;
}

const char *gni_kad_type_name(int t)
{
    switch (t) {
    case GNI_KAD_PUT_VALUE:
        return "PUT_VALUE";
    case GNI_KAD_GET_VALUE:
        return "GET_VALUE";
    case GNI_KAD_ADD_PROVIDER:
        return "ADD_PROVIDER";
    case GNI_KAD_GET_PROVIDERS:
        return "GET_PROVIDERS";
    case GNI_KAD_FIND_NODE:
        return "FIND_NODE";
    case GNI_KAD_PING:
        return "PING";
    default:
        return "UNKNOWN";
    }
}

/* ---- wire scan: counts before protobuf-c allocates ---- */

/* Counts the fields of a sub-message; *@addrs gets the count of field
 * @counted. GN_EBADFRAME or GN_ETOOBIG (more than @max_fields). */
static int scan_sub(gn_slice s, uint64_t counted, size_t max_fields, size_t *counted_cnt,
                    const char **why)
{
    size_t pos = 0, fields = 0;
    uint64_t f;
    gn_slice sub;
    int r;
    *counted_cnt = 0;
    while ((r = gni_pb_next(s.base, s.len, &pos, &f, NULL, &sub)) == 1) {
        if (++fields > max_fields) {
            set_why(why, "too many fields in a sub-message");
            return GN_ETOOBIG;
        }
        if (f == counted) {
            (*counted_cnt)++;
        }
    }
    if (r < 0) {
        set_why(why, "malformed protobuf in a sub-message");
    }
    return r;
}

static int scan(const uint8_t *in, size_t len, const gni_kad_limits *l, const char **why)
{
    size_t pos = 0, fields = 0, closer = 0, providers = 0;
    size_t max_fields = l->max_closer + l->max_providers + GNI_KAD_EXTRA_FIELDS;
    uint64_t f;
    gn_slice sub;
    int r;
    while ((r = gni_pb_next(in, len, &pos, &f, NULL, &sub)) == 1) {
        if (++fields > max_fields) {
            set_why(why, "too many fields in the message");
            return GN_ETOOBIG;
        }
        size_t cnt = 0;
        if (f == F_MSG_CLOSER || f == F_MSG_PROVIDER) {
            if (f == F_MSG_CLOSER && ++closer > l->max_closer) {
                set_why(why, "too many closerPeers");
                return GN_ETOOBIG;
            }
            if (f == F_MSG_PROVIDER && ++providers > l->max_providers) {
                set_why(why, "too many providerPeers");
                return GN_ETOOBIG;
            }
            if (sub.base) {
                int rc = scan_sub(sub, F_PEER_ADDRS, l->max_addrs + GNI_KAD_EXTRA_FIELDS, &cnt,
                                  why);
                if (rc < 0) {
                    return rc;
                }
                if (cnt > l->max_addrs) {
                    set_why(why, "too many addrs in a peer");
                    return GN_ETOOBIG;
                }
            }
        } else if (f == F_MSG_RECORD && sub.base) {
            int rc = scan_sub(sub, 0, GNI_KAD_EXTRA_FIELDS, &cnt, why);
            if (rc < 0) {
                return rc;
            }
        }
    }
    if (r < 0) {
        set_why(why, "malformed protobuf");
    }
    return r;
}


/* ---- decode ---- */

static int check_addr(const uint8_t *b, size_t len)
{
    gn_multiaddr *ma = NULL;
    int rc = gn_multiaddr_from_bytes(b, len, &ma);
    gn_multiaddr_free(ma);
    return rc;
}

static int take_peers(Gnpb__Kad__Message__Peer **src, size_t n, const gni_kad_limits *l,
                      gni_kad_peer **out, size_t *out_cnt, const char **why)
{
    *out = NULL;
    *out_cnt = 0;
    if (n == 0) {
        return 0;
    }
    gni_kad_peer *arr = gn_calloc(n, sizeof *arr);
    if (!arr) {
        return GN_ENOMEM;
    }
    int rc = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        const Gnpb__Kad__Message__Peer *s = src[i];
        gni_kad_peer *p = &arr[i];
        if (gn_peer_id_from_bytes(s->id.data, s->id.len, &p->id) < 0) {
            set_why(why, "peer ID is not a valid multihash");
            rc = GN_EPROTO;
            goto out;
        }
        if (s->n_addrs > l->max_addrs) { /* the scan counted them already */
            set_why(why, "too many addrs in a peer");
            rc = GN_ETOOBIG;
            goto out;
        }
        /* unknown hints (a later spec revision) read as "no information" */
        p->conn = (s->connection >= 0 && s->connection <= 3) ? (gni_kad_conn)s->connection
                                                             : GNI_KAD_NOT_CONNECTED;
        if (s->n_addrs) {
            p->addrs = gn_calloc(s->n_addrs, sizeof *p->addrs);
            if (!p->addrs) {
                rc = GN_ENOMEM;
                goto out;
            }
        }
        for (size_t j = 0; j < s->n_addrs; j++) {
            int mrc = check_addr(s->addrs[j].data, s->addrs[j].len);
            if (mrc == GN_ENOMEM) {
                rc = GN_ENOMEM;
                goto out;
            }
            if (mrc < 0) {
                set_why(why, "address is not a valid binary multiaddr");
                rc = GN_EPROTO;
                goto out;
            }
            if (bytes_copy(&p->addrs[j], s->addrs[j].data, s->addrs[j].len) < 0) {
                rc = GN_ENOMEM;
                goto out;
            }
            p->addr_cnt++;
        }
    }
out:
    if (rc < 0) {
        peers_free(arr, i < n ? i + 1 : n);
        return rc;
    }
    *out = arr;
    *out_cnt = n;
    return 0;
}

static int take_fields(gni_kad_msg *m, const Gnpb__Kad__Message *pb, const gni_kad_limits *l,
                       const char **why)
{
    if ((int)pb->type < GNI_KAD_PUT_VALUE || (int)pb->type > GNI_KAD_PING) {
        set_why(why, "unknown message type");
        return GN_EPROTO;
    }
    m->type = (gni_kad_type)pb->type;
    m->cluster_level = pb->clusterlevelraw;
    if (pb->key.len > l->max_key_len) {
        set_why(why, "key longer than the bound");
        return GN_ETOOBIG;
    }
    if (bytes_copy(&m->key, pb->key.data, pb->key.len) < 0) {
        return GN_ENOMEM;
    }
    if (pb->record) {
        const Gnpb__Kad__Record *r = pb->record;
        if (r->key.len > l->max_key_len) {
            set_why(why, "record key longer than the bound");
            return GN_ETOOBIG;
        }
        const char *t = r->timereceived ? r->timereceived : "";
        if (strlen(t) > GNI_KAD_MAX_TIME_LEN) {
            set_why(why, "timeReceived longer than the bound");
            return GN_ETOOBIG;
        }
        int rc = gni_kad_msg_set_record(m, r->key.data, r->key.len, r->value.data, r->value.len,
                                        t);
        if (rc < 0) {
            return rc;
        }
    }
    int rc = take_peers(pb->closerpeers, pb->n_closerpeers, l, &m->closer, &m->closer_cnt, why);
    if (rc < 0) {
        return rc;
    }
    return take_peers(pb->providerpeers, pb->n_providerpeers, l, &m->providers,
                      &m->provider_cnt, why);
}

int gni_kad_msg_decode(const uint8_t *in, size_t len, const gni_kad_limits *lim,
                       gni_kad_msg *out, const char **why)
{
    set_why(why, NULL);
    if (!out || (len && !in)) {
        return GN_EINVAL;
    }
    gni_kad_msg_fini(out);
    gni_kad_limits l = limits_resolve(lim);
    if (len > l.max_msg_len) {
        set_why(why, "message longer than the bound");
        return GN_EFRAMESIZE;
    }
    int rc = scan(in, len, &l, why);
    if (rc < 0) {
        return rc;
    }
    gni_pb_alloc pa;
    gni_pb_alloc_init(&pa);
    static const uint8_t empty[1] = {0};
    Gnpb__Kad__Message *pb = gnpb__kad__message__unpack(&pa.a, len, len ? in : empty);
    if (!pb) {
        if (pa.oom) {
            return GN_ENOMEM;
        }
        set_why(why, "malformed protobuf");
        return GN_EBADFRAME;
    }
    rc = take_fields(out, pb, &l, why);
    gnpb__kad__message__free_unpacked(pb, &pa.a);
    if (rc < 0) {
        gni_kad_msg_fini(out);
    }
    return rc;
}

/* ---- encode ---- */

/* The protobuf-c view of an owned message; the pointers borrow from it. */
typedef struct pb_view {
    Gnpb__Kad__Message msg;
    Gnpb__Kad__Record rec;
    Gnpb__Kad__Message__Peer *peers;        /* closer then providers */
    Gnpb__Kad__Message__Peer **closer_ptrs; /* into peers */
    Gnpb__Kad__Message__Peer **provider_ptrs;
    ProtobufCBinaryData *addrs; /* every peer's, in order */
} pb_view;

static void view_free(pb_view *v)
{
    gn_free(v->peers);
    gn_free(v->closer_ptrs);
    gn_free(v->provider_ptrs);
    gn_free(v->addrs);
}

static int check_peers(const gni_kad_peer *p, size_t n, size_t max_addrs, size_t *addr_total)
{
    for (size_t i = 0; i < n; i++) {
        gn_peer_id tmp;
        if (p[i].id.len == 0 || gn_peer_id_from_bytes(p[i].id.bytes, p[i].id.len, &tmp) < 0) {
            return GN_EINVAL;
        }
        if ((unsigned)p[i].conn > GNI_KAD_CANNOT_CONNECT || p[i].addr_cnt > max_addrs ||
            (p[i].addr_cnt && !p[i].addrs)) {
            return GN_EINVAL;
        }
        for (size_t j = 0; j < p[i].addr_cnt; j++) {
            int rc = check_addr(p[i].addrs[j].data, p[i].addrs[j].len);
            if (rc < 0) {
                return rc == GN_ENOMEM ? rc : GN_EINVAL;
            }
        }
        *addr_total += p[i].addr_cnt;
    }
    return 0;
}

static void fill_peers(const gni_kad_peer *p, size_t n, Gnpb__Kad__Message__Peer *dst,
                       Gnpb__Kad__Message__Peer **ptrs, ProtobufCBinaryData **addr_cursor)
{
    for (size_t i = 0; i < n; i++) {
        gnpb__kad__message__peer__init(&dst[i]);
        dst[i].id.data = (uint8_t *)p[i].id.bytes;
        dst[i].id.len = p[i].id.len;
        dst[i].connection = (Gnpb__Kad__Message__ConnectionType)p[i].conn;
        dst[i].n_addrs = p[i].addr_cnt;
        if (p[i].addr_cnt) { /* *addr_cursor is NULL when no peer has addrs */
            dst[i].addrs = *addr_cursor;
            for (size_t j = 0; j < p[i].addr_cnt; j++) {
                (*addr_cursor)[j].data = p[i].addrs[j].data;
                (*addr_cursor)[j].len = p[i].addrs[j].len;
            }
            *addr_cursor += p[i].addr_cnt;
        }
        ptrs[i] = &dst[i];
    }
}

static int view_build(const gni_kad_msg *m, const gni_kad_limits *l, pb_view *v)
{
    memset(v, 0, sizeof *v);
    if (!m || (unsigned)m->type > GNI_KAD_PING || m->key.len > l->max_key_len ||
        (m->key.len && !m->key.data) || m->closer_cnt > l->max_closer ||
        m->provider_cnt > l->max_providers || (m->closer_cnt && !m->closer) ||
        (m->provider_cnt && !m->providers)) {
        return GN_EINVAL;
    }
    if (m->has_record &&
        (m->rec_key.len > l->max_key_len || (m->rec_key.len && !m->rec_key.data) ||
         (m->rec_value.len && !m->rec_value.data) ||
         (m->rec_time && strlen(m->rec_time) > GNI_KAD_MAX_TIME_LEN))) {
        return GN_EINVAL;
    }
    size_t addr_total = 0;
    int rc = check_peers(m->closer, m->closer_cnt, l->max_addrs, &addr_total);
    if (rc == 0) {
        rc = check_peers(m->providers, m->provider_cnt, l->max_addrs, &addr_total);
    }
    if (rc < 0) {
        return rc;
    }
    size_t np = m->closer_cnt + m->provider_cnt;
    if (np) {
        v->peers = gn_calloc(np, sizeof *v->peers);
        if (!v->peers) {
            return GN_ENOMEM;
        }
    }
    if (m->closer_cnt && !(v->closer_ptrs = gn_calloc(m->closer_cnt, sizeof *v->closer_ptrs))) {
        return GN_ENOMEM;
    }
    if (m->provider_cnt &&
        !(v->provider_ptrs = gn_calloc(m->provider_cnt, sizeof *v->provider_ptrs))) {
        return GN_ENOMEM;
    }
    if (addr_total && !(v->addrs = gn_calloc(addr_total, sizeof *v->addrs))) {
        return GN_ENOMEM;
    }
    gnpb__kad__message__init(&v->msg);
    v->msg.type = (Gnpb__Kad__Message__MessageType)m->type;
    v->msg.clusterlevelraw = m->cluster_level;
    v->msg.key.data = m->key.data;
    v->msg.key.len = m->key.len;
    if (m->has_record) {
        gnpb__kad__record__init(&v->rec);
        v->rec.key.data = m->rec_key.data;
        v->rec.key.len = m->rec_key.len;
        v->rec.value.data = m->rec_value.data;
        v->rec.value.len = m->rec_value.len;
        if (m->rec_time) {
            v->rec.timereceived = m->rec_time;
        }
        v->msg.record = &v->rec;
    }
    ProtobufCBinaryData *cursor = v->addrs;
    fill_peers(m->closer, m->closer_cnt, v->peers, v->closer_ptrs, &cursor);
    if (m->provider_cnt) {
        fill_peers(m->providers, m->provider_cnt, v->peers + m->closer_cnt, v->provider_ptrs,
                   &cursor);
    }
    v->msg.n_closerpeers = m->closer_cnt;
    v->msg.closerpeers = v->closer_ptrs;
    v->msg.n_providerpeers = m->provider_cnt;
    v->msg.providerpeers = v->provider_ptrs;
    return 0;
}

long gni_kad_msg_frame_len(const gni_kad_msg *m, const gni_kad_limits *lim)
{
    gni_kad_limits l = limits_resolve(lim);
    pb_view v;
    int rc = view_build(m, &l, &v);
    if (rc < 0) {
        view_free(&v);
        return rc;
    }
    size_t body = gnpb__kad__message__get_packed_size(&v.msg);
    view_free(&v);
    if (body > l.max_msg_len) {
        return GN_ETOOBIG;
    }
    return (long)(gn_varint_len(body) + body);
}

long gni_kad_msg_encode(const gni_kad_msg *m, const gni_kad_limits *lim, uint8_t *out,
                        size_t cap)
{
    if (!out && cap) {
        return GN_EINVAL;
    }
    gni_kad_limits l = limits_resolve(lim);
    pb_view v;
    long rc = view_build(m, &l, &v);
    if (rc < 0) {
        goto out;
    }
    size_t body = gnpb__kad__message__get_packed_size(&v.msg);
    if (body > l.max_msg_len) {
        rc = GN_ETOOBIG;
        goto out;
    }
    size_t hl = gn_varint_len(body);
    if (cap < hl + body) {
        rc = GN_ENOSPC;
        goto out;
    }
    int h = gn_varint_encode(body, out, cap);
    if (h < 0 || (size_t)h != hl) {
        rc = GN_EINTERNAL;
        goto out;
    }
    size_t packed = gnpb__kad__message__pack(&v.msg, out + hl);
    if (packed != body) {
        rc = GN_EINTERNAL;
        goto out;
    }
    rc = (long)(hl + body);
out:
    view_free(&v);
    return rc;
}

/* ---- incremental frame decoder ---- */

int gni_kad_decoder_init(gni_kad_decoder *d, const gni_kad_limits *lim)
{
    if (!d) {
        return GN_EINVAL;
    }
    memset(d, 0, sizeof *d);
    d->lim = limits_resolve(lim);
    if (d->lim.max_msg_len > GNI_KAD_MAX_MSG_LEN_LIMIT) {
        return GN_EINVAL;
    }
    gni_varint_rd_init(&d->len_rd, GNI_VARINT_MF);
    d->state = GNI_KAD_DEC_LENGTH;
    return 0;
}

void gni_kad_decoder_fini(gni_kad_decoder *d)
{
    if (!d) {
        return;
    }
    gn_free(d->buf);
    d->buf = NULL;
    d->cap = d->need = d->have = 0;
}

static int dec_fail(gni_kad_decoder *d, int err, const char *why_s, const char **why)
{
    gn_free(d->buf);
    d->buf = NULL;
    d->cap = 0;
    d->state = GNI_KAD_DEC_FAILED;
    d->err = err;
    d->why = why_s;
    set_why(why, why_s);
    return err;
}

/* A body is complete: decode it, reset for the next frame. */
static int dec_complete(gni_kad_decoder *d, size_t pos, size_t *consumed, gni_kad_msg *out,
                        const char **why)
{
    const char *w = NULL;
    int rc = gni_kad_msg_decode(d->buf, d->need, &d->lim, out, &w);
    gn_free(d->buf);
    d->buf = NULL;
    d->cap = d->need = d->have = 0;
    d->state = GNI_KAD_DEC_LENGTH;
    *consumed = pos;
    if (rc < 0) {
        return dec_fail(d, rc, w ? w : gn_strerror(rc), why);
    }
    return 1;
}

int gni_kad_decode(gni_kad_decoder *d, const uint8_t *in, size_t len, size_t *consumed,
                   gni_kad_msg *out, const char **why)
{
    set_why(why, NULL);
    if (consumed) {
        *consumed = 0;
    }
    if (!d || !consumed || !out || (len && !in)) {
        return GN_EINVAL;
    }
    if (d->state == GNI_KAD_DEC_FAILED) {
        set_why(why, d->why);
        return d->err;
    }
    size_t pos = 0;
    while (pos < len) { /* each step consumes at least one byte */
        if (d->state == GNI_KAD_DEC_LENGTH) {
            uint64_t v = 0;
            int rc = gni_varint_rd_byte(&d->len_rd, in[pos++], &v);
            if (rc == 0) {
                continue;
            }
            if (rc < 0) {
                return dec_fail(d, GN_EBADFRAME, "length prefix not minimal or too long", why);
            }
            if (v > d->lim.max_msg_len) {
                return dec_fail(d, GN_EFRAMESIZE, "frame longer than the bound", why);
            }
            d->need = (size_t)v;
            d->have = 0;
            if (v == 0) {
                return dec_complete(d, pos, consumed, out, why);
            }
            /* storage follows the bytes that arrive, never the announced
             * length alone */
            size_t first = GNI_MIN(d->need, GNI_MAX(len - pos, (size_t)GNI_KAD_ALLOC_MIN));
            d->buf = gn_malloc(first);
            if (!d->buf) {
                return dec_fail(d, GN_ENOMEM, "out of memory", why);
            }
            d->cap = first;
            d->state = GNI_KAD_DEC_BODY;
        } else { /* GNI_KAD_DEC_BODY */
            size_t take = GNI_MIN(len - pos, d->need - d->have);
            if (d->have + take > d->cap) {
                size_t grow = GNI_MIN(d->need, GNI_MAX(d->have + take, d->cap * 2));
                uint8_t *nb = gn_realloc(d->buf, grow);
                if (!nb) {
                    return dec_fail(d, GN_ENOMEM, "out of memory", why);
                }
                d->buf = nb;
                d->cap = grow;
            }
            memcpy(d->buf + d->have, in + pos, take);
            d->have += take;
            pos += take;
            if (d->have == d->need) {
                return dec_complete(d, pos, consumed, out, why);
            }
        }
    }
    *consumed = pos;
    return 0;
}

int gni_kad_decode_eof(gni_kad_decoder *d)
{
    if (!d) {
        return GN_EINVAL;
    }
    switch (d->state) {
    case GNI_KAD_DEC_FAILED:
        return d->err;
    case GNI_KAD_DEC_LENGTH:
        if (!gni_varint_rd_busy(&d->len_rd)) {
            return 0;
        }
        return dec_fail(d, GN_EPROTO, "stream ended inside a length prefix", NULL);
    default:
        return dec_fail(d, GN_EPROTO, "stream ended inside a frame", NULL);
    }
}
