"""Error context (address, protocol, peer on golemnet exceptions) and the
connection events (connect, disconnect, identify), with nodes on loopback."""

from __future__ import annotations

import asyncio
import pickle
import socket
from typing import Any, List

import pytest

import golemnet
from golemnet import errors

from conftest import Nodes, aio

ECHO = "/test/ctx/echo/1.0.0"


async def echo_handler(stream: golemnet.Stream) -> None:
    await stream.write(await stream.read_all())


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return int(port)


# ---------------------------------------------------------------- error context

def test_error_context_fields_str_and_pickle() -> None:
    code = errors.CODES["GN_ENEGOTIATION"]
    e = golemnet.error_from_code(code)
    assert (e.address, e.protocol, e.peer) == (None, None, None)
    assert str(e) == e.message and str(e).startswith("GN_ENEGOTIATION")
    e.add_context(protocol="/p/1", peer="12D3KooWx")
    assert (e.protocol, e.peer) == ("/p/1", "12D3KooWx")
    assert str(e) == f"{e.message} (protocol /p/1, peer 12D3KooWx)"
    e.add_context(address="/ip4/1.2.3.4/tcp/5", protocol="/other", peer="other")
    assert (e.address, e.protocol, e.peer) == ("/ip4/1.2.3.4/tcp/5", "/p/1", "12D3KooWx")
    assert "address /ip4/1.2.3.4/tcp/5" in str(e)
    f = pickle.loads(pickle.dumps(e))
    assert type(f) is golemnet.NegotiationError and str(f) == str(e) and f.code == code
    g = golemnet.error_from_code(errors.CODES["GN_ECONNREFUSED"], "custom", address="/a")
    assert isinstance(g, ConnectionRefusedError) and str(g) == "custom (address /a)"


@aio(30)
async def test_errors_carry_address_protocol_peer() -> None:
    async with Nodes() as ns:
        a = await ns.new()
        b = await ns.new(listen=False)
        await a.set_handler(ECHO, echo_handler)
        # dial: the address, and the /p2p/ id it names
        refused = f"/ip4/127.0.0.1/tcp/{free_port()}"
        with pytest.raises(golemnet.RefusedError) as ei:
            await b.dial(refused)
        assert ei.value.address == refused and ei.value.peer is None
        assert refused in str(ei.value)
        wrong = golemnet.peer_id_from_seed(5)
        addr = a.addrs[0].rsplit("/p2p/", 1)[0] + "/p2p/" + wrong
        with pytest.raises(golemnet.PeerIdError) as ei:
            await b.dial(addr)
        assert ei.value.address == addr and ei.value.peer == wrong
        # the peer ID that answered instead (a's)
        assert ei.value.received_peer == a.peer_id
        assert f"received_peer {a.peer_id}" in str(ei.value)
        f = pickle.loads(pickle.dumps(ei.value))
        assert type(f) is golemnet.PeerIdError and f.received_peer == a.peer_id
        # other dial errors have no received peer
        assert getattr(golemnet.error_from_code(errors.CODES["GN_EPEERID"]), "received_peer") is None
        with pytest.raises(golemnet.ParseError) as ei:
            await b.dial("/ip4/999.1.2.3/tcp/1")
        assert ei.value.address == "/ip4/999.1.2.3/tcp/1"
        # a bare peer ID nobody knows: the peer, no address
        nobody = golemnet.peer_id_from_seed(77)
        with pytest.raises(golemnet.Error) as ei:
            await b.dial(nobody)
        assert ei.value.peer == nobody and ei.value.address is None
        # open_stream: the protocol and the channel's peer (and address)
        ch = await b.dial(a.addrs[0])
        with pytest.raises(golemnet.NegotiationError) as ei:
            await ch.open_stream("/nobody/serves/this")
        e = ei.value
        assert (e.protocol, e.peer) == ("/nobody/serves/this", a.peer_id)
        assert e.address == ch.remote_addr
        assert "protocol /nobody/serves/this" in str(e) and a.peer_id in str(e)
        # stream errors: the stream's protocol and peer
        st = await ch.open_stream(ECHO)
        await st.close_write()
        with pytest.raises(golemnet.PipeError) as ei:
            await st.write(b"after close_write")
        assert (ei.value.protocol, ei.value.peer) == (ECHO, a.peer_id)
        await st.close()
        with pytest.raises(golemnet.ClosedError) as ei:
            await st.read()
        assert (ei.value.protocol, ei.value.peer) == (ECHO, a.peer_id)
        # unicast: refused at once (the address) or failing later (the peer,
        # in send_failures)
        with pytest.raises(golemnet.ParseError) as ei:
            await b.unicast("/ip4/1.2.3.4/tcp", b"x")
        assert ei.value.address == "/ip4/1.2.3.4/tcp"
        with pytest.raises(golemnet.TooBigError) as ei:
            await b.unicast(a.peer_id, b"x" * (2 << 20))
        assert ei.value.peer == a.peer_id
        req = await b.unicast(nobody, b"nobody")
        for _ in range(200):
            if b.send_failures:
                break
            await asyncio.sleep(0.02)
        assert b.send_failures and b.send_failures[-1][0] == req
        err = b.send_failures[-1][1]
        assert isinstance(err, golemnet.NotFoundError)
        assert err.peer == nobody and err.protocol == golemnet.MSG_PROTOCOL_ID
        # set_handler: the protocol
        with pytest.raises(golemnet.ExistsError) as ei:
            await a.set_handler("/ipfs/ping/1.0.0", echo_handler)
        assert ei.value.protocol == "/ipfs/ping/1.0.0"
        # listen: the address
        port = a.addrs[0].split("/")[4]
        with pytest.raises(golemnet.AddressInUseError) as ei:
            await b.listen(f"/ip4/127.0.0.1/tcp/{port}")
        assert ei.value.address is not None and f"/tcp/{port}" in ei.value.address


