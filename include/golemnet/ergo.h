/*
 * golemnet - an Ergo node on a golemnet node: processes (mailboxes) that
 * Go Ergo Framework 3.1 nodes, and other golemnet nodes, send to and call
 * as if they were their own (issue 15, first slice).
 *
 * A gn_node whose protocol_components names "ergo" runs the ergo component
 * (docs/ergo.md "The ergo component"): Ergo's TCP acceptor and dialler, and
 * /golem/ergo/1.0.0 streams on golemnet channels. gn_ergo_attach() puts an
 * Ergo node on it: the node name and creation come from the component
 * (ergo.node, the start time); the application creates processes, each with
 * a bounded mailbox and a message callback, and sends to and calls remote
 * or local processes by PID, by registered name (Ergo's ProcessID) or by
 * alias.
 *
 * Wire: ENP R1 (ergo-wire.md c): sends are 101-104, calls 121-124, answers
 * 129/130; frames golemnet emits have the layout of the recorded Go
 * frames (test/unit/ergo/ergo_node_test.c). Design, bounds and what is not
 * there yet: docs/ergo-node.md.
 *
 * Thread context: every function of this header runs on the node's loop
 * thread (gn_node_loop(); from another thread use gn_loop_submit()), and
 * every callback runs there, never from inside a call of this header except
 * where noted: the any-thread queue's gn_ergo_queue_*() functions and
 * gn_ergo_item_release() run on any thread (each is marked "Any thread"),
 * while gn_ergo_spawn_queued() runs on the loop thread like the rest.
 * Values (gn_edf_value) passed in are encoded before the call
 * returns; values passed to callbacks are borrowed for the callback only.
 *
 * Errors: negative gn_err codes (golemnet/err.h). Outcomes reported by a
 * remote node map as: delivered 0; unknown process GN_ENOTFOUND; mailbox
 * full GN_EAGAIN; process terminated GN_ECLOSED; an error value from the
 * remote process GN_ECALLBACK (its text is passed along); no answer in time
 * GN_ETIMEDOUT; the connection went down first GN_ECONNRESET; the remote
 * node could not be reached: the connect error (GN_ENOTFOUND, GN_ENOROUTE,
 * GN_ETIMEDOUT, ...).
 */
#ifndef GOLEMNET_ERGO_H
#define GOLEMNET_ERGO_H

#include "golemnet/common.h"
#include "golemnet/edf.h"
#include "golemnet/identity.h"
#include "golemnet/node.h"

GN_BEGIN_DECLS

/** Longest node or process name, bytes (an EDF atom). Since: 0.6 */
#define GN_ERGO_NAME_MAX 255u
/** Default mailbox bound, messages. Since: 0.6 */
#define GN_ERGO_MAILBOX_DEFAULT 1024u
/** Decoded bytes one mailbox may hold by default (gn_ergo_proc_opts.mailbox_bytes). */
#define GN_ERGO_MAILBOX_BYTES_DEFAULT ((size_t)16 << 20)
/** Decoded bytes all mailboxes of a node may hold by default (gn_ergo_config). */
#define GN_ERGO_QUEUED_BYTES_DEFAULT ((size_t)64 << 20)
/** Default bound on a process's outstanding calls and important sends. Since: 0.6 */
#define GN_ERGO_PENDING_DEFAULT 256u
/** Default answer deadline of calls and important sends (Ergo's 5 s). Since: 0.6 */
#define GN_ERGO_TIMEOUT_DEFAULT (5 * GN_S)

/** An Ergo node (attached to one gn_node). Opaque. Since: 0.6 */
typedef struct gn_ergo_node gn_ergo_node;
/** A process: PID, mailbox, callback. Opaque. Since: 0.6 */
typedef struct gn_ergo_proc gn_ergo_proc;

/** gen.PID: node name, process ID (1001 and up), creation of the node. Since: 0.6 */
typedef struct gn_ergo_pid {
    char node[GN_ERGO_NAME_MAX + 1];
    uint64_t id;
    int64_t creation;
} gn_ergo_pid;

/** gen.Ref and gen.Alias (same shape): node name, creation, three IDs. Since: 0.6 */
typedef struct gn_ergo_ref {
    char node[GN_ERGO_NAME_MAX + 1];
    int64_t creation;
    uint64_t id[3];
} gn_ergo_ref;
typedef gn_ergo_ref gn_ergo_alias;

/** How a target is named. Since: 0.6 */
typedef enum gn_ergo_target_kind {
    GN_ERGO_TO_PID = 1,   /* a gen.PID */
    GN_ERGO_TO_NAME = 2,  /* a gen.ProcessID: registered name on a node */
    GN_ERGO_TO_ALIAS = 3, /* a gen.Alias */
    GN_ERGO_TO_EVENT = 4, /* a gen.Event: links and monitors only (node, name); Since: 0.6 */
} gn_ergo_target_kind;

/**
 * A send or call target. Fill with gn_ergo_to_pid(), gn_ergo_to_name() or
 * gn_ergo_to_alias(). The node part (pid.node, node, alias.node) says where
 * it lives: our own node name delivers locally. Since: 0.6
 */
typedef struct gn_ergo_target {
    gn_ergo_target_kind kind;
    gn_ergo_pid pid;                    /* GN_ERGO_TO_PID */
    char node[GN_ERGO_NAME_MAX + 1];    /* GN_ERGO_TO_NAME, _EVENT: the node */
    char name[GN_ERGO_NAME_MAX + 1];    /* GN_ERGO_TO_NAME, _EVENT: the name */
    gn_ergo_alias alias;                /* GN_ERGO_TO_ALIAS */
} gn_ergo_target;

/** Message priority (gen.MessagePriority): the flags' low bits. Since: 0.6 */
typedef enum gn_ergo_priority {
    GN_ERGO_PRIO_NORMAL = 0,
    GN_ERGO_PRIO_HIGH = 1,
    GN_ERGO_PRIO_MAX = 2,
} gn_ergo_priority;

/**
 * One message a process receives. Everything is borrowed for the callback
 * (copy what you keep). @call: a request; answer it with gn_ergo_reply(@from,
 * @ref), now or later. @to_kind tells how the sender named us;
 * GN_ERGO_TO_EVENT (since 0.6): an event we subscribe to, @value is Ergo's
 * gen.MessageEvent (GN_EDF_ERGO_MESSAGE_EVENT), @from its producer.
 * Since: 0.6
 */
typedef struct gn_ergo_msg {
    gn_ergo_pid from;
    const gn_edf_value *value;
    gn_ergo_priority priority;
    bool important;
    bool call;
    gn_ergo_ref ref;            /* call only */
    gn_ergo_target_kind to_kind;
} gn_ergo_msg;

/** A process's message callback (loop thread). Since: 0.6 */
typedef void (*gn_ergo_msg_cb)(gn_ergo_proc *p, void *arg, const gn_ergo_msg *m);

/**
 * Outcome of an important send (@status as in the header comment; 0 =
 * delivered to the target's mailbox). @err_text: the remote error for
 * GN_ECALLBACK (its whole text, at most 32767 bytes), else NULL; borrowed
 * for the call. Since: 0.6
 */
typedef void (*gn_ergo_result_cb)(void *arg, int status, const char *err_text);

