"""Shared helpers of the golemnet Python tests.

Every test is bounded (``aio`` wraps the coroutine in asyncio.wait_for),
uses loopback addresses only and closes every node it starts (the ``nodes``
helper closes them even when the test fails).
"""

from __future__ import annotations

import asyncio
import functools
import os
import sys
from typing import Any, Awaitable, Callable, List

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
