"""Runs the examples of docs/ergo-guide.md against each other, so the guide
cannot rot: the C process (ergo_echo) answers the Python client, which also
spawns a worker there and calls it by PID and by name; the Python process
(ergo_echo.py serve) answers the CLI (`golemnet ergo call`, `spawn`,
`monitor`, `send`), all through an embedded registrar on a private port.
The code blocks of the guide marked as quoted from an example are checked
against the example's file.

usage: examples_test.py ERGO_ECHO GOLEMNET_CLI ERGO_ECHO_PY
"""

import json
import os
import re
import select
import socket
import subprocess
import sys
import tempfile
import time

C_ECHO, CLI, PY_ECHO = sys.argv[1:4]
PY = sys.executable


def free_port():
    """A port free for TCP and UDP (the embedded registrar uses both)."""
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


def read_line(p, timeout=15):
    """The next stdout line of @p (bytes decoded), or None after @timeout s or at EOF."""
    deadline = time.monotonic() + timeout
    buf = b""
    fd = p.stdout.fileno()
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        c = os.read(fd, 1)
        if not c:
            return None
        buf += c
    return buf.decode().rstrip("\n")


def spawn(args):
    """A long-running child: stdout piped (read as it goes), stderr to a temporary file so a
    chatty child never blocks on a full pipe nobody reads."""
    err = tempfile.TemporaryFile()
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err)
    p.err_file = err
    return p


def stderr_of(p):
    p.err_file.seek(0)
    return p.err_file.read().decode(errors="replace")


def finish(p, timeout=15):
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise AssertionError(f"{p.args[0]} did not exit: {stderr_of(p)[-2000:]}")
    return p.returncode, out.decode(), stderr_of(p)


def cli(*args, timeout=30):
    r = subprocess.run([CLI, "ergo", *args, "--json"], capture_output=True, text=True,
                       timeout=timeout)
    return r.returncode, [json.loads(x) for x in r.stdout.splitlines()], r.stderr


GUIDE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs",
                     "ergo-guide.md")
QUOTE = re.compile(r"<!-- quoted from (examples/ergo/[\w.]+) -->\n```\w*\n(.*?)\n```", re.S)


def check_quotes():
    """Every guide block after "<!-- quoted from examples/ergo/FILE -->" is a run of FILE's
    lines, verbatim."""
    text = open(GUIDE, encoding="utf-8").read()
    blocks = QUOTE.findall(text)
    assert len(blocks) >= 2, "no quoted blocks in the guide"
    root = os.path.join(os.path.dirname(GUIDE), "..")
    for rel, block in blocks:
        src = open(os.path.join(root, rel), encoding="utf-8").read()
        assert block + "\n" in src, f"docs/ergo-guide.md quotes {rel}, which differs:\n{block}"
    print(f"ok: {len(blocks)} guide blocks match the examples")


