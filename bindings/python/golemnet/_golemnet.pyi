"""Type stubs of the native module golemnet._golemnet (the low-level layer
under golemnet.Node; see src/_golemnet.c and src/bridge.h)."""

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

_Buffer = Union[bytes, bytearray, memoryview]

GROUP_ADDR_PREFIX: str
EV_LISTENING: int
EV_LISTEN_FAILED: int
EV_DIAL: int
EV_CHANNEL_OPENED: int
EV_CHANNEL_CLOSED: int
EV_IDENTIFY: int
EV_MESSAGE: int
EV_SEND_FAILED: int
EV_PING: int
EV_CLOSED: int
EV_WRITABLE: int
EV_REACHABILITY: int
NOTE_DIAL: int
NOTE_OPEN: int
NOTE_PING: int
NOTE_INBOUND: int
NOTE_STREAM: int
NOTE_DONE: int
NOTE_PEER: int
NOTE_DHT: int
NOTE_XFER: int
XFER_SHARED: int
XFER_PROVIDED: int
XFER_FOUND: int
DHT_FIND_PEER: int
DHT_GET: int
DHT_PUT: int
DHT_PROVIDE: int
DHT_FIND_PROVIDERS: int
DHT_CLOSEST: int
DHT_ALLOW: int
DHT_KEY_MAX: int
DHT_VALUE_MAX: int
PROTO_IDENTIFY: int
PROTO_PING: int
PROTO_ECHO: int
PROTO_PERF: int
PROTO_MSG: int
PROTO_DEFAULT: int
CH_DIALING: int
CH_UPGRADING: int
CH_OPEN: int
CH_CLOSING: int
CH_CLOSED: int
OPT_MAX_CONNECTIONS: int
OPT_MAX_CONNECTIONS_PER_PEER: int
OPT_IDLE_TIMEOUT_MS: int
OPT_MAX_MESSAGE_LEN: int
PROTOCOL_ID_MAX: int
MSG_PROTOCOL_ID: str

#: (type, status, request_id, channel_id, peer, rtt_ns, addr, protocol, message)
NodeEvent = Tuple[int, int, int, int, Optional[str], int, str, str, Optional[bytes], int]
#: (kind, status, token, obj, rtt_ns, protocol)
Note = Tuple[int, int, int, Any, int, str]

class Node:
    """A native node with its thread bridge."""
    peer_id: Optional[str]
    event_fd: int
    bridge_fd: int
    _ptr: Any  # the gn_node as a capsule (for ErgoNode)
    state: int
    kick_failed: bool
    def __init__(self, listen: Sequence[str] = ..., key_seed: Union[None, int, bytes] = ...,
                 key_file: Optional[str] = ..., transports: Optional[str] = ...,
                 security: Optional[str] = ..., muxers: Optional[str] = ...,
                 protocols: int = ..., max_message_len: int = ...,
                 event_queue_capacity: int = ..., rx_limit: int = ..., tx_limit: int = ...,
                 max_connections: int = ..., max_connections_per_peer: int = ...,
                 idle_timeout_ms: int = ..., upgrade_timeout_ms: int = ...,
                 agent_version: Optional[str] = ..., routers: Optional[str] = ...,
                 discovery: Optional[str] = ..., nat: Optional[str] = ...,
                 options: Sequence[str] = ...) -> None: ...
    def start(self) -> None:
        """Starts the loop thread and the listeners."""
    def close(self) -> bool:
        """Begins closing; True if an EV_CLOSED event will follow."""
    def free(self) -> None:
        """Frees the native node, joining its thread (GIL released)."""
    def listen(self, addr: str) -> int:
        """Listens; returns the request id."""
    def dial(self, addr: str, token: int) -> None:
        """Dials; NOTE_DIAL note with the token."""
    def ping(self, channel: Channel, token: int) -> None:
        """Pings; NOTE_PING note."""
    def open_stream(self, channel: Channel, protocol_id: str, token: int) -> None:
        """Opens a stream; NOTE_OPEN note."""
    def peer_info(self, peer_id: str, token: int) -> None:
        """Copies the peer store's entry on the loop thread; NOTE_PEER note (a dict)."""
    def xfer(self, op: str, a: Optional[str], b: Optional[str], providers: List[str], n: int,
             interval_ms: int, token: int) -> None:
        """Resource transfer: 'share', 'provide', 'find', 'fetch', 'cancel';
        NOTE_XFER notes, obj (type, counters, peer, detail, addrs)."""
    def dht(self, op: int, key: bytes, value: bytes, peer: Optional[str], max: int,
            token: int) -> None:
        """One DHT call (DHT_*); NOTE_DHT note, obj (value or None,
        [(peer_id, [addrs])]). DHT_ALLOW: key is a namespace given a
        permissive native validator (allowed before start)."""
    def refresh_metrics(self, channel: Channel, token: int) -> None:
        """Refreshes the channel's metrics snapshot; NOTE_DONE note."""
    def set_handler(self, protocol_id: str, add: bool, token: int) -> int:
        """0: done; 1: queued (NOTE_DONE note)."""
    def unicast(self, to: str, data: _Buffer) -> int:
        """Queues a message; returns the request id."""
    def broadcast(self, data: _Buffer) -> int:
        """Queues a message to every channel; returns the request id."""
    def dial_group(self, addr: str) -> "Group":
        """Opens a multicast channel on a group address (/pubsub/TOPIC)."""
    def configure(self, option: int, value: int) -> None:
        """Changes a run-time option."""
    def next_events(self, max: int = ...) -> List[NodeEvent]:
        """Pops node events."""
    def poll(self, max: int = ...) -> List[Note]:
        """Takes bridge notes."""
    def kick(self) -> int:
        """Retries a stream-work post that failed (0 or a negative code)."""

