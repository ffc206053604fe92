#!/usr/bin/env python3
"""DNS multiaddrs end to end (issue 17): a golemnet node, a dnsmasq on
127.0.0.1 at a free unprivileged port that this test starts, and the CLI
dialling /dns4, /dnsaddr (nested, looping, filtered by peer ID), an
NXDOMAIN name and a server that never answers; also /dns4/localhost from
/etc/hosts with the system resolver, and a valid address no transport
handles (unsupported, not malformed). Skips (TAP) without dnsmasq.

Usage: dns_test.py PATH_TO_golemnet   (prints TAP)
"""
import json
import os
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
OTHER = "QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN"
results = []


def run(*args, timeout=30):
    p = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def events(out):
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def free_port(kind):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_node(listen="/ip4/127.0.0.1/tcp/0"):
    p = subprocess.Popen([CLI, "node", "--json", "--key-seed", "1", "--listen",
                          listen], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    fd = p.stdout.fileno()
    buf = b""
    deadline = time.monotonic() + 10
    while b"\n" not in buf and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.2)[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buf += chunk
    ev = json.loads(buf.split(b"\n", 1)[0])
    assert ev["event"] == "listening", ev
    addr = ev["addrs"][0]  # /ip4/127.0.0.1/tcp/P/p2p/ID
    port = int(addr.split("/")[4])
    return p, port


def start_dnsmasq(tcp_port):
    """dnsmasq answering for *.example.test; returns (process, port)."""
    port = free_port(socket.SOCK_DGRAM)
    p2p = f"/p2p/{SEED1}"
    txt = [
        # nested: example.test -> inner.example.test -> /dns4 + /ip4; an entry of another peer
        ("_dnsaddr.example.test", f"dnsaddr=/dnsaddr/inner.example.test{p2p}"),
        ("_dnsaddr.example.test", f"dnsaddr=/ip4/127.0.0.1/tcp/1/p2p/{OTHER}"),
        ("_dnsaddr.inner.example.test", f"dnsaddr=/dns4/node.example.test/tcp/{tcp_port}{p2p}"),
        # a loop with no address in it
        ("_dnsaddr.loop1.example.test", "dnsaddr=/dnsaddr/loop2.example.test"),
        ("_dnsaddr.loop2.example.test", "dnsaddr=/dnsaddr/loop1.example.test"),
        # a loop with one good address
        ("_dnsaddr.ring1.example.test", f"dnsaddr=/dnsaddr/ring2.example.test{p2p}"),
        ("_dnsaddr.ring2.example.test", f"dnsaddr=/dnsaddr/ring1.example.test{p2p}"),
        ("_dnsaddr.ring2.example.test", f"dnsaddr=/ip4/127.0.0.1/tcp/{tcp_port}{p2p}"),
    ]
    args = ["dnsmasq", "--no-daemon", f"--port={port}", "--listen-address=127.0.0.1",
            "--bind-interfaces", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
            "--pid-file=", "--local=/example.test/",
            "--host-record=node.example.test,127.0.0.1"]
    if os.geteuid() == 0:
        args.append("--user=root")
    args += [f"--txt-record={n},{v}" for n, v in txt]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # up once its UDP port is taken
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return p, port
        finally:
            s.close()
        if p.poll() is not None:
            break
        time.sleep(0.05)
    p.kill()
    raise AssertionError("dnsmasq did not start: " + p.stderr.read().decode(errors="replace"))


def case(fn):
    try:
        fn()
        results.append((fn.__name__, None))
    except AssertionError as e:
        results.append((fn.__name__, str(e) or "assertion failed"))
    except Exception as e:
        results.append((fn.__name__, f"{type(e).__name__}: {e}"))
    return fn


def main():
    if not shutil.which("dnsmasq"):
        print("1..0 # SKIP dnsmasq not installed (Debian package dnsmasq-base)")
        return 0
    node, tcp = start_node()
    dns, dport = start_dnsmasq(tcp)
    server = ["--option", f"dns.server=127.0.0.1:{dport}", "--option", "dns.timeout_ms=500",
              "--option", "dns.tries=1"]

    def ping(target, *extra, timeout=20):
        t0 = time.monotonic()
        rc, out, err = run("ping", target, "--count", "1", "--key-seed", "2", "--json", *extra,
                           timeout=timeout)
        return rc, events(out), err, time.monotonic() - t0

    def ok_ping(target, *extra):
        rc, evs, err, _ = ping(target, *extra)
        assert rc == 0, (target, rc, evs, err)
        pings = [e for e in evs if e["event"] == "ping"]
        assert pings and pings[0]["peer_id"] == SEED1, evs
        return evs

    def failed(target, *extra):
        rc, evs, err, dt = ping(target, *extra)
        assert rc == 1, (target, rc, evs, err)
        errs = [e for e in evs if e["event"] == "error"]
        assert errs, evs
        return errs[0], dt

    @case
    def dns4_name_from_the_test_server():
        evs = ok_ping(f"/dns4/node.example.test/tcp/{tcp}/p2p/{SEED1}", *server)
        opened = [e for e in evs if e["event"] == "channel_opened"]
        assert opened and opened[0]["remote_addr"] == f"/ip4/127.0.0.1/tcp/{tcp}", opened

    @case
    def dns4_localhost_from_etc_hosts():
        ok_ping(f"/dns4/localhost/tcp/{tcp}/p2p/{SEED1}")

    @case
    def dnsaddr_nested_and_filtered_by_peer_id():
        evs = ok_ping(f"/dnsaddr/example.test/p2p/{SEED1}", *server)
        # the nested entry's address, not OTHER's /tcp/1 (the resolver-level
        # filter is checked in resolve_test's resolve_walk_with_immediate_answers)
        opened = [e for e in evs if e["event"] == "channel_opened"]
        assert opened and opened[0]["remote_addr"] == f"/ip4/127.0.0.1/tcp/{tcp}", opened

    @case
    def dnsaddr_loop_with_an_address_is_bounded():
        ok_ping(f"/dnsaddr/ring1.example.test/p2p/{SEED1}", *server)

    @case
    def dnsaddr_loop_without_an_address_fails():
        e, dt = failed(f"/dnsaddr/loop1.example.test/p2p/{SEED1}", *server)
        assert e["error"] == "GN_ERESOLVE" and "loop1.example.test" in e["message"], e
        assert dt < 10, dt

    @case
    def dnsaddr_other_peer_only_fails():
        # example.test's direct entry is another peer's: filtered out, and
        # the nested one leads to SEED1 only; ask for OTHER's: only its entry
        # (port 1, refused) remains
        e, _ = failed(f"/dnsaddr/example.test/p2p/{OTHER}", *server)
        assert e["error"] == "GN_ECONNREFUSED", e

    @case
    def nxdomain_names_the_domain():
        e, _ = failed(f"/dns4/nope.example.test/tcp/{tcp}/p2p/{SEED1}", *server)
        assert e["error"] == "GN_ERESOLVE", e
        assert "nope.example.test" in e["message"] and "NXDOMAIN" in e["message"], e
        e, _ = failed(f"/dnsaddr/nope.example.test/p2p/{SEED1}", *server)
        assert e["error"] == "GN_ERESOLVE" and "_dnsaddr.nope.example.test" in e["message"], e

    @case
    def silent_server_times_out():
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        silent.bind(("127.0.0.1", 0))
        try:
            port = silent.getsockname()[1]
            e, dt = failed(f"/dns4/node.example.test/tcp/{tcp}/p2p/{SEED1}", "--option",
                           f"dns.server=127.0.0.1:{port}", "--option", "dns.timeout_ms=300",
                           "--option", "dns.tries=1")
            assert e["error"] == "GN_ETIMEDOUT", e
            assert "node.example.test" in e["message"] and "timeout" in e["message"], e
            assert dt < 8, dt
        finally:
            silent.close()

    @case
    def bad_dns_option_is_named():
        rc, evs, err, _ = ping(f"/dns4/localhost/tcp/{tcp}/p2p/{SEED1}", "--option",
                               "dns.timeout_ms=0")
        assert rc != 0 and "dns.timeout_ms" in err, (rc, evs, err)

    @case
    def quic_v1_is_unsupported_not_malformed():
        e, _ = failed(f"/ip4/127.0.0.1/udp/1/quic-v1/p2p/{SEED1}")
        assert e["error"] == "GN_ENOTRANSPORT", e
        assert "unsupported" in e["message"] and "'/udp/1/quic-v1'" in e["message"], e
        assert "malformed" not in e["message"], e

    @case
    def bootstrap_through_dnsaddr():
        rc, evs, err, _ = ping(f"/p2p/{SEED1}", "--bootstrap",
                               f"/dnsaddr/example.test/p2p/{SEED1}", *server)
        assert rc == 0, (rc, evs, err)

    dns.send_signal(signal.SIGTERM)
    @case
    def dns4_localhost_over_websocket():
        # /dns4/localhost/tcp/P/ws/p2p/ID: resolved, then dialled by the
        # websocket transport (a node of its own listening on /ws)
        try:
            wsnode, wsport = start_node("/ip4/127.0.0.1/tcp/0/ws")
        except (AssertionError, ValueError, IndexError) as e:
            raise AssertionError(f"a /ws listener did not start (websocket built in?): {e}")
        try:
            evs = ok_ping(f"/dns4/localhost/tcp/{wsport}/ws/p2p/{SEED1}")
            opened = [e for e in evs if e["event"] == "channel_opened"]
            assert opened and opened[0]["remote_addr"] == f"/ip4/127.0.0.1/tcp/{wsport}/ws", opened
        finally:
            wsnode.send_signal(signal.SIGTERM)
            try:
                wsnode.wait(timeout=10)
            except subprocess.TimeoutExpired:
                wsnode.kill()
                wsnode.wait()

    @case
    def dns4_localhost_over_wss_checks_the_name():
        # /dns4/localhost/tcp/P/wss resolves to /ip4/127.0.0.1/tcp/P/tls/sni/localhost/ws:
        # SNI and the certificate check use "localhost" (the certificate has
        # no IP entry, so the same listener dialled by IP must fail)
        if not shutil.which("openssl"):
            return  # nothing to make a certificate with (counted as passed)
        with tempfile.TemporaryDirectory() as d:
            cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                            "-days", "2", "-subj", "/CN=localhost", "-addext",
                            "subjectAltName=DNS:localhost"], capture_output=True, check=True)
            p = subprocess.Popen([CLI, "node", "--json", "--key-seed", "1", "--listen",
                                  "/ip4/127.0.0.1/tcp/0/wss", "--option",
                                  f"websocket.cert_file={cert}", "--option",
                                  f"websocket.key_file={key}"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                line = p.stdout.readline()
                ev = json.loads(line)
                assert ev["event"] == "listening", ev
                port = int(ev["addrs"][0].split("/")[4])
                ca = ["--option", f"websocket.ca_file={cert}"]
                evs = ok_ping(f"/dns4/localhost/tcp/{port}/wss/p2p/{SEED1}", *ca)
                opened = [e for e in evs if e["event"] == "channel_opened"]
                assert opened and opened[0]["remote_addr"].endswith(f"/tcp/{port}/tls/ws"), opened
                e, _ = failed(f"/ip4/127.0.0.1/tcp/{port}/wss/p2p/{SEED1}", *ca)
                assert e["error"] == "GN_EHANDSHAKE", e
            finally:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()

    node.send_signal(signal.SIGTERM)
    for p in (dns, node):
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    print(f"1..{len(results)}")
    bad = 0
    for i, (name, err) in enumerate(results, 1):
        if err is None:
            print(f"ok {i} - {name}")
        else:
            bad += 1
            print(f"not ok {i} - {name}")
            for line in str(err).splitlines():
                print("# " + line)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
