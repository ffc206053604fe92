/* Kademlia RPC over streams: see kad_rpc.h. */
#include "kad_rpc.h"

#include "golemnet/loop.h"
#include "gni.h"

#include <string.h>

#define RPC_LOG "kad"

/* ---- requests ---- */

struct gni_kad_rpc {
    gn_host *h;
    gn_peer_id peer;
    gn_op *open_op;        /* the connect or stream open in flight */
    const char *proto;     /* the protocol id (the caller's, static) */
    gn_multiaddr *addrs[GNI_KAD_RPC_ADDRS]; /* explicit addresses, with /p2p/<peer> */
    size_t naddrs, next_addr;
    int connect_err;
    gn_stream *s;          /* once open */
    gn_timer timer;
    uint8_t *frame;        /* the encoded request */
    size_t frame_len;
    bool want_reply;
    bool done;             /* the outcome is decided (or cancelled) */
    unsigned nstreams;     /* streams whose close callback has not run */
    unsigned writes;       /* write completions still to come */
    unsigned gen;          /* attempt number: writes of an earlier one are stale */
    bool retried;          /* the one retry was used */
    bool got_bytes;        /* a byte of the reply arrived: no retry */
    gni_kad_decoder dec;
    gni_kad_rpc_cb cb;
    void *arg;
};

/* A write's context: which attempt it belongs to. */
typedef struct rpc_write {
    gni_kad_rpc *r;
    unsigned gen;
} rpc_write;

static void rpc_maybe_free(gni_kad_rpc *r)
{
    if (r->done && r->nstreams == 0 && r->writes == 0 && !r->open_op) {
        for (size_t i = 0; i < r->naddrs; i++) {
            gn_multiaddr_free(r->addrs[i]);
        }
        gni_kad_decoder_fini(&r->dec);
        gn_free(r->frame);
        gn_free(r);
    }
}

static void rpc_closed(gn_stream *s, void *arg)
{
    (void)s;
    gni_kad_rpc *r = arg;
    r->nstreams--;
    rpc_maybe_free(r);
}

static void rpc_open(gni_kad_rpc *r);

/*
 * A failure before any byte of the reply: the channel we reused may have
 * been closing (the peer's idle timer, a trim) while our stream opened.
 * Such failures get one more attempt, on a new stream (a new connection
 * when the old one is gone). Returns true when it retried.
 */
static bool rpc_retry(gni_kad_rpc *r, int status)
{
    if (r->done || r->retried || r->got_bytes ||
        (status != GN_ESTREAMRESET && status != GN_EPIPE && status != GN_ECONNRESET &&
         status != GN_ECLOSED && status != GN_EEOF && status != GN_EGOAWAY)) {
        return false;
    }
    r->retried = true;
    r->gen++;
    if (r->s) {
        gn_stream *s = r->s;
        r->s = NULL;
        gn_stream_set_handler(s, NULL, NULL);
        gn_stream_reset(s, rpc_closed, r);
    }
    gni_kad_limits lim = r->dec.lim;
    gni_kad_decoder_fini(&r->dec);
    (void)gni_kad_decoder_init(&r->dec, &lim);
    rpc_open(r);
    return true;
}

/* Ends the exchange once: the callback (unless cancelled), then the stream. */
static void rpc_finish(gni_kad_rpc *r, int status, gni_kad_msg *resp, bool cancelled)
{
    if (r->done) {
        return;
    }
    r->done = true;
    gn_timer_stop(&r->timer);
    if (!cancelled && r->cb) {
        r->cb(r->arg, status, resp);
    }
    if (r->s) {
        gn_stream *s = r->s;
        r->s = NULL;
        gn_stream_set_handler(s, NULL, NULL);
        if (status < 0 || cancelled) {
            gn_stream_reset(s, rpc_closed, r);
        } else {
            gn_stream_close(s, rpc_closed, r);
        }
    } else if (r->open_op) {
        gn_op_cancel(r->open_op); /* rpc_opened follows with GN_ECANCELED */
    }
    rpc_maybe_free(r);
}

static void rpc_timeout(gn_timer *t, void *arg)
{
    (void)t;
    rpc_finish(arg, GN_ETIMEDOUT, NULL, false);
}

