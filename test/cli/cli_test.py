#!/usr/bin/env python3
"""The golemnet CLI contract: JSON lines, exit codes 0/1/2, errors on stderr.

Usage: cli_test.py PATH_TO_golemnet   (prints TAP)
"""
import calendar
import errno
import json
import os
import pty
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

CLI = sys.argv[1]
SEED1 = "12D3KooWPjceQrSwdWXPyLLeABRXmuqt69Rg3sBYbU1Nft9HyQ6X"
results = []


def run(*args, timeout=30):
    p = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def events(out):
    """The JSON lines of @out, each checked to be one object with "event"."""
    evs = []
    for line in out.splitlines():
        obj = json.loads(line)
        assert isinstance(obj, dict) and isinstance(obj.get("event"), str), line
        evs.append(obj)
    return evs


class Node:
    """`golemnet node --json ...` in the background; reads its stdout lines."""

    def __init__(self, *args):
        self.p = subprocess.Popen([CLI, "node", "--json", *args], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        self.lines = []
        self.buf = b""
        self.err = ""

    def next_event(self, timeout=10):
        """The next stdout line as an object, or None (timeout or EOF)."""
        deadline = time.monotonic() + timeout
        fd = self.p.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        obj = json.loads(line)
        self.lines.append(obj)
        return obj

    def wait_for(self, pred, timeout=10):
        deadline = time.monotonic() + timeout
        for e in self.lines:
            if pred(e):
                return e
        while time.monotonic() < deadline:
            e = self.next_event(max(0.01, deadline - time.monotonic()))
            if e is None:
                return None
            if pred(e):
                return e
        return None

    def stop(self, sig=signal.SIGTERM):
        """Signals the node; returns (exit status, remaining events)."""
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            out, err = self.p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            out, err = self.p.communicate()
            self.err = err.decode(errors="replace")
            return None, []
        self.err = err.decode(errors="replace")
        rest = events((self.buf + out).decode())
        self.buf = b""
        self.lines.extend(rest)
        return self.p.returncode, rest


def start_node(*args):
    n = Node(*args)
    ev = n.next_event()
    assert ev is not None and ev["event"] == "listening", ev
    return n, ev


ONLY = sys.argv[2:]  # optional words: run only the cases whose name has one of them


def case(fn):
    if ONLY and not any(w in fn.__name__ for w in ONLY):
        return fn
    try:
        fn()
        results.append((fn.__name__, None))
    except AssertionError as e:
        results.append((fn.__name__, str(e) or "assertion failed"))
    except Exception as e:  # a crash in a case fails that case, not the run
        results.append((fn.__name__, f"{type(e).__name__}: {e}"))
    return fn


@case
def id_seed_1_plain():
    rc, out, _ = run("id", "--key-seed", "1")
    assert rc == 0, rc
    assert out.strip() == SEED1, out


@case
def id_seed_1_json():
    rc, out, _ = run("id", "--key-seed", "1", "--json")
    assert rc == 0
    lines = out.splitlines()
    assert len(lines) == 1, lines
    obj = json.loads(lines[0])
    assert obj["event"] == "id" and obj["peer_id"] == SEED1, obj
    assert obj["peer_id_cid"].startswith("bafz"), obj


@case
def id_fresh_differs():
    a = json.loads(run("id", "--json")[1])["peer_id"]
    b = json.loads(run("id", "--json")[1])["peer_id"]
    assert a != b and a.startswith("12D3KooW") and b.startswith("12D3KooW")


@case
def keygen_then_load():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "node.key")
        rc, out, _ = run("keygen", "--out", path, "--json")
        assert rc == 0, rc
        made = json.loads(out)["peer_id"]
        assert (os.stat(path).st_mode & 0o777) == 0o600
        rc, out, _ = run("id", "--key", path)
        assert rc == 0 and out.strip() == made, (rc, out, made)
        rc, _, err = run("keygen", "--out", path)  # refuses to overwrite
        assert rc == 1 and "golemnet:" in err, (rc, err)


@case
def keygen_key_types():
    # issue 17: every key type; the @libp2p/interop key files load with js's peer IDs
    prefix = {"ed25519": "12D3KooW", "rsa": "Qm", "secp256k1": "16Uiu2HA", "ecdsa": "Qm"}
    with tempfile.TemporaryDirectory() as d:
        for kt, pre in prefix.items():
            path = os.path.join(d, kt + ".key")
            rc, out, _ = run("keygen", "--out", path, "--key-type", kt, "--json")
            assert rc == 0, (kt, rc)
            made = json.loads(out)
            assert made["key_type"] == kt and made["peer_id"].startswith(pre), made
            rc, out, _ = run("id", "--key", path, "--json")
            got = json.loads(out)
            assert rc == 0 and got["peer_id"] == made["peer_id"] and got["key_type"] == kt, got
        path = os.path.join(d, "x.key")
        rc, _, err = run("keygen", "--out", path, "--key-type", "dsa")
        assert rc == 2 and "--key-type" in err, (rc, err)
        rc, _, err = run("keygen", "--out", path, "--key-type", "rsa", "--bits", "1024")
        assert rc == 2 and "--bits" in err, (rc, err)
        rc, _, err = run("keygen", "--out", path, "--bits", "4096")
        assert rc == 2, rc
        # a key file that is not a key: a clear error
        with open(path, "wb") as f:
            f.write(bytes([0x08, 0x00, 0x12, 0x03, 0x30, 0x01, 0x00]))
        rc, _, err = run("id", "--key", path)
        assert rc == 1 and "key" in err, (rc, err)
    keys = os.path.join(os.environ.get("GN_SOURCE_DIR", os.path.join(os.path.dirname(
        os.path.abspath(__file__)), "..", "..")), "test", "data", "interop-keys")
    want = {  # what @libp2p/crypto + @libp2p/peer-id derive (test/data/interop-keys)
        "go.ed25519.key": "12D3KooWRqGdmFVwspgLBajUQacY1TrkBkAUqmjqjbHSFGEoZs9R",
        "go.rsa.key": "QmWS3xmxj1i659VUoustPU8KGzXkziqzF7BBGXS9fDwyz1",
        "go.secp256k1.key": "16Uiu2HAmPu9PZESp4keskcfDkdBvDhs1Dra1aLjfeHRCFHgQoD6L",
        "js.ed25519.key": "12D3KooWDaHkRyb4Nkf8L6WHbsWB9Krt491NDk8PaPGogXvj2pcY",
        "js.rsa.key": "QmPFdSzvgd1HbZSd6oX2N2vCSnhSEeocbQZsMB42UG8smE",
        "js.secp256k1.key": "16Uiu2HAm7txvwZbeK5g3oB3DrRhnARTEjTNorVreWJomfHJHbEu2",
    }
    for name, pid in want.items():
        rc, out, _ = run("id", "--key", os.path.join(keys, name))
        assert rc == 0 and out.strip() == pid, (name, rc, out)


@case
def missing_key_file_fails():
    rc, out, err = run("id", "--key", "/nonexistent/golemnet.key", "--json")
    assert rc == 1, rc
    assert json.loads(out)["event"] == "error"
    assert err


@case
def multiaddr_parse():
    rc, out, _ = run("multiaddr", "/ip4/127.0.0.1/udp/1234", "--json")
    assert rc == 0
    obj = json.loads(out)
    assert obj["bytes"] == "047f000001910204d2", obj
    assert [c["protocol"] for c in obj["components"]] == ["ip4", "udp"]
    assert obj["components"][1]["value"] == "1234"


@case
def multiaddr_bad_is_failure():
    rc, _, err = run("multiaddr", "/ip4/300.0.0.1/tcp/1")
    assert rc == 1 and "golemnet:" in err, (rc, err)


@case
def bad_usage_exit_2():
    for args in ([], ["frobnicate"], ["id", "--key-seed"], ["id", "--key-seed", "-3"],
                 ["id", "--key-seed", "x"], ["id", "--key", "a", "--key-seed", "1"],
                 ["multiaddr"], ["keygen"]):
        rc, out, _ = run(*args)
        assert rc == 2, (args, rc)
        assert out == "", (args, out)



@case
def node_listening_line_and_sigterm():
    n, ev = start_node("--key-seed", "1", "--listen", "/ip4/127.0.0.1/tcp/0",
                       "--listen", "/ip4/127.0.0.1/tcp/0")
    assert ev["peer_id"] == SEED1, ev
    assert len(ev["addrs"]) == 2, ev
    for a in ev["addrs"]:
        assert a.startswith("/ip4/127.0.0.1/tcp/") and a.endswith("/p2p/" + SEED1), a
        assert not a.startswith("/ip4/127.0.0.1/tcp/0/"), a
    rc, rest = n.stop(signal.SIGTERM)
    assert rc == 0, rc
    assert not any(e["event"] in ("listening", "error") for e in rest), rest


@case
def node_sigint_exits_0():
    n, _ = start_node()
    rc, _ = n.stop(signal.SIGINT)
    assert rc == 0, rc


@case
def node_listen_failure():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        rc, out, err = run("node", "--json", "--listen", f"/ip4/127.0.0.1/tcp/{port}", timeout=15)
    finally:
        s.close()
    assert rc == 1, (rc, out, err)
    evs = events(out)
    assert evs and evs[-1]["event"] == "error" and evs[-1]["what"] == "listen", evs
    assert not any(e["event"] == "listening" for e in evs), evs
    assert err


