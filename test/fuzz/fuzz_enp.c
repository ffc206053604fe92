/*
 * Fuzzes the ENP R1 framing core (protocols/ergo/enp.c): the streaming
 * splitter and the frame parser. Byte 0 sets the link's MaxMessageSize
 * (0 = unlimited, else byte0 * 16), byte 1 the chunk size the rest is fed
 * in (1 + byte1). Checks: the splitter only returns documented errors and
 * never a frame longer than the limit or shorter than a header; every frame
 * that parses rebuilds to exactly its bytes; a type 200 frame inflates
 * within its bound or fails with a documented error.
 */
#include "enp.h"

#include "golemnet/err.h"

#include <stdlib.h>
#include <string.h>

static uint8_t rebuilt[1 << 17];
static uint8_t inflated[1 << 16];

static void check_frame(const uint8_t *p, size_t n)
{
    gni_enp_frame f;
    gni_enp_diag d;
    int rc = gni_enp_parse(p, n, &f, &d);
    if (rc != 0 && rc != GN_EPARSE && rc != GN_ENOTSUP)
        abort();
    if (rc != 0)
        return;
    if (gni_enp_frame_len(&f) != n)
        abort();
    if (n <= sizeof rebuilt) {
        long b = gni_enp_build(&f, rebuilt, sizeof rebuilt);
        if (b != (long)n || memcmp(rebuilt, p, n) != 0)
            abort();
    }
    if (f.name.len > 255 || f.payload.base + f.payload.len != p + n)
        abort();
    (void)gni_enp_priority(&f);
    (void)gni_enp_important(&f);
    (void)gni_enp_default_order(&f, true);
    if (f.type == GNI_ENP_COMPRESSED) {
        long r = gni_enp_inflate(&f, inflated, sizeof inflated, &d);
        if (r < 0 && r != GN_ETOOBIG && r != GN_EPARSE && r != GN_ENOTSUP && r != GN_ENOMEM)
            abort();
        if (r >= 0) {
            gni_enp_frame in;
            if (r != (long)f.orig_len || inflated[0] != GNI_ENP_MAGIC)
                abort();
            int pr = gni_enp_parse(inflated, (size_t)r, &in, &d);
            if (pr == 0 && in.type == GNI_ENP_COMPRESSED)
                abort(); /* no nesting */
        }
    }
    if (f.type == GNI_ENP_ANY)
        (void)gni_enp_any_kind_of(f.any_type_name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint32_t max_len = (uint32_t)data[0] * 16u;
    size_t chunk = 1u + data[1];
    data += 2;
    size -= 2;
    /* the parser alone on the whole input */
    check_frame(data, size);

    gni_enp_splitter s;
    if (gni_enp_splitter_init(&s, max_len) != 0)
        abort();
    size_t pos = 0;
    /* each call consumes input or yields a frame; bounded by 2 * size + 2 */
    for (size_t guard = 0; pos < size && guard < 2 * size + 2; guard++) {
        size_t n = size - pos < chunk ? size - pos : chunk;
        size_t used = 0;
        gn_slice fr;
        int rc = gni_enp_splitter_feed(&s, data + pos, n, &used, &fr);
        if (used > n)
            abort();
        pos += used;
        if (rc < 0) {
            if (rc != GN_EFRAMESIZE && rc != GN_EBADFRAME && rc != GN_EVERSION && rc != GN_ENOMEM)
                abort();
            if (gni_enp_splitter_diag(&s)[0] == 0)
                abort();
            break;
        }
        if (rc == 1) {
            if (fr.len < GNI_ENP_HEADER_LEN || (max_len && fr.len > max_len) ||
                gni_enp_get32(fr.base + 2) != fr.len)
                abort();
            check_frame(fr.base, fr.len);
        } else if (used != n) {
            abort();
        }
    }
    gni_enp_splitter_fini(&s);
    return 0;
}
