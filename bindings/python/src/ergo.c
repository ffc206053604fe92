/*
 * golemnet Python bindings - golemnet._golemnet.ErgoNode: an Ergo node
 * (golemnet/ergo.h) on a Node, reached from the consumer (Python) thread.
 *
 * Thread rules (as bridge.h): every gn_ergo_* call runs on the node's loop
 * thread, posted with gn_loop_submit() as one command; outcomes and
 * received messages come back as notes on a mutex-protected list whose
 * wakeup fd (eventfd) asyncio watches. The loop thread never waits for the
 * consumer and never touches Python objects.
 *
 * Values cross the threads as EDF bytes encoded without dictionaries
 * (registered types and atoms by name): the consumer converts Python
 * objects to gn_edf_value and encodes them, the loop decodes them with the
 * node's frozen registry (readable from any thread once frozen) and sends;
 * a received message is encoded again on the loop and decoded to Python
 * objects on the consumer side.
 *
 * Backpressure: each process has a Python-side queue bound (qlimit). A
 * message counts as in flight from its note until the consumer says it took
 * it (resume()); at qlimit the loop pauses the C process (its mailbox then
 * fills up to mailbox_size and refuses, as ergo.h says), and the consumer
 * posts the unpause once half the queue drained.
 *
 * Registered types: (name, [(field, spec)]) lists given before the node
 * starts; the loop registers them in the component's registry from the
 * gn_ergo_config.types hook. spec: a basic kind name ("int32", "string",
 * "atom", "pid", "any", ...), "[]T", "[N]T", "map[K]V" or "#name" of a
 * type registered before.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "golemnet/ergo.h"
#include "golemnet/golemnet.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "ergo_py.h"

/* ------------------------------------------------------------------------
 * Bridge (shared by the consumer and the loop thread)
 */

enum {
    EN_MSG = 1,    /* token = the process's spawn token; from, ref, flags, bytes */
    EN_RESULT = 2, /* token, status, text (important sends, register, detach, ...) */
    EN_REPLY = 3,  /* token, status, bytes or text (calls) */
    EN_SPAWN = 4,  /* token, status, pid */
    EN_INFO = 5,   /* token, status, info */
    EN_ALIAS = 6,  /* token, status, ref */
    EN_STREAM = 7, /* token = an enable's stream, bytes: a served spawn / app start (end of file) */
};

typedef struct en_note {
    struct en_note *next;
    int kind;
    int status;
    uint64_t token;
    gn_ergo_pid pid;
    gn_ergo_ref ref;
    bool call, important;
    int priority, to_kind;
    uint8_t *bytes;
    size_t len;
    char *text;
    gn_ergo_remote_info info;
    gn_ergo_compression comp; /* EN_COMPRESSION */
} en_note;

typedef struct epy_bridge {
    atomic_int refs;
    pthread_mutex_t mu;
    en_note *head, **tail;
    int fd;
    bool signalled;
    gn_node *node;
    gn_loop *loop;
    /* loop side */
    gn_ergo_node *en;
    struct epy_wait *waits; /* outstanding result callbacks */
    struct epy_proc *procs; /* spawned processes (freed by OP_FREE or OP_DETACH) */
    /* set before start, read by the types hook on the loop */
    struct epy_type *types;
    size_t ntypes;
    const gn_edf_registry *reg; /* set by the types hook (frozen right after) */
    struct epy_enable *enables; /* loop side: remote spawn / app start (end of file) */
    uint64_t spawn_seq;         /* loop side: ids of processes remote nodes spawned */
} epy_bridge;

/* a factory or application enabled for remote nodes: its notes go to @stream */
typedef struct epy_enable {
    struct epy_enable *next;
    epy_bridge *b;
    bool app;
    char name[GN_ERGO_NAME_MAX + 1];
    uint64_t stream;
    int qlimit;
} epy_enable;

typedef struct epy_field {
    char *name;
    char *spec;
} epy_field;

typedef struct epy_type {
    char *name;
    epy_field *fields;
    size_t nfields;
} epy_type;

typedef struct epy_proc {
    struct epy_proc *next, **prev; /* loop side: the bridge's list */
    epy_bridge *b;
    gn_ergo_proc *p; /* loop side */
    uint64_t id;     /* the consumer's name of the process (its spawn token), in message notes */
    atomic_int inflight;
    atomic_int paused; /* 0 running, 1 paused by the loop, 2 unpause posted */
    int qlimit;
} epy_proc;

typedef struct epy_wait {
    struct epy_wait *next, **prev;
    epy_bridge *b;
    epy_proc *ep;
    uint64_t token;
} epy_wait;

static void proc_unlink(epy_proc *ep)
{
    if (ep->prev) {
        *ep->prev = ep->next;
        if (ep->next)
            ep->next->prev = ep->prev;
        ep->prev = NULL;
    }
}

