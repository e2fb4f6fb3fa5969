"""The bot, called by real aiortc peers through the real signaling."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import threading

import pytest
from aiortc.mediastreams import AudioStreamTrack

from webapp.config import BotConfig
from peer.sdp import add_bitrate_hints
from webapp.keys import BOT
from tests.support.server import Client, running_server, test_config
from tests.support.wait import eventually
from tests.support.caller import Caller, PatternVideoTrack

pytestmark = pytest.mark.slow  # real calls, processes or real-time media


def manifests(data_dir) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((data_dir / "calls").glob("*/meta.json"))]


async def test_call_connects_with_trickled_candidates_and_manifest_is_complete(server, connect):
    alice = await connect("alice")
    caller = Caller(alice)
    await caller.call(trickle=True)
    assert "a=candidate:" in caller.answer_sdp  # the bot's own candidates are in its answer
    assert "x-google-start-bitrate=1500" in caller.answer_sdp
    bot = server.app[BOT]
    call = bot.calls["alice"]
    await asyncio.wait_for(call.connected.wait(), 5)
    await caller.hangup()
    await asyncio.wait_for(call.ended.wait(), 5)
    (meta,) = manifests(bot.config.data_dir)
    assert meta["caller"] == "alice" and meta["bot"] == "bot"
    assert meta["status"] == "complete" and meta["end_reason"] == "caller-closed"
    assert meta["connected_at"] and meta["duration"] > 0
    kinds = {t["kind"]: t["codec"] for t in meta["tracks"]}
    assert kinds == {"video": "video/VP8", "audio": "audio/opus"}
    assert "alice" not in bot.calls


async def test_h264_call(server, connect):
    alice = await connect("alice")
    caller = Caller(alice)
    for t in caller.pc.getTransceivers():
        if t.kind == "video":
            from aiortc.rtcrtpsender import RTCRtpSender
            t.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == "video/H264"])
    await caller.call()
    call = server.app[BOT].calls["alice"]
    await caller.hangup()
    await asyncio.wait_for(call.ended.wait(), 5)
    (meta,) = manifests(server.app[BOT].config.data_dir)
    assert {t["kind"]: t["codec"] for t in meta["tracks"]}["video"] == "video/H264"


async def recv_colour(track, timeout: float = 10.0) -> tuple[int, int, int]:
    frame = await asyncio.wait_for(track.recv(), timeout)
    image = frame.to_ndarray(format="rgb24")
    h, w = image.shape[:2]
    return tuple(int(v) for v in image[h * 3 // 4, w // 2])


@pytest.mark.parametrize("mode", ["echo", "overlay"])
async def test_talkback_sends_the_callers_media_back(tmp_path, mode):
    config = test_config(tmp_path, bot=BotConfig(talkback=mode))
    async with running_server(config) as srv:
        alice = await Client.connect(srv.ws_url)
        await alice.login("alice")
        caller = Caller(alice, tracks=[PatternVideoTrack(colour=(0, 0, 255)), AudioStreamTrack()])
        await caller.call()
        assert set(caller.received) == {"audio", "video"}
        # the far end of the picture carries the caller's blue
        for _ in range(5):
            colour = await recv_colour(caller.received["video"])
        r, g, b = colour
        assert b > 180 and r < 60 and g < 60, colour
        if mode == "overlay":
            # the overlay's red dot is drawn at the top left
            frame = await asyncio.wait_for(caller.received["video"].recv(), 10)
            image = frame.to_ndarray(format="rgb24")
            s = max(0.5, image.shape[1] / 960)
            r, g, b = (int(v) for v in image[int(34 * s), int(20 * s)])
            assert r > 150 and b < 120, (r, g, b)
        audio = await asyncio.wait_for(caller.received["audio"].recv(), 10)
        assert audio.sample_rate == 48000
        await caller.hangup()
        await alice.close()


async def test_none_mode_answers_recvonly(server, connect):
    alice = await connect("alice")
    caller = Caller(alice)
    await caller.call()
    assert caller.answer_sdp.count("a=recvonly") == 2
    await caller.hangup()


async def test_second_offer_from_same_user_is_refused(server, connect):
    alice = await connect("alice")
    caller = Caller(alice)
    await caller.call()
    other = Caller(alice)
    await other.pc.setLocalDescription(await other.pc.createOffer())
    await alice.send({"type": "offer", "otherUsername": "bot", "offer": {"type": "offer", "sdp": other.pc.localDescription.sdp}})
    err = await alice.recv_type("error")
    assert err["code"] == "already-in-call" and err["username"] == "bot"
    await other.pc.close()
    await caller.hangup()


async def test_total_call_limit(tmp_path):
    config = test_config(tmp_path, bot=BotConfig(max_calls=1))
    async with running_server(config) as srv:
        a = await Client.connect(srv.ws_url); await a.login("a")
        b = await Client.connect(srv.ws_url); await b.login("b")
        first = Caller(a)
        await first.call()
        second = Caller(b)
        await second.pc.setLocalDescription(await second.pc.createOffer())
        await b.send({"type": "offer", "otherUsername": "bot", "offer": {"type": "offer", "sdp": second.pc.localDescription.sdp}})
        assert (await b.recv_type("error"))["code"] == "too-many-calls"
        await first.hangup()
        await second.pc.close()
        for c in (a, b):
            await c.close()


async def test_garbage_offer_gets_bad_offer_and_server_carries_on(server, connect):
    alice = await connect("alice")
    await alice.send({"type": "offer", "otherUsername": "bot", "offer": {"type": "offer", "sdp": "v=0\r\nthis is not sdp"}})
    err = await alice.recv_type("error")
    assert err["code"] == "bad-offer" and err["username"] == "bot"
    await alice.send({"type": "candidate", "otherUsername": "bot",
                      "candidate": {"candidate": "candidate:garbage", "sdpMid": "0"}})
    caller = Caller(alice)
    await caller.call()
    await caller.hangup()


async def test_many_concurrent_calls_are_independent(server, connect):
    clients = [await connect(f"user{i}") for i in range(4)]
    callers = [Caller(c) for c in clients]
    await asyncio.gather(*(c.call() for c in callers))
    bot = server.app[BOT]
    assert len(bot.calls) == 4
    await callers[0].hangup()
    await eventually(lambda: "user0" not in bot.calls)
    assert all(bot.calls[f"user{i}"].pc.connectionState == "connected" for i in range(1, 4))
    for c in callers[1:]:
        await c.hangup()
    await eventually(lambda: not bot.calls)


async def test_websocket_drop_ends_the_call(server, connect):
    alice = await connect("alice")
    caller = Caller(alice)
    await caller.call()
    call = server.app[BOT].calls["alice"]
    await alice.close()
    await asyncio.wait_for(call.ended.wait(), 5)
    assert call.manifest.end_reason == "caller-closed"
    await caller.pc.close()


async def test_ice_failure_ends_the_call_and_tells_the_caller(tmp_path):
    config = test_config(tmp_path, bot=BotConfig(connect_timeout=1.0))
    async with running_server(config) as srv:
        alice = await Client.connect(srv.ws_url)
        await alice.login("alice")
        caller = Caller(alice)
        await caller.pc.setLocalDescription(await caller.pc.createOffer())
        # an offer whose candidates point nowhere: ICE can never connect
        from tests.support.caller import strip_candidates
        sdp, _ = strip_candidates(caller.pc.localDescription.sdp)
        await alice.send({"type": "offer", "otherUsername": "bot", "offer": {"type": "offer", "sdp": sdp}})
        await alice.recv_type("answer")
        assert await alice.recv_type("close") == {"type": "close", "username": "bot"}
        await eventually(lambda: not srv.app[BOT].calls)
        (meta,) = manifests(config.data_dir)
        assert meta["end_reason"] in ("connect-timeout", "ice-failed") and meta["status"] == "complete"
        await caller.pc.close()
        await alice.close()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def call_threads() -> list[str]:
    """Threads a call may start (decoders, recorder, sampler), without the
    event loop's default executor: a bounded pool whose idle workers stay."""
    return sorted(t.name for t in threading.enumerate() if not t.name.startswith("asyncio_"))


