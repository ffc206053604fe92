"""Python nodes against other implementations on loopback: the `golemnet`
CLI (C, a separate process) and js-libp2p (test/interop/js/peer.mjs, the
interop harness). Skipped when the CLI is not built (GOLEMNET_CLI) or when
node / the harness's node_modules are missing."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
from typing import Any, AsyncIterator, Dict, List, Optional, Tuple

import pytest

import golemnet

from conftest import Nodes, aio

CLI = os.environ.get("GOLEMNET_CLI", "")
JS_DIR = os.environ.get("GOLEMNET_JS_PEER_DIR", "")
NODE = shutil.which("node")
ECHO = "/echo/1.0.0"

need_cli = pytest.mark.skipif(not (CLI and os.access(CLI, os.X_OK)),
                              reason="GOLEMNET_CLI (the golemnet tool) not built")
need_js = pytest.mark.skipif(
    not (NODE and JS_DIR and os.path.isdir(os.path.join(JS_DIR, "node_modules"))),
    reason="node or test/interop/js/node_modules missing (npm ci there)")


async def py_echo(stream: golemnet.Stream) -> None:
    """Echo handler written in Python (served in place of the built-in one)."""
    while True:
        b = await stream.read(1 << 20)
        if not b:
            break
        await stream.write(b)
    await stream.close_write()


class Proc:
    """A child process printing JSON lines; killed on exit."""

    def __init__(self, argv: List[str], cwd: Optional[str] = None) -> None:
        self.argv, self.cwd = argv, cwd
        self.p: Optional[asyncio.subprocess.Process] = None
        self.lines: List[Dict[str, Any]] = []

    async def __aenter__(self) -> "Proc":
        self.p = await asyncio.create_subprocess_exec(
            *self.argv, cwd=self.cwd, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        return self

    async def event(self, name: str, timeout: float = 20.0) -> Dict[str, Any]:
        """The next JSON line whose "event" is name (earlier lines are kept)."""
        assert self.p is not None and self.p.stdout is not None
        async def find() -> Dict[str, Any]:
            while True:
                line = await self.p.stdout.readline()  # type: ignore[union-attr]
                if not line:
                    err = await self.p.stderr.read()  # type: ignore[union-attr]
                    raise AssertionError(f"{self.argv[0]} exited before {name}: {err[-2000:]!r}")
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                self.lines.append(obj)
                if obj.get("event") == name:
                    return obj
        return await asyncio.wait_for(find(), timeout)

    async def finish(self, timeout: float = 30.0) -> Tuple[int, List[Dict[str, Any]]]:
        """Waits for the exit; returns the exit code and every JSON line."""
        assert self.p is not None and self.p.stdout is not None
        out, _ = await asyncio.wait_for(self.p.communicate(), timeout)
        for line in out.splitlines():
            try:
                self.lines.append(json.loads(line))
            except ValueError:
                pass
        assert self.p.returncode is not None
        return self.p.returncode, self.lines

    async def __aexit__(self, *exc: Any) -> None:
        if self.p is not None and self.p.returncode is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.p.wait(), 5)
            except asyncio.TimeoutError:
                self.p.kill()
                await self.p.wait()


def js_peer(*args: str) -> Proc:
    return Proc([NODE or "node", "--import", "./polyfill.mjs", "peer.mjs", *args], cwd=JS_DIR)


# ---------------------------------------------------------------- golemnet CLI

@need_cli
@aio(60)
async def test_python_dials_cli_node() -> None:
    async with Proc([CLI, "node", "--echo", "--json", "--listen", "/ip4/127.0.0.1/tcp/0"]) as cli:
        ev = await cli.event("listening")
        addr = ev["addrs"][0]
        async with Nodes() as ns:
            py = await ns.new(listen=False)
            ch = await py.dial(addr)
            assert ch.peer_id == ev["peer_id"]
            assert 0 < await ch.ping() < 1
            data = os.urandom(1 << 20)
            s = await ch.open_stream(ECHO)
            wt = asyncio.ensure_future(s.write(data))
            got = bytearray()
            while len(got) < len(data):
                got += await s.read(1 << 20)
            await wt
            await s.close()
            assert bytes(got) == data
            await py.unicast(ch, b"hello cli")
            msg = await cli.event("message")
            assert msg["peer_id"] == py.peer_id and msg["bytes"] == 9


@need_cli
@aio(60)
async def test_cli_dials_python_handlers() -> None:
    async with Nodes() as ns:
        py = await ns.new()  # default protocols: the Python handler serves /echo/1.0.0
        await py.set_handler(ECHO, py_echo)
        async with Proc([CLI, "echo", py.addrs[0], "--bytes", str(1 << 20), "--streams", "4",
                         "--json"]) as cli:
            code, lines = await cli.finish(40)
        echo = [x for x in lines if x.get("event") == "echo"]
        assert code == 0 and echo and echo[0]["ok"] is True, lines
        async with Proc([CLI, "ping", py.addrs[0], "--count", "3", "--json"]) as cli:
            code, lines = await cli.finish(30)
        assert code == 0 and len([x for x in lines if x.get("event") == "ping"]) == 3, lines


# ---------------------------------------------------------------- js-libp2p

@need_js
@aio(60)
async def test_python_dials_js() -> None:
    async with js_peer("--listen", "/ip4/127.0.0.1/tcp/0") as js:
        ev = await js.event("listening", 30)
        addr = [a for a in ev["addrs"] if a.startswith("/ip4/127.0.0.1/")][0]
        if "/p2p/" not in addr:
            addr += "/p2p/" + ev["peer_id"]
        async with Nodes() as ns:
            py = await ns.new(listen=False)
            ch = await py.dial(addr)
            assert ch.peer_id == ev["peer_id"]
            assert ch.security == "/noise" and ch.muxer == "/yamux/1.0.0"
            assert 0 < await ch.ping() < 1

            async def one() -> None:
                data = os.urandom(512 << 10)
                s = await ch.open_stream(ECHO)
                await s.write(data)
                await s.close_write()
                assert await s.read_all() == data
                await s.close()
            await asyncio.gather(*(one() for _ in range(4)))


@need_js
@aio(60)
async def test_js_dials_python_handlers() -> None:
    async with Nodes() as ns:
        py = await ns.new()
        await py.set_handler(ECHO, py_echo)
        async with js_peer("--dial", py.addrs[0], "--ping", "3", "--echo-bytes", str(1 << 20),
                           "--echo-streams", "4", "--exit-after-actions", "--timeout", "40") as js:
            code, lines = await js.finish(50)
        echo = [x for x in lines if x.get("event") == "echo"]
        pings = [x for x in lines if x.get("event") == "ping"]
        assert code == 0, lines
        assert echo and echo[0]["ok"] is True and len(pings) == 3, lines
