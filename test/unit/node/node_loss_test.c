/*
 * No silent loss (issue 10): a unicast by peer ID pushes back with GN_EAGAIN
 * when the channel's queue is full and GN_NODE_EV_WRITABLE says when to go
 * on; send failures that do not fit the event queue are aggregated, never
 * dropped. Nodes run on their own loop threads over TCP on loopback; every
 * wait is bounded.
 */
#include "golemnet/golemnet.h"
#include "golemnet/node.h"

#include "gn_test.h"
#include "gn_test_os.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <inttypes.h>
#include <uv.h>

/* Messages of the flood test; see docs/node.md ("No silent loss"). */
#define FLOOD_MSGS 1000000u
#define FLOOD_LEN 64u

static void quiet_log(void *ud, gn_log_level level, const char *comp, const char *msg)
{
    (void)ud;
    (void)level;
    if (getenv("GN_TEST_LOG")) {
        fprintf(stderr, "[%s] %s\n", comp, msg);
    }
}

static void setup(void)
{
    gts_block_sigpipe();
    gn_log_set(quiet_log, NULL, GN_LOG_INFO);
}

/* Pops events of @n until one of @type (copied to @out) or @ms passed. */
static int wait_type(gn_node *n, gn_node_event_type type, gn_node_event *out, gn_time ms)
{
    gn_time end = gn_now() + ms * GN_MS;
    while (gn_now() < end) {
        gn_node_event ev;
        int rc = gn_node_next_event(n, &ev, 50 * GN_MS);
        if (rc == 0 && ev.type == type) {
            *out = ev;
            return 0;
        }
        if (rc == 0) {
            gn_rcbuf_rele(ev.message);
        }
    }
    return GN_ETIMEDOUT;
}

typedef struct pair {
    gn_identity *ia, *ib;
    gn_node *a, *b;
    gn_peer_id pb;
    char bs[GN_PEER_ID_MAX_STRLEN];
    char baddr[GN_NODE_ADDR_MAX]; /* with /p2p/ */
    uint64_t chan;                /* a's channel to b */
} pair;

/* Two nodes, a dialled to b: a's channel id in p->chan. */
static void pair_up(pair *p, const char *security)
{
    memset(p, 0, sizeof *p);
    CHECK_OK(gn_identity_from_int_seed(11, &p->ia));
    CHECK_OK(gn_identity_from_int_seed(12, &p->ib));
    gn_node_config cfg;
    gn_node_config_default(&cfg);
    const char *listen = "/ip4/127.0.0.1/tcp/0";
    cfg.listen = &listen;
    cfg.n_listen = 1;
    cfg.security = security;
    cfg.identity = p->ia;
    CHECK_OK(gn_node_new(&cfg, &p->a));
    cfg.identity = p->ib;
    CHECK_OK(gn_node_new(&cfg, &p->b));
    CHECK_OK(gn_node_start(p->a));
    CHECK_OK(gn_node_start(p->b));
    gn_node_event ev;
    CHECK_OK(wait_type(p->b, GN_NODE_EV_LISTENING, &ev, 5000));
    snprintf(p->baddr, sizeof p->baddr, "%s", ev.addr);
    CHECK_OK(wait_type(p->a, GN_NODE_EV_LISTENING, &ev, 5000));
    gn_identity_peer_id(p->ib, &p->pb);
    gn_peer_id_to_string(&p->pb, p->bs, sizeof p->bs);
    uint64_t req = 0;
    CHECK_OK(gn_node_dial(p->a, p->baddr, NULL, NULL, &req));
    CHECK_OK(wait_type(p->a, GN_NODE_EV_DIAL, &ev, 5000));
    CHECK_EQ(ev.request_id, req);
    CHECK_EQ(ev.status, 0);
    p->chan = ev.channel_id;
}

static void pair_down(pair *p)
{
    gn_node_free(p->a); /* closes and waits */
    gn_node_free(p->b);
    gn_identity_free(p->ia);
    gn_identity_free(p->ib);
}

/* ---- the flood: every message arrives or is reported ---- */

