"""Running a bot's hooks for one call without letting the bot slow anything else.

Two kinds of delivery, each with a bound:

- :class:`EventQueue`: connected, photo, message, ended... run one at a time,
  in order, in one task per call. Bounded (``max_events``); an event that
  arrives while it is full is dropped and counted (only a flood of app
  messages can fill it).
- :class:`FrameFeed`: decoded video or audio frames, in their own task per
  call and kind. Bounded (the bot's ``video_queue``/``audio_queue``); a frame
  that arrives while it is full replaces the oldest waiting one, which is
  dropped and counted, so a slow bot always sees recent frames.

A hook that raises ends its call (``bot-error``) through ``on_error``; the
server and other calls go on.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import Any, Awaitable, Callable

from peer.tasks import cancel_and_wait

logger = logging.getLogger(__name__)

OnError = Callable[[str, BaseException], None]


async def run_hook(name: str, hook: Callable[..., Awaitable[None]], args: tuple[Any, ...], on_error: OnError) -> bool:
    """Await one hook; a failure goes to ``on_error``. Returns whether it succeeded."""
    try:
        await hook(*args)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        on_error(name, exc)
        return False
    return True


class _Worker:
    """One task draining a deque; subclasses decide what fits."""

    def __init__(self, name: str, on_error: OnError) -> None:
        self.name = name
        self._on_error = on_error
        self._items: collections.deque[Any] = collections.deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.delivered = 0
        self.dropped = 0

    def start(self) -> None:
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    async def _run(self) -> None:
        while True:
            while not self._items:
                self._wake.clear()
                await self._wake.wait()
            item = self._items.popleft()
            await self._handle(item)

    async def _handle(self, item: Any) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        """Stop: what is still queued is dropped (not counted); a hook that is
        running is cancelled."""
        self._closed = True
        self._items.clear()
        task, self._task = self._task, None
        await cancel_and_wait([task])

    def stats(self) -> dict[str, int]:
        return {"delivered": self.delivered, "dropped": self.dropped}


class EventQueue(_Worker):
    """A call's events, in order, one at a time."""

    def __init__(self, name: str, on_error: OnError, *, max_events: int = 256) -> None:
        super().__init__(name, on_error)
        self.max_events = max_events

    def put(self, hook_name: str, hook: Callable[..., Awaitable[None]], *args: Any) -> bool:
        if self._closed:
            return False
        if len(self._items) >= self.max_events:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                logger.warning("%s: the bot is behind; %d events dropped", self.name, self.dropped)
            return False
        self._items.append((hook_name, hook, args))
        self._wake.set()
        return True

    async def _handle(self, item: Any) -> None:
        hook_name, hook, args = item
        if await run_hook(hook_name, hook, args, self._on_error):
            self.delivered += 1


class FrameFeed(_Worker):
    """Frames of one kind for one call's bot; the newest win when it is behind."""

    def __init__(
        self,
        name: str,
        hook_name: str,
        hook: Callable[[Any], Awaitable[None]],
        on_error: OnError,
        *,
        maxsize: int,
    ) -> None:
        super().__init__(name, on_error)
        if maxsize < 1:
            raise ValueError("a frame queue holds at least one frame")
        self.maxsize = maxsize
        self._hook_name = hook_name
        self._hook = hook

    def offer(self, frame: Any) -> None:
        """Queue ``frame`` (on the event loop); never blocks."""
        if self._closed:
            return
        if len(self._items) >= self.maxsize:
            self._items.popleft()
            self.dropped += 1
        self._items.append(frame)
        self._wake.set()

    async def _handle(self, item: Any) -> None:
        if await run_hook(self._hook_name, self._hook, (item,), self._on_error):
            self.delivered += 1
