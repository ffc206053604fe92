/*
 * golemnet Python bindings - the thread bridge (see bridge.h for the
 * contract, docs/python.md for the design).
 *
 * Invariants:
 *  - gnb_stream.s, out_*, inflight, blocked, closing, shut_want, shut_done
 *    and close_want are touched by the loop thread only.
 *  - Everything under "shared" in struct gnb_stream is guarded by st->mu.
 *  - The note list, the kick list, note_queued, kick_next and the bridge's
 *    flags are guarded by br->mu. Lock order: st->mu, then br->mu.
 *  - References: a stream holds one on its bridge and one on its channel;
 *    the loop holds one on a stream from its creation to its close
 *    callback; every queued note and every kick-list entry holds one.
 */
#include "bridge.h"

#include "gni_platform.h" /* the wakeup fd: eventfd, pipe or (Windows) socket pair */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define GNB_RX_LIMIT_DEFAULT ((size_t)1 << 20)
#define GNB_TX_LIMIT_DEFAULT ((size_t)4 << 20)
#define GNB_CHUNK_MIN ((size_t)16384) /* small writes and reads share chunks this big */

/* Commands a stream asks the loop for (gnb_stream.cmds). */
#define CMD_RESUME 0x01u
#define CMD_SHUT 0x02u
#define CMD_CLOSE 0x04u
#define CMD_RESET 0x08u

typedef struct gnb_chunk {
    struct gnb_chunk *next;
    gnb_stream *st;
    size_t len; /* filled bytes */
    size_t off; /* consumed bytes (receive side) */
    size_t cap;
    uint8_t data[];
} gnb_chunk;

struct gnb_bridge {
    atomic_int refs;
    gn_node *node;
    gn_loop *loop;
    size_t rx_limit;
    size_t tx_limit;
    pthread_mutex_t mu;
    gnb_note *nhead, *ntail; /* notes for the consumer */
    bool signaled;           /* wakeup fd readable */
    gni_wakeup wake;         /* core/gni_platform.h */
    gnb_stream *khead, *ktail; /* streams with work for the loop */
    bool kick_posted;          /* a kick command is queued */
    bool kick_failed;          /* the last post failed: the consumer retries */
    bool detached;
    struct br_xreq *fetches; /* loop thread only: running gnb_xfer_fetch() downloads */
};

struct gnb_stream {
    atomic_int refs;
    gnb_bridge *br;
    gn_channel *ch;
    char protocol[GN_PROTOCOL_ID_MAX];
    void *user;
    size_t rx_limit, tx_limit;

    pthread_mutex_t mu;
    /* shared (st->mu) */
    gnb_chunk *rx_head, *rx_tail;
    size_t rx_bytes;
    bool rx_paused;
    bool rx_eof;
    bool want_read;
    bool want_write;
    size_t want_level; /* notify when tx_bytes <= this */
    int err;
    gnb_chunk *tx_head, *tx_tail;
    size_t tx_bytes; /* queued + in flight */
    uint32_t cmds;
    bool in_kick;
    bool shut_req;
    bool user_closed;
    bool closed;
    uint64_t bytes_in, bytes_out;

    /* loop thread only */
    gn_stream *s;
    gnb_chunk *out_head, *out_tail;
    size_t inflight;
    bool blocked;
    bool closing;
    bool shut_want, shut_done, close_want;
    bool shut_sent_or_none; /* no half-close pending (none asked, or it was sent) */

    /* br->mu */
    gnb_stream *kick_next;
    bool note_queued;
    gnb_note note;
};

/* ------------------------------------------------------------------------
 * Bridge: notes, wakeup fd, references
 */

static void br_fd_signal(gnb_bridge *br)
{
    gni_wakeup_signal(&br->wake); /* a full pipe, counter or socket: already readable */
}

static void br_fd_clear(gnb_bridge *br)
{
    gni_wakeup_drain(&br->wake);
}

/* Appends @note (heap or a stream's embedded note); br->mu held. */
static void br_push_locked(gnb_bridge *br, gnb_note *note)
{
    note->next = NULL;
    if (br->ntail) {
        br->ntail->next = note;
    } else {
        br->nhead = note;
    }
    br->ntail = note;
    if (!br->signaled) {
        br->signaled = true;
        br_fd_signal(br);
    }
}

static void br_push(gnb_bridge *br, gnb_note *note)
{
    pthread_mutex_lock(&br->mu);
    br_push_locked(br, note);
    pthread_mutex_unlock(&br->mu);
}

static gnb_bridge *br_hold(gnb_bridge *br)
{
    atomic_fetch_add(&br->refs, 1);
    return br;
}

static void br_free(gnb_bridge *br)
{
    pthread_mutex_destroy(&br->mu);
    gni_wakeup_close(&br->wake);
    gn_free(br);
}

static void br_rele(gnb_bridge *br)
{
    if (atomic_fetch_sub(&br->refs, 1) == 1) {
        br_free(br);
    }
}

int gnb_bridge_new(gn_node *n, size_t rx_limit, size_t tx_limit, gnb_bridge **out)
{
    gnb_bridge *br = gn_calloc(1, sizeof *br);
    if (!br) {
        return GN_ENOMEM;
    }
    atomic_init(&br->refs, 1);
    br->node = n;
    br->loop = gn_node_loop(n);
    br->rx_limit = rx_limit ? rx_limit : GNB_RX_LIMIT_DEFAULT;
    br->tx_limit = tx_limit ? tx_limit : GNB_TX_LIMIT_DEFAULT;
    if (gni_wakeup_open(&br->wake) < 0) {
        gn_free(br);
        return GN_EIO;
    }
    if (pthread_mutex_init(&br->mu, NULL) != 0) {
        gni_wakeup_close(&br->wake);
        gn_free(br);
        return GN_ENOMEM;
    }
    *out = br;
    return 0;
}

int gnb_bridge_fd(const gnb_bridge *br)
{
    return br->wake.rfd;
}

void gnb_bridge_detach(gnb_bridge *br)
{
    pthread_mutex_lock(&br->mu);
    br->detached = true;
    pthread_mutex_unlock(&br->mu);
}

static bool note_is_embedded(const gnb_note *note)
{
    return note->st && note == &note->st->note;
}

size_t gnb_bridge_poll(gnb_bridge *br, gnb_note *out, size_t max)
{
    size_t k = 0;
    pthread_mutex_lock(&br->mu);
    while (k < max && br->nhead) {
        gnb_note *note = br->nhead;
        br->nhead = note->next;
        if (!br->nhead) {
            br->ntail = NULL;
        }
        out[k] = *note;
        out[k].next = NULL;
        k++;
        if (note_is_embedded(note)) {
            note->st->note_queued = false; /* its reference moved to out[] */
        } else {
            gn_free(note);
        }
    }
    if (!br->nhead && br->signaled) {
        br->signaled = false;
        br_fd_clear(br);
    }
    pthread_mutex_unlock(&br->mu);
    return k;
}