static void bridge_rele(epy_bridge *b)
{
    if (atomic_fetch_sub(&b->refs, 1) != 1)
        return;
    for (en_note *n = b->head; n;) {
        en_note *nx = n->next;
        free(n->bytes);
        free(n->text);
        free(n);
        n = nx;
    }
    for (size_t i = 0; i < b->ntypes; i++) {
        for (size_t j = 0; j < b->types[i].nfields; j++) {
            free(b->types[i].fields[j].name);
            free(b->types[i].fields[j].spec);
        }
        free(b->types[i].fields);
        free(b->types[i].name);
    }
    free(b->types);
    while (b->enables) { /* bounded: GN_ERGO_ENABLED_MAX */
        epy_enable *e = b->enables;
        b->enables = e->next;
        free(e);
    }
    if (b->fd >= 0)
        close(b->fd);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

static void note_push(epy_bridge *b, en_note *n)
{
    n->next = NULL;
    pthread_mutex_lock(&b->mu);
    *b->tail = n;
    b->tail = &n->next;
    if (!b->signalled) {
        b->signalled = true;
        uint64_t one = 1;
        ssize_t w = write(b->fd, &one, sizeof one);
        (void)w;
    }
    pthread_mutex_unlock(&b->mu);
}

static en_note *note_new(int kind, int status, uint64_t token)
{
    en_note *n = calloc(1, sizeof *n);
    if (n) {
        n->kind = kind;
        n->status = status;
        n->token = token;
    }
    return n;
}

static void note_result(epy_bridge *b, int kind, int status, uint64_t token, const char *text)
{
    en_note *n = note_new(kind, status, token);
    if (!n)
        return; /* the consumer's timeout ends the wait */
    if (text)
        n->text = strdup(text);
    note_push(b, n);
}

/* ------------------------------------------------------------------------
 * Loop side
 */

static const gn_edf_type *spec_parse(gn_edf_registry *reg, gn_edf_arena *a, const char **sp)
{
    const char *s = *sp;
    if (s[0] == '[' && s[1] == ']') {
        *sp = s + 2;
        const gn_edf_type *e = spec_parse(reg, a, sp);
        return e ? gn_edf_type_slice(a, e) : NULL;
    }
    if (s[0] == '[') {
        char *end;
        unsigned long n = strtoul(s + 1, &end, 10);
        if (*end != ']' || n > UINT32_MAX)
            return NULL;
        *sp = end + 1;
        const gn_edf_type *e = spec_parse(reg, a, sp);
        return e ? gn_edf_type_array(a, (uint32_t)n, e) : NULL;
    }
    if (strncmp(s, "map[", 4) == 0) {
        *sp = s + 4;
        const gn_edf_type *k = spec_parse(reg, a, sp);
        if (!k || **sp != ']')
            return NULL;
        (*sp)++;
        const gn_edf_type *v = spec_parse(reg, a, sp);
        return v ? gn_edf_type_map(a, k, v) : NULL;
    }
    size_t len = strcspn(s, "]");
    *sp = s + len;
    if (s[0] == '#')
        return gn_edf_registry_find(reg, s, len);
    for (int k = GN_EDF_ATOM; k <= GN_EDF_ANY; k++) {
        const char *nm = gn_edf_kind_name((gn_edf_kind)k);
        if (strlen(nm) == len && memcmp(nm, s, len) == 0)
            return gn_edf_type_basic((gn_edf_kind)k);
    }
    return NULL;
}

static int types_hook(void *arg, gn_edf_registry *reg)
{
    epy_bridge *b = arg;
    int rc = 0;
    gn_edf_arena *a = gn_edf_arena_new(0, 0);
    if (!a)
        return GN_ENOMEM;
    for (size_t i = 0; i < b->ntypes && rc == 0; i++) {
        epy_type *t = &b->types[i];
        gn_edf_field *f = calloc(t->nfields ? t->nfields : 1, sizeof *f);
        if (!f) {
            rc = GN_ENOMEM;
            break;
        }
        for (size_t j = 0; j < t->nfields; j++) {
            const char *sp = t->fields[j].spec;
            f[j].name = t->fields[j].name;
            f[j].type = spec_parse(reg, a, &sp);
            if (!f[j].type || *sp) {
                rc = GN_EINVAL;
                break;
            }
        }
        if (rc == 0)
            rc = gn_edf_register_struct(reg, t->name, f, t->nfields, NULL);
        free(f);
    }
    gn_edf_arena_free(a);
    b->reg = reg;
    return rc;
}

static uint8_t *encode_value(const gn_edf_value *v, size_t *len)
{
    size_t n;
    if (gn_edf_encoded_len(NULL, v, &n) < 0)
        return NULL;
    uint8_t *mem = malloc(n ? n : 1);
    if (!mem)
        return NULL;
    gn_buf out;
    gn_buf_init(&out, mem, n);
    if (gn_edf_encode(NULL, v, &out) < 0) {
        free(mem);
        return NULL;
    }
    *len = n;
    return mem;
}

static void on_msg(gn_ergo_proc *p, void *arg, const gn_ergo_msg *m)
{
    epy_proc *ep = arg;
    en_note *n = note_new(EN_MSG, 0, ep->id);
    if (!n)
        return;
    n->bytes = encode_value(m->value, &n->len);
    if (!n->bytes) {
        free(n);
        return; /* a value we cannot carry is dropped, as an undecodable payload */
    }
    n->pid = m->from;
    n->ref = m->ref;
    n->call = m->call;
    n->important = m->important;
    n->priority = (int)m->priority;
    n->to_kind = (int)m->to_kind;
    /* pause first, so the consumer cannot take the note before the flag is set */
    if (atomic_fetch_add(&ep->inflight, 1) + 1 >= ep->qlimit &&
        atomic_load(&ep->paused) == 0) {
        atomic_store(&ep->paused, 1);
        gn_ergo_proc_pause(p, true);
    }
    note_push(ep->b, n);
}

static epy_wait *wait_new(epy_bridge *b, epy_proc *ep, uint64_t token)
{
    epy_wait *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->b = b;
    w->ep = ep;
    w->token = token;
    w->next = b->waits;
    if (w->next)
        w->next->prev = &w->next;
    w->prev = &b->waits;
    b->waits = w;
    return w;
}

static void wait_free(epy_wait *w)
{
    *w->prev = w->next;
    if (w->next)
        w->next->prev = w->prev;
    free(w);
}

static void on_result(void *arg, int status, const char *err_text)
{
    epy_wait *w = arg;
    note_result(w->b, EN_RESULT, status, w->token, err_text);
    wait_free(w);
}

static void on_reply(void *arg, int status, const gn_edf_value *reply, const char *err_text)
{
    epy_wait *w = arg;
    en_note *n = note_new(EN_REPLY, status, w->token);
    if (n) {
        if (status == 0 && reply) {
            n->bytes = encode_value(reply, &n->len);
            if (!n->bytes)
                n->status = GN_ENOMEM;
        }
        if (err_text)
            n->text = strdup(err_text);
        note_push(w->b, n);
    }
    wait_free(w);
}

/* the waits of a process end (no callback follows once it is freed) */
static void waits_end(epy_bridge *b, epy_proc *ep, int status)
{
    for (epy_wait *w = b->waits, *nx; w; w = nx) { /* bounded: outstanding waits */
        nx = w->next;
        if (ep && w->ep != ep)
            continue;
        note_result(b, EN_RESULT, status, w->token, NULL);
        wait_free(w);
    }
}

enum {
    OP_DETACH = 1, OP_SPAWN, OP_FREE, OP_UNPAUSE, OP_REGISTER, OP_UNREGISTER, OP_ALIAS_NEW,
    OP_ALIAS_DELETE, OP_SEND, OP_CALL, OP_REPLY, OP_REPLY_ERROR, OP_INFO, OP_CONNECT,
    OP_CONNECT_PEER, OP_DISCONNECT
};

/* per-process compression (golemnet/ergo.h gn_ergo_proc_set_compression()): the settings
 * travel in the command's po.compression; a get answers with an EN_COMPRESSION note */
enum { OP_SET_COMPRESSION = 120, OP_GET_COMPRESSION };
enum { EN_COMPRESSION = 21 };

typedef struct epy_cmd {
    int op;
    epy_bridge *b;
    epy_proc *ep;
    uint64_t token;
    gn_ergo_target to;
    gn_ergo_pid pid;
    gn_ergo_ref ref;
    uint8_t *bytes;
    size_t len;
    char text[GN_EDF_ERROR_MAX + 1];
    gn_ergo_send_opts so;
    gn_ergo_proc_opts po;
    gn_peer_id peer;
} epy_cmd;

static int cmd_value(epy_cmd *c, gn_edf_arena **a, gn_edf_value *v)
{
    const gn_edf_registry *reg = gn_ergo_registry(c->b->en);
    if (!reg)
        return GN_ESTATE;
    *a = gn_edf_arena_new(c->len + 256, 0);
    if (!*a)
        return GN_ENOMEM;
    gn_edf_decode_opts o;
    gn_edf_decode_opts_default(&o);
    o.reg = reg;
    return gn_edf_decode(&o, *a, c->bytes, c->len, v, NULL, NULL);
}

/* ---- links, monitors, exit signals, events (issue 15; golemnet/ergo.h "links") ----
 * A signal becomes an EN_SIGNAL note: token = the process's spawn token, priority = the
 * signal kind, important = direct, bytes = the target as an EDF value (PID, ProcessID,
 * Alias or Event), text = the reason. It counts against the process's qlimit like a
 * message (the C process pauses signals and messages alike). */
enum { EN_SIGNAL = 20 };

enum {
    OP_LINK = 100, OP_UNLINK, OP_MONITOR, OP_DEMONITOR, OP_SEND_EXIT, OP_PROC_EXIT,
    OP_EVENT_REGISTER, OP_EVENT_UNREGISTER, OP_EVENT_PUBLISH
};

#define EPY_ANSWERED 1 /* sig_cmd: a callback or note answers, not run_cmd */

static void on_signal(gn_ergo_proc *p, void *arg, const gn_ergo_signal *s)
{
    epy_proc *ep = arg;
    gn_edf_value v;
    const gn_ergo_target *t = &s->target;
    switch (t->kind) {
    case GN_ERGO_TO_PID:
        gn_edf_set_pid(&v, t->pid.node, strlen(t->pid.node), t->pid.id, t->pid.creation);
        break;
    case GN_ERGO_TO_NAME:
        gn_edf_set_processid(&v, t->node, strlen(t->node), t->name, strlen(t->name));
        break;
    case GN_ERGO_TO_ALIAS:
        gn_edf_set_alias(&v, t->alias.node, strlen(t->alias.node), t->alias.creation,
                         t->alias.id);
        break;
    case GN_ERGO_TO_EVENT:
        gn_edf_set_event(&v, t->node, strlen(t->node), t->name, strlen(t->name));
        break;
    default:
        return;
    }
    en_note *n = note_new(EN_SIGNAL, 0, ep->id);
    if (!n)
        return;
    n->bytes = encode_value(&v, &n->len);
    n->text = strdup(s->reason ? s->reason : "");
    if (!n->bytes || !n->text) {
        free(n->bytes);
        free(n->text);
        free(n);
        return;
    }
    n->priority = (int)s->kind;
    n->important = s->direct;
    if (atomic_fetch_add(&ep->inflight, 1) + 1 >= ep->qlimit &&
        atomic_load(&ep->paused) == 0) {
        atomic_store(&ep->paused, 1);
        gn_ergo_proc_pause(p, true);
    }
    note_push(ep->b, n);
}

static const char *target_node(const gn_ergo_target *t)
{
    return t->kind == GN_ERGO_TO_PID ? t->pid.node
         : t->kind == GN_ERGO_TO_ALIAS ? t->alias.node : t->node;
}

/* runs one of the ops above; returns EPY_ANSWERED when a note follows from elsewhere */
static int run_sig_cmd(epy_cmd *c)
{
    epy_bridge *b = c->b;
    gn_ergo_proc *p = c->ep->p;
    int rc;
    if (!p)
        return GN_ECLOSED;
    switch (c->op) {
    case OP_LINK:
    case OP_MONITOR: {
        epy_wait *w = wait_new(b, c->ep, c->token);
        if (!w)
            return GN_ENOMEM;
        rc = c->op == OP_LINK ? gn_ergo_link(p, &c->to, on_result, w)
                              : gn_ergo_monitor(p, &c->to, on_result, w);
        /* a remote target answers through on_result; a local one by the return value */
        if (rc < 0 || strcmp(gn_ergo_node_name(b->en), target_node(&c->to)) == 0) {
            wait_free(w);
            return rc;
        }
        return EPY_ANSWERED;
    }
    case OP_UNLINK:
        return gn_ergo_unlink(p, &c->to);
    case OP_DEMONITOR:
        return gn_ergo_demonitor(p, &c->to);
    case OP_SEND_EXIT:
        return gn_ergo_send_exit(p, &c->pid, c->text);
    case OP_PROC_EXIT:
        waits_end(b, c->ep, GN_ECLOSED);
        rc = gn_ergo_proc_exit(p, c->text); /* the reason was checked by the consumer */
        if (rc == 0) {
            proc_unlink(c->ep);
            free(c->ep);
            c->ep = NULL;
        }
        return rc;
    case OP_EVENT_REGISTER:
        return gn_ergo_event_register(p, c->text);
    case OP_EVENT_UNREGISTER:
        return gn_ergo_event_unregister(p, c->text);
    case OP_EVENT_PUBLISH: {
        gn_edf_arena *a = NULL;
        gn_edf_value v;
        rc = cmd_value(c, &a, &v);
        if (rc == 0)
            rc = gn_ergo_event_publish(p, c->text, &v);
        gn_edf_arena_free(a);
        return rc; /* >= 0: subscribers reached */
    }
    default:
        return GN_EINVAL;
    }
}

static void run_cmd(gn_loop *loop, void *arg)
{
    (void)loop;
    epy_cmd *c = arg;
    epy_bridge *b = c->b;
    gn_ergo_node *en = b->en;
    gn_edf_arena *a = NULL;
    gn_edf_value v;
    int rc = 0;
    if (!en) {
        /* detached: the processes went with it (the consumer stops using its handles
         * before the detach; a handle of a failed spawn may leak here) */
        rc = GN_ECLOSED;
        goto out;
    }
    switch (c->op) {
    case OP_DETACH:
        /* frees the C processes; remote spawn / app start waits end inside (GN_ECLOSED,
         * their callbacks free them), the other waits below */
        gn_ergo_detach(en);
        b->en = NULL;
        waits_end(b, NULL, GN_ECLOSED);
        while (b->procs) { /* bounded: the processes */
            epy_proc *ep = b->procs;
            proc_unlink(ep);
            free(ep);
        }
        atomic_fetch_sub(&b->refs, 1); /* the loop side's reference (never the last: c holds one) */
        break;
    case OP_SPAWN: {
        rc = gn_ergo_spawn(en, &c->po, on_msg, c->ep, &c->ep->p);
        en_note *n = note_new(EN_SPAWN, rc, c->token);
        if (n) {
            if (rc == 0) {
                gn_ergo_proc_pid(c->ep->p, &n->pid);
                n->ref.creation = gn_ergo_node_creation(en);
            }
            note_push(b, n);
        }
        if (rc < 0) {
            c->ep->p = NULL;
        } else {
            gn_ergo_proc_set_signal_cb(c->ep->p, on_signal, c->ep); /* signals as notes */
            c->ep->next = b->procs;
            if (c->ep->next)
                c->ep->next->prev = &c->ep->next;
            c->ep->prev = &b->procs;
            b->procs = c->ep;
        }
        goto done;
    }
    case OP_FREE:
        if (c->ep->p) {
            gn_ergo_proc_free(c->ep->p); /* spawn / app start waits end inside (GN_ECLOSED) */
            c->ep->p = NULL;
            waits_end(b, c->ep, GN_ECLOSED);
        }
        proc_unlink(c->ep);
        free(c->ep);
        c->ep = NULL;
        break;
    case OP_UNPAUSE:
        if (c->ep->p) {
            atomic_store(&c->ep->paused, 0);
            gn_ergo_proc_pause(c->ep->p, false);
        }
        goto done;
    case OP_REGISTER:
        rc = c->ep->p ? gn_ergo_register(c->ep->p, c->text) : GN_ECLOSED;
        break;
    case OP_UNREGISTER:
        rc = c->ep->p ? gn_ergo_unregister(c->ep->p) : GN_ECLOSED;
        break;
    case OP_ALIAS_NEW: {
        gn_ergo_alias al;
        memset(&al, 0, sizeof al);
        rc = c->ep->p ? gn_ergo_alias_new(c->ep->p, &al) : GN_ECLOSED;
        en_note *n = note_new(EN_ALIAS, rc, c->token);
        if (n) {
            n->ref = al;
            note_push(b, n);
        }
        goto done;
    }
    case OP_ALIAS_DELETE:
        rc = c->ep->p ? gn_ergo_alias_delete(c->ep->p, &c->ref) : GN_ECLOSED;
        break;
    case OP_SEND:
    case OP_CALL:
    case OP_REPLY: {
        if (!c->ep->p) {
            rc = GN_ECLOSED;
            break;
        }
        rc = cmd_value(c, &a, &v);
        if (rc < 0)
            break;
        if (c->op == OP_REPLY) {
            rc = gn_ergo_reply(c->ep->p, &c->pid, &c->ref, &v);
            break;
        }
        epy_wait *w = wait_new(b, c->ep, c->token);
        if (!w) {
            rc = GN_ENOMEM;
            break;
        }
        if (c->op == OP_SEND) {
            bool remote_important = c->so.important;
            c->so.on_result = on_result;
            c->so.arg = w;
            rc = gn_ergo_send(c->ep->p, &c->to, &v, &c->so);
            /* a result note follows only for a remote important send */
            if (rc < 0 || !remote_important || strcmp(gn_ergo_node_name(en),
                c->to.kind == GN_ERGO_TO_PID ? c->to.pid.node
                : c->to.kind == GN_ERGO_TO_NAME ? c->to.node : c->to.alias.node) == 0) {
                wait_free(w);
                break;
            }
            goto done; /* on_result answers */
        }
        rc = gn_ergo_call(c->ep->p, &c->to, &v, &c->so, on_reply, w, NULL);
        if (rc < 0) {
            wait_free(w);
            break;
        }
        goto done; /* on_reply answers (perhaps already did, for a local callee) */
    }
    case OP_SET_COMPRESSION:
        rc = c->ep->p ? gn_ergo_proc_set_compression(c->ep->p, &c->po.compression) : GN_ECLOSED;
        break;
    case OP_GET_COMPRESSION: {
        en_note *n = note_new(EN_COMPRESSION, c->ep->p ? 0 : GN_ECLOSED, c->token);
        if (n) {
            if (c->ep->p)
                gn_ergo_proc_compression(c->ep->p, &n->comp);
            note_push(b, n);
        }
        goto done;
    }
    case OP_REPLY_ERROR:
        rc = c->ep->p ? gn_ergo_reply_error(c->ep->p, &c->pid, &c->ref, c->text) : GN_ECLOSED;
        break;
    case OP_INFO: {
        en_note *n = note_new(EN_INFO, 0, c->token);
        if (n) {
            n->status = gn_ergo_remote_info_get(en, c->text, &n->info);
            note_push(b, n);
        }
        goto done;
    }
    case OP_CONNECT:
        rc = gn_ergo_connect(en, c->text);
        break;
    case OP_CONNECT_PEER:
        rc = gn_ergo_connect_peer(en, &c->peer, c->text[0] ? c->text : NULL);
        break;
    case OP_DISCONNECT:
        rc = gn_ergo_disconnect(en, c->text);
        break;
    /* links, monitors, exit signals, events */
    case OP_LINK: case OP_UNLINK: case OP_MONITOR: case OP_DEMONITOR: case OP_SEND_EXIT:
    case OP_PROC_EXIT: case OP_EVENT_REGISTER: case OP_EVENT_UNREGISTER: case OP_EVENT_PUBLISH:
        rc = run_sig_cmd(c);
        if (rc == EPY_ANSWERED && (c->op == OP_LINK || c->op == OP_MONITOR))
            goto done;
        break;
    default:
        rc = GN_EINVAL;
    }
out:
    note_result(b, c->op == OP_CALL ? EN_REPLY : EN_RESULT, rc, c->token, NULL);
done:
    gn_edf_arena_free(a);
    free(c->bytes);
    bridge_rele(b);
    free(c);
}

/* ------------------------------------------------------------------------
 * Consumer side: the Python type
 */

typedef struct {
    PyObject_HEAD
    epy_bridge *b;
    PyObject *classes;     /* dict: type name -> class */
    PyObject *class_names; /* dict: class -> type name */
    PyObject *atom_type, *pid_type, *processid_type, *alias_type, *ref_type, *event_type,
        *error_type;
    PyObject *datetime_mod;
} ErgoObject;

static PyObject *(*raise_code)(int);

static int submit(ErgoObject *self, epy_cmd *c)
{
    if (!self->b || !self->b->en) {
        free(c->bytes);
        free(c);
        raise_code(GN_ECLOSED);
        return -1;
    }
    c->b = self->b;
    atomic_fetch_add(&self->b->refs, 1);
    int rc = gn_loop_submit(self->b->loop, run_cmd, c);
    if (rc < 0) {
        atomic_fetch_sub(&self->b->refs, 1);
        free(c->bytes);
        free(c);
        raise_code(rc);
        return -1;
    }
    return 0;
}

static epy_cmd *cmd_new(int op, uint64_t token, PyObject *handle)
{
    epy_cmd *c = calloc(1, sizeof *c);
    if (!c) {
        PyErr_NoMemory();
        return NULL;
    }
    c->op = op;
    c->token = token;
    if (handle) {
        c->ep = PyLong_AsVoidPtr(handle);
        if (!c->ep) {
            free(c);
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "bad process handle");
            return NULL;
        }
    }
    return c;
}