static void rpc_on_data(gn_stream *s, void *ud, const uint8_t *data, size_t len)
{
    (void)s;
    gni_kad_rpc *r = ud;
    r->got_bytes = true;
    while (!r->done && len > 0) {
        size_t used = 0;
        gni_kad_msg m;
        gni_kad_msg_init(&m);
        const char *why = NULL;
        int rc = gni_kad_decode(&r->dec, data, len, &used, &m, &why);
        if (rc < 0) {
            char pid[GN_PEER_ID_MAX_STRLEN];
            gn_peer_id_to_string(&r->peer, pid, sizeof pid);
            GN_LOG(GN_LOG_INFO, RPC_LOG, "bad reply from %s: %s (%s)", pid, gn_err_name(rc),
                   why ? why : "?");
            rpc_finish(r, rc, NULL, false);
            return;
        }
        if (rc == 1) {
            rpc_finish(r, 0, &m, false);
            gni_kad_msg_fini(&m);
            return;
        }
        data += used;
        len -= used;
        if (used == 0) {
            break;
        }
    }
}

static void rpc_on_eof(gn_stream *s, void *ud)
{
    (void)s;
    if (!rpc_retry(ud, GN_EEOF)) {
        rpc_finish(ud, GN_EEOF, NULL, false);
    }
}

static void rpc_on_error(gn_stream *s, void *ud, int err)
{
    (void)s;
    if (!rpc_retry(ud, err)) {
        rpc_finish(ud, err, NULL, false);
    }
}

static const gn_stream_handler rpc_handler = {rpc_on_data, rpc_on_eof, rpc_on_error, NULL};

static void rpc_written(void *arg, int status)
{
    rpc_write *w = arg;
    gni_kad_rpc *r = w->r;
    bool stale = w->gen != r->gen;
    gn_free(w);
    r->writes--;
    if (stale) {
        /* an earlier attempt's write */
    } else if (status < 0) {
        if (!rpc_retry(r, status)) {
            rpc_finish(r, status, NULL, false);
        }
    } else if (!r->want_reply) {
        rpc_finish(r, 0, NULL, false);
    }
    rpc_maybe_free(r);
}

static void rpc_opened(void *arg, int status, gn_channel *ch, gn_stream *s)
{
    (void)ch;
    gni_kad_rpc *r = arg;
    r->open_op = NULL;
    if (r->done) {
        if (status == 0 && s) {
            gn_stream_reset(s, NULL, NULL);
        }
        rpc_maybe_free(r);
        return;
    }
    if (status < 0) {
        if (!rpc_retry(r, status)) {
            rpc_finish(r, status, NULL, false);
        }
        return;
    }
    r->s = s;
    r->nstreams++;
    gn_stream_set_handler(s, &rpc_handler, r);
    gn_slice iov = gn_slice_of(r->frame, r->frame_len);
    rpc_write *w = gn_malloc(sizeof *w);
    if (w) {
        w->r = r;
        w->gen = r->gen;
    }
    int rc = w ? gn_stream_write(s, &iov, 1, rpc_written, w) : GN_ENOMEM;
    if (rc < 0) {
        gn_free(w);
        rpc_finish(r, rc, NULL, false);
        return;
    }
    r->writes++;
    if (r->want_reply) {
        gn_stream_read_start(s);
    }
}

static void rpc_connect_next(gni_kad_rpc *r);
static void rpc_connected(void *arg, int status, gn_channel *ch);

/* A retry's open: through the host when it can reach the peer, else the
 * explicit addresses again. */
static void rpc_open(gni_kad_rpc *r)
{
    int rc;
    if (gn_host_peer_dialable(r->h, &r->peer)) {
        rc = gn_host_new_stream(r->h, &r->peer, r->proto, rpc_opened, r, &r->open_op);
    } else {
        r->next_addr = 0;
        r->connect_err = GN_ENOROUTE;
        rpc_connect_next(r);
        return;
    }
    if (rc < 0) {
        rpc_finish(r, rc, NULL, false);
    }
}

static void rpc_connected(void *arg, int status, gn_channel *ch)
{
    (void)ch;
    gni_kad_rpc *r = arg;
    r->open_op = NULL;
    if (r->done) {
        rpc_maybe_free(r);
        return;
    }
    if (status < 0) {
        r->connect_err = status;
        rpc_connect_next(r);
        return;
    }
    /* the channel is open now: the host uses it, no router is asked */
    int rc = gn_host_new_stream(r->h, &r->peer, r->proto, rpc_opened, r, &r->open_op);
    if (rc < 0) {
        rpc_finish(r, rc, NULL, false);
    }
}

