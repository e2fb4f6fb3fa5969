"""peer.tasks.cancel_and_wait: the close paths' one way to stop tasks."""

from __future__ import annotations

import asyncio
import logging

import pytest

from peer.tasks import cancel_and_wait

T = 5  # seconds: every wait below is bounded


def started_task(body, name: str | None = None) -> tuple[asyncio.Task, asyncio.Event]:
    """A task running ``body(started)``; ``started`` is set once it runs."""
    started = asyncio.Event()
    return asyncio.create_task(body(started), name=name), started


async def test_cancels_and_waits_for_every_task_and_skips_none():
    stopped: list[str] = []

    def worker(name: str):
        async def body(started: asyncio.Event) -> None:
            started.set()
            try:
                await asyncio.Event().wait()
            finally:
                stopped.append(name)
        return body

    (a, a_on), (b, b_on) = started_task(worker("a")), started_task(worker("b"))
    await asyncio.wait_for(asyncio.gather(a_on.wait(), b_on.wait()), T)
    await asyncio.wait_for(cancel_and_wait([a, None, b]), T)
    assert sorted(stopped) == ["a", "b"]
    assert a.cancelled() and b.cancelled()


async def test_a_task_that_fails_while_stopping_is_logged_not_raised(caplog):
    async def bad(started: asyncio.Event) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            raise RuntimeError("boom in cleanup")

    task, on = started_task(bad, "bad-task")
    await asyncio.wait_for(on.wait(), T)
    with caplog.at_level(logging.ERROR, logger="peer.tasks"):
        await asyncio.wait_for(cancel_and_wait([task]), T)
    assert "bad-task" in caplog.text and "boom in cleanup" in caplog.text


async def test_the_running_task_is_not_cancelled():
    async def closer() -> str:
        await cancel_and_wait([asyncio.current_task()])
        return "finished"

    assert await asyncio.wait_for(asyncio.create_task(closer()), T) == "finished"


async def test_cancelling_the_waiter_propagates():
    # The waiter is cancelled while the task it stops is still cleaning up:
    # the waiter must end cancelled, not carry on as if it had finished.
    cleaning = asyncio.Event()

    async def slow_to_stop(started: asyncio.Event) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            cleaning.set()
            await asyncio.Event().wait()  # cleans up until cancelled again

    task, on = started_task(slow_to_stop)
    await asyncio.wait_for(on.wait(), T)
    waiter = asyncio.create_task(cancel_and_wait([task]))
    await asyncio.wait_for(cleaning.wait(), T)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(waiter, T)
    assert waiter.cancelled()
    assert task.done()