/**
 * Outcome of a call: @status 0 with the answer @reply (borrowed for the
 * callback), or an error (header comment) with @reply NULL; @err_text for
 * GN_ECALLBACK: the error's whole text (at most 32767 bytes). Since: 0.6
 */
typedef void (*gn_ergo_call_cb)(void *arg, int status, const gn_edf_value *reply,
                                const char *err_text);

/**
 * Registers the application's EDF types, atoms and errors in @reg before the
 * ergo component freezes it (its Introduce announces them). Return 0, or a
 * negative gn_err that fails the component's start. Since: 0.6
 */
typedef int (*gn_ergo_types_fn)(void *arg, gn_edf_registry *reg);

/** gn_ergo_attach() options; zero = defaults. Since: 0.6 */
typedef struct gn_ergo_config {
    gn_ergo_types_fn types; /* NULL: Ergo's types only */
    void *types_arg;
    /* bytes a received message's decoded value may take (0 = 16 MiB) */
    size_t max_value_bytes;
    /* decoded bytes all mailboxes together may hold (0 = GN_ERGO_QUEUED_BYTES_DEFAULT): a
     * small compressed frame can decode to a large value, so mailboxes count bytes too */
    size_t max_queued_bytes;
} gn_ergo_config;

/**
 * Attaches an Ergo node to @n, which must name "ergo" in its
 * protocol_components. Call it after gn_node_new() and before the node's
 * loop runs its start (gn_node_start() posts the start to the loop), so
 * @cfg->types registers before the component freezes its registry; or
 * later, when the component runs already (then @cfg->types must be NULL).
 * @cfg NULL = defaults (copied). *@out is owned by the caller: free it with
 * gn_ergo_detach() before gn_node_free().
 * Returns 0; GN_EINVAL (NULL @n/@out); GN_EEXIST (@n has an Ergo node);
 * GN_ESTATE (the component runs and @cfg->types is set); GN_ENOMEM;
 * GN_ELIMIT (loop-local slots exhausted). Loop thread (or before the loop
 * runs).
 * Since: 0.6
 */
GN_API int gn_ergo_attach(gn_node *n, const gn_ergo_config *cfg, gn_ergo_node **out);

/**
 * Detaches and frees @en: every process is freed (their queued messages
 * dropped, pending calls and important sends end without a callback;
 * remote spawn and application start requests end with GN_ECLOSED, called
 * from inside this function).
 * Not from a callback of @en's processes, calls or sends (the loop would
 * return into freed memory). NULL is a no-op. Since: 0.6
 */
GN_API void gn_ergo_detach(gn_ergo_node *en);

/** Our Ergo node name (ergo.node), or "" while the component is not running. Since: 0.6 */
GN_API const char *gn_ergo_node_name(const gn_ergo_node *en);

/** Our creation (Unix seconds of the component's start), 0 when not running. Since: 0.6 */
GN_API int64_t gn_ergo_node_creation(const gn_ergo_node *en);

/**
 * The frozen registry values are encoded and decoded with (Ergo's types and
 * what @cfg->types added), for building registered values; NULL when the
 * component is not running. Since: 0.6
 */
GN_API const gn_edf_registry *gn_ergo_registry(const gn_ergo_node *en);

/** What is known of a connected remote node. Since: 0.6 */
typedef struct gn_ergo_remote_info {
    char node[GN_ERGO_NAME_MAX + 1];
    uint64_t flags;            /* its gen.NetworkFlags */
    int64_t creation;
    uint64_t max_message_size; /* 0 = unlimited */
    int carrier;               /* 1 Ergo TCP, 2 /golem/ergo/1.0.0 stream */
    unsigned links;            /* TCP pool links, 1 for a stream */
    bool initiator;            /* we connected */
} gn_ergo_remote_info;

/**
 * Facts of remote node @node when it is connected. Returns 0; GN_EINVAL;
 * GN_ENOTFOUND (not connected); GN_ESTATE (component not running).
 * Since: 0.6
 */
GN_API int gn_ergo_remote_info_get(gn_ergo_node *en, const char *node, gn_ergo_remote_info *out);

/**
 * Connects to remote node @node (name@host) over Ergo TCP: static routes,
 * then the registrar (ergo.route, ergo.registrar). A send to a node that is
 * not connected does this by itself. Returns 0 (outcome: the connection
 * comes up, or the messages waiting for it fail); GN_EEXIST (connected);
 * the errors of the component's connect (GN_ENOTSUP: no route and no
 * registrar). Since: 0.6
 */
GN_API int gn_ergo_connect(gn_ergo_node *en, const char *node);

/**
 * Connects to remote node @node (NULL = any name) on libp2p peer @peer with a
 * /golem/ergo/1.0.0 stream (relays allowed). Returns 0; GN_EINVAL; GN_EEXIST;
 * GN_ESTATE; GN_ENOMEM. Since: 0.6
 */
GN_API int gn_ergo_connect_peer(gn_ergo_node *en, const gn_peer_id *peer, const char *node);

/**
 * Closes the connection to remote node @node (every TCP link, or the
 * stream). Pending calls and important sends towards it end with
 * GN_ECONNRESET (from the loop, or at once when the carrier closes at
 * once). Returns 0; GN_EINVAL; GN_ENOTFOUND (not connected); GN_ESTATE.
 * Since: 0.6
 */
GN_API int gn_ergo_disconnect(gn_ergo_node *en, const char *node);

/** Compression method of a process's messages (gen.CompressionType). Since: 0.6 */
typedef enum gn_ergo_compression_type {
    GN_ERGO_COMPRESS_GZIP = 0, /* Ergo's default (ENP method 102) */
    GN_ERGO_COMPRESS_ZLIB = 1, /* method 101, zlib's default level */
    GN_ERGO_COMPRESS_LZW = 2,  /* method 100, Go's compress/lzw (LSB, 8-bit literals) */
} gn_ergo_compression_type;

/** gzip level (gen.CompressionLevel); zlib and LZW ignore it. Since: 0.6 */
typedef enum gn_ergo_compression_level {
    GN_ERGO_COMPRESS_LEVEL_DEFAULT = 0,
    GN_ERGO_COMPRESS_LEVEL_SPEED = 1,
    GN_ERGO_COMPRESS_LEVEL_SIZE = 2,
} gn_ergo_compression_level;

/** Ergo's default and smallest compression threshold, frame bytes. Since: 0.6 */
#define GN_ERGO_COMPRESS_THRESHOLD_DEFAULT 1024u

/**
 * A process's compression settings, as Ergo's gen.Compression: when
 * @enable, every send, call, answer and event publication of the process
 * whose ENP frame (header included) is longer than @threshold bytes goes
 * out compressed (a MessageZ frame, type 200, keeping the frame's order
 * byte). Not for local targets, exit signals, link/monitor requests,
 * termination frames or important-delivery acks (Ergo compresses none of
 * them either). The remote's MaxMessageSize applies to the compressed
 * frame, and for sends by name, events and answers also to the
 * uncompressed one (Ergo's rule). Receivers need no setting: every Ergo node and golemnet inflates
 * all three methods. Zero = disabled. Since: 0.6
 */
typedef struct gn_ergo_compression {
    bool enable;
    gn_ergo_compression_type type;
    gn_ergo_compression_level level; /* gzip only */
    uint32_t threshold;              /* 0 = 1024; 1..1023 are refused, as by Ergo */
} gn_ergo_compression;