@case
def ping_echo_perf_against_a_node():
    n, ev = start_node("--key-seed", "1", "--echo", "--perf")
    addr = ev["addrs"][0]
    try:
        rc, out, err = run("ping", addr, "--count", "2", "--key-seed", "2", "--json")
        assert rc == 0, (rc, out, err)
        evs = events(out)
        pings = [e for e in evs if e["event"] == "ping"]
        assert len(pings) == 2 and all(p["peer_id"] == SEED1 and p["rtt_ms"] > 0 for p in pings), evs
        opened = [e for e in evs if e["event"] == "channel_opened"]
        assert len(opened) == 1, evs
        o = opened[0]
        assert (o["direction"], o["security"], o["muxer"]) == ("outbound", "/noise", "/yamux/1.0.0"), o
        assert o["peer_id"] == SEED1 and addr.startswith(o["remote_addr"] + "/p2p/"), o
        rc, out, err = run("echo", addr, "--bytes", "100000", "--streams", "3", "--json")
        assert rc == 0, (rc, out, err)
        e = [x for x in events(out) if x["event"] == "echo"]
        assert e and e[0]["ok"] is True and e[0]["bytes"] == 100000 and e[0]["streams"] == 3, out
        rc, out, err = run("perf", addr, "--upload-bytes", "1000000", "--download-bytes",
                           "2000000", "--json")
        assert rc == 0, (rc, out, err)
        p = [x for x in events(out) if x["event"] == "perf"]
        assert p and p[0]["upload_bytes"] == 1000000 and p[0]["download_bytes"] == 2000000, out
        assert p[0]["upload_s"] > 0 and p[0]["download_s"] > 0, p
        # the node reported the dialer's channel and identify result
        seed2 = json.loads(run("id", "--key-seed", "2", "--json")[1])["peer_id"]
        got = n.wait_for(lambda e: e["event"] == "identify" and e["peer_id"] == seed2)
        assert got and got["ok"] is True and "/ipfs/ping/1.0.0" in got["protocols"], got
        assert got["agent_version"].startswith("golemnet/"), got
    finally:
        rc, _ = n.stop()
    assert rc == 0, rc
    ins = [e for e in n.lines if e["event"] == "channel_opened"]
    assert len(ins) == 3 and all(e["direction"] == "inbound" and e["security"] == "/noise"
                                 for e in ins), ins
    closed = [e for e in n.lines if e["event"] == "channel_closed"]
    assert len(closed) == 3 and all(e["reason"] for e in closed), closed


@case
def ecies_only_dialer_and_listener():
    n, ev = start_node("--security", "ecies", "--muxer", "mplex")
    try:
        rc, out, err = run("ping", ev["addrs"][0], "--security", "ecies", "--json")
        assert rc == 0, (rc, out, err)
        o = [e for e in events(out) if e["event"] == "channel_opened"][0]
        assert (o["security"], o["muxer"]) == ("/golem/ecies/1.0.0", "/mplex/6.7.0"), o
        # a Noise-only dialer has nothing in common with it
        rc, out, err = run("ping", ev["addrs"][0], "--security", "noise", "--json",
                           "--timeout", "10")
        assert rc == 1, (rc, out, err)
        assert events(out)[-1]["event"] == "error", out
    finally:
        assert n.stop()[0] == 0


@case
def dial_by_peer_id_route_bootstrap_and_routes_file():
    n, ev = start_node("--key-seed", "1")
    addr = ev["addrs"][0]
    try:
        for how in (["--route", addr], ["--bootstrap", addr]):
            rc, out, err = run("ping", f"/p2p/{SEED1}", *how, "--json", timeout=20)
            assert rc == 0, (how, rc, err)
            assert [e for e in events(out) if e["event"] == "ping"], out
        with tempfile.NamedTemporaryFile("w", suffix=".routes", delete=False) as f:
            f.write(f"# test routes\n\n{addr}\n")
        try:
            rc, out, err = run("ping", SEED1, "--router", "static", "--option",
                               f"static.file={f.name}", "--json", timeout=20)
            assert rc == 0, (rc, err)
        finally:
            os.unlink(f.name)
        # no route: exit 1, and the error says so and names the target
        rc, out, err = run("ping", f"/p2p/{SEED1}", "--router", "", "--discovery", "",
                           "--json", timeout=20)
        assert rc == 1, (rc, out, err)
        e = events(out)[-1]
        assert e["event"] == "error" and e["error"] == "GN_ENOROUTE", e
        # a bad routes file line is named
        with tempfile.NamedTemporaryFile("w", suffix=".routes", delete=False) as f:
            f.write(f"{addr}\n/ip4/1.2.3.4/tcp/x\n")
        try:
            rc, out, err = run("ping", SEED1, "--option", f"static.file={f.name}",
                               "--log", "err", timeout=20)
            assert rc != 0 and "line 2" in err, (rc, err)
        finally:
            os.unlink(f.name)
    finally:
        assert n.stop()[0] == 0


@case
def dial_failures_exit_1():
    n, ev = start_node("--key-seed", "1")
    addr = ev["addrs"][0]
    bare = addr.rsplit("/p2p/", 1)[0]
    seed9 = json.loads(run("id", "--key-seed", "9", "--json")[1])["peer_id"]
    try:
        rc, out, err = run("ping", f"{bare}/p2p/{seed9}", "--json")
        assert rc == 1 and err, (rc, out, err)
        e = events(out)[-1]
        assert e["event"] == "error" and e["what"] == "dial" and e["error"] == "GN_EPEERID", e
        # the message names the peer ID expected, the one received and where
        seed1 = addr.rsplit("/p2p/", 1)[1]
        assert e["expected_peer_id"] == seed9, e
        assert e["received_peer_id"] == seed1, e
        assert seed9 in e["message"] and bare in e["message"], e
        want = f"peer ID mismatch: expected {seed9}, received {seed1}"
        assert want in e["message"], e
        assert want in err, err
        rc, out, _ = run("echo", addr, "--bytes", "10", "--json")  # node serves no echo
        assert rc == 1, (rc, out)
        e = [x for x in events(out) if x["event"] == "error"]
        assert len(e) == 1 and e[0]["what"] == "echo" and e[0]["error"] == "GN_ENEGOTIATION", out
    finally:
        assert n.stop()[0] == 0
    rc, out, _ = run("ping", bare, "--json")  # nobody listens there any more
    assert rc == 1, (rc, out)
    e = [x for x in events(out) if x["event"] == "error"]
    assert len(e) == 1 and e[0]["what"] == "dial", out


@case
def dial_timeout():
    s = socket.socket()  # accepts (backlog) and never answers
    s.bind(("127.0.0.1", 0))
    s.listen(4)
    port = s.getsockname()[1]
    try:
        t0 = time.monotonic()
        rc, out, err = run("ping", f"/ip4/127.0.0.1/tcp/{port}", "--timeout", "1", "--json")
        took = time.monotonic() - t0
    finally:
        s.close()
    assert rc == 1 and took < 10, (rc, took)
    e = events(out)[-1]
    assert e["event"] == "error" and e["error"] == "GN_ETIMEDOUT", e


