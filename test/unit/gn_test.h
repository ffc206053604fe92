/*
 * gn_test.h - golemnet's tiny unit-test framework (single header).
 *
 * Usage:
 *     GN_TEST(varint_roundtrip) { CHECK_EQ(gn_varint_len(300), 2); }
 *     GN_TEST_MAIN(GN_T(varint_roundtrip), GN_T(other))
 *
 * A failed CHECK prints file:line and the expression and abandons the test
 * (longjmp); the remaining tests still run. Output is TAP 13, which meson
 * reads (protocol: 'tap'). An argument selects tests whose name contains it.
 * A test can also SKIP("reason").
 */
#ifndef GN_TEST_H
#define GN_TEST_H

#include <inttypes.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct gn_test_case {
    const char *name;
    void (*fn)(void);
} gn_test_case;

static jmp_buf gn_test_jmp;
static int gn_test_failed;
static const char *gn_test_skip_reason;

static inline void gn_test_fail(const char *file, int line, const char *what)
{
    printf("# FAIL %s:%d: %s\n", file, line, what);
    fflush(stdout);
    gn_test_failed = 1;
    longjmp(gn_test_jmp, 1);
}

#define GN_TEST(name) static void name(void)
#define GN_T(name) { #name, name }

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        if (!(cond))                                                                         \
            gn_test_fail(__FILE__, __LINE__, #cond);                                         \
    } while (0)

#define CHECK_EQ(a, b)                                                                       \
    do {                                                                                     \
        long long gn_a_ = (long long)(a), gn_b_ = (long long)(b);                            \
        if (gn_a_ != gn_b_) {                                                                \
            printf("# %s = %lld, %s = %lld\n", #a, gn_a_, #b, gn_b_);                        \
            gn_test_fail(__FILE__, __LINE__, #a " == " #b);                                  \
        }                                                                                    \
    } while (0)

#define CHECK_STR(a, b)                                                                      \
    do {                                                                                     \
        const char *gn_sa_ = (a), *gn_sb_ = (b);                                             \
        if (!gn_sa_ || !gn_sb_ || strcmp(gn_sa_, gn_sb_) != 0) {                             \
            printf("# %s = \"%s\"\n# %s = \"%s\"\n", #a, gn_sa_ ? gn_sa_ : "(null)", #b,     \
                   gn_sb_ ? gn_sb_ : "(null)");                                              \
            gn_test_fail(__FILE__, __LINE__, #a " equals " #b);                              \
        }                                                                                    \
    } while (0)

#define CHECK_MEM(a, b, len)                                                                 \
    do {                                                                                     \
        if (memcmp((a), (b), (len)) != 0)                                                    \
            gn_test_fail(__FILE__, __LINE__, "memcmp(" #a ", " #b ", " #len ") == 0");       \
    } while (0)

/** Checks that an int-returning call returned 0 or more; prints the gn error name. */
#define CHECK_OK(expr)                                                                       \
    do {                                                                                     \
        long long gn_rc_ = (long long)(expr);                                                \
        if (gn_rc_ < 0) {                                                                    \
            printf("# %s returned %lld\n", #expr, gn_rc_);                                   \
            gn_test_fail(__FILE__, __LINE__, #expr " >= 0");                                 \
        }                                                                                    \
    } while (0)

#define SKIP(reason)                                                                         \
    do {                                                                                     \
        gn_test_skip_reason = (reason);                                                      \
        longjmp(gn_test_jmp, 2);                                                             \
    } while (0)

/** Hex helper for vectors: decodes @hex into @out, returns the byte count or -1. */
static inline long gn_test_unhex(const char *hex, uint8_t *out, size_t out_len)
{
    size_t n = 0;
    while (hex[0] && hex[1]) {
        unsigned v;
        if (hex[0] == ' ' || hex[0] == '\n') {
            hex++;
            continue;
        }
        if (sscanf(hex, "%2x", &v) != 1 || n >= out_len)
            return -1;
        out[n++] = (uint8_t)v;
        hex += 2;
    }
    return (long)n;
}

static inline int gn_test_run(const gn_test_case *cases, size_t n, int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    size_t selected = 0;
    static size_t failed, passed, skipped;
    failed = passed = skipped = 0;
    for (size_t i = 0; i < n; i++)
        if (!filter || strstr(cases[i].name, filter))
            selected++;
    printf("TAP version 13\n1..%zu\n", selected);
    static size_t k;
    k = 0;
    for (size_t i = 0; i < n; i++) {
        if (filter && !strstr(cases[i].name, filter))
            continue;
        k++;
        gn_test_failed = 0;
        gn_test_skip_reason = NULL;
        fflush(stdout);
        int j = setjmp(gn_test_jmp);
        if (j == 0)
            cases[i].fn();
        if (j == 2) {
            printf("ok %zu - %s # SKIP %s\n", k, cases[i].name, gn_test_skip_reason);
            skipped++;
        } else if (gn_test_failed) {
            printf("not ok %zu - %s\n", k, cases[i].name);
            failed++;
        } else {
            printf("ok %zu - %s\n", k, cases[i].name);
            passed++;
        }
        fflush(stdout);
    }
    printf("# %zu passed, %zu failed, %zu skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}

#define GN_TEST_MAIN(...)                                                                    \
    int main(int argc, char **argv)                                                          \
    {                                                                                        \
        static const gn_test_case gn_cases_[] = {__VA_ARGS__};                               \
        return gn_test_run(gn_cases_, sizeof gn_cases_ / sizeof gn_cases_[0], argc, argv);   \
    }

#endif /* GN_TEST_H */
