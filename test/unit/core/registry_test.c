/* Registry and stacks: ABI checks, required entries, names, preference order. */
#include "golemnet/golemnet.h"

#include "gn_test.h"

static int fake_secure(gn_crypto *c, gn_stream *below, const gn_secure_params *p,
                       gn_secure_cb cb, void *arg, gn_op **op)
{
    (void)c, (void)below, (void)p, (void)cb, (void)arg, (void)op;
    return GN_ENOTSUP;
}

static const gn_crypto_ops sec_a = {.abi = GN_CRYPTO_ABI, .name = "/a", .secure = fake_secure};
static const gn_crypto_ops sec_b = {.abi = GN_CRYPTO_ABI, .name = "/b", .secure = fake_secure};
static const gn_crypto_ops sec_plain = {.abi = GN_CRYPTO_ABI,
                                        .name = "/plain",
                                        .flags = GN_LAYER_F_EXPLICIT_ONLY,
                                        .secure = fake_secure};
static const gn_crypto_ops sec_badabi = {.abi = GN_CRYPTO_ABI + 1, .name = "/x",
                                         .secure = fake_secure};
static const gn_crypto_ops sec_noentry = {.abi = GN_CRYPTO_ABI, .name = "/y"};

GN_TEST(add_and_find)
{
    gn_registry *reg;
    CHECK_OK(gn_registry_new(&reg));
    CHECK_OK(gn_registry_add(reg, GN_LAYER_CRYPTO, (const gn_layer_ops *)&sec_a));
    CHECK_OK(gn_registry_add(reg, GN_LAYER_CRYPTO, (const gn_layer_ops *)&sec_b));
    CHECK_EQ(gn_registry_add(reg, GN_LAYER_CRYPTO, (const gn_layer_ops *)&sec_a), GN_EEXIST);
    CHECK_EQ(gn_registry_add(reg, GN_LAYER_CRYPTO, (const gn_layer_ops *)&sec_badabi), GN_EABI);
    CHECK_EQ(gn_registry_add(reg, GN_LAYER_CRYPTO, (const gn_layer_ops *)&sec_noentry),
             GN_EINVAL);
    /* a crypto table registered as a transport has the wrong ABI/entries */
    CHECK(gn_registry_add(reg, GN_LAYER_TRANSPORT, (const gn_layer_ops *)&sec_a) < 0);
    CHECK_EQ(gn_registry_add(reg, (gn_layer_kind)99, (const gn_layer_ops *)&sec_a), GN_EINVAL);
    CHECK_EQ(gn_registry_count(reg, GN_LAYER_CRYPTO), 2);
    CHECK(gn_registry_find(reg, GN_LAYER_CRYPTO, "/b") == (const gn_layer_ops *)&sec_b);
    CHECK(gn_registry_find(reg, GN_LAYER_CRYPTO, "/c") == NULL);
    CHECK(gn_registry_find(reg, GN_LAYER_MUX, "/a") == NULL);
    CHECK(gn_registry_get(reg, GN_LAYER_CRYPTO, 0) == (const gn_layer_ops *)&sec_a);
    CHECK(gn_registry_get(reg, GN_LAYER_CRYPTO, 2) == NULL);
    gn_registry_free(reg);
}

GN_TEST(stack_order_and_explicit_only)
{
    gn_registry *reg;
    gn_stack *st;
    CHECK_OK(gn_registry_new(&reg));
    CHECK_OK(gn_registry_add(reg, GN_LAYER_CRYPTO, (const gn_layer_ops *)&sec_a));
    CHECK_OK(gn_registry_add(reg, GN_LAYER_CRYPTO, (const gn_layer_ops *)&sec_plain));
    CHECK_OK(gn_registry_add(reg, GN_LAYER_CRYPTO, (const gn_layer_ops *)&sec_b));
    CHECK_OK(gn_stack_new(reg, &st));
    /* plaintext-like components are never offered unless named */
    CHECK_EQ(gn_stack_count(st, GN_LAYER_CRYPTO), 2);
    CHECK_STR(gn_stack_get(st, GN_LAYER_CRYPTO, 0)->name, "/a");
    CHECK_STR(gn_stack_get(st, GN_LAYER_CRYPTO, 1)->name, "/b");
    CHECK_OK(gn_stack_set(st, GN_LAYER_CRYPTO, "/b,/plain,/a"));
    CHECK_EQ(gn_stack_count(st, GN_LAYER_CRYPTO), 3);
    CHECK_STR(gn_stack_get(st, GN_LAYER_CRYPTO, 0)->name, "/b");
    CHECK_STR(gn_stack_get(st, GN_LAYER_CRYPTO, 1)->name, "/plain");
    CHECK_EQ(gn_stack_set(st, GN_LAYER_CRYPTO, "/b,/nope"), GN_ENOTFOUND);
    CHECK_EQ(gn_stack_count(st, GN_LAYER_CRYPTO), 3); /* unchanged on failure */
    CHECK_EQ(gn_stack_set(st, GN_LAYER_CRYPTO, "/a,,/b"), GN_EINVAL);
    CHECK_EQ(gn_stack_set(st, GN_LAYER_CRYPTO, "/a,/a"), GN_EINVAL);
    CHECK_EQ(gn_stack_set(st, GN_LAYER_CRYPTO, ""), GN_EINVAL);
    CHECK(gn_stack_get(st, GN_LAYER_CRYPTO, 3) == NULL);
    /* short forms: a path segment of the protocol id */
    CHECK_OK(gn_stack_set(st, GN_LAYER_CRYPTO, "b,plain"));
    CHECK_EQ(gn_stack_count(st, GN_LAYER_CRYPTO), 2);
    CHECK_STR(gn_stack_get(st, GN_LAYER_CRYPTO, 0)->name, "/b");
    CHECK_EQ(gn_stack_set(st, GN_LAYER_CRYPTO, "b,/b"), GN_EINVAL); /* same component twice */
    CHECK_EQ(gn_stack_set(st, GN_LAYER_CRYPTO, "pla"), GN_ENOTFOUND); /* whole segments only */
    gn_stack_free(st);
    gn_registry_free(reg);
}

GN_TEST(builtins_register_cleanly)
{
    gn_registry *reg;
    CHECK_OK(gn_registry_new(&reg));
    CHECK_OK(gn_registry_add_builtins(reg));
    /* registering twice reports the duplicate */
    size_t total = 0;
    for (int k = 0; k < GN_LAYER_KIND_COUNT; k++)
        total += gn_registry_count(reg, (gn_layer_kind)k);
    if (total > 0)
        CHECK_EQ(gn_registry_add_builtins(reg), GN_EEXIST);
    for (int k = 0; k < GN_LAYER_KIND_COUNT; k++)
        for (size_t i = 0; i < gn_registry_count(reg, (gn_layer_kind)k); i++)
            printf("# built-in %s %s\n", gn_layer_kind_name((gn_layer_kind)k),
                   gn_registry_get(reg, (gn_layer_kind)k, i)->name);
    CHECK_STR(gn_layer_kind_name(GN_LAYER_MUX), "mux");
    CHECK(gn_layer_kind_name(GN_LAYER_KIND_COUNT) == NULL);
    gn_registry_free(reg);
}

GN_TEST_MAIN(GN_T(add_and_find), GN_T(stack_order_and_explicit_only),
             GN_T(builtins_register_cleanly))
