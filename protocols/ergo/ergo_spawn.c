/*
 * golemnet - remote spawn and application start on the Ergo node layer
 * (include/golemnet/ergo.h "remote spawn and application start"):
 *  - serving: factories and applications the application enabled
 *    (gn_ergo_spawn_enable(), gn_ergo_app_enable(), optionally for listed
 *    nodes only) answer a remote MessageSpawn / MessageApplicationStart
 *    (199) with a MessageResult {Error, Result, Ref} as Ergo's node does;
 *    anything not enabled is refused (the seeds' security rule);
 *  - requesting: gn_ergo_remote_spawn() and gn_ergo_remote_app_start() send
 *    the request (connecting on first use) and wait for the MessageResult on
 *    a pending entry of ergo_node.c (timeout, connection loss, max_pending).
 *
 * Sits on ergo_node.c through the small hooks of ergo_node_int.h. No syscalls,
 * no libuv. Spec: ergo-wire.md c "MessageAny (199) bodies", "Order byte".
 * Docs: docs/ergo-node.md "Remote spawn and application start". Loop thread.
 */
#include "golemnet/ergo.h"
#include "golemnet/err.h"
#include "golemnet/log.h"

#include "enp.h"
#include "ergo_node_int.h"

#include <string.h>

#define SP_LOG "ergo"
#define SP_DEPTH_MAX 8u /* nesting of the option structs we fill with zero values */

/* one enabled factory or application */
typedef struct sp_entry {
    struct sp_entry *next;
    bool app;
    char name[GN_ERGO_NAME_MAX + 1];
    struct {
        char name[GN_ERGO_NAME_MAX + 1];
        bool on;
    } nodes[GN_ERGO_ENABLED_NODES_MAX];
    unsigned nnodes; /* 0: any node */
    gn_ergo_factory_fn fn;
    gn_ergo_app_fn afn;
    void *arg;
    uint32_t max_procs; /* factories: live processes it may have made (the cap) */
    uint32_t live;      /* ... and has: the processes tagged with this entry */
} sp_entry;

/* one request of ours waiting for its MessageResult (the pending entry is ergo_node.c's) */
typedef struct sp_req {
    struct sp_req *next;
    gn_ergo_node *en;
    gn_ergo_proc *proc; /* the requester: its end ends the request (GN_ECLOSED) */
    uint64_t ref[3];
    gn_ergo_spawn_cb scb;
    gn_ergo_result_cb rcb;
    void *arg;
} sp_req;

typedef struct sp_table {
    sp_entry *entries;
    unsigned n;
    sp_req *reqs;
    bool closing; /* gn_ergo_detach() runs: no new entries or requests */
} sp_table;

static sp_table *sp_get(gn_ergo_node *en, bool create)
{
    void **slot = gni_ergo_node_spawn_slot(en);
    if (!*slot && create)
        *slot = gn_calloc(1, sizeof(sp_table));
    return *slot;
}

/* ends request @r (off the list already) with GN_ECLOSED: its process or node went */
static void sp_closed(sp_req *r)
{
    if (r->scb)
        r->scb(r->arg, GN_ECLOSED, NULL, NULL);
    else if (r->rcb)
        r->rcb(r->arg, GN_ECLOSED, NULL);
    gn_free(r);
}

void gni_ergo_spawn_free(gn_ergo_node *en)
{
    sp_table *t = sp_get(en, false);
    if (!t)
        return;
    t->closing = true; /* a callback below cannot add requests or entries */
    while (t->reqs) { /* bounded: the requests made (none is added meanwhile) */
        sp_req *r = t->reqs;
        t->reqs = r->next;
        sp_closed(r);
    }
    while (t->entries) { /* bounded: GN_ERGO_ENABLED_MAX */
        sp_entry *e = t->entries;
        t->entries = e->next;
        gn_free(e);
    }
    gn_free(t);
    *gni_ergo_node_spawn_slot(en) = NULL;
}

