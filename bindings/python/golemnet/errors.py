"""golemnet exceptions.

Every golemnet error code (``include/golemnet/err.h``) maps to an exception
class. :class:`Error` is the base; one subclass per error band
(:class:`GenericError`, :class:`NetworkError`, :class:`CryptoError`,
:class:`PeerError`); common codes have their own subclasses, which also
derive from the matching built-in exception where one exists (for example
:class:`TimeoutError` is a :class:`builtins.TimeoutError`, and
:class:`InvalidArgumentError` a :class:`ValueError`).
"""

from __future__ import annotations

import builtins
from typing import Any, Dict, Optional, Type

from . import _golemnet as _c

__all__ = [
    "Error", "GenericError", "NetworkError", "CryptoError", "PeerError",
    "InvalidArgumentError", "OutOfMemoryError", "AgainError", "CanceledError",
    "ClosedError", "StateError", "NotSupportedError", "NotFoundError",
    "ExistsError", "TooBigError", "TimeoutError", "LimitError", "ParseError",
    "EndOfStreamError", "RefusedError", "ResetError", "UnreachableError",
    "AddressInUseError", "PipeError", "NoTransportError", "StreamResetError", "NoRouteError",
    "HandshakeError", "PeerIdError", "ProtocolError", "NegotiationError",
    "CODES", "error_class", "error_from_code",
]

#: Every error code by symbolic name ("GN_EAGAIN": -3), from the C library.
CODES: Dict[str, int] = {name: code for name, code, _fatal, _msg in _c.error_codes()}


class Error(Exception):
    """A golemnet error.

    Attributes:
        code: the negative gn_err code.
        name: its symbolic name ("GN_ECLOSED").
        fatal: True when the object the error came from is unusable now.
        address: the multiaddr involved (dial, listen, unicast to an
            address, a channel's remote address), or None.
        protocol: the protocol id involved (open_stream, a stream's
            protocol, set_handler, ping), or None.
        peer: the peer ID involved (the ``/p2p/`` id of a dialled address,
            a channel's or stream's remote peer, a unicast's target), or
            None.

    ``str()`` is the message followed by the context that is set, for
    example ``GN_ENEGOTIATION: no common protocol (protocol /x/1.0.0,
    peer 12D3KooW...)``.
    """

    code: int
    name: str
    fatal: bool
    address: Optional[str]
    protocol: Optional[str]
    peer: Optional[str]

    def __init__(self, code: int, message: Optional[str] = None, *,
                 address: Optional[str] = None, protocol: Optional[str] = None,
                 peer: Optional[str] = None) -> None:
        self.code = int(code)
        self.name = _c.err_name(self.code)
        self.fatal = bool(_c.err_is_fatal(self.code))
        self.address = address
        self.protocol = protocol
        self.peer = peer
        self.message = message or f"{self.name}: {_c.strerror(self.code)}"
        super().__init__(self.message)

    def add_context(self, address: Optional[str] = None, protocol: Optional[str] = None,
                    peer: Optional[str] = None) -> "Error":
        """Sets the context attributes that are still None (a value already
        set, by the code closest to the failure, is kept); returns self."""
        if self.address is None and address:
            self.address = address
        if self.protocol is None and protocol:
            self.protocol = protocol
        if self.peer is None and peer:
            self.peer = peer
        return self

    def _context(self) -> Any:
        return (("address", self.address), ("protocol", self.protocol), ("peer", self.peer))

    def __str__(self) -> str:
        ctx = [f"{k} {v}" for k, v in self._context() if v]
        return f"{self.message} ({', '.join(ctx)})" if ctx else self.message

    def __reduce__(self) -> Any:
        return (_rebuild, (type(self), self.code, self.message, self.address, self.protocol,
                           self.peer))


def _rebuild(cls: Type[Error], code: int, message: Optional[str], address: Optional[str],
             protocol: Optional[str], peer: Optional[str]) -> Error:
    return cls(code, message, address=address, protocol=protocol, peer=peer)


class GenericError(Error):
    """Generic band (-1 .. -99): arguments, state, limits, local resources."""


class NetworkError(Error):
    """I/O band (-100 .. -199): connections, addresses, streams."""


class CryptoError(Error):
    """Crypto band (-200 .. -299): handshakes, keys, authentication."""


class PeerError(Error):
    """Peer-violation band (-300 .. -399): the remote broke a protocol."""


class InvalidArgumentError(GenericError, ValueError):
    """GN_EINVAL: an argument is invalid."""


class OutOfMemoryError(GenericError, MemoryError):
    """GN_ENOMEM: an allocation failed."""


class AgainError(GenericError):
    """GN_EAGAIN: a bounded queue is full; try again later."""


class CanceledError(GenericError):
    """GN_ECANCELED: the operation was canceled (the node is closing)."""


class ClosedError(GenericError):
    """GN_ECLOSED: the node, channel or stream is closed or closing."""


class StateError(GenericError):
    """GN_ESTATE: the call is not valid in the object's current state."""


class NotSupportedError(GenericError):
    """GN_ENOTSUP: the operation or option is not supported."""


