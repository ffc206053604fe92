/*
 * The /golem/transfer/1.0.0 protocol component and its libuv driver
 * (issue 19): the provider side (shared files served from disk), the
 * downloader (streams to providers, the multi-source scheduler, the
 * partial state on disk) and the public API of golemnet/transfer.h.
 *
 * The cores (xfer.h) decide everything about the wire and the schedule;
 * this file moves bytes between them, the streams and the files:
 *  - sharing hashes the file on libuv's thread pool (uv_queue_work);
 *  - a provider stream reads each chunk with uv_fs_read when the core says
 *    it is its turn (one chunk per stream in memory) and writes header +
 *    bytes as two slices; one write in flight per stream;
 *  - a download writes verified chunks with uv_fs_write, one disk
 *    operation at a time in order, and commits their bits to the state
 *    file every 64 chunks or 1 s: fdatasync(FILE.part), write the bitmap
 *    bytes, fdatasync(FILE.part.state) (transfer.md section 8); the small
 *    setup and final steps (open, read the state file, rename) are
 *    synchronous uv_fs calls on the loop thread;
 *  - memory: a download holds at most max_chunks_in_memory chunks (asked
 *    for and not received, plus received and not yet written): WANTs wait
 *    while the budget is used, so memory does not grow with the file.
 *
 * Lifetime: the component's state is a pointer to a refcounted xfer_core
 * that outlives the component while disk operations, hashing jobs or
 * stream closes are pending. The public API finds a node's core through a
 * loop-local list keyed by the node's host (as the ergo component does).
 *
 * Spec: docs/protocols/transfer.md; user guide docs/transfer.md.
 */
#include "golemnet/multiformats.h"
#include "golemnet/node.h"
#include "golemnet/protocol.h"
#include "golemnet/registry.h"
#include "golemnet/transfer.h"

#include "gni.h"
#include "xfer.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#define XF_LOG "transfer"
#define XF_CTL_BUF 16384u          /* core output queues are 16 KiB */
#define XF_FIRST_MAX 128u          /* the first frame (GET_MANIFEST) of a provider stream */
#define XF_SYNC_CHUNKS 64u         /* transfer.md 8: fdatasync every 64 chunks ... */
#define XF_SYNC_TIME (1 * GN_S)    /* ... or 1 s */
#define XF_TICK (250 * GN_MS)      /* housekeeping: stalls, syncs, progress */
#define XF_MAX_PROVIDERS 64u
#define XF_MAX_PSTREAMS 256u       /* provider streams per node; more: ERROR(BUSY) */

typedef struct xfer_core xfer_core;
typedef struct xfer_share xfer_share;
typedef struct xfer_pstream xfer_pstream;
typedef struct xfer_src xfer_src;

static char xfer_loop_key;

struct xfer_core {
    int refs;
    bool running;
    gn_host *h;
    gn_loop *loop;
    uv_loop_t *uv;
    gni_list shares;   /* xfer_share */
    gni_list pstreams; /* xfer_pstream */
    gni_list fetches;  /* gn_xfer_fetch */
    unsigned n_ps;     /* provider streams open */
    xfer_core *next_on_loop;
};

static void core_rele(xfer_core *c)
{
    if (--c->refs == 0)
        gn_free(c);
}

/* ------------------------------------------------------------------------
 * Shares
 */

struct xfer_share {
    gni_list link; /* core->shares while shared */
    int refs;      /* the list's and each stream's */
    uint8_t cid[GNI_XFER_CID_LEN];
    uint8_t mb[GNI_XFER_MANIFEST_MAX];
    size_t mb_len;
    gni_xfer_manifest m;
    gni_xfer_tree *t;
    uv_file fd;
    char *path;
};

static void share_rele(xfer_share *sh)
{
    if (--sh->refs > 0)
        return;
    gni_xfer_tree_free(sh->t);
    if (sh->fd >= 0)
        close(sh->fd);
    gn_free(sh->path);
    gn_free(sh);
}

static xfer_share *share_find(xfer_core *c, const uint8_t *cid, size_t len)
{
    if (len != GNI_XFER_CID_LEN)
        return NULL;
    for (gni_list *e = c->shares.next; e != &c->shares; e = e->next) {
        xfer_share *sh = GNI_CONTAINER_OF(e, xfer_share, link);
        if (memcmp(sh->cid, cid, GNI_XFER_CID_LEN) == 0)
            return sh;
    }
    return NULL;
}

typedef struct share_job {
    uv_work_t w;
    xfer_core *c;
    char *path;
    gn_xfer_share_cb cb;
    void *arg;
    int status;
    xfer_share *sh;
} share_job;

/* Thread pool: reads and hashes the whole file, builds the tree. */
static void share_work(uv_work_t *w)
{
    share_job *j = w->data;
    uint8_t *leaves = NULL, *buf = NULL;
    xfer_share *sh = gn_calloc(1, sizeof *sh);
    int fd = -1, rc = GN_ENOMEM;
    if (!sh)
        goto out;
    sh->fd = -1;
    fd = open(j->path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        rc = GN_EIO;
        goto out;
    }
    if ((uint64_t)st.st_size > GNI_XFER_SIZE_MAX) {
        rc = GN_ETOOBIG;
        goto out;
    }
    gni_xfer_manifest *m = &sh->m;
    m->total_size = (uint64_t)st.st_size;
    m->chunk_size = GNI_XFER_CHUNK_DEFAULT;
    m->leaf_count = gni_xfer_leaf_count(m->total_size, m->chunk_size);
    leaves = gn_malloc(m->leaf_count ? m->leaf_count * GNI_XFER_HASH_LEN : 1);
    buf = gn_malloc(m->chunk_size);
    if (!leaves || !buf)
        goto out;
    for (uint64_t i = 0; i < m->leaf_count; i++) {
        size_t want = gni_xfer_chunk_len(m, i), got = 0;
        while (got < want) {
            ssize_t r = pread(fd, buf + got, want - got, (off_t)(i * m->chunk_size + got));
            if (r <= 0) {
                rc = GN_EIO; /* an error, or the file shrank meanwhile */
                goto out;
            }
            got += (size_t)r;
        }
        gni_xfer_leaf_hash(leaves + i * GNI_XFER_HASH_LEN, buf, want);
    }
    if ((rc = gni_xfer_tree_new(leaves, m->leaf_count, &sh->t)) < 0)
        goto out;
    memcpy(m->root, gni_xfer_tree_root(sh->t), GNI_XFER_HASH_LEN);
    /* the file's base name as the manifest's name, when it is a valid one */
    const char *base = strrchr(j->path, '/');
    base = base ? base + 1 : j->path;
    size_t bl = strlen(base);
    if (bl > 0 && bl <= GNI_XFER_NAME_MAX) {
        memcpy(m->name, base, bl + 1);
        m->name_len = bl;
    }
    rc = gni_xfer_manifest_encode(m, sh->mb, sizeof sh->mb);
    if (rc < 0 && m->name_len) { /* a name the manifest refuses: go without */
        m->name_len = 0;
        m->name[0] = 0;
        rc = gni_xfer_manifest_encode(m, sh->mb, sizeof sh->mb);
    }
    if (rc < 0)
        goto out;
    sh->mb_len = (size_t)rc;
    gni_xfer_cid(sh->mb, sh->mb_len, sh->cid);
    sh->fd = fd;
    fd = -1;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    gn_free(buf);
    gn_free(leaves);
    if (rc < 0 && sh) {
        gni_xfer_tree_free(sh->t);
        gn_free(sh);
        sh = NULL;
    }
    j->status = rc;
    j->sh = sh;
}

static void share_done(uv_work_t *w, int status)
{
    share_job *j = w->data;
    xfer_core *c = j->c;
    xfer_share *sh = j->sh;
    int rc = status < 0 ? GN_ECANCELED : j->status;
    if (rc == 0 && !c->running)
        rc = GN_ECANCELED;
    char cid[GNI_XFER_CID_STR_MAX] = "";
    uint64_t size = 0;
    if (rc == 0) {
        sh->path = j->path;
        j->path = NULL;
        sh->refs = 1;
        xfer_share *old = share_find(c, sh->cid, GNI_XFER_CID_LEN);
        if (old) { /* same content again: the newer path serves it */
            gni_list_del(&old->link);
            share_rele(old);
        }
        gni_list_add_tail(&c->shares, &sh->link);
        gni_xfer_cid_string(sh->cid, cid, sizeof cid);
        size = sh->m.total_size;
        GN_LOG(GN_LOG_INFO, XF_LOG, "sharing %s as %s (%" PRIu64 " bytes, %" PRIu64 " chunks)",
               sh->path, cid, size, sh->m.leaf_count);
    } else if (sh) {
        sh->refs = 1;
        share_rele(sh);
    }
    j->cb(j->arg, rc, rc == 0 ? cid : NULL, size);
    gn_free(j->path);
    gn_free(j);
    core_rele(c);
}

/* ------------------------------------------------------------------------
 * Provider streams
 */

struct xfer_pstream {
    gni_list link; /* core->pstreams */
    xfer_core *c;
    gn_stream *s;
    xfer_share *sh;
    gni_xfer_prov *p;
    uint8_t first[XF_FIRST_MAX];
    size_t first_len;
    uint8_t ctl[XF_CTL_BUF];
    uint8_t hdr[GNI_XFER_CHUNK_HDR_MAX];
    uint8_t *chunk; /* chunk_size bytes */
    uint8_t *pend;  /* input not fed yet (the core's queue was full) */
    size_t pend_len;
    uv_fs_t rd;
    uint64_t rd_index;
    bool writing, disk_busy, closing, closed, end_after_write;
    /* a write the stream refused with GN_EAGAIN, retried on on_writable */
    size_t w_ctl, w_hdr, w_data;
    gn_timer timer; /* the core's deadline (transfer.md 6.5) */
};

