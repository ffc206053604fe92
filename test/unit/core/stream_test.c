/*
 * The stream dispatchers, with a fake implementation: flags, defaults,
 * metrics, query/address pass-down and close semantics.
 */
#include "golemnet/golemnet.h"

#include "gn_test.h"

typedef struct fake {
    gn_stream s;
    int writes, read_starts, read_stops, shutdowns, resets, closes;
    gn_write_cb pending_cb;
    void *pending_arg;
    size_t pending_len;
    int write_rc;
} fake;

static int fake_write(gn_stream *s, const gn_slice *iov, size_t n, gn_write_cb cb, void *arg)
{
    fake *f = (fake *)s;
    if (f->write_rc)
        return f->write_rc;
    f->writes++;
    f->pending_cb = cb;
    f->pending_arg = arg;
    f->pending_len = 0;
    for (size_t i = 0; i < n; i++)
        f->pending_len += iov[i].len;
    return 0;
}
static int fake_read_start(gn_stream *s) { ((fake *)s)->read_starts++; return 0; }
static int fake_read_stop(gn_stream *s) { ((fake *)s)->read_stops++; return 0; }
static int fake_shutdown(gn_stream *s) { ((fake *)s)->shutdowns++; return 0; }
static void fake_reset(gn_stream *s) { ((fake *)s)->resets++; gn_stream_emit_closed(s); }
static void fake_close(gn_stream *s)
{
    fake *f = (fake *)s;
    f->closes++;
    if (f->pending_cb) {
        gn_stream_complete_write(s, f->pending_cb, f->pending_arg, f->pending_len, GN_ECANCELED);
        f->pending_cb = NULL;
    }
    gn_stream_emit_closed(s);
}
static int fake_query(gn_stream *s, int key, void *out, size_t len)
{
    (void)s;
    if (key != GN_QUERY_STREAM_ID || len < sizeof(uint64_t))
        return GN_ENOTSUP;
    uint64_t v = 42;
    memcpy(out, &v, sizeof v);
    return (int)sizeof v;
}

static const gn_stream_ops full_ops = {
    .abi = GN_STREAM_ABI, .name = "fake", .write = fake_write,
    .read_start = fake_read_start, .read_stop = fake_read_stop, .shutdown = fake_shutdown,
    .reset = fake_reset, .close = fake_close, .query = fake_query,
};
static const gn_stream_ops min_ops = {
    .abi = GN_STREAM_ABI, .name = "min", .write = fake_write, .close = fake_close,
};
static const gn_stream_ops bad_ops = {
    .abi = GN_STREAM_ABI + 7, .name = "bad", .write = fake_write, .close = fake_close,
};

typedef struct events {
    size_t data_bytes;
    int eofs, errors, writables, last_err;
    int closed;
    int write_status;
    int write_done;
} events;

static void on_data(gn_stream *s, void *ud, const uint8_t *d, size_t n)
{
    (void)s, (void)d;
    ((events *)ud)->data_bytes += n;
}
static void on_eof(gn_stream *s, void *ud) { (void)s; ((events *)ud)->eofs++; }
static void on_error(gn_stream *s, void *ud, int err)
{
    (void)s;
    ((events *)ud)->errors++;
    ((events *)ud)->last_err = err;
}
static void on_writable(gn_stream *s, void *ud) { (void)s; ((events *)ud)->writables++; }
static const gn_stream_handler handler = {on_data, on_eof, on_error, on_writable};
static void on_closed(gn_stream *s, void *arg) { (void)s; ((events *)arg)->closed++; }
static void on_written(void *arg, int status)
{
    ((events *)arg)->write_done++;
    ((events *)arg)->write_status = status;
}

GN_TEST(abi_checked)
{
    fake f = {0};
    CHECK_EQ(gn_stream_init(&f.s, &bad_ops, NULL, NULL), GN_EABI);
}