/** Process options; zero = defaults. Since: 0.6 */
typedef struct gn_ergo_proc_opts {
    uint32_t mailbox_size;  /* messages queued at most (0 = GN_ERGO_MAILBOX_DEFAULT) */
    uint32_t max_pending;   /* outstanding calls + important sends (0 = GN_ERGO_PENDING_DEFAULT) */
    bool no_keep_order;     /* KeepNetworkOrder off: header order byte 0 */
    /* decoded bytes queued at most (0 = GN_ERGO_MAILBOX_BYTES_DEFAULT); a message that
     * would pass it (or the node's max_queued_bytes) is refused as by a full mailbox,
     * except into an empty mailbox */
    size_t mailbox_bytes;
    gn_ergo_compression compression; /* zero: messages are sent uncompressed */
} gn_ergo_proc_opts;

/**
 * Creates a process on @en with a new PID (IDs from 1001 up) whose
 * messages go to @cb(@arg) from the loop, one at a time, highest priority
 * first, in arrival order within a priority. @o NULL = defaults.
 * Returns 0; GN_EINVAL (NULL @en/@cb/@out, bad @o->compression: see
 * gn_ergo_proc_set_compression()); GN_ESTATE (the component is not
 * running); GN_ENOMEM.
 * Since: 0.6
 */
GN_API int gn_ergo_spawn(gn_ergo_node *en, const gn_ergo_proc_opts *o, gn_ergo_msg_cb cb,
                         void *arg, gn_ergo_proc **out);

/**
 * Ends and frees @p: its name and aliases go, queued messages are dropped
 * (important senders were answered "delivered" when the message reached the
 * mailbox, as Ergo does), its pending calls and important sends end without
 * callback (its remote spawn and application start requests: GN_ECLOSED,
 * from inside this call); later messages to its PID, name or aliases are "unknown
 * process". Links, monitors and events fire as gn_ergo_proc_exit(@p,
 * "normal") (since 0.6). May be called from any process callback, @p's own
 * included. NULL is a no-op. Since: 0.6
 */
GN_API void gn_ergo_proc_free(gn_ergo_proc *p);

/** @p's PID. Since: 0.6 */
GN_API void gn_ergo_proc_pid(const gn_ergo_proc *p, gn_ergo_pid *out);

/**
 * Pushback: a paused process's callback is not called; its mailbox fills
 * and then refuses (see gn_ergo_send()). Unpausing delivers what queued.
 * Returns 0 or GN_EINVAL. Since: 0.6
 */
GN_API int gn_ergo_proc_pause(gn_ergo_proc *p, bool paused);

/**
 * Sets @p's compression (Ergo's SetCompression* calls in one); applies to
 * frames built from now on. @c NULL = disabled. Returns 0; GN_EINVAL (NULL
 * @p, a type or level out of range, a threshold of 1..1023 bytes).
 * Since: 0.6
 */
GN_API int gn_ergo_proc_set_compression(gn_ergo_proc *p, const gn_ergo_compression *c);

/** @p's compression settings into *@out (threshold 0 shows as 1024). Since: 0.6 */
GN_API void gn_ergo_proc_compression(const gn_ergo_proc *p, gn_ergo_compression *out);

/** Messages waiting in @p's mailbox. Since: 0.6 */
GN_API size_t gn_ergo_proc_queued(const gn_ergo_proc *p);

/**
 * Registers @name (1..255 bytes, NUL-terminated) for @p on its node: a
 * ProcessID target {node, name} reaches it. A process holds at most one
 * name. Returns 0; GN_EINVAL; GN_EEXIST (the name is taken, or @p has
 * one); GN_ENOMEM. Since: 0.6
 */
GN_API int gn_ergo_register(gn_ergo_proc *p, const char *name);

/** Drops @p's name. Returns 0, GN_EINVAL, GN_ENOTFOUND (no name). Since: 0.6 */
GN_API int gn_ergo_unregister(gn_ergo_proc *p);

/**
 * Creates an alias of @p (a fresh reference of our node): messages and calls
 * to it reach @p until deleted. Returns 0 and *@out; GN_EINVAL; GN_ELIMIT
 * (64 aliases per process); GN_ENOMEM. Since: 0.6
 */
GN_API int gn_ergo_alias_new(gn_ergo_proc *p, gn_ergo_alias *out);

/** Deletes alias @a of @p. Returns 0, GN_EINVAL, GN_ENOTFOUND. Since: 0.6 */
GN_API int gn_ergo_alias_delete(gn_ergo_proc *p, const gn_ergo_alias *a);

/** A target from a PID. Since: 0.6 */
GN_API gn_ergo_target gn_ergo_to_pid(const gn_ergo_pid *pid);
/** A target from a registered @name on @node (NUL-terminated, truncated at 255). Since: 0.6 */
GN_API gn_ergo_target gn_ergo_to_name(const char *node, const char *name);
/** A target from an alias. Since: 0.6 */
GN_API gn_ergo_target gn_ergo_to_alias(const gn_ergo_alias *a);

/** Send and call options; zero = defaults. Since: 0.6 */
typedef struct gn_ergo_send_opts {
    gn_ergo_priority priority;
    /* Important delivery: the remote node answers delivered or an error, given
     * to on_result (sends) or on_reply (calls: only errors; success is the answer). */
    bool important;
    gn_ergo_result_cb on_result; /* sends with important only; NULL: not told */
    void *arg;
    gn_time timeout;             /* answer deadline, ns (0 = GN_ERGO_TIMEOUT_DEFAULT;
                                    GN_TIME_INFINITY, or any value past it: no bound) */
} gn_ergo_send_opts;

/**
 * Sends @v from @from to @to. Local target (our node name): queued in its
 * mailbox at once. Remote: encoded with our dictionaries and sent (after
 * connecting when the node is not connected: static routes, then the
 * registrar; at most 256 frames wait per node).
 * With @o->important and a remote target, @o->on_result follows once:
 * delivered (0) or the remote's error, GN_ETIMEDOUT, GN_ECONNRESET, or,
 * for a frame that waited for the connection, the connect error or the
 * carrier's refusal once the node is up (GN_ETOOBIG above its
 * MaxMessageSize, GN_EAGAIN with its write queue full; since 0.6).
 * The frame is compressed by @from's settings (gn_ergo_proc_set_compression()),
 * except a frame above 64 MiB, which goes plain (golemnet receivers refuse to
 * inflate more); for sends by name (102/103) the plain frame must fit the
 * remote's MaxMessageSize as well as the compressed one (Ergo's rule), also
 * for a frame that waited for the connection (then @o->on_result gets
 * GN_ETOOBIG; a plain send is dropped).
 * Returns 0; GN_EINVAL (NULL, bad target, a value that does not encode);
 * GN_ENOTFOUND (local: no such process); GN_EAGAIN (local: the mailbox is
 * full; remote: the carrier's write queue or the connect queue is full);
 * GN_ELIMIT (important: @from has max_pending outstanding); GN_ETOOBIG (the
 * frame is above the remote's MaxMessageSize); GN_ENOTSUP (not connected,
 * and no TCP acceptor (channels only: use gn_ergo_connect_peer() first) or
 * no route and no registrar); GN_ESTATE (component not running); GN_ENOMEM.
 * Important delivery to a local target: the return value is the outcome and
 * @o->on_result is not called.
 * Since: 0.6
 */
