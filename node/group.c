/*
 * Multicast channels on an overlay (gn_node_dial_group, golemnet/node.h)
 * and the host's group service (golemnet/host.h "the group service").
 *
 * The node knows no overlay by name: a protocol component (the built-in
 * one is pubsub) registers a gn_host_group_ops table. The node keeps the
 * handles the application holds on n->groups (any thread, under
 * n->group_mtx; a handle's own fields under its mtx), posts join, leave
 * and publish to the loop, and turns the service's deliveries into
 * GN_NODE_EV_MESSAGE events. Lock order: n->group_mtx, then mc->mtx.
 */
#include "node_int.h"

#include <string.h>

void gni_group_init(gn_node *n)
{
    uv_mutex_init(&n->group_mtx);
    gni_list_init(&n->groups);
}

void gni_group_fini(gn_node *n)
{
    /* handles still open belong to the application: unlink them and cut
     * them from the node (their calls then fail with GN_ECLOSED) */
    uv_mutex_lock(&n->group_mtx);
    while (!gni_list_empty(&n->groups)) {
        gn_multicast *mc = GNI_CONTAINER_OF(n->groups.next, gn_multicast, glink);
        gni_list_del(&mc->glink);
        uv_mutex_lock(&mc->mtx);
        mc->status = GN_ECLOSED;
        mc->n = NULL;
        uv_mutex_unlock(&mc->mtx);
    }
    uv_mutex_unlock(&n->group_mtx);
    uv_mutex_destroy(&n->group_mtx);
}

gn_node *gni_multicast_node(gn_multicast *mc)
{
    uv_mutex_lock(&mc->mtx);
    gn_node *n = mc->n;
    uv_mutex_unlock(&mc->mtx);
    return n;
}

static bool group_accepting(gn_node *n)
{
    int st = atomic_load(&n->state);
    return st == NODE_NEW || st == NODE_RUNNING;
}

/* The open handle on @topic, or NULL. Caller holds n->group_mtx. */
static gn_multicast *group_find_locked(gn_node *n, const char *topic)
{
    for (gni_list *e = n->groups.next; e != &n->groups; e = e->next) {
        gn_multicast *mc = GNI_CONTAINER_OF(e, gn_multicast, glink);
        if (strcmp(mc->topic, topic) == 0) {
            return mc;
        }
    }
    return NULL;
}

/* ---- commands posted to the loop ---- */

typedef enum { GCMD_JOIN = 1, GCMD_LEAVE, GCMD_PUBLISH } gcmd_kind;

typedef struct group_cmd {
    gn_node *n;
    gcmd_kind kind;
    char topic[GN_GROUP_TOPIC_MAX];
    uint8_t *data;
    size_t len;
} group_cmd;

static void group_cmd_free(group_cmd *c)
{
    if (c) {
        gn_free(c->data);
        gn_free(c);
    }
}

static void group_set_status(gn_node *n, const char *topic, int status)
{
    uv_mutex_lock(&n->group_mtx);
    gn_multicast *mc = group_find_locked(n, topic);
    if (mc) {
        uv_mutex_lock(&mc->mtx);
        mc->status = status;
        uv_mutex_unlock(&mc->mtx);
    }
    uv_mutex_unlock(&n->group_mtx);
}

static void group_join_now(gn_node *n, const char *topic)
{
    /* once per handle: its own GCMD_JOIN and the one a service's
     * registration posts may both run */
    uv_mutex_lock(&n->group_mtx);
    gn_multicast *mc = group_find_locked(n, topic);
    bool skip = true;
    if (mc) {
        uv_mutex_lock(&mc->mtx);
        skip = mc->joined;
        mc->joined = true;
        uv_mutex_unlock(&mc->mtx);
    }
    uv_mutex_unlock(&n->group_mtx);
    if (skip) {
        return; /* joined already, or freed since (its leave follows) */
    }
    int rc = n->group_ops->join(n->group_svc, topic);
    if (rc < 0) {
        GN_LOG(GN_LOG_WARNING, "node", "group '%s': the group service refused to join: %s", topic,
               gn_err_name(rc));
    }
    group_set_status(n, topic, rc < 0 ? rc : 0);
}

