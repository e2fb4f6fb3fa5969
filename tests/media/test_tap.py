"""The encoded-frame tap against a real aiortc receiver over loopback."""

from __future__ import annotations

import asyncio

import pytest
from aiortc.mediastreams import MediaStreamError

from media.frames import EncodedFrame
from peer.tap import EncodedFrameTap
from tests.support.media import FPS, nearest_palette, open_call, read_pattern

pytestmark = pytest.mark.slow  # real calls, processes or real-time media


class Collect:
    """A sink that keeps frames and lets a test await a condition on them."""

    def __init__(self) -> None:
        self.frames: list[EncodedFrame] = []
        self.ended = asyncio.Event()
        self._waiters: list[tuple[object, asyncio.Event]] = []

    def on_frame(self, frame: EncodedFrame) -> None:
        self.frames.append(frame)
        for pred, event in self._waiters:
            if pred(self.frames):
                event.set()

    def on_end(self, tap) -> None:
        self.ended.set()

    async def wait_until(self, pred, timeout: float) -> None:
        event = asyncio.Event()
        if pred(self.frames):
            return
        self._waiters.append((pred, event))
        await asyncio.wait_for(event.wait(), timeout)


@pytest.mark.asyncio
@pytest.mark.parametrize("codec", ["video/VP8", "video/H264"])
async def test_tap_sees_encoded_frames_without_decoding(watch, codec):
    sinks: dict[str, Collect] = {}
    taps: dict[str, EncodedFrameTap] = {}

    def on_track(track, receiver):
        taps[track.kind] = EncodedFrameTap.attach(receiver, track, decode=False)
        sinks[track.kind] = Collect()
        taps[track.kind].subscribe(sinks[track.kind])

    call = await open_call(watch, seconds=1.0, video_codec=codec, size=(320, 240), on_track=on_track)
    try:
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in call.senders_done)), 10)
        video = sinks["video"].frames
        audio = sinks["audio"].frames
        # The last frame stays in aiortc's jitter buffer until a next one comes.
        assert len(video) >= call.video.sent - 1
        assert video[0].keyframe and (video[0].width, video[0].height) == (320, 240)
        assert video[0].codec == codec.split("/")[1]
        # 90 kHz RTP clock; aiortc's sender truncates, so a tick either way.
        steps = [b.timestamp - a.timestamp for a, b in zip(video, video[1:])]
        assert all(2999 <= step <= 3001 for step in steps)
        assert all(f.clock_rate == 90000 for f in video)
        assert audio and audio[0].codec == "opus" and audio[0].clock_rate == 48000
        assert all(b.timestamp - a.timestamp == 960 for a, b in zip(audio, audio[1:]))
        if codec == "video/H264":
            assert video[0].parameter_sets.startswith(b"\x00\x00\x00\x01\x67")
        # Nothing reached aiortc's decoder, so nothing was decoded.
        assert taps["video"].track._queue.qsize() == 0
        assert taps["video"]._inner.qsize() == 0
        assert taps["video"].frames == len(video)
    finally:
        await call.close()
    await asyncio.wait_for(sinks["video"].ended.wait(), 5)
    await asyncio.wait_for(sinks["audio"].ended.wait(), 5)


@pytest.mark.asyncio
async def test_decoded_frames_still_reach_track_when_decode_is_on(watch):
    taps: dict[str, EncodedFrameTap] = {}

    def on_track(track, receiver):
        # Attaching twice returns the same tap (recorder and echo share one).
        first = EncodedFrameTap.attach(receiver, track)
        assert EncodedFrameTap.attach(receiver, track) is first
        taps[track.kind] = first

    call = await open_call(watch, seconds=1.0, audio=False, size=(320, 240), on_track=on_track)
    try:
        track = taps["video"].track
        assert taps["video"].decode
        frame = await asyncio.wait_for(track.recv(), 5)
        index, color = read_pattern(frame.to_ndarray(format="bgr24"))
        assert index < FPS and nearest_palette(color) == 0
    finally:
        await call.close()
    # The end of stream still reaches the track through the proxy.
    with pytest.raises(MediaStreamError):
        while True:
            await asyncio.wait_for(track.recv(), 5)


@pytest.mark.asyncio
async def test_request_keyframe_sends_pli_and_a_keyframe_arrives(watch):
    sink = Collect()
    taps: dict[str, EncodedFrameTap] = {}

    def on_track(track, receiver):
        if track.kind == "video":
            taps["video"] = EncodedFrameTap.attach(receiver, track, decode=False)
            taps["video"].subscribe(sink)

    call = await open_call(watch, seconds=3.0, audio=False, size=(320, 240), on_track=on_track)
    try:
        # aiortc's encoder makes one keyframe at the start and then only on PLI.
        await sink.wait_until(lambda frames: len(frames) >= 5, 5)
        assert sum(f.keyframe for f in sink.frames) == 1
        assert taps["video"].request_keyframe()
        # Requests right after it are merged into one, sent once the minimum
        # interval is over: nobody's request is lost, the sender is not flooded.
        assert not taps["video"].request_keyframe()
        assert not taps["video"].request_keyframe()
        await sink.wait_until(lambda frames: sum(f.keyframe for f in frames) >= 2, 5)
        await sink.wait_until(lambda frames: sum(f.keyframe for f in frames) >= 3, 5)
        assert taps["video"].keyframe_requests == 2
    finally:
        await call.close()


@pytest.mark.asyncio
async def test_decoder_queue_is_bounded_and_drops_are_counted(watch):
    taps: dict[str, EncodedFrameTap] = {}

    def on_track(track, receiver):
        if track.kind == "video":
            # A limit of zero: the decoder is always "behind".
            taps["video"] = EncodedFrameTap.attach(receiver, track, decoder_queue_limit=0)

    call = await open_call(watch, seconds=0.5, audio=False, size=(320, 240), on_track=on_track)
    try:
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in call.senders_done)), 10)
        tap = taps["video"]
        assert tap.frames > 0 and tap.decoder_dropped == tap.frames
        assert tap.track._queue.qsize() == 0
    finally:
        await call.close()


def test_attach_rejects_foreign_track():
    class FakeReceiver:
        track = object()

    with pytest.raises(ValueError):
        EncodedFrameTap.attach(FakeReceiver(), object())  # type: ignore[arg-type]
