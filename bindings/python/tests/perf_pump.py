"""Child process of test_gil.py: downloads from a node's built-in
/perf/1.0.0 (served by native code) and prints its progress as JSON lines.

usage: perf_pump.py MULTIADDR SECONDS
stdout: {"ready": true} once the download runs, then every 50 ms
{"t": <time.monotonic()>, "received": <bytes so far>}, then {"done": true}.
CLOCK_MONOTONIC is shared by the processes of one machine, so the parent
compares these times with its own. The perf request (libp2p perf spec):
8 bytes, big-endian, the byte count to send back; then the client's
upload (none here) and its half-close; then the server sends.
"""

import asyncio
import json
import sys
import time

import golemnet


async def main(addr: str, seconds: float) -> None:
    async with golemnet.Node() as node:
        ch = await node.dial(addr, timeout=10)
        s = await ch.open_stream("/perf/1.0.0", timeout=10)
        await s.write((1 << 40).to_bytes(8, "big"))
        await s.close_write()
        first = await s.read(1 << 20)
        received = len(first)
        print(json.dumps({"ready": True}), flush=True)
        end = time.monotonic() + seconds
        next_report = 0.0
        while True:
            now = time.monotonic()
            if now >= next_report:
                print(json.dumps({"t": now, "received": received}), flush=True)
                next_report = now + 0.05
            if now >= end:
                break
            b = await asyncio.wait_for(s.read(1 << 20), 5)
            if not b:
                break
            received += len(b)
        await s.reset()
        print(json.dumps({"done": True, "received": received}), flush=True)


if __name__ == "__main__":
    asyncio.run(asyncio.wait_for(main(sys.argv[1], float(sys.argv[2])), float(sys.argv[2]) + 20))
