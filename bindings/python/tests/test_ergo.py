"""golemnet.ergo: two golemnet nodes with Ergo nodes in one process, over
Ergo TCP (embedded registrar on a private port) and over a
/golem/ergo/1.0.0 stream on a libp2p channel: send, call and reply, a
registered dataclass both ways, important delivery (delivered, and a
missing process raising NotFoundError), a call answered with an error, a
call nobody answers, the blocking API, the Python-side queue bound
pausing the C mailbox, remote spawn, links and monitors, and per-process
compression."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import time
from typing import Any, List, Tuple

import pytest

import golemnet
from conftest import LOOPBACK, aio

ergo = pytest.importorskip("golemnet.ergo")
if not hasattr(golemnet._golemnet, "ErgoNode"):
    pytest.skip("built without the ergo component", allow_module_level=True)


@ergo.register_type("#golemcap/shared/Point", fields={"X": "int32", "Y": "int32"})
@dataclasses.dataclass
class Point:
    X: int
    Y: int
    Label: str


@ergo.register_type("#golemcap/shared/Path")
@dataclasses.dataclass
class Path:
    Points: List[Point]
    Tags: dict


def free_port() -> int:
    """A port free for both TCP and UDP (the embedded registrar uses both)."""
    for _ in range(50):
        t = socket.socket()
        t.bind(("127.0.0.1", 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            u.close()
            t.close()
    raise RuntimeError("no free port")


async def tcp_pair(types: Tuple[type, ...] = (Point, Path)) -> Tuple[Any, Any, Any, Any]:
    reg = free_port()
    nodes, ens = [], []
    for name in ("alpha@localhost", "beta@localhost"):
        n = golemnet.Node(protocol_components="ergo",
                          options=ergo.options(name, "cookie123", port=0, registrar_port=reg))
        en = ergo.ErgoNode(n, types=types)
        await n.start()
        nodes.append(n)
        ens.append(en)
    return nodes[0], nodes[1], ens[0], ens[1]


async def echo_server(en: Any, name: str = "echo") -> Tuple[Any, List[Any]]:
    """A registered process that answers calls with ("echo", value) and keeps sends."""
    got: List[Any] = []

    async def on_message(m: Any) -> None:
        if m.call:
            if m.value == "fail":
                await m.reply_error("asked to fail")
            elif m.value == "ignore":
                pass
            else:
                await m.reply([ergo.Atom("echo"), m.value])
        else:
            got.append(m)

    p = await en.spawn(name, on_message=on_message)
    return p, got


async def wait_for(pred: Any, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if pred():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


@aio(60)
async def test_tcp_send_call_reply_types_important() -> None:
    a, b, ea, eb = await tcp_pair()
    try:
        server, got = await echo_server(ea)
        client = await eb.spawn()
        assert client.pid.node == "beta@localhost" and client.pid.id >= 1001
        assert server.pid.node == "alpha@localhost"
        to = ergo.ProcessID("echo", "alpha@localhost")
        # the first send connects by name through the registrar; its TCP pool then
        # grows to 3 links, and a sender's order byte picks a link by the link count,
        # so ordered checks wait for the whole pool
        # (alpha registers with the registrar shortly after its start: retry until it did)
        for attempt in range(100):
            try:
                await client.send(to, "first", important=True)
                break
            except golemnet.NotFoundError:
                if attempt == 99:
                    raise
                await asyncio.sleep(0.05)
        for _ in range(500):
            if (await eb.info("alpha@localhost")).links >= 3:
                break
            await asyncio.sleep(0.01)
        await wait_for(lambda: len(got) == 1)
        assert got.pop().value == "first"
        # every value kind
        values = [1, -2**63, 2**64 - 1, 1.5, "text", ergo.Atom("ok"), b"\x00\xff", True, [1, "x"],
                  {"k": [None, 2]}, {1: "int key"}, client.pid, to,
                  Point(1, -2, "p"), Path([Point(3, 4, "q")], {"a": 1}),
                  ergo.ErrorValue("boom")]
        for v in values:
            await client.send(to, v)
        await wait_for(lambda: len(got) == len(values))
        for m, v in zip(got, values):
            assert m.value == v, (m.value, v)
            assert type(m.value) is type(v)
            assert m.sender == client.pid and not m.call
        assert isinstance(got[5].value, ergo.Atom)
        # call by name, by PID and by alias; the answer carries a registered struct back
        ans = await client.call(to, Point(7, 8, "call"))
        assert ans == [ergo.Atom("echo"), Point(7, 8, "call")]
        assert await client.call(server.pid, "by pid") == ["echo", "by pid"]
        alias = await server.alias()
        assert await client.call(alias, 42) == ["echo", 42]
        await server.delete_alias(alias)
        with pytest.raises(golemnet.NotFoundError):
            await client.call(alias, 1, important=True, timeout=2)
        # a call answered with an error; a call nobody answers
        with pytest.raises(ergo.CallError) as ei:
            await client.call(to, "fail")
        assert ei.value.text == "asked to fail"
        with pytest.raises(golemnet.TimeoutError):
            await client.call(to, "ignore", timeout=0.3)
        # important delivery: confirmed, then a missing name and a missing PID
        n = len(got)
        await client.send(to, "important", important=True)
        await wait_for(lambda: len(got) == n + 1)
        assert got[-1].value == "important" and got[-1].important
        with pytest.raises(golemnet.NotFoundError) as ei2:
            await client.send(ergo.ProcessID("nobody", "alpha@localhost"), 1, important=True)
        assert "no such process" in str(ei2.value)
        with pytest.raises(golemnet.NotFoundError):
            await client.send(ergo.PID("alpha@localhost", 99999, server.pid.creation), 1,
                              important=True)
        info = await eb.info("alpha@localhost")
        assert info.node == "alpha@localhost" and info.carrier == "tcp" and info.initiator
        # the other way: alpha sends to a process of beta by PID
        await server.send(client.pid, "back", priority=ergo.Priority.HIGH)
        m = await client.receive(timeout=5)
        assert m.value == "back" and m.sender == server.pid and m.priority == ergo.Priority.HIGH
    finally:
        await b.close()
        await a.close()


@aio(60)
async def test_receive_queue_bound_and_local() -> None:
    a, b, ea, eb = await tcp_pair(types=())
    try:
        # queue=2, mailbox=3: at most 2 messages wait in Python, 3 in C, the rest is refused
        rx = await ea.spawn("rx", queue=2, mailbox=3)
        tx = await ea.spawn()
        sent = 0
        for i in range(10):
            try:
                await tx.send(rx.pid, i)  # local: the mailbox answers at once
                sent += 1
            except golemnet.AgainError:
                break
            await asyncio.sleep(0.05)
        assert sent == 5, sent  # 2 taken into Python's queue (then paused) + 3 in the mailbox
        out = [(await rx.receive(timeout=2)).value for _ in range(sent)]
        assert out == list(range(sent))
        with pytest.raises(golemnet.TimeoutError):
            await rx.receive(timeout=0.1)
        # async iteration and a local call
        srv, _ = await echo_server(ea, "lecho")
        assert await tx.call(ergo.ProcessID("lecho", "alpha@localhost"), "hi") == ["echo", "hi"]
        # a plain (not coroutine) callback: called once per message, in order
        seen: List[Any] = []
        cb = await ea.spawn(on_message=lambda m: seen.append(m.value), queue=1)
        for i in range(5):
            await tx.send(cb.pid, i)
        await wait_for(lambda: len(seen) == 5)
        assert seen == list(range(5))
        await rx.close()
        with pytest.raises(golemnet.NotFoundError):
            await tx.send(ergo.ProcessID("rx", "alpha@localhost"), 1)
        with pytest.raises(golemnet.ClosedError):
            await rx.send(tx.pid, 1)
        with pytest.raises(ValueError):
            await tx.send(rx.pid, None)
    finally:
        await b.close()
        await a.close()


@aio(60)
async def test_over_libp2p_channel() -> None:
    a = golemnet.Node(listen=[LOOPBACK], protocol_components="ergo",
                      options=ergo.options("gamma@localhost"))
    b = golemnet.Node(protocol_components="ergo",
                      options=ergo.options("delta@localhost"))
    ea = ergo.ErgoNode(a, types=[Point])
    eb = ergo.ErgoNode(b, types=[Point])
    await a.start()
    await b.start()
    try:
        srv, got = await echo_server(ea)
        cl = await eb.spawn()
        await b.dial(a.addrs[0] + "/p2p/" + a.peer_id)
        await eb.connect_peer(a.peer_id, "gamma@localhost")
        info = await eb.wait_connected("gamma@localhost")
        assert info.carrier == "stream"
        to = ergo.ProcessID("echo", "gamma@localhost")
        assert await cl.call(to, Point(1, 2, "s")) == ["echo", Point(1, 2, "s")]
        await cl.send(to, "x", important=True)  # in the mailbox: Python gets it soon after
        await wait_for(lambda: len(got) == 1)
        assert got[-1].value == "x" and got[-1].important
        with pytest.raises(golemnet.NotFoundError):
            await cl.send(ergo.ProcessID("missing", "gamma@localhost"), "x", important=True)
        # async for on the receiving side
        rx = await eb.spawn("rx")
        await srv.send(rx.pid, "to delta")
        async for m in rx:
            assert m.value == "to delta" and m.sender == srv.pid
            break
    finally:
        await b.close()
        await a.close()


def test_blocking() -> None:
    from golemnet.blocking import Node
    reg = free_port()
    a = Node(protocol_components="ergo",
             options=ergo.options("ba@localhost", "c", port=0, registrar_port=reg))
    b = Node(protocol_components="ergo",
             options=ergo.options("bb@localhost", "c", port=0, registrar_port=reg))
    ea = ergo.BlockingErgoNode(a, types=[Point])
    eb = ergo.BlockingErgoNode(b, types=[Point])
    a.start()
    b.start()
    try:
        srv = ea.spawn("srv")
        cl = eb.spawn()
        for attempt in range(100):  # ba registers with the registrar just after its start
            try:
                cl.send(ergo.ProcessID("srv", "ba@localhost"), Point(5, 6, "b"), important=True)
                break
            except golemnet.NotFoundError:
                if attempt == 99:
                    raise
                time.sleep(0.05)
        m = srv.receive(timeout=5)
        assert m.value == Point(5, 6, "b") and m.sender == cl.pid
        with pytest.raises(golemnet.NotFoundError):
            cl.send(ergo.ProcessID("none", "ba@localhost"), 1, important=True)
    finally:
        b.close()
        a.close()


def test_register_type_errors() -> None:
    with pytest.raises(TypeError):
        ergo.register_type("#x/NotDataclass")(int)

    @dataclasses.dataclass
    class Odd:
        f: complex
    with pytest.raises(TypeError):
        ergo.register_type("#x/Odd")(Odd)
    assert ergo.options("n@h", "ck", port=0) == ["ergo.node=n@h", "ergo.cookie=ck", "ergo.port=0"]


# ---- remote spawn and application start (golemnet/ergo.h; docs/ergo-node.md)


async def spawn_cases(ea: Any, eb: Any, node_b: str) -> None:
    """ea asks eb (named node_b) to spawn and start: refused, granted, bounds."""
    spawned: List[Any] = []
    got: List[Any] = []

    async def handler(p: Any, rq: Any) -> None:
        spawned.append((p, rq))
        async for m in p:
            got.append(m.value)
            if m.call:
                await m.reply(["worker", m.value])

    drv = await ea.spawn()
    with pytest.raises(ergo.CallError) as ei:
        await drv.remote_spawn(node_b, "worker")
    assert ei.value.text == "unknown name"
    await eb.enable_spawn("worker", handler)
    pid = await drv.remote_spawn(node_b, "worker", register="w1", args=["golem-arg", 42])
    assert isinstance(pid, ergo.PID) and pid.node == node_b and pid.id >= 1001
    await wait_for(lambda: len(spawned) == 1)
    p, rq = spawned[0]
    assert p.pid == pid and p.name == "w1"
    assert rq.factory == "worker" and rq.parent == drv.pid and rq.register == "w1"
    assert rq.args == ["golem-arg", 42] and rq.node == drv.pid.node
    # the new process: by PID and by its registered name
    assert await drv.call(pid, "hi") == ["worker", "hi"]
    await drv.send(ergo.ProcessID("w1", node_b), "by-name", important=True)
    await wait_for(lambda: "by-name" in got)
    with pytest.raises(ergo.CallError, match="resource is taken"):
        await drv.remote_spawn(node_b, "worker", register="w1")
    # the node's own requester process (no process given)
    pid2 = await ea.remote_spawn(node_b, "worker")
    assert pid2 != pid and pid2.node == node_b
    # a node list without us: not allowed; with us: granted; disabled again
    await eb.enable_spawn("listed", handler, nodes=["nobody@localhost"])
    with pytest.raises(ergo.CallError, match="not allowed"):
        await drv.remote_spawn(node_b, "listed")
    await eb.enable_spawn("listed", handler, nodes=[drv.pid.node])
    await drv.remote_spawn(node_b, "listed")
    await eb.disable_spawn("listed", [drv.pid.node])
    with pytest.raises(ergo.CallError, match="not allowed"):
        await drv.remote_spawn(node_b, "listed")
    await eb.disable_spawn("listed")
    with pytest.raises(golemnet.NotFoundError):
        await eb.disable_spawn("listed")
    # application start
    starts: List[Any] = []
    with pytest.raises(ergo.CallError, match="unknown name"):
        await drv.remote_app_start(node_b, "golem_app")
    await eb.enable_app_start("golem_app", starts.append)
    await drv.remote_app_start(node_b, "golem_app", 3)
    await wait_for(lambda: len(starts) == 1)
    assert starts[0].name == "golem_app" and starts[0].mode == 3
    assert starts[0].core == drv.pid and starts[0].node == drv.pid.node
    await eb.enable_app_start("only_them", starts.append, nodes=["nobody@localhost"])
    with pytest.raises(ergo.CallError, match="not allowed"):
        await drv.remote_app_start(node_b, "only_them")
    await eb.disable_app_start("golem_app")
    with pytest.raises(ergo.CallError, match="unknown name"):
        await drv.remote_app_start(node_b, "golem_app")
    with pytest.raises(golemnet.Error):
        await drv.remote_app_start(node_b, "golem_app", 9)
    # args whose truth cannot be told: that error, not a SystemError
    class NoBool:
        def __bool__(self) -> bool:
            raise ZeroDivisionError("no truth")
    with pytest.raises(ZeroDivisionError):
        ea._c.remote_spawn(drv._h, node_b, "worker", None, NoBool(), 1000, 0)
    # max=: one process of "capped" alive at a time
    capped: List[Any] = []
    await eb.enable_spawn("capped", lambda p, rq: capped.append(p), max=1)
    await drv.remote_spawn(node_b, "capped")
    with pytest.raises(ergo.CallError, match="limit exceeded"):
        await drv.remote_spawn(node_b, "capped")
    await wait_for(lambda: len(capped) == 1)
    await capped[0].close()
    await drv.remote_spawn(node_b, "capped")
    await wait_for(lambda: len(capped) == 2)
    await capped[1].close()
    await eb.disable_spawn("capped")
    # a handler that raises: the error goes to the loop's handler, later requests work
    errors: List[Any] = []
    loop = asyncio.get_running_loop()
    old = loop.get_exception_handler()
    loop.set_exception_handler(lambda lp, ctx: errors.append(ctx.get("exception")))
    try:
        def boom(p: Any, rq: Any) -> None:
            capped.append(p)
            raise RuntimeError("handler bug")
        await eb.enable_spawn("boom", boom)
        await drv.remote_spawn(node_b, "boom")
        bp = await drv.remote_spawn(node_b, "boom")
        await wait_for(lambda: len(errors) == 2)
        assert all(isinstance(e, RuntimeError) for e in errors)
        await drv.send(bp, "still-reachable", important=True)
        assert (await capped[-1].receive(timeout=5)).value == "still-reachable"
        for q in capped[2:]:
            await q.close()
        await eb.disable_spawn("boom")
    finally:
        loop.set_exception_handler(old)
    for q, _ in spawned:
        await q.close()
    await drv.close()


async def spawn_timeout_and_reset(ea: Any, eb: Any, node_b: str) -> None:
    """eb detached (its connection stays): requests time out; a disconnect resets them."""
    await eb.close()
    drv = await ea.spawn()
    with pytest.raises(golemnet.TimeoutError):
        await drv.remote_spawn(node_b, "worker", timeout=0.2)
    with pytest.raises(golemnet.TimeoutError):
        await drv.remote_app_start(node_b, "golem_app", timeout=0.2)
    pending = asyncio.ensure_future(drv.remote_spawn(node_b, "worker", timeout=10))
    await asyncio.sleep(0.2)
    await ea.disconnect(node_b)
    with pytest.raises(golemnet.ResetError):
        await pending


@aio(60)
async def test_remote_spawn_over_tcp() -> None:
    a, b, ea, eb = await tcp_pair()
    try:
        await eb.spawn()  # names known; and beta's registration settles
        drv = await ea.spawn()
        for attempt in range(100):  # beta registers with the registrar just after its start
            try:
                await drv.remote_spawn("beta@localhost", "none")
            except ergo.CallError:
                break
            except golemnet.NotFoundError:
                if attempt == 99:
                    raise
                await asyncio.sleep(0.05)
        await drv.close()
        await spawn_cases(ea, eb, "beta@localhost")
        await spawn_timeout_and_reset(ea, eb, "beta@localhost")
    finally:
        await b.close()
        await a.close()


@aio(60)
async def test_remote_spawn_over_libp2p_channel() -> None:
    a = golemnet.Node(listen=[LOOPBACK], protocol_components="ergo",
                      options=ergo.options("sa@localhost"))
    b = golemnet.Node(protocol_components="ergo", options=ergo.options("sb@localhost"))
    ea = ergo.ErgoNode(a)
    eb = ergo.ErgoNode(b)
    await a.start()
    await b.start()
    try:
        await ea.spawn()
        await eb.spawn()
        await b.dial(a.addrs[0] + "/p2p/" + a.peer_id)
        await eb.connect_peer(a.peer_id, "sa@localhost")
        await eb.wait_connected("sa@localhost")
        await spawn_cases(eb, ea, "sa@localhost")
        await spawn_timeout_and_reset(eb, ea, "sa@localhost")
    finally:
        await b.close()
        await a.close()


def test_remote_spawn_blocking() -> None:
    import queue as _q
    from golemnet.blocking import Node
    reg = free_port()
    a = Node(protocol_components="ergo",
             options=ergo.options("bsa@localhost", "c", port=0, registrar_port=reg))
    b = Node(protocol_components="ergo",
             options=ergo.options("bsb@localhost", "c", port=0, registrar_port=reg))
    ea = ergo.BlockingErgoNode(a)
    eb = ergo.BlockingErgoNode(b)
    a.start()
    b.start()
    try:
        made: "_q.Queue[Any]" = _q.Queue()
        ea.enable_spawn("bw", lambda p, rq: made.put((p, rq)))
        ea.enable_app_start("bapp", lambda rq: made.put(rq))
        for attempt in range(100):  # bsa registers with the registrar just after its start
            try:
                pid = eb.remote_spawn("bsa@localhost", "bw", args=[1])
                break
            except golemnet.NotFoundError:
                if attempt == 99:
                    raise
                time.sleep(0.05)
        p, rq = made.get(timeout=5)
        assert isinstance(p, ergo.BlockingProcess) and p.pid == pid and rq.args == [1]
        cl = eb.spawn()
        cl.send(pid, "hello", important=True)
        assert p.receive(timeout=5).value == "hello"
        eb.remote_app_start("bsa@localhost", "bapp", 1)
        assert made.get(timeout=5).mode == 1
        with pytest.raises(ergo.CallError, match="unknown name"):
            cl.remote_spawn("bsa@localhost", "nope")
        ea.disable_spawn("bw")
    finally:
        b.close()
        a.close()


# ---------------------------------------------------------------- links, monitors, events

async def wait_registered(p: Any, to: Any) -> None:
    """Retries an important send until the peer's name is known to the registrar."""
    for attempt in range(100):
        try:
            await p.send(to, "hello", important=True)
            return
        except golemnet.NotFoundError:
            if attempt == 99:
                raise
            await asyncio.sleep(0.05)


