/*
 * natd: the NAT components' shared driver (see natd_uv.h). Loop thread,
 * except work_cb, which runs the backend's blocking call on a thread-pool
 * thread with only the job (and the backend state, one job at a time).
 */
#include "natd_uv.h"

#include "gni.h"

#include <stdio.h>
#include <string.h>
#include <uv.h>

typedef enum job_kind { JOB_GATEWAY, JOB_MAP, JOB_UNMAP } job_kind;

typedef struct natd_rec {
    struct natd_rec *next;
    gni_natd *d;
    gn_multiaddr *internal;
    gni_nat_target t;
    uint32_t lease_s;        /* asked for */
    gn_nat_map_cb cb;
    void *arg;
    gn_timer timer;          /* renewal */
    uint8_t ext_ip[4];
    uint16_t ext_port;
    bool answered;           /* cb called (or its GN_ECANCELED deferred) */
    bool made;               /* the gateway holds the mapping */
    bool busy;               /* a map job for it is queued or running */
    bool dead;               /* unmapped or stopped while busy: the job's end cleans up */
} natd_rec;

typedef struct natd_job {
    struct natd_job *next;
    job_kind kind;
    natd_rec *rec;           /* JOB_MAP */
    gni_nat_target t;        /* copy: the job outlives records */
    uint32_t lease_s;
    gni_natd_result r;
} natd_job;

struct gni_natd {
    gn_nat *n;               /* NULL once detached (gni_natd_free) */
    gn_loop *loop;
    const gni_natd_vtbl *vt;
    void *be;
    uint32_t lease_opt_s, lease_min_s, lease_max_s;
    natd_rec *recs;
    natd_job *head, *tail;   /* queued, not running */
    natd_job *running;
    uv_work_t req;
    bool stopped;
    bool in_done;            /* inside a job's completion (callbacks may free us) */
};

typedef struct cancel_ctx {
    gn_nat_map_cb cb;
    void *arg;
} cancel_ctx;

static void natd_kick(gni_natd *d);

/* ---- records ---- */

static void rec_unlink(gni_natd *d, natd_rec *r)
{
    for (natd_rec **pp = &d->recs; *pp; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            return;
        }
    }
}

static void rec_free(gni_natd *d, natd_rec *r)
{
    rec_unlink(d, r);
    gn_timer_stop(&r->timer);
    gn_multiaddr_free(r->internal);
    gn_free(r);
}

static const char *rec_text(const natd_rec *r, char *buf, size_t len)
{
    if (gn_multiaddr_to_string(r->internal, buf, len) < 0) {
        snprintf(buf, len, "?");
    }
    return buf;
}

/* ---- the serial job queue ---- */

static int job_submit(gni_natd *d, job_kind kind, natd_rec *rec, const gni_nat_target *t,
                      uint32_t lease_s)
{
    natd_job *j = gn_calloc(1, sizeof *j);
    if (!j) {
        return GN_ENOMEM;
    }
    j->kind = kind;
    j->rec = rec;
    if (t) {
        j->t = *t;
    }
    j->lease_s = lease_s;
    if (d->tail) {
        d->tail->next = j;
    } else {
        d->head = j;
    }
    d->tail = j;
    natd_kick(d);
    return 0;
}

static void submit_delete(gni_natd *d, const gni_nat_target *t)
{
    if (job_submit(d, JOB_UNMAP, NULL, t, 0) < 0) {
        GN_LOG(GN_LOG_ERR, d->vt->log, "no memory to delete the mapping of port %u; it expires "
               "with its lease", t->port);
    }
}

static void work_cb(uv_work_t *req)
{
    gni_natd *d = req->data;
    natd_job *j = d->running;
    switch (j->kind) {
    case JOB_GATEWAY:
        d->vt->gateway(d->be, &j->r);
        break;
    case JOB_MAP:
        d->vt->map(d->be, &j->t, j->lease_s, &j->r);
        break;
    case JOB_UNMAP:
        d->vt->unmap(d->be, &j->t, &j->r);
        break;
    }
}

