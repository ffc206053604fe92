/*
 * golemnet - libp2p pubsub router core: floodsub and gossipsub v1.1 (see
 * pubsub_router.h for the contract, docs/pubsub.md section 7 for the
 * parameters, bounds and scoring). Sans-I/O: no clock, no syscalls; time
 * and randomness come in.
 *
 * State: peers (connected and, for retain_score, disconnected ones whose
 * score counters are kept) and topics in keyed-SipHash tables; a peer x
 * topic record (psr_pt) carries membership (subscribed, mesh, fanout),
 * backoff and the per-topic score counters. The message cache (mcache)
 * holds validated messages in history windows; pending validations,
 * IWANT promises, outputs and events are bounded queues.
 */
#include "pubsub_router.h"

#include "gni.h"
#include "gni_htab.h"

#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* ---- records ---- */

typedef struct psr_peer psr_peer;
typedef struct psr_topic psr_topic;

#define PSR_DECIDED 256

typedef struct psr_pt {
    psr_peer *peer;
    psr_topic *topic;
    bool sub, mesh, fanout, mesh_active;
    bool prune_queued; /* an unsent PRUNE for this (peer, topic) is queued */
    gn_time graft_time, backoff_until;
    double first_del, mesh_del, mesh_fail, invalid;
} psr_pt;

struct psr_peer {
    gni_hnode hn;
    gni_list all;
    gn_peer_id id;
    gni_psr_proto proto;
    bool outbound, connected, congested;
    bool over; /* our queue for it passed max_out_bytes_per_peer */
    uint8_t ip[16];
    size_t ip_len, ip_peers; /* connected peers with this IP, self included */
    psr_pt **pts;
    size_t npts, cappts, nsubs; /* nsubs: pts with sub set */
    size_t created; /* live topics this peer's subscriptions created */
    double behaviour;
    gn_time retain_until;
    unsigned ihave_msgs, ihave_ids; /* this heartbeat */
    size_t promises;
    gni_list outs;   /* psr_out, oldest first */
    gni_list outq;   /* on r->outq while outs is not empty */
    size_t out_bytes;
    double score; /* cached during a heartbeat */
};

struct psr_topic {
    gni_hnode hn;
    gni_list all;
    char *name;
    size_t name_len, refs;
    psr_peer *creator; /* the peer whose subscription created it (NULL: ours, or creator gone) */
    bool subscribed, has_params;
    gni_psr_topic_score_params sp;
    psr_pt **subs; /* connected peers subscribed */
    size_t nsubs, capsubs, nmesh, nfanout;
    gn_time fanout_last;
    gni_psr_topic_stats st;
};

typedef struct psr_tx {
    uint64_t pk;
    uint32_t cnt;
} psr_tx;

typedef struct psr_mc {
    gni_hnode hn;
    gni_list link; /* in its window */
    gni_ps_bytes id;
    gni_ps_msg msg;
    psr_topic *topic;
    psr_tx *tx; /* IWANT replies per peer (peer key hash) */
    size_t ntx;
    gn_time validated;
    uint64_t *credited; /* peers credited with a P3 delivery, at most d_hi + 1 */
    size_t ncred;
} psr_mc;

typedef struct psr_pend {
    gni_hnode hn;
    gni_list link;
    gni_ps_bytes id;
    gni_ps_msg msg;
    psr_topic *topic;
    gn_peer_id from;
    gn_peer_id dups[16];
    size_t ndups;
    gn_time deadline;
    size_t bytes; /* counted in r->pend_bytes */
    bool unlinked; /* out of r->pend (a verdict is being applied) */
} psr_pend;

typedef struct psr_prom {
    gni_hnode hn;
    gni_list link;
    gni_ps_bytes id;
    psr_peer *peer;
    gn_time expire;
} psr_prom;

typedef struct psr_out {
    gni_list link;
    gni_ps_rpc rpc;
    size_t est, nctl, nids;
} psr_out;

typedef struct psr_ev {
    gni_list link;
    size_t bytes; /* counted in r->ev_bytes */
    gni_psr_event ev;
} psr_ev;

struct gni_psr {
    gni_psr_config c;
    gni_ps_limits lim;
    const gn_rng *rng;
    uint8_t hkey[crypto_shorthash_KEYBYTES];
    gn_peer_id self;
    bool has_self;
    uint64_t seqno;

    gni_htab peers;
    gni_list peer_list;
    size_t npeers, nretained;
    gni_htab topics;
    gni_list topic_list;
    size_t ntopics;

    gni_ps_seen seen;
    gni_htab mc;
    gni_list *win;
    size_t win_head, nmc;
    gni_htab pend;
    gni_list pend_list;
    size_t npend;
    gni_htab prom;
    gni_list prom_list;
    size_t nprom;

    gni_list outq;
    gni_list evq;
    size_t nev, npx_ev;
    /* byte bounds (msg_est): cache, events, pending validations, all queued output */
    size_t mc_bytes, ev_bytes, pend_bytes, out_total;

    gn_time next_hb, next_decay;
    gn_time now; /* latest time any call brought (IWANT promises start at hand-out) */
    /* IDs recently REJECTed or IGNOREd (not in the seen cache): a copy is
     * dropped without validating again, and a REJECTed one costs its
     * sender P4 as the first copy did */
    struct {
        uint64_t k;
        uint8_t v;
    } dec[PSR_DECIDED];
    size_t dec_head;
    uint64_t hb_ticks;
    gni_psr_stats st;
};

/* ---- small helpers ---- */

static uint64_t psr_hash(const gni_psr *r, const uint8_t *p, size_t n)
{
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, p, n, r->hkey);
    uint64_t v;
    memcpy(&v, h, sizeof v);
    return v;
}

static uint64_t psr_rand(gni_psr *r)
{
    uint64_t v;
    gn_rng_fill(r->rng, (uint8_t *)&v, sizeof v);
    return v;
}

