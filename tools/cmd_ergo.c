/*
 * golemnet CLI - "golemnet ergo": an Ergo node (golemnet/ergo.h) for one
 * operation against a remote Ergo node (send, call, ping, info), or serving
 * a registered process that echoes calls and prints what it receives
 * (docs/cli.md "Ergo").
 *
 * Threads: the node runs its loop on its own thread; everything Ergo runs
 * there (submitted with gn_loop_submit); the main thread waits for the
 * outcome or a signal, reading node events (listening addresses) in 100 ms
 * slices. Output lines are written under one mutex.
 */
#include "golemnet/ergo.h"
#include "golemnet/golemnet.h"
#include "cli.h"

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_USAGE 2
#define ERGO_MAX_OPTS 64
#define ERGO_MAX_LISTEN 16

enum { OP_SEND = 1, OP_CALL, OP_PING, OP_INFO, OP_SERVE, OP_SPAWN };
enum { OP_LINK = 10, OP_MONITOR }; /* wait for the target's exit or down signal */
#define ERGO_MAX_ARGS 16 /* spawn: ARGs; serve: --allow-spawn factories */

typedef struct ergo_cli {
    int op;
    gn_node *node;
    gn_loop *loop;
    gn_ergo_node *en;
    gn_ergo_proc *proc;
    gn_timer timer;   /* spawn retries, connect waits */
    gn_timer deadline;
    gn_time timeout;
    gn_time t0;
    const char *remote;  /* NODE */
    const char *to_name; /* --to (default "echo") */
    uint64_t to_pid;     /* --pid */
    const char *value;
    int value_kind; /* 0 string, 1 atom, 2 int, 3 float, 4 bool */
    bool important;
    gn_ergo_priority prio;
    const char *peer_ma;  /* --peer */
    gn_peer_id peer;
    const char *process;  /* serve: the registered name */
    uint64_t count;       /* serve: exit after this many messages (0 = never) */
    uint64_t got;
    unsigned spawn_tries;
    bool connecting;
    bool to_event;        /* link/monitor --event: the target is an event name */
    atomic_int done;  /* 1 + exit status */
    /* spawn: FACTORY, --register, ARGs; serve: --allow-spawn */
    const char *factory, *reg;
    const char *args[ERGO_MAX_ARGS];
    size_t nargs;
    const char *allow[ERGO_MAX_ARGS];
    size_t nallow;
    uint32_t max_spawn; /* serve: live processes per factory (0: the library's default) */
} ergo_cli;

static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;
static volatile sig_atomic_t ergo_signal;

static void on_signal(int sig) { ergo_signal = sig; }

static void finish(ergo_cli *c, int status)
{
    int zero = 0;
    atomic_compare_exchange_strong(&c->done, &zero, 1 + status);
}

static void out_error(ergo_cli *c, const char *what, int rc, const char *detail)
{
    if (!detail)
        detail = rc == GN_ENOTFOUND ? "no such process, or the node is unknown"
               : rc == GN_EAGAIN ? "the mailbox is full"
               : rc == GN_ECONNRESET ? "the connection went down"
               : rc == GN_ETIMEDOUT ? "no answer in time" : NULL;
    pthread_mutex_lock(&out_mu);
    fprintf(stderr, "golemnet: ergo %s: %s (%s)%s%s\n", what, gn_strerror(rc), gn_err_name(rc),
            detail ? ": " : "", detail ? detail : "");
    if (cli_json) {
        cli_out_begin("error");
        cli_out_str("what", what);
        cli_out_str("error", gn_err_name(rc));
        if (detail)
            cli_out_str("detail", detail);
        cli_out_end();
    }
    pthread_mutex_unlock(&out_mu);
    finish(c, EXIT_FAILURE);
}

/* ---- EDF values as JSON text ---- */

static void put_json_bytes(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        return;
    memcpy(s, p, n);
    s[n] = 0;
    cli_json_str(s); /* stops at a NUL byte inside: such strings are printed cut */
    free(s);
}

