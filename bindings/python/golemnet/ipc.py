"""golemnet.ipc: an asyncio client of a running golemnet daemon.

A :class:`Client` is one connection to a daemon's control socket
(``golemnet daemon``; docs/daemon.md) speaking golemnet's control protocol
(docs/protocols/control.md). Its methods have the shape of the in-process
:class:`golemnet.Node` API: :meth:`Client.dial`, :meth:`Client.listen`,
:meth:`Client.unicast`, :meth:`Client.broadcast`, channels with
``send``/``close``/``state``/``metrics``, the peer store, ping, the DHT,
streams and protocol handlers, and ``async for ev in client.events()``.

How it works: the socket I/O and the framing (an unsigned-varint length
before each message) are asyncio (``open_unix_connection``); each message is
encoded and decoded by the extension module (``golemnet._golemnet.ipc_encode``
and ``ipc_decode``), which runs the protobuf-c code generated from
ipc/proto/control.proto, so no Python protobuf package is needed. One reader
task per client hands each response to the call waiting for it (requests
carry ids; calls may overlap) and each event to the open event streams.

Example::

    async with await golemnet.ipc.connect("/run/user/1000/golemnet/default.sock") as c:
        ch = await c.dial("/ip4/127.0.0.1/tcp/4001/p2p/12D3KooW...")
        await ch.send(b"hello")
        async for ev in c.events():
            print(ev.kind, ev.peer_id)
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from typing import (Any, Awaitable, Callable, Dict, Iterable, List, Optional, Set,
                    Tuple, Union)

from . import _golemnet as _c
from ._aio import ChannelMetrics, ChannelState, DhtPeer, PeerInfo, _EventQueue
from .errors import ClosedError, Error, error_from_code

__all__ = [
    "connect", "default_socket", "Client", "Channel", "ChannelInfo", "Stream", "Event",
    "EventStream", "EVENT_KINDS", "PROTOCOL_VERSION", "MESSAGE_MAX", "StreamHandler",
]

#: The control protocol version this client speaks.
PROTOCOL_VERSION = 1
#: Largest control message, bytes (either direction).
MESSAGE_MAX = 4 * 1024 * 1024
_DEFAULT_TIMEOUT = 30.0
_DHT_MIN_TIMEOUT = 60.0

_CODES: Dict[str, int] = {name: code for name, code, _, _ in _c.error_codes()}

#: Event kinds, by the daemon's event type numbers (control.proto EventType).
EVENT_KINDS: Dict[int, str] = {
    1: "listen", 2: "listen_failed", 3: "dial", 4: "connect", 5: "disconnect",
    6: "identify", 7: "message", 8: "send_failed", 9: "ping", 10: "closed",
    11: "start_failed", 12: "writable", 13: "reachability", 20: "peer_found",
    21: "listen_addrs", 22: "protocols", 30: "disconnecting", 31: "lost",
}
_KIND_BIT: Dict[str, int] = {k: 1 << t for t, k in EVENT_KINDS.items()}
_REACH = {0: "unknown", 1: "public", 2: "private"}


def default_socket() -> str:
    """The control socket ``golemnet daemon`` listens on by default:
    ``$XDG_RUNTIME_DIR/golemnet/default.sock``, else
    ``/tmp/golemnet-<uid>/default.sock``."""
    return str(_c.ipc_default_socket())


def _err(code: int, message: str = "", **ctx: Any) -> Error:
    return error_from_code(code, message or None, **ctx)


async def _read_frame(reader: asyncio.StreamReader, limit: int = MESSAGE_MAX) -> Optional[bytes]:
    """One framed message (without its length), or None at a clean EOF
    before its first byte. Raises ProtocolError-like golemnet errors on a
    broken frame."""
    n = 0
    shift = 0
    for i in range(10):
        b = await reader.read(1)
        if not b:
            if i == 0:
                return None
            raise _err(_CODES["GN_EPROTO"], "the daemon closed the connection inside a frame")
        n |= (b[0] & 0x7F) << shift
        shift += 7
        if not b[0] & 0x80:
            break
    else:
        raise _err(_CODES["GN_EPROTO"], "bad frame length (varint too long)")
    if n > limit:
        raise _err(_CODES["GN_EFRAMESIZE"], f"frame of {n} bytes: over the {limit}-byte bound")
    try:
        return await reader.readexactly(n)
    except asyncio.IncompleteReadError:
        raise _err(_CODES["GN_EPROTO"], "the daemon closed the connection inside a frame") from None


async def _open(address: str) -> Tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connects to a control address (a path, /unix/PATH or loopback TCP)."""
    try:
        parsed = _c.ipc_parse_addr(address)
    except ValueError as e:
        raise _err(_CODES["GN_EPARSE"], str(e), address=address) from None
    except PermissionError as e:  # not loopback, or not a control address at all
        raise _err(_CODES["GN_EACCES"], str(e), address=address) from None
    try:
        if parsed[0] == "tcp":
            return await asyncio.open_connection(parsed[1], parsed[2])
        return await asyncio.open_unix_connection(parsed[1])
    except FileNotFoundError:
        raise _err(_CODES["GN_ENOTFOUND"], f"no control socket at {address!r}: is 'golemnet "
                   "daemon' running?", address=address) from None
    except ConnectionRefusedError:
        raise _err(_CODES["GN_ECONNREFUSED"], f"nobody listens at {address!r}: the daemon is "
                   "not running (a stale socket file)", address=address) from None
    except PermissionError:
        raise _err(_CODES["GN_EACCES"], f"permission denied on {address!r}",
                   address=address) from None


