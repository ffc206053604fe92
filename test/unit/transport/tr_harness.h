/*
 * tr_harness.h - helpers for transport tests (conformance and unit).
 *
 * One global environment E per test: a loop (real or virtual clock), a
 * registry with the built-ins, a server and a client instance of the
 * transport under test, and test connections (tconn) driven by simple
 * profiles (echo, verify a byte pattern, write a source, reply on EOF...).
 *
 * Rules the harness checks for every test:
 *  - no handler, completion or close callback runs inside a gn_* call the
 *    test made (E.in_call / E.reentrant);
 *  - every accepted write completes exactly once (per tconn counters);
 *  - at the end every connection and listener is closed, both instances
 *    report nconns == 0 and no libuv TCP handle is left on the loop.
 * Time is bounded: RUN_UNTIL fails the test when its guard expires.
 */
#ifndef TR_HARNESS_H
#define TR_HARNESS_H

#include "golemnet/err.h"
#include "golemnet/log.h"
#include "golemnet/loop.h"
#include "golemnet/multiaddr.h"
#include "golemnet/registry.h"
#include "golemnet/stream.h"
#include "golemnet/transport.h"

#include "gn_test.h"

#include <uv.h>

#define TR_MAX_CONNS 512
#define TR_PAT_LEN (32u << 20)

typedef struct tconn tconn;

/* What a connection does on its own. */
typedef struct tr_profile {
    bool no_read;            /* do not start reading */
    bool echo;               /* write back what arrives */
    bool verify;             /* check arriving bytes against tr_pat() */
    size_t rx_cap;           /* keep up to this many arriving bytes */
    bool close_on_eof;
    const char *reply_on_eof; /* write this (static) on EOF, then shut down */
    const uint8_t *src;      /* write these bytes once open */
    size_t src_len;
    size_t chunk;            /* per write (default 64 KiB) */
    bool shut_when_done;     /* shut down once src is written */
} tr_profile;

struct tconn {
    gn_stream *s;
    bool server;
    tr_profile p;
    uint8_t *rx;
    size_t rx_len;
    uint64_t rx_total;
    uint64_t verify_bad;
    int eofs, errors, last_err, writables;
    bool closing, closed, shut;
    /* writer */
    size_t src_off;
    int eagains;
    int accepted;     /* writes accepted (rc 0) */
    int completed;    /* completions */
    int failed;       /* completions with status != 0 */
    int last_status;
    int write_errors; /* writes refused with an error other than GN_EAGAIN */
    int last_write_rc;
    uint8_t msg[32];  /* small per-connection payload */
};

typedef struct tr_env {
    gn_loop *loop;
    gn_registry *reg;
    const gn_transport_ops *ops;
    const char *name;
    gn_transport *srv;
    gn_transport *cli;
    gn_timer guard;
    bool timed_out;
    bool virt;
    int in_call;
    int reentrant;
    /* listeners */
    int accepts, accept_errors, listeners_open, listeners_closed;
    /* dials */
    int dials_ok, dials_failed, last_dial_err;
    /* connections */
    tr_profile srv_prof;
    tconn *all[TR_MAX_CONNS];
    int nall;
    int closed;
    tconn *last_accepted;
} tr_env;

static tr_env E;
static uint8_t *tr_pattern; /* TR_PAT_LEN bytes of tr_pat(i) */

/* A position-dependent byte, so loss, duplication or reordering shows. */
static inline uint8_t tr_pat(uint64_t i)
{
    uint64_t x = (i + 1) * UINT64_C(0x9E3779B97F4A7C15);
    x ^= x >> 29;
    return (uint8_t)(x >> 32);
}

static inline const uint8_t *tr_pat_buf(void)
{
    if (!tr_pattern) {
        tr_pattern = malloc(TR_PAT_LEN);
        if (!tr_pattern) {
            abort();
        }
        for (size_t i = 0; i < TR_PAT_LEN; i++) {
            tr_pattern[i] = tr_pat(i);
        }
    }
    return tr_pattern;
}