GN_TEST(write_metrics_and_completion)
{
    fake f = {0};
    events ev = {0};
    CHECK_OK(gn_stream_init(&f.s, &full_ops, NULL, NULL));
    gn_stream_set_handler(&f.s, &handler, &ev);
    uint8_t buf[100] = {0};
    gn_slice iov[2] = {gn_slice_of(buf, 60), gn_slice_of(buf, 40)};
    CHECK_EQ(gn_stream_write(&f.s, iov, 0, on_written, &ev), GN_EINVAL);
    CHECK_OK(gn_stream_write(&f.s, iov, 2, on_written, &ev));
    gn_stream_metrics m;
    gn_stream_get_metrics(&f.s, &m);
    CHECK_EQ(m.write_queued, 100);
    gn_stream_complete_write(&f.s, f.pending_cb, f.pending_arg, f.pending_len, 0);
    f.pending_cb = NULL;
    gn_stream_get_metrics(&f.s, &m);
    CHECK_EQ(m.write_queued, 0);
    CHECK_EQ(m.bytes_out, 100);
    CHECK_EQ(m.writes_out, 1);
    CHECK_EQ(ev.write_done, 1);
    CHECK_EQ(ev.write_status, 0);
    f.write_rc = GN_EAGAIN;
    CHECK_EQ(gn_stream_write(&f.s, iov, 1, on_written, &ev), GN_EAGAIN);
    gn_stream_get_metrics(&f.s, &m);
    CHECK_EQ(m.write_queued, 0); /* refused writes are not counted */
    gn_stream_emit_writable(&f.s);
    CHECK_EQ(ev.writables, 1);
    gn_stream_close(&f.s, on_closed, &ev);
    CHECK_EQ(ev.closed, 1);
}

GN_TEST(read_flags_and_events)
{
    fake f = {0};
    events ev = {0};
    CHECK_OK(gn_stream_init(&f.s, &full_ops, NULL, NULL));
    gn_stream_set_handler(&f.s, &handler, &ev);
    CHECK_OK(gn_stream_read_start(&f.s));
    CHECK_OK(gn_stream_read_start(&f.s)); /* idempotent */
    CHECK_EQ(f.read_starts, 1);
    CHECK(gn_stream_is_reading(&f.s));
    gn_stream_emit_data(&f.s, (const uint8_t *)"hello", 5);
    CHECK_EQ(ev.data_bytes, 5);
    CHECK_OK(gn_stream_read_stop(&f.s));
    CHECK_EQ(f.read_stops, 1);
    CHECK(!gn_stream_is_reading(&f.s));
    gn_stream_emit_eof(&f.s);
    gn_stream_emit_eof(&f.s);
    CHECK_EQ(ev.eofs, 1);
    gn_stream_emit_data(&f.s, (const uint8_t *)"late", 4); /* after eof: dropped */
    CHECK_EQ(ev.data_bytes, 5);
    gn_stream_emit_error(&f.s, GN_ECONNRESET);
    gn_stream_emit_error(&f.s, GN_EIO);
    CHECK_EQ(ev.errors, 1);
    CHECK_EQ(ev.last_err, GN_ECONNRESET);
    CHECK(gn_stream_flags(&f.s) & GN_STREAM_ERRORED);
    gn_stream_metrics m;
    gn_stream_get_metrics(&f.s, &m);
    CHECK_EQ(m.bytes_in, 5);
    gn_stream_close(&f.s, on_closed, &ev);
    CHECK_EQ(ev.closed, 1);
}

GN_TEST(shutdown_defaults_and_states)
{
    fake f = {0};
    events ev = {0};
    CHECK_OK(gn_stream_init(&f.s, &min_ops, NULL, NULL));
    CHECK_EQ(gn_stream_shutdown(&f.s), GN_ENOTSUP);
    CHECK_OK(gn_stream_read_start(&f.s)); /* default: flag only */
    CHECK(gn_stream_is_reading(&f.s));
    gn_multiaddr *ma = NULL;
    CHECK_EQ(gn_stream_addr(&f.s, GN_ADDR_LOCAL, &ma), GN_ENOTSUP);
    uint64_t id = 0;
    CHECK_EQ(gn_stream_query(&f.s, GN_QUERY_STREAM_ID, &id, sizeof id), GN_ENOTSUP);
    gn_stream_close(&f.s, on_closed, &ev);

    fake g = {0};
    CHECK_OK(gn_stream_init(&g.s, &full_ops, NULL, NULL));
    CHECK_OK(gn_stream_shutdown(&g.s));
    CHECK_EQ(gn_stream_shutdown(&g.s), GN_ESTATE);
    uint8_t b = 1;
    gn_slice iov = gn_slice_of(&b, 1);
    CHECK_EQ(gn_stream_write(&g.s, &iov, 1, NULL, NULL), GN_EPIPE);
    gn_stream_reset(&g.s, on_closed, &ev);
    CHECK_EQ(g.resets, 1);
    CHECK_EQ(g.closes, 0);
    CHECK_EQ(ev.closed, 2);
}