/* Tries the next explicit address; fails the request when none is left. */
static void rpc_connect_next(gni_kad_rpc *r)
{
    while (r->next_addr < r->naddrs) {
        gn_multiaddr *ma = r->addrs[r->next_addr++];
        int rc = gn_host_connect(r->h, ma, rpc_connected, r, &r->open_op);
        if (rc == 0) {
            return;
        }
        r->connect_err = rc;
    }
    rpc_finish(r, r->connect_err < 0 ? r->connect_err : GN_ENOROUTE, NULL, false);
}

/* A copy of @ma ending in /p2p/<@peer> (kept as it is when it has one). */
static int addr_with_peer(const gn_multiaddr *ma, const gn_peer_id *peer, gn_multiaddr **out)
{
    size_t n = gn_multiaddr_count(ma);
    gn_ma_component c;
    if (n > 0 && gn_multiaddr_component(ma, n - 1, &c) == 0 && c.code == GN_MA_P2P) {
        gn_peer_id named;
        if (gn_peer_id_from_bytes(c.value, c.value_len, &named) < 0 ||
            !gn_peer_id_equal(&named, peer)) {
            return GN_EPEERID; /* an address of another peer: not used */
        }
        return gn_multiaddr_dup(ma, out);
    }
    char text[GN_PEER_ID_MAX_STRLEN + 8];
    memcpy(text, "/p2p/", 5);
    int rc = gn_peer_id_to_string(peer, text + 5, sizeof text - 5);
    gn_multiaddr *p2p = NULL;
    if (rc < 0 || (rc = gn_multiaddr_parse(text, &p2p)) < 0) {
        return rc;
    }
    rc = gn_multiaddr_encapsulate(ma, p2p, out);
    gn_multiaddr_free(p2p);
    return rc;
}

int gni_kad_rpc_send(gn_host *h, const char *protocol_id, const gn_peer_id *peer,
                     gn_multiaddr *const *addrs, size_t naddrs, const gni_kad_msg *req,
                     bool want_reply, const gni_kad_limits *lim, gn_time timeout,
                     gni_kad_rpc_cb cb, void *arg, gni_kad_rpc **out)
{
    if (out) {
        *out = NULL;
    }
    if (!h || !protocol_id || !peer || !req || !cb || timeout == 0) {
        return GN_EINVAL;
    }
    long n = gni_kad_msg_frame_len(req, lim);
    if (n < 0) {
        return (int)n;
    }
    gni_kad_rpc *r = gn_calloc(1, sizeof *r);
    if (!r || !(r->frame = gn_malloc((size_t)n))) {
        gn_free(r);
        return GN_ENOMEM;
    }
    long w = gni_kad_msg_encode(req, lim, r->frame, (size_t)n);
    int rc = w < 0 ? (int)w : gni_kad_decoder_init(&r->dec, lim);
    if (rc < 0) {
        gn_free(r->frame);
        gn_free(r);
        return rc;
    }
    r->frame_len = (size_t)w;
    r->h = h;
    r->peer = *peer;
    r->want_reply = want_reply;
    r->cb = cb;
    r->arg = arg;
    r->proto = protocol_id;
    gn_timer_init(gn_host_loop(h), &r->timer);
    for (size_t i = 0; addrs && i < naddrs && r->naddrs < GNI_KAD_RPC_ADDRS; i++) {
        if (addr_with_peer(addrs[i], peer, &r->addrs[r->naddrs]) == 0) {
            r->naddrs++;
        }
    }
    if (!gn_host_peer_dialable(h, peer)) {
        /* connect to the given addresses ourselves: the peer store is not
         * filled with what remote peers say, and the routers are not asked */
        if (r->naddrs == 0) {
            rc = GN_ENOROUTE;
        } else {
            r->next_addr = 1;
            rc = gn_host_connect(h, r->addrs[0], rpc_connected, r, &r->open_op);
            if (rc < 0) {
                /* the first address failed at once: the others on a later
                 * turn, through the same path as a failed connect */
                r->connect_err = rc;
                for (r->next_addr = 1; r->next_addr < r->naddrs; r->next_addr++) {
                    if ((rc = gn_host_connect(h, r->addrs[r->next_addr], rpc_connected, r,
                                              &r->open_op)) == 0) {
                        r->next_addr++;
                        break;
                    }
                }
            }
        }
    } else {
        rc = gn_host_new_stream(h, peer, protocol_id, rpc_opened, r, &r->open_op);
    }
    if (rc < 0) {
        for (size_t i = 0; i < r->naddrs; i++) {
            gn_multiaddr_free(r->addrs[i]);
        }
        gni_kad_decoder_fini(&r->dec);
        gn_free(r->frame);
        gn_free(r);
        return rc;
    }
    if (gn_timer_start(&r->timer, timeout, rpc_timeout, r) < 0) {
        GN_LOG(GN_LOG_WARNING, RPC_LOG, "no timer for a request");
    }
    if (out) {
        *out = r;
    }
    return 0;
}

