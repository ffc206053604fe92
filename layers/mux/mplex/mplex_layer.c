/*
 * /mplex/6.7.0 as a mux-layer component: the sans-I/O core (mplex.h)
 * driven by the generic muxer driver (include/golemnet/mux_driver.h). mplex has no flow
 * control, no ping and no Go Away: the driver bounds receive buffering by
 * stopping input (flow_control false), gn_mux_ping gives GN_ENOTSUP and
 * Go Away is enforced locally only. Streams are opened with the decimal id
 * as their name, as go-mplex and js-mplex do.
 */
#include "golemnet/registry.h"
#include "gni.h"
#include "golemnet/mux_driver.h"
#include "mplex.h"

static int ml_create(bool initiator, const gn_mux_config *cfg, gn_time now, void **out)
{
    gni_mplex *ms = NULL;
    int rc = gni_mplex_new(initiator, cfg, now, &ms);
    if (rc == 0) {
        *out = ms;
    }
    return rc;
}

static void ml_destroy(void *core)
{
    gni_mplex_free(core);
}

static int ml_feed(void *core, const uint8_t *in, size_t len, size_t *consumed, gn_time now)
{
    return gni_mplex_feed(core, in, len, consumed, now);
}

static int ml_drain(void *core, gn_buf *out, gn_time now)
{
    return gni_mplex_drain(core, out, now);
}

static bool ml_want_drain(const void *core)
{
    return gni_mplex_want_drain(core);
}

static int ml_next_event(void *core, gn_muxd_event *ev)
{
    gni_mplex_event e;
    int rc = gni_mplex_next_event(core, &e);
    /* same event numbering (mplex.h) */
    ev->type = e.type;
    ev->stream_id = e.stream_id;
    ev->stream_user_data = e.stream_user_data;
    ev->err = e.err;
    ev->code = 0;
    ev->count = e.count;
    ev->rtt = 0;
    return rc;
}

static gn_time ml_next_deadline(const void *core)
{
    return gni_mplex_next_deadline(core);
}

static int ml_on_expiry(void *core, gn_time now)
{
    return gni_mplex_on_expiry(core, now);
}

static int ml_open(void *core, gn_time now, uint64_t *id)
{
    (void)now;
    return gni_mplex_open(core, NULL, 0, id);
}

static int ml_accept(void *core, uint64_t id)
{
    return gni_mplex_accept(core, id);
}

static long ml_write(void *core, uint64_t id, const uint8_t *data, size_t len)
{
    return gni_mplex_stream_write(core, id, data, len);
}

static int ml_shutdown(void *core, uint64_t id)
{
    return gni_mplex_stream_shutdown(core, id);
}

static int ml_reset(void *core, uint64_t id)
{
    return gni_mplex_stream_reset(core, id);
}

static int ml_peek(const void *core, uint64_t id, gn_slice *out)
{
    return gni_mplex_stream_peek(core, id, out);
}

static int ml_consume(void *core, uint64_t id, size_t n)
{
    return gni_mplex_stream_consume(core, id, n);
}

static int ml_release(void *core, uint64_t id)
{
    return gni_mplex_stream_release(core, id);
}

static int ml_set_user_data(void *core, uint64_t id, void *user_data)
{
    return gni_mplex_stream_set_user_data(core, id, user_data);
}

static int ml_set_priority(void *core, uint64_t id, uint8_t prio)
{
    return gni_mplex_stream_set_priority(core, id, prio);
}

static size_t ml_stream_buffered(const void *core, uint64_t id)
{
    gni_mplex_stream_info info;
    if (gni_mplex_stream_get_info(core, id, &info) < 0) {
        return 0;
    }
    return info.recv_buffered;
}

static size_t ml_buffered(const void *core)
{
    return gni_mplex_buffered(core);
}

static gn_rcmgr_stream *ml_stream_span(const void *core, uint64_t id)
{
    return gni_mplex_stream_span(core, (uint64_t)id);
}

static int ml_set_rcmgr(void *core, gn_rcmgr *rm, gn_rcmgr_conn *conn)
{
    return gni_mplex_set_rcmgr(core, rm, conn);
}

static size_t ml_send_queued(const void *core)
{
    return gni_mplex_send_queued(core);
}

/* GN_QUERY_STREAM_ID reports the wire id (the handle also says who opened it). */
static uint64_t ml_wire_id(uint64_t h)
{
    return GNI_MPLEX_HANDLE_ID(h);
}

static const gn_muxd_vtbl mplex_vtbl = {
    .flow_control = false,
    .create = ml_create,
    .destroy = ml_destroy,
    .feed = ml_feed,
    .drain = ml_drain,
    .want_drain = ml_want_drain,
    .next_event = ml_next_event,
    .next_deadline = ml_next_deadline,
    .on_expiry = ml_on_expiry,
    .open = ml_open,
    .accept = ml_accept,
    .write = ml_write,
    .shutdown = ml_shutdown,
    .reset = ml_reset,
    .peek = ml_peek,
    .consume = ml_consume,
    .release = ml_release,
    .set_user_data = ml_set_user_data,
    .set_priority = ml_set_priority,
    .stream_buffered = ml_stream_buffered,
    .buffered = ml_buffered,
    .send_queued = ml_send_queued,
    .set_rcmgr = ml_set_rcmgr,
    .stream_span = ml_stream_span,
    .ping = NULL,
    .go_away = NULL,
    .goaway_err = NULL,
    .wire_id = ml_wire_id,
};

static int ml_session_new(gn_mux *m, gn_stream *below, bool initiator,
                          const gn_mux_session_cbs *cbs, void *user_data, gn_mux_session **out)
{
    return gn_muxd_session_new(m, &mplex_vtbl, below, initiator, cbs, user_data, out);
}

static const gn_mux_ops mplex_ops = {
    .abi = GN_MUX_ABI,
    .name = "/mplex/6.7.0",
    .state_size = 0,
    .flags = 0,
    .caps = 0, /* no windows, pings, Go Away frame or open acknowledgement */
    .session_new = ml_session_new,
    .open_stream = gn_muxd_open_stream,
    .ping = NULL, /* GN_ENOTSUP */
    .go_away = gn_muxd_go_away,
    .set_priority = gn_muxd_set_priority,
    .metrics = gn_muxd_metrics,
    .session_close = gn_muxd_session_close,
    .set_rcmgr = gn_muxd_set_rcmgr,
};

int gn_mux_mplex_register(gn_registry *reg);

int gn_mux_mplex_register(gn_registry *reg)
{
    return gn_registry_add(reg, GN_LAYER_MUX, (const gn_layer_ops *)&mplex_ops);
}
