/*
 * golemnet - the component registry and stacks.
 *
 * A registry holds the ops tables of every available component, per kind.
 * Components register through gn_<kind>_<name>_register(gn_registry *);
 * gn_registry_add_builtins() calls the ones selected by meson options (the
 * list is generated at build time, see docs/architecture.md). Applications
 * may register their own components too.
 *
 * A stack is an ordered choice of component names per kind: the order is
 * the preference order offered in negotiation.
 *
 * Thread context: build registries and stacks before starting nodes; after
 * that they are read-only and may be shared between threads.
 */
#ifndef GOLEMNET_REGISTRY_H
#define GOLEMNET_REGISTRY_H

#include "golemnet/layer.h"

GN_BEGIN_DECLS

typedef struct gn_registry gn_registry;
typedef struct gn_stack gn_stack;

/** Most components per kind, in a registry and in a stack. */
#define GN_REGISTRY_MAX_PER_KIND 32

/** Creates an empty registry. Errors: GN_ENOMEM. */
GN_API int gn_registry_new(gn_registry **out);
/** Frees it. Ops tables are static and not freed. */
GN_API void gn_registry_free(gn_registry *reg);

/**
 * Registers @ops (a gn_<kind>_ops cast to gn_layer_ops) as @kind.
 * Errors: GN_EABI (ops->abi is not this build's ABI for @kind), GN_EINVAL
 * (NULL, empty name, missing required entries), GN_EEXIST (same name
 * already registered for @kind), GN_ELIMIT (GN_REGISTRY_MAX_PER_KIND).
 */
GN_API int gn_registry_add(gn_registry *reg, gn_layer_kind kind, const gn_layer_ops *ops);

/** Looks up a component by name; NULL if absent. */
GN_API const gn_layer_ops *gn_registry_find(const gn_registry *reg, gn_layer_kind kind,
                                            const char *name);

/** Number of components of @kind, and the @idx-th in registration order. */
GN_API size_t gn_registry_count(const gn_registry *reg, gn_layer_kind kind);
GN_API const gn_layer_ops *gn_registry_get(const gn_registry *reg, gn_layer_kind kind,
                                           size_t idx);

/**
 * Registers every built-in component selected at build time. Returns 0 or
 * the first registration error.
 */
GN_API int gn_registry_add_builtins(gn_registry *reg);

/**
 * Creates a stack over @reg (borrowed, must outlive it) holding, for each
 * kind, every registered component without GN_LAYER_F_EXPLICIT_ONLY, in
 * registration order. Errors: GN_ENOMEM.
 */
GN_API int gn_stack_new(const gn_registry *reg, gn_stack **out);
GN_API void gn_stack_free(gn_stack *st);

/**
 * Replaces the choice for @kind with the comma-separated names in @list, in
 * preference order. An entry is a registered name ("/noise") or a path
 * segment of one ("noise" for "/noise", "ecies" for "/golem/ecies/1.0.0",
 * "yamux" for "/yamux/1.0.0"); the first match wins. Errors: GN_ENOTFOUND (a name not
 * registered for @kind; the stack is unchanged), GN_EINVAL (empty entry,
 * duplicate), GN_ELIMIT.
 */
GN_API int gn_stack_set(gn_stack *st, gn_layer_kind kind, const char *list);

/** Number of components chosen for @kind, and the @idx-th in preference order. */
GN_API size_t gn_stack_count(const gn_stack *st, gn_layer_kind kind);
GN_API const gn_layer_ops *gn_stack_get(const gn_stack *st, gn_layer_kind kind, size_t idx);

GN_END_DECLS

#endif /* GOLEMNET_REGISTRY_H */
