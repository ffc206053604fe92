"""Ergo processes on a golemnet node (``golemnet/ergo.h`` from Python).

A :class:`golemnet.Node` started with the ``ergo`` protocol component
carries an Ergo node: processes with PIDs, registered names and aliases that
Go Ergo Framework 3.1 nodes, and other golemnet nodes, send to and call as
their own (docs/ergo-node.md). Values are EDF values as Python objects::

    import asyncio, dataclasses, golemnet
    from golemnet import ergo

    @ergo.register_type("#golemcap/shared/Point", fields={"X": "int32", "Y": "int32"})
    @dataclasses.dataclass
    class Point:
        X: int
        Y: int
        Label: str

    async def main():
        node = golemnet.Node(protocol_components="ergo",
                             options=ergo.options(name="py@localhost", cookie="secret"))
        en = ergo.ErgoNode(node, types=[Point])     # before node.start()
        await node.start()
        p = await en.spawn(name="echo")
        async for msg in p:                          # or spawn(on_message=...)
            if msg.call:
                await msg.reply(msg.value)

EDF <-> Python: int (Go int, or uint64 above 2**63-1), float (float64),
str (string), :class:`Atom` (atom), bytes (binary), bool, None (nil, not at
the top level), list ([]any), dict (map[string]any when every key is a str,
else map[any]any), :class:`PID`, :class:`ProcessID`, :class:`Alias`,
:class:`Ref`, :class:`Event`, :class:`ErrorValue` (any exception is sent as
an EDF error), datetime (time.Time), and dataclasses registered with
:func:`register_type` (registered structs; decoded into the class; an
unknown registered struct decodes to a dict of its fields).

Threads: every object here belongs to the asyncio loop of the node, as
:class:`golemnet.Node` does; the network runs on the node's thread and
completions come back through a wakeup fd. :class:`BlockingErgoNode` wraps
the same API for :mod:`golemnet.blocking` nodes.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime
import enum
import itertools
import typing
from typing import (Any, Awaitable, Callable, Deque, Dict, Iterable, List, Optional, Sequence,
                    Tuple, Union)

from . import _golemnet as _c
from .errors import ClosedError, Error, error_from_code
from .errors import TimeoutError as _GnTimeout

__all__ = ["Atom", "PID", "ProcessID", "Alias", "Ref", "Event", "ErrorValue", "RemoteInfo",
           "Message", "Process", "ErgoNode", "BlockingErgoNode", "Priority", "register_type",
           "options", "CallError", "Compression"]


def _code(name: str) -> int:
    from .errors import CODES
    return CODES[name]


class Atom(str):
    """An EDF atom (Go ``gen.Atom``): a str that travels as an atom."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Atom({str.__repr__(self)})"


@dataclasses.dataclass(frozen=True)
class PID:
    """``gen.PID``: node name, process ID, the node's creation."""
    node: str
    id: int
    creation: int = 0

    def __str__(self) -> str:
        return f"<{self.node}.{self.id}>"


@dataclasses.dataclass(frozen=True)
class ProcessID:
    """``gen.ProcessID``: a registered name on a node."""
    name: str
    node: str


@dataclasses.dataclass(frozen=True)
class Event:
    """``gen.Event``: an event name on a node."""
    name: str
    node: str


@dataclasses.dataclass(frozen=True)
class Ref:
    """``gen.Ref``: node, creation and three IDs."""
    node: str
    creation: int
    ids: Tuple[int, int, int]


@dataclasses.dataclass(frozen=True)
class Alias:
    """``gen.Alias`` (the shape of a Ref): messages and calls to it reach its process."""
    node: str
    creation: int
    ids: Tuple[int, int, int]