def syn_drop_listener():
    """A loopback listener that drops SYNs: backlog 0, never accepting, its
    accept queue filled. Returns (listener, fillers) or None when the
    kernel keeps completing handshakes."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(0)
    fill = []
    for _ in range(16):
        c = socket.socket()
        c.setblocking(False)
        fill.append(c)
        err = c.connect_ex(s.getsockname())
        if err == 0:
            continue
        if err != errno.EINPROGRESS:
            break
        _, w, _ = select.select([], [c], [], 0.1)
        if not w:
            return s, fill  # this SYN was dropped: the queue is full
    for c in fill:
        c.close()
    s.close()
    return None


@case
def timeout_bounds_a_hanging_dial():
    # --timeout bounds the whole command: a dial whose SYNs are dropped ends
    # (socket closed, node closed, process gone) at the timeout, not at the
    # transport's own 10 s dial timeout
    sd = syn_drop_listener()
    if sd is None:
        print("# skip: cannot provoke dropped SYNs here")
        return
    s, fill = sd
    try:
        t0 = time.monotonic()
        rc, out, err = run("ping", f"/ip4/127.0.0.1/tcp/{s.getsockname()[1]}",
                           "--timeout", "1", "--json")
        took = time.monotonic() - t0
    finally:
        for c in fill:
            c.close()
        s.close()
    assert rc == 1 and took < 1.5, (rc, took, err)
    e = events(out)[-1]
    assert e["event"] == "error" and e["error"] == "GN_ETIMEDOUT", e


@case
def network_bad_usage_exit_2():
    for args in (["node", "--bogus"], ["node", "--listen"], ["ping"],
                 ["ping", "/ip4/127.0.0.1/tcp/1", "--count", "0"],
                 ["echo", "/ip4/127.0.0.1/tcp/1"],
                 ["echo", "/ip4/127.0.0.1/tcp/1", "--bytes", "1", "--streams", "0"],
                 ["perf", "/ip4/127.0.0.1/tcp/1"],
                 ["perf", "/ip4/127.0.0.1/tcp/1", "--upload-bytes", "x"],
                 ["ping", "/ip4/127.0.0.1/tcp/1", "--timeout", "0"],
                 ["ping", "/ip4/127.0.0.1/tcp/1", "--security", "nosuch"],
                 ["node", "--muxer", "nosuch"],
                 ["node", "--router", "nosuch"],
                 ["node", "--option", "nodot=1"],
                 ["node", "--key", "a", "--key-seed", "1"],
                 ["node", "--echo", "extra"]):
        rc, out, _ = run(*args, "--json")
        assert rc == 2, (args, rc)
        assert out == "", (args, out)


COMMANDS = ("id", "keygen", "multiaddr", "version", "node", "ping", "echo", "perf", "dht")


@case
def help_per_command_and_version():
    for cmd in COMMANDS:
        for args in ([cmd, "--help"], [cmd, "-h"], ["help", cmd]):
            rc, out, err = run(*args)
            assert rc == 0 and err == "", (args, rc, err)
            assert out.startswith(f"usage: golemnet {cmd}"), (args, out)
    # each command lists its own flags, and not the others'
    assert "--interval" in run("ping", "--help")[1]
    assert "--bytes N" in run("echo", "--help")[1] and "--interval" not in run("echo", "--help")[1]
    assert "--upload-bytes" in run("perf", "--help")[1]
    assert "--echo" in run("node", "--help")[1] and "--timeout" not in run("node", "--help")[1]
    # --help wins wherever it is, even after a bad option
    rc, out, _ = run("ping", "/ip4/127.0.0.1/tcp/1", "--count", "0", "--help")
    assert rc == 0 and "--count" in out, (rc, out)
    for args in (["--help"], ["help"], ["-h"]):
        rc, out, err = run(*args)
        assert rc == 0 and "commands:" in out and "--help" in out and err == "", (args, rc)
    rc, out, _ = run("help", "frobnicate")
    assert rc == 2 and out == "", rc
    rc, out, err = run("--version")
    assert rc == 0 and err == "", (rc, err)
    assert re.fullmatch(r"golemnet \d+\.\d+\.\d+\n", out), out
    assert out == run("version")[1], out
    v = json.loads(run("--version", "--json")[1])
    assert v["event"] == "version" and "golemnet " + v["version"] + "\n" == run("version")[1], v


@case
def unknown_option_and_missing_value_are_named():
    ma = "/ip4/127.0.0.1/tcp/1"
    for args, want in ((["ping", ma, "--foo"], "unknown option '--foo' for 'ping'"),
                       (["ping", ma, "--foo=1"], "unknown option '--foo' for 'ping'"),
                       (["node", "--bytes", "1"], "unknown option '--bytes' for 'node' (an option of: echo)"),
                       (["id", "--out", "x"], "unknown option '--out' for 'id'"),
                       (["ping", ma, "--count"], "option '--count' needs a value"),
                       (["ping", ma, "--count", "--timeout", "3"], "option '--count' needs a value"),
                       (["id", "--key"], "option '--key' needs a value"),
                       (["node", "--echo=1"], "option '--echo' takes no value"),
                       (["node", "extra"], "unexpected argument 'extra' for 'node'"),
                       (["ping", ma, ma], f"unexpected argument '{ma}' for 'ping'")):
        rc, out, err = run(*args, "--json")
        assert rc == 2 and out == "", (args, rc, out)
        assert want in err, (args, err)
    # --name=value works like --name value
    rc, out, _ = run("id", "--key-seed=1")
    assert rc == 0 and out.strip() == SEED1, (rc, out)


@case
def bad_values_name_option_and_value():
    ma = "/ip4/127.0.0.1/tcp/1"
    for args, want in ((["ping", ma, "--count", "x"], "bad value 'x' for --count"),
                       (["ping", ma, "--count", "0"], "bad value '0' for --count: expected an integer 1..1000000"),
                       (["ping", ma, "--timeout", "-1"], "bad value '-1' for --timeout"),
                       (["ping", ma, "--interval", "0.5s"], "bad value '0.5s' for --interval"),
                       (["ping", ma, "--interval", "3601s"], "bad value '3601s' for --interval"),
                       (["id", "--key-seed", "-3"], "bad value '-3' for --key-seed"),
                       (["node", "--log", "loud"], "bad value 'loud' for --log"),
                       (["node", "--option", "nodot"], "bad value 'nodot' for --option"),
                       (["echo", ma, "--bytes", "1.5M"], "bad value '1.5M' for --bytes"),
                       (["echo", ma, "--bytes", "0"], "bad value '0' for --bytes: at least 1 byte"),
                       (["echo", ma, "--bytes", "10m"], "bad value '10m' for --bytes"),
                       (["perf", ma, "--upload-bytes", "2PiB"],
                        "bad value '2PiB' for --upload-bytes: too large"),
                       (["perf", ma, "--download-bytes", "99999999999999999999"],
                        "for --download-bytes: too large"),
                       (["perf", ma, "--download-bytes", "18446744073709551615k"],
                        "for --download-bytes: too large"),
                       (["ping", ma, "--security", "noise,nosuch"],
                        "bad value 'noise,nosuch' for --security: 'nosuch' is not a built-in "
                        "security component (known: /noise"),
                       (["node", "--muxer", "yamux,bogus"], "'bogus' is not a built-in muxer"),
                       (["node", "--muxer", ""], "bad value '' for --muxer"),
                       (["node", "--router", "nosuch"], "'nosuch' is not a built-in router"),
                       (["node", "--discovery", "x"], "'x' is not a built-in discovery")):
        rc, out, err = run(*args, "--json")
        assert rc == 2 and out == "", (args, rc, out)
        assert want in err, (args, err)


@case
def bad_multiaddr_names_the_part():
    rc, out, err = run("ping", "/ip4/1.2.3/tcp/1", "--json")
    assert rc == 2 and out == "", (rc, out)
    assert "bad multiaddr '/ip4/1.2.3/tcp/1': '/ip4/1.2.3' is not an IPv4 address" in err, err
    for args, want in ((["node", "--listen", "/ip4/127.0.0.1/tcpp/0"],
                        "--listen: bad multiaddr '/ip4/127.0.0.1/tcpp/0': '/tcpp' is not a known protocol"),
                       (["ping", "/ip4/1.2.3.4/tcp"], "'/tcp' needs a value"),
                       (["ping", "/ip6/1::2::3/tcp/1"], "'/ip6/1::2::3' is not an IPv6 address"),
                       (["ping", "/ip4/1.2.3.4/tcp/1/p2p/Qmxyz"], "'/p2p/Qmxyz' is not a peer ID"),
                       (["ping", "/p2p/12D3KooW0"], "'/p2p/12D3KooW0' is not a peer ID"),
                       (["ping", "nonsense"], "bad target 'nonsense'"),
                       (["ping", SEED1, "--route", "/ip4/1.2.3.4/tcp/65536/p2p/" + SEED1],
                        "--route: bad multiaddr"),
                       (["ping", SEED1, "--bootstrap", "ip4/1.2.3.4"],
                        "a multiaddr starts with '/'")):
        rc, out, err = run(*args, "--json")
        assert rc == 2 and out == "", (args, rc, out)
        assert want in err, (args, err)
    # the multiaddr command: exit 1, and the JSON error line says the same
    rc, out, err = run("multiaddr", "/ip4/1.2.3.4/tcp/99999", "--json")
    assert rc == 1, rc
    e = events(out)[-1]
    assert e["event"] == "error" and e["error"] == "GN_EPARSE", e
    assert "'/tcp/99999' is not a port number" in e["message"] and e["message"] in err, (e, err)


@case
def dialing_yourself_is_refused():
    for target in (f"/ip4/127.0.0.1/tcp/1/p2p/{SEED1}", f"/p2p/{SEED1}", SEED1):
        t0 = time.monotonic()
        rc, out, err = run("ping", target, "--key-seed", "1", "--json", timeout=10)
        assert rc == 1 and time.monotonic() - t0 < 5, (target, rc)
        e = events(out)[-1]
        assert e["event"] == "error" and e["what"] == "dial" and e["error"] == "GN_EINVAL", e
        assert "cannot dial yourself" in e["message"] and "cannot dial yourself" in err, (e, err)
    # a relayed address names the target after /p2p-circuit: the relay may be us
    seed2 = json.loads(run("id", "--key-seed", "2", "--json")[1])["peer_id"]
    rc, out, err = run("ping", f"/ip4/127.0.0.1/tcp/1/p2p/{SEED1}/p2p-circuit/p2p/{seed2}",
                       "--key-seed", "1", "--json", "--timeout", "2", timeout=10)
    assert "cannot dial yourself" not in err, err


@case
def size_units_are_decimal_and_binary():
    n, ev = start_node("--key-seed", "1", "--echo", "--perf")
    addr = ev["addrs"][0]
    try:
        rc, out, err = run("perf", addr, "--upload-bytes", "1M", "--download-bytes", "2KiB",
                           "--json")
        assert rc == 0, (rc, err)
        p = [x for x in events(out) if x["event"] == "perf"][0]
        assert p["upload_bytes"] == 1000000 and p["download_bytes"] == 2048, p
        rc, out, err = run("echo", addr, "--bytes", "10k", "--json")
        assert rc == 0, (rc, err)
        e = [x for x in events(out) if x["event"] == "echo"][0]
        assert e["bytes"] == 10000, e
        rc, out, err = run("echo", addr, "--bytes", "1MiB", "--json")
        assert rc == 0, (rc, err)
        e = [x for x in events(out) if x["event"] == "echo"][0]
        assert e["bytes"] == 1 << 20, e
    finally:
        assert n.stop()[0] == 0


@case
def ping_interval_and_summary():
    n, ev = start_node("--key-seed", "1")
    addr = ev["addrs"][0]
    try:
        t0 = time.monotonic()
        rc, out, err = run("ping", addr, "--count", "3", "--interval", "200ms", "--json")
        took = time.monotonic() - t0
        assert rc == 0, (rc, err)
        assert took >= 0.4, took  # two pauses of 200 ms
        evs = events(out)
        pings = [e for e in evs if e["event"] == "ping"]
        assert [p["seq"] for p in pings] == [0, 1, 2], evs
        sums = [e for e in evs if e["event"] == "ping_summary"]
        assert len(sums) == 1, evs
        s = sums[0]
        assert s["peer_id"] == SEED1 and s["sent"] == 3 and s["received"] == 3, s
        assert s["loss_pct"] == 0, s
        rtts = [p["rtt_ms"] for p in pings]
        assert abs(s["min_ms"] - min(rtts)) < 0.002 and abs(s["max_ms"] - max(rtts)) < 0.002, s
        assert abs(s["avg_ms"] - sum(rtts) / 3) < 0.002, (s, rtts)
        assert evs.index(s) > evs.index(pings[-1]), evs
        # text form, seconds as the unit
        rc, out, err = run("ping", addr, "--count", "2", "--interval", "0s")
        assert rc == 0, (rc, err)
        line = [x for x in out.splitlines() if x.startswith("ping_summary ")]
        assert len(line) == 1 and "sent=2 received=2 loss_pct=0.0 min_ms=" in line[0], out
        # interrupted: the summary counts what was sent, the error line stays last
        p = subprocess.Popen([CLI, "ping", addr, "--count", "1000", "--interval", "100ms",
                              "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        time.sleep(1.0)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=15)
        assert p.returncode == 1, (p.returncode, err)
        evs = events(out)
        errs = [e for e in evs if e["event"] == "error"]
        assert len(errs) == 1 and errs[0]["what"] == "interrupted", evs
        s = [e for e in evs if e["event"] == "ping_summary"]
        assert len(s) == 1 and evs.index(s[0]) < evs.index(errs[0]), evs
        got = len([e for e in evs if e["event"] == "ping"])
        assert s[0]["received"] == got and got >= 2, (s, got)
        assert s[0]["sent"] in (got, got + 1) and s[0]["sent"] < 1000, s
    finally:
        assert n.stop()[0] == 0


def run_on_pty(*args, timeout=60):
    """Runs the CLI with stderr on a pseudo-terminal; returns (rc, stdout, stderr bytes)."""
    master, slave = pty.openpty()
    p = subprocess.Popen([CLI, *args], stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    got = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the last writer closed the terminal
                    break
                if not chunk:
                    break
                got += chunk
            elif p.poll() is not None:
                break
        out = p.communicate(timeout=max(1, deadline - time.monotonic()))[0]
    finally:
        os.close(master)
        if p.poll() is None:
            p.kill()
            p.wait()
    return p.returncode, out.decode(), got


@case
def progress_only_on_a_terminal():
    n, ev = start_node("--key-seed", "1", "--echo", "--perf")
    addr = ev["addrs"][0]
    try:
        t0 = time.monotonic()
        rc, out, err = run_on_pty("echo", addr, "--bytes", "200M")
        took = time.monotonic() - t0
        assert rc == 0, (rc, err)
        text = err.decode(errors="replace")
        updates = text.count("\rgolemnet: echo ")
        assert updates >= 1 and "checked (" in text, text[-300:]
        # at most a few times a second (the first at once)
        assert updates <= took * 4 + 2, (updates, took)
        assert text.endswith("\r\x1b[K") or "\r\x1b[K" in text, text[-200:]  # erased
        rc, out, err = run_on_pty("perf", addr, "--upload-bytes", "200M")
        assert rc == 0, (rc, err)
        text = err.decode(errors="replace")
        # bytes done, of the total, percent and rate
        assert re.search(r"\rgolemnet: perf upload \S+ \S+ of \S+ \S+ \(\d+%\), \S+ \S+/s, ", text), \
            text[-300:]
        # --json or a pipe: no progress
        rc, out, err = run_on_pty("echo", addr, "--bytes", "50M", "--json")
        assert rc == 0 and b"\r" not in err, (rc, err[-200:])
        rc, out, err = run("echo", addr, "--bytes", "50M")
        assert rc == 0 and "\r" not in err, (rc, err[-200:])
    finally:
        assert n.stop()[0] == 0


@case
def log_lines_have_time_and_component():
    with tempfile.NamedTemporaryFile("w", suffix=".routes", delete=False) as f:
        f.write("/ip4/1.2.3.4/tcp/x\n")
    try:
        rc, _, err = run("ping", SEED1, "--option", f"static.file={f.name}", "--timeout", "5")
        assert rc == 1, (rc, err)
        stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
        lines = [x for x in err.splitlines() if re.match(stamp + " golemnet ", x)]
        assert any(re.fullmatch(stamp + r" golemnet err static: .*line 1.*", x) for x in lines), err
        assert any(re.fullmatch(stamp + r" golemnet err host: .*", x) for x in lines), err
        # the timestamp is UTC and now
        t = time.strptime(lines[0][:19], "%Y-%m-%dT%H:%M:%S")
        assert abs(calendar.timegm(t) - time.time()) < 60, lines[0]
        # --log-components selects
        rc, _, err = run("ping", SEED1, "--option", f"static.file={f.name}", "--timeout", "5",
                         "--log-components", "all,-static")
        assert rc == 1 and " static: " not in err and " host: " in err, err
    finally:
        os.unlink(f.name)

@case
def limits_and_protect():
    # a bad name lists the known ones; a bad value names the flag
    rc, _, err = run("node", "--limit", "max-conns=5")
    assert rc == 2 and "--limit" in err and "max-connections-per-ip" in err, err
    rc, _, err = run("node", "--limit", "max-upgrading=0")
    assert rc == 2 and "max-upgrading" in err, err
    rc, _, err = run("node", "--protect", "nope")
    assert rc == 2 and "'nope'" in err and "--protect" in err, err
    # one upgrading connection per address: a second silent one is closed at once
    n, ev = start_node("--listen", "/ip4/127.0.0.1/tcp/0", "--limit", "max-upgrading-per-ip=1",
                       "--limit", "first-byte-timeout=10s", "--protect", SEED1)
    try:
        port = int(ev["addrs"][0].split("/tcp/")[1].split("/")[0])
        first = socket.create_connection(("127.0.0.1", port))
        time.sleep(0.2)
        second = socket.create_connection(("127.0.0.1", port))
        second.settimeout(3)
        assert second.recv(100) == b"", "the second connection was not closed"
        first.settimeout(0.3)
        try:
            data = first.recv(100)
            assert data != b"", "the first connection was closed"
        except socket.timeout:
            pass
        first.close()
        second.close()
    finally:
        n.stop()


CIDV0 = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"
# the same multihash as a CIDv1 (dag-pb, base32)
CIDV1 = "bafybeie5nqv6kd3qnfjupgvz34woh3oksc3iau6abmyajn7qvtf6d2ho34"
CIDV0_MH = "12209d6c2be50f706953479ab9df2ce3edca90b68053c00b3004b7f0accbe1e8eedf"


def dht(*args, timeout=40):
    """`golemnet dht ... --json`: (exit status, dht lines, error lines, stderr)."""
    rc, out, err = run("dht", *args, "--json", timeout=timeout)
    evs = events(out)
    return (rc, [e for e in evs if e["event"] == "dht"],
            [e for e in evs if e["event"] == "error"], err)


@case
def dht_operations_against_three_nodes():
    nodes = []
    try:
        n0, ev0 = start_node("--option", "kad.mode=server", "--dht-namespace", "test",
                             "--listen", "/ip4/127.0.0.1/tcp/0", "--key-seed", "11")
        nodes.append(n0)
        boot = ev0["addrs"][0]
        ids = [ev0["peer_id"]]
        for seed, extra in ((12, ["--dht-put", "/test/from-node=node value"]),
                            (13, ["--dht-provide", CIDV1])):
            n, ev = start_node("--option", "kad.mode=server", "--dht-namespace", "test",
                               "--listen", "/ip4/127.0.0.1/tcp/0", "--key-seed", str(seed),
                               "--bootstrap-kad", boot, *extra)
            nodes.append(n)
            ids.append(ev["peer_id"])
        # the nodes' own work, once node 0 is identified
        got = nodes[1].wait_for(lambda e: e["event"] == "dht", timeout=20)
        assert got == {"event": "dht", "op": "put", "status": "ok",
                       "key": "/test/from-node"}, got
        got = nodes[2].wait_for(lambda e: e["event"] == "dht", timeout=20)
        assert got and got["op"] == "provide" and got["status"] == "ok", got
        assert got["cid"] == CIDV1 and got["key_hex"] == CIDV0_MH, got
        b = ["--bootstrap-kad", boot, "--dht-namespace", "test"]
        # put, then get from another one-shot node (text and binary values)
        rc, d, e, err = dht("put", "/test/x", "hello world", *b)
        assert rc == 0 and not e, (rc, d, e, err)
        assert d == [{"event": "dht", "op": "put", "status": "ok", "key": "/test/x"}], d
        rc, d, e, err = dht("get", "/test/x", *b)
        assert rc == 0 and d[0]["value"] == "hello world" and d[0]["status"] == "ok", (rc, d, err)
        rc, d, e, err = dht("get", "/test/from-node", *b)
        assert rc == 0 and d[0]["value"] == "node value", (rc, d, err)
        rc, d, e, err = dht("put", "/test/bin", "00ff0a", "--hex-value", *b)
        assert rc == 0, (rc, d, err)
        rc, d, e, err = dht("get", "2f746573742f62696e", "--hex-key", *b)  # "/test/bin"
        assert rc == 0 and d[0]["value_hex"] == "00ff0a" and "value" not in d[0], (rc, d)
        assert d[0]["key"] == "/test/bin", d
        # text form: one line, the value as text
        rc, out, err = run("dht", "get", "/test/x", *b, timeout=40)
        assert rc == 0 and "dht op=get status=ok key=/test/x value=hello world\n" in out, (rc, out)
        # a key nobody stored: exit 1, the reason named on stderr and in the error line
        rc, d, e, err = dht("get", "/test/none", *b)
        assert rc == 1, (rc, d, e, err)
        assert d and d[0]["status"] == "GN_ENOTFOUND", d
        assert len(e) == 1 and e[0]["what"] == "dht" and e[0]["op"] == "get", e
        assert e[0]["error"] == "GN_ENOTFOUND" and e[0]["arg"] == "/test/none", e
        assert "golemnet: dht get /test/none: " in err and "(GN_ENOTFOUND)" in err, err
        # a namespace nobody validates: refused here
        rc, d, e, err = dht("put", "/other/x", "v", *b)
        assert rc == 1 and e and e[0]["error"] == "GN_ENOTSUP", (rc, d, e)
        assert "--dht-namespace" in err, err
        # providers: the node's CIDv1 by its CIDv0 and the other way round
        rc, d, e, err = dht("find-providers", CIDV0, *b)
        assert rc == 0, (rc, d, err)
        provs = d[0]["providers"]
        assert [p["peer_id"] for p in provs] == [ids[2]], d
        assert provs[0]["addrs"] and all(a.startswith("/ip4/127.0.0.1/tcp/")
                                         for a in provs[0]["addrs"]), provs
        assert d[0]["key_hex"] == CIDV0_MH, d
        # a one-shot provide of another CID; then two providers, --max 1 gives one
        other = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
        rc, d, e, err = dht("provide", other, *b, "--listen", "/ip4/127.0.0.1/tcp/0")
        assert rc == 0 and d[0]["status"] == "ok" and d[0]["cid"] == other, (rc, d, err)
        rc, d, e, err = dht("find-providers", other, *b)
        assert rc == 0 and len(d[0]["providers"]) == 1, (rc, d, err)
        rc, d, e, err = dht("find-providers", CIDV1, "--max", "1", *b)
        assert rc == 0 and len(d[0]["providers"]) == 1, (rc, d, err)
        # nobody provides it: success with an empty list
        rc, d, e, err = dht("find-providers", "QmZ4tDuvesekSs4qM5ZBKpXiZGun7S2CYtEZRB3DYXkjGx", *b)
        assert rc == 0 and d[0]["providers"] == [], (rc, d, err)
        # find-peer: node 2's address, asked through node 0
        rc, d, e, err = dht("find-peer", ids[2], *b)
        assert rc == 0 and d[0]["peer_id"] == ids[2], (rc, d, err)
        assert any(a.startswith("/ip4/127.0.0.1/tcp/") for a in d[0]["addrs"]), d
        # closest-peers: the three servers, not the one-shot client itself
        rc, d, e, err = dht("closest-peers", "/test/x", *b)
        assert rc == 0 and sorted(p["peer_id"] for p in d[0]["peers"]) == sorted(ids), (rc, d)
        # text form: a count, then a line per peer
        rc, out, err = run("dht", "closest-peers", "/test/x", *b, timeout=40)
        assert rc == 0 and "dht op=closest-peers status=ok key=/test/x peers=3\n" in out, out
        assert len([x for x in out.splitlines() if x.startswith("peer peer_id=")]) == 3, out
        # no bootstrap peer: nothing to ask
        rc, d, e, err = dht("get", "/test/x", "--dht-namespace", "test", "--timeout", "10")
        assert rc == 1 and e and e[0]["error"] == "GN_ENOROUTE", (rc, d, e, err)
    finally:
        for n in nodes:
            n.stop()
    # the nodes exit 0 and reported nothing else as an error
    for n in nodes:
        assert n.p.returncode == 0, n.p.returncode
        assert not [x for x in n.lines if x["event"] == "error"], n.lines


@case
def dht_bad_usage_exit_2():
    ma = "/ip4/127.0.0.1/tcp/1/p2p/" + SEED1
    for args, want in ((["dht"], "dht needs an operation"),
                       (["dht", "fetch", "x"], "unknown dht operation 'fetch'"),
                       (["dht", "get"], "'dht get' takes 1 argument"),
                       (["dht", "put", "/test/x"], "'dht put' takes 2 arguments"),
                       (["dht", "provide", "Qmnope"], "bad value 'Qmnope' for CID"),
                       (["dht", "provide", CIDV0], "'dht provide' needs --listen MA"),
                       (["dht", "provide", "bafyxyz1"], "bad value 'bafyxyz1' for CID"),
                       (["dht", "find-providers", CIDV0, "--max", "0"], "bad value '0' for --max"),
                       (["dht", "get", "/test/x", "--max", "3"], "--max is for"),
                       (["dht", "get", "zz", "--hex-key"], "bad value 'zz' for KEY (--hex-key)"),
                       (["dht", "find-peer", "nope"], "bad target 'nope'"),
                       (["dht", "get", "/x", "--bootstrap-kad", "/ip4/127.0.0.1/tcp/1"],
                        "expected MA/p2p/ID"),
                       (["dht", "get", "/x", "--dht-namespace", "a/b"],
                        "bad value 'a/b' for --dht-namespace"),
                       (["dht", "get", "/x", "--echo"], "unknown option '--echo' for 'dht'"),
                       (["node", "--dht-put", "novalue"], "bad value 'novalue' for --dht-put"),
                       (["node", "--dht-provide", "x"], "bad value 'x' for --dht-provide"),
                       (["ping", ma, "--dht-put", "/a=b"],
                        "unknown option '--dht-put' for 'ping' (an option of: node)")):
        rc, out, err = run(*args, "--json")
        assert rc == 2 and out == "", (args, rc, out)
        assert want in err, (args, err)
    rc, out, err = run("dht", "--help")
    assert rc == 0 and "find-providers CID" in out and "--bootstrap-kad" in out, out
    assert "--dht-put" in run("node", "--help")[1]



@case
def relay_listen_dial_and_autorelay():
    """--relay makes a relay; --listen <relay>/p2p-circuit reserves there; a
    dial through the relay opens a relayed channel; --autorelay routes a bare
    peer ID through it; NO_RESERVATION is named."""
    r, ev = start_node("--key-seed", "41", "--relay")
    raddr = ev["addrs"][0]
    a = None
    try:
        a, aev = start_node("--key-seed", "42", "--listen", raddr + "/p2p-circuit", "--echo",
                            "--log", "info")
        via = raddr + "/p2p-circuit/p2p/" + aev["peer_id"]
        assert via in aev["addrs"], aev
        rc, out, err = (None, "", "")
        for _ in range(50):  # the reservation runs in the background
            rc, out, err = run("echo", via, "--bytes", "20000", "--json")
            if rc == 0:
                break
            time.sleep(0.1)
        assert rc == 0, (rc, out, err)
        evs = events(out)
        opened = [e for e in evs if e["event"] == "channel_opened" and e["peer_id"] == aev["peer_id"]]
        assert opened and "/p2p-circuit/p2p/" in opened[0]["remote_addr"], evs
        assert any(e["event"] == "echo" and e["ok"] for e in evs), evs
        # a bare peer ID, through the relay the autorelay router names
        rc, out, err = run("ping", aev["peer_id"], "--autorelay", raddr, "--option",
                           "autorelay.reserve=never", "--option", "autorelay.discover=false",
                           "--json")
        assert rc == 0 and any(e["event"] == "ping" for e in events(out)), (rc, out, err)
        # nobody reserved under this peer ID at the relay
        nobody = json.loads(run("id", "--key-seed", "43", "--json")[1])["peer_id"]
        rc, out, err = run("ping", raddr + "/p2p-circuit/p2p/" + nobody, "--json")
        assert rc == 1 and "NO_RESERVATION" in err, (rc, out, err)
    finally:
        if a:
            a.stop()
        r.stop()


@case
def autorelay_finds_a_relay_in_the_dht():
    """A relay advertises itself in the DHT (the CID of /libp2p/relay); a
    node whose autorelay router has no relay configured finds it there and
    reserves."""
    r, ev = start_node("--key-seed", "44", "--relay", "--option", "kad.mode=server")
    raddr = ev["addrs"][0]
    a = None
    try:
        a = Node("--key-seed", "45", "--option", "kad.mode=server", "--bootstrap-kad", raddr,
                 "--router", "kad,autorelay", "--option", "autorelay.reserve=always",
                 "--log", "info")
        got = a.wait_for(lambda e: e["event"] == "listen_added" and "/p2p-circuit" in e["addr"],
                         timeout=20)
        rid = ev["peer_id"]
        assert got and got["addr"].startswith("/p2p/" + rid + "/p2p-circuit"), (got, a.lines)
    finally:
        if a:
            a.stop()
        r.stop()
    err = getattr(a, "err", "")
    assert "circuit: reserved at relay " + rid in err, err[-2000:]

class Daemon:
    """`golemnet daemon ...` in the background; the first stdout line is the ready line."""

    def __init__(self, *args):
        self.p = subprocess.Popen([CLI, "daemon", *args], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)

    def ready(self, timeout=10):
        fd = self.p.stdout.fileno()
        buf = b""
        deadline = time.monotonic() + timeout
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                return None
            buf += chunk
        return buf.split(b"\n", 1)[0].decode()

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = self.p.wait()
        self.err = self.p.stderr.read().decode()
        self.p.stdout.close()
        self.p.stderr.close()
        return rc


def ctl_hello(path):
    """Sends a framed Request{id 1, hello{version 1, client "t"}} and returns the reply frame."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    s.sendall(bytes([0x09, 0x08, 0x01, 0x52, 0x05, 0x08, 0x01, 0x12, 0x01, 0x74]))
    data = b""
    while not data or len(data) < 1 + data[0]:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    return data