static void natd_destroy(gni_natd *d)
{
    while (d->recs) {
        natd_rec *r = d->recs;
        rec_free(d, r);
    }
    d->vt->free(d->be);
    gn_free(d);
}

static void job_done(gni_natd *d, natd_job *j);

static void after_cb(uv_work_t *req, int status)
{
    gni_natd *d = req->data;
    natd_job *j = d->running;
    d->running = NULL;
    if (status < 0 && j->r.err == 0) { /* canceled by libuv: not done */
        j->r.err = GN_ECANCELED;
        snprintf(j->r.reason, sizeof j->r.reason, "job canceled: %s", uv_strerror(status));
    }
    d->in_done = true;
    job_done(d, j);
    d->in_done = false;
    gn_free(j);
    natd_kick(d);
    if (!d->n && !d->running && !d->head) {
        natd_destroy(d);
    }
}

/* A queued map job that will not run (stopped or detached). */
static void job_drop(gni_natd *d, natd_job *j)
{
    if (j->kind == JOB_MAP && j->rec) {
        j->rec->busy = false;
        if (j->rec->dead || !d->n) {
            rec_free(d, j->rec);
        }
    }
    gn_free(j);
}

static void natd_kick(gni_natd *d)
{
    while (!d->running && d->head) {
        natd_job *j = d->head;
        d->head = j->next;
        if (!d->head) {
            d->tail = NULL;
        }
        j->next = NULL;
        if ((d->stopped || !d->n) && j->kind != JOB_UNMAP) {
            job_drop(d, j);
            continue;
        }
        d->running = j;
        d->req.data = d;
        int rc = uv_queue_work(gn_loop_uv(d->loop), &d->req, work_cb, after_cb);
        if (rc < 0) { /* only for a NULL work_cb: cannot happen */
            GN_LOG(GN_LOG_ERR, d->vt->log, "uv_queue_work: %s", uv_strerror(rc));
            d->running = NULL;
            job_drop(d, j);
        }
    }
}

/* ---- job completions (loop thread) ---- */

static void renew_fire(gn_timer *t, void *arg);

static void rec_arm(natd_rec *r, gn_time delay)
{
    if (delay > 0 && !r->d->stopped) { /* r->timer was initialised in gni_natd_map */
        if (gn_timer_start(&r->timer, delay, renew_fire, r) < 0) {
            GN_LOG(GN_LOG_WARNING, r->d->vt->log, "cannot arm the renewal timer; the mapping "
                   "expires with its lease");
        }
    }
}

static void renew_fire(gn_timer *t, void *arg)
{
    natd_rec *r = arg;
    gni_natd *d = r->d;
    (void)t;
    if (d->stopped || r->busy || r->dead) {
        return;
    }
    r->busy = true;
    if (job_submit(d, JOB_MAP, r, &r->t, r->lease_s) < 0) {
        r->busy = false;
        rec_arm(r, 10 * GN_S); /* try again later */
    }
}

static void done_gateway(gni_natd *d, natd_job *j)
{
    char ip[16];
    if (j->r.err < 0) {
        GN_LOG(GN_LOG_NOTICE, d->vt->log, "no usable gateway: %s [%s]", j->r.reason,
               gn_err_name(j->r.err));
    } else {
        bool known = memcmp(j->r.ext_ip, "\0\0\0\0", 4) != 0;
        GN_LOG(GN_LOG_INFO, d->vt->log, "gateway found: %s; public address %s", j->r.reason,
               known ? gni_nat_ip4_format(j->r.ext_ip, ip, sizeof ip) : "unknown");
    }
}

static void done_unmap(gni_natd *d, natd_job *j)
{
    if (j->r.err < 0) {
        GN_LOG(GN_LOG_NOTICE, d->vt->log, "delete %s %u: %s [%s]", gni_nat_proto_name(j->t.proto),
               j->t.port, j->r.reason, gn_err_name(j->r.err));
    } else {
        GN_LOG(GN_LOG_INFO, d->vt->log, "deleted the mapping of %s %u",
               gni_nat_proto_name(j->t.proto), j->t.port);
    }
}