static void put_value(const gn_edf_value *v, int depth)
{
    if (depth > 32) {
        fputs("\"...\"", stdout);
        return;
    }
    switch ((gn_edf_kind)v->kind) {
    case GN_EDF_NIL:
        fputs("null", stdout);
        break;
    case GN_EDF_BOOL:
        fputs(v->u.b ? "true" : "false", stdout);
        break;
    case GN_EDF_INT8: case GN_EDF_INT16: case GN_EDF_INT32: case GN_EDF_INT64: case GN_EDF_INT:
        printf("%lld", (long long)v->u.i);
        break;
    case GN_EDF_UINT8: case GN_EDF_UINT16: case GN_EDF_UINT32: case GN_EDF_UINT64:
    case GN_EDF_UINT:
        printf("%llu", (unsigned long long)v->u.u);
        break;
    case GN_EDF_FLOAT32:
        printf("%.9g", (double)v->u.f32);
        break;
    case GN_EDF_FLOAT64:
        printf("%.17g", v->u.f64);
        break;
    case GN_EDF_STRING:
    case GN_EDF_ATOM:
        put_json_bytes(v->u.bytes.base, v->u.bytes.len);
        break;
    case GN_EDF_ERROR:
        if (v->nil) {
            fputs("null", stdout);
        } else {
            fputs("{\"error\":", stdout);
            put_json_bytes(v->u.bytes.base, v->u.bytes.len);
            putchar('}');
        }
        break;
    case GN_EDF_BINARY:
    case GN_EDF_CUSTOM:
        fputs("{\"hex\":\"", stdout);
        for (size_t i = 0; i < v->u.bytes.len; i++)
            printf("%02x", v->u.bytes.base[i]);
        fputs("\"}", stdout);
        break;
    case GN_EDF_PID:
        printf("\"<%.*s.%llu>\"", (int)v->u.pid.node.len, (const char *)v->u.pid.node.base,
               (unsigned long long)v->u.pid.id);
        break;
    case GN_EDF_PROCESSID:
    case GN_EDF_EVENT:
        printf("\"%.*s@%.*s\"", (int)v->u.name.name.len, (const char *)v->u.name.name.base,
               (int)v->u.name.node.len, (const char *)v->u.name.node.base);
        break;
    case GN_EDF_REF:
    case GN_EDF_ALIAS:
        printf("\"Ref#<%.*s.%llu.%llu.%llu>\"", (int)v->u.ref.node.len,
               (const char *)v->u.ref.node.base, (unsigned long long)v->u.ref.id[0],
               (unsigned long long)v->u.ref.id[1], (unsigned long long)v->u.ref.id[2]);
        break;
    case GN_EDF_TIME:
        printf("%lld", (long long)(v->u.time.sec - GN_EDF_TIME_UNIX_OFFSET));
        break;
    case GN_EDF_SLICE:
    case GN_EDF_ARRAY:
        putchar('[');
        for (uint32_t i = 0; !v->nil && i < v->cnt; i++) {
            if (i)
                putchar(',');
            put_value(&v->u.items[i], depth + 1);
        }
        putchar(']');
        break;
    case GN_EDF_MAP:
        /* JSON keys are strings: a non-string key is printed as its JSON text, quoted */
        putchar('{');
        for (uint32_t i = 0; !v->nil && i < v->cnt; i++) {
            const gn_edf_value *k = &v->u.items[2 * i];
            if (i)
                putchar(',');
            if (k->kind == GN_EDF_STRING || k->kind == GN_EDF_ATOM) {
                put_json_bytes(k->u.bytes.base, k->u.bytes.len);
            } else {
                putchar('"');
                if (k->kind >= GN_EDF_INT8 && k->kind <= GN_EDF_INT)
                    printf("%lld", (long long)k->u.i);
                else if (k->kind >= GN_EDF_UINT8 && k->kind <= GN_EDF_UINT)
                    printf("%llu", (unsigned long long)k->u.u);
                else
                    fputs(gn_edf_kind_name((gn_edf_kind)k->kind), stdout);
                putchar('"');
            }
            putchar(':');
            put_value(&v->u.items[2 * i + 1], depth + 1);
        }
        putchar('}');
        break;
    case GN_EDF_STRUCT:
        putchar('{');
        fputs("\"type\":", stdout);
        cli_json_str(v->type->name);
        for (uint32_t i = 0; i < v->cnt; i++) {
            putchar(',');
            cli_json_str(v->type->fields[i].name);
            putchar(':');
            put_value(&v->u.items[i], depth + 1);
        }
        putchar('}');
        break;
    default:
        printf("\"%s\"", gn_edf_kind_name((gn_edf_kind)v->kind));
    }
}

/* key=<value as JSON> (text) or ,"key":<value> (JSON) */
static void out_value(const char *key, const gn_edf_value *v)
{
    printf(cli_json ? ",\"%s\":" : " %s=", key);
    put_value(v, 0);
}

static void out_pid(const char *key, const gn_ergo_pid *p)
{
    char buf[GN_ERGO_NAME_MAX + 32];
    snprintf(buf, sizeof buf, "<%s.%llu>", p->node, (unsigned long long)p->id);
    cli_out_str(key, buf);
}

static double ms_since(ergo_cli *c) { return (double)(gn_now() - c->t0) / (double)GN_MS; }

/* ---- the operation (loop thread) ---- */

static int make_value_of(ergo_cli *c, const char *s, gn_edf_value *v);
static int make_value(ergo_cli *c, gn_edf_value *v) { return make_value_of(c, c->value, v); }

static int make_value_of(ergo_cli *c, const char *s, gn_edf_value *v)
{
    if (!s)
        s = "";
    char *end;
    switch (c->value_kind) {
    case 1:
        gn_edf_set_atom(v, s, strlen(s));
        return 0;
    case 2: {
        long long x = strtoll(s, &end, 0);
        if (!*s || *end)
            return GN_EINVAL;
        gn_edf_set_int(v, GN_EDF_INT, x);
        return 0;
    }
    case 3: {
        double d = strtod(s, &end);
        if (!*s || *end)
            return GN_EINVAL;
        gn_edf_set_float64(v, d);
        return 0;
    }
    case 4:
        if (strcmp(s, "true") && strcmp(s, "false"))
            return GN_EINVAL;
        gn_edf_set_bool(v, !strcmp(s, "true"));
        return 0;
    default:
        gn_edf_set_string(v, s, strlen(s));
        return 0;
    }
}

static gn_ergo_target target_of(ergo_cli *c)
{
    if (c->to_event)
        return gn_ergo_to_event(c->remote, c->to_name);
    if (c->to_pid) {
        gn_ergo_pid pid;
        memset(&pid, 0, sizeof pid);
        snprintf(pid.node, sizeof pid.node, "%s", c->remote);
        pid.id = c->to_pid;
        gn_ergo_remote_info ri;
        if (!strcmp(c->remote, gn_ergo_node_name(c->en)) ||
        gn_ergo_remote_info_get(c->en, c->remote, &ri) == 0)
            pid.creation = ri.creation;
        return gn_ergo_to_pid(&pid);
    }
    return gn_ergo_to_name(c->remote, c->to_name);
}