async def next_signal(p: Any, timeout: float = 5.0) -> Any:
    s = await p.receive(timeout=timeout)
    assert isinstance(s, ergo.Signal), s
    return s


@aio(90)
async def test_links_monitors_signals_events() -> None:
    a, b, ea, eb = await tcp_pair(types=())
    try:
        # alpha: the targets and the event owner; beta: the consumer
        sink = await ea.spawn("sink")
        w = await eb.spawn()
        await wait_registered(w, ergo.ProcessID("sink", "alpha@localhost"))
        await sink.receive(timeout=5)

        # a PID (link) and a name (monitor): the target exits with a reason
        t1 = await ea.spawn("t1")
        await w.link(t1.pid)
        await w.monitor(ergo.ProcessID("t1", "alpha@localhost"))
        with pytest.raises(golemnet.ExistsError):
            await w.link(t1.pid)  # the same link again (refused before the wire)
        await t1.exit("shutdown")
        got = {(s.kind, type(s.target).__name__): s for s in
               [await next_signal(w), await next_signal(w)]}
        assert set(got) == {("exit", "PID"), ("down", "ProcessID")}, got
        assert got[("exit", "PID")].target == t1.pid
        assert got[("down", "ProcessID")].target == ergo.ProcessID("t1", "alpha@localhost")
        assert all(s.reason == "shutdown" and not s.direct for s in got.values())

        # an alias: deleting it fires "unregistered"; close() ends with "normal"
        t2 = await ea.spawn()
        al = await t2.alias()
        await w.monitor(al)
        await w.link(t2.pid)
        await t2.delete_alias(al)
        s = await next_signal(w)
        assert (s.kind, s.target, s.reason) == ("down", al, "unregistered"), s
        await t2.close()
        s = await next_signal(w)
        assert (s.kind, s.target, s.reason) == ("exit", t2.pid, "normal"), s

        # unlink / demonitor stop the signals: a message sent after the exit comes first
        t3 = await ea.spawn("t3")
        await w.link(t3.pid)
        await w.monitor(ergo.ProcessID("t3", "alpha@localhost"))
        await w.unlink(t3.pid)
        await w.demonitor(ergo.ProcessID("t3", "alpha@localhost"))
        with pytest.raises(golemnet.NotFoundError):
            await w.unlink(t3.pid)  # no such link any more
        await t3.exit("kill")
        await sink.send(w.pid, "after")  # same connection: behind any termination frame
        m = await w.receive(timeout=5)
        assert isinstance(m, ergo.Message) and m.value == "after", m
        with pytest.raises(golemnet.TimeoutError):
            await w.receive(timeout=0.2)

        # an event: publish reaches the remote subscriber as a message with the event as `to`
        owner = await ea.spawn()
        ev = await owner.register_event("ticks")
        assert ev == ergo.Event("ticks", "alpha@localhost")
        await w.monitor(ev)
        w2 = await eb.spawn()
        await w2.link(ev)
        assert await owner.publish("ticks", {"price": 7}) == 1  # one remote node
        for p in (w, w2):
            m = await p.receive(timeout=5)
            assert isinstance(m, ergo.Message) and m.to == ev and m.value == {"price": 7}, m
            assert m.sender == owner.pid and m.event_time and m.event_time > 0
        await w2.unlink(ev)
        await owner.unregister_event("ticks")
        s = await next_signal(w)
        assert (s.kind, s.target, s.reason) == ("down", ev, "unregistered"), s
        with pytest.raises(golemnet.TimeoutError):
            await w2.receive(timeout=0.2)

        # exit signals (direct), both ways, and locally
        await w.send_exit(sink.pid, "go away")
        s = await next_signal(sink)
        assert (s.kind, s.target, s.reason, s.direct) == ("exit", w.pid, "go away", True), s
        local = await eb.spawn()
        await local.send_exit(w.pid, "local")
        s = await next_signal(w)
        assert (s.kind, s.target, s.reason, s.direct) == ("exit", local.pid, "local", True)

        # errors: unknown process, unknown event (remote and local), bad arguments
        with pytest.raises(golemnet.NotFoundError):
            await w.link(ergo.ProcessID("nobody", "alpha@localhost"))
        with pytest.raises(golemnet.NotFoundError):
            await w.monitor(ergo.PID("alpha@localhost", 99999, sink.pid.creation))
        with pytest.raises(golemnet.NotFoundError):
            await w.monitor(ergo.Event("none", "alpha@localhost"))
        with pytest.raises(golemnet.NotFoundError):
            await w.link(ergo.Event("none", "beta@localhost"))
        with pytest.raises(golemnet.NotFoundError):
            await owner.publish("ticks", 1)  # unregistered above
        with pytest.raises(golemnet.NotFoundError):
            await owner.unregister_event("ticks")
        with pytest.raises(golemnet.ExistsError):
            e2 = await owner.register_event("dup")
            assert e2.name == "dup"
            await sink.register_event("dup")
        with pytest.raises(golemnet.NotFoundError):
            await local.send_exit(ergo.PID("beta@localhost", 99999, 0), "x")
        with pytest.raises(TypeError):
            await w.link("t1")  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            await w.send_exit(sink.pid, "")
        with pytest.raises(TypeError):
            await w.send(ev, 1)  # type: ignore[arg-type]  # an event is not a send target

        # connection loss: "no connection" on every link and monitor of that node
        t4 = await ea.spawn("t4")
        await w.link(t4.pid)
        await w.monitor(ergo.ProcessID("t4", "alpha@localhost"))
        await eb.disconnect("alpha@localhost")
        got2 = sorted([(s.kind, s.reason) for s in [await next_signal(w), await next_signal(w)]])
        assert got2 == [("down", "no connection"), ("exit", "no connection")], got2
        await w.exit("done")
        with pytest.raises(golemnet.ClosedError):
            await w.link(t4.pid)
    finally:
        await b.close()
        await a.close()


