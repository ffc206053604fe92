/* /golem/msg/1.0.0: framing bytes, decoder bounds, reader/writer over the pipe. */
#include "golemnet/golemnet.h"
#include "msg.h"

#include "gn_pipe.h"
#include "gn_test.h"
#include "apps_test.h"

GN_TEST(header_bytes)
{
    /* multiformats unsigned-varint examples: 1 -> 01, 127 -> 7f, 128 -> 80 01,
       300 -> ac 02, 16384 -> 80 80 01 */
    uint8_t h[GNI_MSG_HEADER_MAX];
    CHECK_EQ(gni_msg_header_encode(0, h), 1);
    CHECK_EQ(h[0], 0x00);
    CHECK_EQ(gni_msg_header_encode(127, h), 1);
    CHECK_EQ(h[0], 0x7f);
    CHECK_EQ(gni_msg_header_encode(128, h), 2);
    CHECK_MEM(h, "\x80\x01", 2);
    CHECK_EQ(gni_msg_header_encode(300, h), 2);
    CHECK_MEM(h, "\xac\x02", 2);
    CHECK_EQ(gni_msg_header_encode(16384, h), 3);
    CHECK_MEM(h, "\x80\x80\x01", 3);
    CHECK_EQ(gni_msg_header_encode(1ULL << 63, h), GN_ERANGE);
}

/* A stream: version, "hello", an empty message, 300 bytes of 0x5a. */
static size_t sample(uint8_t *out)
{
    size_t n = 0;
    out[n++] = 0x01;
    out[n++] = 0x05;
    memcpy(out + n, "hello", 5);
    n += 5;
    out[n++] = 0x00;
    out[n++] = 0xac;
    out[n++] = 0x02;
    memset(out + n, 0x5a, 300);
    n += 300;
    return n;
}

static void check_sample_msgs(gn_rcbuf **m, int cnt)
{
    CHECK_EQ(cnt, 3);
    gn_slice s0 = gn_rcbuf_slice(m[0]), s1 = gn_rcbuf_slice(m[1]), s2 = gn_rcbuf_slice(m[2]);
    CHECK_EQ(s0.len, 5);
    CHECK_MEM(s0.base, "hello", 5);
    CHECK_EQ(s1.len, 0);
    CHECK_EQ(s2.len, 300);
    CHECK_EQ(s2.base[0], 0x5a);
    CHECK_EQ(s2.base[299], 0x5a);
    for (int i = 0; i < cnt; i++) {
        CHECK_EQ(gn_rcbuf_refcnt(m[i]), 1);
        gn_rcbuf_rele(m[i]);
    }
}

GN_TEST(decode_whole_and_byte_by_byte)
{
    uint8_t in[400];
    size_t n = sample(in);
    gni_msg_decoder d;
    gn_rcbuf *m[4];
    int cnt = 0;
    /* all at once: one message per call */
    CHECK_OK(gni_msg_decoder_init(&d, 0, true));
    size_t pos = 0;
    for (int guard = 0; guard < 10 && pos < n; guard++) {
        size_t used = 0;
        gn_rcbuf *msg = NULL;
        int rc = gni_msg_decode(&d, in + pos, n - pos, &used, &msg);
        CHECK(rc >= 0);
        pos += used;
        if (rc == 1)
            m[cnt++] = msg;
    }
    CHECK_EQ(pos, n);
    CHECK_OK(gni_msg_decode_eof(&d));
    check_sample_msgs(m, cnt);
    gni_msg_decoder_fini(&d);
    /* one byte at a time */
    CHECK_OK(gni_msg_decoder_init(&d, 0, true));
    cnt = 0;
    for (size_t i = 0; i < n; i++) {
        size_t used = 0;
        gn_rcbuf *msg = NULL;
        int rc = gni_msg_decode(&d, in + i, 1, &used, &msg);
        CHECK(rc >= 0);
        CHECK_EQ(used, 1);
        if (rc == 1)
            m[cnt++] = msg;
    }
    CHECK_OK(gni_msg_decode_eof(&d));
    check_sample_msgs(m, cnt);
    gni_msg_decoder_fini(&d);
}

