/*
 * golemnet-p2pd's server (p2pd_uv.h): the libp2p daemon control protocol
 * on a node. Requests are decoded and answers built by the sans-I/O core
 * (p2pd.c); this file drives the node through its public API and the
 * connections through the shared control-socket layer (../gni_ipc.h).
 * Spec: go-libp2p-daemon specs/CONTROL.md, specs/DHT.md; docs/p2pd.md.
 */
#include "p2pd_uv.h"

#include "gni_ipc.h"
#include "p2pd.h"

#include "golemnet/err.h"
#include "golemnet/host.h"
#include "golemnet/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define P2PD_LOG "p2pd"
/* Longest textual form of a control or handler address we keep. */
#define P2PD_ADDR_STR_MAX (GNI_IPC_PATH_MAX + 64u)
/* Addresses read from the peer store or the node for one answer. */
#define P2PD_ANSWER_ADDRS 32u
/* Protocols of a peer listed by PEERSTORE GET_PROTOCOLS. */
#define P2PD_PEER_PROTOS_MAX 128u
/* Channels LIST_PEERS reports at most (the node's default limit is 1024). */
#define P2PD_CHANS_MAX 8192u
/* How long CONNECT's addresses stay in the peer store (go: TempAddrTTL is 2 min). */
#define P2PD_CONNECT_ADDR_TTL (10u * 60u * GN_S)

typedef struct p2pd_conn p2pd_conn;

enum { P2PD_CONTROL = 0, P2PD_HANDLER = 1 };
enum {
    P2PD_ST_REQ = 0,  /* reading the next request */
    P2PD_ST_BUSY = 1, /* a request is being served */
    P2PD_ST_PIPE = 2, /* raw stream bytes both ways */
    P2PD_ST_DONE = 3  /* closing */
};
/* What a pending DHT operation answers with. */
enum { P2PD_DHT_ANS_VALUE = 0, P2PD_DHT_ANS_SEARCH = 1, P2PD_DHT_ANS_PUBKEY = 2 };

/* Client bytes on their way into a stream (copied: the stream borrows them). */
typedef struct p2pd_wreq {
    p2pd_conn *c;
    size_t len;
    uint8_t data[];
} p2pd_wreq;

struct p2pd_conn {
    gni_p2pd *d;
    p2pd_conn *prev, *next;
    int kind;
    int state;
    gni_ipc_conn *ipc;
    bool ipc_open;   /* ipc exists and its on_close has not run */
    bool connecting; /* handler: gni_ipc_connect() is pending */
    /* the request being served */
    gni_p2pd_req req;
    gn_op *op;
    gn_timer timer;
    bool timed_out;
    size_t proto_idx;
    int dht_answer;
    /* the stream pipe */
    gn_stream *s;
    bool s_open; /* s exists and its close callback has not run */
    bool s_closing;
    bool s_shut;
    char proto[GN_PROTOCOL_ID_MAX];
    p2pd_wreq *pending; /* client bytes the stream refused (GN_EAGAIN) */
    size_t inflight;    /* client bytes accepted by the stream, not completed */
    size_t nwrites;     /* their completions still to come */
    bool client_eof;
    bool stream_eof;
    bool client_paused;
    bool stream_paused;
    /* control: the next request waits for the client to read answers */
    bool read_wait;
};

typedef struct p2pd_handler {
    char proto[GN_PROTOCOL_ID_MAX];
    char addr[P2PD_ADDR_STR_MAX];
} p2pd_handler;

typedef struct p2pd_tag {
    gn_peer_id peer;
    char tag[GNI_P2PD_TAG_MAX + 1];
    int64_t weight;
} p2pd_tag;

struct gni_p2pd {
    gn_node *node;
    gn_host *host;
    gn_loop *loop;
    uv_loop_t *uvl;
    char listen[P2PD_ADDR_STR_MAX];
    char addr[P2PD_ADDR_STR_MAX];
    bool dht;
    size_t max_conns;         /* control connections */
    size_t max_handler_conns; /* stream-handler connections */
    gn_time req_read_timeout;
    gni_ipc_listener *lst;
    bool lst_open;
    bool started;
    bool closing;
    bool close_reported;
    void (*close_cb)(void *arg);
    void *close_arg;
    p2pd_conn *conns;
    size_t nconns;    /* all connections */
    size_t nhconns;   /* of them, stream-handler connections */
    gn_host_sub *sub;
    gn_channel **chans; /* open channels, held */
    size_t nchans, chans_cap;
    p2pd_handler handlers[GNI_P2PD_HANDLERS_MAX];
    size_t nhandlers;
    p2pd_tag *tags;
    size_t ntags;
    gni_p2pd_stats st;
};

static void conn_maybe_free(p2pd_conn *c);
static void conn_next(p2pd_conn *c);
static void pipe_abort(p2pd_conn *c);
static void pipe_check(p2pd_conn *c);
static void server_check_closed(gni_p2pd *d);

/* ------------------------------------------------------------ responses */

static void conn_close_ipc(p2pd_conn *c, bool flush)
{
    if (c->ipc_open && c->ipc) {
        gni_ipc_conn_close(c->ipc, flush);
    }
}

/* Sends a built frame (freed here); false when the connection is gone. */
static bool conn_send(p2pd_conn *c, int rc, gni_p2pd_frame *f)
{
    if (rc < 0) {
        GN_LOG(GN_LOG_ERR, P2PD_LOG, "building a response failed: %s", gn_strerror(rc));
        conn_close_ipc(c, false);
        return false;
    }
    if (!c->ipc_open) {
        gn_free(f->data);
        return false;
    }
    /* Answers are few and bounded (docs/p2pd.md "Limits"): never refused. */
    rc = gni_ipc_conn_write_force(c->ipc, f->data, f->len, false);
    gn_free(f->data);
    if (rc < 0) {
        conn_close_ipc(c, false);
        return false;
    }
    return true;
}