static void ps_write_cb(void *arg, int status);
static void ps_close(xfer_pstream *ps);

/* Writes what is pending (control bytes, or a chunk's header and bytes). */
static void ps_try_write(xfer_pstream *ps)
{
    gn_slice iov[2];
    size_t n = 0;
    if (ps->w_ctl) {
        iov[n++] = (gn_slice){ps->ctl, ps->w_ctl};
    } else if (ps->w_hdr) {
        iov[n++] = (gn_slice){ps->hdr, ps->w_hdr};
        iov[n++] = (gn_slice){ps->chunk, ps->w_data};
    } else {
        return;
    }
    int rc = gn_stream_write(ps->s, iov, n, ps_write_cb, ps);
    if (rc == GN_EAGAIN)
        return; /* the stream's queue is full: on_writable retries */
    if (rc < 0) {
        ps_close(ps);
        return;
    }
    ps->w_ctl = ps->w_hdr = ps->w_data = 0;
    ps->writing = true;
}

static void ps_pump(xfer_pstream *ps);
static void ps_feed(xfer_pstream *ps, const uint8_t *in, size_t len);

static void ps_maybe_free(xfer_pstream *ps)
{
    if (!ps->closed || ps->writing || ps->disk_busy)
        return;
    gn_timer_stop(&ps->timer);
    gni_xfer_prov_free(ps->p);
    if (ps->sh)
        share_rele(ps->sh);
    gn_free(ps->chunk);
    gn_free(ps->pend);
    xfer_core *c = ps->c;
    gn_free(ps);
    core_rele(c);
}

static void ps_closed(gn_stream *s, void *arg)
{
    (void)s;
    xfer_pstream *ps = arg;
    ps->closed = true;
    ps_maybe_free(ps);
}

static void ps_close(xfer_pstream *ps)
{
    if (ps->closing)
        return;
    ps->closing = true;
    gn_timer_stop(&ps->timer);
    ps->c->n_ps--;
    gni_list_del(&ps->link);
    gn_stream_close(ps->s, ps_closed, ps);
}

static void ps_write_cb(void *arg, int status)
{
    xfer_pstream *ps = arg;
    ps->writing = false;
    if (ps->closing) {
        ps_maybe_free(ps);
        return;
    }
    if (status < 0) {
        ps_close(ps);
        return;
    }
    if (ps->pend) { /* input held back while the core's queue was full */
        uint8_t *in = ps->pend;
        size_t len = ps->pend_len;
        ps->pend = NULL;
        ps->pend_len = 0;
        gn_stream_read_start(ps->s);
        ps_feed(ps, in, len);
        gn_free(in);
        if (ps->closing)
            return;
    }
    ps_pump(ps);
}

static void ps_read_cb(uv_fs_t *req)
{
    xfer_pstream *ps = req->data;
    ssize_t r = req->result;
    uv_fs_req_cleanup(req);
    ps->disk_busy = false;
    if (ps->closing) {
        ps_maybe_free(ps);
        return;
    }
    size_t want = gni_xfer_chunk_len(&ps->sh->m, ps->rd_index);
    if (r != (ssize_t)want) {
        GN_LOG(GN_LOG_WARNING, XF_LOG, "reading chunk %" PRIu64 " of %s: %s", ps->rd_index,
               ps->sh->path, r < 0 ? uv_strerror((int)r) : "the file is shorter than shared");
        /* answer it with SKIP(NOT_HAVE): the requester asks elsewhere */
        if (gni_xfer_prov_skip_head(ps->p, GNI_XFER_SKIP_NOT_HAVE) < 0) {
            gni_xfer_prov_abort(ps->p, GNI_XFER_ERR_INTERNAL, "read error on the shared file");
            ps->end_after_write = true;
        }
        ps_pump(ps);
        return;
    }
    int hl = gni_xfer_prov_chunk_header(ps->p, ps->rd_index, ps->hdr, sizeof ps->hdr);
    if (hl < 0) { /* cancelled meanwhile (SKIP queued instead) */
        ps_pump(ps);
        return;
    }
    ps->w_hdr = (size_t)hl;
    ps->w_data = want;
    ps_try_write(ps);
}

static void ps_timer_cb(gn_timer *t, void *arg);

/* Arms the stream's timer for the core's next deadline (6.5). */
static void ps_arm(xfer_pstream *ps)
{
    if (ps->closing || !ps->p)
        return;
    gn_time d = gni_xfer_prov_next_deadline(ps->p), now = gn_loop_now(ps->c->loop);
    if (d == GN_TIME_INFINITY) {
        gn_timer_stop(&ps->timer);
        return;
    }
    gn_timer_start(&ps->timer, d > now ? d - now : 0, ps_timer_cb, ps);
}

static void ps_timer_cb(gn_timer *t, void *arg)
{
    (void)t;
    xfer_pstream *ps = arg;
    if (ps->closing)
        return;
    if (!ps->p) { /* no GET_MANIFEST within 10 s */
        ps_close(ps);
        return;
    }
    if (gni_xfer_prov_on_expiry(ps->p, gn_loop_now(ps->c->loop)) == GN_ETIMEDOUT)
        ps->end_after_write = true; /* ERROR(LIMIT, "timeout") queued: drain, close */
    ps_pump(ps);
}

static void ps_pump(xfer_pstream *ps)
{
    if (ps->closing || ps->writing || ps->disk_busy || ps->w_ctl || ps->w_hdr)
        return;
    if (!ps->p) {
        if (ps->end_after_write)
            ps_close(ps);
        return;
    }
    gn_buf b;
    gn_buf_init(&b, ps->ctl, sizeof ps->ctl);
    size_t n = gni_xfer_prov_drain(ps->p, &b);
    if (n > 0) {
        ps->w_ctl = n;
        ps_try_write(ps);
        return;
    }
    if (ps->end_after_write) {
        ps_close(ps);
        return;
    }
    uint64_t idx;
    if (gni_xfer_prov_next(ps->p, &idx) != 1) {
        ps_arm(ps);
        return;
    }
    if (!gni_list_on(&ps->sh->link)) { /* unshared meanwhile */
        gni_xfer_prov_abort(ps->p, GNI_XFER_ERR_NOT_FOUND, "no longer shared");
        ps->end_after_write = true;
        ps_pump(ps);
        return;
    }
    size_t len = gni_xfer_chunk_len(&ps->sh->m, idx);
    uv_buf_t ub = uv_buf_init((char *)ps->chunk, (unsigned)len);
    ps->rd.data = ps;
    ps->rd_index = idx;
    int rc = uv_fs_read(ps->c->uv, &ps->rd, ps->sh->fd, &ub, 1,
                        (int64_t)(idx * ps->sh->m.chunk_size), ps_read_cb);
    if (rc < 0) {
        gni_xfer_prov_abort(ps->p, GNI_XFER_ERR_INTERNAL, "read error on the shared file");
        ps->end_after_write = true;
        ps_pump(ps);
        return;
    }
    ps->disk_busy = true;
}

/* Sends ERROR(@code, @text) on a stream that has no provider core yet, then closes. */
static void ps_refuse(xfer_pstream *ps, unsigned code, const char *text)
{
    gni_xfer_msg m = {0};
    m.type = GNI_XFER_T_ERROR;
    m.code = code;
    m.bytes.base = (const uint8_t *)text;
    m.bytes.len = strlen(text);
    int n = gni_xfer_msg_encode(&m, ps->ctl, sizeof ps->ctl);
    gn_slice iov = {ps->ctl, n > 0 ? (size_t)n : 0};
    ps->end_after_write = true;
    if (n <= 0 || gn_stream_write(ps->s, &iov, 1, ps_write_cb, ps) < 0) {
        ps_close(ps);
        return;
    }
    ps->writing = true;
    gn_stream_read_stop(ps->s);
}

/* Before the core exists: collect the first frame, find the share. */
static size_t ps_first(xfer_pstream *ps, const uint8_t *in, size_t len)
{
    size_t take = len;
    if (take > sizeof ps->first - ps->first_len)
        take = sizeof ps->first - ps->first_len;
    memcpy(ps->first + ps->first_len, in, take);
    ps->first_len += take;
    uint64_t body;
    int vl = gn_varint_decode(ps->first, ps->first_len, &body);
    if (vl == GN_EAGAIN)
        return take;
    if (vl < 0 || body > sizeof ps->first - (size_t)vl) {
        ps_refuse(ps, GNI_XFER_ERR_PROTOCOL, "first message is not GET_MANIFEST");
        return len;
    }
    if (ps->first_len < (size_t)vl + body) {
        if (take < len || ps->first_len == sizeof ps->first) {
            ps_refuse(ps, GNI_XFER_ERR_PROTOCOL, "first message is not GET_MANIFEST");
            return len;
        }
        return take;
    }
    gni_xfer_msg m;
    gni_xfer_range ranges[GNI_XFER_MAX_RANGES];
    if (gni_xfer_msg_decode(ps->first + vl, (size_t)body, &m, ranges) < 0 ||
        m.type != GNI_XFER_T_GET_MANIFEST) {
        ps_refuse(ps, GNI_XFER_ERR_PROTOCOL, "first message is not GET_MANIFEST");
        return len;
    }
    xfer_share *sh = share_find(ps->c, m.bytes.base, m.bytes.len);
    if (!sh) {
        ps_refuse(ps, GNI_XFER_ERR_NOT_FOUND, "resource not shared here");
        return len;
    }
    ps->chunk = gn_malloc(sh->m.chunk_size);
    if (!ps->chunk || gni_xfer_prov_new(sh->mb, sh->mb_len, sh->t, NULL, &ps->p) < 0) {
        ps_refuse(ps, GNI_XFER_ERR_INTERNAL, "out of memory");
        return len;
    }
    ps->sh = sh;
    sh->refs++;
    gni_xfer_prov_start(ps->p, gn_loop_now(ps->c->loop));
    /* feed the collected bytes (the first frame and any after it) */
    size_t have = ps->first_len;
    ps->first_len = 0;
    uint8_t tmp[XF_FIRST_MAX];
    memcpy(tmp, ps->first, have);
    ps_feed(ps, tmp, have);
    return take;
}