GN_TEST(close_cancels_and_blocks_further_calls)
{
    fake f = {0};
    events ev = {0};
    CHECK_OK(gn_stream_init(&f.s, &full_ops, NULL, NULL));
    gn_stream_set_handler(&f.s, &handler, &ev);
    uint8_t b[8] = {0};
    gn_slice iov = gn_slice_of(b, sizeof b);
    CHECK_OK(gn_stream_write(&f.s, &iov, 1, on_written, &ev));
    gn_stream_close(&f.s, on_closed, &ev);
    CHECK_EQ(ev.write_done, 1);
    CHECK_EQ(ev.write_status, GN_ECANCELED);
    CHECK_EQ(ev.closed, 1);
    CHECK(gn_stream_flags(&f.s) & GN_STREAM_CLOSED);
    CHECK_EQ(gn_stream_write(&f.s, &iov, 1, on_written, &ev), GN_ECLOSED);
    CHECK_EQ(gn_stream_read_start(&f.s), GN_ECLOSED);
    CHECK_EQ(gn_stream_shutdown(&f.s), GN_ECLOSED);
    gn_stream_emit_data(&f.s, b, 8);
    gn_stream_emit_error(&f.s, GN_EIO);
    CHECK_EQ(ev.data_bytes, 0);
    CHECK_EQ(ev.errors, 0);
}

GN_TEST(query_passes_down)
{
    fake lower = {0}, upper = {0};
    CHECK_OK(gn_stream_init(&lower.s, &full_ops, NULL, NULL));
    CHECK_OK(gn_stream_init(&upper.s, &min_ops, NULL, &lower.s));
    uint64_t id = 0;
    CHECK_EQ(gn_stream_query(&upper.s, GN_QUERY_STREAM_ID, &id, sizeof id), 8);
    CHECK_EQ(id, 42);
    CHECK_EQ(gn_stream_query(&upper.s, GN_QUERY_RTT, &id, sizeof id), GN_ENOTSUP);
    gn_stream_close(&upper.s, NULL, NULL);
    gn_stream_close(&lower.s, NULL, NULL);
}

GN_TEST(unread_comes_first_and_eof_waits)
{
    gn_loop *loop;
    CHECK_OK(gn_loop_new(NULL, &loop));
    fake f = {0};
    events ev = {0};
    CHECK_OK(gn_stream_init(&f.s, &full_ops, loop, NULL));
    gn_stream_set_handler(&f.s, &handler, &ev);
    CHECK_OK(gn_stream_unread(&f.s, (const uint8_t *)"abc", 3));
    CHECK_OK(gn_stream_read_start(&f.s));
    CHECK_EQ(ev.data_bytes, 0); /* never delivered from inside the call */
    gn_stream_emit_data(&f.s, (const uint8_t *)"defg", 4); /* queued behind */
    gn_stream_emit_eof(&f.s);
    CHECK_EQ(ev.eofs, 0);
    for (int i = 0; i < 5; i++)
        gn_loop_run(loop, GN_RUN_NOWAIT);
    CHECK_EQ(ev.data_bytes, 7);
    CHECK_EQ(ev.eofs, 1);
    gn_stream_metrics m;
    gn_stream_get_metrics(&f.s, &m);
    CHECK_EQ(m.bytes_in, 7);
    /* a pending delivery is cancelled by close */
    fake g = {0};
    events ev2 = {0};
    CHECK_OK(gn_stream_init(&g.s, &full_ops, loop, NULL));
    gn_stream_set_handler(&g.s, &handler, &ev2);
    CHECK_OK(gn_stream_read_start(&g.s));
    CHECK_OK(gn_stream_unread(&g.s, (const uint8_t *)"xyz", 3));
    gn_stream_close(&g.s, on_closed, &ev2);
    for (int i = 0; i < 5; i++)
        gn_loop_run(loop, GN_RUN_NOWAIT);
    CHECK_EQ(ev2.data_bytes, 0);
    CHECK_EQ(ev2.closed, 1);
    CHECK_EQ(gn_stream_unread(&g.s, (const uint8_t *)"x", 1), GN_ECLOSED);
    gn_stream_close(&f.s, NULL, NULL);
    gn_loop_stop(loop);
    gn_loop_run(loop, GN_RUN_DEFAULT);
    gn_loop_free(loop);
}

GN_TEST_MAIN(GN_T(abi_checked), GN_T(unread_comes_first_and_eof_waits), GN_T(write_metrics_and_completion), GN_T(read_flags_and_events),
             GN_T(shutdown_defaults_and_states), GN_T(close_cancels_and_blocks_further_calls),
             GN_T(query_passes_down))