class NotFoundError(GenericError, LookupError):
    """GN_ENOTFOUND: no such item (peer, component, handler)."""


class ExistsError(GenericError):
    """GN_EEXIST: the item exists already (a handler for the protocol)."""


class TooBigError(GenericError, ValueError):
    """GN_ETOOBIG: the input exceeds the configured limit."""


class TimeoutError(GenericError, builtins.TimeoutError):  # noqa: A001 - deliberate
    """GN_ETIMEDOUT: the operation timed out."""


class LimitError(GenericError):
    """GN_ELIMIT or GN_ERESOURCE: a limit (connections, handlers, a resource
    manager scope) was reached."""


class ParseError(GenericError, ValueError):
    """GN_EPARSE: malformed input, such as a bad multiaddr."""


class EndOfStreamError(NetworkError, EOFError):
    """GN_EEOF: end of stream."""


class RefusedError(NetworkError, ConnectionRefusedError):
    """GN_ECONNREFUSED: the connection was refused."""


class ResetError(NetworkError, ConnectionResetError):
    """GN_ECONNRESET: the connection was reset by the peer."""


class UnreachableError(NetworkError):
    """GN_EUNREACHABLE: network or host unreachable."""


class AddressInUseError(NetworkError):
    """GN_EADDRINUSE: the address is in use."""


class PipeError(NetworkError, BrokenPipeError):
    """GN_EPIPE: write after a half-close or a peer close."""


class NoTransportError(NetworkError):
    """GN_ENOTRANSPORT: no transport handles this address."""


class StreamResetError(NetworkError):
    """GN_ESTREAMRESET: the peer reset the stream."""


class NoRouteError(NetworkError):
    """GN_ENOROUTE: no address of the peer is known and no router found one."""


class HandshakeError(CryptoError):
    """GN_EHANDSHAKE: the secure handshake failed."""


class PeerIdError(CryptoError):
    """GN_EPEERID: the remote peer is not the /p2p/ id dialed.

    Attributes (besides :class:`Error`'s):
        peer: the peer ID expected (the dialled ``/p2p/`` id).
        received_peer: the peer ID the remote proved instead, or None when
            unknown (an error not from a dial, or a security component that
            cannot tell).
    """

    received_peer: Optional[str] = None

    def _context(self) -> Any:
        return tuple(super()._context()) + (("received_peer", self.received_peer),)

    def __reduce__(self) -> Any:
        return super().__reduce__() + ({"received_peer": self.received_peer},)


class ProtocolError(PeerError):
    """GN_EPROTO: the peer violated the protocol."""


class NegotiationError(PeerError):
    """GN_ENEGOTIATION: no common protocol (security, muxer or application)."""


_BY_NAME: Dict[str, Type[Error]] = {
    "GN_EINVAL": InvalidArgumentError,
    "GN_ENOMEM": OutOfMemoryError,
    "GN_EAGAIN": AgainError,
    "GN_ECANCELED": CanceledError,
    "GN_ECLOSED": ClosedError,
    "GN_ESTATE": StateError,
    "GN_ENOTSUP": NotSupportedError,
    "GN_ENOTFOUND": NotFoundError,
    "GN_EEXIST": ExistsError,
    "GN_ETOOBIG": TooBigError,
    "GN_ETIMEDOUT": TimeoutError,
    "GN_ELIMIT": LimitError,
    "GN_ERESOURCE": LimitError,
    "GN_EPARSE": ParseError,
    "GN_EEOF": EndOfStreamError,
    "GN_ECONNREFUSED": RefusedError,
    "GN_ECONNRESET": ResetError,
    "GN_EUNREACHABLE": UnreachableError,
    "GN_EADDRINUSE": AddressInUseError,
    "GN_EPIPE": PipeError,
    "GN_ENOTRANSPORT": NoTransportError,
    "GN_ESTREAMRESET": StreamResetError,
    "GN_ENOROUTE": NoRouteError,
    "GN_EHANDSHAKE": HandshakeError,
    "GN_EPEERID": PeerIdError,
    "GN_EPROTO": ProtocolError,
    "GN_ENEGOTIATION": NegotiationError,
}
_BY_CODE: Dict[int, Type[Error]] = {CODES[n]: cls for n, cls in _BY_NAME.items()}
_BANDS: Dict[int, Type[Error]] = {0: GenericError, 1: NetworkError, 2: CryptoError, 3: PeerError}


def error_class(code: int) -> Type[Error]:
    """The exception class for a gn_err code: its own class, else its band's."""
    cls = _BY_CODE.get(code)
    if cls is not None:
        return cls
    return _BANDS.get(_c.err_band(code), Error)


def error_from_code(code: int, message: Optional[str] = None, *,
                    address: Optional[str] = None, protocol: Optional[str] = None,
                    peer: Optional[str] = None) -> Error:
    """An exception instance for a gn_err code, with optional context
    (see :class:`Error`)."""
    return error_class(code)(code, message, address=address, protocol=protocol, peer=peer)


_c._set_error_factory(error_from_code)
