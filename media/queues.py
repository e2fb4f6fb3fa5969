"""Bounded queues between a tap (on the event loop) and a slower consumer.

No queue in the media layer grows without bound: when a consumer falls
behind, new frames are dropped, counted per kind, and logged. A dropped video
frame makes every later frame up to the next keyframe undecodable, so after a
video drop the queue also drops those (counted too) and asks the tap for a
keyframe, instead of passing on frames that would only decode as garbage.

End-of-track markers and control items are never dropped: they are at most
one per tap plus one per stop, so they cannot make the queue grow.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

from media.frames import EncodedFrame, FrameSource

logger = logging.getLogger(__name__)

# Drops are logged at the first one and then at most this often.
_LOG_INTERVAL = 5.0
# Seconds to wait for a requested keyframe before asking again.
_REQUEST_AGAIN = 1.0


@dataclass(frozen=True, slots=True)
class TrackEnded:
    """Queued after a tap's last frame."""

    tap: FrameSource


class _DropPolicy:
    """Counting, keyframe gating and rate-limited logging shared by both queues."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.dropped: collections.Counter[str] = collections.Counter()
        # Taps whose frames are skipped until a keyframe -> when a keyframe
        # was last requested for them (None: not yet; a gate set at start may
        # be opened by a keyframe that is on its way anyway).
        self._gated: dict[int, float | None] = {}
        self._logged_at = -1e9
        self._logged_total = 0

    def admit(self, frame: EncodedFrame, tap: FrameSource | None, has_room: bool) -> bool:
        """Whether to enqueue ``frame``; counts and logs it if not."""
        key = id(tap)
        if key in self._gated:
            if not frame.keyframe:
                self._drop(frame)
                asked = self._gated[key]
                # Ask again if the keyframe we asked for has not come (lost,
                # or itself dropped because the queue was still full).
                if tap is not None and (asked is None or time.monotonic() - asked >= _REQUEST_AGAIN):
                    tap.request_keyframe()
                    self._gated[key] = time.monotonic()
                return False
            del self._gated[key]
        if has_room:
            return True
        self._drop(frame)
        if frame.kind == "video" and tap is not None:
            tap.request_keyframe()
            self._gated[key] = time.monotonic()
        return False

    def gate(self, tap: FrameSource) -> None:
        self._gated.setdefault(id(tap), None)

    def _drop(self, frame: EncodedFrame) -> None:
        self.dropped[frame.kind] += 1
        total = sum(self.dropped.values())
        now = time.monotonic()
        if now - self._logged_at >= _LOG_INTERVAL:
            logger.warning(
                "%s: consumer is behind, dropped %d frames (%d since last report; %s)",
                self.name,
                total,
                total - self._logged_total,
                ", ".join(f"{k} {v}" for k, v in sorted(self.dropped.items())),
            )
            self._logged_at = now
            self._logged_total = total


class ThreadFrameQueue:
    """A tap sink read by a worker thread. May be subscribed to several taps.

    ``maxsize`` bounds the number of queued frames. The consumer takes
    everything queued at once with :meth:`drain`, which returns
    :class:`EncodedFrame`, :class:`TrackEnded` or whatever :meth:`put_control`
    queued.

    Frames do not wake the consumer one by one: a thread switch per frame
    (80 a second per call) costs more CPU than the frame's muxing, so the
    consumer polls every ``wake_interval`` seconds and is woken early only
    when the queue is half full or a control item arrives.
    """

    def __init__(self, maxsize: int, *, name: str) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self._items: collections.deque[Any] = collections.deque()
        self._frames = 0
        self._cond = threading.Condition()
        self._policy = _DropPolicy(name)
        self._tap_of: dict[str, FrameSource] = {}
        self.closed = False

    @property
    def dropped(self) -> collections.Counter[str]:
        return self._policy.dropped

    def bind(self, tap: FrameSource) -> None:
        """Subscribe to ``tap`` (so drops can request keyframes from it)."""
        self._tap_of[tap.kind] = tap
        tap.subscribe(self)

    def on_frame(self, frame: EncodedFrame) -> None:
        if self.closed:
            return
        tap = self._tap_of.get(frame.kind)
        with self._cond:
            if not self._policy.admit(frame, tap, self._frames < self.maxsize):
                return
            self._items.append(frame)
            self._frames += 1
            if self._frames * 2 >= self.maxsize:
                self._cond.notify()

    def on_end(self, tap: FrameSource) -> None:
        self.put_control(TrackEnded(tap))

    def put_control(self, item: Any) -> None:
        with self._cond:
            self._items.append(item)
            self._cond.notify()

    def drain(self, timeout: float | None = None) -> list[Any]:
        """Everything queued, waiting up to ``timeout`` for something (may be [])."""
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            items = list(self._items)
            self._items.clear()
            self._frames = 0
            return items

    def get(self, timeout: float | None = None) -> Any:
        """One item; raises :class:`queue.Empty` after ``timeout``."""
        with self._cond:
            if not self._items and not self._cond.wait_for(lambda: self._items, timeout):
                raise queue.Empty
            item = self._items.popleft()
            if isinstance(item, EncodedFrame):
                self._frames -= 1
            return item

    def qsize(self) -> int:
        return self._frames

    def close(self) -> None:
        """Stop accepting frames (control items still pass)."""
        self.closed = True
        for tap in self._tap_of.values():
            tap.unsubscribe(self)


class AsyncFrameQueue:
    """A tap sink read by a coroutine on the same event loop as the tap."""

    def __init__(self, tap: FrameSource, maxsize: int, *, name: str) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self._tap = tap
        self._queue: asyncio.Queue[EncodedFrame | None] = asyncio.Queue()
        self.maxsize = maxsize
        self._policy = _DropPolicy(name)
        self.ended = False
        tap.subscribe(self)

    @property
    def dropped(self) -> collections.Counter[str]:
        return self._policy.dropped

    def gate_until_keyframe(self) -> None:
        """Drop frames until the next keyframe (e.g. at the start of a consumer)."""
        self._policy.gate(self._tap)

    def on_frame(self, frame: EncodedFrame) -> None:
        if self.ended:
            return
        # The queue's own bound is not used, so the end marker always fits.
        has_room = self._queue.qsize() < self.maxsize
        if self._policy.admit(frame, self._tap, has_room):
            self._queue.put_nowait(frame)

    def on_end(self, tap: FrameSource) -> None:
        if not self.ended:
            self.ended = True
            self._queue.put_nowait(None)

    async def get(self) -> EncodedFrame | None:
        """The next frame, or None once the tap has ended."""
        return await self._queue.get()

    def close(self) -> None:
        self._tap.unsubscribe(self)
        self.on_end(self._tap)
