/*
 * golemnet Python bindings - the extension module `golemnet._golemnet`,
 * written against the CPython C API.
 *
 * Three types wrap the native objects: Node (gn_node plus its thread
 * bridge), Channel (a held gn_channel) and Stream (a bridge stream). They
 * are the low-level layer; the asyncio classes in golemnet/_aio.py build
 * the public API on them. Calls that can wait (joining the loop thread,
 * key-file I/O, copies of large buffers under a lock the loop thread also
 * takes) run with the GIL released. Nothing here blocks on the network:
 * completions arrive as notes (Node.poll) and node events
 * (Node.next_events), both signalled through file descriptors the asyncio
 * loop watches.
 *
 * Errors: negative gn_err codes become exceptions made by the factory that
 * golemnet/errors.py installs (_set_error_factory); without one, OSError.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "bridge.h"
#include "ipc_codec.h"
#ifdef GNPY_HAVE_ERGO
#include "ergo_py.h"
#endif

#include <stdio.h>
#include <string.h>

#define GNPY_BIG_COPY 65536 /* release the GIL around copies at least this long */
#define GNPY_POLL_MAX 256

static PyObject *error_factory; /* callable(code) -> exception instance */

static PyObject *gnpy_raise(int code)
{
    if (error_factory) {
        PyObject *exc = PyObject_CallFunction(error_factory, "i", code);
        if (exc) {
            PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
            Py_DECREF(exc);
        }
        return NULL;
    }
    PyErr_Format(PyExc_OSError, "%s: %s", gn_err_name(code), gn_strerror(code));
    return NULL;
}

/* ------------------------------------------------------------------------
 * Types
 */

typedef struct {
    PyObject_HEAD
    gn_node *node;
    gn_identity *identity;
    gnb_bridge *br;
    int state; /* NODE_* below */
} NodeObject;

enum { NODE_NEW = 0, NODE_STARTED = 1, NODE_CLOSING = 2, NODE_FREED = 3 };

typedef struct {
    PyObject_HEAD
    gn_channel *ch;
    NodeObject *node;
    uint64_t id;
    gn_channel_metrics last; /* the last metrics read (returned after the node is freed) */
} ChannelObject;

typedef struct {
    PyObject_HEAD
    gnb_stream *st;
    NodeObject *node;
} StreamObject;

static PyTypeObject NodeType;
static PyTypeObject ChannelType;
static PyTypeObject StreamType;
static PyTypeObject GroupType;

/* A multicast channel on a group (gn_node_dial_group): a pubsub topic. */
typedef struct {
    PyObject_HEAD
    gn_multicast *mc;
    NodeObject *node; /* a reference: the node object outlives the handle */
} GroupObject;

/* ------------------------------------------------------------------------
 * Helpers
 */

static PyObject *peer_str(const gn_peer_id *pid)
{
    if (pid->len == 0) {
        Py_RETURN_NONE;
    }
    char buf[GN_PEER_ID_MAX_STRLEN];
    if (gn_peer_id_to_string(pid, buf, sizeof buf) < 0) {
        Py_RETURN_NONE;
    }
    return PyUnicode_FromString(buf);
}

/* A NUL-terminated string that may come from a peer: invalid UTF-8 is replaced. */
static PyObject *str_lax(const char *v)
{
    return PyUnicode_DecodeUTF8(v, (Py_ssize_t)strlen(v), "replace");
}

static int seed_identity(PyObject *seed, gn_identity **out)
{
    if (PyLong_Check(seed)) {
        unsigned long v = PyLong_AsUnsignedLong(seed);
        if (PyErr_Occurred() || v > 0xffffffffUL) {
            PyErr_Clear();
            PyErr_SetString(PyExc_ValueError, "key_seed: an int in [0, 2**32) or 32 bytes");
            return -1;
        }
        int rc = gn_identity_from_int_seed((uint32_t)v, out);
        if (rc < 0) {
            gnpy_raise(rc);
            return -1;
        }
        return 0;
    }
    Py_buffer b;
    if (PyObject_GetBuffer(seed, &b, PyBUF_SIMPLE) < 0) {
        PyErr_Clear();
        PyErr_SetString(PyExc_TypeError, "key_seed: an int in [0, 2**32) or 32 bytes");
        return -1;
    }
    if (b.len != GN_ED25519_SEEDBYTES) {
        PyBuffer_Release(&b);
        PyErr_SetString(PyExc_ValueError, "key_seed: 32 bytes");
        return -1;
    }
    int rc = gn_identity_from_seed(b.buf, out);
    PyBuffer_Release(&b);
    if (rc < 0) {
        gnpy_raise(rc);
        return -1;
    }
    return 0;
}

static ChannelObject *channel_wrap(NodeObject *node, gn_channel *ch, bool hold)
{
    ChannelObject *c = PyObject_New(ChannelObject, &ChannelType);
    if (!c) {
        if (!hold) {
            gn_channel_rele(ch);
        }
        return NULL;
    }
    c->ch = hold ? gn_channel_hold(ch) : ch;
    Py_INCREF(node);
    c->node = node;
    gn_channel_info info;
    gn_channel_state_get(ch, &info);
    c->id = info.id;
    memset(&c->last, 0, sizeof c->last);
    return c;
}

/* Wraps a stream whose reference we own (taken over). */
static StreamObject *stream_wrap(NodeObject *node, gnb_stream *st)
{
    StreamObject *s = PyObject_New(StreamObject, &StreamType);
    if (!s) {
        (void)gnb_stream_close(st, true);
        gnb_stream_rele(st);
        return NULL;
    }
    s->st = st;
    Py_INCREF(node);
    s->node = node;
    gnb_stream_set_user(st, s);
    return s;
}

static int node_check_alive(NodeObject *self)
{
    if (!self->node || self->state >= NODE_CLOSING) {
        gnpy_raise(GN_ECLOSED);
        return -1;
    }
    return 0;
}

static int get_cstr_list(PyObject *seq, const char ***out, size_t *n, PyObject **keep)
{
    *out = NULL;
    *n = 0;
    *keep = NULL;
    if (!seq || seq == Py_None) {
        return 0;
    }
    if (PyUnicode_Check(seq)) {
        PyErr_SetString(PyExc_TypeError, "listen and options: a sequence of strings");
        return -1;
    }
    PyObject *fast = PySequence_Fast(seq, "listen and options: a sequence of strings");
    if (!fast) {
        return -1;
    }
    Py_ssize_t k = PySequence_Fast_GET_SIZE(fast);
    const char **arr = k ? PyMem_Calloc((size_t)k, sizeof *arr) : NULL;
    if (k && !arr) {
        Py_DECREF(fast);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < k; i++) {
        PyObject *it = PySequence_Fast_GET_ITEM(fast, i);
        if (!PyUnicode_Check(it) || !(arr[i] = PyUnicode_AsUTF8(it))) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_TypeError, "listen and options: a sequence of strings");
            }
            PyMem_Free(arr);
            Py_DECREF(fast);
            return -1;
        }
    }
    *out = arr;
    *n = (size_t)k;
    *keep = fast;
    return 0;
}

/* ------------------------------------------------------------------------
 * Node
 */

