/*
 * Fuzzes the pubsub router core (protocols/pubsub/pubsub_router.c): the
 * input is a program of one-byte operations with arguments, driving one
 * router with four peers: raw RPC bodies through the wire decoder,
 * structured SUB / GRAFT / PRUNE (with PX) / IHAVE / IWANT / messages
 * (signed, unsigned, tampered) built from the bytes, heartbeats with
 * advancing time, publishes, subscriptions, congestion, peers leaving and
 * coming back, validation verdicts. Tight bounds make them bite.
 * Checks: no fault; after each heartbeat every mesh is within D_hi; every
 * queued RPC encodes within the router's wire bounds; the message cache,
 * pending validations and seen cache stay within their bounds; each
 * peer's queued output stays within twice max_out_bytes_per_peer.
 */
#include "pubsub_router.h"

#include "golemnet/err.h"
#include "golemnet/identity.h"

#include <stdlib.h>
#include <string.h>

#define NPEERS 4
#define NTOPICS 3

typedef struct prog {
    const uint8_t *p;
    size_t n, pos;
} prog;

static unsigned next(prog *g)
{
    return g->pos < g->n ? g->p[g->pos++] : 0;
}

static void zero_fill(void *ud, uint8_t *out, size_t len)
{
    uint64_t *s = ud;
    for (size_t i = 0; i < len; i++) {
        *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
        out[i] = (uint8_t)(*s >> 33);
    }
}

static long id_fn(const gni_ps_msg *m, uint8_t *out, size_t cap, void *ud)
{
    (void)ud;
    /* StrictNoSign runs: the data's first bytes and its length name a message */
    size_t n = GNI_MIN(m->data.len, (size_t)16);
    if (cap < n + 1)
        return GN_ENOSPC;
    if (n)
        memcpy(out, m->data.data, n);
    out[n] = (uint8_t)m->data.len;
    return (long)n + 1;
}

static gni_psr_verdict validate(void *ud, const char *topic, const gni_ps_msg *m, const gn_peer_id *from)
{
    (void)ud;
    (void)topic;
    (void)from;
    if (m->data.len == 0)
        return GNI_PSR_ACCEPT;
    switch (m->data.data[0] & 3) {
    case 1:
        return GNI_PSR_REJECT;
    case 2:
        return GNI_PSR_IGNORE;
    case 3:
        return GNI_PSR_DEFER;
    default:
        return GNI_PSR_ACCEPT;
    }
}

static const char *const topics[NTOPICS + 1] = {"a", "b", "c", "z"};

typedef struct world {
    gni_psr *r;
    gni_psr_config c;
    gni_ps_limits lim;
    gn_identity *ids[NPEERS];
    gn_peer_id pid[NPEERS];
    bool up[NPEERS], congested[NPEERS];
    gn_time now;
    uint8_t known[8][GNI_PS_MSG_ID_MAX]; /* recent message IDs (own and pending) */
    size_t known_len[8];
    unsigned nknown;
    uint8_t *frame;
} world;

static void remember(world *w, const uint8_t *id, size_t len)
{
    if (len == 0 || len > GNI_PS_MSG_ID_MAX)
        return;
    unsigned k = w->nknown++ % 8;
    memcpy(w->known[k], id, len);
    w->known_len[k] = len;
}

static void drain(world *w)
{
    gn_peer_id to;
    gni_ps_rpc rpc;
    gni_ps_rpc_init(&rpc);
    while (gni_psr_next_out(w->r, &to, &rpc) == 1) {
        long n = gni_ps_rpc_encode(&rpc, &w->lim, w->frame, w->lim.max_rpc_len + 16);
        if (n <= 0)
            abort(); /* the router built an RPC its own bounds refuse */
        gni_ps_rpc_fini(&rpc);
    }
    gni_psr_event ev;
    while (gni_psr_next_event(w->r, &ev) == 1) {
        if (ev.kind == GNI_PSR_EV_VALIDATE)
            remember(w, ev.id.data, ev.id.len);
        gni_psr_event_fini(&ev);
    }
}

static void check(world *w, bool after_heartbeat)
{
    gni_psr_stats st;
    gni_psr_get_stats(w->r, &st);
    if (st.mcache_msgs > w->c.mcache_max_msgs || st.pending_validations > w->c.max_pending_validations ||
        st.seen > w->c.seen_max || st.topics > w->c.max_topics + NTOPICS || st.peers > NPEERS)
        abort();
    /* per-peer queued output: droppable kinds within B, control within 2B */
    for (int i = 0; i < NPEERS; i++)
        if (gni_psr_peer_out_bytes(w->r, &w->pid[i]) > 2 * w->c.max_out_bytes_per_peer)
            abort();
    if (!after_heartbeat)
        return;
    for (int t = 0; t < NTOPICS; t++)
        if (gni_psr_mesh_peers(w->r, topics[t], NULL, 0) > w->c.d_hi)
            abort();
}