typedef struct flood {
    pair *p;
    uint32_t total;
    _Atomic uint64_t reported; /* send failures seen on a (with their counts) */
    _Atomic bool done;
    uint64_t eagain, writable, bad_events;
    int error;                 /* an unexpected gn_node_unicast() result */
} flood;

/* Handles a's events: WRITABLE and SEND_FAILED; the channel must not close. */
static void flood_events(flood *f, gn_time timeout, bool until_writable)
{
    gn_node_event ev;
    gn_time end = gn_now() + timeout;
    while (gn_node_next_event(f->p->a, &ev, until_writable ? timeout : 0) == 0) {
        gn_rcbuf_rele(ev.message);
        if (ev.type == GN_NODE_EV_WRITABLE) {
            f->writable++;
            if (ev.channel_id != f->p->chan || !gn_peer_id_equal(&ev.peer, &f->p->pb)) {
                f->bad_events++;
            }
            if (until_writable) {
                return;
            }
        } else if (ev.type == GN_NODE_EV_SEND_FAILED) {
            atomic_fetch_add(&f->reported, ev.count);
        } else if (ev.type == GN_NODE_EV_CHANNEL_CLOSED || ev.type == GN_NODE_EV_MESSAGE) {
            f->bad_events++; /* identify, a late CHANNEL_OPENED: expected */
        }
        if (until_writable && gn_now() >= end) {
            return;
        }
    }
}

static void *flood_sender(void *arg)
{
    flood *f = arg;
    uint8_t msg[FLOOD_LEN];
    memset(msg, 0xa5, sizeof msg);
    for (uint32_t i = 0; i < f->total && !f->error; i++) {
        memcpy(msg, &i, sizeof i);
        for (int tries = 0;; tries++) {
            int rc = gn_node_unicast(f->p->a, f->p->bs, msg, sizeof msg, NULL);
            if (rc == 0) {
                break;
            }
            if (rc != GN_EAGAIN || tries > 1000) {
                f->error = rc;
                break;
            }
            f->eagain++;
            /* the channel's WRITABLE (a full command queue has none: 20 ms) */
            flood_events(f, 20 * GN_MS, true);
        }
        if ((i & 1023) == 0) {
            flood_events(f, 0, false);
        }
    }
    atomic_store(&f->done, true);
    return NULL;
}

GN_TEST(unicast_flood_every_message_arrives)
{
    setup();
    pair p;
    pair_up(&p, "noise");
    flood f = {.p = &p, .total = FLOOD_MSGS};
    gn_time t0 = gn_now();
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, flood_sender, &f), 0);
    /* this thread is the receiver: in order, each exactly once */
    uint64_t received = 0, out_of_order = 0;
    gn_time end = gn_now() + 60 * GN_S;
    while (received + atomic_load(&f.reported) < f.total && gn_now() < end && !f.error) {
        gn_node_event ev;
        if (gn_node_next_event(p.b, &ev, 100 * GN_MS) < 0) {
            continue;
        }
        if (ev.type == GN_NODE_EV_MESSAGE) {
            gn_slice s = gn_rcbuf_slice(ev.message);
            uint32_t seq = UINT32_MAX;
            if (s.len == FLOOD_LEN) {
                memcpy(&seq, s.base, sizeof seq);
            }
            out_of_order += seq != received;
            received++;
        }
        gn_rcbuf_rele(ev.message);
    }
    pthread_join(th, NULL);
    flood_events(&f, 0, false);
    gn_time took = gn_now() - t0;
    printf("# %u unicasts of %u bytes: %" PRIu64 " received, %" PRIu64
           " reported lost, %" PRIu64 " GN_EAGAIN, %" PRIu64 " WRITABLE, %.2f s\n",
           f.total, FLOOD_LEN, received, atomic_load(&f.reported), f.eagain, f.writable,
           (double)took / GN_S);
    CHECK_EQ(f.error, 0);
    CHECK_EQ(received + atomic_load(&f.reported), f.total);
    CHECK_EQ(received, f.total); /* with retries nothing is lost */
    CHECK_EQ(out_of_order, 0);
    CHECK_EQ(f.bad_events, 0);
    /* the sender was pushed back, and woken once per episode at most */
    CHECK(f.eagain > 0);
    CHECK(f.writable > 0);
    CHECK(f.writable <= f.eagain);
    gn_node_stats st;
    CHECK_OK(gn_node_stats_get(p.a, &st));
    CHECK_EQ(st.writable_events, f.writable);
    CHECK_EQ(st.events_dropped, 0);
    CHECK_EQ(st.send_failed_aggregated, 0);
    CHECK_EQ(gn_node_stats_get(NULL, &st), GN_EINVAL);
    pair_down(&p);
}