GN_API int gn_ergo_send(gn_ergo_proc *from, const gn_ergo_target *to, const gn_edf_value *v,
                        const gn_ergo_send_opts *o);

/**
 * Calls @to with request @v: the target gets a message with call = true and
 * a fresh reference of ours (*@ref_out, optional); @cb(@arg) follows once
 * with its answer, or an error: GN_ETIMEDOUT (no answer within the
 * timeout; a late answer is dropped), with @o->important the remote's
 * routing error (GN_ENOTFOUND, GN_EAGAIN, ...), GN_ECONNRESET,
 * GN_ECALLBACK with the whole error text of gn_ergo_reply_error() (up to
 * 32767 bytes; GN_ENOMEM when it could not be copied), or, for a request
 * that waited for the connection, the connect error or the carrier's
 * refusal once the node is up (GN_ETOOBIG above its MaxMessageSize, GN_EAGAIN
 * with its write queue full), as for gn_ergo_send(). The request is
 * compressed as gn_ergo_send() compresses (calls, 121-124, check only the
 * compressed size against MaxMessageSize). Calls whose timeouts pass in the same loop turn end
 * earliest deadline first, then in the order they were made.
 * Returns 0 or the errors of gn_ergo_send() (GN_ELIMIT: @from has
 * max_pending outstanding). Since: 0.6
 */
GN_API int gn_ergo_call(gn_ergo_proc *from, const gn_ergo_target *to, const gn_edf_value *v,
                        const gn_ergo_send_opts *o, gn_ergo_call_cb cb, void *arg,
                        gn_ergo_ref *ref_out);

/**
 * Answers call @ref from caller @to (both from the gn_ergo_msg) with @v, as
 * process @p (MessageResponse, 129). Returns 0; GN_EINVAL; GN_ENOTFOUND
 * (local caller without such a pending call: it timed out or ended); the
 * send errors of gn_ergo_send() for a remote caller. Since: 0.6
 */
GN_API int gn_ergo_reply(gn_ergo_proc *p, const gn_ergo_pid *to, const gn_ergo_ref *ref,
                         const gn_edf_value *v);

/**
 * Answers call @ref from caller @to with an error instead of a value
 * (MessageResponseError, 130, code 255 and the EDF error @text): the caller
 * gets GN_ECALLBACK with @text (NUL-terminated, 1..32767 bytes; texts the
 * registry holds travel as error-cache ids). Returns as gn_ergo_reply();
 * GN_EINVAL also for an empty or too long @text. Since: 0.6
 */
GN_API int gn_ergo_reply_error(gn_ergo_proc *p, const gn_ergo_pid *to, const gn_ergo_ref *ref,
                               const char *text);

/* ---- links, monitors, exit signals (Since: 0.6) ------------------------------------------ */

/** Links plus monitors one process may hold (GN_ELIMIT beyond). Since: 0.6 */
#define GN_ERGO_LINKS_MAX 256u
/** Links plus monitors other processes (local or remote) may hold on one process. Since: 0.6 */
#define GN_ERGO_CONSUMERS_MAX 1024u

/** Ergo's reason texts (gen.TerminateReason*, gen.ErrNoConnection, gen.ErrUnregistered). Since: 0.6 */
#define GN_ERGO_REASON_NORMAL "normal"
#define GN_ERGO_REASON_KILL "kill"
#define GN_ERGO_REASON_SHUTDOWN "shutdown"
#define GN_ERGO_REASON_NOCONNECTION "no connection"
#define GN_ERGO_REASON_UNREGISTERED "unregistered"

/** What a signal is. Since: 0.6 */
typedef enum gn_ergo_signal_kind {
    GN_ERGO_SIG_EXIT = 1, /* a linked target terminated, or an exit signal (@direct) */
    GN_ERGO_SIG_DOWN = 2, /* a monitored target terminated */
} gn_ergo_signal_kind;

/**
 * One exit or down signal a process receives (Ergo's gen.MessageExit* /
 * gen.MessageDown*), borrowed for the callback. @target names what
 * terminated, as the link or monitor named it (PID, name or alias); for an
 * exit signal sent with gn_ergo_send_exit() (@direct true) it is the
 * sender's PID. @reason: Ergo's reason text: "normal" (the target ended
 * normally: gn_ergo_proc_free()), the text given to gn_ergo_proc_exit() or
 * gn_ergo_send_exit(), "no connection" (the connection to the target's node
 * was lost), "unregistered" (the name or alias went away while the process
 * lives). Since: 0.6
 */
typedef struct gn_ergo_signal {
    gn_ergo_signal_kind kind;
    bool direct;
    gn_ergo_target target;
    const char *reason;
} gn_ergo_signal;

/** A process's signal callback (loop thread). Since: 0.6 */
typedef void (*gn_ergo_signal_cb)(gn_ergo_proc *p, void *arg, const gn_ergo_signal *s);

/**
 * Sets @p's signal callback (NULL: signals are dropped). Signals are queued
 * (at most GN_ERGO_LINKS_MAX + the mailbox size; exit signals beyond are
 * dropped) and delivered from the loop before @p's messages, never from
 * inside a call of this header. A golemnet process always "traps exits": an
 * exit never ends it; the application decides (gn_ergo_proc_exit()).
 * Returns 0 or GN_EINVAL. Since: 0.6
 */
GN_API int gn_ergo_proc_set_signal_cb(gn_ergo_proc *p, gn_ergo_signal_cb cb, void *arg);

/**
 * Ends and frees @p like gn_ergo_proc_free(), with @reason (NUL-terminated,
 * 1..255 bytes; NULL = "normal"): every link and monitor on @p, its name and
 * its aliases fires with @reason, local consumers get their signal, each
 * remote node holding some gets one termination frame per target
 * (TerminatePID/Name/Alias, 181/182/184); events @p owns are unregistered
 * ("unregistered"). Links and monitors @p held are dropped, and connected
 * remote nodes are told (MessageUnlink* or MessageDemonitor*, not waited for).
 * Returns 0; GN_EINVAL (NULL @p, bad @reason). Since: 0.6
 */
GN_API int gn_ergo_proc_exit(gn_ergo_proc *p, const char *reason);

/**
 * Links @p to @t (a PID, registered name, alias or event, local or remote): when
 * @t terminates, or the connection to its node is lost, @p gets an EXIT
 * signal with the reason (links are one-way, as in Ergo 3). Remote: a
 * MessageLink* request (199) is sent; @cb(@arg) (optional) gets the remote
 * answer: 0, GN_ENOTFOUND ("unknown process"), GN_ECALLBACK (another error,
 * its whole text passed, up to 32767 bytes), GN_ENOMEM (that text could not be
 * copied), GN_ETIMEDOUT (no answer within GN_ERGO_TIMEOUT_DEFAULT), GN_ECONNRESET,
 * the connect error or GN_ETOOBIG/GN_EAGAIN when the request waited for the
 * connection (as for gn_ergo_send()), GN_ECLOSED (gn_ergo_unlink() cancelled it
 * first); on an error the link is gone. Requests are never compressed.
 * Local: the outcome is the return value and @cb is not called.
 * Returns 0; GN_EINVAL; GN_ENOTFOUND (local target missing); GN_EEXIST (@p
 * already links @t); GN_ELIMIT (@p holds GN_ERGO_LINKS_MAX, or the local
 * target has GN_ERGO_CONSUMERS_MAX consumers, or @p has max_pending
 * outstanding); the send errors of gn_ergo_send(). Since: 0.6
 */
