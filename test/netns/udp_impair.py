#!/usr/bin/env python3
"""test/netns/udp_impair.py: a userspace UDP impairment forwarder (issue 16).

Used by test/netns/utp_netem_test.sh on kernels without sch_netem. It runs
in a router namespace R that sits between A and B on two veth pairs, with
no IP forwarding and no NAT rules: A dials R's address (--listen), and for
every distinct A-side source address the forwarder opens one socket on R's
B-side address (--upstream-bind, ephemeral port) connected to B's listener
(--target). Datagrams from A go out on that socket to B; B's replies come
back on it and are sent to the A source from the listening socket. The
secure channel checks the peer's key, not its address, so A dials
/ip4/<R>/udp/<port>/utp/p2p/<B's peer id>.

Per impaired direction (both by default; with --faults a2b only A to B, as
netem on one end of a veth pair would do, and B's replies are sent on at
once), each received datagram is independently:
  - dropped with probability --loss (counter "dropped");
  - otherwise delayed by --delay +- --jitter ms (uniform; the jitter alone
    reorders datagrams less than 2*jitter apart);
  - with probability --reorder held back --reorder-extra ms more, so later
    datagrams overtake it (counter "reordered");
  - with probability --dup sent twice, each copy with its own delay
    (counter "duplicated").
Datagrams scheduled but not yet sent are bounded by --queue-cap per
direction; beyond it a datagram is dropped (counter "overflow"). At most
--max-clients A-side sources are tracked. The RNG is seeded (--seed), so
a run's decisions depend only on the order of arrival. The process exits
after --lifetime seconds, or on SIGTERM/SIGINT; on exit it prints one JSON
line of counters per direction to stdout ("forwarded" counts datagrams
sent, duplicates included; "max_size" is the largest datagram, bytes). It
prints "ready" once its sockets are bound.

Python 3 standard library only.
"""
import argparse
import asyncio
import json
import random
import signal
import socket
import sys


def parse_addr(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


class Direction:
    def __init__(self, name, args, seed, impaired=True):
        self.name = name
        self.args = args
        self.impaired = impaired
        self.rng = random.Random(seed)
        self.pending = 0
        self.c = dict(received=0, forwarded=0, dropped=0, duplicated=0,
                      reordered=0, overflow=0, send_errors=0, max_size=0)

    def submit(self, loop, data, send):
        a = self.args
        self.c["received"] += 1
        if len(data) > self.c["max_size"]:
            self.c["max_size"] = len(data)
        if not self.impaired:
            self.pending += 1
            self._emit(data, send)
            return
        if self.rng.random() < a.loss:
            self.c["dropped"] += 1
            return
        copies = 1
        if self.rng.random() < a.dup:
            copies = 2
            self.c["duplicated"] += 1
        for _ in range(copies):
            if self.pending >= a.queue_cap:
                self.c["overflow"] += 1
                continue
            delay = a.delay + self.rng.uniform(-a.jitter, a.jitter)
            if self.rng.random() < a.reorder:
                delay += a.reorder_extra
                self.c["reordered"] += 1
            self.pending += 1
            loop.call_later(max(delay, 0.0) / 1000.0, self._emit, data, send)

    def _emit(self, data, send):
        self.pending -= 1
        try:
            send(data)
            self.c["forwarded"] += 1
        except OSError:
            self.c["send_errors"] += 1


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", required=True, help="HOST:PORT that A dials")
    p.add_argument("--upstream-bind", required=True, help="R's address towards B")
    p.add_argument("--target", required=True, help="B's HOST:PORT")
    p.add_argument("--loss", type=float, default=0.05)
    p.add_argument("--delay", type=float, default=50.0, help="ms")
    p.add_argument("--jitter", type=float, default=10.0, help="ms")
    p.add_argument("--dup", type=float, default=0.01)
    p.add_argument("--reorder", type=float, default=0.01)
    p.add_argument("--reorder-extra", type=float, default=30.0, help="ms")
    p.add_argument("--queue-cap", type=int, default=4096)
    p.add_argument("--max-clients", type=int, default=64)
    p.add_argument("--seed", type=int, default=16)
    p.add_argument("--faults", choices=("both", "a2b"), default="both",
                   help="directions impaired; a2b: B's replies pass at once")
    p.add_argument("--lifetime", type=float, default=900.0, help="s")
    args = p.parse_args()

    loop = asyncio.new_event_loop()
    target = parse_addr(args.target)
    a2b = Direction("a2b", args, args.seed * 2)
    b2a = Direction("b2a", args, args.seed * 2 + 1, args.faults == "both")
    lsock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    lsock.bind(parse_addr(args.listen))
    lsock.setblocking(False)
    upstream = {}  # A-side source address -> socket connected to B
    done = loop.create_future()

    def on_upstream(sock, src):
        for _ in range(256):  # bounded drain per wakeup
            try:
                data = sock.recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                b2a.c["send_errors"] += 1
                return
            b2a.submit(loop, data, lambda d: lsock.sendto(d, src))

    def on_listen():
        for _ in range(256):
            try:
                data, src = lsock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            sock = upstream.get(src)
            if sock is None:
                if len(upstream) >= args.max_clients:
                    a2b.c["overflow"] += 1
                    continue
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
                sock.bind((args.upstream_bind, 0))
                sock.connect(target)
                sock.setblocking(False)
                upstream[src] = sock
                loop.add_reader(sock.fileno(), on_upstream, sock, src)
            a2b.submit(loop, data, sock.send)

    def stop():
        if not done.done():
            done.set_result(None)

    loop.add_reader(lsock.fileno(), on_listen)
    loop.add_signal_handler(signal.SIGTERM, stop)
    loop.add_signal_handler(signal.SIGINT, stop)
    loop.call_later(args.lifetime, stop)
    print("ready", flush=True)
    loop.run_until_complete(done)
    for d in (a2b, b2a):
        print(json.dumps(dict(direction=d.name, **d.c)), flush=True)
    for sock in upstream.values():
        sock.close()
    lsock.close()
    loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
