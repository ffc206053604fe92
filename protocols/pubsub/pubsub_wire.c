/*
 * golemnet - libp2p pubsub wire core: the owned RPC form, a bounded
 * protobuf-c decode, protobuf-c packing (frames and signing input), the
 * frame splitter, message IDs,
 * signing and verification, the seen cache. See pubsub_wire.h and
 * docs/pubsub.md.
 */
#include "pubsub_wire.h"
#include "gni_pb.h"

#include "golemnet/err.h"
#include "golemnet/log.h"
#include "golemnet/multiformats.h"
#include "pubsub.pb-c.h"

#include <sodium.h>
#include <string.h>

/* Field numbers (pubsub.proto). */
enum {
    F_RPC_SUBS = 1,
    F_RPC_PUBLISH = 2,
    F_RPC_CONTROL = 3,
    F_SUB_TOPIC = 2,
    F_MSG_FROM = 1,
    F_MSG_DATA = 2,
    F_MSG_SEQNO = 3,
    F_MSG_TOPIC = 4,
    F_MSG_SIG = 5,
    F_MSG_KEY = 6,
    F_CTL_IHAVE = 1,
    F_CTL_IWANT = 2,
    F_CTL_GRAFT = 3,
    F_CTL_PRUNE = 4,
    F_IHAVE_TOPIC = 1,
    F_IHAVE_IDS = 2,
    F_IWANT_IDS = 1,
    F_GRAFT_TOPIC = 1,
    F_PRUNE_TOPIC = 1,
    F_PRUNE_PEERS = 2,
    F_PRUNE_BACKOFF = 3,
    F_PX_ID = 1,
    F_PX_SPR = 2,
};

gni_ps_limits gni_ps_limits_resolve(const gni_ps_limits *lim)
{
    gni_ps_limits l = {0};
    if (lim) {
        l = *lim;
    }
#define DEF(f, v)                                                                            \
    if (!l.f) {                                                                              \
        l.f = (v);                                                                           \
    }
    DEF(max_rpc_len, GNI_PS_DEFAULT_MAX_RPC_LEN);
    DEF(max_subs, GNI_PS_DEFAULT_MAX_SUBS);
    DEF(max_msgs, GNI_PS_DEFAULT_MAX_MSGS);
    DEF(max_control, GNI_PS_DEFAULT_MAX_CONTROL);
    DEF(max_ids, GNI_PS_DEFAULT_MAX_IDS);
    DEF(max_ids_total, GNI_PS_DEFAULT_MAX_IDS_TOTAL);
    DEF(max_id_len, GNI_PS_DEFAULT_MAX_ID_LEN);
    DEF(max_topic_len, GNI_PS_DEFAULT_MAX_TOPIC_LEN);
    DEF(max_px, GNI_PS_DEFAULT_MAX_PX);
#undef DEF
    if (l.max_id_len > GNI_PS_MSG_ID_MAX) {
        l.max_id_len = GNI_PS_MSG_ID_MAX;
    }
    return l;
}

static void set_why(const char **why, const char *s)
{
    if (why) {
        *why = s;
    }
}

/* ---- owned values ---- */

static void bytes_free(gni_ps_bytes *b)
{
    gn_free(b->data);
    b->data = NULL;
    b->len = 0;
}

static int bytes_copy(gni_ps_bytes *dst, const uint8_t *src, size_t len)
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

/* *@dst = copy of @s (NULL stays NULL). */
static int str_dup(char **dst, const char *s)
{
    *dst = NULL;
    if (!s) {
        return 0;
    }
    size_t n = strlen(s);
    *dst = gn_malloc(n + 1);
    if (!*dst) {
        return GN_ENOMEM;
    }
    memcpy(*dst, s, n + 1);
    return 0;
}

static void ids_free(gni_ps_bytes *ids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        bytes_free(&ids[i]);
    }
    gn_free(ids);
}

void gni_ps_msg_init(gni_ps_msg *m)
{
    if (m) {
        memset(m, 0, sizeof *m);
    }
}

void gni_ps_msg_fini(gni_ps_msg *m)
{
    if (!m) {
        return;
    }
    bytes_free(&m->from);
    bytes_free(&m->data);
    bytes_free(&m->seqno);
    bytes_free(&m->signature);
    bytes_free(&m->key);
    bytes_free(&m->unknown);
    gn_free(m->topic);
    gni_ps_msg_init(m);
}

void gni_ps_rpc_init(gni_ps_rpc *r)
{
    if (r) {
        memset(r, 0, sizeof *r);
    }
}

void gni_ps_rpc_fini(gni_ps_rpc *r)
{
    if (!r) {
        return;
    }
    for (size_t i = 0; i < r->sub_cnt; i++) {
        gn_free(r->subs[i].topic);
    }
    gn_free(r->subs);
    for (size_t i = 0; i < r->msg_cnt; i++) {
        gni_ps_msg_fini(&r->msgs[i]);
    }
    gn_free(r->msgs);
    for (size_t i = 0; i < r->ihave_cnt; i++) {
        gn_free(r->ihave[i].topic);
        ids_free(r->ihave[i].ids, r->ihave[i].id_cnt);
    }
    gn_free(r->ihave);
    for (size_t i = 0; i < r->iwant_cnt; i++) {
        ids_free(r->iwant[i].ids, r->iwant[i].id_cnt);
    }
    gn_free(r->iwant);
    for (size_t i = 0; i < r->graft_cnt; i++) {
        gn_free(r->graft[i].topic);
    }
    gn_free(r->graft);
    for (size_t i = 0; i < r->prune_cnt; i++) {
        gni_ps_prune *p = &r->prune[i];
        gn_free(p->topic);
        for (size_t j = 0; j < p->peer_cnt; j++) {
            bytes_free(&p->peers[j].peer_id);
            bytes_free(&p->peers[j].spr);
        }
        gn_free(p->peers);
    }
    gn_free(r->prune);
    gni_ps_rpc_init(r);
}

int gni_ps_msg_set(gni_ps_msg *m, const char *topic, const uint8_t *data, size_t len,
                   const uint64_t *seqno)
{
    if (!m || !topic || (len && !data)) {
        return GN_EINVAL;
    }
    char *t;
    gni_ps_bytes d, s = {0};
    if (str_dup(&t, topic) < 0) {
        return GN_ENOMEM;
    }
    if (bytes_copy(&d, data, len) < 0) {
        gn_free(t);
        return GN_ENOMEM;
    }
    if (seqno) {
        uint8_t be[8];
        for (int i = 0; i < 8; i++) {
            be[i] = (uint8_t)(*seqno >> (56 - 8 * i));
        }
        if (bytes_copy(&s, be, 8) < 0) {
            gn_free(t);
            bytes_free(&d);
            return GN_ENOMEM;
        }
        bytes_free(&m->seqno);
        m->seqno = s;
        m->has_seqno = true;
    }
    gn_free(m->topic);
    bytes_free(&m->data);
    m->topic = t;
    m->data = d;
    m->has_data = true;
    return 0;
}

/* Grows *@arr (elements of @size) by one zeroed element; returns it or NULL. */
static void *arr_push(void **arr, size_t *cnt, size_t size)
{
    uint8_t *n = gn_realloc(*arr, (*cnt + 1) * size);
    if (!n) {
        return NULL;
    }
    *arr = n;
    memset(n + *cnt * size, 0, size);
    return n + (*cnt)++ * size;
}

