/* multistream-select driven over a gn_stream pair (in-process pipe). */
#include "golemnet/golemnet.h"
#include "ms_stream.h"

#include "gn_pipe.h"
#include "gn_test.h"

static gn_loop *loop;

typedef struct result {
    int done;
    int status;
    char proto[64];
    gn_stream *s;
    uint8_t rx[64];
    size_t rx_len;
    bool eof;
} result;

static void done_cb(void *arg, int status, gn_stream *s, const char *protocol)
{
    result *r = arg;
    r->done++;
    r->status = status;
    r->s = s;
    snprintf(r->proto, sizeof r->proto, "%s", protocol ? protocol : "");
}

static void on_data(gn_stream *s, void *ud, const uint8_t *d, size_t n)
{
    (void)s;
    result *r = ud;
    memcpy(r->rx + r->rx_len, d, n < sizeof r->rx - r->rx_len ? n : sizeof r->rx - r->rx_len);
    r->rx_len += n;
}
static void on_eof(gn_stream *s, void *ud) { (void)s; ((result *)ud)->eof = true; }
static const gn_stream_handler h = {on_data, on_eof, NULL, NULL};

static void spin(int n)
{
    for (int i = 0; i < n; i++)
        gn_loop_run(loop, GN_RUN_NOWAIT);
}

static void negotiate(const char *const *offer, size_t n_offer, const char *const *support,
                      size_t n_support, result *ra, result *rb, gn_stream **a, gn_stream **b)
{
    gn_pipe_new(loop, a, b);
    gni_ms_config ca, cb;
    gni_ms_config_default(&ca, GNI_MS_INITIATOR);
    ca.protocols = offer;
    ca.protocol_cnt = n_offer;
    gni_ms_config_default(&cb, GNI_MS_RESPONDER);
    cb.protocols = support;
    cb.protocol_cnt = n_support;
    cb.timeout = 200 * GN_MS;
    CHECK_OK(gni_ms_negotiate(*a, &ca, done_cb, ra, NULL));
    CHECK_OK(gni_ms_negotiate(*b, &cb, done_cb, rb, NULL));
    CHECK_EQ(ra->done + rb->done, 0); /* never from inside the call */
    spin(50);
}

GN_TEST(selects_after_na_and_hands_over_leftover)
{
    static const char *const offer[] = {"/b/1", "/a/1"};
    static const char *const support[] = {"/a/1"};
    result ra = {0}, rb = {0};
    gn_stream *a, *b;
    negotiate(offer, 2, support, 1, &ra, &rb, &a, &b);
    CHECK_EQ(ra.done, 1);
    CHECK_EQ(rb.done, 1);
    CHECK_EQ(ra.status, 0);
    CHECK_EQ(rb.status, 0);
    CHECK_STR(ra.proto, "/a/1");
    CHECK_STR(rb.proto, "/a/1");
    /* application data right after the negotiation reaches the protocol */
    gn_slice iov = gn_slice_of("hello", 5);
    CHECK_OK(gn_stream_write(a, &iov, 1, NULL, NULL));
    CHECK_OK(gn_stream_shutdown(a));
    gn_stream_set_handler(b, &h, &rb);
    CHECK_OK(gn_stream_read_start(b));
    spin(20);
    CHECK_EQ(rb.rx_len, 5);
    CHECK_MEM(rb.rx, "hello", 5);
    CHECK(rb.eof);
    gn_stream_close(a, NULL, NULL);
    gn_stream_close(b, NULL, NULL);
    spin(10);
}

GN_TEST(no_common_protocol)
{
    static const char *const offer[] = {"/x/1", "/y/1"};
    static const char *const support[] = {"/a/1"};
    result ra = {0}, rb = {0};
    gn_stream *a, *b;
    negotiate(offer, 2, support, 1, &ra, &rb, &a, &b);
    CHECK_EQ(ra.done, 1);
    CHECK_EQ(ra.status, GN_ENEGOTIATION);
    gn_stream_close(a, NULL, NULL); /* the caller closes on failure */
    spin(20);
    CHECK_EQ(rb.done, 1);
    CHECK(rb.status < 0);
    gn_stream_close(b, NULL, NULL);
    spin(10);
}

GN_TEST(responder_times_out)
{
    static const char *const support[] = {"/a/1"};
    gn_stream *a, *b;
    gn_pipe_new(loop, &a, &b);
    result rb = {0};
    gni_ms_config cb;
    gni_ms_config_default(&cb, GNI_MS_RESPONDER);
    cb.protocols = support;
    cb.protocol_cnt = 1;
    cb.timeout = 50 * GN_MS;
    CHECK_OK(gni_ms_negotiate(b, &cb, done_cb, &rb, NULL));
    for (int i = 0; i < 400 && !rb.done; i++)
        gn_loop_run(loop, GN_RUN_ONCE);
    CHECK_EQ(rb.done, 1);
    CHECK_EQ(rb.status, GN_ETIMEDOUT);
    gn_stream_close(a, NULL, NULL);
    gn_stream_close(b, NULL, NULL);
    spin(10);
}

/* The peer never answers: cancelling completes once with GN_ECANCELED,
 * from the loop, and hands the stream back with no handler installed. */