@aio(60)
async def test_signals_on_callback_and_local() -> None:
    a, b, ea, eb = await tcp_pair(types=())
    try:
        msgs: List[Any] = []
        sigs: List[Any] = []

        async def on_signal(s: Any) -> None:
            sigs.append(s)
        # on_message + on_signal: signals go to their own callback
        p = await ea.spawn(on_message=msgs.append, on_signal=on_signal)
        t = await ea.spawn("lt")
        await p.link(ergo.ProcessID("lt", "alpha@localhost"))  # local: no wire
        with pytest.raises(golemnet.ExistsError):
            await p.link(ergo.ProcessID("lt", "alpha@localhost"))
        await p.monitor(t.pid)
        ev = await t.register_event("lev")
        await p.monitor(ev)
        assert await t.publish("lev", "tick") == 1
        await wait_for(lambda: len(msgs) == 1)
        assert msgs[0].to == ev and msgs[0].value == "tick"
        await t.exit("bye")
        await wait_for(lambda: len(sigs) == 3)
        assert sorted((s.kind, type(s.target).__name__, s.reason) for s in sigs) == [
            ("down", "Event", "unregistered"), ("down", "PID", "bye"),
            ("exit", "ProcessID", "bye")], sigs
        # on_message without on_signal: signals are dropped, messages still flow
        q = await ea.spawn(on_message=msgs.append)
        t2 = await ea.spawn()
        await q.link(t2.pid)
        await t2.close()
        await p.send(q.pid, "still")
        await wait_for(lambda: len(msgs) == 2)
        assert msgs[1].value == "still"
        with pytest.raises(golemnet.NotFoundError):
            await p.link(ergo.PID("alpha@localhost", 99999, 0))
    finally:
        await b.close()
        await a.close()