int gni_ps_rpc_add_sub(gni_ps_rpc *r, bool subscribe, const char *topic)
{
    if (!r) {
        return GN_EINVAL;
    }
    char *t;
    if (str_dup(&t, topic) < 0) {
        return GN_ENOMEM;
    }
    gni_ps_sub *s = arr_push((void **)&r->subs, &r->sub_cnt, sizeof *s);
    if (!s) {
        gn_free(t);
        return GN_ENOMEM;
    }
    s->has_subscribe = true;
    s->subscribe = subscribe;
    s->topic = t;
    return 0;
}

int gni_ps_rpc_add_msg(gni_ps_rpc *r, gni_ps_msg *m)
{
    if (!r || !m) {
        return GN_EINVAL;
    }
    gni_ps_msg *d = arr_push((void **)&r->msgs, &r->msg_cnt, sizeof *d);
    if (!d) {
        return GN_ENOMEM;
    }
    *d = *m;
    gni_ps_msg_init(m);
    return 0;
}

static int ids_copy(gni_ps_bytes **out, const uint8_t *const *ids, const size_t *lens,
                    size_t cnt)
{
    *out = NULL;
    if (cnt == 0) {
        return 0;
    }
    gni_ps_bytes *a = gn_calloc(cnt, sizeof *a);
    if (!a) {
        return GN_ENOMEM;
    }
    for (size_t i = 0; i < cnt; i++) {
        if (bytes_copy(&a[i], ids[i], lens[i]) < 0) {
            ids_free(a, i);
            return GN_ENOMEM;
        }
    }
    *out = a;
    return 0;
}

int gni_ps_rpc_add_ihave(gni_ps_rpc *r, const char *topic, const uint8_t *const *ids,
                         const size_t *lens, size_t cnt)
{
    if (!r || (cnt && (!ids || !lens))) {
        return GN_EINVAL;
    }
    char *t;
    gni_ps_bytes *a;
    if (str_dup(&t, topic) < 0) {
        return GN_ENOMEM;
    }
    if (ids_copy(&a, ids, lens, cnt) < 0) {
        gn_free(t);
        return GN_ENOMEM;
    }
    gni_ps_ihave *h = arr_push((void **)&r->ihave, &r->ihave_cnt, sizeof *h);
    if (!h) {
        gn_free(t);
        ids_free(a, cnt);
        return GN_ENOMEM;
    }
    h->topic = t;
    h->ids = a;
    h->id_cnt = cnt;
    return 0;
}

int gni_ps_rpc_add_iwant(gni_ps_rpc *r, const uint8_t *const *ids, const size_t *lens,
                         size_t cnt)
{
    if (!r || (cnt && (!ids || !lens))) {
        return GN_EINVAL;
    }
    gni_ps_bytes *a;
    if (ids_copy(&a, ids, lens, cnt) < 0) {
        return GN_ENOMEM;
    }
    gni_ps_iwant *w = arr_push((void **)&r->iwant, &r->iwant_cnt, sizeof *w);
    if (!w) {
        ids_free(a, cnt);
        return GN_ENOMEM;
    }
    w->ids = a;
    w->id_cnt = cnt;
    return 0;
}

int gni_ps_rpc_add_graft(gni_ps_rpc *r, const char *topic)
{
    if (!r) {
        return GN_EINVAL;
    }
    char *t;
    if (str_dup(&t, topic) < 0) {
        return GN_ENOMEM;
    }
    gni_ps_graft *g = arr_push((void **)&r->graft, &r->graft_cnt, sizeof *g);
    if (!g) {
        gn_free(t);
        return GN_ENOMEM;
    }
    g->topic = t;
    return 0;
}

int gni_ps_rpc_add_prune(gni_ps_rpc *r, const char *topic, bool has_backoff, uint64_t backoff_s,
                         gni_ps_prune **out)
{
    if (!r) {
        return GN_EINVAL;
    }
    char *t;
    if (str_dup(&t, topic) < 0) {
        return GN_ENOMEM;
    }
    gni_ps_prune *p = arr_push((void **)&r->prune, &r->prune_cnt, sizeof *p);
    if (!p) {
        gn_free(t);
        return GN_ENOMEM;
    }
    p->topic = t;
    p->has_backoff = has_backoff;
    p->backoff_s = has_backoff ? backoff_s : 0;
    if (out) {
        *out = p;
    }
    return 0;
}

int gni_ps_prune_add_px(gni_ps_prune *p, const uint8_t *peer_id, size_t id_len,
                        const uint8_t *spr, size_t spr_len)
{
    if (!p || (id_len && !peer_id) || (spr_len && !spr)) {
        return GN_EINVAL;
    }
    gni_ps_bytes a, b;
    if (bytes_copy(&a, peer_id, id_len) < 0) {
        return GN_ENOMEM;
    }
    if (bytes_copy(&b, spr, spr_len) < 0) {
        bytes_free(&a);
        return GN_ENOMEM;
    }
    gni_ps_px *x = arr_push((void **)&p->peers, &p->peer_cnt, sizeof *x);
    if (!x) {
        bytes_free(&a);
        bytes_free(&b);
        return GN_ENOMEM;
    }
    x->peer_id = a;
    x->spr = b;
    return 0;
}

/* ---- wire scan: bounds before protobuf-c allocates ---- */

/* Counts across the whole RPC (a control field may occur more than once:
 * protobuf merges the occurrences). */
typedef struct scan_ctx {
    const gni_ps_limits *l;
    const char **why;
    size_t subs, msgs, control, ids_total;
} scan_ctx;

static int too_big(scan_ctx *c, const char *what)
{
    set_why(c->why, what);
    return GN_ETOOBIG;
}

static int check_topic(scan_ctx *c, gn_slice t)
{
    if (t.len > c->l->max_topic_len) {
        return too_big(c, "topic longer than the bound");
    }
    if (t.len && memchr(t.base, 0, t.len)) {
        set_why(c->why, "topic contains a NUL byte");
        return GN_EPROTO;
    }
    return 0;
}

/*
 * Walks a (sub)message: at most @max_fields fields; @each, when not NULL,
 * is called for every length-delimited field. GN_EBADFRAME, GN_ETOOBIG or
 * what @each returns.
 */
typedef int (*field_fn)(scan_ctx *c, uint64_t field, gn_slice sub, void *arg);

static int walk(scan_ctx *c, gn_slice s, size_t max_fields, field_fn each, void *arg)
{
    size_t pos = 0, fields = 0;
    uint64_t f;
    unsigned wt;
    gn_slice sub;
    int r;
    while ((r = gni_pb_next(s.base, s.len, &pos, &f, &wt, &sub)) == 1) {
        if (++fields > max_fields) {
            return too_big(c, "too many fields in a (sub)message");
        }
        if (sub.base && each) {
            int rc = each(c, f, sub, arg);
            if (rc < 0) {
                return rc;
            }
        }
    }
    if (r < 0) {
        set_why(c->why, "malformed protobuf");
    }
    return r;
}

static int scan_topic_field(scan_ctx *c, uint64_t f, gn_slice sub, void *arg)
{
    return f == (uint64_t)(uintptr_t)arg ? check_topic(c, sub) : 0;
}

static int scan_msg_field(scan_ctx *c, uint64_t f, gn_slice sub, void *arg)
{
    (void)arg;
    switch (f) {
    case F_MSG_FROM:
        return sub.len > GN_PEER_ID_MAX_BYTES ? too_big(c, "from longer than a peer ID") : 0;
    case F_MSG_SEQNO:
        return sub.len > GNI_PS_MAX_SEQNO_LEN ? too_big(c, "seqno longer than the bound") : 0;
    case F_MSG_TOPIC:
        return check_topic(c, sub);
    case F_MSG_SIG:
        return sub.len > GN_SIG_MAX_BYTES ? too_big(c, "signature longer than the bound") : 0;
    case F_MSG_KEY:
        return sub.len > GN_PUBKEY_MAX_BYTES ? too_big(c, "key longer than the bound") : 0;
    default:
        return 0;
    }
}

