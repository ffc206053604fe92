"""Shared helpers of the golemnet Python tests.

Every test is bounded (``aio`` wraps the coroutine in asyncio.wait_for),
uses loopback addresses only and closes every node it starts (the ``nodes``
helper closes them even when the test fails).
"""

from __future__ import annotations

import asyncio
import errno
import functools
import os
import select
import socket
import sys
from typing import Any, Awaitable, Callable, List, Optional, Tuple

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
LOOPBACK = "/ip4/127.0.0.1/tcp/0"


def aio(timeout: float = 30.0) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Any]]:
    """Runs an async test function in a fresh event loop, bounded by timeout."""
    def deco(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            async def main() -> Any:
                return await asyncio.wait_for(fn(*args, **kwargs), timeout)
            return asyncio.run(main())
        return wrapper
    return deco


def syn_drop_listener() -> Optional[Tuple[socket.socket, List[socket.socket]]]:
    """A loopback listener that drops SYNs: backlog 0, never accepting, its
    accept queue filled, so a dial to it hangs in connect(). Returns
    (listener, fillers), to be closed by the caller, or None when the
    kernel keeps completing handshakes."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(0)
    fill: List[socket.socket] = []
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


class Nodes:
    """Creates and starts nodes; closes all of them on exit (async with)."""

    def __init__(self) -> None:
        self.started: List[Any] = []

    async def new(self, listen: bool = True, start: bool = True, **kw: Any) -> Any:
        import golemnet
        n = golemnet.Node(listen=[LOOPBACK] if listen else [], **kw)
        self.started.append(n)
        if start:
            await n.start()
        return n

    async def __aenter__(self) -> "Nodes":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        for n in self.started:
            await n.close()