# ---------------------------------------------------------------- events

async def next_event(es: golemnet.EventStream, timeout: float = 10.0) -> golemnet.Event:
    return await asyncio.wait_for(es.__anext__(), timeout)


@aio(30)
async def test_connect_identify_disconnect_events() -> None:
    async with Nodes() as ns:
        a = await ns.new(agent_version="node-a/1")
        b = await ns.new(listen=False, agent_version="node-b/1")
        ea, eb = a.events(), b.events()
        seen_a: List[golemnet.Event] = []
        seen_b: List[golemnet.Event] = []
        a.on_connect = seen_a.append          # a plain function
        a.on_identify = seen_a.append
        a.on_disconnect = seen_a.append

        async def record_b(ev: golemnet.Event) -> None:   # a coroutine function
            await asyncio.sleep(0)
            seen_b.append(ev)
        b.on_connect = b.on_identify = b.on_disconnect = record_b

        ch = await b.dial(a.addrs[0])
        # each side: connect, then identify (the order of the two sides' streams is free)
        got_a = [await next_event(ea), await next_event(ea)]
        got_b = [await next_event(eb), await next_event(eb)]
        for got, me, other, agent in ((got_a, a, b, "node-b/1"), (got_b, b, a, "node-a/1")):
            con = next(e for e in got if e.kind == "connect")
            ide = next(e for e in got if e.kind == "identify")
            assert con.peer_id == other.peer_id and con.channel_id > 0
            assert con.muxer == "/yamux/1.0.0" and con.address.startswith("/ip4/127.0.0.1/tcp/")
            assert con.error is None
            assert ide.peer_id == other.peer_id and ide.channel_id == con.channel_id
            assert ide.agent_version == agent and ide.error is None
            assert ide.address.startswith("/ip4/127.0.0.1/")   # how the peer sees `me`
        assert next(e for e in got_b if e.kind == "connect").channel_id == ch.id
        assert next(e for e in got_b if e.kind == "connect").address == ch.remote_addr

        # disconnect on both sides when the dialler closes the channel
        await ch.close()
        da, db = await next_event(ea), await next_event(eb)
        assert (da.kind, da.peer_id) == ("disconnect", b.peer_id)
        assert (db.kind, db.peer_id, db.channel_id) == ("disconnect", a.peer_id, ch.id)
        for d in (da, db):
            assert isinstance(d.error, golemnet.Error) and d.address
        assert isinstance(db.error, golemnet.ClosedError)       # b closed it
        assert isinstance(da.error, golemnet.PeerError) and da.error.name == "GN_EGOAWAY"
        assert da.error.peer == b.peer_id and db.error.peer == a.peer_id
        for _ in range(100):          # record_b runs as a task
            if len(seen_b) == 3:
                break
            await asyncio.sleep(0.01)
        assert sorted(e.kind for e in seen_a) == ["connect", "disconnect", "identify"]
        assert sorted(e.kind for e in seen_b) == ["connect", "disconnect", "identify"]
        assert seen_a[-1] == da and seen_b[-1] == db

        # a stream ends when its node has closed; a closed stream at once
        ea.close()
        assert [e async for e in ea] == []
        await b.close()
        assert [e async for e in eb] == []
        assert [e async for e in b.events()] == []


