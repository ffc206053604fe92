"""A blocking golemnet API for scripts that do not use asyncio.

Each :class:`Node` runs a private asyncio event loop on a background thread
(beside the node's native network thread) and every method waits for the
matching coroutine of :mod:`golemnet` there, with a timeout::

    from golemnet.blocking import Node

    with Node(listen=["/ip4/127.0.0.1/tcp/0"]) as a, Node() as b:
        a.set_handler("/echo/py/1.0.0", lambda s: s.write(s.read_all()))
        print("rtt", b.ping(a.addrs[0]))

Handlers are plain functions called with a blocking :class:`Stream` in a
worker thread (or coroutine functions, run on the node's event loop with
the asyncio :class:`golemnet.Stream`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
from typing import (Any, Awaitable, Callable, Iterable, Iterator, List, Optional, Sequence,
                    TypeVar, Union)

from . import _aio

__all__ = ["Node", "Channel", "Stream", "EventStream", "DEFAULT_TIMEOUT"]

#: Seconds a blocking call waits by default.
DEFAULT_TIMEOUT = 30.0

T = TypeVar("T")


class _LoopThread:
    """An asyncio event loop running on its own daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="golemnet-asyncio", daemon=True)
        self.thread.start()
        self._ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()

    def run(self, aw: Awaitable[T], timeout: Optional[float]) -> T:
        if threading.current_thread() is self.thread:
            raise RuntimeError("golemnet.blocking called from its own event loop thread; "
                               "use the asyncio API there")
        fut = asyncio.run_coroutine_threadsafe(_as_coro(aw), self.loop)
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise TimeoutError(f"golemnet.blocking: no result in {timeout} s") from None

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        if not self.thread.is_alive():
            self.loop.close()


async def _as_coro(aw: Awaitable[T]) -> T:
    return await aw


async def _call(fn: Callable[..., T], *args: Any) -> T:
    """Runs a plain function on the loop thread."""
    return fn(*args)


class Stream:
    """Blocking view of a :class:`golemnet.Stream`."""

    def __init__(self, lt: _LoopThread, stream: _aio.Stream) -> None:
        self._lt = lt
        #: the underlying asyncio stream
        self.aio = stream
        #: the negotiated protocol id
        self.protocol = stream.protocol

    def read(self, n: int = 65536, timeout: Optional[float] = DEFAULT_TIMEOUT) -> bytes:
        """Up to ``n`` bytes; ``b""`` at the end of the stream."""
        return self._lt.run(self.aio.read(n), timeout)

    def readexactly(self, n: int, timeout: Optional[float] = DEFAULT_TIMEOUT) -> bytes:
        """Exactly ``n`` bytes (asyncio.IncompleteReadError if the stream ends first)."""
        return self._lt.run(self.aio.readexactly(n), timeout)

    def read_all(self, timeout: Optional[float] = DEFAULT_TIMEOUT) -> bytes:
        """Everything until the end of the stream."""
        return self._lt.run(self.aio.read_all(), timeout)

    def write(self, data: Union[bytes, bytearray, memoryview],
              timeout: Optional[float] = DEFAULT_TIMEOUT) -> None:
        """Queues ``data``; waits while the write window is full."""
        self._lt.run(self.aio.write(data), timeout)

    def writev(self, buffers: Sequence[Union[bytes, bytearray, memoryview]],
               timeout: Optional[float] = DEFAULT_TIMEOUT) -> None:
        """Queues several buffers in one call."""
        self._lt.run(self.aio.writev(buffers), timeout)

    def drain(self, timeout: Optional[float] = DEFAULT_TIMEOUT) -> None:
        """Waits until every queued byte was written."""
        self._lt.run(self.aio.drain(), timeout)

    def close_write(self, timeout: Optional[float] = DEFAULT_TIMEOUT) -> None:
        """Half-closes the stream."""
        self._lt.run(self.aio.close_write(), timeout)

    def close(self, timeout: Optional[float] = DEFAULT_TIMEOUT) -> None:
        """Closes after the queued bytes were written."""
        self._lt.run(self.aio.close(timeout), None if timeout is None else timeout + 1)

    def reset(self, timeout: Optional[float] = DEFAULT_TIMEOUT) -> None:
        """Aborts the stream."""
        self._lt.run(self.aio.reset(timeout), None if timeout is None else timeout + 1)

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Channel:
    """Blocking view of a :class:`golemnet.Channel`."""

    def __init__(self, lt: _LoopThread, channel: _aio.Channel) -> None:
        self._lt = lt
        #: the underlying asyncio channel
        self.aio = channel
        #: the channel id
        self.id = channel.id
        #: the remote peer ID
        self.peer_id = channel.peer_id

    @property
    def state(self) -> _aio.ChannelState:
        """The channel's state."""
        return self.aio.state

    @property
    def metrics(self) -> _aio.ChannelMetrics:
        """The channel's counters."""
        return self.aio.metrics

    def open_stream(self, protocol_id: str, timeout: Optional[float] = DEFAULT_TIMEOUT) -> Stream:
        """Opens a stream for ``protocol_id``."""
        return Stream(self._lt, self._lt.run(self.aio.open_stream(protocol_id), timeout))

    def ping(self, timeout: Optional[float] = DEFAULT_TIMEOUT) -> float:
        """Round trip in seconds."""
        return self._lt.run(self.aio.ping(), timeout)

    def send(self, data: Union[bytes, bytearray, memoryview],
             timeout: Optional[float] = DEFAULT_TIMEOUT) -> None:
        """Sends one /golem/msg/1.0.0 message."""
        self._lt.run(self.aio.send(data), timeout)

    def close(self, timeout: Optional[float] = DEFAULT_TIMEOUT) -> None:
        """Closes the channel."""
        self._lt.run(self.aio.close(timeout), None if timeout is None else timeout + 1)


