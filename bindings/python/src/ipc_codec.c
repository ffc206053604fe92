/*
 * golemnet Python bindings - the control protocol's codec for golemnet.ipc.
 *
 * The asyncio client (golemnet/ipc.py) does its own socket I/O and framing
 * (unsigned-varint lengths); the messages themselves are encoded and
 * decoded here, by the protobuf-c code generated from
 * ipc/proto/control.proto and the library's control-protocol wire core
 * (ipc/ctl_wire.h): a Python dict becomes a Request through the generated
 * descriptors (field names as in the .proto, a oneof member by its name)
 * and is encoded by gni_ctl_encode() (bounds checked, framed); a
 * ServerMessage or StreamInfo is checked by gni_ctl_check() before
 * protobuf_c_message_unpack() and becomes a dict. No protobuf is
 * hand-rolled and Python needs no protobuf package.
 *
 * Dict rules: integers for the integer and enum types, bool, str for
 * string, bytes-like for bytes, dict for a message, list for repeated
 * fields. Unknown keys raise ValueError naming the key; wrong types
 * TypeError naming the field. Decoded dicts hold every field that is set:
 * proto3 scalars always (their defaults too), a oneof only its member.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "ipc_codec.h"

#include "golemnet/ipc.h"
#include "ctl_wire.h"
#include "gni_ipc.h"
#include "golemnet/err.h"

#include <stdlib.h>
#include <string.h>

/* the generated descriptors this module converts */
#define GNPY_REQ_DESC gnctl__request__descriptor
#define GNPY_SRV_DESC gnctl__server_message__descriptor
#define GNPY_SINFO_DESC gnctl__stream_info__descriptor

static int dict_to_msg(PyObject *d, const ProtobufCMessageDescriptor *desc, ProtobufCMessage *m,
                       int depth);

/* The storage of field @f in @m. */
static void *field_ptr(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    return (char *)m + f->offset;
}

static size_t scalar_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32: case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_FLOAT: return 4;
    case PROTOBUF_C_TYPE_DOUBLE: return 8;
    case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
    }
    return 0;
}

/* Stores Python value @v as one element of field @f's type at @dst. */
static int set_scalar(PyObject *v, const ProtobufCFieldDescriptor *f, void *dst, int depth)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_ENUM: {
        long x = PyLong_AsLong(v);
        if (x == -1 && PyErr_Occurred()) {
            goto type_error;
        }
        if (x < INT32_MIN || x > INT32_MAX) {
            PyErr_Format(PyExc_OverflowError, "field '%s': %ld out of range", f->name, x);
            return -1;
        }
        *(int32_t *)dst = (int32_t)x;
        return 0;
    }
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32: {
        unsigned long x = PyLong_AsUnsignedLong(v);
        if (x == (unsigned long)-1 && PyErr_Occurred()) {
            goto type_error;
        }
        if (x > UINT32_MAX) {
            PyErr_Format(PyExc_OverflowError, "field '%s': %lu out of range", f->name, x);
            return -1;
        }
        *(uint32_t *)dst = (uint32_t)x;
        return 0;
    }
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64: {
        long long x = PyLong_AsLongLong(v);
        if (x == -1 && PyErr_Occurred()) {
            goto type_error;
        }
        *(int64_t *)dst = (int64_t)x;
        return 0;
    }
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: {
        unsigned long long x = PyLong_AsUnsignedLongLong(v);
        if (x == (unsigned long long)-1 && PyErr_Occurred()) {
            goto type_error;
        }
        *(uint64_t *)dst = (uint64_t)x;
        return 0;
    }
    case PROTOBUF_C_TYPE_BOOL:
        *(protobuf_c_boolean *)dst = PyObject_IsTrue(v) ? 1 : 0;
        return 0;
    case PROTOBUF_C_TYPE_FLOAT: case PROTOBUF_C_TYPE_DOUBLE: {
        double x = PyFloat_AsDouble(v);
        if (x == -1.0 && PyErr_Occurred()) {
            goto type_error;
        }
        if (f->type == PROTOBUF_C_TYPE_FLOAT) {
            *(float *)dst = (float)x;
        } else {
            *(double *)dst = x;
        }
        return 0;
    }
    case PROTOBUF_C_TYPE_STRING: {
        if (!PyUnicode_Check(v)) {
            goto type_error;
        }
        Py_ssize_t n = 0;
        const char *s = PyUnicode_AsUTF8AndSize(v, &n);
        if (!s) {
            return -1;
        }
        if (memchr(s, '\0', (size_t)n)) {
            PyErr_Format(PyExc_ValueError, "field '%s': embedded NUL", f->name);
            return -1;
        }
        char *copy = malloc((size_t)n + 1);
        if (!copy) {
            PyErr_NoMemory();
            return -1;
        }
        memcpy(copy, s, (size_t)n + 1);
        *(char **)dst = copy;
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        Py_buffer view;
        if (PyObject_GetBuffer(v, &view, PyBUF_SIMPLE) < 0) {
            PyErr_Clear();
            goto type_error;
        }
        ProtobufCBinaryData *b = dst;
        b->len = (size_t)view.len;
        b->data = malloc(view.len ? (size_t)view.len : 1);
        if (!b->data) {
            PyBuffer_Release(&view);
            b->len = 0;
            PyErr_NoMemory();
            return -1;
        }
        memcpy(b->data, view.buf, (size_t)view.len);
        PyBuffer_Release(&view);
        return 0;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        if (!PyDict_Check(v)) {
            goto type_error;
        }
        const ProtobufCMessageDescriptor *sd = f->descriptor;
        ProtobufCMessage *sub = calloc(1, sd->sizeof_message);
        if (!sub) {
            PyErr_NoMemory();
            return -1;
        }
        protobuf_c_message_init(sd, sub);
        *(ProtobufCMessage **)dst = sub; /* freed with the parent, even on error */
        return dict_to_msg(v, sd, sub, depth + 1);
    }
    }