@dataclasses.dataclass(frozen=True)
class ChannelInfo:
    """A snapshot of one of the daemon's channels (:meth:`Client.peers`,
    :meth:`Channel.info`)."""

    #: the channel id (the daemon node's)
    id: int
    #: the remote peer ID
    peer_id: str
    #: :class:`~golemnet.ChannelState`
    state: ChannelState
    #: "inbound" or "outbound"
    direction: str
    #: the remote multiaddr
    remote_addr: str
    #: the local multiaddr
    local_addr: str
    #: the negotiated security protocol ("/noise")
    security: str
    #: the negotiated muxer ("/yamux/1.0.0")
    muxer: str
    #: True over a limited (relayed) connection
    limited: bool

    @staticmethod
    def _of(d: Dict[str, Any]) -> "ChannelInfo":
        return ChannelInfo(int(d.get("channel_id", 0)), d.get("peer", ""),
                           ChannelState(int(d.get("state", 0))),
                           "inbound" if d.get("inbound") else "outbound",
                           d.get("remote_addr", ""), d.get("local_addr", ""),
                           d.get("security", ""), d.get("muxer", ""), bool(d.get("limited")))


@dataclasses.dataclass(frozen=True)
class Event:
    """One event of the daemon's node (what :meth:`Client.events` yields)."""

    #: "connect", "disconnect", "identify", "message", "listen", "dial",
    #: "ping", "send_failed", "writable", "reachability", "closed", ...
    #: (:data:`EVENT_KINDS`); "lost" when the client dropped events (type
    #: 0, see :meth:`Client.events`) or the daemon could not send one (type
    #: 31, EV_LOST: ``error`` says why); "disconnecting" when the daemon ends the
    #: connection (the last event)
    kind: str
    #: the daemon's event type number (control.proto EventType)
    type: int
    #: the channel id, 0 when none
    channel_id: int
    #: the remote peer ID, None when none
    peer_id: Optional[str]
    #: an address: the remote one (connect), the observed one (identify),
    #: the bound one (listen)
    address: str
    #: a protocol id: the muxer (connect), the agent version (identify)
    protocol: str
    #: the failure, None when the event reports none (a disconnect's
    #: reason is a :class:`~golemnet.ClosedError` after a normal close)
    error: Optional[Error]
    #: message: the payload; else b""
    data: bytes = b""
    #: ping: the round trip in seconds
    rtt: float = 0.0
    #: send_failed: the request id of :meth:`Client.unicast`; lost: how many
    #: events were dropped; send_failed: how many failures it stands for
    request_id: int = 0
    #: lost, send_failed: a count; else 0
    count: int = 0
    #: reachability: "public", "private" or "unknown"; disconnecting: the
    #: daemon's reason
    reason: str = ""


