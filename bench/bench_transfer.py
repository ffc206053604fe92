#!/usr/bin/env python3
"""bench_transfer: golemnet share/fetch of one sparse file on loopback (issue 19).

Usage: bench_transfer.py BUILD_DIR [--mib N] [--sources 1,4] [--no-baseline]

Shares a sparse file of N MiB (default 1024) from up to four `golemnet share`
processes, fetches it with `golemnet fetch` from 1 and from 4 of them, and
prints one JSON line per run: seconds, MB/s (10^6 bytes/s), the downloader's
peak RSS (ru_maxrss of the fetch process) and its CPU seconds. Unless
--no-baseline, it first runs `bench_node --section bulk` (one /perf/1.0.0
stream, Noise + yamux, same loopback) and reports each run against it
(issue 19's goal: at least 80 % of it, RSS under 64 MiB).
"""
import json
import os
import select
import subprocess
import sys
import tempfile
import time

BUILD = sys.argv[1]
CLI = os.path.join(BUILD, "tools", "golemnet")
MIB = int(sys.argv[sys.argv.index("--mib") + 1]) if "--mib" in sys.argv else 1024
SOURCES = ([int(x) for x in sys.argv[sys.argv.index("--sources") + 1].split(",")]
           if "--sources" in sys.argv else [1, 4])


def out(obj):
    print(json.dumps(obj), flush=True)


def wait_json(p, pred, timeout):
    buf = b""
    deadline = time.monotonic() + timeout
    fd = p.stdout.fileno()
    found = {}
    while time.monotonic() < deadline:
        if not select.select([fd], [], [], 0.5)[0]:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            ev = json.loads(line)
            found[ev["event"]] = ev
        if pred(found):
            return found
    raise RuntimeError(f"timed out waiting for share: {found}")


def baseline():
    bn = os.path.join(BUILD, "bench", "bench_node")
    if "--no-baseline" in sys.argv or not os.path.exists(bn):
        return None
    p = subprocess.run([bn, "--section", "bulk", "--bulk-mib", "512"], capture_output=True,
                       text=True, timeout=300)
    for line in p.stdout.splitlines():
        ev = json.loads(line)
        if ev.get("test") == "bulk":
            out({"bench": "transfer", "test": "baseline_bench_node_bulk",
                 "mb_per_s": ev["mb_per_s"]})
            return ev["mb_per_s"]
    return None


def main():
    base = baseline()
    tmp = tempfile.mkdtemp(prefix="gn-bench-xfer-")
    src = os.path.join(tmp, "src")
    with open(src, "wb") as f:
        f.truncate(MIB << 20)
    shares = []
    try:
        t0 = time.monotonic()
        for _ in range(max(SOURCES)):
            shares.append(subprocess.Popen([CLI, "share", src, "--listen", "/ip4/127.0.0.1/tcp/0",
                                            "--json"], stdout=subprocess.PIPE,
                                           stderr=subprocess.DEVNULL))
        infos = [wait_json(p, lambda f: "shared" in f and "listening" in f, 600) for p in shares]
        out({"bench": "transfer", "test": "share", "mib": MIB, "processes": len(shares),
             "seconds_all_hashed": round(time.monotonic() - t0, 3)})
        cid = infos[0]["shared"]["cid"]
        for n in SOURCES:
            dst = os.path.join(tmp, f"dst{n}")
            args = [CLI, "fetch", cid, "-o", dst, "--json"]
            for i in range(n):
                args += ["--from", infos[i]["listening"]["addr"]]
            t0 = time.monotonic()
            p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            _, status, ru = os.wait4(p.pid, 0)
            secs = time.monotonic() - t0
            lines = p.stdout.read().decode().splitlines()
            done = json.loads(lines[-1]) if lines else {}
            mbps = (MIB << 20) / secs / 1e6
            r = {"bench": "transfer", "test": "fetch", "sources": n, "mib": MIB,
                 "status": done.get("status"), "seconds": round(secs, 3),
                 "mb_per_s": round(mbps, 1), "rss_kib": ru.ru_maxrss,
                 "cpu_s": round(ru.ru_utime + ru.ru_stime, 2),
                 "bytes_received": done.get("bytes_received"),
                 "goal_rss_met": ru.ru_maxrss < 64 * 1024}
            if base:
                r["vs_bench_node_bulk"] = round(mbps / base, 3)
                r["goal_met"] = mbps >= 0.8 * base
            out(r)
            os.unlink(dst)
    finally:
        for p in shares:
            p.terminate()
            p.wait()
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
