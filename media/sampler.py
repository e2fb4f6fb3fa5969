"""One picture every N seconds, decoding as little as possible.

Measured on this machine (``bench/record_sampling.py``), decoding every
720p VP8 frame to keep one a second costs far more CPU than asking for a
keyframe when a picture is due and decoding that keyframe alone. So, per due
picture:

1. At the due time, ask the caller for a keyframe (RTCP PLI). A browser
   answers within a round trip or two; the keyframe is decoded alone.
2. If none comes within ``keyframe_wait`` seconds (a sender that ignores
   PLI, e.g. one relaying a file), decode from the last keyframe instead.
   The wait is generous because the fallback costs up to a second of
   decoding per picture, and a loaded caller or network can take a while:
   the frames since it are kept, still encoded, and the decoder resumes
   where it stopped, so each frame is decoded at most once however long the
   group of pictures is. Memory is bounded: beyond ``max_pending`` frames the
   oldest are decoded early to release them.

One decode serves every consumer of pictures: the JPEG writer
(``frame-NNNNNN.jpg`` every ``--frame-interval``) and a bot that asked for
frames at a low rate (:class:`PictureConsumer`). A picture is due when any
consumer's next due time has come, and goes to each consumer that is due.

Everything runs in the sampler's own thread: a decode burst in the fallback
never delays the file writer, and never the event loop. Pictures are written
as JPEG (OpenCV) atomically, so a picture on disk is always whole.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import math
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import av
import cv2

from media.storage import CallDirectory, atomic_write_bytes
from media.frames import EncodedFrame

logger = logging.getLogger(__name__)

_DECODERS = {"VP8": "libvpx", "H264": "h264"}


@dataclass(frozen=True, slots=True)
class SavedFrame:
    name: str
    t: float  # seconds on the recording's timeline
    width: int
    height: int
    size: int
    sha256: str
    source: str  # "keyframe" (decoded alone) or "resumed" (decoded from the last keyframe)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": "frame",
            "size": self.size,
            "sha256": self.sha256,
            "t": round(self.t, 3),
            "width": self.width,
            "height": self.height,
        }


class PictureConsumer:
    """Wants a decoded picture every ``interval`` seconds of video.

    :meth:`on_picture` runs in the sampler's thread and must be quick (hand
    the picture on). ``interval`` may be changed at any time; 0 pauses it.
    Each consumer's pictures are due at its own phase of its interval, so
    calls that started together (a reconnect storm, a benchmark) do not all
    decode in the same instant.
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.next_due = 0.0  # the first picture: the first keyframe
        self.phase = random.uniform(0, interval) if interval > 0 else 0.0

    def due(self, t: float) -> bool:
        return self.interval > 0 and t >= self.next_due

    def advance(self, t: float) -> None:
        """The next picture is due on the next multiple of the interval (at
        the consumer's phase), and at least half an interval after this one."""
        if self.interval > 0:
            due = (math.floor((t - self.phase) / self.interval) + 1) * self.interval + self.phase
            if due - t < self.interval / 2:
                due += self.interval
            self.next_due = due

    def on_picture(self, picture: av.VideoFrame, t: float, source: str) -> None:
        """``source``: "keyframe" (decoded alone) or "resumed" (decoded from the last keyframe)."""
        raise NotImplementedError


class JpegWriter(PictureConsumer):
    """Saves ``frame-NNNNNN.jpg`` into the call directory."""

    def __init__(self, call_dir: CallDirectory, interval: float, *, jpeg_quality: int = 85, name: str = "sampler") -> None:
        super().__init__(interval)
        self.call_dir = call_dir
        self.name = name
        self._jpeg_params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]
        # Results and counters (read from other threads: ints and an append-only list).
        self.saved: list[SavedFrame] = []
        self.write_errors = 0

    def on_picture(self, picture: av.VideoFrame, t: float, source: str) -> None:
        image = picture.to_ndarray(format="bgr24")
        ok, encoded = cv2.imencode(".jpg", image, self._jpeg_params)
        if not ok:
            self.write_errors += 1
            return
        data = encoded.tobytes()
        name = f"frame-{len(self.saved) + 1:06d}.jpg"
        try:
            atomic_write_bytes(self.call_dir.file(name), data)
        except OSError as exc:
            self.write_errors += 1
            logger.error("%s: cannot write %s: %s", self.name, name, exc)
            return
        self.saved.append(
            SavedFrame(
                name=name,
                t=t,
                width=picture.width,
                height=picture.height,
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                source=source,
            )
        )