static void Node_dealloc(NodeObject *self)
{
    if (self->node) {
        if (self->br) {
            gnb_bridge_detach(self->br);
        }
        gn_node *n = self->node;
        self->node = NULL;
        Py_BEGIN_ALLOW_THREADS
        gn_node_free(n);
        Py_END_ALLOW_THREADS
    }
    if (self->br) {
        gnb_bridge_rele(self->br);
        self->br = NULL;
    }
    gn_identity_free(self->identity);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Node_init(NodeObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"listen", "key_seed", "key_file", "transports", "security",
                             "muxers", "protocols", "max_message_len", "event_queue_capacity",
                             "rx_limit", "tx_limit", "max_connections",
                             "max_connections_per_peer", "idle_timeout_ms",
                             "upgrade_timeout_ms", "agent_version", "routers", "discovery",
                             "nat", "options", "protocol_components", NULL};
    PyObject *listen = NULL, *seed = Py_None, *options = NULL;
    const char *key_file = NULL, *transports = NULL, *security = NULL, *muxers = NULL;
    const char *agent = NULL, *routers = NULL, *discovery = NULL, *nat = NULL;
    const char *pcomps = NULL;
    long long protocols = -1;
    Py_ssize_t max_msg = 0, evq = 0, rx_limit = 0, tx_limit = 0;
    unsigned int max_conn = 0, max_per_peer = 0;
    unsigned long long idle_ms = 0, upgrade_ms = 0;
    if (self->node) {
        PyErr_SetString(PyExc_RuntimeError, "Node already initialised");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|OOzzzzLnnnnIIKKzzzzOz", kwlist, &listen, &seed,
                                     &key_file, &transports, &security, &muxers, &protocols,
                                     &max_msg, &evq, &rx_limit, &tx_limit, &max_conn,
                                     &max_per_peer, &idle_ms, &upgrade_ms, &agent, &routers,
                                     &discovery, &nat, &options, &pcomps)) {
        return -1;
    }
    if (max_msg < 0 || evq < 0 || rx_limit < 0 || tx_limit < 0) {
        PyErr_SetString(PyExc_ValueError, "sizes must not be negative");
        return -1;
    }
    /* identity: key_file (loaded, or created from the seed / at random), seed, random */
    gn_identity *id = NULL;
    int rc = 0;
    if (key_file) {
        Py_BEGIN_ALLOW_THREADS
        rc = gn_identity_load(key_file, &id);
        Py_END_ALLOW_THREADS
        if (rc == GN_ENOTFOUND) {
            if (seed != Py_None) {
                if (seed_identity(seed, &id) < 0) {
                    return -1;
                }
                rc = 0;
            } else {
                rc = gn_identity_generate(&id);
            }
            if (rc == 0) {
                Py_BEGIN_ALLOW_THREADS
                rc = gn_identity_save(id, key_file);
                Py_END_ALLOW_THREADS
            }
        }
        if (rc < 0) {
            gn_identity_free(id);
            gnpy_raise(rc);
            return -1;
        }
    } else if (seed != Py_None) {
        if (seed_identity(seed, &id) < 0) {
            return -1;
        }
    }
    const char **laddrs;
    size_t nl;
    PyObject *keep;
    if (get_cstr_list(listen, &laddrs, &nl, &keep) < 0) {
        gn_identity_free(id);
        return -1;
    }
    const char **opts;
    size_t nopts;
    PyObject *keep_opts;
    if (get_cstr_list(options, &opts, &nopts, &keep_opts) < 0) {
        PyMem_Free(laddrs);
        Py_XDECREF(keep);
        gn_identity_free(id);
        return -1;
    }
    gn_node_config cfg;
    gn_node_config_default(&cfg);
    cfg.identity = id;
    cfg.transports = transports;
    cfg.security = security;
    cfg.muxers = muxers;
    cfg.listen = laddrs;
    cfg.n_listen = nl;
    if (protocols >= 0) {
        cfg.protocols = (uint32_t)protocols;
    }
    cfg.protocol_components = pcomps;
    if (max_msg) {
        cfg.max_message_len = (size_t)max_msg;
    }
    if (evq) {
        cfg.event_queue_capacity = (size_t)evq;
    }
    if (max_conn) {
        cfg.max_connections = max_conn;
    }
    if (max_per_peer) {
        cfg.max_connections_per_peer = max_per_peer;
    }
    if (idle_ms) {
        cfg.idle_timeout = (gn_time)idle_ms * GN_MS;
    }
    if (upgrade_ms) {
        cfg.upgrade_timeout = (gn_time)upgrade_ms * GN_MS;
    }
    cfg.agent_version = agent;
    cfg.routers = routers;
    cfg.discovery = discovery;
    cfg.nat = nat;
    cfg.options = opts;
    cfg.n_options = nopts;
    gn_node *n = NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = gn_node_new(&cfg, &n);
    Py_END_ALLOW_THREADS
    PyMem_Free(laddrs);
    Py_XDECREF(keep);
    PyMem_Free(opts);
    Py_XDECREF(keep_opts);
    if (rc < 0) {
        gn_identity_free(id);
        gnpy_raise(rc);
        return -1;
    }
    gnb_bridge *br = NULL;
    rc = gnb_bridge_new(n, (size_t)rx_limit, (size_t)tx_limit, &br);
    if (rc < 0) {
        Py_BEGIN_ALLOW_THREADS
        gn_node_free(n);
        Py_END_ALLOW_THREADS
        gn_identity_free(id);
        gnpy_raise(rc);
        return -1;
    }
    self->node = n;
    self->identity = id;
    self->br = br;
    self->state = NODE_NEW;
    return 0;
}

static PyObject *Node_start(NodeObject *self, PyObject *unused)
{
    (void)unused;
    if (!self->node || self->state != NODE_NEW) {
        return gnpy_raise(self->node && self->state < NODE_CLOSING ? GN_ESTATE : GN_ECLOSED);
    }
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = gn_node_start(self->node);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        return gnpy_raise(rc);
    }
    self->state = NODE_STARTED;
    Py_RETURN_NONE;
}

static PyObject *Node_close(NodeObject *self, PyObject *unused)
{
    (void)unused;
    if (self->node && self->state < NODE_CLOSING) {
        bool was_new = self->state == NODE_NEW;
        self->state = NODE_CLOSING;
        Py_BEGIN_ALLOW_THREADS
        gn_node_close(self->node, NULL, NULL);
        Py_END_ALLOW_THREADS
        return PyBool_FromLong(!was_new);
    }
    Py_RETURN_FALSE;
}

static PyObject *Node_free(NodeObject *self, PyObject *unused)
{
    (void)unused;
    if (self->node) {
        gn_node *n = self->node;
        gnb_bridge_detach(self->br);
        self->node = NULL;
        self->state = NODE_FREED;
        Py_BEGIN_ALLOW_THREADS
        gn_node_free(n); /* closes if needed, joins the loop thread */
        Py_END_ALLOW_THREADS
    }
    Py_RETURN_NONE;
}

static PyObject *Node_get_peer_id(NodeObject *self, void *c)
{
    (void)c;
    gn_peer_id pid;
    if (self->identity) {
        gn_identity_peer_id(self->identity, &pid);
    } else if (self->node) {
        gn_node_peer_id(self->node, &pid);
    } else {
        Py_RETURN_NONE;
    }
    return peer_str(&pid);
}

static PyObject *Node_get_event_fd(NodeObject *self, void *c)
{
    (void)c;
    return PyLong_FromLong(self->node ? gn_node_event_fd(self->node) : -1);
}

static PyObject *Node_get_bridge_fd(NodeObject *self, void *c)
{
    (void)c;
    return PyLong_FromLong(self->br ? gnb_bridge_fd(self->br) : -1);
}

/* the gn_node for golemnet._golemnet.ErgoNode (a capsule; valid while the node lives) */
static PyObject *Node_get_ptr(NodeObject *self, void *c)
{
    (void)c;
    if (!self->node) {
        return gnpy_raise(GN_ECLOSED);
    }
    return PyCapsule_New(self->node, "golemnet.gn_node", NULL);
}

static PyObject *Node_get_state(NodeObject *self, void *c)
{
    (void)c;
    return PyLong_FromLong(self->state);
}

static PyObject *Node_get_kick_failed(NodeObject *self, void *c)
{
    (void)c;
    return PyBool_FromLong(self->br && gnb_bridge_kick_failed(self->br));
}

static PyObject *Node_listen(NodeObject *self, PyObject *args)
{
    const char *addr;
    if (!PyArg_ParseTuple(args, "s", &addr) || node_check_alive(self) < 0) {
        return NULL;
    }
    uint64_t req = 0;
    int rc = gn_node_listen(self->node, addr, &req);
    if (rc < 0) {
        return gnpy_raise(rc);
    }
    return PyLong_FromUnsignedLongLong(req);
}

static PyObject *Node_dial(NodeObject *self, PyObject *args)
{
    const char *addr;
    unsigned long long token;
    if (!PyArg_ParseTuple(args, "sK", &addr, &token) || node_check_alive(self) < 0) {
        return NULL;
    }
    int rc = gnb_dial(self->br, addr, token);
    if (rc < 0) {
        return gnpy_raise(rc);
    }
    Py_RETURN_NONE;
}

static PyObject *Node_ping(NodeObject *self, PyObject *args)
{
    ChannelObject *ch;
    unsigned long long token;
    if (!PyArg_ParseTuple(args, "O!K", &ChannelType, &ch, &token) ||
        node_check_alive(self) < 0) {
        return NULL;
    }
    int rc = gnb_ping(self->br, ch->ch, token);
    if (rc < 0) {
        return gnpy_raise(rc);
    }
    Py_RETURN_NONE;
}

static PyObject *Node_open_stream(NodeObject *self, PyObject *args)
{
    ChannelObject *ch;
    const char *proto;
    unsigned long long token;
    if (!PyArg_ParseTuple(args, "O!sK", &ChannelType, &ch, &proto, &token) ||
        node_check_alive(self) < 0) {
        return NULL;
    }
    int rc = gnb_open_stream(self->br, ch->ch, proto, token);
    if (rc < 0) {
        return gnpy_raise(rc);
    }
    Py_RETURN_NONE;
}

static PyObject *Node_peer_info(NodeObject *self, PyObject *args)
{
    const char *peer;
    Py_ssize_t peer_len;
    unsigned long long token;
    if (!PyArg_ParseTuple(args, "s#K", &peer, &peer_len, &token) ||
        node_check_alive(self) < 0) {
        return NULL;
    }
    gn_peer_id pid;
    int rc = gn_peer_id_parse(peer, (size_t)peer_len, &pid);
    if (rc < 0) {
        return gnpy_raise(rc);
    }
    rc = gnb_peer_lookup(self->br, &pid, token);
    if (rc < 0) {
        return gnpy_raise(rc);
    }
    Py_RETURN_NONE;
}

/*
 * dht(op, key, value, peer, max, token): one gn_node_dht_* call (DHT_*);
 * NOTE_DHT note. @key and @value are bytes (the namespace for DHT_ALLOW),
 * @peer a peer ID string or None.
 */