static void sent_result(void *arg, int status, const char *err_text)
{
    ergo_cli *c = arg;
    if (status < 0) {
        out_error(c, c->op == OP_PING ? "ping" : "send", status, err_text);
        return;
    }
    pthread_mutex_lock(&out_mu);
    cli_out_begin(c->op == OP_PING ? "ergo_pong" : "ergo_sent");
    cli_out_str("node", c->remote);
    cli_out_str("to", c->to_pid ? "pid" : c->to_name);
    if (c->op == OP_PING)
        printf(cli_json ? ",\"rtt_ms\":%.3f" : " rtt_ms=%.3f", ms_since(c));
    else
        printf(cli_json ? ",\"delivered\":%s" : " delivered=%s", c->important ? "true" : "false");
    cli_out_end();
    pthread_mutex_unlock(&out_mu);
    finish(c, EXIT_SUCCESS);
}

/* a plain send: once NODE is connected, the frame is in the carrier's queue; a short
 * grace lets the write go before the exit closes the connection */
static void plain_grace(gn_timer *t, void *arg)
{
    (void)t;
    sent_result(arg, 0, NULL);
}

static void plain_sent(gn_timer *t, void *arg)
{
    (void)t;
    ergo_cli *c = arg;
    gn_ergo_remote_info ri;
    if (!strcmp(c->remote, gn_ergo_node_name(c->en)) ||
        gn_ergo_remote_info_get(c->en, c->remote, &ri) == 0)
        gn_timer_start(&c->timer, 50 * GN_MS, plain_grace, c);
    else
        gn_timer_start(&c->timer, 10 * GN_MS, plain_sent, c); /* the deadline bounds it */
}

static void call_done(void *arg, int status, const gn_edf_value *reply, const char *err_text)
{
    ergo_cli *c = arg;
    if (status < 0) {
        out_error(c, "call", status, err_text);
        return;
    }
    pthread_mutex_lock(&out_mu);
    cli_out_begin("ergo_reply");
    cli_out_str("node", c->remote);
    printf(cli_json ? ",\"rtt_ms\":%.3f" : " rtt_ms=%.3f", ms_since(c));
    out_value("value", reply);
    cli_out_end();
    pthread_mutex_unlock(&out_mu);
    finish(c, EXIT_SUCCESS);
}

static void do_info(ergo_cli *c, const gn_ergo_remote_info *ri)
{
    pthread_mutex_lock(&out_mu);
    cli_out_begin("ergo_info");
    cli_out_str("node", ri->node);
    cli_out_u64("creation", (uint64_t)ri->creation);
    cli_out_u64("flags", ri->flags);
    cli_out_u64("max_message_size", ri->max_message_size);
    cli_out_str("carrier", ri->carrier == 1 ? "tcp" : "stream");
    cli_out_u64("links", ri->links);
    cli_out_str("local", gn_ergo_node_name(c->en));
    cli_out_end();
    pthread_mutex_unlock(&out_mu);
    finish(c, EXIT_SUCCESS);
}

/* spawn: the remote node's answer */
static void spawn_done(void *arg, int status, const gn_ergo_pid *pid, const char *err_text)
{
    ergo_cli *c = arg;
    if (atomic_load(&c->done))
        return; /* ended already (timed out): the detach ends the request (GN_ECLOSED) */
    if (status < 0) {
        out_error(c, "spawn", status, err_text);
        return;
    }
    pthread_mutex_lock(&out_mu);
    cli_out_begin("ergo_spawned");
    cli_out_str("node", c->remote);
    cli_out_str("factory", c->factory);
    out_pid("pid", pid);
    if (c->reg)
        cli_out_str("register", c->reg);
    printf(cli_json ? ",\"rtt_ms\":%.3f" : " rtt_ms=%.3f", ms_since(c));
    cli_out_end();
    pthread_mutex_unlock(&out_mu);
    finish(c, EXIT_SUCCESS);
}

static void do_spawn(ergo_cli *c)
{
    gn_edf_value v[ERGO_MAX_ARGS];
    for (size_t i = 0; i < c->nargs; i++)
        if (make_value_of(c, c->args[i], &v[i]) < 0) {
            out_error(c, "spawn", GN_EINVAL, "an ARG does not parse as the kind asked for");
            return;
        }
    gn_ergo_spawn_opts o = {.register_name = c->reg, .args = v, .nargs = c->nargs,
                            .timeout = c->timeout};
    int rc = gn_ergo_remote_spawn(c->proc, c->remote, c->factory, &o, spawn_done, c);
    if (rc < 0)
        out_error(c, "spawn", rc, NULL);
}

static void on_message(gn_ergo_proc *p, void *arg, const gn_ergo_msg *m);

