/*
 * gn_pipe.h - an in-process pair of connected gn_streams for tests, with a
 * man-in-the-middle: it can flip a byte at a given offset of one direction,
 * cut a direction after N bytes, and deliver in chunks of a given size.
 *
 * Delivery and completions are deferred through the loop (never
 * re-entrant), like a real transport. Single header; include once per test.
 */
#ifndef GN_PIPE_H
#define GN_PIPE_H

#include "golemnet/golemnet.h"

#include "gni_wq.h"

#include <stdlib.h>
#include <string.h>

typedef struct gn_pipe gn_pipe;

typedef struct gn_pipe_end {
    gn_stream s;
    gn_pipe *pipe;
    int dir;       /* 0: a -> b is written by end a */
    uint8_t *inbox;
    size_t inbox_len, inbox_cap;
    bool eof_in;   /* the peer shut down or closed: deliver eof after inbox */
    int err_in;    /* deliver this error after inbox */
    bool closed;
    bool scheduled;
    size_t written; /* bytes written by this end, for tamper offsets */
    gni_wq wq;      /* writes copied to the peer, completing from the loop */
} gn_pipe_end;

struct gn_pipe {
    gn_loop *loop;
    gn_pipe_end end[2];
    /* man in the middle, per writing direction */
    long flip_at[2];      /* byte offset to xor with 0x01, or -1 */
    long cut_after[2];    /* close the direction after this many bytes, or -1 */
    size_t chunk;         /* delivery chunk size; 0 = everything at once */
    int ends_open;
};

static void gn_pipe_deliver(gn_loop *loop, void *arg);

static void gn_pipe_schedule(gn_pipe_end *e)
{
    if (!e->scheduled && !e->closed) {
        e->scheduled = true;
        gn_loop_defer(e->pipe->loop, gn_pipe_deliver, e);
    }
}

static void gn_pipe_deliver(gn_loop *loop, void *arg)
{
    (void)loop;
    gn_pipe_end *e = arg;
    e->scheduled = false;
    if (e->closed || !gn_stream_is_reading(&e->s))
        return;
    size_t off = 0;
    while (off < e->inbox_len && gn_stream_is_reading(&e->s) && !e->closed) {
        size_t n = e->inbox_len - off;
        if (e->pipe->chunk && n > e->pipe->chunk)
            n = e->pipe->chunk;
        /* copy: the consumer may close us during delivery */
        uint8_t tmp[65536];
        if (n > sizeof tmp)
            n = sizeof tmp;
        memcpy(tmp, e->inbox + off, n);
        off += n;
        gn_stream_emit_data(&e->s, tmp, n);
    }
    if (e->closed)
        return;
    if (off > 0) {
        if (e->inbox_len > off)
            memmove(e->inbox, e->inbox + off, e->inbox_len - off);
        e->inbox_len -= off;
    }
    if (e->inbox_len > 0) {
        gn_pipe_schedule(e);
        return;
    }
    if (e->err_in) {
        int err = e->err_in;
        e->err_in = 0;
        gn_stream_emit_error(&e->s, err);
    } else if (e->eof_in) {
        e->eof_in = false;
        gn_stream_emit_eof(&e->s);
    }
}

static void gn_pipe_write_done(gn_loop *loop, void *arg)
{
    (void)loop;
    gni_wreq *w = arg;
    gn_pipe_end *e = *(gn_pipe_end **)gni_wreq_extra(w);
    gni_wq_complete(&e->wq, w, e->closed ? GN_ECANCELED : 0);
}

