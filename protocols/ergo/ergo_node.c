/*
 * golemnet - the Ergo node layer (include/golemnet/ergo.h): processes with
 * bounded mailboxes, send and call by PID, name or alias, important
 * delivery, answers; on top of the ergo component's peer interface
 * (ergo_comp.h: whole ENP frames to and from peer nodes by name).
 *
 * No syscalls and no libuv here: the loop's timers (call deadlines, the
 * mailbox drain) and the component are the only outside parts. Design and
 * bounds: docs/ergo-node.md. Spec: ergo-wire.md c "Semantics per flow".
 * Loop thread only.
 */
#include "golemnet/ergo.h"
#include "golemnet/err.h"
#include "golemnet/log.h"
#include "golemnet/loop.h"

#include "edf_int.h"
#include "enp.h"
#include "ergo_comp.h"
#include "ergo_node_int.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define EN_LOG "ergo"
#define EN_FIRST_ID 1001u
#define EN_ALIASES_MAX 64u
#define EN_WAIT_PER_NODE 256u       /* frames waiting for a connection to one node */
#define EN_DRAIN_BUDGET 1024u       /* messages per process per loop turn */
#define EN_VALUE_BYTES_DEFAULT ((size_t)16 << 20)
#define EN_SPARE_ITEMS 4096u         /* items (with their arenas) kept for reuse */
#define EN_SPARE_BYTES ((size_t)4 << 20) /* and the bytes they hold in all (items + arenas) */
#define EN_SPARE_ARENA_MAX (64u << 10) /* only arenas that hold at most this much once reset */
#define EN_SPARE_PENDS 64u            /* pending-call entries kept for reuse */
#define EN_SCRATCH_KEEP ((size_t)1 << 20) /* frame buffers above this are freed after use */

typedef struct en_item en_item;
typedef struct en_pend en_pend;
typedef struct en_wait en_wait;
typedef struct en_sig en_sig;
typedef struct en_sub en_sub;
typedef struct en_event en_event;

/* an event registered on our node */
struct en_event {
    en_event *next;
    char name[GN_ERGO_NAME_MAX + 1];
    uint64_t owner;
    unsigned ncons; /* links + monitors on it */
};

/* a link or monitor target, by kind (GN_ERGO_TO_*): PID id[0], name, alias id[0..2] */
typedef struct en_tgt {
    uint8_t kind;
    char node[GN_ERGO_NAME_MAX + 1];
    char name[GN_ERGO_NAME_MAX + 1];
    uint64_t id[3];
    int64_t creation; /* PID and alias targets; not compared */
} en_tgt;

/* a queued exit or down signal */
struct en_sig {
    en_sig *next;
    gn_ergo_signal_kind kind;
    bool direct;
    en_tgt t;
    char reason[GN_ERGO_NAME_MAX + 1];
};

/* one link or monitor: consumer (cnode, cid) on target t */
struct en_sub {
    en_sub *next;
    bool link;
    en_tgt t;
    char cnode[GN_ERGO_NAME_MAX + 1];
    uint64_t cid;
    uint64_t ref[3]; /* the request's ref (remote targets) */
};

/* one queued message: its own arena holds the decoded value */
struct en_item {
    en_item *next;
    gn_edf_arena *arena;
    gn_edf_value v;
    gn_ergo_msg m;
    size_t bytes; /* charged to the mailbox while queued */
    size_t held;  /* in the spare cache: the bytes it holds (item and arena) */
};

struct gn_ergo_proc {
    gn_ergo_node *en;
    gn_ergo_proc *next;
    uint64_t id;
    gn_ergo_msg_cb cb;
    void *arg;
    uint32_t mailbox_size, max_pending, npending;
    bool keep_order, paused, dead;
    en_item *qh[3], *qt[3]; /* by priority: 0 normal, 1 high, 2 max */
    size_t nq;
    size_t qbytes, mailbox_bytes; /* decoded bytes queued, and their bound */
    char name[GN_ERGO_NAME_MAX + 1]; /* "" = none */
    uint64_t alias[EN_ALIASES_MAX][3];
    unsigned naliases;
    gn_ergo_signal_cb sig_cb;
    void *sig_arg;
    en_sig *sh, *st; /* queued signals */
    size_t nsig;
    unsigned nheld; /* links + monitors this process holds */
    unsigned ncons; /* links + monitors on this process */
    unsigned nevents; /* events it owns */
    void *spawn_tag;  /* ergo_spawn.c: the factory entry that made it, or NULL */
    gn_ergo_compression zset; /* as set (threshold 0 = default) */
    gni_enp_zopts z;          /* the same, for the ENP core */
};

/* an outstanding call or important send, matched by (caller ID, ref) */
struct en_pend {
    en_pend *next;
    gn_ergo_node *en;
    gn_ergo_proc *proc;
    uint64_t ref[3];
    bool call, doomed;
    bool ctl; /* a 199 request (link, monitor): answered by MessageResult, matched by ref */
    bool cancelled; /* unlinked or demonitored before its answer: ends with GN_ECLOSED */
    gn_ergo_result_cb rcb;
    gn_ergo_call_cb ccb;
    void *arg;
    gn_time deadline; /* loop time; the node's one pend_timer watches the earliest */
    bool expired;
    char node[GN_ERGO_NAME_MAX + 1];
};

/* a frame waiting for its node's connection */
struct en_wait {
    en_wait *next;
    char node[GN_ERGO_NAME_MAX + 1];
    uint64_t from;
    bool keep_order;
    bool tracked;     /* a pending entry (from, ref) waits on this frame */
    uint64_t ref[3];
    uint8_t type;     /* the frame's type; inside a compressed one, the inner frame's */
    size_t plain;     /* the frame's length uncompressed (ergo-wire.md c "MaxMessageSize") */
    size_t len;
    uint8_t frame[];
};

struct gn_ergo_node {
    gn_node *n;
    gn_host *h;
    gn_loop *loop;
    gn_ergo_config cfg;
    gn_ergo_node *next_on_loop;
    gn_ergo_proc *procs;
    uint64_t next_id;
    uint64_t ref_seq, ref_hi;
    en_pend *pends;
    gn_timer pend_timer; /* armed at pend_armed: no entry's deadline is earlier */
    gn_time pend_armed;
    en_pend *pend_spare; /* freed entries kept for reuse (at most EN_SPARE_PENDS) */
    unsigned npend_spare;
    en_sub *subs; /* links and monitors */
    en_event *events;
    gn_time mono0; /* loop time at the component's start: event timestamps */
    en_wait *waits, **waits_tail;
    en_item *spare; /* items kept for reuse */
    size_t nspare;
    size_t spare_bytes; /* what the spare items hold: at most EN_SPARE_BYTES */
    size_t qbytes; /* decoded bytes in every mailbox */
    gn_timer drain;
    bool draining, swept;
    uint8_t *scratch; /* frame building */
    size_t scratch_cap;
    uint8_t *zout;    /* a frame compressed; swapped with scratch */
    size_t zout_cap;
    size_t zplain;    /* the last compressed frame's plain length and type */
    uint8_t ztype;
    gn_edf_arena *ans_arena; /* decodes answers (129/130), kept between them */
    uint8_t *zbuf;    /* inflated frames */
    size_t zbuf_cap;
    gni_ergo_tap_fn tap;
    void *tap_ud;
    void *spawn; /* ergo_spawn.c: enabled factories and applications */
};

/* loop-local list of attached nodes, for the component's start hook */
static const int en_loop_key = 0;

/* ---- helpers -------------------------------------------------------------------------- */

static gni_ergo_comp *en_comp(const gn_ergo_node *en) { return gni_ergo_comp_of(en->h); }

static const char *en_self(const gn_ergo_node *en)
{
    gni_ergo_comp *c = en_comp(en);
    return c ? gni_ergo_comp_node(c) : "";
}