class FrameSampler:
    """Decodes a picture whenever one of its consumers is due.

    Fed by the recorder's worker with batches of ``(frame, t)`` (one wake-up
    per batch, not per frame); :meth:`offer` never blocks: when the sampler
    is behind, frames are dropped and counted, and the sampler waits for the
    next keyframe.
    """

    def __init__(
        self,
        request_keyframe: Callable[[], None],
        consumers: list[PictureConsumer] | None = None,
        *,
        keyframe_wait: float = 1.5,
        max_pending: int = 150,
        queue_size: int = 60,
        name: str = "sampler",
    ) -> None:
        self.keyframe_wait = keyframe_wait
        self.max_pending = max_pending
        self.consumers: list[PictureConsumer] = list(consumers or [])
        self._request_keyframe = request_keyframe
        self._queue_size = queue_size
        self._batches: collections.deque[list[tuple[EncodedFrame, float]] | None] = collections.deque()
        self._queued = 0  # frames in _batches
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        # Worker-thread state.
        self._decoder: Any = None
        self._codec: str | None = None
        self._pending: list[EncodedFrame] = []  # since the last keyframe, not yet decoded
        self._have_keyframe = False
        self._last_index: int | None = None
        self._parameter_sets: bytes | None = None
        self._requested_at: float | None = None
        # Counters (read from other threads).
        self.pictures = 0
        self.dropped = 0
        self.decoded = 0
        self.decode_errors = 0
        self.keyframe_requests = 0
        self.from_keyframe_alone = 0

    def add_consumer(self, consumer: PictureConsumer) -> None:
        """Add a consumer; safe from any thread."""
        self.consumers = [*self.consumers, consumer]

    def _due(self, t: float) -> bool:
        return any(c.due(t) for c in self.consumers)

    def start(self) -> None:
        self._thread.start()

    def offer(self, items: list[tuple[EncodedFrame, float]]) -> None:
        """Queue video frames with their file times; never blocks."""
        if not items:
            return
        with self._cond:
            room = self._queue_size - self._queued
            if room < len(items):
                lost = len(items) - max(room, 0)
                self.dropped += lost
                if self.dropped == lost or self.dropped % 100 < lost:
                    logger.warning("%s: behind, %d frames dropped", self._thread.name, self.dropped)
                items = items[: max(room, 0)]
            if items:
                self._batches.append(items)
                self._queued += len(items)
                self._cond.notify()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish queued frames and end the thread (blocking; call off the loop)."""
        if not self._thread.is_alive():
            return
        with self._cond:
            self._batches.append(None)
            self._cond.notify()
        self._thread.join(timeout)

    def stats(self) -> dict[str, Any]:
        return {
            "pictures": self.pictures,
            "dropped": self.dropped,
            "decoded": self.decoded,
            "decode_errors": self.decode_errors,
            "keyframe_requests": self.keyframe_requests,
            "from_keyframe_alone": self.from_keyframe_alone,
        }

    # -- sampler thread ---------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._batches)
                batch = self._batches.popleft()
                if batch is not None:
                    self._queued -= len(batch)
            if batch is None:
                return
            for frame, t in batch:
                try:
                    self._on_frame(frame, t)
                except Exception:
                    logger.exception("%s: frame failed", self._thread.name)

    def _on_frame(self, frame: EncodedFrame, t: float) -> None:
        if frame.codec not in _DECODERS:
            return
        if frame.codec != self._codec:
            self._codec = frame.codec
            self._decoder = None
            self._have_keyframe = False
        if frame.parameter_sets:
            self._parameter_sets = frame.parameter_sets
        gap = self._last_index is not None and frame.index != self._last_index + 1
        self._last_index = frame.index
        if not any(c.interval > 0 for c in self.consumers):
            # Nobody wants pictures now: hold nothing. A consumer that comes
            # later starts from the next keyframe (asked for when it is due).
            self._pending = []
            self._have_keyframe = False
            return
        if frame.keyframe:
            # Everything before a keyframe is useless from now on.
            self._pending = [frame]
            self._have_keyframe = True
        elif gap or not self._have_keyframe:
            # A frame is missing (dropped upstream) or the decoder failed:
            # until the next keyframe nothing decodes correctly.
            self._pending = []
            self._have_keyframe = False
            if self._due(t) and (self._requested_at is None or t - self._requested_at >= 1.0):
                self._requested_at = t
                self.keyframe_requests += 1
                self._request_keyframe()
            return
        else:
            self._pending.append(frame)
            if len(self._pending) > self.max_pending:
                self._decode(self._pending[: self.max_pending // 2])
                del self._pending[: self.max_pending // 2]
        if not self._due(t):
            return
        if frame.keyframe:
            self._save(self._decode(self._pending), t, "keyframe")
        elif self._requested_at is None:
            self._requested_at = t
            self.keyframe_requests += 1
            self._request_keyframe()
        elif t - self._requested_at >= self.keyframe_wait:
            self._save(self._decode(self._pending), t, "resumed")

    def _decode(self, frames: list[EncodedFrame]) -> av.VideoFrame | None:
        """Feed ``frames`` to the decoder (they follow what it saw last); the last picture."""
        if not frames:
            return None
        if self._decoder is None:
            # Kept across pictures (creating one costs about as much as
            # decoding a keyframe); a keyframe resets its state anyway, and
            # after an error it is replaced.
            self._decoder = av.CodecContext.create(_DECODERS[frames[0].codec], "r")
            self._decoder.thread_count = 1
        picture = None
        for frame in frames:
            data = frame.data
            if frame.keyframe and frame.codec == "H264" and not frame.parameter_sets and self._parameter_sets:
                data = self._parameter_sets + data
            try:
                for picture in self._decoder.decode(av.Packet(data)):
                    self.decoded += 1
            except av.FFmpegError as exc:
                self.decode_errors += 1
                logger.warning("%s: cannot decode frame %d: %s", self._thread.name, frame.index, exc)
                self._decoder = None
                self._have_keyframe = False
                self._pending = []
                return None
        return picture

    def _save(self, picture: av.VideoFrame | None, t: float, source: str) -> None:
        self._pending = []
        if picture is None:
            return
        self._requested_at = None
        self.pictures += 1
        if source == "keyframe":
            self.from_keyframe_alone += 1
        for consumer in self.consumers:
            if consumer.due(t):
                consumer.advance(t)
                try:
                    consumer.on_picture(picture, t, source)
                except Exception:
                    logger.exception("%s: picture consumer %r failed", self._thread.name, consumer)
