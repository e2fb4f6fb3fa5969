"""Encoded frames, and the shape of whatever produces them.

The media layer works with :class:`EncodedFrame` objects only; it never sees
an aiortc receiver. A :class:`FrameSource` (``peer.tap.EncodedFrameTap`` for
a call, a file reader in benchmarks) hands frames to its :class:`FrameSink`
subscribers on the event loop and takes keyframe requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One reassembled encoded frame as it came off the wire.

    ``timestamp`` is the RTP timestamp, unwrapped by aiortc and counted from
    the receiver's first frame, in units of ``1 / clock_rate`` seconds.
    ``arrival`` is :func:`time.monotonic` when the frame was complete.
    """

    kind: str  # "audio" or "video"
    codec: str  # "VP8", "H264", "opus", ... (the MIME subtype negotiated)
    clock_rate: int
    timestamp: int
    data: bytes
    keyframe: bool
    arrival: float
    index: int  # 0, 1, 2, ... per source, so consumers can see gaps
    width: int | None = None  # from the bitstream, keyframes only
    height: int | None = None
    parameter_sets: bytes | None = None  # H.264 SPS+PPS (Annex-B) when present


class FrameSink(Protocol):
    """Receives a source's frames. Called on the event loop; must not block."""

    def on_frame(self, frame: EncodedFrame) -> None: ...

    def on_end(self, source: FrameSource) -> None: ...


class FrameSource(Protocol):
    """Where encoded frames of one kind come from (one incoming track)."""

    kind: str
    ended: bool
    #: How many frame durations late a frame is released (jitter buffering).
    release_delay_frames: int

    def subscribe(self, sink: FrameSink) -> None: ...

    def unsubscribe(self, sink: FrameSink) -> None: ...

    def request_keyframe(self) -> bool:
        """Ask the sender for a keyframe (on the event loop)."""
        ...

    def request_keyframe_threadsafe(self) -> None:
        """:meth:`request_keyframe` from a worker thread."""
        ...

    def stats(self) -> dict: ...