static int gn_pipe_write(gn_stream *s, const gn_slice *iov, size_t n, gn_write_cb cb, void *arg)
{
    gn_pipe_end *e = (gn_pipe_end *)s;
    gn_pipe *p = e->pipe;
    gn_pipe_end *peer = &p->end[1 - e->dir];
    size_t total = 0;
    int rc = gni_wq_admit(&e->wq, iov, n, &total);
    if (rc < 0)
        return rc;
    gni_wreq *w;
    /* the bytes are copied below at once; the request only completes later */
    rc = gni_wq_push(&e->wq, iov, n, total, cb, arg, false, sizeof e, &w);
    if (rc < 0)
        return rc;
    *(gn_pipe_end **)gni_wreq_extra(w) = e;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < iov[i].len; j++) {
            uint8_t b = iov[i].base[j];
            long pos = (long)e->written++;
            if (p->cut_after[e->dir] >= 0 && pos >= p->cut_after[e->dir])
                continue; /* the cut direction swallows the rest */
            if (pos == p->flip_at[e->dir])
                b ^= 0x01;
            if (peer->inbox_len == peer->inbox_cap) {
                size_t cap = peer->inbox_cap ? peer->inbox_cap * 2 : 4096;
                peer->inbox = realloc(peer->inbox, cap);
                peer->inbox_cap = cap;
            }
            peer->inbox[peer->inbox_len++] = b;
        }
    }
    if (p->cut_after[e->dir] >= 0 && (long)e->written >= p->cut_after[e->dir])
        peer->eof_in = true;
    gn_pipe_schedule(peer);
    gn_loop_defer(p->loop, gn_pipe_write_done, w);
    return 0;
}

static int gn_pipe_read_start(gn_stream *s)
{
    gn_pipe_schedule((gn_pipe_end *)s);
    return 0;
}

static int gn_pipe_shutdown(gn_stream *s)
{
    gn_pipe_end *e = (gn_pipe_end *)s;
    gn_pipe_end *peer = &e->pipe->end[1 - e->dir];
    peer->eof_in = true;
    gn_pipe_schedule(peer);
    return 0;
}

static void gn_pipe_closed(gn_loop *loop, void *arg)
{
    (void)loop;
    gn_pipe_end *e = arg;
    gn_pipe *p = e->pipe;
    gn_stream_emit_closed(&e->s);
    gni_wq_fini(&e->wq); /* completions were deferred before this call */
    if (--p->ends_open == 0) {
        free(p->end[0].inbox);
        free(p->end[1].inbox);
        free(p);
    }
}

static void gn_pipe_close_common(gn_stream *s, int peer_err)
{
    gn_pipe_end *e = (gn_pipe_end *)s;
    gn_pipe_end *peer = &e->pipe->end[1 - e->dir];
    e->closed = true;
    if (!peer->closed) {
        if (peer_err)
            peer->err_in = peer_err;
        else
            peer->eof_in = true;
        gn_pipe_schedule(peer);
    }
    gn_loop_defer(e->pipe->loop, gn_pipe_closed, e);
}

static void gn_pipe_close(gn_stream *s)
{
    gn_pipe_close_common(s, 0);
}

static void gn_pipe_reset(gn_stream *s)
{
    gn_pipe_close_common(s, GN_ECONNRESET);
}

static const gn_stream_ops gn_pipe_ops = {
    .abi = GN_STREAM_ABI,
    .name = "pipe",
    .write = gn_pipe_write,
    .read_start = gn_pipe_read_start,
    .shutdown = gn_pipe_shutdown,
    .reset = gn_pipe_reset,
    .close = gn_pipe_close,
};

/** Creates a connected pair; *a and *b are the two ends (close both). */
static inline gn_pipe *gn_pipe_new(gn_loop *loop, gn_stream **a, gn_stream **b)
{
    gn_pipe *p = calloc(1, sizeof *p);
    p->loop = loop;
    p->flip_at[0] = p->flip_at[1] = -1;
    p->cut_after[0] = p->cut_after[1] = -1;
    p->ends_open = 2;
    for (int i = 0; i < 2; i++) {
        p->end[i].pipe = p;
        p->end[i].dir = i;
        gn_stream_init(&p->end[i].s, &gn_pipe_ops, loop, NULL);
        gni_wq_init(&p->end[i].wq, &p->end[i].s, 0, 0);
    }
    *a = &p->end[0].s;
    *b = &p->end[1].s;
    return p;
}

#endif /* GN_PIPE_H */