static void rpc_in(world *w, unsigned peer, gni_ps_rpc *rpc)
{
    if (w->up[peer])
        (void)gni_psr_rpc_in(w->r, &w->pid[peer], rpc, w->now);
    gni_ps_rpc_fini(rpc);
}

static void op_message(world *w, prog *g, unsigned peer)
{
    gni_ps_rpc rpc;
    gni_ps_rpc_init(&rpc);
    unsigned cnt = 1 + next(g) % 3;
    for (unsigned i = 0; i < cnt; i++) {
        unsigned how = next(g);
        uint8_t data[24];
        size_t len = next(g) % sizeof data;
        for (size_t k = 0; k < len; k++)
            data[k] = (uint8_t)next(g);
        uint64_t seq = next(g);
        gni_ps_msg m;
        gni_ps_msg_init(&m);
        if (gni_ps_msg_set(&m, topics[how % (NTOPICS + 1)], data, len,
                           (how & 4) || w->c.sign_policy == GNI_PS_STRICT_SIGN ? &seq : NULL) != 0)
            continue;
        if ((how & 8) && m.has_seqno) {
            unsigned signer = (how >> 4) % NPEERS; /* possibly another peer's message */
            if (gni_ps_msg_sign(&m, w->ids[signer]) == 0 && (how & 0x80) && m.signature.len)
                m.signature.data[0] ^= 1; /* tampered */
        }
        if (gni_ps_rpc_add_msg(&rpc, &m) != 0)
            gni_ps_msg_fini(&m);
    }
    rpc_in(w, peer, &rpc);
}