def test_blocking_links() -> None:
    from golemnet.blocking import Node
    reg = free_port()
    a = Node(protocol_components="ergo",
             options=ergo.options("bla@localhost", "c", port=0, registrar_port=reg))
    b = Node(protocol_components="ergo",
             options=ergo.options("blb@localhost", "c", port=0, registrar_port=reg))
    ea = ergo.BlockingErgoNode(a)
    eb = ergo.BlockingErgoNode(b)
    a.start()
    b.start()
    try:
        t = ea.spawn("bt")
        w = eb.spawn()
        for attempt in range(100):
            try:
                w.monitor(ergo.ProcessID("bt", "bla@localhost"))
                break
            except golemnet.NotFoundError:
                if attempt == 99:
                    raise
                time.sleep(0.05)
        ev = t.register_event("bev")
        w.link(ev)
        assert t.publish("bev", 5) == 1
        m = w.receive(timeout=5)
        assert isinstance(m, ergo.Message) and m.to == ev and m.value == 5
        w.unlink(ev)
        t.unregister_event("bev")
        t.send_exit(w.pid, "hey")
        s = w.receive(timeout=5)
        assert isinstance(s, ergo.Signal) and s.direct and s.reason == "hey"
        w.demonitor(ergo.ProcessID("bt", "bla@localhost"))
        w.link(t.pid)
        t.exit("shutdown")
        s = w.receive(timeout=5)
        assert (s.kind, s.target, s.reason) == ("exit", t.pid, "shutdown"), s
    finally:
        b.close()
        a.close()