static void done_map(gni_natd *d, natd_job *j)
{
    natd_rec *r = j->rec;
    char text[GN_MA_MAX_STRLEN], ip[16];
    r->busy = false;
    if (!d->n || r->dead) {
        /* unmapped, stopped or detached meanwhile: undo and forget */
        if (j->r.err == 0) {
            submit_delete(d, &j->t);
        }
        if (!r->answered && d->n) { /* unmapped before its answer: still exactly once */
            gn_nat_map_cb cb = r->cb;
            void *arg = r->arg;
            rec_free(d, r);
            cb(arg, GN_ECANCELED, NULL);
            return;
        }
        rec_free(d, r);
        return;
    }
    if (!r->answered) {
        r->answered = true;
        gn_nat_map_cb cb = r->cb;
        void *arg = r->arg;
        gn_multiaddr *ext = NULL;
        int err = j->r.err;
        if (err == 0 && (err = gni_nat_external(&r->t, j->r.ext_ip, j->r.ext_port, &ext)) < 0) {
            snprintf(j->r.reason, sizeof j->r.reason, "cannot form the external address");
            submit_delete(d, &j->t);
        }
        if (err < 0) {
            GN_LOG(GN_LOG_NOTICE, d->vt->log, "map %s: %s [%s]", rec_text(r, text, sizeof text),
                   j->r.reason, gn_err_name(err));
            rec_free(d, r);
            cb(arg, err, NULL);
            return;
        }
        r->made = true;
        memcpy(r->ext_ip, j->r.ext_ip, 4);
        r->ext_port = j->r.ext_port;
        GN_LOG(GN_LOG_INFO, d->vt->log, "map %s: %s %s:%u, lease %u s", rec_text(r, text, sizeof text),
               gni_nat_proto_name(r->t.proto), gni_nat_ip4_format(r->ext_ip, ip, sizeof ip),
               r->ext_port, j->r.lease_s);
        rec_arm(r, gni_nat_renew_delay(j->r.lease_s));
        cb(arg, 0, ext);
        gn_multiaddr_free(ext);
        return;
    }
    /* a renewal */
    if (j->r.err < 0) {
        gn_time retry = gni_nat_renew_delay(r->lease_s) / 2;
        GN_LOG(GN_LOG_WARNING, d->vt->log, "renew %s: %s [%s]; again in %llu ms",
               rec_text(r, text, sizeof text), j->r.reason, gn_err_name(j->r.err),
               (unsigned long long)(retry / GN_MS));
        rec_arm(r, retry);
        return;
    }
    if (memcmp(r->ext_ip, j->r.ext_ip, 4) != 0 || r->ext_port != j->r.ext_port) {
        GN_LOG(GN_LOG_NOTICE, d->vt->log, "renew %s: the external address is now %s:%u",
               rec_text(r, text, sizeof text), gni_nat_ip4_format(j->r.ext_ip, ip, sizeof ip),
               j->r.ext_port);
        memcpy(r->ext_ip, j->r.ext_ip, 4);
        r->ext_port = j->r.ext_port;
    } else {
        GN_LOG(GN_LOG_INFO, d->vt->log, "renewed %s, lease %u s", rec_text(r, text, sizeof text),
               j->r.lease_s);
    }
    rec_arm(r, gni_nat_renew_delay(j->r.lease_s));
}

static void job_done(gni_natd *d, natd_job *j)
{
    switch (j->kind) {
    case JOB_GATEWAY:
        if (d->n) {
            done_gateway(d, j);
        }
        break;
    case JOB_MAP:
        done_map(d, j);
        break;
    case JOB_UNMAP:
        done_unmap(d, j);
        break;
    }
}

/* ---- the entries ---- */