static void op_control(world *w, prog *g, unsigned peer)
{
    gni_ps_rpc rpc;
    gni_ps_rpc_init(&rpc);
    unsigned cnt = 1 + next(g) % 4;
    for (unsigned i = 0; i < cnt; i++) {
        unsigned kind = next(g);
        const char *t = topics[(kind >> 3) % (NTOPICS + 1)];
        switch (kind & 7) {
        case 0:
        case 1:
            (void)gni_ps_rpc_add_sub(&rpc, kind & 1, t);
            break;
        case 2:
            (void)gni_ps_rpc_add_graft(&rpc, t);
            break;
        case 3: {
            gni_ps_prune *pr = NULL;
            if (gni_ps_rpc_add_prune(&rpc, t, kind & 0x40, next(g), &pr) == 0) {
                unsigned npx = next(g) % 5;
                for (unsigned k = 0; k < npx; k++) {
                    unsigned q = next(g);
                    if (q & 1) {
                        const gn_peer_id *p = &w->pid[(q >> 1) % NPEERS];
                        (void)gni_ps_prune_add_px(pr, p->bytes, p->len, NULL, 0);
                    } else {
                        uint8_t junk[8] = {(uint8_t)q, 1, 2, 3};
                        (void)gni_ps_prune_add_px(pr, junk, 1 + q % 8, junk, 4);
                    }
                }
            }
            break;
        }
        case 4:
        case 5: {
            /* IHAVE (4) or IWANT (5): known IDs and made-up ones */
            unsigned n = next(g) % 64;
            const uint8_t *ids[64];
            size_t lens[64];
            uint8_t made[64][4];
            for (unsigned k = 0; k < n; k++) {
                unsigned b = next(g);
                if ((b & 1) && w->nknown) {
                    unsigned j = (b >> 1) % (w->nknown < 8 ? w->nknown : 8);
                    ids[k] = w->known[j];
                    lens[k] = w->known_len[j];
                } else {
                    made[k][0] = (uint8_t)b;
                    made[k][1] = (uint8_t)k;
                    made[k][2] = (uint8_t)i;
                    made[k][3] = 7;
                    ids[k] = made[k];
                    lens[k] = 4;
                }
            }
            if ((kind & 7) == 4)
                (void)gni_ps_rpc_add_ihave(&rpc, t, ids, lens, n);
            else
                (void)gni_ps_rpc_add_iwant(&rpc, ids, lens, n);
            break;
        }
        default: {
            /* many subscriptions at once: the per-peer topic bound */
            unsigned n = next(g) % 40;
            for (unsigned k = 0; k < n; k++) {
                char name[8] = {'x', (char)('a' + k % 26), (char)('a' + (k / 26) % 26), 0};
                (void)gni_ps_rpc_add_sub(&rpc, true, name);
            }
            break;
        }
        }
    }
    rpc_in(w, peer, &rpc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    prog g = {data, size, 0};
    unsigned mode = next(&g);
    world w;
    memset(&w, 0, sizeof w);
    uint64_t seed = mode;
    gn_rng rng = {zero_fill, &seed};
    gn_identity *self = NULL;
    if (gn_identity_from_int_seed(1000, &self) != 0)
        abort();
    for (int i = 0; i < NPEERS; i++) {
        if (gn_identity_from_int_seed((uint32_t)i + 1, &w.ids[i]) != 0)
            abort();
        gn_identity_peer_id(w.ids[i], &w.pid[i]);
    }
    gni_psr_config_default(&w.c);
    w.c.d = 2;
    w.c.d_lo = 1;
    w.c.d_hi = 3;
    w.c.d_lazy = 2;
    w.c.d_score = 1;
    w.c.d_out = 0;
    w.c.mcache_max_msgs = 16;
    w.c.max_pending_validations = 4;
    w.c.seen_max = 64;
    w.c.max_topics = 8;
    w.c.max_topics_per_peer = 3;
    w.c.max_ihave_len = 20;
    w.c.max_ihave_msgs = 3;
    w.c.max_out_bytes_per_peer = 2048;
    w.c.max_events = 16;
    w.c.max_px_candidates = 4;
    w.c.validation_timeout = 2 * GN_S;
    w.c.opportunistic_graft_ticks = 3;
    w.c.flood_publish = mode & 1;
    w.c.sign_policy = (mode & 2) ? GNI_PS_STRICT_NO_SIGN : GNI_PS_STRICT_SIGN;
    if (mode & 2)
        w.c.msg_id = id_fn;
    w.c.validate = (mode & 4) ? validate : NULL;
    w.c.score.enabled = !(mode & 8);
    w.c.limits.max_rpc_len = 4096;
    w.c.limits.max_ids = 32;
    w.c.limits.max_px = 4;
    w.c.identity = self;
    w.c.rng = &rng;
    w.lim = gni_ps_limits_resolve(&w.c.limits);
    w.now = 5 * GN_S;
    w.frame = malloc(w.lim.max_rpc_len + 16);
    if (!w.frame || gni_psr_new(&w.c, w.now, &w.r) != 0)
        abort();
    for (unsigned i = 0; i < NPEERS; i++) {
        uint8_t ip[4] = {10, 0, 0, (uint8_t)(i & 2)};
        if (gni_psr_peer_add(w.r, &w.pid[i], (gni_psr_proto)((mode >> 4) + i) % 3, i & 1, ip, 4, w.now) != 0)
            abort();
        w.up[i] = true;
    }
    while (g.pos < g.n) {
        unsigned op = next(&g), a = next(&g);
        unsigned peer = a % NPEERS;
        switch (op % 12) {
        case 0: {
            size_t want = (size_t)next(&g) * 4; /* not inside GNI_MIN: it evaluates twice */
            size_t len = GNI_MIN(want, g.n - g.pos);
            gni_ps_rpc rpc;
            gni_ps_rpc_init(&rpc);
            if (gni_ps_rpc_decode(g.p + g.pos, len, &w.lim, &rpc, NULL) == 0)
                rpc_in(&w, peer, &rpc);
            gni_ps_rpc_fini(&rpc);
            g.pos += len;
            break;
        }
        case 1: {
            gn_time due = gni_psr_next_timer(w.r);
            w.now += (gn_time)(a + 1) * 50 * GN_MS;
            (void)gni_psr_heartbeat(w.r, w.now);
            check(&w, w.now >= due);
            break;
        }
        case 2: {
            uint8_t d[32];
            size_t len = next(&g) % sizeof d;
            for (size_t k = 0; k < len; k++)
                d[k] = (uint8_t)next(&g);
            uint8_t id[GNI_PS_MSG_ID_MAX];
            size_t idl = 0;
            if (gni_psr_publish(w.r, topics[a % NTOPICS], d, len, w.now, id, &idl) == 0)
                remember(&w, id, idl);
            break;
        }
        case 3:
            if (a & 0x10)
                (void)gni_psr_unsubscribe(w.r, topics[a % NTOPICS], w.now);
            else
                (void)gni_psr_subscribe(w.r, topics[a % NTOPICS], w.now);
            break;
        case 4:
            if (w.up[peer]) {
                w.congested[peer] = !w.congested[peer];
                if (gni_psr_peer_congested(w.r, &w.pid[peer], w.congested[peer], w.now) != 0)
                    abort();
            }
            break;
        case 5:
            if (w.up[peer]) {
                if (gni_psr_peer_remove(w.r, &w.pid[peer], w.now) != 0)
                    abort();
                w.up[peer] = false;
                w.congested[peer] = false;
            } else {
                if (gni_psr_peer_add(w.r, &w.pid[peer], (gni_psr_proto)((a >> 2) % 3), a & 0x80, NULL, 0,
                                     w.now) != 0)
                    abort();
                w.up[peer] = true;
            }
            break;
        case 6:
        case 7:
            op_control(&w, &g, peer);
            break;
        case 8:
        case 9:
            op_message(&w, &g, peer);
            break;
        case 10:
            drain(&w);
            break;
        default:
            if (w.nknown) {
                unsigned j = (a >> 2) % (w.nknown < 8 ? w.nknown : 8);
                (void)gni_psr_validation_result(w.r, w.known[j], w.known_len[j],
                                                (gni_psr_verdict)(a % 3), w.now);
            }
            break;
        }
        check(&w, false);
    }
    drain(&w);
    gni_psr_free(w.r);
    for (int i = 0; i < NPEERS; i++)
        gn_identity_free(w.ids[i]);
    gn_identity_free(self);
    free(w.frame);
    return 0;
}