def _event(d: Dict[str, Any]) -> Event:
    t = int(d.get("type", 0))
    kind = EVENT_KINDS.get(t, f"type{t}")
    status = int(d.get("status", 0))
    reason = d.get("reason", "")
    if t == 13:
        reason = _REACH.get(status, "unknown")
        status = 0
    err = _err(status, reason if t in (30, 31) else "") if status < 0 else None
    return Event(kind, t, int(d.get("channel_id", 0)), d.get("peer") or None, d.get("addr", ""),
                 d.get("protocol", ""), err, bytes(d.get("data", b"")),
                 int(d.get("rtt_ns", 0)) / 1e9, int(d.get("request_id", 0)),
                 int(d.get("count", 0)), reason)


class EventStream(_EventQueue):
    """An async iterator over the daemon's :class:`Event` s, from
    :meth:`Client.events`. Events are queued from the subscription on; at
    most ``maxsize`` wait: further events are dropped, counted in
    :attr:`dropped`, and one ``lost`` event with their count (``count``)
    stands where they were lost (the reader never stops: responses share
    the connection). Iteration ends when the client closes (after the
    ``disconnecting`` event, if the daemon sent one) or after :meth:`close`."""

    def __init__(self, client: "Client", kinds: Optional[Set[str]], maxsize: int) -> None:
        super().__init__(maxsize)
        self._client = client
        self._kinds = kinds

    def _put(self, ev: Event) -> None:
        if self._closed or (self._kinds is not None and ev.kind not in self._kinds
                            and ev.kind != "disconnecting"):
            return
        if len(self._queue) >= self._maxsize and ev.kind != "disconnecting":
            # dropped; a "lost" event at the tail counts the drops at this point
            self.dropped += 1
            tail = self._queue[-1] if self._queue else None
            if tail is not None and tail.kind == "lost" and tail.type == 0:
                self._queue[-1] = dataclasses.replace(tail, count=tail.count + 1)
            else:
                self._queue.append(Event("lost", 0, 0, None, "", "", None, count=1))
            return self._wake()
        self._queue.append(ev)
        self._wake()

    def _gone(self) -> bool:
        return bool(self._client._dead)

    def _unregister(self) -> None:
        self._client._streams.discard(self)


class Stream:
    """A stream of the daemon's node carried over a dedicated connection to
    the daemon: raw bytes both ways (from :meth:`Client.open_stream` or
    handed to a handler of :meth:`Client.set_handler`)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 info: Dict[str, Any]) -> None:
        self._r = reader
        self._w = writer
        #: the channel id the stream runs on
        self.channel_id: int = int(info.get("channel_id", 0))
        #: the remote peer ID
        self.peer_id: str = info.get("peer", "")
        #: the negotiated protocol id
        self.protocol: str = info.get("protocol", "")
        #: the peer's address on that channel
        self.remote_addr: str = info.get("addr", "")

    async def read(self, n: int = 65536) -> bytes:
        """Up to ``n`` bytes; b"" at the end of the stream."""
        return await self._r.read(n)

    async def readexactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes; raises :class:`asyncio.IncompleteReadError` at an early end."""
        return await self._r.readexactly(n)

    async def read_all(self, limit: int = 1 << 30) -> bytes:
        """Everything up to the end of the stream (at most ``limit`` bytes)."""
        out = bytearray()
        while len(out) <= limit:
            b = await self._r.read(65536)
            if not b:
                return bytes(out)
            out += b
        raise _err(_CODES["GN_ETOOBIG"], f"stream longer than {limit} bytes")

    async def write(self, data: Union[bytes, bytearray, memoryview]) -> None:
        """Writes ``data`` and waits while the connection's buffer is full."""
        self._w.write(bytes(data))
        await self._w.drain()

    async def close_write(self) -> None:
        """Half-closes: the peer reads the end of the stream."""
        if self._w.can_write_eof():
            self._w.write_eof()
        await self._w.drain()

    async def close(self) -> None:
        """Closes the connection (the daemon closes the stream)."""
        self._w.close()
        try:
            await self._w.wait_closed()
        except (ConnectionError, OSError):
            pass

    async def __aenter__(self) -> "Stream":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<golemnet.ipc.Stream {self.protocol} on channel {self.channel_id}>"