/* ---- Python -> EDF ---- */

static int py2edf(ErgoObject *self, PyObject *o, const gn_edf_type *t, gn_edf_arena *a,
                  gn_edf_value *v, int depth);

static int set_bytes_from(PyObject *o, gn_edf_arena *a, const char **p, size_t *len,
                          bool want_text)
{
    if (want_text) {
        Py_ssize_t n;
        const char *s = PyUnicode_AsUTF8AndSize(o, &n);
        if (!s)
            return -1;
        *p = s; /* owned by o, which outlives the encode */
        *len = (size_t)n;
        return 0;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(o, &view, PyBUF_SIMPLE) < 0)
        return -1;
    char *mem = gn_edf_arena_alloc(a, view.len ? (size_t)view.len : 1);
    if (!mem) {
        PyBuffer_Release(&view);
        PyErr_NoMemory();
        return -1;
    }
    memcpy(mem, view.buf, (size_t)view.len);
    *p = mem;
    *len = (size_t)view.len;
    PyBuffer_Release(&view);
    return 0;
}

static int attr_str(PyObject *o, const char *name, const char **s, size_t *len)
{
    PyObject *x = PyObject_GetAttrString(o, name);
    if (!x)
        return -1;
    Py_ssize_t n;
    *s = PyUnicode_AsUTF8AndSize(x, &n);
    Py_DECREF(x); /* the dataclass keeps the str alive */
    if (!*s)
        return -1;
    *len = (size_t)n;
    return 0;
}

static int attr_i64(PyObject *o, const char *name, long long *out, bool unsig)
{
    PyObject *x = PyObject_GetAttrString(o, name);
    if (!x)
        return -1;
    if (unsig)
        *out = (long long)PyLong_AsUnsignedLongLong(x);
    else
        *out = PyLong_AsLongLong(x);
    Py_DECREF(x);
    return PyErr_Occurred() ? -1 : 0;
}

static int ids3(PyObject *o, uint64_t id[3])
{
    PyObject *x = PyObject_GetAttrString(o, "ids");
    if (!x)
        return -1;
    PyObject *seq = PySequence_Fast(x, "ids: want 3 integers");
    Py_DECREF(x);
    if (!seq)
        return -1;
    if (PySequence_Fast_GET_SIZE(seq) != 3) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "ids: want 3 integers");
        return -1;
    }
    for (int i = 0; i < 3; i++) {
        id[i] = PyLong_AsUnsignedLongLong(PySequence_Fast_GET_ITEM(seq, i));
    }
    Py_DECREF(seq);
    return PyErr_Occurred() ? -1 : 0;
}

static int py2edf_ergo(ErgoObject *self, PyObject *o, gn_edf_value *v, int *handled)
{
    const char *node, *name;
    size_t nl, ml;
    long long id, cr;
    *handled = 1;
    if (PyObject_IsInstance(o, self->pid_type) == 1) {
        if (attr_str(o, "node", &node, &nl) < 0 || attr_i64(o, "id", &id, true) < 0 ||
            attr_i64(o, "creation", &cr, false) < 0)
            return -1;
        gn_edf_set_pid(v, node, nl, (uint64_t)id, cr);
        return 0;
    }
    bool ev = PyObject_IsInstance(o, self->event_type) == 1;
    if (ev || PyObject_IsInstance(o, self->processid_type) == 1) {
        if (attr_str(o, "node", &node, &nl) < 0 || attr_str(o, "name", &name, &ml) < 0)
            return -1;
        if (ev)
            gn_edf_set_event(v, node, nl, name, ml);
        else
            gn_edf_set_processid(v, node, nl, name, ml);
        return 0;
    }
    bool al = PyObject_IsInstance(o, self->alias_type) == 1;
    if (al || PyObject_IsInstance(o, self->ref_type) == 1) {
        uint64_t ids[3];
        if (attr_str(o, "node", &node, &nl) < 0 || attr_i64(o, "creation", &cr, false) < 0 ||
            ids3(o, ids) < 0)
            return -1;
        if (al)
            gn_edf_set_alias(v, node, nl, cr, ids);
        else
            gn_edf_set_ref(v, node, nl, cr, ids);
        return 0;
    }
    *handled = 0;
    return 0;
}

static int py2edf_time(ErgoObject *self, PyObject *o, gn_edf_value *v)
{
    /* aware or naive (taken as UTC) datetime -> Go time.Time in UTC */
    PyObject *ts = PyObject_CallMethod(o, "timestamp", NULL);
    if (!ts)
        return -1;
    PyObject *us = PyObject_GetAttrString(o, "microsecond");
    double f = PyFloat_AsDouble(ts);
    long micro = us ? PyLong_AsLong(us) : 0;
    Py_DECREF(ts);
    Py_XDECREF(us);
    if (PyErr_Occurred())
        return -1;
    (void)self;
    gn_edf_time t = {0};
    long long sec = (long long)f;
    if ((double)sec > f)
        sec--;
    t.sec = sec + GN_EDF_TIME_UNIX_OFFSET;
    t.nsec = (int32_t)(micro * 1000);
    t.offset_min = -1;
    t.version = 1;
    gn_edf_set_time(v, &t);
    return 0;
}

static const gn_edf_type *any_slice, *any_map, *str_any_map;

static int py2edf_dynamic(ErgoObject *self, PyObject *o, gn_edf_arena *a, gn_edf_value *v,
                          int depth)
{
    const char *s;
    size_t len;
    int handled;
    if (o == Py_None) {
        gn_edf_set_nil(v);
        return 0;
    }
    if (PyBool_Check(o)) {
        gn_edf_set_bool(v, o == Py_True);
        return 0;
    }
    if (PyLong_Check(o)) {
        int ovf;
        long long x = PyLong_AsLongLongAndOverflow(o, &ovf);
        if (ovf == 0) {
            if (x == -1 && PyErr_Occurred())
                return -1;
            gn_edf_set_int(v, GN_EDF_INT, x);
            return 0;
        }
        unsigned long long u = PyLong_AsUnsignedLongLong(o);
        if (PyErr_Occurred())
            return -1;
        gn_edf_set_uint(v, GN_EDF_UINT64, u);
        return 0;
    }
    if (PyFloat_Check(o)) {
        gn_edf_set_float64(v, PyFloat_AsDouble(o));
        return 0;
    }
    if (PyObject_IsInstance(o, self->atom_type) == 1) {
        if (set_bytes_from(o, a, &s, &len, true) < 0)
            return -1;
        gn_edf_set_atom(v, s, len);
        return 0;
    }
    if (PyUnicode_Check(o)) {
        if (set_bytes_from(o, a, &s, &len, true) < 0)
            return -1;
        gn_edf_set_string(v, s, len);
        return 0;
    }
    if (PyBytes_Check(o) || PyByteArray_Check(o) || PyMemoryView_Check(o)) {
        if (set_bytes_from(o, a, &s, &len, false) < 0)
            return -1;
        gn_edf_set_binary(v, (const uint8_t *)s, len);
        return 0;
    }
    if (py2edf_ergo(self, o, v, &handled) < 0)
        return -1;
    if (handled)
        return 0;
    if (PyObject_IsInstance(o, self->error_type) == 1 || PyExceptionInstance_Check(o)) {
        PyObject *txt = PyObject_Str(o);
        if (!txt)
            return -1;
        int rc = set_bytes_from(txt, a, &s, &len, true);
        char *mem = rc == 0 ? gn_edf_arena_alloc(a, len + 1) : NULL;
        if (rc == 0 && !mem) {
            PyErr_NoMemory();
            rc = -1;
        }
        if (rc == 0) {
            memcpy(mem, s, len);
            gn_edf_set_error(v, mem, len);
        }
        Py_DECREF(txt);
        return rc;
    }
    if (PyList_Check(o) || PyTuple_Check(o))
        return py2edf(self, o, any_slice, a, v, depth);
    if (PyDict_Check(o)) {
        PyObject *k;
        Py_ssize_t pos = 0;
        bool all_str = true;
        PyObject *vv;
        while (PyDict_Next(o, &pos, &k, &vv))
            if (!PyUnicode_Check(k) || PyObject_IsInstance(k, self->atom_type) == 1)
                all_str = false;
        return py2edf(self, o, all_str ? str_any_map : any_map, a, v, depth);
    }
    PyObject *name = PyDict_GetItem(self->class_names, (PyObject *)Py_TYPE(o));
    if (name) {
        const gn_edf_registry *reg = self->b->reg;
        Py_ssize_t n;
        const char *nm = PyUnicode_AsUTF8AndSize(name, &n);
        const gn_edf_type *t = reg && nm ? gn_edf_registry_find(reg, nm, (size_t)n) : NULL;
        if (!t) {
            PyErr_Format(PyExc_ValueError, "type %U is not registered on this node (yet)", name);
            return -1;
        }
        return py2edf(self, o, t, a, v, depth);
    }
    PyObject *dtm = PyObject_GetAttrString(self->datetime_mod, "datetime");
    int isdt = dtm ? PyObject_IsInstance(o, dtm) : -1;
    Py_XDECREF(dtm);
    if (isdt == 1)
        return py2edf_time(self, o, v);
    PyErr_Format(PyExc_TypeError, "cannot send a %s as an EDF value", Py_TYPE(o)->tp_name);
    return -1;
}

