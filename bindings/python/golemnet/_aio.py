"""The asyncio API of golemnet: Node, Channel, Stream, Message.

The network runs on the node's own native thread. This module runs on the
thread of an asyncio event loop: it watches two file descriptors of the
native node (node events, and the thread bridge's completion notes) with
``loop.add_reader`` and turns what arrives into future results, handler
tasks and wake-ups of streams waiting to read or write. A Python handler
that blocks (even holding the GIL) delays only Python code: the native
thread keeps moving bytes of every other stream and channel.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import enum
import inspect
import itertools
import logging
import weakref
from typing import (Any, Awaitable, Callable, Deque, Dict, Iterable, List, Optional,
                    Sequence, Set, Tuple, Union)

from . import _golemnet as _c
from .errors import AgainError, ClosedError, Error, PeerIdError, error_from_code

__all__ = [
    "Node", "Channel", "Stream", "Message", "ChannelState", "ChannelMetrics",
    "Handler", "PROTOCOLS", "Event", "EventStream", "EVENT_KINDS", "PeerInfo", "DhtPeer",
    "TransferEvent", "Fetch",
]

log = logging.getLogger("golemnet")

#: Built-in application protocols a node can serve, by short name.
PROTOCOLS: Dict[str, int] = {
    "identify": _c.PROTO_IDENTIFY,
    "ping": _c.PROTO_PING,
    "echo": _c.PROTO_ECHO,
    "perf": _c.PROTO_PERF,
    "msg": _c.PROTO_MSG,
}

_DEFAULT_TIMEOUT = 30.0
_PING_ID = "/ipfs/ping/1.0.0"
_KICK_RETRY_S = 0.002
_UNICAST_CTX_MAX = 4096


class ChannelState(enum.IntEnum):
    """The state of a channel (gn_channel_state)."""

    DIALING = _c.CH_DIALING
    UPGRADING = _c.CH_UPGRADING
    OPEN = _c.CH_OPEN
    CLOSING = _c.CH_CLOSING
    CLOSED = _c.CH_CLOSED


@dataclasses.dataclass(frozen=True)
class ChannelMetrics:
    """Channel counters (gn_channel_metrics). Bytes are counted on the
    secured stream; the values are the native loop's last snapshot."""

    bytes_in: int
    bytes_out: int
    messages_in: int
    messages_out: int
    streams_open: int
    last_rtt: float  #: seconds; 0.0 until a ping completed
    uptime: float  #: seconds


@dataclasses.dataclass(frozen=True)
class Message:
    """A /golem/msg/1.0.0 message received by the node."""

    peer_id: Optional[str]
    channel_id: int
    data: bytes


Handler = Callable[["Stream"], Awaitable[Any]]

#: A peer a DHT call found: (peer ID, its multiaddrs).
DhtPeer = Tuple[str, List[str]]


@dataclasses.dataclass(frozen=True)
class PeerInfo:
    """What the node's peer store knows of a peer (:meth:`Node.peer_info`):
    identify results and the addresses seen."""

    #: the peer ID
    peer_id: str
    #: True once an identify reply of the peer was recorded
    identified: bool
    #: the agent version the peer announced ("" unknown)
    agent_version: str
    #: the address the peer observed for this node ("" unknown)
    observed_addr: str
    #: the peer's known multiaddrs (listen addresses from identify, dialled
    #: and configured ones)
    addrs: Tuple[str, ...]
    #: the protocol ids the peer announced in identify
    protocols: Tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Event:
    """A connection life-cycle event of the node: what
    :meth:`Node.events` yields and :attr:`Node.on_connect`,
    :attr:`Node.on_disconnect` and :attr:`Node.on_identify` receive."""

    #: "connect" (a channel opened: secured and multiplexed, inbound or
    #: outbound), "disconnect" (an open channel closed) or "identify" (the
    #: identify exchange on a channel finished, or failed)
    kind: str
    #: the channel id (:attr:`Channel.id`)
    channel_id: int
    #: the remote peer ID
    peer_id: Optional[str]
    #: connect, disconnect: the remote multiaddr; identify: the address the
    #: peer observed for this node ("" unknown)
    address: str
    #: connect: the negotiated muxer ("/yamux/1.0.0"); else ""
    muxer: str = ""
    #: identify: the peer's agent version ("" unknown); else ""
    agent_version: str = ""
    #: disconnect: why the channel closed (:class:`~golemnet.ClosedError`
    #: after a normal close, :class:`~golemnet.ResetError`, ...); identify:
    #: the failure, None on success; connect: None
    error: Optional[Error] = None
    #: reachability: the node's new reachability ("public", "private" or
    #: "unknown", as AutoNAT judged it); else ""
    reachability: str = ""


#: The kinds of :class:`Event`.
EVENT_KINDS: Tuple[str, ...] = ("connect", "disconnect", "identify", "reachability")
_REACH_NAMES = {0: "unknown", 1: "public", 2: "private"}
_EVENT_KIND = {_c.EV_CHANNEL_OPENED: "connect", _c.EV_CHANNEL_CLOSED: "disconnect",
               _c.EV_IDENTIFY: "identify"}


class _EventQueue:
    """The iterator part an event stream of a node (in process or over IPC)
    shares: a bounded queue read with ``async for``. Subclasses fill it
    (``_put``) and say when their source is gone (``_gone``) and how to
    leave it (``_unregister``)."""

    def __init__(self, maxsize: int) -> None:
        self._queue: Deque[Any] = collections.deque()
        self._maxsize = max(1, maxsize)
        self._waiter: Optional["asyncio.Future[None]"] = None
        self._closed = False
        #: events dropped because the queue was full
        self.dropped = 0

    def _gone(self) -> bool:
        raise NotImplementedError

    def _unregister(self) -> None:
        raise NotImplementedError

    def _wake(self) -> None:
        w, self._waiter = self._waiter, None
        if w is not None and not w.done():
            w.set_result(None)

    def close(self) -> None:
        """Stops the subscription: queued events are dropped and iteration
        ends. Idempotent."""
        self._closed = True
        self._queue.clear()
        self._unregister()
        self._wake()

    def __aiter__(self) -> Any:
        return self

    async def __anext__(self) -> Any:
        while True:
            if self._queue:
                return self._queue.popleft()
            if self._closed or self._gone():
                self.close()
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()


class EventStream(_EventQueue):
    """An async iterator over the node's :class:`Event` s, from
    :meth:`Node.events`. Events are queued from the moment it was created;
    iteration ends once the node is closed and the queue is empty, or after
    :meth:`close`. At most ``maxsize`` events wait: when the queue is full
    the oldest event is dropped and counted in :attr:`dropped`."""

    def __init__(self, node: "Node", kinds: Optional[Iterable[str]], maxsize: int) -> None:
        self._node = node
        self._kinds = None if kinds is None else frozenset(kinds)
        if self._kinds is not None and not self._kinds <= set(EVENT_KINDS):
            raise ValueError(f"unknown event kinds {sorted(self._kinds - set(EVENT_KINDS))}; "
                             f"one of {list(EVENT_KINDS)}")
        super().__init__(maxsize)

    def _put(self, ev: Event) -> None:
        if self._kinds is not None and ev.kind not in self._kinds:
            return
        if len(self._queue) >= self._maxsize:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(ev)
        self._wake()

    def _gone(self) -> bool:
        return bool(self._node._freed)

    def _unregister(self) -> None:
        self._node._event_streams.discard(self)


@dataclasses.dataclass(frozen=True)
class GroupMessage:
    """A message of a group's topic, from :class:`Group` iteration."""

    #: the group address it arrived on ("/pubsub/<topic>")
    addr: str
    #: the publisher's peer ID (None for an unsigned message)
    peer_id: Optional[str]
    data: bytes


@dataclasses.dataclass(frozen=True)
class GroupMetrics:
    """A group's counters (gn_multicast_metrics)."""

    #: publishes the pubsub service accepted
    published: int
    #: messages of the topic handed to the application
    delivered: int
    #: messages received again after they were seen (the router drops them)
    duplicate: int
    #: messages refused: signature, sign policy or validation
    rejected: int
    #: accepted but not delivered: the node's event queue was full
    dropped: int
    #: peers known subscribed to the topic (last snapshot)
    members: int
    #: mesh peers (last snapshot)
    mesh: int