/* ---- GN_EAGAIN at once, one WRITABLE per episode ---- */

typedef struct blocker {
    uv_sem_t started, release;
} blocker;

static void block_loop(gn_loop *l, void *arg)
{
    (void)l;
    blocker *b = arg;
    uv_sem_post(&b->started);
    uv_sem_wait(&b->release);
}

/* Counts a's events of @type for @ms (others released). */
static int count_type(gn_node *n, gn_node_event_type type, gn_time ms, gn_node_event *last)
{
    int k = 0;
    gn_time end = gn_now() + ms * GN_MS;
    gn_node_event ev;
    while (gn_now() < end) {
        if (gn_node_next_event(n, &ev, 10 * GN_MS) < 0) {
            continue;
        }
        gn_rcbuf_rele(ev.message);
        if (ev.type == type) {
            k++;
            if (last) {
                *last = ev;
            }
        }
    }
    return k;
}

/* Receives @want messages on @n within @ms; returns how many came. */
static uint32_t receive(gn_node *n, uint32_t want, gn_time ms)
{
    uint32_t got = 0;
    gn_time end = gn_now() + ms * GN_MS;
    gn_node_event ev;
    while (got < want && gn_now() < end) {
        if (gn_node_next_event(n, &ev, 10 * GN_MS) == 0) {
            got += ev.type == GN_NODE_EV_MESSAGE;
            gn_rcbuf_rele(ev.message);
        }
    }
    return got;
}

GN_TEST(full_queue_pushes_back_and_writable_follows)
{
    setup();
    pair p;
    pair_up(&p, "noise");
    const uint8_t m[8] = "payload";
    /* sends that never met a full queue: no WRITABLE */
    for (int i = 0; i < 10; i++) {
        CHECK_OK(gn_node_unicast(p.a, p.bs, m, sizeof m, NULL));
    }
    CHECK_EQ(receive(p.b, 10, 5000), 10);
    CHECK_EQ(count_type(p.a, GN_NODE_EV_WRITABLE, 100, NULL), 0);

    /* the loop stands still: the 1025th message finds the queue full */
    blocker bl;
    uv_sem_init(&bl.started, 0);
    uv_sem_init(&bl.release, 0);
    CHECK_OK(gn_loop_submit(gn_node_loop(p.a), block_loop, &bl));
    uv_sem_wait(&bl.started);
    for (uint32_t i = 0; i < GN_HOST_MSG_QUEUE_MAX; i++) {
        CHECK_OK(gn_node_unicast(p.a, p.bs, m, sizeof m, NULL));
    }
    uint64_t req = 0;
    CHECK_EQ(gn_node_unicast(p.a, p.bs, m, sizeof m, &req), GN_EAGAIN);
    CHECK_EQ(req, 0); /* nothing queued, no request */
    CHECK_EQ(gn_node_unicast(p.a, p.baddr, m, sizeof m, NULL), GN_EAGAIN); /* by /p2p/ address */
    gn_multicast *mc;
    CHECK_OK(gn_multicast_new(p.a, "group", &mc));
    CHECK_OK(gn_multicast_join(mc, &p.pb));
    CHECK_EQ(gn_multicast_unicast(mc, &p.pb, m, sizeof m), GN_EAGAIN);
    uv_sem_post(&bl.release);

    /* one WRITABLE for the episode, for a's channel to b */
    gn_node_event ev;
    CHECK_EQ(count_type(p.a, GN_NODE_EV_WRITABLE, 500, &ev), 1);
    CHECK_EQ(ev.channel_id, p.chan);
    CHECK(gn_peer_id_equal(&ev.peer, &p.pb));
    CHECK_EQ(receive(p.b, GN_HOST_MSG_QUEUE_MAX, 10000), GN_HOST_MSG_QUEUE_MAX);
    CHECK_EQ(count_type(p.a, GN_NODE_EV_WRITABLE, 100, NULL), 0);
    CHECK_EQ(receive(p.b, 1, 100), 0); /* the refused ones were not sent */
    gn_node_stats st;
    CHECK_OK(gn_node_stats_get(p.a, &st));
    CHECK_EQ(st.writable_events, 1);
    CHECK_OK(gn_multicast_unicast(mc, &p.pb, m, sizeof m));
    CHECK_EQ(receive(p.b, 1, 5000), 1);
    gn_multicast_free(mc);
    uv_sem_destroy(&bl.started);
    uv_sem_destroy(&bl.release);
    pair_down(&p);
}

