/*
 * fuzz_mux_rcmgr.h - what the muxer fuzz targets (fuzz_yamux, fuzz_mplex)
 * share to run a session accounted in a resource manager.
 */
#ifndef FUZZ_MUX_RCMGR_H
#define FUZZ_MUX_RCMGR_H

#include "golemnet/rcmgr.h"
#include "gni_rcmgr.h"

#include <stdlib.h>
#include <string.h>

/*
 * Knob bit 7: the session is accounted in a resource manager with small
 * limits (stream memory 300 KiB, connection 1 MiB and 6 inbound streams),
 * whose bookkeeping must stay consistent and within its limits after every
 * step, and be empty once the session is freed.
 */
static gn_rcmgr *fz_rcmgr(gn_rcmgr_conn **conn)
{
    gn_rcmgr_limits l;
    gn_rcmgr_limits_default(&l);
    l.stream.memory = 300 * 1024;
    l.conn.memory = 1024 * 1024;
    l.conn.streams_in = 6;
    gn_rcmgr *rm = NULL;
    if (gn_rcmgr_new(&l, &rm) < 0 ||
        gn_rcmgr_open_conn(rm, GN_RCMGR_INBOUND, false, NULL, 0, conn) < 0)
        abort();
    gn_peer_id p;
    memset(&p, 0, sizeof p);
    p.len = 34;
    p.bytes[1] = 32;
    if (gn_rcmgr_conn_set_peer(*conn, &p) < 0)
        abort();
    return rm;
}

static void fz_rc_check(const gn_rcmgr *rm)
{
    char why[256];
    if (rm && gni_rcmgr_check(rm, true, why, sizeof why) < 0)
        abort();
}

static void fz_rc_end(gn_rcmgr *rm, gn_rcmgr_conn *conn)
{
    if (!rm)
        return;
    gn_rcmgr_usage u;
    if (gn_rcmgr_stat(rm, GN_RCMGR_SCOPE_SYSTEM, NULL, 0, &u) < 0 || u.memory != 0 ||
        u.streams_in + u.streams_out != 0)
        abort(); /* the freed session gave everything back */
    gn_rcmgr_conn_done(conn);
    fz_rc_check(rm);
    gn_rcmgr_free(rm);
}

#endif /* FUZZ_MUX_RCMGR_H */
