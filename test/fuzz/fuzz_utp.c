/*
 * Fuzz target for the uTP core (layers/transport/utp/utp.c).
 *
 * Input: byte 0 = role (bit 0: initiator, else responder to a fixed SYN
 * with conn_id 0x2000; the initiator uses recv_id 0x1000), byte 1 = buffer
 * size knob; then chunks [op][len][len bytes]: op % 4 = 0 feed the bytes as
 * one datagram, 1 write them, 2 read up to len bytes, 3 advance the clock
 * by len * 10 ms and run the timers. After every chunk the harness drains
 * every datagram due. A violation calls abort():
 *   - gni_utp_parse() either fails with GN_EPARSE or returns an offset
 *     within the datagram, and re-encoding the parsed header gives back
 *     its first 20 bytes;
 *   - feed returns 0 or GN_EPARSE; drain returns 0..cap bytes, each
 *     datagram parses and carries one of the connection's ids;
 *   - buffered received bytes <= recv_buf_max; read returns a count,
 *     0, GN_EEOF or the connection's error; write never exceeds its input;
 *   - the drain loop ends (the window bounds it) and the deadline is
 *     never in the past after on_timer.
 */
#include "golemnet/err.h"
#include "utp.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fz_check_packet(const uint8_t *p, size_t n)
{
    gni_utp_hdr h;
    int off = gni_utp_parse(p, n, &h);
    if (off == GN_EPARSE)
        return;
    if (off < GNI_UTP_HDR_LEN || (size_t)off > n)
        abort();
    uint8_t re[GNI_UTP_HDR_LEN];
    if (gni_utp_hdr_encode(&h, re) != GNI_UTP_HDR_LEN || memcmp(re, p, GNI_UTP_HDR_LEN) != 0)
        abort();
}

/* data[0] bit 1: larger packets offered (golemnet's size offer, extension 2) */
#define FZ_MSS_MAX 2000

static void fz_drain(gni_utp *u, gn_time now)
{
    uint8_t out[GNI_UTP_PACKET_FOR(FZ_MSS_MAX)];
    for (int i = 0;; i++) {
        if (i > 5000)
            abort();
        int n = gni_utp_drain(u, out, sizeof(out), now);
        if (n < 0 || (size_t)n > sizeof(out) || (size_t)n > gni_utp_max_packet(u))
            abort();
        if (n == 0)
            return;
        gni_utp_hdr h;
        if (gni_utp_parse(out, (size_t)n, &h) < 0)
            abort();
        if (h.conn_id != gni_utp_recv_id(u) && h.conn_id != gni_utp_send_id(u))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    gni_utp_config cfg;
    gni_utp_config_default(&cfg);
    cfg.recv_buf_max = 2048u << (data[1] % 8);
    cfg.send_buf_max = 4096;
    if (data[0] & 2)
        cfg.mss_max = FZ_MSS_MAX;
    gni_utp *u = gni_utp_new(&cfg);
    if (!u)
        return 0;
    gn_time now = 100 * GN_S;
    if (data[0] & 1) {
        gni_utp_connect(u, 0x1000, 100, now);
    } else {
        /* with bit 1 the SYN offers 1800-byte payloads */
        uint8_t syn[GNI_UTP_HDR_LEN + 10] = {0, 8, 'g', 'n', 'O', 0, 1800 >> 8, 1800 & 0xff, 0, 0};
        memmove(syn + GNI_UTP_HDR_LEN, syn, 10);
        gni_utp_hdr h = {.type = GNI_UTP_ST_SYN, .ver = 1, .conn_id = 0x2000, .seq = 100,
                         .ext = (data[0] & 2) ? GNI_UTP_EXT_BITS : 0};
        gni_utp_hdr_encode(&h, syn);
        if (gni_utp_accept(u, syn, (data[0] & 2) ? sizeof(syn) : GNI_UTP_HDR_LEN, 500, now) != 0)
            abort();
    }
    fz_drain(u, now);
    size_t pos = 2;
    while (size - pos >= 2) {
        uint8_t op = data[pos], len = data[pos + 1];
        pos += 2;
        if (len > size - pos)
            len = (uint8_t)(size - pos);
        const uint8_t *d = data + pos;
        pos += len;
        switch (op % 4) {
        case 0: {
            fz_check_packet(d, len);
            int rc = gni_utp_feed(u, d, len, now);
            if (rc != 0 && rc != GN_EPARSE)
                abort();
            break;
        }
        case 1: {
            long rc = gni_utp_write(u, d, len);
            if (rc > (long)len)
                abort();
            break;
        }
        case 2: {
            uint8_t buf[256];
            long rc = gni_utp_read(u, buf, len);
            if (rc > (long)len)
                abort();
            if (rc < 0 && rc != GN_EEOF && rc != gni_utp_error(u))
                abort();
            break;
        }
        default:
            now += (gn_time)len * 10 * GN_MS;
            gni_utp_on_timer(u, now);
            if (gni_utp_deadline(u) < now && gni_utp_get_state(u) != GNI_UTP_SYN_SENT)
                abort();
            break;
        }
        if (gni_utp_readable(u) > cfg.recv_buf_max)
            abort();
        fz_drain(u, now);
    }
    gni_utp_abort(u);
    fz_drain(u, now);
    gni_utp_free(u);
    return 0;
}
