#!/usr/bin/env python3
"""The golemnet CLI contract: JSON lines, exit codes 0/1/2, errors on stderr.

Usage: cli_test.py PATH_TO_golemnet   (prints TAP)
"""
import json
import os
import subprocess
import sys
import tempfile

CLI = sys.argv[1]
SEED1 = "12D3KooWPjceQrSwdWXPyLLeABRXmuqt69Rg3sBYbU1Nft9HyQ6X"
results = []


def run(*args):
    p = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


def case(fn):
    try:
        fn()
        results.append((fn.__name__, None))
    except AssertionError as e:
        results.append((fn.__name__, str(e) or "assertion failed"))
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


print("TAP version 13")
print(f"1..{len(results)}")
for i, (name, err) in enumerate(results, 1):
    if err is None:
        print(f"ok {i} - {name}")
    else:
        print(f"not ok {i} - {name}")
        print(f"# {err}")
sys.exit(1 if any(e for _, e in results) else 0)
