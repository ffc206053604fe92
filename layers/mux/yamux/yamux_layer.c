/*
 * /yamux/1.0.0 as a mux-layer component: the sans-I/O core (yamux.h)
 * driven by the generic muxer driver (include/golemnet/mux_driver.h). This file only
 * adapts the core's calls to the driver's vtable (32-bit stream ids widened
 * to the driver's uint64_t handles) and fills the gn_mux_ops table.
 */
#include "golemnet/registry.h"
#include "gni.h"
#include "golemnet/mux_driver.h"
#include "yamux.h"

/* Stream handles are yamux stream ids (< 2^32). */
#define YL_ID(h) ((uint32_t)(h))

static int yl_create(bool initiator, const gn_mux_config *cfg, gn_time now, void **out)
{
    gni_yamux *ys = NULL;
    int rc = gni_yamux_new(initiator, cfg, now, &ys);
    if (rc == 0) {
        *out = ys;
    }
    return rc;
}

static void yl_destroy(void *core)
{
    gni_yamux_free(core);
}

static int yl_feed(void *core, const uint8_t *in, size_t len, size_t *consumed, gn_time now)
{
    return gni_yamux_feed(core, in, len, consumed, now);
}

static int yl_drain(void *core, gn_buf *out, gn_time now)
{
    return gni_yamux_drain(core, out, now);
}

static bool yl_want_drain(const void *core)
{
    return gni_yamux_want_drain(core);
}

static int yl_next_event(void *core, gn_muxd_event *ev)
{
    gni_yamux_event e;
    int rc = gni_yamux_next_event(core, &e);
    /* same event numbering (yamux.h) */
    ev->type = e.type;
    ev->stream_id = e.stream_id;
    ev->stream_user_data = e.stream_user_data;
    ev->err = e.err;
    ev->code = e.code;
    ev->count = e.count;
    ev->rtt = e.rtt;
    return rc;
}

static gn_time yl_next_deadline(const void *core)
{
    return gni_yamux_next_deadline(core);
}

static int yl_on_expiry(void *core, gn_time now)
{
    return gni_yamux_on_expiry(core, now);
}

static int yl_open(void *core, gn_time now, uint64_t *id)
{
    uint32_t sid = 0;
    int rc = gni_yamux_open(core, now, &sid);
    if (rc == 0) {
        *id = sid;
    }
    return rc;
}

static int yl_accept(void *core, uint64_t id)
{
    return gni_yamux_accept(core, YL_ID(id));
}

static long yl_write(void *core, uint64_t id, const uint8_t *data, size_t len)
{
    return gni_yamux_stream_write(core, YL_ID(id), data, len);
}

static int yl_shutdown(void *core, uint64_t id)
{
    return gni_yamux_stream_shutdown(core, YL_ID(id));
}

static int yl_reset(void *core, uint64_t id)
{
    return gni_yamux_stream_reset(core, YL_ID(id));
}

static int yl_peek(const void *core, uint64_t id, gn_slice *out)
{
    return gni_yamux_stream_peek(core, YL_ID(id), out);
}

static int yl_consume(void *core, uint64_t id, size_t n)
{
    return gni_yamux_stream_consume(core, YL_ID(id), n);
}

static int yl_release(void *core, uint64_t id)
{
    return gni_yamux_stream_release(core, YL_ID(id));
}

static int yl_set_user_data(void *core, uint64_t id, void *user_data)
{
    return gni_yamux_stream_set_user_data(core, YL_ID(id), user_data);
}

static int yl_set_priority(void *core, uint64_t id, uint8_t prio)
{
    return gni_yamux_stream_set_priority(core, YL_ID(id), prio);
}

static size_t yl_stream_buffered(const void *core, uint64_t id)
{
    gni_yamux_stream_info info;
    if (gni_yamux_stream_get_info(core, YL_ID(id), &info) < 0) {
        return 0;
    }
    return info.recv_buffered;
}

static size_t yl_buffered(const void *core)
{
    return gni_yamux_buffered(core);
}

static gn_rcmgr_stream *yl_stream_span(const void *core, uint64_t id)
{
    return gni_yamux_stream_span(core, (uint32_t)id);
}

static int yl_set_rcmgr(void *core, gn_rcmgr *rm, gn_rcmgr_conn *conn)
{
    return gni_yamux_set_rcmgr(core, rm, conn);
}

static size_t yl_send_queued(const void *core)
{
    return gni_yamux_send_queued(core);
}

static int yl_ping(void *core, gn_time now)
{
    return gni_yamux_ping(core, now);
}

static int yl_go_away(void *core, uint32_t code)
{
    return gni_yamux_go_away(core, code);
}

/* Spec "Go Away": 0 normal termination, 1 protocol error, 2 internal error. */
static int yl_goaway_err(uint32_t code)
{
    switch (code) {
    case GNI_YAMUX_GOAWAY_NORMAL:
        return 0;
    case GNI_YAMUX_GOAWAY_INTERNAL_ERR:
        return GN_EINTERNAL;
    default:
        return GN_EPROTO;
    }
}

static const gn_muxd_vtbl yamux_vtbl = {
    .flow_control = true,
    .create = yl_create,
    .destroy = yl_destroy,
    .feed = yl_feed,
    .drain = yl_drain,
    .want_drain = yl_want_drain,
    .next_event = yl_next_event,
    .next_deadline = yl_next_deadline,
    .on_expiry = yl_on_expiry,
    .open = yl_open,
    .accept = yl_accept,
    .write = yl_write,
    .shutdown = yl_shutdown,
    .reset = yl_reset,
    .peek = yl_peek,
    .consume = yl_consume,
    .release = yl_release,
    .set_user_data = yl_set_user_data,
    .set_priority = yl_set_priority,
    .stream_buffered = yl_stream_buffered,
    .buffered = yl_buffered,
    .send_queued = yl_send_queued,
    .set_rcmgr = yl_set_rcmgr,
    .stream_span = yl_stream_span,
    .ping = yl_ping,
    .go_away = yl_go_away,
    .goaway_err = yl_goaway_err,
    .wire_id = NULL,
};

static int yl_session_new(gn_mux *m, gn_stream *below, bool initiator,
                          const gn_mux_session_cbs *cbs, void *user_data, gn_mux_session **out)
{
    return gn_muxd_session_new(m, &yamux_vtbl, below, initiator, cbs, user_data, out);
}

static const gn_mux_ops yamux_ops = {
    .abi = GN_MUX_ABI,
    .name = "/yamux/1.0.0",
    .state_size = 0,
    .flags = 0,
    .caps = GN_MUX_CAP_FLOW_CONTROL | GN_MUX_CAP_PING | GN_MUX_CAP_KEEPALIVE | GN_MUX_CAP_GOAWAY |
            GN_MUX_CAP_OPEN_ACK,
    .session_new = yl_session_new,
    .open_stream = gn_muxd_open_stream,
    .ping = gn_muxd_ping,
    .go_away = gn_muxd_go_away,
    .set_priority = gn_muxd_set_priority,
    .metrics = gn_muxd_metrics,
    .session_close = gn_muxd_session_close,
    .set_rcmgr = gn_muxd_set_rcmgr,
};

int gn_mux_yamux_register(gn_registry *reg);

int gn_mux_yamux_register(gn_registry *reg)
{
    return gn_registry_add(reg, GN_LAYER_MUX, (const gn_layer_ops *)&yamux_ops);
}