static void ps_feed(xfer_pstream *ps, const uint8_t *in, size_t len)
{
    while (len > 0 && !ps->closing && !ps->end_after_write) {
        if (!ps->p) {
            size_t used = ps_first(ps, in, len);
            in += used;
            len -= used;
            continue;
        }
        size_t used = 0;
        gni_xfer_ev ev;
        int rc = gni_xfer_prov_feed_at(ps->p, in, len, &used, &ev, gn_loop_now(ps->c->loop));
        in += used;
        len -= used;
        if (rc == GN_EAGAIN) { /* the answers queue is full: hold the rest back */
            ps->pend = gn_malloc(len);
            if (!ps->pend) {
                ps_close(ps);
                return;
            }
            memcpy(ps->pend, in, len);
            ps->pend_len = len;
            gn_stream_read_stop(ps->s);
            break;
        }
        if (rc == 1) { /* the requester's ERROR: it is done with us */
            ps->end_after_write = true;
            break;
        }
        if (rc < 0) {
            GN_LOG(GN_LOG_INFO, XF_LOG, "provider stream: %s", gn_err_name(rc));
            ps->end_after_write = true; /* the core queued ERROR */
            break;
        }
    }
    ps_pump(ps);
}

static void ps_on_data(gn_stream *s, void *ud, const uint8_t *data, size_t len)
{
    (void)s;
    ps_feed(ud, data, len);
}

static void ps_on_eof(gn_stream *s, void *ud)
{
    (void)s;
    xfer_pstream *ps = ud;
    /* the requester is done: finish what is being written, then close */
    ps->end_after_write = true;
    ps_pump(ps);
}

static void ps_on_error(gn_stream *s, void *ud, int err)
{
    (void)s, (void)err;
    ps_close(ud);
}

static void ps_on_writable(gn_stream *s, void *ud)
{
    (void)s;
    xfer_pstream *ps = ud;
    if (ps->closing)
        return;
    if (ps->w_ctl || ps->w_hdr)
        ps_try_write(ps);
    else
        ps_pump(ps);
}

static const gn_stream_handler ps_handler = {ps_on_data, ps_on_eof, ps_on_error, ps_on_writable};

/* ------------------------------------------------------------------------
 * Downloads
 */

typedef struct xfer_wr {
    gni_list link;
    uint64_t index;
    size_t len;
    uint8_t *buf;
} xfer_wr;

enum { DISK_IDLE, DISK_WRITE, DISK_SYNC_PART, DISK_WRITE_BITS, DISK_SYNC_STATE };

struct gn_xfer_fetch {
    gni_list link; /* core->fetches */
    xfer_core *c;
    gn_node *n;
    int refs;
    gn_xfer_fetch_opts o;
    char **prov;
    size_t n_prov;
    uint8_t cid[GNI_XFER_CID_LEN];
    char cid_s[GNI_XFER_CID_STR_MAX];
    char *path, *part_path, *state_path;
    gn_xfer_event_cb cb;
    void *arg;
    /* once a manifest arrived */
    bool have_m;
    gni_xfer_manifest m;
    gni_xfer_sched *sched;
    uv_file part_fd, state_fd;
    size_t hdr_len;
    uint8_t *durable; /* the bitmap as committed to the state file */
    size_t bm_len;
    /* disk: one operation at a time, in order */
    int disk;
    uv_fs_t req;
    gni_list wq; /* xfer_wr to write */
    xfer_wr *cur;
    uint64_t *unsynced; /* chunks written since the last commit */
    unsigned n_unsynced;
    unsigned n_committing;
    size_t bits_lo, bits_hi;
    gn_time last_sync;
    unsigned mem_chunks; /* chunk buffers held (queued writes) */
    /* providers */
    gni_list srcs;
    xfer_src *by_pid[XF_MAX_PROVIDERS];
    unsigned live, pending, banned, not_found;
    bool finding;
    unsigned find_tries; /* GN_ENOROUTE right after the start: the DHT is not joined yet */
    gn_timer find_timer;
    /* rate cap (o.max_rate): a token bucket of bytes that may be asked for */
    int64_t allowance;
    gn_time allow_t;
    /* progress */
    gn_timer tick;
    gn_time last_progress, last_rate_t;
    uint64_t last_rate_bytes, rate, resumed, received;
    /* the end */
    bool finishing, done_sent;
    int status;
    char detail[160];
};

struct xfer_src {
    gni_list link; /* f->srcs */
    gn_xfer_fetch *f;
    char *addr;
    gn_stream *s;
    gni_xfer_req *r;
    int pid;
    bool up, dead, writing, closing, closed;
    unsigned jobs; /* chunks of this provider being verified on the thread pool */
    size_t out_len; /* drained, not yet accepted by the stream (GN_EAGAIN) */
    gn_timer timer; /* the core's deadline (transfer.md 6.5) */
    uint8_t out[XF_CTL_BUF];
};

/*
 * A chunk verified on libuv's thread pool (the core's deferred mode,
 * transfer.md section 9): the loop thread goes on receiving while another
 * core hashes. The chunk stays "in flight" at the scheduler until the
 * verdict, so the memory budget (inflight + queued writes) covers it.
 */
typedef struct xfer_vjob {
    uv_work_t w;
    xfer_src *src;
    uint64_t index;
    uint8_t *buf;
    size_t len;
    uint8_t proof[GNI_XFER_DEPTH_MAX * GNI_XFER_HASH_LEN];
    unsigned proof_cnt;
    int rc;
} xfer_vjob;

static void fetch_pump(gn_xfer_fetch *f);
static void fetch_finish(gn_xfer_fetch *f, int status, const char *detail);
static void disk_kick(gn_xfer_fetch *f);
static void src_fail(xfer_src *src, int why, const char *detail);
static void src_arm(xfer_src *src);

static void fetch_rele(gn_xfer_fetch *f)
{
    if (--f->refs > 0)
        return;
    gn_timer_stop(&f->tick);
    gn_timer_stop(&f->find_timer);
    for (size_t i = 0; i < f->n_prov; i++)
        gn_free(f->prov[i]);
    gn_free(f->prov);
    gni_xfer_sched_free(f->sched);
    gn_free(f->durable);
    gn_free(f->unsynced);
    gn_free(f->path);
    gn_free(f->part_path);
    gn_free(f->state_path);
    xfer_core *c = f->c;
    gn_free(f);
    core_rele(c);
}

static void fetch_progress(gn_xfer_fetch *f, gn_xfer_progress *p)
{
    memset(p, 0, sizeof *p);
    p->bytes_total = f->have_m ? f->m.total_size : 0;
    p->chunks_total = f->have_m ? f->m.leaf_count : 0;
    if (f->sched) {
        p->bytes_done = gni_xfer_sched_done_bytes(f->sched);
        p->chunks_done = gni_xfer_sched_done_cnt(f->sched);
    }
    p->bytes_resumed = f->resumed;
    p->rate = f->rate;
    p->eta_ms = -1;
    if (f->rate > 0 && p->bytes_total >= p->bytes_done)
        p->eta_ms = (int64_t)((p->bytes_total - p->bytes_done) * 1000 / f->rate);
    p->peers = f->live;
    p->peers_banned = f->banned;
    p->bytes_received = f->received;
}

static void fetch_emit(gn_xfer_fetch *f, gn_xfer_event_type type, int status, const char *peer,
                       const char *detail)
{
    if (f->done_sent)
        return;
    gn_xfer_progress p;
    fetch_progress(f, &p);
    gn_xfer_event ev = {type, status, &p, peer, detail};
    f->cb(f->arg, &ev);
}

/* ---- disk ---- */

static int fs_err(int uverr)
{
    return uverr == UV_ENOSPC ? GN_ENOSPC : uverr == UV_EACCES ? GN_EACCES : GN_EIO;
}

static void disk_fail(gn_xfer_fetch *f, const char *what, int uverr)
{
    char d[160];
    snprintf(d, sizeof d, "%s: %s", what, uv_strerror(uverr));
    f->disk = DISK_IDLE;
    /* nothing more is written; what is committed stays valid */
    while (!gni_list_empty(&f->wq)) {
        xfer_wr *w = GNI_CONTAINER_OF(f->wq.next, xfer_wr, link);
        gni_list_del(&w->link);
        gn_free(w->buf);
        gn_free(w);
        f->mem_chunks--;
    }
    f->n_unsynced = 0;
    fetch_finish(f, fs_err(uverr), d);
}

static void disk_cb(uv_fs_t *req);

static int disk_start_sync(gn_xfer_fetch *f)
{
    f->n_committing = f->n_unsynced;
    f->disk = DISK_SYNC_PART;
    f->req.data = f;
    return uv_fs_fdatasync(f->c->uv, &f->req, f->part_fd, disk_cb);
}

