/*
 * golemnet - libp2p pubsub router core (private to the library): floodsub
 * (/floodsub/1.0.0) and gossipsub v1.1 (/meshsub/1.1.0, /meshsub/1.0.0
 * peers handled as v1.0: no PX, no backoff field) on top of the wire core
 * (pubsub_wire.h). Sans-I/O: decoded RPCs and time in, RPCs to send and
 * events out; no streams, no timers, no clock, no global state.
 *
 * Spec: libp2p/specs pubsub/README.md (subscriptions, forwarding, seen
 * cache, signature policy); pubsub/gossipsub/gossipsub-v1.0.md ("Router
 * State", "Topic Membership", "Message Processing", "Control Message
 * Processing", "Heartbeat", "Parameters"); gossipsub-v1.1.md ("Explicit
 * Peering Agreements" is NOT implemented, "PRUNE Backoff and Peer
 * Exchange", "Flood Publishing", "Adaptive Gossip Dissemination", "Outbound
 * Mesh Quotas", "Peer Scoring", "Score Thresholds", "Spam Protection
 * Measures"). docs/pubsub.md section 7 lists parameters, bounds, scoring.
 *
 * Driving it (the driver owns streams and one timer):
 *   1. gni_psr_new(); gni_psr_peer_add() when a pubsub stream to a peer is
 *      open (protocol negotiated), gni_psr_peer_remove() when it is gone.
 *   2. Each decoded RPC from a peer: gni_psr_rpc_in().
 *   3. Application calls: gni_psr_subscribe(), gni_psr_unsubscribe(),
 *      gni_psr_publish(), gni_psr_validation_result().
 *   4. gni_psr_heartbeat() when gni_psr_next_timer() is due.
 *   5. After any of the above, drain the outputs (pull style, no
 *      callbacks into the driver except the optional validator and the P5
 *      score function):
 *        - gni_psr_next_out(): one RPC for one peer (per-peer coalesced,
 *          each within the limits' max_rpc_len), to encode with
 *          gni_ps_rpc_encode() and write on that peer's outbound stream;
 *        - gni_psr_next_event(): local delivery, validation requests,
 *          peer-exchange candidates.
 *      Outputs stay queued (bounded, see "Bounds") until drained.
 * A slow peer: the driver calls gni_psr_peer_congested(true) when the
 * peer's stream write queue is full; the router then prunes it from its
 * meshes, stops forwarding and gossiping to it (messages dropped for it are
 * counted) until gni_psr_peer_congested(false).
 *
 * Peers are named by gn_peer_id (value type, identity.h); peer IDs in the
 * API are compared byte for byte.
 *
 * Bounds (everything a peer controls; gni_psr_config, zero = default):
 *   max_peers             peers (gni_psr_peer_add() refuses beyond)
 *   max_topics_per_peer   topics a peer may be subscribed to; further
 *                         subscriptions are ignored and counted
 *   max_topics            topics the router tracks because of peers'
 *                         subscriptions; the application's own topics are
 *                         never refused by it. A topic (and a peer x topic
 *                         record) is freed as soon as the last peer
 *                         unsubscribes and nothing else holds it. When
 *                         full, a new peer topic evicts the oldest topic
 *                         held only by peers' subscriptions among those
 *                         created by the peer that created the most
 *                         (those subscriptions are dropped, counted in
 *                         subs_ignored); with none evictable the
 *                         subscription is ignored and counted
 *   max_pending_validations  messages awaiting a validation result; a
 *                         message DEFERred when it (or the event queue)
 *                         is full is ignored (counted, no penalty) and
 *                         not recorded, so a later copy is validated
 *                         again, as go's validation queue throttle
 *   seen cache            a message ID enters it only when the message is
 *                         ACCEPTed (as go); copies arriving during a
 *                         deferred validation join it (P3 credit on
 *                         ACCEPT, P4 on REJECT); the last 256 REJECTed /
 *                         IGNOREd IDs are remembered so that a copy is
 *                         dropped unvalidated (REJECTed: P4 for its
 *                         sender too); a message claiming our own ID as
 *                         author that we did not publish is dropped
 *                         (ignored, no penalty)
 *   validation_timeout    a pending validation not answered in time is
 *                         taken as IGNORE
 *   mcache_max_msgs       messages held by the message cache (on top of
 *                         the history windows); the oldest window's
 *                         entries are evicted first
 *   max_ihave_len / max_ihave_msgs  IHAVE ids taken from and IHAVE
 *                         messages accepted per peer per heartbeat (the
 *                         excess is ignored); IHAVE ids we send to a
 *                         peer per topic per heartbeat are capped at
 *                         max_ihave_len too
 *   gossip_retransmission  times one message is sent to one peer in reply
 *                         to IWANT (go: 3)
 *   max_iwant_promises    IWANT promises tracked per peer
 *   max_out_bytes_per_peer  bytes of queued outgoing RPC per peer; beyond
 *                         it messages for that peer are dropped (counted)
 *                         and the peer is treated as congested
 *                         (messages, IHAVE and IWANT are refused beyond
 *                         it; SUB/GRAFT/PRUNE beyond twice it, and at
 *                         most one unsent PRUNE per peer and topic); IHAVE
 *                         from a congested peer is ignored; an IWANT
 *                         promise starts when gni_psr_next_out() hands
 *                         the IWANT out
 *                         (messages, IHAVE and IWANT are refused beyond
 *                         it; SUB/GRAFT/PRUNE beyond twice it, and at
 *                         most one unsent PRUNE per peer and topic); IHAVE
 *                         from a congested peer is ignored; an IWANT
 *                         promise starts when gni_psr_next_out() hands
 *                         the IWANT out
 *   max_px_out / max_px_candidates  PX peers sent per PRUNE / PX
 *                         candidate events queued
 *   max_events            local events queued; beyond it the oldest
 *                         delivery is kept and the new one is dropped and
 *                         counted (stats.events_dropped)
 *   seen_max / seen_ttl   seen cache (gni_ps_seen)
 *   limits                wire bounds (gni_ps_limits), also applied to
 *                         what the router builds
 *
 * Errors (negative gn_err): GN_EINVAL (bad arguments or config), GN_ENOMEM,
 * GN_ENOTFOUND (unknown peer / topic / pending message id), GN_EEXIST (peer
 * already added), GN_ELIMIT (a configured bound reached), GN_ETOOBIG (a
 * message above the wire bounds), GN_ECRYPTO (signing failed).
 *
 * Thread context: one thread at a time per router; callbacks (validator,
 * app score) run inside the router call that triggers them and must not
 * call back into the router. Memory comes from gn_malloc and friends.
 */