static int py2edf(ErgoObject *self, PyObject *o, const gn_edf_type *t, gn_edf_arena *a,
                  gn_edf_value *v, int depth)
{
    if (depth > 60) {
        PyErr_SetString(PyExc_ValueError, "value nested too deeply");
        return -1;
    }
    const char *s;
    size_t len;
    int handled;
    switch (t->kind) {
    case GN_EDF_ANY:
        return py2edf_dynamic(self, o, a, v, depth + 1);
    case GN_EDF_BOOL:
        if (!PyBool_Check(o))
            goto bad;
        gn_edf_set_bool(v, o == Py_True);
        break;
    case GN_EDF_INT8: case GN_EDF_INT16: case GN_EDF_INT32: case GN_EDF_INT64: case GN_EDF_INT: {
        if (!PyLong_Check(o))
            goto bad;
        long long x = PyLong_AsLongLong(o);
        if (PyErr_Occurred())
            return -1;
        int bits = t->kind == GN_EDF_INT8 ? 8 : t->kind == GN_EDF_INT16 ? 16
                 : t->kind == GN_EDF_INT32 ? 32 : 64;
        if (bits < 64 && (x < -(1LL << (bits - 1)) || x >= (1LL << (bits - 1)))) {
            PyErr_Format(PyExc_OverflowError, "%lld does not fit %s", x,
                         gn_edf_kind_name((gn_edf_kind)t->kind));
            return -1;
        }
        gn_edf_set_int(v, (gn_edf_kind)t->kind, x);
        break;
    }
    case GN_EDF_UINT8: case GN_EDF_UINT16: case GN_EDF_UINT32: case GN_EDF_UINT64:
    case GN_EDF_UINT: {
        if (!PyLong_Check(o))
            goto bad;
        unsigned long long x = PyLong_AsUnsignedLongLong(o);
        if (PyErr_Occurred())
            return -1;
        int bits = t->kind == GN_EDF_UINT8 ? 8 : t->kind == GN_EDF_UINT16 ? 16
                 : t->kind == GN_EDF_UINT32 ? 32 : 64;
        if (bits < 64 && x >= (1ULL << bits)) {
            PyErr_Format(PyExc_OverflowError, "%llu does not fit %s", x,
                         gn_edf_kind_name((gn_edf_kind)t->kind));
            return -1;
        }
        gn_edf_set_uint(v, (gn_edf_kind)t->kind, x);
        break;
    }
    case GN_EDF_FLOAT32: case GN_EDF_FLOAT64: {
        double d = PyFloat_AsDouble(o);
        if (d == -1.0 && PyErr_Occurred())
            return -1;
        if (t->kind == GN_EDF_FLOAT32)
            gn_edf_set_float32(v, (float)d);
        else
            gn_edf_set_float64(v, d);
        break;
    }
    case GN_EDF_ATOM: case GN_EDF_STRING:
        if (!PyUnicode_Check(o))
            goto bad;
        if (set_bytes_from(o, a, &s, &len, true) < 0)
            return -1;
        if (t->kind == GN_EDF_ATOM)
            gn_edf_set_atom(v, s, len);
        else
            gn_edf_set_string(v, s, len);
        break;
    case GN_EDF_BINARY:
        if (set_bytes_from(o, a, &s, &len, false) < 0)
            return -1;
        gn_edf_set_binary(v, (const uint8_t *)s, len);
        break;
    case GN_EDF_ERROR:
        if (o == Py_None) {
            gn_edf_set_error(v, NULL, 0);
            break;
        }
        return py2edf_dynamic(self, o, a, v, depth + 1);
    case GN_EDF_PID: case GN_EDF_PROCESSID: case GN_EDF_ALIAS: case GN_EDF_REF:
    case GN_EDF_EVENT:
        if (py2edf_ergo(self, o, v, &handled) < 0)
            return -1;
        if (!handled || v->kind != t->kind)
            goto bad;
        break;
    case GN_EDF_TIME:
        if (py2edf_time(self, o, v) < 0)
            return -1;
        break;
    case GN_EDF_SLICE: case GN_EDF_ARRAY: {
        if (o == Py_None && t->kind == GN_EDF_SLICE)
            return gn_edf_set_nil_of(v, t) < 0 ? (PyErr_SetString(PyExc_ValueError, "nil"), -1) : 0;
        if (t->elem->kind == GN_EDF_UINT8 && (PyBytes_Check(o) || PyByteArray_Check(o)))
            goto bad;
        PyObject *seq = PySequence_Fast(o, "want a list");
        if (!seq)
            return -1;
        Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
        if (t->kind == GN_EDF_ARRAY && (uint32_t)n != t->len) {
            Py_DECREF(seq);
            PyErr_Format(PyExc_ValueError, "array of %u: got %zd items", t->len, n);
            return -1;
        }
        if (gn_edf_set_composite(v, a, t, (uint32_t)n) < 0) {
            Py_DECREF(seq);
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            if (py2edf(self, PySequence_Fast_GET_ITEM(seq, i), t->elem, a, &v->u.items[i],
                       depth + 1) < 0) {
                Py_DECREF(seq);
                return -1;
            }
        }
        Py_DECREF(seq);
        break;
    }
    case GN_EDF_MAP: {
        if (o == Py_None)
            return gn_edf_set_nil_of(v, t) < 0 ? (PyErr_SetString(PyExc_ValueError, "nil"), -1) : 0;
        if (!PyDict_Check(o))
            goto bad;
        Py_ssize_t n = PyDict_Size(o), pos = 0, i = 0;
        if (gn_edf_set_composite(v, a, t, (uint32_t)n) < 0) {
            PyErr_NoMemory();
            return -1;
        }
        PyObject *k, *x;
        while (PyDict_Next(o, &pos, &k, &x)) {
            if (py2edf(self, k, t->key, a, &v->u.items[2 * i], depth + 1) < 0 ||
                py2edf(self, x, t->elem, a, &v->u.items[2 * i + 1], depth + 1) < 0)
                return -1;
            i++;
        }
        break;
    }
    case GN_EDF_STRUCT: {
        if (gn_edf_set_composite(v, a, t, t->len) < 0) {
            PyErr_NoMemory();
            return -1;
        }
        for (uint32_t i = 0; i < t->len; i++) {
            PyObject *x = PyObject_GetAttrString(o, t->fields[i].name);
            if (!x)
                return -1;
            int rc = py2edf(self, x, t->fields[i].type, a, &v->u.items[i], depth + 1);
            Py_DECREF(x); /* the instance keeps the field alive */
            if (rc < 0)
                return -1;
        }
        break;
    }
    case GN_EDF_CUSTOM:
        if (set_bytes_from(o, a, &s, &len, false) < 0)
            return -1;
        gn_edf_set_custom(v, t, (const uint8_t *)s, len);
        break;
    default:
        goto bad;
    }
    if (t->name && t->kind != GN_EDF_STRUCT && t->kind != GN_EDF_CUSTOM && v->type != t)
        v->type = t; /* a named type over the kind just set */
    return 0;
bad:
    PyErr_Format(PyExc_TypeError, "cannot encode a %s as EDF %s%s%s", Py_TYPE(o)->tp_name,
                 gn_edf_kind_name((gn_edf_kind)t->kind), t->name ? " " : "",
                 t->name ? t->name : "");
    return -1;
}

/* encodes @o (bytes, malloc'ed) */
static uint8_t *py_encode(ErgoObject *self, PyObject *o, size_t *len)
{
    gn_edf_arena *a = gn_edf_arena_new(0, 0);
    if (!a) {
        PyErr_NoMemory();
        return NULL;
    }
    gn_edf_value v;
    uint8_t *out = NULL;
    if (o == Py_None) {
        PyErr_SetString(PyExc_ValueError, "None cannot be sent as a message (Ergo encodes no "
                                          "top-level nil)");
    } else if (py2edf_dynamic(self, o, a, &v, 0) == 0) {
        out = encode_value(&v, len);
        if (!out)
            raise_code(GN_EINVAL);
    }
    gn_edf_arena_free(a);
    return out;
}

/* ---- EDF -> Python ---- */

static PyObject *str_of(gn_slice s)
{
    return PyUnicode_DecodeUTF8((const char *)s.base, (Py_ssize_t)s.len, "surrogateescape");
}

static PyObject *edf2py(ErgoObject *self, const gn_edf_value *v)
{
    switch ((gn_edf_kind)v->kind) {
    case GN_EDF_NIL:
        Py_RETURN_NONE;
    case GN_EDF_BOOL:
        return PyBool_FromLong(v->u.b);
    case GN_EDF_INT8: case GN_EDF_INT16: case GN_EDF_INT32: case GN_EDF_INT64: case GN_EDF_INT:
        return PyLong_FromLongLong(v->u.i);
    case GN_EDF_UINT8: case GN_EDF_UINT16: case GN_EDF_UINT32: case GN_EDF_UINT64:
    case GN_EDF_UINT:
        return PyLong_FromUnsignedLongLong(v->u.u);
    case GN_EDF_FLOAT32:
        return PyFloat_FromDouble(v->u.f32);
    case GN_EDF_FLOAT64:
        return PyFloat_FromDouble(v->u.f64);
    case GN_EDF_STRING:
        return str_of(v->u.bytes);
    case GN_EDF_ATOM: {
        PyObject *s = str_of(v->u.bytes);
        if (!s)
            return NULL;
        PyObject *r = PyObject_CallOneArg(self->atom_type, s);
        Py_DECREF(s);
        return r;
    }
    case GN_EDF_BINARY: case GN_EDF_CUSTOM:
        return PyBytes_FromStringAndSize((const char *)v->u.bytes.base,
                                         (Py_ssize_t)v->u.bytes.len);
    case GN_EDF_ERROR: {
        if (v->nil)
            Py_RETURN_NONE;
        PyObject *s = str_of(v->u.bytes);
        if (!s)
            return NULL;
        PyObject *r = PyObject_CallOneArg(self->error_type, s);
        Py_DECREF(s);
        return r;
    }
    case GN_EDF_PID:
        return PyObject_CallFunction(self->pid_type, "NKL", str_of(v->u.pid.node),
                                     (unsigned long long)v->u.pid.id,
                                     (long long)v->u.pid.creation);
    case GN_EDF_PROCESSID: case GN_EDF_EVENT:
        return PyObject_CallFunction(v->kind == GN_EDF_EVENT ? self->event_type
                                                             : self->processid_type,
                                     "NN", str_of(v->u.name.name), str_of(v->u.name.node));
    case GN_EDF_REF: case GN_EDF_ALIAS:
        return PyObject_CallFunction(v->kind == GN_EDF_ALIAS ? self->alias_type : self->ref_type,
                                     "NL(KKK)", str_of(v->u.ref.node),
                                     (long long)v->u.ref.creation,
                                     (unsigned long long)v->u.ref.id[0],
                                     (unsigned long long)v->u.ref.id[1],
                                     (unsigned long long)v->u.ref.id[2]);
    case GN_EDF_TIME: {
        long long unix_s = v->u.time.sec - GN_EDF_TIME_UNIX_OFFSET;
        PyObject *dt = PyObject_GetAttrString(self->datetime_mod, "datetime");
        PyObject *tz = PyObject_GetAttrString(self->datetime_mod, "timezone");
        PyObject *utc = tz ? PyObject_GetAttrString(tz, "utc") : NULL;
        PyObject *r = NULL;
        if (dt && utc)
            r = PyObject_CallMethod(dt, "fromtimestamp", "dO",
                                    (double)unix_s + v->u.time.nsec / 1e9, utc);
        Py_XDECREF(dt);
        Py_XDECREF(tz);
        Py_XDECREF(utc);
        return r;
    }
    case GN_EDF_SLICE: case GN_EDF_ARRAY: {
        if (v->nil)
            return PyList_New(0);
        if (v->type && v->type->elem && v->type->elem->kind == GN_EDF_UINT8) {
            /* [N]byte and the like: bytes */
        }
        PyObject *l = PyList_New(v->cnt);
        if (!l)
            return NULL;
        for (uint32_t i = 0; i < v->cnt; i++) {
            PyObject *x = edf2py(self, &v->u.items[i]);
            if (!x) {
                Py_DECREF(l);
                return NULL;
            }
            PyList_SET_ITEM(l, i, x);
        }
        return l;
    }
    case GN_EDF_MAP: {
        PyObject *d = PyDict_New();
        if (!d)
            return NULL;
        for (uint32_t i = 0; !v->nil && i < v->cnt; i++) {
            PyObject *k = edf2py(self, &v->u.items[2 * i]);
            PyObject *x = k ? edf2py(self, &v->u.items[2 * i + 1]) : NULL;
            if (!x || PyDict_SetItem(d, k, x) < 0) {
                Py_XDECREF(k);
                Py_XDECREF(x);
                Py_DECREF(d);
                return NULL;
            }
            Py_DECREF(k);
            Py_DECREF(x);
        }
        return d;
    }
    case GN_EDF_STRUCT: {
        PyObject *cls = PyDict_GetItemString(self->classes, v->type->name);
        PyObject *r;
        if (cls) {
            r = PyTuple_New(v->cnt);
        } else {
            r = PyDict_New();
        }
        if (!r)
            return NULL;
        for (uint32_t i = 0; i < v->cnt; i++) {
            PyObject *x = edf2py(self, &v->u.items[i]);
            if (!x) {
                Py_DECREF(r);
                return NULL;
            }
            if (cls) {
                PyTuple_SET_ITEM(r, i, x);
            } else {
                int rc = PyDict_SetItemString(r, v->type->fields[i].name, x);
                Py_DECREF(x);
                if (rc < 0) {
                    Py_DECREF(r);
                    return NULL;
                }
            }
        }
        if (cls) {
            PyObject *o = PyObject_Call(cls, r, NULL);
            Py_DECREF(r);
            return o;
        }
        return r;
    }
    default:
        PyErr_Format(PyExc_ValueError, "EDF kind %s has no Python form",
                     gn_edf_kind_name((gn_edf_kind)v->kind));
        return NULL;
    }
}