#: A stream handler: ``async def handler(stream)``.
StreamHandler = Callable[[Stream], Awaitable[Any]]


class Channel:
    """One of the daemon's channels, by id (from :meth:`Client.dial` or
    :meth:`Client.channel`). Its state lives in the daemon: every property
    is asked for."""

    def __init__(self, client: "Client", info: ChannelInfo) -> None:
        self._client = client
        #: the channel id (the daemon node's)
        self.id: int = info.id
        #: the remote peer ID
        self.peer_id: str = info.peer_id
        #: the remote multiaddr when the channel was learnt
        self.remote_addr: str = info.remote_addr

    async def info(self) -> ChannelInfo:
        """A fresh :class:`ChannelInfo`. Raises :class:`~golemnet.NotFoundError`
        once the daemon forgot the channel."""
        r = await self._client._call({"channel_state": {"channel_id": self.id}})
        return ChannelInfo._of(r.get("channel", {}))

    async def state(self) -> ChannelState:
        """The channel's :class:`~golemnet.ChannelState`."""
        return (await self.info()).state

    async def metrics(self) -> ChannelMetrics:
        """The channel's counters (:class:`~golemnet.ChannelMetrics`)."""
        r = await self._client._call({"channel_metrics": {"channel_id": self.id}})
        m = r.get("metrics", {})
        return ChannelMetrics(int(m.get("bytes_in", 0)), int(m.get("bytes_out", 0)),
                              int(m.get("messages_in", 0)), int(m.get("messages_out", 0)),
                              int(m.get("streams_open", 0)), int(m.get("last_rtt_ns", 0)) / 1e9,
                              int(m.get("uptime_ns", 0)) / 1e9)

    async def send(self, data: Union[bytes, bytearray, memoryview]) -> None:
        """Sends one /golem/msg/1.0.0 message on the channel. Raises
        :class:`~golemnet.AgainError` while its queue is full (retry after
        a ``writable`` event)."""
        await self._client._call({"channel_send": {"channel_id": self.id, "data": bytes(data)}})

    async def ping(self) -> float:
        """A /ipfs/ping/1.0.0 round trip, seconds."""
        r = await self._client._call({"ping": {"channel_id": self.id}})
        return int(r.get("ping", {}).get("rtt_ns", 0)) / 1e9

    async def open_stream(self, protocol_id: str) -> Stream:
        """Opens a stream for ``protocol_id`` on this channel."""
        return await self._client._open_stream({"channel_id": self.id, "protocol": protocol_id})

    async def close(self) -> None:
        """Closes the channel."""
        await self._client._call({"channel_close": {"channel_id": self.id}})

    def __repr__(self) -> str:
        return f"<golemnet.ipc.Channel {self.id} {self.peer_id}>"


