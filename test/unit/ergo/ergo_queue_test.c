/*
 * ergo_queue_test: the any-thread queue of the Ergo node (include/golemnet/ergo.h
 * "any-thread queue", protocols/ergo/ergo_queue.c). Two gn_node instances on one
 * loop (the test thread) over a /golem/ergo/1.0.0 stream; a queued process on
 * alpha, a callback process on beta, and a consumer thread popping alpha's queue:
 *  - the queue fills (capacity 4): the process is paused, the rest waits in its
 *    mailbox; the consumer drains, the process resumes, every message arrives,
 *    in sending order, values intact (strings and a registered struct);
 *  - a call from beta is answered from the consumer thread (gn_ergo_queue_reply,
 *    and an error answer with gn_ergo_queue_reply_error);
 *  - an exit signal from beta arrives as a signal item;
 *  - freeing the process wakes the blocked consumer with GN_ECLOSED; an item it
 *    popped before stays valid until released; replies then fail GN_ECLOSED;
 *  - an fd poller that pops with timeout 0 until empty still gets the resume;
 *  - max_bytes counts a signal item's memory (a 1-byte bound pauses after one);
 *  - bad arguments; the descriptor; a queue freed with items waiting.
 */
#define _XOPEN_SOURCE 700
#include "gn_test.h"

#define GN_TNODE_EXTRA gn_ergo_node *en;
#include "golemnet/ergo.h"
#include "gn_tnode.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>

#define NMSG 20u

/* ---- beta's process: records what it gets -------------------------------------------------- */

typedef struct cres {
    unsigned n;
    int status;
    char reply[64], text[64];
} cres;

static void on_reply(void *arg, int status, const gn_edf_value *v, const char *text)
{
    cres *c = arg;
    c->n++;
    c->status = status;
    c->reply[0] = '\0';
    snprintf(c->text, sizeof c->text, "%s", text ? text : "");
    if (v && v->kind == GN_EDF_STRING)
        snprintf(c->reply, sizeof c->reply, "%.*s", (int)v->u.bytes.len,
                 (const char *)v->u.bytes.base);
}

static void on_msg_ignore(gn_ergo_proc *p, void *arg, const gn_ergo_msg *m)
{
    (void)p, (void)arg, (void)m;
}

/* ---- the consumer thread ------------------------------------------------------------------ */

typedef struct consumer {
    gn_ergo_queue *q;
    const gn_edf_value *want_point; /* the struct value to compare with */
    atomic_uint msgs;       /* string messages popped */
    atomic_uint calls;      /* calls answered */
    atomic_uint sigs;       /* signals popped */
    atomic_uint replied;    /* gn_ergo_queue_reply outcomes seen (loop thread) */
    atomic_int reply_status;
    atomic_bool point_ok;   /* the struct arrived equal */
    atomic_bool closed;     /* GN_ECLOSED seen */
    atomic_int error;       /* first unexpected outcome (0 = none) */
    char text[NMSG][16];    /* strings in pop order (written before msgs is raised) */
    char reason[64];        /* the signal's (written before sigs is raised) */
    bool sig_direct;
    int sig_kind;
    gn_ergo_pid sig_from;
    gn_ergo_item kept;      /* the struct's item, kept past the close */
} consumer;

static void fail(consumer *c, int code)
{
    int zero = 0;
    atomic_compare_exchange_strong(&c->error, &zero, code);
}

static void on_queue_reply(void *arg, int status, const char *text)
{
    consumer *c = arg;
    if (text)
        fail(c, 900);
    atomic_store(&c->reply_status, status);
    atomic_fetch_add(&c->replied, 1);
}