/* Feeds @in whole (looping over messages); returns the first error or 0. */
static int feed_all(gni_msg_decoder *d, const uint8_t *in, size_t n)
{
    size_t pos = 0;
    for (int guard = 0; guard < 100; guard++) {
        size_t used = 0;
        gn_rcbuf *msg = NULL;
        int rc = gni_msg_decode(d, in + pos, n - pos, &used, &msg);
        pos += used;
        gn_rcbuf_rele(msg);
        if (rc <= 0)
            return rc;
    }
    return 0;
}

GN_TEST(decode_bad_input)
{
    gni_msg_decoder d;
    /* wrong version */
    CHECK_OK(gni_msg_decoder_init(&d, 0, true));
    CHECK_EQ(feed_all(&d, (const uint8_t *)"\x02\x01x", 3), GN_EVERSION);
    CHECK_EQ(feed_all(&d, (const uint8_t *)"\x01", 1), GN_EVERSION); /* sticky */
    CHECK_EQ(gni_msg_decode_eof(&d), GN_EVERSION);
    gni_msg_decoder_fini(&d);
    /* oversize: max 100, length 101 (0x65), refused before any body byte */
    CHECK_OK(gni_msg_decoder_init(&d, 100, true));
    CHECK_EQ(feed_all(&d, (const uint8_t *)"\x01\x64", 2), 0); /* 100 is fine */
    gni_msg_decoder_fini(&d);
    CHECK_OK(gni_msg_decoder_init(&d, 100, true));
    CHECK_EQ(feed_all(&d, (const uint8_t *)"\x01\x65", 2), GN_EFRAMESIZE);
    gni_msg_decoder_fini(&d);
    /* default bound: 1 MiB + 1 = 81 80 40 */
    CHECK_OK(gni_msg_decoder_init(&d, 0, true));
    CHECK_EQ(feed_all(&d, (const uint8_t *)"\x01\x81\x80\x40", 4), GN_EFRAMESIZE);
    gni_msg_decoder_fini(&d);
    /* a huge length: 9 bytes, 2^63 - 1 */
    CHECK_OK(gni_msg_decoder_init(&d, 0, false));
    CHECK_EQ(feed_all(&d, (const uint8_t *)"\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 9),
             GN_EFRAMESIZE);
    gni_msg_decoder_fini(&d);
    /* non-minimal length (80 00 = 0) */
    CHECK_OK(gni_msg_decoder_init(&d, 0, false));
    CHECK_EQ(feed_all(&d, (const uint8_t *)"\x80\x00", 2), GN_EBADFRAME);
    gni_msg_decoder_fini(&d);
    /* 9 bytes that all continue */
    CHECK_OK(gni_msg_decoder_init(&d, 0, false));
    CHECK_EQ(feed_all(&d, (const uint8_t *)"\x80\x80\x80\x80\x80\x80\x80\x80\x80", 9),
             GN_EBADFRAME);
    gni_msg_decoder_fini(&d);
    /* truncated body, truncated length, clean ends */
    CHECK_OK(gni_msg_decoder_init(&d, 0, true));
    CHECK_EQ(feed_all(&d, (const uint8_t *)"\x01\x05hel", 5), 0);
    CHECK_EQ(gni_msg_decode_eof(&d), GN_EPROTO);
    gni_msg_decoder_fini(&d);
    CHECK_OK(gni_msg_decoder_init(&d, 0, true));
    CHECK_EQ(feed_all(&d, (const uint8_t *)"\x01\x80", 2), 0);
    CHECK_EQ(gni_msg_decode_eof(&d), GN_EPROTO);
    gni_msg_decoder_fini(&d);
    CHECK_OK(gni_msg_decoder_init(&d, 0, true));
    CHECK_EQ(gni_msg_decode_eof(&d), 0); /* nothing at all: an empty stream */
    gni_msg_decoder_fini(&d);
    CHECK_EQ(gni_msg_decoder_init(&d, GNI_MSG_MAX_LEN_LIMIT + 1, true), GN_EINVAL);
}

/* ---- drivers ---- */

#define NMSG 1000

typedef struct rx {
    int count;
    int bad;
    int paused;
    int ended;
    int end_status;
    gni_msg_reader *r;
} rx;

typedef struct tx {
    int next;
    int blocked;
    int ended;
    int end_status;
    gni_msg_writer *w;
} tx;

/* Lengths 0..2999, never 1 (first and last byte differ in meaning). */
static size_t msg_len_of(int i)
{
    size_t n = (size_t)((i * 37) % 3000);
    return n == 1 ? 2 : n;
}

static int on_message(void *arg, gn_rcbuf *m)
{
    rx *r = arg;
    gn_slice s = gn_rcbuf_slice(m);
    size_t want = msg_len_of(r->count);
    if (s.len != want || (s.len > 0 && (s.base[0] != (uint8_t)r->count ||
                                        s.base[s.len - 1] != (uint8_t)(r->count >> 2))))
        r->bad++;
    r->count++;
    gn_rcbuf_rele(m);
    if (r->count % 100 == 0) {
        r->paused = 1;
        return GNI_MSG_PAUSE;
    }
    return GNI_MSG_CONTINUE;
}

static void on_rx_end(void *arg, int status)
{
    rx *r = arg;
    r->ended++;
    r->end_status = status;
}

static void on_tx_writable(void *arg)
{
    ((tx *)arg)->blocked = 0;
}

static void on_tx_end(void *arg, int status)
{
    tx *t = arg;
    t->ended++;
    t->end_status = status;
}

static const gni_msg_reader_cbs rcbs = {on_message, on_rx_end};
static const gni_msg_writer_cbs wcbs = {on_tx_writable, on_tx_end, NULL};

/* Queues messages until the writer pushes back. */
static void pump(tx *t)
{
    while (!t->blocked && t->next < NMSG) {
        size_t len = msg_len_of(t->next);
        gn_rcbuf *m = gn_rcbuf_new(NULL, len);
        if (len > 0) {
            uint8_t *d = gn_rcbuf_data_mut(m);
            memset(d, 0x33, len);
            d[0] = (uint8_t)t->next;
            d[len - 1] = (uint8_t)(t->next >> 2);
        }
        int rc = gni_msg_writer_send(t->w, m);
        gn_rcbuf_rele(m); /* the writer holds its own reference */
        if (rc == GN_EAGAIN) {
            t->blocked = 1;
            return;
        }
        if (rc < 0)
            return;
        t->next++;
    }
}

GN_TEST(driver_thousand_messages_with_pauses)
{
    gn_stream *a, *b;
    gn_pipe_new(loop, &a, &b);
    rx r = {0};
    tx t = {0};
    CHECK_OK(gni_msg_writer_new(a, 0, 16, &wcbs, &t, &t.w));
    CHECK_OK(gni_msg_reader_new(b, 0, &rcbs, &r, &r.r));
    int eagain = 0, resumes = 0, finished = 0;
    for (int i = 0; i < 20000 && !r.ended; i++) {
        pump(&t);
        if (t.blocked)
            eagain++;
        if (t.next == NMSG && !finished) {
            CHECK_OK(gni_msg_writer_finish(t.w));
            CHECK_EQ(gni_msg_writer_finish(t.w), GN_ESTATE);
            finished = 1;
        }
        gn_loop_run(loop, GN_RUN_NOWAIT);
        if (r.paused) {
            r.paused = 0;
            resumes++;
            CHECK_OK(gni_msg_reader_resume(r.r));
        }
    }
    CHECK_EQ(r.count, NMSG);
    CHECK_EQ(r.bad, 0);
    CHECK_EQ(r.ended, 1);
    CHECK_EQ(r.end_status, 0);
    CHECK(eagain > 0);   /* the 16-message queue pushed back */
    CHECK(resumes >= 9); /* paused every 100 messages */
    spin_until(&t.ended, 100);
    CHECK_EQ(t.ended, 1);
    CHECK_EQ(t.end_status, 0);
    spin(10);
}

GN_TEST(driver_oversize_resets)
{
    gn_stream *a, *b;
    gn_pipe_new(loop, &a, &b);
    rx r = {0};
    tx t = {0};
    CHECK_OK(gni_msg_writer_new(a, 2 * GNI_MSG_DEFAULT_MAX_LEN, 0, &wcbs, &t, &t.w));
    CHECK_OK(gni_msg_reader_new(b, 0, &rcbs, &r, &r.r));
    /* the writer's own bound */
    gn_rcbuf *huge = gn_rcbuf_new(NULL, 2 * GNI_MSG_DEFAULT_MAX_LEN + 1);
    CHECK_EQ(gni_msg_writer_send(t.w, huge), GN_ETOOBIG);
    gn_rcbuf_rele(huge);
    /* one good message, then one over the reader's 1 MiB */
    gn_rcbuf *ok = gn_rcbuf_new((const uint8_t *)"hi", 2);
    gn_rcbuf *big = gn_rcbuf_new(NULL, GNI_MSG_DEFAULT_MAX_LEN + 1);
    CHECK_OK(gni_msg_writer_send(t.w, ok));
    CHECK_OK(gni_msg_writer_send(t.w, big));
    CHECK_EQ(gn_rcbuf_refcnt(big), 2); /* ours and the writer's */
    spin_until(&r.ended, 200);
    CHECK_EQ(r.ended, 1);
    CHECK_EQ(r.end_status, GN_EFRAMESIZE);
    CHECK_EQ(r.count, 1);
    spin_until(&t.ended, 200);
    CHECK_EQ(t.ended, 1);
    CHECK(t.end_status < 0); /* the reset reached the writer */
    spin(10);
    CHECK_EQ(gn_rcbuf_refcnt(big), 1); /* the writer let go */
    CHECK_EQ(gn_rcbuf_refcnt(ok), 1);
    gn_rcbuf_rele(big);
    gn_rcbuf_rele(ok);
}

static void w_done(void *arg, int status)
{
    (void)arg;
    (void)status;
}

GN_TEST(driver_bad_peers)
{
    gn_stream *a, *b;
    /* the reader gets a wrong version byte */
    gn_pipe_new(loop, &a, &b);
    rx r = {0};
    CHECK_OK(gni_msg_reader_new(b, 0, &rcbs, &r, &r.r));
    gn_slice iov = gn_slice_of("\x07\x01x", 3);
    CHECK_OK(gn_stream_write(a, &iov, 1, w_done, NULL));
    spin_until(&r.ended, 100);
    CHECK_EQ(r.end_status, GN_EVERSION);
    gn_stream_close(a, NULL, NULL);
    spin(10);
    /* the sender stops mid-message */
    gn_pipe_new(loop, &a, &b);
    rx q = {0};
    CHECK_OK(gni_msg_reader_new(b, 0, &rcbs, &q, &q.r));
    iov = gn_slice_of("\x01\x05hel", 5);
    CHECK_OK(gn_stream_write(a, &iov, 1, w_done, NULL));
    CHECK_OK(gn_stream_shutdown(a));
    spin_until(&q.ended, 100);
    CHECK_EQ(q.end_status, GN_EPROTO);
    CHECK_EQ(q.count, 0);
    gn_stream_close(a, NULL, NULL);
    spin(10);
    /* the acceptor talks back to the writer */
    gn_pipe_new(loop, &a, &b);
    tx t = {0};
    CHECK_OK(gni_msg_writer_new(a, 0, 0, &wcbs, &t, &t.w));
    iov = gn_slice_of("x", 1);
    CHECK_OK(gn_stream_write(b, &iov, 1, w_done, NULL));
    spin_until(&t.ended, 100);
    CHECK_EQ(t.end_status, GN_EPROTO);
    gn_stream_close(b, NULL, NULL);
    spin(10);
    /* the user closes both ends: no callbacks afterwards */
    gn_pipe_new(loop, &a, &b);
    rx u = {0};
    tx v = {0};
    CHECK_OK(gni_msg_writer_new(a, 0, 0, &wcbs, &v, &v.w));
    CHECK_OK(gni_msg_reader_new(b, 0, &rcbs, &u, &u.r));
    gn_rcbuf *m = gn_rcbuf_new((const uint8_t *)"abc", 3);
    CHECK_OK(gni_msg_writer_send(v.w, m));
    gni_msg_writer_close(v.w, false);
    gni_msg_reader_close(u.r, false);
    spin(20);
    CHECK_EQ(u.ended + v.ended, 0);
    CHECK_EQ(gn_rcbuf_refcnt(m), 1);
    gn_rcbuf_rele(m);
}

/* ---- stalled messages ---- */

GN_TEST(decode_stall_deadline)
{
    gni_msg_decoder d;
    CHECK_OK(gni_msg_decoder_init(&d, 0, true));
    /* a bare decoder has no timeout */
    size_t used = 0;
    gn_rcbuf *m = NULL;
    CHECK_EQ(gni_msg_decode(&d, (const uint8_t *)"\x01\x05he", 4, &used, &m), 0);
    CHECK(gni_msg_decoder_partial(&d));
    gni_msg_decoder_touch(&d, 100);
    CHECK_EQ(gni_msg_decoder_deadline(&d), GN_TIME_INFINITY);
    CHECK_EQ(gni_msg_decoder_expire(&d, 1000000), 0);
    /* with one: the deadline follows the last byte */
    gni_msg_decoder_set_stall_timeout(&d, 10);
    CHECK_EQ(gni_msg_decoder_deadline(&d), 110);
    CHECK_EQ(gni_msg_decoder_expire(&d, 109), 0);
    CHECK_EQ(gni_msg_decode(&d, (const uint8_t *)"l", 1, &used, &m), 0);
    gni_msg_decoder_touch(&d, 105);
    CHECK_EQ(gni_msg_decoder_deadline(&d), 115);
    CHECK_EQ(gni_msg_decoder_expire(&d, 114), 0);
    CHECK_EQ(gni_msg_decoder_expire(&d, 115), GN_ETIMEDOUT);
    CHECK(!gni_msg_decoder_partial(&d));
    /* sticky */
    CHECK_EQ(gni_msg_decode(&d, (const uint8_t *)"lo", 2, &used, &m), GN_ETIMEDOUT);
    CHECK(m == NULL);
    gni_msg_decoder_fini(&d);
    /* between messages (and inside a length) the clock does not run */
    CHECK_OK(gni_msg_decoder_init(&d, 0, true));
    gni_msg_decoder_set_stall_timeout(&d, 10);
    CHECK_EQ(gni_msg_decode(&d, (const uint8_t *)"\x01\x02hi", 4, &used, &m), 1);
    gn_rcbuf_rele(m);
    m = NULL;
    gni_msg_decoder_touch(&d, 0);
    CHECK(!gni_msg_decoder_partial(&d));
    CHECK_EQ(gni_msg_decoder_deadline(&d), GN_TIME_INFINITY);
    CHECK_EQ(gni_msg_decoder_expire(&d, 1000), 0);
    /* a length varint cut after its first byte is a partial message */
    CHECK_EQ(gni_msg_decode(&d, (const uint8_t *)"\x80", 1, &used, &m), 0);
    CHECK(gni_msg_decoder_partial(&d));
    gni_msg_decoder_touch(&d, 50);
    CHECK_EQ(gni_msg_decoder_expire(&d, 60), GN_ETIMEDOUT);
    gni_msg_decoder_fini(&d);
}

static void stall_guard(gn_timer *t, void *arg)
{
    (void)t;
    *(int *)arg = 1;
}

/* Runs the loop (blocking on its timers) for @ms of real time, or until *@flag. */
static void run_ms(const int *flag, gn_time ms)
{
    int fired = 0;
    gn_timer g;
    gn_timer_init(loop, &g);
    gn_timer_start(&g, ms * GN_MS, stall_guard, &fired);
    for (int i = 0; i < 100000 && !fired && !(flag && *flag); i++) {
        gn_loop_run(loop, GN_RUN_ONCE);
    }
    gn_timer_stop(&g);
}

static int stall_warnings;

static void stall_log(void *ud, gn_log_level level, const char *comp, const char *msg)
{
    (void)ud;
    (void)comp;
    if (level <= GN_LOG_WARNING && strstr(msg, "GN_ETIMEDOUT")) {
        stall_warnings++;
    }
}

GN_TEST(reader_resets_a_stalled_message)
{
    gn_log_set(stall_log, NULL, GN_LOG_DEBUG);
    stall_warnings = 0;
    gn_stream *a, *b;
    gn_pipe_new(loop, &a, &b);
    rx r = {0};
    CHECK_OK(gni_msg_reader_new(b, 0, &rcbs, &r, &r.r));
    gni_msg_reader_set_stall_timeout(r.r, 60 * GN_MS);
    /* a whole message, then silence between messages: no timeout */
    gn_slice iov = gn_slice_of("\x01\x00", 2);
    CHECK_OK(gn_stream_write(a, &iov, 1, w_done, NULL));
    run_ms(&r.ended, 150);
    CHECK_EQ(r.count, 1);
    CHECK_EQ(r.ended, 0);
    /* a body trickling in more often than the timeout: no timeout */
    iov = gn_slice_of("\x05h", 2);
    CHECK_OK(gn_stream_write(a, &iov, 1, w_done, NULL));
    static const char *const parts[] = {"e", "l", "l"};
    gn_time t_last = 0;
    for (int i = 0; i < 3; i++) {
        run_ms(&r.ended, 30);
        iov = gn_slice_of(parts[i], 1);
        t_last = gn_now();
        CHECK_OK(gn_stream_write(a, &iov, 1, w_done, NULL));
    }
    run_ms(&r.ended, 30);
    CHECK_EQ(r.ended, 0);
    /* then it stalls with one byte missing: reset with GN_ETIMEDOUT */
    run_ms(&r.ended, 2000);
    CHECK_EQ(r.ended, 1);
    CHECK_EQ(r.end_status, GN_ETIMEDOUT);
    /* not before 60 ms after the last byte arrived (which was after it was
     * written; a loaded machine only makes the gap longer) */
    CHECK(gn_now() - t_last >= 60 * GN_MS);
    CHECK_EQ(r.count, 1);
    CHECK_EQ(stall_warnings, 1);
    gn_stream_close(a, NULL, NULL);
    spin(10);
    gn_log_set(NULL, NULL, GN_LOG_WARNING);
}

GN_TEST(paused_reader_does_not_time_out)
{
    gn_stream *a, *b;
    gn_pipe_new(loop, &a, &b);
    rx r = {0};
    CHECK_OK(gni_msg_reader_new(b, 0, &rcbs, &r, &r.r));
    gni_msg_reader_set_stall_timeout(r.r, 40 * GN_MS);
    /* 100 messages (the 100th pauses the reader), then half of the next */
    uint8_t buf[1 + 100 * 3000 + 16];
    size_t n = 0;
    buf[n++] = GNI_MSG_VERSION;
    for (int i = 0; i < 100; i++) {
        size_t len = msg_len_of(i);
        n += (size_t)gni_msg_header_encode(len, buf + n);
        memset(buf + n, 0x33, len);
        if (len > 0) {
            buf[n] = (uint8_t)i;
            buf[n + len - 1] = (uint8_t)(i >> 2);
        }
        n += len;
    }
    n += (size_t)gni_msg_header_encode(10, buf + n);
    memcpy(buf + n, "abcde", 5);
    n += 5;
    gn_slice iov = gn_slice_of(buf, n);
    CHECK_OK(gn_stream_write(a, &iov, 1, w_done, NULL));
    run_ms(&r.paused, 500);
    CHECK_EQ(r.paused, 1);
    CHECK_EQ(r.count, 100);
    /* paused (our stall, not the peer's) far longer than the timeout */
    run_ms(&r.ended, 150);
    CHECK_EQ(r.ended, 0);
    /* resumed: the clock starts again from the resume */
    r.paused = 0;
    CHECK_OK(gni_msg_reader_resume(r.r));
    run_ms(&r.ended, 20);
    CHECK_EQ(r.ended, 0);
    run_ms(&r.ended, 2000);
    CHECK_EQ(r.ended, 1);
    CHECK_EQ(r.end_status, GN_ETIMEDOUT);
    CHECK_EQ(r.count, 100);
    gn_stream_close(a, NULL, NULL);
    spin(10);
}

/* ---- memory accounting hook ---- */

typedef struct memacct {
    gni_msg_decoder *d;
    size_t reserved;   /* allowed and not yet released */
    size_t peak;
    size_t budget;     /* refuse a reservation that would exceed it */
    int reserves, refusals, early; /* early: storage grew before its reservation */
} memacct;

static size_t cur_cap(const gni_msg_decoder *d)
{
    return d->cur ? gn_rcbuf_slice(d->cur).len : 0;
}

static int acct_reserve(void *arg, size_t more)
{
    memacct *m = arg;
    m->reserves++;
    /* nothing was allocated beyond what was reserved before this call */
    if (cur_cap(m->d) != m->reserved) {
        m->early++;
    }
    if (more == 0 || m->reserved + more > m->budget) {
        m->refusals++;
        return -1;
    }
    m->reserved += more;
    m->peak = GNI_MAX(m->peak, m->reserved);
    return 0;
}

static void acct_release(void *arg, size_t len)
{
    memacct *m = arg;
    CHECK(len <= m->reserved);
    m->reserved -= len;
}

GN_TEST(decode_reserves_before_growing)
{
    /* a 100000-byte message arriving in 1000-byte pieces: each growth of
     * its storage is reserved first, and the storage is always exactly
     * what was reserved; delivery hands the reservation back */
    enum { LEN = 100000, PIECE = 1000 };
    uint8_t *wire = gn_malloc(LEN + 16);
    CHECK(wire != NULL);
    wire[0] = GNI_MSG_VERSION;
    int h = gni_msg_header_encode(LEN, wire + 1);
    CHECK(h > 0);
    size_t total = 1 + (size_t)h + LEN;
    for (size_t i = 0; i < LEN; i++) {
        wire[1 + (size_t)h + i] = (uint8_t)(i * 7);
    }
    gni_msg_decoder d;
    memacct m = {.d = &d, .budget = SIZE_MAX};
    CHECK_OK(gni_msg_decoder_init(&d, 0, true));
    const gni_msg_mem mem = {acct_reserve, acct_release, &m};
    gni_msg_decoder_set_mem(&d, &mem);
    gn_rcbuf *out = NULL;
    for (size_t pos = 0; pos < total;) {
        size_t n = GNI_MIN((size_t)PIECE, total - pos), used = 0;
        gn_rcbuf *msg = NULL;
        int rc = gni_msg_decode(&d, wire + pos, n, &used, &msg);
        CHECK(rc >= 0);
        pos += used;
        if (rc == 1) {
            out = msg;
        } else {
            CHECK_EQ(cur_cap(&d), m.reserved); /* storage == reservation */
        }
    }
    CHECK(out != NULL);
    CHECK_EQ(gn_rcbuf_slice(out).len, LEN);
    CHECK_MEM(gn_rcbuf_slice(out).base, wire + 1 + h, LEN);
    CHECK_EQ(m.early, 0);
    CHECK(m.reserves >= 5);      /* 4096 doubling to 100000 */
    CHECK_EQ(m.peak, (size_t)LEN); /* never more than the message */
    CHECK_EQ(m.reserved, 0);     /* handed out: released */
    gn_rcbuf_rele(out);
    gni_msg_decoder_fini(&d);

    /* a budget of 20000 bytes: the growth past it is refused, the
     * decoder fails with GN_ERESOURCE (sticky), the partial message is
     * freed and its reservation released */
    memset(&m, 0, sizeof m);
    m.d = &d;
    m.budget = 20000;
    CHECK_OK(gni_msg_decoder_init(&d, 0, true));
    gni_msg_decoder_set_mem(&d, &mem);
    int rc = 0;
    size_t pos = 0;
    for (; pos < total && rc == 0;) {
        size_t used = 0;
        gn_rcbuf *msg = NULL;
        rc = gni_msg_decode(&d, wire + pos, GNI_MIN((size_t)PIECE, total - pos), &used, &msg);
        CHECK(msg == NULL);
        pos += used;
        if (rc == 0) {
            CHECK(cur_cap(&d) <= m.budget);
        }
    }
    CHECK_EQ(rc, GN_ERESOURCE);
    CHECK_EQ(m.refusals, 1);
    CHECK_EQ(m.early, 0);
    CHECK(m.peak <= m.budget);
    CHECK(d.cur == NULL);        /* nothing kept */
    CHECK_EQ(m.reserved, 0);     /* released */
    CHECK(pos < total);
    size_t used = 0;
    gn_rcbuf *msg = NULL;
    CHECK_EQ(gni_msg_decode(&d, wire + pos, 1, &used, &msg), GN_ERESOURCE); /* sticky */
    CHECK_EQ(gni_msg_decode_eof(&d), GN_ERESOURCE);
    CHECK_EQ(m.reserves, 3 + 1); /* 4096, 8192, 16384 (20000 would exceed) + the refused one */
    gni_msg_decoder_fini(&d);

    /* refused at the first allocation: nothing allocated at all */
    memset(&m, 0, sizeof m);
    m.d = &d;
    m.budget = 100;
    CHECK_OK(gni_msg_decoder_init(&d, 0, true));
    gni_msg_decoder_set_mem(&d, &mem);
    CHECK_EQ(gni_msg_decode(&d, wire, 1 + (size_t)h, &used, &msg), GN_ERESOURCE);
    CHECK(d.cur == NULL);
    CHECK_EQ(m.reserved, 0);
    CHECK_EQ(m.refusals, 1);
    gni_msg_decoder_fini(&d);

    /* fini with a partial message releases its reservation */
    memset(&m, 0, sizeof m);
    m.d = &d;
    m.budget = SIZE_MAX;
    CHECK_OK(gni_msg_decoder_init(&d, 0, true));
    gni_msg_decoder_set_mem(&d, &mem);
    CHECK_OK(gni_msg_decode(&d, wire, 5000, &used, &msg));
    CHECK(m.reserved > 0);
    CHECK_EQ(cur_cap(&d), m.reserved);
    gni_msg_decoder_fini(&d);
    CHECK_EQ(m.reserved, 0);
    gn_free(wire);
}

APPS_TEST_MAIN(GN_T(header_bytes), GN_T(decode_whole_and_byte_by_byte), GN_T(decode_bad_input),
               GN_T(driver_thousand_messages_with_pauses), GN_T(driver_oversize_resets),
               GN_T(driver_bad_peers), GN_T(decode_stall_deadline),
               GN_T(reader_resets_a_stalled_message), GN_T(paused_reader_does_not_time_out),
               GN_T(decode_reserves_before_growing))