static void disk_cb(uv_fs_t *req)
{
    gn_xfer_fetch *f = req->data;
    ssize_t r = req->result;
    uv_fs_req_cleanup(req);
    int rc = 0;
    switch (f->disk) {
    case DISK_WRITE: {
        xfer_wr *w = f->cur;
        f->cur = NULL;
        gn_free(w->buf);
        f->mem_chunks--;
        if (r != (ssize_t)w->len) {
            gn_free(w);
            disk_fail(f, "writing the .part file", r < 0 ? (int)r : UV_EIO);
            fetch_rele(f);
            return;
        }
        f->unsynced[f->n_unsynced++] = w->index;
        gn_free(w);
        f->disk = DISK_IDLE;
        break;
    }
    case DISK_SYNC_PART: {
        if (r < 0) {
            disk_fail(f, "fdatasync of the .part file", (int)r);
            fetch_rele(f);
            return;
        }
        /* the chunks are durable: now their bits (transfer.md 8) */
        size_t lo = SIZE_MAX, hi = 0;
        for (unsigned i = 0; i < f->n_committing; i++) {
            uint64_t idx = f->unsynced[i];
            f->durable[idx >> 3] |= (uint8_t)(1u << (idx & 7));
            size_t b = (size_t)(idx >> 3);
            lo = b < lo ? b : lo;
            hi = b > hi ? b : hi;
        }
        memmove(f->unsynced, f->unsynced + f->n_committing,
                (f->n_unsynced - f->n_committing) * sizeof *f->unsynced);
        f->n_unsynced -= f->n_committing;
        f->n_committing = 0;
        if (lo == SIZE_MAX) {
            f->disk = DISK_IDLE;
            break;
        }
        uv_buf_t ub = uv_buf_init((char *)f->durable + lo, (unsigned)(hi - lo + 1));
        f->disk = DISK_WRITE_BITS;
        f->bits_lo = lo;
        f->bits_hi = hi;
        rc = uv_fs_write(f->c->uv, &f->req, f->state_fd, &ub, 1, (int64_t)(f->hdr_len + lo),
                         disk_cb);
        if (rc < 0) {
            disk_fail(f, "writing the state file", rc);
            fetch_rele(f);
        }
        return;
    }
    case DISK_WRITE_BITS:
        if (r != (ssize_t)(f->bits_hi - f->bits_lo + 1)) {
            disk_fail(f, "writing the state file", r < 0 ? (int)r : UV_EIO);
            fetch_rele(f);
            return;
        }
        f->disk = DISK_SYNC_STATE;
        rc = uv_fs_fdatasync(f->c->uv, &f->req, f->state_fd, disk_cb);
        if (rc < 0) {
            disk_fail(f, "fdatasync of the state file", rc);
            fetch_rele(f);
        }
        return;
    case DISK_SYNC_STATE:
        if (r < 0) {
            disk_fail(f, "fdatasync of the state file", (int)r);
            fetch_rele(f);
            return;
        }
        f->last_sync = gn_loop_now(f->c->loop);
        f->disk = DISK_IDLE;
        break;
    default:
        break;
    }
    disk_kick(f);
    fetch_pump(f); /* memory was freed: more WANTs may go */
    fetch_rele(f);
}

/* The end of a complete download: the final name, no state file. */
static void fetch_complete(gn_xfer_fetch *f)
{
    uv_fs_t q;
    int rc = uv_fs_fsync(NULL, &q, f->part_fd, NULL);
    uv_fs_req_cleanup(&q);
    if (rc == 0) {
        rc = uv_fs_rename(NULL, &q, f->part_path, f->path, NULL);
        uv_fs_req_cleanup(&q);
    }
    if (rc < 0) {
        char d[160];
        snprintf(d, sizeof d, "renaming %s to %s: %s", f->part_path, f->path, uv_strerror(rc));
        fetch_finish(f, GN_EIO, d);
        return;
    }
    uv_fs_unlink(NULL, &q, f->state_path, NULL);
    uv_fs_req_cleanup(&q);
    fetch_finish(f, 0, NULL);
}

static void disk_kick(gn_xfer_fetch *f)
{
    if (f->disk != DISK_IDLE || !f->have_m || f->part_fd < 0)
        return;
    gn_time now = gn_loop_now(f->c->loop);
    bool writes = !gni_list_empty(&f->wq);
    bool complete = gni_xfer_sched_complete(f->sched);
    /* commit every 64 chunks or 1 s; and at once when nothing is left to
     * write at the end (complete, cancelled) */
    bool due = f->n_unsynced >= XF_SYNC_CHUNKS ||
               (f->n_unsynced > 0 &&
                (now - f->last_sync >= XF_SYNC_TIME || (!writes && (f->finishing || complete))));
    int rc;
    if (due) {
        f->refs++;
        if ((rc = disk_start_sync(f)) < 0) {
            disk_fail(f, "fdatasync of the .part file", rc);
            fetch_rele(f);
        }
        return;
    }
    if (writes) {
        xfer_wr *w = GNI_CONTAINER_OF(f->wq.next, xfer_wr, link);
        gni_list_del(&w->link);
        f->cur = w;
        f->disk = DISK_WRITE;
        f->req.data = f;
        uv_buf_t ub = uv_buf_init((char *)w->buf, (unsigned)w->len);
        f->refs++;
        rc = uv_fs_write(f->c->uv, &f->req, f->part_fd, &ub, 1,
                         (int64_t)(w->index * f->m.chunk_size), disk_cb);
        if (rc < 0) {
            f->disk = DISK_IDLE;
            f->cur = NULL;
            gn_free(w->buf);
            gn_free(w);
            f->mem_chunks--;
            disk_fail(f, "writing the .part file", rc);
            fetch_rele(f);
        }
        return;
    }
    if (f->n_unsynced > 0)
        return; /* the tick commits within 1 s */
    if (f->finishing)
        fetch_finish(f, f->status, NULL); /* the disk is idle: DONE now */
    else if (complete)
        fetch_complete(f);
}

/* Opens or creates PATH.part and PATH.part.state for manifest @m. */
static int fetch_setup(gn_xfer_fetch *f, const gni_xfer_manifest *m)
{
    uint8_t mb[GNI_XFER_MANIFEST_MAX];
    int ml = gni_xfer_manifest_encode(m, mb, sizeof mb);
    if (ml < 0)
        return ml;
    f->m = *m;
    f->have_m = true;
    f->bm_len = gni_xfer_bitmap_len(m->leaf_count);
    uint8_t hdr[8 + 4 + GNI_XFER_MANIFEST_MAX];
    int hl = gni_xfer_state_header(mb, (size_t)ml, hdr, sizeof hdr);
    if (hl < 0)
        return hl;
    f->hdr_len = (size_t)hl;
    f->durable = gn_calloc(1, f->bm_len + 1);
    f->unsynced = gn_malloc(sizeof *f->unsynced * (f->o.max_chunks_in_memory + XF_SYNC_CHUNKS + 1));
    if (!f->durable || !f->unsynced)
        return GN_ENOMEM;
    uv_fs_t q;
    const uint8_t *resume = NULL;
    uint8_t *sbuf = NULL;
    /* an existing state file of this CID: resume from its bitmap */
    int fd = uv_fs_open(NULL, &q, f->state_path, UV_FS_O_RDWR, 0, NULL);
    uv_fs_req_cleanup(&q);
    if (fd >= 0) {
        size_t want = f->hdr_len + f->bm_len;
        sbuf = gn_malloc(want + 1);
        ssize_t got = -1;
        if (sbuf) {
            uv_buf_t ub = uv_buf_init((char *)sbuf, (unsigned)(want + 1));
            got = uv_fs_read(NULL, &q, fd, &ub, 1, 0, NULL);
            uv_fs_req_cleanup(&q);
        }
        gni_xfer_manifest sm;
        const uint8_t *bm;
        size_t shl;
        int prc = got >= 0 ? gni_xfer_state_parse(sbuf, (size_t)got, f->cid, &sm, &bm, &shl)
                           : GN_EIO;
        int pfd = -1;
        if (prc == 0 && shl == f->hdr_len) {
            pfd = uv_fs_open(NULL, &q, f->part_path, UV_FS_O_RDWR, 0, NULL);
            uv_fs_req_cleanup(&q);
        }
        if (prc == 0 && pfd >= 0) {
            memcpy(f->durable, bm, f->bm_len);
            resume = f->durable;
            f->state_fd = fd;
            f->part_fd = pfd;
            GN_LOG(GN_LOG_INFO, XF_LOG, "resuming %s from %s", f->cid_s, f->state_path);
        } else {
            GN_LOG(GN_LOG_WARNING, XF_LOG, "%s: %s; starting over", f->state_path,
                   prc == GN_EDECRYPT ? "of another resource" : prc < 0 ? "unreadable" :
                                                                "no .part file");
            uv_fs_close(NULL, &q, fd, NULL);
            uv_fs_req_cleanup(&q);
        }
    }
    int rc = 0;
    if (!resume) {
        int pfd = uv_fs_open(NULL, &q, f->part_path, UV_FS_O_RDWR | UV_FS_O_CREAT | UV_FS_O_TRUNC,
                             0644, NULL);
        uv_fs_req_cleanup(&q);
        if (pfd < 0) {
            snprintf(f->detail, sizeof f->detail, "creating %s: %s", f->part_path, uv_strerror(pfd));
            gn_free(sbuf);
            return fs_err(pfd);
        }
        f->part_fd = pfd;
        rc = uv_fs_ftruncate(NULL, &q, pfd, (int64_t)m->total_size, NULL); /* sparse */
        uv_fs_req_cleanup(&q);
        int sfd = rc < 0 ? rc
                         : uv_fs_open(NULL, &q, f->state_path,
                                      UV_FS_O_RDWR | UV_FS_O_CREAT | UV_FS_O_TRUNC, 0644, NULL);
        uv_fs_req_cleanup(&q);
        if (sfd < 0) {
            snprintf(f->detail, sizeof f->detail, "creating %s: %s", f->state_path,
                     uv_strerror(sfd));
            gn_free(sbuf);
            return fs_err(sfd);
        }
        f->state_fd = sfd;
        uv_buf_t ub[2] = {uv_buf_init((char *)hdr, (unsigned)hl),
                          uv_buf_init((char *)f->durable, (unsigned)f->bm_len)};
        ssize_t w = uv_fs_write(NULL, &q, sfd, ub, f->bm_len ? 2 : 1, 0, NULL);
        uv_fs_req_cleanup(&q);
        if (w == (ssize_t)(hl + f->bm_len)) {
            w = uv_fs_fdatasync(NULL, &q, sfd, NULL);
            uv_fs_req_cleanup(&q);
        } else if (w >= 0) {
            w = UV_EIO;
        }
        if (w < 0) {
            snprintf(f->detail, sizeof f->detail, "writing %s: %s", f->state_path,
                     uv_strerror((int)w));
            gn_free(sbuf);
            return fs_err((int)w);
        }
    }
    gni_xfer_sched_cfg sc;
    gni_xfer_sched_cfg_default(&sc);
    rc = gni_xfer_sched_new(m, resume, &sc, &f->sched);
    gn_free(sbuf);
    if (rc < 0)
        return rc;
    f->resumed = gni_xfer_sched_done_bytes(f->sched);
    f->last_sync = gn_loop_now(f->c->loop);
    return 0;
}