void gni_ergo_spawn_on_proc_end(gn_ergo_node *en, gn_ergo_proc *p, void *tag)
{
    sp_table *t = sp_get(en, false);
    if (!t)
        return;
    sp_entry *e = tag;
    if (e && e->live)
        e->live--;
    /* take @p's requests off the list first: a callback may change it */
    sp_req *mine = NULL;
    for (sp_req **pp = &t->reqs; *pp;) { /* bounded: the requests */
        sp_req *r = *pp;
        if (r->proc == p) {
            *pp = r->next;
            r->next = mine;
            mine = r;
        } else {
            pp = &r->next;
        }
    }
    while (mine) { /* bounded: @p's requests (at most its max_pending) */
        sp_req *r = mine;
        mine = r->next;
        sp_closed(r);
    }
}

static bool sp_name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n > 0 && n <= GN_ERGO_NAME_MAX;
}

static void sp_copy(char dst[GN_ERGO_NAME_MAX + 1], const uint8_t *src, size_t len)
{
    if (len > GN_ERGO_NAME_MAX)
        len = GN_ERGO_NAME_MAX;
    if (len)
        memcpy(dst, src, len);
    dst[len] = '\0';
}

static sp_entry *sp_find(sp_table *t, bool app, const char *name)
{
    for (sp_entry *e = t ? t->entries : NULL; e; e = e->next)
        if (e->app == app && !strcmp(e->name, name))
            return e;
    return NULL;
}

/* ---- enabling ----------------------------------------------------------------------------- */

static int sp_enable(gn_ergo_node *en, bool app, const char *name, const char *const *nodes,
                     size_t n_nodes, uint32_t max_procs, gn_ergo_factory_fn fn,
                     gn_ergo_app_fn afn, void *arg)
{
    if (!en || !sp_name_ok(name) || (!fn && !afn) || (n_nodes && !nodes))
        return GN_EINVAL;
    for (size_t i = 0; i < n_nodes; i++)
        if (!sp_name_ok(nodes[i]))
            return GN_EINVAL;
    sp_table *t = sp_get(en, true);
    if (!t)
        return GN_ENOMEM;
    if (t->closing)
        return GN_ESTATE;
    sp_entry *e = sp_find(t, app, name);
    bool fresh = !e;
    if (fresh) {
        if (t->n >= GN_ERGO_ENABLED_MAX)
            return GN_ELIMIT;
        e = gn_calloc(1, sizeof *e);
        if (!e)
            return GN_ENOMEM;
        e->app = app;
        sp_copy(e->name, (const uint8_t *)name, strlen(name));
    }
    /* the nodes first: a list that would overflow changes nothing */
    unsigned add = 0;
    for (size_t i = 0; i < n_nodes; i++) {
        bool known = false;
        for (unsigned k = 0; k < e->nnodes && !known; k++)
            known = !strcmp(e->nodes[k].name, nodes[i]);
        add += known ? 0u : 1u;
    }
    if (e->nnodes + add > GN_ERGO_ENABLED_NODES_MAX) {
        if (fresh)
            gn_free(e);
        return GN_ELIMIT;
    }
    if (n_nodes == 0) {
        e->nnodes = 0; /* any node, as Ergo's EnableSpawn without nodes */
    } else {
        for (size_t i = 0; i < n_nodes; i++) {
            unsigned k = 0;
            while (k < e->nnodes && strcmp(e->nodes[k].name, nodes[i]) != 0)
                k++;
            if (k == e->nnodes) {
                sp_copy(e->nodes[k].name, (const uint8_t *)nodes[i], strlen(nodes[i]));
                e->nnodes++;
            }
            e->nodes[k].on = true;
        }
    }
    e->fn = fn;
    e->afn = afn;
    e->arg = arg;
    e->max_procs = max_procs ? max_procs : GN_ERGO_SPAWN_PROCS_DEFAULT;
    if (fresh) {
        e->next = t->entries;
        t->entries = e;
        t->n++;
    }
    return 0;
}