# ---- the note dispatch without a node (a fake _golemnet.ErgoNode)


class _FakeC:
    def __init__(self, batches: List[Any]) -> None:
        self.batches = batches
        self.calls: List[Any] = []

    def poll(self, n: int) -> Any:
        return self.batches.pop(0) if self.batches else []

    def free_proc(self, h: int, tok: int) -> None:
        self.calls.append(("free_proc", h, tok))

    def enable(self, *args: Any) -> None:
        self.calls.append(("enable",) + args)


def _bare_node(loop: Any, fake: _FakeC) -> Any:
    en = object.__new__(ergo.ErgoNode)
    en._c = fake
    en._loop = loop
    en._pending = {}
    en._procs = {}
    en._tasks = set()
    en._closed = False
    en._tokens = iter(range(1, 1000))
    return en


def test_stream_handler_error_keeps_the_batch() -> None:
    """A raising handler costs only its own note: the rest of the batch (a reply to
    another call, a message) is still dispatched; the error reaches the loop's handler;
    a spawn note for a stream nobody reads frees its process."""
    from golemnet import _golemnet as _c
    loop = asyncio.new_event_loop()
    try:
        errors: List[Any] = []
        loop.set_exception_handler(lambda lp, ctx: errors.append(ctx.get("exception")))
        pid = ergo.PID("n@h", 1001, 1)
        fake = _FakeC([[
            (_c.ERGO_STREAM, 7, 0, ["a@h", "app", 0, pid], None, None),
            (_c.ERGO_STREAM, 9, 0, [1234, 5, pid, pid, "", "f", "a@h", []], None, None),
            (_c.ERGO_REPLY, 8, 0, "answer", None, None),
        ]])
        en = _bare_node(loop, fake)

        def boom(rq: Any) -> None:
            raise RuntimeError("handler bug")
        en._pending[7] = ergo._Stream(en, True, boom, 0)
        fut = loop.create_future()
        en._pending[8] = fut
        en._on_notes()
        assert fut.done() and fut.result() == (0, "answer", None)
        assert len(errors) == 1 and isinstance(errors[0], RuntimeError)
        assert fake.calls == [("free_proc", 1234, 0)]
    finally:
        loop.close()