/* ---- providers of a download ---- */

static void src_maybe_free(xfer_src *src)
{
    if (src->s && !src->closed)
        return;
    if (src->writing || src->jobs > 0)
        return;
    gn_timer_stop(&src->timer);
    gni_list_del(&src->link);
    gni_xfer_req_free(src->r);
    gn_xfer_fetch *f = src->f;
    gn_free(src->addr);
    gn_free(src);
    fetch_rele(f);
}

static void src_closed(gn_stream *s, void *arg)
{
    (void)s;
    xfer_src *src = arg;
    src->closed = true;
    src_maybe_free(src);
}

static void src_close(xfer_src *src)
{
    if (src->closing)
        return;
    src->closing = true;
    if (src->s)
        gn_stream_close(src->s, src_closed, src);
    else
        src_maybe_free(src);
}

static void src_write_cb(void *arg, int status)
{
    xfer_src *src = arg;
    src->writing = false;
    if (src->closing) {
        src_maybe_free(src);
        return;
    }
    if (src->dead) { /* the last words (ERROR) went out: close */
        src_close(src);
        return;
    }
    if (status < 0) {
        src_fail(src, status, "write failed");
        return;
    }
    fetch_pump(src->f);
}

static void src_flush(xfer_src *src)
{
    if (!src->s || src->writing || src->closing || !src->r)
        return;
    if (src->out_len == 0) {
        gn_buf b;
        gn_buf_init(&b, src->out, sizeof src->out);
        src->out_len = gni_xfer_req_drain(src->r, &b);
    }
    if (src->out_len == 0) {
        if (src->dead)
            src_close(src);
        return;
    }
    gn_slice iov = {src->out, src->out_len};
    int rc = gn_stream_write(src->s, &iov, 1, src_write_cb, src);
    if (rc == GN_EAGAIN)
        return; /* the stream's queue is full: on_writable retries */
    if (rc < 0) {
        src->out_len = 0;
        if (!src->dead)
            src_fail(src, GN_ECLOSED, "write failed");
        else
            src_close(src);
        return;
    }
    src->out_len = 0; /* the stream holds the bytes until src_write_cb */
    src->writing = true;
}

/* Is anything left to try? Ends the download when not. */
static void fetch_check_sources(gn_xfer_fetch *f)
{
    if (f->finishing || f->live > 0 || f->pending > 0 || f->finding)
        return;
    if (f->have_m && gni_xfer_sched_complete(f->sched))
        return; /* the disk finishes it */
    if (f->not_found > 0 && f->banned == 0 && !f->have_m)
        fetch_finish(f, GN_ENOTFOUND, "no provider has this resource");
    else
        fetch_finish(f, GN_EUNREACHABLE,
                     f->banned ? "every provider left or sent corrupt data"
                               : "every provider failed or went away before the end");
}

static void src_fail(xfer_src *src, int why, const char *detail)
{
    if (src->dead)
        return;
    gn_xfer_fetch *f = src->f;
    src->dead = true;
    if (src->up)
        f->live--;
    else
        f->pending--;
    if (src->pid >= 0) {
        if (f->sched)
            gni_xfer_sched_drop(f->sched, src->pid, why);
        f->by_pid[src->pid] = NULL;
    }
    if (why == GN_EDECRYPT) {
        f->banned++;
        GN_LOG(GN_LOG_WARNING, XF_LOG, "%s: provider %s sent a corrupt chunk: banned", f->cid_s,
               src->addr);
        fetch_emit(f, GN_XFER_EV_PEER_BANNED, why, src->addr,
                   detail ? detail : "a chunk did not verify against the manifest");
    } else {
        if (why == GN_ENOTFOUND)
            f->not_found++;
        GN_LOG(GN_LOG_INFO, XF_LOG, "%s: provider %s: %s (%s)", f->cid_s, src->addr,
               gn_err_name(why), detail ? detail : "");
        fetch_emit(f, GN_XFER_EV_PEER_DOWN, why, src->addr, detail);
    }
    src_flush(src); /* the ERROR the core queued, if any; then close */
    fetch_check_sources(f);
    fetch_pump(f);
}

static void vjob_work(uv_work_t *w)
{
    xfer_vjob *j = w->data;
    /* pure and thread-safe; the manifest is not written after the setup */
    j->rc = gni_xfer_chunk_verify(&j->src->f->m, j->index, j->buf, j->len, j->proof,
                                  j->proof_cnt);
}

static void vjob_done(uv_work_t *w, int status)
{
    xfer_vjob *j = w->data;
    xfer_src *src = j->src;
    gn_xfer_fetch *f = src->f;
    src->jobs--;
    if (status < 0)
        j->rc = GN_ECANCELED;
    if (f->finishing || src->dead) {
        /* the provider is gone: its chunks went back to the pool already */
        gn_free(j->buf);
    } else if (j->rc == GN_EDECRYPT) {
        gn_free(j->buf);
        gni_xfer_req_abort(src->r, GNI_XFER_ERR_CORRUPT, "a chunk did not verify");
        src_fail(src, GN_EDECRYPT, "a chunk did not verify against the manifest");
    } else if (j->rc < 0) {
        gn_free(j->buf);
        src_fail(src, j->rc, "verifying a chunk");
    } else if (gni_xfer_sched_done(f->sched, src->pid, j->index, j->len,
                                   gn_loop_now(f->c->loop)) != 1) {
        gn_free(j->buf); /* a duplicate (endgame) */
    } else {
        xfer_wr *wr = gn_malloc(sizeof *wr);
        if (!wr) {
            gn_free(j->buf);
            fetch_finish(f, GN_ENOMEM, "no memory for a chunk");
        } else {
            wr->index = j->index;
            wr->len = j->len;
            wr->buf = j->buf;
            f->mem_chunks++;
            gni_list_add_tail(&f->wq, &wr->link);
            disk_kick(f);
        }
    }
    gn_free(j);
    if (!f->finishing)
        fetch_pump(f);
    if (src->closed || (!src->s && src->closing))
        src_maybe_free(src); /* it waited for this job */
    fetch_rele(f);
}

static void src_event(xfer_src *src, const gni_xfer_ev *ev)
{
    gn_xfer_fetch *f = src->f;
    switch (ev->type) {
    case GNI_XFER_EV_MANIFEST: {
        if (!f->have_m) {
            int rc = fetch_setup(f, ev->manifest);
            if (rc < 0) {
                fetch_finish(f, rc, f->detail[0] ? f->detail : "setting up the download");
                return;
            }
        }
        int pid = gni_xfer_sched_add(f->sched);
        if (pid < 0) {
            src_fail(src, pid, "too many providers");
            return;
        }
        src->pid = pid;
        f->by_pid[pid] = src;
        src->up = true;
        f->pending--;
        f->live++;
        fetch_emit(f, GN_XFER_EV_PEER_UP, 0, src->addr, NULL);
        fetch_emit(f, GN_XFER_EV_PROGRESS, 0, NULL, NULL);
        disk_kick(f); /* an empty or already complete resource ends here */
        break;
    }
    case GNI_XFER_EV_HAVE:
        if (ev->all)
            gni_xfer_sched_have_all(f->sched, src->pid);
        for (size_t i = 0; i < ev->range_cnt; i++)
            gni_xfer_sched_have(f->sched, src->pid, ev->ranges[i].start, ev->ranges[i].count);
        break;
    case GNI_XFER_EV_CHUNK: {
        gn_time now = gn_loop_now(f->c->loop);
        f->received += ev->data.len;
        if (!ev->verified) {
            xfer_vjob *j = gn_malloc(sizeof *j);
            uint8_t *b = j ? gn_malloc(ev->data.len) : NULL;
            if (!b || ev->proof_cnt > GNI_XFER_DEPTH_MAX) {
                gn_free(j);
                fetch_finish(f, GN_ENOMEM, "no memory for a chunk");
                return;
            }
            memcpy(b, ev->data.base, ev->data.len);
            memcpy(j->proof, ev->proof, (size_t)ev->proof_cnt * GNI_XFER_HASH_LEN);
            j->proof_cnt = ev->proof_cnt;
            j->src = src;
            j->index = ev->index;
            j->buf = b;
            j->len = ev->data.len;
            j->w.data = j;
            if (uv_queue_work(f->c->uv, &j->w, vjob_work, vjob_done) < 0) {
                j->rc = gni_xfer_chunk_verify(&f->m, j->index, j->buf, j->len, j->proof,
                                              j->proof_cnt); /* here, then */
                src->jobs++;
                f->refs++;
                vjob_done(&j->w, 0);
                return;
            }
            src->jobs++;
            f->refs++;
            break;
        }
        if (gni_xfer_sched_done(f->sched, src->pid, ev->index, ev->data.len, now) != 1)
            break; /* a duplicate (endgame) */
        xfer_wr *w = gn_malloc(sizeof *w);
        uint8_t *buf = w ? gn_malloc(ev->data.len) : NULL;
        if (!buf) {
            gn_free(w);
            fetch_finish(f, GN_ENOMEM, "no memory for a chunk");
            return;
        }
        memcpy(buf, ev->data.base, ev->data.len);
        w->index = ev->index;
        w->len = ev->data.len;
        w->buf = buf;
        f->mem_chunks++;
        gni_list_add_tail(&f->wq, &w->link);
        disk_kick(f);
        break;
    }
    case GNI_XFER_EV_SKIP:
        for (size_t i = 0; i < ev->range_cnt; i++)
            for (uint64_t k = 0; k < ev->ranges[i].count; k++)
                gni_xfer_sched_skip(f->sched, src->pid, ev->ranges[i].start + k, ev->code);
        break;
    case GNI_XFER_EV_ERROR: {
        char d[GNI_XFER_ERRTEXT_MAX + 32];
        snprintf(d, sizeof d, "ERROR %u: %.*s", ev->code, (int)ev->data.len,
                 (const char *)ev->data.base);
        src_fail(src, ev->code == GNI_XFER_ERR_NOT_FOUND ? GN_ENOTFOUND
                      : ev->code == GNI_XFER_ERR_BUSY   ? GN_EAGAIN
                                                        : GN_EPROTO,
                 d);
        break;
    }
    default:
        break;
    }
}

