#!/usr/bin/python3
"""A bulk TCP sender and receiver with an explicit congestion control, for
test/netns/utp_ledbat_test.sh (Python 3 stdlib only).

  serve ADDR PORT WARMUP_S SECS
      accept connections on ADDR:PORT for SECS seconds; for each, read to
      EOF, answer with the byte count and print one JSON line: bytes,
      seconds (first byte to EOF), mbit_s, and warm_mbit_s, the rate from
      WARMUP_S seconds after the first byte to EOF (null if the transfer
      was shorter)
  send ADDR PORT BYTES CC SECS
      connect with congestion control CC (setsockopt TCP_CONGESTION: root
      may pick any the kernel has, e.g. cubic, even where a network
      namespace's default may only be one of the "allowed" ones), send
      BYTES zero bytes, half-close, wait for the receiver's count; prints
      one JSON line. Exit 1 if the count differs or CC cannot be set.

Every socket has a timeout of SECS; the caller adds timeout(1) too.
"""
import json
import socket
import sys
import time

TCP_CONGESTION = getattr(socket, "TCP_CONGESTION", 13)


def serve(addr, port, warm, secs):
    end = time.monotonic() + secs
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen(4)
    print(json.dumps({"listening": port}), flush=True)
    while time.monotonic() < end:
        ls.settimeout(max(0.1, end - time.monotonic()))
        try:
            c, _ = ls.accept()
        except socket.timeout:
            break
        c.settimeout(secs)
        n = 0
        t0 = tw = None
        nw = 0
        while True:
            b = c.recv(1 << 20)
            if not b:
                break
            now = time.monotonic()
            if t0 is None:
                t0 = now
            if tw is None and now - t0 >= warm:
                tw, nw = now, n
            n += len(b)
        t1 = time.monotonic()
        c.sendall(str(n).encode())
        c.close()
        dt = (t1 - t0) if t0 else 0.0
        warm_rate = (n - nw) * 8 / (t1 - tw) / 1e6 if tw and t1 > tw else None
        print(json.dumps({"bytes": n, "seconds": round(dt, 3),
                          "mbit_s": round(n * 8 / dt / 1e6, 2) if dt else None,
                          "warm_mbit_s": round(warm_rate, 2) if warm_rate else None}),
              flush=True)


def send(addr, port, nbytes, cc, secs):
    s = socket.socket()
    try:
        s.setsockopt(socket.IPPROTO_TCP, TCP_CONGESTION, cc.encode())
    except OSError as e:
        print(json.dumps({"error": "TCP_CONGESTION %s: %s" % (cc, e)}), flush=True)
        return 1
    s.settimeout(secs)
    t0 = time.monotonic()
    s.connect((addr, port))
    buf = bytes(1 << 16)
    left = nbytes
    while left > 0:
        left -= s.send(buf[:min(left, len(buf))])
    s.shutdown(socket.SHUT_WR)
    got = s.recv(64)
    dt = time.monotonic() - t0
    used = s.getsockopt(socket.IPPROTO_TCP, TCP_CONGESTION, 16).rstrip(b"\0").decode()
    print(json.dumps({"bytes": nbytes, "seconds": round(dt, 3), "cc": used,
                      "received": int(got or b"0")}), flush=True)
    return 0 if got and int(got) == nbytes and used == cc else 1


def main(a):
    if len(a) == 5 and a[0] == "serve":
        serve(a[1], int(a[2]), float(a[3]), float(a[4]))
        return 0
    if len(a) == 6 and a[0] == "send":
        return send(a[1], int(a[2]), int(a[3]), a[4], float(a[5]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