@case
def daemon_ready_hello_sigterm():
    """golemnet daemon: a ready line with the socket, mode 0600, a hello answered
    over the control protocol, SIGTERM exits 0 and removes the socket."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "d.sock")
        dm = Daemon("--socket", path, "--json", "--key-seed", "1")
        try:
            line = dm.ready()
            assert line, "no ready line"
            ev = json.loads(line)
            assert ev["event"] == "ready" and ev["socket"] == path, ev
            assert ev["peer"] == SEED1 and ev["listen"], ev
            st = os.stat(path)
            import stat as st_mod
            assert st_mod.S_ISSOCK(st.st_mode) and st.st_mode & 0o777 == 0o600, oct(st.st_mode)
            reply = ctl_hello(path)
            # ServerMessage{response (field 1)}: 0x0a; the peer ID is in the hello result
            assert len(reply) > 2 and reply[1] == 0x0a and SEED1.encode() in reply, reply
        finally:
            rc = dm.stop()
        assert rc == 0, (rc, dm.err)
        assert not os.path.exists(path), "socket file left behind"
        assert re.search(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z golemnet notice daemon: ",
                         dm.err, re.M), dm.err


@case
def daemon_stale_socket_replaced_live_refused():
    """A stale socket file is replaced; a live daemon's socket is refused (exit 1);
    SIGINT exits 0 too."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "d.sock")
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(path)
        stale.close()  # the file stays, nobody listens
        dm = Daemon("--socket", path)
        try:
            line = dm.ready()
            assert line and line.startswith("ready socket=" + path + " "), line
            rc, out, err = run("daemon", "--socket", path, timeout=20)
            assert rc == 1 and "another daemon" in err, (rc, out, err)
            assert os.path.exists(path)
        finally:
            rc = dm.stop(signal.SIGINT)
        assert rc == 0, (rc, dm.err)