class EventStream:
    """Blocking view of a :class:`golemnet.EventStream`: an iterator of
    :class:`golemnet.Event` (``for ev in node.events(): ...``); iteration
    ends when the node has closed."""

    def __init__(self, lt: _LoopThread, es: _aio.EventStream,
                 timeout: Optional[float]) -> None:
        self._lt = lt
        #: the underlying asyncio event stream
        self.aio = es
        #: seconds each step of the iteration waits (None: no bound); then
        #: :class:`TimeoutError`
        self.timeout = timeout

    def __iter__(self) -> Iterator[_aio.Event]:
        return self

    def __next__(self) -> _aio.Event:
        ev = self.next(self.timeout)
        if ev is None:
            raise StopIteration
        return ev

    def next(self, timeout: Optional[float] = DEFAULT_TIMEOUT) -> Optional[_aio.Event]:
        """The next event, or None once the stream has ended (the node was
        closed: events not taken before are gone); waits up to ``timeout``
        seconds (then :class:`TimeoutError`)."""
        if self._lt.loop.is_closed():
            return None
        try:
            return self._lt.run(self.aio.__anext__(), timeout)
        except StopAsyncIteration:
            return None

    @property
    def dropped(self) -> int:
        """Events dropped because the queue was full."""
        return self.aio.dropped

    def close(self) -> None:
        """Ends the subscription. Idempotent."""
        if not self._lt.loop.is_closed():
            self._lt.loop.call_soon_threadsafe(self.aio.close)

    def __enter__(self) -> "EventStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _outer(timeout: Optional[float]) -> Optional[float]:
    """The loop thread's bound around a call bounded by ``timeout`` itself."""
    return None if timeout is None else timeout + 1