/* serve --allow-spawn: a remote node's spawn request makes another echo process */
static int serve_factory(void *arg, gn_ergo_node *en, const gn_ergo_spawn_request *rq,
                         gn_ergo_proc **out, const char **err_text)
{
    ergo_cli *c = arg;
    (void)err_text;
    int rc = gn_ergo_spawn(en, NULL, on_message, c, out);
    if (rc < 0)
        return rc;
    gn_ergo_pid pid;
    gn_ergo_proc_pid(*out, &pid);
    pthread_mutex_lock(&out_mu);
    cli_out_begin("ergo_spawn_request");
    out_pid("from", &rq->parent);
    cli_out_str("factory", rq->factory);
    out_pid("pid", &pid);
    if (rq->register_name[0])
        cli_out_str("register", rq->register_name);
    cli_out_u64("args", (uint64_t)rq->nargs);
    cli_out_end();
    pthread_mutex_unlock(&out_mu);
    return 0;
}

/* ---- link / monitor: wait for the signal ---- */

static void out_target(const char *key, const gn_ergo_target *t)
{
    char buf[GN_ERGO_NAME_MAX * 2 + 32];
    if (t->kind == GN_ERGO_TO_PID)
        snprintf(buf, sizeof buf, "<%s.%llu>", t->pid.node, (unsigned long long)t->pid.id);
    else if (t->kind == GN_ERGO_TO_ALIAS)
        snprintf(buf, sizeof buf, "Ref#<%s.%llu.%llu.%llu>", t->alias.node,
                 (unsigned long long)t->alias.id[0], (unsigned long long)t->alias.id[1],
                 (unsigned long long)t->alias.id[2]);
    else
        snprintf(buf, sizeof buf, "%s", t->name);
    cli_out_str(key, buf);
}

static void link_signal(gn_ergo_proc *p, void *arg, const gn_ergo_signal *s)
{
    (void)p;
    ergo_cli *c = arg;
    pthread_mutex_lock(&out_mu);
    cli_out_begin(s->kind == GN_ERGO_SIG_EXIT ? "ergo_exit" : "ergo_down");
    cli_out_str("node", c->remote);
    out_target("target", &s->target);
    cli_out_str("kind", s->target.kind == GN_ERGO_TO_PID ? "pid"
                        : s->target.kind == GN_ERGO_TO_NAME ? "name"
                        : s->target.kind == GN_ERGO_TO_ALIAS ? "alias" : "event");
    cli_out_str("reason", s->reason);
    printf(cli_json ? ",\"direct\":%s" : " direct=%s", s->direct ? "true" : "false");
    cli_out_end();
    pthread_mutex_unlock(&out_mu);
    finish(c, EXIT_SUCCESS);
}

static void linked(void *arg, int status, const char *err_text)
{
    ergo_cli *c = arg;
    const char *what = c->op == OP_LINK ? "link" : "monitor";
    if (status < 0) {
        out_error(c, what, status, err_text);
        return;
    }
    gn_ergo_target to = target_of(c);
    pthread_mutex_lock(&out_mu);
    cli_out_begin(c->op == OP_LINK ? "ergo_linked" : "ergo_monitoring");
    cli_out_str("node", c->remote);
    out_target("target", &to);
    printf(cli_json ? ",\"rtt_ms\":%.3f" : " rtt_ms=%.3f", ms_since(c));
    cli_out_end();
    pthread_mutex_unlock(&out_mu);
}

static void do_link(ergo_cli *c, const gn_ergo_target *to)
{
    int rc = gn_ergo_proc_set_signal_cb(c->proc, link_signal, c);
    if (rc == 0)
        rc = c->op == OP_LINK ? gn_ergo_link(c->proc, to, linked, c)
                              : gn_ergo_monitor(c->proc, to, linked, c);
    if (rc < 0)
        out_error(c, c->op == OP_LINK ? "link" : "monitor", rc, NULL);
}

static void act(ergo_cli *c)
{
    gn_edf_value v;
    int rc;
    c->t0 = gn_now();
    gn_ergo_target to = target_of(c);
    switch (c->op) {
    case OP_SPAWN:
        do_spawn(c);
        return;
    case OP_SEND: {
        if ((rc = make_value(c, &v)) < 0) {
            out_error(c, "send", rc, "the value does not parse as the kind asked for");
            return;
        }
        gn_ergo_send_opts o = {.priority = c->prio, .important = c->important,
                               .on_result = sent_result, .arg = c, .timeout = c->timeout};
        rc = gn_ergo_send(c->proc, &to, &v, &o);
        if (rc < 0)
            out_error(c, "send", rc, NULL);
        else if (!c->important)
            plain_sent(&c->timer, c); /* the frame waits for the connection: see it go */
        return;
    }
    case OP_PING: {
        gn_edf_set_atom(&v, "ping", 4);
        gn_ergo_send_opts o = {.important = true, .on_result = sent_result, .arg = c,
                               .timeout = c->timeout};
        rc = gn_ergo_send(c->proc, &to, &v, &o);
        if (rc < 0)
            out_error(c, "ping", rc, NULL);
        return;
    }
    case OP_CALL: {
        if ((rc = make_value(c, &v)) < 0) {
            out_error(c, "call", rc, "the value does not parse as the kind asked for");
            return;
        }
        gn_ergo_send_opts o = {.priority = c->prio, .important = c->important,
                               .timeout = c->timeout};
        rc = gn_ergo_call(c->proc, &to, &v, &o, call_done, c, NULL);
        if (rc < 0)
            out_error(c, "call", rc, NULL);
        return;
    }
    case OP_LINK:
    case OP_MONITOR:
        do_link(c, &to);
        return;
    default:
        return;
    }
}