/* IHAVE (topic 1, ids 2) and IWANT (ids 1): @arg is the ids field number. */
static int scan_ids_field(scan_ctx *c, uint64_t f, gn_slice sub, void *arg)
{
    uint64_t ids_field = (uint64_t)(uintptr_t)arg;
    if (f == ids_field) {
        if (sub.len > c->l->max_id_len) {
            return too_big(c, "message ID longer than the bound");
        }
        if (++c->ids_total > c->l->max_ids_total) {
            return too_big(c, "too many message IDs in the RPC");
        }
        return 0;
    }
    if (ids_field == F_IHAVE_IDS && f == F_IHAVE_TOPIC) {
        return check_topic(c, sub);
    }
    return 0;
}

static int count_field(gn_slice s, uint64_t field, size_t *cnt)
{
    size_t pos = 0;
    uint64_t f;
    unsigned wt;
    gn_slice sub;
    int r;
    *cnt = 0;
    while ((r = gni_pb_next(s.base, s.len, &pos, &f, &wt, &sub)) == 1) {
        if (f == field) {
            (*cnt)++;
        }
    }
    return r;
}

static int scan_px_field(scan_ctx *c, uint64_t f, gn_slice sub, void *arg)
{
    (void)arg;
    if (f == F_PX_ID && sub.len > GN_PEER_ID_MAX_BYTES) {
        return too_big(c, "PX peer ID longer than a peer ID");
    }
    if (f == F_PX_SPR && sub.len > GNI_PS_MAX_SPR_LEN) {
        return too_big(c, "signedPeerRecord longer than the bound");
    }
    return 0;
}

static int scan_prune_field(scan_ctx *c, uint64_t f, gn_slice sub, void *arg)
{
    (void)arg;
    if (f == F_PRUNE_TOPIC) {
        return check_topic(c, sub);
    }
    if (f == F_PRUNE_PEERS) {
        return walk(c, sub, 2 + GNI_PS_EXTRA_FIELDS, scan_px_field, NULL);
    }
    return 0;
}

static int scan_ctl_field(scan_ctx *c, uint64_t f, gn_slice sub, void *arg)
{
    (void)arg;
    if (f < F_CTL_IHAVE || f > F_CTL_PRUNE) {
        return 0;
    }
    if (++c->control > c->l->max_control) {
        return too_big(c, "too many control entries");
    }
    size_t n = 0;
    switch (f) {
    case F_CTL_IHAVE:
    case F_CTL_IWANT: {
        uint64_t idf = f == F_CTL_IHAVE ? F_IHAVE_IDS : F_IWANT_IDS;
        if (count_field(sub, idf, &n) < 0) {
            set_why(c->why, "malformed protobuf");
            return GN_EBADFRAME;
        }
        if (n > c->l->max_ids) {
            return too_big(c, f == F_CTL_IHAVE ? "too many message IDs in an IHAVE"
                                               : "too many message IDs in an IWANT");
        }
        return walk(c, sub, c->l->max_ids + GNI_PS_EXTRA_FIELDS, scan_ids_field,
                    (void *)(uintptr_t)idf);
    }
    case F_CTL_GRAFT:
        return walk(c, sub, 1 + GNI_PS_EXTRA_FIELDS, scan_topic_field,
                    (void *)(uintptr_t)F_GRAFT_TOPIC);
    default: /* F_CTL_PRUNE */
        if (count_field(sub, F_PRUNE_PEERS, &n) < 0) {
            set_why(c->why, "malformed protobuf");
            return GN_EBADFRAME;
        }
        if (n > c->l->max_px) {
            return too_big(c, "too many PX peers in a PRUNE");
        }
        return walk(c, sub, c->l->max_px + 2 + GNI_PS_EXTRA_FIELDS, scan_prune_field, NULL);
    }
}

static int scan_rpc_field(scan_ctx *c, uint64_t f, gn_slice sub, void *arg)
{
    (void)arg;
    switch (f) {
    case F_RPC_SUBS:
        if (++c->subs > c->l->max_subs) {
            return too_big(c, "too many subscriptions");
        }
        return walk(c, sub, 2 + GNI_PS_EXTRA_FIELDS, scan_topic_field,
                    (void *)(uintptr_t)F_SUB_TOPIC);
    case F_RPC_PUBLISH:
        if (++c->msgs > c->l->max_msgs) {
            return too_big(c, "too many messages");
        }
        return walk(c, sub, 6 + GNI_PS_EXTRA_FIELDS, scan_msg_field, NULL);
    case F_RPC_CONTROL:
        return walk(c, sub, c->l->max_control + GNI_PS_EXTRA_FIELDS, scan_ctl_field, NULL);
    default:
        return 0;
    }
}

/* ---- decode ---- */

/*
 * m->unknown = the fields protobuf-c kept as unknown for this Message
 * (numbers other than 1..6), in wire order, each as protobuf-c packs it
 * back: the tag varint, then the value bytes exactly as received.
 */
static int take_unknown(gni_ps_msg *m, const ProtobufCMessage *s)
{
    size_t total = 0;
    for (unsigned i = 0; i < s->n_unknown_fields; i++) {
        const ProtobufCMessageUnknownField *u = &s->unknown_fields[i];
        total += gn_varint_len((uint64_t)u->tag << 3 | u->wire_type) + u->len;
    }
    if (total == 0) {
        return 0;
    }
    m->unknown.data = gn_malloc(total);
    if (!m->unknown.data) {
        return GN_ENOMEM;
    }
    for (unsigned i = 0; i < s->n_unknown_fields; i++) {
        const ProtobufCMessageUnknownField *u = &s->unknown_fields[i];
        uint64_t tag = (uint64_t)u->tag << 3 | u->wire_type;
        int tl = gn_varint_encode(tag, m->unknown.data + m->unknown.len, total - m->unknown.len);
        if (tl < 0) {
            return GN_EINTERNAL;
        }
        m->unknown.len += (size_t)tl;
        if (u->len) {
            memcpy(m->unknown.data + m->unknown.len, u->data, u->len);
        }
        m->unknown.len += u->len;
    }
    return 0;
}

#define TAKE_BYTES(dst, has_dst, src_has, src)                                               \
    do {                                                                                     \
        if (src_has) {                                                                       \
            if (bytes_copy(&(dst), (src).data, (src).len) < 0) {                             \
                return GN_ENOMEM;                                                            \
            }                                                                                \
            (has_dst) = true;                                                                \
        }                                                                                    \
    } while (0)

static int take_msg(gni_ps_msg *m, const Gnpb__Pubsub__Message *s, const char **why)
{
    if (!s->topic) {
        set_why(why, "message without a topic");
        return GN_EPROTO;
    }
    if (str_dup(&m->topic, s->topic) < 0) {
        return GN_ENOMEM;
    }
    TAKE_BYTES(m->from, m->has_from, s->has_from, s->from);
    TAKE_BYTES(m->data, m->has_data, s->has_data, s->data);
    TAKE_BYTES(m->seqno, m->has_seqno, s->has_seqno, s->seqno);
    TAKE_BYTES(m->signature, m->has_signature, s->has_signature, s->signature);
    TAKE_BYTES(m->key, m->has_key, s->has_key, s->key);
    return take_unknown(m, &s->base);
}