#ifndef GNI_PUBSUB_ROUTER_H
#define GNI_PUBSUB_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "golemnet/common.h"
#include "golemnet/identity.h"
#include "pubsub_wire.h"

typedef struct gni_psr gni_psr;

/** The protocol a peer's stream negotiated. */
typedef enum gni_psr_proto {
    GNI_PSR_FLOODSUB = 0,  /* /floodsub/1.0.0: no control messages, flooding */
    GNI_PSR_MESHSUB10 = 1, /* /meshsub/1.0.0: gossipsub without PX or backoff */
    GNI_PSR_MESHSUB11 = 2  /* /meshsub/1.1.0 */
} gni_psr_proto;

/** A validation outcome (gossipsub-v1.1 "Extended Validators"). */
typedef enum gni_psr_verdict {
    GNI_PSR_ACCEPT = 0, /* deliver locally and forward */
    GNI_PSR_REJECT = 1, /* drop; penalise the sender (P4) */
    GNI_PSR_IGNORE = 2, /* drop silently; no penalty; counted */
    GNI_PSR_DEFER = 3   /* (validator return only) decide later with gni_psr_validation_result() */
} gni_psr_verdict;

/**
 * Synchronous validator: called once per new message that passed the
 * signature policy, before delivery and forwarding. @topic NUL-terminated,
 * @m and @from borrowed for the call. Returns a gni_psr_verdict; DEFER
 * makes the message pending and queues a GNI_PSR_EV_VALIDATE event.
 * Must not call into the router.
 */