/* info waits for the connection: poll the remote's facts every 20 ms (the deadline bounds it) */
static void info_poll(gn_timer *t, void *arg)
{
    (void)t;
    ergo_cli *c = arg;
    gn_ergo_remote_info ri;
    int rc = gn_ergo_remote_info_get(c->en, c->remote, &ri);
    if (rc == 0) {
        if (c->op == OP_INFO)
            do_info(c, &ri);
        else
            act(c); /* --peer: the stream is up */
        return;
    }
    if (rc != GN_ENOTFOUND) {
        out_error(c, "info", rc, NULL);
        return;
    }
    gn_timer_start(&c->timer, 20 * GN_MS, info_poll, c);
}

static void peer_dialed(void *arg, int status, gn_channel *ch)
{
    ergo_cli *c = arg;
    (void)ch;
    if (status < 0) {
        out_error(c, "dial", status, c->peer_ma);
        return;
    }
    int rc = gn_ergo_connect_peer(c->en, &c->peer, c->remote);
    if (rc < 0 && rc != GN_EEXIST) {
        out_error(c, "connect", rc, c->peer_ma);
        return;
    }
    info_poll(&c->timer, c);
}

static void on_message(gn_ergo_proc *p, void *arg, const gn_ergo_msg *m)
{
    ergo_cli *c = arg;
    pthread_mutex_lock(&out_mu);
    cli_out_begin(m->call ? "ergo_call" : "ergo_message");
    out_pid("from", &m->from);
    cli_out_str("to", m->to_kind == GN_ERGO_TO_NAME ? "name"
                      : m->to_kind == GN_ERGO_TO_ALIAS ? "alias" : "pid");
    if (m->important)
        printf(cli_json ? ",\"important\":true" : " important=true");
    if (m->priority != GN_ERGO_PRIO_NORMAL)
        cli_out_u64("priority", (uint64_t)m->priority);
    out_value("value", m->value);
    cli_out_end();
    pthread_mutex_unlock(&out_mu);
    if (m->call) {
        int rc = gn_ergo_reply(p, &m->from, &m->ref, m->value); /* echo */
        if (rc < 0) {
            pthread_mutex_lock(&out_mu);
            fprintf(stderr, "golemnet: ergo serve: reply: %s\n", gn_err_name(rc));
            pthread_mutex_unlock(&out_mu);
        }
    }
    if (c->count && ++c->got >= c->count)
        finish(c, EXIT_SUCCESS);
}

static void client_msg(gn_ergo_proc *p, void *arg, const gn_ergo_msg *m)
{
    (void)p;
    (void)arg;
    (void)m; /* the client's own process receives nothing it waits for */
}

static void begin(gn_timer *t, void *arg)
{
    (void)t;
    ergo_cli *c = arg;
    int rc = gn_ergo_spawn(c->en, NULL, c->op == OP_SERVE ? on_message : client_msg, c,
                           &c->proc);
    if (rc == GN_ESTATE && c->spawn_tries++ < 500) { /* the component starts just after us */
        gn_timer_start(&c->timer, 10 * GN_MS, begin, c);
        return;
    }
    if (rc < 0) {
        out_error(c, "spawn", rc, "is the ergo component running? (see the log)");
        return;
    }
    if (c->op == OP_SERVE) {
        rc = gn_ergo_register(c->proc, c->process);
        if (rc < 0) {
            out_error(c, "register", rc, c->process);
            return;
        }
        for (size_t i = 0; i < c->nallow; i++) {
            gn_ergo_spawn_enable_opts eo = {.max_procs = c->max_spawn};
            rc = gn_ergo_spawn_enable_ex(c->en, c->allow[i], NULL, 0, &eo, serve_factory, c);
            if (rc < 0) {
                out_error(c, "allow-spawn", rc, c->allow[i]);
                return;
            }
        }
        gn_ergo_pid pid;
        gn_ergo_proc_pid(c->proc, &pid);
        pthread_mutex_lock(&out_mu);
        cli_out_begin("ergo_serving");
        cli_out_str("node", gn_ergo_node_name(c->en));
        cli_out_str("process", c->process);
        out_pid("pid", &pid);
        cli_out_end();
        pthread_mutex_unlock(&out_mu);
        return;
    }
    if (c->peer_ma) {
        rc = gn_node_dial(c->node, c->peer_ma, peer_dialed, c, NULL);
        if (rc < 0)
            out_error(c, "dial", rc, c->peer_ma);
        return;
    }
    if (c->op == OP_INFO || c->op == OP_LINK || c->op == OP_MONITOR) {
        /* link/monitor: connected first, so a --pid target carries the node's creation */
        rc = gn_ergo_connect(c->en, c->remote);
        if (rc < 0 && rc != GN_EEXIST) {
            out_error(c, "connect", rc, c->remote);
            return;
        }
        info_poll(&c->timer, c);
        return;
    }
    act(c); /* a send connects by itself */
}

static void expired(gn_timer *t, void *arg)
{
    (void)t;
    ergo_cli *c = arg;
    if (c->op == OP_LINK || c->op == OP_MONITOR) {
        out_error(c, c->op == OP_LINK ? "link" : "monitor", GN_ETIMEDOUT,
                  "no signal within --timeout");
        return;
    }
    out_error(c, c->op == OP_SEND ? "send" : c->op == OP_CALL ? "call"
                 : c->op == OP_PING ? "ping" : c->op == OP_SPAWN ? "spawn" : "info",
              GN_ETIMEDOUT, "no outcome in time");
}