static void psr_shuffle(gni_psr *r, void **a, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(psr_rand(r) % i);
        void *t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

static int bytes_set(gni_ps_bytes *b, const uint8_t *p, size_t n)
{
    b->data = NULL;
    b->len = 0;
    if (n == 0)
        return 0;
    b->data = gn_malloc(n);
    if (!b->data)
        return GN_ENOMEM;
    memcpy(b->data, p, n);
    b->len = n;
    return 0;
}

static void bytes_free(gni_ps_bytes *b)
{
    gn_free(b->data);
    b->data = NULL;
    b->len = 0;
}

static bool bytes_eq(const gni_ps_bytes *b, const uint8_t *p, size_t n)
{
    return b->len == n && (n == 0 || memcmp(b->data, p, n) == 0);
}

static int msg_dup(gni_ps_msg *d, const gni_ps_msg *s)
{
    gni_ps_msg_init(d);
    d->has_from = s->has_from;
    d->has_data = s->has_data;
    d->has_seqno = s->has_seqno;
    d->has_signature = s->has_signature;
    d->has_key = s->has_key;
    if (bytes_set(&d->from, s->from.data, s->from.len) || bytes_set(&d->data, s->data.data, s->data.len) ||
        bytes_set(&d->seqno, s->seqno.data, s->seqno.len) ||
        bytes_set(&d->signature, s->signature.data, s->signature.len) ||
        bytes_set(&d->key, s->key.data, s->key.len) ||
        bytes_set(&d->unknown, s->unknown.data, s->unknown.len))
        goto fail;
    if (s->topic) {
        size_t n = strlen(s->topic);
        d->topic = gn_malloc(n + 1);
        if (!d->topic)
            goto fail;
        memcpy(d->topic, s->topic, n + 1);
    }
    return 0;
fail:
    gni_ps_msg_fini(d);
    return GN_ENOMEM;
}

/* A generous estimate of a message's encoded size inside an RPC. */
static size_t msg_est(const gni_ps_msg *m)
{
    return m->from.len + m->data.len + m->seqno.len + m->signature.len + m->key.len +
           m->unknown.len + (m->topic ? strlen(m->topic) : 0) + 7 * 11;
}

static void psr_clock(gni_psr *r, gn_time now)
{
    if (now > r->now)
        r->now = now;
}

static bool peer_is_gossip(const psr_peer *p) { return p->proto != GNI_PSR_FLOODSUB; }

/* Congested (driver) or over our own queue bound: no mesh, no forwards, no gossip. */
static bool peer_blocked(const psr_peer *p) { return p->congested || p->over; }

/* ---- topics ---- */

static psr_topic *topic_find(const gni_psr *r, const char *name)
{
    size_t n = strlen(name);
    uint64_t k = psr_hash(r, (const uint8_t *)name, n);
    for (gni_hnode *e = gni_htab_find(&r->topics, k); e; e = gni_htab_find_next(&r->topics, e)) {
        psr_topic *t = GNI_CONTAINER_OF(e, psr_topic, hn);
        if (t->name_len == n && memcmp(t->name, name, n) == 0)
            return t;
    }
    return NULL;
}

/*
 * Finds or creates @name. Creation for a peer (@local false) is bounded by
 * max_topics; the application's own topics (subscribe, publish, score
 * parameters) are not, so peers filling the table cannot keep the
 * application from subscribing. NULL: GN_ELIMIT / GN_ETOOBIG / GN_ENOMEM
 * in *err.
 */
static bool topic_evict(gni_psr *r);

static psr_topic *topic_get(gni_psr *r, const char *name, psr_peer *creator, int *err)
{
    psr_topic *t = topic_find(r, name);
    if (t)
        return t;
    size_t n = strlen(name);
    if (n == 0 || n > r->lim.max_topic_len) {
        *err = GN_ETOOBIG;
        return NULL;
    }
    if (creator && r->ntopics >= r->c.max_topics && !topic_evict(r)) {
        *err = GN_ELIMIT;
        return NULL;
    }
    t = gn_calloc(1, sizeof *t);
    if (!t || !(t->name = gn_malloc(n + 1))) {
        gn_free(t);
        *err = GN_ENOMEM;
        return NULL;
    }
    memcpy(t->name, name, n + 1);
    t->name_len = n;
    t->hn.key = psr_hash(r, (const uint8_t *)name, n);
    if (gni_htab_insert(&r->topics, &t->hn) != 0) {
        gn_free(t->name);
        gn_free(t);
        *err = GN_ENOMEM;
        return NULL;
    }
    gni_list_add_tail(&r->topic_list, &t->all);
    r->ntopics++;
    t->creator = creator;
    if (creator)
        creator->created++;
    return t;
}

static void topic_free(gni_psr *r, psr_topic *t)
{
    if (t->creator)
        t->creator->created--;
    gni_htab_remove(&r->topics, &t->hn);
    gni_list_del(&t->all);
    r->ntopics--;
    gn_free(t->subs);
    gn_free(t->name);
    gn_free(t);
}

static bool topic_idle(const psr_topic *t)
{
    return t->refs == 0 && !t->subscribed && !t->has_params && t->nsubs == 0;
}

static const gni_psr_topic_score_params *topic_sp(const gni_psr *r, const psr_topic *t)
{
    if (t->has_params)
        return &t->sp;
    if (r->c.score.has_default_topic)
        return &r->c.score.default_topic;
    return NULL;
}

/* ---- peer x topic ---- */

static psr_pt *pt_find(const psr_peer *p, const psr_topic *t)
{
    for (size_t i = 0; i < p->npts; i++)
        if (p->pts[i]->topic == t)
            return p->pts[i];
    return NULL;
}

static psr_pt *pt_get(psr_peer *p, psr_topic *t)
{
    psr_pt *pt = pt_find(p, t);
    if (pt)
        return pt;
    if (p->npts == p->cappts) {
        size_t nc = p->cappts ? p->cappts * 2 : 4;
        psr_pt **n = gn_realloc(p->pts, nc * sizeof *n);
        if (!n)
            return NULL;
        p->pts = n;
        p->cappts = nc;
    }
    pt = gn_calloc(1, sizeof *pt);
    if (!pt)
        return NULL;
    pt->peer = p;
    pt->topic = t;
    t->refs++;
    p->pts[p->npts++] = pt;
    return pt;
}

static void pt_free_at(psr_peer *p, size_t i)
{
    psr_pt *pt = p->pts[i];
    pt->topic->refs--;
    p->pts[i] = p->pts[--p->npts];
    gn_free(pt);
}

static int topic_add_sub(psr_topic *t, psr_pt *pt)
{
    if (t->nsubs == t->capsubs) {
        size_t nc = t->capsubs ? t->capsubs * 2 : 8;
        psr_pt **n = gn_realloc(t->subs, nc * sizeof *n);
        if (!n)
            return GN_ENOMEM;
        t->subs = n;
        t->capsubs = nc;
    }
    t->subs[t->nsubs++] = pt;
    return 0;
}

static void topic_del_sub(psr_topic *t, psr_pt *pt)
{
    for (size_t i = 0; i < t->nsubs; i++) {
        if (t->subs[i] == pt) {
            t->subs[i] = t->subs[--t->nsubs];
            return;
        }
    }
}

/*
 * The topic table is full and a peer's subscription needs a new topic:
 * evicts the oldest topic held only by peers' subscriptions (not ours, no
 * score parameters, no fanout, no cached or pending message, no score
 * counters) among those created by the peer that created the most live
 * topics, dropping those subscriptions. A peer churning or hoarding topics
 * thus loses its own first; newcomers are not refused while such a topic
 * exists. False when there is none.
 */
static bool topic_evict(gni_psr *r)
{
    psr_peer *top = NULL;
    for (gni_list *e = r->peer_list.next; e != &r->peer_list; e = e->next) {
        psr_peer *q = GNI_CONTAINER_OF(e, psr_peer, all);
        if (q->created && (!top || q->created > top->created))
            top = q;
    }
    if (!top)
        return false;
    for (gni_list *e = r->topic_list.next; e != &r->topic_list; e = e->next) {
        psr_topic *t = GNI_CONTAINER_OF(e, psr_topic, all);
        if (t->creator != top || t->subscribed || t->has_params || t->nfanout || t->nmesh ||
            t->refs != t->nsubs)
            continue;
        while (t->nsubs) {
            psr_pt *pt = t->subs[t->nsubs - 1];
            psr_peer *q = pt->peer;
            t->nsubs--;
            pt->sub = false;
            q->nsubs--;
            for (size_t i = 0; i < q->npts; i++) {
                if (q->pts[i] == pt) {
                    pt_free_at(q, i);
                    break;
                }
            }
        }
        r->st.subs_ignored++;
        topic_free(r, t);
        return true;
    }
    return false;
}

/* ---- score ---- */

static double pt_score(const gni_psr *r, const psr_pt *pt, gn_time now)
{
    const gni_psr_topic_score_params *sp = topic_sp(r, pt->topic);
    if (!sp)
        return 0;
    double s = 0;
    if (pt->mesh && now > pt->graft_time) {
        double q = (double)(now - pt->graft_time) / (double)sp->time_in_mesh_quantum;
        s += GNI_MIN(q, sp->time_in_mesh_cap) * sp->time_in_mesh_weight;
    }
    s += pt->first_del * sp->first_message_deliveries_weight;
    if (pt->mesh_active && pt->mesh_del < sp->mesh_message_deliveries_threshold) {
        double d = sp->mesh_message_deliveries_threshold - pt->mesh_del;
        s += d * d * sp->mesh_message_deliveries_weight;
    }
    s += pt->mesh_fail * sp->mesh_failure_penalty_weight;
    s += pt->invalid * pt->invalid * sp->invalid_message_deliveries_weight;
    return s * sp->topic_weight;
}

static double peer_score(const gni_psr *r, const psr_peer *p, gn_time now)
{
    const gni_psr_score_params *sp = &r->c.score;
    if (!sp->enabled)
        return 0;
    double s = 0;
    for (size_t i = 0; i < p->npts; i++)
        s += pt_score(r, p->pts[i], now);
    if (sp->topic_score_cap > 0 && s > sp->topic_score_cap)
        s = sp->topic_score_cap;
    if (sp->app_specific)
        s += sp->app_specific(sp->app_specific_user_data, &p->id) * sp->app_specific_weight;
    if (p->ip_len && p->ip_peers > sp->ip_colocation_factor_threshold) {
        double x = (double)(p->ip_peers - sp->ip_colocation_factor_threshold);
        s += x * x * sp->ip_colocation_factor_weight;
    }
    if (p->behaviour > sp->behaviour_penalty_threshold) {
        double x = p->behaviour - sp->behaviour_penalty_threshold;
        s += x * x * sp->behaviour_penalty_weight;
    }
    return s;
}

static double decay1(double v, double f, double zero)
{
    v *= f;
    return v < zero ? 0 : v;
}

static void score_decay(gni_psr *r)
{
    const gni_psr_score_params *sp = &r->c.score;
    gni_list *e;
    for (e = r->peer_list.next; e != &r->peer_list; e = e->next) {
        psr_peer *p = GNI_CONTAINER_OF(e, psr_peer, all);
        for (size_t i = 0; i < p->npts; i++) {
            psr_pt *pt = p->pts[i];
            const gni_psr_topic_score_params *tp = topic_sp(r, pt->topic);
            if (!tp)
                continue;
            pt->first_del = decay1(pt->first_del, tp->first_message_deliveries_decay, sp->decay_to_zero);
            pt->mesh_del = decay1(pt->mesh_del, tp->mesh_message_deliveries_decay, sp->decay_to_zero);
            pt->mesh_fail = decay1(pt->mesh_fail, tp->mesh_failure_penalty_decay, sp->decay_to_zero);
            pt->invalid = decay1(pt->invalid, tp->invalid_message_deliveries_decay, sp->decay_to_zero);
        }
        p->behaviour = decay1(p->behaviour, sp->behaviour_penalty_decay, sp->decay_to_zero);
    }
}

/* P3b on leaving a mesh: the squared deficit becomes a sticky penalty. */
static void pt_leave_mesh(gni_psr *r, psr_pt *pt)
{
    if (!pt->mesh)
        return;
    const gni_psr_topic_score_params *sp = topic_sp(r, pt->topic);
    if (sp && pt->mesh_active && pt->mesh_del < sp->mesh_message_deliveries_threshold) {
        double d = sp->mesh_message_deliveries_threshold - pt->mesh_del;
        pt->mesh_fail += d * d;
    }
    pt->mesh = false;
    pt->mesh_active = false;
    pt->topic->nmesh--;
}

static void pt_join_mesh(psr_pt *pt, gn_time now)
{
    if (pt->mesh)
        return;
    pt->mesh = true;
    pt->mesh_active = false;
    pt->graft_time = now;
    pt->topic->nmesh++;
}

/* ---- peers ---- */

static psr_peer *peer_find(const gni_psr *r, const gn_peer_id *id)
{
    if (!id || id->len == 0 || id->len > GN_PEER_ID_MAX_BYTES)
        return NULL;
    uint64_t k = psr_hash(r, id->bytes, id->len);
    for (gni_hnode *e = gni_htab_find(&r->peers, k); e; e = gni_htab_find_next(&r->peers, e)) {
        psr_peer *p = GNI_CONTAINER_OF(e, psr_peer, hn);
        if (p->id.len == id->len && memcmp(p->id.bytes, id->bytes, id->len) == 0)
            return p;
    }
    return NULL;
}

static void outs_clear(gni_psr *r, psr_peer *p)
{
    (void)r;
    while (!gni_list_empty(&p->outs)) {
        psr_out *o = GNI_CONTAINER_OF(p->outs.next, psr_out, link);
        gni_list_del(&o->link);
        gni_ps_rpc_fini(&o->rpc);
        gn_free(o);
    }
    r->out_total -= GNI_MIN(r->out_total, p->out_bytes);
    p->out_bytes = 0;
    gni_list_del(&p->outq);
    for (size_t i = 0; i < p->npts; i++)
        p->pts[i]->prune_queued = false;
}

static void prom_free(gni_psr *r, psr_prom *pr)
{
    gni_htab_remove(&r->prom, &pr->hn);
    gni_list_del(&pr->link);
    pr->peer->promises--;
    r->nprom--;
    bytes_free(&pr->id);
    gn_free(pr);
}

static void peer_free(gni_psr *r, psr_peer *p)
{
    if (p->promises) {
        for (gni_list *e = r->prom_list.next; e != &r->prom_list;) {
            psr_prom *pr = GNI_CONTAINER_OF(e, psr_prom, link);
            e = e->next;
            if (pr->peer == p)
                prom_free(r, pr);
        }
    }
    while (p->npts)
        pt_free_at(p, p->npts - 1);
    gn_free(p->pts);
    if (p->created) {
        for (gni_list *e = r->topic_list.next; e != &r->topic_list; e = e->next) {
            psr_topic *t = GNI_CONTAINER_OF(e, psr_topic, all);
            if (t->creator == p)
                t->creator = NULL;
        }
    }
    outs_clear(r, p);
    gni_htab_remove(&r->peers, &p->hn);
    gni_list_del(&p->all);
    if (!p->connected)
        r->nretained--;
    gn_free(p);
}

/* ---- output ---- */

static void peer_block(gni_psr *r, psr_peer *p, gn_time now);

/*
 * The per-peer queued-byte bound B = max_out_bytes_per_peer. Droppable
 * output (messages, IHAVE, IWANT) is refused once it would take the queue
 * beyond B: counted in stats.out_dropped, and the peer is then treated as
 * congested (left out of meshes, no forwards or gossip) until half of its
 * queue is taken. SUB, GRAFT and PRUNE are refused beyond 2B (counted);
 * they are few anyway (at most one unsent PRUNE per peer x topic, GRAFTs
 * only to unblocked peers, SUBs only on our own subscription changes).
 */
static bool out_fits(gni_psr *r, psr_peer *p, size_t est, bool droppable, gn_time now)
{
    size_t b = r->c.max_out_bytes_per_peer;
    size_t cap = droppable ? b : (b > SIZE_MAX / 2 ? SIZE_MAX : 2 * b);
    if (droppable && r->out_total + est > r->c.max_out_bytes_total) {
        r->st.out_dropped++; /* all peers' queues together: not this peer's fault */
        return false;
    }
    if (est <= cap && p->out_bytes <= cap - est)
        return true;
    r->st.out_dropped++;
    if (droppable && !p->over) {
        p->over = true;
        if (!p->congested)
            peer_block(r, p, now);
    }
    return false;
}

static psr_out *out_slot(gni_psr *r, psr_peer *p, size_t est, size_t nctl, size_t nids,
                         bool is_msg, bool is_sub)
{
    psr_out *o = NULL;
    if (!gni_list_empty(&p->outs)) {
        o = GNI_CONTAINER_OF(p->outs.prev, psr_out, link);
        if (o->est + est > r->lim.max_rpc_len || o->nctl + nctl > r->lim.max_control ||
            o->nids + nids > r->lim.max_ids_total || (is_msg && o->rpc.msg_cnt >= r->lim.max_msgs) ||
            (is_sub && o->rpc.sub_cnt >= r->lim.max_subs))
            o = NULL;
    }
    if (!o) {
        o = gn_calloc(1, sizeof *o);
        if (!o)
            return NULL;
        gni_ps_rpc_init(&o->rpc);
        o->est = 16;
        gni_list_add_tail(&p->outs, &o->link);
        if (!gni_list_on(&p->outq))
            gni_list_add_tail(&r->outq, &p->outq);
    }
    o->est += est;
    o->nctl += nctl;
    o->nids += nids;
    p->out_bytes += est;
    r->out_total += est;
    return o;
}

static void out_drop_empty_tail(psr_peer *p)
{
    if (gni_list_empty(&p->outs))
        return;
    psr_out *o = GNI_CONTAINER_OF(p->outs.prev, psr_out, link);
    gni_ps_rpc *x = &o->rpc;
    if (x->sub_cnt + x->msg_cnt + x->ihave_cnt + x->iwant_cnt + x->graft_cnt + x->prune_cnt == 0) {
        gni_list_del(&o->link);
        gn_free(o);
        if (gni_list_empty(&p->outs))
            gni_list_del(&p->outq);
    }
}

static int out_sub(gni_psr *r, psr_peer *p, bool sub, const char *topic)
{
    size_t est = strlen(topic) + 16;
    if (!out_fits(r, p, est, false, r->now))
        return GN_ELIMIT;
    psr_out *o = out_slot(r, p, est, 0, 0, false, true);
    if (!o)
        return GN_ENOMEM;
    int rc = gni_ps_rpc_add_sub(&o->rpc, sub, topic);
    if (rc)
        out_drop_empty_tail(p);
    return rc;
}

/* Queues a copy of @m to @p (counted as dropped when the peer is congested
 * or its queue is over the bound). Returns 1 when queued. */
static int out_msg(gni_psr *r, psr_peer *p, const gni_ps_msg *m, gn_time now)
{
    if (peer_blocked(p)) {
        r->st.out_dropped++;
        return 0;
    }
    size_t est = msg_est(m);
    if (!out_fits(r, p, est, true, now))
        return 0;
    gni_ps_msg c;
    if (msg_dup(&c, m))
        return GN_ENOMEM;
    psr_out *o = out_slot(r, p, est, 0, 0, true, false);
    if (!o) {
        gni_ps_msg_fini(&c);
        return GN_ENOMEM;
    }
    if (gni_ps_rpc_add_msg(&o->rpc, &c)) {
        gni_ps_msg_fini(&c);
        out_drop_empty_tail(p);
        return GN_ENOMEM;
    }
    return 1;
}

static int out_graft(gni_psr *r, psr_peer *p, const char *topic)
{
    size_t est = strlen(topic) + 16;
    if (!out_fits(r, p, est, false, r->now))
        return GN_ELIMIT;
    psr_out *o = out_slot(r, p, est, 1, 0, false, false);
    if (!o)
        return GN_ENOMEM;
    int rc = gni_ps_rpc_add_graft(&o->rpc, topic);
    if (rc)
        out_drop_empty_tail(p);
    return rc;
}

/* PRUNE @pt's peer from @pt's topic with @backoff; PX to v1.1 peers when @px. */
static int out_prune(gni_psr *r, psr_pt *pt, gn_time backoff, bool px, gn_time now)
{
    psr_peer *p = pt->peer;
    psr_topic *t = pt->topic;
    if (pt->prune_queued)
        return 0; /* one unsent PRUNE per peer x topic is enough */
    bool v11 = p->proto == GNI_PSR_MESHSUB11;
    size_t npx = 0;
    psr_peer *cand[64];
    /* no PX towards peers with a negative score (v1.1 "Score Thresholds") */
    if (v11 && px && r->c.do_px && peer_score(r, p, now) >= 0) {
        size_t want = GNI_MIN((size_t)r->c.prune_peers, GNI_MIN(r->lim.max_px, GNI_ARRAY_LEN(cand)));
        /* reservoir sample of topic peers with score >= 0 */
        size_t seen = 0;
        for (size_t i = 0; i < t->nsubs; i++) {
            psr_peer *q = t->subs[i]->peer;
            if (q == p || !peer_is_gossip(q) || peer_score(r, q, now) < 0)
                continue;
            seen++;
            if (npx < want)
                cand[npx++] = q;
            else {
                size_t j = (size_t)(psr_rand(r) % seen);
                if (j < want)
                    cand[j] = q;
            }
        }
    }
    size_t est = t->name_len + 32 + npx * (GN_PEER_ID_MAX_BYTES + 8);
    if (!out_fits(r, p, est, false, now))
        return GN_ELIMIT;
    psr_out *o = out_slot(r, p, est, 1, 0, false, false);
    if (!o)
        return GN_ENOMEM;
    gni_ps_prune *pr = NULL;
    uint64_t bs = (backoff + GN_S - 1) / GN_S;
    int rc = gni_ps_rpc_add_prune(&o->rpc, t->name, v11, v11 ? bs : 0, &pr);
    for (size_t i = 0; rc == 0 && i < npx; i++)
        rc = gni_ps_prune_add_px(pr, cand[i]->id.bytes, cand[i]->id.len, NULL, 0);
    if (rc)
        out_drop_empty_tail(p);
    else
        pt->prune_queued = true;
    return rc;
}

/* Queues GRAFT, then (only when queued) adds @pt to the mesh. */
static int mesh_graft(gni_psr *r, psr_pt *pt, gn_time now)
{
    int rc = out_graft(r, pt->peer, pt->topic->name);
    if (rc == 0)
        pt_join_mesh(pt, now);
    return rc;
}

/* Removes @pt from the mesh, sets its backoff and sends PRUNE. */
static int mesh_prune(gni_psr *r, psr_pt *pt, gn_time backoff, bool px, gn_time now)
{
    pt_leave_mesh(r, pt);
    pt->backoff_until = now + backoff;
    return out_prune(r, pt, backoff, px, now);
}

/* The peer just became blocked: leave its fanouts, PRUNE it from meshes. */
static void peer_block(gni_psr *r, psr_peer *p, gn_time now)
{
    for (size_t i = 0; i < p->npts; i++) {
        psr_pt *pt = p->pts[i];
        if (pt->fanout) {
            pt->fanout = false;
            pt->topic->nfanout--;
        }
        if (pt->mesh)
            (void)mesh_prune(r, pt, r->c.prune_backoff, false, now);
    }
}

/* ---- events ---- */

static int ev_push_msg(gni_psr *r, gni_psr_event_kind kind, const gni_ps_msg *m, const uint8_t *id,
                       size_t id_len, const gn_peer_id *from, bool local)
{
    size_t sz = msg_est(m) + id_len;
    if (r->nev >= r->c.max_events || r->ev_bytes + sz > r->c.max_event_bytes) {
        r->st.events_dropped++;
        return 0;
    }
    psr_ev *e = gn_calloc(1, sizeof *e);
    if (!e)
        return GN_ENOMEM;
    e->bytes = sz;
    r->ev_bytes += sz;
    e->ev.kind = kind;
    if (msg_dup(&e->ev.msg, m) || bytes_set(&e->ev.id, id, id_len)) {
        r->ev_bytes -= sz;
        gni_psr_event_fini(&e->ev);
        gn_free(e);
        return GN_ENOMEM;
    }
    if (from)
        e->ev.from = *from;
    e->ev.local = local;
    gni_list_add_tail(&r->evq, &e->link);
    r->nev++;
    return 0;
}

/* ---- message cache ---- */

static psr_mc *mc_find(const gni_psr *r, const uint8_t *id, size_t n)
{
    uint64_t k = psr_hash(r, id, n);
    for (gni_hnode *e = gni_htab_find(&r->mc, k); e; e = gni_htab_find_next(&r->mc, e)) {
        psr_mc *m = GNI_CONTAINER_OF(e, psr_mc, hn);
        if (bytes_eq(&m->id, id, n))
            return m;
    }
    return NULL;
}

static void mc_free(gni_psr *r, psr_mc *m)
{
    gni_htab_remove(&r->mc, &m->hn);
    gni_list_del(&m->link);
    m->topic->refs--;
    r->mc_bytes -= GNI_MIN(r->mc_bytes, msg_est(&m->msg) + m->id.len);
    bytes_free(&m->id);
    gni_ps_msg_fini(&m->msg);
    gn_free(m->tx);
    gn_free(m->credited);
    gn_free(m);
    r->nmc--;
}

static gni_list *mc_window(gni_psr *r, size_t k) { return &r->win[(r->win_head + k) % r->c.mcache_len]; }

static psr_mc *mc_put(gni_psr *r, psr_topic *t, const gni_ps_msg *msg, const uint8_t *id,
                      size_t id_len, gn_time now)
{
    if (mc_find(r, id, id_len))
        return NULL;
    size_t sz = msg_est(msg) + id_len;
    while (r->nmc >= r->c.mcache_max_msgs || (r->nmc && r->mc_bytes + sz > r->c.mcache_max_bytes)) {
        for (size_t k = r->c.mcache_len; k-- > 0;) {
            gni_list *w = mc_window(r, k);
            if (!gni_list_empty(w)) {
                mc_free(r, GNI_CONTAINER_OF(w->next, psr_mc, link));
                break;
            }
        }
    }
    psr_mc *m = gn_calloc(1, sizeof *m);
    if (!m)
        return NULL;
    if (bytes_set(&m->id, id, id_len) || msg_dup(&m->msg, msg)) {
        bytes_free(&m->id);
        gn_free(m);
        return NULL;
    }
    m->hn.key = psr_hash(r, id, id_len);
    if (gni_htab_insert(&r->mc, &m->hn)) {
        bytes_free(&m->id);
        gni_ps_msg_fini(&m->msg);
        gn_free(m);
        return NULL;
    }
    m->topic = t;
    t->refs++;
    m->validated = now;
    gni_list_add_tail(mc_window(r, 0), &m->link);
    r->nmc++;
    r->mc_bytes += sz;
    return m;
}

static void mc_shift(gni_psr *r)
{
    size_t len = r->c.mcache_len;
    gni_list *old = mc_window(r, len - 1);
    while (!gni_list_empty(old))
        mc_free(r, GNI_CONTAINER_OF(old->next, psr_mc, link));
    r->win_head = (r->win_head + len - 1) % len;
}

/* Counts an IWANT reply of @m to @p; false when over gossip_retransmission. */
static bool mc_tx(gni_psr *r, psr_mc *m, psr_peer *p)
{
    uint64_t pk = p->hn.key;
    for (size_t i = 0; i < m->ntx; i++) {
        if (m->tx[i].pk == pk) {
            if (m->tx[i].cnt >= r->c.gossip_retransmission)
                return false;
            m->tx[i].cnt++;
            return true;
        }
    }
    if (m->ntx >= r->c.max_peers)
        return false;
    psr_tx *n = gn_realloc(m->tx, (m->ntx + 1) * sizeof *n);
    if (!n)
        return false;
    m->tx = n;
    m->tx[m->ntx].pk = pk;
    m->tx[m->ntx].cnt = 1;
    m->ntx++;
    return true;
}

/* Records @p as credited for @m (the first sender and mesh peers within
 * the window: at most d_hi + 1). False when it cannot be recorded. */
static bool mc_credit(gni_psr *r, psr_mc *m, psr_peer *p)
{
    size_t cap = (size_t)r->c.d_hi + 1;
    if (m->ncred >= cap)
        return false;
    if ((m->ncred & (m->ncred - 1)) == 0) { /* 0, 1, 2, 4, ...: grow */
        size_t nc = GNI_MIN(cap, m->ncred ? 2 * m->ncred : 2);
        uint64_t *n = gn_realloc(m->credited, nc * sizeof *n);
        if (!n)
            return false;
        m->credited = n;
    }
    m->credited[m->ncred++] = p->hn.key;
    return true;
}

/* ---- promises ---- */

static void prom_kept(gni_psr *r, const uint8_t *id, size_t n)
{
    uint64_t k = psr_hash(r, id, n);
    gni_hnode *e = gni_htab_find(&r->prom, k);
    while (e) {
        gni_hnode *nx = gni_htab_find_next(&r->prom, e);
        psr_prom *pr = GNI_CONTAINER_OF(e, psr_prom, hn);
        if (bytes_eq(&pr->id, id, n))
            prom_free(r, pr);
        e = nx;
    }
}

static void prom_add(gni_psr *r, psr_peer *p, const uint8_t *id, size_t n, gn_time now)
{
    if (p->promises >= r->c.max_iwant_promises)
        return;
    psr_prom *pr = gn_calloc(1, sizeof *pr);
    if (!pr)
        return;
    if (bytes_set(&pr->id, id, n) != 0) {
        gn_free(pr);
        return;
    }
    pr->hn.key = psr_hash(r, id, n);
    if (gni_htab_insert(&r->prom, &pr->hn)) {
        bytes_free(&pr->id);
        gn_free(pr);
        return;
    }
    pr->peer = p;
    pr->expire = now + r->c.iwant_followup_time;
    gni_list_add_tail(&r->prom_list, &pr->link);
    p->promises++;
    r->nprom++;
}

/* ---- pending validations ---- */

static psr_pend *pend_find(const gni_psr *r, const uint8_t *id, size_t n)
{
    uint64_t k = psr_hash(r, id, n);
    for (gni_hnode *e = gni_htab_find(&r->pend, k); e; e = gni_htab_find_next(&r->pend, e)) {
        psr_pend *pd = GNI_CONTAINER_OF(e, psr_pend, hn);
        if (bytes_eq(&pd->id, id, n))
            return pd;
    }
    return NULL;
}

static void dec_add(gni_psr *r, const uint8_t *id, size_t n, gni_psr_verdict v)
{
    r->dec[r->dec_head].k = psr_hash(r, id, n) | 1;
    r->dec[r->dec_head].v = (uint8_t)v;
    r->dec_head = (r->dec_head + 1) % PSR_DECIDED;
}

/* GNI_PSR_REJECT / GNI_PSR_IGNORE when @id was recently decided so, else GNI_PSR_ACCEPT. */
static gni_psr_verdict dec_find(const gni_psr *r, const uint8_t *id, size_t n)
{
    uint64_t k = psr_hash(r, id, n) | 1;
    for (size_t i = 0; i < PSR_DECIDED; i++)
        if (r->dec[i].k == k)
            return (gni_psr_verdict)r->dec[i].v;
    return GNI_PSR_ACCEPT;
}

static void pend_free(gni_psr *r, psr_pend *pd)
{
    if (!pd->unlinked)
        gni_htab_remove(&r->pend, &pd->hn);
    gni_list_del(&pd->link);
    pd->topic->refs--;
    bytes_free(&pd->id);
    gni_ps_msg_fini(&pd->msg);
    r->pend_bytes -= pd->bytes;
    gn_free(pd);
    r->npend--;
}

/* ---- message flow ---- */

/* P4 for @p in @t. */
static void penalise_invalid(gni_psr *r, psr_peer *p, psr_topic *t)
{
    if (!p)
        return;
    psr_pt *pt = pt_get(p, t);
    if (pt)
        pt->invalid += 1;
}

/* Sends @m (ID @id) onwards: floodsub peers of the topic and the mesh (or,
 * for own messages, flood publish / fanout). @src: the peer it came from
 * (NULL for own). */
static int route_msg(gni_psr *r, psr_topic *t, const gni_ps_msg *m, psr_peer *src, bool own,
                     gn_time now)
{
    int rc = 0;
    bool use_fanout = own && !t->subscribed && !r->c.flood_publish;
    if (use_fanout) {
        t->fanout_last = now;
        if (t->nfanout == 0) {
            /* build a fanout of up to D peers with score >= publish_threshold */
            psr_pt **cand = gn_malloc((t->nsubs + 1) * sizeof *cand);
            if (!cand)
                return GN_ENOMEM;
            size_t n = 0;
            for (size_t i = 0; i < t->nsubs; i++) {
                psr_peer *q = t->subs[i]->peer;
                if (peer_is_gossip(q) && !peer_blocked(q) &&
                    (!r->c.score.enabled || peer_score(r, q, now) >= r->c.score.publish_threshold))
                    cand[n++] = t->subs[i];
            }
            psr_shuffle(r, (void **)cand, n);
            for (size_t i = 0; i < n && i < r->c.d; i++) {
                cand[i]->fanout = true;
                t->nfanout++;
            }
            gn_free(cand);
        }
    }
    for (size_t i = 0; i < t->nsubs; i++) {
        psr_pt *pt = t->subs[i];
        psr_peer *q = pt->peer;
        if (q == src || !q->connected)
            continue;
        if (m->has_from && m->from.len == q->id.len && memcmp(m->from.data, q->id.bytes, q->id.len) == 0)
            continue;
        bool send;
        if (!peer_is_gossip(q) || (own && r->c.flood_publish))
            send = !r->c.score.enabled || peer_score(r, q, now) >= r->c.score.publish_threshold;
        else if (use_fanout)
            send = pt->fanout;
        else
            send = pt->mesh;
        if (!send)
            continue;
        int x = out_msg(r, q, m, now);
        if (x < 0)
            rc = x;
        else if (x > 0)
            t->st.forwarded++;
    }
    return rc;
}

/* A validated message: cache, score, deliver, forward. */
static int msg_accepted(gni_psr *r, psr_topic *t, const gni_ps_msg *m, const uint8_t *id,
                        size_t id_len, psr_peer *src, const gn_peer_id *src_id, bool own, gn_time now)
{
    psr_mc *mc = mc_put(r, t, m, id, id_len, now);
    if (!mc && !mc_find(r, id, id_len))
        return GN_ENOMEM;
    if (src) {
        psr_pt *pt = pt_get(src, t);
        const gni_psr_topic_score_params *sp = topic_sp(r, t);
        if (pt && sp) {
            pt->first_del = GNI_MIN(pt->first_del + 1, sp->first_message_deliveries_cap);
            if (pt->mesh)
                pt->mesh_del = GNI_MIN(pt->mesh_del + 1, sp->mesh_message_deliveries_cap);
        }
        if (mc)
            (void)mc_credit(r, mc, src);
    }
    int rc = 0;
    if (t->subscribed) {
        t->st.delivered++;
        rc = ev_push_msg(r, GNI_PSR_EV_DELIVER, m, id, id_len, src_id, own);
    }
    int rc2 = route_msg(r, t, m, src, own, now);
    return rc ? rc : rc2;
}

/* A duplicate from @p: P3 credit within the window of the first delivery. */
static void msg_duplicate(gni_psr *r, psr_topic *t, psr_peer *p, const uint8_t *id, size_t n,
                          gn_time now)
{
    t->st.duplicates++;
    psr_pend *pd = pend_find(r, id, n);
    if (pd) {
        if (pd->ndups < GNI_ARRAY_LEN(pd->dups))
            pd->dups[pd->ndups++] = p->id;
        return;
    }
    psr_mc *mc = mc_find(r, id, n);
    psr_pt *pt = pt_find(p, t);
    const gni_psr_topic_score_params *sp = topic_sp(r, t);
    if (!mc || !pt || !pt->mesh || !sp || now > mc->validated + sp->mesh_message_deliveries_window)
        return;
    for (size_t i = 0; i < mc->ncred; i++)
        if (mc->credited[i] == p->hn.key)
            return;
    if (!mc_credit(r, mc, p))
        return; /* cannot record it: no credit (no double credit later) */
    pt->mesh_del = GNI_MIN(pt->mesh_del + 1, sp->mesh_message_deliveries_cap);
}

static int msg_in(gni_psr *r, psr_peer *p, const gni_ps_msg *m, gn_time now)
{
    if (!m->topic)
        return 0;
    psr_topic *t = topic_find(r, m->topic);
    if (!t || !t->subscribed) {
        return 0; /* not a topic we relay: dropped, as go does */
    }
    uint8_t id[GNI_PS_MSG_ID_MAX];
    long idl = gni_ps_msg_id(r->c.msg_id, r->c.msg_id_user_data, m, id, sizeof id);
    if (idl <= 0 || (size_t)idl > r->lim.max_id_len) {
        r->st.bad_messages++;
        t->st.rejected++;
        penalise_invalid(r, p, t);
        return 0;
    }
    size_t n = (size_t)idl;
    /* seen only once accepted (as go): a copy during validation joins the
     * pending entry, a copy of a recently rejected/ignored one is dropped */
    if (pend_find(r, id, n) || gni_ps_seen_has(&r->seen, id, n, now)) {
        msg_duplicate(r, t, p, id, n, now);
        return 0;
    }
    gni_psr_verdict dv = dec_find(r, id, n);
    if (dv != GNI_PSR_ACCEPT) {
        t->st.duplicates++;
        if (dv == GNI_PSR_REJECT)
            penalise_invalid(r, p, t);
        return 0;
    }
    if (gni_ps_msg_verify(m, r->c.sign_policy, NULL) != 0) {
        /* not recorded: a valid copy may still come */
        r->st.bad_messages++;
        t->st.rejected++;
        penalise_invalid(r, p, t);
        return 0;
    }
    if (r->has_self && m->has_from && m->from.len == r->self.len &&
        memcmp(m->from.data, r->self.bytes, r->self.len) == 0) {
        /* claims to be ours but we did not publish it (ours are seen): dropped, no penalty */
        t->st.ignored++;
        return 0;
    }
    int rc;
    gni_psr_verdict v = GNI_PSR_ACCEPT;
    if (r->c.validate)
        v = r->c.validate(r->c.validate_user_data, t->name, m, &p->id);
    switch (v) {
    case GNI_PSR_ACCEPT:
        if ((rc = gni_ps_seen_add(&r->seen, id, n, now)) < 0)
            return rc;
        prom_kept(r, id, n);
        return msg_accepted(r, t, m, id, n, p, &p->id, false, now);
    case GNI_PSR_REJECT:
        prom_kept(r, id, n);
        dec_add(r, id, n, GNI_PSR_REJECT);
        t->st.rejected++;
        penalise_invalid(r, p, t);
        return 0;
    case GNI_PSR_DEFER: {
        /* throttled (validation queue or event queue full): ignored, not
         * recorded, so a later copy is validated again */
        size_t psz = msg_est(m) + n;
        if (r->npend >= r->c.max_pending_validations || r->nev >= r->c.max_events ||
            r->pend_bytes + psz > r->c.max_pending_bytes || r->ev_bytes + psz > r->c.max_event_bytes) {
            t->st.ignored++;
            return 0;
        }
        prom_kept(r, id, n);
        psr_pend *pd = gn_calloc(1, sizeof *pd);
        if (!pd)
            return GN_ENOMEM;
        if (bytes_set(&pd->id, id, n) || msg_dup(&pd->msg, m)) {
            bytes_free(&pd->id);
            gn_free(pd);
            return GN_ENOMEM;
        }
        pd->hn.key = psr_hash(r, id, n);
        if (gni_htab_insert(&r->pend, &pd->hn)) {
            bytes_free(&pd->id);
            gni_ps_msg_fini(&pd->msg);
            gn_free(pd);
            return GN_ENOMEM;
        }
        pd->topic = t;
        t->refs++;
        pd->from = p->id;
        pd->deadline = now + r->c.validation_timeout;
        gni_list_add_tail(&r->pend_list, &pd->link);
        r->npend++;
        pd->bytes = psz;
        r->pend_bytes += psz;
        rc = ev_push_msg(r, GNI_PSR_EV_VALIDATE, m, id, n, &p->id, false);
        if (rc < 0)
            pend_free(r, pd); /* no event, no pending entry */
        return rc;
    }
    case GNI_PSR_IGNORE:
    default:
        prom_kept(r, id, n);
        dec_add(r, id, n, GNI_PSR_IGNORE);
        t->st.ignored++;
        return 0;
    }
}

/* ---- control ---- */

static bool pt_idle(const gni_psr *r, const psr_pt *pt, gn_time now);

static void sub_in(gni_psr *r, psr_peer *p, const gni_ps_sub *s, gn_time now)
{
    if (!s->topic || !s->topic[0])
        return;
    if (s->subscribe) {
        psr_topic *t = topic_find(r, s->topic);
        psr_pt *pt = t ? pt_find(p, t) : NULL;
        if (pt && pt->sub)
            return;
        if (p->nsubs >= r->c.max_topics_per_peer) {
            r->st.subs_ignored++;
            return;
        }
        int err = 0;
        if (!t && !(t = topic_get(r, s->topic, p, &err))) {
            r->st.subs_ignored++;
            return;
        }
        if (!pt && !(pt = pt_get(p, t)))
            return;
        if (topic_add_sub(t, pt) != 0)
            return;
        pt->sub = true;
        p->nsubs++;
    } else {
        psr_topic *t = topic_find(r, s->topic);
        psr_pt *pt = t ? pt_find(p, t) : NULL;
        if (!pt || !pt->sub)
            return;
        pt_leave_mesh(r, pt);
        if (pt->fanout) {
            pt->fanout = false;
            t->nfanout--;
        }
        topic_del_sub(t, pt);
        pt->sub = false;
        p->nsubs--;
        /* free the record and topic now: sub/unsub churn must not fill the tables */
        if (pt_idle(r, pt, now)) {
            for (size_t i = 0; i < p->npts; i++) {
                if (p->pts[i] == pt) {
                    pt_free_at(p, i);
                    break;
                }
            }
            if (topic_idle(t))
                topic_free(r, t);
        }
    }
}

static void ihave_in(gni_psr *r, psr_peer *p, const gni_ps_rpc *rpc, gn_time now, double score)
{
    if (rpc->ihave_cnt == 0)
        return;
    if ((r->c.score.enabled && score < r->c.score.gossip_threshold) || peer_blocked(p)) {
        /* a congested peer's IWANT replies could only pile up */
        r->st.ihave_ignored += rpc->ihave_cnt;
        return;
    }
    p->ihave_msgs++;
    if (p->ihave_msgs > r->c.max_ihave_msgs || p->ihave_ids >= r->c.max_ihave_len) {
        r->st.ihave_ignored += rpc->ihave_cnt;
        return;
    }
    /* collect wanted ids (pointers into @rpc) */
    size_t cap = 0;
    for (size_t i = 0; i < rpc->ihave_cnt; i++)
        cap += rpc->ihave[i].id_cnt;
    if (cap == 0)
        return;
    const gni_ps_bytes **want = gn_malloc(cap * sizeof *want);
    if (!want)
        return;
    size_t n = 0;
    for (size_t i = 0; i < rpc->ihave_cnt; i++) {
        const gni_ps_ihave *ih = &rpc->ihave[i];
        psr_topic *t = ih->topic ? topic_find(r, ih->topic) : NULL;
        if (!t || !t->subscribed)
            continue;
        for (size_t j = 0; j < ih->id_cnt; j++) {
            const gni_ps_bytes *b = &ih->ids[j];
            if (b->len == 0 || b->len > r->lim.max_id_len || gni_ps_seen_has(&r->seen, b->data, b->len, now))
                continue;
            bool dup = false;
            for (size_t k = n; k-- > 0 && !dup && n - k < 64;)
                dup = bytes_eq(want[k], b->data, b->len);
            if (!dup)
                want[n++] = b;
        }
    }
    size_t room = r->c.max_ihave_len - p->ihave_ids;
    if (n > room) {
        r->st.ihave_ignored += n - room;
        psr_shuffle(r, (void **)want, n);
        n = room;
    }
    if (n > r->lim.max_ids)
        n = r->lim.max_ids;
    if (n > 0) {
        p->ihave_ids += (unsigned)n;
        const uint8_t **ids = gn_malloc(n * sizeof *ids);
        size_t *lens = gn_malloc(n * sizeof *lens);
        if (ids && lens) {
            for (size_t i = 0; i < n; i++) {
                ids[i] = want[i]->data;
                lens[i] = want[i]->len;
            }
            /* as many ids as fit in the peer's queue bound; the rest are ignored */
            size_t qroom = r->c.max_out_bytes_per_peer > p->out_bytes ? r->c.max_out_bytes_per_peer - p->out_bytes : 0;
            size_t est = 16, fit = 0;
            while (fit < n && est + lens[fit] + 4 <= qroom)
                est += lens[fit++] + 4;
            if (fit == 0) {
                fit = 1;
                est += lens[0] + 4; /* refused by out_fits below: peer marked over */
            }
            r->st.ihave_ignored += n - fit;
            n = fit;
            /* the promise starts when gni_psr_next_out() hands the IWANT out */
            psr_out *o = out_fits(r, p, est, true, now) ? out_slot(r, p, est, 1, n, false, false) : NULL;
            if (o && gni_ps_rpc_add_iwant(&o->rpc, ids, lens, n) != 0)
                out_drop_empty_tail(p);
        }
        gn_free(ids);
        gn_free(lens);
    }
    gn_free(want);
}

static void iwant_in(gni_psr *r, psr_peer *p, const gni_ps_rpc *rpc, gn_time now, double score)
{
    if (rpc->iwant_cnt == 0)
        return;
    if (r->c.score.enabled && score < r->c.score.gossip_threshold)
        return;
    for (size_t i = 0; i < rpc->iwant_cnt; i++) {
        const gni_ps_iwant *iw = &rpc->iwant[i];
        for (size_t j = 0; j < iw->id_cnt; j++) {
            const gni_ps_bytes *b = &iw->ids[j];
            psr_mc *mc = b->len ? mc_find(r, b->data, b->len) : NULL;
            if (!mc || !mc_tx(r, mc, p)) {
                r->st.iwant_refused++;
                continue;
            }
            if (out_msg(r, p, &mc->msg, now) > 0)
                r->st.iwant_served++;
        }
    }
}

static void graft_in(gni_psr *r, psr_peer *p, const char *topic, gn_time now, double score)
{
    psr_topic *t = topic ? topic_find(r, topic) : NULL;
    if (!t || !t->subscribed)
        return; /* unknown topic: ignored (spam hardening, as go) */
    psr_pt *pt = pt_get(p, t);
    if (!pt || pt->mesh)
        return;
    if (pt->backoff_until > now) {
        /* GRAFT during backoff: P7, twice when right after our PRUNE */
        r->st.backoff_violations++;
        r->st.graft_refused++;
        p->behaviour += 1;
        if (now + r->c.prune_backoff < pt->backoff_until + r->c.graft_flood_threshold)
            p->behaviour += 1;
        (void)mesh_prune(r, pt, r->c.prune_backoff, false, now);
        return;
    }
    if ((r->c.score.enabled && score < 0) || peer_blocked(p) || !pt->sub) {
        r->st.graft_refused++;
        (void)mesh_prune(r, pt, r->c.prune_backoff, false, now);
        return;
    }
    if (t->nmesh >= r->c.d_hi && !p->outbound) {
        r->st.graft_refused++;
        (void)mesh_prune(r, pt, r->c.prune_backoff, true, now);
        return;
    }
    pt_join_mesh(pt, now);
}

static void prune_in(gni_psr *r, psr_peer *p, const gni_ps_prune *pr, gn_time now, double score)
{
    psr_topic *t = pr->topic ? topic_find(r, pr->topic) : NULL;
    if (!t)
        return;
    psr_pt *pt = pt_find(p, t);
    if (!pt)
        return;
    pt_leave_mesh(r, pt);
    gn_time bo = r->c.prune_backoff;
    if (pr->has_backoff && pr->backoff_s > 0) {
        uint64_t cap = UINT64_MAX / GN_S / 2;
        bo = (gn_time)GNI_MIN(pr->backoff_s, cap) * GN_S;
    }
    if (pt->backoff_until < now + bo)
        pt->backoff_until = now + bo;
    if (pr->peer_cnt == 0 || p->proto != GNI_PSR_MESHSUB11)
        return;
    if (r->c.score.enabled && score <= r->c.score.accept_px_threshold)
        return; /* PX only from peers whose score exceeds the threshold */
    for (size_t i = 0; i < pr->peer_cnt && r->npx_ev < r->c.max_px_candidates; i++) {
        const gni_ps_px *x = &pr->peers[i];
        gn_peer_id pid;
        if (gn_peer_id_from_bytes(x->peer_id.data, x->peer_id.len, &pid) != 0)
            continue;
        psr_peer *q = peer_find(r, &pid);
        if ((q && q->connected) || (r->has_self && gn_peer_id_equal(&pid, &r->self)))
            continue;
        if (r->nev >= r->c.max_events) {
            r->st.events_dropped++;
            break;
        }
        psr_ev *e = gn_calloc(1, sizeof *e);
        if (!e)
            return;
        e->ev.kind = GNI_PSR_EV_PX;
        e->ev.from = p->id;
        if (bytes_set(&e->ev.px.peer_id, x->peer_id.data, x->peer_id.len) ||
            bytes_set(&e->ev.px.spr, x->spr.data, x->spr.len) ||
            gni_ps_msg_set(&e->ev.msg, t->name, NULL, 0, NULL)) {
            gni_psr_event_fini(&e->ev);
            gn_free(e);
            return;
        }
        gni_list_add_tail(&r->evq, &e->link);
        r->nev++;
        r->npx_ev++;
    }
}

/* ---- public: lifecycle ---- */

void gni_psr_config_default(gni_psr_config *c)
{
    memset(c, 0, sizeof *c);
    c->d = 6;
    c->d_lo = 5;
    c->d_hi = 12;
    c->d_lazy = 6;
    c->d_score = 4;
    c->d_out = 2;
    c->heartbeat_interval = GN_S;
    c->heartbeat_initial_delay = 100 * GN_MS;
    c->fanout_ttl = 60 * GN_S;
    c->mcache_len = 5;
    c->mcache_gossip = 3;
    c->seen_ttl = 120 * GN_S;
    c->prune_backoff = 60 * GN_S;
    c->unsubscribe_backoff = 10 * GN_S;
    c->graft_flood_threshold = 10 * GN_S;
    c->opportunistic_graft_ticks = 60;
    c->opportunistic_graft_peers = 2;
    c->flood_publish = true;
    c->gossip_factor = 0.25;
    c->max_ihave_len = 5000;
    c->max_ihave_msgs = 10;
    c->iwant_followup_time = 3 * GN_S;
    c->gossip_retransmission = 3;
    c->prune_peers = 16;
    c->do_px = true;
    c->sign_policy = GNI_PS_STRICT_SIGN;
    c->max_peers = 1024;
    c->max_topics = 4096;
    c->max_topics_per_peer = 512;
    c->max_pending_validations = 1024;
    c->validation_timeout = 30 * GN_S;
    c->mcache_max_msgs = 16384;
    c->seen_max = 65536;
    c->max_iwant_promises = 5000;
    c->max_out_bytes_per_peer = 8u * 1024 * 1024;
    c->max_px_candidates = 256;
    c->max_events = 4096;
    c->mcache_max_bytes = (size_t)64 * 1024 * 1024;
    c->max_event_bytes = (size_t)64 * 1024 * 1024;
    c->max_pending_bytes = (size_t)64 * 1024 * 1024;
    c->max_out_bytes_total = (size_t)256 * 1024 * 1024;
    gni_psr_score_params *s = &c->score;
    s->enabled = true;
    s->ip_colocation_factor_weight = -10;
    s->ip_colocation_factor_threshold = 10;
    s->behaviour_penalty_weight = -10;
    s->behaviour_penalty_threshold = 0;
    s->behaviour_penalty_decay = 0.9;
    s->decay_interval = GN_S;
    s->decay_to_zero = 0.01;
    s->retain_score = 60 * GN_S;
    s->gossip_threshold = -10;
    s->publish_threshold = -50;
    s->graylist_threshold = -80;
    s->accept_px_threshold = 10;
    s->opportunistic_graft_threshold = 1;
    s->has_default_topic = true;
    gni_psr_topic_score_params *t = &s->default_topic;
    t->topic_weight = 1;
    t->time_in_mesh_weight = 0.01;
    t->time_in_mesh_quantum = GN_S;
    t->time_in_mesh_cap = 300;
    t->first_message_deliveries_weight = 1;
    t->first_message_deliveries_decay = 0.5;
    t->first_message_deliveries_cap = 100;
    t->mesh_message_deliveries_weight = 0; /* P3 needs per-topic rate tuning: off by default */
    t->mesh_message_deliveries_decay = 0.5;
    t->mesh_message_deliveries_cap = 100;
    t->mesh_message_deliveries_threshold = 1;
    t->mesh_message_deliveries_window = 10 * GN_MS;
    t->mesh_message_deliveries_activation = 5 * GN_S;
    t->mesh_failure_penalty_weight = 0;
    t->mesh_failure_penalty_decay = 0.5;
    t->invalid_message_deliveries_weight = -100;
    t->invalid_message_deliveries_decay = 0.9;
}

static bool decay_ok(double d) { return d > 0 && d < 1; }

static bool topic_params_ok(const gni_psr_topic_score_params *p)
{
    return p->topic_weight >= 0 && p->time_in_mesh_quantum > 0 && p->time_in_mesh_weight >= 0 &&
           p->first_message_deliveries_weight >= 0 && decay_ok(p->first_message_deliveries_decay) &&
           p->mesh_message_deliveries_weight <= 0 && decay_ok(p->mesh_message_deliveries_decay) &&
           p->mesh_failure_penalty_weight <= 0 && decay_ok(p->mesh_failure_penalty_decay) &&
           p->invalid_message_deliveries_weight <= 0 && decay_ok(p->invalid_message_deliveries_decay) &&
           p->mesh_message_deliveries_threshold >= 0 &&
           p->mesh_message_deliveries_cap >= p->mesh_message_deliveries_threshold;
}

#define DEF0(f, v)                                                                                 \
    do {                                                                                           \
        if (!(f))                                                                                  \
            (f) = (v);                                                                             \
    } while (0)

int gni_psr_new(const gni_psr_config *cfg, gn_time now, gni_psr **out)
{
    if (!cfg || !out)
        return GN_EINVAL;
    *out = NULL;
    gni_psr_config c = *cfg;
    DEF0(c.max_peers, 1024);
    DEF0(c.max_topics, 4096);
    DEF0(c.max_topics_per_peer, 512);
    DEF0(c.max_pending_validations, 1024);
    DEF0(c.validation_timeout, 30 * GN_S);
    DEF0(c.mcache_max_msgs, 16384);
    DEF0(c.seen_max, 65536);
    DEF0(c.max_iwant_promises, 5000);
    DEF0(c.max_out_bytes_per_peer, 8u * 1024 * 1024);
    DEF0(c.max_px_candidates, 256);
    DEF0(c.max_events, 4096);
    DEF0(c.mcache_max_bytes, (size_t)64 * 1024 * 1024);
    DEF0(c.max_event_bytes, (size_t)64 * 1024 * 1024);
    DEF0(c.max_pending_bytes, (size_t)64 * 1024 * 1024);
    DEF0(c.max_out_bytes_total, (size_t)256 * 1024 * 1024);
    DEF0(c.gossip_retransmission, 3);
    DEF0(c.max_ihave_len, 5000);
    DEF0(c.max_ihave_msgs, 10);
    DEF0(c.opportunistic_graft_ticks, 60);
    const gni_psr_score_params *s = &c.score;
    if (c.d_lo > c.d || c.d > c.d_hi || c.d == 0 || c.d_out >= c.d_lo || c.d_out > c.d / 2 ||
        c.d_score > c.d || c.mcache_len == 0 || c.mcache_gossip > c.mcache_len ||
        c.heartbeat_interval == 0 || c.seen_ttl == 0 || c.gossip_factor < 0 || c.gossip_factor > 1 ||
        (c.sign_policy != GNI_PS_STRICT_SIGN && c.sign_policy != GNI_PS_STRICT_NO_SIGN) ||
        (c.sign_policy == GNI_PS_STRICT_NO_SIGN && !c.msg_id))
        return GN_EINVAL; /* StrictNoSign messages have no from/seqno: the default ID cannot name them */
    if (s->enabled &&
        (s->decay_interval == 0 || s->gossip_threshold >= 0 || s->app_specific_weight < 0 || s->publish_threshold > s->gossip_threshold ||
         s->graylist_threshold >= s->publish_threshold || s->accept_px_threshold < 0 ||
         s->opportunistic_graft_threshold < 0 || s->ip_colocation_factor_weight > 0 ||
         s->ip_colocation_factor_threshold < 1 ||
         s->behaviour_penalty_weight > 0 ||
         (s->behaviour_penalty_weight < 0 && !decay_ok(s->behaviour_penalty_decay)) ||
         s->decay_to_zero < 0 || s->decay_to_zero >= 1 ||
         (s->has_default_topic && !topic_params_ok(&s->default_topic))))
        return GN_EINVAL;
    gni_psr *r = gn_calloc(1, sizeof *r);
    if (!r)
        return GN_ENOMEM;
    r->c = c;
    r->lim = gni_ps_limits_resolve(&c.limits);
    r->rng = c.rng ? c.rng : gn_rng_system();
    gn_rng_fill(r->rng, r->hkey, sizeof r->hkey);
    gni_list_init(&r->peer_list);
    gni_list_init(&r->topic_list);
    gni_list_init(&r->pend_list);
    gni_list_init(&r->prom_list);
    gni_list_init(&r->outq);
    gni_list_init(&r->evq);
    r->win = gn_calloc(c.mcache_len, sizeof *r->win);
    uint8_t sk[16];
    gn_rng_fill(r->rng, sk, sizeof sk);
    bool ok = r->win && gni_htab_init(&r->peers, 64) == 0 && gni_htab_init(&r->topics, 64) == 0 &&
              gni_htab_init(&r->mc, 256) == 0 && gni_htab_init(&r->pend, 64) == 0 &&
              gni_htab_init(&r->prom, 64) == 0 &&
              gni_ps_seen_init(&r->seen, c.seen_max, c.seen_ttl, r->lim.max_id_len, sk) == 0;
    if (!ok) {
        gni_psr_free(r);
        return GN_ENOMEM;
    }
    for (size_t i = 0; i < c.mcache_len; i++)
        gni_list_init(&r->win[i]);
    if (c.identity) {
        gn_identity_peer_id(c.identity, &r->self);
        r->has_self = true;
    }
    r->seqno = psr_rand(r) >> 1;
    r->now = now;
    r->next_hb = now + c.heartbeat_initial_delay;
    r->next_decay = now + (s->decay_interval ? s->decay_interval : GN_S);
    *out = r;
    return 0;
}

void gni_psr_free(gni_psr *r)
{
    if (!r)
        return;
    while (!gni_list_empty(&r->peer_list))
        peer_free(r, GNI_CONTAINER_OF(r->peer_list.next, psr_peer, all));
    while (!gni_list_empty(&r->pend_list))
        pend_free(r, GNI_CONTAINER_OF(r->pend_list.next, psr_pend, link));
    if (r->win) {
        for (size_t k = 0; k < r->c.mcache_len; k++)
            while (r->win[k].next && !gni_list_empty(&r->win[k]))
                mc_free(r, GNI_CONTAINER_OF(r->win[k].next, psr_mc, link));
    }
    while (!gni_list_empty(&r->topic_list))
        topic_free(r, GNI_CONTAINER_OF(r->topic_list.next, psr_topic, all));
    while (!gni_list_empty(&r->evq)) {
        psr_ev *e = GNI_CONTAINER_OF(r->evq.next, psr_ev, link);
        gni_list_del(&e->link);
        gni_psr_event_fini(&e->ev);
        gn_free(e);
    }
    gni_htab_fini(&r->peers);
    gni_htab_fini(&r->topics);
    gni_htab_fini(&r->mc);
    gni_htab_fini(&r->pend);
    gni_htab_fini(&r->prom);
    gni_ps_seen_fini(&r->seen);
    gn_free(r->win);
    gn_free(r);
}

int gni_psr_set_topic_score_params(gni_psr *r, const char *topic, const gni_psr_topic_score_params *p)
{
    if (!r || !topic || (p && !topic_params_ok(p)))
        return GN_EINVAL;
    int err = 0;
    psr_topic *t = topic_get(r, topic, NULL, &err);
    if (!t)
        return err;
    t->has_params = p != NULL;
    if (p)
        t->sp = *p;
    return 0;
}

/* ---- public: peers ---- */

static void ip_count(gni_psr *r, psr_peer *p, int delta)
{
    if (!p->ip_len)
        return;
    size_t same = 0;
    for (gni_list *e = r->peer_list.next; e != &r->peer_list; e = e->next) {
        psr_peer *q = GNI_CONTAINER_OF(e, psr_peer, all);
        if (q == p || !q->connected || q->ip_len != p->ip_len || memcmp(q->ip, p->ip, p->ip_len) != 0)
            continue;
        q->ip_peers = (size_t)((long)q->ip_peers + delta);
        same++;
    }
    p->ip_peers = delta > 0 ? same + 1 : 0;
}

int gni_psr_peer_add(gni_psr *r, const gn_peer_id *peer, gni_psr_proto proto, bool outbound,
                     const uint8_t *ip, size_t ip_len, gn_time now)
{
    if (!r || !peer || peer->len == 0 || peer->len > GN_PEER_ID_MAX_BYTES || proto > GNI_PSR_MESHSUB11 ||
        (ip && ip_len != 4 && ip_len != 16))
        return GN_EINVAL;
    psr_clock(r, now);
    psr_peer *p = peer_find(r, peer);
    if (p && p->connected)
        return GN_EEXIST;
    if (r->npeers >= r->c.max_peers)
        return GN_ELIMIT;
    bool fresh = !p;
    if (!p) {
        p = gn_calloc(1, sizeof *p);
        if (!p)
            return GN_ENOMEM;
        p->id = *peer;
        p->hn.key = psr_hash(r, peer->bytes, peer->len);
        gni_list_init(&p->outs);
        if (gni_htab_insert(&r->peers, &p->hn)) {
            gn_free(p);
            return GN_ENOMEM;
        }
        gni_list_add_tail(&r->peer_list, &p->all);
    } else {
        r->nretained--;
    }
    p->connected = true;
    p->congested = false;
    p->over = false;
    p->proto = proto;
    p->outbound = outbound;
    p->ip_len = ip ? ip_len : 0;
    if (ip)
        memcpy(p->ip, ip, ip_len);
    r->npeers++;
    ip_count(r, p, 1);
    int rc = 0;
    for (gni_list *e = r->topic_list.next; e != &r->topic_list; e = e->next) {
        psr_topic *t = GNI_CONTAINER_OF(e, psr_topic, all);
        if (t->subscribed && (rc = out_sub(r, p, true, t->name)) != 0)
            break;
    }
    if (rc) {
        /* roll back: the peer is not added */
        outs_clear(r, p);
        ip_count(r, p, -1);
        p->connected = false;
        r->npeers--;
        r->nretained++;
        if (fresh)
            peer_free(r, p);
        return rc == GN_ELIMIT ? GN_ENOMEM : rc;
    }
    return 0;
}

int gni_psr_peer_remove(gni_psr *r, const gn_peer_id *peer, gn_time now)
{
    psr_peer *p = r ? peer_find(r, peer) : NULL;
    if (!p || !p->connected)
        return GN_ENOTFOUND;
    for (size_t i = 0; i < p->npts; i++) {
        psr_pt *pt = p->pts[i];
        pt_leave_mesh(r, pt);
        if (pt->fanout) {
            pt->fanout = false;
            pt->topic->nfanout--;
        }
        if (pt->sub) {
            topic_del_sub(pt->topic, pt);
            pt->sub = false;
        }
    }
    p->nsubs = 0;
    ip_count(r, p, -1);
    outs_clear(r, p);
    /* score counters are kept for retain_score only when the score is <= 0
     * (as go/js: a reconnect cannot shed a penalty, a good score is not
     * carried over), P2 reset; backoffs are kept until they end, scoring
     * or not */
    bool keep_score = r->c.score.enabled && r->c.score.retain_score > 0 && peer_score(r, p, now) <= 0;
    gn_time until = keep_score ? now + r->c.score.retain_score : 0;
    for (size_t i = p->npts; i-- > 0;) {
        psr_pt *pt = p->pts[i];
        pt->first_del = 0;
        if (!keep_score)
            pt->mesh_del = pt->mesh_fail = pt->invalid = 0;
        if (pt->backoff_until > until)
            until = pt->backoff_until;
        if (pt_idle(r, pt, now))
            pt_free_at(p, i);
    }
    if (!keep_score)
        p->behaviour = 0;
    p->connected = false;
    p->congested = false;
    r->npeers--;
    r->nretained++; /* peer_free counts it down */
    if (until <= now) {
        peer_free(r, p);
        return 0;
    }
    p->retain_until = until;
    if (r->nretained > r->c.max_peers) {
        /* full: evict the best-scored (then soonest expiring) other retained peer */
        psr_peer *ev = NULL;
        double evs = 0;
        for (gni_list *e = r->peer_list.next; e != &r->peer_list; e = e->next) {
            psr_peer *q = GNI_CONTAINER_OF(e, psr_peer, all);
            if (q->connected || q == p)
                continue;
            double qs = peer_score(r, q, now);
            if (!ev || qs > evs || (qs == evs && q->retain_until < ev->retain_until)) {
                ev = q;
                evs = qs;
            }
        }
        if (ev)
            peer_free(r, ev);
    }
    return 0;
}

int gni_psr_peer_congested(gni_psr *r, const gn_peer_id *peer, bool congested, gn_time now)
{
    psr_peer *p = r ? peer_find(r, peer) : NULL;
    if (!p || !p->connected)
        return GN_ENOTFOUND;
    psr_clock(r, now);
    bool was = peer_blocked(p);
    p->congested = congested;
    if (!was && peer_blocked(p))
        peer_block(r, p, now);
    return 0;
}

int gni_psr_rpc_in(gni_psr *r, const gn_peer_id *peer, const gni_ps_rpc *rpc, gn_time now)
{
    if (!r || !rpc)
        return GN_EINVAL;
    psr_clock(r, now);
    psr_peer *p = peer_find(r, peer);
    if (!p || !p->connected)
        return GN_ENOTFOUND;
    double score = peer_score(r, p, now);
    if (r->c.score.enabled && score < r->c.score.graylist_threshold) {
        r->st.graylisted_rpcs++;
        return 0;
    }
    size_t ns = GNI_MIN(rpc->sub_cnt, r->lim.max_subs);
    if (ns < rpc->sub_cnt)
        r->st.subs_ignored += rpc->sub_cnt - ns;
    for (size_t i = 0; i < ns; i++)
        sub_in(r, p, &rpc->subs[i], now);
    int rc = 0;
    size_t nm = GNI_MIN(rpc->msg_cnt, r->lim.max_msgs);
    for (size_t i = 0; i < nm; i++) {
        int x = msg_in(r, p, &rpc->msgs[i], now);
        if (x < 0)
            rc = x;
    }
    if (!peer_is_gossip(p))
        return rc; /* floodsub peers send no control */
    ihave_in(r, p, rpc, now, score);
    iwant_in(r, p, rpc, now, score);
    for (size_t i = 0; i < rpc->graft_cnt; i++)
        graft_in(r, p, rpc->graft[i].topic, now, score);
    for (size_t i = 0; i < rpc->prune_cnt; i++)
        prune_in(r, p, &rpc->prune[i], now, score);
    return rc;
}

/* ---- public: application ---- */

int gni_psr_subscribe(gni_psr *r, const char *topic, gn_time now)
{
    if (!r || !topic || !topic[0])
        return GN_EINVAL;
    psr_clock(r, now);
    if (strlen(topic) > r->lim.max_topic_len)
        return GN_ETOOBIG;
    int err = 0;
    psr_topic *t = topic_get(r, topic, NULL, &err);
    if (!t)
        return err;
    if (t->subscribed)
        return 0;
    t->subscribed = true;
    int rc = 0;
    for (gni_list *e = r->peer_list.next; e != &r->peer_list; e = e->next) {
        psr_peer *p = GNI_CONTAINER_OF(e, psr_peer, all);
        if (p->connected) {
            int x = out_sub(r, p, true, t->name);
            if (x)
                rc = x;
        }
    }
    /* mesh: fanout peers first, then other eligible topic peers, up to D */
    psr_pt **cand = gn_malloc((t->nsubs + 1) * sizeof *cand);
    if (!cand)
        return GN_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < t->nsubs; i++) {
        psr_pt *pt = t->subs[i];
        if (pt->fanout) {
            pt->fanout = false;
            t->nfanout--;
            if (t->nmesh < r->c.d && !peer_blocked(pt->peer) && pt->backoff_until <= now &&
                peer_score(r, pt->peer, now) >= 0) {
                (void)mesh_graft(r, pt, now);
            }
        }
    }
    for (size_t i = 0; i < t->nsubs; i++) {
        psr_pt *pt = t->subs[i];
        psr_peer *q = pt->peer;
        if (!pt->mesh && peer_is_gossip(q) && !peer_blocked(q) && pt->backoff_until <= now &&
            peer_score(r, q, now) >= 0)
            cand[n++] = pt;
    }
    psr_shuffle(r, (void **)cand, n);
    for (size_t i = 0; i < n && t->nmesh < r->c.d; i++) {
        int x = mesh_graft(r, cand[i], now);
        if (x)
            rc = x;
    }
    gn_free(cand);
    return rc;
}