static PyObject *Node_dht(NodeObject *self, PyObject *args)
{
    int op;
    const char *key, *value, *peer;
    Py_ssize_t key_len, value_len, peer_len;
    Py_ssize_t max;
    unsigned long long token;
    if (!PyArg_ParseTuple(args, "iy#y#z#nK", &op, &key, &key_len, &value, &value_len, &peer,
                          &peer_len, &max, &token) ||
        node_check_alive(self) < 0) {
        return NULL;
    }
    gn_peer_id pid;
    if (peer) {
        int prc = gn_peer_id_parse(peer, (size_t)peer_len, &pid);
        if (prc < 0) {
            return gnpy_raise(prc);
        }
    }
    if (max < 0) {
        return gnpy_raise(GN_EINVAL);
    }
    int rc = gnb_dht_call(self->br, op, (const uint8_t *)key, (size_t)key_len,
                          (const uint8_t *)value, (size_t)value_len, peer ? &pid : NULL,
                          (size_t)max, token);
    if (rc < 0) {
        return gnpy_raise(rc);
    }
    Py_RETURN_NONE;
}

/*
 * Resource transfer (golemnet/transfer.h): xfer(op, a, b, providers, n,
 * interval_ms, token) with op "share" (a: path), "provide" (a: CID),
 * "find" (a: CID, n: max), "fetch" (a: CID, b: path, providers: a list of
 * multiaddr strings, n: memory chunks or 0, interval_ms: progress
 * interval), "cancel" (token: the fetch's). NOTE_XFER notes.
 */
static PyObject *Node_xfer(NodeObject *self, PyObject *args)
{
    const char *op, *a, *b;
    PyObject *prov;
    Py_ssize_t n;
    unsigned long long interval_ms, token;
    if (!PyArg_ParseTuple(args, "szzOnKK", &op, &a, &b, &prov, &n, &interval_ms, &token) ||
        node_check_alive(self) < 0) {
        return NULL;
    }
    int rc;
    if (!strcmp(op, "share") && a) {
        rc = gnb_xfer_share(self->br, a, token);
    } else if (!strcmp(op, "provide") && a) {
        rc = gnb_xfer_provide(self->br, a, token);
    } else if (!strcmp(op, "find") && a && n >= 1 && n <= 64) {
        rc = gnb_xfer_find(self->br, a, (size_t)n, token);
    } else if (!strcmp(op, "cancel")) {
        rc = gnb_xfer_cancel(self->br, token);
    } else if (!strcmp(op, "fetch") && a && b && PyList_Check(prov) && n >= 0 && n <= 256) {
        Py_ssize_t np = PyList_GET_SIZE(prov);
        if (np > 64) {
            return gnpy_raise(GN_EINVAL);
        }
        const char *pv[64];
        for (Py_ssize_t i = 0; i < np; i++) {
            pv[i] = PyUnicode_AsUTF8(PyList_GET_ITEM(prov, i));
            if (!pv[i]) {
                return NULL;
            }
        }
        rc = gnb_xfer_fetch(self->br, a, b, pv, (size_t)np, (unsigned)n,
                            (gn_time)interval_ms * GN_MS, token);
    } else {
        rc = GN_EINVAL;
    }
    if (rc < 0) {
        return gnpy_raise(rc);
    }
    Py_RETURN_NONE;
}

/* A NOTE_XFER note's obj: (type, (10 counters), peer or None, detail or None, [addrs]). */
static PyObject *xfer_obj(const gnb_xfer *x)
{
    if (!x) {
        Py_RETURN_NONE;
    }
    PyObject *addrs = PyList_New(0);
    for (size_t i = 0; addrs && i < x->n_addrs; i++) {
        PyObject *s = PyUnicode_FromString(x->addrs[i]);
        if (!s || PyList_Append(addrs, s) < 0) {
            Py_XDECREF(s);
            Py_CLEAR(addrs);
            break;
        }
        Py_DECREF(s);
    }
    if (!addrs) {
        return NULL;
    }
    return Py_BuildValue("(i(KKKKKKKKKK)zzN)", x->type, (unsigned long long)x->v[0],
                         (unsigned long long)x->v[1], (unsigned long long)x->v[2],
                         (unsigned long long)x->v[3], (unsigned long long)x->v[4],
                         (unsigned long long)x->v[5], (unsigned long long)x->v[6],
                         (unsigned long long)x->v[7], (unsigned long long)x->v[8],
                         (unsigned long long)x->v[9], x->peer, x->detail, addrs);
}

static PyObject *Node_refresh_metrics(NodeObject *self, PyObject *args)
{
    ChannelObject *ch;
    unsigned long long token;
    if (!PyArg_ParseTuple(args, "O!K", &ChannelType, &ch, &token) ||
        node_check_alive(self) < 0) {
        return NULL;
    }
    int rc = gnb_refresh_metrics(self->br, ch->ch, token);
    if (rc < 0) {
        return gnpy_raise(rc);
    }
    Py_RETURN_NONE;
}

static PyObject *Node_set_handler(NodeObject *self, PyObject *args)
{
    const char *proto;
    int add;
    unsigned long long token;
    if (!PyArg_ParseTuple(args, "spK", &proto, &add, &token) || node_check_alive(self) < 0) {
        return NULL;
    }
    int rc = gnb_set_handler(self->br, proto, add != 0, self->state != NODE_NEW, token);
    if (rc < 0) {
        return gnpy_raise(rc);
    }
    return PyLong_FromLong(rc);
}

static PyObject *Node_unicast(NodeObject *self, PyObject *args)
{
    const char *to;
    Py_buffer b;
    if (!PyArg_ParseTuple(args, "sy*", &to, &b)) {
        return NULL;
    }
    if (node_check_alive(self) < 0) {
        PyBuffer_Release(&b);
        return NULL;
    }
    uint64_t req = 0;
    int rc = gn_node_unicast(self->node, to, b.buf, (size_t)b.len, &req);
    PyBuffer_Release(&b);
    if (rc < 0) {
        return gnpy_raise(rc);
    }
    return PyLong_FromUnsignedLongLong(req);
}

static PyObject *Node_broadcast(NodeObject *self, PyObject *args)
{
    Py_buffer b;
    if (!PyArg_ParseTuple(args, "y*", &b)) {
        return NULL;
    }
    if (node_check_alive(self) < 0) {
        PyBuffer_Release(&b);
        return NULL;
    }
    uint64_t req = 0;
    int rc = gn_node_broadcast(self->node, b.buf, (size_t)b.len, &req);
    PyBuffer_Release(&b);
    if (rc < 0) {
        return gnpy_raise(rc);
    }
    return PyLong_FromUnsignedLongLong(req);
}

static PyObject *Node_configure(NodeObject *self, PyObject *args)
{
    int opt;
    unsigned long long value;
    if (!PyArg_ParseTuple(args, "iK", &opt, &value) || node_check_alive(self) < 0) {
        return NULL;
    }
    int rc = gn_node_configure(self->node, (gn_node_option)opt, value);
    if (rc < 0) {
        return gnpy_raise(rc);
    }
    Py_RETURN_NONE;
}

static PyObject *Node_next_events(NodeObject *self, PyObject *args)
{
    int max = GNPY_POLL_MAX;
    if (!PyArg_ParseTuple(args, "|i", &max)) {
        return NULL;
    }
    PyObject *list = PyList_New(0);
    if (!list || !self->node) {
        return list;
    }
    gn_node_event ev;
    for (int i = 0; i < max; i++) {
        int rc = gn_node_next_event(self->node, &ev, 0);
        if (rc < 0) {
            break;
        }
        PyObject *msg = Py_None;
        Py_INCREF(msg);
        if (ev.message) {
            gn_slice sl = gn_rcbuf_slice(ev.message);
            Py_DECREF(msg);
            msg = PyBytes_FromStringAndSize((const char *)sl.base, (Py_ssize_t)sl.len);
            gn_rcbuf_rele(ev.message);
        }
        PyObject *peer = msg ? peer_str(&ev.peer) : NULL;
        /* addr and protocol (an identify agent version) may come from the peer */
        PyObject *addr = peer ? str_lax(ev.addr) : NULL;
        PyObject *proto = addr ? str_lax(ev.protocol) : NULL;
        PyObject *t = proto ? Py_BuildValue("(iiKKNKNNNK)", (int)ev.type, ev.status,
                                            (unsigned long long)ev.request_id,
                                            (unsigned long long)ev.channel_id, peer,
                                            (unsigned long long)ev.rtt, addr, proto, msg,
                                            (unsigned long long)ev.count)
                            : NULL;
        if (!t) {
            if (!proto) { /* else Py_BuildValue consumed the "N" references */
                Py_XDECREF(peer);
                Py_XDECREF(addr);
                Py_XDECREF(msg);
            }
            Py_DECREF(list);
            return NULL;
        }
        if (PyList_Append(list, t) < 0) {
            Py_DECREF(t);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(t);
    }
    return list;
}

/* A list of str from @n NUL-terminated entries of @stride bytes at @base. */
static PyObject *str_list(const char *base, size_t stride, size_t n)
{
    PyObject *l = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; l && i < n; i++) {
        PyObject *v = str_lax(base + i * stride);
        if (!v) {
            Py_CLEAR(l);
            break;
        }
        PyList_SET_ITEM(l, (Py_ssize_t)i, v);
    }
    return l;
}