void gnb_peer_free(gnb_peer *p)
{
    if (p) {
        gn_free(p->addrs);
        gn_free(p->protocols);
        gn_free(p);
    }
}

void gnb_dht_free(gnb_dht *d)
{
    if (d) {
        for (size_t i = 0; i < d->n_peers; i++) {
            gn_free(d->peers[i].addrs);
        }
        gn_free(d->peers);
        gn_free(d->value);
        gn_free(d);
    }
}

void gnb_note_release(gnb_note *note)
{
    gnb_peer_free(note->peer);
    note->peer = NULL;
    gnb_dht_free(note->dht);
    note->dht = NULL;
    gnb_xfer_free(note->xfer);
    note->xfer = NULL;
    if (note->ch) {
        gn_channel_rele(note->ch);
        note->ch = NULL;
    }
    if (note->st) {
        gnb_stream *st = note->st;
        note->st = NULL;
        gnb_stream_rele(st);
    }
}

void gnb_bridge_rele(gnb_bridge *br)
{
    /* the consumer's last word: drop what waits in the lists (their stream
     * references keep the bridge alive otherwise) */
    for (;;) {
        pthread_mutex_lock(&br->mu);
        gnb_stream *kl = br->khead;
        br->khead = br->ktail = NULL;
        pthread_mutex_unlock(&br->mu);
        gnb_note notes[32];
        size_t k = gnb_bridge_poll(br, notes, 32);
        for (size_t i = 0; i < k; i++) {
            gnb_note_release(&notes[i]);
        }
        while (kl) {
            gnb_stream *next = kl->kick_next;
            pthread_mutex_lock(&kl->mu);
            kl->in_kick = false;
            pthread_mutex_unlock(&kl->mu);
            gnb_stream_rele(kl);
            kl = next;
        }
        if (k == 0) {
            break;
        }
    }
    br_rele(br);
}

static gnb_note *note_new(int kind, int status, uint64_t token)
{
    gnb_note *note = gn_calloc(1, sizeof *note);
    if (note) {
        note->kind = kind;
        note->status = status;
        note->token = token;
    } else {
        GN_LOG(GN_LOG_ERR, "python", "out of memory: a completion is lost");
    }
    return note;
}

/* ------------------------------------------------------------------------
 * Streams: references, notes
 */

gnb_stream *gnb_stream_hold(gnb_stream *st)
{
    atomic_fetch_add(&st->refs, 1);
    return st;
}

static void chunks_free(gnb_chunk *c)
{
    while (c) {
        gnb_chunk *next = c->next;
        gn_free(c);
        c = next;
    }
}

void gnb_stream_rele(gnb_stream *st)
{
    if (!st || atomic_fetch_sub(&st->refs, 1) != 1) {
        return;
    }
    chunks_free(st->rx_head);
    chunks_free(st->tx_head);
    chunks_free(st->out_head);
    pthread_mutex_destroy(&st->mu);
    gn_channel_rele(st->ch);
    gnb_bridge *br = st->br;
    gn_free(st);
    br_rele(br);
}

void *gnb_stream_user(const gnb_stream *st)
{
    return st->user;
}

void gnb_stream_set_user(gnb_stream *st, void *user)
{
    st->user = user;
}

const char *gnb_stream_protocol(const gnb_stream *st)
{
    return st->protocol;
}

gn_channel *gnb_stream_channel(const gnb_stream *st)
{
    return st->ch;
}

/* Queues the stream's note unless it is queued already. Any thread. */
static void st_notify(gnb_stream *st)
{
    gnb_bridge *br = st->br;
    pthread_mutex_lock(&br->mu);
    if (!st->note_queued) {
        st->note_queued = true;
        gnb_stream_hold(st);
        br_push_locked(br, &st->note);
    }
    pthread_mutex_unlock(&br->mu);
}

/* ------------------------------------------------------------------------
 * Streams: loop side
 */

static void st_closed(gn_stream *s, void *arg);
static void st_pump(gnb_stream *st);

/* Drops chunks the loop holds that will never be written. */
static void st_drop_out(gnb_stream *st)
{
    size_t n = 0;
    for (gnb_chunk *c = st->out_head; c; c = c->next) {
        n += c->len;
    }
    chunks_free(st->out_head);
    st->out_head = st->out_tail = NULL;
    pthread_mutex_lock(&st->mu);
    st->tx_bytes -= n;
    pthread_mutex_unlock(&st->mu);
}

static void st_begin_close(gnb_stream *st, bool reset)
{
    if (st->closing || !st->s) {
        return;
    }
    st->closing = true;
    st_drop_out(st);
    if (reset) {
        gn_stream_reset(st->s, st_closed, st);
    } else {
        gn_stream_close(st->s, st_closed, st);
    }
}

static void st_set_error(gnb_stream *st, int err)
{
    pthread_mutex_lock(&st->mu);
    if (!st->err) {
        st->err = err;
    }
    pthread_mutex_unlock(&st->mu);
}

static void st_on_data(gn_stream *s, void *ud, const uint8_t *data, size_t len)
{
    gnb_stream *st = ud;
    bool stop = false, notify = false;
    pthread_mutex_lock(&st->mu);
    gnb_chunk *t = st->rx_tail;
    if (t && t->cap - t->len >= len) {
        memcpy(t->data + t->len, data, len);
        t->len += len;
    } else {
        size_t cap = len < GNB_CHUNK_MIN ? GNB_CHUNK_MIN : len;
        gnb_chunk *c = gn_malloc(sizeof *c + cap);
        if (!c) {
            pthread_mutex_unlock(&st->mu);
            st_set_error(st, GN_ENOMEM);
            st_notify(st);
            st_begin_close(st, true);
            return;
        }
        c->next = NULL;
        c->st = st;
        c->len = len;
        c->off = 0;
        c->cap = cap;
        memcpy(c->data, data, len);
        if (t) {
            t->next = c;
        } else {
            st->rx_head = c;
        }
        st->rx_tail = c;
    }
    st->rx_bytes += len;
    if (st->rx_bytes >= st->rx_limit && !st->rx_paused) {
        st->rx_paused = true;
        stop = true;
    }
    if (st->want_read) {
        st->want_read = false;
        notify = true;
    }
    pthread_mutex_unlock(&st->mu);
    if (stop) {
        (void)gn_stream_read_stop(s);
    }
    if (notify) {
        st_notify(st);
    }
}