int gni_psr_unsubscribe(gni_psr *r, const char *topic, gn_time now)
{
    if (!r || !topic)
        return GN_EINVAL;
    psr_clock(r, now);
    psr_topic *t = topic_find(r, topic);
    if (!t || !t->subscribed)
        return GN_ENOTFOUND;
    t->subscribed = false;
    int rc = 0;
    for (gni_list *e = r->peer_list.next; e != &r->peer_list; e = e->next) {
        psr_peer *p = GNI_CONTAINER_OF(e, psr_peer, all);
        if (p->connected && out_sub(r, p, false, t->name))
            rc = GN_ENOMEM;
    }
    for (size_t i = 0; i < t->nsubs; i++)
        if (t->subs[i]->mesh)
            (void)mesh_prune(r, t->subs[i], r->c.unsubscribe_backoff, true, now);
    return rc;
}

int gni_psr_publish(gni_psr *r, const char *topic, const uint8_t *data, size_t len, gn_time now,
                    uint8_t *id_out, size_t *id_len)
{
    if (!r || !topic || !topic[0] || (len && !data))
        return GN_EINVAL;
    psr_clock(r, now);
    if (strlen(topic) > r->lim.max_topic_len)
        return GN_ETOOBIG;
    if (r->c.sign_policy == GNI_PS_STRICT_SIGN && !r->c.identity)
        return GN_EINVAL;
    gni_ps_msg m;
    gni_ps_msg_init(&m);
    uint64_t seq = r->seqno + 1;
    int rc = gni_ps_msg_set(&m, topic, data, len, r->c.sign_policy == GNI_PS_STRICT_SIGN ? &seq : NULL);
    if (rc)
        goto out;
    if (r->c.sign_policy == GNI_PS_STRICT_SIGN && (rc = gni_ps_msg_sign(&m, r->c.identity)) != 0)
        goto out;
    uint8_t id[GNI_PS_MSG_ID_MAX];
    long idl = gni_ps_msg_id(r->c.msg_id, r->c.msg_id_user_data, &m, id, sizeof id);
    if (idl < 0) {
        rc = (int)idl;
        goto out;
    }
    if ((size_t)idl > r->lim.max_id_len) {
        rc = GN_ETOOBIG;
        goto out;
    }
    {
        gni_ps_rpc one;
        gni_ps_rpc_init(&one);
        one.msgs = &m;
        one.msg_cnt = 1;
        long fl = gni_ps_rpc_frame_len(&one, &r->lim);
        if (fl < 0) {
            rc = fl == GN_ENOMEM ? GN_ENOMEM : GN_ETOOBIG;
            goto out;
        }
    }
    if (gni_ps_seen_has(&r->seen, id, (size_t)idl, now)) {
        rc = GN_EEXIST;
        goto out;
    }
    int err = 0;
    psr_topic *t = topic_get(r, topic, NULL, &err);
    if (!t) {
        rc = err;
        goto out;
    }
    if ((rc = gni_ps_seen_add(&r->seen, id, (size_t)idl, now)) < 0)
        goto out;
    r->seqno = seq;
    t->st.published++;
    rc = msg_accepted(r, t, &m, id, (size_t)idl, NULL, r->has_self ? &r->self : NULL, true, now);
    if (id_out)
        memcpy(id_out, id, (size_t)idl);
    if (id_len)
        *id_len = (size_t)idl;
out:
    gni_ps_msg_fini(&m);
    return rc;
}

