/*
 * EDF internals shared by edf.c (codec) and edf_types.c (arena, types,
 * dictionaries, registry). Not installed.
 *
 * Invariants: basic types are the static singletons of edf_types.c (the
 * decoder maps every basic tag to them, so pointer equality holds for basic
 * types); registered types live in their registry's arena; a dictionary's
 * strings live in its own arena.
 */
#ifndef GNI_EDF_INT_H
#define GNI_EDF_INT_H

#include "golemnet/edf.h"

/** The basic type of a wire tag (scalars, error, Ergo kinds), or NULL. */
const gn_edf_type *gni_edf_type_of_tag(uint8_t tag);

/** Copies @len bytes into @a (NULL on failure; a non-NULL pointer for 0). */
void *gni_edf_arena_dup(gn_edf_arena *a, const void *p, size_t len);

/** Bytes of all @a's chunks (what it holds, used or not; after a reset, its largest chunk). */
size_t gni_edf_arena_held(const gn_edf_arena *a);

#endif /* GNI_EDF_INT_H */