/* The dict of a GNB_NOTE_PEER note's peer-store copy. */
static PyObject *peer_dict(const gnb_peer *p)
{
    PyObject *addrs = str_list((const char *)p->addrs, sizeof p->addrs[0], p->n_addrs);
    PyObject *protos = addrs ? str_list((const char *)p->protocols, sizeof p->protocols[0],
                                        p->n_protocols)
                             : NULL;
    PyObject *peer = protos ? peer_str(&p->info.peer) : NULL;
    PyObject *agent = peer ? str_lax(p->info.agent_version) : NULL;
    PyObject *observed = agent ? str_lax(p->info.observed_addr) : NULL;
    if (!observed) {
        Py_XDECREF(addrs);
        Py_XDECREF(protos);
        Py_XDECREF(peer);
        Py_XDECREF(agent);
        return NULL;
    }
    return Py_BuildValue("{s:N,s:O,s:N,s:N,s:N,s:N}", "peer_id", peer, "identified",
                         p->info.identified ? Py_True : Py_False, "agent_version", agent,
                         "observed_addr", observed, "addrs", addrs, "protocols", protos);
}

/* A GNB_NOTE_DHT note's result: (value bytes or None, [(peer_id, [addr, ...]), ...]). */
static PyObject *dht_obj(const gnb_dht *d)
{
    PyObject *value = d && d->value ? PyBytes_FromStringAndSize((const char *)d->value,
                                                                (Py_ssize_t)d->value_len)
                                    : (Py_INCREF(Py_None), Py_None);
    PyObject *peers = value ? PyList_New(0) : NULL;
    for (size_t i = 0; peers && d && i < d->n_peers; i++) {
        const gnb_dht_peer *p = &d->peers[i];
        PyObject *addrs = str_list((const char *)p->addrs, sizeof p->addrs[0], p->n_addrs);
        PyObject *t = addrs ? Py_BuildValue("(sN)", p->id, addrs) : NULL;
        if (!t || PyList_Append(peers, t) < 0) {
            Py_XDECREF(t);
            Py_CLEAR(peers);
            break;
        }
        Py_DECREF(t);
    }
    if (!peers) {
        Py_XDECREF(value);
        return NULL;
    }
    return Py_BuildValue("(NN)", value, peers);
}

/*
 * Notes as tuples (kind, status, token, obj, rtt_ns, protocol): obj is a
 * Channel (DIAL), a new Stream (OPEN, INBOUND), the stream's existing
 * wrapper (STREAM; notes for streams without one are skipped), a dict
 * (PEER: peer_id, identified, agent_version, observed_addr, addrs,
 * protocols), a tuple (DHT: value or None, [(peer_id, [addrs])]) or None.
 */
static PyObject *Node_poll(NodeObject *self, PyObject *args)
{
    int max = GNPY_POLL_MAX;
    if (!PyArg_ParseTuple(args, "|i", &max)) {
        return NULL;
    }
    if (max <= 0 || max > GNPY_POLL_MAX) {
        max = GNPY_POLL_MAX;
    }
    PyObject *list = PyList_New(0);
    if (!list || !self->br) {
        return list;
    }
    gnb_note notes[GNPY_POLL_MAX];
    size_t k = gnb_bridge_poll(self->br, notes, (size_t)max);
    size_t i = 0;
    for (; i < k; i++) {
        gnb_note *nt = &notes[i];
        PyObject *obj = NULL;
        if (nt->kind == GNB_NOTE_DIAL && nt->ch) {
            obj = (PyObject *)channel_wrap(self, nt->ch, false);
            nt->ch = NULL;
        } else if ((nt->kind == GNB_NOTE_OPEN || nt->kind == GNB_NOTE_INBOUND) && nt->st) {
            obj = (PyObject *)stream_wrap(self, nt->st);
            nt->st = NULL;
        } else if (nt->kind == GNB_NOTE_STREAM) {
            obj = nt->st ? gnb_stream_user(nt->st) : NULL;
            if (!obj) {
                gnb_note_release(nt);
                continue; /* nobody looks at this stream any more */
            }
            Py_INCREF(obj);
        } else if (nt->kind == GNB_NOTE_PEER && nt->peer) {
            obj = peer_dict(nt->peer);
        } else if (nt->kind == GNB_NOTE_DHT) {
            obj = dht_obj(nt->dht);
        } else if (nt->kind == GNB_NOTE_XFER) {
            obj = xfer_obj(nt->xfer);
        } else {
            obj = Py_None;
            Py_INCREF(obj);
        }
        gnb_note_release(nt);
        if (!obj) {
            goto fail;
        }
        PyObject *t = Py_BuildValue("(iiKNKs)", nt->kind, nt->status,
                                    (unsigned long long)nt->token, obj,
                                    (unsigned long long)nt->rtt, nt->protocol);
        if (!t || PyList_Append(list, t) < 0) {
            Py_XDECREF(t);
            goto fail;
        }
        Py_DECREF(t);
    }
    return list;
fail:
    for (i++; i < k; i++) {
        gnb_note_release(&notes[i]);
    }
    Py_DECREF(list);
    return NULL;
}

static PyObject *Node_kick(NodeObject *self, PyObject *unused)
{
    (void)unused;
    int rc = self->br ? gnb_bridge_kick(self->br) : GN_ECLOSED;
    return PyLong_FromLong(rc);
}

static PyObject *Node_dial_group(NodeObject *self, PyObject *args);