int gni_psr_validation_result(gni_psr *r, const uint8_t *id, size_t id_len, gni_psr_verdict v,
                              gn_time now)
{
    if (!r || !id || !id_len || v > GNI_PSR_IGNORE)
        return GN_EINVAL;
    psr_clock(r, now);
    psr_pend *pd = pend_find(r, id, id_len);
    if (!pd)
        return GN_ENOTFOUND;
    int rc = 0;
    psr_topic *t = pd->topic;
    psr_peer *src = peer_find(r, &pd->from);
    /* out of the table first: crediting the copies must not re-append to pd->dups */
    gni_htab_remove(&r->pend, &pd->hn);
    pd->unlinked = true;
    if (v == GNI_PSR_ACCEPT) {
        rc = gni_ps_seen_add(&r->seen, id, id_len, now);
        if (rc < 0) {
            pend_free(r, pd);
            return rc;
        }
        rc = msg_accepted(r, t, &pd->msg, id, id_len, src && src->connected ? src : NULL, &pd->from,
                          false, now);
        for (size_t i = 0; i < pd->ndups; i++) {
            psr_peer *q = peer_find(r, &pd->dups[i]);
            if (q)
                msg_duplicate(r, t, q, id, id_len, now);
        }
        /* duplicates were counted when they arrived too */
        t->st.duplicates -= GNI_MIN(t->st.duplicates, pd->ndups);
    } else if (v == GNI_PSR_REJECT) {
        t->st.rejected++;
        dec_add(r, id, id_len, GNI_PSR_REJECT);
        penalise_invalid(r, src, t);
        for (size_t i = 0; i < pd->ndups; i++)
            penalise_invalid(r, peer_find(r, &pd->dups[i]), t);
    } else {
        t->st.ignored++;
        dec_add(r, id, id_len, GNI_PSR_IGNORE);
    }
    pend_free(r, pd);
    return rc;
}