static int take_ids(gni_ps_bytes **out, size_t *out_cnt, const ProtobufCBinaryData *ids,
                    size_t n)
{
    *out = NULL;
    *out_cnt = 0;
    if (n == 0) {
        return 0;
    }
    gni_ps_bytes *a = gn_calloc(n, sizeof *a);
    if (!a) {
        return GN_ENOMEM;
    }
    *out = a;
    for (size_t i = 0; i < n; i++) {
        if (bytes_copy(&a[i], ids[i].data, ids[i].len) < 0) {
            return GN_ENOMEM;
        }
        (*out_cnt)++;
    }
    return 0;
}

static int take_control(gni_ps_rpc *r, const Gnpb__Pubsub__ControlMessage *c)
{
    r->has_control = true;
    if (c->n_ihave && !(r->ihave = gn_calloc(c->n_ihave, sizeof *r->ihave))) {
        return GN_ENOMEM;
    }
    for (size_t i = 0; i < c->n_ihave; i++) {
        gni_ps_ihave *h = &r->ihave[i];
        r->ihave_cnt++;
        if (str_dup(&h->topic, c->ihave[i]->topicid) < 0 ||
            take_ids(&h->ids, &h->id_cnt, c->ihave[i]->messageids, c->ihave[i]->n_messageids) <
                0) {
            return GN_ENOMEM;
        }
    }
    if (c->n_iwant && !(r->iwant = gn_calloc(c->n_iwant, sizeof *r->iwant))) {
        return GN_ENOMEM;
    }
    for (size_t i = 0; i < c->n_iwant; i++) {
        gni_ps_iwant *w = &r->iwant[i];
        r->iwant_cnt++;
        if (take_ids(&w->ids, &w->id_cnt, c->iwant[i]->messageids, c->iwant[i]->n_messageids) <
            0) {
            return GN_ENOMEM;
        }
    }
    if (c->n_graft && !(r->graft = gn_calloc(c->n_graft, sizeof *r->graft))) {
        return GN_ENOMEM;
    }
    for (size_t i = 0; i < c->n_graft; i++) {
        r->graft_cnt++;
        if (str_dup(&r->graft[i].topic, c->graft[i]->topicid) < 0) {
            return GN_ENOMEM;
        }
    }
    if (c->n_prune && !(r->prune = gn_calloc(c->n_prune, sizeof *r->prune))) {
        return GN_ENOMEM;
    }
    for (size_t i = 0; i < c->n_prune; i++) {
        const Gnpb__Pubsub__ControlPrune *s = c->prune[i];
        gni_ps_prune *p = &r->prune[i];
        r->prune_cnt++;
        if (str_dup(&p->topic, s->topicid) < 0) {
            return GN_ENOMEM;
        }
        p->has_backoff = s->has_backoff;
        p->backoff_s = s->has_backoff ? s->backoff : 0;
        if (s->n_peers && !(p->peers = gn_calloc(s->n_peers, sizeof *p->peers))) {
            return GN_ENOMEM;
        }
        for (size_t j = 0; j < s->n_peers; j++) {
            const Gnpb__Pubsub__PeerInfo *x = s->peers[j];
            p->peer_cnt++;
            if (bytes_copy(&p->peers[j].peer_id, x->has_peerid ? x->peerid.data : NULL,
                           x->has_peerid ? x->peerid.len : 0) < 0 ||
                bytes_copy(&p->peers[j].spr,
                           x->has_signedpeerrecord ? x->signedpeerrecord.data : NULL,
                           x->has_signedpeerrecord ? x->signedpeerrecord.len : 0) < 0) {
                return GN_ENOMEM;
            }
        }
    }
    return 0;
}

static int take_rpc(gni_ps_rpc *r, const Gnpb__Pubsub__RPC *pb, const char **why)
{
    if (pb->n_subscriptions &&
        !(r->subs = gn_calloc(pb->n_subscriptions, sizeof *r->subs))) {
        return GN_ENOMEM;
    }
    for (size_t i = 0; i < pb->n_subscriptions; i++) {
        r->sub_cnt++;
        r->subs[i].has_subscribe = pb->subscriptions[i]->has_subscribe;
        r->subs[i].subscribe = pb->subscriptions[i]->has_subscribe &&
                               pb->subscriptions[i]->subscribe;
        if (str_dup(&r->subs[i].topic, pb->subscriptions[i]->topicid) < 0) {
            return GN_ENOMEM;
        }
    }
    if (pb->n_publish && !(r->msgs = gn_calloc(pb->n_publish, sizeof *r->msgs))) {
        return GN_ENOMEM;
    }
    for (size_t i = 0; i < pb->n_publish; i++) {
        r->msg_cnt++;
        int rc = take_msg(&r->msgs[i], pb->publish[i], why);
        if (rc < 0) {
            return rc;
        }
    }
    return pb->control ? take_control(r, pb->control) : 0;
}

int gni_ps_rpc_decode(const uint8_t *in, size_t len, const gni_ps_limits *lim, gni_ps_rpc *out,
                      const char **why)
{
    set_why(why, NULL);
    if (!out || (len && !in)) {
        return GN_EINVAL;
    }
    gni_ps_rpc_fini(out);
    gni_ps_limits l = gni_ps_limits_resolve(lim);
    if (len > l.max_rpc_len) {
        set_why(why, "RPC longer than the bound");
        return GN_EFRAMESIZE;
    }
    static const uint8_t empty[1] = {0};
    scan_ctx c = {.l = &l, .why = why};
    gn_slice all = {len ? in : empty, len};
    int rc = walk(&c, all, l.max_subs + l.max_msgs + GNI_PS_EXTRA_FIELDS, scan_rpc_field, NULL);
    if (rc < 0) {
        return rc;
    }
    gni_pb_alloc pa;
    gni_pb_alloc_init(&pa);
    Gnpb__Pubsub__RPC *pb = gnpb__pubsub__rpc__unpack(&pa.a, len, all.base);
    if (!pb) {
        if (pa.oom) {
            return GN_ENOMEM;
        }
        set_why(why, "malformed protobuf RPC");
        return GN_EBADFRAME;
    }
    rc = take_rpc(out, pb, why);
    gnpb__pubsub__rpc__free_unpacked(pb, &pa.a);
    if (rc < 0) {
        gni_ps_rpc_fini(out);
    }
    return rc;
}

/* ---- encode: protobuf-c packs a view of the owned form ---- */

static bool topic_ok(const char *t, const gni_ps_limits *l)
{
    return !t || strnlen(t, l->max_topic_len + 1) <= l->max_topic_len;
}

static bool bytes_ok(const gni_ps_bytes *b, size_t max)
{
    return b->len <= max && (b->len == 0 || b->data);
}

static bool ids_ok(const gni_ps_bytes *ids, size_t n, const gni_ps_limits *l, size_t *total)
{
    if (n > l->max_ids || (n && !ids)) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!bytes_ok(&ids[i], l->max_id_len)) {
            return false;
        }
    }
    *total += n;
    return *total <= l->max_ids_total;
}

/* The unknown fields of a message: well formed, numbered above 6, and with
 * the @known fields present no more than the decoder's field bound. */
static bool unknown_ok(const gni_ps_bytes *u, size_t known)
{
    if (!bytes_ok(u, SIZE_MAX)) {
        return false;
    }
    size_t pos = 0, n = known;
    uint64_t f;
    unsigned wt;
    gn_slice sub;
    int r;
    while ((r = gni_pb_next(u->data, u->len, &pos, &f, &wt, &sub)) == 1) {
        if (f <= F_MSG_KEY || ++n > 6 + GNI_PS_EXTRA_FIELDS) {
            return false;
        }
    }
    return r == 0;
}

