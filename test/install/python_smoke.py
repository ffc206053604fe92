"""Checks a pip-installed golemnet (scripts/quickstart.sh test, "pip
install into a venv"): run with the venv's interpreter, outside the source
tree and without PYTHONPATH.

    <venv>/bin/python test/install/python_smoke.py <venv>

Exits 0 when golemnet was imported from <venv>, and two nodes on 127.0.0.1
dialled, pinged, echoed bytes over a Python handler and reported the
connect event; prints one line per check. Bounded by a 30 s timeout.
"""

import asyncio
import os
import sys


async def main(prefix: str) -> None:
    import golemnet
    where = os.path.realpath(golemnet.__file__)
    assert where.startswith(os.path.realpath(prefix) + os.sep), \
        f"golemnet imported from {where}, not from {prefix}"
    print("golemnet", golemnet.__version__, "from", where)

    async def echo(stream: golemnet.Stream) -> None:
        await stream.write(await stream.read_all())

    async with golemnet.Node(listen=["/ip4/127.0.0.1/tcp/0"]) as a, golemnet.Node() as b:
        events = a.events(kinds=["connect"])
        await a.set_handler("/smoke/echo/1.0.0", echo)
        ch = await b.dial(a.addrs[0])
        assert ch.peer_id == a.peer_id, (ch.peer_id, a.peer_id)
        rtt = await ch.ping()
        s = await ch.open_stream("/smoke/echo/1.0.0")
        await s.write(b"smoke" * 1000)
        await s.close_write()
        got = await s.read_all()
        assert got == b"smoke" * 1000, len(got)
        ev = await events.__anext__()
        assert ev.kind == "connect" and ev.peer_id == b.peer_id, ev
        print(f"dial, ping ({rtt * 1e6:.0f} us), echo of {len(got)} bytes, connect event: ok")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python_smoke.py <venv or prefix golemnet must come from>")
    asyncio.run(asyncio.wait_for(main(sys.argv[1]), 30))