def test_enable_cancelled_after_submit_disables() -> None:
    """An enable cancelled after it was submitted sends a disable: the loop side must
    not keep a factory whose notes nobody reads."""
    loop = asyncio.new_event_loop()
    try:
        fake = _FakeC([])
        en = _bare_node(loop, fake)

        async def run() -> None:
            t = asyncio.ensure_future(en.enable_spawn("w", lambda p, rq: None, max=3))
            await asyncio.sleep(0.01)
            t.cancel()
            with pytest.raises(asyncio.CancelledError):
                await t
        loop.run_until_complete(run())
        assert fake.calls[0][:8] == ("enable", False, True, "w", None, 1024, 3, fake.calls[0][7])
        assert fake.calls[1] == ("enable", False, False, "w", None, 0, 0, 0, 0)
        assert en._pending == {}
    finally:
        loop.close()


@aio(90)
async def test_link_withdrawn_exit_reason_on_signal_alone() -> None:
    a, b, ea, eb = await tcp_pair(types=())
    try:
        sink = await ea.spawn("sink2")
        w = await eb.spawn()
        await wait_registered(w, ergo.ProcessID("sink2", "alpha@localhost"))
        t = await ea.spawn()
        loop = asyncio.get_running_loop()

        # unlink / demonitor before the confirmation: link() ends at once with ClosedError
        # (the node answered the cancelled request), not with a TimeoutError much later
        for op, undo in ((w.link, w.unlink), (w.monitor, w.demonitor)):
            task = asyncio.ensure_future(op(t.pid))
            await asyncio.sleep(0)  # the request is submitted
            await undo(t.pid)
            t0 = loop.time()
            try:  # (a confirmation that overtook the undo, under load, ends it normally)
                await asyncio.wait_for(task, 3)
            except golemnet.ClosedError:
                pass
            assert loop.time() - t0 < 3

        # a link whose wait times out (or is cancelled) is withdrawn: retrying is no
        # ExistsError, and only the link that succeeded brings a signal
        timeouts = 0
        for _ in range(50):  # bounded: until the Python-side wait times out first
            try:
                await w.link(t.pid, timeout=0.0001)
            except golemnet.TimeoutError:
                timeouts += 1
                break
            await w.unlink(t.pid)
        assert timeouts == 1
        task = asyncio.ensure_future(w.monitor(t.pid))
        await asyncio.sleep(0)
        if task.cancel():
            with pytest.raises(asyncio.CancelledError):
                await task
        else:  # confirmed already (under load)
            await w.demonitor(t.pid)
        await w.link(t.pid)  # not ExistsError: the timed-out one was withdrawn
        await w.monitor(t.pid)  # nor the cancelled one
        await t.exit("gone")
        got = sorted((s.kind, s.reason) for s in [await next_signal(w), await next_signal(w)])
        assert got == [("down", "gone"), ("exit", "gone")], got
        await sink.send(w.pid, "after")  # behind any further termination frame
        m = await w.receive(timeout=5)
        assert isinstance(m, ergo.Message) and m.value == "after", m

        # exit() with a reason C refuses (a NUL): ValueError, and the process lives on
        t2 = await ea.spawn()
        await w.link(t2.pid)
        with pytest.raises(ValueError):
            await t2.exit("bad\0reason")
        await t2.register("still_here")
        await t2.exit("fine")
        s = await next_signal(w)
        assert (s.kind, s.target, s.reason) == ("exit", t2.pid, "fine"), s

        # a C exit that fails: the process is freed as close() frees it, not orphaned
        class Refusing:
            def __init__(self, real: Any) -> None:
                self._real = real

            def __getattr__(self, name: str) -> Any:
                return getattr(self._real, name)

            def proc_exit(self, *args: Any) -> None:
                raise ValueError("refused")
        t5 = await ea.spawn("t5")
        await w.link(t5.pid)
        real = ea._c
        ea._c = Refusing(real)
        try:
            with pytest.raises(ValueError):
                await t5.exit("never")
        finally:
            ea._c = real
        s = await next_signal(w)
        assert (s.kind, s.target, s.reason) == ("exit", t5.pid, "normal"), s

        # on_signal without on_message: signals go to the callback, not the queue
        sigs: List[Any] = []
        p = await eb.spawn(on_signal=sigs.append)
        t3 = await ea.spawn()
        await p.link(t3.pid)
        await t3.exit("bye")
        await wait_for(lambda: len(sigs) == 1)
        assert (sigs[0].kind, sigs[0].reason) == ("exit", "bye")
        assert p.queued == 0
        await sink.send(p.pid, "msg")  # messages still queue for receive()
        m = await p.receive(timeout=5)
        assert isinstance(m, ergo.Message) and m.value == "msg", m
    finally:
        await b.close()
        await a.close()


