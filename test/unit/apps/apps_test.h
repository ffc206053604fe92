/*
 * Shared bits of the apps unit tests: one loop per test binary, a bounded
 * spin, a deterministic RNG. Include after gn_test.h and gn_pipe.h.
 */
#ifndef APPS_TEST_H
#define APPS_TEST_H

static gn_loop *loop;

/* Runs the loop until *@flag becomes nonzero or @max iterations passed. */
static inline int spin_until(const int *flag, int max)
{
    int i = 0;
    for (; i < max && (!flag || !*flag); i++)
        gn_loop_run(loop, GN_RUN_NOWAIT);
    return i;
}

static inline void spin(int n)
{
    for (int i = 0; i < n; i++)
        gn_loop_run(loop, GN_RUN_NOWAIT);
}

/* A deterministic RNG: byte k of the stream is (seed + k) & 0xff. */
typedef struct counter_rng {
    uint8_t next;
} counter_rng;

static inline void counter_fill(void *ud, uint8_t *out, size_t len)
{
    counter_rng *c = ud;
    for (size_t i = 0; i < len; i++)
        out[i] = c->next++;
}

#define APPS_TEST_MAIN(...)                                                                  \
    int main(int argc, char **argv)                                                          \
    {                                                                                        \
        static const gn_test_case cases_[] = {__VA_ARGS__};                                  \
        if (gn_loop_new(NULL, &loop) < 0)                                                    \
            return 1;                                                                        \
        int rc_ = gn_test_run(cases_, sizeof cases_ / sizeof cases_[0], argc, argv);         \
        gn_loop_stop(loop);                                                                  \
        gn_loop_run(loop, GN_RUN_DEFAULT);                                                   \
        gn_loop_free(loop);                                                                  \
        return rc_;                                                                          \
    }

#endif /* APPS_TEST_H */