static bool msg_ok(const gni_ps_msg *m, const gni_ps_limits *l)
{
    return m->topic && topic_ok(m->topic, l) && bytes_ok(&m->from, GN_PEER_ID_MAX_BYTES) &&
           bytes_ok(&m->data, SIZE_MAX) && bytes_ok(&m->seqno, GNI_PS_MAX_SEQNO_LEN) &&
           bytes_ok(&m->signature, GN_SIG_MAX_BYTES) && bytes_ok(&m->key, GN_PUBKEY_MAX_BYTES) &&
           unknown_ok(&m->unknown, (size_t)m->has_from + m->has_data + m->has_seqno + 1 +
                                       m->has_signature + m->has_key);
}

/* Whether @r passes the checks the decoder makes. */
static bool rpc_ok(const gni_ps_rpc *r, const gni_ps_limits *l)
{
    if (!r || r->sub_cnt > l->max_subs || r->msg_cnt > l->max_msgs ||
        (r->sub_cnt && !r->subs) || (r->msg_cnt && !r->msgs) ||
        (r->ihave_cnt && !r->ihave) || (r->iwant_cnt && !r->iwant) ||
        (r->graft_cnt && !r->graft) || (r->prune_cnt && !r->prune)) {
        return false;
    }
    size_t ctl = r->ihave_cnt + r->iwant_cnt + r->graft_cnt + r->prune_cnt, total = 0;
    if (ctl > l->max_control) {
        return false;
    }
    for (size_t i = 0; i < r->sub_cnt; i++) {
        if (!topic_ok(r->subs[i].topic, l)) {
            return false;
        }
    }
    for (size_t i = 0; i < r->msg_cnt; i++) {
        if (!msg_ok(&r->msgs[i], l)) {
            return false;
        }
    }
    for (size_t i = 0; i < r->ihave_cnt; i++) {
        if (!topic_ok(r->ihave[i].topic, l) ||
            !ids_ok(r->ihave[i].ids, r->ihave[i].id_cnt, l, &total)) {
            return false;
        }
    }
    for (size_t i = 0; i < r->iwant_cnt; i++) {
        if (!ids_ok(r->iwant[i].ids, r->iwant[i].id_cnt, l, &total)) {
            return false;
        }
    }
    for (size_t i = 0; i < r->graft_cnt; i++) {
        if (!topic_ok(r->graft[i].topic, l)) {
            return false;
        }
    }
    for (size_t i = 0; i < r->prune_cnt; i++) {
        const gni_ps_prune *p = &r->prune[i];
        if (!topic_ok(p->topic, l) || p->peer_cnt > l->max_px || (p->peer_cnt && !p->peers)) {
            return false;
        }
        for (size_t j = 0; j < p->peer_cnt; j++) {
            if (!bytes_ok(&p->peers[j].peer_id, GN_PEER_ID_MAX_BYTES) ||
                !bytes_ok(&p->peers[j].spr, GNI_PS_MAX_SPR_LEN)) {
                return false;
            }
        }
    }
    return true;
}

/*
 * The unknown fields of @u (already checked by unknown_ok()) as protobuf-c
 * unknown fields pointing into @u, written to @uf when not NULL. Returns
 * how many. protobuf-c packs them after the known fields, tag first.
 */
static size_t unknown_view(const gni_ps_bytes *u, ProtobufCMessageUnknownField *uf)
{
    size_t pos = 0, start = 0, n = 0;
    uint64_t f, tag;
    unsigned wt;
    gn_slice sub;
    while (gni_pb_next(u->data, u->len, &pos, &f, &wt, &sub) == 1) {
        if (uf) {
            int tl = gni_varint_decode_kind(u->data + start, u->len - start, GNI_VARINT_PB, &tag);
            uf[n].tag = (uint32_t)f;
            uf[n].wire_type = (ProtobufCWireType)wt;
            uf[n].data = u->data + start + (size_t)tl;
            uf[n].len = pos - start - (size_t)tl;
        }
        n++;
        start = pos;
    }
    return n;
}

static ProtobufCBinaryData bin(const gni_ps_bytes *b)
{
    return (ProtobufCBinaryData){.len = b->len, .data = b->data};
}

/* @pm = a view of @m (no copies; @uf holds its unknown fields). */
static void msg_view(const gni_ps_msg *m, Gnpb__Pubsub__Message *pm,
                     ProtobufCMessageUnknownField *uf)
{
    gnpb__pubsub__message__init(pm);
    pm->has_from = m->has_from;
    pm->from = bin(&m->from);
    pm->has_data = m->has_data;
    pm->data = bin(&m->data);
    pm->has_seqno = m->has_seqno;
    pm->seqno = bin(&m->seqno);
    pm->topic = m->topic;
    pm->has_signature = m->has_signature;
    pm->signature = bin(&m->signature);
    pm->has_key = m->has_key;
    pm->key = bin(&m->key);
    pm->base.n_unknown_fields = (unsigned)unknown_view(&m->unknown, uf);
    pm->base.unknown_fields = pm->base.n_unknown_fields ? uf : NULL;
}

/*
 * Storage for the view of an RPC, one block: bump allocation; with
 * @base NULL only the size is summed (the first of two passes).
 */
typedef struct view_arena {
    uint8_t *base;
    size_t used;
} view_arena;

static void *take(view_arena *a, size_t n, size_t size)
{
    enum { AL = _Alignof(max_align_t) };
    void *p = a->base && n ? a->base + a->used : NULL;
    a->used += (n * size + AL - 1) / AL * AL;
    return p;
}

/* Allocates the view's arrays from @a into @v (sizes only when a->base is
 * NULL); @v's pointers are valid only in the second pass. */
