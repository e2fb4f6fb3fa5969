"""Encoded frames from an aiortc receiver, before (or instead of) decoding.

aiortc has no public API for received encoded frames: ``RTCRtpReceiver``
reassembles each frame on the event loop and hands it to a decoder thread.
:meth:`EncodedFrameTap.attach` hooks that hand-over (``peer.compat``, the one
place that reaches into aiortc's internals) and turns every item into a
:class:`media.frames.EncodedFrame` for its sinks (the recorder, echo tracks,
the bot's frame feed). If :attr:`EncodedFrameTap.decode` is on, the item then
goes on to aiortc's decoder, so ``track.recv()`` yields decoded frames; the
end-of-stream ``None`` is always forwarded, so the remote track still ends.

:func:`forward_keyframe_requests` serves tracks that relay encoded frames
unchanged (echo, WHEP): a keyframe request from their far end is passed on to
whoever encodes the frames.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import time
from typing import Any

from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtcrtpsender import RTCRtpSender

from media.bitstream import frame_info
from media.frames import EncodedFrame, FrameSink
from peer import compat

logger = logging.getLogger(__name__)

_TAP_ATTR = "_callbot_encoded_frame_tap"

# Video receivers release a frame when the first packet of the next one
# arrives (aiortc JitterBuffer(prefetch=0) for video), audio receivers after
# `prefetch` more frames; used to estimate when a frame was captured.
_VIDEO_RELEASE_DELAY_FRAMES = 1


class EncodedFrameTap:
    """Copies a receiver's encoded frames to sinks; optionally starves its decoder.

    Create with :meth:`attach` from the peer connection's ``track`` event. One
    tap exists per receiver: attaching twice returns the same tap, so the
    recorder and the echo track can share it.
    """

    def __init__(
        self,
        receiver: RTCRtpReceiver,
        track: MediaStreamTrack,
        *,
        decode: bool,
        decoder_queue_limit: int,
        min_keyframe_request_interval: float,
    ) -> None:
        self.kind: str = track.kind
        self.track = track
        self.codec: str | None = None
        self.clock_rate: int | None = None
        self._receiver = receiver
        self._inner: queue.Queue = queue.Queue()  # aiortc's decoder queue, once hooked
        self._decode = decode
        self._decoder_queue_limit = decoder_queue_limit
        self._decoder_gated = False
        self._min_request_interval = min_keyframe_request_interval
        self._last_request = -1e9
        self._request_pending = False
        self._deferred: asyncio.TimerHandle | None = None
        self._sinks: list[FrameSink] = []
        self._tasks: set[asyncio.Task] = set()
        self._loop = asyncio.get_running_loop()
        self.ended = False
        # Counters, read by the manifest.
        self.frames = 0
        self.bytes = 0
        self.keyframes = 0
        self.keyframe_requests = 0
        self.decoder_dropped = 0
        self.sink_errors = 0
        # How many frame durations late a frame leaves the jitter buffer.
        self.release_delay_frames: int = (
            compat.jitter_prefetch(receiver) if self.kind == "audio" else _VIDEO_RELEASE_DELAY_FRAMES
        )

    @classmethod
    def attach(
        cls,
        receiver: RTCRtpReceiver,
        track: MediaStreamTrack,
        *,
        decode: bool | None = None,
        decoder_queue_limit: int = 60,
        min_keyframe_request_interval: float = 0.3,
    ) -> EncodedFrameTap:
        """Install the tap on ``receiver`` (idempotent); call on the event loop.

        ``decode``: whether aiortc's own decoder still gets the frames, so that
        ``track.recv()`` yields decoded frames. None keeps the current setting
        (on for a new tap, like plain aiortc). Turn it off when nothing reads
        ``track.recv()``: decoding costs CPU, and aiortc queues decoded frames
        without bound for a reader that never comes.
        """
        existing = getattr(receiver, _TAP_ATTR, None)
        if existing is not None:
            if decode is not None:
                existing.decode = decode
            return existing
        if receiver.track is not track:
            raise ValueError("track is not this receiver's track")
        tap = cls(
            receiver,
            track,
            decode=True if decode is None else decode,
            decoder_queue_limit=decoder_queue_limit,
            min_keyframe_request_interval=min_keyframe_request_interval,
        )
        tap._inner = compat.hook_decoder_queue(receiver, tap._handle_item)
        setattr(receiver, _TAP_ATTR, tap)
        logger.debug("tap attached to %s receiver", tap.kind)
        return tap

    @property
    def decode(self) -> bool:
        """Whether frames still go to aiortc's decoder (and so to ``track.recv()``)."""
        return self._decode

    @decode.setter
    def decode(self, value: bool) -> None:
        if value and not self._decode:
            # The decoder has missed frames: start it again on a keyframe.
            self._decoder_gated = self.kind == "video"
            if self._decoder_gated:
                self.request_keyframe()
        self._decode = value

    def subscribe(self, sink: FrameSink) -> None:
        if sink not in self._sinks:
            self._sinks.append(sink)
        if self.ended:
            sink.on_end(self)

    def unsubscribe(self, sink: FrameSink) -> None:
        if sink in self._sinks:
            self._sinks.remove(sink)

    def request_keyframe(self) -> bool:
        """Ask the sender for a keyframe (RTCP PLI, RFC 4585 section 6.3.1).

        Call on the event loop. Requests closer together than the minimum
        interval are merged into one sent when the interval is over, so
        several consumers can ask freely; a request made before the first
        packet (no SSRC known yet) is sent with it. Returns whether a PLI
        went out now.
        """
        if self.kind != "video" or self.ended:
            return False
        now = time.monotonic()
        wait = self._last_request + self._min_request_interval - now
        if wait > 0:
            # Too soon after the last one: send it when the interval is over
            # (one deferred request stands for all made meanwhile), so no
            # consumer's request is lost.
            if self._deferred is None:
                self._deferred = self._loop.call_later(wait, self._send_deferred)
            return False
        ssrcs = [s.source for s in self._receiver.getSynchronizationSources()]
        if not ssrcs:
            self._request_pending = True
            return False
        self._request_pending = False
        self._last_request = now
        self.keyframe_requests += 1
        # With RTX there are two SSRCs; a PLI for the RTX one is ignored, so
        # sending to each recent SSRC reaches the media stream either way.
        for ssrc in ssrcs:
            task = self._loop.create_task(compat.send_pli(self._receiver, ssrc))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return True

    def _send_deferred(self) -> None:
        self._deferred = None
        self.request_keyframe()

    def request_keyframe_threadsafe(self) -> None:
        """:meth:`request_keyframe` for worker threads."""
        try:
            self._loop.call_soon_threadsafe(self.request_keyframe)
        except RuntimeError:
            pass  # the loop is closed: the call is over

    def stats(self) -> dict[str, Any]:
        return {
            "codec": self.codec,
            "frames": self.frames,
            "bytes": self.bytes,
            "keyframes": self.keyframes,
            "keyframe_requests": self.keyframe_requests,
            "decoder_dropped": self.decoder_dropped,
        }

    # -- called by the proxy, on the event loop ------------------------------

    def _handle_item(self, item: Any) -> None:
        if item is None:
            # aiortc is stopping the decoder; the track must end.
            self._inner.put(None)
            self._end()
            return
        codec, jitter_frame = item
        frame = self._make_frame(codec, jitter_frame)
        if self._decode:
            self._forward_to_decoder(item, frame)
        if self._request_pending:
            self.request_keyframe()
        for sink in tuple(self._sinks):
            try:
                sink.on_frame(frame)
            except Exception:
                # A sink's bug must not break aiortc's receive path.
                self.sink_errors += 1
                if self.sink_errors == 1 or self.sink_errors % 1000 == 0:
                    logger.exception("%s tap: sink %r failed", self.kind, sink)

    def _make_frame(self, codec: Any, jitter_frame: JitterFrame) -> EncodedFrame:
        name = codec.mimeType.split("/", 1)[1]
        data = jitter_frame.data
        if self.codec != name:
            if self.codec is not None:
                logger.info("%s tap: codec %s -> %s", self.kind, self.codec, name)
            self.codec = name
            self.clock_rate = codec.clockRate
        width = height = None
        parameter_sets = None
        if self.kind == "video":
            try:
                info = frame_info(name, data)
            except ValueError:
                keyframe = False
            else:
                keyframe = info.keyframe
                width, height = info.width, info.height
                parameter_sets = info.parameter_sets
        else:
            # Every audio frame (Opus, G.711) can be decoded on its own.
            keyframe = True
        self.frames += 1
        self.bytes += len(data)
        if keyframe and self.kind == "video":
            self.keyframes += 1
        return EncodedFrame(
            kind=self.kind,
            codec=name,
            clock_rate=codec.clockRate,
            timestamp=jitter_frame.timestamp,
            data=data,
            keyframe=keyframe,
            arrival=time.monotonic(),
            index=self.frames - 1,
            width=width,
            height=height,
            parameter_sets=parameter_sets,
        )

    def _forward_to_decoder(self, item: Any, frame: EncodedFrame) -> None:
        # aiortc's decoder queue is unbounded; a decoder that falls behind
        # would hold every frame. Bound it, and after a drop feed it again
        # only from a keyframe so it never decodes against a missing reference.
        if self._decoder_gated:
            if not frame.keyframe:
                self.decoder_dropped += 1
                if time.monotonic() - self._last_request >= 1.0:
                    # The keyframe asked for has not come: ask again.
                    self.request_keyframe()
                return
            self._decoder_gated = False
        if self._inner.qsize() >= self._decoder_queue_limit:
            self.decoder_dropped += 1
            if self.decoder_dropped == 1 or self.decoder_dropped % 100 == 0:
                logger.warning(
                    "%s tap: aiortc decoder is behind, %d frames dropped so far",
                    self.kind,
                    self.decoder_dropped,
                )
            if self.kind == "video":
                self._decoder_gated = True
                self.request_keyframe()
            return
        self._inner.put(item)

    def _end(self) -> None:
        if self.ended:
            return
        self.ended = True
        if self._deferred is not None:
            self._deferred.cancel()
            self._deferred = None
        for sink in tuple(self._sinks):
            try:
                sink.on_end(self)
            except Exception:
                logger.exception("%s tap: sink %r failed at end", self.kind, sink)


def forward_keyframe_requests(sender: RTCRtpSender, tap: EncodedFrameTap) -> None:
    """Pass keyframe requests that ``sender`` receives on to ``tap``'s sender.

    For a sender that relays ``tap``'s encoded frames unchanged: it cannot
    make a keyframe itself, so when its receiver loses a picture the request
    has to go to whoever encodes the frames.
    """
    compat.on_keyframe_request(sender, tap.request_keyframe)