@aio(30)
async def test_event_kinds_filter_and_overflow() -> None:
    async with Nodes() as ns:
        a = await ns.new()
        b = await ns.new(listen=False)
        with pytest.raises(ValueError):
            a.events(kinds=["connected"])
        only_connect = a.events(kinds=["connect"])
        ident = a.events(kinds=["identify"])
        tiny = a.events(maxsize=1)
        async with a.events(kinds=("disconnect",)) as disc:
            ch = await b.dial(a.addrs[0])
            ev = await next_event(only_connect)
            assert ev.kind == "connect" and ev.peer_id == b.peer_id
            assert (await next_event(ident)).kind == "identify"
            await ch.close()
            ev = await next_event(disc)
            assert ev.kind == "disconnect" and ev.peer_id == b.peer_id
        # connect, identify, disconnect went to a queue of one
        assert tiny.dropped == 2 and (await next_event(tiny)).kind == "disconnect"
        with pytest.raises(asyncio.TimeoutError):
            await next_event(only_connect, 0.2)   # the filter left the rest out

        # a failing callback is logged, and delivery goes on
        def bad(ev: Any) -> None:
            raise RuntimeError("boom")
        a.on_connect = bad
        await b.dial(a.addrs[0])
        ev = await next_event(only_connect)
        assert ev.kind == "connect"


def test_blocking_events() -> None:
    from golemnet.blocking import Node

    with Node(listen=["/ip4/127.0.0.1/tcp/0"]) as a, Node() as b:
        es = a.events(kinds=["connect", "disconnect"], timeout=10)
        ch = b.dial(a.addrs[0], timeout=10)
        ev = next(es)
        assert (ev.kind, ev.peer_id) == ("connect", b.peer_id)
        ch.close(timeout=10)
        ev = es.next(timeout=10)
        assert ev is not None and (ev.kind, ev.peer_id) == ("disconnect", b.peer_id)
        assert es.dropped == 0
        with pytest.raises(TimeoutError):
            es.next(timeout=0.2)
        ended = b.events(timeout=10)
    # the node closed: the iteration ends
    assert list(ended) == []


@aio(30)
async def test_peer_info_after_identify() -> None:
    async with Nodes() as ns:
        a = await ns.new(agent_version="node-a/2")
        b = await ns.new(listen=False)
        await a.set_handler(ECHO, echo_handler)
        ident = b.events(kinds=["identify"])
        with pytest.raises(golemnet.NotFoundError) as ei:
            await b.peer_info(a.peer_id)          # never seen
        assert ei.value.peer == a.peer_id
        with pytest.raises(golemnet.ParseError):
            await b.peer_info("not-a-peer-id")
        await b.dial(a.addrs[0])
        ev = await next_event(ident)
        assert ev.peer_id == a.peer_id and ev.error is None
        info = await b.peer_info(a.peer_id)
        assert info.peer_id == a.peer_id and info.identified
        assert info.agent_version == "node-a/2"
        assert ECHO in info.protocols and "/ipfs/ping/1.0.0" in info.protocols
        listen = a.addrs[0].rsplit("/p2p/", 1)[0]
        assert any(x.startswith(listen) for x in info.addrs), (info.addrs, listen)
        assert info.observed_addr.startswith("/ip4/127.0.0.1/")