typedef gni_psr_verdict (*gni_psr_validate_fn)(void *user_data, const char *topic,
                                               const gni_ps_msg *m, const gn_peer_id *from);

/** P5 application-specific score of @peer (any finite value). Must not call into the router. */
typedef double (*gni_psr_app_score_fn)(void *user_data, const gn_peer_id *peer);

/**
 * Per-topic score parameters (gossipsub-v1.1 "Topic Parameter
 * Calculation"). Weights of penalties (P3, P3b, P4) are negative; decays
 * are factors in (0, 1) applied every decay_interval; a counter that
 * decays below decay_to_zero becomes 0.
 */
typedef struct gni_psr_topic_score_params {
    double topic_weight;
    /* P1 time in mesh: min(time / quantum, cap) * weight */
    double time_in_mesh_weight;
    gn_time time_in_mesh_quantum; /* ns, > 0 */
    double time_in_mesh_cap;
    /* P2 first message deliveries: min(counter, cap) * weight */
    double first_message_deliveries_weight, first_message_deliveries_decay;
    double first_message_deliveries_cap;
    /* P3 mesh message delivery rate: deficit^2 * weight while the counter
     * is below threshold, once the peer has been in the mesh for
     * activation; deliveries within window of the first count. */
    double mesh_message_deliveries_weight, mesh_message_deliveries_decay;
    double mesh_message_deliveries_cap, mesh_message_deliveries_threshold;
    gn_time mesh_message_deliveries_window, mesh_message_deliveries_activation; /* ns */
    /* P3b sticky mesh failure penalty: deficit^2 added on prune */
    double mesh_failure_penalty_weight, mesh_failure_penalty_decay;
    /* P4 invalid messages: counter^2 * weight */
    double invalid_message_deliveries_weight, invalid_message_deliveries_decay;
} gni_psr_topic_score_params;

/**
 * Peer score parameters and thresholds (gossipsub-v1.1 "Peer Scoring",
 * "Score Thresholds"). score = min(sum over topics, topic_score_cap when
 * > 0) + P5 * app_specific_weight + P6 + P7.
 */
typedef struct gni_psr_score_params {
    bool enabled; /* false: every score is 0 and no threshold applies */
    double topic_score_cap; /* 0 = no cap */
    gni_psr_app_score_fn app_specific; /* NULL = P5 is 0 */
    void *app_specific_user_data;
    double app_specific_weight;
    /* P6: (peers sharing the IP - threshold)^2 * weight, when above threshold */
    double ip_colocation_factor_weight; /* <= 0 */
    size_t ip_colocation_factor_threshold;
    /* P7: (counter - threshold)^2 * weight when above threshold */
    double behaviour_penalty_weight, behaviour_penalty_threshold, behaviour_penalty_decay;
    gn_time decay_interval; /* ns */
    double decay_to_zero;
    gn_time retain_score; /* ns a disconnected peer's counters are kept */
    /* thresholds: graylist < publish <= gossip < 0 <= accept_px, opportunistic_graft */
    double gossip_threshold, publish_threshold, graylist_threshold;
    double accept_px_threshold, opportunistic_graft_threshold;
    /* topics without own parameters (gni_psr_set_topic_score_params())
     * use these when has_default_topic is set, else contribute 0 */
    bool has_default_topic;
    gni_psr_topic_score_params default_topic;
} gni_psr_score_params;