class Node:
    """Blocking golemnet node; takes the arguments of :class:`golemnet.Node`."""

    def __init__(self, listen: Sequence[str] = (), **kwargs: Any) -> None:
        self._lt = _LoopThread()
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=16,
                                                           thread_name_prefix="golemnet-handler")
        try:
            #: the underlying asyncio node
            self.aio = _aio.Node(listen, **kwargs)
        except BaseException:
            self._shutdown_threads()
            raise

    def _shutdown_threads(self) -> None:
        self._lt.stop()
        self._pool.shutdown(wait=False, cancel_futures=True)

    @property
    def peer_id(self) -> str:
        """The node's peer ID."""
        return self.aio.peer_id

    @property
    def addrs(self) -> List[str]:
        """The addresses the node listens on."""
        return list(self.aio.addrs)

    def start(self, timeout: Optional[float] = DEFAULT_TIMEOUT) -> "Node":
        """Starts the node and its listeners."""
        self._lt.run(self.aio.start(), timeout)
        return self

    def close(self, timeout: float = 10.0) -> None:
        """Closes the node and stops its threads. Idempotent."""
        if not self._lt.loop.is_closed():
            try:
                self._lt.run(self.aio.close(timeout), timeout + 10)
            finally:
                self._shutdown_threads()

    def set_handler(self, protocol_id: str,
                    handler: Optional[Callable[[Stream], Any]],
                    timeout: Optional[float] = DEFAULT_TIMEOUT) -> None:
        """Serves ``protocol_id`` with ``handler(stream)``: a plain function
        (run in a worker thread with a blocking :class:`Stream`) or a
        coroutine function (run on the node's loop with a golemnet.Stream)."""
        wrapped: Optional[_aio.Handler] = None
        if handler is not None and inspect.iscoroutinefunction(handler):
            wrapped = handler
        elif handler is not None:
            fn = handler
            lt, pool = self._lt, self._pool

            async def run(st: _aio.Stream) -> None:
                await asyncio.get_running_loop().run_in_executor(pool, fn, Stream(lt, st))
            wrapped = run
        self._lt.run(self.aio.set_handler(protocol_id, wrapped), timeout)

    def dial(self, addr: str, timeout: Optional[float] = DEFAULT_TIMEOUT) -> Channel:
        """Dials ``addr``; returns the channel."""
        return Channel(self._lt, self._lt.run(self.aio.dial(addr), timeout))

    def ping(self, target: Union[str, Channel], timeout: Optional[float] = DEFAULT_TIMEOUT) -> float:
        """Round trip to a multiaddr or channel, in seconds."""
        t = target.aio if isinstance(target, Channel) else target
        return self._lt.run(self.aio.ping(t), timeout)

    def unicast(self, to: Union[str, Channel], data: Union[bytes, bytearray, memoryview],
                timeout: Optional[float] = DEFAULT_TIMEOUT) -> int:
        """Sends one message; returns the request id."""
        t = to.aio if isinstance(to, Channel) else to
        return self._lt.run(self.aio.unicast(t, data), timeout)

    def broadcast(self, data: Union[bytes, bytearray, memoryview],
                  timeout: Optional[float] = DEFAULT_TIMEOUT) -> int:
        """Sends one message to every open channel."""
        return self._lt.run(self.aio.broadcast(data), timeout)

    def events(self, kinds: Optional[Iterable[str]] = None, maxsize: int = 1024,
               timeout: Optional[float] = None) -> EventStream:
        """Subscribes to connection events (see :meth:`golemnet.Node.events`);
        ``timeout`` bounds each step of the iteration."""
        return EventStream(self._lt, self._lt.run(_call(self.aio.events, kinds, maxsize),
                                                  DEFAULT_TIMEOUT), timeout)

    def peer_info(self, peer_id: str, timeout: Optional[float] = DEFAULT_TIMEOUT) -> _aio.PeerInfo:
        """What the peer store knows of ``peer_id`` (see :meth:`golemnet.Node.peer_info`)."""
        return self._lt.run(self.aio.peer_info(peer_id), timeout)

    # -- the DHT: see golemnet.Node.dht_*; the timeout bounds the call
    def dht_get(self, key: Union[bytes, str],
                timeout: Optional[float] = DEFAULT_TIMEOUT) -> bytes:
        """The best valid record under ``key`` (see :meth:`golemnet.Node.dht_get`)."""
        return self._lt.run(self.aio.dht_get(key, timeout), _outer(timeout))

    def dht_put(self, key: Union[bytes, str], value: Union[bytes, bytearray, memoryview],
                timeout: Optional[float] = DEFAULT_TIMEOUT) -> None:
        """Stores a record (see :meth:`golemnet.Node.dht_put`)."""
        self._lt.run(self.aio.dht_put(key, value, timeout), _outer(timeout))

    def dht_provide(self, key: Union[bytes, str],
                    timeout: Optional[float] = DEFAULT_TIMEOUT) -> None:
        """Announces this node as a provider of ``key`` (see :meth:`golemnet.Node.dht_provide`)."""
        self._lt.run(self.aio.dht_provide(key, timeout), _outer(timeout))

    def dht_find_providers(self, key: Union[bytes, str], max: int = 20,
                           timeout: Optional[float] = DEFAULT_TIMEOUT) -> List[_aio.DhtPeer]:
        """Providers of ``key`` (see :meth:`golemnet.Node.dht_find_providers`)."""
        return self._lt.run(self.aio.dht_find_providers(key, max, timeout), _outer(timeout))

    def dht_closest_peers(self, key: Union[bytes, str],
                          timeout: Optional[float] = DEFAULT_TIMEOUT) -> List[_aio.DhtPeer]:
        """The peers closest to ``key`` (see :meth:`golemnet.Node.dht_closest_peers`)."""
        return self._lt.run(self.aio.dht_closest_peers(key, timeout), _outer(timeout))

    def dht_find_peer(self, peer_id: str,
                      timeout: Optional[float] = DEFAULT_TIMEOUT) -> List[str]:
        """The multiaddrs of ``peer_id`` (see :meth:`golemnet.Node.dht_find_peer`)."""
        return self._lt.run(self.aio.dht_find_peer(peer_id, timeout), _outer(timeout))

    def dht_allow_namespace(self, namespace: str,
                            timeout: Optional[float] = DEFAULT_TIMEOUT) -> None:
        """Accepts every record under ``/<namespace>/`` (see
        :meth:`golemnet.Node.dht_allow_namespace`)."""
        self._lt.run(self.aio.dht_allow_namespace(namespace, timeout), _outer(timeout))

    def recv(self, timeout: Optional[float] = DEFAULT_TIMEOUT) -> _aio.Message:
        """The next received message."""
        return self._lt.run(self.aio.recv(timeout), None if timeout is None else timeout + 1)

    def __enter__(self) -> "Node":
        if not self.aio.started:
            self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