static void start_fn(gn_loop *loop, void *arg)
{
    ergo_cli *c = arg;
    gn_timer_init(loop, &c->timer);
    gn_timer_init(loop, &c->deadline);
    if (c->op != OP_SERVE)
        gn_timer_start(&c->deadline, c->timeout + (c->op >= OP_LINK ? 0 : 2 * GN_S), expired, c);
    begin(&c->timer, c);
}

static void stop_fn(gn_loop *loop, void *arg)
{
    (void)loop;
    ergo_cli *c = arg;
    gn_timer_stop(&c->timer);
    gn_timer_stop(&c->deadline);
    gn_ergo_detach(c->en);
    c->en = NULL;
    atomic_store(&c->done, -1); /* detached */
}

/* ---- arguments ---- */

const char cmd_ergo_help[] =
    "usage: golemnet ergo send NODE VALUE [--to NAME | --pid ID] [--important] [options]\n"
    "       golemnet ergo call NODE VALUE [--to NAME | --pid ID] [options]\n"
    "       golemnet ergo ping NODE [--to NAME] [options]\n"
    "       golemnet ergo info NODE [options]\n"
    "       golemnet ergo spawn NODE FACTORY [--register NAME] [ARG...] [options]\n"
    "       golemnet ergo serve --name NAME@HOST [--process NAME] [--count N]\n"
    "                           [--allow-spawn FACTORY]... [--max-spawn N] [options]\n"
    "       golemnet ergo link|monitor NODE (TARGET [--event] | --pid ID) [options]\n"
    "An Ergo node (golemnet/ergo.h, docs/ergo-node.md) on a short-lived golemnet node:\n"
    "one operation against remote Ergo node NODE (name@host), then exit (0 success,\n"
    "1 failure with an error line); or serve a registered process that prints every\n"
    "message it receives and answers every call with the request (echo).\n\n"
    "  send                          send VALUE to process --to (default \"echo\") on NODE;\n"
    "                                --important waits for the remote's delivery answer\n"
    "  call                          call it with VALUE and print the answer\n"
    "  ping                          an important send of the atom 'ping': the round trip\n"
    "                                (a node that answers \"no such process\" fails it)\n"
    "  info                          connect and print what NODE announced\n"
    "  spawn                         spawn a process from NODE's factory FACTORY with\n"
    "                                ARGs (of the kind VALUE says); print its PID\n"
    "  link, monitor                 link to / monitor TARGET (a name, an --event or\n"
    "                                --pid ID) and print its exit / down signal (exit 1\n"
    "                                when none came within --timeout)\n"
    "  --event                       link/monitor: TARGET is an event name\n"
    "  --register NAME               spawn: the name the new process registers\n"
    "  --allow-spawn FACTORY         serve: let remote nodes spawn echo processes from\n"
    "                                FACTORY (repeatable; anything else is refused)\n"
    "  --max-spawn N                 serve: live processes per factory (default 1024)\n"
    "  VALUE                         a string, or with --atom / --int / --float / --bool\n"
    "                                that kind (Go gen.Atom, int, float64, bool)\n"
    "  --to NAME                     the registered name of the target (default echo)\n"
    "  --pid ID                      the target is process ID on NODE instead\n"
    "  --priority normal|high|max    message priority\n"
    "  --timeout S                   answer deadline, seconds (default 10)\n\n"
    "node options:\n"
    "  --name NAME@HOST              our Ergo node name (default cli-<pid>@localhost)\n"
    "  --cookie C                    the cluster cookie (Ergo TCP: needed unless --peer)\n"
    "  --host H, --port P            our acceptor's address (default 127.0.0.1, any port;\n"
    "                                serve: port 11144 and up, as Ergo)\n"
    "  --registrar embedded|etcd|off where names resolve (default embedded)\n"
    "  --registrar-port P            the embedded registrar's port (default 4499)\n"
    "  --route 'PATTERN HOST:PORT'   a static route (repeatable; docs/ergo.md)\n"
    "  --option KEY=VALUE            any ergo component option (repeatable)\n"
    "  --peer MA/p2p/ID              reach NODE over /golem/ergo/1.0.0 on a libp2p channel\n"
    "                                to this peer instead of Ergo TCP (no cookie needed)\n"
    "  --listen MA                   serve: also listen for libp2p channels (repeatable)\n"
    "  --process NAME                serve: the registered name (default echo)\n"
    "  --count N                     serve: exit after N messages (default: run until\n"
    "                                SIGINT/SIGTERM)\n"
    "  --json                        one JSON object per line\n\n"
    "Output: one line per event (ergo_sent, ergo_reply, ergo_spawned, ergo_exit, error,\n"
    "...; the list and their fields: docs/cli.md \"Ergo\"). Values are printed as JSON:\n"
    "strings and atoms as strings, binaries as {\"hex\":...}, PIDs as \"<node.id>\",\n"
    "registered structs as objects with \"type\".\n";

static int usage_err(const char *fmt, ...) GN_PRINTF(1, 2);
static int usage_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("golemnet: ergo: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nusage: see 'golemnet ergo --help'\n", stderr);
    return EXIT_USAGE;
}

