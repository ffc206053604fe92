/*
 * ergo_spawn_test: remote spawn and application start (include/golemnet/ergo.h
 * "remote spawn and application start", protocols/ergo/ergo_spawn.c) between
 * two golemnet nodes on one loop, over a /golem/ergo/1.0.0 stream and over
 * Ergo TCP (connect by name through the embedded registrar):
 *  - nothing enabled: "unknown name"; enabled: the factory gets the request
 *    (parent, register name, args) and the requester the new PID, which then
 *    receives a message sent to that PID and to the registered name; the
 *    name again: "resource is taken"; a failing factory: its text; a node
 *    list without the requester: "not allowed", with it: granted; disabling;
 *  - application start refused ("unknown name", "not allowed"), granted
 *    (mode and CorePID seen), failing with the application's text;
 *  - a request nobody answers times out, connection loss ends a pending one
 *    (GN_ECONNRESET), max_pending bounds them, bad arguments;
 *  - over TCP the emitted MessageSpawn / MessageApplicationStart and their
 *    MessageResult have the layout of ../shared/vectors/ergo/enp_remote_spawn.hex
 *    and enp_remote_app_start.hex, field by field (ids and refs may differ);
 *  - edges: the per-factory cap, a bad disable list, too many args, factories
 *    that register the name themselves, return nothing, fail with *out set,
 *    return another node's process, disconnect the requester; the connection
 *    cut inside the send; GN_ECLOSED on process end and detach;
 *  - our own flags without RemoteSpawn / RemoteApplicationStart: ignored.
 */
#define _XOPEN_SOURCE 700
#include "gn_test.h"

#define GN_TNODE_EXTRA gn_ergo_node *en;
#include "golemnet/ergo.h"
#include "enp.h"
#include "ergo_node_int.h"
#include "gn_tnode.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- processes that record what they get ------------------------------------------------ */

typedef struct rproc {
    gn_ergo_proc *p;
    unsigned got;
    char last[128];
    gn_ergo_target_kind last_kind;
} rproc;

static void on_msg(gn_ergo_proc *p, void *arg, const gn_ergo_msg *m)
{
    (void)p;
    rproc *r = arg;
    r->got++;
    r->last_kind = m->to_kind;
    r->last[0] = '\0';
    if (m->value->kind == GN_EDF_STRING)
        snprintf(r->last, sizeof r->last, "%.*s", (int)m->value->u.bytes.len,
                 (const char *)m->value->u.bytes.base);
}

typedef struct want {
    const unsigned *n;
    unsigned min;
} want;
static bool reached(void *arg)
{
    want *w = arg;
    return *w->n >= w->min;
}
#define WAIT_FOR(counter, count) \
    do { want w_ = {&(counter), (count)}; CHECK(run_until(reached, &w_, 8000)); } while (0)

static gn_edf_value str(const char *s)
{
    gn_edf_value v;
    gn_edf_set_string(&v, s, strlen(s));
    return v;
}

/* ---- the serving side: a factory and an application -------------------------------------- */

typedef struct factory {
    tnode *t;
    unsigned calls;
    rproc kids[8];
    unsigned nkids;
    char parent_node[GN_ERGO_NAME_MAX + 1], reg[GN_ERGO_NAME_MAX + 1], node[GN_ERGO_NAME_MAX + 1];
    uint64_t parent_id, leader_id;
    char arg0[64];
    int64_t arg1;
    size_t nargs;
} factory;

static int make_worker(void *arg, gn_ergo_node *en, const gn_ergo_spawn_request *rq,
                       gn_ergo_proc **out, const char **err_text)
{
    factory *f = arg;
    f->calls++;
    CHECK(en == f->t->en);
    snprintf(f->parent_node, sizeof f->parent_node, "%s", rq->parent.node);
    snprintf(f->node, sizeof f->node, "%s", rq->node);
    snprintf(f->reg, sizeof f->reg, "%s", rq->register_name);
    f->parent_id = rq->parent.id;
    f->leader_id = rq->leader.id;
    f->nargs = rq->nargs;
    f->arg0[0] = '\0';
    if (rq->nargs >= 1 && rq->args[0].kind == GN_EDF_STRING)
        snprintf(f->arg0, sizeof f->arg0, "%.*s", (int)rq->args[0].u.bytes.len,
                 (const char *)rq->args[0].u.bytes.base);
    if (rq->nargs >= 2 && rq->args[1].kind >= GN_EDF_INT8 && rq->args[1].kind <= GN_EDF_INT)
        f->arg1 = rq->args[1].u.i;
    CHECK(rq->options != NULL && rq->options->kind == GN_EDF_STRUCT);
    if (!strcmp(f->arg0, "fail")) {
        *err_text = "no workers today";
        return GN_EINVAL;
    }
    CHECK(f->nkids < 8);
    rproc *r = &f->kids[f->nkids++];
    memset(r, 0, sizeof *r);
    int rc = gn_ergo_spawn(en, NULL, on_msg, r, &r->p);
    if (rc == 0)
        *out = r->p;
    return rc;
}

typedef struct appl {
    unsigned calls;
    gn_ergo_app_mode mode;
    uint64_t core_id;
    char node[GN_ERGO_NAME_MAX + 1];
    bool fail;
} appl;

static int start_app(void *arg, gn_ergo_node *en, const gn_ergo_app_request *rq,
                     const char **err_text)
{
    (void)en;
    appl *a = arg;
    a->calls++;
    a->mode = rq->mode;
    a->core_id = rq->core.id;
    snprintf(a->node, sizeof a->node, "%s", rq->node);
    CHECK(rq->options != NULL);
    if (a->fail) {
        *err_text = "app failed to start";
        return GN_ECALLBACK;
    }
    return 0;
}

/* ---- the requesting side ------------------------------------------------------------------ */

typedef struct sres {
    unsigned n;
    int status;
    gn_ergo_pid pid;
    char text[64];
} sres;