#define TR_ENTER() (E.in_call++)
#define TR_LEAVE() (E.in_call--)
#define TR_CB_CHECK()                                                                        \
    do {                                                                                     \
        if (E.in_call)                                                                       \
            E.reentrant++;                                                                   \
    } while (0)

/* ---- wrapped calls (mark "inside a gn_* call") ---- */

static inline int tr_write(tconn *tc, const gn_slice *iov, size_t n, gn_write_cb cb, void *arg)
{
    TR_ENTER();
    int rc = gn_stream_write(tc->s, iov, n, cb, arg);
    TR_LEAVE();
    return rc;
}

static void tc_closed_cb(gn_stream *s, void *arg)
{
    (void)s;
    tconn *tc = arg;
    TR_CB_CHECK();
    tc->closed = true;
    tc->s = NULL;
    E.closed++;
}

static inline void tc_close(tconn *tc)
{
    if (!tc || !tc->s || tc->closing) {
        return;
    }
    tc->closing = true;
    TR_ENTER();
    gn_stream_close(tc->s, tc_closed_cb, tc);
    TR_LEAVE();
}

static inline void tc_reset(tconn *tc)
{
    if (!tc || !tc->s || tc->closing) {
        return;
    }
    tc->closing = true;
    TR_ENTER();
    gn_stream_reset(tc->s, tc_closed_cb, tc);
    TR_LEAVE();
}

static inline int tc_shutdown(tconn *tc)
{
    TR_ENTER();
    int rc = gn_stream_shutdown(tc->s);
    TR_LEAVE();
    if (rc == 0) {
        tc->shut = true;
    }
    return rc;
}

static inline int tc_read_start(tconn *tc)
{
    TR_ENTER();
    int rc = gn_stream_read_start(tc->s);
    TR_LEAVE();
    return rc;
}

static inline int tc_read_stop(tconn *tc)
{
    TR_ENTER();
    int rc = gn_stream_read_stop(tc->s);
    TR_LEAVE();
    return rc;
}

/* ---- writes ---- */

static void tc_write_done(void *arg, int status)
{
    tconn *tc = arg;
    TR_CB_CHECK();
    tc->completed++;
    if (status != 0) {
        tc->failed++;
        tc->last_status = status;
    }
}

/* Writes @len bytes that stay valid for the test (static or tconn-owned). */
static inline int tc_send(tconn *tc, const void *data, size_t len)
{
    gn_slice sl = gn_slice_of(data, len);
    int rc = tr_write(tc, &sl, 1, tc_write_done, tc);
    if (rc == 0) {
        tc->accepted++;
    } else if (rc == GN_EAGAIN) {
        tc->eagains++;
    } else {
        tc->write_errors++;
        tc->last_write_rc = rc;
    }
    return rc;
}

typedef struct tr_copy {
    tconn *tc;
    size_t len;
    uint8_t data[];
} tr_copy;

static void tc_copy_done(void *arg, int status)
{
    tr_copy *c = arg;
    tc_write_done(c->tc, status);
    free(c);
}

/* Writes a private copy of @data (freed by the completion). */
static inline int tc_send_copy(tconn *tc, const uint8_t *data, size_t len)
{
    tr_copy *c = malloc(sizeof *c + len);
    if (!c) {
        return GN_ENOMEM;
    }
    c->tc = tc;
    c->len = len;
    memcpy(c->data, data, len);
    gn_slice sl = gn_slice_of(c->data, len);
    int rc = tr_write(tc, &sl, 1, tc_copy_done, c);
    if (rc == 0) {
        tc->accepted++;
    } else {
        free(c);
        if (rc == GN_EAGAIN) {
            tc->eagains++;
        } else {
            tc->write_errors++;
            tc->last_write_rc = rc;
        }
    }
    return rc;
}