int cmd_ergo(int argc, char **argv)
{
    ergo_cli c;
    memset(&c, 0, sizeof c);
    c.to_name = "echo";
    c.process = "echo";
    c.timeout = 10 * GN_S;
    if (argc < 1)
        return usage_err("%s", "missing operation: send, call, ping, info, spawn or serve");
    const char *opname = argv[0];
    c.op = !strcmp(opname, "send") ? OP_SEND : !strcmp(opname, "call") ? OP_CALL
         : !strcmp(opname, "ping") ? OP_PING : !strcmp(opname, "info") ? OP_INFO
         : !strcmp(opname, "serve") ? OP_SERVE : !strcmp(opname, "spawn") ? OP_SPAWN : 0;
    if (!c.op)
        c.op = !strcmp(opname, "link") ? OP_LINK : !strcmp(opname, "monitor") ? OP_MONITOR : 0;
    if (!c.op)
        return usage_err("unknown operation '%s'", opname);
    static char optbuf[ERGO_MAX_OPTS][600];
    const char *opts[ERGO_MAX_OPTS];
    size_t nopts = 0;
    const char *listen[ERGO_MAX_LISTEN];
    size_t nlisten = 0;
    const char *name = NULL, *cookie = NULL, *port = NULL;
    const char *pos[2];
    size_t npos = 0;
#define ADD_OPT(...)                                                                      \
    do {                                                                                  \
        if (nopts == ERGO_MAX_OPTS)                                                       \
            return usage_err("%s", "too many options");                                   \
        snprintf(optbuf[nopts], sizeof optbuf[nopts], __VA_ARGS__);                       \
        opts[nopts] = optbuf[nopts];                                                      \
        nopts++;                                                                          \
    } while (0)
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (!strcmp(a, "--important")) {
            c.important = true;
        } else if (!strcmp(a, "--atom")) {
            c.value_kind = 1;
        } else if (!strcmp(a, "--int")) {
            c.value_kind = 2;
        } else if (!strcmp(a, "--float")) {
            c.value_kind = 3;
        } else if (!strcmp(a, "--bool")) {
            c.value_kind = 4;
        } else if (!strcmp(a, "--event")) {
            c.to_event = true;
        } else if (a[0] == '-' && a[1] == '-' && !has) {
            return usage_err("%s needs a value", a);
        } else if (!strcmp(a, "--to")) {
            c.to_name = argv[++i];
        } else if (!strcmp(a, "--pid")) {
            char *end;
            c.to_pid = strtoull(argv[++i], &end, 10);
            if (*end || !c.to_pid)
                return usage_err("--pid %s: want a process ID (1001 and up)", argv[i]);
        } else if (!strcmp(a, "--priority")) {
            const char *p = argv[++i];
            if (!strcmp(p, "normal"))
                c.prio = GN_ERGO_PRIO_NORMAL;
            else if (!strcmp(p, "high"))
                c.prio = GN_ERGO_PRIO_HIGH;
            else if (!strcmp(p, "max"))
                c.prio = GN_ERGO_PRIO_MAX;
            else
                return usage_err("--priority %s: want normal, high or max", p);
        } else if (!strcmp(a, "--timeout")) {
            char *end;
            double s = strtod(argv[++i], &end);
            if (*end || !(s > 0 && s <= 3600))
                return usage_err("--timeout %s: want seconds, 0 < S <= 3600", argv[i]);
            c.timeout = (gn_time)(s * (double)GN_S);
        } else if (!strcmp(a, "--name")) {
            name = argv[++i];
        } else if (!strcmp(a, "--cookie")) {
            cookie = argv[++i];
        } else if (!strcmp(a, "--host")) {
            ADD_OPT("ergo.host=%s", argv[++i]);
        } else if (!strcmp(a, "--port")) {
            port = argv[++i];
        } else if (!strcmp(a, "--registrar")) {
            ADD_OPT("ergo.registrar=%s", argv[++i]);
        } else if (!strcmp(a, "--registrar-port")) {
            ADD_OPT("ergo.registrar_port=%s", argv[++i]);
        } else if (!strcmp(a, "--route")) {
            ADD_OPT("ergo.route=%s", argv[++i]);
        } else if (!strcmp(a, "--option")) {
            const char *o = argv[++i];
            ADD_OPT("%s%s", strncmp(o, "ergo.", 5) ? "ergo." : "", o);
        } else if (!strcmp(a, "--peer")) {
            c.peer_ma = argv[++i];
        } else if (!strcmp(a, "--listen")) {
            if (nlisten == ERGO_MAX_LISTEN)
                return usage_err("%s", "too many --listen");
            listen[nlisten++] = argv[++i];
        } else if (!strcmp(a, "--register")) {
            c.reg = argv[++i];
        } else if (!strcmp(a, "--allow-spawn")) {
            if (c.nallow == ERGO_MAX_ARGS)
                return usage_err("%s", "too many --allow-spawn");
            c.allow[c.nallow++] = argv[++i];
        } else if (!strcmp(a, "--max-spawn")) {
            char *end;
            unsigned long long m = strtoull(argv[++i], &end, 10);
            if (*end || m == 0 || m > UINT32_MAX)
                return usage_err("--max-spawn %s: want a number from 1 to 4294967295", argv[i]);
            c.max_spawn = (uint32_t)m;
        } else if (!strcmp(a, "--process")) {
            c.process = argv[++i];
        } else if (!strcmp(a, "--count")) {
            char *end;
            c.count = strtoull(argv[++i], &end, 10);
            if (*end)
                return usage_err("--count %s: want a number", argv[i]);
        } else if (a[0] == '-' && a[1] == '-' && a[2]) {
            return usage_err("unknown option '%s'", a);
        } else if (npos < 2) {
            pos[npos++] = a;
        } else if (c.op == OP_SPAWN && c.nargs < ERGO_MAX_ARGS) {
            c.args[c.nargs++] = a;
        } else {
            return usage_err("unexpected argument '%s'", a);
        }
    }
    size_t want = c.op == OP_SERVE ? 0
                  : (c.op == OP_SEND || c.op == OP_CALL || c.op == OP_SPAWN) ? 2 : 1;
    if (c.op == OP_LINK || c.op == OP_MONITOR) {
        want = c.to_pid ? 1 : 2;
        if (npos != want || (c.to_pid && c.to_event))
            return usage_err("%s", "want NODE TARGET (a name, or an event with --event), "
                                   "or NODE --pid ID");
        if (want == 2)
            c.to_name = pos[1];
    }
    if (npos != want)
        return usage_err("%s", c.op == OP_SERVE ? "serve takes no NODE"
                                : c.op == OP_SPAWN ? "want NODE FACTORY"
                                : want == 2 ? "want NODE VALUE" : "want NODE");
    if (c.op == OP_SPAWN)
        c.factory = pos[1];
    if (c.op != OP_SERVE) {
        c.remote = pos[0];
        if (!strchr(c.remote, '@'))
            return usage_err("NODE %s: want name@host", c.remote);
        c.value = want == 2 && c.op < OP_LINK ? pos[1] : NULL;
    }
    if (c.op == OP_SERVE && !name)
        return usage_err("%s", "serve needs --name NAME@HOST");
    if (c.op != OP_SERVE && !cookie && !c.peer_ma)
        return usage_err("%s", "reaching NODE over Ergo TCP needs --cookie (or use --peer)");
    if (c.peer_ma) {
        const char *p2p = strstr(c.peer_ma, "/p2p/");
        for (const char *q = p2p; q; q = strstr(q + 5, "/p2p/")) /* the last one */
            p2p = q;
        if (!p2p || gn_peer_id_parse(p2p + 5, strlen(p2p + 5), &c.peer) < 0)
            return usage_err("--peer %s: want MULTIADDR/p2p/PEER_ID", c.peer_ma);
    }
    char namebuf[64];
    if (!name) {
        snprintf(namebuf, sizeof namebuf, "cli-%ld@localhost", (long)getpid());
        name = namebuf;
    }
    ADD_OPT("ergo.node=%s", name);
    if (cookie)
        ADD_OPT("ergo.cookie=%s", cookie);
    if (port)
        ADD_OPT("ergo.port=%s", port);
    else if (c.op != OP_SERVE && cookie)
        ADD_OPT("ergo.port=0"); /* a client's acceptor takes any free port */