@case
def daemon_config_file_and_flags():
    """A versioned config file; flags override it; bad versions, keys and options are
    usage errors (exit 2)."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "c.sock")
        other = os.path.join(d, "o.sock")
        conf = os.path.join(d, "daemon.conf")
        with open(conf, "w") as f:
            f.write("# test\nversion = 1\nsocket = %s\nkey_seed = 1\n"
                    "listen = /ip4/127.0.0.1/tcp/0\nlog = info\n" % other)
        dm = Daemon("--config", conf, "--socket", path)
        try:
            line = dm.ready()
            assert line and ("socket=" + path + " ") in line and SEED1 in line, line
            assert not os.path.exists(other)
        finally:
            rc = dm.stop()
        assert rc == 0, (rc, dm.err)
        with open(conf, "w") as f:
            f.write("version = 2\n")
        rc, out, err = run("daemon", "--config", conf)
        assert rc == 2 and "version" in err, (rc, err)
        with open(conf, "w") as f:
            f.write("version = 1\nbogus = 3\n")
        rc, out, err = run("daemon", "--config", conf)
        assert rc == 2 and "bogus" in err and ":2:" in err, (rc, err)
        rc, out, err = run("daemon", "--nope")
        assert rc == 2 and "--nope" in err, (rc, err)
        rc, out, err = run("daemon", "--socket", path, "--control-tcp", "/ip4/0.0.0.0/tcp/0")
        assert rc == 1 and "loopback" in err, (rc, err)

@case
def daemon_config_file_values_name_the_line():
    """Bad values in the config file name the file and line (exit 2); a NUL byte
    is refused, not the end of the file; a queue bound below 64 KiB is a usage error."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "c.sock")
        conf = os.path.join(d, "daemon.conf")
        bad = [("drain_timeout = 99999\n", "drain-timeout"),
               ("client_queue_max = 1000\n", "client-queue-max"),
               ("max_clients = 0\n", "max-clients"),
               ("allow_uid = me\n", "allow-uid"),
               ("log = loud\n", "--log"),
               ("echo = maybe\n", "echo"),
               ("option = nodot\n", "option")]
        for line, what in bad:
            with open(conf, "w") as f:
                f.write("version = 1\n# c\n" + line)
            rc, out, err = run("daemon", "--config", conf, "--socket", path)
            assert rc == 2 and (conf + ":3:") in err and what in err, (line, rc, err)
        with open(conf, "wb") as f:
            f.write(b"version = 1\nlog = info\x00\nbogus = 1\n")
        rc, out, err = run("daemon", "--config", conf, "--socket", path)
        assert rc == 2 and (conf + ":2:") in err and "NUL" in err, (rc, err)
        rc, out, err = run("daemon", "--socket", path, "--client-queue-max", "1000")
        assert rc == 2 and "client-queue-max" in err and conf not in err, (rc, err)