static void rpc_view(const gni_ps_rpc *r, view_arena *a, Gnpb__Pubsub__RPC *v,
                     Gnpb__Pubsub__ControlMessage *cv)
{
    bool fill = a->base != NULL;
    gnpb__pubsub__rpc__init(v);
    Gnpb__Pubsub__RPC__SubOpts *subs = take(a, r->sub_cnt, sizeof *subs);
    Gnpb__Pubsub__RPC__SubOpts **subp = take(a, r->sub_cnt, sizeof *subp);
    for (size_t i = 0; fill && i < r->sub_cnt; i++) {
        gnpb__pubsub__rpc__sub_opts__init(&subs[i]);
        subs[i].has_subscribe = r->subs[i].has_subscribe;
        subs[i].subscribe = r->subs[i].subscribe;
        subs[i].topicid = r->subs[i].topic;
        subp[i] = &subs[i];
    }
    v->n_subscriptions = r->sub_cnt;
    v->subscriptions = subp;
    Gnpb__Pubsub__Message *msgs = take(a, r->msg_cnt, sizeof *msgs);
    Gnpb__Pubsub__Message **msgp = take(a, r->msg_cnt, sizeof *msgp);
    for (size_t i = 0; i < r->msg_cnt; i++) {
        ProtobufCMessageUnknownField *uf =
            take(a, unknown_view(&r->msgs[i].unknown, NULL), sizeof *uf);
        if (fill) {
            msg_view(&r->msgs[i], &msgs[i], uf);
            msgp[i] = &msgs[i];
        }
    }
    v->n_publish = r->msg_cnt;
    v->publish = msgp;
    if (!(r->has_control || r->ihave_cnt || r->iwant_cnt || r->graft_cnt || r->prune_cnt)) {
        return;
    }
    gnpb__pubsub__control_message__init(cv);
    v->control = cv;
    Gnpb__Pubsub__ControlIHave *ih = take(a, r->ihave_cnt, sizeof *ih);
    Gnpb__Pubsub__ControlIHave **ihp = take(a, r->ihave_cnt, sizeof *ihp);
    for (size_t i = 0; i < r->ihave_cnt; i++) {
        ProtobufCBinaryData *ids = take(a, r->ihave[i].id_cnt, sizeof *ids);
        if (fill) {
            gnpb__pubsub__control_ihave__init(&ih[i]);
            ih[i].topicid = r->ihave[i].topic;
            for (size_t j = 0; j < r->ihave[i].id_cnt; j++) {
                ids[j] = bin(&r->ihave[i].ids[j]);
            }
            ih[i].n_messageids = r->ihave[i].id_cnt;
            ih[i].messageids = ids;
            ihp[i] = &ih[i];
        }
    }
    cv->n_ihave = r->ihave_cnt;
    cv->ihave = ihp;
    Gnpb__Pubsub__ControlIWant *iw = take(a, r->iwant_cnt, sizeof *iw);
    Gnpb__Pubsub__ControlIWant **iwp = take(a, r->iwant_cnt, sizeof *iwp);
    for (size_t i = 0; i < r->iwant_cnt; i++) {
        ProtobufCBinaryData *ids = take(a, r->iwant[i].id_cnt, sizeof *ids);
        if (fill) {
            gnpb__pubsub__control_iwant__init(&iw[i]);
            for (size_t j = 0; j < r->iwant[i].id_cnt; j++) {
                ids[j] = bin(&r->iwant[i].ids[j]);
            }
            iw[i].n_messageids = r->iwant[i].id_cnt;
            iw[i].messageids = ids;
            iwp[i] = &iw[i];
        }
    }
    cv->n_iwant = r->iwant_cnt;
    cv->iwant = iwp;
    Gnpb__Pubsub__ControlGraft *gr = take(a, r->graft_cnt, sizeof *gr);
    Gnpb__Pubsub__ControlGraft **grp = take(a, r->graft_cnt, sizeof *grp);
    for (size_t i = 0; fill && i < r->graft_cnt; i++) {
        gnpb__pubsub__control_graft__init(&gr[i]);
        gr[i].topicid = r->graft[i].topic;
        grp[i] = &gr[i];
    }
    cv->n_graft = r->graft_cnt;
    cv->graft = grp;
    Gnpb__Pubsub__ControlPrune *pr = take(a, r->prune_cnt, sizeof *pr);
    Gnpb__Pubsub__ControlPrune **prp = take(a, r->prune_cnt, sizeof *prp);
    for (size_t i = 0; i < r->prune_cnt; i++) {
        const gni_ps_prune *p = &r->prune[i];
        Gnpb__Pubsub__PeerInfo *px = take(a, p->peer_cnt, sizeof *px);
        Gnpb__Pubsub__PeerInfo **pxp = take(a, p->peer_cnt, sizeof *pxp);
        if (!fill) {
            continue;
        }
        gnpb__pubsub__control_prune__init(&pr[i]);
        pr[i].topicid = p->topic;
        pr[i].has_backoff = p->has_backoff;
        pr[i].backoff = p->backoff_s;
        for (size_t j = 0; j < p->peer_cnt; j++) {
            gnpb__pubsub__peer_info__init(&px[j]);
            /* an empty value is left out, as go's PeerInfo marshalling does */
            px[j].has_peerid = p->peers[j].peer_id.len != 0;
            px[j].peerid = bin(&p->peers[j].peer_id);
            px[j].has_signedpeerrecord = p->peers[j].spr.len != 0;
            px[j].signedpeerrecord = bin(&p->peers[j].spr);
            pxp[j] = &px[j];
        }
        pr[i].n_peers = p->peer_cnt;
        pr[i].peers = pxp;
        prp[i] = &pr[i];
    }
    cv->n_prune = r->prune_cnt;
    cv->prune = prp;
}

/*
 * Checks @r against @lim, builds its protobuf-c view and packs it as a
 * frame into @out (@cap bytes) when @write, else only measures it.
 */
static long rpc_pack(const gni_ps_rpc *r, const gni_ps_limits *lim, bool write, uint8_t *out,
                     size_t cap)
{
    gni_ps_limits l = gni_ps_limits_resolve(lim);
    if (!rpc_ok(r, &l)) {
        return GN_EINVAL;
    }
    view_arena a = {0};
    Gnpb__Pubsub__RPC v;
    Gnpb__Pubsub__ControlMessage cv;
    rpc_view(r, &a, &v, &cv); /* sizes only */
    if (a.used && !(a.base = gn_malloc(a.used))) {
        return GN_ENOMEM;
    }
    a.used = 0;
    rpc_view(r, &a, &v, &cv);
    size_t body = gnpb__pubsub__rpc__get_packed_size(&v);
    size_t n = gn_varint_len(body) + body;
    long rc = (long)n;
    if (body > l.max_rpc_len) {
        rc = GN_ETOOBIG;
    } else if (write && n > cap) {
        rc = GN_ENOSPC;
    } else if (write) {
        int hl = gn_varint_encode(body, out, cap);
        if (hl < 0 || gnpb__pubsub__rpc__pack(&v, out + hl) != body) {
            rc = GN_EINTERNAL;
        }
    }
    gn_free(a.base);
    return rc;
}

long gni_ps_rpc_frame_len(const gni_ps_rpc *r, const gni_ps_limits *lim)
{
    return rpc_pack(r, lim, false, NULL, 0);
}

long gni_ps_rpc_encode(const gni_ps_rpc *r, const gni_ps_limits *lim, uint8_t *out, size_t cap)
{
    if (!out && cap) {
        return GN_EINVAL;
    }
    return rpc_pack(r, lim, true, out, cap);
}

/* ---- the frame splitter ---- */

int gni_ps_splitter_init(gni_ps_splitter *s, size_t max_rpc_len)
{
    if (!s) {
        return GN_EINVAL;
    }
    memset(s, 0, sizeof *s);
    if (max_rpc_len == 0) {
        max_rpc_len = GNI_PS_DEFAULT_MAX_RPC_LEN;
    }
    if (max_rpc_len > GNI_PS_MAX_RPC_LEN_LIMIT) {
        return GN_EINVAL;
    }
    gni_lp_reader_init(&s->rd, max_rpc_len);
    return 0;
}

void gni_ps_splitter_fini(gni_ps_splitter *s)
{
    if (s) {
        gni_lp_reader_clear(&s->rd);
    }
}

static int split_fail(gni_ps_splitter *s, int err, const char *w, const char **why)
{
    gni_lp_reader_clear(&s->rd);
    s->err = err;
    s->why = w;
    set_why(why, w);
    return err;
}

int gni_ps_splitter_feed(gni_ps_splitter *s, const uint8_t *in, size_t len, size_t *consumed,
                         const uint8_t **body, size_t *body_len, const char **why)
{
    set_why(why, NULL);
    if (consumed) {
        *consumed = 0;
    }
    if (!s || !consumed || !body || !body_len || (len && !in)) {
        return GN_EINVAL;
    }
    if (s->err) {
        set_why(why, s->why);
        return s->err;
    }
    *body = NULL;
    *body_len = 0;
    int rc = gni_lp_reader_feed(&s->rd, in, len, consumed, body, body_len);
    switch (rc) {
    case GN_EPARSE:
        return split_fail(s, GN_EBADFRAME, "length prefix not minimal or too long", why);
    case GN_EFRAMESIZE:
        return split_fail(s, GN_EFRAMESIZE, "RPC longer than the bound", why);
    case GN_ENOMEM:
        return split_fail(s, GN_ENOMEM, "out of memory", why);
    default:
        return rc;
    }
}

