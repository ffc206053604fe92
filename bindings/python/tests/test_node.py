"""Two Python nodes on loopback: dial, ping, streams, handlers, messages,
backpressure, close with pending operations, and bad use."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket

import pytest

import golemnet
from golemnet import errors
from golemnet._golemnet import _hold_gil

from conftest import LOOPBACK, Nodes, aio, syn_drop_listener

ECHO = "/test/echo/1.0.0"


async def echo_handler(stream: golemnet.Stream) -> None:
    """Echoes until the end of stream, then half-closes."""
    while True:
        b = await stream.read(1 << 20)
        if not b:
            break
        await stream.write(b)
    await stream.close_write()


# ---------------------------------------------------------------- module level

def test_import_and_version() -> None:
    assert golemnet.__version__.count(".") == 2
    # known answer: seed 1 (rust-libp2p --secret-key-seed 1), include/golemnet/identity.h
    assert golemnet.peer_id_from_seed(1) == "12D3KooWPjceQrSwdWXPyLLeABRXmuqt69Rg3sBYbU1Nft9HyQ6X"
    assert golemnet.peer_id_from_seed(bytes([1] + [0] * 31)) == golemnet.peer_id_from_seed(1)
    with pytest.raises(ValueError):
        golemnet.peer_id_from_seed(b"short")


def test_error_mapping() -> None:
    codes = errors.CODES
    assert codes["GN_EINVAL"] == -1 and codes["GN_EIO"] == -100
    assert golemnet.error_class(codes["GN_ECLOSED"]) is golemnet.ClosedError
    assert golemnet.error_class(codes["GN_EPARSE"]) is golemnet.ParseError
    assert golemnet.error_class(codes["GN_ENEGOTIATION"]) is golemnet.NegotiationError
    # codes without their own class fall back to their band
    assert golemnet.error_class(codes["GN_ENOSPC"]) is golemnet.GenericError
    assert golemnet.error_class(codes["GN_ERESOLVE"]) is golemnet.NetworkError
    assert golemnet.error_class(codes["GN_EBADSIG"]) is golemnet.CryptoError
    assert golemnet.error_class(codes["GN_EWINDOW"]) is golemnet.PeerError
    bands = {0: golemnet.GenericError, 1: golemnet.NetworkError, 2: golemnet.CryptoError,
             3: golemnet.PeerError}
    for name, code in codes.items():
        e = golemnet.error_from_code(code)
        assert isinstance(e, bands[(-code) // 100]), name
        assert e.code == code and e.name == name
    e = golemnet.error_from_code(codes["GN_ETIMEDOUT"])
    assert isinstance(e, TimeoutError) and e.fatal
    assert isinstance(golemnet.error_from_code(codes["GN_EINVAL"]), ValueError)


# ---------------------------------------------------------------- two nodes

@aio(30)
async def test_dial_dns_failure_says_why() -> None:
    # a DNS server that never answers (a bound UDP socket nobody reads): the
    # dial fails with GN_ETIMEDOUT and the error names the domain (the C
    # result's detail, docs/dns.md "Errors")
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    port = silent.getsockname()[1]
    try:
        async with Nodes() as ns:
            b = await ns.new(listen=False, options=[f"dns.server=127.0.0.1:{port}",
                                                    "dns.timeout_ms=100", "dns.tries=1"])
            with pytest.raises(golemnet.Error) as ei:
                await b.dial("/dns4/nowhere.example.test/tcp/4001")
            assert ei.value.name == "GN_ETIMEDOUT"
            assert "nowhere.example.test" in str(ei.value)
            assert "nowhere.example.test" in ei.value.detail
    finally:
        silent.close()


@aio(30)
async def test_dial_ping_info() -> None:
    async with Nodes() as ns:
        a = await ns.new(key_seed=1)
        b = await ns.new(listen=False)
        assert a.peer_id == golemnet.peer_id_from_seed(1)
        assert len(a.addrs) == 1 and a.addrs[0].startswith("/ip4/127.0.0.1/tcp/")
        assert a.addrs[0].endswith("/p2p/" + a.peer_id)
        ch = await b.dial(a.addrs[0])
        assert ch.state == golemnet.ChannelState.OPEN
        assert ch.peer_id == a.peer_id and ch.direction == "outbound"
        assert ch.security == "/noise" and ch.muxer == "/yamux/1.0.0"
        assert ch.remote_addr.startswith("/ip4/127.0.0.1/tcp/")
        rtt = await ch.ping()
        assert 0 < rtt < 1.0
        assert ch.metrics.last_rtt > 0 and ch.metrics.bytes_out > 0
        # dialing again reuses the open channel
        assert (await b.dial(a.addrs[0])) is ch
        rtt2 = await b.ping(a.addrs[0])
        assert 0 < rtt2 < 1.0
        await ch.close()
        assert ch.state == golemnet.ChannelState.CLOSED


@aio(30)
async def test_security_and_muxer_choice() -> None:
    async with Nodes() as ns:
        a = await ns.new(security=["ecies", "noise"], muxers="mplex,yamux")
        b = await ns.new(listen=False, security="ecies", muxers=["mplex"])
        ch = await b.dial(a.addrs[0])
        assert ch.security == "/golem/ecies/1.0.0" and ch.muxer == "/mplex/6.7.0"
        assert await ch.ping() > 0


@aio(30)
async def test_tls_security_with_early_muxer() -> None:
    # /tls/1.0.0 (docs/tls.md): the muxer is agreed through ALPN
    async with Nodes() as ns:
        try:
            a = await ns.new(security=["tls"], muxers=["mplex", "yamux"])
        except golemnet.errors.Error as e:
            pytest.skip(f"built without the tls component: {e}")
        b = await ns.new(listen=False, security="tls,noise", muxers=["yamux", "mplex"])
        ch = await b.dial(a.addrs[0])
        assert ch.security == "/tls/1.0.0" and ch.muxer == "/yamux/1.0.0"
        # ALPN and multistream-select both give the dialer's first common muxer,
        # so the choice alone cannot tell them apart; the bytes can: channel
        # metrics count the secured stream from its start, and a multistream
        # muxer round writes its header and proposals there (the ecies control
        # below writes 48 bytes), whereas after ALPN nothing was sent yet.
        assert ch.metrics.bytes_out == 0 and ch.metrics.bytes_in == 0
        assert ch.peer_id == a.peer_id and await ch.ping() > 0
        c = await ns.new(security=["ecies"], muxers=["yamux"])
        d = await ns.new(listen=False, security="ecies", muxers=["mplex", "yamux"])
        ch2 = await d.dial(c.addrs[0])
        assert ch2.muxer == "/yamux/1.0.0" and ch2.metrics.bytes_out >= 34


@aio(30)
async def test_dial_by_peer_id_through_routes_and_bootstrap() -> None:
    async with Nodes() as ns:
        a = await ns.new(key_seed=3)
        # no router and no address: a clear error that names the cause
        lost = await ns.new(listen=False, routers="", discovery="")
        with pytest.raises(golemnet.NoRouteError):
            await lost.dial("/p2p/" + a.peer_id)
        # the static router knows a (a bare peer ID works too)
        b = await ns.new(listen=False, routers="static", routes=[a.addrs[0]])
        ch = await b.dial(a.peer_id)
        assert ch.peer_id == a.peer_id and await ch.ping() > 0
        # bootstrap discovery puts a in the peer store (and dials it)
        c = await ns.new(listen=False, routers=[], discovery=["bootstrap"],
                         bootstrap=[a.addrs[0]])
        ch = await c.dial("/p2p/" + a.peer_id)
        assert ch.peer_id == a.peer_id
        # a bad component option is refused with the node
        with pytest.raises(golemnet.InvalidArgumentError):
            golemnet.Node(options=["no-dot-here"])
        with pytest.raises(golemnet.NotFoundError):
            golemnet.Node(routers="nosuchrouter")


@aio(40)
async def test_echo_10mib_over_streams() -> None:
    async with Nodes() as ns:
        a = await ns.new()
        b = await ns.new(listen=False)
        await a.set_handler(ECHO, echo_handler)  # after the start
        ch = await b.dial(a.addrs[0])
        total, nstreams = 10 << 20, 4
        per = total // nstreams

        async def one(i: int) -> None:
            data = os.urandom(per)
            async with await ch.open_stream(ECHO) as s:
                assert s.protocol == ECHO

                async def writer() -> None:
                    for off in range(0, per, 256 << 10):
                        await s.write(data[off:off + (256 << 10)])
                    await s.close_write()
                wt = asyncio.ensure_future(writer())
                got = await s.read_all()
                await wt
                assert len(got) == per
                assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
                assert s.counters == (per, per)
        await asyncio.gather(*(one(i) for i in range(nstreams)))
        m = await ch.fetch_metrics()
        assert m.bytes_out >= total and m.bytes_in >= total


@aio(30)
async def test_handlers_before_start_inbound_and_removal() -> None:
    async with Nodes() as ns:
        a = await ns.new(start=False)
        seen = []

        async def hello(stream: golemnet.Stream) -> None:
            seen.append((stream.protocol, stream.channel.peer_id, stream.channel.direction))
            await stream.write(b"hello " + await stream.readexactly(3))

        await a.set_handler("/test/hello/1.0.0", hello)  # before the start
        await a.start()
        b = await ns.new(listen=False)
        ch = await b.dial(a.addrs[0])
        s = await ch.open_stream("/test/hello/1.0.0")
        await s.write(b"bob")
        assert await s.readexactly(9) == b"hello bob"
        assert await s.read() == b""  # the handler returned: its stream closed
        await s.close()
        assert seen == [("/test/hello/1.0.0", b.peer_id, "inbound")]
        # a handler that raises: the stream is reset, the node keeps serving
        async def broken(stream: golemnet.Stream) -> None:
            raise RuntimeError("handler bug (expected in this test)")
        await a.set_handler("/test/broken/1.0.0", broken)
        s2 = await ch.open_stream("/test/broken/1.0.0")
        with pytest.raises(golemnet.Error):
            while await s2.read():
                pass
        await s2.close()
        # removed: negotiation fails
        await a.set_handler("/test/hello/1.0.0", None)
        with pytest.raises(golemnet.NegotiationError):
            await ch.open_stream("/test/hello/1.0.0")
        # a built-in protocol cannot be taken over
        with pytest.raises(golemnet.ExistsError):
            await a.set_handler("/ipfs/ping/1.0.0", echo_handler)
        # and the channel still works
        assert await ch.ping() > 0


@aio(30)
async def test_unicast_and_broadcast() -> None:
    async with Nodes() as ns:
        a = await ns.new()
        b = await ns.new()
        c = await ns.new(listen=False)
        # to an address (dialed by the unicast), then by peer ID over the channel
        await c.unicast(a.addrs[0], b"to-a-by-addr")
        m = await a.recv(timeout=10)
        assert (m.data, m.peer_id) == (b"to-a-by-addr", c.peer_id)
        await c.unicast(a.peer_id, b"to-a-by-id")
        assert (await a.recv(timeout=10)).data == b"to-a-by-id"
        chb = await c.dial(b.addrs[0])
        await c.unicast(chb, b"to-b-by-channel")
        assert (await b.recv(timeout=10)).data == b"to-b-by-channel"
        # broadcast reaches both channels
        await c.broadcast(b"all")
        ma, mb = await a.recv(timeout=10), await b.recv(timeout=10)
        assert ma.data == mb.data == b"all" and ma.peer_id == mb.peer_id == c.peer_id
        # many messages keep their order (the recv queue bound pauses event reading)
        for i in range(300):
            await c.unicast(b.peer_id, b"%d" % i)
        got = [int((await b.recv(timeout=10)).data) for _ in range(300)]
        assert got == list(range(300))
        # too big: refused at once
        with pytest.raises(golemnet.TooBigError):
            await c.unicast(b.peer_id, b"x" * (2 << 20))
        # unknown peer ID: the failure arrives later, recorded with the request id
        req = await c.unicast(golemnet.peer_id_from_seed(77), b"nobody")
        for _ in range(100):
            if c.send_failures:
                break
            await asyncio.sleep(0.02)
        assert c.send_failures and c.send_failures[0][0] == req
        assert isinstance(c.send_failures[0][1], golemnet.NotFoundError)


@aio(60)
async def test_unicast_flood_waits_instead_of_losing() -> None:
    """Unicasts by peer ID faster than the receiver reads: the channel's
    queue fills, unicast() waits (woken by GN_NODE_EV_WRITABLE) and nothing
    is lost."""
    async with Nodes() as ns:
        b = await ns.new()
        c = await ns.new(listen=False)
        await c.dial(b.addrs[0])
        total = 20000
        payload = b"p" * 60

        async def sender() -> None:
            for i in range(total):
                await c.unicast(b.peer_id, b"%04x" % (i & 0xffff) + payload)

        task = asyncio.ensure_future(sender())
        await asyncio.sleep(0.5)  # b reads nothing yet: every queue fills
        for i in range(total):
            m = await b.recv(timeout=20)
            assert m.data[:4] == b"%04x" % (i & 0xffff)
        await task
        assert c.send_failed_count == 0 and not c.send_failures


@aio(30)
async def test_write_backpressure() -> None:
    """A handler that does not read: the writer's await blocks once the
    stream window, the bridge buffers and the muxer window are full, and
    resumes when the handler reads."""
    async with Nodes() as ns:
        release = asyncio.Event()
        received = []

        async def slow(stream: golemnet.Stream) -> None:
            await release.wait()
            received.append(len(await stream.read_all()))

        a = await ns.new(read_buffer=256 << 10)
        await a.set_handler("/test/slow/1.0.0", slow)
        b = await ns.new(listen=False, write_buffer=512 << 10)
        ch = await b.dial(a.addrs[0])
        s = await ch.open_stream("/test/slow/1.0.0")
        chunk = b"z" * (64 << 10)
        written = 0

        async def writer() -> None:
            nonlocal written
            for _ in range(160):  # 10 MiB
                await s.write(chunk)
                written += len(chunk)
            await s.close_write()
        wt = asyncio.ensure_future(writer())
        await asyncio.sleep(1.0)
        assert not wt.done()
        # bounded: bridge read buffer + yamux window (256 KiB) + write window + slack
        assert written < 4 << 20, written
        release.set()
        await asyncio.wait_for(wt, 20)
        await s.close()
        for _ in range(200):
            if received:
                break
            await asyncio.sleep(0.02)
        assert received == [160 * len(chunk)]


@aio(30)
async def test_close_with_pending_operations() -> None:
    # a TCP listener that never speaks: a dial to it stays in the upgrade
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    port = silent.getsockname()[1]
    try:
        ns = Nodes()
        a = await ns.new()
        gate = asyncio.Event()

        async def stuck(stream: golemnet.Stream) -> None:
            await gate.wait()  # never set: cancelled by the close

        await a.set_handler("/test/stuck/1.0.0", stuck)
        b = await ns.new(listen=False)
        ch = await b.dial(a.addrs[0])
        s = await ch.open_stream("/test/stuck/1.0.0")
        pending_read = asyncio.ensure_future(s.read())
        pending_dial = asyncio.ensure_future(b.dial(f"/ip4/127.0.0.1/tcp/{port}"))
        pending_ping = asyncio.ensure_future(ch.ping())
        await asyncio.sleep(0.3)
        assert not pending_read.done() and not pending_dial.done()
        t0 = asyncio.get_running_loop().time()
        await b.close()
        assert asyncio.get_running_loop().time() - t0 < 5
        for fut in (pending_read, pending_dial):
            with pytest.raises(golemnet.Error):
                await asyncio.wait_for(fut, 5)
        # the ping either finished before the close or failed
        try:
            await asyncio.wait_for(pending_ping, 5)
        except golemnet.Error:
            pass
        with pytest.raises(golemnet.ClosedError):
            await b.dial(a.addrs[0])
        with pytest.raises(golemnet.ClosedError):
            await s.write(b"late")
        assert ch.state == golemnet.ChannelState.CLOSED
        await a.close()
        await a.close()  # idempotent
    finally:
        silent.close()


@aio(30)
async def test_close_after_hanging_dial_is_prompt() -> None:
    # a dial whose SYNs are dropped, abandoned by its Python timeout: the
    # close cancels the native dial (socket closed) instead of waiting for
    # the transport's own 10 s dial timeout
    sd = syn_drop_listener()
    if sd is None:
        pytest.skip("cannot provoke dropped SYNs here")
    listener, fill = sd
    try:
        ns = Nodes()
        b = await ns.new(listen=False)
        with pytest.raises(asyncio.TimeoutError):
            await b.dial(f"/ip4/127.0.0.1/tcp/{listener.getsockname()[1]}", timeout=0.3)
        t0 = asyncio.get_running_loop().time()
        await b.close()
        assert asyncio.get_running_loop().time() - t0 < 1.0
    finally:
        for c in fill:
            c.close()
        listener.close()


@aio(30)
async def test_bad_use_raises() -> None:
    async with Nodes() as ns:
        a = await ns.new()
        b = await ns.new(listen=False)
        await a.set_handler(ECHO, echo_handler)
        with pytest.raises(golemnet.ParseError):
            await b.dial("/ip4/999.1.2.3/tcp/1")
        with pytest.raises(golemnet.ParseError):
            await b.dial("not a multiaddr")
        with pytest.raises(golemnet.ParseError):
            await b.unicast("/ip4/1.2.3.4/tcp", b"x")
        # nothing listens there
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        with pytest.raises(golemnet.RefusedError):
            await b.dial(f"/ip4/127.0.0.1/tcp/{port}")
        # the wrong /p2p/ id
        addr = a.addrs[0].rsplit("/p2p/", 1)[0] + "/p2p/" + golemnet.peer_id_from_seed(5)
        with pytest.raises(golemnet.PeerIdError):
            await b.dial(addr)
        ch = await b.dial(a.addrs[0])
        with pytest.raises(golemnet.NegotiationError):
            await ch.open_stream("/nobody/serves/this")
        st = await ch.open_stream(ECHO)
        await st.write(b"ok")
        await st.close_write()
        assert await st.read_all() == b"ok"
        await st.close()
        with pytest.raises(golemnet.ClosedError):
            await st.write(b"after close")
        with pytest.raises(golemnet.ClosedError):
            await st.read()
        st2 = await ch.open_stream(ECHO)
        await st2.close_write()
        with pytest.raises(golemnet.PipeError):
            await st2.write(b"after close_write")
        await st2.close()
        with pytest.raises(ValueError):
            await st2.read(0)
    # configuration errors and calls out of order
    with pytest.raises(golemnet.NotFoundError):
        golemnet.Node(security=["no-such-security"])
    with pytest.raises(ValueError):
        golemnet.Node(protocols=["no-such-protocol"])
    n = golemnet.Node()
    with pytest.raises(golemnet.StateError):
        await n.dial("/ip4/127.0.0.1/tcp/1")
    await n.close()
    with pytest.raises(golemnet.AddressInUseError):
        async with Nodes() as ns:
            a = await ns.new()
            port = a.addrs[0].split("/")[4]
            await ns.new(listen=False, start=False)
            busy = golemnet.Node(listen=[f"/ip4/127.0.0.1/tcp/{port}"])
            ns.started.append(busy)
            await busy.start()


@aio(20)
async def test_key_file_and_seed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = str(tmp_path / "node.key")
    n1 = golemnet.Node(key_file=path, key_seed=3)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert n1.peer_id == golemnet.peer_id_from_seed(3)
    await n1.close()
    n2 = golemnet.Node(key_file=path)  # loaded: the same identity
    assert n2.peer_id == golemnet.peer_id_from_seed(3)
    await n2.close()
    n3 = golemnet.Node(key_seed=bytes(range(32)))
    assert n3.peer_id == golemnet.peer_id_from_seed(bytes(range(32)))
    await n3.close()


@aio(60)
async def test_key_types(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # issue 17: nodes with RSA, secp256k1 and ECDSA identities talk over Noise
    ids = {}
    for kt in ("rsa", "secp256k1", "ecdsa", "ed25519"):
        path = str(tmp_path / (kt + ".key"))
        pid = golemnet.generate_key_file(path, key_type=kt)
        assert golemnet.key_file_info(path) == (pid, kt)
        assert os.stat(path).st_mode & 0o777 == 0o600
        ids[kt] = (path, pid)
    assert ids["secp256k1"][1].startswith("16Uiu2HA") and ids["rsa"][1].startswith("Qm")
    with pytest.raises(ValueError):
        golemnet.generate_key_file(str(tmp_path / "x.key"), key_type="dsa")
    with pytest.raises(ValueError):
        golemnet.generate_key_file(str(tmp_path / "x.key"), key_type="rsa", bits=1024)
    async with Nodes() as ns:
        a = await ns.new(key_file=ids["rsa"][0])
        assert a.peer_id == ids["rsa"][1]
        for kt in ("secp256k1", "ecdsa"):
            b = await ns.new(listen=False, key_file=ids[kt][0])
            ch = await b.dial(a.addrs[0])
            assert ch.peer_id == a.peer_id and ch.security == "/noise"
            assert await ch.ping() > 0


def test_blocking_api() -> None:
    from golemnet.blocking import Node

    def upper(stream) -> None:  # type: ignore[no-untyped-def]
        stream.write(stream.read_all().upper())

    with Node(listen=[LOOPBACK]) as a, Node() as b:
        a.set_handler("/test/upper/1.0.0", upper)
        assert 0 < b.ping(a.addrs[0], timeout=10) < 1
        ch = b.dial(a.addrs[0], timeout=10)
        with ch.open_stream("/test/upper/1.0.0", timeout=10) as s:
            s.write(b"blocking api", timeout=10)
            s.close_write(timeout=10)
            assert s.read_all(timeout=10) == b"BLOCKING API"
        b.unicast(a.peer_id, b"msg", timeout=10)
        assert a.recv(timeout=10).data == b"msg"
    # closed: the threads are gone
    assert not a._lt.thread.is_alive() and not b._lt.thread.is_alive()


def test_hold_gil_helper_really_holds_it() -> None:
    """_hold_gil (used by test_gil.py) keeps other Python threads out."""
    import threading
    import time
    ticks = []
    stop = threading.Event()

    def ticker() -> None:
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.005)
    t = threading.Thread(target=ticker)
    t.start()
    time.sleep(0.05)
    t0 = time.monotonic()
    _hold_gil(0.3)
    t1 = time.monotonic()
    stop.set()
    t.join(5)
    inside = [x for x in ticks if t0 + 0.02 < x < t1 - 0.02]
    assert t1 - t0 >= 0.3 and inside == []


@aio(30)
async def test_connection_limits() -> None:
    with pytest.raises(ValueError, match="unknown limit 'max_conns'"):
        golemnet.Node(limits={"max_conns": 1})
    async with Nodes() as ns:
        a = await ns.new(limits={"max_upgrading_per_ip": 2, "first_byte_timeout": 0.3})
        port = int(a.addrs[0].split("/tcp/")[1].split("/")[0])
        silent = []
        for _ in range(3):
            s = socket.create_connection(("127.0.0.1", port))
            s.setblocking(False)
            silent.append(s)

        async def closed_by_peer(s: socket.socket, within: float) -> bool:
            # reads (the node may have sent its multistream header) until EOF
            loop = asyncio.get_running_loop()
            deadline = loop.time() + within
            while loop.time() < deadline:
                try:
                    data = await asyncio.wait_for(loop.sock_recv(s, 4096),
                                                  deadline - loop.time())
                except ConnectionResetError:
                    return True
                except asyncio.TimeoutError:
                    return False
                if data == b"":
                    return True
            return False

        # the third connection from 127.0.0.1 is refused at once
        assert await closed_by_peer(silent[2], 0.25)
        assert not await closed_by_peer(silent[0], 0.05)
        # the first two sent nothing: the first-byte deadline closes them
        assert await closed_by_peer(silent[0], 3.0)
        assert await closed_by_peer(silent[1], 3.0)
        for s in silent:
            s.close()
        # a real peer still gets in
        b = await ns.new(listen=False)
        ch = await b.dial(a.addrs[0])
        assert await ch.ping() > 0
