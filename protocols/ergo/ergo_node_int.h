/*
 * golemnet - Ergo node layer (ergo_node.c), internal test hook.
 *
 * A tap sees every ENP frame the node emits (@out true, after it was built,
 * before the carrier takes it) and every frame it receives (@out false),
 * whole and borrowed for the call, with the remote node's name. Tests use it
 * to compare what golemnet writes with the recorded Go frames. Loop thread.
 */
#ifndef GNI_ERGO_NODE_INT_H
#define GNI_ERGO_NODE_INT_H

#include "golemnet/ergo.h"

typedef void (*gni_ergo_tap_fn)(void *ud, bool out, const char *node, const uint8_t *frame,
                                size_t len);

/** Installs @fn(@ud) on @en (NULL: none). */
void gni_ergo_node_set_tap(gn_ergo_node *en, gni_ergo_tap_fn fn, void *ud);

/* ---- hooks for remote spawn and application start (ergo_spawn.c) ------------------------ */

/* Sends the 199 frame holding @v (a registered proto struct) to @node with header order
 * @order, from process @from: with @answer only over an existing connection (an answer
 * never reconnects), else connecting on first use as a send does. Returns 0 or the send
 * errors. */
int gni_ergo_node_any_send(gn_ergo_node *en, const char *node, uint64_t from, uint8_t order,
                           const gn_edf_value *v, bool answer);

/* A pending 199 request of @p towards @node, answered by a MessageResult with ref @ref
 * (filled with a fresh ref of ours): @cb gets the Result value as its reply (status 0), or
 * the error; GN_ETIMEDOUT after @timeout (0 = default), GN_ECONNRESET when the connection
 * goes. Counts against @p's max_pending. Returns 0; GN_ELIMIT; GN_ENOMEM. */
int gni_ergo_node_ctl_pend(gn_ergo_proc *p, const char *node, gn_time timeout,
                           gn_ergo_call_cb cb, void *arg, uint64_t ref[3]);

/* Drops the pending request with @ref without a callback (its frame was not sent).
 * Returns true when it was pending; false when it had ended already (its callback ran,
 * e.g. the connection went down during the send). */
bool gni_ergo_node_ctl_cancel(gn_ergo_node *en, const uint64_t ref[3]);

/* @p's node, or NULL when @p has ended */
gn_ergo_node *gni_ergo_proc_node(const gn_ergo_proc *p);

/* true when @name is registered by a process of @en */
bool gni_ergo_node_name_taken(gn_ergo_node *en, const char *name);

/* ergo_spawn.c: a MessageSpawn (@kind GNI_ENP_ANY_SPAWN, @it its 3 fields) or a
 * MessageApplicationStart (4 fields) from @node: answers it (MessageResult). */
void gni_ergo_spawn_on_request(gn_ergo_node *en, const char *node, int kind,
                               const gn_edf_value *it);

/* ergo_spawn.c: frees what gn_ergo_spawn_enable()/gn_ergo_app_enable() kept (detach). */
void gni_ergo_spawn_free(gn_ergo_node *en);

/* the table ergo_spawn.c keeps per node: a slot in gn_ergo_node */
void **gni_ergo_node_spawn_slot(gn_ergo_node *en);

/* ergo_spawn.c: process @p of @en ended (gn_ergo_proc_free/exit; dead already, still
 * allocated): its requests end with GN_ECLOSED and @tag (its spawn tag, NULL: none)
 * counts one live process less. Not called by gn_ergo_detach(). */
void gni_ergo_spawn_on_proc_end(gn_ergo_node *en, gn_ergo_proc *p, void *tag);

/* a tag ergo_spawn.c keeps on a process (the factory entry that made it; NULL: none) */
void *gni_ergo_proc_tag(const gn_ergo_proc *p);
void gni_ergo_proc_set_tag(gn_ergo_proc *p, void *tag);

/* clears @tag from every process of @en that has it (the entry goes) */
void gni_ergo_node_untag(gn_ergo_node *en, const void *tag);

/* true when @p is registered as @name */
bool gni_ergo_proc_holds_name(const gn_ergo_proc *p, const char *name);

/* our own network flags (ergo.flags, as announced), 0 when the component is not running */
uint64_t gni_ergo_node_own_flags(gn_ergo_node *en);

/* ---- hooks for the any-thread queue (ergo_queue.c) -------------------------------------- */

/* the loop @en runs on */
gn_loop *gni_ergo_node_loop(gn_ergo_node *en);

/* ergo_queue.c: a process with callback @cb(@arg) ended (gn_ergo_proc_free/exit, or
 * gn_ergo_detach); a no-op unless it is a queued process, whose queue then closes. */
void gni_ergo_queue_on_proc_end(gn_ergo_msg_cb cb, void *arg);

#endif /* GNI_ERGO_NODE_INT_H */
