/*
 * Fuzz target for the yamux core (layers/mux/yamux/yamux.c).
 *
 * Input: byte 0 = knobs (bit 0: client role; bits 1-3: feed split size;
 * bit 4: accept peer streams; bit 5: echo received data back; bit 6: read
 * only half of what is buffered; bit 7: accounted in a resource manager,
 * whose bookkeeping is checked too), then the bytes "from the peer". Between
 * feed slices the harness plays the application: pulls events, accepts,
 * reads, writes, shuts down, drains output into a small buffer and advances
 * the clock through on_expiry. After every step the bounds are checked;
 * a violation calls abort():
 *   - session receive buffering <= session_buffer_max;
 *   - bytes queued for sending, all streams <= session_send_max;
 *   - every stream's unconsumed bytes <= its window <= max_window;
 *   - inbound streams <= max_inbound_streams, pending <= max_pending_streams;
 *   - refused streams waiting for their reset <= max_inbound_streams + margin;
 *   - feed either consumes everything or fails with a peer-violation code
 *     (or GN_ENOMEM), and keeps failing with the same code.
 */
#include "golemnet/err.h"
#include "fuzz_mux_rcmgr.h"
#include "gni_rcmgr.h"
#include "yamux.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_MAX_IDS 64

static void fz_check(gni_yamux *ys, const gn_mux_config *cfg, const uint32_t *ids, size_t nids)
{
    gni_yamux_stats st;
    gni_yamux_get_stats(ys, &st);
    if (st.recv_buffered > cfg->session_buffer_max)
        abort();
    if (st.send_queued > cfg->session_send_max)
        abort();
    if (st.streams_inbound > cfg->max_inbound_streams)
        abort();
    if (st.streams_pending > cfg->max_pending_streams)
        abort();
    if (st.refused_waiting > cfg->max_inbound_streams + GNI_YAMUX_REFUSE_MARGIN)
        abort();
    for (size_t i = 0; i < nids; i++) {
        gni_yamux_stream_info info;
        if (gni_yamux_stream_get_info(ys, ids[i], &info) < 0)
            continue;
        if (info.recv_buffered > info.recv_max || info.recv_max > cfg->max_window)
            abort();
        if ((size_t)info.recv_window + info.recv_buffered > info.recv_max)
            abort();
    }
}

static bool fz_allowed(int rc)
{
    switch (rc) {
    case GN_EVERSION:
    case GN_EBADFRAME:
    case GN_EPROTO:
    case GN_EWINDOW:
    case GN_EFRAMESIZE:
    case GN_ESTREAMLIMIT:
    case GN_ENOMEM:
        return true;
    default:
        return false;
    }
}


/* Knob bit 7: the session accounted in a resource manager (fuzz_mux_rcmgr.h). */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t knobs = data[0];
    data++;
    size--;
    gn_mux_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.version = GN_MUX_CONFIG_VERSION;
    cfg.max_inbound_streams = 16;
    cfg.max_outbound_streams = 16;
    cfg.max_pending_streams = 8;
    cfg.max_window = 512 * 1024;
    cfg.session_buffer_max = 1024 * 1024;
    cfg.session_send_max = 48 * 1024; /* less than the streams' own bounds together */
    cfg.stream_buffer_max = 64 * 1024;
    cfg.keepalive_interval = 5 * GN_S;
    cfg.stream_open_timeout = 3 * GN_S;
    gni_yamux *ys = NULL;
    if (gni_yamux_new((knobs & 1) != 0, &cfg, 0, &ys) < 0)
        abort();
    gn_rcmgr_conn *rc_conn = NULL;
    gn_rcmgr *rm = (knobs & 0x80) ? fz_rcmgr(&rc_conn) : NULL;
    if (rm && gni_yamux_set_rcmgr(ys, rm, rc_conn) < 0)
        abort();
    uint32_t ids[FZ_MAX_IDS];
    size_t nids = 0;
    static uint8_t out[4096];
    static uint8_t rd[2048];
    size_t split = (size_t)1 << ((knobs >> 1) & 7); /* 1 .. 128 */
    gn_time now = 0;
    int first_err = 0;
    uint32_t opened;
    /* open a couple of our own streams so ACK / data paths run too */
    for (int i = 0; i < 2; i++)
        if (gni_yamux_open(ys, now, &opened) == 0 && nids < FZ_MAX_IDS)
            ids[nids++] = opened;
    if (nids)
        gni_yamux_stream_write(ys, ids[0], (const uint8_t *)"hello", 5);
    for (size_t off = 0; off < size; off += split) {
        size_t n = size - off < split ? size - off : split;
        size_t used = 0;
        int rc = gni_yamux_feed(ys, data + off, n, &used, now);
        if (rc < 0) {
            if (first_err ? rc != first_err : !fz_allowed(rc))
                abort();
            if (!first_err && used > n)
                abort();
            first_err = rc;
        } else if (used != n || first_err) {
            abort();
        }
        gni_yamux_event ev;
        for (int k = 0; k < 256 && gni_yamux_next_event(ys, &ev) == 1; k++) {
            if (ev.type == GNI_YAMUX_EV_STREAM_OPENED) {
                if (nids < FZ_MAX_IDS)
                    ids[nids++] = ev.stream_id;
                if (knobs & 0x10)
                    gni_yamux_accept(ys, ev.stream_id);
            } else if (ev.type == GNI_YAMUX_EV_STREAM_DATA) {
                gni_yamux_stream_info info;
                if (gni_yamux_stream_get_info(ys, ev.stream_id, &info) < 0)
                    abort(); /* events only for live streams */
                size_t want = (knobs & 0x40) ? info.recv_buffered / 2 : sizeof(rd);
                long r = gni_yamux_stream_read(ys, ev.stream_id, rd,
                                               want < sizeof(rd) ? want : sizeof(rd));
                if (r > 0 && (knobs & 0x20))
                    gni_yamux_stream_write(ys, ev.stream_id, rd, (size_t)r);
            } else if (ev.type == GNI_YAMUX_EV_STREAM_FIN) {
                gni_yamux_stream_shutdown(ys, ev.stream_id);
            } else if (ev.type == GNI_YAMUX_EV_STREAM_RESET) {
                gni_yamux_stream_release(ys, ev.stream_id);
            }
        }
        fz_check(ys, &cfg, ids, nids);
        fz_rc_check(rm);
        gn_buf b;
        gn_buf_init(&b, out, sizeof(out));
        for (int k = 0; k < 64 && gni_yamux_want_drain(ys); k++) {
            gn_buf_reset(&b);
            int d = gni_yamux_drain(ys, &b, now);
            if (d < 0 || (size_t)d != gn_buf_len(&b))
                abort();
            if (d == 0)
                break;
        }
        now += 250 * GN_MS;
        if (gni_yamux_next_deadline(ys) <= now) {
            int rc2 = gni_yamux_on_expiry(ys, now);
            if (rc2 < 0 && !first_err) {
                if (rc2 != GN_ETIMEDOUT) /* the only way expiry ends a session */
                    abort();
                first_err = rc2;
            }
        }
        fz_check(ys, &cfg, ids, nids);
        fz_rc_check(rm);
    }
    for (size_t i = 0; i < nids; i += 2)
        gni_yamux_stream_release(ys, ids[i]);
    fz_check(ys, &cfg, ids, nids);
    gni_yamux_free(ys);
    fz_rc_end(rm, rc_conn);
    return 0;
}
