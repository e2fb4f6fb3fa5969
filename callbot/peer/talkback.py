"""What the bot sends back to the caller.

- ``none``: nothing; the answer is recvonly.
- ``echo``: the caller's own encoded audio and video sent straight back,
  never decoded or re-encoded (``callbot.media.echo``).
- ``overlay``: decoded video annotated with OpenCV (elapsed time and a
  recording mark) and re-encoded by aiortc; the drawing runs in a worker
  thread, off the event loop. Audio is echoed as in ``echo``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import cv2
from av import VideoFrame
from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamTrack

from ..media.echo import EncodedEchoTrack
from ..media.tap import EncodedFrameTap

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


class TalkbackSenders:
    """Builds the outgoing tracks for one call from its incoming ones."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self._sources: dict[str, tuple[MediaStreamTrack, EncodedFrameTap]] = {}
        self._outgoing: list[MediaStreamTrack] = []

    def needs_decoded(self, kind: str) -> bool:
        """Whether talk-back reads decoded frames of ``kind`` (only overlay video)."""
        return self.mode == "overlay" and kind == "video"

    def on_incoming(self, track: MediaStreamTrack, tap: EncodedFrameTap) -> None:
        if self.mode != "none":
            self._sources[track.kind] = (track, tap)

    def attach(self, pc: RTCPeerConnection) -> None:
        for kind, (source, tap) in self._sources.items():
            if self.needs_decoded(kind):
                pc.addTrack(track := OverlayVideoTrack(source))
            else:
                echo = EncodedEchoTrack(tap)
                echo.bind_sender(pc.addTrack(echo))
                track = echo
            self._outgoing.append(track)

    def stats(self) -> dict[str, Any]:
        return {
            t.kind: {"frames": t.frames, "dropped": t.dropped}
            for t in self._outgoing if isinstance(t, EncodedEchoTrack)
        }

    async def stop(self) -> None:
        for track in self._outgoing:
            track.stop()