static int sp_disable(gn_ergo_node *en, bool app, const char *name, const char *const *nodes,
                      size_t n_nodes)
{
    if (!en || !sp_name_ok(name) || (n_nodes && !nodes))
        return GN_EINVAL;
    for (size_t i = 0; i < n_nodes; i++) /* all checked first: a bad name changes nothing */
        if (!sp_name_ok(nodes[i]))
            return GN_EINVAL;
    sp_table *t = sp_get(en, false);
    sp_entry *e = sp_find(t, app, name);
    if (!e)
        return GN_ENOTFOUND;
    if (n_nodes == 0) {
        for (sp_entry **pp = &t->entries; *pp; pp = &(*pp)->next)
            if (*pp == e) {
                *pp = e->next;
                break;
            }
        t->n--;
        if (e->live) /* its processes live on, no longer counted */
            gni_ergo_node_untag(en, e);
        gn_free(e);
        return 0;
    }
    for (size_t i = 0; i < n_nodes; i++) {
        unsigned k = 0;
        while (k < e->nnodes && strcmp(e->nodes[k].name, nodes[i]) != 0)
            k++;
        if (k < e->nnodes) {
            e->nodes[k].on = false;
        } else if (k < GN_ERGO_ENABLED_NODES_MAX) { /* a list that names nobody refuses all */
            sp_copy(e->nodes[k].name, (const uint8_t *)nodes[i], strlen(nodes[i]));
            e->nodes[k].on = false;
            e->nnodes++;
        }
    }
    return 0;
}

int gn_ergo_spawn_enable(gn_ergo_node *en, const char *name, const char *const *nodes,
                         size_t n_nodes, gn_ergo_factory_fn fn, void *arg)
{
    return gn_ergo_spawn_enable_ex(en, name, nodes, n_nodes, NULL, fn, arg);
}

int gn_ergo_spawn_enable_ex(gn_ergo_node *en, const char *name, const char *const *nodes,
                            size_t n_nodes, const gn_ergo_spawn_enable_opts *o,
                            gn_ergo_factory_fn fn, void *arg)
{
    return fn ? sp_enable(en, false, name, nodes, n_nodes, o ? o->max_procs : 0, fn, NULL, arg)
              : GN_EINVAL;
}

int gn_ergo_spawn_disable(gn_ergo_node *en, const char *name, const char *const *nodes,
                          size_t n_nodes)
{
    return sp_disable(en, false, name, nodes, n_nodes);
}

int gn_ergo_app_enable(gn_ergo_node *en, const char *name, const char *const *nodes,
                       size_t n_nodes, gn_ergo_app_fn fn, void *arg)
{
    return fn ? sp_enable(en, true, name, nodes, n_nodes, 0, NULL, fn, arg) : GN_EINVAL;
}

int gn_ergo_app_disable(gn_ergo_node *en, const char *name, const char *const *nodes,
                        size_t n_nodes)
{
    return sp_disable(en, true, name, nodes, n_nodes);
}

/* Ergo's rule (node/network.go getEnabledSpawn): not enabled "unknown name"; a non-empty
 * list without @node switched on "not allowed" */
static const char *sp_permit(sp_table *t, bool app, const char *name, const char *node,
                             sp_entry **out)
{
    sp_entry *e = sp_find(t, app, name);
    *out = e;
    if (!e)
        return GN_ERGO_ERR_UNKNOWN_NAME;
    if (e->nnodes == 0)
        return NULL;
    for (unsigned k = 0; k < e->nnodes; k++)
        if (e->nodes[k].on && !strcmp(e->nodes[k].name, node))
            return NULL;
    return GN_ERGO_ERR_NOT_ALLOWED;
}

/* ---- values ------------------------------------------------------------------------------- */

static gn_edf_arena *sp_arena(void) { return gn_edf_arena_new(1024, (size_t)16 << 20); }

static const gn_edf_type *sp_type(gn_ergo_node *en, const char *name)
{
    const gn_edf_registry *r = gn_ergo_registry(en);
    return r ? gn_edf_registry_find(r, name, strlen(name)) : NULL;
}

/* *@v = the zero value of @ty (Go's zero: empty strings and atoms, nil maps and slices,
 * zero PIDs), structs filled field by field */
