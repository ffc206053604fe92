"""Runs the Python examples of docs/python.md and README.md: every ```python
block right after a line "<!-- golemnet-python-example -->" must run and exit
0 within 30 s (docs/python.md must have at least one). Checks that
docs/python.md names every public name of the package and every public
attribute of its classes."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
from typing import Dict, List, Set, Tuple

import pytest

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
MARK = "<!-- golemnet-python-example -->"


def examples() -> List[Tuple[str, int, str]]:
    out = []
    for rel in ("docs/python.md", "README.md"):
        path = os.path.join(ROOT, rel)
        if not os.path.exists(path):
            continue
        text = open(path, encoding="utf-8").read()
        for m in re.finditer(re.escape(MARK) + r"\s*\n```python\n(.*?)\n```", text, re.S):
            out.append((rel, text[:m.start()].count("\n") + 1, m.group(1)))
    return out


def test_docs_have_an_example() -> None:
    assert any(rel == "docs/python.md" for rel, _, _ in examples())


@pytest.mark.parametrize("rel,line,code", examples(), ids=lambda v: str(v)[:20])
def test_example_runs(rel: str, line: int, code: str) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=30)
    assert r.returncode == 0, f"{rel}:{line}: {r.stderr.decode()[-2000:]}"
    assert r.stdout, f"{rel}:{line}: printed nothing"


# ---------------------------------------------------------------- API coverage

DOC = os.path.join(ROOT, "docs", "python.md")


def _own_attrs(cls: type) -> List[str]:
    """Public attributes a class itself defines: its __dict__, its
    annotations (dataclass fields) and the ``self.x = ...`` assignments of
    its methods (instance attributes). Inherited ones are documented at the
    class that defines them."""
    names = {n for n in vars(cls) if not n.startswith("_")}
    names |= {n for n in vars(cls).get("__annotations__", {}) if not n.startswith("_")}
    try:
        src = inspect.getsource(cls)
    except (OSError, TypeError):
        src = ""
    names |= set(re.findall(r"self\.([A-Za-z]\w*)\s*(?::[^=\n]*)?=(?!=)", src))
    return sorted(names)


def _ergo() -> Tuple[Tuple[str, object, List[str]], ...]:
    """golemnet.ergo's names ("ergo.Process.send"), when built with the ergo component."""
    import golemnet
    if not hasattr(golemnet._golemnet, "ErgoNode"):
        return ()
    import golemnet.ergo
    return (("ergo.", golemnet.ergo, list(golemnet.ergo.__all__)),)


def public_api() -> List[str]:
    """Every public name: the package's dir() (minus submodules), the
    __all__ of golemnet.errors, golemnet.blocking and golemnet.ipc, and
    every public attribute of their classes, spelled as docs/python.md must
    spell them ("Node.dial", "errors.CODES", "blocking.Node.dial",
    "ipc.Client.dial")."""
    import golemnet
    import golemnet.blocking
    import golemnet.errors
    import golemnet.ipc
    out: List[str] = []
    seen: Dict[int, str] = {}
    for prefix, mod, names in (
            ("", golemnet, [n for n in dir(golemnet) if not n.startswith("_")]),
            ("errors.", golemnet.errors, golemnet.errors.__all__),
            ("blocking.", golemnet.blocking, golemnet.blocking.__all__),
            ("ipc.", golemnet.ipc, golemnet.ipc.__all__)) + _ergo():
        for n in names:
            obj = getattr(mod, n)
            if inspect.ismodule(obj):
                continue
            if id(obj) in seen and inspect.isclass(obj):
                continue  # errors.X is golemnet.X: documented once
            seen[id(obj)] = prefix + n
            out.append(prefix + n)
            if inspect.isclass(obj) and obj.__module__.startswith("golemnet"):
                out += [f"{prefix}{n}.{a}" for a in _own_attrs(obj)]
    return out


def documented() -> Set[str]:
    """The dotted names opening a `code span` of docs/python.md, with and
    without a leading "golemnet."."""
    text = open(DOC, encoding="utf-8").read()
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)  # fenced blocks
    out: Set[str] = set()
    for span in re.findall(r"`([^`]+)`", text):  # spans may wrap lines
        m = re.match(r"[A-Za-z_][\w.]*", span.strip())
        if m:
            name = m.group(0).rstrip(".")
            out.add(name)
            if name.startswith("golemnet."):
                out.add(name[len("golemnet."):])
    return out


def test_every_public_name_is_documented() -> None:
    api = public_api()
    assert "Node.dial" in api and "blocking.Node.dial" in api and "Error.peer" in api
    docs = documented()
    missing = [n for n in api if n not in docs]
    assert not missing, ("public names not documented in docs/python.md (write them "
                         "as `Name` or `Class.attr` in a code span): " + ", ".join(missing))


def test_coverage_check_can_fail() -> None:
    # a name that is not in the docs is reported
    assert "Node.no_such_attribute_xyz" not in documented()