/* ---- public: heartbeat ---- */

static int cmp_score_desc(const void *a, const void *b)
{
    const psr_pt *x = *(psr_pt *const *)a, *y = *(psr_pt *const *)b;
    return x->peer->score < y->peer->score ? 1 : x->peer->score > y->peer->score ? -1 : 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y ? 1 : 0;
}

static void mesh_maintain(gni_psr *r, psr_topic *t, gn_time now)
{
    const gni_psr_config *c = &r->c;
    psr_pt **v = gn_malloc((t->nsubs + 1) * sizeof *v);
    if (!v)
        return;
    /* drop negative-score, congested and activate P3 counting */
    const gni_psr_topic_score_params *sp = topic_sp(r, t);
    for (size_t i = 0; i < t->nsubs; i++) {
        psr_pt *pt = t->subs[i];
        if (!pt->mesh)
            continue;
        if (sp && !pt->mesh_active && now >= pt->graft_time + sp->mesh_message_deliveries_activation)
            pt->mesh_active = true;
        if ((c->score.enabled && pt->peer->score < 0) || peer_blocked(pt->peer))
            (void)mesh_prune(r, pt, c->prune_backoff, false, now);
    }
    /* too few: graft */
    size_t n = 0;
    if (t->nmesh < c->d_lo) {
        for (size_t i = 0; i < t->nsubs; i++) {
            psr_pt *pt = t->subs[i];
            psr_peer *q = pt->peer;
            if (!pt->mesh && peer_is_gossip(q) && !peer_blocked(q) && pt->backoff_until <= now &&
                q->score >= 0)
                v[n++] = pt;
        }
        psr_shuffle(r, (void **)v, n);
        for (size_t i = 0; i < n && t->nmesh < c->d; i++) {
            (void)mesh_graft(r, v[i], now);
        }
    }
    /* too many: keep d_score best, random rest, d_out outbound */
    if (t->nmesh > c->d_hi) {
        n = 0;
        for (size_t i = 0; i < t->nsubs; i++)
            if (t->subs[i]->mesh)
                v[n++] = t->subs[i];
        psr_shuffle(r, (void **)v, n);
        qsort(v, n, sizeof *v, cmp_score_desc);
        psr_shuffle(r, (void **)(v + c->d_score), n - c->d_score);
        size_t outb = 0;
        for (size_t i = 0; i < c->d; i++)
            outb += v[i]->peer->outbound;
        if (outb < c->d_out) {
            /* bring outbound peers from the pruned part in, replacing inbound non-score ones */
            size_t j = c->d; /* scan pruned part */
            for (size_t i = c->d; i-- > c->d_score && outb < c->d_out;) {
                if (v[i]->peer->outbound)
                    continue;
                while (j < n && !v[j]->peer->outbound)
                    j++;
                if (j >= n)
                    break;
                psr_pt *tmp = v[i];
                v[i] = v[j];
                v[j] = tmp;
                outb++;
                j++;
            }
        }
        for (size_t i = c->d; i < n; i++)
            (void)mesh_prune(r, v[i], c->prune_backoff, true, now);
    }
    /* enough but too few outbound: graft outbound peers */
    if (t->nmesh >= c->d_lo && c->d_out > 0) {
        size_t outb = 0;
        for (size_t i = 0; i < t->nsubs; i++)
            if (t->subs[i]->mesh && t->subs[i]->peer->outbound)
                outb++;
        if (outb < c->d_out) {
            n = 0;
            for (size_t i = 0; i < t->nsubs; i++) {
                psr_pt *pt = t->subs[i];
                psr_peer *q = pt->peer;
                if (!pt->mesh && q->outbound && peer_is_gossip(q) && !peer_blocked(q) &&
                    pt->backoff_until <= now && q->score >= 0)
                    v[n++] = pt;
            }
            psr_shuffle(r, (void **)v, n);
            for (size_t i = 0; i < n && outb < c->d_out; i++, outb++) {
                (void)mesh_graft(r, v[i], now);
            }
        }
    }
    /* opportunistic grafting */
    if (c->score.enabled && c->opportunistic_graft_ticks && r->hb_ticks % c->opportunistic_graft_ticks == 0 &&
        t->nmesh > 1) {
        double *sc = gn_malloc(t->nmesh * sizeof *sc);
        if (sc) {
            size_t m = 0;
            for (size_t i = 0; i < t->nsubs; i++)
                if (t->subs[i]->mesh)
                    sc[m++] = t->subs[i]->peer->score;
            qsort(sc, m, sizeof *sc, cmp_double);
            double median = sc[m / 2];
            gn_free(sc);
            if (median < c->score.opportunistic_graft_threshold) {
                n = 0;
                for (size_t i = 0; i < t->nsubs; i++) {
                    psr_pt *pt = t->subs[i];
                    psr_peer *q = pt->peer;
                    if (!pt->mesh && peer_is_gossip(q) && !peer_blocked(q) && pt->backoff_until <= now &&
                        q->score > median)
                        v[n++] = pt;
                }
                psr_shuffle(r, (void **)v, n);
                for (size_t i = 0; i < n && i < c->opportunistic_graft_peers; i++) {
                    (void)mesh_graft(r, v[i], now);
                }
            }
        }
    }
    gn_free(v);
}

