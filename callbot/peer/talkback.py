"""What the bot sends back to the caller.

- ``none``: nothing; the answer is recvonly.
- ``echo``: the caller's own encoded audio and video sent straight back,
  never decoded or re-encoded.
- ``overlay``: decoded video annotated with OpenCV (elapsed time and a
  recording mark) and re-encoded by aiortc; the drawing runs in a worker
  thread, off the event loop. Audio is echoed as in ``echo``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import time
from typing import Any

import cv2
from av import VideoFrame
from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

logger = logging.getLogger(__name__)


def annotate(frame: VideoFrame, elapsed: float) -> VideoFrame:
    """Draw the elapsed time and a red recording dot; keeps pts and time base."""
    image = frame.to_ndarray(format="bgr24")
    h, w = image.shape[:2]
    scale = max(0.5, w / 960)
    minutes, seconds = divmod(int(elapsed), 60)
    text = f"REC {minutes:02d}:{seconds:02d}"
    org = (int(40 * scale), int(44 * scale))
    cv2.circle(image, (int(20 * scale), int(34 * scale)), int(9 * scale), (0, 0, 255), -1, cv2.LINE_AA)
    cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), int(4 * scale), cv2.LINE_AA)
    cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), max(1, int(2 * scale)), cv2.LINE_AA)
    out = VideoFrame.from_ndarray(image, format="bgr24")
    out.pts = frame.pts
    out.time_base = frame.time_base
    return out


class OverlayVideoTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, source: MediaStreamTrack) -> None:
        super().__init__()
        self._source = source
        self._started = time.monotonic()

    async def recv(self) -> VideoFrame:
        frame = await self._source.recv()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, annotate, frame, time.monotonic() - self._started)


class RelayTrack(MediaStreamTrack):
    """Frames of ``source`` passed on as they are."""

    def __init__(self, source: MediaStreamTrack) -> None:
        super().__init__()
        self.kind = source.kind
        self._source = source

    async def recv(self) -> Any:
        return await self._source.recv()


class TalkbackSenders:
    """Builds the outgoing tracks for one call from its incoming ones."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self._sources: dict[str, MediaStreamTrack] = {}
        self._outgoing: list[MediaStreamTrack] = []

    def on_incoming(self, track: MediaStreamTrack) -> bool:
        """Remember an incoming track; True when talk-back will read it."""
        if self.mode == "none":
            return False
        self._sources[track.kind] = track
        return True

    def attach(self, pc: RTCPeerConnection) -> None:
        for kind, source in self._sources.items():
            if self.mode == "overlay" and kind == "video":
                track: MediaStreamTrack = OverlayVideoTrack(source)
            else:
                track = RelayTrack(source)
            pc.addTrack(track)
            self._outgoing.append(track)

    async def stop(self) -> None:
        for track in self._outgoing:
            track.stop()
