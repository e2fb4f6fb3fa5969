"""The one way tests wait for a condition that no event announces."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, Callable

TIMEOUT = 10.0


async def eventually(check: Callable[[], Any], timeout: float = TIMEOUT, interval: float = 0.02) -> Any:
    """``check()``'s first truthy result (``check`` may be async), retried every
    ``interval`` seconds; AssertionError after ``timeout`` seconds.

    For state that changes without an event a test could await (files on
    disk, another process, a counter in the server). Anything that has an
    event or a future is awaited directly instead.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            name = getattr(check, "__qualname__", repr(check))
            raise AssertionError(f"condition not met within {timeout} s: {name}")
        await asyncio.sleep(interval)
