/* The error list: names, messages, fatality and bands come from one X-macro list. */
#include "golemnet/err.h"

#include "gn_test.h"

GN_TEST(names_and_messages)
{
    CHECK_STR(gn_err_name(0), "GN_OK");
    CHECK_STR(gn_err_name(GN_EAGAIN), "GN_EAGAIN");
    CHECK_STR(gn_err_name(GN_EPEERID), "GN_EPEERID");
    CHECK_STR(gn_err_name(-9999), "GN_EUNKNOWN");
    CHECK_STR(gn_strerror(0), "success");
    CHECK_STR(gn_strerror(-9999), "unknown error");
    CHECK(strstr(gn_strerror(GN_ECONNREFUSED), "refused") != NULL);
}

GN_TEST(every_code_is_distinct_and_named)
{
    static const int codes[] = {
#define X_(name, val, fatal, msg) name,
        GN_ERR_MAP(X_)
#undef X_
    };
    size_t n = sizeof codes / sizeof codes[0];
    CHECK(n > 40);
    for (size_t i = 0; i < n; i++) {
        CHECK(codes[i] < 0);
        CHECK(strcmp(gn_err_name(codes[i]), "GN_EUNKNOWN") != 0);
        CHECK(strcmp(gn_strerror(codes[i]), "unknown error") != 0);
        CHECK(gn_err_band(codes[i]) >= GN_ERR_BAND_GENERIC);
        CHECK(gn_err_band(codes[i]) <= GN_ERR_BAND_PEER);
        for (size_t j = i + 1; j < n; j++)
            CHECK(codes[i] != codes[j]);
    }
}

GN_TEST(fatality_and_bands)
{
    CHECK(!gn_err_is_fatal(0));
    CHECK(!gn_err_is_fatal(5));
    CHECK(!gn_err_is_fatal(GN_EAGAIN));
    CHECK(gn_err_is_fatal(GN_ECONNRESET));
    CHECK(gn_err_is_fatal(GN_EDECRYPT));
    CHECK(gn_err_is_fatal(-9999));
    CHECK_EQ(gn_err_band(GN_EINVAL), GN_ERR_BAND_GENERIC);
    CHECK_EQ(gn_err_band(GN_ECONNREFUSED), GN_ERR_BAND_IO);
    CHECK_EQ(gn_err_band(GN_EBADSIG), GN_ERR_BAND_CRYPTO);
    CHECK_EQ(gn_err_band(GN_EPROTO), GN_ERR_BAND_PEER);
    CHECK_EQ(gn_err_band(0), -1);
    CHECK_EQ(gn_err_band(-9999), -1);
}

GN_TEST_MAIN(GN_T(names_and_messages), GN_T(every_code_is_distinct_and_named),
             GN_T(fatality_and_bands))