static PyMethodDef Node_methods[] = {
    {"start", (PyCFunction)Node_start, METH_NOARGS,
     "start()\n--\n\nStarts the loop thread and the configured listeners."},
    {"close", (PyCFunction)Node_close, METH_NOARGS,
     "close()\n--\n\nBegins closing (gn_node_close); EV_CLOSED follows if the node ran. "
     "Returns True if an EV_CLOSED event will follow."},
    {"free", (PyCFunction)Node_free, METH_NOARGS,
     "free()\n--\n\nCloses if needed and frees the native node, joining its thread "
     "(GIL released)."},
    {"listen", (PyCFunction)Node_listen, METH_VARARGS,
     "listen(addr)\n--\n\nListens on a multiaddr; returns the request id (EV_LISTENING)."},
    {"dial", (PyCFunction)Node_dial, METH_VARARGS,
     "dial(addr, token)\n--\n\nDials; the outcome is a NOTE_DIAL note with the token."},
    {"ping", (PyCFunction)Node_ping, METH_VARARGS,
     "ping(channel, token)\n--\n\nPings over the channel; NOTE_PING note."},
    {"open_stream", (PyCFunction)Node_open_stream, METH_VARARGS,
     "open_stream(channel, protocol_id, token)\n--\n\nOpens a stream; NOTE_OPEN note."},
    {"peer_info", (PyCFunction)Node_peer_info, METH_VARARGS,
     "peer_info(peer_id, token)\n--\n\nCopies the peer store's entry for a peer on the loop "
     "thread; NOTE_PEER note (obj: a dict; GN_ENOTFOUND: unknown peer)."},
    {"dht", (PyCFunction)Node_dht, METH_VARARGS,
     "dht(op, key, value, peer, max, token)\n--\n\nOne DHT call (DHT_*: key and value "
     "bytes, peer a peer ID or None, max for DHT_FIND_PROVIDERS); NOTE_DHT note (obj: "
     "(value or None, [(peer_id, [addrs])])). DHT_ALLOW: key is a namespace given a "
     "permissive C validator (allowed before start)."},
    {"xfer", (PyCFunction)Node_xfer, METH_VARARGS,
     "xfer(op, a, b, providers, n, interval_ms, token)\n--\n\nResource transfer: op "
     "'share' (a path), 'provide' / 'find' (a CID; n max), 'fetch' (a CID, b path, providers "
     "list, n memory chunks, interval_ms), 'cancel' (the fetch's token); NOTE_XFER notes "
     "(obj: (type, counters, peer, detail, addrs))."},
    {"refresh_metrics", (PyCFunction)Node_refresh_metrics, METH_VARARGS,
     "refresh_metrics(channel, token)\n--\n\nRefreshes the channel's metrics snapshot on the "
     "loop thread; NOTE_DONE note."},
    {"set_handler", (PyCFunction)Node_set_handler, METH_VARARGS,
     "set_handler(protocol_id, add, token)\n--\n\nRegisters or removes the stream handler "
     "of a protocol. Returns 0 (done) or 1 (queued: NOTE_DONE note follows)."},
    {"unicast", (PyCFunction)Node_unicast, METH_VARARGS,
     "unicast(to, data)\n--\n\nSends one /golem/msg/1.0.0 message; returns the request id."},
    {"dial_group", (PyCFunction)Node_dial_group, METH_VARARGS,
     "dial_group(addr)\n--\n\nOpens a multicast channel on a group address (/pubsub/TOPIC)."},
    {"broadcast", (PyCFunction)Node_broadcast, METH_VARARGS,
     "broadcast(data)\n--\n\nSends a message to every open channel; returns the request id."},
    {"configure", (PyCFunction)Node_configure, METH_VARARGS,
     "configure(option, value)\n--\n\nChanges a run-time option (OPT_*)."},
    {"next_events", (PyCFunction)Node_next_events, METH_VARARGS,
     "next_events(max=256)\n--\n\nPops queued node events as tuples (type, status, "
     "request_id, channel_id, peer, rtt_ns, addr, protocol, message, count)."},
    {"poll", (PyCFunction)Node_poll, METH_VARARGS,
     "poll(max=256)\n--\n\nTakes bridge notes as tuples (kind, status, token, obj, rtt_ns, "
     "protocol)."},
    {"kick", (PyCFunction)Node_kick, METH_NOARGS,
     "kick()\n--\n\nRetries posting queued stream work after the command queue was full."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Node_getset[] = {
    {"peer_id", (getter)Node_get_peer_id, NULL, "The node's peer ID (base58btc).", NULL},
    {"event_fd", (getter)Node_get_event_fd, NULL, "Readable while node events are queued.",
     NULL},
    {"bridge_fd", (getter)Node_get_bridge_fd, NULL, "Readable while bridge notes are queued.",
     NULL},
    {"state", (getter)Node_get_state, NULL, "0 new, 1 started, 2 closing, 3 freed.", NULL},
    {"_ptr", (getter)Node_get_ptr, NULL, "The gn_node as a capsule (for ErgoNode).", NULL},
    {"kick_failed", (getter)Node_get_kick_failed, NULL,
     "True when stream work waits for kick() (the command queue was full).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject NodeType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "golemnet._golemnet.Node",
    .tp_basicsize = sizeof(NodeObject),
    .tp_dealloc = (destructor)Node_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Node(listen=(), key_seed=None, key_file=None, transports=None, security=None, "
              "muxers=None, protocols=-1, max_message_len=0, event_queue_capacity=0, "
              "rx_limit=0, tx_limit=0, max_connections=0, max_connections_per_peer=0, "
              "idle_timeout_ms=0, upgrade_timeout_ms=0, agent_version=None)\n--\n\n"
              "A native golemnet node with its thread bridge (low level; use "
              "golemnet.Node).",
    .tp_methods = Node_methods,
    .tp_getset = Node_getset,
    .tp_init = (initproc)Node_init,
    .tp_new = PyType_GenericNew,
};

/* ------------------------------------------------------------------------
 * Channel
 */

static void Channel_dealloc(ChannelObject *self)
{
    gn_channel_rele(self->ch);
    Py_XDECREF(self->node);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Channel_get_id(ChannelObject *self, void *c)
{
    (void)c;
    return PyLong_FromUnsignedLongLong(self->id);
}

static PyObject *Channel_get_state(ChannelObject *self, void *c)
{
    (void)c;
    return PyLong_FromLong((long)gn_channel_state_get(self->ch, NULL));
}

static PyObject *Channel_info(ChannelObject *self, PyObject *unused)
{
    (void)unused;
    gn_channel_info info;
    gn_channel_state_get(self->ch, &info);
    return Py_BuildValue("{s:K,s:i,s:s,s:N,s:s,s:s,s:s,s:s,s:O}", "id",
                         (unsigned long long)info.id, "state", (int)info.state, "direction",
                         info.direction == GN_DIR_INBOUND ? "inbound" : "outbound",
                         "remote_peer", peer_str(&info.remote_peer), "local_addr",
                         info.local_addr, "remote_addr", info.remote_addr, "security",
                         info.security, "muxer", info.muxer, "limited",
                         info.limited ? Py_True : Py_False);
}

static PyObject *Channel_metrics(ChannelObject *self, PyObject *unused)
{
    (void)unused;
    /* gn_channel_metrics_get() reads the node's loop: only while it lives */
    if (self->node->node) {
        gn_channel_metrics_get(self->ch, &self->last);
    }
    gn_channel_metrics *m = &self->last;
    return Py_BuildValue("(KKKKIKK)", (unsigned long long)m->bytes_in,
                         (unsigned long long)m->bytes_out, (unsigned long long)m->messages_in,
                         (unsigned long long)m->messages_out, (unsigned int)m->streams_open,
                         (unsigned long long)m->last_rtt, (unsigned long long)m->uptime);
}

static PyObject *Channel_close(ChannelObject *self, PyObject *unused)
{
    (void)unused;
    if (self->node->node) {
        gn_channel_close(self->ch);
    }
    Py_RETURN_NONE;
}

static PyObject *Channel_send(ChannelObject *self, PyObject *args)
{
    Py_buffer b;
    if (!PyArg_ParseTuple(args, "y*", &b)) {
        return NULL;
    }
    int rc = self->node->node ? gn_channel_send(self->ch, b.buf, (size_t)b.len) : GN_ECLOSED;
    PyBuffer_Release(&b);
    if (rc < 0) {
        return gnpy_raise(rc);
    }
    Py_RETURN_NONE;
}

static PyMethodDef Channel_methods[] = {
    {"info", (PyCFunction)Channel_info, METH_NOARGS,
     "info()\n--\n\nA snapshot of the channel as a dict (id, state, direction, remote_peer, "
     "local_addr, remote_addr, security, muxer, limited)."},
    {"metrics", (PyCFunction)Channel_metrics, METH_NOARGS,
     "metrics()\n--\n\n(bytes_in, bytes_out, messages_in, messages_out, streams_open, "
     "last_rtt_ns, uptime_ns)."},
    {"close", (PyCFunction)Channel_close, METH_NOARGS,
     "close()\n--\n\nCloses the channel and its streams (idempotent)."},
    {"send", (PyCFunction)Channel_send, METH_VARARGS,
     "send(data)\n--\n\nQueues one /golem/msg/1.0.0 message on the channel."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Channel_getset[] = {
    {"id", (getter)Channel_get_id, NULL, "The channel id (unique per node).", NULL},
    {"state", (getter)Channel_get_state, NULL, "The CH_* state.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject ChannelType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "golemnet._golemnet.Channel",
    .tp_basicsize = sizeof(ChannelObject),
    .tp_dealloc = (destructor)Channel_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A held native channel (low level; use golemnet.Channel).",
    .tp_methods = Channel_methods,
    .tp_getset = Channel_getset,
};


/* ------------------------------------------------------------------------
 * Group (a multicast channel on a group address, issue 18)
 */

static PyObject *Node_dial_group(NodeObject *self, PyObject *args)
{
    const char *addr;
    if (!PyArg_ParseTuple(args, "s", &addr) || node_check_alive(self) < 0) {
        return NULL;
    }
    gn_multicast *mc = NULL;
    int rc = gn_node_dial_group(self->node, addr, &mc);
    if (rc < 0) {
        return gnpy_raise(rc);
    }
    GroupObject *g = PyObject_New(GroupObject, &GroupType);
    if (!g) {
        gn_multicast_free(mc);
        return NULL;
    }
    g->mc = mc;
    g->node = self;
    Py_INCREF(self);
    return (PyObject *)g;
}

static void Group_dealloc(GroupObject *self)
{
    if (self->mc) {
        gn_multicast_free(self->mc);
        self->mc = NULL;
    }
    Py_XDECREF(self->node);
    PyObject_Free(self);
}

static int group_check(GroupObject *self)
{
    if (!self->mc) {
        gnpy_raise(GN_ECLOSED);
        return -1;
    }
    return 0;
}

static PyObject *Group_broadcast(GroupObject *self, PyObject *args)
{
    Py_buffer b;
    if (!PyArg_ParseTuple(args, "y*", &b)) {
        return NULL;
    }
    if (group_check(self) < 0) {
        PyBuffer_Release(&b);
        return NULL;
    }
    int rc = gn_multicast_broadcast(self->mc, b.buf, (size_t)b.len);
    PyBuffer_Release(&b);
    if (rc < 0) {
        return gnpy_raise(rc);
    }
    Py_RETURN_NONE;
}

static PyObject *Group_unicast(GroupObject *self, PyObject *args)
{
    const char *peer;
    Py_buffer b;
    if (!PyArg_ParseTuple(args, "sy*", &peer, &b)) {
        return NULL;
    }
    if (group_check(self) < 0) {
        PyBuffer_Release(&b);
        return NULL;
    }
    gn_peer_id pid;
    int rc = gn_peer_id_parse(peer, strlen(peer), &pid);
    if (rc < 0) {
        PyBuffer_Release(&b);
        return gnpy_raise(rc);
    }
    rc = gn_multicast_unicast(self->mc, &pid, b.buf, (size_t)b.len);
    PyBuffer_Release(&b);
    if (rc < 0) {
        return gnpy_raise(rc);
    }
    Py_RETURN_NONE;
}

static PyObject *Group_metrics(GroupObject *self, PyObject *Py_UNUSED(ignored))
{
    if (group_check(self) < 0) {
        return NULL;
    }
    gn_multicast_metrics m;
    int rc = gn_multicast_metrics_get(self->mc, &m);
    if (rc < 0) {
        return gnpy_raise(rc);
    }
    return Py_BuildValue("{sKsKsKsKsKsKsK}", "published", (unsigned long long)m.published,
                         "delivered", (unsigned long long)m.delivered, "duplicate",
                         (unsigned long long)m.duplicate, "rejected",
                         (unsigned long long)m.rejected, "dropped", (unsigned long long)m.dropped,
                         "members", (unsigned long long)m.members, "mesh",
                         (unsigned long long)m.mesh);
}

static PyObject *Group_mesh_peers(GroupObject *self, PyObject *Py_UNUSED(ignored))
{
    if (group_check(self) < 0) {
        return NULL;
    }
    enum { GROUP_MESH_MAX = 256 }; /* D_hi is at most a few dozen */
    gn_peer_id *peers = PyMem_Calloc(GROUP_MESH_MAX, sizeof *peers);
    if (!peers) {
        return PyErr_NoMemory();
    }
    int n = gn_multicast_mesh_peers(self->mc, peers, GROUP_MESH_MAX);
    if (n < 0) {
        PyMem_Free(peers);
        return gnpy_raise(n);
    }
    PyObject *list = PyList_New(0);
    for (int i = 0; list && i < n && i < GROUP_MESH_MAX; i++) {
        PyObject *p = peer_str(&peers[i]);
        if (!p || PyList_Append(list, p) < 0) {
            Py_XDECREF(p);
            Py_CLEAR(list);
            break;
        }
        Py_DECREF(p);
    }
    PyMem_Free(peers);
    return list;
}

static PyObject *Group_free(GroupObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->mc) {
        gn_multicast_free(self->mc);
        self->mc = NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef Group_methods[] = {
    {"broadcast", (PyCFunction)Group_broadcast, METH_VARARGS,
     "broadcast(data)\n--\n\nPublishes a message on the topic (gn_multicast_broadcast)."},
    {"unicast", (PyCFunction)Group_unicast, METH_VARARGS,
     "unicast(peer_id, data)\n--\n\nSends to one member over /golem/msg/1.0.0."},
    {"metrics", (PyCFunction)Group_metrics, METH_NOARGS,
     "metrics()\n--\n\nThe group's counters (gn_multicast_metrics) as a dict."},
    {"mesh_peers", (PyCFunction)Group_mesh_peers, METH_NOARGS,
     "mesh_peers()\n--\n\nThe mesh peers' IDs (the service's last snapshot)."},
    {"free", (PyCFunction)Group_free, METH_NOARGS,
     "free()\n--\n\nLeaves the topic and frees the handle. Idempotent."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject GroupType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "golemnet._golemnet.Group",
    .tp_basicsize = sizeof(GroupObject),
    .tp_dealloc = (destructor)Group_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A held multicast channel on a group (low level; use golemnet.Group).",
    .tp_methods = Group_methods,
};

/* ------------------------------------------------------------------------
 * Stream
 */

static void Stream_dealloc(StreamObject *self)
{
    if (self->st) {
        gnb_stream_set_user(self->st, NULL);
        if (!gnb_stream_is_closed(self->st)) {
            (void)gnb_stream_close(self->st, true); /* dropped without close: reset */
        }
        gnb_stream_rele(self->st);
    }
    Py_XDECREF(self->node);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Stream_read(StreamObject *self, PyObject *args)
{
    Py_ssize_t max = 65536;
    if (!PyArg_ParseTuple(args, "|n", &max)) {
        return NULL;
    }
    if (max <= 0) {
        PyErr_SetString(PyExc_ValueError, "read: max must be positive");
        return NULL;
    }
    size_t avail = gnb_stream_readable(self->st);
    size_t want = avail ? avail : 1;
    if (want > (size_t)max) {
        want = (size_t)max;
    }
    PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)want);
    if (!b) {
        return NULL;
    }
    long n;
    uint8_t *p = (uint8_t *)PyBytes_AS_STRING(b);
    if (want >= GNPY_BIG_COPY) {
        Py_BEGIN_ALLOW_THREADS
        n = gnb_stream_read(self->st, p, want);
        Py_END_ALLOW_THREADS
    } else {
        n = gnb_stream_read(self->st, p, want);
    }
    if (n == GNB_WOULD_BLOCK) {
        Py_DECREF(b);
        Py_RETURN_NONE;
    }
    if (n < 0) {
        Py_DECREF(b);
        return gnpy_raise((int)n);
    }
    if ((size_t)n != want && _PyBytes_Resize(&b, (Py_ssize_t)n) < 0) {
        return NULL;
    }
    return b;
}

static PyObject *stream_write_result(int rc)
{
    if (rc == GN_EAGAIN) {
        return PyLong_FromLong(2);
    }
    if (rc < 0) {
        return gnpy_raise(rc);
    }
    return PyLong_FromLong(rc);
}

static PyObject *Stream_write(StreamObject *self, PyObject *args)
{
    Py_buffer b;
    if (!PyArg_ParseTuple(args, "y*", &b)) {
        return NULL;
    }
    gn_slice sl = gn_slice_of(b.buf, (size_t)b.len);
    int rc;
    if (b.len >= GNPY_BIG_COPY) {
        Py_BEGIN_ALLOW_THREADS
        rc = gnb_stream_write(self->st, &sl, 1);
        Py_END_ALLOW_THREADS
    } else {
        rc = gnb_stream_write(self->st, &sl, 1);
    }
    PyBuffer_Release(&b);
    return stream_write_result(rc);
}

static PyObject *Stream_writev(StreamObject *self, PyObject *args)
{
    PyObject *seq;
    if (!PyArg_ParseTuple(args, "O", &seq)) {
        return NULL;
    }
    PyObject *fast = PySequence_Fast(seq, "writev: a sequence of bytes-like objects");
    if (!fast) {
        return NULL;
    }
    Py_ssize_t k = PySequence_Fast_GET_SIZE(fast);
    if (k == 0) {
        Py_DECREF(fast);
        return PyLong_FromLong(0);
    }
    Py_buffer *bufs = PyMem_Calloc((size_t)k, sizeof *bufs);
    gn_slice *iov = PyMem_Calloc((size_t)k, sizeof *iov);
    if (!bufs || !iov) {
        PyMem_Free(bufs);
        PyMem_Free(iov);
        Py_DECREF(fast);
        return PyErr_NoMemory();
    }
    Py_ssize_t got = 0;
    size_t total = 0;
    PyObject *res = NULL;
    for (; got < k; got++) {
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(fast, got), &bufs[got], PyBUF_SIMPLE) <
            0) {
            goto out;
        }
        iov[got] = gn_slice_of(bufs[got].buf, (size_t)bufs[got].len);
        total += (size_t)bufs[got].len;
    }
    int rc;
    if (total >= GNPY_BIG_COPY) {
        Py_BEGIN_ALLOW_THREADS
        rc = gnb_stream_write(self->st, iov, (size_t)k);
        Py_END_ALLOW_THREADS
    } else {
        rc = gnb_stream_write(self->st, iov, (size_t)k);
    }
    res = stream_write_result(rc);
out:
    for (Py_ssize_t i = 0; i < got; i++) {
        PyBuffer_Release(&bufs[i]);
    }
    PyMem_Free(bufs);
    PyMem_Free(iov);
    Py_DECREF(fast);
    return res;
}

static PyObject *Stream_write_ready(StreamObject *self, PyObject *args)
{
    int all = 0;
    if (!PyArg_ParseTuple(args, "|p", &all)) {
        return NULL;
    }
    int rc = gnb_stream_write_ready(self->st, all != 0);
    if (rc < 0) {
        return gnpy_raise(rc);
    }
    return PyBool_FromLong(rc);
}

static PyObject *Stream_shutdown(StreamObject *self, PyObject *unused)
{
    (void)unused;
    int rc = gnb_stream_shutdown(self->st);
    return stream_write_result(rc);
}

static PyObject *Stream_close(StreamObject *self, PyObject *args)
{
    int reset = 0;
    if (!PyArg_ParseTuple(args, "|p", &reset)) {
        return NULL;
    }
    int rc = gnb_stream_close(self->st, reset != 0);
    return PyLong_FromLong(rc == GN_EAGAIN ? 2 : 0);
}

static PyObject *Stream_channel(StreamObject *self, PyObject *unused)
{
    (void)unused;
    return (PyObject *)channel_wrap(self->node, gnb_stream_channel(self->st), true);
}

static PyObject *Stream_counters(StreamObject *self, PyObject *unused)
{
    (void)unused;
    uint64_t in, out;
    gnb_stream_counters(self->st, &in, &out);
    return Py_BuildValue("(KK)", (unsigned long long)in, (unsigned long long)out);
}

static PyObject *Stream_get_closed(StreamObject *self, void *c)
{
    (void)c;
    return PyBool_FromLong(gnb_stream_is_closed(self->st));
}

static PyObject *Stream_get_eof(StreamObject *self, void *c)
{
    (void)c;
    return PyBool_FromLong(gnb_stream_eof(self->st));
}

static PyObject *Stream_get_error(StreamObject *self, void *c)
{
    (void)c;
    return PyLong_FromLong(gnb_stream_error(self->st));
}

static PyObject *Stream_get_protocol(StreamObject *self, void *c)
{
    (void)c;
    return PyUnicode_FromString(gnb_stream_protocol(self->st));
}

static PyObject *Stream_get_readable(StreamObject *self, void *c)
{
    (void)c;
    return PyLong_FromSize_t(gnb_stream_readable(self->st));
}

static PyMethodDef Stream_methods[] = {
    {"read", (PyCFunction)Stream_read, METH_VARARGS,
     "read(max=65536)\n--\n\nUp to max buffered bytes; b'' at end of stream; None when "
     "nothing is buffered yet (a NOTE_STREAM note follows)."},
    {"write", (PyCFunction)Stream_write, METH_VARARGS,
     "write(data)\n--\n\nQueues a copy of data. Returns 0 (within the window), 1 (over it: "
     "wait for a note and write_ready()) or 2 (queued, call Node.kick() later)."},
    {"writev", (PyCFunction)Stream_writev, METH_VARARGS,
     "writev(buffers)\n--\n\nLike write() for a sequence of buffers, copied as one chunk."},
    {"write_ready", (PyCFunction)Stream_write_ready, METH_VARARGS,
     "write_ready(all=False)\n--\n\nTrue when queued bytes are within the window (all: "
     "zero); False arms a note."},
    {"shutdown", (PyCFunction)Stream_shutdown, METH_NOARGS,
     "shutdown()\n--\n\nHalf-closes after the queued writes."},
    {"close", (PyCFunction)Stream_close, METH_VARARGS,
     "close(reset=False)\n--\n\nCloses after the queued writes (reset: at once)."},
    {"channel", (PyCFunction)Stream_channel, METH_NOARGS,
     "channel()\n--\n\nA new Channel object for the stream's channel."},
    {"counters", (PyCFunction)Stream_counters, METH_NOARGS,
     "counters()\n--\n\n(bytes read by Python, bytes written and completed)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Stream_getset[] = {
    {"closed", (getter)Stream_get_closed, NULL, "True once the stream finished closing.", NULL},
    {"eof", (getter)Stream_get_eof, NULL, "True when the remote half-closed.", NULL},
    {"error", (getter)Stream_get_error, NULL, "The stream's first error code, or 0.", NULL},
    {"protocol", (getter)Stream_get_protocol, NULL, "The negotiated protocol id.", NULL},
    {"readable", (getter)Stream_get_readable, NULL, "Bytes buffered for reading.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject StreamType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "golemnet._golemnet.Stream",
    .tp_basicsize = sizeof(StreamObject),
    .tp_dealloc = (destructor)Stream_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A bridged native stream (low level; use golemnet.Stream).",
    .tp_methods = Stream_methods,
    .tp_getset = Stream_getset,
};

/* ------------------------------------------------------------------------
 * Module functions
 */

static PyObject *mod_set_error_factory(PyObject *m, PyObject *fn)
{
    (void)m;
    if (fn != Py_None && !PyCallable_Check(fn)) {
        PyErr_SetString(PyExc_TypeError, "a callable or None");
        return NULL;
    }
    Py_XDECREF(error_factory);
    error_factory = fn == Py_None ? NULL : fn;
    Py_XINCREF(error_factory);
    Py_RETURN_NONE;
}

static PyObject *mod_error_codes(PyObject *m, PyObject *unused)
{
    (void)m, (void)unused;
    PyObject *list = PyList_New(0);
    if (!list) {
        return NULL;
    }
#define GNPY_ERR_ITEM_(name, val, fatal, msg)                                                \
    do {                                                                                     \
        PyObject *t = Py_BuildValue("(sii s)", #name, (val), (fatal), (msg));                \
        if (!t || PyList_Append(list, t) < 0) {                                              \
            Py_XDECREF(t);                                                                   \
            Py_DECREF(list);                                                                 \
            return NULL;                                                                     \
        }                                                                                    \
        Py_DECREF(t);                                                                        \
    } while (0);
    GN_ERR_MAP(GNPY_ERR_ITEM_)
#undef GNPY_ERR_ITEM_
    return list;
}

static PyObject *mod_err_name(PyObject *m, PyObject *arg)
{
    (void)m;
    int code = (int)PyLong_AsLong(arg);
    if (PyErr_Occurred()) {
        return NULL;
    }
    return PyUnicode_FromString(gn_err_name(code));
}

static PyObject *mod_strerror(PyObject *m, PyObject *arg)
{
    (void)m;
    int code = (int)PyLong_AsLong(arg);
    if (PyErr_Occurred()) {
        return NULL;
    }
    return PyUnicode_FromString(gn_strerror(code));
}

static PyObject *mod_err_band(PyObject *m, PyObject *arg)
{
    (void)m;
    int code = (int)PyLong_AsLong(arg);
    if (PyErr_Occurred()) {
        return NULL;
    }
    return PyLong_FromLong(gn_err_band(code));
}

static PyObject *mod_err_is_fatal(PyObject *m, PyObject *arg)
{
    (void)m;
    int code = (int)PyLong_AsLong(arg);
    if (PyErr_Occurred()) {
        return NULL;
    }
    return PyBool_FromLong(gn_err_is_fatal(code));
}

static PyObject *mod_version(PyObject *m, PyObject *unused)
{
    (void)m, (void)unused;
    return PyUnicode_FromString(gn_version());
}

static PyObject *mod_peer_id_from_seed(PyObject *m, PyObject *seed)
{
    (void)m;
    gn_identity *id = NULL;
    if (seed_identity(seed, &id) < 0) {
        return NULL;
    }
    gn_peer_id pid;
    gn_identity_peer_id(id, &pid);
    gn_identity_free(id);
    return peer_str(&pid);
}

/* Key types (issue 17): writes a new key file of any type, returns its peer ID. */
static PyObject *mod_generate_key_file(PyObject *m, PyObject *args, PyObject *kw)
{
    (void)m;
    static char *kwlist[] = {"path", "key_type", "bits", NULL};
    const char *path = NULL, *type_name = "ed25519";
    unsigned int bits = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "s|sI", kwlist, &path, &type_name, &bits)) {
        return NULL;
    }
    gn_key_type type;
    if (gn_key_type_parse(type_name, &type) != 0) {
        PyErr_Format(PyExc_ValueError, "unknown key type '%s' (ed25519, rsa, secp256k1, ecdsa)",
                     type_name);
        return NULL;
    }
    gn_identity *id = NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS /* RSA generation takes a while */
    rc = gn_identity_generate_type(type, bits, &id);
    if (rc == 0) {
        rc = gn_identity_save(id, path);
    }
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        gn_identity_free(id);
        return gnpy_raise(rc);
    }
    gn_peer_id pid;
    gn_identity_peer_id(id, &pid);
    gn_identity_free(id);
    return peer_str(&pid);
}

/* Key types (issue 17): (peer ID, key type name) of a key file of any type. */
static PyObject *mod_key_file_info(PyObject *m, PyObject *arg)
{
    (void)m;
    const char *path = PyUnicode_AsUTF8(arg);
    if (!path) {
        return NULL;
    }
    gn_identity *id = NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = gn_identity_load(path, &id);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        return gnpy_raise(rc);
    }
    gn_peer_id pid;
    gn_identity_peer_id(id, &pid);
    const char *kt = gn_key_type_name(gn_identity_key_type(id));
    gn_identity_free(id);
    PyObject *ps = peer_str(&pid);
    if (!ps) {
        return NULL;
    }
    return Py_BuildValue("(Ns)", ps, kt);
}

static void log_stderr(void *ud, gn_log_level level, const char *component, const char *msg)
{
    (void)ud;
    /* any thread, usually a loop thread: never touches Python (no GIL) */
    fprintf(stderr, "golemnet[%d] %s: %s\n", (int)level, component, msg);
}

static PyObject *mod_log_to_stderr(PyObject *m, PyObject *args)
{
    (void)m;
    int level = GN_LOG_WARNING;
    const char *components = NULL;
    if (!PyArg_ParseTuple(args, "|iz", &level, &components)) {
        return NULL;
    }
    if (level <= 0) {
        gn_log_set(NULL, NULL, GN_LOG_ERR);
        Py_RETURN_NONE;
    }
    if (gn_log_set_components(components) < 0) {
        PyErr_SetString(PyExc_ValueError, "components: at most 255 bytes");
        return NULL;
    }
    gn_log_set(log_stderr, NULL, (gn_log_level)level);
    Py_RETURN_NONE;
}

static PyObject *mod_hold_gil(PyObject *m, PyObject *arg)
{
    (void)m;
    double secs = PyFloat_AsDouble(arg);
    if (PyErr_Occurred()) {
        return NULL;
    }
    if (secs < 0 || secs > 60) {
        PyErr_SetString(PyExc_ValueError, "0 <= seconds <= 60");
        return NULL;
    }
    /* spins WITHOUT releasing the GIL (tests: a handler that holds it) */
    gn_time end = gn_now() + (gn_time)(secs * 1e9);
    volatile uint64_t x = 0;
    while (gn_now() < end) {
        for (int i = 0; i < 1000; i++) {
            x += (uint64_t)i;
        }
    }
    (void)x;
    Py_RETURN_NONE;
}

static PyMethodDef mod_methods[] = {
    {"_set_error_factory", mod_set_error_factory, METH_O,
     "_set_error_factory(fn)\n--\n\nInstalls fn(code) -> exception used for gn_err codes."},
    {"error_codes", mod_error_codes, METH_NOARGS,
     "error_codes()\n--\n\nEvery gn_err code as (name, code, fatal, message)."},
    {"err_name", mod_err_name, METH_O, "err_name(code)\n--\n\nThe symbolic name of a code."},
    {"strerror", mod_strerror, METH_O, "strerror(code)\n--\n\nThe description of a code."},
    {"err_band", mod_err_band, METH_O,
     "err_band(code)\n--\n\nThe band of a code (0 generic, 1 I/O, 2 crypto, 3 peer), -1."},
    {"err_is_fatal", mod_err_is_fatal, METH_O,
     "err_is_fatal(code)\n--\n\nTrue when the object the error came from is unusable."},
    {"version", mod_version, METH_NOARGS, "version()\n--\n\nThe C library's version string."},
    {"peer_id_from_seed", mod_peer_id_from_seed, METH_O,
     "peer_id_from_seed(seed)\n--\n\nThe peer ID of the key an int or 32-byte seed gives."},
    {"generate_key_file", (PyCFunction)(void (*)(void))mod_generate_key_file,
     METH_VARARGS | METH_KEYWORDS,
     "generate_key_file(path, key_type='ed25519', bits=0)\n--\n\nWrites a new key file "
     "(libp2p PrivateKey, mode 0600, never overwrites) of key_type ed25519, rsa (bits 2048 "
     "to 8192; 0: 2048), secp256k1 or ecdsa (P-256); returns its peer ID. Node(key_file=...) "
     "runs with it."},
    {"key_file_info", mod_key_file_info, METH_O,
     "key_file_info(path)\n--\n\n(peer ID, key type) of a key file of any type (go and js "
     "key files too)."},
    {"log_to_stderr", mod_log_to_stderr, METH_VARARGS,
     "log_to_stderr(level=4, components=None)\n--\n\nWrites the library's log lines up to "
     "level (3 err .. 7 debug; 0 disables) to stderr, from the native threads (never through "
     "Python, so logging cannot block the network). components: curl style, \"all,-noise\". "
     "Set it before starting nodes."},
    {"ipc_encode", gnpy_ipc_encode, METH_O,
     "ipc_encode(request)\n--\n\nA control-protocol Request (a dict: field names of "
     "ipc/proto/control.proto) packed by protobuf-c and framed (varint length first)."},
    {"ipc_decode", gnpy_ipc_decode, METH_O,
     "ipc_decode(body)\n--\n\nA ServerMessage (bytes without the length) as a dict."},
    {"ipc_decode_stream_info", gnpy_ipc_decode_stream_info, METH_O,
     "ipc_decode_stream_info(body)\n--\n\nA StreamInfo (bytes without the length) as a dict."},
    {"ipc_parse_addr", gnpy_ipc_parse_addr, METH_O,
     "ipc_parse_addr(address)\n--\n\n(\"unix\", path) or (\"tcp\", ip, port) by the daemons' "
     "rules; ValueError (malformed) or PermissionError (not loopback, another protocol) naming "
     "what is wrong."},
    {"ipc_default_socket", gnpy_ipc_default_socket, METH_NOARGS,
     "ipc_default_socket()\n--\n\nThe control socket `golemnet daemon` uses by default."},
    {"_hold_gil", mod_hold_gil, METH_O,
     "_hold_gil(seconds)\n--\n\nSpins for seconds holding the GIL (for tests)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT,
    .m_name = "golemnet._golemnet",
    .m_doc = "Native golemnet: Node, Channel, Stream and the thread bridge (low level).",
    .m_size = -1,
    .m_methods = mod_methods,
};

PyMODINIT_FUNC PyInit__golemnet(void);
PyMODINIT_FUNC PyInit__golemnet(void)
{
    if (PyType_Ready(&NodeType) < 0 || PyType_Ready(&ChannelType) < 0 ||
        PyType_Ready(&StreamType) < 0 || PyType_Ready(&GroupType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&moddef);
    if (!m) {
        return NULL;
    }
    Py_INCREF(&NodeType);
    Py_INCREF(&ChannelType);
    Py_INCREF(&StreamType);
    if (PyModule_AddObject(m, "Node", (PyObject *)&NodeType) < 0 ||
        PyModule_AddObject(m, "Channel", (PyObject *)&ChannelType) < 0 ||
        PyModule_AddObject(m, "Stream", (PyObject *)&StreamType) < 0 ||
        PyModule_AddObjectRef(m, "Group", (PyObject *)&GroupType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    struct {
        const char *name;
        long v;
    } consts[] = {
        {"EV_LISTENING", GN_NODE_EV_LISTENING},
        {"EV_LISTEN_FAILED", GN_NODE_EV_LISTEN_FAILED},
        {"EV_DIAL", GN_NODE_EV_DIAL},
        {"EV_CHANNEL_OPENED", GN_NODE_EV_CHANNEL_OPENED},
        {"EV_CHANNEL_CLOSED", GN_NODE_EV_CHANNEL_CLOSED},
        {"EV_IDENTIFY", GN_NODE_EV_IDENTIFY},
        {"EV_MESSAGE", GN_NODE_EV_MESSAGE},
        {"EV_SEND_FAILED", GN_NODE_EV_SEND_FAILED},
        {"EV_PING", GN_NODE_EV_PING},
        {"EV_CLOSED", GN_NODE_EV_CLOSED},
        {"EV_START_FAILED", GN_NODE_EV_START_FAILED},
        {"EV_WRITABLE", GN_NODE_EV_WRITABLE},
        {"EV_REACHABILITY", GN_NODE_EV_REACHABILITY},
        {"NOTE_DIAL", GNB_NOTE_DIAL},
        {"NOTE_OPEN", GNB_NOTE_OPEN},
        {"NOTE_PING", GNB_NOTE_PING},
        {"NOTE_INBOUND", GNB_NOTE_INBOUND},
        {"NOTE_STREAM", GNB_NOTE_STREAM},
        {"NOTE_DONE", GNB_NOTE_DONE},
        {"NOTE_PEER", GNB_NOTE_PEER},
        {"NOTE_DHT", GNB_NOTE_DHT},
        {"NOTE_XFER", GNB_NOTE_XFER},
        {"XFER_SHARED", GNB_XFER_SHARED},
        {"XFER_PROVIDED", GNB_XFER_PROVIDED},
        {"XFER_FOUND", GNB_XFER_FOUND},
        {"DHT_FIND_PEER", GNB_DHT_FIND_PEER},
        {"DHT_GET", GNB_DHT_GET},
        {"DHT_PUT", GNB_DHT_PUT},
        {"DHT_PROVIDE", GNB_DHT_PROVIDE},
        {"DHT_FIND_PROVIDERS", GNB_DHT_FIND_PROVIDERS},
        {"DHT_CLOSEST", GNB_DHT_CLOSEST},
        {"DHT_ALLOW", GNB_DHT_ALLOW},
        {"DHT_KEY_MAX", GN_NODE_DHT_KEY_MAX},
        {"DHT_VALUE_MAX", GN_NODE_DHT_VALUE_MAX},
        {"PROTO_IDENTIFY", GN_NODE_PROTO_IDENTIFY},
        {"PROTO_PING", GN_NODE_PROTO_PING},
        {"PROTO_ECHO", GN_NODE_PROTO_ECHO},
        {"PROTO_PERF", GN_NODE_PROTO_PERF},
        {"PROTO_MSG", GN_NODE_PROTO_MSG},
        {"PROTO_DEFAULT", GN_NODE_PROTO_DEFAULT},
        {"CH_DIALING", GN_CHANNEL_DIALING},
        {"CH_UPGRADING", GN_CHANNEL_UPGRADING},
        {"CH_OPEN", GN_CHANNEL_OPEN},
        {"CH_CLOSING", GN_CHANNEL_CLOSING},
        {"CH_CLOSED", GN_CHANNEL_CLOSED},
        {"OPT_MAX_CONNECTIONS", GN_NODE_OPT_MAX_CONNECTIONS},
        {"OPT_MAX_CONNECTIONS_PER_PEER", GN_NODE_OPT_MAX_CONNECTIONS_PER_PEER},
        {"OPT_IDLE_TIMEOUT_MS", GN_NODE_OPT_IDLE_TIMEOUT_MS},
        {"OPT_MAX_MESSAGE_LEN", GN_NODE_OPT_MAX_MESSAGE_LEN},
        {"OPT_CONN_HIGH_WATER", GN_NODE_OPT_CONN_HIGH_WATER},
        {"OPT_CONN_LOW_WATER", GN_NODE_OPT_CONN_LOW_WATER},
        {"OPT_CONN_GRACE_MS", GN_NODE_OPT_CONN_GRACE_MS},
        {"OPT_MAX_UPGRADING", GN_NODE_OPT_MAX_UPGRADING},
        {"OPT_MAX_CONNECTIONS_PER_IP", GN_NODE_OPT_MAX_CONNECTIONS_PER_IP},
        {"OPT_MAX_UPGRADING_PER_IP", GN_NODE_OPT_MAX_UPGRADING_PER_IP},
        {"OPT_FIRST_BYTE_TIMEOUT_MS", GN_NODE_OPT_FIRST_BYTE_TIMEOUT_MS},
        {"PROTOCOL_ID_MAX", GN_PROTOCOL_ID_MAX},
    };
    for (size_t i = 0; i < sizeof consts / sizeof consts[0]; i++) {
        if (PyModule_AddIntConstant(m, consts[i].name, consts[i].v) < 0) {
            Py_DECREF(m);
            return NULL;
        }
    }
    if (PyModule_AddStringConstant(m, "MSG_PROTOCOL_ID", GN_MSG_PROTOCOL_ID) < 0 ||
        PyModule_AddStringConstant(m, "GROUP_ADDR_PREFIX", GN_GROUP_ADDR_PREFIX) < 0) {
        Py_DECREF(m);
        return NULL;
    }
#ifdef GNPY_HAVE_ERGO
    if (gnpy_ergo_init(m, gnpy_raise) < 0) {
        Py_DECREF(m);
        return NULL;
    }
#endif
    return m;
}