static void src_timer_cb(gn_timer *t, void *arg);

/* Arms the stream's timer for the core's next deadline (6.5). */
static void src_arm(xfer_src *src)
{
    if (src->dead || !src->r)
        return;
    gn_time d = gni_xfer_req_next_deadline(src->r), now = gn_loop_now(src->f->c->loop);
    if (d == GN_TIME_INFINITY) {
        gn_timer_stop(&src->timer);
        return;
    }
    gn_timer_start(&src->timer, d > now ? d - now : 0, src_timer_cb, src);
}

static void src_timer_cb(gn_timer *t, void *arg)
{
    (void)t;
    xfer_src *src = arg;
    if (src->dead || src->f->finishing)
        return;
    if (gni_xfer_req_on_expiry(src->r, gn_loop_now(src->f->c->loop)) == GN_ETIMEDOUT)
        src_fail(src, GN_ETIMEDOUT, "no answer from the provider in time");
    else
        src_arm(src);
}

static void src_on_data(gn_stream *s, void *ud, const uint8_t *in, size_t len)
{
    (void)s;
    xfer_src *src = ud;
    gn_xfer_fetch *f = src->f;
    f->refs++;
    while (len > 0 && !src->dead && !f->finishing) {
        size_t used = 0;
        gni_xfer_ev ev;
        int rc = gni_xfer_req_feed_at(src->r, in, len, &used, &ev, gn_loop_now(f->c->loop));
        in += used;
        len -= used;
        if (rc == 1) {
            src_event(src, &ev);
        } else if (rc < 0) {
            src_fail(src, rc, rc == GN_EDECRYPT ? "a chunk or the manifest did not verify"
                                                : gn_strerror(rc));
        } else if (used == 0) {
            break;
        }
    }
    if (!f->finishing)
        fetch_pump(f);
    src_arm(src);
    fetch_rele(f);
}

static void src_on_eof(gn_stream *s, void *ud)
{
    (void)s;
    src_fail(ud, GN_ECLOSED, "the provider closed the stream");
}

static void src_on_error(gn_stream *s, void *ud, int err)
{
    (void)s;
    src_fail(ud, err, "stream failed");
}

static void src_on_writable(gn_stream *s, void *ud)
{
    (void)s;
    src_flush(ud);
}

static const gn_stream_handler src_handler = {src_on_data, src_on_eof, src_on_error,
                                              src_on_writable};

static void src_opened(void *arg, int status, gn_stream *s)
{
    xfer_src *src = arg;
    gn_xfer_fetch *f = src->f;
    if (src->dead || f->finishing) {
        if (s)
            gn_stream_reset(s, NULL, NULL);
        src_close(src);
        return;
    }
    if (status < 0) {
        src_fail(src, status, "opening a " GNI_XFER_PROTO_ID " stream");
        src_close(src);
        return;
    }
    src->s = s;
    gn_stream_set_handler(s, &src_handler, src);
    int rc = gni_xfer_req_new(f->cid, &src->r);
    if (rc < 0) {
        src_fail(src, rc, "out of memory");
        return;
    }
    /* hash on the thread pool (vjob_*), not on the loop thread */
    gni_xfer_req_set_defer_verify(src->r, true);
    gni_xfer_req_start(src->r, gn_loop_now(f->c->loop));
    src_arm(src);
    gn_stream_read_start(s);
    src_flush(src); /* GET_MANIFEST */
}

static void src_dialed(void *arg, const gn_node_dial_result *res)
{
    xfer_src *src = arg;
    gn_xfer_fetch *f = src->f;
    if (src->dead || f->finishing) {
        src_close(src);
        return;
    }
    int rc = res->status;
    if (rc == 0)
        rc = gn_channel_open_stream(res->ch, GNI_XFER_PROTO_ID, src_opened, src);
    if (rc < 0) {
        src_fail(src, rc, res->detail ? res->detail : "dial failed");
        src_close(src);
    }
}

static int src_add(gn_xfer_fetch *f, const char *addr)
{
    xfer_src *src = gn_calloc(1, sizeof *src);
    if (!src || !(src->addr = gn_strdup(addr))) {
        gn_free(src);
        return GN_ENOMEM;
    }
    src->f = f;
    src->pid = -1;
    gn_timer_init(f->c->loop, &src->timer);
    f->refs++;
    f->pending++;
    gni_list_add_tail(&f->srcs, &src->link);
    int rc = gn_node_dial_ex(f->n, addr, src_dialed, src, NULL);
    if (rc < 0) {
        src_fail(src, rc, "dial refused");
        src_close(src);
    }
    return 0;
}

/* Sends what the scheduler says, within the memory budget. */
static void fetch_pump(gn_xfer_fetch *f)
{
    if (f->finishing || !f->sched)
        return;
    gn_time now = gn_loop_now(f->c->loop);
    if (f->o.max_rate > 0) { /* refill, up to 250 ms worth (and at least one chunk) */
        int64_t cap = (int64_t)(f->o.max_rate / 4);
        if (cap < (int64_t)f->m.chunk_size)
            cap = (int64_t)f->m.chunk_size;
        f->allowance += (int64_t)((double)f->o.max_rate * (double)(now - f->allow_t) / 1e9);
        if (f->allowance > cap)
            f->allowance = cap;
        f->allow_t = now;
    }
    for (unsigned guard = 0; guard < 4096; guard++) {
        int pid;
        uint64_t idx;
        if (gni_xfer_sched_next_cancel(f->sched, &pid, &idx) != 1)
            break;
        xfer_src *src = pid >= 0 && pid < (int)XF_MAX_PROVIDERS ? f->by_pid[pid] : NULL;
        if (src && !src->dead)
            gni_xfer_req_cancel(src->r, idx);
    }
    for (unsigned guard = 0; guard < 4096; guard++) {
        unsigned inflight = 0;
        for (unsigned i = 0; i < XF_MAX_PROVIDERS; i++)
            if (f->by_pid[i])
                inflight += gni_xfer_sched_inflight(f->sched, (int)i);
        if (inflight + f->mem_chunks >= f->o.max_chunks_in_memory)
            break;
        if (f->o.max_rate > 0 && f->allowance < (int64_t)f->m.chunk_size)
            break; /* the tick refills */
        int pid;
        uint64_t idx;
        if (gni_xfer_sched_next(f->sched, now, &pid, &idx) != 1)
            break;
        xfer_src *src = pid >= 0 && pid < (int)XF_MAX_PROVIDERS ? f->by_pid[pid] : NULL;
        if (!src || src->dead || gni_xfer_req_want(src->r, idx, 1) < 0) {
            /* cannot ask it now: back to the pool, not in flight there */
            gni_xfer_sched_unassign(f->sched, pid, idx);
            break;
        }
        f->allowance -= (int64_t)gni_xfer_chunk_len(&f->m, idx);
    }
    for (gni_list *e = f->srcs.next; e != &f->srcs; e = e->next) {
        xfer_src *src = GNI_CONTAINER_OF(e, xfer_src, link);
        if (!src->dead) {
            src_flush(src);
            src_arm(src); /* WANTs sent: the idle deadline may have begun */
        }
    }
}

static void fetch_done_cb(gn_loop *loop, void *arg)
{
    (void)loop;
    gn_xfer_fetch *f = arg;
    gn_xfer_progress p;
    fetch_progress(f, &p);
    gn_xfer_event ev = {GN_XFER_EV_DONE, f->status, &p, NULL, f->detail[0] ? f->detail : NULL};
    f->done_sent = true;
    f->cb(f->arg, &ev);
    fetch_rele(f);
}

