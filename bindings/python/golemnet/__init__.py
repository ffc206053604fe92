"""golemnet: composable network stacks, wire-compatible with libp2p.

Python bindings of the golemnet C library. The network runs on each node's
own native thread; Python talks to it through a thread bridge (bounded
queues plus wakeup file descriptors watched by asyncio), so Python code,
even code that holds the GIL for a while, never stalls the network.

Quick start::

    import asyncio, golemnet

    async def main():
        async with golemnet.Node(listen=["/ip4/127.0.0.1/tcp/0"]) as a, \\
                   golemnet.Node() as b:
            async def echo(stream):
                await stream.write(await stream.read_all())
            await a.set_handler("/echo/py/1.0.0", echo)
            ch = await b.dial(a.addrs[0])
            print("rtt", await ch.ping())

    asyncio.run(main())

Modules: :mod:`golemnet.errors` (exceptions), :mod:`golemnet.blocking`
(the same API without asyncio), :mod:`golemnet.ergo` (Ergo processes on a
node with the ergo component), :mod:`golemnet._golemnet` (the native
layer).
"""

from . import errors
from ._aio import (EVENT_KINDS, PROTOCOLS, Channel, ChannelMetrics, ChannelState, Event,
                   DhtPeer, EventStream, Fetch, Group, GroupMessage, GroupMetrics, Handler,
                   Message, Node, PeerInfo, Stream, TransferEvent)
from ._golemnet import MSG_PROTOCOL_ID, peer_id_from_seed
from ._golemnet import generate_key_file, key_file_info  # key types (issue 17)
from ._golemnet import version as _native_version
from .errors import (AddressInUseError, AgainError, CanceledError, ClosedError, CryptoError,
                     EndOfStreamError, Error, ExistsError, GenericError, HandshakeError,
                     InvalidArgumentError, LimitError, NegotiationError, NetworkError,
                     NoRouteError, NoTransportError, NotFoundError, NotSupportedError,
                     OutOfMemoryError,
                     ParseError, PeerError, PeerIdError, PipeError, ProtocolError, RefusedError,
                     ResetError, StateError, StreamResetError, TimeoutError, TooBigError,
                     UnreachableError, error_class, error_from_code)

#: Version of the C library the extension was built with.
__version__: str = _native_version()

__all__ = [
    "Node", "Channel", "Stream", "Message", "ChannelState", "ChannelMetrics", "Handler",
    "Event", "EventStream", "EVENT_KINDS", "PeerInfo", "DhtPeer", "TransferEvent", "Fetch",
    "Group", "GroupMessage", "GroupMetrics",
    "PROTOCOLS", "MSG_PROTOCOL_ID", "peer_id_from_seed", "generate_key_file", "key_file_info", "errors", "blocking",
    "Error", "GenericError", "NetworkError", "CryptoError", "PeerError",
    "InvalidArgumentError", "OutOfMemoryError", "AgainError", "CanceledError", "ClosedError",
    "StateError", "NotSupportedError", "NotFoundError", "ExistsError", "TooBigError",
    "TimeoutError", "LimitError", "ParseError", "EndOfStreamError", "RefusedError",
    "ResetError", "UnreachableError", "AddressInUseError", "PipeError", "NoTransportError",
    "StreamResetError", "NoRouteError", "HandshakeError", "PeerIdError", "ProtocolError",
    "NegotiationError",
    "error_class", "error_from_code", "__version__",
]


def __getattr__(name: str) -> object:
    if name == "blocking":  # imported on first use (starts no thread by itself)
        import importlib
        return importlib.import_module(".blocking", __name__)
    raise AttributeError(f"module 'golemnet' has no attribute {name!r}")
