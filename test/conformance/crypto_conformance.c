/*
 * Security conformance suite: the same tests for every crypto-layer
 * component. argv[1] names the component ("noise", "ecies", "plaintext",
 * or a registered protocol id; see conf.h).
 *
 * Handshakes run over an in-process pipe with a man in the middle
 * (gn_pipe.h) and over every reliable built-in transport: completion and
 * peer IDs, early muxer agreement, large and fragmented payloads both ways,
 * expected-peer mismatch, a tampered byte at every position of every
 * handshake message and of a transport frame, truncation, clean and cut
 * ends, cleartext on the wire, oversize input, garbage and timeout.
 *
 * What to expect comes from the component's capability bits
 * (GN_CRYPTO_CAP_*), never from its name.
 */
#include "golemnet/golemnet.h"

#include "conf.h"
#include "gn_pipe.h"
#include "gn_test.h"

static const gn_crypto_ops *ops;    /* the component under test */

#define NEED_CAP(bit)                                                                        \
    do {                                                                                     \
        if (!(ops->caps & (bit)))                                                            \
            SKIP("not " #bit);                                                               \
    } while (0)

/* ---- harness ---------------------------------------------------------- */

typedef struct side {
    gn_crypto *c;
    gn_identity *id;
    int status;          /* 1 = pending, 0 = ok, < 0 = error */
    gn_stream *secured;
    gn_peer_id remote;
    char early[GN_PROTOCOL_ID_MAX];
    /* received application bytes */
    uint8_t *rx;
    size_t rx_len, rx_cap;
    bool eof;
    int err;
    int closed;
    bool got_peer;       /* GN_EPEERID came with the peer proven (in remote) */
    bool res_on_error;   /* another error came with a result */
} side;

static gn_loop *loop;

static void on_secured(void *arg, int status, const gn_secure_result *res)
{
    side *s = arg;
    s->status = status;
    if (status == 0) {
        s->secured = res->stream;
        s->remote = res->remote_peer;
        snprintf(s->early, sizeof s->early, "%s", res->early_muxer);
    } else if (status == GN_EPEERID && res && !res->stream && !res->early_muxer[0]) {
        s->got_peer = true;
        s->remote = res->remote_peer;
    } else if (res) {
        s->res_on_error = true;
    }
}

static void on_data(gn_stream *st, void *ud, const uint8_t *d, size_t n)
{
    (void)st;
    side *s = ud;
    if (s->rx_len + n > s->rx_cap) {
        s->rx_cap = (s->rx_len + n) * 2;
        s->rx = realloc(s->rx, s->rx_cap);
    }
    memcpy(s->rx + s->rx_len, d, n);
    s->rx_len += n;
}
static void on_eof(gn_stream *st, void *ud) { (void)st; ((side *)ud)->eof = true; }
static void on_error(gn_stream *st, void *ud, int err) { (void)st; ((side *)ud)->err = err; }
static const gn_stream_handler handler = {on_data, on_eof, on_error, NULL};

static void on_closed(gn_stream *st, void *arg) { (void)st; ((side *)arg)->closed++; }

static bool guard_fired;
static void guard(gn_timer *t, void *arg) { (void)t, (void)arg; guard_fired = true; }

/* Runs the loop until *done is true (or the predicate), at most @ms. */
static bool run_until(bool (*pred)(void *), void *arg, gn_time ms)
{
    gn_timer g;
    gn_timer_init(loop, &g);
    guard_fired = false;
    gn_timer_start(&g, ms * GN_MS, guard, NULL);
    for (int i = 0; i < 10000000 && !pred(arg) && !guard_fired; i++)
        gn_loop_run(loop, GN_RUN_ONCE);
    gn_timer_stop(&g);
    return pred(arg);
}

static bool both_done(void *arg)
{
    side *s = arg;
    return s[0].status != 1 && s[1].status != 1;
}

static void side_init(side *s, uint32_t seed, gn_time timeout)
{
    memset(s, 0, sizeof *s);
    s->status = 1;
    CHECK_OK(gn_identity_from_int_seed(seed, &s->id));
    gn_crypto_config cfg;
    gn_crypto_config_default(&cfg);
    cfg.handshake_timeout = timeout;
    CHECK_OK(gn_crypto_new(ops, loop, s->id, &cfg, &s->c));
}

static bool closed_pred(void *arg)
{
    side *s = arg;
    return s->closed > 0;
}

/* Closes whatever the side holds and frees it. */
static void side_fini(side *s, gn_stream *raw_if_unsecured)
{
    if (s->secured) {
        gn_stream_close(s->secured, on_closed, s);
        run_until(closed_pred, s, 2000);
    } else if (raw_if_unsecured && s->status == 1) {
        /* the handshake is still running: it owns the raw stream; let it time out */
    }
    gn_crypto_free(s->c);
    gn_identity_free(s->id);
    free(s->rx);
}

/*
 * Starts both handshakes over a fresh pipe. a = initiator. @flip: byte
 * offsets per direction the man in the middle alters (-1: none). They are
 * armed before the handshakes start, because the initiator writes its
 * first message from inside gn_crypto_secure().
 */
static gn_rcmgr_span *responder_span; /* gn_secure_params.span of the responder */

static gn_pipe *start_pair_mitm(side *s, const gn_peer_id *expect, long flip0, long flip1)
{
    gn_stream *ra, *rb;
    gn_pipe *p = gn_pipe_new(loop, &ra, &rb);
    p->flip_at[0] = flip0;
    p->flip_at[1] = flip1;
    gn_secure_params pa = {.initiator = true, .expected_peer = expect};
    gn_secure_params pb = {.initiator = false, .span = responder_span};
    static const char *const muxers[] = {"/yamux/1.0.0", "/mplex/6.7.0"};
    pa.early_muxers = muxers;
    pa.n_early_muxers = 2;
    pb.early_muxers = muxers + 1; /* responder supports only mplex */
    pb.n_early_muxers = 1;
    CHECK_OK(gn_crypto_secure(s[0].c, ra, &pa, on_secured, &s[0], NULL));
    CHECK_OK(gn_crypto_secure(s[1].c, rb, &pb, on_secured, &s[1], NULL));
    return p;
}

static gn_pipe *start_pair(side *s, const gn_peer_id *expect)
{
    return start_pair_mitm(s, expect, -1, -1);
}

static size_t rx_target;
static bool rx_reached(void *arg)
{
    side *s = arg;
    return s->rx_len >= rx_target || s->err != 0 || s->eof;
}

static void written_cb(void *arg, int status)
{
    int *st = arg;
    *st = status;
}

/* Writes @len bytes of a pattern from a to b and checks they arrive intact. */
static void transfer(side *from, side *to, size_t len, size_t iov_pieces)
{
    uint8_t *buf = malloc(len);
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(i * 7 + (i >> 11));
    gn_slice iov[16];
    size_t per = len / iov_pieces, off = 0;
    for (size_t i = 0; i < iov_pieces; i++) {
        size_t n = i + 1 == iov_pieces ? len - off : per;
        iov[i] = gn_slice_of(buf + off, n);
        off += n;
    }
    int wst = 1;
    to->rx_len = 0;
    CHECK_OK(gn_stream_write(from->secured, iov, iov_pieces, written_cb, &wst));
    rx_target = len;
    CHECK(run_until(rx_reached, to, 20000));
    CHECK_EQ(to->err, 0);
    CHECK_EQ(to->rx_len, len);
    CHECK_MEM(to->rx, buf, len);
    for (int i = 0; i < 1000 && wst == 1; i++)
        gn_loop_run(loop, GN_RUN_NOWAIT);
    CHECK_EQ(wst, 0);
    free(buf);
}

static void start_reading(side *s)
{
    gn_stream_set_handler(s->secured, &handler, s);
    CHECK_OK(gn_stream_read_start(s->secured));
}

/* ---- tests -------------------------------------------------------------- */

GN_TEST(capabilities_declared)
{
    printf("# %s, caps 0x%x\n", ops->name, (unsigned)ops->caps);
    CHECK_EQ(ops->caps & ~(uint32_t)GN_CRYPTO_CAP_ALL, 0);
}

GN_TEST(handshake_and_identities)
{
    side s[2];
    side_init(&s[0], 1, 5 * GN_S);
    side_init(&s[1], 2, 5 * GN_S);
    gn_peer_id pid_a, pid_b;
    gn_identity_peer_id(s[0].id, &pid_a);
    gn_identity_peer_id(s[1].id, &pid_b);
    start_pair(s, &pid_b);
    CHECK(run_until(both_done, s, 5000));
    CHECK_EQ(s[0].status, 0);
    CHECK_EQ(s[1].status, 0);
    CHECK(gn_peer_id_equal(&s[0].remote, &pid_b));
    CHECK(gn_peer_id_equal(&s[1].remote, &pid_a));
    /* the secured stream answers queries about itself */
    char proto[GN_PROTOCOL_ID_MAX];
    CHECK_OK(gn_stream_query(s[0].secured, GN_QUERY_SECURITY, proto, sizeof proto));
    CHECK_STR(proto, ops->name);
    gn_peer_id q;
    CHECK_OK(gn_stream_query(s[1].secured, GN_QUERY_REMOTE_PEER_ID, &q, sizeof q));
    CHECK(gn_peer_id_equal(&q, &pid_a));
    /* early muxer negotiation: the initiator's first choice the responder
     * also offers wins; without the capability, none is agreed */
    printf("# early muxer: \"%s\"\n", s[0].early);
    if (ops->caps & GN_CRYPTO_CAP_EARLY_MUXER) {
        CHECK_STR(s[0].early, "/mplex/6.7.0");
        CHECK_STR(s[1].early, "/mplex/6.7.0");
    } else {
        CHECK_STR(s[0].early, "");
        CHECK_STR(s[1].early, "");
    }
    start_reading(&s[0]);
    start_reading(&s[1]);
    transfer(&s[0], &s[1], 5, 1);
    transfer(&s[1], &s[0], 5, 1);
    side_fini(&s[0], NULL);
    side_fini(&s[1], NULL);
}

GN_TEST(large_payloads_both_ways)
{
    side s[2];
    side_init(&s[0], 1, 5 * GN_S);
    side_init(&s[1], 2, 5 * GN_S);
    start_pair(s, NULL);
    CHECK(run_until(both_done, s, 5000));
    CHECK_EQ(s[0].status, 0);
    CHECK_EQ(s[1].status, 0);
    start_reading(&s[0]);
    start_reading(&s[1]);
    transfer(&s[0], &s[1], 3u << 20, 7);
    transfer(&s[1], &s[0], (1u << 20) + 12345, 3);
    transfer(&s[0], &s[1], 65519, 1);
    transfer(&s[0], &s[1], 65520, 2);
    side_fini(&s[0], NULL);
    side_fini(&s[1], NULL);
}

GN_TEST(fragmented_delivery)
{
    side s[2];
    side_init(&s[0], 1, 5 * GN_S);
    side_init(&s[1], 2, 5 * GN_S);
    gn_pipe *p = start_pair(s, NULL);
    p->chunk = 1; /* every byte arrives on its own */
    CHECK(run_until(both_done, s, 10000));
    CHECK_EQ(s[0].status, 0);
    CHECK_EQ(s[1].status, 0);
    start_reading(&s[0]);
    start_reading(&s[1]);
    transfer(&s[0], &s[1], 3000, 3);
    p->chunk = 777;
    transfer(&s[1], &s[0], 200000, 5);
    side_fini(&s[0], NULL);
    side_fini(&s[1], NULL);
}

GN_TEST(expected_peer_mismatch)
{
    side s[2];
    side_init(&s[0], 1, 2 * GN_S);
    side_init(&s[1], 2, 2 * GN_S);
    gn_identity *other;
    CHECK_OK(gn_identity_from_int_seed(3, &other));
    gn_peer_id wrong;
    gn_identity_peer_id(other, &wrong);
    gn_identity_free(other);
    start_pair(s, &wrong);
    CHECK(run_until(both_done, s, 5000));
    CHECK_EQ(s[0].status, GN_EPEERID);
    /* the initiator learns whom it reached instead (crypto.h, ABI revision 4;
     * every built-in component reports it) */
    CHECK(s[0].got_peer);
    CHECK(!s[0].res_on_error && !s[1].res_on_error);
    gn_peer_id real;
    gn_identity_peer_id(s[1].id, &real);
    CHECK(gn_peer_id_equal(&s[0].remote, &real));
    if (s[1].status == 0) {
        /* the responder may finish first (plaintext sends both messages at
         * once); it must then see the connection go away */
        start_reading(&s[1]);
        rx_target = 1;
        CHECK(run_until(rx_reached, &s[1], 2000));
        CHECK(s[1].eof || s[1].err < 0);
        CHECK_EQ(s[1].rx_len, 0);
    } else {
        CHECK(s[1].status < 0);
    }
    printf("# responder saw %s\n", gn_err_name(s[1].status));
    side_fini(&s[0], NULL);
    side_fini(&s[1], NULL);
}

/*
 * Bytes each direction carries during a clean handshake: the most seen in a
 * few runs, since a handshake's length varies (ECDSA signatures in TLS) and
 * the tail bytes of a longer one must be tampered with too.
 */
static size_t hs_bytes[2];

static void measure_handshake(void)
{
    hs_bytes[0] = hs_bytes[1] = 0;
    for (int run = 0; run < 4; run++) {
        side s[2];
        side_init(&s[0], 1, 5 * GN_S);
        side_init(&s[1], 2, 5 * GN_S);
        gn_pipe *p = start_pair(s, NULL);
        CHECK(run_until(both_done, s, 5000));
        for (int d = 0; d < 2; d++) {
            if (p->end[d].written > hs_bytes[d])
                hs_bytes[d] = p->end[d].written;
        }
        side_fini(&s[0], NULL);
        side_fini(&s[1], NULL);
    }
}

GN_TEST(tampered_handshake_byte_at_every_position)
{
    NEED_CAP(GN_CRYPTO_CAP_INTEGRITY);
    measure_handshake();
    printf("# handshake bytes: %zu initiator->responder, %zu back\n", hs_bytes[0], hs_bytes[1]);
    CHECK(hs_bytes[0] > 0 && hs_bytes[1] > 0);
    size_t runs = 0, unreached = 0, codes[4] = {0};
    for (int dir = 0; dir < 2; dir++) {
        for (size_t k = 0; k < hs_bytes[dir]; k++) {
            side s[2];
            side_init(&s[0], 1, 100 * GN_MS);
            side_init(&s[1], 2, 100 * GN_MS);
            gn_pipe *tp =
                start_pair_mitm(s, NULL, dir == 0 ? (long)k : -1, dir == 1 ? (long)k : -1);
            CHECK(run_until(both_done, s, 3000));
            if (s[0].status == 0 && s[1].status == 0 && tp->end[dir].written <= k) {
                /* this run's handshake was shorter (variable-length ECDSA
                 * signatures, as in TLS): the byte was never flipped */
                unreached++;
                side_fini(&s[0], NULL);
                side_fini(&s[1], NULL);
                continue;
            }
            /* never may both sides believe they share a channel */
            if (s[0].status == 0 && s[1].status == 0) {
                printf("# byte %zu of direction %d flipped undetected\n", k, dir);
                CHECK(!(s[0].status == 0 && s[1].status == 0));
            }
            int err = s[0].status < 0 ? s[0].status : s[1].status;
            CHECK(err < 0 && gn_err_band(err) >= 0);
            if (gn_err_band(err) >= 0)
                codes[gn_err_band(err)]++;
            side_fini(&s[0], NULL);
            side_fini(&s[1], NULL);
            runs++;
        }
    }
    printf("# %zu tampered handshakes; failures by band: generic %zu, io %zu, crypto %zu, "
           "peer %zu; %zu offsets past a shorter handshake\n", runs, codes[0], codes[1], codes[2],
           codes[3], unreached);
    CHECK(unreached < 16); /* only the tail of a variable-length handshake */
}

GN_TEST(tampered_transport_frame_at_every_position)
{
    NEED_CAP(GN_CRYPTO_CAP_INTEGRITY);
    measure_handshake();
    const size_t msg = 100;
    size_t frame_len = 0;
    /* learn the frame size of a 100-byte message */
    {
        side s[2];
        side_init(&s[0], 1, 5 * GN_S);
        side_init(&s[1], 2, 5 * GN_S);
        gn_pipe *p = start_pair(s, NULL);
        CHECK(run_until(both_done, s, 5000));
        start_reading(&s[1]);
        size_t before = p->end[0].written;
        transfer(&s[0], &s[1], msg, 1);
        frame_len = p->end[0].written - before;
        side_fini(&s[0], NULL);
        side_fini(&s[1], NULL);
    }
    CHECK(frame_len > msg);
    size_t stalled = 0;
    for (size_t k = 0; k < frame_len; k++) {
        side s[2];
        side_init(&s[0], 1, 5 * GN_S);
        side_init(&s[1], 2, 5 * GN_S);
        gn_pipe *p = start_pair(s, NULL);
        CHECK(run_until(both_done, s, 5000));
        CHECK_EQ(s[0].status, 0);
        start_reading(&s[1]);
        p->flip_at[0] = (long)(p->end[0].written + k);
        uint8_t buf[100];
        memset(buf, 0x5a, sizeof buf);
        gn_slice iov = gn_slice_of(buf, sizeof buf);
        int wst = 1;
        CHECK_OK(gn_stream_write(s[0].secured, &iov, 1, written_cb, &wst));
        rx_target = msg;
        run_until(rx_reached, &s[1], 300);
        if (s[1].err == 0 && s[1].rx_len == 0 && !s[1].eof) {
            /* A length prefix altered to a larger value leaves the receiver
             * waiting for the rest of the frame (nothing is delivered). When
             * the sender ends its side, the frame is truncated: an error. */
            stalled++;
            CHECK_OK(gn_stream_shutdown(s[0].secured));
            run_until(rx_reached, &s[1], 2000);
        }
        /* the receiver reports an error and never delivers altered bytes */
        CHECK(s[1].err < 0);
        for (size_t i = 0; i < s[1].rx_len; i++)
            CHECK_EQ(s[1].rx[i], 0x5a);
        CHECK(s[1].rx_len < msg);
        side_fini(&s[0], NULL);
        side_fini(&s[1], NULL);
    }
    printf("# %zu tampered frames rejected (%zu of them when the sender ended the stream)\n",
           frame_len, stalled);
}

GN_TEST(truncated_frame_is_an_error)
{
    NEED_CAP(GN_CRYPTO_CAP_INTEGRITY);
    side s[2];
    side_init(&s[0], 1, 5 * GN_S);
    side_init(&s[1], 2, 5 * GN_S);
    gn_pipe *p = start_pair(s, NULL);
    CHECK(run_until(both_done, s, 5000));
    CHECK_EQ(s[1].status, 0);
    start_reading(&s[1]);
    p->cut_after[0] = (long)(p->end[0].written + 50); /* half a frame, then EOF */
    uint8_t buf[1000] = {0};
    gn_slice iov = gn_slice_of(buf, sizeof buf);
    int wst = 1;
    CHECK_OK(gn_stream_write(s[0].secured, &iov, 1, written_cb, &wst));
    rx_target = sizeof buf;
    run_until(rx_reached, &s[1], 2000);
    CHECK_EQ(s[1].rx_len, 0);
    CHECK(!s[1].eof);
    CHECK(s[1].err < 0);
    printf("# truncation: %s\n", gn_err_name(s[1].err));
    side_fini(&s[0], NULL);
    side_fini(&s[1], NULL);
}

/* A clean half-close arrives as end of data after all the data, never as an
 * error (for ECIES this is the authenticated CLOSE frame), and the other
 * direction keeps working. */
GN_TEST(clean_shutdown_is_eof)
{
    side s[2];
    side_init(&s[0], 1, 5 * GN_S);
    side_init(&s[1], 2, 5 * GN_S);
    start_pair(s, NULL);
    CHECK(run_until(both_done, s, 5000));
    CHECK_EQ(s[0].status, 0);
    CHECK_EQ(s[1].status, 0);
    start_reading(&s[0]);
    start_reading(&s[1]);
    uint8_t buf[3000];
    memset(buf, 0x33, sizeof buf);
    gn_slice iov = gn_slice_of(buf, sizeof buf);
    int wst = 1;
    CHECK_OK(gn_stream_write(s[0].secured, &iov, 1, written_cb, &wst));
    CHECK_OK(gn_stream_shutdown(s[0].secured));
    rx_target = sizeof buf + 1; /* run until eof or error */
    CHECK(run_until(rx_reached, &s[1], 2000));
    CHECK_EQ(s[1].err, 0);
    CHECK(s[1].eof);
    CHECK_EQ(s[1].rx_len, sizeof buf);
    CHECK_EQ(wst, 0);
    /* half-closed: the other way still carries data */
    transfer(&s[1], &s[0], 70000, 2);
    CHECK(!s[0].eof);
    side_fini(&s[0], NULL);
    side_fini(&s[1], NULL);
}

/* The stream below ends at a frame boundary without a close frame: with an
 * authenticated close that is an error (a cut must not pass for a clean
 * end), otherwise EOF. Data before the cut arrives either way. */
GN_TEST(cut_at_frame_boundary)
{
    side s[2];
    side_init(&s[0], 1, 5 * GN_S);
    side_init(&s[1], 2, 5 * GN_S);
    gn_pipe *p = start_pair(s, NULL);
    CHECK(run_until(both_done, s, 5000));
    CHECK_EQ(s[1].status, 0);
    start_reading(&s[1]);
    transfer(&s[0], &s[1], 100, 1);
    /* the next frame is swallowed and the direction ends */
    p->cut_after[0] = (long)p->end[0].written;
    uint8_t buf[100] = {0};
    gn_slice iov = gn_slice_of(buf, sizeof buf);
    int wst = 1;
    CHECK_OK(gn_stream_write(s[0].secured, &iov, 1, written_cb, &wst));
    rx_target = 2 * sizeof buf;
    CHECK(run_until(rx_reached, &s[1], 2000));
    CHECK_EQ(s[1].rx_len, sizeof buf);
    if (ops->caps & GN_CRYPTO_CAP_AUTH_CLOSE) {
        CHECK(!s[1].eof);
        CHECK_EQ(s[1].err, GN_EEOF);
    } else {
        CHECK(s[1].eof);
        CHECK_EQ(s[1].err, 0);
    }
    side_fini(&s[0], NULL);
    side_fini(&s[1], NULL);
}

/* True if @needle (@nlen > 0 bytes) occurs in @hay. */
static bool contains(const uint8_t *hay, size_t hlen, const void *needle, size_t nlen)
{
    for (size_t i = 0; i + nlen <= hlen; i++)
        if (memcmp(hay + i, needle, nlen) == 0)
            return true;
    return false;
}

/* Application bytes on the wire: never in clear with confidentiality. */
GN_TEST(no_cleartext_on_the_wire)
{
    side s[2];
    side_init(&s[0], 1, 5 * GN_S);
    side_init(&s[1], 2, 5 * GN_S);
    gn_pipe *p = start_pair(s, NULL);
    CHECK(run_until(both_done, s, 5000));
    CHECK_EQ(s[0].status, 0);
    CHECK_EQ(s[1].status, 0);
    /* let the handshake's bytes be delivered: the receiver's inbox then
     * holds only what the next write puts on the wire */
    for (int i = 0; i < 100; i++)
        gn_loop_run(loop, GN_RUN_NOWAIT);
    CHECK_EQ(p->end[1].inbox_len, 0);
    static const char secret[] = "a secret that must not be seen on the wire";
    gn_slice iov = gn_slice_of(secret, sizeof secret - 1);
    int wst = 1;
    /* the frame goes below within the write call; delivery is deferred */
    CHECK_OK(gn_stream_write(s[0].secured, &iov, 1, written_cb, &wst));
    const gn_pipe_end *wire = &p->end[1];
    CHECK(wire->inbox_len >= sizeof secret - 1);
    bool seen = contains(wire->inbox, wire->inbox_len, secret, sizeof secret - 1);
    printf("# %zu bytes on the wire, cleartext %s\n", wire->inbox_len, seen ? "seen" : "not seen");
    if (ops->caps & GN_CRYPTO_CAP_CONFIDENTIALITY)
        CHECK(!seen);
    side_fini(&s[0], NULL);
    side_fini(&s[1], NULL);
}

static bool victim_done(void *arg)
{
    return ((side *)arg)->status != 1;
}

/* Feeds @len bytes of @data as the "initiator" to a responder. */
static int feed_responder(const uint8_t *data, size_t len, gn_time timeout)
{
    side v;
    side_init(&v, 2, timeout);
    gn_stream *ra, *rb;
    gn_pipe_new(loop, &ra, &rb);
    gn_secure_params pb = {.initiator = false};
    CHECK_OK(gn_crypto_secure(v.c, rb, &pb, on_secured, &v, NULL));
    if (len > 0) {
        gn_slice iov = gn_slice_of(data, len);
        CHECK_OK(gn_stream_write(ra, &iov, 1, NULL, NULL));
    }
    CHECK(run_until(victim_done, &v, 5000));
    int st = v.status;
    gn_stream_close(ra, NULL, NULL);
    run_until(victim_done, &v, 50);
    side_fini(&v, NULL);
    return st;
}

GN_TEST(oversize_and_garbage_handshake_input)
{
    uint8_t *big = malloc(200000);
    memset(big, 0xff, 200000);
    int st = feed_responder(big, 200000, 2 * GN_S);
    printf("# 200000 bytes of 0xff: %s\n", gn_err_name(st));
    CHECK(st < 0);
    CHECK(st != GN_ETIMEDOUT);
    uint32_t x = 12345;
    for (int round = 0; round < 50; round++) {
        size_t len = 1 + (x % 300);
        for (size_t i = 0; i < len; i++) {
            x = x * 1103515245u + 12345u;
            big[i] = (uint8_t)(x >> 16);
        }
        st = feed_responder(big, len, 100 * GN_MS);
        CHECK(st < 0 && gn_err_band(st) >= 0);
    }
    free(big);
}

GN_TEST(timeout_when_peer_is_silent)
{
    int st = feed_responder(NULL, 0, 150 * GN_MS);
    CHECK_EQ(st, GN_ETIMEDOUT);
}

/* ---- over real transports ------------------------------------------------ */

typedef struct tconn {
    side *s;
    const gn_secure_params *params;
    int dial_status;
} tconn;

static void accepted(void *arg, gn_listener *l, int status, gn_stream *conn)
{
    (void)l;
    tconn *t = arg;
    if (status < 0)
        return;
    if (gn_crypto_secure(t->s->c, conn, t->params, on_secured, t->s, NULL) < 0)
        gn_stream_close(conn, NULL, NULL);
}

static void dialed(void *arg, int status, gn_stream *conn)
{
    tconn *t = arg;
    t->dial_status = status;
    if (status == 0 && gn_crypto_secure(t->s->c, conn, t->params, on_secured, t->s, NULL) < 0)
        gn_stream_close(conn, NULL, NULL);
}

static bool listener_closed;
static void on_listener_closed(gn_listener *l, void *arg)
{
    (void)l, (void)arg;
    listener_closed = true;
}
static bool lc_pred(void *arg)
{
    (void)arg;
    return listener_closed;
}

/* One handshake and transfers over a connection of the transport @tops. */
static void over_transport(const gn_transport_ops *tops)
{
    printf("# over %s (%s)\n", tops->name, tops->test_listen_addr);
    gn_transport *t;
    CHECK_OK(gn_transport_new(tops, loop, NULL, &t));
    side s[2];
    side_init(&s[0], 1, 5 * GN_S);
    side_init(&s[1], 2, 5 * GN_S);
    gn_peer_id pid_b;
    gn_identity_peer_id(s[1].id, &pid_b);
    gn_secure_params pa = {.initiator = true, .expected_peer = &pid_b};
    gn_secure_params pb = {.initiator = false};
    tconn ta = {&s[0], &pa, 1}, tb = {&s[1], &pb, 1};
    gn_multiaddr *lma, *bound;
    CHECK_OK(gn_multiaddr_parse(tops->test_listen_addr, &lma));
    gn_listener *l;
    CHECK_OK(gn_transport_listen(t, lma, accepted, &tb, &l));
    CHECK_OK(gn_listener_addr(l, &bound));
    CHECK_OK(gn_transport_dial(t, bound, dialed, &ta, NULL));
    CHECK(run_until(both_done, s, 5000));
    CHECK_EQ(ta.dial_status, 0);
    CHECK_EQ(s[0].status, 0);
    CHECK_EQ(s[1].status, 0);
    start_reading(&s[0]);
    start_reading(&s[1]);
    transfer(&s[0], &s[1], 1u << 20, 2);
    transfer(&s[1], &s[0], 70000, 1);
    side_fini(&s[0], NULL);
    side_fini(&s[1], NULL);
    listener_closed = false;
    gn_listener_close(l, on_listener_closed, NULL);
    CHECK(run_until(lc_pred, NULL, 2000));
    for (int i = 0; i < 100; i++)
        gn_loop_run(loop, GN_RUN_NOWAIT);
    gn_transport_free(t);
    gn_multiaddr_free(lma);
    gn_multiaddr_free(bound);
}

static int cancel_calls;
static void on_secured_counted(void *arg, int status, const gn_secure_result *res)
{
    cancel_calls++;
    on_secured(arg, status, res);
}

static bool status_set(void *arg)
{
    return ((side *)arg)->status != 1;
}

static bool peer_ended(void *arg)
{
    side *s = arg;
    return s->eof || s->err != 0;
}

/* A handshake cancelled while the peer is silent: the callback runs once,
 * from the loop, with GN_ECANCELED; the raw stream is closed (the peer sees
 * it end); the timeout (10 s) never fires afterwards. */
GN_TEST(cancel_while_peer_is_silent)
{
    side s[2];
    side_init(&s[0], 71, 10 * GN_S);
    memset(&s[1], 0, sizeof s[1]);
    gn_stream *ra, *rb;
    gn_pipe_new(loop, &ra, &rb);
    gn_stream_set_handler(rb, &handler, &s[1]);
    CHECK_OK(gn_stream_read_start(rb));
    gn_secure_params pa = {.initiator = true};
    gn_op *op = NULL;
    cancel_calls = 0;
    CHECK_OK(gn_crypto_secure(s[0].c, ra, &pa, on_secured_counted, &s[0], &op));
    CHECK(op != NULL);
    for (int i = 0; i < 20; i++)
        gn_loop_run(loop, GN_RUN_NOWAIT);
    CHECK_EQ(s[0].status, 1);
    gn_op_cancel(op);
    gn_op_cancel(op); /* again before the completion: a no-op */
    CHECK_EQ(cancel_calls, 0); /* never from inside the cancel */
    CHECK(run_until(status_set, &s[0], 1000));
    CHECK_EQ(s[0].status, GN_ECANCELED);
    CHECK(s[0].secured == NULL);
    CHECK(run_until(peer_ended, &s[1], 1000));
    for (int i = 0; i < 20; i++)
        gn_loop_run(loop, GN_RUN_NOWAIT);
    CHECK_EQ(cancel_calls, 1);
    gn_stream_close(rb, on_closed, &s[1]);
    CHECK(run_until(closed_pred, &s[1], 1000));
    free(s[1].rx);
    side_fini(&s[0], NULL);
}

/* gn_crypto_secure's immediate errors leave *op NULL. */
/* ---- memory accounting (gn_secure_set_rcmgr) ----------------------------- */

static void on_data_pause(gn_stream *st, void *ud, const uint8_t *d, size_t n)
{
    on_data(st, ud, d, n);
    gn_stream_read_stop(st); /* the rest of the delivery waits in the driver */
}
static const gn_stream_handler pausing = {on_data_pause, on_eof, on_error, NULL};

static uint64_t span_mem(const gn_rcmgr_span *sp)
{
    gn_rcmgr_usage u;
    gn_rcmgr_span_stat(sp, &u);
    return u.memory;
}

static bool got_some(void *arg) { return ((side *)arg)->rx_len > 0 || ((side *)arg)->err; }
static bool got_error(void *arg) { return ((side *)arg)->err != 0; }

GN_TEST(buffers_accounted_in_a_span)
{
    side s[2];
    side_init(&s[0], 1, 5 * GN_S);
    side_init(&s[1], 2, 5 * GN_S);
    start_pair(s, NULL);
    CHECK(run_until(both_done, s, 5000));
    CHECK_EQ(s[0].status, 0);
    CHECK_EQ(s[1].status, 0);
    gn_rcmgr_limits l;
    gn_rcmgr_limits_default(&l);
    gn_rcmgr *rm;
    CHECK_OK(gn_rcmgr_new(&l, &rm));
    gn_rcmgr_conn *conn;
    CHECK_OK(gn_rcmgr_open_conn(rm, GN_RCMGR_INBOUND, false, NULL, 0, &conn));
    gn_rcmgr_span *sp = gn_rcmgr_conn_span(conn);

    /* only the driver's own streams can be accounted */
    CHECK_EQ(gn_secure_set_rcmgr(NULL, sp), GN_EINVAL);
    gn_stream *x, *y;
    (void)gn_pipe_new(loop, &x, &y);
    CHECK_EQ(gn_secure_set_rcmgr(x, sp), GN_ENOTSUP);
    side dummy = {0};
    gn_stream_close(x, on_closed, &dummy);
    gn_stream_close(y, on_closed, &dummy);

    /* attaching reserves at least one cipher frame */
    CHECK_OK(gn_secure_set_rcmgr(s[1].secured, sp));
    const uint64_t m0 = span_mem(sp);
    CHECK(m0 > 0);
    gn_rcmgr_usage sys;
    CHECK_OK(gn_rcmgr_stat(rm, GN_RCMGR_SCOPE_SYSTEM, NULL, 0, &sys));
    CHECK_EQ(sys.memory, m0); /* in every scope of the span's chain */

    /* A cipher with integrity opens whole frames, so when the consumer
     * stops reading, the rest of a delivery (the pipe delivers up to 64
     * KiB) waits in the driver: that ciphertext is reserved. A cipher
     * without framing hands over each delivery whole. */
    const bool framed = (ops->caps & GN_CRYPTO_CAP_INTEGRITY) != 0;
    gn_stream_set_handler(s[1].secured, &pausing, &s[1]);
    CHECK_OK(gn_stream_read_start(s[1].secured));
    const size_t len = 256u << 10;
    uint8_t *buf = malloc(len);
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(i * 7);
    gn_slice iov = gn_slice_of(buf, len);
    int wst = 1;
    CHECK_OK(gn_stream_write(s[0].secured, &iov, 1, written_cb, &wst));
    CHECK(run_until(got_some, &s[1], 5000));
    for (int i = 0; i < 100; i++)
        gn_loop_run(loop, GN_RUN_NOWAIT);
    const uint64_t m1 = span_mem(sp);
    if (framed) {
        CHECK(m1 > m0);
        CHECK(m1 <= m0 + (64u << 10)); /* one delivery, in a buffer of its size */
    } else {
        CHECK_EQ(m1, m0);
    }
    /* reading again drains it; the emptied buffer is not kept */
    gn_stream_set_handler(s[1].secured, &handler, &s[1]);
    CHECK_OK(gn_stream_read_start(s[1].secured));
    rx_target = len;
    CHECK(run_until(rx_reached, &s[1], 20000));
    CHECK_EQ(s[1].rx_len, len);
    CHECK_MEM(s[1].rx, buf, len);
    CHECK_EQ(span_mem(sp), m0);

    /* detaching releases everything; attaching again reserves again */
    CHECK_OK(gn_secure_set_rcmgr(s[1].secured, NULL));
    CHECK_EQ(span_mem(sp), 0);
    CHECK_OK(gn_secure_set_rcmgr(s[1].secured, sp));
    const uint64_t m2 = span_mem(sp);
    CHECK(m2 > 0);

    /* over the connection's limit: a write is refused with nothing taken,
     * and received data that cannot be reserved fails the stream */
    l.conn.memory = m2 + 1024;
    CHECK_OK(gn_rcmgr_set_limits(rm, &l));
    gn_slice small = gn_slice_of(buf, 32768);
    int wst2 = 1;
    CHECK_EQ(gn_stream_write(s[1].secured, &small, 1, written_cb, &wst2), GN_ERESOURCE);
    CHECK_EQ(wst2, 1);
    CHECK_EQ(span_mem(sp), m2);
    CHECK_EQ(m2, m0);
    if (framed) {
        gn_stream_set_handler(s[1].secured, &pausing, &s[1]);
        s[1].rx_len = 0;
        wst = 1;
        CHECK_OK(gn_stream_write(s[0].secured, &iov, 1, written_cb, &wst));
        CHECK(run_until(got_error, &s[1], 5000));
        CHECK_EQ(s[1].err, GN_ERESOURCE);
        CHECK(span_mem(sp) <= m2);
    }

    /* closing releases what the stream held */
    side_fini(&s[1], NULL);
    CHECK_EQ(span_mem(sp), 0);
    side_fini(&s[0], NULL);
    CHECK(run_until(closed_pred, &dummy, 2000));
    gn_rcmgr_conn_done(conn);
    gn_rcmgr_free(rm);
    free(buf);
}

GN_TEST(handshake_input_accounted_in_a_span)
{
    gn_rcmgr_limits l;
    gn_rcmgr_limits_default(&l);
    gn_rcmgr *rm;
    CHECK_OK(gn_rcmgr_new(&l, &rm));
    gn_rcmgr_conn *conn;
    CHECK_OK(gn_rcmgr_open_conn(rm, GN_RCMGR_INBOUND, false, NULL, 0, &conn));
    gn_rcmgr_span *sp = gn_rcmgr_conn_span(conn);

    /* a handshake within the limits completes and gives everything back */
    side s[2];
    side_init(&s[0], 1, 5 * GN_S);
    side_init(&s[1], 2, 5 * GN_S);
    responder_span = sp;
    start_pair(s, NULL);
    CHECK(run_until(both_done, s, 5000));
    CHECK_EQ(s[0].status, 0);
    CHECK_EQ(s[1].status, 0);
    CHECK_EQ(span_mem(sp), 0);
    gn_rcmgr_refusal ref;
    CHECK_EQ(gn_rcmgr_last_refusal(rm, &ref), GN_ENOTFOUND);
    side_fini(&s[0], NULL);
    side_fini(&s[1], NULL);

    /* a connection that may hold less than one buffered message: the
     * responder's handshake fails as soon as input must be kept */
    l.conn.memory = 256;
    CHECK_OK(gn_rcmgr_set_limits(rm, &l));
    side_init(&s[0], 1, 5 * GN_S);
    side_init(&s[1], 2, 5 * GN_S);
    start_pair(s, NULL);
    CHECK(run_until(both_done, s, 5000));
    responder_span = NULL;
    CHECK_EQ(s[1].status, GN_ERESOURCE);
    /* (the initiator may have completed first: plaintext sends both at once) */
    CHECK_EQ(span_mem(sp), 0);
    CHECK_OK(gn_rcmgr_last_refusal(rm, &ref));
    CHECK_EQ(ref.res, GN_RCMGR_RES_MEMORY);
    side_fini(&s[0], NULL);
    side_fini(&s[1], NULL);
    gn_rcmgr_conn_done(conn);
    gn_rcmgr_free(rm);
}

GN_TEST(cancel_handle_null_on_error)
{
    side s0;
    side_init(&s0, 72, 10 * GN_S);
    gn_op *op = (gn_op *)&s0;
    CHECK_EQ(gn_crypto_secure(s0.c, NULL, NULL, on_secured, &s0, &op), GN_EINVAL);
    CHECK(op == NULL);
    side_fini(&s0, NULL);
}

/* Over every reliable built-in transport a test can listen on. */
GN_TEST(over_every_reliable_transport)
{
    gn_registry *reg;
    CHECK_OK(gn_registry_new(&reg));
    CHECK_OK(gn_registry_add_builtins(reg));
    size_t runs = 0;
    for (size_t i = 0; i < gn_registry_count(reg, GN_LAYER_TRANSPORT); i++) {
        const gn_transport_ops *tops =
            (const gn_transport_ops *)gn_registry_get(reg, GN_LAYER_TRANSPORT, i);
        if ((tops->caps & GN_TRANSPORT_CAP_RELIABLE) && tops->test_listen_addr) {
            over_transport(tops);
            runs++;
        }
    }
    gn_registry_free(reg); /* ops tables are static */
    if (runs == 0)
        SKIP("no reliable transport with a test address is built in");
}

int main(int argc, char **argv)
{
    static const gn_test_case cases[] = {
        GN_T(capabilities_declared),
        GN_T(handshake_and_identities),
        GN_T(large_payloads_both_ways),
        GN_T(fragmented_delivery),
        GN_T(expected_peer_mismatch),
        GN_T(tampered_handshake_byte_at_every_position),
        GN_T(tampered_transport_frame_at_every_position),
        GN_T(truncated_frame_is_an_error),
        GN_T(clean_shutdown_is_eof),
        GN_T(cut_at_frame_boundary),
        GN_T(no_cleartext_on_the_wire),
        GN_T(oversize_and_garbage_handshake_input),
        GN_T(timeout_when_peer_is_silent),
        GN_T(cancel_while_peer_is_silent),
        GN_T(cancel_handle_null_on_error),
        GN_T(buffers_accounted_in_a_span),
        GN_T(handshake_input_accounted_in_a_span),
        GN_T(over_every_reliable_transport),
    };
    if (argc < 2) {
        fprintf(stderr, "usage: %s COMPONENT [filter]\n", argv[0]);
        return 2;
    }
    gn_registry *reg;
    if (gn_registry_new(&reg) < 0 || gn_registry_add_builtins(reg) < 0)
        return 1;
    ops = (const gn_crypto_ops *)conf_component(reg, GN_LAYER_CRYPTO, argv[1]);
    gn_registry_free(reg); /* ops tables are static */
    if (!ops) {
        printf("Bail out! no crypto component named %s is built in\n", argv[1]);
        return 1;
    }
    if (gn_loop_new(NULL, &loop) < 0)
        return 1;
    int rc = gn_test_run(cases, sizeof cases / sizeof cases[0], argc - 1, argv + 1);
    gn_loop_stop(loop);
    gn_loop_run(loop, GN_RUN_DEFAULT);
    gn_loop_free(loop);
    return rc;
}
