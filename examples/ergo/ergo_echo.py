"""examples/ergo/ergo_echo.py - the process of ergo_echo.c in Python, and a
client that does to any such process what a Go Ergo node would: Call, Send,
Monitor, RemoteSpawn (docs/ergo-guide.md).

    python3 ergo_echo.py serve  --name pyecho@localhost --cookie secret [--registrar-port 4499]
                                [--allow-spawn worker]
    python3 ergo_echo.py client NODE --cookie secret [--registrar-port 4499] [--spawn worker]

serve: a process registered as "echo" answers a Call with the request (a
Point with X and Y doubled), prints every message it is sent, and ends with
reason "shutdown" on the atom 'stop'. With --allow-spawn FACTORY, remote
nodes may spawn processes from FACTORY that answer calls the same way
("spawned <pid> by <parent> as <name>" for each). Prints "ready <node> echo
<pid>".

client: prints its PID, calls echo on NODE with a string and a Point; with
--spawn FACTORY spawns a process there registered as "w1" and calls it by
PID and by name; then monitors echo, sends it 'stop' and waits for the down
signal; one line per step; exit 0 when every answer was the expected one.
Needs the golemnet package (PYTHONPATH=<build>/bindings/python, or pip
install).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys

import golemnet
from golemnet import ergo


# The Go side: package demo (import path golemnet.example/demo)
#     type Point struct { X, Y int32; Label string }
#     edf.RegisterTypeOf(Point{})        // before ergo.StartNode
@ergo.register_type("#golemnet.example/demo/Point", fields={"X": "int32", "Y": "int32"})
@dataclasses.dataclass
class Point:
    X: int
    Y: int
    Label: str


def node_for(name: str, cookie: str, registrar_port: int) -> tuple:
    node = golemnet.Node(protocol_components="ergo",
                         options=ergo.options(name, cookie, port=0,
                                              registrar_port=registrar_port))
    return node, ergo.ErgoNode(node, types=[Point])  # before the node starts


def echoed(v: object) -> object:
    """What echo (and every worker) answers a call with."""
    return Point(v.X * 2, v.Y * 2, "doubled") if isinstance(v, Point) else v


async def worker(p: ergo.Process, rq: ergo.SpawnRequest) -> None:
    """A process a remote node spawned (Go: RemoteSpawn); rq.register: the name it has."""
    print("spawned", p.pid, "by", rq.parent, "as", rq.register, flush=True)
    async for msg in p:                              # serve it like any process
        if isinstance(msg, ergo.Message) and msg.call:
            await msg.reply(echoed(msg.value))


async def serve(args: argparse.Namespace) -> int:
    node, en = node_for(args.name, args.cookie, args.registrar_port)
    async with node:
        p = await en.spawn("echo")                   # Go: gen.ProcessID{Name: "echo", Node: ...}
        if args.allow_spawn:                         # Go: RemoteSpawn(node, "worker", ...)
            await en.enable_spawn(args.allow_spawn, worker, max=16)
        print("ready", en.name, "echo", p.pid, flush=True)
        async for msg in p:
            if isinstance(msg, ergo.Signal):         # nothing links here; printed if it did
                print("signal", msg.kind, msg.target, msg.reason, flush=True)
                continue
            if msg.call:                             # Go: process.Call(to, request)
                await msg.reply(echoed(msg.value))
                continue
            print("message", msg.sender, repr(msg.value), flush=True)  # Go: process.Send
            if msg.value == ergo.Atom("stop"):
                await p.exit("shutdown")             # links get exit, monitors down: "shutdown"
                # the node closes next: give a Go peer time to handle the termination
                # frame before the connection drops (docs/ergo-guide.md "Exiting, then
                # closing"), or its monitors see "no connection"
                await asyncio.sleep(0.2)
                return 0
    return 0


async def client(args: argparse.Namespace) -> int:
    node, en = node_for("pyclient@localhost", args.cookie, args.registrar_port)
    async with node:
        me = await en.spawn()
        print("pid", me.pid, flush=True)
        echo = ergo.ProcessID("echo", args.node)
        # the first call connects by name (registrar); the server may still be registering
        for attempt in range(100):
            try:
                answer = await me.call(echo, "hello")
                break
            except golemnet.NotFoundError:
                if attempt == 99:
                    raise
                await asyncio.sleep(0.05)
        print("call", repr(answer), flush=True)
        doubled = await me.call(echo, Point(3, 4, "p"))
        print("call", doubled, flush=True)
        spawned_ok = True
        if args.spawn:
            pid = await me.remote_spawn(args.node, args.spawn, register="w1")
            print("spawn", pid, flush=True)
            by_pid = await me.call(pid, "to the worker")
            by_name = await me.call(ergo.ProcessID("w1", args.node), Point(1, 2, "w"))
            print("call", repr(by_pid), by_name, flush=True)
            spawned_ok = (pid.node == args.node and by_pid == "to the worker"
                          and by_name == Point(2, 4, "doubled"))
        await me.monitor(echo)                       # Go: process.MonitorProcessID(echo)
        await me.send(echo, ergo.Atom("stop"), important=True)
        down = await me.receive(timeout=10)
        print("signal", down.kind, down.target, down.reason, flush=True)
        ok = (spawned_ok and answer == "hello" and doubled == Point(6, 8, "doubled")
              and isinstance(down, ergo.Signal) and down.kind == "down"
              and down.reason == "shutdown")
        return 0 if ok else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["serve", "client"])
    ap.add_argument("node", nargs="?", help="client: the Ergo node of the echo process")
    ap.add_argument("--name", default="pyecho@localhost")
    ap.add_argument("--cookie", required=True)
    ap.add_argument("--registrar-port", type=int, default=4499)
    ap.add_argument("--allow-spawn", metavar="FACTORY", help="serve: enable remote spawn")
    ap.add_argument("--spawn", metavar="FACTORY", help="client: spawn on NODE and call it")
    args = ap.parse_args()
    if args.mode == "client" and not args.node:
        ap.error("client needs NODE")
    return asyncio.run(serve(args) if args.mode == "serve" else client(args))


if __name__ == "__main__":
    sys.exit(main())