class Group(_EventQueue):
    """A multicast channel on a group address (a pubsub topic), from
    :meth:`Node.dial_group`: ``async for msg in group`` yields the topic's
    :class:`GroupMessage` s (published by other nodes; a node does not get
    its own back); :meth:`broadcast` publishes. Iteration ends after
    :meth:`close` or once the node is closed. At most ``maxsize`` messages
    wait: then the node stops reading its events (the pubsub service then
    counts further messages as dropped in :attr:`metrics`), until the
    reader catches up."""

    def __init__(self, node: "Node", cgroup: Any, addr: str, maxsize: int) -> None:
        self._node = node
        self._cg = cgroup
        #: the group address ("/pubsub/<topic>")
        self.addr = addr
        super().__init__(maxsize)

    @property
    def topic(self) -> str:
        """The topic (the address without its /pubsub/ prefix)."""
        return self.addr[len(_c.GROUP_ADDR_PREFIX):]

    def _put(self, m: GroupMessage) -> None:
        if self._closed:
            return
        self._queue.append(m)
        self._wake()
        if len(self._queue) >= self._maxsize:
            self._node._pause_events()

    async def __anext__(self) -> Any:
        m = await super().__anext__()
        self._node._maybe_resume_events()
        return m

    def _gone(self) -> bool:
        return bool(self._node._freed or self._node._closing)

    def _unregister(self) -> None:
        if self._node._groups.get(self.addr) is self:
            del self._node._groups[self.addr]
        if self._cg is not None:
            self._cg.free()
            self._cg = None
        self._node._maybe_resume_events()

    def _native(self) -> Any:
        if self._cg is None:
            raise error_from_code(_golemnet_code("GN_ECLOSED"), f"group {self.addr}: closed",
                                  address=self.addr)
        return self._cg

    async def broadcast(self, data: Union[bytes, bytearray, memoryview],
                        timeout: Optional[float] = _DEFAULT_TIMEOUT) -> None:
        """Publishes ``data`` on the topic (signed with the node's identity
        under the default sign policy). Waits while the node's command
        queue is full (AgainError), up to ``timeout``."""
        self._node._check_open()
        cg = self._native()
        with _Context(address=self.addr):
            await self._node._retry_again(lambda: cg.broadcast(data), timeout)

    publish = broadcast

    async def unicast(self, peer_id: str, data: Union[bytes, bytearray, memoryview],
                      timeout: Optional[float] = _DEFAULT_TIMEOUT) -> None:
        """Sends ``data`` to one member over /golem/msg/1.0.0 (it arrives
        there through :meth:`Node.recv`). Raises NotFoundError when
        ``peer_id`` is not known subscribed to the topic."""
        self._node._check_open()
        cg = self._native()
        with _Context(address=self.addr, peer=peer_id):
            await self._node._retry_again(lambda: cg.unicast(peer_id, data), timeout)

    @property
    def metrics(self) -> GroupMetrics:
        """The group's counters (:class:`GroupMetrics`), read now."""
        return GroupMetrics(**self._native().metrics())

    def mesh_peers(self) -> List[str]:
        """Peer IDs of the topic's mesh (gossipsub; with floodsub every
        member), the service's last snapshot."""
        return list(self._native().mesh_peers())

    def __repr__(self) -> str:
        return f"<golemnet.Group {self.addr}{' closed' if self._cg is None else ''}>"


def _mask(protocols: Iterable[str]) -> int:
    m = 0
    for p in protocols:
        try:
            m |= PROTOCOLS[p]
        except KeyError:
            raise ValueError(f"unknown built-in protocol {p!r}; one of {sorted(PROTOCOLS)}") from None
    return m


def _csv(v: Union[None, str, Sequence[str]]) -> Optional[str]:
    if v is None or isinstance(v, str):
        return v
    return ",".join(v)


def _peer_of(addr: str) -> Optional[str]:
    """The peer ID an address names: its last /p2p/ part, or the whole
    string when it is a bare peer ID; None otherwise."""
    if "/" not in addr:
        return addr or None
    i = addr.rfind("/p2p/")
    if i < 0:
        return None
    return addr[i + 5:].split("/", 1)[0] or None


class _Context:
    """Adds address/protocol/peer to a golemnet Error leaving the block."""

    __slots__ = ("address", "protocol", "peer")

    def __init__(self, address: Optional[str] = None, protocol: Optional[str] = None,
                 peer: Optional[str] = None) -> None:
        self.address = address
        self.protocol = protocol
        self.peer = peer

    def __enter__(self) -> "_Context":
        return self

    def __exit__(self, et: Any, ev: Any, tb: Any) -> bool:
        if isinstance(ev, Error):
            ev.add_context(self.address, self.protocol, self.peer)
        return False


def _addr_context(addr: str) -> _Context:
    if "/" not in addr:  # a bare peer ID
        return _Context(peer=addr or None)
    return _Context(address=addr, peer=_peer_of(addr))


async def _bounded(aw: Awaitable[Any], timeout: Optional[float]) -> Any:
    if timeout is None:
        return await aw
    return await asyncio.wait_for(aw, timeout)


class Stream:
    """A bidirectional byte stream negotiated for one protocol on a channel.

    Obtained from :meth:`Channel.open_stream` or handed to a handler.
    Reads and writes may run concurrently from different tasks. Use it as
    an async context manager to close it on exit.
    """

    def __init__(self, node: "Node", cstream: Any, channel: "Channel") -> None:
        self._node = node
        self._c = cstream
        #: the channel the stream runs on
        self.channel = channel
        #: the negotiated protocol id
        self.protocol: str = cstream.protocol
        self._waiters: Set["asyncio.Future[None]"] = set()

    # -- notifications from the node
    def _wake(self) -> None:
        ws, self._waiters = self._waiters, set()
        for w in ws:
            if not w.done():
                w.set_result(None)

    async def _wait(self) -> None:
        if self._node._freed:  # nothing will wake us any more
            raise ClosedError(_golemnet_code("GN_ECLOSED"))
        fut = self._node._loop_fut()
        self._waiters.add(fut)
        try:
            await fut
        finally:
            self._waiters.discard(fut)

    # -- reading
    async def read(self, n: int = 65536) -> bytes:
        """Reads up to ``n`` bytes (at least 1 unless at end of stream).

        Returns ``b""`` once the remote half-closed and every byte was read.
        Raises :class:`~golemnet.ClosedError` after :meth:`close`, or the
        stream's error (:class:`~golemnet.StreamResetError`, ...).
        """
        c = self._c
        try:
            while True:
                data = c.read(n)
                if data is not None:
                    if self._node._c.kick_failed:
                        self._node._kick_soon()
                    return data
                await self._wait()
        except Error as e:
            raise self._annotate(e)

    def _annotate(self, e: Error) -> Error:
        ch = self.channel
        return e.add_context(ch._info.get("remote_addr") or None, self.protocol, ch.peer_id)

    async def readexactly(self, n: int) -> bytes:
        """Reads exactly ``n`` bytes; raises :class:`asyncio.IncompleteReadError`
        if the stream ends first."""
        parts: List[bytes] = []
        got = 0
        while got < n:
            b = await self.read(n - got)
            if not b:
                raise asyncio.IncompleteReadError(b"".join(parts), n)
            parts.append(b)
            got += len(b)
        return b"".join(parts)

    async def read_all(self, limit: int = 1 << 30) -> bytes:
        """Reads until the end of the stream (at most ``limit`` bytes, else
        :class:`~golemnet.TooBigError`)."""
        parts: List[bytes] = []
        got = 0
        while True:
            b = await self.read(1 << 20)
            if not b:
                return b"".join(parts)
            got += len(b)
            if got > limit:
                raise self._annotate(error_from_code(_golemnet_code("GN_ETOOBIG")))
            parts.append(b)

    # -- writing
    async def _after_write(self, rc: int) -> None:
        if rc == 2:
            self._node._kick_soon()
        elif rc == 1:
            try:
                while not self._c.write_ready(False):
                    await self._wait()
            except Error as e:
                raise self._annotate(e)

    async def write(self, data: Union[bytes, bytearray, memoryview]) -> None:
        """Queues a copy of ``data`` for sending.

        Returns at once while the stream's queued and in-flight bytes stay
        within its write window (``write_buffer`` of the node); otherwise it
        waits until they drained below it: backpressure from the peer's
        flow control reaches the caller here.
        """
        try:
            rc = self._c.write(data)
        except Error as e:
            raise self._annotate(e)
        await self._after_write(rc)

    async def writev(self, buffers: Sequence[Union[bytes, bytearray, memoryview]]) -> None:
        """Writes several buffers in one call (copied into one chunk): the
        cheap way to send many small messages."""
        try:
            rc = self._c.writev(buffers)
        except Error as e:
            raise self._annotate(e)
        await self._after_write(rc)

    async def drain(self) -> None:
        """Waits until every queued byte was handed to the layer below."""
        try:
            while not self._c.write_ready(True):
                await self._wait()
        except Error as e:
            raise self._annotate(e)

    async def close_write(self) -> None:
        """Half-closes: the peer reads the end of stream after the queued
        bytes. Reading continues."""
        try:
            rc = self._c.shutdown()
        except Error as e:
            raise self._annotate(e)
        if rc == 2:
            self._node._kick_soon()

    async def close(self, timeout: Optional[float] = _DEFAULT_TIMEOUT) -> None:
        """Closes the stream after the queued bytes were written, and waits
        until the native stream is closed. Idempotent."""
        if self._c.close(False) == 2:
            self._node._kick_soon()
        await self._wait_closed(timeout)

    async def reset(self, timeout: Optional[float] = _DEFAULT_TIMEOUT) -> None:
        """Aborts the stream (a reset towards the peer); queued bytes are dropped."""
        if self._c.close(True) == 2:
            self._node._kick_soon()
        await self._wait_closed(timeout)

    async def _wait_closed(self, timeout: Optional[float]) -> None:
        async def waiter() -> None:
            while not self._c.closed and not self._node._freed:
                await self._wait()
        await _bounded(waiter(), timeout)

    @property
    def closed(self) -> bool:
        """True once the native stream finished closing."""
        return bool(self._c.closed)

    @property
    def at_eof(self) -> bool:
        """True when the remote half-closed and no byte is left to read."""
        return bool(self._c.eof) and self._c.readable == 0

    @property
    def counters(self) -> Tuple[int, int]:
        """(bytes read by Python, bytes written and completed)."""
        return self._c.counters()

    async def __aenter__(self) -> "Stream":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<golemnet.Stream {self.protocol} on channel {self.channel.id}>"


