"""Multicast channels on pubsub topics from Python (issue 18): three nodes
with the pubsub component over loopback TCP in a line a - b - c, a group on
one topic each; a message published by a reaches b and c (c only through
b's router), once each, with a's peer ID; the group counters and mesh
peers say so; a closed group refuses to publish."""

from __future__ import annotations

import asyncio
from typing import Any, List

import golemnet
import pytest
from conftest import Nodes, aio

TOPIC = "golemnet-py/test"
OPTS = ["pubsub.heartbeat_ms=100"]


async def _pubsub_node(nodes: Nodes) -> Any:
    return await nodes.new(protocol_components="/meshsub/1.1.0", options=OPTS)


async def _wait(cond: Any, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert loop.time() < end, "condition not met in time"
        await asyncio.sleep(0.05)


@aio(40.0)
async def test_three_nodes_topic_messages() -> None:
    async with Nodes() as nodes:
        a, b, c = [await _pubsub_node(nodes) for _ in range(3)]
        groups = [n.dial_group(TOPIC) for n in (a, b, c)]
        ga, gb, gc = groups
        assert ga.addr == golemnet._golemnet.GROUP_ADDR_PREFIX + TOPIC
        assert ga.topic == TOPIC
        with pytest.raises(golemnet.ExistsError):
            a.dial_group("/pubsub/" + TOPIC)
        await a.dial(b.addrs[0] + "/p2p/" + b.peer_id)
        await b.dial(c.addrs[0] + "/p2p/" + c.peer_id)
        # subscriptions exchanged and the mesh grafted (heartbeat 100 ms)
        await _wait(lambda: all(g.metrics.members >= 1 for g in groups) and
                    gb.metrics.members == 2 and len(gb.mesh_peers()) == 2)
        assert set(gb.mesh_peers()) == {a.peer_id, c.peer_id}
        assert ga.mesh_peers() == [b.peer_id]

        for i in range(3):
            await ga.broadcast(b"m%d" % i)
        got: dict = {}

        async def take(g: golemnet.Group, n: int) -> List[golemnet.GroupMessage]:
            out = []
            async for m in g:
                out.append(m)
                if len(out) == n:
                    break
            return out

        got["b"], got["c"] = await asyncio.wait_for(
            asyncio.gather(take(gb, 3), take(gc, 3)), 10.0)
        for k in ("b", "c"):
            assert sorted(m.data for m in got[k]) == [b"m0", b"m1", b"m2"]
            assert all(m.peer_id == a.peer_id for m in got[k])  # signed by a
            assert all(m.addr == ga.addr for m in got[k])
        await asyncio.sleep(0.3)  # room for duplicates to arrive
        assert not gb._queue and not gc._queue  # exactly once
        assert ga.metrics.published == 3 and ga.metrics.delivered == 0
        for g in (gb, gc):
            m = g.metrics
            assert (m.delivered, m.rejected, m.dropped) == (3, 0, 0)
        # unicast to a member goes over /golem/msg/1.0.0 (needs the msg protocol)
        await gc.unicast(b.peer_id, b"direct")
        m = await b.recv(timeout=5.0)
        assert (m.peer_id, m.data) == (c.peer_id, b"direct")
        with pytest.raises(golemnet.NotFoundError):
            await gc.unicast(a.peer_id, b"x")  # a is no member c knows of
        gc.close()
        with pytest.raises(golemnet.ClosedError):
            await gc.broadcast(b"late")
        with pytest.raises(StopAsyncIteration):
            await gc.__anext__()
        # the topic can be opened again once closed
        gc2 = c.dial_group(TOPIC)
        gc2.close()


@aio(20.0)
async def test_group_iteration_ends_when_node_closes() -> None:
    async with Nodes() as nodes:
        a = await _pubsub_node(nodes)
        g = a.dial_group("/pubsub/ends")
        with pytest.raises(golemnet.ParseError):
            a.dial_group("/pubsub/")

        async def drain() -> int:
            n = 0
            async for _ in g:
                n += 1
            return n
        t = asyncio.ensure_future(drain())
        await asyncio.sleep(0.1)
        await a.close()
        assert await asyncio.wait_for(t, 5.0) == 0