static void fetch_finish(gn_xfer_fetch *f, int status, const char *detail)
{
    if (!f->finishing) {
        f->finishing = true;
        f->status = status;
        if (detail && detail != f->detail)
            snprintf(f->detail, sizeof f->detail, "%s", detail);
        gn_timer_stop(&f->tick);
        if (gn_timer_active(&f->find_timer)) { /* a DHT retry was waiting: it holds a ref */
            gn_timer_stop(&f->find_timer);
            f->finding = false;
            f->refs--; /* the base reference (released after DONE) keeps f */
        }
        for (gni_list *e = f->srcs.next; e != &f->srcs;) {
            xfer_src *src = GNI_CONTAINER_OF(e, xfer_src, link);
            e = e->next;
            if (!src->dead) {
                src->dead = true;
                if (src->up)
                    f->live--;
                else
                    f->pending--;
            }
            if (src->s && !src->writing)
                src_close(src);
        }
    }
    if (f->done_sent || !gni_list_on(&f->link))
        return; /* DONE delivered or scheduled */
    if (f->disk != DISK_IDLE)
        return; /* disk_kick calls again when the disk is idle */
    if (f->have_m && f->part_fd >= 0 && (f->n_unsynced > 0 || !gni_list_empty(&f->wq))) {
        /* keep what was verified: write and commit it first */
        disk_kick(f);
        return;
    }
    gni_list_del(&f->link);
    uv_fs_t q;
    if (f->part_fd >= 0) {
        uv_fs_close(NULL, &q, f->part_fd, NULL);
        uv_fs_req_cleanup(&q);
        f->part_fd = -1;
    }
    if (f->state_fd >= 0) {
        uv_fs_close(NULL, &q, f->state_fd, NULL);
        uv_fs_req_cleanup(&q);
        f->state_fd = -1;
    }
    GN_LOG(f->status == 0 ? GN_LOG_INFO : GN_LOG_NOTICE, XF_LOG, "%s -> %s: %s %s", f->cid_s,
           f->path, f->status == 0 ? "done" : gn_err_name(f->status), f->detail);
    if (gn_loop_defer(f->c->loop, fetch_done_cb, f) < 0)
        fetch_done_cb(f->c->loop, f); /* cannot defer (loop closing): deliver now */
}

static void fetch_tick(gn_timer *t, void *arg)
{
    (void)t;
    gn_xfer_fetch *f = arg;
    gn_time now = gn_loop_now(f->c->loop);
    uint64_t done = f->sched ? gni_xfer_sched_done_bytes(f->sched) : 0;
    if (now > f->last_rate_t) {
        uint64_t inst = (done - f->last_rate_bytes) * GN_S / (uint64_t)(now - f->last_rate_t);
        f->rate = f->rate == 0 ? inst : (f->rate * 3 + inst) / 4;
    }
    f->last_rate_t = now;
    f->last_rate_bytes = done;
    disk_kick(f);
    fetch_pump(f);
    if (f->o.progress_interval > 0 && now - f->last_progress >= f->o.progress_interval) {
        f->last_progress = now;
        fetch_emit(f, GN_XFER_EV_PROGRESS, 0, NULL, NULL);
    }
    if (!f->finishing)
        gn_timer_start(&f->tick, XF_TICK, fetch_tick, f);
}

static void fetch_found(void *arg, const gn_node_dht_result *res);

static void fetch_find_again(gn_timer *t, void *arg)
{
    (void)t;
    gn_xfer_fetch *f = arg;
    if (f->finishing) {
        f->finding = false;
        fetch_check_sources(f);
        fetch_rele(f);
        return;
    }
    int rc = gn_node_dht_find_providers(f->n, f->cid + 2, GNI_XFER_CID_LEN - 2,
                                        f->o.max_providers, fetch_found, f);
    if (rc < 0) {
        f->finding = false;
        fetch_finish(f, rc, "asking the DHT");
        fetch_rele(f);
    }
}

static void fetch_found(void *arg, const gn_node_dht_result *res)
{
    gn_xfer_fetch *f = arg;
    /* no DHT peer yet (the bootstrap connection is still being made): retry
     * every 500 ms for up to 10 s */
    if (res->status == GN_ENOROUTE && !f->finishing && f->find_tries++ < 20) {
        gn_timer_start(&f->find_timer, 500 * GN_MS, fetch_find_again, f);
        return;
    }
    f->finding = false;
    if (!f->finishing) {
        gn_peer_id self;
        gn_host_peer_id(f->c->h, &self);
        size_t added = 0;
        for (size_t i = 0; i < res->npeers && added < f->o.max_providers; i++) {
            const gn_router_peer *rp = &res->peers[i];
            if (gn_peer_id_equal(&rp->id, &self))
                continue;
            char pid[GN_PEER_ID_MAX_STRLEN], ma[GN_NODE_ADDR_MAX + GN_PEER_ID_MAX_STRLEN + 8];
            gn_peer_id_to_string(&rp->id, pid, sizeof pid);
            ma[0] = 0;
            if (rp->naddrs > 0)
                gn_multiaddr_to_string(rp->addrs[0], ma, GN_NODE_ADDR_MAX);
            size_t l = strlen(ma);
            snprintf(ma + l, sizeof ma - l, "/p2p/%s", pid);
            if (rp->naddrs > 0) /* the peer store learns every address */
                gn_host_peer_add_addrs(f->c->h, &rp->id, (const gn_multiaddr *const *)rp->addrs,
                                       rp->naddrs, 600 * GN_S, GN_ADDR_SRC_ROUTER);
            if (src_add(f, ma) == 0)
                added++;
        }
        if (added == 0)
            fetch_finish(f, res->status == 0 || res->status == GN_ETIMEDOUT ? GN_ENOTFOUND
                                                                            : res->status,
                         "no provider found in the DHT");
        else
            fetch_check_sources(f);
    }
    fetch_rele(f);
}

/* ------------------------------------------------------------------------
 * The component
 */

typedef struct xfer_comp {
    xfer_core *c;
} xfer_comp;

static xfer_core *core_of(gn_node *n)
{
    if (!n)
        return NULL;
    gn_loop *loop = gn_node_loop(n);
    gn_host *h = gn_node_host(n);
    for (xfer_core *c = gn_loop_get_local(loop, &xfer_loop_key); c; c = c->next_on_loop)
        if (c->h == h)
            return c;
    return NULL;
}

static int core_check(gn_node *n, xfer_core **out)
{
    if (!n || !gn_loop_on_thread(gn_node_loop(n)))
        return GN_EINVAL;
    xfer_core *c = core_of(n);
    if (!c)
        return GN_ENOTSUP;
    if (!c->running)
        return GN_ESTATE;
    *out = c;
    return 0;
}

static void xfer_on_stream(gn_protocol *p, gn_stream *s, const gn_protocol_stream_info *info)
{
    (void)info;
    xfer_comp *xc = p->state;
    xfer_core *c = xc->c;
    xfer_pstream *ps = c && c->running ? gn_calloc(1, sizeof *ps) : NULL;
    if (!ps) {
        gn_stream_reset(s, NULL, NULL);
        return;
    }
    ps->c = c;
    c->refs++;
    ps->s = s;
    gni_list_add_tail(&c->pstreams, &ps->link);
    c->n_ps++;
    gn_timer_init(c->loop, &ps->timer);
    /* the first request within 10 s (6.5), before the core exists */
    gn_timer_start(&ps->timer, GNI_XFER_MANIFEST_TIMEOUT, ps_timer_cb, ps);
    gn_stream_set_handler(s, &ps_handler, ps);
    if (c->n_ps > XF_MAX_PSTREAMS) {
        ps_refuse(ps, GNI_XFER_ERR_BUSY, "too many transfer streams; retry later");
        return;
    }
    gn_stream_read_start(s);
}

static int xfer_init(gn_protocol *p)
{
    xfer_comp *xc = p->state;
    xfer_core *c = gn_calloc(1, sizeof *c);
    if (!c)
        return GN_ENOMEM;
    c->refs = 1;
    c->h = p->host;
    c->loop = gn_host_loop(p->host);
    c->uv = gn_loop_uv(c->loop);
    gni_list_init(&c->shares);
    gni_list_init(&c->pstreams);
    gni_list_init(&c->fetches);
    xc->c = c;
    return 0;
}

static void core_unlink(xfer_core *c)
{
    xfer_core *head = gn_loop_get_local(c->loop, &xfer_loop_key);
    if (head == c) {
        gn_loop_set_local(c->loop, &xfer_loop_key, c->next_on_loop);
        return;
    }
    for (xfer_core *e = head; e; e = e->next_on_loop)
        if (e->next_on_loop == c) {
            e->next_on_loop = c->next_on_loop;
            return;
        }
}

static int xfer_start(gn_protocol *p)
{
    xfer_comp *xc = p->state;
    xfer_core *c = xc->c;
    c->next_on_loop = gn_loop_get_local(c->loop, &xfer_loop_key);
    int rc = gn_loop_set_local(c->loop, &xfer_loop_key, c);
    if (rc < 0)
        return rc;
    c->running = true;
    return 0;
}

static void xfer_stop(gn_protocol *p)
{
    xfer_comp *xc = p->state;
    xfer_core *c = xc->c;
    if (!c->running)
        return;
    c->running = false;
    core_unlink(c);
    for (gni_list *e = c->fetches.next; e != &c->fetches;) {
        gn_xfer_fetch *f = GNI_CONTAINER_OF(e, gn_xfer_fetch, link);
        e = e->next;
        fetch_finish(f, GN_ECANCELED, "the node is closing");
    }
    while (!gni_list_empty(&c->pstreams))
        ps_close(GNI_CONTAINER_OF(c->pstreams.next, xfer_pstream, link));
    while (!gni_list_empty(&c->shares)) {
        xfer_share *sh = GNI_CONTAINER_OF(c->shares.next, xfer_share, link);
        gni_list_del(&sh->link);
        share_rele(sh);
    }
}

static void xfer_fini(gn_protocol *p)
{
    xfer_comp *xc = p->state;
    if (!xc->c)
        return;
    xfer_stop(p);
    core_rele(xc->c);
    xc->c = NULL;
}

static const gn_protocol_ops xfer_ops = {
    .abi = GN_PROTOCOL_ABI,
    .name = GNI_XFER_PROTO_ID,
    .state_size = sizeof(xfer_comp),
    .init = xfer_init,
    .fini = xfer_fini,
    .start = xfer_start,
    .stop = xfer_stop,
    .on_stream = xfer_on_stream,
};

