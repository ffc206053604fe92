/*
 * Resource manager internals for the library's own muxers, tests and fuzz
 * targets (never installed).
 * Thread context: the manager's thread.
 */
#ifndef GNI_RCMGR_H
#define GNI_RCMGR_H

#include "golemnet/rcmgr.h"

/*
 * Recomputes every scope's usage and reference count from the open spans
 * and compares them with what the manager keeps; with @limits, also checks
 * that no scope holds more than its limit and no table more than its cap
 * (true only while limits were never lowered). On a mismatch, returns
 * GN_EINTERNAL and writes a NUL-terminated description to @why (@why_len
 * bytes, may be 0); 0 when consistent.
 */
int gni_rcmgr_check(const gn_rcmgr *rm, bool limits, char *why, size_t why_len);

/*
 * gn_rcmgr_open_stream() on @conn (not NULL) that also reserves @mem bytes
 * of memory on the new span at GN_RCMGR_PRIO_ALWAYS, in the same
 * all-or-nothing admission (one walk of the chain instead of two: the
 * muxers open a span and reserve a window for every stream). Errors as
 * gn_rcmgr_open_stream() (GN_EINVAL also for a NULL @conn).
 */
int gni_rcmgr_open_stream_mem(gn_rcmgr *rm, gn_rcmgr_conn *conn, gn_rcmgr_dir dir, size_t mem,
                              gn_rcmgr_stream **out);

/* Number of scopes of a keyed @kind alive now (0 for other kinds). */
size_t gni_rcmgr_table_len(const gn_rcmgr *rm, gn_rcmgr_scope_kind kind);

#endif /* GNI_RCMGR_H */