/* IHAVE for @t to D_lazy (or gossip_factor) peers outside mesh and fanout. */
static void emit_gossip(gni_psr *r, psr_topic *t)
{
    const gni_psr_config *c = &r->c;
    size_t nid = 0;
    for (size_t k = 0; k < c->mcache_gossip; k++) {
        gni_list *w = mc_window(r, k);
        for (gni_list *e = w->next; e != w; e = e->next)
            if (GNI_CONTAINER_OF(e, psr_mc, link)->topic == t)
                nid++;
    }
    if (nid == 0)
        return;
    psr_mc **ids = gn_malloc(nid * sizeof *ids);
    psr_pt **v = gn_malloc((t->nsubs + 1) * sizeof *v);
    if (!ids || !v)
        goto out;
    nid = 0;
    for (size_t k = 0; k < c->mcache_gossip; k++) {
        gni_list *w = mc_window(r, k);
        for (gni_list *e = w->next; e != w; e = e->next) {
            psr_mc *m = GNI_CONTAINER_OF(e, psr_mc, link);
            if (m->topic == t)
                ids[nid++] = m;
        }
    }
    size_t n = 0;
    for (size_t i = 0; i < t->nsubs; i++) {
        psr_pt *pt = t->subs[i];
        psr_peer *q = pt->peer;
        if (pt->mesh || pt->fanout || !peer_is_gossip(q) || peer_blocked(q) ||
            (c->score.enabled && q->score < c->score.gossip_threshold))
            continue;
        v[n++] = pt;
    }
    size_t target = c->d_lazy;
    size_t f = (size_t)(c->gossip_factor * (double)n);
    if (f > target)
        target = f;
    psr_shuffle(r, (void **)v, n);
    if (n > target)
        n = target;
    size_t per = GNI_MIN(nid, GNI_MIN((size_t)c->max_ihave_len, r->lim.max_ids));
    const uint8_t **pp = gn_malloc((per + 1) * sizeof *pp);
    size_t *ll = gn_malloc((per + 1) * sizeof *ll);
    if (!pp || !ll) {
        gn_free(pp);
        gn_free(ll);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (nid > per)
            psr_shuffle(r, (void **)ids, nid);
        /* ids by count and by bytes: one IHAVE fits an RPC within max_rpc_len */
        size_t est = t->name_len + 16, room = r->lim.max_rpc_len > 64 + est ? r->lim.max_rpc_len - 64 : 0;
        size_t k = 0;
        for (size_t j = 0; j < per && est + ids[j]->id.len + 4 <= room; j++, k++) {
            pp[j] = ids[j]->id.data;
            ll[j] = ids[j]->id.len;
            est += ll[j] + 4;
        }
        if (k == 0 || !out_fits(r, v[i]->peer, est, true, r->now))
            continue;
        psr_out *o = out_slot(r, v[i]->peer, est, 1, k, false, false);
        if (o && gni_ps_rpc_add_ihave(&o->rpc, t->name, pp, ll, k) != 0)
            out_drop_empty_tail(v[i]->peer);
    }
    gn_free(pp);
    gn_free(ll);
out:
    gn_free(ids);
    gn_free(v);
}