type_error:
    PyErr_Format(PyExc_TypeError, "field '%s': wrong type %s", f->name, Py_TYPE(v)->tp_name);
    return -1;
}

static int dict_to_msg(PyObject *d, const ProtobufCMessageDescriptor *desc, ProtobufCMessage *m,
                       int depth)
{
    if (depth > 16) {
        PyErr_SetString(PyExc_ValueError, "message nested too deeply");
        return -1;
    }
    PyObject *key, *val;
    Py_ssize_t pos = 0;
    while (PyDict_Next(d, &pos, &key, &val)) {
        const char *name = PyUnicode_Check(key) ? PyUnicode_AsUTF8(key) : NULL;
        if (!name) {
            PyErr_SetString(PyExc_TypeError, "message keys are field names (str)");
            return -1;
        }
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(desc, name);
        if (!f) {
            PyErr_Format(PyExc_ValueError, "%s has no field '%s'", desc->short_name, name);
            return -1;
        }
        if (val == Py_None) {
            continue;
        }
        void *dst = field_ptr(m, f);
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            if (!PyList_Check(val) && !PyTuple_Check(val)) {
                PyErr_Format(PyExc_TypeError, "field '%s' is repeated: a list", f->name);
                return -1;
            }
            Py_ssize_t n = PySequence_Size(val);
            size_t es = scalar_size(f->type);
            void *arr = calloc(n ? (size_t)n : 1, es);
            if (!arr) {
                PyErr_NoMemory();
                return -1;
            }
            *(void **)dst = arr;
            size_t *count = (size_t *)((char *)m + f->quantifier_offset);
            *count = 0;
            for (Py_ssize_t i = 0; i < n; i++) {
                PyObject *item = PySequence_GetItem(val, i);
                if (!item) {
                    return -1;
                }
                int rc = set_scalar(item, f, (char *)arr + (size_t)i * es, depth);
                Py_DECREF(item);
                (*count)++; /* counted even when it failed: freed with the message */
                if (rc < 0) {
                    return -1;
                }
            }
            continue;
        }
        if (set_scalar(val, f, dst, depth) < 0) {
            return -1;
        }
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            *(uint32_t *)((char *)m + f->quantifier_offset) = f->id;
        } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
                   f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING) {
            *(protobuf_c_boolean *)((char *)m + f->quantifier_offset) = 1;
        }
    }
    return 0;
}

static PyObject *scalar_to_py(const ProtobufCFieldDescriptor *f, const void *src, int depth);

static PyObject *msg_to_dict(const ProtobufCMessage *m, int depth)
{
    const ProtobufCMessageDescriptor *desc = m->descriptor;
    PyObject *d = PyDict_New();
    if (!d) {
        return NULL;
    }
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        const void *src = (const char *)m + f->offset;
        PyObject *v = NULL;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
            const char *arr = *(char *const *)src;
            size_t es = scalar_size(f->type);
            v = PyList_New((Py_ssize_t)n);
            for (size_t k = 0; v && k < n; k++) {
                PyObject *item = scalar_to_py(f, arr + k * es, depth);
                if (!item) {
                    Py_CLEAR(v);
                    break;
                }
                PyList_SET_ITEM(v, (Py_ssize_t)k, item);
            }
        } else {
            if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
                if (*(const uint32_t *)((const char *)m + f->quantifier_offset) != f->id) {
                    continue;
                }
            } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
                if (!*(ProtobufCMessage *const *)src) {
                    continue;
                }
            } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
                       f->type != PROTOBUF_C_TYPE_STRING &&
                       !*(const protobuf_c_boolean *)((const char *)m + f->quantifier_offset)) {
                continue;
            }
            v = scalar_to_py(f, src, depth);
        }
        if (!v || PyDict_SetItemString(d, f->name, v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(v);
    }
    return d;
}