int gni_ps_splitter_eof(gni_ps_splitter *s)
{
    if (!s) {
        return GN_EINVAL;
    }
    if (s->err) {
        return s->err;
    }
    if (s->rd.done || (!s->rd.in_body && !gni_varint_rd_busy(&s->rd.vr))) {
        return 0;
    }
    return split_fail(s, GN_EPROTO, "stream ended inside a frame", NULL);
}

/* ---- message IDs ---- */

long gni_ps_msg_id_default(const gni_ps_msg *m, uint8_t *out, size_t cap, void *user_data)
{
    (void)user_data;
    if (!m || !out || !m->has_from || !m->has_seqno || m->from.len + m->seqno.len == 0) {
        return GN_EINVAL;
    }
    if (m->from.len + m->seqno.len > cap) {
        return GN_ENOSPC;
    }
    if (m->from.len) {
        memcpy(out, m->from.data, m->from.len);
    }
    if (m->seqno.len) {
        memcpy(out + m->from.len, m->seqno.data, m->seqno.len);
    }
    return (long)(m->from.len + m->seqno.len);
}

long gni_ps_msg_id(gni_ps_msg_id_fn fn, void *user_data, const gni_ps_msg *m, uint8_t *out,
                   size_t cap)
{
    if (!m || !out || cap == 0) {
        return GN_EINVAL;
    }
    long n = (fn ? fn : gni_ps_msg_id_default)(m, out, cap, user_data);
    if (n < 0) {
        return n;
    }
    return (n == 0 || (size_t)n > cap) ? GN_EINVAL : n;
}

/* ---- signing ---- */

#define PREFIX_LEN (sizeof GNI_PS_SIGN_PREFIX - 1)

long gni_ps_msg_signing_bytes(const gni_ps_msg *m, uint8_t *out, size_t cap)
{
    if (!m || !m->topic || (!out && cap) ||
        !unknown_ok(&m->unknown, (size_t)m->has_from + m->has_data + m->has_seqno + 1 +
                                     m->has_signature + m->has_key)) {
        return GN_EINVAL;
    }
    /* a copy of the message without signature and key, unknown fields kept */
    ProtobufCMessageUnknownField uf[6 + GNI_PS_EXTRA_FIELDS];
    Gnpb__Pubsub__Message pm;
    msg_view(m, &pm, uf);
    pm.has_signature = pm.has_key = false;
    size_t n = PREFIX_LEN + gnpb__pubsub__message__get_packed_size(&pm);
    if (!out) {
        return (long)n;
    }
    if (cap < n) {
        return GN_ENOSPC;
    }
    memcpy(out, GNI_PS_SIGN_PREFIX, PREFIX_LEN);
    if (PREFIX_LEN + gnpb__pubsub__message__pack(&pm, out + PREFIX_LEN) != n) {
        return GN_EINTERNAL;
    }
    return (long)n;
}

/* The signing bytes of @m in fresh memory (*@len bytes); NULL: out of memory or no topic. */
static uint8_t *signing_bytes_alloc(const gni_ps_msg *m, size_t *len, int *err)
{
    long n = gni_ps_msg_signing_bytes(m, NULL, 0);
    if (n < 0) {
        *err = (int)n;
        return NULL;
    }
    uint8_t *b = gn_malloc((size_t)n);
    if (!b) {
        *err = GN_ENOMEM;
        return NULL;
    }
    if (gni_ps_msg_signing_bytes(m, b, (size_t)n) != n) {
        gn_free(b);
        *err = GN_EINTERNAL;
        return NULL;
    }
    *len = (size_t)n;
    return b;
}

int gni_ps_msg_sign(gni_ps_msg *m, const gn_identity *id)
{
    if (!m || !id || !m->topic || !m->has_seqno) {
        return GN_EINVAL;
    }
    bytes_free(&m->from);
    bytes_free(&m->key);
    bytes_free(&m->signature);
    m->has_from = m->has_key = m->has_signature = false;
    gn_peer_id pid;
    gn_identity_peer_id(id, &pid);
    int rc = bytes_copy(&m->from, pid.bytes, pid.len);
    if (rc < 0) {
        return rc;
    }
    m->has_from = true;
    if (pid.bytes[0] != 0x00) { /* not an identity multihash: the key goes along */
        uint8_t kb[GN_PUBKEY_MAX_BYTES];
        int kl = gn_identity_encode_public(id, kb, sizeof kb);
        if (kl < 0) {
            rc = kl;
            goto fail;
        }
        if ((rc = bytes_copy(&m->key, kb, (size_t)kl)) < 0) {
            goto fail;
        }
        m->has_key = true;
    }
    size_t sl = 0;
    uint8_t *sb = signing_bytes_alloc(m, &sl, &rc);
    if (!sb) {
        goto fail;
    }
    uint8_t sig[GN_SIG_MAX_BYTES];
    int n = gn_identity_sign_any(id, sb, sl, sig, sizeof sig);
    gn_free(sb);
    if (n < 0) {
        rc = n;
        goto fail;
    }
    if ((rc = bytes_copy(&m->signature, sig, (size_t)n)) < 0) {
        goto fail;
    }
    m->has_signature = true;
    return 0;
fail:
    bytes_free(&m->from);
    bytes_free(&m->key);
    m->has_from = m->has_key = false;
    return rc;
}

static int verify_fail(const char **why, const char *w, int err)
{
    set_why(why, w);
    return err;
}

int gni_ps_msg_verify(const gni_ps_msg *m, gni_ps_sign_policy policy, const char **why)
{
    set_why(why, NULL);
    if (!m) {
        return GN_EINVAL;
    }
    if (policy == GNI_PS_STRICT_NO_SIGN) {
        if (m->has_from) {
            return verify_fail(why, "StrictNoSign: from is present", GN_EPROTO);
        }
        if (m->has_seqno) {
            return verify_fail(why, "StrictNoSign: seqno is present", GN_EPROTO);
        }
        if (m->has_signature) {
            return verify_fail(why, "StrictNoSign: signature is present", GN_EPROTO);
        }
        if (m->has_key) {
            return verify_fail(why, "StrictNoSign: key is present", GN_EPROTO);
        }
        return 0;
    }
    if (policy != GNI_PS_STRICT_SIGN) {
        return GN_EINVAL;
    }
    if (!m->has_from) {
        return verify_fail(why, "StrictSign: from is absent", GN_EPROTO);
    }
    if (!m->has_seqno) {
        return verify_fail(why, "StrictSign: seqno is absent", GN_EPROTO);
    }
    /* a 64-bit big-endian number; js-libp2p's floodsub drops its leading
     * zero bytes (bigIntToBytes), so 1 to 8 bytes are accepted */
    if (m->seqno.len == 0 || m->seqno.len > 8) {
        return verify_fail(why, "StrictSign: seqno is empty or longer than 8 bytes", GN_EPROTO);
    }
    if (!m->has_signature || m->signature.len == 0) {
        return verify_fail(why, "StrictSign: signature is absent", GN_EPROTO);
    }
    gn_peer_id from;
    if (gn_peer_id_from_bytes(m->from.data, m->from.len, &from) < 0) {
        return verify_fail(why, "from is not a valid peer ID", GN_EPROTO);
    }
    const uint8_t *key;
    size_t key_len;
    if (m->has_key) {
        gn_peer_id kid;
        if (m->key.len == 0 || gn_peer_id_from_pubkey(m->key.data, m->key.len, &kid) < 0) {
            return verify_fail(why, "key is not a public key", GN_EBADKEY);
        }
        if (!gn_peer_id_equal(&kid, &from)) {
            return verify_fail(why, "key is not the key of from", GN_EPEERID);
        }
        key = m->key.data;
        key_len = m->key.len;
    } else if (from.bytes[0] == 0x00 && from.len > 2) { /* identity multihash: 00 <len> key */
        key = from.bytes + 2;
        key_len = (size_t)from.len - 2;
    } else {
        return verify_fail(why, "no key field and from does not embed its key", GN_EPROTO);
    }
    int rc = 0;
    size_t sl = 0;
    uint8_t *sb = signing_bytes_alloc(m, &sl, &rc);
    if (!sb) {
        return verify_fail(why, "no topic or out of memory", rc);
    }
    rc = gn_pubkey_verify(key, key_len, sb, sl, m->signature.data, m->signature.len);
    gn_free(sb);
    switch (rc) {
    case 0:
        return 0;
    case GN_EBADSIG:
        return verify_fail(why, "signature does not verify", GN_EBADSIG);
    case GN_ENOMEM:
        return verify_fail(why, "out of memory", GN_ENOMEM);
    default:
        return verify_fail(why, "key is not a valid public key", GN_EBADKEY);
    }
}