static int sp_zero(gn_edf_value *v, gn_edf_arena *a, const gn_edf_type *ty, unsigned depth)
{
    if (!ty || depth > SP_DEPTH_MAX)
        return GN_EINVAL;
    int rc = 0;
    switch (ty->kind) {
    case GN_EDF_STRUCT:
    case GN_EDF_ARRAY:
        if ((rc = gn_edf_set_composite(v, a, ty, 0)) < 0)
            return rc;
        for (uint32_t i = 0; i < ty->len; i++) {
            const gn_edf_type *ft = ty->kind == GN_EDF_STRUCT ? ty->fields[i].type : ty->elem;
            if ((rc = sp_zero(&gn_edf_items(v)[i], a, ft, depth + 1)) < 0)
                return rc;
        }
        return 0;
    case GN_EDF_SLICE:
    case GN_EDF_MAP:
        return gn_edf_set_nil_of(v, ty);
    case GN_EDF_BOOL:
        gn_edf_set_bool(v, false);
        break;
    case GN_EDF_INT8:
    case GN_EDF_INT16:
    case GN_EDF_INT32:
    case GN_EDF_INT64:
    case GN_EDF_INT:
        rc = gn_edf_set_int(v, (gn_edf_kind)ty->kind, 0);
        break;
    case GN_EDF_UINT8:
    case GN_EDF_UINT16:
    case GN_EDF_UINT32:
    case GN_EDF_UINT64:
    case GN_EDF_UINT:
        rc = gn_edf_set_uint(v, (gn_edf_kind)ty->kind, 0);
        break;
    case GN_EDF_FLOAT32:
        gn_edf_set_float32(v, 0);
        break;
    case GN_EDF_FLOAT64:
        gn_edf_set_float64(v, 0);
        break;
    case GN_EDF_STRING:
        gn_edf_set_string(v, "", 0);
        break;
    case GN_EDF_ATOM:
        gn_edf_set_atom(v, "", 0);
        break;
    case GN_EDF_BINARY:
        gn_edf_set_binary(v, NULL, 0);
        break;
    case GN_EDF_ERROR:
        gn_edf_set_error(v, NULL, 0);
        break;
    case GN_EDF_PID:
        gn_edf_set_pid(v, "", 0, 0, 0);
        break;
    case GN_EDF_REF: {
        static const uint64_t zero[3];
        gn_edf_set_ref(v, "", 0, 0, zero);
        break;
    }
    case GN_EDF_ANY:
        gn_edf_set_nil(v);
        return 0;
    default:
        return GN_ENOTSUP;
    }
    if (rc == 0 && ty->name) /* a registered named scalar (LogLevel, Priority, ...) */
        rc = gn_edf_set_type(v, ty);
    return rc;
}

/* an int-kind field (a registered named int) set to @i, keeping its type */
static void sp_set_int(gn_edf_value *v, int64_t i)
{
    if (v->kind >= GN_EDF_INT8 && v->kind <= GN_EDF_INT)
        v->u.i = i;
}

/* the MessageResult for a request of @kind: @err NULL = success; Result a gen.PID
 * (@pid, or the zero PID: Ergo answers a failed spawn with an empty PID) for Spawn, nil
 * for ApplicationStart */
static void sp_answer(gn_ergo_node *en, const char *node, enum gni_enp_any_kind kind,
                      uint64_t parent_id, const gn_ergo_pid *pid, const char *err,
                      const gn_edf_value *ref)
{
    const gn_edf_type *ty = sp_type(en, GN_EDF_ERGO_MESSAGE_RESULT);
    gn_edf_arena *a = ty ? sp_arena() : NULL;
    if (!a)
        return;
    gn_edf_value v;
    int rc = gn_edf_set_composite(&v, a, ty, 0);
    if (rc == 0) {
        gn_edf_value *it = gn_edf_items(&v);
        gn_edf_set_error(&it[0], err, err ? strlen(err) : 0);
        if (kind == GNI_ENP_ANY_SPAWN && pid)
            gn_edf_set_pid(&it[1], pid->node, strlen(pid->node), pid->id, pid->creation);
        else if (kind == GNI_ENP_ANY_SPAWN)
            gn_edf_set_pid(&it[1], "", 0, 0, 0);
        else
            gn_edf_set_nil(&it[1]);
        it[2] = *ref;
        rc = gni_ergo_node_any_send(en, node, 0, gni_enp_any_order(kind, true, parent_id), &v,
                                    true);
    }
    gn_edf_arena_free(a);
    if (rc < 0)
        GN_LOG(GN_LOG_DEBUG, SP_LOG, "%s: MessageResult not sent: %s", node, gn_err_name(rc));
}

static void pid_of(const gn_edf_value *v, gn_ergo_pid *out)
{
    memset(out, 0, sizeof *out);
    if (v->kind != GN_EDF_PID)
        return;
    sp_copy(out->node, v->u.pid.node.base, v->u.pid.node.len);
    out->id = v->u.pid.id;
    out->creation = v->u.pid.creation;
}

