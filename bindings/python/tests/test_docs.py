"""Runs the Python examples of docs/python.md and README.md: every ```python
block right after a line "<!-- golemnet-python-example -->" must run and exit
0 within 30 s (docs/python.md must have at least one)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import List, Tuple

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