void gni_kad_rpc_cancel(gni_kad_rpc *r)
{
    if (r) {
        rpc_finish(r, GN_ECANCELED, NULL, true);
    }
}

/* ---- serving ---- */

struct gni_kad_srv {
    gn_stream *s;
    gn_peer_id peer;
    gn_timer idle_timer;
    gn_time idle;
    gni_kad_decoder dec;
    gni_kad_limits lim;
    uint8_t *out;          /* the reply being written */
    bool writing;
    bool eof;              /* the peer half-closed: end after the write */
    bool held;             /* bytes were pushed back (gn_stream_unread) and wait */
    bool done;
    bool closed;
    gni_kad_serve_fn fn;
    gni_kad_serve_end_fn end;
    void *arg;
};

static void srv_maybe_free(gni_kad_srv *sv)
{
    if (sv->done && sv->closed && !sv->writing) {
        gni_kad_decoder_fini(&sv->dec);
        gn_free(sv->out);
        gn_free(sv);
    }
}

static void srv_closed(gn_stream *s, void *arg)
{
    (void)s;
    gni_kad_srv *sv = arg;
    sv->closed = true;
    srv_maybe_free(sv);
}

static void srv_finish(gni_kad_srv *sv, int status, bool notify)
{
    if (sv->done) {
        return;
    }
    sv->done = true;
    gn_timer_stop(&sv->idle_timer);
    gn_stream_set_handler(sv->s, NULL, NULL);
    if (status < 0) {
        gn_stream_reset(sv->s, srv_closed, sv);
    } else {
        gn_stream_close(sv->s, srv_closed, sv);
    }
    if (notify && sv->end) {
        sv->end(sv->arg, &sv->peer, status);
    }
    srv_maybe_free(sv);
}

static void srv_idle(gn_timer *t, void *arg)
{
    (void)t;
    srv_finish(arg, 0, true);
}

static void srv_arm(gni_kad_srv *sv)
{
    if (gn_timer_start(&sv->idle_timer, sv->idle, srv_idle, sv) < 0) {
        GN_LOG(GN_LOG_WARNING, RPC_LOG, "no idle timer for a served stream");
    }
}

static void srv_written(void *arg, int status)
{
    gni_kad_srv *sv = arg;
    sv->writing = false;
    gn_free(sv->out);
    sv->out = NULL;
    if (sv->done) {
        srv_maybe_free(sv);
        return;
    }
    if (status < 0) {
        srv_finish(sv, status, true);
    } else if (sv->eof && !sv->held) {
        srv_finish(sv, gni_kad_decode_eof(&sv->dec), true);
    } else {
        /* more requests, or ones that arrived with the EOF and wait in
         * the pushback: go on reading (srv_on_data ends the stream once
         * they are answered) */
        srv_arm(sv);
        gn_stream_read_start(sv->s);
    }
}