/** Router configuration. Fill with gni_psr_config_default() then adjust. */
typedef struct gni_psr_config {
    /* gossipsub-v1.0/1.1 "Parameters" */
    unsigned d, d_lo, d_hi, d_lazy, d_score, d_out;
    gn_time heartbeat_interval;       /* ns, default 1 s */
    gn_time heartbeat_initial_delay;  /* ns before the first heartbeat, default 100 ms */
    gn_time fanout_ttl;               /* default 60 s */
    unsigned mcache_len, mcache_gossip; /* history windows kept / gossiped: 5 / 3 */
    gn_time seen_ttl;                 /* default 120 s */
    gn_time prune_backoff;            /* default 60 s */
    gn_time unsubscribe_backoff;      /* default 10 s */
    gn_time graft_flood_threshold;    /* GRAFT this soon after our PRUNE: extra penalty, default 10 s */
    unsigned opportunistic_graft_ticks; /* heartbeats between opportunistic grafts, default 60 */
    unsigned opportunistic_graft_peers; /* peers grafted each time, default 2 */
    bool flood_publish;               /* default true */
    double gossip_factor;             /* default 0.25 */
    unsigned max_ihave_len;           /* default 5000 */
    unsigned max_ihave_msgs;          /* default 10 */
    gn_time iwant_followup_time;      /* default 3 s */
    unsigned gossip_retransmission;   /* default 3 */
    unsigned prune_peers;             /* PX peers sent per PRUNE, default 16 */
    bool do_px;                       /* send PX on PRUNE (v1.1 peers), default true */

    /* messages */
    gni_ps_sign_policy sign_policy;   /* default StrictSign */
    const gn_identity *identity;      /* signer (StrictSign publishing); borrowed, outlives the router */
    gni_ps_msg_id_fn msg_id;          /* NULL = gni_ps_msg_id_default */
    void *msg_id_user_data;
    gni_psr_validate_fn validate;     /* NULL = accept every message */
    void *validate_user_data;
    gni_ps_limits limits;             /* zero fields = wire defaults */

    /* bounds (see the file comment); zero = default */
    size_t max_peers;                 /* default 1024 */
    size_t max_topics;                /* default 4096 */
    size_t max_topics_per_peer;       /* default 512 */
    size_t max_pending_validations;   /* default 1024 */
    gn_time validation_timeout;       /* default 30 s */
    size_t mcache_max_msgs;           /* default 16384 */
    size_t seen_max;                  /* default 65536 */
    size_t max_iwant_promises;        /* per peer, default 5000 */
    size_t max_out_bytes_per_peer;    /* default 8 MiB */
    size_t max_px_candidates;         /* queued PX events, default 256 */
    size_t max_events;                /* queued events, default 4096 */
    /* byte bounds (the router's estimate of encoded size); zero = default */
    size_t mcache_max_bytes;          /* message cache, default 64 MiB (oldest evicted) */
    size_t max_event_bytes;           /* queued events, default 64 MiB (new ones dropped, counted) */
    size_t max_pending_bytes;         /* pending validations, default 64 MiB (throttled beyond) */
    size_t max_out_bytes_total;       /* queued output to all peers, default 256 MiB (messages,
                                       * IHAVE, IWANT dropped beyond, counted in out_dropped) */

    gni_psr_score_params score;

    const gn_rng *rng;                /* NULL = gn_rng_system(); tests inject a deterministic one */
} gni_psr_config;

/**
 * Fills @cfg with the defaults above: the spec's parameters, StrictSign,
 * no identity (publishing under StrictSign then fails with GN_EINVAL), and
 * the default scoring (docs/pubsub.md 7.4: enabled; thresholds -10, -50,
 * -80, accept PX 10, opportunistic graft 1; P4 weight -100 on every
 * topic; P7 weight -10 threshold 0 decay 0.9).
 */
void gni_psr_config_default(gni_psr_config *cfg);

/**
 * Creates a router. @cfg is copied (@cfg->identity, @cfg->rng and the
 * callbacks' user_data are borrowed and must outlive it). @now: the time
 * (monotonic ns) the heartbeat schedule starts from. Errors: GN_EINVAL
 * (inconsistent parameters: d_lo <= d <= d_hi violated, d_out >= d_lo or
 * d_out > d/2, thresholds out of order or gossip_threshold >= 0, a
 * negative app_specific_weight, StrictNoSign with the default message-ID
 * function (such messages have no from/seqno to name them), mcache_gossip > mcache_len, a zero
 * interval, IP colocation threshold below 1, a P3 cap below its
 * threshold), GN_ENOMEM.
 */
