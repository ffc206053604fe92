/*
 * examples/ergo/ergo_echo.c - a golemnet process that Go Ergo 3.1 nodes (and
 * golemnet nodes) Send to, Call, Link or Monitor, and spawn on
 * (docs/ergo-guide.md).
 *
 *   ergo_echo --name echo@localhost --cookie secret [--registrar-port 4499]
 *             [--process echo] [--port 0] [--allow-spawn worker]
 *
 * Runs a golemnet node with the ergo component (Ergo TCP acceptor plus the
 * embedded registrar, as a Go node with default options) and one process
 * registered as "echo" that
 *   - answers a Call with the request, except a Point (the registered type
 *     "#golemnet.example/demo/Point", Go: struct{X, Y int32; Label string}),
 *     answered with X and Y doubled and Label "doubled";
 *   - prints every message it is sent ("message <from> <value>");
 *   - on the atom 'stop' ends with reason "shutdown", so every process that
 *     links or monitors it gets its exit or down signal with that reason.
 * With --allow-spawn FACTORY, remote nodes may spawn processes from factory
 * FACTORY (Go: RemoteSpawn, RemoteSpawnRegister): each answers calls as echo
 * does and prints what it is sent ("worker <pid> message <from> <value>");
 * the factory prints "spawned <pid> for <node>" and refuses more than one
 * argument. Prints "ready <node> <process> <pid>" once the process runs
 * (and the factory is enabled); exits 0 on SIGINT or SIGTERM, or after
 * 'stop'.
 *
 * Public API only (golemnet/golemnet.h, golemnet/ergo.h). Every gn_ergo_*
 * call runs on the node's loop thread: the main thread posts with
 * gn_loop_submit() and waits.
 */
#include <golemnet/ergo.h>
#include <golemnet/golemnet.h>

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define POINT_TYPE "#golemnet.example/demo/Point"

typedef struct app {
    gn_node *node;
    gn_ergo_node *en;
    gn_ergo_proc *proc;
    gn_timer retry;
    unsigned tries;
    const char *process;
    const char *factory; /* --allow-spawn, or NULL */
    atomic_int state; /* 0 running, 1 done (exit 0), 2 failed (exit 1), 3 detached */
} app;

static volatile sig_atomic_t got_signal;

static void on_os_signal(int sig) { got_signal = sig; }

/* The Go side registers the same struct with edf.RegisterTypeOf(demo.Point{}): the
 * name is "#" + the Go package path + "/" + the type name, and the fields are the
 * struct's, in order. */
static int register_types(void *arg, gn_edf_registry *reg)
{
    (void)arg;
    gn_edf_field f[3] = {{"X", gn_edf_type_basic(GN_EDF_INT32)},
                         {"Y", gn_edf_type_basic(GN_EDF_INT32)},
                         {"Label", gn_edf_type_basic(GN_EDF_STRING)}};
    return gn_edf_register_struct(reg, POINT_TYPE, f, 3, NULL);
}

static bool is_point(const gn_edf_value *v)
{
    return v->kind == GN_EDF_STRUCT && v->type && v->type->name &&
           strcmp(v->type->name, POINT_TYPE) == 0;
}

static void print_value(const gn_edf_value *v)
{
    switch ((gn_edf_kind)v->kind) {
    case GN_EDF_STRING:
        printf("\"%.*s\"", (int)v->u.bytes.len, (const char *)v->u.bytes.base);
        break;
    case GN_EDF_ATOM:
        printf("'%.*s'", (int)v->u.bytes.len, (const char *)v->u.bytes.base);
        break;
    case GN_EDF_INT: case GN_EDF_INT8: case GN_EDF_INT16: case GN_EDF_INT32: case GN_EDF_INT64:
        printf("%lld", (long long)v->u.i);
        break;
    default:
        if (is_point(v))
            printf("Point{X:%lld Y:%lld Label:\"%.*s\"}", (long long)v->u.items[0].u.i,
                   (long long)v->u.items[1].u.i, (int)v->u.items[2].u.bytes.len,
                   (const char *)v->u.items[2].u.bytes.base);
        else
            printf("(%s)", gn_edf_kind_name((gn_edf_kind)v->kind));
    }
}

static bool is_atom(const gn_edf_value *v, const char *text)
{
    size_t n = strlen(text);
    return v->kind == GN_EDF_ATOM && v->u.bytes.len == n && memcmp(v->u.bytes.base, text, n) == 0;
}