# ---- commands on a running daemon (tools/cmd_client.c; docs/cli.md "Commands on a daemon")

class CtlDaemon(Daemon):
    """`golemnet daemon --socket PATH` in the background, ready (its ready line read)."""

    def __init__(self, sock, *extra):
        super().__init__("--socket", sock, "--listen", "/ip4/127.0.0.1/tcp/0", "--json", *extra)
        self.sock = sock
        line = self.ready()
        assert line and json.loads(line)["event"] == "ready", line
        self.ready_event = json.loads(line)


def client(*args, timeout=30):
    """Runs a client command with --json: (exit status, events, stderr)."""
    rc, out, err = run(*args, "--json", timeout=timeout)
    return rc, events(out), err


@case
def daemon_second_signal_forces_exit():
    """A second SIGTERM while the drain waits (a unicast whose channel never
    finishes its handshake) exits at once with status 3."""
    tmp = tempfile.mkdtemp(prefix="gncli-")
    sa = os.path.join(tmp, "a.sock")
    mute = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    mute.bind(("127.0.0.1", 0))
    mute.listen(8)  # accepts (kernel) and never speaks
    a = None
    try:
        a = CtlDaemon(sa, "--drain-timeout", "60")
        to = "/ip4/127.0.0.1/tcp/%d" % mute.getsockname()[1]
        rc, evs, err = client("send", to, "hi", "--socket", sa)
        assert rc == 0, (rc, evs, err)
        a.p.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        assert a.p.poll() is None, "the drain should wait for the connecting channel"
        t0 = time.monotonic()
        rc = a.stop(signal.SIGTERM, timeout=10)
        assert rc == 3, (rc, a.err[-2000:])
        assert time.monotonic() - t0 < 5
        assert "second signal" in a.err, a.err[-2000:]
        a = None
    finally:
        if a:
            a.stop(signal.SIGKILL)
        mute.close()
        shutil.rmtree(tmp, ignore_errors=True)


