#!/usr/bin/env python3
"""golemnet share / fetch end to end on loopback (issue 19; docs/transfer.md).

Usage: transfer_test.py PATH_TO_golemnet [--big-mib N]   (prints TAP)
Environment: XFER_CASES="word ..." runs only the cases whose name has a word.

Byte-exact fetches (empty, one chunk, odd size, a sparse file of --big-mib
MiB, default 256), a corrupt provider beside a good one, a provider killed
mid-transfer, kill -9 of the downloader and resume (only missing chunks
fetched), four sources at once, discovery through a 3-node DHT, and the
errors of a CID nobody has and of a malformed one.
"""
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time

CLI = sys.argv[1]
BIG_MIB = int(sys.argv[sys.argv.index("--big-mib") + 1]) if "--big-mib" in sys.argv else 256
CHUNK = 256 * 1024
results = []
procs = []


class Proc:
    """A golemnet command with --json in the background; its stdout lines as objects."""

    def __init__(self, *args):
        self.p = subprocess.Popen([CLI, *args, "--json"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        procs.append(self)
        self.buf = b""
        self.events = []

    def next_event(self, timeout):
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
        ev = json.loads(line)
        self.events.append(ev)
        return ev

    def wait_for(self, pred, timeout=20):
        deadline = time.monotonic() + timeout
        for ev in self.events:
            if pred(ev):
                return ev
        while time.monotonic() < deadline:
            ev = self.next_event(deadline - time.monotonic())
            if ev is None:
                return None
            if pred(ev):
                return ev
        return None

    def kill(self, sig=signal.SIGTERM):
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def share(path, *extra):
    """Starts `golemnet share` of @path; returns (proc, cid, addr)."""
    s = Proc("share", path, "--listen", "/ip4/127.0.0.1/tcp/0", *extra)
    sh = s.wait_for(lambda e: e["event"] == "shared", timeout=30)
    ls = s.wait_for(lambda e: e["event"] == "listening", timeout=10)
    assert sh and ls, (s.events, s.p.stderr.read1(4096) if s.p.poll() is not None else "")
    return s, sh["cid"], ls["addr"]


def fetch(cid, out, *args, timeout=60):
    """Runs `golemnet fetch` to completion; (exit status, events, stderr)."""
    p = subprocess.run([CLI, "fetch", cid, "-o", out, "--json", *args], capture_output=True,
                       text=True, timeout=timeout)
    evs = [json.loads(l) for l in p.stdout.splitlines()]
    return p.returncode, evs, p.stderr


def done_of(evs):
    d = [e for e in evs if e["event"] == "done"]
    assert len(d) == 1, evs
    return d[0]


def same(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def case(fn):
    def run():
        name = fn.__name__
        run.__name__ = name
        t0 = time.monotonic()
        try:
            fn()
            results.append((True, f"{name} ({time.monotonic() - t0:.1f} s)", None))
        except Exception as e:  # noqa: BLE001 - a failed case is reported, the rest run
            import traceback
            results.append((False, name, traceback.format_exc()))
        finally:
            while procs:
                procs.pop().kill()
    run.__name__ = fn.__name__
    return run


def make_file(path, size, sparse=False):
    with open(path, "wb") as f:
        if sparse:
            f.truncate(size)
        else:
            f.write(os.urandom(size))


TMP = tempfile.mkdtemp(prefix="gn-xfer-")
MID_BYTES = 128 << 20  # the kill cases: capped at 100 MB/s, so about 1.3 s per fetch


def mid_file():
    src = os.path.join(TMP, "mid")
    if not os.path.exists(src):
        make_file(src, MID_BYTES, sparse=True)
    return src


@case
def byte_exact_small_files():
    for name, size in (("empty", 0), ("one-chunk", CHUNK), ("odd", 3 * CHUNK + 12345),
                       ("one-byte", 1)):
        src = os.path.join(TMP, name)
        make_file(src, size)
        s, cid, addr = share(src)
        out = os.path.join(TMP, name + ".out")
        rc, evs, err = fetch(cid, out, "--from", addr)
        assert rc == 0, (name, rc, evs, err)
        d = done_of(evs)
        assert d["status"] == "ok" and d["bytes"] == size, d
        assert same(src, out), name
        assert not os.path.exists(out + ".part") and not os.path.exists(out + ".part.state")
        s.kill()


@case
def sparse_big_file():
    src = os.path.join(TMP, "big")
    make_file(src, BIG_MIB << 20, sparse=True)
    t0 = time.monotonic()
    s, cid, addr = share(src)
    t_share = time.monotonic() - t0
    out = os.path.join(TMP, "big.out")
    t0 = time.monotonic()
    rc, evs, err = fetch(cid, out, "--from", addr, timeout=120)
    t_fetch = time.monotonic() - t0
    assert rc == 0, (rc, evs[-3:], err)
    assert os.path.getsize(out) == BIG_MIB << 20
    assert same(src, out)
    print(f"# {BIG_MIB} MiB sparse: share (hash) {t_share:.2f} s, fetch {t_fetch:.2f} s "
          f"({(BIG_MIB / t_fetch):.0f} MiB/s)")
    os.unlink(out)


@case
def corrupt_provider_banned_good_one_finishes():
    os.makedirs(os.path.join(TMP, "g"), exist_ok=True)
    os.makedirs(os.path.join(TMP, "b"), exist_ok=True)
    good = os.path.join(TMP, "g", "same-name")  # the name is in the manifest: same CID
    bad = os.path.join(TMP, "b", "same-name")
    make_file(good, 64 * CHUNK + 77)
    with open(good, "rb") as f:
        data = f.read()
    with open(bad, "wb") as f:
        f.write(data)
    s1, cid, a1 = share(good)
    s2, cid2, a2 = share(bad)
    assert cid == cid2
    with open(bad, "r+b") as f:  # modified after sharing: every chunk differs
        for i in range(0, 65):
            f.seek(i * CHUNK + 5)
            f.write(b"\xff\x00corrupt")
    out = os.path.join(TMP, "c.out")
    rc, evs, err = fetch(cid, out, "--from", a2, "--from", a1)
    assert rc == 0, (rc, evs, err)
    banned = [e for e in evs if e["event"] == "peer_banned"]
    assert len(banned) == 1 and banned[0]["peer"] == a2, evs
    assert same(good, out)
    # the corrupt provider alone: the download fails, nothing corrupt written
    out2 = os.path.join(TMP, "c2.out")
    rc, evs, err = fetch(cid, out2, "--from", a2)
    assert rc == 1 and done_of(evs)["status"] == "GN_EUNREACHABLE", (rc, evs)
    assert not os.path.exists(out2)


def progress_past(p, frac):
    return lambda e: (e["event"] == "progress" and e["bytes_total"] > 0
                      and e["bytes_done"] >= e["bytes_total"] * frac)


@case
def provider_killed_mid_transfer():
    src = mid_file()
    s1, cid, a1 = share(src)
    s2, _, a2 = share(src)
    out = os.path.join(TMP, "k.out")
    # capped at 100 MB/s so that it lasts (at least 2.7 s) on any machine
    t0 = time.monotonic()
    f = Proc("fetch", cid, "-o", out, "--from", a1, "--from", a2, "--memory-chunks", "8",
             "--max-rate", "100000000")
    ev = f.wait_for(progress_past(f, 0.05), timeout=60)
    assert ev, f.events
    assert ev["bytes_done"] < ev["bytes_total"], "finished before the kill: use a bigger file"
    s1.kill(signal.SIGKILL)
    d = f.wait_for(lambda e: e["event"] == "done", timeout=90)
    assert d and d["status"] == "ok", f.events[-5:]
    assert any(e["event"] == "peer_down" and e["peer"] == a1 for e in f.events), f.events
    # the rate cap held (a token bucket: at most 250 ms worth ahead)
    assert time.monotonic() - t0 >= MID_BYTES / 100e6 - 0.5, time.monotonic() - t0
    assert same(src, out)
    os.unlink(out)


@case
def kill_9_downloader_and_resume():
    src = mid_file()
    s, cid, addr = share(src)
    out = os.path.join(TMP, "r.out")
    f = Proc("fetch", cid, "-o", out, "--from", addr, "--memory-chunks", "4",
             "--max-rate", "100000000")  # so that it lasts on any machine
    # past 25 %: bits were committed (every 64 chunks = 16 MiB, or 1 s)
    ev = f.wait_for(progress_past(f, 0.25), timeout=60)
    assert ev and ev["bytes_done"] < ev["bytes_total"], f.events
    f.kill(signal.SIGKILL)
    assert os.path.exists(out + ".part") and os.path.exists(out + ".part.state"), \
        ("finished before the kill?", f.events[-3:])
    assert not os.path.exists(out)
    rc, evs, err = fetch(cid, out, "--from", addr, timeout=90)
    assert rc == 0, (rc, evs[-3:], err)
    d = done_of(evs)
    total = MID_BYTES
    assert d["bytes_resumed"] > 0, d
    # only the missing chunks came: one provider, so no endgame duplicates
    assert d["bytes_received"] == total - d["bytes_resumed"], d
    assert same(src, out)
    print(f"# resumed {d['bytes_resumed']} of {total} bytes; fetched {d['bytes_received']}")
    os.unlink(out)


@case
def four_sources():
    src = os.path.join(TMP, "four")
    make_file(src, 128 * CHUNK + 999)
    shares = [share(src) for _ in range(4)]
    cid = shares[0][1]
    args = []
    for _, c, a in shares:
        assert c == cid
        args += ["--from", a]
    out = os.path.join(TMP, "four.out")
    rc, evs, err = fetch(cid, out, *args)
    assert rc == 0, (rc, evs[-3:], err)
    ups = {e["peer"] for e in evs if e["event"] == "peer_up"}
    assert ups == {a for _, _, a in shares}, (ups, evs)
    assert same(src, out)


@case
def discovery_through_a_small_dht():
    boot = Proc("node", "--listen", "/ip4/127.0.0.1/tcp/0", "--option", "kad.mode=server")
    ls = boot.wait_for(lambda e: e["event"] == "listening", timeout=10)
    assert ls, boot.events
    b = ls["addrs"][0]
    if "/p2p/" not in b:
        b += "/p2p/" + ls["peer_id"]
    src = os.path.join(TMP, "dht")
    make_file(src, 9 * CHUNK + 1)
    s1, cid, a1 = share(src, "--bootstrap-kad", b, "--option", "kad.mode=server")
    s2, _, a2 = share(src, "--bootstrap-kad", b, "--option", "kad.mode=server")
    for s in (s1, s2):
        p = s.wait_for(lambda e: e["event"] == "provided", timeout=30)
        assert p and p["status"] == "ok", s.events
    out = os.path.join(TMP, "dht.out")
    rc, evs, err = fetch(cid, out, "--bootstrap-kad", b, timeout=60)
    assert rc == 0, (rc, evs, err)
    ups = {e["peer"].split("/p2p/")[-1] for e in evs if e["event"] == "peer_up"}
    assert ups and ups <= {a1.split("/p2p/")[-1], a2.split("/p2p/")[-1]}, (ups, evs)
    assert same(src, out)
    # nobody provides this one
    other = os.path.join(TMP, "nobody")
    make_file(other, 100)
    s3, cid3, _ = share(other, "--no-provide")
    rc, evs, err = fetch(cid3, out + "2", "--bootstrap-kad", b, timeout=60)
    assert rc == 1 and done_of(evs)["status"] == "GN_ENOTFOUND", (rc, evs, err)


@case
def errors_and_limits():
    src = os.path.join(TMP, "lim")
    make_file(src, 1000)
    s, cid, addr = share(src)
    # a provider that does not have the CID: NOT_FOUND
    other = "bafk2bzaceb66br7fjksnucowtoc35mrssi6qb3zzbyv7s4sqaahmkb5y347gg"
    if other == cid:
        other = other[:-1] + ("a" if other[-1] != "a" else "b")
    rc, evs, err = fetch(other, os.path.join(TMP, "nf"), "--from", addr)
    assert rc == 1 and done_of(evs)["status"] == "GN_ENOTFOUND", (rc, evs, err)
    # a provider nobody listens for: unreachable, nothing written
    gone = addr.replace("/tcp/", "/tcp/1").split("/tcp/")[0] + "/tcp/1/p2p/" + addr.split("/p2p/")[1]
    rc, evs, err = fetch(cid, os.path.join(TMP, "gone"), "--from", gone)
    assert rc == 1 and done_of(evs)["status"] == "GN_EUNREACHABLE", (rc, evs, err)
    assert any(e["event"] == "peer_down" and e["status"] == "GN_ECONNREFUSED" for e in evs), evs
    assert not os.path.exists(os.path.join(TMP, "gone.part"))
    # a malformed CID: usage error, nothing started
    rc, evs, err = fetch("bafkNOTACID", os.path.join(TMP, "bad"), "--from", addr)
    assert rc == 2 and "GN_EPARSE" in err, (rc, evs, err)
    # --from without /p2p/
    p = subprocess.run([CLI, "fetch", cid, "--from", "/ip4/127.0.0.1/tcp/1"],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 2 and "/p2p/" in p.stderr, p
    # a missing file
    p = subprocess.run([CLI, "share", os.path.join(TMP, "missing")], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 1 and "cannot read" in p.stderr, p


@case
def progress_bar_on_a_terminal():
    import pty
    src = os.path.join(TMP, "bar")
    make_file(src, 64 << 20, sparse=True)
    s, cid, addr = share(src)
    out = os.path.join(TMP, "bar.out")
    master, slave = pty.openpty()
    p = subprocess.Popen([CLI, "fetch", cid, "--from", addr, "-o", out, "--memory-chunks", "4"],
                         stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    text = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if select.select([master], [], [], 0.5)[0]:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            text += chunk
        elif p.poll() is not None:
            break
    p.wait(timeout=30)
    os.close(master)
    stdout = p.stdout.read().decode()
    assert p.returncode == 0, (p.returncode, stdout, text)
    t = text.decode(errors="replace")
    # the bar is rewritten in place (\r, erase line) and ends at 100 %
    assert "\r\x1b[K[" in t and "100%" in t and "64.0 MiB / 64.0 MiB" in t, t[-300:]
    assert "ETA" in t and "peers 1" in t, t[-300:]
    assert stdout.startswith("done ") and "status=ok" in stdout, stdout
    assert same(src, out)


CASES = [byte_exact_small_files, progress_bar_on_a_terminal, sparse_big_file, corrupt_provider_banned_good_one_finishes,
         provider_killed_mid_transfer, kill_9_downloader_and_resume, four_sources,
         discovery_through_a_small_dht, errors_and_limits]

if __name__ == "__main__":
    only = os.environ.get("XFER_CASES")  # words: run only the cases whose name has one
    for c in CASES:
        if not only or any(w in c.__name__ for w in only.split()):
            c()
    print(f"1..{len(results)}")
    for i, (ok, name, tb) in enumerate(results, 1):
        print(f"{'ok' if ok else 'not ok'} {i} - {name}")
        if tb:
            for line in tb.splitlines():
                print("# " + line)
    import shutil
    shutil.rmtree(TMP, ignore_errors=True)
    sys.exit(0 if all(r[0] for r in results) else 1)
