/*
 * Fuzz target for the mplex core (layers/mux/mplex/mplex.c).
 *
 * Input: byte 0 = knobs (bit 0: session initiator; bits 1-3: feed split
 * size; bit 4: accept peer streams; bit 5: echo received data; bit 6: read
 * only half of what is buffered; bit 7: accounted in a resource manager,
 * whose bookkeeping is checked too), then the bytes "from the peer". The
 * harness plays the application between feed slices and checks after every
 * step (abort() on violation):
 *   - session receive buffering <= session_buffer_max;
 *   - bytes queued for sending, all streams <= session_send_max;
 *   - every stream's unconsumed bytes <= stream_buffer_max;
 *   - inbound streams <= max_inbound_streams, pending <= max_pending_streams;
 *   - refused streams waiting for their reset <= max_inbound_streams + margin;
 *   - feed consumes everything or fails with a peer-violation code (or
 *     GN_ENOMEM), and then keeps failing with the same code.
 */
#include "golemnet/err.h"
#include "fuzz_mux_rcmgr.h"
#include "gni_rcmgr.h"
#include "mplex.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_MAX_IDS 64

static void fz_check(gni_mplex *ms, const gn_mux_config *cfg, const uint64_t *ids, size_t nids)
{
    gni_mplex_stats st;
    gni_mplex_get_stats(ms, &st);
    if (st.recv_buffered > cfg->session_buffer_max)
        abort();
    if (st.send_queued > cfg->session_send_max)
        abort();
    if (st.streams_inbound > cfg->max_inbound_streams)
        abort();
    if (st.streams_pending > cfg->max_pending_streams)
        abort();
    if (st.refused_waiting > cfg->max_inbound_streams + GNI_MPLEX_REFUSE_MARGIN)
        abort();
    for (size_t i = 0; i < nids; i++) {
        gni_mplex_stream_info info;
        if (gni_mplex_stream_get_info(ms, ids[i], &info) < 0)
            continue;
        if (info.recv_buffered > cfg->stream_buffer_max)
            abort();
        if (info.send_queued > cfg->stream_buffer_max)
            abort();
    }
}

static bool fz_allowed(int rc)
{
    return rc == GN_EBADFRAME || rc == GN_EPROTO || rc == GN_EFRAMESIZE ||
           rc == GN_ESTREAMLIMIT || rc == GN_ENOMEM;
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
    cfg.max_frame_len = 64 * 1024;
    cfg.stream_buffer_max = 32 * 1024;
    cfg.session_buffer_max = 128 * 1024;
    cfg.session_send_max = 48 * 1024; /* less than the streams' own bounds together */
    gni_mplex *ms = NULL;
    if (gni_mplex_new((knobs & 1) != 0, &cfg, 0, &ms) < 0)
        abort();
    gn_rcmgr_conn *rc_conn = NULL;
    gn_rcmgr *rm = (knobs & 0x80) ? fz_rcmgr(&rc_conn) : NULL;
    if (rm && gni_mplex_set_rcmgr(ms, rm, rc_conn) < 0)
        abort();
    uint64_t ids[FZ_MAX_IDS];
    size_t nids = 0;
    static uint8_t out[4096];
    static uint8_t rd[2048];
    size_t split = (size_t)1 << ((knobs >> 1) & 7);
    int first_err = 0;
    uint64_t opened;
    for (int i = 0; i < 2; i++)
        if (gni_mplex_open(ms, NULL, 0, &opened) == 0 && nids < FZ_MAX_IDS)
            ids[nids++] = opened;
    if (nids)
        gni_mplex_stream_write(ms, ids[0], (const uint8_t *)"hello", 5);
    for (size_t off = 0; off < size; off += split) {
        size_t n = size - off < split ? size - off : split;
        size_t used = 0;
        int rc = gni_mplex_feed(ms, data + off, n, &used, 0);
        if (rc < 0) {
            if (first_err ? rc != first_err : !fz_allowed(rc))
                abort();
            if (!first_err && used > n)
                abort();
            first_err = rc;
        } else if (used != n || first_err) {
            abort();
        }
        gni_mplex_event ev;
        for (int k = 0; k < 256 && gni_mplex_next_event(ms, &ev) == 1; k++) {
            if (ev.type == GNI_MPLEX_EV_STREAM_OPENED) {
                if (nids < FZ_MAX_IDS)
                    ids[nids++] = ev.stream_id;
                if (knobs & 0x10)
                    gni_mplex_accept(ms, ev.stream_id);
                gn_slice name;
                if (gni_mplex_stream_name(ms, ev.stream_id, &name) < 0 ||
                    name.len > GNI_MPLEX_NAME_MAX)
                    abort();
            } else if (ev.type == GNI_MPLEX_EV_STREAM_DATA) {
                gni_mplex_stream_info info;
                if (gni_mplex_stream_get_info(ms, ev.stream_id, &info) < 0)
                    abort();
                size_t want = (knobs & 0x40) ? info.recv_buffered / 2 : sizeof(rd);
                long r = gni_mplex_stream_read(ms, ev.stream_id, rd,
                                               want < sizeof(rd) ? want : sizeof(rd));
                if (r > 0 && (knobs & 0x20))
                    gni_mplex_stream_write(ms, ev.stream_id, rd, (size_t)r);
            } else if (ev.type == GNI_MPLEX_EV_STREAM_FIN) {
                gni_mplex_stream_shutdown(ms, ev.stream_id);
            } else if (ev.type == GNI_MPLEX_EV_STREAM_RESET) {
                gni_mplex_stream_release(ms, ev.stream_id);
            }
        }
        fz_check(ms, &cfg, ids, nids);
        fz_rc_check(rm);
        gn_buf b;
        gn_buf_init(&b, out, sizeof(out));
        for (int k = 0; k < 64 && gni_mplex_want_drain(ms); k++) {
            gn_buf_reset(&b);
            int d = gni_mplex_drain(ms, &b, 0);
            if (d < 0 || (size_t)d != gn_buf_len(&b))
                abort();
            if (d == 0)
                break;
        }
        fz_check(ms, &cfg, ids, nids);
        fz_rc_check(rm);
    }
    for (size_t i = 0; i < nids; i += 2)
        gni_mplex_stream_release(ms, ids[i]);
    fz_check(ms, &cfg, ids, nids);
    gni_mplex_free(ms);
    fz_rc_end(rm, rc_conn);
    return 0;
}