static void *consume(void *arg)
{
    consumer *c = arg;
    for (unsigned i = 0; i < 1000; i++) { /* bounded: the items this test sends */
        gn_ergo_item it;
        int rc = gn_ergo_queue_next(c->q, &it, 20 * GN_S);
        if (rc == GN_ECLOSED) {
            atomic_store(&c->closed, true);
            return NULL;
        }
        if (rc < 0) {
            fail(c, 100 - rc);
            return NULL;
        }
        if (it.kind == GN_ERGO_ITEM_SIGNAL) {
            snprintf(c->reason, sizeof c->reason, "%s", it.signal.reason);
            c->sig_direct = it.signal.direct;
            c->sig_kind = (int)it.signal.kind;
            c->sig_from = it.signal.target.pid;
            gn_ergo_item_release(&it);
            atomic_fetch_add(&c->sigs, 1);
            continue;
        }
        if (it.kind != GN_ERGO_ITEM_MESSAGE || !it.msg.value) {
            fail(c, 200);
            return NULL;
        }
        const gn_edf_value *v = it.msg.value;
        if (v->kind == GN_EDF_STRUCT) {
            atomic_store(&c->point_ok, gn_edf_value_equal(v, c->want_point));
            c->kept = it; /* released by the test after the close */
            continue;
        }
        if (v->kind != GN_EDF_STRING) {
            fail(c, 300);
            gn_ergo_item_release(&it);
            continue;
        }
        char s[16];
        snprintf(s, sizeof s, "%.*s", (int)v->u.bytes.len, (const char *)v->u.bytes.base);
        if (it.msg.call) {
            int r;
            if (!strcmp(s, "fail")) {
                r = gn_ergo_queue_reply_error(c->q, &it.msg.from, &it.msg.ref, "no luck",
                                              on_queue_reply, c);
            } else {
                gn_edf_value a;
                gn_edf_set_string(&a, "pong", 4);
                r = gn_ergo_queue_reply(c->q, &it.msg.from, &it.msg.ref, &a, on_queue_reply,
                                        c);
            }
            if (r != 0)
                fail(c, 400 - r);
            atomic_fetch_add(&c->calls, 1);
        } else {
            unsigned n = atomic_load(&c->msgs);
            if (n < NMSG)
                memcpy(c->text[n], s, sizeof s);
            atomic_fetch_add(&c->msgs, 1);
        }
        gn_ergo_item_release(&it);
    }
    fail(c, 500);
    return NULL;
}

/* ---- predicates --------------------------------------------------------------------------- */

typedef struct full_w {
    gn_ergo_queue *q;
    gn_ergo_proc *p;
} full_w;
static bool queue_full(void *arg)
{
    full_w *w = arg;
    return gn_ergo_queue_len(w->q) == 4 && gn_ergo_queue_paused(w->q) &&
           gn_ergo_proc_queued(w->p) == NMSG - 4;
}
static bool len4_paused(void *arg)
{
    full_w *w = arg;
    return gn_ergo_queue_len(w->q) == 4 && gn_ergo_queue_paused(w->q) &&
           gn_ergo_proc_queued(w->p) == 2;
}
typedef struct lenp_w {
    gn_ergo_queue *q;
    gn_ergo_proc *p;
    size_t len;
    bool paused;
} lenp_w;
static bool len_paused_is(void *arg)
{
    lenp_w *w = arg;
    return gn_ergo_queue_len(w->q) == w->len && gn_ergo_queue_paused(w->q) == w->paused &&
           gn_ergo_proc_queued(w->p) == 0;
}
typedef struct au_w {
    atomic_uint *n;
    unsigned min;
} au_w;
static bool au_reached(void *arg)
{
    au_w *w = arg;
    return atomic_load(w->n) >= w->min;
}
#define WAIT_AU(counter, count)                                                             \
    do {                                                                                     \
        au_w w_ = {&(counter), (count)};                                                     \
        CHECK(run_until(au_reached, &w_, 8000));                                             \
    } while (0)
static bool cres_n(void *arg) { return ((cres *)arg)->n >= 1; }
static bool is_closed(void *arg) { return atomic_load(&((consumer *)arg)->closed); }
static bool comp_up(void *arg) { return gn_ergo_node_name(((tnode *)arg)->en)[0] != '\0'; }
static bool info_up(void *arg)
{
    gn_ergo_remote_info i;
    return gn_ergo_remote_info_get(((tnode *)arg)->en, "alpha@localhost", &i) == 0;
}

static int reg_point(void *arg, gn_edf_registry *r)
{
    (void)arg;
    gn_edf_field f[3] = {{"X", gn_edf_type_basic(GN_EDF_INT32)},
                         {"Y", gn_edf_type_basic(GN_EDF_INT32)},
                         {"Label", gn_edf_type_basic(GN_EDF_STRING)}};
    return gn_edf_register_struct(r, "#golemcap/shared/Point", f, 3, NULL);
}