static void copy_name(char *dst, const char *src, size_t len)
{
    if (len > GN_ERGO_NAME_MAX)
        len = GN_ERGO_NAME_MAX;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/* copies NUL-terminated @src (at most GN_ERGO_NAME_MAX bytes kept) into @dst */
static void set_name(char dst[GN_ERGO_NAME_MAX + 1], const char *src)
{
    copy_name(dst, src, strlen(src));
}

/* writes @src (NUL-terminated, at most GN_ERGO_NAME_MAX bytes kept) over @dst, a message
 * item's name: zero past its NUL (calloc, then only this), and kept so, as callers compare
 * gn_ergo_pid/gn_ergo_ref bytewise: what a longer previous name left is zeroed (for the
 * same name again, one byte is looked at) */
static void name_over(char dst[GN_ERGO_NAME_MAX + 1], const char *src)
{
    size_t len = strlen(src);
    if (len > GN_ERGO_NAME_MAX)
        len = GN_ERGO_NAME_MAX;
    memcpy(dst, src, len);
    for (size_t i = len; i <= GN_ERGO_NAME_MAX && dst[i]; i++) /* bounded: the array */
        dst[i] = '\0';
}

static bool name_ok(const char *s)
{
    size_t l = s ? strlen(s) : 0;
    return l > 0 && l <= GN_ERGO_NAME_MAX;
}

static gn_ergo_proc *proc_by_id(gn_ergo_node *en, uint64_t id)
{
    for (gn_ergo_proc *p = en->procs; p; p = p->next) /* bounded: the processes */
        if (p->id == id && !p->dead)
            return p;
    return NULL;
}

static gn_ergo_proc *proc_by_name(gn_ergo_node *en, const char *name, size_t len)
{
    if (len == 0 || len > GN_ERGO_NAME_MAX)
        return NULL;
    for (gn_ergo_proc *p = en->procs; p; p = p->next)
        if (!p->dead && strlen(p->name) == len && !memcmp(p->name, name, len))
            return p;
    return NULL;
}

static gn_ergo_proc *proc_by_alias(gn_ergo_node *en, const uint64_t id[3])
{
    for (gn_ergo_proc *p = en->procs; p; p = p->next) {
        if (p->dead)
            continue;
        for (unsigned i = 0; i < p->naliases; i++)
            if (!memcmp(p->alias[i], id, sizeof p->alias[i]))
                return p;
    }
    return NULL;
}

static void new_ref(gn_ergo_node *en, uint64_t id[3])
{
    id[0] = ++en->ref_seq;
    id[1] = en->ref_hi;
    id[2] = 0;
}

static int code_to_err(unsigned code)
{
    switch (code) {
    case GNI_ENP_RC_OK:
        return 0;
    case GNI_ENP_RC_UNKNOWN:
        return GN_ENOTFOUND;
    case GNI_ENP_RC_MAILBOX_FULL:
        return GN_EAGAIN;
    case GNI_ENP_RC_TERMINATED:
        return GN_ECLOSED;
    default:
        return GN_ECALLBACK;
    }
}

static uint8_t err_to_code(int err)
{
    return err == 0                ? GNI_ENP_RC_OK
           : err == GN_EAGAIN      ? GNI_ENP_RC_MAILBOX_FULL
           : err == GN_ECLOSED     ? GNI_ENP_RC_TERMINATED
                                   : GNI_ENP_RC_UNKNOWN;
}

/* ---- mailbox -------------------------------------------------------------------------- */

static void item_free(en_item *it)
{
    if (it) {
        gn_edf_arena_free(it->arena);
        gn_free(it);
    }
}

/* done with @it: kept for reuse (arena reset, its largest chunk kept) while the cache holds
 * fewer than EN_SPARE_ITEMS items and EN_SPARE_BYTES bytes and the arena is small, else
 * freed; a steady stream of small messages allocates nothing */
static void item_recycle(gn_ergo_node *en, en_item *it)
{
    if (!it)
        return;
    if (en->nspare >= EN_SPARE_ITEMS || gn_edf_arena_used(it->arena) > EN_SPARE_ARENA_MAX) {
        item_free(it);
        return;
    }
    gn_edf_arena_reset(it->arena);
    /* the kept chunk, not the bytes used: chunks grow (doubling) beyond what one value took */
    size_t held = gni_edf_arena_held(it->arena);
    if (held > EN_SPARE_ARENA_MAX || en->spare_bytes + sizeof *it + held > EN_SPARE_BYTES) {
        item_free(it);
        return;
    }
    it->held = sizeof *it + held;
    en->spare_bytes += it->held;
    it->next = en->spare;
    en->spare = it;
    en->nspare++;
}

static void drain_cb(gn_timer *t, void *arg);

static void drain_schedule(gn_ergo_node *en)
{
    if (!gn_timer_active(&en->drain))
        gn_timer_start(&en->drain, 0, drain_cb, en);
}

/* whether @it fits @p's mailbox: messages, and bytes as well, since a few hundred
 * compressed bytes can decode to megabytes (an empty mailbox takes any one message) */
static bool mailbox_fits(const gn_ergo_proc *p, const en_item *it)
{
    const gn_ergo_node *en = p->en;
    size_t bytes = gn_edf_arena_used(it->arena);
    size_t node_max = en->cfg.max_queued_bytes ? en->cfg.max_queued_bytes
                                               : GN_ERGO_QUEUED_BYTES_DEFAULT;
    if (p->nq >= p->mailbox_size)
        return false;
    if (p->nq > 0 && (p->qbytes > p->mailbox_bytes || bytes > p->mailbox_bytes - p->qbytes))
        return false;
    return en->qbytes == 0 || (en->qbytes <= node_max && bytes <= node_max - en->qbytes);
}

/* queues @it in @p's mailbox (taking it) or refuses: GN_EAGAIN when full */
static int mailbox_put(gn_ergo_proc *p, en_item *it)
{
    if (!mailbox_fits(p, it))
        return GN_EAGAIN;
    gn_ergo_node *en = p->en;
    size_t bytes = gn_edf_arena_used(it->arena);
    it->bytes = bytes;
    p->qbytes += bytes;
    en->qbytes += bytes;
    unsigned q = it->m.priority <= GN_ERGO_PRIO_MAX ? (unsigned)it->m.priority : 0u;
    it->next = NULL;
    if (p->qt[q])
        p->qt[q]->next = it;
    else
        p->qh[q] = it;
    p->qt[q] = it;
    p->nq++;
    if (!p->paused)
        drain_schedule(p->en);
    return 0;
}

static en_item *mailbox_pop(gn_ergo_proc *p)
{
    for (int q = 2; q >= 0; q--) {
        en_item *it = p->qh[q];
        if (it) {
            p->qh[q] = it->next;
            if (!p->qh[q])
                p->qt[q] = NULL;
            p->nq--;
            p->qbytes -= it->bytes;
            p->en->qbytes -= it->bytes;
            it->bytes = 0;
            return it;
        }
    }
    return NULL;
}

/* a new item: decodes @payload with @dict into the item's own arena */
static int item_new(gn_ergo_node *en, const gn_edf_dict *dict, gn_slice payload, en_item **out)
{
    gni_ergo_comp *c = en_comp(en);
    if (!c)
        return GN_ESTATE;
    en_item *it = en->spare;
    if (it) {
        en->spare = it->next;
        en->nspare--;
        en->spare_bytes -= it->held;
        /* what the previous message set and the next one may not; the names are written
         * over by name_over() on every path that queues a message (a memset of the two
         * 256-byte arrays per message cost more than the decode of a small value) */
        it->next = NULL;
        it->bytes = 0;
        gn_ergo_msg *m = &it->m;
        m->from.id = 0;
        m->from.creation = 0;
        m->priority = GN_ERGO_PRIO_NORMAL;
        m->important = m->call = false;
        m->ref.creation = 0;
        memset(m->ref.id, 0, sizeof m->ref.id);
        m->to_kind = 0;
    } else {
        if (!(it = gn_calloc(1, sizeof *it)))
            return GN_ENOMEM;
        size_t max = en->cfg.max_value_bytes ? en->cfg.max_value_bytes : EN_VALUE_BYTES_DEFAULT;
        /* a first chunk that fits a small message's decoded value (copies included) */
        it->arena = gn_edf_arena_new(payload.len * 2 + 256, max);
        if (!it->arena) {
            gn_free(it);
            return GN_ENOMEM;
        }
    }
    gn_edf_decode_opts o;
    gn_edf_decode_opts_default(&o);
    o.reg = gni_ergo_comp_registry(c);
    o.dict = dict;
    o.flags = GN_EDF_DECODE_COPY;
    int rc = gn_edf_decode(&o, it->arena, payload.base, payload.len, &it->v, NULL, NULL);
    if (rc < 0) {
        item_recycle(en, it);
        return rc;
    }
    it->m.value = &it->v;
    *out = it;
    return 0;
}

/* ---- frames out ------------------------------------------------------------------------ */

static int scratch_reserve(gn_ergo_node *en, size_t len)
{
    if (len <= en->scratch_cap)
        return 0;
    size_t cap = en->scratch_cap ? en->scratch_cap : 1024;
    while (cap < len) /* bounded: doubles up to len */
        cap *= 2;
    uint8_t *b = gn_malloc(cap);
    if (!b)
        return GN_ENOMEM;
    gn_free(en->scratch);
    en->scratch = b;
    en->scratch_cap = cap;
    return 0;
}

/* builds frame @f with @v (NULL: @f->payload as given) encoded with our dictionaries into
 * en->scratch; returns the length or an error */
static long frame_build(gn_ergo_node *en, gni_enp_frame *f, const gn_edf_value *v)
{
    gni_ergo_comp *c = en_comp(en);
    if (!c)
        return GN_ESTATE;
    gn_edf_encode_opts eo = {.dict = gn_edf_registry_dict(gni_ergo_comp_registry(c))};
    size_t plen = f->payload.len;
    if (v) {
        int rc = gn_edf_encoded_len(&eo, v, &plen);
        if (rc < 0)
            return rc == GN_ENOMEM ? rc : GN_EINVAL;
    }
    if (plen > GNI_ENP_MAX_FRAME_LEN - GNI_ENP_HEAD_MAX)
        return GN_ETOOBIG;
    int rc = scratch_reserve(en, plen + GNI_ENP_HEAD_MAX);
    if (rc < 0)
        return rc;
    gn_slice keep = f->payload;
    if (v) /* the head only counts the length; the value is encoded after it */
        f->payload = (gn_slice){en->scratch, plen};
    long hl = gni_enp_build_head(f, en->scratch, en->scratch_cap);
    f->payload = keep;
    if (hl < 0)
        return hl;
    if (v) {
        gn_buf b = {en->scratch + hl, en->scratch + hl, en->scratch + hl, en->scratch + hl + plen};
        if ((rc = gn_edf_encode(&eo, v, &b)) < 0)
            return rc == GN_ENOMEM ? rc : GN_EINVAL;
    } else if (plen) {
        memcpy(en->scratch + hl, keep.base, plen);
    }
    return hl + (long)plen;
}

/* the frame built in en->scratch (@len bytes), compressed by @p's settings when they say
 * so (ergo-wire.md c "Compression"): afterwards en->scratch holds the frame to send;
 * returns its length or an error (GN_ETOOBIG: above @node's MaxMessageSize, compressed or,
 * for 102-106 and 129, not) */
static long frame_compress(gn_ergo_node *en, const gn_ergo_proc *p, const char *node, size_t len)
{
    uint8_t type = en->scratch[7];
    /* a frame that inflates beyond what golemnet receivers take (GNI_ENP_INFLATE_MAX_DEFAULT:
     * they would drop it) goes plain: Ergo accepts plain frames from any sender */
    if (!gni_enp_should_compress(type, len, &p->z) || len > GNI_ENP_INFLATE_MAX_DEFAULT)
        return (long)len;
    size_t cap = gni_enp_compress_bound(len);
    if (cap == SIZE_MAX)
        return GN_ETOOBIG;
    if (cap > en->zout_cap) {
        uint8_t *b = gn_malloc(cap);
        if (!b)
            return GN_ENOMEM;
        gn_free(en->zout);
        en->zout = b;
        en->zout_cap = cap;
    }
    long zl = gni_enp_compress(en->scratch, len, p->z.method, p->z.level, en->zout, en->zout_cap);
    if (zl < 0)
        return zl == GN_ENOMEM || zl == GN_ETOOBIG ? zl : GN_EINVAL;
    gni_ergo_comp *c = node ? en_comp(en) : NULL; /* @node NULL: the caller checks */
    gni_ergo_peer *peer = c ? gni_ergo_comp_find(c, node) : NULL;
    uint64_t max = peer ? gni_ergo_peer_get_info(peer)->max_message_size : 0;
    if (gni_enp_check_send_size(type, len, (size_t)zl,
                                max > UINT32_MAX ? UINT32_MAX : (uint32_t)max) < 0)
        return GN_ETOOBIG;
    uint8_t *t = en->scratch;
    size_t tc = en->scratch_cap;
    en->scratch = en->zout;
    en->scratch_cap = en->zout_cap;
    en->zout = t;
    en->zout_cap = tc;
    en->zplain = len;
    en->ztype = type;
    return zl;
}

/* after a frame went out: frame buffers grown for a large one are freed, so a single
 * large message does not keep two (or three, with zbuf) buffers of its size for good */
static void scratch_trim(gn_ergo_node *en)
{
    if (en->scratch_cap > EN_SCRATCH_KEEP) {
        gn_free(en->scratch);
        en->scratch = NULL;
        en->scratch_cap = 0;
    }
    if (en->zout_cap > EN_SCRATCH_KEEP) {
        gn_free(en->zout);
        en->zout = NULL;
        en->zout_cap = 0;
    }
}

/* the id of @name in the atom cache our Introduce announced (true), as Ergo looks a name
 * up before writing it inline: 103/106/123/183/186 carry the id instead */
static bool name_atom(const gn_ergo_node *en, const char *name, size_t len, uint16_t *id)
{
    gni_ergo_comp *c = en_comp(en);
    return c && gn_edf_dict_find_id(gn_edf_registry_dict(gni_ergo_comp_registry(c)),
                                    GN_EDF_DICT_ATOM, name, len, id) == 0;
}

static int wait_count(const gn_ergo_node *en, const char *node)
{
    int n = 0;
    for (en_wait *w = en->waits; w; w = w->next)
        if (!strcmp(w->node, node))
            n++;
    return n;
}

/* sends the built frame (en->scratch, @len) to @node: now when it is up, else after
 * connecting by name; @ref (NULL: none) names the pending entry of process @from that
 * waits on the frame, ended at once if the carrier refuses the frame when the node comes
 * up */
static int frame_send_ref(gn_ergo_node *en, const char *node, uint64_t from, bool keep_order,
                          size_t len, const uint64_t *ref)
{
    gni_ergo_comp *c = en_comp(en);
    if (!c)
        return GN_ESTATE;
    if (en->tap)
        en->tap(en->tap_ud, true, node, en->scratch, len);
    gni_ergo_peer *peer = gni_ergo_comp_find(c, node);
    if (peer)
        return gni_ergo_peer_send(peer, from, keep_order, en->scratch, len);
    int waiting = wait_count(en, node);
    if (waiting >= (int)EN_WAIT_PER_NODE)
        return GN_EAGAIN;
    if (waiting == 0) {
        if (!gni_ergo_comp_endpoint(c))
            return GN_ENOTSUP; /* channels only: connect with gn_ergo_connect_peer */
        int rc = gni_ergo_comp_connect(c, node);
        if (rc < 0 && rc != GN_EEXIST)
            return rc;
    }
    en_wait *w = gn_malloc(sizeof *w + len);
    if (!w)
        return GN_ENOMEM;
    w->next = NULL;
    set_name(w->node, node);
    w->from = from;
    w->keep_order = keep_order;
    w->tracked = ref != NULL;
    if (ref)
        memcpy(w->ref, ref, sizeof w->ref);
    else
        memset(w->ref, 0, sizeof w->ref);
    bool zipped = en->scratch[7] == GNI_ENP_COMPRESSED; /* only frame_compress makes one */
    w->type = zipped ? en->ztype : en->scratch[7];
    w->plain = zipped ? en->zplain : len;
    w->len = len;
    memcpy(w->frame, en->scratch, len);
    *en->waits_tail = w;
    en->waits_tail = &w->next;
    return 0;
}

static int frame_send(gn_ergo_node *en, const char *node, uint64_t from, bool keep_order,
                      size_t len)
{
    return frame_send_ref(en, node, from, keep_order, len, NULL);
}

static en_pend *pend_find(gn_ergo_node *en, uint64_t caller, const uint64_t ref[3]);
static void pend_finish(en_pend *pd, int status, const gn_edf_value *reply, const char *text);

/* a waiting frame the carrier refused when its node came up */
typedef struct en_refused {
    uint64_t from, ref[3];
    int err;
} en_refused;

/* takes the waits of @node off the list, in order: each is sent through @c (NULL: dropped)
 * and freed; an important send or call whose frame the carrier refuses (GN_ETOOBIG above
 * the peer's MaxMessageSize, GN_EAGAIN with its queue full) ends at once with that error;
 * so does one whose frame went compressed while its plain size is above the peer's
 * MaxMessageSize, for the types Ergo checks both sizes of (102-106, 129) */
static void waits_take(gn_ergo_node *en, const char *node, gni_ergo_comp *c)
{
    en_refused refused[EN_WAIT_PER_NODE];
    unsigned nref = 0;
    en_wait **pp = &en->waits;
    while (*pp) { /* bounded: the waiting frames */
        en_wait *w = *pp;
        if (strcmp(w->node, node) != 0) {
            pp = &w->next;
            continue;
        }
        *pp = w->next;
        if (c) {
            gni_ergo_peer *peer = gni_ergo_comp_find(c, node);
            uint64_t max = peer ? gni_ergo_peer_get_info(peer)->max_message_size : 0;
            int rc = gni_enp_check_send_size(w->type, w->plain, w->len,
                                             max > UINT32_MAX ? UINT32_MAX : (uint32_t)max);
            if (rc == 0)
                rc = gni_ergo_comp_send(c, node, w->from, w->keep_order, w->frame, w->len);
            if (rc < 0)
                GN_LOG(GN_LOG_WARNING, EN_LOG, "%s: a waiting frame was not sent: %s", node,
                       gn_err_name(rc));
            if (rc < 0 && w->tracked && nref < EN_WAIT_PER_NODE) {
                refused[nref].from = w->from;
                memcpy(refused[nref].ref, w->ref, sizeof w->ref);
                refused[nref++].err = rc;
            }
        }
        gn_free(w);
    }
    en->waits_tail = &en->waits;
    for (en_wait *w = en->waits; w; w = w->next)
        en->waits_tail = &w->next;
    /* after the list is whole again: a callback may send (and queue frames) */
    for (unsigned i = 0; i < nref; i++) { /* bounded: the node's waiting frames */
        en_pend *pd = pend_find(en, refused[i].from, refused[i].ref);
        if (pd)
            pend_finish(pd, refused[i].err, NULL, NULL);
    }
}

/* 130 to @node: @code for caller @to, ref @ref, from @from, order byte 0 */
static void send_code(gn_ergo_node *en, const char *node, uint64_t from, uint64_t to,
                      const uint64_t ref[3], uint8_t code)
{
    gni_enp_frame f;
    memset(&f, 0, sizeof f);
    f.type = GNI_ENP_RESPONSE_ERROR;
    f.from = from;
    f.to = to;
    memcpy(f.ref, ref, sizeof f.ref);
    f.code = code;
    long len = frame_build(en, &f, NULL);
    gni_ergo_comp *c = en_comp(en);
    /* only on the connection the message came in on: an answer never reconnects */
    if (len > 0 && c && gni_ergo_comp_find(c, node)) {
        if (en->tap)
            en->tap(en->tap_ud, true, node, en->scratch, (size_t)len);
        int rc = gni_ergo_comp_send(c, node, from, false, en->scratch, (size_t)len);
        if (rc < 0)
            GN_LOG(GN_LOG_DEBUG, EN_LOG, "%s: answer code %u not sent: %s", node, code,
                   gn_err_name(rc));
    }
}

/* ---- pending calls and important sends ------------------------------------------------- */

/* frees an unlinked entry, or keeps it for the next call */
static void pend_release(gn_ergo_node *en, en_pend *pd)
{
    if (en->npend_spare < EN_SPARE_PENDS) {
        pd->next = en->pend_spare;
        en->pend_spare = pd;
        en->npend_spare++;
    } else {
        gn_free(pd);
    }
}

static void pend_unlink(en_pend *pd)
{
    gn_ergo_node *en = pd->en;
    for (en_pend **pp = &en->pends; *pp; pp = &(*pp)->next)
        if (*pp == pd) {
            *pp = pd->next;
            break;
        }
    if (pd->proc && pd->proc->npending)
        pd->proc->npending--;
}

static void sub_drop_ref(gn_ergo_node *en, const uint64_t ref[3]);

static void pend_finish(en_pend *pd, int status, const gn_edf_value *reply, const char *text)
{
    pend_unlink(pd);
    if (pd->cancelled) /* whatever the answer was, the caller dropped the request */
        status = GN_ECLOSED;
    if (pd->ctl && status != 0) /* the link or monitor was refused or never confirmed */
        sub_drop_ref(pd->en, pd->ref);
    if (pd->call) {
        if (pd->ccb)
            pd->ccb(pd->arg, status, status == 0 ? reply : NULL, text);
    } else if (pd->rcb) {
        pd->rcb(pd->arg, status, text);
    }
    pend_release(pd->en, pd);
}

static void pend_timer_cb(gn_timer *t, void *arg);

/* arms the node's deadline timer for a new earliest deadline @at (one timer for every
 * pending entry: a call costs no timer operation while its deadline is not the earliest) */
static void pend_timer_arm(gn_ergo_node *en, gn_time at)
{
    if (gn_timer_active(&en->pend_timer) && en->pend_armed <= at)
        return;
    gn_time now = gn_loop_now(en->loop);
    en->pend_armed = at;
    (void)gn_timer_start(&en->pend_timer, at > now ? at - now : 0, pend_timer_cb, en);
}

/* the deadline timer: entries whose deadline passed end with GN_ETIMEDOUT; then the timer
 * is armed at the earliest deadline left. Entries that end otherwise leave it armed (it may
 * fire once with nothing to do): stopping and re-arming it per call is what it saves */
static void pend_timer_cb(gn_timer *t, void *arg)
{
    (void)t;
    gn_ergo_node *en = arg;
    gn_time now = gn_loop_now(en->loop);
    /* mark first: a callback may add entries, which are not ended here */
    for (en_pend *pd = en->pends; pd; pd = pd->next)
        pd->expired = pd->deadline <= now;
    for (;;) { /* one expired entry per pass (a callback may change the list); bounded */
        /* the earliest deadline first, and among equal ones the oldest: the list is newest
         * first, so the last match wins a tie */
        en_pend *next = NULL;
        for (en_pend *pd = en->pends; pd; pd = pd->next)
            if (pd->expired && (!next || pd->deadline <= next->deadline))
                next = pd;
        if (!next)
            break;
        pend_finish(next, GN_ETIMEDOUT, NULL, NULL);
    }
    gn_time first = GN_TIME_INFINITY;
    for (en_pend *pd = en->pends; pd; pd = pd->next)
        if (pd->deadline < first)
            first = pd->deadline;
    if (first != GN_TIME_INFINITY) /* entries without a bound need no timer */
        pend_timer_arm(en, first);
}

static en_pend *pend_find(gn_ergo_node *en, uint64_t caller, const uint64_t ref[3])
{
    for (en_pend *pd = en->pends; pd; pd = pd->next)
        if (pd->proc && pd->proc->id == caller && !memcmp(pd->ref, ref, sizeof pd->ref))
            return pd;
    return NULL;
}

static en_pend *pend_new(gn_ergo_proc *p, const char *node, bool call, gn_time timeout)
{
    gn_ergo_node *en = p->en;
    en_pend *pd = en->pend_spare;
    if (pd) {
        en->pend_spare = pd->next;
        en->npend_spare--;
        memset(pd, 0, offsetof(en_pend, node));
        pd->node[0] = '\0';
    } else if (!(pd = gn_calloc(1, sizeof *pd))) {
        return NULL;
    }
    pd->en = en;
    pd->proc = p;
    pd->call = call;
    set_name(pd->node, node);
    /* saturated: GN_TIME_INFINITY (or anything that would pass it) is no bound at all */
    gn_time now = gn_loop_now(en->loop), d = timeout ? timeout : GN_ERGO_TIMEOUT_DEFAULT;
    pd->deadline = d >= GN_TIME_INFINITY - now ? GN_TIME_INFINITY : now + d;
    if (pd->deadline != GN_TIME_INFINITY)
        pend_timer_arm(en, pd->deadline);
    pd->next = en->pends;
    en->pends = pd;
    p->npending++;
    return pd;
}

/* ends every pending entry towards @node with @err (connection lost, connect failed) */
static void pends_fail_node(gn_ergo_node *en, const char *node, int err)
{
    /* mark first: a callback may add entries for @node, which are not ended here */
    for (en_pend *pd = en->pends; pd; pd = pd->next)
        pd->doomed = !strcmp(pd->node, node);
    bool again = true;
    while (again) { /* restart after each callback: it may change the list; bounded */
        again = false;
        for (en_pend *pd = en->pends; pd; pd = pd->next)
            if (pd->doomed) {
                pend_finish(pd, err, NULL, NULL);
                again = true;
                break;
            }
    }
}

/* ---- delivery --------------------------------------------------------------------------- */

static void drain_sweep(gn_ergo_node *en);
static void tgt_to_target(const en_tgt *t, gn_ergo_target *out);

static void drain_cb(gn_timer *t, void *arg)
{
    (void)t;
    gn_ergo_node *en = arg;
    bool more = false;
    en->draining = true;
    for (gn_ergo_proc *p = en->procs; p; p = p->next) { /* bounded: processes x budget */
        for (unsigned i = 0; i < EN_DRAIN_BUDGET && !p->dead && !p->paused && p->sh; i++) {
            en_sig *sg = p->sh; /* signals first, as Ergo's urgent queue */
            p->sh = sg->next;
            if (!p->sh)
                p->st = NULL;
            p->nsig--;
            if (p->sig_cb) {
                gn_ergo_signal s = {.kind = sg->kind, .direct = sg->direct,
                                    .reason = sg->reason};
                tgt_to_target(&sg->t, &s.target);
                p->sig_cb(p, p->sig_arg, &s);
            }
            gn_free(sg);
        }
        for (unsigned i = 0; i < EN_DRAIN_BUDGET && !p->dead && !p->paused; i++) {
            en_item *it = mailbox_pop(p);
            if (!it)
                break;
            p->cb(p, p->arg, &it->m);
            item_recycle(en, it);
        }
        if (!p->dead && !p->paused && (p->nq || p->sh))
            more = true;
    }
    en->draining = false;
    drain_sweep(en);
    if (more)
        drain_schedule(en);
}

static void proc_release(gn_ergo_proc *p)
{
    gn_ergo_node *en = p->en;
    /* queued messages are dropped (important senders were told "delivered" on arrival) */
    for (en_item *it = mailbox_pop(p); it; it = mailbox_pop(p))
        item_recycle(en, it);
    while (p->sh) { /* bounded: the queued signals */
        en_sig *sg = p->sh;
        p->sh = sg->next;
        gn_free(sg);
    }
    p->st = NULL;
    p->nsig = 0;
    for (en_pend **pp = &en->pends; *pp;) {
        en_pend *pd = *pp;
        if (pd->proc == p) {
            *pp = pd->next;
            pend_release(en, pd);
        } else {
            pp = &pd->next;
        }
    }
    p->npending = 0;
}

static void drain_sweep(gn_ergo_node *en)
{
    for (gn_ergo_proc **pp = &en->procs; *pp;) {
        gn_ergo_proc *p = *pp;
        if (p->dead) {
            *pp = p->next;
            gn_free(p);
        } else {
            pp = &p->next;
        }
    }
}

/* the local process a target names, or NULL */
static gn_ergo_proc *resolve_local(gn_ergo_node *en, const gn_ergo_target *to)
{
    switch (to->kind) {
    case GN_ERGO_TO_PID:
        return proc_by_id(en, to->pid.id);
    case GN_ERGO_TO_NAME:
        return proc_by_name(en, to->name, strlen(to->name));
    case GN_ERGO_TO_ALIAS:
        return proc_by_alias(en, to->alias.id);
    case GN_ERGO_TO_EVENT:
        return NULL;
    }
    return NULL;
}

static const char *target_node(const gn_ergo_target *to)
{
    switch (to->kind) {
    case GN_ERGO_TO_PID:
        return to->pid.node;
    case GN_ERGO_TO_NAME:
        return to->node;
    case GN_ERGO_TO_ALIAS:
        return to->alias.node;
    case GN_ERGO_TO_EVENT:
        return to->node;
    }
    return "";
}

/* ---- links, monitors, signals ------------------------------------------------------------ */

static void tgt_from_target(const gn_ergo_target *to, en_tgt *t)
{
    memset(t, 0, sizeof *t);
    t->kind = (uint8_t)to->kind;
    set_name(t->node, target_node(to));
    switch (to->kind) {
    case GN_ERGO_TO_PID:
        t->id[0] = to->pid.id;
        t->creation = to->pid.creation;
        break;
    case GN_ERGO_TO_NAME:
    case GN_ERGO_TO_EVENT:
        set_name(t->name, to->name);
        break;
    case GN_ERGO_TO_ALIAS:
        memcpy(t->id, to->alias.id, sizeof t->id);
        t->creation = to->alias.creation;
        break;
    }
}

static void tgt_to_target(const en_tgt *t, gn_ergo_target *out)
{
    memset(out, 0, sizeof *out);
    out->kind = (gn_ergo_target_kind)t->kind;
    switch (t->kind) {
    case GN_ERGO_TO_PID:
        set_name(out->pid.node, t->node);
        out->pid.id = t->id[0];
        out->pid.creation = t->creation;
        break;
    case GN_ERGO_TO_NAME:
    case GN_ERGO_TO_EVENT:
        set_name(out->node, t->node);
        set_name(out->name, t->name);
        break;
    case GN_ERGO_TO_ALIAS:
        set_name(out->alias.node, t->node);
        memcpy(out->alias.id, t->id, sizeof t->id);
        out->alias.creation = t->creation;
        break;
    }
}

static bool tgt_eq(const en_tgt *a, const en_tgt *b)
{
    if (a->kind != b->kind || strcmp(a->node, b->node) != 0)
        return false;
    switch (a->kind) {
    case GN_ERGO_TO_PID:
        return a->id[0] == b->id[0];
    case GN_ERGO_TO_NAME:
    case GN_ERGO_TO_EVENT:
        return !strcmp(a->name, b->name);
    default:
        return !memcmp(a->id, b->id, sizeof a->id);
    }
}

static en_event *event_find(gn_ergo_node *en, const char *name)
{
    for (en_event *ev = en->events; ev; ev = ev->next) /* bounded: the events */
        if (!strcmp(ev->name, name))
            return ev;
    return NULL;
}

static gn_ergo_proc *tgt_resolve_local(gn_ergo_node *en, const en_tgt *t)
{
    gn_ergo_target to;
    tgt_to_target(t, &to);
    return resolve_local(en, &to);
}

/* queues a signal for @p; GN_EAGAIN when its signal queue is full */
static int sig_queue(gn_ergo_proc *p, gn_ergo_signal_kind kind, bool direct, const en_tgt *t,
                     const char *reason, size_t rlen)
{
    if (p->dead)
        return GN_ENOTFOUND;
    if (p->nsig >= GN_ERGO_LINKS_MAX + (size_t)p->mailbox_size)
        return GN_EAGAIN;
    en_sig *sg = gn_calloc(1, sizeof *sg);
    if (!sg)
        return GN_ENOMEM;
    sg->kind = kind;
    sg->direct = direct;
    sg->t = *t;
    copy_name(sg->reason, reason, rlen);
    if (p->st)
        p->st->next = sg;
    else
        p->sh = sg;
    p->st = sg;
    p->nsig++;
    if (!p->paused)
        drain_schedule(p->en);
    return 0;
}

/* sends the frame built in en->scratch only over an existing connection (no reconnect) */
static int send_connected(gn_ergo_node *en, const char *node, uint64_t from, bool keep_order,
                          size_t len)
{
    gni_ergo_comp *c = en_comp(en);
    if (!c || !gni_ergo_comp_find(c, node))
        return GN_ENOTFOUND;
    if (en->tap)
        en->tap(en->tap_ud, true, node, en->scratch, len);
    return gni_ergo_comp_send(c, node, from, keep_order, en->scratch, len);
}

/* TerminatePID/Name/Alias (181/182/184) for local target @t to @node */
static void term_send(gn_ergo_node *en, const char *node, const en_tgt *t, const char *reason)
{
    gni_enp_frame f;
    memset(&f, 0, sizeof f);
    f.flags = 1; /* the priority byte Ergo writes */
    switch (t->kind) {
    case GN_ERGO_TO_PID:
        f.type = GNI_ENP_TERM_PID;
        f.to = t->id[0];
        break;
    case GN_ERGO_TO_NAME:
    case GN_ERGO_TO_EVENT: {
        bool nm = t->kind == GN_ERGO_TO_NAME;
        size_t tl = strlen(t->name);
        if (name_atom(en, t->name, tl, &f.atom_id)) { /* 183/186, as Ergo */
            f.type = nm ? GNI_ENP_TERM_NAME_CACHE : GNI_ENP_TERM_EVENT_CACHE;
        } else {
            f.type = nm ? GNI_ENP_TERM_NAME : GNI_ENP_TERM_EVENT;
            f.name = (gn_slice){(const uint8_t *)t->name, tl};
        }
        break;
    }
    default:
        f.type = GNI_ENP_TERM_ALIAS;
        memcpy(f.alias, t->id, sizeof f.alias);
        break;
    }
    gn_edf_value ev;
    gn_edf_set_error(&ev, reason, strlen(reason));
    long len = frame_build(en, &f, &ev);
    int rc = len < 0 ? (int)len : send_connected(en, node, 0, false, (size_t)len);
    if (rc < 0)
        GN_LOG(GN_LOG_DEBUG, EN_LOG, "%s: %s not sent: %s", node, gni_enp_type_name(f.type),
               gn_err_name(rc));
}

static void sub_release(gn_ergo_node *en, en_sub *sb)
{
    if (!strcmp(sb->cnode, en_self(en))) {
        gn_ergo_proc *cp = proc_by_id(en, sb->cid);
        if (cp && cp->nheld)
            cp->nheld--;
    }
    if (!strcmp(sb->t.node, en_self(en))) {
        gn_ergo_proc *tp = tgt_resolve_local(en, &sb->t);
        en_event *ev = sb->t.kind == GN_ERGO_TO_EVENT ? event_find(en, sb->t.name) : NULL;
        if (tp && tp->ncons)
            tp->ncons--;
        if (ev && ev->ncons)
            ev->ncons--;
    }
}

enum { EN_ON_PID = 1, EN_ON_NAME = 2, EN_ON_ALIAS = 4 };

/* does link/monitor @sb target local process @p (by the ways in @what; @alias NULL = any)? */
static bool sub_on(const gn_ergo_node *en, const en_sub *sb, const gn_ergo_proc *p, unsigned what,
                   const uint64_t *alias)
{
    if (strcmp(sb->t.node, en_self(en)) != 0)
        return false;
    switch (sb->t.kind) {
    case GN_ERGO_TO_PID:
        return (what & EN_ON_PID) && sb->t.id[0] == p->id;
    case GN_ERGO_TO_NAME:
        return (what & EN_ON_NAME) && p->name[0] && !strcmp(sb->t.name, p->name);
    case GN_ERGO_TO_EVENT:
        return false;
    default:
        if (!(what & EN_ON_ALIAS))
            return false;
        if (alias)
            return !memcmp(alias, sb->t.id, sizeof sb->t.id);
        for (unsigned i = 0; i < p->naliases; i++)
            if (!memcmp(p->alias[i], sb->t.id, sizeof sb->t.id))
                return true;
        return false;
    }
}

/* the links and monitors on local process @p (by @what, @alias) fire with @reason: local
 * consumers get a signal, every remote node holding some gets one termination frame per
 * target; the entries go */
static void fire_local(gn_ergo_node *en, gn_ergo_proc *p, unsigned what, const uint64_t *alias,
                       const char *reason, const char *event)
{
    en_sub *fired = NULL, **ft = &fired;
    for (en_sub **pp = &en->subs; *pp;) { /* bounded: the entries */
        en_sub *sb = *pp;
        bool on = event ? sb->t.kind == GN_ERGO_TO_EVENT && !strcmp(sb->t.name, event) &&
                              !strcmp(sb->t.node, en_self(en))
                        : sub_on(en, sb, p, what, alias);
        if (on) {
            *pp = sb->next;
            sb->next = NULL;
            *ft = sb;
            ft = &sb->next;
        } else {
            pp = &sb->next;
        }
    }
    const char *self = en_self(en);
    for (en_sub *sb = fired; sb; sb = sb->next) {
        if (!event && p->ncons)
            p->ncons--;
        if (!strcmp(sb->cnode, self)) {
            gn_ergo_proc *cp = proc_by_id(en, sb->cid);
            if (cp && cp->nheld)
                cp->nheld--;
            if (cp && (event || cp != p))
                (void)sig_queue(cp, sb->link ? GN_ERGO_SIG_EXIT : GN_ERGO_SIG_DOWN, false,
                                &sb->t, reason, strlen(reason));
            continue;
        }
        bool sent = false; /* once per remote node and target */
        for (en_sub *o = fired; o != sb && !sent; o = o->next)
            sent = !strcmp(o->cnode, sb->cnode) && tgt_eq(&o->t, &sb->t);
        if (!sent)
            term_send(en, sb->cnode, &sb->t, reason);
    }
    while (fired) {
        en_sub *sb = fired;
        fired = sb->next;
        gn_free(sb);
    }
}

static int any_request(gn_ergo_node *en, gn_ergo_proc *src, enum gni_enp_any_kind kind,
                       const en_tgt *t, const uint64_t ref[3]);
static enum gni_enp_any_kind any_kind(uint8_t tkind, bool link, bool un);

/* drops the links and monitors local process @p holds; a connected remote node is told
 * (Unlink/Demonitor, the answer not waited for), so its tables do not fill with entries of
 * processes that are gone */
static void drop_held(gn_ergo_node *en, gn_ergo_proc *p)
{
    const char *self = en_self(en);
    gni_ergo_comp *c = en_comp(en);
    for (en_sub **pp = &en->subs; *pp;) {
        en_sub *sb = *pp;
        if (sb->cid == p->id && !strcmp(sb->cnode, self)) {
            *pp = sb->next;
            if (strcmp(sb->t.node, self) != 0 && c && gni_ergo_comp_find(c, sb->t.node)) {
                uint64_t ref[3];
                new_ref(en, ref);
                (void)any_request(en, p, any_kind(sb->t.kind, sb->link, true), &sb->t, ref);
            }
            sub_release(en, sb);
            gn_free(sb);
        } else {
            pp = &sb->next;
        }
    }
    p->nheld = 0;
}

/* remote target(s) on @node terminated (@t NULL: all of them, the connection is lost):
 * local consumers get their signal; with @t NULL also the remote consumers of @node go */
static void fire_remote(gn_ergo_node *en, const char *node, const en_tgt *t, const char *reason)
{
    const char *self = en_self(en);
    for (en_sub **pp = &en->subs; *pp;) { /* bounded: the entries */
        en_sub *sb = *pp;
        bool ours = !strcmp(sb->cnode, self);
        bool hit = ours && !strcmp(sb->t.node, node) && (!t || tgt_eq(t, &sb->t));
        bool gone = !t && !ours && !strcmp(sb->cnode, node);
        if (!hit && !gone) {
            pp = &sb->next;
            continue;
        }
        *pp = sb->next;
        sub_release(en, sb);
        if (hit) {
            gn_ergo_proc *cp = proc_by_id(en, sb->cid);
            if (cp)
                (void)sig_queue(cp, sb->link ? GN_ERGO_SIG_EXIT : GN_ERGO_SIG_DOWN, false,
                                &sb->t, reason, strlen(reason));
        }
        gn_free(sb);
    }
}

static void sub_drop_ref(gn_ergo_node *en, const uint64_t ref[3])
{
    const char *self = en_self(en);
    for (en_sub **pp = &en->subs; *pp; pp = &(*pp)->next) {
        en_sub *sb = *pp;
        if (!strcmp(sb->cnode, self) && !memcmp(sb->ref, ref, sizeof sb->ref)) {
            *pp = sb->next;
            sub_release(en, sb);
            gn_free(sb);
            return;
        }
    }
}

static en_sub *sub_find(gn_ergo_node *en, const char *cnode, uint64_t cid, bool link,
                        const en_tgt *t, en_sub ***where)
{
    for (en_sub **pp = &en->subs; *pp; pp = &(*pp)->next) {
        en_sub *sb = *pp;
        if (sb->cid == cid && sb->link == link && !strcmp(sb->cnode, cnode) &&
            tgt_eq(&sb->t, t)) {
            if (where)
                *where = pp;
            return sb;
        }
    }
    return NULL;
}

/* the 199 request kind for a target kind */
static enum gni_enp_any_kind any_kind(uint8_t tkind, bool link, bool un)
{
    static const enum gni_enp_any_kind k[4][4] = {
        {GNI_ENP_ANY_LINK_PID, GNI_ENP_ANY_UNLINK_PID, GNI_ENP_ANY_MONITOR_PID,
         GNI_ENP_ANY_DEMONITOR_PID},
        {GNI_ENP_ANY_LINK_PROCESSID, GNI_ENP_ANY_UNLINK_PROCESSID,
         GNI_ENP_ANY_MONITOR_PROCESSID, GNI_ENP_ANY_DEMONITOR_PROCESSID},
        {GNI_ENP_ANY_LINK_ALIAS, GNI_ENP_ANY_UNLINK_ALIAS, GNI_ENP_ANY_MONITOR_ALIAS,
         GNI_ENP_ANY_DEMONITOR_ALIAS},
        {GNI_ENP_ANY_LINK_EVENT, GNI_ENP_ANY_UNLINK_EVENT, GNI_ENP_ANY_MONITOR_EVENT,
         GNI_ENP_ANY_DEMONITOR_EVENT},
    };
    unsigned row = tkind == GN_ERGO_TO_PID    ? 0u
                   : tkind == GN_ERGO_TO_NAME ? 1u
                   : tkind == GN_ERGO_TO_EVENT ? 3u
                                               : 2u;
    return k[row][(link ? 0u : 2u) + (un ? 1u : 0u)];
}

static gn_edf_arena *en_arena(const gn_ergo_node *en)
{
    return gn_edf_arena_new(1024, en->cfg.max_value_bytes ? en->cfg.max_value_bytes
                                                          : EN_VALUE_BYTES_DEFAULT);
}

/* builds a 199 frame of registered struct @kind into en->scratch: @fill sets its fields */
static long any_build(gn_ergo_node *en, enum gni_enp_any_kind kind, uint8_t order,
                      gn_edf_arena *a, gn_edf_value *v)
{
    gni_ergo_comp *c = en_comp(en);
    const char *tn = gni_enp_any_type_name(kind);
    const gn_edf_type *ty = c && tn ? gn_edf_registry_find(gni_ergo_comp_registry(c), tn,
                                                           strlen(tn))
                                    : NULL;
    if (!ty)
        return GN_ENOTSUP;
    int rc = gn_edf_set_composite(v, a, ty, 0);
    if (rc < 0)
        return rc;
    (void)order;
    return 0;
}

/* a link/monitor request (or its undoing) from @src for remote target @t, ref @ref */
static int any_request(gn_ergo_node *en, gn_ergo_proc *src, enum gni_enp_any_kind kind,
                       const en_tgt *t, const uint64_t ref[3])
{
    gn_edf_arena *a = en_arena(en);
    if (!a)
        return GN_ENOMEM;
    gn_edf_value v;
    long rc = any_build(en, kind, 0, a, &v);
    if (rc == 0) {
        gn_edf_value *it = gn_edf_items(&v);
        const char *self = en_self(en);
        int64_t cr = gn_ergo_node_creation(en);
        gn_edf_set_pid(&it[0], self, strlen(self), src->id, cr);
        switch (t->kind) {
        case GN_ERGO_TO_PID:
            gn_edf_set_pid(&it[1], t->node, strlen(t->node), t->id[0], t->creation);
            break;
        case GN_ERGO_TO_NAME:
            gn_edf_set_processid(&it[1], t->node, strlen(t->node), t->name, strlen(t->name));
            break;
        case GN_ERGO_TO_EVENT:
            gn_edf_set_event(&it[1], t->node, strlen(t->node), t->name, strlen(t->name));
            break;
        default:
            gn_edf_set_alias(&it[1], t->node, strlen(t->node), t->creation, t->id);
            break;
        }
        gn_edf_set_ref(&it[2], self, strlen(self), cr, ref);
        gni_enp_frame f;
        memset(&f, 0, sizeof f);
        f.type = GNI_ENP_ANY;
        f.order = gni_enp_any_order(kind, false,
                                    t->kind == GN_ERGO_TO_PID ? t->id[0] : t->id[1]);
        rc = frame_build(en, &f, &v);
    }
    gn_edf_arena_free(a);
    if (rc < 0)
        return (int)rc;
    rc = frame_send_ref(en, t->node, src->id, true, (size_t)rc, ref);
    scratch_trim(en);
    return (int)rc;
}

/* MessageResult for a request of @kind from process @src_id of @node: @err NULL = success */
static void any_result(gn_ergo_node *en, const char *node, enum gni_enp_any_kind kind,
                       uint64_t src_id, const gn_edf_value *ref, const char *err)
{
    gn_edf_arena *a = en_arena(en);
    if (!a)
        return;
    gn_edf_value v;
    long rc = any_build(en, GNI_ENP_ANY_RESULT, 0, a, &v);
    if (rc == 0) {
        gn_edf_value *it = gn_edf_items(&v);
        gn_edf_set_error(&it[0], err, err ? strlen(err) : 0);
        gn_edf_set_nil(&it[1]);
        const gn_edf_type *me =
            (kind == GNI_ENP_ANY_LINK_EVENT || kind == GNI_ENP_ANY_MONITOR_EVENT) && !err
                ? gn_edf_registry_find(gni_ergo_comp_registry(en_comp(en)),
                                       GN_EDF_ERGO_MESSAGE_EVENT,
                                       strlen(GN_EDF_ERGO_MESSAGE_EVENT))
                : NULL;
        const gn_edf_type *sl = me ? gn_edf_type_slice(a, me) : NULL;
        if (sl) /* Ergo answers with the buffered events: none, a nil []gen.MessageEvent */
            (void)gn_edf_set_nil_of(&it[1], sl);
        it[2] = *ref;
        gni_enp_frame f;
        memset(&f, 0, sizeof f);
        f.type = GNI_ENP_ANY;
        f.order = gni_enp_any_order(kind, true, src_id);
        rc = frame_build(en, &f, &v);
        if (rc > 0)
            rc = send_connected(en, node, 0, false, (size_t)rc);
    }
    gn_edf_arena_free(a);
    if (rc < 0)
        GN_LOG(GN_LOG_DEBUG, EN_LOG, "%s: MessageResult not sent: %s", node,
               gn_err_name((int)rc));
}

/* decodes an error value (a reason) from @pl with the peer's dictionaries into @out */
static int decode_reason(gn_ergo_node *en, const gni_ergo_peer_info *pi, gn_slice pl,
                         char out[GN_ERGO_NAME_MAX + 1])
{
    gn_edf_arena *a = en_arena(en);
    if (!a)
        return GN_ENOMEM;
    gn_edf_decode_opts o;
    gn_edf_decode_opts_default(&o);
    o.reg = gni_ergo_comp_registry(en_comp(en));
    o.dict = pi->dict;
    gn_edf_value v;
    int rc = gn_edf_decode(&o, a, pl.base, pl.len, &v, NULL, NULL);
    if (rc == 0 && v.kind != GN_EDF_ERROR)
        rc = GN_EPARSE; /* Ergo drops a reason that is not an error */
    if (rc == 0) {
        if (v.nil)
            set_name(out, GN_ERGO_REASON_NORMAL);
        else
            copy_name(out, (const char *)v.u.bytes.base, v.u.bytes.len);
    }
    gn_edf_arena_free(a);
    return rc;
}

/* 107: an exit signal for one of our processes */
static void on_exit_frame(gn_ergo_node *en, gni_ergo_peer *peer, const gni_enp_frame *f)
{
    const gni_ergo_peer_info *pi = gni_ergo_peer_get_info(peer);
    char reason[GN_ERGO_NAME_MAX + 1];
    gn_ergo_proc *p = proc_by_id(en, f->to);
    if (!p || decode_reason(en, pi, f->payload, reason) < 0) {
        GN_LOG(GN_LOG_DEBUG, EN_LOG, "%s: MessageExit to %llu dropped", pi->node,
               (unsigned long long)f->to);
        return;
    }
    en_tgt t;
    memset(&t, 0, sizeof t);
    t.kind = GN_ERGO_TO_PID;
    set_name(t.node, pi->node);
    t.id[0] = f->from;
    t.creation = pi->creation;
    (void)sig_queue(p, GN_ERGO_SIG_EXIT, true, &t, reason, strlen(reason));
}

/* 181-184: a remote target we link or monitor terminated */
static void on_term_frame(gn_ergo_node *en, gni_ergo_peer *peer, const gni_enp_frame *f)
{
    const gni_ergo_peer_info *pi = gni_ergo_peer_get_info(peer);
    char reason[GN_ERGO_NAME_MAX + 1];
    if (decode_reason(en, pi, f->payload, reason) < 0)
        return;
    en_tgt t;
    memset(&t, 0, sizeof t);
    set_name(t.node, pi->node);
    gn_slice nm = f->name;
    bool cached = f->type == GNI_ENP_TERM_NAME_CACHE || f->type == GNI_ENP_TERM_EVENT_CACHE;
    if (cached && gn_edf_dict_find(pi->dict, GN_EDF_DICT_ATOM, f->atom_id, &nm) < 0)
        return; /* not in the sender's atom cache */
    switch (f->type) {
    case GNI_ENP_TERM_PID:
        t.kind = GN_ERGO_TO_PID;
        t.id[0] = f->to;
        break;
    case GNI_ENP_TERM_ALIAS:
        t.kind = GN_ERGO_TO_ALIAS;
        memcpy(t.id, f->alias, sizeof t.id);
        break;
    default: /* 182/183 names, 185/186 events */
        t.kind = f->type == GNI_ENP_TERM_NAME || f->type == GNI_ENP_TERM_NAME_CACHE
                     ? GN_ERGO_TO_NAME
                     : GN_ERGO_TO_EVENT;
        copy_name(t.name, (const char *)nm.base, nm.len);
        break;
    }
    fire_remote(en, pi->node, &t, reason);
}

/* a link/monitor request of @kind from a remote process */
static void on_ctl(gn_ergo_node *en, const gni_ergo_peer_info *pi, enum gni_enp_any_kind kind,
                   const gn_edf_value *it)
{
    const gn_edf_value *src = &it[0], *tv = &it[1], *ref = &it[2];
    if (src->kind != GN_EDF_PID || ref->kind != GN_EDF_REF)
        return;
    uint64_t sid = src->u.pid.id;
    bool link = kind <= GNI_ENP_ANY_UNLINK_EVENT;
    bool un = kind == GNI_ENP_ANY_UNLINK_PID || kind == GNI_ENP_ANY_UNLINK_PROCESSID ||
              kind == GNI_ENP_ANY_UNLINK_ALIAS || kind == GNI_ENP_ANY_UNLINK_EVENT ||
              kind == GNI_ENP_ANY_DEMONITOR_PID || kind == GNI_ENP_ANY_DEMONITOR_PROCESSID ||
              kind == GNI_ENP_ANY_DEMONITOR_ALIAS || kind == GNI_ENP_ANY_DEMONITOR_EVENT;
    en_tgt t;
    memset(&t, 0, sizeof t);
    switch (tv->kind) {
    case GN_EDF_PID:
        t.kind = GN_ERGO_TO_PID;
        copy_name(t.node, (const char *)tv->u.pid.node.base, tv->u.pid.node.len);
        t.id[0] = tv->u.pid.id;
        t.creation = tv->u.pid.creation;
        break;
    case GN_EDF_PROCESSID:
    case GN_EDF_EVENT:
        t.kind = tv->kind == GN_EDF_EVENT ? GN_ERGO_TO_EVENT : GN_ERGO_TO_NAME;
        copy_name(t.node, (const char *)tv->u.name.node.base, tv->u.name.node.len);
        copy_name(t.name, (const char *)tv->u.name.name.base, tv->u.name.name.len);
        break;
    case GN_EDF_ALIAS:
        t.kind = GN_ERGO_TO_ALIAS;
        copy_name(t.node, (const char *)tv->u.ref.node.base, tv->u.ref.node.len);
        memcpy(t.id, tv->u.ref.id, sizeof t.id);
        t.creation = tv->u.ref.creation;
        break;
    default:
        any_result(en, pi->node, kind, sid, ref, "incorrect value or argument");
        return;
    }
    en_sub **where = NULL;
    en_sub *old = sub_find(en, pi->node, sid, link, &t, &where);
    if (un) {
        if (old) {
            *where = old->next;
            sub_release(en, old);
            gn_free(old);
        }
        any_result(en, pi->node, kind, sid, ref, NULL);
        return;
    }
    bool here = !strcmp(t.node, en_self(en)), event = t.kind == GN_ERGO_TO_EVENT;
    gn_ergo_proc *tp = here && !event ? tgt_resolve_local(en, &t) : NULL;
    en_event *ev = here && event ? event_find(en, t.name) : NULL;
    unsigned *ncons = ev ? &ev->ncons : tp ? &tp->ncons : NULL;
    const char *err = !ncons                           ? (event ? "unknown event" : "unknown process")
                      : old                            ? "target is already exist"
                      : *ncons >= GN_ERGO_CONSUMERS_MAX ? "too large"
                                                       : NULL;
    en_sub *sb = err ? NULL : gn_calloc(1, sizeof *sb);
    if (!err && !sb)
        err = "internal error";
    if (sb) {
        sb->link = link;
        sb->t = t;
        set_name(sb->cnode, pi->node);
        sb->cid = sid;
        memcpy(sb->ref, ref->u.ref.id, sizeof sb->ref);
        sb->next = en->subs;
        en->subs = sb;
        (*ncons)++;
    }
    any_result(en, pi->node, kind, sid, ref, err);
}

/* a gen.MessageEvent {Event{@name, @node}, @ts, Message = @payload decoded with @dict} into
 * @cp's mailbox, from process @from of @node */
static int event_deliver(gn_ergo_node *en, gn_ergo_proc *cp, const char *node, const char *name,
                         int64_t ts, const gn_edf_dict *dict, gn_slice payload, uint64_t from,
                         int64_t from_creation)
{
    const gn_edf_type *me = gn_edf_registry_find(gni_ergo_comp_registry(en_comp(en)),
                                                 GN_EDF_ERGO_MESSAGE_EVENT,
                                                 strlen(GN_EDF_ERGO_MESSAGE_EVENT));
    if (!me)
        return GN_ENOTSUP;
    if (cp->nq >= cp->mailbox_size)
        return GN_EAGAIN;
    en_item *it = NULL;
    int rc = item_new(en, dict, payload, &it);
    if (rc < 0)
        return rc;
    size_t nl = strlen(node), ml = strlen(name);
    char *cn = gn_edf_arena_alloc(it->arena, nl + ml + 2);
    gn_edf_value msg = it->v;
    if (!cn || gn_edf_set_composite(&it->v, it->arena, me, 0) < 0) {
        item_recycle(en, it);
        return GN_ENOMEM;
    }
    memcpy(cn, node, nl + 1);
    memcpy(cn + nl + 1, name, ml + 1);
    gn_edf_value *f = gn_edf_items(&it->v);
    gn_edf_set_event(&f[0], cn, nl, cn + nl + 1, ml);
    (void)gn_edf_set_int(&f[1], GN_EDF_INT64, ts);
    f[2] = msg;
    it->m.value = &it->v;
    name_over(it->m.from.node, node);
    name_over(it->m.ref.node, ""); /* no ref */
    it->m.from.id = from;
    it->m.from.creation = from_creation;
    it->m.to_kind = GN_ERGO_TO_EVENT;
    rc = mailbox_put(cp, it);
    if (rc < 0)
        item_recycle(en, it);
    return rc;
}

/* delivers an event of @node to our subscribers of it, once per process; returns how many */
static int event_fanout(gn_ergo_node *en, const char *node, const char *name, int64_t ts,
                        const gn_edf_dict *dict, gn_slice payload, uint64_t from,
                        int64_t from_creation)
{
    const char *self = en_self(en);
    int n = 0;
    for (en_sub *sb = en->subs; sb; sb = sb->next) { /* bounded: the entries (squared) */
        if (sb->t.kind != GN_ERGO_TO_EVENT || strcmp(sb->t.node, node) ||
            strcmp(sb->t.name, name) || strcmp(sb->cnode, self))
            continue;
        bool dup = false;
        for (en_sub *o = en->subs; o != sb && !dup; o = o->next)
            dup = o->cid == sb->cid && o->t.kind == GN_ERGO_TO_EVENT && !strcmp(o->cnode, self) &&
                  tgt_eq(&o->t, &sb->t);
        gn_ergo_proc *cp = dup ? NULL : proc_by_id(en, sb->cid);
        if (!cp)
            continue;
        int rc = event_deliver(en, cp, node, name, ts, dict, payload, from, from_creation);
        if (rc == 0)
            n++;
        else
            GN_LOG(GN_LOG_DEBUG, EN_LOG, "event %s to %llu not delivered: %s", name,
                   (unsigned long long)sb->cid, gn_err_name(rc));
    }
    return n;
}

/* 105/106: an event of the peer, for our subscribers */
static void on_event_frame(gn_ergo_node *en, gni_ergo_peer *peer, const gni_enp_frame *f)
{
    const gni_ergo_peer_info *pi = gni_ergo_peer_get_info(peer);
    gn_slice nm = f->name;
    if (f->type == GNI_ENP_MSG_EVENT_CACHE &&
        gn_edf_dict_find(pi->dict, GN_EDF_DICT_ATOM, f->atom_id, &nm) < 0)
        return;
    char name[GN_ERGO_NAME_MAX + 1];
    copy_name(name, (const char *)nm.base, nm.len);
    (void)event_fanout(en, pi->node, name, f->timestamp, pi->dict, f->payload, f->from,
                       pi->creation);
}

/* 199: link/monitor requests and their results; spawn and application start go to
 * ergo_spawn.c */
static void on_any(gn_ergo_node *en, gni_ergo_peer *peer, const gni_enp_frame *f)
{
    const gni_ergo_peer_info *pi = gni_ergo_peer_get_info(peer);
    gn_edf_arena *a = en_arena(en);
    if (!a)
        return;
    gn_edf_decode_opts o;
    gn_edf_decode_opts_default(&o);
    o.reg = gni_ergo_comp_registry(en_comp(en));
    o.dict = pi->dict;
    gn_edf_value v;
    int rc = gn_edf_decode(&o, a, f->payload.base, f->payload.len, &v, NULL, NULL);
    enum gni_enp_any_kind kind = GNI_ENP_ANY_UNKNOWN;
    if (rc == 0 && v.kind == GN_EDF_STRUCT && v.type && v.type->name)
        kind = gni_enp_any_kind_of((gn_slice){(const uint8_t *)v.type->name, v.type->name_len});
    const gn_edf_value *it = kind != GNI_ENP_ANY_UNKNOWN ? gn_edf_items(&v) : NULL;
    switch (kind) {
    case GNI_ENP_ANY_UNKNOWN:
    case GNI_ENP_ANY_UPDATE_CACHE:
    case GNI_ENP_ANY_KIND_COUNT:
        GN_LOG(GN_LOG_DEBUG, EN_LOG, "%s: MessageAny dropped (%s)", pi->node,
               rc < 0 ? gn_err_name(rc) : "not a request we know");
        break;
    case GNI_ENP_ANY_RESULT: {
        const gn_edf_value *ref = &it[2];
        en_pend *pd = NULL;
        for (en_pend *q = en->pends; q && ref->kind == GN_EDF_REF; q = q->next)
            if (q->ctl && !memcmp(q->ref, ref->u.ref.id, sizeof q->ref) &&
                !strcmp(q->node, pi->node)) {
                pd = q;
                break;
            }
        if (!pd)
            break;
        const char *text = "";
        int st = 0;
        char *t = it[0].kind == GN_EDF_ERROR && !it[0].nil
                      ? gn_edf_arena_alloc(a, it[0].u.bytes.len + 1)
                      : NULL;
        if (t) { /* the whole text (EDF: at most 32767 bytes) */
            memcpy(t, it[0].u.bytes.base, it[0].u.bytes.len);
            t[it[0].u.bytes.len] = '\0';
            text = t;
            st = !strcmp(text, "unknown process") ? GN_ENOTFOUND : GN_ECALLBACK;
        } else if (it[0].kind == GN_EDF_ERROR && !it[0].nil) {
            st = GN_ENOMEM; /* an error we could not copy: not a success */
        }
        pend_finish(pd, st, &it[1], st == GN_ECALLBACK ? text : NULL); /* Result: spawn */
        break;
    }
    case GNI_ENP_ANY_SPAWN: /* ergo_spawn.c */
    case GNI_ENP_ANY_APPLICATION_START:
        gni_ergo_spawn_on_request(en, pi->node, kind, it);
        break;
    default:
        on_ctl(en, pi, kind, it);
        break;
    }
    gn_edf_arena_free(a);
}

/* ---- frames in -------------------------------------------------------------------------- */

static void on_message(gn_ergo_node *en, gni_ergo_peer *peer, const gni_enp_frame *f)
{
    const gni_ergo_peer_info *pi = gni_ergo_peer_get_info(peer);
    bool call = f->type >= GNI_ENP_REQ_PID;
    gn_ergo_proc *p = NULL;
    gn_ergo_target_kind kind = GN_ERGO_TO_PID;
    switch (f->type) {
    case GNI_ENP_MSG_PID:
    case GNI_ENP_REQ_PID:
        p = proc_by_id(en, f->to);
        break;
    case GNI_ENP_MSG_NAME:
    case GNI_ENP_REQ_NAME:
        kind = GN_ERGO_TO_NAME;
        p = proc_by_name(en, (const char *)f->name.base, f->name.len);
        break;
    case GNI_ENP_MSG_NAME_CACHE:
    case GNI_ENP_REQ_NAME_CACHE: {
        kind = GN_ERGO_TO_NAME;
        gn_slice nm;
        if (gn_edf_dict_find(pi->dict, GN_EDF_DICT_ATOM, f->atom_id, &nm) == 0)
            p = proc_by_name(en, (const char *)nm.base, nm.len);
        break;
    }
    default:
        kind = GN_ERGO_TO_ALIAS;
        p = proc_by_alias(en, f->alias);
        break;
    }
    bool important = gni_enp_important(f);
    /* the ack's ref: a send's important ref is [ID0, 0, 0]; a call's is its own ref */
    uint64_t ref[3] = {f->ref[0], call ? f->ref[1] : 0, call ? f->ref[2] : 0};
    uint64_t ack_from = (f->type == GNI_ENP_MSG_PID || f->type == GNI_ENP_REQ_PID) ? f->to : 0;
    int rc = p ? 0 : GN_ENOTFOUND;
    en_item *it = NULL;
    if (rc == 0 && (rc = item_new(en, pi->dict, f->payload, &it)) < 0) {
        GN_LOG(GN_LOG_INFO, EN_LOG, "%s: %s dropped: payload does not decode: %s", pi->node,
               gni_enp_type_name(f->type), gn_err_name(rc));
        return; /* Ergo drops a frame whose payload does not decode */
    }
    if (it) {
        name_over(it->m.from.node, pi->node);
        it->m.from.id = f->from;
        it->m.from.creation = pi->creation;
        it->m.priority = (gn_ergo_priority)gni_enp_priority(f);
        it->m.important = important;
        it->m.call = call;
        it->m.to_kind = kind;
        name_over(it->m.ref.node, pi->node);
        it->m.ref.creation = pi->creation;
        memcpy(it->m.ref.id, ref, sizeof ref);
        rc = mailbox_put(p, it);
        if (rc < 0)
            item_recycle(en, it);
    }
    if (rc < 0)
        GN_LOG(GN_LOG_DEBUG, EN_LOG, "%s: %s from %llu not delivered: %s", pi->node,
               gni_enp_type_name(f->type), (unsigned long long)f->from, gn_err_name(rc));
    /* important: sends are answered either way, calls only when routing failed */
    if (important && (!call || rc < 0))
        send_code(en, pi->node, ack_from, f->from, ref, err_to_code(rc));
}

static void on_answer(gn_ergo_node *en, gni_ergo_peer *peer, const gni_enp_frame *f)
{
    const gni_ergo_peer_info *pi = gni_ergo_peer_get_info(peer);
    en_pend *pd = pend_find(en, f->to, f->ref);
    if (!pd || strcmp(pd->node, pi->node) != 0) {
        GN_LOG(GN_LOG_DEBUG, EN_LOG, "%s: late or unknown %s dropped", pi->node,
               gni_enp_type_name(f->type));
        return;
    }
    if (!pd->call && f->type == GNI_ENP_RESPONSE) { /* a value for an important send */
        GN_LOG(GN_LOG_NOTICE, EN_LOG, "%s: a response to a send, not a call: dropped", pi->node);
        return;
    }
    if (pd->call && f->type != GNI_ENP_RESPONSE && f->code == GNI_ENP_RC_OK) {
        /* a call is answered by a value (129) or a routing error, never a bare success */
        GN_LOG(GN_LOG_NOTICE, EN_LOG, "%s: a call answered by success without a value",
               pi->node);
        pend_finish(pd, GN_EPROTO, NULL, NULL);
        return;
    }
    /* the node's answer arena, taken while in use (kept between answers: no allocation
     * per call) */
    gn_edf_arena *a = en->ans_arena;
    en->ans_arena = NULL;
    if (!a)
        a = gn_edf_arena_new(0, en->cfg.max_value_bytes ? en->cfg.max_value_bytes
                                                        : EN_VALUE_BYTES_DEFAULT);
    if (!a) {
        pend_finish(pd, GN_ENOMEM, NULL, NULL);
        return;
    }
    gn_edf_decode_opts o;
    gn_edf_decode_opts_default(&o);
    o.reg = gni_ergo_comp_registry(en_comp(en));
    o.dict = pi->dict;
    gn_edf_value v;
    const char *text = "";
    if (f->type == GNI_ENP_RESPONSE) {
        int rc = gn_edf_decode(&o, a, f->payload.base, f->payload.len, &v, NULL, NULL);
        pend_finish(pd, rc < 0 ? GN_EPARSE : 0, rc < 0 ? NULL : &v, NULL);
    } else {
        int st = code_to_err(f->code);
        /* the whole text, as Ergo passes it: EDF bounds an error to 32767 bytes, the
         * arena to max_value_bytes */
        if (f->code == GNI_ENP_RC_ERROR) {
            int rc = gn_edf_decode(&o, a, f->payload.base, f->payload.len, &v, NULL, NULL);
            if (rc == 0 && v.kind == GN_EDF_ERROR && !v.nil) {
                char *t = gn_edf_arena_alloc(a, v.u.bytes.len + 1);
                if (t) {
                    memcpy(t, v.u.bytes.base, v.u.bytes.len);
                    t[v.u.bytes.len] = '\0';
                    text = t;
                } else {
                    st = GN_ENOMEM; /* an error we could not copy: as for MessageResult */
                }
            } else if (rc == GN_ENOMEM) {
                st = GN_ENOMEM;
            }
        }
        pend_finish(pd, st, NULL, st == GN_ECALLBACK ? text : NULL);
    }
    if (!en->ans_arena && gn_edf_arena_used(a) <= EN_SPARE_ARENA_MAX) {
        gn_edf_arena_reset(a);
        en->ans_arena = a;
    } else {
        gn_edf_arena_free(a);
    }
}

static void h_frame(void *ud, gni_ergo_peer *peer, const uint8_t *frame, size_t len)
{
    gn_ergo_node *en = ud;
    const gni_ergo_peer_info *pi = gni_ergo_peer_get_info(peer);
    if (en->tap)
        en->tap(en->tap_ud, false, pi->node, frame, len);
    gni_enp_frame f;
    gni_enp_diag d = {""};
    int rc = gni_enp_parse(frame, len, &f, &d);
    if (en->zbuf_cap > EN_SCRATCH_KEEP &&
        (rc < 0 || f.type != GNI_ENP_COMPRESSED || f.orig_len <= EN_SCRATCH_KEEP)) {
        gn_free(en->zbuf); /* grown for an earlier large frame: not kept for good */
        en->zbuf = NULL;
        en->zbuf_cap = 0;
    }
    if (rc == 0 && f.type == GNI_ENP_COMPRESSED) {
        size_t cap = f.orig_len;
        if (cap > GNI_ENP_INFLATE_MAX_DEFAULT) {
            rc = GN_ETOOBIG;
        } else if (cap > en->zbuf_cap) {
            uint8_t *b = gn_malloc(cap);
            if (!b)
                return;
            gn_free(en->zbuf);
            en->zbuf = b;
            en->zbuf_cap = cap;
        }
        long il = rc < 0 ? rc : gni_enp_inflate(&f, en->zbuf, en->zbuf_cap, &d);
        rc = il < 0 ? (int)il : gni_enp_parse(en->zbuf, (size_t)il, &f, &d);
    }
    if (rc < 0) {
        GN_LOG(GN_LOG_INFO, EN_LOG, "%s: frame dropped: %s %s", pi->node, gn_err_name(rc),
               d.msg);
        return;
    }
    switch (f.type) {
    case GNI_ENP_MSG_PID:
    case GNI_ENP_MSG_NAME:
    case GNI_ENP_MSG_NAME_CACHE:
    case GNI_ENP_MSG_ALIAS:
    case GNI_ENP_REQ_PID:
    case GNI_ENP_REQ_NAME:
    case GNI_ENP_REQ_NAME_CACHE:
    case GNI_ENP_REQ_ALIAS:
        on_message(en, peer, &f);
        break;
    case GNI_ENP_RESPONSE:
    case GNI_ENP_RESPONSE_ERROR:
        on_answer(en, peer, &f);
        break;
    case GNI_ENP_MSG_EXIT:
        on_exit_frame(en, peer, &f);
        break;
    case GNI_ENP_MSG_EVENT:
    case GNI_ENP_MSG_EVENT_CACHE:
        on_event_frame(en, peer, &f);
        break;
    case GNI_ENP_TERM_PID:
    case GNI_ENP_TERM_NAME:
    case GNI_ENP_TERM_NAME_CACHE:
    case GNI_ENP_TERM_ALIAS:
    case GNI_ENP_TERM_EVENT:
    case GNI_ENP_TERM_EVENT_CACHE:
        on_term_frame(en, peer, &f);
        break;
    case GNI_ENP_ANY:
        on_any(en, peer, &f);
        break;
    default:
        GN_LOG(GN_LOG_DEBUG, EN_LOG, "%s: %s not handled yet, dropped", pi->node,
               gni_enp_type_name(f.type));
        break;
    }
}

static void h_up(void *ud, gni_ergo_peer *p)
{
    gn_ergo_node *en = ud;
    waits_take(en, gni_ergo_peer_get_info(p)->node, en_comp(en));
}

static void h_down(void *ud, gni_ergo_peer *p, int reason)
{
    (void)reason;
    gn_ergo_node *en = ud;
    char node[GN_ERGO_NAME_MAX + 1];
    set_name(node, gni_ergo_peer_get_info(p)->node);
    waits_take(en, node, NULL);
    pends_fail_node(en, node, GN_ECONNRESET);
    /* Ergo: no frame; every link and monitor on the node's targets fires "no connection",
     * and what the node's processes held on ours goes */
    fire_remote(en, node, NULL, GN_ERGO_REASON_NOCONNECTION);
}

static void h_failed(void *ud, const char *node, int err, const char *diag)
{
    gn_ergo_node *en = ud;
    GN_LOG(GN_LOG_INFO, EN_LOG, "%s: connect failed: %s (%s)", node, gn_err_name(err),
           diag ? diag : "");
    char nm[GN_ERGO_NAME_MAX + 1];
    set_name(nm, node);
    if (gni_ergo_comp_find(en_comp(en), nm))
        return; /* the node came up another way (it dialled us meanwhile): frames went there */
    waits_take(en, nm, NULL);
    pends_fail_node(en, nm, err < 0 ? err : GN_EUNREACHABLE);
}

static const gni_ergo_handler en_handler = {
    .on_peer_up = h_up, .on_frame = h_frame, .on_peer_down = h_down,
    .on_connect_failed = h_failed,
};

/* ---- component hook --------------------------------------------------------------------- */

int gni_ergo_node_on_comp_start(gn_host *h, gni_ergo_comp *c, gn_edf_registry *reg)
{
    gn_loop *loop = gn_host_loop(h);
    for (gn_ergo_node *en = loop ? gn_loop_get_local(loop, &en_loop_key) : NULL; en;
         en = en->next_on_loop) {
        if (en->h != h)
            continue;
        if (en->cfg.types) {
            int rc = en->cfg.types(en->cfg.types_arg, reg);
            if (rc < 0) {
                GN_LOG(GN_LOG_ERR, EN_LOG, "the application's EDF types: %s", gn_err_name(rc));
                return rc;
            }
        }
        gni_ergo_comp_set_handler(c, &en_handler, en);
        en->mono0 = gn_loop_now(en->loop);
        return 0;
    }
    return 0;
}

/* ---- public API: node -------------------------------------------------------------------- */

int gn_ergo_attach(gn_node *n, const gn_ergo_config *cfg, gn_ergo_node **out)
{
    if (!n || !out)
        return GN_EINVAL;
    gn_host *h = gn_node_host(n);
    gn_loop *loop = gn_node_loop(n);
    gn_ergo_node *head = gn_loop_get_local(loop, &en_loop_key);
    for (gn_ergo_node *e = head; e; e = e->next_on_loop)
        if (e->h == h)
            return GN_EEXIST;
    gni_ergo_comp *c = gni_ergo_comp_of(h);
    if (c && cfg && cfg->types)
        return GN_ESTATE;
    gn_ergo_node *en = gn_calloc(1, sizeof *en);
    if (!en)
        return GN_ENOMEM;
    en->n = n;
    en->h = h;
    en->loop = loop;
    if (cfg)
        en->cfg = *cfg;
    en->next_id = EN_FIRST_ID;
    en->waits_tail = &en->waits;
    uint8_t rb[4]; /* refs of this incarnation differ from a previous one's */
    gn_rng_system()->fill(gn_rng_system()->user_data, rb, sizeof rb);
    en->ref_hi = (uint64_t)rb[0] << 24 | (uint64_t)rb[1] << 16 | (uint64_t)rb[2] << 8 | rb[3];
    if (!en->ref_hi)
        en->ref_hi = 1;
    gn_timer_init(loop, &en->drain);
    gn_timer_init(loop, &en->pend_timer);
    en->next_on_loop = head;
    int rc = gn_loop_set_local(loop, &en_loop_key, en);
    if (rc < 0) {
        gn_free(en);
        return rc;
    }
    if (c)
        gni_ergo_comp_set_handler(c, &en_handler, en);
    en->mono0 = gn_loop_now(en->loop); /* the component's start, or close to it */
    *out = en;
    return 0;
}

void gn_ergo_detach(gn_ergo_node *en)
{
    if (!en)
        return;
    gni_ergo_comp *c = en_comp(en);
    if (c)
        gni_ergo_comp_set_handler(c, NULL, NULL);
    gn_ergo_node *head = gn_loop_get_local(en->loop, &en_loop_key);
    if (head == en) {
        gn_loop_set_local(en->loop, &en_loop_key, en->next_on_loop);
    } else {
        for (gn_ergo_node *e = head; e; e = e->next_on_loop)
            if (e->next_on_loop == en) {
                e->next_on_loop = en->next_on_loop;
                break;
            }
    }
    gn_timer_stop(&en->drain);
    gni_ergo_spawn_free(en);
    while (en->procs) { /* bounded: the processes */
        gn_ergo_proc *p = en->procs;
        en->procs = p->next;
        if (!p->dead)
            gni_ergo_queue_on_proc_end(p->cb, p->arg); /* ergo_queue.c: its queue closes */
        for (en_item *it = mailbox_pop(p); it; it = mailbox_pop(p))
            item_free(it);
        while (p->sh) {
            en_sig *sg = p->sh;
            p->sh = sg->next;
            gn_free(sg);
        }
        gn_free(p);
    }
    gn_timer_stop(&en->pend_timer);
    while (en->pends) {
        en_pend *pd = en->pends;
        en->pends = pd->next;
        gn_free(pd);
    }
    while (en->pend_spare) {
        en_pend *pd = en->pend_spare;
        en->pend_spare = pd->next;
        gn_free(pd);
    }
    while (en->events) {
        en_event *ev = en->events;
        en->events = ev->next;
        gn_free(ev);
    }
    while (en->subs) {
        en_sub *sb = en->subs;
        en->subs = sb->next;
        gn_free(sb);
    }
    while (en->waits) {
        en_wait *w = en->waits;
        en->waits = w->next;
        gn_free(w);
    }
    while (en->spare) {
        en_item *it = en->spare;
        en->spare = it->next;
        item_free(it);
    }
    gn_edf_arena_free(en->ans_arena);
    gn_free(en->scratch);
    gn_free(en->zout);
    gn_free(en->zbuf);
    gn_free(en);
}

const char *gn_ergo_node_name(const gn_ergo_node *en) { return en ? en_self(en) : ""; }

int64_t gn_ergo_node_creation(const gn_ergo_node *en)
{
    gni_ergo_comp *c = en ? en_comp(en) : NULL;
    return c ? gni_ergo_comp_creation(c) : 0;
}

const gn_edf_registry *gn_ergo_registry(const gn_ergo_node *en)
{
    gni_ergo_comp *c = en ? en_comp(en) : NULL;
    return c ? gni_ergo_comp_registry(c) : NULL;
}

int gn_ergo_remote_info_get(gn_ergo_node *en, const char *node, gn_ergo_remote_info *out)
{
    if (!en || !node || !out)
        return GN_EINVAL;
    gni_ergo_comp *c = en_comp(en);
    if (!c)
        return GN_ESTATE;
    gni_ergo_peer *p = gni_ergo_comp_find(c, node);
    if (!p)
        return GN_ENOTFOUND;
    const gni_ergo_peer_info *pi = gni_ergo_peer_get_info(p);
    memset(out, 0, sizeof *out);
    set_name(out->node, pi->node);
    out->flags = pi->flags;
    out->creation = pi->creation;
    out->max_message_size = pi->max_message_size;
    out->carrier = (int)pi->carrier;
    out->links = gni_ergo_peer_links(p);
    out->initiator = pi->initiator;
    return 0;
}

int gn_ergo_connect(gn_ergo_node *en, const char *node)
{
    if (!en || !name_ok(node))
        return GN_EINVAL;
    gni_ergo_comp *c = en_comp(en);
    if (!c)
        return GN_ESTATE;
    if (!gni_ergo_comp_endpoint(c))
        return GN_ENOTSUP;
    return gni_ergo_comp_connect(c, node);
}

int gn_ergo_connect_peer(gn_ergo_node *en, const gn_peer_id *peer, const char *node)
{
    if (!en || !peer || (node && !name_ok(node)))
        return GN_EINVAL;
    gni_ergo_comp *c = en_comp(en);
    if (!c)
        return GN_ESTATE;
    return gni_ergo_comp_connect_peer(c, peer, node);
}

int gn_ergo_disconnect(gn_ergo_node *en, const char *node)
{
    if (!en || !name_ok(node))
        return GN_EINVAL;
    gni_ergo_comp *c = en_comp(en);
    if (!c)
        return GN_ESTATE;
    gni_ergo_peer *p = gni_ergo_comp_find(c, node);
    if (!p)
        return GN_ENOTFOUND;
    gni_ergo_peer_close(p);
    return 0;
}

void gni_ergo_node_set_tap(gn_ergo_node *en, gni_ergo_tap_fn fn, void *ud)
{
    if (en) {
        en->tap = fn;
        en->tap_ud = ud;
    }
}

/* ---- public API: processes ---------------------------------------------------------------- */

/* checks and sets @p's compression settings */
static int proc_set_z(gn_ergo_proc *p, const gn_ergo_compression *c)
{
    if ((unsigned)c->type > GN_ERGO_COMPRESS_LZW ||
        (unsigned)c->level > GN_ERGO_COMPRESS_LEVEL_SIZE ||
        (c->threshold > 0 && c->threshold < GN_ERGO_COMPRESS_THRESHOLD_DEFAULT))
        return GN_EINVAL;
    static const uint8_t method[] = {GNI_ENP_Z_GZIP, GNI_ENP_Z_ZLIB, GNI_ENP_Z_LZW};
    static const uint8_t level[] = {GNI_ENP_ZLEVEL_DEFAULT, GNI_ENP_ZLEVEL_SPEED,
                                    GNI_ENP_ZLEVEL_SIZE};
    p->zset = *c;
    p->z.enable = c->enable;
    p->z.method = method[c->type];
    p->z.level = level[c->level];
    p->z.threshold = c->threshold ? c->threshold : GN_ERGO_COMPRESS_THRESHOLD_DEFAULT;
    return 0;
}

int gn_ergo_spawn(gn_ergo_node *en, const gn_ergo_proc_opts *o, gn_ergo_msg_cb cb, void *arg,
                  gn_ergo_proc **out)
{
    if (!en || !cb || !out)
        return GN_EINVAL;
    if (!en_comp(en))
        return GN_ESTATE;
    gn_ergo_proc *p = gn_calloc(1, sizeof *p);
    if (!p)
        return GN_ENOMEM;
    if (o && proc_set_z(p, &o->compression) < 0) {
        gn_free(p);
        return GN_EINVAL;
    }
    p->en = en;
    p->id = en->next_id++;
    p->cb = cb;
    p->arg = arg;
    p->mailbox_size = o && o->mailbox_size ? o->mailbox_size : GN_ERGO_MAILBOX_DEFAULT;
    p->mailbox_bytes = o && o->mailbox_bytes ? o->mailbox_bytes : GN_ERGO_MAILBOX_BYTES_DEFAULT;
    p->max_pending = o && o->max_pending ? o->max_pending : GN_ERGO_PENDING_DEFAULT;
    p->keep_order = !(o && o->no_keep_order);
    p->next = en->procs;
    en->procs = p;
    *out = p;
    return 0;
}

int gn_ergo_proc_set_compression(gn_ergo_proc *p, const gn_ergo_compression *c)
{
    if (!p || p->dead)
        return GN_EINVAL;
    gn_ergo_compression off = {0};
    return proc_set_z(p, c ? c : &off);
}

void gn_ergo_proc_compression(const gn_ergo_proc *p, gn_ergo_compression *out)
{
    if (!p || !out)
        return;
    *out = p->zset;
    if (!out->threshold)
        out->threshold = GN_ERGO_COMPRESS_THRESHOLD_DEFAULT;
}

static void proc_end(gn_ergo_proc *p, const char *reason)
{
    gn_ergo_node *en = p->en;
    while (p->nevents) { /* its events end first ("unregistered"); bounded: GN_ERGO_EVENTS_MAX */
        en_event *ev = NULL;
        for (en_event *e = en->events; e && !ev; e = e->next)
            if (e->owner == p->id)
                ev = e;
        if (!ev)
            break;
        (void)gn_ergo_event_unregister(p, ev->name);
    }
    fire_local(en, p, EN_ON_PID | EN_ON_NAME | EN_ON_ALIAS, NULL, reason, NULL);
    drop_held(en, p);
    proc_release(p);
    p->name[0] = '\0';
    p->naliases = 0;
    p->dead = true;
    /* its remote spawn / start requests end (GN_ECLOSED); a factory's count goes down */
    gni_ergo_spawn_on_proc_end(en, p, p->spawn_tag);
    p->spawn_tag = NULL;
    gni_ergo_queue_on_proc_end(p->cb, p->arg); /* ergo_queue.c: its queue closes */
    if (!en->draining)
        drain_sweep(en);
}

void gn_ergo_proc_free(gn_ergo_proc *p)
{
    if (p && !p->dead)
        proc_end(p, GN_ERGO_REASON_NORMAL);
}

int gn_ergo_proc_exit(gn_ergo_proc *p, const char *reason)
{
    if (!p || p->dead || (reason && !name_ok(reason)))
        return GN_EINVAL;
    proc_end(p, reason ? reason : GN_ERGO_REASON_NORMAL);
    return 0;
}

int gn_ergo_proc_set_signal_cb(gn_ergo_proc *p, gn_ergo_signal_cb cb, void *arg)
{
    if (!p || p->dead)
        return GN_EINVAL;
    p->sig_cb = cb;
    p->sig_arg = arg;
    return 0;
}

void gn_ergo_proc_pid(const gn_ergo_proc *p, gn_ergo_pid *out)
{
    if (!p || !out)
        return;
    set_name(out->node, en_self(p->en));
    out->id = p->id;
    out->creation = gn_ergo_node_creation(p->en);
}

int gn_ergo_proc_pause(gn_ergo_proc *p, bool paused)
{
    if (!p || p->dead)
        return GN_EINVAL;
    p->paused = paused;
    if (!paused && (p->nq || p->sh))
        drain_schedule(p->en);
    return 0;
}

size_t gn_ergo_proc_queued(const gn_ergo_proc *p) { return p ? p->nq : 0; }

int gn_ergo_register(gn_ergo_proc *p, const char *name)
{
    if (!p || p->dead || !name_ok(name))
        return GN_EINVAL;
    if (p->name[0] || proc_by_name(p->en, name, strlen(name)))
        return GN_EEXIST;
    set_name(p->name, name);
    return 0;
}

int gn_ergo_unregister(gn_ergo_proc *p)
{
    if (!p || p->dead)
        return GN_EINVAL;
    if (!p->name[0])
        return GN_ENOTFOUND;
    fire_local(p->en, p, EN_ON_NAME, NULL, GN_ERGO_REASON_UNREGISTERED, NULL);
    p->name[0] = '\0';
    return 0;
}

int gn_ergo_alias_new(gn_ergo_proc *p, gn_ergo_alias *out)
{
    if (!p || p->dead || !out)
        return GN_EINVAL;
    if (p->naliases >= EN_ALIASES_MAX)
        return GN_ELIMIT;
    memset(out, 0, sizeof *out);
    new_ref(p->en, out->id);
    set_name(out->node, en_self(p->en));
    out->creation = gn_ergo_node_creation(p->en);
    memcpy(p->alias[p->naliases++], out->id, sizeof out->id);
    return 0;
}

int gn_ergo_alias_delete(gn_ergo_proc *p, const gn_ergo_alias *a)
{
    if (!p || p->dead || !a)
        return GN_EINVAL;
    for (unsigned i = 0; i < p->naliases; i++)
        if (!memcmp(p->alias[i], a->id, sizeof a->id)) {
            fire_local(p->en, p, EN_ON_ALIAS, a->id, GN_ERGO_REASON_UNREGISTERED, NULL);
            memmove(p->alias[i], p->alias[i + 1], (p->naliases - i - 1) * sizeof p->alias[0]);
            p->naliases--;
            return 0;
        }
    return GN_ENOTFOUND;
}

gn_ergo_target gn_ergo_to_pid(const gn_ergo_pid *pid)
{
    gn_ergo_target t;
    memset(&t, 0, sizeof t);
    t.kind = GN_ERGO_TO_PID;
    if (pid)
        t.pid = *pid;
    return t;
}

gn_ergo_target gn_ergo_to_name(const char *node, const char *name)
{
    gn_ergo_target t;
    memset(&t, 0, sizeof t);
    t.kind = GN_ERGO_TO_NAME;
    if (node)
        copy_name(t.node, node, strlen(node));
    if (name)
        copy_name(t.name, name, strlen(name));
    return t;
}

gn_ergo_target gn_ergo_to_alias(const gn_ergo_alias *a)
{
    gn_ergo_target t;
    memset(&t, 0, sizeof t);
    t.kind = GN_ERGO_TO_ALIAS;
    if (a)
        t.alias = *a;
    return t;
}

/* ---- public API: send, call, reply ---------------------------------------------------------- */

/* a local message: the value is copied (encoded with our dictionaries, decoded) into an item */
static int local_item(gn_ergo_node *en, const gn_edf_value *v, en_item **out)
{
    gni_ergo_comp *c = en_comp(en);
    gni_enp_frame f;
    memset(&f, 0, sizeof f);
    f.type = GNI_ENP_MSG_PID; /* only to reuse the encoder's buffer */
    long len = frame_build(en, &f, v);
    if (len < 0)
        return (int)len;
    size_t head = 33; /* MessagePID's fixed part */
    gn_slice pl = {en->scratch + head, (size_t)len - head};
    return item_new(en, gn_edf_registry_dict(gni_ergo_comp_registry(c)), pl, out);
}

static bool target_ok(const gn_ergo_target *to)
{
    if (!to || !name_ok(target_node(to)))
        return false;
    return (to->kind != GN_ERGO_TO_NAME && to->kind != GN_ERGO_TO_EVENT) || name_ok(to->name);
}

/* common part of send and call */
static int deliver(gn_ergo_proc *from, const gn_ergo_target *to, const gn_edf_value *v,
                   const gn_ergo_send_opts *o, bool call, gn_ergo_call_cb ccb, void *carg,
                   gn_ergo_ref *ref_out)
{
    if (!from || from->dead || !target_ok(to) || to->kind == GN_ERGO_TO_EVENT || !v ||
        (o && o->priority > GN_ERGO_PRIO_MAX))
        return GN_EINVAL;
    gn_ergo_node *en = from->en;
    gni_ergo_comp *c = en_comp(en);
    if (!c)
        return GN_ESTATE;
    gn_ergo_send_opts dflt = {0};
    if (!o)
        o = &dflt;
    const char *node = target_node(to);
    bool local = !strcmp(node, gni_ergo_comp_node(c));
    bool tracked = call || (o->important && !local);
    if (tracked && from->npending >= from->max_pending)
        return GN_ELIMIT;
    uint64_t ref[3] = {0, 0, 0};
    if (call)
        new_ref(en, ref);
    else if (o->important)
        ref[0] = ++en->ref_seq;
    if (local) {
        gn_ergo_proc *p = resolve_local(en, to);
        if (!p)
            return GN_ENOTFOUND;
        if (p->nq >= p->mailbox_size)
            return GN_EAGAIN;
        en_item *it = NULL;
        int rc = local_item(en, v, &it);
        if (rc < 0)
            return rc;
        if (!mailbox_fits(p, it)) { /* the bytes bound */
            item_recycle(en, it);
            return GN_EAGAIN;
        }
        name_over(it->m.from.node, gni_ergo_comp_node(c));
        it->m.from.id = from->id;
        it->m.from.creation = gni_ergo_comp_creation(c);
        it->m.priority = o->priority;
        it->m.important = o->important;
        it->m.call = call;
        it->m.to_kind = to->kind;
        name_over(it->m.ref.node, gni_ergo_comp_node(c));
        it->m.ref.creation = gni_ergo_comp_creation(c);
        memcpy(it->m.ref.id, ref, sizeof ref);
        if (call) {
            en_pend *pd = pend_new(from, node, true, o->timeout);
            if (!pd) {
                item_recycle(en, it);
                return GN_ENOMEM;
            }
            memcpy(pd->ref, ref, sizeof ref);
            pd->ccb = ccb;
            pd->arg = carg;
        }
        rc = mailbox_put(p, it); /* cannot fail: mailbox_fits above */
        if (ref_out)
            *ref_out = it->m.ref;
        return rc;
    }
    gni_enp_frame f;
    memset(&f, 0, sizeof f);
    f.from = from->id;
    f.flags = (uint8_t)(o->priority | (o->important ? GNI_ENP_FLAG_IMPORTANT : 0));
    if (call)
        memcpy(f.ref, ref, sizeof ref);
    else
        f.ref[0] = ref[0];
    switch (to->kind) {
    case GN_ERGO_TO_PID:
        f.type = call ? GNI_ENP_REQ_PID : GNI_ENP_MSG_PID;
        f.to = to->pid.id;
        break;
    case GN_ERGO_TO_NAME: {
        /* a name in the atom cache our Introduce announced goes as its id (103/123), as
         * Ergo writes it; the peer resolves it with our table */
        size_t nl = strlen(to->name);
        uint16_t aid;
        if (name_atom(en, to->name, nl, &aid)) {
            f.type = call ? GNI_ENP_REQ_NAME_CACHE : GNI_ENP_MSG_NAME_CACHE;
            f.atom_id = aid;
        } else {
            f.type = call ? GNI_ENP_REQ_NAME : GNI_ENP_MSG_NAME;
            f.name = (gn_slice){(const uint8_t *)to->name, nl};
        }
        break;
    }
    case GN_ERGO_TO_ALIAS:
        f.type = call ? GNI_ENP_REQ_ALIAS : GNI_ENP_MSG_ALIAS;
        memcpy(f.alias, to->alias.id, sizeof f.alias);
        break;
    case GN_ERGO_TO_EVENT: /* refused above */
        return GN_EINVAL;
    }
    f.order = gni_enp_default_order(&f, from->keep_order);
    long len = frame_build(en, &f, v);
    if (len >= 0)
        len = frame_compress(en, from, node, (size_t)len);
    if (len < 0)
        return (int)len;
    if (tracked) { /* before the send: an accepted message always has its entry */
        en_pend *pd = pend_new(from, node, call, o->timeout);
        if (!pd)
            return GN_ENOMEM;
        memcpy(pd->ref, ref, sizeof ref);
        pd->ccb = ccb;
        pd->rcb = o->on_result;
        pd->arg = call ? carg : o->arg;
    }
    int rc = frame_send_ref(en, node, from->id, from->keep_order, (size_t)len,
                            tracked ? ref : NULL);
    if (rc < 0) {
        en_pend *pd = tracked ? pend_find(en, from->id, ref) : NULL;
        if (pd) { /* not sent: the caller hears it from the return value, not the callback */
            pend_unlink(pd);
            pend_release(en, pd);
        }
        return rc;
    }
    if (ref_out) {
        memset(ref_out, 0, sizeof *ref_out);
        set_name(ref_out->node, gni_ergo_comp_node(c));
        ref_out->creation = gni_ergo_comp_creation(c);
        memcpy(ref_out->id, ref, sizeof ref);
    }
    return 0;
}

int gn_ergo_send(gn_ergo_proc *from, const gn_ergo_target *to, const gn_edf_value *v,
                 const gn_ergo_send_opts *o)
{
    int rc = deliver(from, to, v, o, false, NULL, NULL, NULL);
    if (from)
        scratch_trim(from->en);
    return rc;
}

int gn_ergo_call(gn_ergo_proc *from, const gn_ergo_target *to, const gn_edf_value *v,
                 const gn_ergo_send_opts *o, gn_ergo_call_cb cb, void *arg, gn_ergo_ref *ref_out)
{
    int rc = deliver(from, to, v, o, true, cb, arg, ref_out);
    if (from)
        scratch_trim(from->en);
    return rc;
}

/* 129 with @v, or 130 code 255 with the error @text (@v NULL) */
static int answer(gn_ergo_proc *p, const gn_ergo_pid *to, const gn_ergo_ref *ref,
                  const gn_edf_value *v, const char *text)
{
    if (!p || p->dead || !to || !ref || (!v && !text) || !name_ok(to->node))
        return GN_EINVAL;
    gn_edf_value ev;
    if (!v) {
        size_t tl = strlen(text);
        if (tl == 0 || tl > GN_EDF_ERROR_MAX)
            return GN_EINVAL;
        gn_edf_set_error(&ev, text, tl);
    }
    gn_ergo_node *en = p->en;
    gni_ergo_comp *c = en_comp(en);
    if (!c)
        return GN_ESTATE;
    if (!strcmp(to->node, gni_ergo_comp_node(c))) {
        en_pend *pd = pend_find(en, to->id, ref->id);
        if (!pd || !pd->call)
            return GN_ENOTFOUND;
        pend_finish(pd, v ? 0 : GN_ECALLBACK, v, v ? NULL : text);
        return 0;
    }
    gni_enp_frame f;
    memset(&f, 0, sizeof f);
    f.type = v ? GNI_ENP_RESPONSE : GNI_ENP_RESPONSE_ERROR;
    f.code = v ? 0 : GNI_ENP_RC_ERROR;
    f.from = p->id;
    f.to = to->id;
    memcpy(f.ref, ref->id, sizeof f.ref);
    f.order = gni_enp_default_order(&f, p->keep_order);
    long len = frame_build(en, &f, v ? v : &ev);
    if (len >= 0)
        len = frame_compress(en, p, to->node, (size_t)len);
    int rc = len < 0 ? (int)len : frame_send(en, to->node, p->id, p->keep_order, (size_t)len);
    scratch_trim(en);
    return rc;
}

int gn_ergo_reply(gn_ergo_proc *p, const gn_ergo_pid *to, const gn_ergo_ref *ref,
                  const gn_edf_value *v)
{
    return v ? answer(p, to, ref, v, NULL) : GN_EINVAL;
}

int gn_ergo_reply_error(gn_ergo_proc *p, const gn_ergo_pid *to, const gn_ergo_ref *ref,
                        const char *text)
{
    return text ? answer(p, to, ref, NULL, text) : GN_EINVAL;
}

/* ---- public API: links, monitors, exit signals -------------------------------------------- */

static int sub_add(gn_ergo_proc *p, const gn_ergo_target *to, bool link, gn_ergo_result_cb cb,
                   void *arg)
{
    if (!p || p->dead || !target_ok(to))
        return GN_EINVAL;
    gn_ergo_node *en = p->en;
    gni_ergo_comp *c = en_comp(en);
    if (!c)
        return GN_ESTATE;
    const char *self = gni_ergo_comp_node(c);
    en_tgt t;
    tgt_from_target(to, &t);
    if (sub_find(en, self, p->id, link, &t, NULL))
        return GN_EEXIST;
    if (p->nheld >= GN_ERGO_LINKS_MAX)
        return GN_ELIMIT;
    bool local = !strcmp(t.node, self);
    gn_ergo_proc *tp = local ? resolve_local(en, to) : NULL;
    en_event *ev = local && t.kind == GN_ERGO_TO_EVENT ? event_find(en, t.name) : NULL;
    unsigned *ncons = ev ? &ev->ncons : tp ? &tp->ncons : NULL;
    if (local && !ncons)
        return GN_ENOTFOUND;
    if (local && *ncons >= GN_ERGO_CONSUMERS_MAX)
        return GN_ELIMIT;
    if (!local && p->npending >= p->max_pending)
        return GN_ELIMIT;
    en_sub *sb = gn_calloc(1, sizeof *sb);
    if (!sb)
        return GN_ENOMEM;
    sb->link = link;
    sb->t = t;
    set_name(sb->cnode, self);
    sb->cid = p->id;
    if (!local) {
        new_ref(en, sb->ref);
        int rc = any_request(en, p, any_kind(t.kind, link, false), &t, sb->ref);
        en_pend *pd = rc < 0 ? NULL : pend_new(p, t.node, false, 0);
        if (!pd) {
            gn_free(sb);
            return rc < 0 ? rc : GN_ENOMEM;
        }
        pd->ctl = true;
        memcpy(pd->ref, sb->ref, sizeof pd->ref);
        pd->rcb = cb;
        pd->arg = arg;
    } else {
        (*ncons)++;
    }
    sb->next = en->subs;
    en->subs = sb;
    p->nheld++;
    return 0;
}

static int sub_del(gn_ergo_proc *p, const gn_ergo_target *to, bool link)
{
    if (!p || p->dead || !target_ok(to))
        return GN_EINVAL;
    gn_ergo_node *en = p->en;
    gni_ergo_comp *c = en_comp(en);
    if (!c)
        return GN_ESTATE;
    en_tgt t;
    tgt_from_target(to, &t);
    en_sub **where = NULL;
    en_sub *sb = sub_find(en, gni_ergo_comp_node(c), p->id, link, &t, &where);
    if (!sb)
        return GN_ENOTFOUND;
    *where = sb->next;
    if (strcmp(t.node, gni_ergo_comp_node(c)) != 0) {
        uint64_t ref[3];
        new_ref(en, ref);
        /* the answer is not waited for; a pending confirmation of the link ends with
         * GN_ECLOSED from the loop (the node's deadline timer, re-armed to fire now), not from
         * inside this call */
        (void)any_request(en, p, any_kind(t.kind, link, true), &t, ref);
        for (en_pend *pd = en->pends; pd; pd = pd->next)
            if (pd->ctl && !pd->cancelled && !memcmp(pd->ref, sb->ref, sizeof pd->ref)) {
                pd->cancelled = true;
                pd->deadline = gn_loop_now(en->loop); /* the node's deadline timer ends it */
                pend_timer_arm(en, pd->deadline);
                break;
            }
    }
    sub_release(en, sb);
    gn_free(sb);
    return 0;
}

int gn_ergo_link(gn_ergo_proc *p, const gn_ergo_target *t, gn_ergo_result_cb cb, void *arg)
{
    return sub_add(p, t, true, cb, arg);
}

int gn_ergo_unlink(gn_ergo_proc *p, const gn_ergo_target *t) { return sub_del(p, t, true); }

int gn_ergo_monitor(gn_ergo_proc *p, const gn_ergo_target *t, gn_ergo_result_cb cb, void *arg)
{
    return sub_add(p, t, false, cb, arg);
}

int gn_ergo_demonitor(gn_ergo_proc *p, const gn_ergo_target *t) { return sub_del(p, t, false); }

int gn_ergo_send_exit(gn_ergo_proc *from, const gn_ergo_pid *to, const char *reason)
{
    if (!from || from->dead || !to || !name_ok(to->node) || !name_ok(reason))
        return GN_EINVAL;
    gn_ergo_node *en = from->en;
    gni_ergo_comp *c = en_comp(en);
    if (!c)
        return GN_ESTATE;
    if (!strcmp(to->node, gni_ergo_comp_node(c))) {
        gn_ergo_proc *p = proc_by_id(en, to->id);
        if (!p)
            return GN_ENOTFOUND;
        en_tgt t;
        memset(&t, 0, sizeof t);
        t.kind = GN_ERGO_TO_PID;
        set_name(t.node, gni_ergo_comp_node(c));
        t.id[0] = from->id;
        t.creation = gni_ergo_comp_creation(c);
        return sig_queue(p, GN_ERGO_SIG_EXIT, true, &t, reason, strlen(reason));
    }
    gni_enp_frame f;
    memset(&f, 0, sizeof f);
    f.type = GNI_ENP_MSG_EXIT;
    f.from = from->id;
    f.flags = GNI_ENP_PRIO_MAX; /* the priority byte Ergo writes (2) */
    f.to = to->id;
    f.order = gni_enp_default_order(&f, from->keep_order);
    gn_edf_value ev;
    gn_edf_set_error(&ev, reason, strlen(reason));
    long len = frame_build(en, &f, &ev);
    if (len < 0)
        return (int)len;
    return frame_send(en, to->node, from->id, from->keep_order, (size_t)len);
}

/* ---- public API: events ----------------------------------------------------------------------- */

gn_ergo_target gn_ergo_to_event(const char *node, const char *name)
{
    gn_ergo_target t = gn_ergo_to_name(node, name);
    t.kind = GN_ERGO_TO_EVENT;
    return t;
}

int gn_ergo_event_register(gn_ergo_proc *p, const char *name)
{
    if (!p || p->dead || !name_ok(name))
        return GN_EINVAL;
    if (event_find(p->en, name))
        return GN_EEXIST;
    if (p->nevents >= GN_ERGO_EVENTS_MAX)
        return GN_ELIMIT;
    en_event *ev = gn_calloc(1, sizeof *ev);
    if (!ev)
        return GN_ENOMEM;
    set_name(ev->name, name);
    ev->owner = p->id;
    ev->next = p->en->events;
    p->en->events = ev;
    p->nevents++;
    return 0;
}

int gn_ergo_event_unregister(gn_ergo_proc *p, const char *name)
{
    if (!p || !name_ok(name))
        return GN_EINVAL;
    gn_ergo_node *en = p->en;
    for (en_event **pp = &en->events; *pp; pp = &(*pp)->next) {
        en_event *ev = *pp;
        if (ev->owner != p->id || strcmp(ev->name, name) != 0)
            continue;
        *pp = ev->next;
        if (p->nevents)
            p->nevents--;
        char nm[GN_ERGO_NAME_MAX + 1];
        set_name(nm, ev->name);
        gn_free(ev);
        fire_local(en, p, 0, NULL, GN_ERGO_REASON_UNREGISTERED, nm);
        return 0;
    }
    return GN_ENOTFOUND;
}

int gn_ergo_event_publish(gn_ergo_proc *p, const char *name, const gn_edf_value *v)
{
    if (!p || p->dead || !name_ok(name) || !v)
        return GN_EINVAL;
    gn_ergo_node *en = p->en;
    gni_ergo_comp *c = en_comp(en);
    if (!c)
        return GN_ESTATE;
    en_event *ev = event_find(en, name);
    if (!ev || ev->owner != p->id)
        return GN_ENOTFOUND;
    gni_enp_frame f;
    memset(&f, 0, sizeof f);
    f.type = GNI_ENP_MSG_EVENT;
    f.from = p->id;
    f.timestamp = gni_ergo_comp_creation(c) * (int64_t)1000000000 +
                  (int64_t)(gn_loop_now(en->loop) - en->mono0);
    if (name_atom(en, ev->name, strlen(ev->name), &f.atom_id)) /* 106, as Ergo */
        f.type = GNI_ENP_MSG_EVENT_CACHE;
    else
        f.name = (gn_slice){(const uint8_t *)ev->name, strlen(ev->name)};
    f.order = gni_enp_default_order(&f, p->keep_order);
    long plen = frame_build(en, &f, v);
    if (plen < 0)
        return (int)plen;
    /* compressed by the producer's settings, as Ergo does, once there is a remote
     * subscriber to send it to (the plain frame stays in en->zout for the local ones) */
    long len = -1;
    bool zipped = false;
    const char *self = gni_ergo_comp_node(c);
    int n = 0;
    /* one frame per remote node with subscribers */
    for (en_sub *sb = en->subs; sb; sb = sb->next) { /* bounded: the entries (squared) */
        if (sb->t.kind != GN_ERGO_TO_EVENT || strcmp(sb->t.name, ev->name) ||
            strcmp(sb->t.node, self) || !strcmp(sb->cnode, self))
            continue;
        bool sent = false;
        for (en_sub *o = en->subs; o != sb && !sent; o = o->next)
            sent = o->t.kind == GN_ERGO_TO_EVENT && tgt_eq(&o->t, &sb->t) &&
                   !strcmp(o->cnode, sb->cnode);
        if (sent)
            continue;
        if (len < 0) {
            len = frame_compress(en, p, NULL, (size_t)plen);
            if (len < 0) {
                scratch_trim(en);
                return (int)len;
            }
            zipped = en->scratch[7] == GNI_ENP_COMPRESSED;
        }
        if (zipped) { /* Ergo's rule: the plain 105 must fit the peer's MaxMessageSize too */
            gni_ergo_peer *peer = gni_ergo_comp_find(c, sb->cnode);
            uint64_t max = peer ? gni_ergo_peer_get_info(peer)->max_message_size : 0;
            if (max && (uint64_t)plen > max)
                continue;
        }
        if (send_connected(en, sb->cnode, p->id, p->keep_order, (size_t)len) == 0)
            n++;
    }
    gni_enp_frame pf;
    if (gni_enp_parse(zipped ? en->zout : en->scratch, (size_t)plen, &pf, NULL) < 0) {
        scratch_trim(en);
        return GN_EINVAL;
    }
    n += event_fanout(en, self, ev->name, f.timestamp,
                      gn_edf_registry_dict(gni_ergo_comp_registry(c)), pf.payload, p->id,
                      gni_ergo_comp_creation(c));
    scratch_trim(en);
    return n;
}

/* ---- hooks for ergo_spawn.c (ergo_node_int.h) --------------------------------------------- */

int gni_ergo_node_any_send(gn_ergo_node *en, const char *node, uint64_t from, uint8_t order,
                           const gn_edf_value *v, bool answer)
{
    gni_enp_frame f;
    memset(&f, 0, sizeof f);
    f.type = GNI_ENP_ANY;
    f.order = order;
    long len = frame_build(en, &f, v);
    int rc = len < 0                ? (int)len
             : answer ? send_connected(en, node, from, false, (size_t)len)
                      : frame_send(en, node, from, true, (size_t)len);
    scratch_trim(en);
    return rc;
}

int gni_ergo_node_ctl_pend(gn_ergo_proc *p, const char *node, gn_time timeout,
                           gn_ergo_call_cb cb, void *arg, uint64_t ref[3])
{
    if (p->npending >= p->max_pending)
        return GN_ELIMIT;
    en_pend *pd = pend_new(p, node, true, timeout);
    if (!pd)
        return GN_ENOMEM;
    new_ref(p->en, pd->ref);
    memcpy(ref, pd->ref, sizeof pd->ref);
    pd->ctl = true;
    pd->ccb = cb;
    pd->arg = arg;
    return 0;
}

bool gni_ergo_node_ctl_cancel(gn_ergo_node *en, const uint64_t ref[3])
{
    for (en_pend *pd = en->pends; pd; pd = pd->next)
        if (pd->ctl && !memcmp(pd->ref, ref, sizeof pd->ref)) {
            pend_unlink(pd);
            gn_free(pd);
            return true;
        }
    return false;
}

gn_ergo_node *gni_ergo_proc_node(const gn_ergo_proc *p) { return p && !p->dead ? p->en : NULL; }

gn_loop *gni_ergo_node_loop(gn_ergo_node *en) { return en->loop; } /* ergo_queue.c */

bool gni_ergo_node_name_taken(gn_ergo_node *en, const char *name)
{
    return proc_by_name(en, name, strlen(name)) != NULL;
}

void **gni_ergo_node_spawn_slot(gn_ergo_node *en) { return &en->spawn; }

void *gni_ergo_proc_tag(const gn_ergo_proc *p) { return p->spawn_tag; }

void gni_ergo_proc_set_tag(gn_ergo_proc *p, void *tag) { p->spawn_tag = tag; }

void gni_ergo_node_untag(gn_ergo_node *en, const void *tag)
{
    for (gn_ergo_proc *p = en->procs; p; p = p->next) /* bounded: the processes */
        if (p->spawn_tag == tag)
            p->spawn_tag = NULL;
}

bool gni_ergo_proc_holds_name(const gn_ergo_proc *p, const char *name)
{
    return !strcmp(p->name, name);
}

uint64_t gni_ergo_node_own_flags(gn_ergo_node *en) { return gni_ergo_comp_flags(en_comp(en)); }