def _golemnet_code(name: str) -> int:
    from .errors import CODES
    return CODES[name]


class Channel:
    """One logical connection to a peer (a secured, multiplexed connection)."""

    def __init__(self, node: "Node", cchan: Any) -> None:
        self._node = node
        self._c = cchan
        info = cchan.info()
        #: the channel id, unique within the node
        self.id: int = cchan.id
        #: the remote peer ID (base58btc)
        self.peer_id: Optional[str] = info["remote_peer"]
        #: "inbound" or "outbound"
        self.direction: str = info["direction"]
        self._info = info
        self._closed = asyncio.Event()

    def _refresh(self) -> Dict[str, Any]:
        self._info = self._c.info()
        return self._info

    @property
    def remote_addr(self) -> str:
        """The remote multiaddr."""
        return str(self._refresh()["remote_addr"])

    @property
    def local_addr(self) -> str:
        """The local multiaddr."""
        return str(self._refresh()["local_addr"])

    @property
    def security(self) -> str:
        """The negotiated security protocol id ("/noise")."""
        return str(self._refresh()["security"])

    @property
    def muxer(self) -> str:
        """The negotiated muxer protocol id ("/yamux/1.0.0")."""
        return str(self._refresh()["muxer"])

    @property
    def limited(self) -> bool:
        """True when the channel runs through a circuit relay that limits
        its duration or data (only protocols that accept limited
        connections run on it; docs/relay.md)."""
        return bool(self._refresh().get("limited", False))

    @property
    def state(self) -> ChannelState:
        """The channel's current :class:`ChannelState`."""
        return ChannelState(self._c.state)

    @property
    def metrics(self) -> ChannelMetrics:
        """The channel's counters (:class:`ChannelMetrics`): the native
        loop's last snapshot, taken at messages, pings and idle checks (use
        :meth:`fetch_metrics` for current values)."""
        bi, bo, mi, mo, so, rtt, up = self._c.metrics()
        return ChannelMetrics(bi, bo, mi, mo, so, rtt / 1e9, up / 1e9)

    async def fetch_metrics(self, timeout: Optional[float] = _DEFAULT_TIMEOUT) -> ChannelMetrics:
        """Current counters: refreshes the snapshot on the network thread."""
        node = self._node
        if node._started and not node._closing:
            with self._context():
                tok, fut = node._request()
                node._call(node._c.refresh_metrics, self._c, tok)
                await node._await(tok, fut, timeout)
        return self.metrics

    async def open_stream(self, protocol_id: str,
                          timeout: Optional[float] = _DEFAULT_TIMEOUT) -> Stream:
        """Opens a stream and negotiates ``protocol_id`` on it
        (multistream-select). Raises :class:`~golemnet.NegotiationError` if
        the peer does not serve it."""
        node = self._node
        with self._context(protocol_id):
            tok, fut = node._request()
            node._call(node._c.open_stream, self._c, protocol_id, tok)
            return await node._await(tok, fut, timeout)

    async def ping(self, timeout: Optional[float] = _DEFAULT_TIMEOUT) -> float:
        """Measures a round trip with /ipfs/ping/1.0.0; returns seconds."""
        node = self._node
        with self._context(_PING_ID):
            tok, fut = node._request()
            node._call(node._c.ping, self._c, tok)
            return await node._await(tok, fut, timeout)

    async def send(self, data: Union[bytes, bytearray, memoryview],
                   timeout: Optional[float] = _DEFAULT_TIMEOUT) -> None:
        """Sends one /golem/msg/1.0.0 message on this channel (waits while
        the channel's message queue is full)."""
        with self._context(_c.MSG_PROTOCOL_ID):
            await self._node._retry_again(lambda: self._c.send(data), timeout)

    def _context(self, protocol: Optional[str] = None) -> _Context:
        return _Context(self._info.get("remote_addr") or None, protocol, self.peer_id)

    async def close(self, timeout: Optional[float] = _DEFAULT_TIMEOUT) -> None:
        """Closes the channel and all its streams; waits until it is closed."""
        self._c.close()

        async def waiter() -> None:
            while self._c.state != _c.CH_CLOSED and not self._node._freed:
                try:
                    await asyncio.wait_for(self._closed.wait(), 0.05)
                except asyncio.TimeoutError:
                    pass
        await _bounded(waiter(), timeout)

    async def __aenter__(self) -> "Channel":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<golemnet.Channel {self.id} {self.direction} {self.peer_id}>"