static void group_send_failed(gn_node *n, const char *topic, int status)
{
    gn_node_event ev;
    gni_node_event_init(&ev, GN_NODE_EV_SEND_FAILED);
    ev.status = status;
    snprintf(ev.addr, sizeof ev.addr, "%s%s", GN_GROUP_ADDR_PREFIX, topic);
    gni_node_push_event(n, &ev);
}

static void group_cmd_run(gn_loop *loop, void *arg)
{
    (void)loop;
    group_cmd *c = arg;
    gn_node *n = c->n;
    switch (c->kind) {
    case GCMD_JOIN:
        if (n->group_ops && !n->closing) {
            group_join_now(n, c->topic);
        }
        /* else: joined when a service registers (gn_host_set_group_service) */
        break;
    case GCMD_LEAVE:
        if (n->group_ops && !n->closing) {
            n->group_ops->leave(n->group_svc, c->topic);
        }
        break;
    case GCMD_PUBLISH: {
        int rc = GN_ENOTSUP;
        if (n->closing) {
            rc = GN_ECANCELED;
        } else if (n->group_ops) {
            rc = n->group_ops->publish(n->group_svc, c->topic, c->data, c->len);
        }
        uv_mutex_lock(&n->group_mtx);
        gn_multicast *mc = group_find_locked(n, c->topic);
        if (mc && rc == 0) {
            uv_mutex_lock(&mc->mtx);
            mc->m.published++;
            uv_mutex_unlock(&mc->mtx);
        }
        uv_mutex_unlock(&n->group_mtx);
        if (rc < 0) {
            group_send_failed(n, c->topic, rc);
        }
        break;
    }
    }
    group_cmd_free(c);
}

static int group_post(gn_node *n, gcmd_kind kind, const char *topic, const uint8_t *data,
                      size_t len)
{
    group_cmd *c = gn_calloc(1, sizeof *c);
    if (!c) {
        return GN_ENOMEM;
    }
    c->n = n;
    c->kind = kind;
    gni_str_copy(c->topic, sizeof c->topic, topic);
    if (len > 0) {
        c->data = gn_malloc(len);
        if (!c->data) {
            gn_free(c);
            return GN_ENOMEM;
        }
        memcpy(c->data, data, len);
        c->len = len;
    }
    int rc = gni_node_post(n, group_cmd_run, c);
    if (rc < 0) {
        group_cmd_free(c);
    }
    return rc;
}

/* ---- the public calls (any thread) ---- */

int gn_node_dial_group(gn_node *n, const char *group_addr, gn_multicast **out)
{
    if (!n || !group_addr || !out) {
        return GN_EINVAL;
    }
    size_t plen = strlen(GN_GROUP_ADDR_PREFIX);
    if (strncmp(group_addr, GN_GROUP_ADDR_PREFIX, plen) != 0) {
        return GN_EPARSE;
    }
    const char *topic = group_addr + plen;
    size_t tlen = strlen(topic);
    if (tlen == 0 || tlen >= GN_GROUP_TOPIC_MAX) {
        return GN_EPARSE;
    }
    if (plen + tlen >= GN_NODE_ADDR_MAX) {
        /* the group address goes in the events' addr (GN_NODE_ADDR_MAX) */
        GN_LOG(GN_LOG_WARNING, "node",
               "group topic of %zu bytes: at most %zu (\"%s\" + topic must fit GN_NODE_ADDR_MAX)",
               tlen, (size_t)GN_NODE_ADDR_MAX - 1 - plen, GN_GROUP_ADDR_PREFIX);
        return GN_EINVAL;
    }
    if (!group_accepting(n)) {
        return GN_ECLOSED;
    }
    gn_multicast *mc = gn_calloc(1, sizeof *mc);
    if (!mc) {
        return GN_ENOMEM;
    }
    mc->n = n;
    mc->group = true;
    uv_mutex_init(&mc->mtx);
    gni_str_copy(mc->name, sizeof mc->name, topic);
    memcpy(mc->topic, topic, tlen + 1);
    uv_mutex_lock(&n->group_mtx);
    if (group_find_locked(n, topic)) {
        uv_mutex_unlock(&n->group_mtx);
        uv_mutex_destroy(&mc->mtx);
        gn_free(mc);
        return GN_EEXIST;
    }
    gni_list_add_tail(&n->groups, &mc->glink);
    /* posted under the lock so that a free right after posts its leave later */
    int rc = group_post(n, GCMD_JOIN, topic, NULL, 0);
    if (rc < 0) {
        gni_list_del(&mc->glink);
    }
    uv_mutex_unlock(&n->group_mtx);
    if (rc < 0) {
        uv_mutex_destroy(&mc->mtx);
        gn_free(mc);
        return rc;
    }
    *out = mc;
    return 0;
}