/* Answers one request; returns 0 to go on reading, else the stream ended. */
static int srv_request(gni_kad_srv *sv, const gni_kad_msg *req)
{
    gni_kad_msg resp;
    gni_kad_msg_init(&resp);
    int rc = sv->fn(sv->arg, &sv->peer, req, &resp);
    if (rc <= 0) {
        gni_kad_msg_fini(&resp);
        if (rc < 0) {
            srv_finish(sv, rc, true);
        } else {
            srv_arm(sv); /* a request without a reply (ADD_PROVIDER) counts as activity */
        }
        return rc;
    }
    long n = gni_kad_msg_frame_len(&resp, &sv->lim);
    if (n < 0 || !(sv->out = gn_malloc((size_t)n))) {
        gni_kad_msg_fini(&resp);
        srv_finish(sv, n < 0 ? (int)n : GN_ENOMEM, true);
        return -1;
    }
    long w = gni_kad_msg_encode(&resp, &sv->lim, sv->out, (size_t)n);
    gni_kad_msg_fini(&resp);
    gn_slice iov = gn_slice_of(sv->out, w > 0 ? (size_t)w : 0);
    rc = w < 0 ? (int)w : gn_stream_write(sv->s, &iov, 1, srv_written, sv);
    if (rc < 0) {
        srv_finish(sv, rc, true);
        return rc;
    }
    sv->writing = true;
    gn_timer_stop(&sv->idle_timer);
    gn_stream_read_stop(sv->s); /* one request at a time */
    return 1;
}

static void srv_on_data(gn_stream *s, void *ud, const uint8_t *data, size_t len)
{
    gni_kad_srv *sv = ud;
    sv->held = false; /* pushed-back bytes come back in one delivery, first */
    while (!sv->done && !sv->writing && len > 0) {
        size_t used = 0;
        gni_kad_msg m;
        gni_kad_msg_init(&m);
        const char *why = NULL;
        int rc = gni_kad_decode(&sv->dec, data, len, &used, &m, &why);
        if (rc < 0) {
            char pid[GN_PEER_ID_MAX_STRLEN];
            gn_peer_id_to_string(&sv->peer, pid, sizeof pid);
            GN_LOG(GN_LOG_INFO, RPC_LOG, "bad request from %s: %s (%s); stream reset", pid,
                   gn_err_name(rc), why ? why : "?");
            srv_finish(sv, rc, true);
            return;
        }
        data += used;
        len -= used;
        if (rc == 0) {
            break;
        }
        rc = srv_request(sv, &m);
        gni_kad_msg_fini(&m);
        if (rc < 0) {
            return;
        }
    }
    if (!sv->done && len > 0) {
        /* a pipelined request behind the one being answered: keep it */
        if (gn_stream_unread(s, data, len) < 0) {
            srv_finish(sv, GN_ENOMEM, true);
        } else {
            sv->held = true;
        }
        return;
    }
    if (!sv->done && !sv->writing && sv->eof && !sv->held) {
        srv_finish(sv, gni_kad_decode_eof(&sv->dec), true); /* the last of them answered */
    }
}

static void srv_on_eof(gn_stream *s, void *ud)
{
    (void)s;
    gni_kad_srv *sv = ud;
    sv->eof = true;
    int rc = gni_kad_decode_eof(&sv->dec);
    if (rc < 0) {
        srv_finish(sv, rc, true);
    } else if (!sv->writing && !sv->held) {
        srv_finish(sv, 0, true);
    }
}

static void srv_on_error(gn_stream *s, void *ud, int err)
{
    (void)s;
    srv_finish(ud, err, true);
}

static const gn_stream_handler srv_handler = {srv_on_data, srv_on_eof, srv_on_error, NULL};

int gni_kad_serve(gn_stream *s, const gn_peer_id *peer, const gni_kad_limits *lim, gn_time idle,
                  gni_kad_serve_fn fn, gni_kad_serve_end_fn end, void *arg, gni_kad_srv **out)
{
    if (out) {
        *out = NULL;
    }
    if (!s || !peer || !fn || idle == 0) {
        return GN_EINVAL;
    }
    gni_kad_srv *sv = gn_calloc(1, sizeof *sv);
    if (!sv) {
        return GN_ENOMEM;
    }
    int rc = gni_kad_decoder_init(&sv->dec, lim);
    if (rc < 0) {
        gn_free(sv);
        return rc;
    }
    sv->lim = sv->dec.lim;
    sv->s = s;
    sv->peer = *peer;
    sv->idle = idle;
    sv->fn = fn;
    sv->end = end;
    sv->arg = arg;
    gn_timer_init(s->loop, &sv->idle_timer);
    gn_stream_set_handler(s, &srv_handler, sv);
    srv_arm(sv);
    gn_stream_read_start(s);
    if (out) {
        *out = sv;
    }
    return 0;
}

void gni_kad_serve_abort(gni_kad_srv *sv)
{
    if (sv) {
        srv_finish(sv, GN_ECANCELED, false);
    }
}