async def test_ending_calls_frees_threads_tasks_and_fds(server, connect):
    alice = await connect("alice")
    bot = server.app[BOT]

    async def one_call() -> None:
        caller = Caller(alice)
        await caller.call()
        call = bot.calls["alice"]
        await caller.hangup()
        await asyncio.wait_for(call.ended.wait(), 10)

    await one_call()  # warm up imports and pools
    gc.collect()
    threads, tasks, fds = call_threads(), len(asyncio.all_tasks()), open_fds()
    for _ in range(5):
        await one_call()
    try:
        await eventually(lambda: call_threads() == threads and len(asyncio.all_tasks()) <= tasks, timeout=30)
    except asyncio.TimeoutError:
        raise AssertionError(f"threads {threads} -> {call_threads()}, tasks {tasks} -> {asyncio.all_tasks()}")
    gc.collect()
    assert open_fds() <= fds + 2, (open_fds(), fds)
    assert not bot._tasks


async def test_shutdown_ends_calls_and_finalizes_manifests(tmp_path):
    config = test_config(tmp_path)
    async with running_server(config) as srv:
        alice = await Client.connect(srv.ws_url)
        await alice.login("alice")
        caller = Caller(alice)
        await caller.call()
        await srv.runner.shutdown()
        (meta,) = manifests(config.data_dir)
        assert meta["status"] == "complete" and meta["end_reason"] == "server-shutdown"
        await caller.pc.close()
        await alice.session.close()


def test_bitrate_hints_added_to_every_video_codec():
    sdp = "\r\n".join([
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97 98",
        "a=rtpmap:96 VP8/90000",
        "a=rtpmap:97 rtx/90000",
        "a=fmtp:97 apt=96",
        "a=rtpmap:98 H264/90000",
        "a=fmtp:98 packetization-mode=1;profile-level-id=42e01f",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10",
    ])
    out = add_bitrate_hints(sdp, start_kbps=1000, min_kbps=200, max_kbps=3000).split("\r\n")
    hints = "x-google-start-bitrate=1000;x-google-min-bitrate=200;x-google-max-bitrate=3000"
    assert out[2] == f"a=fmtp:96 {hints}"
    assert "a=fmtp:97 apt=96" in out
    assert f"a=fmtp:98 packetization-mode=1;profile-level-id=42e01f;{hints}" in out
    assert "a=fmtp:111 minptime=10" in out


async def test_an_offer_right_behind_a_close_starts_a_new_call(server, connect):
    """A client that hangs up and calls again at once (both frames in one
    burst) gets a new call, not already-in-call."""
    alice = await connect("alice")
    first = Caller(alice)
    await first.call()
    second = Caller(alice)
    await second.pc.setLocalDescription(await second.pc.createOffer())
    offer = {"type": "offer", "sdp": second.pc.localDescription.sdp}
    await asyncio.gather(
        alice.send({"type": "close", "otherUsername": "bot"}),
        alice.send({"type": "offer", "otherUsername": "bot", "offer": offer}),
    )
    await first.pc.close()

    async def answer_or_error() -> dict:
        while True:
            message = await alice.recv()
            if message.get("type") in ("answer", "error"):
                return message

    reply = await asyncio.wait_for(answer_or_error(), 15)
    assert reply["type"] == "answer", reply
    await second.pc.close()
