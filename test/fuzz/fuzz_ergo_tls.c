/*
 * Fuzzes the TLS engine of Ergo links (core/tlsbio.c, configured as
 * ergo_uv.c does) with
 * ciphertext from an untrusted peer. Byte 0: the input is fed in chunks of
 * 1 + byte 0. Byte 1, mode (mod 3): 0 a server wrapper (an acceptor) fed a
 * peer's first flight; 1 a client wrapper (a dialler) fed an acceptor's
 * flight; 2 a server wrapper that finished a real handshake in memory, fed
 * records (the post-handshake record layer and alerts). Checks: only
 * documented errors, each sticky with a diagnostic; a read never returns
 * more than asked; random bytes never complete a handshake (the peer would
 * have to sign or MAC over our fresh random); the end of stream is judged
 * with a documented result.
 */
#include "ergo_uv.h"
#include "gni_tlsbio.h"

#include "golemnet/err.h"

#include <stdlib.h>
#include <string.h>

static uint8_t scratch[1 << 17];

static bool documented(int rc)
{
    return rc == 0 || rc == GN_EHANDSHAKE || rc == GN_EDECRYPT || rc == GN_EPROTO ||
           rc == GN_EEOF || rc == GN_ENOMEM;
}

static void drain(gni_tlsbio *t)
{
    gn_buf b;
    gn_buf_init(&b, scratch, sizeof scratch);
    while (gni_tlsbio_drain(t, &b) > 0) /* bounded: the session's queued output */
        gn_buf_init(&b, scratch, sizeof scratch);
}

/* moves @from's output into @to (a real peer); false when it failed */
static bool move(gni_tlsbio *from, gni_tlsbio *to)
{
    gn_buf b;
    gn_buf_init(&b, scratch, sizeof scratch);
    size_t n = gni_tlsbio_drain(from, &b);
    return n == 0 || gni_tlsbio_feed(to, scratch, n) == 0;
}

static void check_failed(gni_tlsbio *t, int rc)
{
    if (!documented(rc) || (rc < 0 && rc != GN_EEOF && gni_tlsbio_error(t) != rc) ||
        (rc < 0 && !gni_tlsbio_diag(t)[0]))
        abort();
}

static void run(gni_tlsbio *t, const uint8_t *p, size_t n, size_t chunk, bool was_done)
{
    uint8_t plain[GNI_TLSBIO_RECORD_MAX];
    for (size_t off = 0; off < n;) {
        size_t take = n - off < chunk ? n - off : chunk;
        int rc = gni_tlsbio_feed(t, p + off, take);
        off += take;
        check_failed(t, rc);
        if (rc < 0)
            break;
        drain(t);
        for (int i = 0; i < 64; i++) { /* bounded: records in what was fed */
            rc = gni_tlsbio_read(t, plain, sizeof plain);
            check_failed(t, rc);
            if (rc > (int)sizeof plain)
                abort();
            if (rc <= 0)
                break;
        }
        if (rc < 0)
            break;
        drain(t);
    }
    if (!was_done && gni_tlsbio_done(t))
        abort(); /* random bytes completed a handshake */
    check_failed(t, gni_tlsbio_eof(t));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static gni_tlsbio_ctx *sx, *cx;
    if (!sx) {
        gni_tlsbio_ctx_config sc = {0}, cc = {0};
        sc.server = true;
        sc.host = "localhost";
        sc.plain_first = GNI_ERGO_TLS_PLAIN_FIRST;
        sc.plain_diag = GNI_ERGO_TLS_PLAIN_DIAG;
        cc.skip_verify = true;
        cc.verify_hint = GNI_ERGO_TLS_VERIFY_HINT;
        if (gni_tlsbio_ctx_new(&sc, &sx, NULL, 0) < 0 || gni_tlsbio_ctx_new(&cc, &cx, NULL, 0) < 0)
            abort();
    }
    if (size < 2)
        return 0;
    size_t chunk = 1 + (size_t)data[0];
    unsigned mode = data[1] % 3u;
    const uint8_t *p = data + 2;
    size_t n = size - 2;
    gni_tlsbio *s = NULL, *c = NULL;
    if (gni_tlsbio_new(sx, NULL, &s) < 0 || gni_tlsbio_new(cx, "localhost", &c) < 0)
        abort();
    if (mode == 0) {
        run(s, p, n, chunk, false);
    } else if (mode == 1) {
        drain(c); /* the ClientHello went out */
        run(c, p, n, chunk, false);
    } else {
        for (int i = 0; i < 8 && !(gni_tlsbio_done(c) && gni_tlsbio_done(s)); i++)
            if (!move(c, s) || !move(s, c))
                abort();
        if (!gni_tlsbio_done(c) || !gni_tlsbio_done(s))
            abort();
        run(s, p, n, chunk, true);
    }
    gni_tlsbio_free(s);
    gni_tlsbio_free(c);
    return 0;
}