/* Answers call @m to @p: the request itself, or a Point with X and Y doubled. */
static void answer_call(app *a, gn_ergo_proc *p, const gn_ergo_msg *m)
{
    if (!is_point(m->value)) {
        gn_ergo_reply(p, &m->from, &m->ref, m->value); /* echo */
        return;
    }
    /* build a Point: a struct value of the registered type, in an arena */
    const gn_edf_registry *reg = gn_ergo_registry(a->en);
    const gn_edf_type *t = gn_edf_registry_find(reg, POINT_TYPE, strlen(POINT_TYPE));
    gn_edf_arena *ar = gn_edf_arena_new(0, 0);
    gn_edf_value pt;
    if (t && ar && gn_edf_set_composite(&pt, ar, t, 3) == 0) {
        gn_edf_set_int(&pt.u.items[0], GN_EDF_INT32, m->value->u.items[0].u.i * 2);
        gn_edf_set_int(&pt.u.items[1], GN_EDF_INT32, m->value->u.items[1].u.i * 2);
        gn_edf_set_string(&pt.u.items[2], "doubled", 7);
        gn_ergo_reply(p, &m->from, &m->ref, &pt); /* encoded before it returns */
    } else {
        gn_ergo_reply_error(p, &m->from, &m->ref, "out of memory");
    }
    gn_edf_arena_free(ar);
}

/* The process's messages (loop thread); m and its value are borrowed for the call. */
static void on_message(gn_ergo_proc *p, void *arg, const gn_ergo_msg *m)
{
    app *a = arg;
    if (m->call) {
        answer_call(a, p, m);
        return;
    }
    printf("message <%s.%llu> ", m->from.node, (unsigned long long)m->from.id);
    print_value(m->value);
    printf("\n");
    fflush(stdout);
    if (is_atom(m->value, "stop")) {
        /* linked processes get an exit signal, monitors a down, both "shutdown" */
        gn_ergo_proc_exit(p, GN_ERGO_REASON_SHUTDOWN);
        a->proc = NULL;
        atomic_store(&a->state, 1);
    }
}

/* The messages of a process a remote node spawned (loop thread): calls are
 * answered as echo answers them, everything else printed. */
static void on_worker(gn_ergo_proc *p, void *arg, const gn_ergo_msg *m)
{
    if (m->call) {
        answer_call(arg, p, m);
        return;
    }
    gn_ergo_pid me;
    gn_ergo_proc_pid(p, &me);
    printf("worker <%s.%llu> message <%s.%llu> ", me.node, (unsigned long long)me.id,
           m->from.node, (unsigned long long)m->from.id);
    print_value(m->value);
    printf("\n");
    fflush(stdout);
}

/* The factory remote nodes spawn from (loop thread, inside the request). The
 * process is the application's: gn_ergo_detach() in stop_fn frees it with the
 * others. On 0 the library registers the name the requester asked for (Go:
 * RemoteSpawnRegister) and answers with the PID. */
static int make_worker(void *arg, gn_ergo_node *en, const gn_ergo_spawn_request *rq,
                       gn_ergo_proc **out, const char **err_text)
{
    if (rq->nargs > 1) {            /* refuse: the requester gets this text as its error */
        *err_text = "worker takes at most one argument";
        return GN_EINVAL;
    }
    int rc = gn_ergo_spawn(en, NULL, on_worker, arg, out);
    if (rc == 0) {
        gn_ergo_pid pid;
        gn_ergo_proc_pid(*out, &pid);
        printf("spawned <%s.%llu> for %s\n", pid.node, (unsigned long long)pid.id, rq->node);
        fflush(stdout);
    }
    return rc;
}

/* Spawns the process (loop thread); the component starts just after the node's
 * start is posted, so a spawn before it answers GN_ESTATE: retry for up to 5 s. */
static void begin(gn_timer *t, void *arg)
{
    (void)t;
    app *a = arg;
    int rc = gn_ergo_spawn(a->en, NULL, on_message, a, &a->proc);
    if (rc == GN_ESTATE && a->tries++ < 500) {
        gn_timer_start(&a->retry, 10 * GN_MS, begin, a);
        return;
    }
    if (rc == 0)
        rc = gn_ergo_register(a->proc, a->process); /* Go: gen.ProcessID{Name, Node} */
    if (rc == 0 && a->factory) {
        /* any node may spawn; at most 16 of these processes live at once (beyond:
         * "limit exceeded"); a list of node names instead of NULL, 0 allows only those */
        gn_ergo_spawn_enable_opts so = {.max_procs = 16};
        rc = gn_ergo_spawn_enable_ex(a->en, a->factory, NULL, 0, &so, make_worker, a);
    }
    if (rc < 0) {
        fprintf(stderr, "ergo_echo: spawn/register/enable: %s\n", gn_err_name(rc));
        atomic_store(&a->state, 2);
        return;
    }
    gn_ergo_pid pid;
    gn_ergo_proc_pid(a->proc, &pid);
    printf("ready %s %s <%s.%llu>\n", gn_ergo_node_name(a->en), a->process, pid.node,
           (unsigned long long)pid.id);
    fflush(stdout);
}