GN_API int gn_ergo_link(gn_ergo_proc *p, const gn_ergo_target *t, gn_ergo_result_cb cb,
                        void *arg);

/**
 * Removes @p's link to @t (remote: MessageUnlink*, its answer ignored); no
 * signal follows. A remote link still waiting for its confirmation is
 * cancelled: its gn_ergo_link() result callback gets GN_ECLOSED, from the
 * loop after this call returns (never from inside it), whatever the remote
 * node answers. Returns 0; GN_EINVAL; GN_ENOTFOUND (no such link).
 * Since: 0.6
 */
GN_API int gn_ergo_unlink(gn_ergo_proc *p, const gn_ergo_target *t);

/**
 * Monitors @t as gn_ergo_link() links it: the signal is DOWN instead of
 * EXIT (MessageMonitor*). Same returns. Since: 0.6
 */
GN_API int gn_ergo_monitor(gn_ergo_proc *p, const gn_ergo_target *t, gn_ergo_result_cb cb,
                           void *arg);

/**
 * Removes @p's monitor of @t (MessageDemonitor*); a pending confirmation
 * ends with GN_ECLOSED as for gn_ergo_unlink(). Returns as gn_ergo_unlink().
 * Since: 0.6
 */
GN_API int gn_ergo_demonitor(gn_ergo_proc *p, const gn_ergo_target *t);

/**
 * Sends an exit signal with @reason (NUL-terminated, 1..255 bytes) from
 * @from to process @to (MessageExit, 107, for a remote PID): the target
 * gets an EXIT signal with direct = true. Returns 0; GN_EINVAL;
 * GN_ENOTFOUND (local: no such process); GN_EAGAIN (local: its signal queue
 * is full); the send errors of gn_ergo_send() (remote). Since: 0.6
 */
GN_API int gn_ergo_send_exit(gn_ergo_proc *from, const gn_ergo_pid *to, const char *reason);

/* ---- events (Since: 0.6) ----------------------------------------------------------------- */

/** Events one process may own (GN_ELIMIT beyond). Since: 0.6 */
#define GN_ERGO_EVENTS_MAX 64u

/** A target from an event @name on @node (NUL-terminated, truncated at 255). Since: 0.6 */
GN_API gn_ergo_target gn_ergo_to_event(const char *node, const char *name);

/**
 * Registers event @name (1..255 bytes) on @p's node, owned by @p: processes
 * here and on remote nodes link or monitor it (gn_ergo_link() with
 * gn_ergo_to_event(); from Go, LinkEvent/MonitorEvent) and receive what
 * @p publishes. Past events are not buffered (a MonitorEvent answer carries
 * an empty list). Returns 0; GN_EINVAL; GN_EEXIST (the name is taken);
 * GN_ELIMIT (@p owns GN_ERGO_EVENTS_MAX); GN_ENOMEM. Since: 0.6
 */
GN_API int gn_ergo_event_register(gn_ergo_proc *p, const char *name);

/**
 * Unregisters event @name of @p: every link and monitor on it fires with
 * "unregistered" (remote nodes get TerminateEvent, 185). The same happens
 * to @p's events when @p ends. Returns 0; GN_EINVAL; GN_ENOTFOUND (@p owns
 * no such event). Since: 0.6
 */
GN_API int gn_ergo_event_unregister(gn_ergo_proc *p, const char *name);

/**
 * Publishes @v on event @name of @p: every local subscriber (link or
 * monitor) gets a message whose value is Ergo's gen.MessageEvent {Event,
 * Timestamp (Unix ns), Message = @v} (GN_EDF_ERGO_MESSAGE_EVENT) from @p;
 * each remote node with subscribers gets one MessageEvent frame (105) and
 * fans it out to its own. A subscriber whose mailbox is full misses it.
 * Returns the number of local subscribers reached plus remote nodes sent
 * to (>= 0); GN_EINVAL (bad arguments, a value that does not encode);
 * GN_ENOTFOUND (@p owns no such event). Since: 0.6
 */
GN_API int gn_ergo_event_publish(gn_ergo_proc *p, const char *name, const gn_edf_value *v);

/* ---- remote spawn and application start (Since: 0.6) ------------------------------------- */

/*
 * Ergo's error texts of spawn and application-start answers (MessageResult
 * Error): gen.ErrNameUnknown (the factory or application is not enabled),
 * gen.ErrNotAllowed (enabled, but not for the requesting node),
 * gen.ErrTaken (the name to register is in use), gen.ErrApplicationUnknown,
 * gen.ErrExceeded (our answer when a factory has GN_ERGO_SPAWN_PROCS_DEFAULT
 * or its max_procs live processes). A node whose own network flags
 * (ergo.flags) have Enable set and RemoteSpawn (0x02) / RemoteApplicationStart
 * (0x04) clear does not answer such requests at all (the requester times
 * out), as Ergo's node. Since: 0.6
 */
#define GN_ERGO_ERR_UNKNOWN_NAME "unknown name"
#define GN_ERGO_ERR_NOT_ALLOWED "not allowed"
#define GN_ERGO_ERR_TAKEN "resource is taken"
#define GN_ERGO_ERR_UNKNOWN_APP "unknown application"
#define GN_ERGO_ERR_EXCEEDED "limit exceeded"
/** Factories plus applications one node may enable (GN_ELIMIT beyond). Since: 0.6 */
#define GN_ERGO_ENABLED_MAX 256u
/** Nodes one enabled factory or application may name (GN_ELIMIT beyond). Since: 0.6 */
#define GN_ERGO_ENABLED_NODES_MAX 64u
/**
 * Live processes one enabled factory may have made for remote nodes unless
 * gn_ergo_spawn_enable_ex() says otherwise; a request beyond is answered
 * GN_ERGO_ERR_EXCEEDED without asking the factory. Since: 0.6
 */
#define GN_ERGO_SPAWN_PROCS_DEFAULT 1024u
/** Args one gn_ergo_remote_spawn() may carry (GN_EINVAL beyond). Since: 0.6 */
#define GN_ERGO_SPAWN_ARGS_MAX 4096u

/**
 * A remote node's request to spawn a process (Ergo's MessageSpawn), as the
 * factory callback gets it; everything borrowed for the callback. @options
 * is the whole gen.ProcessOptionsExtra as received (a registered struct);
 * the fields below are taken from it. Since: 0.6
 */
typedef struct gn_ergo_spawn_request {
    const char *node;          /* the requesting node */
    const char *factory;       /* the factory name it asked for */
    gn_ergo_pid parent;        /* ParentPID: the requesting process */
    gn_ergo_pid leader;        /* Leader, else ParentLeader */
    const char *register_name; /* Register ("" = none); the library registers it on the
                                  process the callback returns */
    const char *application;   /* Application ("" = none) */
    const gn_edf_value *args;  /* Args: @nargs values */
    size_t nargs;
    int64_t mailbox_size;      /* MailboxSize (0 = unbounded in Ergo; ours stay bounded) */
    gn_ergo_priority send_priority;
    bool important_delivery, link_parent, link_child;
    const gn_edf_value *options;
} gn_ergo_spawn_request;