static bool is_struct(const gn_edf_value *v, uint32_t nfields)
{
    return v->kind == GN_EDF_STRUCT && !v->nil && v->type && v->type->len == nfields;
}

/* ---- serving ------------------------------------------------------------------------------- */

static void sp_spawn(gn_ergo_node *en, sp_table *t, const char *node, const gn_edf_value *it)
{
    const gn_edf_value *ref = &it[2];
    if (ref->kind != GN_EDF_REF)
        return; /* nothing to answer to */
    if (it[0].kind != GN_EDF_ATOM || !is_struct(&it[1], 8) ||
        !is_struct(&gn_edf_items(&it[1])[0], 10)) {
        sp_answer(en, node, GNI_ENP_ANY_SPAWN, 0, NULL, "incorrect value or argument", ref);
        return;
    }
    const gn_edf_value *ox = gn_edf_items(&it[1]), *po = gn_edf_items(&ox[0]);
    gn_ergo_spawn_request rq;
    memset(&rq, 0, sizeof rq);
    char factory[GN_ERGO_NAME_MAX + 1], reg[GN_ERGO_NAME_MAX + 1] = "",
                                        app[GN_ERGO_NAME_MAX + 1] = "";
    sp_copy(factory, it[0].u.bytes.base, it[0].u.bytes.len);
    pid_of(&ox[1], &rq.parent);
    sp_entry *e;
    const char *err = sp_permit(t, false, factory, node, &e);
    gn_ergo_pid leader;
    pid_of(&ox[2], &leader);
    if (!err && (rq.parent.id == 0 || leader.id == 0))
        err = "parent/leader is not set"; /* gen.ErrParentUnknown */
    if (!err && ox[5].kind == GN_EDF_ATOM) {
        sp_copy(reg, ox[5].u.bytes.base, ox[5].u.bytes.len);
        if (reg[0] && gni_ergo_node_name_taken(en, reg))
            err = GN_ERGO_ERR_TAKEN;
    }
    if (!err && e->live >= e->max_procs)
        err = GN_ERGO_ERR_EXCEEDED; /* the factory's cap on live processes */
    if (err) {
        sp_answer(en, node, GNI_ENP_ANY_SPAWN, rq.parent.id, NULL, err, ref);
        return;
    }
    if (ox[6].kind == GN_EDF_ATOM)
        sp_copy(app, ox[6].u.bytes.base, ox[6].u.bytes.len);
    pid_of(&po[1], &rq.leader);
    if (rq.leader.id == 0)
        rq.leader = leader;
    rq.node = node;
    rq.factory = factory;
    rq.register_name = reg;
    rq.application = app;
    if ((ox[7].kind == GN_EDF_SLICE || ox[7].kind == GN_EDF_ARRAY) && !ox[7].nil) {
        rq.args = gn_edf_items(&ox[7]);
        rq.nargs = ox[7].cnt;
    }
    rq.mailbox_size = po[0].kind == GN_EDF_INT64 ? po[0].u.i : 0;
    int64_t prio = po[4].kind >= GN_EDF_INT8 && po[4].kind <= GN_EDF_INT ? po[4].u.i : 0;
    rq.send_priority = prio == 1 ? GN_ERGO_PRIO_HIGH : prio == 2 ? GN_ERGO_PRIO_MAX
                                                                 : GN_ERGO_PRIO_NORMAL;
    rq.important_delivery = po[5].kind == GN_EDF_BOOL && po[5].u.b;
    rq.link_parent = po[7].kind == GN_EDF_BOOL && po[7].u.b;
    rq.link_child = po[8].kind == GN_EDF_BOOL && po[8].u.b;
    rq.options = &it[1];
    gn_ergo_proc *p = NULL;
    const char *text = NULL;
    /* @e may go inside the callback (gn_ergo_spawn_disable()): only the table keeps it */
    int rc = e->fn(e->arg, en, &rq, &p, &text);
    if (rc >= 0 && (!p || gni_ergo_proc_node(p) != en)) {
        /* no process, another node's (or one ending inside a drain): refused, not freed */
        GN_LOG(GN_LOG_WARNING, SP_LOG, "%s: factory %s returned %s", node, factory,
               p ? "another node's process" : "no process");
        rc = GN_ESTATE;
        text = NULL;
    }
    if (rc < 0) { /* *@out is not looked at: the factory frees what it made */
        const char *s = text ? text : gn_strerror(rc);
        char buf[GN_ERGO_NAME_MAX + 1];
        sp_copy(buf, (const uint8_t *)s, strlen(s));
        sp_answer(en, node, GNI_ENP_ANY_SPAWN, rq.parent.id, NULL, buf, ref);
        return;
    }
    /* the process stays the application's in every case below */
    if (reg[0] && !gni_ergo_proc_holds_name(p, reg) && (rc = gn_ergo_register(p, reg)) < 0) {
        /* the factory took the name for another process, or gave @p another one */
        GN_LOG(GN_LOG_WARNING, SP_LOG, "%s: factory %s: %s not registered: %s", node, factory,
               reg, gn_err_name(rc));
        sp_answer(en, node, GNI_ENP_ANY_SPAWN, rq.parent.id, NULL, GN_ERGO_ERR_TAKEN, ref);
        return;
    }
    sp_entry *now = sp_find(sp_get(en, false), false, factory);
    if (now && !gni_ergo_proc_tag(p)) { /* counted against the cap until it ends */
        gni_ergo_proc_set_tag(p, now);
        now->live++;
    }
    gn_ergo_pid pid;
    gn_ergo_proc_pid(p, &pid);
    sp_answer(en, node, GNI_ENP_ANY_SPAWN, rq.parent.id, &pid, NULL, ref);
}

