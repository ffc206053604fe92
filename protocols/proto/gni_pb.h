/*
 * protobuf-c's allocator routed through the library's allocation hooks
 * (golemnet/log.h), with out-of-memory recorded: protobuf-c reports a
 * failed allocation only as a failed unpack, and callers must tell that
 * apart from malformed input. Internal; one per unpack call:
 *
 *   gni_pb_alloc pa;
 *   gni_pb_alloc_init(&pa);
 *   Msg *m = msg__unpack(&pa.a, len, bytes);
 *   if (!m) return pa.oom ? GN_ENOMEM : GN_EPROTO;
 */
#ifndef GNI_PB_H
#define GNI_PB_H

#include "golemnet/log.h"

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>

typedef struct gni_pb_alloc {
    ProtobufCAllocator a; /* a.allocator_data points at this struct */
    bool oom;             /* an allocation failed */
} gni_pb_alloc;

static inline void *gni_pb_alloc_fn(void *ud, size_t len)
{
    void *p = gn_malloc(len ? len : 1);
    if (!p) {
        ((gni_pb_alloc *)ud)->oom = true;
    }
    return p;
}

static inline void gni_pb_free_fn(void *ud, void *p)
{
    (void)ud;
    gn_free(p);
}

static inline void gni_pb_alloc_init(gni_pb_alloc *pa)
{
    pa->a.alloc = gni_pb_alloc_fn;
    pa->a.free = gni_pb_free_fn;
    pa->a.allocator_data = pa;
    pa->oom = false;
}

#endif /* GNI_PB_H */