/**
 * A factory (loop thread, from inside the request's handling): creates the
 * process for @req with gn_ergo_spawn() and returns 0 with *@out; or returns
 * a negative gn_err, optionally with *@err_text (NUL-terminated, copied at
 * once; NULL: gn_strerror() of the error), which the requester gets as the
 * answer's error (Ergo: the text of the ProcessInit error).
 * Ownership: the process is the application's in every case (it made it
 * with gn_ergo_spawn(), it frees it with gn_ergo_proc_free()); the library
 * never frees it. On 0 the library registers @req->register_name on *@out
 * (nothing to do when *@out holds that name already) and answers with its
 * PID; the process counts against the factory's max_procs until it ends.
 * When that name cannot be registered (the factory gave it to another
 * process, or another name to *@out) the requester gets "resource is
 * taken" and *@out runs on unnamed. 0 with *@out NULL or a process of
 * another node is answered gn_strerror(GN_ESTATE) (*@out must not be one
 * the factory freed: that pointer is gone). With
 * an error *@out is not looked at: free what you made before returning it.
 * @req and everything in it are borrowed for the call; the callback may
 * call gn_ergo_disconnect() (the answer then goes nowhere), but not
 * gn_ergo_spawn_disable() of this factory nor gn_ergo_detach(). Since: 0.6
 */
typedef int (*gn_ergo_factory_fn)(void *arg, gn_ergo_node *en, const gn_ergo_spawn_request *req,
                                  gn_ergo_proc **out, const char **err_text);

/**
 * Enables remote spawn of factory @name (1..255 bytes, NUL-terminated) on
 * @en (Ergo's Network().EnableSpawn): a MessageSpawn naming it runs @fn(@arg)
 * and is answered with the new PID. @nodes (@n_nodes names; 0 = any node)
 * restricts who may ask; calling again with nodes adds them to the list,
 * with none opens it to any node, and replaces @fn/@arg. Without enabling,
 * requests are answered "unknown name"; from a node not on a non-empty
 * list, "not allowed"; a Register name in use, "resource is taken"; with
 * GN_ERGO_SPAWN_PROCS_DEFAULT of its processes alive, "limit exceeded"; a
 * failing factory, its text. Returns 0; GN_EINVAL (NULL @en/@name/@fn, a
 * bad name); GN_ELIMIT (GN_ERGO_ENABLED_MAX names or
 * GN_ERGO_ENABLED_NODES_MAX nodes); GN_ESTATE (from a callback while @en
 * detaches); GN_ENOMEM. Loop thread. Since: 0.6
 */
GN_API int gn_ergo_spawn_enable(gn_ergo_node *en, const char *name, const char *const *nodes,
                                size_t n_nodes, gn_ergo_factory_fn fn, void *arg);

/** gn_ergo_spawn_enable_ex() options; zero = defaults. Since: 0.6 */
typedef struct gn_ergo_spawn_enable_opts {
    /* processes the factory's requests made that may live at once (0 =
     * GN_ERGO_SPAWN_PROCS_DEFAULT); a request beyond is answered "limit
     * exceeded" without asking the factory. Counted from this enable: a
     * process counts until gn_ergo_proc_free()/gn_ergo_proc_exit(); removing
     * the factory (gn_ergo_spawn_disable() without nodes) forgets its
     * processes; enabling again replaces the cap and keeps the count. */
    uint32_t max_procs;
} gn_ergo_spawn_enable_opts;

/**
 * gn_ergo_spawn_enable() with options @o (NULL = defaults). Returns as
 * gn_ergo_spawn_enable(). Since: 0.6
 */
GN_API int gn_ergo_spawn_enable_ex(gn_ergo_node *en, const char *name, const char *const *nodes,
                                   size_t n_nodes, const gn_ergo_spawn_enable_opts *o,
                                   gn_ergo_factory_fn fn, void *arg);

/**
 * Disables remote spawn of factory @name (Network().DisableSpawn): @n_nodes
 * 0 removes it (requests then get "unknown name"; processes it made live
 * on); else the @nodes are refused from now on ("not allowed"; a list whose
 * nodes are all refused refuses every node). Returns 0; GN_EINVAL (NULL
 * @en/@name, a bad name in @name or @nodes: nothing changed); GN_ENOTFOUND
 * (not enabled). Loop thread. Since: 0.6
 */
GN_API int gn_ergo_spawn_disable(gn_ergo_node *en, const char *name, const char *const *nodes,
                                 size_t n_nodes);

/** gen.ApplicationMode. Since: 0.6 */
typedef enum gn_ergo_app_mode {
    GN_ERGO_APP_DEFAULT = 0, /* as the application's spec says */
    GN_ERGO_APP_TEMPORARY = 1,
    GN_ERGO_APP_TRANSIENT = 2,
    GN_ERGO_APP_PERMANENT = 3,
} gn_ergo_app_mode;

/** A remote node's MessageApplicationStart, borrowed for the callback. Since: 0.6 */
typedef struct gn_ergo_app_request {
    const char *node;     /* the requesting node */
    const char *name;     /* the application */
    gn_ergo_app_mode mode;
    gn_ergo_pid core;     /* CorePID */
    const gn_edf_value *options; /* the whole gen.ApplicationOptionsExtra */
} gn_ergo_app_request;

/**
 * Starts the application for @req (loop thread): returns 0, or a negative
 * gn_err with optional *@err_text (as gn_ergo_factory_fn). Since: 0.6
 */
typedef int (*gn_ergo_app_fn)(void *arg, gn_ergo_node *en, const gn_ergo_app_request *req,
                              const char **err_text);

/**
 * Enables remote start of application @name (Network().EnableApplicationStart)
 * with @fn(@arg) doing the start; @nodes as in gn_ergo_spawn_enable(), same
 * answers ("unknown name", "not allowed", the callback's text). Returns as
 * gn_ergo_spawn_enable(). Since: 0.6
 */
GN_API int gn_ergo_app_enable(gn_ergo_node *en, const char *name, const char *const *nodes,
                              size_t n_nodes, gn_ergo_app_fn fn, void *arg);

/** Disables remote start of @name; as gn_ergo_spawn_disable(). Since: 0.6 */
GN_API int gn_ergo_app_disable(gn_ergo_node *en, const char *name, const char *const *nodes,
                               size_t n_nodes);

/** gn_ergo_remote_spawn() options; zero = defaults. Since: 0.6 */
typedef struct gn_ergo_spawn_opts {
    const char *register_name; /* NULL or "": none; else 1..255 bytes */
    const gn_edf_value *args;  /* @nargs values for the factory (encoded before the call returns) */
    size_t nargs;              /* at most GN_ERGO_SPAWN_ARGS_MAX */
    int64_t mailbox_size;      /* MailboxSize (0 = the remote's default) */
    gn_time timeout;           /* answer deadline, ns (0 = GN_ERGO_TIMEOUT_DEFAULT;
                                  GN_TIME_INFINITY: no bound) */
} gn_ergo_spawn_opts;