static void sp_app(gn_ergo_node *en, sp_table *t, const char *node, const gn_edf_value *it)
{
    const gn_edf_value *ref = &it[3];
    if (ref->kind != GN_EDF_REF)
        return;
    if (it[0].kind != GN_EDF_ATOM || !is_struct(&it[2], 4) ||
        !(it[1].kind >= GN_EDF_INT8 && it[1].kind <= GN_EDF_INT)) {
        sp_answer(en, node, GNI_ENP_ANY_APPLICATION_START, 0, NULL,
                  "incorrect value or argument", ref);
        return;
    }
    char name[GN_ERGO_NAME_MAX + 1];
    sp_copy(name, it[0].u.bytes.base, it[0].u.bytes.len);
    sp_entry *e;
    const char *err = sp_permit(t, true, name, node, &e);
    if (err) {
        sp_answer(en, node, GNI_ENP_ANY_APPLICATION_START, 0, NULL, err, ref);
        return;
    }
    gn_ergo_app_request rq;
    memset(&rq, 0, sizeof rq);
    rq.node = node;
    rq.name = name;
    rq.mode = it[1].u.i >= 0 && it[1].u.i <= 3 ? (gn_ergo_app_mode)it[1].u.i : GN_ERGO_APP_DEFAULT;
    pid_of(&gn_edf_items(&it[2])[1], &rq.core);
    rq.options = &it[2];
    const char *text = NULL;
    int rc = e->afn(e->arg, en, &rq, &text);
    char buf[GN_ERGO_NAME_MAX + 1] = "";
    if (rc < 0) {
        const char *s = text ? text : gn_strerror(rc);
        sp_copy(buf, (const uint8_t *)s, strlen(s));
    }
    sp_answer(en, node, GNI_ENP_ANY_APPLICATION_START, 0, NULL, rc < 0 ? buf : NULL, ref);
}

void gni_ergo_spawn_on_request(gn_ergo_node *en, const char *node, int kind,
                               const gn_edf_value *it)
{
    /* our own flags (ergo-wire.md b "Network flags"): with Enable set and the feature's
     * bit clear the request is ignored, no answer (Ergo's node does the same) */
    uint64_t own = gni_ergo_node_own_flags(en);
    uint64_t bit = kind == GNI_ENP_ANY_SPAWN ? 0x02u : 0x04u;
    if ((own & 0x01u) && !(own & bit)) {
        GN_LOG(GN_LOG_DEBUG, SP_LOG, "%s: %s ignored: our flags (0x%llx) refuse it", node,
               kind == GNI_ENP_ANY_SPAWN ? "MessageSpawn" : "MessageApplicationStart",
               (unsigned long long)own);
        return;
    }
    /* the callbacks may end the connection (gn_ergo_disconnect()): the node name and the
     * Ref, borrowed from it, are copied for the answer */
    char nm[GN_ERGO_NAME_MAX + 1], rnode[GN_ERGO_NAME_MAX + 1];
    sp_copy(nm, (const uint8_t *)node, strlen(node));
    size_t nf = kind == GNI_ENP_ANY_SPAWN ? 3 : 4;
    gn_edf_value items[4];
    memcpy(items, it, nf * sizeof *it);
    gn_edf_value *ref = &items[nf - 1];
    if (ref->kind == GN_EDF_REF) {
        uint64_t id[3];
        memcpy(id, ref->u.ref.id, sizeof id);
        sp_copy(rnode, ref->u.ref.node.base, ref->u.ref.node.len);
        gn_edf_set_ref(ref, rnode, strlen(rnode), ref->u.ref.creation, id);
    }
    sp_table *t = sp_get(en, false);
    if (kind == GNI_ENP_ANY_SPAWN)
        sp_spawn(en, t, nm, items);
    else if (kind == GNI_ENP_ANY_APPLICATION_START)
        sp_app(en, t, nm, items);
}