class ErrorValue(Exception):
    """An EDF error value (Go ``error``) received in a message; send one
    (or any exception) to send an error."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ErrorValue) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


class CallError(Error):
    """A call answered with an error (Ergo's MessageResponseError): the
    remote process's error text is :attr:`text`."""

    def __init__(self, text: str) -> None:
        super().__init__(_code("GN_ECALLBACK"), f"the callee answered with an error: {text}")
        self.text = text


class Priority(enum.IntEnum):
    """``gen.MessagePriority``."""
    NORMAL = 0
    HIGH = 1
    MAX = 2


@dataclasses.dataclass(frozen=True)
class RemoteInfo:
    """What is known of a connected remote node (gn_ergo_remote_info)."""
    node: str
    flags: int
    creation: int
    max_message_size: int
    carrier: str  # "tcp" or "stream" (/golem/ergo/1.0.0)
    links: int
    initiator: bool


_KINDS = (Atom, PID, ProcessID, Alias, Ref, Event, ErrorValue)

_BASIC = {int: "int", float: "float64", str: "string", bytes: "binary", bool: "bool",
          Atom: "atom", PID: "pid", ProcessID: "processid", Alias: "alias", Ref: "ref",
          Event: "event", datetime.datetime: "time", typing.Any: "any", object: "any",
          ErrorValue: "error", list: "[]any", dict: "map[string]any"}


def _spec_of(tp: Any) -> str:
    if isinstance(tp, str):
        return tp
    if tp in _BASIC:
        return _BASIC[tp]
    name = getattr(tp, "__ergo_name__", None)
    if name:
        return str(name)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        for a in args[1:]:
            if isinstance(a, str):
                return a
        return _spec_of(args[0])
    if origin in (list, Sequence, collections.abc.Sequence) and args:
        return "[]" + _spec_of(args[0])
    if origin in (dict, collections.abc.Mapping) and len(args) == 2:
        return f"map[{_spec_of(args[0])}]{_spec_of(args[1])}"
    if origin is Union and type(None) in args:
        return "any"
    raise TypeError(f"no EDF type for {tp!r}: name one in register_type(fields=...)")


def register_type(name: str, fields: Optional[Dict[str, str]] = None) -> Callable[[type], type]:
    """Class decorator: makes a dataclass an EDF registered struct named
    ``name`` ("#" + Go import path + "/" + type name, as Go's
    ``edf.RegisterTypeOf`` names it). Field names and order are the
    dataclass's (they must be the Go struct's exported fields, in order);
    field types come from ``fields`` (EDF type names: "int32", "uint16",
    "string", "atom", "[]string", "map[string]int", "any", or another
    registered type's name) or else from the annotations (int -> "int",
    float -> "float64", str, bytes, bool, Atom, PID, List[X], Dict[K, V],
    Annotated[int, "int32"], a registered dataclass). Pass the class to
    :class:`ErgoNode` (``types=``) before the node starts."""

    def deco(cls: type) -> type:
        if not dataclasses.is_dataclass(cls):
            raise TypeError("register_type: want a dataclass")
        hints = typing.get_type_hints(cls, include_extras=True)
        spec: List[Tuple[str, str]] = []
        for f in dataclasses.fields(cls):
            if fields and f.name in fields:
                spec.append((f.name, fields[f.name]))
            else:
                spec.append((f.name, _spec_of(hints.get(f.name, typing.Any))))
        unknown = set(fields or ()) - {f for f, _ in spec}
        if unknown:
            raise TypeError(f"register_type: no such fields {sorted(unknown)}")
        cls.__ergo_name__ = name  # type: ignore[attr-defined]
        cls.__ergo_fields__ = spec  # type: ignore[attr-defined]
        return cls

    return deco


def options(name: str, cookie: Optional[str] = None, *, port: Optional[int] = None,
            host: Optional[str] = None, acceptor: Optional[bool] = None,
            registrar: Optional[str] = None, registrar_port: Optional[int] = None,
            routes: Sequence[str] = (), max_message_size: Optional[int] = None,
            extra: Sequence[str] = ()) -> List[str]:
    """The ergo component's options (docs/ergo.md "Options") as
    ``golemnet.Node(options=...)`` strings: node name ``name@host``, the
    cluster ``cookie`` (enables the TCP acceptor), acceptor ``port`` (0 =
    any), ``registrar`` ("embedded", "etcd", "off"), ``registrar_port``,
    static ``routes`` ("<pattern> <host>:<port> ..."), ``extra`` "key=value"
    strings."""
    out = [f"ergo.node={name}"]
    if cookie is not None:
        out.append(f"ergo.cookie={cookie}")
    if acceptor is not None:
        out.append(f"ergo.acceptor={'on' if acceptor else 'off'}")
    if host is not None:
        out.append(f"ergo.host={host}")
    if port is not None:
        out.append(f"ergo.port={port}")
    if registrar is not None:
        out.append(f"ergo.registrar={registrar}")
    if registrar_port is not None:
        out.append(f"ergo.registrar_port={registrar_port}")
    if max_message_size is not None:
        out.append(f"ergo.max_message_size={max_message_size}")
    out += [f"ergo.route={r}" for r in routes]
    out += [e if e.startswith("ergo.") else "ergo." + e for e in extra]
    return out


Target = Union[PID, ProcessID, Alias]


def _target(to: Target) -> Tuple[str, Any]:
    if isinstance(to, PID):
        return ("pid", (to.node, to.id, to.creation))
    if isinstance(to, ProcessID):
        return ("name", (to.node, to.name))
    if isinstance(to, Alias):
        return ("alias", (to.node, to.creation, tuple(to.ids)))
    raise TypeError(f"a target is a PID, ProcessID or Alias, not {type(to).__name__}")


_COMPRESSION_TYPES = ("gzip", "zlib", "lzw")         # gn_ergo_compression_type order
_COMPRESSION_LEVELS = ("default", "speed", "size")   # gn_ergo_compression_level order


@dataclasses.dataclass(frozen=True)
class Compression:
    """A process's compression settings (Ergo's ``gen.Compression``;
    ``gn_ergo_compression``): with ``enable``, every send, call, answer and
    event publication of the process whose frame is longer than
    ``threshold`` bytes goes to remote nodes compressed. ``type``: "gzip"
    (Ergo's default), "zlib" or "lzw"; ``level`` (gzip only): "default",
    "speed" or "size"; ``threshold``: frame bytes, 1024 (the default) or
    more (1..1023 are refused with :class:`~golemnet.InvalidArgumentError`, as by
    Ergo; 0 means 1024)."""
    type: str = "gzip"
    level: str = "default"
    threshold: int = 1024
    enable: bool = True

    def _c(self) -> Tuple[bool, int, int, int]:
        if self.type not in _COMPRESSION_TYPES:
            raise error_from_code(_code("GN_EINVAL"), f"compression type {self.type!r}: "
                                  f"want one of {', '.join(_COMPRESSION_TYPES)}")
        if self.level not in _COMPRESSION_LEVELS:
            raise error_from_code(_code("GN_EINVAL"), f"compression level {self.level!r}: "
                                  f"want one of {', '.join(_COMPRESSION_LEVELS)}")
        if not isinstance(self.threshold, int) or not 0 <= self.threshold <= 0xFFFFFFFF:
            raise error_from_code(_code("GN_EINVAL"), f"compression threshold {self.threshold!r}")
        return (bool(self.enable), _COMPRESSION_TYPES.index(self.type),
                _COMPRESSION_LEVELS.index(self.level), self.threshold)


def _compression_arg(c: Optional[Compression]) -> Optional[Tuple[bool, int, int, int]]:
    if c is None:
        return None
    if not isinstance(c, Compression):
        raise TypeError(f"compression: want ergo.Compression or None, not {type(c).__name__}")
    return c._c()


def _fail(status: int, what: str, text: Optional[str] = None) -> Error:
    if status == _code("GN_ECALLBACK") and text is not None:
        return CallError(text)
    reason = {"GN_ENOTFOUND": "no such process (or node)", "GN_EAGAIN": "mailbox full",
              "GN_ECLOSED": "process terminated", "GN_ETIMEDOUT": "no answer in time",
              "GN_ECONNRESET": "the connection went down"}.get(_c.err_name(status),
                                                              _c.strerror(status))
    return error_from_code(status, f"{what}: {reason}" + (f" ({text})" if text else ""))


@dataclasses.dataclass
class Message:
    """One message a process received."""
    value: Any
    sender: PID
    call: bool
    important: bool
    priority: Priority
    ref: Optional[Ref]  # the call's reference (call only)
    process: "Process" = dataclasses.field(repr=False)
    #: an event message (a publish on an event this process links or monitors): the Event;
    #: ``value`` is then the published value and ``event_time`` Unix ns; else None
    to: Optional[Event] = None
    event_time: Optional[int] = None

    async def reply(self, value: Any) -> None:
        """Answers this call with ``value``."""
        await self.process.reply(self, value)

    async def reply_error(self, text: str) -> None:
        """Answers this call with an error (the caller gets :class:`CallError`)."""
        await self.process.reply(self, text, error=True)


# ---- links, monitors, exit signals, events (issue 15) ----

__all__ += ["Signal", "LinkTarget"]

_ERGO_SIGNAL = getattr(_c, "ERGO_SIGNAL", 20)
#: seconds the C node waits for a remote link or monitor confirmation (GN_ERGO_TIMEOUT_DEFAULT)
_LINK_DEADLINE = 5.0

#: what :meth:`Process.link` and :meth:`Process.monitor` take: a process or an event
LinkTarget = Union[PID, ProcessID, Alias, Event]


@dataclasses.dataclass
class Signal:
    """An exit or down signal a process received (Ergo's ``gen.MessageExit*``
    / ``gen.MessageDown*``). It arrives in the process's stream, as a
    message does (:meth:`Process.receive`, ``async for``, or ``on_signal``),
    and counts against the same ``queue`` bound. A golemnet process always
    traps exits: a signal never ends it."""
    #: "exit" (a linked target ended, or an exit signal: :attr:`direct`) or "down" (monitor)
    kind: str
    #: what ended, as the link or monitor named it (PID, ProcessID, Alias or Event); for an
    #: exit signal sent with :meth:`Process.send_exit`, the sender's PID
    target: Any
    #: Ergo's reason: "normal", "shutdown", "kill", "no connection", "unregistered", or
    #: the text given to :meth:`Process.exit` / :meth:`Process.send_exit`
    reason: str
    #: True for an exit signal sent with send_exit (Ergo's MessageExitPID from a process)
    direct: bool
    process: "Process" = dataclasses.field(repr=False)

    EXIT = "exit"
    DOWN = "down"


def _link_target(t: LinkTarget) -> Tuple[str, Any]:
    if isinstance(t, Event):
        return ("event", (t.node, t.name))
    if isinstance(t, (PID, ProcessID, Alias)):
        return _target(t)
    raise TypeError(f"a link target is a PID, ProcessID, Alias or Event, not {type(t).__name__}")


def _event_unwrap(to_kind: int, m: Message) -> Message:
    """A gen.MessageEvent (to_kind 4, GN_ERGO_TO_EVENT) becomes its published value, with
    the event as ``to``."""
    v = m.value
    if to_kind == 4 and isinstance(v, dict) and isinstance(v.get("Event"), Event):
        m.value, m.to, m.event_time = v.get("Message"), v["Event"], v.get("Timestamp")
    return m


class Process:
    """A process: PID, bounded mailbox, optional registered name. Receive
    with ``async for msg in process`` or :meth:`receive`, or give
    ``on_message`` to :meth:`ErgoNode.spawn`."""

    def __init__(self, en: "ErgoNode", handle: int, token: int, queue: int,
                 on_message: Optional[Callable[[Message], Any]]) -> None:
        self._en = en
        self._h = handle
        self._token = token
        self._queue: Deque[Message] = collections.deque()
        self._qlimit = queue
        self._wake = asyncio.Event()
        self._on_message = on_message
        self._on_signal: Optional[Callable[["Signal"], Any]] = None  # set by spawn()
        self._closed = False
        #: the process's PID
        self.pid: PID = PID("", 0)
        #: its registered name, or None
        self.name: Optional[str] = None

    def _check(self) -> None:
        if self._closed or self._en._closed:
            raise ClosedError(_code("GN_ECLOSED"), "process closed")

    def _deliver(self, m: Message) -> None:
        if self._on_message is None:
            self._queue.append(m)
            self._wake.set()
            return
        try:
            r = self._on_message(m)
        except Exception:
            import logging
            logging.getLogger("golemnet").exception("ergo on_message failed")
            r = None
        if not asyncio.iscoroutine(r):
            self._en._c.resume(self._h, 1)
            return
        task = asyncio.ensure_future(r)
        self._en._tasks.add(task)

        def done(t: "asyncio.Task[Any]") -> None:
            self._en._tasks.discard(t)
            if not self._closed:
                self._en._c.resume(self._h, 1)
            if not t.cancelled() and t.exception() is not None:
                import logging
                logging.getLogger("golemnet").error("ergo on_message failed",
                                                    exc_info=t.exception())
        task.add_done_callback(done)

    async def receive(self, timeout: Optional[float] = None) -> Union[Message, "Signal"]:
        """The next message, or :class:`Signal` (exits and downs arrive in the
        same stream, before the messages queued after them), waits;
        :class:`~golemnet.TimeoutError` after ``timeout`` seconds;
        :class:`~golemnet.ClosedError` once closed."""
        while not self._queue:
            self._check()
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except asyncio.TimeoutError:
                raise _GnTimeout(_code("GN_ETIMEDOUT"), "no message in time") from None
        m = self._queue.popleft()
        if not self._closed:
            self._en._c.resume(self._h, 1)
        return m

    def __aiter__(self) -> "Process":
        return self

    async def __anext__(self) -> Union[Message, "Signal"]:
        try:
            return await self.receive()
        except ClosedError:
            raise StopAsyncIteration from None

    async def send(self, to: Target, value: Any, *, important: bool = False,
                   priority: Priority = Priority.NORMAL,
                   timeout: Optional[float] = None) -> None:
        """Sends ``value`` to ``to``. With ``important`` the remote node
        confirms delivery: this returns once the message is in the target's
        mailbox, or raises (:class:`~golemnet.NotFoundError`: no such
        process; :class:`~golemnet.AgainError`: mailbox full;
        :class:`~golemnet.TimeoutError`; :class:`~golemnet.ResetError`).
        Without it, this returns once the message is queued."""
        self._check()
        tout = timeout if timeout is not None else 5.0
        tok, fut = self._en._request()
        self._en._submit(tok, self._en._c.send, False, self._h, _target(to), value,
                         int(priority), important, int(tout * 1000))
        status, _, text = await self._en._await(tok, fut, tout + 5.0)
        if status < 0:
            raise _fail(status, f"send to {to}", text)

    async def call(self, to: Target, value: Any, *, timeout: float = 5.0,
                   important: bool = False, priority: Priority = Priority.NORMAL) -> Any:
        """Calls ``to`` with request ``value``; returns its answer. Raises
        :class:`~golemnet.TimeoutError` (no answer in ``timeout`` s),
        :class:`CallError` (answered with an error), with ``important``
        :class:`~golemnet.NotFoundError` for a missing process, and the
        connection errors."""
        self._check()
        tok, fut = self._en._request()
        self._en._submit(tok, self._en._c.send, True, self._h, _target(to), value,
                         int(priority), important, int(timeout * 1000))
        status, val, text = await self._en._await(tok, fut, timeout + 5.0)
        if status < 0:
            raise _fail(status, f"call to {to}", text)
        return val

    async def reply(self, msg: Message, value: Any, *, error: bool = False) -> None:
        """Answers call ``msg`` with ``value`` (or, with ``error``, the error text ``value``)."""
        self._check()
        if not msg.call or msg.ref is None:
            raise error_from_code(_code("GN_EINVAL"), "reply: the message is not a call")
        r = msg.ref
        s = msg.sender
        await self._en._simple(self._en._c.reply, self._h, (s.node, s.id, s.creation),
                               (r.node, r.creation, tuple(r.ids)), value, error,
                               what=f"reply to {s}")

    async def register(self, name: str) -> None:
        """Registers ``name``: ``ProcessID(name, node)`` reaches this process."""
        self._check()
        await self._en._simple(self._en._c.register, self._h, name, what=f"register {name!r}")
        self.name = name

    async def unregister(self) -> None:
        """Drops the registered name."""
        self._check()
        await self._en._simple(self._en._c.unregister, self._h, what="unregister")
        self.name = None

    async def alias(self) -> Alias:
        """A new alias of this process."""
        self._check()
        tok, fut = self._en._request()
        self._en._submit(tok, self._en._c.alias_new, self._h)
        status, ref, _ = await self._en._await(tok, fut, 10.0)
        if status < 0:
            raise _fail(status, "alias")
        return Alias(ref[0], ref[1], tuple(ref[2]))

    async def delete_alias(self, a: Alias) -> None:
        """Deletes alias ``a``."""
        self._check()
        await self._en._simple(self._en._c.alias_delete, self._h,
                               (a.node, a.creation, tuple(a.ids)), what="delete alias")

    # ---- links, monitors, exit signals, events (issue 15) ----

    def _deliver_signal(self, s: Signal) -> None:
        if self._on_message is None and self._on_signal is None:
            self._queue.append(s)
            self._wake.set()
            return
        cb = self._on_signal
        r = None
        if cb is not None:
            try:
                r = cb(s)
            except Exception:
                import logging
                logging.getLogger("golemnet").exception("ergo on_signal failed")
        if not asyncio.iscoroutine(r):
            self._en._c.resume(self._h, 1)
            return
        task = asyncio.ensure_future(r)
        self._en._tasks.add(task)

        def done(t: "asyncio.Task[Any]") -> None:
            self._en._tasks.discard(t)
            if not self._closed:
                self._en._c.resume(self._h, 1)
            if not t.cancelled() and t.exception() is not None:
                import logging
                logging.getLogger("golemnet").error("ergo on_signal failed",
                                                    exc_info=t.exception())
        task.add_done_callback(done)

    async def _link_op(self, what: str, t: LinkTarget, timeout: float) -> None:
        self._check()
        tgt = _link_target(t)
        undo = {"link": "unlink", "monitor": "demonitor"}.get(what)
        if undo is not None and timeout >= _LINK_DEADLINE:
            # the node answers by its own deadline (GN_ETIMEDOUT): wait a little longer
            timeout = _LINK_DEADLINE + 1.0
        try:
            await self._en._simple(self._en._c.link_op, what, self._h, tgt,
                                   what=f"{what} {t}", timeout=timeout)
        except CallError as e:
            if e.text != "unknown event":
                raise
            raise error_from_code(_code("GN_ENOTFOUND"), f"{what} {t}: unknown event") from None
        except (_GnTimeout, asyncio.CancelledError):
            # the caller gives up: drop the request, or the node would keep it and a late
            # confirmation would bring signals for a link the caller thinks failed
            if undo is not None and not self._closed and not self._en._closed:
                try:
                    self._en._c.link_op(undo, self._h, tgt, next(self._en._tokens))
                except Exception:  # its outcome is not waited for (no such link: fine)
                    pass
            raise

    async def link(self, target: LinkTarget, *, timeout: float = 5.0) -> None:
        """Links this process to ``target`` (a PID, ProcessID, Alias or
        Event, local or remote): when it ends, or the connection to its node
        is lost, this process gets a :class:`Signal` of kind "exit" with the
        reason. Returns once the target's node confirmed. ``timeout``
        (seconds): at most 5, the node's own deadline for the confirmation
        (``GN_ERGO_TIMEOUT_DEFAULT``); a larger value waits no longer. When
        it passes, or the awaiting task is cancelled, the request is
        withdrawn (an unlink is sent): no signal comes for it. Raises
        :class:`~golemnet.NotFoundError` (no such process or event),
        :class:`CallError` (another refusal: "target is already exist", "too
        large"), :class:`~golemnet.ExistsError` (already linked, local),
        :class:`~golemnet.LimitError` (256 links and monitors held),
        :class:`~golemnet.TimeoutError`, :class:`~golemnet.ResetError`,
        :class:`~golemnet.ClosedError` (:meth:`unlink` withdrew it before the
        confirmation, or the process closed)."""
        await self._link_op("link", target, timeout)

    async def unlink(self, target: LinkTarget) -> None:
        """Removes the link to ``target``; no signal follows
        (:class:`~golemnet.NotFoundError`: no such link)."""
        await self._link_op("unlink", target, 10.0)

    async def monitor(self, target: LinkTarget, *, timeout: float = 5.0) -> None:
        """Monitors ``target`` as :meth:`link` links it: the signal's kind is
        "down"; ``timeout`` as for :meth:`link` (a demonitor withdraws it)."""
        await self._link_op("monitor", target, timeout)

    async def demonitor(self, target: LinkTarget) -> None:
        """Removes the monitor of ``target``; no signal follows."""
        await self._link_op("demonitor", target, 10.0)

    async def send_exit(self, pid: PID, reason: str) -> None:
        """Sends an exit signal with ``reason`` (1..255 bytes) to process
        ``pid``: it gets an "exit" :class:`Signal` with ``direct`` True (a Go
        process that does not trap exits terminates). Raises
        :class:`~golemnet.NotFoundError` (local: no such process),
        :class:`~golemnet.AgainError` (local: its signal queue is full)."""
        self._check()
        await self._en._simple(self._en._c.send_exit, self._h, (pid.node, pid.id, pid.creation),
                               reason, what=f"exit signal to {pid}")

    async def exit(self, reason: str = "normal") -> None:
        """Ends the process with ``reason`` (1..255 bytes): everything
        linked to or monitoring it (its PID, name or aliases) gets its signal
        with this reason, events it owns end with "unregistered". The
        process is closed after, as by :meth:`Process.close` (whose reason
        is "normal")."""
        if self._closed:
            return
        if not isinstance(reason, str) or not 1 <= len(reason.encode()) <= 255:
            raise ValueError("reason: want 1..255 bytes")
        if "\0" in reason:
            raise ValueError("reason: no NUL character")
        self._check()
        self._closed = True
        self._wake.set()
        self._en._procs.pop(self._token, None)
        try:
            await self._en._simple(self._en._c.proc_exit, self._h, reason, what="exit")
        except ClosedError:
            pass
        except (_GnTimeout, asyncio.CancelledError):
            raise  # the outcome is unknown: the C process may be gone with its handle
        except Exception:
            # refused (never submitted, or the C exit failed): the C process must not
            # outlive this object, so end it as close() does
            if not self._en._closed:
                try:
                    await self._en._simple(self._en._c.free_proc, self._h, what="close")
                except Error:
                    pass
            raise

    async def register_event(self, name: str) -> Event:
        """Registers event ``name`` on this node, owned by this process:
        processes here and on remote nodes link or monitor it (Go:
        ``LinkEvent``/``MonitorEvent``) and receive what :meth:`publish`
        publishes. Returns the :class:`Event`. Raises
        :class:`~golemnet.ExistsError` (taken), :class:`~golemnet.LimitError`
        (64 events per process)."""
        self._check()
        await self._en._simple(self._en._c.event_op, "register", self._h, name, None,
                               what=f"register event {name!r}")
        return Event(name, self._en.name)

    async def unregister_event(self, name: str) -> None:
        """Unregisters event ``name``: its subscribers get "unregistered"
        (:class:`~golemnet.NotFoundError`: this process owns no such event)."""
        self._check()
        await self._en._simple(self._en._c.event_op, "unregister", self._h, name, None,
                               what=f"unregister event {name!r}")

    async def publish(self, name: str, value: Any) -> int:
        """Publishes ``value`` on event ``name``: each subscriber (link or
        monitor, here or remote) gets a :class:`Message` with ``to`` the
        event and ``value`` this value (Go: a ``gen.MessageEvent``). Returns
        the local subscribers reached plus the remote nodes sent to; a
        subscriber whose mailbox is full misses it.
        :class:`~golemnet.NotFoundError`: no such event of this process."""
        self._check()
        tok, fut = self._en._request()
        self._en._submit(tok, self._en._c.event_op, "publish", self._h, name, value)
        status, _, text = await self._en._await(tok, fut, 10.0)
        if status < 0:
            raise _fail(status, f"publish {name!r}", text)
        return int(status)

    async def set_compression(self, compression: Optional[Compression]) -> None:
        """Sets how this process compresses what it sends to remote nodes
        from now on (Ergo's ``SetCompression*``; None: not at all).
        :class:`~golemnet.InvalidArgumentError` for a threshold of 1..1023 or an
        unknown type or level."""
        self._check()
        arg = _compression_arg(compression)
        await self._en._simple(self._en._c.set_compression, self._h, arg,
                               what="set compression")

    async def compression(self) -> Compression:
        """This process's compression settings (``enable`` False when off;
        a threshold of 0 reads as 1024)."""
        self._check()
        enable, tp, level, threshold = await self._en._simple(
            self._en._c.get_compression, self._h, what="compression")
        return Compression(type=_COMPRESSION_TYPES[tp], level=_COMPRESSION_LEVELS[level],
                           threshold=threshold, enable=enable)

    @property
    def queued(self) -> int:
        """Messages waiting in Python (not counting the C mailbox)."""
        return len(self._queue)

    async def close(self) -> None:
        """Ends the process: its name and aliases go, later messages to it
        are "unknown process". Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self._en._procs.pop(self._token, None)
        if not self._en._closed:
            try:
                await self._en._simple(self._en._c.free_proc, self._h, what="close")
            except ClosedError:
                pass

    def __repr__(self) -> str:
        return f"<ergo.Process {self.pid}{' ' + self.name if self.name else ''}>"

    # -- remote spawn and application start (golemnet/ergo.h; docs/ergo-node.md)
    async def remote_spawn(self, node: str, factory: str, register: Optional[str] = None,
                           args: Sequence[Any] = (), *, timeout: float = 5.0) -> PID:
        """Asks remote ``node`` to spawn a process from its factory
        ``factory`` (enabled there for remote spawn), this process being
        the parent; ``register``: the name the new process registers;
        ``args``: values for the factory. Returns the new PID. Raises
        :class:`CallError` with Ergo's text ("unknown name": not enabled,
        "not allowed": not for us, "resource is taken", the factory's
        error), :class:`~golemnet.TimeoutError`,
        :class:`~golemnet.ResetError` (connection lost)."""
        self._check()
        tok, fut = self._en._request()
        self._en._submit(tok, self._en._c.remote_spawn, self._h, node, factory, register,
                         list(args), int(timeout * 1000))
        status, val, text = await self._en._await(tok, fut, timeout + 5.0)
        if status < 0:
            raise _fail(status, f"spawn {factory} on {node}", text)
        return val

    async def remote_app_start(self, node: str, name: str, mode: int = 0, *,
                               timeout: float = 5.0) -> None:
        """Asks remote ``node`` to start application ``name`` (``mode``:
        0 as its spec says, 1 temporary, 2 transient, 3 permanent); raises
        as :meth:`remote_spawn`."""
        self._check()
        if mode not in (0, 1, 2, 3):
            raise error_from_code(_code("GN_EINVAL"), f"application mode {mode}")
        await self._en._simple(self._en._c.remote_app_start, self._h, node, name, mode,
                               int(timeout * 1000), what=f"start {name} on {node}",
                               timeout=timeout + 5.0)



class ErgoNode:
    """The Ergo node of a :class:`golemnet.Node` (one per node).

    Create it after ``golemnet.Node(protocol_components="ergo", ...)`` and
    before ``await node.start()``: ``types`` (dataclasses decorated with
    :func:`register_type`, dependencies first) are registered before the
    component announces its dictionaries, as Ergo requires. Closing the
    node closes it; :meth:`close` detaches it earlier."""

    def __init__(self, node: Any, types: Iterable[type] = (), max_value_bytes: int = 0) -> None:
        if getattr(node, "started", False):
            raise error_from_code(_code("GN_ESTATE"),
                                  "ErgoNode: create it before the node starts")
        classes: Dict[str, type] = {}
        specs = []
        for cls in types:
            name = getattr(cls, "__ergo_name__", None)
            if not name:
                raise TypeError(f"{cls.__name__}: decorate it with ergo.register_type")
            classes[name] = cls
            specs.append((name, list(cls.__ergo_fields__)))
        self._node = node
        self._c = _c.ErgoNode(node._c._ptr, specs, classes, _KINDS, max_value_bytes)
        self._tokens = itertools.count(1)
        self._pending: Dict[int, "asyncio.Future[Any]"] = {}
        self._procs: Dict[int, Process] = {}
        self._tasks: set = set()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._closed = False
        #: our Ergo node name (known after the first spawn)
        self.name: str = ""
        #: our creation (known after the first spawn)
        self.creation: int = 0
        node._before_close.append(self.close)

    # -- internals
    def _bind(self) -> None:
        if self._closed:
            raise ClosedError(_code("GN_ECLOSED"), "ErgoNode closed")
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._loop.add_reader(self._c.fd, self._on_notes)

    def _request(self) -> Tuple[int, "asyncio.Future[Any]"]:
        self._bind()
        assert self._loop is not None
        tok = next(self._tokens)
        fut = self._loop.create_future()
        self._pending[tok] = fut
        return tok, fut

    def _submit(self, tok: int, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args, tok)
        except BaseException:
            self._pending.pop(tok, None)
            raise

    async def _await(self, tok: int, fut: "asyncio.Future[Any]", timeout: float) -> Any:
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except asyncio.TimeoutError:
            raise _GnTimeout(_code("GN_ETIMEDOUT"), "no outcome from the node in time") from None
        finally:
            self._pending.pop(tok, None)

    async def _simple(self, fn: Callable[..., Any], *args: Any, what: str,
                      timeout: float = 10.0) -> Any:
        tok, fut = self._request()
        self._submit(tok, fn, *args)
        status, val, text = await self._await(tok, fut, timeout)
        if status < 0:
            raise _fail(status, what, text)
        return val

    def _on_notes(self) -> None:
        while True:
            notes = self._c.poll(256)
            if not notes:
                return
            for kind, tok, status, a, b, c in notes:
                if kind == _c.ERGO_STREAM:
                    self._on_stream(tok, status, a)
                    continue
                if kind == _c.ERGO_MSG:
                    p = self._procs.get(tok)
                    if p is None:
                        continue
                    pid, ref, call, important, prio, _to_kind = a
                    p._deliver(_event_unwrap(_to_kind, Message(
                        value=b, sender=PID(*pid), call=call, important=important,
                        priority=Priority(prio),
                        ref=Ref(ref[0], ref[1], tuple(ref[2])) if call else None, process=p)))
                    continue
                if kind == _ERGO_SIGNAL:
                    p = self._procs.get(tok)
                    if p is not None:
                        p._deliver_signal(Signal(kind="exit" if a[0] == 1 else "down",
                                                 target=b, reason=c, direct=a[1], process=p))
                    continue
                fut = self._pending.get(tok)
                if fut is None or fut.done():
                    continue
                fut.set_result((status, a, b))

    def _on_stream(self, tok: int, status: int, val: Any) -> None:
        # a served spawn / application start for an enabled factory or application
        st = self._pending.get(tok)
        if isinstance(st, _Stream):
            st._note(status, val)
            return
        if status == 0 and isinstance(val, list) and len(val) == 8:
            # its stream is gone (a cancelled enable): nobody owns the new process
            try:
                self._c.free_proc(int(val[0]), 0)
            except Error:
                pass

    # -- API
    async def spawn(self, name: Optional[str] = None, *, mailbox: int = 1024, queue: int = 1024,
                    max_pending: int = 0,
                    on_message: Optional[Callable[[Message], Any]] = None,
                    timeout: float = 10.0,
                    on_signal: Optional[Callable[["Signal"], Any]] = None,
                    compression: Optional[Compression] = None) -> Process:
        """A new process. ``mailbox``: the C mailbox bound (messages; when
        full, local sends get :class:`~golemnet.AgainError` and remote
        important senders "mailbox full"); ``queue``: messages held for
        Python before the process stops taking from its mailbox;
        ``on_message``: called (on this loop) with each :class:`Message`
        (a coroutine function runs as a task; the message counts against
        ``queue`` until it ends) instead of queuing for :meth:`Process.receive`.
        ``name``: register it at once. ``on_signal``: called with each
        :class:`Signal` (same rules), with or without ``on_message``.
        Without ``on_signal``, a process with ``on_message`` drops its
        signals, and one without queues them for :meth:`Process.receive`
        with the messages. ``compression``: a :class:`Compression` for what
        the process sends (None: uncompressed; bad settings raise
        :class:`~golemnet.InvalidArgumentError`)."""
        comp = _compression_arg(compression)
        self._bind()
        assert self._loop is not None
        deadline = self._loop.time() + timeout
        while True:
            tok, fut = self._request()
            h = self._c.spawn(mailbox, max(1, queue), max_pending, tok, comp)
            p = Process(self, h, tok, queue, on_message)
            p._on_signal = on_signal
            self._procs[tok] = p
            status, pid, _ = await self._await(tok, fut, timeout)
            if status == 0:
                break
            self._procs.pop(tok, None)
            t2, f2 = self._request()
            self._submit(t2, self._c.free_proc, h)
            await self._await(t2, f2, timeout)
            # the component starts on the node's loop just after the node: wait for it
            if status != _code("GN_ESTATE") or self._loop.time() > deadline:
                raise _fail(status, "spawn")
            await asyncio.sleep(0.01)
        p.pid = PID(pid[0], pid[1], pid[2])
        self.name, self.creation = pid[0], pid[2]
        if name is not None:
            try:
                await p.register(name)
            except BaseException:
                await p.close()
                raise
        return p

    async def info(self, node: str, timeout: float = 10.0) -> RemoteInfo:
        """What is known of connected remote node ``node``
        (:class:`~golemnet.NotFoundError` when not connected)."""
        tok, fut = self._request()
        self._submit(tok, self._c.node_op, "info", node, None)
        status, i, _ = await self._await(tok, fut, timeout)
        if status < 0:
            raise _fail(status, f"info {node}")
        return RemoteInfo(i[0], i[1], i[2], i[3], {1: "tcp", 2: "stream"}.get(i[4], "?"),
                          i[5], i[6])

    async def connect(self, node: str, timeout: float = 10.0) -> None:
        """Starts connecting to ``node`` over Ergo TCP (a send does it by itself)."""
        await self._simple(self._c.node_op, "connect", node, None, what=f"connect {node}",
                           timeout=timeout)

    async def connect_peer(self, peer_id: str, node: Optional[str] = None,
                           timeout: float = 10.0) -> None:
        """Starts a /golem/ergo/1.0.0 stream to libp2p peer ``peer_id``
        (dial it first); ``node``: the Ergo name expected (None: any)."""
        await self._simple(self._c.node_op, "connect_peer", node, peer_id,
                           what=f"connect {peer_id}", timeout=timeout)

    async def wait_connected(self, node: str, timeout: float = 10.0) -> RemoteInfo:
        """Waits until remote ``node`` is connected; returns its info."""
        self._bind()
        assert self._loop is not None
        deadline = self._loop.time() + timeout
        while True:
            try:
                return await self.info(node)
            except Error as e:
                if e.code != _code("GN_ENOTFOUND") or self._loop.time() > deadline:
                    raise
            await asyncio.sleep(0.02)

    async def disconnect(self, node: str) -> None:
        """Closes the connection to ``node``."""
        await self._simple(self._c.node_op, "disconnect", node, None, what=f"disconnect {node}")

    def encode(self, value: Any) -> bytes:
        """``value`` as EDF bytes (names inline; after the first spawn)."""
        return bytes(self._c.encode(value))

    def decode(self, data: bytes) -> Any:
        """EDF bytes (names inline) as a Python value."""
        return self._c.decode(data)

    async def close(self) -> None:
        """Detaches the Ergo node: every process ends. Idempotent."""
        if self._closed:
            return
        procs = list(self._procs.values())
        for p in procs:
            p._closed = True
            p._wake.set()
        self._procs.clear()
        if self._loop is not None:
            try:
                await self._simple(self._c.detach, what="detach")
            except Error:
                pass
            self._loop.remove_reader(self._c.fd)
        else:
            # never used on a loop: detach from whatever thread runs now, if the
            # node is still around (its loop has not started or is running)
            try:
                self._c.detach(0)
            except Error:
                pass
        self._closed = True
        for fut in self._pending.values():
            if not fut.done():
                fut.set_result((_code("GN_ECLOSED"), None, None))
        for t in list(self._tasks):
            t.cancel()
        try:
            self._node._before_close.remove(self.close)
        except ValueError:
            pass

    # -- remote spawn and application start (golemnet/ergo.h; docs/ergo-node.md)
    async def _spawner(self) -> Process:
        p = getattr(self, "_spawner_proc", None)
        if p is None or p._closed:
            p = self._spawner_proc = await self.spawn()
        return p

    async def remote_spawn(self, node: str, factory: str, register: Optional[str] = None,
                           args: Sequence[Any] = (), *, process: Optional[Process] = None,
                           timeout: float = 5.0) -> PID:
        """Asks remote ``node`` to spawn a process from its factory
        ``factory``; the parent is ``process`` (default: a process of this
        node kept for such requests). Returns the new PID; raises as
        :meth:`Process.remote_spawn`."""
        p = process if process is not None else await self._spawner()
        return await p.remote_spawn(node, factory, register, args, timeout=timeout)

    async def remote_app_start(self, node: str, name: str, mode: int = 0, *,
                               process: Optional[Process] = None, timeout: float = 5.0) -> None:
        """Asks remote ``node`` to start application ``name``; as
        :meth:`Process.remote_app_start`."""
        p = process if process is not None else await self._spawner()
        await p.remote_app_start(node, name, mode, timeout=timeout)

    async def _enable(self, app: bool, on: bool, name: str, nodes: Optional[Sequence[str]],
                      handler: Optional[Callable[..., Any]], queue: int,
                      max_procs: int = 0) -> None:
        self._bind()
        if max_procs < 0 or max_procs > 0xFFFFFFFF:
            raise error_from_code(_code("GN_EINVAL"), f"max {max_procs}")
        stream = 0
        if on:
            assert handler is not None
            stream = next(self._tokens)
            self._pending[stream] = _Stream(self, app, handler, queue)  # type: ignore
        what = f"{'enable' if on else 'disable'} {name}"
        nl = None if nodes is None else list(nodes)
        try:
            tok, fut = self._request()
            self._submit(tok, self._c.enable, app, on, name, nl, queue, max_procs, stream)
        except BaseException:
            self._pending.pop(stream, None)
            raise
        try:
            status, _, text = await self._await(tok, fut, 10.0)
        except BaseException:
            # submitted, no outcome (cancelled, timed out): the loop may still act on it;
            # a factory or application whose state is unknown ends disabled
            self._pending.pop(stream, None)
            self._enable_lost(app, name, None if on else nl)
            raise
        if status < 0:
            self._pending.pop(stream, None)
            raise _fail(status, what, text)
        streams = self._enabled = getattr(self, "_enabled", {})
        old = streams.pop((app, name), None)
        if old is not None and (on or not nodes):
            self._pending.pop(old, None)
        elif old is not None:
            streams[(app, name)] = old
        if on:
            streams[(app, name)] = stream

    def _enable_lost(self, app: bool, name: str, nodes: Optional[List[str]]) -> None:
        # the same disable again (None: the whole name), outcome not waited for (token 0)
        try:
            self._c.enable(app, False, name, nodes, 0, 0, 0, 0)
        except Error:
            pass
        streams = getattr(self, "_enabled", {})
        if nodes is None:
            old = streams.pop((app, name), None)
            if old is not None:
                self._pending.pop(old, None)

    async def enable_spawn(self, factory: str, handler: Callable[..., Any],
                           nodes: Optional[Sequence[str]] = None, *, queue: int = 1024,
                           max: int = 0) -> None:
        """Lets remote nodes spawn processes from ``factory`` (Ergo's
        ``EnableSpawn``); ``nodes``: only these node names may (None: any;
        again with more names adds them). Each request creates a process on
        the node's thread at once (answered with its PID; registered under
        the name asked for), then ``handler(process, request)`` runs on this
        loop with the :class:`Process` and a :class:`SpawnRequest` (a
        coroutine function runs as a task); it cannot refuse: disable the
        factory instead (an exception it raises goes to the loop's exception
        handler). Without enabling, requests get "unknown name"; from a node
        not listed, "not allowed". ``max``: processes of this factory alive
        at once (0: the C default, ``GN_ERGO_SPAWN_PROCS_DEFAULT`` 1024); a
        request beyond gets "limit exceeded"; a process counts until it is
        closed. When this call is cancelled or times out, the factory ends
        disabled (its previous handler too)."""
        await self._enable(False, True, factory, nodes, handler, queue if queue > 1 else 1, max)

    async def disable_spawn(self, factory: str, nodes: Optional[Sequence[str]] = None) -> None:
        """Refuses ``factory`` to ``nodes`` ("not allowed"), or with None
        removes it ("unknown name"). :class:`~golemnet.NotFoundError` when
        it is not enabled."""
        await self._enable(False, False, factory, nodes, None, 0)

    async def enable_app_start(self, name: str, handler: Callable[..., Any],
                               nodes: Optional[Sequence[str]] = None) -> None:
        """Lets remote nodes start application ``name`` (Ergo's
        ``EnableApplicationStart``): a request is answered "started" on the
        node's thread, then ``handler(request)`` runs here with an
        :class:`AppStartRequest`."""
        await self._enable(True, True, name, nodes, handler, 0)

    async def disable_app_start(self, name: str, nodes: Optional[Sequence[str]] = None) -> None:
        """As :meth:`disable_spawn` for application start."""
        await self._enable(True, False, name, nodes, None, 0)



class BlockingErgoNode:
    """:class:`ErgoNode` for a :class:`golemnet.blocking.Node`: the same
    methods, blocking (each with ``timeout``); processes are
    :class:`BlockingProcess`. Create it before ``node.start()``."""

    def __init__(self, node: Any, types: Iterable[type] = (), max_value_bytes: int = 0) -> None:
        self._lt = node._lt
        #: the underlying asyncio :class:`ErgoNode`
        self.aio = ErgoNode(node.aio, types, max_value_bytes)

    def _run(self, aw: Awaitable[Any], timeout: Optional[float] = 30.0) -> Any:
        return self._lt.run(aw, timeout)

    @property
    def name(self) -> str:
        return self.aio.name

    def spawn(self, name: Optional[str] = None, **kw: Any) -> "BlockingProcess":
        """As :meth:`ErgoNode.spawn` (``on_message`` is called on the node's event loop thread)."""
        return BlockingProcess(self, self._run(self.aio.spawn(name, **kw)))

    def info(self, node: str) -> RemoteInfo:
        return self._run(self.aio.info(node))

    def wait_connected(self, node: str, timeout: float = 10.0) -> RemoteInfo:
        return self._run(self.aio.wait_connected(node, timeout), timeout + 5)

    def connect(self, node: str) -> None:
        self._run(self.aio.connect(node))

    def connect_peer(self, peer_id: str, node: Optional[str] = None) -> None:
        self._run(self.aio.connect_peer(peer_id, node))

    def disconnect(self, node: str) -> None:
        self._run(self.aio.disconnect(node))

    def close(self) -> None:
        if not self._lt.loop.is_closed():
            self._run(self.aio.close())

    # -- remote spawn and application start
    def remote_spawn(self, node: str, factory: str, register: Optional[str] = None,
                     args: Sequence[Any] = (), *, timeout: float = 5.0) -> PID:
        """As :meth:`ErgoNode.remote_spawn`."""
        return self._run(self.aio.remote_spawn(node, factory, register, args, timeout=timeout),
                         timeout + 10)

    def remote_app_start(self, node: str, name: str, mode: int = 0, *,
                         timeout: float = 5.0) -> None:
        """As :meth:`ErgoNode.remote_app_start`."""
        self._run(self.aio.remote_app_start(node, name, mode, timeout=timeout), timeout + 10)

    def enable_spawn(self, factory: str, handler: Callable[..., Any],
                     nodes: Optional[Sequence[str]] = None, *, queue: int = 1024,
                     max: int = 0) -> None:
        """As :meth:`ErgoNode.enable_spawn`; ``handler(process, request)``
        gets a :class:`BlockingProcess` and runs on the node's event loop
        thread: hand the process to another thread there (its blocking
        methods cannot run on the loop's own thread)."""
        def wrap(p: Process, rq: "SpawnRequest") -> Any:
            return handler(BlockingProcess(self, p), rq)
        self._run(self.aio.enable_spawn(factory, wrap, nodes, queue=queue, max=max))

    def disable_spawn(self, factory: str, nodes: Optional[Sequence[str]] = None) -> None:
        self._run(self.aio.disable_spawn(factory, nodes))

    def enable_app_start(self, name: str, handler: Callable[..., Any],
                         nodes: Optional[Sequence[str]] = None) -> None:
        """As :meth:`ErgoNode.enable_app_start` (``handler`` runs on the loop thread)."""
        self._run(self.aio.enable_app_start(name, handler, nodes))

    def disable_app_start(self, name: str, nodes: Optional[Sequence[str]] = None) -> None:
        self._run(self.aio.disable_app_start(name, nodes))



class BlockingProcess:
    """Blocking view of a :class:`Process`."""

    def __init__(self, en: BlockingErgoNode, p: Process) -> None:
        self._en = en
        #: the underlying asyncio process
        self.aio = p
        self.pid = p.pid

    def receive(self, timeout: Optional[float] = 30.0) -> Union[Message, Signal]:
        """The next message or :class:`Signal` (:class:`~golemnet.TimeoutError` after
        ``timeout`` s)."""
        return self._en._run(self.aio.receive(timeout), None if timeout is None else timeout + 5)

    def send(self, to: Target, value: Any, **kw: Any) -> None:
        self._en._run(self.aio.send(to, value, **kw))

    def call(self, to: Target, value: Any, *, timeout: float = 5.0, **kw: Any) -> Any:
        return self._en._run(self.aio.call(to, value, timeout=timeout, **kw), timeout + 10)

    def reply(self, msg: Message, value: Any, *, error: bool = False) -> None:
        self._en._run(self.aio.reply(msg, value, error=error))

    def register(self, name: str) -> None:
        self._en._run(self.aio.register(name))

    def unregister(self) -> None:
        self._en._run(self.aio.unregister())

    def alias(self) -> Alias:
        return self._en._run(self.aio.alias())

    def delete_alias(self, a: Alias) -> None:
        self._en._run(self.aio.delete_alias(a))

    # links, monitors, exit signals, events (as the asyncio Process's)
    def link(self, target: LinkTarget, *, timeout: float = 5.0) -> None:
        self._en._run(self.aio.link(target, timeout=timeout), timeout + 10)

    def unlink(self, target: LinkTarget) -> None:
        self._en._run(self.aio.unlink(target))

    def monitor(self, target: LinkTarget, *, timeout: float = 5.0) -> None:
        self._en._run(self.aio.monitor(target, timeout=timeout), timeout + 10)

    def demonitor(self, target: LinkTarget) -> None:
        self._en._run(self.aio.demonitor(target))

    def send_exit(self, pid: PID, reason: str) -> None:
        self._en._run(self.aio.send_exit(pid, reason))

    def exit(self, reason: str = "normal") -> None:
        self._en._run(self.aio.exit(reason))

    def register_event(self, name: str) -> Event:
        return self._en._run(self.aio.register_event(name))

    def unregister_event(self, name: str) -> None:
        self._en._run(self.aio.unregister_event(name))

    def publish(self, name: str, value: Any) -> int:
        return self._en._run(self.aio.publish(name, value))

    def set_compression(self, compression: Optional[Compression]) -> None:
        """As :meth:`Process.set_compression`."""
        self._en._run(self.aio.set_compression(compression))

    def compression(self) -> Compression:
        """As :meth:`Process.compression`."""
        return self._en._run(self.aio.compression())

    def close(self) -> None:
        self._en._run(self.aio.close())

    # -- remote spawn and application start
    def remote_spawn(self, node: str, factory: str, register: Optional[str] = None,
                     args: Sequence[Any] = (), *, timeout: float = 5.0) -> PID:
        """As :meth:`Process.remote_spawn`."""
        return self._en._run(self.aio.remote_spawn(node, factory, register, args,
                                                   timeout=timeout), timeout + 10)

    def remote_app_start(self, node: str, name: str, mode: int = 0, *,
                         timeout: float = 5.0) -> None:
        """As :meth:`Process.remote_app_start`."""
        self._en._run(self.aio.remote_app_start(node, name, mode, timeout=timeout), timeout + 10)


# ---- remote spawn and application start (golemnet/ergo.h "remote spawn and application start")


@dataclasses.dataclass
class SpawnRequest:
    """A remote node's spawn request, as :meth:`ErgoNode.enable_spawn`'s handler gets it."""
    node: str                 # the requesting node
    factory: str
    parent: PID               # the requesting process
    register: Optional[str]   # the name the new process registered, or None
    args: List[Any]


@dataclasses.dataclass
class AppStartRequest:
    """A remote node's application start request (:meth:`ErgoNode.enable_app_start`)."""
    node: str
    name: str
    mode: int                 # 0 as the spec says, 1 temporary, 2 transient, 3 permanent
    core: PID                 # the requester's CorePID


class _Stream:
    """Stands in ErgoNode._pending for an enabled factory or application:
    never done, so each note on its token reaches the handler."""

    def __init__(self, en: "ErgoNode", app: bool, handler: Callable[..., Any], queue: int) -> None:
        self._en, self._app, self._handler, self._queue = en, app, handler, queue

    def done(self) -> bool:
        return False

    def set_result(self, res: Tuple[int, Any, Any]) -> None:
        pass  # the node closed (ErgoNode.close ends every pending entry)

    def _note(self, status: int, val: Any) -> None:
        if status < 0 or not isinstance(val, list):
            return
        en = self._en
        try:
            if self._app:
                node, name, mode, core = val
                hargs: Tuple[Any, ...] = (AppStartRequest(node, name, int(mode), core),)
            else:
                h, tok, pid, parent, reg, factory, node, args = val
                p = Process(en, int(h), int(tok), self._queue, None)
                p.pid = pid
                p.name = reg or None
                en._procs[int(tok)] = p
                hargs = (p, SpawnRequest(node, factory, parent, reg or None, list(args or [])))
            r = self._handler(*hargs)
        except Exception as e:
            # the rest of the batch of notes goes on; the error goes to the loop's handler
            loop = en._loop if en._loop is not None else asyncio.get_event_loop()
            loop.call_exception_handler({
                "message": "ergo: remote spawn / application start handler failed",
                "exception": e})
            return
        if asyncio.iscoroutine(r):
            task = asyncio.ensure_future(r)
            en._tasks.add(task)
            task.add_done_callback(en._tasks.discard)


__all__ += ["SpawnRequest", "AppStartRequest"]
