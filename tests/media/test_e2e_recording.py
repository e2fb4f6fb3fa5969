"""The bot records a call made through the real server: WebSocket signaling, aiortc caller."""

from __future__ import annotations

import asyncio
import json

import pytest

from peer.tap import EncodedFrameTap
from webapp.keys import BOT
from tests.support.media import (
    check_pictures,
    AUDIO_RATE,
    AUDIO_SAMPLES,
    FPS,
    CountFrames,
    PatternVideoTrack,
    ReceiveWatch,
    ToneAudioTrack,
    inspect_recording,
    prefer_codec,
)
from tests.support.caller import Caller

pytestmark = pytest.mark.slow  # real calls, processes or real-time media

SECONDS = 10.0


@pytest.mark.parametrize("codec,ffmpeg_video", [("video/VP8", "vp8"), ("video/H264", "h264")])
async def test_bot_records_a_ten_second_call(server, connect, monkeypatch, codec, ffmpeg_video):
    watch = ReceiveWatch(monkeypatch)
    start = asyncio.Event()
    video = PatternVideoTrack(start, round(SECONDS * FPS), (480, 360))
    audio = ToneAudioTrack(start, round(SECONDS * AUDIO_RATE / AUDIO_SAMPLES))
    client = await connect("alice")
    caller = Caller(client, tracks=[audio, video])
    prefer_codec(caller.pc, "video", codec)
    await caller.call("bot")
    # Keep reading the WebSocket during the call: aiohttp answers the
    # server's heartbeat pings only while someone receives, and a silent
    # client is dropped (and its call ended) after 1.5 heartbeats.
    reader = asyncio.ensure_future(_read_forever(client))
    call = server.app[BOT].calls["alice"]
    await watch.wait(call.pc)
    # Count what reaches the bot, to hang up only when everything sent has
    # arrived (the tap is the bot's own: attach() returns it).
    counts = {}
    for transceiver in call.pc.getTransceivers():
        receiver = transceiver.receiver
        tap = EncodedFrameTap.attach(receiver, receiver.track)
        counts[tap.kind] = CountFrames()
        tap.subscribe(counts[tap.kind])
    start.set()
    await asyncio.wait_for(asyncio.gather(video.done.wait(), audio.done.wait()), SECONDS + 15)
    await counts["video"].wait_for(video.sent - 1, 5)
    await counts["audio"].wait_for(audio.sent - 4, 5)
    await caller.hangup()
    await asyncio.wait_for(call.ended.wait(), 15)
    reader.cancel()

    manifest = json.loads(call.directory.manifest_path.read_text())
    section = manifest["recording"]
    assert section["state"] == "complete" and section["complete"]
    report = inspect_recording(call.directory.file(section["file"]))
    assert report.codecs == {"video": ffmpeg_video, "audio": "opus"}
    assert report.duration is not None and abs(report.duration - SECONDS) <= 0.3
    assert report.first_video_keyframe
    assert len(report.indices) >= 0.99 * video.sent
    assert report.indices == sorted(set(report.indices))
    assert report.audio_packets >= 0.99 * audio.sent
    check_pictures(call.directory, section, at_least=9)
    # The bot's manifest lists the recording and the pictures with their hashes.
    names = {f["name"] for f in manifest["files"]}
    assert section["file"] in names and any(n.startswith("frame-") for n in names)


async def _read_forever(client) -> None:
    while not client.ws.closed:
        await client.ws.receive()
