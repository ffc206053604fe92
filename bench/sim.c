/*
 * sim: many nodes on one virtual-clock loop (see sim.h).
 */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIM_DEFAULT_EVQ 16
/* Turns without progress of the virtual clock are impossible: every turn
 * advances it by cfg.tick, so a bound in virtual ns bounds the turns. */

void sim_config_default(sim_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->nodes = 100;
    cfg->degree = 8;
    cfg->seed = 1;
    cfg->security = "plaintext";
    cfg->muxers = "yamux";
    cfg->protocols = GN_NODE_PROTO_IDENTIFY | GN_NODE_PROTO_PING;
    cfg->event_queue_capacity = SIM_DEFAULT_EVQ;
    cfg->tick = GN_MS;
}

static uint64_t sim_next(sim *s)
{
    /* splitmix64 */
    uint64_t z = (s->rng += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

uint64_t sim_rand(sim *s, uint64_t bound)
{
    /* rejection sampling: no modulo bias */
    uint64_t lim = UINT64_MAX - UINT64_MAX % bound;
    uint64_t v;
    do {
        v = sim_next(s);
    } while (v >= lim);
    return v % bound;
}

size_t sim_pick(sim *s, size_t exclude)
{
    if (exclude >= s->n) {
        return (size_t)sim_rand(s, s->n);
    }
    size_t i = (size_t)sim_rand(s, s->n - 1);
    return i >= exclude ? i + 1 : i;
}

int sim_init(sim *s, const sim_config *cfg)
{
    memset(s, 0, sizeof *s);
    s->cfg = *cfg;
    if (cfg->nodes < 2 || (cfg->degree > 0 && cfg->degree >= cfg->nodes) || cfg->tick == 0) {
        return GN_EINVAL;
    }
    s->rng = cfg->seed;
    gn_loop_config lc;
    gn_loop_config_default(&lc);
    lc.virtual_clock = true;
    int rc = gn_loop_new(&lc, &s->loop);
    if (rc < 0) {
        return rc;
    }
    if ((rc = gn_registry_new(&s->reg)) < 0 || (rc = gn_registry_add_builtins(s->reg)) < 0) {
        return rc;
    }
    s->nodes = calloc(cfg->nodes, sizeof *s->nodes);
    return s->nodes ? 0 : GN_ENOMEM;
}

int sim_create_nodes(sim *s)
{
    for (size_t i = s->n; i < s->cfg.nodes; i++) {
        sim_node *sn = &s->nodes[i];
        sn->s = s;
        sn->idx = i;
        int rc = gn_identity_from_int_seed(s->cfg.seed + (uint32_t)i, &sn->id);
        if (rc < 0) {
            return rc;
        }
        gn_identity_peer_id(sn->id, &sn->pid);
        char listen[48], pid[128];
        snprintf(listen, sizeof listen, "/memory/%zu", i + 1);
        gn_peer_id_to_string(&sn->pid, pid, sizeof pid);
        snprintf(sn->addr, sizeof sn->addr, "%s/p2p/%s", listen, pid);
        const char *l = listen;
        gn_node_config cfg;
        gn_node_config_default(&cfg);
        cfg.identity = sn->id;
        cfg.registry = s->reg;
        cfg.loop = s->loop;
        cfg.transports = "memory";
        cfg.security = s->cfg.security;
        cfg.muxers = s->cfg.muxers;
        cfg.protocols = s->cfg.protocols;
        cfg.routers = s->cfg.routers ? s->cfg.routers : "";
        cfg.options = s->cfg.options;
        cfg.n_options = s->cfg.n_options;
        cfg.idle_timeout = s->cfg.idle_timeout;
        cfg.discovery = "";
        cfg.nat = "";
        cfg.protocol_components = s->cfg.protocol_components ? s->cfg.protocol_components : "";
        cfg.listen = &l;
        cfg.n_listen = 1;
        if (s->cfg.event_queue_capacity) {
            cfg.event_queue_capacity = s->cfg.event_queue_capacity;
        }
        if (s->cfg.command_queue_capacity) {
            cfg.command_queue_capacity = s->cfg.command_queue_capacity;
        }
        if ((rc = gn_node_new(&cfg, &sn->n)) < 0) {
            gn_identity_free(sn->id);
            sn->id = NULL;
            return rc;
        }
        s->n = i + 1;
    }
    return 0;
}

static void sim_count_event(sim *s, sim_node *sn, const gn_node_event *ev)
{
    s->events++;
    switch (ev->type) {
    case GN_NODE_EV_LISTENING:
        sn->listening = true;
        s->listening++;
        break;
    case GN_NODE_EV_LISTEN_FAILED:
    case GN_NODE_EV_START_FAILED:
        s->listen_failed++;
        if (!s->first_error) {
            s->first_error = ev->status ? ev->status : GN_EINTERNAL;
        }
        break;
    case GN_NODE_EV_CHANNEL_OPENED:
        sn->channels_open++;
        sn->channels_opened++;
        break;
    case GN_NODE_EV_CHANNEL_CLOSED:
        if (sn->channels_open > 0) {
            sn->channels_open--;
        }
        break;
    case GN_NODE_EV_IDENTIFY:
        if (ev->status == 0) {
            sn->identified++;
        }
        break;
    case GN_NODE_EV_CLOSED:
        sn->closed = true;
        break;
    default:
        break;
    }
}

static void sim_drain(sim *s)
{
    gn_node_event ev;
    for (size_t i = 0; i < s->n; i++) {
        sim_node *sn = &s->nodes[i];
        /* bounded: at most the queue's capacity plus a margin per turn */
        for (int k = 0; k < 4096 && gn_node_next_event(sn->n, &ev, 0) == 0; k++) {
            if (s->on_event) {
                s->on_event(s, sn, &ev, s->on_event_arg);
            }
            sim_count_event(s, sn, &ev);
            gn_rcbuf_rele(ev.message);
        }
    }
}

void sim_turn(sim *s)
{
    gn_loop_run(s->loop, GN_RUN_NOWAIT);
    sim_drain(s);
    gn_loop_advance(s->loop, s->cfg.tick);
    s->turns++;
}

bool sim_run_until(sim *s, bool (*pred)(sim *s, void *arg), void *arg, gn_time vbound)
{
    gn_time end = gn_loop_now(s->loop) + vbound;
    while (!pred(s, arg)) {
        if (gn_loop_now(s->loop) >= end) {
            return pred(s, arg);
        }
        sim_turn(s);
    }
    return true;
}

static bool sim_all_listening(sim *s, void *arg)
{
    (void)arg;
    return s->listening + s->listen_failed >= s->n;
}

int sim_start(sim *s, gn_time vbound)
{
    for (size_t i = 0; i < s->n; i++) {
        int rc = gn_node_start(s->nodes[i].n);
        if (rc < 0) {
            return rc;
        }
    }
    if (!sim_run_until(s, sim_all_listening, NULL, vbound)) {
        return GN_ETIMEDOUT;
    }
    return s->listen_failed ? s->first_error : 0;
}

typedef struct sim_dial_ctx {
    sim_node *from;
    size_t to;
} sim_dial_ctx;

static void sim_dial_done(void *arg, const gn_node_dial_result *res)
{
    sim_dial_ctx *c = arg;
    sim_node *sn = c->from;
    sim *s = sn->s;
    s->dials_done++;
    if (res->status == 0) {
        sn->dials_ok++;
        gn_channel_info info;
        gn_channel_state_get(res->ch, &info);
        if (!gn_peer_id_equal(&info.remote_peer, &s->nodes[c->to].pid)) {
            sn->dials_wrong_peer++;
        }
    } else {
        sn->dials_failed++;
        s->dials_failed++;
        if (!s->first_error) {
            s->first_error = res->status;
        }
    }
    free(c);
}

int sim_dial(sim *s, size_t from, size_t to)
{
    sim_dial_ctx *c = malloc(sizeof *c);
    if (!c) {
        return GN_ENOMEM;
    }
    c->from = &s->nodes[from];
    c->to = to;
    int rc = gn_node_dial_ex(s->nodes[from].n, s->nodes[to].addr, sim_dial_done, c, NULL);
    if (rc < 0) {
        free(c);
        return rc;
    }
    s->nodes[from].dials_started++;
    s->dials_started++;
    return 0;
}

int sim_dial_random(sim *s, unsigned degree)
{
    return sim_dial_random_range(s, 0, s->n, degree);
}

int sim_dial_random_range(sim *s, size_t first, size_t count, unsigned degree)
{
    size_t *picked = calloc(degree ? degree : 1, sizeof *picked);
    if (!picked) {
        return GN_ENOMEM;
    }
    int rc = 0;
    for (size_t i = first; i < s->n && i - first < count && rc == 0; i++) {
        for (unsigned k = 0; k < degree && rc == 0; k++) {
            size_t j;
            bool dup;
            do { /* degree < N: terminates with probability 1, fast for degree << N */
                j = sim_pick(s, i);
                dup = false;
                for (unsigned m = 0; m < k; m++) {
                    dup = dup || picked[m] == j;
                }
            } while (dup);
            picked[k] = j;
            rc = sim_dial(s, i, j);
        }
    }
    free(picked);
    return rc;
}

bool sim_dials_settled(sim *s, void *arg)
{
    (void)arg;
    return s->dials_done >= s->dials_started;
}

static void sim_node_closed(gn_node *n, void *arg)
{
    (void)n;
    ((sim_node *)arg)->closed = true;
}

static bool sim_all_closed(sim *s, void *arg)
{
    (void)arg;
    for (size_t i = 0; i < s->n; i++) {
        if (!s->nodes[i].closed) {
            return false;
        }
    }
    return true;
}

static bool sim_one_closed(sim *s, void *arg)
{
    (void)s;
    return ((sim_node *)arg)->closed;
}

bool sim_close_node(sim *s, size_t i)
{
    sim_node *sn = &s->nodes[i];
    if (sn->gone) {
        return true;
    }
    sn->gone = true;
    sn->closed = false;
    gn_node_close(sn->n, sim_node_closed, sn);
    return sim_run_until(s, sim_one_closed, sn, 60 * GN_S);
}

static long sim_status_kib(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) {
        return -1;
    }
    char line[256];
    long v = -1;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
            v = strtol(line + kl + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

long sim_rss_kib(void)
{
    return sim_status_kib("VmRSS");
}

long sim_hwm_kib(void)
{
    return sim_status_kib("VmHWM");
}

void sim_fini(sim *s)
{
    if (s->loop) {
        for (size_t i = 0; i < s->n; i++) {
            if (s->nodes[i].gone) {
                s->nodes[i].closed = true;
                continue;
            }
            s->nodes[i].closed = false;
            gn_node_close(s->nodes[i].n, sim_node_closed, &s->nodes[i]);
        }
        if (!sim_run_until(s, sim_all_closed, NULL, 60 * GN_S)) {
            fprintf(stderr, "sim: nodes did not close within 60 virtual s\n");
        }
        sim_turn(s); /* the CLOSED events */
    }
    for (size_t i = 0; i < s->n; i++) {
        gn_node_free(s->nodes[i].n);
        gn_identity_free(s->nodes[i].id);
    }
    free(s->nodes);
    s->nodes = NULL;
    s->n = 0;
    if (s->loop) {
        gn_loop_stop(s->loop);
        gn_loop_run(s->loop, GN_RUN_DEFAULT);
        gn_loop_free(s->loop);
        s->loop = NULL;
    }
    gn_registry_free(s->reg);
    s->reg = NULL;
}