int gni_group_broadcast(gn_multicast *mc, const uint8_t *msg, size_t len)
{
    gn_node *n = gni_multicast_node(mc);
    if (!n || !group_accepting(n)) {
        return GN_ECLOSED;
    }
    if (len > atomic_load(&n->max_msg)) {
        return GN_ETOOBIG;
    }
    uv_mutex_lock(&mc->mtx);
    int st = mc->status;
    uv_mutex_unlock(&mc->mtx);
    if (st < 0) {
        return st;
    }
    return group_post(n, GCMD_PUBLISH, mc->topic, msg, len);
}

void gni_group_free(gn_multicast *mc)
{
    gn_node *n = gni_multicast_node(mc);
    if (!n) {
        return; /* the node was freed first */
    }
    uv_mutex_lock(&n->group_mtx);
    bool listed = gni_list_on(&mc->glink);
    gni_list_del(&mc->glink);
    if (listed && group_accepting(n)) {
        (void)group_post(n, GCMD_LEAVE, mc->topic, NULL, 0); /* a full queue: the node closes */
    }
    uv_mutex_unlock(&n->group_mtx);
}

int gn_multicast_metrics_get(gn_multicast *mc, gn_multicast_metrics *m)
{
    if (!mc || !m) {
        return GN_EINVAL;
    }
    if (!mc->group) {
        return GN_ENOTSUP;
    }
    uv_mutex_lock(&mc->mtx);
    *m = mc->m;
    m->members = mc->count;
    m->mesh = mc->nmesh;
    uv_mutex_unlock(&mc->mtx);
    return 0;
}

int gn_multicast_mesh_peers(gn_multicast *mc, gn_peer_id *out, size_t max)
{
    if (!mc || (!out && max > 0)) {
        return GN_EINVAL;
    }
    if (!mc->group) {
        return GN_ENOTSUP;
    }
    uv_mutex_lock(&mc->mtx);
    size_t n = mc->nmesh;
    for (size_t i = 0; i < n && i < max; i++) {
        out[i] = mc->mesh[i];
    }
    uv_mutex_unlock(&mc->mtx);
    return (int)n;
}

int gn_multicast_set_validator(gn_multicast *mc, gn_group_validate_fn fn, void *user_data)
{
    if (!mc) {
        return GN_EINVAL;
    }
    if (!mc->group) {
        return GN_ENOTSUP;
    }
    if (!mc->n) {
        return GN_ECLOSED;
    }
    uv_mutex_lock(&mc->mtx);
    mc->validate = fn;
    mc->validate_ud = fn ? user_data : NULL;
    uv_mutex_unlock(&mc->mtx);
    return 0;
}

/* ---- the host's calls (loop thread) ---- */