static void fanout_maintain(gni_psr *r, psr_topic *t, gn_time now)
{
    const gni_psr_config *c = &r->c;
    if (t->nfanout == 0)
        return;
    bool expired = t->fanout_last + c->fanout_ttl <= now;
    for (size_t i = 0; i < t->nsubs; i++) {
        psr_pt *pt = t->subs[i];
        if (pt->fanout && (expired || peer_blocked(pt->peer) ||
                           (c->score.enabled && pt->peer->score < c->score.publish_threshold))) {
            pt->fanout = false;
            t->nfanout--;
        }
    }
    if (expired)
        return;
    if (t->nfanout < c->d) {
        psr_pt **v = gn_malloc((t->nsubs + 1) * sizeof *v);
        if (!v)
            return;
        size_t n = 0;
        for (size_t i = 0; i < t->nsubs; i++) {
            psr_pt *pt = t->subs[i];
            if (!pt->fanout && peer_is_gossip(pt->peer) && !peer_blocked(pt->peer) &&
                (!c->score.enabled || pt->peer->score >= c->score.publish_threshold))
                v[n++] = pt;
        }
        psr_shuffle(r, (void **)v, n);
        for (size_t i = 0; i < n && t->nfanout < c->d; i++) {
            v[i]->fanout = true;
            t->nfanout++;
        }
        gn_free(v);
    }
}