int gni_psr_new(const gni_psr_config *cfg, gn_time now, gni_psr **out);
/** Releases everything, including queued outputs. NULL is a no-op. */
void gni_psr_free(gni_psr *r);

/**
 * Sets (copies) @topic's score parameters (@p NULL: use the default ones
 * or none). Errors: GN_EINVAL (decays outside (0,1), positive penalty
 * weight, zero quantum), GN_ENOMEM, GN_ETOOBIG (empty topic or longer
 * than limits.max_topic_len).
 */
int gni_psr_set_topic_score_params(gni_psr *r, const char *topic,
                                   const gni_psr_topic_score_params *p);

/* ---- peers ---- */

/**
 * A pubsub stream to @peer is open with protocol @proto. @outbound: we
 * dialled the connection (D_out quota). @ip: 4 or 16 bytes of the peer's
 * IP address for P6, or NULL/0. Queues our subscriptions to the peer.
 * Errors: GN_EINVAL, GN_EEXIST, GN_ELIMIT (max_peers), GN_ENOMEM (the
 * peer is then not added).
 */
int gni_psr_peer_add(gni_psr *r, const gn_peer_id *peer, gni_psr_proto proto, bool outbound,
                     const uint8_t *ip, size_t ip_len, gn_time now);

/**
 * The peer is gone: leaves every mesh and fanout, drops its queued
 * output. Its score counters are kept for retain_score only when its
 * score is <= 0 (P2 reset; a positive score is not carried over, as
 * go/js), and its PRUNE backoffs until they end, whether scoring is on or
 * not. At most max_peers disconnected peers are kept: beyond, the
 * best-scored (then soonest expiring) other one is forgotten.
 * Errors: GN_ENOTFOUND.
 */
int gni_psr_peer_remove(gni_psr *r, const gn_peer_id *peer, gn_time now);

/**
 * The driver's outbound queue for @peer is full (@congested true) or has
 * drained (false). While congested the peer is pruned from every mesh
 * (PRUNE queued with backoff), not grafted, and gets no forwards or
 * gossip (counted as stats.out_dropped); gni_psr_next_out() holds what is
 * already queued for it until it is uncongested. Errors: GN_ENOTFOUND.
 */
int gni_psr_peer_congested(gni_psr *r, const gn_peer_id *peer, bool congested, gn_time now);

/**
 * Processes one decoded RPC from @peer (ownership of @rpc's contents stays
 * with the caller). A graylisted peer's RPC is ignored whole (counted).
 * Bounds above are applied; nothing here fails on peer input: violations
 * are counted and scored. Errors: GN_ENOTFOUND (unknown peer), GN_ENOMEM
 * (state may be partly updated; the RPC is otherwise consistent),
 * GN_EINVAL.
 */
int gni_psr_rpc_in(gni_psr *r, const gn_peer_id *peer, const gni_ps_rpc *rpc, gn_time now);

/* ---- application ---- */

/**
 * Joins @topic (NUL-terminated, within limits.max_topic_len): announces it
 * to every peer, builds the mesh from fanout peers (those not congested,
 * out of backoff, score >= 0) then other such subscribed peers (GRAFT
 * queued first; a peer joins the mesh only when its GRAFT is queued). Subscribing twice is a no-op. Errors: GN_EINVAL,
 * GN_ETOOBIG, GN_ENOMEM (max_topics does not apply to own topics).
 */
int gni_psr_subscribe(gni_psr *r, const char *topic, gn_time now);

/**
 * Leaves @topic: announces it, PRUNEs the mesh with unsubscribe_backoff.
 * Errors: GN_ENOTFOUND (not subscribed), GN_EINVAL.
 */