static void st_on_eof(gn_stream *s, void *ud)
{
    (void)s;
    gnb_stream *st = ud;
    pthread_mutex_lock(&st->mu);
    st->rx_eof = true;
    pthread_mutex_unlock(&st->mu);
    st_notify(st);
}

static void st_on_error(gn_stream *s, void *ud, int err)
{
    (void)s;
    gnb_stream *st = ud;
    st_set_error(st, err < 0 ? err : GN_EIO);
    st_notify(st);
    st_begin_close(st, false); /* the consumer must close it: we do */
}

static void st_on_writable(gn_stream *s, void *ud)
{
    (void)s;
    gnb_stream *st = ud;
    st->blocked = false;
    st_pump(st);
}

static const gn_stream_handler st_handler = {
    .on_data = st_on_data,
    .on_eof = st_on_eof,
    .on_error = st_on_error,
    .on_writable = st_on_writable,
};

static void st_written(void *arg, int status)
{
    gnb_chunk *c = arg;
    gnb_stream *st = c->st;
    bool notify = false;
    st->inflight--;
    pthread_mutex_lock(&st->mu);
    st->tx_bytes -= c->len;
    if (status == 0) {
        st->bytes_out += c->len;
    } else if (!st->err) {
        st->err = status;
    }
    if (st->want_write && (st->tx_bytes <= st->want_level || st->err)) {
        st->want_write = false;
        notify = true;
    }
    pthread_mutex_unlock(&st->mu);
    gn_free(c);
    if (notify) {
        st_notify(st);
    }
    if (status < 0 && status != GN_ECANCELED) {
        st_begin_close(st, false);
    } else {
        st_pump(st);
    }
}

static void st_shut_now(gnb_stream *st)
{
    int rc = gn_stream_shutdown(st->s);
    if (rc < 0 && rc != GN_ESTATE) {
        st_set_error(st, rc);
        st_notify(st);
    }
    st->shut_sent_or_none = true;
}

static void st_shut_deferred(gn_loop *loop, void *arg)
{
    (void)loop;
    gnb_stream *st = arg;
    if (st->s && !st->closing) {
        st_shut_now(st);
        st_pump(st);
    } else {
        st->shut_sent_or_none = true;
    }
    gnb_stream_rele(st);
}

static void st_pump(gnb_stream *st)
{
    while (st->out_head && !st->blocked && !st->closing) {
        gnb_chunk *c = st->out_head;
        gn_slice sl = gn_slice_of(c->data, c->len);
        int rc = gn_stream_write(st->s, &sl, 1, st_written, c);
        if (rc == 0) {
            st->out_head = c->next;
            if (!st->out_head) {
                st->out_tail = NULL;
            }
            st->inflight++;
        } else if (rc == GN_EAGAIN) {
            st->blocked = true;
        } else {
            st_set_error(st, rc);
            st_notify(st);
            st_begin_close(st, false);
            return;
        }
    }
    if (st->closing || st->out_head || st->inflight > 0) {
        return;
    }
    if (st->shut_want && !st->shut_done) {
        st->shut_done = true;
        /* one loop turn later, not from inside the last write's completion,
         * so the muxer has sent the data before it sees the half-close.
         * Observed with js-libp2p 3.3.11 as the dialer: bytes written after
         * its FIN arrived and half-closed from inside the write completion
         * were lost on the js side (docs/python.md, "Interop notes"). */
        gnb_stream_hold(st);
        if (gn_loop_defer(st->s->loop, st_shut_deferred, st) < 0) {
            gnb_stream_rele(st);
            st_shut_now(st);
        }
        return;
    }
    if (st->close_want && st->shut_sent_or_none) {
        st_begin_close(st, false);
    }
}

static void st_closed(gn_stream *s, void *arg)
{
    (void)s;
    gnb_stream *st = arg;
    st->s = NULL;
    st->closing = true;
    st_drop_out(st);
    pthread_mutex_lock(&st->mu);
    st->closed = true;
    pthread_mutex_unlock(&st->mu);
    st_notify(st);
    gnb_stream_rele(st); /* the loop's reference */
}

/*
 * A stream handed to us on the loop thread: wrap it, start reading. Returns
 * the wrapper with two references (the loop's and the caller's), or NULL
 * after closing @s.
 */
static gnb_stream *st_new(gnb_bridge *br, gn_channel *ch, gn_stream *s, const char *proto)
{
    gnb_stream *st = gn_calloc(1, sizeof *st);
    if (!st || pthread_mutex_init(&st->mu, NULL) != 0) {
        gn_free(st);
        gn_stream_close(s, NULL, NULL);
        return NULL;
    }
    atomic_init(&st->refs, 2);
    st->br = br_hold(br);
    st->ch = gn_channel_hold(ch);
    snprintf(st->protocol, sizeof st->protocol, "%s", proto ? proto : "");
    st->rx_limit = br->rx_limit;
    st->tx_limit = br->tx_limit;
    st->s = s;
    st->note.kind = GNB_NOTE_STREAM;
    st->note.st = st;
    st->shut_sent_or_none = true;
    gn_stream_set_handler(s, &st_handler, st);
    if (gn_stream_read_start(s) < 0) {
        st_set_error(st, GN_ECLOSED);
        st_begin_close(st, false);
    }
    return st;
}

/* ------------------------------------------------------------------------
 * The kick: one command moves every stream's queued work to the loop
 */

static void st_apply(gnb_stream *st, uint32_t cmds, gnb_chunk *head, gnb_chunk *tail)
{
    if (head) {
        if (st->out_tail) {
            st->out_tail->next = head;
        } else {
            st->out_head = head;
        }
        st->out_tail = tail;
    }
    if (!st->s || st->closing) {
        st_drop_out(st);
        st_notify(st);
        return;
    }
    if (cmds & CMD_RESET) {
        st_begin_close(st, true);
        return;
    }
    if (cmds & CMD_RESUME) {
        (void)gn_stream_read_start(st->s);
    }
    if (cmds & CMD_SHUT) {
        st->shut_want = true;
        st->shut_sent_or_none = false;
    }
    if (cmds & CMD_CLOSE) {
        st->close_want = true;
    }
    st_pump(st);
}