gn_group_verdict gn_host_group_validate(gn_host *h, const char *topic, const gn_peer_id *from,
                                        const uint8_t *data, size_t len)
{
    if (!h || !topic) {
        return GN_GROUP_VERDICT_ACCEPT;
    }
    gn_node *n = h->node;
    gn_group_validate_fn fn = NULL;
    void *ud = NULL;
    uv_mutex_lock(&n->group_mtx);
    gn_multicast *mc = group_find_locked(n, topic);
    if (mc) {
        uv_mutex_lock(&mc->mtx);
        fn = mc->validate;
        ud = mc->validate_ud;
        uv_mutex_unlock(&mc->mtx);
    }
    uv_mutex_unlock(&n->group_mtx);
    if (!fn) {
        return GN_GROUP_VERDICT_ACCEPT;
    }
    /* called without the locks: the validator may read the group's metrics */
    int v = fn(ud, topic, from && from->len > 0 ? from : NULL, data, len);
    switch (v) {
    case GN_GROUP_VERDICT_ACCEPT:
        return GN_GROUP_VERDICT_ACCEPT;
    case GN_GROUP_VERDICT_REJECT:
        return GN_GROUP_VERDICT_REJECT;
    default:
        return GN_GROUP_VERDICT_IGNORE;
    }
}


int gn_host_set_group_service(gn_host *h, const gn_host_group_ops *ops, void *svc,
                              const char *protocol_id)
{
    if (!h) {
        return GN_EINVAL;
    }
    gn_node *n = h->node;
    if (!ops) {
        if (!n->group_ops || n->group_svc != svc) {
            return GN_ENOTFOUND;
        }
        n->group_ops = NULL;
        n->group_svc = NULL;
        return 0;
    }
    size_t len = protocol_id ? strlen(protocol_id) : 0;
    if (!ops->join || !ops->leave || !ops->publish || len == 0 ||
        len >= sizeof n->group_proto) {
        return GN_EINVAL;
    }
    if (n->group_ops) {
        return GN_EEXIST;
    }
    n->group_ops = ops;
    n->group_svc = svc;
    memcpy(n->group_proto, protocol_id, len + 1);
    /* groups opened before the service started: their joins go through
     * the loop (never from inside the service's start) */
    uv_mutex_lock(&n->group_mtx);
    for (gni_list *e = n->groups.next; e != &n->groups; e = e->next) {
        gn_multicast *mc = GNI_CONTAINER_OF(e, gn_multicast, glink);
        int rc = group_post(n, GCMD_JOIN, mc->topic, NULL, 0);
        if (rc < 0) {
            GN_LOG(GN_LOG_WARNING, "node", "group '%s': join not posted: %s", mc->topic,
                   gn_err_name(rc));
            uv_mutex_lock(&mc->mtx);
            mc->status = rc;
            uv_mutex_unlock(&mc->mtx);
        }
    }
    uv_mutex_unlock(&n->group_mtx);
    return 0;
}

int gn_host_group_deliver(gn_host *h, const char *topic, const gn_peer_id *from,
                          gn_channel *ch, const uint8_t *data, size_t len)
{
    if (!h || !topic || (!data && len > 0)) {
        return GN_EINVAL;
    }
    gn_node *n = h->node;
    gn_node_event ev;
    gni_node_event_init(&ev, GN_NODE_EV_MESSAGE);
    if (ch) {
        ev.channel_id = ch->info.id;
        ev.peer = ch->info.remote_peer;
    }
    if (from && from->len > 0) {
        ev.peer = *from;
    }
    memcpy(ev.protocol, n->group_proto, sizeof ev.protocol);
    snprintf(ev.addr, sizeof ev.addr, "%s%s", GN_GROUP_ADDR_PREFIX, topic);
    uv_mutex_lock(&n->group_mtx);
    gn_multicast *mc = group_find_locked(n, topic);
    if (!mc) {
        uv_mutex_unlock(&n->group_mtx);
        return GN_ENOTFOUND;
    }
    int rc = 0;
    /* counted first: a reader that popped the event sees it counted */
    uv_mutex_lock(&mc->mtx);
    mc->m.delivered++;
    uv_mutex_unlock(&mc->mtx);
    ev.message = gn_rcbuf_new(data, len);
    if (!ev.message) {
        rc = GN_ENOMEM;
    } else if (!gni_node_try_message(n, &ev)) {
        gn_rcbuf_rele(ev.message);
        rc = GN_EAGAIN;
    }
    if (rc < 0) {
        uv_mutex_lock(&mc->mtx);
        mc->m.delivered--;
        mc->m.dropped++;
        uv_mutex_unlock(&mc->mtx);
    }
    uv_mutex_unlock(&n->group_mtx);
    if (rc == 0 && ch) {
        ch->messages_in++;
        ch->last_active = gn_loop_now(n->loop);
    }
    return rc;
}