/* ---- requesting ---------------------------------------------------------------------------- */

static void sp_done(void *arg, int status, const gn_edf_value *reply, const char *text)
{
    sp_req *r = arg;
    sp_table *t = sp_get(r->en, false);
    for (sp_req **pp = t ? &t->reqs : NULL; pp && *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    if (r->scb) {
        gn_ergo_pid pid;
        if (status == 0 && (!reply || reply->kind != GN_EDF_PID || reply->u.pid.id == 0))
            status = GN_EPROTO;
        if (status == 0)
            pid_of(reply, &pid);
        r->scb(r->arg, status, status == 0 ? &pid : NULL, status == GN_ECALLBACK ? text : NULL);
    } else if (r->rcb) {
        r->rcb(r->arg, status, status == GN_ECALLBACK ? text : NULL);
    }
    gn_free(r);
}

/* checks @p/@node, our flags rule and max_pending; registers the pending entry (*@out) */
static int sp_begin(gn_ergo_proc *p, const char *node, const char *name, uint64_t flag,
                    gn_time timeout, sp_req **out)
{
    gn_ergo_node *en = gni_ergo_proc_node(p);
    if (!en || !sp_name_ok(node) || !sp_name_ok(name))
        return GN_EINVAL;
    const char *self = gn_ergo_node_name(en);
    if (!self[0])
        return GN_ESTATE;
    if (!strcmp(self, node))
        return GN_EINVAL;
    gn_ergo_remote_info ri;
    /* Ergo: refused locally when the peer announces Enable without the feature's bit */
    if (gn_ergo_remote_info_get(en, node, &ri) == 0 && (ri.flags & 1u) && !(ri.flags & flag))
        return GN_ENOTSUP;
    sp_table *t = sp_get(en, true);
    if (!t)
        return GN_ENOMEM;
    if (t->closing)
        return GN_ESTATE;
    sp_req *r = gn_calloc(1, sizeof *r);
    if (!r)
        return GN_ENOMEM;
    r->en = en;
    r->proc = p;
    int rc = gni_ergo_node_ctl_pend(p, node, timeout, sp_done, r, r->ref);
    if (rc < 0) {
        gn_free(r);
        return rc;
    }
    r->next = t->reqs;
    t->reqs = r;
    *out = r;
    return 0;
}

/* a request whose frame did not go out (@rc): no callback, @rc returned; unless the
 * request ended during the send (the connection went down: sp_done ran, the callback
 * has the outcome and freed @r), then 0: the callback follows exactly once */
static int sp_abort(gn_ergo_node *en, sp_req *r, int rc)
{
    if (!gni_ergo_node_ctl_cancel(en, r->ref))
        return 0;
    sp_table *t = sp_get(en, false);
    for (sp_req **pp = t ? &t->reqs : NULL; pp && *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    gn_free(r);
    return rc;
}

int gn_ergo_remote_spawn(gn_ergo_proc *p, const char *node, const char *factory,
                         const gn_ergo_spawn_opts *o, gn_ergo_spawn_cb cb, void *arg)
{
    gn_ergo_spawn_opts dflt = {0};
    if (!o)
        o = &dflt;
    if (!cb || (o->nargs && !o->args) || o->nargs > GN_ERGO_SPAWN_ARGS_MAX ||
        (o->register_name && o->register_name[0] && !sp_name_ok(o->register_name)))
        return GN_EINVAL;
    gn_ergo_node *en = gni_ergo_proc_node(p);
    const gn_edf_type *ty = en ? sp_type(en, GN_EDF_ERGO_MESSAGE_SPAWN) : NULL;
    if (en && !ty)
        return GN_ESTATE;
    sp_req *r = NULL;
    int rc = sp_begin(p, node, factory, 0x02u /* EnableRemoteSpawn */, o->timeout, &r);
    if (rc < 0)
        return rc;
    r->scb = cb;
    r->arg = arg;
    gn_edf_arena *a = sp_arena();
    gn_edf_value v;
    rc = a ? sp_zero(&v, a, ty, 0) : GN_ENOMEM;
    if (rc == 0) {
        gn_edf_value *it = gn_edf_items(&v), *ox = gn_edf_items(&it[1]);
        gn_edf_value *po = gn_edf_items(&ox[0]);
        const char *self = gn_ergo_node_name(en);
        int64_t cr = gn_ergo_node_creation(en);
        gn_ergo_pid me;
        gn_ergo_proc_pid(p, &me);
        gn_edf_set_atom(&it[0], factory, strlen(factory));
        sp_set_int(&po[0], o->mailbox_size);
        gn_edf_set_pid(&ox[1], self, strlen(self), me.id, cr);
        /* ParentLeader: our node's core (ID 1), as a process spawned by the node has */
        gn_edf_set_pid(&ox[2], self, strlen(self), 1, cr);
        sp_set_int(&ox[4], 1); /* ParentLogLevel: gen.LogLevelInfo, the default */
        if (o->register_name)
            gn_edf_set_atom(&ox[5], o->register_name, strlen(o->register_name));
        if (o->nargs) {
            const gn_edf_type *at = ty->fields[1].type->fields[7].type;
            rc = gn_edf_set_composite(&ox[7], a, at, (uint32_t)o->nargs);
            for (size_t i = 0; rc == 0 && i < o->nargs; i++)
                gn_edf_items(&ox[7])[i] = o->args[i];
        }
        gn_edf_set_ref(&it[2], self, strlen(self), cr, r->ref);
        if (rc == 0) /* order 0: Ergo writes the zero PID's ID */
            rc = gni_ergo_node_any_send(en, node, me.id, 0, &v, false);
    }
    gn_edf_arena_free(a);
    return rc < 0 ? sp_abort(en, r, rc) : 0;
}

int gn_ergo_remote_app_start(gn_ergo_proc *p, const char *node, const char *app,
                             gn_ergo_app_mode mode, gn_time timeout, gn_ergo_result_cb cb,
                             void *arg)
{
    if ((unsigned)mode > GN_ERGO_APP_PERMANENT)
        return GN_EINVAL;
    gn_ergo_node *en = gni_ergo_proc_node(p);
    const gn_edf_type *ty = en ? sp_type(en, GN_EDF_ERGO_MESSAGE_APPLICATION_START) : NULL;
    if (en && !ty)
        return GN_ESTATE;
    sp_req *r = NULL;
    int rc = sp_begin(p, node, app, 0x04u /* EnableRemoteApplicationStart */, timeout, &r);
    if (rc < 0)
        return rc;
    r->rcb = cb;
    r->arg = arg;
    gn_edf_arena *a = sp_arena();
    gn_edf_value v;
    rc = a ? sp_zero(&v, a, ty, 0) : GN_ENOMEM;
    if (rc == 0) {
        gn_edf_value *it = gn_edf_items(&v), *ox = gn_edf_items(&it[2]);
        const char *self = gn_ergo_node_name(en);
        int64_t cr = gn_ergo_node_creation(en);
        gn_ergo_pid me;
        gn_ergo_proc_pid(p, &me);
        gn_edf_set_atom(&it[0], app, strlen(app));
        sp_set_int(&it[1], (int64_t)mode);
        gn_edf_set_pid(&ox[1], self, strlen(self), me.id, cr); /* CorePID: the requester */
        sp_set_int(&ox[3], 1); /* CoreLogLevel: gen.LogLevelInfo */
        gn_edf_set_ref(&it[3], self, strlen(self), cr, r->ref);
        rc = gni_ergo_node_any_send(en, node, me.id, 0, &v, false);
    }
    gn_edf_arena_free(a);
    return rc < 0 ? sp_abort(en, r, rc) : 0;
}