/* ---- the seen cache ---- */

typedef struct gni_ps_seen_ent {
    gni_list fifo;
    struct gni_ps_seen_ent *next; /* bucket chain */
    gn_time at;
    uint64_t h;
    size_t len;
    uint8_t id[];
} seen_ent;

static uint64_t seen_hash(const gni_ps_seen *s, const uint8_t *id, size_t len)
{
    uint8_t out[crypto_shorthash_BYTES];
    crypto_shorthash(out, id, len, s->key);
    uint64_t h = 0;
    for (size_t i = 0; i < sizeof out; i++) {
        h = h << 8 | out[i];
    }
    return h;
}

int gni_ps_seen_init(gni_ps_seen *s, size_t max_entries, gn_time ttl, size_t max_id_len,
                     const uint8_t hash_key[16])
{
    if (!s) {
        return GN_EINVAL;
    }
    memset(s, 0, sizeof *s);
    gni_list_init(&s->fifo);
    if (max_entries == 0 || ttl == 0 || !hash_key || max_id_len > GNI_PS_MSG_ID_MAX ||
        max_entries > (SIZE_MAX >> 2) / sizeof(seen_ent *)) {
        return GN_EINVAL;
    }
    /* The table starts small and doubles with the entries (load factor 1),
     * up to the power of two >= max_entries: a node that sees few messages
     * does not hold a table sized for the bound (65536 entries: 512 KiB). */
    size_t nb = 16;
    while (nb < max_entries) {
        nb <<= 1;
    }
    s->max_buckets = nb;
    nb = nb < 64 ? nb : 64;
    s->buckets = gn_calloc(nb, sizeof *s->buckets);
    if (!s->buckets) {
        return GN_ENOMEM;
    }
    s->nbuckets = nb;
    s->max_entries = max_entries;
    s->max_id_len = max_id_len ? max_id_len : GNI_PS_DEFAULT_MAX_ID_LEN;
    s->ttl = ttl;
    memcpy(s->key, hash_key, sizeof s->key);
    return 0;
}

static void seen_remove(gni_ps_seen *s, seen_ent *e)
{
    seen_ent **pp = &s->buckets[e->h & (s->nbuckets - 1)];
    while (*pp && *pp != e) {
        pp = &(*pp)->next;
    }
    if (*pp) {
        *pp = e->next;
    }
    gni_list_del(&e->fifo);
    gn_free(e);
    s->cnt--;
}

void gni_ps_seen_fini(gni_ps_seen *s)
{
    if (!s || !s->buckets) {
        return;
    }
    while (!gni_list_empty(&s->fifo)) {
        seen_ent *e = GNI_CONTAINER_OF(s->fifo.next, seen_ent, fifo);
        gni_list_del(&e->fifo);
        gn_free(e);
    }
    gn_free(s->buckets);
    s->buckets = NULL;
    s->cnt = 0;
}

static gn_time seen_clamp(gni_ps_seen *s, gn_time now)
{
    if (now < s->last_now) {
        return s->last_now;
    }
    s->last_now = now;
    return now;
}

size_t gni_ps_seen_expire(gni_ps_seen *s, gn_time now)
{
    if (!s || !s->buckets) {
        return 0;
    }
    now = seen_clamp(s, now);
    size_t n = 0;
    while (!gni_list_empty(&s->fifo)) {
        seen_ent *e = GNI_CONTAINER_OF(s->fifo.next, seen_ent, fifo);
        if (now - e->at < s->ttl) {
            break;
        }
        seen_remove(s, e);
        n++;
    }
    return n;
}

/* Doubles the bucket table; on allocation failure the old one stays (longer chains, same answers). */
static void seen_grow(gni_ps_seen *s)
{
    size_t nb = s->nbuckets << 1;
    seen_ent **nbk = gn_calloc(nb, sizeof *nbk);
    if (!nbk) {
        return;
    }
    for (gni_list *it = s->fifo.next; it != &s->fifo; it = it->next) {
        seen_ent *e = GNI_CONTAINER_OF(it, seen_ent, fifo);
        seen_ent **b = &nbk[e->h & (nb - 1)];
        e->next = *b;
        *b = e;
    }
    gn_free(s->buckets);
    s->buckets = nbk;
    s->nbuckets = nb;
}

static seen_ent *seen_find(const gni_ps_seen *s, const uint8_t *id, size_t len, uint64_t h)
{
    for (seen_ent *e = s->buckets[h & (s->nbuckets - 1)]; e; e = e->next) {
        if (e->h == h && e->len == len && memcmp(e->id, id, len) == 0) {
            return e;
        }
    }
    return NULL;
}

int gni_ps_seen_add(gni_ps_seen *s, const uint8_t *id, size_t len, gn_time now)
{
    if (!s || !s->buckets || !id || len == 0 || len > s->max_id_len) {
        return GN_EINVAL;
    }
    gni_ps_seen_expire(s, now);
    uint64_t h = seen_hash(s, id, len);
    if (seen_find(s, id, len, h)) {
        return 0;
    }
    seen_ent *e = gn_malloc(sizeof *e + len);
    if (!e) {
        return GN_ENOMEM;
    }
    if (s->cnt >= s->max_entries) {
        seen_remove(s, GNI_CONTAINER_OF(s->fifo.next, seen_ent, fifo));
        s->evicted++;
    }
    memset(e, 0, sizeof *e);
    e->at = s->last_now;
    e->h = h;
    e->len = len;
    memcpy(e->id, id, len);
    seen_ent **b = &s->buckets[h & (s->nbuckets - 1)];
    e->next = *b;
    *b = e;
    gni_list_add_tail(&s->fifo, &e->fifo);
    s->cnt++;
    if (s->cnt > s->nbuckets && s->nbuckets < s->max_buckets) {
        seen_grow(s);
    }
    return 1;
}

bool gni_ps_seen_has(gni_ps_seen *s, const uint8_t *id, size_t len, gn_time now)
{
    if (!s || !s->buckets || !id || len == 0 || len > s->max_id_len) {
        return false;
    }
    gni_ps_seen_expire(s, now);
    return seen_find(s, id, len, seen_hash(s, id, len)) != NULL;
}

gn_time gni_ps_seen_next_expiry(const gni_ps_seen *s)
{
    if (!s || !s->buckets || gni_list_empty(&s->fifo)) {
        return UINT64_MAX;
    }
    const seen_ent *e = GNI_CONTAINER_OF(s->fifo.next, seen_ent, fifo);
    return e->at + s->ttl;
}

size_t gni_ps_seen_count(const gni_ps_seen *s)
{
    return s ? s->cnt : 0;
}