/* Writes the profile's source until done or GN_EAGAIN. */
static inline void tc_pump(tconn *tc)
{
    size_t chunk = tc->p.chunk ? tc->p.chunk : 64u * 1024u;
    while (tc->p.src && tc->s && !tc->closing && !tc->shut && tc->src_off < tc->p.src_len) {
        size_t n = tc->p.src_len - tc->src_off;
        if (n > chunk) {
            n = chunk;
        }
        int rc = tc_send(tc, tc->p.src + tc->src_off, n);
        if (rc < 0) {
            return;
        }
        tc->src_off += n;
    }
    if (tc->p.src && tc->p.shut_when_done && tc->s && !tc->closing && !tc->shut &&
        tc->src_off == tc->p.src_len) {
        (void)tc_shutdown(tc);
    }
}

/* ---- handlers ---- */

static void tc_on_data(gn_stream *s, void *ud, const uint8_t *data, size_t len)
{
    (void)s;
    tconn *tc = ud;
    TR_CB_CHECK();
    if (tc->p.verify) {
        for (size_t i = 0; i < len; i++) {
            if (data[i] != tr_pat(tc->rx_total + i)) {
                tc->verify_bad++;
            }
        }
    }
    if (tc->p.rx_cap && tc->rx) {
        size_t room = tc->p.rx_cap - tc->rx_len;
        size_t n = len < room ? len : room;
        memcpy(tc->rx + tc->rx_len, data, n);
        tc->rx_len += n;
    }
    tc->rx_total += len;
    if (tc->p.echo && !tc->closing) {
        (void)tc_send_copy(tc, data, len);
    }
}

static void tc_on_eof(gn_stream *s, void *ud)
{
    (void)s;
    tconn *tc = ud;
    TR_CB_CHECK();
    tc->eofs++;
    if (tc->p.reply_on_eof && !tc->closing) {
        (void)tc_send(tc, tc->p.reply_on_eof, strlen(tc->p.reply_on_eof));
        if (!tc->shut) {
            (void)tc_shutdown(tc);
        }
    }
    if (tc->p.close_on_eof) {
        tc_close(tc);
    }
}

static void tc_on_error(gn_stream *s, void *ud, int err)
{
    (void)s;
    tconn *tc = ud;
    TR_CB_CHECK();
    tc->errors++;
    tc->last_err = err;
    tc_close(tc); /* the contract: the consumer must close */
}

static void tc_on_writable(gn_stream *s, void *ud)
{
    (void)s;
    tconn *tc = ud;
    TR_CB_CHECK();
    tc->writables++;
    tc_pump(tc);
}

static const gn_stream_handler tc_handler = {
    .on_data = tc_on_data,
    .on_eof = tc_on_eof,
    .on_error = tc_on_error,
    .on_writable = tc_on_writable,
};

/* A test connection with profile @p; owned by E until tr_env_fini. */
static inline tconn *tc_new(const tr_profile *p, bool server)
{
    if (E.nall >= TR_MAX_CONNS) {
        return NULL;
    }
    tconn *tc = calloc(1, sizeof *tc);
    if (!tc) {
        return NULL;
    }
    if (p) {
        tc->p = *p;
    }
    tc->server = server;
    if (tc->p.rx_cap) {
        tc->rx = calloc(1, tc->p.rx_cap);
    }
    E.all[E.nall++] = tc;
    return tc;
}

/* Attaches an opened stream: handler, reading, source. */
static inline void tc_attach(tconn *tc, gn_stream *s)
{
    tc->s = s;
    gn_stream_set_handler(s, &tc_handler, tc);
    if (!tc->p.no_read) {
        (void)tc_read_start(tc);
    }
    tc_pump(tc);
}

/* ---- transport callbacks ---- */

