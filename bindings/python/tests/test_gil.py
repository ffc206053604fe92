"""A Python handler that blocks for 2 s holding the GIL does not stall a
transfer running on other channels of the same node.

Node A (this process) serves the built-in /perf/1.0.0 (native code) and a
Python handler that spins for 2 s without releasing the GIL. A child process
downloads from A's perf server on its own channel and reports its progress
with timestamps; node B (this process) triggers the blocking handler on a
second channel. The bytes received while the handler held the GIL show that
A's network thread kept working.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

import golemnet
from golemnet._golemnet import _hold_gil

from conftest import HERE, Nodes, aio

BLOCK_S = 2.0


@aio(45)
async def test_gil_blocking_handler_does_not_stall_other_channels() -> None:
    async with Nodes() as ns:
        a = await ns.new(protocols=["identify", "ping", "perf"])
        window = {}

        async def blocker(stream: golemnet.Stream) -> None:
            await stream.readexactly(1)
            window["start"] = time.monotonic()
            _hold_gil(BLOCK_S)  # the asyncio loop and every Python thread stop here
            window["end"] = time.monotonic()
            await stream.write(b"k")

        await a.set_handler("/test/block/1.0.0", blocker)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        child = await asyncio.create_subprocess_exec(
            sys.executable, os.path.join(HERE, "perf_pump.py"), a.addrs[0], str(BLOCK_S + 2.5),
            stdout=asyncio.subprocess.PIPE, env=env)
        try:
            assert child.stdout is not None
            line = await asyncio.wait_for(child.stdout.readline(), 20)
            assert json.loads(line) == {"ready": True}
            await asyncio.sleep(0.7)  # the transfer is running
            b = await ns.new(listen=False)
            ch = await b.dial(a.addrs[0])
            s = await ch.open_stream("/test/block/1.0.0")
            await s.write(b"x")
            assert await asyncio.wait_for(s.readexactly(1), 15) == b"k"
            await s.close()
            out, _ = await asyncio.wait_for(child.communicate(), 25)
            assert child.returncode == 0
        finally:
            if child.returncode is None:
                child.kill()
                await child.wait()
        samples = [json.loads(x) for x in out.decode().splitlines()]
        assert samples[-1].get("done") is True
        prog = [(x["t"], x["received"]) for x in samples if "t" in x]
        t0, t1 = window["start"], window["end"]
        assert t1 - t0 >= BLOCK_S
        inside = [(t, n) for t, n in prog if t0 + 0.1 <= t <= t1 - 0.1]
        before = [(t, n) for t, n in prog if t < t0]
        assert len(inside) >= 10, (t0, t1, prog)
        moved = inside[-1][1] - inside[0][1]
        span = inside[-1][0] - inside[0][0]
        rate_in = moved / span
        rate_before = (before[-1][1] - before[0][1]) / (before[-1][0] - before[0][0])
        print(f"perf download rate before the block {rate_before / 1e6:.1f} MB/s, "
              f"during {rate_in / 1e6:.1f} MB/s ({moved} bytes in {span:.2f} s)")
        # progress all through the block, at a rate of the same order as before
        assert moved >= 4 << 20
        steps = [n2 - n1 for (_, n1), (_, n2) in zip(inside, inside[1:])]
        stalls = sum(1 for d in steps if d == 0)
        assert stalls <= len(steps) // 4, steps
        assert rate_in > 0.2 * rate_before