void gn_host_group_count(gn_host *h, const char *topic, gn_group_counter which, uint64_t delta)
{
    if (!h) {
        return;
    }
    gn_node *n = h->node;
    if (which == GN_GROUP_OUT_DROPPED || which == GN_GROUP_DECODE_ERRORS) {
        uv_mutex_lock(&n->group_mtx);
        for (gni_list *e = n->groups.next; e != &n->groups; e = e->next) {
            gn_multicast *mc = GNI_CONTAINER_OF(e, gn_multicast, glink);
            uv_mutex_lock(&mc->mtx);
            if (which == GN_GROUP_OUT_DROPPED) {
                mc->m.out_dropped += delta;
            } else {
                mc->m.decode_errors += delta;
            }
            uv_mutex_unlock(&mc->mtx);
        }
        uv_mutex_unlock(&n->group_mtx);
        return;
    }
    if (!topic) {
        return;
    }
    uv_mutex_lock(&n->group_mtx);
    gn_multicast *mc = group_find_locked(n, topic);
    if (mc) {
        uv_mutex_lock(&mc->mtx);
        if (which == GN_GROUP_DUPLICATE) {
            mc->m.duplicate += delta;
        } else if (which == GN_GROUP_REJECTED) {
            mc->m.rejected += delta;
        }
        uv_mutex_unlock(&mc->mtx);
    }
    uv_mutex_unlock(&n->group_mtx);
}

/* Replaces *@arr (@cnt, @cap) with @n peers of @src; false on no memory (unchanged). */
static bool group_copy_peers(gn_peer_id **arr, size_t *cnt, size_t *cap, const gn_peer_id *src,
                             size_t n)
{
    n = GNI_MIN(n, (size_t)GN_GROUP_PEERS_MAX);
    if (n > *cap) {
        gn_peer_id *p = gn_realloc(*arr, n * sizeof *p);
        if (!p) {
            return false;
        }
        *arr = p;
        *cap = n;
    }
    if (n > 0) {
        memcpy(*arr, src, n * sizeof **arr);
    }
    *cnt = n;
    return true;
}

void gn_host_group_set_peers(gn_host *h, const char *topic, const gn_peer_id *members,
                             size_t nmembers, const gn_peer_id *mesh, size_t nmesh)
{
    if (!h || !topic || (!members && nmembers) || (!mesh && nmesh)) {
        return;
    }
    gn_node *n = h->node;
    uv_mutex_lock(&n->group_mtx);
    gn_multicast *mc = group_find_locked(n, topic);
    if (mc) {
        uv_mutex_lock(&mc->mtx);
        size_t mesh_cap = mc->nmesh; /* the array holds at least nmesh */
        if (!group_copy_peers(&mc->members, &mc->count, &mc->cap, members, nmembers) ||
            !group_copy_peers(&mc->mesh, &mc->nmesh, &mesh_cap, mesh, nmesh)) {
            GN_LOG(GN_LOG_WARNING, "node", "group '%s': peer snapshot not updated: no memory",
                   topic);
        }
        uv_mutex_unlock(&mc->mtx);
    }
    uv_mutex_unlock(&n->group_mtx);
}