int gni_psr_unsubscribe(gni_psr *r, const char *topic, gn_time now);

/**
 * Publishes @len bytes at @data on @topic. StrictSign: from, seqno
 * (counter starting at a random value) and signature set with the
 * configured identity; StrictNoSign: none. The message is added to the
 * seen cache and mcache, delivered locally when subscribed (event), and
 * sent to: every floodsub peer of the topic with score >=
 * publish_threshold (forwarded messages too); with flood_publish every
 * gossipsub peer of the topic with score >= publish_threshold; else the
 * mesh, or the fanout (built on demand, D peers) when not subscribed. No
 * peers at all is not an error (the message is only cached). *@id_out
 * (NULL allowed, GNI_PS_MSG_ID_MAX bytes) and *@id_len get its ID.
 * Errors: GN_EINVAL (no identity under StrictSign; default ID function
 * under StrictNoSign), GN_ETOOBIG (message beyond the wire bounds),
 * GN_EEXIST (an identical ID was already seen), GN_ECRYPTO, GN_ENOMEM.
 */
int gni_psr_publish(gni_psr *r, const char *topic, const uint8_t *data, size_t len,
                    gn_time now, uint8_t *id_out, size_t *id_len);

/**
 * The verdict on a message the validator DEFERred (@id, @id_len its
 * message ID; @verdict ACCEPT, REJECT or IGNORE). ACCEPT delivers and
 * forwards; REJECT penalises the peer it came from (P4) and every peer
 * that sent it again meanwhile; IGNORE drops it. Errors: GN_ENOTFOUND (no
 * such pending message: already decided or timed out), GN_EINVAL,
 * GN_ENOMEM (ACCEPT: the message could not be cached or queued everywhere;
 * the verdict is applied nonetheless).
 */
int gni_psr_validation_result(gni_psr *r, const uint8_t *id, size_t id_len,
                              gni_psr_verdict verdict, gn_time now);

/* ---- time ---- */

/**
 * Runs the heartbeat if due (mesh maintenance, fanout expiry, gossip,
 * mcache shift, score decay, expiry of backoffs, promises, validations,
 * seen entries). Calling it early is harmless (nothing happens until the
 * deadline). Returns 0, or GN_EINVAL (@r NULL). An allocation failure
 * inside skips that part of the work (mesh repair, gossip) until the next
 * heartbeat; it is not reported.
 */
int gni_psr_heartbeat(gni_psr *r, gn_time now);

/** When gni_psr_heartbeat() next has work (absolute ns). */
gn_time gni_psr_next_timer(const gni_psr *r);

/* ---- outputs ---- */

/**
 * Takes the next RPC to send: *@peer its destination, *@rpc (initialised
 * by the caller or empty; previous contents released) receives it and is
 * then owned by the caller (gni_ps_rpc_fini()). Each RPC encodes within
 * limits.max_rpc_len. A congested peer's queue is held. Returns 1 when one
 * was taken, 0 when none is queued, GN_EINVAL (a NULL argument).
 */
int gni_psr_next_out(gni_psr *r, gn_peer_id *peer, gni_ps_rpc *rpc);

/** Event kinds. */
typedef enum gni_psr_event_kind {
    GNI_PSR_EV_DELIVER = 1,  /* a validated message of a subscribed topic (or our own publish) */
    GNI_PSR_EV_VALIDATE = 2, /* a DEFERred message awaiting gni_psr_validation_result() */
    GNI_PSR_EV_PX = 3        /* a peer-exchange candidate from a PRUNE (signed record unchecked) */
} gni_psr_event_kind;

/**
 * An event. Owned by the caller after gni_psr_next_event(); release with
 * gni_psr_event_fini(). DELIVER/VALIDATE: @msg (topic in msg.topic), @id
 * its ID, @from the propagation source (our own ID for own publishes: the
 * identity's, or all zero without one), @local true for own publishes.
 * PX: @from the peer that sent the PRUNE, @px the candidate (peer ID and
 * signed peer record bytes, the latter not verified), @topic the PRUNE's
 * topic in msg.topic.
 */