int gni_natd_new(gn_nat *n, const gni_natd_vtbl *vt, void *be, uint32_t lease_opt_s,
                 uint32_t lease_min_s, uint32_t lease_max_s, gni_natd **out)
{
    gni_natd *d = gn_calloc(1, sizeof *d);
    if (!d) {
        vt->free(be);
        return GN_ENOMEM;
    }
    d->n = n;
    d->loop = n->loop;
    d->vt = vt;
    d->be = be;
    d->lease_opt_s = lease_opt_s;
    d->lease_min_s = lease_min_s;
    d->lease_max_s = lease_max_s;
    *out = d;
    return 0;
}

int gni_natd_start(gni_natd *d)
{
    d->stopped = false;
    return job_submit(d, JOB_GATEWAY, NULL, NULL, 0);
}

int gni_natd_map(gni_natd *d, const gn_multiaddr *internal, gn_time lifetime, gn_nat_map_cb cb,
                 void *arg)
{
    if (d->stopped) {
        return GN_ESTATE;
    }
    natd_rec *r = gn_calloc(1, sizeof *r);
    if (!r) {
        return GN_ENOMEM;
    }
    int rc = gni_nat_target_parse(internal, &r->t);
    if (rc == 0) {
        rc = gn_multiaddr_dup(internal, &r->internal);
    }
    if (rc < 0) {
        gn_free(r);
        return rc;
    }
    r->d = d;
    r->cb = cb;
    r->arg = arg;
    r->lease_s = gni_nat_lease_s(lifetime, d->lease_opt_s, d->lease_min_s, d->lease_max_s);
    gn_timer_init(d->loop, &r->timer);
    r->busy = true;
    r->next = d->recs;
    d->recs = r;
    if ((rc = job_submit(d, JOB_MAP, r, &r->t, r->lease_s)) < 0) {
        rec_free(d, r);
    }
    return rc;
}

int gni_natd_unmap(gni_natd *d, const gn_multiaddr *internal)
{
    for (natd_rec *r = d->recs; r; r = r->next) {
        if (r->dead || !gn_multiaddr_equal(r->internal, internal)) {
            continue;
        }
        gn_timer_stop(&r->timer);
        if (r->busy) {
            r->dead = true; /* the job's end deletes it if it was made */
            return 0;
        }
        if (r->made) {
            submit_delete(d, &r->t);
        }
        rec_free(d, r);
        return 0;
    }
    return GN_ENOTFOUND;
}

static void cancel_fire(gn_loop *loop, void *arg)
{
    cancel_ctx *c = arg;
    (void)loop;
    gn_nat_map_cb cb = c->cb;
    void *cb_arg = c->arg;
    gn_free(c);
    cb(cb_arg, GN_ECANCELED, NULL);
}

void gni_natd_stop(gni_natd *d)
{
    if (d->stopped) {
        return;
    }
    d->stopped = true;
    for (natd_rec *r = d->recs, *next; r; r = next) {
        next = r->next;
        gn_timer_stop(&r->timer);
        if (!r->answered) {
            r->answered = true;
            r->dead = true;
            cancel_ctx *c = gn_calloc(1, sizeof *c);
            int rc = c ? 0 : GN_ENOMEM;
            if (c) {
                c->cb = r->cb;
                c->arg = r->arg;
                if ((rc = gn_loop_defer(d->loop, cancel_fire, c)) < 0) {
                    gn_free(c);
                }
            }
            if (rc < 0) {
                GN_LOG(GN_LOG_ERR, d->vt->log, "cannot deliver a map's cancellation: %s",
                       gn_err_name(rc));
            }
        } else if (r->busy) {
            r->dead = true;
        } else {
            if (r->made) {
                submit_delete(d, &r->t);
            }
            rec_free(d, r);
        }
    }
}

void gni_natd_free(gni_natd *d)
{
    if (!d) {
        return;
    }
    gni_natd_stop(d);
    d->n = NULL;
    if (d->in_done || d->running || d->head) {
        return; /* after_cb finishes it */
    }
    natd_destroy(d);
}
