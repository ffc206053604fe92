"""Runs the examples of docs/ergo-guide.md against each other, so the guide
cannot rot: the C process (ergo_echo) answers the Python client, and the
Python process (ergo_echo.py serve) answers the CLI (`golemnet ergo call`,
`monitor`, `send`), all through an embedded registrar on a private port.

usage: examples_test.py ERGO_ECHO GOLEMNET_CLI ERGO_ECHO_PY
"""

import json
import os
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


def main():
    reg = str(free_port())
    common = ["--cookie", "guide-cookie", "--registrar-port", reg]
    procs = []
    try:
        # 1. the C process, called and monitored by the Python client
        c = spawn([C_ECHO, "--name", "cecho@localhost", *common])
        procs.append(c)
        ready = read_line(c)
        assert ready and ready.startswith("ready cecho@localhost echo <cecho@localhost."), \
            (ready, c.poll(), stderr_of(c)[-2000:])
        r = subprocess.run([PY, PY_ECHO, "client", "cecho@localhost", *common],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, (r.stdout, r.stderr[-3000:])
        lines = r.stdout.splitlines()
        assert len(lines) == 4 and lines[0].startswith("pid <pyclient@localhost."), lines
        client_pid = lines[0].split(" ", 1)[1]
        assert lines[1:] == ["call 'hello'", "call Point(X=6, Y=8, Label='doubled')",
                             "signal down ProcessID(name='echo', node='cecho@localhost') "
                             "shutdown"], lines
        rc, out, err = finish(c)
        assert rc == 0 and f"message {client_pid} 'stop'" in out, (rc, out, err)
        print("ok: C process <- Python client (call, registered struct, monitor, down)")

        # 2. the Python process, reached by the CLI
        py = spawn([PY, PY_ECHO, "serve", "--name", "pyecho@localhost", *common])
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
        print("ok: Python process <- CLI (call, monitor, send 'stop', down)")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.err_file.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