typedef struct gni_psr_event {
    gni_psr_event_kind kind;
    gni_ps_msg msg;
    gni_ps_bytes id;
    gn_peer_id from;
    bool local;
    gni_ps_px px;
} gni_psr_event;

/** Takes the next event into @ev. Returns 1, 0 when none is queued, GN_EINVAL (NULL argument). */
int gni_psr_next_event(gni_psr *r, gni_psr_event *ev);
/** Releases what @ev owns. NULL is a no-op. */
void gni_psr_event_fini(gni_psr_event *ev);

/* ---- queries ---- */

/**
 * The mesh peers of @topic: copies up to @cap of them into @out (NULL with
 * @cap 0 allowed) and returns how many there are (0 when not subscribed).
 */
size_t gni_psr_mesh_peers(const gni_psr *r, const char *topic, gn_peer_id *out, size_t cap);

/** Peers known to be subscribed to @topic (same contract as gni_psr_mesh_peers()). */
size_t gni_psr_topic_peers(const gni_psr *r, const char *topic, gn_peer_id *out, size_t cap);

/** True when we are subscribed to @topic. */
bool gni_psr_subscribed(const gni_psr *r, const char *topic);

/** Per-topic counters. */
typedef struct gni_psr_topic_stats {
    uint64_t published;  /* own messages */
    uint64_t delivered;  /* delivered locally (own included) */
    uint64_t forwarded;  /* message copies queued to peers */
    uint64_t duplicates; /* messages received again (seen cache hit) */
    uint64_t rejected;   /* validation REJECT or signature policy failure */
    uint64_t ignored;    /* validation IGNORE, timeouts, throttled */
    size_t mesh_peers, topic_peers;
} gni_psr_topic_stats;

/** Fills *@out with @topic's counters. Errors: GN_EINVAL (NULL argument), GN_ENOTFOUND (topic not tracked). */
int gni_psr_get_topic_stats(const gni_psr *r, const char *topic, gni_psr_topic_stats *out);

/** Router-wide counters. */
typedef struct gni_psr_stats {
    size_t peers, topics, pending_validations, mcache_msgs, seen;
    uint64_t graylisted_rpcs;     /* RPCs ignored from graylisted peers */
    uint64_t out_dropped;         /* message copies not queued: congested peer or queue full */
    uint64_t events_dropped;      /* events not queued: max_events */
    uint64_t ihave_ignored;       /* IHAVE entries/ids beyond the per-heartbeat bounds */
    uint64_t iwant_served;        /* messages sent in reply to IWANT */
    uint64_t iwant_refused;       /* IWANT ids over gossip_retransmission or unknown */
    uint64_t broken_promises;     /* IWANT promises broken: no message by the follow-up deadline (P7) */
    uint64_t graft_refused;       /* GRAFTs answered with PRUNE */
    uint64_t backoff_violations;  /* GRAFTs during backoff (P7) */
    uint64_t subs_ignored;        /* subscriptions beyond the per-peer/topic bounds */
    uint64_t bad_messages;        /* failed signature policy or ID function */
} gni_psr_stats;

/** Fills *@out. */
void gni_psr_get_stats(const gni_psr *r, gni_psr_stats *out);

/**
 * @peer's current score (0 when scoring is disabled) into *@score.
 * Errors: GN_ENOTFOUND (unknown peer).
 */
int gni_psr_peer_score(gni_psr *r, const gn_peer_id *peer, gn_time now, double *score);

/**
 * Bytes (the router's generous estimate of the encoding) of RPCs queued
 * for @peer and not yet taken by gni_psr_next_out(); 0 for an unknown
 * peer. Bounded by 2 * max_out_bytes_per_peer (see "Bounds").
 */
size_t gni_psr_peer_out_bytes(const gni_psr *r, const gn_peer_id *peer);

#endif /* GNI_PUBSUB_ROUTER_H */
