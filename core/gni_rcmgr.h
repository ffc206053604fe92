/*
 * Resource manager internals for tests and fuzz targets (never installed).
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

/* Number of scopes of a keyed @kind alive now (0 for other kinds). */
size_t gni_rcmgr_table_len(const gn_rcmgr *rm, gn_rcmgr_scope_kind kind);

#endif /* GNI_RCMGR_H */
