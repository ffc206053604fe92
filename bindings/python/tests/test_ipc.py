"""golemnet.ipc, the asyncio client of a running daemon, against real
daemons: ``golemnet daemon`` processes (GOLEMNET_CLI) on Unix sockets in a
temporary directory, their nodes on loopback TCP. Covers two clients at
once, a client killed in the middle of a stream, events, streams both ways,
handlers and errors. Skipped when the CLI is not built."""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any, List

import pytest

import golemnet
import golemnet.ipc as ipc

from conftest import aio

CLI = os.environ.get("GOLEMNET_CLI", "")
pytestmark = pytest.mark.skipif(not CLI or not os.path.exists(CLI),
                                reason="GOLEMNET_CLI (the golemnet tool) not built")


class Daemon:
    """A ``golemnet daemon`` on a socket in @tmp; stopped by stop()."""

    def __init__(self, tmp: str, name: str, *extra: str) -> None:
        self.sock = os.path.join(tmp, name + ".sock")
        self.p = subprocess.Popen(
            [CLI, "daemon", "--socket", self.sock, "--listen", "/ip4/127.0.0.1/tcp/0", "--json",
             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.p.stdout is not None
        deadline = time.monotonic() + 10
        line = b""
        while not line.endswith(b"\n"):  # the ready line (bounded: select, then EOF or time)
            left = deadline - time.monotonic()
            assert left > 0 and select.select([self.p.stdout], [], [], left)[0], "not ready"
            chunk = os.read(self.p.stdout.fileno(), 4096)
            assert chunk, "the daemon exited: " + (self.p.stderr.read().decode()
                                                   if self.p.stderr else "")
            line += chunk
        #: the daemon's ready line (socket, control_tcp, peer, listen)
        self.ready = json.loads(line.split(b"\n", 1)[0])
        assert self.ready["event"] == "ready", self.ready

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        for f in (self.p.stdout, self.p.stderr):
            if f:
                f.close()


@pytest.fixture
def daemons() -> Any:
    tmp = tempfile.mkdtemp(prefix="gnipcpy-")
    started: List[Daemon] = []

    def start(name: str, *extra: str) -> Daemon:
        d = Daemon(tmp, name, *extra)
        started.append(d)
        return d
    yield start
    for d in started:
        d.stop()
    for f in os.listdir(tmp):
        os.unlink(os.path.join(tmp, f))
    os.rmdir(tmp)


async def addr_of(c: ipc.Client) -> str:
    """A dialable address of the client's daemon node, with /p2p/."""
    for _ in range(200):
        pid, addrs = await c.identify()
        if addrs:
            a = addrs[0]
            return a if "/p2p/" in a else f"{a}/p2p/{pid}"
        await asyncio.sleep(0.01)
    raise AssertionError("the daemon's node does not listen")


async def next_kind(evs: ipc.EventStream, kind: str, timeout: float = 10) -> ipc.Event:
    async def take() -> ipc.Event:
        async for ev in evs:
            if ev.kind == kind:
                return ev
        raise AssertionError(f"the events ended before a {kind!r} event")
    return await asyncio.wait_for(take(), timeout)


@aio(60)
async def test_two_clients_at_once(daemons: Any) -> None:
    a = daemons("a")
    c1 = await ipc.connect(a.sock)
    c2 = await ipc.connect(a.sock)
    try:
        assert c1.peer_id == c2.peer_id and c1.peer_id.startswith("12D3KooW")
        e1, e2 = c1.events(["listen"]), c2.events(["listen"])
        await c1.subscribe(["listen"])
        await c2.subscribe(["listen"])
        bound = await c1.listen("/ip4/127.0.0.1/tcp/0")
        assert "/tcp/" in bound and "/tcp/0" not in bound
        ev1, ev2 = await next_kind(e1, "listen"), await next_kind(e2, "listen")
        assert ev1.address == ev2.address
        # a stream that is not read keeps maxsize events, then counts the rest
        small = c2.events(["listen"], maxsize=1)
        for _ in range(3):
            await c1.listen("/ip4/127.0.0.1/tcp/0")
        await next_kind(e2, "listen")
        await next_kind(e2, "listen")
        await next_kind(e2, "listen")  # all three reached c2
        first = await asyncio.wait_for(small.__anext__(), 5)
        lost = await asyncio.wait_for(small.__anext__(), 5)
        assert first.kind == "listen" and lost.kind == "lost" and lost.count == 2, lost
        assert small.dropped == 2
        small.close()
        # many calls from both at once, answered to the right caller
        res = await asyncio.gather(*[c.identify() for c in (c1, c2) for _ in range(100)])
        assert all(pid == c1.peer_id for pid, _ in res)
        await c1.close()
        assert c1.closed
        with pytest.raises(golemnet.ClosedError):
            await c1.peers()
        pid, _ = await c2.identify()  # the other client is unaffected
        assert pid == c2.peer_id
    finally:
        await c1.close()
        await c2.close()


@aio(60)
async def test_events_dial_message_disconnect(daemons: Any) -> None:
    a, b = daemons("a"), daemons("b")
    async with await ipc.connect(a.sock) as ca, await ipc.connect(b.sock) as cb:
        evs = ca.events()
        await ca.subscribe()
        ch = await ca.dial(await addr_of(cb))
        assert ch.peer_id == cb.peer_id and ch.id > 0
        ev = await next_kind(evs, "connect")
        assert ev.channel_id == ch.id and ev.peer_id == cb.peer_id
        assert (await ch.state()) == golemnet.ChannelState.OPEN
        infos = await ca.peers()
        assert [i.id for i in infos] == [ch.id] and infos[0].muxer == "/yamux/1.0.0"
        await cb.unicast(ca.peer_id, b"to a")
        ev = await next_kind(evs, "message")
        assert ev.data == b"to a" and ev.peer_id == cb.peer_id and ev.channel_id == ch.id
        assert await ch.ping() > 0
        m = await ch.metrics()
        assert m.bytes_in > 0 and m.messages_in >= 1
        await ch.close()
        ev = await next_kind(evs, "disconnect")
        assert ev.channel_id == ch.id
        with pytest.raises(golemnet.NotFoundError):
            await ca.channel(ch.id).send(b"x")


@aio(60)
async def test_streams_both_ways_and_errors(daemons: Any) -> None:
    a, b = daemons("a"), daemons("b")
    async with await ipc.connect(a.sock) as ca, await ipc.connect(b.sock) as cb:
        async def reverse(s: ipc.Stream) -> None:
            assert s.peer_id == ca.peer_id and s.protocol == "/rev/1.0.0"
            data = await s.read_all()
            await s.write(data[::-1])
            await s.close_write()
        path = await cb.set_handler("/rev/1.0.0", reverse)
        assert path and os.stat(path).st_mode & 0o777 == 0o600
        s = await ca.open_stream(await addr_of(cb), "/rev/1.0.0")
        payload = os.urandom(300_000)
        await s.write(payload)
        await s.close_write()
        assert await s.read_all() == payload[::-1]
        await s.close()
        with pytest.raises(golemnet.NegotiationError):
            await ca.open_stream(cb.peer_id, "/nobody/1.0.0")
        with pytest.raises(golemnet.RefusedError):
            await ca.dial("/ip4/127.0.0.1/tcp/1")
        with pytest.raises(golemnet.ParseError):
            await ca.dial("/ip4/1.2.3")
        await cb.set_handler("/rev/1.0.0", None)
        assert not os.path.exists(path)
        with pytest.raises(golemnet.NegotiationError):
            await ca.open_stream(cb.peer_id, "/rev/1.0.0")


@aio(30)
async def test_connect_errors(daemons: Any, tmp_path: Any) -> None:
    with pytest.raises(golemnet.NotFoundError):
        await ipc.connect(str(tmp_path / "nobody.sock"))
    with pytest.raises(golemnet.Error) as ei:
        await ipc.connect("/ip4/10.1.2.3/tcp/4001")
    assert ei.value.name == "GN_EACCES" and "loopback" in str(ei.value)
    with pytest.raises(golemnet.ParseError):
        await ipc.connect("/ip4/127.0.0.1/tcp/x")
    assert ipc.default_socket().endswith(".sock")
    a = daemons("a", "--control-tcp", "/ip4/127.0.0.1/tcp/0")
    async with await ipc.connect("/unix" + a.sock) as c:  # the multiaddr form
        assert (await c.identify())[0] == c.peer_id == a.ready["peer"]
    async with await ipc.connect(a.ready["control_tcp"]) as c:  # loopback TCP
        assert (await c.peers()) == [] and c.peer_id == a.ready["peer"]


KILLED_CLIENT = r"""
import asyncio, sys, golemnet.ipc as ipc
async def main():
    c = await ipc.connect(sys.argv[1])
    await c.subscribe()
    s = await c.open_stream(sys.argv[2], "/sink/1.0.0")
    chunk = b"x" * 65536
    await s.write(chunk)
    print("writing", flush=True)
    while True:
        await s.write(chunk)
asyncio.run(main())
"""


@aio(60)
async def test_client_killed_mid_stream(daemons: Any) -> None:
    a, b = daemons("a"), daemons("b")
    async with await ipc.connect(b.sock) as cb:
        ended: "asyncio.Future[int]" = asyncio.get_running_loop().create_future()

        async def sink(s: ipc.Stream) -> None:
            n = 0
            try:
                while True:
                    d = await s.read(65536)
                    if not d:
                        break
                    n += len(d)
            except (ConnectionError, OSError):
                pass
            if not ended.done():
                ended.set_result(n)
        await cb.set_handler("/sink/1.0.0", sink)
        target = await addr_of(cb)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        p = await asyncio.create_subprocess_exec(sys.executable, "-c", KILLED_CLIENT, a.sock,
                                                 target, stdout=asyncio.subprocess.PIPE,
                                                 env=env)
        try:
            line = await asyncio.wait_for(p.stdout.readline(), 20)  # type: ignore[union-attr]
            assert line.strip() == b"writing"
            await asyncio.sleep(0.2)
            p.kill()
            await p.wait()
            # the stream ends on B's side; A's daemon and B's client go on
            n = await asyncio.wait_for(ended, 15)
            assert n >= 65536
            async with await ipc.connect(a.sock) as ca:
                peers = await ca.peers()
                assert [i.peer_id for i in peers] == [cb.peer_id]
                s = await ca.open_stream(cb.peer_id, "/sink/1.0.0")
                await s.write(b"after")
                await s.close()
        finally:
            if p.returncode is None:
                p.kill()
                await p.wait()


STOPPED_CLIENT = r"""
import asyncio, sys, golemnet.ipc as ipc
async def main():
    c = await ipc.connect(sys.argv[1])
    evs = c.events(maxsize=100000)
    await c.subscribe()
    print("subscribed", flush=True)
    kinds = []
    async for ev in evs:
        kinds.append(ev.kind)
    last = [e for e in kinds if e != "message"][-1:]
    print(kinds.count("message"), " ".join(last), flush=True)
asyncio.run(main())
"""


@aio(90)
async def test_a_client_that_stops_reading_is_disconnected(daemons: Any) -> None:
    """A client process stopped (SIGSTOP) while events pour in passes the
    daemon's per-client bound: the daemon queues a "disconnecting" event
    with the reason and closes that connection only; the client, resumed,
    reads what was queued, then that event, then the end."""
    a = daemons("a", "--client-queue-max", "65536")
    b = daemons("b")
    async with await ipc.connect(a.sock) as ca, await ipc.connect(b.sock) as cb:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        p = await asyncio.create_subprocess_exec(sys.executable, "-c", STOPPED_CLIENT, a.sock,
                                                 stdout=asyncio.subprocess.PIPE, env=env)
        try:
            assert p.stdout is not None
            line = await asyncio.wait_for(p.stdout.readline(), 20)
            assert line.strip() == b"subscribed"
            p.send_signal(signal.SIGSTOP)
            ch = await cb.dial(await addr_of(ca))
            payload = b"m" * 1000
            for _ in range(3000):  # about 3 MB of message events for the stopped client
                while True:
                    try:
                        await ch.send(payload)
                        break
                    except golemnet.AgainError:
                        await asyncio.sleep(0.005)
            # the daemon and its other clients go on
            for _ in range(200):
                if [i.peer_id for i in await ca.peers()] == [cb.peer_id]:
                    break
                await asyncio.sleep(0.01)
            assert (await ca.identify())[0] == ca.peer_id
            p.send_signal(signal.SIGCONT)
            out = (await asyncio.wait_for(p.stdout.readline(), 30)).decode().split()
            assert out[-1] == "disconnecting" and 0 < int(out[0]) < 3000, out
            assert await asyncio.wait_for(p.wait(), 10) == 0
        finally:
            if p.returncode is None:
                p.send_signal(signal.SIGCONT)
                p.kill()
                await p.wait()


@aio(90)
async def test_dht_provide_and_find_through_daemons(daemons: Any) -> None:
    """Two daemons' nodes in kad server mode, B bootstrapped from A: B
    provides a key, A finds B as its provider and B's addresses; the DHT's
    errors come back as golemnet exceptions."""
    kad = ("--router", "kad", "--option", "kad.mode=server")
    a = daemons("a", *kad)
    b = daemons("b", *kad, "--bootstrap-kad", a.ready["listen"][0])
    async with await ipc.connect(a.sock) as ca, await ipc.connect(b.sock) as cb:
        key = bytes([0x12, 0x20]) + bytes(range(32))  # a sha2-256 multihash
        for _ in range(100):  # until B's routing table has A (bootstrap identified)
            try:
                await cb.dht_provide(key)
                break
            except golemnet.NoRouteError:
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("B never reached A's DHT")
        provs = await ca.dht_find_providers(key, max=5)
        assert [p for p, _ in provs] == [cb.peer_id], provs
        assert provs[0][1], provs
        assert await ca.dht_find_peer(cb.peer_id)
        with pytest.raises(golemnet.NotSupportedError):  # no validator for /nons/
            await ca.dht_put(b"/nons/k", b"v")
        with pytest.raises(golemnet.InvalidArgumentError):
            await ca.dht_get(b"")