#undef ADD_OPT

    gn_log_set(cli_log, NULL, GN_LOG_WARNING);
    gn_node_config cfg;
    gn_node_config_default(&cfg);
    cfg.protocol_components = "ergo";
    cfg.options = opts;
    cfg.n_options = nopts;
    cfg.listen = listen;
    cfg.n_listen = nlisten;
    int rc = gn_node_new(&cfg, &c.node);
    if (rc < 0) {
        out_error(&c, "node", rc, "bad option? (see the log)");
        return EXIT_FAILURE;
    }
    c.loop = gn_node_loop(c.node);
    rc = gn_ergo_attach(c.node, NULL, &c.en);
    if (rc == 0)
        rc = gn_node_start(c.node);
    if (rc == 0)
        rc = gn_loop_submit(c.loop, start_fn, &c);
    if (rc < 0) {
        out_error(&c, "start", rc, NULL);
        gn_node_free(c.node);
        return EXIT_FAILURE;
    }
    cli_signals_catch(on_signal, NULL);
    cli_sigpipe_ignore();
    /* wait: the outcome, a signal, or the node's end; print the listening addresses */
    while (atomic_load(&c.done) == 0 && !ergo_signal) {
        gn_node_event ev;
        rc = gn_node_next_event(c.node, &ev, 100 * GN_MS);
        if (rc == GN_ECLOSED)
            break;
        if (rc < 0)
            continue;
        if (ev.type == GN_NODE_EV_LISTENING || ev.type == GN_NODE_EV_LISTEN_FAILED) {
            pthread_mutex_lock(&out_mu);
            cli_out_begin(ev.type == GN_NODE_EV_LISTENING ? "listening" : "listen_failed");
            char pid[GN_PEER_ID_MAX_STRLEN];
            gn_peer_id self;
            gn_node_peer_id(c.node, &self);
            gn_peer_id_to_string(&self, pid, sizeof pid);
            cli_out_str("addr", ev.addr);
            cli_out_str("peer", pid);
            cli_out_end();
            pthread_mutex_unlock(&out_mu);
        } else if (ev.type == GN_NODE_EV_START_FAILED) {
            out_error(&c, "start", ev.status, ev.protocol);
        }
        if (ev.message)
            gn_rcbuf_rele(ev.message);
    }
    int status = atomic_load(&c.done);
    status = status > 0 ? status - 1 : (ergo_signal ? EXIT_SUCCESS : EXIT_FAILURE);
    /* detach on the loop, then close and free the node */
    if (gn_loop_submit(c.loop, stop_fn, &c) == 0) {
        for (int i = 0; i < 100 && atomic_load(&c.done) != -1; i++) /* bounded: 5 s */
            usleep(50000);
    }
    gn_node_free(c.node);
    return status;
}