def main():
    check_quotes()
    reg = str(free_port())
    common = ["--cookie", "guide-cookie", "--registrar-port", reg]
    procs = []
    try:
        # 1. the C process, called and monitored by the Python client
        c = spawn([C_ECHO, "--name", "cecho@localhost", "--allow-spawn", "worker", *common])
        procs.append(c)
        ready = read_line(c)
        assert ready and ready.startswith("ready cecho@localhost echo <cecho@localhost."), \
            (ready, c.poll(), stderr_of(c)[-2000:])
        # refused: a factory never enabled, and the factory's own refusal (its text)
        for _ in range(100):  # the first request may beat the registration
            rc, evs, err = cli("spawn", "cecho@localhost", "other", *common)
            if evs and "unknown name" in evs[-1].get("detail", ""):
                break
            time.sleep(0.1)
        assert rc == 1 and evs[-1]["error"] == "GN_ECALLBACK", (rc, evs, err)
        assert "unknown name" in evs[-1]["detail"], evs
        rc, evs, err = cli("spawn", "cecho@localhost", "worker", "a", "b", *common)
        assert rc == 1 and "worker takes at most one argument" in evs[-1]["detail"], \
            (rc, evs, err)
        r = subprocess.run([PY, PY_ECHO, "client", "cecho@localhost", "--spawn", "worker",
                            *common], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, (r.stdout, r.stderr[-3000:])
        lines = r.stdout.splitlines()
        assert len(lines) == 6 and lines[0].startswith("pid <pyclient@localhost."), lines
        client_pid = lines[0].split(" ", 1)[1]
        assert lines[1:3] == ["call 'hello'", "call Point(X=6, Y=8, Label='doubled')"], lines
        assert lines[3].startswith("spawn <cecho@localhost."), lines
        worker_pid = lines[3].split(" ", 1)[1]
        assert lines[4:] == ["call 'to the worker' Point(X=2, Y=4, Label='doubled')",
                             "signal down ProcessID(name='echo', node='cecho@localhost') "
                             "shutdown"], lines
        rc, out, err = finish(c)
        assert rc == 0 and f"message {client_pid} 'stop'" in out, (rc, out, err)
        assert f"spawned {worker_pid} for pyclient@localhost" in out, (out, err)
        print("ok: C process <- Python client (call, registered struct, spawn a worker and "
              "call it by PID and name, monitor, down)")

        # 2. the Python process, reached by the CLI
        py = spawn([PY, PY_ECHO, "serve", "--name", "pyecho@localhost", "--allow-spawn", "worker",
                    *common])
        procs.append(py)
        ready = read_line(py, 30)
        assert ready and ready.startswith("ready pyecho@localhost echo <pyecho@localhost."), \
            (ready, py.poll(), stderr_of(py)[-2000:])
        for _ in range(100):  # the first call may beat the registration
            rc, evs, err = cli("call", "pyecho@localhost", "hello", *common)
            if rc == 0:
                break
            time.sleep(0.1)
        assert rc == 0 and evs[0]["event"] == "ergo_reply" and evs[0]["value"] == "hello", \
            (rc, evs, err)
        # spawn a worker registered as w1, call it by PID and by name
        rc, evs, err = cli("spawn", "pyecho@localhost", "worker", "--register", "w1", *common)
        assert rc == 0 and evs[0]["event"] == "ergo_spawned" and evs[0]["register"] == "w1", \
            (rc, evs, err)
        worker_pid = evs[0]["pid"]
        assert worker_pid.startswith("<pyecho@localhost."), evs
        wid = worker_pid.rstrip(">").rsplit(".", 1)[1]
        rc, evs, err = cli("call", "pyecho@localhost", "by pid", "--pid", wid, *common)
        assert rc == 0 and evs[0]["value"] == "by pid", (rc, evs, err)
        rc, evs, err = cli("call", "pyecho@localhost", "by name", "--to", "w1", *common)
        assert rc == 0 and evs[0]["value"] == "by name", (rc, evs, err)
        rc, evs, err = cli("spawn", "pyecho@localhost", "worker", "--register", "w1", *common)
        assert rc == 1 and "resource is taken" in evs[-1]["detail"], (rc, evs, err)
        mon = spawn([CLI, "ergo", "monitor", "pyecho@localhost", "echo",
                     "--timeout", "20", "--json", *common])
        procs.append(mon)
        first = read_line(mon)
        assert first and json.loads(first)["event"] == "ergo_monitoring", first
        rc, evs, err = cli("send", "pyecho@localhost", "stop", "--atom", "--important", *common)
        assert rc == 0 and evs[0]["delivered"] is True, (rc, evs, err)
        rc, out, err = finish(mon, 25)
        down = json.loads(out.splitlines()[-1])
        assert rc == 0 and down["event"] == "ergo_down" and down["reason"] == "shutdown", \
            (rc, out, err)
        assert down["target"] == "echo" and down["kind"] == "name", down
        rc, out, err = finish(py)
        assert rc == 0 and "'stop'" in out, (rc, out, err)
        assert re.search(rf"^spawned {re.escape(worker_pid)} by <\S+> as w1$", out, re.M), \
            (out, err)
        print("ok: Python process <- CLI (call, spawn a worker and call it by PID and name, "
              "monitor, send 'stop', down)")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.err_file.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
