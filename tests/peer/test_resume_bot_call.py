"""A bot call whose caller's signaling socket is cut mid-call: resumed within
--resume-grace, the call and its recording go on without a gap; too late,
the call ends as today (the bot hears ``close`` from the caller)."""

from __future__ import annotations

import asyncio
import json

import pytest

from peer.tap import EncodedFrameTap
from tests.support.caller import Caller
from tests.support.media import (
    FPS,
    CountFrames,
    PatternVideoTrack,
    ReceiveWatch,
    ToneAudioTrack,
    AUDIO_RATE,
    AUDIO_SAMPLES,
    inspect_recording,
)
from tests.support.server import Client, running_server, test_config
from tests.support.wait import eventually
from webapp.keys import BOT, HUB

pytestmark = pytest.mark.slow

SECONDS = 6.0


async def keep_reading(client: Client) -> None:
    """aiohttp answers the server's pings only while someone receives."""
    while not client.ws.closed:
        await client.ws.receive()


async def start_call(srv, monkeypatch):
    watch = ReceiveWatch(monkeypatch)
    start = asyncio.Event()
    video = PatternVideoTrack(start, round(SECONDS * FPS), (320, 240))
    audio = ToneAudioTrack(start, round(SECONDS * AUDIO_RATE / AUDIO_SAMPLES))
    client = await Client.connect(srv.ws_url)
    reply = await client.login("alice")
    caller = Caller(client, tracks=[audio, video])
    await caller.call("bot")
    call = srv.app[BOT].calls["alice"]
    await watch.wait(call.pc)
    counts: dict[str, CountFrames] = {}
    for transceiver in call.pc.getTransceivers():
        tap = EncodedFrameTap.attach(transceiver.receiver, transceiver.receiver.track)
        counts[tap.kind] = CountFrames()
        tap.subscribe(counts[tap.kind])
    start.set()
    return client, reply, caller, call, video, audio, counts


async def test_a_resumed_caller_keeps_its_bot_call_and_the_recording_has_no_gap(tmp_path, monkeypatch):
    async with running_server(test_config(tmp_path, resume_grace=10.0)) as srv:
        client, reply, caller, call, video, audio, counts = await start_call(srv, monkeypatch)
        await eventually(lambda: video.sent >= 1.5 * FPS, timeout=10)
        await client.drop()  # mid-call: the signaling socket is gone, the media is not
        await eventually(lambda: "alice" in srv.app[HUB].held, timeout=5)
        await eventually(lambda: video.sent >= 3 * FPS, timeout=10)  # a while without signaling
        assert not call.ending and srv.app[BOT].calls.get("alice") is call

        again = await Client.connect(srv.ws_url)
        resumed = await again.request(
            {"type": "login", "username": "alice", "resume": reply["resumeToken"]}, "login")
        assert resumed["resumed"] is True
        reader = asyncio.ensure_future(keep_reading(again))
        caller.client = again
        await asyncio.wait_for(asyncio.gather(video.done.wait(), audio.done.wait()), SECONDS + 15)
        await counts["video"].wait_for(video.sent - 1, 5)
        assert srv.app[BOT].calls.get("alice") is call and call.pc.connectionState == "connected"
        await caller.hangup()
        await asyncio.wait_for(call.ended.wait(), 15)
        reader.cancel()
        await again.close()

    manifest = json.loads(call.directory.manifest_path.read_text())
    assert manifest["end_reason"] == "caller-closed"
    section = manifest["recording"]
    assert section["state"] == "complete"
    report = inspect_recording(call.directory.file(section["file"]))
    # One call, one file, as long as the call: the cut did not split or end it.
    assert report.duration is not None and abs(report.duration - SECONDS) <= 0.5
    assert len(report.indices) >= 0.99 * video.sent
    assert report.indices == sorted(set(report.indices))
    gaps = [b - a for a, b in zip(report.indices, report.indices[1:])]
    assert max(gaps) <= 2, max(gaps)  # continuous through the cut
    assert report.indices[0] <= 2 and report.indices[-1] >= video.sent - 3


async def test_a_caller_back_too_late_finds_its_call_ended(tmp_path, monkeypatch):
    async with running_server(test_config(tmp_path, resume_grace=1.0)) as srv:
        client, reply, caller, call, video, audio, counts = await start_call(srv, monkeypatch)
        await eventually(lambda: video.sent >= FPS, timeout=10)
        loop = asyncio.get_running_loop()
        cut = loop.time()
        await client.drop()
        await asyncio.wait_for(call.ended.wait(), 10)
        assert loop.time() - cut >= 1.0  # held for the grace, then ended
        assert "alice" not in srv.app[BOT].calls
        late = await Client.connect(srv.ws_url)
        r = await late.request({"type": "login", "username": "alice", "resume": reply["resumeToken"]}, "login")
        assert r["success"] is True and r["resumed"] is False
        await late.close()
        await caller.pc.close()
    manifest = json.loads(call.directory.manifest_path.read_text())
    assert manifest["end_reason"] == "caller-closed"
    assert manifest["recording"]["state"] == "complete"