/* ---- failure reports past the event queue and overflow: aggregated ---- */

#define AGG_SENDS 2000u

GN_TEST(send_failures_aggregate_never_drop)
{
    setup();
    gn_identity *id, *other;
    CHECK_OK(gn_identity_from_int_seed(21, &id));
    CHECK_OK(gn_identity_from_int_seed(22, &other));
    gn_peer_id op;
    gn_identity_peer_id(other, &op);
    char os[GN_PEER_ID_MAX_STRLEN];
    gn_peer_id_to_string(&op, os, sizeof os);
    gn_node_config cfg;
    gn_node_config_default(&cfg);
    cfg.identity = id;
    cfg.security = "noise";
    cfg.event_queue_capacity = 4; /* overflow list: 256 */
    gn_node *n;
    CHECK_OK(gn_node_new(&cfg, &n));
    CHECK_OK(gn_node_start(n));
    /* no channel to that peer: each unicast fails with GN_ENOTFOUND */
    for (uint32_t i = 0; i < AGG_SENDS; i++) {
        int rc = gn_node_unicast(n, os, (const uint8_t *)"x", 1, NULL);
        for (int k = 0; rc == GN_EAGAIN && k < 1000; k++) { /* command queue */
            uv_sleep(1);
            rc = gn_node_unicast(n, os, (const uint8_t *)"x", 1, NULL);
        }
        CHECK_OK(rc);
    }
    /* nobody reads: 4 queued, 256 overflowed, the rest aggregated */
    gn_node_stats st = {0};
    uint64_t want_agg = AGG_SENDS - 4 - 256;
    for (int i = 0; i < 5000 && st.send_failed_aggregated < want_agg; i++) {
        uv_sleep(1);
        CHECK_OK(gn_node_stats_get(n, &st));
    }
    CHECK_EQ(st.send_failed_aggregated, want_agg);
    CHECK_EQ(st.events_overflowed, 256);
    CHECK_EQ(st.events_dropped, 0);
    /* closing: the aggregate still comes, before CLOSED */
    gn_node_close(n, NULL, NULL);
    uint64_t failures = 0, aggregates = 0, events = 0;
    bool closed = false;
    gn_node_event ev;
    for (int i = 0; i < 10000 && !closed; i++) {
        int rc = gn_node_next_event(n, &ev, 100 * GN_MS);
        if (rc == GN_ECLOSED) {
            break;
        }
        if (rc < 0) {
            continue;
        }
        events++;
        gn_rcbuf_rele(ev.message);
        if (ev.type == GN_NODE_EV_SEND_FAILED) {
            CHECK_EQ(ev.status, GN_ENOTFOUND);
            CHECK(ev.count >= 1);
            failures += ev.count;
            if (ev.count > 1) {
                aggregates++;
                CHECK_EQ(ev.count, want_agg);
                CHECK(ev.request_id > 0);
            }
        } else if (ev.type == GN_NODE_EV_CLOSED) {
            closed = true;
            CHECK_EQ(ev.count, 0);
        }
    }
    CHECK(closed);
    CHECK_EQ(failures, AGG_SENDS);
    CHECK_EQ(aggregates, 1);
    CHECK_EQ(events, 4 + 256 + 1 + 1);
    /* the queue closes just after the CLOSED event is queued */
    CHECK_EQ(gn_node_next_event(n, &ev, GN_S), GN_ECLOSED);
    gn_node_free(n);
    gn_identity_free(id);
    gn_identity_free(other);
}

