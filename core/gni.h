/*
 * Internal helpers shared by core and components (never installed).
 * Include only from .c files of this project.
 */
#ifndef GNI_H
#define GNI_H

#include "golemnet/err.h"
#include "golemnet/log.h"

#include <assert.h>
#include <stddef.h>

#define GNI_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define GNI_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define GNI_MIN(a, b) ((a) < (b) ? (a) : (b))
#define GNI_MAX(a, b) ((a) > (b) ? (a) : (b))

/** Names of the built-in components ("kind:name"), NULL-terminated (generated). */
extern const char *const gni_builtin_names[];

/**
 * Maps a libuv error (negative errno-style) to a gn_err. Adapters only.
 * Unknown codes map to GN_EIO. Defined in core/uv_glue.c.
 */
int gni_err_from_uv(int uverr);

#endif /* GNI_H */