static PyObject *scalar_to_py(const ProtobufCFieldDescriptor *f, const void *src, int depth)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        return PyLong_FromLong(*(const int32_t *)src);
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32:
        return PyLong_FromUnsignedLong(*(const uint32_t *)src);
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
        return PyLong_FromLongLong(*(const int64_t *)src);
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
        return PyLong_FromUnsignedLongLong(*(const uint64_t *)src);
    case PROTOBUF_C_TYPE_BOOL:
        return PyBool_FromLong(*(const protobuf_c_boolean *)src);
    case PROTOBUF_C_TYPE_FLOAT:
        return PyFloat_FromDouble(*(const float *)src);
    case PROTOBUF_C_TYPE_DOUBLE:
        return PyFloat_FromDouble(*(const double *)src);
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)src;
        return PyUnicode_DecodeUTF8(s ? s : "", s ? (Py_ssize_t)strlen(s) : 0, "replace");
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = src;
        return PyBytes_FromStringAndSize((const char *)b->data, (Py_ssize_t)b->len);
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)src;
        if (!sub) {
            return PyDict_New();
        }
        if (depth > 16) {
            PyErr_SetString(PyExc_ValueError, "message nested too deeply");
            return NULL;
        }
        return msg_to_dict(sub, depth + 1);
    }
    }
    Py_RETURN_NONE;
}

PyObject *gnpy_ipc_encode(PyObject *self, PyObject *arg)
{
    (void)self;
    if (!PyDict_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "ipc_encode(request): a dict");
        return NULL;
    }
    const ProtobufCMessageDescriptor *desc = &GNPY_REQ_DESC;
    ProtobufCMessage *m = calloc(1, desc->sizeof_message);
    if (!m) {
        return PyErr_NoMemory();
    }
    protobuf_c_message_init(desc, m);
    PyObject *out = NULL;
    if (dict_to_msg(arg, desc, m, 0) == 0) {
        uint8_t *frame = NULL;
        size_t flen = 0;
        /* ctl_wire: the bounds the daemon checks (strings, counts, 4 MiB), then the frame */
        int rc = gni_ctl_encode(m, &frame, &flen);
        if (rc == 0) {
            out = PyBytes_FromStringAndSize((const char *)frame, (Py_ssize_t)flen);
            gn_free(frame);
        } else if (rc == GN_ENOMEM) {
            PyErr_NoMemory();
        } else {
            PyErr_Format(PyExc_ValueError, "request refused by the protocol's bounds (%s): at "
                         "most %u bytes, strings of %u bytes, %u entries per list",
                         gn_err_name(rc), GN_CTL_MSG_MAX, GN_CTL_STRING_MAX,
                         GN_CTL_REPEATED_MAX);
        }
    }
    protobuf_c_message_free_unpacked(m, NULL); /* every field was malloc'ed */
    return out;
}

static PyObject *decode_with(PyObject *arg, const ProtobufCMessageDescriptor *desc)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    char err[256] = "";
    ProtobufCMessage *m = NULL;
    /* ctl_wire's check first: the bounds, before protobuf-c allocates */
    if (gni_ctl_check(desc, view.buf, (size_t)view.len, NULL, err, sizeof err) == 0) {
        m = protobuf_c_message_unpack(desc, NULL, (size_t)view.len, view.buf);
    }
    PyBuffer_Release(&view);
    if (!m) {
        PyErr_Format(PyExc_ValueError, "not a valid %s message%s%s", desc->short_name,
                     err[0] ? ": " : "", err);
        return NULL;
    }
    PyObject *d = msg_to_dict(m, 0);
    protobuf_c_message_free_unpacked(m, NULL);
    return d;
}

PyObject *gnpy_ipc_decode(PyObject *self, PyObject *arg)
{
    (void)self;
    return decode_with(arg, &GNPY_SRV_DESC);
}

PyObject *gnpy_ipc_decode_stream_info(PyObject *self, PyObject *arg)
{
    (void)self;
    return decode_with(arg, &GNPY_SINFO_DESC);
}

PyObject *gnpy_ipc_parse_addr(PyObject *self, PyObject *arg)
{
    (void)self;
    const char *spec = PyUnicode_Check(arg) ? PyUnicode_AsUTF8(arg) : NULL;
    if (!spec) {
        PyErr_SetString(PyExc_TypeError, "ipc_parse_addr(address): a str");
        return NULL;
    }
    gni_ipc_addr a;
    char err[256] = "";
    int rc = gni_ipc_addr_parse(spec, &a, err, sizeof err);
    if (rc < 0) {
        /* GN_EACCES (not loopback, another protocol): PermissionError; else ValueError */
        PyErr_SetString(rc == GN_EACCES ? PyExc_PermissionError : PyExc_ValueError,
                        err[0] ? err : "bad control address");
        return NULL;
    }
    if (a.kind == GNI_IPC_TCP) {
        return Py_BuildValue("(ssi)", "tcp", a.ip, (int)a.port);
    }
    return Py_BuildValue("(ss)", "unix", a.path);
}

PyObject *gnpy_ipc_default_socket(PyObject *self, PyObject *noargs)
{
    (void)self;
    (void)noargs;
    char path[GN_IPC_PATH_MAX + 64];
    int rc = gn_ipc_default_socket(path, sizeof path);
    if (rc < 0) {
        PyErr_SetString(PyExc_OSError, "no default control socket path");
        return NULL;
    }
    return PyUnicode_FromString(path);
}