# ---- per-process compression (golemnet/ergo.h gn_ergo_compression; docs/ergo-node.md)


@aio(60)
async def test_compression_large_value_arrives() -> None:
    """beta accepts frames of at most 8 KiB: a 200 KB value reaches it only compressed, so
    the send that passes shows the frame went out compressed, and the value arrives whole."""
    reg = free_port()
    a = golemnet.Node(protocol_components="ergo",
                      options=ergo.options("za@localhost", "zc", port=0, registrar_port=reg))
    b = golemnet.Node(protocol_components="ergo",
                      options=ergo.options("zb@localhost", "zc", port=0, registrar_port=reg,
                                           max_message_size=8192))
    ea, eb = ergo.ErgoNode(a), ergo.ErgoNode(b)
    async with a, b:
        rx = await eb.spawn()
        plain = await ea.spawn()
        assert await plain.compression() == ergo.Compression(enable=False)
        big = b"golemnet " * 22000 + b"end"  # 198003 bytes (binary), compress far below 8 KiB
        for attempt in range(100):  # zb registers just after its start
            try:
                await plain.send(rx.pid, "hello", important=True)
                break
            except golemnet.NotFoundError:
                if attempt == 99:
                    raise
                await asyncio.sleep(0.05)
        assert (await rx.receive(timeout=5)).value == "hello"
        with pytest.raises(golemnet.TooBigError):  # uncompressed: above beta's limit
            await plain.send(rx.pid, big, important=True)

        z = ergo.Compression(type="gzip", level="speed", threshold=2048)
        zp = await ea.spawn(compression=z)
        assert await zp.compression() == z
        await zp.send(rx.pid, big, important=True)
        m = await rx.receive(timeout=5)
        assert m.value == big and m.sender == zp.pid

        # changed later: LZW, then zlib on the plain process, then off again
        await zp.set_compression(ergo.Compression(type="lzw", threshold=0))
        assert await zp.compression() == ergo.Compression(type="lzw", threshold=1024)
        await zp.send(rx.pid, big + b"!", important=True)
        assert (await rx.receive(timeout=5)).value == big + b"!"
        await plain.set_compression(ergo.Compression(type="zlib"))
        await plain.send(rx.pid, [big, 7], important=True)
        assert (await rx.receive(timeout=5)).value == [big, 7]
        await plain.set_compression(None)
        assert (await plain.compression()).enable is False
        with pytest.raises(golemnet.TooBigError):
            await plain.send(rx.pid, big, important=True)

        # refused settings: threshold 1..1023 (by the library), unknown type or level
        for bad in (ergo.Compression(threshold=1), ergo.Compression(threshold=1023)):
            with pytest.raises(golemnet.InvalidArgumentError):
                await zp.set_compression(bad)
            with pytest.raises(golemnet.InvalidArgumentError):
                await ea.spawn(compression=bad)
        with pytest.raises(golemnet.InvalidArgumentError):
            await zp.set_compression(ergo.Compression(type="zstd"))
        with pytest.raises(golemnet.InvalidArgumentError):
            await zp.set_compression(ergo.Compression(level="best"))
        with pytest.raises(TypeError):
            await zp.set_compression("gzip")  # type: ignore[arg-type]
        # a refused setting leaves the previous one
        assert await zp.compression() == ergo.Compression(type="lzw", threshold=1024)
        await zp.close()
        with pytest.raises(golemnet.ClosedError):
            await zp.compression()


def test_compression_blocking() -> None:
    from golemnet.blocking import Node
    a = Node(protocol_components="ergo", options=ergo.options("zba@localhost", acceptor=False,
                                                              registrar="off"))
    ea = ergo.BlockingErgoNode(a)
    a.start()
    try:
        p = ea.spawn(compression=ergo.Compression(type="zlib", threshold=4096))
        assert p.compression() == ergo.Compression(type="zlib", threshold=4096)
        p.set_compression(ergo.Compression(level="size"))
        assert p.compression() == ergo.Compression(level="size")
        with pytest.raises(golemnet.InvalidArgumentError):
            p.set_compression(ergo.Compression(threshold=512))
    finally:
        a.close()
