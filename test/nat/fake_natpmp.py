#!/usr/bin/python3
"""A minimal NAT-PMP gateway (RFC 6886) for the NAT tests (stdlib only).

Listens on --addr:5351/udp inside a test network namespace and answers the
public address request (opcode 0) with --ext, and mapping requests
(opcodes 1 UDP, 2 TCP) by granting public port private+--shift for
min(asked, --max-lifetime) seconds; lifetime 0 deletes. Every request is
appended to --log, one line each.

Usage: fake_natpmp.py --addr 10.77.1.1 --ext 203.0.113.7 --log FILE
                      [--shift 1000] [--max-lifetime 3600] [--seconds 60]
"""
import argparse
import socket
import struct
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", required=True)
    ap.add_argument("--ext", default="203.0.113.7")
    ap.add_argument("--log", required=True)
    ap.add_argument("--shift", type=int, default=1000)
    ap.add_argument("--max-lifetime", type=int, default=3600)
    ap.add_argument("--seconds", type=float, default=60)
    o = ap.parse_args()
    start = time.monotonic()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((o.addr, 5351))
    s.settimeout(0.5)
    log = open(o.log, "w", buffering=1)
    log.write("READY\n")
    mappings = {}
    while time.monotonic() - start < o.seconds:
        try:
            data, peer = s.recvfrom(1100)
        except socket.timeout:
            continue
        epoch = int(time.monotonic() - start)
        if len(data) < 2 or data[0] != 0:
            log.write("BAD version\n")
            s.sendto(struct.pack(">BBHI", 0, 128 + (data[1] if len(data) > 1 else 0), 1, epoch), peer)
            continue
        op = data[1]
        if op == 0 and len(data) == 2:
            log.write("PUBADDR from=%s\n" % peer[0])
            s.sendto(struct.pack(">BBHI4s", 0, 128, 0, epoch, socket.inet_aton(o.ext)), peer)
        elif op in (1, 2) and len(data) == 12:
            _, _, _, priv, pub, life = struct.unpack(">BBHHHI", data)
            proto = "udp" if op == 1 else "tcp"
            if life == 0:
                found = mappings.pop((proto, priv), None) is not None
                log.write("DELETE %s priv=%d found=%d\n" % (proto, priv, found))
                s.sendto(struct.pack(">BBHIHHI", 0, 128 + op, 0, epoch, priv, 0, 0), peer)
                continue
            granted = min(life, o.max_lifetime)
            public = priv + o.shift
            mappings[(proto, priv)] = public
            log.write("MAP %s priv=%d suggested=%d lifetime=%d -> public=%d granted=%d\n"
                      % (proto, priv, pub, life, public, granted))
            s.sendto(struct.pack(">BBHIHHI", 0, 128 + op, 0, epoch, priv, public, granted), peer)
        else:
            log.write("UNSUPPORTED op=%d len=%d\n" % (op, len(data)))
            s.sendto(struct.pack(">BBHI", 0, 128 + op, 5, epoch), peer)


if __name__ == "__main__":
    main()