static bool conn_error(p2pd_conn *c, const char *fmt, ...) GN_PRINTF(2, 3);
static bool conn_error(p2pd_conn *c, const char *fmt, ...)
{
    char msg[GNI_P2PD_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    GN_LOG(GN_LOG_INFO, P2PD_LOG, "ERROR response: %s", msg);
    c->d->st.errors++;
    gni_p2pd_frame f;
    int rc = gni_p2pd_resp_error(msg, &f);
    return conn_send(c, rc, &f);
}

static bool conn_ok(p2pd_conn *c)
{
    gni_p2pd_frame f;
    int rc = gni_p2pd_resp_ok(&f);
    return conn_send(c, rc, &f);
}

/* The error text of a failed operation: a timeout the server imposed is named. */
static bool conn_op_error(p2pd_conn *c, const char *what, int status)
{
    if (c->timed_out) {
        return conn_error(c, "%s: timed out after %lld s", what, (long long)c->req.timeout_s);
    }
    return conn_error(c, "%s: %s (%s)", what, gn_strerror(status), gn_err_name(status));
}

/* ------------------------------------------------------------ lifetime */

static void conn_unlink(p2pd_conn *c)
{
    gni_p2pd *d = c->d;
    if (c->prev) {
        c->prev->next = c->next;
    } else if (d->conns == c) {
        d->conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    c->prev = c->next = NULL;
    d->nconns--;
    if (c->kind == P2PD_HANDLER) {
        d->nhconns--;
    }
    d->st.conns_open = d->nconns;
}

/* Frees @c once nothing refers to it any more. Call last in a callback. */
static void conn_maybe_free(p2pd_conn *c)
{
    if (c->ipc_open || c->connecting || c->s_open || c->op || c->nwrites > 0) {
        return;
    }
    gni_p2pd *d = c->d;
    gn_timer_stop(&c->timer);
    gni_p2pd_req_fini(&c->req);
    gn_free(c->pending);
    conn_unlink(c);
    gn_free(c);
    server_check_closed(d);
}

static p2pd_conn *conn_new(gni_p2pd *d, int kind)
{
    p2pd_conn *c = gn_calloc(1, sizeof *c);
    if (!c) {
        return NULL;
    }
    c->d = d;
    c->kind = kind;
    gn_timer_init(d->loop, &c->timer);
    c->next = d->conns;
    if (d->conns) {
        d->conns->prev = c;
    }
    d->conns = c;
    d->nconns++;
    if (kind == P2PD_HANDLER) {
        d->nhconns++;
    }
    d->st.conns_open = d->nconns;
    return c;
}

static void conn_timeout(gn_timer *t, void *arg)
{
    (void)t;
    p2pd_conn *c = arg;
    if (c->op) {
        c->timed_out = true;
        gn_op_cancel(c->op); /* the operation's callback reports it */
    } else if (c->kind == P2PD_CONTROL && c->state == P2PD_ST_REQ && c->ipc_open) {
        /* no complete request in time: the slot goes back */
        gni_p2pd *d = c->d;
        d->st.read_timeouts++;
        GN_LOG(GN_LOG_INFO, P2PD_LOG, "control connection closed: no complete request in %llu ms",
               (unsigned long long)(d->req_read_timeout / GN_MS));
        c->state = P2PD_ST_DONE;
        gni_p2pd_frame f;
        char msg[96];
        snprintf(msg, sizeof msg, "no complete request within %llu ms; closing the connection",
                 (unsigned long long)(d->req_read_timeout / GN_MS));
        d->st.errors++;
        if (gni_p2pd_resp_error(msg, &f) == 0) {
            (void)gni_ipc_conn_write_force(c->ipc, f.data, f.len, false);
            gn_free(f.data);
        }
        conn_close_ipc(c, true);
    }
}

/* Control connection waiting for a request: bound the wait (docs/p2pd.md "Limits"). */
static void conn_read_timer(p2pd_conn *c)
{
    gn_timer_start(&c->timer, c->d->req_read_timeout, conn_timeout, c);
}

/* Marks @c busy with an operation bounded by the request's timeout. */
static void conn_busy(p2pd_conn *c)
{
    c->state = P2PD_ST_BUSY;
    c->timed_out = false;
    gn_timer_start(&c->timer, (gn_time)c->req.timeout_s * GN_S, conn_timeout, c);
}

/*
 * Common start of an operation's callback: forgets the handle and the
 * timer. False when the client is gone (then @c may have been freed).
 */
static bool conn_op_done(p2pd_conn *c)
{
    c->op = NULL;
    gn_timer_stop(&c->timer);
    if (!c->ipc_open || c->d->closing) {
        c->state = P2PD_ST_DONE;
        conn_close_ipc(c, false);
        conn_maybe_free(c);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------ helpers */

/* "/p2p/<id>" as a multiaddr, for connects by peer ID. */
static int p2pd_peer_ma(const gn_peer_id *peer, gn_multiaddr **out)
{
    char s[GN_PEER_ID_MAX_STRLEN + 8];
    memcpy(s, "/p2p/", 5);
    int n = gn_peer_id_to_string(peer, s + 5, sizeof s - 5);
    if (n < 0) {
        return n;
    }
    return gn_multiaddr_parse(s, out);
}

static bool p2pd_is_self(gni_p2pd *d, const gn_peer_id *peer)
{
    gn_peer_id self;
    gn_host_peer_id(d->host, &self);
    return gn_peer_id_equal(&self, peer);
}

/* The remote peer and address of @ch (addr NULL when it does not parse). */
static void p2pd_chan_remote(gn_channel *ch, gn_peer_id *peer, gn_multiaddr **addr)
{
    gn_channel_info info;
    memset(&info, 0, sizeof info);
    gn_channel_state_get(ch, &info);
    *peer = info.remote_peer;
    *addr = NULL;
    if (info.remote_addr[0] && gn_multiaddr_parse(info.remote_addr, addr) < 0) {
        *addr = NULL;
    }
}

/* ------------------------------------------------------------ stream pipes */

static void pipe_stream_closed(gn_stream *s, void *arg)
{
    (void)s;
    p2pd_conn *c = arg;
    c->s_open = false;
    c->s = NULL;
    conn_maybe_free(c);
}

static void pipe_close_stream(p2pd_conn *c, bool reset)
{
    if (!c->s_open || c->s_closing) {
        return;
    }
    c->s_closing = true;
    if (reset) {
        gn_stream_reset(c->s, pipe_stream_closed, c);
    } else {
        gn_stream_close(c->s, pipe_stream_closed, c);
    }
}

/* Something failed: reset the stream, close the connection (what is queued still goes out). */
static void pipe_abort(p2pd_conn *c)
{
    c->state = P2PD_ST_DONE;
    pipe_close_stream(c, true);
    conn_close_ipc(c, true);
}

static void pipe_wrote(void *arg, int status)
{
    p2pd_wreq *w = arg;
    p2pd_conn *c = w->c;
    c->inflight -= w->len;
    c->nwrites--;
    gn_free(w);
    if (status < 0 && status != GN_ECANCELED && c->state == P2PD_ST_PIPE) {
        GN_LOG(GN_LOG_DEBUG, P2PD_LOG, "stream write failed: %s", gn_err_name(status));
        pipe_abort(c);
    } else if (c->state == P2PD_ST_PIPE) {
        pipe_check(c);
    }
    conn_maybe_free(c);
}

/* Hands @w to the stream; false when the stream refused it (kept as pending). */
static bool pipe_push(p2pd_conn *c, p2pd_wreq *w)
{
    gn_slice iov = gn_slice_of(w->data, w->len);
    int rc = gn_stream_write(c->s, &iov, 1, pipe_wrote, w);
    if (rc == GN_EAGAIN) {
        c->pending = w; /* on_writable retries it */
        return false;
    }
    if (rc < 0) {
        gn_free(w);
        pipe_abort(c);
        return false;
    }
    c->inflight += w->len;
    c->nwrites++;
    return true;
}

/* Flow control and the end of a pipe, after any change. */
static void pipe_check(p2pd_conn *c)
{
    if (c->state != P2PD_ST_PIPE) {
        return;
    }
    /* client -> stream: read the client while the stream takes its bytes */
    bool want_client = !c->client_eof && !c->pending && c->inflight <= GNI_P2PD_PIPE_WINDOW / 2;
    if (want_client && c->client_paused && c->ipc_open) {
        c->client_paused = false;
        if (gni_ipc_conn_read_start(c->ipc) < 0) {
            c->client_eof = true; /* ended meanwhile */
        }
    }
    /* the client's end of data, once all of it went into the stream */
    if (c->client_eof && !c->pending && !c->s_shut && c->s_open && !c->s_closing) {
        c->s_shut = true;
        int rc = gn_stream_shutdown(c->s);
        if (rc < 0 && rc != GN_ESTATE) {
            GN_LOG(GN_LOG_DEBUG, P2PD_LOG, "stream shutdown: %s", gn_err_name(rc));
        }
    }
    /* both sides ended and every byte went out: close (flushing the client's side) */
    if (c->client_eof && c->stream_eof && !c->pending && c->inflight == 0) {
        c->state = P2PD_ST_DONE;
        pipe_close_stream(c, false);
        conn_close_ipc(c, true);
    }
}

static void pipe_on_data(gn_stream *s, void *ud, const uint8_t *data, size_t len)
{
    (void)s;
    p2pd_conn *c = ud;
    if (c->state != P2PD_ST_PIPE || !c->ipc_open) {
        return;
    }
    int rc = gni_ipc_conn_write(c->ipc, data, len, false);
    if (rc == GN_EAGAIN) {
        /* the stream kept delivering after a pause: take it (bounded by one read) */
        rc = gni_ipc_conn_write_force(c->ipc, data, len, false);
    }
    if (rc < 0) {
        pipe_abort(c);
        return;
    }
    if (gni_ipc_conn_queued(c->ipc) >= GNI_P2PD_PIPE_WINDOW && !c->stream_paused) {
        c->stream_paused = true;
        gn_stream_read_stop(c->s);
    }
}

static void pipe_on_eof(gn_stream *s, void *ud)
{
    (void)s;
    p2pd_conn *c = ud;
    c->stream_eof = true;
    if (c->state == P2PD_ST_PIPE && c->ipc_open) {
        gni_ipc_conn_shutdown(c->ipc);
    }
    pipe_check(c);
}

static void pipe_on_error(gn_stream *s, void *ud, int err)
{
    (void)s;
    p2pd_conn *c = ud;
    GN_LOG(GN_LOG_DEBUG, P2PD_LOG, "stream %s: %s", c->proto, gn_err_name(err));
    pipe_abort(c);
}

static void pipe_on_writable(gn_stream *s, void *ud)
{
    (void)s;
    p2pd_conn *c = ud;
    if (c->state != P2PD_ST_PIPE || !c->pending) {
        return;
    }
    p2pd_wreq *w = c->pending;
    c->pending = NULL;
    if (pipe_push(c, w)) {
        pipe_check(c);
    }
}

static const gn_stream_handler pipe_stream_handler = {
    .on_data = pipe_on_data,
    .on_eof = pipe_on_eof,
    .on_error = pipe_on_error,
    .on_writable = pipe_on_writable,
};

/* Client bytes: into the stream, with backpressure. */
static void pipe_on_client_data(gni_ipc_conn *ipc, const uint8_t *data, size_t len, void *ud)
{
    p2pd_conn *c = ud;
    if (c->state != P2PD_ST_PIPE || !c->s_open || c->s_closing) {
        return;
    }
    p2pd_wreq *w = NULL;
    if (c->pending) {
        /* delivered past a pause: append to what waits (bounded by one read) */
        w = gn_realloc(c->pending, sizeof *w + c->pending->len + len);
        if (!w) {
            pipe_abort(c);
            return;
        }
        memcpy(w->data + w->len, data, len);
        w->len += len;
        c->pending = w;
        return;
    }
    w = gn_malloc(sizeof *w + len);
    if (!w) {
        pipe_abort(c);
        return;
    }
    w->c = c;
    w->len = len;
    memcpy(w->data, data, len);
    bool taken = pipe_push(c, w);
    if (c->state != P2PD_ST_PIPE) {
        return;
    }
    if ((!taken || c->inflight > GNI_P2PD_PIPE_WINDOW) && !c->client_paused) {
        c->client_paused = true;
        gni_ipc_conn_read_stop(ipc);
    }
}

static void pipe_on_client_writable(gni_ipc_conn *ipc, void *ud)
{
    (void)ipc;
    p2pd_conn *c = ud;
    if (c->state == P2PD_ST_PIPE && c->stream_paused && c->s_open && !c->s_closing) {
        c->stream_paused = false;
        gn_stream_read_start(c->s);
    }
}

/* Turns @c into a pipe between its connection and @s (owned from now on). */
static void pipe_start(p2pd_conn *c, gn_stream *s)
{
    c->s = s;
    c->s_open = true;
    c->state = P2PD_ST_PIPE;
    c->d->st.pipes++;
    gn_stream_set_handler(s, &pipe_stream_handler, c);
    gni_ipc_conn_set_raw(c->ipc);
    (void)gni_ipc_conn_set_limits(c->ipc, GNI_P2PD_REQ_MAX, GNI_P2PD_PIPE_WINDOW);
    if (gn_stream_read_start(s) < 0 || gni_ipc_conn_read_start(c->ipc) < 0) {
        pipe_abort(c);
    }
}

/* ------------------------------------------------------------ connection callbacks */

static void conn_on_msg(gni_ipc_conn *ipc, const uint8_t *msg, size_t len, void *ud);

static void conn_on_end(gni_ipc_conn *ipc, int err, void *ud)
{
    (void)ipc;
    p2pd_conn *c = ud;
    if (c->state == P2PD_ST_PIPE) {
        if (err == GN_EEOF) {
            c->client_eof = true;
            pipe_check(c);
        } else {
            pipe_abort(c);
        }
        return;
    }
    if (err == GN_EFRAMESIZE || err == GN_EPARSE) {
        conn_error(c, "framing lost: %s (a request is an unsigned varint length, at most %u, "
                      "then a Request message); closing the connection",
                   gn_strerror(err), GNI_P2PD_REQ_MAX);
    }
    c->state = P2PD_ST_DONE;
    if (c->op) {
        gn_op_cancel(c->op);
    }
    conn_close_ipc(c, true);
}

static void conn_on_close(gni_ipc_conn *ipc, void *ud)
{
    (void)ipc;
    p2pd_conn *c = ud;
    c->ipc_open = false;
    c->ipc = NULL;
    if (c->op) {
        gn_op_cancel(c->op); /* its callback frees @c */
    }
    if (c->s_open) {
        /* the client went away mid-stream: the peer sees a reset */
        pipe_close_stream(c, !(c->client_eof && c->stream_eof));
    }
    c->state = P2PD_ST_DONE;
    conn_maybe_free(c);
}

static void conn_on_writable(gni_ipc_conn *ipc, void *ud)
{
    p2pd_conn *c = ud;
    if (c->state == P2PD_ST_REQ && c->read_wait) {
        /* the client read half of the queued answers: read its next request */
        c->read_wait = false;
        if (gni_ipc_conn_read_start(ipc) < 0) {
            c->state = P2PD_ST_DONE;
            conn_close_ipc(c, true);
        }
        return;
    }
    pipe_on_client_writable(ipc, ud);
}

static void conn_on_data(gni_ipc_conn *ipc, const uint8_t *data, size_t len, void *ud)
{
    pipe_on_client_data(ipc, data, len, ud);
}

static const gni_ipc_conn_cbs conn_cbs = {
    .on_msg = conn_on_msg,
    .on_data = conn_on_data,
    .on_end = conn_on_end,
    .on_writable = conn_on_writable,
    .on_close = conn_on_close,
};

/* The request is answered: read the next one. */
static void conn_next(p2pd_conn *c)
{
    gni_p2pd_req_fini(&c->req);
    if (c->state == P2PD_ST_DONE || !c->ipc_open) {
        return;
    }
    c->state = P2PD_ST_REQ;
    conn_read_timer(c);
    if (gni_ipc_conn_queued(c->ipc) >= GNI_P2PD_CTL_WRITE_MAX) {
        /* answers pile up unread: on_writable resumes at half (forced writes included) */
        c->read_wait = true;
        c->d->st.read_waits++;
        return;
    }
    if (gni_ipc_conn_read_start(c->ipc) < 0) {
        c->state = P2PD_ST_DONE;
        conn_close_ipc(c, true);
    }
}

/* ------------------------------------------------------------ IDENTIFY, LIST_PEERS, DISCONNECT */

static void serve_identify(p2pd_conn *c)
{
    gni_p2pd *d = c->d;
    const gn_multiaddr *addrs[P2PD_ANSWER_ADDRS];
    size_t n = gn_host_listen_addrs(d->host, addrs, P2PD_ANSWER_ADDRS);
    n += gn_host_announced_addrs(d->host, addrs + n, P2PD_ANSWER_ADDRS - n);
    gn_peer_id self;
    gn_host_peer_id(d->host, &self);
    gni_p2pd_frame f;
    int rc = gni_p2pd_resp_identify(&self, addrs, n, &f);
    if (conn_send(c, rc, &f)) {
        conn_next(c);
    }
}

static void serve_list_peers(p2pd_conn *c)
{
    gni_p2pd *d = c->d;
    size_t n = d->nchans;
    gn_router_peer *peers = gn_calloc(n ? n : 1, sizeof *peers);
    gn_multiaddr **addrs = gn_calloc(n ? n : 1, sizeof *addrs);
    if (!peers || !addrs) {
        gn_free(peers);
        gn_free(addrs);
        if (conn_error(c, "LIST_PEERS: out of memory")) {
            conn_next(c);
        }
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        gn_channel_info info;
        if (gn_channel_state_get(d->chans[i], &info) != GN_CHANNEL_OPEN) {
            continue;
        }
        p2pd_chan_remote(d->chans[i], &peers[k].id, &addrs[k]);
        peers[k].addrs = &addrs[k];
        peers[k].naddrs = addrs[k] ? 1 : 0;
        k++;
    }
    gni_p2pd_frame f;
    int rc = gni_p2pd_resp_peers(peers, k, &f);
    for (size_t i = 0; i < k; i++) {
        gn_multiaddr_free(addrs[i]);
    }
    gn_free(peers);
    gn_free(addrs);
    if (conn_send(c, rc, &f)) {
        conn_next(c);
    }
}

static void serve_disconnect(p2pd_conn *c)
{
    gni_p2pd *d = c->d;
    for (size_t i = 0; i < d->nchans; i++) {
        gn_channel_info info;
        gn_channel_state_get(d->chans[i], &info);
        if (gn_peer_id_equal(&info.remote_peer, &c->req.peer)) {
            gn_channel_close(d->chans[i]); /* the DISCONNECTED event removes it */
        }
    }
    if (conn_ok(c)) {
        conn_next(c);
    }
}

/* ------------------------------------------------------------ CONNECT */

static void connect_done(void *arg, int status, gn_channel *ch)
{
    (void)ch;
    p2pd_conn *c = arg;
    if (!conn_op_done(c)) {
        return;
    }
    bool sent = status == 0 ? conn_ok(c) : conn_op_error(c, "CONNECT", status);
    if (sent) {
        conn_next(c);
    }
    conn_maybe_free(c);
}

static void serve_connect(p2pd_conn *c)
{
    gni_p2pd *d = c->d;
    gni_p2pd_req *r = &c->req;
    bool ok = false;
    if (p2pd_is_self(d, &r->peer)) {
        ok = conn_error(c, "CONNECT: the peer is this daemon itself");
    } else {
        int rc = 0;
        if (r->naddrs > 0) {
            rc = gn_host_peer_add_addrs(d->host, &r->peer, (const gn_multiaddr *const *)r->addrs,
                                        r->naddrs, P2PD_CONNECT_ADDR_TTL, GN_ADDR_SRC_MANUAL);
        }
        gn_multiaddr *target = NULL;
        if (rc < 0) {
            ok = conn_error(c, "CONNECT: an address does not belong to the peer or is too long "
                               "(%s)",
                            gn_err_name(rc));
        } else if ((rc = p2pd_peer_ma(&r->peer, &target)) < 0) {
            ok = conn_error(c, "CONNECT: %s", gn_strerror(rc));
        } else {
            rc = gn_host_connect(d->host, target, connect_done, c, &c->op);
            gn_multiaddr_free(target);
            if (rc == 0) {
                conn_busy(c);
                return;
            }
            c->op = NULL;
            ok = conn_error(c, "CONNECT: %s (%s)", gn_strerror(rc), gn_err_name(rc));
        }
    }
    if (ok) {
        conn_next(c);
    }
}

/* ------------------------------------------------------------ STREAM_OPEN */

static int stream_open_try(p2pd_conn *c);

static void stream_opened(void *arg, int status, gn_channel *ch, gn_stream *s)
{
    p2pd_conn *c = arg;
    c->op = NULL;
    if (!c->ipc_open || c->d->closing) {
        if (s) {
            gn_stream_reset(s, NULL, NULL);
        }
        conn_op_done(c);
        return;
    }
    if (status == GN_ENEGOTIATION && !c->timed_out && c->proto_idx + 1 < c->req.nprotos) {
        c->proto_idx++;
        int rc = stream_open_try(c);
        if (rc == 0) {
            return;
        }
        status = rc;
    }
    gn_timer_stop(&c->timer);
    if (status < 0) {
        if (conn_op_error(c, "STREAM_OPEN", status)) {
            conn_next(c);
        }
        conn_maybe_free(c);
        return;
    }
    gn_peer_id peer;
    gn_multiaddr *remote = NULL;
    p2pd_chan_remote(ch, &peer, &remote);
    snprintf(c->proto, sizeof c->proto, "%s", c->req.protos[c->proto_idx]);
    gni_p2pd_frame f;
    int rc = gni_p2pd_stream_info(&peer, remote, c->proto, true, &f);
    gn_multiaddr_free(remote);
    if (!conn_send(c, rc, &f)) {
        gn_stream_reset(s, NULL, NULL);
        conn_maybe_free(c);
        return;
    }
    gni_p2pd_req_fini(&c->req);
    pipe_start(c, s);
    conn_maybe_free(c);
}

static int stream_open_try(p2pd_conn *c)
{
    int rc = gn_host_new_stream_ex(c->d->host, &c->req.peer, c->req.protos[c->proto_idx],
                                   GN_HOST_STREAM_LIMITED_OK, stream_opened, c, &c->op);
    if (rc < 0) {
        c->op = NULL;
    }
    return rc;
}

static void serve_stream_open(p2pd_conn *c)
{
    if (p2pd_is_self(c->d, &c->req.peer)) {
        if (conn_error(c, "STREAM_OPEN: the peer is this daemon itself")) {
            conn_next(c);
        }
        return;
    }
    c->proto_idx = 0;
    int rc = stream_open_try(c);
    if (rc == 0) {
        conn_busy(c);
        return;
    }
    if (conn_error(c, "STREAM_OPEN: %s (%s)", gn_strerror(rc), gn_err_name(rc))) {
        conn_next(c);
    }
}

/* ------------------------------------------------------------ STREAM_HANDLER */

static p2pd_handler *handler_find(gni_p2pd *d, const char *proto)
{
    for (size_t i = 0; i < d->nhandlers; i++) {
        if (!strcmp(d->handlers[i].proto, proto)) {
            return &d->handlers[i];
        }
    }
    return NULL;
}

static void handler_connected(gni_ipc_conn *ipc, int err, void *ud)
{
    p2pd_conn *c = ud;
    c->connecting = false;
    if (err < 0 || !ipc || c->s_closing || !c->s_open || c->d->closing) {
        if (err < 0) {
            GN_LOG(GN_LOG_INFO, P2PD_LOG, "stream handler for %s: cannot reach the client: %s",
                   c->proto, gn_strerror(err));
        }
        if (ipc) {
            gni_ipc_conn_set_cbs(ipc, NULL, NULL);
            gni_ipc_conn_close(ipc, false);
        }
        pipe_close_stream(c, true);
        conn_maybe_free(c);
        return;
    }
    c->ipc = ipc;
    c->ipc_open = true;
    gni_ipc_conn_set_cbs(ipc, &conn_cbs, c);
    gni_ipc_conn_set_raw(ipc);
    gni_p2pd_frame f;
    int rc = gni_p2pd_stream_info(&c->req.peer, c->req.handler_addr, c->proto, false, &f);
    if (!conn_send(c, rc, &f)) {
        pipe_close_stream(c, true);
        conn_maybe_free(c);
        return;
    }
    gn_stream *s = c->s;
    c->s_open = false; /* pipe_start takes it again */
    pipe_start(c, s);
    conn_maybe_free(c);
}

/* An inbound stream of a protocol a client handles: connect to the client. */
static void handler_on_stream(void *arg, gn_channel *ch, gn_stream *s, const char *protocol_id)
{
    gni_p2pd *d = arg;
    p2pd_handler *h = handler_find(d, protocol_id);
    if (!h || d->closing || d->nhconns >= d->max_handler_conns) {
        if (h && !d->closing) {
            d->st.handler_refused++;
            GN_LOG(GN_LOG_WARNING, P2PD_LOG,
                   "stream for %s reset: %zu stream-handler connections open (at most %zu)",
                   protocol_id, d->nhconns, d->max_handler_conns);
        }
        gn_stream_reset(s, NULL, NULL);
        return;
    }
    p2pd_conn *c = conn_new(d, P2PD_HANDLER);
    if (!c) {
        gn_stream_reset(s, NULL, NULL);
        return;
    }
    c->state = P2PD_ST_BUSY;
    c->s = s;
    c->s_open = true;
    gn_stream_set_handler(s, &pipe_stream_handler, c);
    snprintf(c->proto, sizeof c->proto, "%s", protocol_id);
    /* the StreamInfo to send: kept in the request fields */
    p2pd_chan_remote(ch, &c->req.peer, &c->req.handler_addr);
    char err[128];
    c->connecting = true;
    int rc = gni_ipc_connect(d->uvl, h->addr, handler_connected, c, err, sizeof err);
    if (rc < 0) {
        c->connecting = false;
        GN_LOG(GN_LOG_INFO, P2PD_LOG, "stream handler for %s: %s", protocol_id, err);
        pipe_close_stream(c, true);
        conn_maybe_free(c);
    }
}

static void serve_stream_handler(p2pd_conn *c)
{
    gni_p2pd *d = c->d;
    gni_p2pd_req *r = &c->req;
    char addr[P2PD_ADDR_STR_MAX];
    char err[GNI_P2PD_ERRMSG_MAX - 64];
    bool ok;
    int rc = gn_multiaddr_to_string(r->handler_addr, addr, sizeof addr);
    gni_ipc_addr a;
    if (rc < 0) {
        ok = conn_error(c, "STREAM_HANDLER: the address is too long");
    } else if (gni_ipc_addr_parse(addr, &a, err, sizeof err) < 0) {
        ok = conn_error(c, "STREAM_HANDLER: %s: %s", addr, err);
    } else if (a.kind == GNI_IPC_UNIX && gni_ipc_conn_is_tcp(c->ipc)) {
        /* no peer credentials on TCP: any local user could make the daemon connect to a socket
         * only the daemon's uid may reach */
        ok = conn_error(c, "STREAM_HANDLER: %s: a Unix socket handler address is refused over a "
                           "TCP control connection (no peer credentials); register it over the "
                           "Unix control socket or give a loopback TCP address",
                        addr);
    } else {
        /* every protocol first, so that a refusal changes nothing */
        size_t fresh = 0;
        for (size_t i = 0; i < r->nprotos; i++) {
            fresh += handler_find(d, r->protos[i]) ? 0 : 1;
        }
        if (d->nhandlers + fresh > GNI_P2PD_HANDLERS_MAX) {
            ok = conn_error(c, "STREAM_HANDLER: at most %u protocols can be handled",
                            GNI_P2PD_HANDLERS_MAX);
        } else {
            rc = 0;
            size_t i = 0;
            for (; i < r->nprotos && rc == 0; i++) {
                p2pd_handler *h = handler_find(d, r->protos[i]);
                if (!h) {
                    rc = gn_host_set_handler(d->host, r->protos[i], handler_on_stream, d);
                    if (rc < 0) {
                        break;
                    }
                    h = &d->handlers[d->nhandlers++];
                    snprintf(h->proto, sizeof h->proto, "%s", r->protos[i]);
                }
                /* as go's daemon: a new registration replaces the address */
                snprintf(h->addr, sizeof h->addr, "%s", addr);
                GN_LOG(GN_LOG_INFO, P2PD_LOG, "stream handler %s -> %s", h->proto, addr);
            }
            if (rc < 0) {
                ok = conn_error(c, "STREAM_HANDLER: %s: %s (%s)%s", r->protos[i], gn_strerror(rc),
                                gn_err_name(rc),
                                rc == GN_EEXIST ? ": the node serves it itself" : "");
            } else {
                ok = conn_ok(c);
            }
        }
    }
    if (ok) {
        conn_next(c);
    }
}

/* ------------------------------------------------------------ DHT */

static void dht_peer_found(void *arg, int status, const gn_peer_id *peer,
                           gn_multiaddr *const *addrs, size_t naddrs)
{
    p2pd_conn *c = arg;
    if (!conn_op_done(c)) {
        return;
    }
    bool sent;
    if (status < 0) {
        sent = conn_op_error(c, "FIND_PEER", status);
    } else {
        gn_router_peer p;
        memset(&p, 0, sizeof p);
        p.id = peer ? *peer : c->req.peer;
        p.addrs = addrs;
        p.naddrs = naddrs;
        gni_p2pd_frame f;
        int rc = gni_p2pd_dht(GNI_P2PD_DHT_VALUE, &p, NULL, true, &f);
        sent = conn_send(c, rc, &f);
    }
    if (sent) {
        conn_next(c);
    }
    conn_maybe_free(c);
}

static void dht_value_got(void *arg, int status, gn_slice value)
{
    p2pd_conn *c = arg;
    if (!conn_op_done(c)) {
        return;
    }
    const char *what = c->dht_answer == P2PD_DHT_ANS_PUBKEY   ? "GET_PUBLIC_KEY"
                       : c->dht_answer == P2PD_DHT_ANS_SEARCH ? "SEARCH_VALUE"
                                                              : "GET_VALUE";
    bool sent;
    gni_p2pd_frame f;
    if (status < 0) {
        sent = conn_op_error(c, what, status);
    } else if (c->dht_answer == P2PD_DHT_ANS_SEARCH) {
        /* a stream of values ending with the best one: golemnet returns the best */
        int rc = gni_p2pd_dht(GNI_P2PD_DHT_BEGIN, NULL, NULL, true, &f);
        sent = conn_send(c, rc, &f);
        if (sent) {
            rc = gni_p2pd_dht(GNI_P2PD_DHT_VALUE, NULL, &value, false, &f);
            sent = conn_send(c, rc, &f);
        }
        if (sent) {
            rc = gni_p2pd_dht(GNI_P2PD_DHT_END, NULL, NULL, false, &f);
            sent = conn_send(c, rc, &f);
        }
    } else {
        int rc = gni_p2pd_dht(GNI_P2PD_DHT_VALUE, NULL, &value, true, &f);
        sent = conn_send(c, rc, &f);
    }
    if (sent) {
        conn_next(c);
    }
    conn_maybe_free(c);
}

static void dht_done(void *arg, int status)
{
    p2pd_conn *c = arg;
    if (!conn_op_done(c)) {
        return;
    }
    const char *what = c->req.sub == GNI_P2PD_DHT_PROVIDE ? "PROVIDE" : "PUT_VALUE";
    bool sent;
    if (status == GN_ENOROUTE) {
        sent = conn_error(c, "%s: kept by this node only: no DHT peer to send it to "
                             "(GN_ENOROUTE)",
                          what);
    } else if (status < 0) {
        sent = conn_op_error(c, what, status);
    } else {
        sent = conn_ok(c);
    }
    if (sent) {
        conn_next(c);
    }
    conn_maybe_free(c);
}

static void dht_peers_found(void *arg, int status, const gn_router_peer *peers, size_t n)
{
    p2pd_conn *c = arg;
    if (!conn_op_done(c)) {
        return;
    }
    bool closest = c->req.sub == GNI_P2PD_DHT_GET_CLOSEST_PEERS;
    const char *what = closest ? "GET_CLOSEST_PEERS" : "FIND_PROVIDERS";
    bool sent;
    /* a timeout still streams what was found (go streams results as they come) */
    if (status < 0 && !(status == GN_ETIMEDOUT && n > 0) && !(c->timed_out && n > 0)) {
        sent = conn_op_error(c, what, status);
    } else {
        gni_p2pd_frame f;
        int rc = gni_p2pd_dht(GNI_P2PD_DHT_BEGIN, NULL, NULL, true, &f);
        sent = conn_send(c, rc, &f);
        size_t limit = closest ? n : (n < c->req.count ? n : c->req.count);
        for (size_t i = 0; sent && i < limit; i++) {
            if (closest) {
                gn_slice id = gn_slice_of(peers[i].id.bytes, peers[i].id.len);
                rc = gni_p2pd_dht(GNI_P2PD_DHT_VALUE, NULL, &id, false, &f);
            } else {
                rc = gni_p2pd_dht(GNI_P2PD_DHT_VALUE, &peers[i], NULL, false, &f);
            }
            sent = conn_send(c, rc, &f);
        }
        if (sent) {
            rc = gni_p2pd_dht(GNI_P2PD_DHT_END, NULL, NULL, false, &f);
            sent = conn_send(c, rc, &f);
        }
    }
    if (sent) {
        conn_next(c);
    }
    conn_maybe_free(c);
}

static void serve_dht(p2pd_conn *c)
{
    gni_p2pd *d = c->d;
    gni_p2pd_req *r = &c->req;
    gn_host *h = d->host;
    int rc = 0;
    bool sent = true;
    if (!d->dht) {
        if (conn_error(c, "DHT not enabled: start golemnet-p2pd with -dht, -dhtServer or "
                          "-dhtClient")) {
            conn_next(c);
        }
        return;
    }
    gn_slice key = gn_slice_of(r->key, r->key_len);
    switch (r->sub) {
    case GNI_P2PD_DHT_FIND_PEER: {
        /* the peer store first (a connected peer is answered at once), then the routers */
        gn_multiaddr *addrs[P2PD_ANSWER_ADDRS];
        int n = gn_host_peer_addrs(h, &r->peer, addrs, NULL, P2PD_ANSWER_ADDRS);
        if (n > 0 || p2pd_is_self(d, &r->peer)) {
            gn_router_peer p;
            memset(&p, 0, sizeof p);
            p.id = r->peer;
            const gn_multiaddr *mine[P2PD_ANSWER_ADDRS];
            if (n > 0) {
                p.addrs = addrs;
                p.naddrs = (size_t)n;
            } else {
                p.naddrs = gn_host_listen_addrs(h, mine, P2PD_ANSWER_ADDRS);
                p.addrs = (gn_multiaddr *const *)mine;
            }
            gni_p2pd_frame f;
            rc = gni_p2pd_dht(GNI_P2PD_DHT_VALUE, &p, NULL, true, &f);
            for (int i = 0; i < n; i++) {
                gn_multiaddr_free(addrs[i]);
            }
            if (conn_send(c, rc, &f)) {
                conn_next(c);
            }
            return;
        }
        rc = gn_host_find_peer(h, &r->peer, dht_peer_found, c, &c->op);
        break;
    }
    case GNI_P2PD_DHT_GET_PUBLIC_KEY: {
        gn_slice pk;
        if (gni_p2pd_peer_pubkey(&r->peer, &pk) == 0) {
            gni_p2pd_frame f;
            rc = gni_p2pd_dht(GNI_P2PD_DHT_VALUE, NULL, &pk, true, &f);
            if (conn_send(c, rc, &f)) {
                conn_next(c);
            }
            return;
        }
        /* a hashed peer ID: the key is published under /pk/<peer id bytes> */
        if ((size_t)r->peer.len + 4 > sizeof r->key) {
            rc = GN_EINVAL;
            break;
        }
        memcpy(r->key, "/pk/", 4);
        memcpy(r->key + 4, r->peer.bytes, r->peer.len);
        r->key_len = 4 + (size_t)r->peer.len;
        c->dht_answer = P2PD_DHT_ANS_PUBKEY;
        rc = gn_host_get_value(h, gn_slice_of(r->key, r->key_len), dht_value_got, c, &c->op);
        break;
    }
    case GNI_P2PD_DHT_GET_VALUE:
    case GNI_P2PD_DHT_SEARCH_VALUE:
        c->dht_answer = r->sub == GNI_P2PD_DHT_SEARCH_VALUE ? P2PD_DHT_ANS_SEARCH
                                                             : P2PD_DHT_ANS_VALUE;
        rc = gn_host_get_value(h, key, dht_value_got, c, &c->op);
        break;
    case GNI_P2PD_DHT_PUT_VALUE:
        rc = gn_host_put_value(h, key, gn_slice_of(r->value, r->value_len), dht_done, c, &c->op);
        break;
    case GNI_P2PD_DHT_PROVIDE:
        rc = gn_host_provide(h, key, dht_done, c, &c->op);
        break;
    case GNI_P2PD_DHT_FIND_PROVIDERS:
        rc = gn_host_find_providers(h, key, r->count, dht_peers_found, c, &c->op);
        break;
    case GNI_P2PD_DHT_GET_CLOSEST_PEERS:
        rc = gn_host_closest_peers(h, key, dht_peers_found, c, &c->op);
        break;
    default:
        rc = GN_ENOTSUP;
        break;
    }
    if (rc == 0) {
        conn_busy(c);
        return;
    }
    c->op = NULL;
    sent = conn_error(c, "DHT: %s (%s)", gn_strerror(rc), gn_err_name(rc));
    if (sent) {
        conn_next(c);
    }
}

/* ------------------------------------------------------------ CONNMANAGER, PEERSTORE, PUBSUB */

static void cm_apply(gni_p2pd *d, const gn_peer_id *peer)
{
    int64_t sum = 0;
    for (size_t i = 0; i < d->ntags; i++) {
        if (gn_peer_id_equal(&d->tags[i].peer, peer) && d->tags[i].weight > 0) {
            sum += d->tags[i].weight > INT32_MAX ? INT32_MAX : d->tags[i].weight;
        }
    }
    (void)gn_host_protect_peer(d->host, peer, sum > 0);
}

static void serve_connmanager(p2pd_conn *c)
{
    gni_p2pd *d = c->d;
    gni_p2pd_req *r = &c->req;
    bool ok;
    if (r->sub == GNI_P2PD_CM_TRIM) {
        ok = conn_error(c, "CONNMANAGER TRIM is not supported: golemnet's connection manager "
                           "trims at its high-water mark by itself");
    } else {
        size_t i = 0;
        for (; i < d->ntags; i++) {
            if (gn_peer_id_equal(&d->tags[i].peer, &r->peer) && !strcmp(d->tags[i].tag, r->tag)) {
                break;
            }
        }
        bool failed = false; /* an ERROR was sent: nothing else answers */
        if (r->sub == GNI_P2PD_CM_TAG_PEER) {
            if (i == d->ntags) {
                if (d->ntags >= GNI_P2PD_TAGS_MAX) {
                    failed = true;
                    ok = conn_error(c, "CONNMANAGER: at most %u peer tags", GNI_P2PD_TAGS_MAX);
                } else {
                    if (!d->tags) {
                        d->tags = gn_calloc(GNI_P2PD_TAGS_MAX, sizeof *d->tags);
                    }
                    if (!d->tags) {
                        failed = true;
                        ok = conn_error(c, "CONNMANAGER: out of memory");
                    } else {
                        d->tags[i].peer = r->peer;
                        snprintf(d->tags[i].tag, sizeof d->tags[i].tag, "%s", r->tag);
                        d->ntags++;
                    }
                }
            }
            if (!failed && i < d->ntags) {
                d->tags[i].weight = r->weight;
            }
        } else if (i < d->ntags) {
            d->tags[i] = d->tags[--d->ntags];
        }
        if (!failed) {
            cm_apply(d, &r->peer);
            ok = conn_ok(c);
        }
    }
    if (ok) {
        conn_next(c);
    }
}

static void serve_peerstore(p2pd_conn *c)
{
    gni_p2pd *d = c->d;
    gni_p2pd_req *r = &c->req;
    gn_peer_info info;
    int rc = gn_node_peer_info(d->node, &r->peer, &info);
    gn_multiaddr *addrs[P2PD_ANSWER_ADDRS];
    int n = gn_host_peer_addrs(d->host, &r->peer, addrs, NULL, P2PD_ANSWER_ADDRS);
    bool ok;
    gni_p2pd_frame f;
    /* a peer the store does not know: an empty answer, as go's daemon gives */
    if (r->sub == GNI_P2PD_PS_GET_PEER_INFO) {
        gn_router_peer p;
        memset(&p, 0, sizeof p);
        p.id = r->peer;
        p.addrs = addrs;
        p.naddrs = n > 0 ? (size_t)n : 0;
        rc = gni_p2pd_resp_peerstore(&p, NULL, 0, &f);
        ok = conn_send(c, rc, &f);
    } else {
        size_t np = rc == 0 ? info.n_protocols : 0;
        if (np > P2PD_PEER_PROTOS_MAX) {
            np = P2PD_PEER_PROTOS_MAX;
        }
        char(*ids)[GN_PROTOCOL_ID_MAX] = gn_calloc(np ? np : 1, GN_PROTOCOL_ID_MAX);
        const char **ptrs = gn_calloc(np ? np : 1, sizeof *ptrs);
        size_t k = 0;
        if (ids && ptrs) {
            for (size_t i = 0; i < np; i++) {
                if (gn_node_peer_protocol(d->node, &r->peer, i, ids[k], GN_PROTOCOL_ID_MAX) > 0) {
                    ptrs[k] = ids[k];
                    k++;
                }
            }
            rc = gni_p2pd_resp_peerstore(NULL, ptrs, k, &f);
            ok = conn_send(c, rc, &f);
        } else {
            ok = conn_error(c, "PEERSTORE: out of memory");
        }
        gn_free(ids);
        gn_free(ptrs);
    }
    for (int i = 0; i < n; i++) {
        gn_multiaddr_free(addrs[i]);
    }
    if (ok) {
        conn_next(c);
    }
}

/* ------------------------------------------------------------ requests */

static void conn_on_msg(gni_ipc_conn *ipc, const uint8_t *msg, size_t len, void *ud)
{
    p2pd_conn *c = ud;
    gni_ipc_conn_read_stop(ipc); /* one request at a time */
    if (c->state != P2PD_ST_REQ) {
        return;
    }
    gn_timer_stop(&c->timer); /* a complete request: the read timeout ends */
    char err[GNI_P2PD_ERRMSG_MAX];
    int rc = gni_p2pd_req_decode(msg, len, &c->req, err, sizeof err);
    if (rc < 0) {
        if (conn_error(c, "%s", err)) {
            conn_next(c);
        }
        return;
    }
    c->d->st.requests++;
    GN_LOG(GN_LOG_DEBUG, P2PD_LOG, "request %s", gni_p2pd_op_name((int)c->req.op));
    switch (c->req.op) {
    case GNI_P2PD_IDENTIFY:
        serve_identify(c);
        break;
    case GNI_P2PD_CONNECT:
        serve_connect(c);
        break;
    case GNI_P2PD_STREAM_OPEN:
        serve_stream_open(c);
        break;
    case GNI_P2PD_STREAM_HANDLER:
        serve_stream_handler(c);
        break;
    case GNI_P2PD_DHT:
        serve_dht(c);
        break;
    case GNI_P2PD_LIST_PEERS:
        serve_list_peers(c);
        break;
    case GNI_P2PD_CONNMANAGER:
        serve_connmanager(c);
        break;
    case GNI_P2PD_DISCONNECT:
        serve_disconnect(c);
        break;
    case GNI_P2PD_PUBSUB:
        if (conn_error(c, "PUBSUB is not supported: golemnet has no pubsub router yet")) {
            conn_next(c);
        }
        break;
    case GNI_P2PD_PEERSTORE:
        serve_peerstore(c);
        break;
    default:
        if (conn_error(c, "unknown request type %d", (int)c->req.op)) {
            conn_next(c);
        }
        break;
    }
}

static void server_on_accept(gni_ipc_listener *l, gni_ipc_conn *ipc, void *ud)
{
    (void)l;
    gni_p2pd *d = ud;
    if (d->closing || d->nconns - d->nhconns >= d->max_conns) {
        d->st.conns_refused++;
        if (!d->closing) {
            GN_LOG(GN_LOG_WARNING, P2PD_LOG, "control connection refused: %zu open",
                   d->nconns - d->nhconns);
            gni_p2pd_frame f;
            char msg[96];
            snprintf(msg, sizeof msg, "too many control connections (at most %zu)", d->max_conns);
            if (gni_p2pd_resp_error(msg, &f) == 0) {
                (void)gni_ipc_conn_write_force(ipc, f.data, f.len, false);
                gn_free(f.data);
            }
        }
        gni_ipc_conn_close(ipc, true);
        return;
    }
    p2pd_conn *c = conn_new(d, P2PD_CONTROL);
    if (!c) {
        gni_ipc_conn_close(ipc, false);
        return;
    }
    c->ipc = ipc;
    c->ipc_open = true;
    c->state = P2PD_ST_REQ;
    gni_ipc_conn_set_cbs(ipc, &conn_cbs, c);
    (void)gni_ipc_conn_set_limits(ipc, GNI_P2PD_REQ_MAX, GNI_P2PD_CTL_WRITE_MAX);
    conn_read_timer(c);
    if (gni_ipc_conn_read_start(ipc) < 0) {
        c->state = P2PD_ST_DONE;
        gni_ipc_conn_close(ipc, false);
    }
}

/* ------------------------------------------------------------ channels */

static void server_on_host_event(void *arg, const gn_host_event *ev)
{
    gni_p2pd *d = arg;
    if (!ev->ch) {
        return;
    }
    if (ev->type == GN_HOST_EV_CONNECTED) {
        for (size_t i = 0; i < d->nchans; i++) {
            if (d->chans[i] == ev->ch) {
                return;
            }
        }
        if (d->nchans == d->chans_cap) {
            size_t cap = d->chans_cap ? d->chans_cap * 2 : 16;
            if (cap > P2PD_CHANS_MAX) {
                GN_LOG(GN_LOG_WARNING, P2PD_LOG, "more than %u channels: not listed",
                       P2PD_CHANS_MAX);
                return;
            }
            gn_channel **nc = gn_realloc(d->chans, cap * sizeof *nc);
            if (!nc) {
                return;
            }
            d->chans = nc;
            d->chans_cap = cap;
        }
        d->chans[d->nchans++] = gn_channel_hold(ev->ch);
    } else if (ev->type == GN_HOST_EV_DISCONNECTED) {
        for (size_t i = 0; i < d->nchans; i++) {
            if (d->chans[i] == ev->ch) {
                gn_channel_rele(d->chans[i]);
                d->chans[i] = d->chans[--d->nchans];
                return;
            }
        }
    }
}

/* ------------------------------------------------------------ server */

int gni_p2pd_new(const gni_p2pd_config *cfg, gni_p2pd **out)
{
    if (!cfg || !cfg->node || !cfg->listen || !out ||
        strlen(cfg->listen) >= P2PD_ADDR_STR_MAX) {
        return GN_EINVAL;
    }
    gni_p2pd *d = gn_calloc(1, sizeof *d);
    if (!d) {
        return GN_ENOMEM;
    }
    d->node = cfg->node;
    d->host = gn_node_host(cfg->node);
    d->loop = gn_node_loop(cfg->node);
    d->uvl = gn_loop_uv(d->loop);
    d->dht = cfg->dht;
    d->max_conns = cfg->max_conns ? cfg->max_conns : GNI_P2PD_CONNS_DEFAULT;
    d->max_handler_conns =
        cfg->max_handler_conns ? cfg->max_handler_conns : GNI_P2PD_HANDLER_CONNS_DEFAULT;
    d->req_read_timeout = (gn_time)(cfg->req_read_timeout_ms ? cfg->req_read_timeout_ms
                                                             : GNI_P2PD_REQ_READ_TIMEOUT_MS) *
                          GN_MS;
    snprintf(d->listen, sizeof d->listen, "%s", cfg->listen);
    int rc = gn_host_subscribe(d->host, GN_HOST_EV_CONNECTED | GN_HOST_EV_DISCONNECTED,
                               server_on_host_event, d, &d->sub);
    if (rc < 0) {
        gn_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

int gni_p2pd_start(gni_p2pd *d, char *err, size_t errlen)
{
    if (d->started) {
        return GN_ESTATE;
    }
    int rc = gni_ipc_listen(d->uvl, d->listen, NULL, server_on_accept, d, &d->lst, err, errlen);
    if (rc < 0) {
        return rc;
    }
    d->started = true;
    d->lst_open = true;
    const char *bound = gni_ipc_listener_addr(d->lst);
    /* a path is shown as go shows it: /unix/<path> */
    if (bound[0] == '/' && strncmp(bound, "/ip4/", 5) != 0 && strncmp(bound, "/ip6/", 5) != 0 &&
        strncmp(bound, "/unix/", 6) != 0) {
        snprintf(d->addr, sizeof d->addr, "/unix%s", bound);
    } else {
        snprintf(d->addr, sizeof d->addr, "%s", bound);
    }
    return 0;
}

const char *gni_p2pd_addr(const gni_p2pd *d) { return d->addr; }

void gni_p2pd_stats_get(const gni_p2pd *d, gni_p2pd_stats *st) { *st = d->st; }

static void server_report_closed(gn_loop *loop, void *arg)
{
    (void)loop;
    gni_p2pd *d = arg;
    if (d->close_cb) {
        void (*cb)(void *) = d->close_cb;
        d->close_cb = NULL;
        cb(d->close_arg);
    }
}

static void server_check_closed(gni_p2pd *d)
{
    if (!d->closing || d->lst_open || d->nconns > 0 || d->close_reported) {
        return;
    }
    d->close_reported = true;
    if (gn_loop_defer(d->loop, server_report_closed, d) < 0) {
        server_report_closed(d->loop, d);
    }
}

static void server_listener_closed(void *ud)
{
    gni_p2pd *d = ud;
    d->lst_open = false;
    d->lst = NULL;
    server_check_closed(d);
}

void gni_p2pd_close(gni_p2pd *d, void (*cb)(void *arg), void *arg)
{
    if (!d || d->closing) {
        return;
    }
    d->closing = true;
    d->close_cb = cb;
    d->close_arg = arg;
    for (size_t i = 0; i < d->nhandlers; i++) {
        (void)gn_host_remove_handler(d->host, d->handlers[i].proto);
    }
    d->nhandlers = 0;
    if (d->lst_open) {
        gni_ipc_listener_close(d->lst, server_listener_closed, d);
    }
    /* every connection: cancel, reset, close; each frees itself when done */
    for (p2pd_conn *c = d->conns; c; c = c->next) {
        c->state = P2PD_ST_DONE;
        if (c->op) {
            gn_op_cancel(c->op);
        }
        pipe_close_stream(c, true);
        conn_close_ipc(c, false);
    }
    server_check_closed(d);
}

void gni_p2pd_free(gni_p2pd *d)
{
    if (!d) {
        return;
    }
    gn_host_unsubscribe(d->sub);
    for (size_t i = 0; i < d->nchans; i++) {
        gn_channel_rele(d->chans[i]);
    }
    gn_free(d->chans);
    gn_free(d->tags);
    gn_free(d);
}
