"""The DHT from Python: four nodes with the kad router in server mode on
loopback (node 0 is everyone's bootstrap peer), then put/get, provide and
find-providers, find-peer, closest-peers, the errors, and the blocking API."""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any, List

import pytest

import golemnet
from golemnet import blocking

from conftest import LOOPBACK, Nodes, aio

SERVER = ["kad.mode=server", "kad.request_timeout_ms=3000"]
NODES = 4


async def dht_net(ns: Nodes, count: int = NODES, **kw: Any) -> List[golemnet.Node]:
    """@count server-mode nodes; the others bootstrap from the first, and
    every node's table reaches the others before the test goes on."""
    first = await ns.new(options=SERVER, dht_namespaces=["test"], **kw)
    nodes = [first]
    for _ in range(count - 1):
        nodes.append(await ns.new(options=SERVER, dht_namespaces=["test"],
                                  kad_bootstrap=[first.addrs[0]], **kw))
    want = {n.peer_id for n in nodes}
    for n in nodes:
        for _ in range(100):  # bounded: 100 x 50 ms
            try:
                got = {pid for pid, _ in await n.dht_closest_peers(n.peer_id.encode(),
                                                                   timeout=10)}
            except golemnet.NoRouteError:
                got = set()
            if got >= want - {n.peer_id}:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"{n.peer_id} never saw {want - got - {n.peer_id}}")
    return nodes


def multihash(data: bytes) -> bytes:
    """A sha2-256 multihash, what a CID's DHT key is."""
    return bytes([0x12, 0x20]) + hashlib.sha256(data).digest()


@aio(60)
async def test_put_get_provide_find() -> None:
    async with Nodes() as ns:
        n = await dht_net(ns)
        # a record put by one node is found by every other one
        await n[1].dht_put(b"/test/k1", b"value one")
        for other in n:
            assert await other.dht_get(b"/test/k1") == b"value one"
        await n[2].dht_put("/test/text", "text too".encode())  # a str key is UTF-8
        assert await n[3].dht_get("/test/text") == b"text too"
        binary = bytes(range(256))
        await n[3].dht_put(b"/test/bin", binary)
        assert await n[0].dht_get(b"/test/bin") == binary
        # providers: two nodes provide, everyone finds both, with addresses
        key = multihash(b"some content")
        await n[1].dht_provide(key)
        await n[3].dht_provide(key)
        for other in n:
            provs = await other.dht_find_providers(key)
            assert sorted(pid for pid, _ in provs) == sorted([n[1].peer_id, n[3].peer_id])
            for pid, addrs in provs:
                assert addrs and all(a.startswith("/ip4/127.0.0.1/tcp/") for a in addrs), provs
        assert len(await n[0].dht_find_providers(key, max=1)) == 1
        assert await n[0].dht_find_providers(multihash(b"nobody has it")) == []
        # find-peer: the addresses of another node
        addrs = await n[3].dht_find_peer(n[1].peer_id)
        assert addrs and any(n[1].addrs[0].startswith(a) for a in addrs), (addrs, n[1].addrs)
        # closest peers: everybody but the asking node (fewer than k exist)
        closest = await n[2].dht_closest_peers(b"any key")
        assert sorted(pid for pid, _ in closest) == sorted(x.peer_id for x in n if x is not n[2])


@aio(60)
async def test_dht_errors() -> None:
    async with Nodes() as ns:
        n = await dht_net(ns, 3)
        # nobody stored it
        with pytest.raises(golemnet.NotFoundError) as ei:
            await n[2].dht_get(b"/test/missing")
        assert "dht_get b'/test/missing'" in str(ei.value)
        # a namespace nobody allowed: refused here
        with pytest.raises(golemnet.NotSupportedError):
            await n[0].dht_put(b"/other/x", b"v")
        # allowing it on the putting node only: stored here, refused by every
        # peer (they reset the stream: kad reports the first store error)
        await n[0].dht_allow_namespace("other")
        with pytest.raises(golemnet.Error) as ei2:
            await n[0].dht_put(b"/other/x", b"v")
        assert not isinstance(ei2.value, golemnet.NotSupportedError), ei2.value
        assert str(ei2.value).startswith("dht_put b'/other/x': "), ei2.value
        assert await n[0].dht_get(b"/other/x") == b"v"  # kept here
        # bad arguments, before anything is sent
        with pytest.raises(golemnet.InvalidArgumentError):
            await n[0].dht_get(b"")
        with pytest.raises(golemnet.InvalidArgumentError):
            await n[0].dht_get(b"/test/" + b"x" * 2000)
        with pytest.raises(golemnet.InvalidArgumentError):
            await n[0].dht_put(b"/test/big", b"x" * (65536 + 1))
        with pytest.raises(golemnet.InvalidArgumentError):
            await n[0].dht_allow_namespace("a/b")
        with pytest.raises(golemnet.InvalidArgumentError):
            await n[0].dht_find_providers(multihash(b"x"), max=0)
        with pytest.raises(golemnet.ParseError):
            await n[0].dht_find_peer("not a peer id")
        with pytest.raises(golemnet.InvalidArgumentError):
            golemnet.Node(dht_namespaces=["a/b"])
        # a namespace list on a node without a DHT router: start() says so
        with pytest.raises(golemnet.NotSupportedError) as ei3:
            await ns.new(routers="", dht_namespaces=["test"])
        assert "dht_namespaces 'test'" in str(ei3.value), ei3.value
        # a node without DHT peers: nothing to ask
        alone = await ns.new(options=SERVER, dht_namespaces=["test"])
        with pytest.raises(golemnet.NoRouteError):
            await alone.dht_get(b"/test/k")
        with pytest.raises(golemnet.NoRouteError):
            await alone.dht_find_peer(golemnet.peer_id_from_seed(77))
        # no DHT router at all
        plain = await ns.new(routers="")
        with pytest.raises(golemnet.NotSupportedError):
            await plain.dht_get(b"/test/k")
    # a closed node refuses at once
    with pytest.raises(golemnet.ClosedError):
        await n[0].dht_get(b"/test/k1")


def test_blocking_dht() -> None:
    nodes: List[blocking.Node] = []
    try:
        first = blocking.Node([LOOPBACK], options=SERVER, dht_namespaces=["test"])
        first.start()
        nodes.append(first)
        for _ in range(2):
            n = blocking.Node([LOOPBACK], options=SERVER, dht_namespaces=["test"],
                              kad_bootstrap=[first.aio.addrs[0]])
            n.start()
            nodes.append(n)
        # bounded wait for the tables: the last node's lookup sees the others
        for _ in range(100):
            try:
                if len(nodes[2].dht_closest_peers(b"k", timeout=10)) == 2:
                    break
            except golemnet.NoRouteError:
                pass
            time.sleep(0.05)
        nodes[1].dht_put(b"/test/b", b"blocking")
        assert nodes[2].dht_get(b"/test/b") == b"blocking"
        key = multihash(b"blocking content")
        nodes[2].dht_provide(key)
        assert [p for p, _ in nodes[0].dht_find_providers(key)] == [nodes[2].aio.peer_id]
        assert nodes[1].dht_find_peer(nodes[2].aio.peer_id)
        with pytest.raises(golemnet.NotFoundError):
            nodes[0].dht_get(b"/test/none")
    finally:
        for n in nodes:
            n.close()