/**
 * Outcome of a remote spawn: @status 0 and the new process's @pid (borrowed
 * for the call), or an error with @pid NULL: GN_ECALLBACK with the remote
 * error's whole text @err_text (up to 32767 bytes: "unknown name", "not
 * allowed", "resource is taken", "limit exceeded", a factory's text),
 * GN_ENOMEM (that text could not be copied), GN_ENOTFOUND ("unknown process"),
 * GN_EPROTO (success without a PID), GN_ETIMEDOUT (also when the remote's
 * flags make it ignore the request), GN_ECONNRESET, the connect error, or
 * GN_ECLOSED (the requesting process ended, or its node detached, first:
 * from inside gn_ergo_proc_free()/gn_ergo_proc_exit()/gn_ergo_detach(); do
 * not make requests on that node from it). Loop thread. Since: 0.6
 */
typedef void (*gn_ergo_spawn_cb)(void *arg, int status, const gn_ergo_pid *pid,
                                 const char *err_text);

/**
 * Asks remote node @node to spawn a process from its factory @factory
 * (Ergo's RemoteSpawn / RemoteSpawnRegister): a MessageSpawn (199) from @p
 * (ParentPID) with @o's Register and Args; after a 0 return @cb(@arg)
 * follows exactly once with the answer (MessageResult) or an error (see
 * gn_ergo_spawn_cb: GN_ECLOSED when @p or the node goes first); after an
 * error return it does not. The request connects on first use, as a send
 * does, and counts against @p's max_pending until answered. When the
 * connection goes down during this call, @cb may run (GN_ECONNRESET) before
 * it returns 0. Returns 0; GN_EINVAL (NULL @p/@node/@factory/@cb, @p ended,
 * bad names, @node is our own node: use gn_ergo_spawn(), more than
 * GN_ERGO_SPAWN_ARGS_MAX args, an argument that does not encode);
 * GN_ELIMIT (@p has max_pending outstanding); GN_ENOTSUP (the connected
 * remote announces network flags without RemoteSpawn, Ergo's "not
 * allowed"); GN_ESTATE (the component is not running, or the node is
 * detaching); GN_ENOMEM; the send errors of gn_ergo_send(). Loop thread.
 * Since: 0.6
 */
GN_API int gn_ergo_remote_spawn(gn_ergo_proc *p, const char *node, const char *factory,
                                const gn_ergo_spawn_opts *o, gn_ergo_spawn_cb cb, void *arg);

/**
 * Asks remote node @node to start application @app in @mode (Ergo's
 * ApplicationStart* on a remote node): a MessageApplicationStart (199) with
 * CorePID = @p's PID; after a 0 return @cb(@arg) (optional) follows exactly
 * once with 0, GN_ECALLBACK with the remote's whole text (up to 32767 bytes:
 * "unknown name", "not allowed", the application's error; GN_ENOMEM when it
 * could not be copied), GN_ETIMEDOUT (after @timeout, 0 =
 * GN_ERGO_TIMEOUT_DEFAULT), GN_ECONNRESET, the connect error, or GN_ECLOSED
 * (@p ended or the node detached first, as for gn_ergo_remote_spawn()).
 * Counts against @p's max_pending. Returns as gn_ergo_remote_spawn()
 * (GN_EINVAL also for a @mode beyond GN_ERGO_APP_PERMANENT; GN_ENOTSUP:
 * flags without RemoteApplicationStart). Loop thread. Since: 0.6
 */
GN_API int gn_ergo_remote_app_start(gn_ergo_proc *p, const char *node, const char *app,
                                    gn_ergo_app_mode mode, gn_time timeout,
                                    gn_ergo_result_cb cb, void *arg);

/* ---- any-thread queue (Since: 0.6; docs/ergo-node.md "Any-thread queue") ----------------- */

/*
 * A queued process delivers its messages and signals to a bounded queue
 * another thread pops (gn_ergo_queue_next(), or a poller on
 * gn_ergo_queue_fd()), like the node's events (gn_node_next_event()).
 * The process itself (gn_ergo_proc) stays a loop-thread object; the queue
 * (gn_ergo_queue) is a separate, reference-counted handle that any thread
 * may use and that outlives the process: when the process ends, its memory
 * goes (from the loop), the queue's does not.
 *
 * Bounds: at most @capacity items and @max_bytes bytes of memory wait in
 * the queue, counting for each item, message or signal, sizeof(gn_ergo_item)
 * plus what its value's arena holds (about twice the value's decoded size).
 * These bytes are the queue's own: a message moved from the mailbox to the
 * queue no longer counts against the node's max_queued_bytes (nor the
 * mailbox's mailbox_bytes), so a node's process memory is bounded by
 * max_queued_bytes plus the max_bytes of each of its queues. When a push reaches either bound the library pauses the process
 * (gn_ergo_proc_pause()): further messages wait in its bounded mailbox
 * (mailbox_size, mailbox_bytes; when that is full too, the mailbox-full
 * rules of gn_ergo_send() apply: local senders get GN_EAGAIN, remote
 * important senders "mailbox full", remote plain sends are dropped) and
 * signals in its signal queue (GN_ERGO_LINKS_MAX + mailbox_size; exit
 * signals beyond are dropped). A pop that takes the queue below both bounds
 * resumes the process through a command reserved in the queue (it never
 * fails for a full loop command queue, so a poller that pops with a 0
 * timeout until GN_EAGAIN needs no later call). Nothing is lost in between: paused, the process is not delivered
 * anything. The library owns the process's pause state and its signal
 * callback: do not call gn_ergo_proc_pause() or gn_ergo_proc_set_signal_cb()
 * on a queued process.
 */

/** Default bound on the items waiting in a queue (gn_ergo_queue_opts.capacity). Since: 0.6 */
#define GN_ERGO_QUEUE_DEFAULT 256u

/**
 * Default bound on the memory of the items waiting in a queue
 * (gn_ergo_queue_opts.max_bytes): 4 MiB. Since: 0.6
 */
#define GN_ERGO_QUEUE_BYTES_DEFAULT ((size_t)4 << 20)

/** An any-thread queue of a process's messages and signals. Opaque. Since: 0.6 */
typedef struct gn_ergo_queue gn_ergo_queue;

/** What a queue item is. Since: 0.6 */
typedef enum gn_ergo_item_kind {
    GN_ERGO_ITEM_MESSAGE = 1, /* @msg */
    GN_ERGO_ITEM_SIGNAL = 2,  /* @signal */
} gn_ergo_item_kind;

/**
 * One item popped from a queue. A message's @msg.value (with every child,
 * byte field and unregistered composite type) is owned by the item, in an
 * arena of its own, until gn_ergo_item_release(); it is independent of the
 * loop and of the queue (the queue may be freed first). Values of
 * registered types point at types of the node's registry
 * (gn_ergo_registry()), which lives as long as the ergo component runs:
 * release items before the node stops. A signal's @signal.reason points
 * into the item itself (valid while the item is, not after copying the
 * struct). Fields ending in _ are private. Since: 0.6
 */
typedef struct gn_ergo_item {
    gn_ergo_item_kind kind;
    gn_ergo_msg msg;       /* GN_ERGO_ITEM_MESSAGE: as a message callback gets it */
    gn_ergo_signal signal; /* GN_ERGO_ITEM_SIGNAL: as a signal callback gets it */
    char reason_[GN_ERGO_NAME_MAX + 1];
    void *arena_;
} gn_ergo_item;