@case
def daemon_commands_peers_dial_send_ping_events():
    tmp = tempfile.mkdtemp(prefix="gncli-")
    sa, sb = os.path.join(tmp, "a.sock"), os.path.join(tmp, "b.sock")
    a = b = ev = None
    gone = []
    try:
        a, b = CtlDaemon(sa), CtlDaemon(sb)
        rc, evs, err = client("peers", "--socket", sa)
        assert rc == 0 and evs == [{"event": "peers", "count": 0}], (rc, evs, err)
        rc, evs, err = client("listen", "/ip4/127.0.0.1/tcp/0", "--socket", "/unix" + sb)
        assert rc == 0 and evs[0]["event"] == "listening" and "/tcp/" in evs[0]["addr"], evs
        baddr = evs[0]["addr"]
        # B's client streams events until interrupted
        ev = subprocess.Popen([CLI, "events", "--socket", sb, "--json"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
        buf = b""

        def ev_line(deadline):
            """The events client's next line (unbuffered reads: select sees them)."""
            nonlocal buf
            while b"\n" not in buf:
                left = deadline - time.monotonic()
                assert left > 0 and select.select([ev.stdout], [], [], left)[0], "no event line"
                chunk = os.read(ev.stdout.fileno(), 65536)
                assert chunk, "the events client exited"
                buf += chunk
            line, buf = buf.split(b"\n", 1)
            return json.loads(line)
        first = ev_line(time.monotonic() + 10)
        assert first["event"] == "subscribed", first
        # two more events clients whose reader goes away (`events | head -n 1`): one with
        # SIGPIPE at its default, one with it ignored (inherited from this Python: the write
        # error path); both must end at their next event line, not keep running
        for restore in (True, False):
            g = subprocess.Popen([CLI, "events", "--socket", sb, "--json"],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                 restore_signals=restore)
            gone.append(g)
            assert select.select([g.stdout], [], [], 10)[0], "no subscribed line"
            assert b"subscribed" in os.read(g.stdout.fileno(), 4096)
            g.stdout.close()
        rc, evs, err = client("dial", baddr, "--socket", sa)
        assert rc == 0 and evs[0]["event"] == "dialed", (rc, evs, err)
        chid, bid = evs[0]["channel_id"], evs[0]["peer_id"]
        assert chid > 0 and bid.startswith("12D3KooW"), evs
        rc, evs, err = client("peers", "--socket", sa)
        assert rc == 0 and [e["channel_id"] for e in evs if e["event"] == "peer"] == [chid], evs
        assert evs[0]["peer_id"] == bid and evs[0]["state"] == "open", evs
        rc, evs, err = client("send", str(chid), "hello b", "--socket", sa)
        assert rc == 0 and evs[0] == {"event": "sent", "channel_id": chid, "bytes": 7}, evs
        rc, evs, err = client("send", bid, "--hex", "00ff", "--socket", sa)
        assert rc == 0 and evs[0]["bytes"] == 2 and evs[0]["request_id"] > 0, evs
        rc, evs, err = client("ping", str(chid), "--count", "2", "--socket", sa)
        assert rc == 0 and [e["seq"] for e in evs if e["event"] == "ping"] == [1, 2], evs
        assert evs[-1]["event"] == "ping_summary" and evs[-1]["received"] == 2, evs
        rc, evs, err = client("ping", bid, "--socket", sa)
        assert rc == 0 and evs[0]["event"] == "ping" and evs[0]["rtt_ms"] > 0, evs
        # the events client saw the channel and both messages
        got = []
        deadline = time.monotonic() + 10
        while len([e for e in got if e["event"] == "message"]) < 2:
            got.append(ev_line(deadline))
        msgs = [e for e in got if e["event"] == "message"]
        assert msgs[0]["data"] == "hello b" and msgs[1]["data_hex"] == "00ff", msgs
        assert any(e["event"] == "channel_opened" for e in got), got
        ev.send_signal(signal.SIGINT)
        assert ev.wait(10) == 0
        for g, want in zip(gone, (-signal.SIGPIPE, 1)):
            try:
                grc = g.wait(10)
            except subprocess.TimeoutExpired:
                g.kill()
                raise AssertionError("an events client kept running after its reader left")
            assert grc == want, (grc, want)
    finally:
        if ev and ev.poll() is None:
            ev.kill()
        for g in gone:
            if g.poll() is None:
                g.kill()
                g.wait()
            ev.wait()
        if ev:
            ev.stdout.close()
            ev.stderr.close()
        for d in (a, b):
            if d:
                d.stop()
        for f in os.listdir(tmp):
            os.unlink(os.path.join(tmp, f))
        os.rmdir(tmp)


@case
def daemon_command_errors_name_the_problem():
    tmp = tempfile.mkdtemp(prefix="gncli-")
    sock = os.path.join(tmp, "a.sock")
    a = None
    try:
        rc, evs, err = client("peers", "--socket", os.path.join(tmp, "none.sock"))
        assert rc == 1 and "none.sock" in err and "golemnet daemon" in err, (rc, err)
        assert evs[-1]["event"] == "error" and evs[-1]["error"] == "GN_ENOTFOUND", evs
        rc, evs, err = client("peers", "--socket", "/ip4/10.0.0.1/tcp/5")
        assert rc == 1 and "loopback" in err, err
        rc, _, err = client("dial", "--socket", sock)
        assert rc == 2 and "dial needs MA" in err, err
        rc, _, err = client("send", "1", "--socket", sock)
        assert rc == 2 and "send needs" in err, err
        rc, _, err = client("peers", "--count", "2", "--socket", sock)
        assert rc == 2 and "unknown option '--count' for 'peers'" in err, err
        rc, _, err = client("dht", "nosuch", "x", "--socket", sock)
        assert rc == 2 and "unknown dht operation 'nosuch'" in err, err
        a = CtlDaemon(sock)
        rc, evs, err = client("send", "999", "x", "--socket", sock)
        assert rc == 1 and evs[-1]["error"] == "GN_ENOTFOUND" and "999" in err, (evs, err)
        rc, evs, err = client("dial", "/ip4/127.0.0.1/tcp/1", "--socket", sock)
        assert rc == 1 and evs[-1]["error"] == "GN_ECONNREFUSED", evs
        assert "dial /ip4/127.0.0.1/tcp/1" in err, err
        rc, evs, err = client("dial", "/ip4/1.2.3/tcp/1", "--socket", sock)
        assert rc == 1 and evs[-1]["error"] == "GN_EPARSE", evs
        rc, evs, err = client("dht", "get", "/test/nothing", "--socket", sock, timeout=90)
        assert rc == 1 and evs[0]["event"] == "dht" and evs[0]["op"] == "get", evs
        assert evs[0]["status"] != "ok" and evs[-1]["event"] == "error", evs
        a.stop()
        a = CtlDaemon(sock, "--control-tcp", "/ip4/127.0.0.1/tcp/0")
        tcp = a.ready_event["control_tcp"]
        rc, evs, err = client("peers", "--socket", tcp)  # loopback TCP control address
        assert rc == 0 and evs == [{"event": "peers", "count": 0}], (rc, evs, err)
        rc, out, _ = run("peers", "--help")
        assert rc == 0 and "--socket PATH" in out, out
        rc, out, _ = run("help", "dial")
        assert rc == 0 and "usage: golemnet dial MA" in out, out
    finally:
        if a:
            a.stop()
        for f in os.listdir(tmp):
            os.unlink(os.path.join(tmp, f))
        os.rmdir(tmp)



@case
def daemon_dht_provide_find_providers():
    """dht through daemons: B (bootstrapped from A, both kad servers) provides
    a CID, A finds B as its provider."""
    tmp = tempfile.mkdtemp(prefix="gncli-")
    sa, sb = os.path.join(tmp, "a.sock"), os.path.join(tmp, "b.sock")
    a = b = None
    cid = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"
    kad = ("--router", "kad", "--option", "kad.mode=server")
    try:
        a = CtlDaemon(sa, *kad)
        b = CtlDaemon(sb, *kad, "--bootstrap-kad", a.ready_event["listen"][0])
        for _ in range(50):  # until B's bootstrap peer is in its table
            rc, evs, err = client("dht", "provide", cid, "--socket", sb)
            if rc == 0:
                break
            time.sleep(0.1)
        assert rc == 0 and evs[0]["event"] == "dht" and evs[0]["status"] == "ok", (evs, err)
        rc, evs, err = client("dht", "find-providers", cid, "--max", "3", "--socket", sa)
        assert rc == 0 and evs[0]["op"] == "find-providers", (evs, err)
        provs = evs[0]["providers"]
        assert [p["peer_id"] for p in provs] == [b.ready_event["peer"]], provs
        assert provs[0]["addrs"], provs
        rc, evs, err = client("dht", "find-peer", b.ready_event["peer"], "--socket", sa)
        assert rc == 0 and evs[0]["addrs"], (evs, err)
    finally:
        for d in (a, b):
            if d:
                d.stop()
        for f in os.listdir(tmp):
            os.unlink(os.path.join(tmp, f))
        os.rmdir(tmp)


# ---------------------------------------------------------------- golemnet ergo


def free_tcp_udp_port():
    """A port free for TCP and UDP (the embedded Ergo registrar uses both)."""
    for _ in range(50):
        t = socket.socket()
        t.bind(("127.0.0.1", 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            u.close()
            t.close()
    raise AssertionError("no free port")


class ErgoServe(Node):
    """`golemnet ergo serve --json ...` in the background."""

    def __init__(self, *args):
        self.p = subprocess.Popen([CLI, "ergo", "serve", "--json", *args],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines = []
        self.buf = b""
        self.err = ""


def ergo_cli(*args, timeout=30):
    rc, out, err = run("ergo", *args, "--json", timeout=timeout)
    return rc, events(out), err


def ergo_has_cli():
    return run("ergo", "--help")[0] == 0


@case
def ergo_serve_send_call_ping_info_over_tcp():
    if not ergo_has_cli():
        return  # built without the ergo component
    reg = str(free_tcp_udp_port())
    common = ["--cookie", "ck1", "--registrar-port", reg]
    s = ErgoServe("--name", "srv@localhost", "--port", "0", *common)
    try:
        ev = s.wait_for(lambda e: e["event"] == "ergo_serving")
        assert ev and ev["node"] == "srv@localhost" and ev["process"] == "echo", (ev, s.lines)
        # the server registers with the registrar just after it serves: retry the first call
        for _ in range(50):
            rc, evs, err = ergo_cli("call", "srv@localhost", "hello", *common)
            if rc == 0:
                break
            time.sleep(0.1)
        assert rc == 0 and evs[0]["event"] == "ergo_reply" and evs[0]["value"] == "hello", \
            (rc, evs, err)
        assert evs[0]["node"] == "srv@localhost" and evs[0]["rtt_ms"] > 0, evs
        call = s.wait_for(lambda e: e["event"] == "ergo_call")
        assert call and call["value"] == "hello" and call["to"] == "name", call
        # an important send of an int; the server prints it
        rc, evs, err = ergo_cli("send", "srv@localhost", "42", "--int", "--important", *common)
        assert rc == 0 and evs == [{"event": "ergo_sent", "node": "srv@localhost", "to": "echo",
                                    "delivered": True}], (rc, evs, err)
        msg = s.wait_for(lambda e: e["event"] == "ergo_message" and e["value"] == 42)
        assert msg and msg["important"] is True, s.lines
        # a plain send (no delivery answer) still arrives: the CLI exits after the frame left
        rc, evs, err = ergo_cli("send", "srv@localhost", "plain", *common)
        assert rc == 0 and evs[0]["delivered"] is False, (rc, evs, err)
        assert s.wait_for(lambda e: e["event"] == "ergo_message" and e["value"] == "plain"), \
            s.lines
        rc, evs, err = ergo_cli("ping", "srv@localhost", *common)
        assert rc == 0 and evs[0]["event"] == "ergo_pong" and evs[0]["rtt_ms"] > 0, (evs, err)
        rc, evs, err = ergo_cli("info", "srv@localhost", *common)
        assert rc == 0 and evs[0]["event"] == "ergo_info", (evs, err)
        assert evs[0]["node"] == "srv@localhost" and evs[0]["carrier"] == "tcp", evs
        assert evs[0]["creation"] > 0 and evs[0]["links"] >= 1, evs
        # important delivery to a missing process: exit 1, the reason named
        rc, evs, err = ergo_cli("send", "srv@localhost", "x", "--to", "nobody", "--important",
                                *common)
        assert rc == 1 and evs[-1]["event"] == "error" and evs[-1]["error"] == "GN_ENOTFOUND", \
            (rc, evs)
        assert "no such process" in err, err
        # an unknown node: the registrar does not know it
        rc, evs, err = ergo_cli("call", "ghost@localhost", "x", "--timeout", "3", *common)
        assert rc == 1 and evs[-1]["event"] == "error", (rc, evs, err)
    finally:
        rc, _ = s.stop()
        assert rc == 0, (rc, s.err)


@case
def ergo_over_a_libp2p_channel():
    if not ergo_has_cli():
        return
    s = ErgoServe("--name", "chan@localhost", "--listen", "/ip4/127.0.0.1/tcp/0",
                  "--process", "svc")
    try:
        lst = s.wait_for(lambda e: e["event"] == "listening")
        assert lst, s.lines
        assert s.wait_for(lambda e: e["event"] == "ergo_serving"), s.lines
        peer = ["--peer", lst["addr"], "--to", "svc"]
        rc, evs, err = ergo_cli("call", "chan@localhost", "7", "--float", *peer)
        assert rc == 0 and evs[0]["value"] == 7.0, (rc, evs, err)
        rc, evs, err = ergo_cli("info", "chan@localhost", *peer)
        assert rc == 0 and evs[0]["carrier"] == "stream" and evs[0]["links"] == 1, (evs, err)
        rc, evs, err = ergo_cli("send", "chan@localhost", "ok", "--atom", "--important", *peer)
        assert rc == 0 and evs[0]["delivered"] is True, (evs, err)
        assert s.wait_for(lambda e: e["event"] == "ergo_message" and e["value"] == "ok"), s.lines
    finally:
        rc, _ = s.stop()
        assert rc == 0, (rc, s.err)


@case
def ergo_bad_usage_exit_2():
    if not ergo_has_cli():
        return
    for args, word in ((["frob"], "unknown operation"),
                       (["send", "srv@localhost"], "want NODE VALUE"),
                       (["call", "nohost", "x", "--cookie", "c"], "name@host"),
                       (["info", "a@b"], "--cookie"),
                       (["serve"], "--name"),
                       (["send", "a@b", "x", "--cookie", "c", "--priority", "urgent"], "urgent"),
                       (["ping", "a@b", "--peer", "/ip4/127.0.0.1/tcp/1"], "/p2p/"),
                       (["ping", "a@b", "--cookie"], "--cookie needs a value")):
        rc, out, err = run("ergo", *args)
        assert rc == 2 and out == "" and word in err, (args, rc, err)
    rc, out, err = run("ergo", "--help")
    assert rc == 0 and out.startswith("usage: golemnet ergo") and "--peer" in out, out
    # a bad component option fails the start, exit 1
    rc, out, err = run("ergo", "info", "a@b", "--cookie", "c", "--option", "port=99999",
                       "--json")
    assert rc == 1 and events(out)[-1]["event"] == "error", (rc, out, err)


@case
def ergo_link_monitor_signal():
    """`golemnet ergo monitor|link`: the signal arrives as a JSON line when the target's
    node goes away ("no connection"; "normal" if its termination frame left first)."""
    if not ergo_has_cli():
        return
    reg = str(free_tcp_udp_port())
    common = ["--cookie", "ck2", "--registrar-port", reg]
    s = ErgoServe("--name", "lsrv@localhost", "--port", "0", *common)
    watchers = []
    try:
        ev = s.wait_for(lambda e: e["event"] == "ergo_serving")
        assert ev, s.lines
        for _ in range(50):  # the server registers with the registrar just after it serves
            rc, evs, err = ergo_cli("ping", "lsrv@localhost", *common)
            if rc == 0:
                break
            time.sleep(0.1)
        assert rc == 0, (rc, evs, err)
        # a missing name: refused by the server, exit 1
        rc, evs, err = ergo_cli("link", "lsrv@localhost", "nobody", "--timeout", "5", *common)
        assert rc == 1 and evs[-1]["event"] == "error" and evs[-1]["error"] == "GN_ENOTFOUND", \
            (rc, evs, err)
        # an event nobody registered (--event): Ergo's refusal text
        rc, evs, err = ergo_cli("monitor", "lsrv@localhost", "ticks", "--event", "--timeout", "5",
                                *common)
        assert rc == 1 and evs[-1]["error"] == "GN_ECALLBACK", (rc, evs, err)
        assert evs[-1]["detail"] == "unknown event", evs
        # confirmed, but no signal within --timeout: exit 1
        rc, evs, err = ergo_cli("monitor", "lsrv@localhost", "echo", "--timeout", "1", *common)
        assert rc == 1 and [e["event"] for e in evs] == ["ergo_monitoring", "error"], (rc, evs)
        assert evs[-1]["error"] == "GN_ETIMEDOUT", evs
        # a monitor by name and a link by PID, each waiting for its signal
        pid = ev["pid"].rsplit(".", 1)[1].rstrip(">")
        for args in (["monitor", "lsrv@localhost", "echo"], ["link", "lsrv@localhost", "--pid", pid]):
            w = Node.__new__(Node)
            w.p = subprocess.Popen([CLI, "ergo", *args, "--timeout", "20", "--json", *common],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            w.lines, w.buf, w.err = [], b"", ""
            watchers.append(w)
        for w, first in zip(watchers, ("ergo_monitoring", "ergo_linked")):
            assert w.wait_for(lambda e: e["event"] == first), (w.lines, w.err)
        rc, _ = s.stop()
        assert rc == 0, (rc, s.err)
        for w, sig, kind in zip(watchers, ("ergo_down", "ergo_exit"), ("name", "pid")):
            e = w.wait_for(lambda e: e["event"] == sig)
            assert e and e["kind"] == kind and e["direct"] is False, (w.lines, w.err)
            assert e["reason"] in ("no connection", "normal"), e
            assert e["target"] == ("echo" if kind == "name" else ev["pid"]), e
            assert w.p.wait(timeout=10) == 0
        rc, out, err = run("ergo", "link", "a@b", "--cookie", "c")
        assert rc == 2 and "want NODE TARGET" in err, (rc, err)
    finally:
        for w in watchers:
            if w.p.poll() is None:
                w.p.kill()
            w.p.wait()
        if s.p.poll() is None:
            s.stop()


@case
def ergo_spawn_allowed_and_refused():
    """`golemnet ergo spawn` against `serve --allow-spawn`, over TCP and over a channel."""
    if not ergo_has_cli():
        return
    reg = str(free_tcp_udp_port())
    common = ["--cookie", "ck2", "--registrar-port", reg]
    s = ErgoServe("--name", "spw@localhost", "--port", "0", "--allow-spawn", "worker",
                  "--max-spawn", "2", "--listen", "/ip4/127.0.0.1/tcp/0", *common)
    try:
        lst = s.wait_for(lambda e: e["event"] == "listening")
        assert lst and s.wait_for(lambda e: e["event"] == "ergo_serving"), s.lines
        for _ in range(50):  # the server registers just after it serves
            rc, evs, err = ergo_cli("spawn", "spw@localhost", "worker", "--register", "w1",
                                    "golem-arg", *common)
            if rc == 0:
                break
            time.sleep(0.1)
        assert rc == 0 and evs[0]["event"] == "ergo_spawned", (rc, evs, err)
        ev = evs[0]
        assert ev["node"] == "spw@localhost" and ev["factory"] == "worker", ev
        assert ev["register"] == "w1" and ev["pid"].startswith("<spw@localhost."), ev
        pid = int(ev["pid"].rstrip(">").rsplit(".", 1)[1])
        req = s.wait_for(lambda e: e["event"] == "ergo_spawn_request")
        assert req and req["factory"] == "worker" and req["pid"] == ev["pid"], s.lines
        assert req["register"] == "w1" and req["args"] == 1, req
        # the spawned process echoes like serve's own: by its PID and by its name
        rc, evs, err = ergo_cli("call", "spw@localhost", "hi", "--pid", str(pid), *common)
        assert rc == 0 and evs[0]["value"] == "hi", (rc, evs, err)
        rc, evs, err = ergo_cli("send", "spw@localhost", "7", "--int", "--to", "w1",
                                "--important", *common)
        assert rc == 0 and evs[0]["delivered"] is True, (rc, evs, err)
        assert s.wait_for(lambda e: e["event"] == "ergo_message" and e["value"] == 7), s.lines
        # the name again: taken; a factory not allowed: unknown name (exit 1)
        rc, evs, err = ergo_cli("spawn", "spw@localhost", "worker", "--register", "w1",
                                *common)
        assert rc == 1 and evs[-1]["event"] == "error", (rc, evs, err)
        assert evs[-1]["what"] == "spawn" and evs[-1]["error"] == "GN_ECALLBACK", evs
        assert "resource is taken" in evs[-1]["detail"], evs
        rc, evs, err = ergo_cli("spawn", "spw@localhost", "other", *common)
        assert rc == 1 and evs[-1]["error"] == "GN_ECALLBACK", (rc, evs, err)
        assert "unknown name" in evs[-1]["detail"], evs
        # over /golem/ergo/1.0.0, with int args
        rc, evs, err = ergo_cli("spawn", "spw@localhost", "worker", "--int", "1", "2",
                                "--peer", lst["addr"])
        assert rc == 0 and evs[0]["event"] == "ergo_spawned" and "register" not in evs[0], \
            (rc, evs, err)
        assert s.wait_for(lambda e: e["event"] == "ergo_spawn_request" and e["args"] == 2), \
            s.lines
        # --max-spawn 2: two of worker's processes live, the third is refused
        rc, evs, err = ergo_cli("spawn", "spw@localhost", "worker", *common)
        assert rc == 1 and evs[-1]["error"] == "GN_ECALLBACK", (rc, evs, err)
        assert "limit exceeded" in evs[-1]["detail"], evs
    finally:
        rc, _ = s.stop()
        assert rc == 0, (rc, s.err)
    rc, out, err = run("ergo", "spawn", "a@b", "--cookie", "c")
    assert rc == 2 and "want NODE FACTORY" in err, (rc, err)
    rc, out, err = run("ergo", "serve", "--name", "a@b", "--max-spawn", "0")
    assert rc == 2 and "--max-spawn" in err, (rc, err)



print("TAP version 13")
print(f"1..{len(results)}")
for i, (name, err) in enumerate(results, 1):
    if err is None:
        print(f"ok {i} - {name}")
    else:
        print(f"not ok {i} - {name}")
        print(f"# {err}")
sys.exit(1 if any(e for _, e in results) else 0)
