/* Logging goes only to the installed callback, filtered by level and component. */
#include "golemnet/err.h"
#include "golemnet/log.h"

#include "gn_test.h"

static int lines;
static char last[1100];
static char last_comp[64];

static void sink(void *ud, gn_log_level level, const char *component, const char *msg)
{
    (void)level;
    *(int *)ud += 1;
    lines++;
    snprintf(last, sizeof last, "%s", msg);
    snprintf(last_comp, sizeof last_comp, "%s", component);
}

GN_TEST(silent_without_callback)
{
    gn_log_set(NULL, NULL, GN_LOG_DEBUG);
    lines = 0;
    gn_log(GN_LOG_ERR, "core", "nothing %d", 1);
    CHECK_EQ(lines, 0);
    CHECK(!gn_log_enabled(GN_LOG_ERR, "core"));
}

GN_TEST(level_and_components)
{
    int calls = 0;
    gn_log_set(sink, &calls, GN_LOG_INFO);
    CHECK_OK(gn_log_set_components(NULL));
    lines = 0;
    gn_log(GN_LOG_DEBUG, "core", "dropped");
    CHECK_EQ(lines, 0);
    GN_LOG(GN_LOG_INFO, "tcp", "conn %d up", 7);
    CHECK_EQ(lines, 1);
    CHECK_EQ(calls, 1);
    CHECK_STR(last, "conn 7 up");
    CHECK_STR(last_comp, "tcp");

    CHECK_OK(gn_log_set_components("all,-noise"));
    CHECK(gn_log_enabled(GN_LOG_INFO, "tcp"));
    CHECK(!gn_log_enabled(GN_LOG_INFO, "noise"));
    CHECK_OK(gn_log_set_components("tcp,yamux"));
    CHECK(gn_log_enabled(GN_LOG_INFO, "yamux"));
    CHECK(!gn_log_enabled(GN_LOG_INFO, "yamu"));
    CHECK(!gn_log_enabled(GN_LOG_INFO, "noise"));

    char big[300];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK_EQ(gn_log_set_components(big), GN_EINVAL);
    gn_log_set_components(NULL);
    gn_log_set(NULL, NULL, GN_LOG_WARNING);
}

GN_TEST(long_lines_truncate)
{
    int calls = 0;
    gn_log_set(sink, &calls, GN_LOG_DEBUG);
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    gn_log(GN_LOG_ERR, "core", "%s", big);
    CHECK_EQ(strlen(last), 1023);
    gn_log_set(NULL, NULL, GN_LOG_WARNING);
}

static size_t allocs, frees;
static void *count_malloc(void *ud, size_t len)
{
    (void)ud;
    allocs++;
    return malloc(len);
}
static void *count_realloc(void *ud, void *p, size_t len)
{
    (void)ud;
    if (!p)
        allocs++;
    return realloc(p, len);
}
static void count_free(void *ud, void *p)
{
    (void)ud;
    frees++;
    free(p);
}

GN_TEST(allocator_hooks)
{
    gn_allocator a = {count_malloc, count_realloc, count_free, NULL};
    gn_set_allocator(&a);
    void *p = gn_malloc(10);
    char *s = gn_strdup("abc");
    CHECK(p && s);
    CHECK_STR(s, "abc");
    CHECK(gn_calloc(SIZE_MAX / 2, 4) == NULL); /* overflow refused */
    gn_free(p);
    gn_free(s);
    gn_free(NULL);
    gn_set_allocator(NULL);
    CHECK_EQ(allocs, 2);
    CHECK_EQ(frees, 2);
}

GN_TEST_MAIN(GN_T(silent_without_callback), GN_T(level_and_components),
             GN_T(long_lines_truncate), GN_T(allocator_hooks))