static void tr_accept_cb(void *arg, gn_listener *l, int status, gn_stream *conn)
{
    (void)arg;
    (void)l;
    TR_CB_CHECK();
    if (status < 0) {
        E.accept_errors++;
        return;
    }
    E.accepts++;
    tconn *tc = tc_new(&E.srv_prof, true);
    if (!tc) {
        gn_stream_close(conn, NULL, NULL);
        return;
    }
    E.last_accepted = tc;
    tc_attach(tc, conn);
}

static void tr_dial_cb(void *arg, int status, gn_stream *conn)
{
    tconn *tc = arg;
    TR_CB_CHECK();
    if (status < 0) {
        E.dials_failed++;
        E.last_dial_err = status;
        return;
    }
    E.dials_ok++;
    if (!tc) {
        gn_stream_close(conn, NULL, NULL);
        return;
    }
    tc_attach(tc, conn);
}

static void tr_listener_closed_cb(gn_listener *l, void *arg)
{
    (void)l;
    (void)arg;
    TR_CB_CHECK();
    E.listeners_open--;
    E.listeners_closed++;
}

/* Listens on @addr (string). Returns 0 or the error. */
static inline int tr_listen(gn_transport *t, const char *addr, gn_listener **out)
{
    gn_multiaddr *ma = NULL;
    int rc = gn_multiaddr_parse(addr, &ma);
    if (rc < 0) {
        return rc;
    }
    TR_ENTER();
    rc = gn_transport_listen(t, ma, tr_accept_cb, NULL, out);
    TR_LEAVE();
    gn_multiaddr_free(ma);
    if (rc == 0) {
        E.listeners_open++;
    }
    return rc;
}

static inline void tr_listener_close(gn_listener *l)
{
    TR_ENTER();
    gn_listener_close(l, tr_listener_closed_cb, NULL);
    TR_LEAVE();
}

/* Dials @ma from @t into @tc (may be NULL: close on success). */
static inline int tr_dial_ma(gn_transport *t, const gn_multiaddr *ma, tconn *tc)
{
    TR_ENTER();
    int rc = gn_transport_dial(t, ma, tr_dial_cb, tc, NULL);
    TR_LEAVE();
    return rc;
}

static inline int tr_dial(gn_transport *t, const char *addr, tconn *tc)
{
    gn_multiaddr *ma = NULL;
    int rc = gn_multiaddr_parse(addr, &ma);
    if (rc < 0) {
        return rc;
    }
    rc = tr_dial_ma(t, ma, tc);
    gn_multiaddr_free(ma);
    return rc;
}

/* ---- running the loop ---- */

static void tr_guard_fn(gn_timer *t, void *arg)
{
    (void)t;
    (void)arg;
    E.timed_out = true;
}

/* One loop iteration (non-blocking on a virtual clock). */
static inline void tr_step(void)
{
    gn_loop_run(E.loop, E.virt ? GN_RUN_NOWAIT : GN_RUN_ONCE);
}

