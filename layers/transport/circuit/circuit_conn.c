/*
 * The connection the circuit transport hands to the node: a gn_stream over
 * the hop stream (dialer) or the stop stream (listener) that the relay
 * splices (libp2p/specs relay/circuit-v2.md "Interaction"). Every
 * operation passes through to that mux stream; the addresses are the
 * circuit's, not the relay connection's, and it answers
 * GN_QUERY_CONN_LIMIT when the relay announced limits, which makes the
 * node's channel a limited one. Queries never reach the stream below: its
 * peer is the relay, not the peer at the other end of the circuit.
 */
#include "circuit.h"

#include "golemnet/err.h"
#include "golemnet/log.h"

#include <string.h>

/* One write passing through: the completion reported on the circuit stream. */
typedef struct circ_write {
    circ_conn *c;
    gn_write_cb cb;
    void *arg;
    size_t len;
} circ_write;

static void cc_wrote(void *arg, int status)
{
    circ_write *w = arg;
    circ_conn *c = w->c;
    gn_stream_complete_write(&c->s, w->cb, w->arg, w->len, status);
    gn_free(w);
}

static int cc_write(gn_stream *s, const gn_slice *iov, size_t iovcnt, gn_write_cb cb, void *arg)
{
    circ_conn *c = (circ_conn *)s;
    circ_write *w = gn_malloc(sizeof *w);
    if (!w) {
        return GN_ENOMEM;
    }
    size_t len = 0;
    for (size_t i = 0; i < iovcnt; i++) {
        len += iov[i].len;
    }
    *w = (circ_write){c, cb, arg, len};
    int rc = gn_stream_write(c->inner, iov, iovcnt, cc_wrote, w);
    if (rc < 0) {
        gn_free(w);
    }
    return rc;
}

static int cc_read_start(gn_stream *s)
{
    return gn_stream_read_start(((circ_conn *)s)->inner);
}

static int cc_read_stop(gn_stream *s)
{
    return gn_stream_read_stop(((circ_conn *)s)->inner);
}

static int cc_shutdown(gn_stream *s)
{
    return gn_stream_shutdown(((circ_conn *)s)->inner);
}

static void cc_inner_closed(gn_stream *inner, void *arg)
{
    (void)inner;
    circ_conn *c = arg;
    circ_state *st = c->st;
    gn_stream_emit_closed(&c->s);
    gn_multiaddr_free(c->local);
    gn_multiaddr_free(c->remote);
    if (st->t->nconns > 0) {
        st->t->nconns--;
    }
    gn_free(c);
}

static void cc_close(gn_stream *s)
{
    circ_conn *c = (circ_conn *)s;
    gn_stream_close(c->inner, cc_inner_closed, c);
}

static void cc_reset(gn_stream *s)
{
    circ_conn *c = (circ_conn *)s;
    gn_stream_reset(c->inner, cc_inner_closed, c);
}

static int cc_addr(gn_stream *s, gn_stream_addr_kind kind, gn_multiaddr **out)
{
    circ_conn *c = (circ_conn *)s;
    const gn_multiaddr *ma = kind == GN_ADDR_LOCAL ? c->local : c->remote;
    return ma ? gn_multiaddr_dup(ma, out) : GN_ENOTSUP;
}

static int cc_query(gn_stream *s, int key, void *out, size_t out_len)
{
    circ_conn *c = (circ_conn *)s;
    if (key == GN_QUERY_CONN_LIMIT && c->limited) {
        if (out_len < sizeof c->limit) {
            return GN_ENOSPC;
        }
        memcpy(out, &c->limit, sizeof c->limit);
        return (int)sizeof c->limit;
    }
    return GN_ENOTSUP;
}

static const gn_stream_ops cc_ops = {
    .abi = GN_STREAM_ABI,
    .name = "p2p-circuit",
    .write = cc_write,
    .read_start = cc_read_start,
    .read_stop = cc_read_stop,
    .shutdown = cc_shutdown,
    .reset = cc_reset,
    .close = cc_close,
    .addr = cc_addr,
    .query = cc_query,
};

/* ---- events of the stream below, passed up ---- */

static void cc_on_data(gn_stream *inner, void *ud, const uint8_t *data, size_t len)
{
    (void)inner;
    gn_stream_emit_data(&((circ_conn *)ud)->s, data, len);
}

static void cc_on_eof(gn_stream *inner, void *ud)
{
    (void)inner;
    gn_stream_emit_eof(&((circ_conn *)ud)->s);
}

static void cc_on_error(gn_stream *inner, void *ud, int err)
{
    (void)inner;
    gn_stream_emit_error(&((circ_conn *)ud)->s, err);
}

static void cc_on_writable(gn_stream *inner, void *ud)
{
    (void)inner;
    gn_stream_emit_writable(&((circ_conn *)ud)->s);
}

static const gn_stream_handler cc_handler = {cc_on_data, cc_on_eof, cc_on_error, cc_on_writable};

int gni_circ_conn_new(circ_state *st, gn_stream *inner, const gn_multiaddr *local,
                      const gn_multiaddr *remote, const gn_conn_limit *limit, gn_stream **out)
{
    circ_conn *c = gn_calloc(1, sizeof *c);
    if (!c) {
        return GN_ENOMEM;
    }
    int rc = gn_stream_init(&c->s, &cc_ops, st->t->loop, NULL);
    if (rc == 0 && local) {
        rc = gn_multiaddr_dup(local, &c->local);
    }
    if (rc == 0 && remote) {
        rc = gn_multiaddr_dup(remote, &c->remote);
    }
    if (rc < 0) {
        gn_multiaddr_free(c->local);
        gn_free(c);
        return rc;
    }
    c->st = st;
    c->inner = inner;
    if (limit) {
        c->limited = true;
        c->limit = *limit;
    }
    gn_stream_read_stop(inner); /* the consumer starts reading when it is ready */
    gn_stream_set_handler(inner, &cc_handler, c);
    st->t->nconns++;
    *out = &c->s;
    return 0;
}
