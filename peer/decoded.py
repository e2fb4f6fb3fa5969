"""Decoded frames of an incoming track, shared, and tracks that transform them.

aiortc decodes an incoming track only when something reads ``track.recv()``;
the tap (``peer.tap``) keeps its decoder idle otherwise. A
:class:`DecodedStream` is that one reader: it turns aiortc's decoder on, reads
every decoded frame and hands it to each subscriber (the bot's frame feed, a
:class:`TransformTrack`), so several consumers share one decode.

A :class:`TransformTrack` sends back what a bot's callback makes of each
incoming frame (``Call.send_video``). It keeps only the newest frame waiting:
when the callback is slower than the frame rate, older frames are skipped and
counted, and the outgoing video runs at the rate the callback manages. A
plain function runs in the bot's worker pool, off the event loop.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any, Awaitable, Callable

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from peer.tap import EncodedFrameTap
from peer.tasks import cancel_and_wait

logger = logging.getLogger(__name__)

Subscriber = Callable[[Any], None]


class DecodedStream:
    """Reads ``track.recv()`` once for every subscriber."""

    def __init__(self, track: MediaStreamTrack, tap: EncodedFrameTap, *, name: str) -> None:
        self.track = track
        self.tap = tap
        self.name = name
        self.frames = 0
        self._subscribers: list[Subscriber] = []
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def subscribe(self, subscriber: Subscriber) -> None:
        if subscriber not in self._subscribers:
            self._subscribers.append(subscriber)
        self._update()

    def unsubscribe(self, subscriber: Subscriber) -> None:
        if subscriber in self._subscribers:
            self._subscribers.remove(subscriber)
        self._update()

    def _update(self) -> None:
        if self._subscribers and self._task is None:
            self.tap.decode = True
            self._task = asyncio.get_running_loop().create_task(self._read(), name=self.name)
        elif not self._subscribers and self._task is not None:
            self.tap.decode = False
            self._task.cancel()
            self._task = None

    async def _read(self) -> None:
        while True:
            try:
                frame = await self.track.recv()
            except MediaStreamError:
                return
            self.frames += 1
            for subscriber in tuple(self._subscribers):
                try:
                    subscriber(frame)
                except Exception:
                    logger.exception("%s: subscriber %r failed", self.name, subscriber)

    async def close(self) -> None:
        self._subscribers.clear()
        task, self._task = self._task, None
        await cancel_and_wait([task])


Transform = Callable[[Any], Any]


class TransformTrack(MediaStreamTrack):
    """An outgoing track: each incoming frame as ``transform`` returns it."""

    def __init__(
        self,
        kind: str,
        source: DecodedStream,
        transform: Transform,
        run_in_thread: Callable[..., Awaitable[Any]],
        on_error: Callable[[str, BaseException], None],
    ) -> None:
        super().__init__()
        self.kind = kind
        self._source = source
        self._transform = transform
        self._is_async = inspect.iscoroutinefunction(transform)
        self._run_in_thread = run_in_thread
        self._on_error = on_error
        self._latest: Any = None
        self._ready = asyncio.Event()
        self.frames = 0
        self.skipped = 0
        source.subscribe(self._offer)

    def _offer(self, frame: Any) -> None:
        if self._latest is not None:
            self.skipped += 1
        self._latest = frame
        self._ready.set()

    async def recv(self) -> Any:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            await self._ready.wait()
            self._ready.clear()
            frame, self._latest = self._latest, None
            if frame is None:
                continue
            try:
                if self._is_async:
                    out = await self._transform(frame)
                else:
                    out = await self._run_in_thread(self._transform, frame)
            except Exception as exc:
                self._on_error(f"send_{self.kind} transform", exc)
                self.stop()
                raise MediaStreamError from exc
            if out is None:
                out = frame
            elif out.pts is None:
                out.pts, out.time_base = frame.pts, frame.time_base
            self.frames += 1
            return out

    def stop(self) -> None:
        self._source.unsubscribe(self._offer)
        self._ready.set()
        super().stop()

    def stats(self) -> dict[str, int]:
        return {"frames": self.frames, "skipped": self.skipped}