int gn_protocol_transfer_register(gn_registry *reg);
int gn_protocol_transfer_register(gn_registry *reg)
{
    return gn_registry_add(reg, GN_LAYER_PROTOCOL, (const gn_layer_ops *)&xfer_ops);
}

/* ------------------------------------------------------------------------
 * Public API (golemnet/transfer.h)
 */

int gn_xfer_share(gn_node *n, const char *path, gn_xfer_share_cb cb, void *arg)
{
    xfer_core *c;
    if (!path || !cb)
        return GN_EINVAL;
    int rc = core_check(n, &c);
    if (rc < 0)
        return rc;
    share_job *j = gn_calloc(1, sizeof *j);
    if (!j || !(j->path = gn_strdup(path))) {
        gn_free(j);
        return GN_ENOMEM;
    }
    j->c = c;
    j->cb = cb;
    j->arg = arg;
    j->w.data = j;
    c->refs++;
    rc = uv_queue_work(c->uv, &j->w, share_work, share_done);
    if (rc < 0) {
        c->refs--;
        gn_free(j->path);
        gn_free(j);
        return GN_ENOMEM;
    }
    return 0;
}

static int cid_of(const char *s, uint8_t cid[GNI_XFER_CID_LEN])
{
    if (!s)
        return GN_EINVAL;
    int rc = gni_xfer_cid_parse_string(s, strlen(s), cid);
    return rc == GN_ENOTSUP ? GN_EPARSE : rc;
}

int gn_xfer_unshare(gn_node *n, const char *cid)
{
    xfer_core *c;
    uint8_t b[GNI_XFER_CID_LEN];
    int rc = core_check(n, &c);
    if (rc == 0)
        rc = cid_of(cid, b);
    if (rc < 0)
        return rc;
    xfer_share *sh = share_find(c, b, sizeof b);
    if (!sh)
        return GN_ENOTFOUND;
    gni_list_del(&sh->link);
    sh->link.next = sh->link.prev = NULL; /* "off the list" for ps_pump */
    share_rele(sh);
    return 0;
}

typedef struct dht_call {
    gn_xfer_provide_cb pcb;
    gn_xfer_find_cb fcb;
    void *arg;
    size_t max;
} dht_call;

static void provide_cb(void *arg, const gn_node_dht_result *res)
{
    dht_call *d = arg;
    d->pcb(d->arg, res->status);
    gn_free(d);
}

int gn_xfer_provide(gn_node *n, const char *cid, gn_xfer_provide_cb cb, void *arg)
{
    xfer_core *c;
    uint8_t b[GNI_XFER_CID_LEN];
    int rc = cb ? core_check(n, &c) : GN_EINVAL;
    if (rc == 0)
        rc = cid_of(cid, b);
    if (rc < 0)
        return rc;
    dht_call *d = gn_calloc(1, sizeof *d);
    if (!d)
        return GN_ENOMEM;
    d->pcb = cb;
    d->arg = arg;
    /* the key: the CID's multihash (after version 0x01 and codec 0x55) */
    rc = gn_node_dht_provide(n, b + 2, sizeof b - 2, provide_cb, d);
    if (rc < 0)
        gn_free(d);
    return rc;
}

static void find_cb(void *arg, const gn_node_dht_result *res)
{
    dht_call *d = arg;
    char *bufs[64];
    const char *addrs[64] = {0};
    size_t k = 0;
    for (size_t i = 0; i < res->npeers && k < d->max && k < 64; i++) {
        const gn_router_peer *rp = &res->peers[i];
        if (rp->naddrs == 0)
            continue;
        char pid[GN_PEER_ID_MAX_STRLEN];
        gn_peer_id_to_string(&rp->id, pid, sizeof pid);
        size_t cap = GN_NODE_ADDR_MAX + GN_PEER_ID_MAX_STRLEN + 8;
        char *ma = gn_malloc(cap);
        if (!ma)
            break;
        if (gn_multiaddr_to_string(rp->addrs[0], ma, GN_NODE_ADDR_MAX) < 0)
            ma[0] = 0;
        size_t l = strlen(ma);
        snprintf(ma + l, cap - l, "/p2p/%s", pid);
        bufs[k] = ma;
        addrs[k] = ma;
        k++;
    }
    d->fcb(d->arg, res->status, addrs, k);
    for (size_t i = 0; i < k; i++)
        gn_free(bufs[i]);
    gn_free(d);
}

int gn_xfer_find(gn_node *n, const char *cid, size_t max, gn_xfer_find_cb cb, void *arg)
{
    xfer_core *c;
    uint8_t b[GNI_XFER_CID_LEN];
    int rc = cb && max >= 1 && max <= 64 ? core_check(n, &c) : GN_EINVAL;
    if (rc == 0)
        rc = cid_of(cid, b);
    if (rc < 0)
        return rc;
    dht_call *d = gn_calloc(1, sizeof *d);
    if (!d)
        return GN_ENOMEM;
    d->fcb = cb;
    d->arg = arg;
    d->max = max;
    rc = gn_node_dht_find_providers(n, b + 2, sizeof b - 2, max, find_cb, d);
    if (rc < 0)
        gn_free(d);
    return rc;
}

void gn_xfer_fetch_opts_default(gn_xfer_fetch_opts *o)
{
    memset(o, 0, sizeof *o);
    o->version = GN_XFER_FETCH_OPTS_VERSION;
    o->max_providers = 16;
    o->progress_interval = 250 * GN_MS;
    o->max_chunks_in_memory = 48;
}

static char *str_cat(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = gn_malloc(la + lb + 1);
    if (s) {
        memcpy(s, a, la);
        memcpy(s + la, b, lb + 1);
    }
    return s;
}

int gn_xfer_fetch_start(gn_node *n, const char *cid, const char *path,
                        const gn_xfer_fetch_opts *opts, gn_xfer_event_cb cb, void *arg,
                        gn_xfer_fetch **out)
{
    xfer_core *c;
    gn_xfer_fetch_opts o;
    if (opts)
        o = *opts;
    else
        gn_xfer_fetch_opts_default(&o);
    if (!path || !*path || !cb || o.version != GN_XFER_FETCH_OPTS_VERSION ||
        o.max_providers < 1 || o.max_providers > XF_MAX_PROVIDERS ||
        o.max_chunks_in_memory < 4 || o.max_chunks_in_memory > 256 ||
        o.n_providers > XF_MAX_PROVIDERS || (o.n_providers && !o.providers))
        return GN_EINVAL;
    int rc = core_check(n, &c);
    uint8_t b[GNI_XFER_CID_LEN];
    if (rc == 0)
        rc = cid_of(cid, b);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < o.n_providers; i++)
        if (!o.providers[i] || !strstr(o.providers[i], "/p2p/"))
            return GN_EPARSE;
    for (gni_list *e = c->fetches.next; e != &c->fetches; e = e->next)
        if (strcmp(GNI_CONTAINER_OF(e, gn_xfer_fetch, link)->path, path) == 0)
            return GN_EEXIST;
    gn_xfer_fetch *f = gn_calloc(1, sizeof *f);
    if (!f)
        return GN_ENOMEM;
    f->c = c;
    c->refs++;
    f->refs = 1; /* released after DONE */
    f->n = n;
    f->o = o;
    f->cb = cb;
    f->arg = arg;
    f->part_fd = f->state_fd = -1;
    memcpy(f->cid, b, sizeof b);
    gni_xfer_cid_string(b, f->cid_s, sizeof f->cid_s);
    gni_list_init(&f->srcs);
    gni_list_init(&f->wq);
    gn_timer_init(c->loop, &f->tick);
    gn_timer_init(c->loop, &f->find_timer);
    f->path = gn_strdup(path);
    f->part_path = str_cat(path, ".part");
    f->state_path = str_cat(path, ".part.state");
    f->prov = o.n_providers ? gn_calloc(o.n_providers, sizeof *f->prov) : NULL;
    bool ok = f->path && f->part_path && f->state_path && (f->prov || !o.n_providers);
    for (size_t i = 0; ok && i < o.n_providers; i++) {
        ok = (f->prov[i] = gn_strdup(o.providers[i])) != NULL;
        f->n_prov = i + 1;
    }
    if (!ok) {
        fetch_rele(f);
        return GN_ENOMEM;
    }
    f->o.providers = NULL;
    gni_list_add_tail(&c->fetches, &f->link);
    f->last_rate_t = f->last_progress = f->allow_t = gn_loop_now(c->loop);
    if (f->n_prov == 0) {
        f->finding = true;
        f->refs++;
        rc = gn_node_dht_find_providers(n, b + 2, sizeof b - 2, o.max_providers, fetch_found, f);
        if (rc < 0) {
            f->finding = false;
            gni_list_del(&f->link);
            f->refs--;
            fetch_rele(f);
            return rc;
        }
    } else {
        for (size_t i = 0; i < f->n_prov; i++)
            src_add(f, f->prov[i]);
    }
    if (!f->finishing) /* every provider may have failed at once (dial refused) */
        gn_timer_start(&f->tick, XF_TICK, fetch_tick, f);
    if (out)
        *out = f;
    return 0;
}

void gn_xfer_fetch_cancel(gn_xfer_fetch *f)
{
    if (f && !f->finishing)
        fetch_finish(f, GN_ECANCELED, "cancelled");
}

void gn_xfer_format_bytes(uint64_t bytes, char *out, size_t out_len)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)bytes;
    unsigned u = 0;
    while (v >= 1024.0 && u < 5) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(out, out_len, "%" PRIu64 " B", bytes);
    else
        snprintf(out, out_len, "%.1f %s", v, unit[u]);
}