/** gn_ergo_spawn_queued() options; zero = defaults. Since: 0.6 */
typedef struct gn_ergo_queue_opts {
    gn_ergo_proc_opts proc; /* the process's options (mailbox bounds, compression, ...) */
    uint32_t capacity;      /* items waiting at most (0 = GN_ERGO_QUEUE_DEFAULT) */
    size_t max_bytes;       /* memory of the items waiting at most, as counted above (0 =
                             * GN_ERGO_QUEUE_BYTES_DEFAULT); an item is queued whatever its size
                             * when the bounds allow one more, then the process pauses */
} gn_ergo_queue_opts;

/**
 * Creates a process on @en as gn_ergo_spawn() does, whose messages and
 * signals (exit, down) go to a new queue *@q_out instead of callbacks: each
 * message's value is copied (encoded and decoded into the item's own arena)
 * on the loop and pushed. @o NULL = defaults.
 * Ownership: *@p_out is a process like any other (loop thread; end it with
 * gn_ergo_proc_free() or gn_ergo_proc_exit(), or gn_ergo_detach() ends it);
 * *@q_out holds one reference for the application, dropped with
 * gn_ergo_queue_free(), and one for the process, dropped when it ends.
 * When the process ends the queue closes: items waiting can still be
 * popped, then gn_ergo_queue_next() returns GN_ECLOSED (a thread blocked in
 * it wakes with GN_ECLOSED); items popped before stay valid until released.
 * Out of memory on the loop (copying a message's value, or growing the
 * queue's ring toward @capacity for any item) drops the item with a
 * warning in the log: a message (a caller gets no answer and times out) or
 * a signal (the exit or down of a link or monitor is lost: the application
 * does not learn that the target ended).
 * Returns 0; GN_EINVAL (NULL @en/@p_out/@q_out, bad @o->proc.compression);
 * GN_ESTATE (the component is not running); GN_ENOMEM; GN_EIO (no wakeup
 * descriptor for the queue). Loop thread. Since: 0.6
 */
GN_API int gn_ergo_spawn_queued(gn_ergo_node *en, const gn_ergo_queue_opts *o,
                                gn_ergo_proc **p_out, gn_ergo_queue **q_out);

/**
 * Pops the oldest item of @q into *@item (the caller's storage; it then
 * owns the item's value: gn_ergo_item_release()). Items come in the order
 * the process would have had them in its callbacks: a signal before the
 * messages that were waiting in the mailbox with it, messages by priority
 * then arrival, so per sender in sending order within a priority.
 * @timeout: 0 = do not wait, GN_TIME_INFINITY = wait, else ns.
 * Returns 0; GN_EINVAL (NULL @q/@item); GN_EAGAIN (empty, @timeout 0);
 * GN_ETIMEDOUT (nothing within @timeout); GN_ECLOSED (the process ended
 * and every item was popped). Any thread; several threads may pop one
 * queue. Loop lifetime: a pop may submit the resume to the node's loop;
 * it does so only while the process lives, atomically with the check, and
 * ending the process (gn_ergo_proc_free(), gn_ergo_proc_exit(),
 * gn_ergo_detach(), on the loop thread) waits for a submit under way. So
 * the loop must exist until the process ended; after that the queue never
 * touches the loop and may be popped with the node and loop gone.
 * Since: 0.6
 */
GN_API int gn_ergo_queue_next(gn_ergo_queue *q, gn_ergo_item *item, gn_time timeout);

/**
 * Frees what *@item owns (its value's arena) and clears it. Any thread; an
 * item that is not set (zeroed) or already released is a no-op; NULL is a
 * no-op. Since: 0.6
 */
GN_API void gn_ergo_item_release(gn_ergo_item *item);

/**
 * A file descriptor readable while items wait in @q or it is closed (as
 * gn_evq_fd(): eventfd, a pipe, or on Windows a loopback socket; -1 for NULL @q). Do not
 * read or close it; pop with a 0 timeout when it is readable (on Windows it
 * may stay readable briefly after @q empties; that pop's GN_EAGAIN clears it). Valid until
 * gn_ergo_queue_free(). Any thread. Since: 0.6
 */
GN_API int gn_ergo_queue_fd(const gn_ergo_queue *q);

/** Items waiting in @q now (0 for NULL). Any thread. Since: 0.6 */
GN_API size_t gn_ergo_queue_len(gn_ergo_queue *q);

/**
 * True while @q has paused its process because it reached a bound and no
 * resume is on its way (false for NULL). Any thread. Since: 0.6
 */
GN_API bool gn_ergo_queue_paused(gn_ergo_queue *q);

/** The PID of @q's process (kept after it ended). Any thread. Since: 0.6 */
GN_API void gn_ergo_queue_pid(const gn_ergo_queue *q, gn_ergo_pid *out);

/**
 * Answers call @ref from caller @to (from a popped item's msg.from and
 * msg.ref) with @v, as @q's process, from any thread: @v is encoded before
 * this returns (the caller keeps it), the answer is submitted to the loop
 * (gn_loop_submit()) and made there with gn_ergo_reply(). @cb(@arg)
 * (optional) then runs once on the loop thread with the outcome: 0, the
 * errors of gn_ergo_reply() (GN_ENOTFOUND: a local caller no longer waits),
 * GN_ECLOSED (the process ended first), GN_ENOTFOUND/GN_EPARSE (the value's
 * type is not in the registry the loop decodes with), GN_ENOMEM (out of
 * memory decoding the value on the loop), GN_ELIMIT (the value passes a
 * limit of gn_edf_decode_opts_default() when the loop decodes it, such as
 * the nesting depth). @err_text is NULL.
 * Returns 0 (@cb follows); GN_EINVAL (NULL @q/@to/@ref/@v, a value that
 * does not encode: a top-level nil, ...); GN_ERANGE, GN_ELIMIT (encoding
 * limits, as gn_edf_encode()); GN_ECLOSED (the process ended, or the loop
 * is stopping); GN_EAGAIN (the loop's command queue is full: retry);
 * GN_ENOMEM. After an error @cb is not called. Any thread. Loop
 * lifetime as gn_ergo_queue_next(): the answer is submitted only while the
 * process lives (checked atomically with the submit; ending the process
 * waits for a submit under way), so the loop must exist until the process
 * ended; after that this returns GN_ECLOSED without touching the loop.
 * Since: 0.6
 */
GN_API int gn_ergo_queue_reply(gn_ergo_queue *q, const gn_ergo_pid *to, const gn_ergo_ref *ref,
                               const gn_edf_value *v, gn_ergo_result_cb cb, void *arg);

/**
 * gn_ergo_queue_reply() with an error answer (gn_ergo_reply_error()): @text
 * NUL-terminated, 1..32767 bytes, copied. Returns as gn_ergo_queue_reply()
 * (GN_EINVAL also for an empty or too long @text). Any thread. Since: 0.6
 */
GN_API int gn_ergo_queue_reply_error(gn_ergo_queue *q, const gn_ergo_pid *to,
                                     const gn_ergo_ref *ref, const char *text,
                                     gn_ergo_result_cb cb, void *arg);

/**
 * Drops the application's reference to @q; the queue is freed (with the
 * items still waiting) when its process has ended too. It does not end the
 * process: end it first (loop thread), else it stays paused once the queue
 * fills. No thread may be blocked in gn_ergo_queue_next(@q), and @q must
 * not be used after. NULL is a no-op. Any thread. Since: 0.6
 */
GN_API void gn_ergo_queue_free(gn_ergo_queue *q);

GN_END_DECLS

#endif /* GOLEMNET_ERGO_H */