static void on_spawned(void *arg, int status, const gn_ergo_pid *pid, const char *text)
{
    sres *s = arg;
    s->n++;
    s->status = status;
    CHECK(status == 0 ? pid != NULL : pid == NULL);
    CHECK((status == GN_ECALLBACK) == (text != NULL));
    memset(&s->pid, 0, sizeof s->pid);
    if (pid)
        s->pid = *pid;
    snprintf(s->text, sizeof s->text, "%s", text ? text : "");
}

static void on_started(void *arg, int status, const char *text)
{
    sres *s = arg;
    s->n++;
    s->status = status;
    CHECK((status == GN_ECALLBACK) == (text != NULL));
    snprintf(s->text, sizeof s->text, "%s", text ? text : "");
}

/* ---- nodes -------------------------------------------------------------------------------- */

/* each node registers the atoms the captures' node had cached, in the same order, so
 * its own name gets the same cache id (alpha 257, beta 258) */
static int reg_self(void *arg, gn_edf_registry *r)
{
    static const char *const alpha[] = {"golem_cached", "alpha@localhost", NULL};
    static const char *const beta[] = {"golem_event_cached", "golem_named_cached",
                                       "beta@localhost", NULL};
    const char *const *l = !strcmp(arg, "alpha@localhost") ? alpha : beta;
    for (; *l; l++) {
        int rc = gn_edf_register_atom(r, *l, strlen(*l), NULL);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static bool comp_up(void *arg) { return gn_ergo_node_name(((tnode *)arg)->en)[0] != '\0'; }

static void enode_up(tnode *t, uint32_t seed, const char *const *opts, size_t nopt, bool listen,
                     const char *self)
{
    nopts o = {0};
    o.protocol_components = "ergo";
    o.options = opts;
    o.n_options = nopt;
    node_up(t, seed, &o);
    gn_ergo_config cfg = {.types = reg_self, .types_arg = (void *)self};
    CHECK_OK(gn_ergo_attach(t->n, &cfg, &t->en));
    if (listen) {
        CHECK_OK(gn_node_listen(t->n, "/ip4/127.0.0.1/tcp/0", NULL));
        CHECK(run_until(got_listen, t, 5000));
    }
    CHECK(run_until(comp_up, t, 5000));
}

static void enode_down(tnode *t)
{
    gn_ergo_detach(t->en);
    t->en = NULL;
    node_down(t);
}

static gn_ergo_pid pid_of(gn_ergo_proc *p)
{
    gn_ergo_pid pid;
    gn_ergo_proc_pid(p, &pid);
    return pid;
}

static bool peer_up(void *arg)
{
    gn_ergo_remote_info i;
    tnode *t = arg;
    return gn_ergo_remote_info_get(t->en, "beta@localhost", &i) == 0;
}

/* one spawn request from @p to beta, waited for */
static void spawn_wait(gn_ergo_proc *p, const char *factory_name, const gn_ergo_spawn_opts *o,
                       sres *s)
{
    unsigned n = s->n;
    CHECK_OK(gn_ergo_remote_spawn(p, "beta@localhost", factory_name, o, on_spawned, s));
    WAIT_FOR(s->n, n + 1);
}

static void app_wait(gn_ergo_proc *p, const char *app, gn_ergo_app_mode mode, sres *s)
{
    unsigned n = s->n;
    CHECK_OK(gn_ergo_remote_app_start(p, "beta@localhost", app, mode, 0, on_started, s));
    WAIT_FOR(s->n, n + 1);
}

/* every permission case and outcome, alpha (@a) asking beta (@b) */
static void spawn_cases(tnode *a, tnode *b)
{
    rproc drv;
    memset(&drv, 0, sizeof drv);
    CHECK_OK(gn_ergo_spawn(a->en, NULL, on_msg, &drv, &drv.p));
    sres s = {0};
    factory f = {.t = b};
    /* nothing enabled: Ergo's gen.ErrNameUnknown */
    spawn_wait(drv.p, "remote_worker", NULL, &s);
    CHECK_EQ(s.status, GN_ECALLBACK);
    CHECK_STR(s.text, "unknown name");
    /* enabled for any node: granted, with the register name and the args */
    CHECK_OK(gn_ergo_spawn_enable(b->en, "remote_worker", NULL, 0, make_worker, &f));
    gn_edf_value args[2];
    args[0] = str("golem-arg");
    CHECK_OK(gn_edf_set_int(&args[1], GN_EDF_INT, 42));
    gn_ergo_spawn_opts o = {.register_name = "golem_worker", .args = args, .nargs = 2};
    spawn_wait(drv.p, "remote_worker", &o, &s);
    CHECK_EQ(s.status, 0);
    CHECK_EQ(f.calls, 1u);
    CHECK_STR(f.node, "alpha@localhost");
    CHECK_STR(f.parent_node, "alpha@localhost");
    CHECK_EQ(f.parent_id, pid_of(drv.p).id);
    CHECK_EQ(f.leader_id, 1u); /* ParentLeader: the requesting node's core */
    CHECK_STR(f.reg, "golem_worker");
    CHECK_EQ(f.nargs, 2u);
    CHECK_STR(f.arg0, "golem-arg");
    CHECK_EQ(f.arg1, 42);
    gn_ergo_pid kid = pid_of(f.kids[0].p);
    CHECK_STR(s.pid.node, "beta@localhost");
    CHECK_EQ(s.pid.id, kid.id);
    CHECK_EQ(s.pid.creation, gn_ergo_node_creation(b->en));
    /* the new process gets what is sent to its PID and to its registered name */
    gn_ergo_target to = gn_ergo_to_pid(&s.pid);
    gn_edf_value v = str("to-the-pid");
    CHECK_OK(gn_ergo_send(drv.p, &to, &v, NULL));
    WAIT_FOR(f.kids[0].got, 1);
    CHECK_STR(f.kids[0].last, "to-the-pid");
    CHECK_EQ(f.kids[0].last_kind, GN_ERGO_TO_PID);
    to = gn_ergo_to_name("beta@localhost", "golem_worker");
    v = str("to-the-name");
    CHECK_OK(gn_ergo_send(drv.p, &to, &v, NULL));
    WAIT_FOR(f.kids[0].got, 2);
    CHECK_STR(f.kids[0].last, "to-the-name");
    CHECK_EQ(f.kids[0].last_kind, GN_ERGO_TO_NAME);
    /* the name again: taken, and the factory is not asked */
    spawn_wait(drv.p, "remote_worker", &o, &s);
    CHECK_EQ(s.status, GN_ECALLBACK);
    CHECK_STR(s.text, "resource is taken");
    CHECK_EQ(f.calls, 1u);
    /* without a name, twice: two processes */
    gn_ergo_spawn_opts plain = {0};
    spawn_wait(drv.p, "remote_worker", &plain, &s);
    CHECK_EQ(s.status, 0);
    uint64_t second = s.pid.id;
    spawn_wait(drv.p, "remote_worker", NULL, &s);
    CHECK_EQ(s.status, 0);
    CHECK(s.pid.id != second && s.pid.id != kid.id);
    CHECK_EQ(f.nkids, 3u);
    /* a failing factory: its text */
    args[0] = str("fail");
    gn_ergo_spawn_opts bad = {.args = args, .nargs = 1};
    spawn_wait(drv.p, "remote_worker", &bad, &s);
    CHECK_EQ(s.status, GN_ECALLBACK);
    CHECK_STR(s.text, "no workers today");
    /* a node list without alpha: not allowed; with alpha added: granted */
    const char *gamma[] = {"gamma@localhost"}, *alpha[] = {"alpha@localhost"};
    CHECK_OK(gn_ergo_spawn_enable(b->en, "listed", gamma, 1, make_worker, &f));
    spawn_wait(drv.p, "listed", NULL, &s);
    CHECK_EQ(s.status, GN_ECALLBACK);
    CHECK_STR(s.text, "not allowed");
    CHECK_OK(gn_ergo_spawn_enable(b->en, "listed", alpha, 1, make_worker, &f));
    spawn_wait(drv.p, "listed", NULL, &s);
    CHECK_EQ(s.status, 0);
    /* disabled for alpha: not allowed again; disabled altogether: unknown name */
    CHECK_OK(gn_ergo_spawn_disable(b->en, "listed", alpha, 1));
    spawn_wait(drv.p, "listed", NULL, &s);
    CHECK_STR(s.text, "not allowed");
    CHECK_OK(gn_ergo_spawn_disable(b->en, "listed", NULL, 0));
    CHECK_EQ(gn_ergo_spawn_disable(b->en, "listed", NULL, 0), GN_ENOTFOUND);
    spawn_wait(drv.p, "listed", NULL, &s);
    CHECK_STR(s.text, "unknown name");
    /* an application-start name does not enable a factory of that name */
    appl ap = {0};
    CHECK_OK(gn_ergo_app_enable(b->en, "golem_app", NULL, 0, start_app, &ap));
    spawn_wait(drv.p, "golem_app", NULL, &s);
    CHECK_STR(s.text, "unknown name");

    /* application start: granted (mode, CorePID), failing, refused */
    app_wait(drv.p, "golem_app", GN_ERGO_APP_PERMANENT, &s);
    CHECK_EQ(s.status, 0);
    CHECK_EQ(ap.calls, 1u);
    CHECK_EQ(ap.mode, GN_ERGO_APP_PERMANENT);
    CHECK_EQ(ap.core_id, pid_of(drv.p).id);
    CHECK_STR(ap.node, "alpha@localhost");
    ap.fail = true;
    app_wait(drv.p, "golem_app", GN_ERGO_APP_DEFAULT, &s);
    CHECK_EQ(s.status, GN_ECALLBACK);
    CHECK_STR(s.text, "app failed to start");
    app_wait(drv.p, "other_app", GN_ERGO_APP_TEMPORARY, &s);
    CHECK_STR(s.text, "unknown name");
    CHECK_OK(gn_ergo_app_enable(b->en, "listed_app", gamma, 1, start_app, &ap));
    app_wait(drv.p, "listed_app", GN_ERGO_APP_TRANSIENT, &s);
    CHECK_STR(s.text, "not allowed");
    CHECK_EQ(ap.calls, 2u);
    CHECK_OK(gn_ergo_app_disable(b->en, "golem_app", NULL, 0));
    app_wait(drv.p, "golem_app", GN_ERGO_APP_DEFAULT, &s);
    CHECK_STR(s.text, "unknown name");
    CHECK_EQ(ap.calls, 2u);

    /* nobody answers (beta's Ergo node detached, the connection stays): timeouts;
     * max_pending bounds the outstanding requests; connection loss ends them */
    gn_ergo_spawn_disable(b->en, "remote_worker", NULL, 0);
    for (unsigned i = 0; i < f.nkids; i++)
        gn_ergo_proc_free(f.kids[i].p);
    gn_ergo_detach(b->en);
    b->en = NULL;
    gn_ergo_spawn_opts fast = {.timeout = 150 * GN_MS};
    unsigned n = s.n;
    CHECK_OK(gn_ergo_remote_spawn(drv.p, "beta@localhost", "remote_worker", &fast, on_spawned,
                                  &s));
    WAIT_FOR(s.n, n + 1);
    CHECK_EQ(s.status, GN_ETIMEDOUT);
    sres s2 = {0};
    CHECK_OK(gn_ergo_remote_app_start(drv.p, "beta@localhost", "golem_app", GN_ERGO_APP_DEFAULT,
                                      150 * GN_MS, on_started, &s2));
    WAIT_FOR(s2.n, 1);
    CHECK_EQ(s2.status, GN_ETIMEDOUT);
    rproc lim;
    memset(&lim, 0, sizeof lim);
    gn_ergo_proc_opts po = {.max_pending = 1};
    CHECK_OK(gn_ergo_spawn(a->en, &po, on_msg, &lim, &lim.p));
    sres s3 = {0};
    CHECK_OK(gn_ergo_remote_spawn(lim.p, "beta@localhost", "remote_worker", NULL, on_spawned,
                                  &s3));
    CHECK_EQ(gn_ergo_remote_spawn(lim.p, "beta@localhost", "remote_worker", NULL, on_spawned,
                                  &s3),
             GN_ELIMIT);
    CHECK_EQ(gn_ergo_remote_app_start(lim.p, "beta@localhost", "x", GN_ERGO_APP_DEFAULT, 0,
                                      NULL, NULL),
             GN_ELIMIT);
    CHECK_OK(gn_ergo_remote_app_start(drv.p, "beta@localhost", "golem_app",
                                      GN_ERGO_APP_DEFAULT, 0, on_started, &s2));
    CHECK_OK(gn_ergo_disconnect(a->en, "beta@localhost"));
    WAIT_FOR(s3.n, 1);
    WAIT_FOR(s2.n, 2);
    CHECK_EQ(s3.status, GN_ECONNRESET);
    CHECK_EQ(s2.status, GN_ECONNRESET);
    run_until(never, NULL, 50);
    CHECK_EQ(s3.n, 1u); /* exactly once */
    CHECK_EQ(s2.n, 2u);
    gn_ergo_proc_free(lim.p);
    gn_ergo_proc_free(drv.p);
    CHECK_OK(gn_ergo_attach(b->n, NULL, &b->en));
}

static void bad_arguments(tnode *a)
{
    rproc r;
    memset(&r, 0, sizeof r);
    CHECK_OK(gn_ergo_spawn(a->en, NULL, on_msg, &r, &r.p));
    sres s = {0};
    CHECK_EQ(gn_ergo_remote_spawn(NULL, "beta@localhost", "w", NULL, on_spawned, &s), GN_EINVAL);
    CHECK_EQ(gn_ergo_remote_spawn(r.p, "beta@localhost", "w", NULL, NULL, NULL), GN_EINVAL);
    CHECK_EQ(gn_ergo_remote_spawn(r.p, NULL, "w", NULL, on_spawned, &s), GN_EINVAL);
    CHECK_EQ(gn_ergo_remote_spawn(r.p, "beta@localhost", "", NULL, on_spawned, &s), GN_EINVAL);
    /* our own node: use gn_ergo_spawn() */
    CHECK_EQ(gn_ergo_remote_spawn(r.p, gn_ergo_node_name(a->en), "w", NULL, on_spawned, &s),
             GN_EINVAL);
    gn_ergo_spawn_opts o = {.nargs = 1};
    CHECK_EQ(gn_ergo_remote_spawn(r.p, "beta@localhost", "w", &o, on_spawned, &s), GN_EINVAL);
    CHECK_EQ(gn_ergo_remote_app_start(r.p, "beta@localhost", "a", (gn_ergo_app_mode)7, 0, NULL,
                                      NULL),
             GN_EINVAL);
    CHECK_EQ(gn_ergo_spawn_enable(a->en, "w", NULL, 0, NULL, NULL), GN_EINVAL);
    CHECK_EQ(gn_ergo_spawn_enable(a->en, "", NULL, 0, make_worker, NULL), GN_EINVAL);
    CHECK_EQ(gn_ergo_spawn_enable(a->en, "w", NULL, 1, make_worker, NULL), GN_EINVAL);
    CHECK_EQ(gn_ergo_spawn_disable(a->en, "w", NULL, 0), GN_ENOTFOUND);
    CHECK_EQ(gn_ergo_app_disable(a->en, "w", NULL, 0), GN_ENOTFOUND);
    /* bounds: GN_ERGO_ENABLED_NODES_MAX nodes per name, GN_ERGO_ENABLED_MAX names */
    static char nm[GN_ERGO_ENABLED_NODES_MAX + 1][32];
    const char *nodes[GN_ERGO_ENABLED_NODES_MAX + 1];
    for (unsigned i = 0; i <= GN_ERGO_ENABLED_NODES_MAX; i++) {
        snprintf(nm[i], sizeof nm[i], "n%u@localhost", i);
        nodes[i] = nm[i];
    }
    CHECK_EQ(gn_ergo_spawn_enable(a->en, "w", nodes, GN_ERGO_ENABLED_NODES_MAX + 1, make_worker,
                                  NULL),
             GN_ELIMIT);
    CHECK_OK(gn_ergo_spawn_enable(a->en, "w", nodes, GN_ERGO_ENABLED_NODES_MAX, make_worker,
                                  NULL));
    CHECK_EQ(gn_ergo_spawn_enable(a->en, "w", nodes + GN_ERGO_ENABLED_NODES_MAX, 1, make_worker,
                                  NULL),
             GN_ELIMIT);
    for (unsigned i = 1; i < GN_ERGO_ENABLED_MAX; i++) {
        char name[32];
        snprintf(name, sizeof name, "f%u", i);
        CHECK_OK(gn_ergo_spawn_enable(a->en, name, NULL, 0, make_worker, NULL));
    }
    CHECK_EQ(gn_ergo_app_enable(a->en, "one-more", NULL, 0, start_app, NULL), GN_ELIMIT);
    CHECK_OK(gn_ergo_spawn_disable(a->en, "w", NULL, 0));
    CHECK_OK(gn_ergo_app_enable(a->en, "one-more", NULL, 0, start_app, NULL));
    gn_ergo_proc_free(r.p);
}

GN_TEST(channel_remote_spawn_and_app_start)
{
    setup();
    tnode t[2];
    const char *oa[] = {"ergo.node=alpha@localhost"};
    const char *ob[] = {"ergo.node=beta@localhost"};
    enode_up(&t[0], 431, oa, 1, false, "alpha@localhost");
    enode_up(&t[1], 432, ob, 1, true, "beta@localhost");
    /* channels only: no name service, connect the peer first */
    rproc r;
    memset(&r, 0, sizeof r);
    CHECK_OK(gn_ergo_spawn(t[0].en, NULL, on_msg, &r, &r.p));
    sres s = {0};
    CHECK_EQ(gn_ergo_remote_spawn(r.p, "beta@localhost", "w", NULL, on_spawned, &s), GN_ENOTSUP);
    CHECK_EQ(s.n, 0u);
    gn_ergo_proc_free(r.p);
    CHECK_EQ(dial_wait(&t[0], t[1].addr), 0);
    CHECK_OK(gn_ergo_connect_peer(t[0].en, &t[1].pid, "beta@localhost"));
    CHECK(run_until(peer_up, &t[0], 8000));
    spawn_cases(&t[0], &t[1]);
    bad_arguments(&t[0]);
    enode_down(&t[0]);
    enode_down(&t[1]);
    finish();
}

/* ---- edges: ownership, caps, bounds, re-entry ------------------------------------------------ */

typedef struct oddf {
    int mode; /* 0 name already held, 1 no process, 2 error with *out set, 3 disconnect,
               * 4 another node's process, 5 plain */
    tnode *t;
    gn_ergo_proc *other; /* mode 4: a process of another node */
    rproc kids[8];
    unsigned nkids;
} oddf;

static int odd_factory(void *arg, gn_ergo_node *en, const gn_ergo_spawn_request *rq,
                       gn_ergo_proc **out, const char **err_text)
{
    oddf *f = arg;
    if (f->mode == 4) {
        *out = f->other;
        return 0;
    }
    CHECK(f->nkids < 8);
    rproc *r = &f->kids[f->nkids++];
    memset(r, 0, sizeof *r);
    CHECK_OK(gn_ergo_spawn(en, NULL, on_msg, r, &r->p));
    switch (f->mode) {
    case 0: /* the factory registered the name itself: accepted */
        CHECK_OK(gn_ergo_register(r->p, rq->register_name));
        break;
    case 1: /* no process with 0: refused */
        f->nkids--;
        gn_ergo_proc_free(r->p);
        *out = NULL;
        return 0;
    case 2: /* an error with *out set: the process stays the factory's */
        *out = r->p;
        *err_text = "changed my mind";
        return GN_EINVAL;
    case 3: { /* the factory ends the requester's connection */
        char node[GN_ERGO_NAME_MAX + 1];
        snprintf(node, sizeof node, "%s", rq->node);
        CHECK_OK(gn_ergo_disconnect(en, node));
        break;
    }
    default:
        break;
    }
    *out = r->p;
    return 0;
}

/* a tap that ends the connection the first 199 frame is sent on, inside the send */
typedef struct cut {
    gn_ergo_node *en;
    bool armed;
} cut;

static void cut_tap(void *ud, bool out, const char *node, const uint8_t *f, size_t len)
{
    cut *c = ud;
    if (!out || !c->armed || len < 8 || f[7] != GNI_ENP_ANY)
        return;
    c->armed = false;
    char nm[GN_ERGO_NAME_MAX + 1];
    snprintf(nm, sizeof nm, "%s", node);
    CHECK_OK(gn_ergo_disconnect(c->en, nm));
}

static void connect_channel(tnode *a, tnode *b)
{
    CHECK_OK(gn_ergo_connect_peer(a->en, &b->pid, "beta@localhost"));
    CHECK(run_until(peer_up, a, 8000));
}

/* ---- TCP: the frames against the captures --------------------------------------------------- */

#include "ergo_vectors.h"

/*
 * Compares the 199 frame golemnet emitted with the recorded one: header fields and
 * lengths, the struct's type given the same way (a cache id), and the payload byte for
 * byte except where ids, creations and refs sit: @skip lists [offset, length) ranges of
 * the payload that may differ (the parent/core PID's ID and creation, the ref).
 */
typedef struct span {
    size_t off, len;
} span;
static void same_layout(const uint8_t *ours, size_t olen, const char *file, int idx,
                        const span *skip, size_t nskip)
{
    static uint8_t vb[4096];
    size_t vlen = vec_frame(file, idx, vb, sizeof vb);
    gni_enp_frame o, v;
    CHECK_OK(gni_enp_parse(ours, olen, &o, NULL));
    CHECK_OK(gni_enp_parse(vb, vlen, &v, NULL));
    CHECK_EQ(o.type, GNI_ENP_ANY);
    CHECK_EQ(o.type, v.type);
    CHECK_EQ(o.flags, v.flags);
    CHECK_EQ(olen, vlen);
    CHECK_EQ(o.payload.len, v.payload.len);
    CHECK_EQ(o.payload.base[0], v.payload.base[0]); /* 0x83: a reg-cache id */
    for (size_t i = 0; i < o.payload.len; i++) {
        bool skipped = i >= 1 && i < 3; /* the cache id itself: another registry's */
        for (size_t k = 0; k < nskip; k++)
            skipped = skipped || (i >= skip[k].off && i < skip[k].off + skip[k].len);
        if (!skipped && o.payload.base[i] != v.payload.base[i]) {
            fprintf(stderr, "%s frame %d: payload byte %zu: ours %02x, recorded %02x\n", file,
                    idx, i, o.payload.base[i], v.payload.base[i]);
            CHECK(!"payload differs");
        }
    }
}

typedef struct tap {
    uint8_t f[4096];
    size_t len;
    unsigned n;
} tap;

static void tap_fn(void *ud, bool out, const char *node, const uint8_t *f, size_t len)
{
    (void)node;
    tap *t = ud;
    if (!out || len > sizeof t->f || len < 8 || f[7] != GNI_ENP_ANY)
        return;
    memcpy(t->f, f, len);
    t->len = len;
    t->n++;
}

static char regport_opt[64];

#include "ergo_regport.h"

GN_TEST(tcp_remote_spawn_frames_match_vectors)
{
    setup();
    bool vectors = find_vec_dir();
    snprintf(regport_opt, sizeof regport_opt, "ergo.registrar_port=%u",
             (unsigned)free_reg_port());
    tnode t[2];
    const char *oa[] = {"ergo.node=alpha@localhost", "ergo.cookie=golem-test-cookie",
                        "ergo.port=0", regport_opt};
    const char *ob[] = {"ergo.node=beta@localhost", "ergo.cookie=golem-test-cookie",
                        "ergo.port=0", regport_opt};
    enode_up(&t[1], 442, ob, 4, false, "beta@localhost");
    enode_up(&t[0], 441, oa, 4, false, "alpha@localhost");
    run_until(never, NULL, 200); /* both register (beta owns the registrar port) */
    /* the captures' driver is process 1004 of alpha; beta's workers start at 1005 here */
    rproc a[4];
    for (int i = 0; i < 4; i++) {
        memset(&a[i], 0, sizeof a[i]);
        CHECK_OK(gn_ergo_spawn(t[0].en, NULL, on_msg, &a[i], &a[i].p));
    }
    gn_ergo_proc *drv = a[3].p;
    CHECK_EQ(pid_of(drv).id, 1004u);
    factory f = {.t = &t[1]};
    appl ap = {0};
    CHECK_OK(gn_ergo_spawn_enable(t[1].en, "remote_worker", NULL, 0, make_worker, &f));
    CHECK_OK(gn_ergo_app_enable(t[1].en, "golem_app", NULL, 0, start_app, &ap));
    tap ta = {0}, tb = {0};
    gni_ergo_node_set_tap(t[0].en, tap_fn, &ta);
    gni_ergo_node_set_tap(t[1].en, tap_fn, &tb);
    /* the first request connects by name; the capture's spawn: args ("golem-arg", int 42) */
    gn_edf_value args[2];
    args[0] = str("golem-arg");
    CHECK_OK(gn_edf_set_int(&args[1], GN_EDF_INT, 42));
    gn_ergo_spawn_opts o = {.args = args, .nargs = 2};
    sres s = {0};
    CHECK_OK(gn_ergo_remote_spawn(drv, "beta@localhost", "remote_worker", &o, on_spawned, &s));
    WAIT_FOR(s.n, 1);
    CHECK_EQ(s.status, 0);
    CHECK_EQ(s.pid.id, pid_of(f.kids[0].p).id);
    CHECK_STR(f.arg0, "golem-arg");
    CHECK_EQ(f.arg1, 42);
    gn_ergo_remote_info ri;
    CHECK_OK(gn_ergo_remote_info_get(t[0].en, "beta@localhost", &ri));
    CHECK_EQ(ri.carrier, 1);
    CHECK_EQ(ta.n, 1u);
    CHECK_EQ(tb.n, 1u);
    if (vectors) {
        /* MessageSpawn: ParentPID ID+creation (payload 90..105), ParentLeader creation
         * (116..123), the ref's creation and IDs (165..196) */
        const span req[] = {{90, 16}, {116, 8}, {165, 32}};
        same_layout(ta.f, ta.len, "enp_remote_spawn.hex", 0, req, 3);
        CHECK_EQ(ta.f[6], 0); /* order: Ergo writes the zero PID's ID */
        /* MessageResult: the PID's ID and creation (8..23), the ref's (41..72) */
        const span res[] = {{8, 16}, {41, 32}};
        same_layout(tb.f, tb.len, "enp_remote_spawn.hex", 1, res, 2);
        CHECK_EQ(tb.f[6], 1004 % 255); /* order: ParentPID.ID mod 255 (239) */
    }
    /* the spawned process answers to its PID over TCP too */
    gn_ergo_target to = gn_ergo_to_pid(&s.pid);
    gn_edf_value v = str("over-tcp");
    CHECK_OK(gn_ergo_send(drv, &to, &v, NULL));
    WAIT_FOR(f.kids[0].got, 1);
    CHECK_STR(f.kids[0].last, "over-tcp");
    /* application start, as the capture: mode 0 */
    CHECK_OK(gn_ergo_remote_app_start(drv, "beta@localhost", "golem_app", GN_ERGO_APP_DEFAULT, 0,
                                      on_started, &s));
    WAIT_FOR(s.n, 2);
    CHECK_EQ(s.status, 0);
    CHECK_EQ(ap.calls, 1u);
    if (vectors) {
        /* CorePID ID+creation (33..48), the ref's creation and IDs (60..91) */
        const span req[] = {{33, 16}, {60, 32}};
        same_layout(ta.f, ta.len, "enp_remote_app_start.hex", 0, req, 2);
        CHECK_EQ(ta.f[6], 0);
        const span res[] = {{23, 32}}; /* the ref's creation and IDs */
        same_layout(tb.f, tb.len, "enp_remote_app_start.hex", 1, res, 1);
        CHECK_EQ(tb.f[6], 0);
    }
    gni_ergo_node_set_tap(t[0].en, NULL, NULL);
    gni_ergo_node_set_tap(t[1].en, NULL, NULL);
    for (unsigned i = 0; i < f.nkids; i++)
        gn_ergo_proc_free(f.kids[i].p);
    CHECK_OK(gn_ergo_spawn_disable(t[1].en, "remote_worker", NULL, 0));
    CHECK_OK(gn_ergo_app_disable(t[1].en, "golem_app", NULL, 0));
    /* a factory that ends the requester's TCP connection: ECONNRESET, nothing read from
     * the freed connection (ASan); the next request connects again */
    oddf of = {.t = &t[1], .mode = 3};
    CHECK_OK(gn_ergo_spawn_enable(t[1].en, "odd", NULL, 0, odd_factory, &of));
    spawn_wait(drv, "odd", NULL, &s);
    CHECK_EQ(s.status, GN_ECONNRESET);
    of.mode = 5;
    spawn_wait(drv, "odd", NULL, &s);
    CHECK_EQ(s.status, 0);
    CHECK_EQ(of.nkids, 2u);
    for (unsigned i = 0; i < of.nkids; i++)
        gn_ergo_proc_free(of.kids[i].p);
    CHECK_OK(gn_ergo_spawn_disable(t[1].en, "odd", NULL, 0));
    /* the whole set of cases over TCP as well */
    spawn_cases(&t[0], &t[1]);
    for (int i = 0; i < 4; i++)
        gn_ergo_proc_free(a[i].p);
    enode_down(&t[0]);
    enode_down(&t[1]);
    finish();
    if (!vectors)
        SKIP("frames not compared: shared/vectors/ergo not found (set GN_SHARED_DIR)");
}


GN_TEST(channel_spawn_edges)
{
    setup();
    tnode t[2];
    const char *oa[] = {"ergo.node=alpha@localhost"};
    const char *ob[] = {"ergo.node=beta@localhost"};
    enode_up(&t[0], 451, oa, 1, false, "alpha@localhost");
    enode_up(&t[1], 452, ob, 1, true, "beta@localhost");
    CHECK_EQ(dial_wait(&t[0], t[1].addr), 0);
    connect_channel(&t[0], &t[1]);
    rproc drv;
    memset(&drv, 0, sizeof drv);
    CHECK_OK(gn_ergo_spawn(t[0].en, NULL, on_msg, &drv, &drv.p));
    sres s = {0};

    /* the cap on live processes: max_procs 1, the second "limit exceeded" without asking
     * the factory; once the first ends, granted again */
    factory f = {.t = &t[1]};
    gn_ergo_spawn_enable_opts eo = {.max_procs = 1};
    CHECK_OK(gn_ergo_spawn_enable_ex(t[1].en, "capped", NULL, 0, &eo, make_worker, &f));
    spawn_wait(drv.p, "capped", NULL, &s);
    CHECK_EQ(s.status, 0);
    spawn_wait(drv.p, "capped", NULL, &s);
    CHECK_EQ(s.status, GN_ECALLBACK);
    CHECK_STR(s.text, GN_ERGO_ERR_EXCEEDED);
    CHECK_EQ(f.calls, 1u);
    gn_ergo_proc_free(f.kids[0].p);
    spawn_wait(drv.p, "capped", NULL, &s);
    CHECK_EQ(s.status, 0);
    CHECK_EQ(f.calls, 2u);
    /* the default cap is documented and set */
    CHECK_OK(gn_ergo_spawn_enable(t[1].en, "capped", NULL, 0, make_worker, &f));
    spawn_wait(drv.p, "capped", NULL, &s);
    CHECK_EQ(s.status, 0);
    CHECK_OK(gn_ergo_spawn_disable(t[1].en, "capped", NULL, 0));
    for (unsigned i = 1; i < f.nkids; i++) /* they outlive the factory's removal */
        gn_ergo_proc_free(f.kids[i].p);

    /* a disable list with a bad name changes nothing (alpha stays allowed) */
    const char *alpha[] = {"alpha@localhost"}, *bad[] = {"alpha@localhost", ""};
    CHECK_OK(gn_ergo_spawn_enable(t[1].en, "listed", alpha, 1, make_worker, &f));
    CHECK_EQ(gn_ergo_spawn_disable(t[1].en, "listed", bad, 2), GN_EINVAL);
    CHECK_EQ(gn_ergo_app_disable(t[1].en, "listed", bad, 2), GN_EINVAL); /* checked first */
    spawn_wait(drv.p, "listed", NULL, &s);
    CHECK_EQ(s.status, 0);
    gn_ergo_proc_free(f.kids[f.nkids - 1].p);
    CHECK_OK(gn_ergo_spawn_disable(t[1].en, "listed", NULL, 0));

    /* too many args: GN_EINVAL before anything is read or sent */
    gn_edf_value one = str("x");
    gn_ergo_spawn_opts many = {.args = &one, .nargs = ((size_t)1 << 32) + 1};
    CHECK_EQ(gn_ergo_remote_spawn(drv.p, "beta@localhost", "w", &many, on_spawned, &s),
             GN_EINVAL);
    many.nargs = GN_ERGO_SPAWN_ARGS_MAX + 1;
    CHECK_EQ(gn_ergo_remote_spawn(drv.p, "beta@localhost", "w", &many, on_spawned, &s),
             GN_EINVAL);

    /* factories and ownership */
    oddf of = {.t = &t[1]};
    CHECK_OK(gn_ergo_spawn_enable(t[1].en, "odd", NULL, 0, odd_factory, &of));
    gn_ergo_spawn_opts named = {.register_name = "odd_one"};
    of.mode = 0; /* the process holds the name already: granted */
    spawn_wait(drv.p, "odd", &named, &s);
    CHECK_EQ(s.status, 0);
    CHECK_EQ(s.pid.id, pid_of(of.kids[0].p).id);
    gn_ergo_target to = gn_ergo_to_name("beta@localhost", "odd_one");
    gn_edf_value v = str("named");
    CHECK_OK(gn_ergo_send(drv.p, &to, &v, NULL));
    WAIT_FOR(of.kids[0].got, 1);
    of.mode = 1; /* 0 without a process: refused ("invalid state") */
    spawn_wait(drv.p, "odd", NULL, &s);
    CHECK_EQ(s.status, GN_ECALLBACK);
    CHECK_STR(s.text, gn_strerror(GN_ESTATE));
    of.mode = 2; /* an error with *out set: its text; the process is left alone */
    spawn_wait(drv.p, "odd", NULL, &s);
    CHECK_EQ(s.status, GN_ECALLBACK);
    CHECK_STR(s.text, "changed my mind");
    CHECK_OK(gn_ergo_register(of.kids[1].p, "still_here")); /* alive, not freed */
    of.mode = 4; /* another node's process: refused, left alone */
    of.other = drv.p;
    spawn_wait(drv.p, "odd", NULL, &s);
    CHECK_EQ(s.status, GN_ECALLBACK);
    CHECK_STR(s.text, gn_strerror(GN_ESTATE));
    of.mode = 3; /* the factory disconnects the requester: no answer, ECONNRESET */
    spawn_wait(drv.p, "odd", NULL, &s);
    CHECK_EQ(s.status, GN_ECONNRESET);
    run_until(never, NULL, 50);
    connect_channel(&t[0], &t[1]);

    /* the connection goes down inside the send: the callback runs once (GN_ECONNRESET),
     * the call returns 0, nothing freed twice */
    cut c = {.en = t[0].en, .armed = true};
    gni_ergo_node_set_tap(t[0].en, cut_tap, &c);
    unsigned n = s.n;
    CHECK_OK(gn_ergo_remote_spawn(drv.p, "beta@localhost", "odd", NULL, on_spawned, &s));
    CHECK_EQ(s.n, n + 1);
    CHECK_EQ(s.status, GN_ECONNRESET);
    run_until(never, NULL, 50);
    connect_channel(&t[0], &t[1]);
    c.armed = true;
    sres sa = {0};
    CHECK_OK(gn_ergo_remote_app_start(drv.p, "beta@localhost", "app", GN_ERGO_APP_DEFAULT, 0,
                                      on_started, &sa));
    CHECK_EQ(sa.n, 1u);
    CHECK_EQ(sa.status, GN_ECONNRESET);
    gni_ergo_node_set_tap(t[0].en, NULL, NULL);
    run_until(never, NULL, 50);
    CHECK_EQ(s.n, n + 1);
    CHECK_EQ(sa.n, 1u);
    connect_channel(&t[0], &t[1]);

    /* requests end with GN_ECLOSED, once, when their process ends or the node detaches */
    gn_ergo_app_disable(t[1].en, "app", NULL, 0);
    CHECK_OK(gn_ergo_spawn_disable(t[1].en, "odd", NULL, 0));
    gn_ergo_detach(t[1].en); /* beta stops answering */
    t[1].en = NULL;
    rproc q;
    memset(&q, 0, sizeof q);
    CHECK_OK(gn_ergo_spawn(t[0].en, NULL, on_msg, &q, &q.p));
    sres s1 = {0}, s2 = {0}, s3 = {0};
    CHECK_OK(gn_ergo_remote_spawn(q.p, "beta@localhost", "w", NULL, on_spawned, &s1));
    CHECK_OK(gn_ergo_remote_app_start(q.p, "beta@localhost", "a", GN_ERGO_APP_DEFAULT, 0,
                                      on_started, &s2));
    CHECK_OK(gn_ergo_remote_spawn(drv.p, "beta@localhost", "w", NULL, on_spawned, &s3));
    gn_ergo_proc_free(q.p);
    CHECK_EQ(s1.n, 1u);
    CHECK_EQ(s1.status, GN_ECLOSED);
    CHECK_EQ(s2.n, 1u);
    CHECK_EQ(s2.status, GN_ECLOSED);
    CHECK_EQ(s3.n, 0u);
    gn_ergo_detach(t[0].en);
    t[0].en = NULL;
    CHECK_EQ(s3.n, 1u);
    CHECK_EQ(s3.status, GN_ECLOSED);
    run_until(never, NULL, 50);
    CHECK_EQ(s1.n + s2.n + s3.n, 3u);
    for (unsigned i = 0; i < of.nkids; i++)
        (void)i; /* freed with beta's node */
    node_down(&t[0]);
    node_down(&t[1]);
    finish();
}

/* our own flags: a node announcing Enable without RemoteSpawn / RemoteApplicationStart
 * ignores such requests (no answer); a requester that knows those flags refuses locally */
GN_TEST(tcp_own_flags_ignore_requests)
{
    setup();
    snprintf(regport_opt, sizeof regport_opt, "ergo.registrar_port=%u",
             (unsigned)free_reg_port());
    tnode t[2];
    const char *oa[] = {"ergo.node=alpha@localhost", "ergo.cookie=golem-test-cookie",
                        "ergo.port=0", regport_opt};
    const char *ob[] = {"ergo.node=beta@localhost", "ergo.cookie=golem-test-cookie",
                        "ergo.port=0", regport_opt, "ergo.flags=0x61"};
    enode_up(&t[1], 462, ob, 5, false, "beta@localhost");
    enode_up(&t[0], 461, oa, 4, false, "alpha@localhost");
    run_until(never, NULL, 200);
    factory f = {.t = &t[1]};
    appl ap = {0};
    CHECK_OK(gn_ergo_spawn_enable(t[1].en, "remote_worker", NULL, 0, make_worker, &f));
    CHECK_OK(gn_ergo_app_enable(t[1].en, "golem_app", NULL, 0, start_app, &ap));
    rproc drv;
    memset(&drv, 0, sizeof drv);
    CHECK_OK(gn_ergo_spawn(t[0].en, NULL, on_msg, &drv, &drv.p));
    /* not connected yet: alpha cannot know beta's flags, the requests go out */
    gn_ergo_spawn_opts fast = {.timeout = 300 * GN_MS};
    sres s = {0}, sa = {0};
    CHECK_OK(gn_ergo_remote_spawn(drv.p, "beta@localhost", "remote_worker", &fast, on_spawned,
                                  &s));
    CHECK_OK(gn_ergo_remote_app_start(drv.p, "beta@localhost", "golem_app",
                                      GN_ERGO_APP_DEFAULT, 300 * GN_MS, on_started, &sa));
    WAIT_FOR(s.n, 1);
    WAIT_FOR(sa.n, 1);
    CHECK_EQ(s.status, GN_ETIMEDOUT);
    CHECK_EQ(sa.status, GN_ETIMEDOUT);
    CHECK_EQ(f.calls, 0u);
    CHECK_EQ(ap.calls, 0u);
    /* connected now: refused locally */
    gn_ergo_remote_info ri;
    CHECK_OK(gn_ergo_remote_info_get(t[0].en, "beta@localhost", &ri));
    CHECK_EQ(ri.flags, 0x61u);
    CHECK_EQ(gn_ergo_remote_spawn(drv.p, "beta@localhost", "remote_worker", NULL, on_spawned,
                                  &s),
             GN_ENOTSUP);
    CHECK_EQ(gn_ergo_remote_app_start(drv.p, "beta@localhost", "golem_app",
                                      GN_ERGO_APP_DEFAULT, 0, on_started, &sa),
             GN_ENOTSUP);
    gn_ergo_proc_free(drv.p);
    enode_down(&t[0]);
    enode_down(&t[1]);
    finish();
}

GN_TEST_MAIN(GN_T(channel_remote_spawn_and_app_start),
             GN_T(tcp_remote_spawn_frames_match_vectors), GN_T(channel_spawn_edges),
             GN_T(tcp_own_flags_ignore_requests))