static PyObject *py_decode(ErgoObject *self, const uint8_t *p, size_t len)
{
    gn_edf_arena *a = gn_edf_arena_new(len + 256, 0);
    if (!a)
        return PyErr_NoMemory();
    gn_edf_decode_opts o;
    gn_edf_decode_opts_default(&o);
    o.reg = self->b->reg;
    gn_edf_value v;
    int rc = gn_edf_decode(&o, a, p, len, &v, NULL, NULL);
    PyObject *r = rc < 0 ? raise_code(rc) : edf2py(self, &v);
    gn_edf_arena_free(a);
    return r;
}

/* ---- methods ---- */

static void Ergo_dealloc(ErgoObject *self)
{
    if (self->b)
        bridge_rele(self->b);
    Py_XDECREF(self->classes);
    Py_XDECREF(self->class_names);
    Py_XDECREF(self->atom_type);
    Py_XDECREF(self->pid_type);
    Py_XDECREF(self->processid_type);
    Py_XDECREF(self->alias_type);
    Py_XDECREF(self->ref_type);
    Py_XDECREF(self->event_type);
    Py_XDECREF(self->error_type);
    Py_XDECREF(self->datetime_mod);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static char *dup_str(PyObject *o)
{
    const char *s = PyUnicode_AsUTF8(o);
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        PyErr_NoMemory();
    return d;
}

/* ErgoNode(node_ptr, types, classes, kinds): types = [(name, [(field, spec)])]; classes =
 * {name: cls}; kinds = (Atom, PID, ProcessID, Alias, Ref, Event, ErrorValue) */
static int Ergo_init(ErgoObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"node", "types", "classes", "kinds", "max_value_bytes", NULL};
    PyObject *cap, *types, *classes, *kinds;
    Py_ssize_t maxv = 0;
    if (self->b) {
        PyErr_SetString(PyExc_RuntimeError, "ErgoNode already initialised");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOO!O!|n", kwlist, &cap, &types, &PyDict_Type,
                                     &classes, &PyTuple_Type, &kinds, &maxv))
        return -1;
    gn_node *n = PyCapsule_GetPointer(cap, "golemnet.gn_node");
    if (!n)
        return -1;
    if (PyTuple_GET_SIZE(kinds) != 7) {
        PyErr_SetString(PyExc_ValueError, "kinds: want 7 classes");
        return -1;
    }
    PyObject **slots[7] = {&self->atom_type, &self->pid_type, &self->processid_type,
                           &self->alias_type, &self->ref_type, &self->event_type,
                           &self->error_type};
    for (int i = 0; i < 7; i++) {
        *slots[i] = PyTuple_GET_ITEM(kinds, i);
        Py_INCREF(*slots[i]);
    }
    self->datetime_mod = PyImport_ImportModule("datetime");
    if (!self->datetime_mod)
        return -1;
    self->classes = classes;
    Py_INCREF(classes);
    self->class_names = PyDict_New();
    if (!self->class_names)
        return -1;
    PyObject *k, *x;
    Py_ssize_t pos = 0;
    while (PyDict_Next(classes, &pos, &k, &x))
        if (PyDict_SetItem(self->class_names, x, k) < 0)
            return -1;
    epy_bridge *b = calloc(1, sizeof *b);
    if (!b) {
        PyErr_NoMemory();
        return -1;
    }
    atomic_init(&b->refs, 1);
    pthread_mutex_init(&b->mu, NULL);
    b->tail = &b->head;
    b->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    b->node = n;
    b->loop = gn_node_loop(n);
    self->b = b;
    if (b->fd < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    PyObject *seq = PySequence_Fast(types, "types: want a list");
    if (!seq)
        return -1;
    Py_ssize_t nt = PySequence_Fast_GET_SIZE(seq);
    b->types = calloc(nt ? (size_t)nt : 1, sizeof *b->types);
    if (!b->types) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < nt; i++) {
        PyObject *name, *fields;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "UO", &name, &fields))
            goto fail;
        epy_type *t = &b->types[b->ntypes++];
        if (!(t->name = dup_str(name)))
            goto fail;
        PyObject *fs = PySequence_Fast(fields, "fields: want a list");
        if (!fs)
            goto fail;
        Py_ssize_t nf = PySequence_Fast_GET_SIZE(fs);
        t->fields = calloc(nf ? (size_t)nf : 1, sizeof *t->fields);
        if (!t->fields) {
            Py_DECREF(fs);
            PyErr_NoMemory();
            goto fail;
        }
        for (Py_ssize_t j = 0; j < nf; j++) {
            PyObject *fn, *sp;
            if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(fs, j), "UU", &fn, &sp)) {
                Py_DECREF(fs);
                goto fail;
            }
            epy_field *f = &t->fields[t->nfields++];
            if (!(f->name = dup_str(fn)) || !(f->spec = dup_str(sp))) {
                Py_DECREF(fs);
                goto fail;
            }
        }
        Py_DECREF(fs);
    }
    Py_DECREF(seq);
    gn_ergo_config cfg = {.types = types_hook, .types_arg = b,
                          .max_value_bytes = (size_t)maxv};
    int rc = gn_ergo_attach(n, &cfg, &b->en);
    if (rc < 0) {
        raise_code(rc);
        return -1;
    }
    atomic_fetch_add(&b->refs, 1); /* the loop side's, dropped by OP_DETACH */
    return 0;
fail:
    Py_DECREF(seq);
    return -1;
}

static PyObject *Ergo_get_fd(ErgoObject *self, void *c)
{
    (void)c;
    return PyLong_FromLong(self->b ? self->b->fd : -1);
}

static PyObject *pid_tuple(const gn_ergo_pid *p)
{
    return Py_BuildValue("(NKL)", PyUnicode_DecodeUTF8(p->node, (Py_ssize_t)strlen(p->node),
                                                       "surrogateescape"),
                         (unsigned long long)p->id, (long long)p->creation);
}

static PyObject *ref_tuple(const gn_ergo_ref *r)
{
    return Py_BuildValue("(NL(KKK))", PyUnicode_DecodeUTF8(r->node, (Py_ssize_t)strlen(r->node),
                                                           "surrogateescape"),
                         (long long)r->creation, (unsigned long long)r->id[0],
                         (unsigned long long)r->id[1], (unsigned long long)r->id[2]);
}

/* poll(max) -> [(kind, token, status, a, b, c)] */
static PyObject *Ergo_poll(ErgoObject *self, PyObject *args)
{
    Py_ssize_t max = 256;
    if (!PyArg_ParseTuple(args, "|n", &max))
        return NULL;
    epy_bridge *b = self->b;
    pthread_mutex_lock(&b->mu);
    en_note *list = b->head, *last = NULL;
    Py_ssize_t cnt = 0;
    for (en_note *n = list; n && cnt < max; n = n->next) {
        last = n;
        cnt++;
    }
    if (last) {
        b->head = last->next;
        if (!b->head)
            b->tail = &b->head;
        last->next = NULL;
    }
    if (!b->head && b->signalled) {
        uint64_t x;
        ssize_t r = read(b->fd, &x, sizeof x);
        (void)r;
        b->signalled = false;
    }
    pthread_mutex_unlock(&b->mu);
    if (!last)
        return PyList_New(0);
    PyObject *out = PyList_New(0);
    for (en_note *n = list; n;) {
        PyObject *item = NULL;
        if (out) {
            PyObject *val = NULL, *text = NULL;
            if (n->bytes && n->status == 0) {
                val = py_decode(self, n->bytes, n->len);
                if (!val) {
                    /* a value Python cannot hold: the error object is the value */
                    PyObject *et, *ev, *tb;
                    PyErr_Fetch(&et, &ev, &tb);
                    PyErr_NormalizeException(&et, &ev, &tb);
                    val = ev ? ev : Py_None;
                    if (!ev)
                        Py_INCREF(Py_None);
                    Py_XDECREF(et);
                    Py_XDECREF(tb);
                }
            } else {
                val = Py_None;
                Py_INCREF(val);
            }
            text = n->text ? PyUnicode_DecodeUTF8(n->text, (Py_ssize_t)strlen(n->text),
                                                  "replace")
                           : (Py_INCREF(Py_None), Py_None);
            switch (n->kind) {
            case EN_MSG:
                item = Py_BuildValue("(iKi(NNOOii)OO)", n->kind, (unsigned long long)n->token,
                                     n->status, pid_tuple(&n->pid), ref_tuple(&n->ref),
                                     n->call ? Py_True : Py_False,
                                     n->important ? Py_True : Py_False, n->priority,
                                     n->to_kind, val, Py_None);
                break;
            case EN_SPAWN:
            case EN_ALIAS:
                item = Py_BuildValue("(iKiNOO)", n->kind, (unsigned long long)n->token,
                                     n->status,
                                     n->kind == EN_SPAWN ? pid_tuple(&n->pid) : ref_tuple(&n->ref),
                                     Py_None, Py_None);
                break;
            case EN_INFO:
                item = Py_BuildValue("(iKi(sKLKiiO)OO)", n->kind, (unsigned long long)n->token,
                                     n->status, n->info.node,
                                     (unsigned long long)n->info.flags,
                                     (long long)n->info.creation,
                                     (unsigned long long)n->info.max_message_size,
                                     n->info.carrier, (int)n->info.links,
                                     n->info.initiator ? Py_True : Py_False, Py_None, Py_None);
                break;
            case EN_COMPRESSION: /* (kind, token, status, (enable, type, level, threshold)) */
                item = Py_BuildValue("(iKi(Oiik)OO)", n->kind, (unsigned long long)n->token,
                                     n->status, n->comp.enable ? Py_True : Py_False,
                                     (int)n->comp.type, (int)n->comp.level,
                                     (unsigned long)n->comp.threshold, Py_None, Py_None);
                break;
            case EN_SIGNAL: /* (kind, token, 0, (signal kind, direct), target, reason) */
                item = Py_BuildValue("(iKi(iO)OO)", n->kind, (unsigned long long)n->token,
                                     n->status, n->priority,
                                     n->important ? Py_True : Py_False, val, text);
                break;
            default:
                item = Py_BuildValue("(iKiOOO)", n->kind, (unsigned long long)n->token,
                                     n->status, val, text, Py_None);
            }
            Py_XDECREF(val);
            Py_XDECREF(text);
            if (!item || PyList_Append(out, item) < 0) {
                Py_CLEAR(out);
            }
            Py_XDECREF(item);
        }
        en_note *nx = n->next;
        free(n->bytes);
        free(n->text);
        free(n);
        n = nx;
    }
    return out;
}

