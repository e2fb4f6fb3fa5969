"""The caller gets its own encoded frames back, through a real aiortc sender."""

from __future__ import annotations

import asyncio

import pytest

from peer.echo import EncodedEchoTrack
from peer.tap import EncodedFrameTap
from tests.support.media import FPS, nearest_palette, open_call, read_pattern

pytestmark = pytest.mark.slow  # real calls, processes or real-time media


@pytest.mark.parametrize("codec", ["video/VP8", "video/H264"])
async def test_caller_receives_its_own_video_and_audio(watch, codec):
    taps: dict[str, EncodedFrameTap] = {}
    echoes: dict[str, EncodedEchoTrack] = {}
    returned: dict[str, object] = {}

    def on_track(track, receiver):
        # The bot reads no decoded frames in echo mode.
        taps[track.kind] = EncodedFrameTap.attach(receiver, track, decode=False)

    def before_answer(bot):
        for kind, tap in taps.items():
            echoes[kind] = EncodedEchoTrack(tap, kind)
            echoes[kind].bind_sender(bot.addTrack(echoes[kind]))

    call = await open_call(
        watch,
        seconds=3.0,
        video_codec=codec,
        size=(320, 240),
        on_track=on_track,
        before_answer=before_answer,
        caller_on_track=lambda track, receiver: returned.__setitem__(track.kind, track),
    )
    try:
        video = returned["video"]
        seen = []
        # Read decoded echoed frames until we have a second's worth.
        while len(seen) < FPS:
            frame = await asyncio.wait_for(video.recv(), 5)
            seen.append(read_pattern(frame.to_ndarray(format="bgr24")))
        indices = [i for i, _ in seen]
        assert indices == sorted(indices) and len(set(indices)) == len(indices)
        for index, color in seen:
            assert nearest_palette(color) == (index // FPS) % 8
        audio = await asyncio.wait_for(returned["audio"].recv(), 5)
        assert audio.sample_rate == 48000
        assert echoes["video"].frames >= FPS and echoes["video"].dropped == 0
        # Nothing decoded on the bot: the echo is the encoded frames.
        assert taps["video"].track._queue.qsize() == 0
    finally:
        await call.close()


async def test_keyframe_request_from_the_far_end_reaches_the_caller(watch):
    taps: dict[str, EncodedFrameTap] = {}
    back: dict[str, EncodedFrameTap] = {}

    class CountKeyframes:
        def __init__(self):
            self.count = 0
            self.first = asyncio.Event()
            self.second = asyncio.Event()

        def on_frame(self, frame):
            self.first.set()
            self.count += frame.keyframe
            if self.count >= 2:
                self.second.set()

        def on_end(self, tap):
            pass

    counter = CountKeyframes()

    def on_track(track, receiver):
        taps[track.kind] = EncodedFrameTap.attach(receiver, track, decode=False)

    def before_answer(bot):
        echo = EncodedEchoTrack(taps["video"])
        echo.bind_sender(bot.addTrack(echo))

    def caller_on_track(track, receiver):
        back[track.kind] = EncodedFrameTap.attach(receiver, track, decode=False)
        back[track.kind].subscribe(counter)

    call = await open_call(
        watch,
        seconds=4.0,
        audio=False,
        size=(320, 240),
        on_track=on_track,
        before_answer=before_answer,
        caller_on_track=caller_on_track,
    )
    try:
        # The echoed stream starts on a keyframe; a PLI from the caller's
        # receiver to the bot's sender must come back as a second one.
        await asyncio.wait_for(counter.first.wait(), 5)
        requests_before = taps["video"].keyframe_requests
        assert back["video"].request_keyframe()
        await asyncio.wait_for(counter.second.wait(), 5)
        assert taps["video"].keyframe_requests == requests_before + 1
    finally:
        await call.close()
