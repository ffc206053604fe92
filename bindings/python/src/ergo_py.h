/*
 * golemnet Python bindings - the ErgoNode type (src/ergo.c), added to the
 * module golemnet._golemnet by its init function.
 */
#ifndef GOLEMNET_PY_ERGO_H
#define GOLEMNET_PY_ERGO_H

#include <Python.h>

/**
 * Adds ErgoNode and the ERGO_* note kinds to module @m; @raise turns a
 * negative gn_err into a Python exception (returns NULL). Returns 0 or -1
 * with an exception set.
 */
int gnpy_ergo_init(PyObject *m, PyObject *(*raise)(int));

#endif /* GOLEMNET_PY_ERGO_H */