static PyObject *done_or_raise(int rc)
{
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *Ergo_detach(ErgoObject *self, PyObject *args)
{
    unsigned long long tok;
    if (!PyArg_ParseTuple(args, "K", &tok))
        return NULL;
    epy_cmd *c = cmd_new(OP_DETACH, tok, NULL);
    return c ? done_or_raise(submit(self, c)) : NULL;
}

/* compression settings: None (disabled) or (enable, type, level, threshold); the
 * library checks the values (GN_EINVAL) */
static int parse_compression(PyObject *o, gn_ergo_compression *z)
{
    memset(z, 0, sizeof *z);
    if (o == Py_None)
        return 0;
    int enable, type, level;
    unsigned long threshold;
    if (!PyArg_ParseTuple(o, "piik", &enable, &type, &level, &threshold))
        return -1;
    if (threshold > UINT32_MAX) {
        raise_code(GN_EINVAL);
        return -1;
    }
    z->enable = enable;
    z->type = (gn_ergo_compression_type)type;
    z->level = (gn_ergo_compression_level)level;
    z->threshold = (uint32_t)threshold;
    return 0;
}

/* spawn(mailbox, qlimit, max_pending, token, compression=None) -> handle */
static PyObject *Ergo_spawn(ErgoObject *self, PyObject *args)
{
    unsigned int mailbox, qlimit, maxp;
    unsigned long long tok;
    PyObject *comp = Py_None;
    gn_ergo_compression z;
    if (!PyArg_ParseTuple(args, "IIIK|O", &mailbox, &qlimit, &maxp, &tok, &comp) ||
        parse_compression(comp, &z) < 0)
        return NULL;
    epy_cmd *c = cmd_new(OP_SPAWN, tok, NULL);
    if (!c)
        return NULL;
    c->po.compression = z;
    epy_proc *ep = calloc(1, sizeof *ep);
    if (!ep) {
        free(c);
        return PyErr_NoMemory();
    }
    ep->b = self->b;
    ep->id = tok;
    ep->qlimit = qlimit ? (int)qlimit : 1024;
    c->ep = ep;
    c->po.mailbox_size = mailbox;
    c->po.max_pending = maxp;
    if (submit(self, c) < 0) {
        free(ep);
        return NULL;
    }
    return PyLong_FromVoidPtr(ep);
}

static PyObject *Ergo_proc_op(ErgoObject *self, PyObject *args, int op)
{
    PyObject *h;
    unsigned long long tok = 0;
    const char *name = "";
    if (!PyArg_ParseTuple(args, op == OP_REGISTER ? "OsK" : "OK", &h,
                          op == OP_REGISTER ? (void *)&name : (void *)&tok, &tok))
        return NULL;
    epy_cmd *c = cmd_new(op, tok, h);
    if (!c)
        return NULL;
    if (strlen(name) > GN_ERGO_NAME_MAX) {
        free(c);
        return raise_code(GN_EINVAL);
    }
    strcpy(c->text, name);
    return done_or_raise(submit(self, c));
}

/* set_compression(handle, settings, token); get_compression(handle, token) */
static PyObject *Ergo_set_compression(ErgoObject *self, PyObject *args)
{
    PyObject *h, *comp;
    unsigned long long tok;
    gn_ergo_compression z;
    if (!PyArg_ParseTuple(args, "OOK", &h, &comp, &tok) || parse_compression(comp, &z) < 0)
        return NULL;
    epy_cmd *c = cmd_new(OP_SET_COMPRESSION, tok, h);
    if (!c)
        return NULL;
    c->po.compression = z;
    return done_or_raise(submit(self, c));
}

static PyObject *Ergo_get_compression(ErgoObject *self, PyObject *args)
{
    PyObject *h;
    unsigned long long tok;
    if (!PyArg_ParseTuple(args, "OK", &h, &tok))
        return NULL;
    epy_cmd *c = cmd_new(OP_GET_COMPRESSION, tok, h);
    return c ? done_or_raise(submit(self, c)) : NULL;
}

static PyObject *Ergo_free_proc(ErgoObject *self, PyObject *args)
{
    return Ergo_proc_op(self, args, OP_FREE);
}
static PyObject *Ergo_register(ErgoObject *self, PyObject *args)
{
    return Ergo_proc_op(self, args, OP_REGISTER);
}
static PyObject *Ergo_unregister(ErgoObject *self, PyObject *args)
{
    return Ergo_proc_op(self, args, OP_UNREGISTER);
}
static PyObject *Ergo_alias_new(ErgoObject *self, PyObject *args)
{
    return Ergo_proc_op(self, args, OP_ALIAS_NEW);
}

static int name_copy(char *dst, PyObject *o)
{
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(o, &n);
    if (!s)
        return -1;
    if ((size_t)n > GN_ERGO_NAME_MAX) {
        PyErr_SetString(PyExc_ValueError, "name longer than 255 bytes");
        return -1;
    }
    memcpy(dst, s, (size_t)n);
    dst[n] = 0;
    return 0;
}

static int parse_ref(PyObject *o, gn_ergo_ref *r)
{
    PyObject *node;
    long long cr;
    unsigned long long a, b, c;
    if (!PyArg_ParseTuple(o, "UL(KKK)", &node, &cr, &a, &b, &c))
        return -1;
    r->creation = cr;
    r->id[0] = a;
    r->id[1] = b;
    r->id[2] = c;
    return name_copy(r->node, node);
}

static int parse_pid(PyObject *o, gn_ergo_pid *p)
{
    PyObject *node;
    unsigned long long id;
    long long cr;
    if (!PyArg_ParseTuple(o, "UKL", &node, &id, &cr))
        return -1;
    p->id = id;
    p->creation = cr;
    return name_copy(p->node, node);
}

/* target: ("pid", (node, id, creation)) | ("name", (node, name)) | ("alias", ref) */
static int parse_target(PyObject *o, gn_ergo_target *t)
{
    const char *kind;
    PyObject *x;
    if (!PyArg_ParseTuple(o, "sO", &kind, &x))
        return -1;
    memset(t, 0, sizeof *t);
    if (strcmp(kind, "pid") == 0) {
        t->kind = GN_ERGO_TO_PID;
        return parse_pid(x, &t->pid);
    }
    if (strcmp(kind, "name") == 0) {
        PyObject *node, *name;
        t->kind = GN_ERGO_TO_NAME;
        if (!PyArg_ParseTuple(x, "UU", &node, &name))
            return -1;
        return name_copy(t->node, node) < 0 ? -1 : name_copy(t->name, name);
    }
    if (strcmp(kind, "alias") == 0) {
        t->kind = GN_ERGO_TO_ALIAS;
        return parse_ref(x, &t->alias);
    }
    if (strcmp(kind, "event") == 0) { /* links and monitors only */
        PyObject *node, *name;
        t->kind = GN_ERGO_TO_EVENT;
        if (!PyArg_ParseTuple(x, "UU", &node, &name))
            return -1;
        return name_copy(t->node, node) < 0 ? -1 : name_copy(t->name, name);
    }
    PyErr_Format(PyExc_ValueError, "unknown target kind %s", kind);
    return -1;
}

static PyObject *Ergo_alias_delete(ErgoObject *self, PyObject *args)
{
    PyObject *h, *ref;
    unsigned long long tok;
    if (!PyArg_ParseTuple(args, "OOK", &h, &ref, &tok))
        return NULL;
    epy_cmd *c = cmd_new(OP_ALIAS_DELETE, tok, h);
    if (!c)
        return NULL;
    if (parse_ref(ref, &c->ref) < 0) {
        free(c);
        return NULL;
    }
    return done_or_raise(submit(self, c));
}

/* send_or_call(call, handle, target, value, priority, important, timeout_ms, token) */
static PyObject *Ergo_send(ErgoObject *self, PyObject *args)
{
    int call, prio, important;
    PyObject *h, *target, *value;
    unsigned long long timeout_ms, tok;
    if (!PyArg_ParseTuple(args, "pOOOipKK", &call, &h, &target, &value, &prio, &important,
                          &timeout_ms, &tok))
        return NULL;
    if (!self->b->reg)
        return raise_code(GN_ESTATE);
    epy_cmd *c = cmd_new(call ? OP_CALL : OP_SEND, tok, h);
    if (!c)
        return NULL;
    if (parse_target(target, &c->to) < 0 || !(c->bytes = py_encode(self, value, &c->len))) {
        free(c);
        return NULL;
    }
    c->so.priority = (gn_ergo_priority)prio;
    c->so.important = important;
    c->so.timeout = (gn_time)timeout_ms * GN_MS;
    return done_or_raise(submit(self, c));
}

/* reply(handle, to_pid, ref, value, is_error, token) */
static PyObject *Ergo_reply(ErgoObject *self, PyObject *args)
{
    PyObject *h, *to, *ref, *value;
    int is_error;
    unsigned long long tok;
    if (!PyArg_ParseTuple(args, "OOOOpK", &h, &to, &ref, &value, &is_error, &tok))
        return NULL;
    epy_cmd *c = cmd_new(is_error ? OP_REPLY_ERROR : OP_REPLY, tok, h);
    if (!c)
        return NULL;
    if (parse_pid(to, &c->pid) < 0 || parse_ref(ref, &c->ref) < 0)
        goto fail;
    if (is_error) {
        Py_ssize_t n;
        const char *s = PyUnicode_AsUTF8AndSize(value, &n);
        if (!s)
            goto fail;
        if (n < 1 || (size_t)n > GN_EDF_ERROR_MAX) {
            PyErr_SetString(PyExc_ValueError, "error text: want 1..32767 bytes");
            goto fail;
        }
        memcpy(c->text, s, (size_t)n);
    } else if (!(c->bytes = py_encode(self, value, &c->len))) {
        goto fail;
    }
    return done_or_raise(submit(self, c));
fail:
    free(c);
    return NULL;
}

/* node_op(op, node, peer_or_None, token): info / connect / connect_peer / disconnect */
static PyObject *Ergo_node_op(ErgoObject *self, PyObject *args)
{
    const char *what, *node, *peer = NULL;
    unsigned long long tok;
    if (!PyArg_ParseTuple(args, "szzK", &what, &node, &peer, &tok))
        return NULL;
    int op = strcmp(what, "info") == 0 ? OP_INFO : strcmp(what, "connect") == 0 ? OP_CONNECT
           : strcmp(what, "connect_peer") == 0 ? OP_CONNECT_PEER
           : strcmp(what, "disconnect") == 0 ? OP_DISCONNECT : 0;
    if (!op || (op != OP_CONNECT_PEER && !node) || (node && strlen(node) > GN_ERGO_NAME_MAX))
        return raise_code(GN_EINVAL);
    epy_cmd *c = cmd_new(op, tok, NULL);
    if (!c)
        return NULL;
    if (node)
        strcpy(c->text, node);
    if (op == OP_CONNECT_PEER) {
        int rc = peer ? gn_peer_id_parse(peer, strlen(peer), &c->peer) : GN_EINVAL;
        if (rc < 0) {
            free(c);
            return raise_code(rc);
        }
    }
    return done_or_raise(submit(self, c));
}

/* resume(handle, n): the consumer took n messages of the process */
static PyObject *Ergo_resume(ErgoObject *self, PyObject *args)
{
    PyObject *h;
    int n;
    if (!PyArg_ParseTuple(args, "Oi", &h, &n))
        return NULL;
    epy_proc *ep = PyLong_AsVoidPtr(h);
    if (!ep)
        return NULL;
    int left = atomic_fetch_sub(&ep->inflight, n) - n;
    int one = 1;
    if (left <= ep->qlimit / 2 && atomic_compare_exchange_strong(&ep->paused, &one, 2)) {
        epy_cmd *c = cmd_new(OP_UNPAUSE, 0, h);
        if (!c || submit(self, c) < 0) {
            atomic_store(&ep->paused, 1); /* retried at the next resume */
            return NULL;
        }
    }
    Py_RETURN_NONE;
}

/* encode(value) -> bytes; decode(bytes) -> value (tests; after the start) */
static PyObject *Ergo_encode(ErgoObject *self, PyObject *value)
{
    size_t len;
    uint8_t *p = py_encode(self, value, &len);
    if (!p)
        return NULL;
    PyObject *r = PyBytes_FromStringAndSize((const char *)p, (Py_ssize_t)len);
    free(p);
    return r;
}

static PyObject *Ergo_decode(ErgoObject *self, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *r = py_decode(self, view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return r;
}

static PyObject *Ergo_get_ready(ErgoObject *self, void *c)
{
    (void)c;
    return PyBool_FromLong(self->b && self->b->reg);
}

/* remote spawn and application start (end of file) */
static PyObject *Ergo_remote_spawn(ErgoObject *self, PyObject *args);
static PyObject *Ergo_remote_app_start(ErgoObject *self, PyObject *args);
static PyObject *Ergo_enable(ErgoObject *self, PyObject *args);
/* ---- links, monitors, exit signals, events (consumer side) ---- */

static int reason_copy(char *dst, PyObject *o, const char *what)
{
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(o, &n);
    if (!s)
        return -1;
    if (n < 1 || (size_t)n > GN_ERGO_NAME_MAX || memchr(s, 0, (size_t)n)) {
        PyErr_Format(PyExc_ValueError, "%s: want 1..255 bytes without NUL", what);
        return -1;
    }
    memcpy(dst, s, (size_t)n);
    dst[n] = 0;
    return 0;
}

/* link_op(what, handle, target, token): what = link | unlink | monitor | demonitor */
static PyObject *Ergo_link_op(ErgoObject *self, PyObject *args)
{
    const char *what;
    PyObject *h, *target;
    unsigned long long tok;
    if (!PyArg_ParseTuple(args, "sOOK", &what, &h, &target, &tok))
        return NULL;
    int op = !strcmp(what, "link") ? OP_LINK : !strcmp(what, "unlink") ? OP_UNLINK
           : !strcmp(what, "monitor") ? OP_MONITOR : !strcmp(what, "demonitor") ? OP_DEMONITOR
           : 0;
    if (!op)
        return raise_code(GN_EINVAL);
    epy_cmd *c = cmd_new(op, tok, h);
    if (!c)
        return NULL;
    if (parse_target(target, &c->to) < 0) {
        free(c);
        return NULL;
    }
    return done_or_raise(submit(self, c));
}

/* send_exit(handle, pid, reason, token) */
static PyObject *Ergo_send_exit(ErgoObject *self, PyObject *args)
{
    PyObject *h, *pid, *reason;
    unsigned long long tok;
    if (!PyArg_ParseTuple(args, "OOUK", &h, &pid, &reason, &tok))
        return NULL;
    epy_cmd *c = cmd_new(OP_SEND_EXIT, tok, h);
    if (!c)
        return NULL;
    if (parse_pid(pid, &c->pid) < 0 || reason_copy(c->text, reason, "reason") < 0) {
        free(c);
        return NULL;
    }
    return done_or_raise(submit(self, c));
}

/* proc_exit(handle, reason, token): ends the process with reason (the handle is gone after) */
static PyObject *Ergo_proc_exit(ErgoObject *self, PyObject *args)
{
    PyObject *h, *reason;
    unsigned long long tok;
    if (!PyArg_ParseTuple(args, "OUK", &h, &reason, &tok))
        return NULL;
    epy_cmd *c = cmd_new(OP_PROC_EXIT, tok, h);
    if (!c)
        return NULL;
    if (reason_copy(c->text, reason, "reason") < 0) {
        free(c);
        return NULL;
    }
    return done_or_raise(submit(self, c));
}

/* event_op(what, handle, name, value, token): what = register | unregister | publish */
static PyObject *Ergo_event_op(ErgoObject *self, PyObject *args)
{
    const char *what;
    PyObject *h, *name, *value;
    unsigned long long tok;
    if (!PyArg_ParseTuple(args, "sOUOK", &what, &h, &name, &value, &tok))
        return NULL;
    int op = !strcmp(what, "register") ? OP_EVENT_REGISTER
           : !strcmp(what, "unregister") ? OP_EVENT_UNREGISTER
           : !strcmp(what, "publish") ? OP_EVENT_PUBLISH : 0;
    if (!op)
        return raise_code(GN_EINVAL);
    if (op == OP_EVENT_PUBLISH && !self->b->reg)
        return raise_code(GN_ESTATE);
    epy_cmd *c = cmd_new(op, tok, h);
    if (!c)
        return NULL;
    if (reason_copy(c->text, name, "event name") < 0 ||
        (op == OP_EVENT_PUBLISH && !(c->bytes = py_encode(self, value, &c->len)))) {
        free(c);
        return NULL;
    }
    return done_or_raise(submit(self, c));
}

static PyMethodDef Ergo_methods[] = {
    {"remote_spawn", (PyCFunction)Ergo_remote_spawn, METH_VARARGS,
     "remote_spawn(handle, node, factory, register, args, timeout_ms, token)"},
    {"remote_app_start", (PyCFunction)Ergo_remote_app_start, METH_VARARGS,
     "remote_app_start(handle, node, name, mode, timeout_ms, token)"},
    {"enable", (PyCFunction)Ergo_enable, METH_VARARGS,
     "enable(app, on, name, nodes, qlimit, max_procs, stream, token)"},
    {"poll", (PyCFunction)Ergo_poll, METH_VARARGS, "poll(max=256) -> notes"},
    {"detach", (PyCFunction)Ergo_detach, METH_VARARGS, "detach(token)"},
    {"spawn", (PyCFunction)Ergo_spawn, METH_VARARGS,
     "spawn(mailbox, qlimit, max_pending, token, compression=None) -> handle"},
    {"set_compression", (PyCFunction)Ergo_set_compression, METH_VARARGS,
     "set_compression(handle, None | (enable, type, level, threshold), token)"},
    {"get_compression", (PyCFunction)Ergo_get_compression, METH_VARARGS,
     "get_compression(handle, token)"},
    {"free_proc", (PyCFunction)Ergo_free_proc, METH_VARARGS, "free_proc(handle, token)"},
    {"register", (PyCFunction)Ergo_register, METH_VARARGS, "register(handle, name, token)"},
    {"unregister", (PyCFunction)Ergo_unregister, METH_VARARGS, "unregister(handle, token)"},
    {"alias_new", (PyCFunction)Ergo_alias_new, METH_VARARGS, "alias_new(handle, token)"},
    {"alias_delete", (PyCFunction)Ergo_alias_delete, METH_VARARGS,
     "alias_delete(handle, ref, token)"},
    {"send", (PyCFunction)Ergo_send, METH_VARARGS,
     "send(call, handle, target, value, priority, important, timeout_ms, token)"},
    {"reply", (PyCFunction)Ergo_reply, METH_VARARGS,
     "reply(handle, to_pid, ref, value_or_text, is_error, token)"},
    {"node_op", (PyCFunction)Ergo_node_op, METH_VARARGS, "node_op(what, node, peer, token)"},
    {"resume", (PyCFunction)Ergo_resume, METH_VARARGS, "resume(handle, n)"},
    {"encode", (PyCFunction)Ergo_encode, METH_O, "encode(value) -> bytes"},
    {"decode", (PyCFunction)Ergo_decode, METH_O, "decode(bytes) -> value"},
    /* links, monitors, exit signals, events */
    {"link_op", (PyCFunction)Ergo_link_op, METH_VARARGS, "link_op(what, handle, target, token)"},
    {"send_exit", (PyCFunction)Ergo_send_exit, METH_VARARGS,
     "send_exit(handle, pid, reason, token)"},
    {"proc_exit", (PyCFunction)Ergo_proc_exit, METH_VARARGS, "proc_exit(handle, reason, token)"},
    {"event_op", (PyCFunction)Ergo_event_op, METH_VARARGS,
     "event_op(what, handle, name, value, token)"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Ergo_getset[] = {
    {"fd", (getter)Ergo_get_fd, NULL, "Readable while notes are queued.", NULL},
    {"ready", (getter)Ergo_get_ready, NULL, "True once the component registered the types.",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject ErgoType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "golemnet._golemnet.ErgoNode",
    .tp_basicsize = sizeof(ErgoObject),
    .tp_dealloc = (destructor)Ergo_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "An Ergo node on a Node (low level; see golemnet.ergo).",
    .tp_methods = Ergo_methods,
    .tp_getset = Ergo_getset,
    .tp_init = (initproc)Ergo_init,
    .tp_new = PyType_GenericNew,
};

static gn_edf_arena *static_types;

int gnpy_ergo_init(PyObject *m, PyObject *(*raise)(int))
{
    raise_code = raise;
    static_types = gn_edf_arena_new(0, 0);
    if (!static_types)
        return -1;
    any_slice = gn_edf_type_slice(static_types, gn_edf_type_basic(GN_EDF_ANY));
    any_map = gn_edf_type_map(static_types, gn_edf_type_basic(GN_EDF_ANY),
                              gn_edf_type_basic(GN_EDF_ANY));
    str_any_map = gn_edf_type_map(static_types, gn_edf_type_basic(GN_EDF_STRING),
                                  gn_edf_type_basic(GN_EDF_ANY));
    if (!any_slice || !any_map || !str_any_map || PyType_Ready(&ErgoType) < 0)
        return -1;
    Py_INCREF(&ErgoType);
    if (PyModule_AddObject(m, "ErgoNode", (PyObject *)&ErgoType) < 0)
        return -1;
    static const struct {
        const char *n;
        long v;
    } k[] = {{"ERGO_MSG", EN_MSG},   {"ERGO_RESULT", EN_RESULT}, {"ERGO_REPLY", EN_REPLY},
             {"ERGO_SPAWN", EN_SPAWN}, {"ERGO_INFO", EN_INFO},   {"ERGO_ALIAS", EN_ALIAS},
             {"ERGO_SIGNAL", EN_SIGNAL},
             {"ERGO_STREAM", EN_STREAM}};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (PyModule_AddIntConstant(m, k[i].n, k[i].v) < 0)
            return -1;
    return 0;
}

/* ------------------------------------------------------------------------
 * Remote spawn and application start (golemnet/ergo.h): requests from a
 * process, and factories/applications enabled for remote nodes. The loop
 * cannot wait for Python, so a served spawn is granted on the loop (a new
 * process whose notes carry an id of the loop's), and the consumer hears of
 * it afterwards on the enable's stream token, as an EN_STREAM note whose value
 * is [handle, id, pid, parent, register, factory, node, args] (a consumer that
 * no longer reads that stream frees the handle); a served application start
 * is answered 0 and noted as [node, name, mode, core]. A note that cannot be
 * made fails the request (the new process is freed first).
 * A remote spawn's outcome is an EN_REPLY (the PID, or the error text); an
 * application start's an EN_RESULT.
 */

enum { SP_OP_SPAWN = 1, SP_OP_APP, SP_OP_ENABLE };

typedef struct sp_cmd {
    int op;
    epy_bridge *b;
    epy_proc *ep;
    uint64_t token, stream;
    uint32_t max_procs;
    char node[GN_ERGO_NAME_MAX + 1], name[GN_ERGO_NAME_MAX + 1], reg[GN_ERGO_NAME_MAX + 1];
    char (*nodes)[GN_ERGO_NAME_MAX + 1];
    size_t nnodes;
    bool app, on;
    int mode, qlimit;
    gn_time timeout;
    uint8_t *bytes; /* args: an EDF []any */
    size_t len;
} sp_cmd;

static void sp_spawned(void *arg, int status, const gn_ergo_pid *pid, const char *err_text)
{
    epy_wait *w = arg;
    en_note *n = note_new(EN_REPLY, status, w->token);
    if (n) {
        if (status == 0) {
            gn_edf_value v;
            gn_edf_set_pid(&v, pid->node, strlen(pid->node), pid->id, pid->creation);
            n->bytes = encode_value(&v, &n->len);
            if (!n->bytes)
                n->status = GN_ENOMEM;
        }
        if (err_text)
            n->text = strdup(err_text);
        note_push(w->b, n);
    }
    wait_free(w);
}

/* a note with the list @items (@cnt values) on @stream; 0, or GN_ENOMEM (no note) */
static int sp_note_list(epy_bridge *b, uint64_t stream, gn_edf_value *items, uint32_t cnt)
{
    gn_edf_arena *a = gn_edf_arena_new(0, 0);
    gn_edf_value v;
    en_note *n = a ? note_new(EN_STREAM, 0, stream) : NULL;
    if (n && gn_edf_set_composite(&v, a, any_slice, cnt) == 0) {
        memcpy(gn_edf_items(&v), items, cnt * sizeof *items);
        n->bytes = encode_value(&v, &n->len);
    }
    gn_edf_arena_free(a);
    if (!n || !n->bytes) {
        free(n);
        return GN_ENOMEM;
    }
    note_push(b, n);
    return 0;
}

static int sp_factory(void *arg, gn_ergo_node *en, const gn_ergo_spawn_request *rq,
                      gn_ergo_proc **out, const char **err_text)
{
    epy_enable *e = arg;
    epy_bridge *b = e->b;
    (void)err_text;
    epy_proc *ep = calloc(1, sizeof *ep);
    if (!ep)
        return GN_ENOMEM;
    ep->b = b;
    ep->id = (UINT64_C(1) << 62) + ++b->spawn_seq; /* never a consumer token */
    ep->qlimit = e->qlimit;
    int rc = gn_ergo_spawn(en, NULL, on_msg, ep, &ep->p);
    if (rc < 0) {
        free(ep);
        return rc;
    }
    ep->next = b->procs;
    if (ep->next)
        ep->next->prev = &ep->next;
    ep->prev = &b->procs;
    b->procs = ep;
    gn_ergo_pid pid;
    gn_ergo_proc_pid(ep->p, &pid);
    gn_edf_value it[8];
    gn_edf_set_uint(&it[0], GN_EDF_UINT64, (uint64_t)(uintptr_t)ep);
    gn_edf_set_uint(&it[1], GN_EDF_UINT64, ep->id);
    gn_edf_set_pid(&it[2], pid.node, strlen(pid.node), pid.id, pid.creation);
    gn_edf_set_pid(&it[3], rq->parent.node, strlen(rq->parent.node), rq->parent.id,
                   rq->parent.creation);
    gn_edf_set_string(&it[4], rq->register_name, strlen(rq->register_name));
    gn_edf_set_string(&it[5], rq->factory, strlen(rq->factory));
    gn_edf_set_string(&it[6], rq->node, strlen(rq->node));
    gn_edf_arena *a = gn_edf_arena_new(0, 0);
    if (!a || rq->nargs > UINT32_MAX ||
        gn_edf_set_composite(&it[7], a, any_slice, (uint32_t)rq->nargs) < 0) {
        gn_edf_set_nil_of(&it[7], any_slice);
    } else if (rq->nargs) {
        memcpy(gn_edf_items(&it[7]), rq->args, rq->nargs * sizeof *rq->args);
    }
    rc = sp_note_list(b, e->stream, it, 8);
    gn_edf_arena_free(a);
    if (rc < 0) { /* nobody would hear of it: the process goes, the requester gets the error */
        proc_unlink(ep);
        gn_ergo_proc_free(ep->p);
        free(ep);
        return rc;
    }
    *out = ep->p;
    return 0;
}

static int sp_app(void *arg, gn_ergo_node *en, const gn_ergo_app_request *rq,
                  const char **err_text)
{
    epy_enable *e = arg;
    (void)en;
    (void)err_text;
    gn_edf_value it[4];
    gn_edf_set_string(&it[0], rq->node, strlen(rq->node));
    gn_edf_set_string(&it[1], rq->name, strlen(rq->name));
    gn_edf_set_int(&it[2], GN_EDF_INT64, (int64_t)rq->mode);
    gn_edf_set_pid(&it[3], rq->core.node, strlen(rq->core.node), rq->core.id,
                   rq->core.creation);
    return sp_note_list(e->b, e->stream, it, 4);
}

static int sp_enable_run(sp_cmd *c)
{
    epy_bridge *b = c->b;
    epy_enable **pp = &b->enables;
    while (*pp && ((*pp)->app != c->app || strcmp((*pp)->name, c->name) != 0))
        pp = &(*pp)->next;
    const char *const *nodes = NULL;
    const char *nv[GN_ERGO_ENABLED_NODES_MAX];
    if (c->nnodes > GN_ERGO_ENABLED_NODES_MAX)
        return GN_ELIMIT;
    for (size_t i = 0; i < c->nnodes; i++)
        nv[i] = c->nodes[i];
    if (c->nnodes)
        nodes = nv;
    if (!c->on) {
        int rc = c->app ? gn_ergo_app_disable(b->en, c->name, nodes, c->nnodes)
                        : gn_ergo_spawn_disable(b->en, c->name, nodes, c->nnodes);
        if (rc == 0 && !c->nnodes && *pp) {
            epy_enable *e = *pp;
            *pp = e->next;
            free(e);
        }
        return rc;
    }
    epy_enable *e = *pp;
    bool fresh = !e;
    if (fresh && !(e = calloc(1, sizeof *e)))
        return GN_ENOMEM;
    uint64_t old_stream = e->stream;
    int old_qlimit = e->qlimit;
    e->b = b;
    e->app = c->app;
    snprintf(e->name, sizeof e->name, "%s", c->name);
    e->stream = c->stream;
    e->qlimit = c->qlimit > 0 ? c->qlimit : 1024;
    gn_ergo_spawn_enable_opts eo = {.max_procs = c->max_procs};
    int rc = c->app ? gn_ergo_app_enable(b->en, c->name, nodes, c->nnodes, sp_app, e)
                    : gn_ergo_spawn_enable_ex(b->en, c->name, nodes, c->nnodes, &eo, sp_factory,
                                              e);
    if (rc < 0 && fresh) {
        free(e);
    } else if (rc < 0) { /* unchanged: the consumer keeps the old stream */
        e->stream = old_stream;
        e->qlimit = old_qlimit;
    } else if (fresh) {
        e->next = b->enables;
        b->enables = e;
    }
    return rc;
}

static void sp_run(gn_loop *loop, void *arg)
{
    (void)loop;
    sp_cmd *c = arg;
    epy_bridge *b = c->b;
    gn_edf_arena *a = NULL;
    int rc = 0;
    int kind = c->op == SP_OP_SPAWN ? EN_REPLY : EN_RESULT;
    if (!b->en) {
        rc = GN_ECLOSED;
    } else if (c->op == SP_OP_ENABLE) {
        rc = sp_enable_run(c);
    } else if (!c->ep->p) {
        rc = GN_ECLOSED;
    } else {
        epy_wait *w = wait_new(b, c->ep, c->token);
        if (!w) {
            rc = GN_ENOMEM;
        } else if (c->op == SP_OP_APP) {
            rc = gn_ergo_remote_app_start(c->ep->p, c->node, c->name, (gn_ergo_app_mode)c->mode,
                                          c->timeout, on_result, w);
        } else {
            gn_ergo_spawn_opts o = {.register_name = c->reg[0] ? c->reg : NULL,
                                    .timeout = c->timeout};
            gn_edf_value v;
            if (c->bytes) {
                epy_cmd ec = {.b = b, .bytes = c->bytes, .len = c->len};
                rc = cmd_value(&ec, &a, &v);
                if (rc == 0 && v.kind == GN_EDF_SLICE && !v.nil) {
                    o.args = gn_edf_items(&v);
                    o.nargs = v.cnt;
                } else if (rc == 0 && !(v.kind == GN_EDF_SLICE && v.nil)) {
                    rc = GN_EINVAL;
                }
            }
            if (rc == 0)
                rc = gn_ergo_remote_spawn(c->ep->p, c->node, c->name, &o, sp_spawned, w);
        }
        if (w && rc == 0)
            goto done; /* the callback answers */
        if (w)
            wait_free(w);
    }
    note_result(b, kind, rc, c->token, NULL);
done:
    gn_edf_arena_free(a);
    free(c->bytes);
    free(c->nodes);
    bridge_rele(b);
    free(c);
}

static PyObject *sp_submit(ErgoObject *self, sp_cmd *c)
{
    if (!self->b || !self->b->en) {
        free(c->bytes);
        free(c->nodes);
        free(c);
        return raise_code(GN_ECLOSED);
    }
    c->b = self->b;
    atomic_fetch_add(&self->b->refs, 1);
    int rc = gn_loop_submit(self->b->loop, sp_run, c);
    if (rc < 0) {
        atomic_fetch_sub(&self->b->refs, 1);
        free(c->bytes);
        free(c->nodes);
        free(c);
        return raise_code(rc);
    }
    Py_RETURN_NONE;
}

static int sp_name(char dst[GN_ERGO_NAME_MAX + 1], const char *s, bool empty_ok)
{
    size_t n = strlen(s);
    if ((!empty_ok && n == 0) || n > GN_ERGO_NAME_MAX) {
        raise_code(GN_EINVAL);
        return -1;
    }
    memcpy(dst, s, n + 1);
    return 0;
}

static sp_cmd *sp_new(int op, PyObject *h, unsigned long long tok)
{
    sp_cmd *c = calloc(1, sizeof *c);
    if (!c) {
        PyErr_NoMemory();
        return NULL;
    }
    c->op = op;
    c->token = tok;
    if (h) {
        c->ep = PyLong_AsVoidPtr(h);
        if (!c->ep) {
            free(c);
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "bad process handle");
            return NULL;
        }
    }
    return c;
}

/* remote_spawn(handle, node, factory, register, args (list), timeout_ms, token) */
static PyObject *Ergo_remote_spawn(ErgoObject *self, PyObject *args)
{
    PyObject *h, *list;
    const char *node, *factory, *reg;
    unsigned long long timeout_ms, tok;
    if (!PyArg_ParseTuple(args, "OsszOKK", &h, &node, &factory, &reg, &list, &timeout_ms,
                          &tok))
        return NULL;
    if (!self->b->reg)
        return raise_code(GN_ESTATE);
    sp_cmd *c = sp_new(SP_OP_SPAWN, h, tok);
    if (!c)
        return NULL;
    if (sp_name(c->node, node, false) < 0 || sp_name(c->name, factory, false) < 0 ||
        sp_name(c->reg, reg ? reg : "", true) < 0)
        goto fail;
    int truth = PyObject_IsTrue(list);
    if (truth < 0 || (truth == 1 && !(c->bytes = py_encode(self, list, &c->len))))
        goto fail;
    c->timeout = (gn_time)timeout_ms * GN_MS;
    return sp_submit(self, c);
fail:
    free(c->bytes);
    free(c);
    return NULL;
}

/* remote_app_start(handle, node, name, mode, timeout_ms, token) */
static PyObject *Ergo_remote_app_start(ErgoObject *self, PyObject *args)
{
    PyObject *h;
    const char *node, *name;
    int mode;
    unsigned long long timeout_ms, tok;
    if (!PyArg_ParseTuple(args, "OssiKK", &h, &node, &name, &mode, &timeout_ms, &tok))
        return NULL;
    sp_cmd *c = sp_new(SP_OP_APP, h, tok);
    if (!c)
        return NULL;
    if (sp_name(c->node, node, false) < 0 || sp_name(c->name, name, false) < 0) {
        free(c);
        return NULL;
    }
    c->mode = mode;
    c->timeout = (gn_time)timeout_ms * GN_MS;
    return sp_submit(self, c);
}

/* enable(app, on, name, nodes (sequence of str or None), qlimit, max_procs, stream, token) */
static PyObject *Ergo_enable(ErgoObject *self, PyObject *args)
{
    int app, on, qlimit;
    unsigned int max_procs;
    const char *name;
    PyObject *nodes;
    unsigned long long stream, tok;
    if (!PyArg_ParseTuple(args, "ppsOiIKK", &app, &on, &name, &nodes, &qlimit, &max_procs,
                          &stream, &tok))
        return NULL;
    sp_cmd *c = sp_new(SP_OP_ENABLE, NULL, tok);
    if (!c)
        return NULL;
    c->max_procs = max_procs;
    c->app = app;
    c->on = on;
    c->qlimit = qlimit;
    c->stream = stream;
    PyObject *seq = NULL;
    if (sp_name(c->name, name, false) < 0)
        goto fail;
    if (nodes != Py_None) {
        seq = PySequence_Fast(nodes, "nodes: want a sequence of node names");
        if (!seq)
            goto fail;
        Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
        if (n > (Py_ssize_t)GN_ERGO_ENABLED_NODES_MAX) {
            raise_code(GN_ELIMIT);
            goto fail;
        }
        c->nodes = calloc(n ? (size_t)n : 1, sizeof *c->nodes);
        if (!c->nodes) {
            PyErr_NoMemory();
            goto fail;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            const char *s = PyUnicode_AsUTF8(PySequence_Fast_GET_ITEM(seq, i));
            if (!s || sp_name(c->nodes[i], s, false) < 0)
                goto fail;
        }
        c->nnodes = (size_t)n;
        Py_DECREF(seq);
    }
    return sp_submit(self, c);
fail:
    Py_XDECREF(seq);
    free(c->nodes);
    free(c);
    return NULL;
}