GN_TEST(cancel_while_waiting)
{
    static const char *const offer[] = {"/a/1"};
    gn_stream *a, *b;
    gn_pipe_new(loop, &a, &b);
    result ra = {0};
    gni_ms_config ca;
    gni_ms_config_default(&ca, GNI_MS_INITIATOR);
    ca.protocols = offer;
    ca.protocol_cnt = 1;
    gn_op *op = NULL;
    CHECK_OK(gni_ms_negotiate(a, &ca, done_cb, &ra, &op));
    CHECK(op != NULL);
    spin(10);
    CHECK_EQ(ra.done, 0);
    gn_op_cancel(op);
    CHECK_EQ(ra.done, 0); /* never from inside the cancel */
    gn_op_cancel(op);     /* again before the completion: a no-op */
    spin(5);
    CHECK_EQ(ra.done, 1);
    CHECK_EQ(ra.status, GN_ECANCELED);
    CHECK(ra.s == a);
    CHECK_STR(ra.proto, "");
    CHECK(a->handler == NULL);
    /* the negotiation no longer reads: bytes from the peer stay unread */
    gn_slice iov = gn_slice_of("/multistream/1.0.0\n", 19);
    CHECK_OK(gn_stream_write(b, &iov, 1, NULL, NULL));
    spin(10);
    CHECK_EQ(ra.done, 1);
    gn_stream_close(a, NULL, NULL);
    gn_stream_close(b, NULL, NULL);
    spin(10);
}

/* A cancel overrides a completion that the next turn would have reported
 * (the timer is due) and the timeout never fires afterwards. */
GN_TEST(cancel_beats_due_timeout)
{
    static const char *const support[] = {"/a/1"};
    gn_stream *a, *b;
    gn_pipe_new(loop, &a, &b);
    result rb = {0};
    gni_ms_config cb;
    gni_ms_config_default(&cb, GNI_MS_RESPONDER);
    cb.protocols = support;
    cb.protocol_cnt = 1;
    cb.timeout = 1 * GN_MS;
    gn_op *op = NULL;
    CHECK_OK(gni_ms_negotiate(b, &cb, done_cb, &rb, &op));
    gn_op_cancel(op);
    for (int i = 0; i < 50; i++)
        gn_loop_run(loop, GN_RUN_NOWAIT);
    CHECK_EQ(rb.done, 1);
    CHECK_EQ(rb.status, GN_ECANCELED);
    gn_stream_close(a, NULL, NULL);
    gn_stream_close(b, NULL, NULL);
    spin(10);
}

/* On a virtual clock (timers run only when the clock is advanced) the
 * cancellation still completes from the next loop turn. */
GN_TEST(cancel_on_virtual_clock)
{
    static const char *const offer[] = {"/a/1"};
    gn_loop_config lc;
    gn_loop_config_default(&lc);
    lc.virtual_clock = true;
    gn_loop *vl;
    CHECK_OK(gn_loop_new(&lc, &vl));
    gn_stream *a, *b;
    gn_pipe_new(vl, &a, &b);
    result ra = {0};
    gni_ms_config ca;
    gni_ms_config_default(&ca, GNI_MS_INITIATOR);
    ca.protocols = offer;
    ca.protocol_cnt = 1;
    gn_op *op = NULL;
    CHECK_OK(gni_ms_negotiate(a, &ca, done_cb, &ra, &op));
    gn_op_cancel(op);
    for (int i = 0; i < 5 && !ra.done; i++)
        gn_loop_run(vl, GN_RUN_NOWAIT);
    CHECK_EQ(ra.done, 1);
    CHECK_EQ(ra.status, GN_ECANCELED);
    gn_stream_close(a, NULL, NULL);
    gn_stream_close(b, NULL, NULL);
    for (int i = 0; i < 10; i++)
        gn_loop_run(vl, GN_RUN_NOWAIT);
    gn_loop_free(vl);
}

/* An immediate error leaves *op NULL. */
GN_TEST(cancel_handle_null_on_error)
{
    gn_stream *a, *b;
    gn_pipe_new(loop, &a, &b);
    gni_ms_config ca;
    gni_ms_config_default(&ca, GNI_MS_INITIATOR);
    ca.lazy = true; /* refused by this adapter */
    gn_op *op = (gn_op *)&ca;
    CHECK_EQ(gni_ms_negotiate(a, &ca, done_cb, NULL, &op), GN_EINVAL);
    CHECK(op == NULL);
    gn_op_cancel(NULL); /* a no-op */
    gn_stream_close(a, NULL, NULL);
    gn_stream_close(b, NULL, NULL);
    spin(10);
}

int main(int argc, char **argv)
{
    static const gn_test_case cases[] = {
        GN_T(selects_after_na_and_hands_over_leftover),
        GN_T(no_common_protocol),
        GN_T(responder_times_out),
        GN_T(cancel_while_waiting),
        GN_T(cancel_beats_due_timeout),
        GN_T(cancel_on_virtual_clock),
        GN_T(cancel_handle_null_on_error),
    };
    if (gn_loop_new(NULL, &loop) < 0)
        return 1;
    int rc = gn_test_run(cases, sizeof cases / sizeof cases[0], argc, argv);
    gn_loop_stop(loop);
    gn_loop_run(loop, GN_RUN_DEFAULT);
    gn_loop_free(loop);
    return rc;
}