class Channel:
    """A held native channel."""
    id: int
    state: int
    def info(self) -> Dict[str, Any]:
        """id, state, direction, remote_peer, local_addr, remote_addr, security, muxer."""
    def metrics(self) -> Tuple[int, int, int, int, int, int, int]:
        """(bytes_in, bytes_out, messages_in, messages_out, streams_open, last_rtt_ns, uptime_ns)."""
    def close(self) -> None:
        """Closes the channel."""
    def send(self, data: _Buffer) -> None:
        """Queues one message."""

class Stream:
    """A bridged native stream."""
    closed: bool
    eof: bool
    error: int
    protocol: str
    readable: int
    def read(self, max: int = ...) -> Optional[bytes]:
        """Bytes, b'' at EOF, None when nothing is buffered yet."""
    def write(self, data: _Buffer) -> int:
        """0 within the window, 1 over it, 2 queued but kick() needed."""
    def writev(self, buffers: Sequence[_Buffer]) -> int:
        """As write() for several buffers."""
    def write_ready(self, all: bool = ...) -> bool:
        """True when within the window (all: nothing queued)."""
    def shutdown(self) -> int:
        """Half-close after the queued writes (0, or 2: kick() needed)."""
    def close(self, reset: bool = ...) -> int:
        """Close after the queued writes, or reset (0, or 2: kick() needed)."""
    def channel(self) -> Channel:
        """The stream's channel."""
    def counters(self) -> Tuple[int, int]:
        """(bytes read, bytes written)."""

ERGO_MSG: int
ERGO_RESULT: int
ERGO_REPLY: int
ERGO_SPAWN: int
ERGO_INFO: int
ERGO_ALIAS: int
ERGO_SIGNAL: int  # links, monitors, exit signals
ERGO_STREAM: int