/* ---- closing with messages in flight: each arrives or is reported ---- */

#define CLOSE_MSGS 4000u
#define CLOSE_LEN (16u * 1024u)

GN_TEST(close_with_messages_in_flight_reports_each_loss)
{
    setup();
    pair p;
    pair_up(&p, "noise");
    static uint8_t msg[CLOSE_LEN];
    memset(msg, 0x3c, sizeof msg);
    /* as fast as the channel takes them (no retry on GN_EAGAIN): the
     * writer's ring and the muxer hold many when the close comes */
    uint64_t accepted = 0;
    for (uint32_t i = 0; i < CLOSE_MSGS; i++) {
        int rc = gn_node_unicast(p.a, p.bs, msg, sizeof msg, NULL);
        if (rc == GN_EAGAIN) {
            continue;
        }
        CHECK_OK(rc);
        accepted++;
    }
    CHECK(accepted > 0);
    gn_channel *ch = gn_node_channel_get(p.a, p.chan); /* its final counters */
    CHECK(ch != NULL);
    gn_node_close(p.a, NULL, NULL);
    uint64_t failed = 0;
    bool closed = false;
    gn_node_event ev;
    for (int i = 0; i < 100000 && !closed; i++) {
        int rc = gn_node_next_event(p.a, &ev, 100 * GN_MS);
        if (rc == GN_ECLOSED) {
            break;
        }
        if (rc < 0) {
            continue;
        }
        gn_rcbuf_rele(ev.message);
        if (ev.type == GN_NODE_EV_SEND_FAILED) {
            failed += ev.count;
        } else if (ev.type == GN_NODE_EV_CLOSED) {
            closed = true;
        }
    }
    CHECK(closed);
    /* b has everything that was sent once its channel closed */
    uint64_t delivered = 0;
    bool chan_closed = false;
    gn_time quiet_until = gn_now() + 10 * GN_S;
    while (gn_now() < quiet_until) {
        int rc = gn_node_next_event(p.b, &ev, 100 * GN_MS);
        if (rc < 0) {
            if (chan_closed) {
                break; /* closed and drained */
            }
            continue;
        }
        if (ev.type == GN_NODE_EV_MESSAGE) {
            CHECK_EQ(gn_rcbuf_slice(ev.message).len, CLOSE_LEN);
            delivered++;
        } else if (ev.type == GN_NODE_EV_CHANNEL_CLOSED) {
            chan_closed = true;
        }
        gn_rcbuf_rele(ev.message);
    }
    CHECK(chan_closed);
    gn_channel_metrics m;
    gn_channel_metrics_get(ch, &m);
    gn_channel_rele(ch);
    fprintf(stderr,
            "# accepted %" PRIu64 ", sent %" PRIu64 ", reported %" PRIu64 ", delivered %" PRIu64
            "\n",
            accepted, m.messages_out, failed, delivered);
    /* every accepted message was either handed to the muxer (messages_out)
     * or reported; what the muxer took can still be cut when the connection
     * closes before the peer read it (no acknowledgements), never more */
    CHECK_EQ(m.messages_out + failed, accepted);
    CHECK(delivered <= m.messages_out);
    CHECK(failed > 0); /* the close did catch messages in flight */
    pair_down(&p);
}

GN_TEST_MAIN(GN_T(full_queue_pushes_back_and_writable_follows),
             GN_T(send_failures_aggregate_never_drop), GN_T(unicast_flood_every_message_arrives),
             GN_T(close_with_messages_in_flight_reports_each_loss))