static void br_kick_run(gn_loop *loop, void *arg)
{
    (void)loop;
    gnb_bridge *br = arg;
    pthread_mutex_lock(&br->mu);
    gnb_stream *st = br->khead;
    br->khead = br->ktail = NULL;
    br->kick_posted = false;
    pthread_mutex_unlock(&br->mu);
    while (st) {
        gnb_stream *next = st->kick_next;
        pthread_mutex_lock(&st->mu);
        st->in_kick = false;
        uint32_t cmds = st->cmds;
        st->cmds = 0;
        gnb_chunk *head = st->tx_head, *tail = st->tx_tail;
        st->tx_head = st->tx_tail = NULL;
        pthread_mutex_unlock(&st->mu);
        for (gnb_chunk *c = head; c; c = c->next) {
            c->off = 0;
        }
        st_apply(st, cmds, head, tail);
        gnb_stream_rele(st); /* the kick list's reference */
        st = next;
    }
    br_rele(br); /* the command's reference */
}

/* Posts the kick command if none is queued; br->mu held. */
static int br_post_locked(gnb_bridge *br)
{
    if (br->kick_posted || !br->khead) {
        return 0;
    }
    if (br->detached) {
        return GN_ECLOSED;
    }
    br_hold(br);
    int rc = gn_loop_submit(br->loop, br_kick_run, br);
    if (rc < 0) {
        atomic_fetch_sub(&br->refs, 1); /* cannot reach zero: the caller holds one */
        br->kick_failed = true;
        return rc;
    }
    br->kick_posted = true;
    br->kick_failed = false;
    return 0;
}

int gnb_bridge_kick(gnb_bridge *br)
{
    pthread_mutex_lock(&br->mu);
    int rc = br_post_locked(br);
    pthread_mutex_unlock(&br->mu);
    return rc;
}

/*
 * Asks the loop to look at @st (cmds already set); st->mu held. Returns 0,
 * or GN_EAGAIN / GN_ECLOSED when the command could not be posted (the
 * stream stays listed; gnb_bridge_kick() retries).
 */
static int st_kick_locked(gnb_stream *st)
{
    gnb_bridge *br = st->br;
    pthread_mutex_lock(&br->mu);
    if (!st->in_kick) {
        st->in_kick = true;
        gnb_stream_hold(st);
        st->kick_next = NULL;
        if (br->ktail) {
            br->ktail->kick_next = st;
        } else {
            br->khead = st;
        }
        br->ktail = st;
    }
    int rc = br_post_locked(br);
    pthread_mutex_unlock(&br->mu);
    return rc;
}

/* ------------------------------------------------------------------------
 * Streams: consumer side
 */

long gnb_stream_read(gnb_stream *st, uint8_t *out, size_t max)
{
    pthread_mutex_lock(&st->mu);
    if (st->user_closed) {
        pthread_mutex_unlock(&st->mu);
        return GN_ECLOSED;
    }
    if (st->rx_bytes == 0) {
        long rc;
        if (st->err) {
            rc = st->err;
        } else if (st->rx_eof) {
            rc = 0;
        } else if (st->closed) {
            rc = GN_ECLOSED;
        } else {
            st->want_read = true;
            rc = GNB_WOULD_BLOCK;
        }
        pthread_mutex_unlock(&st->mu);
        return rc;
    }
    size_t n = 0;
    while (n < max && st->rx_head) {
        gnb_chunk *c = st->rx_head;
        size_t take = c->len - c->off;
        if (take > max - n) {
            take = max - n;
        }
        memcpy(out + n, c->data + c->off, take);
        c->off += take;
        n += take;
        if (c->off == c->len) {
            st->rx_head = c->next;
            if (!st->rx_head) {
                st->rx_tail = NULL;
            }
            gn_free(c);
        }
    }
    st->rx_bytes -= n;
    st->bytes_in += n;
    int rc = 0;
    if (st->rx_paused && st->rx_bytes <= st->rx_limit / 2 && !st->closed) {
        st->rx_paused = false;
        st->cmds |= CMD_RESUME;
        rc = st_kick_locked(st);
    }
    pthread_mutex_unlock(&st->mu);
    (void)rc; /* a failed post is retried by gnb_bridge_kick() */
    return (long)n;
}

size_t gnb_stream_readable(gnb_stream *st)
{
    pthread_mutex_lock(&st->mu);
    size_t n = st->rx_bytes;
    pthread_mutex_unlock(&st->mu);
    return n;
}

int gnb_stream_write(gnb_stream *st, const gn_slice *iov, size_t iovcnt)
{
    size_t total = 0;
    for (size_t i = 0; i < iovcnt; i++) {
        total += iov[i].len;
    }
    pthread_mutex_lock(&st->mu);
    int rc = 0;
    if (st->user_closed || st->closed) {
        rc = GN_ECLOSED;
    } else if (st->err) {
        rc = st->err;
    } else if (st->shut_req) {
        rc = GN_EPIPE;
    }
    if (rc < 0 || total == 0) {
        pthread_mutex_unlock(&st->mu);
        return rc;
    }
    gnb_chunk *t = st->tx_tail;
    if (!t || t->cap - t->len < total) {
        size_t cap = total < GNB_CHUNK_MIN ? GNB_CHUNK_MIN : total;
        gnb_chunk *c = gn_malloc(sizeof *c + cap);
        if (!c) {
            pthread_mutex_unlock(&st->mu);
            return GN_ENOMEM;
        }
        c->next = NULL;
        c->st = st;
        c->len = 0;
        c->off = 0;
        c->cap = cap;
        if (t) {
            t->next = c;
        } else {
            st->tx_head = c;
        }
        st->tx_tail = t = c;
    }
    for (size_t i = 0; i < iovcnt; i++) {
        if (iov[i].len) {
            memcpy(t->data + t->len, iov[i].base, iov[i].len);
            t->len += iov[i].len;
        }
    }
    st->tx_bytes += total;
    int over = 0;
    if (st->tx_bytes > st->tx_limit) {
        st->want_write = true;
        st->want_level = st->tx_limit;
        over = 1;
    }
    rc = st_kick_locked(st);
    pthread_mutex_unlock(&st->mu);
    return rc == GN_EAGAIN ? GN_EAGAIN : over;
}