class Node:
    """A golemnet node: identity, listeners, channels and protocol handlers.

    The network runs on the node's own native thread, started by
    :meth:`start`; this object is used from one asyncio event loop.

    Args:
        listen: multiaddrs to listen on ("/ip4/127.0.0.1/tcp/0").
        key_seed: a deterministic identity: an int (seed bytes 0..3, as
            rust-libp2p's --secret-key-seed) or 32 seed bytes. None: random.
        key_file: a libp2p PrivateKey protobuf file; loaded if it exists,
            else created (from key_seed, or random) with mode 0600.
        security: security components in preference order ("noise",
            "ecies", "plaintext"), a list or a comma-separated string.
        muxers: muxers in preference order ("yamux", "mplex").
        transports: transports ("tcp", "memory").
        protocols: built-in protocols served (see :data:`PROTOCOLS`).
        max_message_len: bound of /golem/msg/1.0.0 messages (bytes).
        read_buffer: bytes a stream buffers for Python before the native
            side stops reading it (flow control to the sender).
        write_buffer: a stream's write window: bytes queued or in flight
            before :meth:`Stream.write` waits.
        message_queue: messages held for :meth:`recv` before the node
            stops popping events (backpressure into the native queue).
        max_connections, max_connections_per_peer, idle_timeout,
        upgrade_timeout (seconds), event_queue_capacity, agent_version:
            as gn_node_config.
        routers: routers asked, in order, when a dial names only a peer
            ("/p2p/<id>" or a bare peer ID): "static"; a list or a
            comma-separated string; None: every built-in; "" or []: none.
        discovery: discovery components ("bootstrap"); as routers.
        nat: NAT components; as routers.
        protocol_components: protocol components besides those of
            ``protocols`` (explicit-only ones run only when named here):
            "relay" (serve circuit relay v2: be a relay), "autonat"
            (learn :attr:`reachability`), "dcutr" (hole punching of relayed
            channels); docs/relay.md. None: the default ones.
        options: component options, "component.key=value" strings
            (docs/components.md).
        bootstrap: bootstrap peers, "<multiaddr>/p2p/<id>": reported to the
            peer store and dialled with backoff (options
            "bootstrap.peer=...").
        routes: static routes, "<multiaddr>/p2p/<id>" (options
            "static.peer=...").
        kad_bootstrap: Kademlia bootstrap peers, "<multiaddr>/p2p/<id>"
            (options "kad.bootstrap=..."); the kad router's mode is the
            option "kad.mode=auto|server|client" (auto: a server only once
            the node has a public address, so pass "kad.mode=server" for a
            DHT on loopback).
        dht_namespaces: record namespaces ("test" for keys b"/test/...")
            in which the DHT accepts every record, registered before the
            node starts (see :meth:`dht_allow_namespace`).
    """

    def __init__(self, listen: Sequence[str] = (), key_seed: Union[None, int, bytes] = None,
                 key_file: Optional[str] = None,
                 security: Union[None, str, Sequence[str]] = None,
                 muxers: Union[None, str, Sequence[str]] = None,
                 transports: Union[None, str, Sequence[str]] = None,
                 protocols: Iterable[str] = ("identify", "ping", "msg"),
                 max_message_len: int = 0, event_queue_capacity: int = 0,
                 read_buffer: int = 0, write_buffer: int = 0, message_queue: int = 1024,
                 max_connections: int = 0, max_connections_per_peer: int = 0,
                 idle_timeout: Optional[float] = None,
                 upgrade_timeout: Optional[float] = None,
                 agent_version: Optional[str] = None,
                 routers: Union[None, str, Sequence[str]] = None,
                 discovery: Union[None, str, Sequence[str]] = None,
                 nat: Union[None, str, Sequence[str]] = None,
                 options: Sequence[str] = (),
                 bootstrap: Sequence[str] = (),
                 routes: Sequence[str] = (),
                 limits: Optional[Dict[str, float]] = None,
                 kad_bootstrap: Sequence[str] = (),
                 dht_namespaces: Sequence[str] = (),
                 protocol_components: Union[None, str, Sequence[str]] = None) -> None:
        self._listen = list(listen)
        opts = list(options) + ["bootstrap.peer=" + a for a in bootstrap] + \
            ["static.peer=" + a for a in routes] + ["kad.bootstrap=" + a for a in kad_bootstrap]
        self._dht_namespaces = [str(ns) for ns in dht_namespaces]
        for ns in self._dht_namespaces:
            if not ns or "/" in ns or "\0" in ns or len(ns.encode()) >= 64:
                raise error_from_code(_golemnet_code("GN_EINVAL"),
                                      f"dht_namespaces: {ns!r}: want 1..63 bytes without '/'")
        self._c = _c.Node(
            listen=self._listen, key_seed=key_seed, key_file=key_file,
            transports=_csv(transports), security=_csv(security), muxers=_csv(muxers),
            protocols=_mask(protocols), max_message_len=max_message_len,
            event_queue_capacity=event_queue_capacity, rx_limit=read_buffer,
            tx_limit=write_buffer, max_connections=max_connections,
            max_connections_per_peer=max_connections_per_peer,
            idle_timeout_ms=int((idle_timeout or 0) * 1000),
            upgrade_timeout_ms=int((upgrade_timeout or 0) * 1000),
            agent_version=agent_version, routers=_csv(routers), discovery=_csv(discovery),
            nat=_csv(nat), options=opts, protocol_components=_csv(protocol_components))
        for name, value in (limits or {}).items():
            if name not in _LIMITS:
                self._c = None  # type: ignore[assignment]
                raise ValueError(f"limits: unknown limit {name!r} (known: "
                                 f"{', '.join(sorted(_LIMITS))})")
            opt, scale = _LIMITS[name]
            self._c.configure(opt, int(value * scale))
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._tokens = itertools.count(1)
        self._pending: Dict[int, "asyncio.Future[Any]"] = {}
        self._fetches: Dict[int, "Fetch"] = {}
        self._handlers: Dict[str, Handler] = {}
        self._handler_tasks: Set["asyncio.Task[Any]"] = set()
        self._channels: Dict[int, Channel] = {}
        self._streams: "weakref.WeakValueDictionary[int, Stream]" = weakref.WeakValueDictionary()
        self._listen_waiters: Dict[int, "asyncio.Future[str]"] = {}
        self._start_results: List[Tuple[int, str]] = []
        self._start_event: Optional[asyncio.Event] = None
        self._messages: Deque[Message] = collections.deque()
        # the target of recent unicasts by request id, for send_failures' context
        self._unicast_ctx: "collections.OrderedDict[int, _Context]" = collections.OrderedDict()
        self._message_queue = max(1, message_queue)
        self._msg_event: Optional[asyncio.Event] = None
        self._events_paused = False
        self._closed_event: Optional[asyncio.Event] = None
        self._kick_handle: Optional[asyncio.TimerHandle] = None
        self._started = False
        self._closing = False
        #: the error of a component that refused to start (the node is then closed)
        self.start_error: Optional[Error] = None
        self._freed = False
        # coroutine functions run first by close() (golemnet.ergo detaches there)
        self._before_close: List[Callable[[], Awaitable[None]]] = []
        #: multiaddrs the node listens on (filled by :meth:`start` and :meth:`listen`)
        self.addrs: List[str] = []
        #: (request id, error) of unicasts/broadcasts that failed after queuing
        self.send_failures: Deque[Tuple[int, Error]] = collections.deque(maxlen=1024)
        #: messages reported lost in total (an aggregated report counts all it
        #: stands for, while :attr:`send_failures` holds it once)
        self.send_failed_count = 0
        # set by GN_NODE_EV_WRITABLE: a channel's message queue has room again
        self._writable: Optional[asyncio.Event] = None
        #: called with (request id, error) when a queued message fails; None: only recorded
        self.on_send_failed: Optional[Callable[[int, Error], None]] = None
        #: called with an :class:`Event` when a channel opens (inbound or
        #: outbound); a coroutine function runs as a task. None: no call
        self.on_connect: Optional[Callable[[Event], Any]] = None
        #: called with an :class:`Event` when an open channel closed
        self.on_disconnect: Optional[Callable[[Event], Any]] = None
        #: called with an :class:`Event` when identify on a channel finished
        self.on_identify: Optional[Callable[[Event], Any]] = None
        self._event_streams: Set[EventStream] = set()
        self._groups: Dict[str, Group] = {}
        #: the node's reachability as its AutoNAT component judged it:
        #: "unknown" until it did, then "public" or "private" (also an
        #: :class:`Event` of kind "reachability")
        self.reachability: str = "unknown"

    # -- properties
    @property
    def peer_id(self) -> str:
        """The node's peer ID (base58btc, "12D3KooW...")."""
        return str(self._c.peer_id)

    @property
    def started(self) -> bool:
        """True between :meth:`start` and :meth:`close`."""
        return self._started and not self._closing

    def channels(self) -> List[Channel]:
        """The channels known to the node and not closed yet."""
        return [c for c in self._channels.values() if c.state != ChannelState.CLOSED]

    # -- internals
    def _loop_fut(self) -> "asyncio.Future[Any]":
        assert self._loop is not None, "node not started"
        return self._loop.create_future()

    def _check_open(self) -> None:
        if not self._started:
            raise error_from_code(_golemnet_code("GN_ESTATE"), "node not started")
        if self._closing:
            raise ClosedError(_golemnet_code("GN_ECLOSED"))

    def _request(self) -> Tuple[int, "asyncio.Future[Any]"]:
        self._check_open()
        tok = next(self._tokens)
        fut = self._loop_fut()
        self._pending[tok] = fut
        return tok, fut

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        tok = args[-1]
        try:
            return fn(*args)
        except BaseException:
            self._pending.pop(tok, None)
            raise

    async def _await(self, tok: int, fut: "asyncio.Future[Any]", timeout: Optional[float]) -> Any:
        try:
            return await _bounded(asyncio.shield(fut), timeout)
        except asyncio.TimeoutError:
            # the native request still completes; its result is dropped
            fut.add_done_callback(_drop_result)
            raise
        finally:
            if fut.done():
                self._pending.pop(tok, None)

    async def _retry_again(self, fn: Callable[[], Any], timeout: Optional[float]) -> Any:
        """Runs fn, retrying while it raises AgainError (a full queue): a
        full channel queue wakes it with GN_NODE_EV_WRITABLE, other queues
        (commands) with a short backoff."""
        delay = 0.0005
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            if self._writable is not None:
                self._writable.clear()  # fn runs on this thread: no event is missed
            try:
                return fn()
            except AgainError:
                if deadline is not None and loop.time() > deadline:
                    raise
                if self._writable is not None:
                    try:
                        await asyncio.wait_for(self._writable.wait(), delay)
                    except asyncio.TimeoutError:
                        pass
                else:
                    await asyncio.sleep(delay)
                delay = min(delay * 2, 0.02)

    def _kick_soon(self) -> None:
        if self._kick_handle is None and self._loop is not None and not self._freed:
            self._kick_handle = self._loop.call_later(_KICK_RETRY_S, self._do_kick)

    def _do_kick(self) -> None:
        self._kick_handle = None
        if self._freed:
            return
        if self._c.kick() < 0 or self._c.kick_failed:
            self._kick_soon()

    def _channel_for(self, cchan: Any) -> Channel:
        ch = self._channels.get(cchan.id)
        if ch is None:
            ch = Channel(self, cchan)
            if ch.state != ChannelState.CLOSED:
                self._channels[ch.id] = ch
        return ch

    def _wrap_stream(self, cstream: Any) -> Stream:
        st = Stream(self, cstream, self._channel_for(cstream.channel()))
        self._streams[id(cstream)] = st
        return st

    def _on_notes(self) -> None:
        for kind, status, tok, obj, rtt, proto in self._c.poll():
            if kind == _c.NOTE_STREAM:
                st = self._streams.get(id(obj))
                if st is not None:
                    st._wake()
                continue
            if kind == _c.NOTE_INBOUND:
                st = self._wrap_stream(obj)
                handler = self._handlers.get(proto)
                if handler is None or self._closing:
                    self._c_reset(st)
                    continue
                task = asyncio.ensure_future(self._run_handler(handler, st))
                self._handler_tasks.add(task)
                task.add_done_callback(self._handler_tasks.discard)
                continue
            if kind == _c.NOTE_XFER and tok in self._fetches:
                fetch = self._fetches[tok]
                if obj is not None and obj[0] == 5:  # GN_XFER_EV_DONE
                    del self._fetches[tok]
                fetch._push(status, obj)
                continue
            fut = self._pending.pop(tok, None)
            result: Any = None
            if kind == _c.NOTE_XFER:
                result = obj
            elif kind == _c.NOTE_DHT:
                result = obj  # (value or None, peers): also what a timeout found
            elif status == 0:
                if kind == _c.NOTE_DIAL:
                    result = self._channel_for(obj)
                elif kind == _c.NOTE_OPEN:
                    result = self._wrap_stream(obj)
                elif kind == _c.NOTE_PING:
                    result = rtt / 1e9
                elif kind == _c.NOTE_PEER:
                    result = obj
            if fut is None or fut.done():
                if isinstance(result, Stream):
                    self._c_reset(result)  # nobody waits for it any more
                continue
            if status < 0:
                err = error_from_code(status)
                if kind == _c.NOTE_DIAL and proto and isinstance(err, PeerIdError):
                    err.received_peer = proto  # the peer ID that answered instead
                elif kind == _c.NOTE_DIAL and proto:
                    # why in words (a DNS failure: the domain and the reason)
                    err = error_from_code(status, f"{err.name}: {_c.strerror(status)}: {proto}")
                    err.detail = proto  # type: ignore[attr-defined]
                if kind == _c.NOTE_DHT:
                    err.peers = _dht_peers(result)  # type: ignore[attr-defined]
                fut.set_exception(err)
            else:
                fut.set_result(result)

    @staticmethod
    def _c_reset(st: Stream) -> None:
        st._c.close(True)

    async def _run_handler(self, handler: Handler, st: Stream) -> None:
        try:
            await handler(st)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("golemnet: handler for %s failed", st.protocol)
            st._c.close(True)
        finally:
            if not st.closed and not self._freed:
                try:
                    await st.close(timeout=5.0)
                except Exception:  # the node is closing: it resets the stream
                    pass

    def _on_events(self) -> None:
        for ev in self._c.next_events(256):
            etype, status, req, chid, peer, rtt, addr, proto, msg, count = ev
            if etype == _c.EV_MESSAGE and addr in self._groups:
                self._groups[addr]._put(GroupMessage(addr, peer, msg))
            elif etype == _c.EV_MESSAGE:
                self._messages.append(Message(peer, chid, msg))
                assert self._msg_event is not None
                self._msg_event.set()
                if len(self._messages) >= self._message_queue and not self._events_paused:
                    assert self._loop is not None
                    self._loop.remove_reader(self._c.event_fd)
                    self._events_paused = True
            elif etype in (_c.EV_LISTENING, _c.EV_LISTEN_FAILED):
                if etype == _c.EV_LISTENING:
                    self.addrs.append(addr)
                w = self._listen_waiters.pop(req, None)
                if req == 0 and self._start_event is not None:
                    self._start_results.append((status, addr))
                    if len(self._start_results) >= len(self._listen):
                        self._start_event.set()
                elif w is not None and not w.done():
                    if etype == _c.EV_LISTENING:
                        w.set_result(addr)
                    else:
                        w.set_exception(error_from_code(status, f"listen {addr}: "
                                                        f"{_c.err_name(status)}",
                                                        address=addr or None))
            elif etype == _c.EV_START_FAILED:
                self.start_error = error_from_code(
                    status, f"start: {proto}: {_c.err_name(status)}")
                if self._start_event is not None:
                    self._start_results.append((status, f"component {proto}"))
                    self._start_event.set()
            elif etype == _c.EV_CHANNEL_CLOSED:
                ch = self._channels.pop(chid, None)
                if ch is not None:
                    ch._closed.set()
                self._event(etype, status, chid, peer, addr, proto)
            elif etype in (_c.EV_CHANNEL_OPENED, _c.EV_IDENTIFY):
                self._event(etype, status, chid, peer, addr, proto)
            elif etype == _c.EV_REACHABILITY:
                self.reachability = _REACH_NAMES.get(status, "unknown")
                ev = Event("reachability", 0, None, addr, reachability=self.reachability)
                for es in list(self._event_streams):
                    es._put(ev)
            elif etype == _c.EV_WRITABLE:
                if self._writable is not None:
                    self._writable.set()
            elif etype == _c.EV_SEND_FAILED:
                self.send_failed_count += max(1, count)
                err = error_from_code(status)
                ctx = self._unicast_ctx.pop(req, None)
                if ctx is not None:
                    err.add_context(ctx.address, _c.MSG_PROTOCOL_ID, ctx.peer)
                self.send_failures.append((req, err))
                if self.on_send_failed is not None:
                    try:
                        self.on_send_failed(req, err)
                    except Exception:
                        log.exception("golemnet: on_send_failed failed")
            elif etype == _c.EV_CLOSED:
                if self._closed_event is not None:
                    self._closed_event.set()

    def _event(self, etype: int, status: int, chid: int, peer: Optional[str], addr: str,
               proto: str) -> None:
        kind = _EVENT_KIND[etype]
        err = None
        if status < 0:
            err = error_from_code(status, peer=peer,
                                  address=addr if etype == _c.EV_CHANNEL_CLOSED and addr else None,
                                  protocol="/ipfs/id/1.0.0" if etype == _c.EV_IDENTIFY else None)
        ev = Event(kind, chid, peer, addr,
                   muxer=proto if etype == _c.EV_CHANNEL_OPENED else "",
                   agent_version=proto if etype == _c.EV_IDENTIFY else "", error=err)
        for es in list(self._event_streams):
            es._put(ev)
        cb = {"connect": self.on_connect, "disconnect": self.on_disconnect,
              "identify": self.on_identify}[kind]
        if cb is None:
            return
        try:
            res = cb(ev)
            if inspect.isawaitable(res):
                task = asyncio.ensure_future(self._run_callback(res, kind))
                self._handler_tasks.add(task)
                task.add_done_callback(self._handler_tasks.discard)
        except Exception:
            log.exception("golemnet: on_%s failed", kind)

    @staticmethod
    async def _run_callback(aw: Awaitable[Any], kind: str) -> None:
        try:
            await aw
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("golemnet: on_%s failed", kind)

    def events(self, kinds: Optional[Iterable[str]] = None, maxsize: int = 1024) -> EventStream:
        """Subscribes to connection events: returns an :class:`EventStream`,
        an async iterator of :class:`Event` (``async for ev in
        node.events(): ...``), queued from this call on. ``kinds``: a
        subset of :data:`EVENT_KINDS` (None: all). ``maxsize``: events held
        before the oldest is dropped. Several streams may be open at once;
        each gets every event. Iteration ends when the node closes."""
        es = EventStream(self, kinds, maxsize)
        if self._freed:
            es._closed = True
        else:
            self._event_streams.add(es)
        return es

    # -- lifecycle
    async def start(self, timeout: Optional[float] = _DEFAULT_TIMEOUT) -> "Node":
        """Starts the node's thread and its listeners; returns once every
        configured listener reported (raises the first listen error)."""
        if self._started:
            raise error_from_code(_golemnet_code("GN_ESTATE"), "node already started")
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._start_event = asyncio.Event()
        self._msg_event = asyncio.Event()
        self._writable = asyncio.Event()
        self._closed_event = asyncio.Event()
        for proto in self._handlers:
            with _Context(protocol=proto):
                self._c.set_handler(proto, True, 0)
        # namespaces before the start: no record of theirs is refused in between
        ns_waits: List[Tuple[str, "asyncio.Future[Any]"]] = []
        for ns in self._dht_namespaces:
            tok = next(self._tokens)
            fut = loop.create_future()
            self._pending[tok] = fut
            try:
                self._c.dht(_c.DHT_ALLOW, ns.encode(), b"", None, 0, tok)
            except Error as e:
                self._pending.pop(tok, None)
                raise error_from_code(e.code, f"dht_namespaces {ns!r}: {e.message}") from None
            ns_waits.append((ns, fut))
        self._c.start()
        self._started = True
        loop.add_reader(self._c.event_fd, self._on_events)
        loop.add_reader(self._c.bridge_fd, self._on_notes)
        if self._listen:
            try:
                await _bounded(self._start_event.wait(), timeout)
            except BaseException:
                await self.close()
                raise
            for status, addr in self._start_results:
                if status < 0:
                    await self.close()
                    raise error_from_code(status, f"listen {addr}: {_c.err_name(status)}",
                                          address=addr if addr.startswith("/") else None)
        if self.start_error is not None:
            err = self.start_error
            await self.close()
            raise err
        for ns, fut in ns_waits:
            try:
                await _bounded(fut, timeout)
            except Error as e:
                await self.close()
                raise error_from_code(e.code, f"dht_namespaces {ns!r}: {e.message}") from None
            except BaseException:
                await self.close()
                raise
        return self

    async def listen(self, addr: str, timeout: Optional[float] = _DEFAULT_TIMEOUT) -> str:
        """Listens on one more multiaddr; returns the bound address."""
        with _Context(address=addr):
            self._check_open()
            req = self._c.listen(addr)
            fut: "asyncio.Future[str]" = self._loop_fut()
            self._listen_waiters[req] = fut
            return await _bounded(fut, timeout)

    async def close(self, timeout: float = 10.0) -> None:
        """Closes every listener, channel and stream, then frees the native
        node. Pending operations fail with :class:`~golemnet.CanceledError`
        or :class:`~golemnet.ClosedError`. Idempotent."""
        if self._freed:
            return
        for fn in list(self._before_close):
            try:
                await fn()
            except Exception:  # a hook's failure does not keep the node open
                log.exception("golemnet: close hook %r failed", fn)
        self._closing = True
        loop = self._loop
        if self._started and loop is not None:
            will_close = self._c.close()
            if will_close and self._closed_event is not None:
                try:
                    await asyncio.wait_for(self._closed_event.wait(), timeout)
                except asyncio.TimeoutError:
                    log.warning("golemnet: node %s did not close in %.1f s", self.peer_id, timeout)
            try:
                loop.remove_reader(self._c.event_fd)
            except (ValueError, OSError):
                pass
            loop.remove_reader(self._c.bridge_fd)
        self._c.free()
        self._freed = True
        if self._kick_handle is not None:
            self._kick_handle.cancel()
            self._kick_handle = None
        if self._started:
            self._on_notes()  # completions queued during the close
        for fetch in list(self._fetches.values()):
            fetch._push(_golemnet_code("GN_ECANCELED"), None)
        self._fetches.clear()
        for fut in list(self._pending.values()):
            if not fut.done():
                fut.set_exception(ClosedError(_golemnet_code("GN_ECLOSED")))
        self._pending.clear()
        for w in self._listen_waiters.values():
            if not w.done():
                w.set_exception(ClosedError(_golemnet_code("GN_ECLOSED")))
        for st in list(self._streams.values()):
            st._wake()
        for ch in self._channels.values():
            ch._closed.set()
        self._channels.clear()
        tasks = [t for t in self._handler_tasks if not t.done()]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)
        if self._msg_event is not None:
            self._msg_event.set()
        for es in list(self._event_streams):
            es._wake()
        for g in list(self._groups.values()):
            g._wake()

    async def __aenter__(self) -> "Node":
        if not self._started:
            await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    # -- handlers
    async def set_handler(self, protocol_id: str, handler: Optional[Handler],
                          timeout: Optional[float] = _DEFAULT_TIMEOUT) -> None:
        """Serves ``protocol_id``: every inbound stream negotiated for it is
        passed to ``await handler(stream)`` in a new task; the stream is
        closed when the handler returns. ``None`` removes the handler.
        May be called before or after :meth:`start`."""
        if self._closing:
            raise ClosedError(_golemnet_code("GN_ECLOSED"))
        add = handler is not None
        if add and protocol_id in self._handlers:
            self._handlers[protocol_id] = handler  # type: ignore[assignment]
            return
        if not self._started:
            if add:
                self._handlers[protocol_id] = handler  # type: ignore[assignment]
            else:
                self._handlers.pop(protocol_id, None)
            return
        with _Context(protocol=protocol_id):
            tok, fut = self._request()
            rc = self._call(self._c.set_handler, protocol_id, add, tok)
            if rc == 0:
                self._pending.pop(tok, None)
            else:
                await self._await(tok, fut, timeout)
        if add:
            self._handlers[protocol_id] = handler  # type: ignore[assignment]
        else:
            self._handlers.pop(protocol_id, None)

    # -- resource transfer (docs/transfer.md, golemnet/transfer.h)
    async def share(self, path: str, timeout: Optional[float] = None) -> str:
        """Shares the file @path under its content address and returns the
        CID text ("bafk..."); the node serves it until it closes. Hashing
        reads the whole file (on the library's thread pool). Raises
        :class:`~golemnet.NotSupportedError` (built without the transfer
        component), :class:`~golemnet.NetworkError` subclasses for I/O
        (GN_EIO: missing or unreadable file)."""
        tok, fut = self._request()
        self._call(self._c.xfer, "share", str(path), None, [], 0, 0, tok)
        res = await self._await(tok, fut, timeout)
        return res[3]

    async def provide(self, cid: str, timeout: Optional[float] = _DEFAULT_TIMEOUT) -> None:
        """Announces this node as a provider of @cid in the DHT (a provider
        record under the CID's multihash). Raises
        :class:`~golemnet.NoRouteError` when no DHT peer took it."""
        tok, fut = self._request()
        self._call(self._c.xfer, "provide", cid, None, [], 0, 0, tok)
        await self._await(tok, fut, timeout)

    async def find_providers_of(self, cid: str, max: int = 16,
                                timeout: Optional[float] = _DEFAULT_TIMEOUT) -> List[str]:
        """Providers of @cid found in the DHT, as multiaddrs with /p2p/."""
        tok, fut = self._request()
        self._call(self._c.xfer, "find", cid, None, [], int(max), 0, tok)
        res = await self._await(tok, fut, timeout)
        return list(res[4])

    def fetch(self, cid: str, path: str, providers: Sequence[str] = (),
              memory_chunks: int = 0, progress_interval: float = 0.25) -> "Fetch":
        """Downloads @cid to @path from @providers (multiaddrs with /p2p/;
        none: the DHT is asked). Returns a :class:`Fetch`, an async iterator
        of :class:`TransferEvent` ("progress", "peer_up", "peer_down",
        "peer_banned", and last "done"); a failed download raises its error
        from the iterator (``err.event`` is the "done" event), also a bad
        argument (:class:`~golemnet.ParseError` for a malformed CID or a
        provider without /p2p/). Resumes from PATH.part / PATH.part.state
        when they are there. Progress events come every @progress_interval
        seconds; @memory_chunks bounds the chunks held in memory (0: 48)."""
        self._check_open()
        tok = next(self._tokens)
        f = Fetch(self, tok, asyncio.get_running_loop())
        self._fetches[tok] = f
        try:
            self._c.xfer("fetch", cid, str(path), [str(p) for p in providers],
                         int(memory_chunks), int(progress_interval * 1000), tok)
        except BaseException:
            self._fetches.pop(tok, None)
            raise
        return f

    # -- requests
    async def dial(self, addr: str, timeout: Optional[float] = _DEFAULT_TIMEOUT) -> Channel:
        """Dials a multiaddr (with or without /p2p/<id>) and returns the open
        :class:`Channel` (an open channel to the same peer is reused).
        Raises :class:`~golemnet.ParseError` for a malformed address,
        :class:`~golemnet.RefusedError`, :class:`~golemnet.PeerIdError`
        (``.peer`` the /p2p/ id dialled, ``.received_peer`` the one that
        answered), :class:`~golemnet.NegotiationError`, ..."""
        with _addr_context(addr):
            tok, fut = self._request()
            self._call(self._c.dial, addr, tok)
            return await self._await(tok, fut, timeout)

    async def ping(self, target: Union[str, Channel],
                   timeout: Optional[float] = _DEFAULT_TIMEOUT) -> float:
        """Pings a multiaddr (dialed if needed) or a channel; returns the
        round trip in seconds."""
        ch = target if isinstance(target, Channel) else await self.dial(target, timeout)
        return await ch.ping(timeout)

    async def unicast(self, to: Union[str, Channel], data: Union[bytes, bytearray, memoryview],
                      timeout: Optional[float] = _DEFAULT_TIMEOUT) -> int:
        """Sends one /golem/msg/1.0.0 message to a multiaddr (dialed if
        needed), a connected peer ID or a :class:`Channel`. Returns the
        request id once queued (waits while queues are full); a delivery
        failure later is recorded in :attr:`send_failures` with that id."""
        if isinstance(to, Channel):
            self._check_open()
            await to.send(data, timeout)
            return 0
        with _addr_context(to) as ctx:
            self._check_open()
            req = int(await self._retry_again(lambda: self._c.unicast(to, data), timeout))
        self._unicast_ctx[req] = ctx
        if len(self._unicast_ctx) > _UNICAST_CTX_MAX:
            self._unicast_ctx.popitem(last=False)
        return req

    async def broadcast(self, data: Union[bytes, bytearray, memoryview],
                        timeout: Optional[float] = _DEFAULT_TIMEOUT) -> int:
        """Sends one message to every open channel; returns the request id."""
        self._check_open()
        return int(await self._retry_again(lambda: self._c.broadcast(data), timeout))

    def _pause_events(self) -> None:
        if not self._events_paused and self._loop is not None and not self._freed:
            self._loop.remove_reader(self._c.event_fd)
            self._events_paused = True

    def _maybe_resume_events(self) -> None:
        """Reads events again once every reader (recv, groups) is at most half full."""
        if not self._events_paused or self._freed or self._loop is None:
            return
        if len(self._messages) > self._message_queue // 2:
            return
        if any(len(g._queue) > g._maxsize // 2 for g in self._groups.values()):
            return
        self._events_paused = False
        self._loop.add_reader(self._c.event_fd, self._on_events)
        self._loop.call_soon(self._on_events)

    def dial_group(self, addr: str, maxsize: int = 1024) -> Group:
        """Opens a multicast channel on a group: ``addr`` is a group address
        "/pubsub/<topic>" or a bare topic (docs/addresses.md). The node
        subscribes to the topic (it needs the pubsub component:
        ``protocol_components="/meshsub/1.1.0"``); :meth:`Group.close`
        unsubscribes. Raises ParseError (empty or too long topic),
        ExistsError (a group on the topic is open on this node)."""
        self._check_open()
        if not addr.startswith(_c.GROUP_ADDR_PREFIX):
            addr = _c.GROUP_ADDR_PREFIX + addr
        with _Context(address=addr):
            cg = self._c.dial_group(addr)
        g = Group(self, cg, addr, maxsize)
        self._groups[addr] = g
        return g

    async def recv(self, timeout: Optional[float] = None) -> Message:
        """The next received message (:class:`Message`). Raises
        :class:`~golemnet.ClosedError` once the node is closed and no
        message is left, :class:`asyncio.TimeoutError` after ``timeout``."""
        async def take() -> Message:
            while True:
                if self._messages:
                    m = self._messages.popleft()
                    self._maybe_resume_events()
                    return m
                if self._closing or not self._started:
                    raise ClosedError(_golemnet_code("GN_ECLOSED"))
                assert self._msg_event is not None
                self._msg_event.clear()
                await self._msg_event.wait()
        return await _bounded(take(), timeout)

    async def peer_info(self, peer_id: str,
                        timeout: Optional[float] = _DEFAULT_TIMEOUT) -> PeerInfo:
        """What the node's peer store knows of ``peer_id`` (:class:`PeerInfo`),
        read on the network thread. After an ``identify`` event it holds
        the peer's agent, listen addresses and protocols. Raises
        :class:`~golemnet.NotFoundError` for a peer the node knows nothing
        of, :class:`~golemnet.ParseError` for a malformed peer ID."""
        with _Context(peer=peer_id):
            tok, fut = self._request()
            self._call(self._c.peer_info, peer_id, tok)
            d = await self._await(tok, fut, timeout)
        return PeerInfo(d["peer_id"], bool(d["identified"]), d["agent_version"],
                        d["observed_addr"], tuple(d["addrs"]), tuple(d["protocols"]))

    # -- the DHT (docs/python.md "The DHT")
    async def _dht(self, what: str, op: int, key: Union[bytes, str], value: bytes = b"",
                   peer: Optional[str] = None, max: int = 0,
                   timeout: Optional[float] = _DEFAULT_TIMEOUT) -> Tuple[Optional[bytes],
                                                                          List[DhtPeer]]:
        kb = _dht_key(key)
        try:
            tok, fut = self._request()
            self._call(self._c.dht, op, kb, bytes(value), peer, max, tok)
            v, peers = await self._await(tok, fut, timeout)
        except Error as e:
            err = error_from_code(e.code, f"{what}: {e.message}", peer=peer)
            err.peers = getattr(e, "peers", [])  # type: ignore[attr-defined]
            raise err from None
        return v, _dht_peers((v, peers))

    async def dht_get(self, key: Union[bytes, str],
                      timeout: Optional[float] = _DEFAULT_TIMEOUT) -> bytes:
        """The best valid record stored under ``key`` (bytes, b"/<ns>/...";
        a str is UTF-8 encoded). Raises :class:`~golemnet.NotFoundError`
        (no peer had a valid record), :class:`~golemnet.NoRouteError` (no
        peer to ask, none stored here), :class:`~golemnet.TimeoutError`,
        :class:`~golemnet.InvalidArgumentError` (empty key, longer than
        1024 bytes)."""
        v, _ = await self._dht(f"dht_get {key!r}", _c.DHT_GET, key, timeout=timeout)
        return v if v is not None else b""

    async def dht_put(self, key: Union[bytes, str], value: Union[bytes, bytearray, memoryview],
                      timeout: Optional[float] = _DEFAULT_TIMEOUT) -> None:
        """Stores ``value`` (at most 65536 bytes) under ``key`` here and at
        the k peers closest to it. Raises :class:`~golemnet.NoRouteError`
        (kept here only: no peer took it), :class:`~golemnet.NotSupportedError`
        (no validator for the key's namespace: see
        :meth:`dht_allow_namespace`), :class:`~golemnet.InvalidArgumentError`
        (the validator refused it), :class:`~golemnet.LimitError` (the
        local store is full), :class:`~golemnet.TimeoutError`."""
        await self._dht(f"dht_put {key!r}", _c.DHT_PUT, key, bytes(value), timeout=timeout)

    async def dht_provide(self, key: Union[bytes, str],
                          timeout: Optional[float] = _DEFAULT_TIMEOUT) -> None:
        """Announces this node as a provider of ``key`` (a multihash, e.g. a
        CID's) to the k peers closest to it; the router republishes it while
        the node runs. Raises :class:`~golemnet.NoRouteError` (recorded
        here only), :class:`~golemnet.LimitError`, :class:`~golemnet.TimeoutError`."""
        await self._dht(f"dht_provide {key!r}", _c.DHT_PROVIDE, key, timeout=timeout)

    async def dht_find_providers(self, key: Union[bytes, str], max: int = 20,
                                 timeout: Optional[float] = _DEFAULT_TIMEOUT) -> List[DhtPeer]:
        """Up to ``max`` (>= 1) providers of ``key``: a list of
        ``(peer_id, [multiaddr, ...])``, empty when nobody provides it.
        Raises :class:`~golemnet.NoRouteError`, :class:`~golemnet.TimeoutError`
        (its ``peers`` attribute holds the providers found before)."""
        if max < 1:
            raise error_from_code(_golemnet_code("GN_EINVAL"), "dht_find_providers: max >= 1")
        _, peers = await self._dht(f"dht_find_providers {key!r}", _c.DHT_FIND_PROVIDERS, key,
                                   max=max, timeout=timeout)
        return peers

    async def dht_closest_peers(self, key: Union[bytes, str],
                                timeout: Optional[float] = _DEFAULT_TIMEOUT) -> List[DhtPeer]:
        """The k peers closest to ``key`` (any bytes; for a peer, its ID's
        bytes), closest first, as ``(peer_id, [multiaddr, ...])``. Raises
        :class:`~golemnet.NoRouteError`, :class:`~golemnet.TimeoutError`
        (with ``peers``)."""
        _, peers = await self._dht(f"dht_closest_peers {key!r}", _c.DHT_CLOSEST, key,
                                   timeout=timeout)
        return peers

    async def dht_find_peer(self, peer_id: str,
                            timeout: Optional[float] = _DEFAULT_TIMEOUT) -> List[str]:
        """The multiaddrs of ``peer_id``: the peer store, then the routers
        (the path a dial to a bare /p2p/<id> takes). Raises
        :class:`~golemnet.NoRouteError` (nobody found it),
        :class:`~golemnet.TimeoutError`, :class:`~golemnet.ParseError`
        (not a peer ID)."""
        _, peers = await self._dht(f"dht_find_peer {peer_id}", _c.DHT_FIND_PEER, b"-",
                                   peer=peer_id, timeout=timeout)
        return peers[0][1] if peers else []

    async def dht_allow_namespace(self, namespace: str,
                                  timeout: Optional[float] = _DEFAULT_TIMEOUT) -> None:
        """Makes the DHT accept every record under ``/<namespace>/...``
        (put, get and the records peers store here; of several values the
        lexicographically greatest bytes win). The validator is native code: Python
        validators would run on the network thread, which must never wait
        for the GIL. To cover records that arrive right after the start,
        pass ``dht_namespaces`` to the constructor instead. Raises
        :class:`~golemnet.InvalidArgumentError` (empty, '/' in it, 64 bytes
        or more), :class:`~golemnet.NotSupportedError` (no DHT router),
        :class:`~golemnet.LimitError` (too many namespaces)."""
        await self._dht(f"dht_allow_namespace {namespace!r}", _c.DHT_ALLOW,
                        namespace.encode(), timeout=timeout)

    def configure(self, option: int, value: int) -> None:
        """Changes a run-time option (golemnet._golemnet.OPT_*)."""
        self._c.configure(option, value)

    def __repr__(self) -> str:
        return f"<golemnet.Node {self.peer_id} {self.addrs}>"


_XFER_TYPES = {1: "progress", 2: "peer_up", 3: "peer_down", 4: "peer_banned", 5: "done"}


@dataclasses.dataclass
class TransferEvent:
    """One event of a download (:meth:`Node.fetch`). Byte counts in bytes,
    rate in bytes/s, eta in seconds (None: unknown)."""
    type: str
    status: int
    bytes_done: int
    bytes_total: int
    bytes_resumed: int
    chunks_done: int
    chunks_total: int
    rate: int
    eta: Optional[float]
    peers: int
    peers_banned: int
    bytes_received: int
    peer: Optional[str]
    detail: Optional[str]


class Fetch:
    """A running download: ``async for ev in fetch`` gives its
    :class:`TransferEvent` objects, the last one of type "done";
    :meth:`cancel` stops it (the partial state stays for a resume)."""

    def __init__(self, node: "Node", tok: int, loop: asyncio.AbstractEventLoop) -> None:
        self._node = node
        self._tok = tok
        self._q: Deque[Tuple[int, Any]] = collections.deque()
        self._waiter: Optional["asyncio.Future[None]"] = None
        self._loop = loop
        self._ended = False
        self.result: Optional[TransferEvent] = None  #: the "done" event, once there

    def _push(self, status: int, obj: Any) -> None:
        self._q.append((status, obj))
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def cancel(self) -> None:
        """Cancels the download; the iterator then ends with CanceledError."""
        if not self._ended and not self._node._closing:
            self._node._c.xfer("cancel", None, None, [], 0, 0, self._tok)

    def __aiter__(self) -> "Fetch":
        return self

    async def __anext__(self) -> TransferEvent:
        if self._ended:
            raise StopAsyncIteration
        while not self._q:
            self._waiter = self._loop.create_future()
            await self._waiter
            self._waiter = None
        status, obj = self._q.popleft()
        if obj is None:
            self._ended = True
            raise error_from_code(status, "the download ended")
        kind, v, peer, detail, _ = obj
        ev = TransferEvent(_XFER_TYPES.get(kind, str(kind)), status, v[0], v[1], v[2], v[3],
                           v[4], v[5], (v[6] - 1) / 1000 if v[6] else None, v[7], v[8], v[9],
                           peer, detail)
        if ev.type == "done":
            self._ended = True
            self.result = ev
            if status < 0:
                err = error_from_code(status, f"fetch: {detail}" if detail else None)
                err.event = ev  # type: ignore[attr-defined]
                raise err
        return ev

    async def wait(self) -> TransferEvent:
        """Runs the download to its end; returns the "done" event."""
        async for _ in self:
            pass
        assert self.result is not None
        return self.result


# Node(limits=...): name -> (option, scale of the value); times in seconds.
_LIMITS: Dict[str, Tuple[int, int]] = {
    "conn_high_water": (_c.OPT_CONN_HIGH_WATER, 1),
    "conn_low_water": (_c.OPT_CONN_LOW_WATER, 1),
    "conn_grace": (_c.OPT_CONN_GRACE_MS, 1000),
    "max_upgrading": (_c.OPT_MAX_UPGRADING, 1),
    "max_connections_per_ip": (_c.OPT_MAX_CONNECTIONS_PER_IP, 1),
    "max_upgrading_per_ip": (_c.OPT_MAX_UPGRADING_PER_IP, 1),
    "first_byte_timeout": (_c.OPT_FIRST_BYTE_TIMEOUT_MS, 1000),
}


def _dht_key(key: Union[bytes, bytearray, memoryview, str]) -> bytes:
    return key.encode() if isinstance(key, str) else bytes(key)


def _dht_peers(result: Any) -> List[DhtPeer]:
    if not result:
        return []
    return [(pid, list(addrs)) for pid, addrs in result[1]]


def _drop_result(fut: "asyncio.Future[Any]") -> None:
    if not fut.cancelled():
        exc = fut.exception()
        if exc is None:
            res = fut.result()
            if isinstance(res, Stream):
                res._c.close(True)
