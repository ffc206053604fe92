/*
 * conf.h - what the conformance suites share.
 *
 * A suite runs on one component, named on its command line by its built-in
 * name (the meson option: "tcp", "noise", "yamux") or its full registered
 * name ("/yamux/1.0.0"). The name is resolved the way a node resolves the
 * names in its configuration (gn_stack_set: the registered name or one of
 * its path segments), and only that: every expectation comes from the
 * component's capability bits (GN_<KIND>_CAP_*), never from its name.
 *
 * test/conformance/meson.build runs each suite once per built-in component
 * of its kind; conformance_coverage checks that this list and the registry
 * agree.
 */
#ifndef CONF_H
#define CONF_H

#include "golemnet/registry.h"
#include "golemnet/transport.h"

/* The component of @kind that @name selects in @reg, or NULL. */
static inline const gn_layer_ops *conf_component(const gn_registry *reg, gn_layer_kind kind,
                                                 const char *name)
{
    gn_stack *st = NULL;
    const gn_layer_ops *ops = NULL;
    if (gn_stack_new(reg, &st) < 0)
        return NULL;
    if (gn_stack_set(st, kind, name) == 0 && gn_stack_count(st, kind) == 1)
        ops = gn_stack_get(st, kind, 0);
    gn_stack_free(st);
    return ops;
}

/*
 * The transport that suites of other kinds run their connections over: a
 * reliable transport with a test listen address, preferably one that stays
 * in the process (GN_TRANSPORT_CAP_IN_PROCESS). NULL if none is built in.
 */
static inline const gn_transport_ops *conf_harness_transport(const gn_registry *reg)
{
    const gn_transport_ops *best = NULL;
    for (size_t i = 0; i < gn_registry_count(reg, GN_LAYER_TRANSPORT); i++) {
        const gn_transport_ops *t =
            (const gn_transport_ops *)gn_registry_get(reg, GN_LAYER_TRANSPORT, i);
        if (!(t->caps & GN_TRANSPORT_CAP_RELIABLE) || !t->test_listen_addr)
            continue;
        if (!best || ((t->caps & GN_TRANSPORT_CAP_IN_PROCESS) &&
                      !(best->caps & GN_TRANSPORT_CAP_IN_PROCESS)))
            best = t;
    }
    return best;
}

#endif /* CONF_H */