static void enode_up(tnode *t, uint32_t seed, const char *node_opt, bool listen)
{
    nopts o = {0};
    o.protocol_components = "ergo";
    o.options = &node_opt;
    o.n_options = 1;
    node_up(t, seed, &o);
    gn_ergo_config cfg = {.types = reg_point};
    CHECK_OK(gn_ergo_attach(t->n, &cfg, &t->en));
    if (listen) {
        CHECK_OK(gn_node_listen(t->n, "/ip4/127.0.0.1/tcp/0", NULL));
        CHECK(run_until(got_listen, t, 5000));
    }
    CHECK(run_until(comp_up, t, 5000));
}

static gn_edf_value str(const char *s)
{
    gn_edf_value v;
    gn_edf_set_string(&v, s, strlen(s));
    return v;
}

GN_TEST(queue_pause_call_signal_close)
{
    setup();
    tnode t[2];
    enode_up(&t[0], 601, "ergo.node=alpha@localhost", true);
    enode_up(&t[1], 602, "ergo.node=beta@localhost", false);

    /* bad arguments */
    gn_ergo_proc *qp = NULL;
    gn_ergo_queue *q = NULL;
    CHECK_EQ(gn_ergo_spawn_queued(NULL, NULL, &qp, &q), GN_EINVAL);
    CHECK_EQ(gn_ergo_spawn_queued(t[0].en, NULL, NULL, &q), GN_EINVAL);
    CHECK_EQ(gn_ergo_spawn_queued(t[0].en, NULL, &qp, NULL), GN_EINVAL);
    gn_ergo_queue_opts bad = {.proc.compression = {.enable = true, .threshold = 5}};
    CHECK_EQ(gn_ergo_spawn_queued(t[0].en, &bad, &qp, &q), GN_EINVAL);
    gn_ergo_item it;
    CHECK_EQ(gn_ergo_queue_next(NULL, &it, 0), GN_EINVAL);
    CHECK_EQ(gn_ergo_queue_fd(NULL), -1);
    gn_ergo_item_release(NULL);

    gn_ergo_queue_opts qo = {.capacity = 4, .proc.mailbox_size = 64};
    CHECK_OK(gn_ergo_spawn_queued(t[0].en, &qo, &qp, &q));
    CHECK_EQ(gn_ergo_queue_next(q, NULL, 0), GN_EINVAL);
    CHECK_EQ(gn_ergo_queue_next(q, &it, 0), GN_EAGAIN);
    CHECK_EQ(gn_ergo_queue_next(q, &it, 5 * GN_MS), GN_ETIMEDOUT);
    CHECK(gn_ergo_queue_fd(q) >= 0);
    gn_ergo_pid qpid, ppid;
    gn_ergo_queue_pid(q, &qpid);
    gn_ergo_proc_pid(qp, &ppid);
    CHECK_EQ(qpid.id, ppid.id);
    CHECK_STR(qpid.node, "alpha@localhost");
    gn_ergo_pid bad_to = {0};
    gn_ergo_ref bad_ref = {0};
    CHECK_EQ(gn_ergo_queue_reply(q, &bad_to, &bad_ref, NULL, NULL, NULL), GN_EINVAL);
    CHECK_EQ(gn_ergo_queue_reply_error(q, &bad_to, &bad_ref, "", NULL, NULL), GN_EINVAL);

    gn_ergo_proc *bp = NULL;
    CHECK_OK(gn_ergo_spawn(t[1].en, NULL, on_msg_ignore, NULL, &bp));
    gn_ergo_pid bpid;
    gn_ergo_proc_pid(bp, &bpid);

    CHECK_EQ(dial_wait(&t[1], t[0].addr), 0);
    CHECK_OK(gn_ergo_connect_peer(t[1].en, &t[0].pid, "alpha@localhost"));
    CHECK(run_until(info_up, &t[1], 8000));

    /* the queue fills: 4 items, the process pauses, 16 wait in its mailbox */
    gn_ergo_target to = gn_ergo_to_pid(&qpid);
    for (unsigned i = 0; i < NMSG; i++) {
        char s[16];
        snprintf(s, sizeof s, "m%u", i);
        gn_edf_value v = str(s);
        CHECK_OK(gn_ergo_send(bp, &to, &v, NULL));
    }
    full_w fw = {q, qp};
    CHECK(run_until(queue_full, &fw, 8000));
    run_until(never, NULL, 30); /* and it stays so */
    CHECK(queue_full(&fw));
    int fd = gn_ergo_queue_fd(q);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    CHECK_EQ(poll(&pfd, 1, 0), 1);

    /* the consumer drains: the process resumes, nothing lost, in order */
    gn_edf_arena *ar = gn_edf_arena_new(0, 0);
    CHECK(ar != NULL);
    const gn_edf_type *pt =
        gn_edf_registry_find(gn_ergo_registry(t[1].en), "#golemcap/shared/Point", 22);
    CHECK(pt != NULL);
    gn_edf_value pv;
    CHECK_OK(gn_edf_set_composite(&pv, ar, pt, 0));
    CHECK_OK(gn_edf_set_int(&gn_edf_items(&pv)[0], GN_EDF_INT32, 7));
    CHECK_OK(gn_edf_set_int(&gn_edf_items(&pv)[1], GN_EDF_INT32, -9));
    gn_edf_set_string(&gn_edf_items(&pv)[2], "origin", 6);
    consumer *c = calloc(1, sizeof *c);
    CHECK(c != NULL);
    c->q = q;
    c->want_point = &pv;
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, consume, c), 0);
    WAIT_AU(c->msgs, NMSG);
    CHECK_EQ(atomic_load(&c->error), 0);
    for (unsigned i = 0; i < NMSG; i++) {
        char s[16];
        snprintf(s, sizeof s, "m%u", i);
        CHECK_STR(c->text[i], s);
    }
    CHECK(!gn_ergo_queue_paused(q));
    CHECK_EQ(gn_ergo_proc_queued(qp), 0u);

    /* a registered struct, intact */
    CHECK_OK(gn_ergo_send(bp, &to, &pv, NULL));
    /* a call answered from the consumer thread, then an error answer */
    cres cr = {0};
    gn_edf_value ping = str("ping");
    CHECK_OK(gn_ergo_call(bp, &to, &ping, NULL, on_reply, &cr, NULL));
    CHECK(run_until(cres_n, &cr, 8000));
    CHECK_EQ(cr.status, 0);
    CHECK_STR(cr.reply, "pong");
    WAIT_AU(c->replied, 1);
    CHECK_EQ(atomic_load(&c->reply_status), 0);
    CHECK(atomic_load(&c->point_ok));
    cres ce = {0};
    gn_edf_value f = str("fail");
    CHECK_OK(gn_ergo_call(bp, &to, &f, NULL, on_reply, &ce, NULL));
    CHECK(run_until(cres_n, &ce, 8000));
    CHECK_EQ(ce.status, GN_ECALLBACK);
    CHECK_STR(ce.text, "no luck");
    WAIT_AU(c->replied, 2);
    CHECK_EQ(atomic_load(&c->calls), 2u);

    /* an exit signal from beta */
    CHECK_OK(gn_ergo_send_exit(bp, &qpid, "bye-now"));
    WAIT_AU(c->sigs, 1);
    CHECK_STR(c->reason, "bye-now");
    CHECK(c->sig_direct);
    CHECK_EQ(c->sig_kind, GN_ERGO_SIG_EXIT);
    CHECK_EQ(c->sig_from.id, bpid.id);
    CHECK_STR(c->sig_from.node, "beta@localhost");

    /* freeing the process wakes the blocked consumer with GN_ECLOSED */
    run_until(never, NULL, 50); /* the consumer is blocked in gn_ergo_queue_next */
    CHECK(!atomic_load(&c->closed));
    gn_ergo_proc_free(qp);
    CHECK(run_until(is_closed, c, 8000));
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_EQ(atomic_load(&c->error), 0);
    CHECK_EQ(gn_ergo_queue_next(q, &it, 0), GN_ECLOSED);
    gn_edf_value pong = str("x");
    CHECK_EQ(gn_ergo_queue_reply(q, &bpid, &bad_ref, &pong, NULL, NULL), GN_ECLOSED);
    CHECK_EQ(gn_ergo_queue_reply_error(q, &bpid, &bad_ref, "late", NULL, NULL), GN_ECLOSED);
    /* the item popped before the close is still valid */
    CHECK(c->kept.msg.value != NULL);
    CHECK(gn_edf_value_equal(c->kept.msg.value, &pv));
    CHECK_EQ(c->kept.msg.from.id, bpid.id);
    gn_ergo_queue_free(q);
    CHECK(gn_edf_value_equal(c->kept.msg.value, &pv)); /* independent of the queue */
    gn_ergo_item_release(&c->kept);
    CHECK(c->kept.msg.value == NULL);
    gn_ergo_item_release(&c->kept); /* twice: a no-op */
    free(c);
    gn_edf_arena_free(ar);

    /* an fd poller: pops with timeout 0 until GN_EAGAIN, then only waits for the fd; the
     * resume (a command reserved in the queue) brings the rest without another pop */
    CHECK_OK(gn_ergo_spawn_queued(t[0].en, &qo, &qp, &q));
    gn_ergo_queue_pid(q, &qpid);
    to = gn_ergo_to_pid(&qpid);
    for (unsigned i = 0; i < 6; i++) {
        gn_edf_value v = str("poll");
        CHECK_OK(gn_ergo_send(bp, &to, &v, NULL));
    }
    full_w fw3 = {q, qp};
    CHECK(run_until(len4_paused, &fw3, 8000));
    unsigned popped = 0;
    for (unsigned i = 0; i < 10 && gn_ergo_queue_next(q, &it, 0) == 0; i++) {
        gn_ergo_item_release(&it);
        popped++;
    }
    CHECK_EQ(popped, 4u);
    CHECK(!gn_ergo_queue_paused(q));
    lenp_w lw = {q, qp, 2, false};
    CHECK(run_until(len_paused_is, &lw, 8000)); /* the loop resumed it: 2 more queued */
    pfd.fd = gn_ergo_queue_fd(q);
    pfd.revents = 0;
    CHECK_EQ(poll(&pfd, 1, 0), 1);
    for (unsigned i = 0; i < 2; i++) {
        CHECK_OK(gn_ergo_queue_next(q, &it, 0));
        CHECK_EQ(it.kind, GN_ERGO_ITEM_MESSAGE);
        gn_ergo_item_release(&it);
    }
    CHECK_EQ(gn_ergo_queue_next(q, &it, 0), GN_EAGAIN);
    gn_ergo_proc_free(qp);
    gn_ergo_queue_free(q);

    /* max_bytes counts every item's memory, a signal's too: one signal reaches 1 byte */
    gn_ergo_queue_opts qb = {.capacity = 64, .max_bytes = 1, .proc.mailbox_size = 64};
    CHECK_OK(gn_ergo_spawn_queued(t[0].en, &qb, &qp, &q));
    gn_ergo_queue_pid(q, &qpid);
    CHECK_OK(gn_ergo_send_exit(bp, &qpid, "one"));
    lenp_w lb = {q, qp, 1, true};
    CHECK(run_until(len_paused_is, &lb, 8000));
    CHECK_OK(gn_ergo_queue_next(q, &it, 0));
    CHECK_EQ(it.kind, GN_ERGO_ITEM_SIGNAL);
    CHECK_STR(it.signal.reason, "one");
    gn_ergo_item_release(&it);
    CHECK(!gn_ergo_queue_paused(q));
    gn_ergo_proc_free(qp);
    gn_ergo_queue_free(q);

    /* a queue freed with items waiting, its process ended by the detach */
    CHECK_OK(gn_ergo_spawn_queued(t[0].en, &qo, &qp, &q));
    gn_ergo_queue_pid(q, &qpid);
    to = gn_ergo_to_pid(&qpid);
    for (unsigned i = 0; i < 6; i++) {
        gn_edf_value v = str("left");
        CHECK_OK(gn_ergo_send(bp, &to, &v, NULL));
    }
    full_w fw2 = {q, qp};
    CHECK(run_until(len4_paused, &fw2, 8000));
    CHECK_EQ(gn_ergo_proc_queued(qp), 2u);
    gn_ergo_queue_free(q); /* the process still holds it */
    gn_ergo_detach(t[0].en); /* ends the process: the queue goes with its 4 items */
    t[0].en = NULL;
    gn_ergo_detach(t[1].en);
    t[1].en = NULL;
    node_down(&t[0]);
    node_down(&t[1]);
    finish();
}

GN_TEST_MAIN(GN_T(queue_pause_call_signal_close))
