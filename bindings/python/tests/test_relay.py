"""Circuit relay v2 and AutoNAT from Python, on loopback: a relay node
(protocol_components="relay"), a node that listens through it, a dial
through it onto a limited channel, and the reachability AutoNAT reports."""

from __future__ import annotations

import asyncio

import golemnet

from conftest import Nodes, aio


@aio(60)
async def test_listen_and_dial_through_a_relay() -> None:
    async with Nodes() as ns:
        relay = await ns.new(protocol_components="relay", options=["kad.mode=server"])
        # hidden runs the DHT in server mode: /ipfs/kad/1.0.0 does not accept
        # limited channels, so it is refused over the relay (below)
        hidden = await ns.new(listen=False, options=["kad.mode=server"])
        via = await hidden.listen(relay.addrs[0] + "/p2p-circuit")
        assert via == relay.addrs[0] + "/p2p-circuit/p2p/" + hidden.peer_id, via
        dialer = await ns.new(listen=False)
        ch = None
        for _ in range(100):  # bounded: the reservation runs in the background
            try:
                ch = await dialer.dial(via, timeout=5)
                break
            except golemnet.Error:
                await asyncio.sleep(0.05)
        assert ch is not None, "no channel through the relay"
        assert ch.limited, "a channel through a relay with limits is limited"
        assert "/p2p-circuit/p2p/" + hidden.peer_id in ch.remote_addr, ch.remote_addr
        assert await ch.ping() > 0
        # the listening side uses the relayed channel too: it pings back
        assert await hidden.ping(dialer.peer_id) > 0
        # only protocols that accept limited channels run on it: the DHT
        # negotiates on the direct channel to the relay, not on this one
        direct = await dialer.dial(relay.addrs[0])
        st = await direct.open_stream("/ipfs/kad/1.0.0")
        await st.close()
        try:
            await ch.open_stream("/ipfs/kad/1.0.0")
            raise AssertionError("the DHT protocol ran on a limited channel")
        except golemnet.NegotiationError:
            pass
        # a peer that holds no reservation: the relay refuses the circuit
        nobody = golemnet.peer_id_from_seed(4242)
        try:
            await dialer.dial(relay.addrs[0] + "/p2p-circuit/p2p/" + nobody, timeout=10)
            raise AssertionError("a dial to a peer without a reservation succeeded")
        except golemnet.Error:
            pass


@aio(60)
async def test_autonat_reports_reachability() -> None:
    async with Nodes() as ns:
        fast = ["autonat.boot_delay_ms=100", "autonat.dial_timeout_ms=3000"]
        server = await ns.new(protocol_components="autonat", options=fast)
        client = await ns.new(protocol_components="autonat", options=fast)
        assert client.reachability == "unknown"
        events = client.events(kinds=["reachability"])
        await client.dial(server.addrs[0])
        ev = await asyncio.wait_for(events.__anext__(), 20)
        assert ev.kind == "reachability" and ev.reachability == "public", ev
        assert client.reachability == "public"