static void start_fn(gn_loop *loop, void *arg)
{
    app *a = arg;
    gn_timer_init(loop, &a->retry);
    begin(&a->retry, a);
}

static void stop_fn(gn_loop *loop, void *arg)
{
    (void)loop;
    app *a = arg;
    gn_timer_stop(&a->retry);
    gn_ergo_detach(a->en); /* frees the process: "normal" for whoever still links it */
    a->en = NULL;
    atomic_store(&a->state, 3);
}

int main(int argc, char **argv)
{
    static char opt[4][300];
    const char *opts[4];
    size_t n = 0;
    const char *name = NULL, *cookie = NULL, *reg_port = "4499", *port = "0";
    app a;
    memset(&a, 0, sizeof a);
    a.process = "echo";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--name"))
            name = argv[i + 1];
        else if (!strcmp(argv[i], "--cookie"))
            cookie = argv[i + 1];
        else if (!strcmp(argv[i], "--registrar-port"))
            reg_port = argv[i + 1];
        else if (!strcmp(argv[i], "--port"))
            port = argv[i + 1];
        else if (!strcmp(argv[i], "--process"))
            a.process = argv[i + 1];
        else if (!strcmp(argv[i], "--allow-spawn"))
            a.factory = argv[i + 1];
    }
    if (!name || !cookie) {
        fprintf(stderr, "usage: ergo_echo --name NAME@HOST --cookie COOKIE "
                        "[--registrar-port P] [--port P] [--process NAME] "
                        "[--allow-spawn FACTORY]\n");
        return 2;
    }
    /* the ergo component's options (docs/ergo.md "Options") */
    const char *kv[][2] = {{"node", name}, {"cookie", cookie}, {"registrar_port", reg_port},
                           {"port", port}};
    for (; n < sizeof kv / sizeof kv[0]; n++) {
        snprintf(opt[n], sizeof opt[n], "ergo.%s=%s", kv[n][0], kv[n][1]);
        opts[n] = opt[n];
    }

    gn_node_config cfg;
    gn_node_config_default(&cfg);
    cfg.protocol_components = "ergo";
    cfg.options = opts;
    cfg.n_options = n;
    int rc = gn_node_new(&cfg, &a.node);
    if (rc < 0) {
        fprintf(stderr, "ergo_echo: node: %s\n", gn_err_name(rc));
        return 1;
    }
    /* attach before the node's loop runs its start: the types go in the registry the
     * component announces in every handshake */
    gn_ergo_config ec = {.types = register_types};
    rc = gn_ergo_attach(a.node, &ec, &a.en);
    if (rc == 0)
        rc = gn_node_start(a.node);
    if (rc < 0) { /* the loop never ran: detaching from this thread is allowed */
        fprintf(stderr, "ergo_echo: start: %s\n", gn_err_name(rc));
        gn_ergo_detach(a.en);
        gn_node_free(a.node);
        return 1;
    }
    rc = gn_loop_submit(gn_node_loop(a.node), start_fn, &a);
    if (rc < 0) {
        /* the loop runs: the Ergo node may only be detached there, and the node not freed
         * with it attached; nothing can run there now, so exit without freeing either */
        fprintf(stderr, "ergo_echo: start: %s\n", gn_err_name(rc));
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_os_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    while (atomic_load(&a.state) == 0 && !got_signal) /* until stopped */
        usleep(20000);
    int status = atomic_load(&a.state) == 2 ? 1 : 0;
    if (atomic_load(&a.state) == 1)
        usleep(200000); /* a Go peer handles the termination frames before the connections
                         * close (docs/ergo-guide.md "Exiting, then closing") */
    if (gn_loop_submit(gn_node_loop(a.node), stop_fn, &a) == 0)
        for (int i = 0; i < 250 && atomic_load(&a.state) != 3; i++) /* bounded: 5 s */
            usleep(20000);
    if (atomic_load(&a.state) != 3) {
        /* stop_fn did not run: the Ergo node is still attached and the loop may be using
         * it; freeing the node now would free it underneath, so exit without freeing */
        fprintf(stderr, "ergo_echo: the node's loop did not stop in time\n");
        return 1;
    }
    gn_node_free(a.node);
    return status;
}