class Client:
    """A connection to a golemnet daemon (from :func:`connect`). Use it from
    one asyncio event loop; calls may overlap (each waits for its own
    response). ``async with`` closes it."""

    def __init__(self, address: str, timeout: Optional[float]) -> None:
        #: the control address connected to
        self.address = address
        #: the bound of each call, seconds (None: none)
        self.timeout = timeout
        #: the daemon's library version (from the hello)
        self.daemon_version = ""
        #: the daemon node's peer ID
        self.peer_id = ""
        self._r: Optional[asyncio.StreamReader] = None
        self._w: Optional[asyncio.StreamWriter] = None
        self._next = 0
        self._pending: Dict[int, "asyncio.Future[Dict[str, Any]]"] = {}
        self._streams: Set[EventStream] = set()
        self._mask = 0
        self._reader_task: Optional["asyncio.Task[None]"] = None
        self._dead = False
        self._dead_error: Optional[Error] = None
        self._handlers: Dict[str, Tuple[Any, str]] = {}
        self._tasks: Set["asyncio.Task[Any]"] = set()

    # -- connection
    async def _start(self) -> None:
        self._r, self._w = await _bounded(_open(self.address), self.timeout)
        self._reader_task = asyncio.get_running_loop().create_task(self._read_loop())
        hello = await self._call({"hello": {"version": PROTOCOL_VERSION,
                                            "client": f"golemnet-python/{_c.version()}"}})
        h = hello.get("hello", {})
        if int(h.get("version", 0)) != PROTOCOL_VERSION:
            await self.close()
            raise _err(_CODES["GN_EVERSION"], f"the daemon speaks control protocol version "
                       f"{h.get('version')}, this client {PROTOCOL_VERSION}")
        self.daemon_version = h.get("daemon_version", "")
        self.peer_id = h.get("peer", "")

    async def _read_loop(self) -> None:
        assert self._r is not None
        why: Optional[Error] = None
        try:
            while True:
                body = await _read_frame(self._r)
                if body is None:
                    why = ClosedError(_CODES["GN_ECLOSED"], "the daemon closed the connection")
                    break
                try:
                    m = _c.ipc_decode(body)
                except ValueError:
                    why = _err(_CODES["GN_EPROTO"], "the daemon sent an undecodable message")
                    break
                if "response" in m:
                    r = m["response"]
                    fut = self._pending.pop(int(r.get("id", 0)), None)
                    if fut is not None and not fut.done():
                        fut.set_result(r)
                elif "event" in m:
                    ev = _event(m["event"])
                    for s in list(self._streams):
                        s._put(ev)
                    if ev.type == 30:
                        why = _err(ev.error.code if ev.error else _CODES["GN_ECLOSED"],
                                   f"the daemon disconnected this client: {ev.reason}")
                        break
        except Error as e:
            why = e
        except (ConnectionError, OSError) as e:
            why = _err(_CODES["GN_EIO"], f"reading from the daemon failed: {e}")
        except asyncio.CancelledError:
            why = ClosedError(_CODES["GN_ECLOSED"], "the client was closed")
        self._die(why)

    def _die(self, why: Optional[Error]) -> None:
        if self._dead:
            return
        self._dead = True
        self._dead_error = why or ClosedError(_CODES["GN_ECLOSED"], "the client was closed")
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(_err(_CODES["GN_ECLOSED"], str(self._dead_error)))
        self._pending.clear()
        for s in list(self._streams):
            s._wake()

    async def close(self) -> None:
        """Closes the connection: waiting calls raise :class:`~golemnet.ClosedError`,
        event streams end, handlers' sockets close (the daemon drops handlers
        registered through this connection). Idempotent."""
        self._die(None)
        for server, path in self._handlers.values():
            server.close()
            try:
                os.unlink(path)
            except OSError:
                pass
        self._handlers.clear()
        if self._w is not None:
            self._w.close()
            try:
                await self._w.wait_closed()
            except (ConnectionError, OSError):
                pass
        if self._reader_task is not None:
            self._reader_task.cancel()
            try:
                await self._reader_task
            except BaseException:
                pass
        for t in list(self._tasks):
            t.cancel()

    @property
    def closed(self) -> bool:
        """True once the connection ended (closed here, or by the daemon)."""
        return self._dead

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def _call(self, op: Dict[str, Any], timeout: Union[None, float, str] = "default",
                    ctx: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """Sends one request (``op``: the oneof member and its fields) and
        returns the response dict; raises the golemnet error it carries."""
        if self._dead:
            raise _err(_CODES["GN_ECLOSED"], f"the connection to the daemon is closed "
                       f"({self._dead_error})")
        assert self._w is not None
        self._next += 1
        rid = self._next
        req = dict(op)
        req["id"] = rid
        frame = _c.ipc_encode(req)
        fut: "asyncio.Future[Dict[str, Any]]" = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        try:
            self._w.write(frame)
            await self._w.drain()
            t = self.timeout if timeout == "default" else timeout
            r = await _bounded(fut, t)  # type: ignore[arg-type]
        except asyncio.TimeoutError:
            raise _err(_CODES["GN_ETIMEDOUT"], "no answer from the daemon in time",
                       **(ctx or {})) from None
        except (ConnectionError, OSError) as e:
            self._die(_err(_CODES["GN_EIO"], str(e)))
            raise _err(_CODES["GN_ECLOSED"], f"writing to the daemon failed: {e}") from None
        finally:
            self._pending.pop(rid, None)
        status = int(r.get("status", 0))
        if status < 0:
            raise _err(status, r.get("error", ""), **(ctx or {}))
        return r

    # -- the node
    async def identify(self) -> Tuple[str, List[str]]:
        """The daemon node's peer ID and listen addresses."""
        r = (await self._call({"identify": {}})).get("identify", {})
        return r.get("peer", ""), list(r.get("addrs", []))

    async def configure(self, name: str, value: Union[int, str]) -> None:
        """Changes a run-time option of the daemon's node ("max_connections",
        "idle_timeout_ms", ...; docs/protocols/control.md)."""
        await self._call({"configure": {"name": name, "value": str(value)}})

    async def listen(self, addr: str) -> str:
        """Makes the daemon listen on ``addr``; returns the bound address."""
        r = await self._call({"listen": {"addr": addr}}, ctx={"address": addr})
        return str(r.get("listen", {}).get("addr", ""))

    async def unlisten(self, addr: str) -> None:
        """Stops listening on ``addr``."""
        await self._call({"unlisten": {"addr": addr}}, ctx={"address": addr})

    async def dial(self, addr: str) -> Channel:
        """Dials a multiaddr (with or without /p2p/<id>), "/p2p/<id>" or a
        peer ID; returns the open :class:`Channel`."""
        r = await self._call({"dial": {"addr": addr}}, ctx={"address": addr})
        return Channel(self, ChannelInfo._of(r.get("channel", {})))

    def channel(self, channel_id: int, peer_id: str = "") -> Channel:
        """A :class:`Channel` handle for a channel id (from :meth:`peers` or
        an event); nothing is asked until it is used."""
        return Channel(self, ChannelInfo(channel_id, peer_id, ChannelState.OPEN, "", "", "",
                                         "", "", False))

    async def unicast(self, to: Union[str, Channel], data: Union[bytes, bytearray, memoryview]
                      ) -> int:
        """Sends one message to a multiaddr (dialled if needed), a connected
        peer ID or a :class:`Channel`; returns the daemon's request id (a
        later ``send_failed`` event carries it)."""
        if isinstance(to, Channel):
            await to.send(data)
            return 0
        r = await self._call({"unicast": {"to": to, "data": bytes(data)}}, ctx={"address": to})
        return int(r.get("send", {}).get("send_id", 0))

    async def broadcast(self, data: Union[bytes, bytearray, memoryview]) -> int:
        """Sends one message to every open channel; returns the request id."""
        r = await self._call({"broadcast": {"data": bytes(data)}})
        return int(r.get("send", {}).get("send_id", 0))

    async def disconnect(self, peer_id: str) -> None:
        """Closes every channel to ``peer_id``."""
        await self._call({"disconnect": {"peer": peer_id}}, ctx={"peer": peer_id})

    async def peers(self) -> List[ChannelInfo]:
        """The daemon's open channels."""
        r = await self._call({"peers": {}})
        return [ChannelInfo._of(d) for d in r.get("peers", {}).get("channels", [])]

    async def peer_info(self, peer_id: str) -> PeerInfo:
        """What the daemon's peer store knows of ``peer_id``
        (:class:`~golemnet.PeerInfo`)."""
        r = (await self._call({"peer_info": {"peer": peer_id}}, ctx={"peer": peer_id}))
        d = r.get("peer_info", {})
        return PeerInfo(d.get("peer", peer_id), bool(d.get("identified")), d.get("agent", ""),
                        d.get("observed_addr", ""), tuple(d.get("addrs", [])),
                        tuple(d.get("protocols", [])))

    async def ping(self, target: Union[str, Channel]) -> float:
        """A round trip to a peer ID or multiaddr (dialled if needed) or a
        :class:`Channel`, seconds."""
        if isinstance(target, Channel):
            return await target.ping()
        r = await self._call({"ping": {"peer": target}}, ctx={"address": target})
        return int(r.get("ping", {}).get("rtt_ns", 0)) / 1e9

    # -- the DHT
    async def _dht(self, op: int, key: bytes = b"", value: bytes = b"", peer: str = "",
                   count: int = 0) -> Dict[str, Any]:
        t = None if self.timeout is None else max(self.timeout, _DHT_MIN_TIMEOUT)
        r = await self._call({"dht": {"op": op, "key": key, "value": value, "peer": peer,
                                      "count": count}}, timeout=t)
        return dict(r.get("dht", {}))

    @staticmethod
    def _peers(d: Dict[str, Any]) -> List[DhtPeer]:
        return [(p.get("peer", ""), list(p.get("addrs", []))) for p in d.get("peers", [])]

    async def dht_find_peer(self, peer_id: str) -> List[str]:
        """The multiaddrs of ``peer_id``."""
        peers = self._peers(await self._dht(1, peer=peer_id))
        return peers[0][1] if peers else []

    async def dht_get(self, key: Union[bytes, str]) -> bytes:
        """The best valid record under ``key`` (:class:`~golemnet.NotFoundError`: none)."""
        return bytes((await self._dht(2, key=_key(key))).get("value", b""))

    async def dht_put(self, key: Union[bytes, str], value: Union[bytes, bytearray, memoryview]
                      ) -> None:
        """Stores ``value`` under ``key``."""
        await self._dht(3, key=_key(key), value=bytes(value))

    async def dht_provide(self, key: Union[bytes, str]) -> None:
        """Announces the daemon's node as a provider of ``key`` (a multihash)."""
        await self._dht(4, key=_key(key))

    async def dht_find_providers(self, key: Union[bytes, str], max: int = 20) -> List[DhtPeer]:
        """Up to ``max`` providers of ``key``: ``[(peer_id, [addr, ...]), ...]``."""
        if max < 1:
            raise _err(_CODES["GN_EINVAL"], "dht_find_providers: max >= 1")
        return self._peers(await self._dht(5, key=_key(key), count=max))

    async def dht_closest_peers(self, key: Union[bytes, str]) -> List[DhtPeer]:
        """The peers closest to ``key``, closest first."""
        return self._peers(await self._dht(6, key=_key(key)))

    # -- streams
    async def _open_stream(self, so: Dict[str, Any]) -> Stream:
        r, w = await _bounded(_open(self.address), self.timeout)
        try:
            self._next += 1
            w.write(_c.ipc_encode({"id": self._next, "stream_open": so}))
            await w.drain()
            body = await _bounded(_read_frame(r), self.timeout)
            if body is None:
                raise _err(_CODES["GN_ECLOSED"], "the daemon closed the stream connection")
            m = _c.ipc_decode(body)
            resp = m.get("response", {})
            status = int(resp.get("status", 0))
            if status < 0:
                raise _err(status, resp.get("error", ""), protocol=so.get("protocol"),
                           peer=so.get("peer") or None)
            return Stream(r, w, resp.get("stream", {}))
        except BaseException:
            w.close()
            raise

    async def open_stream(self, target: Union[str, Channel], protocol_id: str) -> Stream:
        """Opens a stream for ``protocol_id`` to a peer ID or multiaddr
        (dialled if needed) or on a :class:`Channel`; its bytes travel on a
        connection of their own to the daemon."""
        if isinstance(target, Channel):
            return await target.open_stream(protocol_id)
        return await self._open_stream({"peer": target, "protocol": protocol_id})

    async def set_handler(self, protocol_id: str, handler: Optional[StreamHandler],
                          path: Optional[str] = None) -> Optional[str]:
        """Makes ``handler`` (``async def handler(stream)``) answer the
        daemon's inbound streams for ``protocol_id``: the client listens on
        a Unix socket (``path``, or a fresh one in the daemon socket's
        directory) where the daemon connects per stream. Returns the path.
        ``handler`` None removes the registration."""
        if handler is None:
            old = self._handlers.pop(protocol_id, None)
            if old:
                old[0].close()
                try:
                    os.unlink(old[1])
                except OSError:
                    pass
            await self._call({"stream_unhandle": {"protocols": [protocol_id]}},
                             ctx={"protocol": protocol_id})
            return None
        if path is None:
            parsed = _c.ipc_parse_addr(self.address)
            base = os.path.dirname(parsed[1]) if parsed[0] == "unix" else ""
            base = base or os.environ.get("TMPDIR", "/tmp")
            path = os.path.join(base, f"h-py-{os.getpid()}-{id(self) & 0xffffff:x}-"
                                      f"{len(self._handlers)}.sock")

        async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                body = await asyncio.wait_for(_read_frame(r), 10)
                if body is None:
                    w.close()
                    return
                info = _c.ipc_decode_stream_info(body)
                await handler(Stream(r, w, info))
            except Exception:  # a failing handler ends its stream only
                pass
            finally:
                w.close()

        old_umask = os.umask(0o177)
        try:
            server = await asyncio.start_unix_server(on_conn, path)
        finally:
            os.umask(old_umask)
        try:
            await self._call({"stream_handler": {"protocols": [protocol_id], "path": path}},
                             ctx={"protocol": protocol_id})
        except BaseException:
            server.close()
            try:
                os.unlink(path)
            except OSError:
                pass
            raise
        self._handlers[protocol_id] = (server, path)
        return path

    # -- events
    def events(self, kinds: Optional[Iterable[str]] = None, maxsize: int = 1024) -> EventStream:
        """An async iterator over the daemon's events (:class:`Event`).
        ``kinds``: the :data:`EVENT_KINDS` values wanted (None: all). The
        daemon is asked to publish them (a subscription of this connection:
        the union over the open streams); events that come while one is
        set up may be missed. A stream ``maxsize`` events behind drops new
        ones and yields a ``lost`` event with their count in their place."""
        ks = None if kinds is None else set(kinds)
        if ks is not None and not ks <= set(EVENT_KINDS.values()):
            raise ValueError(f"unknown event kinds {sorted(ks - set(EVENT_KINDS.values()))}; "
                             f"one of {sorted(EVENT_KINDS.values())}")
        s = EventStream(self, ks, maxsize)
        self._streams.add(s)
        mask = self._mask | (sum(_KIND_BIT[k] for k in ks) if ks is not None
                             else sum(_KIND_BIT.values()))
        if mask != self._mask:
            self._mask = mask
            t = asyncio.get_running_loop().create_task(self._subscribe(mask))
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)
        return s

    async def subscribe(self, kinds: Optional[Iterable[str]] = None) -> None:
        """Asks the daemon for these event kinds now (None: all) and waits
        for its answer; :meth:`events` does this by itself, in the
        background."""
        ks = set(EVENT_KINDS.values()) if kinds is None else set(kinds)
        self._mask |= sum(_KIND_BIT[k] for k in ks)
        await self._subscribe(self._mask)

    async def _subscribe(self, mask: int) -> None:
        try:
            await self._call({"subscribe": {"mask": mask}})
        except Error:
            pass  # the connection ended: the streams end with it

    def __repr__(self) -> str:
        return f"<golemnet.ipc.Client {self.address} {self.peer_id}>"


def _key(key: Union[bytes, bytearray, memoryview, str]) -> bytes:
    return key.encode() if isinstance(key, str) else bytes(key)


async def _bounded(aw: Awaitable[Any], timeout: Optional[float]) -> Any:
    if timeout is None:
        return await aw
    return await asyncio.wait_for(aw, timeout)


async def connect(address: Optional[str] = None, timeout: Optional[float] = _DEFAULT_TIMEOUT
                  ) -> Client:
    """Connects to a daemon's control socket and greets it. ``address``: a
    socket path, "/unix/PATH" or a loopback "/ip4/127.0.0.1/tcp/N" (None:
    :func:`default_socket`). ``timeout``: each call's bound, seconds (None:
    none). Raises :class:`~golemnet.NotFoundError` (no socket there),
    :class:`~golemnet.RefusedError` (nobody listens),
    :class:`~golemnet.ParseError` (a malformed address), a
    :class:`~golemnet.NetworkError` with code GN_EACCES (a TCP address
    that is not loopback, another protocol, or permission denied), ..."""
    c = Client(address or default_socket(), timeout)
    try:
        await c._start()
    except BaseException:
        await c.close()
        raise
    return c