class ErgoNode:
    """An Ergo node on a Node (src/ergo.c; only with the ergo component)."""
    fd: int
    ready: bool
    def __init__(self, node: Any, types: Sequence[Tuple[str, Sequence[Tuple[str, str]]]],
                 classes: Dict[str, type], kinds: Tuple[type, ...],
                 max_value_bytes: int = ...) -> None: ...
    def poll(self, max: int = ...) -> List[Tuple[int, int, int, Any, Any, Any]]: ...
    def detach(self, token: int) -> None: ...
    def spawn(self, mailbox: int, qlimit: int, max_pending: int, token: int,
              compression: Optional[Tuple[bool, int, int, int]] = ...) -> int: ...
    # per-process compression: (enable, type, level, threshold) or None (disabled)
    def set_compression(self, handle: int, compression: Optional[Tuple[bool, int, int, int]],
                        token: int) -> None: ...
    def get_compression(self, handle: int, token: int) -> None: ...
    def free_proc(self, handle: int, token: int) -> None: ...
    def register(self, handle: int, name: str, token: int) -> None: ...
    def unregister(self, handle: int, token: int) -> None: ...
    def alias_new(self, handle: int, token: int) -> None: ...
    def alias_delete(self, handle: int, ref: Tuple[str, int, Tuple[int, int, int]],
                     token: int) -> None: ...
    def send(self, call: bool, handle: int, target: Tuple[str, Any], value: Any, priority: int,
             important: bool, timeout_ms: int, token: int) -> None: ...
    def reply(self, handle: int, to: Tuple[str, int, int], ref: Tuple[str, int, Tuple[int, int, int]],
              value: Any, is_error: bool, token: int) -> None: ...
    def node_op(self, what: str, node: Optional[str], peer: Optional[str], token: int) -> None: ...
    def resume(self, handle: int, n: int) -> None: ...
    def encode(self, value: Any) -> bytes: ...
    def decode(self, data: _Buffer) -> Any: ...
    # links, monitors, exit signals, events
    def link_op(self, what: str, handle: int, target: Tuple[str, Any], token: int) -> None: ...
    def send_exit(self, handle: int, pid: Tuple[str, int, int], reason: str,
                  token: int) -> None: ...
    def proc_exit(self, handle: int, reason: str, token: int) -> None: ...
    def event_op(self, what: str, handle: int, name: str, value: Any, token: int) -> None: ...
    def remote_spawn(self, handle: int, node: str, factory: str, register: Optional[str],
                     args: Any, timeout_ms: int, token: int) -> None: ...
    def remote_app_start(self, handle: int, node: str, name: str, mode: int, timeout_ms: int,
                         token: int) -> None: ...
    def enable(self, app: bool, on: bool, name: str, nodes: Optional[Sequence[str]],
               qlimit: int, max_procs: int, stream: int, token: int) -> None: ...


def _set_error_factory(fn: Optional[Callable[[int], BaseException]]) -> None:
    """Installs the code -> exception factory."""
def error_codes() -> List[Tuple[str, int, int, str]]:
    """(name, code, fatal, message) of every gn_err code."""
def err_name(code: int) -> str:
    """Symbolic name of a code."""
def strerror(code: int) -> str:
    """Description of a code."""
def err_band(code: int) -> int:
    """Band of a code (0..3) or -1."""
def err_is_fatal(code: int) -> bool:
    """True when the object is unusable after this error."""
def version() -> str:
    """The C library's version."""
def peer_id_from_seed(seed: Union[int, bytes]) -> str:
    """Peer ID of the key a seed gives."""
def generate_key_file(path: str, key_type: str = ..., bits: int = ...) -> str:
    """Writes a new key file (ed25519, rsa, secp256k1, ecdsa); returns its peer ID."""
def key_file_info(path: str) -> Tuple[str, str]:
    """(peer ID, key type) of a key file of any type."""
def log_to_stderr(level: int = ..., components: Optional[str] = ...) -> None:
    """Native log lines up to level (3..7; 0 off) to stderr."""
def _hold_gil(seconds: float) -> None:
    """Spins holding the GIL (tests)."""


class Group:
    def broadcast(self, data: _Buffer) -> None:
        """Publishes on the topic."""
    def unicast(self, peer_id: str, data: _Buffer) -> None:
        """Sends to one member over /golem/msg/1.0.0."""
    def metrics(self) -> Dict[str, int]:
        """The group's counters."""
    def mesh_peers(self) -> List[str]:
        """The mesh peers' IDs."""
    def free(self) -> None:
        """Leaves the topic; idempotent."""
