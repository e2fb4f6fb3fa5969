"""Stopping background tasks: cancel them, then wait until they have ended.

Every close path in the server does this (a call's tasks, a viewer's, a hook
runner, the decoded-frame reader, the app's sweepers), and it is easy to get
subtly wrong: cancelling the task that runs the close, or swallowing the
cancellation of the task that waits.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Iterable

logger = logging.getLogger(__name__)


async def cancel_and_wait(tasks: Iterable[asyncio.Task | None]) -> None:
    """Cancel ``tasks`` (``None`` and the running task are skipped) and wait
    for each to end. A task that failed while stopping is logged, not raised:
    the rest of the close still runs. If the task that waits is itself
    cancelled meanwhile, that cancellation propagates."""
    current = asyncio.current_task()
    pending = [task for task in tasks if task is not None and task is not current]
    for task in pending:
        task.cancel()
    for task in pending:
        try:
            await task
        except asyncio.CancelledError:
            if current is not None and current.cancelling():  # the waiter was cancelled too
                raise
        except Exception:
            logger.exception("task %s failed while being stopped", task.get_name())
