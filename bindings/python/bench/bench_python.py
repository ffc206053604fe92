#!/usr/bin/env python3
"""bench_python: golemnet figures from Python next to the C figures of the
same run, as JSON lines on stdout (progress and errors on stderr).

The server is the C benchmark's server (``bench_node --serve``: a node in a
child process, Noise + yamux on 127.0.0.1 by default), so the Python client
and the C client (``bench_node --section bulk|msgs``, run right after, with
its own server) measure the same protocols against the same code:

1. bulk upload: one stream, /perf/1.0.0: the 8-byte request (0 bytes back),
   then N MiB in ``--write-kib`` writes (``await stream.write``), half-close;
   the clock runs from the first write to the server's end of stream (sent
   after it read the last byte). MB/s = 10^6 bytes per second.
2. bulk download: /perf/1.0.0 asking for N MiB back; ``await stream.read``
   until the end of stream.
3. msgs: 64-byte messages on one stream (/golemnet/bench/msgs/1.0.0), each
   preceded by its unsigned-varint length (1 byte); ``--batch`` messages per
   ``await stream.writev`` (2 buffers per message, as the C client's iovs).
   At the end of stream the server replies with its count; the rate is that
   count over the time from the first write to the reply.
4. msgs unbatched: the same with one ``await stream.write`` per message
   (shows the per-call cost of Python; fewer messages).

Then the C client's bulk (upload) and msgs figures. Goals (docs/python.md):
>= 300 MB/s bulk and >= 200,000 messages/s with batched writes.

usage: bench_python.py [--bench-node PATH] [--bulk-mib N] [--msgs N]
                       [--batch N] [--write-kib N] [--security noise|ecies]
                       [--muxer yamux|mplex] [--no-c]
Loopback only; every phase bounded (--max-seconds); the server exits when
this process closes its stdin, and is killed on every exit path.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

import golemnet

PERF = "/perf/1.0.0"
MSGS = "/golemnet/bench/msgs/1.0.0"
MSG_LEN = 64
GOAL_MBS = 300.0
GOAL_MSGS = 200_000.0


def emit(obj: Dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)


def default_bench_node() -> str:
    # <build>/bindings/python/golemnet/__init__.py -> <build>/bench/bench_node
    here = os.path.dirname(os.path.abspath(golemnet.__file__))
    return os.path.normpath(os.path.join(here, "..", "..", "..", "bench", "bench_node"))


class Server:
    """bench_node --serve in a child process."""

    def __init__(self, exe: str, security: str, muxer: str) -> None:
        self.p = subprocess.Popen([exe, "--serve", "--security", security, "--muxer", muxer],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.p.stdout is not None
        line = self.p.stdout.readline().decode().strip()
        if not line.startswith("/"):
            self.stop()
            raise RuntimeError(f"bench_node --serve printed {line!r}")
        self.addr = line

    def stop(self) -> None:
        if self.p.poll() is None:
            assert self.p.stdin is not None
            self.p.stdin.close()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


async def bulk_upload(ch: golemnet.Channel, nbytes: int, write_len: int) -> float:
    s = await ch.open_stream(PERF)
    buf = os.urandom(write_len)
    await s.write((0).to_bytes(8, "big"))
    t0 = time.perf_counter()
    sent = 0
    while sent < nbytes:
        n = min(write_len, nbytes - sent)
        await s.write(buf if n == write_len else buf[:n])
        sent += n
    await s.close_write()
    rest = await s.read_all()
    t1 = time.perf_counter()
    await s.close()
    assert rest == b"", rest
    return t1 - t0


async def bulk_download(ch: golemnet.Channel, nbytes: int) -> float:
    s = await ch.open_stream(PERF)
    t0 = time.perf_counter()
    await s.write(nbytes.to_bytes(8, "big"))
    await s.close_write()
    got = 0
    while True:
        b = await s.read(1 << 20)
        if not b:
            break
        got += len(b)
    t1 = time.perf_counter()
    await s.close()
    assert got == nbytes, (got, nbytes)
    return t1 - t0


async def msgs(ch: golemnet.Channel, count: int, batch: int) -> Dict[str, Any]:
    s = await ch.open_stream(MSGS)
    prefix = bytes([MSG_LEN])
    payload = os.urandom(MSG_LEN)
    t0 = time.perf_counter()
    left = count
    if batch > 1:
        full = [prefix, payload] * batch
        while left > 0:
            k = min(batch, left)
            await s.writev(full if k == batch else full[:2 * k])
            left -= k
    else:
        framed = prefix + payload
        while left > 0:
            await s.write(framed)
            left -= 1
    await s.close_write()
    reply = await s.readexactly(24)
    t1 = time.perf_counter()
    await s.close()
    counted = int.from_bytes(reply[:8], "big")
    server_bytes = int.from_bytes(reply[8:16], "big")
    assert counted == count and server_bytes == count * (MSG_LEN + 1), (counted, server_bytes)
    return {"seconds": t1 - t0, "messages": counted}


def run_c(exe: str, args: List[str], timeout: float) -> List[Dict[str, Any]]:
    out = subprocess.run([exe, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         timeout=timeout, check=False)
    res = []
    for line in out.stdout.decode().splitlines():
        try:
            res.append(json.loads(line))
        except ValueError:
            pass
    return res


async def main(opt: argparse.Namespace) -> int:
    exe = opt.bench_node or default_bench_node()
    if not os.access(exe, os.X_OK):
        print(f"bench_python: {exe} not found (build bench/bench_node or pass --bench-node)",
              file=sys.stderr)
        return 1
    emit({"bench": "info", "golemnet": golemnet.__version__, "python": sys.version.split()[0],
          "transport": "tcp", "addr": "127.0.0.1", "security": opt.security,
          "muxer": opt.muxer, "server": "bench_node --serve (C, child process)",
          "cores": os.cpu_count()})
    server = Server(exe, opt.security, opt.muxer)
    results: Dict[str, Any] = {}
    try:
        async with golemnet.Node(security=opt.security, muxers=opt.muxer,
                                 write_buffer=opt.window_kib << 10,
                                 read_buffer=opt.window_kib << 10) as node:
            ch = await node.dial(server.addr, timeout=10)
            nbytes = opt.bulk_mib << 20
            print(f"bench_python: bulk upload {opt.bulk_mib} MiB", file=sys.stderr)
            secs = await asyncio.wait_for(bulk_upload(ch, nbytes, opt.write_kib << 10),
                                          opt.max_seconds)
            mbs = nbytes / 1e6 / secs
            results["bulk"] = mbs
            emit({"bench": "python", "test": "bulk_upload", "protocol": PERF, "bytes": nbytes,
                  "write_len": opt.write_kib << 10, "seconds": round(secs, 3),
                  "mb_per_s": round(mbs, 1), "goal_mb_per_s": GOAL_MBS,
                  "goal_met": mbs >= GOAL_MBS})
            print(f"bench_python: bulk download {opt.bulk_mib} MiB", file=sys.stderr)
            secs = await asyncio.wait_for(bulk_download(ch, nbytes), opt.max_seconds)
            mbs = nbytes / 1e6 / secs
            emit({"bench": "python", "test": "bulk_download", "protocol": PERF, "bytes": nbytes,
                  "seconds": round(secs, 3), "mb_per_s": round(mbs, 1),
                  "goal_mb_per_s": GOAL_MBS, "goal_met": mbs >= GOAL_MBS})
            print(f"bench_python: msgs {opt.msgs} x {MSG_LEN} B, {opt.batch} per writev",
                  file=sys.stderr)
            r = await asyncio.wait_for(msgs(ch, opt.msgs, opt.batch), opt.max_seconds)
            rate = r["messages"] / r["seconds"]
            results["msgs"] = rate
            emit({"bench": "python", "test": "msgs", "msg_len": MSG_LEN, "framing": "uvarint",
                  "messages": r["messages"], "per_write": opt.batch,
                  "seconds": round(r["seconds"], 3), "msgs_per_s": round(rate),
                  "goal_msgs_per_s": GOAL_MSGS, "goal_met": rate >= GOAL_MSGS})
            n1 = max(1, opt.msgs // 20)
            r = await asyncio.wait_for(msgs(ch, n1, 1), opt.max_seconds)
            emit({"bench": "python", "test": "msgs_unbatched", "msg_len": MSG_LEN,
                  "framing": "uvarint", "messages": r["messages"], "per_write": 1,
                  "seconds": round(r["seconds"], 3),
                  "msgs_per_s": round(r["messages"] / r["seconds"])})
            await ch.close()
    finally:
        server.stop()
    if not opt.no_c:
        common = ["--security", opt.security, "--muxer", opt.muxer]
        print("bench_python: C client (bench_node) for comparison", file=sys.stderr)
        for sec, extra in (("bulk", ["--bulk-mib", str(opt.bulk_mib)]),
                           ("msgs", ["--msgs", str(opt.msgs), "--batch", str(opt.batch)])):
            for obj in run_c(exe, ["--section", sec, *extra, *common], opt.max_seconds * 3):
                if obj.get("test") == sec:
                    c_val = obj.get("mb_per_s") if sec == "bulk" else obj.get("msgs_per_s")
                    emit({"bench": "c", "test": sec, "source": "bench_node",
                          **{k: obj[k] for k in ("bytes", "messages", "seconds", "mb_per_s",
                                                 "msgs_per_s") if k in obj}})
                    py_val = results.get(sec)
                    if c_val and py_val:
                        emit({"bench": "compare", "test": sec, "python": round(py_val, 1),
                              "c": c_val, "python_over_c": round(py_val / float(c_val), 3)})
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bench-node", default=os.environ.get("GOLEMNET_BENCH_NODE"))
    ap.add_argument("--bulk-mib", type=int, default=512)
    ap.add_argument("--msgs", type=int, default=2_000_000)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--write-kib", type=int, default=256)
    ap.add_argument("--window-kib", type=int, default=4096,
                    help="stream write window and read buffer (KiB)")
    ap.add_argument("--security", default="noise", choices=["noise", "ecies"])
    ap.add_argument("--muxer", default="yamux", choices=["yamux", "mplex"])
    ap.add_argument("--max-seconds", type=float, default=120.0)
    ap.add_argument("--no-c", action="store_true", help="skip the C client figures")
    sys.exit(asyncio.run(main(ap.parse_args())))