static bool pt_idle(const gni_psr *r, const psr_pt *pt, gn_time now)
{
    (void)r;
    return !pt->sub && !pt->mesh && !pt->fanout && pt->backoff_until <= now && pt->first_del == 0 &&
           pt->mesh_del == 0 && pt->mesh_fail == 0 && pt->invalid == 0;
}

int gni_psr_heartbeat(gni_psr *r, gn_time now)
{
    if (!r)
        return GN_EINVAL;
    psr_clock(r, now);
    if (now < r->next_hb)
        return 0;
    r->next_hb = r->next_hb + r->c.heartbeat_interval > now ? r->next_hb + r->c.heartbeat_interval
                                                            : now + r->c.heartbeat_interval;
    r->hb_ticks++;
    /* pending validations that timed out: IGNORE */
    while (!gni_list_empty(&r->pend_list)) {
        psr_pend *pd = GNI_CONTAINER_OF(r->pend_list.next, psr_pend, link);
        if (pd->deadline > now)
            break;
        pd->topic->st.ignored++;
        dec_add(r, pd->id.data, pd->id.len, GNI_PSR_IGNORE);
        pend_free(r, pd);
    }
    /* broken IWANT promises: P7 */
    while (!gni_list_empty(&r->prom_list)) {
        psr_prom *pr = GNI_CONTAINER_OF(r->prom_list.next, psr_prom, link);
        if (pr->expire > now)
            break;
        pr->peer->behaviour += 1;
        r->st.broken_promises++;
        prom_free(r, pr);
    }
    /* score decay */
    if (r->c.score.enabled) {
        while (r->next_decay <= now) {
            score_decay(r);
            r->next_decay += r->c.score.decay_interval;
            if (r->next_decay + 1000 * r->c.score.decay_interval < now)
                r->next_decay = now + r->c.score.decay_interval;
        }
    }
    /* per-peer: reset counters, cache scores, expire retained peers, GC records */
    for (gni_list *e = r->peer_list.next; e != &r->peer_list;) {
        psr_peer *p = GNI_CONTAINER_OF(e, psr_peer, all);
        e = e->next;
        if (!p->connected && p->retain_until <= now) {
            peer_free(r, p);
            continue;
        }
        p->ihave_msgs = 0;
        p->ihave_ids = 0;
        p->score = peer_score(r, p, now);
        for (size_t i = p->npts; i-- > 0;)
            if (pt_idle(r, p->pts[i], now))
                pt_free_at(p, i);
    }
    for (gni_list *e = r->topic_list.next; e != &r->topic_list; e = e->next) {
        psr_topic *t = GNI_CONTAINER_OF(e, psr_topic, all);
        if (t->subscribed) {
            mesh_maintain(r, t, now);
            emit_gossip(r, t);
        } else if (t->nfanout) {
            fanout_maintain(r, t, now);
            emit_gossip(r, t);
        }
    }
    for (gni_list *e = r->topic_list.next; e != &r->topic_list;) {
        psr_topic *t = GNI_CONTAINER_OF(e, psr_topic, all);
        e = e->next;
        if (topic_idle(t))
            topic_free(r, t);
    }
    mc_shift(r);
    (void)gni_ps_seen_expire(&r->seen, now);
    return 0;
}

gn_time gni_psr_next_timer(const gni_psr *r) { return r->next_hb; }

/* ---- public: outputs ---- */

/* @rpc leaves for @p: its PRUNEs are no longer unsent, its IWANTs start promises. */
static void out_handed(gni_psr *r, psr_peer *p, const gni_ps_rpc *rpc)
{
    for (size_t i = 0; i < rpc->prune_cnt; i++) {
        psr_topic *t = rpc->prune[i].topic ? topic_find(r, rpc->prune[i].topic) : NULL;
        psr_pt *pt = t ? pt_find(p, t) : NULL;
        if (pt)
            pt->prune_queued = false;
    }
    for (size_t i = 0; i < rpc->iwant_cnt; i++) {
        const gni_ps_iwant *iw = &rpc->iwant[i];
        if (iw->id_cnt == 0)
            continue;
        size_t pick = (size_t)(psr_rand(r) % iw->id_cnt);
        prom_add(r, p, iw->ids[pick].data, iw->ids[pick].len, r->now);
    }
}

int gni_psr_next_out(gni_psr *r, gn_peer_id *peer, gni_ps_rpc *rpc)
{
    if (!r || !peer || !rpc)
        return GN_EINVAL;
    for (gni_list *e = r->outq.next; e != &r->outq; e = e->next) {
        psr_peer *p = GNI_CONTAINER_OF(e, psr_peer, outq);
        if (p->congested)
            continue;
        psr_out *o = GNI_CONTAINER_OF(p->outs.next, psr_out, link);
        gni_list_del(&o->link);
        size_t took = GNI_MIN(p->out_bytes, o->est - 16);
        p->out_bytes -= took;
        r->out_total -= GNI_MIN(r->out_total, took);
        if (p->over && p->out_bytes <= r->c.max_out_bytes_per_peer / 2)
            p->over = false;
        gni_list_del(&p->outq);
        if (!gni_list_empty(&p->outs))
            gni_list_add_tail(&r->outq, &p->outq); /* round robin */
        *peer = p->id;
        gni_ps_rpc_fini(rpc);
        *rpc = o->rpc;
        gn_free(o);
        out_handed(r, p, rpc);
        return 1;
    }
    return 0;
}

int gni_psr_next_event(gni_psr *r, gni_psr_event *ev)
{
    if (!r || !ev)
        return GN_EINVAL;
    if (gni_list_empty(&r->evq))
        return 0;
    psr_ev *e = GNI_CONTAINER_OF(r->evq.next, psr_ev, link);
    gni_list_del(&e->link);
    r->nev--;
    r->ev_bytes -= e->bytes;
    if (e->ev.kind == GNI_PSR_EV_PX)
        r->npx_ev--;
    *ev = e->ev;
    gn_free(e);
    return 1;
}

void gni_psr_event_fini(gni_psr_event *ev)
{
    if (!ev)
        return;
    gni_ps_msg_fini(&ev->msg);
    bytes_free(&ev->id);
    bytes_free(&ev->px.peer_id);
    bytes_free(&ev->px.spr);
    memset(ev, 0, sizeof *ev);
}

/* ---- public: queries ---- */

static size_t list_peers(const gni_psr *r, const char *topic, gn_peer_id *out, size_t cap, bool mesh)
{
    psr_topic *t = (r && topic) ? topic_find(r, topic) : NULL;
    if (!t)
        return 0;
    size_t n = 0;
    for (size_t i = 0; i < t->nsubs; i++) {
        if (mesh && !t->subs[i]->mesh)
            continue;
        if (out && n < cap)
            out[n] = t->subs[i]->peer->id;
        n++;
    }
    return n;
}

size_t gni_psr_mesh_peers(const gni_psr *r, const char *topic, gn_peer_id *out, size_t cap)
{
    return list_peers(r, topic, out, cap, true);
}

size_t gni_psr_topic_peers(const gni_psr *r, const char *topic, gn_peer_id *out, size_t cap)
{
    return list_peers(r, topic, out, cap, false);
}

bool gni_psr_subscribed(const gni_psr *r, const char *topic)
{
    psr_topic *t = (r && topic) ? topic_find(r, topic) : NULL;
    return t && t->subscribed;
}

int gni_psr_get_topic_stats(const gni_psr *r, const char *topic, gni_psr_topic_stats *out)
{
    if (!r || !topic || !out)
        return GN_EINVAL;
    psr_topic *t = topic_find(r, topic);
    if (!t)
        return GN_ENOTFOUND;
    *out = t->st;
    out->mesh_peers = t->nmesh;
    out->topic_peers = t->nsubs;
    return 0;
}

void gni_psr_get_stats(const gni_psr *r, gni_psr_stats *out)
{
    *out = r->st;
    out->peers = r->npeers;
    out->topics = r->ntopics;
    out->pending_validations = r->npend;
    out->mcache_msgs = r->nmc;
    out->seen = gni_ps_seen_count(&r->seen);
}

int gni_psr_peer_score(gni_psr *r, const gn_peer_id *peer, gn_time now, double *score)
{
    psr_peer *p = r ? peer_find(r, peer) : NULL;
    if (!p || !score)
        return GN_ENOTFOUND;
    *score = peer_score(r, p, now);
    return 0;
}

size_t gni_psr_peer_out_bytes(const gni_psr *r, const gn_peer_id *peer)
{
    psr_peer *p = r ? peer_find(r, peer) : NULL;
    return p ? p->out_bytes : 0;
}
