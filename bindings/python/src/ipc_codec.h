/*
 * golemnet Python bindings - the control protocol's codec (ipc_codec.c)
 * for golemnet.ipc, the asyncio client of a golemnet daemon.
 */
#ifndef GNPY_IPC_CODEC_H
#define GNPY_IPC_CODEC_H

#include <Python.h>

/** ipc_encode(request: dict) -> bytes: a Request, framed (varint length first). */
PyObject *gnpy_ipc_encode(PyObject *self, PyObject *arg);
/** ipc_decode(body: bytes) -> dict: a ServerMessage (framing removed). */
PyObject *gnpy_ipc_decode(PyObject *self, PyObject *arg);
/** ipc_decode_stream_info(body: bytes) -> dict: the StreamInfo of a handler connection. */
PyObject *gnpy_ipc_decode_stream_info(PyObject *self, PyObject *arg);

/** ipc_parse_addr(address: str) -> ("unix", path) | ("tcp", ip, port), by the daemons' rules. */
PyObject *gnpy_ipc_parse_addr(PyObject *self, PyObject *arg);
/** ipc_default_socket() -> str: the path `golemnet daemon` listens on by default. */
PyObject *gnpy_ipc_default_socket(PyObject *self, PyObject *noargs);

#endif