int gnb_stream_write_ready(gnb_stream *st, bool all)
{
    size_t level = all ? 0 : st->tx_limit;
    pthread_mutex_lock(&st->mu);
    int rc;
    if (st->tx_bytes <= level) {
        rc = 1;
    } else if (st->err) {
        rc = st->err;
    } else if (st->closed) {
        rc = GN_ECLOSED;
    } else {
        st->want_write = true;
        st->want_level = level;
        rc = 0;
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int gnb_stream_shutdown(gnb_stream *st)
{
    pthread_mutex_lock(&st->mu);
    int rc;
    if (st->user_closed || st->closed) {
        rc = GN_ECLOSED;
    } else if (st->err) {
        rc = st->err;
    } else if (st->shut_req) {
        rc = GN_ESTATE;
    } else {
        st->shut_req = true;
        st->cmds |= CMD_SHUT;
        rc = st_kick_locked(st);
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int gnb_stream_close(gnb_stream *st, bool reset)
{
    pthread_mutex_lock(&st->mu);
    int rc = 0;
    if (!st->closed && (!st->user_closed || reset)) {
        st->user_closed = true;
        st->want_read = false;
        st->cmds |= reset ? CMD_RESET : CMD_CLOSE;
        rc = st_kick_locked(st);
    }
    st->user_closed = true;
    pthread_mutex_unlock(&st->mu);
    return rc;
}

bool gnb_stream_is_closed(gnb_stream *st)
{
    pthread_mutex_lock(&st->mu);
    bool c = st->closed;
    pthread_mutex_unlock(&st->mu);
    return c;
}

int gnb_stream_error(gnb_stream *st)
{
    pthread_mutex_lock(&st->mu);
    int e = st->err;
    pthread_mutex_unlock(&st->mu);
    return e;
}

bool gnb_stream_eof(gnb_stream *st)
{
    pthread_mutex_lock(&st->mu);
    bool e = st->rx_eof;
    pthread_mutex_unlock(&st->mu);
    return e;
}

void gnb_stream_counters(gnb_stream *st, uint64_t *bytes_in, uint64_t *bytes_out)
{
    pthread_mutex_lock(&st->mu);
    *bytes_in = st->bytes_in;
    *bytes_out = st->bytes_out;
    pthread_mutex_unlock(&st->mu);
}

/* ------------------------------------------------------------------------
 * Requests: dial, ping, open_stream, handlers
 */

typedef struct br_req {
    gnb_bridge *br;
    gn_channel *ch;
    uint64_t token;
    bool add;
    char protocol[GN_PROTOCOL_ID_MAX];
    gn_peer_id peer; /* gnb_peer_lookup */
} br_req;

static br_req *req_new(gnb_bridge *br, gn_channel *ch, uint64_t token)
{
    br_req *r = gn_calloc(1, sizeof *r);
    if (r) {
        r->br = br_hold(br);
        r->ch = ch ? gn_channel_hold(ch) : NULL;
        r->token = token;
    }
    return r;
}

static void req_free(br_req *r)
{
    gn_channel_rele(r->ch);
    br_rele(r->br);
    gn_free(r);
}

/* Submits @fn(@r) to the loop unless the node is gone. */
static int req_submit(br_req *r, gn_loop_fn fn)
{
    gnb_bridge *br = r->br;
    pthread_mutex_lock(&br->mu);
    int rc = br->detached ? GN_ECLOSED : gn_loop_submit(br->loop, fn, r);
    pthread_mutex_unlock(&br->mu);
    if (rc < 0) {
        req_free(r);
    }
    return rc;
}

static void req_note(br_req *r, int kind, int status, gn_time rtt, gnb_stream *st)
{
    gnb_note *note = note_new(kind, status, r->token);
    if (!note) {
        gnb_stream_rele(st);
        return;
    }
    note->rtt = rtt;
    note->st = st;
    br_push(r->br, note);
}

static void br_dial_cb(void *arg, const gn_node_dial_result *res)
{
    br_req *r = arg;
    int status = res->status;
    gn_channel *ch = res->ch;
    gnb_note *note = note_new(GNB_NOTE_DIAL, status, r->token);
    if (note) {
        note->ch = status == 0 && ch ? gn_channel_hold(ch) : NULL;
        if (status == 0 && !ch) {
            note->status = GN_EINTERNAL;
        }
        if (status == GN_EPEERID && res->peer.len > 0 &&
            gn_peer_id_to_string(&res->peer, note->protocol, sizeof note->protocol) < 0) {
            note->protocol[0] = '\0';
        } else if (status < 0 && status != GN_EPEERID && res->detail) {
            /* why, in words (DNS: the domain and the failure), cut to the buffer */
            snprintf(note->protocol, sizeof note->protocol, "%s", res->detail);
        }
        br_push(r->br, note);
    }
    req_free(r);
}

int gnb_dial(gnb_bridge *br, const char *multiaddr, uint64_t token)
{
    br_req *r = req_new(br, NULL, token);
    if (!r) {
        return GN_ENOMEM;
    }
    pthread_mutex_lock(&br->mu);
    int rc = br->detached ? GN_ECLOSED : gn_node_dial_ex(br->node, multiaddr, br_dial_cb, r, NULL);
    pthread_mutex_unlock(&br->mu);
    if (rc < 0) {
        req_free(r);
    }
    return rc;
}

static void br_ping_cb(void *arg, int status, gn_time rtt)
{
    br_req *r = arg;
    req_note(r, GNB_NOTE_PING, status, rtt, NULL);
    req_free(r);
}

static void br_ping_run(gn_loop *loop, void *arg)
{
    (void)loop;
    br_req *r = arg;
    int rc = gn_channel_ping(r->ch, br_ping_cb, r);
    if (rc < 0) {
        br_ping_cb(r, rc, 0);
    }
}

int gnb_ping(gnb_bridge *br, gn_channel *ch, uint64_t token)
{
    br_req *r = req_new(br, ch, token);
    return r ? req_submit(r, br_ping_run) : GN_ENOMEM;
}

static void br_metrics_run(gn_loop *loop, void *arg)
{
    (void)loop;
    br_req *r = arg;
    gn_channel_metrics m;
    gn_channel_metrics_get(r->ch, &m); /* on the loop thread: refreshes the snapshot */
    req_note(r, GNB_NOTE_DONE, 0, 0, NULL);
    req_free(r);
}

int gnb_refresh_metrics(gnb_bridge *br, gn_channel *ch, uint64_t token)
{
    br_req *r = req_new(br, ch, token);
    return r ? req_submit(r, br_metrics_run) : GN_ENOMEM;
}

/* Fills @p from the peer store. Loop thread. */
static int br_peer_fill(gn_node *n, const gn_peer_id *peer, gnb_peer *p)
{
    int rc = gn_node_peer_info(n, peer, &p->info);
    if (rc < 0) {
        return rc;
    }
    size_t na = p->info.n_addrs < GNB_PEER_LIST_MAX ? p->info.n_addrs : GNB_PEER_LIST_MAX;
    size_t np = p->info.n_protocols < GNB_PEER_LIST_MAX ? p->info.n_protocols
                                                         : GNB_PEER_LIST_MAX;
    p->addrs = na ? gn_calloc(na, sizeof *p->addrs) : NULL;
    p->protocols = np ? gn_calloc(np, sizeof *p->protocols) : NULL;
    if ((na && !p->addrs) || (np && !p->protocols)) {
        return GN_ENOMEM;
    }
    /* an entry that does not fit its buffer (GN_ENOSPC) is left out */
    for (size_t i = 0; i < na; i++) {
        if (gn_node_peer_addr(n, peer, i, p->addrs[p->n_addrs], sizeof p->addrs[0]) >= 0) {
            p->n_addrs++;
        }
    }
    for (size_t i = 0; i < np; i++) {
        if (gn_node_peer_protocol(n, peer, i, p->protocols[p->n_protocols],
                                  sizeof p->protocols[0]) >= 0) {
            p->n_protocols++;
        }
    }
    return 0;
}

static void br_peer_run(gn_loop *loop, void *arg)
{
    (void)loop;
    br_req *r = arg;
    gnb_peer *p = gn_calloc(1, sizeof *p);
    int rc = p ? br_peer_fill(r->br->node, &r->peer, p) : GN_ENOMEM;
    if (rc < 0) {
        gnb_peer_free(p);
        p = NULL;
    }
    gnb_note *note = note_new(GNB_NOTE_PEER, rc, r->token);
    if (note) {
        note->peer = p;
        br_push(r->br, note);
    } else {
        gnb_peer_free(p);
    }
    req_free(r);
}

int gnb_peer_lookup(gnb_bridge *br, const gn_peer_id *peer, uint64_t token)
{
    br_req *r = req_new(br, NULL, token);
    if (!r) {
        return GN_ENOMEM;
    }
    r->peer = *peer;
    return req_submit(r, br_peer_run);
}

/* ---- the DHT ---- */

/* Copies a DHT result off the loop thread; NULL when there is nothing to copy. */
static int br_dht_copy(const gn_node_dht_result *res, gnb_dht **out)
{
    *out = NULL;
    if (res->value.len == 0 && res->npeers == 0) {
        return 0;
    }
    gnb_dht *d = gn_calloc(1, sizeof *d);
    if (!d) {
        return GN_ENOMEM;
    }
    if (res->value.len) {
        d->value = gn_malloc(res->value.len);
        if (!d->value) {
            gnb_dht_free(d);
            return GN_ENOMEM;
        }
        memcpy(d->value, res->value.base, res->value.len);
        d->value_len = res->value.len;
    }
    if (res->npeers) {
        d->peers = gn_calloc(res->npeers, sizeof *d->peers);
        if (!d->peers) {
            gnb_dht_free(d);
            return GN_ENOMEM;
        }
    }
    for (size_t i = 0; i < res->npeers; i++) {
        const gn_router_peer *rp = &res->peers[i];
        gnb_dht_peer *p = &d->peers[d->n_peers];
        if (gn_peer_id_to_string(&rp->id, p->id, sizeof p->id) < 0) {
            continue;
        }
        d->n_peers++;
        p->addrs = rp->naddrs ? gn_calloc(rp->naddrs, sizeof *p->addrs) : NULL;
        if (rp->naddrs && !p->addrs) {
            gnb_dht_free(d);
            return GN_ENOMEM;
        }
        /* an address that does not fit (GN_ENOSPC) is left out */
        for (size_t k = 0; k < rp->naddrs; k++) {
            if (rp->addrs[k] && gn_multiaddr_to_string(rp->addrs[k], p->addrs[p->n_addrs],
                                                       sizeof p->addrs[0]) >= 0) {
                p->n_addrs++;
            }
        }
    }
    *out = d;
    return 0;
}

static void br_dht_cb(void *arg, const gn_node_dht_result *res)
{
    br_req *r = arg;
    gnb_dht *d = NULL;
    int rc = br_dht_copy(res, &d);
    gnb_note *note = note_new(GNB_NOTE_DHT, rc < 0 ? rc : res->status, r->token);
    if (note) {
        note->dht = d;
        br_push(r->br, note);
    } else {
        gnb_dht_free(d);
    }
    req_free(r);
}

int gnb_dht_call(gnb_bridge *br, int op, const uint8_t *key, size_t key_len,
                 const uint8_t *value, size_t value_len, const gn_peer_id *peer, size_t max,
                 uint64_t token)
{
    br_req *r = req_new(br, NULL, token);
    if (!r) {
        return GN_ENOMEM;
    }
    char ns[64];
    gn_router_validator v;
    gn_router_validator_any(&v, ns); /* GNB_DHT_ALLOW: every value valid, greatest wins */
    if (op == GNB_DHT_ALLOW) {
        if (key_len == 0 || key_len >= sizeof ns || memchr(key, '/', key_len) ||
            memchr(key, '\0', key_len)) {
            req_free(r);
            return GN_EINVAL;
        }
        memcpy(ns, key, key_len);
        ns[key_len] = '\0';
    }
    gn_node *n = br->node;
    int rc;
    /* the lock keeps gnb_bridge_detach() from freeing the node under us; the
     * calls never answer from inside (node.h), so br_push cannot run here */
    pthread_mutex_lock(&br->mu);
    if (br->detached) {
        rc = GN_ECLOSED;
    } else {
        switch (op) {
        case GNB_DHT_FIND_PEER:
            rc = peer ? gn_node_dht_find_peer(n, peer, br_dht_cb, r) : GN_EINVAL;
            break;
        case GNB_DHT_GET:
            rc = gn_node_dht_get(n, key, key_len, br_dht_cb, r);
            break;
        case GNB_DHT_PUT:
            rc = gn_node_dht_put(n, key, key_len, value, value_len, br_dht_cb, r);
            break;
        case GNB_DHT_PROVIDE:
            rc = gn_node_dht_provide(n, key, key_len, br_dht_cb, r);
            break;
        case GNB_DHT_FIND_PROVIDERS:
            rc = gn_node_dht_find_providers(n, key, key_len, max, br_dht_cb, r);
            break;
        case GNB_DHT_CLOSEST:
            rc = gn_node_dht_closest_peers(n, key, key_len, br_dht_cb, r);
            break;
        case GNB_DHT_ALLOW:
            rc = gn_node_dht_set_validator(n, &v, br_dht_cb, r);
            break;
        default:
            rc = GN_EINVAL;
            break;
        }
    }
    pthread_mutex_unlock(&br->mu);
    if (rc < 0) {
        req_free(r);
    }
    return rc;
}

static void br_open_cb(void *arg, int status, gn_stream *s)
{
    br_req *r = arg;
    gnb_stream *st = NULL;
    if (status == 0) {
        st = st_new(r->br, r->ch, s, r->protocol);
        if (!st) {
            status = GN_ENOMEM;
        } else {
            /* st_new returned the loop's and our reference */
        }
    }
    req_note(r, GNB_NOTE_OPEN, status, 0, st);
    req_free(r);
}

static void br_open_run(gn_loop *loop, void *arg)
{
    (void)loop;
    br_req *r = arg;
    int rc = gn_channel_open_stream(r->ch, r->protocol, br_open_cb, r);
    if (rc < 0) {
        br_open_cb(r, rc, NULL);
    }
}

int gnb_open_stream(gnb_bridge *br, gn_channel *ch, const char *protocol_id, uint64_t token)
{
    size_t len = protocol_id ? strlen(protocol_id) : 0;
    if (len == 0 || len >= GN_PROTOCOL_ID_MAX) {
        return GN_EINVAL;
    }
    br_req *r = req_new(br, ch, token);
    if (!r) {
        return GN_ENOMEM;
    }
    memcpy(r->protocol, protocol_id, len + 1);
    return req_submit(r, br_open_run);
}

/* An inbound stream for one of our protocols (loop thread). */
static void br_on_stream(void *arg, gn_channel *ch, gn_stream *s, const char *protocol_id)
{
    gnb_bridge *br = arg;
    gnb_stream *st = st_new(br, ch, s, protocol_id);
    if (!st) {
        return;
    }
    gnb_note *note = note_new(GNB_NOTE_INBOUND, 0, 0);
    if (!note) {
        (void)gnb_stream_close(st, true);
        gnb_stream_rele(st);
        return;
    }
    note->st = st;
    snprintf(note->protocol, sizeof note->protocol, "%s", protocol_id);
    br_push(br, note);
}

static void br_handler_run(gn_loop *loop, void *arg)
{
    (void)loop;
    br_req *r = arg;
    int rc = gn_node_set_handler(r->br->node, r->protocol, r->add ? br_on_stream : NULL, r->br);
    req_note(r, GNB_NOTE_DONE, rc, 0, NULL);
    req_free(r);
}

int gnb_set_handler(gnb_bridge *br, const char *protocol_id, bool add, bool started,
                    uint64_t token)
{
    if (!started) {
        return gn_node_set_handler(br->node, protocol_id, add ? br_on_stream : NULL, br);
    }
    size_t len = protocol_id ? strlen(protocol_id) : 0;
    if (len == 0 || len >= GN_PROTOCOL_ID_MAX) {
        return GN_EINVAL;
    }
    br_req *r = req_new(br, NULL, token);
    if (!r) {
        return GN_ENOMEM;
    }
    memcpy(r->protocol, protocol_id, len + 1);
    r->add = add;
    int rc = req_submit(r, br_handler_run);
    return rc < 0 ? rc : 1;
}

bool gnb_bridge_kick_failed(gnb_bridge *br)
{
    pthread_mutex_lock(&br->mu);
    bool f = br->kick_failed && br->khead && !br->kick_posted;
    pthread_mutex_unlock(&br->mu);
    return f;
}

/* ------------------------------------------------------------------------
 * Resource transfer (golemnet/transfer.h)
 */

void gnb_xfer_free(gnb_xfer *x)
{
    if (!x) {
        return;
    }
    gn_free(x->peer);
    gn_free(x->detail);
    for (size_t i = 0; i < x->n_addrs; i++) {
        gn_free(x->addrs[i]);
    }
    gn_free(x->addrs);
    gn_free(x);
}

#ifdef GNPY_HAVE_XFER
#include "golemnet/transfer.h"

typedef struct br_xreq {
    gnb_bridge *br;
    uint64_t token;
    char *a, *b;            /* cid/path, path */
    char **prov;
    size_t n_prov, max;
    unsigned mem_chunks;
    gn_time interval;
    gn_xfer_fetch *f;
    struct br_xreq *next;   /* br->fetches */
} br_xreq;

static void xreq_free(br_xreq *r)
{
    gn_free(r->a);
    gn_free(r->b);
    for (size_t i = 0; i < r->n_prov; i++) {
        gn_free(r->prov[i]);
    }
    gn_free(r->prov);
    br_rele(r->br);
    gn_free(r);
}

static br_xreq *xreq_new(gnb_bridge *br, uint64_t token, const char *a, const char *b)
{
    br_xreq *r = gn_calloc(1, sizeof *r);
    if (!r) {
        return NULL;
    }
    r->br = br_hold(br);
    r->token = token;
    if ((a && !(r->a = gn_strdup(a))) || (b && !(r->b = gn_strdup(b)))) {
        xreq_free(r);
        return NULL;
    }
    return r;
}

static int xreq_submit(br_xreq *r, gn_loop_fn fn)
{
    gnb_bridge *br = r->br;
    pthread_mutex_lock(&br->mu);
    int rc = br->detached ? GN_ECLOSED : gn_loop_submit(br->loop, fn, r);
    pthread_mutex_unlock(&br->mu);
    if (rc < 0) {
        xreq_free(r);
    }
    return rc;
}

/* Pushes a GNB_NOTE_XFER note; @x is taken (freed when the note cannot be made). */
static void xnote(br_xreq *r, int status, gnb_xfer *x)
{
    gnb_note *note = note_new(GNB_NOTE_XFER, status, r->token);
    if (!note) {
        gnb_xfer_free(x);
        return;
    }
    note->xfer = x;
    br_push(r->br, note);
}

static gnb_xfer *xnew(int type, const char *peer, const char *detail)
{
    gnb_xfer *x = gn_calloc(1, sizeof *x);
    if (x) {
        x->type = type;
        x->peer = peer ? gn_strdup(peer) : NULL;
        x->detail = detail ? gn_strdup(detail) : NULL;
    }
    return x;
}

static void br_shared(void *arg, int status, const char *cid, uint64_t size)
{
    br_xreq *r = arg;
    gnb_xfer *x = xnew(GNB_XFER_SHARED, NULL, cid);
    if (x) {
        x->v[1] = size;
    }
    xnote(r, status, x);
    xreq_free(r);
}

static void br_share_run(gn_loop *loop, void *arg)
{
    (void)loop;
    br_xreq *r = arg;
    int rc = gn_xfer_share(r->br->node, r->a, br_shared, r);
    if (rc < 0) {
        br_shared(r, rc, NULL, 0);
    }
}

int gnb_xfer_share(gnb_bridge *br, const char *path, uint64_t token)
{
    br_xreq *r = xreq_new(br, token, path, NULL);
    return r ? xreq_submit(r, br_share_run) : GN_ENOMEM;
}

static void br_provided(void *arg, int status)
{
    br_xreq *r = arg;
    xnote(r, status, xnew(GNB_XFER_PROVIDED, NULL, NULL));
    xreq_free(r);
}

static void br_provide_run(gn_loop *loop, void *arg)
{
    (void)loop;
    br_xreq *r = arg;
    int rc = gn_xfer_provide(r->br->node, r->a, br_provided, r);
    if (rc < 0) {
        br_provided(r, rc);
    }
}

int gnb_xfer_provide(gnb_bridge *br, const char *cid, uint64_t token)
{
    br_xreq *r = xreq_new(br, token, cid, NULL);
    return r ? xreq_submit(r, br_provide_run) : GN_ENOMEM;
}

static void br_found(void *arg, int status, const char *const *addrs, size_t n)
{
    br_xreq *r = arg;
    gnb_xfer *x = xnew(GNB_XFER_FOUND, NULL, NULL);
    if (x && n > 0 && (x->addrs = gn_calloc(n, sizeof *x->addrs)) != NULL) {
        for (size_t i = 0; i < n; i++) {
            if ((x->addrs[x->n_addrs] = gn_strdup(addrs[i])) != NULL) {
                x->n_addrs++;
            }
        }
    }
    xnote(r, status, x);
    xreq_free(r);
}

static void br_find_run(gn_loop *loop, void *arg)
{
    (void)loop;
    br_xreq *r = arg;
    int rc = gn_xfer_find(r->br->node, r->a, r->max, br_found, r);
    if (rc < 0) {
        br_found(r, rc, NULL, 0);
    }
}

int gnb_xfer_find(gnb_bridge *br, const char *cid, size_t max, uint64_t token)
{
    br_xreq *r = xreq_new(br, token, cid, NULL);
    if (!r) {
        return GN_ENOMEM;
    }
    r->max = max;
    return xreq_submit(r, br_find_run);
}

static void br_fetch_unlink(br_xreq *r)
{
    for (br_xreq **pp = &r->br->fetches; *pp; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            return;
        }
    }
}

static void br_fetch_event(void *arg, const gn_xfer_event *ev)
{
    br_xreq *r = arg;
    gnb_xfer *x = xnew((int)ev->type, ev->peer, ev->detail);
    if (x) {
        const gn_xfer_progress *p = ev->progress;
        x->v[0] = p->bytes_done;
        x->v[1] = p->bytes_total;
        x->v[2] = p->bytes_resumed;
        x->v[3] = p->chunks_done;
        x->v[4] = p->chunks_total;
        x->v[5] = p->rate;
        x->v[6] = p->eta_ms < 0 ? 0 : (uint64_t)p->eta_ms + 1;
        x->v[7] = p->peers;
        x->v[8] = p->peers_banned;
        x->v[9] = p->bytes_received;
    }
    xnote(r, ev->status, x);
    if (ev->type == GN_XFER_EV_DONE) {
        br_fetch_unlink(r);
        xreq_free(r);
    }
}

static void br_fetch_run(gn_loop *loop, void *arg)
{
    (void)loop;
    br_xreq *r = arg;
    gn_xfer_fetch_opts o;
    gn_xfer_fetch_opts_default(&o);
    o.providers = (const char *const *)r->prov;
    o.n_providers = r->n_prov;
    if (r->mem_chunks) {
        o.max_chunks_in_memory = r->mem_chunks;
    }
    o.progress_interval = r->interval;
    int rc = gn_xfer_fetch_start(r->br->node, r->a, r->b, &o, br_fetch_event, r, &r->f);
    if (rc < 0) {
        gn_xfer_progress p;
        memset(&p, 0, sizeof p);
        p.eta_ms = -1;
        gn_xfer_event ev = {GN_XFER_EV_DONE, rc, &p, NULL, "the download did not start"};
        br_fetch_event(r, &ev);
        return;
    }
    r->next = r->br->fetches;
    r->br->fetches = r;
}

int gnb_xfer_fetch(gnb_bridge *br, const char *cid, const char *path,
                   const char *const *providers, size_t n_providers, unsigned mem_chunks,
                   gn_time progress_interval, uint64_t token)
{
    br_xreq *r = xreq_new(br, token, cid, path);
    if (!r) {
        return GN_ENOMEM;
    }
    if (n_providers > 0) {
        r->prov = gn_calloc(n_providers, sizeof *r->prov);
        if (!r->prov) {
            xreq_free(r);
            return GN_ENOMEM;
        }
        for (size_t i = 0; i < n_providers; i++, r->n_prov++) {
            if (!(r->prov[i] = gn_strdup(providers[i]))) {
                xreq_free(r);
                return GN_ENOMEM;
            }
        }
    }
    r->mem_chunks = mem_chunks;
    r->interval = progress_interval;
    return xreq_submit(r, br_fetch_run);
}

static void br_cancel_run(gn_loop *loop, void *arg)
{
    (void)loop;
    br_xreq *c = arg;
    for (br_xreq *r = c->br->fetches; r; r = r->next) {
        if (r->token == c->token && r->f) {
            gn_xfer_fetch_cancel(r->f);
            r->f = NULL;
            break;
        }
    }
    xreq_free(c);
}

int gnb_xfer_cancel(gnb_bridge *br, uint64_t token)
{
    br_xreq *r = xreq_new(br, token, NULL, NULL);
    return r ? xreq_submit(r, br_cancel_run) : GN_ENOMEM;
}
#else
int gnb_xfer_share(gnb_bridge *br, const char *path, uint64_t token)
{
    (void)br, (void)path, (void)token;
    return GN_ENOTSUP;
}
int gnb_xfer_provide(gnb_bridge *br, const char *cid, uint64_t token)
{
    (void)br, (void)cid, (void)token;
    return GN_ENOTSUP;
}
int gnb_xfer_find(gnb_bridge *br, const char *cid, size_t max, uint64_t token)
{
    (void)br, (void)cid, (void)max, (void)token;
    return GN_ENOTSUP;
}
int gnb_xfer_fetch(gnb_bridge *br, const char *cid, const char *path,
                   const char *const *providers, size_t n_providers, unsigned mem_chunks,
                   gn_time progress_interval, uint64_t token)
{
    (void)br, (void)cid, (void)path, (void)providers, (void)n_providers, (void)mem_chunks;
    (void)progress_interval, (void)token;
    return GN_ENOTSUP;
}
int gnb_xfer_cancel(gnb_bridge *br, uint64_t token)
{
    (void)br, (void)token;
    return GN_ENOTSUP;
}
#endif
