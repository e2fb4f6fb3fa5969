"""Send a caller's own encoded frames back to them, never decoded or re-encoded.

aiortc's sender packs an ``av.Packet`` returned by a track's ``recv()``
without encoding it (``RTCRtpSender._next_encoded_frame`` calls
``encoder.pack``), so an echo costs a copy per frame instead of a decode and
an encode. The packet's ``pts``/``time_base`` carry the frame's RTP
timestamp, so the echoed stream keeps the sender's timing.

The frames are only valid for the codec they were encoded with: the sending
side must have negotiated the same codec as the receiving side (true when
both directions of a transceiver use the answer's codec order, as aiortc
and browsers do). A frame of another codec is dropped and logged.
"""

from __future__ import annotations

import fractions
import logging

import av
from aiortc import RTCRtpSender
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from media.queues import AsyncFrameQueue
from peer.tap import EncodedFrameTap, forward_keyframe_requests

logger = logging.getLogger(__name__)


class EncodedEchoTrack(MediaStreamTrack):
    """An outgoing track whose frames are the tapped incoming ones.

    The queue between tap and sender is bounded (``max_frames``): if the
    sender falls behind, frames are dropped and counted in :attr:`dropped`,
    and video skips to the next keyframe, which it requests.
    """

    def __init__(
        self, tap: EncodedFrameTap, kind: str | None = None, *, max_frames: int = 30, lazy: bool = False
    ) -> None:
        """``lazy``: take frames from the tap only from the first ``recv()``
        (when aiortc's sender starts, i.e. once connected), so that a far end
        still connecting costs no queued frames or keyframe requests (WHEP)."""
        super().__init__()
        if kind is not None and kind != tap.kind:
            raise ValueError(f"tap is {tap.kind}, not {kind}")
        self.kind = tap.kind
        self._tap = tap
        self._max_frames = max_frames
        self._queue: AsyncFrameQueue | None = None
        self._codec: str | None = None
        self.frames = 0
        self.codec_mismatches = 0
        self._lazy = lazy
        if not lazy:
            self._subscribe()

    def _subscribe(self) -> AsyncFrameQueue:
        queue = self._queue = AsyncFrameQueue(self._tap, self._max_frames, name=f"echo {self._tap.kind}")
        if self.kind == "video":
            # Whatever is in flight now may depend on frames we never saw;
            # the queue asks for a keyframe if it has to skip one.
            queue.gate_until_keyframe()
            if self._lazy:
                # A far end that joins mid-stream needs one now, not at the
                # sender's next periodic keyframe.
                self._tap.request_keyframe()
        return queue

    @property
    def started(self) -> bool:
        """Whether frames are being taken from the tap."""
        return self._queue is not None

    @property
    def dropped(self) -> int:
        return sum(self._queue.dropped.values()) if self._queue is not None else 0

    def bind_sender(self, sender: RTCRtpSender) -> None:
        """Forward keyframe requests from the far end of ``sender`` to the caller.

        Call with the sender ``pc.addTrack(echo_track)`` returned; without it a
        caller whose decoder lost a picture waits for the next keyframe the
        caller's own encoder happens to make.
        """
        forward_keyframe_requests(sender, self._tap)

    async def recv(self) -> av.Packet:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            queue = self._queue or self._subscribe()
            frame = await queue.get()
            if frame is None:
                self.stop()
                raise MediaStreamError
            if self._codec is None:
                self._codec = frame.codec
            elif frame.codec != self._codec:
                self.codec_mismatches += 1
                if self.codec_mismatches == 1:
                    logger.error(
                        "echo %s: incoming codec changed %s -> %s; dropping frames",
                        self.kind,
                        self._codec,
                        frame.codec,
                    )
                continue
            packet = av.Packet(frame.data)
            packet.pts = frame.timestamp
            packet.time_base = fractions.Fraction(1, frame.clock_rate)
            self.frames += 1
            return packet

    def stop(self) -> None:
        if self._queue is not None:
            self._queue.close()
        super().stop()
