#!/usr/bin/python3
"""Small UDP/TCP probes for the netns rig (Python 3 stdlib only).

Every mode is bounded by its SECS argument (and the caller's timeout(1)).
Exit status: 0 = the expected thing happened, 1 = it did not, 2 = bad usage.

  echo-udp PORT SECS               reply "seen IP:PORT" to every datagram
  echo-tcp PORT SECS               reply "seen IP:PORT" to every connection
  ask-udp HOST PORT SRCPORT SECS   send from SRCPORT, print the reply
  ask-tcp HOST PORT SRCPORT SECS   connect from SRCPORT, print the reply
  recv-udp PORT SECS               0 if any datagram arrives on PORT
  accept-tcp PORT SECS             0 if any connection arrives on PORT
  send-udp HOST PORT SECS          send datagrams to HOST:PORT every 100 ms
  connect-tcp HOST PORT SECS       0 if a TCP connection to HOST:PORT succeeds
  rendezvous PORT SECS             UDP: "reg NAME PEER" -> "peer IP:PORT" of
                                   PEER's last registration, or "wait"
  punch NAME PEER SRCPORT HOST PORT SECS
                                   register at rendezvous HOST:PORT from
                                   SRCPORT, learn PEER's mapped address, then
                                   send "punch NAME" to it every 100 ms;
                                   0 once a punch from PEER arrived and PEER
                                   acknowledged ours
"""
import socket
import sys
import time


def out(*a):
    print(*a, flush=True)


def udp_sock(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    return s


def left(deadline):
    return max(0.0, deadline - time.monotonic())


def echo_udp(port, secs):
    s = udp_sock(port)
    out("ready")
    end = time.monotonic() + secs
    while left(end) > 0:
        s.settimeout(left(end) or 0.01)
        try:
            data, src = s.recvfrom(2048)
        except socket.timeout:
            break
        out(f"from {src[0]}:{src[1]} {data.decode(errors='replace')}")
        s.sendto(f"seen {src[0]}:{src[1]}".encode(), src)
    return 0


def echo_tcp(port, secs):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", port))
    ls.listen(8)
    out("ready")
    end = time.monotonic() + secs
    while left(end) > 0:
        ls.settimeout(left(end) or 0.01)
        try:
            c, src = ls.accept()
        except socket.timeout:
            break
        out(f"from {src[0]}:{src[1]}")
        c.sendall(f"seen {src[0]}:{src[1]}".encode())
        c.close()
    return 0


def ask_udp(host, port, sport, secs):
    s = udp_sock(sport)
    end = time.monotonic() + secs
    while left(end) > 0:
        s.sendto(b"hello", (host, port))
        s.settimeout(min(0.3, left(end)) or 0.01)
        try:
            data, _ = s.recvfrom(2048)
        except socket.timeout:
            continue
        out(data.decode())
        return 0
    return 1


def ask_tcp(host, port, sport, secs):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", sport))
    s.settimeout(secs)
    try:
        s.connect((host, port))
        data = s.recv(2048)
    except OSError as e:
        out(f"error {e}")
        return 1
    out(data.decode())
    return 0


def recv_udp(port, secs):
    s = udp_sock(port)
    out("ready")
    s.settimeout(secs)
    try:
        data, src = s.recvfrom(2048)
    except socket.timeout:
        out("nothing")
        return 1
    out(f"got {src[0]}:{src[1]} {data.decode(errors='replace')}")
    return 0


def accept_tcp(port, secs):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", port))
    ls.listen(1)
    out("ready")
    ls.settimeout(secs)
    try:
        _, src = ls.accept()
    except socket.timeout:
        out("nothing")
        return 1
    out(f"got {src[0]}:{src[1]}")
    return 0


def send_udp(host, port, secs):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    end = time.monotonic() + secs
    n = 0
    while left(end) > 0:
        try:
            s.sendto(b"unsolicited", (host, port))
            n += 1
        except OSError:
            pass
        time.sleep(min(0.1, left(end)))
    out(f"sent {n}")
    return 0


def connect_tcp(host, port, secs):
    s = socket.socket()
    s.settimeout(secs)
    try:
        s.connect((host, port))
    except OSError as e:
        out(f"failed {e}")
        return 1
    out("connected")
    return 0


def rendezvous(port, secs):
    s = udp_sock(port)
    out("ready")
    seen = {}
    end = time.monotonic() + secs
    while left(end) > 0:
        s.settimeout(left(end) or 0.01)
        try:
            data, src = s.recvfrom(2048)
        except socket.timeout:
            break
        parts = data.decode(errors="replace").split()
        if len(parts) != 3 or parts[0] != "reg":
            continue
        if seen.get(parts[1]) != src:
            out(f"reg {parts[1]} {src[0]}:{src[1]}")
        seen[parts[1]] = src
        peer = seen.get(parts[2])
        s.sendto((f"peer {peer[0]}:{peer[1]}" if peer else "wait").encode(), src)
    return 0


def punch(name, peer, sport, host, port, secs):
    s = udp_sock(sport)
    end = time.monotonic() + secs
    target = None
    while target is None and left(end) > 0:
        s.sendto(f"reg {name} {peer}".encode(), (host, port))
        s.settimeout(min(0.2, left(end)) or 0.01)
        try:
            data, src = s.recvfrom(2048)
        except socket.timeout:
            continue
        msg = data.decode(errors="replace").split()
        if (src[0], src[1]) == (host, port) and len(msg) == 2 and msg[0] == "peer":
            ip, p = msg[1].rsplit(":", 1)
            target = (ip, int(p))
    if target is None:
        out("no peer address from the rendezvous")
        return 1
    out(f"peer {target[0]}:{target[1]}")
    got = acked = False
    done_at = None
    next_send = 0.0
    while left(end) > 0:
        now = time.monotonic()
        if done_at is not None and now - done_at > 0.6:
            break  # kept answering for a while so the peer finishes too
        if now >= next_send:
            s.sendto(f"punch {name}".encode(), target)
            next_send = now + 0.1
        s.settimeout(max(0.01, min(next_send - now, left(end))))
        try:
            data, src = s.recvfrom(2048)
        except socket.timeout:
            continue
        msg = data.decode(errors="replace").split()
        if msg == ["punch", peer]:
            if not got:
                out(f"punch from {src[0]}:{src[1]}")
            got = True
            s.sendto(f"ack {name}".encode(), src)
        elif msg == ["ack", peer]:
            acked = True
        if got and acked and done_at is None:
            done_at = time.monotonic()
    out("punched" if got and acked else f"failed got={got} acked={acked}")
    return 0 if got and acked else 1


def main(argv):
    modes = {
        "echo-udp": (echo_udp, (int, float)),
        "echo-tcp": (echo_tcp, (int, float)),
        "ask-udp": (ask_udp, (str, int, int, float)),
        "ask-tcp": (ask_tcp, (str, int, int, float)),
        "recv-udp": (recv_udp, (int, float)),
        "accept-tcp": (accept_tcp, (int, float)),
        "send-udp": (send_udp, (str, int, float)),
        "connect-tcp": (connect_tcp, (str, int, float)),
        "rendezvous": (rendezvous, (int, float)),
        "punch": (punch, (str, str, int, str, int, float)),
    }
    if len(argv) < 2 or argv[1] not in modes:
        sys.stderr.write(__doc__)
        return 2
    fn, types = modes[argv[1]]
    if len(argv) - 2 != len(types):
        sys.stderr.write(__doc__)
        return 2
    return fn(*(t(a) for t, a in zip(types, argv[2:])))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