/* Runs until @cond holds or @ms (wall time) passed; fails the test then. */
#define RUN_UNTIL(cond, ms)                                                                  \
    do {                                                                                     \
        gn_time tr_dl_ = gn_now() + (gn_time)(ms)*GN_MS;                                     \
        E.timed_out = false;                                                                 \
        if (!E.virt)                                                                         \
            gn_timer_start(&E.guard, (gn_time)(ms)*GN_MS, tr_guard_fn, NULL);                \
        while (!(cond) && !E.timed_out) {                                                    \
            tr_step();                                                                       \
            if (E.virt && gn_now() > tr_dl_)                                                 \
                E.timed_out = true;                                                          \
        }                                                                                    \
        gn_timer_stop(&E.guard);                                                             \
        if (!(cond))                                                                         \
            printf("# timed out after %d ms waiting for: %s\n", (int)(ms), #cond);           \
        CHECK(cond);                                                                         \
    } while (0)

/* Runs the loop for @ms of loop time (real clock) or @ms of NOWAIT turns
 * bounded by wall time (virtual clock: until idle, at most @ms). */
static inline void tr_run_for(unsigned ms)
{
    if (E.virt) {
        gn_time dl = gn_now() + (gn_time)ms * GN_MS;
        for (int i = 0; i < 10000 && gn_now() < dl; i++) {
            gn_loop_run(E.loop, GN_RUN_NOWAIT);
        }
        return;
    }
    E.timed_out = false;
    gn_timer_start(&E.guard, (gn_time)ms * GN_MS, tr_guard_fn, NULL);
    while (!E.timed_out) {
        gn_loop_run(E.loop, GN_RUN_ONCE);
    }
}

static void tr_count_tcp(uv_handle_t *h, void *arg)
{
    if (uv_handle_get_type(h) == UV_TCP) {
        (*(int *)arg)++;
    }
}

/* libuv TCP handles on the loop, closing ones included. */
static inline int tr_tcp_handles(void)
{
    int n = 0;
    uv_walk(gn_loop_uv(E.loop), tr_count_tcp, &n);
    return n;
}

/* ---- environment ---- */

static inline void tr_env_init(const char *name, const gn_transport_config *scfg,
                               const gn_transport_config *ccfg, bool virt)
{
    memset(&E, 0, sizeof E);
    E.name = name;
    E.virt = virt;
    gn_loop_config lc;
    gn_loop_config_default(&lc);
    lc.virtual_clock = virt;
    CHECK_OK(gn_loop_new(&lc, &E.loop));
    CHECK_OK(gn_registry_new(&E.reg));
    CHECK_OK(gn_registry_add_builtins(E.reg));
    E.ops = (const gn_transport_ops *)gn_registry_find(E.reg, GN_LAYER_TRANSPORT, name);
    if (!E.ops) {
        printf("# transport \"%s\" is not built in\n", name);
    }
    CHECK(E.ops != NULL);
    CHECK_OK(gn_transport_new(E.ops, E.loop, scfg, &E.srv));
    CHECK_OK(gn_transport_new(E.ops, E.loop, ccfg, &E.cli));
    gn_timer_init(E.loop, &E.guard);
}

static inline bool tr_all_closed(void)
{
    for (int i = 0; i < E.nall; i++) {
        if (E.all[i]->s && !E.all[i]->closed) {
            return false;
        }
    }
    return E.listeners_open == 0;
}

/* Closes every connection still open, then checks the loop is clean. */
static inline void tr_env_fini(void)
{
    for (int i = 0; i < E.nall; i++) {
        tc_close(E.all[i]);
    }
    RUN_UNTIL(tr_all_closed(), 5000);
    /* let libuv finish handle closes started by the last callbacks */
    for (int i = 0; i < 8; i++) {
        gn_loop_run(E.loop, GN_RUN_NOWAIT);
    }
    CHECK_EQ(E.srv->nconns, 0);
    CHECK_EQ(E.cli->nconns, 0);
    CHECK_EQ(tr_tcp_handles(), 0);
    CHECK_EQ(E.reentrant, 0);
    for (int i = 0; i < E.nall; i++) {
        tconn *tc = E.all[i];
        if (tc->completed != tc->accepted) {
            printf("# conn %d: %d writes accepted, %d completed\n", i, tc->accepted,
                   tc->completed);
        }
        CHECK_EQ(tc->completed, tc->accepted);
    }
    gn_transport_free(E.srv);
    gn_transport_free(E.cli);
    E.srv = E.cli = NULL;
    gn_registry_free(E.reg);
    gn_loop_free(E.loop);
    E.loop = NULL;
    for (int i = 0; i < E.nall; i++) {
        free(E.all[i]->rx);
        free(E.all[i]);
    }
    E.nall = 0;
}

/* Address helpers. */
static inline int tr_ma_string(const gn_multiaddr *ma, char *out, size_t len)
{
    return gn_multiaddr_to_string(ma, out, len);
}

#endif /* TR_HARNESS_H */
